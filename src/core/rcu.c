/*
 * rcu.c - liburcu glue: automatic thread registration, deferred frees.
 */
#include <pthread.h>

#include "ptkit/debug.h"
#include "ptkit/rcu.h"

__thread bool ptk_rcu_registered;
#ifdef PTK_TSAN
char ptk_rcu_tsan_token;
#endif
#ifdef PTK_DEBUG
__thread int ptk_rcu_depth;
#endif

/* Debug builds: inside a section.  Release: false (checks compile away). */
static inline bool ptk_rcu_in_section_debug(void)
{
#ifdef PTK_DEBUG
	return ptk_rcu_depth > 0;
#else
	return false;
#endif
}

static pthread_key_t exit_key;
static pthread_once_t exit_once = PTHREAD_ONCE_INIT;

/* Thread-exit destructor: unregister a thread that registered itself. */
static void on_thread_exit(void *arg)
{
	(void)arg;
	ptk_thread_unregister();
}

static void make_key(void)
{
	int rc = pthread_key_create(&exit_key, on_thread_exit);
	PTK_BUG_ON(rc != 0, "pthread_key_create failed");
}

void ptk_thread_register(void)
{
	if (ptk_rcu_registered)
		return;
	pthread_once(&exit_once, make_key);
	urcu_memb_register_thread();
	ptk_rcu_registered = true;
	/* Any non-NULL value arms the destructor. */
	pthread_setspecific(exit_key, (void *)1);
}

void ptk_thread_unregister(void)
{
	if (!ptk_rcu_registered)
		return;
	PTK_CONTRACT(!ptk_rcu_in_section_debug(), "unregistering inside a read-side section");
	urcu_memb_unregister_thread();
	ptk_rcu_registered = false;
	pthread_setspecific(exit_key, NULL);
}

void ptk_rcu_call(struct rcu_head *head, void (*fn)(struct rcu_head *))
{
	PTK_BUG_ON(!head || !fn, "NULL head or callback");
	if (!ptk_rcu_registered)
		ptk_thread_register();
	PTK_TSAN_RELEASE(head);   /* pairs with PTK_RCU_CALLBACK_BEGIN */
	urcu_memb_call_rcu(head, fn);
}

void ptk_rcu_synchronize(void)
{
	PTK_CONTRACT(!ptk_rcu_in_section_debug(), "synchronize inside a read-side section");
	urcu_memb_synchronize_rcu();
#ifdef PTK_TSAN
	__tsan_acquire(&ptk_rcu_tsan_token);   /* pairs with PTK_TSAN_READ_UNLOCK */
#endif
}

void ptk_rcu_barrier(void)
{
	PTK_CONTRACT(!ptk_rcu_in_section_debug(), "barrier inside a read-side section");
	if (!ptk_rcu_registered)
		ptk_thread_register();
	urcu_memb_barrier();
#ifdef PTK_TSAN
	__tsan_acquire(&ptk_rcu_tsan_token);   /* pairs with PTK_RCU_CALLBACK_END */
#endif
}

/* ---- QSBR-style readers ------------------------------------------------- */

static __thread bool qsbr_online;

void ptk_qsbr_online(void)
{
	PTK_CONTRACT(!qsbr_online, "already online");
	ptk_rcu_read_lock();
	qsbr_online = true;
}

void ptk_quiescent_state(void)
{
	PTK_CONTRACT(qsbr_online, "quiescent state reported while offline");
	/* Leaving the outermost section is the quiescent state: a grace
	 * period waiting on this thread can end here. */
	ptk_rcu_read_unlock();
	ptk_rcu_read_lock();
}

void ptk_qsbr_offline(void)
{
	PTK_CONTRACT(qsbr_online, "not online");
	qsbr_online = false;
	ptk_rcu_read_unlock();
}

bool ptk_qsbr_is_online(void)
{
	return qsbr_online;
}

/* Per-CPU callback queues (liburcu's per-CPU call_rcu data, one worker
 * thread per CPU), set up once per process: call_rcu() then enqueues on
 * the caller's CPU's queue instead of one queue shared by every thread,
 * and the callbacks (frees) run on that CPU, so freed frames go back to
 * the same per-CPU frame cache.  Falls back to the default queue if
 * liburcu cannot set them up. */
static pthread_once_t percpu_once = PTHREAD_ONCE_INIT;
static bool percpu_ok;

static void percpu_setup(void)
{
	percpu_ok = urcu_memb_create_all_cpu_call_rcu_data(0) == 0;
}

bool ptk_rcu_percpu_callbacks(void)
{
	pthread_once(&percpu_once, percpu_setup);
	return percpu_ok;
}
