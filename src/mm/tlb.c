/*
 * tlb.c - software TLBs, shootdowns (sync and lazy) and notifiers
 * (protocol in include/ptkit/tlb.h).
 *
 * Who writes what:
 *   cpu->tlb, victim, st, ack    whoever owns the CPU: its thread while it
 *                                is BUSY, or a shooter that claimed it
 *                                (IDLE -> REMOTE by compare-and-swap)
 *   cpu->state                   its thread (IDLE <-> BUSY, CAS from
 *                                IDLE), a shooter (IDLE -> REMOTE -> IDLE)
 *   cpu->req, mailbox            shooters, under mbox_lock (a spin lock,
 *                                held for a few stores); the owner takes
 *                                the mailbox under it
 *   as->cpumask                  CPUs switching in/out (seq_cst RMW)
 *   as->tlb_gen                  flushes (seq_cst RMW)
 *   as->deferred                 flushes and reapers, as->tlb_lock
 */
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

__thread struct ptk_cpu *ptk_this_cpu;

/* ---- the CPU's own TLB (its thread or its handler) ---------------------- */

static void tlb_flush_all(struct ptk_cpu *cpu)
{
	memset(cpu->tlb, 0, sizeof(cpu->tlb));
	cpu->st.full_flushes++;
}

static void tlb_flush_range(struct ptk_cpu *cpu, uint64_t start, uint64_t end)
{
	if (end <= start)
		return;
	if ((end - start) >> PTK_PAGE_SHIFT > PTK_TLB_RANGE_MAX) {
		tlb_flush_all(cpu);
		return;
	}
	for (uint64_t va = start & ~(PTK_PAGE_SIZE - 1); va < end; va += PTK_PAGE_SIZE) {
		struct ptk_tlb_entry *set = cpu->tlb[(va >> PTK_PAGE_SHIFT) & (PTK_TLB_SETS - 1)];
		for (unsigned w = 0; w < PTK_TLB_WAYS; w++)
			if ((set[w].tag & ~(PTK_PAGE_SIZE - 1)) == va)
				set[w].tag = 0;
	}
}

static void mbox_lock(struct ptk_cpu *cpu)
{
	while (atomic_flag_test_and_set_explicit(&cpu->mbox_lock, memory_order_acquire))
		;
}

static void mbox_unlock(struct ptk_cpu *cpu)
{
	atomic_flag_clear_explicit(&cpu->mbox_lock, memory_order_release);
}

/* Post an invalidation request (the whole TLB if @all, else [s, e), merged
 * with what is already pending) in @cpu's mailbox.  Returns the request
 * number whose acknowledgement (cpu->ack >= it) means it was served. */
static uint64_t mbox_post(struct ptk_cpu *cpu, bool all, uint64_t s, uint64_t e)
{
	mbox_lock(cpu);
	if (all) {
		cpu->mbox_all = true;
	} else {
		if (s < cpu->mbox_start)
			cpu->mbox_start = s;
		if (e > cpu->mbox_end)
			cpu->mbox_end = e;
	}
	/* Release: the mailbox before the request number; pairs with the
	 * acquire load of *cpu->check (== &cpu->req in sync mode) on the
	 * target's translate fast path (tlb.h).  The mailbox itself is read
	 * under mbox_lock in cpu_service(). */
	uint64_t r = atomic_fetch_add_explicit(&cpu->req, 1, memory_order_release) + 1;
	mbox_unlock(cpu);
	return r;
}

/* Answer what is pending: sync, take the mailbox and invalidate it; lazy,
 * flush everything if the generation moved.  Then publish (release: the
 * CPU's uses of older translations happen before the shooter frees). */
static void cpu_service(struct ptk_cpu *cpu)
{
	if (cpu->mode == PTK_TLB_SYNC) {
		mbox_lock(cpu);
		uint64_t r = atomic_load_explicit(&cpu->req, memory_order_relaxed);
		bool all = cpu->mbox_all;
		uint64_t s = cpu->mbox_start, e = cpu->mbox_end;
		cpu->mbox_all = false;
		cpu->mbox_start = UINT64_MAX;
		cpu->mbox_end = 0;
		mbox_unlock(cpu);
		if (r == atomic_load_explicit(&cpu->ack, memory_order_relaxed))
			return;
		if (all)
			tlb_flush_all(cpu);
		else
			tlb_flush_range(cpu, s, e);
		cpu->st.invalidations++;
		atomic_store_explicit(&cpu->ack, r, memory_order_release);
		if (cpu == ptk_this_cpu)
			cpu->seen = r;
	} else {
		/* Acquire: pairs with the flusher's seq_cst bump (after it
		 * cleared the entries), so a refill after this sees them. */
		uint64_t g = atomic_load_explicit(cpu->check, memory_order_acquire);
		if (g == atomic_load_explicit(&cpu->ack, memory_order_relaxed))
			return;
		tlb_flush_all(cpu);
		cpu->st.invalidations++;
		atomic_store_explicit(&cpu->ack, g, memory_order_release);
		if (cpu == ptk_this_cpu)
			cpu->seen = g;
	}
}

/* Take ownership of @cpu's TLB from IDLE: to BUSY (its thread) or
 * REMOTE (a shooter).  Acquire: pairs with the release that made it IDLE,
 * so the last owner's writes to the TLB are visible. */
static bool cpu_try_claim(struct ptk_cpu *cpu, int to)
{
	int idle = PTK_CPU_IDLE;
	return atomic_compare_exchange_strong_explicit(&cpu->state, &idle, to,
			memory_order_acquire, memory_order_relaxed);
}

/* The CPU's thread: make it BUSY (waits out a shooter answering for it). */
static void cpu_enter(struct ptk_cpu *cpu)
{
	if (atomic_load_explicit(&cpu->state, memory_order_relaxed) == PTK_CPU_BUSY)
		return;
	while (!cpu_try_claim(cpu, PTK_CPU_BUSY))
		sched_yield();
	cpu->seen = atomic_load_explicit(&cpu->ack, memory_order_relaxed);
}

/* Give the TLB up.  Release: pairs with the next claim's acquire. */
static void cpu_leave(struct ptk_cpu *cpu)
{
	if (cpu == ptk_this_cpu)
		cpu->seen = PTK_TLB_NOT_BUSY;   /* the hit path goes slow */
	atomic_store_explicit(&cpu->state, PTK_CPU_IDLE, memory_order_release);
}

void ptk_cpu_quiesce(struct ptk_cpu *cpu)
{
	if (atomic_load_explicit(&cpu->state, memory_order_relaxed) != PTK_CPU_BUSY)
		return;         /* IDLE: shooters answer for it */
	cpu_service(cpu);
	cpu_leave(cpu);
}

int ptk_tlb_translate_slow(struct ptk_cpu *cpu, uint64_t va, unsigned access,
			   struct ptk_xlate *out)
{
	cpu_enter(cpu);
	if (atomic_load_explicit(cpu->check, memory_order_acquire) != cpu->seen) {
		cpu_service(cpu);
		/* Retry the hit path: the entry may have survived a range. */
		uint64_t page = va & ~(PTK_PAGE_SIZE - 1);
		struct ptk_tlb_entry *set = cpu->tlb[(va >> PTK_PAGE_SHIFT) & (PTK_TLB_SETS - 1)];
		for (unsigned w = 0; w < PTK_TLB_WAYS; w++) {
			struct ptk_tlb_entry *e = &set[w];
			if ((e->tag & ~(PTK_PAGE_SIZE - 1)) == page &&
			    (access != PTK_ACCESS_WRITE || (e->tag & PTK_TLB_W))) {
				unsigned level = (unsigned)((e->tag & PTK_TLB_LVL_MASK) >> PTK_TLB_LVL_SHIFT);
				out->pte = e->pte;
				out->level = level;
				out->page_size = ptk_level_size(level);
				out->pfn = e->pfn;
				out->host = e->host + (va & (PTK_PAGE_SIZE - 1));
				cpu->st.hits++;
				return 0;
			}
		}
	}
	struct ptk_as *as = atomic_load_explicit(&cpu->as, memory_order_relaxed);
	PTK_BUG_ON(!as, "translate on a CPU with no address space");
	cpu->st.misses++;
	struct ptk_xlate x;
	ptk_rcu_read_lock();
	int rc = ptk_walk(as, va, &x);
	ptk_rcu_read_unlock();
	if (rc) {
		cpu_leave(cpu);         /* a failed translation holds nothing */
		return rc;
	}
	if (!x.host) {
		/* Outside the pool (special mapping of a foreign frame): not
		 * cached, so the hit path never tests for a NULL host. */
		if (access == PTK_ACCESS_WRITE && !ptk_pte_write(x.pte)) {
			cpu_leave(cpu);
			return -EACCES;
		}
		*out = x;
		return 0;
	}
	/* Refill (also read-only entries: a write then misses to -EACCES). */
	uint64_t page = va & ~(PTK_PAGE_SIZE - 1);
	struct ptk_tlb_entry *set = cpu->tlb[(va >> PTK_PAGE_SHIFT) & (PTK_TLB_SETS - 1)];
	struct ptk_tlb_entry *e = NULL;
	for (unsigned w = 0; w < PTK_TLB_WAYS; w++) {
		if ((set[w].tag & ~(PTK_PAGE_SIZE - 1)) == page || !set[w].tag) {
			e = &set[w];
			break;
		}
	}
	if (!e)
		e = &set[cpu->victim++ & (PTK_TLB_WAYS - 1)];
	uint8_t *host = (uint8_t *)x.host - (va & (PTK_PAGE_SIZE - 1));
	e->pte = x.pte;
	e->pfn = x.pfn;
	e->host = host;
	e->tag = page | PTK_TLB_VALID | ((uint64_t)x.level << PTK_TLB_LVL_SHIFT) |
		 (ptk_pte_write(x.pte) ? PTK_TLB_W : 0);
	cpu->st.refills++;
	if (access == PTK_ACCESS_WRITE && !ptk_pte_write(x.pte)) {
		cpu_leave(cpu);
		return -EACCES;
	}
	*out = x;
	return 0;
}

int ptk_tlb_translate_fault(struct ptk_cpu *cpu, uint64_t va, unsigned access,
			    struct ptk_xlate *out)
{
	for (int tries = 0; tries < 16; tries++) {
		int rc = ptk_tlb_translate(cpu, va, access, out);
		if (!rc)
			return 0;
		rc = ptk_fault(atomic_load_explicit(&cpu->as, memory_order_relaxed), va, access);
		if (rc)
			return rc;
	}
	return -EAGAIN;
}

/* ---- registration and switching ----------------------------------------- */

int ptk_cpu_register(struct ptk_ctx *ctx, struct ptk_cpu **out)
{
	if (!ctx || !out)
		return -EINVAL;
	if (ptk_this_cpu)
		return -EBUSY;
	struct ptk_cpu *cpu = aligned_alloc(PTK_CACHELINE, sizeof(*cpu));
	if (!cpu)
		return -ENOMEM;
	memset(cpu, 0, sizeof(*cpu));
	atomic_flag_clear(&cpu->mbox_lock);
	cpu->mbox_start = UINT64_MAX;
	cpu->ctx = ctx;
	cpu->mode = ctx->cfg.tlb_mode;
	cpu->check = &cpu->dummy_gen;
	cpu->seen = PTK_TLB_NOT_BUSY;
	ptk_lock_acquire(&ctx->cpu_lock);
	unsigned id = 0;
	while (id < PTK_TLB_MAX_CPUS && atomic_load_explicit(&ctx->cpus[id], memory_order_relaxed))
		id++;
	if (id == PTK_TLB_MAX_CPUS) {
		ptk_lock_release(&ctx->cpu_lock);
		free(cpu);
		return -ENOSPC;
	}
	cpu->id = id;
	atomic_store_explicit(&ctx->cpus[id], cpu, memory_order_release);
	ptk_lock_release(&ctx->cpu_lock);
	ptk_thread_register();
	ptk_this_cpu = cpu;
	*out = cpu;
	return 0;
}

void ptk_cpu_unregister(struct ptk_cpu *cpu)
{
	if (!cpu)
		return;
	PTK_BUG_ON(ptk_this_cpu != cpu, "unregistering another thread's CPU");
	ptk_cpu_switch(cpu, NULL);
	struct ptk_ctx *ctx = cpu->ctx;
	ptk_lock_acquire(&ctx->cpu_lock);
	/* Release: our uses of translations (the kernel half's included)
	 * happen before a kernel flush that finds the slot empty and frees;
	 * pairs with the acquire load in kernel_flush(). */
	atomic_store_explicit(&ctx->cpus[cpu->id], NULL, memory_order_release);
	ptk_lock_release(&ctx->cpu_lock);
	/* Shooters that read a mask before we left it may still post to us
	 * (and answer for us: we are IDLE).  They look CPUs up inside a
	 * read-side section, so after a grace period none holds @cpu. */
	ptk_rcu_synchronize();
	ptk_this_cpu = NULL;
	free(cpu);
}

struct ptk_cpu *ptk_cpu_self(void) { return ptk_this_cpu; }

void ptk_cpu_stats(struct ptk_cpu *cpu, struct ptk_cpu_stats *st)
{
	/* Shooters answering for an IDLE CPU write its statistics: own it. */
	bool busy = atomic_load_explicit(&cpu->state, memory_order_relaxed) == PTK_CPU_BUSY;
	cpu_enter(cpu);
	*st = cpu->st;
	if (!busy)
		cpu_leave(cpu);
}

void ptk_cpu_switch(struct ptk_cpu *cpu, struct ptk_as *as)
{
	PTK_BUG_ON(ptk_this_cpu != cpu, "switching another thread's CPU");
	PTK_BUG_ON(as && as->ctx != cpu->ctx, "address space of another context");
	cpu_enter(cpu);
	cpu_service(cpu);
	struct ptk_as *old = atomic_load_explicit(&cpu->as, memory_order_relaxed);
	if (old) {
		tlb_flush_all(cpu);
		/* Release: our uses of the old space's translations happen
		 * before a reaper that sees the bit clear frees pages. */
		atomic_fetch_and_explicit(&old->cpumask[cpu->id / 64],
					  ~(UINT64_C(1) << (cpu->id % 64)), memory_order_release);
		atomic_store_explicit(&cpu->as, NULL, memory_order_seq_cst);
	}
	if (as) {
		/* Seq_cst: a kernel flush reads it (kernel_flush), and the
		 * RMW below is the full barrier before our first walk. */
		atomic_store_explicit(&cpu->as, as, memory_order_seq_cst);
		/* Full barrier (seq_cst RMW): pairs with the flusher's seq_cst
		 * bump of tlb_gen before it reads the mask (store-buffering). */
		atomic_fetch_or_explicit(&as->cpumask[cpu->id / 64],
					 UINT64_C(1) << (cpu->id % 64), memory_order_seq_cst);
		if (cpu->mode == PTK_TLB_LAZY) {
			cpu->check = &as->tlb_gen;
			atomic_store_explicit(&cpu->ack,
				atomic_load_explicit(&as->tlb_gen, memory_order_acquire),
				memory_order_release);
		} else {
			cpu->check = &cpu->req;
		}
		ptk_as_activate(as);
	} else if (cpu->mode == PTK_TLB_LAZY) {
		cpu->check = &cpu->dummy_gen;
		atomic_store_explicit(&cpu->ack, 0, memory_order_release);
	}
	/* Requests posted meanwhile are answered by their shooters (IDLE). */
	cpu_leave(cpu);
}

/* ---- the flush side ------------------------------------------------------ */

/* Wait until @cpu's published value reaches @target.  A BUSY CPU answers
 * at its next quiescent point; an IDLE one is claimed and answered for. */
static void wait_for(struct ptk_as *as, struct ptk_cpu *cpu, uint64_t target, bool lazy)
{
	for (unsigned spins = 0;; spins++) {
		if (atomic_load_explicit(&cpu->ack, memory_order_acquire) >= target)
			return;
		/* Lazy: a CPU that left the space (bit clear) has passed. */
		if (lazy && !(atomic_load_explicit(&as->cpumask[cpu->id / 64],
						   memory_order_acquire) &
			      (UINT64_C(1) << (cpu->id % 64))))
			return;
		if (atomic_load_explicit(&cpu->state, memory_order_relaxed) == PTK_CPU_IDLE &&
		    cpu_try_claim(cpu, PTK_CPU_REMOTE)) {
			cpu_service(cpu);
			cpu->st.remote_answers++;
			PTK_AS_ADD(as, remote_answers, 1);
			cpu_leave(cpu);
			continue;
		}
		if (spins < 64)
			continue;
		if (spins < 128) {
			sched_yield();
			continue;
		}
		/* Long wait: the CPU is BUSY but not running (descheduled,
		 * like a preempted vCPU with interrupts off).  Sleep rather
		 * than spin: leave the core to whoever can run. */
		struct timespec ts = { 0, 20000 };
		nanosleep(&ts, NULL);
	}
}

/* Free deferred batches every CPU has passed.  tlb_lock held. */
static void reap_locked(struct ptk_as *as, bool all)
{
	struct ptk_ctx *ctx = as->ctx;
	uint64_t passed = UINT64_MAX;
	if (!all) {
		for (unsigned w = 0; w < PTK_TLB_MASK_WORDS; w++) {
			uint64_t m = atomic_load_explicit(&as->cpumask[w], memory_order_acquire);
			while (m) {
				unsigned id = w * 64 + (unsigned)__builtin_ctzll(m);
				m &= m - 1;
				struct ptk_cpu *c = atomic_load_explicit(&ctx->cpus[id],
									 memory_order_acquire);
				if (!c)
					continue;
				uint64_t a = atomic_load_explicit(&c->ack, memory_order_acquire);
				if (a < passed)
					passed = a;
			}
		}
	}
	/* Every batch whose generation was passed.  The list is not sorted:
	 * a flush takes its generation before it takes tlb_lock to defer,
	 * so two flushes of one space may push theirs in either order (an
	 * earlier version stopped at the first passed batch and freed the
	 * rest, a younger one among them).  At most PTK_TLB_LAZY_MAX_PAGES
	 * pages wait, so the walk is short. */
	struct ptk_gather_batch **pp = &as->deferred;
	while (*pp) {
		struct ptk_gather_batch *b = *pp;
		if (b->gen > passed) {
			pp = &b->next;
			continue;
		}
		*pp = b->next;
		for (unsigned i = 0; i < b->nr; i++)
			ptk_frame_put(ctx, b->slot[i]);
		as->deferred_pages -= b->nr;
		ptk_gather_batch_free(ctx, b);
	}
}

void ptk_tlb_reap(struct ptk_as *as)
{
	ptk_rcu_read_lock();
	ptk_lock_acquire(&as->tlb_lock);
	reap_locked(as, false);
	ptk_lock_release(&as->tlb_lock);
	ptk_rcu_read_unlock();
}

void ptk_tlb_as_destroy(struct ptk_as *as)
{
	for (unsigned w = 0; w < PTK_TLB_MASK_WORDS; w++)
		PTK_BUG_ON(atomic_load(&as->cpumask[w]) != 0,
			   "destroying an address space a CPU is switched to");
	ptk_lock_acquire(&as->tlb_lock);
	reap_locked(as, true);
	ptk_lock_release(&as->tlb_lock);
}

/* Lazy: move the gather's data pages onto the deferred list, tagged @gen.
 * false if the loose entries could not be put in a batch (then nothing was
 * moved).  tlb_lock held. */
static bool defer_pages(struct ptk_gather *g, uint64_t gen)
{
	struct ptk_as *as = g->as;
	struct ptk_frame **loose;
	unsigned nloose;
	if (g->legacy) {
		loose = g->slots;
		nloose = g->nr;
	} else {
		loose = g->local;
		nloose = g->batches ? PTK_GATHER_LOCAL : g->nr;
	}
	struct ptk_gather_batch *lb = NULL;
	if (nloose) {
		/* A batch for the loose entries: the gather's spare, or new. */
		lb = g->spare;
		if (lb)
			g->spare = lb->next;
		else if (!(lb = ptk_gather_batch_alloc(g->ctx)))
			return false;
		else
			g->stat_batches++;
		memcpy(lb->slot, loose, nloose * sizeof(*loose));
		lb->nr = nloose;
		lb->gen = gen;
		lb->next = as->deferred;
		as->deferred = lb;
		as->deferred_pages += nloose;
	}
	while (!g->legacy && g->batches) {
		struct ptk_gather_batch *b = g->batches;
		g->batches = b->next;
		b->gen = gen;
		b->next = as->deferred;
		as->deferred = b;
		as->deferred_pages += b->nr;
	}
	return true;
}

/* A flush of the kernel reference (kunmap).  Kernel leaves are GLOBAL and
 * seen through every address space that shares the kernel half, but no CPU
 * is ever switched to the reference itself, so its mask is empty: every
 * registered CPU is a target.  Our own TLB is flushed directly; other CPUs
 * get a mailbox request (sync mode) and are waited for, an IDLE one being
 * answered for.  Lazy mode: other CPUs watch their own space's generation,
 * not the mailbox; an IDLE one is claimed and flushed, and for a BUSY one
 * the generation of the space it runs is bumped and the CPU waited for as
 * a lazy flush of that space waits (it passes the generation, leaves the
 * space, or goes IDLE and is answered for).  Pages are freed after this
 * returns (no deferral), in both modes. */
static bool kernel_flush(struct ptk_ctx *ctx, bool all, uint64_t s, uint64_t e)
{
	struct ptk_cpu *self = ptk_this_cpu;
	ptk_rcu_read_lock();    /* CPU structs stay valid (unregister waits) */
	for (unsigned id = 0; id < PTK_TLB_MAX_CPUS; id++) {
		struct ptk_cpu *c = atomic_load_explicit(&ctx->cpus[id], memory_order_acquire);
		if (!c)
			continue;
		if (c == self) {
			cpu_enter(self);
			if (all)
				tlb_flush_all(self);
			else
				tlb_flush_range(self, s, e);
			cpu_leave(self);
			continue;
		}
		if (c->mode == PTK_TLB_LAZY) {
			if (atomic_load_explicit(&c->state, memory_order_relaxed) == PTK_CPU_IDLE &&
			    cpu_try_claim(c, PTK_CPU_REMOTE)) {
				tlb_flush_all(c);
				cpu_leave(c);
				continue;
			}
			/* BUSY (or claimed by another shooter).  Seq_cst load:
			 * the store-buffering pair with the seq_cst store of a
			 * CPU switching in (the caller's seq_cst bump is our
			 * full barrier after the entries were cleared): a CPU
			 * that switched after this load walks cleared entries,
			 * and one that switched out flushed its TLB.  The space
			 * stays valid: we are in a read-side section and spaces
			 * are freed after a grace period. */
			struct ptk_as *cur = atomic_load_explicit(&c->as, memory_order_seq_cst);
			if (!cur)
				continue;
			uint64_t g = atomic_fetch_add_explicit(&cur->tlb_gen, 1,
							       memory_order_seq_cst) + 1;
			wait_for(cur, c, g, true);
			continue;
		}
		uint64_t r = mbox_post(c, all, s, e);
		for (unsigned spins = 0; atomic_load_explicit(&c->ack, memory_order_acquire) < r;
		     spins++) {
			if (atomic_load_explicit(&c->state, memory_order_relaxed) == PTK_CPU_IDLE &&
			    cpu_try_claim(c, PTK_CPU_REMOTE)) {
				cpu_service(c);
				c->st.remote_answers++;
				cpu_leave(c);
				continue;
			}
			if (spins >= 64)
				sched_yield();
		}
	}
	ptk_rcu_read_unlock();
	return true;
}

bool ptk_tlb_flush_gather(struct ptk_gather *g)
{
	struct ptk_as *as = g->as;
	struct ptk_ctx *ctx = as->ctx;
	/* Full barrier (seq_cst RMW), after the entries were cleared and
	 * before the mask is read: pairs with the RMW of a CPU switching in. */
	uint64_t gen = atomic_fetch_add_explicit(&as->tlb_gen, 1, memory_order_seq_cst) + 1;
	bool lazy = ctx->cfg.tlb_mode == PTK_TLB_LAZY;
	bool all = g->fullmm || g->start >= g->end;
	uint64_t s = g->start, e = g->end;
	if (g->fullmm)
		return true;    /* destroy: no CPU may be switched to it */
	if (__builtin_expect(as->kernel_ref, 0))
		return kernel_flush(ctx, all, s, e);
	struct ptk_cpu *self = ptk_this_cpu;
	/* The mask, read once.  Seq_cst: the store-buffering pair with a CPU
	 * switching in (above).  Acquire: a CPU that switched out cleared its
	 * bit with a release after its last use of our translations, so a
	 * CPU absent from this snapshot is ordered before the frees that
	 * follow.  (A second, relaxed read here once lost that edge for a CPU
	 * leaving between the two reads.) */
	uint64_t mask[PTK_TLB_MASK_WORDS];
	bool any = false;
	for (unsigned w = 0; w < PTK_TLB_MASK_WORDS; w++) {
		mask[w] = atomic_load_explicit(&as->cpumask[w], memory_order_seq_cst);
		any |= mask[w] != 0;
	}
	if (!any)
		return true;
	PTK_AS_ADD(as, shootdowns, 1);

	ptk_rcu_read_lock();    /* CPU structs stay valid (unregister waits) */
	if (lazy && g->nr_pages) {
		/* Defer the pages; free what every CPU has passed. */
		ptk_lock_acquire(&as->tlb_lock);
		bool ok = as->deferred_pages < PTK_TLB_LAZY_MAX_PAGES && defer_pages(g, gen);
		if (ok)
			reap_locked(as, false);
		ptk_lock_release(&as->tlb_lock);
		if (ok) {
			ptk_rcu_read_unlock();
			return false;
		}
		/* No room: wait for the CPUs below, then free now. */
	}
	uint64_t seqs[PTK_TLB_MAX_CPUS];
	struct ptk_cpu *targets[PTK_TLB_MAX_CPUS];
	unsigned n = 0;
	for (unsigned w = 0; w < PTK_TLB_MASK_WORDS; w++) {
		uint64_t m = mask[w];
		while (m) {
			unsigned id = w * 64 + (unsigned)__builtin_ctzll(m);
			m &= m - 1;
			struct ptk_cpu *c = atomic_load_explicit(&ctx->cpus[id], memory_order_acquire);
			if (!c)
				continue;
			if (c == self) {
				/* Our own TLB (we are IDLE: claim it back). */
				cpu_enter(self);
				if (lazy)
					cpu_service(self);
				else if (all)
					tlb_flush_all(self);
				else
					tlb_flush_range(self, s, e);
				cpu_leave(self);
				continue;
			}
			if (lazy) {
				seqs[n] = gen;
			} else {
				seqs[n] = mbox_post(c, all, s, e);
			}
			targets[n++] = c;
		}
	}
	for (unsigned i = 0; i < n; i++)
		wait_for(as, targets[i], seqs[i], lazy);
	if (lazy) {
		ptk_lock_acquire(&as->tlb_lock);
		reap_locked(as, false);
		ptk_lock_release(&as->tlb_lock);
	}
	ptk_rcu_read_unlock();
	return true;
}

/* ---- notifiers ----------------------------------------------------------- */

int ptk_notifier_register(struct ptk_as *as, struct ptk_notifier *n)
{
	if (!as || !n || !n->ops)
		return -EINVAL;
	/* Every lock of @as (mm_take_all_locks): no teardown of @as runs
	 * half-notified.  Unmaps in progress finish first (ptk_as_lock_all
	 * waits for their placeholders); faults, drops, protects, clones and
	 * maps wait for the region lock; truncates and frame unmaps that
	 * reach @as hold an rmap lock (read) across their zap and are waited
	 * for.  Lock order: region lock -> rmap locks (by address) -> tlb_lock,
	 * the order every other path takes them in (rmap.h). */
	struct ptk_all_locks *all;
	int rc = ptk_as_lock_all(as, &all);
	if (rc)
		return rc;
	ptk_lock_acquire(&as->tlb_lock);
	atomic_store_explicit(&n->next, atomic_load_explicit(&as->notifiers,
			      memory_order_relaxed), memory_order_relaxed);
	/* Release: the notifier's fields before it is reachable. */
	atomic_store_explicit(&as->notifiers, n, memory_order_release);
	if (n->ops->invalidate_pages)
		atomic_fetch_add_explicit(&as->nr_page_notifiers, 1, memory_order_relaxed);
	ptk_lock_release(&as->tlb_lock);
	ptk_as_unlock_all(all);
	return 0;
}

void ptk_notifier_unregister(struct ptk_as *as, struct ptk_notifier *n)
{
	ptk_lock_acquire(&as->tlb_lock);
	struct ptk_notifier *_Atomic *pp = &as->notifiers;
	struct ptk_notifier *cur;
	while ((cur = atomic_load_explicit(pp, memory_order_relaxed)) && cur != n)
		pp = &cur->next;
	PTK_BUG_ON(!cur, "notifier not registered");
	atomic_store_explicit(pp, atomic_load_explicit(&n->next, memory_order_relaxed),
			      memory_order_release);
	if (n->ops->invalidate_pages)
		atomic_fetch_sub_explicit(&as->nr_page_notifiers, 1, memory_order_relaxed);
	ptk_lock_release(&as->tlb_lock);
	ptk_rcu_synchronize();   /* callbacks in flight are done */
}

enum notify_kind { N_START, N_END };

static void notify(struct ptk_as *as, enum notify_kind k, uint64_t s, uint64_t e)
{
	if (!atomic_load_explicit(&as->notifiers, memory_order_relaxed))
		return;
	ptk_rcu_read_lock();
	for (struct ptk_notifier *n = atomic_load_explicit(&as->notifiers, memory_order_acquire);
	     n; n = atomic_load_explicit(&n->next, memory_order_acquire)) {
		if (k == N_START && n->ops->invalidate_range_start)
			n->ops->invalidate_range_start(n, as, s, e);
		else if (k == N_END && n->ops->invalidate_range_end)
			n->ops->invalidate_range_end(n, as, s, e);
	}
	ptk_rcu_read_unlock();
}

void ptk_notify_start(struct ptk_as *as, uint64_t start, uint64_t end)
{
	notify(as, N_START, start, end);
}

void ptk_notify_end(struct ptk_as *as, uint64_t start, uint64_t end)
{
	notify(as, N_END, start, end);
}

void ptk_notify_pages(struct ptk_as *as, const uint64_t *va, unsigned nr)
{
	ptk_rcu_read_lock();
	for (struct ptk_notifier *n = atomic_load_explicit(&as->notifiers, memory_order_acquire);
	     n; n = atomic_load_explicit(&n->next, memory_order_acquire))
		if (n->ops->invalidate_pages)
			n->ops->invalidate_pages(n, as, va, nr);
	ptk_rcu_read_unlock();
}
