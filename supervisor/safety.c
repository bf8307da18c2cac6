/*
 * safety.c: refuses a configuration that would be unsafe to run, before
 * anything starts (palyrad -n, start-up and every reload). Runs in palyrad,
 * as root; touches nothing, it only stats the files the configuration
 * names: providers' `api-key file:PATH`, TLS key files and the state
 * directory.
 *
 * A listener on a non-loopback address without tls is refused by the
 * parser itself (config_directives.c). The checks here need the file
 * system, which the parser does not look at: the secrets palyrad keeps in
 * the state directory (master.key, token.key, admin.token, the vault's
 * directory, key files and host secrets) are checked here too. Each
 * error names the directive it comes from as "FILE:LINE:COL: message"
 * (palyrad.conf(5), SECURITY CONSIDERATIONS), so that an operator knows what to
 * fix.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "sup.h"

static int safety_error(char *, size_t, const struct cfg_pos *, const char *,
    ...) __attribute__((format(printf, 4, 5)));

/* "FILE:LINE:COL: message", or "palyrad: message" for a default. */
static int
safety_error(
    char *err, size_t errlen, const struct cfg_pos *pos, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (pos->file != NULL)
		n = snprintf(
		    err, errlen, "%s:%d:%d: ", pos->file, pos->line, pos->col);
	else
		n = snprintf(err, errlen, "palyrad: ");
	if (n < 0 || (size_t)n >= errlen)
		return -1;
	va_start(ap, fmt);
	vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

/* The uid of the configured service user, or (uid_t)-1 when none. */
static uid_t
service_uid(const struct cfg *cfg)
{
	struct passwd *pw;

	if (cfg->user == NULL || (pw = getpwnam(cfg->user)) == NULL)
		return (uid_t)-1;
	return pw->pw_uid;
}

/*
 * A secret file (credential or private key): a regular file that only its
 * owner may access, owned by root or by the user palyrad runs as. A file
 * that does not exist is left to the code that reads it, which says so.
 * follow: the reader follows a symbolic link (TLS keys, often links into
 * a certificate manager's tree); the others open with O_NOFOLLOW.
 */
static int
secret_file_check(const char *what, const char *path, int follow,
    const struct cfg_pos *pos, char *err, size_t errlen)
{
	struct stat st;

	if ((follow ? stat(path, &st) : lstat(path, &st)) == -1) {
		if (errno == ENOENT)
			return 0;
		return safety_error(err, errlen, pos, "%s \"%s\": %s", what,
		    path, strerror(errno));
	}
	if (S_ISLNK(st.st_mode))
		return safety_error(err, errlen, pos,
		    "%s \"%s\" is a "
		    "symbolic link; name the file itself",
		    what, path);
	if (!S_ISREG(st.st_mode))
		return safety_error(err, errlen, pos,
		    "%s \"%s\" is not a "
		    "regular file",
		    what, path);
	if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
		return safety_error(err, errlen, pos,
		    "%s \"%s\" is "
		    "accessible by group or others (mode %04o); it must be "
		    "0600 or stricter",
		    what, path, (unsigned)(st.st_mode & 07777));
	if (st.st_uid != 0 && st.st_uid != geteuid())
		return safety_error(err, errlen, pos,
		    "%s \"%s\" is owned by "
		    "uid %u; it must belong to root or to the user palyrad "
		    "runs as",
		    what, path, (unsigned)st.st_uid);
	return 0;
}

/*
 * The state directory, when it exists: a directory nobody but its owner
 * may write, owned by root, the user palyrad runs as, or the service user
 * that palyrad gives it to (palyrad.conf(5) user, or the first uids of
 * worker-uid-range without one).
 */
static int
state_dir_check(const struct cfg *cfg, char *err, size_t errlen)
{
	const struct cfg_pos *pos = &cfg->state_dir_pos;
	struct stat st;
	uid_t user;

	if (lstat(cfg->state_dir, &st) == -1) {
		if (errno == ENOENT)
			return 0;
		return safety_error(err, errlen, pos,
		    "state directory "
		    "\"%s\": %s",
		    cfg->state_dir, strerror(errno));
	}
	if (!S_ISDIR(st.st_mode))
		return safety_error(err, errlen, pos,
		    "state directory \"%s\" "
		    "is not a directory",
		    cfg->state_dir);
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
		return safety_error(err, errlen, pos,
		    "state directory \"%s\" "
		    "is writable by group or others (mode %04o); it must be "
		    "0755 or stricter",
		    cfg->state_dir, (unsigned)(st.st_mode & 07777));
	user = service_uid(cfg);
	if (st.st_uid == 0 || st.st_uid == geteuid() ||
	    (user != (uid_t)-1 && st.st_uid == user) ||
	    (cfg->user == NULL && st.st_uid >= cfg->worker_uid_min &&
		st.st_uid <= cfg->worker_uid_min + 1))
		return 0;
	return safety_error(err, errlen, pos,
	    "state directory \"%s\" is "
	    "owned by uid %u; it must belong to root, to the user palyrad "
	    "runs as or to its service user",
	    cfg->state_dir, (unsigned)st.st_uid);
}

/* The host secrets palyrad keeps in the state directory (state.c). */
static int
state_files_check(const struct cfg *cfg, char *err, size_t errlen)
{
	static const char *const files[] = {"master.key", "master.key.new",
	    "token.key", "admin.token"};
	char path[PATH_MAX];
	size_t i;

	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		if ((size_t)snprintf(path, sizeof(path), "%s/%s",
			cfg->state_dir, files[i]) >= sizeof(path))
			return safety_error(err, errlen, &cfg->state_dir_pos,
			    "state directory \"%s\": path too long",
			    cfg->state_dir);
		if (secret_file_check("state file", path, 0,
			&cfg->state_dir_pos, err, errlen) == -1)
			return -1;
	}
	return 0;
}

/*
 * A vault directory (STATE/vault, STATE/vault/host): palyrad's alone,
 * mode 0700, and every file in it with suffix a secret file.
 */
static int
vault_dir_check(const struct cfg *cfg, const char *dir, const char *suffix,
    const char *what, char *err, size_t errlen)
{
	const struct cfg_pos *pos = &cfg->state_dir_pos;
	struct dirent *de;
	char path[PATH_MAX];
	struct stat st;
	size_t len, slen = strlen(suffix);
	DIR *d;
	int rc = 0;

	if (lstat(dir, &st) == -1) {
		if (errno == ENOENT)
			return 0;
		return safety_error(err, errlen, pos, "vault directory "
		    "\"%s\": %s", dir, strerror(errno));
	}
	if (!S_ISDIR(st.st_mode))
		return safety_error(err, errlen, pos, "vault directory \"%s\" "
		    "is not a directory", dir);
	if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
		return safety_error(err, errlen, pos, "vault directory \"%s\" "
		    "is accessible by group or others (mode %04o); it must be "
		    "0700", dir, (unsigned)(st.st_mode & 07777));
	if (st.st_uid != 0 && st.st_uid != geteuid())
		return safety_error(err, errlen, pos, "vault directory \"%s\" "
		    "is owned by uid %u; it must belong to root or to the "
		    "user palyrad runs as", dir, (unsigned)st.st_uid);
	if ((d = opendir(dir)) == NULL)
		return safety_error(err, errlen, pos, "vault directory "
		    "\"%s\": %s", dir, strerror(errno));
	while (rc == 0 && (de = readdir(d)) != NULL) {
		len = strlen(de->d_name);
		if (len <= slen || strcmp(de->d_name + len - slen,
		    suffix) != 0)
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir,
		    de->d_name) >= sizeof(path))
			continue;
		rc = secret_file_check(what, path, 0, pos, err, errlen);
	}
	closedir(d);
	return rc;
}

static int
vault_check(const struct cfg *cfg, char *err, size_t errlen)
{
	char dir[PATH_MAX];

	if ((size_t)snprintf(dir, sizeof(dir), "%s/vault/host",
	    cfg->state_dir) >= sizeof(dir))
		return safety_error(err, errlen, &cfg->state_dir_pos,
		    "state directory \"%s\": path too long", cfg->state_dir);
	if (vault_dir_check(cfg, dir, ".sec", "host vault secret", err,
	    errlen) == -1)
		return -1;
	dir[strlen(dir) - strlen("/host")] = '\0';
	return vault_dir_check(cfg, dir, ".key", "vault key file", err,
	    errlen);
}

int
sup_safety_check(const struct cfg *cfg, char *err, size_t errlen)
{
	const struct cfg_listen *l[] = {&cfg->grpc, &cfg->http};
	const struct cfg_provider *p;
	char what[128];
	size_t i;

	if (state_dir_check(cfg, err, errlen) == -1 ||
	    state_files_check(cfg, err, errlen) == -1 ||
	    vault_check(cfg, err, errlen) == -1)
		return -1;
	for (i = 0; i < 2; i++)
		if (l[i]->tls && l[i]->tls_key != NULL &&
		    secret_file_check("tls key file", l[i]->tls_key, 1,
			&l[i]->tls_key_pos, err, errlen) == -1)
			return -1;
	for (i = 0; i < cfg->nproviders; i++) {
		p = &cfg->providers[i];
		if (p->api_key == NULL || strncmp(p->api_key, "file:", 5) != 0)
			continue;
		snprintf(what, sizeof(what), "provider \"%s\": api-key file",
		    p->name);
		if (secret_file_check(what, p->api_key + 5, 0, &p->api_key_pos,
			err, errlen) == -1)
			return -1;
	}
	return 0;
}
