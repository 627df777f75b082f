/*
 * bench.c - the benchmark driver: options, aggregation, text/JSON/CSV.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "ptkit/ptkit.h"

struct measurement {
	char *scenario, *design, *params, *metric, *unit;
	double *v;
	unsigned n, cap;
};

struct comparison {
	char *scenario, *metric, *params, *a, *b, *better;
};

static struct measurement *meas;
static unsigned nmeas, capmeas;
static struct comparison *cmps;
static unsigned ncmps, capcmps;
static bool progress_tty;
static const char *current_scenario;
static char command_line[1024];         /* for the JSON header */

double bench_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

uint64_t bench_rand(uint64_t *s)
{
	*s ^= *s << 13; *s ^= *s >> 7; *s ^= *s << 17;
	return *s;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

double bench_median(double *v, unsigned n)
{
	if (!n)
		return NAN;
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static char *xstrdup(const char *s)
{
	char *d = strdup(s ? s : "");
	if (!d) {
		fprintf(stderr, "ptkit bench: out of memory\n");
		exit(1);
	}
	return d;
}

static void *grow(void *p, unsigned *cap, size_t elem)
{
	*cap = *cap ? *cap * 2 : 64;
	p = realloc(p, *cap * elem);
	if (!p) {
		fprintf(stderr, "ptkit bench: out of memory\n");
		exit(1);
	}
	return p;
}

static struct measurement *find(const char *scenario, const char *design,
				const char *params, const char *metric)
{
	for (unsigned i = 0; i < nmeas; i++)
		if (!strcmp(meas[i].scenario, scenario) && !strcmp(meas[i].design, design) &&
		    !strcmp(meas[i].params, params) && !strcmp(meas[i].metric, metric))
			return &meas[i];
	return NULL;
}

void bench_sample(const char *scenario, const char *design, const char *params,
		  const char *metric, const char *unit, double value)
{
	params = params ? params : "";
	struct measurement *m = find(scenario, design, params, metric);
	if (!m) {
		if (nmeas == capmeas)
			meas = grow(meas, &capmeas, sizeof(*meas));
		m = &meas[nmeas++];
		*m = (struct measurement){ xstrdup(scenario), xstrdup(design), xstrdup(params),
					   xstrdup(metric), xstrdup(unit), NULL, 0, 0 };
	}
	if (m->n == m->cap)
		m->v = grow(m->v, &m->cap, sizeof(double));
	m->v[m->n++] = value;
}

void bench_compare(const char *scenario, const char *metric, const char *params,
		   const char *a, const char *b, const char *better)
{
	params = params ? params : "";
	for (unsigned i = 0; i < ncmps; i++)
		if (!strcmp(cmps[i].scenario, scenario) && !strcmp(cmps[i].metric, metric) &&
		    !strcmp(cmps[i].params, params) && !strcmp(cmps[i].a, a) &&
		    !strcmp(cmps[i].b, b))
			return;
	if (ncmps == capcmps)
		cmps = grow(cmps, &capcmps, sizeof(*cmps));
	cmps[ncmps++] = (struct comparison){ xstrdup(scenario), xstrdup(metric), xstrdup(params),
					     xstrdup(a), xstrdup(b), xstrdup(better) };
}

void bench_progress(const char *fmt, ...)
{
	if (!progress_tty)
		return;
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "\r\033[K[%s] ", current_scenario ? current_scenario : "");
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fflush(stderr);
}

struct stats { double median, min, max; };

static struct stats stats_of(struct measurement *m)
{
	double *tmp = malloc(m->n * sizeof(double));
	memcpy(tmp, m->v, m->n * sizeof(double));
	struct stats s = { bench_median(tmp, m->n), tmp[0], tmp[m->n - 1] };
	free(tmp);
	return s;
}

static bool ratio_of(struct comparison *c, double *ratio)
{
	struct measurement *a = find(c->scenario, c->a, c->params, c->metric);
	struct measurement *b = find(c->scenario, c->b, c->params, c->metric);
	if (!a || !b)
		return false;
	double ma = stats_of(a).median, mb = stats_of(b).median;
	if (mb == 0 || isnan(ma) || isnan(mb))
		return false;
	*ratio = ma / mb;
	return true;
}

/* ---- output ------------------------------------------------------------- */

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", *s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

/* Whether @s is a JSON number in the narrow form the schema allows for
 * parameter values: an optional minus, digits, optionally a fraction.  No
 * exponent, no leading '+', no "inf"/"nan", no unit suffix ("64M" stays a
 * string).  docs/bench-schema.md states this rule. */
static bool json_plain_number(const char *s)
{
	if (*s == '-')
		s++;
	if (!(*s >= '0' && *s <= '9'))
		return false;
	if (*s == '0' && s[1] >= '0' && s[1] <= '9')
		return false;               /* leading zero: not JSON */
	while (*s >= '0' && *s <= '9')
		s++;
	if (*s == '.') {
		s++;
		if (!(*s >= '0' && *s <= '9'))
			return false;
		while (*s >= '0' && *s <= '9')
			s++;
	}
	return *s == 0;
}

/* A double as JSON: finite values with 6 significant digits, null
 * otherwise (JSON has no NaN or infinity). */
static void json_num(FILE *f, double v)
{
	if (isfinite(v))
		fprintf(f, "%.6g", v);
	else
		fputs("null", f);
}

/* "k=v,k=v" as a JSON object: plain decimal values become numbers, every
 * other value a string; keys in the order the scenario wrote them. */
static void json_params(FILE *f, const char *params)
{
	fputc('{', f);
	char *copy = xstrdup(params), *save = NULL;
	bool first = true;
	for (char *kv = strtok_r(copy, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(kv, '=');
		if (!eq)
			continue;
		*eq = 0;
		fprintf(f, "%s", first ? "" : ", ");
		first = false;
		json_str(f, kv);
		fputs(": ", f);
		if (json_plain_number(eq + 1))
			fputs(eq + 1, f);
		else
			json_str(f, eq + 1);
	}
	free(copy);
	fputc('}', f);
}

static void json_opt_u64(FILE *f, const char *key, uint64_t v)
{
	fprintf(f, ", ");
	json_str(f, key);
	if (v)
		fprintf(f, ": %" PRIu64, v);
	else
		fputs(": null", f);
}

/* Schema "ptkit-bench/1": see docs/bench-schema.md (keep them in step). */
static void print_json(FILE *f, const struct bench_params *p)
{
	char date[32];
	time_t t = time(NULL);
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
	fprintf(f, "{\n  \"schema\": \"ptkit-bench/1\",\n  \"date\": \"%s\",\n", date);
	fputs("  \"command\": ", f);
	json_str(f, command_line);
	fprintf(f, ",\n  \"cpus\": %ld,\n  \"repeat\": %u,\n  \"seed\": %" PRIu64 ",\n",
		sysconf(_SC_NPROCESSORS_ONLN), p->repeat, p->seed);
	fprintf(f, "  \"options\": {\"quick\": %s", p->quick ? "true" : "false");
	json_opt_u64(f, "threads", p->threads);
	json_opt_u64(f, "size", p->size);
	fputs(", \"seconds\": ", f);
	if (p->seconds > 0)
		json_num(f, p->seconds);
	else
		fputs("null", f);
	fputs("},\n  \"measurements\": [\n", f);
	for (unsigned i = 0; i < nmeas; i++) {
		struct stats s = stats_of(&meas[i]);
		fputs("    {\"scenario\": ", f);
		json_str(f, meas[i].scenario);
		fputs(", \"design\": ", f);
		json_str(f, meas[i].design);
		fputs(", \"params\": ", f);
		json_params(f, meas[i].params);
		fputs(", \"params_key\": ", f);
		json_str(f, meas[i].params);
		fputs(", \"metric\": ", f);
		json_str(f, meas[i].metric);
		fputs(", \"unit\": ", f);
		json_str(f, meas[i].unit);
		fputs(", \"median\": ", f);
		json_num(f, s.median);
		fputs(", \"min\": ", f);
		json_num(f, s.min);
		fputs(", \"max\": ", f);
		json_num(f, s.max);
		fprintf(f, ", \"runs\": %u}%s\n", meas[i].n, i + 1 < nmeas ? "," : "");
	}
	fputs("  ],\n  \"comparisons\": [\n", f);
	bool first = true;
	for (unsigned i = 0; i < ncmps; i++) {
		double r;
		if (!ratio_of(&cmps[i], &r))
			continue;
		struct measurement *ma = find(cmps[i].scenario, cmps[i].a, cmps[i].params, cmps[i].metric);
		struct measurement *mb = find(cmps[i].scenario, cmps[i].b, cmps[i].params, cmps[i].metric);
		fprintf(f, "%s    {\"scenario\": ", first ? "" : ",\n");
		first = false;
		json_str(f, cmps[i].scenario);
		fputs(", \"metric\": ", f);
		json_str(f, cmps[i].metric);
		fputs(", \"unit\": ", f);
		json_str(f, ma->unit);
		fputs(", \"params\": ", f);
		json_params(f, cmps[i].params);
		fputs(", \"params_key\": ", f);
		json_str(f, cmps[i].params);
		fputs(", \"a\": ", f);
		json_str(f, cmps[i].a);
		fputs(", \"b\": ", f);
		json_str(f, cmps[i].b);
		fputs(", \"better\": ", f);
		json_str(f, cmps[i].better);
		fputs(", \"a_median\": ", f);
		json_num(f, stats_of(ma).median);
		fputs(", \"b_median\": ", f);
		json_num(f, stats_of(mb).median);
		fputs(", \"ratio\": ", f);
		json_num(f, r);
		bool a_better = !strcmp(cmps[i].better, "lower") ? r < 1 : r > 1;
		fprintf(f, ", \"a_better\": %s}", a_better ? "true" : "false");
	}
	fputs(first ? "  ]\n}\n" : "\n  ]\n}\n", f);
}

static void csv_field(FILE *f, const char *s)
{
	bool quote = strpbrk(s, ",\"\n") != NULL;
	if (!quote) {
		fputs(s, f);
		return;
	}
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

static void print_csv(FILE *f)
{
	fputs("record,scenario,design_or_a,b,params,metric,unit,median,min,max,runs,ratio,better\n", f);
	for (unsigned i = 0; i < nmeas; i++) {
		struct stats s = stats_of(&meas[i]);
		fputs("measurement,", f);
		csv_field(f, meas[i].scenario); fputc(',', f);
		csv_field(f, meas[i].design); fputs(",,", f);
		csv_field(f, meas[i].params); fputc(',', f);
		csv_field(f, meas[i].metric); fputc(',', f);
		csv_field(f, meas[i].unit);
		fprintf(f, ",%.6g,%.6g,%.6g,%u,,\n", s.median, s.min, s.max, meas[i].n);
	}
	for (unsigned i = 0; i < ncmps; i++) {
		double r;
		if (!ratio_of(&cmps[i], &r))
			continue;
		fputs("comparison,", f);
		csv_field(f, cmps[i].scenario); fputc(',', f);
		csv_field(f, cmps[i].a); fputc(',', f);
		csv_field(f, cmps[i].b); fputc(',', f);
		csv_field(f, cmps[i].params); fputc(',', f);
		csv_field(f, cmps[i].metric);
		fprintf(f, ",,,,,,%.6g,", r);
		csv_field(f, cmps[i].better);
		fputc('\n', f);
	}
}

static void print_text(FILE *f, const struct bench_params *p)
{
	fprintf(f, "ptkit bench: %u repetitions per point, medians; seed %" PRIu64 "; %ld CPUs\n\n",
		p->repeat, p->seed, sysconf(_SC_NPROCESSORS_ONLN));
	fprintf(f, "%-16s %-14s %-26s %-18s %12s %12s %12s %-10s\n", "scenario", "design",
		"params", "metric", "median", "min", "max", "unit");
	for (unsigned i = 0; i < nmeas; i++) {
		struct stats s = stats_of(&meas[i]);
		fprintf(f, "%-16s %-14s %-26s %-18s %12.4g %12.4g %12.4g %-10s\n",
			meas[i].scenario, meas[i].design, meas[i].params, meas[i].metric,
			s.median, s.min, s.max, meas[i].unit);
	}
	if (!ncmps)
		return;
	fprintf(f, "\n%-16s %-18s %-26s %-32s %10s\n", "comparison", "metric", "params",
		"a / b", "ratio");
	for (unsigned i = 0; i < ncmps; i++) {
		double r;
		if (!ratio_of(&cmps[i], &r))
			continue;
		char ab[96];
		snprintf(ab, sizeof(ab), "%s / %s", cmps[i].a, cmps[i].b);
		double gain = !strcmp(cmps[i].better, "lower") ? 1 / r : r;
		fprintf(f, "%-16s %-18s %-26s %-32s %10.3g  (%s %s: %.3gx)\n", cmps[i].scenario,
			cmps[i].metric, cmps[i].params, ab, r, cmps[i].a,
			gain >= 1 ? "better" : "worse", gain >= 1 ? gain : 1 / gain);
	}
}

/* ---- command line ----------------------------------------------------- */

static bool in_default_suite(const char *name)
{
	for (unsigned i = 0; bench_default_suite[i]; i++)
		if (!strcmp(bench_default_suite[i], name))
			return true;
	return false;
}

void bench_usage(FILE *f)
{
	fprintf(f,
"usage: ptkit bench [options] [SCENARIO...]\n"
"\n"
"Runs each scenario --repeat times, old design beside new (and the peers),\n"
"and prints medians, spreads and ratios.  Without scenario names it runs\n"
"the default suite (marked * in --list, about two minutes, 3 repetitions\n"
"unless --repeat is given).\n"
"\n"
"  -l, --list          list the scenarios, one line each\n"
"  -a, --all           run every scenario, not just the default suite\n"
"  -t, --threads N     maximum thread count for scaling scenarios\n"
"  -S, --size BYTES    working-set size (suffixes K, M, G)\n"
"  -s, --seconds S     length of each timed phase\n"
"  -r, --repeat N      repetitions per point (default 5; default suite 3)\n"
"      --seed N        random seed (default: time based, printed)\n"
"  -q, --quick         smallest sizes (a smoke run)\n"
"      --json          machine-readable output (schema ptkit-bench/1)\n"
"      --csv           CSV output\n"
"  -o, --output FILE   write the results to FILE instead of stdout\n"
"      --save FILE     also write the JSON results to FILE (for ptkit plot)\n"
"\n"
"Exit status: 0 success, 1 a scenario failed, 2 bad usage.\n"
"JSON schema: docs/bench-schema.md.  Plots: ptkit plot RESULTS.json.\n");
}

static int parse_size(const char *arg, uint64_t *out)
{
	char *end;
	errno = 0;
	double v = strtod(arg, &end);
	if (errno || end == arg || v < 0)
		return -EINVAL;
	switch (*end) {
	case 'k': case 'K': v *= 1 << 10; end++; break;
	case 'm': case 'M': v *= 1 << 20; end++; break;
	case 'g': case 'G': v *= (double)(1 << 30); end++; break;
	default: break;
	}
	if (*end && strcmp(end, "iB") && strcmp(end, "B"))
		return -EINVAL;
	*out = (uint64_t)v;
	return 0;
}

int bench_main(int argc, char **argv)
{
	struct bench_params p = { .repeat = 5, .seed = (uint64_t)time(NULL) };
	enum { TEXT, JSON, CSV } fmt = TEXT;
	const char *output = NULL, *save = NULL;
	static const struct option opts[] = {
		{ "list", no_argument, NULL, 'l' },
		{ "threads", required_argument, NULL, 't' },
		{ "size", required_argument, NULL, 'S' },
		{ "seconds", required_argument, NULL, 's' },
		{ "repeat", required_argument, NULL, 'r' },
		{ "seed", required_argument, NULL, 'x' },
		{ "quick", no_argument, NULL, 'q' },
		{ "json", no_argument, NULL, 'j' },
		{ "csv", no_argument, NULL, 'c' },
		{ "output", required_argument, NULL, 'o' },
		{ "all", no_argument, NULL, 'a' },
		{ "save", required_argument, NULL, 'J' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c;
	char *end;
	bool all = false, explicit_repeat = false;
	size_t used = 0;
	command_line[0] = 0;
	for (int i = 0; i < argc && used + 2 < sizeof(command_line); i++)
		used += (size_t)snprintf(command_line + used, sizeof(command_line) - used, "%s%s",
					 i ? " " : "ptkit ", argv[i]);
	optind = 1;
	while ((c = getopt_long(argc, argv, "lt:S:s:r:qao:h", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			for (unsigned i = 0; bench_scenarios[i]; i++)
				printf("%-16s %c %s\n", bench_scenarios[i]->name,
				       in_default_suite(bench_scenarios[i]->name) ? '*' : ' ',
				       bench_scenarios[i]->summary);
			printf("(* = in the default suite, run by `ptkit bench` without scenario names)\n");
			return 0;
		case 't':
			p.threads = (unsigned)strtoul(optarg, &end, 10);
			if (*end || !p.threads || p.threads > 1024) {
				fprintf(stderr, "ptkit bench: --threads: '%s' is not in [1, 1024]\n", optarg);
				return 2;
			}
			break;
		case 'S':
			if (parse_size(optarg, &p.size) || !p.size) {
				fprintf(stderr, "ptkit bench: --size: '%s' is not a size (e.g. 64M)\n", optarg);
				return 2;
			}
			break;
		case 's':
			p.seconds = strtod(optarg, &end);
			if (*end || !(p.seconds > 0) || p.seconds > 3600) {
				fprintf(stderr, "ptkit bench: --seconds: '%s' is not in (0, 3600]\n", optarg);
				return 2;
			}
			break;
		case 'r':
			p.repeat = (unsigned)strtoul(optarg, &end, 10);
			if (*end || !p.repeat || p.repeat > 1000) {
				fprintf(stderr, "ptkit bench: --repeat: '%s' is not in [1, 1000]\n", optarg);
				return 2;
			}
			explicit_repeat = true;
			break;
		case 'x':
			p.seed = strtoull(optarg, &end, 0);
			if (*end) {
				fprintf(stderr, "ptkit bench: --seed: '%s' is not a number\n", optarg);
				return 2;
			}
			break;
		case 'q': p.quick = true; break;
		case 'a': all = true; break;
		case 'j': fmt = JSON; break;
		case 'c': fmt = CSV; break;
		case 'o': output = optarg; break;
		case 'J': save = optarg; break;
		case 'h': bench_usage(stdout); return 0;
		default: bench_usage(stderr); return 2;
		}
	}
	/* Which scenarios: named ones (checked first), or all. */
	const struct bench_scenario *run[64];
	unsigned nrun = 0;
	for (int i = optind; i < argc; i++) {
		unsigned j;
		for (j = 0; bench_scenarios[j]; j++)
			if (!strcmp(argv[i], bench_scenarios[j]->name))
				break;
		if (!bench_scenarios[j]) {
			fprintf(stderr, "ptkit bench: unknown scenario '%s' (see ptkit bench --list)\n", argv[i]);
			return 2;
		}
		if (nrun < 64)
			run[nrun++] = bench_scenarios[j];
	}
	if (nrun && all) {
		fprintf(stderr, "ptkit bench: --all and scenario names exclude each other\n");
		return 2;
	}
	if (!nrun) {
		for (unsigned j = 0; bench_scenarios[j] && nrun < 64; j++)
			if (all || in_default_suite(bench_scenarios[j]->name))
				run[nrun++] = bench_scenarios[j];
		/* The default suite is sized to finish in about two minutes. */
		if (!all && !explicit_repeat)
			p.repeat = bench_default_repeat;
	}
	FILE *out = stdout, *saved = NULL;
	if (output && !(out = fopen(output, "w"))) {
		fprintf(stderr, "ptkit bench: cannot write '%s': %s\n", output, strerror(errno));
		return 1;
	}
	if (save && !(saved = fopen(save, "w"))) {
		fprintf(stderr, "ptkit bench: cannot write '%s': %s\n", save, strerror(errno));
		return 1;
	}
	progress_tty = isatty(2);
	int status = 0;
	for (unsigned i = 0; i < nrun; i++) {
		current_scenario = run[i]->name;
		for (unsigned r = 0; r < p.repeat; r++) {
			p.rep = r;
			bench_progress("repetition %u/%u", r + 1, p.repeat);
			int rc = run[i]->run(&p);
			if (rc) {
				fprintf(stderr, "%sptkit bench: scenario %s failed: %s\n",
					progress_tty ? "\n" : "", run[i]->name, strerror(-rc));
				status = 1;
				break;
			}
		}
	}
	if (progress_tty)
		fprintf(stderr, "\r\033[K");
	if (fmt == JSON)
		print_json(out, &p);
	else if (fmt == CSV)
		print_csv(out);
	else
		print_text(out, &p);
	if (out != stdout)
		fclose(out);
	if (saved) {
		print_json(saved, &p);
		fclose(saved);
	}
	return status;
}

void *bench_fault_worker(void *p)
{
	struct bench_fault_arg *a = p;
	ptk_thread_register();
	pthread_barrier_wait(a->start);
	double t0 = bench_now();
	for (uint64_t off = 0; off < a->len; off += PTK_PAGE_SIZE) {
		int rc = ptk_fault(a->as, a->va + off, PTK_ACCESS_WRITE);
		if (rc) {
			a->rc = rc;
			break;
		}
	}
	a->secs = bench_now() - t0;
	ptk_thread_unregister();
	return NULL;
}
