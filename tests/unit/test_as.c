/*
 * test_as.c - address spaces (as.h): map, unmap, protect, drop, faults,
 * populate, translation, huge leaves, 5-level trees, edge addresses,
 * accounting and allocation failures.  Every test ends with test_teardown():
 * after the address space is destroyed every frame is back in the pool.
 */
#include <errno.h>
#include <string.h>
#include "helpers.h"

#define PG    PTK_PAGE_SIZE
#define RW    (PTK_PROT_READ | PTK_PROT_WRITE)
#define RO    PTK_PROT_READ
#define RWX   (PTK_PROT_READ | PTK_PROT_WRITE | PTK_PROT_EXEC)
#define FIXED PTK_MAP_FIXED
#define U64(x) UINT64_C(x)
#define UEND4 (U64(1) << 47)
#define UEND5 (U64(1) << 56)

/* ---- helpers -------------------------------------------------------------- */

static struct ptk_as *new_as(struct ptk_ctx *ctx, unsigned levels)
{
	struct ptk_as *as = NULL;
	assert_int_equal(ptk_as_create(ctx, levels, &as), 0);
	assert_non_null(as);
	return as;
}

static void map_fixed(struct ptk_as *as, uint64_t va, uint64_t len, unsigned prot,
		      unsigned flags)
{
	uint64_t v = va;
	assert_int_equal(ptk_map_anon(as, &v, len, prot, FIXED | flags), 0);
	assert_int_equal(v, va);
}

static struct ptk_as_stats as_st(struct ptk_as *as)
{
	struct ptk_as_stats st;
	ptk_as_stats(as, &st);
	return st;
}

static uint64_t rss(struct ptk_as *as) { return as_st(as).rss_frames; }
static uint64_t tables(struct ptk_as *as) { return as_st(as).table_pages; }

static struct ptk_pool_stats pool_st(struct ptk_ctx *ctx)
{
	struct ptk_pool_stats st;
	ptk_ctx_quiesce(ctx);
	ptk_pool_stats(ctx, &st);
	return st;
}

static int xl(struct ptk_as *as, uint64_t va, struct ptk_xlate *x)
{
	struct ptk_xlate tmp;
	return ptk_translate(as, va, x ? x : &tmp);
}

static bool mapped(struct ptk_as *as, uint64_t va)
{
	return xl(as, va, NULL) == 0;
}

/* Host pointer of @va's page, which must be mapped with a pool frame. */
static uint64_t *host(struct ptk_as *as, uint64_t va)
{
	struct ptk_xlate x;
	assert_int_equal(ptk_translate(as, va, &x), 0);
	assert_non_null(x.host);
	return x.host;
}

/* Write a pattern identifying @va into its page (faulting it in). */
static void write_pattern(struct ptk_as *as, uint64_t va)
{
	struct ptk_xlate x;
	assert_int_equal(ptk_translate_fault(as, va, PTK_ACCESS_WRITE, &x), 0);
	uint64_t *p = x.host;
	p[0] = va ^ U64(0x5a5a5a5a5a5a5a5a);
	p[PG / 8 - 1] = ~va;
}

static void check_pattern(struct ptk_as *as, uint64_t va)
{
	uint64_t *p = host(as, va);
	assert_int_equal(p[0], va ^ U64(0x5a5a5a5a5a5a5a5a));
	assert_int_equal(p[PG / 8 - 1], ~va);
}

static void check_zero_page(const void *h)
{
	const uint64_t *p = h;
	for (unsigned i = 0; i < PG / 8; i++)
		assert_int_equal(p[i], 0);
}

static void check_region(struct ptk_as *as, uint64_t va, uint64_t start, uint64_t end,
			 unsigned prot, enum ptk_region_kind kind)
{
	struct ptk_region_info ri;
	assert_int_equal(ptk_region_query(as, va, &ri), 0);
	assert_int_equal(ri.start, start);
	assert_int_equal(ri.end, end);
	assert_int_equal(ri.prot, prot);
	assert_int_equal(ri.kind, kind);
}

static void check_no_region(struct ptk_as *as, uint64_t va)
{
	struct ptk_region_info ri;
	assert_int_equal(ptk_region_query(as, va, &ri), -ENOENT);
}

/* rss of the address space + @held == data frames in use in the pool (one
 * address space per context in these tests, no pins).  @held: pages of
 * huge frames that are no longer mapped but stay allocated because other
 * pages of the same 2 MiB frame are still mapped. */
static void check_rss_pool_held(struct ptk_ctx *ctx, struct ptk_as *as, uint64_t held)
{
	struct ptk_pool_stats ps = pool_st(ctx);
	assert_int_equal(rss(as) + held,
			 ps.in_use[PTK_FRAME_DATA] + ps.in_use[PTK_FRAME_HUGE]);
	assert_int_equal(tables(as), ps.in_use[PTK_FRAME_TABLE]);
}

static void check_rss_matches_pool(struct ptk_ctx *ctx, struct ptk_as *as)
{
	check_rss_pool_held(ctx, as, 0);
}

/* A context whose pool has a single cache shard: exhaustion is exact
 * whatever CPU the test thread runs on (no frame stranded in another CPU's
 * cache). */
static struct ptk_ctx *ctx_one_shard(uint64_t pool_bytes)
{
	struct ptk_ctx_config cfg;
	ptk_ctx_config_default(&cfg);
	cfg.pool_bytes = pool_bytes;
	cfg.cache_shards = 1;
	struct ptk_ctx *ctx = NULL;
	assert_int_equal(ptk_ctx_create(&cfg, &ctx), 0);
	return ctx;
}

/* ---- map_anon ------------------------------------------------------------- */

static void map_anon_hint(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = test_ctx(0);
	struct ptk_as *as = new_as(ctx, 0);

	uint64_t a = 0;
	assert_int_equal(ptk_map_anon(as, &a, 16 * PG, RW, 0), 0);
	assert_true(a != 0);
	assert_int_equal(a & (PG - 1), 0);
	assert_true(a + 16 * PG <= UEND4);
	check_region(as, a, a, a + 16 * PG, RW, PTK_REGION_ANON);
	check_region(as, a + 15 * PG, a, a + 16 * PG, RW, PTK_REGION_ANON);
	check_no_region(as, a + 16 * PG);
	/* Nothing allocated at map time. */
	assert_int_equal(rss(as), 0);
	assert_int_equal(tables(as), 1);
	assert_false(mapped(as, a));

	/* The hint is taken: the next mapping goes elsewhere, no overlap. */
	uint64_t b = a;
	assert_int_equal(ptk_map_anon(as, &b, 16 * PG, RO, 0), 0);
	assert_true(b >= a + 16 * PG || b + 16 * PG <= a);
	check_region(as, a, a, a + 16 * PG, RW, PTK_REGION_ANON);
	check_region(as, b, b, b + 16 * PG, RO, PTK_REGION_ANON);

	/* A free hint is used as is. */
	uint64_t h = U64(0x300000000000);
	uint64_t c = h;
	assert_int_equal(ptk_map_anon(as, &c, 4 * PG, RW, 0), 0);
	assert_int_equal(c, h);

	/* A hint too close to the top falls back to another place. */
	uint64_t d = UEND4 - PG;
	assert_int_equal(ptk_map_anon(as, &d, 4 * PG, RW, 0), 0);
	assert_true(d + 4 * PG <= UEND4);
	check_region(as, d, d, d + 4 * PG, RW, PTK_REGION_ANON);

	/* A non-canonical hint is only a hint. */
	uint64_t e = U64(1) << 60;
	assert_int_equal(ptk_map_anon(as, &e, 4 * PG, RW, 0), 0);
	assert_true(e + 4 * PG <= UEND4);

	/* Huge without FIXED: 2 MiB aligned. */
	uint64_t f = U64(0x300000001000);
	assert_int_equal(ptk_map_anon(as, &f, 4 * MiB, RW, PTK_MAP_HUGE), 0);
	assert_int_equal(f & (PTK_HUGE_2M - 1), 0);

	struct ptk_as_stats st = as_st(as);
	assert_int_equal(st.regions, 6);
	assert_int_equal(st.mapped_bytes, 16 * PG + 16 * PG + 4 * PG + 4 * PG + 4 * PG + 4 * MiB);
	assert_int_equal(st.table_bytes, st.table_pages * PG);
	test_teardown(ctx, as);
}

static void map_anon_fill_and_no_room(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = test_ctx(4 * MiB);
	struct ptk_as *as = new_as(ctx, 0);
	/* The whole user half but its first page (0 is never chosen). */
	uint64_t a = 0;
	assert_int_equal(ptk_map_anon(as, &a, UEND4 - PG, RW, 0), 0);
	assert_int_equal(a, PG);
	uint64_t b = 0;
	assert_int_equal(ptk_map_anon(as, &b, PG, RW, 0), -ENOMEM);
	/* Too big for any hint. */
	uint64_t c = 0;
	assert_int_equal(ptk_unmap(as, PG, UEND4 - PG), 0);
	assert_int_equal(ptk_map_anon(as, &c, UEND4, RW, 0), -ENOMEM);
	assert_int_equal(ptk_map_anon(as, &c, U64(1) << 60, RW, 0), -ENOMEM);
	assert_int_equal(as_st(as).regions, 0);
	test_teardown(ctx, as);
}

static void map_fixed_noreplace(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = test_ctx(0);
	struct ptk_as *as = new_as(ctx, 0);
	uint64_t X = 64 * MiB;
	map_fixed(as, X, 16 * PG, RW, 0);
	check_region(as, X, X, X + 16 * PG, RW, PTK_REGION_ANON);

	/* NOREPLACE over it (whole, part, straddling either end): -EEXIST. */
	uint64_t v = X;
	assert_int_equal(ptk_map_anon(as, &v, 16 * PG, RO, PTK_MAP_NOREPLACE), -EEXIST);
	v = X + 4 * PG;
	assert_int_equal(ptk_map_anon(as, &v, PG, RO, PTK_MAP_NOREPLACE), -EEXIST);
	v = X - 4 * PG;
	assert_int_equal(ptk_map_anon(as, &v, 5 * PG, RO, PTK_MAP_NOREPLACE), -EEXIST);
	v = X + 15 * PG;
	assert_int_equal(ptk_map_anon(as, &v, 5 * PG, RO, PTK_MAP_NOREPLACE), -EEXIST);
	v = X - 4 * PG;
	assert_int_equal(ptk_map_anon(as, &v, 32 * PG, RO, PTK_MAP_NOREPLACE), -EEXIST);
	v = X;
	assert_int_equal(ptk_map_special(as, &v, PG, 1, RO, PTK_MAP_NOREPLACE), -EEXIST);
	/* Nothing changed. */
	check_region(as, X, X, X + 16 * PG, RW, PTK_REGION_ANON);
	assert_int_equal(as_st(as).regions, 1);
	assert_int_equal(tables(as), 1);

	/* Adjacent on both sides: fine. */
	v = X + 16 * PG;
	assert_int_equal(ptk_map_anon(as, &v, 4 * PG, RO, PTK_MAP_NOREPLACE), 0);
	assert_int_equal(v, X + 16 * PG);
	v = X - 4 * PG;
	assert_int_equal(ptk_map_anon(as, &v, 4 * PG, RO, PTK_MAP_NOREPLACE), 0);
	assert_int_equal(v, X - 4 * PG);
	check_region(as, X - PG, X - 4 * PG, X, RO, PTK_REGION_ANON);
	check_region(as, X, X, X + 16 * PG, RW, PTK_REGION_ANON);
	check_region(as, X + 16 * PG, X + 16 * PG, X + 20 * PG, RO, PTK_REGION_ANON);
	/* FIXED|NOREPLACE behaves like NOREPLACE. */
	v = X;
	assert_int_equal(ptk_map_anon(as, &v, PG, RO, FIXED | PTK_MAP_NOREPLACE), -EEXIST);
	assert_int_equal(as_st(as).regions, 3);
	test_teardown(ctx, as);
}

static void map_fixed_replaces(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = test_ctx(0);
	struct ptk_as *as = new_as(ctx, 0);
	uint64_t X = 2 * GiB - 8 * PG;       /* straddles a 2 MiB and 1 GiB boundary */
	map_fixed(as, X, 16 * PG, RW, 0);
	uint64_t old_pfn[16];
	for (unsigned i = 0; i < 16; i++) {
		write_pattern(as, X + i * PG);
		struct ptk_xlate x;
		assert_int_equal(xl(as, X + i * PG, &x), 0);
		old_pfn[i] = x.pfn;
	}
	assert_int_equal(rss(as), 16);
	check_rss_matches_pool(ctx, as);

	/* Replace pages 4..11 with a read-only mapping. */
	map_fixed(as, X + 4 * PG, 8 * PG, RO, 0);
	assert_int_equal(rss(as), 8);
	check_rss_matches_pool(ctx, as);
	for (unsigned i = 4; i < 12; i++)
		assert_false(mapped(as, X + i * PG));      /* old pages gone */
	for (unsigned i = 0; i < 16; i++) {
		if (i >= 4 && i < 12)
			continue;
		check_pattern(as, X + i * PG);             /* others untouched */
		struct ptk_xlate x;
		assert_int_equal(xl(as, X + i * PG, &x), 0);
		assert_int_equal(x.pfn, old_pfn[i]);
	}
	check_region(as, X, X, X + 4 * PG, RW, PTK_REGION_ANON);
	check_region(as, X + 4 * PG, X + 4 * PG, X + 12 * PG, RO, PTK_REGION_ANON);
	check_region(as, X + 11 * PG, X + 4 * PG, X + 12 * PG, RO, PTK_REGION_ANON);
	check_region(as, X + 12 * PG, X + 12 * PG, X + 16 * PG, RW, PTK_REGION_ANON);
	assert_int_equal(as_st(as).regions, 3);
	/* The new mapping is fresh: reads zero, refuses writes. */
	assert_int_equal(ptk_fault(as, X + 5 * PG, PTK_ACCESS_READ), 0);
	check_zero_page(host(as, X + 5 * PG));
	assert_int_equal(ptk_fault(as, X + 5 * PG, PTK_ACCESS_WRITE), -EACCES);

	/* Replace across all three regions and a hole beyond. */
	map_fixed(as, X - 4 * PG, 32 * PG, RW, 0);
	assert_int_equal(as_st(as).regions, 1);
	check_region(as, X, X - 4 * PG, X + 28 * PG, RW, PTK_REGION_ANON);
	assert_int_equal(rss(as), 0);
	for (unsigned i = 0; i < 16; i++)
		assert_false(mapped(as, X + i * PG));
	/* Tables emptied by the replacement are reclaimed. */
	assert_int_equal(tables(as), 1);
	check_rss_matches_pool(ctx, as);

	/* Replace anonymous memory by a special mapping. */
	write_pattern(as, X);
	map_fixed(as, X, 8 * PG, RW, 0);
	assert_false(mapped(as, X));
	uint64_t v = X;
	write_pattern(as, X);
	assert_int_equal(ptk_map_special(as, &v, 8 * PG, U64(1) << 30, RO, FIXED), 0);
	struct ptk_xlate x;
	assert_int_equal(xl(as, X, &x), 0);
	assert_int_equal(x.pfn, U64(1) << 30);
	assert_null(x.host);
	assert_int_equal(rss(as), 0);
	check_region(as, X, X, X + 8 * PG, RO, PTK_REGION_SPECIAL);
	check_rss_matches_pool(ctx, as);
	test_teardown(ctx, as);
}

/* ---- map_special ---------------------------------------------------------- */

static void map_special_outside_pool(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = test_ctx(4 * MiB);
	struct ptk_as *as = new_as(ctx, 0);
	struct ptk_pool_stats before = pool_st(ctx);
	uint64_t pfn = U64(1) << 30;            /* far outside a 4 MiB pool */
	uint64_t X = 8 * GiB + 510 * PG;        /* crosses a PTE-table boundary */
	uint64_t v = X;
	assert_int_equal(ptk_map_special(as, &v, 8 * PG, pfn, RW, FIXED), 0);
	check_region(as, X, X, X + 8 * PG, RW, PTK_REGION_SPECIAL);
	for (unsigned i = 0; i < 8; i++) {
		struct ptk_xlate x;
		assert_int_equal(xl(as, X + i * PG + 123, &x), 0);
		assert_int_equal(x.pfn, pfn + i);
		assert_int_equal(ptk_pte_pfn(x.pte), pfn + i);
		assert_null(x.host);
		assert_int_equal(x.level, 0);
		assert_int_equal(x.page_size, PG);
		assert_true(ptk_pte_special(x.pte));
		assert_true(ptk_pte_write(x.pte));
	}
	/* Installed at map time: tables, but no data frames, no rss. */
	assert_int_equal(rss(as), 0);
	assert_int_equal(tables(as), 5);        /* root, L2, L1, two L0 */
	struct ptk_pool_stats ps = pool_st(ctx);
	assert_int_equal(ps.in_use[PTK_FRAME_DATA], before.in_use[PTK_FRAME_DATA]);
	/* Faults succeed (already installed) and install nothing. */
	assert_int_equal(ptk_fault(as, X, PTK_ACCESS_READ), 0);
	assert_int_equal(ptk_fault(as, X, PTK_ACCESS_WRITE), 0);
	assert_int_equal(ptk_fault(as, X, PTK_ACCESS_EXEC), -EACCES);
	struct ptk_xlate x;
	assert_int_equal(ptk_translate_fault(as, X + PG, PTK_ACCESS_WRITE, &x), 0);
	assert_int_equal(x.pfn, pfn + 1);
	assert_int_equal(ptk_populate(as, X, 8 * PG, PTK_ACCESS_WRITE), 0);
	assert_int_equal(rss(as), 0);

	/* A read-only special mapping. */
	uint64_t w = 16 * GiB;
	assert_int_equal(ptk_map_special(as, &w, PG, pfn + 100, RO, FIXED), 0);
	assert_int_equal(xl(as, w, &x), 0);
	assert_false(ptk_pte_write(x.pte));
	assert_int_equal(ptk_fault(as, w, PTK_ACCESS_WRITE), -EACCES);
	assert_int_equal(ptk_translate_fault(as, w, PTK_ACCESS_WRITE, &x), -EACCES);

	/* Unmap: entries gone, tables reclaimed, no frame freed (none owned). */
	assert_int_equal(ptk_unmap(as, X, 8 * PG), 0);
	assert_int_equal(ptk_unmap(as, w, PG), 0);
	assert_false(mapped(as, X));
	assert_int_equal(tables(as), 1);
	ps = pool_st(ctx);
	assert_int_equal(ps.frees - before.frees, ps.allocs - before.allocs);
	test_teardown(ctx, as);
}

static void map_special_inside_pool(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = test_ctx(4 * MiB);
	struct ptk_as *as = new_as(ctx, 0);
	/* A frame the caller owns, mapped twice; the mappings take no
	 * reference and unmapping does not free it. */
	struct ptk_frame *f = ptk_frame_alloc(ctx, PTK_FRAME_DATA, true);
	assert_non_null(f);
	uint64_t pfn = ptk_frame_pfn(ctx, f);
	uint64_t v1 = 0, v2 = 0;
	assert_int_equal(ptk_map_special(as, &v1, PG, pfn, RW, 0), 0);
	assert_int_equal(ptk_map_special(as, &v2, PG, pfn, RO, 0), 0);
	assert_true(v1 != v2);
	assert_int_equal(f->refcount, 1);
	struct ptk_xlate x1, x2;
	assert_int_equal(xl(as, v1 + 8, &x1), 0);
	assert_int_equal(xl(as, v2 + 8, &x2), 0);
	assert_ptr_equal(x1.host, (uint8_t *)ptk_frame_host(ctx, f) + 8);
	assert_ptr_equal(x1.host, x2.host);
	*(uint32_t *)x1.host = 0xdeadbeef;
	assert_int_equal(*(uint32_t *)x2.host, 0xdeadbeef);
	assert_int_equal(rss(as), 0);
	/* drop leaves special mappings alone. */
	assert_int_equal(ptk_drop(as, v1, PG), 0);
	assert_int_equal(xl(as, v1, &x1), 0);
	assert_int_equal(ptk_unmap(as, v1, PG), 0);
	assert_int_equal(ptk_unmap(as, v2, PG), 0);
	assert_int_equal(f->refcount, 1);
	assert_int_equal(f->type, PTK_FRAME_DATA);
	assert_int_equal(*(uint32_t *)((uint8_t *)ptk_frame_host(ctx, f) + 8), 0xdeadbeef);
	ptk_frame_put(ctx, f);
	test_teardown(ctx, as);
}

static void map_special_bad_pfn(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = test_ctx(4 * MiB);
	struct ptk_as *as = new_as(ctx, 0);
	uint64_t maxpfn = PTK_PTE_PFN_MASK >> PTK_PAGE_SHIFT;   /* 2^40 - 1 */
	uint64_t v = GiB;
	assert_int_equal(ptk_map_special(as, &v, 2 * PG, maxpfn, RO, FIXED), -EINVAL);
	assert_int_equal(ptk_map_special(as, &v, PG, maxpfn + 1, RO, FIXED), -EINVAL);
	assert_int_equal(ptk_map_special(as, &v, PG, UINT64_MAX, RO, FIXED), -EINVAL);
	assert_int_equal(ptk_map_special(as, &v, 2 * PG, UINT64_MAX, RO, 0), -EINVAL);
	assert_int_equal(as_st(as).regions, 0);
	/* The last frame number is fine. */
	assert_int_equal(ptk_map_special(as, &v, PG, maxpfn, RO, FIXED), 0);
	struct ptk_xlate x;
	assert_int_equal(xl(as, GiB, &x), 0);
	assert_int_equal(x.pfn, maxpfn);
	assert_null(x.host);
	test_teardown(ctx, as);
}

static void map_special_huge(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = test_ctx(4 * MiB);
	struct ptk_as *as = new_as(ctx, 0);
	uint64_t pfn = U64(4) << 18;                  /* 4 GiB: 1 GiB aligned */
	uint64_t X = GiB;
	uint64_t len = GiB + 4 * MiB + 2 * PG;
	uint64_t v = X;
	assert_int_equal(ptk_map_special(as, &v, len, pfn, RW, FIXED | PTK_MAP_HUGE), 0);
	struct { uint64_t off; unsigned level; } probe[] = {
		{ 0, 2 }, { 12345 * PG + 77, 2 }, { GiB - PG, 2 },
		{ GiB, 1 }, { GiB + PTK_HUGE_2M - 1, 1 }, { GiB + PTK_HUGE_2M, 1 },
		{ GiB + 4 * MiB - PG, 1 },
		{ GiB + 4 * MiB, 0 }, { GiB + 4 * MiB + PG, 0 },
	};
	for (size_t i = 0; i < sizeof(probe) / sizeof(probe[0]); i++) {
		struct ptk_xlate x;
		assert_int_equal(xl(as, X + probe[i].off, &x), 0);
		assert_int_equal(x.level, probe[i].level);
		assert_int_equal(x.page_size, ptk_level_size(probe[i].level));
		assert_int_equal(x.pfn, pfn + (probe[i].off >> PTK_PAGE_SHIFT));
		assert_int_equal(ptk_pte_pfn(x.pte) % (x.page_size / PG), 0);
		assert_true(ptk_pte_special(x.pte));
		assert_null(x.host);
	}
	assert_false(mapped(as, X + len));
	assert_false(mapped(as, X - PG));
	/* root, L2 (1 GiB leaf in it), L1 for the second GiB, one L0. */
	assert_int_equal(tables(as), 4);
	assert_int_equal(rss(as), 0);

	/* Misaligned frame number: no huge leaves possible, 4 KiB only. */
	uint64_t w = 8 * GiB;
	assert_int_equal(ptk_map_special(as, &w, 4 * MiB, pfn + 1, RO,
					 FIXED | PTK_MAP_HUGE), 0);
	struct ptk_xlate x;
	assert_int_equal(xl(as, w, &x), 0);
	assert_int_equal(x.level, 0);
	assert_int_equal(xl(as, w + 3 * MiB, &x), 0);
	assert_int_equal(x.level, 0);
	assert_int_equal(x.pfn, pfn + 1 + (3 * MiB) / PG);

	/* Without PTK_MAP_HUGE: 4 KiB leaves even when aligned. */
	uint64_t y = 16 * GiB;
	assert_int_equal(ptk_map_special(as, &y, 2 * MiB, pfn, RO, FIXED), 0);
	assert_int_equal(xl(as, y, &x), 0);
	assert_int_equal(x.level, 0);

	/* Placement chosen by the library: aligned for the leaves. */
	uint64_t z = 0;
	assert_int_equal(ptk_map_special(as, &z, GiB, pfn, RO, PTK_MAP_HUGE), 0);
	assert_int_equal(z & (GiB - 1), 0);
	assert_int_equal(xl(as, z + 5 * PG, &x), 0);
	assert_int_equal(x.level, 2);
	uint64_t z2 = 0;
	assert_int_equal(ptk_map_special(as, &z2, 4 * MiB, pfn, RO, PTK_MAP_HUGE), 0);
	assert_int_equal(z2 & (PTK_HUGE_2M - 1), 0);
	assert_int_equal(xl(as, z2 + 3 * MiB, &x), 0);
	assert_int_equal(x.level, 1);
	assert_int_equal(x.pfn, pfn + (3 * MiB) / PG);

	/* Unmap everything: back to the root alone. */
	assert_int_equal(ptk_unmap(as, PG, UEND4 - PG), 0);
	assert_int_equal(tables(as), 1);
	assert_int_equal(as_st(as).regions, 0);
	test_teardown(ctx, as);
}

/* Cutting huge special leaves: 1 GiB leaves split at 2 MiB and 4 KiB
 * boundaries by unmap, protect, drop and fixed maps. */
static void special_huge_split(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = test_ctx(4 * MiB);
	struct ptk_as *as = new_as(ctx, 0);
	uint64_t pfn = U64(8) << 18;
	uint64_t X = 4 * GiB;
	uint64_t v = X;
	assert_int_equal(ptk_map_special(as, &v, 2 * GiB, pfn, RW, FIXED | PTK_MAP_HUGE), 0);
	struct ptk_xlate x;
	assert_int_equal(xl(as, X + GiB, &x), 0);
	assert_int_equal(x.level, 2);

	/* Unmap 2 MiB (2 MiB aligned, not 1 GiB aligned) inside the first. */
	assert_int_equal(ptk_unmap(as, X + 2 * MiB, 2 * MiB), 0);
	assert_false(mapped(as, X + 2 * MiB));
	assert_false(mapped(as, X + 4 * MiB - PG));
	assert_int_equal(xl(as, X, &x), 0);
	assert_int_equal(x.level, 1);
	assert_int_equal(x.pfn, pfn);
	assert_int_equal(xl(as, X + 4 * MiB + 5 * PG, &x), 0);
	assert_int_equal(x.level, 1);
	assert_int_equal(x.pfn, pfn + (4 * MiB) / PG + 5);
	assert_int_equal(xl(as, X + GiB - PG, &x), 0);
	assert_int_equal(x.pfn, pfn + GiB / PG - 1);
	check_region(as, X, X, X + 2 * MiB, RW, PTK_REGION_SPECIAL);
	check_region(as, X + 4 * MiB, X + 4 * MiB, X + 2 * GiB, RW, PTK_REGION_SPECIAL);
	/* The second GiB is still one leaf. */
	assert_int_equal(xl(as, X + GiB, &x), 0);
	assert_int_equal(x.level, 2);

	/* Unmap one 4 KiB page inside a remaining 2 MiB leaf. */
	assert_int_equal(ptk_unmap(as, X + 7 * PG, PG), 0);
	assert_false(mapped(as, X + 7 * PG));
	assert_int_equal(xl(as, X + 6 * PG, &x), 0);
	assert_int_equal(x.level, 0);
	assert_int_equal(x.pfn, pfn + 6);
	assert_int_equal(xl(as, X + 8 * PG, &x), 0);
	assert_int_equal(x.pfn, pfn + 8);
	assert_true(ptk_pte_special(x.pte));

	/* Protect 2 MiB inside the second 1 GiB leaf. */
	assert_int_equal(ptk_protect(as, X + GiB + 6 * MiB, 2 * MiB, RO), 0);
	assert_int_equal(xl(as, X + GiB + 6 * MiB, &x), 0);
	assert_int_equal(x.level, 1);
	assert_false(ptk_pte_write(x.pte));
	assert_int_equal(x.pfn, pfn + (GiB + 6 * MiB) / PG);
	assert_int_equal(xl(as, X + GiB + 8 * MiB, &x), 0);
	assert_true(ptk_pte_write(x.pte));
	assert_int_equal(xl(as, X + GiB + 4 * MiB, &x), 0);
	assert_true(ptk_pte_write(x.pte));
	assert_int_equal(ptk_fault(as, X + GiB + 6 * MiB, PTK_ACCESS_WRITE), -EACCES);
	assert_int_equal(ptk_fault(as, X + GiB + 8 * MiB, PTK_ACCESS_WRITE), 0);

	/* A fixed anonymous map over 2 MiB of a 1 GiB leaf region. */
	uint64_t Y = 12 * GiB;
	v = Y;
	assert_int_equal(ptk_map_special(as, &v, GiB, pfn, RW, FIXED | PTK_MAP_HUGE), 0);
	map_fixed(as, Y + 10 * MiB, 2 * MiB, RW, 0);
	assert_false(mapped(as, Y + 10 * MiB));
	assert_int_equal(xl(as, Y + 12 * MiB, &x), 0);
	assert_int_equal(x.pfn, pfn + (12 * MiB) / PG);
	write_pattern(as, Y + 10 * MiB);
	check_pattern(as, Y + 10 * MiB);
	assert_int_equal(rss(as), 1);

	/* drop over 2 MiB of a special 1 GiB leaf: left intact. */
	assert_int_equal(ptk_drop(as, Y + 20 * MiB, 2 * MiB), 0);
	assert_int_equal(xl(as, Y + 20 * MiB, &x), 0);
	assert_int_equal(x.pfn, pfn + (20 * MiB) / PG);
	test_teardown(ctx, as);
}

/* ---- unmap ---------------------------------------------------------------- */

static void unmap_partial(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = test_ctx(0);
	struct ptk_as *as = new_as(ctx, 0);
	uint64_t X = 64 * MiB;
	map_fixed(as, X, 16 * PG, RW, 0);
	for (unsigned i = 0; i < 16; i++)
		write_pattern(as, X + i * PG);
	/* Head. */
	assert_int_equal(ptk_unmap(as, X, 4 * PG), 0);
	check_no_region(as, X);
	check_region(as, X + 4 * PG, X + 4 * PG, X + 16 * PG, RW, PTK_REGION_ANON);
	assert_int_equal(rss(as), 12);
	/* Tail. */
	assert_int_equal(ptk_unmap(as, X + 12 * PG, 4 * PG), 0);
	check_region(as, X + 4 * PG, X + 4 * PG, X + 12 * PG, RW, PTK_REGION_ANON);
	check_no_region(as, X + 12 * PG);
	assert_int_equal(rss(as), 8);
	for (unsigned i = 0; i < 16; i++) {
		if (i >= 4 && i < 12)
			check_pattern(as, X + i * PG);
		else
			assert_false(mapped(as, X + i * PG));
	}
	assert_int_equal(ptk_fault(as, X, PTK_ACCESS_READ), -EFAULT);
	assert_int_equal(ptk_fault(as, X + 12 * PG, PTK_ACCESS_READ), -EFAULT);
	check_rss_matches_pool(ctx, as);
	test_teardown(ctx, as);
}

static void unmap_middle_splits(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = test_ctx(0);
	struct ptk_as *as = new_as(ctx, 0);
	uint64_t X = 128 * MiB;
	map_fixed(as, X, 16 * PG, RWX, 0);
	for (unsigned i = 0; i < 16; i++)
		write_pattern(as, X + i * PG);
	assert_int_equal(ptk_unmap(as, X + 6 * PG, 4 * PG), 0);
	check_region(as, X, X, X + 6 * PG, RWX, PTK_REGION_ANON);
	check_region(as, X + 5 * PG, X, X + 6 * PG, RWX, PTK_REGION_ANON);
	check_region(as, X + 10 * PG, X + 10 * PG, X + 16 * PG, RWX, PTK_REGION_ANON);
	check_region(as, X + 15 * PG, X + 10 * PG, X + 16 * PG, RWX, PTK_REGION_ANON);
	for (unsigned i = 6; i < 10; i++) {
		check_no_region(as, X + i * PG);
		assert_false(mapped(as, X + i * PG));
		assert_int_equal(ptk_fault(as, X + i * PG, PTK_ACCESS_READ), -EFAULT);
	}
	struct ptk_as_stats st = as_st(as);
	assert_int_equal(st.regions, 2);
	assert_int_equal(st.mapped_bytes, 12 * PG);
	assert_int_equal(st.rss_frames, 12);
	for (unsigned i = 0; i < 16; i++)
		if (i < 6 || i >= 10)
			check_pattern(as, X + i * PG);
	/* Both halves keep working independently. */
	assert_int_equal(ptk_protect(as, X, 6 * PG, RO), 0);
	assert_int_equal(ptk_fault(as, X, PTK_ACCESS_WRITE), -EACCES);
	assert_int_equal(ptk_fault(as, X + 10 * PG, PTK_ACCESS_WRITE), 0);
	check_rss_matches_pool(ctx, as);
	test_teardown(ctx, as);
}

static int collect(const struct ptk_region_info *ri, void *arg)
{
	struct ptk_region_info *v = arg;
	unsigned i = 0;
	while (v[i].end)
		i++;
	v[i] = *ri;
	return 0;
}

static int stop_at_second(const struct ptk_region_info *ri, void *arg)
{
	unsigned *n = arg;
	(void)ri;
	return ++*n == 2 ? 42 : 0;
}

static void unmap_with_holes(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = test_ctx(0);
	struct ptk_as *as = new_as(ctx, 0);
	uint64_t X = GiB - 64 * PG;
	/* Three regions with holes, across a 1 GiB boundary. */
	map_fixed(as, X, 16 * PG, RW, 0);
	map_fixed(as, X + 32 * PG, 64 * PG, RO, 0);
	map_fixed(as, X + 128 * PG, 16 * PG, RW, 0);
	assert_int_equal(ptk_populate(as, X, 16 * PG, PTK_ACCESS_WRITE), 0);
	assert_int_equal(ptk_populate(as, X + 32 * PG, 64 * PG, PTK_ACCESS_READ), 0);
	assert_int_equal(ptk_populate(as, X + 128 * PG, 16 * PG, PTK_ACCESS_WRITE), 0);
	assert_int_equal(rss(as), 96);

	struct ptk_region_info v[8];
	memset(v, 0, sizeof(v));
	assert_int_equal(ptk_region_foreach(as, collect, v), 0);
	assert_int_equal(v[0].start, X);
	assert_int_equal(v[1].start, X + 32 * PG);
	assert_int_equal(v[1].prot, RO);
	assert_int_equal(v[2].start, X + 128 * PG);
	assert_int_equal(v[3].end, 0);
	unsigned n = 0;
	assert_int_equal(ptk_region_foreach(as, stop_at_second, &n), 42);
	assert_int_equal(n, 2);
	assert_int_equal(ptk_region_foreach(as, NULL, NULL), -EINVAL);
	assert_int_equal(ptk_region_foreach(NULL, collect, v), -EINVAL);

	/* Unmap from inside the first region to inside the last, holes
	 * included: middle region gone, outer ones trimmed. */
	assert_int_equal(ptk_unmap(as, X + 8 * PG, 128 * PG), 0);
	check_region(as, X, X, X + 8 * PG, RW, PTK_REGION_ANON);
	check_region(as, X + 136 * PG, X + 136 * PG, X + 144 * PG, RW, PTK_REGION_ANON);
	check_no_region(as, X + 40 * PG);
	assert_int_equal(as_st(as).regions, 2);
	assert_int_equal(rss(as), 16);
	check_rss_matches_pool(ctx, as);

	/* Unmap everything including large holes: back to nothing. */
	assert_int_equal(ptk_unmap(as, 0, UEND4), 0);
	struct ptk_as_stats st = as_st(as);
	assert_int_equal(st.regions, 0);
	assert_int_equal(st.mapped_bytes, 0);
	assert_int_equal(st.rss_frames, 0);
	assert_int_equal(st.table_pages, 1);
	check_rss_matches_pool(ctx, as);
	test_teardown(ctx, as);
}

static void unmap_nothing(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = test_ctx(0);
	struct ptk_as *as = new_as(ctx, 0);
	/* Empty address space. */
	assert_int_equal(ptk_unmap(as, 0, PG), 0);
	assert_int_equal(ptk_unmap(as, 0, UEND4), 0);
	assert_int_equal(ptk_unmap(as, UEND4 - PG, PG), 0);
	uint64_t X = 256 * MiB;
	map_fixed(as, X, 4 * PG, RW, 0);
	map_fixed(as, X + 8 * PG, 4 * PG, RW, 0);
	assert_int_equal(ptk_populate(as, X, 4 * PG, PTK_ACCESS_WRITE), 0);
	/* The hole between two regions, and just outside each. */
	assert_int_equal(ptk_unmap(as, X + 4 * PG, 4 * PG), 0);
	assert_int_equal(ptk_unmap(as, X - 4 * PG, 4 * PG), 0);
	assert_int_equal(ptk_unmap(as, X + 12 * PG, 4 * PG), 0);
	assert_int_equal(as_st(as).regions, 2);
	assert_int_equal(rss(as), 4);
	check_region(as, X, X, X + 4 * PG, RW, PTK_REGION_ANON);
	/* Unmapping twice is harmless. */
	assert_int_equal(ptk_unmap(as, X, 4 * PG), 0);
	assert_int_equal(ptk_unmap(as, X, 4 * PG), 0);
	assert_int_equal(rss(as), 0);
	test_teardown(ctx, as);
}

/* ---- protect -------------------------------------------------------------- */

static void protect_ro_rw(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = test_ctx(0);
	struct ptk_as *as = new_as(ctx, 0);
	uint64_t X = 512 * MiB - 4 * PG;     /* crosses a 2 MiB boundary */
	map_fixed(as, X, 8 * PG, RW, 0);
	for (unsigned i = 0; i < 8; i++)
		write_pattern(as, X + i * PG);
	assert_int_equal(ptk_protect(as, X, 8 * PG, RO), 0);
	check_region(as, X, X, X + 8 * PG, RO, PTK_REGION_ANON);
	for (unsigned i = 0; i < 8; i++) {
		struct ptk_xlate x;
		assert_int_equal(xl(as, X + i * PG, &x), 0);
		assert_false(ptk_pte_write(x.pte));
		assert_int_equal(ptk_fault(as, X + i * PG, PTK_ACCESS_WRITE), -EACCES);
		assert_int_equal(ptk_translate_fault(as, X + i * PG, PTK_ACCESS_WRITE, &x),
				 -EACCES);
		assert_int_equal(ptk_fault(as, X + i * PG, PTK_ACCESS_READ), 0);
		check_pattern(as, X + i * PG);       /* data kept */
	}
	assert_int_equal(rss(as), 8);
	/* Back to read-write: writes work again, same frames. */
	assert_int_equal(ptk_protect(as, X, 8 * PG, RW), 0);
	check_region(as, X, X, X + 8 * PG, RW, PTK_REGION_ANON);
	for (unsigned i = 0; i < 8; i++) {
		struct ptk_xlate x;
		assert_int_equal(ptk_fault(as, X + i * PG, PTK_ACCESS_WRITE), 0);
		assert_int_equal(ptk_translate_fault(as, X + i * PG, PTK_ACCESS_WRITE, &x), 0);
		assert_true(ptk_pte_write(x.pte));
		check_pattern(as, X + i * PG);
	}
	assert_int_equal(rss(as), 8);
	/* PROT_NONE: no access at all; unfaulted pages stay unfaulted. */
	assert_int_equal(ptk_protect(as, X, 8 * PG, PTK_PROT_NONE), 0);
	assert_int_equal(ptk_fault(as, X, PTK_ACCESS_READ), -EACCES);
	assert_int_equal(ptk_fault(as, X, PTK_ACCESS_EXEC), -EACCES);
	/* Exec only. */
	assert_int_equal(ptk_protect(as, X, 8 * PG, PTK_PROT_EXEC), 0);
	assert_int_equal(ptk_fault(as, X, PTK_ACCESS_EXEC), 0);
	assert_int_equal(ptk_fault(as, X, PTK_ACCESS_WRITE), -EACCES);
	assert_int_equal(ptk_fault(as, X, PTK_ACCESS_READ), -EACCES);
	check_rss_matches_pool(ctx, as);
	test_teardown(ctx, as);
}

static void protect_splits_and_holes(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = test_ctx(0);
	struct ptk_as *as = new_as(ctx, 0);
	uint64_t X = GiB;
	map_fixed(as, X, 16 * PG, RW, 0);
	map_fixed(as, X + 32 * PG, 16 * PG, RW, 0);
	assert_int_equal(ptk_populate(as, X, 16 * PG, PTK_ACCESS_WRITE), 0);
	assert_int_equal(ptk_populate(as, X + 32 * PG, 16 * PG, PTK_ACCESS_WRITE), 0);

	/* Middle of a region: three regions. */
	assert_int_equal(ptk_protect(as, X + 4 * PG, 4 * PG, RO), 0);
	check_region(as, X, X, X + 4 * PG, RW, PTK_REGION_ANON);
	check_region(as, X + 4 * PG, X + 4 * PG, X + 8 * PG, RO, PTK_REGION_ANON);
	check_region(as, X + 8 * PG, X + 8 * PG, X + 16 * PG, RW, PTK_REGION_ANON);
	struct ptk_xlate x;
	assert_int_equal(xl(as, X + 3 * PG, &x), 0);
	assert_true(ptk_pte_write(x.pte));
	assert_int_equal(xl(as, X + 4 * PG, &x), 0);
	assert_false(ptk_pte_write(x.pte));
	assert_int_equal(xl(as, X + 8 * PG, &x), 0);
	assert_true(ptk_pte_write(x.pte));

	/* Over a hole: -ENOMEM, nothing changed (regions, entries). */
	struct ptk_as_stats before = as_st(as);
	assert_int_equal(ptk_protect(as, X + 12 * PG, 24 * PG, RO), -ENOMEM);
	assert_int_equal(ptk_protect(as, X + 16 * PG, 4 * PG, RO), -ENOMEM);
	assert_int_equal(ptk_protect(as, X - PG, 2 * PG, RO), -ENOMEM);
	assert_int_equal(ptk_protect(as, X + 47 * PG, 2 * PG, RO), -ENOMEM);
	assert_int_equal(ptk_protect(as, 0, PG, RO), -ENOMEM);
	struct ptk_as_stats after = as_st(as);
	assert_int_equal(after.regions, before.regions);
	assert_int_equal(after.rss_frames, before.rss_frames);
	check_region(as, X + 8 * PG, X + 8 * PG, X + 16 * PG, RW, PTK_REGION_ANON);
	check_region(as, X + 32 * PG, X + 32 * PG, X + 48 * PG, RW, PTK_REGION_ANON);
	for (unsigned i = 8; i < 16; i++) {
		assert_int_equal(xl(as, X + i * PG, &x), 0);
		assert_true(ptk_pte_write(x.pte));
	}
	for (unsigned i = 32; i < 48; i++) {
		assert_int_equal(xl(as, X + i * PG, &x), 0);
		assert_true(ptk_pte_write(x.pte));
	}
	/* Over adjacent regions without a hole: fine. */
	assert_int_equal(ptk_protect(as, X, 16 * PG, RO), 0);
	for (unsigned i = 0; i < 16; i++) {
		assert_int_equal(xl(as, X + i * PG, &x), 0);
		assert_false(ptk_pte_write(x.pte));
	}
	/* Bad protection bits. */
	assert_int_equal(ptk_protect(as, X, PG, 8), -EINVAL);
	assert_int_equal(ptk_protect(as, X, PG, ~0u), -EINVAL);
	check_region(as, X, X, X + 4 * PG, RO, PTK_REGION_ANON);
	test_teardown(ctx, as);
}

/* ---- drop ------------------------------------------------------------------ */

static void drop_zeroes(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = test_ctx(0);
	struct ptk_as *as = new_as(ctx, 0);
	uint64_t X = 2 * GiB - 4 * PG;
	map_fixed(as, X, 16 * PG, RW, 0);
	for (unsigned i = 0; i < 16; i++)
		write_pattern(as, X + i * PG);
	assert_int_equal(rss(as), 16);
	/* Drop the middle 8. */
	assert_int_equal(ptk_drop(as, X + 4 * PG, 8 * PG), 0);
	assert_int_equal(rss(as), 8);
	check_rss_matches_pool(ctx, as);
	check_region(as, X, X, X + 16 * PG, RW, PTK_REGION_ANON);   /* region stays */
	assert_int_equal(as_st(as).regions, 1);
	for (unsigned i = 0; i < 16; i++) {
		if (i >= 4 && i < 12) {
			assert_false(mapped(as, X + i * PG));
			struct ptk_xlate x;
			assert_int_equal(ptk_translate_fault(as, X + i * PG,
							     PTK_ACCESS_READ, &x), 0);
			check_zero_page((uint8_t *)x.host);
		} else {
			check_pattern(as, X + i * PG);
		}
	}
	/* Drop everything: tables reclaimed, region stays. */
	assert_int_equal(ptk_drop(as, X, 16 * PG), 0);
	assert_int_equal(rss(as), 0);
	assert_int_equal(tables(as), 1);
	check_region(as, X, X, X + 16 * PG, RW, PTK_REGION_ANON);
	/* Drop of pages never faulted, twice: fine. */
	assert_int_equal(ptk_drop(as, X, 16 * PG), 0);
	write_pattern(as, X);
	check_pattern(as, X);
	check_rss_matches_pool(ctx, as);
	test_teardown(ctx, as);
}

static void drop_special_and_holes(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = test_ctx(0);
	struct ptk_as *as = new_as(ctx, 0);
	uint64_t X = 4 * GiB;
	uint64_t pfn = U64(1) << 32;
	map_fixed(as, X, 8 * PG, RW, 0);
	uint64_t v = X + 8 * PG;
	assert_int_equal(ptk_map_special(as, &v, 8 * PG, pfn, RW, FIXED), 0);
	map_fixed(as, X + 32 * PG, 8 * PG, RW, 0);
	for (unsigned i = 0; i < 8; i++) {
		write_pattern(as, X + i * PG);
		write_pattern(as, X + (32 + i) * PG);
	}
	/* Anonymous and special adjacent: anon dropped, special intact. */
	assert_int_equal(ptk_drop(as, X, 16 * PG), 0);
	for (unsigned i = 0; i < 8; i++) {
		assert_false(mapped(as, X + i * PG));
		struct ptk_xlate x;
		assert_int_equal(xl(as, X + (8 + i) * PG, &x), 0);
		assert_int_equal(x.pfn, pfn + i);
	}
	assert_int_equal(rss(as), 8);
	/* Over a hole: -ENOMEM, but the mapped parts are dropped. */
	assert_int_equal(ptk_drop(as, X + 8 * PG, 32 * PG), -ENOMEM);
	for (unsigned i = 0; i < 8; i++) {
		assert_false(mapped(as, X + (32 + i) * PG));
		assert_true(mapped(as, X + (8 + i) * PG));
	}
	assert_int_equal(rss(as), 0);
	assert_int_equal(as_st(as).regions, 3);
	/* Entirely unmapped. */
	assert_int_equal(ptk_drop(as, 64 * GiB, PG), -ENOMEM);
	check_rss_matches_pool(ctx, as);
	test_teardown(ctx, as);
}

/* ---- faults ---------------------------------------------------------------- */

static void fault_errors(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = test_ctx(0);
	struct ptk_as *as = new_as(ctx, 0);
	uint64_t X = 3 * GiB;
	map_fixed(as, X, 4 * PG, RO, 0);
	map_fixed(as, X + 4 * PG, 4 * PG, RW, 0);
	map_fixed(as, X + 8 * PG, 4 * PG, PTK_PROT_NONE, 0);
	map_fixed(as, X + 12 * PG, 4 * PG, RWX, 0);
	map_fixed(as, X + 16 * PG, 4 * PG, PTK_PROT_WRITE, 0);

	/* Outside regions. */
	assert_int_equal(ptk_fault(as, 0, PTK_ACCESS_READ), -EFAULT);
	assert_int_equal(ptk_fault(as, X - PG, PTK_ACCESS_READ), -EFAULT);
	assert_int_equal(ptk_fault(as, X + 20 * PG, PTK_ACCESS_WRITE), -EFAULT);
	assert_int_equal(ptk_fault(as, UEND4 - PG, PTK_ACCESS_READ), -EFAULT);
	assert_int_equal(ptk_fault(as, UEND4, PTK_ACCESS_READ), -EFAULT);
	assert_int_equal(ptk_fault(as, U64(0x0001000000000000), PTK_ACCESS_READ), -EFAULT);
	assert_int_equal(ptk_fault(as, U64(0xffff800000000000), PTK_ACCESS_READ), -EFAULT);
	assert_int_equal(ptk_fault(as, UINT64_MAX, PTK_ACCESS_READ), -EFAULT);

	/* Protection. */
	assert_int_equal(ptk_fault(as, X, PTK_ACCESS_WRITE), -EACCES);
	assert_int_equal(ptk_fault(as, X, PTK_ACCESS_EXEC), -EACCES);
	assert_int_equal(ptk_fault(as, X + 4 * PG, PTK_ACCESS_EXEC), -EACCES);
	assert_int_equal(ptk_fault(as, X + 8 * PG, PTK_ACCESS_READ), -EACCES);
	assert_int_equal(ptk_fault(as, X + 8 * PG, PTK_ACCESS_WRITE), -EACCES);
	assert_int_equal(ptk_fault(as, X + 8 * PG, PTK_ACCESS_EXEC), -EACCES);
	assert_int_equal(ptk_fault(as, X + 16 * PG, PTK_ACCESS_READ), -EACCES);
	assert_int_equal(rss(as), 0);                 /* nothing installed */
	assert_int_equal(tables(as), 1);

	assert_int_equal(ptk_fault(as, X, PTK_ACCESS_READ), 0);
	assert_int_equal(ptk_fault(as, X + 4 * PG + 1, PTK_ACCESS_WRITE), 0);
	assert_int_equal(ptk_fault(as, X + 12 * PG + 4095, PTK_ACCESS_EXEC), 0);
	assert_int_equal(ptk_fault(as, X + 16 * PG, PTK_ACCESS_WRITE), 0);
	/* Still refused after a page is present. */
	assert_int_equal(ptk_fault(as, X, PTK_ACCESS_WRITE), -EACCES);
	struct ptk_xlate x;
	assert_int_equal(xl(as, X, &x), 0);
	assert_false(ptk_pte_write(x.pte));
	assert_true(x.pte & PTK_PTE_USER);
	assert_true(x.pte & PTK_PTE_ACCESSED);
	assert_int_equal(xl(as, X + 4 * PG, &x), 0);
	assert_true(ptk_pte_write(x.pte));
	assert_true(x.pte & PTK_PTE_DIRTY);
	assert_false(ptk_pte_special(x.pte));
	assert_int_equal(xl(as, X + 12 * PG, &x), 0);
	assert_int_equal(rss(as), 4);

	/* Bad arguments. */
	assert_int_equal(ptk_fault(as, X, 3), -EINVAL);
	assert_int_equal(ptk_fault(as, X, ~0u), -EINVAL);
	assert_int_equal(ptk_fault(NULL, X, PTK_ACCESS_READ), -EINVAL);

	/* Counters: every fault counted, only installs filled. */
	struct ptk_as_stats st = as_st(as);
	assert_int_equal(st.faults_filled, 4);
	/* 16 faults reached a region lookup; the ones beyond the user half
	 * are rejected earlier (counted or not: not part of the contract). */
	assert_true(st.faults >= 16);
	uint64_t f0 = st.faults;
	assert_int_equal(ptk_fault(as, X, PTK_ACCESS_READ), 0);   /* present already */
	st = as_st(as);
	assert_int_equal(st.faults, f0 + 1);
	assert_int_equal(st.faults_filled, 4);
	assert_int_equal(rss(as), 4);
	test_teardown(ctx, as);
}

static void fault_sets_dirty_and_write(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = test_ctx(0);
	struct ptk_as *as = new_as(ctx, 0);
	uint64_t X = 5 * GiB;
	map_fixed(as, X, 2 * PG, RW, 0);
	assert_int_equal(ptk_fault(as, X, PTK_ACCESS_READ), 0);
	struct ptk_xlate x;
	assert_int_equal(xl(as, X, &x), 0);
	assert_true(x.pte & PTK_PTE_ACCESSED);
	assert_false(x.pte & PTK_PTE_DIRTY);
	uint64_t pfn = x.pfn;
	/* A write fault on the present page marks it dirty, same frame. */
	assert_int_equal(ptk_fault(as, X, PTK_ACCESS_WRITE), 0);
	assert_int_equal(xl(as, X, &x), 0);
	assert_true(x.pte & PTK_PTE_DIRTY);
	assert_true(ptk_pte_write(x.pte));
	assert_int_equal(x.pfn, pfn);
	assert_int_equal(rss(as), 1);
	assert_int_equal(as_st(as).faults_filled, 1);
	test_teardown(ctx, as);
}

/* ---- populate and translate_fault ----------------------------------------- */

static void populate_basic(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = test_ctx(0);
	struct ptk_as *as = new_as(ctx, 0);
	uint64_t X = GiB - 520 * PG;          /* spans 3 PTE tables and 2 PMD tables */
	uint64_t n = 1040;
	map_fixed(as, X, n * PG, RW, 0);
	assert_int_equal(ptk_populate(as, X, n * PG, PTK_ACCESS_WRITE), 0);
	assert_int_equal(rss(as), n);
	for (uint64_t i = 0; i < n; i += 37) {
		struct ptk_xlate x;
		assert_int_equal(xl(as, X + i * PG, &x), 0);
		assert_true(ptk_pte_write(x.pte));
		check_zero_page(x.host);
	}
	/* 1 root + 2 L2? no: one L2 (same 512 GiB), 2 L1, 4 L0 (520 pages
	 * below the 1 GiB line span 2 L0 tables, 520 above span 2). */
	assert_int_equal(tables(as), 1 + 1 + 2 + 4);
	check_rss_matches_pool(ctx, as);
	/* Populating again changes nothing. */
	assert_int_equal(ptk_populate(as, X, n * PG, PTK_ACCESS_READ), 0);
	assert_int_equal(rss(as), n);
	assert_int_equal(as_st(as).faults_filled, n);

	/* Past the region end: stops at the first error, earlier pages stay. */
	uint64_t Y = 8 * GiB;
	map_fixed(as, Y, 4 * PG, RW, 0);
	assert_int_equal(ptk_populate(as, Y, 8 * PG, PTK_ACCESS_READ), -EFAULT);
	for (unsigned i = 0; i < 4; i++)
		assert_true(mapped(as, Y + i * PG));
	/* Write populate of a read-only region. */
	uint64_t Z = 9 * GiB;
	map_fixed(as, Z, 4 * PG, RO, 0);
	assert_int_equal(ptk_populate(as, Z, 4 * PG, PTK_ACCESS_WRITE), -EACCES);
	assert_false(mapped(as, Z));
	assert_int_equal(ptk_populate(as, Z, 4 * PG, PTK_ACCESS_READ), 0);
	/* Nothing mapped at all. */
	assert_int_equal(ptk_populate(as, 10 * GiB, PG, PTK_ACCESS_READ), -EFAULT);
	/* Bad arguments. */
	assert_int_equal(ptk_populate(NULL, Y, PG, PTK_ACCESS_READ), -EINVAL);
	assert_int_equal(ptk_populate(as, Y + 1, PG, PTK_ACCESS_READ), -EINVAL);
	assert_int_equal(ptk_populate(as, Y, PG + 1, PTK_ACCESS_READ), -EINVAL);
	assert_int_equal(ptk_populate(as, Y, UINT64_MAX & ~(PG - 1), PTK_ACCESS_READ), -EINVAL);

	/* MAP_POPULATE. */
	uint64_t P = 0;
	assert_int_equal(ptk_map_anon(as, &P, 64 * PG, RW, PTK_MAP_POPULATE), 0);
	for (unsigned i = 0; i < 64; i++) {
		struct ptk_xlate x;
		assert_int_equal(xl(as, P + i * PG, &x), 0);
		assert_true(ptk_pte_write(x.pte));
	}
	uint64_t Q = 0;   /* PROT_NONE with populate: mapping stands, nothing in */
	assert_int_equal(ptk_map_anon(as, &Q, 4 * PG, PTK_PROT_NONE, PTK_MAP_POPULATE), 0);
	assert_false(mapped(as, Q));
	check_region(as, Q, Q, Q + 4 * PG, PTK_PROT_NONE, PTK_REGION_ANON);
	check_rss_matches_pool(ctx, as);
	test_teardown(ctx, as);
}

static void translate_fault_basic(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = test_ctx(0);
	struct ptk_as *as = new_as(ctx, 0);
	uint64_t X = 6 * GiB;
	map_fixed(as, X, 4 * PG, RW, 0);
	struct ptk_xlate x, y;
	assert_int_equal(ptk_translate(as, X, &x), -EFAULT);
	assert_int_equal(ptk_translate_fault(as, X + 100, PTK_ACCESS_READ, &x), 0);
	assert_int_equal(x.level, 0);
	assert_int_equal(x.page_size, PG);
	assert_non_null(x.host);
	assert_int_equal((uintptr_t)x.host & (PG - 1), 100);
	assert_ptr_equal(x.host, (uint8_t *)ptk_pfn_host(ctx, x.pfn) + 100);
	assert_int_equal(ptk_translate(as, X + 200, &y), 0);
	assert_int_equal(y.pfn, x.pfn);
	assert_int_equal(y.pte, x.pte);
	assert_int_equal(ptk_translate_fault(as, X + PG, PTK_ACCESS_WRITE, &x), 0);
	assert_true(ptk_pte_write(x.pte));
	assert_int_equal(ptk_translate_fault(as, X + 4 * PG, PTK_ACCESS_READ, &x), -EFAULT);
	assert_int_equal(ptk_translate_fault(as, UEND4, PTK_ACCESS_READ, &x), -EFAULT);
	assert_int_equal(ptk_translate_fault(NULL, X, PTK_ACCESS_READ, &x), -EINVAL);
	assert_int_equal(ptk_translate_fault(as, X, PTK_ACCESS_READ, NULL), -EINVAL);
	assert_int_equal(ptk_translate(NULL, X, &x), -EINVAL);
	assert_int_equal(ptk_translate(as, X, NULL), -EINVAL);
	/* Distinct pages, distinct frames. */
	assert_int_equal(ptk_translate_fault(as, X + 2 * PG, PTK_ACCESS_READ, &y), 0);
	assert_true(y.pfn != x.pfn);
	test_teardown(ctx, as);
}

/* ---- huge anonymous -------------------------------------------------------- */

static void huge_anon_fault_and_split(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = test_ctx(0);
	struct ptk_as *as = new_as(ctx, 0);
	uint64_t X = 0;
	assert_int_equal(ptk_map_anon(as, &X, 4 * MiB, RW, PTK_MAP_HUGE), 0);
	assert_int_equal(X & (PTK_HUGE_2M - 1), 0);
	struct ptk_region_info ri;
	assert_int_equal(ptk_region_query(as, X, &ri), 0);
	assert_true(ri.flags & PTK_MAP_HUGE);

	assert_int_equal(ptk_fault(as, X + 5 * PG, PTK_ACCESS_WRITE), 0);
	struct ptk_xlate x;
	assert_int_equal(xl(as, X + 5 * PG, &x), 0);
	assert_int_equal(x.level, 1);
	assert_int_equal(x.page_size, PTK_HUGE_2M);
	uint64_t head = ptk_pte_pfn(x.pte);
	assert_int_equal(head % 512, 0);
	assert_int_equal(x.pfn, head + 5);
	assert_int_equal(rss(as), 512);
	assert_int_equal(tables(as), 3);       /* root, L2, L1: no PTE table */
	struct ptk_pool_stats ps = pool_st(ctx);
	assert_int_equal(ps.huge_in_use, 1);
	assert_int_equal(as_st(as).faults_filled, 1);

	/* Every page of the 2 MiB is there (one fault), contiguous frames. */
	for (unsigned i = 0; i < 512; i++) {
		assert_int_equal(xl(as, X + i * PG, &x), 0);
		assert_int_equal(x.pfn, head + i);
		uint64_t *p = x.host;
		p[0] = X + i * PG;
		p[511] = i;
	}
	/* populate skips over the huge leaf without new faults. */
	uint64_t f0 = as_st(as).faults;
	assert_int_equal(ptk_populate(as, X, PTK_HUGE_2M, PTK_ACCESS_WRITE), 0);
	assert_int_equal(as_st(as).faults, f0);

	/* Unmap one 4 KiB page in the middle: the leaf is split. */
	assert_int_equal(ptk_unmap(as, X + 100 * PG, PG), 0);
	assert_false(mapped(as, X + 100 * PG));
	check_rss_pool_held(ctx, as, 1);
	for (unsigned i = 0; i < 512; i++) {
		if (i == 100)
			continue;
		assert_int_equal(xl(as, X + i * PG, &x), 0);
		assert_int_equal(x.level, 0);
		assert_int_equal(x.pfn, head + i);     /* same frames */
		assert_true(ptk_pte_write(x.pte));
		uint64_t *p = x.host;
		assert_int_equal(p[0], X + i * PG);    /* data preserved */
		assert_int_equal(p[511], i);
	}
	assert_int_equal(rss(as), 511);
	assert_int_equal(tables(as), 4);
	ps = pool_st(ctx);
	assert_int_equal(ps.huge_in_use, 1);       /* frame still alive */
	check_region(as, X, X, X + 100 * PG, RW, PTK_REGION_ANON);
	check_region(as, X + 101 * PG, X + 101 * PG, X + 4 * MiB, RW, PTK_REGION_ANON);

	/* The second 2 MiB still gets a huge leaf. */
	assert_int_equal(ptk_fault(as, X + PTK_HUGE_2M, PTK_ACCESS_READ), 0);
	assert_int_equal(xl(as, X + PTK_HUGE_2M + 7 * PG, &x), 0);
	assert_int_equal(x.level, 1);
	ps = pool_st(ctx);
	assert_int_equal(ps.huge_in_use, 2);
	assert_int_equal(rss(as), 511 + 512);

	/* Drop part of the split one; unmap the rest of it: the huge frame
	 * goes back when its last page goes. */
	assert_int_equal(ptk_drop(as, X, 100 * PG), 0);
	assert_int_equal(rss(as), 411 + 512);
	assert_int_equal(ptk_unmap(as, X + 101 * PG, PTK_HUGE_2M - 101 * PG), 0);
	assert_int_equal(rss(as), 512);
	ps = pool_st(ctx);
	assert_int_equal(ps.huge_in_use, 1);
	/* The dropped part faults back as 4 KiB zero pages (the region no
	 * longer covers a whole 2 MiB block). */
	assert_int_equal(ptk_translate_fault(as, X + 3 * PG, PTK_ACCESS_READ, &x), 0);
	check_zero_page((uint8_t *)x.host);
	check_rss_matches_pool(ctx, as);
	test_teardown(ctx, as);
}

static void huge_anon_protect_split(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = test_ctx(0);
	struct ptk_as *as = new_as(ctx, 0);
	uint64_t X = 16 * GiB;
	map_fixed(as, X, 2 * PTK_HUGE_2M, RW, PTK_MAP_HUGE);
	assert_int_equal(ptk_populate(as, X, 2 * PTK_HUGE_2M, PTK_ACCESS_WRITE), 0);
	struct ptk_xlate x;
	assert_int_equal(xl(as, X + PTK_HUGE_2M, &x), 0);
	assert_int_equal(x.level, 1);
	uint64_t head = ptk_pte_pfn(x.pte);
	/* 2 MiB-aligned protect: no split. */
	assert_int_equal(ptk_protect(as, X + PTK_HUGE_2M, PTK_HUGE_2M, RO), 0);
	assert_int_equal(xl(as, X + PTK_HUGE_2M, &x), 0);
	assert_int_equal(x.level, 1);
	assert_false(ptk_pte_write(x.pte));
	/* 4 KiB inside: split, only that page read-only. */
	assert_int_equal(ptk_protect(as, X + 10 * PG, PG, RO), 0);
	assert_int_equal(xl(as, X + 10 * PG, &x), 0);
	assert_int_equal(x.level, 0);
	assert_false(ptk_pte_write(x.pte));
	assert_int_equal(xl(as, X + 11 * PG, &x), 0);
	assert_true(ptk_pte_write(x.pte));
	assert_int_equal(xl(as, X + 9 * PG, &x), 0);
	assert_true(ptk_pte_write(x.pte));
	assert_int_equal(ptk_fault(as, X + 10 * PG, PTK_ACCESS_WRITE), -EACCES);
	assert_int_equal(ptk_fault(as, X + 11 * PG, PTK_ACCESS_WRITE), 0);
	assert_int_equal(as_st(as).regions, 4);
	/* A fixed map over a 4 KiB piece of the second (RO) huge leaf. */
	map_fixed(as, X + PTK_HUGE_2M + 3 * PG, PG, RW, 0);
	assert_false(mapped(as, X + PTK_HUGE_2M + 3 * PG));
	assert_int_equal(xl(as, X + PTK_HUGE_2M + 4 * PG, &x), 0);
	assert_int_equal(x.pfn, head + 4);
	assert_int_equal(x.level, 0);
	assert_int_equal(rss(as), 1023);
	/* The unmapped 4 KiB stays allocated with its huge frame. */
	check_rss_pool_held(ctx, as, 1);
	test_teardown(ctx, as);
}

static void huge_anon_partial_and_fallback(void **state)
{
	(void)state;
	/* 4 MiB pool: the root splits one chunk, one whole chunk is left. */
	struct ptk_ctx *ctx = ctx_one_shard(4 * MiB);
	struct ptk_as *as = new_as(ctx, 0);
	/* A huge region that is not 2 MiB aligned: only fully covered 2 MiB
	 * blocks get huge leaves. */
	uint64_t X = GiB - PG;
	map_fixed(as, X, PG + 3 * PTK_HUGE_2M, RW, PTK_MAP_HUGE);
	struct ptk_xlate x;
	assert_int_equal(ptk_fault(as, X, PTK_ACCESS_WRITE), 0);
	assert_int_equal(xl(as, X, &x), 0);
	assert_int_equal(x.level, 0);
	assert_int_equal(ptk_fault(as, GiB, PTK_ACCESS_WRITE), 0);
	assert_int_equal(xl(as, GiB + 9 * PG, &x), 0);
	assert_int_equal(x.level, 1);
	assert_int_equal(pool_st(ctx).huge_in_use, 1);
	/* No whole chunk left: the next 2 MiB falls back to 4 KiB pages. */
	assert_int_equal(ptk_fault(as, GiB + PTK_HUGE_2M, PTK_ACCESS_WRITE), 0);
	assert_int_equal(xl(as, GiB + PTK_HUGE_2M, &x), 0);
	assert_int_equal(x.level, 0);
	assert_false(mapped(as, GiB + PTK_HUGE_2M + PG));
	assert_int_equal(rss(as), 1 + 512 + 1);
	/* Give the huge frame back; the chunk is whole again, but the third
	 * block already has a PTE table: still 4 KiB pages there. */
	assert_int_equal(ptk_drop(as, GiB, PTK_HUGE_2M), 0);
	assert_int_equal(pool_st(ctx).huge_in_use, 0);
	assert_int_equal(ptk_fault(as, GiB + PTK_HUGE_2M + 5 * PG, PTK_ACCESS_WRITE), 0);
	assert_int_equal(xl(as, GiB + PTK_HUGE_2M + 5 * PG, &x), 0);
	assert_int_equal(x.level, 0);
	/* ...and the dropped block gets a huge leaf again. */
	assert_int_equal(ptk_fault(as, GiB + 5 * PG, PTK_ACCESS_READ), 0);
	assert_int_equal(xl(as, GiB, &x), 0);
	assert_int_equal(x.level, 1);
	/* Injected failure of the huge frame: 4 KiB fallback, still 0. */
	assert_int_equal(ptk_drop(as, GiB, PTK_HUGE_2M), 0);
	ptk_ctx_inject_failure(ctx, PTK_INJECT_DATA, 1);
	assert_int_equal(ptk_fault(as, GiB, PTK_ACCESS_READ), 0);
	assert_int_equal(xl(as, GiB, &x), 0);
	assert_int_equal(x.level, 0);
	check_rss_matches_pool(ctx, as);
	test_teardown(ctx, as);
}

/* ---- five levels ----------------------------------------------------------- */

static void five_level(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = test_ctx(0);
	struct ptk_as *as = new_as(ctx, 5);
	assert_int_equal(ptk_as_levels(as), 5);
	assert_int_equal(ptk_as_user_end(as), UEND5);
	assert_int_equal(tables(as), 1);

	/* Above 2^47 (non-canonical in a 4-level tree). */
	uint64_t X = (U64(1) << 52) + 3 * GiB;
	map_fixed(as, X, 4 * PG, RW, 0);
	write_pattern(as, X + PG);
	assert_int_equal(tables(as), 5);
	check_pattern(as, X + PG);
	uint64_t Y = UEND4;                    /* exactly 2^47 */
	map_fixed(as, Y, PG, RW, 0);
	write_pattern(as, Y);
	check_pattern(as, Y);
	/* The last page of the 5-level user half. */
	uint64_t L = UEND5 - PG;
	map_fixed(as, L, PG, RW, 0);
	write_pattern(as, L);
	check_pattern(as, L);
	struct ptk_xlate x;
	assert_int_equal(xl(as, L + PG - 1, &x), 0);
	/* Beyond the user half. */
	uint64_t v = UEND5;
	assert_int_equal(ptk_map_anon(as, &v, PG, RW, FIXED), -EINVAL);
	v = L;
	assert_int_equal(ptk_map_anon(as, &v, 2 * PG, RW, FIXED), -EINVAL);
	assert_int_equal(ptk_fault(as, UEND5, PTK_ACCESS_READ), -EFAULT);
	assert_int_equal(ptk_translate(as, UEND5, &x), -EFAULT);
	assert_int_equal(ptk_translate(as, U64(0xfe00000000000000), &x), -EFAULT);
	assert_int_equal(ptk_translate(as, U64(0xff00000000000000), &x), -EFAULT);
	assert_int_equal(ptk_unmap(as, UEND5, PG), -EINVAL);
	/* A hint above 2^47 is honoured. */
	uint64_t h = U64(1) << 50;
	v = h;
	assert_int_equal(ptk_map_anon(as, &v, 8 * PG, RW, 0), 0);
	assert_int_equal(v, h);
	/* Huge leaves work in 5-level trees too. */
	uint64_t H = U64(1) << 53;
	map_fixed(as, H, PTK_HUGE_2M, RW, PTK_MAP_HUGE);
	assert_int_equal(ptk_fault(as, H, PTK_ACCESS_WRITE), 0);
	assert_int_equal(xl(as, H + 77 * PG, &x), 0);
	assert_int_equal(x.level, 1);
	uint64_t S = U64(1) << 54;
	v = S;
	assert_int_equal(ptk_map_special(as, &v, GiB, U64(1) << 20, RO,
					 FIXED | PTK_MAP_HUGE), 0);
	assert_int_equal(xl(as, S + 5 * MiB, &x), 0);
	assert_int_equal(x.level, 2);
	assert_int_equal(x.pfn, (U64(1) << 20) + (5 * MiB) / PG);
	check_rss_matches_pool(ctx, as);
	/* Unmap everything: only the root remains. */
	assert_int_equal(ptk_unmap(as, 0, UEND5), 0);
	assert_int_equal(tables(as), 1);
	assert_int_equal(rss(as), 0);
	check_rss_matches_pool(ctx, as);

	/* The same addresses in a 4-level space of the same context. */
	struct ptk_as *as4 = new_as(ctx, 4);
	v = X;
	assert_int_equal(ptk_map_anon(as4, &v, PG, RW, FIXED), -EINVAL);
	assert_int_equal(ptk_fault(as4, X, PTK_ACCESS_READ), -EFAULT);
	assert_int_equal(ptk_translate(as4, X, &x), -EFAULT);
	assert_int_equal(ptk_translate(as4, UEND4, &x), -EFAULT);
	ptk_as_destroy(as4);
	test_teardown(ctx, as);
}

static void five_level_ctx_default(void **state)
{
	(void)state;
	struct ptk_ctx_config cfg;
	ptk_ctx_config_default(&cfg);
	cfg.pool_bytes = 16 * MiB;
	cfg.levels = 5;
	struct ptk_ctx *ctx = NULL;
	assert_int_equal(ptk_ctx_create(&cfg, &ctx), 0);
	struct ptk_as *as = new_as(ctx, 0);
	assert_int_equal(ptk_as_levels(as), 5);
	uint64_t X = U64(0x00f0000000000000);
	map_fixed(as, X, PG, RW, 0);
	assert_int_equal(ptk_fault(as, X, PTK_ACCESS_WRITE), 0);
	assert_int_equal(tables(as), 5);
	/* A 4-level space in a 5-level context. */
	struct ptk_as *as4 = new_as(ctx, 4);
	assert_int_equal(ptk_as_levels(as4), 4);
	ptk_as_destroy(as4);
	test_teardown(ctx, as);
}

/* ---- edge addresses and argument checks ------------------------------------ */

static void edge_zero_and_top(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = test_ctx(0);
	struct ptk_as *as = new_as(ctx, 0);
	/* Page 0 with FIXED. */
	map_fixed(as, 0, PG, RW, 0);
	check_region(as, 0, 0, PG, RW, PTK_REGION_ANON);
	assert_int_equal(ptk_fault(as, 0, PTK_ACCESS_WRITE), 0);
	write_pattern(as, 0);
	check_pattern(as, 0);
	struct ptk_xlate x;
	assert_int_equal(xl(as, 4095, &x), 0);
	assert_int_equal(ptk_protect(as, 0, PG, RO), 0);
	assert_int_equal(ptk_drop(as, 0, PG), 0);
	assert_false(mapped(as, 0));
	assert_int_equal(ptk_unmap(as, 0, PG), 0);
	check_no_region(as, 0);
	assert_int_equal(ptk_fault(as, 0, PTK_ACCESS_READ), -EFAULT);

	/* The last page of the user half. */
	uint64_t L = UEND4 - PG;
	map_fixed(as, L, PG, RW, 0);
	write_pattern(as, L);
	check_pattern(as, L);
	assert_int_equal(xl(as, UEND4 - 1, &x), 0);
	assert_int_equal(ptk_protect(as, L, PG, RO), 0);
	assert_int_equal(ptk_fault(as, L, PTK_ACCESS_WRITE), -EACCES);
	assert_int_equal(ptk_drop(as, L, PG), 0);
	assert_int_equal(ptk_populate(as, L, PG, PTK_ACCESS_READ), 0);
	assert_int_equal(ptk_unmap(as, L, PG), 0);
	assert_false(mapped(as, L));
	/* A range ending exactly at the end of the user half. */
	map_fixed(as, UEND4 - 2 * MiB, 2 * MiB, RW, PTK_MAP_HUGE);
	assert_int_equal(ptk_populate(as, UEND4 - 2 * MiB, 2 * MiB, PTK_ACCESS_WRITE), 0);
	assert_int_equal(xl(as, UEND4 - PG, &x), 0);
	assert_int_equal(x.level, 1);
	assert_int_equal(ptk_unmap(as, UEND4 - PG, PG), 0);
	assert_int_equal(xl(as, UEND4 - 2 * PG, &x), 0);
	assert_int_equal(x.level, 0);
	/* The whole user half in one special mapping. */
	uint64_t v = 0;
	assert_int_equal(ptk_unmap(as, 0, UEND4), 0);
	assert_int_equal(ptk_map_special(as, &v, UEND4, 0, RO, FIXED | PTK_MAP_HUGE), 0);
	assert_int_equal(xl(as, 0, &x), 0);
	assert_int_equal(x.pfn, 0);
	assert_int_equal(xl(as, UEND4 - 1, &x), 0);
	assert_int_equal(x.pfn, (UEND4 - 1) >> PTK_PAGE_SHIFT);
	assert_int_equal(x.level, 2);
	assert_int_equal(tables(as), 1 + 256);   /* root + one L2 per slot */
	test_teardown(ctx, as);
}

static void edge_bad_ranges(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = test_ctx(0);
	struct ptk_as *as = new_as(ctx, 0);
	uint64_t X = GiB;
	map_fixed(as, X, 4 * PG, RW, 0);
	assert_int_equal(ptk_populate(as, X, 4 * PG, PTK_ACCESS_WRITE), 0);
	struct ptk_as_stats before = as_st(as);

	static const uint64_t bad_va[] = {
		UEND4,                         /* first non-canonical */
		U64(0x0000800000001000),
		U64(0x0001000000000000),
		U64(0x7ffffffffffff000),
		U64(0x8000000000000000),
		U64(0xffff800000000000),      /* kernel half, canonical */
		U64(0xfffffffffffff000),
	};
	for (size_t i = 0; i < sizeof(bad_va) / sizeof(bad_va[0]); i++) {
		uint64_t va = bad_va[i], v = va;
		struct ptk_xlate x;
		assert_int_equal(ptk_map_anon(as, &v, PG, RW, FIXED), -EINVAL);
		assert_int_equal(v, va);
		assert_int_equal(ptk_map_anon(as, &v, PG, RW, PTK_MAP_NOREPLACE), -EINVAL);
		assert_int_equal(ptk_map_special(as, &v, PG, 1, RW, FIXED), -EINVAL);
		assert_int_equal(ptk_unmap(as, va, PG), -EINVAL);
		assert_int_equal(ptk_protect(as, va, PG, RO), -EINVAL);
		assert_int_equal(ptk_drop(as, va, PG), -EINVAL);
		assert_int_equal(ptk_fault(as, va, PTK_ACCESS_READ), -EFAULT);
		assert_int_equal(ptk_fault(as, va + 123, PTK_ACCESS_WRITE), -EFAULT);
		assert_int_equal(ptk_translate(as, va, &x), -EFAULT);
		assert_int_equal(ptk_translate(as, va + 5, &x), -EFAULT);
		assert_int_equal(ptk_translate_fault(as, va, PTK_ACCESS_READ, &x), -EFAULT);
	}
	/* Ranges crossing the end of the user half. */
	uint64_t v = UEND4 - PG;
	assert_int_equal(ptk_map_anon(as, &v, 2 * PG, RW, FIXED), -EINVAL);
	assert_int_equal(ptk_unmap(as, UEND4 - PG, 2 * PG), -EINVAL);
	assert_int_equal(ptk_protect(as, UEND4 - PG, 2 * PG, RO), -EINVAL);
	assert_int_equal(ptk_drop(as, UEND4 - PG, 2 * PG), -EINVAL);
	assert_int_equal(ptk_unmap(as, 0, UEND4 + PG), -EINVAL);

	/* Unaligned address or length. */
	static const uint64_t bad_off[] = { 1, 8, 0x800, PG - 1 };
	for (size_t i = 0; i < sizeof(bad_off) / sizeof(bad_off[0]); i++) {
		uint64_t o = bad_off[i];
		v = X + o;
		assert_int_equal(ptk_map_anon(as, &v, PG, RW, FIXED), -EINVAL);
		v = 8 * GiB + o;
		assert_int_equal(ptk_map_anon(as, &v, PG, RW, 0), -EINVAL);   /* hint */
		v = 8 * GiB;
		assert_int_equal(ptk_map_anon(as, &v, PG + o, RW, FIXED), -EINVAL);
		v = 0;
		assert_int_equal(ptk_map_anon(as, &v, o, RW, 0), -EINVAL);
		v = 8 * GiB;
		assert_int_equal(ptk_map_special(as, &v, PG + o, 1, RW, FIXED), -EINVAL);
		v = 8 * GiB + o;
		assert_int_equal(ptk_map_special(as, &v, PG, 1, RW, FIXED), -EINVAL);
		assert_int_equal(ptk_unmap(as, X + o, PG), -EINVAL);
		assert_int_equal(ptk_unmap(as, X, PG + o), -EINVAL);
		assert_int_equal(ptk_protect(as, X + o, PG, RO), -EINVAL);
		assert_int_equal(ptk_protect(as, X, o, RO), -EINVAL);
		assert_int_equal(ptk_drop(as, X + o, PG), -EINVAL);
		assert_int_equal(ptk_drop(as, X, PG + o), -EINVAL);
	}
	/* Zero length. */
	v = 8 * GiB;
	assert_int_equal(ptk_map_anon(as, &v, 0, RW, FIXED), -EINVAL);
	v = 0;
	assert_int_equal(ptk_map_anon(as, &v, 0, RW, 0), -EINVAL);
	assert_int_equal(ptk_map_special(as, &v, 0, 1, RW, 0), -EINVAL);
	assert_int_equal(ptk_unmap(as, X, 0), -EINVAL);
	assert_int_equal(ptk_protect(as, X, 0, RO), -EINVAL);
	assert_int_equal(ptk_drop(as, X, 0), -EINVAL);
	/* va + len overflows. */
	uint64_t huge_len = UINT64_MAX & ~(PG - 1);
	v = X;
	assert_int_equal(ptk_map_anon(as, &v, huge_len, RW, FIXED), -EINVAL);
	v = PG;
	assert_int_equal(ptk_map_anon(as, &v, huge_len, RW, FIXED), -EINVAL);  /* == 2^64 */
	assert_int_equal(ptk_map_special(as, &v, huge_len, 0, RW, FIXED), -EINVAL);
	assert_int_equal(ptk_unmap(as, X, huge_len), -EINVAL);
	assert_int_equal(ptk_unmap(as, PG, huge_len), -EINVAL);
	assert_int_equal(ptk_protect(as, X, huge_len, RO), -EINVAL);
	assert_int_equal(ptk_drop(as, X, huge_len), -EINVAL);
	assert_int_equal(ptk_populate(as, X, huge_len, PTK_ACCESS_READ), -EINVAL);
	/* Without FIXED a length beyond the user half has no room. */
	v = 0;
	assert_int_equal(ptk_map_anon(as, &v, huge_len, RW, 0), -ENOMEM);

	/* NULL arguments. */
	v = X;
	assert_int_equal(ptk_map_anon(NULL, &v, PG, RW, 0), -EINVAL);
	assert_int_equal(ptk_map_anon(as, NULL, PG, RW, 0), -EINVAL);
	assert_int_equal(ptk_map_special(NULL, &v, PG, 1, RW, 0), -EINVAL);
	assert_int_equal(ptk_map_special(as, NULL, PG, 1, RW, 0), -EINVAL);
	assert_int_equal(ptk_unmap(NULL, X, PG), -EINVAL);
	assert_int_equal(ptk_protect(NULL, X, PG, RO), -EINVAL);
	assert_int_equal(ptk_drop(NULL, X, PG), -EINVAL);
	assert_int_equal(ptk_region_query(NULL, X, NULL), -EINVAL);
	assert_int_equal(ptk_region_query(as, X, NULL), -EINVAL);

	/* Unknown flags and protections. */
	v = 8 * GiB;
	assert_int_equal(ptk_map_anon(as, &v, PG, RW, FIXED | (PTK_MAP_MASK + 1)), -EINVAL);
	assert_int_equal(ptk_map_anon(as, &v, PG, RW, 1u << 31), -EINVAL);
	assert_int_equal(ptk_map_anon(as, &v, PG, 8, FIXED), -EINVAL);
	assert_int_equal(ptk_map_anon(as, &v, PG, ~0u, FIXED), -EINVAL);
	assert_int_equal(ptk_map_special(as, &v, PG, 1, RW, 1u << 4), -EINVAL);
	assert_int_equal(ptk_map_special(as, &v, PG, 1, 1u << 3, FIXED), -EINVAL);
	assert_int_equal(v, 8 * GiB);

	/* Nothing changed by any of it. */
	struct ptk_as_stats after = as_st(as);
	assert_int_equal(after.regions, before.regions);
	assert_int_equal(after.mapped_bytes, before.mapped_bytes);
	assert_int_equal(after.rss_frames, before.rss_frames);
	assert_int_equal(after.table_pages, before.table_pages);
	check_region(as, X, X, X + 4 * PG, RW, PTK_REGION_ANON);
	for (unsigned i = 0; i < 4; i++)
		assert_true(mapped(as, X + i * PG));
	check_rss_matches_pool(ctx, as);
	test_teardown(ctx, as);
}

/* ---- accounting ------------------------------------------------------------ */

static void table_accounting(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = test_ctx(0);
	struct ptk_as *as = new_as(ctx, 4);
	struct ptk_as_stats st = as_st(as);
	assert_int_equal(st.table_pages, 1);
	assert_int_equal(st.table_bytes, PG);
	assert_int_equal(pool_st(ctx).in_use[PTK_FRAME_TABLE], 1);

	uint64_t X = 4 * GiB;
	map_fixed(as, X, 2 * GiB, RW, 0);
	assert_int_equal(tables(as), 1);           /* map allocates none */
	assert_int_equal(ptk_fault(as, X, PTK_ACCESS_READ), 0);
	assert_int_equal(tables(as), 4);
	assert_int_equal(as_st(as).table_bytes, 4 * PG);
	assert_int_equal(ptk_fault(as, X + PG, PTK_ACCESS_READ), 0);
	assert_int_equal(tables(as), 4);           /* same PTE table */
	assert_int_equal(ptk_fault(as, X + PTK_HUGE_2M, PTK_ACCESS_READ), 0);
	assert_int_equal(tables(as), 5);           /* new PTE table */
	assert_int_equal(ptk_fault(as, X + GiB, PTK_ACCESS_READ), 0);
	assert_int_equal(tables(as), 7);           /* new PMD and PTE tables */
	check_rss_matches_pool(ctx, as);

	/* Unmap one page of a shared PTE table: nothing reclaimed. */
	assert_int_equal(ptk_unmap(as, X, PG), 0);
	assert_int_equal(tables(as), 7);
	/* Its last page: the PTE table goes. */
	assert_int_equal(ptk_unmap(as, X + PG, PG), 0);
	assert_int_equal(tables(as), 6);
	/* The second GiB: PTE and PMD go. */
	assert_int_equal(ptk_unmap(as, X + GiB, PG), 0);
	assert_int_equal(tables(as), 4);
	check_rss_matches_pool(ctx, as);
	/* Everything: back to the root alone. */
	assert_int_equal(ptk_unmap(as, X, 2 * GiB), 0);
	assert_int_equal(tables(as), 1);
	check_rss_matches_pool(ctx, as);
	/* Drop reclaims too. */
	map_fixed(as, X, 2 * GiB, RW, 0);
	assert_int_equal(ptk_fault(as, X + 3 * PTK_HUGE_2M, PTK_ACCESS_WRITE), 0);
	assert_int_equal(tables(as), 4);
	assert_int_equal(ptk_drop(as, X, 2 * GiB), 0);
	assert_int_equal(tables(as), 1);
	/* Protect allocates no tables. */
	assert_int_equal(ptk_protect(as, X, 2 * GiB, RO), 0);
	assert_int_equal(tables(as), 1);
	check_rss_matches_pool(ctx, as);
	test_teardown(ctx, as);
}

static void rss_accounting(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = test_ctx(0);
	struct ptk_as *as = new_as(ctx, 0);
	uint64_t X = 32 * GiB;
	map_fixed(as, X, 64 * PG, RW, 0);
	assert_int_equal(rss(as), 0);
	assert_int_equal(ptk_populate(as, X, 10 * PG, PTK_ACCESS_READ), 0);
	assert_int_equal(rss(as), 10);
	assert_int_equal(ptk_populate(as, X, 20 * PG, PTK_ACCESS_WRITE), 0);
	assert_int_equal(rss(as), 20);
	uint64_t H = 34 * GiB;
	map_fixed(as, H, PTK_HUGE_2M, RW, PTK_MAP_HUGE);
	assert_int_equal(ptk_fault(as, H, PTK_ACCESS_READ), 0);
	assert_int_equal(rss(as), 20 + 512);
	uint64_t v = 36 * GiB;
	assert_int_equal(ptk_map_special(as, &v, 16 * PG, U64(1) << 30, RW, FIXED), 0);
	assert_int_equal(rss(as), 20 + 512);      /* special: not counted */
	check_rss_matches_pool(ctx, as);
	assert_int_equal(ptk_drop(as, X, 5 * PG), 0);
	assert_int_equal(rss(as), 15 + 512);
	assert_int_equal(ptk_unmap(as, X + 10 * PG, 5 * PG), 0);
	assert_int_equal(rss(as), 10 + 512);
	map_fixed(as, X + 15 * PG, 2 * PG, RW, 0);  /* replaces 2 */
	assert_int_equal(rss(as), 8 + 512);
	assert_int_equal(ptk_unmap(as, H + PG, PG), 0);
	assert_int_equal(rss(as), 8 + 511);
	check_rss_pool_held(ctx, as, 1);
	assert_int_equal(ptk_unmap(as, 0, UEND4), 0);
	assert_int_equal(rss(as), 0);
	assert_int_equal(as_st(as).mapped_bytes, 0);
	check_rss_matches_pool(ctx, as);
	test_teardown(ctx, as);
}

static void two_spaces_independent(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = test_ctx(0);
	struct ptk_as *a = new_as(ctx, 0);
	struct ptk_as *b = new_as(ctx, 0);
	uint64_t X = GiB;
	map_fixed(a, X, 4 * PG, RW, 0);
	map_fixed(b, X, 4 * PG, RW, 0);
	write_pattern(a, X);
	assert_false(mapped(b, X));
	assert_int_equal(ptk_fault(b, X, PTK_ACCESS_READ), 0);
	check_zero_page(host(b, X));
	check_pattern(a, X);
	assert_true(host(a, X) != host(b, X));
	ptk_as_destroy(b);
	check_pattern(a, X);
	assert_int_equal(pool_st(ctx).in_use[PTK_FRAME_DATA], 1);
	test_teardown(ctx, a);
}

/* ---- running out of memory -------------------------------------------------- */

static void enomem_small_pool(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = ctx_one_shard(4 * MiB);
	struct ptk_as *as = new_as(ctx, 0);
	uint64_t X = GiB;
	map_fixed(as, X, 8 * MiB, RW, 0);
	assert_int_equal(ptk_populate(as, X, 8 * MiB, PTK_ACCESS_WRITE), -ENOMEM);
	uint64_t got = rss(as);
	assert_true(got > 0 && got < 1024);
	struct ptk_pool_stats ps = pool_st(ctx);
	assert_true(ps.alloc_failures > 0);
	assert_int_equal(ps.in_use[PTK_FRAME_DATA], got);
	/* Pages before the failure are mapped and usable. */
	write_pattern(as, X);
	check_pattern(as, X);
	/* Further faults fail cleanly; the region stands. */
	assert_int_equal(ptk_fault(as, X + 8 * MiB - PG, PTK_ACCESS_WRITE), -ENOMEM);
	check_region(as, X, X, X + 8 * MiB, RW, PTK_REGION_ANON);
	/* A special mapping needing new tables fails and leaves nothing. */
	uint64_t v = 64 * GiB;
	assert_int_equal(ptk_map_special(as, &v, 4 * MiB, 1, RW, FIXED), -ENOMEM);
	check_no_region(as, 64 * GiB);
	assert_false(mapped(as, 64 * GiB));
	/* MAP_POPULATE that runs out: -ENOMEM, the mapping is not left. */
	uint64_t p = 128 * GiB;
	assert_int_equal(ptk_map_anon(as, &p, 8 * MiB, RW, FIXED | PTK_MAP_POPULATE), -ENOMEM);
	check_no_region(as, 128 * GiB);
	assert_false(mapped(as, 128 * GiB));
	assert_int_equal(rss(as), got);
	/* Give memory back: the rest can be populated. */
	assert_int_equal(ptk_unmap(as, X + 4 * MiB, 4 * MiB), 0);
	assert_int_equal(ptk_drop(as, X + PG, 4 * MiB - PG), 0);
	assert_int_equal(ptk_populate(as, X, 2 * MiB, PTK_ACCESS_WRITE), 0);
	check_pattern(as, X);
	check_rss_matches_pool(ctx, as);
	test_teardown(ctx, as);
}

static void enomem_destroy_full(void **state)
{
	(void)state;
	/* Destroy of a space that used every frame (teardown with no frame
	 * for gather batches) never fails and frees everything. */
	struct ptk_ctx *ctx = ctx_one_shard(4 * MiB);
	struct ptk_as *as = new_as(ctx, 0);
	map_fixed(as, GiB, 8 * MiB, RW, 0);
	assert_int_equal(ptk_populate(as, GiB, 8 * MiB, PTK_ACCESS_WRITE), -ENOMEM);
	struct ptk_pool_stats ps = pool_st(ctx);
	/* At most the data frame of the fault whose table failed is back. */
	assert_true(ps.free <= 1);
	/* Unmap of a range with all frames in use: needs gather batches it
	 * cannot have at first; succeeds anyway. */
	assert_int_equal(ptk_unmap(as, GiB, 2 * MiB), 0);
	assert_int_equal(ptk_populate(as, GiB + 2 * MiB, 6 * MiB, PTK_ACCESS_WRITE), -ENOMEM);
	test_teardown(ctx, as);
}

/* The sequence run under injected failures.  Every operation returns 0
 * or -ENOMEM; after a failure the address space is as before where the
 * contract says so. */
#define CHECK_RC(expr) do { \
		int rc_ = (expr); \
		if (rc_ != 0 && rc_ != -ENOMEM) \
			fail_msg("%s = %d", #expr, rc_); \
	} while (0)

static void enomem_sequence(struct ptk_ctx *ctx)
{
	struct ptk_as *as = NULL;
	int rc = ptk_as_create(ctx, 4, &as);
	CHECK_RC(rc);
	if (rc)
		return;
	struct ptk_xlate x;
	/* Small pages across a 2 MiB and a 1 GiB boundary: 5 new tables. */
	uint64_t A = GiB - 3 * PG;
	map_fixed(as, A, 6 * PG, RW, 0);
	rc = ptk_populate(as, A, 6 * PG, PTK_ACCESS_WRITE);
	CHECK_RC(rc);
	for (unsigned i = 0; i < 6; i++)
		if (mapped(as, A + i * PG))
			*host(as, A + i * PG) = A + i * PG;
	/* Huge anonymous. */
	uint64_t H = 4 * GiB;
	map_fixed(as, H, 4 * MiB, RW, PTK_MAP_HUGE);
	CHECK_RC(ptk_fault(as, H + PG, PTK_ACCESS_WRITE));
	CHECK_RC(ptk_fault(as, H + 2 * MiB + PG, PTK_ACCESS_WRITE));
	bool h_mapped = mapped(as, H + PG);
	/* Unmap a page inside a huge leaf: needs a table for the split. */
	rc = ptk_unmap(as, H + 8 * PG, PG);
	CHECK_RC(rc);
	if (rc) {
		check_region(as, H + 8 * PG, H, H + 4 * MiB, RW, PTK_REGION_ANON);
		assert_int_equal(mapped(as, H + PG), h_mapped);
	}
	/* Protect a page inside the other huge leaf. */
	rc = ptk_protect(as, H + 2 * MiB + 12 * PG, PG, RO);
	CHECK_RC(rc);
	if (rc) {
		struct ptk_region_info ri;
		assert_int_equal(ptk_region_query(as, H + 2 * MiB + 12 * PG, &ri), 0);
		assert_int_equal(ri.prot, RW);
	}
	rc = ptk_protect(as, A + 2 * PG, 2 * PG, RO);
	CHECK_RC(rc);
	/* Drop inside a huge leaf (split). */
	CHECK_RC(ptk_drop(as, H + 2 * MiB + 4 * PG, PG));
	/* Special mapping across two PTE tables. */
	uint64_t S = 8 * GiB, v = S;
	rc = ptk_map_special(as, &v, 600 * PG, U64(1) << 30, RW, FIXED);
	CHECK_RC(rc);
	if (rc) {
		check_no_region(as, S);
		assert_false(mapped(as, S));
		assert_false(mapped(as, S + 599 * PG));
	} else {
		assert_int_equal(xl(as, S + 599 * PG, &x), 0);
		assert_int_equal(x.pfn, (U64(1) << 30) + 599);
	}
	/* Special with huge leaves, fixed over part of it. */
	uint64_t T = 16 * GiB;
	v = T;
	rc = ptk_map_special(as, &v, 4 * MiB, U64(1) << 30, RO, FIXED | PTK_MAP_HUGE);
	CHECK_RC(rc);
	if (!rc) {
		v = T + PG;
		rc = ptk_map_anon(as, &v, PG, RW, FIXED);
		CHECK_RC(rc);
	}
	/* MAP_POPULATE: all or nothing. */
	uint64_t P = 24 * GiB;
	rc = ptk_map_anon(as, &P, 4 * PG, RW, FIXED | PTK_MAP_POPULATE);
	CHECK_RC(rc);
	if (rc)
		check_no_region(as, 24 * GiB);
	/* Enough pages for the gather to need batches, then unmap. */
	uint64_t G = 32 * GiB;
	map_fixed(as, G, 12 * PG, RW, 0);
	CHECK_RC(ptk_populate(as, G, 12 * PG, PTK_ACCESS_WRITE));
	assert_int_equal(ptk_unmap(as, G, 12 * PG), 0);   /* no split: never fails */
	assert_false(mapped(as, G));
	/* The data written survived everything above. */
	for (unsigned i = 0; i < 6; i++)
		if (mapped(as, A + i * PG))
			assert_int_equal(*host(as, A + i * PG), A + i * PG);
	assert_int_equal(ptk_unmap(as, A, 6 * PG), 0);
	ptk_as_destroy(as);
}

/* Raw pool counters (no quiesce: the caller has just quiesced). */
static struct ptk_pool_stats pool_raw(struct ptk_ctx *ctx)
{
	struct ptk_pool_stats st;
	ptk_pool_stats(ctx, &st);
	return st;
}

/* Run the sequence failing the Nth allocation of @kinds, for every N from
 * 1 to one past the number of allocations of a clean run.  One context for
 * the whole loop (each quiesce waits for liburcu's callback thread, so
 * fewer is faster); frame accounting is checked after every run. */
static void injection_loop(unsigned kinds, long min_allocs)
{
	struct ptk_ctx *ctx = test_ctx(0);
	ptk_ctx_alloc_count(ctx, kinds, 1);
	enomem_sequence(ctx);
	long k = ptk_ctx_alloc_count(ctx, kinds, 0);
	assert_true(k >= min_allocs);
	assert_all_frames_free(ctx);
	assert_int_equal(pool_raw(ctx).alloc_failures, 0);

	for (long n = 1; n <= k + 1; n++) {
		uint64_t fails0 = pool_raw(ctx).alloc_failures;
		ptk_ctx_inject_failure(ctx, kinds, n);
		enomem_sequence(ctx);
		long left = ptk_ctx_inject_failure(ctx, 0, 0);
		assert_all_frames_free(ctx);
		uint64_t fails = pool_raw(ctx).alloc_failures - fails0;
		if (n <= k) {
			/* Fired exactly once, at the Nth allocation, and no
			 * other allocation failed. */
			assert_int_equal(left, 0);
			assert_int_equal(fails, 1);
		} else {
			assert_int_equal(left, 1);
			assert_int_equal(fails, 0);
		}
	}
	ptk_ctx_destroy(ctx);
}

static void enomem_injection_loop(void **state)
{
	(void)state;
	injection_loop(PTK_INJECT_ALL, 30);
}

/* Each kind on its own: only that kind fails. */
static void enomem_injection_per_kind(void **state)
{
	(void)state;
	injection_loop(PTK_INJECT_DATA, 15);
	injection_loop(PTK_INJECT_TABLE, 10);
	injection_loop(PTK_INJECT_BATCH, 2);
}

/* Special mappings that fail part-way through installation. */
static void enomem_special_partial(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = test_ctx(0);
	struct ptk_as *as = new_as(ctx, 0);
	uint64_t X = GiB - 600 * PG;
	uint64_t len = 1800 * PG;               /* 2 PMD tables, 5 PTE tables */
	ptk_ctx_alloc_count(ctx, PTK_INJECT_TABLE, 1);
	uint64_t v = X;
	assert_int_equal(ptk_map_special(as, &v, len, 0, RW, FIXED), 0);
	long k = ptk_ctx_alloc_count(ctx, PTK_INJECT_TABLE, 0);
	assert_int_equal(k, 1 + 2 + 5);
	assert_int_equal(tables(as), 1 + k);
	assert_int_equal(ptk_unmap(as, X, len), 0);
	assert_int_equal(tables(as), 1);
	for (long n = 1; n <= k; n++) {
		ptk_ctx_inject_failure(ctx, PTK_INJECT_TABLE, n);
		v = X;
		assert_int_equal(ptk_map_special(as, &v, len, 0, RW, FIXED), -ENOMEM);
		assert_int_equal(v, X);
		check_no_region(as, X);
		assert_false(mapped(as, X));
		assert_false(mapped(as, X + len - PG));
		assert_int_equal(tables(as), 1);        /* partial tables reclaimed */
		assert_int_equal(as_st(as).regions, 0);
		check_rss_matches_pool(ctx, as);
	}
	test_teardown(ctx, as);
}

/* Destroy with a bit of everything still mapped. */
static void destroy_everything(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = test_ctx(0);
	struct ptk_as *as = new_as(ctx, 0);
	struct ptk_as *as5 = new_as(ctx, 5);
	for (unsigned i = 0; i < 8; i++) {
		uint64_t v = 0;
		assert_int_equal(ptk_map_anon(as, &v, 64 * PG, RW, PTK_MAP_POPULATE), 0);
		v = 0;
		assert_int_equal(ptk_map_anon(as5, &v, 2 * MiB, RW,
					      PTK_MAP_POPULATE | PTK_MAP_HUGE), 0);
		v = 0;
		assert_int_equal(ptk_map_special(as, &v, 2 * MiB, 512 * i, RO, PTK_MAP_HUGE), 0);
	}
	uint64_t v = U64(1) << 55;
	assert_int_equal(ptk_map_anon(as5, &v, 4 * PG, RW, FIXED | PTK_MAP_POPULATE), 0);
	assert_true(pool_st(ctx).in_use[PTK_FRAME_DATA] >= 8 * 64);
	assert_int_equal(pool_st(ctx).huge_in_use, 8);
	ptk_as_destroy(as5);
	test_teardown(ctx, as);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(map_anon_hint),
		cmocka_unit_test(map_anon_fill_and_no_room),
		cmocka_unit_test(map_fixed_noreplace),
		cmocka_unit_test(map_fixed_replaces),
		cmocka_unit_test(map_special_outside_pool),
		cmocka_unit_test(map_special_inside_pool),
		cmocka_unit_test(map_special_bad_pfn),
		cmocka_unit_test(map_special_huge),
		cmocka_unit_test(special_huge_split),
		cmocka_unit_test(unmap_partial),
		cmocka_unit_test(unmap_middle_splits),
		cmocka_unit_test(unmap_with_holes),
		cmocka_unit_test(unmap_nothing),
		cmocka_unit_test(protect_ro_rw),
		cmocka_unit_test(protect_splits_and_holes),
		cmocka_unit_test(drop_zeroes),
		cmocka_unit_test(drop_special_and_holes),
		cmocka_unit_test(fault_errors),
		cmocka_unit_test(fault_sets_dirty_and_write),
		cmocka_unit_test(populate_basic),
		cmocka_unit_test(translate_fault_basic),
		cmocka_unit_test(huge_anon_fault_and_split),
		cmocka_unit_test(huge_anon_protect_split),
		cmocka_unit_test(huge_anon_partial_and_fallback),
		cmocka_unit_test(five_level),
		cmocka_unit_test(five_level_ctx_default),
		cmocka_unit_test(edge_zero_and_top),
		cmocka_unit_test(edge_bad_ranges),
		cmocka_unit_test(table_accounting),
		cmocka_unit_test(rss_accounting),
		cmocka_unit_test(two_spaces_independent),
		cmocka_unit_test(enomem_small_pool),
		cmocka_unit_test(enomem_destroy_full),
		cmocka_unit_test(enomem_injection_loop),
		cmocka_unit_test(enomem_injection_per_kind),
		cmocka_unit_test(enomem_special_partial),
		cmocka_unit_test(destroy_everything),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
