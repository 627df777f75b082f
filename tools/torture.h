/*
 * torture.h - torture workloads shared by the stress tests (tests/stress)
 * and `ptkit torture` (tools/torture.c).
 *
 * A workload runs in-process on a context it creates from @ctx_cfg, for a
 * bounded time, checks its invariants as it goes and ends with frame
 * accounting.  It returns 0 when every check held, 1 on an invariant
 * violation (described in res->first_failure and printed to stderr), or a
 * negative errno when the context could not be created (-EOPNOTSUPP for a
 * design this build does not implement).
 *
 * Adding a workload: a function with the torture_as_run() signature, a line
 * in tools/torture.c's workload table, and (for the test suite) a small
 * main in tests/stress/.
 */
#ifndef PTKIT_TOOLS_TORTURE_H
#define PTKIT_TOOLS_TORTURE_H

#include <stdint.h>
#include <stdio.h>

#include "ptkit/ptkit.h"

struct torture_cfg {
	uint64_t seed;
	double seconds;
	unsigned writers, readers;     /* threads */
	unsigned levels;               /* 4 or 5 */
	struct ptk_ctx_config ctx_cfg; /* designs, pool, caches */
	FILE *log;                     /* progress lines; NULL: quiet */
};

struct torture_result {
	uint64_t ops, lookups, faults;
	unsigned long failures;
	char first_failure[256];
};

/* Concurrent faults, unmaps, drops and protection changes on one address
 * space by @writers threads (each checking its own 1 MiB slice against an
 * exact model), with @readers lockless walkers (stress_as). */
int torture_as_run(const struct torture_cfg *cfg, struct torture_result *res);

#endif
