/*
 * trace_record.c - `ptkit trace record -- COMMAND`: run a program under
 * strace (memory and process system calls, with timestamps) and, where it
 * is permitted, under `perf record -e page-faults -d` (every page fault
 * with its address), and write what its address spaces went through as a
 * ptkit trace (docs/trace-format.md).
 *
 * The kernel makes some mappings without a system call the trace could
 * see: the program image, the interpreter, the stack and the vDSO at exec.
 * Faults there would hit nothing on replay, so the recorder keeps a model
 * of each space's mappings and, for faults outside every recorded mapping,
 * emits "region" lines (clusters of such faulting pages, rwx) right after
 * the exec or fork that created the space.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "trace.h"

#define PAGE 4096u
#define CLUSTER_GAP (64u * PAGE)   /* uncovered faults closer than this form one region */

static uint64_t page_up(uint64_t x) { return (x + PAGE - 1) & ~(uint64_t)(PAGE - 1); }

/* ---- events as recorded ------------------------------------------------ */

struct rev {
	uint64_t t_ns;
	uint32_t pid, seq;
	enum trace_op op;
	uint64_t a, b, c, d;
	char s1[16], s2[16];     /* prot / kind / advice / access / fork mode */
	int space;               /* fault: space id it hit (-1 covered) ; birth: space id */
};

static struct rev *ev;
static size_t nev, capev;

static struct rev *add_event(uint64_t t_ns, uint32_t pid, enum trace_op op)
{
	if (nev == capev) {
		capev = capev ? capev * 2 : 4096;
		ev = realloc(ev, capev * sizeof(*ev));
		if (!ev) {
			fprintf(stderr, "ptkit trace: out of memory\n");
			exit(1);
		}
	}
	struct rev *e = &ev[nev];
	memset(e, 0, sizeof(*e));
	e->t_ns = t_ns;
	e->pid = pid;
	e->seq = (uint32_t)nev;
	e->op = op;
	e->space = -1;
	nev++;
	return e;
}

/* ---- strace parsing ------------------------------------------------------ */

static void prot_letters(const char *s, char out[4])
{
	out[0] = strstr(s, "PROT_READ") ? 'r' : '-';
	out[1] = strstr(s, "PROT_WRITE") ? 'w' : '-';
	out[2] = strstr(s, "PROT_EXEC") ? 'x' : '-';
	out[3] = 0;
}

/* Split "a, b, {c, d}, e" at top-level commas. */
static int split_args(char *s, char **out, int max)
{
	int n = 0, depth = 0;
	bool quote = false;
	char *start = s;
	for (char *p = s;; p++) {
		if (*p == '"' && (p == s || p[-1] != '\\'))
			quote = !quote;
		else if (!quote && (*p == '{' || *p == '[' || *p == '('))
			depth++;
		else if (!quote && (*p == '}' || *p == ']' || *p == ')'))
			depth--;
		if (*p == 0 || (!quote && depth == 0 && *p == ',')) {
			bool end = *p == 0;
			*p = 0;
			while (*start == ' ')
				start++;
			if (n < max)
				out[n++] = start;
			if (end)
				break;
			start = p + 1;
		}
	}
	return n;
}

static bool hexnum(const char *s, uint64_t *v)
{
	char *end;
	if (!strcmp(s, "NULL")) {
		*v = 0;
		return true;
	}
	errno = 0;
	*v = strtoull(s, &end, 0);
	return !errno && end != s;
}

struct pending { uint32_t pid; uint64_t t_ns; char *text; };
static struct pending *pend;
static size_t npend;

static void handle_call(uint32_t pid, uint64_t t_ns, char *call)
{
	char *paren = strchr(call, '(');
	char *eq = strstr(call, ") = ");
	if (!paren || !eq)
		return;
	*paren = 0;
	const char *name = call;
	*eq = 0;
	char *args = paren + 1, *ret = eq + 4;
	if (ret[0] == '-' || ret[0] == '?')
		return;                       /* failed, or no return */
	uint64_t rv;
	if (!hexnum(ret, &rv))
		return;
	char *a[8];
	int na = split_args(args, a, 8);
	struct rev *e;
	if (!strcmp(name, "execve") || !strcmp(name, "execveat")) {
		add_event(t_ns, pid, TR_EXEC);
	} else if (!strcmp(name, "fork") || !strcmp(name, "vfork") || !strcmp(name, "clone") ||
		   !strcmp(name, "clone3")) {
		if (!rv)
			return;
		e = add_event(t_ns, pid, TR_FORK);
		e->a = rv;
		bool share = !strcmp(name, "vfork") ||
			     (na > 0 && strstr(a[0], "CLONE_VM") != NULL);
		strcpy(e->s1, share ? "share" : "copy");
	} else if (!strcmp(name, "mmap") && na >= 6) {
		uint64_t len;
		if (!hexnum(a[1], &len) || !len)
			return;
		e = add_event(t_ns, pid, TR_MAP);
		e->a = rv;
		e->b = len;
		prot_letters(a[2], e->s1);
		bool anon = strstr(a[3], "MAP_ANONYMOUS") != NULL;
		bool shared = strstr(a[3], "MAP_SHARED") != NULL;
		strcpy(e->s2, shared ? (anon ? "shared-anon" : "shared-file") : (anon ? "anon" : "file"));
	} else if (!strcmp(name, "munmap") && na >= 2) {
		uint64_t addr, len;
		if (!hexnum(a[0], &addr) || !hexnum(a[1], &len) || !len)
			return;
		e = add_event(t_ns, pid, TR_UNMAP);
		e->a = addr;
		e->b = len;
	} else if ((!strcmp(name, "mprotect") || !strcmp(name, "pkey_mprotect")) && na >= 3) {
		uint64_t addr, len;
		if (!hexnum(a[0], &addr) || !hexnum(a[1], &len) || !len)
			return;
		e = add_event(t_ns, pid, TR_PROTECT);
		e->a = addr;
		e->b = len;
		prot_letters(a[2], e->s1);
	} else if (!strcmp(name, "madvise") && na >= 3) {
		uint64_t addr, len;
		if (!hexnum(a[0], &addr) || !hexnum(a[1], &len) || !len)
			return;
		e = add_event(t_ns, pid, TR_ADVISE);
		e->a = addr;
		e->b = len;
		const char *adv = strncmp(a[2], "MADV_", 5) ? a[2] : a[2] + 5;
		size_t i;
		for (i = 0; adv[i] && i + 1 < sizeof(e->s1); i++)
			e->s1[i] = (char)(adv[i] >= 'A' && adv[i] <= 'Z' ? adv[i] + 32 : adv[i]);
		e->s1[i] = 0;
	} else if (!strcmp(name, "brk") && na >= 1) {
		e = add_event(t_ns, pid, TR_BRK);   /* resolved against the old break later */
		e->b = rv;
	} else if (!strcmp(name, "mremap") && na >= 3) {
		uint64_t old, oldlen, newlen;
		if (!hexnum(a[0], &old) || !hexnum(a[1], &oldlen) || !hexnum(a[2], &newlen) ||
		    !oldlen || !newlen)
			return;
		e = add_event(t_ns, pid, TR_REMAP);
		e->a = old;
		e->b = oldlen;
		e->c = rv;
		e->d = newlen;
	}
}

static int parse_strace(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "ptkit trace: cannot read the strace log: %s\n", strerror(errno));
		return -1;
	}
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	while ((len = getline(&line, &cap, f)) != -1) {
		if (len && line[len - 1] == '\n')
			line[--len] = 0;
		unsigned long pid;
		unsigned long long sec, usec;
		int off = 0;
		if (sscanf(line, "%lu %llu.%llu %n", &pid, &sec, &usec, &off) != 3 || !off)
			continue;
		uint64_t t_ns = (uint64_t)sec * 1000000000ull + (uint64_t)usec * 1000ull;
		char *rest = line + off;
		if (!strncmp(rest, "+++ exited", 10) || !strncmp(rest, "+++ killed", 10)) {
			add_event(t_ns, (uint32_t)pid, TR_EXIT);
			continue;
		}
		if (!strncmp(rest, "---", 3))
			continue;
		char *unf = strstr(rest, " <unfinished ...>");
		if (unf) {
			*unf = 0;
			pend = realloc(pend, (npend + 1) * sizeof(*pend));
			pend[npend++] = (struct pending){ (uint32_t)pid, t_ns, strdup(rest) };
			continue;
		}
		if (!strncmp(rest, "<... ", 5)) {
			char *res = strstr(rest, " resumed>");
			if (!res)
				continue;
			for (size_t i = 0; i < npend; i++)
				if (pend[i].pid == pid) {
					size_t n = strlen(pend[i].text) + strlen(res + 9) + 1;
					char *joined = malloc(n);
					snprintf(joined, n, "%s%s", pend[i].text, res + 9);
					handle_call((uint32_t)pid, pend[i].t_ns, joined);
					free(joined);
					free(pend[i].text);
					pend[i] = pend[--npend];
					break;
				}
			continue;
		}
		handle_call((uint32_t)pid, t_ns, rest);
	}
	free(line);
	fclose(f);
	for (size_t i = 0; i < npend; i++)
		free(pend[i].text);
	free(pend);
	pend = NULL;
	npend = 0;
	return 0;
}

/* perf script -F tid,time,addr,ip --ns: "TID SEC.NSEC: ADDR IP" */
static size_t parse_faults(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	char *line = NULL;
	size_t cap = 0, n = 0;
	while (getline(&line, &cap, f) != -1) {
		unsigned long tid;
		unsigned long long sec, nsec, addr, ip;
		if (sscanf(line, " %lu %llu.%llu: %llx %llx", &tid, &sec, &nsec, &addr, &ip) != 5)
			continue;
		struct rev *e = add_event(sec * 1000000000ull + nsec, (uint32_t)tid, TR_FAULT);
		e->a = addr;
		strcpy(e->s1, (addr >> 12) == (ip >> 12) ? "x" : "-");
		n++;
	}
	free(line);
	fclose(f);
	return n;
}

/* ---- the model of the spaces: which faults hit no recorded mapping ------- */

struct ival { uint64_t s, e; };
struct sspace {
	struct ival *v;
	size_t n, cap;
	size_t birth;            /* index (in sorted order) of the event that made it */
	uint32_t birth_pid;
	uint64_t *pages;         /* uncovered fault pages */
	size_t npages, cappages;
};
static struct sspace *spaces;
static size_t nspaces, capspaces;

static int space_new(size_t birth, uint32_t pid)
{
	if (nspaces == capspaces) {
		capspaces = capspaces ? capspaces * 2 : 64;
		spaces = realloc(spaces, capspaces * sizeof(*spaces));
	}
	memset(&spaces[nspaces], 0, sizeof(spaces[0]));
	spaces[nspaces].birth = birth;
	spaces[nspaces].birth_pid = pid;
	return (int)nspaces++;
}

static void ival_remove(struct sspace *sp, uint64_t s, uint64_t e)
{
	for (size_t i = 0; i < sp->n; i++) {
		struct ival *v = &sp->v[i];
		if (v->e <= s || v->s >= e)
			continue;
		if (v->s < s && v->e > e) {        /* split */
			if (sp->n == sp->cap) {
				sp->cap = sp->cap ? sp->cap * 2 : 32;
				sp->v = realloc(sp->v, sp->cap * sizeof(*sp->v));
				v = &sp->v[i];
			}
			sp->v[sp->n++] = (struct ival){ e, v->e };
			v->e = s;
		} else if (v->s < s) {
			v->e = s;
		} else if (v->e > e) {
			v->s = e;
		} else {
			*v = sp->v[--sp->n];
			i--;
		}
	}
}

static void ival_add(struct sspace *sp, uint64_t s, uint64_t e)
{
	ival_remove(sp, s, e);
	if (sp->n == sp->cap) {
		sp->cap = sp->cap ? sp->cap * 2 : 32;
		sp->v = realloc(sp->v, sp->cap * sizeof(*sp->v));
	}
	sp->v[sp->n++] = (struct ival){ s, e };
}

static bool ival_covers(const struct sspace *sp, uint64_t a)
{
	for (size_t i = 0; i < sp->n; i++)
		if (a >= sp->v[i].s && a < sp->v[i].e)
			return true;
	return false;
}

static int cmp_ev(const void *x, const void *y)
{
	const struct rev *a = x, *b = y;
	if (a->t_ns != b->t_ns)
		return a->t_ns < b->t_ns ? -1 : 1;
	if ((a->op == TR_FAULT) != (b->op == TR_FAULT))
		return a->op == TR_FAULT ? 1 : -1;   /* system call first */
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static int cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
	return (a > b) - (a < b);
}

struct pidstate { uint32_t pid; int space; uint64_t brk; bool seen, gone; };
static struct pidstate *ps;
static size_t nps;

static struct pidstate *pid_get(uint32_t pid, bool create)
{
	for (size_t i = nps; i-- > 0;)
		if (ps[i].pid == pid && !ps[i].gone)
			return &ps[i];
	if (!create)
		return NULL;
	ps = realloc(ps, (nps + 1) * sizeof(*ps));
	ps[nps] = (struct pidstate){ pid, -1, 0, false, false };
	return &ps[nps++];
}

/* Walk the sorted events: assign spaces, resolve brk, drop what the trace
 * cannot use, collect uncovered fault pages per space.  Marks dropped
 * events with op 0. */
static void model(void)
{
	for (size_t i = 0; i < nev; i++) {
		struct rev *e = &ev[i];
		struct pidstate *p = pid_get(e->pid, e->op != TR_FAULT);
		if (!p) {            /* fault of a process strace never saw */
			e->op = 0;
			continue;
		}
		if (p->space < 0 || e->op == TR_EXEC) {
			if (e->op == TR_FAULT || e->op == TR_EXIT) {
				e->op = 0;   /* before the first exec: strace's own child */
				continue;
			}
			p->space = space_new(i, e->pid);
			p->brk = 0;
			e->space = p->space;
			if (e->op == TR_EXEC)
				continue;
		}
		struct sspace *sp = &spaces[p->space];
		switch (e->op) {
		case TR_FORK: {
			struct pidstate *old = pid_get((uint32_t)e->a, false);
			if (old)
				old->gone = true;
			uint64_t brk = p->brk;
			int parent_space = p->space;
			struct pidstate *c = pid_get((uint32_t)e->a, true);
			p = NULL;            /* ps may have moved */
			c->brk = brk;
			if (!strcmp(e->s1, "share")) {
				c->space = parent_space;
			} else {
				c->space = space_new(i, (uint32_t)e->a);
				struct sspace *src = &spaces[parent_space], *dst = &spaces[c->space];
				for (size_t j = 0; j < src->n; j++)
					ival_add(dst, src->v[j].s, src->v[j].e);
			}
			e->space = c->space;
			break;
		}
		case TR_EXIT:
			p->gone = true;
			break;
		case TR_MAP:
			ival_add(sp, e->a, e->a + page_up(e->b));
			break;
		case TR_UNMAP:
			ival_remove(sp, e->a, e->a + page_up(e->b));
			break;
		case TR_BRK:
			if (!p->brk || e->b == p->brk) {
				p->brk = e->b;
				e->op = 0;            /* brk(NULL) or unchanged */
				break;
			}
			e->a = p->brk;
			p->brk = e->b;
			if (page_up(e->b) > page_up(e->a))
				ival_add(sp, page_up(e->a), page_up(e->b));
			else if (page_up(e->b) < page_up(e->a))
				ival_remove(sp, page_up(e->b), page_up(e->a));
			else
				e->op = 0;            /* within the same page */
			break;
		case TR_REMAP:
			ival_remove(sp, e->a, e->a + page_up(e->b));
			ival_add(sp, e->c, e->c + page_up(e->d));
			break;
		case TR_FAULT:
			if (!ival_covers(sp, e->a)) {
				if (sp->npages == sp->cappages) {
					sp->cappages = sp->cappages ? sp->cappages * 2 : 256;
					sp->pages = realloc(sp->pages, sp->cappages * sizeof(uint64_t));
				}
				sp->pages[sp->npages++] = e->a & ~(uint64_t)(PAGE - 1);
			}
			break;
		default:
			break;
		}
	}
}

/* ---- writing -------------------------------------------------------------- */

static void write_event(FILE *f, uint64_t t0, const struct rev *e)
{
	uint64_t t = (e->t_ns - t0) / 1000;
	switch (e->op) {
	case TR_EXEC:
		fprintf(f, "%" PRIu64 " %u exec\n", t, e->pid);
		break;
	case TR_FORK:
		fprintf(f, "%" PRIu64 " %u fork %" PRIu64 " %s\n", t, e->pid, e->a, e->s1);
		break;
	case TR_EXIT:
		fprintf(f, "%" PRIu64 " %u exit\n", t, e->pid);
		break;
	case TR_MAP:
		fprintf(f, "%" PRIu64 " %u map 0x%" PRIx64 " 0x%" PRIx64 " %s %s\n", t, e->pid, e->a, e->b,
			e->s1, e->s2);
		break;
	case TR_UNMAP:
		fprintf(f, "%" PRIu64 " %u unmap 0x%" PRIx64 " 0x%" PRIx64 "\n", t, e->pid, e->a, e->b);
		break;
	case TR_PROTECT:
		fprintf(f, "%" PRIu64 " %u protect 0x%" PRIx64 " 0x%" PRIx64 " %s\n", t, e->pid, e->a, e->b,
			e->s1);
		break;
	case TR_ADVISE:
		fprintf(f, "%" PRIu64 " %u advise 0x%" PRIx64 " 0x%" PRIx64 " %s\n", t, e->pid, e->a, e->b,
			e->s1);
		break;
	case TR_BRK:
		fprintf(f, "%" PRIu64 " %u brk 0x%" PRIx64 " 0x%" PRIx64 "\n", t, e->pid, e->a, e->b);
		break;
	case TR_REMAP:
		fprintf(f, "%" PRIu64 " %u remap 0x%" PRIx64 " 0x%" PRIx64 " 0x%" PRIx64 " 0x%" PRIx64 "\n",
			t, e->pid, e->a, e->b, e->c, e->d);
		break;
	case TR_FAULT:
		fprintf(f, "%" PRIu64 " %u fault 0x%" PRIx64 " %s\n", t, e->pid, e->a, e->s1);
		break;
	default:
		break;
	}
}

/* Region lines for the uncovered faults of the space born at event @i. */
static unsigned write_regions(FILE *f, uint64_t t0, size_t i)
{
	unsigned n = 0;
	for (size_t s = 0; s < nspaces; s++) {
		struct sspace *sp = &spaces[s];
		if (sp->birth != i || !sp->npages)
			continue;
		qsort(sp->pages, sp->npages, sizeof(uint64_t), cmp_u64);
		uint64_t t = (ev[i].t_ns - t0) / 1000;
		for (size_t j = 0; j < sp->npages;) {
			uint64_t start = sp->pages[j], end = start + PAGE;
			for (j++; j < sp->npages && sp->pages[j] < end + CLUSTER_GAP; j++)
				if (sp->pages[j] + PAGE > end)
					end = sp->pages[j] + PAGE;
			fprintf(f, "%" PRIu64 " %u region 0x%" PRIx64 " 0x%" PRIx64 " rwx\n", t, sp->birth_pid,
				start, end - start);
			n++;
		}
	}
	return n;
}

/* ---- running the tools ------------------------------------------------------ */

static int run(char *const argv[], const char *out_path, bool quiet)
{
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (out_path && !freopen(out_path, "w", stdout))
			_exit(126);
		if (quiet && !freopen("/dev/null", "w", stderr))
			_exit(126);
		execvp(argv[0], argv);
		_exit(127);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static bool have(const char *tool)
{
	char *argv[] = { (char *)tool, (char *)"--version", NULL };
	return run(argv, "/dev/null", true) == 0;
}

void trace_usage(FILE *f)
{
	fprintf(f,
"usage: ptkit trace record [-o FILE] [--no-faults] -- COMMAND [ARGS...]\n"
"\n"
"Runs COMMAND under strace (-f, memory and process system calls, with\n"
"timestamps) and, where perf may record page faults, under\n"
"`perf record -e page-faults -d`, and writes what its address spaces went\n"
"through as a ptkit trace (docs/trace-format.md) for `ptkit replay`.\n"
"Needs strace, and perf for the faults (scripts/deps.sh record installs\n"
"them); replay needs neither.\n"
"\n"
"  -o, --output FILE   where to write the trace (default: trace.txt)\n"
"      --no-faults     do not try perf: system calls only\n"
"\n"
"Exit status: 0 success (whatever COMMAND returned, which is printed),\n"
"1 recording failed, 2 bad usage.\n");
}

int trace_main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		trace_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (strcmp(argv[1], "record")) {
		fprintf(stderr, "ptkit trace: unknown subcommand '%s' (only 'record')\n", argv[1]);
		return 2;
	}
	argc--;
	argv++;
	const char *output = "trace.txt";
	bool want_faults = true;
	static const struct option opts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "no-faults", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+o:h", opts, NULL)) != -1) {
		switch (c) {
		case 'o': output = optarg; break;
		case 'n': want_faults = false; break;
		case 'h': trace_usage(stdout); return 0;
		default: trace_usage(stderr); return 2;
		}
	}
	if (optind == argc) {
		fprintf(stderr, "ptkit trace record: no command given (ptkit trace record -- COMMAND)\n");
		return 2;
	}
	char **cmd = argv + optind;
	int ncmd = argc - optind;
	if (!have("strace")) {
		fprintf(stderr, "ptkit trace record: strace is not installed (scripts/deps.sh record)\n");
		return 1;
	}
	const char *tmpbase = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char dir[4096], st_path[4200], perf_path[4200], faults_path[4200];
	snprintf(dir, sizeof(dir), "%s/ptkit-trace.XXXXXX", tmpbase);
	if (!mkdtemp(dir)) {
		fprintf(stderr, "ptkit trace record: cannot make a temporary directory: %s\n", strerror(errno));
		return 1;
	}
	snprintf(st_path, sizeof(st_path), "%s/strace.log", dir);
	snprintf(perf_path, sizeof(perf_path), "%s/perf.data", dir);
	snprintf(faults_path, sizeof(faults_path), "%s/faults.txt", dir);

	/* Can perf record page faults here? */
	bool faults = false;
	if (want_faults) {
		if (!have("perf")) {
			fprintf(stderr, "ptkit trace record: perf is not installed: recording system calls only\n");
		} else {
			char *probe[] = { "perf", "record", "-q", "-e", "page-faults", "-c", "1", "-d",
					  "-k", "CLOCK_REALTIME", "-o", perf_path, "--", "true", NULL };
			faults = run(probe, "/dev/null", true) == 0;
			if (!faults)
				fprintf(stderr, "ptkit trace record: perf may not record page faults here "
					"(see /proc/sys/kernel/perf_event_paranoid): recording system calls only\n");
		}
	}
	char *strace_argv[] = { "strace", "-f", "-ttt", "-q", "-e", "trace=memory,process",
				"-o", st_path, "--" };
	char *perf_argv[] = { "perf", "record", "-q", "-e", "page-faults", "-c", "1", "-d",
			      "-k", "CLOCK_REALTIME", "-o", perf_path, "--" };
	size_t np = faults ? sizeof(perf_argv) / sizeof(perf_argv[0]) : 0;
	size_t ns = sizeof(strace_argv) / sizeof(strace_argv[0]);
	char **full = calloc(np + ns + (size_t)ncmd + 1, sizeof(char *));
	memcpy(full, perf_argv, np * sizeof(char *));
	memcpy(full + np, strace_argv, ns * sizeof(char *));
	memcpy(full + np + ns, cmd, (size_t)ncmd * sizeof(char *));
	int status = run(full, NULL, false);
	free(full);
	int rc = 0;
	if (status < 0 || status == 127) {
		fprintf(stderr, "ptkit trace record: could not run the command under %s\n",
			faults ? "perf and strace" : "strace");
		rc = 1;
	}
	size_t nfaults = 0;
	if (!rc && parse_strace(st_path))
		rc = 1;
	if (!rc && faults) {
		char *script[] = { "perf", "script", "-i", perf_path, "-F", "tid,time,addr,ip", "--ns", NULL };
		if (run(script, faults_path, true) != 0)
			fprintf(stderr, "ptkit trace record: perf script failed: no faults in the trace\n");
		nfaults = parse_faults(faults_path);
	}
	if (!rc) {
		if (nev)
			qsort(ev, nev, sizeof(*ev), cmp_ev);
		model();
		FILE *f = fopen(output, "w");
		if (!f) {
			fprintf(stderr, "ptkit trace record: cannot write '%s': %s\n", output, strerror(errno));
			rc = 1;
		} else {
			char date[32];
			time_t now = time(NULL);
			strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
			fprintf(f, "%s\n# command:", TRACE_MAGIC);
			for (int i = 0; i < ncmd; i++)
				fprintf(f, " %s", cmd[i]);
			fprintf(f, "\n# recorded: %s by ptkit trace record (strace%s)\n", date,
				faults ? " and perf page-faults" : "");
			fprintf(f, "# faults: %s\n", faults && nfaults ? "yes" : "no");
			uint64_t t0 = 0;
			for (size_t i = 0; i < nev; i++)
				if (ev[i].op) {
					t0 = ev[i].t_ns;
					break;
				}
			size_t written = 0, regions = 0, nf = 0;
			for (size_t i = 0; i < nev; i++) {
				if (!ev[i].op)
					continue;
				write_event(f, t0, &ev[i]);
				written++;
				nf += ev[i].op == TR_FAULT;
				if (ev[i].op == TR_EXEC || ev[i].op == TR_FORK || ev[i].space >= 0)
					regions += write_regions(f, t0, i);
			}
			if (fclose(f)) {
				fprintf(stderr, "ptkit trace record: writing '%s' failed\n", output);
				rc = 1;
			} else if (!written) {
				fprintf(stderr, "ptkit trace record: nothing was recorded (the command exited "
					"with status %d before it ran: is it a program?)\n", status);
				unlink(output);
				rc = 1;
			} else {
				fprintf(stderr, "ptkit trace record: %s: %zu events (%zu faults, %zu inferred "
					"exec-time regions); the command exited with status %d\n",
					output, written + regions, nf, regions, status);
			}
		}
	}
	unlink(st_path);
	unlink(perf_path);
	unlink(faults_path);
	char old[4300];
	snprintf(old, sizeof(old), "%s.old", perf_path);
	unlink(old);
	rmdir(dir);
	free(ev);
	ev = NULL;
	nev = capev = 0;
	for (size_t s = 0; s < nspaces; s++) {
		free(spaces[s].v);
		free(spaces[s].pages);
	}
	free(spaces);
	free(ps);
	return rc;
}
