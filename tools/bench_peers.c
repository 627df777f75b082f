/*
 * bench_peers.c - scenario "peers": ptkit as a translation map beside the
 * structures users pick today, measured in one run on the same addresses.
 *
 *   ptkit         ptk_translate(): a lockless walk, one read-side section
 *                 per lookup
 *   ptkit-walk    ptk_walk() for a batch of 256 lookups inside one
 *                 read-side section (what a translator's inner loop does)
 *   raw-walk      the same ptkit tables walked with no synchronisation at
 *                 all: the physical limit.  Not safe beside a writer (a
 *                 table may be freed under it), so measured without one.
 *   rwlock-radix  a 4-level, 512-way radix table behind a pthread rwlock
 *                 (read lock per lookup, write lock per change)
 *   urcu-lfht     liburcu's lock-free resizable hash table (cds_lfht),
 *                 keyed by page number; lookups in an RCU read-side
 *                 section, removals freed after a grace period
 *   ucx-pgtable   UCX's ucs_pgtable (libucx-dev), one region per page.
 *                 Not safe for readers beside a writer without a lock:
 *                 measured as UCX's registration cache runs it, every
 *                 lookup under a pthread rwlock's read side.
 *
 * The address set: --size bytes of pages (default 64 MiB, --quick 4 MiB)
 * in runs of 64 pages at random 256 KiB-aligned places of a 44-bit range
 * (sparse, like registered buffers or a guest's mappings), each page
 * mapped to a distinct frame number.  Every lookup checks its answer
 * (the sum of the frame numbers found is compared with the expected one).
 *
 * Metrics, per design:
 *   lookups/s      (Mops/s, all reader threads together) with 1..--threads
 *                  readers (default 2), without and with one concurrent
 *                  writer inserting and removing pages next to the
 *                  looked-up ones; "writer ops/s" beside it
 *   insert, remove (ns per page, one thread, ascending inserts and
 *                  descending removes of the whole set, one page at a time)
 *   bytes/page     memory of the structure per mapped page
 * Comparisons: ptkit against each peer for each of them, ptkit-walk
 * against each peer for lookups, and ptkit-walk against raw-walk (what
 * the read-side section costs over no synchronisation at all).
 */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <urcu/urcu-memb.h>
#include <urcu/rculfhash.h>

#ifdef PTKIT_HAVE_UCX
#include <ucs/datastruct/pgtable.h>
#endif

#include "bench.h"
#include "internal.h"      /* raw-walk: the root table and the pool base */
#include "ptkit/ptkit.h"

#define SCN "peers"
#define RUN_PAGES 64u
#define BATCH 256u

struct peer;

struct set {
	uint64_t *va;        /* looked-up pages, in region order */
	uint64_t *pfn;       /* their frame numbers */
	uint64_t *order;     /* lookup sequence (indexes into va), shuffled */
	uint64_t *churn;     /* pages the writer inserts and removes */
	size_t n, nchurn;
	uint64_t expect;     /* sum of pfn over one pass of order */
};

struct peer_ops {
	const char *name;
	bool writer_safe;
	int (*create)(struct peer *p, size_t n);
	int (*insert)(struct peer *p, uint64_t va, uint64_t pfn);
	int (*remove)(struct peer *p, uint64_t va);
	/* Look up @n addresses; returns the sum of the frame numbers, or
	 * UINT64_MAX if one was missing. */
	uint64_t (*lookups)(struct peer *p, const uint64_t *va, const uint64_t *idx, size_t n);
	double (*bytes)(struct peer *p);
	void (*destroy)(struct peer *p);
};

struct peer {
	const struct peer_ops *ops;
	/* ptkit */
	struct ptk_ctx *ctx;
	struct ptk_as *as;
	/* radix / ucx */
	pthread_rwlock_t lock;
	void *root;
	size_t nodes;
	/* lfht */
	struct cds_lfht *ht;
	size_t mem0;
#ifdef PTKIT_HAVE_UCX
	ucs_pgtable_t pgt;
#endif
};

/* ---- ptkit ---------------------------------------------------------------- */

static int ptkit_create(struct peer *p, size_t n)
{
	struct ptk_ctx_config cfg;
	ptk_ctx_config_default(&cfg);
	/* Tables only (special mappings carry no data frames). */
	cfg.pool_bytes = (uint64_t)n * 64 + (64u << 20);
	int rc = ptk_ctx_create(&cfg, &p->ctx);
	if (rc)
		return rc;
	if ((rc = ptk_as_create(p->ctx, 4, &p->as))) {
		ptk_ctx_destroy(p->ctx);
		return rc;
	}
	return 0;
}

static int ptkit_insert(struct peer *p, uint64_t va, uint64_t pfn)
{
	return ptk_map_special(p->as, &va, PTK_PAGE_SIZE, pfn, PTK_PROT_READ | PTK_PROT_WRITE,
			       PTK_MAP_FIXED);
}

static int ptkit_remove(struct peer *p, uint64_t va)
{
	return ptk_unmap(p->as, va, PTK_PAGE_SIZE);
}

static uint64_t ptkit_lookups(struct peer *p, const uint64_t *va, const uint64_t *idx, size_t n)
{
	uint64_t sum = 0;
	for (size_t i = 0; i < n; i++) {
		struct ptk_xlate x;
		if (ptk_translate(p->as, va[idx[i]], &x))
			return UINT64_MAX;
		sum += x.pfn;
	}
	return sum;
}

static uint64_t walk_lookups(struct peer *p, const uint64_t *va, const uint64_t *idx, size_t n)
{
	uint64_t sum = 0;
	for (size_t i = 0; i < n; i += BATCH) {
		size_t end = i + BATCH < n ? i + BATCH : n;
		ptk_rcu_read_lock();
		for (size_t j = i; j < end; j++) {
			struct ptk_xlate x;
			if (ptk_walk(p->as, va[idx[j]], &x)) {
				ptk_rcu_read_unlock();
				return UINT64_MAX;
			}
			sum += x.pfn;
		}
		ptk_rcu_read_unlock();
	}
	return sum;
}

/* The same walk with no read-side section and no checks beyond present
 * and leaf: what the hardware walker does. */
static uint64_t raw_lookups(struct peer *p, const uint64_t *va, const uint64_t *idx, size_t n)
{
	const struct ptk_ctx *ctx = p->ctx;
	const ptk_slot_t *root = p->as->root_slots;
	uint64_t sum = 0;
	for (size_t i = 0; i < n; i++) {
		uint64_t a = va[idx[i]];
		const ptk_slot_t *t = root;
		for (unsigned level = 3;; level--) {
			ptk_pte_t e = ptk_pte_load(&t[ptk_level_index(a, level)]);
			if (!ptk_pte_present(e))
				return UINT64_MAX;
			if (e & PTK_PTE_LEAF) {
				sum += ptk_pte_pfn(e) + ((a & (ptk_level_size(level) - 1)) >> PTK_PAGE_SHIFT);
				break;
			}
			t = ptk_pfn_host_fast(ctx, ptk_pte_pfn(e));
		}
	}
	return sum;
}

static double ptkit_bytes(struct peer *p)
{
	struct ptk_as_stats st;
	ptk_as_stats(p->as, &st);
	return (double)st.table_bytes;
}

static void ptkit_destroy(struct peer *p)
{
	ptk_as_destroy(p->as);
	ptk_ctx_destroy(p->ctx);
}

/* ---- radix table behind a rwlock ------------------------------------------ */

/* 4 levels of 512 slots over the 36-bit page number; leaves hold the frame
 * number + 1 (0: empty).  Nodes are never freed before destroy. */
static int radix_create(struct peer *p, size_t n)
{
	(void)n;
	pthread_rwlock_init(&p->lock, NULL);
	p->root = calloc(512, sizeof(void *));
	p->nodes = 1;
	return p->root ? 0 : -ENOMEM;
}

static int radix_insert(struct peer *p, uint64_t va, uint64_t pfn)
{
	uint64_t pn = va >> 12;
	int rc = 0;
	pthread_rwlock_wrlock(&p->lock);
	void **t = p->root;
	for (int shift = 27; shift > 0 && !rc; shift -= 9) {
		void **slot = &t[(pn >> shift) & 511];
		if (!*slot) {
			*slot = calloc(512, sizeof(void *));
			if (!*slot)
				rc = -ENOMEM;
			p->nodes++;
		}
		t = *slot;
	}
	if (!rc)
		((uint64_t *)t)[pn & 511] = pfn + 1;
	pthread_rwlock_unlock(&p->lock);
	return rc;
}

static int radix_remove(struct peer *p, uint64_t va)
{
	uint64_t pn = va >> 12;
	pthread_rwlock_wrlock(&p->lock);
	void **t = p->root;
	for (int shift = 27; shift > 0 && t; shift -= 9)
		t = t[(pn >> shift) & 511];
	if (t)
		((uint64_t *)t)[pn & 511] = 0;
	pthread_rwlock_unlock(&p->lock);
	return t ? 0 : -ENOENT;
}

static uint64_t radix_lookups(struct peer *p, const uint64_t *va, const uint64_t *idx, size_t n)
{
	uint64_t sum = 0;
	for (size_t i = 0; i < n; i++) {
		uint64_t pn = va[idx[i]] >> 12, v = 0;
		pthread_rwlock_rdlock(&p->lock);
		void **t = p->root;
		for (int shift = 27; shift > 0 && t; shift -= 9)
			t = t[(pn >> shift) & 511];
		if (t)
			v = ((uint64_t *)t)[pn & 511];
		pthread_rwlock_unlock(&p->lock);
		if (!v)
			return UINT64_MAX;
		sum += v - 1;
	}
	return sum;
}

static void radix_free(void **t, int shift)
{
	if (shift > 0)
		for (int i = 0; i < 512; i++)
			if (t[i])
				radix_free(t[i], shift - 9);
	free(t);
}

static double radix_bytes(struct peer *p)
{
	return (double)p->nodes * 512 * sizeof(void *);
}

static void radix_destroy(struct peer *p)
{
	radix_free(p->root, 27);
	pthread_rwlock_destroy(&p->lock);
}

/* ---- liburcu cds_lfht ------------------------------------------------------- */

struct lnode {
	struct cds_lfht_node node;
	uint64_t key, pfn;
	struct rcu_head rcu;
};

static unsigned long hash64(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdull;
	k ^= k >> 33;
	k *= 0xc4ceb9fe1a85ec53ull;
	return (unsigned long)(k ^ (k >> 33));
}

static int lnode_match(struct cds_lfht_node *n, const void *key)
{
	return caa_container_of(n, struct lnode, node)->key == *(const uint64_t *)key;
}

static size_t heap_bytes(void)
{
	struct mallinfo2 mi = mallinfo2();
	return mi.uordblks + mi.hblkhd;
}

static int lfht_create(struct peer *p, size_t n)
{
	unsigned long size = 1;
	while (size < n)
		size <<= 1;
	p->mem0 = heap_bytes();
	/* Buckets from malloc (the "order" allocator) so heap accounting sees
	 * them; pre-sized for the set, resizing automatically as users run it. */
	p->ht = _cds_lfht_new(size, size, 1ul << 26, CDS_LFHT_AUTO_RESIZE | CDS_LFHT_ACCOUNTING,
			      &cds_lfht_mm_order, &urcu_memb_flavor, NULL);
	return p->ht ? 0 : -ENOMEM;
}

static int lfht_insert(struct peer *p, uint64_t va, uint64_t pfn)
{
	struct lnode *nd = malloc(sizeof(*nd));
	if (!nd)
		return -ENOMEM;
	nd->key = va >> 12;
	nd->pfn = pfn;
	cds_lfht_node_init(&nd->node);
	ptk_rcu_read_lock();
	cds_lfht_add(p->ht, hash64(nd->key), &nd->node);
	ptk_rcu_read_unlock();
	return 0;
}

static void lnode_free(struct rcu_head *h)
{
	PTK_RCU_CALLBACK_BEGIN(h);
	free(caa_container_of(h, struct lnode, rcu));
	PTK_RCU_CALLBACK_END();
}

static int lfht_remove(struct peer *p, uint64_t va)
{
	uint64_t key = va >> 12;
	struct cds_lfht_iter it;
	int rc = -ENOENT;
	ptk_rcu_read_lock();
	cds_lfht_lookup(p->ht, hash64(key), lnode_match, &key, &it);
	struct cds_lfht_node *n = cds_lfht_iter_get_node(&it);
	if (n && cds_lfht_del(p->ht, n) == 0) {
		ptk_rcu_call(&caa_container_of(n, struct lnode, node)->rcu, lnode_free);
		rc = 0;
	}
	ptk_rcu_read_unlock();
	return rc;
}

static uint64_t lfht_lookups(struct peer *p, const uint64_t *va, const uint64_t *idx, size_t n)
{
	uint64_t sum = 0;
	for (size_t i = 0; i < n; i++) {
		uint64_t key = va[idx[i]] >> 12;
		struct cds_lfht_iter it;
		ptk_rcu_read_lock();
		cds_lfht_lookup(p->ht, hash64(key), lnode_match, &key, &it);
		struct cds_lfht_node *nd = cds_lfht_iter_get_node(&it);
		uint64_t v = nd ? caa_container_of(nd, struct lnode, node)->pfn : UINT64_MAX;
		ptk_rcu_read_unlock();
		if (v == UINT64_MAX)
			return UINT64_MAX;
		sum += v;
	}
	return sum;
}

static double lfht_bytes(struct peer *p)
{
	return (double)(heap_bytes() - p->mem0);
}

static void lfht_destroy(struct peer *p)
{
	struct cds_lfht_iter it;
	struct cds_lfht_node *n;
	ptk_rcu_read_lock();
	cds_lfht_for_each(p->ht, &it, n) {
		if (cds_lfht_del(p->ht, n) == 0)
			ptk_rcu_call(&caa_container_of(n, struct lnode, node)->rcu, lnode_free);
	}
	ptk_rcu_read_unlock();
	ptk_rcu_barrier();
	cds_lfht_destroy(p->ht, NULL);
}

/* ---- UCX ucs_pgtable ---------------------------------------------------------- */

#ifdef PTKIT_HAVE_UCX
struct ucx_entry {
	ucs_pgt_region_t r;
	uint64_t pfn;
} UCS_PGT_ENTRY_V_ALIGNED;

static _Atomic size_t ucx_dirs;   /* directories allocated (all tables) */

static ucs_pgt_dir_t *ucx_dir_alloc(const ucs_pgtable_t *t)
{
	(void)t;
	atomic_fetch_add(&ucx_dirs, 1);
	return aligned_alloc(16, (sizeof(ucs_pgt_dir_t) + 15) & ~(size_t)15);
}

static void ucx_dir_release(const ucs_pgtable_t *t, ucs_pgt_dir_t *d)
{
	(void)t;
	atomic_fetch_sub(&ucx_dirs, 1);
	free(d);
}

static int ucx_create(struct peer *p, size_t n)
{
	(void)n;
	pthread_rwlock_init(&p->lock, NULL);
	atomic_store(&ucx_dirs, 0);
	return ucs_pgtable_init(&p->pgt, ucx_dir_alloc, ucx_dir_release) == UCS_OK ? 0 : -ENOMEM;
}

/* One region per page, allocated by the inserter (as registration caches
 * do) and freed by the remover. */
static int ucx_insert(struct peer *p, uint64_t va, uint64_t pfn)
{
	struct ucx_entry *e = malloc(sizeof(*e));   /* 16-aligned: more than UCX needs */
	if (!e)
		return -ENOMEM;
	e->r.start = va;
	e->r.end = va + PTK_PAGE_SIZE;
	e->pfn = pfn;
	pthread_rwlock_wrlock(&p->lock);
	ucs_status_t s = ucs_pgtable_insert(&p->pgt, &e->r);
	pthread_rwlock_unlock(&p->lock);
	if (s != UCS_OK)
		free(e);
	return s == UCS_OK ? 0 : -EEXIST;
}

static int ucx_remove(struct peer *p, uint64_t va)
{
	pthread_rwlock_wrlock(&p->lock);
	ucs_pgt_region_t *r = ucs_pgtable_lookup(&p->pgt, va);
	ucs_status_t s = r ? ucs_pgtable_remove(&p->pgt, r) : UCS_ERR_NO_ELEM;
	pthread_rwlock_unlock(&p->lock);
	if (s == UCS_OK)
		free(r);
	return s == UCS_OK ? 0 : -ENOENT;
}

static uint64_t ucx_lookups(struct peer *p, const uint64_t *va, const uint64_t *idx, size_t n)
{
	uint64_t sum = 0;
	for (size_t i = 0; i < n; i++) {
		pthread_rwlock_rdlock(&p->lock);
		ucs_pgt_region_t *r = ucs_pgtable_lookup(&p->pgt, va[idx[i]]);
		uint64_t v = r ? ((struct ucx_entry *)r)->pfn : UINT64_MAX;
		pthread_rwlock_unlock(&p->lock);
		if (v == UINT64_MAX)
			return UINT64_MAX;
		sum += v;
	}
	return sum;
}

static double ucx_bytes(struct peer *p)
{
	return (double)atomic_load(&ucx_dirs) * sizeof(ucs_pgt_dir_t) +
	       (double)ucs_pgtable_num_regions(&p->pgt) * sizeof(struct ucx_entry);
}

static void ucx_purge_cb(const ucs_pgtable_t *t, ucs_pgt_region_t *r, void *arg)
{
	(void)t; (void)arg;
	free(r);
}

static void ucx_destroy(struct peer *p)
{
	ucs_pgtable_purge(&p->pgt, ucx_purge_cb, NULL);
	ucs_pgtable_cleanup(&p->pgt);
	pthread_rwlock_destroy(&p->lock);
}
#endif

static const struct peer_ops peer_list[] = {
	{ "ptkit", true, ptkit_create, ptkit_insert, ptkit_remove, ptkit_lookups, ptkit_bytes, ptkit_destroy },
	{ "ptkit-walk", true, ptkit_create, ptkit_insert, ptkit_remove, walk_lookups, NULL, ptkit_destroy },
	{ "raw-walk", false, ptkit_create, ptkit_insert, ptkit_remove, raw_lookups, NULL, ptkit_destroy },
	{ "rwlock-radix", true, radix_create, radix_insert, radix_remove, radix_lookups, radix_bytes, radix_destroy },
	{ "urcu-lfht", true, lfht_create, lfht_insert, lfht_remove, lfht_lookups, lfht_bytes, lfht_destroy },
#ifdef PTKIT_HAVE_UCX
	{ "ucx-pgtable", true, ucx_create, ucx_insert, ucx_remove, ucx_lookups, ucx_bytes, ucx_destroy },
#endif
};
#define NPEERS (sizeof(peer_list) / sizeof(peer_list[0]))

/* ---- the address set ---------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

static int make_set(struct set *s, uint64_t bytes, uint64_t seed)
{
	size_t runs = (size_t)((bytes >> PTK_PAGE_SHIFT) + RUN_PAGES - 1) / RUN_PAGES;
	if (!runs)
		runs = 1;
	s->n = runs * RUN_PAGES;
	s->nchurn = runs * 4;           /* 4 pages after each run */
	s->va = malloc(s->n * sizeof(uint64_t));
	s->pfn = malloc(s->n * sizeof(uint64_t));
	s->order = malloc(s->n * sizeof(uint64_t));
	s->churn = malloc(s->nchurn * sizeof(uint64_t));
	uint64_t *bases = malloc(runs * sizeof(uint64_t));
	if (!s->va || !s->pfn || !s->order || !s->churn || !bases) {
		free(bases);
		return -ENOMEM;
	}
	uint64_t st = seed * 0x9e3779b97f4a7c15ull + 1;
	/* 256 KiB slots in [4 GiB, 16 TiB); after sorting, a collision moves
	 * a run to the next free slot */
	for (size_t r = 0; r < runs; r++)
		bases[r] = ((bench_rand(&st) % ((1ull << 26) - (1ull << 14) - runs)) + (1ull << 14)) << 18;
	qsort(bases, runs, sizeof(uint64_t), cmp_u64);
	for (size_t r = 1; r < runs; r++)
		if (bases[r] <= bases[r - 1])
			bases[r] = bases[r - 1] + (1ull << 18);
	for (size_t r = 0; r < runs; r++) {
		for (unsigned i = 0; i < RUN_PAGES; i++) {
			s->va[r * RUN_PAGES + i] = bases[r] + ((uint64_t)i << PTK_PAGE_SHIFT);
			s->pfn[r * RUN_PAGES + i] = 0x100000 + r * RUN_PAGES + i;
		}
		for (unsigned i = 0; i < 4; i++)
			s->churn[r * 4 + i] = bases[r] + ((uint64_t)(RUN_PAGES + i) << PTK_PAGE_SHIFT);
	}
	free(bases);
	s->expect = 0;
	for (size_t i = 0; i < s->n; i++) {
		s->order[i] = i;
		s->expect += s->pfn[i];
	}
	for (size_t i = s->n - 1; i > 0; i--) {
		size_t j = bench_rand(&st) % (i + 1);
		uint64_t t = s->order[i];
		s->order[i] = s->order[j];
		s->order[j] = t;
	}
	return 0;
}

static void free_set(struct set *s)
{
	free(s->va);
	free(s->pfn);
	free(s->order);
	free(s->churn);
}

/* ---- threads ------------------------------------------------------------------- */

struct worker {
	struct peer *p;
	const struct set *s;
	pthread_barrier_t *start;
	_Atomic int *stop;
	uint64_t ops;
	int bad;
	bool writer;
};

static void *reader(void *arg)
{
	struct worker *w = arg;
	ptk_thread_register();
	pthread_barrier_wait(w->start);
	size_t pos = 0;
	uint64_t pass_sum = 0;
	while (!atomic_load_explicit(w->stop, memory_order_relaxed)) {
		size_t n = w->s->n - pos < 1024 ? w->s->n - pos : 1024;
		uint64_t sum = w->p->ops->lookups(w->p, w->s->va, w->s->order + pos, n);
		if (sum == UINT64_MAX) {
			w->bad = 1;
			break;
		}
		pass_sum += sum;
		w->ops += n;
		pos += n;
		if (pos == w->s->n) {
			if (pass_sum != w->s->expect)
				w->bad = 1;
			pass_sum = 0;
			pos = 0;
		}
	}
	ptk_thread_unregister();
	return NULL;
}

static void *writer(void *arg)
{
	struct worker *w = arg;
	ptk_thread_register();
	pthread_barrier_wait(w->start);
	size_t i = 0;
	while (!atomic_load_explicit(w->stop, memory_order_relaxed)) {
		uint64_t va = w->s->churn[i];
		if (w->p->ops->insert(w->p, va, 0x900000 + i) || w->p->ops->remove(w->p, va)) {
			w->bad = 1;
			break;
		}
		w->ops += 2;
		i = (i + 1) % w->s->nchurn;
	}
	ptk_thread_unregister();
	return NULL;
}

/* Run @readers lookup threads (and a writer if asked) for @secs. */
static int timed_lookups(struct peer *p, const struct set *s, unsigned readers, bool with_writer,
			 double secs, double *lookups_per_s, double *writer_per_s)
{
	unsigned n = readers + with_writer;
	struct worker *w = calloc(n, sizeof(*w));
	pthread_t *tid = calloc(n, sizeof(*tid));
	pthread_barrier_t start;
	_Atomic int stop = 0;
	pthread_barrier_init(&start, NULL, n + 1);
	for (unsigned i = 0; i < n; i++) {
		w[i] = (struct worker){ p, s, &start, &stop, 0, 0, i == readers };
		pthread_create(&tid[i], NULL, w[i].writer ? writer : reader, &w[i]);
	}
	pthread_barrier_wait(&start);
	double t0 = bench_now();
	struct timespec ts = { (time_t)secs, (long)((secs - (time_t)secs) * 1e9) };
	nanosleep(&ts, NULL);
	atomic_store(&stop, 1);
	int bad = 0;
	uint64_t rops = 0, wops = 0;
	for (unsigned i = 0; i < n; i++) {
		pthread_join(tid[i], NULL);
		bad |= w[i].bad;
		if (w[i].writer)
			wops += w[i].ops;
		else
			rops += w[i].ops;
	}
	double el = bench_now() - t0;
	pthread_barrier_destroy(&start);
	free(w);
	free(tid);
	*lookups_per_s = rops / el;
	*writer_per_s = wops / el;
	return bad ? -EIO : 0;
}

/* ---- the scenario -------------------------------------------------------------- */

static int run_peers(const struct bench_params *bp)
{
	uint64_t bytes = bp->size ? bp->size : (bp->quick ? 4u << 20 : 64u << 20);
	unsigned maxt = bp->threads ? bp->threads : 2;
	double secs = bp->seconds ? bp->seconds : (bp->quick ? 0.02 : 0.3);
	struct set s;
	int rc = make_set(&s, bytes, bp->seed);
	if (rc) {
		free_set(&s);
		return rc;
	}
	char params[96];
	for (size_t k = 0; k < NPEERS && !rc; k++) {
		const struct peer_ops *ops = &peer_list[k];
		struct peer p = { .ops = ops };
		bench_progress("%s: building %zu pages", ops->name, s.n);
		if ((rc = ops->create(&p, s.n + s.nchurn)))
			break;
		/* Insert (ascending) and, at the end, remove (descending), timed
		 * for the designs that own their structure (the walks share
		 * ptkit's and are built the fast way: one call per run). */
		bool timed_build = ops->bytes != NULL;
		double t0 = bench_now();
		if (timed_build) {
			for (size_t i = 0; i < s.n && !rc; i++)
				rc = ops->insert(&p, s.va[i], s.pfn[i]);
		} else {
			for (size_t r = 0; r < s.n && !rc; r += RUN_PAGES) {
				uint64_t va = s.va[r];
				rc = ptk_map_special(p.as, &va, RUN_PAGES * PTK_PAGE_SIZE, s.pfn[r],
						     PTK_PROT_READ | PTK_PROT_WRITE, PTK_MAP_FIXED);
			}
		}
		double t_ins = bench_now() - t0;
		if (rc) {
			fprintf(stderr, "peers: %s: insert failed: %d\n", ops->name, rc);
			ops->destroy(&p);
			break;
		}
		snprintf(params, sizeof(params), "pages=%zu", s.n);
		if (timed_build) {
			bench_sample(SCN, ops->name, params, "insert", "ns", t_ins / s.n * 1e9);
			bench_sample(SCN, ops->name, params, "bytes/page", "B", ops->bytes(&p) / s.n);
		}
		for (unsigned t = 1; t <= maxt && !rc; t *= 2) {
			for (int wr = 0; wr < 2 && !rc; wr++) {
				if (wr && !ops->writer_safe)
					continue;
				bench_progress("%s: %u reader%s%s", ops->name, t, t > 1 ? "s" : "",
					       wr ? " + writer" : "");
				double lps, wps;
				rc = timed_lookups(&p, &s, t, wr, secs, &lps, &wps);
				if (rc) {
					fprintf(stderr, "peers: %s: a lookup returned a wrong frame\n", ops->name);
					break;
				}
				snprintf(params, sizeof(params), "threads=%u,writer=%d", t, wr);
				bench_sample(SCN, ops->name, params, "lookups/s", "Mops/s", lps / 1e6);
				if (wr)
					bench_sample(SCN, ops->name, params, "writer ops/s", "Mops/s", wps / 1e6);
			}
		}
		if (timed_build && !rc) {
			t0 = bench_now();
			for (size_t i = s.n; i-- > 0 && !rc;)
				rc = ops->remove(&p, s.va[i]);
			snprintf(params, sizeof(params), "pages=%zu", s.n);
			bench_sample(SCN, ops->name, params, "remove", "ns", (bench_now() - t0) / s.n * 1e9);
		}
		ops->destroy(&p);
	}
	/* ptkit (and, for lookups, the batched walk) against each peer, at
	 * every point; the batched walk against the raw walk of the same
	 * tables is the price of the read-side section. */
	static const char *const pairs[][2] = {
		{ "ptkit", "rwlock-radix" }, { "ptkit", "urcu-lfht" },
#ifdef PTKIT_HAVE_UCX
		{ "ptkit", "ucx-pgtable" },
#endif
		{ "ptkit-walk", "rwlock-radix" }, { "ptkit-walk", "urcu-lfht" },
#ifdef PTKIT_HAVE_UCX
		{ "ptkit-walk", "ucx-pgtable" },
#endif
		{ "ptkit-walk", "raw-walk" },
	};
	for (size_t k = 0; k < sizeof(pairs) / sizeof(pairs[0]); k++) {
		const char *a = pairs[k][0], *b = pairs[k][1];
		snprintf(params, sizeof(params), "pages=%zu", s.n);
		if (!strcmp(a, "ptkit")) {
			bench_compare(SCN, "insert", params, a, b, "lower");
			bench_compare(SCN, "remove", params, a, b, "lower");
			bench_compare(SCN, "bytes/page", params, a, b, "lower");
		}
		for (unsigned t = 1; t <= maxt; t *= 2)
			for (int wr = 0; wr < 2; wr++) {
				snprintf(params, sizeof(params), "threads=%u,writer=%d", t, wr);
				bench_compare(SCN, "lookups/s", params, a, b, "higher");
				if (wr && !strcmp(a, "ptkit"))
					bench_compare(SCN, "writer ops/s", params, a, b, "higher");
			}
	}
	free_set(&s);
	return rc;
}

const struct bench_scenario bench_peers = {
	"peers", "ptkit as a translation map vs rwlock radix, liburcu lfht, UCX pgtable, raw walk",
	run_peers,
};
