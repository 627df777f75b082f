/*
 * torture_walk.c - lockless walkers and fast pins against writers that map,
 * unmap, split, collapse, drop (empty-table reclaim) and protect.
 *
 * The address space is cut into 4 MiB slots (two PMD entries each; 128
 * slots share PMD tables, so reclaim of one slot's tables races with the
 * neighbours').  Each writer owns the slots i with i % writers == id and
 * cycles each through: empty -> anonymous (huge-capable) or special
 * (huge leaves) -> faults, splits, collapses, drops, protects -> unmap.
 *
 * Checks (each counts as a failure, with the seed to replay):
 *   - no reader reads a freed table: debug builds poison freed table pages
 *     and the walker aborts on the poison;
 *   - every snapshot a reader returns is a value the entry really held:
 *     a present leaf with known bits only, its frame aligned to its page
 *     size; special leaves map exactly the frame number the slot's mapping
 *     gives va (split and collapse never change it);
 *   - every pinned frame stays valid until unpinned: its contents are
 *     0 or the tag its writer stores for that address, never the poison of
 *     a freed page or another address's tag, read twice around a pause;
 *   - writers check their own results (a collapse succeeds only inside one
 *     region, -EINVAL across two, and a collapse that succeeds gives a
 *     2 MiB leaf, an unmap leaves nothing);
 *   - at the end every frame and table page is back in the pool.
 *
 * In the RCU design, reader 0 is a QSBR-style reader (rcu.h): online
 * throughout, reporting a quiescent state after each operation.
 *
 * Usage: torture_walk [-s SEED] [-t SECONDS] [-w WRITERS] [-r READERS] [-m rcu|ipi]
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

#define SLOT      (UINT64_C(4) << 20)
#define NSLOTS    128u
#define BASE      (UINT64_C(1) << 39)                /* 512 GiB: own PUD */
#define SPFN      ((UINT64_C(1) << 30) + 512)        /* special frames: 2 MiB aligned */
#define POISON64  UINT64_C(0x6b6b6b6b6b6b6b6b)
#define KNOWN     (PTK_PTE_PRESENT | PTK_PTE_WRITE | PTK_PTE_USER | PTK_PTE_ACCESSED | \
		   PTK_PTE_DIRTY | PTK_PTE_LEAF | PTK_PTE_SPECIAL | PTK_PTE_PFN_MASK)

enum slot_kind { EMPTY, ANON, SPECIAL };

static struct ptk_as *as;
static struct ptk_ctx *ctx;
static _Atomic int stop;
static _Atomic unsigned long failures;
static unsigned nwriters = 2, nreaders = 2;
static double seconds = 3;
static uint64_t seed;
static enum ptk_walk_mode walk_mode = PTK_WALK_RCU;

#define FAIL(...) do { fprintf(stderr, __VA_ARGS__); failures++; stop = 1; } while (0)

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13; *s ^= *s >> 7; *s ^= *s << 17;
	return *s;
}

static uint64_t tag_of(uint64_t va) { return (va >> PTK_PAGE_SHIFT) ^ UINT64_C(0x5157000000000000); }
static uint64_t special_pfn(uint64_t va) { return SPFN + ((va - BASE) >> PTK_PAGE_SHIFT); }

/* Counters per thread kind (for the summary). */
static _Atomic uint64_t n_lookups, n_pins, n_ops, n_splits, n_collapses, n_drops;

/* ---- readers --------------------------------------------------------- */

static void check_snapshot(uint64_t va, const struct ptk_xlate *x)
{
	ptk_pte_t e = x->pte;
	if (!ptk_pte_is_leaf(e) || (e & ~KNOWN) || x->level > 2 ||
	    x->page_size != (UINT64_C(4096) << (9 * x->level)) ||
	    (ptk_pte_pfn(e) & ((x->page_size >> PTK_PAGE_SHIFT) - 1))) {
		FAIL("reader: bad snapshot %#" PRIx64 " level %u at %#" PRIx64 "\n",
		     e, x->level, va);
		return;
	}
	if (ptk_pte_special(e)) {
		if (x->pfn != special_pfn(va) || x->host)
			FAIL("reader: special %#" PRIx64 " maps pfn %#" PRIx64 ", never held %#" PRIx64 "\n",
			     va, x->pfn, special_pfn(va));
	} else if (!x->host) {
		FAIL("reader: anonymous leaf outside the pool at %#" PRIx64 "\n", va);
	}
}

static void check_pinned(uint64_t va, uint64_t pfn, const char *when)
{
	/* Relaxed atomics: a writer may store the same tag meanwhile. */
	uint64_t v = __atomic_load_n((uint64_t *)ptk_pfn_host(ctx, pfn), __ATOMIC_RELAXED);
	if (v != 0 && v != tag_of(va))
		FAIL("reader: pinned frame %#" PRIx64 " of %#" PRIx64 " holds %#" PRIx64 " %s%s\n",
		     pfn, va, v, when, v == POISON64 ? " (freed!)" : "");
}

/* A walker that follows the reader rules by hand, with pauses between
 * levels: it holds table pointers long enough for a broken grace period
 * (a table freed while it is inside) to show as poison (debug builds) or
 * as garbage (any build). */
static void slow_walk(uint64_t va)
{
	const ptk_slot_t *table = ptk_as_root_slots(as);
	for (unsigned level = ptk_as_levels(as) - 1;; level--) {
		ptk_pte_t e = ptk_pte_load(&table[ptk_level_index(va, level)]);
		if (e == PTK_PTE_POISON) {
			FAIL("reader: read a freed table at level %u for %#" PRIx64 "\n", level, va);
			return;
		}
		if (!ptk_pte_present(e) || (e & PTK_PTE_LEAF)) {
			/* Hold on to this table: read its other slots, each
			 * once, pausing now and then. */
			for (unsigned i = 0; i < PTK_TABLE_SLOTS; i++) {
				if (ptk_pte_load(&table[i]) == PTK_PTE_POISON) {
					FAIL("reader: table freed under a walker (level %u, %#" PRIx64 ")\n",
					     level, va);
					return;
				}
				if (i % 128 == 127)
					sched_yield();
			}
		}
		if (!ptk_pte_present(e))
			return;
		if (e & PTK_PTE_LEAF) {
			struct ptk_xlate x = { .pte = e, .level = level,
				.page_size = UINT64_C(4096) << (9 * level) };
			x.pfn = ptk_pte_pfn(e) + ((va & (x.page_size - 1)) >> PTK_PAGE_SHIFT);
			x.host = ptk_pfn_host(ctx, x.pfn);
			check_snapshot(va, &x);
			return;
		}
		if (level == 0 || !(table = ptk_pfn_host(ctx, ptk_pte_pfn(e)))) {
			FAIL("reader: table pointer %#" PRIx64 " at level %u\n", e, level);
			return;
		}
		sched_yield();
	}
}

static void *reader_main(void *arg)
{
	uint64_t s = seed * 104729 + (uintptr_t)arg * 31 + 1;
	/* Reader 0 of an RCU context is QSBR-style: online throughout,
	 * reporting a quiescent state after each operation. */
	bool qsbr = (uintptr_t)arg == 0 && walk_mode == PTK_WALK_RCU;
	if (qsbr)
		ptk_qsbr_online();
	while (!stop) {
		if (qsbr)
			ptk_quiescent_state();
		uint64_t va = BASE + ((rnd(&s) % (NSLOTS * SLOT)) & ~(PTK_PAGE_SIZE - 1));
		unsigned op = rnd(&s) % 8;
		if (op < 2) {
			ptk_walk_begin(as);
			slow_walk(va);
			ptk_walk_end(as);
			n_lookups++;
		} else if (op < 5) {
			/* A few walks in one section: long sections stress
			 * grace periods. */
			struct ptk_xlate x;
			ptk_walk_begin(as);
			for (int i = 0; i < 4; i++) {
				uint64_t a = va + (uint64_t)i * 513 * PTK_PAGE_SIZE;
				if (a < BASE + NSLOTS * SLOT && ptk_walk(as, a, &x) == 0)
					check_snapshot(a, &x);
			}
			ptk_walk_end(as);
			n_lookups += 4;
		} else {
			uint64_t pfns[4];
			unsigned want = 1 + rnd(&s) % 4, got;
			if (va + want * PTK_PAGE_SIZE > BASE + NSLOTS * SLOT)
				want = 1;
			if (op == 7) {
				got = ptk_pin(as, va, want, PTK_ACCESS_READ, pfns) == 0 ? want : 0;
			} else {
				got = ptk_pin_fast(as, va, want, PTK_ACCESS_READ, pfns);
			}
			for (unsigned i = 0; i < got; i++)
				check_pinned(va + i * PTK_PAGE_SIZE, pfns[i], "after pin");
			for (int i = 0; i < 3; i++)
				sched_yield();
			for (unsigned i = 0; i < got; i++)
				check_pinned(va + i * PTK_PAGE_SIZE, pfns[i], "before unpin");
			ptk_unpin(ctx, pfns, got);
			n_pins += got;
		}
	}
	if (qsbr)
		ptk_qsbr_offline();
	ptk_thread_unregister();
	return NULL;
}

/* ---- writers ---------------------------------------------------------- */

static void write_tag(uint64_t va)
{
	struct ptk_xlate x;
	if (ptk_translate(as, va, &x) == 0 && !ptk_pte_special(x.pte))
		__atomic_store_n((uint64_t *)x.host, tag_of(va), __ATOMIC_RELAXED);
}

static void writer_op(unsigned id, uint64_t *s, unsigned slot, enum slot_kind *k)
{
	uint64_t base = BASE + (uint64_t)slot * SLOT;
	uint64_t half = base + (rnd(s) & 1) * (2u << 20);
	uint64_t va = base + (rnd(s) % (SLOT >> PTK_PAGE_SHIFT)) * PTK_PAGE_SIZE;
	int rc;
	if (*k == EMPTY) {
		uint64_t at = base;
		if (rnd(s) % 3 == 0) {
			rc = ptk_map_special(as, &at, SLOT, special_pfn(base),
					     PTK_PROT_READ | PTK_PROT_WRITE,
					     PTK_MAP_FIXED | PTK_MAP_HUGE);
			if (rc == 0)
				*k = SPECIAL;
		} else {
			rc = ptk_map_anon(as, &at, SLOT, PTK_PROT_READ | PTK_PROT_WRITE,
					  PTK_MAP_FIXED | PTK_MAP_HUGE);
			if (rc == 0)
				*k = ANON;
		}
		if (rc && rc != -ENOMEM)
			FAIL("writer %u: map rc %d\n", id, rc);
		return;
	}
	struct ptk_xlate x;
	switch (rnd(s) % 10) {
	case 0: /* unmap the slot */
		if ((rc = ptk_unmap(as, base, SLOT)))
			FAIL("writer %u: unmap rc %d\n", id, rc);
		for (uint64_t a = base; a < base + SLOT; a += 256 * PTK_PAGE_SIZE)
			if (ptk_translate(as, a, &x) == 0)
				FAIL("writer %u: %#" PRIx64 " mapped after unmap\n", id, a);
		*k = EMPTY;
		break;
	case 1: case 2: /* split */
		rc = ptk_split(as, va);
		if (rc && rc != -ENOENT && rc != -ENOMEM)
			FAIL("writer %u: split rc %d\n", id, rc);
		n_splits += rc == 0;
		break;
	case 3: case 4: { /* collapse: -EINVAL iff the block spans regions
			   * (a protect below cut them; they are not merged) */
		struct ptk_region_info ri;
		bool one = ptk_region_query(as, half, &ri) == 0 &&
			   ri.end - half >= (2u << 20);
		rc = ptk_collapse(as, half);
		if (rc == 0) {
			n_collapses++;
			if (!one)
				FAIL("writer %u: collapse across regions\n", id);
			if (ptk_translate(as, half, &x) || x.level != 1)
				FAIL("writer %u: collapse gave no 2 MiB leaf\n", id);
		} else if (rc == -EINVAL ? one :
			   rc != -EBUSY && rc != -EEXIST && rc != -ENOENT) {
			FAIL("writer %u: collapse rc %d\n", id, rc);
		}
		break;
	}
	case 5: /* drop (anonymous only; reclaims emptied tables) */
		if (*k == ANON) {
			uint64_t len = (1 + rnd(s) % 1024) * PTK_PAGE_SIZE;
			if (va + len > base + SLOT)
				len = base + SLOT - va;
			if ((rc = ptk_drop(as, va, len)) && rc != -ENOMEM)
				FAIL("writer %u: drop rc %d\n", id, rc);
			n_drops++;
		}
		break;
	case 6: /* protect a piece, then give write back */
		rc = ptk_protect(as, va, PTK_PAGE_SIZE * (1 + rnd(s) % 16) > base + SLOT - va ?
				 base + SLOT - va : PTK_PAGE_SIZE * 4, PTK_PROT_READ);
		if (rc == 0)
			rc = ptk_protect(as, base, SLOT, PTK_PROT_READ | PTK_PROT_WRITE);
		if (rc && rc != -ENOMEM)
			FAIL("writer %u: protect rc %d\n", id, rc);
		break;
	default: /* faults (anonymous): a huge leaf when a 2 MiB frame is free */
		if (*k == ANON) {
			for (int i = 0; i < 8; i++) {
				uint64_t a = (i == 0 ? half : va + (uint64_t)i * PTK_PAGE_SIZE * 7);
				if (a >= base + SLOT)
					break;
				rc = ptk_fault(as, a, PTK_ACCESS_WRITE);
				if (rc == 0)
					write_tag(a);
				else if (rc != -ENOMEM && rc != -EACCES)
					/* -EACCES: a protect that restores write
					 * access can fail with -ENOMEM */
					FAIL("writer %u: fault rc %d\n", id, rc);
			}
		}
	}
}

static void *writer_main(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	uint64_t s = seed * 7919 + id + 1;
	enum slot_kind kind[NSLOTS] = { EMPTY };
	while (!stop) {
		unsigned slot = (unsigned)(rnd(&s) % (NSLOTS / nwriters)) * nwriters + id;
		writer_op(id, &s, slot, &kind[slot]);
		n_ops++;
	}
	ptk_thread_unregister();
	return NULL;
}

int main(int argc, char **argv)
{
	seed = (uint64_t)time(NULL) ^ (uint64_t)getpid();
	enum ptk_walk_mode mode = PTK_WALK_RCU;
	int opt;
	while ((opt = getopt(argc, argv, "s:t:w:r:m:")) != -1) {
		switch (opt) {
		case 's': seed = strtoull(optarg, NULL, 0); break;
		case 't': seconds = atof(optarg); break;
		case 'w': nwriters = (unsigned)atoi(optarg); break;
		case 'r': nreaders = (unsigned)atoi(optarg); break;
		case 'm': mode = strcmp(optarg, "ipi") == 0 ? PTK_WALK_IPI : PTK_WALK_RCU; break;
		default:
			fprintf(stderr, "usage: %s [-s SEED] [-t SECONDS] [-w WRITERS] [-r READERS] [-m rcu|ipi]\n",
				argv[0]);
			return 2;
		}
	}
	if (nwriters < 1 || nwriters > 16 || nreaders > 64 || !seed) {
		fprintf(stderr, "torture_walk: writers 1..16, readers 0..64, seed non-zero\n");
		return 2;
	}
	printf("torture_walk: seed %" PRIu64 " (rerun with -s %" PRIu64 "), mode %s, %u writers, %u readers, %.1f s\n",
	       seed, seed, mode == PTK_WALK_IPI ? "ipi" : "rcu", nwriters, nreaders, seconds);
	fflush(stdout);

	walk_mode = mode;
	struct ptk_ctx_config cfg;
	ptk_ctx_config_default(&cfg);
	cfg.pool_bytes = 256ull << 20;
	cfg.walk_mode = mode;
	int rc = ptk_ctx_create(&cfg, &ctx);
	if (rc == -EOPNOTSUPP) {
		printf("torture_walk: membarrier unavailable, old design skipped\n1 passed, 0 failed\n");
		return 0;
	}
	if (rc || ptk_as_create(ctx, 4, &as)) {
		fprintf(stderr, "torture_walk: setup failed\n");
		return 1;
	}
	pthread_t wt[16], rt[64];
	for (unsigned i = 0; i < nwriters; i++)
		pthread_create(&wt[i], NULL, writer_main, (void *)(uintptr_t)i);
	for (unsigned i = 0; i < nreaders; i++)
		pthread_create(&rt[i], NULL, reader_main, (void *)(uintptr_t)i);
	struct timespec ts = { (time_t)seconds, (long)((seconds - (time_t)seconds) * 1e9) };
	nanosleep(&ts, NULL);
	stop = 1;
	for (unsigned i = 0; i < nwriters; i++)
		pthread_join(wt[i], NULL);
	for (unsigned i = 0; i < nreaders; i++)
		pthread_join(rt[i], NULL);
	ptk_as_destroy(as);
	ptk_ctx_quiesce(ctx);
	struct ptk_pool_stats ps;
	ptk_pool_stats(ctx, &ps);
	uint64_t in_use = 0;
	for (unsigned t = 0; t < PTK_FRAME_NR_TYPES; t++)
		in_use += ps.in_use[t];
	if (in_use || ps.free != ps.capacity || ps.allocs != ps.frees)
		FAIL("torture_walk: %" PRIu64 " frames still in use, %" PRIu64 "/%" PRIu64 " free\n",
		     in_use, ps.free, ps.capacity);
	ptk_ctx_destroy(ctx);
	printf("torture_walk: %" PRIu64 " writer ops (%" PRIu64 " splits, %" PRIu64
	       " collapses, %" PRIu64 " drops), %" PRIu64 " lookups, %" PRIu64 " pages pinned, %" PRIu64 " IPIs\n",
	       (uint64_t)n_ops, (uint64_t)n_splits, (uint64_t)n_collapses, (uint64_t)n_drops,
	       (uint64_t)n_lookups, (uint64_t)n_pins, ptk_ipi_sent());
	printf("%d passed, %d failed\n", failures == 0, failures != 0);
	return failures ? 1 : 0;
}
