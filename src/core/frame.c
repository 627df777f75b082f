/*
 * frame.c - the frame pool: per-CPU caches over a shared free list of
 * small frames and a set of 2 MiB chunks.
 *
 * Invariants (pool_lock):
 *   - a chunk is UNTOUCHED or WHOLE (free, all 512 frames unused), SPLIT
 *     (its frames serve small allocations and never rejoin) or HUGE (one
 *     2 MiB frame in use);
 *   - every small frame of a SPLIT chunk is in exactly one place: the
 *     shared free list, one shard's cache, or in use;
 *   - free frames have refcount 0 and type FREE.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define POISON_BYTE 0x6b

static void init_chunk_descs(struct ptk_ctx *ctx, uint64_t chunk)
{
	struct ptk_frame *f = &ctx->frames[chunk * PTK_CHUNK_FRAMES];
	for (unsigned i = 0; i < PTK_CHUNK_FRAMES; i++) {
		atomic_store_explicit(&f[i].refcount, 0, memory_order_relaxed);
		atomic_store_explicit(&f[i].type, PTK_FRAME_FREE, memory_order_relaxed);
		f[i].ctx = ctx;
		f[i].next_free = NULL;
	}
}

/* Find a free whole chunk and mark it @state.  pool_lock held.  Returns the
 * chunk index or -1. */
static int64_t take_whole_chunk(struct ptk_ctx *ctx, uint8_t state)
{
	PTK_CONTRACT(ptk_lock_held(&ctx->pool_lock), "pool lock not held");
	if (!ctx->whole_free)
		return -1;
	for (uint64_t n = 0; n < ctx->nchunks; n++) {
		uint64_t c = (ctx->chunk_cursor + n) % ctx->nchunks;
		uint8_t st = ctx->chunk_state[c];
		if (st == CHUNK_UNTOUCHED || st == CHUNK_WHOLE) {
			if (st == CHUNK_UNTOUCHED)
				init_chunk_descs(ctx, c);
			ctx->chunk_state[c] = state;
			ctx->chunk_cursor = (c + 1) % ctx->nchunks;
			ctx->whole_free--;
			return (int64_t)c;
		}
	}
	PTK_BUG_ON(1, "whole_free count disagrees with chunk states");
}

/* Move up to @want frames from the shared list to @sh.  Both locks held. */
static void refill(struct ptk_ctx *ctx, struct ptk_shard *sh, unsigned want)
{
	PTK_COUNT_WRITE(ctx, PTK_CW_POOL, 3);   /* lock, list head, unlock */
	ptk_lock_acquire(&ctx->pool_lock);
	if (ctx->free_count < want) {
		int64_t c = take_whole_chunk(ctx, CHUNK_SPLIT);
		if (c >= 0) {
			struct ptk_frame *f = &ctx->frames[(uint64_t)c * PTK_CHUNK_FRAMES];
			for (unsigned i = PTK_CHUNK_FRAMES; i-- > 0;) {
				f[i].next_free = ctx->free_head;
				ctx->free_head = &f[i];
			}
			ctx->free_count += PTK_CHUNK_FRAMES;
		}
	}
	while (want-- && ctx->free_head) {
		struct ptk_frame *f = ctx->free_head;
		ctx->free_head = f->next_free;
		ctx->free_count--;
		f->next_free = sh->head;
		sh->head = f;
		sh->count++;
	}
	ptk_lock_release(&ctx->pool_lock);
}

/* Move @n frames from @sh back to the shared list.  Shard lock held. */
static void drain(struct ptk_ctx *ctx, struct ptk_shard *sh, unsigned n)
{
	PTK_COUNT_WRITE(ctx, PTK_CW_POOL, 3);   /* lock, list head, unlock */
	ptk_lock_acquire(&ctx->pool_lock);
	while (n-- && sh->head) {
		struct ptk_frame *f = sh->head;
		sh->head = f->next_free;
		sh->count--;
		f->next_free = ctx->free_head;
		ctx->free_head = f;
		ctx->free_count++;
	}
	ptk_lock_release(&ctx->pool_lock);
}

/* Return every cached frame of every CPU to the shared list, so that an
 * allocation fails only when the whole pool is in use.  Slow path; takes
 * one shard lock at a time (no nesting of shard locks, so no deadlock). */
static void steal_all(struct ptk_ctx *ctx)
{
	for (unsigned i = 0; i < ctx->nshards; i++) {
		struct ptk_shard *o = &ctx->shards[i];
		ptk_lock_acquire(&o->lock);
		drain(ctx, o, o->count);
		ptk_lock_release(&o->lock);
	}
}

static unsigned inject_kind(enum ptk_frame_type type)
{
	switch (type) {
	case PTK_FRAME_TABLE: return PTK_INJECT_TABLE;
	case PTK_FRAME_BATCH: return PTK_INJECT_BATCH;
	default:              return PTK_INJECT_DATA;
	}
}

struct ptk_frame *ptk_frame_alloc(struct ptk_ctx *ctx, enum ptk_frame_type type,
				  bool zero)
{
	if (!ctx || type == PTK_FRAME_FREE || type >= PTK_FRAME_HUGE)
		return NULL;    /* bad argument: no frame */
	struct ptk_shard *sh = ptk_ctx_shard(ctx);
	if (ptk_inject_should_fail(ctx, inject_kind(type))) {
		atomic_fetch_add_explicit(&sh->fails, 1, memory_order_relaxed);
		return NULL;
	}
	struct ptk_frame *f = NULL;
	for (int attempt = 0; attempt < 2 && !f; attempt++) {
		if (attempt)
			steal_all(ctx);   /* the shared pool ran dry */
		ptk_lock_acquire(&sh->lock);
		if (!sh->head)
			refill(ctx, sh, ctx->cfg.cache_frames / 2);
		f = sh->head;
		if (f) {
			sh->head = f->next_free;
			sh->count--;
		}
		ptk_lock_release(&sh->lock);
	}
	if (!f) {
		atomic_fetch_add_explicit(&sh->fails, 1, memory_order_relaxed);
		return NULL;
	}
	PTK_BUG_ON(atomic_load_explicit(&f->type, memory_order_relaxed) != PTK_FRAME_FREE,
		   "allocated frame is not free");
	f->next_free = NULL;
	f->level = 0;
	atomic_store_explicit(&f->nr_used, 0, memory_order_relaxed);
	atomic_store_explicit(&f->refcount, type == PTK_FRAME_DATA ? 1u : 0u,
			      memory_order_relaxed);
	atomic_store_explicit(&f->type, (uint8_t)type, memory_order_relaxed);
	if (zero)
		memset(ptk_frame_host(ctx, f), 0, PTK_PAGE_SIZE);
	atomic_fetch_add_explicit(&sh->in_use[type], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&sh->allocs, 1, memory_order_relaxed);
	return f;
}

struct ptk_frame *ptk_frame_alloc_huge(struct ptk_ctx *ctx)
{
	if (!ctx)
		return NULL;
	struct ptk_shard *sh = ptk_ctx_shard(ctx);
	if (ptk_inject_should_fail(ctx, PTK_INJECT_DATA)) {
		atomic_fetch_add_explicit(&sh->fails, 1, memory_order_relaxed);
		return NULL;
	}
	ptk_lock_acquire(&ctx->pool_lock);
	int64_t c = take_whole_chunk(ctx, CHUNK_HUGE);
	if (c >= 0)
		ctx->huge_in_use++;
	ptk_lock_release(&ctx->pool_lock);
	if (c < 0) {
		atomic_fetch_add_explicit(&sh->fails, 1, memory_order_relaxed);
		return NULL;
	}
	struct ptk_frame *head = &ctx->frames[(uint64_t)c * PTK_CHUNK_FRAMES];
	for (unsigned i = 1; i < PTK_CHUNK_FRAMES; i++)
		atomic_store_explicit(&head[i].type, PTK_FRAME_HUGE_TAIL, memory_order_relaxed);
	atomic_store_explicit(&head->refcount, 1, memory_order_relaxed);
	atomic_store_explicit(&head->type, PTK_FRAME_HUGE, memory_order_relaxed);
	memset(ptk_frame_host(ctx, head), 0, PTK_HUGE_2M);
	atomic_fetch_add_explicit(&sh->in_use[PTK_FRAME_HUGE], PTK_CHUNK_FRAMES,
				  memory_order_relaxed);
	atomic_fetch_add_explicit(&sh->allocs, PTK_CHUNK_FRAMES, memory_order_relaxed);
	return head;
}

static void poison(struct ptk_ctx *ctx, struct ptk_frame *f, uint8_t type)
{
	if (!PTK_DEBUG_ENABLED)
		return;
	if (type == PTK_FRAME_TABLE) {
		/* Atomic stores: a stale walker may still load these slots only
		 * if the grace period was broken, which is what the poison
		 * catches. */
		ptk_slot_t *s = ptk_table_slots(ctx, f);
		for (unsigned i = 0; i < PTK_TABLE_SLOTS; i++)
			ptk_pte_init(&s[i], PTK_PTE_POISON);
	} else {
		memset(ptk_frame_host(ctx, f), POISON_BYTE,
		       type == PTK_FRAME_HUGE ? PTK_HUGE_2M : PTK_PAGE_SIZE);
	}
}

/* A descriptor of @ctx's pool, or a caller bug (abort with a message). */
static void check_frame(struct ptk_ctx *ctx, const struct ptk_frame *f)
{
	PTK_BUG_ON(f < ctx->frames || f >= ctx->frames + ctx->nframes,
		   "not a frame of this context's pool");
}

void ptk_frame_free(struct ptk_ctx *ctx, struct ptk_frame *f)
{
	if (!ctx || !f)
		return;
	check_frame(ctx, f);
	uint8_t type = atomic_load_explicit(&f->type, memory_order_relaxed);
	PTK_BUG_ON(type == PTK_FRAME_FREE, "double free");
	PTK_BUG_ON(type == PTK_FRAME_HUGE_TAIL, "freeing a huge tail");
	poison(ctx, f, type);
	atomic_store_explicit(&f->owner, NULL, memory_order_relaxed);
	struct ptk_shard *sh = ptk_ctx_shard(ctx);
	if (type == PTK_FRAME_HUGE) {
		uint64_t c = ptk_frame_pfn_fast(ctx, f) / PTK_CHUNK_FRAMES;
		for (unsigned i = 0; i < PTK_CHUNK_FRAMES; i++) {
			atomic_store_explicit(&f[i].refcount, 0, memory_order_relaxed);
			atomic_store_explicit(&f[i].type, PTK_FRAME_FREE, memory_order_relaxed);
		}
		ptk_lock_acquire(&ctx->pool_lock);
		PTK_BUG_ON(ctx->chunk_state[c] != CHUNK_HUGE, "huge frame chunk not huge");
		ctx->chunk_state[c] = CHUNK_WHOLE;
		ctx->whole_free++;
		ctx->huge_in_use--;
		ptk_lock_release(&ctx->pool_lock);
		atomic_fetch_sub_explicit(&sh->in_use[PTK_FRAME_HUGE], PTK_CHUNK_FRAMES,
					  memory_order_relaxed);
		atomic_fetch_add_explicit(&sh->frees, PTK_CHUNK_FRAMES, memory_order_relaxed);
		return;
	}
	atomic_store_explicit(&f->refcount, 0, memory_order_relaxed);
	atomic_store_explicit(&f->type, PTK_FRAME_FREE, memory_order_relaxed);
	ptk_lock_acquire(&sh->lock);
	f->next_free = sh->head;
	sh->head = f;
	if (++sh->count > ctx->cfg.cache_frames)
		drain(ctx, sh, ctx->cfg.cache_frames / 2);
	ptk_lock_release(&sh->lock);
	atomic_fetch_sub_explicit(&sh->in_use[type], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&sh->frees, 1, memory_order_relaxed);
}

void ptk_frame_put(struct ptk_ctx *ctx, struct ptk_frame *f)
{
	if (!ctx || !f)
		return;
	check_frame(ctx, f);
	f = ptk_frame_head(ctx, f);
	/* Release: our accesses to the frame happen before its free.  Acquire
	 * (taken by every put, used by the last one): pairs with the release of
	 * every earlier put, so the free comes after all their accesses.  An
	 * acq_rel RMW rather than a release RMW plus an acquire fence: same
	 * code on x86, and race detectors see the edge (TSan ignores fences). */
	uint32_t old = atomic_fetch_sub_explicit(&f->refcount, 1, memory_order_acq_rel);
	PTK_BUG_ON(old == 0, "reference count underflow");
	if (old == 1)
		ptk_frame_free(ctx, f);
}

struct ptk_frame *ptk_pfn_to_frame(struct ptk_ctx *ctx, uint64_t pfn)
{
	return ctx && pfn < ctx->nframes ? &ctx->frames[pfn] : NULL;
}

uint64_t ptk_frame_pfn(struct ptk_ctx *ctx, const struct ptk_frame *f)
{
	if (!ctx || !f || f < ctx->frames || f >= ctx->frames + ctx->nframes)
		return UINT64_MAX;
	return ptk_frame_pfn_fast(ctx, f);
}

void *ptk_frame_host(struct ptk_ctx *ctx, const struct ptk_frame *f)
{
	if (!ctx || !f || f < ctx->frames || f >= ctx->frames + ctx->nframes)
		return NULL;
	return ptk_pfn_host_fast(ctx, ptk_frame_pfn_fast(ctx, f));
}

void *ptk_pfn_host(struct ptk_ctx *ctx, uint64_t pfn)
{
	return ctx && pfn < ctx->nframes ? ptk_pfn_host_fast(ctx, pfn) : NULL;
}

void ptk_pool_stats(struct ptk_ctx *ctx, struct ptk_pool_stats *st)
{
	if (!st)
		return;
	memset(st, 0, sizeof(*st));
	if (!ctx)
		return;
	st->capacity = ctx->nframes;
	uint64_t cached = 0;
	for (unsigned i = 0; i < ctx->nshards; i++) {
		struct ptk_shard *sh = &ctx->shards[i];
		for (unsigned t = 0; t < PTK_FRAME_NR_TYPES; t++)
			st->in_use[t] += atomic_load_explicit(&sh->in_use[t], memory_order_relaxed);
		st->allocs += atomic_load_explicit(&sh->allocs, memory_order_relaxed);
		st->frees += atomic_load_explicit(&sh->frees, memory_order_relaxed);
		st->alloc_failures += atomic_load_explicit(&sh->fails, memory_order_relaxed);
		ptk_lock_acquire(&sh->lock);
		cached += sh->count;
		ptk_lock_release(&sh->lock);
	}
	ptk_lock_acquire(&ctx->pool_lock);
	st->free = cached + ctx->free_count + ctx->whole_free * PTK_CHUNK_FRAMES;
	st->huge_in_use = ctx->huge_in_use;
	ptk_lock_release(&ctx->pool_lock);
}
