/*
 * ptkit - the lab's command-line tool.
 *
 *   ptkit demo [options]     a small multithreaded workload, with figures
 *   ptkit bench [SCENARIO]   benchmarks (bench.c)
 *   ptkit plot RESULTS.json  plots of bench results (plot.c)
 *   ptkit trace record -- COMMAND   record a real program (trace_record.c)
 *   ptkit replay TRACE       replay a trace on ptkit (trace.c)
 *   ptkit torture [options]  every torture workload with random modes (torture.c)
 *   ptkit help [COMMAND]     usage
 *
 * Exit status: 0 success, 1 a check failed, 2 bad usage.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "plot.h"
#include "trace.h"

int torture_main(int argc, char **argv);
void torture_usage(FILE *f);
#include "ptkit/ptkit.h"

#define MiB (UINT64_C(1) << 20)
#define GiB (UINT64_C(1) << 30)

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13; *s ^= *s >> 7; *s ^= *s << 17;
	return *s;
}

/* Parse a non-negative integer option; exits with status 2 on junk. */
static uint64_t parse_u64(const char *cmd, const char *opt, const char *arg,
			  uint64_t min, uint64_t max)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(arg, &end, 0);
	if (errno || *end || arg[0] == '-' || v < min || v > max) {
		fprintf(stderr, "ptkit %s: %s: '%s' is not a number in [%" PRIu64 ", %" PRIu64 "]\n",
			cmd, opt, arg, min, max);
		exit(2);
	}
	return v;
}

/* ---- demo ------------------------------------------------------------- */

struct demo_cfg {
	unsigned threads, levels;
	double seconds;
	uint64_t pool, seed;
};

struct demo_thread {
	const struct demo_cfg *cfg;
	struct ptk_ctx *ctx;
	struct ptk_as *shared;
	unsigned id;
	/* results */
	uint64_t spaces, maps, unmaps, protects, drops, faults, xlates, errors,
		 peak_table_bytes;
};

static _Atomic int demo_stop;

static void *demo_worker(void *arg)
{
	struct demo_thread *t = arg;
	uint64_t s = t->cfg->seed * 2654435761u + t->id + 1;
	while (!demo_stop) {
		/* A short-lived private address space per round, as a process. */
		struct ptk_as *as;
		if (ptk_as_create(t->ctx, t->cfg->levels, &as)) {
			t->errors++;
			break;
		}
		t->spaces++;
		for (int round = 0; round < 16 && !demo_stop; round++) {
			struct ptk_as *target = (round & 3) == 0 ? t->shared : as;
			uint64_t pages = 1 + rnd(&s) % 256, len = pages << PTK_PAGE_SHIFT;
			uint64_t va = 0;
			if (ptk_map_anon(target, &va, len, PTK_PROT_READ | PTK_PROT_WRITE, 0)) {
				t->errors++;
				continue;
			}
			t->maps++;
			for (uint64_t p = 0; p < pages; p++) {
				struct ptk_xlate x;
				if (ptk_translate_fault(target, va + (p << PTK_PAGE_SHIFT),
							PTK_ACCESS_WRITE, &x) == 0) {
					*(uint64_t *)x.host = va + p;
					t->faults++;
				} else {
					t->errors++;
				}
			}
			for (uint64_t p = 0; p < pages; p++) {
				struct ptk_xlate x;
				uint64_t a = va + (rnd(&s) % pages << PTK_PAGE_SHIFT);
				if (ptk_translate(target, a, &x) == 0 &&
				    *(uint64_t *)x.host == va + ((a - va) >> PTK_PAGE_SHIFT))
					t->xlates++;
				else
					t->errors++;
			}
			if (ptk_protect(target, va, len, PTK_PROT_READ) == 0)
				t->protects++;
			if (ptk_fault(target, va, PTK_ACCESS_WRITE) != -EACCES)
				t->errors++;
			uint64_t half = (pages / 2 ? pages / 2 : 1) << PTK_PAGE_SHIFT;
			if (ptk_drop(target, va, half) == 0)
				t->drops++;
			struct ptk_as_stats st;
			ptk_as_stats(target, &st);
			if (st.table_bytes > t->peak_table_bytes)
				t->peak_table_bytes = st.table_bytes;
			if (ptk_unmap(target, va, len) == 0)
				t->unmaps++;
		}
		ptk_as_destroy(as);
	}
	ptk_thread_unregister();
	return NULL;
}

static void demo_usage(FILE *f)
{
	fprintf(f,
"usage: ptkit demo [--threads N] [--seconds S] [--pool MIB] [--levels 4|5] [--seed N]\n"
"\n"
"Runs a small multithreaded workload: each thread creates short-lived\n"
"address spaces, maps anonymous regions in them and in one shared address\n"
"space, write-faults and translates every page, write-protects, drops and\n"
"unmaps.  Prints what it did: address spaces, mappings, faults, frames and\n"
"page-table bytes in use, elapsed time; then checks that every frame came\n"
"back to the pool.\n"
"\n"
"  -t, --threads N   worker threads (default 4)\n"
"  -s, --seconds S   how long to run (default 3)\n"
"  -p, --pool MIB    frame pool size in MiB (default 512)\n"
"  -l, --levels L    page-table levels, 4 or 5 (default 4)\n"
"      --seed N      random seed (default: time based, printed)\n");
}

static int cmd_demo(int argc, char **argv)
{
	struct demo_cfg cfg = { .threads = 4, .levels = 4, .seconds = 3,
				.pool = 512 * MiB, .seed = (uint64_t)time(NULL) };
	static const struct option opts[] = {
		{ "threads", required_argument, NULL, 't' },
		{ "seconds", required_argument, NULL, 's' },
		{ "pool", required_argument, NULL, 'p' },
		{ "levels", required_argument, NULL, 'l' },
		{ "seed", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "t:s:p:l:h", opts, NULL)) != -1) {
		switch (c) {
		case 't': cfg.threads = (unsigned)parse_u64("demo", "--threads", optarg, 1, 256); break;
		case 's': cfg.seconds = (double)parse_u64("demo", "--seconds", optarg, 0, 3600); break;
		case 'p': cfg.pool = parse_u64("demo", "--pool", optarg, 4, 1u << 20) * MiB; break;
		case 'l': cfg.levels = (unsigned)parse_u64("demo", "--levels", optarg, 4, 5); break;
		case 'S': cfg.seed = parse_u64("demo", "--seed", optarg, 0, UINT64_MAX); break;
		case 'h': demo_usage(stdout); return 0;
		default: demo_usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "ptkit demo: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}

	struct ptk_ctx_config cc;
	ptk_ctx_config_default(&cc);
	cc.pool_bytes = cfg.pool;
	cc.levels = cfg.levels;
	struct ptk_ctx *ctx;
	int rc = ptk_ctx_create(&cc, &ctx);
	if (rc) {
		fprintf(stderr, "ptkit demo: cannot create context: %s\n", strerror(-rc));
		return 1;
	}
	struct ptk_as *shared;
	if ((rc = ptk_as_create(ctx, cfg.levels, &shared))) {
		fprintf(stderr, "ptkit demo: cannot create address space: %s\n", strerror(-rc));
		return 1;
	}
	/* A 64 GiB special mapping of 2 MiB and 1 GiB leaves: no memory. */
	uint64_t big = 0;
	rc = ptk_map_special(shared, &big, 64 * GiB, 1u << 30, PTK_PROT_READ, PTK_MAP_HUGE);
	if (rc) {
		fprintf(stderr, "ptkit demo: special mapping failed: %s\n", strerror(-rc));
		return 1;
	}

	printf("ptkit demo: %u threads, %.0f s, pool %" PRIu64 " MiB, %u-level tables, seed %" PRIu64 "\n",
	       cfg.threads, cfg.seconds, cfg.pool / MiB, cfg.levels, cfg.seed);
	struct demo_thread *th = calloc(cfg.threads, sizeof(*th));
	pthread_t *tid = calloc(cfg.threads, sizeof(*tid));
	double t0 = now_s();
	for (unsigned i = 0; i < cfg.threads; i++) {
		th[i] = (struct demo_thread){ .cfg = &cfg, .ctx = ctx, .shared = shared, .id = i };
		pthread_create(&tid[i], NULL, demo_worker, &th[i]);
	}
	uint64_t peak_frames = 0;
	while (now_s() - t0 < cfg.seconds) {
		struct timespec ts = { 0, 20 * 1000 * 1000 };
		nanosleep(&ts, NULL);
		struct ptk_pool_stats ps;
		ptk_pool_stats(ctx, &ps);
		if (ps.capacity - ps.free > peak_frames)
			peak_frames = ps.capacity - ps.free;
	}
	demo_stop = 1;
	struct demo_thread sum = { 0 };
	for (unsigned i = 0; i < cfg.threads; i++) {
		pthread_join(tid[i], NULL);
		sum.spaces += th[i].spaces;
		sum.maps += th[i].maps;
		sum.unmaps += th[i].unmaps;
		sum.protects += th[i].protects;
		sum.drops += th[i].drops;
		sum.faults += th[i].faults;
		sum.xlates += th[i].xlates;
		sum.errors += th[i].errors;
		if (th[i].peak_table_bytes > sum.peak_table_bytes)
			sum.peak_table_bytes = th[i].peak_table_bytes;
	}
	double elapsed = now_s() - t0;

	struct ptk_as_stats sst;
	ptk_as_stats(shared, &sst);
	struct ptk_pool_stats before;
	ptk_ctx_quiesce(ctx);
	ptk_pool_stats(ctx, &before);
	ptk_as_destroy(shared);
	ptk_ctx_quiesce(ctx);
	struct ptk_pool_stats after;
	ptk_pool_stats(ctx, &after);

	printf("\n%-34s %14s\n", "what", "count");
	printf("%-34s %14" PRIu64 "\n", "address spaces created+destroyed", sum.spaces + 1);
	printf("%-34s %14" PRIu64 "\n", "mappings", sum.maps);
	printf("%-34s %14" PRIu64 "\n", "unmaps", sum.unmaps);
	printf("%-34s %14" PRIu64 "\n", "protection changes", sum.protects);
	printf("%-34s %14" PRIu64 "\n", "drops (MADV_DONTNEED)", sum.drops);
	printf("%-34s %14" PRIu64 "\n", "write faults + translations", sum.faults);
	printf("%-34s %14" PRIu64 "\n", "checked lookups", sum.xlates);
	printf("%-34s %14" PRIu64 "\n", "errors", sum.errors);
	printf("%-34s %14.2f\n", "elapsed (s)", elapsed);
	printf("%-34s %14.0f\n", "faults per second", sum.faults / elapsed);
	printf("%-34s %14.0f\n", "lookups per second", sum.xlates / elapsed);
	printf("%-34s %14" PRIu64 "\n", "peak frames in use (4 KiB)", peak_frames);
	printf("%-34s %14" PRIu64 "\n", "peak page-table bytes, one space", sum.peak_table_bytes);
	printf("%-34s %14" PRIu64 "\n", "64 GiB special map: table bytes", sst.table_bytes);
	printf("%-34s %14" PRIu64 "\n", "frames in use before last destroy",
	       before.capacity - before.free);
	printf("%-34s %14" PRIu64 "\n", "frames in use at the end", after.capacity - after.free);
	printf("%-34s %14" PRIu64 "\n", "pool allocations (4 KiB units)", after.allocs);

	int ok = after.free == after.capacity && after.allocs == after.frees && sum.errors == 0;
	printf("\nframe accounting: %s\n", ok ? "every frame is back in the pool" : "FAILED");
	ptk_ctx_destroy(ctx);
	free(th);
	free(tid);
	return ok ? 0 : 1;
}

/* ---- dispatch ----------------------------------------------------------- */

struct command {
	const char *name, *summary;
	int (*run)(int, char **);
	void (*usage)(FILE *);
};

static const struct command commands[] = {
	{ "demo", "a small multithreaded workload with figures", cmd_demo, demo_usage },
	{ "bench", "benchmarks: old design beside new, medians and ratios", bench_main, bench_usage },
	{ "plot", "PNG/SVG plots of bench results (gnuplot)", plot_main, plot_usage },
	{ "trace", "record what a real program does to its address space", trace_main, trace_usage },
	{ "replay", "replay recorded traces on ptkit address spaces", replay_main, replay_usage },
	{ "torture", "soak: every torture workload with random design modes", torture_main, torture_usage },
};

static void usage(FILE *f)
{
	fprintf(f, "usage: ptkit COMMAND [options]   (ptkit help COMMAND for details)\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "  %-10s %s\n", "help", "this text, or a command's usage");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	const char *name = argv[1];
	if (!strcmp(name, "help") || !strcmp(name, "--help") || !strcmp(name, "-h")) {
		if (argc > 2)
			for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
				if (!strcmp(argv[2], commands[i].name)) {
					commands[i].usage(stdout);
					return 0;
				}
		usage(stdout);
		return argc > 2 ? 2 : 0;
	}
	if (!strcmp(name, "--version")) {
		printf("ptkit 0.1.0%s\n", ptk_debug_build() ? " (debug)" : "");
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(name, commands[i].name))
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "ptkit: unknown command '%s'\n", name);
	usage(stderr);
	return 2;
}
