/*
 * ptkit/rmap.h - reverse maps: from a frame to every mapping of it, and
 * taking every reverse-map lock of an address space (seed 004).
 *
 * Model
 * -----
 * A reverse map ("rmap") is the set of regions that map some memory, in an
 * interval tree keyed by page index, under one rmap lock:
 *   - an object's rmap (the i_mmap analog, ptkit/object.h): every region,
 *     in every address space, that maps the object; page index = page
 *     offset in the object;
 *   - an anonymous family (the anon_vma analog): an anonymous region and
 *     every region cloned from it (ptk_as_clone()); page index = virtual
 *     page number (regions never move, so it is the same in every clone).
 *     Private object mappings are linked into one as well, for the pages
 *     they copied on write.
 * Every data frame that can be reverse-mapped records its rmap ("owner")
 * and its page index (struct ptk_frame).  A region's links are made at map
 * and clone time, split with the region, and unlinked only after the
 * region's range has been zapped, so a reverse-map walk reaches every
 * mapped page until the page is gone.  An rmap is reference counted (one
 * per link, plus its owner's), and a frame's owner pointer is followed
 * with a try-get (the page_get_anon_vma() pattern), which is safe because
 * an object's frames lose their owner when they leave its cache and the
 * object is freed after an RCU grace period, and anonymous families are
 * type-stable (below).
 *
 * Locking (order: region lock -> object invalidate lock -> rmap lock ->
 * table lock)
 * -------
 *   rmap lock     PTK_RMAP_SLEEPING (default): a reader/writer lock that
 *                 sleeps (rwsem).  Readers: walks (truncate, unmap of a
 *                 frame).  Writers: link, unlink, split of a region.
 *                 PTK_RMAP_SPIN, the old design for comparison: a
 *                 spinlock, readers exclusive too (the kernel's i_mmap_lock
 *                 and anon_vma->lock before 2.6.27-2.6.39).  A holder
 *                 preempted by the OS keeps every waiter spinning.
 *   families      anonymous rmaps are type-stable: a dead one is kept for
 *                 reuse until its context is destroyed, so a pinned
 *                 frame's stale owner pointer is always safe to try-get.
 *   take all      ptk_as_lock_all() takes the region lock for writing, then
 *                 every rmap lock reachable from the address space, each
 *                 once, in one global order (by address), so two callers
 *                 cannot deadlock; with sleeping locks the holder may be
 *                 preempted at any point (mm_take_all_locks()).
 *   who takes what, in the order above: map, clone, region split: region
 *                 lock -> rmap lock (write); unlink after a zap: rmap
 *                 lock alone; frame unmap/count: rmap lock (read) -> table
 *                 locks, never a region lock; clone: region lock -> rmap
 *                 locks (links, one at a time), released, then child
 *                 table lock -> parent table lock; COW fault: region lock
 *                 (read) -> table lock; take all / notifier registration:
 *                 region lock -> rmap locks by address -> tlb_lock.
 */
#ifndef PTKIT_RMAP_H
#define PTKIT_RMAP_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ptk_ctx;
struct ptk_as;
struct ptk_all_locks;

/* Unmap data frame @pfn from every address space that maps it (the
 * try_to_unmap analog): from the frame's owner, the tree is walked at the
 * frame's page index under the rmap lock (read); in each address space met
 * the entry is found with a lockless descent, its table locked and the
 * entry re-checked to map @pfn, then cleared through a gather (TLBs
 * invalidated, notifiers called - with the rmap lock held, as Linux holds
 * i_mmap_rwsem - before the mapping's reference is dropped).  A huge leaf
 * containing @pfn is cleared whole (all its pages leave that space; no
 * split, so it cannot fail).  A clone running meanwhile may copy an entry
 * into a space the walk passed already: the walk repeats until a pass
 * clears nothing, so when it returns no entry maps @pfn.  Returns the
 * number of entries cleared (>= 0), -EINVAL for a frame outside the pool
 * or not a data frame, -ENOENT if the frame has no live reverse map
 * (special or kernel memory, freed, or pinned after its last mapping
 * went).  Pins are not affected.  Not inside a read-side section; holding
 * no ptkit lock. */
int ptk_rmap_unmap_frame(struct ptk_ctx *ctx, uint64_t pfn);

/* Number of entries that map @pfn (4 KiB leaves of it, huge leaves
 * containing it), found through its reverse map (a page_mapcount()
 * computed by walking; a snapshot): >= 0, or the errors above. */
int ptk_rmap_count(struct ptk_ctx *ctx, uint64_t pfn);

/* Take every rmap lock reachable from @as (the mm_take_all_locks()
 * analog): the region lock for writing (after waiting, with it dropped,
 * for unmaps of @as still tearing down), then each distinct rmap lock of
 * the regions' anonymous families and objects, for writing, once, in
 * address order.  While held no teardown, truncate, frame unmap, clone or
 * map can run in @as or in any rmap it reaches (ptk_notifier_register()
 * uses it).  0 and *out, -EINVAL, -ENOMEM (an array of the locks;
 * nothing held then).  Not inside a read-side section; holding no ptkit
 * lock; may sleep. */
int ptk_as_lock_all(struct ptk_as *as, struct ptk_all_locks **out);
/* Release everything ptk_as_lock_all() took. */
void ptk_as_unlock_all(struct ptk_all_locks *locks);

#ifdef __cplusplus
}
#endif
#endif /* PTKIT_RMAP_H */
