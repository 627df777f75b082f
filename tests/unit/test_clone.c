/*
 * test_clone.c - clone (fork) with copy-on-write, reverse-map walks
 * (ptk_rmap_count, ptk_rmap_unmap_frame), take-all-locks, and the spinning
 * rmap-lock design.  Every test ends with frame accounting.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>
#include "helpers.h"

#define PG    PTK_PAGE_SIZE
#define RW    (PTK_PROT_READ | PTK_PROT_WRITE)
#define BASE  (UINT64_C(1) << 32)

/* When set, the other designs of the context come from here (the old
 * gather, walkers and TLB mode beside the spinning rmap locks). */
static const struct ptk_ctx_config *old_designs;

/* Tests run in both rmap-lock designs (sleeping, then spinning). */
static struct ptk_ctx *ctx_design(uint64_t pool, enum ptk_rmap_lock design)
{
	struct ptk_ctx_config cfg;
	ptk_ctx_config_default(&cfg);
	if (old_designs)
		cfg = *old_designs;
	cfg.pool_bytes = pool ? pool : 64 * MiB;
	cfg.rmap_lock = design;
	struct ptk_ctx *ctx = NULL;
	assert_int_equal(ptk_ctx_create(&cfg, &ctx), 0);
	return ctx;
}

static struct ptk_as *new_as(struct ptk_ctx *ctx)
{
	struct ptk_as *as = NULL;
	assert_int_equal(ptk_as_create(ctx, 0, &as), 0);
	return as;
}

static void map_at(struct ptk_as *as, uint64_t va, uint64_t len, unsigned flags)
{
	uint64_t v = va;
	assert_int_equal(ptk_map_anon(as, &v, len, RW, PTK_MAP_FIXED | flags), 0);
}

static uint64_t rd(struct ptk_as *as, uint64_t va)
{
	struct ptk_xlate x;
	assert_int_equal(ptk_translate_fault(as, va, PTK_ACCESS_READ, &x), 0);
	uint64_t v;
	memcpy(&v, x.host, sizeof(v));
	return v;
}

static void wr(struct ptk_as *as, uint64_t va, uint64_t v)
{
	struct ptk_xlate x;
	assert_int_equal(ptk_translate_fault(as, va, PTK_ACCESS_WRITE, &x), 0);
	assert_true(ptk_pte_write(x.pte));
	memcpy(x.host, &v, sizeof(v));
}

static struct ptk_xlate xl(struct ptk_as *as, uint64_t va)
{
	struct ptk_xlate x;
	assert_int_equal(ptk_translate(as, va, &x), 0);
	return x;
}

static uint32_t refs(struct ptk_ctx *ctx, uint64_t pfn)
{
	struct ptk_frame *f = ptk_pfn_to_frame(ctx, pfn);
	assert_non_null(f);
	if (atomic_load(&f->type) == PTK_FRAME_HUGE_TAIL)
		f -= pfn & 511;
	return atomic_load(&f->refcount);
}

static uint64_t rss(struct ptk_as *as)
{
	struct ptk_as_stats st;
	ptk_as_stats(as, &st);
	return st.rss_frames;
}

static struct ptk_as *clone_ok(struct ptk_as *p)
{
	struct ptk_as *c = NULL;
	assert_int_equal(ptk_as_clone(p, &c), 0);
	assert_non_null(c);
	return c;
}

/* ---- COW basics ------------------------------------------------------------ */

static void cow_shares_then_breaks_d(enum ptk_rmap_lock d)
{
	struct ptk_ctx *ctx = ctx_design(0, d);
	struct ptk_as *p = new_as(ctx);
	map_at(p, BASE, 16 * PG, 0);
	for (unsigned i = 0; i < 16; i++)
		wr(p, BASE + i * PG, 100 + i);
	struct ptk_as *c = clone_ok(p);
	assert_int_equal(rss(c), 16);
	for (unsigned i = 0; i < 16; i++) {
		struct ptk_xlate a = xl(p, BASE + i * PG), b = xl(c, BASE + i * PG);
		assert_int_equal(a.pfn, b.pfn);            /* same frame */
		assert_false(ptk_pte_write(a.pte));        /* write-protected in both */
		assert_false(ptk_pte_write(b.pte));
		assert_int_equal(refs(ctx, a.pfn), 2);
		assert_int_equal(ptk_rmap_count(ctx, a.pfn), 2);
		assert_int_equal(rd(c, BASE + i * PG), 100 + i);
	}
	/* A write in the child copies; the parent keeps the old contents. */
	uint64_t old0 = xl(p, BASE).pfn;
	wr(c, BASE, 7);
	assert_int_not_equal(xl(c, BASE).pfn, old0);
	assert_int_equal(xl(p, BASE).pfn, old0);
	assert_int_equal(rd(p, BASE), 100);
	assert_int_equal(rd(c, BASE), 7);
	assert_int_equal(refs(ctx, old0), 1);
	assert_int_equal(ptk_rmap_count(ctx, old0), 1);
	assert_int_equal(ptk_rmap_count(ctx, xl(c, BASE).pfn), 1);
	/* The last mapper reuses the frame: no copy. */
	wr(p, BASE, 8);
	assert_int_equal(xl(p, BASE).pfn, old0);
	/* A write in the parent copies; the child keeps the old contents. */
	uint64_t old1 = xl(c, BASE + PG).pfn;
	wr(p, BASE + PG, 9);
	assert_int_not_equal(xl(p, BASE + PG).pfn, old1);
	assert_int_equal(xl(c, BASE + PG).pfn, old1);
	assert_int_equal(rd(c, BASE + PG), 101);
	assert_int_equal(rd(p, BASE + PG), 9);
	/* Other pages are still shared. */
	assert_int_equal(xl(p, BASE + 5 * PG).pfn, xl(c, BASE + 5 * PG).pfn);
	ptk_as_destroy(c);
	assert_int_equal(rd(p, BASE + 5 * PG), 105);
	assert_int_equal(refs(ctx, xl(p, BASE + 5 * PG).pfn), 1);
	test_teardown(ctx, p);
}
static void cow_shares_then_breaks(void **s) { (void)s; cow_shares_then_breaks_d(PTK_RMAP_SLEEPING); }
static void cow_shares_then_breaks_spin(void **s) { (void)s; cow_shares_then_breaks_d(PTK_RMAP_SPIN); }

/* Making a range writable again does not grant write to shared frames. */
static void protect_keeps_cow(void **s)
{
	(void)s;
	struct ptk_ctx *ctx = ctx_design(0, PTK_RMAP_SLEEPING);
	struct ptk_as *p = new_as(ctx);
	map_at(p, BASE, 4 * PG, 0);
	for (unsigned i = 0; i < 4; i++)
		wr(p, BASE + i * PG, 20 + i);
	struct ptk_as *c = clone_ok(p);
	assert_int_equal(ptk_protect(c, BASE, 4 * PG, PTK_PROT_READ), 0);
	assert_int_equal(ptk_protect(c, BASE, 4 * PG, RW), 0);
	assert_int_equal(ptk_protect(p, BASE, 4 * PG, RW), 0);
	assert_false(ptk_pte_write(xl(c, BASE).pte));
	assert_false(ptk_pte_write(xl(p, BASE).pte));
	wr(c, BASE, 1);
	wr(p, BASE + PG, 2);
	assert_int_equal(rd(p, BASE), 20);
	assert_int_equal(rd(c, BASE + PG), 21);
	/* The child gone, the leaf is still marked: the write fault finds
	 * the frame exclusive and reuses it (no copy), and from then on
	 * protect grants write in place. */
	ptk_as_destroy(c);
	uint64_t pfn = xl(p, BASE + 2 * PG).pfn;
	assert_true(xl(p, BASE + 2 * PG).pte & PTK_PTE_COW);
	wr(p, BASE + 2 * PG, 3);
	assert_int_equal(xl(p, BASE + 2 * PG).pfn, pfn);
	assert_false(xl(p, BASE + 2 * PG).pte & PTK_PTE_COW);
	assert_int_equal(ptk_protect(p, BASE, 4 * PG, PTK_PROT_READ), 0);
	assert_int_equal(ptk_protect(p, BASE, 4 * PG, RW), 0);
	assert_true(ptk_pte_write(xl(p, BASE + 2 * PG).pte));
	/* A plain read-only leaf (never cloned) is made writable by protect. */
	map_at(p, BASE + 64 * PG, PG, 0);
	wr(p, BASE + 64 * PG, 1);
	assert_int_equal(ptk_protect(p, BASE + 64 * PG, PG, PTK_PROT_READ), 0);
	assert_int_equal(ptk_protect(p, BASE + 64 * PG, PG, RW), 0);
	assert_true(ptk_pte_write(xl(p, BASE + 64 * PG).pte));
	test_teardown(ctx, p);
}

static void destroy_order_d(enum ptk_rmap_lock d, bool parent_first)
{
	struct ptk_ctx *ctx = ctx_design(0, d);
	struct ptk_as *p = new_as(ctx);
	map_at(p, BASE, 8 * PG, 0);
	for (unsigned i = 0; i < 8; i++)
		wr(p, BASE + i * PG, 0xa0 + i);
	struct ptk_as *c = clone_ok(p);
	wr(c, BASE + 3 * PG, 0xff);
	struct ptk_as *gone = parent_first ? p : c, *kept = parent_first ? c : p;
	ptk_as_destroy(gone);
	ptk_ctx_quiesce(ctx);
	for (unsigned i = 0; i < 8; i++) {
		uint64_t want = (!parent_first || i != 3) ? 0xa0 + i : 0xff;
		assert_int_equal(rd(kept, BASE + i * PG), want);
		assert_int_equal(refs(ctx, xl(kept, BASE + i * PG).pfn), 1);
		assert_int_equal(ptk_rmap_count(ctx, xl(kept, BASE + i * PG).pfn), 1);
	}
	/* Write-protected but exclusive now: writes reuse the frames. */
	uint64_t pfn = xl(kept, BASE).pfn;
	wr(kept, BASE, 1);
	assert_int_equal(xl(kept, BASE).pfn, pfn);
	test_teardown(ctx, kept);
}
static void destroy_parent_first(void **s) { (void)s; destroy_order_d(PTK_RMAP_SLEEPING, true); }
static void destroy_child_first(void **s) { (void)s; destroy_order_d(PTK_RMAP_SLEEPING, false); }
static void destroy_parent_first_spin(void **s) { (void)s; destroy_order_d(PTK_RMAP_SPIN, true); }

/* ---- fork chains against a model ------------------------------------------ */

#define CH_SPACES 12
#define CH_PAGES  24

static uint64_t lcg(uint64_t *s)
{
	*s = *s * UINT64_C(6364136223846793005) + UINT64_C(1442695040888963407);
	return *s >> 33;
}

static void check_model(struct ptk_ctx *ctx, struct ptk_as **as, uint64_t (*model)[CH_PAGES])
{
	for (unsigned k = 0; k < CH_SPACES; k++) {
		if (!as[k])
			continue;
		for (unsigned i = 0; i < CH_PAGES; i++) {
			uint64_t va = BASE + i * PG;
			struct ptk_xlate x;
			if (ptk_translate(as[k], va, &x) != 0) {
				assert_int_equal(model[k][i], 0);
				continue;
			}
			uint64_t v;
			memcpy(&v, x.host, sizeof(v));
			assert_int_equal(v, model[k][i]);
			/* Reference count = mappings found through the rmap. */
			assert_int_equal(refs(ctx, x.pfn), ptk_rmap_count(ctx, x.pfn));
		}
	}
}

static void fork_chain_d(enum ptk_rmap_lock d, uint64_t seed)
{
	struct ptk_ctx *ctx = ctx_design(0, d);
	struct ptk_as *as[CH_SPACES] = { 0 };
	static uint64_t model[CH_SPACES][CH_PAGES];
	memset(model, 0, sizeof(model));
	as[0] = new_as(ctx);
	map_at(as[0], BASE, CH_PAGES * PG, 0);
	for (unsigned step = 0; step < 600; step++) {
		unsigned k = lcg(&seed) % CH_SPACES;
		unsigned op = lcg(&seed) % 10;
		if (!as[k])
			continue;
		if (op < 5) {                   /* write at this generation */
			unsigned i = lcg(&seed) % CH_PAGES;
			uint64_t v = (uint64_t)step << 8 | k | 1;
			wr(as[k], BASE + i * PG, v);
			model[k][i] = v;
		} else if (op < 8) {            /* fork into a free slot */
			unsigned j = lcg(&seed) % CH_SPACES;
			if (as[j])
				continue;
			as[j] = clone_ok(as[k]);
			memcpy(model[j], model[k], sizeof(model[k]));
		} else if (op == 8) {           /* exit (never the last one) */
			unsigned live = 0;
			for (unsigned j = 0; j < CH_SPACES; j++)
				live += as[j] != NULL;
			if (live < 2)
				continue;
			ptk_as_destroy(as[k]);
			as[k] = NULL;
		} else {                        /* drop a page */
			unsigned i = lcg(&seed) % CH_PAGES;
			assert_int_equal(ptk_drop(as[k], BASE + i * PG, PG), 0);
			model[k][i] = 0;
		}
		check_model(ctx, as, model);
	}
	for (unsigned k = 0; k < CH_SPACES; k++)
		ptk_as_destroy(as[k]);
	test_teardown(ctx, NULL);
}
static void fork_chain(void **s) { (void)s; fork_chain_d(PTK_RMAP_SLEEPING, 1); fork_chain_d(PTK_RMAP_SLEEPING, 77); }
static void fork_chain_spin(void **s) { (void)s; fork_chain_d(PTK_RMAP_SPIN, 5); }

/* Every old design at once: legacy gather (region lock over unmaps, the
 * per-CPU gather, also taken by COW faults and clones), IPI walkers, lazy
 * TLB invalidation, spinning rmap locks. */
static void old_designs_run(void (*fn)(void))
{
	struct ptk_ctx_config cfg;
	ptk_ctx_config_default(&cfg);
	cfg.gather_mode = PTK_GATHER_LEGACY;
	cfg.walk_mode = PTK_WALK_IPI;
	cfg.tlb_mode = PTK_TLB_LAZY;
	cfg.kernel_sync = PTK_KSYNC_LEGACY;
	old_designs = &cfg;
	fn();
	old_designs = NULL;
}
static void chain_old(void) { fork_chain_d(PTK_RMAP_SPIN, 9); }
static void fork_chain_old_designs(void **s) { (void)s; old_designs_run(chain_old); }

/* ---- reverse-map walks ----------------------------------------------------- */

static void rmap_count_and_unmap_d(enum ptk_rmap_lock d)
{
	struct ptk_ctx *ctx = ctx_design(0, d);
	struct ptk_as *as[4];
	as[0] = new_as(ctx);
	map_at(as[0], BASE, 4 * PG, 0);
	wr(as[0], BASE, 42);
	wr(as[0], BASE + PG, 43);
	for (unsigned k = 1; k < 4; k++)
		as[k] = clone_ok(as[k - 1]);
	uint64_t pfn = xl(as[0], BASE).pfn;
	for (unsigned k = 0; k < 4; k++)
		assert_int_equal(xl(as[k], BASE).pfn, pfn);
	assert_int_equal(refs(ctx, pfn), 4);
	assert_int_equal(ptk_rmap_count(ctx, pfn), 4);
	/* A split region: the link splits with it, the frame is still found. */
	assert_int_equal(ptk_protect(as[2], BASE + PG, PG, PTK_PROT_READ), 0);
	assert_int_equal(ptk_rmap_count(ctx, xl(as[2], BASE + PG).pfn), 4);
	assert_int_equal(ptk_rmap_unmap_frame(ctx, pfn), 4);
	for (unsigned k = 0; k < 4; k++) {
		struct ptk_xlate x;
		assert_int_equal(ptk_translate(as[k], BASE, &x), -EFAULT);
		assert_int_equal(rd(as[k], BASE), 0);       /* a fresh zero page */
		assert_int_equal(rd(as[k], BASE + PG), 43); /* the rest untouched */
	}
	ptk_ctx_quiesce(ctx);
	/* (the frame was freed; the refaults may have reused it) */
	assert_int_equal(ptk_rmap_count(ctx, UINT64_C(1) << 40), -EINVAL);
	/* Unmapping from one space (after a COW copy) leaves the others. */
	wr(as[1], BASE + PG, 1);
	uint64_t own = xl(as[1], BASE + PG).pfn;
	assert_int_equal(ptk_rmap_unmap_frame(ctx, own), 1);
	assert_int_equal(rd(as[1], BASE + PG), 0);
	assert_int_equal(rd(as[3], BASE + PG), 43);
	/* A pinned frame outlives its mappings and its family: the walk
	 * finds no family (a dead one is never followed, nor freed memory). */
	uint64_t pinned;
	assert_int_equal(ptk_pin(as[3], BASE + 2 * PG, 1, PTK_ACCESS_WRITE, &pinned), 0);
	for (unsigned k = 0; k < 4; k++)
		ptk_as_destroy(as[k]);
	ptk_ctx_quiesce(ctx);
	assert_int_equal(refs(ctx, pinned), 1);
	assert_int_equal(ptk_rmap_count(ctx, pinned), -ENOENT);
	assert_int_equal(ptk_rmap_unmap_frame(ctx, pinned), -ENOENT);
	/* Families are reused: a new one may take the dead one's memory. */
	struct ptk_as *again = new_as(ctx);
	map_at(again, BASE, 4 * PG, 0);
	wr(again, BASE + 2 * PG, 5);
	int rc = ptk_rmap_count(ctx, pinned);
	assert_true(rc == 0 || rc == -ENOENT);
	ptk_unpin(ctx, &pinned, 1);
	ptk_as_destroy(again);
	test_teardown(ctx, NULL);
}
static void rmap_count_and_unmap(void **s) { (void)s; rmap_count_and_unmap_d(PTK_RMAP_SLEEPING); }
static void rmap_count_and_unmap_spin(void **s) { (void)s; rmap_count_and_unmap_d(PTK_RMAP_SPIN); }

static void rmap_special_and_tables(void **s)
{
	(void)s;
	struct ptk_ctx *ctx = ctx_design(0, PTK_RMAP_SLEEPING);
	struct ptk_as *as = new_as(ctx);
	uint64_t va = BASE;
	assert_int_equal(ptk_map_special(as, &va, 4 * PG, UINT64_C(1) << 30, RW,
					 PTK_MAP_FIXED), 0);
	assert_int_equal(ptk_rmap_unmap_frame(ctx, UINT64_C(1) << 30), -EINVAL);
	assert_int_equal(ptk_rmap_count(ctx, UINT64_C(1) << 30), -EINVAL);
	/* A free frame of the pool is not a data frame. */
	assert_int_equal(ptk_rmap_unmap_frame(ctx, 1000), -EINVAL);
	assert_int_equal(ptk_rmap_count(NULL, 0), -EINVAL);
	test_teardown(ctx, as);
}

/* ---- huge leaves ------------------------------------------------------------ */

static void huge_cow(void **s)
{
	(void)s;
	struct ptk_ctx *ctx = ctx_design(0, PTK_RMAP_SLEEPING);
	struct ptk_as *p = new_as(ctx);
	uint64_t H = PTK_HUGE_2M;
	map_at(p, 16 * H, 2 * H, PTK_MAP_HUGE);
	for (unsigned i = 0; i < 512; i += 37)
		wr(p, 16 * H + i * PG, 1000 + i);
	assert_int_equal(xl(p, 16 * H).level, 1);
	uint64_t head = xl(p, 16 * H).pfn;
	struct ptk_as *c = clone_ok(p);
	struct ptk_xlate a = xl(p, 16 * H + 5 * PG), b = xl(c, 16 * H + 5 * PG);
	assert_int_equal(a.level, 1);
	assert_int_equal(b.level, 1);               /* shared as one huge leaf */
	assert_int_equal(a.pfn, b.pfn);
	assert_false(ptk_pte_write(a.pte));
	assert_int_equal(refs(ctx, head), 2);
	assert_int_equal(ptk_rmap_count(ctx, head + 5), 2);
	/* The child's write splits its leaf and copies one page. */
	wr(c, 16 * H + 37 * PG, 5);
	assert_int_equal(xl(c, 16 * H + 37 * PG).level, 0);
	assert_int_not_equal(xl(c, 16 * H + 37 * PG).pfn, head + 37);
	assert_int_equal(xl(c, 16 * H + 74 * PG).pfn, head + 74);   /* still shared */
	assert_int_equal(rd(p, 16 * H + 37 * PG), 1037);
	assert_int_equal(rd(c, 16 * H + 74 * PG), 1074);
	assert_int_equal(refs(ctx, head), 1 + 511);
	/* The parent's write copies too (the huge frame is still shared). */
	wr(p, 16 * H + 74 * PG, 6);
	assert_int_equal(rd(c, 16 * H + 74 * PG), 1074);
	assert_int_equal(rd(p, 16 * H + 74 * PG), 6);
	assert_int_equal(rd(p, 16 * H + 111 * PG), 1111);
	/* Unmapping a page of the huge frame clears every leaf mapping it
	 * (the parent's small leaves, the child's small ones). */
	assert_int_equal(ptk_rmap_count(ctx, head + 111), 2);
	assert_int_equal(ptk_rmap_unmap_frame(ctx, head + 111), 2);
	assert_int_equal(ptk_rmap_count(ctx, head + 111), 0);
	struct ptk_xlate x;
	assert_int_equal(ptk_translate(c, 16 * H + 111 * PG, &x), -EFAULT);
	assert_int_equal(ptk_translate(p, 16 * H + 111 * PG, &x), -EFAULT);
	assert_int_equal(rd(c, 16 * H + 37 * PG), 5);     /* copies untouched */
	ptk_as_destroy(c);
	/* An exclusive huge leaf: write granted in place. */
	struct ptk_as *q = new_as(ctx);
	map_at(q, 32 * H, H, PTK_MAP_HUGE);
	wr(q, 32 * H, 3);
	struct ptk_as *q2 = clone_ok(q);
	ptk_as_destroy(q2);
	uint64_t qh = xl(q, 32 * H).pfn;
	wr(q, 32 * H + PG, 4);
	assert_int_equal(xl(q, 32 * H).level, 1);
	assert_int_equal(xl(q, 32 * H).pfn, qh);
	/* Unmapping a page of a huge leaf shared by two spaces clears both
	 * huge leaves whole. */
	q2 = clone_ok(q);
	assert_int_equal(ptk_rmap_count(ctx, qh + 9), 2);
	assert_int_equal(ptk_rmap_unmap_frame(ctx, qh + 9), 2);
	assert_int_equal(ptk_translate(q, 32 * H + 100 * PG, &x), -EFAULT);
	assert_int_equal(ptk_translate(q2, 32 * H, &x), -EFAULT);
	assert_int_equal(rd(q2, 32 * H), 0);
	ptk_as_destroy(q2);
	ptk_as_destroy(q);
	test_teardown(ctx, p);
}

/* ---- special mappings ---------------------------------------------------- */

static void special_copied(void **s)
{
	(void)s;
	struct ptk_ctx *ctx = ctx_design(0, PTK_RMAP_SLEEPING);
	struct ptk_as *p = new_as(ctx);
	uint64_t va = BASE, pfn = UINT64_C(1) << 30;
	assert_int_equal(ptk_map_special(p, &va, 4 * PG, pfn, RW, PTK_MAP_FIXED), 0);
	va = 64 * PTK_HUGE_2M;
	assert_int_equal(ptk_map_special(p, &va, PTK_HUGE_2M, pfn + 512, RW,
					 PTK_MAP_FIXED | PTK_MAP_HUGE), 0);
	struct ptk_as *c = clone_ok(p);
	for (unsigned i = 0; i < 4; i++) {
		struct ptk_xlate x = xl(c, BASE + i * PG);
		assert_int_equal(x.pfn, pfn + i);
		assert_true(ptk_pte_special(x.pte));
		assert_true(ptk_pte_write(x.pte));          /* not write-protected */
		assert_true(ptk_pte_write(xl(p, BASE + i * PG).pte));
	}
	struct ptk_xlate h = xl(c, 64 * PTK_HUGE_2M + 3 * PG);
	assert_int_equal(h.level, 1);
	assert_int_equal(h.pfn, pfn + 512 + 3);
	assert_int_equal(rss(c), 0);                    /* not counted */
	ptk_as_destroy(c);
	test_teardown(ctx, p);
}

/* A CPU's cached writable translation of the parent is gone when clone
 * returns (both TLB modes): the next write faults and copies.  The CPU is
 * another thread that keeps translating (so it answers shootdowns) while
 * the main thread clones. */
struct tlb_arg {
	struct ptk_as *p;
	atomic_int phase;          /* 1: cached, 2: cloned, 3: checked */
	int rc_after;
	uint64_t pfn_before, pfn_after;
};

static void *tlb_cpu(void *arg)
{
	struct tlb_arg *a = arg;
	struct ptk_cpu *cpu;
	if (ptk_cpu_register(ptk_as_ctx(a->p), &cpu))
		return NULL;
	ptk_cpu_switch(cpu, a->p);
	struct ptk_xlate x;
	if (ptk_tlb_translate_fault(cpu, BASE, PTK_ACCESS_WRITE, &x) == 0) {
		memcpy(x.host, &(uint64_t){ 31 }, 8);
		a->pfn_before = x.pfn;
	}
	(void)ptk_tlb_translate_fault(cpu, BASE + PG, PTK_ACCESS_READ, &x);
	atomic_store(&a->phase, 1);
	while (atomic_load(&a->phase) == 1)
		(void)ptk_tlb_translate(cpu, BASE + PG, PTK_ACCESS_READ, &x);
	a->rc_after = ptk_tlb_translate(cpu, BASE, PTK_ACCESS_WRITE, &x);
	if (ptk_tlb_translate_fault(cpu, BASE, PTK_ACCESS_WRITE, &x) == 0) {
		a->pfn_after = x.pfn;
		memcpy(x.host, &(uint64_t){ 32 }, 8);
	}
	ptk_cpu_switch(cpu, NULL);
	ptk_cpu_unregister(cpu);
	atomic_store(&a->phase, 3);
	return NULL;
}

static void clone_flushes_tlb_d(enum ptk_tlb_mode mode)
{
	struct ptk_ctx_config cfg;
	ptk_ctx_config_default(&cfg);
	cfg.pool_bytes = 64 * MiB;
	cfg.tlb_mode = mode;
	struct ptk_ctx *ctx = NULL;
	assert_int_equal(ptk_ctx_create(&cfg, &ctx), 0);
	struct ptk_as *p = new_as(ctx);
	map_at(p, BASE, 4 * PG, 0);
	struct tlb_arg a = { .p = p };
	pthread_t t;
	pthread_create(&t, NULL, tlb_cpu, &a);
	while (atomic_load(&a.phase) == 0)
		usleep(100);
	struct ptk_as *c = clone_ok(p);
	atomic_store(&a.phase, 2);
	pthread_join(t, NULL);
	assert_int_equal(atomic_load(&a.phase), 3);
	assert_int_equal(a.rc_after, -EACCES);          /* no stale writable entry */
	assert_int_not_equal(a.pfn_after, a.pfn_before);   /* copied */
	assert_int_equal(rd(c, BASE), 31);
	assert_int_equal(rd(p, BASE), 32);
	ptk_as_destroy(c);
	test_teardown(ctx, p);
}
static void clone_flushes_tlb(void **s) { (void)s; clone_flushes_tlb_d(PTK_TLB_SYNC); clone_flushes_tlb_d(PTK_TLB_LAZY); }

static void five_levels(void **s)
{
	(void)s;
	struct ptk_ctx *ctx = ctx_design(0, PTK_RMAP_SLEEPING);
	struct ptk_as *p = NULL;
	assert_int_equal(ptk_as_create(ctx, 5, &p), 0);
	uint64_t hi = UINT64_C(1) << 52;
	map_at(p, hi, 2 * PG, 0);
	wr(p, hi, 11);
	struct ptk_as *c = clone_ok(p);
	assert_int_equal(ptk_as_levels(c), 5);
	assert_int_equal(rd(c, hi), 11);
	wr(c, hi, 12);
	assert_int_equal(rd(p, hi), 11);
	ptk_as_destroy(c);
	test_teardown(ctx, p);
}

/* ---- failure injection ------------------------------------------------------ */

static void clone_inject_d(enum ptk_rmap_lock d)
{
	struct ptk_ctx *ctx = ctx_design(0, d);
	struct ptk_as *p = new_as(ctx);
	map_at(p, BASE, 8 * PG, 0);
	map_at(p, BASE + 1024 * PG, 4 * PG, 0);         /* another PTE table */
	map_at(p, UINT64_C(1) << 40, PG, 0);            /* another top-level slot */
	uint64_t vas[] = { BASE, BASE + 7 * PG, BASE + 1024 * PG, UINT64_C(1) << 40 };
	for (unsigned i = 0; i < 4; i++)
		wr(p, vas[i], 50 + i);
	const unsigned kinds = PTK_INJECT_ALL | PTK_INJECT_META;
	ptk_ctx_alloc_count(ctx, kinds, 1);
	struct ptk_as *c = clone_ok(p);
	long n = ptk_ctx_alloc_count(ctx, kinds, 0);
	assert_true(n >= 6);            /* root, tables, links, region array */
	ptk_as_destroy(c);
	for (long nth = 1; nth <= n; nth++) {
		for (unsigned i = 0; i < 4; i++)
			wr(p, vas[i], 50 + i);          /* writable again */
		uint64_t rss0 = rss(p);
		ptk_ctx_inject_failure(ctx, kinds, nth);
		c = NULL;
		assert_int_equal(ptk_as_clone(p, &c), -ENOMEM);
		assert_null(c);
		ptk_ctx_inject_failure(ctx, 0, 0);
		assert_int_equal(rss(p), rss0);
		for (unsigned i = 0; i < 4; i++) {
			uint64_t pfn = xl(p, vas[i]).pfn;
			assert_int_equal(refs(ctx, pfn), 1);
			assert_int_equal(ptk_rmap_count(ctx, pfn), 1);
			assert_int_equal(rd(p, vas[i]), 50 + i);
			wr(p, vas[i], 50 + i);
			assert_int_equal(xl(p, vas[i]).pfn, pfn);   /* reused, no copy */
		}
	}
	/* The COW fault: each of its allocations fails once, cleanly. */
	c = clone_ok(p);
	ptk_ctx_alloc_count(ctx, kinds, 1);
	wr(c, BASE, 9);
	n = ptk_ctx_alloc_count(ctx, kinds, 0);
	assert_true(n >= 1);
	for (long nth = 1; nth <= n; nth++) {
		uint64_t pfn = xl(c, BASE + 7 * PG).pfn;
		ptk_ctx_inject_failure(ctx, kinds, nth);
		assert_int_equal(ptk_fault(c, BASE + 7 * PG, PTK_ACCESS_WRITE), -ENOMEM);
		ptk_ctx_inject_failure(ctx, 0, 0);
		assert_int_equal(xl(c, BASE + 7 * PG).pfn, pfn);
		assert_false(ptk_pte_write(xl(c, BASE + 7 * PG).pte));
		assert_int_equal(refs(ctx, pfn), 2);
	}
	wr(c, BASE + 7 * PG, 10);
	assert_int_equal(rd(p, BASE + 7 * PG), 51);
	assert_int_equal(rd(p, BASE), 50);
	/* take-all-locks' array. */
	struct ptk_all_locks *l = NULL;
	ptk_ctx_inject_failure(ctx, PTK_INJECT_META, 1);
	assert_int_equal(ptk_as_lock_all(c, &l), -ENOMEM);
	ptk_ctx_inject_failure(ctx, 0, 0);
	assert_int_equal(ptk_as_lock_all(c, &l), 0);    /* nothing was left held */
	ptk_as_unlock_all(l);
	ptk_as_destroy(c);
	test_teardown(ctx, p);
}
static void clone_inject(void **s) { (void)s; clone_inject_d(PTK_RMAP_SLEEPING); }
static void clone_inject_spin(void **s) { (void)s; clone_inject_d(PTK_RMAP_SPIN); }

/* ---- take all locks -------------------------------------------------------- */

struct lock_arg {
	struct ptk_as *as;
	atomic_int state;
};

static void *lock_all_thread(void *p)
{
	struct lock_arg *a = p;
	struct ptk_all_locks *l;
	atomic_store(&a->state, 1);
	assert_int_equal(ptk_as_lock_all(a->as, &l), 0);
	atomic_store(&a->state, 2);
	ptk_as_unlock_all(l);
	return NULL;
}

static void lock_all_d(enum ptk_rmap_lock d)
{
	struct ptk_ctx *ctx = ctx_design(0, d);
	struct ptk_as *p = new_as(ctx);
	map_at(p, BASE, 8 * PG, 0);
	map_at(p, BASE + 64 * PG, 8 * PG, 0);
	wr(p, BASE, 1);
	struct ptk_as *c = clone_ok(p);
	struct ptk_all_locks *l = NULL;
	assert_int_equal(ptk_as_lock_all(NULL, &l), -EINVAL);
	assert_int_equal(ptk_as_lock_all(p, &l), 0);
	ptk_as_unlock_all(l);
	ptk_as_unlock_all(NULL);
	/* Two spaces sharing the families: the second waits for the first. */
	assert_int_equal(ptk_as_lock_all(p, &l), 0);
	struct lock_arg a = { .as = c };
	pthread_t t;
	pthread_create(&t, NULL, lock_all_thread, &a);
	while (atomic_load(&a.state) == 0)
		usleep(100);
	usleep(20000);
	assert_int_equal(atomic_load(&a.state), 1);     /* still blocked */
	ptk_as_unlock_all(l);
	pthread_join(t, NULL);
	assert_int_equal(atomic_load(&a.state), 2);
	/* Everything works again afterwards. */
	wr(c, BASE, 2);
	assert_int_equal(rd(p, BASE), 1);
	assert_int_equal(ptk_unmap(p, BASE, 8 * PG), 0);
	ptk_as_destroy(c);
	test_teardown(ctx, p);
}
static void lock_all_basic(void **s) { (void)s; lock_all_d(PTK_RMAP_SLEEPING); }
static void lock_all_basic_spin(void **s) { (void)s; lock_all_d(PTK_RMAP_SPIN); }

static void notifier_start(struct ptk_notifier *n, struct ptk_as *as, uint64_t s, uint64_t e)
{
	(void)as; (void)s; (void)e;
	atomic_fetch_add((atomic_long *)n->priv, 1);
}

static void clone_notifies(void **s)
{
	(void)s;
	struct ptk_ctx *ctx = ctx_design(0, PTK_RMAP_SLEEPING);
	struct ptk_as *p = new_as(ctx);
	map_at(p, BASE, 8 * PG, 0);
	wr(p, BASE, 1);
	atomic_long calls = 0;
	static const struct ptk_notifier_ops ops = { .invalidate_range_start = notifier_start };
	struct ptk_notifier n = { .ops = &ops, .priv = &calls };
	assert_int_equal(ptk_notifier_register(p, &n), 0);
	struct ptk_as *c = clone_ok(p);
	assert_int_equal(atomic_load(&calls), 1);       /* one call for the clone */
	wr(c, BASE, 2);                                 /* child: not notified */
	assert_int_equal(atomic_load(&calls), 1);
	wr(p, BASE, 3);         /* parent: exclusive again, write granted, no call */
	ptk_notifier_unregister(p, &n);
	ptk_as_destroy(c);
	test_teardown(ctx, p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(cow_shares_then_breaks),
		cmocka_unit_test(cow_shares_then_breaks_spin),
		cmocka_unit_test(protect_keeps_cow),
		cmocka_unit_test(destroy_parent_first),
		cmocka_unit_test(destroy_child_first),
		cmocka_unit_test(destroy_parent_first_spin),
		cmocka_unit_test(fork_chain),
		cmocka_unit_test(fork_chain_spin),
		cmocka_unit_test(fork_chain_old_designs),
		cmocka_unit_test(rmap_count_and_unmap),
		cmocka_unit_test(rmap_count_and_unmap_spin),
		cmocka_unit_test(rmap_special_and_tables),
		cmocka_unit_test(huge_cow),
		cmocka_unit_test(special_copied),
		cmocka_unit_test(five_levels),
		cmocka_unit_test(clone_flushes_tlb),
		cmocka_unit_test(clone_inject),
		cmocka_unit_test(clone_inject_spin),
		cmocka_unit_test(lock_all_basic),
		cmocka_unit_test(lock_all_basic_spin),
		cmocka_unit_test(clone_notifies),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
