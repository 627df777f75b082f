#include "bench.h"
static int run_peers(const struct bench_params *p) { (void)p; return 0; }
const struct bench_scenario bench_peers = { "peers", "todo", run_peers };
