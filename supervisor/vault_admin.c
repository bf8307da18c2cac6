/*
 * vault_admin.c: the host vault (secrets of scope host, for provider
 * credentials shared by tenants: `api-key vault:host/NAME`) and the
 * front's IPC_VAULT_ADMIN (/admin/v1/vault, front/vault_admin.c). Runs in
 * palyrad, as root; touches STATE/vault/host/NAME.sec and, through
 * vault.c, the key files and master.key.
 *
 * Each secret is sealed under the host data key (vault/@host.key, wrapped
 * by master.key) in a file of its own, written crash-safely (vault_key.c).
 * Values are never logged, only names; every copy is wiped after use.
 * After a PUT or a DELETE, journald gets the credentials again for its
 * redaction; workers get a changed credential at their next start.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "config.h"
#include "grpc_status.h"
#include "ipc.h"
#include "ipc.pb-c.h"
#include "log.h"
#include "sup.h"
#include "vault.h"

static int64_t
now_unix_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* STATE/vault/host/NAME.sec; -ENAMETOOLONG or 0. */
static int
secret_path(char path[PATH_MAX], const char *state_dir, const char *name)
{
	int n;

	n = snprintf(path, PATH_MAX, "%s/vault/host/%s.sec", state_dir, name);
	return n < 0 || n >= PATH_MAX ? -ENAMETOOLONG : 0;
}

/* Opens host secret name with the host key: its value (value NULL: the
 * metadata alone). Returns the value's length or -errno. */
static ssize_t
secret_load(const char *state_dir, const uint8_t key[SUP_VAULT_KEY_LEN],
    const char *name, struct sup_vault_meta *meta, uint8_t *value, size_t size)
{
	char path[PATH_MAX];
	uint8_t *file;
	ssize_t n;

	if (!cfg_vault_name_valid(name))
		return -EINVAL;
	if ((n = secret_path(path, state_dir, name)) < 0)
		return n;
	if ((file = malloc(SUP_VAULT_SECRET_FILE_MAX)) == NULL)
		return -ENOMEM;
	n = sup_vault_file_read(path, file, SUP_VAULT_SECRET_FILE_MAX);
	if (n >= 0)
		n = sup_vault_secret_open(
		    key, name, file, (size_t)n, meta, value, size);
	else if (n == -EFBIG)
		n = -EINVAL;
	free(file);
	return n;
}

ssize_t
sup_vault_host_secret(
    const char *state_dir, const char *name, uint8_t *buf, size_t size)
{
	uint8_t key[SUP_VAULT_KEY_LEN];
	struct sup_vault_meta meta;
	ssize_t n;
	int rc;

	if ((rc = sup_vault_host_key(state_dir, key)) < 0)
		return rc;
	n = secret_load(state_dir, key, name, &meta, buf, size);
	sodium_memzero(key, sizeof(key));
	if (n < 0)
		sodium_memzero(buf, size);
	return n;
}

static void
meta_fill(
    Palyra__V1__SecretMeta *m, const char *name, const struct sup_vault_meta *v)
{
	palyra__v1__secret_meta__init(m);
	m->name = (char *)name;
	m->version = v->version;
	m->size = v->size;
	m->description = (char *)v->description;
	m->created_unix_ms = v->created_ms;
	m->updated_unix_ms = v->updated_ms;
	m->updated_by = "admin";
}

static void
reply_send(
    struct sup_child *to, uint32_t request_id, Palyra__Ipc__VaultAdminReply *r)
{
	int rc;

	if (to->chan == NULL)
		return;
	if ((rc = ipc_chan_send(to->chan, IPC_VAULT_ADMIN_REPLY, request_id,
		 &r->base, NULL, 0)) < 0)
		log_warn("%s: cannot answer a vault request: %s", to->label,
		    strerror(-rc));
}

static void
reply_error(struct sup_child *to, uint32_t request_id, uint32_t code,
    const char *message)
{
	Palyra__Ipc__VaultAdminReply r = PALYRA__IPC__VAULT_ADMIN_REPLY__INIT;

	r.code = code;
	r.message = (char *)message;
	reply_send(to, request_id, &r);
}

/* The names of vault/host/ *.sec, sorted; at most SUP_VAULT_HOST_MAX. */
static int
names_list(const char *state_dir, char ***names, size_t *n)
{
	char dir[PATH_MAX], **v = NULL;
	struct dirent *de;
	size_t len;
	DIR *d;

	*n = 0;
	*names = NULL;
	snprintf(dir, sizeof(dir), "%s/vault/host", state_dir);
	if ((d = opendir(dir)) == NULL)
		return errno == ENOENT ? 0 : -errno;
	if ((v = calloc(SUP_VAULT_HOST_MAX + 1, sizeof(*v))) == NULL) {
		closedir(d);
		return -ENOMEM;
	}
	while ((de = readdir(d)) != NULL && *n < SUP_VAULT_HOST_MAX) {
		len = strlen(de->d_name);
		if (len <= 4 || strcmp(de->d_name + len - 4, ".sec") != 0)
			continue;
		if ((v[*n] = strndup(de->d_name, len - 4)) == NULL)
			break;
		if (!cfg_vault_name_valid(v[*n])) {
			free(v[*n]);
			v[*n] = NULL;
			continue;
		}
		(*n)++;
	}
	closedir(d);
	*names = v;
	return 0;
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
admin_list(struct sup_ctx *ctx, struct sup_child *to, uint32_t request_id,
    const uint8_t key[SUP_VAULT_KEY_LEN])
{
	Palyra__Ipc__VaultAdminReply r = PALYRA__IPC__VAULT_ADMIN_REPLY__INIT;
	Palyra__V1__SecretMeta *metas = NULL, **metap = NULL;
	struct sup_vault_meta *vm = NULL;
	char **names;
	size_t i, n, k = 0;
	ssize_t len;
	int rc;

	if ((rc = names_list(ctx->cfg->state_dir, &names, &n)) < 0) {
		log_error("host vault: %s", strerror(-rc));
		reply_error(to, request_id, GRPC_STATUS_INTERNAL,
		    "cannot list the host vault");
		return;
	}
	if (n > 1)
		qsort(names, n, sizeof(*names), name_cmp);
	if ((metas = calloc(n + 1, sizeof(*metas))) == NULL ||
	    (metap = calloc(n + 1, sizeof(*metap))) == NULL ||
	    (vm = calloc(n + 1, sizeof(*vm))) == NULL)
		fatal("calloc");
	for (i = 0; i < n; i++) {
		len = secret_load(
		    ctx->cfg->state_dir, key, names[i], &vm[k], NULL, 0);
		if (len < 0) {
			log_warn("host vault: %s.sec cannot be opened: %s",
			    names[i],
			    len == -EBADMSG ? "damaged" : strerror((int)-len));
			continue;
		}
		meta_fill(&metas[k], names[i], &vm[k]);
		metap[k] = &metas[k];
		k++;
	}
	r.n_secrets = k;
	r.secrets = metap;
	reply_send(to, request_id, &r);
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(metas);
	free(metap);
	free(vm);
}

/* journald's redaction set follows the host vault at once. */
static void
secrets_refresh(struct sup_ctx *ctx)
{
	struct sup_child *j = sup_child_find(ctx, SUP_KIND_JOURNALD, NULL);

	/* A journald still starting has its configuration queued on its
	 * channel already: this message follows it. */
	if (j != NULL &&
	    (j->state == SUP_CHILD_READY || j->state == SUP_CHILD_STARTING))
		sup_journal_secrets_send(ctx, j);
}

static void
admin_put(struct sup_ctx *ctx, struct sup_child *to, uint32_t request_id,
    const uint8_t key[SUP_VAULT_KEY_LEN], const Palyra__Ipc__VaultAdmin *a)
{
	Palyra__Ipc__VaultAdminReply r = PALYRA__IPC__VAULT_ADMIN_REPLY__INIT;
	Palyra__V1__SecretMeta meta, *metap = &meta;
	struct sup_vault_meta old, vm;
	char path[PATH_MAX], **names;
	uint8_t *file;
	size_t i, n, flen;
	ssize_t len;
	int rc;

	if (a->value.len == 0 || a->value.len > SUP_VAULT_VALUE_MAX) {
		reply_error(to, request_id, GRPC_STATUS_INVALID_ARGUMENT,
		    "value must be 1 byte to 64 KiB");
		return;
	}
	if (strlen(a->description) > SUP_VAULT_DESC_MAX) {
		reply_error(to, request_id, GRPC_STATUS_INVALID_ARGUMENT,
		    "description longer than 256 bytes");
		return;
	}
	for (i = 0; a->description[i] != '\0'; i++)
		if ((unsigned char)a->description[i] < 0x20 ||
		    a->description[i] == 0x7f) {
			reply_error(to, request_id,
			    GRPC_STATUS_INVALID_ARGUMENT,
			    "description has a control character");
			return;
		}
	memset(&vm, 0, sizeof(vm));
	len = secret_load(ctx->cfg->state_dir, key, a->name, &old, NULL, 0);
	if (len >= 0) {
		vm.version = old.version + 1;
		vm.created_ms = old.created_ms;
		memcpy(vm.description, old.description, sizeof(vm.description));
	} else if (len == -ENOENT) {
		if ((rc = names_list(ctx->cfg->state_dir, &names, &n)) == 0) {
			for (i = 0; i < n; i++)
				free(names[i]);
			free(names);
		}
		if (rc < 0 || n >= SUP_VAULT_HOST_MAX) {
			reply_error(to, request_id,
			    GRPC_STATUS_RESOURCE_EXHAUSTED,
			    "the host vault holds 256 secrets at most");
			return;
		}
		vm.version = 1;
		vm.created_ms = now_unix_ms();
	} else {
		/* A damaged file is replaced as if new. */
		log_warn("host vault: %s.sec replaced: %s", a->name,
		    len == -EBADMSG ? "damaged" : strerror((int)-len));
		vm.version = 1;
		vm.created_ms = now_unix_ms();
	}
	/* An empty description keeps the one stored. */
	if (a->description[0] != '\0')
		snprintf(vm.description, sizeof(vm.description), "%s",
		    a->description);
	vm.updated_ms = now_unix_ms();
	vm.size = a->value.len;
	if ((rc = sup_vault_secret_seal(key, a->name, &vm, a->value.data,
		 a->value.len, &file, &flen)) < 0 ||
	    (rc = secret_path(path, ctx->cfg->state_dir, a->name)) < 0 ||
	    (rc = sup_vault_file_write(path, file, flen)) < 0) {
		log_error(
		    "host vault: cannot store %s: %s", a->name, strerror(-rc));
		free(file);
		reply_error(to, request_id, GRPC_STATUS_INTERNAL,
		    "cannot store the secret");
		return;
	}
	free(file);
	log_info("host vault: stored %s (version %u)", a->name, vm.version);
	meta_fill(&meta, a->name, &vm);
	r.n_secrets = 1;
	r.secrets = &metap;
	reply_send(to, request_id, &r);
	secrets_refresh(ctx);
}

static void
admin_delete(struct sup_ctx *ctx, struct sup_child *to, uint32_t request_id,
    const char *name)
{
	Palyra__Ipc__VaultAdminReply r = PALYRA__IPC__VAULT_ADMIN_REPLY__INIT;
	char path[PATH_MAX], dir[PATH_MAX];

	if (secret_path(path, ctx->cfg->state_dir, name) < 0) {
		reply_error(to, request_id, GRPC_STATUS_INVALID_ARGUMENT,
		    "invalid secret name");
		return;
	}
	if (unlink(path) == -1) {
		if (errno == ENOENT)
			reply_error(to, request_id, GRPC_STATUS_NOT_FOUND,
			    "no such secret");
		else {
			log_error("host vault: cannot delete %s: %s", name,
			    strerror(errno));
			reply_error(to, request_id, GRPC_STATUS_INTERNAL,
			    "cannot delete the secret");
		}
		return;
	}
	snprintf(dir, sizeof(dir), "%s/vault/host", ctx->cfg->state_dir);
	(void)sup_vault_dir_sync(dir);
	log_info("host vault: deleted %s", name);
	r.message = "deleted";
	reply_send(to, request_id, &r);
	secrets_refresh(ctx);
}

void
sup_vault_admin(struct sup_ctx *ctx, struct sup_child *from,
    uint32_t request_id, const Palyra__Ipc__VaultAdmin *a)
{
	Palyra__Ipc__VaultAdminReply r = PALYRA__IPC__VAULT_ADMIN_REPLY__INIT;
	uint8_t key[SUP_VAULT_KEY_LEN];
	char err[512];
	int rc;

	if (from->kind->id != SUP_KIND_FRONT)
		goto out;
	if (a->op == PALYRA__IPC__VAULT_ADMIN__OP__ROTATE_MASTER) {
		if ((rc = sup_vault_rotate(
			 ctx->cfg->state_dir, err, sizeof(err))) < 0) {
			log_error("rotation of master.key failed: %s", err);
			reply_error(from, request_id, GRPC_STATUS_INTERNAL,
			    "the rotation failed; see palyrad's log");
			goto out;
		}
		r.rewrapped = (uint32_t)rc;
		r.message = "rotated";
		reply_send(from, request_id, &r);
		goto out;
	}
	if (a->op != PALYRA__IPC__VAULT_ADMIN__OP__LIST &&
	    !cfg_vault_name_valid(a->name)) {
		reply_error(from, request_id, GRPC_STATUS_INVALID_ARGUMENT,
		    "invalid secret name: 1 to 128 of A-Z a-z 0-9 . _ -, not "
		    "starting with .");
		goto out;
	}
	if ((rc = sup_vault_host_key(ctx->cfg->state_dir, key)) < 0) {
		log_error("host vault key: %s", strerror(-rc));
		reply_error(from, request_id, GRPC_STATUS_INTERNAL,
		    "the host vault key cannot be unwrapped");
		goto out;
	}
	switch (a->op) {
	case PALYRA__IPC__VAULT_ADMIN__OP__LIST:
		admin_list(ctx, from, request_id, key);
		break;
	case PALYRA__IPC__VAULT_ADMIN__OP__PUT:
		admin_put(ctx, from, request_id, key, a);
		break;
	case PALYRA__IPC__VAULT_ADMIN__OP__DELETE:
		admin_delete(ctx, from, request_id, a->name);
		break;
	default:
		reply_error(from, request_id, GRPC_STATUS_INVALID_ARGUMENT,
		    "unknown operation");
		break;
	}
	sodium_memzero(key, sizeof(key));
out:
	/* The decoded value is freed by the channel: wiped here first. */
	if (a->value.data != NULL)
		sodium_memzero(a->value.data, a->value.len);
}
