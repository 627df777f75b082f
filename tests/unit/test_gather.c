/*
 * test_gather.c - the mmu_gather (gather.h) driven directly, and teardown
 * through the address-space API under batch-allocation failures.
 *
 * Data frames come from ptk_frame_alloc(PTK_FRAME_DATA) (refcount 1; the
 * flush drops that reference).  Detached tables come from ptk_table_alloc()
 * (src/internal.h: table frames need their lock initialised, which only
 * the library's internal allocator does).
 */
#include <errno.h>
#include <string.h>
#include "helpers.h"
#include "../../src/internal.h"

#define PG PTK_PAGE_SIZE
#define RW (PTK_PROT_READ | PTK_PROT_WRITE)

static struct ptk_pool_stats pool(struct ptk_ctx *ctx)
{
	struct ptk_pool_stats st;
	ptk_pool_stats(ctx, &st);
	return st;
}

/* Everything but the root of the one address space is back in the pool. */
static void assert_all_frames_free_but_root(struct ptk_ctx *ctx)
{
	ptk_ctx_quiesce(ctx);
	struct ptk_pool_stats st = pool(ctx);
	for (unsigned t = 0; t < PTK_FRAME_NR_TYPES; t++)
		assert_int_equal(st.in_use[t], t == PTK_FRAME_TABLE ? 1 : 0);
	assert_int_equal(st.free, st.capacity - 1);
}

static struct ptk_frame *data_frame(struct ptk_ctx *ctx)
{
	struct ptk_frame *f = ptk_frame_alloc(ctx, PTK_FRAME_DATA, false);
	assert_non_null(f);
	return f;
}

/* Add @n fresh data frames; returns how many were added before the gather
 * said full (== n if it never did). */
static unsigned add_pages(struct ptk_gather *g, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (ptk_gather_add_page(g, data_frame(g->ctx)))
			return i + 1;
	return n;
}

/* Capacity of one batch, measured: pages added after the local array
 * before a second batch is needed. */
static unsigned measure_batch_capacity(struct ptk_ctx *ctx, struct ptk_as *as)
{
	struct ptk_gather g;
	ptk_gather_init(&g, as, false);
	for (unsigned i = 0; i < PTK_GATHER_LOCAL; i++)
		assert_false(ptk_gather_add_page(&g, data_frame(ctx)));
	assert_int_equal(g.stat_batches, 1);
	unsigned cap = 0;
	while (g.stat_batches == 1) {
		assert_false(ptk_gather_add_page(&g, data_frame(ctx)));
		cap++;
		assert_true(cap <= 512);
	}
	ptk_gather_finish(&g);
	return cap;
}

static void local_then_batches(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = test_ctx(0);
	struct ptk_as *as = NULL;
	assert_int_equal(ptk_as_create(ctx, 0, &as), 0);
	struct ptk_gather g;
	ptk_gather_init(&g, as, false);
	assert_ptr_equal(g.as, as);
	assert_ptr_equal(g.ctx, ctx);
	assert_int_equal(g.max, PTK_GATHER_LOCAL);

	/* The local array: no batch. */
	for (unsigned i = 0; i < PTK_GATHER_LOCAL - 1; i++)
		assert_false(ptk_gather_add_page(&g, data_frame(ctx)));
	assert_int_equal(g.stat_batches, 0);
	assert_int_equal(pool(ctx).in_use[PTK_FRAME_BATCH], 0);
	/* Filling it grows to a batch: not full. */
	assert_false(ptk_gather_add_page(&g, data_frame(ctx)));
	assert_int_equal(g.stat_batches, 1);
	assert_int_equal(g.stat_batch_failures, 0);
	assert_int_equal(pool(ctx).in_use[PTK_FRAME_BATCH], 1);
	assert_int_equal(g.nr_pages, PTK_GATHER_LOCAL);

	/* Grow to a second and a third batch. */
	unsigned cap = 0;
	while (g.stat_batches < 3) {
		assert_false(ptk_gather_add_page(&g, data_frame(ctx)));
		cap++;
	}
	assert_int_equal(cap % 2, 0);
	cap /= 2;
	assert_true(cap >= 256 && cap <= 512);   /* one 4 KiB page of pointers */
	assert_int_equal(pool(ctx).in_use[PTK_FRAME_BATCH], 3);
	assert_int_equal(g.stat_pages, PTK_GATHER_LOCAL + 2 * cap);
	assert_int_equal(pool(ctx).in_use[PTK_FRAME_DATA], PTK_GATHER_LOCAL + 2 * cap);

	/* Flush: every page freed; batches kept as spares. */
	ptk_gather_flush(&g);
	struct ptk_pool_stats ps = pool(ctx);
	assert_int_equal(ps.in_use[PTK_FRAME_DATA], 0);
	assert_int_equal(ps.in_use[PTK_FRAME_BATCH], 3);
	assert_int_equal(g.nr_pages, 0);
	assert_int_equal(g.nr, 0);

	/* Again: the spares are reused, no new batch. */
	assert_int_equal(add_pages(&g, PTK_GATHER_LOCAL + 2 * cap + 1),
			 PTK_GATHER_LOCAL + 2 * cap + 1);
	assert_int_equal(g.stat_batches, 3);
	assert_int_equal(pool(ctx).in_use[PTK_FRAME_BATCH], 3);
	/* One more batch beyond the spares. */
	assert_int_equal(add_pages(&g, cap), cap);
	assert_int_equal(g.stat_batches, 4);
	assert_int_equal(g.stat_pages, 2 * (PTK_GATHER_LOCAL + 2 * cap) + 1 + cap);

	/* Finish: flush and release the batches. */
	ptk_gather_finish(&g);
	ps = pool(ctx);
	assert_int_equal(ps.in_use[PTK_FRAME_DATA], 0);
	assert_int_equal(ps.in_use[PTK_FRAME_BATCH], 0);
	assert_int_equal(measure_batch_capacity(ctx, as), cap);
	test_teardown(ctx, as);
}

static void batch_failure(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = test_ctx(0);
	struct ptk_as *as = NULL;
	assert_int_equal(ptk_as_create(ctx, 0, &as), 0);
	unsigned cap = measure_batch_capacity(ctx, as);
	struct ptk_gather g;
	ptk_gather_init(&g, as, false);

	/* No batch for the first growth: full as soon as the local array is. */
	ptk_ctx_inject_failure(ctx, PTK_INJECT_BATCH, 1);
	assert_int_equal(add_pages(&g, 100), PTK_GATHER_LOCAL);
	assert_int_equal(g.stat_batch_failures, 1);
	assert_int_equal(g.stat_batches, 0);
	assert_true(g.batch_failed);
	assert_int_equal(pool(ctx).in_use[PTK_FRAME_DATA], PTK_GATHER_LOCAL);
	ptk_gather_flush(&g);
	assert_int_equal(pool(ctx).in_use[PTK_FRAME_DATA], 0);
	assert_false(g.batch_failed);

	/* After the flush it tries again: a batch this time. */
	assert_int_equal(add_pages(&g, PTK_GATHER_LOCAL + 1), PTK_GATHER_LOCAL + 1);
	assert_int_equal(g.stat_batches, 1);
	/* The second batch fails: full when the first batch is. */
	ptk_ctx_inject_failure(ctx, PTK_INJECT_BATCH, 1);
	assert_int_equal(add_pages(&g, 2 * cap), cap - 1);
	assert_int_equal(g.stat_batch_failures, 2);
	assert_int_equal(pool(ctx).in_use[PTK_FRAME_DATA], PTK_GATHER_LOCAL + cap);
	ptk_gather_flush(&g);
	assert_int_equal(pool(ctx).in_use[PTK_FRAME_DATA], 0);

	/* The gather keeps working with the spare it has. */
	assert_int_equal(add_pages(&g, PTK_GATHER_LOCAL + cap - 1), PTK_GATHER_LOCAL + cap - 1);
	ptk_gather_finish(&g);
	struct ptk_pool_stats ps = pool(ctx);
	assert_int_equal(ps.in_use[PTK_FRAME_DATA], 0);
	assert_int_equal(ps.in_use[PTK_FRAME_BATCH], 0);
	test_teardown(ctx, as);
}

static void cap_max_pages(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = test_ctx(64 * MiB);     /* 16384 frames */
	struct ptk_as *as = NULL;
	assert_int_equal(ptk_as_create(ctx, 0, &as), 0);
	struct ptk_gather g;
	ptk_gather_init(&g, as, false);
	/* Full exactly at the cap. */
	assert_int_equal(add_pages(&g, PTK_GATHER_MAX_PAGES + 1000), PTK_GATHER_MAX_PAGES);
	assert_int_equal(g.nr_pages, PTK_GATHER_MAX_PAGES);
	assert_int_equal(g.stat_batch_failures, 0);
	uint64_t batches = g.stat_batches;
	assert_true(batches >= 1);
	assert_int_equal(pool(ctx).in_use[PTK_FRAME_DATA], PTK_GATHER_MAX_PAGES);
	ptk_gather_flush(&g);
	assert_int_equal(pool(ctx).in_use[PTK_FRAME_DATA], 0);
	/* A second round reuses the spares. */
	assert_int_equal(add_pages(&g, PTK_GATHER_MAX_PAGES + 1000), PTK_GATHER_MAX_PAGES);
	assert_int_equal(g.stat_batches, batches);
	assert_int_equal(g.stat_pages, 2 * PTK_GATHER_MAX_PAGES);
	ptk_gather_finish(&g);
	struct ptk_pool_stats ps = pool(ctx);
	assert_int_equal(ps.in_use[PTK_FRAME_DATA], 0);
	assert_int_equal(ps.in_use[PTK_FRAME_BATCH], 0);
	test_teardown(ctx, as);
}

static void huge_and_shared_pages(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = test_ctx(0);
	struct ptk_as *as = NULL;
	assert_int_equal(ptk_as_create(ctx, 0, &as), 0);
	struct ptk_gather g;
	ptk_gather_init(&g, as, false);
	/* A huge frame with four references, gathered through its tails. */
	struct ptk_frame *h = ptk_frame_alloc_huge(ctx);
	assert_non_null(h);
	uint64_t hp = ptk_frame_pfn(ctx, h);
	for (int i = 0; i < 3; i++)
		ptk_frame_get(h);
	for (unsigned i = 0; i < 4; i++)
		assert_false(ptk_gather_add_page(&g, ptk_pfn_to_frame(ctx, hp + 1 + i)));
	/* A small frame with two references: the flush drops one. */
	struct ptk_frame *f = data_frame(ctx);
	ptk_frame_get(f);
	assert_false(ptk_gather_add_page(&g, f));
	ptk_gather_flush(&g);
	struct ptk_pool_stats ps = pool(ctx);
	assert_int_equal(ps.huge_in_use, 0);
	assert_int_equal(ps.in_use[PTK_FRAME_HUGE], 0);
	assert_int_equal(ps.in_use[PTK_FRAME_DATA], 1);
	assert_int_equal(f->refcount, 1);
	ptk_frame_put(ctx, f);
	ptk_gather_finish(&g);
	test_teardown(ctx, as);
}

static void flush_invalidation_stats(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = test_ctx(0);
	struct ptk_as *as = NULL;
	assert_int_equal(ptk_as_create(ctx, 0, &as), 0);
	struct ptk_gather g;
	ptk_gather_init(&g, as, false);
	assert_true(g.start >= g.end);                /* nothing to invalidate */
	ptk_gather_flush(&g);
	assert_int_equal(g.stat_flushes, 0);
	ptk_gather_note_range(&g, 8 * PG, 9 * PG, 0);
	ptk_gather_note_range(&g, 2 * PG, 3 * PG, 0);
	ptk_gather_note_range(&g, 4 * MiB, 6 * MiB, 1);
	assert_int_equal(g.start, 2 * PG);
	assert_int_equal(g.end, 6 * MiB);
	assert_int_equal(g.page_sizes, 3);
	ptk_gather_flush(&g);
	assert_int_equal(g.stat_flushes, 1);
	assert_true(g.start >= g.end);
	assert_int_equal(g.page_sizes, 0);
	ptk_gather_flush(&g);
	assert_int_equal(g.stat_flushes, 1);
	/* Tables alone need an invalidation. */
	struct ptk_frame *t = ptk_table_alloc(ctx, 0);
	assert_non_null(t);
	ptk_gather_add_table(&g, t);
	assert_true(g.freed_tables);
	ptk_gather_flush(&g);
	assert_int_equal(g.stat_flushes, 2);
	assert_false(g.freed_tables);
	ptk_gather_finish(&g);
	/* fullmm: always. */
	ptk_gather_init(&g, as, true);
	assert_true(g.fullmm);
	ptk_gather_flush(&g);
	assert_int_equal(g.stat_flushes, 1);
	ptk_gather_finish(&g);
	test_teardown(ctx, as);
}

static void tables_batched(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = test_ctx(0);
	struct ptk_as *as = NULL;
	assert_int_equal(ptk_as_create(ctx, 0, &as), 0);
	unsigned cap = measure_batch_capacity(ctx, as);
	struct ptk_gather g;
	ptk_gather_init(&g, as, false);
	unsigned n = cap + cap / 2;
	for (unsigned i = 0; i < n; i++) {
		struct ptk_frame *t = ptk_table_alloc(ctx, i % 3);
		assert_non_null(t);
		ptk_gather_add_table(&g, t);
	}
	assert_int_equal(g.stat_tables, n);
	assert_int_equal(g.stat_batches, 2);
	assert_int_equal(g.stat_batch_failures, 0);
	struct ptk_pool_stats ps = pool(ctx);
	assert_int_equal(ps.in_use[PTK_FRAME_TABLE], 1 + n);
	assert_int_equal(ps.in_use[PTK_FRAME_BATCH], 2);
	ptk_gather_flush(&g);
	/* Queued for a grace period: freed once RCU callbacks have run. */
	ptk_ctx_quiesce(ctx);
	ps = pool(ctx);
	assert_int_equal(ps.in_use[PTK_FRAME_TABLE], 1);
	assert_int_equal(ps.in_use[PTK_FRAME_BATCH], 0);   /* batches go with them */
	ptk_gather_finish(&g);
	test_teardown(ctx, as);
}

static void tables_without_batches(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = test_ctx(0);
	struct ptk_as *as = NULL;
	assert_int_equal(ptk_as_create(ctx, 0, &as), 0);
	struct ptk_gather g;
	ptk_gather_init(&g, as, false);
	/* Every batch allocation fails: each table goes alone. */
	for (unsigned i = 0; i < 10; i++) {
		struct ptk_frame *t = ptk_table_alloc(ctx, 0);
		assert_non_null(t);
		ptk_ctx_inject_failure(ctx, PTK_INJECT_BATCH, 1);
		ptk_gather_add_table(&g, t);
	}
	ptk_ctx_inject_failure(ctx, 0, 0);
	assert_int_equal(g.stat_batch_failures, 10);
	assert_int_equal(g.stat_batches, 0);
	assert_int_equal(pool(ctx).in_use[PTK_FRAME_TABLE], 11);
	ptk_gather_flush(&g);
	ptk_ctx_quiesce(ctx);
	assert_int_equal(pool(ctx).in_use[PTK_FRAME_TABLE], 1);

	/* Mixed: a batch, then a failure when it would need a second one,
	 * then a batch again. */
	unsigned cap = measure_batch_capacity(ctx, as);
	for (unsigned i = 0; i < cap + 3; i++) {
		struct ptk_frame *t = ptk_table_alloc(ctx, 1);
		assert_non_null(t);
		if (i == cap)
			ptk_ctx_inject_failure(ctx, PTK_INJECT_BATCH, 1);
		ptk_gather_add_table(&g, t);
	}
	assert_int_equal(g.stat_batches, 2);
	assert_int_equal(g.stat_batch_failures, 11);
	ptk_gather_finish(&g);
	ptk_ctx_quiesce(ctx);
	struct ptk_pool_stats ps = pool(ctx);
	assert_int_equal(ps.in_use[PTK_FRAME_TABLE], 1);
	assert_int_equal(ps.in_use[PTK_FRAME_BATCH], 0);
	test_teardown(ctx, as);
}

static void teardown_pool_exhausted(void **state)
{
	(void)state;
	/* No frame left for any batch: the gather flushes every 8 pages and
	 * every table goes alone; nothing fails, everything is freed. */
	struct ptk_ctx_config cfg;
	ptk_ctx_config_default(&cfg);
	cfg.pool_bytes = 4 * MiB;
	cfg.cache_shards = 1;
	struct ptk_ctx *ctx = NULL;
	assert_int_equal(ptk_ctx_create(&cfg, &ctx), 0);
	struct ptk_as *as = NULL;
	assert_int_equal(ptk_as_create(ctx, 0, &as), 0);
	static struct ptk_frame *f[1024];
	unsigned n = 0, nt = 0;
	while ((f[n] = ptk_frame_alloc(ctx, n % 4 ? PTK_FRAME_DATA : PTK_FRAME_TABLE, false))) {
		if (n % 4 == 0) {
			/* A table from the internal allocator needs its lock. */
			ptk_frame_free(ctx, f[n]);
			f[n] = ptk_table_alloc(ctx, 0);
			assert_non_null(f[n]);
			nt++;
		}
		n++;
	}
	assert_int_equal(pool(ctx).free, 0);
	struct ptk_gather g;
	ptk_gather_init(&g, as, false);
	unsigned flushes = 0;
	for (unsigned i = 0; i < n; i++) {
		if (i % 4 == 0) {
			ptk_gather_add_table(&g, f[i]);
			continue;
		}
		if (ptk_gather_add_page(&g, f[i])) {
			ptk_gather_flush(&g);
			flushes++;
		}
	}
	/* Batches became available as pages were freed: the gather used them
	 * after the first flush. */
	assert_true(flushes >= 1);
	assert_true(g.stat_batch_failures >= 1);
	ptk_gather_finish(&g);
	ptk_ctx_quiesce(ctx);
	struct ptk_pool_stats ps = pool(ctx);
	assert_int_equal(ps.in_use[PTK_FRAME_DATA], 0);
	assert_int_equal(ps.in_use[PTK_FRAME_TABLE], 1);
	assert_int_equal(ps.in_use[PTK_FRAME_BATCH], 0);
	assert_true(nt > 0);
	test_teardown(ctx, as);
}

/* Teardown through the API: unmap and destroy with batch allocations
 * failing, and an unmap bigger than the gather's cap. */
static void unmap_with_batch_failures(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = test_ctx(0);
	struct ptk_as *as = NULL;
	assert_int_equal(ptk_as_create(ctx, 0, &as), 0);
	uint64_t X = GiB - 300 * PG;
	/* The unmap takes 3 data batches and a table batch. */
	for (long n = 1; n <= 4; n++) {
		uint64_t v = X;
		assert_int_equal(ptk_map_anon(as, &v, 1200 * PG, RW, PTK_MAP_FIXED), 0);
		assert_int_equal(ptk_populate(as, X, 1200 * PG, PTK_ACCESS_WRITE), 0);
		ptk_ctx_inject_failure(ctx, PTK_INJECT_BATCH, n);
		assert_int_equal(ptk_unmap(as, X, 1200 * PG), 0);
		assert_int_equal(ptk_ctx_inject_failure(ctx, 0, 0), 0);   /* it fired */
		struct ptk_as_stats st;
		ptk_as_stats(as, &st);
		assert_int_equal(st.rss_frames, 0);
		assert_int_equal(st.table_pages, 1);
		assert_all_frames_free_but_root(ctx);
	}
	test_teardown(ctx, as);
}

static void unmap_beyond_cap(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = test_ctx(0);
	struct ptk_as *as = NULL;
	assert_int_equal(ptk_as_create(ctx, 0, &as), 0);
	uint64_t n = PTK_GATHER_MAX_PAGES + 1500;
	uint64_t v = 0;
	assert_int_equal(ptk_map_anon(as, &v, n * PG, RW, PTK_MAP_POPULATE), 0);
	struct ptk_as_stats st;
	ptk_as_stats(as, &st);
	assert_int_equal(st.rss_frames, n);
	assert_int_equal(ptk_unmap(as, v, n * PG), 0);
	ptk_as_stats(as, &st);
	assert_int_equal(st.rss_frames, 0);
	assert_int_equal(st.table_pages, 1);
	/* And destroy of a populated space with batches failing. */
	v = 0;
	assert_int_equal(ptk_map_anon(as, &v, 2000 * PG, RW, PTK_MAP_POPULATE), 0);
	ptk_ctx_inject_failure(ctx, PTK_INJECT_BATCH, 1);
	test_teardown(ctx, as);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(local_then_batches),
		cmocka_unit_test(batch_failure),
		cmocka_unit_test(cap_max_pages),
		cmocka_unit_test(huge_and_shared_pages),
		cmocka_unit_test(flush_invalidation_stats),
		cmocka_unit_test(tables_batched),
		cmocka_unit_test(tables_without_batches),
		cmocka_unit_test(teardown_pool_exhausted),
		cmocka_unit_test(unmap_with_batch_failures),
		cmocka_unit_test(unmap_beyond_cap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
