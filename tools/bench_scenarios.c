/*
 * bench_scenarios.c - the list of scenarios `ptkit bench` knows, in the
 * order the default run executes them.  Add one line per scenario.
 */
#include <stddef.h>

#include "bench.h"

extern const struct bench_scenario bench_fault_anon;
extern const struct bench_scenario bench_as_create;
extern const struct bench_scenario bench_kernel_extend;

const struct bench_scenario *const bench_scenarios[] = {
	&bench_fault_anon,
	&bench_as_create,
	&bench_kernel_extend,
	NULL,
};
