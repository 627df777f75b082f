/*
 * trace.c - the trace format's parser and the replay engine, and the
 * `ptkit replay` command.  The format is described in docs/trace-format.md.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "trace.h"
#include "ptkit/ptkit.h"

#define PAGE PTK_PAGE_SIZE
#define USER_END (UINT64_C(1) << 47)   /* 4-level user half: where the traces live */

static uint64_t page_up(uint64_t x) { return (x + PAGE - 1) & ~(PAGE - 1); }

/* ---- parser ------------------------------------------------------------- */

struct pidmap {
	struct { uint32_t pid, slot; bool live; } *v;
	uint32_t n, cap;
};

static int64_t pid_slot(struct pidmap *m, uint32_t pid)
{
	for (uint32_t i = m->n; i-- > 0;)
		if (m->v[i].pid == pid)
			return m->v[i].live ? (int64_t)m->v[i].slot : -2;
	return -1;
}

static int pid_add(struct pidmap *m, uint32_t pid, uint32_t slot)
{
	for (uint32_t i = 0; i < m->n; i++)
		if (m->v[i].pid == pid) {
			m->v[i].slot = slot;
			m->v[i].live = true;
			return 0;
		}
	if (m->n == m->cap) {
		uint32_t cap = m->cap ? m->cap * 2 : 64;
		void *p = realloc(m->v, cap * sizeof(*m->v));
		if (!p)
			return -ENOMEM;
		m->v = p;
		m->cap = cap;
	}
	m->v[m->n].pid = pid;
	m->v[m->n].slot = slot;
	m->v[m->n].live = true;
	m->n++;
	return 0;
}

static void pid_exit(struct pidmap *m, uint32_t pid)
{
	for (uint32_t i = 0; i < m->n; i++)
		if (m->v[i].pid == pid)
			m->v[i].live = false;
}

static bool parse_num(const char *s, uint64_t *out)
{
	char *end;
	if (!s || !*s || *s == '-' || *s == '+')
		return false;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || *end)
		return false;
	*out = v;
	return true;
}

static bool parse_prot(const char *s, uint8_t *prot)
{
	if (!s || strlen(s) != 3)
		return false;
	unsigned p = 0;
	if (s[0] == 'r') p |= PTK_PROT_READ; else if (s[0] != '-') return false;
	if (s[1] == 'w') p |= PTK_PROT_WRITE; else if (s[1] != '-') return false;
	if (s[2] == 'x') p |= PTK_PROT_EXEC; else if (s[2] != '-') return false;
	*prot = (uint8_t)p;
	return true;
}

static const struct { const char *name; enum trace_op op; int nargs; } ops[] = {
	{ "exec", TR_EXEC, 0 },   { "fork", TR_FORK, 2 },     { "exit", TR_EXIT, 0 },
	{ "map", TR_MAP, 4 },     { "region", TR_REGION, 3 }, { "unmap", TR_UNMAP, 2 },
	{ "protect", TR_PROTECT, 3 }, { "advise", TR_ADVISE, 3 }, { "brk", TR_BRK, 2 },
	{ "remap", TR_REMAP, 4 }, { "fault", TR_FAULT, 2 },
};

static int fail(char *err, size_t errlen, const char *path, unsigned line, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static int fail(char *err, size_t errlen, const char *path, unsigned line, const char *fmt, ...)
{
	int n = snprintf(err, errlen, "%s:%u: ", path, line);
	va_list ap;
	va_start(ap, fmt);
	if (n >= 0 && (size_t)n < errlen)
		vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

/* Check a page-aligned, non-empty range inside the user half. */
static const char *check_range(uint64_t addr, uint64_t len)
{
	if (addr & (PAGE - 1))
		return "address is not page aligned";
	if (!len)
		return "length is zero";
	if (addr >= USER_END || len > USER_END - addr || page_up(len) > USER_END - addr)
		return "range is outside the 47-bit user half";
	return NULL;
}

int trace_load(const char *path, struct trace *t, char *err, size_t errlen)
{
	memset(t, 0, sizeof(*t));
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	t->name = strdup(path);
	t->command = strdup("");
	struct pidmap pm = { 0 };
	uint32_t cap = 0;
	char *line = NULL;
	size_t lcap = 0;
	ssize_t len;
	unsigned lineno = 0;
	uint64_t last_t = 0;
	int rc = 0;
	while ((len = getline(&line, &lcap, f)) != -1) {
		lineno++;
		if (len && line[len - 1] == '\n')
			line[--len] = 0;
		if ((size_t)len != strlen(line)) {
			rc = fail(err, errlen, path, lineno, "NUL byte in line");
			break;
		}
		if (lineno == 1) {
			if (strcmp(line, TRACE_MAGIC)) {
				rc = fail(err, errlen, path, lineno,
					  "not a ptkit trace (the first line must be '%s')", TRACE_MAGIC);
				break;
			}
			continue;
		}
		if (line[0] == '#') {
			if (!strncmp(line, "# command: ", 11)) {
				free(t->command);
				t->command = strdup(line + 11);
			}
			if (!strncmp(line, "# faults: yes", 13))
				t->has_faults = true;
			continue;
		}
		char *save = NULL, *fld[8];
		int nf = 0;
		for (char *tok = strtok_r(line, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
			if (nf == 8) {
				nf = 9;
				break;
			}
			fld[nf++] = tok;
		}
		if (nf == 0)
			continue;           /* blank line */
		if (nf < 3) {
			rc = fail(err, errlen, path, lineno, "expected 'TIME PID OP ...', got %d field%s",
				  nf, nf == 1 ? "" : "s");
			break;
		}
		uint64_t tus, pid;
		if (!parse_num(fld[0], &tus) || tus > UINT32_MAX) {
			rc = fail(err, errlen, path, lineno, "bad time '%s' (microseconds, decimal)", fld[0]);
			break;
		}
		if (tus < last_t) {
			rc = fail(err, errlen, path, lineno, "time %" PRIu64 " goes backwards (previous %" PRIu64 ")",
				  tus, last_t);
			break;
		}
		last_t = tus;
		if (!parse_num(fld[1], &pid) || !pid || pid > INT32_MAX) {
			rc = fail(err, errlen, path, lineno, "bad pid '%s'", fld[1]);
			break;
		}
		size_t k;
		for (k = 0; k < sizeof(ops) / sizeof(ops[0]); k++)
			if (!strcmp(fld[2], ops[k].name))
				break;
		if (k == sizeof(ops) / sizeof(ops[0])) {
			rc = fail(err, errlen, path, lineno, "unknown operation '%s'", fld[2]);
			break;
		}
		if (nf - 3 != ops[k].nargs) {
			rc = fail(err, errlen, path, lineno, "'%s' takes %d argument%s, got %d%s", ops[k].name,
				  ops[k].nargs, ops[k].nargs == 1 ? "" : "s", nf > 8 ? 6 : nf - 3,
				  nf > 8 ? " or more" : "");
			break;
		}
		struct trace_event e = { .t_us = (uint32_t)tus, .op = (uint8_t)ops[k].op };
		char **arg = fld + 3;
		const char *why = NULL;
		int nnum = 0;
		switch (ops[k].op) {
		case TR_MAP: case TR_REGION: case TR_PROTECT: case TR_ADVISE: case TR_UNMAP:
		case TR_BRK: nnum = 2; break;
		case TR_REMAP: nnum = 4; break;
		case TR_FAULT: nnum = 1; break;
		default: break;
		}
		uint64_t *num[4] = { &e.a, &e.b, &e.c, &e.d };
		for (int i = 0; i < nnum && !why; i++)
			if (!parse_num(arg[i], num[i])) {
				rc = fail(err, errlen, path, lineno, "bad number '%s' (argument %d of '%s')",
					  arg[i], i + 1, ops[k].name);
				why = "";
			}
		if (rc)
			break;
		switch (ops[k].op) {
		case TR_MAP: case TR_REGION: case TR_PROTECT:
			if ((why = check_range(e.a, e.b)))
				break;
			if (!parse_prot(arg[2], &e.prot)) {
				why = "protection must be three letters from 'rwx' and '-' (e.g. 'rw-')";
				break;
			}
			if (ops[k].op == TR_MAP) {
				static const char *kinds[] = { "anon", "file", "shared-anon", "shared-file" };
				unsigned j;
				for (j = 0; j < 4 && strcmp(arg[3], kinds[j]); j++)
					;
				if (j == 4)
					why = "kind must be anon, file, shared-anon or shared-file";
				e.arg = (uint8_t)j;
			}
			break;
		case TR_UNMAP:
			why = check_range(e.a, e.b);
			break;
		case TR_ADVISE:
			if ((why = check_range(e.a, e.b)))
				break;
			e.arg = !strcmp(arg[2], "dontneed") ? TA_DONTNEED :
				!strcmp(arg[2], "free") ? TA_FREE : TA_OTHER;
			break;
		case TR_BRK:
			if (e.a >= USER_END || e.b >= USER_END)
				why = "break is outside the 47-bit user half";
			break;
		case TR_REMAP:
			if ((why = check_range(e.a, e.b)) || (why = check_range(e.c, e.d)))
				break;
			break;
		case TR_FAULT:
			if (e.a >= USER_END) {
				why = "fault address is outside the 47-bit user half";
				break;
			}
			if (!strcmp(arg[1], "r")) e.arg = TX_READ;
			else if (!strcmp(arg[1], "w")) e.arg = TX_WRITE;
			else if (!strcmp(arg[1], "x")) e.arg = TX_EXEC;
			else if (!strcmp(arg[1], "-")) e.arg = TX_UNKNOWN;
			else why = "access must be r, w, x or -";
			break;
		default:
			break;
		}
		if (why) {
			rc = fail(err, errlen, path, lineno, "%s", why);
			break;
		}
		/* Process identity: a pid seen first without a fork starts with
		 * an empty space; a fork's child must not be alive. */
		int64_t slot = pid_slot(&pm, (uint32_t)pid);
		if (slot == -2) {
			rc = fail(err, errlen, path, lineno, "pid %" PRIu64 " used after its exit", pid);
			break;
		}
		if (slot == -1) {
			slot = t->nslots++;
			if (pid_add(&pm, (uint32_t)pid, (uint32_t)slot)) {
				rc = fail(err, errlen, path, lineno, "out of memory");
				break;
			}
		}
		e.slot = (uint32_t)slot;
		if (ops[k].op == TR_FORK) {
			uint64_t child;
			if (!parse_num(arg[0], &child) || !child || child > INT32_MAX) {
				rc = fail(err, errlen, path, lineno, "bad child pid '%s'", arg[0]);
				break;
			}
			if (pid_slot(&pm, (uint32_t)child) >= 0) {
				rc = fail(err, errlen, path, lineno, "child pid %" PRIu64 " is already alive", child);
				break;
			}
			if (!strcmp(arg[1], "share")) e.b = 1;
			else if (!strcmp(arg[1], "copy")) e.b = 0;
			else {
				rc = fail(err, errlen, path, lineno, "fork mode must be 'copy' or 'share'");
				break;
			}
			e.a = t->nslots++;
			if (pid_add(&pm, (uint32_t)child, (uint32_t)e.a)) {
				rc = fail(err, errlen, path, lineno, "out of memory");
				break;
			}
		}
		if (ops[k].op == TR_EXIT)
			pid_exit(&pm, (uint32_t)pid);
		if (t->nev == cap) {
			cap = cap ? cap * 2 : 1024;
			void *p = realloc(t->ev, cap * sizeof(*t->ev));
			if (!p) {
				rc = fail(err, errlen, path, lineno, "out of memory");
				break;
			}
			t->ev = p;
		}
		t->ev[t->nev++] = e;
	}
	if (!rc && ferror(f))
		rc = fail(err, errlen, path, lineno, "read error: %s", strerror(errno));
	if (!rc && lineno == 0)
		rc = fail(err, errlen, path, 1, "empty file (not a ptkit trace)");
	free(line);
	free(pm.v);
	fclose(f);
	if (rc)
		trace_free(t);
	return rc;
}

void trace_free(struct trace *t)
{
	free(t->name);
	free(t->command);
	free(t->ev);
	memset(t, 0, sizeof(*t));
}

/* ---- replay -------------------------------------------------------------- */

struct rspace {
	struct ptk_as *as;
	unsigned refs;
};

struct layout {
	struct ptk_region_info *v;
	size_t n, cap;
};

static int collect(const struct ptk_region_info *r, void *arg)
{
	struct layout *l = arg;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 32;
		void *p = realloc(l->v, cap * sizeof(*l->v));
		if (!p)
			return -ENOMEM;
		l->v = p;
		l->cap = cap;
	}
	l->v[l->n++] = *r;
	return 0;
}

struct replayer {
	struct ptk_ctx *ctx;
	struct rspace **sp;
	struct replay_stats *st;
	uint64_t live;
};

static struct rspace *space_new(struct replayer *r, int *rc)
{
	struct rspace *s = malloc(sizeof(*s));
	if (!s) {
		*rc = -ENOMEM;
		return NULL;
	}
	*rc = ptk_as_create(r->ctx, 4, &s->as);
	if (*rc) {
		free(s);
		return NULL;
	}
	s->refs = 1;
	r->st->spaces++;
	if (++r->live > r->st->peak_spaces)
		r->st->peak_spaces = r->live;
	return s;
}

static void space_put(struct replayer *r, struct rspace *s)
{
	if (s && --s->refs == 0) {
		ptk_as_destroy(s->as);
		free(s);
		r->live--;
	}
}

static unsigned region_prot(struct ptk_as *as, uint64_t va, unsigned dflt)
{
	struct ptk_region_info ri;
	return ptk_region_query(as, va, &ri) == 0 ? ri.prot : dflt;
}

/* Page-table bytes and resident frames of the live spaces of this replay
 * (exact: counted per space, so tables still waiting for a grace period
 * and other replays in the same pool are not included). */
static void sample_spaces(struct replayer *r, uint32_t nslots)
{
	uint64_t tb = 0, rss = 0;
	for (uint32_t i = 0; i < nslots; i++) {
		struct rspace *s = r->sp[i];
		bool dup = false;
		for (uint32_t j = 0; j < i && s && !dup; j++)
			dup = r->sp[j] == s;
		if (!s || dup)
			continue;
		struct ptk_as_stats st;
		ptk_as_stats(s->as, &st);
		tb += st.table_bytes;
		rss += st.rss_frames;
	}
	if (tb > r->st->peak_table_bytes)
		r->st->peak_table_bytes = tb;
	if (rss > r->st->peak_data_frames)
		r->st->peak_data_frames = rss;
}

static int map_fixed(struct replayer *r, struct ptk_as *as, uint64_t va, uint64_t len,
		     unsigned prot)
{
	int rc = ptk_map_anon(as, &va, page_up(len), prot, PTK_MAP_FIXED);
	if (rc == -ENOMEM && ptk_region_query(as, va, &(struct ptk_region_info){ 0 }) != 0) {
		/* Distinguish pool exhaustion (fatal) from no room (refused). */
		struct ptk_pool_stats ps;
		ptk_pool_stats(r->ctx, &ps);
		if (ps.free < 64)
			return -ENOMEM;
	}
	if (rc)
		r->st->op_refused++;
	return 0;
}

int trace_replay(const struct trace *t, struct ptk_ctx *ctx, struct replay_stats *st)
{
	struct replayer r = { ctx, calloc(t->nslots ? t->nslots : 1, sizeof(struct rspace *)), st, 0 };
	if (!r.sp)
		return -ENOMEM;
	int rc = 0;
	double t0 = bench_now();
	for (uint32_t i = 0; i < t->nev && !rc; i++) {
		const struct trace_event *e = &t->ev[i];
		struct rspace **slot = &r.sp[e->slot];
		st->events++;
		if (e->op == TR_EXIT) {
			sample_spaces(&r, t->nslots);
			space_put(&r, *slot);
			*slot = NULL;
			st->exits++;
			continue;
		}
		if (e->op == TR_EXEC) {
			sample_spaces(&r, t->nslots);
			space_put(&r, *slot);
			*slot = space_new(&r, &rc);
			st->execs++;
			continue;
		}
		if (!*slot && !(*slot = space_new(&r, &rc)))
			break;
		struct ptk_as *as = (*slot)->as;
		switch (e->op) {
		case TR_FORK:
			st->forks++;
			if (e->b) {                      /* vfork, thread: same space */
				(*slot)->refs++;
				r.sp[e->a] = *slot;
				break;
			}
			/* fork: the region layout, not the contents (see docs) */
			if (!(r.sp[e->a] = space_new(&r, &rc)))
				break;
			struct layout l = { 0 };
			rc = ptk_region_foreach(as, collect, &l);
			for (size_t j = 0; j < l.n && !rc; j++)
				rc = map_fixed(&r, r.sp[e->a]->as, l.v[j].start, l.v[j].end - l.v[j].start,
					       l.v[j].prot);
			free(l.v);
			break;
		case TR_MAP:
		case TR_REGION:
			st->maps++;
			rc = map_fixed(&r, as, e->a, e->b, e->prot);
			break;
		case TR_UNMAP:
			st->unmaps++;
			if (ptk_unmap(as, e->a, page_up(e->b)))
				st->op_refused++;
			break;
		case TR_PROTECT:
			st->protects++;
			if (ptk_protect(as, e->a, page_up(e->b), e->prot))
				st->op_refused++;
			break;
		case TR_ADVISE:
			if (e->arg == TA_OTHER)
				break;
			st->drops++;
			if (ptk_drop(as, e->a, page_up(e->b)))
				st->op_refused++;
			break;
		case TR_BRK: {
			st->brks++;
			uint64_t o = page_up(e->a), n = page_up(e->b);
			if (n > o)
				rc = map_fixed(&r, as, o, n - o, PTK_PROT_READ | PTK_PROT_WRITE);
			else if (n < o && ptk_unmap(as, n, o - n))
				st->op_refused++;
			break;
		}
		case TR_REMAP: {
			st->remaps++;
			uint64_t ol = page_up(e->b), nl = page_up(e->d);
			unsigned prot = region_prot(as, e->a, PTK_PROT_READ | PTK_PROT_WRITE);
			if (e->a == e->c) {
				if (nl > ol)
					rc = map_fixed(&r, as, e->a + ol, nl - ol, prot);
				else if (nl < ol && ptk_unmap(as, e->a + nl, ol - nl))
					st->op_refused++;
			} else {
				/* moved: contents are not carried over (see docs) */
				if (ptk_unmap(as, e->a, ol))
					st->op_refused++;
				rc = map_fixed(&r, as, e->c, nl, prot);
			}
			break;
		}
		case TR_FAULT: {
			unsigned access = e->arg == TX_WRITE ? PTK_ACCESS_WRITE :
					  e->arg == TX_EXEC ? PTK_ACCESS_EXEC : PTK_ACCESS_READ;
			if (e->arg == TX_UNKNOWN)
				access = region_prot(as, e->a, 0) & PTK_PROT_WRITE ?
					 PTK_ACCESS_WRITE : PTK_ACCESS_READ;
			int frc = ptk_fault(as, e->a & ~(PAGE - 1), access);
			if (frc == 0)
				st->faults++;
			else if (frc == -ENOMEM)
				rc = frc;
			else
				st->faults_refused++;
			break;
		}
		default:
			break;
		}
		if ((i & 63) == 0)
			sample_spaces(&r, t->nslots);
	}
	sample_spaces(&r, t->nslots);
	for (uint32_t i = 0; i < t->nslots; i++) {
		space_put(&r, r.sp[i]);
		r.sp[i] = NULL;
	}
	free(r.sp);
	st->seconds += bench_now() - t0;
	ptk_thread_unregister();
	return rc;
}

struct copy_arg {
	const struct trace *t;
	struct ptk_ctx *ctx;
	unsigned first, step, copies;   /* copies first, first + step, ... */
	struct replay_stats st;
	_Atomic int *go;
	int rc;
};

static void add_stats(struct replay_stats *st, const struct replay_stats *s)
{
	st->events += s->events;
	st->spaces += s->spaces;
	st->maps += s->maps;
	st->unmaps += s->unmaps;
	st->protects += s->protects;
	st->drops += s->drops;
	st->brks += s->brks;
	st->remaps += s->remaps;
	st->forks += s->forks;
	st->execs += s->execs;
	st->exits += s->exits;
	st->faults += s->faults;
	st->faults_refused += s->faults_refused;
	st->op_refused += s->op_refused;
	st->peak_spaces += s->peak_spaces;
	st->peak_table_bytes += s->peak_table_bytes;
	st->peak_data_frames += s->peak_data_frames;
}

static void *copy_worker(void *p)
{
	struct copy_arg *a = p;
	ptk_thread_register();
	while (!atomic_load(a->go))
		sched_yield();
	for (unsigned c = a->first; c < a->copies && !a->rc && atomic_load(a->go) > 0; c += a->step) {
		struct replay_stats one = { 0 };
		a->rc = trace_replay(a->t, a->ctx, &one);
		add_stats(&a->st, &one);
	}
	ptk_thread_unregister();
	return NULL;
}

int trace_replay_copies(const struct trace *t, struct ptk_ctx *ctx, unsigned copies,
			unsigned threads, struct replay_stats *st)
{
	if (!threads || threads > copies)
		threads = copies;
	struct copy_arg *a = calloc(threads, sizeof(*a));
	pthread_t *tid = calloc(threads, sizeof(*tid));
	_Atomic int go = 0;
	if (!a || !tid) {
		free(a);
		free(tid);
		return -ENOMEM;
	}
	unsigned started = 0;
	int rc = 0;
	for (; started < threads; started++) {
		a[started] = (struct copy_arg){ .t = t, .ctx = ctx, .first = started, .step = threads,
						.copies = copies, .go = &go };
		if (pthread_create(&tid[started], NULL, copy_worker, &a[started])) {
			rc = -EAGAIN;
			break;
		}
	}
	memset(st, 0, sizeof(*st));
	double t0 = bench_now();
	atomic_store(&go, rc ? -1 : 1);       /* -1: start, replay nothing */
	for (unsigned i = 0; i < started; i++) {
		pthread_join(tid[i], NULL);
		if (a[i].rc && !rc)
			rc = a[i].rc;
		add_stats(st, &a[i].st);
	}
	st->seconds = bench_now() - t0;
	free(a);
	free(tid);
	return rc;
}

uint64_t trace_pool_bytes(const struct trace *t, unsigned copies)
{
	/* Every fault may hold a frame, plus tables: generous, and only
	 * reserved (untouched frames cost nothing). */
	uint64_t faults = 0;
	for (uint32_t i = 0; i < t->nev; i++)
		faults += t->ev[i].op == TR_FAULT;
	return (faults * 2 * PAGE + (64u << 20)) * copies + (64u << 20);
}

const char *trace_shipped_dir(void)
{
	static char dir[4096];
	const char *cands[] = { getenv("PTKIT_TRACES"),
#ifdef PTKIT_SOURCE_TRACES
				PTKIT_SOURCE_TRACES,
#endif
#ifdef PTKIT_INSTALLED_TRACES
				PTKIT_INSTALLED_TRACES,
#endif
	};
	for (size_t i = 0; i < sizeof(cands) / sizeof(cands[0]); i++) {
		struct stat sb;
		if (cands[i] && *cands[i] && stat(cands[i], &sb) == 0 && S_ISDIR(sb.st_mode)) {
			snprintf(dir, sizeof(dir), "%s", cands[i]);
			return dir;
		}
	}
	return "";
}

/* ---- ptkit replay ------------------------------------------------------- */

void replay_usage(FILE *f)
{
	fprintf(f,
"usage: ptkit replay [--copies N] [--threads N] [--repeat N] TRACE...\n"
"\n"
"Replays address-space traces (recorded by `ptkit trace record`, format in\n"
"docs/trace-format.md) on ptkit address spaces: one address space per\n"
"recorded process, every mmap/munmap/mprotect/madvise/brk/mremap at its\n"
"recorded address, every recorded page fault with ptk_fault().  Prints the\n"
"faults handled, page-table bytes and data frames at the peak, and time.\n"
"A TRACE that is not a path names a shipped trace (e.g. cc, python3).\n"
"\n"
"  -c, --copies N    run N copies of each trace at once (a build farm of\n"
"                    short-lived processes; default 1)\n"
"  -t, --threads N   threads running the copies (default: one per copy)\n"
"  -r, --repeat N    replay N times in one pool and report the median time\n"
"                    (default 3; the first run in a fresh pool also pays the\n"
"                    host's own faults on the pool's memory)\n"
"  -l, --list        list the shipped traces\n"
"\n"
"Fork copies the region layout, not the contents; file mappings are replayed\n"
"as anonymous memory (see docs/trace-format.md).\n"
"Exit status: 0 success, 1 a malformed trace or a replay failure, 2 bad usage.\n");
}

/* Resolve a trace argument: a path, or the name of a shipped trace. */
static const char *resolve_trace(const char *arg, char *buf, size_t len)
{
	struct stat sb;
	if (stat(arg, &sb) == 0 || strchr(arg, '/'))
		return arg;
	const char *dir = trace_shipped_dir();
	if (*dir) {
		snprintf(buf, len, "%s/%s.trace", dir, arg);
		if (stat(buf, &sb) == 0)
			return buf;
	}
	return arg;
}

static int list_shipped(void)
{
	const char *dir = trace_shipped_dir();
	if (!*dir) {
		fprintf(stderr, "ptkit replay: no shipped traces found (set PTKIT_TRACES)\n");
		return 1;
	}
	static const char *names[] = { "cc", "python3", NULL };
	for (unsigned i = 0; names[i]; i++) {
		char path[4200], err[512];
		snprintf(path, sizeof(path), "%s/%s.trace", dir, names[i]);
		struct trace t;
		if (trace_load(path, &t, err, sizeof(err)))
			continue;
		printf("%-10s %6u events  %s\n", names[i], t.nev, t.command);
		trace_free(&t);
	}
	return 0;
}

int replay_main(int argc, char **argv)
{
	unsigned copies = 1, repeat = 3, threads = 0;
	static const struct option opts[] = {
		{ "copies", required_argument, NULL, 'c' },
		{ "threads", required_argument, NULL, 't' },
		{ "repeat", required_argument, NULL, 'r' },
		{ "list", no_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c;
	char *end;
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:t:r:lh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			copies = (unsigned)strtoul(optarg, &end, 10);
			if (*end || !copies || copies > 256) {
				fprintf(stderr, "ptkit replay: --copies: '%s' is not in [1, 256]\n", optarg);
				return 2;
			}
			break;
		case 't':
			threads = (unsigned)strtoul(optarg, &end, 10);
			if (*end || !threads || threads > 256) {
				fprintf(stderr, "ptkit replay: --threads: '%s' is not in [1, 256]\n", optarg);
				return 2;
			}
			break;
		case 'r':
			repeat = (unsigned)strtoul(optarg, &end, 10);
			if (*end || !repeat || repeat > 1000) {
				fprintf(stderr, "ptkit replay: --repeat: '%s' is not in [1, 1000]\n", optarg);
				return 2;
			}
			break;
		case 'l': return list_shipped();
		case 'h': replay_usage(stdout); return 0;
		default: replay_usage(stderr); return 2;
		}
	}
	if (optind == argc) {
		fprintf(stderr, "ptkit replay: no trace given (try: ptkit replay cc; ptkit replay --list)\n");
		return 2;
	}
	int status = 0;
	for (int i = optind; i < argc; i++) {
		char buf[4200], err[512];
		const char *path = resolve_trace(argv[i], buf, sizeof(buf));
		struct trace t;
		if (trace_load(path, &t, err, sizeof(err))) {
			fprintf(stderr, "ptkit replay: %s\n", err);
			status = 1;
			continue;
		}
		struct ptk_ctx_config cfg;
		ptk_ctx_config_default(&cfg);
		cfg.pool_bytes = trace_pool_bytes(&t, copies);
		struct ptk_ctx *ctx;
		int rc = ptk_ctx_create(&cfg, &ctx);
		if (rc) {
			fprintf(stderr, "ptkit replay: cannot create a context: %s\n", strerror(-rc));
			trace_free(&t);
			return 1;
		}
		struct replay_stats st = { 0 };
		double *secs = calloc(repeat, sizeof(double));
		for (unsigned r = 0; r < repeat && !rc; r++) {
			rc = trace_replay_copies(&t, ctx, copies, threads, &st);
			secs[r] = st.seconds;
		}
		double med = bench_median(secs, repeat);
		free(secs);
		ptk_ctx_quiesce(ctx);
		struct ptk_pool_stats ps;
		ptk_pool_stats(ctx, &ps);
		bool clean = ps.free == ps.capacity;
		printf("trace %s: %s\n", path, *t.command ? t.command : "(no command recorded)");
		printf("  %u events, %u processes, %s; %u cop%s; counts of the last run, median time of %u\n",
		       t.nev, t.nslots, t.has_faults ? "with page faults" : "no page faults recorded",
		       copies, copies == 1 ? "y" : "ies at once", repeat);
		if (rc) {
			fprintf(stderr, "ptkit replay: %s: replay failed: %s\n", path, strerror(-rc));
			status = 1;
		}
		printf("  %-36s %14" PRIu64 "\n", "address spaces created", st.spaces);
		printf("  %-36s %14" PRIu64 "\n", "peak live address spaces", st.peak_spaces);
		printf("  %-36s %14" PRIu64 "\n", "mmap/brk/remap mappings", st.maps + st.brks + st.remaps);
		printf("  %-36s %14" PRIu64 "\n", "munmap", st.unmaps);
		printf("  %-36s %14" PRIu64 "\n", "mprotect", st.protects);
		printf("  %-36s %14" PRIu64 "\n", "madvise(DONTNEED/FREE)", st.drops);
		printf("  %-36s %14" PRIu64 "\n", "forks", st.forks);
		printf("  %-36s %14" PRIu64 "\n", "execs", st.execs);
		printf("  %-36s %14" PRIu64 "\n", "exits", st.exits);
		printf("  %-36s %14" PRIu64 "\n", "faults replayed", st.faults);
		printf("  %-36s %14" PRIu64 "\n", "faults refused (no mapping/prot)", st.faults_refused);
		printf("  %-36s %14" PRIu64 "\n", "operations refused", st.op_refused);
		printf("  %-36s %14" PRIu64 "\n", "peak page-table bytes, live spaces", st.peak_table_bytes);
		printf("  %-36s %14" PRIu64 "\n", "peak resident frames (4 KiB)", st.peak_data_frames);
		printf("  %-36s %14.3f\n", "time (ms)", med * 1e3);
		printf("  %-36s %14.0f\n", "faults per second", st.faults / (med > 0 ? med : 1));
		printf("  frame accounting: %s\n", clean ? "every frame is back in the pool" : "FAILED");
		if (!clean)
			status = 1;
		ptk_ctx_destroy(ctx);
		trace_free(&t);
	}
	return status;
}
