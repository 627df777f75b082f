/*
 * region.c - the region set of an address space: a sorted array of
 * non-overlapping ranges.  Every function here runs with the region lock
 * held (read for lookups, write for changes); the set itself has no lock.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

size_t ptk_region_lower(struct ptk_region_set *rs, uint64_t va)
{
	size_t lo = 0, hi = rs->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (rs->v[mid].end <= va)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

struct ptk_region *ptk_region_find(struct ptk_region_set *rs, uint64_t va)
{
	size_t i = ptk_region_lower(rs, va);
	if (i < rs->n && rs->v[i].start <= va)
		return &rs->v[i];
	return NULL;
}

bool ptk_region_covered(struct ptk_region_set *rs, uint64_t start, uint64_t end)
{
	size_t i = ptk_region_lower(rs, start);
	uint64_t at = start;
	for (; i < rs->n && at < end; i++) {
		struct ptk_region *r = &rs->v[i];
		if (r->start > at || r->kind == PTK_REGION_ZAPPING)
			return false;
		at = r->end;
	}
	return at >= end;
}

bool ptk_region_overlaps(struct ptk_region_set *rs, uint64_t start, uint64_t end,
			 bool zapping_only)
{
	for (size_t i = ptk_region_lower(rs, start); i < rs->n && rs->v[i].start < end; i++)
		if (!zapping_only || rs->v[i].kind == PTK_REGION_ZAPPING)
			return true;
	return false;
}

/* A link node for a split: a reserved one, else a new one (NULL). */
static struct ptk_mapping *spare_get(struct ptk_region_set *rs)
{
	struct ptk_mapping *m = rs->spare;
	if (!m)
		return ptk_mapping_alloc();
	rs->spare = m->next;
	rs->nspare--;
	return m;
}

static void spare_put(struct ptk_region_set *rs, struct ptk_mapping *m)
{
	if (!m)
		return;
	m->next = rs->spare;
	rs->spare = m;
	rs->nspare++;
}

int ptk_region_reserve(struct ptk_region_set *rs, size_t extra)
{
	/* Two links per split (anonymous family and object). */
	while (rs->nspare < 2 * extra) {
		struct ptk_mapping *m = ptk_mapping_alloc();
		if (!m)
			return -ENOMEM;
		spare_put(rs, m);
	}
	if (rs->n + extra <= rs->cap)
		return 0;
	size_t cap = rs->cap ? rs->cap : 8;
	while (cap < rs->n + extra)
		cap *= 2;
	struct ptk_region *v = realloc(rs->v, cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	rs->v = v;
	rs->cap = cap;
	return 0;
}

int ptk_region_split_at(struct ptk_region_set *rs, uint64_t va)
{
	struct ptk_region *r = ptk_region_find(rs, va);
	if (!r || r->start == va)
		return 0;
	size_t i = (size_t)(r - rs->v);
	int rc = ptk_region_reserve(rs, 1);
	if (rc)
		return rc;
	r = &rs->v[i];
	/* Nodes for the links first: the only other step that can fail. */
	struct ptk_mapping *anon_hi = NULL, *obj_hi = NULL;
	if ((r->anon_link && !(anon_hi = spare_get(rs))) ||
	    (r->obj_link && !(obj_hi = spare_get(rs)))) {
		spare_put(rs, anon_hi);
		return -ENOMEM;
	}
	if (anon_hi)
		ptk_rmap_split(r->anon_link, va, anon_hi);
	if (obj_hi)
		ptk_rmap_split(r->obj_link, va, obj_hi);
	memmove(&rs->v[i + 1], &rs->v[i], (rs->n - i) * sizeof(*r));
	rs->n++;
	struct ptk_region *hi = &rs->v[i + 1];
	r->end = va;
	if (hi->kind == PTK_REGION_SPECIAL)
		hi->pfn += (va - hi->start) >> PTK_PAGE_SHIFT;
	if (hi->obj)
		hi->pgoff += (va - hi->start) >> PTK_PAGE_SHIFT;
	hi->anon_link = anon_hi;
	hi->obj_link = obj_hi;
	hi->start = va;
	return 0;
}

static void detach_links(struct ptk_region *r, struct ptk_mapping **detached)
{
	struct ptk_mapping *l[2] = { r->anon_link, r->obj_link };
	for (int k = 0; k < 2; k++) {
		if (!l[k])
			continue;
		if (detached) {
			l[k]->next = *detached;
			*detached = l[k];
		} else {
			ptk_rmap_unlink(l[k]);
		}
	}
	r->anon_link = r->obj_link = NULL;
}

void ptk_region_remove(struct ptk_region_set *rs, uint64_t start, uint64_t end,
		       struct ptk_mapping **detached)
{
	size_t i = ptk_region_lower(rs, start), j = i;
	while (j < rs->n && rs->v[j].start < end) {
		PTK_BUG_ON(rs->v[j].start < start || rs->v[j].end > end,
			   "region straddles the range (boundaries not split)");
		detach_links(&rs->v[j], detached);
		j++;
	}
	memmove(&rs->v[i], &rs->v[j], (rs->n - j) * sizeof(rs->v[0]));
	rs->n -= j - i;
}

int ptk_region_insert(struct ptk_region_set *rs, const struct ptk_region *r)
{
	int rc = ptk_region_reserve(rs, 1);
	if (rc)
		return rc;
	size_t i = ptk_region_lower(rs, r->start);
	PTK_BUG_ON(i < rs->n && rs->v[i].start < r->end, "inserting an overlapping region");
	memmove(&rs->v[i + 1], &rs->v[i], (rs->n - i) * sizeof(*r));
	rs->v[i] = *r;
	rs->n++;
	return 0;
}

int ptk_region_find_gap(struct ptk_region_set *rs, uint64_t hint, uint64_t len,
			uint64_t align, uint64_t limit, uint64_t *out)
{
	uint64_t at = (hint + align - 1) & ~(align - 1);
	if (at < hint)
		return -ENOMEM;
	for (size_t i = ptk_region_lower(rs, at); ; i++) {
		if (at > limit || limit - at < len)
			return -ENOMEM;
		uint64_t gap_end = i < rs->n ? rs->v[i].start : limit;
		if (gap_end > limit)
			gap_end = limit;
		if (at + len <= gap_end) {
			*out = at;
			return 0;
		}
		if (i >= rs->n)
			return -ENOMEM;
		at = (rs->v[i].end + align - 1) & ~(align - 1);
		if (at < rs->v[i].end)
			return -ENOMEM;
	}
}

void ptk_region_set_free(struct ptk_region_set *rs)
{
	for (size_t i = 0; i < rs->n; i++)
		detach_links(&rs->v[i], NULL);
	while (rs->spare) {
		struct ptk_mapping *m = rs->spare;
		rs->spare = m->next;
		free(m);
	}
	rs->nspare = 0;
	free(rs->v);
	rs->v = NULL;
	rs->n = rs->cap = 0;
}
