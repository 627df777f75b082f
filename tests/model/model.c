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
	m->p[i] = (struct model_page){ pn, tag, false };
	m->np++;
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

int model_map(struct model *m, uint64_t *va, uint64_t len, unsigned prot,
	      unsigned flags, enum ptk_region_kind kind, uint64_t pfn)
{
	if (!va || (prot & ~PTK_PROT_MASK) || (flags & ~PTK_MAP_MASK) ||
	    (flags & (PTK_MAP_SHARED | PTK_MAP_PRIVATE)))
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
				  .flags = flags & PTK_MAP_HUGE, .kind = kind,
				  .pfn = kind == PTK_REGION_SPECIAL ? pfn : 0 };
	insert_region(m, &r);
	*va = at;
	if ((flags & PTK_MAP_POPULATE) && kind == PTK_REGION_ANON) {
		int prc = model_populate(m, at, len, (prot & PTK_PROT_WRITE) ?
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
		if (r->kind != PTK_REGION_ANON)
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
	} else {
		const struct model_page *p = p_find(m, va / PAGE);
		if (!p)
			return;
		out->present = true;
		out->tag = p->tag;
		out->cow = p->cow && (r->prot & PTK_PROT_WRITE);
	}
	out->writable = (r->prot & PTK_PROT_WRITE) != 0 && !out->cow;
}

void model_clone(struct model *src, struct model *dst)
{
	for (size_t i = 0; i < src->np; i++)
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
}

void model_set_tag(struct model *m, uint64_t va, uint32_t tag)
{
	struct model_page *p = p_find(m, va / PAGE);
	if (p)
		p->tag = tag;
}

uint64_t model_rss(const struct model *m)
{
	return m->np;
}
