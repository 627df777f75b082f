#include <errno.h>
#include <string.h>
#include "helpers.h"

static void smoke(void **state)
{
	(void)state;
	struct ptk_ctx *ctx = test_ctx(0);
	struct ptk_as *as;
	assert_int_equal(ptk_as_create(ctx, 0, &as), 0);
	uint64_t va = 0;
	assert_int_equal(ptk_map_anon(as, &va, 16 * MiB, PTK_PROT_READ | PTK_PROT_WRITE, 0), 0);
	assert_int_equal(ptk_fault(as, va, PTK_ACCESS_WRITE), 0);
	struct ptk_xlate x;
	assert_int_equal(ptk_translate(as, va, &x), 0);
	memset(x.host, 0xab, 4096);
	assert_int_equal(ptk_populate(as, va, 16 * MiB, PTK_ACCESS_READ), 0);
	struct ptk_as_stats st;
	ptk_as_stats(as, &st);
	assert_int_equal(st.rss_frames, 4096);
	assert_int_equal(ptk_unmap(as, va + 4096, 4 * MiB), 0);
	ptk_as_stats(as, &st);
	assert_int_equal(st.rss_frames, 4096 - 1024);
	assert_int_equal(ptk_translate(as, va + 8192, &x), -EFAULT);
	assert_int_equal(ptk_fault(as, va + 8192, PTK_ACCESS_READ), -EFAULT);
	test_teardown(ctx, as);
}

int main(void)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(smoke) };
	return cmocka_run_group_tests(tests, NULL, NULL);
}
