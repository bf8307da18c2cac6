/*
 * test_approvals_export.c: unit tests of journald/approvals_export.c, the
 * NDJSON lines of ApprovalsService.ExportApprovals: a record is compact
 * JSON with sorted keys, each line carries the SHA-256 of the record's
 * bytes as they stand in it and a chain over those digests, and the last
 * line counts the records. The digests are recomputed here with OpenSSL,
 * independently of the libsodium code under test.
 *
 * approvals_export.c runs in palyra-journald and is not part of the
 * common library: it is compiled into this test directly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/sha.h>

#include "../../journald/approvals_export.c"

static const char head[] = "{\"record\":";
/* ,"sha256":"<64>","chain":"<64>"} and the newline */
#define SUFFIX_LEN (11 + 64 + 11 + 64 + 2 + 1)

static void
approval_fill(Palyra__V1__Approval *a)
{
	palyra__v1__approval__init(a);
	a->approval_id = "0123456789abcdef0123456789abcdef";
	a->run_id = "run-1";
	a->session_id = "s1";
	a->principal = "alice";
	a->agent = "assistant";
	a->tool_call_id = "call_1";
	a->tool_name = "http.fetch";
	a->arguments_summary = "{\"url\":\"https://example.com/\"}";
	a->state = PALYRA__V1__APPROVAL_STATE__APPROVAL_STATE_ALLOWED;
	a->scope = PALYRA__V1__APPROVAL_SCOPE__APPROVAL_SCOPE_SESSION;
	a->decided_by = "bob";
	a->reason = "fine";
	a->created_unix_ms = 1764646000123;
	a->expires_unix_ms = 1764646300123;
	a->decided_unix_ms = 1764646001000;
	a->grant_id = "fedcba9876543210fedcba9876543210";
}

static void
to_hex(const uint8_t *in, size_t n, char *out)
{
	size_t i;

	for (i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", in[i]);
}

/* The record's bytes as they stand in line. */
static char *
record_of(const char *line, size_t len)
{
	size_t rlen;
	char *r;

	assert_true(len > sizeof(head) - 1 + SUFFIX_LEN);
	assert_memory_equal(line, head, sizeof(head) - 1);
	rlen = len - (sizeof(head) - 1) - SUFFIX_LEN;
	r = malloc(rlen + 1);
	assert_non_null(r);
	memcpy(r, line + sizeof(head) - 1, rlen);
	r[rlen] = '\0';
	return r;
}

static void
test_record_sorted_compact(void **state)
{
	Palyra__V1__Approval a;
	char *rec;

	approval_fill(&a);
	rec = jnl_export_record(&a);
	assert_non_null(rec);
	assert_string_equal(rec,
	    "{\"agent\":\"assistant\",\"approval_id\":"
	    "\"0123456789abcdef0123456789abcdef\","
	    "\"arguments_summary\":\"{\\\"url\\\":\\\"https://example.com/"
	    "\\\"}\","
	    "\"created_unix_ms\":1764646000123,\"decided_by\":\"bob\","
	    "\"decided_unix_ms\":1764646001000,"
	    "\"expires_unix_ms\":1764646300123,"
	    "\"grant_id\":\"fedcba9876543210fedcba9876543210\","
	    "\"principal\":\"alice\",\"reason\":\"fine\",\"run_id\":\"run-1\","
	    "\"scope\":\"SESSION\",\"session_id\":\"s1\",\"state\":\"ALLOWED\","
	    "\"tool_call_id\":\"call_1\",\"tool_name\":\"http.fetch\"}");
	free(rec);
}

static void
test_record_states(void **state)
{
	Palyra__V1__Approval a;
	json_t *j;
	char *rec;

	approval_fill(&a);
	a.state = PALYRA__V1__APPROVAL_STATE__APPROVAL_STATE_PENDING;
	a.scope = PALYRA__V1__APPROVAL_SCOPE__APPROVAL_SCOPE_UNSPECIFIED;
	a.decided_unix_ms = 0;
	rec = jnl_export_record(&a);
	assert_non_null(rec);
	j = json_loads(rec, 0, NULL);
	assert_non_null(j);
	assert_string_equal(
	    json_string_value(json_object_get(j, "state")), "PENDING");
	assert_string_equal(json_string_value(json_object_get(j, "scope")), "");
	assert_int_equal(
	    json_integer_value(json_object_get(j, "decided_unix_ms")), 0);
	json_decref(j);
	free(rec);

	a.state = PALYRA__V1__APPROVAL_STATE__APPROVAL_STATE_EXPIRED;
	rec = jnl_export_record(&a);
	assert_non_null(strstr(rec, "\"state\":\"EXPIRED\""));
	free(rec);
	/* A value the enum does not know is not trusted as an index. */
	a.state = (Palyra__V1__ApprovalState)99;
	rec = jnl_export_record(&a);
	assert_non_null(strstr(rec, "\"state\":\"UNSPECIFIED\""));
	free(rec);
}

/* Text that is not UTF-8 still makes valid JSON. */
static void
test_record_not_utf8(void **state)
{
	Palyra__V1__Approval a;
	char bad[] = "ab\xff\xfe"
		     "cd";
	json_t *j;
	char *rec;

	approval_fill(&a);
	a.arguments_summary = bad;
	rec = jnl_export_record(&a);
	assert_non_null(rec);
	j = json_loads(rec, 0, NULL);
	assert_non_null(j);
	assert_string_equal(
	    json_string_value(json_object_get(j, "arguments_summary")),
	    "ab??cd");
	json_decref(j);
	free(rec);
}

static void
check_line(const char *line, size_t len, uint8_t prev[32], const char *rec)
{
	uint8_t digest[32], link[64], next[32];
	char hex[65], expect[256];
	char *got;

	got = record_of(line, len);
	assert_string_equal(got, rec);
	SHA256((const unsigned char *)rec, strlen(rec), digest);
	memcpy(link, prev, 32);
	memcpy(link + 32, digest, 32);
	SHA256(link, 64, next);
	to_hex(digest, 32, hex);
	snprintf(
	    expect, sizeof(expect), ",\"sha256\":\"%s\",\"chain\":\"", hex);
	assert_memory_equal(line + len - SUFFIX_LEN, expect, 11 + 64 + 11);
	to_hex(next, 32, hex);
	assert_memory_equal(line + len - 3 - 64, hex, 64);
	assert_memory_equal(line + len - 3, "\"}\n", 3);
	memcpy(prev, next, 32);
	free(got);
}

static void
test_lines_chain(void **state)
{
	Palyra__V1__Approval a;
	uint8_t chain[32], mirror[32];
	char *rec1, *rec2, *line = NULL, hex[65], end[200];
	size_t len;
	json_t *j;

	memset(chain, 0, sizeof(chain));
	memset(mirror, 0, sizeof(mirror));
	approval_fill(&a);
	rec1 = jnl_export_record(&a);
	assert_int_equal(jnl_export_line(rec1, chain, &line, &len), 0);
	assert_int_equal(strlen(line), len);
	check_line(line, len, mirror, rec1);
	assert_memory_equal(chain, mirror, 32);
	/* The whole line is one JSON object whose record is R. */
	j = json_loadb(line, len, JSON_DISABLE_EOF_CHECK, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(
				json_object_get(j, "record"), "principal")),
	    "alice");
	json_decref(j);
	free(line);

	a.approval_id = "11111111111111111111111111111111";
	a.reason = "quote \" and newline \n and tab \t";
	rec2 = jnl_export_record(&a);
	assert_int_equal(jnl_export_line(rec2, chain, &line, &len), 0);
	check_line(line, len, mirror, rec2);
	assert_memory_equal(chain, mirror, 32);
	/* One line per record: the newline of the text is escaped. */
	assert_ptr_equal(strchr(line, '\n'), line + len - 1);
	free(line);

	assert_int_equal(jnl_export_end(2, chain, &line, &len), 0);
	to_hex(mirror, 32, hex);
	snprintf(end, sizeof(end), "{\"end\":{\"count\":2,\"chain\":\"%s\"}}\n",
	    hex);
	assert_string_equal(line, end);
	assert_int_equal(strlen(line), len);
	free(line);
	free(rec1);
	free(rec2);
}

/* Changing one byte of a record changes its digest and every later chain. */
static void
test_chain_detects_change(void **state)
{
	Palyra__V1__Approval a;
	uint8_t c1[32], c2[32];
	char *rec, *line1 = NULL, *line2 = NULL;
	size_t l1, l2;

	memset(c1, 0, sizeof(c1));
	memset(c2, 0, sizeof(c2));
	approval_fill(&a);
	rec = jnl_export_record(&a);
	assert_int_equal(jnl_export_line(rec, c1, &line1, &l1), 0);
	rec[strlen(rec) - 3] ^= 1;
	assert_int_equal(jnl_export_line(rec, c2, &line2, &l2), 0);
	assert_int_equal(l1, l2);
	assert_memory_not_equal(c1, c2, 32);
	assert_memory_not_equal(
	    line1 + l1 - SUFFIX_LEN, line2 + l2 - SUFFIX_LEN, 11 + 64);
	free(rec);
	free(line1);
	free(line2);
}

static void
test_end_empty(void **state)
{
	uint8_t chain[32];
	char *line = NULL;
	size_t len;

	memset(chain, 0, sizeof(chain));
	assert_int_equal(jnl_export_end(0, chain, &line, &len), 0);
	assert_string_equal(line, "{\"end\":{\"count\":0,\"chain\":"
				  "\"0000000000000000000000000000000000"
				  "000000000000000000000000000000\"}}\n");
	free(line);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_record_sorted_compact),
	    cmocka_unit_test(test_record_states),
	    cmocka_unit_test(test_record_not_utf8),
	    cmocka_unit_test(test_lines_chain),
	    cmocka_unit_test(test_chain_detects_change),
	    cmocka_unit_test(test_end_empty),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
