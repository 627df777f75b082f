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

/*
 * QSBR-style readers (per thread).  A thread that runs a loop with natural
 * quiescent points (an emulated CPU between guest instructions, a worker
 * between requests) goes online once and then reports quiescent states
 * itself, instead of opening a section around every walk: while online it
 * is inside one long read-side section, every walk it makes nests in it
 * (nothing but a counter increment), and ptk_quiescent_state() ends it and
 * starts the next one, which is where grace periods can end.  Built on the
 * memb flavour, so grace periods and deferred frees are the same for every
 * reader (a thread that stays online without reporting delays every free,
 * as with liburcu's qsbr flavour).  While online a thread must not wait for
 * a grace period: no ptk_rcu_synchronize(), ptk_rcu_barrier(),
 * ptk_ctx_quiesce(), ptk_ctx_destroy(), and must go offline before exit.
 * Not for walk_mode PTK_WALK_IPI threads (their sections are per walk).
 */
void ptk_qsbr_online(void);
/* Report a quiescent state: the thread holds no pointer into page tables
 * or frames obtained without a pin.  Online threads only. */
void ptk_quiescent_state(void);
void ptk_qsbr_offline(void);
/* Whether the calling thread is online (QSBR-style). */
bool ptk_qsbr_is_online(void);

/* Run @fn(@head) after a grace period.  Any registered or unregistered
 * thread (registers it); never blocks. */
void ptk_rcu_call(struct rcu_head *head, void (*fn)(struct rcu_head *));
/* Set up per-CPU callback queues for the process (once; contexts do it at
 * creation).  Returns whether call_rcu() now enqueues per CPU. */
bool ptk_rcu_percpu_callbacks(void);
/* Wait for a grace period.  Not inside a read-side section. */
void ptk_rcu_synchronize(void);
/* Wait until every callback queued so far has run.  Not inside a section,
 * not from a callback. */
void ptk_rcu_barrier(void);

#ifdef __cplusplus
}
#endif
#endif /* PTKIT_RCU_H */
