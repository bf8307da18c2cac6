/*
 * chain.c: the per-tenant journal hash chain (common/chain.h).
 *
 * Runs in palyra-journald (linking events as they are appended) and in any
 * verifier. Pure computation: no I/O, no allocation, no global state.
 * The canonical encoding is fixed by chain.h; every integer is big-endian
 * so a verifier in any language gets the same bytes.
 */
#include <errno.h>
#include <string.h>

#include <openssl/evp.h>

#include "chain.h"
#include "limits.h"

/*
 * A run id is at most 64 characters (journald checks that); the chain accepts
 * a little more so that it stays a pure encoding, yet refuses lengths that
 * could not come from a valid event.
 */
#define CHAIN_RUN_ID_MAX 256

static void
put_u32be(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void
put_u64be(uint8_t *p, uint64_t v)
{
	put_u32be(p, (uint32_t)(v >> 32));
	put_u32be(p + 4, (uint32_t)v);
}

int
chain_link(const uint8_t prev[CHAIN_HASH_LEN], uint64_t chain_seq,
    const char *run_id, uint64_t run_seq, int64_t timestamp_unix_ms,
    const uint8_t *payload, size_t payload_len, uint8_t out[CHAIN_HASH_LEN])
{
	uint8_t head[8 + 4];
	uint8_t mid[8 + 8 + 4];
	size_t run_id_len;
	unsigned int outlen = 0;
	EVP_MD_CTX *md;
	int ok;

	if (prev == NULL || run_id == NULL || out == NULL ||
	    (payload == NULL && payload_len > 0))
		return -EINVAL;
	run_id_len = strnlen(run_id, CHAIN_RUN_ID_MAX + 1);
	if (run_id_len > CHAIN_RUN_ID_MAX || payload_len > JNL_PAYLOAD_MAX)
		return -EINVAL;

	put_u64be(head, chain_seq);
	put_u32be(head + 8, (uint32_t)run_id_len);
	put_u64be(mid, run_seq);
	put_u64be(mid + 8, (uint64_t)timestamp_unix_ms);
	put_u32be(mid + 16, (uint32_t)payload_len);

	if ((md = EVP_MD_CTX_new()) == NULL)
		return -ENOMEM;
	ok = EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
	     EVP_DigestUpdate(md, prev, CHAIN_HASH_LEN) == 1 &&
	     EVP_DigestUpdate(md, head, sizeof(head)) == 1 &&
	     EVP_DigestUpdate(md, run_id, run_id_len) == 1 &&
	     EVP_DigestUpdate(md, mid, sizeof(mid)) == 1 &&
	     (payload_len == 0 ||
		 EVP_DigestUpdate(md, payload, payload_len) == 1) &&
	     EVP_DigestFinal_ex(md, out, &outlen) == 1 &&
	     outlen == CHAIN_HASH_LEN;
	EVP_MD_CTX_free(md);
	return ok ? 0 : -EIO;
}

void
chain_hex(const uint8_t hash[CHAIN_HASH_LEN], char out[65])
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < CHAIN_HASH_LEN; i++) {
		out[2 * i] = digits[hash[i] >> 4];
		out[2 * i + 1] = digits[hash[i] & 0x0f];
	}
	out[64] = '\0';
}
