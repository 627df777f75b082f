/*
 * src/internal.h - structures shared by the library's modules.  Not
 * installed: users see only include/ptkit/.
 */
#ifndef PTKIT_INTERNAL_H
#define PTKIT_INTERNAL_H

#include <errno.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ptkit/ptkit.h"

#define PTK_CACHELINE 64
#define PTK_CHUNK_FRAMES 512u                 /* 2 MiB chunk */
#define ptk_container_of(p, type, member) \
	((type *)((char *)(p) - offsetof(type, member)))

/* ---- context and pool --------------------------------------------------- */

/* A node of an RCU list (hlist-style): readers follow next with acquire
 * loads inside a read-side section; writers link and unlink under the
 * list's lock.  Unlinking leaves next intact so a reader standing on the
 * node goes on; the node is freed after a grace period. */
struct ptk_reg_node {
	_Atomic(struct ptk_reg_node *) next;
	_Atomic(struct ptk_reg_node *) *pprev;   /* list lock */
};

/* The kernel half of a context (kernel.c; protocol in ptkit/kernel.h). */
struct ptk_kernel {
	struct ptk_lock lock;              /* serialises kmap, kunmap, sync */
	_Atomic(struct ptk_as *) ref;      /* reference space, set once (lock) */
	uint64_t pending[PTK_TABLE_SLOTS / 64]; /* lock: slots not yet synced */
	uint64_t synced;                   /* lock: generation last synced */
	uint64_t extensions, syncs, syncs_noop, walks, walk_visited,
		 walk_filled;               /* lock */
	/* Bumped (release) after each new top-level reference entry: read by
	 * every lazy activation, written only by extensions. */
	alignas(PTK_CACHELINE) _Atomic uint64_t gen;
	/* legacy design: the global list of roots and its global lock, a
	 * spinlock as the kernel's pgd_lock is (a preempted holder makes the
	 * waiters spin: part of what the old design costs when threads
	 * outnumber CPUs) */
	alignas(PTK_CACHELINE) pthread_spinlock_t legacy_lock;
	_Atomic(struct ptk_reg_node *) legacy_head;
};

enum ptk_chunk_state { CHUNK_UNTOUCHED = 0, CHUNK_WHOLE, CHUNK_SPLIT, CHUNK_HUGE };

/* A per-CPU frame cache, and that CPU's share of the context counters.
 * Written by threads running on its CPU; aligned so shards share no line. */
struct ptk_shard {
	alignas(PTK_CACHELINE) struct ptk_lock lock;
	struct ptk_frame *head;           /* cached free frames */
	unsigned count;
	/* Counters: modular per shard (a frame may be freed on another CPU);
	 * the sums are exact. */
	_Atomic uint64_t in_use[PTK_FRAME_NR_TYPES];
	_Atomic uint64_t allocs, frees, fails;
	_Atomic uint64_t as_created, as_destroyed;
	/* Kernel-half counters of this CPU (kernel.c). */
	_Atomic uint64_t k_late_filled, k_activate_filled, k_fault_filled;
	/* This CPU's shard of the registry of live address spaces (eager
	 * kernel sync): an RCU list, written under reg_lock by threads of this
	 * CPU (and by a destroy of a space registered here), read by
	 * extenders under RCU.  Own line: frame allocations do not touch it. */
	alignas(PTK_CACHELINE) struct ptk_lock reg_lock;
	_Atomic(struct ptk_reg_node *) reg_head;
};

/* Object tags: set at creation, cleared at destroy.  Debug builds check them
 * at the public entry points (PTK_CHECK_AS/CTX), catching use after destroy
 * (until the memory is reused) and an object of the wrong kind. */
#define PTK_CTX_MAGIC UINT32_C(0x70746b63)   /* "ptkc" */
#define PTK_AS_MAGIC  UINT32_C(0x70746b61)   /* "ptka" */
#define PTK_CHECK_CTX(ctx) \
	PTK_CONTRACT((ctx)->magic == PTK_CTX_MAGIC, "not a live context (destroyed?)")
#define PTK_CHECK_AS(as) \
	PTK_CONTRACT((as)->magic == PTK_AS_MAGIC, "not a live address space (destroyed?)")

struct ptk_ctx {
	uint32_t magic;
	struct ptk_ctx_config cfg;
	uint8_t *base;                    /* host memory of frame 0 */
	uint64_t nframes;
	struct ptk_frame *frames;         /* descriptors */
	uint64_t nchunks;
	uint8_t *chunk_state;             /* enum ptk_chunk_state, pool_lock */
	/* the shared pool, on its own lines: base, nframes and cfg above are
	 * read by every walk and must not share a line with the pool lock */
	alignas(PTK_CACHELINE) struct ptk_lock pool_lock;
	struct ptk_frame *free_head;      /* small frames, pool_lock */
	uint64_t free_count;              /* pool_lock */
	uint64_t chunk_cursor;            /* next chunk to try, pool_lock */
	uint64_t huge_in_use;             /* pool_lock */
	uint64_t whole_free;              /* free whole chunks, pool_lock */
	/* per-CPU caches */
	struct ptk_shard *shards;
	unsigned nshards;
	/* failure injection: read on every allocation only as one flag */
	_Atomic unsigned inject_kinds;
	_Atomic long inject_nth;
	_Atomic unsigned count_kinds;
	_Atomic long count;
	_Atomic bool count_writes;        /* shared-write counting (kernel.h) */
	bool rcu_percpu;                  /* call_rcu() enqueues per CPU */
	struct ptk_kernel kernel;
	/* software TLBs (tlb.c): registered CPUs, by id; cpu_lock for changes */
	struct ptk_lock cpu_lock;
	struct ptk_cpu *_Atomic cpus[PTK_TLB_MAX_CPUS];
	/* PTK_GATHER_LEGACY: one fixed gather per shard (gather.c) */
	struct ptk_legacy_gather *legacy_gathers;
	/* Dead anonymous families, kept for reuse until the context goes
	 * (type-stable memory, rmap.c): a frame's stale owner pointer always
	 * points to a struct ptk_rmap. */
	struct ptk_lock anon_free_lock;
	_Atomic(struct ptk_rmap *) anon_free;   /* written under anon_free_lock */
};

/* Shard of the calling thread's CPU. */
unsigned ptk_ctx_shard_index(const struct ptk_ctx *ctx);
static inline struct ptk_shard *ptk_ctx_shard(struct ptk_ctx *ctx)
{
	return &ctx->shards[ptk_ctx_shard_index(ctx)];
}

static inline void *ptk_pfn_host_fast(const struct ptk_ctx *ctx, uint64_t pfn)
{
	return ctx->base + (pfn << PTK_PAGE_SHIFT);
}

static inline uint64_t ptk_frame_pfn_fast(const struct ptk_ctx *ctx,
					  const struct ptk_frame *f)
{
	return (uint64_t)(f - ctx->frames);
}

/* Head of the huge frame @f belongs to, or @f itself. */
static inline struct ptk_frame *ptk_frame_head(struct ptk_ctx *ctx, struct ptk_frame *f)
{
	if (atomic_load_explicit(&f->type, memory_order_relaxed) == PTK_FRAME_HUGE_TAIL)
		return f - (ptk_frame_pfn_fast(ctx, f) & (PTK_CHUNK_FRAMES - 1));
	return f;
}

/* Consume one injected failure of @kind if armed.  Returns true to fail. */
bool ptk_inject_should_fail(struct ptk_ctx *ctx, unsigned kind);

/* Per-CPU counter update on the caller's shard (no shared line). */
#define PTK_SHARD_ADD(ctx, field, n) \
	atomic_fetch_add_explicit(&ptk_ctx_shard(ctx)->field, \
				  (uint64_t)(n), memory_order_relaxed)

/* ---- walker sections (walk.c, ipi.c) ----------------------------------- */

/* One emulated CPU of the old design (ipi.c): its "interrupts off" state. */
struct ptk_ipi_cpu {
	alignas(PTK_CACHELINE) _Atomic uint64_t seq;   /* odd: interrupts off */
	_Atomic int live;                              /* owned by a thread */
	struct ptk_ipi_cpu *next;                      /* append-only list */
};
extern __thread struct ptk_ipi_cpu *ptk_ipi_self;
struct ptk_ipi_cpu *ptk_ipi_register_self(void);
/* membarrier registration (context creation).  0 or -EOPNOTSUPP. */
int ptk_ipi_register_process(void);
/* Send the IPI and wait until no walker that had interrupts off is still
 * in its section.  Not inside a walker section.  May hold table locks. */
void ptk_ipi_sync(struct ptk_ctx *ctx);

/* "Interrupts off": odd sequence, compiler barrier only (the writer's
 * membarrier supplies the fence). */
static inline void ptk_irq_off(void)
{
	struct ptk_ipi_cpu *c = ptk_ipi_self;
	if (__builtin_expect(!c, 0))
		c = ptk_ipi_register_self();
	uint64_t s = atomic_load_explicit(&c->seq, memory_order_relaxed);
	PTK_CONTRACT(!(s & 1), "nested walker section");
	atomic_store_explicit(&c->seq, s + 1, memory_order_relaxed);
	__asm__ __volatile__("" ::: "memory");   /* pairs with ptk_ipi_sync's membarrier */
}

static inline void ptk_irq_on(void)
{
	struct ptk_ipi_cpu *c = ptk_ipi_self;
	uint64_t s = atomic_load_explicit(&c->seq, memory_order_relaxed);
	/* Release: the section's loads before the even value ptk_ipi_sync
	 * acquires. */
	atomic_store_explicit(&c->seq, s + 1, memory_order_release);
}

static inline bool ptk_ctx_walk_ipi(const struct ptk_ctx *ctx)
{
	return ctx->cfg.walk_mode == PTK_WALK_IPI;
}

/* Enter a walker section in @ctx's design.  The new design: an RCU
 * read-side section.  The old one: RCU as well (its batched table frees
 * still go through RCU, as sched-RCU treated interrupts-off code as a
 * reader) plus interrupts off, which its IPIs wait for. */
static inline void ptk_walker_enter(const struct ptk_ctx *ctx)
{
	ptk_rcu_read_lock();
	if (__builtin_expect(ptk_ctx_walk_ipi(ctx), 0))
		ptk_irq_off();
}

static inline void ptk_walker_exit(const struct ptk_ctx *ctx)
{
	if (__builtin_expect(ptk_ctx_walk_ipi(ctx), 0))
		ptk_irq_on();
	ptk_rcu_read_unlock();
}

/* ---- address space -------------------------------------------------------- */

/* Region lock shard and the per-CPU counters of one address space. */
struct ptk_as_shard {
	alignas(PTK_CACHELINE) pthread_rwlock_t lock;
	_Atomic int64_t rss, tables, faults, filled;
	/* teardown statistics (gather.c, tlb.c) */
	_Atomic int64_t tlb_flushes, gather_batches, gather_batch_failures,
		shootdowns, remote_answers;
};

struct ptk_region {
	uint64_t start, end;
	unsigned prot, flags;
	enum ptk_region_kind kind;
	uint64_t pfn;               /* special: frame number of start */
	/* Reverse-map links (rmap.c): anonymous regions (and private object
	 * mappings, for their copied pages) are linked into an anonymous
	 * family; object regions into their object's tree.  Each link holds a
	 * reference on its reverse map.  NULL where nothing is linked (the
	 * kernel half, special mappings). */
	struct ptk_mapping *anon_link;
	struct ptk_mapping *obj_link;
	struct ptk_object *obj;     /* object regions: the object */
	uint64_t pgoff;             /* object regions: object page at start */
};

struct ptk_region_set {
	struct ptk_region *v;       /* sorted by start, non-overlapping */
	size_t n, cap;
	struct ptk_mapping *spare;  /* link nodes reserved for splits */
	size_t nspare;
};

struct ptk_as {
	/* Read-mostly line: every lockless walk reads ctx, root_slots and
	 * levels; nothing here is written after creation (a field written by
	 * map or fault on this line would cost every walker a cache miss). */
	uint32_t magic;
	struct ptk_ctx *ctx;
	struct ptk_frame *root;
	ptk_slot_t *root_slots;
	unsigned levels;
	struct ptk_as_shard *shards;  /* ctx->nshards of them */
	alignas(PTK_CACHELINE) struct ptk_region_set regions;  /* region lock */
	struct rcu_head rcu;          /* deferred free of this struct */
	/* kernel half (kernel.c) */
	bool kernel_ref;              /* the context's reference space */
	bool kshared;                 /* shares the kernel half */
	unsigned reg_shard;           /* eager: registry shard it is linked on */
	struct ptk_reg_node reg;      /* eager: registry link; legacy: list link */
	_Atomic uint64_t kgen;        /* lazy: generation its kernel half has;
				       * eager: the creator's barrier word */
	/* software TLBs (tlb.c) */
	alignas(PTK_CACHELINE) _Atomic uint64_t tlb_gen;  /* bumped by every flush */
	_Atomic uint64_t cpumask[PTK_TLB_MASK_WORDS];     /* CPUs that may cache */
	struct ptk_notifier *_Atomic notifiers;            /* RCU list */
	_Atomic unsigned nr_page_notifiers;                /* with invalidate_pages */
	struct ptk_lock tlb_lock;     /* deferred list, notifier list updates */
	struct ptk_gather_batch *deferred;  /* lazy: pages waiting (any order of gen) */
	uint64_t deferred_pages;            /* tlb_lock */
};

/* Region lock (as.c): read side returns the shard token to unlock with. */
unsigned ptk_as_read_lock(struct ptk_as *as);
void ptk_as_read_unlock(struct ptk_as *as, unsigned token);
void ptk_as_write_lock(struct ptk_as *as);
void ptk_as_write_unlock(struct ptk_as *as);

static inline struct ptk_as_shard *ptk_as_my_shard(struct ptk_as *as)
{
	return &as->shards[ptk_ctx_shard_index(as->ctx)];
}
#define PTK_AS_ADD(as, field, n) \
	atomic_fetch_add_explicit(&ptk_as_my_shard(as)->field, (int64_t)(n), \
				  memory_order_relaxed)

/* ---- reverse maps (rmap.c; protocol in ptkit/rmap.h) -------------------- */

/* The rmap lock: a reader/writer lock that sleeps (rwsem analog), or in the
 * old design (PTK_RMAP_SPIN) a spinlock with no shared mode. */
struct ptk_rmap_rwlock {
	bool spin;
	pthread_rwlock_t rw;
	pthread_spinlock_t sl;
};
void ptk_rmap_lock_init(struct ptk_rmap_rwlock *l, bool spin);
void ptk_rmap_lock_destroy(struct ptk_rmap_rwlock *l);
void ptk_rmap_read_lock(struct ptk_rmap_rwlock *l);
void ptk_rmap_write_lock(struct ptk_rmap_rwlock *l);
void ptk_rmap_unlock(struct ptk_rmap_rwlock *l);

/* A reverse map: every mapping of an object (i_mmap analog) or of an
 * anonymous family (anon_vma analog: a region and all its clones), in an
 * interval tree by page index. */
struct ptk_rmap {
	struct ptk_rmap_rwlock lock;
	struct ptk_mapping *tree;    /* lock */
	size_t nr;                   /* mappings in the tree, lock */
	_Atomic long refs;           /* links + owner; 0: dead */
	bool anon;
	struct ptk_ctx *ctx;
	void (*release)(struct ptk_rmap *);   /* last reference gone */
	struct rcu_head rcu;         /* freed after a grace period */
	struct ptk_rmap *free_next;  /* anonymous: on ctx->anon_free */
};

/* One region's link in a reverse map: page indexes [first, last] mapped at
 * va onwards in as.  Tree fields under the rmap lock; as, va, first, last
 * change only under the rmap lock for writing and the region lock of as. */
struct ptk_mapping {
	struct ptk_mapping *left, *right;
	uint64_t first, last, max_last;
	uint32_t prio;
	struct ptk_as *as;
	uint64_t va;                 /* address of page index first */
	struct ptk_rmap *rmap;
	struct ptk_mapping *next;    /* chain of links detached by a removal */
};

/* @rm with one reference (the caller's). */
void ptk_rmap_init(struct ptk_rmap *rm, struct ptk_ctx *ctx, bool anon,
		   void (*release)(struct ptk_rmap *));
/* A new anonymous family with one reference, or NULL. */
struct ptk_rmap *ptk_rmap_anon_create(struct ptk_ctx *ctx);
/* Context teardown: free the dead families kept for reuse. */
void ptk_rmap_anon_fini(struct ptk_ctx *ctx);
void ptk_rmap_get(struct ptk_rmap *rm);
/* Reference unless already dead; inside a read-side section. */
bool ptk_rmap_try_get(struct ptk_rmap *rm);
void ptk_rmap_put(struct ptk_rmap *rm);
/* Link [va, va + npages pages) of @as as indexes first... into @rm (takes
 * a reference on @rm; the rmap lock for writing).  -ENOMEM. */
int ptk_rmap_link(struct ptk_rmap *rm, struct ptk_as *as, uint64_t va,
		  uint64_t first, uint64_t npages, struct ptk_mapping **out);
/* Unlink and free @m, dropping its reference (NULL: nothing). */
void ptk_rmap_unlink(struct ptk_mapping *m);
/* Unlink every link of a chain (m->next). */
void ptk_rmap_unlink_chain(struct ptk_mapping *chain);
/* A zeroed link node (free() it if unused), or NULL. */
struct ptk_mapping *ptk_mapping_alloc(void);
/* Split @m at @va: @m keeps the part below, @hi (from ptk_mapping_alloc)
 * becomes the rest, in the same tree, with its own reference. */
void ptk_rmap_split(struct ptk_mapping *m, uint64_t va, struct ptk_mapping *hi);
/* Call @fn for every mapping overlapping indexes [first, last] until it
 * returns non-zero (returned).  Caller holds @rm's lock (read or write). */
int ptk_rmap_walk(struct ptk_rmap *rm, uint64_t first, uint64_t last,
		  int (*fn)(struct ptk_mapping *, void *), void *arg);
/* Set a data frame's reverse map before it is first mapped. */
void ptk_frame_set_owner(struct ptk_frame *f, struct ptk_rmap *rm, uint64_t index);
/* The reverse map of @f (small or huge, any part) with a reference taken,
 * and @f's page index in it; NULL if none or dead.  Not inside a section. */
struct ptk_rmap *ptk_frame_owner_get(struct ptk_ctx *ctx, struct ptk_frame *f,
				     uint64_t *index);

/* ---- objects (object.c; protocol in ptkit/object.h) -------------------- */

#define PTK_OBJECT_MAGIC UINT32_C(0x70746b6f)   /* "ptko" */

/* One CPU's shard of an object's invalidate lock, and that CPU's share of
 * the page-cache counter (modular per shard; the sum is exact). */
struct ptk_inval_shard {
	alignas(PTK_CACHELINE) pthread_rwlock_t lock;
	_Atomic int64_t cached;
};

struct ptk_object {
	uint32_t magic;
	struct ptk_ctx *ctx;
	/* Every mapping of the object (i_mmap).  Its reference count is the
	 * object's: the creator's reference plus one per link. */
	struct ptk_rmap rmap;
	/* The page cache: slot i holds the frame of page offset i (one
	 * reference), or NULL (a hole).  Filled by cmpxchg under the
	 * invalidate lock (read), emptied under it (write). */
	_Atomic(struct ptk_frame *) *cache;
	size_t cache_bytes;         /* host mapping of @cache */
	uint64_t max_pages;         /* slots in @cache */
	_Atomic uint64_t size;      /* bytes; written under the lock (write) */
	uint64_t max_size;
	struct ptk_inval_shard *inval;   /* ctx->nshards of them */
};

/* The invalidate lock (mapping->invalidate_lock analog): read side on
 * this CPU's shard only, returns the token to unlock with. */
unsigned ptk_object_inval_read_lock(struct ptk_object *obj);
void ptk_object_inval_read_unlock(struct ptk_object *obj, unsigned tok);
/* The frame of page @pgoff (below the size; invalidate lock held for
 * reading), allocated zeroed into the cache if it is a hole.  The cache
 * keeps its reference; the caller takes its own for a mapping.  NULL when
 * no frame could be had. */
struct ptk_frame *ptk_object_cache_get(struct ptk_object *obj, uint64_t pgoff);
/* The cached frame of @pgoff or NULL (a hole); lock held for reading. */
static inline struct ptk_frame *ptk_object_cache_peek(struct ptk_object *obj,
						      uint64_t pgoff)
{
	/* Acquire: the frame's zeroed or written contents before its pointer;
	 * pairs with the release cmpxchg that filled the slot. */
	return atomic_load_explicit(&obj->cache[pgoff], memory_order_acquire);
}

/* Whether leaf @e (at @level) may be made writable in place: a special
 * leaf (no copy on write), or an anonymous frame (its owner is an
 * anonymous family) whose only reference is this leaf's - a huge leaf's
 * head at refcount 1, or a 4 KiB frame that is not part of a huge one.
 * Anything else is shared (a clone, a pin, a page of an object, a split
 * huge frame) and is copied on write (fault.c, fault_wp).  Caller holds
 * the table lock of @e. */
static inline bool ptk_leaf_exclusive(struct ptk_ctx *ctx, ptk_pte_t e, unsigned level)
{
	if (ptk_pte_special(e))
		return true;
	struct ptk_frame *f = &ctx->frames[ptk_pte_pfn(e)];
	struct ptk_frame *head = ptk_frame_head(ctx, f);
	if (level == 0 && head != f)
		return false;
	struct ptk_rmap *owner = atomic_load_explicit(&head->owner, memory_order_relaxed);
	return owner && owner->anon &&
	       atomic_load_explicit(&head->refcount, memory_order_acquire) == 1;
}

/* ---- region set (region.c); caller holds the region lock --------------- */

/* Region containing @va, or NULL.  Read or write lock. */
struct ptk_region *ptk_region_find(struct ptk_region_set *rs, uint64_t va);
/* Index of the first region ending after @va. Read or write lock. */
size_t ptk_region_lower(struct ptk_region_set *rs, uint64_t va);
/* Whether [start, end) is entirely covered by regions of kind != ZAPPING. */
bool ptk_region_covered(struct ptk_region_set *rs, uint64_t start, uint64_t end);
/* Whether any region (incl. placeholders) overlaps [start, end). */
bool ptk_region_overlaps(struct ptk_region_set *rs, uint64_t start, uint64_t end,
			 bool zapping_only);
/* Make sure no region straddles @va (split it, and its reverse-map links).
 * Write lock.  -ENOMEM (nothing changed); cannot fail after
 * ptk_region_reserve() made room for it. */
int ptk_region_split_at(struct ptk_region_set *rs, uint64_t va);
/* Remove every region inside [start, end) (boundaries already split).
 * Their reverse-map links are pushed on *@detached (NULL: unlinked now);
 * the caller unlinks the chain after zapping the range, so a reverse-map
 * walk (truncate, unmap of a frame) reaches the pages until they are gone. */
void ptk_region_remove(struct ptk_region_set *rs, uint64_t start, uint64_t end,
		       struct ptk_mapping **detached);
/* Insert @r, which overlaps nothing.  Write lock.  -ENOMEM. */
int ptk_region_insert(struct ptk_region_set *rs, const struct ptk_region *r);
/* Reserve room for @extra more regions and link nodes for @extra splits
 * (so later steps cannot fail). */
int ptk_region_reserve(struct ptk_region_set *rs, size_t extra);
/* Find a free gap of @len aligned to @align at or above @hint below @limit. */
int ptk_region_find_gap(struct ptk_region_set *rs, uint64_t hint, uint64_t len,
			uint64_t align, uint64_t limit, uint64_t *out);
/* Free the set; every region's links are unlinked (after the zap). */
void ptk_region_set_free(struct ptk_region_set *rs);

/* ---- tables (table.c) ---------------------------------------------------- */

/* The tables a descent passed through, so a writer can lock and re-check.
 * table[l] is the table at level l; parent_slot[l] the slot (in table[l+1])
 * that pointed to it and parent_seen[l] the value read there. */
struct ptk_path {
	struct ptk_frame *table[PTK_MAX_LEVELS];
	ptk_slot_t *parent_slot[PTK_MAX_LEVELS];
	ptk_pte_t parent_seen[PTK_MAX_LEVELS];
};

static inline ptk_slot_t *ptk_table_slots(struct ptk_ctx *ctx, struct ptk_frame *t)
{
	return (ptk_slot_t *)ptk_pfn_host_fast(ctx, ptk_frame_pfn_fast(ctx, t));
}

/* Descend @as toward @va from the root, recording the tables passed in
 * @path, to the first entry that is not a table pointer (a leaf or an
 * empty entry): returns its slot, with its level in *level and the value
 * read (once) in *e.  Inside a read-side section; takes no lock (a writer
 * then locks path->table[*level] with ptk_table_lock_attached() and
 * re-checks the entry). */
ptk_slot_t *ptk_descend(struct ptk_as *as, uint64_t va, struct ptk_path *path,
			unsigned *level, ptk_pte_t *e);

/* Allocate an empty table for @level.  NULL on exhaustion. */
struct ptk_frame *ptk_table_alloc(struct ptk_ctx *ctx, unsigned level);
/* Free a table nobody else ever saw (never published). */
void ptk_table_free_unpublished(struct ptk_ctx *ctx, struct ptk_frame *t);
/* Free a detached table after a grace period, alone (the fallback when no
 * batch page can be had).  Never fails. */
void ptk_table_free_rcu(struct ptk_ctx *ctx, struct ptk_frame *t);
/* RCU callback target for one table. */
void ptk_table_free_now(struct ptk_ctx *ctx, struct ptk_frame *t);

/* Lock path->table[level] and check it is still attached (its parent slot
 * still points to it).  Returns true with the lock held, false (unlocked)
 * if it was detached meanwhile: the caller restarts its descent.  Caller
 * is inside a read-side section. */
bool ptk_table_lock_attached(struct ptk_as *as, struct ptk_path *path,
			     unsigned level);
static inline void ptk_table_unlock(struct ptk_frame *t) { ptk_lock_release(&t->ptl); }

/* Split the huge leaf in @slot of locked table @t at @level into a table of
 * 512 leaves one level down.  @child is a fresh table.  Caller holds
 * t->ptl and is inside a read-side section; walkers see either the huge
 * leaf or the new table. */
void ptk_table_split_huge(struct ptk_as *as, struct ptk_frame *t, ptk_slot_t *slot,
			  unsigned level, struct ptk_frame *child);

/* Make sure no huge leaf straddles @va: split as needed.  Region lock held
 * (read or write).  0 or -ENOMEM (nothing changed then). */
int ptk_split_boundary(struct ptk_as *as, uint64_t va);

/* Detach now-empty tables on the path of @va, from @level up (never the
 * root), into gather @g.  Caller holds no table lock; inside a section. */
void ptk_table_reclaim_up(struct ptk_as *as, struct ptk_gather *g,
			  struct ptk_path *path, unsigned level);

/* ---- teardown (zap.c) ---------------------------------------------------- */

/* Clear every entry in [start, end) of @as through @g and reclaim tables
 * emptied by it.  Huge leaves must not straddle the range (split the
 * boundaries first).  Caller holds no table lock and is not inside a
 * read-side section.  Never fails. */
void ptk_zap_range(struct ptk_as *as, struct ptk_gather *g, uint64_t start,
		   uint64_t end);

/* ptk_zap_range() of only the leaves whose frame @owner owns (a hole
 * punch: an object's pages go, private copies of them stay). */
void ptk_zap_range_owned(struct ptk_as *as, struct ptk_gather *g, uint64_t start,
			 uint64_t end, const struct ptk_rmap *owner);

/* Rewrite the write permission of present leaves in [start, end) and note
 * reduced ones in @g for invalidation. */
void ptk_change_prot_range(struct ptk_as *as, struct ptk_gather *g,
			   uint64_t start, uint64_t end, bool writable);

/* ---- software TLBs and notifiers (tlb.c) -------------------------------- */

extern __thread struct ptk_cpu *ptk_this_cpu;
/* Entry of a ptkit operation that may block: a quiescent point for the
 * calling thread's CPU, if it is one. */
static inline void ptk_cpu_quiesce_self(void)
{
	struct ptk_cpu *c = ptk_this_cpu;
	if (c)
		ptk_cpu_quiesce(c);
}
/* Invalidate every TLB that may hold entries of @g's range (or of the whole
 * space); sync: returns after every CPU answered, true.  Lazy with pages
 * gathered: may take the gather's data pages onto the deferred list and
 * return false (the caller then must not free them).  No table lock held. */
bool ptk_tlb_flush_gather(struct ptk_gather *g);
/* Notifier calls around a teardown or protection change (no lock held). */
void ptk_notify_start(struct ptk_as *as, uint64_t start, uint64_t end);
void ptk_notify_end(struct ptk_as *as, uint64_t start, uint64_t end);
void ptk_notify_pages(struct ptk_as *as, const uint64_t *va, unsigned nr);
/* Destroy: every CPU gone; free all deferred pages. */
void ptk_tlb_as_destroy(struct ptk_as *as);

/* Gather batch layout, shared by gather.c and tlb.c (lazy deferral). */
struct ptk_gather_batch {
	struct ptk_gather_batch *next;
	struct ptk_frame *self;          /* the batch's own frame */
	unsigned nr, max;
	uint64_t gen;                    /* lazy: TLB generation to wait for */
	struct ptk_frame *slot[];
};
#define PTK_GATHER_BATCH_MAX \
	((PTK_PAGE_SIZE - sizeof(struct ptk_gather_batch)) / sizeof(void *))
struct ptk_gather_batch *ptk_gather_batch_alloc(struct ptk_ctx *ctx);
struct ptk_legacy_gather *ptk_legacy_gathers_create(unsigned n);
void ptk_legacy_gathers_destroy(struct ptk_legacy_gather *lg, unsigned n);
void ptk_gather_batch_free(struct ptk_ctx *ctx, struct ptk_gather_batch *b);

/* ---- installing leaves (fault.c) ----------------------------------------- */

/* Install special leaves for [start, end) mapping pfn onwards.  Region lock
 * held.  -ENOMEM (partial installs are left for the caller to zap). */
int ptk_install_special(struct ptk_as *as, uint64_t start, uint64_t end,
			uint64_t pfn, uint64_t leaf_flags, bool huge);

static inline uint64_t ptk_prot_leaf_flags(unsigned prot)
{
	return PTK_PTE_USER | ((prot & PTK_PROT_WRITE) ? PTK_PTE_WRITE : 0);
}

/* Descend @as to the table at level @target covering @va, allocating
 * missing tables: 0 with path->table[*got] locked and attached (*got is
 * @target, or a higher level holding a leaf over @va), or -ENOMEM (nothing
 * locked).  Inside a read-side section. */
int ptk_descend_alloc(struct ptk_as *as, uint64_t va, unsigned target,
		      struct ptk_path *path, unsigned *got);

/* Anonymous 4 KiB leaves for [start, end), frames zeroed, installed now.
 * -ENOMEM (partial installs are left for the caller to zap). */
int ptk_install_anon(struct ptk_as *as, uint64_t start, uint64_t end,
		     uint64_t leaf_flags);

/* ---- address-space internals shared with kernel.c ------------------------ */

/* Allocate an address space with an empty root (as.c); no registration. */
int ptk_as_alloc(struct ptk_ctx *ctx, unsigned levels, struct ptk_as **out);
/* Free it now (no walker can reach it). */
void ptk_as_free_now(struct ptk_as *as);

/* ---- kernel half (kernel.c) ---------------------------------------------- */

void ptk_kernel_init(struct ptk_ctx *ctx);
/* Free the reference space and every kernel table.  No address space left,
 * no walker. */
void ptk_kernel_fini(struct ptk_ctx *ctx);
/* After the root is allocated: register (per design) and fill the kernel
 * half.  Never fails. */
void ptk_kernel_as_created(struct ptk_as *as);
/* At the start of destroy: unregister.  Never fails. */
void ptk_kernel_as_destroying(struct ptk_as *as);
/* Fault on a kernel address of @as. */
int ptk_kernel_fault(struct ptk_as *as, uint64_t va, unsigned access);

/*
 * A full barrier: orders every earlier store before every later load (the
 * store-buffering pattern needs it; a release/write barrier does not do
 * it).  A seq_cst fence in normal builds.  gcc rejects
 * atomic_thread_fence() under -fsanitize=thread (and TSan does not model
 * fences anyway), so TSan builds use a seq_cst read-modify-write of @word,
 * a variable on a line the caller already owns (a lock-prefixed
 * instruction on x86, fully ordered on ARMv8 and POWER).  Each use names
 * the barrier it pairs with.
 */
#ifdef PTK_TSAN
#define ptk_full_barrier(word) \
	((void)atomic_fetch_add_explicit((word), 0, memory_order_seq_cst))
#else
#define ptk_full_barrier(word) \
	((void)(word), atomic_thread_fence(memory_order_seq_cst))
#endif

/* ---- shared-write counting (kernel.h) ------------------------------------ */

#ifdef PTK_COUNT_WRITES
extern __thread uint64_t ptk_cw_counts[PTK_CW_NR];
#define PTK_COUNT_WRITE(ctx, cat, n) do { \
	if (__builtin_expect(atomic_load_explicit(&(ctx)->count_writes, \
						  memory_order_relaxed), 0)) \
		ptk_cw_counts[(cat)] += (n); \
	} while (0)
#else
#define PTK_COUNT_WRITE(ctx, cat, n) ((void)(ctx))
#endif

#endif /* PTKIT_INTERNAL_H */
