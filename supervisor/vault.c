/*
 * vault.c: the vault's keys in palyrad (DESIGN section 9): the start-up
 * checks, the tenants' data keys, the rotation of master.key and the
 * recovery of a rotation a crash interrupted. Runs in palyrad, as root;
 * touches STATE/master.key, STATE/master.key.new and STATE/vault/ *.key
 * (formats in vault_key.c).
 *
 * No unwrapped key outlives the call that needed it: master.key is read
 * from its file each time, and a tenant's data key is wiped once sent to
 * its worker (wire.c).
 *
 * Rotation writes, in this order, each step durable before the next:
 * master.key.new; every OWNER.key.new wrapped by the new master key; the
 * renames of each OWNER.key.new over OWNER.key; the rename of
 * master.key.new over master.key. The data keys themselves never change,
 * so no ciphertext anywhere changes. At start, a master.key.new means a
 * rotation was interrupted: it is finished (every key then unwraps with
 * the new master key), whatever step the crash hit.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "config.h"
#include "log.h"
#include "sup.h"
#include "vault.h"

/* Room after the state directory for vault/host/NAME.sec.tmp and
 * vault/OWNER.key.new.tmp. */
#define STATE_DIR_MAX (PATH_MAX - 256)

/* The owners of the key files of vault/ (TENANT, @host), sorted. */
struct owners {
	char **names;
	size_t n;
};

static void
owners_free(struct owners *o)
{
	size_t i;

	for (i = 0; i < o->n; i++)
		free(o->names[i]);
	free(o->names);
	memset(o, 0, sizeof(*o));
}

/* Tenants by name, the host key last: an error names a tenant's file
 * first, which is what an operator looks for. */
static int
name_cmp(const void *a, const void *b)
{
	const char *x = *(char *const *)a, *y = *(char *const *)b;

	if ((x[0] == '@') != (y[0] == '@'))
		return x[0] == '@' ? 1 : -1;
	return strcmp(x, y);
}

/* Lists vault/ *.key. Returns 0 (none when the directory does not exist
 * yet) or -errno. */
static int
owners_list(const char *vdir, struct owners *o)
{
	struct dirent *de;
	char **grown, *name;
	size_t len, cap = 0;
	DIR *d;

	memset(o, 0, sizeof(*o));
	if ((d = opendir(vdir)) == NULL)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d)) != NULL) {
		len = strlen(de->d_name);
		if (len <= 4 || strcmp(de->d_name + len - 4, ".key") != 0)
			continue;
		if ((name = strndup(de->d_name, len - 4)) == NULL)
			goto nomem;
		if (strcmp(name, SUP_VAULT_HOST_OWNER) != 0 &&
		    !cfg_name_valid(name)) {
			free(name);
			continue;
		}
		if (o->n == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			if ((grown = reallocarray(
				 o->names, cap, sizeof(*grown))) == NULL) {
				free(name);
				goto nomem;
			}
			o->names = grown;
		}
		o->names[o->n++] = name;
	}
	closedir(d);
	if (o->n > 1)
		qsort(o->names, o->n, sizeof(*o->names), name_cmp);
	return 0;
nomem:
	closedir(d);
	owners_free(o);
	return -ENOMEM;
}

/* vault/OWNER.key and vault/OWNER.key.new (suffix ".new"): the state
 * directory's length is checked at start (sup_vault_check), owners are
 * names of at most NAME_MAX_LEN bytes, so a path never gets truncated. */
static void
key_path(char path[PATH_MAX], const char *vdir, const char *owner,
    const char *suffix)
{
	int n;

	n = snprintf(path, PATH_MAX, "%s/%s.key%s", vdir, owner, suffix);
	if (n < 0 || n >= PATH_MAX)
		path[0] = '\0';
}

/* Reads vault/OWNER.key (or .key.new with suffix) and unwraps it. */
static int
key_load(const char *vdir, const char *owner, const char *suffix,
    const uint8_t master[SUP_VAULT_KEY_LEN], uint8_t key[SUP_VAULT_KEY_LEN])
{
	uint8_t file[SUP_VAULT_KEY_FILE_LEN];
	char path[PATH_MAX];
	ssize_t n;

	key_path(path, vdir, owner, suffix);
	n = sup_vault_file_read(path, file, sizeof(file));
	if (n == -EFBIG)
		return -EINVAL;
	if (n < 0)
		return (int)n;
	return sup_vault_key_unwrap(master, owner, file, (size_t)n, key);
}

/* Wraps key under master into vault/OWNER.key (or .key.new). */
static int
key_store(const char *vdir, const char *owner, const char *suffix,
    const uint8_t master[SUP_VAULT_KEY_LEN],
    const uint8_t key[SUP_VAULT_KEY_LEN])
{
	uint8_t file[SUP_VAULT_KEY_FILE_LEN];
	char path[PATH_MAX];
	int rc;

	key_path(path, vdir, owner, suffix);
	if ((rc = sup_vault_key_wrap(master, owner, key, file)) == 0)
		rc = sup_vault_file_write(path, file, sizeof(file));
	return rc;
}

static const char *
key_error(int rc)
{
	if (rc == -EBADMSG || rc == -EINVAL)
		return "cannot be unwrapped with master.key: wrong master "
		       "key, or the file is damaged";
	if (rc == -EPERM)
		return "must be a regular file of root or palyrad that "
		       "nobody else may read (mode 0600)";
	return strerror(-rc);
}

int
sup_vault_check(const struct cfg *cfg, char *err, size_t errlen)
{
	uint8_t master[SUP_VAULT_KEY_LEN], next[SUP_VAULT_KEY_LEN];
	uint8_t key[SUP_VAULT_KEY_LEN];
	char vdir[PATH_MAX], path[PATH_MAX];
	struct owners o;
	size_t i;
	int rc, have_next = 0, ret = -1;

	if (strlen(cfg->state_dir) > STATE_DIR_MAX) {
		snprintf(err, errlen, "state directory \"%s\": path too long",
		    cfg->state_dir);
		return -1;
	}
	snprintf(vdir, sizeof(vdir), "%s/vault", cfg->state_dir);
	if ((rc = owners_list(vdir, &o)) < 0) {
		snprintf(err, errlen, "%s: %s", vdir, strerror(-rc));
		return -1;
	}
	if (o.n == 0)
		return 0;
	snprintf(path, sizeof(path), "%s/master.key", cfg->state_dir);
	if ((rc = sup_vault_master_read(path, master)) < 0) {
		snprintf(err, errlen,
		    "%s: %s; the keys of %s cannot be "
		    "unwrapped without it",
		    path, rc == -EINVAL ? "not a 32-byte key" : strerror(-rc),
		    vdir);
		goto out;
	}
	snprintf(path, sizeof(path), "%s/master.key.new", cfg->state_dir);
	have_next = sup_vault_master_read(path, next) == 0;
	for (i = 0; i < o.n; i++) {
		rc = key_load(vdir, o.names[i], "", master, key);
		if (rc == -EBADMSG && have_next)
			rc = key_load(vdir, o.names[i], "", next, key);
		/* After the rename of its .key.new, a key unwraps with the
		 * new master; before it, the .key.new does. */
		if (rc == -EBADMSG && have_next)
			rc = key_load(vdir, o.names[i], ".new", next, key);
		sodium_memzero(key, sizeof(key));
		if (rc < 0) {
			snprintf(err, errlen, "%s/%s.key: %s", vdir, o.names[i],
			    key_error(rc));
			goto out;
		}
	}
	ret = 0;
out:
	sodium_memzero(master, sizeof(master));
	sodium_memzero(next, sizeof(next));
	owners_free(&o);
	return ret;
}

/* dir (mode 0700) created when missing; anything others may enter is
 * refused. */
static int
vault_mkdir(const char *dir)
{
	struct stat st;

	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		log_error("cannot create %s: %s", dir, strerror(errno));
		return -1;
	}
	if (lstat(dir, &st) == -1 || !S_ISDIR(st.st_mode)) {
		log_error("%s is not a directory", dir);
		return -1;
	}
	if ((st.st_mode & 077) != 0) {
		log_error("%s is accessible by group or others (mode %04o); "
			  "it must be 0700",
		    dir, (unsigned)(st.st_mode & 07777));
		return -1;
	}
	return 0;
}

/* Removes the leftovers of a crash: NAME.tmp files, and with stale set
 * the NAME.key.new of a rotation that never wrote its master.key.new. */
static void
vault_sweep(const char *dir, int stale)
{
	struct dirent *de;
	char path[PATH_MAX];
	size_t len;
	DIR *d;

	if ((d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		len = strlen(de->d_name);
		if (!((len > 4 && strcmp(de->d_name + len - 4, ".tmp") == 0) ||
			(stale && len > 8 &&
			    strcmp(de->d_name + len - 8, ".key.new") == 0)))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (unlink(path) == 0)
			log_info(
			    "removed %s, left by an interrupted write", path);
	}
	closedir(d);
}

/*
 * master.key.new exists: a rotation was interrupted. Every key ends up
 * wrapped by the new master key, which then replaces master.key.
 */
static int
rotation_finish(const char *state_dir, const char *vdir)
{
	uint8_t master[SUP_VAULT_KEY_LEN], next[SUP_VAULT_KEY_LEN];
	uint8_t key[SUP_VAULT_KEY_LEN];
	char path[PATH_MAX], newpath[PATH_MAX], to[PATH_MAX];
	struct owners o;
	size_t i;
	int rc, ret = -1;

	snprintf(newpath, sizeof(newpath), "%s/master.key.new", state_dir);
	snprintf(to, sizeof(to), "%s/master.key", state_dir);
	if (sup_vault_master_read(newpath, next) < 0) {
		/* Written under a temporary name and renamed, so it is
		 * whole or absent; anything else is not ours to use. */
		log_error("%s: not a 32-byte key of mode 0600; move it away "
			  "to start",
		    newpath);
		return -1;
	}
	if ((rc = sup_vault_master_read(to, master)) < 0) {
		log_error("%s: %s", to,
		    rc == -EINVAL ? "not a 32-byte key" : strerror(-rc));
		goto out0;
	}
	if ((rc = owners_list(vdir, &o)) < 0) {
		log_error("%s: %s", vdir, strerror(-rc));
		goto out0;
	}
	for (i = 0; i < o.n; i++) {
		key_path(path, vdir, o.names[i], ".new");
		key_path(to, vdir, o.names[i], "");
		if (key_load(vdir, o.names[i], ".new", next, key) == 0) {
			if (rename(path, to) == -1) {
				log_error("cannot rename %s: %s", path,
				    strerror(errno));
				goto out;
			}
			continue;
		}
		(void)unlink(path);
		if (key_load(vdir, o.names[i], "", next, key) == 0)
			continue;
		if ((rc = key_load(vdir, o.names[i], "", master, key)) < 0 ||
		    (rc = key_store(vdir, o.names[i], "", next, key)) < 0) {
			log_error("%s: %s", to, key_error(rc));
			goto out;
		}
	}
	snprintf(to, sizeof(to), "%s/master.key", state_dir);
	if ((rc = sup_vault_dir_sync(vdir)) < 0 || rename(newpath, to) == -1 ||
	    (rc = sup_vault_dir_sync(state_dir)) < 0) {
		log_error("cannot finish the rotation of %s: %s", to,
		    strerror(rc < 0 ? -rc : errno));
		goto out;
	}
	log_info("finished an interrupted rotation of master.key: %zu "
		 "key(s) wrapped by the new master key",
	    o.n);
	ret = 0;
out:
	owners_free(&o);
out0:
	sodium_memzero(key, sizeof(key));
	sodium_memzero(master, sizeof(master));
	sodium_memzero(next, sizeof(next));
	return ret;
}

int
sup_vault_host_key(const char *state_dir, uint8_t key[SUP_VAULT_KEY_LEN])
{
	uint8_t master[SUP_VAULT_KEY_LEN];
	char vdir[PATH_MAX], path[PATH_MAX];
	int rc;

	snprintf(vdir, sizeof(vdir), "%s/vault", state_dir);
	snprintf(path, sizeof(path), "%s/master.key", state_dir);
	if ((rc = sup_vault_master_read(path, master)) < 0)
		return rc;
	rc = key_load(vdir, SUP_VAULT_HOST_OWNER, "", master, key);
	if (rc == -ENOENT) {
		randombytes_buf(key, SUP_VAULT_KEY_LEN);
		rc = key_store(vdir, SUP_VAULT_HOST_OWNER, "", master, key);
	}
	sodium_memzero(master, sizeof(master));
	if (rc < 0)
		sodium_memzero(key, SUP_VAULT_KEY_LEN);
	return rc;
}

int
sup_vault_init(struct sup_ctx *ctx)
{
	const char *state_dir = ctx->cfg->state_dir;
	uint8_t master[SUP_VAULT_KEY_LEN], key[SUP_VAULT_KEY_LEN];
	char vdir[PATH_MAX], path[PATH_MAX];
	struct owners o;
	size_t i;
	int rc, ret = -1, interrupted;

	if (strlen(state_dir) > STATE_DIR_MAX) {
		log_error("state directory \"%s\": path too long", state_dir);
		return -1;
	}
	snprintf(vdir, sizeof(vdir), "%s/vault", state_dir);
	if (vault_mkdir(vdir) == -1)
		return -1;
	snprintf(path, sizeof(path), "%s/vault/host", state_dir);
	if (vault_mkdir(path) == -1)
		return -1;
	snprintf(path, sizeof(path), "%s/master.key.new", state_dir);
	interrupted = access(path, F_OK) == 0;
	snprintf(path, sizeof(path), "%s/master.key.new.tmp", state_dir);
	(void)unlink(path);
	vault_sweep(vdir, !interrupted);
	snprintf(path, sizeof(path), "%s/vault/host", state_dir);
	vault_sweep(path, 0);
	if (interrupted && rotation_finish(state_dir, vdir) == -1)
		return -1;
	snprintf(path, sizeof(path), "%s/master.key", state_dir);
	if ((rc = sup_vault_master_read(path, master)) < 0) {
		log_error("%s: %s", path, strerror(-rc));
		return -1;
	}
	if ((rc = owners_list(vdir, &o)) < 0) {
		log_error("%s: %s", vdir, strerror(-rc));
		goto out0;
	}
	for (i = 0; i < o.n; i++)
		if ((rc = key_load(vdir, o.names[i], "", master, key)) < 0) {
			log_error(
			    "%s/%s.key: %s", vdir, o.names[i], key_error(rc));
			goto out;
		}
	if ((rc = sup_vault_host_key(state_dir, key)) < 0) {
		log_error(
		    "%s/%s.key: %s", vdir, SUP_VAULT_HOST_OWNER, key_error(rc));
		goto out;
	}
	ret = 0;
out:
	owners_free(&o);
out0:
	sodium_memzero(key, sizeof(key));
	sodium_memzero(master, sizeof(master));
	return ret;
}

int
sup_vault_tenant_key(
    struct sup_ctx *ctx, const char *tenant, uint8_t key[SUP_VAULT_KEY_LEN])
{
	uint8_t master[SUP_VAULT_KEY_LEN];
	char vdir[PATH_MAX], path[PATH_MAX];
	int rc;

	snprintf(vdir, sizeof(vdir), "%s/vault", ctx->cfg->state_dir);
	snprintf(path, sizeof(path), "%s/master.key", ctx->cfg->state_dir);
	if (!cfg_name_valid(tenant))
		return -EINVAL;
	if ((rc = sup_vault_master_read(path, master)) < 0) {
		log_error("%s: %s", path, strerror(-rc));
		return rc;
	}
	rc = key_load(vdir, tenant, "", master, key);
	if (rc == -ENOENT) {
		randombytes_buf(key, SUP_VAULT_KEY_LEN);
		if ((rc = key_store(vdir, tenant, "", master, key)) == 0)
			log_info("created the vault key of tenant %s", tenant);
	}
	if (rc < 0) {
		log_error("%s/%s.key: %s", vdir, tenant, key_error(rc));
		sodium_memzero(key, SUP_VAULT_KEY_LEN);
	}
	sodium_memzero(master, sizeof(master));
	return rc;
}

int
sup_vault_rotate(const char *state_dir, char *err, size_t errlen)
{
	uint8_t master[SUP_VAULT_KEY_LEN], next[SUP_VAULT_KEY_LEN];
	uint8_t key[SUP_VAULT_KEY_LEN];
	char vdir[PATH_MAX], path[PATH_MAX], to[PATH_MAX];
	char newpath[PATH_MAX];
	struct owners o;
	size_t i, written = 0;
	int rc, ret = -1;

	snprintf(vdir, sizeof(vdir), "%s/vault", state_dir);
	snprintf(to, sizeof(to), "%s/master.key", state_dir);
	snprintf(newpath, sizeof(newpath), "%s/master.key.new", state_dir);
	if ((rc = sup_vault_master_read(to, master)) < 0) {
		snprintf(
		    err, errlen, "cannot read master.key: %s", strerror(-rc));
		return -1;
	}
	if ((rc = owners_list(vdir, &o)) < 0) {
		snprintf(err, errlen, "cannot list the vault keys: %s",
		    strerror(-rc));
		goto out0;
	}
	/* Every key must unwrap before anything is written. */
	for (i = 0; i < o.n; i++)
		if ((rc = key_load(vdir, o.names[i], "", master, key)) < 0) {
			snprintf(err, errlen, "vault/%s.key: %s", o.names[i],
			    key_error(rc));
			goto out;
		}
	randombytes_buf(next, sizeof(next));
	if ((rc = sup_vault_file_write(newpath, next, sizeof(next))) < 0) {
		snprintf(err, errlen, "cannot write master.key.new: %s",
		    strerror(-rc));
		goto out;
	}
	for (written = 0; written < o.n; written++) {
		if ((rc = key_load(vdir, o.names[written], "", master, key)) <
			0 ||
		    (rc = key_store(
			 vdir, o.names[written], ".new", next, key)) < 0) {
			snprintf(err, errlen, "vault/%s.key.new: %s",
			    o.names[written], strerror(-rc));
			goto undo;
		}
	}
	/* From the first rename on, only going forward is consistent; a
	 * crash from here is finished at the next start (vault.c). */
	for (i = 0; i < o.n; i++) {
		key_path(path, vdir, o.names[i], ".new");
		key_path(to, vdir, o.names[i], "");
		if (rename(path, to) == -1) {
			snprintf(err, errlen,
			    "cannot rename vault/%s.key.new: "
			    "%s; palyrad finishes the rotation at its next "
			    "start",
			    o.names[i], strerror(errno));
			goto out;
		}
	}
	snprintf(to, sizeof(to), "%s/master.key", state_dir);
	if ((rc = sup_vault_dir_sync(vdir)) < 0 || rename(newpath, to) == -1 ||
	    (rc = sup_vault_dir_sync(state_dir)) < 0) {
		snprintf(err, errlen,
		    "cannot replace master.key: %s; palyrad "
		    "finishes the rotation at its next start",
		    strerror(rc < 0 ? -rc : errno));
		goto out;
	}
	log_info("rotated master.key: %zu key(s) re-wrapped", o.n);
	ret = (int)o.n;
	goto out;
undo:
	for (i = 0; i < written; i++) {
		key_path(path, vdir, o.names[i], ".new");
		(void)unlink(path);
	}
	(void)unlink(newpath);
out:
	owners_free(&o);
out0:
	sodium_memzero(key, sizeof(key));
	sodium_memzero(master, sizeof(master));
	sodium_memzero(next, sizeof(next));
	return ret;
}
