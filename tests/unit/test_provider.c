/*
 * test_provider.c: the retry policy of palyra-worker's network providers
 * (worker/retry.c): the jittered exponential back-off (its bounds at
 * every attempt, the jitter spread inside them, Retry-After honoured and
 * capped) and the circuit breaker's state machine, driven by an injected
 * clock: closed -> open after WRK_BREAKER_FAILURES consecutive failures,
 * refusals while open, one half-open probe after WRK_BREAKER_OPEN_MS, and
 * what the probe's success, failure or cancellation does.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../worker/retry.c"

static uint64_t
step_of(unsigned int failed)
{
	uint64_t	 step = WRK_BACKOFF_BASE_MS;

	while (--failed > 0 && step < WRK_BACKOFF_CAP_MS)
		step *= 2;
	return step < WRK_BACKOFF_CAP_MS ? step : WRK_BACKOFF_CAP_MS;
}

static void
test_backoff_bounds(void **state)
{
	static const uint32_t randoms[] = { 0, 1, 12345, 0x7fffffff,
	    UINT32_MAX - 1, UINT32_MAX };
	unsigned int	 n;
	size_t		 i;
	uint64_t	 d, step;

	for (n = 1; n <= 40; n++) {
		step = step_of(n);
		for (i = 0; i < sizeof(randoms) / sizeof(randoms[0]); i++) {
			d = wrk_backoff_ms(n, -1, randoms[i]);
			assert_true(d >= step / 2);
			assert_true(d <= step);
			assert_true(d <= WRK_BACKOFF_CAP_MS);
		}
	}
	/* The first retry waits about the base, later ones double. */
	assert_int_equal(wrk_backoff_ms(1, -1, 0), WRK_BACKOFF_BASE_MS / 2);
	assert_int_equal(wrk_backoff_ms(2, -1, 0), WRK_BACKOFF_BASE_MS);
	assert_int_equal(wrk_backoff_ms(3, -1, 0), WRK_BACKOFF_BASE_MS * 2);
	assert_int_equal(wrk_backoff_ms(30, -1, 0), WRK_BACKOFF_CAP_MS / 2);
	assert_int_equal(wrk_backoff_ms(30, -1, WRK_BACKOFF_CAP_MS / 2),
	    WRK_BACKOFF_CAP_MS);
	/* A huge attempt number does not overflow. */
	assert_true(wrk_backoff_ms(UINT32_MAX, -1, UINT32_MAX) <=
	    WRK_BACKOFF_CAP_MS);
}

static void
test_backoff_jitter(void **state)
{
	uint64_t	 seen[4096];
	uint64_t	 lo = UINT64_MAX, hi = 0, d, step = step_of(4);
	uint32_t	 x = 2463534242u;
	size_t		 i, distinct = 0, j;

	for (i = 0; i < 4096; i++) {
		/* xorshift32: a deterministic spread of random inputs */
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		d = wrk_backoff_ms(4, -1, x);
		assert_true(d >= step / 2 && d <= step);
		lo = d < lo ? d : lo;
		hi = d > hi ? d : hi;
		for (j = 0; j < distinct && seen[j] != d; j++)
			;
		if (j == distinct)
			seen[distinct++] = d;
	}
	/* Spread over the whole range, not one value. */
	assert_true(distinct > 100);
	assert_true(lo < step / 2 + step / 20);
	assert_true(hi > step - step / 20);
}

static void
test_retry_after(void **state)
{
	/* Honoured when longer than the back-off. */
	assert_int_equal(wrk_backoff_ms(1, 1000, 0), 1000);
	assert_int_equal(wrk_backoff_ms(1, 1000, UINT32_MAX), 1000);
	assert_int_equal(wrk_backoff_ms(3, 0, 0), WRK_BACKOFF_BASE_MS * 2);
	/* A shorter one does not shorten the back-off. */
	assert_int_equal(wrk_backoff_ms(4, 10, 0), step_of(4) / 2);
	/* Capped: a provider cannot park a run for an hour. */
	assert_int_equal(wrk_backoff_ms(1, 3600 * 1000, 0),
	    WRK_RETRY_AFTER_MAX_MS);
	assert_int_equal(wrk_backoff_ms(1, INT64_MAX, 0),
	    WRK_RETRY_AFTER_MAX_MS);
	assert_int_equal(wrk_backoff_ms(1, WRK_RETRY_AFTER_MAX_MS, 0),
	    WRK_RETRY_AFTER_MAX_MS);
}

static void
test_breaker_opens(void **state)
{
	struct wrk_breaker b;
	int64_t		 now = 1000000;
	int		 i;

	memset(&b, 0, sizeof(b));
	assert_int_equal(b.state, WRK_BREAKER_CLOSED);
	for (i = 0; i < WRK_BREAKER_FAILURES - 1; i++) {
		assert_true(wrk_breaker_allow(&b, now));
		wrk_breaker_failure(&b, now);
		assert_int_equal(b.state, WRK_BREAKER_CLOSED);
	}
	/* A success in between starts the count again. */
	wrk_breaker_success(&b);
	for (i = 0; i < WRK_BREAKER_FAILURES - 1; i++)
		wrk_breaker_failure(&b, now);
	assert_int_equal(b.state, WRK_BREAKER_CLOSED);
	wrk_breaker_failure(&b, now);
	assert_int_equal(b.state, WRK_BREAKER_OPEN);
	assert_string_equal(wrk_breaker_state_name(b.state), "open");

	/* Open: refused until the period ended. */
	assert_false(wrk_breaker_allow(&b, now));
	assert_false(wrk_breaker_allow(&b, now + WRK_BREAKER_OPEN_MS - 1));
	/* A failure of a call started before it opened changes nothing. */
	wrk_breaker_failure(&b, now + 10);
	assert_int_equal(b.opened_ms, now);
	assert_int_equal(b.state, WRK_BREAKER_OPEN);
}

static void
test_breaker_half_open(void **state)
{
	struct wrk_breaker b;
	int64_t		 now = 5000;
	int		 i;

	memset(&b, 0, sizeof(b));
	for (i = 0; i < WRK_BREAKER_FAILURES; i++)
		wrk_breaker_failure(&b, now);
	assert_int_equal(b.state, WRK_BREAKER_OPEN);

	/* After the period: exactly one probe. */
	now += WRK_BREAKER_OPEN_MS;
	assert_true(wrk_breaker_allow(&b, now));
	assert_int_equal(b.state, WRK_BREAKER_HALF_OPEN);
	assert_string_equal(wrk_breaker_state_name(b.state), "half-open");
	assert_false(wrk_breaker_allow(&b, now));
	assert_false(wrk_breaker_allow(&b, now + 1000));

	/* The probe fails: open for another full period. */
	wrk_breaker_failure(&b, now + 100);
	assert_int_equal(b.state, WRK_BREAKER_OPEN);
	assert_int_equal(b.opened_ms, now + 100);
	assert_false(wrk_breaker_allow(&b, now + WRK_BREAKER_OPEN_MS));
	now += 100 + WRK_BREAKER_OPEN_MS;

	/* A probe that was cancelled lets another one go. */
	assert_true(wrk_breaker_allow(&b, now));
	assert_false(wrk_breaker_allow(&b, now));
	wrk_breaker_release(&b);
	assert_int_equal(b.state, WRK_BREAKER_HALF_OPEN);
	assert_true(wrk_breaker_allow(&b, now));

	/* The probe succeeds: closed, the count starts from zero. */
	wrk_breaker_success(&b);
	assert_int_equal(b.state, WRK_BREAKER_CLOSED);
	assert_int_equal(b.failures, 0);
	assert_true(wrk_breaker_allow(&b, now));
	assert_true(wrk_breaker_allow(&b, now));
	for (i = 0; i < WRK_BREAKER_FAILURES - 1; i++)
		wrk_breaker_failure(&b, now);
	assert_int_equal(b.state, WRK_BREAKER_CLOSED);
	/* release() in the closed state changes nothing. */
	wrk_breaker_release(&b);
	assert_int_equal(b.state, WRK_BREAKER_CLOSED);
	assert_string_equal(wrk_breaker_state_name(b.state), "closed");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backoff_bounds),
		cmocka_unit_test(test_backoff_jitter),
		cmocka_unit_test(test_retry_after),
		cmocka_unit_test(test_breaker_opens),
		cmocka_unit_test(test_breaker_half_open),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
