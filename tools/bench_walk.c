/*
 * bench_walk.c - the lockless-walk scenarios (seeds 002 and 003).
 *
 * "unmap-huge": a region of 2 MiB huge leaves (special mappings: no memory
 *   behind them; --size, default 1 GiB (so the default suite stays short);
 *   --size 64G is the seed's 64 GiB,
 *   up to 496G) is unmapped while 1, 2, 4 walker threads translate random
 *   addresses in it.  (The default is small because on 2 cores the old
 *   design's unmap waits for walkers preempted inside their sections: about
 *   2 ms per huge leaf with 4 walkers, a minute for 64 GiB.)  Old design (walk_mode
 *   PTK_WALK_IPI: one membarrier IPI per huge leaf cleared, waiting out
 *   interrupts-off walkers, like serialize_against_pte_lookup) beside the
 *   new one (RCU walkers, no IPI), same repetition.  Metric: unmap time.
 *
 * "lookup": the cost of one lookup of a random address in a populated
 *   region: ptkit (ptk_translate: walker section + walk) vs a raw,
 *   unsynchronised walk of the same tables (the physical limit) vs the same
 *   raw walk under a reader-writer lock, the raw walk behind a function
 *   call (raw-call: the call boundary every library lookup has), ptkit's
 *   inline lookup (ptk_lookup() in its own read-side section, liburcu's
 *   read side inlined: this file builds with _LGPL_SOURCE), ptkit from a
 *   QSBR-style thread (online, one quiescent state per 4096 lookups)
 *   through ptk_translate() and through ptk_lookup() (no per-lookup
 *   section at all: the hot-path configuration);
 *   alone, and with a writer thread
 *   churning map/fault/unmap on other tables (under the rwlock's write side
 *   for the rwlock design, as that design would need).
 *
 * "reclaim": PT_RECLAIM at user-space scale: map --size (default 50 GiB)
 *   anonymous, touch one page per 2 MiB, drop in 2 MiB steps; page-table
 *   bytes before and after (the kernel figure: 102,640 kB -> 240 kB).
 */
/* liburcu's read side inline (the inline lookup's section), as a user
 * with a hot path would build; not under ThreadSanitizer (see
 * src/meson.build). */
#if !defined(__SANITIZE_THREAD__)
#define _LGPL_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"
#include "ptkit/ptkit.h"

#define GiB (UINT64_C(1) << 30)
#define MiB (UINT64_C(1) << 20)

static struct ptk_ctx *make_ctx(uint64_t pool, enum ptk_walk_mode mode, int *rc)
{
	struct ptk_ctx_config cfg;
	ptk_ctx_config_default(&cfg);
	cfg.pool_bytes = pool;
	cfg.walk_mode = mode;
	struct ptk_ctx *ctx = NULL;
	*rc = ptk_ctx_create(&cfg, &ctx);
	return *rc ? NULL : ctx;
}

/* ---- unmap-huge -------------------------------------------------------- */

struct walker_arg {
	struct ptk_as *as;
	uint64_t va, len;
	_Atomic int *stop;
	_Atomic int *ready;
	uint64_t lookups, seed;
};

static void *walker_main(void *p)
{
	struct walker_arg *a = p;
	ptk_thread_register();
	uint64_t s = a->seed | 1, n = 0;
	(*a->ready)++;
	while (!*a->stop) {
		struct ptk_xlate x;
		uint64_t va = a->va + (bench_rand(&s) % a->len);
		(void)ptk_translate(a->as, va & ~(PTK_PAGE_SIZE - 1), &x);
		n++;
	}
	a->lookups = n;
	ptk_thread_unregister();
	return NULL;
}

static int unmap_once(const struct bench_params *p, enum ptk_walk_mode mode,
		      unsigned nwalkers, uint64_t size, double *ms, uint64_t *ipis)
{
	int rc;
	struct ptk_ctx *ctx = make_ctx(64 * MiB, mode, &rc);
	if (!ctx)
		return rc;
	struct ptk_as *as;
	if ((rc = ptk_as_create(ctx, 4, &as))) {
		ptk_ctx_destroy(ctx);
		return rc;
	}
	/* 2 MiB aligned, not 1 GiB aligned: 2 MiB leaves only. */
	uint64_t va = 0, pfn = (UINT64_C(1) << 30) + 512;
	rc = ptk_map_special(as, &va, size, pfn, PTK_PROT_READ | PTK_PROT_WRITE, PTK_MAP_HUGE);
	_Atomic int stop = 0, ready = 0;
	struct walker_arg args[64];
	pthread_t tid[64];
	for (unsigned i = 0; !rc && i < nwalkers; i++) {
		args[i] = (struct walker_arg){ as, va, size, &stop, &ready, 0,
					       p->seed * 31 + i + p->rep * 1000 };
		pthread_create(&tid[i], NULL, walker_main, &args[i]);
	}
	while (!rc && ready < (int)nwalkers)
		;
	if (!rc) {
		uint64_t i0 = ptk_ipi_sent();
		double t0 = bench_now();
		rc = ptk_unmap(as, va, size);
		*ms = (bench_now() - t0) * 1e3;
		*ipis = ptk_ipi_sent() - i0;
		stop = 1;
		for (unsigned i = 0; i < nwalkers; i++)
			pthread_join(tid[i], NULL);
	}
	ptk_as_destroy(as);
	ptk_ctx_destroy(ctx);
	return rc;
}

static int run_unmap_huge(const struct bench_params *p)
{
	unsigned max_threads = p->threads ? p->threads : 4;
	uint64_t size = p->size ? p->size : (p->quick ? GiB / 4 : 1 * GiB);
	size &= ~(2 * MiB - 1);
	if (!size || size > 496 * GiB) {
		fprintf(stderr, "unmap-huge: --size must be 2 MiB..496 GiB\n");
		return -EINVAL;
	}
	for (unsigned n = 1; n <= max_threads; n *= 2) {
		char params[64];
		snprintf(params, sizeof(params), "walkers=%u,size=%lluG", n,
			 (unsigned long long)(size / GiB));
		for (int old = 1; old >= 0; old--) {
			double ms;
			uint64_t ipis;
			int rc = unmap_once(p, old ? PTK_WALK_IPI : PTK_WALK_RCU, n, size, &ms, &ipis);
			if (rc) {
				fprintf(stderr, "unmap-huge: %s design: error %d\n", old ? "old" : "new", rc);
				return rc;
			}
			const char *d = old ? "old-ipi" : "new-rcu";
			bench_sample("unmap-huge", d, params, "unmap", "ms", ms);
			bench_sample("unmap-huge", d, params, "ipis", "count", (double)ipis);
		}
		bench_compare("unmap-huge", "unmap", params, "new-rcu", "old-ipi", "lower");
	}
	return 0;
}

const struct bench_scenario bench_unmap_huge = {
	"unmap-huge", "unmap of 2 MiB huge leaves under 1..N walkers: IPI per leaf (old) vs RCU (new)",
	run_unmap_huge,
};

/* ---- lookup ------------------------------------------------------------ */

/* The physical limit: the same walk, no section, no lock, nothing but
 * loads (inlined here; host addresses computed from the pool's base). */
struct raw_tables {
	const ptk_slot_t *root;
	unsigned levels;
	uint8_t *base;
	uint64_t nframes;
};

static inline int raw_walk(const struct raw_tables *r, uint64_t va, struct ptk_xlate *out)
{
	const ptk_slot_t *table = r->root;
	for (unsigned level = r->levels - 1;; level--) {
		ptk_pte_t e = atomic_load_explicit(&((ptk_slot_t *)&table[ptk_level_index(va, level)])->raw,
						   memory_order_relaxed);
		if (!ptk_pte_present(e))
			return -EFAULT;
		if (e & PTK_PTE_LEAF) {
			uint64_t off = va & (ptk_level_size(level) - 1);
			out->pte = e;
			out->level = level;
			out->page_size = ptk_level_size(level);
			out->pfn = ptk_pte_pfn(e) + (off >> PTK_PAGE_SHIFT);
			out->host = out->pfn < r->nframes ?
				r->base + (out->pfn << PTK_PAGE_SHIFT) + (va & (PTK_PAGE_SIZE - 1)) : NULL;
			return 0;
		}
		table = (const ptk_slot_t *)(r->base + (ptk_pte_pfn(e) << PTK_PAGE_SHIFT));
	}
}

enum lk_design { LK_PTKIT, LK_RAW, LK_RWLOCK, LK_QSBR, LK_RAWCALL, LK_INLINE,
		 LK_INLINE_QSBR, LK_N };
static const char *const lk_names[] = { "ptkit", "raw", "rwlock", "ptkit-qsbr", "raw-call",
					"ptkit-inline", "ptkit-inline-qsbr" };

/* The raw walk behind a call boundary, as any library lookup has: what is
 * left between it and ptkit is the synchronisation itself. */
static __attribute__((noinline)) int raw_walk_call(const struct raw_tables *r, uint64_t va,
						   struct ptk_xlate *out)
{
	return raw_walk(r, va, out);
}

struct churn_arg {
	struct ptk_as *as;
	uint64_t va;
	pthread_rwlock_t *lock;   /* NULL: ptkit's own locking only */
	_Atomic int *stop;
	uint64_t ops;
};

static void *churn_main(void *p)
{
	struct churn_arg *a = p;
	ptk_thread_register();
	while (!*a->stop) {
		if (a->lock)
			pthread_rwlock_wrlock(a->lock);
		uint64_t va = a->va;
		ptk_map_anon(a->as, &va, 64 * 1024, PTK_PROT_READ | PTK_PROT_WRITE, PTK_MAP_FIXED);
		for (unsigned i = 0; i < 16; i++)
			ptk_fault(a->as, va + i * PTK_PAGE_SIZE, PTK_ACCESS_WRITE);
		ptk_unmap(a->as, va, 64 * 1024);
		if (a->lock)
			pthread_rwlock_unlock(a->lock);
		a->ops++;
	}
	ptk_thread_unregister();
	return NULL;
}

#define NADDR 65536u
#define SLICE 4096u      /* lookups per design per round */

/* The three designs interleaved in rounds of SLICE lookups, so machine
 * noise falls on all of them alike.  ns per lookup into @ns[3]. */
static void lookup_phase(struct ptk_ctx *ctx, struct ptk_as *as, pthread_rwlock_t *lock,
			 const uint64_t *addrs, double secs, bool chained, double *ns)
{
	struct raw_tables r = { ptk_as_root_slots(as), ptk_as_levels(as),
				ptk_pfn_host(ctx, 0), ptk_ctx_config(ctx)->pool_bytes >> PTK_PAGE_SHIFT };
	struct ptk_lookup_root lr;
	ptk_lookup_root(as, &lr);
	double spent[LK_N] = { 0 };
	uint64_t n[LK_N] = { 0 }, sink = 0;
	unsigned at = 0, round = 0;
	double start = bench_now();
	while (bench_now() - start < 3 * secs) {
		/* Every design walks the same SLICE of addresses in a round, so
		 * the first one pays the cache misses the others then hit: the
		 * first place rotates, round by round. */
		for (int k = 0; k < LK_N; k++) {
			int d = (int)((round + (unsigned)k) % LK_N);
			/* QSBR-style: online for the slice, one quiescent
			 * state per SLICE lookups. */
			bool qsbr = d == LK_QSBR || d == LK_INLINE_QSBR;
			if (qsbr)
				ptk_qsbr_online();
			double t0 = bench_now();
			for (unsigned i = at; i < at + SLICE; i++) {
				struct ptk_xlate x;
				int rc;
				/* Chained: the address depends on the previous
				 * result (latency, as a soft-TLB refill sees it);
				 * otherwise lookups may overlap in the CPU. */
				uint64_t a = addrs[chained ? (i ^ (unsigned)(sink & 1)) : i];
				if (d == LK_PTKIT || d == LK_QSBR) {
					rc = ptk_translate(as, a, &x);
				} else if (d == LK_INLINE) {
					/* ptk_lookup(): the same walk inline, one
					 * read-side section per lookup. */
					ptk_rcu_read_lock();
					rc = ptk_lookup(&lr, a, &x);
					ptk_rcu_read_unlock();
				} else if (d == LK_INLINE_QSBR) {
					/* Online: the thread is inside its
					 * long section already. */
					rc = ptk_lookup(&lr, a, &x);
				} else if (d == LK_RAW) {
					rc = raw_walk(&r, a, &x);
				} else if (d == LK_RAWCALL) {
					rc = raw_walk_call(&r, a, &x);
				} else {
					pthread_rwlock_rdlock(lock);
					rc = raw_walk(&r, a, &x);
					pthread_rwlock_unlock(lock);
				}
				sink += rc ? 1 : x.pfn;
			}
			if (qsbr)
				ptk_quiescent_state();
			spent[d] += bench_now() - t0;
			n[d] += SLICE;
			if (qsbr)
				ptk_qsbr_offline();
		}
		at = (at + SLICE) % NADDR;
		round++;
	}
	__asm__ __volatile__("" : : "r"(sink));
	for (int d = 0; d < LK_N; d++)
		ns[d] = spent[d] * 1e9 / (double)n[d];
}

static int run_lookup(const struct bench_params *p)
{
	uint64_t size = p->size ? p->size : (p->quick ? 16 * MiB : 256 * MiB);
	double secs = p->seconds ? p->seconds : (p->quick ? 0.03 : 0.15);
	int rc;
	struct ptk_ctx *ctx = make_ctx(size + 64 * MiB, PTK_WALK_RCU, &rc);
	if (!ctx)
		return rc;
	struct ptk_as *as;
	if ((rc = ptk_as_create(ctx, 4, &as))) {
		ptk_ctx_destroy(ctx);
		return rc;
	}
	ptk_thread_register();
	uint64_t va = 0, churn_va = 0;
	rc = ptk_map_anon(as, &va, size, PTK_PROT_READ | PTK_PROT_WRITE, PTK_MAP_POPULATE);
	/* The writer's tables: 64 GiB away from the looked-up region. */
	churn_va = (va + size + 64 * GiB) & ~(GiB - 1);
	uint64_t *addrs = malloc(NADDR * sizeof(*addrs));
	uint64_t s = p->seed * 977 + p->rep + 1;
	for (unsigned i = 0; addrs && i < NADDR; i++)
		addrs[i] = (va + bench_rand(&s) % size) & ~(PTK_PAGE_SIZE - 1);
	if (!addrs)
		rc = -ENOMEM;
	pthread_rwlock_t lock;
	pthread_rwlock_init(&lock, NULL);
	char params[64], pair[64];
	snprintf(pair, sizeof(pair), "size=%lluM", (unsigned long long)(size / MiB));
	for (int churn = 0; !rc && churn < 2; churn++) {
		snprintf(params, sizeof(params), "size=%lluM,writer=%s",
			 (unsigned long long)(size / MiB), churn ? "churn" : "none");
		/* The writer takes the rwlock's write side around its changes:
		 * what a reader-writer design needs; ptkit's readers ignore it. */
		_Atomic int stop = 0;
		struct churn_arg ca = { as, churn_va, &lock, &stop, 0 };
		pthread_t tid;
		if (churn)
			pthread_create(&tid, NULL, churn_main, &ca);
		double ns[LK_N], lat[LK_N];
		lookup_phase(ctx, as, &lock, addrs, secs, false, ns);
		lookup_phase(ctx, as, &lock, addrs, secs, true, lat);
		if (churn) {
			stop = 1;
			pthread_join(tid, NULL);
			bench_sample("lookup", "writer", params, "writer-ops", "count", (double)ca.ops);
		}
		for (int d = 0; d < LK_N; d++) {
			bench_sample("lookup", lk_names[d], params, "lookup", "ns", ns[d]);
			bench_sample("lookup", lk_names[d], params, "lookup-chained", "ns", lat[d]);
		}
		bench_sample("lookup", churn ? "ptkit-churn" : "ptkit-quiet", pair, "lookup", "ns",
			     ns[LK_PTKIT]);
		bench_sample("lookup", churn ? "rwlock-churn" : "rwlock-quiet", pair, "lookup", "ns",
			     ns[LK_RWLOCK]);
		bench_sample("lookup", churn ? "raw-churn" : "raw-quiet", pair, "lookup", "ns",
			     ns[LK_RAW]);
		bench_sample("lookup", churn ? "inline-qsbr-churn" : "inline-qsbr-quiet", pair,
			     "lookup", "ns", ns[LK_INLINE_QSBR]);
		bench_compare("lookup", "lookup", params, "ptkit", "raw", "lower");
		bench_compare("lookup", "lookup-chained", params, "ptkit", "raw", "lower");
		bench_compare("lookup", "lookup", params, "ptkit", "raw-call", "lower");
		bench_compare("lookup", "lookup-chained", params, "ptkit", "raw-call", "lower");
		bench_compare("lookup", "lookup", params, "ptkit-inline", "raw", "lower");
		bench_compare("lookup", "lookup-chained", params, "ptkit-inline", "raw", "lower");
		bench_compare("lookup", "lookup", params, "ptkit-inline-qsbr", "raw", "lower");
		bench_compare("lookup", "lookup-chained", params, "ptkit-inline-qsbr", "raw", "lower");
		bench_compare("lookup", "lookup", params, "ptkit-qsbr", "raw", "lower");
		bench_compare("lookup", "lookup-chained", params, "ptkit-qsbr", "raw", "lower");
		bench_compare("lookup", "lookup", params, "rwlock", "raw", "lower");
		bench_compare("lookup", "lookup", params, "ptkit", "rwlock", "lower");
	}
	bench_compare("lookup", "lookup", pair, "ptkit-churn", "ptkit-quiet", "lower");
	bench_compare("lookup", "lookup", pair, "rwlock-churn", "rwlock-quiet", "lower");
	/* The machine's share: a raw walk loses this much to the writer's
	 * mere presence (cores, caches), with no synchronisation at all. */
	bench_compare("lookup", "lookup", pair, "raw-churn", "raw-quiet", "lower");
	bench_compare("lookup", "lookup", pair, "inline-qsbr-churn", "inline-qsbr-quiet", "lower");
	pthread_rwlock_destroy(&lock);
	free(addrs);
	ptk_as_destroy(as);
	ptk_ctx_destroy(ctx);
	return rc;
}

const struct bench_scenario bench_lookup = {
	"lookup", "lookup cost: ptkit vs raw unsynchronised walk vs rwlock, quiet and with a writer",
	run_lookup,
};

/* ---- reclaim ----------------------------------------------------------- */

static int run_reclaim(const struct bench_params *p)
{
	uint64_t size = p->size ? p->size : (p->quick ? 2 * GiB : 50 * GiB);
	size &= ~(2 * MiB - 1);
	uint64_t steps = size / (2 * MiB);
	int rc;
	/* One data frame and one PTE table per 2 MiB, plus slack. */
	struct ptk_ctx *ctx = make_ctx(steps * 2 * PTK_PAGE_SIZE + 64 * MiB, PTK_WALK_RCU, &rc);
	if (!ctx)
		return rc;
	struct ptk_as *as;
	if ((rc = ptk_as_create(ctx, 4, &as))) {
		ptk_ctx_destroy(ctx);
		return rc;
	}
	uint64_t va = 0;
	rc = ptk_map_anon(as, &va, size, PTK_PROT_READ | PTK_PROT_WRITE, 0);
	for (uint64_t i = 0; !rc && i < steps; i++)
		rc = ptk_fault(as, va + i * 2 * MiB, PTK_ACCESS_WRITE);
	struct ptk_as_stats before, after;
	ptk_as_stats(as, &before);
	double t0 = bench_now();
	for (uint64_t i = 0; !rc && i < steps; i++)
		rc = ptk_drop(as, va + i * 2 * MiB, 2 * MiB);
	double ms = (bench_now() - t0) * 1e3;
	ptk_as_stats(as, &after);
	if (!rc) {
		char params[64];
		snprintf(params, sizeof(params), "size=%lluG,touched=%llu",
			 (unsigned long long)(size / GiB), (unsigned long long)steps);
		bench_sample("reclaim", "touched", params, "page-tables", "kB",
			     (double)before.table_bytes / 1024);
		bench_sample("reclaim", "dropped", params, "page-tables", "kB",
			     (double)after.table_bytes / 1024);
		bench_sample("reclaim", "dropped", params, "drop-loop", "ms", ms);
		bench_compare("reclaim", "page-tables", params, "dropped", "touched", "lower");
	}
	ptk_as_destroy(as);
	ptk_ctx_destroy(ctx);
	return rc;
}

const struct bench_scenario bench_reclaim = {
	"reclaim", "PT_RECLAIM: touch one page per 2 MiB, drop in 2 MiB steps; page-table bytes",
	run_reclaim,
};
