/*
 * proctab.c: the static process table and the lifecycle of every child.
 * Runs in palyrad. Everything about a child kind is decided in sup_kinds[];
 * every change of a child's state goes through sup_child_transition().
 *
 * Children are reaped through pidfds, so no SIGCHLD handler races with the
 * loop. A child that dies is restarted after a back-off that doubles while
 * it keeps dying and is harsher for a child that died before it ever became
 * ready; a dying worker never touches journald, the front or other tenants.
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

#define PEER(k)	(1U << (k))

const struct sup_kind sup_kinds[SUP_KIND_COUNT] = {
	[SUP_KIND_JOURNALD] = {
		.id = SUP_KIND_JOURNALD,
		.name = "journald",
		.executable = "palyra-journald",
		.sandbox = "journald",
		.allowed = IPC_TYPE_BIT(IPC_READY),
		.peers = PEER(SUP_KIND_FRONT) | PEER(SUP_KIND_WORKER),
		.stop_order = 2,
	},
	[SUP_KIND_FRONT] = {
		.id = SUP_KIND_FRONT,
		.name = "front",
		.executable = "palyra-front",
		.sandbox = "front",
		.allowed = IPC_TYPE_BIT(IPC_READY),
		.pass_listeners = 1,
		.peers = PEER(SUP_KIND_JOURNALD) | PEER(SUP_KIND_WORKER),
		.stop_order = 0,
	},
	[SUP_KIND_WORKER] = {
		.id = SUP_KIND_WORKER,
		.name = "worker",
		.executable = "palyra-worker",
		.sandbox = "worker",
		.allowed = IPC_TYPE_BIT(IPC_READY),
		.per_tenant = 1,
		.peers = PEER(SUP_KIND_JOURNALD) | PEER(SUP_KIND_FRONT),
		.stop_order = 1,
	},
};

static void	child_start(struct sup_child *);

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
	    "backoff", "stopping", "stopped" };

	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] :
	    "invalid";
}

/* The one place a child's state changes. Returns 0 or -EINVAL. */
static int
sup_child_transition(struct sup_child *c, enum sup_child_state to)
{
	enum sup_child_state from = c->state;
	int ok = 0;

	switch (to) {
	case SUP_CHILD_STARTING:
		ok = from == SUP_CHILD_IDLE || from == SUP_CHILD_BACKOFF;
		break;
	case SUP_CHILD_READY:
		ok = from == SUP_CHILD_STARTING;
		break;
	case SUP_CHILD_BACKOFF:
		ok = from == SUP_CHILD_STARTING || from == SUP_CHILD_READY ||
		    from == SUP_CHILD_BACKOFF;
		break;
	case SUP_CHILD_STOPPING:
		ok = from == SUP_CHILD_STARTING || from == SUP_CHILD_READY;
		break;
	case SUP_CHILD_STOPPED:
		ok = from != SUP_CHILD_STOPPED;
		break;
	case SUP_CHILD_IDLE:
		ok = 0;
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
	size_t i;

	if (ctx->announced)
		return;
	for (i = 0; i < ctx->nchildren; i++)
		if (ctx->children[i].state != SUP_CHILD_READY)
			return;
	ctx->announced = 1;
	log_info("serving: gRPC on %s, HTTP on %s, %zu tenant(s)",
	    ctx->grpc_addr, ctx->http_addr, ctx->cfg->ntenants);
}

static void
child_msg(struct ipc_chan *chan, struct ipc_msg *m, void *arg)
{
	struct sup_child *c = arg;

	switch (m->hdr.type) {
	case IPC_READY:
		if (c->state == SUP_CHILD_STARTING) {
			(void)sup_child_transition(c, SUP_CHILD_READY);
			c->did_work = 1;
			log_debug("%s: ready (pid %d)", c->label, (int)c->pid);
			announce_if_ready(c->ctx);
		}
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
	 * exit is then handled like any other. */
	if (error != 0 && c->pid > 0) {
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
	child_start(c);
}

static void
child_schedule_restart(struct sup_child *c)
{
	uint64_t lived = sup_now_ms() - c->started_ms;
	struct timeval tv;

	/* A child that never became ready, or died at once, is throttled
	 * harder than one that served for a while. */
	if (!c->did_work || lived < SUP_EARLY_DEATH_MS)
		c->backoff_ms = c->backoff_ms < 1000 ? 1000 : c->backoff_ms * 4;
	else if (lived > 60 * 1000)
		c->backoff_ms = SUP_RESTART_MIN_MS;
	else
		c->backoff_ms = c->backoff_ms < SUP_RESTART_MIN_MS ?
		    SUP_RESTART_MIN_MS : c->backoff_ms * 2;
	if (c->backoff_ms > SUP_RESTART_MAX_MS)
		c->backoff_ms = SUP_RESTART_MAX_MS;
	(void)sup_child_transition(c, SUP_CHILD_BACKOFF);
	tv.tv_sec = (time_t)(c->backoff_ms / 1000);
	tv.tv_usec = (suseconds_t)(c->backoff_ms % 1000) * 1000;
	evtimer_add(c->restart_timer, &tv);
	log_info("%s: restarting in %llu ms", c->label,
	    (unsigned long long)c->backoff_ms);
}

static void
child_exited(evutil_socket_t fd, short what, void *arg)
{
	struct sup_child *c = arg;
	struct sup_ctx *ctx = c->ctx;
	int status = 0;
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
	if (WIFSIGNALED(status))
		log_warn("%s: pid %d killed by signal %d", c->label,
		    (int)c->pid, WTERMSIG(status));
	else if (ctx->stopping || WEXITSTATUS(status) != PROC_EXIT_OK)
		(ctx->stopping ? log_info : log_warn)("%s: pid %d exited "
		    "with status %d", c->label, (int)c->pid,
		    WEXITSTATUS(status));
	else
		log_warn("%s: pid %d exited unexpectedly", c->label,
		    (int)c->pid);
	c->pid = 0;
	if (ctx->stopping) {
		(void)sup_child_transition(c, SUP_CHILD_STOPPED);
		sup_children_stop(ctx);
		if (sup_children_all_stopped(ctx))
			event_base_loopexit(ctx->base, NULL);
		return;
	}
	c->restarts++;
	child_schedule_restart(c);
}

static void
child_start(struct sup_child *c)
{
	struct sup_ctx *ctx = c->ctx;
	char peer[sizeof(c->label)];
	int sv[2], rc;

	if ((rc = ipc_socketpair(sv)) < 0) {
		log_error("%s: socketpair: %s", c->label, strerror(-rc));
		c->started_ms = sup_now_ms();
		c->did_work = 0;
		child_schedule_restart(c);
		return;
	}
	c->generation++;
	c->did_work = 0;
	c->started_ms = sup_now_ms();
	(void)sup_child_transition(c, SUP_CHILD_STARTING);
	rc = sup_spawn(ctx, c, sv[1]);
	close(sv[1]);
	if (rc < 0) {
		close(sv[0]);
		child_schedule_restart(c);
		return;
	}
	snprintf(peer, sizeof(peer), "%s", c->label);
	c->chan = ipc_chan_new(ctx->base, sv[0], peer, c->kind->allowed,
	    child_msg, child_chan_closed, c);
	c->exit_event = event_new(ctx->base, c->pidfd, EV_READ, child_exited,
	    c);
	if (c->chan == NULL || c->exit_event == NULL ||
	    event_add(c->exit_event, NULL) == -1)
		fatalx("%s: cannot watch the child", c->label);
	log_info("%s: started pid %d", c->label, (int)c->pid);
	sup_child_configure(ctx, c);
	sup_child_wire(ctx, c);
}

int
sup_children_init(struct sup_ctx *ctx)
{
	size_t i, n = 2 + ctx->cfg->ntenants;
	struct sup_child *c;

	if ((ctx->children = calloc(n, sizeof(*c))) == NULL)
		return -ENOMEM;
	ctx->nchildren = n;
	for (i = 0; i < n; i++) {
		c = &ctx->children[i];
		c->ctx = ctx;
		c->pidfd = -1;
		if (i == 0)
			c->kind = &sup_kinds[SUP_KIND_JOURNALD];
		else if (i == 1)
			c->kind = &sup_kinds[SUP_KIND_FRONT];
		else {
			c->kind = &sup_kinds[SUP_KIND_WORKER];
			c->tenant = &ctx->cfg->tenants[i - 2];
		}
		if (c->tenant != NULL)
			snprintf(c->label, sizeof(c->label), "%s[%s]",
			    c->kind->name, c->tenant->name);
		else
			snprintf(c->label, sizeof(c->label), "%s",
			    c->kind->name);
		c->restart_timer = evtimer_new(ctx->base, restart_cb, c);
		if (c->restart_timer == NULL)
			return -ENOMEM;
	}
	return 0;
}

void
sup_children_start(struct sup_ctx *ctx)
{
	size_t i;

	for (i = 0; i < ctx->nchildren; i++)
		child_start(&ctx->children[i]);
}

/*
 * Stops children in stop_order: the front first (no new calls), then the
 * workers, journald last so that it can commit what they sent. Called again
 * after each exit until everything is stopped.
 */
void
sup_children_stop(struct sup_ctx *ctx)
{
	struct sup_child *c;
	size_t i;
	int order, pending;

	ctx->stopping = 1;
	for (order = 0; order <= 2; order++) {
		pending = 0;
		for (i = 0; i < ctx->nchildren; i++) {
			c = &ctx->children[i];
			if (c->kind->stop_order != order)
				continue;
			if (c->state == SUP_CHILD_IDLE ||
			    c->state == SUP_CHILD_BACKOFF) {
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
	size_t i;

	for (i = 0; i < ctx->nchildren; i++)
		if (ctx->children[i].state != SUP_CHILD_STOPPED)
			return 0;
	return 1;
}

/* Past the stop deadline: SIGKILL whatever is left, and reap it. */
void
sup_children_kill(struct sup_ctx *ctx)
{
	struct sup_child *c;
	size_t i;

	for (i = 0; i < ctx->nchildren; i++) {
		c = &ctx->children[i];
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
	size_t i;

	for (i = 0; i < ctx->nchildren; i++) {
		c = &ctx->children[i];
		if (c->chan != NULL)
			ipc_chan_free(c->chan);
		if (c->exit_event != NULL)
			event_free(c->exit_event);
		if (c->restart_timer != NULL)
			event_free(c->restart_timer);
		if (c->pidfd != -1)
			close(c->pidfd);
	}
	free(ctx->children);
	ctx->children = NULL;
	ctx->nchildren = 0;
}
