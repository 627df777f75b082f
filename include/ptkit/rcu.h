/*
 * ptkit/rcu.h - read-copy-update glue over liburcu (memb flavour).
 *
 * Protocol
 * --------
 * Lockless readers (walkers, fast pins, software-TLB refills) run between
 * ptk_rcu_read_lock() and ptk_rcu_read_unlock().  Anything a reader might
 * reach (a page-table page, its descriptor and the lock embedded in it) is
 * freed only through ptk_rcu_call(), whose callback runs after every reader
 * that could have seen the object has left its section (a grace period).
 * Readers never block on writers and writers never wait for readers, except
 * in ptk_rcu_synchronize()/ptk_rcu_barrier(), which slow paths use.
 *
 * Threads are registered with liburcu on their first ptkit call that needs
 * it, and unregistered when they exit.  ptk_thread_register() does it
 * explicitly (for example before timing a loop).
 *
 * Read-side sections nest.  Do not call ptk_rcu_synchronize() or
 * ptk_rcu_barrier() inside one (that would wait for itself).
 */
#ifndef PTKIT_RCU_H
#define PTKIT_RCU_H

#include <stdbool.h>
#include <urcu/urcu-memb.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Register the calling thread with RCU (idempotent). */
void ptk_thread_register(void);
/* Unregister the calling thread (idempotent); not inside a section. */
void ptk_thread_unregister(void);

extern __thread bool ptk_rcu_registered;
#ifdef PTK_DEBUG
extern __thread int ptk_rcu_depth;
#endif

/* Enter a read-side section.  Any thread; registers it on first use. */
static inline void ptk_rcu_read_lock(void)
{
	if (__builtin_expect(!ptk_rcu_registered, 0))
		ptk_thread_register();
	urcu_memb_read_lock();
#ifdef PTK_DEBUG
	ptk_rcu_depth++;
#endif
}

/* Leave a read-side section entered by ptk_rcu_read_lock(). */
static inline void ptk_rcu_read_unlock(void)
{
#ifdef PTK_DEBUG
	ptk_rcu_depth--;
#endif
	urcu_memb_read_unlock();
}

/* Debug builds: whether the caller is inside a section.  Release: true. */
static inline bool ptk_rcu_in_section(void)
{
#ifdef PTK_DEBUG
	return ptk_rcu_depth > 0;
#else
	return true;
#endif
}

/* Run @fn(@head) after a grace period.  Any registered or unregistered
 * thread (registers it); never blocks. */
void ptk_rcu_call(struct rcu_head *head, void (*fn)(struct rcu_head *));
/* Wait for a grace period.  Not inside a read-side section. */
void ptk_rcu_synchronize(void);
/* Wait until every callback queued so far has run.  Not inside a section,
 * not from a callback. */
void ptk_rcu_barrier(void);

#ifdef __cplusplus
}
#endif
#endif /* PTKIT_RCU_H */
