/*
 * test_vault_keys.c: unit tests of the vault's file formats in the
 * supervisor (supervisor/vault_key.c): a tenant's data key wrapped by the
 * master key (round trip; every tampered byte, another owner, another
 * master key and a bad magic or length refused), a host secret sealed
 * under the host key (round trip with its metadata, tampering and another
 * name refused, a value too large for the caller's buffer), and the
 * secret files (written 0600 through a temporary name, refused when
 * others may read them or when longer than asked).
 */
#include <sys/stat.h>

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

/* The code under test, built into this program. */
#include "../../supervisor/vault_key.c"

static void
fill(uint8_t *p, size_t n, uint8_t seed)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(seed + i * 7);
}

static void
test_wrap_round_trip(void **state)
{
	uint8_t master[32], key[32], out[32], file[SUP_VAULT_KEY_FILE_LEN];
	uint8_t again[SUP_VAULT_KEY_FILE_LEN];

	(void)state;
	fill(master, sizeof(master), 1);
	fill(key, sizeof(key), 99);
	assert_int_equal(sup_vault_key_wrap(master, "acme", key, file), 0);
	assert_int_equal(SUP_VAULT_KEY_FILE_LEN, 76);
	assert_memory_equal(file, "PVK1", 4);
	/* The key is not in the file in clear. */
	assert_null(memmem(file, sizeof(file), key, 8));
	assert_int_equal(
	    sup_vault_key_unwrap(master, "acme", file, sizeof(file), out), 0);
	assert_memory_equal(out, key, sizeof(key));
	/* A fresh nonce each time: two wraps differ, both unwrap. */
	assert_int_equal(sup_vault_key_wrap(master, "acme", key, again), 0);
	assert_memory_not_equal(file, again, sizeof(file));
	assert_int_equal(
	    sup_vault_key_unwrap(master, "acme", again, sizeof(again), out), 0);
	assert_memory_equal(out, key, sizeof(key));
}

static void
test_wrap_tampered_refused(void **state)
{
	uint8_t master[32], key[32], out[32], file[SUP_VAULT_KEY_FILE_LEN];
	size_t i;

	(void)state;
	fill(master, sizeof(master), 3);
	fill(key, sizeof(key), 5);
	assert_int_equal(sup_vault_key_wrap(master, "acme", key, file), 0);
	for (i = 0; i < sizeof(file); i++) {
		file[i] ^= 0x01;
		assert_int_not_equal(sup_vault_key_unwrap(master, "acme", file,
					 sizeof(file), out),
		    0);
		file[i] ^= 0x01;
	}
	/* The magic is checked before anything else. */
	file[0] = 'X';
	assert_int_equal(
	    sup_vault_key_unwrap(master, "acme", file, sizeof(file), out),
	    -EINVAL);
	file[0] = 'P';
	file[10] ^= 0x80;
	assert_int_equal(
	    sup_vault_key_unwrap(master, "acme", file, sizeof(file), out),
	    -EBADMSG);
	file[10] ^= 0x80;
	assert_int_equal(
	    sup_vault_key_unwrap(master, "acme", file, sizeof(file) - 1, out),
	    -EINVAL);
	assert_int_equal(
	    sup_vault_key_unwrap(master, "acme", file, sizeof(file), out), 0);
}

static void
test_wrap_wrong_owner_or_master_refused(void **state)
{
	uint8_t master[32], other[32], key[32], out[32];
	uint8_t file[SUP_VAULT_KEY_FILE_LEN];

	(void)state;
	fill(master, sizeof(master), 7);
	memcpy(other, master, sizeof(other));
	other[31] ^= 1;
	fill(key, sizeof(key), 11);
	assert_int_equal(sup_vault_key_wrap(master, "acme", key, file), 0);
	/* A key file copied to another tenant's name does not unwrap. */
	assert_int_equal(
	    sup_vault_key_unwrap(master, "acme2", file, sizeof(file), out),
	    -EBADMSG);
	assert_int_equal(
	    sup_vault_key_unwrap(master, "acm", file, sizeof(file), out),
	    -EBADMSG);
	assert_int_equal(
	    sup_vault_key_unwrap(master, "@host", file, sizeof(file), out),
	    -EBADMSG);
	/* Another master key: refused, and nothing of the key leaks. */
	memset(out, 0xaa, sizeof(out));
	assert_int_equal(
	    sup_vault_key_unwrap(other, "acme", file, sizeof(file), out),
	    -EBADMSG);
	assert_memory_not_equal(out, key, sizeof(key));
}

static void
test_secret_round_trip(void **state)
{
	uint8_t key[32], value[64], *file;
	struct sup_vault_meta in, meta;
	const char *v = "sk-host-0123456789";
	size_t flen, i;
	ssize_t n;

	(void)state;
	fill(key, sizeof(key), 21);
	memset(&in, 0, sizeof(in));
	in.version = 3;
	in.created_ms = 1700000000000LL;
	in.updated_ms = 1700000001234LL;
	snprintf(in.description, sizeof(in.description), "shared key");
	assert_int_equal(sup_vault_secret_seal(key, "openai", &in,
			     (const uint8_t *)v, strlen(v), &file, &flen),
	    0);
	assert_memory_equal(file, "PHS1", 4);
	assert_null(memmem(file, flen, v, strlen(v)));
	n = sup_vault_secret_open(
	    key, "openai", file, flen, &meta, value, sizeof(value));
	assert_int_equal(n, (ssize_t)strlen(v));
	assert_memory_equal(value, v, strlen(v));
	assert_int_equal(meta.version, 3);
	assert_int_equal(meta.created_ms, in.created_ms);
	assert_int_equal(meta.updated_ms, in.updated_ms);
	assert_string_equal(meta.description, "shared key");
	assert_int_equal(meta.size, strlen(v));
	/* The metadata alone. */
	assert_int_equal(
	    sup_vault_secret_open(key, "openai", file, flen, &meta, NULL, 0),
	    (ssize_t)strlen(v));
	/* A buffer too small. */
	assert_int_equal(
	    sup_vault_secret_open(key, "openai", file, flen, &meta, value, 4),
	    -E2BIG);
	/* Another name (a file renamed), any tampered byte: refused. */
	assert_int_equal(sup_vault_secret_open(key, "openai2", file, flen,
			     &meta, value, sizeof(value)),
	    -EBADMSG);
	for (i = 4; i < flen; i++) {
		file[i] ^= 0x40;
		assert_int_equal(sup_vault_secret_open(key, "openai", file,
				     flen, &meta, value, sizeof(value)),
		    -EBADMSG);
		file[i] ^= 0x40;
	}
	assert_int_equal(sup_vault_secret_open(key, "openai", file, 20, &meta,
			     value, sizeof(value)),
	    -EINVAL);
	free(file);
	/* Bounds of what is sealed. */
	memset(in.description, 'd', SUP_VAULT_DESC_MAX);
	in.description[SUP_VAULT_DESC_MAX] = '\0';
	assert_int_equal(
	    sup_vault_secret_seal(key, "x", &in, (const uint8_t *)v,
		SUP_VAULT_VALUE_MAX + 1, &file, &flen),
	    -EINVAL);
	assert_null(file);
}

static void
test_files(void **state)
{
	char dir[] = "/tmp/test_vault_keys.XXXXXX", path[256];
	uint8_t buf[80], data[76];
	struct stat st;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/acme.key", dir);
	fill(data, sizeof(data), 9);
	assert_int_equal(sup_vault_file_write(path, data, sizeof(data)), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(sup_vault_file_read(path, buf, sizeof(buf)), 76);
	assert_memory_equal(buf, data, sizeof(data));
	/* Longer than asked. */
	assert_int_equal(sup_vault_file_read(path, buf, 75), -EFBIG);
	assert_int_equal(sup_vault_file_read(path, buf, 76), 76);
	/* A stale temporary file does not stop the next write. */
	snprintf(path, sizeof(path), "%s/acme.key.tmp", dir);
	assert_int_equal(sup_vault_file_write(path, data, 3), 0);
	snprintf(path, sizeof(path), "%s/acme.key", dir);
	assert_int_equal(sup_vault_file_write(path, data, 10), 0);
	assert_int_equal(sup_vault_file_read(path, buf, sizeof(buf)), 10);
	/* Readable by others: refused. */
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(sup_vault_file_read(path, buf, sizeof(buf)), -EPERM);
	assert_int_equal(sup_vault_master_read(path, buf), -EPERM);
	assert_int_equal(chmod(path, 0600), 0);
	/* A master key is exactly 32 bytes. */
	assert_int_equal(sup_vault_master_read(path, buf), -EINVAL);
	assert_int_equal(sup_vault_file_write(path, data, 32), 0);
	assert_int_equal(sup_vault_master_read(path, buf), 0);
	assert_memory_equal(buf, data, 32);
	snprintf(path, sizeof(path), "%s/missing", dir);
	assert_int_equal(sup_vault_file_read(path, buf, sizeof(buf)), -ENOENT);
	unlink(path);
	snprintf(path, sizeof(path), "%s/acme.key", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/acme.key.tmp", dir);
	unlink(path);
	assert_int_equal(rmdir(dir), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_wrap_round_trip),
	    cmocka_unit_test(test_wrap_tampered_refused),
	    cmocka_unit_test(test_wrap_wrong_owner_or_master_refused),
	    cmocka_unit_test(test_secret_round_trip),
	    cmocka_unit_test(test_files),
	};

	if (sodium_init() == -1)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
