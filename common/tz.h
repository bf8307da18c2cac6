/*
 * tz.h: time zones from tzdata (TZif files, RFC 8536) for palyra-journald's
 * cron scheduler and anything else that must map local civil time to
 * instants: every transition the file holds, then its footer POSIX TZ
 * rule (e.g. "CET-1CEST,M3.5.0,M10.5.0/3") for the instants after the last
 * one. Pure: no TZ environment variable, no locale, no global state.
 * Every bound is checked before anything is allocated; a malformed file is
 * refused, never half-read.
 */
#ifndef PALYRA_TZ_H
#define PALYRA_TZ_H

#include <stddef.h>
#include <stdint.h>

#define TZ_NAME_MAX	64	/* "America/Argentina/ComodRivadavia" fits */
#define TZ_FILE_MAX	(256 * 1024)

struct tz_zone;

/*
 * Whether name is a zone name we accept: 1 to TZ_NAME_MAX bytes of
 * [A-Za-z0-9/_+-], no leading '/', no "." or ".." component.
 */
int	tz_name_valid(const char *name);
/*
 * Loads zone name from dir (normally "/usr/share/zoneinfo"); "" and "UTC"
 * give UTC without reading anything. Returns 0 with *out, -EINVAL (not a
 * valid name), -ENOENT (no such zone), -EBADMSG (not a TZif file we can
 * read), -ENOMEM. A symbolic link (tzdata aliases, "US/Eastern") is
 * followed only when its target is relative, stays inside dir and is a
 * valid name; files with leap second records ("right/") are -EBADMSG.
 */
int	tz_load(const char *dir, const char *name, struct tz_zone **out);
/* Parses a TZif image held in memory (tests, fuzzing). Same returns. */
int	tz_parse(const uint8_t *buf, size_t len, struct tz_zone **out);
/* A zone with a fixed offset (seconds east of UTC), never fails. */
struct tz_zone *tz_fixed(int32_t offset);
void	tz_free(struct tz_zone *);

/* The offset east of UTC in seconds in effect at instant t (unix
 * seconds); *isdst (may be NULL) whether it is daylight time. */
int32_t	tz_offset(const struct tz_zone *, int64_t t, int *isdst);
/*
 * The instants (unix seconds) whose local civil time is local (seconds
 * since 1970-01-01T00:00 counted in local time): returns 0 when local falls
 * in a gap (skipped by a forward change), 1, or 2 when it is repeated (a
 * backward change), earliest first in out. For a gap, *gap_end (may be
 * NULL) is the instant the gap ends: the first valid local time after it.
 */
int	tz_local_to_utc(const struct tz_zone *, int64_t local, int64_t out[2],
	    int64_t *gap_end);

#endif
