/*
 * approvals.c: the workers' approval messages (issue 7), the answers that
 * wait for a commit, and the runs that wait for a decision while no
 * worker holds them. The rows and the decision itself are in
 * approvals_store.c.
 *
 * Runs in palyra-journald. Touches the approvals and approval_grants
 * tables of the journal.db of the worker's channel (never a tenant named
 * in a payload), inside the tenant's open batch; every answer that reports
 * a write goes out only after its commit (jnl_ack.deliver).
 *
 * IPC_APPROVAL_CREATE: a worker's tool call asks a person. The run must
 * be one this channel started (or recovered) and not ended, and the
 * record must name the run's own session, principal and agent. A standing
 * grant (same tool and agent; SESSION: the same session, TTL: the same
 * principal and not expired; never a revoked one) approves it at once
 * (decided_by "grant:ID"); else it is stored pending.
 *
 * IPC_APPROVAL_DECIDE: a decision from the run's own stream, or the
 * worker's timeout (decided_by "timeout": stored expired). The first
 * decision wins: a compare-and-set from pending. An allow of scope
 * SESSION or TTL makes a grant.
 *
 * A run whose worker dies while it waits for a decision (status
 * WAITING_APPROVAL, an approval on record) is not interrupted
 * (jnl_approvals_suspended, used by append.c's reconciliation): journald
 * asks the supervisor for a worker (IPC_WORKER_WANTED), and recover.c
 * hands the run to the first worker that asks for orphans.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "approvals.h"
#include "grpc_status.h"
#include "log.h"

#define E_UNAVAILABLE "journal unavailable"

#define STATE(x) PALYRA__V1__APPROVAL_STATE__APPROVAL_STATE_##x
#define SCOPE(x) PALYRA__V1__APPROVAL_SCOPE__APPROVAL_SCOPE_##x
#define KIND(x) PALYRA__V1__APPROVAL_DECISION_KIND__APPROVAL_DECISION_##x

/* Workers and the supervisor. */

struct jnl_worker *
jnl_appr_holder(struct jnl_ctx *ctx, struct jnl_tenant *t, const char *run_id)
{
	struct jnl_worker *w;
	size_t i;

	for (w = ctx->workers; w != NULL; w = w->next) {
		if (w->tenant != t || w->closing)
			continue;
		for (i = 0; i < w->nlive; i++)
			if (strcmp(w->live[i].run_id, run_id) == 0)
				return w;
	}
	return NULL;
}

/* Sends to a worker; jnl_worker_send drops one that stopped reading. */
static void
worker_send(struct jnl_worker *w, enum ipc_type type, uint32_t request_id,
    const ProtobufCMessage *msg)
{
	jnl_worker_send(w, type, request_id, msg, "an approval message");
}

void
jnl_appr_notify_holder(
    struct jnl_ctx *ctx, struct jnl_tenant *t, const Palyra__V1__Approval *a)
{
	Palyra__Ipc__ApprovalDecisionMsg msg =
	    PALYRA__IPC__APPROVAL_DECISION_MSG__INIT;
	struct jnl_worker *w;

	if ((w = jnl_appr_holder(ctx, t, a->run_id)) == NULL) {
		log_info("%s: approval %s decided while no worker holds run "
			 "%s: kept for its recovery",
		    t->name, a->approval_id, a->run_id);
		return;
	}
	msg.ok = 1;
	msg.approval = (Palyra__V1__Approval *)a;
	worker_send(w, IPC_APPROVAL_DECISION, 0, &msg.base);
}

void
jnl_appr_want_worker(struct jnl_ctx *ctx, struct jnl_tenant *t)
{
	Palyra__Ipc__WorkerWanted msg = PALYRA__IPC__WORKER_WANTED__INIT;
	int rc;

	if (ctx->parent == NULL || ctx->stopping)
		return;
	msg.tenant = t->name;
	msg.count = 1;
	if ((rc = ipc_chan_send(
		 ctx->parent, IPC_WORKER_WANTED, 0, &msg.base, NULL, 0)) < 0)
		log_warn(
		    "%s: cannot ask for a worker: %s", t->name, strerror(-rc));
}

/* Deferred answers, sent once the batch of their write committed. */

enum deferred_kind {
	DEFER_CREATED,	/* ApprovalCreated to the worker */
	DEFER_DECISION, /* ApprovalDecisionMsg to the worker */
	DEFER_SERVICE,	/* ServiceReply to the front, then the holder */
	DEFER_REFUSED,	/* a refused ApprovalDecide, told what stands */
};

struct deferred {
	enum deferred_kind kind;
	Palyra__V1__Approval *approval;
	uint32_t status;   /* DEFER_REFUSED */
	const char *error; /* static */
};

static void
deferred_deliver(struct jnl_ctx *ctx, struct jnl_ack *ack)
{
	Palyra__Ipc__ApprovalCreated created =
	    PALYRA__IPC__APPROVAL_CREATED__INIT;
	Palyra__Ipc__ApprovalDecisionMsg decision =
	    PALYRA__IPC__APPROVAL_DECISION_MSG__INIT;
	struct deferred *d = ack->arg;
	const char *error = ack->error != NULL ? ack->error : JNL_E_STORAGE;
	struct jnl_worker *holder;

	switch (d->kind) {
	case DEFER_CREATED:
		created.ok = ack->ok;
		created.error = (char *)(ack->ok ? "" : error);
		if (ack->ok)
			created.approval = d->approval;
		worker_send(ack->worker, IPC_APPROVAL_CREATED, ack->request_id,
		    &created.base);
		break;
	case DEFER_DECISION:
		decision.ok = ack->ok;
		decision.grpc_status =
		    ack->ok ? GRPC_STATUS_OK : GRPC_STATUS_UNAVAILABLE;
		decision.error = (char *)(ack->ok ? "" : error);
		decision.approval = d->approval;
		worker_send(ack->worker, IPC_APPROVAL_DECISION, ack->request_id,
		    &decision.base);
		/* A run recovered elsewhere hears of it too. */
		holder = ack->ok ? jnl_appr_holder(
				       ctx, ack->tenant, d->approval->run_id)
				 : NULL;
		if (holder != NULL && holder != ack->worker)
			jnl_appr_notify_holder(ctx, ack->tenant, d->approval);
		break;
	case DEFER_REFUSED:
		decision.grpc_status =
		    ack->ok ? d->status : GRPC_STATUS_UNAVAILABLE;
		decision.error = (char *)(ack->ok ? d->error : error);
		decision.approval = ack->ok ? d->approval : NULL;
		worker_send(ack->worker, IPC_APPROVAL_DECISION, ack->request_id,
		    &decision.base);
		break;
	case DEFER_SERVICE:
		if (!ack->ok) {
			(void)jnl_service_reply(ctx, ack->request_id,
			    GRPC_STATUS_UNAVAILABLE, error, NULL, 0);
			break;
		}
		if (d->approval == NULL) {
			Palyra__V1__RevokeGrantResponse revoked =
			    PALYRA__V1__REVOKE_GRANT_RESPONSE__INIT;

			(void)jnl_service_reply(ctx, ack->request_id,
			    GRPC_STATUS_OK, NULL, &revoked.base, 0);
			break;
		}
		(void)jnl_service_reply(ctx, ack->request_id, GRPC_STATUS_OK,
		    NULL, &d->approval->base, 0);
		jnl_appr_notify_holder(ctx, ack->tenant, d->approval);
		break;
	}
	jnl_appr_free(d->approval);
	free(d);
	ack->arg = NULL;
}

/*
 * Queues the answer about approval a (taken) until t's batch commits.
 * Returns 0, or -ENOMEM (a is freed; nothing was queued).
 */
static int
defer(struct jnl_ctx *ctx, struct jnl_tenant *t, struct jnl_worker *w,
    uint32_t request_id, enum deferred_kind kind, Palyra__V1__Approval *a)
{
	struct deferred *d;

	if ((d = calloc(1, sizeof(*d))) == NULL) {
		jnl_appr_free(a);
		return -ENOMEM;
	}
	d->kind = kind;
	d->approval = a;
	if (jnl_ack_defer(ctx, t, w, request_id, deferred_deliver, d) < 0) {
		jnl_appr_free(a);
		free(d);
		return -ENOMEM;
	}
	return 0;
}

static int
defer_refused(struct jnl_ctx *ctx, struct jnl_tenant *t, struct jnl_worker *w,
    uint32_t request_id, uint32_t status, const char *error,
    Palyra__V1__Approval *a)
{
	struct jnl_ack *last;

	if (defer(ctx, t, w, request_id, DEFER_REFUSED, a) < 0)
		return -ENOMEM;
	last = &ctx->acks[ctx->nacks - 1];
	((struct deferred *)last->arg)->status = status;
	((struct deferred *)last->arg)->error = error;
	return 0;
}

int
jnl_appr_defer_service(struct jnl_ctx *ctx, struct jnl_tenant *t,
    uint32_t request_id, Palyra__V1__Approval *a)
{
	return defer(ctx, t, NULL, request_id, DEFER_SERVICE, a);
}

/* Creating. */

static const char *
create_malformed(const Palyra__Ipc__ApprovalCreate *req)
{
	size_t len;

	if (!jnl_appr_id_valid(req->approval_id))
		return "approval_id is not 32 lower-hex characters";
	if (!jnl_appr_run_id_valid(req->run_id))
		return "invalid run_id";
	if (!jnl_name_valid(req->session_id))
		return "invalid session_id";
	if (!jnl_name_valid(req->principal) || !jnl_name_valid(req->agent))
		return "invalid principal or agent";
	len = strnlen(req->tool_call_id, APPR_TOOL_CALL_ID_MAX + 1);
	if (len == 0 || len > APPR_TOOL_CALL_ID_MAX ||
	    !jnl_appr_utf8_valid(req->tool_call_id, len))
		return "invalid tool_call_id";
	if (!jnl_appr_tool_name_valid(req->tool_name))
		return "tool_name is not 1..64 of [A-Za-z0-9._-]";
	len = strnlen(req->arguments_summary, APPR_SUMMARY_MAX + 1);
	if (len > APPR_SUMMARY_MAX)
		return "arguments_summary longer than 1 KiB";
	if (!jnl_appr_utf8_valid(req->arguments_summary, len))
		return "arguments_summary is not UTF-8 text";
	if (req->base.n_unknown_fields != 0)
		return "unknown fields";
	return NULL;
}

static void
created_error(struct jnl_worker *w, uint32_t request_id, const char *error)
{
	Palyra__Ipc__ApprovalCreated reply =
	    PALYRA__IPC__APPROVAL_CREATED__INIT;

	reply.error = (char *)error;
	worker_send(w, IPC_APPROVAL_CREATED, request_id, &reply.base);
}

static int
live_holds(const struct jnl_worker *w, const char *run_id)
{
	size_t i;

	for (i = 0; i < w->nlive; i++)
		if (strcmp(w->live[i].run_id, run_id) == 0)
			return 1;
	return 0;
}

/* Whether the runs row of run_id names session, principal and agent:
 * 1, 0, or -EIO. */
static int
run_matches(struct jnl_tenant *t, const Palyra__Ipc__ApprovalCreate *req)
{
	sqlite3_stmt *st;
	int rc, r = 0;

	if (jnl_db_prepare(t->db,
		"SELECT 1 FROM runs WHERE run_id = ?1 AND session_id = ?2"
		" AND principal = ?3 AND agent = ?4",
		&st) < 0)
		return -EIO;
	sqlite3_bind_text(st, 1, req->run_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, req->session_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, req->principal, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, req->agent, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		r = 1;
	else if (rc != SQLITE_DONE)
		r = -EIO;
	sqlite3_finalize(st);
	return r;
}

/*
 * The standing grant that covers the request: 1 with id and scope set,
 * 0 when none, -EIO.
 */
static int
grant_find(struct jnl_tenant *t, const Palyra__Ipc__ApprovalCreate *req,
    int64_t now, char id[APPR_ID_LEN + 1], int *scope)
{
	sqlite3_stmt *st;
	const char *gid, *gscope;
	int rc, r = 0;

	if (jnl_db_prepare(t->db,
		"SELECT id, scope FROM approval_grants"
		" WHERE revoked_ms IS NULL AND tool = ?1 AND agent = ?2"
		" AND principal = ?3 AND ((scope = 'session'"
		" AND session_id = ?4) OR (scope = 'ttl' AND expires_ms > ?5))"
		" ORDER BY created_ms, id LIMIT 1",
		&st) < 0)
		return -EIO;
	sqlite3_bind_text(st, 1, req->tool_name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, req->agent, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, req->principal, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, req->session_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, now);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		gid = (const char *)sqlite3_column_text(st, 0);
		gscope = (const char *)sqlite3_column_text(st, 1);
		if (gid != NULL && strlen(gid) == APPR_ID_LEN) {
			memcpy(id, gid, APPR_ID_LEN + 1);
			*scope = jnl_appr_scope_parse(gscope);
			r = 1;
		}
	} else if (rc != SQLITE_DONE)
		r = -EIO;
	sqlite3_finalize(st);
	return r;
}

/* Inserts a (complete) into t's open batch: 0, 1 when the id is taken,
 * -EIO. */
static int
appr_insert(struct jnl_tenant *t, const Palyra__V1__Approval *a)
{
	sqlite3_stmt *st;
	int rc;

	if (jnl_db_prepare(t->db,
		"INSERT INTO approvals (id, run_id, tool, arguments_summary,"
		" status, created_ms, decided_ms, decided_by, timeout_ms,"
		" session_id, principal, agent, tool_call_id, expires_ms,"
		" scope, reason, grant_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6,"
		" ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, '', ?16)",
		&st) < 0)
		return -EIO;
	sqlite3_bind_text(st, 1, a->approval_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, a->run_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, a->tool_name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, a->arguments_summary, -1, SQLITE_STATIC);
	sqlite3_bind_text(
	    st, 5, jnl_appr_state_text(a->state), -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, a->created_unix_ms);
	if (a->state != STATE(PENDING)) {
		sqlite3_bind_int64(st, 7, a->decided_unix_ms);
		sqlite3_bind_text(st, 8, a->decided_by, -1, SQLITE_STATIC);
		sqlite3_bind_text(
		    st, 15, jnl_appr_scope_text(a->scope), -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 16, a->grant_id, -1, SQLITE_STATIC);
	}
	sqlite3_bind_int64(st, 9, a->expires_unix_ms - a->created_unix_ms);
	sqlite3_bind_text(st, 10, a->session_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 11, a->principal, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 12, a->agent, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 13, a->tool_call_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 14, a->expires_unix_ms);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_CONSTRAINT)
		return 1;
	if (rc != SQLITE_DONE) {
		log_error(
		    "%s: approval insert: %s", t->name, sqlite3_errstr(rc));
		return -EIO;
	}
	return 0;
}

static Palyra__V1__Approval *
appr_new(const Palyra__Ipc__ApprovalCreate *req)
{
	Palyra__V1__Approval *a;

	if ((a = calloc(1, sizeof(*a))) == NULL)
		return NULL;
	palyra__v1__approval__init(a);
	a->approval_id = strdup(req->approval_id);
	a->run_id = strdup(req->run_id);
	a->session_id = strdup(req->session_id);
	a->principal = strdup(req->principal);
	a->agent = strdup(req->agent);
	a->tool_call_id = strdup(req->tool_call_id);
	a->tool_name = strdup(req->tool_name);
	a->decided_by = strdup("");
	a->reason = strdup("");
	a->grant_id = strdup("");
	a->arguments_summary = NULL;
	if (a->approval_id == NULL || a->run_id == NULL ||
	    a->session_id == NULL || a->principal == NULL || a->agent == NULL ||
	    a->tool_call_id == NULL || a->tool_name == NULL ||
	    a->decided_by == NULL || a->reason == NULL || a->grant_id == NULL) {
		jnl_appr_free(a);
		return NULL;
	}
	return a;
}

void
jnl_approval_create(
    struct jnl_ctx *ctx, struct jnl_worker *w, const struct ipc_msg *m)
{
	const Palyra__Ipc__ApprovalCreate *req =
	    (const Palyra__Ipc__ApprovalCreate *)m->msg;
	struct jnl_tenant *t = w->tenant;
	uint32_t id = m->hdr.request_id;
	Palyra__V1__Approval *a = NULL;
	struct jnl_run *run;
	char grant[APPR_ID_LEN + 1], by[APPR_DECIDED_BY_MAX + 1];
	const char *why;
	int64_t now = (int64_t)jnl_now_ms();
	int rc, scope = 0;

	if ((why = create_malformed(req)) != NULL) {
		log_warn("%s: malformed approval: %s; dropping the channel",
		    ipc_chan_peer(w->chan), why);
		created_error(w, id, why);
		jnl_worker_fail(ctx, w);
		return;
	}
	if (req->expires_unix_ms <= now) {
		created_error(w, id, "expires_unix_ms is not in the future");
		return;
	}
	if (t->db == NULL) {
		created_error(w, id, E_UNAVAILABLE);
		return;
	}
	if (!live_holds(w, req->run_id)) {
		created_error(w, id, "run not held by this worker");
		return;
	}
	if (jnl_run_get(t, req->run_id, &run) < 0 ||
	    (rc = run_matches(t, req)) < 0) {
		created_error(w, id, E_UNAVAILABLE);
		return;
	}
	if (run == NULL || rc == 0) {
		created_error(w, id,
		    "unknown run, or not of this session, principal and agent");
		return;
	}
	if (jnl_status_terminal(run->status)) {
		created_error(w, id, "run already finished");
		return;
	}
	if ((a = appr_new(req)) == NULL ||
	    (a->arguments_summary =
		    jnl_appr_redacted(ctx, req->arguments_summary)) == NULL) {
		jnl_appr_free(a);
		created_error(w, id, "out of memory");
		return;
	}
	a->created_unix_ms = now;
	a->expires_unix_ms = req->expires_unix_ms;
	a->state = STATE(PENDING);
	if ((rc = grant_find(t, req, now, grant, &scope)) < 0) {
		jnl_appr_free(a);
		created_error(w, id, E_UNAVAILABLE);
		return;
	}
	if (rc == 1) {
		snprintf(by, sizeof(by), "grant:%s", grant);
		free(a->decided_by);
		free(a->grant_id);
		a->decided_by = strdup(by);
		a->grant_id = strdup(grant);
		a->state = STATE(ALLOWED);
		a->scope = (Palyra__V1__ApprovalScope)scope;
		a->decided_unix_ms = now;
		if (a->decided_by == NULL || a->grant_id == NULL) {
			jnl_appr_free(a);
			created_error(w, id, "out of memory");
			return;
		}
	}
	if (jnl_batch_begin(ctx, t) < 0 || (rc = appr_insert(t, a)) < 0) {
		jnl_appr_free(a);
		jnl_batch_fail(ctx, t);
		created_error(w, id, JNL_E_STORAGE);
		return;
	}
	if (rc == 1) {
		jnl_appr_free(a);
		created_error(w, id, "approval_id already used");
		return;
	}
	log_info("%s: approval %s for %s of run %s: %s", t->name,
	    req->approval_id, req->tool_name, req->run_id,
	    a->state == STATE(PENDING) ? "pending" : by);
	if (defer(ctx, t, w, id, DEFER_CREATED, a) < 0)
		created_error(w, id, "out of memory");
}

/* Deciding. */

static void
decision_error(struct jnl_worker *w, uint32_t request_id, uint32_t status,
    const char *error, const Palyra__V1__Approval *a)
{
	Palyra__Ipc__ApprovalDecisionMsg reply =
	    PALYRA__IPC__APPROVAL_DECISION_MSG__INIT;

	reply.grpc_status = status;
	reply.error = (char *)error;
	reply.approval = (Palyra__V1__Approval *)a;
	worker_send(w, IPC_APPROVAL_DECISION, request_id, &reply.base);
}

void
jnl_approval_decide(
    struct jnl_ctx *ctx, struct jnl_worker *w, const struct ipc_msg *m)
{
	const Palyra__Ipc__ApprovalDecide *req =
	    (const Palyra__Ipc__ApprovalDecide *)m->msg;
	struct jnl_tenant *t = w->tenant;
	uint32_t id = m->hdr.request_id;
	Palyra__V1__Approval *a = NULL;
	const char *why = NULL, *principal = NULL;
	int timeout, rc;

	timeout = strcmp(req->decided_by, "timeout") == 0;
	if ((why = jnl_appr_decision_invalid(req->decision)) == NULL &&
	    !timeout && !jnl_name_valid(req->decided_by))
		why = "invalid decided_by";
	if (why == NULL && timeout && req->decision->decision != KIND(DENY))
		why = "a timeout denies";
	if (why != NULL) {
		decision_error(w, id, GRPC_STATUS_INVALID_ARGUMENT, why, NULL);
		return;
	}
	if (t->db == NULL) {
		decision_error(
		    w, id, GRPC_STATUS_UNAVAILABLE, E_UNAVAILABLE, NULL);
		return;
	}
	/* A user decides only its own principal's approvals. */
	if (!timeout && strcmp(req->role, "operator") != 0 &&
	    strcmp(req->role, "admin") != 0)
		principal = req->decided_by;
	rc = jnl_appr_decide(ctx, t, req->decision, req->decided_by, timeout,
	    principal, &a, &why);
	if (rc < 0) {
		jnl_batch_fail(ctx, t);
		decision_error(
		    w, id, GRPC_STATUS_UNAVAILABLE, JNL_E_STORAGE, NULL);
		return;
	}
	if (rc > 0 && a != NULL && t->batch == JNL_BATCH_OPEN) {
		/* The approval as it stands may be a decision of the open
		 * batch: told only once that committed. */
		if (defer_refused(ctx, t, w, id, (uint32_t)rc, why, a) < 0)
			decision_error(w, id, GRPC_STATUS_UNAVAILABLE,
			    "out of memory", NULL);
		return;
	}
	if (rc > 0) {
		decision_error(w, id, (uint32_t)rc, why, a);
		jnl_appr_free(a);
		return;
	}
	if (defer(ctx, t, w, id, DEFER_DECISION, a) < 0)
		decision_error(
		    w, id, GRPC_STATUS_UNAVAILABLE, "out of memory", NULL);
}

/* Runs that wait for a decision. */

int
jnl_approvals_suspended(struct jnl_tenant *t, const char *run_id)
{
	Palyra__V1__Approval *a;
	struct jnl_run *run;
	int suspended;

	if (t->db == NULL || jnl_run_get(t, run_id, &run) < 0 || run == NULL ||
	    run->status != PALYRA__V1__RUN_STATUS__RUN_STATUS_WAITING_APPROVAL)
		return 0;
	if (jnl_appr_latest(t, run_id, &a) < 0)
		return 0;
	suspended = a != NULL;
	jnl_appr_free(a);
	return suspended;
}

void
jnl_approvals_worker_gone(struct jnl_ctx *ctx, struct jnl_worker *w)
{
	size_t i, n = 0;

	if (ctx->stopping || w->tenant->db == NULL)
		return;
	for (i = 0; i < w->nlive; i++)
		if (jnl_approvals_suspended(w->tenant, w->live[i].run_id))
			n++;
	if (n == 0)
		return;
	log_info("%s: %zu run(s) wait for an approval; asking for a worker "
		 "to recover them",
	    ipc_chan_peer(w->chan), n);
	jnl_appr_want_worker(ctx, w->tenant);
}

int
jnl_appr_orphans(struct jnl_ctx *ctx, struct jnl_tenant *t,
    struct jnl_live_run **out, size_t *nout)
{
	sqlite3_stmt *st;
	struct jnl_live_run *ids = NULL, *grown;
	size_t n = 0, cap = 0, i, kept = 0;
	const char *id, *session;
	int rc;

	*out = NULL;
	*nout = 0;
	if (t->db == NULL || jnl_db_prepare(t->db,
				 "SELECT run_id, session_id FROM runs"
				 " WHERE status = 'WAITING_APPROVAL'"
				 " ORDER BY created_ms, run_id",
				 &st) < 0)
		return -EIO;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		id = (const char *)sqlite3_column_text(st, 0);
		session = (const char *)sqlite3_column_text(st, 1);
		if (id == NULL || session == NULL ||
		    strlen(id) > JNL_RUN_ID_MAX ||
		    strlen(session) > NAME_MAX_LEN)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			if ((grown = reallocarray(ids, cap, sizeof(*ids))) ==
			    NULL) {
				rc = SQLITE_NOMEM;
				break;
			}
			ids = grown;
		}
		snprintf(ids[n].run_id, sizeof(ids[n].run_id), "%s", id);
		snprintf(ids[n].session_id, sizeof(ids[n].session_id), "%s",
		    session);
		n++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		free(ids);
		return rc == SQLITE_NOMEM ? -ENOMEM : -EIO;
	}
	for (i = 0; i < n; i++)
		if (jnl_approvals_suspended(t, ids[i].run_id) &&
		    jnl_appr_holder(ctx, t, ids[i].run_id) == NULL)
			ids[kept++] = ids[i];
	if (kept == 0) {
		free(ids);
		ids = NULL;
	}
	*out = ids;
	*nout = kept;
	return 0;
}
