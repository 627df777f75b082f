/*
 * ptkit/gather.h - the mmu_gather: batched, preemptible teardown.
 *
 * Every teardown (unmap, drop, destroy, and protection changes for the TLB
 * part) goes through a gather that lives on the caller's stack.  It has
 * three jobs, kept apart (seed 004):
 *
 *   1. data pages: the frames whose mappings were cleared.  They are freed
 *      (their reference dropped) only after the TLB invalidation, so no CPU
 *      can still reach them through a cached translation.  Storage is a
 *      local array of PTK_GATHER_LOCAL entries, grown by page-sized batches
 *      taken from the frame pool without blocking, up to PTK_GATHER_MAX_PAGES
 *      pages.  When a batch cannot be had the gather stays on what it has
 *      and asks the walker to flush more often: teardown never fails.
 *   2. TLB invalidation: the range touched, the page sizes cleared, whether
 *      tables were freed; or "the whole address space" for destroy.
 *   3. page-table pages: detached tables are freed after an RCU grace period
 *      (so lockless walkers that still hold a pointer stay safe), in
 *      page-sized batches with one RCU callback per batch, or one callback
 *      per table when no batch can be had.  Never through an IPI.
 *
 *   The optional list of virtual addresses (job 2) is kept when a
 *   hash-style consumer is registered (a notifier with invalidate_pages,
 *   see tlb.h): such a cache cannot flush a range at once and must forget
 *   an entry before the table lock is released, or a refill could insert a
 *   duplicate.  The walk hands the list over (ptk_gather_flush_vas) before
 *   it unlocks each table, and whenever the list is full.
 *
 * Protocol, for every entry a teardown clears:
 *   unhook the entry (table lock held) -> record it in the gather ->
 *   [hash-style consumers: ptk_gather_flush_vas(), lock still held] ->
 *   ptk_gather_flush(): invalidate every TLB that may hold it (tlb.h: sync
 *   shootdown, or lazy generation), then free the data pages, then queue
 *   the tables for the grace period.
 * A flush happens when the gather is full (ptk_gather_add_page() returns
 * true), and at ptk_gather_finish().  The caller must drop its table lock
 * before flushing: locks are held per table page and released between
 * batches, so a long teardown can be preempted there and other threads
 * progress.
 *
 * Designs (ptk_ctx_config.gather_mode):
 *   PTK_GATHER_STACK (default): as above.
 *   PTK_GATHER_LEGACY: the old per-CPU gather: a fixed array of
 *     PTK_GATHER_LEGACY_NR entries per shard of the context, taken at init
 *     and held (its lock, the analog of preemption disabled) until finish;
 *     no batches; unmap holds the region lock (write) over the whole
 *     teardown.  For side-by-side comparison only.
 *
 * API, in pairs:
 *   ptk_gather_init()       / ptk_gather_finish()   start / end (flush all)
 *   ptk_gather_add_page()   / ptk_gather_flush()    record a frame / free
 *   ptk_gather_note_range() / ptk_gather_flush_vas() widen the TLB range
 *                                                    (and the VA list) /
 *                                                    hand the list over
 *   ptk_gather_add_table()  (freed by the flush)    record a detached table
 *
 * A gather belongs to one thread and one address space.  NULL gathers and
 * frames are ignored; a gather initialised with a NULL address space is
 * inert (every call on it does nothing).
 */
#ifndef PTKIT_GATHER_H
#define PTKIT_GATHER_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ptk_as;
struct ptk_ctx;
struct ptk_frame;
struct ptk_gather_batch;

#define PTK_GATHER_LOCAL      8u      /* entries in the on-stack array */
#define PTK_GATHER_MAX_PAGES  10000u  /* cap on data pages per flush */
#define PTK_GATHER_VAS        64u     /* VA list (hash-style consumers) */
#define PTK_GATHER_LEGACY_NR  506u    /* fixed per-CPU array (old design) */

struct ptk_legacy_gather;

struct ptk_gather {
	struct ptk_as *as;               /* the address space torn down */
	struct ptk_ctx *ctx;             /* its context */
	struct ptk_legacy_gather *legacy;/* old design: the shard array held */
	/* job 1: data pages */
	struct ptk_frame **slots;        /* current array: local or a batch */
	unsigned nr, max;                /* used / capacity of @slots */
	unsigned nr_pages;               /* pages gathered since last flush */
	struct ptk_gather_batch *batches;/* batches filled, newest first */
	struct ptk_gather_batch *spare;  /* batches emptied, kept for reuse */
	struct ptk_frame *local[PTK_GATHER_LOCAL]; /* the on-stack array */
	bool batch_failed;               /* a batch allocation failed */
	/* job 2: TLB invalidation */
	bool fullmm;                     /* tearing down the whole space */
	bool freed_tables;               /* tables detached since last flush */
	unsigned page_sizes;             /* bit L: a leaf of level L cleared */
	uint64_t start, end;             /* range to invalidate; start>=end: none */
	bool track_vas;                  /* keep @vas (hash-style consumer) */
	unsigned nr_vas;                 /* entries in @vas */
	uint64_t vas[PTK_GATHER_VAS];    /* pages cleared, not yet handed over */
	/* job 3: tables */
	struct ptk_gather_batch *tables; /* table batches waiting for the flush */
	struct ptk_frame *local_singles; /* tables with no batch, one callback each */
	/* statistics (per gather, for benchmarks): flushes that invalidated,
	 * batch pages allocated, allocations that failed, pages and tables
	 * gathered */
	uint64_t stat_flushes, stat_batches, stat_batch_failures, stat_pages,
		 stat_tables;
};

/* Start a gather for @as.  @fullmm: the whole address space is going away
 * (destroy).  Never fails (the legacy design may wait for its shard's
 * array).  Caller holds no table lock. */
void ptk_gather_init(struct ptk_gather *g, struct ptk_as *as, bool fullmm);

/* Widen the invalidation range by [start, end) for a leaf of @level (and
 * append @start to the VA list when kept; a full list is handed over at
 * once).  Caller holds the lock of the table whose entry it changed. */
void ptk_gather_note_range(struct ptk_gather *g, uint64_t start, uint64_t end,
			   unsigned level);

/* Hand the VA list to hash-style consumers and empty it.  Caller still
 * holds the table lock of the entries listed.  Never fails. */
void ptk_gather_flush_vas(struct ptk_gather *g);

/* Record data frame @f (whose mapping the caller just cleared, with its
 * table lock held) for freeing after the flush.  Returns true when the
 * gather is full: the caller must drop its table lock and call
 * ptk_gather_flush() before adding more. */
bool ptk_gather_add_page(struct ptk_gather *g, struct ptk_frame *f);

/* Record table @t, already detached from its parent (parent's lock held by
 * the caller), for freeing after the flush and a grace period. */
void ptk_gather_add_table(struct ptk_gather *g, struct ptk_frame *t);

/* Invalidate TLBs for what was gathered, free the data pages, queue the
 * tables for RCU.  Caller holds no table lock.  Never fails. */
void ptk_gather_flush(struct ptk_gather *g);

/* Flush and release the gather's batches.  Never fails. */
void ptk_gather_finish(struct ptk_gather *g);

#ifdef __cplusplus
}
#endif
#endif /* PTKIT_GATHER_H */
