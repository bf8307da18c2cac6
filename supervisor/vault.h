/*
 * vault.h: the vault's keys in the supervisor, palyrad (DESIGN section 9).
 * master.key wraps one data key per tenant (STATE/vault/TENANT.key) and
 * the host vault's data key (STATE/vault/@host.key); the host vault's
 * secrets are STATE/vault/host/NAME.sec. Only palyrad (root) reads these
 * files; a tenant's data key is unwrapped only to be sent to that tenant's
 * workers, and wiped at once.
 *
 * vault_key.c holds the file formats and the crash-safe file writes (no
 * supervisor state, unit-tested in tests/unit/test_vault_keys.c);
 * vault.c the start-up checks, the recovery of an interrupted rotation,
 * the rotation and the tenants' keys; vault_admin.c the host vault and the
 * front's IPC_VAULT_ADMIN.
 */
#ifndef PALYRA_SUP_VAULT_H
#define PALYRA_SUP_VAULT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SUP_VAULT_KEY_LEN 32
#define SUP_VAULT_NONCE_LEN 24
#define SUP_VAULT_TAG_LEN 16
/* A wrapped key file: "PVK1", the nonce, the sealed 32-byte key. */
#define SUP_VAULT_KEY_MAGIC "PVK1"
#define SUP_VAULT_KEY_FILE_LEN                                                 \
	(4 + SUP_VAULT_NONCE_LEN + SUP_VAULT_KEY_LEN + SUP_VAULT_TAG_LEN)
/* A host secret file: "PHS1", the nonce, the sealed record (version,
 * created and updated times, description, value). */
#define SUP_VAULT_SECRET_MAGIC "PHS1"
#define SUP_VAULT_RECORD_HEAD (4 + 8 + 8 + 2)
#define SUP_VAULT_VALUE_MAX (64 * 1024)
#define SUP_VAULT_DESC_MAX 256
#define SUP_VAULT_SECRET_FILE_MAX                                              \
	(4 + SUP_VAULT_NONCE_LEN + SUP_VAULT_RECORD_HEAD +                     \
	    SUP_VAULT_DESC_MAX + SUP_VAULT_VALUE_MAX + SUP_VAULT_TAG_LEN)
/* Host secrets listed and kept at most. */
#define SUP_VAULT_HOST_MAX 256
/* The owner of the host vault's data key: '@' is never in a tenant name
 * (cfg_name_valid), so vault/@host.key never collides with a tenant's. */
#define SUP_VAULT_HOST_OWNER "@host"

/* A host secret's metadata, authenticated with its value. */
struct sup_vault_meta {
	uint32_t version; /* 1 at creation, +1 at every put */
	int64_t created_ms;
	int64_t updated_ms;
	char description[SUP_VAULT_DESC_MAX + 1];
	size_t size; /* of the value */
};

/* vault_key.c: formats and files; each returns 0 (or a length) or a
 * negative errno: -EINVAL a malformed file, -EBADMSG one that does not
 * authenticate (wrong key, wrong owner, damaged). */
int sup_vault_key_wrap(const uint8_t master[SUP_VAULT_KEY_LEN],
    const char *owner, const uint8_t key[SUP_VAULT_KEY_LEN],
    uint8_t out[SUP_VAULT_KEY_FILE_LEN]);
int sup_vault_key_unwrap(const uint8_t master[SUP_VAULT_KEY_LEN],
    const char *owner, const uint8_t *in, size_t len,
    uint8_t key[SUP_VAULT_KEY_LEN]);
/* Seals value under the host data key; *out (malloc'd) is the file. */
int sup_vault_secret_seal(const uint8_t key[SUP_VAULT_KEY_LEN],
    const char *name, const struct sup_vault_meta *meta, const uint8_t *value,
    size_t len, uint8_t **out, size_t *outlen);
/* Opens a host secret file: its metadata, and its value into value (of
 * size bytes; NULL for the metadata alone). Returns the value's length,
 * -E2BIG when it does not fit, or an error above. */
ssize_t sup_vault_secret_open(const uint8_t key[SUP_VAULT_KEY_LEN],
    const char *name, const uint8_t *in, size_t len,
    struct sup_vault_meta *meta, uint8_t *value, size_t size);
/* A secret file of root (or palyrad's user) that nobody else may read,
 * at most size bytes. Returns its length or -errno (-EPERM: its mode or
 * owner; -EFBIG: longer than size). */
ssize_t sup_vault_file_read(const char *path, uint8_t *buf, size_t size);
/* Writes path crash-safely: PATH.tmp (O_EXCL, 0600), fsync, rename,
 * fsync of the directory. Returns 0 or -errno. */
int sup_vault_file_write(const char *path, const uint8_t *data, size_t len);
int sup_vault_dir_sync(const char *dir);
/* master.key or master.key.new: exactly SUP_VAULT_KEY_LEN bytes. */
int sup_vault_master_read(const char *path, uint8_t key[SUP_VAULT_KEY_LEN]);

struct cfg;
struct sup_ctx;
struct sup_child;
struct Palyra__Ipc__VaultAdmin;

/* vault.c */
/* palyrad -n and start: every vault/ *.key unwraps with master.key (or
 * master.key.new after an interrupted rotation). Reads only. Returns 0,
 * or -1 with "STATE/vault/NAME.key: ..." in err. */
int sup_vault_check(const struct cfg *, char *err, size_t errlen);
/* Start: the vault directories, an interrupted rotation finished, every
 * key checked, the host key created. Returns 0 or -1 (logged). */
int sup_vault_init(struct sup_ctx *);
/* The tenant's data key, created on first use. 0 or -errno (logged);
 * the caller wipes key. */
int sup_vault_tenant_key(
    struct sup_ctx *, const char *tenant, uint8_t key[SUP_VAULT_KEY_LEN]);
/* A new master key; every key re-wrapped. Returns how many, or -1 with
 * a reason in err. */
int sup_vault_rotate(const char *state_dir, char *err, size_t errlen);
/* The host data key (created when missing). 0 or -errno; caller wipes. */
int sup_vault_host_key(const char *state_dir, uint8_t key[SUP_VAULT_KEY_LEN]);

/* vault_admin.c */
/* `api-key vault:host/NAME`: the value into buf. Its length, or -errno
 * (-ENOENT: no such secret). The caller wipes buf. */
ssize_t sup_vault_host_secret(
    const char *state_dir, const char *name, uint8_t *buf, size_t size);
/* The front's IPC_VAULT_ADMIN; answers IPC_VAULT_ADMIN_REPLY. */
void sup_vault_admin(struct sup_ctx *, struct sup_child *from,
    uint32_t request_id, const struct Palyra__Ipc__VaultAdmin *);

#endif
