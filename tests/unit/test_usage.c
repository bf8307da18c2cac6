/*
 * test_usage.c: journald's budget ledger (budgets.c) and time zones
 * (zones.c): days and periods, budget ids and messages, the reservation
 * arithmetic that keeps concurrent calls under a hard budget, settles,
 * owners, a new day, and the local day of a tenant's zone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../journald/budgets.c"
#include "../../journald/zones.c"

/* The usage table, as the ledger's load callback sees it. */
struct fake_usage {
	uint64_t used; /* what every SUM answers */
	int loads;
	int fail;
};

static int
fake_load(void *arg, const struct jnl_budget_cell *c, uint64_t *used)
{
	struct fake_usage *f = arg;

	(void)c;
	f->loads++;
	if (f->fail)
		return -EIO;
	*used = f->used;
	return 0;
}

static struct jnl_budget
budget(int scope, const char *subject, int unit, int period, uint64_t limit,
    int hard)
{
	struct jnl_budget b;

	memset(&b, 0, sizeof(b));
	b.scope = scope;
	snprintf(b.subject, sizeof(b.subject), "%s", subject);
	b.unit = unit;
	b.period = period;
	b.limit = limit;
	b.hard = hard;
	assert_int_equal(jnl_budget_make_id(&b), 0);
	return b;
}

static void
test_days(void **state)
{
	char key[JNL_DAY_LEN + 1], from[JNL_DAY_LEN + 1], to[JNL_DAY_LEN + 1];

	(void)state;
	assert_true(jnl_day_valid("2026-12-02"));
	assert_true(jnl_day_valid("2024-02-29"));
	assert_true(jnl_day_valid("2000-02-29"));
	assert_false(jnl_day_valid("1900-02-29"));
	assert_false(jnl_day_valid("2026-02-29"));
	assert_false(jnl_day_valid("2026-04-31"));
	assert_false(jnl_day_valid("2026-13-01"));
	assert_false(jnl_day_valid("2026-00-10"));
	assert_false(jnl_day_valid("2026-1-01"));
	assert_false(jnl_day_valid("2026-01-01x"));
	assert_false(jnl_day_valid("2026/01/01"));
	assert_false(jnl_day_valid("0000-01-01"));
	assert_false(jnl_day_valid(""));
	assert_false(jnl_day_valid(NULL));

	jnl_period_key(JNL_PERIOD_DAY, "2026-12-02", key);
	assert_string_equal(key, "2026-12-02");
	jnl_period_key(JNL_PERIOD_MONTH, "2026-12-02", key);
	assert_string_equal(key, "2026-12");
	jnl_period_key(JNL_PERIOD_TOTAL, "2026-12-02", key);
	assert_string_equal(key, "");

	jnl_period_range(JNL_PERIOD_DAY, "2026-12-02", from, to);
	assert_string_equal(from, "2026-12-02");
	assert_string_equal(to, "2026-12-02");
	jnl_period_range(JNL_PERIOD_MONTH, "2026-02-14", from, to);
	assert_string_equal(from, "2026-02-01");
	assert_string_equal(to, "2026-02-31");
	/* Every day of the month sorts inside, the next month's not. */
	assert_true(strcmp("2026-02-28", to) <= 0);
	assert_true(strcmp("2026-03-01", to) > 0);
	assert_true(strcmp("2026-01-31", from) < 0);
	jnl_period_range(JNL_PERIOD_TOTAL, "2026-02-14", from, to);
	assert_true(strcmp("0001-01-01", from) >= 0);
	assert_true(strcmp("9999-12-31", to) <= 0);

	jnl_period_start(JNL_PERIOD_DAY, "2026-12-02", key);
	assert_string_equal(key, "2026-12-02");
	jnl_period_start(JNL_PERIOD_MONTH, "2026-12-02", key);
	assert_string_equal(key, "2026-12-01");
	jnl_period_start(JNL_PERIOD_TOTAL, "2026-12-02", key);
	assert_string_equal(key, "");
}

static void
test_ids_and_names(void **state)
{
	struct jnl_budget b;

	(void)state;
	b = budget(JNL_SCOPE_TENANT, "", JNL_UNIT_TOKENS, JNL_PERIOD_DAY, 1, 1);
	assert_string_equal(b.id, "tenant:tokens:day");
	b = budget(JNL_SCOPE_AGENT, "assistant", JNL_UNIT_COST,
	    JNL_PERIOD_MONTH, 1, 1);
	assert_string_equal(b.id, "agent:assistant:cost:month");
	b = budget(JNL_SCOPE_PRINCIPAL, "alice", JNL_UNIT_TOKENS,
	    JNL_PERIOD_TOTAL, 1, 0);
	assert_string_equal(b.id, "principal:alice:tokens:total");

	/* The longest name fits the id. */
	memset(b.subject, 'x', NAME_MAX_LEN);
	b.subject[NAME_MAX_LEN] = '\0';
	b.scope = JNL_SCOPE_PRINCIPAL;
	b.unit = JNL_UNIT_TOKENS;
	b.period = JNL_PERIOD_MONTH;
	assert_int_equal(jnl_budget_make_id(&b), 0);
	assert_int_equal(strlen(b.id), JNL_BUDGET_ID_MAX);

	/* A tenant budget has no subject, the others need a name. */
	b.scope = JNL_SCOPE_TENANT;
	snprintf(b.subject, sizeof(b.subject), "alice");
	assert_int_equal(jnl_budget_make_id(&b), -EINVAL);
	b.scope = JNL_SCOPE_AGENT;
	b.subject[0] = '\0';
	assert_int_equal(jnl_budget_make_id(&b), -EINVAL);
	snprintf(b.subject, sizeof(b.subject), "a:b");
	assert_int_equal(jnl_budget_make_id(&b), -EINVAL);
	snprintf(b.subject, sizeof(b.subject), "-x");
	assert_int_equal(jnl_budget_make_id(&b), -EINVAL);
	snprintf(b.subject, sizeof(b.subject), "ok");
	b.unit = 0;
	assert_int_equal(jnl_budget_make_id(&b), -EINVAL);
	b.unit = 3;
	assert_int_equal(jnl_budget_make_id(&b), -EINVAL);
	b.unit = JNL_UNIT_COST;
	b.period = 4;
	assert_int_equal(jnl_budget_make_id(&b), -EINVAL);
	b.period = JNL_PERIOD_DAY;
	b.scope = 0;
	assert_int_equal(jnl_budget_make_id(&b), -EINVAL);

	assert_int_equal(jnl_budget_scope_parse("agent"), JNL_SCOPE_AGENT);
	assert_int_equal(jnl_budget_unit_parse("cost"), JNL_UNIT_COST);
	assert_int_equal(jnl_budget_period_parse("month"), JNL_PERIOD_MONTH);
	assert_int_equal(jnl_budget_period_parse("week"), -1);
	assert_int_equal(jnl_budget_unit_parse(NULL), -1);
	assert_null(jnl_budget_scope_name(0));
	assert_null(jnl_budget_scope_name(4));
}

static void
test_messages(void **state)
{
	struct jnl_budget b;
	struct jnl_budget_check c;
	char buf[400];

	(void)state;
	jnl_budget_format_amount(JNL_UNIT_COST, 2500000, buf, sizeof(buf));
	assert_string_equal(buf, "2.50 USD");
	jnl_budget_format_amount(JNL_UNIT_COST, 125, buf, sizeof(buf));
	assert_string_equal(buf, "0.000125 USD");
	jnl_budget_format_amount(JNL_UNIT_COST, 0, buf, sizeof(buf));
	assert_string_equal(buf, "0.00 USD");
	jnl_budget_format_amount(JNL_UNIT_COST, 12345678901, buf, sizeof(buf));
	assert_string_equal(buf, "12345.678901 USD");
	jnl_budget_format_amount(JNL_UNIT_TOKENS, 5000, buf, sizeof(buf));
	assert_string_equal(buf, "5000 tokens");
	jnl_budget_format_amount(JNL_UNIT_TOKENS, 1, buf, sizeof(buf));
	assert_string_equal(buf, "1 token");

	b = budget(
	    JNL_SCOPE_TENANT, "", JNL_UNIT_TOKENS, JNL_PERIOD_DAY, 5000, 1);
	c.budget = &b;
	c.used = 4200;
	c.reserved = 600;
	c.call = 1100;
	c.over = 1;
	jnl_budget_describe(&c, 1, buf, sizeof(buf));
	assert_string_equal(buf,
	    "budget tenant:tokens:day (hard, 5000 tokens per day) would be "
	    "exceeded: used 4200, reserved 600, this call 1100");

	b = budget(JNL_SCOPE_AGENT, "assistant", JNL_UNIT_COST,
	    JNL_PERIOD_MONTH, 2500000, 0);
	c.used = 2000000;
	c.reserved = 0;
	c.call = 600000;
	jnl_budget_describe(&c, 0, buf, sizeof(buf));
	assert_string_equal(buf,
	    "budget agent:assistant:cost:month (soft, 2.50 USD per month) "
	    "crossed: used 2.00 USD, reserved 0.00 USD, this call 0.60 USD");

	b = budget(JNL_SCOPE_PRINCIPAL, "bob", JNL_UNIT_TOKENS,
	    JNL_PERIOD_TOTAL, 10, 1);
	jnl_budget_describe(&c, 1, buf, sizeof(buf));
	assert_non_null(strstr(buf, "(hard, 10 tokens in total)"));
}

static void
test_reserve_hard(void **state)
{
	struct jnl_ledger l;
	struct jnl_budget b[1];
	struct jnl_budget_check checks[1];
	struct fake_usage f = {.used = 4200};
	size_t nchecks, refused;
	uint64_t r1, r2, r3;
	char buf[400];
	int owner;

	(void)state;
	jnl_ledger_init(&l);
	b[0] = budget(
	    JNL_SCOPE_TENANT, "", JNL_UNIT_TOKENS, JNL_PERIOD_DAY, 5000, 1);

	assert_int_equal(
	    jnl_ledger_reserve(&l, b, 1, "a", "p", "2026-12-02", 600, 0, &owner,
		fake_load, &f, checks, &nchecks, &r1, &refused),
	    0);
	assert_int_equal(nchecks, 1);
	assert_int_not_equal(r1, 0);
	assert_int_equal(f.loads, 1);

	/* 4200 + 600 + 1100 > 5000: refused, nothing reserved. */
	assert_int_equal(
	    jnl_ledger_reserve(&l, b, 1, "a", "p", "2026-12-02", 1100, 0,
		&owner, fake_load, &f, checks, &nchecks, &r2, &refused),
	    1);
	assert_int_equal(refused, 0);
	assert_int_equal(r2, 0);
	assert_int_equal(checks[0].used, 4200);
	assert_int_equal(checks[0].reserved, 600);
	assert_int_equal(checks[0].call, 1100);
	assert_int_equal(checks[0].after, 5900);
	jnl_budget_describe(&checks[0], 1, buf, sizeof(buf));
	assert_non_null(strstr(buf, "used 4200, reserved 600, this call 1100"));
	assert_int_equal(l.nreservations, 1);

	/* Exactly at the limit is allowed: 4200 + 600 + 200 = 5000. */
	assert_int_equal(
	    jnl_ledger_reserve(&l, b, 1, "a", "p", "2026-12-02", 200, 0, &owner,
		fake_load, &f, checks, &nchecks, &r3, &refused),
	    0);
	assert_int_not_equal(r3, r1);
	assert_int_equal(f.loads, 1); /* warm: no second SUM */

	/* Settling r1 at its real 100 tokens frees 500. */
	assert_int_equal(jnl_ledger_release(&l, r1, &owner), 0);
	assert_int_equal(jnl_ledger_release(&l, r1, &owner), -ENOENT);
	jnl_ledger_settled(&l, "a", "p", "2026-12-02", 100, 0);
	assert_int_equal(l.cells->used, 4300);
	assert_int_equal(l.cells->reserved, 200);
	assert_int_equal(
	    jnl_ledger_reserve(&l, b, 1, "a", "p", "2026-12-02", 500, 0, &owner,
		fake_load, &f, checks, &nchecks, &r2, &refused),
	    0);
	assert_int_equal(
	    jnl_ledger_reserve(&l, b, 1, "a", "p", "2026-12-02", 1, 0, &owner,
		fake_load, &f, checks, &nchecks, &r1, &refused),
	    1);
	/* Another owner cannot release them. */
	assert_int_equal(jnl_ledger_release(&l, r2, &f), -ENOENT);
	jnl_ledger_free(&l);
}

static void
test_concurrent_calls(void **state)
{
	struct jnl_ledger l;
	struct jnl_budget b[1];
	struct jnl_budget_check checks[1];
	struct fake_usage f = {.used = 0};
	uint64_t ids[32];
	size_t nchecks, refused, i, admitted = 0;
	int owner;

	(void)state;
	/* A hard budget of 5000 tokens and 32 calls of 1000 in flight:
	 * exactly five are admitted, whatever their order. */
	jnl_ledger_init(&l);
	b[0] = budget(
	    JNL_SCOPE_TENANT, "", JNL_UNIT_TOKENS, JNL_PERIOD_TOTAL, 5000, 1);
	for (i = 0; i < 32; i++) {
		int rc = jnl_ledger_reserve(&l, b, 1, "a", "p", "2026-12-02",
		    1000, 0, &owner, fake_load, &f, checks, &nchecks, &ids[i],
		    &refused);

		assert_true(rc == 0 || rc == 1);
		if (rc == 0)
			admitted++;
	}
	assert_int_equal(admitted, 5);
	assert_int_equal(l.cells->reserved, 5000);
	/* Each settles at 800 real tokens: 4000 used, one more fits. */
	for (i = 0; i < 32; i++)
		if (ids[i] != 0) {
			assert_int_equal(
			    jnl_ledger_release(&l, ids[i], &owner), 0);
			jnl_ledger_settled(&l, "a", "p", "2026-12-02", 800, 0);
		}
	assert_int_equal(l.cells->used, 4000);
	assert_int_equal(l.cells->reserved, 0);
	assert_int_equal(
	    jnl_ledger_reserve(&l, b, 1, "a", "p", "2026-12-03", 1000, 0,
		&owner, fake_load, &f, checks, &nchecks, &ids[0], &refused),
	    0);
	assert_int_equal(
	    jnl_ledger_reserve(&l, b, 1, "a", "p", "2026-12-03", 1, 0, &owner,
		fake_load, &f, checks, &nchecks, &ids[1], &refused),
	    1);
	jnl_ledger_free(&l);
}

static void
test_soft_and_scopes(void **state)
{
	struct jnl_ledger l;
	struct jnl_budget b[4];
	struct jnl_budget_check checks[4];
	struct fake_usage f = {.used = 900};
	size_t nchecks, refused, i;
	uint64_t r;
	int owner;

	(void)state;
	jnl_ledger_init(&l);
	b[0] = budget(
	    JNL_SCOPE_TENANT, "", JNL_UNIT_TOKENS, JNL_PERIOD_DAY, 1000, 0);
	b[1] = budget(
	    JNL_SCOPE_AGENT, "other", JNL_UNIT_TOKENS, JNL_PERIOD_DAY, 1, 1);
	b[2] = budget(JNL_SCOPE_PRINCIPAL, "alice", JNL_UNIT_COST,
	    JNL_PERIOD_MONTH, 1000000, 1);
	b[3] = budget(JNL_SCOPE_AGENT, "helper", JNL_UNIT_TOKENS,
	    JNL_PERIOD_TOTAL, 100000, 1);
	/* helper by alice: the agent "other" budget does not apply. */
	assert_int_equal(
	    jnl_ledger_reserve(&l, b, 4, "helper", "alice", "2026-12-02", 200,
		5000, &owner, fake_load, &f, checks, &nchecks, &r, &refused),
	    0);
	assert_int_equal(nchecks, 3);
	assert_ptr_equal(checks[0].budget, &b[0]);
	assert_true(checks[0].over); /* soft: warned, not refused */
	assert_ptr_equal(checks[1].budget, &b[2]);
	assert_int_equal(checks[1].call, 5000); /* cost in micro-USD */
	assert_false(checks[1].over);
	assert_ptr_equal(checks[2].budget, &b[3]);
	assert_false(checks[2].over);
	/* The same call by agent "other" meets its hard budget of 1. */
	assert_int_equal(
	    jnl_ledger_reserve(&l, b, 4, "other", "bob", "2026-12-02", 200,
		5000, &owner, fake_load, &f, checks, &nchecks, &r, &refused),
	    1);
	assert_ptr_equal(checks[refused].budget, &b[1]);

	/* A settle counts in every loaded cell that counts it. */
	jnl_ledger_settled(&l, "helper", "alice", "2026-12-02", 10, 7);
	for (struct jnl_budget_cell *c = l.cells; c != NULL; c = c->next) {
		if (strcmp(c->id, "tenant:tokens:day") == 0)
			assert_int_equal(c->used, 910);
		if (strcmp(c->id, "principal:alice:cost:month") == 0)
			assert_int_equal(c->used, 907);
		if (strcmp(c->id, "agent:other:tokens:day") == 0)
			assert_int_equal(c->used, 900);
	}

	/* A load that fails refuses the check, and is retried later. */
	jnl_ledger_invalidate(&l);
	f.fail = 1;
	i = f.loads;
	assert_int_equal(
	    jnl_ledger_reserve(&l, b, 4, "helper", "alice", "2026-12-02", 1, 0,
		&owner, fake_load, &f, checks, &nchecks, &r, &refused),
	    -EIO);
	assert_int_equal(f.loads, i + 1);
	f.fail = 0;
	f.used = 0;
	assert_int_equal(
	    jnl_ledger_reserve(&l, b, 4, "helper", "alice", "2026-12-02", 1, 0,
		&owner, fake_load, &f, checks, &nchecks, &r, &refused),
	    0);
	assert_int_equal(checks[0].used, 0);
	assert_int_equal(checks[0].reserved, 200);
	jnl_ledger_free(&l);
}

static void
test_owner_and_new_day(void **state)
{
	struct jnl_ledger l;
	struct jnl_budget b[2];
	struct jnl_budget_check checks[2];
	struct fake_usage f = {.used = 0};
	size_t nchecks, refused, ncells;
	uint64_t r1, r2, r3;
	struct jnl_budget_cell *c;
	int w1, w2;

	(void)state;
	jnl_ledger_init(&l);
	b[0] = budget(
	    JNL_SCOPE_TENANT, "", JNL_UNIT_TOKENS, JNL_PERIOD_DAY, 1000, 1);
	b[1] = budget(
	    JNL_SCOPE_TENANT, "", JNL_UNIT_TOKENS, JNL_PERIOD_MONTH, 5000, 1);
	assert_int_equal(
	    jnl_ledger_reserve(&l, b, 2, "a", "p", "2026-12-31", 400, 0, &w1,
		fake_load, &f, checks, &nchecks, &r1, &refused),
	    0);
	assert_int_equal(
	    jnl_ledger_reserve(&l, b, 2, "a", "p", "2026-12-31", 400, 0, &w1,
		fake_load, &f, checks, &nchecks, &r2, &refused),
	    0);
	assert_int_equal(
	    jnl_ledger_reserve(&l, b, 2, "a", "p", "2026-12-31", 100, 0, &w2,
		fake_load, &f, checks, &nchecks, &r3, &refused),
	    0);
	/* Worker 1 goes: its two reservations with it. */
	assert_int_equal(jnl_ledger_release_owner(&l, &w1), 2);
	assert_int_equal(l.nreservations, 1);
	for (c = l.cells; c != NULL; c = c->next)
		assert_int_equal(c->reserved, 100);

	/* Midnight: a new day and a new month. The old cells still held by
	 * r3 stay until it is released; the new ones are loaded. */
	f.loads = 0;
	assert_int_equal(
	    jnl_ledger_reserve(&l, b, 2, "a", "p", "2027-01-01", 1000, 0, &w2,
		fake_load, &f, checks, &nchecks, &r1, &refused),
	    0);
	assert_int_equal(f.loads, 2);
	for (ncells = 0, c = l.cells; c != NULL; c = c->next)
		ncells++;
	assert_int_equal(ncells, 4);
	assert_int_equal(jnl_ledger_release(&l, r3, &w2), 0);
	/* The next day change drops the old, now unheld, cells. */
	assert_int_equal(
	    jnl_ledger_reserve(&l, b, 2, "a", "p", "2027-01-02", 1, 0, &w2,
		fake_load, &f, checks, &nchecks, &r2, &refused),
	    0);
	for (ncells = 0, c = l.cells; c != NULL; c = c->next) {
		assert_true(strncmp(c->key, "2027-01", 7) == 0);
		ncells++;
	}
	assert_int_equal(ncells, 3); /* day 01 (held by r1), day 02, month */
	jnl_ledger_free(&l);
}

static void
test_saturation(void **state)
{
	struct jnl_ledger l;
	struct jnl_budget b[1];
	struct jnl_budget_check checks[1];
	struct fake_usage f = {.used = UINT64_MAX - 5};
	size_t nchecks, refused;
	uint64_t r;
	int owner;

	(void)state;
	jnl_ledger_init(&l);
	b[0] = budget(JNL_SCOPE_TENANT, "", JNL_UNIT_TOKENS, JNL_PERIOD_TOTAL,
	    UINT64_MAX - 1, 1);
	/* used + call wraps around in plain arithmetic; never here. */
	assert_int_equal(
	    jnl_ledger_reserve(&l, b, 1, "a", "p", "2026-12-02", 100, 0, &owner,
		fake_load, &f, checks, &nchecks, &r, &refused),
	    1);
	assert_true(checks[0].after == UINT64_MAX);
	jnl_ledger_free(&l);
}

static void
test_reservations_bounded(void **state)
{
	struct jnl_ledger l;
	struct jnl_budget_check checks[1];
	struct fake_usage f = {.used = 0};
	size_t nchecks, refused, i;
	uint64_t r = 0;
	int owner;

	(void)state;
	jnl_ledger_init(&l);
	for (i = 0; i < JNL_RESERVATIONS_MAX; i++)
		assert_int_equal(jnl_ledger_reserve(&l, NULL, 0, "a", "p",
				     "2026-12-02", 1, 0, &owner, fake_load, &f,
				     checks, &nchecks, &r, &refused),
		    0);
	assert_int_equal(jnl_ledger_reserve(&l, NULL, 0, "a", "p",
			     "2026-12-02", 1, 0, &owner, fake_load, &f, checks,
			     &nchecks, &r, &refused),
	    -ENOSPC);
	/* One settles: room for one more. */
	assert_int_equal(jnl_ledger_release(&l, 77, &owner), 0);
	assert_int_equal(jnl_ledger_reserve(&l, NULL, 0, "a", "p",
			     "2026-12-02", 1, 0, &owner, fake_load, &f, checks,
			     &nchecks, &r, &refused),
	    0);
	assert_int_equal(jnl_ledger_release_owner(&l, &owner),
	    JNL_RESERVATIONS_MAX);
	assert_int_equal(l.nreservations, 0);
	jnl_ledger_free(&l);
}

static void
test_zones(void **state)
{
	char rule[JNL_TZ_RULE_MAX + 1], day[JNL_DAY_LEN + 1];
	struct jnl_zones *z;
	char path[] = "/tmp/test_usage_XXXXXX", junk[100];
	int fd;

	(void)state;
	assert_int_equal(jnl_zone_rule(NULL, NULL, "", rule), 0);
	assert_string_equal(rule, "UTC0");
	assert_int_equal(jnl_zone_rule(NULL, NULL, "UTC", rule), 0);
	assert_int_equal(
	    jnl_zone_rule(NULL, JNL_ZONEINFO_DIR, "Europe/Paris", rule), 0);
	assert_string_equal(rule, "CET-1CEST,M3.5.0,M10.5.0/3");
	assert_int_equal(
	    jnl_zone_rule(NULL, JNL_ZONEINFO_DIR, "../../etc/passwd", rule),
	    -EINVAL);
	assert_int_equal(
	    jnl_zone_rule(NULL, JNL_ZONEINFO_DIR, "/etc/passwd", rule),
	    -EINVAL);
	assert_int_equal(
	    jnl_zone_rule(NULL, JNL_ZONEINFO_DIR, "Europe/", rule), -EINVAL);
	assert_int_equal(
	    jnl_zone_rule(NULL, JNL_ZONEINFO_DIR, "Nowhere/Atlantis", rule),
	    -ENOENT);
	assert_int_equal(
	    jnl_zone_rule(NULL, NULL, "Europe/Paris", rule), -ENOENT);

	/* Read before the sandbox: found without the directory. */
	assert_int_equal(jnl_zones_load(JNL_ZONEINFO_DIR, &z), 0);
	assert_true(jnl_zones_count(z) > 300);
	assert_int_equal(jnl_zone_rule(z, NULL, "America/New_York", rule), 0);
	assert_string_equal(rule, "EST5EDT,M3.2.0,M11.1.0");
	assert_int_equal(jnl_zone_rule(z, NULL, "Asia/Kolkata", rule), 0);
	assert_int_equal(
	    jnl_zone_rule(z, NULL, "posix/Europe/Paris", rule), -ENOENT);
	jnl_zones_free(z);
	assert_int_equal(jnl_zones_load("/nonexistent", &z), 0);
	assert_int_equal(jnl_zones_count(z), 0);
	jnl_zones_free(z);

	/* Not TZif, and TZif version 1 (no footer). */
	assert_true((fd = mkstemp(path)) >= 0);
	memset(junk, 'x', sizeof(junk));
	assert_int_equal(write(fd, junk, sizeof(junk)), sizeof(junk));
	assert_int_equal(jnl_zone_read_rule(fd, rule), -EINVAL);
	assert_int_equal(ftruncate(fd, 0), 0);
	assert_int_equal(pwrite(fd, "TZif\0", 5, 0), 5);
	assert_int_equal(ftruncate(fd, 100), 0);
	assert_int_equal(jnl_zone_read_rule(fd, rule), -ENOENT);
	close(fd);
	unlink(path);

	/* 2026-03-31T22:30:00Z: already April 1st in Paris (UTC+2). */
	assert_int_equal(jnl_zone_day("UTC0", 1774996200, day), 0);
	assert_string_equal(day, "2026-03-31");
	assert_int_equal(
	    jnl_zone_day("CET-1CEST,M3.5.0,M10.5.0/3", 1774996200, day), 0);
	assert_string_equal(day, "2026-04-01");
	/* 2026-01-15T22:59:59Z is 23:59:59 in Paris in winter (UTC+1). */
	assert_int_equal(
	    jnl_zone_day("CET-1CEST,M3.5.0,M10.5.0/3", 1768517999, day), 0);
	assert_string_equal(day, "2026-01-15");
	assert_int_equal(
	    jnl_zone_day("CET-1CEST,M3.5.0,M10.5.0/3", 1768518000, day), 0);
	assert_string_equal(day, "2026-01-16");
	/* 2026-01-01T07:59:59Z is still 2025 in Los Angeles. */
	assert_int_equal(
	    jnl_zone_day("PST8PDT,M3.2.0,M11.1.0", 1767254399, day), 0);
	assert_string_equal(day, "2025-12-31");
	/* Half-hour offsets: India is UTC+5:30. 2026-06-30T18:30:00Z. */
	assert_int_equal(jnl_zone_day("IST-5:30", 1782844200, day), 0);
	assert_string_equal(day, "2026-07-01");
	assert_int_equal(jnl_zone_day("IST-5:30", 1782844199, day), 0);
	assert_string_equal(day, "2026-06-30");

	/* TZ is the caller's again afterwards. */
	setenv("TZ", "Asia/Tokyo", 1);
	assert_int_equal(jnl_zone_day("UTC0", 0, day), 0);
	assert_string_equal(getenv("TZ"), "Asia/Tokyo");
	unsetenv("TZ");
	assert_int_equal(jnl_zone_day("UTC0", 0, day), 0);
	assert_null(getenv("TZ"));
	assert_int_equal(jnl_zone_day("bad rule;", 0, day), -EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_days),
	    cmocka_unit_test(test_ids_and_names),
	    cmocka_unit_test(test_messages),
	    cmocka_unit_test(test_reserve_hard),
	    cmocka_unit_test(test_concurrent_calls),
	    cmocka_unit_test(test_soft_and_scopes),
	    cmocka_unit_test(test_owner_and_new_day),
	    cmocka_unit_test(test_saturation),
	    cmocka_unit_test(test_reservations_bounded),
	    cmocka_unit_test(test_zones),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
