/*
 * test_cron_plan.c: journald's cron planning (journald/cron_plan.c): which
 * scheduled times of a due job fire, which are recorded skipped, and the
 * next one, for on-time, late and missed times under each misfire policy;
 * `at` jobs; a scan over years of `every 1s` stays bounded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../journald/cron_plan.c"

#define GRACE JNL_CRON_GRACE_MS

static struct cron_sched *
parse(const char *spec)
{
	struct cron_sched *s = NULL;
	char err[128];

	assert_int_equal(cron_parse(spec, &s, err, sizeof(err)), 0);
	return s;
}

struct plan {
	struct jnl_cron_item item[JNL_CRON_PLAN_ROOM];
	size_t n;
	int64_t handled, next;
};

static void
plan(const char *spec, int64_t anchor, int64_t next, int64_t now,
    enum jnl_cron_misfire policy, unsigned max, struct plan *p)
{
	struct cron_sched *s = parse(spec);

	memset(p, 0, sizeof(*p));
	p->n = jnl_cron_plan(s, NULL, anchor, next, now, GRACE, policy, max,
	    p->item, &p->handled, &p->next);
	cron_free(s);
}

static void
expect(const struct plan *p, size_t i, int64_t scheduled, int skip)
{
	assert_true(i < p->n);
	assert_int_equal(p->item[i].scheduled_ms, scheduled);
	assert_int_equal(p->item[i].skip, skip);
}

static void
test_not_due_and_on_time(void **state)
{
	struct plan p;

	(void)state;
	plan("every 1s", 0, 10000, 9999, JNL_MISFIRE_SKIP, 10, &p);
	assert_int_equal(p.n, 0);
	assert_int_equal(p.handled, 0);
	assert_int_equal(p.next, 10000);

	plan("every 1s", 0, 10000, 10000, JNL_MISFIRE_SKIP, 10, &p);
	assert_int_equal(p.n, 1);
	expect(&p, 0, 10000, 0);
	assert_int_equal(p.handled, 10000);
	assert_int_equal(p.next, 11000);
}

/* Within the grace a tick is late, not a misfire: every time fires. */
static void
test_late_is_not_missed(void **state)
{
	struct plan p;

	(void)state;
	plan("every 1s", 0, 10000, 11500, JNL_MISFIRE_SKIP, 10, &p);
	assert_int_equal(p.n, 2);
	expect(&p, 0, 10000, 0);
	expect(&p, 1, 11000, 0);
	assert_int_equal(p.next, 12000);
	/* Exactly at the grace is still late. */
	plan("every 1s", 0, 10000, 10000 + GRACE, JNL_MISFIRE_SKIP, 10, &p);
	expect(&p, 0, 10000, 0);
}

/* 10 s down: 10 s .. 17 s missed, 18 s .. 20 s late. */
static void
test_misfire_policies(void **state)
{
	struct plan p;

	(void)state;
	plan("every 1s", 0, 10000, 20000, JNL_MISFIRE_SKIP, 10, &p);
	assert_int_equal(p.n, 4);
	expect(&p, 0, 17000, 1);
	expect(&p, 1, 18000, 0);
	expect(&p, 2, 19000, 0);
	expect(&p, 3, 20000, 0);
	assert_int_equal(p.handled, 20000);
	assert_int_equal(p.next, 21000);

	plan("every 1s", 0, 10000, 20000, JNL_MISFIRE_ONCE, 10, &p);
	assert_int_equal(p.n, 4);
	expect(&p, 0, 17000, 0);
	expect(&p, 1, 18000, 0);

	plan("every 1s", 0, 10000, 20000, JNL_MISFIRE_CATCH_UP, 3, &p);
	assert_int_equal(p.n, 6);
	expect(&p, 0, 15000, 0);
	expect(&p, 1, 16000, 0);
	expect(&p, 2, 17000, 0);
	expect(&p, 3, 18000, 0);

	/* Fewer missed than the bound: every one, oldest first. */
	plan("every 1s", 0, 16000, 20000, JNL_MISFIRE_CATCH_UP, 10, &p);
	assert_int_equal(p.n, 5);
	expect(&p, 0, 16000, 0);
	expect(&p, 1, 17000, 0);
	/* catch_up_max out of range is brought into 1..100. */
	plan("every 1s", 0, 10000, 20000, JNL_MISFIRE_CATCH_UP, 0, &p);
	expect(&p, 0, 17000, 0);
	expect(&p, 1, 18000, 0);
}

/* Ten days of `every 1s` missed: bounded work, the right latest times. */
static void
test_long_gap_is_bounded(void **state)
{
	const int64_t now = 10LL * 86400 * 1000;
	struct plan p;

	(void)state;
	plan("every 1s", 0, 1000, now, JNL_MISFIRE_CATCH_UP, 3, &p);
	assert_int_equal(p.n, 6);
	expect(&p, 0, now - 5000, 0);
	expect(&p, 1, now - 4000, 0);
	expect(&p, 2, now - 3000, 0);
	expect(&p, 3, now - 2000, 0);
	expect(&p, 5, now, 0);
	assert_int_equal(p.handled, now);
	assert_int_equal(p.next, now + 1000);

	plan("every 1s", 0, 1000, now + 500, JNL_MISFIRE_SKIP, 10, &p);
	expect(&p, 0, now - 2000, 1);
	assert_int_equal(p.next, now + 1000);
}

static void
test_at_and_expressions(void **state)
{
	struct plan p;
	const int64_t hour = 3600 * 1000;

	(void)state;
	plan(
	    "at 1970-01-01T00:00:05Z", 0, 5000, 5000, JNL_MISFIRE_SKIP, 10, &p);
	assert_int_equal(p.n, 1);
	expect(&p, 0, 5000, 0);
	assert_int_equal(p.next, 0);
	/* Missed long ago: recorded skipped, and done. */
	plan(
	    "at 1970-01-01T00:00:05Z", 0, 5000, hour, JNL_MISFIRE_SKIP, 10, &p);
	assert_int_equal(p.n, 1);
	expect(&p, 0, 5000, 1);
	assert_int_equal(p.next, 0);
	plan(
	    "at 1970-01-01T00:00:05Z", 0, 5000, hour, JNL_MISFIRE_ONCE, 10, &p);
	expect(&p, 0, 5000, 0);

	/* Hourly in UTC: 1 h .. 4 h missed, 5 h late by 10 ms. */
	plan("0 * * * *", 0, hour, 5 * hour + 10, JNL_MISFIRE_SKIP, 10, &p);
	assert_int_equal(p.n, 2);
	expect(&p, 0, 4 * hour, 1);
	expect(&p, 1, 5 * hour, 0);
	assert_int_equal(p.next, 6 * hour);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_not_due_and_on_time),
	    cmocka_unit_test(test_late_is_not_missed),
	    cmocka_unit_test(test_misfire_policies),
	    cmocka_unit_test(test_long_gap_is_bounded),
	    cmocka_unit_test(test_at_and_expressions),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
