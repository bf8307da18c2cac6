/*
 * test_authfail.c: the per-source token bucket of authentication
 * failures (front/authfail.c): sources, burst, refill, bounded table.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../front/authfail.c"

static void
v4(const char *addr, uint8_t source[FE_AUTH_SOURCE_LEN])
{
	struct sockaddr_in in = { .sin_family = AF_INET };

	assert_int_equal(inet_pton(AF_INET, addr, &in.sin_addr), 1);
	assert_int_equal(fe_authfail_source((struct sockaddr *)&in,
			     sizeof(in), source), 0);
}

static void
v6(const char *addr, uint8_t source[FE_AUTH_SOURCE_LEN])
{
	struct sockaddr_in6 in6 = { .sin6_family = AF_INET6 };

	assert_int_equal(inet_pton(AF_INET6, addr, &in6.sin6_addr), 1);
	assert_int_equal(fe_authfail_source((struct sockaddr *)&in6,
			     sizeof(in6), source), 0);
}

static void
test_sources(void **state)
{
	uint8_t a[FE_AUTH_SOURCE_LEN], b[FE_AUTH_SOURCE_LEN];
	struct sockaddr sa = { .sa_family = AF_UNIX };

	v4("192.0.2.1", a);
	v6("::ffff:192.0.2.1", b);
	assert_memory_equal(a, b, sizeof(a));
	v4("192.0.2.2", b);
	assert_memory_not_equal(a, b, sizeof(a));
	/* One IPv6 /64 is one source; the next /64 another. */
	v6("2001:db8:1:2::1", a);
	v6("2001:db8:1:2:ffff::9", b);
	assert_memory_equal(a, b, sizeof(a));
	v6("2001:db8:1:3::1", b);
	assert_memory_not_equal(a, b, sizeof(a));
	assert_int_equal(fe_authfail_source(&sa, sizeof(sa), a),
	    -EAFNOSUPPORT);
}

static void
test_burst_and_refill(void **state)
{
	struct fe_ctx ctx;
	uint8_t a[FE_AUTH_SOURCE_LEN], b[FE_AUTH_SOURCE_LEN];
	struct fe_authfail_entry *e;
	int i;
	int64_t wait;

	memset(&ctx, 0, sizeof(ctx));
	v4("198.51.100.7", a);
	v4("198.51.100.8", b);
	assert_int_equal(fe_authfail_blocked_ms(&ctx, a), 0);
	for (i = 0; i < FE_AUTH_FAIL_BURST; i++) {
		assert_int_equal(fe_authfail_blocked_ms(&ctx, a), 0);
		fe_authfail_record(&ctx, a);
	}
	wait = fe_authfail_blocked_ms(&ctx, a);
	assert_true(wait > 0 && wait <= 60000 / FE_AUTH_FAIL_PER_MIN);
	assert_int_equal(fe_authfail_blocked_ms(&ctx, b), 0);
	assert_int_equal(fe_authfail_blocked_ms(&ctx, NULL), 0);
	/* One refill interval later, one more attempt. */
	e = find(ctx.authfail, a);
	assert_non_null(e);
	e->updated_ms -= 60000 / FE_AUTH_FAIL_PER_MIN;
	assert_int_equal(fe_authfail_blocked_ms(&ctx, a), 0);
	fe_authfail_record(&ctx, a);
	assert_true(fe_authfail_blocked_ms(&ctx, a) > 0);
	/* A long quiet time refills up to the burst, not beyond. */
	e->updated_ms -= 24LL * 3600 * 1000;
	for (i = 0; i < FE_AUTH_FAIL_BURST; i++) {
		assert_int_equal(fe_authfail_blocked_ms(&ctx, a), 0);
		fe_authfail_record(&ctx, a);
	}
	assert_true(fe_authfail_blocked_ms(&ctx, a) > 0);
	fe_authfail_free(&ctx);
	assert_null(ctx.authfail);
}

static void
test_table_is_bounded(void **state)
{
	struct fe_ctx ctx;
	uint8_t a[FE_AUTH_SOURCE_LEN], s[FE_AUTH_SOURCE_LEN];
	uint32_t i, addr;
	int k;

	memset(&ctx, 0, sizeof(ctx));
	v4("203.0.113.1", a);
	for (k = 0; k < FE_AUTH_FAIL_BURST; k++)
		fe_authfail_record(&ctx, a);
	assert_true(fe_authfail_blocked_ms(&ctx, a) > 0);
	memset(s, 0, sizeof(s));
	for (i = 0; i < FE_AUTH_FAIL_TABLE; i++) {
		addr = htonl(0x0a000000u + i);
		memcpy(s + 1, &addr, 4);
		fe_authfail_record(&ctx, s);
		assert_true(ctx.authfail->used <= FE_AUTH_FAIL_TABLE);
	}
	/* The least recently failed source went to make room. */
	assert_int_equal(ctx.authfail->used, FE_AUTH_FAIL_TABLE);
	assert_null(find(ctx.authfail, a));
	assert_int_equal(fe_authfail_blocked_ms(&ctx, a), 0);
	/* The most recent ones are still there. */
	assert_non_null(find(ctx.authfail, s));
	fe_authfail_free(&ctx);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sources),
		cmocka_unit_test(test_burst_and_refill),
		cmocka_unit_test(test_table_is_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
