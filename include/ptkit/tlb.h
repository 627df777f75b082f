/*
 * ptkit/tlb.h - software TLBs, shootdowns and secondary-cache notifiers.
 *
 * Model
 * -----
 * A thread registers as a CPU (ptk_cpu_register), switches it to an address
 * space (ptk_cpu_switch) and translates through its own set-associative TLB
 * (ptk_tlb_translate): a hit is a few loads and compares and writes nothing
 * shared; a miss is a lockless walk (walk.h) inside a read-side section and
 * a refill.  Entries are per 4 KiB page (a huge leaf refills the 4 KiB piece
 * asked for).  Each address space keeps a mask of the CPUs that may hold its
 * entries: a CPU sets its bit when it switches in and clears it, after
 * flushing its whole TLB, when it switches out.
 *
 * Access windows and quiescent points
 * -----------------------------------
 * A CPU is BUSY or IDLE.  A translation returned by ptk_tlb_translate()
 * may be used (its host pointer read or written) while the CPU stays BUSY:
 * until its next quiescent point, which is its next ptk_tlb_translate(),
 * ptk_cpu_quiesce(), ptk_cpu_switch(), or any call into a ptkit operation
 * that may block (map, unmap, protect, drop, fault).  The translation is
 * the analog of an instruction's access; a BUSY CPU is like a CPU with
 * interrupts off: it delays shootdowns until its next quiescent point.
 * ptk_cpu_quiesce() makes the CPU IDLE (the translation is given up); so
 * do a failed translation and every ptkit operation that may block.  The
 * next translation makes it BUSY again (one compare-and-swap, off the hit
 * path: the hit path only reads the state).
 *
 * Invalidation (the context's tlb_mode, fixed at creation)
 * --------------------------------------------------------
 *   PTK_TLB_SYNC (default): the gather's flush posts the range (or "all")
 *     in the mailbox of every other CPU in the mask, then waits for each to
 *     acknowledge; pages are freed only after every acknowledgement.  A
 *     BUSY CPU answers at its next quiescent point (one load and compare on
 *     every translation).  An IDLE CPU - one that runs no ptkit code, may be
 *     blocked, sleeping, or descheduled - is answered for: the shooter
 *     claims it (compare-and-swap IDLE -> REMOTE, which a translation
 *     waits out), invalidates its TLB and acknowledges, so it never delays
 *     a shootdown by more than that.  (This is the user-space form of the
 *     paravirtual TLB flush for preempted vCPUs; it needs no signal, so it
 *     also works inside blocking calls of any library.)  A caller that is
 *     itself a CPU is IDLE while it waits (other shooters answer for it:
 *     two CPUs unmapping at each other cannot deadlock) and invalidates
 *     its own TLB directly.
 *   PTK_TLB_LAZY (LATR, FreeBSD delayed invalidation): the flush bumps the
 *     address space's TLB generation and returns; a CPU flushes its whole
 *     TLB when it sees a new generation at its next translation (the same
 *     one load and compare) and publishes the generation it passed; an
 *     IDLE CPU is caught up the same way by whoever needs it.  Data pages
 *     wait on the address space's deferred list, tagged with the
 *     generation, and are freed once every CPU in the mask has passed it
 *     (checked at every later flush, ptk_tlb_reap() and destroy).  When
 *     PTK_TLB_LAZY_MAX_PAGES are waiting, or no batch can hold them, or the
 *     flush has no pages to defer (protection changes), the flush waits for
 *     the CPUs as the sync mode does, so memory stays bounded and a
 *     protection change is in force when it returns.
 * The kernel half (kernel.h) is seen through every address space, but no
 * CPU runs the kernel reference itself, so a kunmap's flush targets every
 * registered CPU: sync, through the mailbox as above; lazy, an IDLE CPU is
 * claimed and flushed, and for a BUSY one the generation of the space it
 * runs (cpu->as, read seq_cst) is bumped and the CPU waited for as a lazy
 * flush of that space waits.  Kernel pages are never deferred: kunmap
 * returns after every CPU passed, in both modes.  kmap, kunmap and
 * ptk_kernel_sync() are quiescent points of the calling CPU.
 * Strict guarantee, both modes: once unmap/drop returns no translation
 * started after it can reach a frame it freed, and no frame is returned to
 * the pool while any CPU may still use a translation to it; once protect
 * returns no translation started after it grants a removed permission.
 *
 * Ordering.  The writer clears entries (table lock), then does a seq_cst
 * RMW on the address space's generation, then reads the mask; a CPU
 * switching in does a seq_cst RMW on the mask, then walks.  Store-buffering
 * on both sides, each with a full barrier: either the writer sees the bit
 * (and waits for that CPU), or the CPU's walks see the cleared entries.
 * A CPU publishes its acknowledgement / passed generation with a release
 * store after it finished using older translations and flushed; the writer
 * acquires it before freeing.
 *
 * Notifiers (secondary caches: an emulator's code cache, an RDMA
 * registration cache): invalidate_range_start() is called before any entry
 * of the range is cleared or write-protected, invalidate_range_end() after
 * the TLB invalidation, around every unmap, drop, protection change, fixed
 * map replacement and destroy, by the thread doing it, with no ptkit lock
 * held.  A notifier with invalidate_pages() is "hash-style": it gets the
 * list of virtual addresses cleared, with the table lock still held (so no
 * new entry for them can appear before it forgot them) and before any page
 * is freed.  The list is RCU-protected: unregister waits for callbacks in
 * flight; a notifier unregistered during a teardown may miss its end.
 */
#ifndef PTKIT_TLB_H
#define PTKIT_TLB_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "ptkit/as.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PTK_TLB_SETS       64u          /* sets (power of two) */
#define PTK_TLB_WAYS       4u           /* ways per set */
#define PTK_TLB_MAX_CPUS   256u         /* CPUs per context */
#define PTK_TLB_MASK_WORDS (PTK_TLB_MAX_CPUS / 64u)
#define PTK_TLB_RANGE_MAX  64u          /* pages invalidated one by one; more: all */
#define PTK_TLB_LAZY_MAX_PAGES 65536u   /* deferred pages per space, then wait */

/* Tag bits (low bits of the page address). */
#define PTK_TLB_VALID   UINT64_C(1)
#define PTK_TLB_W       UINT64_C(2)
#define PTK_TLB_LVL_SHIFT 2
#define PTK_TLB_LVL_MASK  UINT64_C(0xc)

struct ptk_tlb_entry {
	uint64_t tag;        /* page address | level << 2 | W | VALID; 0: empty */
	ptk_pte_t pte;       /* the leaf entry the refill read */
	uint64_t pfn;        /* frame of this 4 KiB page */
	uint8_t *host;       /* host address of the page (frames outside the
			      * pool, which have none, are never cached) */
};

static const uint64_t ptk_tlb_page_size[4] = {
	UINT64_C(1) << 12, UINT64_C(1) << 21, UINT64_C(1) << 30, UINT64_C(1) << 39,
};

struct ptk_cpu_stats {
	uint64_t hits, misses, refills;
	uint64_t invalidations;      /* shootdown requests / generations served */
	uint64_t full_flushes;       /* whole-TLB flushes */
	uint64_t remote_answers;     /* answered for this CPU while IDLE */
};

/*
 * A CPU.  Fields are private to tlb.c except that the inline hit path reads
 * the first group.  Owned by the thread that registered it; its TLB is
 * written by that thread while BUSY, or by a shooter that claimed it
 * (REMOTE) while it was IDLE.
 */
enum { PTK_CPU_IDLE = 0, PTK_CPU_BUSY, PTK_CPU_REMOTE };
#define PTK_TLB_NOT_BUSY UINT64_MAX     /* never a request number or generation */

struct ptk_cpu {
	/* owner's line: read on every translation */
	const _Atomic uint64_t *check;       /* &req (sync) or &as->tlb_gen (lazy) */
	uint64_t seen;                       /* owner's copy of ack while BUSY;
					      * PTK_TLB_NOT_BUSY otherwise, so
					      * one compare covers both */
	_Atomic int state;                   /* PTK_CPU_* (see above) */
	unsigned victim;                     /* replacement cursor */
	_Atomic uint64_t ack;                /* last request / generation served */
	struct ptk_as *_Atomic as;           /* current address space or NULL:
					      * written by its thread (seq_cst),
					      * read by a kernel flush */
	struct ptk_ctx *ctx;
	unsigned id;                         /* index in the context, bit in masks */
	int mode;                            /* enum ptk_tlb_mode */
	struct ptk_cpu_stats st;
	struct ptk_tlb_entry tlb[PTK_TLB_SETS][PTK_TLB_WAYS];
	/* mailbox: written by shooters (sync mode) */
	_Alignas(64) _Atomic uint64_t req;   /* requests posted */
	atomic_flag mbox_lock;               /* spin lock: async-signal-safe */
	bool mbox_all;
	uint64_t mbox_start, mbox_end;
	_Atomic uint64_t dummy_gen;          /* check target before a switch */
};

/* ---- CPUs -------------------------------------------------------------- */

/* Register the calling thread as a CPU of @ctx (one CPU per thread).
 * 0 and *out, -EBUSY (the
 * thread already is a CPU), -ENOSPC (PTK_TLB_MAX_CPUS in use), -ENOMEM. */
int ptk_cpu_register(struct ptk_ctx *ctx, struct ptk_cpu **out);

/* Switch to NULL, leave the context, free the CPU.  By its thread, before
 * the thread exits.  Not inside a read-side section (waits a grace
 * period). */
void ptk_cpu_unregister(struct ptk_cpu *cpu);

/* Make @as (or NULL: none) the CPU's address space: answers pending
 * requests, flushes the whole TLB, leaves the old space's mask, enters the
 * new one's and runs its activation hook.  By the CPU's thread.  A
 * quiescent point. */
void ptk_cpu_switch(struct ptk_cpu *cpu, struct ptk_as *as);

/* A quiescent point: the CPU holds no translation any more (IDLE); pending
 * requests are answered.  By the CPU's thread. */
void ptk_cpu_quiesce(struct ptk_cpu *cpu);

/* The CPU of the calling thread, or NULL. */
struct ptk_cpu *ptk_cpu_self(void);

/* Statistics of @cpu.  By the CPU's thread. */
void ptk_cpu_stats(struct ptk_cpu *cpu, struct ptk_cpu_stats *st);

/* Slow path of ptk_tlb_translate(): pending invalidations, then a miss. */
int ptk_tlb_translate_slow(struct ptk_cpu *cpu, uint64_t va, unsigned access,
			   struct ptk_xlate *out);

/*
 * Translate @va for @access (PTK_ACCESS_READ/WRITE/EXEC) through the CPU's
 * TLB.  By the CPU's thread, switched to an address space.  A quiescent
 * point on entry; on success the CPU holds the translation (see above).
 * 0 and *out; -EFAULT if nothing is mapped; -EACCES if mapped without
 * write permission for a write.  Never faults (see
 * ptk_tlb_translate_fault()).
 */
static inline int ptk_tlb_translate(struct ptk_cpu *cpu, uint64_t va, unsigned access,
				    struct ptk_xlate *out)
{
	/* One compare: a pending request or new generation, or the CPU is
	 * not BUSY (seen is then PTK_TLB_NOT_BUSY): the slow path claims it
	 * and answers.  Acquire: pairs with the shooter's release of a
	 * request, or the bump of a generation (after entries were cleared). */
	if (__builtin_expect(atomic_load_explicit(cpu->check, memory_order_acquire) !=
			     cpu->seen, 0))
		return ptk_tlb_translate_slow(cpu, va, access, out);
	uint64_t page = va & ~(PTK_PAGE_SIZE - 1);
	struct ptk_tlb_entry *set = cpu->tlb[(va >> PTK_PAGE_SHIFT) & (PTK_TLB_SETS - 1)];
	uint64_t want = page | PTK_TLB_VALID;
	uint64_t ignore = PTK_TLB_LVL_MASK | PTK_TLB_W;
	if (access == PTK_ACCESS_WRITE) {
		want |= PTK_TLB_W;
		ignore = PTK_TLB_LVL_MASK;
	}
	for (unsigned w = 0; w < PTK_TLB_WAYS; w++) {
		struct ptk_tlb_entry *e = &set[w];
		if ((e->tag & ~ignore) == want) {
			unsigned level = (unsigned)((e->tag & PTK_TLB_LVL_MASK) >> PTK_TLB_LVL_SHIFT);
			out->pte = e->pte;
			out->level = level;
			out->page_size = ptk_tlb_page_size[level];
			out->pfn = e->pfn;
			out->host = e->host + (va & (PTK_PAGE_SIZE - 1));
			return 0;
		}
	}
	return ptk_tlb_translate_slow(cpu, va, access, out);
}

/* ptk_tlb_translate(), and on -EFAULT/-EACCES ptk_fault() and retry. */
int ptk_tlb_translate_fault(struct ptk_cpu *cpu, uint64_t va, unsigned access,
			    struct ptk_xlate *out);

/* Lazy mode: free deferred pages every CPU has passed.  Any thread that is
 * not a CPU holding a translation.  Never blocks for CPUs. */
void ptk_tlb_reap(struct ptk_as *as);

/* ---- notifiers --------------------------------------------------------- */

struct ptk_notifier;
struct ptk_notifier_ops {
	/* Before the range's entries change.  Must not call into @as. */
	void (*invalidate_range_start)(struct ptk_notifier *n, struct ptk_as *as,
				       uint64_t start, uint64_t end);
	/* After the range's TLB invalidation. */
	void (*invalidate_range_end)(struct ptk_notifier *n, struct ptk_as *as,
				     uint64_t start, uint64_t end);
	/* Optional, hash-style: the pages just cleared or write-protected,
	 * with the table lock held (must not block on ptkit). */
	void (*invalidate_pages)(struct ptk_notifier *n, struct ptk_as *as,
				 const uint64_t *va, unsigned nr);
};

struct ptk_notifier {
	const struct ptk_notifier_ops *ops;
	void *priv;
	struct ptk_notifier *_Atomic next;   /* private */
};

/* Register @n on @as (0, -EINVAL, -ENOMEM).  Takes every lock of @as
 * (ptk_as_lock_all(), rmap.h), so it waits for teardowns of @as in
 * progress (unmaps, truncates, frame unmaps): none runs half-notified.
 * Any thread, not inside a section, holding no ptkit lock. */
int ptk_notifier_register(struct ptk_as *as, struct ptk_notifier *n);
/* Unregister @n; waits for callbacks in flight (a grace period).  Not
 * inside a read-side section, not from a callback. */
void ptk_notifier_unregister(struct ptk_as *as, struct ptk_notifier *n);

#ifdef __cplusplus
}
#endif
#endif /* PTKIT_TLB_H */
