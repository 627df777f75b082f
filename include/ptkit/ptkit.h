/*
 * ptkit/ptkit.h - umbrella header.  Modules, from the bottom up:
 *
 *   debug.h   error classes and contract checks
 *   lock.h    sleeping locks with owner tracking in debug builds
 *   rcu.h     read-side sections and deferred frees (liburcu)
 *   pte.h     entry format, accessors, level arithmetic
 *   frame.h   the frame pool and frame descriptors
 *   ctx.h     contexts: a pool and the designs selected
 *   as.h      address spaces, regions, faults, translation
 *   walk.h    lockless walks
 *   gather.h  batched, preemptible teardown (mmu_gather)
 *   kernel.h  the shared kernel half and keeping roots in sync with it
 *   tlb.h     software TLBs, shootdowns, secondary-cache notifiers
 *   object.h  shared memory objects (page cache, truncate)
 *   rmap.h    reverse maps, take-all-locks
 */
#ifndef PTKIT_PTKIT_H
#define PTKIT_PTKIT_H

#include "ptkit/debug.h"
#include "ptkit/lock.h"
#include "ptkit/rcu.h"
#include "ptkit/pte.h"
#include "ptkit/frame.h"
#include "ptkit/ctx.h"
#include "ptkit/as.h"
#include "ptkit/walk.h"
#include "ptkit/gather.h"
#include "ptkit/kernel.h"
#include "ptkit/tlb.h"
#include "ptkit/object.h"
#include "ptkit/rmap.h"

#endif /* PTKIT_PTKIT_H */
