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
 * What a walker must not do: hold a pointer to a table, an entry or a frame
 * across the end of its section; take a lock inside the section that a
 * writer may hold while waiting for walkers (the old design's writers wait
 * with table locks held); call ptk_rcu_synchronize() inside a section.
 *
 * A snapshot's frame may be freed once the walker's caller leaves the
 * section, or earlier by an unmap; hold a reference (a pin) to use it.
 *
 * Walker sections per design (ctx.h, walk_mode).  PTK_WALK_RCU (default):
 * an RCU read-side section; writers never wait for walkers.  PTK_WALK_IPI
 * (the old design, for comparison): an "interrupts-off" section (it is also
 * an RCU reader, as interrupts-off code was for sched-RCU); freeing a single
 * table, and clearing, splitting or collapsing a huge leaf, first send an
 * IPI (membarrier) and wait until no walker is inside.  ptk_walk_begin() /
 * ptk_walk_end() open the section right for the context; ptk_translate()
 * and the pins do it themselves.
 *
 * Fast pin (the gup_fast analog)
 * ------------------------------
 * ptk_pin_fast() takes a reference on the frame of each page of a range
 * without any lock: inside a walker section it walks to the leaf, takes a
 * speculative reference on the frame (ptk_frame_try_get(): fails on a free
 * or frozen frame, refcount 0), then re-reads the leaf slot and keeps the
 * reference only if the entry is unchanged (otherwise it drops it and
 * stops).  Why that suffices: a writer clears the entry before it drops the
 * mapping's reference; if the re-read still sees the entry, the writer's
 * final put comes after our increment in the counter's order and cannot
 * free the frame.  A huge leaf's pages are pinned on the huge frame's head.
 * Special leaves (no reference count) are never pinned.  ptk_pin() is the
 * full API: fast first, then, for what is left, the locked slow path
 * (region lock, fault in, pin under the table lock).  Every pinned frame
 * stays allocated (not freed, not reused) until ptk_unpin().
 */
#ifndef PTKIT_WALK_H
#define PTKIT_WALK_H

#include <errno.h>

#include "ptkit/as.h"
#include "ptkit/debug.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Walk @as for @va.  Caller is inside a read-side section.  0 and *out
 * (a snapshot of the leaf entry), or -EFAULT if there is no leaf. */
int ptk_walk(struct ptk_as *as, uint64_t va, struct ptk_xlate *out);

/* Enter / leave a walker section of @as's context (see above).  Sections
 * of the old design do not nest. */
void ptk_walk_begin(struct ptk_as *as);
void ptk_walk_end(struct ptk_as *as);

/* Pin up to @npages pages from @va (page aligned) for @access
 * (PTK_ACCESS_READ or _WRITE: write needs a writable entry) without any
 * lock; frame numbers go to @pfns.  Returns how many leading pages were
 * pinned (0..npages); stops at the first page it cannot pin (no entry, no
 * permission, special, frame frozen, entry changed).  Any thread, not
 * inside a walker section (it opens its own). */
unsigned ptk_pin_fast(struct ptk_as *as, uint64_t va, unsigned npages,
		      unsigned access, uint64_t *pfns);

/* Pin @npages pages from @va: ptk_pin_fast(), then the locked slow path
 * (faulting pages in) for the rest.  Returns 0 with all pinned, or a
 * negative errno (-EFAULT unmapped or special, -EACCES, -ENOMEM, -EINVAL)
 * with nothing pinned.  Not inside a walker section; takes the region lock
 * for reading. */
int ptk_pin(struct ptk_as *as, uint64_t va, unsigned npages, unsigned access,
	    uint64_t *pfns);

/* Drop the pins of ptk_pin()/ptk_pin_fast().  Any thread. */
void ptk_unpin(struct ptk_ctx *ctx, const uint64_t *pfns, unsigned npages);

/* ---- inline lookups (hot paths) ------------------------------------------ */

/* What an inline lookup needs of an address space, copied once by
 * ptk_lookup_root(): the root table, the levels and the pool's host
 * mapping.  None of it changes while the address space lives. */
struct ptk_lookup_root {
	const ptk_slot_t *root;
	uint8_t *pool_base;        /* host address of frame 0 */
	uint64_t nframes;          /* frames in the pool */
	unsigned levels;
};

/* Fill @r for @as.  0, or -EINVAL (NULL).  @r is valid until @as is
 * destroyed.  Any thread. */
int ptk_lookup_root(struct ptk_as *as, struct ptk_lookup_root *r);

/*
 * The walk of ptk_walk() as an inline function, for callers whose lookup
 * sits on a hot path (an emulator's soft-TLB refill, a registration cache)
 * and who want no call boundary: same rules, same result.  Caller is inside
 * a walker section: ptk_walk_begin(), or for contexts of the default design
 * (PTK_WALK_RCU) ptk_rcu_read_lock(), which is inline too when the caller
 * compiles with _LGPL_SOURCE (liburcu's inline read side).  0 and *out, or
 * -EFAULT if there is no leaf.
 */
static inline int ptk_lookup(const struct ptk_lookup_root *r, uint64_t va,
			     struct ptk_xlate *out)
{
	if (!ptk_va_canonical(va, r->levels))
		return -EFAULT;
	const ptk_slot_t *table = r->root;
	for (unsigned level = r->levels - 1;; level--) {
		/* Rule 1: one load, kept in a local. */
		ptk_pte_t e = ptk_pte_load(&table[ptk_level_index(va, level)]);
#ifdef PTK_DEBUG
		PTK_BUG_ON(e == PTK_PTE_POISON, "read a freed table");
#endif
		/* Rule 2: present first. */
		if (!ptk_pte_present(e))
			return -EFAULT;
		/* Rule 3: leaf before table. */
		if (e & PTK_PTE_LEAF) {
			uint64_t off = va & (ptk_level_size(level) - 1);
			out->pte = e;
			out->level = level;
			out->page_size = ptk_level_size(level);
			out->pfn = ptk_pte_pfn(e) + (off >> PTK_PAGE_SHIFT);
			out->host = out->pfn < r->nframes ?
				r->pool_base + (out->pfn << PTK_PAGE_SHIFT) +
				(va & (PTK_PAGE_SIZE - 1)) : NULL;
			return 0;
		}
		PTK_BUG_ON(level == 0, "table pointer at level 0");
		table = (const ptk_slot_t *)(r->pool_base + (ptk_pte_pfn(e) << PTK_PAGE_SHIFT));
	}
}

/* Lab: IPIs the old design has sent so far (process-wide). */
uint64_t ptk_ipi_sent(void);

/* Lab only: the root table's slots, for raw (unsynchronised) walks that
 * benchmarks use as the physical limit of a lookup. */
const ptk_slot_t *ptk_as_root_slots(const struct ptk_as *as);

#ifdef __cplusplus
}
#endif
#endif /* PTKIT_WALK_H */
