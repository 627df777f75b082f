/*
 * trace.h - address-space traces of real programs: the text format
 * (docs/trace-format.md), its parser, and the replay engine.
 *
 * A trace is what `ptkit trace record -- COMMAND` saw a program do to its
 * address spaces: mappings, unmappings, protection changes, madvise, brk,
 * mremap, process events (fork, exec, exit) and page faults with their
 * addresses.  Replay performs the same operations, at the recorded
 * addresses, on ptkit address spaces: one per recorded process.
 *
 * The parser checks the whole file before anything is replayed and
 * reports the first malformed line as "FILE:LINE: reason".  Replay itself
 * never fails on what the program did: an operation ptkit refuses (for
 * example a fault outside every replayed mapping) is counted, not fatal.
 */
#ifndef PTKIT_TOOLS_TRACE_H
#define PTKIT_TOOLS_TRACE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct ptk_ctx;

#define TRACE_MAGIC "ptkit-trace 1"

enum trace_op {
	TR_EXEC = 1,   /* the process starts a new program: fresh space */
	TR_FORK,       /* a = child slot; b = 1 share the space (vfork, threads), 0 copy */
	TR_EXIT,       /* the process (or thread) is gone */
	TR_MAP,        /* a = addr, b = len, prot; kind */
	TR_REGION,     /* a = addr, b = len, prot: made by the kernel at exec */
	TR_UNMAP,      /* a = addr, b = len */
	TR_PROTECT,    /* a = addr, b = len, prot */
	TR_ADVISE,     /* a = addr, b = len; advice */
	TR_BRK,        /* a = old break, b = new break */
	TR_REMAP,      /* a = old addr, b = old len, c = new addr, d = new len */
	TR_FAULT,      /* a = addr; access */
};

enum trace_kind { TK_ANON_PRIVATE, TK_FILE_PRIVATE, TK_ANON_SHARED, TK_FILE_SHARED };
enum trace_advice { TA_DONTNEED, TA_FREE, TA_OTHER };
enum trace_access { TX_UNKNOWN, TX_READ, TX_WRITE, TX_EXEC };

struct trace_event {
	uint64_t a, b, c, d;
	uint32_t t_us;       /* microseconds since the first event */
	uint32_t slot;       /* dense process index (a pid may be reused) */
	uint8_t op;          /* enum trace_op */
	uint8_t prot;        /* PTK_PROT_* */
	uint8_t arg;         /* kind, advice or access */
};

struct trace {
	char *name;          /* file name (for messages) */
	char *command;       /* "# command:" header, or "" */
	struct trace_event *ev;
	uint32_t nev, nslots;
	bool has_faults;     /* recorded with page faults */
};

/* Parse @path into @t.  0, or -1 with "PATH:LINE: reason" in @err. */
int trace_load(const char *path, struct trace *t, char *err, size_t errlen);
void trace_free(struct trace *t);

struct replay_stats {
	uint64_t events;
	uint64_t spaces;                 /* address spaces created */
	uint64_t maps, unmaps, protects, drops, brks, remaps, forks, execs, exits;
	uint64_t faults, faults_refused; /* handled / refused by ptkit (-EFAULT, -EACCES) */
	uint64_t op_refused;             /* map/unmap/protect/... that ptkit refused */
	uint64_t peak_spaces;            /* live at once */
	uint64_t peak_table_bytes;       /* page-table bytes of the live spaces, peak */
	uint64_t peak_data_frames;       /* resident frames of the live spaces, peak */
	double seconds;
};

/* Replay @t once in @ctx.  Creates and destroys its own address spaces.
 * Returns 0, or a negative errno if ptkit ran out of memory (pool too
 * small).  Counts go to @st (added to).  Any thread; several replays may
 * run in one context at once. */
int trace_replay(const struct trace *t, struct ptk_ctx *ctx, struct replay_stats *st);

/* Run @copies replays of @t in @ctx on @threads threads (0: one per copy),
 * all starting together; fills @st with the sums (peaks: the sum of each
 * copy's peak; seconds: wall time of the whole).  Returns 0, the first
 * replay's error, or -EAGAIN if the threads could not be started. */
int trace_replay_copies(const struct trace *t, struct ptk_ctx *ctx, unsigned copies,
			unsigned threads, struct replay_stats *st);

/* Pool size that fits @copies concurrent replays of @t. */
uint64_t trace_pool_bytes(const struct trace *t, unsigned copies);

/* Directory of the shipped traces (lab/traces), "" if not found. */
const char *trace_shipped_dir(void);

int replay_main(int argc, char **argv);
void replay_usage(FILE *f);
int trace_main(int argc, char **argv);
void trace_usage(FILE *f);

#endif
