/*
 * state.c: the state directory, host secrets and listening sockets.
 * Runs in palyrad (the supervisor) before any child starts. Touches the
 * state directory and the two listening addresses of the config.
 *
 * master.key never leaves this process; it wraps the vault's keys
 * (vault.c). The front receives token.key, the key that hashes tokens,
 * and the admin token's keyed hash. token.key was once derived from
 * master.key; it is a file of its own so that rotating master.key never
 * invalidates a token.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "log.h"
#include "sup.h"
#include "vault.h"

#define MASTER_KEY_LEN	32
#define TOKEN_KEY_LEN	32
#define ADMIN_TOKEN_MAX	128

/* Creates dir (mode 0700) if missing; refuses anything but a directory
 * that others cannot write. */
static int
state_mkdir(const char *dir)
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
	if ((st.st_mode & S_IWOTH) != 0) {
		log_error("%s is writable by others; refusing to use it", dir);
		return -1;
	}
	return 0;
}

/* Creates the secret file path (0600) with len bytes of buf. Returns
 * len or -1. */
static ssize_t
state_create(const char *path, const uint8_t *buf, size_t len)
{
	char dir[4096];
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
	    0600);
	if (fd == -1) {
		log_error("cannot create %s: %s", path, strerror(errno));
		return -1;
	}
	if (write(fd, buf, len) != (ssize_t)len || fsync(fd) == -1) {
		log_error("cannot write %s: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		return -1;
	}
	close(fd);
	snprintf(dir, sizeof(dir), "%s", path);
	if (strrchr(dir, '/') != NULL) {
		*strrchr(dir, '/') = '\0';
		(void)sup_vault_dir_sync(dir);
	}
	log_info("created %s", path);
	return (ssize_t)len;
}

/*
 * Reads a secret file of at most size bytes, or creates it with fresh
 * content from make() when it does not exist. Returns its length or -1.
 */
static ssize_t
state_secret(const char *path, uint8_t *buf, size_t size,
    size_t (*make)(uint8_t *, size_t))
{
	struct stat st;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd == -1 && errno == ENOENT)
		return state_create(path, buf, make(buf, size));
	if (fd == -1) {
		log_error("cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    (st.st_mode & 077) != 0) {
		log_error("%s must be a regular file of mode 0600", path);
		close(fd);
		return -1;
	}
	n = read(fd, buf, size);
	close(fd);
	if (n <= 0 || (size_t)n == size) {
		log_error("%s has an invalid length", path);
		return -1;
	}
	return n;
}

static size_t
make_master_key(uint8_t *buf, size_t size)
{
	randombytes_buf(buf, MASTER_KEY_LEN);
	return MASTER_KEY_LEN;
}

static size_t
make_admin_token(uint8_t *buf, size_t size)
{
	uint8_t raw[32];

	randombytes_buf(raw, sizeof(raw));
	memcpy(buf, "pa_", 3);
	sodium_bin2base64((char *)buf + 3, size - 3, raw, sizeof(raw),
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(raw, sizeof(raw));
	return strlen((char *)buf);
}

/*
 * STATE/token.key into key. When it does not exist yet, it is written
 * once with the key that was derived from master.key before it existed,
 * so that tokens issued by an earlier palyrad stay valid; it is never
 * derived again. Returns 0 or -1 (logged).
 */
static int
token_key_load(const char *state_dir, const uint8_t *master, uint8_t *key,
    size_t keylen)
{
	uint8_t buf[TOKEN_KEY_LEN + 1];
	char path[4096];
	ssize_t n;

	snprintf(path, sizeof(path), "%s/token.key", state_dir);
	if (access(path, F_OK) == -1 && errno == ENOENT) {
		crypto_kdf_derive_from_key(buf, TOKEN_KEY_LEN, 1, "palyratk",
		    master);
		n = state_create(path, buf, TOKEN_KEY_LEN);
	} else
		n = state_secret(path, buf, sizeof(buf), make_master_key);
	if (n > 0 && n != TOKEN_KEY_LEN) {
		log_error("%s: expected %d bytes", path, TOKEN_KEY_LEN);
		n = -1;
	}
	if (n > 0 && keylen == TOKEN_KEY_LEN)
		memcpy(key, buf, TOKEN_KEY_LEN);
	sodium_memzero(buf, sizeof(buf));
	return n > 0 && keylen == TOKEN_KEY_LEN ? 0 : -1;
}

int
sup_state_init(struct sup_ctx *ctx)
{
	uint8_t master[MASTER_KEY_LEN + 1], admin[ADMIN_TOKEN_MAX];
	char path[4096];
	ssize_t n;
	int rc = -1;

	if (state_mkdir(ctx->cfg->state_dir) == -1)
		return -1;
	snprintf(path, sizeof(path), "%s/tenants", ctx->cfg->state_dir);
	if (state_mkdir(path) == -1)
		return -1;
	snprintf(path, sizeof(path), "%s/scratch", ctx->cfg->state_dir);
	if (state_mkdir(path) == -1)
		return -1;

	snprintf(path, sizeof(path), "%s/master.key", ctx->cfg->state_dir);
	n = state_secret(path, master, sizeof(master), make_master_key);
	if (n != MASTER_KEY_LEN) {
		if (n > 0)
			log_error("%s: expected %d bytes", path,
			    MASTER_KEY_LEN);
		goto out;
	}
	snprintf(path, sizeof(path), "%s/admin.token", ctx->cfg->state_dir);
	memset(admin, 0, sizeof(admin));
	if ((n = state_secret(path, admin, sizeof(admin) - 1,
	    make_admin_token)) <= 0)
		goto out;
	/* An operator may have written the file with a trailing newline. */
	while (n > 0 && (admin[n - 1] == '\n' || admin[n - 1] == '\r'))
		n--;
	if (n < 16) {
		log_error("%s: the admin token is too short", path);
		goto out;
	}
	if (token_key_load(ctx->cfg->state_dir, master, ctx->token_hash_key,
	    sizeof(ctx->token_hash_key)) == -1)
		goto out;
	crypto_generichash(ctx->admin_token_hash,
	    sizeof(ctx->admin_token_hash), admin, (size_t)n,
	    ctx->token_hash_key, sizeof(ctx->token_hash_key));
	sodium_memzero(master, sizeof(master));
	/* master.key exists: the vault's keys can be checked and made. */
	if (sup_vault_init(ctx) == -1)
		goto out;
	rc = 0;
out:
	sodium_memzero(master, sizeof(master));
	sodium_memzero(admin, sizeof(admin));
	return rc;
}

/*
 * Gives path to uid:gid with mode, when we run as root (children then run
 * under their own ids). A missing optional file is fine.
 */
static int
state_own(const struct sup_ctx *ctx, const char *path, uid_t uid, gid_t gid,
    mode_t mode, int optional)
{
	if (!ctx->root || uid == (uid_t)-1)
		return 0;
	if (lchown(path, uid, gid) == -1 || chmod(path, mode) == -1) {
		if (optional && errno == ENOENT)
			return 0;
		log_error("cannot give %s to uid %u: %s", path,
		    (unsigned)uid, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * journald owns the state directory and the databases; the secrets in it
 * stay the supervisor's (root, 0600), unreadable to journald.
 */
int
sup_state_own(struct sup_ctx *ctx)
{
	static const char *files[] = { "system.db", "system.db-wal",
	    "system.db-shm" };
	uid_t uid = ctx->service_uid[SUP_KIND_JOURNALD];
	gid_t gid = ctx->service_gid[SUP_KIND_JOURNALD];
	char path[4096];
	size_t i;

	if (state_own(ctx, ctx->cfg->state_dir, uid, gid, 0700, 0) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/tenants", ctx->cfg->state_dir);
	if (state_own(ctx, path, uid, gid, 0700, 0) != 0)
		return -1;
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", ctx->cfg->state_dir,
		    files[i]);
		if (state_own(ctx, path, uid, gid, 0600, 1) != 0)
			return -1;
	}
	return 0;
}

void
sup_scratch_path(const struct sup_ctx *ctx, const char *tenant, char *buf,
    size_t len)
{
	snprintf(buf, len, "%s/scratch/%s", ctx->cfg->state_dir, tenant);
}

/*
 * A tenant's directories: tenants/NAME for its journal (journald's) and
 * scratch/NAME, the only place its worker may write (the worker's).
 */
int
sup_state_tenant(struct sup_ctx *ctx, const struct cfg_tenant *t,
    uid_t worker_uid, gid_t worker_gid)
{
	static const char *files[] = { "journal.db", "journal.db-wal",
	    "journal.db-shm" };
	uid_t juid = ctx->service_uid[SUP_KIND_JOURNALD];
	gid_t jgid = ctx->service_gid[SUP_KIND_JOURNALD];
	char path[4096];
	size_t i;

	snprintf(path, sizeof(path), "%s/tenants/%s", ctx->cfg->state_dir,
	    t->name);
	if (state_mkdir(path) == -1 ||
	    state_own(ctx, path, juid, jgid, 0700, 0) != 0)
		return -1;
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/tenants/%s/%s",
		    ctx->cfg->state_dir, t->name, files[i]);
		if (state_own(ctx, path, juid, jgid, 0600, 1) != 0)
			return -1;
	}
	sup_scratch_path(ctx, t->name, path, sizeof(path));
	if (state_mkdir(path) == -1 ||
	    state_own(ctx, path, worker_uid, worker_gid, 0700, 0) != 0)
		return -1;
	return 0;
}

static int
listener_open(const struct cfg_listen *l, const char *what, char *shown,
    size_t shownlen)
{
	struct addrinfo hints, *res, *ai;
	char port[8], host[NI_MAXHOST], serv[NI_MAXSERV];
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	int fd = -1, on = 1, rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(port, sizeof(port), "%u", (unsigned)l->port);
	if ((rc = getaddrinfo(l->host, port, &hints, &res)) != 0) {
		log_error("listen %s %s:%s: %s", what, l->host, port,
		    gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC |
		    SOCK_NONBLOCK, ai->ai_protocol);
		if (fd == -1)
			continue;
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on,
		    sizeof(on));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
		    listen(fd, 512) == 0)
			break;
		rc = errno;
		close(fd);
		fd = -1;
		errno = rc;
	}
	freeaddrinfo(res);
	if (fd == -1) {
		log_error("listen %s %s:%s: %s", what, l->host, port,
		    strerror(errno));
		return -1;
	}
	if (getsockname(fd, (struct sockaddr *)&ss, &sslen) == 0 &&
	    getnameinfo((struct sockaddr *)&ss, sslen, host, sizeof(host),
	    serv, sizeof(serv), NI_NUMERICHOST | NI_NUMERICSERV) == 0)
		snprintf(shown, shownlen, ss.ss_family == AF_INET6 ?
		    "[%s]:%s" : "%s:%s", host, serv);
	else
		snprintf(shown, shownlen, "%s:%s", l->host, port);
	return fd;
}

int
sup_listeners_open(struct sup_ctx *ctx)
{
	ctx->grpc_fd = listener_open(&ctx->cfg->grpc, "grpc", ctx->grpc_addr,
	    sizeof(ctx->grpc_addr));
	if (ctx->grpc_fd == -1)
		return -1;
	ctx->http_fd = listener_open(&ctx->cfg->http, "http", ctx->http_addr,
	    sizeof(ctx->http_addr));
	if (ctx->http_fd == -1)
		return -1;
	return 0;
}
