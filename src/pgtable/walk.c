/*
 * walk.c - the lockless walker (rules in include/ptkit/walk.h).
 */
#include "internal.h"

int ptk_walk(struct ptk_as *as, uint64_t va, struct ptk_xlate *out)
{
	PTK_CONTRACT(ptk_rcu_in_section(), "not inside a read-side section");
	if (!as || !out)
		return -EINVAL;
	PTK_CHECK_AS(as);
	struct ptk_ctx *ctx = as->ctx;
	unsigned levels = as->levels;
	if (!ptk_va_canonical(va, levels))
		return -EFAULT;
	const ptk_slot_t *table = as->root_slots;
	for (unsigned level = levels - 1;; level--) {
		/* Rule 1: one load, kept in a local. */
		ptk_pte_t e = ptk_pte_load(&table[ptk_level_index(va, level)]);
		if (PTK_DEBUG_ENABLED)
			PTK_BUG_ON(e == PTK_PTE_POISON, "read a freed table");
		/* Rule 2: present first. */
		if (!ptk_pte_present(e))
			return -EFAULT;
		/* Rule 3: leaf before table. */
		if (e & PTK_PTE_LEAF) {
			uint64_t off = va & (ptk_level_size(level) - 1);
			out->pte = e;
			out->level = level;
			out->page_size = ptk_level_size(level);
			out->pfn = ptk_pte_pfn(e) + (off >> PTK_PAGE_SHIFT);
			out->host = out->pfn < ctx->nframes ?
				(uint8_t *)ptk_pfn_host_fast(ctx, out->pfn) +
				(va & (PTK_PAGE_SIZE - 1)) : NULL;
			return 0;
		}
		PTK_BUG_ON(level == 0, "table pointer at level 0");
		table = ptk_pfn_host_fast(ctx, ptk_pte_pfn(e));
	}
}
