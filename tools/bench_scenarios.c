/*
 * bench_scenarios.c - the list of scenarios `ptkit bench` knows, in the
 * order the default run executes them.  Add one line per scenario.
 */
#include <stddef.h>

#include "bench.h"

extern const struct bench_scenario bench_fault_anon;
extern const struct bench_scenario bench_gather_unmap;
extern const struct bench_scenario bench_gather_latency;
extern const struct bench_scenario bench_tlb_hit;
extern const struct bench_scenario bench_tlb_shootdown;

const struct bench_scenario *const bench_scenarios[] = {
	&bench_fault_anon,
	&bench_gather_unmap,
	&bench_gather_latency,
	&bench_tlb_hit,
	&bench_tlb_shootdown,
	NULL,
};
