/*
 * test_cron.c: cron schedules (common/cron.c): the parser (fields, names,
 * ranges, lists, steps, macros, every, at) and its errors with their
 * columns, hostile specs, and cron_next: UTC, month ends, leap days, the
 * day-of-month/day-of-week OR rule, strictly-after, and the DST rules in
 * Europe/Prague and America/New_York across the 2026 and 2027 changes
 * (real tzdata files).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "cron.h"

#define ZONEINFO "/usr/share/zoneinfo"

/* Unix milliseconds of a UTC civil time. */
static int64_t
utc_ms(int y, int mo, int d, int h, int mi, int s)
{
	int64_t era, yoe, doy, doe, yy = y - (mo <= 2);

	era = (yy >= 0 ? yy : yy - 399) / 400;
	yoe = yy - era * 400;
	doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return ((era * 146097 + doe - 719468) * 86400 + h * 3600 + mi * 60 +
		   s) *
	       1000;
}

static struct cron_sched *
parse_ok(const char *spec)
{
	struct cron_sched *c = NULL;
	char err[256];
	int rc;

	rc = cron_parse(spec, &c, err, sizeof(err));
	if (rc != 0)
		fail_msg("\"%s\": %s", spec, err);
	assert_non_null(c);
	return c;
}

/* The parse fails with exactly this message. */
static void
parse_err(const char *spec, const char *want)
{
	struct cron_sched *c = (struct cron_sched *)1;
	char err[256];

	assert_int_equal(cron_parse(spec, &c, err, sizeof(err)), -EINVAL);
	assert_null(c);
	if (strcmp(err, want) != 0)
		fail_msg("\"%s\": got \"%s\", want \"%s\"", spec, err, want);
}

static struct tz_zone *
zone(const char *name)
{
	struct tz_zone *z = NULL;

	assert_int_equal(tz_load(ZONEINFO, name, &z), 0);
	return z;
}

/*
 * The fires of spec in zone name, one after another from after_ms: each
 * must equal want[i] (0 ends the list: then no further fire is checked).
 */
static void
expect_fires(const char *name, const char *spec, int64_t after_ms,
    const int64_t *want, size_t n)
{
	struct cron_sched *c = parse_ok(spec);
	struct tz_zone *z = name != NULL ? zone(name) : NULL;
	int64_t next = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		assert_int_equal(cron_next(c, z, 0, after_ms, &next), 1);
		if (next != want[i])
			fail_msg("%s \"%s\" fire %zu: got %lld, want %lld",
			    name != NULL ? name : "UTC", spec, i,
			    (long long)next, (long long)want[i]);
		after_ms = next;
	}
	tz_free(z);
	cron_free(c);
}

static void
test_parse_kinds(void **state)
{
	struct cron_sched *c;

	(void)state;
	c = parse_ok("*/5 1-3,7 1,15 JAN-mar Mon-Fri");
	assert_int_equal(cron_kind(c), CRON_EXPR);
	cron_free(c);
	c = parse_ok("  0 0 * * *\t");
	cron_free(c);
	c = parse_ok("every 90s");
	assert_int_equal(cron_kind(c), CRON_EVERY);
	assert_int_equal(cron_value_ms(c), 90000);
	cron_free(c);
	c = parse_ok("every 1h30m");
	assert_int_equal(cron_value_ms(c), 5400000);
	cron_free(c);
	c = parse_ok("every 1d2h3m4s");
	assert_int_equal(cron_value_ms(c), (86400 + 7200 + 180 + 4) * 1000LL);
	cron_free(c);
	c = parse_ok("every 1s");
	assert_int_equal(cron_value_ms(c), CRON_EVERY_MIN_MS);
	cron_free(c);
	c = parse_ok("every 366d");
	assert_int_equal(cron_value_ms(c), CRON_EVERY_MAX_MS);
	cron_free(c);
	c = parse_ok("every 8784h");
	assert_int_equal(cron_value_ms(c), CRON_EVERY_MAX_MS);
	cron_free(c);
	c = parse_ok("at 2027-03-28T02:30:00+01:00");
	assert_int_equal(cron_kind(c), CRON_AT);
	assert_int_equal(cron_value_ms(c), utc_ms(2027, 3, 28, 1, 30, 0));
	cron_free(c);
	c = parse_ok("at 2027-03-28T02:30:00Z");
	assert_int_equal(cron_value_ms(c), utc_ms(2027, 3, 28, 2, 30, 0));
	cron_free(c);
	c = parse_ok("at 2026-12-31T23:30:00-05:30");
	assert_int_equal(cron_value_ms(c), utc_ms(2027, 1, 1, 5, 0, 0));
	cron_free(c);
	/* Fractions are kept to the millisecond, the rest truncated. */
	c = parse_ok("at 2027-01-01t00:00:00.5z");
	assert_int_equal(cron_value_ms(c), utc_ms(2027, 1, 1, 0, 0, 0) + 500);
	cron_free(c);
	c = parse_ok("at 2027-01-01T00:00:00.123999999Z");
	assert_int_equal(cron_value_ms(c), utc_ms(2027, 1, 1, 0, 0, 0) + 123);
	cron_free(c);
	c = parse_ok("at 2028-02-29T00:00:00Z");
	cron_free(c);
	c = parse_ok("@daily");
	assert_int_equal(cron_kind(c), CRON_EXPR);
	assert_int_equal(cron_value_ms(c), 0);
	cron_free(c);
	cron_free(NULL);
}

static void
test_parse_errors(void **state)
{
	(void)state;
	parse_err("0 25 * * *", "column 3: hour 25 out of range 0-23");
	parse_err("60 * * * *", "column 1: minute 60 out of range 0-59");
	parse_err("0 0 0 * *", "column 5: day of month 0 out of range 1-31");
	parse_err("0 0 32 * *", "column 5: day of month 32 out of range 1-31");
	parse_err("0 0 * 13 *", "column 7: month 13 out of range 1-12");
	parse_err("0 0 * * 8", "column 9: day of week 8 out of range 0-7");
	parse_err("99999999999999999999 * * * *",
	    "column 1: minute >99999 out of range 0-59");
	parse_err("* * * * * *", "column 11: more than 5 fields");
	parse_err("0 0 * * * x", "column 11: more than 5 fields");
	parse_err("* * * *", "column 8: 4 fields, 5 expected (minute hour "
			     "day-of-month month day-of-week)");
	parse_err("", "column 1: empty schedule");
	parse_err("   ", "column 4: empty schedule");
	parse_err("*/0 * * * *", "column 3: minute step 0 out of range 1-60");
	parse_err("0 */25 * * *", "column 5: hour step 25 out of range 1-24");
	parse_err("0 */99999999999 * * *",
	    "column 5: hour step >99999 out of range 1-24");
	parse_err("*/ * * * *", "column 3: minute: a step must be a number");
	parse_err("1,,2 * * * *", "column 3: minute: empty list item");
	parse_err("1, * * * *", "column 3: minute: empty list item");
	parse_err(",1 * * * *", "column 1: minute: empty list item");
	parse_err("5-1 * * * *", "column 3: minute range 5-1 is backwards");
	parse_err("5- * * * *", "column 3: minute: a value is missing");
	parse_err("-5 * * * *", "column 1: minute: unexpected '-'");
	parse_err("* * * FOO *", "column 7: month: unexpected 'F'");
	parse_err("* * * JANUARY *", "column 7: month: unexpected 'J'");
	parse_err("* * * * 1x", "column 10: day of week: unexpected 'x'");
	parse_err(
	    "* * * * MON-FRIDAY", "column 13: day of week: unexpected 'F'");
	parse_err("* * MON * *", "column 5: day of month: unexpected 'M'");
	parse_err("** * * * *", "column 2: minute: unexpected '*'");
	parse_err("*/5/2 * * * *", "column 4: minute: unexpected '/'");
	parse_err("@often", "column 1: unknown macro (@yearly, @annually, "
			    "@monthly, @weekly, @daily, @midnight, @hourly)");
	parse_err("@DAILY", "column 1: unknown macro (@yearly, @annually, "
			    "@monthly, @weekly, @daily, @midnight, @hourly)");
	parse_err("@daily x", "column 1: unknown macro (@yearly, @annually, "
			      "@monthly, @weekly, @daily, @midnight, @hourly)");
	parse_err("0 0 * * *\n", "column 10: control character");
	parse_err("0 0 * * \xc3\xa9", "column 9: not a printable ASCII "
				      "character");

	parse_err("every", "column 6: every: a duration is missing "
			   "(\"5m\", \"1h30m\")");
	parse_err("every 0s", "column 7: every: shorter than 1s");
	parse_err("every 367d", "column 7: every: longer than 366d");
	parse_err(
	    "every 99999999999999999999d", "column 7: every: longer than 366d");
	parse_err("every 5", "column 8: every: a unit (d, h, m, s) is missing");
	parse_err("every 5x", "column 8: every: unknown unit 'x' (d, h, m, s)");
	parse_err("every 30m1h", "column 11: every: units must come once each "
				 "in the order d, h, m, s");
	parse_err("every 1m1m", "column 10: every: units must come once each "
				"in the order d, h, m, s");
	parse_err("every 1h 30m", "column 9: every: a number is expected");
	parse_err("every -5m", "column 7: every: a number is expected");
	parse_err("every 5ms", "column 9: every: a number is expected");

	parse_err("at", "column 3: at: year: 4 digits expected");
	parse_err("at 2027-03-28T02:30:00",
	    "column 23: at: 'Z' or an offset (+01:00) expected");
	parse_err("at 2027-02-29T00:00:00Z",
	    "column 12: at: day 29 out of range 1-28");
	parse_err("at 2027-03-28T24:00:00Z",
	    "column 15: at: hour 24 out of range 0-23");
	parse_err("at 2027-03-28T23:59:60Z",
	    "column 21: at: second 60 out of range 0-59");
	parse_err("at 2027-03-28 02:30:00Z", "column 14: at: 'T' expected");
	parse_err(
	    "at 2027-03-28T02:30:00Zjunk", "column 24: at: unexpected 'j'");
	parse_err("at 2027-03-28T02:30:00+1:00",
	    "column 25: at: offset hours: 2 digits expected");
	parse_err("at 2027-03-28T02:30:00+24:00",
	    "column 24: at: offset hours 24 out of range 0-23");
	parse_err("at 2027-03-28T02:30:00.Z",
	    "column 24: at: digits expected after '.'");
	parse_err("at 2027-03-28T02:30:00.1234567890Z",
	    "column 33: at: more than 9 digits of a second");
	parse_err(
	    "at 27-03-28T02:30:00Z", "column 6: at: year: 4 digits expected");
}

static void
test_parse_bounds(void **state)
{
	char spec[CRON_SPEC_MAX + 2], err[16];
	struct cron_sched *c = NULL;
	size_t i;

	(void)state;
	/* CRON_SPEC_MAX bytes parse; one more is refused. */
	memset(spec, ' ', sizeof(spec));
	memcpy(spec, "0 0 * * *", 9);
	spec[CRON_SPEC_MAX] = '\0';
	c = parse_ok(spec);
	cron_free(c);
	spec[CRON_SPEC_MAX] = ' ';
	spec[CRON_SPEC_MAX + 1] = '\0';
	parse_err(spec, "column 257: longer than 256 bytes");
	/* A long list within the limit. */
	for (i = 0; i + 2 < CRON_SPEC_MAX - 8; i += 2)
		memcpy(spec + i, "1,", 2);
	memcpy(spec + i, "1 * * * *", 10);
	c = parse_ok(spec);
	cron_free(c);
	/* A small error buffer is filled and terminated, no overflow. */
	assert_int_equal(
	    cron_parse("0 25 * * *", &c, err, sizeof(err)), -EINVAL);
	assert_int_equal(strlen(err), sizeof(err) - 1);
	assert_int_equal(cron_parse("0 25 * * *", &c, NULL, 0), -EINVAL);
	assert_int_equal(cron_parse(NULL, &c, NULL, 0), -EINVAL);
}

static void
test_utc_basics(void **state)
{
	const int64_t every_minute[] = {
	    utc_ms(2026, 1, 1, 0, 1, 0), utc_ms(2026, 1, 1, 0, 2, 0)};
	const int64_t quarter[] = {utc_ms(2026, 1, 1, 0, 15, 0),
	    utc_ms(2026, 1, 1, 0, 30, 0), utc_ms(2026, 1, 1, 0, 45, 0),
	    utc_ms(2026, 1, 1, 1, 0, 0)};
	const int64_t weekdays[] = {utc_ms(2026, 1, 2, 9, 30, 0),
	    utc_ms(2026, 1, 5, 9, 30, 0), utc_ms(2026, 1, 6, 9, 30, 0)};
	const int64_t list[] = {utc_ms(2026, 1, 1, 7, 5, 0),
	    utc_ms(2026, 1, 1, 7, 10, 0), utc_ms(2026, 1, 1, 7, 20, 0),
	    utc_ms(2026, 1, 1, 7, 30, 0), utc_ms(2026, 1, 1, 19, 5, 0)};
	const int64_t weekend[] = {utc_ms(2026, 1, 3, 0, 0, 0),
	    utc_ms(2026, 1, 4, 0, 0, 0), utc_ms(2026, 1, 10, 0, 0, 0)};
	const int64_t steps_in_range[] = {utc_ms(2026, 1, 1, 0, 10, 0),
	    utc_ms(2026, 1, 1, 0, 17, 0), utc_ms(2026, 1, 1, 0, 24, 0),
	    utc_ms(2026, 1, 1, 1, 10, 0)};
	const int64_t from_value[] = {utc_ms(2026, 1, 1, 0, 50, 0),
	    utc_ms(2026, 1, 1, 0, 55, 0), utc_ms(2026, 1, 1, 1, 50, 0)};

	(void)state;
	/* After midnight exactly: strictly after, so the next minute. */
	expect_fires(
	    NULL, "* * * * *", utc_ms(2026, 1, 1, 0, 0, 0), every_minute, 2);
	expect_fires(
	    NULL, "*/15 * * * *", utc_ms(2026, 1, 1, 0, 0, 0), quarter, 4);
	/* 2026-01-01 is a Thursday. */
	expect_fires(NULL, "30 9 * * mon-FRI", utc_ms(2026, 1, 1, 12, 0, 0),
	    weekdays, 3);
	expect_fires(NULL, "5,10-30/10 7,19 * * *", utc_ms(2026, 1, 1, 0, 0, 0),
	    list, 5);
	/* 7 is Sunday too: 6-7 is Saturday and Sunday. */
	expect_fires(
	    NULL, "0 0 * * 6-7", utc_ms(2026, 1, 1, 0, 0, 0), weekend, 3);
	expect_fires(NULL, "10-25/7 * * * *", utc_ms(2026, 1, 1, 0, 0, 0),
	    steps_in_range, 4);
	/* "a/n" runs from a to the end of the field. */
	expect_fires(
	    NULL, "50/5 * * * *", utc_ms(2026, 1, 1, 0, 49, 0), from_value, 3);
}

static void
test_strictly_after(void **state)
{
	struct cron_sched *c = parse_ok("0 12 * * *");
	int64_t next, fire = utc_ms(2026, 6, 1, 12, 0, 0);

	(void)state;
	assert_int_equal(cron_next(c, NULL, 0, fire - 1, &next), 1);
	assert_int_equal(next, fire);
	assert_int_equal(cron_next(c, NULL, 0, fire, &next), 1);
	assert_int_equal(next, fire + 86400000);
	assert_int_equal(cron_next(c, NULL, 0, fire - 60000 + 1, &next), 1);
	assert_int_equal(next, fire);
	/* Hostile clocks: an answer or none, never a crash. */
	assert_int_equal(cron_next(c, NULL, 0, INT64_MAX, &next), 0);
	assert_int_equal(cron_next(c, NULL, 0, INT64_MIN, &next), 1);
	assert_true(next < 0);
	/* Before 1970. */
	assert_int_equal(
	    cron_next(c, NULL, 0, utc_ms(1969, 12, 31, 13, 0, 0), &next), 1);
	assert_int_equal(next, utc_ms(1970, 1, 1, 12, 0, 0));
	cron_free(c);
}

static void
test_macros(void **state)
{
	const int64_t yearly[] = {
	    utc_ms(2027, 1, 1, 0, 0, 0), utc_ms(2028, 1, 1, 0, 0, 0)};
	const int64_t monthly[] = {
	    utc_ms(2026, 6, 1, 0, 0, 0), utc_ms(2026, 7, 1, 0, 0, 0)};
	/* 2026-05-10 is a Sunday. */
	const int64_t weekly[] = {
	    utc_ms(2026, 5, 10, 0, 0, 0), utc_ms(2026, 5, 17, 0, 0, 0)};
	const int64_t daily[] = {
	    utc_ms(2026, 5, 6, 0, 0, 0), utc_ms(2026, 5, 7, 0, 0, 0)};
	const int64_t hourly[] = {
	    utc_ms(2026, 5, 5, 13, 0, 0), utc_ms(2026, 5, 5, 14, 0, 0)};
	int64_t after = utc_ms(2026, 5, 5, 12, 34, 0);

	(void)state;
	expect_fires(NULL, "@yearly", after, yearly, 2);
	expect_fires(NULL, "@annually", after, yearly, 2);
	expect_fires(NULL, "@monthly", after, monthly, 2);
	expect_fires(NULL, "@weekly", after, weekly, 2);
	expect_fires(NULL, "@daily", after, daily, 2);
	expect_fires(NULL, "@midnight", after, daily, 2);
	expect_fires(NULL, "@hourly", after, hourly, 2);
}

static void
test_month_ends_and_leap_days(void **state)
{
	const int64_t the_31st[] = {utc_ms(2026, 1, 31, 0, 0, 0),
	    utc_ms(2026, 3, 31, 0, 0, 0), utc_ms(2026, 5, 31, 0, 0, 0),
	    utc_ms(2026, 7, 31, 0, 0, 0), utc_ms(2026, 8, 31, 0, 0, 0),
	    utc_ms(2026, 10, 31, 0, 0, 0), utc_ms(2026, 12, 31, 0, 0, 0),
	    utc_ms(2027, 1, 31, 0, 0, 0)};
	const int64_t leap[] = {
	    utc_ms(2028, 2, 29, 0, 0, 0), utc_ms(2032, 2, 29, 0, 0, 0)};
	const int64_t leap_prague[] = {utc_ms(2028, 2, 28, 23, 0, 0)};
	/* 2100 is not a leap year: from 2096 the next is 2104. */
	const int64_t century[] = {utc_ms(2104, 2, 29, 0, 0, 0)};
	struct cron_sched *c;
	int64_t next;

	(void)state;
	expect_fires(
	    NULL, "0 0 31 * *", utc_ms(2026, 1, 1, 0, 0, 0), the_31st, 8);
	expect_fires(NULL, "0 0 29 2 *", utc_ms(2026, 3, 1, 0, 0, 0), leap, 2);
	expect_fires("Europe/Prague", "0 0 29 2 *", utc_ms(2026, 3, 1, 0, 0, 0),
	    leap_prague, 1);
	expect_fires(
	    NULL, "0 0 29 2 *", utc_ms(2096, 3, 1, 0, 0, 0), century, 1);
	/* February 30 never comes: no fire, quickly. */
	c = parse_ok("0 0 30 2 *");
	assert_int_equal(
	    cron_next(c, NULL, 0, utc_ms(2026, 1, 1, 0, 0, 0), &next), 0);
	cron_free(c);
	c = parse_ok("0 0 31 4,6,9,11 *");
	assert_int_equal(
	    cron_next(c, NULL, 0, utc_ms(2026, 1, 1, 0, 0, 0), &next), 0);
	cron_free(c);
}

/* Both restricted: either matches. One restricted: that one decides. */
static void
test_dom_dow(void **state)
{
	/* The 13th or a Friday: 2026-01-02 and 01-09 are Fridays. */
	const int64_t either[] = {utc_ms(2026, 1, 2, 12, 0, 0),
	    utc_ms(2026, 1, 9, 12, 0, 0), utc_ms(2026, 1, 13, 12, 0, 0),
	    utc_ms(2026, 1, 16, 12, 0, 0)};
	const int64_t fridays[] = {utc_ms(2026, 1, 2, 12, 0, 0),
	    utc_ms(2026, 1, 9, 12, 0, 0), utc_ms(2026, 1, 16, 12, 0, 0)};
	const int64_t thirteenth[] = {
	    utc_ms(2026, 1, 13, 12, 0, 0), utc_ms(2026, 2, 13, 12, 0, 0)};
	/* "1-31" restricts: with Monday, every day still matches. */
	const int64_t every_day[] = {
	    utc_ms(2026, 1, 2, 0, 0, 0), utc_ms(2026, 1, 3, 0, 0, 0)};
	/* "*" with a step restricts too: odd days or Sundays. */
	const int64_t odd_or_sunday[] = {utc_ms(2026, 1, 3, 0, 0, 0),
	    utc_ms(2026, 1, 4, 0, 0, 0), utc_ms(2026, 1, 5, 0, 0, 0),
	    utc_ms(2026, 1, 7, 0, 0, 0)};

	(void)state;
	expect_fires(
	    NULL, "0 12 13 * FRI", utc_ms(2026, 1, 1, 0, 0, 0), either, 4);
	expect_fires(
	    NULL, "0 12 * * 5", utc_ms(2026, 1, 1, 0, 0, 0), fridays, 3);
	expect_fires(
	    NULL, "0 12 13 * *", utc_ms(2026, 1, 1, 0, 0, 0), thirteenth, 2);
	expect_fires(
	    NULL, "0 0 1-31 * 1", utc_ms(2026, 1, 1, 0, 0, 0), every_day, 2);
	expect_fires(
	    NULL, "0 0 */2 * 0", utc_ms(2026, 1, 2, 0, 0, 0), odd_or_sunday, 4);
}

/* Europe/Prague, 2026-03-29 and 2027-03-28: 02:00 CET -> 03:00 CEST. */
static void
test_prague_spring(void **state)
{
	const int64_t at_230[] = {utc_ms(2026, 3, 28, 1, 30, 0),
	    utc_ms(2026, 3, 29, 1, 0, 0), /* 03:00 CEST, once */
	    utc_ms(2026, 3, 30, 0, 30, 0)};
	const int64_t quarters[] = {utc_ms(2026, 3, 29, 0, 45, 0),
	    utc_ms(2026, 3, 29, 1, 0, 0), /* 02:00-02:45 and 03:00 */
	    utc_ms(2026, 3, 29, 1, 15, 0)};
	const int64_t hourly[] = {utc_ms(2026, 3, 29, 0, 0, 0),
	    utc_ms(2026, 3, 29, 1, 0, 0), utc_ms(2026, 3, 29, 2, 0, 0)};
	const int64_t at_230_2027[] = {
	    utc_ms(2027, 3, 28, 1, 0, 0), utc_ms(2027, 3, 29, 0, 30, 0)};
	const int64_t at_300[] = {
	    utc_ms(2026, 3, 29, 1, 0, 0), utc_ms(2026, 3, 30, 1, 0, 0)};

	(void)state;
	expect_fires("Europe/Prague", "30 2 * * *",
	    utc_ms(2026, 3, 28, 0, 0, 0), at_230, 3);
	expect_fires("Europe/Prague", "*/15 * * * *",
	    utc_ms(2026, 3, 29, 0, 40, 0), quarters, 3);
	expect_fires("Europe/Prague", "0 * * * *",
	    utc_ms(2026, 3, 28, 23, 30, 0), hourly, 3);
	expect_fires("Europe/Prague", "30 2 * * *",
	    utc_ms(2027, 3, 27, 2, 0, 0), at_230_2027, 2);
	/* A schedule at 03:00 itself fires once, not twice. */
	expect_fires("Europe/Prague", "0 3 * * *", utc_ms(2026, 3, 28, 3, 0, 0),
	    at_300, 2);
}

/* Europe/Prague, 2026-10-25 and 2027-10-31: 03:00 CEST -> 02:00 CET. */
static void
test_prague_autumn(void **state)
{
	const int64_t at_230[] = {utc_ms(2026, 10, 24, 0, 30, 0),
	    utc_ms(2026, 10, 25, 0, 30, 0), /* first 02:30, CEST */
	    utc_ms(2026, 10, 26, 1, 30, 0)};
	/* Each quarter of the repeated hour once, in its first pass. */
	const int64_t quarters[] = {utc_ms(2026, 10, 24, 23, 45, 0),
	    utc_ms(2026, 10, 25, 0, 0, 0), utc_ms(2026, 10, 25, 0, 15, 0),
	    utc_ms(2026, 10, 25, 0, 30, 0), utc_ms(2026, 10, 25, 0, 45, 0),
	    utc_ms(2026, 10, 25, 2, 0, 0), /* 03:00 CET */
	    utc_ms(2026, 10, 25, 2, 15, 0)};
	const int64_t at_230_2027[] = {
	    utc_ms(2027, 10, 31, 0, 30, 0), utc_ms(2027, 11, 1, 1, 30, 0)};
	/* Asked during the second pass: nothing repeats. */
	const int64_t second_pass[] = {utc_ms(2026, 10, 25, 2, 0, 0)};

	(void)state;
	expect_fires("Europe/Prague", "30 2 * * *",
	    utc_ms(2026, 10, 23, 12, 0, 0), at_230, 3);
	expect_fires("Europe/Prague", "*/15 * * * *",
	    utc_ms(2026, 10, 24, 23, 40, 0), quarters, 7);
	expect_fires("Europe/Prague", "30 2 * * *",
	    utc_ms(2027, 10, 30, 12, 0, 0), at_230_2027, 2);
	expect_fires("Europe/Prague", "*/15 * * * *",
	    utc_ms(2026, 10, 25, 1, 10, 0), second_pass, 1);
}

/* America/New_York: 2026-03-08 02:00 EST -> 03:00 EDT; 2026-11-01 02:00
 * EDT -> 01:00 EST; 2027-03-14; 2027-11-07. */
static void
test_new_york(void **state)
{
	const int64_t spring[] = {utc_ms(2026, 3, 7, 7, 30, 0),
	    utc_ms(2026, 3, 8, 7, 0, 0), utc_ms(2026, 3, 9, 6, 30, 0)};
	const int64_t spring_2xx[] = {utc_ms(2026, 3, 8, 6, 50, 0),
	    utc_ms(2026, 3, 8, 7, 0, 0), utc_ms(2026, 3, 8, 7, 10, 0)};
	const int64_t autumn[] = {utc_ms(2026, 10, 31, 5, 30, 0),
	    utc_ms(2026, 11, 1, 5, 30, 0), utc_ms(2026, 11, 2, 6, 30, 0)};
	const int64_t autumn_1xx[] = {utc_ms(2026, 11, 1, 5, 0, 0),
	    utc_ms(2026, 11, 1, 5, 30, 0), utc_ms(2026, 11, 2, 6, 0, 0)};
	/* 02:30 exists once on 2026-11-01 (EST, after the repeat). */
	const int64_t autumn_230[] = {utc_ms(2026, 11, 1, 7, 30, 0)};
	const int64_t spring_2027[] = {
	    utc_ms(2027, 3, 14, 7, 0, 0), utc_ms(2027, 3, 15, 6, 30, 0)};
	const int64_t autumn_2027[] = {
	    utc_ms(2027, 11, 7, 5, 30, 0), utc_ms(2027, 11, 8, 6, 30, 0)};

	(void)state;
	expect_fires("America/New_York", "30 2 * * *",
	    utc_ms(2026, 3, 7, 0, 0, 0), spring, 3);
	expect_fires("America/New_York", "*/10 1-3 * * *",
	    utc_ms(2026, 3, 8, 6, 45, 0), spring_2xx, 3);
	expect_fires("America/New_York", "30 1 * * *",
	    utc_ms(2026, 10, 31, 0, 0, 0), autumn, 3);
	expect_fires("America/New_York", "*/30 1 * * *",
	    utc_ms(2026, 11, 1, 4, 0, 0), autumn_1xx, 3);
	expect_fires("America/New_York", "30 2 * * *",
	    utc_ms(2026, 11, 1, 0, 0, 0), autumn_230, 1);
	expect_fires("America/New_York", "30 2 * * *",
	    utc_ms(2027, 3, 13, 12, 0, 0), spring_2027, 2);
	expect_fires("America/New_York", "30 1 * * *",
	    utc_ms(2027, 11, 6, 12, 0, 0), autumn_2027, 2);
}

static void
test_every(void **state)
{
	struct cron_sched *c = parse_ok("every 1m");
	int64_t next, anchor = utc_ms(2026, 1, 1, 0, 0, 0);
	struct tz_zone *z = zone("Europe/Prague");

	(void)state;
	/* anchor + k * period, k >= 1, the first strictly after after. */
	assert_int_equal(cron_next(c, NULL, anchor, anchor, &next), 1);
	assert_int_equal(next, anchor + 60000);
	assert_int_equal(
	    cron_next(c, NULL, anchor, anchor - 86400000, &next), 1);
	assert_int_equal(next, anchor + 60000);
	assert_int_equal(cron_next(c, NULL, anchor, anchor + 59999, &next), 1);
	assert_int_equal(next, anchor + 60000);
	assert_int_equal(cron_next(c, NULL, anchor, anchor + 60000, &next), 1);
	assert_int_equal(next, anchor + 120000);
	assert_int_equal(
	    cron_next(c, NULL, anchor, anchor + 3600000 + 1, &next), 1);
	assert_int_equal(next, anchor + 3660000);
	/* No time zone, no DST: the zone changes nothing. */
	assert_int_equal(
	    cron_next(c, z, anchor, utc_ms(2026, 3, 29, 0, 59, 30), &next), 1);
	assert_int_equal(next, utc_ms(2026, 3, 29, 1, 0, 0));
	/* Beyond int64: none. */
	assert_int_equal(cron_next(c, NULL, anchor, INT64_MAX - 1, &next), 0);
	assert_int_equal(cron_next(c, NULL, INT64_MAX - 10, 0, &next), 0);
	assert_int_equal(cron_next(c, NULL, INT64_MIN, INT64_MAX, &next), 0);
	assert_int_equal(cron_next(c, NULL, INT64_MAX, INT64_MIN, &next), 0);
	cron_free(c);

	c = parse_ok("every 1h30m");
	assert_int_equal(
	    cron_next(c, NULL, 1000, 1000 + 5400000 * 3LL, &next), 1);
	assert_int_equal(next, 1000 + 5400000 * 4LL);
	cron_free(c);
	tz_free(z);
}

static void
test_at(void **state)
{
	struct cron_sched *c = parse_ok("at 2027-03-28T02:30:00+01:00");
	int64_t next, when = utc_ms(2027, 3, 28, 1, 30, 0);

	(void)state;
	assert_int_equal(cron_next(c, NULL, 0, when - 1, &next), 1);
	assert_int_equal(next, when);
	assert_int_equal(cron_next(c, NULL, 0, 0, &next), 1);
	assert_int_equal(next, when);
	assert_int_equal(cron_next(c, NULL, 0, when, &next), 0);
	assert_int_equal(cron_next(c, NULL, 0, INT64_MAX, &next), 0);
	cron_free(c);
}

/* A tiny deterministic generator (xorshift), so failures reproduce. */
static uint64_t
rnd(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/*
 * Random field text for values lo..hi and the set it means, computed here
 * independently of the parser: "*", "a", "a-b", "*" "/n", "a-b/n".
 */
static int
random_field(uint64_t *x, int lo, int hi, char *text, size_t len, uint64_t *set)
{
	int a = lo + (int)(rnd(x) % (uint64_t)(hi - lo + 1));
	int b = a + (int)(rnd(x) % (uint64_t)(hi - a + 1));
	int n = 1 + (int)(rnd(x) % 7), v, kind = (int)(rnd(x) % 5);

	*set = 0;
	switch (kind) {
	case 0:
		snprintf(text, len, "*");
		a = lo;
		b = hi;
		n = 1;
		break;
	case 1:
		snprintf(text, len, "%d", a);
		b = a;
		n = 1;
		break;
	case 2:
		snprintf(text, len, "%d-%d", a, b);
		n = 1;
		break;
	case 3:
		snprintf(text, len, "*/%d", n);
		a = lo;
		b = hi;
		break;
	default:
		snprintf(text, len, "%d-%d/%d", a, b, n);
		break;
	}
	for (v = a; v <= b; v += n)
		*set |= UINT64_C(1) << v;
	return kind != 0;
}

/* cron_next in UTC against a minute-by-minute scan with gmtime_r. */
static void
test_against_brute_force(void **state)
{
	uint64_t x = 0x9e3779b97f4a7c15ULL, sets[5];
	char f[5][32], spec[200], err[256];
	struct cron_sched *c;
	int64_t after, next, t, want;
	int restricted[5], i, round, match, dom, dow;
	struct tm tm;
	time_t tt;

	(void)state;
	for (round = 0; round < 300; round++) {
		restricted[0] = random_field(&x, 0, 59, f[0], 32, &sets[0]);
		restricted[1] = random_field(&x, 0, 23, f[1], 32, &sets[1]);
		restricted[2] = random_field(&x, 1, 31, f[2], 32, &sets[2]);
		/* Months and weekdays open most of the time: short scans. */
		if (rnd(&x) % 4 == 0)
			restricted[3] =
			    random_field(&x, 1, 12, f[3], 32, &sets[3]);
		else {
			restricted[3] = 0;
			snprintf(f[3], 32, "*");
			sets[3] = 0x1ffe;
		}
		restricted[4] = random_field(&x, 0, 6, f[4], 32, &sets[4]);
		snprintf(spec, sizeof(spec), "%s %s %s %s %s", f[0], f[1], f[2],
		    f[3], f[4]);
		assert_int_equal(cron_parse(spec, &c, err, sizeof(err)), 0);
		after = utc_ms(2026, 1, 1, 0, 0, 0) +
			(int64_t)(rnd(&x) % (86400000ULL * 800));
		want = 0;
		/* Scan up to 62 days of minutes. */
		t = (after / 60000 + 1) * 60000;
		for (i = 0; i < 62 * 1440 && want == 0; i++, t += 60000) {
			tt = (time_t)(t / 1000);
			gmtime_r(&tt, &tm);
			dom = (sets[2] >> tm.tm_mday) & 1;
			dow = (sets[4] >> tm.tm_wday) & 1;
			match = ((sets[0] >> tm.tm_min) & 1) &&
				((sets[1] >> tm.tm_hour) & 1) &&
				((sets[3] >> (tm.tm_mon + 1)) & 1) &&
				(restricted[2] && restricted[4] ? dom || dow
								: dom && dow);
			if (match)
				want = t;
		}
		if (want != 0) {
			assert_int_equal(
			    cron_next(c, NULL, 0, after, &next), 1);
			if (next != want)
				fail_msg("\"%s\" after %lld: got %lld, want "
					 "%lld",
				    spec, (long long)after, (long long)next,
				    (long long)want);
		} else if (cron_next(c, NULL, 0, after, &next) == 1)
			assert_true(next > t - 60000);
		cron_free(c);
	}
}

/* Random bytes and mutated specs: parsed or refused with a column. */
static void
test_hostile_specs(void **state)
{
	static const char alphabet[] = "0123456789*/,- \t@abcdefghijklmnopqrs"
				       "tuvwxyzJANFEBMONSUN:TZ.+";
	static const char *const seeds[] = {"*/5 1-3,7 1,15 JAN-mar Mon-Fri",
	    "every 1h30m", "at 2027-03-28T02:30:00.123+01:00", "@weekly",
	    "0 0 29 2 *"};
	struct tz_zone *z = zone("Europe/Prague");
	struct cron_sched *c;
	uint64_t x = 12345;
	char spec[64], err[256];
	size_t len, i;
	int64_t next, after = utc_ms(2026, 10, 25, 0, 0, 0);
	unsigned long col;
	int round, rc;

	(void)state;
	for (round = 0; round < 20000; round++) {
		if (round % 2 == 0) {
			len = 1 + rnd(&x) % (sizeof(spec) - 2);
			for (i = 0; i < len; i++)
				spec[i] =
				    alphabet[rnd(&x) % (sizeof(alphabet) - 1)];
		} else {
			snprintf(spec, sizeof(spec), "%s",
			    seeds[rnd(&x) % (sizeof(seeds) / sizeof(*seeds))]);
			len = strlen(spec);
			i = rnd(&x) % len;
			spec[i] =
			    (char)(rnd(&x) % 3 == 0
				       ? (char)(rnd(&x) % 256)
				       : alphabet[rnd(&x) %
						  (sizeof(alphabet) - 1)]);
			if (spec[i] == '\0')
				spec[i] = '\1';
		}
		spec[len] = '\0';
		c = NULL;
		rc = cron_parse(spec, &c, err, sizeof(err));
		if (rc == 0) {
			assert_non_null(c);
			if (cron_next(c, z, after, after, &next) == 1)
				assert_true(next > after);
			cron_free(c);
			continue;
		}
		assert_int_equal(rc, -EINVAL);
		assert_null(c);
		assert_int_equal(sscanf(err, "column %lu: ", &col), 1);
		assert_true(col >= 1 && col <= len + 1);
	}
	tz_free(z);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_kinds),
	    cmocka_unit_test(test_parse_errors),
	    cmocka_unit_test(test_parse_bounds),
	    cmocka_unit_test(test_utc_basics),
	    cmocka_unit_test(test_strictly_after),
	    cmocka_unit_test(test_macros),
	    cmocka_unit_test(test_month_ends_and_leap_days),
	    cmocka_unit_test(test_dom_dow),
	    cmocka_unit_test(test_prague_spring),
	    cmocka_unit_test(test_prague_autumn),
	    cmocka_unit_test(test_new_york),
	    cmocka_unit_test(test_every),
	    cmocka_unit_test(test_at),
	    cmocka_unit_test(test_against_brute_force),
	    cmocka_unit_test(test_hostile_specs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
