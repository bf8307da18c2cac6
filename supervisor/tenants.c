/*
 * tenants.c: tenants created at run time through the admin API (DESIGN
 * sections 7 and 10; `palyractl tenant`). Runs in palyrad.
 *
 * The front forwards every /admin/v1/tenants request as IPC_TENANT_ADMIN
 * (it has checked the admin token); the answer is IPC_TENANT_ADMIN_REPLY
 * with a gRPC status code. Runtime tenants are kept in STATE/tenants.conf
 * (root, 0600), written in palyrad.conf syntax by this file only, atomically
 * (temporary file, fsync, rename, fsync of the directory), and read by the
 * palyrad.conf parser itself at start-up and on SIGHUP, so that the bounds
 * of every limit are the parser's. A name palyrad.conf declares wins: the
 * runtime entry is then ignored, with a log line. A change is applied by
 * the reload machinery (sup_reload_apply()): a new struct cfg that shares
 * everything with the running one but its tenant array. The tenants of
 * palyrad.conf are listed and shown, never changed here. A deleted tenant's
 * journal stays on disk (and its tokens in system.db): creating the name
 * again brings both back.
 *
 * Touches: STATE/tenants.conf, ctx->cfg (through sup_reload_apply()) and
 * the front's channel.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "grpc_status.h"
#include "ipc.h"
#include "ipc.pb-c.h"
#include "log.h"
#include "sup.h"

/* The wire cost of one element of a repeated message field. */
#define REPEATED_OVERHEAD 6
#define TENANTS_PAGE_BYTES SUP_STATUS_PAGE_BYTES
#define TENANT_TEXT_MAX 1024 /* one tenant block */

static void
tenants_path(const char *state_dir, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", state_dir, SUP_TENANTS_FILE);
}

/*
 * Moves the file names of from into to, so that the cfg_pos of tenants
 * moved along keeps pointing at a live string. Returns 0 or -1 (ENOMEM).
 */
static int
files_move(struct cfg *to, struct cfg *from)
{
	char **grown;
	size_t i;

	if (from->nfiles == 0)
		return 0;
	grown =
	    realloc(to->files, (to->nfiles + from->nfiles) * sizeof(*grown));
	if (grown == NULL)
		return -1;
	to->files = grown;
	for (i = 0; i < from->nfiles; i++)
		to->files[to->nfiles++] = from->files[i];
	from->nfiles = 0;
	return 0;
}

int
sup_tenants_merge(const char *state_dir, struct cfg *cfg)
{
	struct cfg *rt;
	struct cfg_tenant *grown;
	struct stat st;
	char path[4096], err[CFG_ERR_LEN];
	size_t i, n, taken = 0;

	tenants_path(state_dir, path, sizeof(path));
	if (lstat(path, &st) == -1) {
		if (errno == ENOENT)
			return 0;
		log_error("%s: %s", path, strerror(errno));
		return -1;
	}
	/* Only palyrad writes it: anything else is not to be trusted. */
	if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & 077) != 0) {
		log_error("%s: not a regular file of uid %u with mode 0600; "
			  "refusing it",
		    path, (unsigned)geteuid());
		return -1;
	}
	if (cfg_load(path, NULL, &rt, err, sizeof(err)) != 0) {
		log_error("runtime tenants: %s", err);
		return -1;
	}
	n = rt->ntenants;
	grown = realloc(cfg->tenants, (cfg->ntenants + n + 1) * sizeof(*grown));
	if (grown == NULL || files_move(cfg, rt) == -1) {
		if (grown != NULL)
			cfg->tenants = grown;
		log_error("runtime tenants: out of memory");
		cfg_free(rt);
		return -1;
	}
	cfg->tenants = grown;
	for (i = 0; i < n; i++) {
		struct cfg_tenant *t = &rt->tenants[i];

		if (cfg_tenant_find(cfg, t->name) != NULL) {
			log_warn(
			    "%s: tenant \"%s\" is declared in the "
			    "configuration, which wins; the runtime tenant "
			    "is ignored",
			    path, t->name);
			continue;
		}
		if (cfg->ntenants >= CFG_MAX_TENANTS) {
			log_warn("%s: tenant \"%s\" ignored: too many tenants "
				 "(limit %d)",
			    path, t->name, CFG_MAX_TENANTS);
			continue;
		}
		cfg->tenants[cfg->ntenants] = *t;
		cfg->tenants[cfg->ntenants].runtime = 1;
		cfg->ntenants++;
		memset(t, 0, sizeof(*t));
		taken++;
	}
	cfg_free(rt);
	if (taken > 0)
		log_info("%zu runtime tenant(s) from %s", taken, path);
	return 0;
}

/*
 * The block of tenant name in palyrad.conf syntax with the limits l has
 * (has_X); a zero size, count or weight means none and is left out, as
 * palyrad.conf has no way to say it. Returns 0, or -1 if it does not fit.
 */
static int
tenant_text(
    char *buf, size_t len, const char *name, const Palyra__Ipc__TenantLimits *l)
{
	int n;

	n = snprintf(buf, len, "tenant \"%s\" {\n", name);
	if (l->has_workers && n >= 0 && (size_t)n < len)
		n += snprintf(buf + n, len - n, "\tworkers %u\n", l->workers);
	if (l->has_idle_timeout_ms && n >= 0 && (size_t)n < len)
		n += snprintf(buf + n, len - n, "\tidle-timeout %llums\n",
		    (unsigned long long)l->idle_timeout_ms);
	if (l->has_memory_limit && l->memory_limit != 0 && n >= 0 &&
	    (size_t)n < len)
		n += snprintf(buf + n, len - n, "\tmemory-limit %llu\n",
		    (unsigned long long)l->memory_limit);
	if (l->has_pids_limit && l->pids_limit != 0 && n >= 0 &&
	    (size_t)n < len)
		n += snprintf(
		    buf + n, len - n, "\tpids-limit %u\n", l->pids_limit);
	if (l->has_cpu_weight && l->cpu_weight != 0 && n >= 0 &&
	    (size_t)n < len)
		n += snprintf(
		    buf + n, len - n, "\tcpu-weight %u\n", l->cpu_weight);
	if (l->has_journal_quota && l->journal_quota != 0 && n >= 0 &&
	    (size_t)n < len)
		n += snprintf(buf + n, len - n, "\tjournal-quota %llu\n",
		    (unsigned long long)l->journal_quota);
	if (n >= 0 && (size_t)n < len)
		n += snprintf(buf + n, len - n, "}\n");
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* Every limit of t, as set. */
static void
limits_of(const struct cfg_tenant *t, Palyra__Ipc__TenantLimits *l)
{
	palyra__ipc__tenant_limits__init(l);
	l->has_workers = l->has_idle_timeout_ms = l->has_memory_limit =
	    l->has_pids_limit = l->has_cpu_weight = l->has_journal_quota = 1;
	l->workers = t->workers;
	l->idle_timeout_ms = t->idle_timeout_ms;
	l->memory_limit = t->memory_limit;
	l->pids_limit = t->pids_limit;
	l->cpu_weight = t->cpu_weight;
	l->journal_quota = t->journal_quota;
}

/* Writes the runtime tenants of the n in tenants; returns 0 or -1
 * (logged). */
static int
tenants_save(const struct cfg_tenant *tenants, size_t n, const char *state_dir)
{
	Palyra__Ipc__TenantLimits l;
	char path[4096], tmp[4096 + 8], text[TENANT_TEXT_MAX];
	size_t i;
	FILE *f;
	int fd, dfd;

	tenants_path(state_dir, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	(void)unlink(tmp);
	fd = open(
	    tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd == -1 || (f = fdopen(fd, "w")) == NULL) {
		log_error("cannot write %s: %s", tmp, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	fprintf(f,
	    "# Tenants created at run time through the admin API "
	    "(palyractl tenant).\n# Written by palyrad in palyrad.conf(5) "
	    "syntax; change them with palyractl.\n");
	for (i = 0; i < n; i++) {
		if (!tenants[i].runtime)
			continue;
		limits_of(&tenants[i], &l);
		if (tenant_text(text, sizeof(text), tenants[i].name, &l) == -1)
			continue; /* cannot happen: names are short */
		fprintf(f, "\n%s", text);
	}
	if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
		log_error("cannot write %s: %s", tmp, strerror(errno));
		fclose(f);
		(void)unlink(tmp);
		return -1;
	}
	fclose(f);
	if (rename(tmp, path) == -1) {
		log_error("cannot rename %s: %s", tmp, strerror(errno));
		(void)unlink(tmp);
		return -1;
	}
	/* The rename itself must survive a crash. */
	if ((dfd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) != -1) {
		(void)fsync(dfd);
		close(dfd);
	}
	return 0;
}

/*
 * Parses the block of one tenant with the limits l, so that their bounds
 * and defaults are the parser's. Returns the parsed configuration (its
 * only tenant is the one), or NULL with a message for the client in msg.
 */
static struct cfg *
tenant_parse(const char *state_dir, const char *name,
    const Palyra__Ipc__TenantLimits *l, char *msg, size_t msglen)
{
	char path[4096], text[TENANT_TEXT_MAX], err[CFG_ERR_LEN];
	const char *why;
	struct cfg *one;
	int colons;

	tenants_path(state_dir, path, sizeof(path));
	if (tenant_text(text, sizeof(text), name, l) == -1) {
		snprintf(msg, msglen, "invalid tenant");
		return NULL;
	}
	if (cfg_parse_buffer(
		path, text, strlen(text), NULL, &one, err, sizeof(err)) != 0 ||
	    one->ntenants != 1) {
		/* "FILE:LINE:COL: message": the client gets the message. */
		why = strncmp(err, path, strlen(path)) == 0 ? err + strlen(path)
							    : err;
		for (colons = 0; *why != '\0' && colons < 3; why++)
			if (*why == ':')
				colons++;
		while (*why == ' ')
			why++;
		snprintf(
		    msg, msglen, "%s", *why != '\0' ? why : "invalid limits");
		if (one != NULL)
			cfg_free(one);
		return NULL;
	}
	return one;
}

static uint32_t
running_workers(const struct sup_ctx *ctx, const char *tenant)
{
	const struct sup_child *c;
	uint32_t n = 0;

	TAILQ_FOREACH(c, &ctx->children, entry)
	if (c->kind->id == SUP_KIND_WORKER && !c->removing && c->pid > 0 &&
	    strcmp(c->tenant_name, tenant) == 0)
		n++;
	return n;
}

/* What a tenant looks like in a reply; strings point into t. */
static void
info_fill(const struct sup_ctx *ctx, const struct cfg_tenant *t,
    Palyra__Ipc__TenantInfo *ti, char **agents)
{
	size_t i;

	palyra__ipc__tenant_info__init(ti);
	ti->name = t->name;
	ti->source = t->runtime ? "runtime" : "config";
	ti->workers = t->workers;
	ti->memory_limit = t->memory_limit;
	ti->pids_limit = t->pids_limit;
	ti->cpu_weight = t->cpu_weight;
	ti->journal_quota = t->journal_quota;
	ti->idle_timeout_ms = t->idle_timeout_ms;
	ti->running_workers = running_workers(ctx, t->name);
	for (i = 0; i < t->nagents; i++)
		agents[i] = t->agents[i].name;
	ti->n_agents = t->nagents;
	ti->agents = agents;
}

static void
reply_send(struct sup_child *to, uint32_t request_id,
    Palyra__Ipc__TenantAdminReply *reply)
{
	int rc;

	if (to->chan == NULL)
		return;
	if ((rc = ipc_chan_send(to->chan, IPC_TENANT_ADMIN_REPLY, request_id,
		 &reply->base, NULL, 0)) < 0)
		log_warn("%s: cannot answer a tenant request: %s", to->label,
		    strerror(-rc));
}

static void
reply_status(struct sup_child *to, uint32_t request_id, uint32_t code,
    const char *message)
{
	Palyra__Ipc__TenantAdminReply reply =
	    PALYRA__IPC__TENANT_ADMIN_REPLY__INIT;

	reply.code = code;
	reply.message = (char *)message;
	reply_send(to, request_id, &reply);
}

/* One tenant (GET, and the answer of CREATE and UPDATE). */
static void
reply_tenant(struct sup_ctx *ctx, struct sup_child *to, uint32_t request_id,
    const struct cfg_tenant *t, const char *message)
{
	Palyra__Ipc__TenantAdminReply reply =
	    PALYRA__IPC__TENANT_ADMIN_REPLY__INIT;
	Palyra__Ipc__TenantInfo ti, *tip = &ti;
	char *agents[CFG_MAX_AGENTS + 1];

	if (t->nagents > CFG_MAX_AGENTS) {
		reply_status(
		    to, request_id, GRPC_STATUS_INTERNAL, "internal error");
		return;
	}
	info_fill(ctx, t, &ti, agents);
	reply.message = (char *)message;
	reply.tenants = &tip;
	reply.n_tenants = 1;
	reply_send(to, request_id, &reply);
}

/* Every tenant, in pages that each fit one datagram. */
static void
reply_list(struct sup_ctx *ctx, struct sup_child *to, uint32_t request_id)
{
	Palyra__Ipc__TenantAdminReply reply =
	    PALYRA__IPC__TENANT_ADMIN_REPLY__INIT;
	Palyra__Ipc__TenantInfo *infos = NULL, **ptrs = NULL;
	const struct cfg *cfg = ctx->cfg;
	char **agents = NULL;
	size_t i, nagents = 0, used = 0, start = 0, bytes = 0, one;

	for (i = 0; i < cfg->ntenants; i++)
		nagents += cfg->tenants[i].nagents;
	infos = calloc(cfg->ntenants + 1, sizeof(*infos));
	ptrs = calloc(cfg->ntenants + 1, sizeof(*ptrs));
	agents = calloc(nagents + 1, sizeof(*agents));
	if (infos == NULL || ptrs == NULL || agents == NULL) {
		reply_status(to, request_id, GRPC_STATUS_RESOURCE_EXHAUSTED,
		    "out of memory");
		goto out;
	}
	for (i = 0; i < cfg->ntenants; i++) {
		info_fill(ctx, &cfg->tenants[i], &infos[i], &agents[used]);
		used += cfg->tenants[i].nagents;
		ptrs[i] = &infos[i];
	}
	for (i = 0; i < cfg->ntenants; i++) {
		one = protobuf_c_message_get_packed_size(&infos[i].base) +
		      REPEATED_OVERHEAD;
		if (i > start && bytes + one > TENANTS_PAGE_BYTES) {
			reply.tenants = &ptrs[start];
			reply.n_tenants = i - start;
			reply.more = 1;
			reply_send(to, request_id, &reply);
			start = i;
			bytes = 0;
		}
		bytes += one;
	}
	reply.tenants = &ptrs[start];
	reply.n_tenants = cfg->ntenants - start;
	reply.more = 0;
	reply_send(to, request_id, &reply);
out:
	free(agents);
	free(ptrs);
	free(infos);
}

/*
 * Makes a configuration whose tenants are `tenants` (n of them; the array
 * becomes the new configuration's) and applies it with the reload
 * machinery. drop: the name of a tenant of the running configuration that
 * is not in `tenants` (freed here), or NULL. from: a configuration whose
 * file names the new tenants' positions point into (moved), or NULL.
 * The file is written first: a change that cannot be saved is not made.
 * Returns 0, or -1 (out of memory, or the file cannot be written; logged;
 * nothing changed, `tenants` not taken).
 */
static int
tenants_apply(struct sup_ctx *ctx, struct cfg_tenant *tenants, size_t n,
    const char *drop, struct cfg *from)
{
	struct cfg *cur = ctx->cfg, *next, *shell;
	struct cfg_tenant *dropped = NULL, *old_tenants;
	const struct cfg_tenant *t;

	if ((next = malloc(sizeof(*next))) == NULL ||
	    (shell = calloc(1, sizeof(*shell))) == NULL) {
		free(next);
		return -1;
	}
	if (drop != NULL && (t = cfg_tenant_find(cur, drop)) != NULL) {
		if ((dropped = malloc(sizeof(*dropped))) == NULL) {
			free(shell);
			free(next);
			return -1;
		}
		*dropped = *t;
	}
	if ((from != NULL && files_move(cur, from) == -1) ||
	    tenants_save(tenants, n, cur->state_dir) == -1) {
		free(dropped);
		free(shell);
		free(next);
		return -1;
	}
	*next = *cur;
	next->tenants = tenants;
	next->ntenants = n;
	old_tenants = cur->tenants;
	(void)sup_reload_apply(ctx, next, 0);
	/* Everything of cur now belongs to next, but the dropped tenant. */
	free(old_tenants);
	free(cur);
	shell->tenants = dropped;
	shell->ntenants = dropped != NULL ? 1 : 0;
	cfg_free(shell);
	return 0;
}

/* A copy of the running tenant array with room for one more. */
static struct cfg_tenant *
tenants_copy(const struct cfg *cfg, const char *skip, size_t *n)
{
	struct cfg_tenant *a;
	size_t i;

	if ((a = calloc(cfg->ntenants + 1, sizeof(*a))) == NULL)
		return NULL;
	*n = 0;
	for (i = 0; i < cfg->ntenants; i++)
		if (skip == NULL || strcmp(cfg->tenants[i].name, skip) != 0)
			a[(*n)++] = cfg->tenants[i];
	return a;
}

#define APPLY_FAILED "cannot apply the change (see the palyrad log)"

static void
op_create(struct sup_ctx *ctx, struct sup_child *to, uint32_t request_id,
    const char *name, const Palyra__Ipc__TenantLimits *given)
{
	Palyra__Ipc__TenantLimits none = PALYRA__IPC__TENANT_LIMITS__INIT;
	const struct cfg_tenant *t;
	struct cfg_tenant *a;
	struct cfg *one;
	char msg[CFG_ERR_LEN];
	size_t n;

	if ((t = cfg_tenant_find(ctx->cfg, name)) != NULL) {
		reply_status(to, request_id, GRPC_STATUS_ALREADY_EXISTS,
		    t->runtime ? "tenant already exists"
			       : "tenant already exists: it is declared in "
				 "palyrad.conf");
		return;
	}
	if (ctx->cfg->ntenants >= CFG_MAX_TENANTS) {
		reply_status(to, request_id, GRPC_STATUS_RESOURCE_EXHAUSTED,
		    "too many tenants");
		return;
	}
	/* Limits not given take palyrad.conf's defaults. */
	if ((one = tenant_parse(ctx->cfg->state_dir, name,
		 given != NULL ? given : &none, msg, sizeof(msg))) == NULL) {
		reply_status(to, request_id, GRPC_STATUS_INVALID_ARGUMENT, msg);
		return;
	}
	if ((a = tenants_copy(ctx->cfg, NULL, &n)) == NULL) {
		cfg_free(one);
		reply_status(
		    to, request_id, GRPC_STATUS_UNAVAILABLE, APPLY_FAILED);
		return;
	}
	a[n] = one->tenants[0];
	a[n].runtime = 1;
	if (tenants_apply(ctx, a, n + 1, NULL, one) == -1) {
		free(a);
		cfg_free(one);
		reply_status(
		    to, request_id, GRPC_STATUS_UNAVAILABLE, APPLY_FAILED);
		return;
	}
	/* The new configuration owns the tenant now. */
	memset(&one->tenants[0], 0, sizeof(one->tenants[0]));
	cfg_free(one);
	log_info("tenant %s: created through the admin API", name);
	if ((t = cfg_tenant_find(ctx->cfg, name)) != NULL)
		reply_tenant(ctx, to, request_id, t, "tenant created");
}

static void
op_update(struct sup_ctx *ctx, struct sup_child *to, uint32_t request_id,
    const struct cfg_tenant *t, const Palyra__Ipc__TenantLimits *given)
{
	Palyra__Ipc__TenantLimits l;
	struct cfg_tenant *a;
	struct cfg *one;
	char msg[CFG_ERR_LEN], name[NAME_MAX_LEN + 1];
	size_t n, i;

	snprintf(name, sizeof(name), "%s", t->name);
	/* The limits given replace the running ones; the rest stay. */
	limits_of(t, &l);
	if (given != NULL) {
		if (given->has_workers)
			l.workers = given->workers;
		if (given->has_idle_timeout_ms)
			l.idle_timeout_ms = given->idle_timeout_ms;
		if (given->has_memory_limit)
			l.memory_limit = given->memory_limit;
		if (given->has_pids_limit)
			l.pids_limit = given->pids_limit;
		if (given->has_cpu_weight)
			l.cpu_weight = given->cpu_weight;
		if (given->has_journal_quota)
			l.journal_quota = given->journal_quota;
	}
	if ((one = tenant_parse(
		 ctx->cfg->state_dir, name, &l, msg, sizeof(msg))) == NULL) {
		reply_status(to, request_id, GRPC_STATUS_INVALID_ARGUMENT, msg);
		return;
	}
	if ((a = tenants_copy(ctx->cfg, NULL, &n)) == NULL) {
		cfg_free(one);
		reply_status(
		    to, request_id, GRPC_STATUS_UNAVAILABLE, APPLY_FAILED);
		return;
	}
	for (i = 0; i < n; i++) {
		if (strcmp(a[i].name, name) != 0)
			continue;
		a[i].workers = one->tenants[0].workers;
		a[i].idle_timeout_ms = one->tenants[0].idle_timeout_ms;
		a[i].memory_limit = one->tenants[0].memory_limit;
		a[i].pids_limit = one->tenants[0].pids_limit;
		a[i].cpu_weight = one->tenants[0].cpu_weight;
		a[i].journal_quota = one->tenants[0].journal_quota;
	}
	cfg_free(one);
	if (tenants_apply(ctx, a, n, NULL, NULL) == -1) {
		free(a);
		reply_status(
		    to, request_id, GRPC_STATUS_UNAVAILABLE, APPLY_FAILED);
		return;
	}
	log_info("tenant %s: limits updated through the admin API", name);
	if ((t = cfg_tenant_find(ctx->cfg, name)) != NULL)
		reply_tenant(ctx, to, request_id, t, "tenant updated");
}

static void
op_delete(struct sup_ctx *ctx, struct sup_child *to, uint32_t request_id,
    const struct cfg_tenant *t)
{
	Palyra__Ipc__TenantAdminReply reply =
	    PALYRA__IPC__TENANT_ADMIN_REPLY__INIT;
	char name[NAME_MAX_LEN + 1];
	struct cfg_tenant *a;
	size_t n;

	snprintf(name, sizeof(name), "%s", t->name);
	if ((a = tenants_copy(ctx->cfg, name, &n)) == NULL ||
	    tenants_apply(ctx, a, n, name, NULL) == -1) {
		free(a);
		reply_status(
		    to, request_id, GRPC_STATUS_UNAVAILABLE, APPLY_FAILED);
		return;
	}
	log_info("tenant %s: deleted through the admin API; its journal "
		 "stays on disk",
	    name);
	reply.message =
	    "tenant deleted: its workers drain and stop; its "
	    "journal and tokens stay on disk and come back if the name is "
	    "created again";
	reply_send(to, request_id, &reply);
}

void
sup_tenants_admin(struct sup_ctx *ctx, struct sup_child *from,
    uint32_t request_id, const Palyra__Ipc__TenantAdminRequest *req)
{
	const struct cfg_tenant *t;
	char err[CFG_ERR_LEN], msg[CFG_ERR_LEN + 64];

	if (ctx->stopping) {
		reply_status(from, request_id, GRPC_STATUS_UNAVAILABLE,
		    "palyrad is stopping");
		return;
	}
	if (req->op == PALYRA__IPC__TENANT_ADMIN_OP__TENANT_ADMIN_RELOAD) {
		if (sup_reload(ctx, "admin API", err, sizeof(err)) == -1) {
			snprintf(msg, sizeof(msg), "reload failed, the running "
			    "configuration is kept: %s", err);
			reply_status(from, request_id,
			    GRPC_STATUS_FAILED_PRECONDITION, msg);
			return;
		}
		/* A reload changes workers only: from, the front, stays. */
		reply_list(ctx, from, request_id);
		return;
	}
	if (req->op == PALYRA__IPC__TENANT_ADMIN_OP__TENANT_ADMIN_LIST) {
		reply_list(ctx, from, request_id);
		return;
	}
	if (!cfg_name_valid(req->name)) {
		reply_status(from, request_id, GRPC_STATUS_INVALID_ARGUMENT,
		    "invalid tenant name: 1 to 64 of A-Z a-z 0-9 . _ -, not "
		    "starting with . or -");
		return;
	}
	t = cfg_tenant_find(ctx->cfg, req->name);
	switch (req->op) {
	case PALYRA__IPC__TENANT_ADMIN_OP__TENANT_ADMIN_CREATE:
		op_create(ctx, from, request_id, req->name, req->limits);
		return;
	case PALYRA__IPC__TENANT_ADMIN_OP__TENANT_ADMIN_GET:
	case PALYRA__IPC__TENANT_ADMIN_OP__TENANT_ADMIN_UPDATE:
	case PALYRA__IPC__TENANT_ADMIN_OP__TENANT_ADMIN_DELETE:
		break;
	default:
		reply_status(from, request_id, GRPC_STATUS_INVALID_ARGUMENT,
		    "unknown operation");
		return;
	}
	if (t == NULL) {
		reply_status(
		    from, request_id, GRPC_STATUS_NOT_FOUND, "unknown tenant");
		return;
	}
	if (req->op == PALYRA__IPC__TENANT_ADMIN_OP__TENANT_ADMIN_GET) {
		reply_tenant(ctx, from, request_id, t, "");
		return;
	}
	if (!t->runtime) {
		reply_status(from, request_id, GRPC_STATUS_FAILED_PRECONDITION,
		    "tenant is declared in palyrad.conf: change it there and "
		    "reload");
		return;
	}
	if (req->op == PALYRA__IPC__TENANT_ADMIN_OP__TENANT_ADMIN_UPDATE)
		op_update(ctx, from, request_id, t, req->limits);
	else
		op_delete(ctx, from, request_id, t);
}
