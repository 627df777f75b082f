/*
 * rmap.c - reverse maps: the rmap lock (sleeping or spinning, per context),
 * the interval tree of mappings, linking regions into it, and the walk
 * that finds every mapping of a page index.  Protocol in ptkit/rmap.h.
 *
 * The tree is a treap ordered by (first, node address) and augmented with
 * the largest `last` of each subtree, so a query for the mappings that
 * overlap [a, b] skips every subtree whose max_last < a.  Expected depth
 * O(log n); priorities come from a hash of the node address.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* ---- the rmap lock ---------------------------------------------------- */

void ptk_rmap_lock_init(struct ptk_rmap_rwlock *l, bool spin)
{
	l->spin = spin;
	int rc = spin ? pthread_spin_init(&l->sl, PTHREAD_PROCESS_PRIVATE)
		      : pthread_rwlock_init(&l->rw, NULL);
	PTK_BUG_ON(rc != 0, "lock init failed");
}

void ptk_rmap_lock_destroy(struct ptk_rmap_rwlock *l)
{
	if (l->spin)
		pthread_spin_destroy(&l->sl);
	else
		pthread_rwlock_destroy(&l->rw);
}

/* The spinning design has no shared mode (the kernel's i_mmap_lock and
 * anon_vma->lock were plain spinlocks): readers exclude each other too. */
void ptk_rmap_read_lock(struct ptk_rmap_rwlock *l)
{
	int rc = l->spin ? pthread_spin_lock(&l->sl) : pthread_rwlock_rdlock(&l->rw);
	PTK_BUG_ON(rc != 0, "rmap read lock failed");
}

void ptk_rmap_write_lock(struct ptk_rmap_rwlock *l)
{
	int rc = l->spin ? pthread_spin_lock(&l->sl) : pthread_rwlock_wrlock(&l->rw);
	PTK_BUG_ON(rc != 0, "rmap write lock failed");
}

void ptk_rmap_unlock(struct ptk_rmap_rwlock *l)
{
	if (l->spin)
		pthread_spin_unlock(&l->sl);
	else
		pthread_rwlock_unlock(&l->rw);
}

/* ---- rmap roots ------------------------------------------------------- */

void ptk_rmap_init(struct ptk_rmap *rm, struct ptk_ctx *ctx, bool anon,
		   void (*release)(struct ptk_rmap *))
{
	/* Field by field, no memset: a reused family may still be looked at
	 * by a stale ptk_rmap_try_get(), which reads only refs. */
	ptk_rmap_lock_init(&rm->lock, ctx->cfg.rmap_lock == PTK_RMAP_SPIN);
	rm->tree = NULL;
	rm->nr = 0;
	rm->ctx = ctx;
	rm->anon = anon;
	rm->release = release;
	rm->free_next = NULL;
	/* Release: the fields above before a try-get can succeed (its
	 * acquire CAS). */
	atomic_store_explicit(&rm->refs, 1, memory_order_release);
}

/*
 * Anonymous families are type-stable (the kernel's anon_vma cache is
 * SLAB_TYPESAFE_BY_RCU): a pinned frame can outlive every mapping and so
 * its family, and its owner pointer is cleared only when the frame is
 * freed.  A dead family goes, after a grace period, on the context's list
 * and is reused by a later ptk_rmap_anon_create(), never returned to the
 * host until the context is destroyed.  A stale owner pointer therefore
 * always points to a struct ptk_rmap: ptk_rmap_try_get() fails on a dead
 * one (refs 0), or succeeds on a reused one, whose walk finds no entry
 * mapping the frame (every walk re-checks the entry's frame).
 */
static void anon_free_rcu(struct rcu_head *head)
{
	PTK_RCU_CALLBACK_BEGIN(head);
	struct ptk_rmap *rm = ptk_container_of(head, struct ptk_rmap, rcu);
	struct ptk_ctx *ctx = rm->ctx;
	ptk_rmap_lock_destroy(&rm->lock);
	ptk_lock_acquire(&ctx->anon_free_lock);
	rm->free_next = atomic_load_explicit(&ctx->anon_free, memory_order_relaxed);
	atomic_store_explicit(&ctx->anon_free, rm, memory_order_relaxed);
	ptk_lock_release(&ctx->anon_free_lock);
	PTK_RCU_CALLBACK_END();
}

static void anon_release(struct ptk_rmap *rm)
{
	/* After a grace period: ptk_rmap_try_get() from a frame's owner
	 * pointer may still be looking at it. */
	ptk_rcu_call(&rm->rcu, anon_free_rcu);
}

struct ptk_rmap *ptk_rmap_anon_create(struct ptk_ctx *ctx)
{
	struct ptk_rmap *rm = NULL;
	/* A hint read without the lock (no lock taken while the list is
	 * empty), re-read under it. */
	if (atomic_load_explicit(&ctx->anon_free, memory_order_relaxed)) {
		ptk_lock_acquire(&ctx->anon_free_lock);
		rm = atomic_load_explicit(&ctx->anon_free, memory_order_relaxed);
		if (rm)
			atomic_store_explicit(&ctx->anon_free, rm->free_next,
					      memory_order_relaxed);
		ptk_lock_release(&ctx->anon_free_lock);
	}
	if (!rm && !(rm = malloc(sizeof(*rm))))
		return NULL;
	ptk_rmap_init(rm, ctx, true, anon_release);
	return rm;
}

void ptk_rmap_anon_fini(struct ptk_ctx *ctx)
{
	struct ptk_rmap *rm = atomic_load_explicit(&ctx->anon_free, memory_order_relaxed);
	while (rm) {
		struct ptk_rmap *next = rm->free_next;
		free(rm);
		rm = next;
	}
	atomic_store_explicit(&ctx->anon_free, NULL, memory_order_relaxed);
	ptk_lock_destroy(&ctx->anon_free_lock);
}

void ptk_rmap_get(struct ptk_rmap *rm)
{
	long old = atomic_fetch_add_explicit(&rm->refs, 1, memory_order_relaxed);
	PTK_BUG_ON(old <= 0, "reference to a dead reverse map");
}

bool ptk_rmap_try_get(struct ptk_rmap *rm)
{
	long c = atomic_load_explicit(&rm->refs, memory_order_relaxed);
	do {
		if (c <= 0)
			return false;
	} while (!atomic_compare_exchange_weak_explicit(&rm->refs, &c, c + 1,
			memory_order_acquire, memory_order_relaxed));
	return true;
}

void ptk_rmap_put(struct ptk_rmap *rm)
{
	if (!rm)
		return;
	/* acq_rel: every holder's accesses happen before the release
	 * (the same pattern as ptk_frame_put). */
	long old = atomic_fetch_sub_explicit(&rm->refs, 1, memory_order_acq_rel);
	PTK_BUG_ON(old <= 0, "reverse map reference underflow");
	if (old == 1)
		rm->release(rm);
}

/* ---- the interval tree (caller holds the rmap lock for writing) ------- */

static uint32_t node_prio(const struct ptk_mapping *m)
{
	uint64_t x = (uint64_t)(uintptr_t)m;
	x ^= x >> 33;
	x *= UINT64_C(0xff51afd7ed558ccd);
	x ^= x >> 33;
	return (uint32_t)x;
}

static bool node_less(const struct ptk_mapping *a, const struct ptk_mapping *b)
{
	if (a->first != b->first)
		return a->first < b->first;
	return (uintptr_t)a < (uintptr_t)b;
}

static void node_update(struct ptk_mapping *m)
{
	uint64_t mx = m->last;
	if (m->left && m->left->max_last > mx)
		mx = m->left->max_last;
	if (m->right && m->right->max_last > mx)
		mx = m->right->max_last;
	m->max_last = mx;
}

static struct ptk_mapping *rotate_right(struct ptk_mapping *t)
{
	struct ptk_mapping *l = t->left;
	t->left = l->right;
	l->right = t;
	node_update(t);
	node_update(l);
	return l;
}

static struct ptk_mapping *rotate_left(struct ptk_mapping *t)
{
	struct ptk_mapping *r = t->right;
	t->right = r->left;
	r->left = t;
	node_update(t);
	node_update(r);
	return r;
}

static struct ptk_mapping *tree_insert(struct ptk_mapping *t, struct ptk_mapping *n)
{
	if (!t) {
		n->left = n->right = NULL;
		n->prio = node_prio(n);
		node_update(n);
		return n;
	}
	if (node_less(n, t)) {
		t->left = tree_insert(t->left, n);
		if (t->left->prio > t->prio)
			return rotate_right(t);
	} else {
		t->right = tree_insert(t->right, n);
		if (t->right->prio > t->prio)
			return rotate_left(t);
	}
	node_update(t);
	return t;
}

static struct ptk_mapping *tree_delete(struct ptk_mapping *t, struct ptk_mapping *n)
{
	PTK_BUG_ON(!t, "mapping not in its reverse map");
	if (t == n) {
		if (!t->left)
			return t->right;
		if (!t->right)
			return t->left;
		if (t->left->prio > t->right->prio) {
			t = rotate_right(t);
			t->right = tree_delete(t->right, n);
		} else {
			t = rotate_left(t);
			t->left = tree_delete(t->left, n);
		}
	} else if (node_less(n, t)) {
		t->left = tree_delete(t->left, n);
	} else {
		t->right = tree_delete(t->right, n);
	}
	node_update(t);
	return t;
}

static int tree_walk(struct ptk_mapping *t, uint64_t first, uint64_t last,
		     int (*fn)(struct ptk_mapping *, void *), void *arg)
{
	while (t && t->max_last >= first) {
		int rc = tree_walk(t->left, first, last, fn, arg);
		if (rc)
			return rc;
		if (t->first > last)
			return 0;       /* everything to the right starts later */
		if (t->last >= first && (rc = fn(t, arg)))
			return rc;
		t = t->right;
	}
	return 0;
}

int ptk_rmap_walk(struct ptk_rmap *rm, uint64_t first, uint64_t last,
		  int (*fn)(struct ptk_mapping *, void *), void *arg)
{
	return tree_walk(rm->tree, first, last, fn, arg);
}

/* ---- linking regions ---------------------------------------------------- */

int ptk_rmap_link(struct ptk_rmap *rm, struct ptk_as *as, uint64_t va,
		  uint64_t first, uint64_t npages, struct ptk_mapping **out)
{
	PTK_BUG_ON(npages == 0, "empty mapping");
	if (ptk_inject_should_fail(rm->ctx, PTK_INJECT_META))
		return -ENOMEM;
	struct ptk_mapping *m = ptk_mapping_alloc();
	if (!m)
		return -ENOMEM;
	m->as = as;
	m->va = va;
	m->first = first;
	m->last = first + npages - 1;
	m->rmap = rm;
	ptk_rmap_get(rm);
	ptk_rmap_write_lock(&rm->lock);
	rm->tree = tree_insert(rm->tree, m);
	rm->nr++;
	ptk_rmap_unlock(&rm->lock);
	*out = m;
	return 0;
}

void ptk_rmap_unlink(struct ptk_mapping *m)
{
	if (!m)
		return;
	struct ptk_rmap *rm = m->rmap;
	ptk_rmap_write_lock(&rm->lock);
	rm->tree = tree_delete(rm->tree, m);
	rm->nr--;
	ptk_rmap_unlock(&rm->lock);
	free(m);
	ptk_rmap_put(rm);
}

void ptk_rmap_unlink_chain(struct ptk_mapping *chain)
{
	while (chain) {
		struct ptk_mapping *next = chain->next;
		ptk_rmap_unlink(chain);
		chain = next;
	}
}

struct ptk_mapping *ptk_mapping_alloc(void)
{
	return calloc(1, sizeof(struct ptk_mapping));
}

void ptk_rmap_split(struct ptk_mapping *m, uint64_t va, struct ptk_mapping *hi)
{
	uint64_t cut = m->first + ((va - m->va) >> PTK_PAGE_SHIFT);
	PTK_BUG_ON(va <= m->va || cut > m->last, "splitting a mapping outside it");
	struct ptk_rmap *rm = m->rmap;
	memset(hi, 0, sizeof(*hi));
	hi->as = m->as;
	hi->va = va;
	hi->first = cut;
	hi->last = m->last;
	hi->rmap = rm;
	ptk_rmap_get(rm);
	ptk_rmap_write_lock(&rm->lock);
	rm->tree = tree_delete(rm->tree, m);
	m->last = cut - 1;
	rm->tree = tree_insert(rm->tree, m);
	rm->tree = tree_insert(rm->tree, hi);
	rm->nr++;
	ptk_rmap_unlock(&rm->lock);
}

/* ---- frames ------------------------------------------------------------- */

void ptk_frame_set_owner(struct ptk_frame *f, struct ptk_rmap *rm, uint64_t index)
{
	atomic_store_explicit(&f->index, index, memory_order_relaxed);
	/* Release: index before owner; pairs with ptk_frame_owner_get(). */
	atomic_store_explicit(&f->owner, rm, memory_order_release);
}

struct ptk_rmap *ptk_frame_owner_get(struct ptk_ctx *ctx, struct ptk_frame *f,
				     uint64_t *index)
{
	struct ptk_frame *head = ptk_frame_head(ctx, f);
	ptk_rcu_read_lock();
	struct ptk_rmap *rm = atomic_load_explicit(&head->owner, memory_order_acquire);
	if (rm && !ptk_rmap_try_get(rm))
		rm = NULL;
	ptk_rcu_read_unlock();
	if (rm)
		*index = atomic_load_explicit(&head->index, memory_order_relaxed) +
			 (uint64_t)(f - head);
	return rm;
}
