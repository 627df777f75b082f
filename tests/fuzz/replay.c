/*
 * replay.c - run a libFuzzer target's inputs without libFuzzer: every file
 * named on the command line, and every file in every directory named (in
 * name order; README* files are skipped).  Built with any compiler, so the
 * normal test suite replays the committed corpus and regression inputs.
 * A failing input aborts inside the target; the last "replay:" line names it.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_as.h"

static unsigned replayed;

static int run_file(const char *path)
{
	FILE *fp = fopen(path, "rb");
	if (!fp) {
		perror(path);
		return -1;
	}
	uint8_t *buf = NULL;
	size_t n = 0, cap = 0;
	for (;;) {
		if (n == cap) {
			cap = cap ? cap * 2 : 4096;
			buf = realloc(buf, cap);
			if (!buf)
				abort();
		}
		size_t got = fread(buf + n, 1, cap - n, fp);
		if (!got)
			break;
		n += got;
	}
	fclose(fp);
	printf("replay: %s (%zu bytes)\n", path, n);
	fflush(stdout);
	LLVMFuzzerTestOneInput(buf, n);
	free(buf);
	replayed++;
	return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int run_path(const char *path)
{
	struct stat st;
	if (stat(path, &st)) {
		perror(path);
		return -1;
	}
	if (!S_ISDIR(st.st_mode))
		return run_file(path);
	struct dirent **ents;
	int n = scandir(path, &ents, NULL, by_name);
	if (n < 0) {
		perror(path);
		return -1;
	}
	int rc = 0;
	for (int i = 0; i < n; i++) {
		const char *name = ents[i]->d_name;
		if (name[0] != '.' && strncmp(name, "README", 6) != 0) {
			char full[4096];
			snprintf(full, sizeof(full), "%s/%s", path, name);
			if (run_path(full))
				rc = -1;
		}
		free(ents[i]);
	}
	free(ents);
	return rc;
}

int main(int argc, char **argv)
{
	int rc = 0;
	for (int i = 1; i < argc; i++)
		if (run_path(argv[i]))
			rc = 1;
	if (!replayed) {
		fprintf(stderr, "replay: no input found\n");
		rc = 1;
	}
	printf("replay: %u inputs\n", replayed);
	printf("%d passed, %d failed\n", rc ? 0 : 1, rc ? 1 : 0);
	return rc;
}
