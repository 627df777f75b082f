/*
 * ptkit/kernel.h - the shared kernel half, and keeping every root in sync
 * with it (seeds 000 and 001: lockless pgd_alloc()/pgd_free()).
 *
 * Model
 * -----
 * Each context has a reference root (the kernel's swapper_pg_dir), created
 * at the first kernel mapping.  Mapping into the kernel half (upper half of
 * the canonical address space: root slots 256..511) installs leaves under
 * the reference root; the tables below the top level are shared physically
 * by every address space of the context, so only the top-level entries are
 * per address space.  Kernel mappings are installed at map time (special
 * frames, or anonymous frames allocated and zeroed at map time), carry
 * GLOBAL and never USER, and are seen by translation, walks and faults of
 * every address space that shares the kernel half (those created with the
 * context's default number of levels; others have an empty kernel half).
 *
 * Invariants
 *   I1  Top-level kernel entries are only ever added, never cleared: kunmap
 *       clears leaves and reclaims empty tables below the top-level ones,
 *       but a table a root slot points to stays until ptk_ctx_destroy().
 *       (One table per 512 GiB is a negligible cost.)  So a root slot is
 *       either empty or equal to the reference slot, for ever: it can be
 *       filled by anyone, at any time, with a cmpxchg from 0 to the
 *       reference value, without the root's table lock, and a thread that
 *       sees the reference slot non-empty may copy it without a lock.
 *   I2  The kernel generation (a counter) is bumped after every new
 *       top-level reference entry has been stored (release).  A sync that
 *       finds the generation unchanged since the last one has nothing to
 *       do: O(1).
 *   I3  Extensions (kmap, kunmap, sync) are serialised by the context's
 *       kernel lock; create and destroy never take it.
 *
 * Designs (ptk_ctx_config.kernel_sync, fixed per context)
 * ------------------------------------------------------
 * legacy  A global list of roots under a global lock, taken on every create
 *         and destroy.  The creator copies the reference entries and links
 *         its root under the lock; an extension copies each new entry into
 *         every root on the list under the lock.  (The design the seeds
 *         remove: the lock and the list head are written by every create
 *         and destroy of every thread.)  The lock is a spinlock, as the
 *         kernel's pgd_lock is: in user space its holder can be preempted,
 *         and the waiters then spin; that is the cost of the old design
 *         where threads outnumber CPUs.
 * eager   (default) No global list, no global lock.  The registry of live
 *         address spaces is sharded per CPU (struct ptk_shard: an RCU list
 *         and a lock taken only by threads of that CPU, or by a destroy of
 *         an address space registered there).
 *           create:  root allocated zeroed (kernel half empty);
 *                    publish: link into this CPU's registry shard;
 *                    FULL BARRIER (C);
 *                    late init: copy every non-empty reference entry.
 *           extend:  store the new reference entry (under the kernel lock);
 *                    generation++; FULL BARRIER (X);
 *                    walk every registry shard under RCU and fill the
 *                    entry into every root that lacks it.
 *         Why both barriers, and why full ones: each side stores, then loads
 *         what the other side stores (publish / read reference; write
 *         reference / read registry) - the store-buffering pattern.  Without
 *         (C) and (X) both loads may be satisfied before both stores are
 *         visible: the creator reads the reference slot as empty AND the
 *         extender's walk misses the new root, which then lacks the entry
 *         for ever.  A write barrier orders stores against stores only; it
 *         does not stop a later load passing an earlier store (on x86 it is
 *         no instruction at all), which is what review of seed 001 found in
 *         arch_pgd_init_late().  (C) pairs with (X); neither works alone.
 *         Evidence: lab/litmus/sb_litmus.c (the outcome on real hardware,
 *         with one, none, write-only or both barriers; lab/litmus/README.md)
 *         and models/late_init.pml (spin, x86-TSO store buffers: correct
 *         with both, a counterexample without either).
 *         Walks go over address spaces, not threads: a thread walk misses
 *         an address space whose threads are all exiting (the NULL mm of
 *         seed 001); here an address space is in the registry from before
 *         its late init until ptk_as_destroy() unlinks it, whatever its
 *         threads do.
 *           destroy: unlink from its registry shard (that shard's lock),
 *                    zap the user half only (the kernel tables are shared),
 *                    free the root and the struct after an RCU grace
 *                    period: an extender that found it in the registry
 *                    inside its read-side section may still fill a root
 *                    slot, harmlessly, until it leaves the section.
 *         An address space being destroyed (its owner exiting) is no longer
 *         live: extensions may or may not reach it, and nothing uses it.
 * lazy    (Lutomirski's alternative) No registry at all.  Each address space
 *         records the generation its kernel half has.  ptk_as_activate(),
 *         called when a thread starts using the address space (the analog
 *         of switch_mm), compares it with the context's generation (O(1))
 *         and copies what is missing.  An extension only bumps the
 *         generation: O(1) whatever the number of address spaces.  The
 *         price: an address space in use since before an extension sees it
 *         only at its next activation, or at a kernel fault (ptk_fault()
 *         on a kernel address fills the missing slot, the vmalloc_fault
 *         analog, in every design).
 *
 * Guarantee checked by tests/stress/stress_kernel.c: once a kmap has
 * returned, every live address space (eager, legacy), or every address space
 * activated after it returned (lazy), translates the new range.
 *
 * TLBs: kunmap tears down through a gather on the reference address space;
 * kernel leaves are GLOBAL, so a software TLB must invalidate them in every
 * address space: a flush of the reference targets every registered CPU
 * (no CPU is ever switched to the reference, its own mask stays empty).
 * Limit: with tlb_mode LAZY another CPU is flushed only when IDLE (claimed);
 * a BUSY lazy CPU keeps stale kernel entries until its next switch.
 */
#ifndef PTKIT_KERNEL_H
#define PTKIT_KERNEL_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ptk_ctx;
struct ptk_as;

/* ---- kernel mappings (extensions of the kernel half) ------------------- */

/* Map frame numbers [pfn, pfn + len/4K) into the kernel half of every
 * address space of @ctx, installed at map time under the reference root.
 * With PTK_MAP_NOREPLACE exactly at *va (-EEXIST if in use); otherwise *va
 * is a hint in the kernel half (0: anywhere) and receives the address.
 * PTK_MAP_HUGE uses 2 MiB / 1 GiB leaves where aligned.  PTK_MAP_FIXED is
 * refused (-EINVAL): kernel mappings are never replaced in place.  The last
 * page of the address space is never mapped.  Returns 0 when every live
 * address space translates the range (eager, legacy) or will at its next
 * activation (lazy); -EINVAL, -ENOMEM (nothing mapped then; top-level
 * entries added on the way stay, I1).  Any thread, not inside a read-side
 * section; takes the kernel lock. */
int ptk_kmap_special(struct ptk_ctx *ctx, uint64_t *va, uint64_t len,
		     uint64_t pfn, unsigned prot, unsigned flags);

/* Map @len bytes of anonymous memory into the kernel half: frames from the
 * pool, zeroed and installed at map time (4 KiB leaves).  Placement, errors
 * and concurrency as ptk_kmap_special(). */
int ptk_kmap_anon(struct ptk_ctx *ctx, uint64_t *va, uint64_t len,
		  unsigned prot, unsigned flags);

/* Unmap [va, va+len) of the kernel half: leaves cleared, anonymous frames
 * freed after the flush, emptied tables below the top level freed after a
 * grace period; top-level entries stay (I1).  Parts with no mapping are
 * ignored.  -EINVAL for a range outside the kernel half.  Takes the kernel
 * lock; not inside a read-side section. */
int ptk_kunmap(struct ptk_ctx *ctx, uint64_t va, uint64_t len);

/* Make every registered root hold every reference entry (eager, legacy;
 * lazy: nothing, activation does it).  O(1) when the generation has not
 * moved since the last sync (I2).  Extensions call it themselves; it is
 * public for tests and for callers that populate the reference another
 * way.  Takes the kernel lock. */
void ptk_kernel_sync(struct ptk_ctx *ctx);

/* Number of reference entries @as lacks (0 when its kernel half is in sync
 * or it does not share the kernel half).  Lockless; a snapshot. */
unsigned ptk_as_kernel_missing(struct ptk_as *as);

struct ptk_kernel_stats {
	uint64_t generation;       /* top-level reference entries added so far */
	uint64_t top_entries;      /* non-empty top-level reference entries */
	uint64_t table_pages;      /* kernel page-table pages incl. the reference root */
	uint64_t rss_frames;       /* anonymous kernel frames mapped */
	uint64_t regions, mapped_bytes;
	uint64_t extensions;       /* kmap calls that mapped something */
	uint64_t syncs;            /* syncs run (one per extension, plus explicit) */
	uint64_t syncs_noop;       /* of which found the generation unchanged: O(1) */
	uint64_t walks;            /* registry (eager) or list (legacy) walks */
	uint64_t walk_visited;     /* roots visited by those walks */
	uint64_t walk_filled;      /* root slots filled by those walks */
	uint64_t late_filled;      /* slots filled at creation (late init / legacy copy) */
	uint64_t activate_filled;  /* slots filled by activation (lazy) */
	uint64_t fault_filled;     /* slots filled by kernel faults */
};

/* Counters of the kernel half of @ctx.  Any thread; takes the kernel lock. */
void ptk_kernel_stats(struct ptk_ctx *ctx, struct ptk_kernel_stats *st);

/* ---- shared-write counting (lab instrumentation) ----------------------- */

/*
 * Counts writes to cache lines shared between threads on the address-space
 * create/destroy paths, by category, in thread-local counters (counting
 * itself writes nothing shared).  Compiled in unless the build sets
 * -Dcount_shared_writes=false; at run time it is off until enabled on a
 * context, and when off each counting site costs one predicted branch on a
 * read-only context field.  Sites:
 *   GLOBAL  lines every thread writes: the legacy global lock and list head,
 *           and the list neighbours (roots of other threads' spaces);
 *   POOL    the frame allocator's shared pool (lock and free list, once per
 *           refill or drain of a per-CPU cache);
 *   CPU     this CPU's lines: a registry shard (lock, head, neighbour) and
 *           per-CPU counters;
 *   REMOTE  another CPU's registry shard (a destroy after a migration);
 *   RCU     call_rcu() enqueues on liburcu's default callback queue, one
 *           queue for the process.  Contexts set up per-CPU callback queues
 *           (ptk_rcu_percpu_callbacks()); when that succeeded, the enqueue
 *           is counted as CPU instead and this stays 0.
 * Not counted: the host allocator (malloc), and liburcu's internals beyond
 * the enqueue.
 */
enum ptk_cw {
	PTK_CW_GLOBAL, PTK_CW_POOL, PTK_CW_CPU, PTK_CW_REMOTE, PTK_CW_RCU, PTK_CW_NR
};

/* Enable or disable counting for operations on @ctx.  -EOPNOTSUPP if the
 * build has no counting sites.  Not concurrent with operations on @ctx. */
int ptk_count_writes_enable(struct ptk_ctx *ctx, bool on);

/* The calling thread's counters (PTK_CW_NR of them); reset after reading
 * if @reset. */
void ptk_count_writes_read(uint64_t out[PTK_CW_NR], bool reset);

#ifdef __cplusplus
}
#endif
#endif /* PTKIT_KERNEL_H */
