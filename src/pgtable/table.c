/*
 * table.c - page-table pages: allocation, RCU freeing, lock-and-recheck,
 * huge-leaf split, empty-table reclaim.
 *
 * Writer protocol ("lock, re-check, retry"):
 *   A writer descends locklessly inside a read-side section, recording the
 *   path (struct ptk_path).  To change slots of table T it locks T and
 *   re-checks that T's parent slot still points to T.  If not, T was
 *   detached meanwhile (reclaim); the writer unlocks and restarts.  T's
 *   memory and lock stay valid while the writer is in its section because
 *   detached tables are freed only after a grace period.
 *
 * Detach protocol: a table is detached only when it has no used slot, with
 * its parent's lock and then its own lock held (top-down order, the only
 * order in which two table locks are ever nested).  So "T is locked and its
 * parent slot points to T" proves T is attached, and stays so until T is
 * unlocked.
 */
#include <string.h>

#include "internal.h"

struct ptk_frame *ptk_table_alloc(struct ptk_ctx *ctx, unsigned level)
{
	struct ptk_frame *t = ptk_frame_alloc(ctx, PTK_FRAME_TABLE, false);
	if (!t)
		return NULL;
	ptk_slot_t *s = ptk_table_slots(ctx, t);
	for (unsigned i = 0; i < PTK_TABLE_SLOTS; i++)
		ptk_pte_init(&s[i], 0);
	t->level = (uint8_t)level;
	atomic_store_explicit(&t->nr_used, 0, memory_order_relaxed);
	ptk_lock_init(&t->ptl);
	return t;
}

void ptk_table_free_now(struct ptk_ctx *ctx, struct ptk_frame *t)
{
	ptk_lock_destroy(&t->ptl);
	ptk_frame_free(ctx, t);
}

void ptk_table_free_unpublished(struct ptk_ctx *ctx, struct ptk_frame *t)
{
	ptk_table_free_now(ctx, t);
}

static void table_rcu_cb(struct rcu_head *head)
{
	PTK_RCU_CALLBACK_BEGIN(head);
	struct ptk_frame *t = ptk_container_of(head, struct ptk_frame, rcu);
	ptk_table_free_now(t->ctx, t);
	PTK_RCU_CALLBACK_END();
}

void ptk_table_free_rcu(struct ptk_ctx *ctx, struct ptk_frame *t)
{
	(void)ctx;
	ptk_rcu_call(&t->rcu, table_rcu_cb);
}

bool ptk_table_lock_attached(struct ptk_as *as, struct ptk_path *path, unsigned level)
{
	PTK_CONTRACT(ptk_rcu_in_section(), "not inside a read-side section");
	struct ptk_frame *t = path->table[level];
	ptk_lock_acquire(&t->ptl);
	if (level == as->levels - 1)
		return true;            /* the root is never detached */
	if (ptk_pte_load(path->parent_slot[level]) == path->parent_seen[level])
		return true;
	ptk_lock_release(&t->ptl);
	return false;
}

void ptk_table_split_huge(struct ptk_as *as, struct ptk_frame *t, ptk_slot_t *slot,
			  unsigned level, struct ptk_frame *child)
{
	struct ptk_ctx *ctx = as->ctx;
	PTK_CONTRACT(ptk_lock_held(&t->ptl), "table lock not held");
	ptk_pte_t e = ptk_pte_load(slot);
	PTK_BUG_ON(!ptk_pte_is_leaf(e) || !ptk_level_huge_ok(level), "not a huge leaf");
	unsigned sub = level - 1;
	uint64_t step = ptk_level_size(sub) >> PTK_PAGE_SHIFT;
	uint64_t pfn = ptk_pte_pfn(e);
	uint64_t flags = e & ~(PTK_PTE_PFN_MASK | PTK_PTE_PRESENT | PTK_PTE_LEAF);
	ptk_slot_t *cs = ptk_table_slots(ctx, child);
	for (unsigned i = 0; i < PTK_TABLE_SLOTS; i++)
		ptk_pte_init(&cs[i], ptk_pte_mk_leaf(pfn + i * step, flags));
	atomic_store_explicit(&child->nr_used, PTK_TABLE_SLOTS, memory_order_relaxed);
	/* A 2 MiB anonymous frame: each of the 512 small leaves holds one
	 * reference on the head (the huge leaf held one). */
	if (level == PTK_LEVEL_PMD && !ptk_pte_special(e)) {
		struct ptk_frame *head = ptk_pfn_to_frame(ctx, pfn);
		atomic_fetch_add_explicit(&head->refcount, PTK_TABLE_SLOTS - 1,
					  memory_order_relaxed);
	}
	/* Release store: the child's slots are visible before the pointer.
	 * Walkers see the huge leaf or the table, both valid. */
	ptk_pte_store(slot, ptk_pte_mk_table(ptk_frame_pfn_fast(ctx, child)));
	PTK_AS_ADD(as, tables, 1);
	/* The old design waits out walkers after changing a huge leaf
	 * (serialize_against_pte_lookup); the new one does not. */
	if (ptk_ctx_walk_ipi(ctx))
		ptk_ipi_sync(ctx);
}

/* Split huge leaves covering @va.  @explicit_split: split the one leaf
 * that maps @va by one level (0, or -ENOENT if no huge leaf maps it);
 * otherwise split every huge leaf that straddles @va.  Region lock held. */
static int split_at(struct ptk_as *as, uint64_t va, bool explicit_split)
{
	struct ptk_ctx *ctx = as->ctx;
	int rc = explicit_split ? -ENOENT : 0;
	struct ptk_frame *spare = NULL;
	ptk_rcu_read_lock();
restart:;
	struct ptk_path path;
	path.table[as->levels - 1] = as->root;
	for (unsigned level = as->levels - 1; level > 0; level--) {
		if (!explicit_split && (va & (ptk_level_size(level) - 1)) == 0)
			break;          /* no leaf at this level or below straddles va */
		ptk_slot_t *slot = &ptk_table_slots(ctx, path.table[level])[ptk_level_index(va, level)];
		ptk_pte_t e = ptk_pte_load(slot);
		if (!ptk_pte_present(e))
			break;
		if (ptk_pte_is_leaf(e)) {
			if (!spare && !(spare = ptk_table_alloc(ctx, level - 1))) {
				rc = -ENOMEM;
				break;
			}
			if (!ptk_table_lock_attached(as, &path, level))
				goto restart;
			if (ptk_pte_load(slot) != e) {
				ptk_table_unlock(path.table[level]);
				goto restart;
			}
			spare->level = (uint8_t)(level - 1);  /* spare may be from a retry */
			ptk_table_split_huge(as, path.table[level], slot, level, spare);
			ptk_table_unlock(path.table[level]);
			spare = NULL;
			if (explicit_split) {
				rc = 0;
				break;
			}
			goto restart;   /* descend into the new table */
		}
		struct ptk_frame *child = ptk_pfn_to_frame(ctx, ptk_pte_pfn(e));
		path.table[level - 1] = child;
		path.parent_slot[level - 1] = slot;
		path.parent_seen[level - 1] = e;
	}
	ptk_rcu_read_unlock();
	if (spare)
		ptk_table_free_unpublished(ctx, spare);
	return rc;
}

ptk_slot_t *ptk_descend(struct ptk_as *as, uint64_t va, struct ptk_path *path,
			unsigned *level_out, ptk_pte_t *e_out)
{
	struct ptk_ctx *ctx = as->ctx;
	unsigned level = as->levels - 1;
	path->table[level] = as->root;
	for (;;) {
		ptk_slot_t *slot = &ptk_table_slots(ctx, path->table[level])[ptk_level_index(va, level)];
		/* One load, kept: the walker rules of walk.h. */
		ptk_pte_t e = ptk_pte_load(slot);
		if (!ptk_pte_is_table(e)) {
			*level_out = level;
			*e_out = e;
			return slot;
		}
		PTK_BUG_ON(level == 0, "table pointer at level 0");
		path->table[level - 1] = ptk_pfn_to_frame(ctx, ptk_pte_pfn(e));
		path->parent_slot[level - 1] = slot;
		path->parent_seen[level - 1] = e;
		level--;
	}
}

int ptk_split_boundary(struct ptk_as *as, uint64_t va)
{
	/* The largest leaf is 1 GiB: nothing straddles a 1 GiB boundary.  A
	 * 2 MiB-aligned address may still cut a 1 GiB leaf; split_at stops at
	 * the first level whose slots @va is aligned to. */
	if ((!as->kernel_ref && va >= ptk_as_user_end(as)) || (va & (PTK_HUGE_1G - 1)) == 0)
		return 0;
	return split_at(as, va, false);
}

int ptk_split(struct ptk_as *as, uint64_t va)
{
	if (!as || va >= ptk_as_user_end(as))
		return -EINVAL;
	unsigned tok = ptk_as_read_lock(as);
	int rc = split_at(as, va, true);
	ptk_as_read_unlock(as, tok);
	return rc;
}

/* Whether the 512 leaves of PTE table @slots can become one 2 MiB leaf:
 * all present, same flags (accessed/dirty aside), frame numbers contiguous
 * from a 2 MiB-aligned one; anonymous frames must be the 512 frames of one
 * huge frame.  Returns the huge leaf, or 0.  Table lock held. */
static ptk_pte_t collapse_leaf(struct ptk_ctx *ctx, ptk_slot_t *slots)
{
	const uint64_t ad = PTK_PTE_ACCESSED | PTK_PTE_DIRTY;
	ptk_pte_t first = ptk_pte_load(&slots[0]);
	if (!ptk_pte_is_leaf(first))
		return 0;
	uint64_t pfn0 = ptk_pte_pfn(first);
	if (pfn0 & (PTK_TABLE_SLOTS - 1))
		return 0;
	uint64_t flags = first & ~(PTK_PTE_PFN_MASK | ad);
	uint64_t acc = first & ad;
	for (unsigned i = 1; i < PTK_TABLE_SLOTS; i++) {
		ptk_pte_t e = ptk_pte_load(&slots[i]);
		if (!ptk_pte_is_leaf(e) || ptk_pte_pfn(e) != pfn0 + i ||
		    (e & ~(PTK_PTE_PFN_MASK | ad)) != flags)
			return 0;
		acc |= e & ad;
	}
	if (!ptk_pte_special(first)) {
		struct ptk_frame *head = ptk_pfn_to_frame(ctx, pfn0);
		if (!head || atomic_load_explicit(&head->type, memory_order_relaxed) != PTK_FRAME_HUGE)
			return 0;
	}
	return first | acc;
}

int ptk_collapse(struct ptk_as *as, uint64_t va)
{
	if (!as || (va & (PTK_HUGE_2M - 1)) || va >= ptk_as_user_end(as))
		return -EINVAL;
	struct ptk_ctx *ctx = as->ctx;
	/* Write side of the region lock, as khugepaged takes mmap_lock for
	 * writing: no fault, drop or protect runs meanwhile (a drop between
	 * its boundary split and its zap must not meet a new huge leaf). */
	ptk_as_write_lock(as);
	/* Inside one region: no leaf straddles a region boundary (clone,
	 * zap and protect work region by region and rely on it).  Regions
	 * are not merged, so a block whose protection was changed in part
	 * and changed back stays two regions and is not collapsible;
	 * khugepaged, too, collapses within one VMA. */
	struct ptk_region *r = ptk_region_find(&as->regions, va);
	int rc = 0;
	if (!r || r->kind == PTK_REGION_ZAPPING || r->end - va < PTK_HUGE_2M) {
		rc = -EINVAL;
		goto out_unlocked_rcu;
	}
	ptk_rcu_read_lock();
	struct ptk_path path;
	unsigned level = as->levels - 1;
	path.table[level] = as->root;
	for (; level > PTK_LEVEL_PMD; level--) {
		ptk_slot_t *slot = &ptk_table_slots(ctx, path.table[level])[ptk_level_index(va, level)];
		ptk_pte_t e = ptk_pte_load(slot);
		if (!ptk_pte_is_table(e)) {
			rc = ptk_pte_present(e) ? -EEXIST : -ENOENT;
			goto out;
		}
		path.table[level - 1] = ptk_pfn_to_frame(ctx, ptk_pte_pfn(e));
		path.parent_slot[level - 1] = slot;
		path.parent_seen[level - 1] = e;
	}
	ptk_slot_t *pmd = &ptk_table_slots(ctx, path.table[PTK_LEVEL_PMD])[ptk_level_index(va, PTK_LEVEL_PMD)];
	ptk_pte_t e = ptk_pte_load(pmd);
	if (!ptk_pte_is_table(e)) {
		rc = ptk_pte_present(e) ? -EEXIST : -ENOENT;
		goto out;
	}
	/* Region lock held for writing: nothing detaches tables here but an
	 * old unmap's teardown, which never touches a live region. */
	if (!ptk_table_lock_attached(as, &path, PTK_LEVEL_PMD)) {
		rc = -EAGAIN;
		goto out;
	}
	struct ptk_frame *p = path.table[PTK_LEVEL_PMD];
	struct ptk_frame *t = ptk_pfn_to_frame(ctx, ptk_pte_pfn(e));
	ptk_lock_acquire(&t->ptl);   /* parent then child */
	ptk_pte_t huge = ptk_pte_load(pmd) == e ? collapse_leaf(ctx, ptk_table_slots(ctx, t)) : 0;
	if (huge) {
		/* One store swaps the table for the leaf; walkers see either,
		 * both valid.  The detached table keeps its (stale, valid)
		 * leaves until the grace period ends. */
		ptk_pte_store(pmd, huge);
		if (!ptk_pte_special(huge)) {
			/* 512 small leaves held one reference each on the
			 * head; the huge leaf holds one. */
			struct ptk_frame *head = ptk_pfn_to_frame(ctx, ptk_pte_pfn(huge));
			atomic_fetch_sub_explicit(&head->refcount, PTK_TABLE_SLOTS - 1,
						  memory_order_relaxed);
		}
		if (ptk_ctx_walk_ipi(ctx))
			ptk_ipi_sync(ctx);
	}
	ptk_lock_release(&t->ptl);
	ptk_lock_release(&p->ptl);
	if (!huge) {
		rc = -EBUSY;
		goto out;
	}
	ptk_rcu_read_unlock();
	PTK_AS_ADD(as, tables, -1);
	struct ptk_gather g;
	ptk_gather_init(&g, as, false);
	ptk_gather_note_range(&g, va, va + PTK_HUGE_2M, PTK_LEVEL_PTE);
	ptk_gather_add_table(&g, t);
	ptk_gather_finish(&g);
	ptk_as_write_unlock(as);
	return 0;
out:
	ptk_rcu_read_unlock();
out_unlocked_rcu:
	ptk_as_write_unlock(as);
	return rc;
}

void ptk_table_reclaim_up(struct ptk_as *as, struct ptk_gather *g,
			  struct ptk_path *path, unsigned level)
{
	PTK_CONTRACT(ptk_rcu_in_section(), "not inside a read-side section");
	/* Never the root; in the kernel's reference space not the tables
	 * under the root either: top-level kernel entries are never cleared
	 * (ptkit/kernel.h, I1). */
	unsigned stop = as->kernel_ref ? as->levels - 1 : as->levels;
	for (; level + 1 < stop; level++) {
		struct ptk_frame *t = path->table[level];
		if (atomic_load_explicit(&t->nr_used, memory_order_relaxed) != 0)
			return;         /* hint; re-checked under the locks */
		if (!ptk_table_lock_attached(as, path, level + 1))
			return;         /* parent gone: someone else reclaimed */
		struct ptk_frame *p = path->table[level + 1];
		ptk_lock_acquire(&t->ptl);
		bool ok = ptk_pte_load(path->parent_slot[level]) == path->parent_seen[level] &&
			  atomic_load_explicit(&t->nr_used, memory_order_relaxed) == 0;
		if (ok) {
			ptk_pte_store(path->parent_slot[level], 0);
			atomic_fetch_sub_explicit(&p->nr_used, 1, memory_order_relaxed);
		}
		ptk_lock_release(&t->ptl);
		ptk_lock_release(&p->ptl);
		if (!ok)
			return;
		PTK_AS_ADD(as, tables, -1);
		ptk_gather_add_table(g, t);
	}
}
