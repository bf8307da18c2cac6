/*
 * session.c: the derivation of a session id from a session key (see
 * session.h), shared by palyra-worker and palyra-front.
 *
 * Runs in any process that links it; touches nothing but its arguments.
 */
#include <errno.h>
#include <string.h>

#include <sodium.h>

#include "session.h"

int
session_id_derive(const char *tenant, const char *principal,
    const char *session_key, char out[SESSION_ID_LEN + 1])
{
	crypto_generichash_state st;
	unsigned char hash[crypto_generichash_BYTES];
	char hex[2 * crypto_generichash_BYTES + 1];
	size_t keylen;

	if (session_key == NULL || session_key[0] == '\0')
		return -EINVAL;
	keylen = strnlen(session_key, WRK_SESSION_KEY_MAX_LEN + 1);
	if (keylen > WRK_SESSION_KEY_MAX_LEN)
		return -E2BIG;
	crypto_generichash_init(&st, NULL, 0, sizeof(hash));
	crypto_generichash_update(
	    &st, (const unsigned char *)tenant, strlen(tenant) + 1);
	crypto_generichash_update(
	    &st, (const unsigned char *)principal, strlen(principal) + 1);
	crypto_generichash_update(
	    &st, (const unsigned char *)session_key, keylen);
	crypto_generichash_final(&st, hash, sizeof(hash));
	sodium_bin2hex(hex, sizeof(hex), hash, sizeof(hash));
	memcpy(out, hex, SESSION_ID_LEN);
	out[SESSION_ID_LEN] = '\0';
	return 0;
}
