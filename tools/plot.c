/*
 * plot.c - `ptkit plot RESULTS.json`: plots of `ptkit bench --json`
 * results (schema ptkit-bench/1, docs/bench-schema.md) with gnuplot.
 *
 *   SCENARIO-METRIC.png   a scaling curve for every scenario and metric
 *                         measured at several thread counts: one line per
 *                         design (and other parameters), median with
 *                         min..max error bars
 *   ratios.png            every comparison as a bar: how many times the
 *                         first side is better than the second (log scale,
 *                         right of 1 = better)
 *
 * The JSON reader below is small and strict: enough for the documents
 * ptkit writes, with clear errors for anything else.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "plot.h"

/* ---- a minimal JSON reader ---------------------------------------------- */

enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

struct jval {
	enum jtype type;
	double num;
	char *str;                /* J_STR */
	struct jval *items;       /* J_ARR values, J_OBJ values */
	char **keys;              /* J_OBJ */
	size_t n;
};

struct jparser {
	const char *s, *start;
	const char *err;
};

static void skip_ws(struct jparser *p)
{
	while (*p->s == ' ' || *p->s == '\n' || *p->s == '\t' || *p->s == '\r')
		p->s++;
}

static bool parse_value(struct jparser *p, struct jval *v, int depth);

static bool parse_string(struct jparser *p, char **out)
{
	if (*p->s != '"') {
		p->err = "expected a string";
		return false;
	}
	p->s++;
	size_t cap = 32, n = 0;
	char *b = malloc(cap);
	while (*p->s != '"') {
		char c = *p->s++;
		if (!c) {
			free(b);
			p->err = "unterminated string";
			return false;
		}
		if (c == '\\') {
			c = *p->s++;
			switch (c) {
			case 'n': c = '\n'; break;
			case 't': c = '\t'; break;
			case 'r': c = '\r'; break;
			case 'b': c = '\b'; break;
			case 'f': c = '\f'; break;
			case 'u': {
				unsigned u = 0;
				for (int i = 0; i < 4; i++) {
					if (!isxdigit((unsigned char)p->s[i])) {
						free(b);
						p->err = "bad \\u escape";
						return false;
					}
					u = u * 16 + (unsigned)(isdigit((unsigned char)p->s[i]) ? p->s[i] - '0' :
								(tolower((unsigned char)p->s[i]) - 'a' + 10));
				}
				p->s += 4;
				c = u < 0x80 ? (char)u : '?';
				break;
			}
			case '"': case '\\': case '/': break;
			default:
				free(b);
				p->err = "bad escape";
				return false;
			}
		}
		if (n + 2 > cap)
			b = realloc(b, cap *= 2);
		b[n++] = c;
	}
	p->s++;
	b[n] = 0;
	*out = b;
	return true;
}

static bool parse_value(struct jparser *p, struct jval *v, int depth)
{
	memset(v, 0, sizeof(*v));
	if (depth > 32) {
		p->err = "nested too deeply";
		return false;
	}
	skip_ws(p);
	char c = *p->s;
	if (c == '{' || c == '[') {
		bool obj = c == '{';
		v->type = obj ? J_OBJ : J_ARR;
		p->s++;
		skip_ws(p);
		size_t cap = 0;
		if (*p->s == (obj ? '}' : ']')) {
			p->s++;
			return true;
		}
		for (;;) {
			if (v->n == cap) {
				cap = cap ? cap * 2 : 8;
				v->items = realloc(v->items, cap * sizeof(*v->items));
				if (obj)
					v->keys = realloc(v->keys, cap * sizeof(*v->keys));
			}
			skip_ws(p);
			if (obj) {
				if (!parse_string(p, &v->keys[v->n]))
					return false;
				skip_ws(p);
				if (*p->s != ':') {
					free(v->keys[v->n]);
					p->err = "expected ':'";
					return false;
				}
				p->s++;
			}
			if (!parse_value(p, &v->items[v->n], depth + 1)) {
				if (obj)
					free(v->keys[v->n]);
				return false;
			}
			v->n++;
			skip_ws(p);
			if (*p->s == ',') {
				p->s++;
				continue;
			}
			if (*p->s == (obj ? '}' : ']')) {
				p->s++;
				return true;
			}
			p->err = obj ? "expected ',' or '}'" : "expected ',' or ']'";
			return false;
		}
	}
	if (c == '"') {
		v->type = J_STR;
		return parse_string(p, &v->str);
	}
	if (!strncmp(p->s, "null", 4)) {
		p->s += 4;
		return true;
	}
	if (!strncmp(p->s, "true", 4) || !strncmp(p->s, "false", 5)) {
		v->type = J_BOOL;
		v->num = *p->s == 't';
		p->s += *p->s == 't' ? 4 : 5;
		return true;
	}
	char *end;
	v->num = strtod(p->s, &end);
	if (end == p->s || !(c == '-' || isdigit((unsigned char)c))) {
		p->err = "unexpected character";
		return false;
	}
	v->type = J_NUM;
	p->s = end;
	return true;
}

static void jfree(struct jval *v)
{
	for (size_t i = 0; i < v->n; i++) {
		jfree(&v->items[i]);
		if (v->type == J_OBJ)
			free(v->keys[i]);
	}
	free(v->items);
	free(v->keys);
	free(v->str);
}

static const struct jval *jget(const struct jval *o, const char *key)
{
	if (!o || o->type != J_OBJ)
		return NULL;
	for (size_t i = 0; i < o->n; i++)
		if (!strcmp(o->keys[i], key))
			return &o->items[i];
	return NULL;
}

static const char *jstr(const struct jval *o, const char *key)
{
	const struct jval *v = jget(o, key);
	return v && v->type == J_STR ? v->str : NULL;
}

static bool jnum(const struct jval *o, const char *key, double *out)
{
	const struct jval *v = jget(o, key);
	if (!v || v->type != J_NUM)
		return false;
	*out = v->num;
	return true;
}

/* ---- plotting ------------------------------------------------------------- */

struct opts {
	const char *dir, *format;
	bool keep;
};

static void sanitize(char *s)
{
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.')
			*s = '_';
}

/* A gnuplot string literal (single quotes, doubled). */
static void gp_quote(FILE *f, const char *s)
{
	fputc('\'', f);
	for (; *s; s++) {
		if (*s == '\'')
			fputc('\'', f);
		fputc(*s, f);
	}
	fputc('\'', f);
}

static const char *terminal(const struct opts *o)
{
	return !strcmp(o->format, "svg") ? "svg size 900,560 dynamic font 'sans,11'" :
					   "pngcairo size 900,560 font 'sans,10'";
}

static int run_gnuplot(const char *script)
{
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		execlp("gnuplot", "gnuplot", script, (char *)NULL);
		_exit(127);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* "k=v,k=v" without the threads entry. */
static void key_without_threads(const char *key, char *out, size_t len)
{
	out[0] = 0;
	char *copy = strdup(key), *save = NULL;
	size_t used = 0;
	for (char *kv = strtok_r(copy, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
		if (!strncmp(kv, "threads=", 8))
			continue;
		used += (size_t)snprintf(out + used, used < len ? len - used : 0, "%s%s",
					 used ? "," : "", kv);
	}
	free(copy);
}

struct point { const char *series; double x, med, min, max; int design, rest; };

/* Index of @s in @v (adding it), for colours by design and dash types by
 * the other parameters. */
static int intern(const char **v, int *n, const char *s)
{
	for (int i = 0; i < *n; i++)
		if (!strcmp(v[i], s))
			return i;
	if (*n == 64)
		return 63;
	v[*n] = s;
	return (*n)++;
}

static int cmp_point(const void *a, const void *b)
{
	const struct point *x = a, *y = b;
	int c = strcmp(x->series, y->series);
	return c ? c : (x->x > y->x) - (x->x < y->x);
}

/* One scaling plot per (scenario, metric) with >= 2 thread counts. */
static int plot_scaling(const struct jval *meas, const struct opts *o, int *made)
{
	/* distinct (scenario, metric) pairs */
	for (size_t i = 0; i < meas->n; i++) {
		const struct jval *m = &meas->items[i];
		const char *scn = jstr(m, "scenario"), *met = jstr(m, "metric");
		double th;
		if (!scn || !met || !jnum(jget(m, "params"), "threads", &th))
			continue;
		bool seen = false;
		for (size_t j = 0; j < i && !seen; j++) {
			const struct jval *q = &meas->items[j];
			double t2;
			seen = jstr(q, "scenario") && jstr(q, "metric") && !strcmp(jstr(q, "scenario"), scn) &&
			       !strcmp(jstr(q, "metric"), met) && jnum(jget(q, "params"), "threads", &t2);
		}
		if (seen)
			continue;
		/* collect its points */
		struct point *pts = calloc(meas->n, sizeof(*pts));
		char **names = calloc(meas->n, sizeof(char *));
		char **rests = calloc(meas->n, sizeof(char *));
		const char *dv[64], *rv[64];
		int nd = 0, nr = 0;
		size_t np = 0;
		double tmin = INFINITY, tmax = -INFINITY;
		const char *unit = jstr(m, "unit") ? jstr(m, "unit") : "";
		for (size_t j = i; j < meas->n; j++) {
			const struct jval *q = &meas->items[j];
			double t, med, mn, mx;
			if (!jstr(q, "scenario") || strcmp(jstr(q, "scenario"), scn) || !jstr(q, "metric") ||
			    strcmp(jstr(q, "metric"), met) || !jnum(jget(q, "params"), "threads", &t) ||
			    !jnum(q, "median", &med))
				continue;
			if (!jnum(q, "min", &mn))
				mn = med;
			if (!jnum(q, "max", &mx))
				mx = med;
			char rest[256], name[384];
			key_without_threads(jstr(q, "params_key") ? jstr(q, "params_key") : "", rest, sizeof(rest));
			snprintf(name, sizeof(name), "%s%s%s", jstr(q, "design") ? jstr(q, "design") : "?",
				 *rest ? " " : "", rest);
			names[np] = strdup(name);
			rests[np] = strdup(rest);
			pts[np] = (struct point){ names[np], t, med, mn, mx,
						  intern(dv, &nd, jstr(q, "design") ? jstr(q, "design") : "?"),
						  intern(rv, &nr, rests[np]) };
			np++;
			tmin = t < tmin ? t : tmin;
			tmax = t > tmax ? t : tmax;
		}
		if (tmax > tmin) {
			qsort(pts, np, sizeof(*pts), cmp_point);
			char base[512], dat[600], gp[600], out[600];
			snprintf(base, sizeof(base), "%s-%s", scn, met);
			sanitize(base);
			snprintf(dat, sizeof(dat), "%s/%s.dat", o->dir, base);
			snprintf(gp, sizeof(gp), "%s/%s.gp", o->dir, base);
			snprintf(out, sizeof(out), "%s/%s.%s", o->dir, base, o->format);
			FILE *d = fopen(dat, "w"), *g = fopen(gp, "w");
			if (!d || !g) {
				fprintf(stderr, "ptkit plot: cannot write in '%s': %s\n", o->dir, strerror(errno));
				if (d) fclose(d);
				if (g) fclose(g);
				for (size_t j = 0; j < np; j++) {
					free(names[j]);
					free(rests[j]);
				}
				free(names);
				free(rests);
				free(pts);
				return 1;
			}
			/* one data block per series, separated by two blank lines */
			size_t nseries = 0;
			const char *series[64];
			int sdesign[64], srest[64];
			for (size_t j = 0; j < np; j++) {
				if (j == 0 || strcmp(pts[j].series, pts[j - 1].series)) {
					if (j)
						fputs("\n\n", d);
					if (nseries < 64) {
						sdesign[nseries] = pts[j].design;
						srest[nseries] = pts[j].rest;
						series[nseries++] = pts[j].series;
					}
				}
				fprintf(d, "%g %g %g %g\n", pts[j].x, pts[j].med, pts[j].min, pts[j].max);
			}
			fclose(d);
			fprintf(g, "set terminal %s\nset output ", terminal(o));
			gp_quote(g, out);
			fprintf(g, "\nset title ");
			char title[512];
			snprintf(title, sizeof(title), "%s: %s by thread count (median, min..max)", scn, met);
			gp_quote(g, title);
			fprintf(g, "\nset xlabel 'threads'\nset ylabel ");
			char yl[256];
			snprintf(yl, sizeof(yl), "%s (%s)", met, unit);
			gp_quote(g, yl);
			fprintf(g, "\nset key outside right top\nset grid\nset xtics 1\n"
				   "set xrange [%g:%g]\nset yrange [0:*]\nset pointsize 1.2\n"
				   "set datafile separator whitespace\nset termoption noenhanced\nplot ",
				tmin - 0.25, tmax + 0.25);
			for (size_t k = 0; k < nseries; k++) {
				fprintf(g, "%s", k ? ", \\\n     " : "");
				gp_quote(g, dat);
				fprintf(g, " index %zu using 1:2:3:4 with yerrorlines lw 2 lc %d dt %d pt %d title ",
					k, sdesign[k] + 1, srest[k] + 1, sdesign[k] + 1);
				gp_quote(g, series[k]);
			}
			fputc('\n', g);
			fclose(g);
			int rc = run_gnuplot(gp);
			if (rc) {
				fprintf(stderr, "ptkit plot: gnuplot failed on %s (%s)\n", gp,
					rc == 127 ? "gnuplot not installed: scripts/deps.sh lab" : "see its message");
				for (size_t j = 0; j < np; j++) {
					free(names[j]);
					free(rests[j]);
				}
				free(names);
				free(rests);
				free(pts);
				return 1;
			}
			printf("%s\n", out);
			(*made)++;
			if (!o->keep) {
				unlink(dat);
				unlink(gp);
			}
		}
		for (size_t j = 0; j < np; j++) {
			free(names[j]);
			free(rests[j]);
		}
		free(names);
		free(rests);
		free(pts);
	}
	return 0;
}

/* Every comparison as a horizontal bar of the gain of a over b. */
static int plot_ratios(const struct jval *cmps, const struct opts *o, int *made)
{
	if (!cmps || cmps->type != J_ARR || !cmps->n)
		return 0;
	char dat[600], gp[600], out[600];
	snprintf(dat, sizeof(dat), "%s/ratios.dat", o->dir);
	snprintf(gp, sizeof(gp), "%s/ratios.gp", o->dir);
	snprintf(out, sizeof(out), "%s/ratios.%s", o->dir, o->format);
	FILE *d = fopen(dat, "w"), *g = fopen(gp, "w");
	if (!d || !g) {
		fprintf(stderr, "ptkit plot: cannot write in '%s': %s\n", o->dir, strerror(errno));
		if (d) fclose(d);
		if (g) fclose(g);
		return 1;
	}
	size_t n = 0;
	double lo = 1, hi = 1;
	fprintf(d, "# gain label colour\n");
	for (size_t i = 0; i < cmps->n; i++) {
		const struct jval *c = &cmps->items[i];
		double r;
		const char *better = jstr(c, "better");
		if (!jnum(c, "ratio", &r) || !(r > 0) || !better)
			continue;
		double gain = !strcmp(better, "lower") ? 1 / r : r;
		char label[512];
		snprintf(label, sizeof(label), "%s %s %s: %s / %s",
			 jstr(c, "scenario") ? jstr(c, "scenario") : "?",
			 jstr(c, "metric") ? jstr(c, "metric") : "?",
			 jstr(c, "params_key") ? jstr(c, "params_key") : "",
			 jstr(c, "a") ? jstr(c, "a") : "?", jstr(c, "b") ? jstr(c, "b") : "?");
		for (char *s = label; *s; s++)
			if (*s == '"')
				*s = '\'';
		fprintf(d, "%g \"%s\" %d\n", gain, label, gain >= 1 ? 0x2e8b57 : 0xc0392b);
		lo = gain < lo ? gain : lo;
		hi = gain > hi ? gain : hi;
		n++;
	}
	fclose(d);
	unsigned height = 120 + 16 * (unsigned)n;
	fprintf(g, "set terminal %s\n", terminal(o));
	/* taller than the default when there are many bars */
	fprintf(g, "set terminal %s size 1100,%u\nset output ", !strcmp(o->format, "svg") ? "svg" : "pngcairo",
		height < 400 ? 400 : height);
	gp_quote(g, out);
	fprintf(g, "\nset title 'Comparisons: how many times the first design is better (log scale; right of 1 = better)'\n"
		   "set termoption noenhanced\nset logscale x 2\nset xrange [%g:%g]\n"
		   "set yrange [-0.7:%zu-0.3]\nset ytics nomirror font ',8'\nset grid xtics\n"
		   "set style fill solid 0.7 border -1\nunset key\nset xlabel 'gain (x)'\n"
		   "set arrow from 1, graph 0 to 1, graph 1 nohead lw 2\n"
		   "plot ", lo / 1.5, hi * 1.5, n);
	gp_quote(g, dat);
	fprintf(g, " using (1):0:(($1 < 1) ? $1 : 1):(($1 < 1) ? 1 : $1):($0-0.38):($0+0.38):3:ytic(2) "
		   "with boxxyerror lc rgb variable\n");
	fclose(g);
	if (!n) {
		unlink(dat);
		unlink(gp);
		return 0;
	}
	int rc = run_gnuplot(gp);
	if (rc) {
		fprintf(stderr, "ptkit plot: gnuplot failed on %s (%s)\n", gp,
			rc == 127 ? "gnuplot not installed: scripts/deps.sh lab" : "see its message");
		return 1;
	}
	printf("%s\n", out);
	(*made)++;
	if (!o->keep) {
		unlink(dat);
		unlink(gp);
	}
	return 0;
}

void plot_usage(FILE *f)
{
	fprintf(f,
"usage: ptkit plot [-o DIR] [--format png|svg] [--keep] RESULTS.json\n"
"\n"
"Turns `ptkit bench --json` results into plots with gnuplot: a scaling\n"
"curve (median and min..max by thread count, one line per design) for each\n"
"scenario and metric measured at several thread counts, and a bar chart of\n"
"every comparison (ratios.png).  Prints the files it wrote.\n"
"\n"
"  -o, --output DIR     where to write the plots (default: plots)\n"
"  -f, --format FMT     png (default) or svg\n"
"  -k, --keep           keep the gnuplot scripts and data beside the plots\n"
"\n"
"Exit status: 0 success, 1 unreadable results or gnuplot failed, 2 bad usage.\n");
}

int plot_main(int argc, char **argv)
{
	struct opts o = { "plots", "png", false };
	static const struct option lo[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "format", required_argument, NULL, 'f' },
		{ "keep", no_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "o:f:kh", lo, NULL)) != -1) {
		switch (c) {
		case 'o': o.dir = optarg; break;
		case 'f':
			if (strcmp(optarg, "png") && strcmp(optarg, "svg")) {
				fprintf(stderr, "ptkit plot: --format: '%s' is not png or svg\n", optarg);
				return 2;
			}
			o.format = optarg;
			break;
		case 'k': o.keep = true; break;
		case 'h': plot_usage(stdout); return 0;
		default: plot_usage(stderr); return 2;
		}
	}
	if (argc - optind != 1) {
		fprintf(stderr, "ptkit plot: expected one results file (ptkit bench --json -o results.json)\n");
		return 2;
	}
	const char *path = argv[optind];
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "ptkit plot: cannot read '%s': %s\n", path, strerror(errno));
		return 1;
	}
	size_t cap = 1 << 16, n = 0, r;
	char *buf = malloc(cap);
	while ((r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
		n += r;
		if (n + 1 == cap)
			buf = realloc(buf, cap *= 2);
	}
	fclose(f);
	buf[n] = 0;
	struct jparser p = { buf, buf, NULL };
	struct jval doc;
	bool ok = parse_value(&p, &doc, 0);
	if (ok) {
		skip_ws(&p);
		if (*p.s) {
			ok = false;
			p.err = "trailing characters after the document";
		}
	}
	if (!ok) {
		unsigned line = 1;
		for (const char *s = buf; s < p.s; s++)
			line += *s == '\n';
		fprintf(stderr, "ptkit plot: %s:%u: not valid JSON: %s\n", path, line, p.err);
		free(buf);
		return 1;
	}
	free(buf);
	const char *schema = jstr(&doc, "schema");
	if (!schema || strcmp(schema, "ptkit-bench/1")) {
		fprintf(stderr, "ptkit plot: %s: not ptkit bench results (schema '%s', expected ptkit-bench/1)\n",
			path, schema ? schema : "none");
		jfree(&doc);
		return 1;
	}
	const struct jval *meas = jget(&doc, "measurements"), *cmps = jget(&doc, "comparisons");
	if (!meas || meas->type != J_ARR) {
		fprintf(stderr, "ptkit plot: %s: no measurements array\n", path);
		jfree(&doc);
		return 1;
	}
	if (mkdir(o.dir, 0777) && errno != EEXIST) {
		fprintf(stderr, "ptkit plot: cannot create '%s': %s\n", o.dir, strerror(errno));
		jfree(&doc);
		return 1;
	}
	int made = 0;
	int rc = plot_scaling(meas, &o, &made);
	if (!rc)
		rc = plot_ratios(cmps, &o, &made);
	jfree(&doc);
	if (!rc && !made)
		fprintf(stderr, "ptkit plot: %s: nothing to plot (no thread scaling, no comparisons)\n", path);
	return rc;
}
