/*
 * ptkit/lock.h - the locks ptkit uses, with owner tracking in debug builds.
 *
 * ptk_lock: a sleeping mutex (pthread), used for split page-table locks and
 * the address-space region lock shards.  Sleeping, not spinning, because a
 * thread holding it may be preempted by the OS scheduler at any point, and
 * spinning waiters would then burn their time slices (lock-holder
 * preemption on oversubscribed machines).
 *
 * In debug builds the lock records its owner so that PTK_CONTRACT(
 * ptk_lock_held(l)) can check "caller holds the lock".  Release builds keep
 * no owner and ptk_lock_held() is not meaningful there (it returns true).
 * A NULL lock is a caller bug: every function aborts with a message.
 */
#ifndef PTKIT_LOCK_H
#define PTKIT_LOCK_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ptk_lock {
	pthread_mutex_t mutex;
	/* Debug builds: thread id of the holder, 0 if free.  Present in every
	 * build so the layout does not depend on the build type. */
	_Atomic unsigned long owner;
};

void ptk_lock_init(struct ptk_lock *l);
void ptk_lock_destroy(struct ptk_lock *l);
/* Blocks; may sleep.  Any thread. */
void ptk_lock_acquire(struct ptk_lock *l);
/* Caller holds @l. */
void ptk_lock_release(struct ptk_lock *l);
/* Debug builds: whether the calling thread holds @l.  Release: true. */
bool ptk_lock_held(struct ptk_lock *l);

#ifdef __cplusplus
}
#endif
#endif /* PTKIT_LOCK_H */
