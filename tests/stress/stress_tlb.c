/*
 * stress_tlb.c - shootdown torture: CPUs translate and touch pages through
 * their software TLBs while writer threads unmap, map, drop and re-protect
 * the same pages.
 *
 * Each writer owns a slice of SLICE_PAGES pages and publishes its state
 * (kind and a version bumped on every change) only after the operation
 * returned.  Every page holds a stamp derived from its address.  CPUs pick
 * random pages, read the state before and after each translation, and
 * check:
 *   - a value read through a translation is the page's stamp or zero (a
 *     freed frame is poisoned in debug builds, and recycled frames carry
 *     another page's stamp): no CPU reads a frame after it was freed;
 *   - with the state unchanged around the translation: an unmapped slice
 *     does not translate; a read-only slice does not translate for write
 *     (unmap and protect are in force when they return);
 * Writers check that the notifier saw every range (start and end, exact).
 * One writer is itself a CPU (self-invalidation, answering while it waits).
 * CPUs sometimes go quiet outside ptkit code (answered for while IDLE) and switch away.
 * A kernel writer kmaps and kunmaps a kernel slice, seen through the same
 * space, under the same checks (kunmap waits for BUSY CPUs in both modes).
 * First, for each TLB mode, one deterministic check that a CPU which
 * switched out of a space is ordered before that space's frees (see
 * check_switch_out).  Then runs every TLB mode, and the legacy gather, in turn.  At the end every
 * frame is back in the pool.
 *
 * Usage: stress_tlb [-s SEED] [-t SECONDS] [-c CPUS] [-w WRITERS]
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ptkit/ptkit.h"
#include "stress_common.h"

#define SLICE_PAGES 64u
#define SLICE       ((uint64_t)SLICE_PAGES << PTK_PAGE_SHIFT)
#define BASE        (UINT64_C(1) << 38)
#define MAXT        16
/* The kernel slice: kmapped and kunmapped by its own writer, seen through
 * every address space (state in slice_state[nwriters]). */
#define KBASE       (ptk_kernel_start(4) + (UINT64_C(1) << 32))

enum kind { K_CHANGING = 0, K_RW, K_RO, K_UNMAPPED };

static struct ptk_ctx *ctx;
static struct ptk_as *as;
static _Atomic int stop;
static _Atomic unsigned long failures;
static unsigned ncpus = 3, nwriters = 2;
static uint64_t seed;
static _Atomic uint64_t slice_state[MAXT + 1];
static _Atomic uint64_t reads, checks_unmapped, checks_ro, kernel_checks;

#define FAIL(...) do { fprintf(stderr, __VA_ARGS__); failures++; stop = 1; } while (0)

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13; *s ^= *s >> 7; *s ^= *s << 17;
	return *s;
}

static uint64_t stamp(uint64_t va) { return va ^ UINT64_C(0x5a5a000000000001); }

static void sleep_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };
	nanosleep(&ts, NULL);
}

/* ---- notifier: per-thread record of what was announced ---------------- */

static __thread uint64_t n_start_s, n_start_e, n_end_s, n_end_e, n_starts, n_ends;

static void nstart(struct ptk_notifier *n, struct ptk_as *a, uint64_t s, uint64_t e)
{
	(void)n; (void)a;
	n_start_s = s; n_start_e = e; n_starts++;
}

static void nend(struct ptk_notifier *n, struct ptk_as *a, uint64_t s, uint64_t e)
{
	(void)n; (void)a;
	n_end_s = s; n_end_e = e; n_ends++;
}

static const struct ptk_notifier_ops nops = { nstart, nend, NULL };

static void check_notified(unsigned id, const char *op, uint64_t s, uint64_t e)
{
	if (n_starts != n_ends || n_start_s != s || n_start_e != e ||
	    n_end_s != s || n_end_e != e)
		FAIL("writer %u: %s [%#" PRIx64 ", %#" PRIx64 ") notified as start [%#"
		     PRIx64 ", %#" PRIx64 ") end [%#" PRIx64 ", %#" PRIx64 ")\n", id, op,
		     s, e, n_start_s, n_start_e, n_end_s, n_end_e);
	n_start_s = n_start_e = n_end_s = n_end_e = 0;
}

/* ---- writers --------------------------------------------------------- */

static void set_state(unsigned id, enum kind k)
{
	uint64_t v = atomic_load(&slice_state[id]) >> 2;
	atomic_store_explicit(&slice_state[id], ((v + 1) << 2) | k, memory_order_release);
}

static void stamp_slice(struct ptk_cpu *cpu, uint64_t base)
{
	for (unsigned i = 0; i < SLICE_PAGES; i++) {
		uint64_t va = base + ((uint64_t)i << PTK_PAGE_SHIFT);
		struct ptk_xlate x;
		int rc = cpu ? ptk_tlb_translate(cpu, va, PTK_ACCESS_WRITE, &x)
			     : ptk_translate(as, va, &x);
		if (rc)
			FAIL("stamp: translate %#" PRIx64 " rc %d\n", va, rc);
		else
			atomic_store_explicit((_Atomic uint64_t *)x.host, stamp(va),
					      memory_order_relaxed);
	}
	if (cpu)
		ptk_cpu_quiesce(cpu);
}

struct writer { unsigned id; uint64_t ops; };

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	uint64_t s = seed * 7919 + w->id + 1;
	uint64_t base = BASE + w->id * SLICE;
	struct ptk_cpu *cpu = NULL;
	if (w->id == 0) {       /* this writer is a CPU too */
		if (ptk_cpu_register(ctx, &cpu))
			FAIL("writer: register failed\n");
		ptk_cpu_switch(cpu, as);
	}
	enum kind k = K_UNMAPPED;
	while (!stop) {
		unsigned op = rnd(&s) % 5;
		uint64_t va = base;
		int rc;
		if (k == K_UNMAPPED)
			op = 0;
		set_state(w->id, K_CHANGING);
		switch (op) {
		case 0: /* map (fixed, replacing), populate, stamp */
			rc = ptk_map_anon(as, &va, SLICE, PTK_PROT_READ | PTK_PROT_WRITE,
					  PTK_MAP_FIXED | PTK_MAP_POPULATE);
			if (rc)
				FAIL("writer %u: map rc %d\n", w->id, rc);
			if (k != K_UNMAPPED)
				check_notified(w->id, "map-replace", base, base + SLICE);
			stamp_slice(cpu, base);
			k = K_RW;
			break;
		case 1: /* unmap */
			rc = ptk_unmap(as, base, SLICE);
			if (rc)
				FAIL("writer %u: unmap rc %d\n", w->id, rc);
			check_notified(w->id, "unmap", base, base + SLICE);
			k = K_UNMAPPED;
			break;
		case 2: { /* drop part (pages read back zero) */
			uint64_t first = rnd(&s) % SLICE_PAGES, n = 1 + rnd(&s) % 16;
			if (first + n > SLICE_PAGES)
				n = SLICE_PAGES - first;
			uint64_t a = base + (first << PTK_PAGE_SHIFT);
			rc = ptk_drop(as, a, n << PTK_PAGE_SHIFT);
			if (rc)
				FAIL("writer %u: drop rc %d\n", w->id, rc);
			check_notified(w->id, "drop", a, a + (n << PTK_PAGE_SHIFT));
			break;
		}
		case 3: /* read-only */
			rc = ptk_protect(as, base, SLICE, PTK_PROT_READ);
			if (rc)
				FAIL("writer %u: protect ro rc %d\n", w->id, rc);
			check_notified(w->id, "protect", base, base + SLICE);
			k = K_RO;
			break;
		default: /* writable again */
			rc = ptk_protect(as, base, SLICE, PTK_PROT_READ | PTK_PROT_WRITE);
			if (rc)
				FAIL("writer %u: protect rw rc %d\n", w->id, rc);
			check_notified(w->id, "protect", base, base + SLICE);
			k = K_RW;
		}
		set_state(w->id, k);
		w->ops++;
		if (rnd(&s) % 4 == 0)
			sleep_us(50);
	}
	set_state(w->id, K_CHANGING);
	if (cpu)
		ptk_cpu_unregister(cpu);
	ptk_thread_unregister();
	return NULL;
}

/* The kernel writer: kmap the kernel slice (anonymous, stamped), kunmap
 * it.  Not a CPU.  Once kunmap returned no CPU translates the slice, and
 * no CPU reads its frames after they were freed. */
static void *kwriter_main(void *arg)
{
	_Atomic uint64_t *ops = arg;
	uint64_t s = seed * 6151 + 7;
	while (!stop) {
		uint64_t va = KBASE;
		set_state(nwriters, K_CHANGING);
		int rc = ptk_kmap_anon(ctx, &va, SLICE, PTK_PROT_READ | PTK_PROT_WRITE,
				       PTK_MAP_NOREPLACE);
		if (rc) {
			FAIL("kwriter: kmap rc %d\n", rc);
			break;
		}
		for (unsigned i = 0; i < SLICE_PAGES; i++) {
			uint64_t a = KBASE + ((uint64_t)i << PTK_PAGE_SHIFT);
			struct ptk_xlate x;
			if ((rc = ptk_translate(as, a, &x)))
				FAIL("kwriter: translate %#" PRIx64 " rc %d\n", a, rc);
			else
				atomic_store_explicit((_Atomic uint64_t *)x.host, stamp(a),
						      memory_order_relaxed);
		}
		set_state(nwriters, K_RW);
		sleep_us((long)(rnd(&s) % 200));
		set_state(nwriters, K_CHANGING);
		if ((rc = ptk_kunmap(ctx, KBASE, SLICE)))
			FAIL("kwriter: kunmap rc %d\n", rc);
		set_state(nwriters, K_UNMAPPED);
		(*ops)++;
		sleep_us((long)(rnd(&s) % 200));
	}
	ptk_thread_unregister();
	return NULL;
}

/* ---- CPUs -------------------------------------------------------------- */

struct cpu_arg { unsigned id; uint64_t n; struct ptk_cpu_stats st; };

static void *cpu_main(void *arg)
{
	struct cpu_arg *c = arg;
	uint64_t s = seed * 104729 + c->id + 1;
	struct ptk_cpu *cpu;
	if (ptk_cpu_register(ctx, &cpu)) {
		FAIL("cpu: register failed\n");
		return NULL;
	}
	ptk_cpu_switch(cpu, as);
	while (!stop) {
		unsigned sl = (unsigned)(rnd(&s) % (nwriters + 1));   /* last: kernel */
		uint64_t va = (sl == nwriters ? KBASE : BASE + sl * SLICE) +
			      ((rnd(&s) % SLICE_PAGES) << PTK_PAGE_SHIFT);
		bool write = rnd(&s) & 1;
		uint64_t s1 = atomic_load_explicit(&slice_state[sl], memory_order_acquire);
		struct ptk_xlate x;
		int rc = ptk_tlb_translate(cpu, va, write ? PTK_ACCESS_WRITE : PTK_ACCESS_READ, &x);
		if (rc == 0) {
			_Atomic uint64_t *p = (_Atomic uint64_t *)x.host;
			uint64_t v = atomic_load_explicit(p, memory_order_relaxed);
			if (v != 0 && v != stamp(va))
				FAIL("cpu %u: %#" PRIx64 " reads %#" PRIx64 ": a freed or foreign frame\n",
				     c->id, va, v);
			if (write && v == stamp(va))
				atomic_store_explicit(p, v, memory_order_relaxed);
			reads++;
		}
		uint64_t s2 = atomic_load_explicit(&slice_state[sl], memory_order_acquire);
		if (s1 == s2 && (s1 & 3) == K_UNMAPPED) {
			checks_unmapped++;
			if (rc == 0)
				FAIL("cpu %u: %#" PRIx64 " translates after its unmap returned\n",
				     c->id, va);
			if (sl == nwriters)
				kernel_checks++;
		}
		if (s1 == s2 && (s1 & 3) == K_RO && write) {
			checks_ro++;
			if (rc == 0)
				FAIL("cpu %u: %#" PRIx64 " writable after protect returned\n", c->id, va);
		}
		c->n++;
		unsigned r = (unsigned)(rnd(&s) % 4096);
		if (r == 0) {           /* quiet, outside ptkit code: answered for */
			ptk_cpu_quiesce(cpu);
			sleep_us(300);
		} else if (r == 1) {    /* switch away and back */
			ptk_cpu_switch(cpu, NULL);
			sleep_us(100);
			ptk_cpu_switch(cpu, as);
		}
	}
	ptk_cpu_stats(cpu, &c->st);
	ptk_cpu_unregister(cpu);
	ptk_thread_unregister();
	return NULL;
}

/* ---- a CPU that switched out is ordered before the frees -------------- */

/* The leaver writes a page of space A through its TLB, switches to space B
 * and tells the main thread with relaxed stores only (no happens-before
 * edge of the test's own).  The main thread, itself a CPU in A so A's mask
 * is not empty, then unmaps the page and the frame is freed (and poisoned,
 * contracts builds).  The flush must order the leaver's last use before
 * the free through A's mask (the leaver's release when it cleared its
 * bit): under TSan a missing acquire is reported as a race between the
 * leaver's write and the poisoning.  In every build: the unmap returns,
 * the frame goes back to the pool, and the leaver's translation of the
 * page in B fails. */
static _Atomic int leave_phase;
static struct ptk_as *leave_a, *leave_b;
#define LEAVE_VA (BASE + (UINT64_C(1) << 30))

static void *leaver_main(void *arg)
{
	(void)arg;
	struct ptk_cpu *cpu;
	struct ptk_xlate x;
	if (ptk_cpu_register(ctx, &cpu)) {
		FAIL("stress_tlb: leaver cpu register failed\n");
		atomic_store_explicit(&leave_phase, 1, memory_order_relaxed);
		return NULL;
	}
	ptk_cpu_switch(cpu, leave_a);
	int rc = ptk_tlb_translate_fault(cpu, LEAVE_VA, PTK_ACCESS_WRITE, &x);
	if (rc)
		FAIL("stress_tlb: leaver fault: %d\n", rc);
	else
		atomic_store_explicit((_Atomic uint64_t *)x.host, stamp(LEAVE_VA),
				      memory_order_relaxed);
	ptk_cpu_switch(cpu, leave_b);
	atomic_store_explicit(&leave_phase, 1, memory_order_relaxed);
	while (atomic_load_explicit(&leave_phase, memory_order_relaxed) != 2)
		sched_yield();
	if (ptk_tlb_translate(cpu, LEAVE_VA, PTK_ACCESS_READ, &x) == 0)
		FAIL("stress_tlb: space B translates space A's page\n");
	ptk_cpu_quiesce(cpu);
	ptk_cpu_switch(cpu, NULL);
	ptk_cpu_unregister(cpu);
	return NULL;
}

static void check_switch_out(enum ptk_tlb_mode tlb)
{
	struct ptk_ctx_config cfg;
	ptk_ctx_config_default(&cfg);
	cfg.pool_bytes = 16ull << 20;
	cfg.tlb_mode = tlb;
	struct ptk_cpu *self;
	uint64_t va = LEAVE_VA;
	if (ptk_ctx_create(&cfg, &ctx) || ptk_as_create(ctx, 4, &leave_a) ||
	    ptk_as_create(ctx, 4, &leave_b) ||
	    ptk_map_anon(leave_a, &va, PTK_PAGE_SIZE, PTK_PROT_READ | PTK_PROT_WRITE,
		    PTK_MAP_FIXED) || ptk_cpu_register(ctx, &self)) {
		fprintf(stderr, "stress_tlb: switch-out setup failed\n");
		failures++;
		return;
	}
	ptk_cpu_switch(self, leave_a);
	atomic_store_explicit(&leave_phase, 0, memory_order_relaxed);
	pthread_t t;
	pthread_create(&t, NULL, leaver_main, NULL);
	while (atomic_load_explicit(&leave_phase, memory_order_relaxed) != 1)
		sched_yield();
	int rc = ptk_unmap(leave_a, LEAVE_VA, PTK_PAGE_SIZE);
	if (rc)
		FAIL("stress_tlb: switch-out unmap: %d\n", rc);
	atomic_store_explicit(&leave_phase, 2, memory_order_relaxed);
	pthread_join(t, NULL);
	ptk_cpu_switch(self, NULL);
	ptk_cpu_unregister(self);
	ptk_as_destroy(leave_a);
	ptk_as_destroy(leave_b);
	uint64_t in_use, nfree, capacity;
	if (!stress_pool_back(ctx, &in_use, &nfree, &capacity))
		FAIL("stress_tlb: switch-out: %" PRIu64 " frames still in use, %" PRIu64 "/%" PRIu64
		     " free\n", in_use, nfree, capacity);
	ptk_ctx_destroy(ctx);
	printf("  tlb=%s: switch-out ordering checked\n", tlb == PTK_TLB_SYNC ? "sync" : "lazy");
	fflush(stdout);
}

static int run(enum ptk_tlb_mode tlb, enum ptk_gather_mode gm, double seconds)
{
	struct ptk_ctx_config cfg;
	ptk_ctx_config_default(&cfg);
	cfg.pool_bytes = 64ull << 20;
	cfg.tlb_mode = tlb;
	cfg.gather_mode = gm;
	if (ptk_ctx_create(&cfg, &ctx) || ptk_as_create(ctx, 4, &as)) {
		fprintf(stderr, "stress_tlb: setup failed\n");
		return 1;
	}
	struct ptk_notifier nt = { .ops = &nops };
	ptk_notifier_register(as, &nt);
	stop = 0;
	reads = checks_unmapped = checks_ro = kernel_checks = 0;
	for (unsigned i = 0; i <= MAXT; i++)
		slice_state[i] = K_UNMAPPED;
	pthread_t wt[MAXT], ct[MAXT];
	struct writer w[MAXT];
	struct cpu_arg c[MAXT];
	for (unsigned i = 0; i < nwriters; i++) {
		w[i] = (struct writer){ .id = i };
		pthread_create(&wt[i], NULL, writer_main, &w[i]);
	}
	for (unsigned i = 0; i < ncpus; i++) {
		c[i] = (struct cpu_arg){ .id = i };
		pthread_create(&ct[i], NULL, cpu_main, &c[i]);
	}
	pthread_t kt;
	_Atomic uint64_t kops = 0;
	pthread_create(&kt, NULL, kwriter_main, &kops);
	struct timespec ts = { (time_t)seconds, (long)((seconds - (time_t)seconds) * 1e9) };
	nanosleep(&ts, NULL);
	/* On a loaded machine (sanitizers, tests in parallel) a short phase
	 * may end before every check ran once: go on until each did, for at
	 * most 30 s more (then the check below fails). */
	for (int i = 0; i < 600 && !stop && (!checks_unmapped || !checks_ro || !reads ||
					      !kops || !kernel_checks); i++) {
		struct timespec step = { 0, 50 * 1000 * 1000 };
		nanosleep(&step, NULL);
	}
	stop = 1;
	uint64_t ops = 0, xl = 0, answered = 0, inval = 0;
	for (unsigned i = 0; i < nwriters; i++) {
		pthread_join(wt[i], NULL);
		ops += w[i].ops;
	}
	pthread_join(kt, NULL);
	for (unsigned i = 0; i < ncpus; i++) {
		pthread_join(ct[i], NULL);
		xl += c[i].n;
		answered += c[i].st.remote_answers;
		inval += c[i].st.invalidations;
	}
	ptk_notifier_unregister(as, &nt);
	ptk_as_destroy(as);
	uint64_t in_use, nfree, capacity;
	if (!stress_pool_back(ctx, &in_use, &nfree, &capacity))
		FAIL("stress_tlb: %" PRIu64 " frames still in use, %" PRIu64 "/%" PRIu64 " free\n",
		     in_use, nfree, capacity);
	ptk_ctx_destroy(ctx);
	printf("  tlb=%s gather=%s: %" PRIu64 " writer ops, %" PRIu64 " translations, %" PRIu64
	       " reads, %" PRIu64 " unmapped checks, %" PRIu64 " read-only checks, %" PRIu64
	       " invalidations served, %" PRIu64 " answered for while idle, %" PRIu64
	       " kmap+kunmap (%" PRIu64 " kernel unmapped checks)\n",
	       tlb == PTK_TLB_SYNC ? "sync" : "lazy", gm == PTK_GATHER_STACK ? "stack" : "legacy",
	       ops, xl, (uint64_t)reads, (uint64_t)checks_unmapped, (uint64_t)checks_ro, inval, answered,
	       (uint64_t)kops, (uint64_t)kernel_checks);
	fflush(stdout);
	if (!checks_unmapped || !checks_ro || !reads || !kops || !kernel_checks)
		FAIL("stress_tlb: a check never ran\n");
	return 0;
}

int main(int argc, char **argv)
{
	seed = (uint64_t)time(NULL) ^ (uint64_t)getpid();
	double seconds = 3;
	int opt;
	while ((opt = getopt(argc, argv, "s:t:c:w:")) != -1) {
		switch (opt) {
		case 's': seed = strtoull(optarg, NULL, 0); break;
		case 't': seconds = atof(optarg); break;
		case 'c': ncpus = (unsigned)atoi(optarg); break;
		case 'w': nwriters = (unsigned)atoi(optarg); break;
		default:
			fprintf(stderr, "usage: %s [-s SEED] [-t SECONDS] [-c CPUS] [-w WRITERS]\n", argv[0]);
			return 2;
		}
	}
	if (nwriters < 1 || nwriters > MAXT || ncpus < 1 || ncpus > MAXT) {
		fprintf(stderr, "stress_tlb: writers and cpus must be 1..%d\n", MAXT);
		return 2;
	}
	if (!seed)
		seed = 1;
	printf("stress_tlb: seed %" PRIu64 " (rerun with -s %" PRIu64 "), %u CPUs, %u writers, %.1f s\n",
	       seed, seed, ncpus, nwriters, seconds);
	fflush(stdout);
	check_switch_out(PTK_TLB_SYNC);
	if (!failures)
		check_switch_out(PTK_TLB_LAZY);
	if (!failures)
		run(PTK_TLB_SYNC, PTK_GATHER_STACK, seconds * 0.4);
	if (!failures)
		run(PTK_TLB_LAZY, PTK_GATHER_STACK, seconds * 0.4);
	if (!failures)
		run(PTK_TLB_SYNC, PTK_GATHER_LEGACY, seconds * 0.2);
	printf("%d passed, %d failed\n", failures == 0, failures != 0);
	return failures ? 1 : 0;
}
