/*
 * torture_as.c - concurrent faults, unmaps, drops and protection changes on
 * one address space, with lockless readers, checked against a per-thread
 * model (the stress_as workload; see torture.h).  Writers also clone the
 * whole space now and then (copy on write under everyone's feet) and check
 * their slice in the clone.
 *
 * Each writer thread owns a 1 MiB slice; slices are adjacent, so threads
 * share page-table pages (PTE tables hold 2 MiB) and race on table locks,
 * table allocation and empty-table reclaim.  A writer keeps an exact model
 * of its slice (mapped? writable? page contents tag) and checks every
 * result against it.  Reader threads translate random addresses of every
 * slice and read the entry (in debug builds a read from a freed table page
 * aborts on the poison).  At the end every frame must be back in the pool.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "torture.h"

#define SLICE   (UINT64_C(1) << 20)
#define PAGES   (SLICE >> PTK_PAGE_SHIFT)
#define BASE    (UINT64_C(1) << 36)
#define MAX_THREADS 64

struct page_model { uint8_t mapped, writable; uint32_t tag; };

struct run {
	const struct torture_cfg *cfg;
	struct torture_result *res;
	struct ptk_as *as;
	_Atomic int stop;
	_Atomic unsigned long failures;
	pthread_mutex_t fail_lock;
};

__attribute__((format(printf, 2, 3)))
static void fail(struct run *r, const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fprintf(stderr, "stress_as: seed %" PRIu64 ": %s\n", r->cfg->seed, buf);
	pthread_mutex_lock(&r->fail_lock);
	if (!r->res->first_failure[0])
		snprintf(r->res->first_failure, sizeof(r->res->first_failure), "%s", buf);
	pthread_mutex_unlock(&r->fail_lock);
	r->failures++;
	r->stop = 1;
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13; *s ^= *s >> 7; *s ^= *s << 17;
	return *s;
}

struct writer { struct run *r; unsigned id; uint64_t ops; };

static void check_page(struct run *r, unsigned id, struct page_model *m, uint64_t va)
{
	struct ptk_xlate x;
	int rc = ptk_translate(r->as, va, &x);
	if (!m->mapped) {
		int f = ptk_fault(r->as, va, PTK_ACCESS_READ);
		if (f != -EFAULT)
			fail(r, "writer %u: fault on unmapped %#" PRIx64 " gave %d", id, va, f);
		return;
	}
	if (rc == 0 && *(uint32_t *)x.host != m->tag)
		fail(r, "writer %u: %#" PRIx64 " holds %u, model %u", id, va,
		     *(uint32_t *)x.host, m->tag);
	if (rc != 0 && m->tag != 0)
		fail(r, "writer %u: %#" PRIx64 " lost its page", id, va);
}

/* Clone the whole space (every writer's slice is write-protected for copy
 * on write under its feet), check this writer's slice in the child against
 * the model, write one page in the child (a copy) and check the parent
 * kept its value, destroy the child. */
static void clone_check(struct run *r, unsigned id, struct page_model *m, uint64_t base)
{
	struct ptk_as *c;
	int rc = ptk_as_clone(r->as, &c);
	if (rc) {
		if (rc != -ENOMEM)
			fail(r, "writer %u: clone rc %d", id, rc);
		return;
	}
	uint64_t written = UINT64_MAX;
	for (uint64_t i = 0; i < PAGES; i++) {
		uint64_t va = base + (i << PTK_PAGE_SHIFT);
		struct ptk_xlate x;
		int t = ptk_translate(c, va, &x);
		if (!m[i].mapped) {
			if (t == 0 || ptk_fault(c, va, PTK_ACCESS_READ) != -EFAULT)
				fail(r, "writer %u: clone maps unmapped %#" PRIx64, id, va);
		} else if (m[i].tag && (t != 0 || *(uint32_t *)x.host != m[i].tag)) {
			fail(r, "writer %u: clone lost %#" PRIx64 " (rc %d)", id, va, t);
		} else if (m[i].tag && m[i].writable && written == UINT64_MAX) {
			written = i;
		}
	}
	if (written != UINT64_MAX) {
		uint64_t va = base + (written << PTK_PAGE_SHIFT);
		struct ptk_xlate x;
		if ((rc = ptk_translate_fault(c, va, PTK_ACCESS_WRITE, &x)) != 0)
			fail(r, "writer %u: write in the clone rc %d", id, rc);
		else
			*(uint32_t *)x.host = ~m[written].tag;
		check_page(r, id, &m[written], va);     /* the parent kept its value */
	}
	ptk_as_destroy(c);
}

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	struct run *r = w->r;
	uint64_t s = r->cfg->seed * 7919 + w->id + 1;
	uint64_t base = BASE + w->id * SLICE;
	struct page_model *m = calloc(PAGES, sizeof(*m));
	uint32_t next_tag = 1;
	if (!m) {
		fail(r, "writer %u: out of host memory", w->id);
		return NULL;
	}
	while (!r->stop) {
		if (rnd(&s) % 64 == 0) {
			clone_check(r, w->id, m, base);
			w->ops++;
			continue;
		}
		unsigned op = rnd(&s) % 8;
		uint64_t first = rnd(&s) % PAGES;
		uint64_t n = 1 + rnd(&s) % (op < 2 ? 64 : 16);
		if (first + n > PAGES)
			n = PAGES - first;
		uint64_t va = base + (first << PTK_PAGE_SHIFT), len = n << PTK_PAGE_SHIFT;
		int rc;
		switch (op) {
		case 0: /* map (fixed, replacing) */
			rc = ptk_map_anon(r->as, &va, len, PTK_PROT_READ | PTK_PROT_WRITE, PTK_MAP_FIXED);
			if (rc)
				fail(r, "writer %u: map rc %d", w->id, rc);
			for (uint64_t i = first; i < first + n; i++)
				m[i] = (struct page_model){ 1, 1, 0 };
			break;
		case 1: /* unmap */
			rc = ptk_unmap(r->as, va, len);
			if (rc)
				fail(r, "writer %u: unmap rc %d", w->id, rc);
			for (uint64_t i = first; i < first + n; i++)
				m[i] = (struct page_model){ 0, 0, 0 };
			break;
		case 2: { /* drop */
			bool all = true;
			for (uint64_t i = first; i < first + n; i++)
				all &= m[i].mapped;
			rc = ptk_drop(r->as, va, len);
			if (rc != (all ? 0 : -ENOMEM))
				fail(r, "writer %u: drop rc %d (covered %d)", w->id, rc, all);
			for (uint64_t i = first; i < first + n; i++)
				m[i].tag = 0;
			break;
		}
		case 3: { /* protect */
			bool all = true, wr = rnd(&s) & 1;
			for (uint64_t i = first; i < first + n; i++)
				all &= m[i].mapped;
			rc = ptk_protect(r->as, va, len, PTK_PROT_READ | (wr ? PTK_PROT_WRITE : 0));
			if (rc != (all ? 0 : -ENOMEM))
				fail(r, "writer %u: protect rc %d (covered %d)", w->id, rc, all);
			if (all)
				for (uint64_t i = first; i < first + n; i++)
					m[i].writable = wr;
			break;
		}
		default: /* write faults and checks */
			for (uint64_t i = first; i < first + n; i++) {
				uint64_t a = base + (i << PTK_PAGE_SHIFT);
				struct ptk_xlate x;
				rc = ptk_translate_fault(r->as, a, PTK_ACCESS_WRITE, &x);
				int want = !m[i].mapped ? -EFAULT : !m[i].writable ? -EACCES : 0;
				if (rc != want) {
					fail(r, "writer %u: write fault %#" PRIx64 " rc %d want %d",
					     w->id, a, rc, want);
					continue;
				}
				if (rc == 0) {
					m[i].tag = next_tag++;
					*(uint32_t *)x.host = m[i].tag;
				}
				check_page(r, w->id, &m[i], a);
			}
		}
		w->ops++;
	}
	for (uint64_t i = 0; i < PAGES; i++)
		check_page(r, w->id, &m[i], base + (i << PTK_PAGE_SHIFT));
	free(m);
	ptk_thread_unregister();
	return NULL;
}

struct reader { struct run *r; unsigned id; uint64_t lookups; };

static void *reader_main(void *arg)
{
	struct reader *rd = arg;
	struct run *r = rd->r;
	uint64_t s = r->cfg->seed * 104729 + rd->id + 1;
	while (!r->stop) {
		uint64_t va = BASE + rnd(&s) % (r->cfg->writers * SLICE);
		struct ptk_xlate x;
		ptk_rcu_read_lock();
		if (ptk_walk(r->as, va & ~(PTK_PAGE_SIZE - 1), &x) == 0 &&
		    !ptk_pte_is_leaf(x.pte))
			fail(r, "reader: snapshot is not a leaf: %#" PRIx64, x.pte);
		ptk_rcu_read_unlock();
		rd->lookups++;
	}
	ptk_thread_unregister();
	return NULL;
}

int torture_as_run(const struct torture_cfg *cfg, struct torture_result *res)
{
	memset(res, 0, sizeof(*res));
	if (cfg->writers < 1 || cfg->writers > MAX_THREADS || cfg->readers > MAX_THREADS)
		return -EINVAL;
	struct run r = { .cfg = cfg, .res = res };
	pthread_mutex_init(&r.fail_lock, NULL);
	struct ptk_ctx *ctx;
	int rc = ptk_ctx_create(&cfg->ctx_cfg, &ctx);
	if (rc)
		return rc;
	rc = ptk_as_create(ctx, cfg->levels, &r.as);
	if (rc) {
		ptk_ctx_destroy(ctx);
		return rc;
	}
	pthread_t wt[MAX_THREADS], rt[MAX_THREADS];
	struct writer w[MAX_THREADS];
	struct reader rd[MAX_THREADS];
	for (unsigned i = 0; i < cfg->writers; i++) {
		w[i] = (struct writer){ .r = &r, .id = i };
		pthread_create(&wt[i], NULL, writer_main, &w[i]);
	}
	for (unsigned i = 0; i < cfg->readers; i++) {
		rd[i] = (struct reader){ .r = &r, .id = i };
		pthread_create(&rt[i], NULL, reader_main, &rd[i]);
	}
	/* Sleep in slices so a failure ends the run early. */
	struct timespec t0, now;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		double el = (double)(now.tv_sec - t0.tv_sec) + (now.tv_nsec - t0.tv_nsec) / 1e9;
		if (r.stop || el >= cfg->seconds)
			break;
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	r.stop = 1;
	for (unsigned i = 0; i < cfg->writers; i++) {
		pthread_join(wt[i], NULL);
		res->ops += w[i].ops;
	}
	for (unsigned i = 0; i < cfg->readers; i++) {
		pthread_join(rt[i], NULL);
		res->lookups += rd[i].lookups;
	}
	struct ptk_as_stats st;
	ptk_as_stats(r.as, &st);
	res->faults = st.faults;
	ptk_as_destroy(r.as);
	ptk_ctx_quiesce(ctx);
	struct ptk_pool_stats ps;
	ptk_pool_stats(ctx, &ps);
	uint64_t in_use = 0;
	for (unsigned t = 0; t < PTK_FRAME_NR_TYPES; t++)
		in_use += ps.in_use[t];
	if (in_use || ps.free != ps.capacity)
		fail(&r, "frame accounting: %" PRIu64 " frames still in use, %" PRIu64 "/%" PRIu64 " free",
		     in_use, ps.free, ps.capacity);
	ptk_ctx_destroy(ctx);
	res->failures = r.failures;
	pthread_mutex_destroy(&r.fail_lock);
	return r.failures ? 1 : 0;
}
