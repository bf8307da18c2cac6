/*
 * fuzz_tz.c: libFuzzer target for the TZif reader (common/tz.c): the
 * files of /usr/share/zoneinfo that journald reads for a tenant's cron
 * jobs, and their footer POSIX TZ rules.
 *
 * The input is a TZif image. tz_parse() must refuse a malformed one
 * without reading past it; an accepted zone is queried around every
 * interesting instant (the epoch, now, far past and future, the edges of
 * 32-bit time), both ways: an instant to its offset, and a local time to
 * its instants, which must map back to that local time.
 * Runs in the fuzzer only; touches nothing but memory.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "tz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const int64_t instants[] = {
	0, 1, -1, 1700000000, 1711846800, 1729990800, 2147483647,
	2147483648LL, -2147483648LL, -2147483649LL, 4102444800LL,
	253402300799LL, -62135596800LL, 1000000000000LL, -1000000000000LL,
};

static void
query(const struct tz_zone *z, int64_t t)
{
	int64_t	 out[2], gap_end, local;
	int32_t	 off;
	int	 isdst, n, i;

	off = tz_offset(z, t, &isdst);
	/* tz.c refuses offsets beyond 26 hours, in the file and in its
	 * footer rule. */
	if (off < -26 * 3600 || off > 26 * 3600 || (isdst != 0 &&
	    isdst != 1))
		abort();
	local = t + off;
	n = tz_local_to_utc(z, local, out, &gap_end);
	/* t itself has that local time: it cannot be a gap. */
	if (n < 1 || n > 2)
		abort();
	for (i = 0; i < n; i++)
		if (out[i] + tz_offset(z, out[i], NULL) != local)
			abort();
	if (n == 2 && out[0] > out[1])
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tz_zone	*z = NULL;
	size_t		 i;
	int		 rc;

	rc = tz_parse(data, size, &z);
	if (rc != 0) {
		if (z != NULL || (rc != -EBADMSG && rc != -ENOMEM &&
		    rc != -EINVAL))
			abort();
		return 0;
	}
	for (i = 0; i < sizeof(instants) / sizeof(instants[0]); i++)
		query(z, instants[i]);
	tz_free(z);
	return 0;
}
