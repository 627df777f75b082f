/*
 * stress_as.c - the address-space torture workload (tools/torture_as.c) as
 * a seeded stress test: concurrent faults, unmaps, drops and protection
 * changes on one address space with lockless readers, checked against
 * per-thread models, ending with frame accounting.
 *
 * Usage: stress_as [-s SEED] [-t SECONDS] [-w WRITERS] [-r READERS] [-l 4|5]
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "torture.h"

int main(int argc, char **argv)
{
	struct torture_cfg cfg = { .seconds = 3, .writers = 4, .readers = 2, .levels = 4 };
	cfg.seed = (uint64_t)time(NULL) ^ (uint64_t)getpid();
	int opt;
	while ((opt = getopt(argc, argv, "s:t:w:r:l:")) != -1) {
		switch (opt) {
		case 's': cfg.seed = strtoull(optarg, NULL, 0); break;
		case 't': cfg.seconds = atof(optarg); break;
		case 'w': cfg.writers = (unsigned)atoi(optarg); break;
		case 'r': cfg.readers = (unsigned)atoi(optarg); break;
		case 'l': cfg.levels = (unsigned)atoi(optarg); break;
		default:
			fprintf(stderr, "usage: %s [-s SEED] [-t SECONDS] [-w WRITERS] [-r READERS] [-l 4|5]\n",
				argv[0]);
			return 2;
		}
	}
	if (cfg.writers < 1 || cfg.writers > 64 || cfg.readers > 64) {
		fprintf(stderr, "stress_as: writers must be 1..64, readers 0..64\n");
		return 2;
	}
	printf("stress_as: seed %" PRIu64 " (rerun with -s %" PRIu64 "), %u writers, %u readers, %.1f s\n",
	       cfg.seed, cfg.seed, cfg.writers, cfg.readers, cfg.seconds);
	fflush(stdout);
	ptk_ctx_config_default(&cfg.ctx_cfg);
	cfg.ctx_cfg.pool_bytes = 256ull << 20;
	struct torture_result res;
	int rc = torture_as_run(&cfg, &res);
	if (rc < 0) {
		fprintf(stderr, "stress_as: setup failed: %s\n", strerror(-rc));
		return 1;
	}
	printf("stress_as: %" PRIu64 " writer ops, %" PRIu64 " lookups, %" PRIu64 " faults\n",
	       res.ops, res.lookups, res.faults);
	printf("%d passed, %d failed\n", rc == 0, rc != 0);
	return rc ? 1 : 0;
}
