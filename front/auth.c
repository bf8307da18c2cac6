/*
 * auth.c: bearer tokens in palyra-front: parsing the Authorization header,
 * the keyed hash under which tokens are stored, the admin token check and
 * the generation of new tenant tokens.
 *
 * Process: palyra-front. Touches the token keys in the context (read only)
 * and libsodium's random source. Tokens in clear are never logged; callers
 * wipe them after use.
 */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "front.h"

#define FE_TOKEN_RANDOM_LEN 32
#define FE_TOKEN_ID_RANDOM_LEN 8

/* RFC 6750 b64token characters. */
static int
token_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	       c == '~' || c == '+' || c == '/' || c == '=';
}

/*
 * Splits "Bearer TOKEN" (scheme case-insensitive, one space). Returns 0
 * with token pointing into value, or -EINVAL for anything else, including
 * a token longer than FE_TOKEN_MAX_LEN.
 */
int
fe_auth_bearer(
    const char *value, size_t len, const char **token, size_t *tokenlen)
{
	static const char scheme[] = "Bearer ";
	size_t slen = sizeof(scheme) - 1, i;

	if (len <= slen || strncasecmp(value, scheme, slen) != 0)
		return -EINVAL;
	value += slen;
	len -= slen;
	if (len > FE_TOKEN_MAX_LEN)
		return -EINVAL;
	for (i = 0; i < len; i++)
		if (!token_char((unsigned char)value[i]))
			return -EINVAL;
	*token = value;
	*tokenlen = len;
	return 0;
}

/* Keyed hash of a token as journald stores it. Returns 0 or -EINVAL. */
int
fe_auth_hash(const struct fe_ctx *ctx, const char *token, size_t len,
    uint8_t out[FE_HASH_LEN])
{
	if (crypto_generichash(out, FE_HASH_LEN, (const unsigned char *)token,
		len, ctx->token_hash_key, FE_HASH_LEN) != 0)
		return -EINVAL;
	return 0;
}

/* Returns 1 if header presents the admin token, else 0. */
int
fe_auth_admin_ok(const struct fe_ctx *ctx, const char *header)
{
	uint8_t hash[FE_HASH_LEN];
	const char *token;
	size_t len;
	int ok;

	if (header == NULL || !ctx->have_keys ||
	    fe_auth_bearer(header, strlen(header), &token, &len) < 0)
		return 0;
	if (fe_auth_hash(ctx, token, len, hash) < 0)
		return 0;
	ok = sodium_memcmp(hash, ctx->admin_token_hash, FE_HASH_LEN) == 0;
	sodium_memzero(hash, sizeof(hash));
	return ok;
}

/*
 * Makes a new tenant token, "pt_" and 43 base64url characters of 32 random
 * bytes, and its public id, 16 hex digits. Returns 0 or -ENOSPC.
 */
int
fe_auth_new_token(char *token, size_t tokensize, char *token_id, size_t idsize)
{
	unsigned char random[FE_TOKEN_RANDOM_LEN];
	unsigned char id[FE_TOKEN_ID_RANDOM_LEN];
	size_t plen = sizeof(FE_TOKEN_PREFIX) - 1;

	if (tokensize < plen + sodium_base64_ENCODED_LEN(sizeof(random),
				   sodium_base64_VARIANT_URLSAFE_NO_PADDING) ||
	    idsize < sizeof(id) * 2 + 1)
		return -ENOSPC;
	randombytes_buf(random, sizeof(random));
	randombytes_buf(id, sizeof(id));
	memcpy(token, FE_TOKEN_PREFIX, plen);
	sodium_bin2base64(token + plen, tokensize - plen, random,
	    sizeof(random), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_bin2hex(token_id, idsize, id, sizeof(id));
	sodium_memzero(random, sizeof(random));
	return 0;
}
