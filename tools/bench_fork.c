/*
 * bench_fork.c - scenario "fork": fork+exit loops and copy-on-write faults.
 *
 * fork+exit: a parent with --size of touched anonymous memory (default
 * 8 MiB, --quick 1 MiB) is cloned once per thread, so every thread's
 * parent belongs to the same anonymous family; each thread then loops:
 * clone its parent, optionally write one page in the child (a COW copy),
 * destroy the child.  Every clone links into the family's rmap and every
 * destroy unlinks from it, so the family's rmap lock is contended by all
 * threads.  Thread counts: 1, --threads (default 2), and 4x the online
 * CPUs (oversubscribed: a lock holder can be preempted).  Both rmap-lock
 * designs run in the same repetition, one after the other, each in its
 * own context: "sleeping" (the default, rwlock) and "spin" (the old
 * design).  Also with a 64 KiB parent, where the clone copies little and
 * the family's lock is a larger share.  Metric: clones/s (total over
 * threads); ratio sleeping/spin.
 *
 * COW fault cost: write faults on every page of a clone of the parent
 * (each allocates, copies 4 KiB and replaces a write-protected entry)
 * against write faults on fresh anonymous memory of the same size (each
 * allocates and zeroes a frame), in one context: ns/fault and the ratio.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "bench.h"
#include "ptkit/ptkit.h"

#define BASE (UINT64_C(1) << 36)

struct fork_arg {
	struct ptk_as *parent;
	pthread_barrier_t *start;
	double secs;
	bool write;
	uint64_t clones;
	int rc;
};

static void *fork_worker(void *p)
{
	struct fork_arg *a = p;
	ptk_thread_register();
	pthread_barrier_wait(a->start);
	double t0 = bench_now();
	while (bench_now() - t0 < a->secs) {
		for (int i = 0; i < 4; i++) {
			struct ptk_as *c;
			int rc = ptk_as_clone(a->parent, &c);
			if (rc) {
				a->rc = rc;
				goto out;
			}
			if (a->write && (rc = ptk_fault(c, BASE, PTK_ACCESS_WRITE)))
				a->rc = rc;
			ptk_as_destroy(c);
			a->clones++;
		}
	}
out:
	ptk_thread_unregister();
	return NULL;
}

static struct ptk_as *make_parent(struct ptk_ctx *ctx, uint64_t size, int *rc)
{
	struct ptk_as *as;
	if ((*rc = ptk_as_create(ctx, 4, &as)))
		return NULL;
	uint64_t va = BASE;
	*rc = ptk_map_anon(as, &va, size, PTK_PROT_READ | PTK_PROT_WRITE,
			   PTK_MAP_FIXED | PTK_MAP_POPULATE);
	if (*rc) {
		ptk_as_destroy(as);
		return NULL;
	}
	return as;
}

/* One fork+exit measurement: @n threads, rmap design @d.  Clones/s. */
static int fork_loop(enum ptk_rmap_lock d, unsigned n, uint64_t size, double secs,
		     bool write, double *rate)
{
	struct ptk_ctx_config cfg;
	ptk_ctx_config_default(&cfg);
	cfg.rmap_lock = d;
	/* Parent pages, and per thread: its parent's and a child's tables. */
	cfg.pool_bytes = size + (uint64_t)n * (size / 256 + (4u << 20)) + (64u << 20);
	struct ptk_ctx *ctx;
	int rc = ptk_ctx_create(&cfg, &ctx);
	if (rc)
		return rc;
	struct ptk_as *root = make_parent(ctx, size, &rc);
	struct ptk_as **parents = calloc(n, sizeof(*parents));
	struct fork_arg *args = calloc(n, sizeof(*args));
	pthread_t *tid = calloc(n, sizeof(*tid));
	pthread_barrier_t start;
	pthread_barrier_init(&start, NULL, n);
	unsigned made = 0;
	for (; root && !rc && made < n; made++)
		rc = ptk_as_clone(root, &parents[made]);
	if (rc && made)
		made--;         /* the failed one left nothing */
	unsigned started = 0;
	for (; !rc && started < n; started++) {
		args[started] = (struct fork_arg){ .parent = parents[started], .start = &start,
						   .secs = secs, .write = write };
		pthread_create(&tid[started], NULL, fork_worker, &args[started]);
	}
	uint64_t clones = 0;
	for (unsigned i = 0; i < started; i++) {
		pthread_join(tid[i], NULL);
		clones += args[i].clones;
		if (args[i].rc && !rc)
			rc = args[i].rc;
	}
	*rate = (double)clones / secs;
	for (unsigned i = 0; i < made; i++)
		ptk_as_destroy(parents[i]);
	ptk_as_destroy(root);
	pthread_barrier_destroy(&start);
	free(parents);
	free(args);
	free(tid);
	ptk_ctx_destroy(ctx);
	return rc;
}

/* Write faults on every page of @size: COW copies in a clone, or fresh
 * anonymous pages.  ns per fault. */
static int cow_cost(uint64_t size, double *cow_ns, double *anon_ns)
{
	struct ptk_ctx_config cfg;
	ptk_ctx_config_default(&cfg);
	cfg.pool_bytes = 3 * size + (64u << 20);
	struct ptk_ctx *ctx;
	int rc = ptk_ctx_create(&cfg, &ctx);
	if (rc)
		return rc;
	struct ptk_as *p = make_parent(ctx, size, &rc), *c = NULL, *fresh = NULL;
	if (!rc)
		rc = ptk_as_clone(p, &c);
	if (!rc)
		rc = ptk_as_create(ctx, 4, &fresh);
	uint64_t va = BASE;
	if (!rc)
		rc = ptk_map_anon(fresh, &va, 2 * size, PTK_PROT_READ | PTK_PROT_WRITE,
				  PTK_MAP_FIXED);
	double pages = (double)(size / PTK_PAGE_SIZE);
	/* Warm frames for both measurements first (host memory committed):
	 * neither pays the host's first-touch faults. */
	for (uint64_t off = 0; off < 2 * size && !rc; off += PTK_PAGE_SIZE)
		rc = ptk_fault(fresh, BASE + off, PTK_ACCESS_WRITE);
	if (!rc)
		rc = ptk_drop(fresh, BASE, 2 * size);
	if (!rc) {
		double t0 = bench_now();
		for (uint64_t off = 0; off < size && !rc; off += PTK_PAGE_SIZE)
			rc = ptk_fault(c, BASE + off, PTK_ACCESS_WRITE);
		*cow_ns = (bench_now() - t0) * 1e9 / pages;
	}
	if (!rc) {
		double t0 = bench_now();
		for (uint64_t off = 0; off < size && !rc; off += PTK_PAGE_SIZE)
			rc = ptk_fault(fresh, BASE + off, PTK_ACCESS_WRITE);
		*anon_ns = (bench_now() - t0) * 1e9 / pages;
	}
	ptk_as_destroy(fresh);
	ptk_as_destroy(c);
	ptk_as_destroy(p);
	ptk_ctx_destroy(ctx);
	return rc;
}

static int run_fork(const struct bench_params *p)
{
	uint64_t size = p->size ? p->size : (p->quick ? 1u << 20 : 8u << 20);
	size = (size + PTK_PAGE_SIZE - 1) & ~(uint64_t)(PTK_PAGE_SIZE - 1);
	double secs = p->seconds ? p->seconds : (p->quick ? 0.04 : 0.2);
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned over = 4 * (unsigned)(cpus > 0 ? cpus : 1);
	unsigned counts[3] = { 1, p->threads ? p->threads : 2, over };
	/* A small parent too: the less a clone copies, the larger the share
	 * of the family's rmap lock (link at clone, unlink at exit). */
	uint64_t sizes[2] = { 64u << 10, size };
	static const char *names[2] = { "sleeping", "spin" };
	for (unsigned si = 0; si < 2; si++)
	for (unsigned ci = 0; ci < 3; ci++)
	for (int w = 1; w >= 0; w--) {
		unsigned n = counts[ci];
		if ((ci > 0 && n == counts[ci - 1]) || (si == 0 && size <= sizes[0]))
			continue;
		if (!w && (ci > 0 || si == 0))
			continue;       /* child_write=no: one point, for reference */
		char params[96];
		snprintf(params, sizeof(params), "threads=%u,size=%lluK,child_write=%s", n,
			 (unsigned long long)(sizes[si] >> 10), w ? "yes" : "no");
		bench_progress("fork: %s", params);
		/* Both designs in the same repetition; the order alternates
		 * between repetitions. */
		for (int k = 0; k < 2; k++) {
			int d = (k + (int)p->rep) & 1;
			double rate = 0;
			int rc = fork_loop(d ? PTK_RMAP_SPIN : PTK_RMAP_SLEEPING, n, sizes[si],
					   secs, w, &rate);
			if (rc) {
				fprintf(stderr, "fork: %s %s: error %d\n", names[d], params, rc);
				return rc;
			}
			bench_sample("fork", names[d], params, "clones/s", "1/s", rate);
		}
		bench_compare("fork", "clones/s", params, "sleeping", "spin", "higher");
	}
	double cow = 0, anon = 0;
	int rc = cow_cost(size, &cow, &anon);
	if (rc) {
		fprintf(stderr, "fork: COW fault cost: error %d\n", rc);
		return rc;
	}
	char params[64];
	snprintf(params, sizeof(params), "size=%lluM", (unsigned long long)(size >> 20));
	bench_sample("fork", "cow-fault", params, "write fault", "ns", cow);
	bench_sample("fork", "anon-fault", params, "write fault", "ns", anon);
	bench_compare("fork", "write fault", params, "cow-fault", "anon-fault", "lower");
	return 0;
}

const struct bench_scenario bench_fork = {
	"fork", "fork+exit loops on one anonymous family (sleeping vs spin rmap locks, "
	"oversubscribed), COW fault cost",
	run_fork,
};
