/*
 * zap.c - range walks that change leaves: teardown (zap) and protection
 * changes.  Both follow the writer protocol of table.c and run table by
 * table: a table's lock is held only while its slots in the range are
 * processed, never across a descent, a gather flush or the whole range.
 * When the gather fills, the walk unlocks, leaves its read-side section,
 * flushes, and re-descends from the root where it stopped.
 */
#include "internal.h"

enum range_op { OP_ZAP, OP_PROTECT };

struct range_walk {
	struct ptk_as *as;
	struct ptk_gather *g;
	uint64_t start, end;
	enum range_op op;
	bool writable;              /* OP_PROTECT */
	bool need_flush;
	/* OP_ZAP: clear only leaves of frames this reverse map owns (NULL:
	 * every leaf). */
	const struct ptk_rmap *only_owner;
};

/* Process one leaf of locked table @t.  Returns true if the gather is full. */
static bool leaf_op(struct range_walk *w, struct ptk_frame *t, ptk_slot_t *slot,
		    ptk_pte_t e, unsigned level, uint64_t base)
{
	struct ptk_as *as = w->as;
	uint64_t size = ptk_level_size(level);
	PTK_BUG_ON(base < w->start || base + size - 1 > w->end - 1,
		   "huge leaf straddles the range (boundary not split)");
	if (w->op == OP_PROTECT) {
		ptk_pte_t ne = w->writable ? (e | PTK_PTE_WRITE) : (e & ~PTK_PTE_WRITE);
		/* A leaf a clone write-protected stays so: its frame may be
		 * shared, the next write fault copies it (or reuses it). */
		if (w->writable && (e & PTK_PTE_COW))
			ne = e;
		if (ne != e) {
			ptk_pte_store(slot, ne);
			if (!w->writable)
				ptk_gather_note_range(w->g, base, base + size, level);
		}
		return false;
	}
	if (w->only_owner) {
		/* The owner of a mapped frame is stable: set before it was
		 * mapped, cleared only when it leaves its object's cache,
		 * which the caller (a hole punch) does after this zap. */
		struct ptk_frame *f = ptk_pte_special(e) ? NULL :
			ptk_pfn_to_frame(as->ctx, ptk_pte_pfn(e));
		if (!f || atomic_load_explicit(&ptk_frame_head(as->ctx, f)->owner,
					       memory_order_relaxed) != w->only_owner)
			return false;
	}
	ptk_pte_xchg(slot, 0);
	atomic_fetch_sub_explicit(&t->nr_used, 1, memory_order_relaxed);
	/* Old design: an IPI per huge leaf cleared, waiting out walkers
	 * (serialize_against_pte_lookup); a field read once, no cost for the
	 * new one. */
	if (level > 0 && __builtin_expect(ptk_ctx_walk_ipi(as->ctx), 0))
		ptk_ipi_sync(as->ctx);
	ptk_gather_note_range(w->g, base, base + size, level);
	if (ptk_pte_special(e))
		return false;
	struct ptk_frame *f = ptk_pfn_to_frame(as->ctx, ptk_pte_pfn(e));
	PTK_BUG_ON(!f, "non-special leaf outside the pool");
	PTK_AS_ADD(as, rss, -(int64_t)(size >> PTK_PAGE_SHIFT));
	return ptk_gather_add_page(w->g, f);
}

/* One step: descend to the deepest table covering @va, process its slots
 * in range, return where to continue.  Inside a read-side section. */
static uint64_t walk_step(struct range_walk *w, uint64_t va)
{
	struct ptk_as *as = w->as;
	struct ptk_ctx *ctx = as->ctx;
	struct ptk_path path;
	unsigned level = as->levels - 1;
	path.table[level] = as->root;
	for (;;) {
		struct ptk_frame *t = path.table[level];
		ptk_slot_t *slots = ptk_table_slots(ctx, t);
		ptk_pte_t e = ptk_pte_load(&slots[ptk_level_index(va, level)]);
		if (!ptk_pte_present(e)) {
			/* An empty table left behind (a fault that failed after
			 * allocating it): reclaim it on the way. */
			if (w->op == OP_ZAP && level + 1 < as->levels &&
			    atomic_load_explicit(&t->nr_used, memory_order_relaxed) == 0)
				ptk_table_reclaim_up(as, w->g, &path, level);
			/* Skip the run of empty slots that follows in this table
			 * in the same step (one section, not one per slot: an
			 * empty space's destroy crosses 256 root slots). */
			uint64_t next = ptk_level_next(va, level, w->end);
			uint64_t span_end = level + 1 < as->levels ?
				ptk_level_next(va, level + 1, w->end) : w->end;
			while (next - 1 < span_end - 1 && next != span_end &&
			       !ptk_pte_present(ptk_pte_load(&slots[ptk_level_index(next, level)])))
				next = ptk_level_next(next, level, w->end);
			return next;
		}
		if (ptk_pte_is_table(e)) {
			PTK_BUG_ON(level == 0, "table pointer at level 0");
			path.table[level - 1] = ptk_pfn_to_frame(ctx, ptk_pte_pfn(e));
			path.parent_slot[level - 1] = &slots[ptk_level_index(va, level)];
			path.parent_seen[level - 1] = e;
			level--;
			continue;
		}
		/* A leaf: lock its table and process this table's slots. */
		if (!ptk_table_lock_attached(as, &path, level))
			return va;      /* detached meanwhile: retry */
		/* The table covers one slot of the level above (the root: all). */
		uint64_t span_end = level + 1 < as->levels ?
			ptk_level_next(va, level + 1, w->end) : w->end;
		bool straddle = false;
		while (va < span_end) {
			ptk_slot_t *slot = &slots[ptk_level_index(va, level)];
			ptk_pte_t cur = ptk_pte_load(slot);
			uint64_t next = ptk_level_next(va, level, w->end);
			if (ptk_pte_is_table(cur))
				break;  /* descend on the next step */
			if (ptk_pte_is_leaf(cur) && level > 0 &&
			    (ptk_level_base(va, level) < w->start ||
			     ptk_level_base(va, level) + ptk_level_size(level) - 1 > w->end - 1)) {
				straddle = true;
				break;
			}
			if (ptk_pte_is_leaf(cur) &&
			    leaf_op(w, t, slot, cur, level, ptk_level_base(va, level))) {
				va = next;
				w->need_flush = true;
				break;
			}
			va = next;
		}
		/* Hash-style consumers forget the pages before the lock goes,
		 * so no refill can race in a duplicate. */
		if (w->g->nr_vas)
			ptk_gather_flush_vas(w->g);
		ptk_table_unlock(t);
		if (straddle) {
			/* A huge leaf across the range's edge, faulted in after
			 * the caller split the boundaries (drop runs beside
			 * faults, under the region lock's read side): split it
			 * now and retry.  Without memory for the split the
			 * leaf stays (a drop leaves those pages mapped). */
			uint64_t b = ptk_level_base(va, level);
			if (ptk_split_boundary(as, b < w->start ? w->start : w->end) == 0)
				return va;
			return ptk_level_next(va, level, w->end);
		}
		if (w->op == OP_ZAP &&
		    atomic_load_explicit(&t->nr_used, memory_order_relaxed) == 0)
			ptk_table_reclaim_up(as, w->g, &path, level);
		return va;
	}
}

/* Walk [start, end) applying @w->op; empties of zap are reclaimed. */
static void range_walk(struct range_walk *w)
{
	uint64_t va = w->start;
	while (va < w->end) {
		ptk_rcu_read_lock();
		va = walk_step(w, va);
		ptk_rcu_read_unlock();
		if (w->need_flush) {
			ptk_gather_flush(w->g);
			w->need_flush = false;
		}
	}
}

void ptk_zap_range(struct ptk_as *as, struct ptk_gather *g, uint64_t start, uint64_t end)
{
	struct range_walk w = { .as = as, .g = g, .start = start, .end = end, .op = OP_ZAP };
	range_walk(&w);
}

void ptk_zap_range_owned(struct ptk_as *as, struct ptk_gather *g, uint64_t start,
			 uint64_t end, const struct ptk_rmap *owner)
{
	struct range_walk w = { .as = as, .g = g, .start = start, .end = end, .op = OP_ZAP,
				.only_owner = owner };
	range_walk(&w);
}

void ptk_change_prot_range(struct ptk_as *as, struct ptk_gather *g,
			   uint64_t start, uint64_t end, bool writable)
{
	struct range_walk w = { .as = as, .g = g, .start = start, .end = end,
				.op = OP_PROTECT, .writable = writable };
	range_walk(&w);
}
