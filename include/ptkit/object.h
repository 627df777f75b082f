/*
 * ptkit/object.h - shared memory objects ("files"): a page cache of frames
 * indexed by page offset, mapped shared or private into any number of
 * address spaces, truncated and hole-punched under every mapper.
 *
 * (Protocol comment: to be completed with the implementation.  The order
 * of locks is in ptkit/rmap.h.)
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
 * that may grow up to @max_size (0: @size).  0 and *out; -EINVAL;
 * -ENOMEM.  The caller holds one reference. */
int ptk_object_create(struct ptk_ctx *ctx, uint64_t size, uint64_t max_size,
		      struct ptk_object **out);

/* Drop the caller's reference; the object and its pages go when the last
 * mapping of it is unmapped. */
void ptk_object_release(struct ptk_object *obj);

uint64_t ptk_object_size(const struct ptk_object *obj);

/* Change the size.  Shrinking zaps every mapping of the pages beyond the
 * new end, in every address space, through the gather, then frees them
 * from the cache.  -EINVAL beyond max_size or unaligned. */
int ptk_object_truncate(struct ptk_object *obj, uint64_t size);

/* Punch a hole: the same for [off, off+len), size unchanged. */
int ptk_object_punch(struct ptk_object *obj, uint64_t off, uint64_t len);

/* pwrite/pread analogs (through the page cache; no mapping needed). */
int ptk_object_write(struct ptk_object *obj, uint64_t off, const void *buf,
		     uint64_t len);
int ptk_object_read(struct ptk_object *obj, uint64_t off, void *buf, uint64_t len);

/* Map [offset, offset+len) of @obj at *va (placement and errors as
 * ptk_map_anon()); flags must hold exactly one of PTK_MAP_SHARED and
 * PTK_MAP_PRIVATE.  Pages are faulted in on demand; a fault beyond the
 * object's end gives -ENXIO (SIGBUS). */
int ptk_map_object(struct ptk_as *as, uint64_t *va, uint64_t len, unsigned prot,
		   unsigned flags, struct ptk_object *obj, uint64_t offset);

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
