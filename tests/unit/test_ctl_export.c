/*
 * test_ctl_export.c: unit tests of ctl/export_verify.c, palyractl's
 * verifier of approval exports (gateway.proto ExportChunk): records whose
 * strings hold braces, brackets and escaped quotes, members in any order
 * and with white space, and every way a line can be wrong.
 *
 * export_verify.c runs in palyractl and is not part of the common
 * library: it is compiled into this test directly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../ctl/export_verify.c"

static void
digest(const void *data, size_t len, uint8_t out[32])
{
	unsigned int	 n = 0;

	assert_int_equal(EVP_Digest(data, len, out, &n, EVP_sha256(), NULL), 1);
	assert_int_equal(n, 32);
}

/* Builds the line of record (JSON text) after chain, which it advances;
 * order 1 writes the members in reverse order with white space. */
static char *
line_of(const char *record, uint8_t chain[32], int order)
{
	uint8_t	 h[32], buf[64];
	char	 hh[65], ch[65], *line;

	digest(record, strlen(record), h);
	memcpy(buf, chain, 32);
	memcpy(buf + 32, h, 32);
	digest(buf, 64, chain);
	ctl_hex(h, 32, hh);
	ctl_hex(chain, 32, ch);
	if (order == 0)
		assert_true(asprintf(&line, "{\"record\":%s,\"sha256\":\"%s\","
		    "\"chain\":\"%s\"}", record, hh, ch) > 0);
	else
		assert_true(asprintf(&line, "{ \"chain\" : \"%s\", \"sha256\":"
		    "\"%s\" ,\"record\" :%s }", ch, hh, record) > 0);
	return line;
}

static char *
end_of(uint64_t count, const uint8_t chain[32])
{
	char	 ch[65], *line;

	ctl_hex(chain, 32, ch);
	assert_true(asprintf(&line, "{\"end\":{\"count\":%llu,\"chain\":"
	    "\"%s\"}}", (unsigned long long)count, ch) > 0);
	return line;
}

static int
feed(struct ctl_export_verifier *v, const char *line)
{
	return ctl_export_verifier_line(v, line, strlen(line));
}

static const char *const records[] = {
	"{\"approval_id\":\"00\",\"arguments_summary\":\"{\\\"a\\\":\\\"}]\\\"}\"}",
	"{\"approval_id\":\"01\",\"nested\":{\"x\":[1,{\"y\":\"[{\"}],\"z\":null}}",
	"{\"approval_id\":\"02\",\"reason\":\"a \\\\\\\" quote\",\"n\":-1.5e3}",
};
#define NRECORDS (sizeof(records) / sizeof(records[0]))

static void
test_good_export_any_member_order(void **state)
{
	struct ctl_export_verifier	 v;
	uint8_t				 chain[32] = { 0 };
	char				*line, hex[65], got[65];
	size_t				 i;

	ctl_export_verifier_init(&v);
	for (i = 0; i < NRECORDS; i++) {
		line = line_of(records[i], chain, (int)(i % 2));
		assert_int_equal(feed(&v, line), 0);
		free(line);
	}
	line = end_of(NRECORDS, chain);
	assert_int_equal(feed(&v, line), 0);
	free(line);
	assert_int_equal(ctl_export_verifier_finish(&v), 0);
	assert_int_equal(v.count, NRECORDS);
	ctl_hex(chain, 32, hex);
	ctl_hex(v.chain, 32, got);
	assert_string_equal(got, hex);
}

static void
test_empty_export(void **state)
{
	struct ctl_export_verifier	 v;
	uint8_t				 zero[32] = { 0 };
	char				*line = end_of(0, zero);

	ctl_export_verifier_init(&v);
	assert_int_equal(feed(&v, line), 0);
	assert_int_equal(ctl_export_verifier_finish(&v), 0);
	assert_int_equal(v.count, 0);
	free(line);
}

/* One wrong line among good ones: fails at line bad (1-based) with why. */
static void
expect_failure(char **lines, size_t n, unsigned long bad, const char *why)
{
	struct ctl_export_verifier	 v;
	size_t				 i;
	int				 rc = 0;
	char				 prefix[32];

	ctl_export_verifier_init(&v);
	for (i = 0; i < n && rc == 0; i++)
		rc = feed(&v, lines[i]);
	if (rc == 0)
		rc = ctl_export_verifier_finish(&v);
	assert_int_equal(rc, -1);
	snprintf(prefix, sizeof(prefix), "%lu: ", bad);
	if (strncmp(v.error, prefix, strlen(prefix)) != 0 ||
	    strstr(v.error, why) == NULL)
		fail_msg("error \"%s\", expected \"%s...%s\"", v.error, prefix,
		    why);
}

/* A good export of the records: NRECORDS + 1 lines (caller frees). */
static char **
good_lines(void)
{
	uint8_t	 chain[32] = { 0 };
	char	**lines = calloc(NRECORDS + 2, sizeof(*lines));
	size_t	 i;

	assert_non_null(lines);
	for (i = 0; i < NRECORDS; i++)
		lines[i] = line_of(records[i], chain, 0);
	lines[NRECORDS] = end_of(NRECORDS, chain);
	return lines;
}

static void
free_lines(char **lines)
{
	size_t	 i;

	for (i = 0; lines[i] != NULL; i++)
		free(lines[i]);
	free(lines);
}

static void
replace(char **lines, size_t i, const char *text)
{
	free(lines[i]);
	assert_non_null(lines[i] = strdup(text));
}

static void
test_tampered_record(void **state)
{
	char	**lines = good_lines();
	char	 *p = strstr(lines[1], "\"01\"");

	assert_non_null(p);
	p[2] = '9';
	expect_failure(lines, NRECORDS + 1, 2, "sha256 does not match");
	free_lines(lines);
}

static void
test_reordered_and_removed_lines(void **state)
{
	char	**lines = good_lines(), *t;

	t = lines[0];
	lines[0] = lines[1];
	lines[1] = t;
	expect_failure(lines, NRECORDS + 1, 1, "chain does not follow");
	free_lines(lines);
	lines = good_lines();
	free(lines[1]);
	memmove(lines + 1, lines + 2, NRECORDS * sizeof(*lines));
	expect_failure(lines, NRECORDS, 2, "chain does not follow");
	free_lines(lines);
}

static void
test_end_line_errors(void **state)
{
	uint8_t	 chain[32] = { 0 };
	char	**lines = good_lines(), *end;

	/* Truncated: no end line. */
	expect_failure(lines, NRECORDS, NRECORDS + 1, "no end line");
	/* A count that is not the number of records. */
	replace(lines, NRECORDS, "{\"end\":{\"count\":2,\"chain\":\"00\"}}");
	expect_failure(lines, NRECORDS + 1, NRECORDS + 1, "counts 2 records");
	replace(lines, NRECORDS, "{\"end\":{\"count\":-3,\"chain\":\"00\"}}");
	expect_failure(lines, NRECORDS + 1, NRECORDS + 1, "counts -3");
	/* The right count with a chain that is not the last one. */
	end = end_of(NRECORDS, chain);
	replace(lines, NRECORDS, end);
	free(end);
	expect_failure(lines, NRECORDS + 1, NRECORDS + 1, "chain is not");
	replace(lines, NRECORDS, "{\"end\":{\"count\":3}}");
	expect_failure(lines, NRECORDS + 1, NRECORDS + 1, "malformed end");
	replace(lines, NRECORDS, "{\"end\":{\"count\":3,\"chain\":\"x\"},"
	    "\"more\":1}");
	expect_failure(lines, NRECORDS + 1, NRECORDS + 1, "malformed end");
	free_lines(lines);
}

static void
test_data_after_the_end(void **state)
{
	char	**lines = good_lines();
	char	**more = realloc(lines, (NRECORDS + 3) * sizeof(*lines));

	assert_non_null(more);
	lines = more;
	assert_non_null(lines[NRECORDS + 1] = strdup(lines[0]));
	lines[NRECORDS + 2] = NULL;
	expect_failure(lines, NRECORDS + 2, NRECORDS + 2, "after the end");
	free_lines(lines);
}

static void
test_malformed_lines(void **state)
{
	static const char *const bad[] = {
		"",
		"not json",
		"[1,2]",
		"{\"record\":\"text\",\"sha256\":\"00\",\"chain\":\"00\"}",
		"{\"record\":{},\"sha256\":\"00\"}",
		"{\"record\":{},\"sha256\":\"00\",\"chain\":\"00\",\"x\":1}",
		"{\"record\":{},\"record\":{},\"sha256\":\"00\",\"chain\":\"00\"}",
		"{\"record\":{},\"sha256\":0,\"chain\":\"00\"}",
		"{\"record\":{\"a\":1}",
	};
	char	**lines = good_lines();
	size_t	 i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		replace(lines, 1, bad[i]);
		expect_failure(lines, NRECORDS + 1, 2, "");
	}
	free_lines(lines);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_export_any_member_order),
		cmocka_unit_test(test_empty_export),
		cmocka_unit_test(test_tampered_record),
		cmocka_unit_test(test_reordered_and_removed_lines),
		cmocka_unit_test(test_end_line_errors),
		cmocka_unit_test(test_data_after_the_end),
		cmocka_unit_test(test_malformed_lines),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
