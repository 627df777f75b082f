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
