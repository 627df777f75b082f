/*
 * as.c - address spaces: lifetime, the sharded region lock, and the region
 * operations (map, unmap, protect, drop), translation and statistics.
 */
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

#define DEFAULT_MAP_BASE (UINT64_C(1) << 32)   /* hint when none is given */

/* ---- the region lock: a reader/writer lock sharded per CPU ------------- */

unsigned ptk_as_read_lock(struct ptk_as *as)
{
	unsigned tok = ptk_ctx_shard_index(as->ctx);
	int rc = pthread_rwlock_rdlock(&as->shards[tok].lock);
	PTK_BUG_ON(rc != 0, "rdlock failed");
	return tok;
}

void ptk_as_read_unlock(struct ptk_as *as, unsigned tok)
{
	pthread_rwlock_unlock(&as->shards[tok].lock);
}

void ptk_as_write_lock(struct ptk_as *as)
{
	/* Fixed order (index ascending): two writers cannot deadlock. */
	for (unsigned i = 0; i < as->ctx->nshards; i++) {
		int rc = pthread_rwlock_wrlock(&as->shards[i].lock);
		PTK_BUG_ON(rc != 0, "wrlock failed");
	}
}

void ptk_as_write_unlock(struct ptk_as *as)
{
	for (unsigned i = as->ctx->nshards; i-- > 0;)
		pthread_rwlock_unlock(&as->shards[i].lock);
}

/* ---- lifetime ----------------------------------------------------------- */

int ptk_as_alloc(struct ptk_ctx *ctx, unsigned levels, struct ptk_as **out)
{
	if (!ctx || !out)
		return -EINVAL;
	PTK_CHECK_CTX(ctx);
	if (!levels)
		levels = ctx->cfg.levels;
	if (levels != 4 && levels != 5)
		return -EINVAL;
	/* Cache-line aligned: the walkers' read-mostly first line must not
	 * share a line with another heap object that writers touch. */
	struct ptk_as *as = aligned_alloc(PTK_CACHELINE, sizeof(*as));
	if (as)
		memset(as, 0, sizeof(*as));
	struct ptk_as_shard *sh = aligned_alloc(PTK_CACHELINE,
						sizeof(*sh) * ctx->nshards);
	/* Zeroed: the kernel half starts empty (late init fills it). */
	struct ptk_frame *root = ptk_table_alloc(ctx, levels - 1);
	if (!as || !sh || !root) {
		free(as);
		free(sh);
		if (root)
			ptk_table_free_unpublished(ctx, root);
		return -ENOMEM;
	}
	memset(sh, 0, sizeof(*sh) * ctx->nshards);
	/* Writers first (as the kernel's mmap lock): a waiting writer holds
	 * new readers back instead of starving behind a stream of faults. */
	pthread_rwlockattr_t attr;
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	for (unsigned i = 0; i < ctx->nshards; i++)
		pthread_rwlock_init(&sh[i].lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	as->magic = PTK_AS_MAGIC;
	as->ctx = ctx;
	as->levels = levels;
	as->root = root;
	as->root_slots = ptk_table_slots(ctx, root);
	as->shards = sh;
	ptk_lock_init(&as->tlb_lock);
	PTK_AS_ADD(as, tables, 1);
	*out = as;
	return 0;
}

int ptk_as_create(struct ptk_ctx *ctx, unsigned levels, struct ptk_as **out)
{
	if (!out)
		return -EINVAL;
	struct ptk_as *as;
	int rc = ptk_as_alloc(ctx, levels, &as);
	if (rc)
		return rc;
	PTK_SHARD_ADD(ctx, as_created, 1);
	PTK_COUNT_WRITE(ctx, PTK_CW_CPU, 1);
	/* Register and fill the kernel half (after the struct is complete:
	 * registration publishes it to extenders). */
	ptk_kernel_as_created(as);
	*out = as;
	return 0;
}

void ptk_as_free_now(struct ptk_as *as)
{
	struct ptk_ctx *ctx = as->ctx;
	ptk_table_free_now(ctx, as->root);
	for (unsigned i = 0; i < ctx->nshards; i++)
		pthread_rwlock_destroy(&as->shards[i].lock);
	ptk_region_set_free(&as->regions);
	ptk_lock_destroy(&as->tlb_lock);
	free(as->shards);
	free(as);
}

static void as_free_rcu(struct rcu_head *head)
{
	PTK_RCU_CALLBACK_BEGIN(head);
	struct ptk_as *as = ptk_container_of(head, struct ptk_as, rcu);
	ptk_as_free_now(as);
	PTK_RCU_CALLBACK_END();
}

void ptk_as_destroy(struct ptk_as *as)
{
	if (!as)
		return;
	PTK_CHECK_AS(as);
	as->magic = 0;          /* a second destroy is caught in debug builds */
	struct ptk_ctx *ctx = as->ctx;
	ptk_cpu_quiesce_self();
	/* Unregister first: extensions stop looking at it (kernel.h). */
	ptk_kernel_as_destroying(as);
	/* The user half only: the kernel half's tables are shared. */
	struct ptk_gather g;
	uint64_t end = ptk_as_user_end(as);
	/* No CPU may be switched to @as; pages deferred by the lazy TLB mode
	 * are freed now. */
	ptk_tlb_as_destroy(as);
	ptk_notify_start(as, 0, end);
	ptk_gather_init(&g, as, true);
	ptk_zap_range(as, &g, 0, end);
	ptk_gather_finish(&g);
	ptk_notify_end(as, 0, end);
	ptk_region_set_free(&as->regions);
	PTK_SHARD_ADD(ctx, as_destroyed, 1);
	PTK_COUNT_WRITE(ctx, PTK_CW_CPU, 1);
	/* Walkers still inside a section (and extenders that found it in the
	 * registry) may hold the root or the struct. */
	PTK_COUNT_WRITE(ctx, ctx->rcu_percpu ? PTK_CW_CPU : PTK_CW_RCU, 1);
	ptk_rcu_call(&as->rcu, as_free_rcu);
}

struct ptk_ctx *ptk_as_ctx(const struct ptk_as *as) { return as ? as->ctx : NULL; }
unsigned ptk_as_levels(const struct ptk_as *as) { return as ? as->levels : 0; }
uint64_t ptk_as_user_end(const struct ptk_as *as)
{
	return as ? ptk_user_end(as->levels) : 0;
}

/* ---- argument checks ---------------------------------------------------- */

static int check_range(struct ptk_as *as, uint64_t va, uint64_t len)
{
	if (!as || !len || (va & (PTK_PAGE_SIZE - 1)) || (len & (PTK_PAGE_SIZE - 1)))
		return -EINVAL;
	PTK_CHECK_AS(as);
	if (va + len < va || va + len > ptk_as_user_end(as))
		return -EINVAL;
	return 0;
}

/* Wait (region lock dropped) for an unmap's teardown over the range. */
static void wait_for_zap(struct ptk_as *as)
{
	ptk_as_write_unlock(as);
	struct timespec ts = { 0, 50000 };
	nanosleep(&ts, NULL);
	ptk_as_write_lock(as);
}

/* Split the region at @va after ptk_region_reserve(): cannot fail. */
static void split_reserved(struct ptk_as *as, uint64_t va)
{
	int rc = ptk_region_split_at(&as->regions, va);
	PTK_BUG_ON(rc != 0, "region split failed after reserve");
}

/* Tear down [start, end) under the write lock (used where the region set
 * change must be atomic with it: a failed map, a fixed map's replacement). */
static void zap_locked(struct ptk_as *as, uint64_t start, uint64_t end)
{
	struct ptk_gather g;
	ptk_notify_start(as, start, end);
	ptk_gather_init(&g, as, false);
	ptk_zap_range(as, &g, start, end);
	ptk_gather_finish(&g);
	ptk_notify_end(as, start, end);
}

/* ---- map ---------------------------------------------------------------- */

/* A new anonymous region starts its own family (the anon_vma analog; its
 * clones join it): link @r into a new one.  Region lock held for writing.
 * -ENOMEM. */
static int link_anon(struct ptk_as *as, struct ptk_region *r)
{
	struct ptk_rmap *fam = ptk_rmap_anon_create(as->ctx);
	if (!fam)
		return -ENOMEM;
	int rc = ptk_rmap_link(fam, as, r->start, r->start >> PTK_PAGE_SHIFT,
			       (r->end - r->start) >> PTK_PAGE_SHIFT, &r->anon_link);
	ptk_rmap_put(fam);     /* the link holds it now (or it dies) */
	return rc;
}

/* Object mappings: link @r into the object's reverse map (first index =
 * its page offset) and, for a private mapping, into a new anonymous family
 * for the pages it will copy.  Region lock held for writing.  -ENOMEM
 * (nothing linked). */
static int link_object(struct ptk_as *as, struct ptk_region *r)
{
	int rc = ptk_rmap_link(&r->obj->rmap, as, r->start, r->pgoff,
			       (r->end - r->start) >> PTK_PAGE_SHIFT, &r->obj_link);
	if (!rc && (r->flags & PTK_MAP_PRIVATE) && (rc = link_anon(as, r))) {
		ptk_rmap_unlink(r->obj_link);
		r->obj_link = NULL;
	}
	return rc;
}

static int map_common(struct ptk_as *as, uint64_t *va, uint64_t len, unsigned prot,
		      unsigned flags, enum ptk_region_kind kind, uint64_t pfn,
		      struct ptk_object *obj, uint64_t offset)
{
	if (!as || !va || (prot & ~PTK_PROT_MASK) || (flags & ~PTK_MAP_MASK))
		return -EINVAL;
	unsigned sp = flags & (PTK_MAP_SHARED | PTK_MAP_PRIVATE);
	if (kind != PTK_REGION_OBJECT && sp)
		return -EINVAL;
	PTK_CHECK_AS(as);
	if (kind == PTK_REGION_OBJECT) {
		/* Exactly one of SHARED/PRIVATE; no huge leaves in object
		 * mappings (the cache holds 4 KiB frames); the range inside
		 * the object's maximum size. */
		if (!obj || obj->ctx != as->ctx || (sp != PTK_MAP_SHARED && sp != PTK_MAP_PRIVATE) ||
		    (flags & PTK_MAP_HUGE) || (offset & (PTK_PAGE_SIZE - 1)) ||
		    offset + len < offset || offset + len > obj->max_size)
			return -EINVAL;
		PTK_CONTRACT(obj->magic == PTK_OBJECT_MAGIC, "not a live object (released?)");
	}
	ptk_cpu_quiesce_self();
	bool fixed = flags & (PTK_MAP_FIXED | PTK_MAP_NOREPLACE);
	if (!len || (len & (PTK_PAGE_SIZE - 1)) || (*va & (PTK_PAGE_SIZE - 1)))
		return -EINVAL;
	if (fixed) {
		int rc = check_range(as, *va, len);
		if (rc)
			return rc;
	} else if (len > ptk_as_user_end(as)) {
		return -ENOMEM;
	}
	if (kind == PTK_REGION_SPECIAL && (pfn + (len >> PTK_PAGE_SHIFT) < pfn ||
	    pfn + (len >> PTK_PAGE_SHIFT) > (PTK_PTE_PFN_MASK >> PTK_PAGE_SHIFT) + 1))
		return -EINVAL;

	ptk_as_write_lock(as);
	uint64_t at = *va;
	int rc;
	if (fixed) {
		while (ptk_region_overlaps(&as->regions, at, at + len, true))
			wait_for_zap(as);
		if ((flags & PTK_MAP_NOREPLACE) &&
		    ptk_region_overlaps(&as->regions, at, at + len, false)) {
			rc = -EEXIST;
			goto out;
		}
	} else {
		uint64_t align = PTK_PAGE_SIZE;
		if (flags & PTK_MAP_HUGE)
			align = (kind == PTK_REGION_SPECIAL && len >= PTK_HUGE_1G) ?
				PTK_HUGE_1G : PTK_HUGE_2M;
		uint64_t hint = at ? at : DEFAULT_MAP_BASE;
		rc = ptk_region_find_gap(&as->regions, hint, len, align,
					 ptk_as_user_end(as), &at);
		if (rc && hint != PTK_PAGE_SIZE)
			rc = ptk_region_find_gap(&as->regions, PTK_PAGE_SIZE, len, align,
						 ptk_as_user_end(as), &at);
		if (rc)
			goto out;
	}
	/* Everything that can fail comes before anything is changed (region
	 * splits change no behaviour). */
	struct ptk_region r = { .start = at, .end = at + len, .prot = prot,
				.flags = flags & (PTK_MAP_HUGE | PTK_MAP_SHARED | PTK_MAP_PRIVATE),
				.kind = kind, .pfn = pfn };
	if (kind == PTK_REGION_OBJECT) {
		r.obj = obj;
		r.pgoff = offset >> PTK_PAGE_SHIFT;
	}
	rc = ptk_region_reserve(&as->regions, 3);
	if (!rc && kind == PTK_REGION_ANON)
		rc = link_anon(as, &r);
	if (!rc && kind == PTK_REGION_OBJECT)
		rc = link_object(as, &r);
	if (rc)
		goto out;
	if (fixed && ptk_region_overlaps(&as->regions, at, at + len, false)) {
		rc = ptk_split_boundary(as, at);
		if (!rc)
			rc = ptk_split_boundary(as, at + len);
		if (rc) {
			ptk_rmap_unlink(r.anon_link);
			ptk_rmap_unlink(r.obj_link);
			goto out;
		}
		/* Replace what was there (MAP_FIXED semantics). */
		split_reserved(as, at);
		split_reserved(as, at + len);
		struct ptk_mapping *old = NULL;
		ptk_region_remove(&as->regions, at, at + len, &old);
		zap_locked(as, at, at + len);
		ptk_rmap_unlink_chain(old);
	}
	if (kind == PTK_REGION_SPECIAL) {
		rc = ptk_install_special(as, at, at + len, pfn, ptk_prot_leaf_flags(prot),
					 flags & PTK_MAP_HUGE);
		if (rc) {
			zap_locked(as, at, at + len);
			goto out;
		}
	}
	rc = ptk_region_insert(&as->regions, &r);
	PTK_BUG_ON(rc != 0, "insert failed after reserve");
	*va = at;
out:
	ptk_as_write_unlock(as);
	uint64_t plen = len;
	if (!rc && (flags & PTK_MAP_POPULATE) && kind == PTK_REGION_OBJECT) {
		/* The pages below the object's size (a fault beyond it is
		 * -ENXIO, not an error of the map). */
		uint64_t size = ptk_object_size(obj);
		plen = size <= offset ? 0 : size - offset < len ? size - offset : len;
	}
	if (!rc && (flags & PTK_MAP_POPULATE) && plen &&
	    (kind == PTK_REGION_ANON || kind == PTK_REGION_OBJECT)) {
		int prc = ptk_populate(as, at, plen, (prot & PTK_PROT_WRITE) ?
				       PTK_ACCESS_WRITE : PTK_ACCESS_READ);
		/* Out of memory while populating: undo the map, so a failed
		 * call leaves the space as it was (the as.h contract). */
		if (prc == -ENOMEM) {
			rc = prc;
			ptk_unmap(as, at, len);
		}
	}
	return rc;
}

int ptk_map_anon(struct ptk_as *as, uint64_t *va, uint64_t len, unsigned prot,
		 unsigned flags)
{
	return map_common(as, va, len, prot, flags, PTK_REGION_ANON, 0, NULL, 0);
}

int ptk_map_special(struct ptk_as *as, uint64_t *va, uint64_t len, uint64_t pfn,
		    unsigned prot, unsigned flags)
{
	return map_common(as, va, len, prot, flags, PTK_REGION_SPECIAL, pfn, NULL, 0);
}

int ptk_map_object(struct ptk_as *as, uint64_t *va, uint64_t len, unsigned prot,
		   unsigned flags, struct ptk_object *obj, uint64_t offset)
{
	return map_common(as, va, len, prot, flags, PTK_REGION_OBJECT, 0, obj, offset);
}

/* ---- unmap -------------------------------------------------------------- */

int ptk_unmap(struct ptk_as *as, uint64_t va, uint64_t len)
{
	int rc = check_range(as, va, len);
	if (rc)
		return rc;
	uint64_t end = va + len;
	ptk_cpu_quiesce_self();
	ptk_as_write_lock(as);
	while (ptk_region_overlaps(&as->regions, va, end, true))
		wait_for_zap(as);
	if (!ptk_region_overlaps(&as->regions, va, end, false)) {
		ptk_as_write_unlock(as);
		return 0;
	}
	/* Fallible steps first: room for the splits and the placeholder, and
	 * huge leaves split at the boundaries. */
	rc = ptk_region_reserve(&as->regions, 3);
	if (!rc)
		rc = ptk_split_boundary(as, va);
	if (!rc)
		rc = ptk_split_boundary(as, end);
	if (rc) {
		ptk_as_write_unlock(as);
		return rc;
	}
	split_reserved(as, va);
	split_reserved(as, end);
	/* The reverse-map links go after the zap: until then truncate and
	 * ptk_rmap_unmap_frame() still find the pages. */
	struct ptk_mapping *links = NULL;
	ptk_region_remove(&as->regions, va, end, &links);
	if (as->ctx->cfg.gather_mode == PTK_GATHER_LEGACY) {
		/* The old design: the region lock (write) over the whole
		 * teardown, through the per-CPU gather. */
		zap_locked(as, va, end);
		ptk_rmap_unlink_chain(links);
		ptk_as_write_unlock(as);
		return 0;
	}
	struct ptk_region hole = { .start = va, .end = end, .kind = PTK_REGION_ZAPPING };
	rc = ptk_region_insert(&as->regions, &hole);
	PTK_BUG_ON(rc != 0, "insert failed after reserve");
	ptk_as_write_unlock(as);

	/* The teardown: table locks only, batch by batch, preemptible. */
	struct ptk_gather g;
	ptk_notify_start(as, va, end);
	ptk_gather_init(&g, as, false);
	ptk_zap_range(as, &g, va, end);
	ptk_gather_finish(&g);
	ptk_notify_end(as, va, end);
	ptk_rmap_unlink_chain(links);

	ptk_as_write_lock(as);
	ptk_region_remove(&as->regions, va, end, NULL);
	ptk_as_write_unlock(as);
	return 0;
}

/* ---- protect ------------------------------------------------------------ */

int ptk_protect(struct ptk_as *as, uint64_t va, uint64_t len, unsigned prot)
{
	int rc = check_range(as, va, len);
	if (rc)
		return rc;
	if (prot & ~PTK_PROT_MASK)
		return -EINVAL;
	uint64_t end = va + len;
	ptk_cpu_quiesce_self();
	ptk_as_write_lock(as);
	if (!ptk_region_covered(&as->regions, va, end)) {
		rc = -ENOMEM;
		goto out;
	}
	rc = ptk_region_reserve(&as->regions, 2);
	if (!rc)
		rc = ptk_split_boundary(as, va);
	if (!rc)
		rc = ptk_split_boundary(as, end);
	if (rc)
		goto out;
	split_reserved(as, va);
	split_reserved(as, end);
	for (size_t i = ptk_region_lower(&as->regions, va);
	     i < as->regions.n && as->regions.v[i].start < end; i++)
		as->regions.v[i].prot = prot;
	struct ptk_gather g;
	ptk_notify_start(as, va, end);
	ptk_gather_init(&g, as, false);
	if (!(prot & PTK_PROT_WRITE)) {
		ptk_change_prot_range(as, &g, va, end, false);
	} else {
		/* Granting write: not to a private object mapping's entries
		 * (they map the object's pages read-only, or copies whose
		 * write fault re-grants it: fault_wp()). */
		for (size_t i = ptk_region_lower(&as->regions, va);
		     i < as->regions.n && as->regions.v[i].start < end; i++) {
			struct ptk_region *r = &as->regions.v[i];
			if (r->kind == PTK_REGION_OBJECT && (r->flags & PTK_MAP_PRIVATE))
				continue;
			ptk_change_prot_range(as, &g, r->start > va ? r->start : va,
					      r->end < end ? r->end : end, true);
		}
	}
	ptk_gather_finish(&g);
	ptk_notify_end(as, va, end);
out:
	ptk_as_write_unlock(as);
	return rc;
}

/* ---- drop (MADV_DONTNEED) ---------------------------------------------- */

int ptk_drop(struct ptk_as *as, uint64_t va, uint64_t len)
{
	int rc = check_range(as, va, len);
	if (rc)
		return rc;
	uint64_t end = va + len;
	ptk_cpu_quiesce_self();
	unsigned tok = ptk_as_read_lock(as);
	bool covered = ptk_region_covered(&as->regions, va, end);
	rc = ptk_split_boundary(as, va);
	if (!rc)
		rc = ptk_split_boundary(as, end);
	if (rc) {
		ptk_as_read_unlock(as, tok);
		return rc;
	}
	struct ptk_gather g;
	ptk_notify_start(as, va, end);
	ptk_gather_init(&g, as, false);
	for (size_t i = ptk_region_lower(&as->regions, va);
	     i < as->regions.n && as->regions.v[i].start < end; i++) {
		struct ptk_region *r = &as->regions.v[i];
		/* Object mappings: the mapping's entries (and a private
		 * mapping's copies) go; the page cache keeps its frames. */
		if (r->kind != PTK_REGION_ANON && r->kind != PTK_REGION_OBJECT)
			continue;
		uint64_t s = r->start > va ? r->start : va;
		uint64_t e = r->end < end ? r->end : end;
		ptk_zap_range(as, &g, s, e);
	}
	ptk_gather_finish(&g);
	ptk_notify_end(as, va, end);
	ptk_as_read_unlock(as, tok);
	return covered ? 0 : -ENOMEM;
}

/* ---- translation -------------------------------------------------------- */

int ptk_translate_fault(struct ptk_as *as, uint64_t va, unsigned access,
			struct ptk_xlate *out)
{
	if (access > PTK_ACCESS_EXEC)
		return -EINVAL;
	for (int tries = 0; tries < 16; tries++) {
		int rc = ptk_translate(as, va, out);
		if (rc == -EINVAL)
			return rc;
		if (!rc && (access != PTK_ACCESS_WRITE || ptk_pte_write(out->pte)))
			return 0;
		rc = ptk_fault(as, va, access);
		if (rc)
			return rc;
	}
	return -EAGAIN;   /* the entry keeps vanishing: unmapped concurrently */
}

/* ---- inspection ----------------------------------------------------------- */

void ptk_as_stats(struct ptk_as *as, struct ptk_as_stats *st)
{
	if (!st)
		return;
	memset(st, 0, sizeof(*st));
	if (!as)
		return;
	PTK_CHECK_AS(as);
	int64_t rss = 0, tables = 0, faults = 0, filled = 0;
	int64_t fl = 0, gb = 0, gbf = 0, sd = 0, kk = 0;
	for (unsigned i = 0; i < as->ctx->nshards; i++) {
		struct ptk_as_shard *sh = &as->shards[i];
		rss += atomic_load_explicit(&sh->rss, memory_order_relaxed);
		tables += atomic_load_explicit(&sh->tables, memory_order_relaxed);
		faults += atomic_load_explicit(&sh->faults, memory_order_relaxed);
		filled += atomic_load_explicit(&sh->filled, memory_order_relaxed);
		fl += atomic_load_explicit(&sh->tlb_flushes, memory_order_relaxed);
		gb += atomic_load_explicit(&sh->gather_batches, memory_order_relaxed);
		gbf += atomic_load_explicit(&sh->gather_batch_failures, memory_order_relaxed);
		sd += atomic_load_explicit(&sh->shootdowns, memory_order_relaxed);
		kk += atomic_load_explicit(&sh->remote_answers, memory_order_relaxed);
	}
	st->tlb_flushes = (uint64_t)fl;
	st->gather_batches = (uint64_t)gb;
	st->gather_batch_failures = (uint64_t)gbf;
	st->shootdowns = (uint64_t)sd;
	st->remote_answers = (uint64_t)kk;
	st->rss_frames = (uint64_t)rss;
	st->table_pages = (uint64_t)tables;
	st->table_bytes = (uint64_t)tables * PTK_PAGE_SIZE;
	st->faults = (uint64_t)faults;
	st->faults_filled = (uint64_t)filled;
	unsigned tok = ptk_as_read_lock(as);
	for (size_t i = 0; i < as->regions.n; i++) {
		if (as->regions.v[i].kind == PTK_REGION_ZAPPING)
			continue;
		st->regions++;
		st->mapped_bytes += as->regions.v[i].end - as->regions.v[i].start;
	}
	ptk_as_read_unlock(as, tok);
}

static void region_info(const struct ptk_region *r, struct ptk_region_info *out)
{
	out->start = r->start;
	out->end = r->end;
	out->prot = r->prot;
	out->flags = r->flags;
	out->kind = r->kind;
}

int ptk_region_query(struct ptk_as *as, uint64_t va, struct ptk_region_info *out)
{
	if (!as || !out)
		return -EINVAL;
	PTK_CHECK_AS(as);
	unsigned tok = ptk_as_read_lock(as);
	struct ptk_region *r = ptk_region_find(&as->regions, va);
	int rc = -ENOENT;
	if (r && r->kind != PTK_REGION_ZAPPING) {
		region_info(r, out);
		rc = 0;
	}
	ptk_as_read_unlock(as, tok);
	return rc;
}

int ptk_region_foreach(struct ptk_as *as,
		       int (*fn)(const struct ptk_region_info *, void *), void *arg)
{
	if (!as || !fn)
		return -EINVAL;
	PTK_CHECK_AS(as);
	unsigned tok = ptk_as_read_lock(as);
	int rc = 0;
	for (size_t i = 0; i < as->regions.n && !rc; i++) {
		if (as->regions.v[i].kind == PTK_REGION_ZAPPING)
			continue;
		struct ptk_region_info info;
		region_info(&as->regions.v[i], &info);
		rc = fn(&info, arg);
	}
	ptk_as_read_unlock(as, tok);
	return rc;
}
