/*
 * stress_common.h - what every stress test checks at the end of a run.
 */
#ifndef PTK_STRESS_COMMON_H
#define PTK_STRESS_COMMON_H

#include <stdbool.h>
#include <stdint.h>

#include "ptkit/ptkit.h"

/* Every address space and object of @ctx is gone: wait for the deferred
 * frees, then whether every frame is back in the pool.  *in_use, *nfree and
 * *capacity for the failure message. */
static inline bool stress_pool_back(struct ptk_ctx *ctx, uint64_t *in_use,
				    uint64_t *nfree, uint64_t *capacity)
{
	ptk_ctx_quiesce(ctx);
	struct ptk_pool_stats ps;
	ptk_pool_stats(ctx, &ps);
	*in_use = 0;
	for (unsigned t = 0; t < PTK_FRAME_NR_TYPES; t++)
		*in_use += ps.in_use[t];
	*nfree = ps.free;
	*capacity = ps.capacity;
	return *in_use == 0 && ps.free == ps.capacity;
}

#endif
