/*
 * test_model.c - the reference model states the semantics on its own, and
 * ptkit agrees with it on a scripted sequence (the fuzzer does the rest).
 */
#include <errno.h>
#include <string.h>
#include "helpers.h"
#include "model.h"

static void model_semantics(void **state)
{
	(void)state;
	struct model m;
	model_init(&m, 4);
	uint64_t va = 16 * MiB;
	struct model_lookup l;
	assert_int_equal(model_map(&m, &va, 4 * MiB, PTK_PROT_READ | PTK_PROT_WRITE,
				   PTK_MAP_FIXED, PTK_REGION_ANON, 0), 0);
	assert_int_equal(model_map(&m, &va, 4096, PTK_PROT_READ, PTK_MAP_NOREPLACE,
				   PTK_REGION_ANON, 0), -EEXIST);
	assert_int_equal(model_fault(&m, va, PTK_ACCESS_WRITE), 0);
	model_set_tag(&m, va, 7);
	model_lookup(&m, va, &l);
	assert_true(l.present && l.writable);
	assert_int_equal(l.tag, 7);
	assert_int_equal(model_rss(&m), 1);
	/* protect splits, drop zeroes, unmap cuts */
	assert_int_equal(model_protect(&m, va + MiB, MiB, PTK_PROT_READ), 0);
	assert_int_equal(m.nr, 3);
	assert_int_equal(model_fault(&m, va + MiB, PTK_ACCESS_WRITE), -EACCES);
	assert_int_equal(model_drop(&m, va, 8 * MiB), -ENOMEM);
	model_lookup(&m, va, &l);
	assert_false(l.present);
	assert_int_equal(model_unmap(&m, va + 512 * KiB, MiB), 0);
	assert_int_equal(m.nr, 3);
	assert_int_equal(model_fault(&m, va + 600 * KiB, PTK_ACCESS_READ), -EFAULT);
	assert_int_equal(model_protect(&m, va, 4 * MiB, PTK_PROT_READ), -ENOMEM);
	/* special: present at map time, frame number follows the split */
	uint64_t sva = 64 * MiB;
	assert_int_equal(model_map(&m, &sva, 2 * MiB, PTK_PROT_READ, PTK_MAP_FIXED,
				   PTK_REGION_SPECIAL, 1000), 0);
	assert_int_equal(model_protect(&m, sva + 8192, 4096, PTK_PROT_NONE), 0);
	model_lookup(&m, sva + 8192, &l);
	assert_true(l.present && !l.writable);
	assert_int_equal(l.pfn, 1002);
	/* placement: first fit from the hint, 2 MiB aligned for huge */
	uint64_t h = 16 * MiB + 4096;
	assert_int_equal(model_map(&m, &h, 4096, PTK_PROT_READ, PTK_MAP_HUGE,
				   PTK_REGION_ANON, 0), 0);
	assert_int_equal(h % PTK_HUGE_2M, 0);
	assert_false(h >= 16 * MiB && h < 20 * MiB);
	/* bad arguments */
	assert_int_equal(model_unmap(&m, 1, 4096), -EINVAL);
	assert_int_equal(model_unmap(&m, 0, 0), -EINVAL);
	assert_int_equal(model_fault(&m, va, 9), -EINVAL);
	assert_int_equal(model_populate(&m, va, 4096, 9), -EINVAL);
	model_free(&m);
}

static bool huge_oracle(void *arg, uint64_t va)
{
	struct ptk_xlate x;
	return ptk_translate(arg, va, &x) == 0 && x.level == PTK_LEVEL_PMD;
}

/* A scripted run of ptkit beside the model, compared page by page. */
static void agrees_with_ptkit(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = test_ctx(0);
	struct ptk_as *as;
	assert_int_equal(ptk_as_create(ctx, 4, &as), 0);
	struct model m;
	model_init(&m, 4);
	m.oracle = (struct model_oracle){ huge_oracle, NULL, as, NULL };
	uint64_t base = 1 * GiB;
/* ptkit first: the model asks the oracle about what ptkit did. */
#define BOTH(call_p, call_m) do { int rp_ = (call_p); int rm_ = (call_m); \
	assert_int_equal(rp_, rm_); } while (0)
	uint64_t v1 = base, v2 = base;
	BOTH(ptk_map_anon(as, &v1, 8 * MiB, 3, PTK_MAP_FIXED | PTK_MAP_HUGE),
	     model_map(&m, &v2, 8 * MiB, 3, PTK_MAP_FIXED | PTK_MAP_HUGE, PTK_REGION_ANON, 0));
	BOTH(ptk_populate(as, base, 3 * MiB, PTK_ACCESS_WRITE),
	     model_populate(&m, base, 3 * MiB, PTK_ACCESS_WRITE));
	BOTH(ptk_protect(as, base + MiB, 4096, PTK_PROT_READ),
	     model_protect(&m, base + MiB, 4096, PTK_PROT_READ));
	BOTH(ptk_drop(as, base + 2 * MiB + 4096, 8192),
	     model_drop(&m, base + 2 * MiB + 4096, 8192));
	BOTH(ptk_unmap(as, base + 3 * MiB - 4096, 2 * MiB),
	     model_unmap(&m, base + 3 * MiB - 4096, 2 * MiB));
	BOTH(ptk_fault(as, base + 6 * MiB, PTK_ACCESS_READ),
	     model_fault(&m, base + 6 * MiB, PTK_ACCESS_READ));
	for (uint64_t va = base; va < base + 8 * MiB; va += 4096) {
		struct ptk_xlate x;
		struct model_lookup l;
		int rc = ptk_translate(as, va, &x);
		model_lookup(&m, va, &l);
		if ((rc == 0) != l.present)
			print_error("va %#llx ptkit %d model %d\n", (unsigned long long)va, rc, l.present);
		assert_int_equal(rc == 0, l.present);
		if (!rc)
			assert_int_equal(ptk_pte_write(x.pte), l.writable);
	}
	struct ptk_as_stats st;
	ptk_as_stats(as, &st);
	assert_int_equal(st.rss_frames, model_rss(&m));
	assert_int_equal(st.regions, m.nr);
	model_free(&m);
	test_teardown(ctx, as);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(model_semantics),
		cmocka_unit_test(agrees_with_ptkit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
