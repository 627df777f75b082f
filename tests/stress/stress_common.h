/*
 * stress_common.h - what every stress test checks at the end of a run.
 */
#ifndef PTK_STRESS_COMMON_H
#define PTK_STRESS_COMMON_H

#include <stdbool.h>
#include <stdint.h>

#include "ptkit/ptkit.h"

/* Every address space and object of @ctx is gone, and every kernel mapping:
 * wait for the deferred frees, then whether every frame is back in the pool
 * except the kernel half's tables, which stay until the context goes
 * (kernel.h, I1) and are counted by ptk_kernel_stats().  *in_use (frames
 * in use beyond those), *nfree and *capacity for the failure message. */
static inline bool stress_pool_back(struct ptk_ctx *ctx, uint64_t *in_use,
				    uint64_t *nfree, uint64_t *capacity)
{
	ptk_ctx_quiesce(ctx);
	struct ptk_pool_stats ps;
	ptk_pool_stats(ctx, &ps);
	struct ptk_kernel_stats ke;
	ptk_kernel_stats(ctx, &ke);
	*in_use = 0;
	for (unsigned t = 0; t < PTK_FRAME_NR_TYPES; t++)
		*in_use += ps.in_use[t];
	bool tables_ok = ps.in_use[PTK_FRAME_TABLE] >= ke.table_pages;
	if (tables_ok)
		*in_use -= ke.table_pages;
	*nfree = ps.free;
	*capacity = ps.capacity;
	return tables_ok && *in_use == 0 && !ke.rss_frames &&
	       ps.free + ke.table_pages == ps.capacity;
}

#endif
