/*
 * vault_key.c: the vault's file formats and crash-safe file writes.
 * Runs in palyrad (the supervisor), as root; touches only the paths it is
 * given. No supervisor state: tests/unit/test_vault_keys.c builds it alone.
 *
 * A wrapped data key (STATE/vault/OWNER.key, 76 bytes):
 *   "PVK1" | nonce (24) | XChaCha20-Poly1305(data key (32)) + tag (16)
 * under the master key, with additional data "palyra-vault-key\0" OWNER:
 * a key file copied to another tenant's name does not unwrap.
 *
 * A host secret (STATE/vault/host/NAME.sec):
 *   "PHS1" | nonce (24) | XChaCha20-Poly1305(record) + tag (16)
 * under the host data key, with additional data "palyra-host-secret\0"
 * NAME; the record is version (u32), created and updated times (i64
 * milliseconds), the description's length (u16) and bytes, then the
 * value, integers big-endian. Every byte of it is authenticated.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "vault.h"

#define KEY_AD_PREFIX "palyra-vault-key"
#define SECRET_AD_PREFIX "palyra-host-secret"
/* The prefix, its NUL, and a name of at most 255 bytes. */
#define AD_MAX (32 + 256)

/* prefix NUL name into ad; its length, or 0 when name is too long. */
static size_t
ad_make(uint8_t ad[AD_MAX], const char *prefix, const char *name)
{
	size_t plen = strlen(prefix) + 1, nlen = strlen(name);

	if (plen + nlen > AD_MAX)
		return 0;
	memcpy(ad, prefix, plen);
	memcpy(ad + plen, name, nlen);
	return plen + nlen;
}

int
sup_vault_key_wrap(const uint8_t master[SUP_VAULT_KEY_LEN], const char *owner,
    const uint8_t key[SUP_VAULT_KEY_LEN], uint8_t out[SUP_VAULT_KEY_FILE_LEN])
{
	uint8_t ad[AD_MAX], *nonce = out + 4;
	unsigned long long clen;
	size_t adlen;

	if ((adlen = ad_make(ad, KEY_AD_PREFIX, owner)) == 0)
		return -EINVAL;
	memcpy(out, SUP_VAULT_KEY_MAGIC, 4);
	randombytes_buf(nonce, SUP_VAULT_NONCE_LEN);
	crypto_aead_xchacha20poly1305_ietf_encrypt(
	    out + 4 + SUP_VAULT_NONCE_LEN, &clen, key, SUP_VAULT_KEY_LEN, ad,
	    adlen, NULL, nonce, master);
	return clen == SUP_VAULT_KEY_LEN + SUP_VAULT_TAG_LEN ? 0 : -EINVAL;
}

int
sup_vault_key_unwrap(const uint8_t master[SUP_VAULT_KEY_LEN], const char *owner,
    const uint8_t *in, size_t len, uint8_t key[SUP_VAULT_KEY_LEN])
{
	uint8_t ad[AD_MAX];
	unsigned long long klen;
	size_t adlen;

	if (len != SUP_VAULT_KEY_FILE_LEN ||
	    memcmp(in, SUP_VAULT_KEY_MAGIC, 4) != 0)
		return -EINVAL;
	if ((adlen = ad_make(ad, KEY_AD_PREFIX, owner)) == 0)
		return -EINVAL;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(key, &klen, NULL,
		in + 4 + SUP_VAULT_NONCE_LEN,
		SUP_VAULT_KEY_LEN + SUP_VAULT_TAG_LEN, ad, adlen, in + 4,
		master) != 0 ||
	    klen != SUP_VAULT_KEY_LEN) {
		sodium_memzero(key, SUP_VAULT_KEY_LEN);
		return -EBADMSG;
	}
	return 0;
}

static void
put_be(uint8_t *p, uint64_t v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

static uint64_t
get_be(const uint8_t *p, size_t n)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

int
sup_vault_secret_seal(const uint8_t key[SUP_VAULT_KEY_LEN], const char *name,
    const struct sup_vault_meta *meta, const uint8_t *value, size_t len,
    uint8_t **out, size_t *outlen)
{
	uint8_t ad[AD_MAX], *rec, *file;
	size_t adlen, dlen = strlen(meta->description), rlen;
	unsigned long long clen;

	*out = NULL;
	if (len > SUP_VAULT_VALUE_MAX || dlen > SUP_VAULT_DESC_MAX ||
	    (adlen = ad_make(ad, SECRET_AD_PREFIX, name)) == 0)
		return -EINVAL;
	rlen = SUP_VAULT_RECORD_HEAD + dlen + len;
	if ((rec = malloc(rlen)) == NULL ||
	    (file = malloc(
		 4 + SUP_VAULT_NONCE_LEN + rlen + SUP_VAULT_TAG_LEN)) == NULL) {
		free(rec);
		return -ENOMEM;
	}
	put_be(rec, meta->version, 4);
	put_be(rec + 4, (uint64_t)meta->created_ms, 8);
	put_be(rec + 12, (uint64_t)meta->updated_ms, 8);
	put_be(rec + 20, dlen, 2);
	memcpy(rec + SUP_VAULT_RECORD_HEAD, meta->description, dlen);
	if (len > 0)
		memcpy(rec + SUP_VAULT_RECORD_HEAD + dlen, value, len);
	memcpy(file, SUP_VAULT_SECRET_MAGIC, 4);
	randombytes_buf(file + 4, SUP_VAULT_NONCE_LEN);
	crypto_aead_xchacha20poly1305_ietf_encrypt(
	    file + 4 + SUP_VAULT_NONCE_LEN, &clen, rec, rlen, ad, adlen, NULL,
	    file + 4, key);
	sodium_memzero(rec, rlen);
	free(rec);
	*out = file;
	*outlen = 4 + SUP_VAULT_NONCE_LEN + (size_t)clen;
	return 0;
}

ssize_t
sup_vault_secret_open(const uint8_t key[SUP_VAULT_KEY_LEN], const char *name,
    const uint8_t *in, size_t len, struct sup_vault_meta *meta, uint8_t *value,
    size_t size)
{
	uint8_t ad[AD_MAX], *rec;
	size_t adlen, dlen, vlen, clen;
	unsigned long long rlen;
	ssize_t rc;

	if (len < 4 + SUP_VAULT_NONCE_LEN + SUP_VAULT_RECORD_HEAD +
		      SUP_VAULT_TAG_LEN ||
	    len > SUP_VAULT_SECRET_FILE_MAX ||
	    memcmp(in, SUP_VAULT_SECRET_MAGIC, 4) != 0 ||
	    (adlen = ad_make(ad, SECRET_AD_PREFIX, name)) == 0)
		return -EINVAL;
	clen = len - 4 - SUP_VAULT_NONCE_LEN;
	if ((rec = malloc(clen)) == NULL)
		return -ENOMEM;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(rec, &rlen, NULL,
		in + 4 + SUP_VAULT_NONCE_LEN, clen, ad, adlen, in + 4,
		key) != 0) {
		free(rec);
		return -EBADMSG;
	}
	dlen = (size_t)get_be(rec + 20, 2);
	if (rlen < SUP_VAULT_RECORD_HEAD || dlen > SUP_VAULT_DESC_MAX ||
	    dlen > rlen - SUP_VAULT_RECORD_HEAD) {
		rc = -EINVAL;
		goto out;
	}
	vlen = (size_t)rlen - SUP_VAULT_RECORD_HEAD - dlen;
	memset(meta, 0, sizeof(*meta));
	meta->version = (uint32_t)get_be(rec, 4);
	meta->created_ms = (int64_t)get_be(rec + 4, 8);
	meta->updated_ms = (int64_t)get_be(rec + 12, 8);
	memcpy(meta->description, rec + SUP_VAULT_RECORD_HEAD, dlen);
	meta->description[dlen] = '\0';
	meta->size = vlen;
	rc = (ssize_t)vlen;
	if (value != NULL) {
		if (vlen > size)
			rc = -E2BIG;
		else
			memcpy(value, rec + SUP_VAULT_RECORD_HEAD + dlen, vlen);
	}
out:
	sodium_memzero(rec, clen);
	free(rec);
	return rc;
}

ssize_t
sup_vault_file_read(const char *path, uint8_t *buf, size_t size)
{
	struct stat st;
	size_t len = 0;
	ssize_t n;
	int fd, rc;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1)
		return -errno;
	/* A key others may read has leaked: refuse it rather than use it. */
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    (st.st_mode & 077) != 0 ||
	    (st.st_uid != 0 && st.st_uid != geteuid())) {
		close(fd);
		return -EPERM;
	}
	for (;;) {
		if (len == size) {
			/* One byte more says the file is too long. */
			uint8_t extra;

			n = read(fd, &extra, 1);
			if (n == 1) {
				close(fd);
				return -EFBIG;
			}
			if (n == 0)
				break;
		} else
			n = read(fd, buf + len, size - len);
		if (n == 0)
			break;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			close(fd);
			return rc;
		}
		len += (size_t)n;
	}
	close(fd);
	return (ssize_t)len;
}

int
sup_vault_dir_sync(const char *dir)
{
	int fd, rc = 0;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -errno;
	if (fsync(fd) == -1)
		rc = -errno;
	close(fd);
	return rc;
}

int
sup_vault_file_write(const char *path, const uint8_t *data, size_t len)
{
	char tmp[PATH_MAX], dir[PATH_MAX];
	ssize_t n;
	size_t off = 0;
	int fd, rc;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp) ||
	    (size_t)snprintf(dir, sizeof(dir), "%s", path) >= sizeof(dir))
		return -ENAMETOOLONG;
	/* A temporary file left by a crash is incomplete by definition. */
	(void)unlink(tmp);
	if ((fd = open(tmp,
		 O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600)) ==
	    -1)
		return -errno;
	while (off < len) {
		if ((n = write(fd, data + off, len - off)) < 0) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		off += (size_t)n;
	}
	if (fsync(fd) == -1)
		goto fail;
	if (close(fd) == -1) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) == -1)
		goto fail;
	return sup_vault_dir_sync(dirname(dir));
fail:
	rc = -errno;
	if (fd != -1)
		close(fd);
	(void)unlink(tmp);
	return rc;
}

int
sup_vault_master_read(const char *path, uint8_t key[SUP_VAULT_KEY_LEN])
{
	uint8_t buf[SUP_VAULT_KEY_LEN];
	ssize_t n;

	n = sup_vault_file_read(path, buf, sizeof(buf));
	if (n >= 0 && n != SUP_VAULT_KEY_LEN)
		n = -EINVAL;
	if (n == -EFBIG)
		n = -EINVAL;
	if (n < 0) {
		sodium_memzero(buf, sizeof(buf));
		return (int)n;
	}
	memcpy(key, buf, SUP_VAULT_KEY_LEN);
	sodium_memzero(buf, sizeof(buf));
	return 0;
}
