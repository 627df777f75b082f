/*
 * ptkit/object.h - shared memory objects ("files"): a page cache of frames
 * indexed by page offset, mapped shared or private into any number of
 * address spaces, truncated and hole-punched under every mapper.
 *
 * Model
 * -----
 * An object has a size (a page multiple, at most its max_size, fixed at
 * creation) and a page cache: one slot per page offset below max_size,
 * holding a data frame or nothing (a hole, which reads as zero).  The cache
 * holds one reference on each of its frames; each frame records the
 * object's reverse map as its owner and its page offset as its index
 * (rmap.h).  Pages beyond the size are never cached.  The reverse map (the
 * i_mmap analog) links every region that maps the object, in every address
 * space, by page offset; its reference count is the object's: the
 * creator's reference plus one per link.  ptk_object_release() drops the
 * creator's; the object and its cache go with the last reference, i.e.
 * after its last mapping is unmapped (links go only after their range was
 * zapped, so no entry maps a page then).  The struct itself is freed after
 * an RCU grace period (a frame's owner pointer may be followed under RCU).
 *
 * Mappings (ptk_map_object, region kind PTK_REGION_OBJECT):
 *   shared   a fault maps the cache's frame (a hole gets a zeroed frame,
 *            installed in the cache by compare-and-swap; a loser frees its
 *            own), writable if the region is; writes go to the object.
 *   private  a read fault maps the cache's frame read-only; a write fault
 *            copies it (or zero, for a hole, which stays a hole) into a new
 *            anonymous frame owned by the mapping's anonymous family (every
 *            private mapping starts one, like an anonymous region), which
 *            later write faults reuse (copy on write; ptk_protect() never
 *            grants write to a private mapping's entries, the write fault
 *            does).
 *   No huge leaves (PTK_MAP_HUGE is refused): the cache holds 4 KiB frames.
 *   A fault at an offset at or beyond the size fails with -ENXIO (SIGBUS);
 *   a mapping may extend beyond the size (up to max_size) and its pages
 *   come to life when the object grows.  ptk_drop() on an object mapping
 *   drops the mapping's entries (and a private mapping's copies), never
 *   the cache's pages.
 *
 * Locking (order: region lock -> invalidate lock -> rmap lock -> table lock)
 * -------
 *   invalidate lock  (mapping->invalidate_lock) a reader/writer lock,
 *                    sharded per CPU like the region lock: readers lock
 *                    their CPU's shard (a fault writes no line shared with
 *                    other CPUs), writers every shard in index order.
 *                    Read side: faults on the object's mappings (from the
 *                    size check to the installed entry), pread, pwrite.
 *                    Write side: truncate, punch.
 *   rmap lock        the reverse map's (rmap.h).  Truncate and punch walk
 *                    it with the read side; map, unmap and splits change it
 *                    with the write side.
 *   page cache slot  filled by compare-and-swap (release: the frame's
 *                    zeroed contents and owner before the pointer; readers
 *                    load it with acquire) under the read side; emptied
 *                    only under the write side.
 *
 * Truncate protocol (also punch, for [off, off+len))
 * -----------------
 *   1. Take the invalidate lock for writing: every fault on the object has
 *      finished, none starts.
 *   2. Store the new size.  A fault that starts after step 5 sees it.
 *   3. Walk the reverse map (rmap lock, read side) over the offsets lost;
 *      for each mapping, in its own address space: notifiers' start, a
 *      gather, ptk_zap_range() over the mapping's part, gather finish (TLBs
 *      invalidated, the mapping's references dropped), notifiers' end.
 *      Truncate also takes private mappings' copies of those offsets
 *      (the kernel's even_cows); a hole punch keeps them and zaps only
 *      the entries that map the object's own pages, as the kernel's
 *      does.  The address space is alive: its link
 *      is in the tree, and an address space unlinks only after its own
 *      zap (unmap, fixed-map replacement, destroy).
 *   4. Take the frames out of the cache (their owner cleared) and drop the
 *      cache's references: the frames go unless pinned.
 *   5. Release the lock.
 *   Why no fault can map a truncated page: a fault checks the size and
 *   installs its entry under the read side, so it either completed before
 *   step 1 (its entry is found by step 3: its region's link was made before
 *   the region could be faulted) or starts after step 5 (it sees the new
 *   size: -ENXIO).  Once truncate returns, no address space translates an
 *   offset beyond the size.  Lockless walkers may still hold a snapshot
 *   (walk.h); the frames are freed only after the TLB flush.
 *
 * Errors: bad input gives -EINVAL and changes nothing; allocation failure
 * -ENOMEM (ptk_object_write() may have filled holes with zeroed frames:
 * the contents are unchanged).  Truncate and punch never fail on valid
 * input.  The caller of every function but ptk_object_release() holds a
 * reference (or a mapping) on the object; debug builds catch use after the
 * last reference (until the memory is reused).
 */
#ifndef PTKIT_OBJECT_H
#define PTKIT_OBJECT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ptk_ctx;
struct ptk_as;
struct ptk_object;

/* Create an object of @size bytes (a page multiple; pages read as zero)
 * that may grow up to @max_size (0: @size; at most 2^46 bytes; the cache's
 * slot array is reserved, not committed).  0 and *out; -EINVAL; -ENOMEM.
 * The caller holds one reference. */
int ptk_object_create(struct ptk_ctx *ctx, uint64_t size, uint64_t max_size,
		      struct ptk_object **out);

/* Drop the caller's reference; the object and its pages go when the last
 * mapping of it is unmapped (now, if none).  NULL: nothing. */
void ptk_object_release(struct ptk_object *obj);

/* Current size in bytes (0 for NULL).  Any thread. */
uint64_t ptk_object_size(const struct ptk_object *obj);

/* Change the size.  Shrinking zaps every mapping of the pages beyond the
 * new end, in every address space, through the gather, then frees them
 * from the cache (the truncate protocol above); growing adds holes.
 * -EINVAL beyond max_size or unaligned.  Takes the invalidate lock for
 * writing, then rmap and table locks; may sleep.  Not inside a read-side
 * section. */
int ptk_object_truncate(struct ptk_object *obj, uint64_t size);

/* Punch a hole: the same for [off, off+len) (the part below the size),
 * size unchanged; the pages read back as zero.  -EINVAL for an unaligned
 * or empty range or one beyond max_size. */
int ptk_object_punch(struct ptk_object *obj, uint64_t off, uint64_t len);

/* pwrite/pread analogs through the page cache (no mapping needed).
 * [off, off+len) must lie below the size (-EINVAL otherwise: no short
 * transfers, no growth).  Invalidate lock, read side.  Concurrent
 * accesses to the same bytes through mappings are the caller's races. */
int ptk_object_write(struct ptk_object *obj, uint64_t off, const void *buf,
		     uint64_t len);
int ptk_object_read(struct ptk_object *obj, uint64_t off, void *buf, uint64_t len);

/* Map [offset, offset+len) of @obj at *va (placement and errors as
 * ptk_map_anon()); flags must hold exactly one of PTK_MAP_SHARED and
 * PTK_MAP_PRIVATE, not PTK_MAP_HUGE; @offset page aligned; offset + len
 * at most max_size; @obj of @as's context (-EINVAL otherwise).  Pages
 * are faulted in on demand (PTK_MAP_POPULATE: those below the size); a
 * fault beyond the object's end gives -ENXIO (SIGBUS).  The mapping holds
 * a reference on the object.  Region lock (write), then the rmap lock
 * (write). */
int ptk_map_object(struct ptk_as *as, uint64_t *va, uint64_t len, unsigned prot,
		   unsigned flags, struct ptk_object *obj, uint64_t offset);

/* Counters of @obj (each individually consistent).  Takes the rmap lock
 * (read). */
struct ptk_object_stats {
	uint64_t size, max_size;
	uint64_t cached_pages;     /* frames in the page cache */
	uint64_t mappings;         /* regions linked in its reverse map */
};
void ptk_object_stats(struct ptk_object *obj, struct ptk_object_stats *st);

#ifdef __cplusplus
}
#endif
#endif /* PTKIT_OBJECT_H */
