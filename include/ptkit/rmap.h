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
 * per link, plus its owner's) and freed after an RCU grace period, so a
 * frame's owner pointer can be followed with a try-get (the
 * page_get_anon_vma() pattern).
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
 *   take all      ptk_as_lock_all() takes the region lock for writing, then
 *                 every rmap lock reachable from the address space, each
 *                 once, in one global order (by address), so two callers
 *                 cannot deadlock; with sleeping locks the holder may be
 *                 preempted at any point (mm_take_all_locks()).
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
 * try_to_unmap analog): every entry mapping it is cleared through a gather
 * (TLBs invalidated, notifiers called) before the mapping's reference is
 * dropped.  Returns the number of entries cleared (>= 0), -EINVAL for a
 * frame outside the pool or not a data frame, -ENOENT if the frame has no
 * reverse map (special or kernel memory, or freed).  Pins are not
 * affected.  Takes the rmap lock for reading, then table locks. */
int ptk_rmap_unmap_frame(struct ptk_ctx *ctx, uint64_t pfn);

/* Number of entries that map @pfn, found through its reverse map (a
 * page_mapcount() computed by walking): >= 0, or the errors above. */
int ptk_rmap_count(struct ptk_ctx *ctx, uint64_t pfn);

/* Take every rmap lock reachable from @as (the mm_take_all_locks()
 * analog): the region lock for writing, then each rmap lock once in
 * address order.  While held no teardown, truncate, clone or map can run
 * in @as or in any rmap it reaches.  0 and *out, -EINVAL, -ENOMEM.  Not
 * inside a read-side section; may sleep. */
int ptk_as_lock_all(struct ptk_as *as, struct ptk_all_locks **out);
/* Release everything ptk_as_lock_all() took. */
void ptk_as_unlock_all(struct ptk_all_locks *locks);

#ifdef __cplusplus
}
#endif
#endif /* PTKIT_RMAP_H */
