/*
 * test_gather.c - the mmu_gather: local array and batch growth, the cap,
 * fallback when a batch cannot be had (injected at every allocation), the
 * legacy design, and the VA list handed to hash-style consumers under the
 * table lock.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "helpers.h"

#define FLAGS_RW (PTK_PROT_READ | PTK_PROT_WRITE)

/* Add data frames until the gather says "full"; returns how many. */
static unsigned fill_until_full(struct ptk_gather *g, struct ptk_ctx *ctx, unsigned limit)
{
	for (unsigned n = 1; n <= limit; n++) {
		struct ptk_frame *f = ptk_frame_alloc(ctx, PTK_FRAME_DATA, true);
		assert_non_null(f);
		ptk_gather_note_range(g, 0x1000u * n, 0x1000u * (n + 1), 0);
		if (ptk_gather_add_page(g, f))
			return n;
	}
	return 0;
}

static void gather_local_batches_cap(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = test_ctx(128 * MiB);
	struct ptk_as *as;
	assert_int_equal(ptk_as_create(ctx, 0, &as), 0);
	struct ptk_gather g;
	ptk_gather_init(&g, as, false);
	/* Grows past the local array by batches, full at the cap. */
	unsigned n = fill_until_full(&g, ctx, 4 * PTK_GATHER_MAX_PAGES);
	assert_true(n >= PTK_GATHER_MAX_PAGES);
	assert_true(n < PTK_GATHER_MAX_PAGES + 600);
	assert_true(g.stat_batches >= PTK_GATHER_MAX_PAGES / 600);
	ptk_gather_flush(&g);
	assert_int_equal(g.stat_flushes, 1);
	struct ptk_pool_stats st;
	ptk_pool_stats(ctx, &st);
	assert_int_equal(st.in_use[PTK_FRAME_DATA], 0);
	/* Batches are kept for reuse: the second round allocates none. */
	uint64_t batches = g.stat_batches;
	n = fill_until_full(&g, ctx, 4 * PTK_GATHER_MAX_PAGES);
	assert_true(n >= PTK_GATHER_MAX_PAGES);
	assert_int_equal(g.stat_batches, batches);
	ptk_gather_finish(&g);
	/* No batch at all: full at the local array (8), teardown goes on. */
	ptk_gather_init(&g, as, false);
	ptk_ctx_inject_failure(ctx, PTK_INJECT_BATCH, 1);
	n = fill_until_full(&g, ctx, 100);
	assert_int_equal(n, PTK_GATHER_LOCAL);
	assert_int_equal(g.stat_batch_failures, 1);
	ptk_gather_flush(&g);
	ptk_pool_stats(ctx, &st);
	assert_int_equal(st.in_use[PTK_FRAME_DATA], 0);
	ptk_gather_finish(&g);
	test_teardown(ctx, as);
}

/* Unmap @pages populated pages with the @nth batch allocation failing. */
static long unmap_with_failure(struct ptk_ctx *ctx, unsigned pages, long nth)
{
	struct ptk_as *as;
	assert_int_equal(ptk_as_create(ctx, 0, &as), 0);
	uint64_t va = 0;
	assert_int_equal(ptk_map_anon(as, &va, (uint64_t)pages * 4096, FLAGS_RW, 0), 0);
	assert_int_equal(ptk_populate(as, va, (uint64_t)pages * 4096, PTK_ACCESS_WRITE), 0);
	ptk_ctx_alloc_count(ctx, PTK_INJECT_BATCH, 1);
	ptk_ctx_inject_failure(ctx, PTK_INJECT_BATCH, nth);
	assert_int_equal(ptk_unmap(as, va, (uint64_t)pages * 4096), 0);
	long count = ptk_ctx_alloc_count(ctx, PTK_INJECT_BATCH, 1);
	ptk_ctx_inject_failure(ctx, 0, 0);
	struct ptk_as_stats st;
	ptk_as_stats(as, &st);
	assert_int_equal(st.rss_frames, 0);
	assert_int_equal(st.table_pages, 1);        /* the root only */
	if (nth)
		assert_true(st.gather_batch_failures >= 1);
	struct ptk_xlate x;
	for (unsigned i = 0; i < pages; i += 97)
		assert_int_equal(ptk_translate(as, va + (uint64_t)i * 4096, &x), -EFAULT);
	ptk_as_destroy(as);
	assert_all_frames_free(ctx);
	return count;
}

static void gather_batch_failure_every_call(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = test_ctx(128 * MiB);
	unsigned pages = PTK_GATHER_MAX_PAGES + 2000;   /* two flushes at least */
	long calls = unmap_with_failure(ctx, pages, 0);
	assert_true(calls >= 20);
	for (long nth = 1; nth <= calls; nth++)
		unmap_with_failure(ctx, pages, nth);
	ptk_ctx_destroy(ctx);
}

static void gather_legacy_mode(void **state)
{
	(void)state;
	struct ptk_ctx_config cfg;
	ptk_ctx_config_default(&cfg);
	cfg.pool_bytes = 64 * MiB;
	cfg.gather_mode = PTK_GATHER_LEGACY;
	struct ptk_ctx *ctx;
	assert_int_equal(ptk_ctx_create(&cfg, &ctx), 0);
	struct ptk_as *as;
	assert_int_equal(ptk_as_create(ctx, 0, &as), 0);
	uint64_t va = 0, len = 4096 * 4096;
	assert_int_equal(ptk_map_anon(as, &va, len, FLAGS_RW, PTK_MAP_POPULATE), 0);
	assert_int_equal(ptk_drop(as, va, len / 2), 0);
	assert_int_equal(ptk_unmap(as, va, len), 0);
	struct ptk_as_stats st;
	ptk_as_stats(as, &st);
	assert_int_equal(st.rss_frames, 0);
	/* Fixed array only: a flush every PTK_GATHER_LEGACY_NR pages (the
	 * stack gather would take all 4096 pages in one). */
	assert_true(st.tlb_flushes >= 4096 / PTK_GATHER_LEGACY_NR);
	test_teardown(ctx, as);
}

/* A hash-style consumer: records every VA and checks it is called with a
 * table lock held (a walker cannot see the lock; the check is that no VA
 * reported is still translatable: the entry was cleared before). */
struct rec {
	struct ptk_notifier n;
	uint64_t starts, ends, start, end, pages, bad;
	uint8_t seen[4096];
	uint64_t base;
};

static void rec_start(struct ptk_notifier *n, struct ptk_as *as, uint64_t s, uint64_t e)
{
	(void)as;
	struct rec *r = n->priv;
	r->starts++;
	r->start = s;
	r->end = e;
}

static void rec_end(struct ptk_notifier *n, struct ptk_as *as, uint64_t s, uint64_t e)
{
	(void)as;
	struct rec *r = n->priv;
	r->ends++;
	if (s != r->start || e != r->end)
		r->bad++;
}

static void rec_pages(struct ptk_notifier *n, struct ptk_as *as, const uint64_t *va,
		      unsigned nr)
{
	struct rec *r = n->priv;
	for (unsigned i = 0; i < nr; i++) {
		struct ptk_xlate x;
		if (va[i] < r->base || va[i] >= r->base + 4096 * 4096) {
			r->bad++;
			continue;
		}
		if (ptk_translate(as, va[i], &x) == 0 && ptk_pte_write(x.pte))
			r->bad++;               /* not cleared / write-protected yet */
		r->seen[(va[i] - r->base) >> 12]++;
		r->pages++;
	}
}

static const struct ptk_notifier_ops rec_ops = { rec_start, rec_end, rec_pages };

static void gather_va_list_notifier(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = test_ctx(0);
	struct ptk_as *as;
	assert_int_equal(ptk_as_create(ctx, 0, &as), 0);
	struct rec *r = calloc(1, sizeof(*r));
	r->n.ops = &rec_ops;
	r->n.priv = r;
	uint64_t va = 0, len = 4096 * 4096;
	assert_int_equal(ptk_map_anon(as, &va, len, FLAGS_RW, PTK_MAP_POPULATE), 0);
	r->base = va;
	assert_int_equal(ptk_notifier_register(as, &r->n), 0);
	/* protect: every page write-protected is reported */
	assert_int_equal(ptk_protect(as, va, 300 * 4096, PTK_PROT_READ), 0);
	assert_int_equal(r->starts, 1);
	assert_int_equal(r->ends, 1);
	assert_int_equal(r->start, va);
	assert_int_equal(r->end, va + 300 * 4096);
	assert_int_equal(r->pages, 300);
	/* unmap: every page once, range reported */
	memset(r->seen, 0, sizeof(r->seen));
	r->pages = 0;
	assert_int_equal(ptk_unmap(as, va, len), 0);
	assert_int_equal(r->starts, 2);
	assert_int_equal(r->ends, 2);
	assert_int_equal(r->start, va);
	assert_int_equal(r->end, va + len);
	assert_int_equal(r->pages, 4096);
	for (unsigned i = 0; i < 4096; i++)
		assert_int_equal(r->seen[i], 1);
	assert_int_equal(r->bad, 0);
	ptk_notifier_unregister(as, &r->n);
	assert_int_equal(ptk_map_anon(as, &va, len, FLAGS_RW, PTK_MAP_POPULATE), 0);
	assert_int_equal(ptk_unmap(as, va, len), 0);
	assert_int_equal(r->starts, 2);           /* unregistered: not called */
	free(r);
	test_teardown(ctx, as);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(gather_local_batches_cap),
		cmocka_unit_test(gather_batch_failure_every_call),
		cmocka_unit_test(gather_legacy_mode),
		cmocka_unit_test(gather_va_list_notifier),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
