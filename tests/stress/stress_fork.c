/*
 * stress_fork.c - fork chains under fire: owner threads clone, write,
 * drop and destroy their address spaces (copy-on-write everywhere) while
 * other threads take every lock of them (ptk_as_lock_all), unmap frames
 * from every space that maps them (ptk_rmap_unmap_frame, on frames found
 * through translations and on random frame numbers), and walkers translate
 * and pin pages locklessly.
 *
 * Every value written is stamped: owner thread, a sequence number and a
 * checksum in one 64-bit word.  Each owner keeps a model of every page of
 * each of its spaces.  Checks:
 *   - an owner reads back exactly its model, or zero where a page was
 *     unmapped by ptk_rmap_unmap_frame (then refaulted as a zero page; the
 *     model follows): copy-on-write never shows a write of another space;
 *   - walkers only ever see zero or a well-formed stamp of the space's
 *     owner (no torn value, no other thread's value, no poisoned freed
 *     frame: debug builds poison freed frames);
 *   - a notifier registered meanwhile never sees a teardown's end without
 *     its start (registration takes every lock: ptk_as_lock_all);
 *   - after ptk_rmap_unmap_frame(pfn) returns, with the frame pinned,
 *     ptk_rmap_count(pfn) is 0: no space maps it any more, not even one
 *     a concurrent clone copied it into;
 *   - every frame is back in the pool at the end.
 * Runs the sleeping rmap locks, then the spinning ones (the old design),
 * then the spinning ones with every other old design (legacy gather, IPI
 * walkers, lazy TLB).
 *
 * Every space also maps one shared object (clones share it through their
 * links): owners write stamps into it and truncate and regrow it, racing
 * clones, take-all-locks and frame unmaps; its pages must only ever hold
 * zero or some owner's well-formed stamp.
 *
 * Owner operations are a table (owner_ops[]): a new operation is one
 * function and one row.
 *
 * Usage: stress_fork [-s SEED] [-t SECONDS] [-o OWNERS]
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ptkit/ptkit.h"
#include "stress_common.h"

#define MAXO      8
#define SPACES    5                       /* per owner; slot 0 lives throughout */
#define SMALL     48                      /* 4 KiB pages at BASE */
#define HUGEP     8                       /* pages checked in the huge region */
#define NPAGES    (SMALL + HUGEP)
#define BASE      (UINT64_C(1) << 33)
#define HBASE     (UINT64_C(1) << 34)     /* one 2 MiB huge region */
#define MiB       (UINT64_C(1) << 20)
#define OBASE     (UINT64_C(3) << 33)     /* the shared object's mapping */
#define OPAGES    16

static struct ptk_ctx *ctx;
static _Atomic int stop;
static _Atomic unsigned long failures;
static unsigned nowners = 3;
static uint64_t seed;
static _Atomic(struct ptk_as *) anchors[MAXO];   /* each owner's slot 0 */
/* One object mapped shared into every space (clones share it through
 * their links): owners write stamps into it, truncate and regrow it. */
static struct ptk_object *shared_obj;
static _Atomic uint64_t n_truncates, n_obj_writes;
static _Atomic uint64_t n_walks, n_lockall, n_unmaps, n_unmapped, n_zero_reads;

#define FAIL(...) do { fprintf(stderr, __VA_ARGS__); failures++; stop = 1; } while (0)

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13; *s ^= *s >> 7; *s ^= *s << 17;
	return *s;
}

static uint64_t page_va(unsigned i)
{
	return i < SMALL ? BASE + ((uint64_t)i << PTK_PAGE_SHIFT)
			 : HBASE + ((uint64_t)(i - SMALL) * 61 << PTK_PAGE_SHIFT);
}

/* A stamp: owner (8 bits), sequence (24 bits), checksum (32 bits). */
static uint32_t ck(uint32_t x) { x ^= x >> 16; x *= 0x7feb352dU; x ^= x >> 15; return x | 1; }
static uint64_t stamp(unsigned owner, uint32_t seq)
{
	uint32_t hi = (uint32_t)owner << 24 | (seq & 0xffffff);
	return (uint64_t)hi << 32 | ck(hi);
}
static bool stamp_ok(uint64_t v, unsigned owner)
{
	uint32_t hi = (uint32_t)(v >> 32);
	return v == 0 || ((uint32_t)v == ck(hi) && (hi >> 24) == owner);
}

static uint64_t *host_of(uint64_t pfn)
{
	return ptk_pfn_host(ctx, pfn);
}

/* ---- owners -------------------------------------------------------------- */

struct owner {
	unsigned id;
	uint64_t rng;
	uint32_t seq;
	struct ptk_as *as[SPACES];
	uint64_t model[SPACES][NPAGES];
	uint64_t ops, clones, cow_checks;
};

static struct ptk_as *make_space(void)
{
	struct ptk_as *as;
	if (ptk_as_create(ctx, 0, &as))
		return NULL;
	uint64_t va = BASE;
	int rc = ptk_map_anon(as, &va, SMALL << PTK_PAGE_SHIFT,
			      PTK_PROT_READ | PTK_PROT_WRITE, PTK_MAP_FIXED);
	va = HBASE;
	if (!rc)
		rc = ptk_map_anon(as, &va, 2 * MiB, PTK_PROT_READ | PTK_PROT_WRITE,
				  PTK_MAP_FIXED | PTK_MAP_HUGE);
	va = OBASE;
	if (!rc)
		rc = ptk_map_object(as, &va, OPAGES << PTK_PAGE_SHIFT,
				    PTK_PROT_READ | PTK_PROT_WRITE, PTK_MAP_FIXED | PTK_MAP_SHARED,
				    shared_obj, 0);
	if (rc) {
		ptk_as_destroy(as);
		return NULL;
	}
	return as;
}

/* Read page @i of space @k through a pin (the frame cannot be freed and
 * poisoned under the read) and compare with the model. */
static void check_page(struct owner *o, unsigned k, unsigned i)
{
	uint64_t pfn;
	int rc = ptk_pin(o->as[k], page_va(i), 1, PTK_ACCESS_READ, &pfn);
	if (rc) {
		if (rc != -ENOMEM)
			FAIL("owner %u: pin for read failed: %d\n", o->id, rc);
		return;
	}
	uint64_t v = __atomic_load_n(host_of(pfn), __ATOMIC_RELAXED);
	ptk_unpin(ctx, &pfn, 1);
	if (v == o->model[k][i])
		return;
	if (v == 0) {
		/* Unmapped by ptk_rmap_unmap_frame and refaulted zero. */
		o->model[k][i] = 0;
		n_zero_reads++;
		return;
	}
	FAIL("owner %u space %u page %u: read %#" PRIx64 ", model %#" PRIx64
	     " (a write leaked across copy-on-write?)\n", o->id, k, i, v, o->model[k][i]);
}

static void op_write(struct owner *o)
{
	unsigned k = (unsigned)(rnd(&o->rng) % SPACES), i = (unsigned)(rnd(&o->rng) % NPAGES);
	if (!o->as[k])
		return;
	uint64_t pfn, v = stamp(o->id, ++o->seq);
	int rc = ptk_pin(o->as[k], page_va(i), 1, PTK_ACCESS_WRITE, &pfn);
	if (rc) {
		if (rc != -ENOMEM)
			FAIL("owner %u: pin for write failed: %d\n", o->id, rc);
		return;
	}
	__atomic_store_n(host_of(pfn), v, __ATOMIC_RELAXED);
	ptk_unpin(ctx, &pfn, 1);
	o->model[k][i] = v;
	/* The spaces sharing the old frame keep their value. */
	for (unsigned j = 0; j < SPACES; j++)
		if (j != k && o->as[j]) {
			check_page(o, j, i);
			o->cow_checks++;
		}
}

static void op_clone(struct owner *o)
{
	unsigned k = (unsigned)(rnd(&o->rng) % SPACES), j = 1 + (unsigned)(rnd(&o->rng) % (SPACES - 1));
	if (!o->as[k] || o->as[j])
		return;
	int rc = ptk_as_clone(o->as[k], &o->as[j]);
	if (rc) {
		if (rc != -ENOMEM)
			FAIL("owner %u: clone failed: %d\n", o->id, rc);
		o->as[j] = NULL;
		return;
	}
	memcpy(o->model[j], o->model[k], sizeof(o->model[k]));
	o->clones++;
}

static void op_exit(struct owner *o)
{
	unsigned k = 1 + (unsigned)(rnd(&o->rng) % (SPACES - 1));
	if (!o->as[k])
		return;
	ptk_as_destroy(o->as[k]);
	o->as[k] = NULL;
}

static void op_drop(struct owner *o)
{
	unsigned k = (unsigned)(rnd(&o->rng) % SPACES), i = (unsigned)(rnd(&o->rng) % SMALL);
	if (!o->as[k])
		return;
	if (ptk_drop(o->as[k], page_va(i), PTK_PAGE_SIZE))
		FAIL("owner %u: drop failed\n", o->id);
	o->model[k][i] = 0;
}

/* Read-only and back: must not make a shared (COW) frame writable. */
static void op_protect(struct owner *o)
{
	unsigned k = (unsigned)(rnd(&o->rng) % SPACES);
	if (!o->as[k])
		return;
	if (ptk_protect(o->as[k], BASE, SMALL << PTK_PAGE_SHIFT, PTK_PROT_READ) ||
	    ptk_protect(o->as[k], BASE, SMALL << PTK_PAGE_SHIFT,
			PTK_PROT_READ | PTK_PROT_WRITE))
		FAIL("owner %u: protect failed\n", o->id);
}

static void op_check_space(struct owner *o)
{
	unsigned k = (unsigned)(rnd(&o->rng) % SPACES);
	if (!o->as[k])
		return;
	for (unsigned i = 0; i < NPAGES && !stop; i++)
		check_page(o, k, i);
}

/* A stamp of any owner, or zero: what the shared object may hold. */
static bool any_stamp_ok(uint64_t v)
{
	for (unsigned i = 0; i < nowners; i++)
		if (stamp_ok(v, i))
			return true;
	return false;
}

/* Write a stamp into the shared object through one of the owner's spaces
 * (a page beyond the current size refuses: -ENXIO), then read another page
 * through another space: zero or some owner's well-formed stamp. */
static void op_obj_write(struct owner *o)
{
	unsigned k = (unsigned)(rnd(&o->rng) % SPACES), i = (unsigned)(rnd(&o->rng) % OPAGES);
	if (!o->as[k])
		return;
	uint64_t pfn, va = OBASE + ((uint64_t)i << PTK_PAGE_SHIFT);
	int rc = ptk_pin(o->as[k], va, 1, PTK_ACCESS_WRITE, &pfn);
	if (rc == 0) {
		__atomic_store_n(host_of(pfn), stamp(o->id, ++o->seq), __ATOMIC_RELAXED);
		ptk_unpin(ctx, &pfn, 1);
		n_obj_writes++;
	} else if (rc != -ENXIO && rc != -ENOMEM && rc != -EFAULT) {
		FAIL("owner %u: pin of the shared object for write failed: %d\n", o->id, rc);
	}
	k = (unsigned)(rnd(&o->rng) % SPACES);
	i = (unsigned)(rnd(&o->rng) % OPAGES);
	if (!o->as[k])
		return;
	va = OBASE + ((uint64_t)i << PTK_PAGE_SHIFT);
	if (ptk_pin(o->as[k], va, 1, PTK_ACCESS_READ, &pfn) == 0) {
		uint64_t v = __atomic_load_n(host_of(pfn), __ATOMIC_RELAXED);
		ptk_unpin(ctx, &pfn, 1);
		if (!any_stamp_ok(v))
			FAIL("owner %u: shared object page %u holds %#" PRIx64 "\n", o->id, i, v);
	}
}

/* Truncate the shared object under every mapper (racing clones, which
 * link new mappers, and take-all-locks, which holds its rmap lock), then
 * regrow it.  (Other owners may regrow it at once, so what stays mapped is
 * checked by test_object, not here: here the checks are the stamps, the
 * poisoning of freed frames and the final accounting.) */
static void op_truncate(struct owner *o)
{
	unsigned keep = (unsigned)(rnd(&o->rng) % OPAGES);
	if (ptk_object_truncate(shared_obj, (uint64_t)keep << PTK_PAGE_SHIFT)) {
		FAIL("owner %u: truncate failed\n", o->id);
		return;
	}
	n_truncates++;
	if (ptk_object_truncate(shared_obj, (uint64_t)OPAGES << PTK_PAGE_SHIFT))
		FAIL("owner %u: regrow failed\n", o->id);
}

/* The owner's operations and their weights.  Add a row for a new one
 * (e.g. truncate of a shared object mapped by the owner's spaces). */
static const struct owner_op {
	const char *name;
	void (*fn)(struct owner *o);
	unsigned weight;
} owner_ops[] = {
	{ "write",       op_write,       10 },
	{ "clone",       op_clone,        3 },
	{ "exit",        op_exit,         2 },
	{ "drop",        op_drop,         1 },
	{ "protect",     op_protect,      1 },
	{ "check_space", op_check_space,  2 },
	{ "obj_write",   op_obj_write,    3 },
	{ "truncate",    op_truncate,     1 },
};
#define NOPS (sizeof(owner_ops) / sizeof(owner_ops[0]))

static void *owner_main(void *arg)
{
	struct owner *o = arg;
	unsigned total = 0;
	for (unsigned i = 0; i < NOPS; i++)
		total += owner_ops[i].weight;
	while (!stop) {
		unsigned r = (unsigned)(rnd(&o->rng) % total), i = 0;
		while (r >= owner_ops[i].weight)
			r -= owner_ops[i++].weight;
		owner_ops[i].fn(o);
		o->ops++;
	}
	for (unsigned k = 0; k < SPACES; k++)
		for (unsigned i = 0; o->as[k] && i < NPAGES; i++)
			check_page(o, k, i);
	return NULL;
}

/* ---- the others: walkers, take-all-locks, frame unmappers --------------- */

struct helper { unsigned id; uint64_t rng; };

static void *walker_main(void *arg)
{
	struct helper *h = arg;
	while (!stop) {
		unsigned owner = (unsigned)(rnd(&h->rng) % nowners);
		struct ptk_as *as = anchors[owner];
		uint64_t va = page_va((unsigned)(rnd(&h->rng) % NPAGES)), pfn;
		struct ptk_xlate x;
		(void)ptk_translate(as, va, &x);
		if (ptk_pin_fast(as, va, 1, PTK_ACCESS_READ, &pfn) == 1) {
			uint64_t v = __atomic_load_n(host_of(pfn), __ATOMIC_RELAXED);
			ptk_unpin(ctx, &pfn, 1);
			if (!stamp_ok(v, owner))
				FAIL("walker: owner %u's space shows %#" PRIx64 "\n", owner, v);
		}
		n_walks++;
	}
	return NULL;
}

/* A notifier registered and unregistered while everything runs: no
 * teardown may be seen half-notified (an end without its start: it began
 * before the registration, which takes every lock and waits for it). */
struct count_notifier {
	struct ptk_notifier n;
	_Atomic long starts, ends;
};

static void cn_start(struct ptk_notifier *n, struct ptk_as *as, uint64_t s, uint64_t e)
{
	(void)as; (void)s; (void)e;
	struct count_notifier *c = (struct count_notifier *)n;
	c->starts++;
}

static void cn_end(struct ptk_notifier *n, struct ptk_as *as, uint64_t s, uint64_t e)
{
	(void)as; (void)s; (void)e;
	struct count_notifier *c = (struct count_notifier *)n;
	if (++c->ends > c->starts)
		FAIL("notifier: an end without its start (registered mid-teardown)\n");
}

static const struct ptk_notifier_ops cn_ops = {
	.invalidate_range_start = cn_start, .invalidate_range_end = cn_end,
};
static _Atomic uint64_t n_notified;

static void *lockall_main(void *arg)
{
	struct helper *h = arg;
	while (!stop) {
		if (rnd(&h->rng) % 4 == 0) {
			struct ptk_as *as = anchors[rnd(&h->rng) % nowners];
			struct count_notifier cn = { .n = { .ops = &cn_ops } };
			int rc = ptk_notifier_register(as, &cn.n);
			if (rc) {
				if (rc != -ENOMEM)
					FAIL("notifier_register: %d\n", rc);
				continue;
			}
			usleep(200);
			ptk_notifier_unregister(as, &cn.n);
			n_notified += (uint64_t)cn.ends;
			continue;
		}
		struct ptk_as *as = anchors[rnd(&h->rng) % nowners];
		struct ptk_all_locks *l;
		int rc = ptk_as_lock_all(as, &l);
		if (rc) {
			if (rc != -ENOMEM)
				FAIL("lock_all: %d\n", rc);
			continue;
		}
		for (volatile int i = 0; i < 200; i++)
			;
		ptk_as_unlock_all(l);
		n_lockall++;
		usleep(50);
	}
	return NULL;
}

static void *unmapper_main(void *arg)
{
	struct helper *h = arg;
	struct ptk_pool_stats ps;
	ptk_pool_stats(ctx, &ps);
	while (!stop) {
		usleep(20);
		if (rnd(&h->rng) & 1) {
			/* A random frame number: any kind of frame, or free. */
			int rc = ptk_rmap_unmap_frame(ctx, rnd(&h->rng) % ps.capacity);
			if (rc < 0 && rc != -EINVAL && rc != -ENOENT)
				FAIL("unmap_frame(random): %d\n", rc);
			n_unmaps++;
			continue;
		}
		/* A frame some space maps, pinned so it stays this frame. */
		unsigned owner = (unsigned)(rnd(&h->rng) % nowners);
		uint64_t pfn, va = page_va((unsigned)(rnd(&h->rng) % NPAGES));
		if (ptk_pin_fast(anchors[owner], va, 1, PTK_ACCESS_READ, &pfn) != 1)
			continue;
		int rc = ptk_rmap_unmap_frame(ctx, pfn);
		if (rc < 0)
			FAIL("unmap_frame(%#" PRIx64 "): %d\n", pfn, rc);
		int left = ptk_rmap_count(ctx, pfn);
		if (left != 0)
			FAIL("unmap_frame(%#" PRIx64 "): %d mappings left after it\n", pfn, left);
		ptk_unpin(ctx, &pfn, 1);
		n_unmaps++;
		n_unmapped += rc > 0 ? (uint64_t)rc : 0;
	}
	return NULL;
}

static void run(enum ptk_rmap_lock design, bool old, double seconds)
{
	struct ptk_ctx_config cfg;
	ptk_ctx_config_default(&cfg);
	cfg.pool_bytes = 192 * MiB;
	cfg.rmap_lock = design;
	if (old) {
		cfg.gather_mode = PTK_GATHER_LEGACY;
		cfg.walk_mode = PTK_WALK_IPI;
		cfg.tlb_mode = PTK_TLB_LAZY;
	}
	if (ptk_ctx_create(&cfg, &ctx)) {
		FAIL("context creation failed\n");
		return;
	}
	stop = 0;
	n_walks = n_lockall = n_unmaps = n_unmapped = n_zero_reads = n_notified = 0;
	n_truncates = n_obj_writes = 0;
	if (ptk_object_create(ctx, (uint64_t)OPAGES << PTK_PAGE_SHIFT, 0, &shared_obj)) {
		FAIL("object creation failed\n");
		return;
	}
	static struct owner o[MAXO];
	pthread_t ot[MAXO], ht[4];
	struct helper h[4];
	for (unsigned i = 0; i < nowners; i++) {
		memset(&o[i], 0, sizeof(o[i]));
		o[i].id = i;    /* walkers check stamps against the anchor's index */
		o[i].rng = seed * 7919 + i + 1;
		o[i].as[0] = make_space();
		if (!o[i].as[0]) {
			FAIL("could not create a space\n");
			return;
		}
		anchors[i] = o[i].as[0];
	}
	for (unsigned i = 0; i < nowners; i++)
		pthread_create(&ot[i], NULL, owner_main, &o[i]);
	void *(*hf[4])(void *) = { walker_main, walker_main, lockall_main, unmapper_main };
	for (unsigned i = 0; i < 4; i++) {
		h[i] = (struct helper){ .id = i, .rng = seed * 104729 + i + 1 };
		pthread_create(&ht[i], NULL, hf[i], &h[i]);
	}
	struct timespec ts = { (time_t)seconds, (long)((seconds - (time_t)seconds) * 1e9) };
	nanosleep(&ts, NULL);
	/* Every check must run at least once: on a loaded machine go on until
	 * each did, for at most 30 s more (then the final check fails). */
	for (int i = 0; i < 600 && (!n_walks || !n_lockall || !n_unmapped || !n_truncates ||
				    !n_obj_writes); i++) {
		struct timespec step = { 0, 50 * 1000 * 1000 };
		nanosleep(&step, NULL);
	}
	stop = 1;
	for (unsigned i = 0; i < 4; i++)
		pthread_join(ht[i], NULL);
	uint64_t ops = 0, clones = 0, cow = 0;
	for (unsigned i = 0; i < nowners; i++) {
		pthread_join(ot[i], NULL);
		ops += o[i].ops;
		clones += o[i].clones;
		cow += o[i].cow_checks;
		for (unsigned k = 0; k < SPACES; k++)
			ptk_as_destroy(o[i].as[k]);
	}
	ptk_object_release(shared_obj);
	shared_obj = NULL;
	uint64_t in_use, nfree, capacity;
	if (!stress_pool_back(ctx, &in_use, &nfree, &capacity))
		FAIL("stress_fork: %" PRIu64 " frames still in use, %" PRIu64 "/%" PRIu64 " free\n",
		     in_use, nfree, capacity);
	ptk_ctx_destroy(ctx);
	printf("  rmap=%s%s: %" PRIu64 " owner ops, %" PRIu64 " clones, %" PRIu64 " COW checks, %"
	       PRIu64 " walks, %" PRIu64 " lock_all, %" PRIu64 " unmap_frame (%" PRIu64
	       " entries cleared), %" PRIu64 " zero reads after unmap, %" PRIu64
	       " notified teardowns, %" PRIu64 " truncates, %" PRIu64 " object writes\n",
	       design == PTK_RMAP_SPIN ? "spin" : "sleeping",
	       old ? " gather=legacy walk=ipi tlb=lazy" : "", ops, clones, cow,
	       (uint64_t)n_walks, (uint64_t)n_lockall, (uint64_t)n_unmaps,
	       (uint64_t)n_unmapped, (uint64_t)n_zero_reads, (uint64_t)n_notified,
	       (uint64_t)n_truncates, (uint64_t)n_obj_writes);
	fflush(stdout);
	if (!failures && (!clones || !cow || !n_walks || !n_lockall || !n_unmapped ||
			  !n_truncates || !n_obj_writes))
		FAIL("stress_fork: a check never ran\n");
}

int main(int argc, char **argv)
{
	seed = (uint64_t)time(NULL) ^ (uint64_t)getpid();
	double seconds = 3;
	int opt;
	while ((opt = getopt(argc, argv, "s:t:o:")) != -1) {
		switch (opt) {
		case 's': seed = strtoull(optarg, NULL, 0); break;
		case 't': seconds = atof(optarg); break;
		case 'o': nowners = (unsigned)atoi(optarg); break;
		default:
			fprintf(stderr, "usage: %s [-s SEED] [-t SECONDS] [-o OWNERS]\n", argv[0]);
			return 2;
		}
	}
	if (nowners < 1 || nowners > MAXO) {
		fprintf(stderr, "stress_fork: owners must be 1..%d\n", MAXO);
		return 2;
	}
	if (!seed)
		seed = 1;
	printf("stress_fork: seed %" PRIu64 " (rerun with -s %" PRIu64 "), %u owners, %.1f s\n",
	       seed, seed, nowners, seconds);
	fflush(stdout);
	run(PTK_RMAP_SLEEPING, false, seconds * 0.4);
	if (!failures)
		run(PTK_RMAP_SPIN, false, seconds * 0.4);
	if (!failures)
		run(PTK_RMAP_SPIN, true, seconds * 0.2);
	printf("%d passed, %d failed\n", failures == 0, failures != 0);
	return failures ? 1 : 0;
}
