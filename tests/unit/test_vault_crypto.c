/*
 * test_vault_crypto.c: unit tests of worker/vault_crypto.c, the sealing of
 * vault values (XChaCha20-Poly1305, additional data tenant NUL name).
 * vault_crypto.c is part of palyra-worker and compiled in here directly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../worker/vault_crypto.c"

static const char value[] = "correct horse battery staple";

struct sealed {
	uint8_t	key[WRK_VAULT_KEY_LEN];
	uint8_t	ct[sizeof(value) - 1 + WRK_VAULT_TAG_LEN];
	uint8_t	nonce[WRK_VAULT_NONCE_LEN];
	uint8_t	out[sizeof(value)];
};

static void
seal(struct sealed *s)
{
	assert_int_equal(sodium_init() >= 0, 1);
	randombytes_buf(s->key, sizeof(s->key));
	assert_int_equal(wrk_vault_seal(s->key, "acme", "db-password",
	    (const uint8_t *)value, sizeof(value) - 1, s->ct, s->nonce), 0);
	memset(s->out, 0, sizeof(s->out));
}

static int
open_as(struct sealed *s, const char *tenant, const char *name)
{
	return wrk_vault_open(s->key, tenant, name, s->ct, sizeof(s->ct),
	    s->nonce, sizeof(s->nonce), s->out);
}

static void
test_round_trip(void **state)
{
	struct sealed s;

	(void)state;
	seal(&s);
	/* The value is not in the ciphertext. */
	assert_null(memmem(s.ct, sizeof(s.ct), "horse", 5));
	assert_int_equal(open_as(&s, "acme", "db-password"), 0);
	assert_memory_equal(s.out, value, sizeof(value) - 1);
}

static void
test_fresh_nonce(void **state)
{
	struct sealed a, b;

	(void)state;
	seal(&a);
	memcpy(b.key, a.key, sizeof(a.key));
	assert_int_equal(wrk_vault_seal(b.key, "acme", "db-password",
	    (const uint8_t *)value, sizeof(value) - 1, b.ct, b.nonce), 0);
	assert_memory_not_equal(a.nonce, b.nonce, sizeof(a.nonce));
	assert_memory_not_equal(a.ct, b.ct, sizeof(a.ct));
}

static void
test_tampered(void **state)
{
	struct sealed s;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(s.ct); i += 7) {
		seal(&s);
		s.ct[i] ^= 0x01;
		assert_int_equal(open_as(&s, "acme", "db-password"),
		    -EBADMSG);
		/* Nothing of the value is left in the output. */
		assert_null(memmem(s.out, sizeof(s.out), "horse", 5));
	}
	seal(&s);
	s.nonce[3] ^= 0x80;
	assert_int_equal(open_as(&s, "acme", "db-password"), -EBADMSG);
	seal(&s);
	assert_int_equal(wrk_vault_open(s.key, "acme", "db-password", s.ct,
	    sizeof(s.ct) - 1, s.nonce, sizeof(s.nonce), s.out), -EBADMSG);
	assert_int_equal(wrk_vault_open(s.key, "acme", "db-password", s.ct,
	    sizeof(s.ct), s.nonce, sizeof(s.nonce) - 1, s.out), -EBADMSG);
}

static void
test_wrong_additional_data(void **state)
{
	struct sealed s;

	(void)state;
	seal(&s);
	/* Another name (journald swapped two rows), another tenant, or
	 * the boundary between them moved: none opens. */
	assert_int_equal(open_as(&s, "acme", "db-passwore"), -EBADMSG);
	assert_int_equal(open_as(&s, "acme2", "db-password"), -EBADMSG);
	assert_int_equal(open_as(&s, "acm", "edb-password"), -EBADMSG);
	assert_int_equal(open_as(&s, "", "db-password"), -EBADMSG);
	/* Another key. */
	s.key[0] ^= 0x01;
	assert_int_equal(open_as(&s, "acme", "db-password"), -EBADMSG);
}

static void
test_limits(void **state)
{
	static uint8_t big[VAULT_VALUE_MAX + 1];
	static uint8_t ct[VAULT_VALUE_MAX + 1 + WRK_VAULT_TAG_LEN];
	static uint8_t out[VAULT_VALUE_MAX + 1];
	uint8_t key[WRK_VAULT_KEY_LEN], nonce[WRK_VAULT_NONCE_LEN];

	(void)state;
	randombytes_buf(key, sizeof(key));
	assert_int_equal(wrk_vault_seal(key, "acme", "x", big, 0, ct, nonce),
	    -EINVAL);
	assert_int_equal(wrk_vault_seal(key, "acme", "x", big,
	    VAULT_VALUE_MAX + 1, ct, nonce), -EINVAL);
	assert_int_equal(wrk_vault_seal(key, "acme", "x", big,
	    VAULT_VALUE_MAX, ct, nonce), 0);
	assert_int_equal(wrk_vault_open(key, "acme", "x", ct,
	    VAULT_VALUE_MAX + WRK_VAULT_TAG_LEN, nonce, sizeof(nonce), out),
	    0);
	assert_int_equal(wrk_vault_open(key, "acme", "x", ct,
	    WRK_VAULT_TAG_LEN, nonce, sizeof(nonce), out), -EBADMSG);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_fresh_nonce),
		cmocka_unit_test(test_tampered),
		cmocka_unit_test(test_wrong_additional_data),
		cmocka_unit_test(test_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
