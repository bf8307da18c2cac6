/*
 * append.c: journal appends and crash reconciliation.
 * Runs in palyra-journald; touches the tenants' journal.db files through
 * the open batch (batch.c).
 *
 * An append is checked (structure first: failing that drops the worker;
 * then the run's state), linked into the tenant's hash chain and inserted
 * into the open transaction; batch.c commits and acknowledges it. Each
 * worker channel keeps the runs it started and has not ended, so that the
 * death of one of a tenant's workers interrupts its runs and no other's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "approvals.h"
#include "journald.h"
#include "runevent.h"
#include "log.h"

/* Errors shown to the worker in JournalAck.error. */
#define E_UNKNOWN_RUN "unknown run (first event must have seq 1)"
#define E_FIRST "first event of a run must be status ACCEPTED"
#define E_FIRST_NAMES "first event needs session_id, principal and agent"
#define E_SESSION "session belongs to another principal"
#define E_SESSION_UNKNOWN "unknown session"
#define E_SESSION_CLOSED "session closed"
#define E_TERMINAL "run already finished"
#define E_SEQ "seq is not the run's last seq + 1"
#define E_ACCEPTED "run already accepted"
#define E_QUOTA "journal quota exceeded"
#define E_REDACTED_SIZE "event larger than JNL_PAYLOAD_MAX after redaction"

/* Appending. */

/*
 * 1 when appending len more bytes would take t's journal.db (pages in use
 * times page size, the open batch's included) over its journal-quota,
 * 0 when not, -EIO.
 */
static int
over_quota(struct jnl_tenant *t, size_t len)
{
	sqlite3_stmt *st = t->st[JNL_ST_USED_BYTES];
	int64_t used;
	int rc;

	if (t->quota == 0)
		return 0;
	rc = sqlite3_step(st);
	used = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return -EIO;
	return used < 0 || (uint64_t)used + len > t->quota;
}

static const char *append_event(struct jnl_ctx *, struct jnl_tenant *,
    const Palyra__V1__RunEvent *, const char *, const char *, int,
    uint64_t *, uint8_t[CHAIN_HASH_LEN], int *);

/*
 * A run whose next event the quota refused can never go on without a gap:
 * journald ends it itself, FAILED right after its last stored event (a
 * terminal status is admitted over the quota), so that no run stays in
 * progress. The worker learns it from the refusal's code.
 */
static void
end_run_over_quota(struct jnl_ctx *ctx, struct jnl_tenant *t,
    const struct jnl_run *run, const Palyra__V1__RunEvent *refused,
    int *storage_failed)
{
	Palyra__V1__RunEvent ev = PALYRA__V1__RUN_EVENT__INIT;
	Palyra__V1__StatusEvent status = PALYRA__V1__STATUS_EVENT__INIT;
	uint64_t chain_seq;
	uint8_t hash[CHAIN_HASH_LEN];
	const char *err;

	status.status = PALYRA__V1__RUN_STATUS__RUN_STATUS_FAILED;
	status.reason = (char *)E_QUOTA;
	ev.event_case = PALYRA__V1__RUN_EVENT__EVENT_STATUS;
	ev.status = &status;
	ev.run_id = refused->run_id;
	ev.session_id = refused->session_id;
	ev.seq = run->last_seq + 1;
	ev.timestamp_unix_ms = refused->timestamp_unix_ms;
	err = append_event(
	    ctx, t, &ev, "", "", 0, &chain_seq, hash, storage_failed);
	if (err != NULL && !*storage_failed)
		log_warn("%s: run %s: cannot end it over the quota: %s",
		    t->name, ev.run_id, err);
}

/*
 * Links ev into t's chain inside the open batch. Returns NULL and fills
 * chain_seq and hash, or the error for the worker; *storage_failed is set
 * when the batch itself failed (the caller rolls it back).
 */
static const char *
append_event(struct jnl_ctx *ctx, struct jnl_tenant *t,
    const Palyra__V1__RunEvent *ev, const char *principal, const char *agent,
    int session_must_exist, uint64_t *chain_seq, uint8_t hash[CHAIN_HASH_LEN],
    int *storage_failed)
{
	struct jnl_run *run;
	sqlite3_stmt *st;
	const char *owner, *kind = run_event_kind(ev);
	size_t len;
	int status = -1, rc, closed;

	*storage_failed = 1;
	if (jnl_batch_begin(ctx, t) < 0 || jnl_run_get(t, ev->run_id, &run) < 0)
		return JNL_E_STORAGE;
	if (ev->event_case == PALYRA__V1__RUN_EVENT__EVENT_STATUS)
		status = ev->status->status;
	/*
	 * Over the quota nothing new starts and no run grows, but a run may
	 * still end: a terminal status (one per run, small) is admitted, so
	 * that no run is left in progress by a full journal.
	 */
	if (!jnl_status_terminal(status) &&
	    (rc = over_quota(t, protobuf_c_message_get_packed_size(
				    &ev->base))) != 0) {
		if (rc < 0)
			return JNL_E_STORAGE;
		*storage_failed = 0;
		if (run != NULL && !jnl_status_terminal(run->status) &&
		    ev->seq == run->last_seq + 1)
			end_run_over_quota(ctx, t, run, ev, storage_failed);
		return E_QUOTA;
	}
	*storage_failed = 0;

	if (run == NULL) {
		if (ev->seq != 1)
			return E_UNKNOWN_RUN;
		if (status != PALYRA__V1__RUN_STATUS__RUN_STATUS_ACCEPTED)
			return E_FIRST;
		if (ev->session_id[0] == '\0' || !jnl_name_valid(principal) ||
		    !jnl_name_valid(agent))
			return E_FIRST_NAMES;
		if (session_must_exist) {
			*storage_failed = 1;
			st = t->st[JNL_ST_SESSION_OWNER];
			sqlite3_bind_text(st, 1, ev->session_id, -1,
			    SQLITE_STATIC);
			rc = sqlite3_step(st);
			if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
				sqlite3_reset(st);
				return JNL_E_STORAGE;
			}
			owner = rc == SQLITE_ROW ?
			    (const char *)sqlite3_column_text(st, 0) : NULL;
			rc = owner != NULL && strcmp(owner, principal) == 0;
			sqlite3_reset(st);
			sqlite3_clear_bindings(st);
			*storage_failed = 0;
			if (!rc)
				return E_SESSION_UNKNOWN;
		}
		*storage_failed = 1;
		st = t->st[JNL_ST_SESSION_INSERT];
		sqlite3_bind_text(st, 1, ev->session_id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, principal, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, ev->timestamp_unix_ms);
		if (jnl_step_done(st) != 0)
			return JNL_E_STORAGE;
		st = t->st[JNL_ST_SESSION_OWNER];
		sqlite3_bind_text(st, 1, ev->session_id, -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_ROW) {
			sqlite3_reset(st);
			return JNL_E_STORAGE;
		}
		owner = (const char *)sqlite3_column_text(st, 0);
		rc = owner != NULL && strcmp(owner, principal) == 0;
		/* A closed session (CleanupSession) takes no new run. */
		closed = sqlite3_column_type(st, 1) != SQLITE_NULL;
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		if (!rc) {
			*storage_failed = 0;
			return E_SESSION;
		}
		if (closed) {
			*storage_failed = 0;
			return E_SESSION_CLOSED;
		}
		st = t->st[JNL_ST_RUN_INSERT];
		sqlite3_bind_text(st, 1, ev->run_id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, ev->session_id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, principal, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, agent, -1, SQLITE_STATIC);
		sqlite3_bind_text(
		    st, 5, jnl_status_name(status), -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 6, ev->timestamp_unix_ms);
		sqlite3_bind_int64(st, 7, ev->timestamp_unix_ms);
		sqlite3_bind_int64(st, 8, 1);
		if (jnl_step_done(st) != 0 ||
		    jnl_runprep_run_inserted(ctx, t, ev->run_id) < 0 ||
		    (run = jnl_run_cache_add(t, ev->run_id, status, 1,
			 ev->timestamp_unix_ms)) == NULL)
			return JNL_E_STORAGE;
	} else {
		if (jnl_status_terminal(run->status))
			return E_TERMINAL;
		if (ev->seq != run->last_seq + 1)
			return E_SEQ;
		if (status == PALYRA__V1__RUN_STATUS__RUN_STATUS_ACCEPTED)
			return E_ACCEPTED;
		*storage_failed = 1;
	}

	/* The stored payload is our own encoding, not the worker's bytes,
	 * so equal events always hash alike. */
	len = protobuf_c_message_pack(&ev->base, ctx->payload_buf);
	*chain_seq = t->head_seq + 1;
	if (chain_link(t->head_hash, *chain_seq, ev->run_id, ev->seq,
		ev->timestamp_unix_ms, ctx->payload_buf, len, hash) < 0)
		return JNL_E_STORAGE;
	st = t->st[JNL_ST_EVENT_INSERT];
	sqlite3_bind_int64(st, 1, (int64_t)*chain_seq);
	sqlite3_bind_text(st, 2, ev->run_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (int64_t)ev->seq);
	sqlite3_bind_int64(st, 4, ev->timestamp_unix_ms);
	sqlite3_bind_text(st, 5, kind, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 6, ctx->payload_buf, (int)len, SQLITE_STATIC);
	sqlite3_bind_blob(st, 7, hash, CHAIN_HASH_LEN, SQLITE_STATIC);
	if ((rc = jnl_step_done(st)) != 0) {
		log_error("%s: event insert: %s", t->name, sqlite3_errstr(rc));
		return JNL_E_STORAGE;
	}
	/* An approval the run still waited for can no longer be used. */
	if (jnl_status_terminal(status) &&
	    jnl_appr_run_ended(t, ev->run_id, ev->timestamp_unix_ms) < 0)
		return JNL_E_STORAGE;
	/* A cron fire follows its run to the end (cron.c). */
	if (jnl_status_terminal(status) &&
	    jnl_cron_run_ended(t, ev->run_id, status) < 0)
		return JNL_E_STORAGE;

	t->head_seq = *chain_seq;
	memcpy(t->head_hash, hash, CHAIN_HASH_LEN);
	t->batch_count++;
	if (ev->seq == 1)
		jnl_stats_run(t, -1, status);
	else if (status > 0)
		jnl_stats_run(t, run->status, status);
	if (ev->seq > 1) {
		run->last_seq = ev->seq;
		run->updated_ms = ev->timestamp_unix_ms;
		if (status > 0)
			run->status = status;
		if (!run->dirty) {
			run->dirty = 1;
			run->dirty_next = t->dirty;
			t->dirty = run;
		}
	}
	*storage_failed = 0;
	return NULL;
}

/* The checks that no honest worker can fail: a failure drops the worker. */
static const char *
append_malformed(const Palyra__Ipc__JournalAppend *req)
{
	const Palyra__V1__RunEvent *ev = req->event;
	size_t i;

	if (ev == NULL)
		return "no event";
	for (i = 0; ev->run_id[i] != '\0'; i++)
		if (i >= JNL_RUN_ID_MAX ||
		    !((ev->run_id[i] >= '0' && ev->run_id[i] <= '9') ||
			(ev->run_id[i] >= 'a' && ev->run_id[i] <= 'z') ||
			(ev->run_id[i] >= 'A' && ev->run_id[i] <= 'Z') ||
			ev->run_id[i] == '_' || ev->run_id[i] == '-'))
			return "run_id is not 1..64 of [0-9a-zA-Z_-]";
	if (i == 0)
		return "run_id is not 1..64 of [0-9a-zA-Z_-]";
	if (ev->seq == 0)
		return "seq must start at 1";
	if (ev->timestamp_unix_ms < 0)
		return "negative timestamp";
	if (ev->session_id[0] != '\0' && !jnl_name_valid(ev->session_id))
		return "invalid session_id";
	if (run_event_kind(ev) == NULL)
		return "event variant not set";
	if (ev->event_case == PALYRA__V1__RUN_EVENT__EVENT_STATUS &&
	    (ev->status->status < PALYRA__V1__RUN_STATUS__RUN_STATUS_ACCEPTED ||
		ev->status->status > JNL_RUN_STATUS_MAX))
		return "invalid run status";
	if (strnlen(req->principal, NAME_MAX_LEN + 1) > NAME_MAX_LEN ||
	    strnlen(req->agent, NAME_MAX_LEN + 1) > NAME_MAX_LEN)
		return "principal or agent too long";
	/* Unknown fields would be re-packed into the payload unchecked. */
	if (ev->base.n_unknown_fields != 0 ||
	    (ev->status != NULL && ev->status->base.n_unknown_fields != 0) ||
	    (ev->token != NULL && ev->token->base.n_unknown_fields != 0) ||
	    (ev->final != NULL && ev->final->base.n_unknown_fields != 0) ||
	    (ev->usage != NULL && ev->usage->base.n_unknown_fields != 0) ||
	    (ev->error != NULL && ev->error->base.n_unknown_fields != 0))
		return "unknown fields in event";
	if (protobuf_c_message_get_packed_size(&ev->base) > JNL_PAYLOAD_MAX)
		return "event larger than JNL_PAYLOAD_MAX";
	return NULL;
}

/* Run ownership: the channel that appended a run's first event. */

int
jnl_live_add(struct jnl_worker *w, const char *run_id, const char *session_id)
{
	struct jnl_live_run *grown;
	size_t cap;

	if (w->nlive == w->live_cap) {
		cap = w->live_cap ? w->live_cap * 2 : 16;
		if ((grown = reallocarray(w->live, cap, sizeof(*grown))) ==
		    NULL)
			return -ENOMEM;
		w->live = grown;
		w->live_cap = cap;
	}
	snprintf(w->live[w->nlive].run_id, sizeof(w->live[0].run_id), "%s",
	    run_id);
	snprintf(w->live[w->nlive].session_id, sizeof(w->live[0].session_id),
	    "%s", session_id);
	w->nlive++;
	return 0;
}

static void
live_add(struct jnl_worker *w, const Palyra__V1__RunEvent *ev)
{
	/* Without memory only journald's next start interrupts it. */
	if (jnl_live_add(w, ev->run_id, ev->session_id) < 0)
		log_warn("%s: out of memory for run %s",
		    ipc_chan_peer(w->chan), ev->run_id);
}

static void
live_remove(struct jnl_worker *w, const char *run_id)
{
	size_t i;

	for (i = 0; i < w->nlive; i++)
		if (strcmp(w->live[i].run_id, run_id) == 0) {
			w->live[i] = w->live[--w->nlive];
			return;
		}
}

void
jnl_handle_append(struct jnl_ctx *ctx, struct jnl_worker *w, struct ipc_msg *m)
{
	Palyra__Ipc__JournalAppend *req = (Palyra__Ipc__JournalAppend *)m->msg;
	struct jnl_tenant *t = w->tenant;
	struct jnl_ack ack;
	const char *err;
	int storage_failed = 0, redacted = 0;

	memset(&ack, 0, sizeof(ack));
	ack.worker = w;
	ack.tenant = t;
	ack.request_id = m->hdr.request_id;
	if ((err = append_malformed(req)) != NULL) {
		log_warn("%s: malformed append: %s; dropping the channel",
		    ipc_chan_peer(w->chan), err);
		ack.error = err;
		(void)jnl_ack_send(w, &ack);
		jnl_worker_fail(ctx, w);
		return;
	}
	/* Redacted before it is hashed, stored or logged: the secret never
	 * reaches the chain, and the ack carries what was stored. */
	if ((redacted = jnl_redact_event(ctx, req->event)) < 0)
		err = JNL_E_STORAGE;
	else if (redacted &&
	    protobuf_c_message_get_packed_size(&req->event->base) >
		JNL_PAYLOAD_MAX)
		err = E_REDACTED_SIZE;
	else if (t->db == NULL)
		err = "tenant journal unavailable";
	else
		err = append_event(ctx, t, req->event, req->principal,
		    req->agent, req->session_must_exist, &ack.chain_seq,
		    ack.hash, &storage_failed);
	if (storage_failed)
		jnl_batch_fail(ctx, t);
	if (err != NULL) {
		log_debug("%s: append %s/%llu refused: %s",
		    ipc_chan_peer(w->chan), req->event->run_id,
		    (unsigned long long)req->event->seq, err);
		ack.error = err;
		/* Another principal's session is as unknown as a missing
		 * one: its existence is not for this caller to learn. */
		if (strcmp(err, E_SESSION_UNKNOWN) == 0 ||
		    strcmp(err, E_SESSION) == 0)
			ack.code =
			    PALYRA__IPC__JOURNAL_ERROR__JOURNAL_SESSION_NOT_FOUND;
		else if (strcmp(err, E_SESSION_CLOSED) == 0)
			ack.code =
			    PALYRA__IPC__JOURNAL_ERROR__JOURNAL_SESSION_CLOSED;
		else if (strcmp(err, E_QUOTA) == 0 && !storage_failed) {
			ack.code = PALYRA__IPC__JOURNAL_ERROR__JOURNAL_QUOTA;
			/* Refused over the quota, the run is ended. */
			live_remove(w, req->event->run_id);
		}
		else if (storage_failed && t->full) {
			/* The disk is full: refused, and said so. */
			ack.error = JNL_E_FULL;
			ack.code = PALYRA__IPC__JOURNAL_ERROR__JOURNAL_FULL;
		} else if (storage_failed || t->db == NULL ||
		    strcmp(err, JNL_E_STORAGE) == 0)
			ack.code = PALYRA__IPC__JOURNAL_ERROR__JOURNAL_STORAGE;
		else
			ack.code = PALYRA__IPC__JOURNAL_ERROR__JOURNAL_REFUSED;
	} else {
		ack.ok = 1;
		if (redacted) {
			ack.stored_len = protobuf_c_message_get_packed_size(
			    &req->event->base);
			if ((ack.stored = malloc(ack.stored_len)) != NULL)
				(void)protobuf_c_message_pack(
				    &req->event->base, ack.stored);
			else {
				/* The worker's copy holds the secret: it must
				 * not forward anything for this event. */
				log_error("out of memory for a redacted ack; "
					  "dropping %s",
				    ipc_chan_peer(w->chan));
				jnl_worker_fail(ctx, w);
				return;
			}
		}
		if (req->event->event_case ==
		    PALYRA__V1__RUN_EVENT__EVENT_STATUS) {
			if (req->event->seq == 1)
				live_add(w, req->event);
			else if (jnl_status_terminal(
				     req->event->status->status))
				live_remove(w, req->event->run_id);
		}
	}
	if (jnl_ack_push(ctx, &ack) < 0) {
		log_error("out of memory for acks; dropping %s",
		    ipc_chan_peer(w->chan));
		jnl_ack_release(&ack);
		jnl_worker_fail(ctx, w);
		return;
	}
	jnl_schedule_commit(ctx);
	if (t->batch == JNL_BATCH_OPEN && t->batch_count >= JNL_BATCH_MAX)
		jnl_commit_all(ctx);
}

/* Crash reconciliation. */

/*
 * Queues a notice of a reconciliation event for the front, sent only after
 * the event's batch committed (batch.c), never if it rolls back. Without
 * memory the front's call ends on its own grace timer instead.
 */
static void
notice_push(
    struct jnl_ctx *ctx, struct jnl_tenant *t, const Palyra__V1__RunEvent *ev)
{
	struct jnl_notice *n;
	struct jnl_ack ack;

	if ((n = calloc(1, sizeof(*n))) == NULL)
		return;
	snprintf(n->run_id, sizeof(n->run_id), "%s", ev->run_id);
	snprintf(n->session_id, sizeof(n->session_id), "%s", ev->session_id);
	n->seq = ev->seq;
	n->timestamp_ms = ev->timestamp_unix_ms;
	n->status = ev->status->status;
	n->reason = ev->status->reason;
	memset(&ack, 0, sizeof(ack));
	ack.tenant = t;
	ack.ok = 1;
	ack.notice = n;
	if (jnl_ack_push(ctx, &ack) < 0)
		free(n);
}

/*
 * Appends a status INTERRUPTED event to each of the runs ids of t that is
 * not in a terminal status: their worker is gone, nothing will finish them.
 * The events go through the normal batch and commit; once committed, each
 * is noticed to the front (IPC_RUN_NOTICE). reason must be static text.
 * A run that waits for an approval (jnl_approvals_suspended) is left
 * waiting when *suspended is not NULL, and counted there: another worker
 * recovers it (recover.c). Returns 0 or -EIO.
 */
static int
reconcile_runs(struct jnl_ctx *ctx, struct jnl_tenant *t,
    const struct jnl_live_run *ids, size_t nids, const char *reason,
    size_t *suspended)
{
	Palyra__V1__RunEvent ev = PALYRA__V1__RUN_EVENT__INIT;
	Palyra__V1__StatusEvent status = PALYRA__V1__STATUS_EVENT__INIT;
	struct jnl_run *run;
	size_t i, done = 0;
	uint64_t chain_seq;
	uint8_t hash[CHAIN_HASH_LEN];
	const char *err;
	int storage_failed;

	status.status = PALYRA__V1__RUN_STATUS__RUN_STATUS_INTERRUPTED;
	status.reason = (char *)reason;
	ev.event_case = PALYRA__V1__RUN_EVENT__EVENT_STATUS;
	ev.status = &status;
	for (i = 0; i < nids; i++) {
		if (jnl_run_get(t, ids[i].run_id, &run) < 0) {
			jnl_batch_fail(ctx, t);
			break;
		}
		/* The cache knows better than the row: it may hold this
		 * batch's terminal status not yet written. */
		if (run == NULL || jnl_status_terminal(run->status))
			continue;
		if (suspended != NULL &&
		    jnl_approvals_suspended(t, ids[i].run_id)) {
			(*suspended)++;
			continue;
		}
		ev.run_id = (char *)ids[i].run_id;
		ev.session_id = (char *)ids[i].session_id;
		ev.seq = run->last_seq + 1;
		ev.timestamp_unix_ms = (int64_t)jnl_now_ms();
		err = append_event(
		    ctx, t, &ev, "", "", 0, &chain_seq, hash, &storage_failed);
		if (storage_failed) {
			jnl_batch_fail(ctx, t);
			break;
		}
		if (err != NULL) {
			log_warn("%s: run %s: cannot interrupt: %s", t->name,
			    ev.run_id, err);
			continue;
		}
		done++;
		notice_push(ctx, t, &ev);
		if (t->batch_count >= JNL_BATCH_MAX)
			jnl_commit_all(ctx);
	}
	if (done > 0)
		log_info(
		    "%s: %zu run(s) interrupted (%s)", t->name, done, reason);
	return i == nids ? 0 : -EIO;
}

int
jnl_reconcile_worker(
    struct jnl_ctx *ctx, struct jnl_worker *w, const char *reason)
{
	size_t suspended = 0;
	int rc;

	if (w->tenant->db == NULL)
		return 0;
	/* jnl_approvals_worker_gone() asked for a worker for the runs left
	 * waiting. */
	rc = reconcile_runs(
	    ctx, w->tenant, w->live, w->nlive, reason, &suspended);
	w->nlive = 0;
	return rc;
}

int
jnl_interrupt_run(struct jnl_ctx *ctx, struct jnl_tenant *t,
    const struct jnl_live_run *id, const char *reason)
{
	if (t->db == NULL)
		return 0;
	return reconcile_runs(ctx, t, id, 1, reason, NULL);
}

/* Every run of t not in a terminal status: at journald's start. */
int
jnl_reconcile(struct jnl_ctx *ctx, struct jnl_tenant *t, const char *reason)
{
	sqlite3_stmt *st;
	struct jnl_live_run *ids = NULL, *n;
	size_t nids = 0, cap = 0, suspended = 0;
	const char *id, *session;
	int rc;

	if (t->db == NULL)
		return 0;
	if (jnl_db_prepare(t->db,
		"SELECT run_id, session_id FROM runs"
		" WHERE status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED',"
		" 'INTERRUPTED')",
		&st) < 0)
		return -EIO;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (nids == cap) {
			cap = cap ? cap * 2 : 64;
			if ((n = reallocarray(ids, cap, sizeof(*ids))) ==
			    NULL) {
				rc = SQLITE_NOMEM;
				break;
			}
			ids = n;
		}
		if ((id = (const char *)sqlite3_column_text(st, 0)) == NULL ||
		    (session = (const char *)sqlite3_column_text(st, 1)) ==
			NULL) {
			rc = SQLITE_NOMEM;
			break;
		}
		snprintf(ids[nids].run_id, sizeof(ids[nids].run_id), "%s", id);
		snprintf(ids[nids].session_id, sizeof(ids[nids].session_id),
		    "%s", session);
		nids++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		log_error("%s: cannot list live runs", t->name);
		free(ids);
		return -EIO;
	}
	rc = reconcile_runs(ctx, t, ids, nids, reason, &suspended);
	free(ids);
	/* Runs waiting for an approval wait for a worker to recover them. */
	if (suspended > 0) {
		log_info("%s: %zu run(s) wait for an approval; asking for a "
			 "worker to recover them",
		    t->name, suspended);
		jnl_appr_want_worker(ctx, t);
	}
	return rc;
}
