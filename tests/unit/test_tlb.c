/*
 * test_tlb.c - software TLBs: hits and misses, invalidation by unmap and
 * protect on the calling CPU and on remote CPUs, a CPU outside
 * ptkit code, a CPU holding a translation delaying the free (sync) or the
 * free being deferred (lazy), the same for a kernel mapping (kunmap waits
 * in both modes), address-space switches.  Every test runs in
 * both TLB modes.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "helpers.h"

#define RW (PTK_PROT_READ | PTK_PROT_WRITE)

static struct ptk_ctx *mode_ctx(enum ptk_tlb_mode mode)
{
	struct ptk_ctx_config cfg;
	ptk_ctx_config_default(&cfg);
	cfg.pool_bytes = 64 * MiB;
	cfg.tlb_mode = mode;
	struct ptk_ctx *ctx;
	assert_int_equal(ptk_ctx_create(&cfg, &ctx), 0);
	return ctx;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void local_cpu(enum ptk_tlb_mode mode)
{
	struct ptk_ctx *ctx = mode_ctx(mode);
	struct ptk_as *as;
	assert_int_equal(ptk_as_create(ctx, 0, &as), 0);
	struct ptk_cpu *cpu, *again;
	assert_int_equal(ptk_cpu_register(ctx, &cpu), 0);
	assert_int_equal(ptk_cpu_register(ctx, &again), -EBUSY);
	ptk_cpu_switch(cpu, as);
	uint64_t va = 0;
	assert_int_equal(ptk_map_anon(as, &va, 64 * 4096, RW, 0), 0);
	struct ptk_xlate x, y;
	assert_int_equal(ptk_tlb_translate(cpu, va, PTK_ACCESS_READ, &x), -EFAULT);
	assert_int_equal(ptk_tlb_translate_fault(cpu, va, PTK_ACCESS_WRITE, &x), 0);
	*(uint32_t *)x.host = 0xabcd;
	struct ptk_cpu_stats st0, st1;
	ptk_cpu_stats(cpu, &st0);
	for (int i = 0; i < 100; i++) {
		assert_int_equal(ptk_tlb_translate(cpu, va + 8, PTK_ACCESS_WRITE, &y), 0);
		assert_ptr_equal(y.host, (uint8_t *)x.host + 8);
		assert_int_equal(y.pfn, x.pfn);
	}
	ptk_cpu_stats(cpu, &st1);
	assert_int_equal(st1.misses, st0.misses);          /* all hits */
	/* protect: the write entry goes, reads still hit or refill */
	assert_int_equal(ptk_protect(as, va, 64 * 4096, PTK_PROT_READ), 0);
	assert_int_equal(ptk_tlb_translate(cpu, va, PTK_ACCESS_WRITE, &y), -EACCES);
	assert_int_equal(ptk_tlb_translate(cpu, va, PTK_ACCESS_READ, &y), 0);
	assert_int_equal(*(uint32_t *)y.host, 0xabcd);
	assert_int_equal(ptk_protect(as, va, 64 * 4096, RW), 0);
	assert_int_equal(ptk_tlb_translate_fault(cpu, va, PTK_ACCESS_WRITE, &y), 0);
	/* unmap: gone from the TLB */
	assert_int_equal(ptk_unmap(as, va, 64 * 4096), 0);
	assert_int_equal(ptk_tlb_translate(cpu, va, PTK_ACCESS_READ, &y), -EFAULT);
	/* a switch flushes; the old space no longer waits for us */
	struct ptk_as *as2;
	assert_int_equal(ptk_as_create(ctx, 0, &as2), 0);
	ptk_cpu_switch(cpu, as2);
	ptk_cpu_unregister(cpu);
	ptk_as_destroy(as2);
	test_teardown(ctx, as);
}

static void tlb_local_sync(void **s) { (void)s; local_cpu(PTK_TLB_SYNC); }
static void tlb_local_lazy(void **s) { (void)s; local_cpu(PTK_TLB_LAZY); }

/* A remote CPU.  Steps driven by the main thread through @phase. */
struct remote {
	struct ptk_ctx *ctx;
	struct ptk_as *as;
	uint64_t va;
	_Atomic int phase;        /* main -> cpu */
	_Atomic int done;         /* cpu -> main */
	int hold_ms;              /* hold the translation this long */
	bool quiesce;             /* quiesce before sleeping */
	int sleep_ms;
	uint32_t seen;            /* value read through the held translation */
	int rc_after;
	struct ptk_cpu_stats st;
};

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static void *remote_main(void *p)
{
	struct remote *r = p;
	struct ptk_cpu *cpu;
	assert_int_equal(ptk_cpu_register(r->ctx, &cpu), 0);
	ptk_cpu_switch(cpu, r->as);
	struct ptk_xlate x;
	int rc = ptk_tlb_translate(cpu, r->va, PTK_ACCESS_READ, &x);
	assert_int_equal(rc, 0);
	r->done = 1;
	if (r->hold_ms) {
		while (r->phase < 1)
			;
		sleep_ms(r->hold_ms);
		r->seen = *(volatile uint32_t *)x.host;   /* still ours */
	}
	if (r->quiesce)
		ptk_cpu_quiesce(cpu);
	r->done = 2;
	if (r->sleep_ms)
		sleep_ms(r->sleep_ms);      /* outside ptkit code */
	while (r->phase < 2)
		sleep_ms(1);
	r->rc_after = ptk_tlb_translate(cpu, r->va, PTK_ACCESS_READ, &x);
	ptk_cpu_stats(cpu, &r->st);
	ptk_cpu_unregister(cpu);
	return NULL;
}

static void remote_idle(enum ptk_tlb_mode mode)
{
	struct ptk_ctx *ctx = mode_ctx(mode);
	struct ptk_as *as;
	assert_int_equal(ptk_as_create(ctx, 0, &as), 0);
	uint64_t va = 0;
	assert_int_equal(ptk_map_anon(as, &va, 16 * 4096, RW, PTK_MAP_POPULATE), 0);
	struct remote r = { .ctx = ctx, .as = as, .va = va, .quiesce = true, .sleep_ms = 1500 };
	pthread_t t;
	pthread_create(&t, NULL, remote_main, &r);
	while (r.done < 2)
		sleep_ms(1);
	sleep_ms(20);   /* now in its long sleep */
	/* The remote CPU runs no ptkit code: it is answered for (IDLE).  Lazy
	 * defers the pages; a protect (no pages) must wait, answered for too. */
	double t0 = now();
	assert_int_equal(ptk_protect(as, va, 16 * 4096, PTK_PROT_READ), 0);
	assert_int_equal(ptk_unmap(as, va, 16 * 4096), 0);
	double el = now() - t0;
	assert_true(el < 1.0);
	struct ptk_as_stats st;
	ptk_as_stats(as, &st);
	assert_true(st.remote_answers >= 1);
	r.phase = 2;
	pthread_join(t, NULL);
	assert_int_equal(r.rc_after, -EFAULT);
	assert_true(r.st.remote_answers >= 1);
	test_teardown(ctx, as);
}

static void tlb_idle_sync(void **s) { (void)s; remote_idle(PTK_TLB_SYNC); }
static void tlb_idle_lazy(void **s) { (void)s; remote_idle(PTK_TLB_LAZY); }

/* Stamp the page at @va of @as, start a remote CPU that translates it and
 * holds the translation for 200 ms once told (phase 1, set here). */
static void start_holder(struct remote *r, pthread_t *t, struct ptk_ctx *ctx,
			 struct ptk_as *as, uint64_t va)
{
	struct ptk_xlate x;
	assert_int_equal(ptk_translate(as, va, &x), 0);
	*(uint32_t *)x.host = 0x5eed;
	*r = (struct remote){ .ctx = ctx, .as = as, .va = va, .hold_ms = 200, .quiesce = true };
	pthread_create(t, NULL, remote_main, r);
	while (r->done < 1)
		sleep_ms(1);
	r->phase = 1;
}

/* A CPU holding a translation: the frame stays alive (and unpoisoned)
 * until it passes a quiescent point. */
static void remote_hold(enum ptk_tlb_mode mode)
{
	struct ptk_ctx *ctx = mode_ctx(mode);
	struct ptk_as *as;
	assert_int_equal(ptk_as_create(ctx, 0, &as), 0);
	uint64_t va = 0;
	assert_int_equal(ptk_map_anon(as, &va, 4096, RW, PTK_MAP_POPULATE), 0);
	struct remote r;
	pthread_t t;
	start_holder(&r, &t, ctx, as, va);
	double t0 = now();
	assert_int_equal(ptk_unmap(as, va, 4096), 0);
	double el = now() - t0;
	struct ptk_pool_stats ps;
	ptk_pool_stats(ctx, &ps);
	if (mode == PTK_TLB_SYNC) {
		assert_true(el > 0.1);           /* waited for the holder */
		assert_int_equal(ps.in_use[PTK_FRAME_DATA], 0);
	} else {
		assert_true(el < 0.1);           /* lazy: returned at once */
		assert_int_equal(ps.in_use[PTK_FRAME_DATA], 1);   /* deferred */
	}
	while (r.done < 2)
		sleep_ms(1);
	assert_int_equal(r.seen, 0x5eed);
	ptk_tlb_reap(as);
	ptk_pool_stats(ctx, &ps);
	assert_int_equal(ps.in_use[PTK_FRAME_DATA], 0);   /* passed: freed */
	r.phase = 2;
	pthread_join(t, NULL);
	assert_int_equal(r.rc_after, -EFAULT);
	test_teardown(ctx, as);
}

static void tlb_hold_sync(void **s) { (void)s; remote_hold(PTK_TLB_SYNC); }
static void tlb_hold_lazy(void **s) { (void)s; remote_hold(PTK_TLB_LAZY); }

/* The same with a kernel mapping (seen through every space): kunmap must
 * not free the frame while a CPU holds a translation to it, in either
 * mode.  Lazy mode has no deferral list for the kernel half, so kunmap
 * waits for the holder as the sync mode does. */
static void remote_hold_kernel(enum ptk_tlb_mode mode)
{
	struct ptk_ctx *ctx = mode_ctx(mode);
	struct ptk_as *as;
	assert_int_equal(ptk_as_create(ctx, 0, &as), 0);
	uint64_t kva = 0;
	assert_int_equal(ptk_kmap_anon(ctx, &kva, 4096, RW, 0), 0);
	struct remote r;
	pthread_t t;
	start_holder(&r, &t, ctx, as, kva);
	double t0 = now();
	assert_int_equal(ptk_kunmap(ctx, kva, 4096), 0);
	double el = now() - t0;
	assert_true(el > 0.1);                   /* waited for the holder */
	assert_int_equal(r.done, 2);             /* which read before the free */
	assert_int_equal(r.seen, 0x5eed);
	struct ptk_pool_stats ps;
	ptk_pool_stats(ctx, &ps);
	assert_int_equal(ps.in_use[PTK_FRAME_DATA], 0);
	r.phase = 2;
	pthread_join(t, NULL);
	assert_int_equal(r.rc_after, -EFAULT);   /* gone from its TLB too */
	ptk_as_destroy(as);     /* kernel tables stay until the context goes (I1) */
	ptk_ctx_destroy(ctx);
}

static void tlb_hold_kernel_sync(void **s) { (void)s; remote_hold_kernel(PTK_TLB_SYNC); }
static void tlb_hold_kernel_lazy(void **s) { (void)s; remote_hold_kernel(PTK_TLB_LAZY); }

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(tlb_local_sync),
		cmocka_unit_test(tlb_local_lazy),
		cmocka_unit_test(tlb_idle_sync),
		cmocka_unit_test(tlb_idle_lazy),
		cmocka_unit_test(tlb_hold_sync),
		cmocka_unit_test(tlb_hold_lazy),
		cmocka_unit_test(tlb_hold_kernel_sync),
		cmocka_unit_test(tlb_hold_kernel_lazy),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
