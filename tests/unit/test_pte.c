/*
 * test_pte.c - entry format, accessors and level arithmetic (pte.h).
 * Pure functions: no context needed.
 */
#include <errno.h>
#include <string.h>
#include "helpers.h"

#define U64(x) UINT64_C(x)

static void level_shift_size(void **state)
{
	(void)state;
	static const unsigned shift[] = { 12, 21, 30, 39, 48 };
	for (unsigned l = 0; l < PTK_MAX_LEVELS; l++) {
		assert_int_equal(ptk_level_shift(l), shift[l]);
		assert_int_equal(ptk_level_size(l), U64(1) << shift[l]);
	}
	assert_int_equal(ptk_level_size(PTK_LEVEL_PTE), PTK_PAGE_SIZE);
	assert_int_equal(ptk_level_size(PTK_LEVEL_PMD), PTK_HUGE_2M);
	assert_int_equal(ptk_level_size(PTK_LEVEL_PUD), PTK_HUGE_1G);
	assert_int_equal(PTK_TABLE_SLOTS, 512);
	assert_int_equal(PTK_PAGE_SIZE, 4096);
}

static void level_index(void **state)
{
	(void)state;
	/* One distinct index per level: 1, 2, 3, 4, 5 at levels 0..4. */
	uint64_t va = (U64(1) << 12) | (U64(2) << 21) | (U64(3) << 30) |
		      (U64(4) << 39) | (U64(5) << 48) | 0x123;
	for (unsigned l = 0; l < PTK_MAX_LEVELS; l++)
		assert_int_equal(ptk_level_index(va, l), l + 1);
	/* Offsets within the page never matter. */
	assert_int_equal(ptk_level_index(0xfff, 0), 0);
	/* Max index at every level. */
	for (unsigned l = 0; l < PTK_MAX_LEVELS; l++)
		assert_int_equal(ptk_level_index(~U64(0), l), 511);
	/* Bits above the top index are ignored by the masking. */
	assert_int_equal(ptk_level_index(U64(1) << 57, 4), 0);
	assert_int_equal(ptk_level_index(U64(1) << 47, 3), 256);
	assert_int_equal(ptk_level_index(U64(1) << 56, 4), 256);
	assert_int_equal(ptk_level_index(0, 0), 0);
}

static void level_base(void **state)
{
	(void)state;
	uint64_t va = U64(0x00007abcdef12345);
	for (unsigned l = 0; l < PTK_MAX_LEVELS; l++) {
		uint64_t b = ptk_level_base(va, l);
		assert_true(b <= va);
		assert_int_equal(b & (ptk_level_size(l) - 1), 0);
		assert_true(va - b < ptk_level_size(l));
	}
	assert_int_equal(ptk_level_base(va, 0), U64(0x00007abcdef12000));
	assert_int_equal(ptk_level_base(va, 1), U64(0x00007abcdee00000));
	assert_int_equal(ptk_level_base(0, 3), 0);
	assert_int_equal(ptk_level_base(~U64(0), 0), ~U64(0xfff));
	assert_int_equal(ptk_level_base(~U64(0), 4), ~((U64(1) << 48) - 1));
}

static void level_next(void **state)
{
	(void)state;
	/* Ordinary: end of the slot. */
	assert_int_equal(ptk_level_next(0, 0, U64(1) << 40), 4096);
	assert_int_equal(ptk_level_next(0x1234, 0, U64(1) << 40), 0x2000);
	assert_int_equal(ptk_level_next(0x1234, 1, U64(1) << 40), PTK_HUGE_2M);
	assert_int_equal(ptk_level_next(PTK_HUGE_2M, 1, U64(1) << 40), 2 * PTK_HUGE_2M);
	/* Clamped to end. */
	assert_int_equal(ptk_level_next(0, 1, 0x3000), 0x3000);
	assert_int_equal(ptk_level_next(0x1000, 0, 0x2000), 0x2000);
	assert_int_equal(ptk_level_next(0x1000, 3, 0x5000), 0x5000);
	/* end exactly at the slot boundary. */
	assert_int_equal(ptk_level_next(0, 1, PTK_HUGE_2M), PTK_HUGE_2M);
	/* end == 0 means "the top of the address space" (2^64). */
	assert_int_equal(ptk_level_next(0, 2, 0), PTK_HUGE_1G);
	/* Wrap at the top: the last slot's end is 2^64 == 0. */
	uint64_t top = ~U64(0xfff);
	assert_int_equal(ptk_level_next(top, 0, 0), 0);
	assert_int_equal(ptk_level_next(top, 3, 0), 0);
	assert_int_equal(ptk_level_next(top, 4, 0), 0);
	/* Wrapping slot, end below the wrap: clamped to end. */
	assert_int_equal(ptk_level_next(top - 0x10000, 3, top), top);
	assert_int_equal(ptk_level_next(~((U64(1) << 39) - 1), 3, ~U64(0)), ~U64(0));
	/* Not wrapping near the top. */
	assert_int_equal(ptk_level_next(top - 0x1000, 0, 0), top);
	/* A loop over a range ending at the top terminates and visits each
	 * slot once. */
	unsigned n = 0;
	uint64_t va = ~((U64(4) << 30) - 1);    /* 4 GiB below the top */
	uint64_t end = 0;
	do {
		va = ptk_level_next(va, 2, end);
		n++;
	} while (va != end && n < 100);
	assert_int_equal(n, 4);
}

static void huge_ok_and_va_bits(void **state)
{
	(void)state;
	assert_false(ptk_level_huge_ok(0));
	assert_true(ptk_level_huge_ok(1));
	assert_true(ptk_level_huge_ok(2));
	assert_false(ptk_level_huge_ok(3));
	assert_false(ptk_level_huge_ok(4));
	assert_int_equal(ptk_va_bits(4), 48);
	assert_int_equal(ptk_va_bits(5), 57);
}

static void user_kernel_halves(void **state)
{
	(void)state;
	assert_int_equal(ptk_user_end(4), U64(1) << 47);
	assert_int_equal(ptk_user_end(5), U64(1) << 56);
	assert_int_equal(ptk_kernel_start(4), U64(0xffff800000000000));
	assert_int_equal(ptk_kernel_start(5), U64(0xff00000000000000));
	/* The user half is exactly the lower half of the root. */
	assert_int_equal(ptk_level_index(ptk_user_end(4) - 1, 3), 255);
	assert_int_equal(ptk_level_index(ptk_kernel_start(4), 3), 256);
	assert_int_equal(ptk_level_index(ptk_user_end(5) - 1, 4), 255);
	assert_int_equal(ptk_level_index(ptk_kernel_start(5), 4), 256);
}

static void canonical_4(void **state)
{
	(void)state;
	assert_true(ptk_va_canonical(0, 4));
	assert_true(ptk_va_canonical(0x1000, 4));
	assert_true(ptk_va_canonical(U64(0x00007fffffffffff), 4));
	assert_true(ptk_va_canonical(U64(0x00007ffffffff000), 4));
	assert_false(ptk_va_canonical(U64(0x0000800000000000), 4));
	assert_false(ptk_va_canonical(U64(0x0001000000000000), 4));
	assert_false(ptk_va_canonical(U64(0x00ffffffffffffff), 4));
	assert_false(ptk_va_canonical(U64(0x8000000000000000), 4));
	assert_false(ptk_va_canonical(U64(0xffff7fffffffffff), 4));
	assert_false(ptk_va_canonical(U64(0xff00000000000000), 4));
	assert_true(ptk_va_canonical(U64(0xffff800000000000), 4));
	assert_true(ptk_va_canonical(~U64(0), 4));
}

static void canonical_5(void **state)
{
	(void)state;
	assert_true(ptk_va_canonical(0, 5));
	assert_true(ptk_va_canonical(U64(0x0000800000000000), 5));  /* 4-level non-canonical */
	assert_true(ptk_va_canonical(U64(0x00ffffffffffffff), 5));
	assert_false(ptk_va_canonical(U64(0x0100000000000000), 5));
	assert_false(ptk_va_canonical(U64(0x7fffffffffffffff), 5));
	assert_false(ptk_va_canonical(U64(0xfeffffffffffffff), 5));
	assert_true(ptk_va_canonical(U64(0xff00000000000000), 5));
	assert_true(ptk_va_canonical(U64(0xffff800000000000), 5));
	assert_true(ptk_va_canonical(~U64(0), 5));
}

static void predicates(void **state)
{
	(void)state;
	ptk_pte_t e = 0;
	assert_true(ptk_pte_none(e));
	assert_false(ptk_pte_present(e));
	assert_false(ptk_pte_is_leaf(e));
	assert_false(ptk_pte_is_table(e));
	/* LEAF without PRESENT: neither a leaf nor a table. */
	e = PTK_PTE_LEAF | (U64(5) << PTK_PAGE_SHIFT);
	assert_false(ptk_pte_none(e));
	assert_false(ptk_pte_present(e));
	assert_false(ptk_pte_is_leaf(e));
	assert_false(ptk_pte_is_table(e));
	/* PRESENT alone: a table. */
	e = PTK_PTE_PRESENT;
	assert_true(ptk_pte_present(e));
	assert_true(ptk_pte_is_table(e));
	assert_false(ptk_pte_is_leaf(e));
	/* PRESENT|LEAF: a leaf. */
	e = PTK_PTE_PRESENT | PTK_PTE_LEAF;
	assert_true(ptk_pte_is_leaf(e));
	assert_false(ptk_pte_is_table(e));
	/* Poison is never none, and never a table pointer a walker follows
	 * into a pool frame. */
	assert_false(ptk_pte_none(PTK_PTE_POISON));
	assert_true(ptk_pte_present(PTK_PTE_POISON));
	/* Bits do not overlap the frame-number field. */
	uint64_t bits = PTK_PTE_PRESENT | PTK_PTE_WRITE | PTK_PTE_USER |
			PTK_PTE_ACCESSED | PTK_PTE_DIRTY | PTK_PTE_LEAF |
			PTK_PTE_GLOBAL | PTK_PTE_SPECIAL;
	assert_int_equal(bits & PTK_PTE_PFN_MASK, 0);
	assert_int_equal(PTK_PTE_PFN_MASK >> PTK_PAGE_SHIFT, (U64(1) << 40) - 1);
}

static void mk_table_roundtrip(void **state)
{
	(void)state;
	static const uint64_t pfns[] = { 0, 1, 511, 512, 0x12345, (U64(1) << 40) - 1 };
	for (size_t i = 0; i < sizeof(pfns) / sizeof(pfns[0]); i++) {
		ptk_pte_t e = ptk_pte_mk_table(pfns[i]);
		assert_true(ptk_pte_present(e));
		assert_true(ptk_pte_is_table(e));
		assert_false(ptk_pte_is_leaf(e));
		assert_false(ptk_pte_none(e));
		assert_false(ptk_pte_special(e));
		assert_true(ptk_pte_write(e));
		assert_true(e & PTK_PTE_USER);
		assert_int_equal(ptk_pte_pfn(e), pfns[i]);
	}
}

static void mk_leaf_roundtrip(void **state)
{
	(void)state;
	static const uint64_t pfns[] = { 0, 1, 511, 512, 0x12345, 1u << 18, (U64(1) << 40) - 1 };
	static const uint64_t flags[] = {
		0,
		PTK_PTE_WRITE,
		PTK_PTE_USER,
		PTK_PTE_WRITE | PTK_PTE_USER | PTK_PTE_ACCESSED | PTK_PTE_DIRTY,
		PTK_PTE_SPECIAL | PTK_PTE_USER,
		PTK_PTE_SPECIAL | PTK_PTE_WRITE | PTK_PTE_USER | PTK_PTE_ACCESSED,
	};
	for (size_t i = 0; i < sizeof(pfns) / sizeof(pfns[0]); i++) {
		for (size_t j = 0; j < sizeof(flags) / sizeof(flags[0]); j++) {
			ptk_pte_t e = ptk_pte_mk_leaf(pfns[i], flags[j]);
			assert_true(ptk_pte_present(e));
			assert_true(ptk_pte_is_leaf(e));
			assert_false(ptk_pte_is_table(e));
			assert_int_equal(ptk_pte_pfn(e), pfns[i]);
			assert_int_equal(e & ~PTK_PTE_PFN_MASK,
					 flags[j] | PTK_PTE_PRESENT | PTK_PTE_LEAF);
			assert_int_equal(ptk_pte_write(e), !!(flags[j] & PTK_PTE_WRITE));
			assert_int_equal(ptk_pte_special(e), !!(flags[j] & PTK_PTE_SPECIAL));
		}
	}
	/* A frame number too wide for the field is truncated, never spills
	 * into flag bits. */
	ptk_pte_t e = ptk_pte_mk_leaf(U64(1) << 40, 0);
	assert_int_equal(ptk_pte_pfn(e), 0);
	assert_int_equal(e, PTK_PTE_PRESENT | PTK_PTE_LEAF);
	e = ptk_pte_mk_leaf(~U64(0), 0);
	assert_int_equal(e & ~PTK_PTE_PFN_MASK, PTK_PTE_PRESENT | PTK_PTE_LEAF);
}

static void slot_accessors(void **state)
{
	(void)state;
	ptk_slot_t s;
	ptk_pte_init(&s, 0);
	assert_int_equal(ptk_pte_load(&s), 0);
	ptk_pte_t leaf = ptk_pte_mk_leaf(42, PTK_PTE_WRITE);
	ptk_pte_store(&s, leaf);
	assert_int_equal(ptk_pte_load(&s), leaf);

	/* cmpxchg success. */
	ptk_pte_t old = leaf;
	ptk_pte_t tbl = ptk_pte_mk_table(7);
	assert_true(ptk_pte_cmpxchg(&s, &old, tbl));
	assert_int_equal(ptk_pte_load(&s), tbl);
	/* cmpxchg failure: old receives the current value, slot unchanged. */
	old = leaf;
	assert_false(ptk_pte_cmpxchg(&s, &old, 0));
	assert_int_equal(old, tbl);
	assert_int_equal(ptk_pte_load(&s), tbl);
	/* xchg: get and clear. */
	assert_int_equal(ptk_pte_xchg(&s, 0), tbl);
	assert_true(ptk_pte_none(ptk_pte_load(&s)));
	assert_int_equal(ptk_pte_xchg(&s, leaf), 0);
	assert_int_equal(ptk_pte_load(&s), leaf);
	ptk_pte_init(&s, PTK_PTE_POISON);
	assert_int_equal(ptk_pte_load(&s), PTK_PTE_POISON);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(level_shift_size),
		cmocka_unit_test(level_index),
		cmocka_unit_test(level_base),
		cmocka_unit_test(level_next),
		cmocka_unit_test(huge_ok_and_va_bits),
		cmocka_unit_test(user_kernel_halves),
		cmocka_unit_test(canonical_4),
		cmocka_unit_test(canonical_5),
		cmocka_unit_test(predicates),
		cmocka_unit_test(mk_table_roundtrip),
		cmocka_unit_test(mk_leaf_roundtrip),
		cmocka_unit_test(slot_accessors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
