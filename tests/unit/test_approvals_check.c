/*
 * test_approvals_check.c: unit tests of journald/approvals_check.c, the
 * checks of what a worker or a client sends about approvals: ids, tool
 * names, text that goes into exports (UTF-8 without control characters)
 * and a decision (kind, scope, TTL range, reason).
 *
 * approvals_check.c runs in palyra-journald and is not part of the common
 * library: it is compiled into this test directly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../../journald/approvals_check.c"

static void
test_ids(void **state)
{
	char long_id[JNL_RUN_ID_MAX + 2], long_name[APPR_TOOL_NAME_MAX + 2];

	assert_true(jnl_appr_id_valid("0123456789abcdef0123456789abcdef"));
	assert_false(jnl_appr_id_valid(""));
	assert_false(jnl_appr_id_valid("0123456789abcdef0123456789abcde"));
	assert_false(jnl_appr_id_valid("0123456789abcdef0123456789abcdef0"));
	assert_false(jnl_appr_id_valid("0123456789ABCDEF0123456789abcdef"));
	assert_false(jnl_appr_id_valid("0123456789abcdeg0123456789abcdef"));

	assert_true(jnl_appr_run_id_valid("run_1-A"));
	assert_false(jnl_appr_run_id_valid(""));
	assert_false(jnl_appr_run_id_valid("a/b"));
	assert_false(jnl_appr_run_id_valid("a.b"));
	memset(long_id, 'a', sizeof(long_id) - 1);
	long_id[sizeof(long_id) - 1] = '\0';
	assert_false(jnl_appr_run_id_valid(long_id));
	long_id[JNL_RUN_ID_MAX] = '\0';
	assert_true(jnl_appr_run_id_valid(long_id));

	assert_true(jnl_appr_tool_name_valid("http.fetch"));
	assert_true(jnl_appr_tool_name_valid("crm_lookup-2"));
	assert_false(jnl_appr_tool_name_valid(""));
	assert_false(jnl_appr_tool_name_valid("a b"));
	assert_false(jnl_appr_tool_name_valid("a*"));
	memset(long_name, 't', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	assert_false(jnl_appr_tool_name_valid(long_name));
}

static int
utf8(const char *s)
{
	return jnl_appr_utf8_valid(s, strlen(s));
}

static void
test_utf8(void **state)
{
	assert_true(utf8(""));
	assert_true(utf8("plain {\"a\":1}\twith tab\nand newline"));
	assert_true(utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
	assert_false(utf8("bell \x07"));
	assert_false(utf8("cr \r"));
	assert_false(utf8("del \x7f"));
	assert_false(utf8("\xff"));
	assert_false(utf8("\xc3"));		/* cut short */
	assert_false(utf8("\xe2\x82"));		/* cut short */
	assert_false(utf8("\xc0\xaf"));		/* overlong '/' */
	assert_false(utf8("\xe0\x80\xaf"));	/* overlong */
	assert_false(utf8("\xed\xa0\x80"));	/* a surrogate */
	assert_false(utf8("\xf4\x90\x80\x80")); /* past U+10FFFF */
	assert_false(utf8("\xc3\x28"));		/* bad continuation */
	/* The length counts, not the NUL: a byte cut off is cut off. */
	assert_false(jnl_appr_utf8_valid("\xc3\xa9", 1));
	assert_true(jnl_appr_utf8_valid("\xc3\xa9", 2));
}

static void
test_decision(void **state)
{
	Palyra__V1__ApprovalDecision d = PALYRA__V1__APPROVAL_DECISION__INIT;
	char reason[APPR_REASON_MAX + 2];

	assert_string_equal(
	    jnl_appr_decision_invalid(NULL), "decision missing");
	d.approval_id = "0123456789abcdef0123456789abcdef";
	assert_non_null(strstr(jnl_appr_decision_invalid(&d), "ALLOW or DENY"));
	d.decision = KIND(DENY);
	assert_null(jnl_appr_decision_invalid(&d));
	d.decision = KIND(ALLOW);
	assert_null(jnl_appr_decision_invalid(&d));
	d.scope = SCOPE(SESSION);
	assert_null(jnl_appr_decision_invalid(&d));
	d.scope = (Palyra__V1__ApprovalScope)7;
	assert_string_equal(jnl_appr_decision_invalid(&d), "unknown scope");
	d.scope = SCOPE(TTL);
	assert_non_null(strstr(jnl_appr_decision_invalid(&d), "ttl_ms"));
	d.ttl_ms = 999;
	assert_non_null(strstr(jnl_appr_decision_invalid(&d), "ttl_ms"));
	d.ttl_ms = 1000;
	assert_null(jnl_appr_decision_invalid(&d));
	d.ttl_ms = 2592000000ULL;
	assert_null(jnl_appr_decision_invalid(&d));
	d.ttl_ms = 2592000001ULL;
	assert_non_null(strstr(jnl_appr_decision_invalid(&d), "ttl_ms"));
	/* A deny ignores the scope's TTL. */
	d.decision = KIND(DENY);
	assert_null(jnl_appr_decision_invalid(&d));
	memset(reason, 'r', sizeof(reason) - 1);
	reason[sizeof(reason) - 1] = '\0';
	d.reason = reason;
	assert_non_null(strstr(jnl_appr_decision_invalid(&d), "reason"));
	reason[APPR_REASON_MAX] = '\0';
	assert_null(jnl_appr_decision_invalid(&d));
	d.reason = "bad \x01";
	assert_non_null(strstr(jnl_appr_decision_invalid(&d), "UTF-8"));
	d.approval_id = "nope";
	d.reason = "";
	assert_non_null(strstr(jnl_appr_decision_invalid(&d), "approval_id"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ids),
	    cmocka_unit_test(test_utf8),
	    cmocka_unit_test(test_decision),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
