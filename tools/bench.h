/*
 * bench.h - the lab's benchmark framework.
 *
 * A scenario is a function that runs one repetition of an experiment and
 * records samples: (design, parameters, metric, unit, value).  The driver
 * calls it --repeat times; samples with the same key are aggregated into a
 * measurement (median, min, max, runs).  A scenario also declares
 * comparisons: the ratio of two designs' medians for one metric and one
 * parameter set, so every figure an issue asks for prints beside what it
 * is compared with, from the same run.
 *
 * Output: a text table (default), --json (schema "ptkit-bench/1", see
 * docs/bench-schema.md) or --csv.
 *
 * Scenarios live in tools/bench_*.c and are listed in bench_scenarios.c.
 */
#ifndef PTKIT_TOOLS_BENCH_H
#define PTKIT_TOOLS_BENCH_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct bench_params {
	unsigned threads;      /* --threads: max thread count (0: scenario default) */
	uint64_t size;         /* --size in bytes (0: scenario default) */
	double seconds;        /* --seconds per timed phase (0: default) */
	unsigned repeat;       /* --repeat */
	uint64_t seed;         /* --seed */
	unsigned rep;          /* index of the current repetition */
	bool quick;            /* --quick: smallest sizes (tests, CI) */
};

struct bench_scenario {
	const char *name;
	const char *summary;   /* one line for --list */
	/* One repetition.  Returns 0, or a negative errno with a message
	 * printed to stderr. */
	int (*run)(const struct bench_params *p);
};

/* Record one sample.  @params is "k=v,k=v" (may be ""). */
void bench_sample(const char *scenario, const char *design, const char *params,
		  const char *metric, const char *unit, double value);

/* Declare a comparison: ratio = median(a) / median(b) for @metric at
 * @params.  @better says which direction is good ("higher", "lower") so the
 * report can read "a is N x better".  Declaring the same one twice is fine. */
void bench_compare(const char *scenario, const char *metric, const char *params,
		   const char *a, const char *b, const char *better);

/* Progress note for long scenarios (shown on a terminal only). */
void bench_progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Helpers for scenarios. */
double bench_now(void);                    /* monotonic seconds */
uint64_t bench_rand(uint64_t *state);      /* xorshift64 */

/* Median of @n values (sorts @v). */
double bench_median(double *v, unsigned n);

int bench_main(int argc, char **argv);
void bench_usage(FILE *f);

extern const struct bench_scenario *const bench_scenarios[];
/* Names of the scenarios `ptkit bench` runs without arguments (NULL
 * terminated), and the repetitions it uses for them unless --repeat is
 * given.  Both in bench_scenarios.c. */
/* Fault workers shared by scenarios: a thread (pthread entry
 * bench_fault_worker) that waits on @start, then write-faults every page of
 * [va, va + len) of @as in order, and records its time and the first error. */
struct ptk_as;
struct bench_fault_arg {
	struct ptk_as *as;
	uint64_t va, len;
	pthread_barrier_t *start;
	double secs;            /* out */
	int rc;                 /* out: 0 or the first error */
};
void *bench_fault_worker(void *arg);

extern const char *const bench_default_suite[];
extern const unsigned bench_default_repeat;

#endif
