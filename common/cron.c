/*
 * cron.c: cron schedules (cron.h): the parser and the next fire time.
 * Runs in palyra-journald (its cron scheduler) and in the tools that check
 * a schedule before sending it; pure computation, touches nothing.
 *
 * Details the header leaves open, decided here:
 *   - A field counts as restricted unless it is a bare '*': "*" with a
 *     step ("*" "/2") or "1-31" restrict it, so "0 0 1-31 * 1" fires every
 *     day by the OR rule, while "0 0 * * 1" fires on Mondays only.
 *   - "a/n" alone means a-MAX/n; ranges must ascend ("5-1" is refused);
 *     steps run from 1 to the field's span; DOW 7 is Sunday in ranges too.
 *   - Names (JAN-DEC, SUN-SAT) are three letters, in any case; macros and
 *     the words "every" and "at" are lower case; fields are separated by
 *     spaces or tabs; leading and trailing blanks are ignored; any other
 *     control character or non-ASCII byte is refused.
 *   - "every": whole-number parts with units d, h, m, s, each at most once
 *     and in that order ("1d12h", "1h30m", "90s"); 1s to 366d in total.
 *     It fires at anchor + k * period for k >= 1: the first such instant
 *     strictly after after_ms, never the anchor itself.
 *   - "at": YYYY-MM-DDTHH:MM:SS, an optional fraction of up to 9 digits
 *     kept to the millisecond (the rest truncated), then "Z" or +HH:MM /
 *     -HH:MM; 't' and 'z' are accepted too; second 60 is refused; years
 *     0001 to 9999.
 *
 * cron_next() walks local civil time forward from the minute after_ms
 * shows: a month that does not match is skipped whole, then a day, then an
 * hour, then the minutes to the next matching one; each candidate is
 * mapped through tz_local_to_utc(). A gap maps to its end and a repeat to
 * its first instant, so the mapping never goes backwards and the first
 * candidate that lands after after_ms is the answer.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cron.h"

#define FIELD_MIN 0
#define FIELD_HOUR 1
#define FIELD_DOM 2
#define FIELD_MON 3
#define FIELD_DOW 4
#define NFIELDS 5

struct cron_sched {
	enum cron_kind kind;
	uint64_t bits[NFIELDS]; /* bit v set: value v matches */
	int restricted[NFIELDS];
	int64_t value_ms; /* every: period; at: instant */
};

struct field_def {
	const char *what;
	int min, max;
	const char *const *names;
};

static const char *const month_names[] = {"jan", "feb", "mar", "apr", "may",
    "jun", "jul", "aug", "sep", "oct", "nov", "dec", NULL};
static const char *const day_names[] = {
    "sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL};

static const struct field_def fields[NFIELDS] = {
    {"minute", 0, 59, NULL},
    {"hour", 0, 23, NULL},
    {"day of month", 1, 31, NULL},
    {"month", 1, 12, month_names},
    {"day of week", 0, 7, day_names},
};

static const struct {
	const char *name;
	const char *expr;
} macros[] = {
    {"@yearly", "0 0 1 1 *"},
    {"@annually", "0 0 1 1 *"},
    {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"},
    {"@daily", "0 0 * * *"},
    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

struct parser {
	const char *spec;
	char *err;
	size_t errlen;
};

static int
fail(struct parser *p, const char *at, const char *fmt, ...)
{
	char msg[192];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (p->err != NULL && p->errlen > 0)
		snprintf(p->err, p->errlen, "column %zu: %s",
		    (size_t)(at - p->spec) + 1, msg);
	return -EINVAL;
}

static int
is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static int
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int
lower(char c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/*
 * A number or a name of field f at *sp, ending at end. Digits beyond what
 * any field allows are read but capped, so "99999999999" is reported as
 * out of range, never overflows.
 */
static int
parse_value(struct parser *p, const char **sp, const char *end, int f, int *out)
{
	const struct field_def *fd = &fields[f];
	const char *s = *sp;
	long v = 0;
	int i;

	if (s < end && is_digit(*s)) {
		while (s < end && is_digit(*s)) {
			if (v < 100000)
				v = v * 10 + (*s - '0');
			s++;
		}
		if (v < fd->min || v > fd->max)
			return fail(p, *sp, "%s %s%ld out of range %d-%d",
			    fd->what, v >= 100000 ? ">" : "",
			    v >= 100000 ? 99999L : v, fd->min, fd->max);
		*sp = s;
		*out = (int)v;
		return 0;
	}
	if (fd->names != NULL && end - s >= 3) {
		for (i = 0; fd->names[i] != NULL; i++) {
			if (lower(s[0]) == fd->names[i][0] &&
			    lower(s[1]) == fd->names[i][1] &&
			    lower(s[2]) == fd->names[i][2] &&
			    (end - s == 3 ||
				!((s[3] >= 'a' && s[3] <= 'z') ||
				    (s[3] >= 'A' && s[3] <= 'Z')))) {
				*sp = s + 3;
				*out = i + fd->min;
				return 0;
			}
		}
	}
	if (s >= end)
		return fail(p, s, "%s: a value is missing", fd->what);
	return fail(p, s, "%s: unexpected '%c'", fd->what, *s);
}

/* One comma-separated item of field f: "*", "a", "a-b", with "/n". */
static int
parse_item(
    struct parser *p, const char *s, const char *end, int f, uint64_t *bits)
{
	const struct field_def *fd = &fields[f];
	const char *at;
	int lo, hi, step = 1, v, rc, span_max;

	if (s >= end)
		return fail(p, s, "%s: empty list item", fd->what);
	if (*s == '*') {
		lo = fd->min;
		hi = f == FIELD_DOW ? 6 : fd->max;
		s++;
	} else {
		if ((rc = parse_value(p, &s, end, f, &lo)) != 0)
			return rc;
		hi = lo;
		if (s < end && *s == '-') {
			at = ++s;
			if ((rc = parse_value(p, &s, end, f, &hi)) != 0)
				return rc;
			if (hi < lo)
				return fail(p, at,
				    "%s range %d-%d is "
				    "backwards",
				    fd->what, lo, hi);
		} else if (s < end && *s == '/')
			hi = f == FIELD_DOW ? 6 : fd->max;
	}
	if (s < end && *s == '/') {
		at = ++s;
		span_max = fd->max - fd->min + (f == FIELD_DOW ? 0 : 1);
		if (s >= end || !is_digit(*s))
			return fail(
			    p, at, "%s: a step must be a number", fd->what);
		v = 0;
		while (s < end && is_digit(*s)) {
			if (v < 100000)
				v = v * 10 + (*s - '0');
			s++;
		}
		if (v < 1 || v > span_max)
			return fail(p, at, "%s step %s%d out of range 1-%d",
			    fd->what, v >= 100000 ? ">" : "",
			    v >= 100000 ? 99999 : v, span_max);
		step = v;
	}
	if (s < end)
		return fail(p, s, "%s: unexpected '%c'", fd->what, *s);
	for (v = lo; v <= hi; v += step)
		*bits |= UINT64_C(1) << (f == FIELD_DOW && v == 7 ? 0 : v);
	return 0;
}

static int
parse_field(struct parser *p, const char *s, const char *end, int f,
    struct cron_sched *c)
{
	const char *comma;
	int rc;

	c->restricted[f] = !(end - s == 1 && *s == '*');
	for (;;) {
		comma = memchr(s, ',', (size_t)(end - s));
		if ((rc = parse_item(p, s, comma != NULL ? comma : end, f,
			 &c->bits[f])) != 0)
			return rc;
		if (comma == NULL)
			return 0;
		s = comma + 1;
	}
}

/* Five fields from s to end (blanks trimmed). */
static int
parse_expr(
    struct parser *p, const char *s, const char *end, struct cron_sched *c)
{
	const char *fe;
	int f, rc;

	c->kind = CRON_EXPR;
	for (f = 0; f < NFIELDS; f++) {
		while (s < end && is_blank(*s))
			s++;
		if (s >= end)
			return fail(p, s,
			    "%d fields, 5 expected (minute hour "
			    "day-of-month month day-of-week)",
			    f);
		for (fe = s; fe < end && !is_blank(*fe); fe++)
			;
		if ((rc = parse_field(p, s, fe, f, c)) != 0)
			return rc;
		s = fe;
	}
	while (s < end && is_blank(*s))
		s++;
	if (s < end)
		return fail(p, s, "more than 5 fields");
	return 0;
}

/* "every 1h30m": parts d h m s, each once, in that order. */
static int
parse_every(
    struct parser *p, const char *s, const char *end, struct cron_sched *c)
{
	static const char units[] = "dhms";
	static const int64_t unit_ms[] = {86400000, 3600000, 60000, 1000};
	const char *start = s, *num, *u;
	int64_t total = 0, v;
	int next_unit = 0;

	c->kind = CRON_EVERY;
	if (s >= end)
		return fail(p, s,
		    "every: a duration is missing (\"5m\", "
		    "\"1h30m\")");
	while (s < end) {
		num = s;
		v = 0;
		if (!is_digit(*s))
			return fail(p, s, "every: a number is expected");
		while (s < end && is_digit(*s)) {
			if (v < 1000000000)
				v = v * 10 + (*s - '0');
			s++;
		}
		if (s >= end)
			return fail(p, s,
			    "every: a unit (d, h, m, s) is "
			    "missing");
		if ((u = memchr(units, lower(*s), 4)) == NULL)
			return fail(p, s,
			    "every: unknown unit '%c' (d, h, m, "
			    "s)",
			    *s);
		if (u - units < next_unit)
			return fail(p, s,
			    "every: units must come once each "
			    "in the order d, h, m, s");
		next_unit = (int)(u - units) + 1;
		total += v * unit_ms[u - units];
		if (total > CRON_EVERY_MAX_MS)
			return fail(p, num, "every: longer than 366d");
		s++;
	}
	if (total < CRON_EVERY_MIN_MS)
		return fail(p, start, "every: shorter than 1s");
	c->value_ms = total;
	return 0;
}

/* Exactly n digits at *sp, within min..max. */
static int
at_number(struct parser *p, const char **sp, const char *end, int n, int min,
    int max, const char *what, int *out)
{
	const char *s = *sp;
	int v = 0, i;

	for (i = 0; i < n; i++) {
		if (s + i >= end || !is_digit(s[i]))
			return fail(p, s + i < end ? s + i : end,
			    "at: %s: %d digits expected", what, n);
		v = v * 10 + (s[i] - '0');
	}
	if (v < min || v > max)
		return fail(
		    p, s, "at: %s %d out of range %d-%d", what, v, min, max);
	*sp = s + n;
	*out = v;
	return 0;
}

static int
at_sep(struct parser *p, const char **sp, const char *end, const char *set,
    const char *what)
{
	if (*sp >= end || strchr(set, **sp) == NULL || **sp == '\0')
		return fail(p, *sp, "at: '%s' expected", what);
	(*sp)++;
	return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void
civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	int64_t era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

static int
is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int
month_days(int64_t y, int m)
{
	static const int days[12] = {
	    31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

static int
parse_at(struct parser *p, const char *s, const char *end, struct cron_sched *c)
{
	int y = 0, mo = 1, d = 1, h = 0, mi = 0, sec = 0, oh = 0, om = 0;
	int sign = 0, ms = 0, digits;
	int64_t secs;

	c->kind = CRON_AT;
	if (at_number(p, &s, end, 4, 1, 9999, "year", &y) != 0 ||
	    at_sep(p, &s, end, "-", "-") != 0 ||
	    at_number(p, &s, end, 2, 1, 12, "month", &mo) != 0 ||
	    at_sep(p, &s, end, "-", "-") != 0)
		return -EINVAL;
	if (at_number(p, &s, end, 2, 1, month_days(y, mo), "day", &d) != 0 ||
	    at_sep(p, &s, end, "Tt", "T") != 0 ||
	    at_number(p, &s, end, 2, 0, 23, "hour", &h) != 0 ||
	    at_sep(p, &s, end, ":", ":") != 0 ||
	    at_number(p, &s, end, 2, 0, 59, "minute", &mi) != 0 ||
	    at_sep(p, &s, end, ":", ":") != 0 ||
	    at_number(p, &s, end, 2, 0, 59, "second", &sec) != 0)
		return -EINVAL;
	if (s < end && *s == '.') {
		s++;
		for (digits = 0; s < end && is_digit(*s); digits++, s++) {
			if (digits >= 9)
				return fail(p, s,
				    "at: more than 9 digits "
				    "of a second");
			if (digits < 3)
				ms = ms * 10 + (*s - '0');
		}
		if (digits == 0)
			return fail(p, s, "at: digits expected after '.'");
		for (; digits < 3; digits++)
			ms *= 10;
	}
	if (s < end && (*s == 'Z' || *s == 'z'))
		s++;
	else if (s < end && (*s == '+' || *s == '-')) {
		sign = *s++ == '-' ? -1 : 1;
		if (at_number(p, &s, end, 2, 0, 23, "offset hours", &oh) != 0 ||
		    at_sep(p, &s, end, ":", ":") != 0 ||
		    at_number(p, &s, end, 2, 0, 59, "offset minutes", &om) != 0)
			return -EINVAL;
	} else
		return fail(p, s, "at: 'Z' or an offset (+01:00) expected");
	if (s < end)
		return fail(p, s, "at: unexpected '%c'", *s);
	secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec -
	       sign * (oh * 3600 + om * 60);
	c->value_ms = secs * 1000 + ms;
	return 0;
}

int
cron_parse(const char *spec, struct cron_sched **out, char *err, size_t errlen)
{
	struct parser p = {spec, err, errlen};
	struct cron_sched *c;
	const char *s, *end, *word, *rest;
	size_t len, i, n;
	int rc;

	*out = NULL;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (spec == NULL) {
		p.spec = "";
		return fail(&p, p.spec, "empty schedule");
	}
	len = strnlen(spec, CRON_SPEC_MAX + 1);
	if (len > CRON_SPEC_MAX)
		return fail(&p, spec + CRON_SPEC_MAX, "longer than %d bytes",
		    CRON_SPEC_MAX);
	for (i = 0; i < len; i++) {
		if ((unsigned char)spec[i] < 0x20 && spec[i] != '\t')
			return fail(&p, spec + i, "control character");
		if ((unsigned char)spec[i] >= 0x7f)
			return fail(&p, spec + i,
			    "not a printable ASCII "
			    "character");
	}
	s = spec;
	end = spec + len;
	while (s < end && is_blank(*s))
		s++;
	while (end > s && is_blank(end[-1]))
		end--;
	if (s == end)
		return fail(&p, s, "empty schedule");
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return -ENOMEM;
	for (word = s; word < end && !is_blank(*word); word++)
		;
	rest = word;
	while (rest < end && is_blank(*rest))
		rest++;
	if (*s == '@') {
		rc = 1;
		for (i = 0; i < sizeof(macros) / sizeof(macros[0]); i++) {
			n = strlen(macros[i].name);
			if ((size_t)(end - s) == n &&
			    memcmp(s, macros[i].name, n) == 0) {
				p.spec = macros[i].expr;
				rc = parse_expr(
				    &p, p.spec, p.spec + strlen(p.spec), c);
				break;
			}
		}
		if (rc == 1)
			rc = fail(&p, s,
			    "unknown macro (@yearly, @annually, "
			    "@monthly, @weekly, @daily, @midnight, @hourly)");
	} else if (word - s == 5 && memcmp(s, "every", 5) == 0)
		rc = parse_every(&p, rest, end, c);
	else if (word - s == 2 && memcmp(s, "at", 2) == 0)
		rc = parse_at(&p, rest, end, c);
	else
		rc = parse_expr(&p, s, end, c);
	if (rc != 0) {
		free(c);
		return rc;
	}
	*out = c;
	return 0;
}

void
cron_free(struct cron_sched *c)
{
	free(c);
}

enum cron_kind
cron_kind(const struct cron_sched *c)
{
	return c->kind;
}

int64_t
cron_value_ms(const struct cron_sched *c)
{
	return c->kind == CRON_EXPR ? 0 : c->value_ms;
}

static int
day_matches(const struct cron_sched *c, int64_t days, int mday)
{
	int wday = (int)(((days % 7) + 7 + 4) % 7); /* 1970-01-01: Thu */
	int dom = (c->bits[FIELD_DOM] >> mday) & 1;
	int dow = (c->bits[FIELD_DOW] >> wday) & 1;

	if (c->restricted[FIELD_DOM] && c->restricted[FIELD_DOW])
		return dom || dow;
	return dom && dow;
}

/* The first set bit at or after v, or -1. */
static int
next_bit(uint64_t bits, int v, int max)
{
	for (; v <= max; v++)
		if ((bits >> v) & 1)
			return v;
	return -1;
}

/* Maps a matching local minute to its fire instant (seconds). */
static int64_t
fire_instant(const struct tz_zone *z, int64_t local)
{
	int64_t out[2], gap_end = local;

	if (tz_local_to_utc(z, local, out, &gap_end) == 0)
		return gap_end;
	return out[0];
}

/* The first fire of a five-field expression strictly after after_ms. */
static int
expr_next(const struct cron_sched *c, const struct tz_zone *z, int64_t after_ms,
    int64_t *next_ms)
{
	int64_t after_s, local, days, year, last_year, t;
	int mon, mday, hour, minute, v;

	after_s = after_ms / 1000 - (after_ms % 1000 < 0);
	/*
	 * Local civil time only ever maps forward (gaps to their end,
	 * repeats to their first instant), so no local minute before the
	 * one after_s shows can fire after it.
	 */
	local = after_s + tz_offset(z, after_s, NULL);
	days = local / 86400 - (local % 86400 < 0);
	civil_from_days(days, &year, &mon, &mday);
	t = local - days * 86400;
	hour = (int)(t / 3600);
	minute = (int)(t % 3600 / 60);
	last_year = year + CRON_HORIZON_YEARS;
	while (year <= last_year) {
		if (!((c->bits[FIELD_MON] >> mon) & 1)) {
			mday = 1;
			hour = minute = 0;
			if (++mon > 12) {
				mon = 1;
				year++;
			}
			days = days_from_civil(year, mon, 1);
			continue;
		}
		if (!day_matches(c, days, mday))
			goto next_day;
		while (hour < 24) {
			if ((v = next_bit(c->bits[FIELD_HOUR], hour, 23)) < 0)
				break;
			if (v != hour) {
				hour = v;
				minute = 0;
			}
			while ((v = next_bit(c->bits[FIELD_MIN], minute, 59)) >=
			       0) {
				t = fire_instant(
				    z, days * 86400 + hour * 3600 + v * 60);
				if (t > INT64_MAX / 1000 - 1)
					return 0;
				if (t > INT64_MIN / 1000 &&
				    t * 1000 > after_ms) {
					*next_ms = t * 1000;
					return 1;
				}
				minute = v + 1;
			}
			hour++;
			minute = 0;
		}
	next_day:
		hour = minute = 0;
		days++;
		if (++mday > month_days(year, mon)) {
			mday = 1;
			if (++mon > 12) {
				mon = 1;
				year++;
			}
		}
	}
	return 0;
}

int
cron_next(const struct cron_sched *c, const struct tz_zone *z,
    int64_t anchor_ms, int64_t after_ms, int64_t *next_ms)
{
	struct tz_zone *utc = NULL;
	int64_t diff, k, step, when;
	int rc;

	switch (c->kind) {
	case CRON_AT:
		if (c->value_ms <= after_ms)
			return 0;
		*next_ms = c->value_ms;
		return 1;
	case CRON_EVERY:
		/* anchor + k * period, k >= 1, the first after after_ms. */
		k = 1;
		if (!__builtin_sub_overflow(after_ms, anchor_ms, &diff)) {
			if (diff >= c->value_ms)
				k = diff / c->value_ms + 1;
		} else if (after_ms > anchor_ms)
			return 0;
		if (__builtin_mul_overflow(k, c->value_ms, &step) ||
		    __builtin_add_overflow(anchor_ms, step, &when))
			return 0;
		*next_ms = when;
		return 1;
	default:
		break;
	}
	if (z == NULL)
		z = utc = tz_fixed(0);
	rc = expr_next(c, z, after_ms, next_ms);
	tz_free(utc);
	return rc;
}
