/*
 * ctx.c - contexts: create the pool and the per-CPU caches, destroy them.
 */
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

#define DEFAULT_POOL_BYTES (UINT64_C(256) << 20)
#define MAX_POOL_BYTES     (UINT64_C(1) << 46)   /* 64 TiB of reservation */

void ptk_ctx_config_default(struct ptk_ctx_config *cfg)
{
	if (!cfg)
		return;
	memset(cfg, 0, sizeof(*cfg));
	cfg->pool_bytes = DEFAULT_POOL_BYTES;
	cfg->levels = 4;
	long n = sysconf(_SC_NPROCESSORS_CONF);
	cfg->cache_shards = n < 2 ? 2u : (unsigned)n;
	cfg->cache_frames = 64;
}

static int fill_config(const struct ptk_ctx_config *in, struct ptk_ctx_config *out)
{
	struct ptk_ctx_config def;
	ptk_ctx_config_default(&def);
	*out = in ? *in : def;
	if (!out->pool_bytes)
		out->pool_bytes = def.pool_bytes;
	if (!out->levels)
		out->levels = def.levels;
	if (!out->cache_shards)
		out->cache_shards = def.cache_shards;
	if (!out->cache_frames)
		out->cache_frames = def.cache_frames;
	if (out->levels != 4 && out->levels != 5)
		return -EINVAL;
	if (out->pool_bytes > MAX_POOL_BYTES || out->cache_shards > 4096 ||
	    out->cache_frames > 1u << 16 || out->cache_frames < 2)
		return -EINVAL;
	out->pool_bytes = (out->pool_bytes + PTK_HUGE_2M - 1) & ~(PTK_HUGE_2M - 1);
	if ((unsigned)out->kernel_sync > PTK_KSYNC_LEGACY ||
	    (unsigned)out->walk_mode > PTK_WALK_IPI ||
	    (unsigned)out->gather_mode > PTK_GATHER_LEGACY ||
	    (unsigned)out->tlb_mode > PTK_TLB_LAZY ||
	    (unsigned)out->rmap_lock > PTK_RMAP_SPIN)
		return -EINVAL;
	return 0;
}

unsigned ptk_ctx_shard_index(const struct ptk_ctx *ctx)
{
	int cpu = sched_getcpu();
	if (cpu < 0)
		cpu = 0;
	return (unsigned)cpu % ctx->nshards;
}

int ptk_ctx_create(const struct ptk_ctx_config *cfg, struct ptk_ctx **out)
{
	struct ptk_ctx_config c;
	int rc = fill_config(cfg, &c);
	if (rc)
		return rc;
	if (!out)
		return -EINVAL;
	/* The old walker design sends real IPIs: membarrier must work. */
	if (c.walk_mode == PTK_WALK_IPI && (rc = ptk_ipi_register_process()))
		return rc;

	/* Cache-line aligned (walkers read base and nframes on every lookup). */
	struct ptk_ctx *ctx = aligned_alloc(PTK_CACHELINE, sizeof(*ctx));
	if (ctx)
		memset(ctx, 0, sizeof(*ctx));
	if (!ctx)
		return -ENOMEM;
	ctx->cfg = c;
	ctx->nframes = c.pool_bytes >> PTK_PAGE_SHIFT;
	ctx->nchunks = ctx->nframes / PTK_CHUNK_FRAMES;

	/* Reserve, do not commit: frames and descriptors are touched lazily. */
	ctx->base = mmap(NULL, c.pool_bytes, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	size_t desc_bytes = ctx->nframes * sizeof(struct ptk_frame);
	ctx->frames = mmap(NULL, desc_bytes, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	ctx->chunk_state = calloc(ctx->nchunks, 1);
	ctx->nshards = c.cache_shards;
	ctx->shards = aligned_alloc(PTK_CACHELINE, sizeof(struct ptk_shard) * ctx->nshards);
	if (ctx->base == MAP_FAILED || ctx->frames == MAP_FAILED ||
	    !ctx->chunk_state || !ctx->shards) {
		if (ctx->base != MAP_FAILED && ctx->base)
			munmap(ctx->base, c.pool_bytes);
		if (ctx->frames != MAP_FAILED && ctx->frames)
			munmap(ctx->frames, desc_bytes);
		free(ctx->chunk_state);
		free(ctx->shards);
		free(ctx);
		return -ENOMEM;
	}
	memset(ctx->shards, 0, sizeof(struct ptk_shard) * ctx->nshards);
	for (unsigned i = 0; i < ctx->nshards; i++)
		ptk_lock_init(&ctx->shards[i].lock);
	ptk_lock_init(&ctx->pool_lock);
	ptk_lock_init(&ctx->anon_free_lock);
	ptk_kernel_init(ctx);
	ctx->rcu_percpu = ptk_rcu_percpu_callbacks();
	ptk_lock_init(&ctx->cpu_lock);
	if (c.gather_mode == PTK_GATHER_LEGACY &&
	    !(ctx->legacy_gathers = ptk_legacy_gathers_create(ctx->nshards))) {
		ptk_ctx_destroy(ctx);
		return -ENOMEM;
	}
	ctx->free_count = 0;
	ctx->whole_free = ctx->nchunks;
	ctx->magic = PTK_CTX_MAGIC;
	*out = ctx;
	return 0;
}

const struct ptk_ctx_config *ptk_ctx_config(const struct ptk_ctx *ctx)
{
	if (!ctx)
		return NULL;
	PTK_CHECK_CTX(ctx);
	return &ctx->cfg;
}

void ptk_ctx_quiesce(struct ptk_ctx *ctx)
{
	if (ctx)
		PTK_CHECK_CTX(ctx);
	ptk_rcu_barrier();
}

void ptk_ctx_destroy(struct ptk_ctx *ctx)
{
	if (!ctx)
		return;
	PTK_CHECK_CTX(ctx);
	uint64_t created = 0, destroyed = 0;
	for (unsigned i = 0; i < ctx->nshards; i++) {
		created += atomic_load(&ctx->shards[i].as_created);
		destroyed += atomic_load(&ctx->shards[i].as_destroyed);
	}
	PTK_BUG_ON(created != destroyed, "address spaces still alive");
	/* Tables (and address-space structs) freed by RCU must be back before
	 * the pool goes away. */
	ptk_rcu_barrier();
	/* The kernel half: the reference root and every shared table. */
	ptk_kernel_fini(ctx);
	ptk_rcu_barrier();
	ptk_rmap_anon_fini(ctx);    /* after every family's RCU callback */
	ctx->magic = 0;
	for (unsigned i = 0; i < ctx->nshards; i++) {
		ptk_lock_destroy(&ctx->shards[i].lock);
		ptk_lock_destroy(&ctx->shards[i].reg_lock);
	}
	ptk_lock_destroy(&ctx->pool_lock);
	for (unsigned i = 0; i < PTK_TLB_MAX_CPUS; i++)
		PTK_BUG_ON(atomic_load(&ctx->cpus[i]) != NULL, "a CPU is still registered");
	ptk_lock_destroy(&ctx->cpu_lock);
	ptk_legacy_gathers_destroy(ctx->legacy_gathers, ctx->nshards);
	munmap(ctx->base, ctx->cfg.pool_bytes);
	munmap(ctx->frames, ctx->nframes * sizeof(struct ptk_frame));
	free(ctx->chunk_state);
	free(ctx->shards);
	free(ctx);
}

/* ---- failure injection -------------------------------------------------- */

bool ptk_inject_should_fail(struct ptk_ctx *ctx, unsigned kind)
{
	if (atomic_load_explicit(&ctx->count_kinds, memory_order_relaxed) & kind)
		atomic_fetch_add_explicit(&ctx->count, 1, memory_order_relaxed);
	if (!(atomic_load_explicit(&ctx->inject_kinds, memory_order_relaxed) & kind))
		return false;
	long left = atomic_fetch_sub_explicit(&ctx->inject_nth, 1, memory_order_relaxed);
	if (left == 1) {
		atomic_store_explicit(&ctx->inject_kinds, 0, memory_order_relaxed);
		return true;
	}
	return false;
}

long ptk_ctx_inject_failure(struct ptk_ctx *ctx, unsigned kinds, long nth)
{
	if (!ctx)
		return -EINVAL;
	PTK_CHECK_CTX(ctx);
	long prev = atomic_load_explicit(&ctx->inject_nth, memory_order_relaxed);
	atomic_store_explicit(&ctx->inject_kinds, 0, memory_order_relaxed);
	/* Disarmed: nothing remains (a later call must not report a stale
	 * count from a setting that was cancelled). */
	atomic_store_explicit(&ctx->inject_nth, 0, memory_order_relaxed);
	if (nth > 0 && (kinds & (PTK_INJECT_ALL | PTK_INJECT_META))) {
		atomic_store_explicit(&ctx->inject_nth, nth, memory_order_relaxed);
		atomic_store_explicit(&ctx->inject_kinds, kinds & (PTK_INJECT_ALL | PTK_INJECT_META),
				      memory_order_relaxed);
	}
	return prev > 0 ? prev : 0;
}

long ptk_ctx_alloc_count(struct ptk_ctx *ctx, unsigned kinds, int reset)
{
	if (!ctx)
		return -EINVAL;
	PTK_CHECK_CTX(ctx);
	long n = atomic_load_explicit(&ctx->count, memory_order_relaxed);
	if (reset) {
		atomic_store_explicit(&ctx->count, 0, memory_order_relaxed);
		atomic_store_explicit(&ctx->count_kinds, kinds & (PTK_INJECT_ALL | PTK_INJECT_META),
				      memory_order_relaxed);
	}
	return n;
}
