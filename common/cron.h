/*
 * cron.h: cron schedules (DESIGN section 9): parsing and the next fire
 * time. Pure: the caller gives the zone (tz.h) and the clock.
 *
 * Schedules:
 *   "MIN HOUR DOM MON DOW"  five fields: '*', numbers, ranges a-b, lists
 *                           a,b, steps "*" "/n", a-b/n and a/n (a to
 *                           the field's end); MON takes JAN-DEC, DOW
 *                           SUN-SAT (0 and 7 are Sunday), case
 *                           insensitive. When both DOM and DOW are
 *                           restricted (anything but a bare '*') a day
 *                           matches either (Vixie cron).
 *   "@yearly" "@annually" "@monthly" "@weekly" "@daily" "@midnight"
 *   "@hourly"               the usual five-field equivalents.
 *   "every DURATION"        a fixed period, 1s to 366d ("90s", "5m",
 *                           "1h30m": units d h m s, each at most once, in
 *                           that order), counted from an anchor instant
 *                           in UTC: no time zone, no DST.
 *   "at RFC3339"            one instant, "2027-03-28T02:30:00+01:00" or
 *                           "...Z"; fires once. A fraction of a second
 *                           (up to 9 digits) is truncated to the ms.
 *
 * Expressions match local civil minutes of the zone. Across DST changes:
 * a local time that a forward change skips fires once, at the first valid
 * minute after the gap (several skipped matches fire once together); a
 * local time that a backward change repeats fires once, at its first
 * occurrence.
 */
#ifndef PALYRA_CRON_H
#define PALYRA_CRON_H

#include <stddef.h>
#include <stdint.h>

#include "tz.h"

#define CRON_SPEC_MAX		256
#define CRON_EVERY_MIN_MS	1000LL
#define CRON_EVERY_MAX_MS	(366LL * 86400 * 1000)
/* cron_next() looks this far ahead for an expression before it says
 * there is none (e.g. "0 0 30 2 *"): past any leap-year cycle. */
#define CRON_HORIZON_YEARS	8

enum cron_kind {
	CRON_EXPR = 1,
	CRON_EVERY,
	CRON_AT,
};

struct cron_sched;

/*
 * Parses spec (at most CRON_SPEC_MAX bytes). Returns 0 with *out, or
 * -EINVAL with a message in err that names the 1-based column of the
 * problem ("column 7: hour 25 out of range 0-23"), or -ENOMEM.
 */
int		 cron_parse(const char *spec, struct cron_sched **out,
		    char *err, size_t errlen);
void		 cron_free(struct cron_sched *);
enum cron_kind	 cron_kind(const struct cron_sched *);
/* CRON_EVERY: the period in ms; CRON_AT: the instant in unix ms. */
int64_t		 cron_value_ms(const struct cron_sched *);

/*
 * The first fire instant strictly after after_ms (unix ms) in zone (NULL:
 * UTC). CRON_EVERY fires at anchor_ms + k * period for k >= 1 (never at
 * the anchor itself); CRON_AT at its instant. Returns 1 with *next_ms, 0
 * when there is none (an `at` not after after_ms; an expression with no
 * match within CRON_HORIZON_YEARS; a fire past the range of int64 ms).
 */
int		 cron_next(const struct cron_sched *, const struct tz_zone *,
		    int64_t anchor_ms, int64_t after_ms, int64_t *next_ms);

#endif
