/*
 * rmap_walk.c - using the reverse maps: finding every entry that maps a
 * frame (ptk_rmap_count, ptk_rmap_unmap_frame: the page_mapcount and
 * try_to_unmap analogs) and taking every rmap lock of an address space
 * (ptk_as_lock_all: mm_take_all_locks).  Protocol in ptkit/rmap.h.
 *
 * A walk goes from the frame's owner (a reference taken on it, so it
 * cannot be freed under us) through the interval tree at the frame's page
 * index, under the rmap lock for reading.  An address space found in the
 * tree is alive: a region's link is unlinked only after its range was
 * zapped (and destroy unlinks after its zap), so while the walk holds the
 * rmap lock the space and its root stay.  For each mapping the address is
 * va = m->va + ((index - m->first) << 12); the entry is found with a
 * lockless descent, then its table locked and the entry re-checked to map
 * this frame (it may have been unmapped, copied on write or replaced).
 * Huge frames: an entry maps the frame if it is a 4 KiB leaf of it or a
 * huge leaf containing it (found at the same address: the frame's index
 * lies inside the huge leaf's range).  Unmap clears a huge leaf whole
 * (all 512 pages leave that space at once, as try_to_unmap does for a
 * PMD-mapped THP without TTU_SPLIT_HUGE_PMD: no allocation, cannot fail);
 * small leaves mapping other pages of the huge frame stay.  Unmap clears entries
 * through one gather per address space met: TLBs invalidated and
 * notifiers called before the mapping's reference is dropped.
 */
#include <stdlib.h>
#include <time.h>

#include "internal.h"

struct frame_walk {
	struct ptk_ctx *ctx;
	uint64_t pfn;                /* the frame looked for */
	uint64_t index;              /* its page index in the rmap */
	bool unmap;
	int found;
};

/* Find the leaf mapping @va in @as if it maps frame fw->pfn (a 4 KiB leaf
 * of it, or a huge leaf containing it); with @unmap clear it through a
 * gather.  Returns 1 if found, else 0.  Not inside a
 * section; caller holds the rmap lock (which keeps @as alive). */
static int visit(struct frame_walk *fw, struct ptk_as *as, uint64_t va)
{
	struct ptk_ctx *ctx = fw->ctx;
	int found = 0;
	struct ptk_gather g;
	bool gathering = false;
	uint64_t nstart = 0, nend = 0;      /* range notified */
	ptk_rcu_read_lock();
restart:;
	struct ptk_path path;
	unsigned level;
	ptk_pte_t e;
	ptk_slot_t *slot = ptk_descend(as, va, &path, &level, &e);
	do {
		if (!ptk_pte_present(e))
			break;
		uint64_t pfn = ptk_pte_pfn(e);
		uint64_t npfn = ptk_level_size(level) >> PTK_PAGE_SHIFT;
		if (ptk_pte_special(e) || fw->pfn < pfn || fw->pfn >= pfn + npfn)
			break;          /* maps something else (copied, replaced) */
		struct ptk_frame *t = path.table[level];
		if (!ptk_table_lock_attached(as, &path, level))
			goto restart;
		if (ptk_pte_load(slot) != e) {
			ptk_table_unlock(t);
			goto restart;
		}
		found = 1;
		if (fw->unmap) {
			uint64_t base = ptk_level_base(va, level);
			uint64_t size = ptk_level_size(level);
			if (!gathering) {
				ptk_table_unlock(t);
				ptk_rcu_read_unlock();
				/* Notifiers: no table lock held (the rmap
				 * lock is, as i_mmap_rwsem is in Linux). */
				nstart = base;
				nend = base + size;
				ptk_notify_start(as, nstart, nend);
				ptk_gather_init(&g, as, false);
				gathering = true;
				ptk_rcu_read_lock();
				found = 0;
				goto restart;
			}
			ptk_pte_xchg(slot, 0);
			atomic_fetch_sub_explicit(&t->nr_used, 1, memory_order_relaxed);
			if (level > 0 && __builtin_expect(ptk_ctx_walk_ipi(ctx), 0))
				ptk_ipi_sync(ctx);
			ptk_gather_note_range(&g, base, base + size, level);
			PTK_AS_ADD(as, rss, -(int64_t)(size >> PTK_PAGE_SHIFT));
			bool full = ptk_gather_add_page(&g, ptk_pfn_to_frame(ctx, pfn));
			PTK_BUG_ON(full, "one page filled a gather");
			if (g.nr_vas)
				ptk_gather_flush_vas(&g);
		}
		ptk_table_unlock(t);
		break;
	} while (0);
	ptk_rcu_read_unlock();
	if (gathering) {
		/* The entry left every TLB before its reference drops. */
		ptk_gather_finish(&g);
		ptk_notify_end(as, nstart, nend);
	}
	return found;
}

static int visit_mapping(struct ptk_mapping *m, void *arg)
{
	struct frame_walk *fw = arg;
	uint64_t va = m->va + ((fw->index - m->first) << PTK_PAGE_SHIFT);
	fw->found += visit(fw, m->as, va);
	return 0;
}

static int frame_walk(struct ptk_ctx *ctx, uint64_t pfn, bool unmap)
{
	if (!ctx)
		return -EINVAL;
	PTK_CHECK_CTX(ctx);
	struct ptk_frame *f = ptk_pfn_to_frame(ctx, pfn);
	if (!f)
		return -EINVAL;
	uint8_t type = atomic_load_explicit(&f->type, memory_order_relaxed);
	if (type != PTK_FRAME_DATA && type != PTK_FRAME_HUGE && type != PTK_FRAME_HUGE_TAIL)
		return -EINVAL;
	ptk_cpu_quiesce_self();
	struct frame_walk fw = { .ctx = ctx, .pfn = pfn, .unmap = unmap };
	struct ptk_rmap *rm = ptk_frame_owner_get(ctx, f, &fw.index);
	if (!rm)
		return -ENOENT;
	int total = 0;
	for (;;) {
		fw.found = 0;
		ptk_rmap_read_lock(&rm->lock);
		ptk_rmap_walk(rm, fw.index, fw.index, visit_mapping, &fw);
		ptk_rmap_unlock(&rm->lock);
		total += fw.found;
		/* A clone may have copied an entry into a space this pass had
		 * already visited, from one it cleared later (clone.c): repeat
		 * until a pass clears nothing.  Counting makes one pass. */
		if (!unmap || fw.found == 0)
			break;
	}
	ptk_rmap_put(rm);
	return total;
}

int ptk_rmap_count(struct ptk_ctx *ctx, uint64_t pfn)
{
	return frame_walk(ctx, pfn, false);
}

int ptk_rmap_unmap_frame(struct ptk_ctx *ctx, uint64_t pfn)
{
	return frame_walk(ctx, pfn, true);
}

/* ---- take all locks ------------------------------------------------------ */

struct ptk_all_locks {
	struct ptk_as *as;
	size_t n;
	struct ptk_rmap *rm[];       /* sorted by address, distinct */
};

static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)*(struct ptk_rmap *const *)a;
	uintptr_t y = (uintptr_t)*(struct ptk_rmap *const *)b;
	return x < y ? -1 : x > y;
}

int ptk_as_lock_all(struct ptk_as *as, struct ptk_all_locks **out)
{
	if (!as || !out)
		return -EINVAL;
	PTK_CHECK_AS(as);
	ptk_cpu_quiesce_self();
	ptk_as_write_lock(as);
	/* Unmaps still tearing down (their placeholders) run without the
	 * region lock: wait until they are done, so none is half-way. */
	while (ptk_region_overlaps(&as->regions, 0, ptk_as_user_end(as), true)) {
		ptk_as_write_unlock(as);
		struct timespec ts = { 0, 50000 };
		nanosleep(&ts, NULL);
		ptk_as_write_lock(as);
	}
	size_t n = as->regions.n;
	struct ptk_all_locks *l = malloc(sizeof(*l) + 2 * n * sizeof(l->rm[0]));
	if (!l || ptk_inject_should_fail(as->ctx, PTK_INJECT_META)) {
		free(l);
		ptk_as_write_unlock(as);
		return -ENOMEM;
	}
	l->as = as;
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		const struct ptk_region *r = &as->regions.v[i];
		if (r->anon_link)
			l->rm[k++] = r->anon_link->rmap;
		if (r->obj_link)
			l->rm[k++] = r->obj_link->rmap;
	}
	/* One global order, by address: two callers whose sets overlap take
	 * the common locks in the same order and cannot deadlock.  Each rmap
	 * is kept alive by a link of a region of @as, and links change only
	 * under the region lock we hold. */
	qsort(l->rm, k, sizeof(l->rm[0]), cmp_ptr);
	size_t m = 0;
	for (size_t i = 0; i < k; i++)
		if (m == 0 || l->rm[m - 1] != l->rm[i])
			l->rm[m++] = l->rm[i];
	l->n = m;
	for (size_t i = 0; i < m; i++)
		ptk_rmap_write_lock(&l->rm[i]->lock);
	*out = l;
	return 0;
}

void ptk_as_unlock_all(struct ptk_all_locks *l)
{
	if (!l)
		return;
	for (size_t i = l->n; i-- > 0;)
		ptk_rmap_unlock(&l->rm[i]->lock);
	ptk_as_write_unlock(l->as);
	free(l);
}
