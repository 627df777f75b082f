/*
 * clone.c - cloning an address space (fork semantics).
 *
 * Protocol (contract in ptkit/as.h, ptk_as_clone()):
 *   1. the parent's region lock for writing: no fault, map, unmap, protect
 *      or clone of the parent runs meanwhile (rmap walkers, truncate and
 *      teardowns of ranges already zapping still may: they take table
 *      locks only, and zapping placeholders are not copied);
 *   2. the child's regions are created and linked into the SAME reverse
 *      maps as the parent's (anonymous families, object trees) before any
 *      entry is copied, so a reverse-map walk that runs while entries are
 *      copied reaches the child too;
 *   3. entries are copied table by table with both table locks held, the
 *      child's first, then the parent's (only clone nests two table locks,
 *      and the child is reachable by nobody else but rmap walkers, which
 *      take one table lock at a time: no cycle).  Private leaves (anonymous
 *      memory and whatever a private object mapping maps) are
 *      write-protected in the parent and copied write-protected, one frame
 *      reference per leaf (a 2 MiB huge leaf is shared as one leaf: one
 *      reference on its head); special leaves are copied as they are (no
 *      reference count); shared object mappings copy nothing (the child
 *      faults them in from the object, as Linux does);
 *   4. one gather over the whole clone notes every entry write-protected;
 *      its finish invalidates the parent's TLBs (hash-style consumers are
 *      handed the VA list before each table lock is released), inside one
 *      notifier start/end pair spanning the regions, before returning.
 * A write fault in either space then copies (fault.c, fault_wp()).
 * Failure (-ENOMEM: a region array, a link node, a child table) destroys
 * the partial child (its entries and links go with it, dropping the
 * references taken) after the gather finished; the parent keeps its
 * contents, some entries write-protected (a write fault restores write:
 * the frame's reference count is back to 1).
 * ptk_rmap_unmap_frame() and clone: a walker may visit the child before
 * clone copies an entry into it and the parent after; it clears the
 * parent's entry then, which is why it repeats its walk until a pass clears
 * nothing (rmap_walk.c): the copy was made while the parent's entry was
 * still there, under its lock, so the next pass finds it in the child.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct clone_walk {
	struct ptk_as *parent, *child;
	struct ptk_gather g;
	const struct ptk_region *r;
	bool private_;              /* write-protect and count references */
	int64_t rss;                /* child frames mapped (4 KiB units) */
};

/* Copy leaf @e (parent slot @ps, table locked) into child slot @cs of
 * locked table @ct for the page at @base of @level. */
static void copy_leaf(struct clone_walk *w, ptk_slot_t *ps, ptk_pte_t e,
		      struct ptk_frame *ct, ptk_slot_t *cs, unsigned level, uint64_t base)
{
	struct ptk_ctx *ctx = w->parent->ctx;
	ptk_pte_t ce = e;
	if (!ptk_pte_special(e)) {
		struct ptk_frame *f = ptk_pfn_to_frame(ctx, ptk_pte_pfn(e));
		PTK_BUG_ON(!f, "non-special leaf outside the pool");
		/* The parent's entry holds a reference and cannot go while
		 * its table is locked: a plain increment. */
		ptk_frame_get(ptk_frame_head(ctx, f));
		w->rss += (int64_t)(ptk_level_size(level) >> PTK_PAGE_SHIFT);
		if (w->private_) {
			/* Both sides read-only and marked: shared until a
			 * write fault copies (or reuses) the frame. */
			ce = (e & ~PTK_PTE_WRITE) | PTK_PTE_COW;
			if (ce != e)
				ptk_pte_store(ps, ce);
			if (ptk_pte_write(e))
				ptk_gather_note_range(&w->g, base, base + ptk_level_size(level),
						      level);
		}
	}
	PTK_BUG_ON(!ptk_pte_none(ptk_pte_load(cs)), "child slot in use");
	ptk_pte_store(cs, ce);
	atomic_fetch_add_explicit(&ct->nr_used, 1, memory_order_relaxed);
}

/* One step of copying [va, end) of the region: find the parent's deepest
 * entry at @va; copy a leaf, or the slots of one parent table in range.
 * Returns where to continue, or 0 with *rc = -ENOMEM.  Inside a section. */
static uint64_t clone_step(struct clone_walk *w, uint64_t va, uint64_t end, int *rc)
{
	struct ptk_as *p = w->parent;
	struct ptk_ctx *ctx = p->ctx;
	struct ptk_path path;
	unsigned level;
	ptk_pte_t e;
	ptk_descend(p, va, &path, &level, &e);
	if (!ptk_pte_present(e))
		return ptk_level_next(va, level, end);
	ptk_slot_t *slots = ptk_table_slots(ctx, path.table[level]);
	/* A leaf at @level: the child's table at that level first (locked),
	 * then the parent's. */
	struct ptk_path cpath;
	unsigned got;
	*rc = ptk_descend_alloc(w->child, va, level, &cpath, &got);
	if (*rc)
		return 0;
	PTK_BUG_ON(got != level, "leaf in the way in a new child");
	struct ptk_frame *ct = cpath.table[level];
	if (!ptk_table_lock_attached(p, &path, level)) {
		ptk_table_unlock(ct);
		return va;      /* detached meanwhile: retry */
	}
	ptk_slot_t *cslots = ptk_table_slots(ctx, ct);
	uint64_t span_end = level + 1 < p->levels ? ptk_level_next(va, level + 1, end) : end;
	while (va < span_end) {
		ptk_slot_t *ps = &slots[ptk_level_index(va, level)];
		ptk_pte_t cur = ptk_pte_load(ps);
		if (ptk_pte_is_table(cur))
			break;          /* replaced by a table meanwhile: descend */
		if (ptk_pte_is_leaf(cur)) {
			uint64_t base = ptk_level_base(va, level);
			PTK_BUG_ON(base < w->r->start || base + ptk_level_size(level) > w->r->end,
				   "leaf straddles a region boundary");
			copy_leaf(w, ps, cur, ct, &cslots[ptk_level_index(va, level)], level, base);
		}
		va = ptk_level_next(va, level, end);
	}
	if (w->g.nr_vas)
		ptk_gather_flush_vas(&w->g);    /* before the parent's lock goes */
	ptk_table_unlock(path.table[level]);
	ptk_table_unlock(ct);
	return va;
}

static int clone_entries(struct clone_walk *w, const struct ptk_region *r)
{
	w->r = r;
	uint64_t va = r->start;
	int rc = 0;
	while (va < r->end) {
		ptk_rcu_read_lock();
		va = clone_step(w, va, r->end, &rc);
		ptk_rcu_read_unlock();
		if (rc)
			return rc;
		if (va == 0)    /* wrapped at the top of the space */
			break;
	}
	return 0;
}

/* Link child region @c (a copy of @r) into @r's reverse maps.  -ENOMEM
 * (nothing linked). */
static int clone_links(struct ptk_as *child, const struct ptk_region *r,
		       struct ptk_region *c)
{
	uint64_t npages = (r->end - r->start) >> PTK_PAGE_SHIFT;
	c->anon_link = c->obj_link = NULL;
	if (r->anon_link) {
		int rc = ptk_rmap_link(r->anon_link->rmap, child, r->start,
				       r->anon_link->first, npages, &c->anon_link);
		if (rc)
			return rc;
	}
	if (r->obj_link) {
		/* The link's reference on the object's rmap keeps the object
		 * (c->obj, shared with the parent's region) alive. */
		int rc = ptk_rmap_link(r->obj_link->rmap, child, r->start,
				       r->obj_link->first, npages, &c->obj_link);
		if (rc) {
			ptk_rmap_unlink(c->anon_link);
			c->anon_link = NULL;
			return rc;
		}
	}
	return 0;
}

int ptk_as_clone(struct ptk_as *parent, struct ptk_as **out)
{
	if (!parent || !out)
		return -EINVAL;
	PTK_CHECK_AS(parent);
	struct ptk_ctx *ctx = parent->ctx;
	ptk_cpu_quiesce_self();
	struct ptk_as *child;
	int rc = ptk_as_create(ctx, parent->levels, &child);
	if (rc)
		return rc;
	ptk_as_write_lock(parent);
	struct ptk_region_set *ps = &parent->regions;
	/* The child's region array, sized once (splits later grow it). */
	if (ps->n) {
		if (!ptk_inject_should_fail(ctx, PTK_INJECT_META))
			child->regions.v = malloc(ps->n * sizeof(struct ptk_region));
		if (!child->regions.v) {
			rc = -ENOMEM;
			goto fail;
		}
		child->regions.cap = ps->n;
	}
	uint64_t lo = UINT64_MAX, hi = 0;
	for (size_t i = 0; i < ps->n; i++) {
		const struct ptk_region *r = &ps->v[i];
		if (r->kind == PTK_REGION_ZAPPING)
			continue;       /* being unmapped: the child never sees it */
		struct ptk_region c = *r;
		rc = clone_links(child, r, &c);
		if (rc)
			goto fail;
		child->regions.v[child->regions.n++] = c;   /* sorted already */
		if (r->start < lo)
			lo = r->start;
		if (r->end > hi)
			hi = r->end;
	}
	struct clone_walk w = { .parent = parent, .child = child };
	if (lo < hi)
		ptk_notify_start(parent, lo, hi);
	ptk_gather_init(&w.g, parent, false);
	for (size_t i = 0; i < ps->n && !rc; i++) {
		const struct ptk_region *r = &ps->v[i];
		if (r->kind == PTK_REGION_ZAPPING)
			continue;
		if (r->kind == PTK_REGION_OBJECT && !(r->flags & PTK_MAP_PRIVATE))
			continue;       /* shared: the child faults from the object */
		w.private_ = r->kind != PTK_REGION_SPECIAL;
		rc = clone_entries(&w, r);
	}
	PTK_AS_ADD(child, rss, w.rss);
	/* The parent's write-protected entries leave its TLBs before return
	 * (and before a failed clone releases the child's references). */
	ptk_gather_finish(&w.g);
	if (lo < hi)
		ptk_notify_end(parent, lo, hi);
	if (rc)
		goto fail;
	ptk_as_write_unlock(parent);
	*out = child;
	return 0;
fail:
	/* Destroyed under the parent's lock: when the lock goes, the parent's
	 * frames are back to their old reference counts. */
	ptk_as_destroy(child);
	ptk_as_write_unlock(parent);
	return rc;
}
