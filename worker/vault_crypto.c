/*
 * vault_crypto.c: sealing and opening vault values (palyra-worker only; the
 * data key never leaves the worker). libsodium's
 * crypto_aead_xchacha20poly1305_ietf with a random 24-byte nonce per
 * seal and the additional data "TENANT\0NAME": a ciphertext is bound to
 * its tenant and its name, so journald (or anyone with the database)
 * swapping two rows, or moving one between tenants, makes it fail to
 * open instead of yielding another secret. Pure: touches only its
 * arguments.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "vault.h"

/* tenant NUL name, into ad (NAME_MAX_LEN + 1 + VAULT_NAME_MAX bytes). */
static int
additional_data(const char *tenant, const char *name, uint8_t *ad,
    size_t *adlen)
{
	size_t tlen = strlen(tenant), nlen = strlen(name);

	if (tlen == 0 || tlen > NAME_MAX_LEN || nlen == 0 ||
	    nlen > VAULT_NAME_MAX)
		return -EINVAL;
	memcpy(ad, tenant, tlen);
	ad[tlen] = '\0';
	memcpy(ad + tlen + 1, name, nlen);
	*adlen = tlen + 1 + nlen;
	return 0;
}

int
wrk_vault_seal(const uint8_t *key, const char *tenant, const char *name,
    const uint8_t *value, size_t len, uint8_t *ct,
    uint8_t nonce[WRK_VAULT_NONCE_LEN])
{
	uint8_t ad[NAME_MAX_LEN + 1 + VAULT_NAME_MAX];
	unsigned long long ctlen;
	size_t adlen;

	if (len == 0 || len > VAULT_VALUE_MAX ||
	    additional_data(tenant, name, ad, &adlen) < 0)
		return -EINVAL;
	randombytes_buf(nonce, WRK_VAULT_NONCE_LEN);
	if (crypto_aead_xchacha20poly1305_ietf_encrypt(ct, &ctlen, value, len,
	    ad, adlen, NULL, nonce, key) != 0 ||
	    ctlen != len + WRK_VAULT_TAG_LEN)
		return -EINVAL;
	return 0;
}

int
wrk_vault_open(const uint8_t *key, const char *tenant, const char *name,
    const uint8_t *ct, size_t ctlen, const uint8_t *nonce, size_t noncelen,
    uint8_t *out)
{
	uint8_t ad[NAME_MAX_LEN + 1 + VAULT_NAME_MAX];
	unsigned long long outlen;
	size_t adlen;

	if (ctlen <= WRK_VAULT_TAG_LEN ||
	    ctlen > VAULT_VALUE_MAX + WRK_VAULT_TAG_LEN ||
	    noncelen != WRK_VAULT_NONCE_LEN ||
	    additional_data(tenant, name, ad, &adlen) < 0)
		return -EBADMSG;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(out, &outlen, NULL, ct,
	    ctlen, ad, adlen, nonce, key) != 0 ||
	    outlen != ctlen - WRK_VAULT_TAG_LEN) {
		sodium_memzero(out, ctlen - WRK_VAULT_TAG_LEN);
		return -EBADMSG;
	}
	return 0;
}
