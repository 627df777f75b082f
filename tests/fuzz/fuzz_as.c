/*
 * fuzz_as.c - differential fuzzing of address spaces against the reference
 * model (tests/model/model.h).
 *
 * An input is a sequence of 8-byte operations applied to NAS address spaces
 * of one fresh context.  Addresses fall in a 16 MiB window straddling the
 * 1 GiB line (so 2 MiB blocks, huge leaves and a 1 GiB special leaf collide),
 * lengths are short, 2 MiB aligned or window-sized.  After every operation
 * ptkit's result must equal the model's, and over the touched range (widened
 * to 2 MiB) every page must translate as the model says: present or not,
 * writable or not, special frame number, and for anonymous pages the
 * contents tag written by the last write fault (zero after a drop or a fresh
 * fault).  The region list and the resident-frame counter are compared too.
 * A clone (OP_CLONE: space i forked into slot i+1) shares anonymous pages
 * copy-on-write: the model marks them, a write in one space must never show
 * in the other, and a marked page may be write-protected or not (a 2 MiB
 * leaf left to one space gets write back whole).
 * Two shared memory objects (ptkit/object.h) live in every context, of 256
 * and 384 pages that may grow to 512 and 1024; the model (struct
 * model_object) holds each page's contents tag.  An object page of a
 * mapping must map the object's own frame (the same pfn in every mapping
 * while the cache holds the page) and read as the object does; a private
 * copy must not map it, and keeps its contents through later object
 * writes and punches; truncate takes every page beyond the new size, copies
 * too; a fault at or beyond the size returns -ENXIO.  After each step every
 * object's size and its number of linked mappings (one per object region
 * in every space) equal the model's, and nothing is cached beyond the size.
 * Tolerances, each where ptkit is free: a clone may copy the entries of a
 * shared object mapping or leave them to later faults (it copies none: the
 * model asks the child); which object pages are cached is not compared
 * (a fault that failed may have filled the cache: only "none beyond the
 * size" is checked); a cow page may be writable as above.  Everything else
 * is exact: presence (a shared page is present iff it was faulted since
 * the last zap), the write bit (a private mapping maps the object's pages
 * read-only; a private copy write-protected by a protection change stays
 * so until its next write fault), frames and contents.
 * At the end every page of the window and of each object (ptk_object_read)
 * is checked, the address spaces are destroyed, the objects released (their caches go) and every frame must
 * be back in the pool (resident frames: every non-special leaf, object
 * pages and private copies included; the cache's own references are not
 * a space's).
 *
 * Byte layout of one operation:
 *   b0 op (mod OP_NR)  b1 address space  b2,b3 page in the window
 *   b4 length class and size   b5 prot (bits 0-2), map flags or access
 *   (bits 3-6)   b6 bit 0: 2 MiB-aligned start, bit 1: corrupt an argument
 *   (kind in b7)   b7 misc (frame offset, levels, injection count).
 *
 * Operations beyond the model's own: split (0 iff a huge leaf maps the
 * address, one level down after, same frame), collapse (-EINVAL unless one
 * region covers the aligned block, -EEXIST over a huge leaf, else
 * 0/-EBUSY/-ENOENT, 0 only with all 512 pages present and a 2 MiB leaf
 * after), pin (b7 bit 0: ptk_pin_fast, whose count must equal the model's
 * leading anonymous pages allowing the access; else ptk_pin, which faults
 * in as the model does), unpin (one, or all with b7 bit 0), kmap (b7 bit
 * 0: anonymous, else special; NOREPLACE in a 4 MiB kernel window), kunmap,
 * activate (b7 bit 0: a kernel fault instead, bit 1: ptk_kernel_sync) and tlb (switch the one CPU
 * this thread registers to the space, translate through its TLB).  The
 * kernel window follows its own model (struct model over offsets from the
 * kernel start); every 4-level space must translate it exactly, except
 * that with lazy kernel sync a space not activated since an extension that
 * added a top-level entry may lack it.  Pinned frames must keep their
 * contents (read through ptk_pfn_host) after every step; the CPU's TLB is
 * checked over the step's range whenever it runs the space the step used.
 *
 * Objects (b7 bit 0 picks the object): map_object (b7 bit 1: private, else
 * shared; offset (b7 >> 2) * 8 pages; FIXED, or NOREPLACE with b5 bit 4;
 * b5 bit 6 POPULATE; the length clipped to the object's maximum unless the
 * argument is hostile), truncate (to page (b2,b3) mod max+1; hostile:
 * unaligned or beyond the maximum), punch (from page (b2,b3) mod max, the
 * decoded length), obj_write (1 + b4 mod 4 pages from page (b2,b3) mod max,
 * ptk_object_write of a fresh tag at each page's start, zeros after; pins
 * of those frames follow) and obj_read (1 + b4 mod 16 pages compared with
 * the model, the rest of each page zero).  Results exact, -EINVAL beyond
 * the size included.  Truncate, punch and obj_write change what every
 * space maps: every space is checked over the whole window after them.
 *
 * Designs: when the input's length is not a multiple of 8, the byte after
 * the last whole operation picks them (bits 0-1 kernel_sync mod 3, bit 2
 * walk_mode, bit 3 gather_mode, bit 4 tlb_mode); otherwise the defaults, or
 * fuzz_as_ctx_config (which `ptkit torture` sets at random).
 *
 * Extension point: a new operation is one enum value before OP_NR, one case
 * in run_op() that calls ptkit and the matching model_<op>() and compares
 * the results, and the range it touched (so the step check covers it).
 * Clone and the object operations plugged in there (seeds for them in
 * tests/fuzz/make_seeds.py).
 *
 * Built as a libFuzzer target with clang (fuzz_as_fuzzer), and linked with
 * replay.c into a plain program that replays the corpus and every kept
 * regression input in the normal test suite (fuzz_replay).
 * FUZZ_AS_VERBOSE=1 prints each operation as it runs; FUZZ_AS_SAVE=FILE
 * writes each input to FILE before running it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ptkit/ptkit.h"
#include "fuzz_as.h"
#include "model.h"

#define NAS        3
#define MiB        (UINT64_C(1) << 20)
#define GiB        (UINT64_C(1) << 30)
#define WIN_BASE   (GiB - 8 * MiB)
#define WIN_PAGES  4096u                       /* 16 MiB */
#define WIN_END    (WIN_BASE + (uint64_t)WIN_PAGES * PTK_PAGE_SIZE)
#define POOL_BYTES (256 * MiB)
/* Special frames lie outside the pool (so nobody writes through them) and
 * are 1 GiB aligned, so 1 GiB leaves are possible. */
#define SPECIAL_PFN (UINT64_C(1) << 24)
#define MAX_OPS    512

enum op {
	OP_MAP_ANON, OP_MAP_SPECIAL, OP_MAP_SPECIAL_1G, OP_UNMAP, OP_PROTECT,
	OP_DROP, OP_FAULT, OP_WRITE, OP_POPULATE, OP_TRANSLATE, OP_RECREATE,
	OP_INJECT,
	OP_SPLIT, OP_COLLAPSE, OP_PIN, OP_UNPIN, OP_KMAP, OP_KUNMAP,
	OP_ACTIVATE, OP_TLB, OP_CLONE,
	OP_MAP_OBJECT, OP_TRUNCATE, OP_PUNCH, OP_OBJ_WRITE, OP_OBJ_READ,
	/* new operations go here */
	OP_NR
};
static const char *const op_names[OP_NR] = {
	"map_anon", "map_special", "map_special_1g", "unmap", "protect", "drop",
	"fault", "write", "populate", "translate", "recreate", "inject",
	"split", "collapse", "pin", "unpin", "kmap", "kunmap", "activate", "tlb",
	"clone", "map_object", "truncate", "punch", "obj_write", "obj_read",
};

/* Shared memory objects: NOBJ per context, created at the start with a
 * size of obj_pages[k] pages that may grow to obj_max[k] pages. */
#define NOBJ      2
#define OBJ_MAX_PAGES 1024u
static const uint64_t obj_pages[NOBJ] = { 256, 384 };
static const uint64_t obj_max[NOBJ] = { 512, OBJ_MAX_PAGES };

/* Kernel half: a 4 MiB window straddling a 1 GiB line of the kernel half of
 * 4-level spaces (the context default); the kernel model holds offsets from
 * the kernel start.  5-level spaces have an empty kernel half. */
#define KLEVELS     4
#define KWIN_OFF    (GiB - 2 * MiB)
#define KWIN_PAGES  1024u
#define MAX_PINS    64

struct pin {
	uint64_t pfn;
	uint8_t *host;          /* start of the pinned page */
	uint32_t tag;           /* contents it must keep */
	/* An object's frame: object writes to (obj, pgoff) change it while
	 * the cache holds it (generation gen). */
	const struct model_object *obj;
	uint64_t pgoff;
	uint32_t gen;
};

struct fz {
	struct ptk_ctx *ctx;
	struct ptk_as *as[NAS];
	struct model m[NAS];
	struct model km;        /* kernel half (offsets from the kernel start) */
	uint64_t kstart;
	bool kused;             /* a kernel mapping was ever made */
	bool ksynced[NAS];      /* lazy: activated since the last new top entry */
	struct ptk_ctx_config cfg;
	struct ptk_cpu *cpu;    /* this thread as a CPU, or NULL */
	bool no_cpu;            /* registering failed */
	int cur;                /* address space the CPU is switched to, or -1 */
	struct ptk_object *obj[NOBJ];
	struct model_object mo[NOBJ];
	/* The frame seen mapping each object page, and its generation + 1
	 * (0: none seen): every mapping of the page maps that frame. */
	uint64_t opfn[NOBJ][OBJ_MAX_PAGES];
	uint32_t opfn_gen[NOBJ][OBJ_MAX_PAGES];
	struct pin pins[MAX_PINS];
	unsigned npins;
	uint32_t next_tag;
	unsigned inject_kinds;  /* armed for the next operation */
	long inject_nth;
	unsigned step;
	int verbose;
};

__attribute__((noreturn, format(printf, 2, 3)))
static void fz_fail(const struct fz *f, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "fuzz_as: step %u: ", f->step);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

/* ---- oracles: choices the specification leaves to ptkit ---------------- */

static bool oracle_huge(void *arg, uint64_t va)
{
	struct ptk_xlate x;
	return ptk_translate(arg, va, &x) == 0 && x.level == PTK_LEVEL_PMD;
}

static bool oracle_present(void *arg, uint64_t va)
{
	struct ptk_xlate x;
	return ptk_translate(arg, va, &x) == 0;
}

static bool oracle_writable(void *arg, uint64_t va)
{
	struct ptk_xlate x;
	return ptk_translate(arg, va, &x) == 0 && ptk_pte_write(x.pte);
}

static void set_oracle(struct fz *f, unsigned i)
{
	f->m[i].oracle = (struct model_oracle){ oracle_huge, oracle_present, f->as[i],
						oracle_writable };
}

/* ---- checks -------------------------------------------------------------- */

static void check_page(struct fz *f, unsigned i, uint64_t va)
{
	struct ptk_xlate x;
	struct model_lookup l;
	int rc = ptk_translate(f->as[i], va, &x);
	model_lookup(&f->m[i], va, &l);
	if (!l.present) {
		if (rc != -EFAULT)
			fz_fail(f, "as%u %#" PRIx64 ": translate %d, model: not present", i, va, rc);
		return;
	}
	if (rc != 0)
		fz_fail(f, "as%u %#" PRIx64 ": translate %d, model: present", i, va, rc);
	if (!l.cow && ptk_pte_write(x.pte) != l.writable)
		fz_fail(f, "as%u %#" PRIx64 ": writable %d, model %d", i, va,
			ptk_pte_write(x.pte), l.writable);
	if (l.kind == PTK_REGION_SPECIAL) {
		if (!ptk_pte_special(x.pte) || x.pfn != l.pfn || x.host)
			fz_fail(f, "as%u %#" PRIx64 ": special pfn %#" PRIx64 " (special %d), model %#" PRIx64,
				i, va, x.pfn, ptk_pte_special(x.pte), l.pfn);
		return;
	}
	if (ptk_pte_special(x.pte) || !x.host)
		fz_fail(f, "as%u %#" PRIx64 ": anonymous page is special or outside the pool", i, va);
	if (l.obj) {
		/* An object page maps the object's frame (the same in every
		 * mapping while the cache holds it); a private copy does not. */
		unsigned k = l.obj == &f->mo[0] ? 0 : 1;
		uint32_t gen = l.obj->gen[l.pgoff] + 1;
		bool known = f->opfn_gen[k][l.pgoff] == gen;
		if (l.obj_page && known && x.pfn != f->opfn[k][l.pgoff])
			fz_fail(f, "as%u %#" PRIx64 ": object %u page %#" PRIx64 " maps pfn %#" PRIx64
				", the object's frame is %#" PRIx64, i, va, k, l.pgoff, x.pfn,
				f->opfn[k][l.pgoff]);
		if (l.obj_page && !known) {
			f->opfn[k][l.pgoff] = x.pfn;
			f->opfn_gen[k][l.pgoff] = gen;
		}
		if (!l.obj_page && known && x.pfn == f->opfn[k][l.pgoff])
			fz_fail(f, "as%u %#" PRIx64 ": private copy of object %u page %#" PRIx64
				" maps the object's frame", i, va, k, l.pgoff);
	}
	uint32_t got;
	memcpy(&got, x.host, sizeof(got));
	if (got != l.tag)
		fz_fail(f, "as%u %#" PRIx64 ": contents %u, model %u", i, va, got, l.tag);
}

/* The same page through the CPU's software TLB (read, and write when the
 * model says writable or not): what unmap/protect changed must show. */
static void check_tlb_page(struct fz *f, unsigned i, uint64_t va)
{
	struct ptk_xlate x;
	struct model_lookup l;
	model_lookup(&f->m[i], va, &l);
	int rc = ptk_tlb_translate(f->cpu, va, PTK_ACCESS_READ, &x);
	if (!l.present) {
		if (rc != -EFAULT)
			fz_fail(f, "as%u %#" PRIx64 ": tlb translate %d, model: not present", i, va, rc);
		return;
	}
	if (rc != 0)
		fz_fail(f, "as%u %#" PRIx64 ": tlb translate %d, model: present", i, va, rc);
	if (l.kind == PTK_REGION_SPECIAL) {
		if (x.pfn != l.pfn)
			fz_fail(f, "as%u %#" PRIx64 ": tlb pfn %#" PRIx64 ", model %#" PRIx64, i, va,
				x.pfn, l.pfn);
	} else {
		uint32_t got;
		if (!x.host)
			fz_fail(f, "as%u %#" PRIx64 ": tlb gave no host page", i, va);
		memcpy(&got, x.host, sizeof(got));
		if (got != l.tag)
			fz_fail(f, "as%u %#" PRIx64 ": tlb contents %u, model %u", i, va, got, l.tag);
	}
	rc = ptk_tlb_translate(f->cpu, va, PTK_ACCESS_WRITE, &x);
	if (l.cow ? rc != 0 && rc != -EACCES : rc != (l.writable ? 0 : -EACCES))
		fz_fail(f, "as%u %#" PRIx64 ": tlb write translate %d, model writable %d", i, va,
			rc, l.writable);
}

/* Kernel page at offset @off in space @i (directly, and through the TLB
 * when the CPU runs @i). */
static void check_kernel_page(struct fz *f, unsigned i, uint64_t off)
{
	struct ptk_xlate x;
	struct model_lookup l;
	uint64_t va = f->kstart + off;
	bool shares = ptk_as_levels(f->as[i]) == KLEVELS;
	model_lookup(&f->km, off, &l);
	for (int tlb = 0; tlb < 2; tlb++) {
		if (tlb && (!f->cpu || f->cur != (int)i))
			break;
		int rc = tlb ? ptk_tlb_translate(f->cpu, va, PTK_ACCESS_READ, &x) :
			       ptk_translate(f->as[i], va, &x);
		if (!shares || !l.present) {
			if (rc != -EFAULT)
				fz_fail(f, "as%u kernel %#" PRIx64 ": %stranslate %d, model: not present",
					i, va, tlb ? "tlb " : "", rc);
			continue;
		}
		if (rc == -EFAULT && !f->ksynced[i])
			continue;       /* lazy: not activated since the extension */
		if (rc != 0)
			fz_fail(f, "as%u kernel %#" PRIx64 ": %stranslate %d, model: present (synced %d)",
				i, va, tlb ? "tlb " : "", rc, f->ksynced[i]);
		if (ptk_pte_write(x.pte) != l.writable)
			fz_fail(f, "as%u kernel %#" PRIx64 ": %swritable %d (special %d pfn %#" PRIx64
				" level %u), model %d (kind %d)", i, va, tlb ? "tlb " : "", ptk_pte_write(x.pte),
				ptk_pte_special(x.pte), x.pfn, x.level, l.writable, l.kind);
		if (l.kind == PTK_REGION_SPECIAL) {
			if (x.pfn != l.pfn)
				fz_fail(f, "as%u kernel %#" PRIx64 ": pfn %#" PRIx64 ", model %#" PRIx64,
					i, va, x.pfn, l.pfn);
		} else {
			uint32_t got;
			if (!x.host)
				fz_fail(f, "as%u kernel %#" PRIx64 ": anonymous page outside the pool", i, va);
			memcpy(&got, x.host, sizeof(got));
			if (got != 0)
				fz_fail(f, "as%u kernel %#" PRIx64 ": contents %u, not zero", i, va, got);
		}
	}
}

static void check_kernel(struct fz *f, uint64_t off, uint64_t end)
{
	if (!f->kused)
		return;
	for (unsigned i = 0; i < NAS; i++) {
		if (!f->as[i])
			continue;
		unsigned missing = ptk_as_kernel_missing(f->as[i]);
		if (f->ksynced[i] && missing)
			fz_fail(f, "as%u lacks %u kernel top-level entries (synced)", i, missing);
		for (uint64_t o = off; o < end; o += PTK_PAGE_SIZE)
			check_kernel_page(f, i, o);
	}
}

/* Pinned frames keep their contents whatever happened to the mapping. */
static void check_pins(struct fz *f)
{
	for (unsigned k = 0; k < f->npins; k++) {
		uint32_t got;
		memcpy(&got, f->pins[k].host, sizeof(got));
		if (got != f->pins[k].tag)
			fz_fail(f, "pin %u (pfn %#" PRIx64 "): contents %u, expected %u", k,
				f->pins[k].pfn, got, f->pins[k].tag);
	}
}

struct region_list { struct ptk_region_info v[256]; unsigned n; };

static int collect(const struct ptk_region_info *r, void *arg)
{
	struct region_list *l = arg;
	if (l->n == 256)
		return 1;
	l->v[l->n++] = *r;
	return 0;
}

static void check_space(struct fz *f, unsigned i, uint64_t start, uint64_t end)
{
	if (!f->as[i])
		return;
	start &= ~(PTK_HUGE_2M - 1);
	end = (end + PTK_HUGE_2M - 1) & ~(PTK_HUGE_2M - 1);
	if (start < WIN_BASE)
		start = WIN_BASE;
	if (end > WIN_END || end < start)
		end = WIN_END;
	for (uint64_t va = start; va < end; va += PTK_PAGE_SIZE)
		check_page(f, i, va);
	if (f->cpu && f->cur == (int)i)
		for (uint64_t va = start; va < end; va += PTK_PAGE_SIZE)
			check_tlb_page(f, i, va);
	check_pins(f);
	struct region_list l = { .n = 0 };
	if (ptk_region_foreach(f->as[i], collect, &l))
		fz_fail(f, "as%u: more than 256 regions", i);
	const struct model *m = &f->m[i];
	if (l.n != m->nr)
		fz_fail(f, "as%u: %u regions, model %zu", i, l.n, m->nr);
	for (unsigned k = 0; k < l.n; k++) {
		const struct model_region *r = &m->r[k];
		if (l.v[k].start != r->start || l.v[k].end != r->end ||
		    l.v[k].prot != r->prot || l.v[k].kind != r->kind ||
		    l.v[k].flags != r->flags)
			fz_fail(f, "as%u: region %u [%#" PRIx64 ", %#" PRIx64 ") prot %u kind %d flags %u,"
				" model [%#" PRIx64 ", %#" PRIx64 ") prot %u kind %d flags %u", i, k,
				l.v[k].start, l.v[k].end, l.v[k].prot, l.v[k].kind, l.v[k].flags,
				r->start, r->end, r->prot, r->kind, r->flags);
	}
	struct ptk_as_stats st;
	ptk_as_stats(f->as[i], &st);
	if (st.rss_frames != model_rss(m))
		fz_fail(f, "as%u: %" PRIu64 " resident frames, model %" PRIu64, i,
			st.rss_frames, model_rss(m));
}

static void expect(struct fz *f, const char *what, int got, int want)
{
	if (got != want)
		fz_fail(f, "%s returned %d, model %d", what, got, want);
}

/* ---- the context --------------------------------------------------------- */

/* @mode: the design byte (trailer of the input) or -1: bits 0-1
 * kernel_sync (mod 3), bit 2 walk_mode, bit 3 gather_mode, bit 4 tlb_mode. */
static void fz_begin(struct fz *f, int mode)
{
	memset(f, 0, sizeof(*f));
	f->verbose = getenv("FUZZ_AS_VERBOSE") != NULL;
	f->next_tag = 1;
	struct ptk_ctx_config cfg;
	ptk_ctx_config_default(&cfg);
	if (fuzz_as_ctx_config)
		cfg = *fuzz_as_ctx_config;
	else
		cfg.cache_shards = 2;
	if (!fuzz_as_ctx_config && mode >= 0) {
		cfg.kernel_sync = (enum ptk_kernel_sync)((mode & 3) % 3);
		cfg.walk_mode = (enum ptk_walk_mode)((mode >> 2) & 1);
		cfg.gather_mode = (enum ptk_gather_mode)((mode >> 3) & 1);
		cfg.tlb_mode = (enum ptk_tlb_mode)((mode >> 4) & 1);
	}
	cfg.pool_bytes = POOL_BYTES;
	cfg.levels = KLEVELS;
	f->cfg = cfg;
	if (f->verbose)
		fprintf(stderr, "designs: kernel_sync %d walk %d gather %d tlb %d\n",
			cfg.kernel_sync, cfg.walk_mode, cfg.gather_mode, cfg.tlb_mode);
	int rc = ptk_ctx_create(&cfg, &f->ctx);
	if (rc)
		fz_fail(f, "cannot create a context: %d", rc);
	f->kstart = ptk_kernel_start(KLEVELS);
	model_init(&f->km, KLEVELS);
	f->cur = -1;    /* the CPU is registered at the first tlb operation */
	for (unsigned i = 0; i < NAS; i++) {
		if (ptk_as_create(f->ctx, 0, &f->as[i]))
			fz_fail(f, "cannot create an address space");
		model_init(&f->m[i], ptk_as_levels(f->as[i]));
		set_oracle(f, i);
		f->ksynced[i] = true;
	}
	for (unsigned k = 0; k < NOBJ; k++) {
		rc = ptk_object_create(f->ctx, obj_pages[k] * PTK_PAGE_SIZE,
				       obj_max[k] * PTK_PAGE_SIZE, &f->obj[k]);
		if (rc)
			fz_fail(f, "cannot create an object: %d", rc);
		model_object_init(&f->mo[k], obj_pages[k] * PTK_PAGE_SIZE,
				  obj_max[k] * PTK_PAGE_SIZE);
	}
}

/* Objects: the size, the mappings linked (one per object region in every
 * space), nothing cached beyond the size. */
static void check_objects(struct fz *f)
{
	for (unsigned k = 0; k < NOBJ; k++) {
		struct ptk_object_stats st;
		ptk_object_stats(f->obj[k], &st);
		uint64_t maps = 0;
		for (unsigned i = 0; i < NAS; i++)
			if (f->as[i])
				maps += model_object_mappings(&f->m[i], &f->mo[k]);
		if (st.size != f->mo[k].size || ptk_object_size(f->obj[k]) != f->mo[k].size)
			fz_fail(f, "object %u: size %#" PRIx64 ", model %#" PRIx64, k, st.size,
				f->mo[k].size);
		if (st.mappings != maps)
			fz_fail(f, "object %u: %" PRIu64 " mappings, model %" PRIu64, k,
				st.mappings, maps);
		if (st.cached_pages > st.size / PTK_PAGE_SIZE)
			fz_fail(f, "object %u: %" PRIu64 " pages cached, size %" PRIu64 " pages", k,
				st.cached_pages, st.size / PTK_PAGE_SIZE);
	}
}

static bool ksync_lazy(const struct fz *f)
{
	return f->cfg.kernel_sync == PTK_KSYNC_LAZY;
}

static void unpin_all(struct fz *f)
{
	for (unsigned k = 0; k < f->npins; k++)
		ptk_unpin(f->ctx, &f->pins[k].pfn, 1);
	f->npins = 0;
}

/* Every page of object @k below its size reads as the model says: its tag
 * at the start, zeros after. */
static void check_object_contents(struct fz *f, unsigned k)
{
	static uint8_t page[PTK_PAGE_SIZE];
	static const uint8_t zero[PTK_PAGE_SIZE];
	for (uint64_t p = 0; p < f->mo[k].size / PTK_PAGE_SIZE; p++) {
		uint32_t got;
		int rc = ptk_object_read(f->obj[k], p * PTK_PAGE_SIZE, page, PTK_PAGE_SIZE);
		if (rc)
			fz_fail(f, "object %u page %#" PRIx64 ": read returned %d", k, p, rc);
		memcpy(&got, page, sizeof(got));
		if (got != f->mo[k].tag[p] || memcmp(page + sizeof(got), zero, sizeof(page) - sizeof(got)))
			fz_fail(f, "object %u page %#" PRIx64 ": read %u (rest zero %d), model %u", k, p,
				got, !memcmp(page + sizeof(got), zero, sizeof(page) - sizeof(got)),
				f->mo[k].tag[p]);
	}
}

static void fz_end(struct fz *f)
{
	for (unsigned i = 0; i < NAS; i++)
		check_space(f, i, WIN_BASE, WIN_END);
	for (unsigned k = 0; k < NOBJ; k++)
		check_object_contents(f, k);
	check_kernel(f, KWIN_OFF, KWIN_OFF + (uint64_t)KWIN_PAGES * PTK_PAGE_SIZE);
	if (f->cpu)
		ptk_cpu_unregister(f->cpu);
	f->cpu = NULL;
	unpin_all(f);
	for (unsigned i = 0; i < NAS; i++) {
		if (f->as[i])
			ptk_as_destroy(f->as[i]);
		f->as[i] = NULL;
		model_free(&f->m[i]);
	}
	/* No mapping left: the objects (and their caches) go with the
	 * creator's reference. */
	check_objects(f);
	for (unsigned k = 0; k < NOBJ; k++) {
		ptk_object_release(f->obj[k]);
		model_object_free(&f->mo[k]);
	}
	/* Kernel mappings go too; the tables root slots point to stay until
	 * the context is destroyed (kernel.h, I1). */
	if (f->kused)
		expect(f, "kunmap(all)", ptk_kunmap(f->ctx, f->kstart + KWIN_OFF,
						    (uint64_t)KWIN_PAGES * PTK_PAGE_SIZE), 0);
	model_free(&f->km);
	ptk_ctx_quiesce(f->ctx);
	struct ptk_kernel_stats ks = { 0 };
	if (f->kused)
		ptk_kernel_stats(f->ctx, &ks);
	if (ks.rss_frames)
		fz_fail(f, "kernel: %" PRIu64 " anonymous frames after kunmap", ks.rss_frames);
	struct ptk_pool_stats ps;
	ptk_pool_stats(f->ctx, &ps);
	for (unsigned t = 0; t < PTK_FRAME_NR_TYPES; t++) {
		uint64_t want = t == PTK_FRAME_TABLE ? ks.table_pages : 0;
		if (ps.in_use[t] != want)
			fz_fail(f, "frame accounting: %" PRIu64 " frames of type %u still in use,"
				" expected %" PRIu64, ps.in_use[t], t, want);
	}
	if (ps.free + ks.table_pages != ps.capacity || ps.allocs != ps.frees + ks.table_pages)
		fz_fail(f, "frame accounting: %" PRIu64 "/%" PRIu64 " free, %" PRIu64
			" allocs, %" PRIu64 " frees, %" PRIu64 " kernel tables", ps.free,
			ps.capacity, ps.allocs, ps.frees, ks.table_pages);
	ptk_ctx_destroy(f->ctx);
}

/* ---- one operation ------------------------------------------------------- */

struct args {
	unsigned i;
	uint64_t va, len;
	unsigned prot, flags, access;
	uint64_t pfn;
	uint8_t misc;
};

static void decode(const uint8_t *b, struct args *a)
{
	a->i = b[1] % NAS;
	uint64_t page = (uint64_t)(b[2] | b[3] << 8) % WIN_PAGES;
	if (b[6] & 1)
		page &= ~(uint64_t)511;
	uint64_t n;
	switch (b[4] >> 6) {
	case 0:  n = 1 + (b[4] & 15); break;
	case 1:  n = 1 + (uint64_t)(b[4] & 63) * 8; break;
	case 2:  n = (uint64_t)((b[4] & 3) + 1) * 512; break;
	default: n = WIN_PAGES; break;
	}
	if (page + n > WIN_PAGES)
		n = WIN_PAGES - page;
	a->va = WIN_BASE + page * PTK_PAGE_SIZE;
	a->len = n * PTK_PAGE_SIZE;
	a->prot = b[5] & 7;
	a->flags = (b[5] >> 3) & 0xf;
	a->access = ((b[5] >> 3) & 0xf) % 3;
	a->misc = b[7];
	a->pfn = SPECIAL_PFN + ((b[6] & 1) ? (uint64_t)b[7] * 512 : b[7]);
	if (b[6] & 2) {         /* hostile argument */
		switch (b[7] % 7) {
		case 0: a->va += 1 + b[7] % 4095; break;
		case 1: a->len = 0; break;
		case 2: a->len += 1 + b[7] % 4095; break;
		case 3: a->flags |= 1u << (4 + b[7] % 28); break;
		case 4: a->prot |= 8u << (b[7] % 28); a->access = 3 + b[7] % 8; break;
		case 5: a->len = UINT64_MAX - 4095 - (a->va & ~UINT64_C(4095)); break;
		case 6: a->va = UINT64_MAX - 4095; a->pfn = UINT64_MAX - 7; break;
		}
	}
}

/* Whether any page the model holds in [va, end) is still present in ptkit. */
static bool pages_still_there(struct fz *f, unsigned i, uint64_t va, uint64_t end)
{
	const struct model *m = &f->m[i];
	for (size_t k = 0; k < m->np; k++) {
		uint64_t a = m->p[k].pn * PTK_PAGE_SIZE;
		if (a >= va && a < end && oracle_present(f->as[i], a))
			return true;
	}
	return false;
}

static bool any_region(struct fz *f, unsigned i, uint64_t va, uint64_t end)
{
	struct region_list l = { .n = 0 };
	ptk_region_foreach(f->as[i], collect, &l);
	for (unsigned k = 0; k < l.n; k++)
		if (l.v[k].start < end && l.v[k].end > va)
			return true;
	return false;
}

static void run_op(struct fz *f, const uint8_t *b)
{
	enum op op = (enum op)(b[0] % OP_NR);
	struct args a;
	decode(b, &a);
	unsigned i = a.i;
	if (f->verbose)
		fprintf(stderr, "step %u: %s as%u va %#" PRIx64 " len %#" PRIx64
			" prot %u flags %#x access %u pfn %#" PRIx64 " misc %u\n", f->step,
			op_names[op], i, a.va, a.len, a.prot, a.flags, a.access, a.pfn, a.misc);
	if (!f->as[i] && op != OP_RECREATE)
		return;
	bool armed = f->inject_kinds != 0 && op != OP_INJECT;
	if (armed) {
		ptk_ctx_inject_failure(f->ctx, f->inject_kinds, f->inject_nth);
		f->m[i].may_fail = true;
	}
	/* Per-operation results and model effects. */
	int rc, want;
	bool fired = false;
#define DISARM() do { if (armed) { fired = ptk_ctx_inject_failure(f->ctx, 0, 0) == 0; \
	f->inject_kinds = 0; } } while (0)
	uint64_t check_lo = a.va, check_hi = a.va + a.len;
	switch (op) {
	case OP_MAP_ANON:
	case OP_MAP_SPECIAL:
	case OP_MAP_SPECIAL_1G: {
		enum ptk_region_kind kind = op == OP_MAP_ANON ? PTK_REGION_ANON :
					    PTK_REGION_SPECIAL;
		if (op == OP_MAP_SPECIAL_1G) {
			a.va = GiB;
			a.len = (a.misc & 1) ? 2 * GiB : GiB;
			a.pfn = SPECIAL_PFN;
			a.flags = PTK_MAP_HUGE | ((a.misc & 2) ? PTK_MAP_NOREPLACE : PTK_MAP_FIXED);
		}
		uint64_t v = a.va;
		rc = kind == PTK_REGION_ANON ?
			ptk_map_anon(f->as[i], &v, a.len, a.prot, a.flags) :
			ptk_map_special(f->as[i], &v, a.len, a.pfn, a.prot, a.flags);
		DISARM();
		if (fired && rc == -ENOMEM) {
			/* Failed on the injected allocation: nothing changed, or
			 * a fixed map had replaced the range, which is empty now. */
			bool fixed = a.flags & (PTK_MAP_FIXED | PTK_MAP_NOREPLACE);
			if (fixed && !any_region(f, i, a.va, a.va + a.len))
				model_unmap(&f->m[i], a.va, a.len);
			break;
		}
		uint64_t mva = a.va;
		want = model_map(&f->m[i], &mva, a.len, a.prot, a.flags, kind, a.pfn);
		expect(f, op_names[op], rc, want);
		if (!rc && mva != v)
			fz_fail(f, "map placed at %#" PRIx64 ", model %#" PRIx64, v, mva);
		if (!rc)
			check_lo = v, check_hi = v + a.len;
		break;
	}
	case OP_UNMAP:
		rc = ptk_unmap(f->as[i], a.va, a.len);
		DISARM();
		if (fired && rc == -ENOMEM)
			break;          /* boundary split failed: nothing changed */
		expect(f, "unmap", rc, model_unmap(&f->m[i], a.va, a.len));
		break;
	case OP_PROTECT:
		rc = ptk_protect(f->as[i], a.va, a.len, a.prot);
		DISARM();
		if (fired && rc == -ENOMEM)
			break;
		expect(f, "protect", rc, model_protect(&f->m[i], a.va, a.len, a.prot));
		break;
	case OP_DROP:
		rc = ptk_drop(f->as[i], a.va, a.len);
		DISARM();
		if (fired && rc == -ENOMEM) {
			/* A boundary split failed (nothing dropped: the pages
			 * are all still there), or a part of the range is
			 * unmapped (the rest dropped). */
			if (!pages_still_there(f, i, a.va, a.va + a.len))
				model_drop(&f->m[i], a.va, a.len);
			break;
		}
		expect(f, "drop", rc, model_drop(&f->m[i], a.va, a.len));
		break;
	case OP_FAULT:
		for (uint64_t k = 0; k < a.len && k < 16 * PTK_PAGE_SIZE; k += PTK_PAGE_SIZE) {
			/* Faults need not be page aligned. */
			uint64_t va = a.va + k + (a.misc & 1 ? a.misc * 8 : 0);
			rc = ptk_fault(f->as[i], va, a.access);
			want = model_fault(&f->m[i], va, a.access);
			expect(f, "fault", rc, want);
		}
		DISARM();
		break;
	case OP_WRITE:
		for (uint64_t k = 0; k < a.len && k < 16 * PTK_PAGE_SIZE; k += PTK_PAGE_SIZE) {
			struct ptk_xlate x;
			uint64_t va = a.va + k;
			rc = ptk_translate_fault(f->as[i], va, PTK_ACCESS_WRITE, &x);
			want = model_translate_fault(&f->m[i], va, PTK_ACCESS_WRITE);
			expect(f, "translate_fault(write)", rc, want);
			if (rc == 0) {
				if (!x.host || ptk_pte_special(x.pte)) {
					struct model_lookup l;
					model_lookup(&f->m[i], va, &l);
					if (l.kind != PTK_REGION_SPECIAL)
						fz_fail(f, "write fault gave no host page");
					continue;
				}
				/* The tag lives at the start of the page (va may be
				 * unaligned: x.host points at va's byte). */
				uint32_t tag = f->next_tag++;
				uint8_t *page = (uint8_t *)x.host - (va & (PTK_PAGE_SIZE - 1));
				memcpy(page, &tag, sizeof(tag));
				model_set_tag(&f->m[i], va, tag);
				for (unsigned k = 0; k < f->npins; k++)
					if (f->pins[k].host == page)
						f->pins[k].tag = tag;
			}
		}
		DISARM();
		break;
	case OP_POPULATE:
		rc = ptk_populate(f->as[i], a.va, a.len, a.access);
		want = model_populate(&f->m[i], a.va, a.len, a.access);
		DISARM();
		expect(f, "populate", rc, want);
		break;
	case OP_TRANSLATE: {
		struct ptk_xlate x;
		expect(f, "translate(NULL out)", ptk_translate(f->as[i], a.va, NULL), -EINVAL);
		uint64_t va = a.va + (a.misc & 0xff8);
		rc = ptk_translate(f->as[i], va, &x);
		struct model_lookup l;
		model_lookup(&f->m[i], va, &l);
		expect(f, "translate", rc, l.present ? 0 : -EFAULT);
		DISARM();
		break;
	}
	case OP_RECREATE: {
		if (f->cpu && f->cur == (int)i) {
			ptk_cpu_switch(f->cpu, NULL);
			f->cur = -1;
		}
		f->ksynced[i] = !ksync_lazy(f);
		ptk_as_destroy(f->as[i]);
		f->as[i] = NULL;
		model_free(&f->m[i]);
		unsigned levels = 4 + (a.misc & 1);
		rc = ptk_as_create(f->ctx, levels, &f->as[i]);
		DISARM();
		model_init(&f->m[i], levels);
		if (rc == -ENOMEM && fired) {
			f->as[i] = NULL;
			break;
		}
		expect(f, "as_create", rc, 0);
		set_oracle(f, i);
		break;
	}
	case OP_SPLIT: {
		/* Split the huge leaf at va: translations unchanged but for
		 * the leaf size (check_space compares everything else). */
		struct ptk_xlate x0, x1;
		uint64_t va = a.va + (a.misc & 0xff8);
		bool huge = ptk_translate(f->as[i], va, &x0) == 0 && x0.level > PTK_LEVEL_PTE;
		rc = ptk_split(f->as[i], va);
		DISARM();
		if (f->verbose)
			fprintf(stderr, "  split %#" PRIx64 " (huge %d) -> %d\n", va, huge, rc);
		if (fired && rc == -ENOMEM)
			break;
		if (va >= ptk_as_user_end(f->as[i]))
			expect(f, "split(kernel)", rc, -EINVAL);
		else
			expect(f, "split", rc, huge ? 0 : -ENOENT);
		if (rc == 0 && (ptk_translate(f->as[i], va, &x1) || x1.level != x0.level - 1 ||
				x1.pfn != x0.pfn))
			fz_fail(f, "split: level %u pfn %#" PRIx64 " -> level %u pfn %#" PRIx64,
				x0.level, x0.pfn, x1.level, x1.pfn);
		check_lo = va, check_hi = va + 1;
		break;
	}
	case OP_COLLAPSE: {
		/* May refuse (-EBUSY, -ENOENT); when it succeeds the block is
		 * one 2 MiB leaf and nothing else visible changed. */
		uint64_t va = (a.misc & 1) ? a.va : a.va & ~(PTK_HUGE_2M - 1);
		struct ptk_xlate x;
		bool huge = ptk_translate(f->as[i], va, &x) == 0 && x.level > PTK_LEVEL_PTE;
		unsigned present = 0;
		for (uint64_t o = 0; o < PTK_HUGE_2M && va + o >= va; o += PTK_PAGE_SIZE)
			present += oracle_present(f->as[i], va + o);
		/* One region over the whole block (regions are never merged,
		 * and a leaf never straddles a region boundary). */
		bool one_region = (va & (PTK_HUGE_2M - 1)) == 0 && va < ptk_as_user_end(f->as[i]);
		if (one_region) {
			long r0 = model_region_index(&f->m[i], va);
			one_region = r0 >= 0 &&
				     model_region_index(&f->m[i], va + PTK_HUGE_2M - 1) == r0;
		}
		rc = ptk_collapse(f->as[i], va);
		DISARM();
		if (f->verbose)
			fprintf(stderr, "  collapse %#" PRIx64 " (one region %d, huge %d, %u present) -> %d\n",
				va, one_region, huge, present, rc);
		if (!one_region)
			expect(f, "collapse", rc, -EINVAL);
		else if (huge)
			expect(f, "collapse(huge)", rc, -EEXIST);
		else if (rc == 0 && present != 512)
			fz_fail(f, "collapse succeeded with %u pages present", present);
		else if (rc == -ENOENT && present)
			fz_fail(f, "collapse: -ENOENT with %u pages present", present);
		else if (rc != 0 && rc != -EBUSY && rc != -ENOENT)
			fz_fail(f, "collapse returned %d", rc);
		if (rc == 0 && (ptk_translate(f->as[i], va, &x) || x.level != PTK_LEVEL_PMD))
			fz_fail(f, "collapse: no 2 MiB leaf after success");
		check_lo = va, check_hi = va + PTK_HUGE_2M;
		break;
	}
	case OP_PIN: {
		/* misc bit 0: ptk_pin_fast (leading pages already mapped
		 * for the access), else ptk_pin (faults the rest in). */
		unsigned n = (unsigned)(a.len / PTK_PAGE_SIZE);
		unsigned access = a.access % 2;
		if (n > 16)
			n = 16;
		if (n > MAX_PINS - f->npins)
			n = MAX_PINS - f->npins;
		uint64_t pfns[16];
		unsigned got;
		struct model *m = &f->m[i];
		if (a.misc & 1) {
			got = ptk_pin_fast(f->as[i], a.va, n, access, pfns);
			DISARM();
			/* Leading pages pinnable: at least want_n, at most
			 * max_n when cow pages (writable or not) come first. */
			unsigned want_n = 0, max_n = 0;
			bool sure = true;
			for (; (a.va & (PTK_PAGE_SIZE - 1)) == 0 && max_n < n; max_n++) {
				struct model_lookup l;
				uint64_t va = a.va + (uint64_t)max_n * PTK_PAGE_SIZE;
				if (va >= m->user_end)
					break;
				model_lookup(m, va, &l);
				if (!l.present ||
				    (l.kind != PTK_REGION_ANON && l.kind != PTK_REGION_OBJECT) ||
				    (access == PTK_ACCESS_WRITE && !l.writable && !l.cow))
					break;
				if (access == PTK_ACCESS_WRITE && l.cow)
					sure = false;
				if (sure)
					want_n++;
			}
			if (got < want_n || got > max_n)
				fz_fail(f, "pin_fast pinned %u, model %u..%u", got, want_n, max_n);
		} else {
			access = (b[6] & 2) ? a.access : access;
			rc = ptk_pin(f->as[i], a.va, n, access, pfns);
			DISARM();
			want = 0;
			bool bad = (a.va & (PTK_PAGE_SIZE - 1)) || access > PTK_ACCESS_WRITE ||
				   a.va + (uint64_t)n * PTK_PAGE_SIZE < a.va ||
				   a.va + (uint64_t)n * PTK_PAGE_SIZE > m->user_end;
			if (bad)
				want = -EINVAL;
			for (unsigned k = 0; !bad && k < n && !want; k++) {
				uint64_t va = a.va + (uint64_t)k * PTK_PAGE_SIZE;
				struct model_lookup l;
				model_lookup(m, va, &l);
				if (l.kind == PTK_REGION_SPECIAL)
					want = -EFAULT;
				else
					want = model_translate_fault(m, va, access);
			}
			if (fired && rc == -ENOMEM) {
				/* The model faulted in what ptkit did not (it
				 * stops at the failed page): drop those. */
				for (unsigned k = 0; !bad && k < n; k++) {
					uint64_t va = a.va + (uint64_t)k * PTK_PAGE_SIZE;
					struct model_lookup l;
					model_lookup(m, va, &l);
					if (l.present && l.kind != PTK_REGION_SPECIAL &&
					    !oracle_present(f->as[i], va))
						model_drop(m, va, PTK_PAGE_SIZE);
				}
				got = 0;
			} else {
				expect(f, "pin", rc, want);
				got = rc ? 0 : n;
			}
		}
		if (f->verbose)
			fprintf(stderr, "  pinned %u of %u (%u pins)\n", got, n, f->npins + got);
		for (unsigned k = 0; k < got; k++) {
			uint8_t *host = ptk_pfn_host(f->ctx, pfns[k]);
			struct model_lookup l;
			model_lookup(m, a.va + (uint64_t)k * PTK_PAGE_SIZE, &l);
			if (!host)
				fz_fail(f, "pinned pfn %#" PRIx64 " outside the pool", pfns[k]);
			f->pins[f->npins++] = (struct pin){ pfns[k], host, l.tag,
							    l.obj_page ? l.obj : NULL, l.pgoff,
							    l.obj ? l.obj->gen[l.pgoff] : 0 };
		}
		break;
	}
	case OP_UNPIN:
		DISARM();
		if (!f->npins)
			break;
		if (a.misc & 1) {
			unpin_all(f);
		} else {
			unsigned k = a.misc % f->npins;
			ptk_unpin(f->ctx, &f->pins[k].pfn, 1);
			f->pins[k] = f->pins[--f->npins];
		}
		break;
	case OP_KMAP: {
		/* Exactly at a page of the kernel window (NOREPLACE). */
		uint64_t off = KWIN_OFF + (a.va - WIN_BASE) % ((uint64_t)KWIN_PAGES * PTK_PAGE_SIZE);
		uint64_t len = a.len;
		if (len > KWIN_OFF + (uint64_t)KWIN_PAGES * PTK_PAGE_SIZE - off)
			len = KWIN_OFF + (uint64_t)KWIN_PAGES * PTK_PAGE_SIZE - off;
		bool anon = a.misc & 1;
		unsigned flags = PTK_MAP_NOREPLACE | (anon ? 0 : (a.flags & PTK_MAP_HUGE));
		uint64_t va = f->kstart + off, gen0 = 0, pfn = a.pfn & ~(uint64_t)(b[6] & 1 ? 511 : 0);
		struct ptk_kernel_stats ks;
		if (f->kused) {
			ptk_kernel_stats(f->ctx, &ks);
			gen0 = ks.generation;
		}
		rc = anon ? ptk_kmap_anon(f->ctx, &va, len, a.prot, flags) :
			    ptk_kmap_special(f->ctx, &va, len, pfn, a.prot, flags);
		DISARM();
		f->kused = true;
		/* Even a failed kmap may add top-level entries (they stay,
		 * kernel.h I1): lazy spaces lack them until activated. */
		ptk_kernel_stats(f->ctx, &ks);
		if (ks.generation != gen0 && ksync_lazy(f))
			for (unsigned k = 0; k < NAS; k++)
				f->ksynced[k] = false;
		if (fired && rc == -ENOMEM)
			break;  /* nothing mapped */
		uint64_t moff = off;
		want = model_map(&f->km, &moff, len, a.prot, flags,
				 anon ? PTK_REGION_ANON : PTK_REGION_SPECIAL, pfn);
		if (anon && want == 0) {
			/* Installed (zeroed) at map time whatever the prot. */
			model_protect(&f->km, off, len, PTK_PROT_READ);
			model_populate(&f->km, off, len, PTK_ACCESS_READ);
			model_protect(&f->km, off, len, a.prot);
		}
		if (f->verbose)
			fprintf(stderr, "  kmap off %#" PRIx64 " len %#" PRIx64 " flags %#x pfn %#" PRIx64
				" -> %d\n", off, len, flags, pfn, rc);
		expect(f, anon ? "kmap_anon" : "kmap_special", rc, want);
		check_kernel(f, off, off + len);
		check_lo = check_hi = WIN_BASE;
		break;
	}
	case OP_KUNMAP: {
		ptk_ctx_inject_failure(f->ctx, 0, 0);   /* teardown: never armed */
		DISARM();
		uint64_t off = KWIN_OFF + (a.va - WIN_BASE) % ((uint64_t)KWIN_PAGES * PTK_PAGE_SIZE);
		uint64_t len = a.len;
		if (len > KWIN_OFF + (uint64_t)KWIN_PAGES * PTK_PAGE_SIZE - off)
			len = KWIN_OFF + (uint64_t)KWIN_PAGES * PTK_PAGE_SIZE - off;
		rc = ptk_kunmap(f->ctx, f->kstart + off, len);
		if (f->verbose)
			fprintf(stderr, "  kunmap off %#" PRIx64 " len %#" PRIx64 " -> %d\n", off, len, rc);
		expect(f, "kunmap", rc, model_unmap(&f->km, off, len));
		f->kused = true;
		check_kernel(f, off, off + len);
		check_lo = check_hi = WIN_BASE;
		break;
	}
	case OP_ACTIVATE: {
		/* misc bit 0: a kernel fault in the window instead. */
		DISARM();
		if (a.misc & 1) {
			uint64_t off = KWIN_OFF + (a.va - WIN_BASE) % ((uint64_t)KWIN_PAGES * PTK_PAGE_SIZE);
			struct model_lookup l;
			model_lookup(&f->km, off, &l);
			rc = ptk_fault(f->as[i], f->kstart + off, PTK_ACCESS_READ);
			bool shares = ptk_as_levels(f->as[i]) == KLEVELS;
			expect(f, "fault(kernel)", rc, shares && l.present ? 0 : -EFAULT);
			/* The missing top entries are those of this slot only:
			 * the window lies inside one 512 GiB slot. */
			if (rc == 0)
				f->ksynced[i] = true;
		} else if (a.misc & 2) {
			/* Explicit sync: every registered root complete
			 * (eager, legacy); nothing in the lazy design. */
			ptk_kernel_sync(f->ctx);
		} else {
			ptk_as_activate(f->as[i]);
			f->ksynced[i] = true;
		}
		check_kernel(f, KWIN_OFF, KWIN_OFF + (uint64_t)KWIN_PAGES * PTK_PAGE_SIZE);
		check_lo = check_hi = WIN_BASE;
		break;
	}
	case OP_TLB: {
		/* Switch the CPU to space i (if not there, or misc bit 0) and
		 * translate through its TLB; the CPU stays there, so later
		 * unmaps and protects must reach its entries. */
		DISARM();
		/* Registered on first use: unregistering waits a grace
		 * period, which inputs without TLB operations need not pay.
		 * A thread that is a CPU elsewhere gets no TLB checks. */
		if (!f->cpu && !f->no_cpu && ptk_cpu_register(f->ctx, &f->cpu)) {
			f->cpu = NULL;
			f->no_cpu = true;
		}
		if (!f->cpu)
			break;
		if (f->cur != (int)i || (a.misc & 1)) {
			ptk_cpu_switch(f->cpu, f->as[i]);
			f->cur = (int)i;
			f->ksynced[i] = true;   /* the switch activates */
		}
		for (uint64_t k = 0; k < a.len && k < 16 * PTK_PAGE_SIZE; k += PTK_PAGE_SIZE)
			if (a.va + k < WIN_END)
				check_tlb_page(f, i, (a.va + k) & ~(PTK_PAGE_SIZE - 1));
		if (a.misc & 2)
			ptk_cpu_quiesce(f->cpu);
		break;
	}
	case OP_CLONE: {
		/* Clone space i into the next slot (fork), replacing what was
		 * there: both then share their anonymous pages copy-on-write,
		 * and every later check compares both with their models. */
		unsigned j = (i + 1) % NAS;
		if (f->cpu && f->cur == (int)j) {
			ptk_cpu_switch(f->cpu, NULL);
			f->cur = -1;
		}
		if (f->as[j]) {
			ptk_as_destroy(f->as[j]);
			f->as[j] = NULL;
		}
		model_free(&f->m[j]);
		model_init(&f->m[j], ptk_as_levels(f->as[i]));
		f->ksynced[j] = !ksync_lazy(f);
		rc = ptk_as_clone(f->as[i], &f->as[j]);
		DISARM();
		if (rc == -ENOMEM && fired) {
			f->as[j] = NULL;
			model_clone(&f->m[i], NULL);
			break;
		}
		expect(f, "clone", rc, 0);
		if (rc) {
			f->as[j] = NULL;
			break;
		}
		set_oracle(f, j);   /* asked about shared object pages */
		model_clone(&f->m[i], &f->m[j]);
		check_space(f, j, check_lo, check_hi);
		break;
	}
	case OP_MAP_OBJECT: {
		/* misc bit 0: the object, bit 1: private, bits 2-7: offset in
		 * 8-page steps; the length clipped to the object's maximum
		 * (unless the argument is hostile); FIXED or NOREPLACE. */
		unsigned k = a.misc & 1;
		uint64_t off = (uint64_t)(a.misc >> 2) * 8 % obj_max[k] * PTK_PAGE_SIZE;
		uint64_t max = obj_max[k] * PTK_PAGE_SIZE;
		unsigned flags = (a.misc & 2) ? PTK_MAP_PRIVATE : PTK_MAP_SHARED;
		if (b[6] & 2) {
			flags |= a.flags;
		} else {
			flags |= a.flags & (PTK_MAP_NOREPLACE | PTK_MAP_POPULATE);
			if (!(flags & PTK_MAP_NOREPLACE))
				flags |= PTK_MAP_FIXED;
			if (a.len > max - off)
				a.len = max - off;
		}
		uint64_t v = a.va;
		rc = ptk_map_object(f->as[i], &v, a.len, a.prot, flags, f->obj[k], off);
		DISARM();
		if (f->verbose)
			fprintf(stderr, "  map object %u off %#" PRIx64 " len %#" PRIx64 " flags %#x -> %d\n",
				k, off, a.len, flags, rc);
		if (fired && rc == -ENOMEM) {
			bool fixed = flags & (PTK_MAP_FIXED | PTK_MAP_NOREPLACE);
			if (fixed && !any_region(f, i, a.va, a.va + a.len))
				model_unmap(&f->m[i], a.va, a.len);
			break;
		}
		uint64_t mva = a.va;
		want = model_map_object(&f->m[i], &mva, a.len, a.prot, flags, &f->mo[k], off);
		expect(f, "map_object", rc, want);
		if (!rc && mva != v)
			fz_fail(f, "map placed at %#" PRIx64 ", model %#" PRIx64, v, mva);
		if (!rc)
			check_lo = v, check_hi = v + a.len;
		break;
	}
	case OP_TRUNCATE:
	case OP_PUNCH: {
		/* Truncate: to page (b2,b3) mod max+1 (hostile: unaligned or
		 * beyond the maximum).  Punch: [page, page + len) of the
		 * object (len clipped to the maximum unless hostile).  Every
		 * space is checked over the whole window after. */
		unsigned k = a.misc & 1;
		uint64_t max = obj_max[k] * PTK_PAGE_SIZE;
		uint64_t page = (uint64_t)(b[2] | b[3] << 8);
		struct model *sp[NAS];
		for (unsigned j = 0; j < NAS; j++)
			sp[j] = f->as[j] ? &f->m[j] : NULL;
		if (op == OP_TRUNCATE) {
			uint64_t size = page % (obj_max[k] + 1) * PTK_PAGE_SIZE;
			if (b[6] & 2)
				size += (a.misc & 2) ? max + PTK_PAGE_SIZE : 1u + a.misc % 4095u;
			rc = ptk_object_truncate(f->obj[k], size);
			DISARM();
			want = model_object_truncate(&f->mo[k], size, sp, NAS);
			if (f->verbose)
				fprintf(stderr, "  truncate object %u to %#" PRIx64 " -> %d\n", k, size, rc);
			expect(f, "truncate", rc, want);
		} else {
			uint64_t off = page % obj_max[k] * PTK_PAGE_SIZE;
			if (!(b[6] & 2) && a.len > max - off)
				a.len = max - off;
			rc = ptk_object_punch(f->obj[k], off, a.len);
			DISARM();
			want = model_object_punch(&f->mo[k], off, a.len, sp, NAS);
			if (f->verbose)
				fprintf(stderr, "  punch object %u [%#" PRIx64 ", +%#" PRIx64 ") -> %d\n",
					k, off, a.len, rc);
			expect(f, "punch", rc, want);
		}
		for (unsigned j = 0; j < NAS; j++)
			if (j != i)
				check_space(f, j, WIN_BASE, WIN_END);
		check_lo = WIN_BASE, check_hi = WIN_END;
		break;
	}
	case OP_OBJ_WRITE:
	case OP_OBJ_READ: {
		/* Pages [page, page + n) of the object (n = 1 + b4 mod 4 for a
		 * write, 1 + b4 mod 16 for a read): a write puts a fresh tag at
		 * the start of each page, zeros after; a read compares. */
		static uint8_t buf[16 * PTK_PAGE_SIZE];
		unsigned k = a.misc & 1;
		uint64_t pg = (uint64_t)(b[2] | b[3] << 8) % obj_max[k];
		uint64_t n = 1 + b[4] % (op == OP_OBJ_WRITE ? 4u : 16u);
		uint64_t off = pg * PTK_PAGE_SIZE, len = n * PTK_PAGE_SIZE;
		if (op == OP_OBJ_WRITE) {
			uint32_t tags[4];
			memset(buf, 0, len);
			for (uint64_t p = 0; p < n; p++) {
				tags[p] = f->next_tag++;
				memcpy(buf + p * PTK_PAGE_SIZE, &tags[p], sizeof(tags[p]));
			}
			rc = ptk_object_write(f->obj[k], off, buf, len);
			DISARM();
			if (f->verbose)
				fprintf(stderr, "  write object %u pages %#" PRIx64 "+%" PRIu64 " -> %d\n",
					k, pg, n, rc);
			if (fired && rc == -ENOMEM)
				break;  /* contents unchanged */
			expect(f, "object_write", rc, model_object_write(&f->mo[k], off, len, tags));
			/* Pins of the frames written see the new tags. */
			for (unsigned q = 0; !rc && q < f->npins; q++) {
				struct pin *pn = &f->pins[q];
				if (pn->obj == &f->mo[k] && pn->pgoff >= pg && pn->pgoff < pg + n &&
				    pn->gen == f->mo[k].gen[pn->pgoff])
					pn->tag = tags[pn->pgoff - pg];
			}
			for (unsigned j = 0; j < NAS; j++)
				if (j != i)
					check_space(f, j, WIN_BASE, WIN_END);
			check_lo = WIN_BASE, check_hi = WIN_END;
		} else {
			memset(buf, 0xa5, len);
			rc = ptk_object_read(f->obj[k], off, buf, len);
			DISARM();
			expect(f, "object_read", rc, model_object_read_check(&f->mo[k], off, len));
			for (uint64_t p = 0; !rc && p < n; p++) {
				uint32_t got;
				memcpy(&got, buf + p * PTK_PAGE_SIZE, sizeof(got));
				if (got != f->mo[k].tag[pg + p])
					fz_fail(f, "object %u page %#" PRIx64 ": read %u, model %u", k,
						pg + p, got, f->mo[k].tag[pg + p]);
				for (uint64_t o = sizeof(got); o < PTK_PAGE_SIZE; o++)
					if (buf[p * PTK_PAGE_SIZE + o])
						fz_fail(f, "object %u page %#" PRIx64 ": byte %" PRIu64
							" not zero", k, pg + p, o);
			}
			check_lo = check_hi = WIN_BASE;
		}
		break;
	}
	case OP_INJECT:
		f->inject_kinds = 1u + a.prot % 7u;
		f->inject_nth = 1 + a.misc % 8;
		return;
	case OP_NR:
		break;
	}
	if (armed) {
		DISARM();
		f->m[i].may_fail = false;
	}
#undef DISARM
	if (check_hi < check_lo || check_lo >= WIN_END)
		check_lo = WIN_BASE, check_hi = WIN_BASE;
	check_space(f, i, check_lo, check_hi);
	check_objects(f);
}

const struct ptk_ctx_config *fuzz_as_ctx_config;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz f;
	/* FUZZ_AS_SAVE=FILE: write each input there first, so the one a
	 * caller without libFuzzer (ptkit torture) died on can be kept. */
	const char *save = getenv("FUZZ_AS_SAVE");
	if (save) {
		FILE *fp = fopen(save, "wb");
		if (fp) {
			fwrite(data, 1, size, fp);
			fclose(fp);
		}
	}
	/* A trailer (size not a multiple of 8) picks the designs. */
	fz_begin(&f, size % 8 ? data[size - size % 8] : -1);
	for (size_t off = 0; off + 8 <= size && f.step < MAX_OPS; off += 8, f.step++)
		run_op(&f, data + off);
	fz_end(&f);
	return 0;
}
