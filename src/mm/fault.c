/*
 * fault.c - installing leaves: demand faults on anonymous memory,
 * copy-on-write faults (fault_wp) and eager installation of special
 * mappings.
 *
 * Both descend with allocation (descend_locked): a missing table is
 * allocated outside any lock, then published under the parent's lock if the
 * slot is still empty (else freed unseen).  Leaves are installed with the
 * lock of the table that holds them, after the lock-and-recheck of table.c.
 * Frames are allocated before any lock is taken, so no lock is held across
 * an allocation that zeroes memory.
 */
#include <string.h>

#include "internal.h"

/* Descend to the table at @target covering @va, allocating tables on the
 * way.  Returns 0 with path->table[*got] locked and attached, where *got is
 * @target, or a higher level holding a leaf that covers @va.  -ENOMEM if a
 * table could not be allocated (nothing left locked).  Inside a section. */
static int descend_locked(struct ptk_as *as, uint64_t va, unsigned target,
			  struct ptk_path *path, unsigned *got)
{
	struct ptk_ctx *ctx = as->ctx;
restart:;
	unsigned level = as->levels - 1;
	path->table[level] = as->root;
	while (level > target) {
		struct ptk_frame *t = path->table[level];
		ptk_slot_t *slot = &ptk_table_slots(ctx, t)[ptk_level_index(va, level)];
		ptk_pte_t e = ptk_pte_load(slot);
		if (ptk_pte_is_leaf(e)) {
			if (!ptk_table_lock_attached(as, path, level))
				goto restart;
			if (ptk_pte_load(slot) != e) {
				ptk_table_unlock(t);
				goto restart;
			}
			*got = level;
			return 0;
		}
		if (!ptk_pte_present(e)) {
			struct ptk_frame *child = ptk_table_alloc(ctx, level - 1);
			if (!child)
				return -ENOMEM;
			if (!ptk_table_lock_attached(as, path, level)) {
				ptk_table_free_unpublished(ctx, child);
				goto restart;
			}
			e = ptk_pte_load(slot);
			if (ptk_pte_none(e)) {
				e = ptk_pte_mk_table(ptk_frame_pfn_fast(ctx, child));
				/* Release: the child's zeroed slots before the pointer;
				 * pairs with the walkers' acquire load. */
				ptk_pte_store(slot, e);
				atomic_fetch_add_explicit(&t->nr_used, 1, memory_order_relaxed);
				PTK_AS_ADD(as, tables, 1);
				child = NULL;
			}
			ptk_table_unlock(t);
			if (child)
				ptk_table_free_unpublished(ctx, child);
			if (!ptk_pte_is_table(e))
				goto restart;
		}
		path->table[level - 1] = ptk_pfn_to_frame(ctx, ptk_pte_pfn(e));
		path->parent_slot[level - 1] = slot;
		path->parent_seen[level - 1] = e;
		level--;
	}
	if (!ptk_table_lock_attached(as, path, target))
		goto restart;
	*got = target;
	return 0;
}

/* A present leaf exists for a permitted access: grant write (the region
 * allows it) and set accessed/dirty.  Table lock held. */
static void touch_leaf(ptk_slot_t *slot, ptk_pte_t e, unsigned access, unsigned prot)
{
	ptk_pte_t ne = e | PTK_PTE_ACCESSED;
	if (access == PTK_ACCESS_WRITE) {
		ne |= PTK_PTE_DIRTY;
		if (prot & PTK_PROT_WRITE)
			ne |= PTK_PTE_WRITE;
	}
	if (ne != e)
		ptk_pte_store(slot, ne);
}

/* Whether the 2 MiB slot of @va already points to a table (a lockless
 * hint): a huge leaf cannot go there, so allocating and zeroing a 2 MiB
 * frame for it would be wasted.  Not inside a read-side section. */
static bool pmd_holds_table(struct ptk_as *as, uint64_t va)
{
	bool table = false;
	ptk_rcu_read_lock();
	const ptk_slot_t *t = as->root_slots;
	for (unsigned level = as->levels - 1;; level--) {
		ptk_pte_t e = ptk_pte_load(&t[ptk_level_index(va, level)]);
		if (!ptk_pte_is_table(e))
			break;
		if (level == PTK_LEVEL_PMD) {
			table = true;
			break;
		}
		t = ptk_pfn_host_fast(as->ctx, ptk_pte_pfn(e));
	}
	ptk_rcu_read_unlock();
	return table;
}

/* Copy the 4 KiB at @src into the fresh frame @dst.  The source may be
 * written meanwhile through a shared mapping of it (the user's race, as
 * with the kernel's copy on write): relaxed atomic loads keep that defined
 * for the C memory model and race detectors; the copy is published by the
 * release store of the new entry. */
static void copy_page(void *dst, const void *src)
{
	uint64_t *d = dst;
	const _Atomic uint64_t *s = (const _Atomic uint64_t *)src;
	for (unsigned i = 0; i < PTK_PAGE_SIZE / sizeof(uint64_t); i++)
		d[i] = atomic_load_explicit(&s[i], memory_order_relaxed);
}

/* fault_wp() asks its caller to run the ordinary fault path: the leaf it
 * was called for is gone (unmapped meanwhile). */
#define FAULT_RETRY 1

/*
 * Copy-on-write: a write fault at @va where a present leaf lacks write
 * permission and region @r is writable and private (ANON, or OBJECT with
 * PTK_MAP_PRIVATE).  Region lock held (read); not inside a section.
 *   - the frame is anonymous (its owner is an anonymous rmap) and its
 *     reference count is 1: nobody else maps or pins it; grant write;
 *   - otherwise allocate a data frame, owner = the region's anonymous
 *     family (r->anon_link->rmap, index va >> 12), copy the 4 KiB (from
 *     a reference taken under the table lock, outside the lock), then
 *     under the table lock re-check the leaf is unchanged and replace it;
 *     the old translation is invalidated through a gather (TLB flush,
 *     notifiers) before the mapping's reference on the old frame drops.
 * Huge leaves (2 MiB): an exclusive huge anonymous frame (head refcount 1)
 * gets write on the huge leaf; a shared one is split first (its 512 small
 * leaves each hold a reference on the head) and the faulting 4 KiB copied,
 * so a write costs one page, not 2 MiB; the rest of the huge frame stays
 * shared until written or unmapped (a small leaf of a huge frame is never
 * "exclusive": its head counts all 512 leaves, so it is always copied).
 * 0, -ENOMEM (nothing changed), or FAULT_RETRY (no leaf at @va any more).
 */
static int fault_wp(struct ptk_as *as, const struct ptk_region *r, uint64_t va)
{
	struct ptk_ctx *ctx = as->ctx;
	struct ptk_frame *page = NULL, *old = NULL;
	uint64_t pva = va & ~(PTK_PAGE_SIZE - 1);
	struct ptk_gather g;
	int rc;
	ptk_rcu_read_lock();
restart:;
	struct ptk_path path;
	unsigned level;
	ptk_pte_t e;
	ptk_slot_t *slot = ptk_descend(as, va, &path, &level, &e);
	if (!ptk_pte_present(e)) {
		rc = FAULT_RETRY;
		goto out;
	}
	struct ptk_frame *t = path.table[level];
	if (!ptk_table_lock_attached(as, &path, level))
		goto restart;
	if (ptk_pte_load(slot) != e) {
		ptk_table_unlock(t);
		goto restart;
	}
	const ptk_pte_t wr = PTK_PTE_WRITE | PTK_PTE_DIRTY | PTK_PTE_ACCESSED;
	if (ptk_pte_write(e) || ptk_pte_special(e)) {
		/* Someone else broke the sharing already (or a special leaf in
		 * a private region: its protection is its own). */
		if (ptk_pte_write(e) && (e | wr) != e)
			ptk_pte_store(slot, e | wr);
		ptk_table_unlock(t);
		rc = 0;
		goto out;
	}
	struct ptk_frame *f = ptk_pfn_to_frame(ctx, ptk_pte_pfn(e) +
		((va & (ptk_level_size(level) - 1)) >> PTK_PAGE_SHIFT));
	struct ptk_frame *head = ptk_frame_head(ctx, f);
	if (ptk_leaf_exclusive(ctx, e, level)) {
		/* Reuse: the only reference is this mapping's. */
		ptk_pte_store(slot, (e | wr) & ~PTK_PTE_COW);
		ptk_table_unlock(t);
		rc = 0;
		goto out;
	}
	if (level > 0) {
		/* A shared huge leaf: split it (at a 4 KiB boundary inside it)
		 * and retry on the small leaf. */
		ptk_table_unlock(t);
		ptk_rcu_read_unlock();
		uint64_t cut = pva == ptk_level_base(va, level) ? pva + PTK_PAGE_SIZE : pva;
		rc = ptk_split_boundary(as, cut);
		ptk_rcu_read_lock();
		if (rc)
			goto out;
		goto restart;
	}
	if (!page) {
		/* Allocate and copy outside the lock, from a reference of our
		 * own: the mapping's may go (ptk_rmap_unmap_frame) meanwhile. */
		ptk_frame_get(head);
		old = f;
		ptk_table_unlock(t);
		ptk_rcu_read_unlock();
		page = ptk_frame_alloc(ctx, PTK_FRAME_DATA, false);
		if (!page) {
			ptk_frame_put(ctx, old);
			return -ENOMEM;
		}
		copy_page(ptk_frame_host(ctx, page), ptk_frame_host(ctx, f));
		ptk_frame_set_owner(page, r->anon_link ? r->anon_link->rmap : NULL,
				    pva >> PTK_PAGE_SHIFT);
		/* Notifiers before the entry changes, and the gather started,
		 * with no table lock held (the old design's gather_init may
		 * wait for its CPU's array). */
		ptk_notify_start(as, pva, pva + PTK_PAGE_SIZE);
		ptk_gather_init(&g, as, false);
		ptk_rcu_read_lock();
		goto restart;   /* re-check: the leaf must still map @old */
	}
	if (f != old) {
		/* The leaf changed while we copied (unmapped and refaulted,
		 * or replaced): copy again from what it maps now. */
		ptk_table_unlock(t);
		ptk_rcu_read_unlock();
		ptk_gather_finish(&g);
		ptk_notify_end(as, pva, pva + PTK_PAGE_SIZE);
		ptk_frame_put(ctx, old);
		ptk_frame_put(ctx, page);
		page = old = NULL;
		ptk_rcu_read_lock();
		goto restart;
	}
	/* Replace the leaf; the old translation is invalidated (and the
	 * mapping's reference dropped) by the gather after the unlock. */
	ptk_pte_t ne = ptk_pte_mk_leaf(ptk_frame_pfn_fast(ctx, page),
		(e & ~(PTK_PTE_PFN_MASK | PTK_PTE_PRESENT | PTK_PTE_LEAF | PTK_PTE_COW)) | wr);
	ptk_pte_store(slot, ne);
	ptk_gather_note_range(&g, pva, pva + PTK_PAGE_SIZE, 0);
	bool full = ptk_gather_add_page(&g, f);
	PTK_BUG_ON(full, "a fresh gather is full");
	if (g.nr_vas)
		ptk_gather_flush_vas(&g);   /* hash-style consumers, lock held */
	ptk_table_unlock(t);
	ptk_rcu_read_unlock();
	ptk_gather_finish(&g);
	ptk_notify_end(as, pva, pva + PTK_PAGE_SIZE);
	ptk_frame_put(ctx, old);       /* our copy reference */
	return 0;
out:
	ptk_rcu_read_unlock();
	if (page) {
		ptk_gather_finish(&g);  /* empty: started with the copy */
		ptk_notify_end(as, pva, pva + PTK_PAGE_SIZE);
		ptk_frame_put(ctx, page);
	}
	if (old)
		ptk_frame_put(ctx, old);
	return rc;
}

/* Fault on anonymous region @r.  Region lock held (read). */
static int fault_anon(struct ptk_as *as, const struct ptk_region *r, uint64_t va,
		      unsigned access)
{
	struct ptk_ctx *ctx = as->ctx;
	uint64_t flags = ptk_prot_leaf_flags(r->prot) | PTK_PTE_ACCESSED |
			 (access == PTK_ACCESS_WRITE ? PTK_PTE_DIRTY : 0);
	uint64_t hbase = ptk_level_base(va, PTK_LEVEL_PMD);
	struct ptk_frame *huge = NULL, *page = NULL;
	/* Spurious fault (another thread won, or the caller faults a page it
	 * has): a lockless look first, so no frame is allocated (and no
	 * allocation can fail) when the entry already allows the access. */
	struct ptk_xlate x;
	ptk_walker_enter(ctx);
	int seen = ptk_walk(as, va, &x);
	ptk_walker_exit(ctx);
	uint64_t need = PTK_PTE_ACCESSED |
		(access == PTK_ACCESS_WRITE ? PTK_PTE_WRITE | PTK_PTE_DIRTY : 0);
	if (seen == 0 && (x.pte & need) == need)
		return 0;
	/* A write-protected leaf in a writable region: copy on write. */
	if (seen == 0 && access == PTK_ACCESS_WRITE && !ptk_pte_write(x.pte) &&
	    (r->prot & PTK_PROT_WRITE)) {
		int wrc = fault_wp(as, r, va);
		if (wrc != FAULT_RETRY)
			return wrc;
	}
	if ((r->flags & PTK_MAP_HUGE) && hbase >= r->start && hbase + PTK_HUGE_2M <= r->end &&
	    !pmd_holds_table(as, va))
		huge = ptk_frame_alloc_huge(ctx);
	if (!huge && !(page = ptk_frame_alloc(ctx, PTK_FRAME_DATA, true)))
		return -ENOMEM;
	/* The reverse map of the new frame: the region's family. */
	struct ptk_rmap *fam = r->anon_link ? r->anon_link->rmap : NULL;
	if (huge)
		ptk_frame_set_owner(huge, fam, hbase >> PTK_PAGE_SHIFT);
	else
		ptk_frame_set_owner(page, fam, va >> PTK_PAGE_SHIFT);

	struct ptk_path path;
	unsigned got, target = huge ? PTK_LEVEL_PMD : PTK_LEVEL_PTE;
	int rc;
	ptk_rcu_read_lock();
again:
	rc = descend_locked(as, va, target, &path, &got);
	if (rc)
		goto out;
	struct ptk_frame *t = path.table[got];
	ptk_slot_t *slot = &ptk_table_slots(ctx, t)[ptk_level_index(va, got)];
	ptk_pte_t e = ptk_pte_load(slot);
	if (ptk_pte_is_leaf(e) && access == PTK_ACCESS_WRITE && !ptk_pte_write(e) &&
	    (r->prot & PTK_PROT_WRITE)) {
		/* Became write-protected since the lockless look (a clone):
		 * copy on write, without the frame prepared for an empty slot. */
		ptk_table_unlock(t);
		ptk_rcu_read_unlock();
		if (huge)
			ptk_frame_put(ctx, huge);
		if (page)
			ptk_frame_put(ctx, page);
		rc = fault_wp(as, r, va);
		return rc == FAULT_RETRY ? fault_anon(as, r, va, access) : rc;
	} else if (ptk_pte_is_leaf(e)) {
		touch_leaf(slot, e, access, r->prot);
	} else if (ptk_pte_none(e) && huge) {
		ptk_pte_store(slot, ptk_pte_mk_leaf(ptk_frame_pfn_fast(ctx, huge), flags));
		atomic_fetch_add_explicit(&t->nr_used, 1, memory_order_relaxed);
		PTK_AS_ADD(as, rss, PTK_TABLE_SLOTS);
		PTK_AS_ADD(as, filled, 1);
		huge = NULL;
	} else if (ptk_pte_none(e)) {
		ptk_pte_store(slot, ptk_pte_mk_leaf(ptk_frame_pfn_fast(ctx, page), flags));
		atomic_fetch_add_explicit(&t->nr_used, 1, memory_order_relaxed);
		PTK_AS_ADD(as, rss, 1);
		PTK_AS_ADD(as, filled, 1);
		page = NULL;
	} else {
		/* A table where a huge leaf was wanted: small pages already
		 * live in this 2 MiB; fall back to a 4 KiB page. */
		PTK_BUG_ON(!huge, "table pointer at level 0");
		ptk_table_unlock(t);
		ptk_frame_put(ctx, huge);
		huge = NULL;
		if (!(page = ptk_frame_alloc(ctx, PTK_FRAME_DATA, true))) {
			rc = -ENOMEM;
			goto out;
		}
		ptk_frame_set_owner(page, r->anon_link ? r->anon_link->rmap : NULL,
				    va >> PTK_PAGE_SHIFT);
		target = PTK_LEVEL_PTE;
		goto again;
	}
	ptk_table_unlock(t);
out:
	ptk_rcu_read_unlock();
	if (huge)
		ptk_frame_put(ctx, huge);
	if (page)
		ptk_frame_put(ctx, page);
	return rc;
}

/* Install the leaf @flags of frame @f at @va if the slot is empty (the
 * caller's reference on @f goes to the mapping then: returns true).  Region
 * lock held (read).  -ENOMEM via *rc. */
static bool install_leaf(struct ptk_as *as, uint64_t va, struct ptk_frame *f,
			 uint64_t flags, int *rc)
{
	struct ptk_ctx *ctx = as->ctx;
	struct ptk_path path;
	unsigned got;
	bool done = false;
	ptk_rcu_read_lock();
	*rc = descend_locked(as, va, PTK_LEVEL_PTE, &path, &got);
	if (!*rc) {
		PTK_BUG_ON(got != PTK_LEVEL_PTE, "huge leaf in an object mapping");
		struct ptk_frame *t = path.table[got];
		ptk_slot_t *slot = &ptk_table_slots(ctx, t)[ptk_level_index(va, got)];
		if (ptk_pte_none(ptk_pte_load(slot))) {
			ptk_pte_store(slot, ptk_pte_mk_leaf(ptk_frame_pfn_fast(ctx, f), flags));
			atomic_fetch_add_explicit(&t->nr_used, 1, memory_order_relaxed);
			PTK_AS_ADD(as, rss, 1);
			PTK_AS_ADD(as, filled, 1);
			done = true;
		}
		ptk_table_unlock(t);
	}
	ptk_rcu_read_unlock();
	return done;
}

/* Fault on object region @r (the filemap_fault / do_shared_fault /
 * do_cow_fault analog).  Region lock held (read).  Under the object's
 * invalidate lock (read side) from the size check to the install, so a
 * truncate (write side) either runs before (the fault sees the new size)
 * or after (its walk finds and zaps the new entry). */
static int fault_object(struct ptk_as *as, const struct ptk_region *r, uint64_t va,
			unsigned access)
{
	struct ptk_ctx *ctx = as->ctx;
	struct ptk_object *obj = r->obj;
	bool private = r->flags & PTK_MAP_PRIVATE;
	bool write = access == PTK_ACCESS_WRITE;
	uint64_t pgoff = r->pgoff + ((va - r->start) >> PTK_PAGE_SHIFT);
	va &= ~(PTK_PAGE_SIZE - 1);
	/* Spurious fault: a lockless look first. */
	struct ptk_xlate x;
	ptk_walker_enter(ctx);
	int seen = ptk_walk(as, va, &x);
	ptk_walker_exit(ctx);
	uint64_t need = PTK_PTE_ACCESSED | (write ? PTK_PTE_WRITE | PTK_PTE_DIRTY : 0);
	if (seen == 0 && (x.pte & need) == need)
		return 0;
	unsigned tok = ptk_object_inval_read_lock(obj);
	int rc = 0;
	for (int tries = 0; tries < 64; tries++) {
		if (pgoff >= atomic_load_explicit(&obj->size, memory_order_relaxed) >> PTK_PAGE_SHIFT) {
			rc = -ENXIO;    /* beyond the end: SIGBUS */
			break;
		}
		ptk_walker_enter(ctx);
		seen = ptk_walk(as, va, &x);
		ptk_walker_exit(ctx);
		if (seen == 0) {
			if (write && !ptk_pte_write(x.pte) && private) {
				rc = fault_wp(as, r, va);
				if (rc == FAULT_RETRY)
					rc = -EAGAIN;   /* gone meanwhile: look again */
			} else {
				/* Present: set accessed/dirty (write granted
				 * only in a shared mapping) under the lock. */
				struct ptk_path path;
				unsigned got;
				ptk_rcu_read_lock();
				rc = descend_locked(as, va, PTK_LEVEL_PTE, &path, &got);
				if (!rc) {
					struct ptk_frame *t = path.table[got];
					ptk_slot_t *slot = &ptk_table_slots(ctx, t)[ptk_level_index(va, got)];
					ptk_pte_t e = ptk_pte_load(slot);
					/* A private mapping's read-only entry never
					 * gains write here (only by fault_wp()). */
					bool ro = private && !ptk_pte_write(e);
					if (!ptk_pte_is_leaf(e) || (ro && write))
						rc = -EAGAIN;
					else
						touch_leaf(slot, e, ro ? PTK_ACCESS_READ : access,
							   r->prot);
					ptk_table_unlock(t);
				}
				ptk_rcu_read_unlock();
			}
		} else if (write && private) {
			/* Copy now (do_cow_fault): the object's page, or zero
			 * for a hole (which stays a hole). */
			struct ptk_frame *page = ptk_frame_alloc(ctx, PTK_FRAME_DATA, false);
			if (!page) {
				rc = -ENOMEM;
				break;
			}
			struct ptk_frame *src = ptk_object_cache_peek(obj, pgoff);
			void *dst = ptk_frame_host(ctx, page);
			if (src)
				copy_page(dst, ptk_frame_host(ctx, src));
			else
				memset(dst, 0, PTK_PAGE_SIZE);
			ptk_frame_set_owner(page, r->anon_link ? r->anon_link->rmap : NULL,
					    va >> PTK_PAGE_SHIFT);
			uint64_t flags = ptk_prot_leaf_flags(r->prot) | PTK_PTE_ACCESSED |
					 PTK_PTE_DIRTY;
			if (!install_leaf(as, va, page, flags, &rc)) {
				ptk_frame_put(ctx, page);
				if (!rc)
					rc = -EAGAIN;   /* someone else installed: look again */
			}
		} else {
			/* Map the object's page (a hole gets a zeroed frame in
			 * the cache); a private mapping maps it read-only. */
			struct ptk_frame *f = ptk_object_cache_get(obj, pgoff);
			if (!f) {
				rc = -ENOMEM;
				break;
			}
			/* The mapping's reference: the cache's holds @f while we
			 * hold the invalidate lock. */
			ptk_frame_get(f);
			uint64_t flags = PTK_PTE_USER | PTK_PTE_ACCESSED;
			if (!private && (r->prot & PTK_PROT_WRITE))
				flags |= PTK_PTE_WRITE;
			if (!private && write)
				flags |= PTK_PTE_DIRTY;
			if (!install_leaf(as, va, f, flags, &rc)) {
				ptk_frame_put(ctx, f);
				if (!rc)
					rc = -EAGAIN;
			}
		}
		if (rc != -EAGAIN)
			break;
		rc = 0;
	}
	ptk_object_inval_read_unlock(obj, tok);
	return rc;
}

int ptk_descend_alloc(struct ptk_as *as, uint64_t va, unsigned target,
		      struct ptk_path *path, unsigned *got)
{
	return descend_locked(as, va, target, path, got);
}

int ptk_install_special(struct ptk_as *as, uint64_t start, uint64_t end,
			uint64_t pfn, uint64_t leaf_flags, bool huge)
{
	struct ptk_ctx *ctx = as->ctx;
	uint64_t va = start;
	int rc = 0;
	ptk_rcu_read_lock();
	while (va < end) {
		uint64_t p = pfn + ((va - start) >> PTK_PAGE_SHIFT);
		unsigned level = PTK_LEVEL_PTE;
		for (unsigned l = PTK_LEVEL_PUD; huge && l >= PTK_LEVEL_PMD; l--) {
			uint64_t sz = ptk_level_size(l);
			if ((va & (sz - 1)) == 0 && ((p << PTK_PAGE_SHIFT) & (sz - 1)) == 0 &&
			    end - va >= sz) {
				level = l;
				break;
			}
		}
		struct ptk_path path;
		unsigned got;
		rc = descend_locked(as, va, level, &path, &got);
		if (rc)
			break;
		PTK_BUG_ON(got != level, "leaf in the way of a new special mapping");
		struct ptk_frame *t = path.table[level];
		ptk_slot_t *slots = ptk_table_slots(ctx, t);
		uint64_t sz = ptk_level_size(level);
		/* Fill this table's slots while the same leaf size fits. */
		uint64_t span_end = ptk_level_next(va, level + 1, end);
		do {
			p = pfn + ((va - start) >> PTK_PAGE_SHIFT);
			ptk_slot_t *slot = &slots[ptk_level_index(va, level)];
			PTK_BUG_ON(!ptk_pte_none(ptk_pte_load(slot)), "slot in use under a new region");
			ptk_pte_store(slot, ptk_pte_mk_leaf(p, leaf_flags | PTK_PTE_SPECIAL));
			atomic_fetch_add_explicit(&t->nr_used, 1, memory_order_relaxed);
			va += sz;
		} while (va < span_end && end - va >= sz);
		ptk_table_unlock(t);
	}
	ptk_rcu_read_unlock();
	return rc;
}

int ptk_install_anon(struct ptk_as *as, uint64_t start, uint64_t end,
		     uint64_t leaf_flags)
{
	struct ptk_ctx *ctx = as->ctx;
	int rc = 0;
	for (uint64_t va = start; va < end && !rc; va += PTK_PAGE_SIZE) {
		struct ptk_frame *page = ptk_frame_alloc(ctx, PTK_FRAME_DATA, true);
		if (!page)
			return -ENOMEM;
		struct ptk_path path;
		unsigned got;
		ptk_rcu_read_lock();
		rc = descend_locked(as, va, PTK_LEVEL_PTE, &path, &got);
		if (!rc) {
			PTK_BUG_ON(got != PTK_LEVEL_PTE, "leaf in the way of a new mapping");
			struct ptk_frame *t = path.table[got];
			ptk_slot_t *slot = &ptk_table_slots(ctx, t)[ptk_level_index(va, got)];
			PTK_BUG_ON(!ptk_pte_none(ptk_pte_load(slot)), "slot in use under a new region");
			ptk_pte_store(slot, ptk_pte_mk_leaf(ptk_frame_pfn_fast(ctx, page), leaf_flags));
			atomic_fetch_add_explicit(&t->nr_used, 1, memory_order_relaxed);
			PTK_AS_ADD(as, rss, 1);
			page = NULL;
			ptk_table_unlock(t);
		}
		ptk_rcu_read_unlock();
		if (page)
			ptk_frame_put(ctx, page);
	}
	return rc;
}

int ptk_fault(struct ptk_as *as, uint64_t va, unsigned access)
{
	if (!as || access > PTK_ACCESS_EXEC)
		return -EINVAL;
	PTK_CHECK_AS(as);
	if (va >= ptk_as_user_end(as))
		return ptk_kernel_fault(as, va, access);
	ptk_cpu_quiesce_self();
	unsigned tok = ptk_as_read_lock(as);
	PTK_AS_ADD(as, faults, 1);
	struct ptk_region *r = ptk_region_find(&as->regions, va);
	int rc;
	static const unsigned need[] = { PTK_PROT_READ, PTK_PROT_WRITE, PTK_PROT_EXEC };
	if (!r || r->kind == PTK_REGION_ZAPPING)
		rc = -EFAULT;
	else if (!(r->prot & need[access]))
		rc = -EACCES;
	else if (r->kind == PTK_REGION_ANON)
		rc = fault_anon(as, r, va, access);
	else if (r->kind == PTK_REGION_OBJECT)
		rc = fault_object(as, r, va, access);
	else
		rc = 0;     /* special: installed at map time */
	ptk_as_read_unlock(as, tok);
	return rc;
}

int ptk_populate(struct ptk_as *as, uint64_t va, uint64_t len, unsigned access)
{
	if (!as || (va & (PTK_PAGE_SIZE - 1)) || (len & (PTK_PAGE_SIZE - 1)) ||
	    va + len < va || access > PTK_ACCESS_EXEC)
		return -EINVAL;
	PTK_CHECK_AS(as);
	for (uint64_t a = va; a < va + len; a += PTK_PAGE_SIZE) {
		struct ptk_xlate x;
		if (ptk_translate(as, a, &x) == 0 &&
		    (access != PTK_ACCESS_WRITE || ptk_pte_write(x.pte))) {
			/* Skip the rest of a huge leaf. */
			a = ptk_level_base(a, x.level) + x.page_size - PTK_PAGE_SIZE;
			continue;
		}
		int rc = ptk_fault(as, a, access);
		if (rc)
			return rc;
	}
	return 0;
}
