/*
 * fuzz_cron.c: libFuzzer target for cron schedules (common/cron.c):
 * cron_parse() of any text, then cron_next() of what it accepts, in UTC
 * and in Europe/Prague (DST both ways), from instants that include the
 * far future where the int64 range ends.
 *
 * A refused schedule must say where ("column N: ..."); an accepted one
 * must only ever move forward: each fire strictly after the instant it
 * was asked from, and the next one after that.
 * Runs in the fuzzer only; reads /usr/share/zoneinfo/Europe/Prague once.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cron.h"
#include "tz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct tz_zone	*prague;

static const int64_t afters[] = {
	0, 1700000000000LL, 1711846799999LL, 1729990799999LL,
	4102444800000LL, 253402300799000LL, INT64_MAX / 2, INT64_MAX - 1000,
};

static void
walk(const struct cron_sched *s, const struct tz_zone *z, int64_t anchor,
    int64_t after)
{
	int64_t	 next;
	int	 i;

	for (i = 0; i < 4; i++) {
		if (cron_next(s, z, anchor, after, &next) != 1)
			return;
		if (next <= after)
			abort();
		after = next;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cron_sched	*s = NULL;
	char			 spec[CRON_SPEC_MAX + 64], err[256];
	size_t			 i;
	int			 rc;

	if (prague == NULL && tz_load("/usr/share/zoneinfo", "Europe/Prague",
	    &prague) != 0)
		prague = tz_fixed(3600);
	if (size >= sizeof(spec))
		size = sizeof(spec) - 1;
	memcpy(spec, data, size);
	spec[size] = '\0';
	err[0] = '\0';
	if ((rc = cron_parse(spec, &s, err, sizeof(err))) != 0) {
		if (s != NULL || (rc == -EINVAL && strncmp(err, "column ",
		    7) != 0 && strlen(spec) <= CRON_SPEC_MAX))
			abort();
		return 0;
	}
	if (cron_kind(s) < CRON_EXPR || cron_kind(s) > CRON_AT)
		abort();
	for (i = 0; i < sizeof(afters) / sizeof(afters[0]); i++) {
		walk(s, NULL, 0, afters[i]);
		walk(s, prague, 0, afters[i]);
		/* An every counted from the instant it was created. */
		walk(s, prague, afters[i], afters[i]);
	}
	cron_free(s);
	return 0;
}
