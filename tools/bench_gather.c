/*
 * bench_gather.c - scenarios "gather-unmap" and "gather-latency": the
 * on-stack, preemptible gather ("stack") beside the old per-CPU gather with
 * the region lock held over the whole teardown ("legacy"), same workload,
 * same repetition.
 *
 * gather-unmap: unmap --size (default 1 GiB; --quick 64 MiB) of populated
 *   4 KiB pages.  Metrics: unmap time (ms), invalidation operations (gather
 *   flushes that invalidated), batch page allocations.
 * gather-latency: one thread unmaps --size (default 1 GiB; the issue's
 *   figure is --size 4G; --quick 64 MiB) while another thread of the same
 *   address space faults, translates and drops pages in its own region;
 *   latency of each of its operations that overlapped the unmap: p50, p99,
 *   max (us).  The two threads are pinned to different CPUs (when there
 *   are two).  A faulter blocked throughout completes few operations: then
 *   p99 is the blocked time ("ops-during-unmap" says how many).
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "ptkit/ptkit.h"

static const char *design_name(enum ptk_gather_mode m)
{
	return m == PTK_GATHER_LEGACY ? "legacy" : "stack";
}

static int setup(enum ptk_gather_mode m, uint64_t pool, struct ptk_ctx **ctx,
		 struct ptk_as **as)
{
	struct ptk_ctx_config cfg;
	ptk_ctx_config_default(&cfg);
	cfg.pool_bytes = pool;
	cfg.gather_mode = m;
	int rc = ptk_ctx_create(&cfg, ctx);
	if (rc)
		return rc;
	rc = ptk_as_create(*ctx, 4, as);
	if (rc)
		ptk_ctx_destroy(*ctx);
	return rc;
}

static int run_unmap(const struct bench_params *p)
{
	uint64_t size = p->size ? p->size : (p->quick ? 64u << 20 : UINT64_C(1) << 30);
	char params[64];
	snprintf(params, sizeof(params), "size=%lluM", (unsigned long long)(size >> 20));
	for (int d = 0; d < 2; d++) {
		/* Alternate the order between repetitions. */
		enum ptk_gather_mode m = (d ^ (int)(p->rep & 1)) ? PTK_GATHER_LEGACY : PTK_GATHER_STACK;
		struct ptk_ctx *ctx;
		struct ptk_as *as;
		int rc = setup(m, size + (64u << 20), &ctx, &as);
		if (rc)
			return rc;
		uint64_t va = 0;
		bench_progress("%s: populating %llu MiB", design_name(m),
			       (unsigned long long)(size >> 20));
		rc = ptk_map_anon(as, &va, size, PTK_PROT_READ | PTK_PROT_WRITE, PTK_MAP_POPULATE);
		if (rc) {
			fprintf(stderr, "gather-unmap: map %d\n", rc);
			ptk_as_destroy(as);
			ptk_ctx_destroy(ctx);
			return rc;
		}
		struct ptk_as_stats s0, s1;
		ptk_as_stats(as, &s0);
		double t0 = bench_now();
		ptk_unmap(as, va, size);
		double ms = (bench_now() - t0) * 1e3;
		ptk_as_stats(as, &s1);
		bench_sample("gather-unmap", design_name(m), params, "unmap", "ms", ms);
		bench_sample("gather-unmap", design_name(m), params, "invalidations", "ops",
			     (double)(s1.tlb_flushes - s0.tlb_flushes));
		bench_sample("gather-unmap", design_name(m), params, "batch-allocs", "pages",
			     (double)(s1.gather_batches - s0.gather_batches));
		ptk_as_destroy(as);
		ptk_ctx_destroy(ctx);
	}
	bench_compare("gather-unmap", "unmap", params, "stack", "legacy", "lower");
	bench_compare("gather-unmap", "invalidations", params, "stack", "legacy", "lower");
	return 0;
}

/* ---- latency while a large unmap runs --------------------------------- */

#define LAT_PAGES 1024u

struct lat {
	struct ptk_as *as;
	uint64_t va;
	_Atomic int stop, ready;
	double *t, *d;            /* start time and duration of each op */
	size_t n, cap;
	int rc;
};

static void lat_record(struct lat *l, double t, double d)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 1u << 16;
		l->t = realloc(l->t, l->cap * sizeof(double));
		l->d = realloc(l->d, l->cap * sizeof(double));
	}
	l->t[l->n] = t;
	l->d[l->n++] = d;
}

/* Best effort: the two threads on different CPUs, so that the unmapper's
 * unlock does not hand its own CPU to the woken faulter (which would
 * delay the unmap's end time and count post-unmap operations in). */
static void pin_to(unsigned cpu)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 2)
		return;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu % (unsigned)n, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static void unpin(void)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	for (long i = 0; i < n && i < CPU_SETSIZE; i++)
		CPU_SET(i, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static void *lat_main(void *arg)
{
	struct lat *l = arg;
	pin_to(1);
	ptk_thread_register();
	unsigned i = 0;
	while (!l->stop) {
		uint64_t a = l->va + ((uint64_t)i << 12);
		double t0 = bench_now();
		struct ptk_xlate x;
		int rc = ptk_fault(l->as, a, PTK_ACCESS_WRITE);
		if (!rc)
			rc = ptk_translate(l->as, a, &x);
		if (!rc && ++i == LAT_PAGES) {
			rc = ptk_drop(l->as, l->va, (uint64_t)LAT_PAGES << 12);
			i = 0;
		}
		lat_record(l, t0, bench_now() - t0);
		if (rc) {
			l->rc = rc;
			break;
		}
		l->ready = 1;
	}
	ptk_thread_unregister();
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int run_latency(const struct bench_params *p)
{
	uint64_t size = p->size ? p->size : (p->quick ? 64u << 20 : UINT64_C(1) << 30);
	char params[64];
	snprintf(params, sizeof(params), "size=%lluM", (unsigned long long)(size >> 20));
	for (int d = 0; d < 2; d++) {
		enum ptk_gather_mode m = (d ^ (int)(p->rep & 1)) ? PTK_GATHER_LEGACY : PTK_GATHER_STACK;
		struct ptk_ctx *ctx;
		struct ptk_as *as;
		int rc = setup(m, size + (64u << 20), &ctx, &as);
		if (rc)
			return rc;
		uint64_t va = 0, lva = 0;
		bench_progress("%s: populating %llu MiB", design_name(m),
			       (unsigned long long)(size >> 20));
		rc = ptk_map_anon(as, &va, size, PTK_PROT_READ | PTK_PROT_WRITE, PTK_MAP_POPULATE);
		if (!rc)
			rc = ptk_map_anon(as, &lva, (uint64_t)LAT_PAGES << 12,
					  PTK_PROT_READ | PTK_PROT_WRITE, 0);
		if (rc) {
			fprintf(stderr, "gather-latency: map %d\n", rc);
			ptk_as_destroy(as);
			ptk_ctx_destroy(ctx);
			return rc;
		}
		struct lat l = { .as = as, .va = lva };
		pin_to(0);
		pthread_t t;
		pthread_create(&t, NULL, lat_main, &l);
		while (!l.ready)
			;
		double t0 = bench_now();
		ptk_unmap(as, va, size);
		double t1 = bench_now();
		l.stop = 1;
		pthread_join(t, NULL);
		unpin();
		/* The operations that overlapped the unmap. */
		double *v = malloc((l.n + 1) * sizeof(double));
		size_t n = 0;
		for (size_t i = 0; i < l.n; i++)
			if (l.t[i] < t1 && l.t[i] + l.d[i] > t0)
				v[n++] = l.d[i] * 1e6;
		if (!n)
			v[n++] = (t1 - t0) * 1e6;   /* blocked throughout */
		qsort(v, n, sizeof(double), cmp_double);
		const char *dn = design_name(m);
		bench_sample("gather-latency", dn, params, "p50", "us", v[n / 2]);
		bench_sample("gather-latency", dn, params, "p99", "us", v[(size_t)(n * 0.99)]);
		bench_sample("gather-latency", dn, params, "max", "us", v[n - 1]);
		bench_sample("gather-latency", dn, params, "ops-during-unmap", "ops", (double)n);
		bench_sample("gather-latency", dn, params, "unmap", "ms", (t1 - t0) * 1e3);
		free(v);
		free(l.t);
		free(l.d);
		ptk_as_destroy(as);
		ptk_ctx_destroy(ctx);
		if (l.rc) {
			fprintf(stderr, "gather-latency: fault thread error %d\n", l.rc);
			return l.rc;
		}
	}
	bench_compare("gather-latency", "p99", params, "stack", "legacy", "lower");
	bench_compare("gather-latency", "max", params, "stack", "legacy", "lower");
	bench_compare("gather-latency", "p50", params, "stack", "legacy", "lower");
	return 0;
}

const struct bench_scenario bench_gather_unmap = {
	"gather-unmap", "unmap of populated 4 KiB pages: on-stack vs legacy per-CPU gather",
	run_unmap,
};

const struct bench_scenario bench_gather_latency = {
	"gather-latency", "fault+translate latency while another thread unmaps: stack vs legacy",
	run_latency,
};
