/*
 * test_pbjson.c: protobuf-c messages as JSON (front/pbjson.c), and the
 * console's spelling of enums as lower-case words (fe_pb_json_words).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../front/pbjson.c"
#include "palyra/v1/gateway.pb-c.h"

static const char *
member(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	assert_non_null(v);
	assert_true(json_is_string(v));
	return json_string_value(v);
}

static void
test_approval_words(void **state)
{
	Palyra__V1__Approval a = PALYRA__V1__APPROVAL__INIT;
	json_t *plain, *words;

	(void)state;
	a.approval_id = "0123456789abcdef0123456789abcdef";
	a.state = PALYRA__V1__APPROVAL_STATE__APPROVAL_STATE_PENDING;
	a.scope = PALYRA__V1__APPROVAL_SCOPE__APPROVAL_SCOPE_TTL;
	a.reason = "APPROVAL_STATE_PENDING"; /* text is never rewritten */
	a.expires_unix_ms = 1764662400000;
	plain = fe_pb_json(&a.base);
	words = fe_pb_json_words(&a.base);
	assert_non_null(plain);
	assert_non_null(words);
	assert_string_equal(member(plain, "state"), "APPROVAL_STATE_PENDING");
	assert_string_equal(member(words, "state"), "pending");
	assert_string_equal(member(words, "scope"), "ttl");
	assert_string_equal(member(words, "reason"), "APPROVAL_STATE_PENDING");
	assert_string_equal(member(words, "approval_id"), a.approval_id);
	assert_int_equal(
	    json_integer_value(json_object_get(words, "expires_unix_ms")),
	    1764662400000);
	json_decref(plain);
	json_decref(words);
}

static void
test_budget_and_nested_words(void **state)
{
	Palyra__V1__Budget b = PALYRA__V1__BUDGET__INIT, *list[1];
	Palyra__V1__ListBudgetsResponse r =
	    PALYRA__V1__LIST_BUDGETS_RESPONSE__INIT;
	json_t *obj, *first;

	(void)state;
	b.budget_id = "agent:asker:cost:month";
	b.scope = PALYRA__V1__BUDGET_SCOPE__BUDGET_SCOPE_AGENT;
	b.unit = PALYRA__V1__BUDGET_UNIT__BUDGET_UNIT_COST;
	b.period = PALYRA__V1__BUDGET_PERIOD__BUDGET_PERIOD_MONTH;
	b.limit = UINT64_MAX; /* above INT64_MAX: a decimal string */
	list[0] = &b;
	r.n_budgets = 1;
	r.budgets = list;
	obj = fe_pb_json_words(&r.base);
	assert_non_null(obj);
	first = json_array_get(json_object_get(obj, "budgets"), 0);
	assert_non_null(first);
	assert_string_equal(member(first, "scope"), "agent");
	assert_string_equal(member(first, "unit"), "cost");
	assert_string_equal(member(first, "period"), "month");
	assert_string_equal(member(first, "limit"), "18446744073709551615");
	json_decref(obj);
}

static void
test_decision_kind_prefix(void **state)
{
	Palyra__V1__ApprovalDecision d = PALYRA__V1__APPROVAL_DECISION__INIT;
	Palyra__V1__StatusEvent s = PALYRA__V1__STATUS_EVENT__INIT;
	json_t *obj;

	(void)state;
	/* The type is ApprovalDecisionKind, its values APPROVAL_DECISION_*:
	 * the prefix is what the values share, not the type's name. */
	d.decision = PALYRA__V1__APPROVAL_DECISION_KIND__APPROVAL_DECISION_DENY;
	obj = fe_pb_json_words(&d.base);
	assert_string_equal(member(obj, "decision"), "deny");
	assert_string_equal(member(obj, "scope"), "unspecified");
	json_decref(obj);
	/* A value the descriptor does not know stays a number. */
	d.decision = (Palyra__V1__ApprovalDecisionKind)99;
	obj = fe_pb_json_words(&d.base);
	assert_true(json_is_integer(json_object_get(obj, "decision")));
	assert_int_equal(
	    json_integer_value(json_object_get(obj, "decision")), 99);
	json_decref(obj);
	s.status = PALYRA__V1__RUN_STATUS__RUN_STATUS_WAITING_APPROVAL;
	obj = fe_pb_json_words(&s.base);
	assert_string_equal(member(obj, "status"), "waiting_approval");
	json_decref(obj);
	obj = fe_pb_json(&s.base);
	assert_string_equal(
	    member(obj, "status"), "RUN_STATUS_WAITING_APPROVAL");
	json_decref(obj);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_approval_words),
	    cmocka_unit_test(test_budget_and_nested_words),
	    cmocka_unit_test(test_decision_kind_prefix),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
