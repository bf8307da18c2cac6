/*
 * proctab.c: the static process table and the lifecycle of every child.
 * Runs in palyrad. Everything about a child kind is decided in sup_kinds[];
 * every change of a child's state goes through sup_child_transition().
 *
 * Children are reaped through pidfds, so no SIGCHLD handler races with the
 * loop. A child that dies is restarted after a back-off that doubles while
 * it keeps dying and starts higher for a child that died before it ever
 * became ready; a worker that keeps dying at start is parked and reported
 * while everything else runs on. A dying worker never touches journald, the
 * front or other tenants. Workers start lazily (supervisor/pool.c); one that
 * exits PROC_EXIT_IDLE has retired and goes back to IDLE, not to back-off.
 */
#include <sys/wait.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "ipc.h"
#include "ipc.pb-c.h"
#include "log.h"
#include "proc.h"
#include "sup.h"
#include "vault.h"

#define PEER(k)	(1U << (k))

const struct sup_kind sup_kinds[SUP_KIND_COUNT] = {
	[SUP_KIND_JOURNALD] = {
		.id = SUP_KIND_JOURNALD,
		.name = "journald",
		.executable = "palyra-journald",
		.sandbox = "journald",
		/* WORKER_WANTED: a worker to recover runs that wait for
		 * an approval (journald/approvals.c). */
		.allowed = IPC_TYPE_BIT(IPC_READY) |
		    IPC_TYPE_BIT(IPC_WORKER_WANTED),
		.peers = PEER(SUP_KIND_FRONT) | PEER(SUP_KIND_WORKER),
		.stop_order = 1,	/* last: commits what the others sent */
		.backoff_min_ms = SUP_RESTART_MIN_MS,
		.backoff_early_ms = SUP_EARLY_BACKOFF_MS,
		.backoff_max_ms = SUP_RESTART_MAX_MS,
		.park_after = 0,	/* the host needs it: never give up */
	},
	[SUP_KIND_FRONT] = {
		.id = SUP_KIND_FRONT,
		.name = "front",
		.executable = "palyra-front",
		.sandbox = "front",
		.allowed = IPC_TYPE_BIT(IPC_READY) |
		    IPC_TYPE_BIT(IPC_PROCESS_LIST_REQUEST) |
		    IPC_TYPE_BIT(IPC_WORKER_WANTED) |
		    IPC_TYPE_BIT(IPC_TENANT_ADMIN) |
		    IPC_TYPE_BIT(IPC_VAULT_ADMIN),
		.pass_listeners = 1,
		.peers = PEER(SUP_KIND_JOURNALD) | PEER(SUP_KIND_WORKER),
		.stop_order = 0,	/* drains its calls with the workers */
		.backoff_min_ms = SUP_RESTART_MIN_MS,
		.backoff_early_ms = SUP_EARLY_BACKOFF_MS,
		.backoff_max_ms = SUP_RESTART_MAX_MS,
		.park_after = 0,
	},
	[SUP_KIND_WORKER] = {
		.id = SUP_KIND_WORKER,
		.name = "worker",
		.executable = "palyra-worker",
		.sandbox = "worker",
		.allowed = IPC_TYPE_BIT(IPC_READY),
		.per_tenant = 1,
		.peers = PEER(SUP_KIND_JOURNALD) | PEER(SUP_KIND_FRONT),
		.stop_order = 0,
		.backoff_min_ms = SUP_RESTART_MIN_MS,
		.backoff_early_ms = SUP_EARLY_BACKOFF_MS,
		.backoff_max_ms = SUP_RESTART_MAX_MS,
		.park_after = SUP_PARK_AFTER,
	},
};

/* What the exit codes of common/proc.h mean, for the logs. */
const char *
sup_exit_name(int status)
{
	switch (status) {
	case PROC_EXIT_OK:
		return "stopped";
	case PROC_EXIT_FATAL:
		return "fatal error";
	case PROC_EXIT_USAGE:
		return "bad command line";
	case PROC_EXIT_PEER:
		return "supervisor sent a bad message";
	case PROC_EXIT_STORAGE:
		return "storage failure";
	case PROC_EXIT_SANDBOX:
		return "sandbox could not be applied";
	case PROC_EXIT_IDLE:
		return "idle";
	case 127:
		return "could not execute";
	default:
		return "unknown exit code";
	}
}

uint64_t
sup_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

const char *
sup_child_state_name(enum sup_child_state s)
{
	static const char *names[] = { "idle", "starting", "ready",
	    "backoff", "stopping", "stopped", "parked" };

	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] :
	    "invalid";
}

/* The one place a child's state changes. Returns 0 or -EINVAL. */
int
sup_child_transition(struct sup_child *c, enum sup_child_state to)
{
	enum sup_child_state from = c->state;
	int ok = 0;

	switch (to) {
	case SUP_CHILD_STARTING:
		ok = from == SUP_CHILD_IDLE || from == SUP_CHILD_BACKOFF ||
		    from == SUP_CHILD_PARKED;
		break;
	case SUP_CHILD_READY:
		ok = from == SUP_CHILD_STARTING;
		break;
	case SUP_CHILD_BACKOFF:
		ok = from == SUP_CHILD_STARTING || from == SUP_CHILD_READY ||
		    from == SUP_CHILD_BACKOFF;
		break;
	case SUP_CHILD_PARKED:
		ok = from == SUP_CHILD_STARTING || from == SUP_CHILD_READY;
		break;
	case SUP_CHILD_STOPPING:
		ok = from == SUP_CHILD_STARTING || from == SUP_CHILD_READY;
		break;
	case SUP_CHILD_STOPPED:
		ok = from != SUP_CHILD_STOPPED;
		break;
	case SUP_CHILD_IDLE:
		/* A worker retired after its idle-timeout, or a parked one
		 * that a reload forgave: started again when wanted. */
		ok = from == SUP_CHILD_READY || from == SUP_CHILD_STARTING ||
		    from == SUP_CHILD_PARKED;
		break;
	}
	if (!ok) {
		log_error("%s: illegal transition %s -> %s", c->label,
		    sup_child_state_name(from), sup_child_state_name(to));
		return -EINVAL;
	}
	log_debug("%s: %s -> %s", c->label, sup_child_state_name(from),
	    sup_child_state_name(to));
	c->state = to;
	return 0;
}

static void
announce_if_ready(struct sup_ctx *ctx)
{
	struct sup_child *c;

	if (ctx->announced)
		return;
	/* Workers start lazily: serving needs journald and the front. */
	TAILQ_FOREACH(c, &ctx->children, entry)
		if (!c->kind->per_tenant && c->state != SUP_CHILD_READY)
			return;
	ctx->announced = 1;
	log_info("serving: gRPC on %s, HTTP on %s, %zu tenant(s), "
	    "started in %llu ms", ctx->grpc_addr, ctx->http_addr,
	    ctx->cfg->ntenants,
	    (unsigned long long)(sup_now_ms() - ctx->started_ms));
}

static void
facts_copy(char facts[SUP_FACTS_MAX][SUP_FACT_LEN], size_t *n,
    char **from, size_t count)
{
	size_t i;

	char *p;

	*n = 0;
	for (i = 0; i < count && i < SUP_FACTS_MAX; i++) {
		snprintf(facts[*n], SUP_FACT_LEN, "%s", from[i]);
		/* A child's words: printable ASCII only from here on. */
		for (p = facts[*n]; *p != '\0'; p++)
			if (*p < 0x20 || *p > 0x7e)
				*p = '?';
		(*n)++;
	}
}

static void
child_msg(struct ipc_chan *chan, struct ipc_msg *m, void *arg)
{
	struct sup_child *c = arg;
	Palyra__Ipc__Ready *r;
	Palyra__Ipc__WorkerWanted *ww;

	switch (m->hdr.type) {
	case IPC_READY:
		if (c->state != SUP_CHILD_STARTING)
			break;
		r = (Palyra__Ipc__Ready *)m->msg;
		facts_copy(c->applied, &c->napplied, r->sandbox_applied,
		    r->n_sandbox_applied);
		facts_copy(c->skipped, &c->nskipped, r->sandbox_skipped,
		    r->n_sandbox_skipped);
		(void)sup_child_transition(c, SUP_CHILD_READY);
		c->did_work = 1;
		log_debug("%s: ready (pid %d)", c->label, (int)c->pid);
		if (c->kind->per_tenant)
			sup_child_wire(c->ctx, c);
		announce_if_ready(c->ctx);
		break;
	case IPC_PROCESS_LIST_REQUEST:
		/* Only the front's channel allows this type (sup_kinds[]). */
		(void)sup_status_send(c->ctx, c, m->hdr.request_id);
		break;
	case IPC_TENANT_ADMIN:
		/* Only the front's channel allows this type (sup_kinds[]). */
		sup_tenants_admin(c->ctx, c, m->hdr.request_id,
		    (Palyra__Ipc__TenantAdminRequest *)m->msg);
		break;
	case IPC_VAULT_ADMIN:
		/* Only the front's channel allows this type (sup_kinds[]). */
		sup_vault_admin(c->ctx, c, m->hdr.request_id,
		    (Palyra__Ipc__VaultAdmin *)m->msg);
		break;
	case IPC_WORKER_WANTED:
		/* Only the front's and journald's channels allow this type
		 * (sup_kinds[]); sup_worker_wanted() checks the tenant. */
		ww = (Palyra__Ipc__WorkerWanted *)m->msg;
		if ((c->kind->id == SUP_KIND_FRONT ||
		    c->kind->id == SUP_KIND_JOURNALD) && !c->ctx->stopping)
			sup_worker_wanted(c->ctx, ww->tenant, ww->count);
		break;
	default:
		break;
	}
}

static void
child_chan_closed(struct ipc_chan *chan, int error, void *arg)
{
	struct sup_child *c = arg;

	/* A child that sends garbage has lost our trust: end it now. Its
	 * exit is then handled like any other. A channel that merely closed
	 * means the child is exiting; its pidfd tells us when. */
	if ((error == -EBADMSG || error == -EPROTO || error == -EMSGSIZE ||
	    error == -EPERM) && c->pid > 0) {
		log_warn("%s: killed for a malformed message", c->label);
		kill(c->pid, SIGKILL);
	}
}

static void
restart_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sup_child *c = arg;

	if (c->ctx->stopping || c->state != SUP_CHILD_BACKOFF)
		return;
	sup_child_start(c);
}

static void
child_schedule_restart(struct sup_child *c)
{
	const struct sup_kind *k = c->kind;
	uint64_t lived = sup_now_ms() - c->started_ms;
	struct timeval tv;

	/*
	 * A child that died before it ever became ready is throttled harder
	 * than one that served, and only such deaths in a row park it: a
	 * worker killed from outside after it served (an operator's kill -9,
	 * a chaos test) is restarted quickly however often that happens,
	 * while its back-off still grows if it keeps dying young.
	 */
	if (!c->did_work) {
		c->early_deaths++;
		c->backoff_ms = c->backoff_ms < k->backoff_early_ms ?
		    k->backoff_early_ms : c->backoff_ms * 2;
	} else {
		c->early_deaths = 0;
		if (lived > SUP_WARM_MS || c->backoff_ms < k->backoff_min_ms)
			c->backoff_ms = k->backoff_min_ms;
		else
			c->backoff_ms *= 2;
	}
	if (c->backoff_ms > k->backoff_max_ms)
		c->backoff_ms = k->backoff_max_ms;
	if (k->park_after != 0 && c->early_deaths >= k->park_after) {
		(void)sup_child_transition(c, SUP_CHILD_PARKED);
		log_error("%s: died at start %u times in a row; parked until "
		    "the configuration is reloaded", c->label,
		    c->early_deaths);
		return;
	}
	(void)sup_child_transition(c, SUP_CHILD_BACKOFF);
	tv.tv_sec = (time_t)(c->backoff_ms / 1000);
	tv.tv_usec = (suseconds_t)(c->backoff_ms % 1000) * 1000;
	evtimer_add(c->restart_timer, &tv);
	log_info("%s: restarting in %llu ms (restart %u)", c->label,
	    (unsigned long long)c->backoff_ms, c->restarts);
}

static void
child_free(struct sup_child *c)
{
	if (c->chan != NULL)
		ipc_chan_free(c->chan);
	if (c->exit_event != NULL)
		event_free(c->exit_event);
	if (c->restart_timer != NULL)
		event_free(c->restart_timer);
	if (c->pidfd != -1)
		close(c->pidfd);
	free(c);
}

static void
child_exited(evutil_socket_t fd, short what, void *arg)
{
	struct sup_child *c = arg;
	struct sup_ctx *ctx = c->ctx;
	int status = 0, code;
	pid_t r;

	do
		r = waitpid(c->pid, &status, WNOHANG);
	while (r == -1 && errno == EINTR);
	if (r == 0)
		return;
	event_free(c->exit_event);
	c->exit_event = NULL;
	close(c->pidfd);
	c->pidfd = -1;
	if (c->chan != NULL) {
		ipc_chan_free(c->chan);
		c->chan = NULL;
	}
	code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	if (WIFSIGNALED(status))
		snprintf(c->last_exit, sizeof(c->last_exit), "signal %d",
		    WTERMSIG(status));
	else
		snprintf(c->last_exit, sizeof(c->last_exit), "exit %d: %s",
		    code, sup_exit_name(code));
	if (WIFSIGNALED(status))
		log_warn("%s: pid %d killed by signal %d", c->label,
		    (int)c->pid, WTERMSIG(status));
	else if (ctx->stopping || c->removing || (code == PROC_EXIT_IDLE &&
	    c->kind->per_tenant))
		log_info("%s: pid %d exited: %s", c->label, (int)c->pid,
		    sup_exit_name(code));
	else
		log_warn("%s: pid %d exited unexpectedly: %s (%d)", c->label,
		    (int)c->pid, sup_exit_name(code), code);
	c->pid = 0;
	if (ctx->stopping) {
		(void)sup_child_transition(c, SUP_CHILD_STOPPED);
		sup_children_stop(ctx);
		if (sup_children_all_stopped(ctx))
			event_base_loopexit(ctx->base, NULL);
		return;
	}
	if (c->removing) {
		log_info("%s: removed", c->label);
		TAILQ_REMOVE(&ctx->children, c, entry);
		sup_cgroup_release(ctx, c);
		child_free(c);
		return;
	}
	if (WIFEXITED(status) && code == PROC_EXIT_IDLE &&
	    c->kind->per_tenant) {
		sup_worker_retired(c);
		return;
	}
	c->restarts++;
	child_schedule_restart(c);
}

void
sup_child_start(struct sup_child *c)
{
	struct sup_ctx *ctx = c->ctx;
	int sv[2], rc;

	c->napplied = c->nskipped = 0;
	if ((rc = ipc_socketpair(sv)) < 0) {
		log_error("%s: socketpair: %s", c->label, strerror(-rc));
		c->started_ms = sup_now_ms();
		c->did_work = 0;
		child_schedule_restart(c);
		return;
	}
	c->generation++;
	c->did_work = 0;
	c->wanted = 0;
	c->started_ms = sup_now_ms();
	(void)sup_child_transition(c, SUP_CHILD_STARTING);
	rc = sup_spawn(ctx, c, sv[1]);
	close(sv[1]);
	if (rc < 0) {
		close(sv[0]);
		child_schedule_restart(c);
		return;
	}
	c->chan = ipc_chan_new(ctx->base, sv[0], c->label, c->kind->allowed,
	    child_msg, child_chan_closed, c);
	c->exit_event = event_new(ctx->base, c->pidfd, EV_READ, child_exited,
	    c);
	if (c->chan == NULL || c->exit_event == NULL ||
	    event_add(c->exit_event, NULL) == -1)
		fatalx("%s: cannot watch the child", c->label);
	log_info("%s: started pid %d", c->label, (int)c->pid);
	sup_child_configure(ctx, c);
	/* A worker is wired once it is ready (child_msg()): one that dies
	 * at start never reaches the front, whose calls wait for another. */
	if (!c->kind->per_tenant)
		sup_child_wire(ctx, c);
}

struct sup_child *
sup_child_add(struct sup_ctx *ctx, const struct sup_kind *kind,
    const struct cfg_tenant *tenant, uint32_t index)
{
	struct sup_child *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->ctx = ctx;
	c->kind = kind;
	c->tenant = tenant;
	c->pidfd = -1;
	c->uid = (uid_t)-1;
	c->gid = (gid_t)-1;
	c->index = index;
	if (tenant != NULL) {
		snprintf(c->tenant_name, sizeof(c->tenant_name), "%s",
		    tenant->name);
		snprintf(c->label, sizeof(c->label), "%s[%s#%u]", kind->name,
		    tenant->name, index);
	} else
		snprintf(c->label, sizeof(c->label), "%s", kind->name);
	if ((c->restart_timer = evtimer_new(ctx->base, restart_cb, c)) ==
	    NULL) {
		free(c);
		return NULL;
	}
	if (ctx->root && sup_uid_for(ctx, c, &c->uid, &c->gid) != 0) {
		event_free(c->restart_timer);
		free(c);
		return NULL;
	}
	if (tenant != NULL &&
	    sup_state_tenant(ctx, tenant, c->uid, c->gid) != 0) {
		event_free(c->restart_timer);
		free(c);
		return NULL;
	}
	TAILQ_INSERT_TAIL(&ctx->children, c, entry);
	return c;
}

/* Reload dropped the child's tenant: drain it, then forget it. */
void
sup_child_remove(struct sup_child *c)
{
	c->removing = 1;
	c->tenant = NULL;
	evtimer_del(c->restart_timer);
	if (c->state == SUP_CHILD_STARTING || c->state == SUP_CHILD_READY) {
		(void)sup_child_transition(c, SUP_CHILD_STOPPING);
		kill(c->pid, SIGTERM);
		return;
	}
	if (c->pid <= 0) {
		log_info("%s: removed", c->label);
		TAILQ_REMOVE(&c->ctx->children, c, entry);
		sup_cgroup_release(c->ctx, c);
		child_free(c);
	}
}

struct sup_child *
sup_child_find(struct sup_ctx *ctx, enum sup_kind_id kind, const char *tenant)
{
	struct sup_child *c;

	TAILQ_FOREACH(c, &ctx->children, entry)
		if (c->kind->id == kind && !c->removing && (tenant == NULL ||
		    strcmp(c->tenant_name, tenant) == 0))
			return c;
	return NULL;
}

int
sup_children_init(struct sup_ctx *ctx)
{
	size_t i;

	TAILQ_INIT(&ctx->children);
	if (sup_child_add(ctx, &sup_kinds[SUP_KIND_JOURNALD], NULL, 0) ==
	    NULL ||
	    sup_child_add(ctx, &sup_kinds[SUP_KIND_FRONT], NULL, 0) == NULL)
		return -ENOMEM;
	/* One idle slot per tenant; more are added as they are wanted. */
	for (i = 0; i < ctx->cfg->ntenants; i++)
		if (sup_child_add(ctx, &sup_kinds[SUP_KIND_WORKER],
		    &ctx->cfg->tenants[i], 0) == NULL)
			return -ENOMEM;
	return 0;
}

void
sup_children_start(struct sup_ctx *ctx)
{
	struct sup_child *c;

	/* Workers wait until the front wants one (IPC_WORKER_WANTED). */
	TAILQ_FOREACH(c, &ctx->children, entry)
		if (c->state == SUP_CHILD_IDLE && !c->kind->per_tenant)
			sup_child_start(c);
}

/*
 * Stops children in stop_order: the front and the workers first (the
 * workers end their runs as CANCELLED, the front relays that to clients),
 * journald last so that it commits what they sent. Called again after each
 * exit until everything is stopped.
 */
void
sup_children_stop(struct sup_ctx *ctx)
{
	struct sup_child *c;
	int order, pending;

	ctx->stopping = 1;
	for (order = 0; order <= 1; order++) {
		pending = 0;
		TAILQ_FOREACH(c, &ctx->children, entry) {
			if (c->kind->stop_order != order)
				continue;
			if (c->state == SUP_CHILD_IDLE ||
			    c->state == SUP_CHILD_BACKOFF ||
			    c->state == SUP_CHILD_PARKED) {
				evtimer_del(c->restart_timer);
				c->state = SUP_CHILD_STOPPED;
				continue;
			}
			if (c->state == SUP_CHILD_STARTING ||
			    c->state == SUP_CHILD_READY) {
				(void)sup_child_transition(c,
				    SUP_CHILD_STOPPING);
				kill(c->pid, SIGTERM);
			}
			if (c->state == SUP_CHILD_STOPPING)
				pending = 1;
		}
		if (pending)
			return;
	}
}

int
sup_children_all_stopped(const struct sup_ctx *ctx)
{
	const struct sup_child *c;

	TAILQ_FOREACH(c, &ctx->children, entry)
		if (c->state != SUP_CHILD_STOPPED)
			return 0;
	return 1;
}

/* Past the stop deadline: SIGKILL whatever is left, and reap it. */
void
sup_children_kill(struct sup_ctx *ctx)
{
	struct sup_child *c;

	TAILQ_FOREACH(c, &ctx->children, entry) {
		if (c->pid <= 0)
			continue;
		log_warn("%s: pid %d did not stop in time; killing it",
		    c->label, (int)c->pid);
		kill(c->pid, SIGKILL);
		(void)waitpid(c->pid, NULL, 0);
		c->pid = 0;
	}
}

void
sup_children_free(struct sup_ctx *ctx)
{
	struct sup_child *c;

	while ((c = TAILQ_FIRST(&ctx->children)) != NULL) {
		TAILQ_REMOVE(&ctx->children, c, entry);
		child_free(c);
	}
}
