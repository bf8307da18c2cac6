/*
 * chain.h: the per-tenant journal hash chain (DESIGN section 8).
 * Used by palyra-journald to link events and by verifiers to check them.
 *
 * hash(n) = SHA-256(hash(n-1) || canonical(n)), hash(0) = 32 zero bytes,
 * canonical(n) = u64be(chain_seq) || u32be(len run_id) || run_id ||
 *                u64be(run_seq) || i64be(timestamp_unix_ms) ||
 *                u32be(len payload) || payload
 * where payload is the stored protobuf encoding of the palyra.v1.RunEvent.
 */
#ifndef PALYRA_CHAIN_H
#define PALYRA_CHAIN_H

#include <stddef.h>
#include <stdint.h>

#define CHAIN_HASH_LEN 32

/* Computes the link for one event into out. Returns 0, -EINVAL for a NULL
 * or oversized input, or -ENOMEM/-EIO if the SHA-256 library fails. */
int	chain_link(const uint8_t prev[CHAIN_HASH_LEN], uint64_t chain_seq,
	    const char *run_id, uint64_t run_seq, int64_t timestamp_unix_ms,
	    const uint8_t *payload, size_t payload_len,
	    uint8_t out[CHAIN_HASH_LEN]);

/* Lower-case hex of a hash into out (65 bytes with the NUL). */
void	chain_hex(const uint8_t hash[CHAIN_HASH_LEN], char out[65]);

#endif
