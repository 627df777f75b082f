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
 * ptk_rcu_call() with a NULL head or callback aborts with a message.
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

/*
 * Race-detector annotations.  liburcu hands callbacks to its worker thread
 * through queues ThreadSanitizer cannot see, so the edge "everything the
 * caller of ptk_rcu_call() did happens before the callback" is invisible to
 * it.  ptk_rcu_call() marks a release on the head and every callback begins
 * with PTK_RCU_CALLBACK_BEGIN(head), the matching acquire.  Likewise every
 * callback ends with PTK_RCU_CALLBACK_END(), a release that
 * ptk_rcu_barrier() acquires after liburcu's barrier returns.  And the
 * grace period itself (readers are waited for with membarrier, also
 * invisible): every ptk_rcu_read_unlock() releases a global token that each
 * callback and ptk_rcu_synchronize() acquire.  That models "a callback runs
 * after the readers that came before it" (over-approximately: the poison
 * checks of debug builds catch a reader still inside).  Without TSan all
 * compile to nothing.
 */
#if defined(__SANITIZE_THREAD__)
#define PTK_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define PTK_TSAN 1
#endif
#endif
#ifdef PTK_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define PTK_TSAN_RELEASE(p) __tsan_release((void *)(p))
extern char ptk_rcu_tsan_token;
#define PTK_RCU_CALLBACK_BEGIN(head) \
	(__tsan_acquire((void *)(head)), __tsan_acquire(&ptk_rcu_tsan_token))
#define PTK_TSAN_READ_UNLOCK() __tsan_release(&ptk_rcu_tsan_token)
#define PTK_RCU_CALLBACK_END() __tsan_release(&ptk_rcu_tsan_token)
#else
#define PTK_TSAN_RELEASE(p) ((void)(p))
#define PTK_RCU_CALLBACK_BEGIN(head) ((void)(head))
#define PTK_RCU_CALLBACK_END() ((void)0)
#define PTK_TSAN_READ_UNLOCK() ((void)0)
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
	PTK_TSAN_READ_UNLOCK();
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
