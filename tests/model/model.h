/*
 * model.h - the reference model of one address space: a deliberately
 * simple, single-threaded statement of what every operation must do.
 *
 * State
 * -----
 *   regions  a sorted array of non-overlapping ranges {start, end, prot,
 *            flags (PTK_MAP_HUGE only), kind, pfn (special: frame of start)},
 *            split and cut exactly as ptkit splits and cuts them (no merging);
 *   pages    a sorted array of the anonymous pages that hold a frame:
 *            page number -> contents tag (0: the page reads as zero), and
 *            cow: shared copy-on-write since a clone (model_clone), until
 *            a write fault on the page breaks the sharing.  In an object
 *            region a page either maps the object's own frame (obj: its
 *            contents are the object's, model_object.tag) or is a private
 *            copy (a write fault in a PTK_MAP_PRIVATE region; its own tag);
 *            wp: write-protected by a protection change, which granting
 *            write again does not undo in a private object region (the
 *            next write fault does);
 *   objects  struct model_object, shared by the models of every space that
 *            maps it: size, max_size and one contents tag per page offset
 *            (0: zero or a hole), plus gen, bumped whenever the page cache
 *            lets go of the offset's frame (truncate, punch).
 * Derived: a page is present if it is in @pages (anonymous or object) or
 * inside a special region (always present, frame region.pfn + offset); it
 * is writable iff present, its region's prot has PTK_PROT_WRITE, it is not
 * cow nor wp, and it is not an object page of a private mapping (those are
 * mapped read-only: a write fault copies them).  A cow page may be writable in ptkit all the same (a write fault on
 * one page of a 2 MiB leaf nobody else maps any more makes the whole leaf
 * writable), so checks accept either for it (model_lookup.cow); what COW
 * must guarantee - a write shows in one space only - the contents say.
 *
 * Every operation returns the result ptkit must return, and changes the
 * model as ptkit must change the address space, assuming every allocation
 * succeeds.  Two choices the specification leaves to the implementation are
 * asked of an oracle (struct model_oracle), consulted after the real
 * operation ran:
 *   huge     a fault in an anonymous PTK_MAP_HUGE region, whose 2 MiB block
 *            lies inside that one region and holds no page yet, may map the
 *            whole block at once (a 2 MiB leaf) or one 4 KiB page (no huge
 *            frame, or a table already there).  huge(va) says which.
 *   present  only when allocations may fail (model.may_fail, set while a
 *            failure is injected): whether a page the model would fault in
 *            is present; if not, the fault failed with -ENOMEM and changed
 *            nothing (populate stops there).
 *   writable the same for a write fault on a cow page (its copy needs a
 *            frame): whether the page is writable now; if not, -ENOMEM.
 *   present  also after a clone, for a shared object mapping's pages: the
 *            child may copy their entries or fault them in later (ptkit
 *            copies none); model_clone asks the child's oracle.
 * Without an oracle, faults map 4 KiB pages and never fail.
 *
 * Extension point: a new ptkit operation gets a model_<op>() here that
 * states its result and its effect on regions and pages (kernel-half
 * mappings, clone, object truncate and punch did; collapse changes nothing
 * observable except through the oracle).
 */
#ifndef PTKIT_TEST_MODEL_H
#define PTKIT_TEST_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ptkit/as.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A shared memory object (ptkit/object.h). */
struct model_object {
	uint64_t size, max_size;     /* bytes */
	uint32_t *tag;               /* per page offset below max_size */
	uint32_t *gen;               /* bumped when the cache drops the frame */
};

struct model_region {
	uint64_t start, end;
	unsigned prot, flags;        /* flags: HUGE, or SHARED/PRIVATE (objects) */
	enum ptk_region_kind kind;
	uint64_t pfn;
	struct model_object *obj;    /* PTK_REGION_OBJECT */
	uint64_t pgoff;              /* page offset in obj of start */
};

struct model_page {
	uint64_t pn;      /* va >> PTK_PAGE_SHIFT */
	uint32_t tag;     /* anonymous pages and private copies */
	bool cow;         /* shared copy-on-write since a clone */
	bool obj;         /* maps the object's frame (contents: the object's) */
	bool wp;          /* write-protected by a protection change */
};

struct model_oracle {
	bool (*huge)(void *arg, uint64_t va);
	bool (*present)(void *arg, uint64_t va);
	void *arg;
	/* Only when allocations may fail: whether the page at @va is now
	 * writable (a write fault on a cow page copies it, which can fail). */
	bool (*writable)(void *arg, uint64_t va);
};

struct model {
	uint64_t user_end;
	struct model_region *r;
	size_t nr, rcap;
	struct model_page *p;
	size_t np, pcap;
	struct model_oracle oracle;
	bool may_fail;    /* allocations may fail: ask oracle.present */
};

/* What the model says about one page. */
struct model_lookup {
	bool present, writable;
	enum ptk_region_kind kind;   /* 0 if no region */
	unsigned prot;
	uint64_t pfn;                /* special pages */
	uint32_t tag;                /* anonymous and object pages */
	bool cow;                    /* may be write-protected (see above) */
	struct model_object *obj;    /* object regions: the object, */
	uint64_t pgoff;              /* the page offset, */
	bool obj_page;               /* and whether the object's frame is mapped */
};

/* An empty address space of @levels levels (4 or 5). */
void model_init(struct model *m, unsigned levels);
/* Destroy: everything goes (the model stays usable, empty). */
void model_reset(struct model *m);
void model_free(struct model *m);

/* ptk_map_anon (kind ANON, pfn ignored) / ptk_map_special.  *va in and out
 * as for ptkit; placement without FIXED/NOREPLACE is first fit at or above
 * the hint (0: 4 GiB), aligned to 2 MiB with PTK_MAP_HUGE (1 GiB for a
 * special mapping of at least 1 GiB), else first fit from the lowest page. */
int model_map(struct model *m, uint64_t *va, uint64_t len, unsigned prot,
	      unsigned flags, enum ptk_region_kind kind, uint64_t pfn);
/* ptk_map_object of [offset, offset+len) of @obj (PTK_MAP_POPULATE: the
 * pages below the object's size). */
int model_map_object(struct model *m, uint64_t *va, uint64_t len, unsigned prot,
		     unsigned flags, struct model_object *obj, uint64_t offset);
int model_unmap(struct model *m, uint64_t va, uint64_t len);
int model_protect(struct model *m, uint64_t va, uint64_t len, unsigned prot);
int model_drop(struct model *m, uint64_t va, uint64_t len);
int model_fault(struct model *m, uint64_t va, unsigned access);
int model_populate(struct model *m, uint64_t va, uint64_t len, unsigned access);
/* ptk_translate_fault's result (the lookup itself: model_lookup). */
int model_translate_fault(struct model *m, uint64_t va, unsigned access);

void model_lookup(const struct model *m, uint64_t va, struct model_lookup *out);
/* ptk_as_clone: @dst (initialised, empty) becomes a copy of @src; every
 * anonymous page of both becomes cow.  Also the parent's state after a
 * clone that failed (@dst NULL): its pages may be write-protected. */
void model_clone(struct model *src, struct model *dst);
/* Record that the page at @va now holds @tag (a write; through a shared
 * object mapping the object's page changes). */
void model_set_tag(struct model *m, uint64_t va, uint32_t tag);

/* Objects: ptk_object_create (all zero), the truncate and punch protocols
 * over the models of every space (@spaces, @n; NULL entries skipped):
 * truncate takes every page of every mapping beyond the new size, private
 * copies too; punch only the pages that map the object's own frames in
 * [off, off+len) below the size (private copies stay).  Results as ptkit's. */
void model_object_init(struct model_object *o, uint64_t size, uint64_t max_size);
void model_object_free(struct model_object *o);
int model_object_truncate(struct model_object *o, uint64_t size,
			  struct model *const *spaces, size_t n);
int model_object_punch(struct model_object *o, uint64_t off, uint64_t len,
		       struct model *const *spaces, size_t n);
/* ptk_object_write of one tag at the start of each page of [off, off+len)
 * (page multiples), ptk_object_read's result for the same range. */
int model_object_write(struct model_object *o, uint64_t off, uint64_t len,
		       const uint32_t *tags);
int model_object_read_check(const struct model_object *o, uint64_t off, uint64_t len);
/* Object regions of @m that map @o (ptk_object_stats.mappings, summed). */
uint64_t model_object_mappings(const struct model *m, const struct model_object *o);
/* Anonymous pages holding a frame (ptk_as_stats.rss_frames). */
uint64_t model_rss(const struct model *m);
/* Index of the region containing @va or -1. */
long model_region_index(const struct model *m, uint64_t va);
/* Whether any region overlaps [start, end). */
bool model_overlaps(const struct model *m, uint64_t start, uint64_t end);

#ifdef __cplusplus
}
#endif
#endif
