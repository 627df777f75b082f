/*
 * ptkit/walk.h - lockless page-table walks.
 *
 * Reader rules (seed 003, "lockless page table walk rework")
 * ---------------------------------------------------------
 * A walker runs inside an RCU read-side section (rcu.h) and takes no lock.
 * At every level it
 *   1. reads the slot once, with ptk_pte_load(), into a local, and never
 *      reads that slot again: a second read may see a different value
 *      (split, collapse, clear) and mixing the two is the bug the rules
 *      exist to prevent;
 *   2. checks PRESENT before anything else: an empty entry ends the walk;
 *   3. checks LEAF before treating the entry as a table pointer: a huge leaf
 *      is a leaf at level 1 or 2, never a table;
 *   4. tolerates a stale value: the snapshot it returns was the value of the
 *      entry at the moment it was read, and may have changed since.
 * Why it is safe: a table detached by a writer (unmap, empty-table reclaim,
 * collapse) is freed only after a grace period, so a walker that read the
 * old pointer keeps reading a valid table (with its old, possibly stale,
 * contents) until it leaves its section.  No IPI, no waiting on walkers.
 *
 * A snapshot's frame may be freed once the walker's caller leaves the
 * section, or earlier by an unmap; hold a reference (a pin) to use it.
 */
#ifndef PTKIT_WALK_H
#define PTKIT_WALK_H

#include "ptkit/as.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Walk @as for @va.  Caller is inside a read-side section.  0 and *out
 * (a snapshot of the leaf entry), or -EFAULT if there is no leaf. */
int ptk_walk(struct ptk_as *as, uint64_t va, struct ptk_xlate *out);

#ifdef __cplusplus
}
#endif
#endif /* PTKIT_WALK_H */
