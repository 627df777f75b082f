/*
 * stress_kernel.c - address spaces created, activated, used and destroyed
 * while other threads extend and shrink the shared kernel half, in each
 * kernel-sync design (ptkit/kernel.h).
 *
 * Extenders own range slots; each slot cycles EMPTY -> (kmap) MAPPED ->
 * UNMAPPING -> (kunmap) EMPTY, with a sequence number, and is published as
 * MAPPED only after the kmap returned.  A range's address, kind and frames
 * follow from (slot, sequence), and its top-level slot is picked among 200,
 * so new top-level entries keep appearing during the run.
 *
 * Workers keep a few private address spaces and share some long-lived ones.
 * Invariant, checked continuously: a range seen MAPPED (so its kmap had
 * returned) before the check, and still MAPPED with the same sequence after
 * it, translates to the expected frames in
 *   - every live address space (eager, legacy), created before or after the
 *     kmap, without any activation;
 *   - every address space activated after the range was seen MAPPED (lazy).
 * A kernel fault there must succeed too.  Checks that see the state move
 * are not counted.  At the end: no live space misses a reference entry,
 * and every frame is accounted for (data frames all back, tables only the
 * kernel half's retained ones, then nothing after ptk_ctx_destroy()).
 *
 * Usage: stress_kernel [-s SEED] [-t SECONDS] [-d eager|lazy|legacy|all]
 *                      [-w WORKERS] [-x EXTENDERS]
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ptkit/ptkit.h"
#include "stress_common.h"

#define NRANGES  48
#define NTOP     200                     /* top-level slots ranges use */
#define NSHARED  4                       /* long-lived shared spaces */
#define NPRIV    3                       /* private spaces per worker */
#define GiB      (UINT64_C(1) << 30)
#define SLOTSZ   (UINT64_C(1) << 39)
#define ST_EMPTY 0u
#define ST_MAPPED 1u
#define ST_UNMAPPING 2u

static struct ptk_ctx *ctx;
static enum ptk_kernel_sync cur;
static _Atomic uint64_t state[NRANGES];   /* seq << 2 | ST_* */
static struct ptk_as *shared[NSHARED];
static _Atomic int stop;
static _Atomic unsigned long failures;
static _Atomic uint64_t nchecks, nfaults_checked, nspaces;
static unsigned nworkers = 3, nextenders = 2;
static double seconds = 3;
static uint64_t seed;

#define FAIL(...) do { fprintf(stderr, __VA_ARGS__); failures++; stop = 1; } while (0)

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13; *s ^= *s >> 7; *s ^= *s << 17;
	return *s;
}

static uint64_t mix(uint64_t x)
{
	x ^= x >> 31; x *= UINT64_C(0x9e3779b97f4a7c15); x ^= x >> 29;
	return x;
}

/* Where and what range @i holds at sequence @seq. */
struct range { uint64_t va, len, pfn; bool anon, huge; };

static struct range range_of(unsigned i, uint64_t seq)
{
	uint64_t h = mix(seed ^ (i * UINT64_C(1000003)) ^ (seq << 20));
	unsigned top = (unsigned)(h % NTOP);
	struct range r;
	r.va = UINT64_C(0xffff800000000000) + top * SLOTSZ + i * GiB + ((seq % 8) << 21);
	r.anon = (h >> 16) % 3 == 0;
	r.huge = !r.anon && (h >> 20) % 4 == 0;
	r.len = r.huge ? (UINT64_C(1) << 21) : 4 * 4096;
	r.pfn = r.anon ? 0 : ((uint64_t)(i + 1) << 24) + ((seq & 0xfff) << 9);
	return r;
}

/* Check range @i in @as.  @s1 is the state seen before; returns 1 if a
 * check was made.  @fault: also take a kernel fault there. */
static int check_range(struct ptk_as *as, unsigned i, uint64_t s1, bool fault,
		       const char *who)
{
	if ((s1 & 3) != ST_MAPPED)
		return 0;
	struct range r = range_of(i, s1 >> 2);
	uint64_t off = (mix(s1) % (r.len / 4096)) * 4096;
	struct ptk_xlate x;
	int rc = ptk_translate(as, r.va + off, &x);
	int frc = fault ? ptk_fault(as, r.va + off, PTK_ACCESS_READ) : 0;
	uint64_t s2 = atomic_load_explicit(&state[i], memory_order_acquire);
	if (s2 != s1)
		return 0;           /* unmapped meanwhile: not a valid check */
	if (rc) {
		FAIL("%s: range %u seq %" PRIu64 " at %#" PRIx64 " not translated (%d), "
		     "missing %u\n", who, i, s1 >> 2, r.va + off, rc, ptk_as_kernel_missing(as));
		return 1;
	}
	if (frc)
		FAIL("%s: kernel fault at %#" PRIx64 " gave %d\n", who, r.va + off, frc);
	if (r.anon ? (ptk_pte_special(x.pte) || !x.host) : x.pfn != r.pfn + off / 4096)
		FAIL("%s: range %u at %#" PRIx64 ": pfn %#" PRIx64 ", want %#" PRIx64 "\n",
		     who, i, r.va + off, x.pfn, r.pfn + off / 4096);
	if (x.pte & PTK_PTE_USER)
		FAIL("%s: kernel leaf with USER\n", who);
	if (fault)
		nfaults_checked++;
	return 1;
}

/* Check every range in @as: snapshot the states, then (lazy) activate,
 * then translate. */
static void check_all(struct ptk_as *as, uint64_t *s, const char *who)
{
	uint64_t snap[NRANGES];
	for (unsigned i = 0; i < NRANGES; i++)
		snap[i] = atomic_load_explicit(&state[i], memory_order_acquire);
	if (cur == PTK_KSYNC_LAZY)
		ptk_as_activate(as);
	unsigned n = 0;
	for (unsigned i = 0; i < NRANGES; i++)
		n += check_range(as, i, snap[i], rnd(s) % 16 == 0, who);
	nchecks += n;
}

/* The pool can run dry while destroyed roots wait for their grace period
 * (the RCU callback thread gets a small share of 2 cores): wait for the
 * pending frees and retry.  Counted, not a failure. */
static _Atomic uint64_t nretries;

static bool retry_enomem(int rc, int *tries)
{
	if (rc != -ENOMEM || ++*tries > 5)
		return false;
	nretries++;
	ptk_ctx_quiesce(ctx);
	return true;
}

/* Use the user half: map, fault, write, translate, unmap. */
static void use_user(struct ptk_as *as, uint64_t *s)
{
	uint64_t va = 0;
	int rc, tries = 0;
	do
		rc = ptk_map_anon(as, &va, 4 * 4096, PTK_PROT_READ | PTK_PROT_WRITE, 0);
	while (retry_enomem(rc, &tries));
	if (rc) {
		FAIL("worker: map_anon %d\n", rc);
		return;
	}
	uint64_t a = va + (rnd(s) % 4) * 4096;
	struct ptk_xlate x;
	tries = 0;
	do
		rc = ptk_translate_fault(as, a, PTK_ACCESS_WRITE, &x);
	while (retry_enomem(rc, &tries));
	if (rc)
		FAIL("worker: user fault %d\n", rc);
	else
		*(uint64_t *)x.host = a;
	if (ptk_unmap(as, va, 4 * 4096))
		FAIL("worker: unmap failed\n");
}

static struct ptk_as *create(void)
{
	struct ptk_as *as;
	int rc, tries = 0;
	do
		rc = ptk_as_create(ctx, 0, &as);
	while (retry_enomem(rc, &tries));
	if (rc) {
		FAIL("worker: as_create %d\n", rc);
		return NULL;
	}
	nspaces++;
	return as;
}

static void *worker_main(void *arg)
{
	uint64_t s = seed * 7919 + (uintptr_t)arg + 1;
	struct ptk_as *priv[NPRIV] = { 0 };
	while (!stop) {
		unsigned op = rnd(&s) % 8;
		unsigned j = rnd(&s) % NPRIV;
		if (op < 3 || !priv[j]) {
			/* create (replacing one), activate, use, check */
			if (priv[j])
				ptk_as_destroy(priv[j]);
			if (!(priv[j] = create()))
				break;
			ptk_as_activate(priv[j]);
			check_all(priv[j], &s, "new space");
		} else if (op < 5) {
			check_all(priv[j], &s, "private space");
			use_user(priv[j], &s);
		} else {
			check_all(shared[rnd(&s) % NSHARED], &s, "shared space");
		}
	}
	for (unsigned j = 0; j < NPRIV; j++)
		if (priv[j])
			ptk_as_destroy(priv[j]);
	ptk_thread_unregister();
	return NULL;
}

static _Atomic uint64_t nkmaps;

static void *extender_main(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	uint64_t s = seed * 104729 + id + 1;
	while (!stop) {
		unsigned i = id + nextenders * (unsigned)(rnd(&s) % (NRANGES / nextenders));
		uint64_t st = atomic_load_explicit(&state[i], memory_order_relaxed);
		uint64_t seq = st >> 2;
		if ((st & 3) == ST_EMPTY) {
			struct range r = range_of(i, seq);
			uint64_t va;
			int rc, tries = 0;
			do {
				va = r.va;
				rc = r.anon ? ptk_kmap_anon(ctx, &va, r.len, PTK_PROT_READ,
							    PTK_MAP_NOREPLACE)
					: ptk_kmap_special(ctx, &va, r.len, r.pfn, PTK_PROT_READ,
							   PTK_MAP_NOREPLACE | (r.huge ? PTK_MAP_HUGE : 0));
			} while (retry_enomem(rc, &tries));
			if (rc || va != r.va) {
				struct ptk_pool_stats ps;
				ptk_pool_stats(ctx, &ps);
				fprintf(stderr, "pool: %" PRIu64 " free of %" PRIu64 ", tables %" PRIu64
					", data %" PRIu64 "\n", ps.free, ps.capacity,
					ps.in_use[PTK_FRAME_TABLE], ps.in_use[PTK_FRAME_DATA]);
				FAIL("extender: kmap %u at %#" PRIx64 " gave %d\n", i, r.va, rc);
				break;
			}
			nkmaps++;
			/* Release: published only after the kmap returned. */
			atomic_store_explicit(&state[i], seq << 2 | ST_MAPPED, memory_order_release);
		} else {
			struct range r = range_of(i, seq);
			/* Announce before the entries go (the kunmap's clears are
			 * releases after this store). */
			atomic_store_explicit(&state[i], seq << 2 | ST_UNMAPPING, memory_order_seq_cst);
			int rc = ptk_kunmap(ctx, r.va, r.len);
			if (rc)
				FAIL("extender: kunmap %u gave %d\n", i, rc);
			atomic_store_explicit(&state[i], (seq + 1) << 2 | ST_EMPTY, memory_order_release);
		}
	}
	ptk_thread_unregister();
	return NULL;
}

static const char *const names[] = {
	[PTK_KSYNC_EAGER] = "eager", [PTK_KSYNC_LAZY] = "lazy", [PTK_KSYNC_LEGACY] = "legacy",
};

/* One phase: a fresh context (so new top-level entries keep coming: they
 * are never cleared, and ranges use NTOP of them). */
static int run(enum ptk_kernel_sync d, double secs)
{
	unsigned long fail0 = failures;
	cur = d;
	stop = 0;
	nchecks = nfaults_checked = nspaces = nkmaps = nretries = 0;
	for (unsigned i = 0; i < NRANGES; i++)
		state[i] = 0;
	struct ptk_ctx_config cfg;
	ptk_ctx_config_default(&cfg);
	cfg.pool_bytes = 128ull << 20;
	cfg.kernel_sync = d;
	if (ptk_ctx_create(&cfg, &ctx)) {
		FAIL("ctx_create failed\n");
		return 1;
	}
	for (unsigned i = 0; i < NSHARED; i++)
		if (ptk_as_create(ctx, 0, &shared[i]))
			FAIL("shared as_create failed\n");
	pthread_t wt[64], xt[64];
	for (unsigned i = 0; i < nworkers; i++)
		pthread_create(&wt[i], NULL, worker_main, (void *)(uintptr_t)i);
	for (unsigned i = 0; i < nextenders; i++)
		pthread_create(&xt[i], NULL, extender_main, (void *)(uintptr_t)i);
	struct timespec ts = { (time_t)secs, (long)((secs - (time_t)secs) * 1e9) };
	nanosleep(&ts, NULL);
	/* On a loaded machine (sanitizers, tests in parallel) a short phase
	 * may end before the threads did much: go on until the run is not
	 * vacuous (see below), for at most 30 s more. */
	for (int i = 0; i < 600 && !stop && (nchecks < 10 || nkmaps < 10); i++) {
		struct timespec step = { 0, 50 * 1000 * 1000 };
		nanosleep(&step, NULL);
	}
	stop = 1;
	for (unsigned i = 0; i < nextenders; i++)
		pthread_join(xt[i], NULL);
	for (unsigned i = 0; i < nworkers; i++)
		pthread_join(wt[i], NULL);

	/* Quiescent now: every live space holds every reference entry (lazy:
	 * after one activation), and every mapped range translates. */
	uint64_t sv = seed;
	for (unsigned j = 0; j < NSHARED; j++) {
		if (d == PTK_KSYNC_LAZY)
			ptk_as_activate(shared[j]);
		unsigned miss = ptk_as_kernel_missing(shared[j]);
		if (miss)
			FAIL("%s: shared space %u misses %u entries at the end\n", names[d], j, miss);
		check_all(shared[j], &sv, "final");
	}
	struct ptk_kernel_stats ks;
	ptk_kernel_stats(ctx, &ks);
	for (unsigned j = 0; j < NSHARED; j++)
		ptk_as_destroy(shared[j]);
	for (unsigned i = 0; i < NRANGES; i++) {
		uint64_t st = state[i];
		if ((st & 3) == ST_MAPPED) {
			struct range r = range_of(i, st >> 2);
			if (ptk_kunmap(ctx, r.va, r.len))
				FAIL("final kunmap failed\n");
		}
	}
	uint64_t in_use, nfree, capacity;
	if (!stress_pool_back(ctx, &in_use, &nfree, &capacity))
		FAIL("%s: %" PRIu64 " frames in use beyond the kernel tables, %" PRIu64 "/%"
		     PRIu64 " free\n", names[d], in_use, nfree, capacity);
	struct ptk_kernel_stats ke;
	ptk_kernel_stats(ctx, &ke);
	if (ke.top_entries != ks.top_entries || ke.top_entries != ks.generation)
		FAIL("%s: top-level entries %" PRIu64 " -> %" PRIu64 ", generation %" PRIu64 "\n",
		     names[d], ks.top_entries, ke.top_entries, ks.generation);
	if (failures == fail0 && (nchecks < 10 || nkmaps < 10))
		FAIL("%s: vacuous run: %" PRIu64 " checks, %" PRIu64 " kmaps\n", names[d],
		     (uint64_t)nchecks, (uint64_t)nkmaps);
	ptk_ctx_destroy(ctx);
	printf("stress_kernel %s: %" PRIu64 " spaces created, %" PRIu64 " range checks (%"
	       PRIu64 " with a fault), %" PRIu64 " kmaps, %" PRIu64 " top-level entries added, "
	       "%" PRIu64 " syncs (%" PRIu64 " O(1)), %" PRIu64 " walks visiting %" PRIu64
	       " roots, filled: %" PRIu64 " late, %" PRIu64 " by walks, %" PRIu64
	       " at activation, %" PRIu64 " by faults; %" PRIu64 " -ENOMEM waits: %s\n",
	       names[d], (uint64_t)nspaces, (uint64_t)nchecks, (uint64_t)nfaults_checked,
	       (uint64_t)nkmaps, ks.generation, ks.syncs, ks.syncs_noop, ks.walks,
	       ks.walk_visited, ks.late_filled, ks.walk_filled, ks.activate_filled,
	       ks.fault_filled, (uint64_t)nretries, failures == fail0 ? "ok" : "FAILED");
	fflush(stdout);
	return failures != fail0;
}

int main(int argc, char **argv)
{
	seed = (uint64_t)time(NULL) ^ (uint64_t)getpid();
	const char *which = "all";
	int opt;
	while ((opt = getopt(argc, argv, "s:t:d:w:x:")) != -1) {
		switch (opt) {
		case 's': seed = strtoull(optarg, NULL, 0); break;
		case 't': seconds = atof(optarg); break;
		case 'd': which = optarg; break;
		case 'w': nworkers = (unsigned)atoi(optarg); break;
		case 'x': nextenders = (unsigned)atoi(optarg); break;
		default:
			fprintf(stderr, "usage: %s [-s SEED] [-t SECONDS] [-d eager|lazy|legacy|all]"
				" [-w WORKERS] [-x EXTENDERS]\n", argv[0]);
			return 2;
		}
	}
	if (nworkers < 1 || nworkers > 64 || nextenders < 1 || nextenders > 8) {
		fprintf(stderr, "stress_kernel: workers 1..64, extenders 1..8\n");
		return 2;
	}
	printf("stress_kernel: seed %" PRIu64 " (rerun with -s %" PRIu64 "), %u workers, "
	       "%u extenders, %.1f s\n", seed, seed, nworkers, nextenders, seconds);
	fflush(stdout);
	enum ptk_kernel_sync list[3];
	unsigned n = 0;
	for (unsigned d = 0; d < 3; d++)
		if (!strcmp(which, "all") || !strcmp(which, names[d]))
			list[n++] = (enum ptk_kernel_sync)d;
	if (!n) {
		fprintf(stderr, "stress_kernel: unknown design %s\n", which);
		return 2;
	}
	int passed = 0, failed = 0;
	unsigned phases = (unsigned)(seconds / n / 0.75);
	if (phases < 1)
		phases = 1;
	for (unsigned k = 0; k < n; k++) {
		int bad = 0;
		for (unsigned ph = 0; ph < phases && !bad; ph++)
			bad = run(list[k], seconds / n / phases);
		if (bad)
			failed++;
		else
			passed++;
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
