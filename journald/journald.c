/*
 * journald.c: palyra-journald's entry point, context and channels.
 * Runs in palyra-journald (service user, no network). Touches STATE_DIR
 * (system.db, tenants/NAME/journal.db) and the descriptors the supervisor
 * hands it: PROC_FD_PARENT, then the front and the workers by ATTACH_PEER.
 *
 * Who may say what is decided here, by channel: the supervisor configures
 * and attaches peers, the front stores and looks up tokens, a worker appends
 * to the journal of the tenant the supervisor attached it for. Anything else
 * from a peer closes that peer's channel, never this process.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include <sodium.h>

#include "audit.h"
#include "journald.h"
#include "log.h"
#include "proc.h"
#include "sandbox.h"

#define ALLOWED_PARENT                                                         \
	(IPC_TYPE_BIT(IPC_JOURNAL_CONFIG) | IPC_TYPE_BIT(IPC_TENANT_LIST) |    \
	    IPC_TYPE_BIT(IPC_ATTACH_PEER) |                                    \
	    IPC_TYPE_BIT(IPC_JOURNAL_SECRETS) |                                \
	    IPC_TYPE_BIT(IPC_TENANT_AGENTS))
#define ALLOWED_FRONT                                                          \
	(IPC_TYPE_BIT(IPC_TOKEN_STORE) | IPC_TYPE_BIT(IPC_TOKEN_LOOKUP) |      \
	    JNL_AUDIT_FRONT_TYPES | IPC_TYPE_BIT(IPC_JOURNAL_RUN_READ) |       \
	    IPC_TYPE_BIT(IPC_JOURNAL_LIST_REQUEST) |                           \
	    IPC_TYPE_BIT(IPC_JOURNAL_SESSION_REQUEST) |                        \
	    IPC_TYPE_BIT(IPC_TOKEN_LIST_REQUEST) |                             \
	    IPC_TYPE_BIT(IPC_TOKEN_REVOKE) |                                   \
	    IPC_TYPE_BIT(IPC_JOURNAL_AGENT_REQUEST) |                          \
	    IPC_TYPE_BIT(IPC_JOURNAL_STATS_REQUEST) |                          \
	    IPC_TYPE_BIT(IPC_SERVICE_CALL))
#define ALLOWED_WORKER \
	(IPC_TYPE_BIT(IPC_JOURNAL_APPEND) | IPC_TYPE_BIT(IPC_RUN_PREPARE) |    \
	    IPC_TYPE_BIT(IPC_APPROVAL_CREATE) |                                \
	    IPC_TYPE_BIT(IPC_APPROVAL_DECIDE) |                                \
	    IPC_TYPE_BIT(IPC_BUDGET_RESERVE) |                                 \
	    IPC_TYPE_BIT(IPC_BUDGET_SETTLE) | IPC_TYPE_BIT(IPC_RUN_RECOVER) |   \
	    IPC_TYPE_BIT(IPC_MEMORY_STORE) | IPC_TYPE_BIT(IPC_MEMORY_QUERY) |   \
	    IPC_TYPE_BIT(IPC_VAULT_STORE) | IPC_TYPE_BIT(IPC_VAULT_FETCH) |     \
	    IPC_TYPE_BIT(IPC_CRON_FIRED))

#define STOP_POLL_MS 10

uint64_t
jnl_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Same rule as cfg_name_valid(): [A-Za-z0-9._-], 1..NAME_MAX_LEN, not
 * starting with '.' or '-'. A tenant name becomes a directory name. */
int
jnl_name_valid(const char *name)
{
	size_t i;

	if (name == NULL || name[0] == '.' || name[0] == '-')
		return 0;
	for (i = 0; name[i] != '\0'; i++) {
		if (i >= NAME_MAX_LEN)
			return 0;
		if (!((name[i] >= 'a' && name[i] <= 'z') ||
			(name[i] >= 'A' && name[i] <= 'Z') ||
			(name[i] >= '0' && name[i] <= '9') || name[i] == '.' ||
			name[i] == '_' || name[i] == '-'))
			return 0;
	}
	return i > 0;
}

struct jnl_tenant *
jnl_tenant_find(struct jnl_ctx *ctx, const char *name)
{
	size_t i;

	for (i = 0; i < ctx->ntenants; i++)
		if (strcmp(ctx->tenants[i]->name, name) == 0)
			return ctx->tenants[i];
	return NULL;
}

/*
 * Opens a tenant's journal and interrupts the runs a previous life left
 * behind. A schema newer than ours is fatal (PROC_EXIT_STORAGE); any other
 * failure leaves that tenant unavailable, not the others.
 */
static void
tenant_open(struct jnl_ctx *ctx, struct jnl_tenant *t, const char *reason)
{
	int rc;

	if (t->db != NULL)
		return;
	if ((rc = jnl_tenant_open(ctx, t)) == -ENOTSUP)
		exit(PROC_EXIT_STORAGE);
	if (rc < 0) {
		log_error("tenant %s: journal unavailable", t->name);
		return;
	}
	if (jnl_stats_load(t) < 0)
		log_warn("tenant %s: its live runs are not counted", t->name);
	(void)jnl_reconcile(ctx, t, reason);
	jnl_cron_tenant_open(ctx, t);
	/* Opening read the schema and whatever the loads above touched into
	 * the page cache; an idle tenant needs none of it until its next
	 * append, and a host may carry thousands of them. */
	(void)sqlite3_db_release_memory(t->db);
}

static struct jnl_tenant *
tenant_add(struct jnl_ctx *ctx, const char *name)
{
	struct jnl_tenant **tenants, **open, *t;
	size_t cap;

	if ((t = jnl_tenant_find(ctx, name)) != NULL)
		return t;
	if (ctx->ntenants >= CFG_MAX_TENANTS) {
		log_error(
		    "more than %d tenants; %s ignored", CFG_MAX_TENANTS, name);
		return NULL;
	}
	if (ctx->ntenants == ctx->tenants_cap) {
		cap = ctx->tenants_cap ? ctx->tenants_cap * 2 : 16;
		if ((tenants = reallocarray(
			 ctx->tenants, cap, sizeof(*tenants))) == NULL)
			return NULL;
		ctx->tenants = tenants;
		if ((open = reallocarray(ctx->open, cap, sizeof(*open))) ==
		    NULL)
			return NULL;
		ctx->open = open;
		ctx->tenants_cap = cap;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	snprintf(t->name, sizeof(t->name), "%s", name);
	ctx->tenants[ctx->ntenants++] = t;
	return t;
}

/* Workers. */

void
jnl_worker_fail(struct jnl_ctx *ctx, struct jnl_worker *w)
{
	struct jnl_worker **p;

	if (w->closing)
		return;
	w->closing = 1;
	ipc_chan_pause(w->chan);
	for (p = &ctx->workers; *p != NULL; p = &(*p)->next)
		if (*p == w) {
			*p = w->next;
			break;
		}
	w->next = ctx->dead_workers;
	ctx->dead_workers = w;
	jnl_runprep_worker_gone(ctx, w);
	jnl_budget_worker_gone(ctx, w);
	jnl_approvals_worker_gone(ctx, w);
	jnl_cron_worker_gone(ctx, w);
	/* Its runs will never be finished by anyone: say so in the journal.
	 * Only its own: the tenant's other workers go on with theirs. At
	 * shutdown the next start does it. */
	if (!ctx->stopping)
		(void)jnl_reconcile_worker(ctx, w, "worker exited");
	jnl_schedule_commit(ctx);
}

static void
worker_msg(struct ipc_chan *chan, struct ipc_msg *m, void *arg)
{
	struct jnl_worker *w = arg;

	if (w->closing)
		return;
	if (m->hdr.type == IPC_JOURNAL_APPEND)
		jnl_handle_append(w->ctx, w, m);
	else if (m->hdr.type == IPC_RUN_PREPARE)
		jnl_runprep_request(w->ctx, w, m);
	else if (m->hdr.type == IPC_APPROVAL_CREATE)
		jnl_approval_create(w->ctx, w, m);
	else if (m->hdr.type == IPC_APPROVAL_DECIDE)
		jnl_approval_decide(w->ctx, w, m);
	else if (m->hdr.type == IPC_RUN_RECOVER)
		jnl_recover_request(w->ctx, w, m);
	else if (m->hdr.type == IPC_BUDGET_RESERVE)
		jnl_budget_reserve(w->ctx, w, m);
	else if (m->hdr.type == IPC_BUDGET_SETTLE)
		jnl_budget_settle(w->ctx, w, m);
	else if (m->hdr.type == IPC_MEMORY_STORE)
		jnl_memory_store(w->ctx, w, m);
	else if (m->hdr.type == IPC_MEMORY_QUERY)
		jnl_memory_query(w->ctx, w, m);
	else if (m->hdr.type == IPC_VAULT_STORE)
		jnl_vault_store(w->ctx, w, m);
	else if (m->hdr.type == IPC_VAULT_FETCH)
		jnl_vault_fetch(w->ctx, w, m);
	else if (m->hdr.type == IPC_CRON_FIRED)
		jnl_cron_fired(w->ctx, w, m);
}

static void
worker_close(struct ipc_chan *chan, int error, void *arg)
{
	struct jnl_worker *w = arg;

	if (error == 0)
		log_info("%s: channel closed", ipc_chan_peer(chan));
	else
		log_warn("%s: channel dropped (%s)", ipc_chan_peer(chan),
		    strerror(-error));
	jnl_worker_fail(w->ctx, w);
}

static void
worker_attach(struct jnl_ctx *ctx, const char *tenant, uint32_t index, int fd)
{
	struct jnl_worker *w, *old;
	struct jnl_tenant *t;
	char peer[NAME_MAX_LEN + 24];

	if (!jnl_name_valid(tenant) || (t = tenant_add(ctx, tenant)) == NULL) {
		log_warn("supervisor: worker channel for an invalid tenant");
		close(fd);
		return;
	}
	tenant_open(ctx, t, "journald restarted");
	/* A new channel replaces the one of the same tenant and index:
	 * that worker is gone. The tenant's other workers are not. */
	for (old = ctx->workers; old != NULL; old = old->next)
		if (old->tenant == t && old->index == index) {
			log_info("%s: replaced", ipc_chan_peer(old->chan));
			jnl_worker_fail(ctx, old);
			break;
		}
	if ((w = calloc(1, sizeof(*w))) == NULL) {
		log_error("worker[%s]: out of memory", tenant);
		close(fd);
		return;
	}
	snprintf(peer, sizeof(peer), "worker[%s#%u]", t->name, index);
	w->ctx = ctx;
	w->tenant = t;
	w->index = index;
	if ((w->chan = ipc_chan_new(ctx->base, fd, peer, ALLOWED_WORKER,
		 worker_msg, worker_close, w)) == NULL) {
		log_error("%s: cannot set up the channel", peer);
		close(fd);
		free(w);
		return;
	}
	ipc_chan_set_drain_cb(w->chan, jnl_worker_drained);
	w->next = ctx->workers;
	ctx->workers = w;
	log_info("%s: attached", peer);
	jnl_cron_worker_attached(ctx, w);
}

static void
workers_reap(struct jnl_ctx *ctx)
{
	struct jnl_worker *w;
	size_t i;

	while ((w = ctx->dead_workers) != NULL) {
		ctx->dead_workers = w->next;
		ipc_chan_free(w->chan);
		for (i = 0; i < w->nbacklog; i++)
			jnl_ack_release(&w->backlog[i]);
		free(w->backlog);
		free(w->live);
		free(w);
	}
}

/* The front. */

static void
front_msg(struct ipc_chan *chan, struct ipc_msg *m, void *arg)
{
	struct jnl_ctx *ctx = arg;

	if (chan != ctx->front)
		return;
	if (m->hdr.type == IPC_TOKEN_STORE)
		jnl_handle_token_store(ctx, m);
	else if (m->hdr.type == IPC_TOKEN_LOOKUP)
		jnl_handle_token_lookup(ctx, m);
	else if (m->hdr.type == IPC_TOKEN_LIST_REQUEST)
		jnl_handle_token_list(ctx, m);
	else if (m->hdr.type == IPC_TOKEN_REVOKE)
		jnl_handle_token_revoke(ctx, m);
	else if (m->hdr.type == IPC_JOURNAL_RUN_READ)
		jnl_run_read_request(ctx, m);
	else if (m->hdr.type == IPC_JOURNAL_LIST_REQUEST)
		jnl_list_request(ctx, m);
	else if (m->hdr.type == IPC_JOURNAL_SESSION_REQUEST)
		jnl_session_request(ctx, m);
	else if (m->hdr.type == IPC_JOURNAL_AGENT_REQUEST)
		jnl_agent_request(ctx, m);
	else if (m->hdr.type == IPC_JOURNAL_STATS_REQUEST)
		jnl_stats_request(ctx, m);
	else if (m->hdr.type == IPC_SERVICE_CALL)
		jnl_service_call(ctx, m);
	else
		jnl_audit_front_msg(ctx, m);
}

static void
front_close(struct ipc_chan *chan, int error, void *arg)
{
	struct jnl_ctx *ctx = arg;

	if (error == 0)
		log_info("front: channel closed");
	else
		log_warn("front: channel dropped (%s)", strerror(-error));
	if (ctx->front == chan)
		ctx->front = NULL;
	ipc_chan_free(chan);
}

static void
front_attach(struct jnl_ctx *ctx, int fd)
{
	if (ctx->front != NULL)
		ipc_chan_free(ctx->front);
	if ((ctx->front = ipc_chan_new(ctx->base, fd, "front", ALLOWED_FRONT,
		 front_msg, front_close, ctx)) == NULL) {
		log_error("front: cannot set up the channel");
		close(fd);
		return;
	}
	log_info("front: attached");
}

/* The supervisor. */

static void stop(struct jnl_ctx *ctx, int exit_code, const char *why);

static void
parent_msg(struct ipc_chan *chan, struct ipc_msg *m, void *arg)
{
	struct jnl_ctx *ctx = arg;
	const Palyra__Ipc__JournalConfig *config;
	const Palyra__Ipc__TenantList *list;
	const Palyra__Ipc__AttachPeer *attach;
	struct jnl_tenant *t;
	size_t i;
	int fd;

	switch (m->hdr.type) {
	case IPC_JOURNAL_CONFIG:
		config = (const Palyra__Ipc__JournalConfig *)m->msg;
		/* synchronous cannot change inside a transaction. */
		jnl_commit_all(ctx);
		ctx->durability_full = config->durability_full;
		(void)jnl_db_set_durability(
		    ctx->system_db, ctx->durability_full);
		for (i = 0; i < ctx->ntenants; i++)
			if (ctx->tenants[i]->db != NULL)
				(void)jnl_db_set_durability(
				    ctx->tenants[i]->db, ctx->durability_full);
		log_info(
		    "durability %s", ctx->durability_full ? "full" : "normal");
		jnl_audit_configure(ctx, config->checkpoint_interval_ms);
		break;
	case IPC_TENANT_LIST:
		list = (const Palyra__Ipc__TenantList *)m->msg;
		for (i = 0; i < list->n_names; i++) {
			if (!jnl_name_valid(list->names[i])) {
				log_warn("supervisor: invalid tenant name "
					 "ignored");
				continue;
			}
			if ((t = tenant_add(ctx, list->names[i])) == NULL)
				continue;
			/* A tenant the list has no quota for has none. */
			t->quota = i < list->n_journal_quotas
				       ? list->journal_quotas[i]
				       : 0;
			tenant_open(ctx, t, "journald restarted");
		}
		log_info("%zu tenant(s)", ctx->ntenants);
		break;
	case IPC_JOURNAL_SECRETS:
		jnl_handle_secrets(ctx, m);
		break;
	case IPC_TENANT_AGENTS:
		jnl_tenant_agents(ctx, m);
		break;
	case IPC_ATTACH_PEER:
		attach = (const Palyra__Ipc__AttachPeer *)m->msg;
		fd = m->fds[0];
		m->fds[0] = -1;
		if (ctx->stopping)
			close(fd);
		else if (attach->kind == PALYRA__IPC__PEER_KIND__PEER_FRONT)
			front_attach(ctx, fd);
		else if (attach->kind == PALYRA__IPC__PEER_KIND__PEER_WORKER)
			worker_attach(ctx, attach->tenant, attach->index, fd);
		else {
			log_warn("supervisor: cannot attach a peer of kind %d",
			    (int)attach->kind);
			close(fd);
		}
		break;
	default:
		break;
	}
}

static void
parent_close(struct ipc_chan *chan, int error, void *arg)
{
	struct jnl_ctx *ctx = arg;

	if (error != 0) {
		log_error("supervisor channel failed (%s)", strerror(-error));
		stop(ctx, PROC_EXIT_PEER, "supervisor channel failed");
	} else
		stop(ctx, PROC_EXIT_OK, "supervisor channel closed");
}

/* Group commit and shutdown. */

static void
commit_cb(evutil_socket_t fd, short what, void *arg)
{
	struct jnl_ctx *ctx = arg;

	jnl_commit_all(ctx);
	workers_reap(ctx);
}

static int
all_drained(struct jnl_ctx *ctx)
{
	struct jnl_worker *w;

	for (w = ctx->workers; w != NULL; w = w->next)
		if (w->nbacklog > 0 ||
		    (!ipc_chan_dead(w->chan) && ipc_chan_queued(w->chan) > 0))
			return 0;
	if (ctx->front != NULL && !ipc_chan_dead(ctx->front) &&
	    ipc_chan_queued(ctx->front) > 0)
		return 0;
	return 1;
}

/* Waits, boundedly, for the acks of the last commit to reach the peers. */
static void
stop_poll_cb(evutil_socket_t fd, short what, void *arg)
{
	struct jnl_ctx *ctx = arg;
	struct timeval tv = {0, STOP_POLL_MS * 1000};

	if (all_drained(ctx) || jnl_now_ms() >= ctx->stop_deadline_ms) {
		event_base_loopbreak(ctx->base);
		return;
	}
	event_add(ctx->stop_ev, &tv);
}

static void
stop(struct jnl_ctx *ctx, int exit_code, const char *why)
{
	struct jnl_worker *w;

	if (ctx->stopping)
		return;
	ctx->stopping = 1;
	ctx->exit_code = exit_code;
	log_info("stopping: %s", why);
	/* Nothing new comes in; what is in a batch commits and is acked. */
	for (w = ctx->workers; w != NULL; w = w->next)
		ipc_chan_pause(w->chan);
	if (ctx->front != NULL)
		ipc_chan_pause(ctx->front);
	jnl_commit_all(ctx);
	ctx->stop_deadline_ms = jnl_now_ms() + JNL_STOP_DEADLINE_MS;
	stop_poll_cb(-1, 0, ctx);
}

/*
 * SIGTERM drains: the workers and the front are stopping too and still
 * journal their runs' last events (CANCELLED), so appends are served until
 * every one of their channels closed, boundedly, and only then the stop
 * commits, acknowledges and exits.
 */
static void
drain_poll_cb(evutil_socket_t fd, short what, void *arg)
{
	struct jnl_ctx *ctx = arg;
	struct timeval tv = {0, STOP_POLL_MS * 1000};

	if (ctx->stopping)
		return;
	if (ctx->workers == NULL && ctx->front == NULL) {
		stop(ctx, PROC_EXIT_OK, "every peer closed");
		return;
	}
	if (jnl_now_ms() >= ctx->drain_deadline_ms) {
		stop(ctx, PROC_EXIT_OK, "drain deadline passed");
		return;
	}
	event_add(ctx->drain_ev, &tv);
}

static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct jnl_ctx *ctx = arg;

	if (ctx->stopping || ctx->draining)
		return;
	ctx->draining = 1;
	ctx->drain_deadline_ms = jnl_now_ms() + JNL_STOP_DRAIN_MS;
	log_info("%s: serving appends until every peer closed",
	    sig == SIGTERM ? "SIGTERM" : "SIGINT");
	drain_poll_cb(-1, 0, ctx);
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: palyra-journald -s STATE_DIR [-U UID:GID] [-v] [-d]\n");
	exit(PROC_EXIT_USAGE);
}

static void
raise_fd_limit(void)
{
	struct rlimit rl;

	/* Three descriptors per open tenant database (db, -wal, -shm). */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void
ctx_free(struct jnl_ctx *ctx)
{
	struct jnl_worker *w;
	size_t i;

	jnl_audit_free(ctx);
	jnl_runprep_free(ctx);
	jnl_cron_free(ctx);
	while ((w = ctx->workers) != NULL) {
		ctx->workers = w->next;
		w->next = ctx->dead_workers;
		ctx->dead_workers = w;
	}
	workers_reap(ctx);
	if (ctx->front != NULL)
		ipc_chan_free(ctx->front);
	if (ctx->parent != NULL)
		ipc_chan_free(ctx->parent);
	for (i = 0; i < ctx->ntenants; i++) {
		jnl_tenant_close(ctx->tenants[i]);
		if (ctx->tenants[i]->agents != NULL)
			palyra__ipc__tenant_agents__free_unpacked(
			    ctx->tenants[i]->agents, NULL);
		free(ctx->tenants[i]);
	}
	free(ctx->tenants);
	free(ctx->open);
	free(ctx->acks);
	jnl_tokens_close(ctx);
	jnl_db_close(ctx->system_db);
	jnl_secrets_clear(ctx);
	jnl_usage_free(ctx);
	jnl_memory_free(ctx);
	free(ctx->payload_buf);
	if (ctx->commit_ev != NULL)
		event_free(ctx->commit_ev);
	if (ctx->sigterm_ev != NULL)
		event_free(ctx->sigterm_ev);
	if (ctx->sigint_ev != NULL)
		event_free(ctx->sigint_ev);
	if (ctx->stop_ev != NULL)
		event_free(ctx->stop_ev);
	if (ctx->drain_ev != NULL)
		event_free(ctx->drain_ev);
	if (ctx->base != NULL)
		event_base_free(ctx->base);
}

int
journald_main(int argc, char **argv)
{
	Palyra__Ipc__Ready ready = PALYRA__IPC__READY__INIT;
	struct jnl_ctx ctx;
	struct sbx_profile profile;
	struct sbx_facts facts;
	const char *ids = NULL;
	int ch, verbose = 0, to_stderr = 0, rc;

	memset(&ctx, 0, sizeof(ctx));
	ctx.durability_full = 1;
	while ((ch = getopt(argc, argv, "s:U:vd")) != -1) {
		switch (ch) {
		case 's':
			ctx.state_dir = optarg;
			break;
		case 'U':
			ids = optarg;
			break;
		case 'v':
			verbose = 1;
			break;
		case 'd':
			to_stderr = 1;
			break;
		default:
			usage();
		}
	}
	if (ctx.state_dir == NULL || optind != argc ||
	    sbx_profile_journald(&profile, ids, ctx.state_dir) < 0)
		usage();

	/* Die with the supervisor, even if it could not close our channel. */
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) == -1)
		fatal("prctl(PR_SET_PDEATHSIG)");
	umask(077);
	log_init("palyra-journald", NULL, verbose, to_stderr);
	if (fcntl(PROC_FD_PARENT, F_GETFD) == -1)
		fatalx(
		    "no supervisor channel on descriptor %d", PROC_FD_PARENT);
	signal(SIGPIPE, SIG_IGN);
	/* From here on the cwd (and root) is STATE_DIR: the databases are
	 * opened by paths relative to it; STATE_DIR itself is for logs. */
	/* Before the sandbox: libsodium may look for /dev/urandom. */
	if (sodium_init() < 0)
		fatalx("libsodium failed to initialise");
	/* Before the sandbox: the zone files are outside the state dir. */
	if (jnl_usage_init(&ctx) < 0)
		fatalx("out of memory for the time zones");
	sbx_facts_init(&facts);
	if (sbx_apply(&profile, &facts) < 0) {
		log_error("cannot apply the sandbox; exiting");
		exit(PROC_EXIT_SANDBOX);
	}
	raise_fd_limit();

	if ((ctx.base = event_base_new()) == NULL ||
	    event_base_priority_init(ctx.base, JNL_PRIO_COUNT) == -1)
		fatalx("cannot create the event loop");
	if ((ctx.payload_buf = malloc(JNL_PAYLOAD_MAX)) == NULL)
		fatal("malloc");
	ctx.commit_ev = event_new(ctx.base, -1, 0, commit_cb, &ctx);
	ctx.stop_ev = evtimer_new(ctx.base, stop_poll_cb, &ctx);
	ctx.drain_ev = evtimer_new(ctx.base, drain_poll_cb, &ctx);
	ctx.sigterm_ev = evsignal_new(ctx.base, SIGTERM, signal_cb, &ctx);
	ctx.sigint_ev = evsignal_new(ctx.base, SIGINT, signal_cb, &ctx);
	if (ctx.commit_ev == NULL || ctx.stop_ev == NULL ||
	    ctx.drain_ev == NULL || ctx.sigterm_ev == NULL ||
	    ctx.sigint_ev == NULL ||
	    event_priority_set(ctx.commit_ev, JNL_PRIO_COMMIT) == -1 ||
	    event_priority_set(ctx.sigterm_ev, JNL_PRIO_SIGNAL) == -1 ||
	    event_priority_set(ctx.sigint_ev, JNL_PRIO_SIGNAL) == -1 ||
	    event_add(ctx.sigterm_ev, NULL) == -1 ||
	    event_add(ctx.sigint_ev, NULL) == -1)
		fatalx("cannot set up events");
	if (jnl_memory_init(&ctx) < 0)
		fatalx("cannot set up the memory sweep");

	if (jnl_db_open("system.db", JNL_DB_SYSTEM, ctx.durability_full,
		&ctx.system_db) < 0 ||
	    jnl_tokens_open(&ctx) < 0) {
		log_error("%s/system.db: cannot open; exiting", ctx.state_dir);
		exit(PROC_EXIT_STORAGE);
	}
	if (jnl_audit_init(&ctx) < 0)
		fatalx("cannot set up the journal audit");

	if ((ctx.parent = ipc_chan_new(ctx.base, PROC_FD_PARENT, "supervisor",
		 ALLOWED_PARENT, parent_msg, parent_close, &ctx)) == NULL)
		fatalx("cannot set up the supervisor channel");
	ready.pid = (uint32_t)getpid();
	ready.n_sandbox_applied = facts.napplied;
	ready.sandbox_applied = facts.applied_list;
	ready.n_sandbox_skipped = facts.nskipped;
	ready.sandbox_skipped = facts.skipped_list;
	if ((rc = ipc_chan_send(
		 ctx.parent, IPC_READY, 0, &ready.base, NULL, 0)) < 0)
		fatalx("cannot send READY: %s", strerror(-rc));
	log_info("ready, state in %s", ctx.state_dir);

	event_base_dispatch(ctx.base);

	jnl_commit_all(&ctx);
	rc = ctx.exit_code;
	ctx_free(&ctx);
	log_info("stopped");
	return rc;
}

int
main(int argc, char **argv)
{
	return journald_main(argc, argv);
}
