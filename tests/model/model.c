/*
 * model.c - the reference model (contract in model.h).  Plain sorted
 * arrays, linear where that is simplest: clarity over speed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

#define PAGE        PTK_PAGE_SIZE
#define HUGE_PAGES  (PTK_HUGE_2M / PTK_PAGE_SIZE)
#define MAP_BASE    (UINT64_C(1) << 32)    /* placement when no hint */

static void *grow(void *v, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return v;
	size_t c = *cap ? *cap : 16;
	while (c < need)
		c *= 2;
	v = realloc(v, c * elem);
	if (!v)
		abort();
	*cap = c;
	return v;
}

void model_init(struct model *m, unsigned levels)
{
	memset(m, 0, sizeof(*m));
	m->user_end = ptk_user_end(levels);
}

void model_reset(struct model *m)
{
	m->nr = 0;
	m->np = 0;
}

void model_free(struct model *m)
{
	free(m->r);
	free(m->p);
	m->r = NULL;
	m->p = NULL;
	m->nr = m->np = m->rcap = m->pcap = 0;
}

/* ---- regions ------------------------------------------------------------ */

/* First region ending after @va. */
static size_t r_lower(const struct model *m, uint64_t va)
{
	size_t i = 0;
	while (i < m->nr && m->r[i].end <= va)
		i++;
	return i;
}

long model_region_index(const struct model *m, uint64_t va)
{
	size_t i = r_lower(m, va);
	return i < m->nr && m->r[i].start <= va ? (long)i : -1;
}

bool model_overlaps(const struct model *m, uint64_t start, uint64_t end)
{
	size_t i = r_lower(m, start);
	return i < m->nr && m->r[i].start < end;
}

static bool covered(const struct model *m, uint64_t start, uint64_t end)
{
	uint64_t at = start;
	for (size_t i = r_lower(m, start); i < m->nr && at < end; i++) {
		if (m->r[i].start > at)
			return false;
		at = m->r[i].end;
	}
	return at >= end;
}

static void split_at(struct model *m, uint64_t va)
{
	long i = model_region_index(m, va);
	if (i < 0 || m->r[i].start == va)
		return;
	m->r = grow(m->r, &m->rcap, m->nr + 1, sizeof(*m->r));
	memmove(&m->r[i + 1], &m->r[i], (m->nr - (size_t)i) * sizeof(*m->r));
	m->nr++;
	m->r[i].end = va;
	struct model_region *hi = &m->r[i + 1];
	if (hi->kind == PTK_REGION_SPECIAL)
		hi->pfn += (va - hi->start) / PAGE;
	if (hi->kind == PTK_REGION_OBJECT)
		hi->pgoff += (va - hi->start) / PAGE;
	hi->start = va;
}

static void insert_region(struct model *m, const struct model_region *r)
{
	size_t i = r_lower(m, r->start);
	m->r = grow(m->r, &m->rcap, m->nr + 1, sizeof(*m->r));
	memmove(&m->r[i + 1], &m->r[i], (m->nr - i) * sizeof(*m->r));
	m->r[i] = *r;
	m->nr++;
}

/* ---- pages --------------------------------------------------------------- */

/* First page with pn >= @pn (binary search: the array can be long). */
static size_t p_lower(const struct model *m, uint64_t pn)
{
	size_t lo = 0, hi = m->np;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (m->p[mid].pn < pn)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct model_page *p_find(const struct model *m, uint64_t pn)
{
	size_t i = p_lower(m, pn);
	return i < m->np && m->p[i].pn == pn ? &m->p[i] : NULL;
}

static void p_remove(struct model *m, uint64_t start, uint64_t end)
{
	size_t i = p_lower(m, start / PAGE), j = p_lower(m, end / PAGE);
	if (i == j)
		return;         /* also: no arithmetic on a NULL array */
	memmove(&m->p[i], &m->p[j], (m->np - j) * sizeof(*m->p));
	m->np -= j - i;
}

static void p_insert(struct model *m, uint64_t pn, uint32_t tag)
{
	size_t i = p_lower(m, pn);
	if (i < m->np && m->p[i].pn == pn) {
		m->p[i].tag = tag;
		return;
	}
	m->p = grow(m->p, &m->pcap, m->np + 1, sizeof(*m->p));
	memmove(&m->p[i + 1], &m->p[i], (m->np - i) * sizeof(*m->p));
	m->p[i] = (struct model_page){ .pn = pn, .tag = tag };
	m->np++;
}

static bool private_object(const struct model_region *r)
{
	return r->kind == PTK_REGION_OBJECT && (r->flags & PTK_MAP_PRIVATE);
}

static uint64_t r_pgoff(const struct model_region *r, uint64_t va)
{
	return r->pgoff + (va - r->start) / PAGE;
}

/* Remove regions and pages of [start, end). */
static void cut(struct model *m, uint64_t start, uint64_t end)
{
	split_at(m, start);
	split_at(m, end);
	size_t i = r_lower(m, start), j = i;
	while (j < m->nr && m->r[j].start < end)
		j++;
	if (j > i)
		memmove(&m->r[i], &m->r[j], (m->nr - j) * sizeof(*m->r));
	m->nr -= j - i;
	p_remove(m, start, end);
}

/* ---- argument checks, as the headers state them ------------------------ */

static int check_range(const struct model *m, uint64_t va, uint64_t len)
{
	if (!len || (va % PAGE) || (len % PAGE))
		return -EINVAL;
	if (va + len < va || va + len > m->user_end)
		return -EINVAL;
	return 0;
}

static int find_gap(const struct model *m, uint64_t hint, uint64_t len,
		    uint64_t align, uint64_t *out)
{
	uint64_t limit = m->user_end;
	uint64_t at = (hint + align - 1) & ~(align - 1);
	if (at < hint)
		return -ENOMEM;
	for (size_t i = r_lower(m, at);; i++) {
		if (at > limit || limit - at < len)
			return -ENOMEM;
		uint64_t gap_end = i < m->nr ? m->r[i].start : limit;
		if (at + len <= gap_end) {
			*out = at;
			return 0;
		}
		if (i >= m->nr)
			return -ENOMEM;
		at = (m->r[i].end + align - 1) & ~(align - 1);
		if (at < m->r[i].end)
			return -ENOMEM;
	}
}

/* ---- operations ---------------------------------------------------------- */

static int map_common(struct model *m, uint64_t *va, uint64_t len, unsigned prot,
		      unsigned flags, enum ptk_region_kind kind, uint64_t pfn,
		      struct model_object *obj, uint64_t offset)
{
	unsigned sp = flags & (PTK_MAP_SHARED | PTK_MAP_PRIVATE);
	if (!va || (prot & ~PTK_PROT_MASK) || (flags & ~PTK_MAP_MASK) ||
	    (kind != PTK_REGION_OBJECT && sp))
		return -EINVAL;
	if (kind == PTK_REGION_OBJECT &&
	    (!obj || (sp != PTK_MAP_SHARED && sp != PTK_MAP_PRIVATE) || (flags & PTK_MAP_HUGE) ||
	     (offset % PAGE) || offset + len < offset || offset + len > obj->max_size))
		return -EINVAL;
	bool fixed = flags & (PTK_MAP_FIXED | PTK_MAP_NOREPLACE);
	if (!len || (len % PAGE) || (*va % PAGE))
		return -EINVAL;
	if (fixed) {
		int rc = check_range(m, *va, len);
		if (rc)
			return rc;
	} else if (len > m->user_end) {
		return -ENOMEM;
	}
	uint64_t n = len / PAGE;
	if (kind == PTK_REGION_SPECIAL &&
	    (pfn + n < pfn || pfn + n > (PTK_PTE_PFN_MASK >> PTK_PAGE_SHIFT) + 1))
		return -EINVAL;
	uint64_t at = *va;
	if (fixed) {
		if ((flags & PTK_MAP_NOREPLACE) && model_overlaps(m, at, at + len))
			return -EEXIST;
		cut(m, at, at + len);
	} else {
		uint64_t align = PAGE;
		if (flags & PTK_MAP_HUGE)
			align = (kind == PTK_REGION_SPECIAL && len >= PTK_HUGE_1G) ?
				PTK_HUGE_1G : PTK_HUGE_2M;
		uint64_t hint = at ? at : MAP_BASE;
		int rc = find_gap(m, hint, len, align, &at);
		if (rc && hint != PAGE)
			rc = find_gap(m, PAGE, len, align, &at);
		if (rc)
			return rc;
	}
	struct model_region r = { .start = at, .end = at + len, .prot = prot,
				  .flags = flags & (PTK_MAP_HUGE | PTK_MAP_SHARED | PTK_MAP_PRIVATE),
				  .kind = kind, .pfn = kind == PTK_REGION_SPECIAL ? pfn : 0,
				  .obj = obj, .pgoff = offset / PAGE };
	insert_region(m, &r);
	*va = at;
	uint64_t plen = len;
	if (kind == PTK_REGION_OBJECT)     /* the pages below the object's size */
		plen = obj->size <= offset ? 0 : obj->size - offset < len ? obj->size - offset : len;
	if ((flags & PTK_MAP_POPULATE) && plen && kind != PTK_REGION_SPECIAL) {
		int prc = model_populate(m, at, plen, (prot & PTK_PROT_WRITE) ?
					 PTK_ACCESS_WRITE : PTK_ACCESS_READ);
		/* Out of memory while populating: the new mapping goes again
		 * (what it replaced is gone too). */
		if (prc == -ENOMEM) {
			cut(m, at, at + len);
			return prc;
		}
	}
	return 0;
}

int model_map(struct model *m, uint64_t *va, uint64_t len, unsigned prot,
	      unsigned flags, enum ptk_region_kind kind, uint64_t pfn)
{
	if (kind == PTK_REGION_OBJECT)
		return -EINVAL;
	return map_common(m, va, len, prot, flags, kind, pfn, NULL, 0);
}

int model_map_object(struct model *m, uint64_t *va, uint64_t len, unsigned prot,
		     unsigned flags, struct model_object *obj, uint64_t offset)
{
	return map_common(m, va, len, prot, flags, PTK_REGION_OBJECT, 0, obj, offset);
}

int model_unmap(struct model *m, uint64_t va, uint64_t len)
{
	int rc = check_range(m, va, len);
	if (rc)
		return rc;
	cut(m, va, va + len);
	return 0;
}

int model_protect(struct model *m, uint64_t va, uint64_t len, unsigned prot)
{
	int rc = check_range(m, va, len);
	if (rc)
		return rc;
	if (prot & ~PTK_PROT_MASK)
		return -EINVAL;
	uint64_t end = va + len;
	if (!covered(m, va, end))
		return -ENOMEM;
	split_at(m, va);
	split_at(m, end);
	for (size_t i = r_lower(m, va); i < m->nr && m->r[i].start < end; i++)
		m->r[i].prot = prot;
	/* Taking write away write-protects every page; granting it back
	 * restores write but in private object mappings (the write fault
	 * does there; cow pages stay protected either way: model_lookup). */
	for (size_t k = p_lower(m, va / PAGE); k < m->np && m->p[k].pn < end / PAGE; k++) {
		long ri = model_region_index(m, m->p[k].pn * PAGE);
		if (!(prot & PTK_PROT_WRITE))
			m->p[k].wp = true;
		else if (ri >= 0 && !private_object(&m->r[ri]))
			m->p[k].wp = false;
	}
	return 0;
}

int model_drop(struct model *m, uint64_t va, uint64_t len)
{
	int rc = check_range(m, va, len);
	if (rc)
		return rc;
	uint64_t end = va + len;
	bool cov = covered(m, va, end);
	for (size_t i = r_lower(m, va); i < m->nr && m->r[i].start < end; i++) {
		struct model_region *r = &m->r[i];
		if (r->kind != PTK_REGION_ANON && r->kind != PTK_REGION_OBJECT)
			continue;
		p_remove(m, r->start > va ? r->start : va, r->end < end ? r->end : end);
	}
	return cov ? 0 : -ENOMEM;
}

static int fault_anon(struct model *m, const struct model_region *r, uint64_t va,
		      unsigned access)
{
	uint64_t pn = va / PAGE;
	struct model_page *p = p_find(m, pn);
	if (p) {
		if (access == PTK_ACCESS_WRITE && p->cow) {
			/* The write fault copies (or reuses) the frame; a copy
			 * needs a frame, which may fail. */
			if (m->may_fail && m->oracle.writable &&
			    !m->oracle.writable(m->oracle.arg, va))
				return -ENOMEM;
			p->cow = false;
		}
		return 0;
	}
	if (m->may_fail && m->oracle.present && !m->oracle.present(m->oracle.arg, va))
		return -ENOMEM;
	uint64_t hbase = va & ~(PTK_HUGE_2M - 1);
	if ((r->flags & PTK_MAP_HUGE) && hbase >= r->start && hbase + PTK_HUGE_2M <= r->end &&
	    p_lower(m, hbase / PAGE) == p_lower(m, hbase / PAGE + HUGE_PAGES) &&
	    m->oracle.huge && m->oracle.huge(m->oracle.arg, va)) {
		for (uint64_t i = 0; i < HUGE_PAGES; i++)
			p_insert(m, hbase / PAGE + i, 0);
		return 0;
	}
	p_insert(m, pn, 0);
	return 0;
}

/* Fault on object region @r: -ENXIO at or beyond the size; a shared
 * mapping (or a private one, reading) maps the object's frame; a private
 * write fault copies the object's page (a hole: zero, which stays a hole)
 * into a page of the mapping's own. */
static int fault_object(struct model *m, const struct model_region *r, uint64_t va,
			unsigned access)
{
	uint64_t pn = va / PAGE, pgoff = r_pgoff(r, va);
	struct model_object *o = r->obj;
	bool write = access == PTK_ACCESS_WRITE;
	struct model_page *p = p_find(m, pn);
	struct model_lookup l;
	model_lookup(m, va, &l);
	if (p && (!write || l.writable))
		return 0;               /* spurious */
	if (pgoff >= o->size / PAGE)
		return -ENXIO;
	if (p) {
		/* Present but write-protected (private: shared mappings of
		 * a writable region map writable): copy or reuse. */
		if (m->may_fail && m->oracle.writable &&
		    !m->oracle.writable(m->oracle.arg, va))
			return -ENOMEM;
		if (p->obj)
			p->tag = o->tag[pgoff];
		p->obj = false;
		p->cow = false;
		p->wp = false;
		return 0;
	}
	if (m->may_fail && m->oracle.present && !m->oracle.present(m->oracle.arg, va))
		return -ENOMEM;
	p_insert(m, pn, o->tag[pgoff]);
	p = p_find(m, pn);
	p->obj = !(write && private_object(r));
	return 0;
}

int model_fault(struct model *m, uint64_t va, unsigned access)
{
	static const unsigned need[] = { PTK_PROT_READ, PTK_PROT_WRITE, PTK_PROT_EXEC };
	if (access > PTK_ACCESS_EXEC)
		return -EINVAL;
	if (va >= m->user_end)
		return -EFAULT;
	long i = model_region_index(m, va);
	if (i < 0)
		return -EFAULT;
	struct model_region *r = &m->r[i];
	if (!(r->prot & need[access]))
		return -EACCES;
	if (r->kind == PTK_REGION_ANON)
		return fault_anon(m, r, va, access);
	if (r->kind == PTK_REGION_OBJECT)
		return fault_object(m, r, va, access);
	return 0;
}

int model_populate(struct model *m, uint64_t va, uint64_t len, unsigned access)
{
	if ((va % PAGE) || (len % PAGE) || va + len < va || access > PTK_ACCESS_EXEC)
		return -EINVAL;
	for (uint64_t a = va; a < va + len; a += PAGE) {
		struct model_lookup l;
		model_lookup(m, a, &l);
		if (l.present && (access != PTK_ACCESS_WRITE || l.writable))
			continue;
		int rc = model_fault(m, a, access);
		if (rc)
			return rc;
	}
	return 0;
}

int model_translate_fault(struct model *m, uint64_t va, unsigned access)
{
	if (access > PTK_ACCESS_EXEC)
		return -EINVAL;
	struct model_lookup l;
	model_lookup(m, va, &l);
	if (l.present && (access != PTK_ACCESS_WRITE || l.writable))
		return 0;
	return model_fault(m, va, access);
}

void model_lookup(const struct model *m, uint64_t va, struct model_lookup *out)
{
	memset(out, 0, sizeof(*out));
	long i = model_region_index(m, va);
	if (i < 0)
		return;
	const struct model_region *r = &m->r[i];
	out->kind = r->kind;
	out->prot = r->prot;
	if (r->kind == PTK_REGION_SPECIAL) {
		out->present = true;
		out->pfn = r->pfn + (va - r->start) / PAGE;
		out->writable = (r->prot & PTK_PROT_WRITE) != 0;
		return;
	}
	if (r->kind == PTK_REGION_OBJECT) {
		out->obj = r->obj;
		out->pgoff = r_pgoff(r, va);
	}
	const struct model_page *p = p_find(m, va / PAGE);
	if (!p)
		return;
	out->present = true;
	out->obj_page = p->obj;
	out->tag = p->obj ? r->obj->tag[out->pgoff] : p->tag;
	/* An object page of a private mapping is mapped read-only for good. */
	bool ro = p->wp || (p->obj && private_object(r));
	out->cow = p->cow && !ro && (r->prot & PTK_PROT_WRITE);
	out->writable = (r->prot & PTK_PROT_WRITE) != 0 && !out->cow && !ro;
}

/* Whether page @p of @m belongs to a shared object mapping (clone copies
 * nothing of those, nor write-protects them). */
static bool in_shared_object(const struct model *m, const struct model_page *p)
{
	long ri = model_region_index(m, p->pn * PAGE);
	return ri >= 0 && m->r[ri].kind == PTK_REGION_OBJECT && !private_object(&m->r[ri]);
}

void model_clone(struct model *src, struct model *dst)
{
	for (size_t i = 0; i < src->np; i++)
		if (!in_shared_object(src, &src->p[i]))
			src->p[i].cow = true;
	if (!dst)
		return;
	dst->user_end = src->user_end;
	dst->r = grow(dst->r, &dst->rcap, src->nr, sizeof(*dst->r));
	if (src->nr)
		memcpy(dst->r, src->r, src->nr * sizeof(*dst->r));
	dst->nr = src->nr;
	dst->p = grow(dst->p, &dst->pcap, src->np, sizeof(*dst->p));
	if (src->np)
		memcpy(dst->p, src->p, src->np * sizeof(*dst->p));
	dst->np = src->np;
	/* Shared object pages: copied or left to a later fault (oracle). */
	size_t k = 0;
	for (size_t i = 0; i < dst->np; i++)
		if (!in_shared_object(dst, &dst->p[i]) ||
		    (dst->oracle.present &&
		     dst->oracle.present(dst->oracle.arg, dst->p[i].pn * PAGE)))
			dst->p[k++] = dst->p[i];
	dst->np = k;
}

void model_set_tag(struct model *m, uint64_t va, uint32_t tag)
{
	struct model_page *p = p_find(m, va / PAGE);
	if (!p)
		return;
	long ri = model_region_index(m, va);
	if (p->obj && ri >= 0)
		m->r[ri].obj->tag[r_pgoff(&m->r[ri], va)] = tag;
	else
		p->tag = tag;
}

uint64_t model_rss(const struct model *m)
{
	return m->np;
}

/* ---- objects --------------------------------------------------------------- */

void model_object_init(struct model_object *o, uint64_t size, uint64_t max_size)
{
	if (!max_size)
		max_size = size;
	o->size = size;
	o->max_size = max_size;
	o->tag = calloc(max_size / PAGE + 1, sizeof(*o->tag));
	o->gen = calloc(max_size / PAGE + 1, sizeof(*o->gen));
	if (!o->tag || !o->gen)
		abort();
}

void model_object_free(struct model_object *o)
{
	free(o->tag);
	free(o->gen);
	o->tag = o->gen = NULL;
}

/* Zap offsets [first, last) of @o in every mapping of every space: every
 * page (@even_cows) or only those mapping the object's frames; then the
 * cache lets go of the offsets (contents zero, generation bumped). */
static void invalidate(struct model_object *o, uint64_t first, uint64_t last,
		       bool even_cows, struct model *const *spaces, size_t n)
{
	for (size_t s = 0; s < n; s++) {
		struct model *m = spaces[s];
		if (!m)
			continue;
		size_t k = 0;
		for (size_t i = 0; i < m->np; i++) {
			long ri = model_region_index(m, m->p[i].pn * PAGE);
			const struct model_region *r = ri >= 0 ? &m->r[ri] : NULL;
			bool gone = r && r->kind == PTK_REGION_OBJECT && r->obj == o &&
				    r_pgoff(r, m->p[i].pn * PAGE) >= first &&
				    r_pgoff(r, m->p[i].pn * PAGE) < last &&
				    (even_cows || m->p[i].obj);
			if (!gone)
				m->p[k++] = m->p[i];
		}
		m->np = k;
	}
	for (uint64_t p = first; p < last; p++) {
		o->tag[p] = 0;
		o->gen[p]++;
	}
}

int model_object_truncate(struct model_object *o, uint64_t size,
			  struct model *const *spaces, size_t n)
{
	if ((size % PAGE) || size > o->max_size)
		return -EINVAL;
	uint64_t old = o->size;
	o->size = size;
	if (size < old)
		invalidate(o, size / PAGE, old / PAGE, true, spaces, n);
	return 0;
}

int model_object_punch(struct model_object *o, uint64_t off, uint64_t len,
		       struct model *const *spaces, size_t n)
{
	if (((off | len) % PAGE) || !len || off + len < off || off + len > o->max_size)
		return -EINVAL;
	uint64_t end = off + len < o->size ? off + len : o->size;
	if (off < end)
		invalidate(o, off / PAGE, end / PAGE, false, spaces, n);
	return 0;
}

int model_object_write(struct model_object *o, uint64_t off, uint64_t len,
		       const uint32_t *tags)
{
	int rc = model_object_read_check(o, off, len);
	if (rc)
		return rc;
	for (uint64_t p = 0; p < len / PAGE; p++)
		o->tag[off / PAGE + p] = tags[p];
	return 0;
}

int model_object_read_check(const struct model_object *o, uint64_t off, uint64_t len)
{
	if (off + len < off || off + len > o->max_size || off + len > o->size)
		return -EINVAL;
	return 0;
}

uint64_t model_object_mappings(const struct model *m, const struct model_object *o)
{
	uint64_t n = 0;
	for (size_t i = 0; i < m->nr; i++)
		n += m->r[i].kind == PTK_REGION_OBJECT && m->r[i].obj == o;
	return n;
}
