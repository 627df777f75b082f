/*
 * ipi.c - the old walker synchronisation (walk_mode = PTK_WALK_IPI): walker
 * sections modelled as "interrupts off", and the IPI that waits them out.
 *
 * Protocol
 * --------
 * Every thread that walks in an IPI-mode context owns a record (struct
 * ptk_ipi_cpu, the emulated CPU) on a global, append-only list.  Entering a
 * walker section makes the record's sequence odd (a relaxed store and a
 * compiler barrier only: no fence on the walker side); leaving makes it even
 * (release).  A writer that must not free or change what a walker may be
 * using calls ptk_ipi_sync(): membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)
 * interrupts every CPU running a thread of the process and executes a full
 * barrier there (the real IPI, at its real cost), which pairs with the
 * compiler barrier after the walker's odd store: after it, either the
 * walker's odd sequence is visible to the writer, or the walker's later
 * loads see the writer's earlier stores.  The writer then waits until every
 * record that was odd has moved on ("the IPI cannot be taken while
 * interrupts are off").  This is what serialize_against_pte_lookup() did,
 * per huge PMD.
 *
 * Records are never freed: a thread that exits marks its record dead, and a
 * new thread reuses a dead record.
 */
#include <linux/membarrier.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

static _Atomic(struct ptk_ipi_cpu *) cpus;
__thread struct ptk_ipi_cpu *ptk_ipi_self;

static pthread_key_t exit_key;
static pthread_once_t exit_once = PTHREAD_ONCE_INIT;

static void on_exit_thread(void *arg)
{
	struct ptk_ipi_cpu *c = arg;
	/* Release: pairs with the acquire of the thread that claims it. */
	atomic_store_explicit(&c->live, 0, memory_order_release);
}

static void make_key(void)
{
	int rc = pthread_key_create(&exit_key, on_exit_thread);
	PTK_BUG_ON(rc != 0, "pthread_key_create failed");
}

struct ptk_ipi_cpu *ptk_ipi_register_self(void)
{
	pthread_once(&exit_once, make_key);
	struct ptk_ipi_cpu *c;
	for (c = atomic_load_explicit(&cpus, memory_order_acquire); c; c = c->next) {
		int dead = 0;
		if (atomic_compare_exchange_strong_explicit(&c->live, &dead, 1,
				memory_order_acquire, memory_order_relaxed))
			break;
	}
	if (!c) {
		c = aligned_alloc(PTK_CACHELINE, sizeof(*c));
		PTK_BUG_ON(!c, "out of memory for a walker record");
		atomic_init(&c->seq, 0);
		atomic_init(&c->live, 1);
		struct ptk_ipi_cpu *head = atomic_load_explicit(&cpus, memory_order_relaxed);
		do {
			c->next = head;
		} while (!atomic_compare_exchange_weak_explicit(&cpus, &head, c,
				memory_order_release, memory_order_relaxed));
	}
	pthread_setspecific(exit_key, c);
	ptk_ipi_self = c;
	return c;
}

int ptk_ipi_register_process(void)
{
	long rc = syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0);
	return rc == 0 ? 0 : -EOPNOTSUPP;
}

_Atomic uint64_t ptk_ipi_count;

void ptk_ipi_sync(struct ptk_ctx *ctx)
{
	(void)ctx;
	/* The IPI: a full barrier on every CPU running one of our threads;
	 * pairs with the compiler barrier in ptk_irq_off(). */
	long rc = syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
	PTK_BUG_ON(rc != 0, "membarrier failed (context not registered?)");
	atomic_fetch_add_explicit(&ptk_ipi_count, 1, memory_order_relaxed);
	/* Wait out the walkers that had interrupts off. */
	for (struct ptk_ipi_cpu *c = atomic_load_explicit(&cpus, memory_order_acquire);
	     c; c = c->next) {
		uint64_t s = atomic_load_explicit(&c->seq, memory_order_acquire);
		if (!(s & 1))
			continue;
		unsigned spins = 0;
		/* Acquire: pairs with the release in ptk_irq_on(). */
		while (atomic_load_explicit(&c->seq, memory_order_acquire) == s) {
			if (++spins > 64)
				sched_yield();
		}
	}
}

uint64_t ptk_ipi_sent(void)
{
	return atomic_load_explicit(&ptk_ipi_count, memory_order_relaxed);
}
