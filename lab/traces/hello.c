#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct item { int key; char name[32]; };

static int cmp(const void *a, const void *b)
{
	return ((const struct item *)a)->key - ((const struct item *)b)->key;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 16;
	struct item *v = calloc((size_t)n, sizeof(*v));
	for (int i = 0; i < n; i++) {
		v[i].key = (i * 7919) % n;
		snprintf(v[i].name, sizeof(v[i].name), "item-%d", i);
	}
	qsort(v, (size_t)n, sizeof(*v), cmp);
	for (int i = 0; i < n && i < 4; i++)
		printf("%d %s\n", v[i].key, v[i].name);
	free(v);
	return 0;
}
