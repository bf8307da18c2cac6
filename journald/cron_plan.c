/*
 * cron_plan.c: which scheduled times of a due cron job fire, which are
 * recorded skipped, and when the job is due next (cron_int.h). Pure: the
 * schedule calculator (common/cron.h), the zone and the clock come from
 * the caller; nothing is read or written. Runs in palyra-journald and in
 * tests/unit/test_cron_plan.c.
 *
 * A scheduled time t is due once t <= now. A due time within the grace
 * (t >= now - grace) is merely late (the timer fired a little after it, a
 * busy loop) and fires. An older one was missed: journald was down, or
 * the job's last fire is older than its previous scheduled time; the
 * job's misfire policy decides: SKIP records one skipped fire for the
 * latest missed time, ONCE fires the latest missed time, CATCH_UP fires
 * the latest catch_up_max missed times, oldest first. Older missed times
 * are not recorded at all: the job's last handled time says they are
 * past.
 */
#include <string.h>

#include "cron_int.h"

/* Later jumps move closer to now by this factor. */
#define JUMP_SHRINK 16

size_t
jnl_cron_plan(const struct cron_sched *s, const struct tz_zone *z,
    int64_t anchor_ms, int64_t next_ms, int64_t now_ms, int64_t grace_ms,
    enum jnl_cron_misfire policy, unsigned catch_up_max,
    struct jnl_cron_item *out, int64_t *handled, int64_t *next)
{
	int64_t ring[JNL_CRON_CATCH_UP_MAX], late[JNL_CRON_LATE_MAX];
	int64_t t = next_ms, cursor, window = JNL_CRON_JUMP_MS;
	int64_t missed_before = now_ms - grace_ms;
	size_t keep, head = 0, nring = 0, nlate = 0, steps = 0, n = 0, i;
	uint64_t nmissed = 0;

	*handled = 0;
	*next = next_ms;
	if (next_ms <= 0 || next_ms > now_ms)
		return 0;
	keep = 1;
	if (policy == JNL_MISFIRE_CATCH_UP) {
		keep = catch_up_max;
		if (keep < 1)
			keep = 1;
		if (keep > JNL_CRON_CATCH_UP_MAX)
			keep = JNL_CRON_CATCH_UP_MAX;
	}
	while (t > 0 && t <= now_ms) {
		*handled = t;
		if (t >= missed_before) {
			if (nlate < JNL_CRON_LATE_MAX)
				late[nlate++] = t;
		} else {
			/* The latest `keep` missed times, in a ring. */
			nmissed++;
			if (nring < keep)
				ring[(head + nring++) % keep] = t;
			else {
				ring[head] = t;
				head = (head + 1) % keep;
			}
		}
		cursor = t;
		/* Years of `every 1s` are not walked second by second: past
		 * the bound the scan jumps ahead, closer to now each time,
		 * never past the missed ones it must still see. */
		if (++steps >= JNL_CRON_SCAN_MAX) {
			steps = 0;
			if (missed_before - window > cursor)
				cursor = missed_before - window;
			if (window > JUMP_SHRINK * 1000)
				window /= JUMP_SHRINK;
		}
		if (cron_next(s, z, anchor_ms, cursor, &t) != 1)
			t = 0;
	}
	*next = t;
	if (nmissed > 0) {
		switch (policy) {
		case JNL_MISFIRE_CATCH_UP:
			for (i = 0; i < nring; i++) {
				out[n].scheduled_ms = ring[(head + i) % keep];
				out[n++].skip = 0;
			}
			break;
		case JNL_MISFIRE_ONCE:
			out[n].scheduled_ms = ring[(head + nring - 1) % keep];
			out[n++].skip = 0;
			break;
		default:
			out[n].scheduled_ms = ring[(head + nring - 1) % keep];
			out[n++].skip = 1;
			break;
		}
	}
	for (i = 0; i < nlate; i++) {
		out[n].scheduled_ms = late[i];
		out[n++].skip = 0;
	}
	return n;
}
