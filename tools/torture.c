/*
 * torture.c - `ptkit torture`: every torture workload, in rounds, with
 * random design modes, for as long as asked.
 *
 * Each round draws its own seed from the run's seed (round 0 uses the run's
 * seed itself), and from it: a design mode among those this build accepts
 * (contexts are probed once at start: a design not implemented yet returns
 * -EOPNOTSUPP and is left out), levels, pool and cache sizes, and each
 * workload's parameters.  Workloads (tools/torture.h):
 *   stress_as  concurrent writers and lockless readers on one address space,
 *              per-thread models, frame accounting
 *   model      random operation sequences on several address spaces checked
 *              step by step against the reference model (the fuzz target
 *              fed with seeded random bytes), frame accounting
 * A round prints one progress line; an invariant violation prints the
 * round's seed and the command that replays the round (`--seed S` runs it
 * as round 0), then the run stops with exit status 1.  The model workload
 * aborts on a disagreement after the round line is printed.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fuzz_as.h"
#include "torture.h"
#include "ptkit/ptkit.h"

#define MiB (UINT64_C(1) << 20)

int torture_main(int argc, char **argv);
void torture_usage(FILE *f);

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t mix(uint64_t *s)   /* splitmix64 */
{
	uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

/* A broken invariant aborts (PTK_BUG_ON, the model workload's checks):
 * name the round's seed first.  The message is formatted before the round
 * runs, so the handler only calls write(). */
static char abort_msg[256];
static volatile size_t abort_len;

static void on_abort(int sig)
{
	if (abort_len)
		(void)!write(2, abort_msg, abort_len);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Every design combination this build accepts. */
struct mode { struct ptk_ctx_config cfg; char name[96]; };

static unsigned probe_modes(struct mode *out, unsigned max)
{
	static const char *ks[] = { "eager", "lazy", "legacy" }, *wm[] = { "rcu", "ipi" },
			  *gm[] = { "stack", "legacy" }, *tm[] = { "sync", "lazy" },
			  *rm[] = { "sleeping", "spin" };
	unsigned n = 0;
	for (unsigned k = 0; k < 3; k++)
	for (unsigned w = 0; w < 2; w++)
	for (unsigned g = 0; g < 2; g++)
	for (unsigned t = 0; t < 2; t++)
	for (unsigned r = 0; r < 2; r++) {
		struct ptk_ctx_config c;
		ptk_ctx_config_default(&c);
		c.pool_bytes = 2 * MiB;
		c.kernel_sync = (enum ptk_kernel_sync)k;
		c.walk_mode = (enum ptk_walk_mode)w;
		c.gather_mode = (enum ptk_gather_mode)g;
		c.tlb_mode = (enum ptk_tlb_mode)t;
		c.rmap_lock = (enum ptk_rmap_lock)r;
		struct ptk_ctx *ctx;
		int rc = ptk_ctx_create(&c, &ctx);
		if (rc)
			continue;       /* -EOPNOTSUPP: not in this build */
		ptk_ctx_destroy(ctx);
		if (n < max) {
			out[n].cfg = c;
			snprintf(out[n].name, sizeof(out[n].name), "ksync=%s walk=%s gather=%s tlb=%s rmap=%s",
				 ks[k], wm[w], gm[g], tm[t], rm[r]);
			n++;
		}
	}
	return n;
}

void torture_usage(FILE *f)
{
	fprintf(f,
"usage: ptkit torture [--seconds N] [--seed S] [--threads T] [--quiet]\n"
"\n"
"Runs every torture workload together, in rounds, with random design modes\n"
"(only those this build accepts), levels, pool and cache sizes, for N\n"
"seconds.  Each round prints its seed and what it ran; an invariant\n"
"violation prints the round's seed and how to replay it, and stops.\n"
"\n"
"  -s, --seconds N   how long to run (default 10)\n"
"      --seed S      the run's seed (default: time based); round 0 uses it\n"
"  -t, --threads T   at most T writer threads per round (default 4)\n"
"  -q, --quiet       only the summary and failures\n"
"\n"
"Workloads: stress_as (concurrent writers with per-thread models and\n"
"lockless readers on one address space), model (random operations on\n"
"several address spaces checked against the reference model after every\n"
"step).  Both end each round with frame accounting.\n");
}

static uint64_t parse_num(const char *opt, const char *arg, uint64_t max)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(arg, &end, 0);
	if (errno || *end || arg[0] == '-' || !arg[0] || v > max) {
		fprintf(stderr, "ptkit torture: %s: '%s' is not a number in [0, %" PRIu64 "]\n",
			opt, arg, max);
		exit(2);
	}
	return v;
}

int torture_main(int argc, char **argv)
{
	double seconds = 10;
	uint64_t seed = (uint64_t)time(NULL) * 2654435761u;
	unsigned max_threads = 4;
	int quiet = 0;
	static const struct option opts[] = {
		{ "seconds", required_argument, NULL, 's' },
		{ "seed", required_argument, NULL, 'S' },
		{ "threads", required_argument, NULL, 't' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "s:t:qh", opts, NULL)) != -1) {
		switch (c) {
		case 's': seconds = (double)parse_num("--seconds", optarg, 7 * 24 * 3600); break;
		case 'S': seed = parse_num("--seed", optarg, UINT64_MAX); break;
		case 't': max_threads = (unsigned)parse_num("--threads", optarg, 64); break;
		case 'q': quiet = 1; break;
		case 'h': torture_usage(stdout); return 0;
		default: torture_usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "ptkit torture: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (max_threads < 1)
		max_threads = 1;
	struct mode modes[64];
	unsigned nmodes = probe_modes(modes, 64);
	if (!nmodes) {
		fprintf(stderr, "ptkit torture: this build accepts no design mode\n");
		return 1;
	}
	printf("ptkit torture: %.0f s, seed %" PRIu64 ", %u design mode%s accepted by this build\n",
	       seconds, seed, nmodes, nmodes == 1 ? "" : "s");
	fflush(stdout);

	signal(SIGABRT, on_abort);
	double t0 = now_s();
	uint64_t chain = seed, rounds = 0, ops = 0, lookups = 0, inputs = 0;
	int failed = 0;
	for (uint64_t round = 0; !failed; round++) {
		double left = seconds - (now_s() - t0);
		if (left <= 0 || (round > 0 && left < 0.2))
			break;
		uint64_t rs = round == 0 ? seed : mix(&chain);
		uint64_t s = rs;
		const struct mode *m = &modes[mix(&s) % nmodes];
		struct torture_cfg cfg = {
			.seed = rs,
			.writers = 1 + (unsigned)(mix(&s) % max_threads),
			.readers = (unsigned)(mix(&s) % 3),
			.levels = 4 + (unsigned)(mix(&s) % 2),
			.ctx_cfg = m->cfg,
		};
		cfg.ctx_cfg.pool_bytes = (64 + mix(&s) % 4 * 64) * MiB;
		cfg.ctx_cfg.cache_shards = 1 + (unsigned)(mix(&s) % 8);
		cfg.ctx_cfg.cache_frames = 2 + (unsigned)(mix(&s) % 255);
		cfg.ctx_cfg.levels = cfg.levels;
		double slice = left < 3 ? left : 3;
		cfg.seconds = slice * 0.6;
		if (!quiet) {
			printf("round %" PRIu64 " seed %" PRIu64 ": %s, %u levels, pool %" PRIu64
			       " MiB, %u shards x %u frames; stress_as %u writers %u readers %.1f s; model\n",
			       round, rs, m->name, cfg.levels, cfg.ctx_cfg.pool_bytes / MiB,
			       cfg.ctx_cfg.cache_shards, cfg.ctx_cfg.cache_frames, cfg.writers,
			       cfg.readers, cfg.seconds);
			fflush(stdout);
		}
		abort_len = 0;
		int len = snprintf(abort_msg, sizeof(abort_msg),
				   "ptkit torture: invariant violated in round %" PRIu64 ", seed %" PRIu64
				   ": replay with ptkit torture --seed %" PRIu64 " --seconds 3"
				   " (FUZZ_AS_SAVE=FILE keeps the model workload's input)\n",
				   round, rs, rs);
		abort_len = len > 0 && (size_t)len < sizeof(abort_msg) ? (size_t)len : 0;
		/* stress_as */
		struct torture_result res;
		int rc = torture_as_run(&cfg, &res);
		if (rc != 0) {
			fprintf(stderr, "ptkit torture: round %" PRIu64 " seed %" PRIu64
				": stress_as: %s\n", round, rs,
				rc < 0 ? strerror(-rc) : res.first_failure);
			failed = 1;
			break;
		}
		ops += res.ops;
		lookups += res.lookups;
		/* model: random inputs until the round's time is up */
		fuzz_as_ctx_config = &cfg.ctx_cfg;
		double end = now_s() + slice * 0.4;
		uint8_t buf[8 * 256];
		do {
			size_t n = 8 * (1 + mix(&s) % 256);
			for (size_t i = 0; i < n; i += 8) {
				uint64_t r = mix(&s);
				memcpy(buf + i, &r, 8);
			}
			LLVMFuzzerTestOneInput(buf, n);
			inputs++;
		} while (now_s() < end);
		fuzz_as_ctx_config = NULL;
		rounds++;
	}
	abort_len = 0;
	double el = now_s() - t0;
	printf("ptkit torture: %" PRIu64 " rounds in %.1f s: %" PRIu64 " stress ops, %" PRIu64
	       " lockless lookups, %" PRIu64 " model inputs; %s\n", rounds, el, ops, lookups,
	       inputs, failed ? "INVARIANT VIOLATED" : "no invariant violated");
	if (failed)
		printf("replay the failing round with: ptkit torture --seed <its seed> --seconds 3\n");
	printf("%d passed, %d failed\n", !failed, failed);
	return failed ? 1 : 0;
}
