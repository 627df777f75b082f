/*
 * stress_as.c - concurrent faults, unmaps, drops and protection changes on
 * one address space, with lockless readers, checked against a per-thread
 * model.
 *
 * Each writer thread owns a 1 MiB slice; slices are adjacent, so threads
 * share page-table pages (PTE tables hold 2 MiB) and race on table locks,
 * table allocation and empty-table reclaim.  A writer keeps an exact model
 * of its slice (mapped? writable? page contents tag) and checks every
 * result against it.  Reader threads translate random addresses of every
 * slice and read the entry (in debug builds a read from a freed table page
 * aborts on the poison).  At the end every frame must be back in the pool.
 *
 * Usage: stress_as [-s SEED] [-t SECONDS] [-w WRITERS] [-r READERS]
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

#define SLICE   (UINT64_C(1) << 20)
#define PAGES   (SLICE >> PTK_PAGE_SHIFT)
#define BASE    (UINT64_C(1) << 36)

struct page_model { uint8_t mapped, writable; uint32_t tag; };

static struct ptk_as *as;
static _Atomic int stop;
static _Atomic unsigned long failures;
static unsigned nwriters = 4, nreaders = 2;
static double seconds = 3;
static uint64_t seed;

#define FAIL(...) do { fprintf(stderr, __VA_ARGS__); failures++; stop = 1; } while (0)

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13; *s ^= *s >> 7; *s ^= *s << 17;
	return *s;
}

struct writer { unsigned id; uint64_t ops; };

static void check_page(unsigned id, struct page_model *m, uint64_t va)
{
	struct ptk_xlate x;
	int rc = ptk_translate(as, va, &x);
	if (!m->mapped) {
		int f = ptk_fault(as, va, PTK_ACCESS_READ);
		if (f != -EFAULT)
			FAIL("writer %u: fault on unmapped %#" PRIx64 " gave %d\n", id, va, f);
		return;
	}
	if (rc == 0 && *(uint32_t *)x.host != m->tag)
		FAIL("writer %u: %#" PRIx64 " holds %u, model %u\n", id, va,
		     *(uint32_t *)x.host, m->tag);
	if (rc != 0 && m->tag != 0)
		FAIL("writer %u: %#" PRIx64 " lost its page\n", id, va);
}

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	uint64_t s = seed * 7919 + w->id + 1;
	uint64_t base = BASE + w->id * SLICE;
	struct page_model *m = calloc(PAGES, sizeof(*m));
	uint32_t next_tag = 1;
	while (!stop) {
		unsigned op = rnd(&s) % 8;
		uint64_t first = rnd(&s) % PAGES;
		uint64_t n = 1 + rnd(&s) % (op < 2 ? 64 : 16);
		if (first + n > PAGES)
			n = PAGES - first;
		uint64_t va = base + (first << PTK_PAGE_SHIFT), len = n << PTK_PAGE_SHIFT;
		int rc;
		switch (op) {
		case 0: /* map (fixed, replacing) */
			rc = ptk_map_anon(as, &va, len, PTK_PROT_READ | PTK_PROT_WRITE, PTK_MAP_FIXED);
			if (rc)
				FAIL("writer %u: map rc %d\n", w->id, rc);
			for (uint64_t i = first; i < first + n; i++)
				m[i] = (struct page_model){ 1, 1, 0 };
			break;
		case 1: /* unmap */
			rc = ptk_unmap(as, va, len);
			if (rc)
				FAIL("writer %u: unmap rc %d\n", w->id, rc);
			for (uint64_t i = first; i < first + n; i++)
				m[i] = (struct page_model){ 0, 0, 0 };
			break;
		case 2: { /* drop */
			bool all = true;
			for (uint64_t i = first; i < first + n; i++)
				all &= m[i].mapped;
			rc = ptk_drop(as, va, len);
			if (rc != (all ? 0 : -ENOMEM))
				FAIL("writer %u: drop rc %d (covered %d)\n", w->id, rc, all);
			for (uint64_t i = first; i < first + n; i++)
				m[i].tag = 0;
			break;
		}
		case 3: { /* protect */
			bool all = true, wr = rnd(&s) & 1;
			for (uint64_t i = first; i < first + n; i++)
				all &= m[i].mapped;
			rc = ptk_protect(as, va, len, PTK_PROT_READ | (wr ? PTK_PROT_WRITE : 0));
			if (rc != (all ? 0 : -ENOMEM))
				FAIL("writer %u: protect rc %d (covered %d)\n", w->id, rc, all);
			if (all)
				for (uint64_t i = first; i < first + n; i++)
					m[i].writable = wr;
			break;
		}
		default: /* write faults and checks */
			for (uint64_t i = first; i < first + n; i++) {
				uint64_t a = base + (i << PTK_PAGE_SHIFT);
				struct ptk_xlate x;
				rc = ptk_translate_fault(as, a, PTK_ACCESS_WRITE, &x);
				int want = !m[i].mapped ? -EFAULT : !m[i].writable ? -EACCES : 0;
				if (rc != want) {
					FAIL("writer %u: write fault %#" PRIx64 " rc %d want %d\n",
					     w->id, a, rc, want);
					continue;
				}
				if (rc == 0) {
					m[i].tag = next_tag++;
					*(uint32_t *)x.host = m[i].tag;
				}
				check_page(w->id, &m[i], a);
			}
		}
		w->ops++;
	}
	for (uint64_t i = 0; i < PAGES; i++)
		check_page(w->id, &m[i], base + (i << PTK_PAGE_SHIFT));
	free(m);
	ptk_thread_unregister();
	return NULL;
}

static void *reader_main(void *arg)
{
	uint64_t *lookups = arg;
	uint64_t s = seed * 104729 + (uint64_t)(uintptr_t)arg;
	while (!stop) {
		uint64_t va = BASE + rnd(&s) % (nwriters * SLICE);
		struct ptk_xlate x;
		ptk_rcu_read_lock();
		if (ptk_walk(as, va & ~(PTK_PAGE_SIZE - 1), &x) == 0 &&
		    !ptk_pte_is_leaf(x.pte))
			FAIL("reader: snapshot is not a leaf: %#" PRIx64 "\n", x.pte);
		ptk_rcu_read_unlock();
		(*lookups)++;
	}
	ptk_thread_unregister();
	return NULL;
}

int main(int argc, char **argv)
{
	seed = (uint64_t)time(NULL) ^ (uint64_t)getpid();
	int opt;
	while ((opt = getopt(argc, argv, "s:t:w:r:")) != -1) {
		switch (opt) {
		case 's': seed = strtoull(optarg, NULL, 0); break;
		case 't': seconds = atof(optarg); break;
		case 'w': nwriters = (unsigned)atoi(optarg); break;
		case 'r': nreaders = (unsigned)atoi(optarg); break;
		default:
			fprintf(stderr, "usage: %s [-s SEED] [-t SECONDS] [-w WRITERS] [-r READERS]\n", argv[0]);
			return 2;
		}
	}
	if (nwriters < 1 || nwriters > 64 || nreaders > 64) {
		fprintf(stderr, "stress_as: writers must be 1..64, readers 0..64\n");
		return 2;
	}
	printf("stress_as: seed %" PRIu64 " (rerun with -s %" PRIu64 "), %u writers, %u readers, %.1f s\n",
	       seed, seed, nwriters, nreaders, seconds);
	fflush(stdout);

	struct ptk_ctx_config cfg;
	ptk_ctx_config_default(&cfg);
	cfg.pool_bytes = 256ull << 20;
	struct ptk_ctx *ctx;
	if (ptk_ctx_create(&cfg, &ctx) || ptk_as_create(ctx, 4, &as)) {
		fprintf(stderr, "stress_as: setup failed\n");
		return 1;
	}
	pthread_t wt[64], rt[64];
	struct writer w[64];
	uint64_t lookups[64] = { 0 };
	for (unsigned i = 0; i < nwriters; i++) {
		w[i] = (struct writer){ .id = i };
		pthread_create(&wt[i], NULL, writer_main, &w[i]);
	}
	for (unsigned i = 0; i < nreaders; i++)
		pthread_create(&rt[i], NULL, reader_main, &lookups[i]);
	struct timespec ts = { (time_t)seconds, (long)((seconds - (time_t)seconds) * 1e9) };
	nanosleep(&ts, NULL);
	stop = 1;
	uint64_t ops = 0, looks = 0;
	for (unsigned i = 0; i < nwriters; i++) {
		pthread_join(wt[i], NULL);
		ops += w[i].ops;
	}
	for (unsigned i = 0; i < nreaders; i++) {
		pthread_join(rt[i], NULL);
		looks += lookups[i];
	}
	struct ptk_as_stats st;
	ptk_as_stats(as, &st);
	ptk_as_destroy(as);
	ptk_ctx_quiesce(ctx);
	struct ptk_pool_stats ps;
	ptk_pool_stats(ctx, &ps);
	uint64_t in_use = 0;
	for (unsigned t = 0; t < PTK_FRAME_NR_TYPES; t++)
		in_use += ps.in_use[t];
	if (in_use || ps.free != ps.capacity)
		FAIL("stress_as: %" PRIu64 " frames still in use, %" PRIu64 "/%" PRIu64 " free\n",
		     in_use, ps.free, ps.capacity);
	ptk_ctx_destroy(ctx);
	printf("stress_as: %" PRIu64 " writer ops, %" PRIu64 " lookups, %" PRIu64
	       " faults, peak-free check ok=%d\n", ops, looks, st.faults, failures == 0);
	printf("%d passed, %d failed\n", failures == 0, failures != 0);
	return failures ? 1 : 0;
}
