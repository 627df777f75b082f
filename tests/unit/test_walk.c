/*
 * test_walk.c - lockless walks, fast pins, huge-leaf split and collapse,
 * empty-table reclaim, page-table pages freed by RCU (batched and single),
 * and the old walker design (IPI per huge leaf).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include "helpers.h"

#define RW (PTK_PROT_READ | PTK_PROT_WRITE)

static struct ptk_ctx *ctx_mode(uint64_t pool, enum ptk_walk_mode mode)
{
	struct ptk_ctx_config cfg;
	ptk_ctx_config_default(&cfg);
	cfg.pool_bytes = pool;
	cfg.walk_mode = mode;
	struct ptk_ctx *ctx = NULL;
	assert_int_equal(ptk_ctx_create(&cfg, &ctx), 0);
	return ctx;
}

static uint64_t table_pages(struct ptk_as *as)
{
	struct ptk_as_stats st;
	ptk_as_stats(as, &st);
	assert_int_equal(st.table_bytes, st.table_pages * 4096);
	return st.table_pages;
}

/* A pin keeps its frame allocated (contents intact) across an unmap; the
 * unpin frees it. */
static void pin_outlives_unmap(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = test_ctx(0);
	struct ptk_as *as;
	assert_int_equal(ptk_as_create(ctx, 0, &as), 0);
	uint64_t va = 0;
	assert_int_equal(ptk_map_anon(as, &va, 64 * KiB, RW, 0), 0);
	uint64_t pfns[16];
	/* Nothing faulted yet: the fast pin pins nothing, the slow path
	 * faults in. */
	assert_int_equal(ptk_pin_fast(as, va, 16, PTK_ACCESS_WRITE, pfns), 0);
	assert_int_equal(ptk_pin(as, va, 16, PTK_ACCESS_WRITE, pfns), 0);
	for (unsigned i = 0; i < 16; i++) {
		struct ptk_xlate x;
		assert_int_equal(ptk_translate(as, va + i * 4096, &x), 0);
		assert_int_equal(x.pfn, pfns[i]);
		*(uint64_t *)x.host = 0x1234 + i;
	}
	/* Fast pin of faulted pages pins all of them. */
	uint64_t again[16];
	assert_int_equal(ptk_pin_fast(as, va, 16, PTK_ACCESS_READ, again), 16);
	assert_memory_equal(pfns, again, sizeof(pfns));
	ptk_unpin(ctx, again, 16);
	assert_int_equal(ptk_unmap(as, va, 64 * KiB), 0);
	ptk_ctx_quiesce(ctx);
	struct ptk_pool_stats ps;
	ptk_pool_stats(ctx, &ps);
	assert_int_equal(ps.in_use[PTK_FRAME_DATA], 16);   /* still pinned */
	for (unsigned i = 0; i < 16; i++)
		assert_int_equal(*(uint64_t *)ptk_pfn_host(ctx, pfns[i]), 0x1234 + i);
	ptk_unpin(ctx, pfns, 16);
	ptk_pool_stats(ctx, &ps);
	assert_int_equal(ps.in_use[PTK_FRAME_DATA], 0);
	test_teardown(ctx, as);
}

/* The inline lookup returns exactly what ptk_walk() returns, for mapped
 * and unmapped addresses, 4 KiB, 2 MiB and 1 GiB leaves and non-canonical
 * addresses. */
static void inline_lookup_matches_walk(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = test_ctx(0);
	struct ptk_as *as;
	assert_int_equal(ptk_as_create(ctx, 0, &as), 0);
	uint64_t anon = 0, sp = 0;
	assert_int_equal(ptk_map_anon(as, &anon, 4 * MiB, RW, PTK_MAP_POPULATE), 0);
	/* 1 GiB + 2 MiB + 4 KiB leaves of a special mapping. */
	assert_int_equal(ptk_map_special(as, &sp, GiB + 2 * MiB + 4 * KiB, 1u << 18, RW,
					 PTK_MAP_HUGE), 0);
	struct ptk_lookup_root r;
	assert_int_equal(ptk_lookup_root(NULL, &r), -EINVAL);
	assert_int_equal(ptk_lookup_root(as, NULL), -EINVAL);
	assert_int_equal(ptk_lookup_root(as, &r), 0);
	uint64_t probes[] = { anon, anon + 4 * MiB - 1, anon + 4 * MiB, sp, sp + GiB - 8,
			      sp + GiB + 12345, sp + GiB + 2 * MiB + 100, 0,
			      UINT64_C(1) << 63, ptk_as_user_end(as) - 4096 };
	unsigned levels_seen = 0;
	for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
		struct ptk_xlate a, b;
		memset(&a, 0xa5, sizeof(a));
		memset(&b, 0xa5, sizeof(b));
		ptk_walk_begin(as);
		int ra = ptk_walk(as, probes[i], &a);
		int rb = ptk_lookup(&r, probes[i], &b);
		ptk_walk_end(as);
		assert_int_equal(ra, rb);
		if (ra == 0) {
			assert_memory_equal(&a, &b, sizeof(a));
			levels_seen |= 1u << a.level;
		}
	}
	assert_int_equal(levels_seen, 7);   /* 4 KiB, 2 MiB and 1 GiB leaves */
	test_teardown(ctx, as);
}

/* Pins refuse what they must: special leaves, write to read-only,
 * unmapped addresses; and leave nothing pinned on failure. */
static void pin_refusals(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = test_ctx(0);
	struct ptk_as *as;
	assert_int_equal(ptk_as_create(ctx, 0, &as), 0);
	uint64_t va = 0, sva = 0, pfns[4];
	assert_int_equal(ptk_map_anon(as, &va, 16 * KiB, PTK_PROT_READ, 0), 0);
	assert_int_equal(ptk_map_special(as, &sva, 16 * KiB, 1u << 30, RW, 0), 0);
	assert_int_equal(ptk_pin_fast(as, sva, 4, PTK_ACCESS_READ, pfns), 0);
	assert_int_equal(ptk_pin(as, sva, 4, PTK_ACCESS_READ, pfns), -EFAULT);
	assert_int_equal(ptk_pin(as, va, 4, PTK_ACCESS_WRITE, pfns), -EACCES);
	assert_int_equal(ptk_pin(as, va, 4, PTK_ACCESS_READ, pfns), 0);
	assert_int_equal(ptk_pin_fast(as, va, 4, PTK_ACCESS_WRITE, pfns + 0), 0);
	ptk_unpin(ctx, pfns, 4);
	/* Range running past the mapping: all or nothing. */
	assert_int_equal(ptk_pin(as, va, 8, PTK_ACCESS_READ, pfns), -EFAULT);
	assert_int_equal(ptk_unmap(as, va, 16 * KiB), 0);
	ptk_ctx_quiesce(ctx);
	struct ptk_pool_stats ps;
	ptk_pool_stats(ctx, &ps);
	assert_int_equal(ps.in_use[PTK_FRAME_DATA], 0);
	test_teardown(ctx, as);
}

/* Anonymous huge leaf: split to 512 small leaves of the same huge frame,
 * pin a subpage, collapse back (only when all 512 agree). */
static void split_collapse_anon(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = test_ctx(0);
	struct ptk_as *as;
	assert_int_equal(ptk_as_create(ctx, 0, &as), 0);
	uint64_t va = 0;
	assert_int_equal(ptk_map_anon(as, &va, 4 * MiB, RW, PTK_MAP_HUGE), 0);
	assert_int_equal(ptk_fault(as, va, PTK_ACCESS_WRITE), 0);
	struct ptk_xlate x;
	assert_int_equal(ptk_translate(as, va + 5 * 4096, &x), 0);
	assert_int_equal(x.level, 1);
	uint64_t pfn0 = x.pfn - 5;
	*(uint64_t *)x.host = 77;
	uint64_t t0 = table_pages(as);
	assert_int_equal(ptk_collapse(as, va), -EEXIST);
	assert_int_equal(ptk_split(as, va + 5 * 4096), 0);
	assert_int_equal(table_pages(as), t0 + 1);
	assert_int_equal(ptk_split(as, va + 5 * 4096), -ENOENT);
	assert_int_equal(ptk_translate(as, va + 5 * 4096, &x), 0);
	assert_int_equal(x.level, 0);
	assert_int_equal(x.pfn, pfn0 + 5);
	assert_int_equal(*(uint64_t *)x.host, 77);
	uint64_t pin;
	assert_int_equal(ptk_pin_fast(as, va + 5 * 4096, 1, PTK_ACCESS_WRITE, &pin), 1);
	assert_int_equal(ptk_collapse(as, va), 0);
	assert_int_equal(table_pages(as), t0);
	assert_int_equal(ptk_translate(as, va + 5 * 4096, &x), 0);
	assert_int_equal(x.level, 1);
	assert_int_equal(*(uint64_t *)x.host, 77);
	/* A dropped page leaves a hole: no collapse. */
	assert_int_equal(ptk_drop(as, va + 8192, 4096), 0);
	assert_int_equal(ptk_collapse(as, va), -EBUSY);
	assert_int_equal(ptk_collapse(as, va + 4096), -EINVAL);

	ptk_unpin(ctx, &pin, 1);
	struct ptk_as_stats st;
	ptk_as_stats(as, &st);
	assert_int_equal(st.rss_frames, 511);
	/* A protection change on part of a block splits the region, and
	 * regions are not merged back: the block spans two regions, even
	 * with the same protection again, and is not collapsible, though its
	 * 512 leaves agree.  (No leaf may straddle a region boundary: a
	 * clone would meet it.) */
	uint64_t vb = va + 2 * MiB;
	assert_int_equal(ptk_fault(as, vb, PTK_ACCESS_WRITE), 0);
	assert_int_equal(ptk_split(as, vb), 0);
	assert_int_equal(ptk_protect(as, vb, 64 * KiB, PTK_PROT_READ), 0);
	assert_int_equal(ptk_collapse(as, vb), -EINVAL);
	assert_int_equal(ptk_protect(as, vb, 64 * KiB, RW), 0);
	assert_int_equal(ptk_collapse(as, vb), -EINVAL);
	struct ptk_as *child;
	assert_int_equal(ptk_as_clone(as, &child), 0);
	ptk_as_destroy(child);
	test_teardown(ctx, as);
}

/* Small anonymous pages from the ordinary pool are not contiguous in a
 * huge frame: never collapsed. */
static void collapse_refuses_scattered(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = test_ctx(0);
	struct ptk_as *as;
	assert_int_equal(ptk_as_create(ctx, 0, &as), 0);
	uint64_t va = 0;
	assert_int_equal(ptk_map_anon(as, &va, 4 * MiB, RW, PTK_MAP_HUGE), 0);
	uint64_t base = (va + 2 * MiB - 1) & ~(2 * MiB - 1);
	assert_int_equal(ptk_map_anon(as, &base, 2 * MiB, RW, PTK_MAP_FIXED), 0);
	assert_int_equal(ptk_populate(as, base, 2 * MiB, PTK_ACCESS_WRITE), 0);
	assert_int_equal(ptk_collapse(as, base), -EBUSY);
	test_teardown(ctx, as);
}

/* Special mappings: 1 GiB leaf -> 2 MiB leaves -> 4 KiB leaves and back. */
static void split_collapse_special(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = test_ctx(0);
	struct ptk_as *as;
	assert_int_equal(ptk_as_create(ctx, 0, &as), 0);
	uint64_t va = 0, pfn = UINT64_C(1) << 28;   /* 1 GiB aligned, outside the pool */
	assert_int_equal(ptk_map_special(as, &va, 2 * GiB, pfn, RW, PTK_MAP_HUGE), 0);
	struct ptk_xlate x;
	uint64_t a = va + GiB + 3 * MiB + 12 * 4096;
	assert_int_equal(ptk_translate(as, a, &x), 0);
	assert_int_equal(x.level, 2);
	assert_int_equal(x.pfn, pfn + ((a - va) >> 12));
	assert_null(x.host);
	assert_int_equal(ptk_split(as, a), 0);
	assert_int_equal(ptk_translate(as, a, &x), 0);
	assert_int_equal(x.level, 1);
	assert_int_equal(ptk_split(as, a), 0);
	assert_int_equal(ptk_translate(as, a, &x), 0);
	assert_int_equal(x.level, 0);
	assert_int_equal(x.pfn, pfn + ((a - va) >> 12));
	uint64_t t = table_pages(as);
	assert_int_equal(ptk_collapse(as, a & ~(2 * MiB - 1)), 0);
	assert_int_equal(table_pages(as), t - 1);
	assert_int_equal(ptk_translate(as, a, &x), 0);
	assert_int_equal(x.level, 1);
	assert_int_equal(x.pfn, pfn + ((a - va) >> 12));
	assert_int_equal(ptk_unmap(as, va, 2 * GiB), 0);
	assert_int_equal(table_pages(as), 1);
	test_teardown(ctx, as);
}

/* PT_RECLAIM at small scale: one page per 2 MiB, dropped in 2 MiB steps,
 * leaves only the root. */
static void reclaim_on_drop(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = test_ctx(0);
	struct ptk_as *as;
	assert_int_equal(ptk_as_create(ctx, 0, &as), 0);
	uint64_t va = 0, len = 2 * GiB;
	assert_int_equal(ptk_map_anon(as, &va, len, RW, 0), 0);
	for (uint64_t o = 0; o < len; o += 2 * MiB)
		assert_int_equal(ptk_fault(as, va + o, PTK_ACCESS_WRITE), 0);
	uint64_t before = table_pages(as);
	assert_true(before >= 1024 + 1);
	/* Partial drop keeps a table that still maps something. */
	assert_int_equal(ptk_fault(as, va + 4096, PTK_ACCESS_WRITE), 0);
	assert_int_equal(ptk_drop(as, va, 4096), 0);
	assert_int_equal(table_pages(as), before);
	for (uint64_t o = 0; o < len; o += 2 * MiB)
		assert_int_equal(ptk_drop(as, va + o, 2 * MiB), 0);
	assert_int_equal(table_pages(as), 1);
	struct ptk_xlate x;
	assert_int_equal(ptk_translate(as, va, &x), -EFAULT);
	/* Region stays: faults work again. */
	assert_int_equal(ptk_fault(as, va, PTK_ACCESS_WRITE), 0);
	test_teardown(ctx, as);
}

/* Tables freed one by one when no batch page can be had (single RCU
 * callbacks) are accounted for like batched ones. */
static void single_table_free(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = test_ctx(0);
	struct ptk_as *as;
	assert_int_equal(ptk_as_create(ctx, 0, &as), 0);
	uint64_t va = 0;
	assert_int_equal(ptk_map_anon(as, &va, 64 * MiB, RW, 0), 0);
	for (uint64_t o = 0; o < 64 * MiB; o += 2 * MiB)
		assert_int_equal(ptk_fault(as, va + o, PTK_ACCESS_WRITE), 0);
	/* Fail every batch allocation of the teardown (re-armed each time). */
	for (uint64_t o = 0; o < 64 * MiB; o += 2 * MiB) {
		ptk_ctx_inject_failure(ctx, PTK_INJECT_BATCH, 1);
		assert_int_equal(ptk_drop(as, va + o, 2 * MiB), 0);
	}
	ptk_ctx_inject_failure(ctx, 0, 0);
	assert_int_equal(table_pages(as), 1);
	test_teardown(ctx, as);
}

/* The old design sends one IPI per huge leaf cleared or split; the new one
 * none.  Both give the same translations. */
static void ipi_mode(void **state)
{
	(void)state;
	for (int mode = 0; mode < 2; mode++) {
		struct ptk_ctx *ctx = ctx_mode(64 * MiB, mode ? PTK_WALK_IPI : PTK_WALK_RCU);
		struct ptk_as *as;
		assert_int_equal(ptk_as_create(ctx, 0, &as), 0);
		uint64_t va = 0, pfn = (UINT64_C(1) << 28) + 512;  /* 2 MiB, not 1 GiB aligned */
		assert_int_equal(ptk_map_special(as, &va, 32 * MiB, pfn, RW, PTK_MAP_HUGE), 0);
		struct ptk_xlate x;
		ptk_walk_begin(as);
		assert_int_equal(ptk_walk(as, va + 3 * MiB, &x), 0);
		ptk_walk_end(as);
		assert_int_equal(x.level, 1);
		uint64_t pin;
		assert_int_equal(ptk_pin_fast(as, va, 1, PTK_ACCESS_READ, &pin), 0);
		uint64_t i0 = ptk_ipi_sent();
		assert_int_equal(ptk_split(as, va), 0);
		assert_int_equal(ptk_ipi_sent() - i0, mode ? 1 : 0);
		i0 = ptk_ipi_sent();
		assert_int_equal(ptk_unmap(as, va, 32 * MiB), 0);
		/* 15 huge leaves cleared (the 16th was split). */
		assert_int_equal(ptk_ipi_sent() - i0, mode ? 15 : 0);
		test_teardown(ctx, as);
	}
}

static _Atomic int gp_done;

static void *sync_thread(void *arg)
{
	(void)arg;
	ptk_rcu_synchronize();
	gp_done = 1;
	ptk_thread_unregister();
	return NULL;
}

/* A QSBR-style (online) thread walks with no section of its own; a grace
 * period waits for its quiescent state, and only for that. */
static void qsbr_reader(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = test_ctx(0);
	struct ptk_as *as;
	assert_int_equal(ptk_as_create(ctx, 0, &as), 0);
	uint64_t va = 0;
	assert_int_equal(ptk_map_anon(as, &va, 64 * KiB, RW, PTK_MAP_POPULATE), 0);
	ptk_qsbr_online();
	assert_true(ptk_qsbr_is_online());
	struct ptk_xlate x;
	assert_int_equal(ptk_walk(as, va, &x), 0);     /* inside the long section */
	assert_int_equal(ptk_translate(as, va + 4096, &x), 0);
	gp_done = 0;
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, sync_thread, NULL), 0);
	struct timespec ts = { 0, 50 * 1000 * 1000 };
	nanosleep(&ts, NULL);
	assert_int_equal(gp_done, 0);      /* held up by our online section */
	ptk_quiescent_state();
	pthread_join(t, NULL);
	assert_int_equal(gp_done, 1);
	assert_int_equal(ptk_unmap(as, va, 64 * KiB), 0);
	assert_int_equal(ptk_translate(as, va, &x), -EFAULT);
	ptk_quiescent_state();
	ptk_qsbr_offline();
	assert_false(ptk_qsbr_is_online());
	test_teardown(ctx, as);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(pin_outlives_unmap),
		cmocka_unit_test(pin_refusals),
		cmocka_unit_test(inline_lookup_matches_walk),
		cmocka_unit_test(split_collapse_anon),
		cmocka_unit_test(collapse_refuses_scattered),
		cmocka_unit_test(split_collapse_special),
		cmocka_unit_test(reclaim_on_drop),
		cmocka_unit_test(single_table_free),
		cmocka_unit_test(ipi_mode),
		cmocka_unit_test(qsbr_reader),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
