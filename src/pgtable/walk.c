/*
 * walk.c - the lockless walker and the fast pin (rules in
 * include/ptkit/walk.h), with the locked slow path the pin falls back to.
 */
#include "internal.h"

/* The walk itself (ptk_lookup(), walk.h), inlined into ptk_walk() and
 * ptk_translate() (a lookup is measured against a raw walk: no extra call
 * on its path). */
static inline __attribute__((always_inline))
int walk_inline(struct ptk_as *as, uint64_t va, struct ptk_xlate *out)
{
	struct ptk_ctx *ctx = as->ctx;
	struct ptk_lookup_root r = { as->root_slots, ctx->base, ctx->nframes, as->levels };
	return ptk_lookup(&r, va, out);
}

int ptk_lookup_root(struct ptk_as *as, struct ptk_lookup_root *r)
{
	if (!as || !r)
		return -EINVAL;
	PTK_CHECK_AS(as);
	*r = (struct ptk_lookup_root){ as->root_slots, as->ctx->base, as->ctx->nframes,
				       as->levels };
	return 0;
}

int ptk_walk(struct ptk_as *as, uint64_t va, struct ptk_xlate *out)
{
	PTK_CONTRACT(ptk_rcu_in_section(), "not inside a read-side section");
	if (__builtin_expect(!as || !out, 0))
		return -EINVAL;
	PTK_CHECK_AS(as);
	return walk_inline(as, va, out);
}

int ptk_translate(struct ptk_as *as, uint64_t va, struct ptk_xlate *out)
{
	if (__builtin_expect(!as || !out, 0))
		return -EINVAL;
	PTK_CHECK_AS(as);
	struct ptk_ctx *ctx = as->ctx;
	ptk_walker_enter(ctx);
	int rc = walk_inline(as, va, out);
	ptk_walker_exit(ctx);
	return rc;
}

void ptk_walk_begin(struct ptk_as *as) { ptk_walker_enter(as->ctx); }
void ptk_walk_end(struct ptk_as *as) { ptk_walker_exit(as->ctx); }

const ptk_slot_t *ptk_as_root_slots(const struct ptk_as *as)
{
	return as->root_slots;
}

/* The walk of the fast pin: like ptk_walk(), but returns the leaf's slot
 * (for the re-check) and its value.  Inside a walker section. */
static const ptk_slot_t *walk_slot(struct ptk_as *as, uint64_t va, ptk_pte_t *leaf,
				   unsigned *leaf_level)
{
	struct ptk_ctx *ctx = as->ctx;
	const ptk_slot_t *table = as->root_slots;
	for (unsigned level = as->levels - 1;; level--) {
		const ptk_slot_t *slot = &table[ptk_level_index(va, level)];
		ptk_pte_t e = ptk_pte_load(slot);
		if (PTK_DEBUG_ENABLED)
			PTK_BUG_ON(e == PTK_PTE_POISON, "read a freed table");
		if (!ptk_pte_present(e))
			return NULL;
		if (e & PTK_PTE_LEAF) {
			*leaf = e;
			*leaf_level = level;
			return slot;
		}
		PTK_BUG_ON(level == 0, "table pointer at level 0");
		table = ptk_pfn_host_fast(ctx, ptk_pte_pfn(e));
	}
}

/* Whether leaf @e allows a pin for @access. */
static bool pin_allowed(ptk_pte_t e, unsigned access)
{
	if (ptk_pte_special(e))
		return false;
	return access != PTK_ACCESS_WRITE || ptk_pte_write(e);
}

unsigned ptk_pin_fast(struct ptk_as *as, uint64_t va, unsigned npages,
		      unsigned access, uint64_t *pfns)
{
	struct ptk_ctx *ctx = as->ctx;
	if ((va & (PTK_PAGE_SIZE - 1)) || va >= ptk_as_user_end(as))
		return 0;
	unsigned n = 0;
	ptk_walker_enter(ctx);
	for (; n < npages; n++) {
		uint64_t a = va + ((uint64_t)n << PTK_PAGE_SHIFT);
		if (a >= ptk_as_user_end(as))
			break;
		ptk_pte_t e;
		unsigned level;
		const ptk_slot_t *slot = walk_slot(as, a, &e, &level);
		if (!slot || !pin_allowed(e, access))
			break;
		uint64_t pfn = ptk_pte_pfn(e) +
			((a & (ptk_level_size(level) - 1)) >> PTK_PAGE_SHIFT);
		struct ptk_frame *f = ptk_pfn_to_frame(ctx, pfn);
		if (!f)
			break;
		struct ptk_frame *head = ptk_frame_head(ctx, f);
		/* Speculative reference: fails on a free or frozen frame. */
		if (!ptk_frame_try_get(head))
			break;
		/* Re-check (acquire load after the acquire RMW): the entry we
		 * pinned through is still there, so the mapping's reference
		 * had not been dropped when we took ours.  Pairs with the
		 * writer's clear (xchg) that precedes its put (release). */
		if (ptk_pte_load(slot) != e) {
			ptk_frame_put(ctx, head);
			break;
		}
		pfns[n] = pfn;
	}
	ptk_walker_exit(ctx);
	return n;
}

/* Locked slow path for one page: descend, lock the leaf's table, re-check,
 * take the reference under the lock.  0, -EAGAIN (no suitable entry: fault
 * and retry) or -EFAULT (special). */
static int pin_locked(struct ptk_as *as, uint64_t va, unsigned access, uint64_t *pfn)
{
	struct ptk_ctx *ctx = as->ctx;
	int rc;
	ptk_rcu_read_lock();
restart:;
	struct ptk_path path;
	unsigned level;
	ptk_pte_t e;
	ptk_slot_t *slot = ptk_descend(as, va, &path, &level, &e);
	do {
		if (!ptk_pte_present(e)) {
			rc = -EAGAIN;
			break;
		}
		if (!ptk_table_lock_attached(as, &path, level))
			goto restart;
		ptk_pte_t cur = ptk_pte_load(slot);
		if (cur != e) {
			ptk_table_unlock(path.table[level]);
			goto restart;
		}
		if (ptk_pte_special(e)) {
			rc = -EFAULT;
		} else if (!pin_allowed(e, access)) {
			rc = -EAGAIN;
		} else {
			*pfn = ptk_pte_pfn(e) + ((va & (ptk_level_size(level) - 1)) >> PTK_PAGE_SHIFT);
			/* The mapping holds a reference and cannot go while we
			 * hold the table lock: a plain increment is safe. */
			ptk_frame_get(ptk_frame_head(ctx, ptk_pfn_to_frame(ctx, *pfn)));
			rc = 0;
		}
		ptk_table_unlock(path.table[level]);
		break;
	} while (0);
	ptk_rcu_read_unlock();
	return rc;
}

int ptk_pin(struct ptk_as *as, uint64_t va, unsigned npages, unsigned access,
	    uint64_t *pfns)
{
	if (!as || !pfns || (va & (PTK_PAGE_SIZE - 1)) || access > PTK_ACCESS_WRITE ||
	    va + ((uint64_t)npages << PTK_PAGE_SHIFT) < va ||
	    va + ((uint64_t)npages << PTK_PAGE_SHIFT) > ptk_as_user_end(as))
		return -EINVAL;
	unsigned n = ptk_pin_fast(as, va, npages, access, pfns);
	int rc = 0;
	for (; n < npages; n++) {
		uint64_t a = va + ((uint64_t)n << PTK_PAGE_SHIFT);
		int tries = 0;
		for (;;) {
			rc = pin_locked(as, a, access, &pfns[n]);
			if (rc != -EAGAIN)
				break;
			if (++tries > 16 || (rc = ptk_fault(as, a, access)))
				break;
		}
		if (rc)
			break;
	}
	if (rc) {
		ptk_unpin(as->ctx, pfns, n);
		return rc == -EAGAIN ? -EFAULT : rc;
	}
	return 0;
}

void ptk_unpin(struct ptk_ctx *ctx, const uint64_t *pfns, unsigned npages)
{
	for (unsigned i = 0; i < npages; i++) {
		struct ptk_frame *f = ptk_pfn_to_frame(ctx, pfns[i]);
		PTK_BUG_ON(!f, "unpin of a frame outside the pool");
		ptk_frame_put(ctx, f);
	}
}
