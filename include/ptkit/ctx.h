/*
 * ptkit/ctx.h - a context: one frame pool, its configuration, and the
 * address spaces created in it.
 *
 * A context is created once and destroyed after every address space in it
 * has been destroyed.  It is the unit that selects designs: each mechanism
 * that keeps its old design beside the new one reads its choice from the
 * context's configuration, fixed at creation, so one run can compare both
 * on the same workload.  The new designs are the defaults.
 *
 * Concurrency: ptk_ctx_create()/ptk_ctx_destroy() are not concurrent with
 * any other use of the same context.  Everything else is thread-safe.
 *
 * Bad arguments: a NULL context gives -EINVAL (NULL from ptk_ctx_config(),
 * nothing from destroy and quiesce).  Debug builds tag live contexts and
 * abort with a message on one used after ptk_ctx_destroy().
 */
#ifndef PTKIT_CTX_H
#define PTKIT_CTX_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ptk_ctx;

/*
 * Design choices, one per mechanism, fixed when the context is created.
 * The first value of each enum (0) is the new design and the default; the
 * others are the old designs kept for side-by-side comparison.  A design a
 * build does not implement yet is refused with -EOPNOTSUPP.
 */
enum ptk_kernel_sync {          /* keeping kernel halves in sync (seeds 000/001) */
	PTK_KSYNC_EAGER = 0,    /* registry walk under RCU, late init, full barriers */
	PTK_KSYNC_LAZY,         /* per-space generation checked at activation */
	PTK_KSYNC_LEGACY,       /* global list of roots under a global lock */
};

enum ptk_walk_mode {            /* lockless walkers (seeds 002/003) */
	PTK_WALK_RCU = 0,       /* RCU read-side sections, tables freed by RCU */
	PTK_WALK_IPI,           /* "interrupts-off" sections + membarrier IPIs */
};

enum ptk_gather_mode {          /* teardown (seed 004) */
	PTK_GATHER_STACK = 0,   /* on-stack gather, table locks per batch */
	PTK_GATHER_LEGACY,      /* fixed per-CPU array, space lock held throughout */
};

enum ptk_tlb_mode {             /* software-TLB invalidation */
	PTK_TLB_SYNC = 0,       /* synchronous shootdown with acknowledgements */
	PTK_TLB_LAZY,           /* generation based, invalidated on next use */
};

enum ptk_rmap_lock {            /* reverse-map locks (seed 004) */
	PTK_RMAP_SLEEPING = 0,  /* mutex / rwsem */
	PTK_RMAP_SPIN,          /* spinlocks */
};

struct ptk_ctx_config {
	/* Pool capacity in bytes; rounded up to 2 MiB.  Host memory is
	 * reserved, not committed: untouched frames cost nothing.  0 selects
	 * the default (256 MiB). */
	uint64_t pool_bytes;
	/* Default levels of new address spaces: 4 (48-bit) or 5 (57-bit).
	 * 0 selects 4. */
	unsigned levels;
	/* Per-CPU frame caches: 0 selects one per online CPU (at least 2). */
	unsigned cache_shards;
	/* Frames one cache holds at most (0: 64); it refills and drains half. */
	unsigned cache_frames;
	/* Designs (see the enums above); zero-initialised means the new ones. */
	enum ptk_kernel_sync kernel_sync;
	enum ptk_walk_mode walk_mode;
	enum ptk_gather_mode gather_mode;
	enum ptk_tlb_mode tlb_mode;
	enum ptk_rmap_lock rmap_lock;
};

/* Fill @cfg with defaults. */
void ptk_ctx_config_default(struct ptk_ctx_config *cfg);

/* Create a context.  @cfg may be NULL (defaults).  Returns 0 and *out, or
 * -EINVAL (bad configuration), -EOPNOTSUPP (a design not built in),
 * -ENOMEM (host memory). */
int ptk_ctx_create(const struct ptk_ctx_config *cfg, struct ptk_ctx **out);

/* Destroy a context whose address spaces have all been destroyed.  Waits
 * for pending RCU callbacks (frees of tables), then releases the pool.
 * Aborts if an address space is still alive (a caller bug).  Not inside a
 * read-side section. */
void ptk_ctx_destroy(struct ptk_ctx *ctx);

/* The configuration in force (defaults filled in). */
const struct ptk_ctx_config *ptk_ctx_config(const struct ptk_ctx *ctx);

/* Wait until every RCU-deferred free queued so far has completed, so that
 * pool counters are exact.  Not inside a read-side section. */
void ptk_ctx_quiesce(struct ptk_ctx *ctx);

/* ---- allocation-failure injection (tests) ------------------------------ */

enum ptk_inject_kind {
	PTK_INJECT_DATA  = 1u << 0,   /* data frames (small and huge) */
	PTK_INJECT_TABLE = 1u << 1,   /* page-table frames */
	PTK_INJECT_BATCH = 1u << 2,   /* gather batch frames */
	PTK_INJECT_ALL   = 7u,        /* every frame kind */
	/* Host-memory metadata (not frames, not in ALL): reverse-map link
	 * nodes, a clone's region array, take-all-locks' lock array. */
	PTK_INJECT_META  = 1u << 3,
};

/* Fail the @nth (1-based) next allocation of a kind in @kinds, once; 0
 * disarms.  Counting is global to the context and exact only when one
 * thread allocates.  Returns the previous setting's remaining count. */
long ptk_ctx_inject_failure(struct ptk_ctx *ctx, unsigned kinds, long nth);

/* Number of allocations of @kinds seen since the counter was last reset
 * (by this call with @reset non-zero).  Used to size injection loops. */
long ptk_ctx_alloc_count(struct ptk_ctx *ctx, unsigned kinds, int reset);

#ifdef __cplusplus
}
#endif
#endif /* PTKIT_CTX_H */
