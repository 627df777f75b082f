/*
 * test_inject.c - allocation-failure injection, exhaustively per operation.
 *
 * For each operation: count the frame, table and batch allocations it makes
 * (ptk_ctx_alloc_count), then for N = 1..count build the same state again,
 * fail exactly the Nth allocation (ptk_ctx_inject_failure, PTK_INJECT_ALL)
 * and check that
 *   - the injected failure fired (the count is exact: one thread);
 *   - the operation returned 0 (it had a fallback: 4 KiB instead of 2 MiB,
 *     the gather's local array instead of a batch page) or -ENOMEM, and the
 *     teardown operations (unmap and drop that split nothing, destroy)
 *     returned 0 under every failure;
 *   - the reference model agrees with what happened, page by page over the
 *     range (presence, write permission, contents tags written beforehand),
 *     and on the region count and resident frames: on -ENOMEM nothing
 *     changed (or, for populate, the pages before the failure are mapped);
 *   - after destroy and ptk_ctx_quiesce every frame is back in the pool.
 */
#include <errno.h>
#include <string.h>
#include "helpers.h"
#include "model.h"

#define RW (PTK_PROT_READ | PTK_PROT_WRITE)
#define BASE (4 * GiB)

struct env {
	struct ptk_ctx *ctx;
	struct ptk_as *as;
	struct model m;
	uint32_t tag;
};

static bool oracle_huge(void *arg, uint64_t va)
{
	struct ptk_xlate x;
	return ptk_translate(arg, va, &x) == 0 && x.level == PTK_LEVEL_PMD;
}

static bool oracle_present(void *arg, uint64_t va)
{
	struct ptk_xlate x;
	return ptk_translate(arg, va, &x) == 0;
}

/* Write a fresh tag to every @step-th page of [va, va+len), ptkit and model. */
static void write_tags(struct env *e, uint64_t va, uint64_t len, uint64_t step)
{
	for (uint64_t a = va; a < va + len; a += step) {
		struct ptk_xlate x;
		assert_int_equal(ptk_translate_fault(e->as, a, PTK_ACCESS_WRITE, &x), 0);
		assert_int_equal(model_translate_fault(&e->m, a, PTK_ACCESS_WRITE), 0);
		uint32_t t = ++e->tag;
		memcpy(x.host, &t, sizeof(t));
		model_set_tag(&e->m, a, t);
	}
}

/* ptkit and the model agree over [va, va+len) and on the totals. */
static void agree(struct env *e, uint64_t va, uint64_t len)
{
	for (uint64_t a = va; a < va + len; a += PTK_PAGE_SIZE) {
		struct ptk_xlate x;
		struct model_lookup l;
		int rc = ptk_translate(e->as, a, &x);
		model_lookup(&e->m, a, &l);
		if ((rc == 0) != l.present)
			print_error("%#llx: ptkit %d, model present %d\n",
				    (unsigned long long)a, rc, l.present);
		assert_int_equal(rc == 0, l.present);
		if (rc)
			continue;
		assert_int_equal(ptk_pte_write(x.pte), l.writable);
		if (l.kind == PTK_REGION_SPECIAL) {
			assert_int_equal(x.pfn, l.pfn);
			continue;
		}
		uint32_t got;
		memcpy(&got, x.host, sizeof(got));
		assert_int_equal(got, l.tag);
	}
	struct ptk_as_stats st;
	ptk_as_stats(e->as, &st);
	assert_int_equal(st.rss_frames, model_rss(&e->m));
	assert_int_equal(st.regions, e->m.nr);
}

/* One scenario: @setup builds the state in both, @op runs the operation on
 * ptkit and returns its result, @apply applies it to the model given that
 * result (may_fail is set while a failure was injected). */
struct scenario {
	const char *name;
	void (*setup)(struct env *);
	int (*op)(struct env *);
	void (*apply)(struct env *, int rc);
	bool must_succeed;       /* teardown: 0 under every failure */
	bool destroys;           /* the operation is ptk_as_destroy */
	uint64_t check_va, check_len;
};

static void env_begin(struct env *e, struct ptk_ctx *ctx)
{
	memset(e, 0, sizeof(*e));
	e->ctx = ctx;
	assert_int_equal(ptk_as_create(ctx, 4, &e->as), 0);
	model_init(&e->m, 4);
	e->m.oracle = (struct model_oracle){ oracle_huge, oracle_present, e->as, NULL };
}

static void env_end(struct env *e)
{
	if (e->as)
		ptk_as_destroy(e->as);
	model_free(&e->m);
	assert_all_frames_free(e->ctx);
}

static void run_scenario(const struct scenario *s)
{
	struct ptk_ctx *ctx = test_ctx(64 * MiB);
	struct env e;
	/* Count the operation's allocations. */
	env_begin(&e, ctx);
	s->setup(&e);
	ptk_ctx_alloc_count(ctx, PTK_INJECT_ALL, 1);
	int rc = s->op(&e);
	long count = ptk_ctx_alloc_count(ctx, 0, 1);
	assert_int_equal(rc, 0);
	if (s->destroys)
		e.as = NULL;
	env_end(&e);
	print_message("%s: %ld allocations\n", s->name, count);
	assert_true(count > 0);
	long fallbacks = 0, failures = 0;
	for (long n = 1; n <= count; n++) {
		env_begin(&e, ctx);
		s->setup(&e);
		ptk_ctx_inject_failure(ctx, PTK_INJECT_ALL, n);
		e.m.may_fail = true;
		rc = s->op(&e);
		bool fired = ptk_ctx_inject_failure(ctx, 0, 0) == 0;
		assert_true(fired);
		if (rc != 0 && rc != -ENOMEM)
			print_error("%s: failing allocation %ld: %d\n", s->name, n, rc);
		assert_true(rc == 0 || rc == -ENOMEM);
		if (s->must_succeed)
			assert_int_equal(rc, 0);
		rc ? failures++ : fallbacks++;
		if (s->destroys) {
			e.as = NULL;
		} else {
			s->apply(&e, rc);
			e.m.may_fail = false;
			agree(&e, s->check_va, s->check_len);
		}
		env_end(&e);
	}
	print_message("%s: %ld failed with -ENOMEM, %ld succeeded by a fallback\n",
		      s->name, failures, fallbacks);
	ptk_ctx_destroy(ctx);
}

/* ---- scenarios -------------------------------------------------------- */

static void setup_none(struct env *e) { (void)e; }

/* A 4 MiB huge region, both 2 MiB blocks faulted in (huge leaves), tags
 * written; plus small pages in a non-huge region after it. */
static void setup_huge(struct env *e)
{
	uint64_t va = BASE, mva = BASE;
	assert_int_equal(ptk_map_anon(e->as, &va, 4 * MiB, RW, PTK_MAP_FIXED | PTK_MAP_HUGE), 0);
	assert_int_equal(model_map(&e->m, &mva, 4 * MiB, RW, PTK_MAP_FIXED | PTK_MAP_HUGE,
				   PTK_REGION_ANON, 0), 0);
	write_tags(e, BASE, 4 * MiB, 64 * KiB);
	struct ptk_xlate x;
	assert_int_equal(ptk_translate(e->as, BASE, &x), 0);
	assert_int_equal(x.level, PTK_LEVEL_PMD);
	va = mva = BASE + 4 * MiB;
	assert_int_equal(ptk_map_anon(e->as, &va, 4 * MiB, RW, PTK_MAP_FIXED), 0);
	assert_int_equal(model_map(&e->m, &mva, 4 * MiB, RW, PTK_MAP_FIXED,
				   PTK_REGION_ANON, 0), 0);
	write_tags(e, BASE + 4 * MiB, 4 * MiB, 4 * KiB);
}

/* map + populate across a 1 GiB line: new PUD-level, PMD and PTE tables. */
#define MP_VA (GiB - 8 * KiB)
static int op_map_populate(struct env *e)
{
	uint64_t va = MP_VA;
	return ptk_map_anon(e->as, &va, 16 * KiB, RW, PTK_MAP_FIXED | PTK_MAP_POPULATE);
}
static void apply_map_populate(struct env *e, int rc)
{
	uint64_t va = MP_VA;
	/* The model's populate stops where ptkit's did (oracle.present) and
	 * then removes the new mapping, as ptkit must. */
	assert_int_equal(model_map(&e->m, &va, 16 * KiB, RW, PTK_MAP_FIXED | PTK_MAP_POPULATE,
				   PTK_REGION_ANON, 0), rc);
}

/* A write fault in a huge region: 2 MiB frame and tables; a failed huge
 * frame falls back to a 4 KiB page. */
static void setup_huge_region(struct env *e)
{
	uint64_t va = BASE, mva = BASE;
	assert_int_equal(ptk_map_anon(e->as, &va, 4 * MiB, RW, PTK_MAP_FIXED | PTK_MAP_HUGE), 0);
	assert_int_equal(model_map(&e->m, &mva, 4 * MiB, RW, PTK_MAP_FIXED | PTK_MAP_HUGE,
				   PTK_REGION_ANON, 0), 0);
}
static int op_huge_fault(struct env *e)
{
	return ptk_fault(e->as, BASE + 2 * MiB + 12 * KiB, PTK_ACCESS_WRITE);
}
static void apply_huge_fault(struct env *e, int rc)
{
	assert_int_equal(model_fault(&e->m, BASE + 2 * MiB + 12 * KiB, PTK_ACCESS_WRITE), rc);
}

/* A special mapping of 1 GiB + 2 MiB + 4 KiB: a 1 GiB, a 2 MiB and a 4 KiB
 * leaf, each needing tables. */
#define SP_PFN (UINT64_C(1) << 30)
#define SP_LEN (GiB + 2 * MiB + 4 * KiB)
static int op_special(struct env *e)
{
	uint64_t va = 8 * GiB;
	return ptk_map_special(e->as, &va, SP_LEN, SP_PFN, PTK_PROT_READ,
			       PTK_MAP_FIXED | PTK_MAP_HUGE);
}
static void apply_special(struct env *e, int rc)
{
	if (rc)
		return;         /* failed: nothing mapped */
	uint64_t va = 8 * GiB;
	assert_int_equal(model_map(&e->m, &va, SP_LEN, PTK_PROT_READ,
				   PTK_MAP_FIXED | PTK_MAP_HUGE, PTK_REGION_SPECIAL, SP_PFN), 0);
}

/* Unmap cutting both huge leaves (two boundary splits) and zapping 512
 * pages (batch pages): -ENOMEM only from a split, then nothing changed. */
#define UN_VA (BASE + 2 * MiB - 8 * KiB)
#define UN_LEN (2 * MiB)
static int op_unmap_split(struct env *e) { return ptk_unmap(e->as, UN_VA, UN_LEN); }
static void apply_unmap_split(struct env *e, int rc)
{
	if (!rc)
		assert_int_equal(model_unmap(&e->m, UN_VA, UN_LEN), 0);
}

/* Unmap splitting nothing (whole regions): teardown, must succeed. */
static int op_unmap_whole(struct env *e) { return ptk_unmap(e->as, BASE, 8 * MiB); }
static void apply_unmap_whole(struct env *e, int rc)
{
	assert_int_equal(model_unmap(&e->m, BASE, 8 * MiB), rc);
}

/* Protect inside a huge leaf: one split. */
#define PR_VA (BASE + 2 * MiB + 64 * KiB)
static int op_protect_split(struct env *e)
{
	return ptk_protect(e->as, PR_VA, 8 * KiB, PTK_PROT_READ);
}
static void apply_protect_split(struct env *e, int rc)
{
	if (!rc)
		assert_int_equal(model_protect(&e->m, PR_VA, 8 * KiB, PTK_PROT_READ), 0);
}

/* Drop across the huge/small line: one split, then teardown. */
#define DR_VA (BASE + 3 * MiB)
static int op_drop_split(struct env *e) { return ptk_drop(e->as, DR_VA, 2 * MiB); }
static void apply_drop_split(struct env *e, int rc)
{
	if (!rc)
		assert_int_equal(model_drop(&e->m, DR_VA, 2 * MiB), 0);
}

/* Drop of whole 2 MiB blocks and small pages: splits nothing, must succeed. */
static int op_drop_whole(struct env *e) { return ptk_drop(e->as, BASE, 8 * MiB); }
static void apply_drop_whole(struct env *e, int rc)
{
	assert_int_equal(model_drop(&e->m, BASE, 8 * MiB), rc);
}

/* Destroy with pages and tables in place: batches may fail; every frame
 * must still come back. */
static int op_destroy(struct env *e)
{
	ptk_as_destroy(e->as);
	return 0;
}
static void apply_none(struct env *e, int rc) { (void)e; (void)rc; }

static const struct scenario scenarios[] = {
	{ "map+populate", setup_none, op_map_populate, apply_map_populate, false, false,
	  MP_VA - 2 * MiB, 4 * MiB },
	{ "huge fault", setup_huge_region, op_huge_fault, apply_huge_fault, false, false,
	  BASE, 4 * MiB },
	{ "special huge map", setup_none, op_special, apply_special, false, false,
	  8 * GiB + GiB - 4 * MiB, 8 * MiB },
	{ "unmap with split", setup_huge, op_unmap_split, apply_unmap_split, false, false,
	  BASE, 8 * MiB },
	{ "unmap whole", setup_huge, op_unmap_whole, apply_unmap_whole, true, false,
	  BASE, 8 * MiB },
	{ "protect with split", setup_huge, op_protect_split, apply_protect_split, false, false,
	  BASE, 8 * MiB },
	{ "drop with split", setup_huge, op_drop_split, apply_drop_split, false, false,
	  BASE, 8 * MiB },
	{ "drop whole", setup_huge, op_drop_whole, apply_drop_whole, true, false,
	  BASE, 8 * MiB },
	{ "destroy", setup_huge, op_destroy, apply_none, true, true, 0, 0 },
};

#define SCENARIO_TEST(i) \
	static void test_##i(void **state) { (void)state; run_scenario(&scenarios[i]); }
SCENARIO_TEST(0) SCENARIO_TEST(1) SCENARIO_TEST(2) SCENARIO_TEST(3) SCENARIO_TEST(4)
SCENARIO_TEST(5) SCENARIO_TEST(6) SCENARIO_TEST(7) SCENARIO_TEST(8)

/* Injection counts each kind separately: only the armed kinds count down. */
static void kinds_are_separate(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = test_ctx(0);
	struct ptk_as *as;
	assert_int_equal(ptk_as_create(ctx, 4, &as), 0);
	uint64_t va = BASE;
	assert_int_equal(ptk_map_anon(as, &va, 4 * MiB, RW, PTK_MAP_FIXED), 0);
	/* A fault allocates its data frame first: failing it fails the
	 * fault; a batch failure armed meanwhile does not fire. */
	ptk_ctx_inject_failure(ctx, PTK_INJECT_DATA, 1);
	assert_int_equal(ptk_fault(as, va, PTK_ACCESS_WRITE), -ENOMEM);
	assert_int_equal(ptk_ctx_inject_failure(ctx, 0, 0), 0);
	ptk_ctx_inject_failure(ctx, PTK_INJECT_BATCH, 1);
	assert_int_equal(ptk_fault(as, va, PTK_ACCESS_WRITE), 0);
	assert_int_equal(ptk_ctx_inject_failure(ctx, 0, 0), 1);   /* not fired */
	test_teardown(ctx, as);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_0), cmocka_unit_test(test_1), cmocka_unit_test(test_2),
		cmocka_unit_test(test_3), cmocka_unit_test(test_4), cmocka_unit_test(test_5),
		cmocka_unit_test(test_6), cmocka_unit_test(test_7), cmocka_unit_test(test_8),
		cmocka_unit_test(kinds_are_separate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
