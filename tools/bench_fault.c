/*
 * bench_fault.c - scenario "fault-anon": demand faults on anonymous memory,
 * 1..N threads faulting disjoint parts of one address space.
 *
 * Metric: faults per second (each fault allocates and zeroes a frame,
 * allocates tables as needed and installs the entry), and the time to
 * unmap what was faulted.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"
#include "ptkit/ptkit.h"

static int run_fault(const struct bench_params *p)
{
	unsigned max_threads = p->threads ? p->threads : 4;
	uint64_t per_thread = p->size ? p->size : (p->quick ? 4u << 20 : 64u << 20);
	for (unsigned n = 1; n <= max_threads; n *= 2) {
		struct ptk_ctx_config cfg;
		ptk_ctx_config_default(&cfg);
		cfg.pool_bytes = per_thread * n + (64u << 20);
		struct ptk_ctx *ctx;
		struct ptk_as *as;
		int rc = ptk_ctx_create(&cfg, &ctx);
		if (rc)
			return rc;
		if ((rc = ptk_as_create(ctx, 4, &as))) {
			ptk_ctx_destroy(ctx);
			return rc;
		}
		uint64_t va = 0;
		rc = ptk_map_anon(as, &va, per_thread * n, PTK_PROT_READ | PTK_PROT_WRITE, 0);
		pthread_barrier_t start;
		pthread_barrier_init(&start, NULL, n);
		struct bench_fault_arg *args = calloc(n, sizeof(*args));
		pthread_t *tid = calloc(n, sizeof(*tid));
		for (unsigned i = 0; !rc && i < n; i++) {
			args[i] = (struct bench_fault_arg){ as, va + i * per_thread, per_thread, &start, 0, 0 };
			pthread_create(&tid[i], NULL, bench_fault_worker, &args[i]);
		}
		double slowest = 0;
		for (unsigned i = 0; !rc && i < n; i++) {
			pthread_join(tid[i], NULL);
			if (args[i].rc)
				rc = args[i].rc;
			if (args[i].secs > slowest)
				slowest = args[i].secs;
		}
		char params[64];
		snprintf(params, sizeof(params), "threads=%u,size=%lluM", n,
			 (unsigned long long)(per_thread * n >> 20));
		if (!rc) {
			double faults = (double)(per_thread * n / PTK_PAGE_SIZE);
			bench_sample("fault-anon", "ptkit", params, "faults/s", "1/s", faults / slowest);
			double t0 = bench_now();
			ptk_unmap(as, va, per_thread * n);
			bench_sample("fault-anon", "ptkit", params, "unmap", "ms",
				     (bench_now() - t0) * 1e3);
		}
		pthread_barrier_destroy(&start);
		free(args);
		free(tid);
		ptk_as_destroy(as);
		ptk_ctx_destroy(ctx);
		if (rc) {
			fprintf(stderr, "fault-anon: %d threads: error %d\n", n, rc);
			return rc;
		}
	}
	return 0;
}

const struct bench_scenario bench_fault_anon = {
	"fault-anon", "demand faults on anonymous memory, 1..N threads, one address space",
	run_fault,
};
