/*
 * test_badinput.c - every public entry point of include/ptkit/ (every header) with
 * hostile arguments: NULL, unaligned, zero, overflowing and out-of-range
 * ranges, unknown flags, protections and access types, frames of no pool,
 * objects of the wrong kind and (debug builds) use after destroy.
 *
 * Each call must give its documented error and change nothing: a victim
 * address space with written pages is checked after every group (contents,
 * resident frames, regions), and every test ends with frame accounting.
 * Calls documented to abort on a caller bug (NULL lock, a frame of no pool,
 * double free, debug-build use after destroy) run in a child process that
 * must die of SIGABRT with the documented message.
 *
 * pte.h's accessors and level arithmetic are not called with bad levels:
 * they are inline arithmetic over levels the caller validated (documented
 * there), not entry points that take user input.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "helpers.h"

#define RW (PTK_PROT_READ | PTK_PROT_WRITE)
#define VBASE (UINT64_C(1) << 32)
#define VPAGES 16

struct victim {
	struct ptk_ctx *ctx;
	struct ptk_as *as;
	struct ptk_as_stats st;
};

static void victim_make(struct victim *v)
{
	v->ctx = test_ctx(0);
	assert_int_equal(ptk_as_create(v->ctx, 4, &v->as), 0);
	uint64_t va = VBASE;
	assert_int_equal(ptk_map_anon(v->as, &va, VPAGES * 4096, RW, PTK_MAP_FIXED), 0);
	for (unsigned i = 0; i < VPAGES; i++) {
		struct ptk_xlate x;
		assert_int_equal(ptk_translate_fault(v->as, VBASE + i * 4096, PTK_ACCESS_WRITE, &x), 0);
		*(uint32_t *)x.host = 1000 + i;
	}
	ptk_as_stats(v->as, &v->st);
}

/* Nothing was lost or changed. */
static void victim_intact(struct victim *v)
{
	for (unsigned i = 0; i < VPAGES; i++) {
		struct ptk_xlate x;
		assert_int_equal(ptk_translate(v->as, VBASE + i * 4096, &x), 0);
		assert_int_equal(*(uint32_t *)x.host, 1000 + i);
		assert_true(ptk_pte_write(x.pte));
	}
	struct ptk_as_stats st;
	ptk_as_stats(v->as, &st);
	assert_int_equal(st.rss_frames, v->st.rss_frames);
	assert_int_equal(st.regions, v->st.regions);
	assert_int_equal(st.mapped_bytes, v->st.mapped_bytes);
	assert_int_equal(st.table_pages, v->st.table_pages);
}

static void victim_done(struct victim *v)
{
	victim_intact(v);
	test_teardown(v->ctx, v->as);
}

/* Run @fn(@arg) in a child: it must abort (SIGABRT) printing @msg. */
static void expect_abort(void (*fn)(void *), void *arg, const char *msg)
{
	int pfd[2];
	assert_int_equal(pipe(pfd), 0);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(pfd[1], 2);
		close(pfd[0]);
		fn(arg);
		_exit(0);       /* did not abort */
	}
	close(pfd[1]);
	char buf[4096];
	size_t n = 0;
	ssize_t r;
	while (n < sizeof(buf) - 1 && (r = read(pfd[0], buf + n, sizeof(buf) - 1 - n)) > 0)
		n += (size_t)r;
	buf[n] = 0;
	close(pfd[0]);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT || !strstr(buf, msg))
		print_error("expected abort with '%s', got status %#x, stderr: %s\n", msg, status, buf);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
	assert_non_null(strstr(buf, msg));
}

/* ---- ctx.h -------------------------------------------------------------- */

static void ctx_entry_points(void **state)
{
	(void)state;
	struct victim v;
	victim_make(&v);
	struct ptk_ctx *c = NULL;
	ptk_ctx_config_default(NULL);
	assert_int_equal(ptk_ctx_create(NULL, NULL), -EINVAL);
	struct ptk_ctx_config cfg;
	ptk_ctx_config_default(&cfg);
	cfg.levels = 3;
	assert_int_equal(ptk_ctx_create(&cfg, &c), -EINVAL);
	ptk_ctx_config_default(&cfg);
	cfg.pool_bytes = UINT64_MAX;
	assert_int_equal(ptk_ctx_create(&cfg, &c), -EINVAL);
	ptk_ctx_config_default(&cfg);
	cfg.cache_frames = 1;
	assert_int_equal(ptk_ctx_create(&cfg, &c), -EINVAL);
	ptk_ctx_config_default(&cfg);
	cfg.cache_shards = 1u << 20;
	assert_int_equal(ptk_ctx_create(&cfg, &c), -EINVAL);
	ptk_ctx_config_default(&cfg);
	cfg.kernel_sync = (enum ptk_kernel_sync)99;
	assert_int_equal(ptk_ctx_create(&cfg, &c), -EINVAL);
	ptk_ctx_config_default(&cfg);
	cfg.gather_mode = (enum ptk_gather_mode)-1;
	assert_int_equal(ptk_ctx_create(&cfg, &c), -EINVAL);
	assert_null(c);
	ptk_ctx_destroy(NULL);
	ptk_ctx_quiesce(NULL);
	assert_null(ptk_ctx_config(NULL));
	assert_int_equal(ptk_ctx_inject_failure(NULL, PTK_INJECT_ALL, 1), -EINVAL);
	assert_int_equal(ptk_ctx_alloc_count(NULL, PTK_INJECT_ALL, 1), -EINVAL);
	/* Unknown kinds are ignored, negative counts disarm. */
	assert_int_equal(ptk_ctx_inject_failure(v.ctx, 0xff00, 1), 0);
	assert_int_equal(ptk_fault(v.as, VBASE + VPAGES * 4096, PTK_ACCESS_READ), -EFAULT);
	ptk_ctx_inject_failure(v.ctx, PTK_INJECT_ALL, -5);
	assert_int_equal(ptk_ctx_inject_failure(v.ctx, 0, 0), 0);
	victim_done(&v);
}

/* ---- as.h ----------------------------------------------------------------- */

static void as_lifetime_and_accessors(void **state)
{
	(void)state;
	struct victim v;
	victim_make(&v);
	struct ptk_as *as = NULL;
	assert_int_equal(ptk_as_create(NULL, 4, &as), -EINVAL);
	assert_int_equal(ptk_as_create(v.ctx, 3, &as), -EINVAL);
	assert_int_equal(ptk_as_create(v.ctx, 6, &as), -EINVAL);
	assert_int_equal(ptk_as_create(v.ctx, ~0u, &as), -EINVAL);
	assert_int_equal(ptk_as_create(v.ctx, 4, NULL), -EINVAL);
	assert_null(as);
	ptk_as_destroy(NULL);
	assert_null(ptk_as_ctx(NULL));
	assert_int_equal(ptk_as_levels(NULL), 0);
	assert_int_equal(ptk_as_user_end(NULL), 0);
	struct ptk_as_stats st;
	memset(&st, 0xff, sizeof(st));
	ptk_as_stats(NULL, &st);
	assert_int_equal(st.regions, 0);
	ptk_as_stats(v.as, NULL);
	struct ptk_region_info ri;
	assert_int_equal(ptk_region_query(NULL, VBASE, &ri), -EINVAL);
	assert_int_equal(ptk_region_query(v.as, VBASE, NULL), -EINVAL);
	assert_int_equal(ptk_region_query(v.as, 0, &ri), -ENOENT);
	assert_int_equal(ptk_region_query(v.as, UINT64_MAX, &ri), -ENOENT);
	assert_int_equal(ptk_region_foreach(v.as, NULL, NULL), -EINVAL);
	assert_int_equal(ptk_region_foreach(NULL, NULL, NULL), -EINVAL);
	victim_done(&v);
}

static void map_hostile(void **state)
{
	(void)state;
	struct victim v;
	victim_make(&v);
	struct ptk_as *as = v.as;
	uint64_t end = ptk_as_user_end(as);
	uint64_t va;
	for (int special = 0; special < 2; special++) {
#define MAP(vp, len, prot, flags) (special ? \
		ptk_map_special(as, (vp), (len), 1u << 20, (prot), (flags)) : \
		ptk_map_anon(as, (vp), (len), (prot), (flags)))
		va = VBASE;
		assert_int_equal(special ? ptk_map_special(NULL, &va, 4096, 0, 1, 0) :
				 ptk_map_anon(NULL, &va, 4096, 1, 0), -EINVAL);
		assert_int_equal(MAP(NULL, 4096, RW, 0), -EINVAL);
		va = VBASE;
		assert_int_equal(MAP(&va, 0, RW, PTK_MAP_FIXED), -EINVAL);
		assert_int_equal(MAP(&va, 4095, RW, PTK_MAP_FIXED), -EINVAL);
		assert_int_equal(MAP(&va, 4096, 8, PTK_MAP_FIXED), -EINVAL);
		assert_int_equal(MAP(&va, 4096, ~0u, PTK_MAP_FIXED), -EINVAL);
		assert_int_equal(MAP(&va, 4096, RW, 0x10), -EINVAL);
		assert_int_equal(MAP(&va, 4096, RW, ~0u), -EINVAL);
		va = VBASE + 1;
		assert_int_equal(MAP(&va, 4096, RW, PTK_MAP_FIXED), -EINVAL);
		assert_int_equal(MAP(&va, 4096, RW, 0), -EINVAL);
		va = UINT64_MAX - 4095;      /* wraps */
		assert_int_equal(MAP(&va, 8192, RW, PTK_MAP_FIXED), -EINVAL);
		va = end - 4096;             /* crosses the end of the user half */
		assert_int_equal(MAP(&va, 8192, RW, PTK_MAP_FIXED), -EINVAL);
		va = ptk_kernel_start(4);    /* kernel half */
		assert_int_equal(MAP(&va, 4096, RW, PTK_MAP_FIXED), -EINVAL);
		va = 0;
		assert_int_equal(MAP(&va, end + 4096, RW, 0), -ENOMEM);
		va = 0;
		assert_int_equal(MAP(&va, UINT64_MAX - 4095, RW, 0), -ENOMEM);
		va = VBASE;                  /* NOREPLACE over the victim */
		assert_int_equal(MAP(&va, 4096, RW, PTK_MAP_NOREPLACE), -EEXIST);
		assert_int_equal(va, VBASE);
#undef MAP
		victim_intact(&v);
	}
	/* Special frame numbers that overflow or leave the 40-bit field. */
	va = 8 * GiB;
	assert_int_equal(ptk_map_special(as, &va, 8192, UINT64_MAX, 1, PTK_MAP_FIXED), -EINVAL);
	assert_int_equal(ptk_map_special(as, &va, 8192, UINT64_C(1) << 40, 1, PTK_MAP_FIXED),
			 -EINVAL);
	assert_int_equal(ptk_map_special(as, &va, 8192, (UINT64_C(1) << 40) - 1, 1,
					 PTK_MAP_FIXED), -EINVAL);
	victim_done(&v);
}

static void range_ops_hostile(void **state)
{
	(void)state;
	struct victim v;
	victim_make(&v);
	struct ptk_as *as = v.as;
	uint64_t end = ptk_as_user_end(as);
	struct { uint64_t va, len; } bad[] = {
		{ VBASE, 0 }, { VBASE + 1, 4096 }, { VBASE, 4097 }, { VBASE, 1 },
		{ UINT64_MAX - 4095, 8192 }, { VBASE, UINT64_MAX - 4095 },
		{ end - 4096, 8192 }, { end, 4096 }, { ptk_kernel_start(4), 4096 },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(ptk_unmap(as, bad[i].va, bad[i].len), -EINVAL);
		assert_int_equal(ptk_protect(as, bad[i].va, bad[i].len, PTK_PROT_READ), -EINVAL);
		assert_int_equal(ptk_drop(as, bad[i].va, bad[i].len), -EINVAL);
	}
	assert_int_equal(ptk_unmap(NULL, VBASE, 4096), -EINVAL);
	assert_int_equal(ptk_protect(NULL, VBASE, 4096, 1), -EINVAL);
	assert_int_equal(ptk_drop(NULL, VBASE, 4096), -EINVAL);
	assert_int_equal(ptk_protect(as, VBASE, 4096, 8), -EINVAL);
	assert_int_equal(ptk_protect(as, VBASE, 4096, ~0u), -EINVAL);
	/* Partly unmapped: protect refuses, drop drops the mapped part only
	 * (none here: the range starts past the victim). */
	assert_int_equal(ptk_protect(as, VBASE, (VPAGES + 1) * 4096, PTK_PROT_READ), -ENOMEM);
	assert_int_equal(ptk_drop(as, VBASE + VPAGES * 4096, 4096), -ENOMEM);
	/* Unmapping nothing is fine. */
	assert_int_equal(ptk_unmap(as, 64 * GiB, 1 * GiB), 0);
	victim_done(&v);
}

static void fault_translate_hostile(void **state)
{
	(void)state;
	struct victim v;
	victim_make(&v);
	struct ptk_as *as = v.as;
	uint64_t end = ptk_as_user_end(as);
	struct ptk_xlate x;
	assert_int_equal(ptk_fault(NULL, VBASE, PTK_ACCESS_READ), -EINVAL);
	assert_int_equal(ptk_fault(as, VBASE, 3), -EINVAL);
	assert_int_equal(ptk_fault(as, VBASE, ~0u), -EINVAL);
	assert_int_equal(ptk_fault(as, end, PTK_ACCESS_READ), -EFAULT);
	assert_int_equal(ptk_fault(as, UINT64_C(1) << 60, PTK_ACCESS_READ), -EFAULT);
	assert_int_equal(ptk_fault(as, ptk_kernel_start(4), PTK_ACCESS_READ), -EFAULT);
	assert_int_equal(ptk_fault(as, UINT64_MAX, PTK_ACCESS_WRITE), -EFAULT);
	assert_int_equal(ptk_populate(NULL, VBASE, 4096, 0), -EINVAL);
	assert_int_equal(ptk_populate(as, VBASE + 1, 4096, 0), -EINVAL);
	assert_int_equal(ptk_populate(as, VBASE, 4097, 0), -EINVAL);
	assert_int_equal(ptk_populate(as, UINT64_MAX - 4095, 8192, 0), -EINVAL);
	assert_int_equal(ptk_populate(as, VBASE, 4096, 3), -EINVAL);   /* present pages too */
	assert_int_equal(ptk_populate(as, VBASE, 4096, ~0u), -EINVAL);
	assert_int_equal(ptk_populate(as, end - 4096, 8192, 0), -EFAULT);
	assert_int_equal(ptk_translate(NULL, VBASE, &x), -EINVAL);
	assert_int_equal(ptk_translate(as, VBASE, NULL), -EINVAL);
	assert_int_equal(ptk_translate(as, UINT64_C(1) << 60, &x), -EFAULT);
	assert_int_equal(ptk_translate(as, UINT64_MAX, &x), -EFAULT);
	assert_int_equal(ptk_translate_fault(NULL, VBASE, 0, &x), -EINVAL);
	assert_int_equal(ptk_translate_fault(as, VBASE, 0, NULL), -EINVAL);
	assert_int_equal(ptk_translate_fault(as, VBASE, 3, &x), -EINVAL);  /* present */
	assert_int_equal(ptk_translate_fault(as, UINT64_MAX, 1, &x), -EFAULT);
	/* walk.h: the raw walker, inside a section. */
	ptk_rcu_read_lock();
	assert_int_equal(ptk_walk(NULL, VBASE, &x), -EINVAL);
	assert_int_equal(ptk_walk(as, VBASE, NULL), -EINVAL);
	assert_int_equal(ptk_walk(as, UINT64_C(1) << 60, &x), -EFAULT);
	ptk_rcu_read_unlock();
	victim_done(&v);
}

/* ---- frame.h, gather.h ---------------------------------------------------- */

static void frame_and_gather_hostile(void **state)
{
	(void)state;
	struct victim v;
	victim_make(&v);
	struct ptk_ctx *ctx = v.ctx;
	assert_null(ptk_frame_alloc(NULL, PTK_FRAME_DATA, true));
	assert_null(ptk_frame_alloc(ctx, PTK_FRAME_FREE, true));
	assert_null(ptk_frame_alloc(ctx, PTK_FRAME_HUGE, true));
	assert_null(ptk_frame_alloc(ctx, PTK_FRAME_HUGE_TAIL, true));
	assert_null(ptk_frame_alloc(ctx, (enum ptk_frame_type)77, true));
	assert_null(ptk_frame_alloc_huge(NULL));
	ptk_frame_free(ctx, NULL);
	ptk_frame_free(NULL, NULL);
	ptk_frame_put(ctx, NULL);
	ptk_frame_get(NULL);
	assert_false(ptk_frame_try_get(NULL));
	struct ptk_pool_stats ps;
	ptk_pool_stats(ctx, &ps);
	assert_null(ptk_pfn_to_frame(ctx, ps.capacity));
	assert_null(ptk_pfn_to_frame(ctx, UINT64_MAX));
	assert_null(ptk_pfn_to_frame(NULL, 0));
	assert_null(ptk_pfn_host(ctx, ps.capacity));
	assert_null(ptk_pfn_host(NULL, 0));
	assert_int_equal(ptk_frame_pfn(ctx, NULL), UINT64_MAX);
	assert_int_equal(ptk_frame_pfn(NULL, NULL), UINT64_MAX);
	struct ptk_frame outside;
	memset(&outside, 0, sizeof(outside));
	assert_int_equal(ptk_frame_pfn(ctx, &outside), UINT64_MAX);
	assert_null(ptk_frame_host(ctx, &outside));
	assert_null(ptk_frame_host(ctx, NULL));
	memset(&ps, 0xff, sizeof(ps));
	ptk_pool_stats(NULL, &ps);
	assert_int_equal(ps.capacity, 0);
	ptk_pool_stats(ctx, NULL);
	/* Gathers: NULL ones and frames are ignored; a gather with no address
	 * space is inert. */
	struct ptk_gather g;
	ptk_gather_init(NULL, v.as, false);
	ptk_gather_init(&g, NULL, false);
	struct ptk_frame *f = ptk_frame_alloc(ctx, PTK_FRAME_DATA, true);
	assert_non_null(f);
	assert_false(ptk_gather_add_page(&g, f));
	ptk_gather_add_table(&g, f);
	ptk_gather_note_range(&g, 0, 4096, 0);
	ptk_gather_flush(&g);
	ptk_gather_finish(&g);
	assert_false(ptk_gather_add_page(NULL, f));
	ptk_gather_add_table(NULL, f);
	ptk_gather_note_range(NULL, 0, 4096, 0);
	ptk_gather_flush(NULL);
	ptk_gather_finish(NULL);
	ptk_gather_init(&g, v.as, false);
	assert_false(ptk_gather_add_page(&g, NULL));
	ptk_gather_add_table(&g, NULL);
	ptk_gather_note_range(&g, 4096, 0, 0);       /* empty range */
	ptk_gather_note_range(&g, 0, 4096, 99);      /* no such level */
	ptk_gather_finish(&g);
	ptk_frame_put(ctx, f);                       /* the frame was never gathered */
	victim_done(&v);
}

/* ---- calls that must abort with a message --------------------------------- */

static void call_lock_null(void *arg) { (void)arg; ptk_lock_acquire(NULL); }
static void call_lock_init_null(void *arg) { (void)arg; ptk_lock_init(NULL); }
static void call_rcu_null(void *arg) { (void)arg; ptk_rcu_call(NULL, NULL); }
static void call_free_outside(void *arg)
{
	struct ptk_frame outside;
	memset(&outside, 0, sizeof(outside));
	ptk_frame_free(arg, &outside);
}
static void call_double_free(void *arg)
{
	struct ptk_frame *f = ptk_frame_alloc(arg, PTK_FRAME_DATA, true);
	ptk_frame_free(arg, f);
	ptk_frame_free(arg, f);
}
static void call_put_underflow(void *arg)
{
	struct ptk_frame *f = ptk_frame_alloc(arg, PTK_FRAME_TABLE, false);  /* refcount 0 */
	ptk_frame_put(arg, f);
}
static void call_use_after_destroy(void *arg)
{
	struct ptk_as *as = arg;
	ptk_as_destroy(as);
	uint64_t va = 0;
	ptk_map_anon(as, &va, 4096, PTK_PROT_READ, 0);
}
static void call_double_destroy(void *arg)
{
	ptk_as_destroy(arg);
	ptk_as_destroy(arg);
}
static void call_ctx_as_as(void *arg)
{
	/* A context where an address space is expected. */
	ptk_unmap((struct ptk_as *)arg, VBASE, 4096);
}

static void aborts_with_message(void **state)
{
	(void)state;
	struct victim v;
	victim_make(&v);
	expect_abort(call_lock_null, NULL, "NULL lock");
	expect_abort(call_lock_init_null, NULL, "NULL lock");
	expect_abort(call_rcu_null, NULL, "NULL head or callback");
	expect_abort(call_free_outside, v.ctx, "not a frame of this context's pool");
	expect_abort(call_double_free, v.ctx, "double free");
	expect_abort(call_put_underflow, v.ctx, "reference count underflow");
	if (ptk_debug_build()) {
		expect_abort(call_use_after_destroy, v.as, "not a live address space");
		expect_abort(call_double_destroy, v.as, "not a live address space");
		expect_abort(call_ctx_as_as, v.ctx, "not a live address space");
	} else {
		print_message("release build: use-after-destroy checks need -Dcontracts=true\n");
	}
	victim_done(&v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(ctx_entry_points),
		cmocka_unit_test(as_lifetime_and_accessors),
		cmocka_unit_test(map_hostile),
		cmocka_unit_test(range_ops_hostile),
		cmocka_unit_test(fault_translate_hostile),
		cmocka_unit_test(frame_and_gather_hostile),
		cmocka_unit_test(aborts_with_message),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
