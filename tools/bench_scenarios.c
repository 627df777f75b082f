/*
 * bench_scenarios.c - the list of scenarios `ptkit bench` knows, in the
 * order the default run executes them.  Add one line per scenario.
 */
#include <stddef.h>

#include "bench.h"

extern const struct bench_scenario bench_fault_anon;
extern const struct bench_scenario bench_unmap_huge, bench_lookup, bench_reclaim;
extern const struct bench_scenario bench_as_create, bench_kernel_extend;
extern const struct bench_scenario bench_gather_unmap, bench_gather_latency;
extern const struct bench_scenario bench_tlb_hit, bench_tlb_shootdown;
extern const struct bench_scenario bench_peers;
extern const struct bench_scenario bench_replay;
extern const struct bench_scenario bench_objects;
extern const struct bench_scenario bench_fork;

const struct bench_scenario *const bench_scenarios[] = {
	&bench_fault_anon,
	&bench_as_create,
	&bench_kernel_extend,
	&bench_unmap_huge,
	&bench_lookup,
	&bench_reclaim,
	&bench_gather_unmap,
	&bench_gather_latency,
	&bench_tlb_hit,
	&bench_tlb_shootdown,
	&bench_peers,
	&bench_replay,
	&bench_objects,
	&bench_fork,
	NULL,
};

/* The default suite: `ptkit bench` without scenario names (the README's
 * main command).  Sized to finish in about two and a half minutes on a
 * 2-core machine. */
const char *const bench_default_suite[] = {
	"as-create",        /* seeds 000/001: lockless create/destroy */
	"kernel-extend",
	"unmap-huge",       /* seed 003: IPI per huge leaf vs RCU */
	"lookup",           /* seed 002/003: lockless lookups */
	"reclaim",          /* PT_RECLAIM */
	"gather-latency",   /* seed 004: preemptible teardown */
	"tlb-hit",
	"tlb-shootdown",
	"fault-anon",
	"peers",
	"replay",
	"objects",          /* seed 004: shared objects, truncate, rmap locks */
	"fork",             /* seed 004: fork+exit, copy on write */
	NULL,
};
const unsigned bench_default_repeat = 3;
