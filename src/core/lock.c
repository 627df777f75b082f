/*
 * lock.c - sleeping locks with debug owner tracking; the abort path.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ptkit/debug.h"
#include "ptkit/lock.h"

void ptk_bug(const char *func, const char *reason)
{
	fprintf(stderr, "%s: %s\n", func, reason);
	fflush(stderr);
	abort();
}

bool ptk_debug_build(void)
{
	return PTK_DEBUG_ENABLED;
}

#ifdef PTK_DEBUG
static unsigned long self_id(void)
{
	static __thread unsigned long id;
	if (!id)
		id = (unsigned long)syscall(SYS_gettid);
	return id;
}
#define OWNER(l) atomic_load_explicit(&(l)->owner, memory_order_relaxed)
#endif

void ptk_lock_init(struct ptk_lock *l)
{
	PTK_BUG_ON(!l, "NULL lock");
	int rc = pthread_mutex_init(&l->mutex, NULL);
	PTK_BUG_ON(rc != 0, "pthread_mutex_init failed");
#ifdef PTK_DEBUG
	atomic_store_explicit(&l->owner, 0, memory_order_relaxed);
#endif
}

void ptk_lock_destroy(struct ptk_lock *l)
{
	PTK_BUG_ON(!l, "NULL lock");
#ifdef PTK_DEBUG
	PTK_CONTRACT(OWNER(l) == 0, "destroying a held lock");
#endif
	pthread_mutex_destroy(&l->mutex);
}

void ptk_lock_acquire(struct ptk_lock *l)
{
	PTK_BUG_ON(!l, "NULL lock");
#ifdef PTK_DEBUG
	PTK_CONTRACT(OWNER(l) != self_id(), "recursive acquisition");
#endif
	int rc = pthread_mutex_lock(&l->mutex);
	PTK_BUG_ON(rc != 0, "pthread_mutex_lock failed");
#ifdef PTK_DEBUG
	atomic_store_explicit(&l->owner, self_id(), memory_order_relaxed);
#endif
}

void ptk_lock_release(struct ptk_lock *l)
{
	PTK_BUG_ON(!l, "NULL lock");
	PTK_CONTRACT(ptk_lock_held(l), "releasing a lock not held");
#ifdef PTK_DEBUG
	atomic_store_explicit(&l->owner, 0, memory_order_relaxed);
#endif
	pthread_mutex_unlock(&l->mutex);
}

bool ptk_lock_held(struct ptk_lock *l)
{
#ifdef PTK_DEBUG
	if (!l)
		return false;
	return atomic_load_explicit(&l->owner, memory_order_relaxed) == self_id();
#else
	(void)l;
	return true;
#endif
}
