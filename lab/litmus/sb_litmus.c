/*
 * sb_litmus.c -- store-buffering litmus test in ptkit terms.
 *
 * ptkit's "eager" kernel-half propagation has two sides:
 *
 *   creator  (new address space)      extender (new kernel-half entry)
 *     publish mm in the registry        write reference entry
 *     [fence C]                         [fence X]
 *     read reference entry              walk registry (read it)
 *
 * Each side stores, then loads what the other side stores.  This is the
 * store-buffering (SB) shape: on x86 (TSO) a store can sit in the CPU's
 * store buffer while a later load to another address is satisfied from
 * the cache, so without a full fence on BOTH sides each side can miss the
 * other's store.  In ptkit that outcome means the new root never gets the
 * entry: the creator read it as empty and the extender's walk did not see
 * the new address space.  Fence C pairs with fence X; neither alone helps.
 *
 * Measurement: two threads (pinned to CPUs 0 and 1 when possible) run the
 * pattern once per iteration.  Iterations are grouped in batches of B
 * (default 1024).  Iteration j of a batch uses its own pair of slots,
 * registry[j] and ref_entry[j] (two separate arrays, so the two locations
 * of one iteration are on different cache lines), which lets both threads
 * run through the batch back to back with no per-iteration handshake: a
 * handshake per iteration costs a cache-line round trip and leaves one
 * side well ahead of the other, which hides the race.  The only
 * synchronisation is a two-sided barrier at the start of each batch.
 *
 * The "x = y = 0" reset of the textbook test is done by a sequence number
 * instead: in batch b both sides store b + 1, so a load that returns less
 * than b + 1 saw only an older batch's store (the "still 0" outcome), and
 * nothing has to be cleared between batches.  The batch barrier makes the
 * previous batch's stores old: a side enters batch b + 1 only after the
 * other side has finished batch b.
 *
 * Build:  cc -std=c11 -O2 -pthread -o sb_litmus sb_litmus.c
 * Run:    ./sb_litmus [-n ITERATIONS] [-m MODE] [-b BATCH]
 *         MODE: both, no-creator, no-extender, none, wmb, all (default all)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pthread_setaffinity_np, CPU_SET */
#endif

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_ITERATIONS 10000000UL
#define DEFAULT_BATCH 1024UL
#define MAX_BATCH (1UL << 20)
#define CACHE_LINE 64

enum fence_kind {
	FENCE_NONE, /* nothing at all */
	FENCE_WMB,  /* release fence: orders earlier accesses before later
		     * stores only; on x86 it emits no instruction (a compiler
		     * barrier), like smp_wmb() there */
	FENCE_FULL, /* seq_cst fence: mfence or a locked op on x86; drains
		     * the store buffer before the following load */
};

static const char *const fence_name[] = {
	[FENCE_NONE] = "none",
	[FENCE_WMB] = "release",
	[FENCE_FULL] = "seq_cst",
};

struct mode {
	const char *name;
	enum fence_kind creator; /* fence C */
	enum fence_kind extender; /* fence X */
};

static const struct mode modes[] = {
	{ "both", FENCE_FULL, FENCE_FULL },
	{ "no-creator", FENCE_NONE, FENCE_FULL },
	{ "no-extender", FENCE_FULL, FENCE_NONE },
	{ "none", FENCE_NONE, FENCE_NONE },
	{ "wmb", FENCE_WMB, FENCE_WMB },
};
#define NMODES (sizeof(modes) / sizeof(modes[0]))

/*
 * Shared locations.
 *   registry[j]:  slot j of the creator's store ("mm is published"), read
 *                 by the extender's registry walk
 *   ref_entry[j]: slot j of the extender's store ("entry installed"), read
 *                 by the creator's late init
 *   *_arrived:    batch barrier: side S has started batch b once
 *                 S_arrived >= b + 1 (release store, acquire load), which
 *                 also means it has finished batch b - 1
 */
static atomic_ulong *registry;
static atomic_ulong *ref_entry;
static struct {
	alignas(CACHE_LINE) atomic_ulong creator_arrived;
	alignas(CACHE_LINE) atomic_ulong extender_arrived;
} shared;

struct side {
	const char *name;
	int cpu;
	enum fence_kind fence;
	unsigned long iterations;
	unsigned long batch;
	atomic_ulong *mine;       /* slots this side stores to */
	atomic_ulong *theirs;     /* slots this side loads */
	atomic_ulong *my_arrived;
	atomic_ulong *their_arrived;
	unsigned char *missed;    /* missed[i]: load in iteration i saw an
				   * older value than the other side's store */
	int pin_error;            /* errno of a failed pin, 0 if pinned */
};

static inline void fence(enum fence_kind k)
{
	switch (k) {
	case FENCE_FULL:
		atomic_thread_fence(memory_order_seq_cst);
		break;
	case FENCE_WMB:
		atomic_thread_fence(memory_order_release);
		break;
	case FENCE_NONE:
		break;
	}
}

/* The loop body of one side.  Called with a constant fence kind from the
 * three wrappers below so the compiler can drop the switch. */
static inline void side_loop(struct side *s, enum fence_kind k)
{
	for (unsigned long base = 0, b = 0; base < s->iterations;
	     base += s->batch, b++) {
		unsigned long seq = b + 1;
		unsigned long len = s->iterations - base;

		if (len > s->batch)
			len = s->batch;

		/* batch barrier: both sides start batch b together */
		atomic_store_explicit(s->my_arrived, seq, memory_order_release);
		while (atomic_load_explicit(s->their_arrived,
					    memory_order_acquire) < seq)
			;

		for (unsigned long j = 0; j < len; j++) {
			/* the protocol: store, [fence], load.  A full fence
			 * here pairs with the full fence on the other side. */
			atomic_store_explicit(&s->mine[j], seq,
					      memory_order_relaxed);
			fence(k);
			unsigned long seen = atomic_load_explicit(
				&s->theirs[j], memory_order_relaxed);

			s->missed[base + j] = seen < seq;
		}
	}
}

static void side_none(struct side *s) { side_loop(s, FENCE_NONE); }
static void side_wmb(struct side *s) { side_loop(s, FENCE_WMB); }
static void side_full(struct side *s) { side_loop(s, FENCE_FULL); }

static void *side_main(void *arg)
{
	struct side *s = arg;
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(s->cpu, &set);
	s->pin_error = pthread_setaffinity_np(pthread_self(), sizeof(set),
					      &set);

	switch (s->fence) {
	case FENCE_NONE:
		side_none(s);
		break;
	case FENCE_WMB:
		side_wmb(s);
		break;
	case FENCE_FULL:
		side_full(s);
		break;
	}
	return NULL;
}

struct result {
	unsigned long both_missed;     /* the bad outcome */
	unsigned long creator_missed;  /* creator read the entry as empty */
	unsigned long walk_missed;     /* extender's walk missed the mm */
	double seconds;
};

static int run_mode(const struct mode *m, unsigned long n,
		    unsigned long batch,
		    unsigned char *creator_missed,
		    unsigned char *extender_missed, struct result *r)
{
	struct side creator = {
		.name = "creator", .cpu = 0, .fence = m->creator,
		.iterations = n, .batch = batch,
		.mine = registry, .theirs = ref_entry,
		.my_arrived = &shared.creator_arrived,
		.their_arrived = &shared.extender_arrived,
		.missed = creator_missed,
	};
	struct side extender = {
		.name = "extender", .cpu = 1, .fence = m->extender,
		.iterations = n, .batch = batch,
		.mine = ref_entry, .theirs = registry,
		.my_arrived = &shared.extender_arrived,
		.their_arrived = &shared.creator_arrived,
		.missed = extender_missed,
	};
	pthread_t ta, tb;
	struct timespec t0, t1;
	int err;

	for (unsigned long j = 0; j < batch; j++) {
		atomic_store(&registry[j], 0);
		atomic_store(&ref_entry[j], 0);
	}
	atomic_store(&shared.creator_arrived, 0);
	atomic_store(&shared.extender_arrived, 0);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	err = pthread_create(&ta, NULL, side_main, &creator);
	if (err) {
		fprintf(stderr, "pthread_create: %s\n", strerror(err));
		return -1;
	}
	err = pthread_create(&tb, NULL, side_main, &extender);
	if (err) {
		fprintf(stderr, "pthread_create: %s\n", strerror(err));
		/* the creator cannot finish without its partner */
		exit(1);
	}
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);

	static int warned;
	if (!warned && (creator.pin_error || extender.pin_error)) {
		fprintf(stderr, "warning: could not pin threads to CPUs 0 and 1"
			" (%s); running unpinned\n",
			strerror(creator.pin_error ? creator.pin_error
						   : extender.pin_error));
		warned = 1;
	}

	memset(r, 0, sizeof(*r));
	for (unsigned long i = 0; i < n; i++) {
		r->creator_missed += creator_missed[i];
		r->walk_missed += extender_missed[i];
		r->both_missed += creator_missed[i] & extender_missed[i];
	}
	r->seconds = (double)(t1.tv_sec - t0.tv_sec) +
		     (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	return 0;
}

static int parse_count(const char *opt, const char *arg, unsigned long max,
		       unsigned long *out)
{
	char *end;

	errno = 0;
	unsigned long v = strtoul(arg, &end, 10);
	if (errno || *end || end == arg || arg[0] == '-' || v == 0 ||
	    v > max) {
		fprintf(stderr, "bad %s value: %s\n", opt, arg);
		return -1;
	}
	*out = v;
	return 0;
}

/* one array of batch slots, on its own cache lines */
static atomic_ulong *alloc_slots(unsigned long batch)
{
	size_t bytes = batch * sizeof(atomic_ulong);

	bytes = (bytes + CACHE_LINE - 1) / CACHE_LINE * CACHE_LINE;
	atomic_ulong *p = aligned_alloc(CACHE_LINE, bytes);
	if (p)
		for (unsigned long j = 0; j < batch; j++)
			atomic_init(&p[j], 0);
	return p;
}

static void usage(FILE *f, const char *prog)
{
	fprintf(f,
		"usage: %s [-n ITERATIONS] [-m MODE] [-b BATCH]\n"
		"  -n N     iterations per mode (default %lu)\n"
		"  -b B     iterations per batch, 1..%lu (default %lu)\n"
		"  -m MODE  both | no-creator | no-extender | none | wmb | all"
		" (default all)\n"
		"    both         full fence on the creator and the extender\n"
		"    no-creator   full fence on the extender only\n"
		"    no-extender  full fence on the creator only\n"
		"    none         no fence on either side\n"
		"    wmb          release (write-barrier-like) fence on each"
		" side\n",
		prog, DEFAULT_ITERATIONS, MAX_BATCH, DEFAULT_BATCH);
}

int main(int argc, char **argv)
{
	unsigned long n = DEFAULT_ITERATIONS;
	unsigned long batch = DEFAULT_BATCH;
	const char *mode_arg = "all";
	int opt;

	while ((opt = getopt(argc, argv, "n:m:b:h")) != -1) {
		switch (opt) {
		case 'n':
			if (parse_count("-n", optarg, ~0UL, &n))
				return 2;
			break;
		case 'b':
			if (parse_count("-b", optarg, MAX_BATCH, &batch))
				return 2;
			break;
		case 'm':
			mode_arg = optarg;
			break;
		case 'h':
			usage(stdout, argv[0]);
			return 0;
		default:
			usage(stderr, argv[0]);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr, argv[0]);
		return 2;
	}

	const struct mode *selected[NMODES];
	size_t nsel = 0;
	for (size_t i = 0; i < NMODES; i++)
		if (!strcmp(mode_arg, "all") || !strcmp(mode_arg, modes[i].name))
			selected[nsel++] = &modes[i];
	if (nsel == 0) {
		fprintf(stderr, "unknown mode: %s\n", mode_arg);
		usage(stderr, argv[0]);
		return 2;
	}

	unsigned char *cm = calloc(n, 1), *em = calloc(n, 1);
	registry = alloc_slots(batch);
	ref_entry = alloc_slots(batch);
	if (!cm || !em || !registry || !ref_entry) {
		fprintf(stderr, "out of memory for %lu iterations\n", n);
		return 1;
	}

	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	printf("sb_litmus: store buffering in ptkit terms, %lu iterations"
	       " per mode (batches of %lu), %ld online CPUs\n", n, batch, ncpu);
	printf("  creator  (CPU 0): publish mm in registry; [fence C];"
	       " read reference entry\n");
	printf("  extender (CPU 1): write reference entry;   [fence X];"
	       " walk registry\n");
	printf("  miss = creator read the entry as empty AND the walk"
	       " missed the new mm\n\n");
	printf("%-12s %-8s %-8s %12s %10s %12s %14s %12s %8s\n",
	       "mode", "fence C", "fence X", "iterations", "misses",
	       "per million", "creator-empty", "walk-missed", "seconds");
	fflush(stdout);

	for (size_t i = 0; i < nsel; i++) {
		const struct mode *m = selected[i];
		struct result r;

		if (run_mode(m, n, batch, cm, em, &r))
			return 1;
		printf("%-12s %-8s %-8s %12lu %10lu %12.2f %14lu %12lu %8.2f\n",
		       m->name, fence_name[m->creator], fence_name[m->extender],
		       n, r.both_missed, (double)r.both_missed * 1e6 / (double)n,
		       r.creator_missed, r.walk_missed, r.seconds);
		fflush(stdout);
	}

	free(cm);
	free(em);
	free(registry);
	free(ref_entry);
	return 0;
}
