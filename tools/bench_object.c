/*
 * bench_object.c - scenario "objects": shared memory objects.
 *
 *   faults     demand faults on anonymous memory vs a shared object mapping
 *              (each fault allocates and zeroes a frame; the object's goes
 *              into its page cache), 1 thread and --threads threads, each
 *              thread its own range of one address space.  faults/s, and
 *              the ratio object/anon.
 *   map-loop   map an object shared, touch one page, unmap, in a loop, by
 *              4 threads per CPU (oversubscribed), each in its own address
 *              space: every map and unmap takes the object's rmap lock for
 *              writing.  cycles/s, sleeping vs spin rmap locks.
 *   truncate   truncate to zero an object mapped by 64 address spaces
 *              (16 with --quick) with every page faulted in each (the
 *              truncate zaps every mapping through a gather), then fault
 *              everything back (not timed).  ms per truncate, sleeping vs
 *              spin; alone, and against 4 threads per CPU running the
 *              map-loop on the same object (mappers=N).
 * The spin design (the old one) is measured only if the build offers it
 * (ptk_ctx_create() refuses it with -EOPNOTSUPP otherwise: the scenario
 * says so and measures the sleeping design alone).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "ptkit/ptkit.h"

#define SC "objects"
#define PG PTK_PAGE_SIZE
#define RW (PTK_PROT_READ | PTK_PROT_WRITE)

static const char *lock_name(enum ptk_rmap_lock d)
{
	return d == PTK_RMAP_SPIN ? "spin" : "sleeping";
}

static int make_ctx(enum ptk_rmap_lock d, uint64_t pool, struct ptk_ctx **ctx)
{
	struct ptk_ctx_config cfg;
	ptk_ctx_config_default(&cfg);
	cfg.pool_bytes = pool;
	cfg.rmap_lock = d;
	return ptk_ctx_create(&cfg, ctx);
}

/* Whether the spin design is built in (said once per run). */
static bool spin_available(void)
{
	struct ptk_ctx *ctx;
	int rc = make_ctx(PTK_RMAP_SPIN, 4u << 20, &ctx);
	if (rc == 0) {
		ptk_ctx_destroy(ctx);
		return true;
	}
	static bool said;
	if (!said) {
		fprintf(stderr, "objects: the spin rmap-lock design is not built in (%s): "
			"measuring the sleeping design alone\n",
			rc == -EOPNOTSUPP ? "-EOPNOTSUPP" : "error");
		said = true;
	}
	return false;
}

/* ---- (a) faults: anonymous vs shared object ----------------------------- */

/* One measurement: @n threads fault @per_thread bytes each, of anonymous
 * memory or of a shared object.  Faults per second (total / slowest). */
static int fault_once(bool object, unsigned n, uint64_t per_thread, double *rate)
{
	struct ptk_ctx *ctx;
	struct ptk_as *as;
	struct ptk_object *obj = NULL;
	uint64_t len = per_thread * n;
	int rc = make_ctx(PTK_RMAP_SLEEPING, len + (64u << 20), &ctx);
	if (rc)
		return rc;
	if ((rc = ptk_as_create(ctx, 4, &as))) {
		ptk_ctx_destroy(ctx);
		return rc;
	}
	uint64_t va = 0;
	if (object) {
		rc = ptk_object_create(ctx, len, 0, &obj);
		if (!rc)
			rc = ptk_map_object(as, &va, len, RW, PTK_MAP_SHARED, obj, 0);
	} else {
		rc = ptk_map_anon(as, &va, len, RW, 0);
	}
	pthread_barrier_t start;
	pthread_barrier_init(&start, NULL, n);
	struct bench_fault_arg *args = calloc(n, sizeof(*args));
	pthread_t *tid = calloc(n, sizeof(*tid));
	unsigned started = 0;
	for (unsigned i = 0; !rc && i < n; i++, started++) {
		args[i] = (struct bench_fault_arg){ as, va + i * per_thread, per_thread, &start, 0, 0 };
		pthread_create(&tid[i], NULL, bench_fault_worker, &args[i]);
	}
	double slowest = 0;
	for (unsigned i = 0; i < started; i++) {
		pthread_join(tid[i], NULL);
		if (args[i].rc)
			rc = args[i].rc;
		if (args[i].secs > slowest)
			slowest = args[i].secs;
	}
	if (!rc)
		*rate = (double)(len / PG) / slowest;
	pthread_barrier_destroy(&start);
	free(args);
	free(tid);
	ptk_as_destroy(as);
	ptk_object_release(obj);
	ptk_ctx_destroy(ctx);
	return rc;
}

static int run_faults(const struct bench_params *p)
{
	unsigned threads = p->threads ? p->threads : 4;
	uint64_t per_thread = p->size ? p->size : (p->quick ? 2u << 20 : 16u << 20);
	unsigned counts[2] = { 1, threads };
	for (unsigned k = 0; k < (threads > 1 ? 2u : 1u); k++) {
		unsigned n = counts[k];
		char params[64];
		snprintf(params, sizeof(params), "threads=%u,size=%lluM", n,
			 (unsigned long long)(per_thread * n >> 20));
		/* Alternate the order per repetition (warm pool effects). */
		for (unsigned j = 0; j < 2; j++) {
			bool object = (j + p->rep) & 1;
			double rate;
			int rc = fault_once(object, n, per_thread, &rate);
			if (rc) {
				fprintf(stderr, "objects: faults (%s, %u threads): error %d\n",
					object ? "object" : "anon", n, rc);
				return rc;
			}
			bench_sample(SC, object ? "object" : "anon", params, "faults/s", "1/s", rate);
		}
		bench_compare(SC, "faults/s", params, "object", "anon", "higher");
	}
	return 0;
}

/* ---- (b) map/touch/unmap loops, oversubscribed ------------------------------ */

struct loop_arg {
	struct ptk_as *as;
	struct ptk_object *obj;
	pthread_barrier_t *start;     /* NULL: start at once */
	_Atomic int *stop;            /* NULL: run for @secs */
	double secs;
	uint64_t cycles;
	int rc;
};

/* The loop maps at LOOP_VA + 4 KiB, beside an anonymous page at LOOP_VA
 * that stays: the page tables stay too, so the loop measures the map and
 * unmap paths (rmap lock included), not table allocation and the RCU
 * frees of emptied tables (which lag behind 4 threads per CPU). */
#define LOOP_VA (UINT64_C(1) << 32)

static void *loop_worker(void *p)
{
	struct loop_arg *a = p;
	ptk_thread_register();
	if (a->start)
		pthread_barrier_wait(a->start);
	double t0 = bench_now();
	uint64_t s = (uint64_t)(uintptr_t)a | 1;
	while (a->stop ? !atomic_load(a->stop) : bench_now() - t0 < a->secs) {
		for (unsigned i = 0; i < 16; i++) {
			uint64_t va = LOOP_VA + PG;
			int rc = ptk_map_object(a->as, &va, 16 * PG, RW,
						PTK_MAP_FIXED | PTK_MAP_SHARED, a->obj, 0);
			if (!rc) {
				rc = ptk_fault(a->as, va + (bench_rand(&s) % 16) * PG, PTK_ACCESS_WRITE);
				if (rc == -ENXIO)
					rc = 0;     /* truncated meanwhile (truncate runs) */
			}
			if (!rc)
				rc = ptk_unmap(a->as, va, 16 * PG);
			if (rc) {
				a->rc = rc;
				goto out;
			}
			a->cycles++;
		}
	}
out:
	a->secs = bench_now() - t0;
	ptk_thread_unregister();
	return NULL;
}

/* An address space for the loop: the anonymous page that keeps its
 * tables.  0 or an error (*as set if it was created). */
static int loop_space(struct ptk_ctx *ctx, struct ptk_as **as)
{
	int rc = ptk_as_create(ctx, 4, as);
	if (rc)
		return rc;
	uint64_t va = LOOP_VA;
	return ptk_map_anon(*as, &va, PG, RW, PTK_MAP_FIXED | PTK_MAP_POPULATE);
}

static int loop_once(enum ptk_rmap_lock d, unsigned n, double secs, double *rate)
{
	struct ptk_ctx *ctx;
	struct ptk_object *obj;
	int rc = make_ctx(d, 64u << 20, &ctx);
	if (rc)
		return rc;
	if ((rc = ptk_object_create(ctx, 16 * PG, 0, &obj))) {
		ptk_ctx_destroy(ctx);
		return rc;
	}
	pthread_barrier_t start;
	pthread_barrier_init(&start, NULL, n);
	struct loop_arg *args = calloc(n, sizeof(*args));
	pthread_t *tid = calloc(n, sizeof(*tid));
	unsigned made = 0, started = 0;
	for (; made < n; made++) {
		args[made] = (struct loop_arg){ .obj = obj, .start = &start, .secs = secs };
		if ((rc = loop_space(ctx, &args[made].as))) {
			made++;
			break;
		}
	}
	for (unsigned i = 0; !rc && i < n; i++, started++)
		pthread_create(&tid[i], NULL, loop_worker, &args[i]);
	uint64_t cycles = 0;
	double slowest = 0;
	for (unsigned i = 0; i < started; i++) {
		pthread_join(tid[i], NULL);
		if (args[i].rc)
			rc = args[i].rc;
		cycles += args[i].cycles;
		if (args[i].secs > slowest)
			slowest = args[i].secs;
	}
	if (!rc)
		*rate = (double)cycles / slowest;
	for (unsigned i = 0; i < made; i++)
		ptk_as_destroy(args[i].as);
	pthread_barrier_destroy(&start);
	free(args);
	free(tid);
	ptk_object_release(obj);
	ptk_ctx_destroy(ctx);
	return rc;
}

static int run_map_loop(const struct bench_params *p, bool spin)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned n = 4 * (unsigned)(cpus > 0 ? cpus : 1);
	double secs = p->seconds ? p->seconds : (p->quick ? 0.25 : 0.5);
	char params[64];
	snprintf(params, sizeof(params), "threads=%u,cpus=%ld", n, cpus);
	enum ptk_rmap_lock designs[2] = { PTK_RMAP_SLEEPING, PTK_RMAP_SPIN };
	for (unsigned j = 0; j < (spin ? 2u : 1u); j++) {
		enum ptk_rmap_lock d = designs[(j + p->rep) % (spin ? 2u : 1u)];
		double rate = 0;
		int rc = loop_once(d, n, secs, &rate);
		if (rc) {
			fprintf(stderr, "objects: map-loop (%s): error %d\n", lock_name(d), rc);
			return rc;
		}
		bench_sample(SC, lock_name(d), params, "map+touch+unmap/s", "1/s", rate);
	}
	if (spin)
		bench_compare(SC, "map+touch+unmap/s", params, "sleeping", "spin", "higher");
	return 0;
}

/* ---- (c) truncate under many mappers ------------------------------------------ */

/* Time truncates of an object mapped by @nspaces spaces with every page
 * faulted; with @bg > 0, @bg threads run map/touch/unmap loops on the same
 * object meanwhile (each in its own space), contending for its rmap lock. */
static int truncate_once(enum ptk_rmap_lock d, unsigned nspaces, uint64_t pages,
			 unsigned reps, unsigned bg, double *ms)
{
	struct ptk_ctx *ctx;
	struct ptk_object *obj;
	/* Tables: 4 per space; data: the object's pages once. */
	int rc = make_ctx(d, (uint64_t)nspaces * 8 * PG + pages * PG + (32u << 20), &ctx);
	if (rc)
		return rc;
	if ((rc = ptk_object_create(ctx, pages * PG, 0, &obj))) {
		ptk_ctx_destroy(ctx);
		return rc;
	}
	struct ptk_as **as = calloc(nspaces, sizeof(*as));
	unsigned made = 0;
	for (; !rc && made < nspaces; made++) {
		uint64_t va = UINT64_C(1) << 32;
		rc = ptk_as_create(ctx, 4, &as[made]);
		if (!rc)
			rc = ptk_map_object(as[made], &va, pages * PG, RW,
					    PTK_MAP_FIXED | PTK_MAP_SHARED, obj, 0);
		if (rc)
			break;
	}
	_Atomic int stop = 0;
	struct loop_arg *bga = calloc(bg ? bg : 1, sizeof(*bga));
	pthread_t *bgt = calloc(bg ? bg : 1, sizeof(*bgt));
	unsigned bg_made = 0, bg_started = 0;
	for (; !rc && bg_made < bg; bg_made++) {
		bga[bg_made] = (struct loop_arg){ .obj = obj, .stop = &stop };
		if ((rc = loop_space(ctx, &bga[bg_made].as))) {
			bg_made++;
			break;
		}
	}
	for (unsigned i = 0; !rc && i < bg; i++, bg_started++)
		pthread_create(&bgt[i], NULL, loop_worker, &bga[i]);
	double *t = calloc(reps, sizeof(*t));
	for (unsigned r = 0; !rc && r < reps; r++) {
		rc = ptk_object_truncate(obj, pages * PG);
		for (unsigned i = 0; !rc && i < made; i++)
			rc = ptk_populate(as[i], UINT64_C(1) << 32, pages * PG, PTK_ACCESS_WRITE);
		if (rc)
			break;
		double t0 = bench_now();
		rc = ptk_object_truncate(obj, 0);
		t[r] = (bench_now() - t0) * 1e3;
	}
	atomic_store(&stop, 1);
	for (unsigned i = 0; i < bg_started; i++) {
		pthread_join(bgt[i], NULL);
		if (bga[i].rc && !rc)
			rc = bga[i].rc;
	}
	for (unsigned i = 0; i < bg_made; i++)
		ptk_as_destroy(bga[i].as);
	free(bga);
	free(bgt);
	if (!rc)
		*ms = bench_median(t, reps);
	free(t);
	for (unsigned i = 0; i < nspaces; i++)
		ptk_as_destroy(as[i]);      /* NULL where none was made */
	free(as);
	ptk_object_release(obj);
	ptk_ctx_destroy(ctx);
	return rc;
}

static int run_truncate(const struct bench_params *p, bool spin)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	/* Alone: 64 spaces (16 quick); against oversubscribed mappers (4 per
	 * CPU): 16 spaces, smaller, as the mappers take most of the CPU. */
	struct { unsigned spaces, bg; uint64_t pages; unsigned reps; } cfg[2] = {
		{ p->quick ? 16 : 64, 0, p->size ? p->size / PG : (p->quick ? 64 : 128),
		  p->quick ? 5 : 7 },
		{ 16, 4 * (unsigned)(cpus > 0 ? cpus : 1), p->quick ? 32 : 64, p->quick ? 3 : 5 },
	};
	enum ptk_rmap_lock designs[2] = { PTK_RMAP_SLEEPING, PTK_RMAP_SPIN };
	for (unsigned c = 0; c < 2; c++) {
		char params[96];
		snprintf(params, sizeof(params), "spaces=%u,pages=%llu,mappers=%u", cfg[c].spaces,
			 (unsigned long long)cfg[c].pages, cfg[c].bg);
		for (unsigned j = 0; j < (spin ? 2u : 1u); j++) {
			enum ptk_rmap_lock d = designs[(j + p->rep) % (spin ? 2u : 1u)];
			double ms = 0;
			int rc = truncate_once(d, cfg[c].spaces, cfg[c].pages, cfg[c].reps,
					       cfg[c].bg, &ms);
			if (rc) {
				fprintf(stderr, "objects: truncate (%s, %u mappers): error %d\n",
					lock_name(d), cfg[c].bg, rc);
				return rc;
			}
			bench_sample(SC, lock_name(d), params, "truncate", "ms", ms);
			bench_sample(SC, lock_name(d), params, "entries zapped/s", "1/s",
				     (double)(cfg[c].spaces * cfg[c].pages) / (ms / 1e3));
		}
		if (spin)
			bench_compare(SC, "truncate", params, "sleeping", "spin", "lower");
	}
	return 0;
}

static int run_objects(const struct bench_params *p)
{
	bool spin = spin_available();
	int rc = run_faults(p);
	if (!rc)
		rc = run_map_loop(p, spin);
	if (!rc)
		rc = run_truncate(p, spin);
	return rc;
}

const struct bench_scenario bench_objects = {
	"objects", "shared objects: faults anon vs object, map/unmap loops and "
	"truncate under many mappers, sleeping vs spin rmap locks",
	run_objects,
};
