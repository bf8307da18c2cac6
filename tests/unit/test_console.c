/*
 * test_console.c: the context-free parsers of /console/v1
 * (front/console_parse.c): JSON nesting depth, the session cookie in a
 * Cookie header, unsigned query values, budget ids.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../front/console_parse.c"

static int
depth_ok(const char *text, int max)
{
	return fe_console_json_depth_ok(text, strlen(text), max);
}

static void
test_json_depth(void **state)
{
	char deep[64 + 1];

	(void)state;
	assert_true(depth_ok("{}", 1));
	assert_true(depth_ok("{\"a\":[1,2]}", 2));
	assert_false(depth_ok("{\"a\":[1,2]}", 1));
	assert_false(depth_ok("[[[]]]", 2));
	assert_true(depth_ok("[[]][[]]", 2));	/* siblings do not add up */
	/* Brackets in strings, escaped quotes included, do not count. */
	assert_true(depth_ok("{\"a\":\"[[[[{{{{\"}", 1));
	assert_true(depth_ok("{\"a\":\"\\\"[[[[\"}", 1));
	assert_true(depth_ok("{\"a\":\"\\\\\"}", 1));
	assert_false(depth_ok("{\"a\":\"\\\\\",\"b\":[[1]]}", 2));
	memset(deep, '[', sizeof(deep) - 1);
	deep[sizeof(deep) - 1] = '\0';
	assert_false(depth_ok(deep, FE_CONSOLE_JSON_DEPTH_MAX));
	assert_true(fe_console_json_depth_ok(deep, FE_CONSOLE_JSON_DEPTH_MAX,
	    FE_CONSOLE_JSON_DEPTH_MAX));
	assert_true(depth_ok("", 0));
}

static void
test_cookie(void **state)
{
	char out[8];

	(void)state;
	assert_int_equal(fe_console_cookie_value("s=abc", "s", out,
			     sizeof(out)), 0);
	assert_string_equal(out, "abc");
	assert_int_equal(fe_console_cookie_value("a=1; s=xyz; b=2", "s", out,
			     sizeof(out)), 0);
	assert_string_equal(out, "xyz");
	assert_int_equal(fe_console_cookie_value("a=1;s=", "s", out,
			     sizeof(out)), 0);
	assert_string_equal(out, "");
	/* A longer name that starts with it is another cookie. */
	assert_int_equal(fe_console_cookie_value("ss=1; xs=2", "s", out,
			     sizeof(out)), -1);
	assert_int_equal(fe_console_cookie_value("", "s", out, sizeof(out)),
	    -1);
	assert_int_equal(fe_console_cookie_value("; ;", "s", out,
			     sizeof(out)), -1);
	/* Too long for out: refused, never truncated. */
	assert_int_equal(fe_console_cookie_value("s=12345678", "s", out,
			     sizeof(out)), -1);
	assert_int_equal(fe_console_cookie_value("s=1234567", "s", out,
			     sizeof(out)), 0);
}

static void
test_query_uint(void **state)
{
	(void)state;
	assert_int_equal(fe_console_query_uint("0", 0, 10), 0);
	assert_int_equal(fe_console_query_uint("10", 0, 10), 10);
	assert_int_equal(fe_console_query_uint("11", 0, 10), -1);
	assert_int_equal(fe_console_query_uint("0", 1, 10), -1);
	assert_int_equal(fe_console_query_uint("", 0, 10), -1);
	assert_int_equal(fe_console_query_uint(NULL, 0, 10), -1);
	assert_int_equal(fe_console_query_uint("-1", 0, 10), -1);
	assert_int_equal(fe_console_query_uint("1x", 0, 10), -1);
	assert_int_equal(fe_console_query_uint(" 1", 0, 10), -1);
	assert_true(fe_console_query_uint("9223372036854775807", 0,
			INT64_MAX) == INT64_MAX);
	assert_int_equal(fe_console_query_uint("9223372036854775808", 0,
			     INT64_MAX), -1);
	assert_int_equal(fe_console_query_uint("99999999999999999999", 0,
			     INT64_MAX), -1);
}

static void
test_budget_id(void **state)
{
	struct fe_budget_id b;

	(void)state;
	assert_int_equal(fe_console_budget_id("tenant:tokens:day", &b), 0);
	assert_int_equal(b.scope, PALYRA__V1__BUDGET_SCOPE__BUDGET_SCOPE_TENANT);
	assert_int_equal(b.unit, PALYRA__V1__BUDGET_UNIT__BUDGET_UNIT_TOKENS);
	assert_int_equal(b.period, PALYRA__V1__BUDGET_PERIOD__BUDGET_PERIOD_DAY);
	assert_string_equal(b.subject, "");
	assert_int_equal(fe_console_budget_id("agent:asker:cost:month", &b), 0);
	assert_int_equal(b.scope, PALYRA__V1__BUDGET_SCOPE__BUDGET_SCOPE_AGENT);
	assert_int_equal(b.unit, PALYRA__V1__BUDGET_UNIT__BUDGET_UNIT_COST);
	assert_int_equal(
	    b.period, PALYRA__V1__BUDGET_PERIOD__BUDGET_PERIOD_MONTH);
	assert_string_equal(b.subject, "asker");
	assert_int_equal(
	    fe_console_budget_id("principal:a.b-c_d:tokens:total", &b), 0);
	assert_int_equal(
	    b.scope, PALYRA__V1__BUDGET_SCOPE__BUDGET_SCOPE_PRINCIPAL);
	assert_int_equal(
	    b.period, PALYRA__V1__BUDGET_PERIOD__BUDGET_PERIOD_TOTAL);
	assert_string_equal(b.subject, "a.b-c_d");
	/* Malformed: wrong arity, empty parts, unknown words, bad names. */
	assert_int_equal(fe_console_budget_id("", &b), -1);
	assert_int_equal(fe_console_budget_id("tenant", &b), -1);
	assert_int_equal(fe_console_budget_id("tenant:tokens", &b), -1);
	assert_int_equal(fe_console_budget_id("tenant:x:tokens:day", &b), -1);
	assert_int_equal(fe_console_budget_id("agent:tokens:day", &b), -1);
	assert_int_equal(fe_console_budget_id("agent::tokens:day", &b), -1);
	assert_int_equal(fe_console_budget_id(":tenant:tokens:day", &b), -1);
	assert_int_equal(fe_console_budget_id("tenant:tokens:day:", &b), -1);
	assert_int_equal(fe_console_budget_id("tenant:tokens:week", &b), -1);
	assert_int_equal(fe_console_budget_id("tenant:dollars:day", &b), -1);
	assert_int_equal(fe_console_budget_id("team:tokens:day", &b), -1);
	assert_int_equal(fe_console_budget_id("Tenant:tokens:day", &b), -1);
	assert_int_equal(fe_console_budget_id("agent:a/b:tokens:day", &b), -1);
	assert_int_equal(
	    fe_console_budget_id("agent:a:b:tokens:day", &b), -1);
	assert_int_equal(fe_console_budget_id("agent:"
					      "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
					      "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
					      ":tokens:day",
			     &b),
	    -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_depth),
		cmocka_unit_test(test_cookie),
		cmocka_unit_test(test_query_uint),
		cmocka_unit_test(test_budget_id),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
