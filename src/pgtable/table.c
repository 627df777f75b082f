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
}

int ptk_split_boundary(struct ptk_as *as, uint64_t va)
{
	struct ptk_ctx *ctx = as->ctx;
	/* Only a 1 GiB boundary is straddled by no leaf: a 2 MiB-aligned
	 * address can still be inside a 1 GiB leaf. */
	if (va >= ptk_as_user_end(as) || (va & (PTK_HUGE_1G - 1)) == 0)
		return 0;
	int rc = 0;
	struct ptk_frame *spare = NULL;
	ptk_rcu_read_lock();
restart:;
	struct ptk_path path;
	path.table[as->levels - 1] = as->root;
	for (unsigned level = as->levels - 1; level > 0; level--) {
		if ((va & (ptk_level_size(level) - 1)) == 0)
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

void ptk_table_reclaim_up(struct ptk_as *as, struct ptk_gather *g,
			  struct ptk_path *path, unsigned level)
{
	PTK_CONTRACT(ptk_rcu_in_section(), "not inside a read-side section");
	for (; level + 1 < as->levels; level++) {
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
