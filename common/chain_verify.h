/*
 * chain_verify.h: checking a tenant's journal hash chain (common/chain.h)
 * and the signed checkpoints of its head (DESIGN section 8). Pure: the
 * caller reads the rows (palyra-journald, in bounded chunks) and feeds them
 * in chain order; the verifier remembers only the last link.
 *
 * A checkpoint is an Ed25519 signature (libsodium crypto_sign_detached) by
 * journald's checkpoint key over
 *   "palyra.checkpoint.v1" || u32be(len tenant) || tenant ||
 *   u64be(chain_seq) || hash(chain_seq) || i64be(ts_ms)
 * so that truncating the chain below a signed head is detectable.
 */
#ifndef PALYRA_CHAIN_VERIFY_H
#define PALYRA_CHAIN_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#include "chain.h"
#include "limits.h"

#define CHAIN_CHECKPOINT_MAGIC "palyra.checkpoint.v1"
#define CHAIN_CHECKPOINT_MSG_MAX                                               \
	(sizeof(CHAIN_CHECKPOINT_MAGIC) - 1 + 4 + NAME_MAX_LEN + 8 +           \
	    CHAIN_HASH_LEN + 8)
#define CHAIN_REASON_MAX 160
/*
 * A prune anchor (journald/prune.c) is signed the same way over
 *   "palyra.anchor.v1" || u32be(len tenant) || tenant ||
 *   u64be(chain_seq) || hash(chain_seq) || i64be(ts_ms) || i64be(before_ms)
 * and a walk over a pruned chain starts from it.
 */
#define CHAIN_ANCHOR_MAGIC "palyra.anchor.v1"
#define CHAIN_ANCHOR_MSG_MAX                                                   \
	(sizeof(CHAIN_ANCHOR_MAGIC) - 1 + 4 + NAME_MAX_LEN + 8 +               \
	    CHAIN_HASH_LEN + 8 + 8)

/* One stored event as read from the events table. */
struct chain_row {
	uint64_t chain_seq;
	const char *run_id;
	uint64_t run_seq;
	int64_t ts_ms;
	const uint8_t *payload;
	size_t payload_len;
	const uint8_t *hash; /* as stored */
	size_t hash_len;
};

/*
 * The walk: OK while every link holds, BROKEN at the first that does not
 * (then further rows are ignored). A break records the chain_seq, the hash
 * recomputed from the previous link and the row (expected), the hash stored
 * in the row (found) and a reason in words.
 */
enum chain_verify_state {
	CHAIN_VERIFY_OK = 0,
	CHAIN_VERIFY_BROKEN,
};

struct chain_verifier {
	enum chain_verify_state state;
	uint64_t head_seq; /* last link checked; 0: none */
	uint8_t head_hash[CHAIN_HASH_LEN];
	uint64_t events;
	/* A checkpoint to match while walking (0: none). */
	uint64_t checkpoint_seq;
	uint8_t checkpoint_hash[CHAIN_HASH_LEN];
	int checkpoint_seen;
	/* The first break. */
	uint64_t broken_seq;
	uint8_t expected[CHAIN_HASH_LEN];
	size_t expected_len; /* 0 or CHAIN_HASH_LEN */
	uint8_t found[CHAIN_HASH_LEN];
	size_t found_len; /* 0..CHAIN_HASH_LEN */
	char reason[CHAIN_REASON_MAX];
};

/* Starts a walk at the genesis (chain_seq 1 follows 32 zero bytes). */
void chain_verify_init(struct chain_verifier *);
/* Starts a walk after a prune anchor: the next row must be chain_seq + 1
 * and link to hash. */
void chain_verify_start_at(
    struct chain_verifier *, uint64_t chain_seq, const uint8_t *hash);
/* The walk must also pass chain_seq with exactly this hash. */
void chain_verify_expect_checkpoint(
    struct chain_verifier *, uint64_t chain_seq, const uint8_t *hash);
/*
 * Checks the next row. Returns 0 while the chain holds, 1 once it is
 * broken (at this row or earlier), -EINVAL for a NULL argument, or
 * chain_link()'s error.
 */
int chain_verify_row(struct chain_verifier *, const struct chain_row *);
/*
 * Ends the walk at the last row read: a checkpoint beyond it means the
 * chain was truncated. Returns 0 when the chain holds, 1 when broken.
 */
int chain_verify_finish(struct chain_verifier *);

/*
 * The signed bytes of a checkpoint into out (CHAIN_CHECKPOINT_MSG_MAX).
 * Returns the length, or -EINVAL for a NULL argument or a tenant name that
 * is empty or longer than NAME_MAX_LEN.
 */
int chain_checkpoint_message(const char *tenant, uint64_t chain_seq,
    const uint8_t hash[CHAIN_HASH_LEN], int64_t ts_ms, uint8_t *out,
    size_t size);

/* The signed bytes of a prune anchor, as above. Same returns. */
int chain_anchor_message(const char *tenant, uint64_t chain_seq,
    const uint8_t hash[CHAIN_HASH_LEN], int64_t ts_ms, int64_t before_ms,
    uint8_t *out, size_t size);

#endif
