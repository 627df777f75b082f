/*
 * gather.c - the mmu_gather (protocol in include/ptkit/gather.h).
 *
 * A batch is one frame of the pool, allocated without blocking (the pool
 * never waits): its 4 KiB hold this header and an array of frame pointers.
 * Data-page batches chain from g->batches; table batches from g->tables and
 * are handed to RCU whole, one callback per batch.  When a table batch
 * cannot be had, the table waits on a list of singles (linked through its
 * descriptor's free-list link, which a detached table does not use) and
 * gets an RCU callback of its own at the flush.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* The batch layout is in internal.h (the lazy TLB mode defers batches). */
#define BATCH_MAX PTK_GATHER_BATCH_MAX

static struct ptk_gather_batch *batch_alloc(struct ptk_ctx *ctx)
{
	struct ptk_frame *f = ptk_frame_alloc(ctx, PTK_FRAME_BATCH, false);
	if (!f)
		return NULL;
	struct ptk_gather_batch *b = ptk_frame_host(ctx, f);
	b->next = NULL;
	b->self = f;
	b->nr = 0;
	b->max = (unsigned)BATCH_MAX;
	b->gen = 0;
	return b;
}

static void batch_free(struct ptk_ctx *ctx, struct ptk_gather_batch *b)
{
	ptk_frame_free(ctx, b->self);
}

struct ptk_gather_batch *ptk_gather_batch_alloc(struct ptk_ctx *ctx)
{
	return batch_alloc(ctx);
}

void ptk_gather_batch_free(struct ptk_ctx *ctx, struct ptk_gather_batch *b)
{
	batch_free(ctx, b);
}

/* The old design: one fixed array per shard, held from init to finish. */
struct ptk_legacy_gather {
	alignas(PTK_CACHELINE) struct ptk_lock lock;
	struct ptk_frame *slot[PTK_GATHER_LEGACY_NR];
};

struct ptk_legacy_gather *ptk_legacy_gathers_create(unsigned n)
{
	struct ptk_legacy_gather *lg = aligned_alloc(PTK_CACHELINE, sizeof(*lg) * n);
	if (!lg)
		return NULL;
	for (unsigned i = 0; i < n; i++)
		ptk_lock_init(&lg[i].lock);
	return lg;
}

void ptk_legacy_gathers_destroy(struct ptk_legacy_gather *lg, unsigned n)
{
	if (!lg)
		return;
	for (unsigned i = 0; i < n; i++)
		ptk_lock_destroy(&lg[i].lock);
	free(lg);
}

void ptk_gather_init(struct ptk_gather *g, struct ptk_as *as, bool fullmm)
{
	if (!g)
		return;
	memset(g, 0, sizeof(*g));
	if (!as)
		return;         /* an inert gather: every call on it does nothing */
	g->as = as;
	g->ctx = as->ctx;
	g->slots = g->local;
	g->max = PTK_GATHER_LOCAL;
	g->fullmm = fullmm;
	g->start = UINT64_MAX;
	g->end = 0;
	g->track_vas = atomic_load_explicit(&as->nr_page_notifiers,
					    memory_order_relaxed) != 0;
	if (__builtin_expect(g->ctx->cfg.gather_mode == PTK_GATHER_LEGACY, 0)) {
		/* "Preemption off": this shard's array is ours until finish. */
		struct ptk_legacy_gather *lg =
			&g->ctx->legacy_gathers[ptk_ctx_shard_index(g->ctx)];
		ptk_lock_acquire(&lg->lock);
		g->legacy = lg;
		g->slots = lg->slot;
		g->max = PTK_GATHER_LEGACY_NR;
	}
}

void ptk_gather_note_range(struct ptk_gather *g, uint64_t start, uint64_t end,
			   unsigned level)
{
	if (!g || !g->ctx || start >= end || level >= 32)
		return;
	if (start < g->start)
		g->start = start;
	if (end > g->end)
		g->end = end;
	g->page_sizes |= 1u << level;
	if (g->track_vas) {
		if (g->nr_vas == PTK_GATHER_VAS)
			ptk_gather_flush_vas(g);
		g->vas[g->nr_vas++] = start;
	}
}

void ptk_gather_flush_vas(struct ptk_gather *g)
{
	if (!g->nr_vas)
		return;
	ptk_notify_pages(g->as, g->vas, g->nr_vas);
	g->nr_vas = 0;
}

/* Move to a new data batch.  false if none can be had. */
static bool gather_grow(struct ptk_gather *g)
{
	if (g->legacy || g->batch_failed || g->nr_pages >= PTK_GATHER_MAX_PAGES)
		return false;
	struct ptk_gather_batch *b = g->spare;
	if (b) {
		g->spare = b->next;
	} else {
		b = batch_alloc(g->ctx);
		if (!b) {
			/* Stay on what we have and flush more often. */
			g->batch_failed = true;
			g->stat_batch_failures++;
			return false;
		}
		g->stat_batches++;
	}
	b->nr = 0;
	b->next = g->batches;
	g->batches = b;
	g->slots = b->slot;
	g->nr = 0;
	g->max = b->max;
	return true;
}

bool ptk_gather_add_page(struct ptk_gather *g, struct ptk_frame *f)
{
	if (!g || !g->ctx || !f)
		return false;
	PTK_BUG_ON(g->nr >= g->max, "gather overflow: caller ignored 'full'");
	g->slots[g->nr++] = f;
	g->nr_pages++;
	g->stat_pages++;
	if (g->batches)
		g->batches->nr = g->nr;
	/* The cap is on pages per flush, not only checked when a batch fills
	 * (which would let a gather hold up to a batch more than the cap). */
	if (g->nr_pages >= PTK_GATHER_MAX_PAGES)
		return true;
	if (g->nr < g->max)
		return false;
	return !gather_grow(g);
}

void ptk_gather_add_table(struct ptk_gather *g, struct ptk_frame *t)
{
	if (!g || !g->ctx || !t)
		return;
	g->freed_tables = true;
	g->stat_tables++;
	struct ptk_gather_batch *b = g->tables;
	if (!b || b->nr == b->max) {
		struct ptk_gather_batch *nb = batch_alloc(g->ctx);
		if (nb) {
			g->stat_batches++;
			nb->next = b;
			g->tables = b = nb;
		} else {
			g->stat_batch_failures++;
			b = NULL;
		}
	}
	if (b) {
		b->slot[b->nr++] = t;
		return;
	}
	/* No batch: the table goes on the singles list (its free-list link
	 * is unused while it is detached). */
	t->next_free = g->local_singles;
	g->local_singles = t;
}

/* TLB invalidation for what was gathered (tlb.c): every software TLB that
 * may hold an entry of the range has dropped it when this returns true, so
 * the pages may be freed.  false: the lazy mode took the data pages onto
 * the address space's deferred list; the caller only resets its arrays. */
static bool gather_invalidate(struct ptk_gather *g)
{
	ptk_gather_flush_vas(g);
	if (g->start >= g->end && !g->fullmm && !g->freed_tables)
		return true;
	g->stat_flushes++;
	bool free_now = ptk_tlb_flush_gather(g);
	g->start = UINT64_MAX;
	g->end = 0;
	g->page_sizes = 0;
	return free_now;
}

static void table_batch_rcu_cb(struct rcu_head *head)
{
	PTK_RCU_CALLBACK_BEGIN(head);
	struct ptk_frame *self = ptk_container_of(head, struct ptk_frame, rcu);
	struct ptk_ctx *ctx = self->ctx;
	struct ptk_gather_batch *b = ptk_frame_host(ctx, self);
	for (unsigned i = 0; i < b->nr; i++)
		ptk_table_free_now(ctx, b->slot[i]);
	ptk_frame_free(ctx, self);
	PTK_RCU_CALLBACK_END();
}

void ptk_gather_flush(struct ptk_gather *g)
{
	if (!g || !g->ctx)
		return;
	struct ptk_ctx *ctx = g->ctx;
	/* 1. invalidate: no CPU may reach the pages or tables after this. */
	bool free_now = gather_invalidate(g);
	/* 2. free the data pages (local array first, then each batch); the
	 * lazy TLB mode may have taken them (and emptied the local array). */
	if (g->legacy) {
		for (unsigned i = 0; free_now && i < g->nr; i++)
			ptk_frame_put(ctx, g->slots[i]);
	} else {
		/* Not freeing (lazy TLB took the pages and the batches, but
		 * left nr counting them): no end to compute, g->local + nr
		 * would point past the local array. */
		struct ptk_frame **local_end = !free_now ? g->local :
			g->batches ? g->local + PTK_GATHER_LOCAL : g->local + g->nr;
		for (struct ptk_frame **p = g->local; free_now && p < local_end; p++)
			ptk_frame_put(ctx, *p);
		while (free_now && g->batches) {
			struct ptk_gather_batch *b = g->batches;
			g->batches = b->next;
			for (unsigned i = 0; i < b->nr; i++)
				ptk_frame_put(ctx, b->slot[i]);
			b->next = g->spare;
			g->spare = b;
		}
		g->slots = g->local;
		g->max = PTK_GATHER_LOCAL;
	}
	g->nr = 0;
	g->nr_pages = 0;
	g->batch_failed = false;
	/* 3. tables: after a grace period, batched or one by one. */
	while (g->tables) {
		struct ptk_gather_batch *b = g->tables;
		g->tables = b->next;
		ptk_rcu_call(&b->self->rcu, table_batch_rcu_cb);
	}
	/* Singles: one RCU callback each.  The old design (semi-RCU) first
	 * sends the IPI that waits out interrupts-off walkers, as the kernel
	 * did before freeing; the free itself stays deferred because ptkit's
	 * writers descend locklessly under RCU and use the table's lock. */
	if (g->local_singles && ptk_ctx_walk_ipi(ctx))
		ptk_ipi_sync(ctx);
	while (g->local_singles) {
		struct ptk_frame *t = g->local_singles;
		g->local_singles = t->next_free;
		t->next_free = NULL;
		ptk_table_free_rcu(ctx, t);
	}
	g->freed_tables = false;
}

void ptk_gather_finish(struct ptk_gather *g)
{
	if (!g || !g->ctx)
		return;
	ptk_gather_flush(g);
	while (g->spare) {
		struct ptk_gather_batch *b = g->spare;
		g->spare = b->next;
		batch_free(g->ctx, b);
	}
	if (g->legacy) {
		ptk_lock_release(&g->legacy->lock);
		g->legacy = NULL;
	}
	/* Statistics for ptk_as_stats (this CPU's shard: no shared line). */
	PTK_AS_ADD(g->as, tlb_flushes, g->stat_flushes);
	PTK_AS_ADD(g->as, gather_batches, g->stat_batches);
	PTK_AS_ADD(g->as, gather_batch_failures, g->stat_batch_failures);
}
