/*
 * test_kernel.c - the shared kernel half (ptkit/kernel.h) in each design:
 * kernel mappings are seen by every address space (lazy: after activation
 * or a fault), tables below the top level are shared, top-level entries are
 * never cleared, the generation makes an empty sync O(1), create/destroy
 * write no globally shared line in eager and lazy, and every frame is
 * accounted for.
 */
#include <errno.h>
#include <string.h>
#include "helpers.h"

#define KBASE UINT64_C(0xffff800000000000)
#define SLOT  (UINT64_C(1) << 39)          /* one top-level slot: 512 GiB */

static struct ptk_ctx *kctx(enum ptk_kernel_sync d)
{
	struct ptk_ctx_config cfg;
	ptk_ctx_config_default(&cfg);
	cfg.pool_bytes = 64 * MiB;
	cfg.kernel_sync = d;
	struct ptk_ctx *ctx = NULL;
	assert_int_equal(ptk_ctx_create(&cfg, &ctx), 0);
	return ctx;
}

/* Frames: no data frame left, only the kernel half's retained tables. */
static void assert_only_kernel_tables(struct ptk_ctx *ctx)
{
	ptk_ctx_quiesce(ctx);
	struct ptk_kernel_stats ks;
	ptk_kernel_stats(ctx, &ks);
	struct ptk_pool_stats st;
	ptk_pool_stats(ctx, &st);
	for (unsigned t = 0; t < PTK_FRAME_NR_TYPES; t++)
		if (t != PTK_FRAME_TABLE)
			assert_int_equal(st.in_use[t], 0);
	assert_int_equal(st.in_use[PTK_FRAME_TABLE], ks.table_pages);
	assert_int_equal(ks.rss_frames, 0);
	assert_int_equal(st.free + ks.table_pages, st.capacity);
}

static int xlate_pfn(struct ptk_as *as, uint64_t va, uint64_t *pfn)
{
	struct ptk_xlate x;
	int rc = ptk_translate(as, va, &x);
	if (!rc)
		*pfn = x.pfn;
	return rc;
}

static void visible_everywhere(enum ptk_kernel_sync d)
{
	struct ptk_ctx *ctx = kctx(d);
	struct ptk_as *old, *young, *five;
	assert_int_equal(ptk_as_create(ctx, 0, &old), 0);
	assert_int_equal(ptk_as_create(ctx, 5, &five), 0);
	uint64_t va = 0, pfn;
	assert_int_equal(ptk_kmap_special(ctx, &va, 8 * 4096, 12345, PTK_PROT_READ, 0), 0);
	assert_true(va >= KBASE);
	if (d == PTK_KSYNC_LAZY) {
		/* Lazy: the old space has not switched in since; it is behind. */
		assert_int_equal(xlate_pfn(old, va, &pfn), -EFAULT);
		assert_int_equal(ptk_as_kernel_missing(old), 1);
		ptk_as_activate(old);
	}
	assert_int_equal(ptk_as_kernel_missing(old), 0);
	assert_int_equal(xlate_pfn(old, va + 3 * 4096, &pfn), 0);
	assert_int_equal(pfn, 12345 + 3);
	assert_int_equal(ptk_as_create(ctx, 0, &young), 0);
	assert_int_equal(xlate_pfn(young, va, &pfn), 0);
	assert_int_equal(pfn, 12345);
	/* Kernel leaves: GLOBAL, not USER; read-only here. */
	struct ptk_xlate x;
	assert_int_equal(ptk_translate(young, va, &x), 0);
	assert_true(x.pte & PTK_PTE_GLOBAL);
	assert_false(x.pte & PTK_PTE_USER);
	assert_int_equal(ptk_fault(young, va, PTK_ACCESS_READ), 0);
	assert_int_equal(ptk_fault(young, va, PTK_ACCESS_WRITE), -EACCES);
	assert_int_equal(ptk_fault(young, va + 8 * 4096, PTK_ACCESS_READ), -EFAULT);
	/* A space with other levels has no kernel half. */
	assert_int_equal(xlate_pfn(five, va, &pfn), -EFAULT);
	assert_int_equal(ptk_fault(five, va, PTK_ACCESS_READ), -EFAULT);
	/* The user API refuses kernel addresses. */
	uint64_t kva = va;
	assert_int_equal(ptk_map_anon(young, &kva, 4096, PTK_PROT_READ, PTK_MAP_FIXED), -EINVAL);
	assert_int_equal(ptk_unmap(young, va, 4096), -EINVAL);

	/* Anonymous kernel memory: populated at map time, shared frames. */
	uint64_t ava = 0;
	assert_int_equal(ptk_kmap_anon(ctx, &ava, 4 * 4096, PTK_PROT_READ | PTK_PROT_WRITE, 0), 0);
	ptk_as_activate(old);
	assert_int_equal(ptk_translate(old, ava + 4096, &x), 0);
	assert_non_null(x.host);
	assert_int_equal(*(volatile uint8_t *)x.host, 0);
	memset(x.host, 0x5a, 16);
	struct ptk_xlate y;
	assert_int_equal(ptk_translate(young, ava + 4096, &y), 0);
	assert_ptr_equal(x.host, y.host);
	assert_int_equal(((uint8_t *)y.host)[15], 0x5a);
	struct ptk_kernel_stats ks;
	ptk_kernel_stats(ctx, &ks);
	assert_int_equal(ks.rss_frames, 4);
	assert_int_equal(ks.top_entries, 1);
	/* Same top-level slot: nothing new, the sync is O(1). */
	assert_int_equal(ks.generation, 1);
	assert_int_equal(ks.syncs_noop, 1);

	/* A new top-level slot. */
	uint64_t fva = KBASE + 7 * SLOT;
	assert_int_equal(ptk_kmap_special(ctx, &fva, 2 * MiB, 1 << 20, PTK_PROT_READ,
					  PTK_MAP_NOREPLACE | PTK_MAP_HUGE), 0);
	assert_int_equal(fva, KBASE + 7 * SLOT);
	assert_int_equal(ptk_kmap_special(ctx, &fva, 4096, 1, PTK_PROT_READ, PTK_MAP_NOREPLACE),
			 -EEXIST);
	assert_int_equal(ptk_kmap_special(ctx, &fva, 4096, 1, PTK_PROT_READ, PTK_MAP_FIXED),
			 -EINVAL);
	if (d == PTK_KSYNC_LAZY) {
		/* A kernel fault fills the missing entry (vmalloc_fault). */
		assert_int_equal(xlate_pfn(young, fva, &pfn), -EFAULT);
		assert_int_equal(ptk_fault(young, fva + 4096, PTK_ACCESS_READ), 0);
	}
	assert_int_equal(xlate_pfn(young, fva + 4096, &pfn), 0);
	assert_int_equal(pfn, (1 << 20) + 1);
	assert_int_equal(ptk_translate(young, fva, &x), 0);
	assert_int_equal(x.level, 1);          /* a 2 MiB leaf */
	ptk_kernel_stats(ctx, &ks);
	assert_int_equal(ks.generation, 2);
	assert_int_equal(ks.top_entries, 2);
	if (d != PTK_KSYNC_LAZY) {
		assert_int_equal(ks.walks, 2);
		assert_true(ks.walk_filled >= 2);
	} else {
		assert_int_equal(ks.walks, 0);
		assert_int_equal(ks.fault_filled, 1);
	}

	/* Unmap a piece in the middle of the huge leaf (split), then all. */
	assert_int_equal(ptk_kunmap(ctx, fva + 4096, 4096), 0);
	assert_int_equal(xlate_pfn(young, fva + 4096, &pfn), -EFAULT);
	assert_int_equal(xlate_pfn(young, fva + 8192, &pfn), 0);
	assert_int_equal(pfn, (1 << 20) + 2);
	assert_int_equal(ptk_kunmap(ctx, KBASE, 8 * SLOT), 0);
	assert_int_equal(xlate_pfn(old, va, &pfn), -EFAULT);
	assert_int_equal(xlate_pfn(young, ava, &pfn), -EFAULT);
	ptk_kernel_stats(ctx, &ks);
	/* Top-level entries are never cleared. */
	assert_int_equal(ks.top_entries, 2);
	assert_int_equal(ks.rss_frames, 0);
	assert_int_equal(ptk_kunmap(ctx, 0x1000, 4096), -EINVAL);

	ptk_as_destroy(old);
	ptk_as_destroy(young);
	ptk_as_destroy(five);
	assert_only_kernel_tables(ctx);
	ptk_ctx_destroy(ctx);
}

static void eager(void **s) { (void)s; visible_everywhere(PTK_KSYNC_EAGER); }
static void lazy(void **s) { (void)s; visible_everywhere(PTK_KSYNC_LAZY); }
static void legacy(void **s) { (void)s; visible_everywhere(PTK_KSYNC_LEGACY); }

/* Create+destroy writes no globally shared line in eager and lazy. */
static void shared_writes(void **s)
{
	(void)s;
	static const enum ptk_kernel_sync d[] = { PTK_KSYNC_EAGER, PTK_KSYNC_LAZY,
						  PTK_KSYNC_LEGACY };
	for (unsigned i = 0; i < 3; i++) {
		struct ptk_ctx *ctx = kctx(d[i]);
		uint64_t va = 0;
		assert_int_equal(ptk_kmap_special(ctx, &va, 4096, 1, PTK_PROT_READ, 0), 0);
		if (ptk_count_writes_enable(ctx, true) == -EOPNOTSUPP) {
			ptk_ctx_destroy(ctx);
			skip();
		}
		uint64_t c[PTK_CW_NR];
		ptk_count_writes_read(c, true);
		for (int n = 0; n < 100; n++) {
			struct ptk_as *as;
			assert_int_equal(ptk_as_create(ctx, 0, &as), 0);
			ptk_as_activate(as);
			uint64_t pfn;
			assert_int_equal(xlate_pfn(as, va, &pfn), 0);
			ptk_as_destroy(as);
		}
		ptk_count_writes_read(c, true);
		if (d[i] == PTK_KSYNC_LEGACY)
			assert_true(c[PTK_CW_GLOBAL] >= 100 * 6);
		else
			assert_int_equal(c[PTK_CW_GLOBAL], 0);
		ptk_count_writes_enable(ctx, false);
		assert_int_equal(ptk_kunmap(ctx, va, 4096), 0);
		assert_only_kernel_tables(ctx);
		ptk_ctx_destroy(ctx);
	}
}

/* A failed kernel map changes nothing but may leave top-level entries,
 * which are still propagated. */
static void kmap_failure(void **s)
{
	(void)s;
	struct ptk_ctx *ctx = kctx(PTK_KSYNC_EAGER);
	struct ptk_as *as;
	assert_int_equal(ptk_as_create(ctx, 0, &as), 0);
	uint64_t va = 0;
	ptk_ctx_inject_failure(ctx, PTK_INJECT_DATA, 3);
	assert_int_equal(ptk_kmap_anon(ctx, &va, 8 * 4096, PTK_PROT_READ, 0), -ENOMEM);
	struct ptk_kernel_stats ks;
	ptk_kernel_stats(ctx, &ks);
	assert_int_equal(ks.rss_frames, 0);
	assert_int_equal(ks.regions, 0);
	assert_int_equal(ptk_as_kernel_missing(as), 0);
	assert_int_equal(ptk_kmap_anon(ctx, &va, 8 * 4096, PTK_PROT_READ, 0), 0);
	assert_int_equal(ptk_kunmap(ctx, va, 8 * 4096), 0);
	ptk_as_destroy(as);
	assert_only_kernel_tables(ctx);
	ptk_ctx_destroy(ctx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(eager),
		cmocka_unit_test(lazy),
		cmocka_unit_test(legacy),
		cmocka_unit_test(shared_writes),
		cmocka_unit_test(kmap_failure),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
