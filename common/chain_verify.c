/*
 * chain_verify.c: the journal chain verifier and the checkpoint message
 * (common/chain_verify.h).
 *
 * Runs in palyra-journald (`palyractl journal verify`) and in unit tests.
 * Pure computation over rows the caller reads: no I/O, no allocation.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "chain_verify.h"

void
chain_verify_init(struct chain_verifier *v)
{
	memset(v, 0, sizeof(*v));
	v->state = CHAIN_VERIFY_OK;
}

void
chain_verify_start_at(
    struct chain_verifier *v, uint64_t chain_seq, const uint8_t *hash)
{
	v->head_seq = chain_seq;
	if (hash != NULL)
		memcpy(v->head_hash, hash, CHAIN_HASH_LEN);
}

void
chain_verify_expect_checkpoint(
    struct chain_verifier *v, uint64_t chain_seq, const uint8_t *hash)
{
	v->checkpoint_seq = chain_seq;
	v->checkpoint_seen = 0;
	if (hash != NULL)
		memcpy(v->checkpoint_hash, hash, CHAIN_HASH_LEN);
}

static void
set_found(struct chain_verifier *v, const uint8_t *hash, size_t len)
{
	v->found_len = len < CHAIN_HASH_LEN ? len : CHAIN_HASH_LEN;
	if (hash != NULL && v->found_len > 0)
		memcpy(v->found, hash, v->found_len);
	else
		v->found_len = 0;
}

int
chain_verify_row(struct chain_verifier *v, const struct chain_row *r)
{
	uint8_t link[CHAIN_HASH_LEN];
	int rc;

	if (v == NULL || r == NULL)
		return -EINVAL;
	if (v->state == CHAIN_VERIFY_BROKEN)
		return 1;
	/* A missing link is a break too: chain_seq runs 1, 2, 3, ... */
	if (r->chain_seq != v->head_seq + 1) {
		v->state = CHAIN_VERIFY_BROKEN;
		v->broken_seq = v->head_seq + 1;
		snprintf(v->reason, sizeof(v->reason),
		    "gap: chain_seq %llu follows %llu",
		    (unsigned long long)r->chain_seq,
		    (unsigned long long)v->head_seq);
		return 1;
	}
	if ((rc = chain_link(v->head_hash, r->chain_seq,
		 r->run_id != NULL ? r->run_id : "", r->run_seq, r->ts_ms,
		 r->payload, r->payload_len, link)) < 0) {
		if (rc != -EINVAL)
			return rc;
		/* An oversized payload or run id cannot be a valid event. */
		v->state = CHAIN_VERIFY_BROKEN;
		v->broken_seq = r->chain_seq;
		set_found(v, r->hash, r->hash_len);
		snprintf(v->reason, sizeof(v->reason),
		    "event %llu cannot be linked (oversized field)",
		    (unsigned long long)r->chain_seq);
		return 1;
	}
	if (r->hash == NULL || r->hash_len != CHAIN_HASH_LEN ||
	    memcmp(link, r->hash, CHAIN_HASH_LEN) != 0) {
		v->state = CHAIN_VERIFY_BROKEN;
		v->broken_seq = r->chain_seq;
		memcpy(v->expected, link, CHAIN_HASH_LEN);
		v->expected_len = CHAIN_HASH_LEN;
		set_found(v, r->hash, r->hash_len);
		snprintf(v->reason, sizeof(v->reason), "%s",
		    r->hash_len != CHAIN_HASH_LEN
			? "stored hash is malformed"
			: "stored hash does not match the event");
		return 1;
	}
	if (v->checkpoint_seq != 0 && r->chain_seq == v->checkpoint_seq) {
		v->checkpoint_seen = 1;
		if (memcmp(link, v->checkpoint_hash, CHAIN_HASH_LEN) != 0) {
			v->state = CHAIN_VERIFY_BROKEN;
			v->broken_seq = r->chain_seq;
			memcpy(v->expected, v->checkpoint_hash, CHAIN_HASH_LEN);
			v->expected_len = CHAIN_HASH_LEN;
			set_found(v, link, CHAIN_HASH_LEN);
			snprintf(v->reason, sizeof(v->reason),
			    "chain differs from the checkpoint at seq %llu",
			    (unsigned long long)r->chain_seq);
			return 1;
		}
	}
	v->head_seq = r->chain_seq;
	memcpy(v->head_hash, link, CHAIN_HASH_LEN);
	v->events++;
	return 0;
}

int
chain_verify_finish(struct chain_verifier *v)
{
	if (v->state == CHAIN_VERIFY_BROKEN)
		return 1;
	if (v->checkpoint_seq != 0 && !v->checkpoint_seen) {
		v->state = CHAIN_VERIFY_BROKEN;
		v->broken_seq = v->checkpoint_seq;
		memcpy(v->expected, v->checkpoint_hash, CHAIN_HASH_LEN);
		v->expected_len = CHAIN_HASH_LEN;
		v->found_len = 0;
		snprintf(v->reason, sizeof(v->reason),
		    "truncated: checkpoint at seq %llu, head now %llu",
		    (unsigned long long)v->checkpoint_seq,
		    (unsigned long long)v->head_seq);
		return 1;
	}
	return 0;
}

static size_t
put_be(uint8_t *p, uint64_t v, int n)
{
	int i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
	return (size_t)n;
}

int
chain_checkpoint_message(const char *tenant, uint64_t chain_seq,
    const uint8_t hash[CHAIN_HASH_LEN], int64_t ts_ms, uint8_t *out,
    size_t size)
{
	const size_t magic = sizeof(CHAIN_CHECKPOINT_MAGIC) - 1;
	size_t len, n = 0;

	if (tenant == NULL || hash == NULL || out == NULL)
		return -EINVAL;
	len = strnlen(tenant, NAME_MAX_LEN + 1);
	if (len == 0 || len > NAME_MAX_LEN ||
	    size < magic + 4 + len + 8 + CHAIN_HASH_LEN + 8)
		return -EINVAL;
	memcpy(out, CHAIN_CHECKPOINT_MAGIC, magic);
	n += magic;
	n += put_be(out + n, len, 4);
	memcpy(out + n, tenant, len);
	n += len;
	n += put_be(out + n, chain_seq, 8);
	memcpy(out + n, hash, CHAIN_HASH_LEN);
	n += CHAIN_HASH_LEN;
	n += put_be(out + n, (uint64_t)ts_ms, 8);
	return (int)n;
}

int
chain_anchor_message(const char *tenant, uint64_t chain_seq,
    const uint8_t hash[CHAIN_HASH_LEN], int64_t ts_ms, int64_t before_ms,
    uint8_t *out, size_t size)
{
	const size_t magic = sizeof(CHAIN_ANCHOR_MAGIC) - 1;
	size_t len, n = 0;

	if (tenant == NULL || hash == NULL || out == NULL)
		return -EINVAL;
	len = strnlen(tenant, NAME_MAX_LEN + 1);
	if (len == 0 || len > NAME_MAX_LEN ||
	    size < magic + 4 + len + 8 + CHAIN_HASH_LEN + 8 + 8)
		return -EINVAL;
	memcpy(out, CHAIN_ANCHOR_MAGIC, magic);
	n += magic;
	n += put_be(out + n, len, 4);
	memcpy(out + n, tenant, len);
	n += len;
	n += put_be(out + n, chain_seq, 8);
	memcpy(out + n, hash, CHAIN_HASH_LEN);
	n += CHAIN_HASH_LEN;
	n += put_be(out + n, (uint64_t)ts_ms, 8);
	n += put_be(out + n, (uint64_t)before_ms, 8);
	return (int)n;
}
