/*
 * ptkit/frame.h - the frame pool: 4 KiB frames of host memory and their
 * descriptors.
 *
 * Model
 * -----
 * A context owns one pool: a contiguous reservation of host memory split
 * into 4 KiB frames, numbered 0..capacity-1 (the frame number, "pfn"), each
 * with a descriptor (struct ptk_frame, the struct page / ptdesc analog).
 * Data pages, page-table pages and the gather's batch pages all come from
 * the pool, so every byte ptkit uses for them is counted.  The pool is cut
 * into 2 MiB chunks: a chunk is either whole (free, or one 2 MiB huge frame
 * in use) or split into 512 small frames.  A split chunk stays split.
 *
 * Allocation goes through per-CPU caches (shards picked by sched_getcpu(),
 * each behind its own lock) in front of one shared free list; a cache
 * refills and drains in batches, so the shared list's lock is taken once per
 * batch, not per frame.  Exhaustion returns NULL (callers turn it into
 * -ENOMEM) and changes nothing.
 *
 * Reference counts
 * ----------------
 * refcount counts mappings and pins of a data frame.  0 means free (or
 * frozen: see ptk_frame_try_get()).  ptk_frame_put() that drops the last
 * reference returns the frame to the pool.  Page-table frames are not
 * reference counted: they are freed by the mechanism that detached them,
 * always after an RCU grace period.
 *
 * Descriptor layout
 * -----------------
 * The RCU head shares a union with the free-list link only: a table frame
 * waiting for its grace period must keep its lock (ptl) and type valid for
 * walkers and writers that still hold a pointer to it.
 */
#ifndef PTKIT_FRAME_H
#define PTKIT_FRAME_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <urcu/urcu-memb.h>

#include "ptkit/lock.h"

#ifdef __cplusplus
extern "C" {
#endif

struct ptk_ctx;
struct ptk_rmap;

enum ptk_frame_type {
	PTK_FRAME_FREE = 0,
	PTK_FRAME_DATA,        /* anonymous or object data page */
	PTK_FRAME_TABLE,       /* page-table page */
	PTK_FRAME_BATCH,       /* a gather batch page */
	PTK_FRAME_HUGE,        /* head of a 2 MiB huge data frame */
	PTK_FRAME_HUGE_TAIL,   /* frames 1..511 of a huge frame */
	PTK_FRAME_TYPES
};

struct ptk_frame {
	_Atomic uint32_t refcount;   /* data: mappings + pins; 0 free/frozen */
	_Atomic uint8_t type;        /* enum ptk_frame_type */
	uint8_t level;               /* tables: level of the table */
	uint16_t reserved;
	/* Tables: slots in use.  Written only with ptl held; read locklessly
	 * as a hint only. */
	_Atomic uint32_t nr_used;
	union {
		struct ptk_frame *next_free;   /* on a free list */
		struct rcu_head rcu;           /* waiting for a grace period */
	};
	struct ptk_ctx *ctx;         /* owning context (set once) */
	struct ptk_lock ptl;         /* tables: the split page-table lock */
	/* Data frames (a huge frame: its head): the reverse map that finds
	 * every mapping of it (an object's, or an anonymous family's; NULL
	 * for frames nothing reverse-maps) and its page index there (object
	 * page offset, or virtual page number for anonymous memory).  Set
	 * before the frame is first mapped, cleared when it is freed; see
	 * ptkit/rmap.h. */
	struct ptk_rmap *_Atomic owner;
	_Atomic uint64_t index;
};

/* ---- pool management (ctx.c calls these) ------------------------------- */

/* Bad arguments: NULL contexts and frames are ignored (free, put, get) or
 * answered with NULL / false / UINT64_MAX (alloc, lookups, try_get); a
 * descriptor that is not in @ctx's pool, a double free and a reference
 * count underflow are caller bugs and abort with a message (PTK_BUG_ON). */

/* Number of frame types, for statistics arrays. */
#define PTK_FRAME_NR_TYPES PTK_FRAME_TYPES

/* Allocate one 4 KiB frame of @type.  Contents are zeroed if @zero (data and
 * batch frames; tables are initialised by table.c).  Returns NULL for a
 * NULL @ctx or a @type other than DATA/TABLE/BATCH, and when the
 * pool is exhausted (or an injected failure fires).  Any thread; never
 * sleeps for memory (it may take the shard's lock). */
struct ptk_frame *ptk_frame_alloc(struct ptk_ctx *ctx, enum ptk_frame_type type,
				  bool zero);

/* Allocate a 2 MiB huge data frame (512 contiguous frames, 2 MiB aligned).
 * NULL when no whole chunk is free.  Contents zeroed. */
struct ptk_frame *ptk_frame_alloc_huge(struct ptk_ctx *ctx);

/* Return a frame (small or huge head) to the pool.  The caller owns it: no
 * mapping, pin or walker can reach it any more (tables: the grace period
 * has ended).  Debug builds poison the contents. */
void ptk_frame_free(struct ptk_ctx *ctx, struct ptk_frame *f);

/* Drop one reference to a data frame; the last one frees it. */
void ptk_frame_put(struct ptk_ctx *ctx, struct ptk_frame *f);

/* Take a reference on a frame the caller already holds a reference to (or
 * maps under the table lock). */
static inline void ptk_frame_get(struct ptk_frame *f)
{
	if (!f)
		return;
	atomic_fetch_add_explicit(&f->refcount, 1, memory_order_relaxed);
}

/* Speculative reference for lockless pins: succeeds only if the frame is
 * live (refcount > 0, i.e. neither free nor frozen).  The caller must then
 * re-check that the entry it came from still maps the frame, and drop the
 * reference if not. */
static inline bool ptk_frame_try_get(struct ptk_frame *f)
{
	if (!f)
		return false;
	uint32_t c = atomic_load_explicit(&f->refcount, memory_order_relaxed);
	do {
		if (c == 0)
			return false;
	} while (!atomic_compare_exchange_weak_explicit(&f->refcount, &c, c + 1,
			memory_order_acquire, memory_order_relaxed));
	return true;
}

/* ---- frame number <-> descriptor <-> host memory ----------------------- */

/* Descriptor of @pfn, or NULL if @pfn is outside the pool. */
struct ptk_frame *ptk_pfn_to_frame(struct ptk_ctx *ctx, uint64_t pfn);
uint64_t ptk_frame_pfn(struct ptk_ctx *ctx, const struct ptk_frame *f);
/* Host address of the frame's 4 KiB (or 2 MiB for a huge head). */
void *ptk_frame_host(struct ptk_ctx *ctx, const struct ptk_frame *f);
/* Host address of @pfn, or NULL if outside the pool. */
void *ptk_pfn_host(struct ptk_ctx *ctx, uint64_t pfn);

/* ---- accounting -------------------------------------------------------- */

struct ptk_pool_stats {
	uint64_t capacity;                      /* frames in the pool */
	uint64_t free;                          /* frames free (incl. caches) */
	uint64_t in_use[PTK_FRAME_NR_TYPES];    /* frames in use by type */
	uint64_t huge_in_use;                   /* 2 MiB huge frames in use */
	uint64_t allocs, frees, alloc_failures; /* cumulative, 4 KiB units */
};

/* Snapshot of the pool's counters.  Exact when no allocation runs
 * concurrently; otherwise each counter is individually consistent. */
void ptk_pool_stats(struct ptk_ctx *ctx, struct ptk_pool_stats *st);

#ifdef __cplusplus
}
#endif
#endif /* PTKIT_FRAME_H */
