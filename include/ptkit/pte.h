/*
 * ptkit/pte.h - page-table entry format, entry accessors, level arithmetic.
 *
 * Format
 * ------
 * A table is one 4 KiB frame of 512 slots, each a 64-bit entry.  Levels are
 * numbered from the leaves up:
 *
 *     level 0  PTE   maps 4 KiB      index bits 12..20
 *     level 1  PMD   maps 2 MiB      index bits 21..29   (huge leaf allowed)
 *     level 2  PUD   maps 1 GiB      index bits 30..38   (huge leaf allowed)
 *     level 3  P4D / PGD             index bits 39..47
 *     level 4  PGD (5-level only)    index bits 48..56
 *
 * A 4-level address space translates 48-bit addresses, a 5-level one 57-bit.
 * The lower half of the root table is the user half; the upper half is the
 * kernel half (shared by every address space of a context).  Addresses are
 * canonical: the bits above the top index bit are copies of it.
 *
 * An entry is either empty (0), a table pointer (PRESENT, LEAF clear, frame
 * number of the child table) or a leaf (PRESENT and LEAF, frame number of
 * the data).  LEAF is set on 4 KiB leaves too, so one bit test tells a leaf
 * from a table at every level (powerpc's _PAGE_PTE).  A leaf at level 1 or 2
 * is a huge leaf; its frame number is aligned to the page size.  SPECIAL
 * marks a leaf whose frame is not reference counted (a caller-given frame
 * number, possibly outside the pool).
 *
 * Access rules
 * ------------
 * Slots are shared with lockless walkers, so they are touched only through
 * the accessors below; there is no other access, plain or volatile.
 *   - ptk_pte_load(): one atomic acquire load.  Walkers read a slot once into
 *     a local and never reload it (see walk.h).  The acquire pairs with the
 *     release in ptk_pte_store()/ptk_pte_cmpxchg() that published a child
 *     table, so the child's zeroed slots are visible before its pointer.
 *   - ptk_pte_store(), ptk_pte_cmpxchg(), ptk_pte_xchg(): writers, with the
 *     lock of the table that holds the slot (see table.h contract in
 *     docs/architecture.md), except where a mechanism states otherwise.
 *
 * One place knows the level arithmetic: the ptk_level_* helpers here.
 */
#ifndef PTKIT_PTE_H
#define PTKIT_PTE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PTK_PAGE_SHIFT   12
#define PTK_PAGE_SIZE    (UINT64_C(1) << PTK_PAGE_SHIFT)
#define PTK_TABLE_BITS   9
#define PTK_TABLE_SLOTS  (1u << PTK_TABLE_BITS)
#define PTK_LEVEL_PTE    0u
#define PTK_LEVEL_PMD    1u
#define PTK_LEVEL_PUD    2u
#define PTK_MAX_LEVELS   5u
#define PTK_HUGE_2M      (UINT64_C(1) << 21)
#define PTK_HUGE_1G      (UINT64_C(1) << 30)

/* Entry bits. */
#define PTK_PTE_PRESENT   (UINT64_C(1) << 0)
#define PTK_PTE_WRITE     (UINT64_C(1) << 1)
#define PTK_PTE_USER      (UINT64_C(1) << 2)
#define PTK_PTE_ACCESSED  (UINT64_C(1) << 5)
#define PTK_PTE_DIRTY     (UINT64_C(1) << 6)
#define PTK_PTE_LEAF      (UINT64_C(1) << 7)
#define PTK_PTE_GLOBAL    (UINT64_C(1) << 8)
#define PTK_PTE_SPECIAL   (UINT64_C(1) << 9)
/* Software bit: write-protected by a clone for copy on write (the leaf's
 * frame may be shared with another address space).  A protection change
 * that grants write leaves such a leaf read-only; the next write fault
 * copies the frame or, if nobody else holds it, reuses it and clears the
 * bit (ptk_as_clone(), as.h). */
#define PTK_PTE_COW       (UINT64_C(1) << 10)
#define PTK_PTE_PFN_MASK  UINT64_C(0x000ffffffffff000)

/* The value a freed table slot holds in debug builds (never a valid entry:
 * PRESENT with a frame number beyond any pool). */
#define PTK_PTE_POISON    UINT64_C(0xfff6b6b6b6b6b6b7)

typedef uint64_t ptk_pte_t;

/* One slot of a table page. */
typedef struct ptk_slot {
	_Atomic uint64_t raw;
} ptk_slot_t;

/* ---- accessors: the only way to touch a slot ---------------------------- */

/* Load a slot once.  Acquire: pairs with the release of the store that
 * published a child table.  Any context. */
static inline ptk_pte_t ptk_pte_load(const ptk_slot_t *s)
{
	return atomic_load_explicit(&((ptk_slot_t *)s)->raw, memory_order_acquire);
}

/* Store a slot.  Release: the child table's contents (zeroed) and the frame's
 * descriptor are visible before the entry.  Caller holds the table lock. */
static inline void ptk_pte_store(ptk_slot_t *s, ptk_pte_t v)
{
	atomic_store_explicit(&s->raw, v, memory_order_release);
}

/* Initialise a slot of a table nobody else can see yet (fresh table, or a
 * table being poisoned after its grace period).  Relaxed, but atomic so that
 * race detectors see stale readers as atomic accesses. */
static inline void ptk_pte_init(ptk_slot_t *s, ptk_pte_t v)
{
	atomic_store_explicit(&s->raw, v, memory_order_relaxed);
}

/* Compare-exchange a slot; on failure *old receives the current value.
 * Caller holds the table lock, or the mechanism documents why not. */
static inline bool ptk_pte_cmpxchg(ptk_slot_t *s, ptk_pte_t *old, ptk_pte_t v)
{
	return atomic_compare_exchange_strong_explicit(&s->raw, old, v,
			memory_order_acq_rel, memory_order_acquire);
}

/* Get-and-set a slot (get-and-clear with v = 0).  Caller holds the table
 * lock. */
static inline ptk_pte_t ptk_pte_xchg(ptk_slot_t *s, ptk_pte_t v)
{
	return atomic_exchange_explicit(&s->raw, v, memory_order_acq_rel);
}

/* ---- entry predicates and constructors --------------------------------- */

static inline bool ptk_pte_none(ptk_pte_t e)    { return e == 0; }
static inline bool ptk_pte_present(ptk_pte_t e) { return (e & PTK_PTE_PRESENT) != 0; }
/* Present and a leaf.  Check present first: a non-present entry has no
 * meaningful LEAF bit. */
static inline bool ptk_pte_is_leaf(ptk_pte_t e)
{
	return (e & (PTK_PTE_PRESENT | PTK_PTE_LEAF)) == (PTK_PTE_PRESENT | PTK_PTE_LEAF);
}
/* Present and a pointer to a child table. */
static inline bool ptk_pte_is_table(ptk_pte_t e)
{
	return (e & (PTK_PTE_PRESENT | PTK_PTE_LEAF)) == PTK_PTE_PRESENT;
}
static inline uint64_t ptk_pte_pfn(ptk_pte_t e)  { return (e & PTK_PTE_PFN_MASK) >> PTK_PAGE_SHIFT; }
static inline bool ptk_pte_write(ptk_pte_t e)    { return (e & PTK_PTE_WRITE) != 0; }
static inline bool ptk_pte_special(ptk_pte_t e)  { return (e & PTK_PTE_SPECIAL) != 0; }

static inline ptk_pte_t ptk_pte_mk_table(uint64_t pfn)
{
	return ((pfn << PTK_PAGE_SHIFT) & PTK_PTE_PFN_MASK) | PTK_PTE_PRESENT |
	       PTK_PTE_WRITE | PTK_PTE_USER;
}

/* A leaf; flags is a mask of PTK_PTE_WRITE/USER/ACCESSED/DIRTY/SPECIAL/COW. */
static inline ptk_pte_t ptk_pte_mk_leaf(uint64_t pfn, uint64_t flags)
{
	return ((pfn << PTK_PAGE_SHIFT) & PTK_PTE_PFN_MASK) | flags |
	       PTK_PTE_PRESENT | PTK_PTE_LEAF;
}

/* ---- level arithmetic: the one place that knows it --------------------- */

/* Shift of the address bits a slot at @level maps. */
static inline unsigned ptk_level_shift(unsigned level)
{
	return PTK_PAGE_SHIFT + level * PTK_TABLE_BITS;
}

/* Bytes one slot at @level maps (4 KiB, 2 MiB, 1 GiB, ...). */
static inline uint64_t ptk_level_size(unsigned level)
{
	return UINT64_C(1) << ptk_level_shift(level);
}

/* Index of @va's slot in a table at @level. */
static inline unsigned ptk_level_index(uint64_t va, unsigned level)
{
	return (unsigned)(va >> ptk_level_shift(level)) & (PTK_TABLE_SLOTS - 1);
}

/* Start of the slot at @level that maps @va. */
static inline uint64_t ptk_level_base(uint64_t va, unsigned level)
{
	return va & ~(ptk_level_size(level) - 1);
}

/* End of the slot at @level that maps @va, clamped to @end (exclusive).
 * Handles the wrap at the top of the address space. */
static inline uint64_t ptk_level_next(uint64_t va, unsigned level, uint64_t end)
{
	uint64_t next = ptk_level_base(va, level) + ptk_level_size(level);
	return (next - 1 < end - 1) ? next : end;
}

/* Whether a huge leaf may sit at @level (1 and 2 only). */
static inline bool ptk_level_huge_ok(unsigned level)
{
	return level == PTK_LEVEL_PMD || level == PTK_LEVEL_PUD;
}

/* Bits of address a @levels-level tree translates (48 or 57). */
static inline unsigned ptk_va_bits(unsigned levels)
{
	return ptk_level_shift(levels);
}

/* End of the user half (exclusive): 2^47 for 4 levels, 2^56 for 5. */
static inline uint64_t ptk_user_end(unsigned levels)
{
	return UINT64_C(1) << (ptk_va_bits(levels) - 1);
}

/* Start of the kernel half: the canonical upper half. */
static inline uint64_t ptk_kernel_start(unsigned levels)
{
	return ~UINT64_C(0) << (ptk_va_bits(levels) - 1);
}

/* Whether @va is canonical for a @levels-level tree. */
static inline bool ptk_va_canonical(uint64_t va, unsigned levels)
{
	return va < ptk_user_end(levels) || va >= ptk_kernel_start(levels);
}

#ifdef __cplusplus
}
#endif
#endif /* PTKIT_PTE_H */
