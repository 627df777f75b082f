/*
 * helpers.h - shared fixtures for the cmocka unit tests: a small context
 * per test and the frame-accounting check every test ends with.
 */
#ifndef PTKIT_TEST_HELPERS_H
#define PTKIT_TEST_HELPERS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ptkit/ptkit.h"

#define KiB (UINT64_C(1) << 10)
#define MiB (UINT64_C(1) << 20)
#define GiB (UINT64_C(1) << 30)

/* A context with a pool of @pool_bytes (0: 64 MiB). */
static inline struct ptk_ctx *test_ctx(uint64_t pool_bytes)
{
	struct ptk_ctx_config cfg;
	ptk_ctx_config_default(&cfg);
	cfg.pool_bytes = pool_bytes ? pool_bytes : 64 * MiB;
	struct ptk_ctx *ctx = NULL;
	assert_int_equal(ptk_ctx_create(&cfg, &ctx), 0);
	return ctx;
}

/* Every frame is back in the pool: nothing in use of any type.  Call after
 * every address space is destroyed. */
static inline void assert_all_frames_free(struct ptk_ctx *ctx)
{
	ptk_ctx_quiesce(ctx);
	struct ptk_pool_stats st;
	ptk_pool_stats(ctx, &st);
	for (unsigned t = 0; t < PTK_FRAME_NR_TYPES; t++) {
		if (st.in_use[t])
			print_error("frame type %u: %llu in use\n", t,
				    (unsigned long long)st.in_use[t]);
		assert_int_equal(st.in_use[t], 0);
	}
	assert_int_equal(st.free, st.capacity);
	assert_int_equal(st.allocs, st.frees);
}

/* Destroy @as (if any) and @ctx, checking frame accounting in between. */
static inline void test_teardown(struct ptk_ctx *ctx, struct ptk_as *as)
{
	if (as)
		ptk_as_destroy(as);
	assert_all_frames_free(ctx);
	ptk_ctx_destroy(ctx);
}

#endif
