/*
 * stress_object.c - one object mapped shared and private in several
 * address spaces, faulted, written and read through software TLBs while
 * another thread truncates, punches and grows it, a mapper maps and
 * destroys address spaces of its own, and lockless walkers translate.
 *
 * Every 8-byte word a faulter writes holds a stamp: the page offset + 1
 * (bits 48..63), the writer (40..47) and a counter; faulter i writes only
 * word i of a page, through the shared mapping or its private copy.  The
 * truncater publishes a sequence (odd while an operation runs) and the
 * size after each operation.  Checks:
 *   - every word read through a translation is 0 or a stamp of that page
 *     (a freed frame is poisoned in debug builds, a recycled one carries
 *     another page's stamps): no CPU reads a frame after it was freed;
 *   - with the sequence unchanged around an operation: a word written
 *     through one address space's shared mapping reads back through
 *     another's; a private write reads back through the same mapping and
 *     is not seen through the shared one unless the word matched before;
 *     a fault gives -ENXIO exactly at offsets beyond the size;
 *   - once truncate returns, no address space translates an offset beyond the size, and the cache holds no page
 *     beyond it; walkers check the same locklessly with the sequence
 *     unchanged;
 *   - at the end every frame is back in the pool.
 * Runs for each reverse-map lock design the build offers (designs refused
 * with -EOPNOTSUPP are skipped, saying so), then once with the lazy TLB
 * mode and the legacy gather.
 *
 * Usage: stress_object [-s SEED] [-t SECONDS]
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

#define PG       UINT64_C(4096)
#define MAXP     64u                       /* object pages at most */
#define NAS      3u                        /* address spaces */
#define NF       3u                        /* faulter CPUs */
#define SH_VA    (UINT64_C(1) << 36)       /* shared mapping */
#define PR_VA    (UINT64_C(1) << 37)       /* private mapping */
#define MAP_VA   (UINT64_C(1) << 38)       /* the mapper's mappings */

static struct ptk_ctx *ctx;
static struct ptk_object *obj;
static struct ptk_as *spaces[NAS];
static _Atomic int stop;
static _Atomic unsigned long failures;
static uint64_t seed;
/* truncater state: seq odd while an operation runs; size after it */
static _Atomic uint64_t tseq, tsize;
static _Atomic uint64_t n_rw, n_readback, n_private, n_enxio, n_trunc, n_punch,
	n_beyond_checks, n_walks, n_walk_checks, n_maps;

#define FAIL(...) do { fprintf(stderr, __VA_ARGS__); failures++; stop = 1; } while (0)

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13; *s ^= *s >> 7; *s ^= *s << 17;
	return *s;
}

static uint64_t mkstamp(uint64_t p, unsigned w, uint64_t n)
{
	return ((p + 1) << 48) | ((uint64_t)w << 40) | (n & ((UINT64_C(1) << 40) - 1));
}

static bool stamp_ok(uint64_t v, uint64_t p)
{
	return v == 0 || ((v >> 48) == p + 1 && ((v >> 40) & 0xff) < NF);
}

static _Atomic uint64_t *word(const struct ptk_xlate *x, unsigned w)
{
	return (_Atomic uint64_t *)((uintptr_t)x->host & ~(uintptr_t)(PG - 1)) + w;
}

/* The truncater's state before an operation: its sequence (odd: an
 * operation runs, nothing is checked) and the size that goes with it.  No
 * waiting: a CPU must not wait for the truncater, which may be waiting
 * for that CPU's acknowledgement of a shootdown. */
static uint64_t state_begin(uint64_t *size)
{
	uint64_t s = atomic_load_explicit(&tseq, memory_order_acquire);
	*size = atomic_load_explicit(&tsize, memory_order_acquire);
	return s;
}

static bool state_same(uint64_t s)
{
	return !(s & 1) && atomic_load_explicit(&tseq, memory_order_acquire) == s;
}

/* ---- faulters: CPUs reading and writing through both mappings ------- */

struct faulter { unsigned id; uint64_t ops; };

static void check_page(const struct ptk_xlate *x, uint64_t p, const char *what)
{
	for (unsigned w = 0; w < NF + 1; w++) {
		uint64_t v = atomic_load_explicit(word(x, w), memory_order_relaxed);
		if (!stamp_ok(v, p) || (w == NF && v)) {
			FAIL("stress_object: %s page %" PRIu64 " word %u holds %#" PRIx64
			     " (freed or foreign frame)\n", what, p, w, v);
			return;
		}
	}
}

static void *faulter_main(void *arg)
{
	struct faulter *f = arg;
	uint64_t s = seed * 7919 + f->id + 1;
	struct ptk_cpu *cpu;
	if (ptk_cpu_register(ctx, &cpu)) {
		FAIL("stress_object: cpu register failed\n");
		return NULL;
	}
	unsigned cur = f->id % NAS;
	ptk_cpu_switch(cpu, spaces[cur]);
	uint64_t cnt = 0;
	while (!stop) {
		if (rnd(&s) % 64 == 0) {
			cur = (unsigned)(rnd(&s) % NAS);
			ptk_cpu_switch(cpu, spaces[cur]);
		}
		ptk_cpu_quiesce(cpu);   /* holds no translation from here */
		uint64_t p = rnd(&s) % MAXP, size;
		bool private = rnd(&s) % 3 == 0;
		bool write = rnd(&s) % 2;
		uint64_t va = (private ? PR_VA : SH_VA) + p * PG;
		uint64_t st = state_begin(&size);
		struct ptk_xlate x;
		int rc = ptk_tlb_translate_fault(cpu, va, write ? PTK_ACCESS_WRITE : PTK_ACCESS_READ, &x);
		f->ops++;
		if (rc == -ENXIO) {
			n_enxio++;
			if (state_same(st) && p < size / PG)
				FAIL("stress_object: -ENXIO at page %" PRIu64 " below size %" PRIu64 "\n",
				     p, size / PG);
			continue;
		}
		if (rc) {
			FAIL("stress_object: fault at page %" PRIu64 ": %d\n", p, rc);
			break;
		}
		if (state_same(st) && p >= size / PG)
			FAIL("stress_object: page %" PRIu64 " mapped beyond size %" PRIu64 "\n",
			     p, size / PG);
		check_page(&x, p, private ? "private" : "shared");
		n_rw++;
		if (!write)
			continue;
		uint64_t v = mkstamp(p, f->id, ++cnt);
		uint64_t before = atomic_load_explicit(word(&x, f->id), memory_order_relaxed);
		atomic_store_explicit(word(&x, f->id), v, memory_order_relaxed);
		ptk_cpu_quiesce(cpu);
		if (!private) {
			/* Read back through another space's shared mapping. */
			unsigned other = (cur + 1 + (unsigned)(rnd(&s) % (NAS - 1))) % NAS;
			ptk_cpu_switch(cpu, spaces[other]);
			rc = ptk_tlb_translate_fault(cpu, va, PTK_ACCESS_READ, &x);
			uint64_t got = rc ? 0 : atomic_load_explicit(word(&x, f->id),
								      memory_order_relaxed);
			if (state_same(st)) {
				if (rc || got != v)
					FAIL("stress_object: shared write %#" PRIx64 " at page %" PRIu64
					     " read back as %#" PRIx64 " (rc %d) in another space\n",
					     v, p, got, rc);
				n_readback++;
			}
			ptk_cpu_quiesce(cpu);
			ptk_cpu_switch(cpu, spaces[cur]);
		} else {
			/* The private copy keeps it; the shared page does not
			 * see it (unless it held the same word already). */
			rc = ptk_tlb_translate_fault(cpu, va, PTK_ACCESS_READ, &x);
			uint64_t got = rc ? 0 : atomic_load_explicit(word(&x, f->id),
								      memory_order_relaxed);
			ptk_cpu_quiesce(cpu);
			int rc2 = ptk_tlb_translate_fault(cpu, SH_VA + p * PG, PTK_ACCESS_READ, &x);
			uint64_t sh = rc2 ? 0 : atomic_load_explicit(word(&x, f->id),
								     memory_order_relaxed);
			ptk_cpu_quiesce(cpu);
			if (state_same(st)) {
				if (rc || got != v)
					FAIL("stress_object: private write %#" PRIx64 " at page %" PRIu64
					     " read back as %#" PRIx64 " (rc %d)\n", v, p, got, rc);
				if (sh == v && before != v)
					FAIL("stress_object: private write at page %" PRIu64
					     " reached the object\n", p);
				n_private++;
			}
		}
	}
	ptk_cpu_unregister(cpu);
	return NULL;
}

/* ---- truncater ---------------------------------------------------------- */

static void check_beyond(struct ptk_as *as, uint64_t size)
{
	for (uint64_t p = size / PG; p < MAXP; p++) {
		struct ptk_xlate x;
		if (ptk_translate(as, SH_VA + p * PG, &x) == 0 ||
		    ptk_translate(as, PR_VA + p * PG, &x) == 0)
			FAIL("stress_object: page %" PRIu64 " still mapped after truncate to %"
			     PRIu64 " pages\n", p, size / PG);
		n_beyond_checks++;
	}
}

static void *truncater_main(void *arg)
{
	(void)arg;
	uint64_t s = seed * 104729 + 17;
	while (!stop) {
		uint64_t r = rnd(&s) % 8;
		atomic_fetch_add_explicit(&tseq, 1, memory_order_acq_rel);   /* odd */
		uint64_t size = atomic_load_explicit(&tsize, memory_order_relaxed);
		int rc;
		if (r < 3) {
			size = (rnd(&s) % (MAXP + 1)) * PG;
			rc = ptk_object_truncate(obj, size);
			n_trunc++;
		} else if (r < 5) {
			uint64_t off = rnd(&s) % MAXP, len = 1 + rnd(&s) % 8;
			if (off + len > MAXP)
				len = MAXP - off;
			rc = ptk_object_punch(obj, off * PG, len * PG);
			n_punch++;
		} else {
			size = MAXP * PG;       /* grow back */
			rc = ptk_object_truncate(obj, size);
		}
		if (rc)
			FAIL("stress_object: truncate/punch failed: %d\n", rc);
		if (ptk_object_size(obj) != size)
			FAIL("stress_object: size %" PRIu64 " after truncate to %" PRIu64 "\n",
			     ptk_object_size(obj), size);
		/* Once it returned: nothing beyond the size anywhere. */
		for (unsigned i = 0; i < NAS; i++)
			check_beyond(spaces[i], size);
		struct ptk_object_stats st;
		ptk_object_stats(obj, &st);
		if (st.cached_pages > size / PG)
			FAIL("stress_object: %" PRIu64 " pages cached, size %" PRIu64 "\n",
			     st.cached_pages, size / PG);
		atomic_store_explicit(&tsize, size, memory_order_release);
		atomic_fetch_add_explicit(&tseq, 1, memory_order_acq_rel);   /* even */
		struct timespec ts = { 0, (long)(rnd(&s) % 2000) * 1000 };
		nanosleep(&ts, NULL);
	}
	return NULL;
}

/* ---- walkers: lockless translations ------------------------------------ */

static void *walker_main(void *arg)
{
	uint64_t s = seed * 31337 + (uintptr_t)arg;
	uint64_t cap;
	{
		struct ptk_pool_stats ps;
		ptk_pool_stats(ctx, &ps);
		cap = ps.capacity;
	}
	while (!stop) {
		uint64_t p = rnd(&s) % MAXP, size;
		struct ptk_as *as = spaces[rnd(&s) % NAS];
		uint64_t va = (rnd(&s) % 2 ? PR_VA : SH_VA) + p * PG;
		uint64_t st = state_begin(&size);
		struct ptk_xlate x;
		int rc = ptk_translate(as, va, &x);
		n_walks++;
		if (rc == 0 && x.pfn >= cap)
			FAIL("stress_object: walker read a frame outside the pool\n");
		if (state_same(st) && p >= size / PG) {
			n_walk_checks++;
			if (rc == 0)
				FAIL("stress_object: walker translated page %" PRIu64
				     " beyond size %" PRIu64 "\n", p, size / PG);
		}
	}
	return NULL;
}

/* ---- mapper: address spaces that come and go ----------------------------- */

static void *mapper_main(void *arg)
{
	(void)arg;
	uint64_t s = seed * 65537 + 3;
	while (!stop) {
		struct ptk_as *as;
		if (ptk_as_create(ctx, 4, &as)) {
			FAIL("stress_object: as create failed\n");
			break;
		}
		uint64_t va = MAP_VA, pva = MAP_VA + MAXP * PG;
		int rc = ptk_map_object(as, &va, MAXP * PG, PTK_PROT_READ | PTK_PROT_WRITE,
					PTK_MAP_FIXED | PTK_MAP_SHARED, obj, 0);
		if (!rc)
			rc = ptk_map_object(as, &pva, MAXP * PG, PTK_PROT_READ | PTK_PROT_WRITE,
					    PTK_MAP_FIXED | PTK_MAP_PRIVATE, obj, 0);
		if (rc)
			FAIL("stress_object: map failed: %d\n", rc);
		for (unsigned i = 0; i < 8 && !rc; i++) {
			uint64_t p = rnd(&s) % MAXP;
			/* Faults only: the mapper is no CPU, so it does not touch
			 * the memory (nothing keeps the frame after the fault). */
			int frc = ptk_fault(as, (i & 1 ? pva : va) + p * PG,
					    i & 2 ? PTK_ACCESS_WRITE : PTK_ACCESS_READ);
			if (frc && frc != -ENXIO)
				FAIL("stress_object: mapper fault: %d\n", frc);
		}
		if (rnd(&s) % 2)
			ptk_unmap(as, va, MAXP * PG);
		ptk_as_destroy(as);      /* the rest goes with the space */
		n_maps++;
	}
	return NULL;
}

/* ---- one run ------------------------------------------------------------- */

static const char *design_name(enum ptk_rmap_lock d)
{
	return d == PTK_RMAP_SPIN ? "spin" : "sleeping";
}

static int run(enum ptk_rmap_lock design, bool lazy, double seconds)
{
	struct ptk_ctx_config cfg;
	ptk_ctx_config_default(&cfg);
	cfg.pool_bytes = 64ull << 20;
	cfg.rmap_lock = design;
	if (lazy) {
		/* The other teardown designs: lazy TLB invalidation (pages
		 * wait for every CPU) and the legacy per-CPU gather. */
		cfg.tlb_mode = PTK_TLB_LAZY;
		cfg.gather_mode = PTK_GATHER_LEGACY;
	}
	int rc = ptk_ctx_create(&cfg, &ctx);
	if (rc == -EOPNOTSUPP) {
		printf("  rmap=%s: not built in (-EOPNOTSUPP), skipped\n", design_name(design));
		return 0;
	}
	if (rc || ptk_object_create(ctx, MAXP * PG, 0, &obj)) {
		fprintf(stderr, "stress_object: setup failed\n");
		failures++;
		return 1;
	}
	for (unsigned i = 0; i < NAS; i++) {
		uint64_t sva = SH_VA, pva = PR_VA;
		if (ptk_as_create(ctx, 4, &spaces[i]) ||
		    ptk_map_object(spaces[i], &sva, MAXP * PG, PTK_PROT_READ | PTK_PROT_WRITE,
				   PTK_MAP_FIXED | PTK_MAP_SHARED, obj, 0) ||
		    ptk_map_object(spaces[i], &pva, MAXP * PG, PTK_PROT_READ | PTK_PROT_WRITE,
				   PTK_MAP_FIXED | PTK_MAP_PRIVATE, obj, 0)) {
			fprintf(stderr, "stress_object: setup failed\n");
			failures++;
			return 1;
		}
	}
	stop = 0;
	tseq = 0;
	tsize = MAXP * PG;
	n_rw = n_readback = n_private = n_enxio = n_trunc = n_punch = 0;
	n_beyond_checks = n_walks = n_walk_checks = n_maps = 0;
	pthread_t ft[NF], tt, wt, mt;
	struct faulter f[NF];
	for (unsigned i = 0; i < NF; i++) {
		f[i] = (struct faulter){ .id = i };
		pthread_create(&ft[i], NULL, faulter_main, &f[i]);
	}
	pthread_create(&tt, NULL, truncater_main, NULL);
	pthread_create(&wt, NULL, walker_main, (void *)1);
	pthread_create(&mt, NULL, mapper_main, NULL);
	struct timespec ts = { (time_t)seconds, (long)((seconds - (time_t)seconds) * 1e9) };
	nanosleep(&ts, NULL);
	/* On a loaded machine (sanitizers, tests in parallel) a short phase
	 * may end before every check ran once: go on until each did, for at
	 * most 30 s more (then the check below fails: a thread made no
	 * progress at all). */
	for (int i = 0; i < 600 && (!n_readback || !n_private || !n_enxio || !n_trunc ||
				    !n_walk_checks || !n_maps); i++) {
		struct timespec step = { 0, 50 * 1000 * 1000 };
		nanosleep(&step, NULL);
	}
	stop = 1;
	uint64_t ops = 0;
	for (unsigned i = 0; i < NF; i++) {
		pthread_join(ft[i], NULL);
		ops += f[i].ops;
	}
	pthread_join(tt, NULL);
	pthread_join(wt, NULL);
	pthread_join(mt, NULL);
	ptk_object_release(obj);
	for (unsigned i = 0; i < NAS; i++)
		ptk_as_destroy(spaces[i]);
	uint64_t in_use, nfree, capacity;
	if (!stress_pool_back(ctx, &in_use, &nfree, &capacity))
		FAIL("stress_object: %" PRIu64 " frames still in use, %" PRIu64 "/%" PRIu64 " free\n",
		     in_use, nfree, capacity);
	ptk_ctx_destroy(ctx);
	printf("  rmap=%s%s: %" PRIu64 " faulter ops (%" PRIu64 " checked pages, %" PRIu64
	       " shared read-backs, %" PRIu64 " private read-backs, %" PRIu64 " -ENXIO), %"
	       PRIu64 " truncates, %" PRIu64 " punches, %" PRIu64 " beyond-size checks, %"
	       PRIu64 " walks (%" PRIu64 " beyond size), %" PRIu64 " mapper spaces\n",
	       design_name(design), lazy ? " tlb=lazy gather=legacy" : "", ops, (uint64_t)n_rw, (uint64_t)n_readback,
	       (uint64_t)n_private, (uint64_t)n_enxio, (uint64_t)n_trunc, (uint64_t)n_punch,
	       (uint64_t)n_beyond_checks, (uint64_t)n_walks, (uint64_t)n_walk_checks,
	       (uint64_t)n_maps);
	fflush(stdout);
	if (!n_readback || !n_private || !n_enxio || !n_trunc || !n_walk_checks || !n_maps)
		FAIL("stress_object: a check never ran\n");
	return 0;
}

int main(int argc, char **argv)
{
	seed = (uint64_t)time(NULL) ^ (uint64_t)getpid();
	double seconds = 3;
	int opt;
	while ((opt = getopt(argc, argv, "s:t:")) != -1) {
		switch (opt) {
		case 's': seed = strtoull(optarg, NULL, 0); break;
		case 't': seconds = atof(optarg); break;
		default:
			fprintf(stderr, "usage: %s [-s SEED] [-t SECONDS]\n", argv[0]);
			return 2;
		}
	}
	if (!seed)
		seed = 1;
	printf("stress_object: seed %" PRIu64 " (rerun with -s %" PRIu64 "), %.1f s\n",
	       seed, seed, seconds);
	fflush(stdout);
	run(PTK_RMAP_SLEEPING, false, seconds * 0.4);
	if (!failures)
		run(PTK_RMAP_SPIN, false, seconds * 0.4);
	if (!failures)
		run(PTK_RMAP_SLEEPING, true, seconds * 0.2);
	printf("%d passed, %d failed\n", failures == 0, failures != 0);
	return failures ? 1 : 0;
}
