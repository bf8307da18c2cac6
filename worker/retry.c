/*
 * retry.c: the retry policy of palyra-worker's network providers: the
 * jittered exponential back-off between attempts and the per-provider
 * circuit breaker (palyrad.conf(5), "Retries and failover"). Pure
 * functions of their inputs (the clock and the random value are passed
 * in), so tests drive them; provider.c applies them.
 */
#include <stdint.h>

#include "provider.h"

uint64_t
wrk_backoff_ms(unsigned int failed, int64_t retry_after_ms, uint32_t random)
{
	uint64_t	 step = WRK_BACKOFF_BASE_MS, delay;
	unsigned int	 i;

	for (i = 1; i < failed && step < WRK_BACKOFF_CAP_MS; i++)
		step *= 2;
	if (step > WRK_BACKOFF_CAP_MS)
		step = WRK_BACKOFF_CAP_MS;
	/* Equal jitter: spreads the retries of many runs hit at once, yet
	 * never retries sooner than half the step. */
	delay = step / 2 + (uint64_t)random % (step / 2 + 1);
	if (retry_after_ms >= 0) {
		if (retry_after_ms > WRK_RETRY_AFTER_MAX_MS)
			retry_after_ms = WRK_RETRY_AFTER_MAX_MS;
		if ((uint64_t)retry_after_ms > delay)
			delay = (uint64_t)retry_after_ms;
	}
	return delay;
}

static const char *const breaker_names[] = {
	[WRK_BREAKER_CLOSED] = "closed",
	[WRK_BREAKER_OPEN] = "open",
	[WRK_BREAKER_HALF_OPEN] = "half-open",
};

const char *
wrk_breaker_state_name(enum wrk_breaker_state s)
{
	if (s > WRK_BREAKER_HALF_OPEN)
		return "unknown";
	return breaker_names[s];
}

int
wrk_breaker_allow(struct wrk_breaker *b, int64_t now_ms)
{
	switch (b->state) {
	case WRK_BREAKER_CLOSED:
		return 1;
	case WRK_BREAKER_OPEN:
		if (now_ms - b->opened_ms < WRK_BREAKER_OPEN_MS)
			return 0;
		b->state = WRK_BREAKER_HALF_OPEN;
		b->probing = 1;
		return 1;
	case WRK_BREAKER_HALF_OPEN:
		if (b->probing)
			return 0;
		b->probing = 1;
		return 1;
	}
	return 0;
}

void
wrk_breaker_success(struct wrk_breaker *b)
{
	b->state = WRK_BREAKER_CLOSED;
	b->failures = 0;
	b->probing = 0;
}

void
wrk_breaker_failure(struct wrk_breaker *b, int64_t now_ms)
{
	switch (b->state) {
	case WRK_BREAKER_CLOSED:
		if (++b->failures < WRK_BREAKER_FAILURES)
			return;
		break;
	case WRK_BREAKER_HALF_OPEN:
		break;
	case WRK_BREAKER_OPEN:
		/* A call that started before it opened: no news. */
		return;
	}
	b->state = WRK_BREAKER_OPEN;
	b->opened_ms = now_ms;
	b->probing = 0;
}

void
wrk_breaker_release(struct wrk_breaker *b)
{
	if (b->state == WRK_BREAKER_HALF_OPEN)
		b->probing = 0;
}
