/*
 * bench_kernel.c - the kernel half and address-space create/destroy, old
 * design beside the new ones (ptkit/kernel.h).
 *
 * Scenario "as-create": create + activate + one kernel translation +
 * destroy, in a loop, on 1, 2, 4, 8, 16 threads (up to --threads), while
 * one background thread extends the kernel half (a kmap/kunmap every
 * 200 us, a new top-level entry every 20th).  Per design: legacy (global
 * list + global lock), eager (per-CPU RCU registry), lazy (generation at
 * activation).  Metric: create+destroy per second, the ratios eager/legacy
 * and lazy/legacy.  One context per design for the whole repetition; the
 * designs alternate in 3 slices per thread count (1 with --quick).  Then, in a context with shared-write counting enabled
 * (same code, counters on: kernel.h), writes to shared cache lines per
 * create+destroy by category (global, pool, cpu, remote-cpu, rcu).
 *
 * Scenario "kernel-extend": with 10, 1,000 and 10,000 live address spaces
 * (or --size as the largest count), the cost of one kernel-half extension
 * that adds a top-level entry (legacy: list walk under the global lock;
 * eager: registry walk under RCU; lazy: a generation bump), of one that adds
 * nothing at the top level (O(1) in every design: the generation is
 * unchanged), and, for lazy, what the deferred work costs later: one
 * activation that catches up, per address space.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "ptkit/ptkit.h"

#define KBASE UINT64_C(0xffff800000000000)
#define SLOT  (UINT64_C(1) << 39)

static const char *const dname[] = {
	[PTK_KSYNC_EAGER] = "eager", [PTK_KSYNC_LAZY] = "lazy", [PTK_KSYNC_LEGACY] = "legacy",
};
static const enum ptk_kernel_sync order[] = { PTK_KSYNC_LEGACY, PTK_KSYNC_EAGER,
					      PTK_KSYNC_LAZY };

static int make_ctx(enum ptk_kernel_sync d, uint64_t pool, struct ptk_ctx **ctx)
{
	struct ptk_ctx_config cfg;
	ptk_ctx_config_default(&cfg);
	cfg.pool_bytes = pool;
	cfg.kernel_sync = d;
	return ptk_ctx_create(&cfg, ctx);
}

/* ---- as-create ----------------------------------------------------------- */

struct cd_arg {
	struct ptk_ctx *ctx;
	uint64_t kva;               /* a kernel address every space must translate */
	pthread_barrier_t *start;
	_Atomic int *stop;
	uint64_t ops, enomem;
	uint64_t writes[PTK_CW_NR];
	uint64_t max_ops;           /* counting pass: fixed number of ops */
	int rc;
};

static void *cd_worker(void *p)
{
	struct cd_arg *a = p;
	ptk_thread_register();
	pthread_barrier_wait(a->start);
	uint64_t dummy[PTK_CW_NR];
	ptk_count_writes_read(dummy, true);
	while (!*a->stop && (!a->max_ops || a->ops < a->max_ops)) {
		struct ptk_as *as;
		int rc = ptk_as_create(a->ctx, 0, &as);
		if (rc == -ENOMEM) {
			/* Roots wait for their grace period: let RCU catch up. */
			a->enomem++;
			ptk_ctx_quiesce(a->ctx);
			continue;
		}
		if (rc) {
			a->rc = rc;
			break;
		}
		ptk_as_activate(as);
		struct ptk_xlate x;
		if (ptk_translate(as, a->kva, &x)) {
			fprintf(stderr, "as-create: kernel range not translated\n");
			a->rc = -EFAULT;
		}
		ptk_as_destroy(as);
		a->ops++;
	}
	ptk_count_writes_read(a->writes, true);
	ptk_thread_unregister();
	return NULL;
}

struct ext_arg {
	struct ptk_ctx *ctx;
	unsigned *top;              /* next new top-level slot of this context */
	_Atomic int *stop;
	uint64_t exts;
	int rc;
};

static void *extender(void *p)
{
	struct ext_arg *a = p;
	for (uint64_t n = 0; !*a->stop; n++) {
		/* Every 20th extension opens a new top-level slot (250 at most
		 * per context: they are never cleared). */
		uint64_t va = n % 20 == 0 && *a->top < 250 ? KBASE + (*a->top)++ * SLOT : KBASE;
		va += (n % 512) * 4096 + (UINT64_C(1) << 30);
		int rc = ptk_kmap_special(a->ctx, &va, 4096, n, PTK_PROT_READ, PTK_MAP_NOREPLACE);
		if (rc) {
			a->rc = rc;
			break;
		}
		ptk_kunmap(a->ctx, va, 4096);
		a->exts++;
		struct timespec ts = { 0, 200000 };
		nanosleep(&ts, NULL);
	}
	ptk_thread_unregister();
	return NULL;
}

/* A context for one design, with one kernel mapping every space must
 * translate at *kva. */
struct cd_ctx {
	struct ptk_ctx *ctx;
	uint64_t kva;
	unsigned top;
};

static int cd_ctx_make(enum ptk_kernel_sync d, struct cd_ctx *c)
{
	c->kva = 0;
	c->top = 1;
	int rc = make_ctx(d, UINT64_C(512) << 20, &c->ctx);
	if (rc)
		return rc;
	rc = ptk_kmap_special(c->ctx, &c->kva, 4096, 7, PTK_PROT_READ, 0);
	if (rc)
		ptk_ctx_destroy(c->ctx);
	return rc;
}

static void cd_ctx_free(struct cd_ctx *c)
{
	ptk_kunmap(c->ctx, c->kva, 4096);
	ptk_ctx_destroy(c->ctx);
}

/* One timed run: @n threads for @secs (or @max_ops each when counting).
 * Returns ops/s, or a negative errno. */
static double cd_run(enum ptk_kernel_sync d, struct cd_ctx *c, unsigned n, double secs,
		     uint64_t max_ops, bool count, uint64_t writes[PTK_CW_NR], uint64_t *ops_out)
{
	struct ptk_ctx *ctx = c->ctx;
	uint64_t kva = c->kva;
	int rc;
	if (count && (rc = ptk_count_writes_enable(ctx, true)))
		return rc;
	_Atomic int stop = 0, estop = 0;
	pthread_barrier_t start;
	pthread_barrier_init(&start, NULL, n + 1);
	struct cd_arg *args = calloc(n, sizeof(*args));
	pthread_t *tid = calloc(n + 1, sizeof(*tid));
	struct ext_arg ea = { ctx, &c->top, &estop, 0, 0 };
	pthread_create(&tid[n], NULL, extender, &ea);
	for (unsigned i = 0; i < n; i++) {
		args[i] = (struct cd_arg){ .ctx = ctx, .kva = kva, .start = &start, .stop = &stop,
					   .max_ops = max_ops };
		pthread_create(&tid[i], NULL, cd_worker, &args[i]);
	}
	pthread_barrier_wait(&start);
	double t0 = bench_now();
	if (!max_ops) {
		struct timespec ts = { (time_t)secs, (long)((secs - (time_t)secs) * 1e9) };
		nanosleep(&ts, NULL);
		stop = 1;
	}
	uint64_t ops = 0, enomem = 0;
	for (unsigned i = 0; i < n; i++) {
		pthread_join(tid[i], NULL);
		ops += args[i].ops;
		enomem += args[i].enomem;
		if (args[i].rc)
			rc = args[i].rc;
		for (unsigned c = 0; writes && c < PTK_CW_NR; c++)
			writes[c] += args[i].writes[c];
	}
	double el = bench_now() - t0;
	estop = 1;
	pthread_join(tid[n], NULL);
	if (ea.rc)
		rc = ea.rc;
	pthread_barrier_destroy(&start);
	free(args);
	free(tid);
	ptk_count_writes_enable(ctx, false);
	/* Let the roots of this run go back before the next one. */
	ptk_ctx_quiesce(ctx);
	if (ops_out)
		*ops_out = ops;
	if (enomem)
		fprintf(stderr, "as-create: %s, %u threads: %llu waits for RCU (pool full)\n",
			dname[d], n, (unsigned long long)enomem);
	return rc ? rc : ops / el;
}

static int run_as_create(const struct bench_params *p)
{
	const char *sc = "as-create";
	unsigned max_threads = p->threads ? p->threads : 16;
	double secs = p->seconds ? p->seconds : (p->quick ? 0.025 : 0.15);
	/* Each design runs in 3 slices per repetition, the designs alternating
	 * (L E Z E Z L Z L E), so drift in the machine's load (shared, noisy)
	 * hits all three alike; every slice is one sample. */
	unsigned rounds = p->quick ? 1 : 3;
	struct cd_ctx cc[3];
	for (unsigned i = 0; i < 3; i++) {
		int rc = cd_ctx_make((enum ptk_kernel_sync)i, &cc[i]);
		if (rc) {
			while (i--)
				cd_ctx_free(&cc[i]);
			return rc;
		}
	}
	int rc = 0;
	for (unsigned n = 1; n <= max_threads && !rc; n *= 2) {
		char params[64];
		snprintf(params, sizeof(params), "threads=%u", n);
		for (unsigned r = 0; r < rounds; r++)
			for (unsigned i = 0; i < 3; i++) {
				enum ptk_kernel_sync d = order[(i + r + p->rep) % 3];
				bench_progress("%s threads=%u", dname[d], n);
				double v = cd_run(d, &cc[d], n, secs / rounds, 0, false, NULL, NULL);
				if (v < 0) {
					fprintf(stderr, "%s: %s, %u threads: error %d\n", sc, dname[d],
						n, (int)v);
					rc = (int)v;
					break;
				}
				bench_sample(sc, dname[d], params, "create+destroy/s", "1/s", v);
			}
		bench_compare(sc, "create+destroy/s", params, "eager", "legacy", "higher");
		bench_compare(sc, "create+destroy/s", params, "lazy", "legacy", "higher");
	}
	/* Shared writes per create+destroy, counting enabled (4 threads). */
	static const char *const cat[PTK_CW_NR] = {
		[PTK_CW_GLOBAL] = "global writes/op", [PTK_CW_POOL] = "pool writes/op",
		[PTK_CW_CPU] = "cpu writes/op", [PTK_CW_REMOTE] = "remote-cpu writes/op",
		[PTK_CW_RCU] = "shared rcu-queue writes/op",
	};
	for (unsigned i = 0; i < 3; i++)
		cd_ctx_free(&cc[i]);
	if (rc)
		return rc;
	unsigned cn = max_threads < 4 ? max_threads : 4;
	char params[64];
	snprintf(params, sizeof(params), "threads=%u,counting=1", cn);
	for (unsigned i = 0; i < 3; i++) {
		enum ptk_kernel_sync d = order[i];
		uint64_t w[PTK_CW_NR] = { 0 }, ops = 0;
		struct cd_ctx c;
		if ((rc = cd_ctx_make(d, &c)))
			return rc;
		double r = cd_run(d, &c, cn, 0, p->quick ? 300 : 3000, true, w, &ops);
		cd_ctx_free(&c);
		if (r == -EOPNOTSUPP) {
			fprintf(stderr, "%s: built without -Dcount_shared_writes: no write counts\n", sc);
			return 0;
		}
		if (r < 0)
			return (int)r;
		for (unsigned c = 0; c < PTK_CW_NR; c++)
			bench_sample(sc, dname[d], params, cat[c], "writes", (double)w[c] / ops);
	}
	bench_compare(sc, "global writes/op", params, "eager", "legacy", "lower");
	bench_compare(sc, "global writes/op", params, "lazy", "legacy", "lower");
	return 0;
}

/* ---- kernel-extend ------------------------------------------------------- */

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static int extend_one(enum ptk_kernel_sync d, unsigned nspaces, unsigned reps,
		      const char *params)
{
	const char *sc = "kernel-extend";
	struct ptk_ctx *ctx;
	uint64_t pool = ((uint64_t)nspaces + 4096) * 4096 * 2;
	int rc = make_ctx(d, pool, &ctx);
	if (rc)
		return rc;
	struct ptk_as **as = calloc(nspaces, sizeof(*as));
	for (unsigned i = 0; i < nspaces && !rc; i++)
		rc = ptk_as_create(ctx, 0, &as[i]);
	/* Warm the pool: frames touched once, so the tables the extensions
	 * allocate cost the same in every design (no first-touch page fault
	 * of the host in the timed part). */
	uint64_t wva = 0;
	if (!rc && !(rc = ptk_kmap_anon(ctx, &wva, UINT64_C(4) << 20, PTK_PROT_READ, 0)))
		rc = ptk_kunmap(ctx, wva, UINT64_C(4) << 20);
	ptk_ctx_quiesce(ctx);
	double *tn = calloc(reps, sizeof(double)), *t0 = calloc(reps, sizeof(double));
	for (unsigned r = 0; r < reps && !rc; r++) {
		/* A new top-level entry: propagated (legacy, eager) or not (lazy). */
		uint64_t va = KBASE + (1 + r) * SLOT;
		double t = bench_now();
		rc = ptk_kmap_special(ctx, &va, 4096, r, PTK_PROT_READ, PTK_MAP_NOREPLACE);
		tn[r] = (bench_now() - t) * 1e6;
		/* Nothing new at the top level: the generation check, O(1). */
		va += 4096;
		t = bench_now();
		if (!rc)
			rc = ptk_kmap_special(ctx, &va, 4096, r, PTK_PROT_READ, PTK_MAP_NOREPLACE);
		t0[r] = (bench_now() - t) * 1e6;
	}
	if (!rc) {
		qsort(tn, reps, sizeof(double), cmp_d);
		qsort(t0, reps, sizeof(double), cmp_d);
		bench_sample(sc, dname[d], params, "extend, new top-level entry", "us", tn[reps / 2]);
		bench_sample(sc, dname[d], params, "extend, nothing new at the top", "us",
			     t0[reps / 2]);
		/* The deferred part: every space catches up at its next
		 * activation (lazy); nothing to do in the others. */
		double t = bench_now();
		for (unsigned i = 0; i < nspaces; i++)
			ptk_as_activate(as[i]);
		bench_sample(sc, dname[d], params, "activate after the extensions, per space", "us",
			     (bench_now() - t) * 1e6 / nspaces);
		for (unsigned i = 0; i < nspaces; i++)
			if (ptk_as_kernel_missing(as[i])) {
				fprintf(stderr, "%s: %s: a space misses kernel entries\n", sc, dname[d]);
				rc = -EFAULT;
				break;
			}
	}
	for (unsigned i = 0; i < nspaces; i++)
		if (as[i])
			ptk_as_destroy(as[i]);
	free(as);
	free(tn);
	free(t0);
	ptk_ctx_destroy(ctx);
	return rc;
}

static int run_kernel_extend(const struct bench_params *p)
{
	const char *sc = "kernel-extend";
	/* --quick: a smoke run with 10, 100, 1,000; --size N: N as the largest. */
	unsigned counts[3] = { 10, p->quick ? 100 : 1000, p->quick ? 1000 : 10000 };
	if (p->size && p->size > counts[1] && p->size <= 100000)
		counts[2] = (unsigned)p->size;
	unsigned reps = p->quick ? 9 : 25;
	for (unsigned c = 0; c < 3; c++) {
		char params[64];
		snprintf(params, sizeof(params), "spaces=%u", counts[c]);
		for (unsigned i = 0; i < 3; i++) {
			enum ptk_kernel_sync d = order[(i + p->rep) % 3];
			bench_progress("%s spaces=%u", dname[d], counts[c]);
			int rc = extend_one(d, counts[c], reps, params);
			if (rc) {
				fprintf(stderr, "%s: %s, %u spaces: error %d\n", sc, dname[d],
					counts[c], rc);
				return rc;
			}
		}
		bench_compare(sc, "extend, new top-level entry", params, "eager", "legacy", "lower");
		bench_compare(sc, "extend, new top-level entry", params, "lazy", "legacy", "lower");
	}
	return 0;
}

const struct bench_scenario bench_as_create = {
	"as-create", "address-space create+destroy throughput and shared writes, legacy/eager/lazy",
	run_as_create,
};

const struct bench_scenario bench_kernel_extend = {
	"kernel-extend", "cost of a kernel-half extension with 10..10,000 live spaces, per design",
	run_kernel_extend,
};
