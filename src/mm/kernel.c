/*
 * kernel.c - the shared kernel half: kernel mappings under the reference
 * root, and the three designs that keep every root's top-level kernel
 * entries in sync with it.  Protocol and invariants: include/ptkit/kernel.h.
 */
#include <string.h>

#include "internal.h"

#define KFIRST (PTK_TABLE_SLOTS / 2)     /* first kernel slot of a root */

#ifdef PTK_COUNT_WRITES
__thread uint64_t ptk_cw_counts[PTK_CW_NR];
#endif

static inline enum ptk_kernel_sync design(const struct ptk_ctx *ctx)
{
	return ctx->cfg.kernel_sync;
}

static inline uint64_t kernel_end(void)
{
	return UINT64_C(0) - PTK_PAGE_SIZE;   /* the last page is never mapped */
}

/* ---- filling root slots (I1: 0 or the reference value, for ever) -------- */

/* Fill kernel slot @k of @root with @e if empty.  No lock: the only
 * transition of a kernel root slot is 0 -> reference value, and every
 * writer writes the same value.  Returns true if this call filled it. */
static bool fill_slot(ptk_slot_t *root, unsigned k, ptk_pte_t e)
{
	ptk_pte_t old = 0;
	if (ptk_pte_cmpxchg(&root[k], &old, e))
		return true;
	PTK_BUG_ON(old != e, "kernel root slot differs from the reference");
	return false;
}

/* Copy every non-empty reference entry missing in @as.  Returns the number
 * of slots filled. */
static unsigned copy_all(struct ptk_as *as, const ptk_slot_t *ref)
{
	unsigned n = 0;
	for (unsigned k = KFIRST; k < PTK_TABLE_SLOTS; k++) {
		ptk_pte_t e = ptk_pte_load(&ref[k]);   /* acquire: the table below */
		if (!ptk_pte_none(e) && fill_slot(as->root_slots, k, e))
			n++;
	}
	return n;
}

/* Copy the reference entries of the slots in @mask into @as. */
static unsigned copy_mask(struct ptk_as *as, const ptk_slot_t *ref, const uint64_t *mask)
{
	unsigned n = 0;
	for (unsigned w = KFIRST / 64; w < PTK_TABLE_SLOTS / 64; w++)
		for (uint64_t m = mask[w]; m; m &= m - 1) {
			unsigned k = w * 64 + (unsigned)__builtin_ctzll(m);
			ptk_pte_t e = ptk_pte_load(&ref[k]);
			if (fill_slot(as->root_slots, k, e))
				n++;
		}
	return n;
}

static const ptk_slot_t *ref_slots(struct ptk_ctx *ctx)
{
	/* Acquire: pairs with the release that published the reference space. */
	struct ptk_as *ref = atomic_load_explicit(&ctx->kernel.ref, memory_order_acquire);
	return ref ? ref->root_slots : NULL;
}

/* ---- RCU lists: the registry shards (eager) and the global list (legacy) */

/* Link @n at the head of @head.  The list's lock held. */
static unsigned list_add(_Atomic(struct ptk_reg_node *) *head, struct ptk_reg_node *n)
{
	unsigned writes = 1;
	struct ptk_reg_node *first = atomic_load_explicit(head, memory_order_relaxed);
	atomic_store_explicit(&n->next, first, memory_order_relaxed);
	n->pprev = head;
	if (first) {
		first->pprev = &n->next;
		writes++;
	}
	/* Release: the node (and the space it belongs to) is complete before
	 * a reader can reach it; pairs with the acquire loads of list_for_each. */
	atomic_store_explicit(head, n, memory_order_release);
	return writes;
}

/* Unlink @n; its next stays, for readers standing on it.  Lock held. */
static unsigned list_del(struct ptk_reg_node *n)
{
	unsigned writes = 1;
	struct ptk_reg_node *next = atomic_load_explicit(&n->next, memory_order_relaxed);
	/* Release, pairs with list_for_each's acquire (next's node is complete). */
	atomic_store_explicit(n->pprev, next, memory_order_release);
	if (next) {
		next->pprev = n->pprev;
		writes++;
	}
	return writes;
}

#define list_for_each(pos, head) \
	for (struct ptk_reg_node *pos = atomic_load_explicit((head), memory_order_acquire); \
	     pos; pos = atomic_load_explicit(&pos->next, memory_order_acquire))

/* ---- create / destroy ------------------------------------------------------ */

void ptk_kernel_init(struct ptk_ctx *ctx)
{
	struct ptk_kernel *k = &ctx->kernel;
	ptk_lock_init(&k->lock);
	pthread_spin_init(&k->legacy_lock, PTHREAD_PROCESS_PRIVATE);
	for (unsigned i = 0; i < ctx->nshards; i++)
		ptk_lock_init(&ctx->shards[i].reg_lock);
}

void ptk_kernel_as_created(struct ptk_as *as)
{
	struct ptk_ctx *ctx = as->ctx;
	as->kshared = as->levels == ctx->cfg.levels;
	if (!as->kshared)
		return;             /* no kernel half: never registered */
	unsigned filled = 0;
	switch (design(ctx)) {
	case PTK_KSYNC_EAGER: {
		/* 1. Publish: link into this CPU's registry shard. */
		unsigned si = ptk_ctx_shard_index(ctx);
		struct ptk_shard *sh = &ctx->shards[si];
		as->reg_shard = si;
		ptk_lock_acquire(&sh->reg_lock);
		unsigned w = list_add(&sh->reg_head, &as->reg);
		ptk_lock_release(&sh->reg_lock);
		PTK_COUNT_WRITE(ctx, PTK_CW_CPU, 2 + w);   /* lock, unlock, links */
		/* 2. Full barrier (C): the publication is visible before the
		 * reference is read.  Pairs with (X) in kernel_sync_locked(). */
		ptk_full_barrier(&as->kgen);
		/* 3. Late init: copy every non-empty reference entry. */
		const ptk_slot_t *ref = ref_slots(ctx);
		if (ref)
			filled = copy_all(as, ref);
		break;
	}
	case PTK_KSYNC_LAZY: {
		/* No registry.  Fill now and record the generation: acquire pairs
		 * with the release bump after a new reference entry (I2), so
		 * every entry counted by @g is seen. */
		uint64_t g = atomic_load_explicit(&ctx->kernel.gen, memory_order_acquire);
		const ptk_slot_t *ref = ref_slots(ctx);
		if (ref)
			filled = copy_all(as, ref);
		atomic_store_explicit(&as->kgen, g, memory_order_relaxed);
		break;
	}
	case PTK_KSYNC_LEGACY: {
		struct ptk_kernel *k = &ctx->kernel;
		pthread_spin_lock(&k->legacy_lock);
		const ptk_slot_t *ref = ref_slots(ctx);
		if (ref)
			filled = copy_all(as, ref);
		unsigned w = list_add(&k->legacy_head, &as->reg);
		pthread_spin_unlock(&k->legacy_lock);
		PTK_COUNT_WRITE(ctx, PTK_CW_GLOBAL, 2 + w);
		break;
	}
	}
	if (filled)
		PTK_SHARD_ADD(ctx, k_late_filled, filled);
}

void ptk_kernel_as_destroying(struct ptk_as *as)
{
	struct ptk_ctx *ctx = as->ctx;
	if (!as->kshared)
		return;
	switch (design(ctx)) {
	case PTK_KSYNC_EAGER: {
		struct ptk_shard *sh = &ctx->shards[as->reg_shard];
		ptk_lock_acquire(&sh->reg_lock);
		unsigned w = list_del(&as->reg);
		ptk_lock_release(&sh->reg_lock);
		PTK_COUNT_WRITE(ctx, as->reg_shard == ptk_ctx_shard_index(ctx) ?
				PTK_CW_CPU : PTK_CW_REMOTE, 2 + w);
		break;
	}
	case PTK_KSYNC_LAZY:
		break;
	case PTK_KSYNC_LEGACY: {
		struct ptk_kernel *k = &ctx->kernel;
		pthread_spin_lock(&k->legacy_lock);
		unsigned w = list_del(&as->reg);
		pthread_spin_unlock(&k->legacy_lock);
		PTK_COUNT_WRITE(ctx, PTK_CW_GLOBAL, 2 + w);
		break;
	}
	}
}

void ptk_as_activate(struct ptk_as *as)
{
	if (!as || !as->kshared)
		return;
	struct ptk_ctx *ctx = as->ctx;
	if (design(ctx) != PTK_KSYNC_LAZY)
		return;
	/* Acquire: pairs with the release bump (I2); the entries it counts are
	 * visible to the loads below. */
	uint64_t g = atomic_load_explicit(&ctx->kernel.gen, memory_order_acquire);
	uint64_t have = atomic_load_explicit(&as->kgen, memory_order_relaxed);
	if (g == have)
		return;             /* nothing new: O(1) */
	unsigned filled = copy_all(as, ref_slots(ctx));
	if (filled)
		PTK_SHARD_ADD(ctx, k_activate_filled, filled);
	/* Record it, monotonically (activations may race; a lost update only
	 * costs a redundant copy later). */
	while (have < g && !atomic_compare_exchange_weak_explicit(&as->kgen, &have, g,
			memory_order_relaxed, memory_order_relaxed))
		;
}

unsigned ptk_as_kernel_missing(struct ptk_as *as)
{
	if (!as || !as->kshared)
		return 0;
	const ptk_slot_t *ref = ref_slots(as->ctx);
	if (!ref)
		return 0;
	unsigned n = 0;
	for (unsigned k = KFIRST; k < PTK_TABLE_SLOTS; k++) {
		ptk_pte_t e = ptk_pte_load(&ref[k]);
		if (!ptk_pte_none(e) && ptk_pte_load(&as->root_slots[k]) != e)
			n++;
	}
	return n;
}

/* ---- sync ------------------------------------------------------------------ */

/* Propagate the pending reference entries.  Kernel lock held. */
static void kernel_sync_locked(struct ptk_ctx *ctx)
{
	struct ptk_kernel *k = &ctx->kernel;
	PTK_CONTRACT(ptk_lock_held(&k->lock), "kernel lock not held");
	k->syncs++;
	uint64_t g = atomic_load_explicit(&k->gen, memory_order_relaxed);
	if (g == k->synced) {
		k->syncs_noop++;    /* nothing new since the last sync: O(1) */
		return;
	}
	const ptk_slot_t *ref = ref_slots(ctx);
	switch (design(ctx)) {
	case PTK_KSYNC_EAGER:
		/* Full barrier (X): the new reference entries are visible before
		 * the registry is read.  Pairs with (C) in ptk_kernel_as_created. */
		ptk_full_barrier(&k->gen);
		k->walks++;
		ptk_rcu_read_lock();
		for (unsigned i = 0; i < ctx->nshards; i++)
			list_for_each(n, &ctx->shards[i].reg_head) {
				struct ptk_as *as = ptk_container_of(n, struct ptk_as, reg);
				k->walk_filled += copy_mask(as, ref, k->pending);
				k->walk_visited++;
			}
		ptk_rcu_read_unlock();
		break;
	case PTK_KSYNC_LEGACY:
		k->walks++;
		pthread_spin_lock(&k->legacy_lock);
		list_for_each(n, &k->legacy_head) {
			struct ptk_as *as = ptk_container_of(n, struct ptk_as, reg);
			k->walk_filled += copy_mask(as, ref, k->pending);
			k->walk_visited++;
		}
		pthread_spin_unlock(&k->legacy_lock);
		break;
	case PTK_KSYNC_LAZY:
		break;              /* activations catch up */
	}
	memset(k->pending, 0, sizeof(k->pending));
	k->synced = g;
}

void ptk_kernel_sync(struct ptk_ctx *ctx)
{
	ptk_cpu_quiesce_self();         /* may wait for the kernel lock */
	ptk_lock_acquire(&ctx->kernel.lock);
	kernel_sync_locked(ctx);
	ptk_lock_release(&ctx->kernel.lock);
}

/* ---- kernel mappings ------------------------------------------------------- */

/* The reference space, created on first use.  Kernel lock held. */
static struct ptk_as *get_ref(struct ptk_ctx *ctx, int *rc)
{
	struct ptk_as *ref = atomic_load_explicit(&ctx->kernel.ref, memory_order_relaxed);
	if (ref)
		return ref;
	*rc = ptk_as_alloc(ctx, ctx->cfg.levels, &ref);
	if (*rc)
		return NULL;
	ref->kernel_ref = true;
	/* Release: its (empty) root is initialised before anyone reads it. */
	atomic_store_explicit(&ctx->kernel.ref, ref, memory_order_release);
	return ref;
}

/* Note the reference slots that became non-empty since @before, and bump
 * the generation once per new entry (after the entry: release, I2). */
static void note_new_entries(struct ptk_ctx *ctx, struct ptk_as *ref, const uint64_t *before)
{
	struct ptk_kernel *k = &ctx->kernel;
	for (unsigned kk = KFIRST; kk < PTK_TABLE_SLOTS; kk++) {
		uint64_t bit = UINT64_C(1) << (kk % 64);
		if ((before[kk / 64] & bit) || ptk_pte_none(ptk_pte_load(&ref->root_slots[kk])))
			continue;
		k->pending[kk / 64] |= bit;
		/* Release: the entry (and the tables below it) before the new
		 * generation; pairs with the acquire loads of the generation
		 * in ptk_as_activate() and in lazy creation. */
		atomic_fetch_add_explicit(&k->gen, 1, memory_order_release);
	}
}

static void snapshot_slots(struct ptk_as *ref, uint64_t *mask)
{
	memset(mask, 0, sizeof(uint64_t) * (PTK_TABLE_SLOTS / 64));
	for (unsigned kk = KFIRST; kk < PTK_TABLE_SLOTS; kk++)
		if (!ptk_pte_none(ptk_pte_load(&ref->root_slots[kk])))
			mask[kk / 64] |= UINT64_C(1) << (kk % 64);
}

static void zap_ref(struct ptk_as *ref, uint64_t start, uint64_t end)
{
	struct ptk_gather g;
	ptk_gather_init(&g, ref, false);
	ptk_zap_range(ref, &g, start, end);
	ptk_gather_finish(&g);
}

static int kmap_common(struct ptk_ctx *ctx, uint64_t *va, uint64_t len, unsigned prot,
		       unsigned flags, enum ptk_region_kind kind, uint64_t pfn)
{
	if (!ctx || !va || (prot & ~PTK_PROT_MASK) ||
	    (flags & ~(PTK_MAP_NOREPLACE | PTK_MAP_HUGE | PTK_MAP_POPULATE)))
		return -EINVAL;
	if (!len || (len & (PTK_PAGE_SIZE - 1)) || (*va & (PTK_PAGE_SIZE - 1)))
		return -EINVAL;
	uint64_t kstart = ptk_kernel_start(ctx->cfg.levels), kend = kernel_end();
	if (len > kend - kstart)
		return -ENOMEM;
	if (kind == PTK_REGION_SPECIAL && (pfn + (len >> PTK_PAGE_SHIFT) < pfn ||
	    pfn + (len >> PTK_PAGE_SHIFT) > (PTK_PTE_PFN_MASK >> PTK_PAGE_SHIFT) + 1))
		return -EINVAL;
	bool exact = flags & PTK_MAP_NOREPLACE;
	if (exact && (*va < kstart || *va > kend || kend - *va < len))
		return -EINVAL;

	struct ptk_kernel *k = &ctx->kernel;
	int rc = 0;
	ptk_cpu_quiesce_self();         /* may wait for the kernel lock */
	ptk_lock_acquire(&k->lock);
	struct ptk_as *ref = get_ref(ctx, &rc);
	if (!ref)
		goto out;
	uint64_t at = *va;
	if (exact) {
		if (ptk_region_overlaps(&ref->regions, at, at + len, false)) {
			rc = -EEXIST;
			goto out;
		}
	} else {
		uint64_t align = PTK_PAGE_SIZE;
		if ((flags & PTK_MAP_HUGE) && kind == PTK_REGION_SPECIAL)
			align = len >= PTK_HUGE_1G ? PTK_HUGE_1G : PTK_HUGE_2M;
		uint64_t hint = at >= kstart ? at : kstart;
		rc = ptk_region_find_gap(&ref->regions, hint, len, align, kend, &at);
		if (rc && hint != kstart)
			rc = ptk_region_find_gap(&ref->regions, kstart, len, align, kend, &at);
		if (rc)
			goto out;
	}
	rc = ptk_region_reserve(&ref->regions, 1);
	if (rc)
		goto out;
	uint64_t before[PTK_TABLE_SLOTS / 64];
	snapshot_slots(ref, before);
	uint64_t leaf = PTK_PTE_GLOBAL | ((prot & PTK_PROT_WRITE) ? PTK_PTE_WRITE : 0);
	if (kind == PTK_REGION_SPECIAL)
		rc = ptk_install_special(ref, at, at + len, pfn, leaf & ~PTK_PTE_SPECIAL,
					 flags & PTK_MAP_HUGE);
	else
		rc = ptk_install_anon(ref, at, at + len, leaf | PTK_PTE_ACCESSED | PTK_PTE_DIRTY);
	if (rc) {
		zap_ref(ref, at, at + len);
	} else {
		struct ptk_region r = { .start = at, .end = at + len, .prot = prot,
					.flags = flags & PTK_MAP_HUGE, .kind = kind, .pfn = pfn };
		int irc = ptk_region_insert(&ref->regions, &r);
		PTK_BUG_ON(irc != 0, "insert failed after reserve");
		k->extensions++;
		*va = at;
	}
	/* New top-level entries (even of a failed map: they stay, I1) go to
	 * every root; the generation makes this O(1) when there are none. */
	note_new_entries(ctx, ref, before);
	kernel_sync_locked(ctx);
out:
	ptk_lock_release(&k->lock);
	return rc;
}

int ptk_kmap_special(struct ptk_ctx *ctx, uint64_t *va, uint64_t len, uint64_t pfn,
		     unsigned prot, unsigned flags)
{
	return kmap_common(ctx, va, len, prot, flags, PTK_REGION_SPECIAL, pfn);
}

int ptk_kmap_anon(struct ptk_ctx *ctx, uint64_t *va, uint64_t len, unsigned prot,
		  unsigned flags)
{
	return kmap_common(ctx, va, len, prot, flags & ~PTK_MAP_HUGE, PTK_REGION_ANON, 0);
}

int ptk_kunmap(struct ptk_ctx *ctx, uint64_t va, uint64_t len)
{
	if (!ctx || !len || (va & (PTK_PAGE_SIZE - 1)) || (len & (PTK_PAGE_SIZE - 1)))
		return -EINVAL;
	uint64_t kstart = ptk_kernel_start(ctx->cfg.levels), kend = kernel_end();
	if (va < kstart || va > kend || kend - va < len)
		return -EINVAL;
	struct ptk_kernel *k = &ctx->kernel;
	uint64_t end = va + len;
	int rc = 0;
	ptk_cpu_quiesce_self();         /* may wait for the kernel lock and CPUs */
	ptk_lock_acquire(&k->lock);
	struct ptk_as *ref = atomic_load_explicit(&k->ref, memory_order_relaxed);
	if (!ref || !ptk_region_overlaps(&ref->regions, va, end, false))
		goto out;
	rc = ptk_region_reserve(&ref->regions, 2);
	if (!rc)
		rc = ptk_split_boundary(ref, va);
	if (!rc)
		rc = ptk_split_boundary(ref, end);
	if (rc)
		goto out;
	ptk_region_split_at(&ref->regions, va);
	ptk_region_split_at(&ref->regions, end);
	ptk_region_remove(&ref->regions, va, end, NULL);
	zap_ref(ref, va, end);
out:
	ptk_lock_release(&k->lock);
	return rc;
}

/* ---- faults ------------------------------------------------------------- */

int ptk_kernel_fault(struct ptk_as *as, uint64_t va, unsigned access)
{
	struct ptk_ctx *ctx = as->ctx;
	if (!as->kshared || va < ptk_kernel_start(as->levels))
		return -EFAULT;
	struct ptk_as *ref = atomic_load_explicit(&ctx->kernel.ref, memory_order_acquire);
	if (!ref)
		return -EFAULT;
	struct ptk_xlate x;
	ptk_rcu_read_lock();
	int rc = ptk_walk(ref, va, &x);
	ptk_rcu_read_unlock();
	if (rc)
		return -EFAULT;
	if (access == PTK_ACCESS_WRITE && !ptk_pte_write(x.pte))
		return -EACCES;
	/* The reference maps it: make sure @as has the top-level entry. */
	unsigned kk = ptk_level_index(va, as->levels - 1);
	ptk_pte_t e = ptk_pte_load(&ref->root_slots[kk]);
	if (fill_slot(as->root_slots, kk, e))
		PTK_SHARD_ADD(ctx, k_fault_filled, 1);
	return 0;
}

/* ---- statistics and teardown --------------------------------------------- */

void ptk_kernel_stats(struct ptk_ctx *ctx, struct ptk_kernel_stats *st)
{
	struct ptk_kernel *k = &ctx->kernel;
	memset(st, 0, sizeof(*st));
	for (unsigned i = 0; i < ctx->nshards; i++) {
		struct ptk_shard *sh = &ctx->shards[i];
		st->late_filled += atomic_load_explicit(&sh->k_late_filled, memory_order_relaxed);
		st->activate_filled += atomic_load_explicit(&sh->k_activate_filled,
							    memory_order_relaxed);
		st->fault_filled += atomic_load_explicit(&sh->k_fault_filled, memory_order_relaxed);
	}
	ptk_lock_acquire(&k->lock);
	st->generation = atomic_load_explicit(&k->gen, memory_order_relaxed);
	st->extensions = k->extensions;
	st->syncs = k->syncs;
	st->syncs_noop = k->syncs_noop;
	st->walks = k->walks;
	st->walk_visited = k->walk_visited;
	st->walk_filled = k->walk_filled;
	struct ptk_as *ref = atomic_load_explicit(&k->ref, memory_order_relaxed);
	if (ref) {
		struct ptk_as_stats as;
		ptk_as_stats(ref, &as);
		st->table_pages = as.table_pages;
		st->rss_frames = as.rss_frames;
		for (size_t i = 0; i < ref->regions.n; i++) {
			st->regions++;
			st->mapped_bytes += ref->regions.v[i].end - ref->regions.v[i].start;
		}
		for (unsigned kk = KFIRST; kk < PTK_TABLE_SLOTS; kk++)
			if (!ptk_pte_none(ptk_pte_load(&ref->root_slots[kk])))
				st->top_entries++;
	}
	ptk_lock_release(&k->lock);
}

void ptk_kernel_fini(struct ptk_ctx *ctx)
{
	struct ptk_kernel *k = &ctx->kernel;
	struct ptk_as *ref = atomic_load_explicit(&k->ref, memory_order_relaxed);
	if (ref) {
		/* Leaves and the tables below the top-level ones (after a grace
		 * period), then the top-level tables themselves, now empty. */
		zap_ref(ref, ptk_kernel_start(ref->levels), kernel_end());
		for (unsigned kk = KFIRST; kk < PTK_TABLE_SLOTS; kk++) {
			ptk_pte_t e = ptk_pte_load(&ref->root_slots[kk]);
			if (ptk_pte_none(e))
				continue;
			struct ptk_frame *t = ptk_pfn_to_frame(ctx, ptk_pte_pfn(e));
			PTK_BUG_ON(atomic_load_explicit(&t->nr_used, memory_order_relaxed) != 0,
				   "kernel table not empty after teardown");
			ptk_pte_store(&ref->root_slots[kk], 0);
			ptk_table_free_now(ctx, t);
		}
		ptk_as_free_now(ref);
		atomic_store_explicit(&k->ref, NULL, memory_order_relaxed);
	}
	ptk_lock_destroy(&k->lock);
	pthread_spin_destroy(&k->legacy_lock);
}

/* ---- shared-write counting ------------------------------------------------- */

int ptk_count_writes_enable(struct ptk_ctx *ctx, bool on)
{
#ifdef PTK_COUNT_WRITES
	/* Relaxed: RCU callbacks of earlier operations may read it meanwhile. */
	atomic_store_explicit(&ctx->count_writes, on, memory_order_relaxed);
	return 0;
#else
	(void)ctx;
	(void)on;
	return -EOPNOTSUPP;
#endif
}

void ptk_count_writes_read(uint64_t out[PTK_CW_NR], bool reset)
{
#ifdef PTK_COUNT_WRITES
	memcpy(out, ptk_cw_counts, sizeof(ptk_cw_counts));
	if (reset)
		memset(ptk_cw_counts, 0, sizeof(ptk_cw_counts));
#else
	memset(out, 0, sizeof(uint64_t) * PTK_CW_NR);
	(void)reset;
#endif
}
