/*
 * fuzz_as.h - the differential fuzz target as a library: the libFuzzer
 * entry point, and the context configuration it runs under (`ptkit torture`
 * sets random design modes here; NULL: the defaults).
 */
#ifndef PTKIT_FUZZ_AS_H
#define PTKIT_FUZZ_AS_H

#include <stddef.h>
#include <stdint.h>

#include "ptkit/ctx.h"

/* Run one input; aborts with "fuzz_as: step N: ..." on a disagreement. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Designs, caches and levels default for every input's context (pool size
 * is the target's own).  Not thread-safe: set before running inputs. */
extern const struct ptk_ctx_config *fuzz_as_ctx_config;

#endif
