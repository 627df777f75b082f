/*
 * cd_loop.c - N address-space create + activate + kernel translation +
 * destroy on one thread, in one kernel-sync design: the single-thread cost
 * of each design, for instruction counting (wall time on a shared 2-core
 * machine is too noisy to compare designs that differ by ~1%).
 *
 *   valgrind --tool=callgrind --callgrind-out-file=/dev/null \
 *       build/lab/cd_loop DESIGN N
 *
 * with N = 2000 and N = 4000: the difference of the two "Collected" totals
 * divided by 2000 is the instruction count of one iteration, free of the
 * set-up and tear-down costs (it includes the RCU callback work, which runs
 * on liburcu's threads).  DESIGN: eager, lazy or legacy.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ptkit/ptkit.h"

int main(int argc, char **argv)
{
	static const char *const names[] = { "eager", "lazy", "legacy" };
	int d = -1;
	for (int i = 0; argc == 3 && i < 3; i++)
		if (!strcmp(argv[1], names[i]))
			d = i;
	long n = argc == 3 ? strtol(argv[2], NULL, 10) : 0;
	if (d < 0 || n <= 0) {
		fprintf(stderr, "usage: %s eager|lazy|legacy N\n", argv[0]);
		return 2;
	}
	struct ptk_ctx_config cfg;
	ptk_ctx_config_default(&cfg);
	cfg.kernel_sync = (enum ptk_kernel_sync)d;
	cfg.pool_bytes = UINT64_C(64) << 20;
	struct ptk_ctx *ctx;
	uint64_t kva = 0;
	if (ptk_ctx_create(&cfg, &ctx) || ptk_kmap_special(ctx, &kva, 4096, 7, PTK_PROT_READ, 0)) {
		fprintf(stderr, "cd_loop: set-up failed\n");
		return 1;
	}
	ptk_thread_register();
	for (long i = 0; i < n; i++) {
		struct ptk_as *as;
		struct ptk_xlate x;
		if (ptk_as_create(ctx, 0, &as)) {
			fprintf(stderr, "cd_loop: create failed\n");
			return 1;
		}
		ptk_as_activate(as);
		if (ptk_translate(as, kva, &x)) {
			fprintf(stderr, "cd_loop: kernel range not translated\n");
			return 1;
		}
		ptk_as_destroy(as);
		if (i % 1000 == 999)
			ptk_ctx_quiesce(ctx);   /* bound the frames waiting for RCU */
	}
	ptk_kunmap(ctx, kva, 4096);
	ptk_ctx_destroy(ctx);
	return 0;
}
