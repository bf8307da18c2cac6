/*
 * test_chain_verify.c: unit tests of common/chain_verify.c, the journal
 * chain verifier and the signed checkpoint message.
 *
 * A chain of events is built here with chain_link() and then walked: it
 * must hold as built, and each kind of damage (a changed payload, a wrong
 * stored hash, a missing link, a malformed hash, a checkpoint the chain
 * no longer reaches or no longer matches) must name the first bad link.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "chain_verify.h"

#define N 8

struct event {
	uint64_t chain_seq;
	char run_id[16];
	uint64_t run_seq;
	int64_t ts;
	uint8_t payload[8];
	uint8_t hash[CHAIN_HASH_LEN];
};

static struct event chain[N];

/* chain[i] holds chain_seq i + 1, linked to chain[i - 1]. */
static void
build(void)
{
	uint8_t prev[CHAIN_HASH_LEN] = {0};
	int i;

	for (i = 0; i < N; i++) {
		chain[i].chain_seq = (uint64_t)i + 1;
		snprintf(
		    chain[i].run_id, sizeof(chain[i].run_id), "run-%d", i / 3);
		chain[i].run_seq = (uint64_t)(i % 3) + 1;
		chain[i].ts = 1700000000000 + i;
		memset(chain[i].payload, 'a' + i, sizeof(chain[i].payload));
		assert_int_equal(
		    chain_link(prev, chain[i].chain_seq, chain[i].run_id,
			chain[i].run_seq, chain[i].ts, chain[i].payload,
			sizeof(chain[i].payload), chain[i].hash),
		    0);
		memcpy(prev, chain[i].hash, CHAIN_HASH_LEN);
	}
}

static struct chain_row
row(const struct event *e)
{
	struct chain_row r = {
	    .chain_seq = e->chain_seq,
	    .run_id = e->run_id,
	    .run_seq = e->run_seq,
	    .ts_ms = e->ts,
	    .payload = e->payload,
	    .payload_len = sizeof(e->payload),
	    .hash = e->hash,
	    .hash_len = CHAIN_HASH_LEN,
	};
	return r;
}

/* Walks chain[0..n) but for skip (-1: none); returns finish's answer. */
static int
walk(struct chain_verifier *v, int n, int skip)
{
	struct chain_row r;
	int i;

	for (i = 0; i < n; i++) {
		if (i == skip)
			continue;
		r = row(&chain[i]);
		if (chain_verify_row(v, &r) != 0)
			break;
	}
	return chain_verify_finish(v);
}

static void
test_intact_chain(void **state)
{
	struct chain_verifier v;

	build();
	chain_verify_init(&v);
	assert_int_equal(walk(&v, N, -1), 0);
	assert_int_equal(v.state, CHAIN_VERIFY_OK);
	assert_int_equal(v.events, N);
	assert_int_equal(v.head_seq, N);
	assert_memory_equal(v.head_hash, chain[N - 1].hash, CHAIN_HASH_LEN);
}

static void
test_empty_chain(void **state)
{
	static const uint8_t zero[CHAIN_HASH_LEN];
	struct chain_verifier v;

	chain_verify_init(&v);
	assert_int_equal(chain_verify_finish(&v), 0);
	assert_int_equal(v.events, 0);
	assert_int_equal(v.head_seq, 0);
	assert_memory_equal(v.head_hash, zero, CHAIN_HASH_LEN);
}

static void
test_changed_payload_names_its_seq(void **state)
{
	struct chain_verifier v;
	uint8_t expected[CHAIN_HASH_LEN];
	struct chain_row r;
	int i;

	build();
	chain[4].payload[0] ^= 1;
	/* What the chain says event 5 should hash to now. */
	assert_int_equal(chain_link(chain[3].hash, 5, chain[4].run_id,
			     chain[4].run_seq, chain[4].ts, chain[4].payload,
			     sizeof(chain[4].payload), expected),
	    0);
	chain_verify_init(&v);
	for (i = 0; i < N; i++) {
		r = row(&chain[i]);
		assert_int_equal(chain_verify_row(&v, &r), i < 4 ? 0 : 1);
	}
	assert_int_equal(chain_verify_finish(&v), 1);
	assert_int_equal(v.broken_seq, 5);
	assert_int_equal(v.events, 4);
	assert_int_equal(v.expected_len, CHAIN_HASH_LEN);
	assert_memory_equal(v.expected, expected, CHAIN_HASH_LEN);
	assert_int_equal(v.found_len, CHAIN_HASH_LEN);
	assert_memory_equal(v.found, chain[4].hash, CHAIN_HASH_LEN);
	assert_string_equal(v.reason, "stored hash does not match the event");
}

static void
test_every_field_is_checked(void **state)
{
	struct chain_verifier v;
	int field;

	for (field = 0; field < 4; field++) {
		build();
		if (field == 0)
			chain[2].run_id[0] = 'R';
		else if (field == 1)
			chain[2].run_seq++;
		else if (field == 2)
			chain[2].ts--;
		else
			chain[2].hash[31] ^= 0x80;
		chain_verify_init(&v);
		assert_int_equal(walk(&v, N, -1), 1);
		assert_int_equal(v.broken_seq, 3);
	}
}

static void
test_gap_is_a_break(void **state)
{
	struct chain_verifier v;

	build();
	chain_verify_init(&v);
	assert_int_equal(walk(&v, N, 5), 1);
	assert_int_equal(v.broken_seq, 6);
	assert_int_equal(v.expected_len, 0);
	assert_int_equal(v.found_len, 0);
	assert_string_equal(v.reason, "gap: chain_seq 7 follows 5");

	/* The chain starts at 1. */
	chain_verify_init(&v);
	assert_int_equal(walk(&v, N, 0), 1);
	assert_int_equal(v.broken_seq, 1);
}

static void
test_malformed_hash(void **state)
{
	struct chain_verifier v;
	struct chain_row r;

	build();
	chain_verify_init(&v);
	r = row(&chain[0]);
	r.hash_len = 31;
	assert_int_equal(chain_verify_row(&v, &r), 1);
	assert_int_equal(v.broken_seq, 1);
	assert_int_equal(v.found_len, 31);
	assert_string_equal(v.reason, "stored hash is malformed");
	r.hash = NULL;
	r.hash_len = 0;
	chain_verify_init(&v);
	assert_int_equal(chain_verify_row(&v, &r), 1);
	assert_int_equal(v.found_len, 0);
}

static void
test_checkpoint_matches(void **state)
{
	struct chain_verifier v;

	build();
	chain_verify_init(&v);
	chain_verify_expect_checkpoint(&v, 6, chain[5].hash);
	assert_int_equal(walk(&v, N, -1), 0);
	assert_int_equal(v.checkpoint_seen, 1);
}

static void
test_truncation_below_checkpoint(void **state)
{
	struct chain_verifier v;

	build();
	chain_verify_init(&v);
	chain_verify_expect_checkpoint(&v, N, chain[N - 1].hash);
	/* The newest three events are gone; what is left still links. */
	assert_int_equal(walk(&v, N - 3, -1), 1);
	assert_int_equal(v.broken_seq, N);
	assert_memory_equal(v.expected, chain[N - 1].hash, CHAIN_HASH_LEN);
	assert_int_equal(v.found_len, 0);
	assert_string_equal(
	    v.reason, "truncated: checkpoint at seq 8, head now 5");
}

static void
test_rewritten_chain_differs_from_checkpoint(void **state)
{
	struct chain_verifier v;
	uint8_t signed_hash[CHAIN_HASH_LEN];

	build();
	memcpy(signed_hash, chain[3].hash, CHAIN_HASH_LEN);
	/* Event 2 changed and every later link recomputed: a consistent
	 * chain, but not the one that was signed. */
	chain[1].payload[0] ^= 1;
	{
		uint8_t prev[CHAIN_HASH_LEN];
		int i;

		memcpy(prev, chain[0].hash, CHAIN_HASH_LEN);
		for (i = 1; i < N; i++) {
			assert_int_equal(
			    chain_link(prev, chain[i].chain_seq,
				chain[i].run_id, chain[i].run_seq, chain[i].ts,
				chain[i].payload, sizeof(chain[i].payload),
				chain[i].hash),
			    0);
			memcpy(prev, chain[i].hash, CHAIN_HASH_LEN);
		}
	}
	chain_verify_init(&v);
	chain_verify_expect_checkpoint(&v, 4, signed_hash);
	assert_int_equal(walk(&v, N, -1), 1);
	assert_int_equal(v.broken_seq, 4);
	assert_memory_equal(v.expected, signed_hash, CHAIN_HASH_LEN);
	assert_memory_equal(v.found, chain[3].hash, CHAIN_HASH_LEN);
}

static void
test_checkpoint_message_layout(void **state)
{
	uint8_t msg[CHAIN_CHECKPOINT_MSG_MAX], hash[CHAIN_HASH_LEN];
	static const uint8_t tail[] = {0, 0, 0, 0, 0, 0, 0, 42};
	int len;

	memset(hash, 0xab, sizeof(hash));
	len = chain_checkpoint_message("acme", 42, hash, -2, msg, sizeof(msg));
	assert_int_equal(len, 20 + 4 + 4 + 8 + 32 + 8);
	assert_memory_equal(msg, "palyra.checkpoint.v1", 20);
	assert_memory_equal(msg + 20, "\0\0\0\4acme", 8);
	assert_memory_equal(msg + 28, tail, 8);
	assert_memory_equal(msg + 36, hash, 32);
	assert_memory_equal(msg + 68, "\xff\xff\xff\xff\xff\xff\xff\xfe", 8);

	assert_int_equal(
	    chain_checkpoint_message("", 1, hash, 0, msg, sizeof(msg)),
	    -EINVAL);
	assert_int_equal(
	    chain_checkpoint_message(NULL, 1, hash, 0, msg, sizeof(msg)),
	    -EINVAL);
	assert_int_equal(
	    chain_checkpoint_message("acme", 1, hash, 0, msg, 20), -EINVAL);
	{
		char longname[NAME_MAX_LEN + 2];

		memset(longname, 'a', sizeof(longname) - 1);
		longname[sizeof(longname) - 1] = '\0';
		assert_int_equal(chain_checkpoint_message(
				     longname, 1, hash, 0, msg, sizeof(msg)),
		    -EINVAL);
		longname[NAME_MAX_LEN] = '\0';
		assert_int_equal(chain_checkpoint_message(
				     longname, 1, hash, 0, msg, sizeof(msg)),
		    (int)CHAIN_CHECKPOINT_MSG_MAX);
	}
}

/* What journald signs verifies with the public key, and nothing else. */
static void
test_checkpoint_signature(void **state)
{
	uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
	uint8_t msg[CHAIN_CHECKPOINT_MSG_MAX], other[CHAIN_CHECKPOINT_MSG_MAX];
	uint8_t sig[crypto_sign_BYTES];
	int len, olen;

	assert_true(sodium_init() >= 0);
	build();
	crypto_sign_keypair(pk, sk);
	len = chain_checkpoint_message(
	    "default", N, chain[N - 1].hash, 1700000000000, msg, sizeof(msg));
	assert_true(len > 0);
	crypto_sign_detached(sig, NULL, msg, (unsigned long long)len, sk);
	assert_int_equal(
	    crypto_sign_verify_detached(sig, msg, (unsigned long long)len, pk),
	    0);
	/* Another tenant, seq or time is another message. */
	olen = chain_checkpoint_message(
	    "other", N, chain[N - 1].hash, 1700000000000, other, sizeof(other));
	assert_int_not_equal(crypto_sign_verify_detached(
				 sig, other, (unsigned long long)olen, pk),
	    0);
	olen = chain_checkpoint_message("default", N - 1, chain[N - 1].hash,
	    1700000000000, other, sizeof(other));
	assert_int_not_equal(crypto_sign_verify_detached(
				 sig, other, (unsigned long long)olen, pk),
	    0);
	sodium_memzero(sk, sizeof(sk));
}

/* After a prune: the walk starts from the anchor's link. */
static void
test_walk_from_anchor(void **state)
{
	struct chain_verifier v;
	struct chain_row r;
	int i;

	build();
	chain_verify_init(&v);
	chain_verify_start_at(&v, 3, chain[2].hash);
	for (i = 3; i < N; i++) {
		r = row(&chain[i]);
		assert_int_equal(chain_verify_row(&v, &r), 0);
	}
	assert_int_equal(chain_verify_finish(&v), 0);
	assert_int_equal(v.events, N - 3);
	assert_int_equal(v.head_seq, N);

	/* An anchor with another hash does not link to what follows. */
	chain_verify_init(&v);
	chain_verify_start_at(&v, 3, chain[1].hash);
	r = row(&chain[3]);
	assert_int_equal(chain_verify_row(&v, &r), 1);
	assert_int_equal(v.broken_seq, 4);

	/* A row at or below the anchor is a gap. */
	chain_verify_init(&v);
	chain_verify_start_at(&v, 3, chain[2].hash);
	r = row(&chain[2]);
	assert_int_equal(chain_verify_row(&v, &r), 1);
	assert_int_equal(v.broken_seq, 4);
}

static void
test_anchor_message_layout(void **state)
{
	uint8_t msg[CHAIN_ANCHOR_MSG_MAX], cp[CHAIN_CHECKPOINT_MSG_MAX];
	uint8_t hash[CHAIN_HASH_LEN];
	static const uint8_t seq[] = {0, 0, 0, 0, 0, 0, 0, 42};
	static const uint8_t before[] = {0, 0, 0, 0, 0, 0, 1, 0};
	int len, cplen;

	memset(hash, 0xcd, sizeof(hash));
	len = chain_anchor_message("acme", 42, hash, -2, 256, msg, sizeof(msg));
	assert_int_equal(len, 16 + 4 + 4 + 8 + 32 + 8 + 8);
	assert_memory_equal(msg, "palyra.anchor.v1", 16);
	assert_memory_equal(msg + 16, "\0\0\0\4acme", 8);
	assert_memory_equal(msg + 24, seq, 8);
	assert_memory_equal(msg + 32, hash, 32);
	assert_memory_equal(msg + 64, "\xff\xff\xff\xff\xff\xff\xff\xfe", 8);
	assert_memory_equal(msg + 72, before, 8);
	/* Never the bytes of a checkpoint: one signature cannot be both. */
	cplen = chain_checkpoint_message("acme", 42, hash, -2, cp, sizeof(cp));
	assert_true(cplen != len || memcmp(cp, msg, (size_t)len) != 0);
	assert_int_equal(
	    chain_anchor_message("", 1, hash, 0, 0, msg, sizeof(msg)), -EINVAL);
	assert_int_equal(
	    chain_anchor_message("acme", 1, NULL, 0, 0, msg, sizeof(msg)),
	    -EINVAL);
	assert_int_equal(
	    chain_anchor_message("acme", 1, hash, 0, 0, msg, 40), -EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_intact_chain),
	    cmocka_unit_test(test_empty_chain),
	    cmocka_unit_test(test_changed_payload_names_its_seq),
	    cmocka_unit_test(test_every_field_is_checked),
	    cmocka_unit_test(test_gap_is_a_break),
	    cmocka_unit_test(test_malformed_hash),
	    cmocka_unit_test(test_checkpoint_matches),
	    cmocka_unit_test(test_truncation_below_checkpoint),
	    cmocka_unit_test(test_rewritten_chain_differs_from_checkpoint),
	    cmocka_unit_test(test_checkpoint_message_layout),
	    cmocka_unit_test(test_checkpoint_signature),
	    cmocka_unit_test(test_walk_from_anchor),
	    cmocka_unit_test(test_anchor_message_layout),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
