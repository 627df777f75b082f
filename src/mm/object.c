/*
 * object.c - shared memory objects: the page cache, the invalidate lock,
 * truncate and hole punching, pread/pwrite.  Protocol in ptkit/object.h;
 * faults on object mappings are in fault.c, mapping in as.c.
 *
 * The page cache is an array of frame pointers, one slot per page offset
 * up to the object's maximum size, in an anonymous host mapping reserved
 * with MAP_NORESERVE: the parts never touched cost nothing.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"

#define PG PTK_PAGE_SIZE
/* Largest object: 2^46 bytes (the cache array then takes 128 GiB of
 * address space, reserved, not committed). */
#define MAX_OBJECT_BYTES (UINT64_C(1) << 46)

#define CHECK_OBJ(obj) \
	PTK_CONTRACT((obj)->magic == PTK_OBJECT_MAGIC, "not a live object (released?)")

/* ---- the invalidate lock: reader/writer, sharded per CPU ---------------- */

unsigned ptk_object_inval_read_lock(struct ptk_object *obj)
{
	unsigned tok = ptk_ctx_shard_index(obj->ctx);
	int rc = pthread_rwlock_rdlock(&obj->inval[tok].lock);
	PTK_BUG_ON(rc != 0, "invalidate lock: rdlock failed");
	return tok;
}

void ptk_object_inval_read_unlock(struct ptk_object *obj, unsigned tok)
{
	pthread_rwlock_unlock(&obj->inval[tok].lock);
}

static void inval_write_lock(struct ptk_object *obj)
{
	/* Index order: two writers cannot deadlock. */
	for (unsigned i = 0; i < obj->ctx->nshards; i++) {
		int rc = pthread_rwlock_wrlock(&obj->inval[i].lock);
		PTK_BUG_ON(rc != 0, "invalidate lock: wrlock failed");
	}
}

static void inval_write_unlock(struct ptk_object *obj)
{
	for (unsigned i = obj->ctx->nshards; i-- > 0;)
		pthread_rwlock_unlock(&obj->inval[i].lock);
}

static void cached_add(struct ptk_object *obj, int64_t n)
{
	atomic_fetch_add_explicit(&obj->inval[ptk_ctx_shard_index(obj->ctx)].cached, n,
				  memory_order_relaxed);
}

/* ---- the page cache ------------------------------------------------------ */

struct ptk_frame *ptk_object_cache_get(struct ptk_object *obj, uint64_t pgoff)
{
	PTK_CONTRACT(pgoff < obj->max_pages, "page offset beyond the cache");
	struct ptk_frame *f = ptk_object_cache_peek(obj, pgoff);
	if (f)
		return f;
	struct ptk_frame *nf = ptk_frame_alloc(obj->ctx, PTK_FRAME_DATA, true);
	if (!nf)
		return NULL;
	ptk_frame_set_owner(nf, &obj->rmap, pgoff);
	/* Release: the zeroed contents and the owner before the pointer;
	 * pairs with ptk_object_cache_peek()'s acquire.  The loser of a race
	 * frees its own frame and uses the winner's (acquire on failure). */
	if (atomic_compare_exchange_strong_explicit(&obj->cache[pgoff], &f, nf,
						    memory_order_acq_rel,
						    memory_order_acquire)) {
		cached_add(obj, 1);
		return nf;
	}
	ptk_frame_put(obj->ctx, nf);
	return f;
}

/* Take the frames of [first, last] out of the cache and drop the cache's
 * references.  Invalidate lock held for writing, every mapping of those
 * pages zapped. */
static void cache_remove(struct ptk_object *obj, uint64_t first, uint64_t last)
{
	int64_t n = 0;
	for (uint64_t i = first; i <= last && i < obj->max_pages; i++) {
		if (!atomic_load_explicit(&obj->cache[i], memory_order_relaxed))
			continue;
		struct ptk_frame *f = atomic_exchange_explicit(&obj->cache[i], NULL,
							       memory_order_acq_rel);
		/* No longer the object's: a reverse-map lookup from a pin that
		 * outlives it finds nothing (page->mapping = NULL).  Release:
		 * pairs with the acquire load in ptk_frame_owner_get(). */
		atomic_store_explicit(&f->owner, NULL, memory_order_release);
		ptk_frame_put(obj->ctx, f);
		n++;
	}
	if (n)
		cached_add(obj, -n);
}

/* ---- lifetime ------------------------------------------------------------ */

static void object_free_rcu(struct rcu_head *head)
{
	PTK_RCU_CALLBACK_BEGIN(head);
	struct ptk_rmap *rm = ptk_container_of(head, struct ptk_rmap, rcu);
	struct ptk_object *obj = ptk_container_of(rm, struct ptk_object, rmap);
	ptk_rmap_lock_destroy(&obj->rmap.lock);
	for (unsigned i = 0; i < obj->ctx->nshards; i++)
		pthread_rwlock_destroy(&obj->inval[i].lock);
	free(obj->inval);
	free(obj);
	PTK_RCU_CALLBACK_END();
}

/* The last reference is gone: no mapping is linked (so none maps a page:
 * links go after their zap) and nobody can reach the cache.  The cache's
 * references go now; the struct after a grace period, because
 * ptk_frame_owner_get() may be following a frame's owner pointer to its
 * rmap. */
static void object_release(struct ptk_rmap *rm)
{
	struct ptk_object *obj = ptk_container_of(rm, struct ptk_object, rmap);
	PTK_BUG_ON(rm->nr != 0, "object released with mappings linked");
	obj->magic = 0;
	uint64_t pages = atomic_load_explicit(&obj->size, memory_order_relaxed) / PG;
	if (pages)
		cache_remove(obj, 0, pages - 1);
	munmap(obj->cache, obj->cache_bytes);
	obj->cache = NULL;
	ptk_rcu_call(&rm->rcu, object_free_rcu);
}

int ptk_object_create(struct ptk_ctx *ctx, uint64_t size, uint64_t max_size,
		      struct ptk_object **out)
{
	if (!ctx || !out)
		return -EINVAL;
	PTK_CHECK_CTX(ctx);
	if (!max_size)
		max_size = size;
	if ((size | max_size) & (PG - 1) || !max_size || size > max_size ||
	    max_size > MAX_OBJECT_BYTES)
		return -EINVAL;
	struct ptk_object *obj = calloc(1, sizeof(*obj));
	struct ptk_inval_shard *inval = aligned_alloc(PTK_CACHELINE,
						      sizeof(*inval) * ctx->nshards);
	uint64_t max_pages = max_size / PG;
	size_t bytes = (size_t)((max_pages * sizeof(obj->cache[0]) + PG - 1) & ~(PG - 1));
	void *cache = MAP_FAILED;
	if (obj && inval)
		cache = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (cache == MAP_FAILED) {
		free(obj);
		free(inval);
		return -ENOMEM;
	}
	memset(inval, 0, sizeof(*inval) * ctx->nshards);
	/* Writers first, as the region lock: a truncate is not starved by a
	 * stream of faults. */
	pthread_rwlockattr_t attr;
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	for (unsigned i = 0; i < ctx->nshards; i++)
		pthread_rwlock_init(&inval[i].lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	ptk_rmap_init(&obj->rmap, ctx, false, object_release);
	obj->magic = PTK_OBJECT_MAGIC;
	obj->ctx = ctx;
	obj->cache = cache;        /* zero-filled by mmap: every slot a hole */
	obj->cache_bytes = bytes;
	obj->max_pages = max_pages;
	obj->max_size = max_size;
	obj->inval = inval;
	atomic_store_explicit(&obj->size, size, memory_order_relaxed);
	*out = obj;
	return 0;
}

void ptk_object_release(struct ptk_object *obj)
{
	if (!obj)
		return;
	CHECK_OBJ(obj);
	ptk_rmap_put(&obj->rmap);
}

uint64_t ptk_object_size(const struct ptk_object *obj)
{
	return obj ? atomic_load_explicit(&obj->size, memory_order_acquire) : 0;
}

/* ---- truncate and punch ----------------------------------------------------- */

struct zap_args {
	uint64_t first, last;       /* page offsets zapped */
	uint64_t mappings;          /* mappings visited */
	const struct ptk_rmap *only;  /* punch: only the object's own pages */
};

/* Zap the part of mapping @m that maps offsets [first, last], in its own
 * address space, through a gather (TLBs invalidated, notifiers called,
 * frames' mapping references dropped after the flush). */
static int zap_mapping(struct ptk_mapping *m, void *arg)
{
	struct zap_args *a = arg;
	uint64_t lo = a->first > m->first ? a->first : m->first;
	uint64_t hi = a->last < m->last ? a->last : m->last;
	uint64_t start = m->va + ((lo - m->first) << PTK_PAGE_SHIFT);
	uint64_t end = m->va + ((hi - m->first + 1) << PTK_PAGE_SHIFT);
	/* @m->as is alive: its link is in the tree (rmap lock held), and an
	 * address space unlinks only after its own zap (unmap, fixed-map
	 * replacement) or in ptk_as_destroy() after zapping everything; a
	 * concurrent zap of the same range by its owner is harmless (each
	 * entry is cleared once, with its table lock). */
	struct ptk_gather g;
	ptk_notify_start(m->as, start, end);
	ptk_gather_init(&g, m->as, false);
	if (a->only)
		ptk_zap_range_owned(m->as, &g, start, end, a->only);
	else
		ptk_zap_range(m->as, &g, start, end);
	ptk_gather_finish(&g);
	ptk_notify_end(m->as, start, end);
	a->mappings++;
	return 0;
}

/* Zap every mapping of offsets [first, last] in every address space, then
 * take the pages out of the cache.  @even_cows: private mappings' copies of
 * those offsets go too (truncate); otherwise only the object's own pages
 * (a hole punch).  Invalidate lock held for writing: no fault can map one
 * of those pages again meanwhile. */
static void invalidate_range(struct ptk_object *obj, uint64_t first, uint64_t last,
			     bool even_cows)
{
	struct zap_args a = { .first = first, .last = last,
			      .only = even_cows ? NULL : &obj->rmap };
	ptk_rmap_read_lock(&obj->rmap.lock);
	ptk_rmap_walk(&obj->rmap, first, last, zap_mapping, &a);
	ptk_rmap_unlock(&obj->rmap.lock);
	cache_remove(obj, first, last);
}

int ptk_object_truncate(struct ptk_object *obj, uint64_t size)
{
	if (!obj)
		return -EINVAL;
	CHECK_OBJ(obj);
	if ((size & (PG - 1)) || size > obj->max_size)
		return -EINVAL;
	ptk_cpu_quiesce_self();
	inval_write_lock(obj);
	uint64_t old = atomic_load_explicit(&obj->size, memory_order_relaxed);
	/* The new size first: a fault checks it under the read side, so none
	 * maps a page beyond it once we hold the write side. */
	atomic_store_explicit(&obj->size, size, memory_order_release);
	if (size < old)
		invalidate_range(obj, size / PG, old / PG - 1, true);
	inval_write_unlock(obj);
	return 0;
}

int ptk_object_punch(struct ptk_object *obj, uint64_t off, uint64_t len)
{
	if (!obj)
		return -EINVAL;
	CHECK_OBJ(obj);
	if (((off | len) & (PG - 1)) || !len || off + len < off || off + len > obj->max_size)
		return -EINVAL;
	ptk_cpu_quiesce_self();
	inval_write_lock(obj);
	uint64_t size = atomic_load_explicit(&obj->size, memory_order_relaxed);
	/* Nothing is cached or mapped beyond the size. */
	uint64_t end = off + len < size ? off + len : size;
	if (off < end)
		invalidate_range(obj, off / PG, end / PG - 1, false);
	inval_write_unlock(obj);
	return 0;
}

/* ---- pread / pwrite ---------------------------------------------------------- */

static int rw_check(struct ptk_object *obj, uint64_t off, const void *buf, uint64_t len)
{
	if (!obj || (!buf && len))
		return -EINVAL;
	CHECK_OBJ(obj);
	if (off + len < off || off + len > obj->max_size)
		return -EINVAL;
	return 0;
}

int ptk_object_write(struct ptk_object *obj, uint64_t off, const void *buf,
		     uint64_t len)
{
	int rc = rw_check(obj, off, buf, len);
	if (rc || !len)
		return rc;
	ptk_cpu_quiesce_self();
	unsigned tok = ptk_object_inval_read_lock(obj);
	if (off + len > atomic_load_explicit(&obj->size, memory_order_relaxed)) {
		rc = -EINVAL;
		goto out;
	}
	/* Every page present first (the only step that can fail; a hole
	 * filled with a zeroed frame reads the same), then the copy. */
	for (uint64_t p = off / PG; p <= (off + len - 1) / PG; p++) {
		if (!ptk_object_cache_get(obj, p)) {
			rc = -ENOMEM;
			goto out;
		}
	}
	const uint8_t *src = buf;
	for (uint64_t at = off; at < off + len;) {
		uint64_t n = PG - (at & (PG - 1));
		if (n > off + len - at)
			n = off + len - at;
		struct ptk_frame *f = ptk_object_cache_peek(obj, at / PG);
		memcpy((uint8_t *)ptk_frame_host(obj->ctx, f) + (at & (PG - 1)), src, n);
		src += n;
		at += n;
	}
out:
	ptk_object_inval_read_unlock(obj, tok);
	return rc;
}

int ptk_object_read(struct ptk_object *obj, uint64_t off, void *buf, uint64_t len)
{
	int rc = rw_check(obj, off, buf, len);
	if (rc || !len)
		return rc;
	ptk_cpu_quiesce_self();
	unsigned tok = ptk_object_inval_read_lock(obj);
	if (off + len > atomic_load_explicit(&obj->size, memory_order_relaxed)) {
		rc = -EINVAL;
		goto out;
	}
	uint8_t *dst = buf;
	for (uint64_t at = off; at < off + len;) {
		uint64_t n = PG - (at & (PG - 1));
		if (n > off + len - at)
			n = off + len - at;
		struct ptk_frame *f = ptk_object_cache_peek(obj, at / PG);
		if (f)
			memcpy(dst, (uint8_t *)ptk_frame_host(obj->ctx, f) + (at & (PG - 1)), n);
		else
			memset(dst, 0, n);       /* a hole reads as zero */
		dst += n;
		at += n;
	}
out:
	ptk_object_inval_read_unlock(obj, tok);
	return rc;
}

/* ---- inspection ------------------------------------------------------------ */

void ptk_object_stats(struct ptk_object *obj, struct ptk_object_stats *st)
{
	if (!st)
		return;
	memset(st, 0, sizeof(*st));
	if (!obj)
		return;
	CHECK_OBJ(obj);
	st->size = atomic_load_explicit(&obj->size, memory_order_relaxed);
	st->max_size = obj->max_size;
	int64_t cached = 0;
	for (unsigned i = 0; i < obj->ctx->nshards; i++)
		cached += atomic_load_explicit(&obj->inval[i].cached, memory_order_relaxed);
	st->cached_pages = (uint64_t)cached;
	ptk_rmap_read_lock(&obj->rmap.lock);
	st->mappings = obj->rmap.nr;
	ptk_rmap_unlock(&obj->rmap.lock);
}
