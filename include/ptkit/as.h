/*
 * ptkit/as.h - address spaces and their regions (the mm and its VMAs).
 *
 * An address space is a root table (4 or 5 levels), a set of regions and
 * counters.  Regions are what mmap creates: a range with a protection and a
 * kind.  Page tables are filled on demand by faults (anonymous memory) or at
 * map time (special mappings of caller-given frame numbers).
 *
 * Locking
 * -------
 *   region lock   a per-address-space reader/writer lock, sharded per CPU
 *                 (readers lock only their CPU's shard, writers all shards;
 *                 a fault writes no cache line shared with other CPUs).
 *                 Readers: fault, populate, drop, protect's table pass.
 *                 Writers: changes to the region set (map, unmap, protect).
 *   table lock    one per page-table page (split page-table lock, in the
 *                 frame descriptor).  Every slot is written with the lock
 *                 of the table that holds it.  Faults on different tables
 *                 take different locks.
 *   none          translate/walk (RCU, see walk.h).
 *
 * Unmap takes the region lock for writing only to detach its regions and
 * leave a placeholder ("zapping") over the range; the teardown itself runs
 * under table locks only, one table at a time, through the gather (gather.h),
 * and the placeholder keeps new mappings out of the range until the teardown
 * is done.  Faults in a zapping range fail with -EFAULT, as after unmap.
 *
 * Errors: every function returns 0 or a negative errno; on failure nothing
 * is leaked and the address space is unchanged, except where stated
 * (populate may have filled part of the range; a FIXED map that fails with
 * -ENOMEM after replacing the range leaves it unmapped, as mmap may).  A
 * NULL address space or output pointer gives -EINVAL (accessors: NULL or
 * 0; destroy and stats: nothing).  Debug builds tag live address spaces
 * and abort with a message on one used after ptk_as_destroy() (until its
 * memory is freed after a grace period; ASan catches later uses).
 */
#ifndef PTKIT_AS_H
#define PTKIT_AS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ptkit/pte.h"

#ifdef __cplusplus
extern "C" {
#endif

struct ptk_ctx;
struct ptk_as;

/* Protections (PROT_* analogs). */
#define PTK_PROT_NONE   0u
#define PTK_PROT_READ   1u
#define PTK_PROT_WRITE  2u
#define PTK_PROT_EXEC   4u
#define PTK_PROT_MASK   7u

/* Map flags. */
#define PTK_MAP_FIXED    (1u << 0)  /* place exactly at va, replacing mappings */
#define PTK_MAP_NOREPLACE (1u << 1) /* place exactly at va, -EEXIST if in use */
#define PTK_MAP_HUGE     (1u << 2)  /* use huge leaves where aligned */
#define PTK_MAP_POPULATE (1u << 3)  /* fault the whole range in at map time */
#define PTK_MAP_SHARED   (1u << 4)  /* objects: writes go to the object's pages */
#define PTK_MAP_PRIVATE  (1u << 5)  /* objects: writes copy the page */
#define PTK_MAP_MASK     0x3fu

/* Fault access types. */
#define PTK_ACCESS_READ  0u
#define PTK_ACCESS_WRITE 1u
#define PTK_ACCESS_EXEC  2u

enum ptk_region_kind {
	PTK_REGION_ANON = 1,     /* private anonymous, demand zero */
	PTK_REGION_SPECIAL,      /* caller-given frame numbers, no refcount */
	PTK_REGION_ZAPPING,      /* placeholder while an unmap tears down */
	PTK_REGION_OBJECT,       /* an object, shared or private (object.h) */
};

struct ptk_as_stats {
	uint64_t regions;          /* regions (placeholders excluded) */
	uint64_t mapped_bytes;     /* bytes covered by regions */
	uint64_t rss_frames;       /* data frames mapped (4 KiB units) */
	uint64_t table_pages;      /* page-table pages in use (incl. root) */
	uint64_t table_bytes;      /* the same in bytes (VmPTE analog) */
	uint64_t faults;           /* faults handled (all outcomes) */
	uint64_t faults_filled;    /* faults that installed an entry */
	uint64_t tlb_flushes;      /* gather flushes that invalidated something */
	uint64_t gather_batches;   /* gather batch pages allocated */
	uint64_t gather_batch_failures; /* batch allocations that failed */
	uint64_t shootdowns;       /* flushes that had CPUs to invalidate */
	uint64_t remote_answers;   /* shootdowns answered for IDLE CPUs */
};

/* ---- lifetime ---------------------------------------------------------- */

/* Create an address space in @ctx with @levels (0: the context default; 4
 * or 5).  Returns 0 and *out, -EINVAL, or -ENOMEM. */
int ptk_as_create(struct ptk_ctx *ctx, unsigned levels, struct ptk_as **out);

/* Destroy: unmap everything, free every table (tables after a grace
 * period), free the address space.  Never fails.  The caller guarantees no
 * other thread calls into @as any more (lockless walkers already inside a
 * read-side section may finish: tables outlive them). */
void ptk_as_destroy(struct ptk_as *as);

/* Clone @parent (fork semantics): a new address space with the same
 * regions and levels.  Protocol (src/mm/clone.c):
 *   - the parent's region lock is held for writing throughout: no fault,
 *     map, unmap, protect or clone of the parent runs meanwhile; regions
 *     still being unmapped (placeholders) are not copied;
 *   - every child region is linked into the same reverse maps as the
 *     parent's (its anonymous family, its object's tree: rmap.h) before
 *     any entry is copied;
 *   - private leaves (anonymous memory, and everything a PTK_MAP_PRIVATE
 *     object mapping maps) are write-protected in the parent and copied
 *     write-protected, both marked PTK_PTE_COW, one frame reference per
 *     leaf (a 2 MiB leaf is shared whole: one reference on its head); the
 *     first write fault on either side copies the 4 KiB (a shared huge
 *     leaf is split first), or reuses the frame if nobody else holds it;
 *     a protection change never makes a PTK_PTE_COW leaf writable;
 *   - special leaves are copied as they are (no reference count);
 *   - shared object mappings copy no entry: the child faults them in;
 *   - the parent's TLBs are invalidated for what was write-protected
 *     (one gather over the whole clone, inside one notifier
 *     invalidate_range_start/end pair) before it returns.
 * Entries are copied table by table with the child's table lock held over
 * the parent's (the only place two spaces' table locks nest).
 * 0 and *child; -EINVAL; -ENOMEM: the partial child is destroyed and the
 * parent keeps its contents (some of its leaves may be left
 * write-protected: a write fault restores write without copying).
 * Destroying either side later leaves the other intact.  Not inside a
 * read-side section. */
int ptk_as_clone(struct ptk_as *parent, struct ptk_as **child);

/* Call when a thread starts using @as (switches to it: the switch_mm
 * analog; ptk_cpu_switch() calls it, by that CPU's thread, outside any
 * lock); the lazy kernel-half sync runs here (kernel.h): O(1) when the
 * kernel generation has not moved, else the missing top-level entries are
 * copied.  Nothing to do in the other designs.  Any thread, any number of
 * threads at once, inside a read-side section or not. */
void ptk_as_activate(struct ptk_as *as);

struct ptk_ctx *ptk_as_ctx(const struct ptk_as *as);
unsigned ptk_as_levels(const struct ptk_as *as);
/* User half [0, end). */
uint64_t ptk_as_user_end(const struct ptk_as *as);

/* ---- regions ----------------------------------------------------------- */

/* Map anonymous private memory of @len bytes with @prot.  With
 * PTK_MAP_FIXED or PTK_MAP_NOREPLACE at *va exactly; otherwise *va is a
 * hint (0: anywhere) and receives the address chosen.  -EINVAL for an
 * unaligned or zero range, a fixed range that overflows or leaves the user
 * half, unknown flags or prot; -ENOMEM when no room (a length larger than
 * the user half included) or no memory; -EEXIST (NOREPLACE) when in use;
 * -EBUSY if the range is still being torn down (FIXED over a zapping range
 * waits instead). */
int ptk_map_anon(struct ptk_as *as, uint64_t *va, uint64_t len,
		 unsigned prot, unsigned flags);

/* Map frame numbers [pfn, pfn + len/4K) at *va (special mapping, entries
 * carry SPECIAL; frames are not reference counted and need not be in the
 * pool).  Entries are installed at map time; with PTK_MAP_HUGE, 2 MiB and
 * 1 GiB leaves are used where va and pfn are aligned.  Same placement and
 * errors as ptk_map_anon(). */
int ptk_map_special(struct ptk_as *as, uint64_t *va, uint64_t len,
		    uint64_t pfn, unsigned prot, unsigned flags);

/* Unmap [va, va+len): regions are cut, entries cleared, TLBs invalidated,
 * frames freed, tables emptied by it freed (after a grace period).  Parts
 * of the range with no region are ignored.  -EINVAL for a bad range. */
int ptk_unmap(struct ptk_as *as, uint64_t va, uint64_t len);

/* Change the protection of [va, va+len), which must be fully mapped
 * (-ENOMEM otherwise, nothing changed).  Present entries are rewritten
 * (write permission removed or granted) and TLBs invalidated. */
int ptk_protect(struct ptk_as *as, uint64_t va, uint64_t len, unsigned prot);

/* Drop the pages of [va, va+len) (MADV_DONTNEED): regions stay, anonymous
 * pages go and read back as zero; object mappings lose their entries (and
 * private copies) and read the object's pages again.  Special mappings
 * are left intact.
 * -ENOMEM if part of the range is unmapped (the mapped parts are dropped,
 * as madvise does). */
int ptk_drop(struct ptk_as *as, uint64_t va, uint64_t len);

/* ---- huge leaves ------------------------------------------------------- */

/* Split the huge leaf that maps @va into a table of 512 leaves one level
 * down (1 GiB -> 2 MiB, 2 MiB -> 4 KiB), same frames and protection.
 * Walkers see the huge leaf or the new table, both valid; nobody waits for
 * them (the old design, walk_mode PTK_WALK_IPI, sends an IPI).  0,
 * -ENOENT (no huge leaf maps @va), -ENOMEM, -EINVAL.  Takes the region
 * lock for reading. */
int ptk_split(struct ptk_as *as, uint64_t va);

/* Collapse the full PTE table mapping the 2 MiB at @va (aligned) into one
 * 2 MiB leaf: all 512 entries present with the same protection, frame
 * numbers contiguous from a 2 MiB-aligned one (special mappings), and for
 * anonymous memory the 512 frames of one huge frame (no copying).  The
 * table is detached and freed after a grace period; walkers that still
 * hold it read valid, stale leaves.  0; -EBUSY (not collapsible), -ENOENT
 * (no table there), -EEXIST (already a huge leaf), -EINVAL (not aligned,
 * or not inside one region: regions are never merged, so a block whose
 * protection was changed in part, even back again, spans two).  Takes the
 * region lock for writing. */
int ptk_collapse(struct ptk_as *as, uint64_t va);

/* ---- faults and translation -------------------------------------------- */

/* Handle a fault at @va for @access (PTK_ACCESS_*): check the region and
 * its protection, allocate tables and the frame, install the entry.  On a
 * kernel address (kernel.h): if the reference maps it, copy the missing
 * top-level entry into @as (the vmalloc_fault analog) and return 0, or
 * -EACCES for a write to a read-only kernel mapping.
 * Object regions (object.h): the object's page (shared), or read-only
 * then a copy on write (private); -ENXIO at or beyond the object's size.
 * 0 if the address is now mapped for @access; -EFAULT outside any region
 * (or non-canonical); -EACCES on a protection violation; -ENOMEM. */
int ptk_fault(struct ptk_as *as, uint64_t va, unsigned access);

/* Fault in every page of [va, va+len) for @access.  Stops at the first
 * error and returns it (pages before it stay mapped). */
int ptk_populate(struct ptk_as *as, uint64_t va, uint64_t len, unsigned access);

/* Result of a translation: a snapshot of what one entry held. */
struct ptk_xlate {
	ptk_pte_t pte;       /* the leaf entry as read */
	unsigned level;      /* level of the leaf (0: 4 KiB, 1: 2 MiB, 2: 1 GiB) */
	uint64_t page_size;  /* bytes the leaf maps */
	uint64_t pfn;        /* frame of @va (leaf frame + offset in a huge page) */
	void *host;          /* host address of @va's byte, NULL if outside pool */
};

/* Translate @va: a lockless walk (enters and leaves a read-side section).
 * 0 and *out, or -EFAULT if nothing is mapped there.  The snapshot may be
 * stale by the time it returns; to keep a frame alive use a pin. */
int ptk_translate(struct ptk_as *as, uint64_t va, struct ptk_xlate *out);

/* Translate, faulting if needed: ptk_translate(), and if there is no entry
 * or it lacks write permission for a write, ptk_fault() and retry. */
int ptk_translate_fault(struct ptk_as *as, uint64_t va, unsigned access,
			struct ptk_xlate *out);

/* ---- inspection -------------------------------------------------------- */

/* Counters of @as.  Any thread; each counter individually consistent. */
void ptk_as_stats(struct ptk_as *as, struct ptk_as_stats *st);

/* Information about the region containing @va (0), or -ENOENT.  @flags:
 * PTK_MAP_HUGE as mapped; object regions also PTK_MAP_SHARED or
 * PTK_MAP_PRIVATE. */
struct ptk_region_info {
	uint64_t start, end;
	unsigned prot, flags;
	enum ptk_region_kind kind;
};
int ptk_region_query(struct ptk_as *as, uint64_t va, struct ptk_region_info *out);

/* Walk every region in address order; stops early when @fn returns
 * non-zero (which is returned).  Takes the region lock for reading; @fn must
 * not call back into @as's region operations. */
int ptk_region_foreach(struct ptk_as *as,
		       int (*fn)(const struct ptk_region_info *, void *), void *arg);

#ifdef __cplusplus
}
#endif
#endif /* PTKIT_AS_H */
