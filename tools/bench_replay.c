/*
 * bench_replay.c - scenario "replay": the shipped traces of real programs
 * (lab/traces: a compiler run, a scripting-language start-up) replayed on
 * ptkit address spaces, one copy alone and N copies at once (a build farm
 * of short-lived processes sharing one frame pool).
 *
 * Metrics: replay time (ms; a copy's whole life: spaces created, mapped,
 * faulted, torn down), faults per second over all copies, and the peak
 * page-table bytes of one copy's live spaces.  One design so far, so no
 * comparison is declared: the scaling reads from the copies=1 and
 * copies=N rows.  Scenarios that keep an old design (teardown, walkers)
 * can replay the same traces in a context of each design and compare.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "trace.h"
#include "ptkit/ptkit.h"

static const char *const traces[] = { "cc", "python3" };

static int run_replay(const struct bench_params *p)
{
	const char *dir = trace_shipped_dir();
	if (!*dir) {
		fprintf(stderr, "replay: the shipped traces were not found (set PTKIT_TRACES to lab/traces)\n");
		return -ENOENT;
	}
	unsigned maxc = p->threads ? p->threads : 4;
	unsigned counts[2] = { 1, maxc };
	for (unsigned k = 0; k < sizeof(traces) / sizeof(traces[0]); k++) {
		char path[4200], err[512];
		snprintf(path, sizeof(path), "%s/%s.trace", dir, traces[k]);
		struct trace t;
		if (trace_load(path, &t, err, sizeof(err))) {
			fprintf(stderr, "replay: %s\n", err);
			return -EINVAL;
		}
		/* Short traces: repeat each point until it lasts long enough. */
		double target = p->quick ? 0.05 : (p->seconds ? p->seconds : 0.5);
		for (unsigned ci = 0; ci < 2; ci++) {
			unsigned copies = counts[ci];
			if (ci == 1 && copies == 1)
				break;
			struct ptk_ctx_config cfg;
			ptk_ctx_config_default(&cfg);
			cfg.pool_bytes = trace_pool_bytes(&t, copies);
			struct ptk_ctx *ctx;
			int rc = ptk_ctx_create(&cfg, &ctx);
			if (rc) {
				trace_free(&t);
				return rc;
			}
			double start = bench_now(), busy = 0;
			struct replay_stats sum = { 0 };
			unsigned rounds = 0;
			do {
				struct replay_stats st;
				bench_progress("%s x%u, round %u", traces[k], copies, rounds + 1);
				rc = trace_replay_copies(&t, ctx, copies, 0, &st);
				busy += st.seconds;
				sum.faults += st.faults;
				sum.peak_table_bytes = st.peak_table_bytes;
				rounds++;
			} while (!rc && bench_now() - start < target);
			ptk_ctx_destroy(ctx);
			if (rc) {
				fprintf(stderr, "replay: %s: %s\n", traces[k], strerror(-rc));
				trace_free(&t);
				return rc;
			}
			char params[64];
			snprintf(params, sizeof(params), "trace=%s,copies=%u", traces[k], copies);
			bench_sample("replay", "ptkit", params, "replay time", "ms", busy / rounds * 1e3);
			bench_sample("replay", "ptkit", params, "faults/s", "1/s", sum.faults / busy);
			bench_sample("replay", "ptkit", params, "table bytes/copy", "B",
				     (double)sum.peak_table_bytes / copies);
		}
		trace_free(&t);
	}
	return 0;
}

const struct bench_scenario bench_replay = {
	"replay", "shipped traces of real programs (cc, python3) replayed, 1 copy and N at once",
	run_replay,
};
