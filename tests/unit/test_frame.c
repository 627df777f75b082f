/*
 * test_frame.c - the frame pool (frame.h) and context creation and failure
 * injection (ctx.h).
 *
 * Exhaustion tests use one cache shard so that no free frame can sit in
 * another CPU's cache: "allocate until NULL" then takes exactly the pool's
 * capacity, whatever CPU the test thread runs on.
 */
#include <errno.h>
#include <sched.h>
#include <string.h>
#include "helpers.h"

#define POOL_4M (4 * MiB)

static struct ptk_ctx *ctx_one_shard(uint64_t pool_bytes)
{
	struct ptk_ctx_config cfg;
	ptk_ctx_config_default(&cfg);
	cfg.pool_bytes = pool_bytes;
	cfg.cache_shards = 1;
	struct ptk_ctx *ctx = NULL;
	assert_int_equal(ptk_ctx_create(&cfg, &ctx), 0);
	assert_non_null(ctx);
	return ctx;
}

static void stats(struct ptk_ctx *ctx, struct ptk_pool_stats *st)
{
	ptk_pool_stats(ctx, st);
}

/* Every counter is consistent: free + in use == capacity. */
static void assert_consistent(struct ptk_ctx *ctx)
{
	struct ptk_pool_stats st;
	stats(ctx, &st);
	uint64_t used = 0;
	for (unsigned t = 0; t < PTK_FRAME_NR_TYPES; t++)
		used += st.in_use[t];
	assert_int_equal(used + st.free, st.capacity);
	assert_int_equal(st.allocs - st.frees, used);
	assert_int_equal(st.in_use[PTK_FRAME_FREE], 0);
	assert_int_equal(st.in_use[PTK_FRAME_HUGE_TAIL], 0);
	assert_int_equal(st.in_use[PTK_FRAME_HUGE], st.huge_in_use * 512);
}

/* ---- contexts ------------------------------------------------------------ */

static void ctx_config_defaults(void **state)
{
	(void)state;
	struct ptk_ctx_config cfg;
	memset(&cfg, 0xff, sizeof(cfg));
	ptk_ctx_config_default(&cfg);
	assert_int_equal(cfg.pool_bytes, 256 * MiB);
	assert_int_equal(cfg.levels, 4);
	assert_true(cfg.cache_shards >= 2);
	assert_int_equal(cfg.cache_frames, 64);

	/* NULL config: defaults. */
	struct ptk_ctx *ctx = NULL;
	assert_int_equal(ptk_ctx_create(NULL, &ctx), 0);
	const struct ptk_ctx_config *c = ptk_ctx_config(ctx);
	assert_int_equal(c->pool_bytes, 256 * MiB);
	assert_int_equal(c->levels, 4);
	assert_true(c->cache_shards >= 2);
	assert_int_equal(c->cache_frames, 64);
	struct ptk_pool_stats st;
	stats(ctx, &st);
	assert_int_equal(st.capacity, 256 * MiB / PTK_PAGE_SIZE);
	assert_int_equal(st.free, st.capacity);
	test_teardown(ctx, NULL);

	/* Zero fields select defaults. */
	struct ptk_ctx_config z;
	memset(&z, 0, sizeof(z));
	assert_int_equal(ptk_ctx_create(&z, &ctx), 0);
	c = ptk_ctx_config(ctx);
	assert_int_equal(c->pool_bytes, 256 * MiB);
	assert_int_equal(c->levels, 4);
	assert_true(c->cache_shards >= 1);
	assert_int_equal(c->cache_frames, 64);
	test_teardown(ctx, NULL);
}

static void ctx_pool_rounding(void **state)
{
	(void)state;
	struct ptk_ctx_config cfg;
	ptk_ctx_config_default(&cfg);
	cfg.pool_bytes = 1;
	struct ptk_ctx *ctx = NULL;
	assert_int_equal(ptk_ctx_create(&cfg, &ctx), 0);
	assert_int_equal(ptk_ctx_config(ctx)->pool_bytes, 2 * MiB);
	struct ptk_pool_stats st;
	stats(ctx, &st);
	assert_int_equal(st.capacity, 512);
	test_teardown(ctx, NULL);

	cfg.pool_bytes = 2 * MiB + 4096;
	assert_int_equal(ptk_ctx_create(&cfg, &ctx), 0);
	assert_int_equal(ptk_ctx_config(ctx)->pool_bytes, 4 * MiB);
	stats(ctx, &st);
	assert_int_equal(st.capacity, 1024);
	test_teardown(ctx, NULL);

	cfg.pool_bytes = 6 * MiB;
	cfg.levels = 5;
	assert_int_equal(ptk_ctx_create(&cfg, &ctx), 0);
	assert_int_equal(ptk_ctx_config(ctx)->pool_bytes, 6 * MiB);
	assert_int_equal(ptk_ctx_config(ctx)->levels, 5);
	test_teardown(ctx, NULL);
}

static void ctx_bad_configs(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = (struct ptk_ctx *)0x1;
	struct ptk_ctx_config cfg;

	static const unsigned bad_levels[] = { 1, 2, 3, 6, 7, 100 };
	for (size_t i = 0; i < sizeof(bad_levels) / sizeof(bad_levels[0]); i++) {
		ptk_ctx_config_default(&cfg);
		cfg.levels = bad_levels[i];
		assert_int_equal(ptk_ctx_create(&cfg, &ctx), -EINVAL);
	}
	ptk_ctx_config_default(&cfg);
	cfg.pool_bytes = (UINT64_C(1) << 46) + 1;       /* beyond the maximum */
	assert_int_equal(ptk_ctx_create(&cfg, &ctx), -EINVAL);
	cfg.pool_bytes = UINT64_MAX;                     /* would overflow rounding */
	assert_int_equal(ptk_ctx_create(&cfg, &ctx), -EINVAL);
	ptk_ctx_config_default(&cfg);
	cfg.cache_shards = 4097;
	assert_int_equal(ptk_ctx_create(&cfg, &ctx), -EINVAL);
	ptk_ctx_config_default(&cfg);
	cfg.cache_frames = 1;
	assert_int_equal(ptk_ctx_create(&cfg, &ctx), -EINVAL);
	cfg.cache_frames = (1u << 16) + 1;
	assert_int_equal(ptk_ctx_create(&cfg, &ctx), -EINVAL);
	/* NULL out. */
	ptk_ctx_config_default(&cfg);
	cfg.pool_bytes = 2 * MiB;
	assert_int_equal(ptk_ctx_create(&cfg, NULL), -EINVAL);
	/* *out untouched on failure. */
	assert_ptr_equal(ctx, (struct ptk_ctx *)0x1);
	/* Destroying NULL is a no-op. */
	ptk_ctx_destroy(NULL);

	/* Boundary values that are valid. */
	cfg.cache_shards = 1;
	cfg.cache_frames = 2;
	assert_int_equal(ptk_ctx_create(&cfg, &ctx), 0);
	struct ptk_frame *f[40];
	for (int i = 0; i < 40; i++)
		assert_non_null(f[i] = ptk_frame_alloc(ctx, PTK_FRAME_DATA, true));
	for (int i = 0; i < 40; i++)
		ptk_frame_free(ctx, f[i]);
	test_teardown(ctx, NULL);
}

static void as_create_bad_args(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = test_ctx(4 * MiB);
	struct ptk_as *as = NULL;
	assert_int_equal(ptk_as_create(NULL, 4, &as), -EINVAL);
	assert_int_equal(ptk_as_create(ctx, 4, NULL), -EINVAL);
	assert_int_equal(ptk_as_create(ctx, 3, &as), -EINVAL);
	assert_int_equal(ptk_as_create(ctx, 6, &as), -EINVAL);
	assert_null(as);
	/* Root allocation fails: -ENOMEM, nothing leaked. */
	ptk_ctx_inject_failure(ctx, PTK_INJECT_TABLE, 1);
	assert_int_equal(ptk_as_create(ctx, 0, &as), -ENOMEM);
	assert_null(as);
	assert_all_frames_free(ctx);
	/* 0 selects the context's default. */
	assert_int_equal(ptk_as_create(ctx, 0, &as), 0);
	assert_int_equal(ptk_as_levels(as), 4);
	assert_ptr_equal(ptk_as_ctx(as), ctx);
	assert_int_equal(ptk_as_user_end(as), UINT64_C(1) << 47);
	struct ptk_pool_stats st;
	stats(ctx, &st);
	assert_int_equal(st.in_use[PTK_FRAME_TABLE], 1);   /* the root */
	ptk_as_destroy(as);
	assert_int_equal(ptk_as_create(ctx, 5, &as), 0);
	assert_int_equal(ptk_as_levels(as), 5);
	assert_int_equal(ptk_as_user_end(as), UINT64_C(1) << 56);
	ptk_as_destroy(NULL);   /* no-op */
	test_teardown(ctx, as);
}

/* ---- allocation and accounting ------------------------------------------- */

static void alloc_free_types(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = ctx_one_shard(POOL_4M);
	struct ptk_pool_stats st0, st;
	stats(ctx, &st0);
	assert_int_equal(st0.capacity, 1024);
	assert_int_equal(st0.free, 1024);
	assert_int_equal(st0.allocs, 0);

	struct ptk_frame *d = ptk_frame_alloc(ctx, PTK_FRAME_DATA, true);
	struct ptk_frame *t = ptk_frame_alloc(ctx, PTK_FRAME_TABLE, false);
	struct ptk_frame *b = ptk_frame_alloc(ctx, PTK_FRAME_BATCH, true);
	struct ptk_frame *d2 = ptk_frame_alloc(ctx, PTK_FRAME_DATA, false);
	assert_non_null(d);
	assert_non_null(t);
	assert_non_null(b);
	assert_non_null(d2);
	assert_true(d != t && d != b && t != b && d2 != d);
	assert_int_equal(d->type, PTK_FRAME_DATA);
	assert_int_equal(t->type, PTK_FRAME_TABLE);
	assert_int_equal(b->type, PTK_FRAME_BATCH);
	/* Data frames start with one reference; others are not counted. */
	assert_int_equal(d->refcount, 1);
	assert_int_equal(t->refcount, 0);
	assert_int_equal(b->refcount, 0);
	assert_ptr_equal(d->ctx, ctx);

	/* Zeroed contents. */
	const uint8_t *p = ptk_frame_host(ctx, d);
	for (unsigned i = 0; i < PTK_PAGE_SIZE; i++)
		assert_int_equal(p[i], 0);
	p = ptk_frame_host(ctx, b);
	for (unsigned i = 0; i < PTK_PAGE_SIZE; i++)
		assert_int_equal(p[i], 0);

	stats(ctx, &st);
	assert_int_equal(st.in_use[PTK_FRAME_DATA], 2);
	assert_int_equal(st.in_use[PTK_FRAME_TABLE], 1);
	assert_int_equal(st.in_use[PTK_FRAME_BATCH], 1);
	assert_int_equal(st.in_use[PTK_FRAME_HUGE], 0);
	assert_int_equal(st.free, 1020);
	assert_int_equal(st.allocs, 4);
	assert_int_equal(st.frees, 0);
	assert_int_equal(st.alloc_failures, 0);
	assert_consistent(ctx);

	/* Dirty a frame, free it, get it back zeroed. */
	memset(ptk_frame_host(ctx, d), 0x5a, PTK_PAGE_SIZE);
	ptk_frame_free(ctx, t);
	ptk_frame_free(ctx, b);
	ptk_frame_put(ctx, d);   /* last reference: freed */
	assert_int_equal(d->type, PTK_FRAME_FREE);
	assert_int_equal(d->refcount, 0);
	stats(ctx, &st);
	assert_int_equal(st.in_use[PTK_FRAME_DATA], 1);
	assert_int_equal(st.in_use[PTK_FRAME_TABLE], 0);
	assert_int_equal(st.in_use[PTK_FRAME_BATCH], 0);
	assert_int_equal(st.frees, 3);
	assert_consistent(ctx);

	struct ptk_frame *again[8];
	for (int i = 0; i < 8; i++) {
		again[i] = ptk_frame_alloc(ctx, PTK_FRAME_DATA, true);
		assert_non_null(again[i]);
		p = ptk_frame_host(ctx, again[i]);
		for (unsigned k = 0; k < PTK_PAGE_SIZE; k++)
			assert_int_equal(p[k], 0);
	}
	for (int i = 0; i < 8; i++)
		ptk_frame_put(ctx, again[i]);
	ptk_frame_put(ctx, d2);
	test_teardown(ctx, NULL);
}

static void pfn_frame_host_roundtrip(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = ctx_one_shard(POOL_4M);
	struct ptk_pool_stats st;
	stats(ctx, &st);
	uint8_t *base = ptk_pfn_host(ctx, 0);
	assert_non_null(base);
	for (uint64_t pfn = 0; pfn < st.capacity; pfn += 97) {
		struct ptk_frame *f = ptk_pfn_to_frame(ctx, pfn);
		assert_non_null(f);
		assert_int_equal(ptk_frame_pfn(ctx, f), pfn);
		assert_ptr_equal(ptk_frame_host(ctx, f), ptk_pfn_host(ctx, pfn));
		assert_ptr_equal(ptk_pfn_host(ctx, pfn), base + pfn * PTK_PAGE_SIZE);
	}
	uint64_t last = st.capacity - 1;
	assert_non_null(ptk_pfn_to_frame(ctx, last));
	assert_non_null(ptk_pfn_host(ctx, last));
	assert_null(ptk_pfn_to_frame(ctx, st.capacity));
	assert_null(ptk_pfn_host(ctx, st.capacity));
	assert_null(ptk_pfn_to_frame(ctx, UINT64_MAX));
	assert_null(ptk_pfn_host(ctx, UINT64_MAX));
	assert_null(ptk_pfn_to_frame(ctx, UINT64_C(1) << 39));

	/* Allocated frames: round trips and host memory is usable. */
	struct ptk_frame *f = ptk_frame_alloc(ctx, PTK_FRAME_DATA, true);
	uint64_t pfn = ptk_frame_pfn(ctx, f);
	assert_true(pfn < st.capacity);
	assert_ptr_equal(ptk_pfn_to_frame(ctx, pfn), f);
	uint8_t *h = ptk_frame_host(ctx, f);
	h[0] = 1;
	h[PTK_PAGE_SIZE - 1] = 2;
	assert_int_equal(((uint8_t *)ptk_pfn_host(ctx, pfn))[PTK_PAGE_SIZE - 1], 2);
	ptk_frame_put(ctx, f);
	test_teardown(ctx, NULL);
}

static void exhaustion(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = ctx_one_shard(POOL_4M);
	static struct ptk_frame *f[1024];
	for (unsigned i = 0; i < 1024; i++) {
		f[i] = ptk_frame_alloc(ctx, i % 3 == 0 ? PTK_FRAME_TABLE : PTK_FRAME_DATA,
				       false);
		assert_non_null(f[i]);
	}
	/* All distinct. */
	for (unsigned i = 1; i < 1024; i++)
		assert_true(f[i] != f[i - 1]);
	struct ptk_pool_stats before, st;
	stats(ctx, &before);
	assert_int_equal(before.free, 0);
	assert_int_equal(before.allocs, 1024);
	assert_consistent(ctx);

	/* Exhausted: NULL for every kind, counts unchanged except failures. */
	assert_null(ptk_frame_alloc(ctx, PTK_FRAME_DATA, true));
	assert_null(ptk_frame_alloc(ctx, PTK_FRAME_TABLE, false));
	assert_null(ptk_frame_alloc(ctx, PTK_FRAME_BATCH, false));
	assert_null(ptk_frame_alloc_huge(ctx));
	stats(ctx, &st);
	assert_int_equal(st.free, 0);
	assert_int_equal(st.allocs, before.allocs);
	assert_int_equal(st.frees, before.frees);
	assert_int_equal(st.alloc_failures, before.alloc_failures + 4);
	for (unsigned t = 0; t < PTK_FRAME_NR_TYPES; t++)
		assert_int_equal(st.in_use[t], before.in_use[t]);
	assert_consistent(ctx);

	/* One free makes exactly one allocation possible again. */
	ptk_frame_free(ctx, f[5]);
	f[5] = ptk_frame_alloc(ctx, PTK_FRAME_DATA, false);
	assert_non_null(f[5]);
	assert_null(ptk_frame_alloc(ctx, PTK_FRAME_DATA, false));
	assert_consistent(ctx);

	for (unsigned i = 0; i < 1024; i++) {
		if (f[i]->type == PTK_FRAME_DATA)
			ptk_frame_put(ctx, f[i]);
		else
			ptk_frame_free(ctx, f[i]);
	}
	test_teardown(ctx, NULL);
}

static void exhaustion_many_shards(void **state)
{
	(void)state;
	/* Default shards: whatever CPU we land on, nothing is lost and the
	 * counters stay exact. */
	struct ptk_ctx *ctx = test_ctx(POOL_4M);
	static struct ptk_frame *f[1024];
	unsigned n = 0;
	while (n < 1024 && (f[n] = ptk_frame_alloc(ctx, PTK_FRAME_DATA, false)))
		n++;
	assert_true(n > 0);
	assert_consistent(ctx);
	while (n)
		ptk_frame_put(ctx, f[--n]);
	test_teardown(ctx, NULL);
}

/* Move the calling thread to @cpu; false if that CPU is not available. */
static bool pin_to(int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set) == 0 && sched_getcpu() == cpu;
}

static void exhaustion_steals_from_other_caches(void **state)
{
	(void)state;
	cpu_set_t saved;
	sched_getaffinity(0, sizeof(saved), &saved);
	if (!pin_to(0) || !pin_to(1)) {
		sched_setaffinity(0, sizeof(saved), &saved);
		skip();
	}
	/* Fill CPU 0's cache with free frames, then exhaust the pool from
	 * CPU 1: every frame must still be allocatable. */
	pin_to(0);
	struct ptk_ctx *ctx = test_ctx(POOL_4M);
	struct ptk_pool_stats st;
	ptk_pool_stats(ctx, &st);
	static struct ptk_frame *f[1024];
	unsigned n = 0;
	for (; n < 32; n++)
		assert_non_null(f[n] = ptk_frame_alloc(ctx, PTK_FRAME_DATA, false));
	while (n)
		ptk_frame_put(ctx, f[--n]);
	pin_to(1);
	while (n < 1024 && (f[n] = ptk_frame_alloc(ctx, PTK_FRAME_DATA, false)))
		n++;
	assert_int_equal(n, st.capacity);
	while (n)
		ptk_frame_put(ctx, f[--n]);
	sched_setaffinity(0, sizeof(saved), &saved);
	test_teardown(ctx, NULL);
}

static void huge_alloc_free(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = ctx_one_shard(POOL_4M);
	/* Dirty the whole pool first so zeroing is observable. */
	memset(ptk_pfn_host(ctx, 0), 0x77, POOL_4M);

	struct ptk_frame *h = ptk_frame_alloc_huge(ctx);
	assert_non_null(h);
	uint64_t pfn = ptk_frame_pfn(ctx, h);
	assert_int_equal(pfn % 512, 0);
	assert_int_equal(h->type, PTK_FRAME_HUGE);
	assert_int_equal(h->refcount, 1);
	for (unsigned i = 1; i < 512; i++) {
		struct ptk_frame *t = ptk_pfn_to_frame(ctx, pfn + i);
		assert_ptr_equal(t, h + i);      /* contiguous descriptors */
		assert_int_equal(t->type, PTK_FRAME_HUGE_TAIL);
		assert_ptr_equal(ptk_pfn_host(ctx, pfn + i),
				 (uint8_t *)ptk_frame_host(ctx, h) + i * PTK_PAGE_SIZE);
	}
	const uint8_t *p = ptk_frame_host(ctx, h);
	for (uint64_t i = 0; i < PTK_HUGE_2M; i += 61)
		assert_int_equal(p[i], 0);
	assert_int_equal(p[PTK_HUGE_2M - 1], 0);
	assert_int_equal(((uintptr_t)p - (uintptr_t)ptk_pfn_host(ctx, 0)) % PTK_HUGE_2M, 0);

	struct ptk_pool_stats st;
	stats(ctx, &st);
	assert_int_equal(st.huge_in_use, 1);
	assert_int_equal(st.in_use[PTK_FRAME_HUGE], 512);
	assert_int_equal(st.in_use[PTK_FRAME_HUGE_TAIL], 0);
	assert_int_equal(st.free, 512);
	assert_int_equal(st.allocs, 512);
	assert_consistent(ctx);

	/* The second chunk: a second huge frame; then none left. */
	struct ptk_frame *h2 = ptk_frame_alloc_huge(ctx);
	assert_non_null(h2);
	assert_int_equal(ptk_frame_pfn(ctx, h2) % 512, 0);
	assert_true(h2 != h);
	assert_null(ptk_frame_alloc_huge(ctx));
	assert_null(ptk_frame_alloc(ctx, PTK_FRAME_DATA, false));
	stats(ctx, &st);
	assert_int_equal(st.huge_in_use, 2);
	assert_int_equal(st.free, 0);
	assert_int_equal(st.alloc_failures, 2);
	assert_consistent(ctx);

	/* A reference through a tail counts on the head; putting a tail
	 * drops the head's reference. */
	ptk_frame_get(h2);
	ptk_frame_put(ctx, ptk_pfn_to_frame(ctx, ptk_frame_pfn(ctx, h2) + 100));
	assert_int_equal(h2->refcount, 1);
	assert_int_equal(h2->type, PTK_FRAME_HUGE);
	ptk_frame_put(ctx, ptk_pfn_to_frame(ctx, ptk_frame_pfn(ctx, h2) + 511));
	assert_int_equal(h2->type, PTK_FRAME_FREE);
	for (unsigned i = 1; i < 512; i++)
		assert_int_equal(h2[i].type, PTK_FRAME_FREE);
	stats(ctx, &st);
	assert_int_equal(st.huge_in_use, 1);
	assert_int_equal(st.free, 512);
	assert_consistent(ctx);

	/* The freed chunk is whole again: usable as huge once more. */
	struct ptk_frame *h3 = ptk_frame_alloc_huge(ctx);
	assert_ptr_equal(h3, h2);
	ptk_frame_free(ctx, h3);
	ptk_frame_put(ctx, h);
	stats(ctx, &st);
	assert_int_equal(st.huge_in_use, 0);
	assert_int_equal(st.in_use[PTK_FRAME_HUGE], 0);
	test_teardown(ctx, NULL);
}

static void huge_after_split(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = ctx_one_shard(POOL_4M);
	/* A small allocation splits one chunk for good. */
	struct ptk_frame *s = ptk_frame_alloc(ctx, PTK_FRAME_DATA, false);
	assert_non_null(s);
	struct ptk_frame *h = ptk_frame_alloc_huge(ctx);
	assert_non_null(h);
	assert_int_equal(ptk_frame_pfn(ctx, h) / 512 != ptk_frame_pfn(ctx, s) / 512, 1);
	assert_null(ptk_frame_alloc_huge(ctx));
	ptk_frame_put(ctx, s);
	/* Still split: small frames never rejoin a whole chunk. */
	assert_null(ptk_frame_alloc_huge(ctx));
	/* But the 511 + 1 small frames are all usable. */
	static struct ptk_frame *f[512];
	for (unsigned i = 0; i < 512; i++)
		assert_non_null(f[i] = ptk_frame_alloc(ctx, PTK_FRAME_DATA, false));
	assert_null(ptk_frame_alloc(ctx, PTK_FRAME_DATA, false));
	assert_consistent(ctx);
	for (unsigned i = 0; i < 512; i++)
		ptk_frame_put(ctx, f[i]);
	ptk_frame_put(ctx, h);
	test_teardown(ctx, NULL);
}

static void refcounts(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = ctx_one_shard(POOL_4M);
	struct ptk_frame *f = ptk_frame_alloc(ctx, PTK_FRAME_DATA, true);
	assert_int_equal(f->refcount, 1);
	ptk_frame_get(f);
	assert_int_equal(f->refcount, 2);
	assert_true(ptk_frame_try_get(f));
	assert_int_equal(f->refcount, 3);
	ptk_frame_put(ctx, f);
	ptk_frame_put(ctx, f);
	assert_int_equal(f->refcount, 1);
	assert_int_equal(f->type, PTK_FRAME_DATA);
	struct ptk_pool_stats st;
	stats(ctx, &st);
	assert_int_equal(st.in_use[PTK_FRAME_DATA], 1);
	ptk_frame_put(ctx, f);
	/* Freed: refcount 0, try_get refuses it and leaves it at 0. */
	assert_int_equal(f->refcount, 0);
	assert_int_equal(f->type, PTK_FRAME_FREE);
	assert_false(ptk_frame_try_get(f));
	assert_int_equal(f->refcount, 0);
	stats(ctx, &st);
	assert_int_equal(st.in_use[PTK_FRAME_DATA], 0);

	/* Non-data frames have refcount 0: try_get fails on them too. */
	struct ptk_frame *b = ptk_frame_alloc(ctx, PTK_FRAME_BATCH, false);
	assert_false(ptk_frame_try_get(b));
	assert_int_equal(b->refcount, 0);
	ptk_frame_free(ctx, b);

	/* Huge head: try_get works on it. */
	struct ptk_frame *h = ptk_frame_alloc_huge(ctx);
	assert_true(ptk_frame_try_get(h));
	assert_int_equal(h->refcount, 2);
	ptk_frame_put(ctx, h);
	ptk_frame_put(ctx, h);
	assert_false(ptk_frame_try_get(h));
	test_teardown(ctx, NULL);
}

/* ---- failure injection --------------------------------------------------- */

static void inject_nth_data(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = ctx_one_shard(POOL_4M);
	struct ptk_frame *f[8];
	assert_int_equal(ptk_ctx_inject_failure(ctx, PTK_INJECT_DATA, 3), 0);
	assert_non_null(f[0] = ptk_frame_alloc(ctx, PTK_FRAME_DATA, false));
	/* Other kinds do not count. */
	assert_non_null(f[1] = ptk_frame_alloc(ctx, PTK_FRAME_TABLE, false));
	assert_non_null(f[2] = ptk_frame_alloc(ctx, PTK_FRAME_BATCH, false));
	assert_non_null(f[3] = ptk_frame_alloc(ctx, PTK_FRAME_DATA, false));
	struct ptk_pool_stats before, st;
	stats(ctx, &before);
	assert_null(ptk_frame_alloc(ctx, PTK_FRAME_DATA, false));   /* the 3rd */
	stats(ctx, &st);
	assert_int_equal(st.alloc_failures, before.alloc_failures + 1);
	assert_int_equal(st.allocs, before.allocs);
	assert_int_equal(st.free, before.free);
	/* Once only. */
	assert_non_null(f[4] = ptk_frame_alloc(ctx, PTK_FRAME_DATA, false));
	assert_non_null(f[5] = ptk_frame_alloc(ctx, PTK_FRAME_DATA, false));
	assert_consistent(ctx);
	ptk_frame_put(ctx, f[0]);
	ptk_frame_free(ctx, f[1]);
	ptk_frame_free(ctx, f[2]);
	ptk_frame_put(ctx, f[3]);
	ptk_frame_put(ctx, f[4]);
	ptk_frame_put(ctx, f[5]);
	test_teardown(ctx, NULL);
}

static void inject_each_kind(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = ctx_one_shard(POOL_4M);
	static const struct { unsigned kind; enum ptk_frame_type type; } k[] = {
		{ PTK_INJECT_DATA, PTK_FRAME_DATA },
		{ PTK_INJECT_TABLE, PTK_FRAME_TABLE },
		{ PTK_INJECT_BATCH, PTK_FRAME_BATCH },
	};
	for (unsigned i = 0; i < 3; i++) {
		for (long nth = 1; nth <= 4; nth++) {
			ptk_ctx_inject_failure(ctx, k[i].kind, nth);
			struct ptk_frame *got[6];
			for (long a = 1; a <= 6; a++) {
				/* Allocations of the other kinds never fail. */
				for (unsigned j = 0; j < 3; j++) {
					if (j == i)
						continue;
					struct ptk_frame *o = ptk_frame_alloc(ctx, k[j].type, false);
					assert_non_null(o);
					if (k[j].type == PTK_FRAME_DATA)
						ptk_frame_put(ctx, o);
					else
						ptk_frame_free(ctx, o);
				}
				got[a - 1] = ptk_frame_alloc(ctx, k[i].type, false);
				if (a == nth)
					assert_null(got[a - 1]);
				else
					assert_non_null(got[a - 1]);
			}
			for (int a = 0; a < 6; a++) {
				if (!got[a])
					continue;
				if (k[i].type == PTK_FRAME_DATA)
					ptk_frame_put(ctx, got[a]);
				else
					ptk_frame_free(ctx, got[a]);
			}
			assert_consistent(ctx);
		}
	}
	/* DATA covers huge frames. */
	ptk_ctx_inject_failure(ctx, PTK_INJECT_DATA, 1);
	assert_null(ptk_frame_alloc_huge(ctx));
	struct ptk_frame *h = ptk_frame_alloc_huge(ctx);
	assert_non_null(h);
	ptk_frame_put(ctx, h);
	/* A mask of kinds: the Nth allocation of any of them. */
	ptk_ctx_inject_failure(ctx, PTK_INJECT_TABLE | PTK_INJECT_BATCH, 2);
	struct ptk_frame *t = ptk_frame_alloc(ctx, PTK_FRAME_TABLE, false);
	assert_non_null(t);
	assert_null(ptk_frame_alloc(ctx, PTK_FRAME_BATCH, false));
	struct ptk_frame *b = ptk_frame_alloc(ctx, PTK_FRAME_BATCH, false);
	assert_non_null(b);
	ptk_frame_free(ctx, t);
	ptk_frame_free(ctx, b);
	test_teardown(ctx, NULL);
}

static void inject_disarm_and_remaining(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = ctx_one_shard(POOL_4M);
	struct ptk_frame *f[4];
	assert_int_equal(ptk_ctx_inject_failure(ctx, PTK_INJECT_DATA, 5), 0);
	f[0] = ptk_frame_alloc(ctx, PTK_FRAME_DATA, false);
	f[1] = ptk_frame_alloc(ctx, PTK_FRAME_DATA, false);
	/* Disarm: returns what was left (5 - 2). */
	assert_int_equal(ptk_ctx_inject_failure(ctx, PTK_INJECT_DATA, 0), 3);
	/* Disarmed: nothing left any more. */
	assert_int_equal(ptk_ctx_inject_failure(ctx, PTK_INJECT_DATA, 0), 0);
	for (int i = 0; i < 8; i++) {
		struct ptk_frame *x = ptk_frame_alloc(ctx, PTK_FRAME_DATA, false);
		assert_non_null(x);
		ptk_frame_put(ctx, x);
	}
	/* Re-arm replaces the previous setting. */
	ptk_ctx_inject_failure(ctx, PTK_INJECT_DATA, 4);
	assert_int_equal(ptk_ctx_inject_failure(ctx, PTK_INJECT_DATA, 1), 4);
	assert_null(ptk_frame_alloc(ctx, PTK_FRAME_DATA, false));
	/* Fired: nothing remains. */
	assert_int_equal(ptk_ctx_inject_failure(ctx, PTK_INJECT_DATA, 0), 0);
	/* No kinds: nothing armed. */
	ptk_ctx_inject_failure(ctx, 0, 1);
	f[2] = ptk_frame_alloc(ctx, PTK_FRAME_DATA, false);
	assert_non_null(f[2]);
	/* Negative count: disarm. */
	ptk_ctx_inject_failure(ctx, PTK_INJECT_ALL, -1);
	f[3] = ptk_frame_alloc(ctx, PTK_FRAME_DATA, false);
	assert_non_null(f[3]);
	for (int i = 0; i < 4; i++)
		ptk_frame_put(ctx, f[i]);
	test_teardown(ctx, NULL);
}

static void alloc_count(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = ctx_one_shard(POOL_4M);
	ptk_ctx_alloc_count(ctx, PTK_INJECT_DATA, 1);
	struct ptk_frame *a = ptk_frame_alloc(ctx, PTK_FRAME_DATA, false);
	struct ptk_frame *t = ptk_frame_alloc(ctx, PTK_FRAME_TABLE, false);
	struct ptk_frame *h = ptk_frame_alloc_huge(ctx);
	assert_int_equal(ptk_ctx_alloc_count(ctx, PTK_INJECT_DATA, 0), 2);
	/* Reset returns the count so far and starts over for new kinds. */
	assert_int_equal(ptk_ctx_alloc_count(ctx, PTK_INJECT_ALL, 1), 2);
	assert_int_equal(ptk_ctx_alloc_count(ctx, PTK_INJECT_ALL, 0), 0);
	struct ptk_frame *b = ptk_frame_alloc(ctx, PTK_FRAME_BATCH, false);
	struct ptk_frame *t2 = ptk_frame_alloc(ctx, PTK_FRAME_TABLE, false);
	assert_int_equal(ptk_ctx_alloc_count(ctx, PTK_INJECT_ALL, 0), 2);
	/* Failed attempts count too: they are allocations the code made. */
	ptk_ctx_inject_failure(ctx, PTK_INJECT_DATA, 1);
	assert_null(ptk_frame_alloc(ctx, PTK_FRAME_DATA, false));
	assert_int_equal(ptk_ctx_alloc_count(ctx, PTK_INJECT_ALL, 1), 3);
	ptk_frame_put(ctx, a);
	ptk_frame_put(ctx, h);
	ptk_frame_free(ctx, t);
	ptk_frame_free(ctx, t2);
	ptk_frame_free(ctx, b);
	/* Frees are not allocations. */
	assert_int_equal(ptk_ctx_alloc_count(ctx, 0, 1), 0);
	test_teardown(ctx, NULL);
}

static void debug_build_flag(void **state)
{
	(void)state;
#ifdef PTK_DEBUG
	assert_true(ptk_debug_build());
#else
	/* The tests are built without PTK_DEBUG; the library may be either.
	 * Only check the call works. */
	(void)ptk_debug_build();
#endif
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(ctx_config_defaults),
		cmocka_unit_test(ctx_pool_rounding),
		cmocka_unit_test(ctx_bad_configs),
		cmocka_unit_test(as_create_bad_args),
		cmocka_unit_test(alloc_free_types),
		cmocka_unit_test(pfn_frame_host_roundtrip),
		cmocka_unit_test(exhaustion),
		cmocka_unit_test(exhaustion_many_shards),
		cmocka_unit_test(exhaustion_steals_from_other_caches),
		cmocka_unit_test(huge_alloc_free),
		cmocka_unit_test(huge_after_split),
		cmocka_unit_test(refcounts),
		cmocka_unit_test(inject_nth_data),
		cmocka_unit_test(inject_each_kind),
		cmocka_unit_test(inject_disarm_and_remaining),
		cmocka_unit_test(alloc_count),
		cmocka_unit_test(debug_build_flag),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
