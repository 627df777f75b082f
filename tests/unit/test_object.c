/*
 * test_object.c - shared memory objects: shared and private mappings in
 * several address spaces, copy on write, truncate and hole punching under
 * every mapper, growth, lifetime, bad input and allocation failures.
 * Every test ends with frame accounting.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "helpers.h"

#define PG  UINT64_C(4096)
#define RW  (PTK_PROT_READ | PTK_PROT_WRITE)
#define RO  PTK_PROT_READ
#define A_VA (4 * GiB)
#define B_VA (8 * GiB)
#define C_VA (12 * GiB)

static uint64_t data_in_use(struct ptk_ctx *ctx)
{
	ptk_ctx_quiesce(ctx);
	struct ptk_pool_stats st;
	ptk_pool_stats(ctx, &st);
	return st.in_use[PTK_FRAME_DATA];
}

/* Host pointer of @va after faulting it for @access. */
static uint8_t *host(struct ptk_as *as, uint64_t va, unsigned access)
{
	struct ptk_xlate x;
	assert_int_equal(ptk_translate_fault(as, va, access, &x), 0);
	assert_non_null(x.host);
	return x.host;
}

static uint64_t pfn_of(struct ptk_as *as, uint64_t va)
{
	struct ptk_xlate x;
	assert_int_equal(ptk_translate(as, va, &x), 0);
	return x.pfn;
}

static bool mapped(struct ptk_as *as, uint64_t va)
{
	struct ptk_xlate x;
	return ptk_translate(as, va, &x) == 0;
}

static bool writable(struct ptk_as *as, uint64_t va)
{
	struct ptk_xlate x;
	return ptk_translate(as, va, &x) == 0 && ptk_pte_write(x.pte);
}

static uint8_t obj_byte(struct ptk_object *obj, uint64_t off)
{
	uint8_t b = 0xee;
	assert_int_equal(ptk_object_read(obj, off, &b, 1), 0);
	return b;
}

static void fill_obj(struct ptk_object *obj, uint64_t first, uint64_t n, uint8_t base)
{
	uint8_t buf[PG];
	for (uint64_t p = first; p < first + n; p++) {
		memset(buf, (uint8_t)(base + p), sizeof(buf));
		assert_int_equal(ptk_object_write(obj, p * PG, buf, PG), 0);
	}
}

static struct ptk_object *new_obj(struct ptk_ctx *ctx, uint64_t size, uint64_t max)
{
	struct ptk_object *obj;
	assert_int_equal(ptk_object_create(ctx, size, max, &obj), 0);
	return obj;
}

static struct ptk_as *new_as(struct ptk_ctx *ctx)
{
	struct ptk_as *as;
	assert_int_equal(ptk_as_create(ctx, 4, &as), 0);
	return as;
}

static void map_at(struct ptk_as *as, uint64_t va, uint64_t len, unsigned prot,
		   unsigned flags, struct ptk_object *obj, uint64_t off)
{
	uint64_t at = va;
	assert_int_equal(ptk_map_object(as, &at, len, prot, flags | PTK_MAP_FIXED, obj, off), 0);
	assert_int_equal(at, va);
}

/* Writes through one shared mapping are seen through the other, in
 * another address space at another offset, and through pread; pwrite is
 * seen through both mappings; both map the same frames. */
static void shared_two_spaces(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = test_ctx(0);
	struct ptk_object *obj = new_obj(ctx, 16 * PG, 0);
	struct ptk_as *a = new_as(ctx), *b = new_as(ctx);
	map_at(a, A_VA, 16 * PG, RW, PTK_MAP_SHARED, obj, 0);
	map_at(b, B_VA, 8 * PG, RW, PTK_MAP_SHARED, obj, 4 * PG);  /* pages 4..11 */

	/* a writes page 5, b reads it at its page 1, pread sees it */
	memset(host(a, A_VA + 5 * PG, PTK_ACCESS_WRITE), 0x55, PG);
	assert_int_equal(host(b, B_VA + 1 * PG, PTK_ACCESS_READ)[100], 0x55);
	assert_int_equal(pfn_of(a, A_VA + 5 * PG), pfn_of(b, B_VA + PG));
	assert_int_equal(obj_byte(obj, 5 * PG + 4095), 0x55);
	/* b writes page 11, a sees it */
	host(b, B_VA + 7 * PG, PTK_ACCESS_WRITE)[7] = 0x77;
	assert_int_equal(host(a, A_VA + 11 * PG, PTK_ACCESS_READ)[7], 0x77);
	assert_int_equal(obj_byte(obj, 11 * PG + 7), 0x77);
	/* pwrite is seen through both mappings (already mapped pages) */
	uint8_t v = 0x99;
	assert_int_equal(ptk_object_write(obj, 6 * PG + 3, &v, 1), 0);
	assert_int_equal(host(a, A_VA + 6 * PG, PTK_ACCESS_READ)[3], 0x99);
	assert_int_equal(host(b, B_VA + 2 * PG, PTK_ACCESS_READ)[3], 0x99);
	/* a page written across a page boundary */
	uint8_t two[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	assert_int_equal(ptk_object_write(obj, 8 * PG - 4, two, 8), 0);
	assert_int_equal(host(b, B_VA + 3 * PG, PTK_ACCESS_READ)[PG - 1], 4);
	assert_int_equal(host(b, B_VA + 4 * PG, PTK_ACCESS_READ)[0], 5);
	/* never-written pages read zero */
	assert_int_equal(host(a, A_VA, PTK_ACCESS_READ)[0], 0);

	struct ptk_object_stats st;
	ptk_object_stats(obj, &st);
	assert_int_equal(st.mappings, 2);
	assert_int_equal(st.size, 16 * PG);
	assert_int_equal(st.max_size, 16 * PG);
	/* pages 0, 5, 6, 7, 8, 11 and b's reads of 6, 7, 8 (same frames) */
	assert_int_equal(st.cached_pages, 6);
	struct ptk_region_info ri;
	assert_int_equal(ptk_region_query(b, B_VA + PG, &ri), 0);
	assert_int_equal(ri.kind, PTK_REGION_OBJECT);
	assert_true(ri.flags & PTK_MAP_SHARED);
	/* rss counts the mapping's entries */
	struct ptk_as_stats as_st;
	ptk_as_stats(b, &as_st);
	assert_int_equal(as_st.rss_frames, 5);

	ptk_object_release(obj);
	ptk_as_destroy(a);
	ptk_as_destroy(b);
	test_teardown(ctx, NULL);
}

/* A private mapping maps the object's pages read-only until written; a
 * write copies the page: the object and the other mappings keep theirs. */
static void private_cow(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = test_ctx(0);
	struct ptk_object *obj = new_obj(ctx, 8 * PG, 0);
	fill_obj(obj, 0, 6, 0x10);               /* pages 6, 7: holes */
	struct ptk_as *a = new_as(ctx), *b = new_as(ctx);
	map_at(a, A_VA, 8 * PG, RW, PTK_MAP_PRIVATE, obj, 0);
	map_at(b, B_VA, 8 * PG, RW, PTK_MAP_SHARED, obj, 0);

	/* read fault: the object's frame, read-only */
	assert_int_equal(host(a, A_VA + 2 * PG, PTK_ACCESS_READ)[0], 0x12);
	assert_int_equal(host(b, B_VA + 2 * PG, PTK_ACCESS_READ)[0], 0x12);
	assert_int_equal(pfn_of(a, A_VA + 2 * PG), pfn_of(b, B_VA + 2 * PG));
	assert_false(writable(a, A_VA + 2 * PG));
	uint64_t shared_pfn = pfn_of(a, A_VA + 2 * PG);
	/* write fault on the read-only entry: a copy */
	uint8_t *p = host(a, A_VA + 2 * PG, PTK_ACCESS_WRITE);
	assert_int_not_equal(pfn_of(a, A_VA + 2 * PG), shared_pfn);
	assert_int_equal(p[100], 0x12);          /* copied contents */
	p[100] = 0xaa;
	assert_int_equal(obj_byte(obj, 2 * PG + 100), 0x12);
	assert_int_equal(host(b, B_VA + 2 * PG, PTK_ACCESS_READ)[100], 0x12);
	/* write fault with no entry: copied at once */
	host(a, A_VA + 3 * PG, PTK_ACCESS_WRITE)[0] = 0xbb;
	assert_int_equal(obj_byte(obj, 3 * PG), 0x13);
	/* a hole written privately stays a hole in the object */
	struct ptk_object_stats st0, st1;
	ptk_object_stats(obj, &st0);
	host(a, A_VA + 6 * PG, PTK_ACCESS_WRITE)[1] = 0xcc;
	ptk_object_stats(obj, &st1);
	assert_int_equal(st1.cached_pages, st0.cached_pages);
	assert_int_equal(obj_byte(obj, 6 * PG + 1), 0);
	/* the shared mapping's writes reach private pages not yet copied */
	host(b, B_VA + 4 * PG, PTK_ACCESS_WRITE)[5] = 0xdd;
	assert_int_equal(host(a, A_VA + 4 * PG, PTK_ACCESS_READ)[5], 0xdd);
	/* ... and not copied ones */
	host(b, B_VA + 2 * PG, PTK_ACCESS_WRITE)[100] = 0xee;
	assert_int_equal(host(a, A_VA + 2 * PG, PTK_ACCESS_READ)[100], 0xaa);

	/* protect RO then RW: the object's pages stay read-only in the
	 * private mapping, the copy regains write on its write fault without
	 * another copy (it is ours alone) */
	uint64_t copy_pfn = pfn_of(a, A_VA + 2 * PG);
	assert_int_equal(ptk_protect(a, A_VA, 8 * PG, RO), 0);
	assert_false(writable(a, A_VA + 2 * PG));
	assert_int_equal(ptk_fault(a, A_VA + 2 * PG, PTK_ACCESS_WRITE), -EACCES);
	assert_int_equal(ptk_protect(a, A_VA, 8 * PG, RW), 0);
	assert_false(writable(a, A_VA + 4 * PG));
	assert_int_equal(ptk_fault(a, A_VA + 2 * PG, PTK_ACCESS_WRITE), 0);
	assert_int_equal(pfn_of(a, A_VA + 2 * PG), copy_pfn);
	assert_true(writable(a, A_VA + 2 * PG));
	assert_int_equal(ptk_fault(a, A_VA + 4 * PG, PTK_ACCESS_WRITE), 0);
	assert_int_not_equal(pfn_of(a, A_VA + 4 * PG), pfn_of(b, B_VA + 4 * PG));
	assert_int_equal(host(a, A_VA + 4 * PG, PTK_ACCESS_READ)[5], 0xdd);

	/* drop: the copies go, the object's contents come back */
	assert_int_equal(ptk_drop(a, A_VA, 8 * PG), 0);
	assert_false(mapped(a, A_VA + 2 * PG));
	assert_int_equal(host(a, A_VA + 2 * PG, PTK_ACCESS_READ)[100], 0xee);
	assert_int_equal(host(a, A_VA + 6 * PG, PTK_ACCESS_READ)[1], 0);

	struct ptk_region_info ri;
	assert_int_equal(ptk_region_query(a, A_VA, &ri), 0);
	assert_int_equal(ri.kind, PTK_REGION_OBJECT);
	assert_true(ri.flags & PTK_MAP_PRIVATE);
	ptk_object_release(obj);
	ptk_as_destroy(a);
	ptk_as_destroy(b);
	test_teardown(ctx, NULL);
}

/* Truncate zaps every mapping beyond the new size in every address space
 * (private copies included), frees the pages, and faults there give
 * -ENXIO; growing again gives zero pages. */
static void truncate_zaps(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = test_ctx(0);
	uint64_t base = data_in_use(ctx);
	struct ptk_object *obj = new_obj(ctx, 16 * PG, 32 * PG);
	fill_obj(obj, 0, 16, 1);
	struct ptk_as *a = new_as(ctx), *b = new_as(ctx), *c = new_as(ctx);
	map_at(a, A_VA, 16 * PG, RW, PTK_MAP_SHARED, obj, 0);
	map_at(b, B_VA, 12 * PG, RO, PTK_MAP_SHARED, obj, 4 * PG);   /* 4..15 */
	map_at(c, C_VA, 16 * PG, RW, PTK_MAP_PRIVATE, obj, 0);
	assert_int_equal(ptk_populate(a, A_VA, 16 * PG, PTK_ACCESS_WRITE), 0);
	assert_int_equal(ptk_populate(b, B_VA, 12 * PG, PTK_ACCESS_READ), 0);
	assert_int_equal(ptk_populate(c, C_VA, 16 * PG, PTK_ACCESS_READ), 0);
	/* private copies of pages 2 and 10 */
	host(c, C_VA + 2 * PG, PTK_ACCESS_WRITE)[0] = 0xc2;
	host(c, C_VA + 10 * PG, PTK_ACCESS_WRITE)[0] = 0xca;
	assert_int_equal(data_in_use(ctx) - base, 16 + 2);

	assert_int_equal(ptk_object_truncate(obj, 6 * PG), 0);
	assert_int_equal(ptk_object_size(obj), 6 * PG);
	for (uint64_t p = 0; p < 16; p++) {
		assert_int_equal(mapped(a, A_VA + p * PG), p < 6);
		assert_int_equal(mapped(c, C_VA + p * PG), p < 6);
		if (p >= 4)
			assert_int_equal(mapped(b, B_VA + (p - 4) * PG), p < 6);
	}
	/* pages 6..15 and the copy of page 10 are freed */
	assert_int_equal(data_in_use(ctx) - base, 6 + 1);
	struct ptk_object_stats st;
	ptk_object_stats(obj, &st);
	assert_int_equal(st.cached_pages, 6);
	struct ptk_as_stats as_st;
	ptk_as_stats(a, &as_st);
	assert_int_equal(as_st.rss_frames, 6);
	/* faults beyond the size: -ENXIO (SIGBUS); below: still the data */
	assert_int_equal(ptk_fault(a, A_VA + 6 * PG, PTK_ACCESS_READ), -ENXIO);
	assert_int_equal(ptk_fault(b, B_VA + 11 * PG, PTK_ACCESS_READ), -ENXIO);
	assert_int_equal(ptk_fault(c, C_VA + 10 * PG, PTK_ACCESS_WRITE), -ENXIO);
	assert_int_equal(host(b, B_VA + 1 * PG, PTK_ACCESS_READ)[9], 6);
	assert_int_equal(host(c, C_VA + 2 * PG, PTK_ACCESS_READ)[0], 0xc2);
	uint8_t byte;
	assert_int_equal(ptk_object_read(obj, 6 * PG, &byte, 1), -EINVAL);

	/* grow: new pages read zero, faults work again */
	assert_int_equal(ptk_object_truncate(obj, 32 * PG), 0);
	assert_int_equal(host(a, A_VA + 10 * PG, PTK_ACCESS_READ)[0], 0);
	assert_int_equal(host(c, C_VA + 10 * PG, PTK_ACCESS_READ)[0], 0);
	assert_int_equal(obj_byte(obj, 31 * PG), 0);
	host(a, A_VA + 12 * PG, PTK_ACCESS_WRITE)[1] = 0x42;
	assert_int_equal(host(b, B_VA + 8 * PG, PTK_ACCESS_READ)[1], 0x42);
	/* truncate to zero: everything goes */
	assert_int_equal(ptk_object_truncate(obj, 0), 0);
	for (uint64_t p = 0; p < 16; p++)
		assert_false(mapped(a, A_VA + p * PG));
	assert_int_equal(data_in_use(ctx) - base, 0);
	assert_int_equal(ptk_fault(a, A_VA, PTK_ACCESS_READ), -ENXIO);

	ptk_object_release(obj);
	ptk_as_destroy(a);
	ptk_as_destroy(b);
	ptk_as_destroy(c);
	test_teardown(ctx, NULL);
}

/* Clone of object mappings (fork): a shared mapping stays shared between
 * parent and child (writes seen both ways and in the object); a private
 * one keeps its copies copy-on-write (a write in either side is its own);
 * the child's links make truncate reach it; the reverse map counts every
 * mapping; destroy of the parent leaves the child intact. */
static void clone_object_mappings(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = test_ctx(0);
	uint64_t base = data_in_use(ctx);
	struct ptk_object *obj = new_obj(ctx, 8 * PG, 0);
	fill_obj(obj, 0, 8, 0x10);
	struct ptk_as *p = new_as(ctx);
	map_at(p, A_VA, 8 * PG, RW, PTK_MAP_SHARED, obj, 0);
	map_at(p, B_VA, 8 * PG, RW, PTK_MAP_PRIVATE, obj, 0);
	assert_int_equal(ptk_populate(p, A_VA, 8 * PG, PTK_ACCESS_READ), 0);
	host(p, B_VA + 1 * PG, PTK_ACCESS_WRITE)[0] = 0xb1;      /* a private copy */
	assert_int_equal(host(p, B_VA + 2 * PG, PTK_ACCESS_READ)[0], 0x12);

	struct ptk_as *c;
	assert_int_equal(ptk_as_clone(p, &c), 0);
	struct ptk_object_stats st;
	ptk_object_stats(obj, &st);
	assert_int_equal(st.mappings, 4);
	/* shared: one frame, writes both ways */
	host(c, A_VA + 3 * PG, PTK_ACCESS_WRITE)[0] = 0xc3;
	assert_int_equal(host(p, A_VA + 3 * PG, PTK_ACCESS_READ)[0], 0xc3);
	assert_int_equal(obj_byte(obj, 3 * PG), 0xc3);
	assert_int_equal(pfn_of(c, A_VA + 3 * PG), pfn_of(p, A_VA + 3 * PG));
	/* private: the child sees the parent's copy, then writes its own */
	assert_int_equal(host(c, B_VA + 1 * PG, PTK_ACCESS_READ)[0], 0xb1);
	assert_int_equal(pfn_of(c, B_VA + 1 * PG), pfn_of(p, B_VA + 1 * PG));
	assert_int_equal(ptk_rmap_count(ctx, pfn_of(p, B_VA + 1 * PG)), 2);
	assert_false(writable(p, B_VA + 1 * PG));
	host(c, B_VA + 1 * PG, PTK_ACCESS_WRITE)[0] = 0xcc;
	host(p, B_VA + 2 * PG, PTK_ACCESS_WRITE)[0] = 0xbb;
	assert_int_equal(host(p, B_VA + 1 * PG, PTK_ACCESS_READ)[0], 0xb1);
	assert_int_equal(host(c, B_VA + 2 * PG, PTK_ACCESS_READ)[0], 0x12);
	assert_int_equal(obj_byte(obj, 1 * PG), 0x11);
	assert_int_equal(obj_byte(obj, 2 * PG), 0x12);
	/* the object page itself is reverse-mapped into both spaces */
	assert_int_equal(ptk_rmap_count(ctx, pfn_of(c, A_VA + 3 * PG)), 2);
	/* truncate reaches the child through its links */
	assert_int_equal(ptk_object_truncate(obj, 2 * PG), 0);
	for (uint64_t i = 2; i < 8; i++) {
		assert_false(mapped(c, A_VA + i * PG));
		assert_false(mapped(c, B_VA + i * PG));
		assert_false(mapped(p, A_VA + i * PG));
	}
	assert_int_equal(ptk_fault(c, A_VA + 5 * PG, PTK_ACCESS_READ), -ENXIO);
	/* destroy the parent: the child keeps its pages */
	ptk_as_destroy(p);
	assert_int_equal(host(c, B_VA + 1 * PG, PTK_ACCESS_READ)[0], 0xcc);
	assert_int_equal(host(c, A_VA + 1 * PG, PTK_ACCESS_READ)[0], 0x11);
	ptk_object_stats(obj, &st);
	assert_int_equal(st.mappings, 2);
	ptk_object_release(obj);
	ptk_as_destroy(c);
	assert_int_equal(data_in_use(ctx) - base, 0);
	test_teardown(ctx, NULL);
}

/* Punching a hole zaps the mappings of those pages only; they read back
 * zero through pread and the mappings; the size stays; private copies
 * stay. */
static void punch_hole(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = test_ctx(0);
	uint64_t base = data_in_use(ctx);
	struct ptk_object *obj = new_obj(ctx, 12 * PG, 0);
	fill_obj(obj, 0, 12, 0x20);
	struct ptk_as *a = new_as(ctx), *b = new_as(ctx);
	map_at(a, A_VA, 12 * PG, RW, PTK_MAP_SHARED, obj, 0);
	map_at(b, B_VA, 12 * PG, RW, PTK_MAP_SHARED, obj, 0);
	assert_int_equal(ptk_populate(a, A_VA, 12 * PG, PTK_ACCESS_READ), 0);
	assert_int_equal(ptk_populate(b, B_VA, 12 * PG, PTK_ACCESS_WRITE), 0);
	assert_int_equal(ptk_object_punch(obj, 4 * PG, 3 * PG), 0);
	for (uint64_t p = 0; p < 12; p++) {
		bool hole = p >= 4 && p < 7;
		assert_int_equal(mapped(a, A_VA + p * PG), !hole);
		assert_int_equal(mapped(b, B_VA + p * PG), !hole);
		assert_int_equal(obj_byte(obj, p * PG + 17), hole ? 0 : 0x20 + p);
	}
	assert_int_equal(data_in_use(ctx) - base, 9);
	assert_int_equal(ptk_object_size(obj), 12 * PG);
	assert_int_equal(host(a, A_VA + 5 * PG, PTK_ACCESS_READ)[17], 0);
	host(b, B_VA + 5 * PG, PTK_ACCESS_WRITE)[17] = 0x5;
	assert_int_equal(host(a, A_VA + 5 * PG, PTK_ACCESS_READ)[17], 0x5);
	/* a hole beyond the size is nothing to do */
	assert_int_equal(ptk_object_truncate(obj, 8 * PG), 0);
	assert_int_equal(ptk_object_punch(obj, 8 * PG, 4 * PG), 0);

	/* A private mapping keeps its copies across a punch (the kernel's
	 * hole punch without even_cows) and loses its read-only mappings of
	 * the object's pages; truncate takes the copies too. */
	struct ptk_as *c = new_as(ctx);
	map_at(c, C_VA, 8 * PG, RW, PTK_MAP_PRIVATE, obj, 0);
	assert_int_equal(ptk_populate(c, C_VA, 8 * PG, PTK_ACCESS_READ), 0);
	host(c, C_VA + 1 * PG, PTK_ACCESS_WRITE)[0] = 0xc1;   /* a copy */
	uint64_t copy = pfn_of(c, C_VA + 1 * PG);
	assert_int_equal(ptk_object_punch(obj, 0, 3 * PG), 0);
	assert_true(mapped(c, C_VA + 1 * PG));
	assert_int_equal(pfn_of(c, C_VA + 1 * PG), copy);
	assert_int_equal(host(c, C_VA + 1 * PG, PTK_ACCESS_READ)[0], 0xc1);
	assert_false(mapped(c, C_VA + 0 * PG));
	assert_false(mapped(c, C_VA + 2 * PG));
	assert_true(mapped(c, C_VA + 3 * PG));
	assert_int_equal(obj_byte(obj, 1 * PG), 0);
	assert_int_equal(ptk_object_truncate(obj, 1 * PG), 0);
	assert_false(mapped(c, C_VA + 1 * PG));
	ptk_object_release(obj);
	ptk_as_destroy(a);
	ptk_as_destroy(b);
	ptk_as_destroy(c);
	assert_int_equal(data_in_use(ctx) - base, 0);
	test_teardown(ctx, NULL);
}

static int count_obj(const struct ptk_region_info *ri, void *arg)
{
	if (ri->kind == PTK_REGION_OBJECT)
		(*(unsigned *)arg)++;
	return 0;
}

/* The object lives while mapped after its release and goes with its last
 * unmap; split, partial unmap, fixed replacement and drop on object
 * regions. */
static void lifetime_and_regions(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = test_ctx(0);
	uint64_t base = data_in_use(ctx);
	struct ptk_object *obj = new_obj(ctx, 16 * PG, 0);
	struct ptk_as *a = new_as(ctx), *b = new_as(ctx);
	map_at(a, A_VA, 16 * PG, RW, PTK_MAP_SHARED, obj, 0);
	map_at(b, B_VA, 16 * PG, RW, PTK_MAP_SHARED, obj, 0);
	assert_int_equal(ptk_populate(a, A_VA, 16 * PG, PTK_ACCESS_WRITE), 0);
	for (uint64_t p = 0; p < 16; p++)
		host(a, A_VA + p * PG, PTK_ACCESS_WRITE)[0] = (uint8_t)(0x30 + p);
	ptk_object_release(obj);              /* mapped: stays */

	/* split by a partial unmap: the upper part keeps its offsets */
	assert_int_equal(ptk_unmap(b, B_VA + 4 * PG, 2 * PG), 0);
	assert_int_equal(host(b, B_VA + 6 * PG, PTK_ACCESS_READ)[0], 0x36);
	assert_int_equal(host(b, B_VA + 3 * PG, PTK_ACCESS_READ)[0], 0x33);
	assert_int_equal(host(b, B_VA + 9 * PG, PTK_ACCESS_READ)[0], 0x39);
	assert_int_equal(host(b, B_VA + 8 * PG, PTK_ACCESS_READ)[0], 0x38);
	assert_int_equal(pfn_of(b, B_VA + 9 * PG), pfn_of(a, A_VA + 9 * PG));
	/* split by protect */
	assert_int_equal(ptk_protect(b, B_VA + 8 * PG, PG, RO), 0);
	assert_false(writable(b, B_VA + 8 * PG));
	assert_true(writable(b, B_VA + 9 * PG));
	assert_int_equal(ptk_fault(b, B_VA + 8 * PG, PTK_ACCESS_WRITE), -EACCES);
	/* fixed anonymous replacement of part of an object mapping */
	uint64_t at = B_VA + 10 * PG;
	assert_int_equal(ptk_map_anon(b, &at, 2 * PG, RW, PTK_MAP_FIXED), 0);
	assert_false(mapped(b, B_VA + 10 * PG));
	assert_int_equal(host(b, B_VA + 10 * PG, PTK_ACCESS_READ)[0], 0);
	assert_int_equal(host(b, B_VA + 12 * PG, PTK_ACCESS_READ)[0], 0x3c);
	/* an object mapping replacing an anonymous one and another object
	 * mapping (fixed): the old entries go, the new ones map the object */
	at = B_VA + 10 * PG;
	assert_int_equal(ptk_map_object(b, &at, 3 * PG, RO, PTK_MAP_FIXED | PTK_MAP_SHARED,
					obj, 2 * PG), 0);
	assert_int_equal(host(b, B_VA + 12 * PG, PTK_ACCESS_READ)[0], 0x34);
	assert_int_equal(host(b, B_VA + 10 * PG, PTK_ACCESS_READ)[0], 0x32);
	assert_int_equal(ptk_fault(b, B_VA + 10 * PG, PTK_ACCESS_WRITE), -EACCES);
	at = B_VA + 10 * PG;
	assert_int_equal(ptk_map_anon(b, &at, 2 * PG, RW, PTK_MAP_FIXED), 0);
	at = B_VA + 12 * PG;
	assert_int_equal(ptk_map_object(b, &at, PG, RW, PTK_MAP_FIXED | PTK_MAP_SHARED,
					obj, 12 * PG), 0);
	assert_int_equal(host(b, B_VA + 12 * PG, PTK_ACCESS_READ)[0], 0x3c);
	assert_int_equal(host(b, B_VA + 10 * PG, PTK_ACCESS_READ)[0], 0);
	/* drop on a shared mapping: entries go, the cache keeps the data */
	assert_int_equal(ptk_drop(a, A_VA, 16 * PG), 0);
	assert_false(mapped(a, A_VA + 7 * PG));
	assert_int_equal(host(a, A_VA + 7 * PG, PTK_ACCESS_READ)[0], 0x37);
	/* region foreach reports the kind */
	unsigned n_obj = 0;
	assert_int_equal(ptk_region_foreach(b, count_obj, &n_obj), 0);
	assert_int_equal(n_obj, 6);   /* [0,4) [6,8) [8,9) [9,10) [12,13) [13,16) */

	ptk_as_destroy(a);
	/* b still maps it (and one anonymous page at 10) */
	assert_int_equal(data_in_use(ctx) - base, 16 + 1);
	assert_int_equal(host(b, B_VA + 15 * PG, PTK_ACCESS_READ)[0], 0x3f);
	/* unmapping the last object region frees the pages (anonymous page
	 * at 10 stays) */
	assert_int_equal(ptk_unmap(b, B_VA, 10 * PG), 0);
	assert_int_equal(data_in_use(ctx) - base, 16 + 1);
	assert_int_equal(ptk_unmap(b, B_VA + 12 * PG, 4 * PG), 0);
	assert_int_equal(data_in_use(ctx) - base, 1);
	test_teardown(ctx, b);
}

/* Bad input: negative errno, nothing changed. */
static void bad_input(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = test_ctx(0);
	struct ptk_object *obj = NULL;
	assert_int_equal(ptk_object_create(NULL, PG, 0, &obj), -EINVAL);
	assert_int_equal(ptk_object_create(ctx, PG, 0, NULL), -EINVAL);
	assert_int_equal(ptk_object_create(ctx, 100, 0, &obj), -EINVAL);
	assert_int_equal(ptk_object_create(ctx, PG, PG + 1, &obj), -EINVAL);
	assert_int_equal(ptk_object_create(ctx, 2 * PG, PG, &obj), -EINVAL);
	assert_int_equal(ptk_object_create(ctx, 0, 0, &obj), -EINVAL);
	assert_int_equal(ptk_object_create(ctx, 0, UINT64_C(1) << 60, &obj), -EINVAL);
	assert_null(obj);
	obj = new_obj(ctx, 4 * PG, 8 * PG);
	struct ptk_as *as = new_as(ctx);
	uint64_t va = A_VA;
	const unsigned F = PTK_MAP_FIXED;
	assert_int_equal(ptk_map_object(as, &va, 4 * PG, RW, F, obj, 0), -EINVAL);
	assert_int_equal(ptk_map_object(as, &va, 4 * PG, RW, F | PTK_MAP_SHARED | PTK_MAP_PRIVATE,
					obj, 0), -EINVAL);
	assert_int_equal(ptk_map_object(as, &va, 4 * PG, RW, F | PTK_MAP_SHARED | PTK_MAP_HUGE,
					obj, 0), -EINVAL);
	assert_int_equal(ptk_map_object(as, &va, 4 * PG, RW, F | PTK_MAP_SHARED, obj, 100), -EINVAL);
	assert_int_equal(ptk_map_object(as, &va, 4 * PG, RW, F | PTK_MAP_SHARED, obj, 5 * PG), -EINVAL);
	assert_int_equal(ptk_map_object(as, &va, 9 * PG, RW, F | PTK_MAP_SHARED, obj, 0), -EINVAL);
	assert_int_equal(ptk_map_object(as, &va, 4 * PG, RW, F | PTK_MAP_SHARED, NULL, 0), -EINVAL);
	assert_int_equal(ptk_map_object(as, &va, 4 * PG, RW, F | PTK_MAP_SHARED, obj,
					UINT64_MAX - PG + 1), -EINVAL);
	assert_int_equal(ptk_map_anon(as, &va, 4 * PG, RW, F | PTK_MAP_SHARED), -EINVAL);
	assert_int_equal(ptk_map_object(NULL, &va, 4 * PG, RW, F | PTK_MAP_SHARED, obj, 0), -EINVAL);
	/* an object of another context */
	struct ptk_ctx *ctx2 = test_ctx(8 * MiB);
	struct ptk_object *obj2 = new_obj(ctx2, 4 * PG, 0);
	assert_int_equal(ptk_map_object(as, &va, 4 * PG, RW, F | PTK_MAP_SHARED, obj2, 0), -EINVAL);
	ptk_object_release(obj2);
	test_teardown(ctx2, NULL);
	struct ptk_as_stats ast;
	ptk_as_stats(as, &ast);
	assert_int_equal(ast.regions, 0);
	/* beyond the size but within max_size: mapping is fine, faults are
	 * -ENXIO */
	assert_int_equal(ptk_map_object(as, &va, 8 * PG, RW, F | PTK_MAP_SHARED | PTK_MAP_POPULATE,
					obj, 0), 0);
	for (uint64_t p = 0; p < 8; p++)   /* populate stops at the size */
		assert_int_equal(mapped(as, A_VA + p * PG), p < 4);
	assert_int_equal(ptk_fault(as, A_VA + 4 * PG, PTK_ACCESS_READ), -ENXIO);
	assert_int_equal(ptk_object_truncate(obj, PG + 1), -EINVAL);
	assert_int_equal(ptk_object_truncate(obj, 9 * PG), -EINVAL);
	assert_int_equal(ptk_object_truncate(NULL, 0), -EINVAL);
	assert_int_equal(ptk_object_punch(obj, 1, PG), -EINVAL);
	assert_int_equal(ptk_object_punch(obj, 0, 0), -EINVAL);
	assert_int_equal(ptk_object_punch(obj, 0, 9 * PG), -EINVAL);
	assert_int_equal(ptk_object_punch(obj, UINT64_MAX - PG + 1, PG), -EINVAL);
	assert_int_equal(ptk_object_punch(NULL, 0, PG), -EINVAL);
	uint8_t buf[16] = { 0 };
	assert_int_equal(ptk_object_write(obj, 4 * PG - 8, buf, 16), -EINVAL);
	assert_int_equal(ptk_object_read(obj, 4 * PG - 8, buf, 16), -EINVAL);
	assert_int_equal(ptk_object_write(obj, 0, NULL, 16), -EINVAL);
	assert_int_equal(ptk_object_read(NULL, 0, buf, 16), -EINVAL);
	assert_int_equal(ptk_object_write(obj, UINT64_MAX, buf, 16), -EINVAL);
	assert_int_equal(ptk_object_size(NULL), 0);
	struct ptk_object_stats st;
	ptk_object_stats(obj, &st);
	assert_int_equal(st.size, 4 * PG);
	assert_int_equal(st.cached_pages, 4);
	assert_int_equal(st.mappings, 1);
	ptk_object_stats(NULL, &st);
	assert_int_equal(st.size, 0);
	ptk_object_release(NULL);
	ptk_object_release(obj);
	test_teardown(ctx, as);
}

/* ---- failure injection ------------------------------------------------- */

#define NPG 8u

struct env {
	struct ptk_ctx *ctx;
	struct ptk_object *obj;
	struct ptk_as *a, *b;       /* a: shared RW at A_VA, b: private RW at B_VA */
};

struct snap {
	ptk_pte_t pte[2][NPG];
	uint8_t data[NPG * PG];
	uint64_t size;
};

static void take_snap(struct env *e, struct snap *s)
{
	memset(s, 0, sizeof(*s));
	for (unsigned p = 0; p < NPG; p++) {
		struct ptk_xlate x;
		s->pte[0][p] = ptk_translate(e->a, A_VA + p * PG, &x) ? 0 : x.pte;
		s->pte[1][p] = ptk_translate(e->b, B_VA + p * PG, &x) ? 0 : x.pte;
	}
	s->size = ptk_object_size(e->obj);
	assert_int_equal(ptk_object_read(e->obj, 0, s->data, s->size), 0);
}

/* Pages 0-3 written, 4-7 holes; a maps 0 and 5, b maps 1 (read-only). */
static void env_setup(struct env *e)
{
	e->ctx = test_ctx(0);
	e->obj = new_obj(e->ctx, NPG * PG, 0);
	fill_obj(e->obj, 0, 4, 0x40);
	e->a = new_as(e->ctx);
	e->b = new_as(e->ctx);
	map_at(e->a, A_VA, NPG * PG, RW, PTK_MAP_SHARED, e->obj, 0);
	map_at(e->b, B_VA, NPG * PG, RW, PTK_MAP_PRIVATE, e->obj, 0);
	assert_int_equal(ptk_fault(e->a, A_VA, PTK_ACCESS_WRITE), 0);
	assert_int_equal(ptk_fault(e->a, A_VA + 5 * PG, PTK_ACCESS_READ), 0);
	assert_int_equal(ptk_fault(e->b, B_VA + PG, PTK_ACCESS_READ), 0);
}

static void env_teardown(struct env *e)
{
	ptk_object_release(e->obj);
	ptk_as_destroy(e->a);
	ptk_as_destroy(e->b);
	test_teardown(e->ctx, NULL);
}

enum op { OP_SHARED_HOLE, OP_SHARED_CACHED, OP_PRIV_READ, OP_PRIV_WRITE,
	  OP_PRIV_WRITE_HOLE, OP_WP, OP_MAP, OP_WRITE, OP_TRUNCATE, OP_PUNCH, OP_NR };

static int run_op(struct env *e, enum op op)
{
	switch (op) {
	case OP_SHARED_HOLE:     return ptk_fault(e->a, A_VA + 6 * PG, PTK_ACCESS_WRITE);
	case OP_SHARED_CACHED:   return ptk_fault(e->a, A_VA + 2 * PG, PTK_ACCESS_READ);
	case OP_PRIV_READ:       return ptk_fault(e->b, B_VA + 3 * PG, PTK_ACCESS_READ);
	case OP_PRIV_WRITE:      return ptk_fault(e->b, B_VA + 2 * PG, PTK_ACCESS_WRITE);
	case OP_PRIV_WRITE_HOLE: return ptk_fault(e->b, B_VA + 7 * PG, PTK_ACCESS_WRITE);
	case OP_WP:              return ptk_fault(e->b, B_VA + PG, PTK_ACCESS_WRITE);
	case OP_MAP: {
		uint64_t va = C_VA;
		return ptk_map_object(e->a, &va, 4 * PG, RW,
				      PTK_MAP_FIXED | PTK_MAP_PRIVATE | PTK_MAP_POPULATE,
				      e->obj, 2 * PG);
	}
	case OP_WRITE: {
		uint8_t buf[3 * PG];
		memset(buf, 0x77, sizeof(buf));
		return ptk_object_write(e->obj, 3 * PG + 100, buf, sizeof(buf));
	}
	case OP_TRUNCATE:        return ptk_object_truncate(e->obj, 2 * PG);
	case OP_PUNCH:           return ptk_object_punch(e->obj, 0, 6 * PG);
	default:                 return -EINVAL;
	}
}

/* For every operation and every allocation N it makes: fail exactly the
 * Nth; the operation returns 0 or -ENOMEM, -ENOMEM changed nothing (the
 * mappings' entries, the object's contents and size), truncate and punch
 * never fail, and every frame comes back. */
static void inject_every_call(void **state)
{
	(void)state;
	for (enum op op = 0; op < OP_NR; op++) {
		struct env e;
		env_setup(&e);
		ptk_ctx_alloc_count(e.ctx, PTK_INJECT_ALL, 1);
		assert_int_equal(run_op(&e, op), 0);
		long count = ptk_ctx_alloc_count(e.ctx, PTK_INJECT_ALL, 1);
		env_teardown(&e);
		if (op != OP_TRUNCATE && op != OP_PUNCH && op != OP_SHARED_CACHED &&
		    op != OP_PRIV_READ)
			assert_true(count > 0);
		for (long n = 1; n <= count; n++) {
			env_setup(&e);
			struct snap before, after;
			take_snap(&e, &before);
			ptk_ctx_inject_failure(e.ctx, PTK_INJECT_ALL, n);
			int rc = run_op(&e, op);
			assert_int_equal(ptk_ctx_inject_failure(e.ctx, 0, 0), 0);  /* fired */
			if (op == OP_TRUNCATE || op == OP_PUNCH)
				assert_int_equal(rc, 0);
			else if (rc != 0)
				assert_int_equal(rc, -ENOMEM);
			if (rc) {
				take_snap(&e, &after);
				assert_memory_equal(&before, &after, sizeof(before));
				struct ptk_as_stats st;
				ptk_as_stats(e.a, &st);
				assert_int_equal(st.regions, 1);
			}
			env_teardown(&e);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(shared_two_spaces),
		cmocka_unit_test(private_cow),
		cmocka_unit_test(truncate_zaps),
		cmocka_unit_test(punch_hole),
		cmocka_unit_test(clone_object_mappings),
		cmocka_unit_test(lifetime_and_regions),
		cmocka_unit_test(bad_input),
		cmocka_unit_test(inject_every_call),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
