/*
 * uids.c: which uid each child runs as, when palyrad starts as root.
 * Runs in palyrad. Touches STATE/uids, its own file.
 *
 * journald and the front run as the service user (`user` in the config),
 * or, without one, as the first two ids of worker-uid-range. Every tenant's
 * worker gets a uid of its own from the rest of the range. The assignment
 * is kept in STATE/uids ("TENANT UID" per line) so that a tenant keeps its
 * uid across restarts and reloads, and a removed tenant's uid is never
 * handed to another tenant while its files may still exist.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "sup.h"

#define UIDS_FILE	"uids"
#define UIDS_LINE_MAX	(NAME_MAX_LEN + 32)

static int
uids_parse(struct sup_ctx *ctx, FILE *f, const char *path)
{
	char line[UIDS_LINE_MAX + 2], name[NAME_MAX_LEN + 2], *end;
	unsigned long long v;
	int lineno = 0, n;
	size_t i;

	while (fgets(line, sizeof(line), f) != NULL) {
		lineno++;
		if (strchr(line, '\n') == NULL && !feof(f)) {
			log_error("%s:%d: line too long", path, lineno);
			return -1;
		}
		if (sscanf(line, "%65s %n", name, &n) != 1 ||
		    !cfg_name_valid(name)) {
			log_error("%s:%d: invalid tenant name", path, lineno);
			return -1;
		}
		errno = 0;
		v = strtoull(line + n, &end, 10);
		if (errno != 0 || end == line + n || (*end != '\n' &&
		    *end != '\0') || v < ctx->cfg->worker_uid_min + 2 ||
		    v > ctx->cfg->worker_uid_max) {
			log_error("%s:%d: uid outside worker-uid-range", path,
			    lineno);
			return -1;
		}
		for (i = 0; i < ctx->nuids; i++)
			if (strcmp(ctx->uids[i].tenant, name) == 0 ||
			    ctx->uids[i].uid == (uid_t)v) {
				log_error("%s:%d: duplicate entry", path,
				    lineno);
				return -1;
			}
		if (ctx->nuids >= CFG_MAX_TENANTS * 2) {
			log_error("%s: too many entries", path);
			return -1;
		}
		struct sup_uid *u = reallocarray(ctx->uids, ctx->nuids + 1,
		    sizeof(*u));
		if (u == NULL)
			return -1;
		ctx->uids = u;
		/* cfg_name_valid() bounded it to NAME_MAX_LEN. */
		memcpy(u[ctx->nuids].tenant, name, strlen(name) + 1);
		u[ctx->nuids++].uid = (uid_t)v;
	}
	return ferror(f) ? -1 : 0;
}

/* Writes the map to a temporary file and renames it into place. */
static int
uids_save(struct sup_ctx *ctx)
{
	char path[4096], tmp[4096 + 8];
	size_t i;
	FILE *f;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", ctx->cfg->state_dir, UIDS_FILE);
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
	    0600);
	if (fd == -1 || (f = fdopen(fd, "w")) == NULL) {
		log_error("cannot write %s: %s", tmp, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	for (i = 0; i < ctx->nuids; i++)
		fprintf(f, "%s %u\n", ctx->uids[i].tenant,
		    (unsigned)ctx->uids[i].uid);
	if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
		log_error("cannot write %s: %s", tmp, strerror(errno));
		fclose(f);
		return -1;
	}
	fclose(f);
	if (rename(tmp, path) == -1) {
		log_error("cannot rename %s: %s", tmp, strerror(errno));
		return -1;
	}
	return 0;
}

int
sup_uids_init(struct sup_ctx *ctx)
{
	const struct cfg *cfg = ctx->cfg;
	struct passwd *pw;
	char path[4096];
	FILE *f;
	int rc;

	ctx->root = geteuid() == 0;
	if (!ctx->root) {
		log_info("not started as root: children keep uid %u",
		    (unsigned)geteuid());
		return 0;
	}
	if (cfg->worker_uid_max - cfg->worker_uid_min < 3) {
		log_error("worker-uid-range is too small");
		return -1;
	}
	if (cfg->user != NULL) {
		if ((pw = getpwnam(cfg->user)) == NULL) {
			log_error("user \"%s\" does not exist", cfg->user);
			return -1;
		}
		if (pw->pw_uid == 0) {
			log_error("user \"%s\" is root", cfg->user);
			return -1;
		}
		ctx->service_uid[0] = ctx->service_uid[1] = pw->pw_uid;
		ctx->service_gid[0] = ctx->service_gid[1] = pw->pw_gid;
	} else {
		ctx->service_uid[0] = cfg->worker_uid_min;
		ctx->service_uid[1] = cfg->worker_uid_min + 1;
		ctx->service_gid[0] = (gid_t)ctx->service_uid[0];
		ctx->service_gid[1] = (gid_t)ctx->service_uid[1];
	}
	snprintf(path, sizeof(path), "%s/%s", cfg->state_dir, UIDS_FILE);
	if ((f = fopen(path, "re")) == NULL) {
		if (errno == ENOENT)
			return 0;
		log_error("cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	rc = uids_parse(ctx, f, path);
	fclose(f);
	return rc;
}

int
sup_uid_for(struct sup_ctx *ctx, const struct sup_child *c, uid_t *uid,
    gid_t *gid)
{
	struct sup_uid *u;
	uid_t cand;
	size_t i;

	switch (c->kind->id) {
	case SUP_KIND_JOURNALD:
	case SUP_KIND_FRONT:
		*uid = ctx->service_uid[c->kind->id];
		*gid = ctx->service_gid[c->kind->id];
		return 0;
	default:
		break;
	}
	for (i = 0; i < ctx->nuids; i++)
		if (strcmp(ctx->uids[i].tenant, c->tenant_name) == 0) {
			*uid = ctx->uids[i].uid;
			*gid = (gid_t)*uid;
			return 0;
		}
	/* The lowest uid of the range no tenant has had. */
	for (cand = ctx->cfg->worker_uid_min + 2;
	    cand <= ctx->cfg->worker_uid_max; cand++) {
		for (i = 0; i < ctx->nuids; i++)
			if (ctx->uids[i].uid == cand)
				break;
		if (i == ctx->nuids)
			break;
	}
	if (cand > ctx->cfg->worker_uid_max) {
		log_error("%s: worker-uid-range is exhausted", c->label);
		return -1;
	}
	if ((u = reallocarray(ctx->uids, ctx->nuids + 1, sizeof(*u))) == NULL)
		return -1;
	ctx->uids = u;
	snprintf(u[ctx->nuids].tenant, sizeof(u[0].tenant), "%s",
	    c->tenant_name);
	u[ctx->nuids++].uid = cand;
	if (uids_save(ctx) != 0) {
		ctx->nuids--;
		return -1;
	}
	log_info("%s: assigned uid %u", c->label, (unsigned)cand);
	*uid = cand;
	*gid = (gid_t)cand;
	return 0;
}
