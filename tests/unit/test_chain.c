/*
 * test_chain.c: unit tests of common/chain.c, the journal hash chain.
 *
 * The expected digests are computed two independent ways: a hand-built
 * canonical buffer hashed with OpenSSL's one-shot SHA256(), and fixed hex
 * vectors computed with Python's hashlib from the layout in chain.h.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/sha.h>

#include "chain.h"
#include "limits.h"

static const uint8_t zero_hash[CHAIN_HASH_LEN];
static const uint8_t payload1[] = {0x0a, 0x05, 'h', 'e', 'l', 'l', 'o'};

/* Python: hashlib.sha256(b'\0'*32 + canonical(1, b'run-1', 1,
 * 1700000000123, b'\x0a\x05hello')).hexdigest() */
static const char vector1[] =
    "8b2374d8a6d47d3e22dbde6c7530d0c7c3740395607f50f6846625796c79b209";
/* The next link: chain_seq 2, run_seq 2, timestamp -5, empty payload. */
static const char vector2[] =
    "b3b0da5daef5e4020b8b5d9565bd2cd3cfd2cfac39fd89eb1f299f3aed8b2f3a";

/* Appends v as n big-endian bytes. */
static size_t
put_be(uint8_t *p, uint64_t v, int n)
{
	int i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
	return (size_t)n;
}

/* The reference: hash of prev || canonical, built byte by byte. */
static void
reference_link(const uint8_t prev[CHAIN_HASH_LEN], uint64_t chain_seq,
    const char *run_id, uint64_t run_seq, int64_t ts, const uint8_t *payload,
    size_t payload_len, uint8_t out[CHAIN_HASH_LEN])
{
	uint8_t buf[1024];
	size_t n = 0, id_len = strlen(run_id);

	assert_true(CHAIN_HASH_LEN + 32 + id_len + payload_len <= sizeof(buf));
	memcpy(buf, prev, CHAIN_HASH_LEN);
	n += CHAIN_HASH_LEN;
	n += put_be(buf + n, chain_seq, 8);
	n += put_be(buf + n, id_len, 4);
	memcpy(buf + n, run_id, id_len);
	n += id_len;
	n += put_be(buf + n, run_seq, 8);
	n += put_be(buf + n, (uint64_t)ts, 8);
	n += put_be(buf + n, payload_len, 4);
	if (payload_len > 0)
		memcpy(buf + n, payload, payload_len);
	n += payload_len;
	SHA256(buf, n, out);
}

static void
test_known_answer(void **state)
{
	uint8_t h1[CHAIN_HASH_LEN], h2[CHAIN_HASH_LEN], ref[CHAIN_HASH_LEN];
	char hex[65];

	(void)state;
	assert_int_equal(chain_link(zero_hash, 1, "run-1", 1, 1700000000123LL,
			     payload1, sizeof(payload1), h1),
	    0);
	reference_link(zero_hash, 1, "run-1", 1, 1700000000123LL, payload1,
	    sizeof(payload1), ref);
	assert_memory_equal(h1, ref, CHAIN_HASH_LEN);
	chain_hex(h1, hex);
	assert_string_equal(hex, vector1);

	assert_int_equal(chain_link(h1, 2, "run-1", 2, -5, NULL, 0, h2), 0);
	reference_link(h1, 2, "run-1", 2, -5, NULL, 0, ref);
	assert_memory_equal(h2, ref, CHAIN_HASH_LEN);
	chain_hex(h2, hex);
	assert_string_equal(hex, vector2);
}

static void
test_every_field_matters(void **state)
{
	uint8_t base[CHAIN_HASH_LEN], other[CHAIN_HASH_LEN];
	uint8_t prev[CHAIN_HASH_LEN];
	uint8_t payload2[sizeof(payload1)];

	(void)state;
	assert_int_equal(chain_link(zero_hash, 7, "run-1", 3, 1000, payload1,
			     sizeof(payload1), base),
	    0);

	/* chain_seq */
	assert_int_equal(chain_link(zero_hash, 8, "run-1", 3, 1000, payload1,
			     sizeof(payload1), other),
	    0);
	assert_memory_not_equal(base, other, CHAIN_HASH_LEN);
	/* run_id */
	assert_int_equal(chain_link(zero_hash, 7, "run-2", 3, 1000, payload1,
			     sizeof(payload1), other),
	    0);
	assert_memory_not_equal(base, other, CHAIN_HASH_LEN);
	/* run_seq */
	assert_int_equal(chain_link(zero_hash, 7, "run-1", 4, 1000, payload1,
			     sizeof(payload1), other),
	    0);
	assert_memory_not_equal(base, other, CHAIN_HASH_LEN);
	/* timestamp */
	assert_int_equal(chain_link(zero_hash, 7, "run-1", 3, 1001, payload1,
			     sizeof(payload1), other),
	    0);
	assert_memory_not_equal(base, other, CHAIN_HASH_LEN);
	/* payload: one flipped bit, and one byte fewer */
	memcpy(payload2, payload1, sizeof(payload1));
	payload2[3] ^= 1;
	assert_int_equal(chain_link(zero_hash, 7, "run-1", 3, 1000, payload2,
			     sizeof(payload2), other),
	    0);
	assert_memory_not_equal(base, other, CHAIN_HASH_LEN);
	assert_int_equal(chain_link(zero_hash, 7, "run-1", 3, 1000, payload1,
			     sizeof(payload1) - 1, other),
	    0);
	assert_memory_not_equal(base, other, CHAIN_HASH_LEN);
	/* prev */
	memset(prev, 0, sizeof(prev));
	prev[31] = 1;
	assert_int_equal(chain_link(prev, 7, "run-1", 3, 1000, payload1,
			     sizeof(payload1), other),
	    0);
	assert_memory_not_equal(base, other, CHAIN_HASH_LEN);

	/* Same inputs, same hash. */
	assert_int_equal(chain_link(zero_hash, 7, "run-1", 3, 1000, payload1,
			     sizeof(payload1), other),
	    0);
	assert_memory_equal(base, other, CHAIN_HASH_LEN);
}

/* The length prefixes keep a byte from moving between run_id and the
 * fields after it without changing the hash. */
static void
test_length_prefix_separates_fields(void **state)
{
	uint8_t a[CHAIN_HASH_LEN], b[CHAIN_HASH_LEN];

	(void)state;
	assert_int_equal(
	    chain_link(zero_hash, 1, "ab", 1, 0, (const uint8_t *)"c", 1, a),
	    0);
	assert_int_equal(
	    chain_link(zero_hash, 1, "a", 1, 0, (const uint8_t *)"bc", 2, b),
	    0);
	assert_memory_not_equal(a, b, CHAIN_HASH_LEN);
}

static void
test_invalid_inputs(void **state)
{
	static uint8_t big[JNL_PAYLOAD_MAX + 1];
	uint8_t out[CHAIN_HASH_LEN];
	char long_id[1024];

	(void)state;
	assert_int_equal(
	    chain_link(NULL, 1, "r", 1, 0, payload1, sizeof(payload1), out),
	    -EINVAL);
	assert_int_equal(chain_link(zero_hash, 1, NULL, 1, 0, payload1,
			     sizeof(payload1), out),
	    -EINVAL);
	assert_int_equal(
	    chain_link(zero_hash, 1, "r", 1, 0, NULL, 5, out), -EINVAL);
	assert_int_equal(chain_link(zero_hash, 1, "r", 1, 0, payload1,
			     sizeof(payload1), NULL),
	    -EINVAL);
	assert_int_equal(
	    chain_link(zero_hash, 1, "r", 1, 0, big, sizeof(big), out),
	    -EINVAL);
	memset(long_id, 'x', sizeof(long_id) - 1);
	long_id[sizeof(long_id) - 1] = '\0';
	assert_int_equal(chain_link(zero_hash, 1, long_id, 1, 0, payload1,
			     sizeof(payload1), out),
	    -EINVAL);
	/* The largest payload allowed still links. */
	assert_int_equal(
	    chain_link(zero_hash, 1, "r", 1, 0, big, JNL_PAYLOAD_MAX, out), 0);
}

static void
test_hex(void **state)
{
	uint8_t h[CHAIN_HASH_LEN];
	char hex[65];
	size_t i;

	(void)state;
	for (i = 0; i < CHAIN_HASH_LEN; i++)
		h[i] = (uint8_t)(i * 0x11 + 0x0f);
	memset(hex, 'Z', sizeof(hex));
	chain_hex(h, hex);
	assert_int_equal(strlen(hex), 64);
	assert_memory_equal(hex, "0f203142", 8);
	assert_string_equal(hex + 60, "0d1e");

	memset(h, 0, sizeof(h));
	chain_hex(h, hex);
	for (i = 0; i < 64; i++)
		assert_int_equal(hex[i], '0');
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_known_answer),
	    cmocka_unit_test(test_every_field_matters),
	    cmocka_unit_test(test_length_prefix_separates_fields),
	    cmocka_unit_test(test_invalid_inputs),
	    cmocka_unit_test(test_hex),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
