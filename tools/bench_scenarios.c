/*
 * bench_scenarios.c - the list of scenarios `ptkit bench` knows, in the
 * order the default run executes them.  Add one line per scenario.
 */
#include <stddef.h>

#include "bench.h"

extern const struct bench_scenario bench_fault_anon;
extern const struct bench_scenario bench_unmap_huge, bench_lookup, bench_reclaim;

const struct bench_scenario *const bench_scenarios[] = {
	&bench_fault_anon,
	&bench_unmap_huge,
	&bench_lookup,
	&bench_reclaim,
	NULL,
};
