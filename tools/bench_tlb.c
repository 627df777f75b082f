/*
 * bench_tlb.c - scenarios "tlb-hit" and "tlb-shootdown".
 *
 * tlb-hit: a CPU translates addresses of 64 resident pages (all hits after
 *   the first round) through its software TLB ("tlb"), beside the raw
 *   lockless walk of the same addresses inside one read-side section
 *   ("walk"): ns per translation.
 * tlb-shootdown: 1, 2 and 4 CPUs (up to --threads) switched to one address
 *   space translate in a loop; the main thread maps and populates one page
 *   and times its unmap, which must invalidate every CPU's TLB: "sync"
 *   (shootdown, waits for every acknowledgement) beside "lazy" (generation
 *   bump, pages freed once every CPU passed it).  Median unmap latency (us)
 *   over --seconds (default 0.5 s per point; --quick 0.1 s).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"
#include "ptkit/ptkit.h"

#define HIT_PAGES 64u

static int run_hit(const struct bench_params *p)
{
	uint64_t iters = p->quick ? 2000000u : 20000000u;
	struct ptk_ctx *ctx;
	struct ptk_as *as;
	int rc = ptk_ctx_create(NULL, &ctx);
	if (rc)
		return rc;
	if ((rc = ptk_as_create(ctx, 4, &as))) {
		ptk_ctx_destroy(ctx);
		return rc;
	}
	uint64_t va = 0;
	rc = ptk_map_anon(as, &va, HIT_PAGES << 12, PTK_PROT_READ | PTK_PROT_WRITE, PTK_MAP_POPULATE);
	struct ptk_cpu *cpu = NULL;
	if (!rc)
		rc = ptk_cpu_register(ctx, &cpu);
	if (rc) {
		ptk_as_destroy(as);
		ptk_ctx_destroy(ctx);
		return rc;
	}
	ptk_cpu_switch(cpu, as);
	uint64_t sum = 0;
	struct ptk_xlate x;
	for (int round = 0; round < 2; round++) {
		/* Software TLB. */
		double t0 = bench_now();
		for (uint64_t i = 0; i < iters; i++) {
			if (ptk_tlb_translate(cpu, va + ((i * 7) % HIT_PAGES << 12) + (i & 63),
					      PTK_ACCESS_READ, &x) == 0)
				sum += x.pfn;
		}
		double tlb_ns = (bench_now() - t0) * 1e9 / (double)iters;
		/* Raw walk, one section. */
		ptk_rcu_read_lock();
		t0 = bench_now();
		for (uint64_t i = 0; i < iters; i++) {
			if (ptk_walk(as, va + ((i * 7) % HIT_PAGES << 12) + (i & 63), &x) == 0)
				sum += x.pfn;
		}
		double walk_ns = (bench_now() - t0) * 1e9 / (double)iters;
		ptk_rcu_read_unlock();
		if (round == 1) {
			bench_sample("tlb-hit", "tlb", "pages=64", "translate", "ns", tlb_ns);
			bench_sample("tlb-hit", "walk", "pages=64", "translate", "ns", walk_ns);
		}
	}
	struct ptk_cpu_stats st;
	ptk_cpu_stats(cpu, &st);
	if (st.misses != HIT_PAGES || sum == 0)
		fprintf(stderr, "tlb-hit: %llu misses (expected %u)\n",
			(unsigned long long)st.misses, HIT_PAGES);
	bench_compare("tlb-hit", "translate", "pages=64", "tlb", "walk", "lower");
	ptk_cpu_unregister(cpu);
	ptk_as_destroy(as);
	ptk_ctx_destroy(ctx);
	return 0;
}

/* ---- shootdown cost ------------------------------------------------------ */

struct spinner {
	struct ptk_ctx *ctx;
	struct ptk_as *as;
	uint64_t va;
	_Atomic int *stop;
	_Atomic int ready;
	uint64_t n;
};

static void *spinner_main(void *arg)
{
	struct spinner *s = arg;
	struct ptk_cpu *cpu;
	if (ptk_cpu_register(s->ctx, &cpu))
		return NULL;
	ptk_cpu_switch(cpu, s->as);
	s->ready = 1;
	struct ptk_xlate x;
	uint64_t sum = 0;
	while (!*s->stop) {
		for (unsigned i = 0; i < 256; i++)
			if (ptk_tlb_translate(cpu, s->va + ((uint64_t)(i % HIT_PAGES) << 12),
					      PTK_ACCESS_READ, &x) == 0)
				sum += x.pfn;
		s->n += 256;
	}
	s->n += sum & 1;
	ptk_cpu_unregister(cpu);
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int run_shootdown(const struct bench_params *p)
{
	unsigned maxc = p->threads ? p->threads : 4;
	double secs = p->seconds ? p->seconds : (p->quick ? 0.1 : 0.5);
	for (unsigned ncpu = 1; ncpu <= maxc; ncpu *= 2) {
		char params[32];
		snprintf(params, sizeof(params), "cpus=%u", ncpu);
		for (int d = 0; d < 2; d++) {
			enum ptk_tlb_mode m = (d ^ (int)(p->rep & 1)) ? PTK_TLB_LAZY : PTK_TLB_SYNC;
			const char *dn = m == PTK_TLB_LAZY ? "lazy" : "sync";
			struct ptk_ctx_config cfg;
			ptk_ctx_config_default(&cfg);
			cfg.pool_bytes = 64u << 20;
			cfg.tlb_mode = m;
			struct ptk_ctx *ctx;
			struct ptk_as *as;
			int rc = ptk_ctx_create(&cfg, &ctx);
			if (rc)
				return rc;
			if ((rc = ptk_as_create(ctx, 4, &as))) {
				ptk_ctx_destroy(ctx);
				return rc;
			}
			uint64_t ws = 0, one = UINT64_C(1) << 34;
			rc = ptk_map_anon(as, &ws, HIT_PAGES << 12, PTK_PROT_READ | PTK_PROT_WRITE,
					  PTK_MAP_POPULATE);
			if (rc) {
				ptk_as_destroy(as);
				ptk_ctx_destroy(ctx);
				return rc;
			}
			_Atomic int stop = 0;
			struct spinner *sp = calloc(ncpu, sizeof(*sp));
			pthread_t *tid = calloc(ncpu, sizeof(*tid));
			for (unsigned i = 0; i < ncpu; i++) {
				sp[i] = (struct spinner){ .ctx = ctx, .as = as, .va = ws, .stop = &stop };
				pthread_create(&tid[i], NULL, spinner_main, &sp[i]);
			}
			for (unsigned i = 0; i < ncpu; i++)
				while (!sp[i].ready)
					;
			size_t cap = 1u << 16, n = 0;
			double *v = malloc(cap * sizeof(double));
			double end = bench_now() + secs;
			while (bench_now() < end && n < cap) {
				uint64_t va = one;
				rc = ptk_map_anon(as, &va, 4096, PTK_PROT_READ | PTK_PROT_WRITE,
						  PTK_MAP_FIXED | PTK_MAP_POPULATE);
				if (rc)
					break;
				double t0 = bench_now();
				ptk_unmap(as, va, 4096);
				v[n++] = (bench_now() - t0) * 1e6;
			}
			stop = 1;
			for (unsigned i = 0; i < ncpu; i++)
				pthread_join(tid[i], NULL);
			struct ptk_as_stats st;
			ptk_as_stats(as, &st);
			if (n) {
				qsort(v, n, sizeof(double), cmp_double);
				bench_sample("tlb-shootdown", dn, params, "unmap", "us", v[n / 2]);
				bench_sample("tlb-shootdown", dn, params, "unmap-p99", "us",
					     v[(size_t)(n * 0.99)]);
				bench_sample("tlb-shootdown", dn, params, "answered-for/unmap", "1",
					     (double)st.remote_answers / (double)n);
			}
			free(v);
			free(sp);
			free(tid);
			ptk_as_destroy(as);
			ptk_ctx_destroy(ctx);
			if (rc) {
				fprintf(stderr, "tlb-shootdown: map %d\n", rc);
				return rc;
			}
		}
		bench_compare("tlb-shootdown", "unmap", params, "lazy", "sync", "lower");
	}
	return 0;
}

const struct bench_scenario bench_tlb_hit = {
	"tlb-hit", "software TLB hit vs raw lockless walk, ns per translation", run_hit,
};

const struct bench_scenario bench_tlb_shootdown = {
	"tlb-shootdown", "unmap of a page with 1..4 CPUs caching the space: sync vs lazy",
	run_shootdown,
};
