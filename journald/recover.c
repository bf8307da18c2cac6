/*
 * recover.c: IPC_RUN_RECOVER, runs that wait for an approval after their
 * worker died (issue 7: "a run waiting for approval survives a restart of
 * its worker").
 *
 * Runs in palyra-journald. Reads the journal.db of the asking worker's
 * tenant; writes only an INTERRUPTED status for a run too large to hand
 * over.
 *
 * Reconciliation (append.c) leaves such a run WAITING_APPROVAL and asks
 * the supervisor for a worker. A worker asks once its configuration
 * arrived; it gets, one IPC_RUN_RECOVERED each, every run of its tenant
 * that waits for an approval and that no live worker channel holds: the
 * runs row, every committed event in seq order, the latest approval
 * (pending, or decided while nobody held the run), the session's earlier
 * turns (as runprep.c gives them to a new run) and the runtime agent it
 * started with. The run joins this channel's live runs at once, so that a
 * second worker asking gets nothing twice and the death of this one
 * reconciles it again. The last message has done set.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "approvals.h"
#include "log.h"

#define E_TOO_LARGE "too large to recover"

struct recovered {
	Palyra__Ipc__RecoveredRun rr;
	size_t events_bytes;
};

static void
recovered_clear(struct recovered *r)
{
	Palyra__Ipc__RecoveredRun *rr = &r->rr;
	size_t i;

	free(rr->run_id);
	free(rr->session_id);
	free(rr->principal);
	free(rr->agent);
	free(rr->input);
	free(rr->idempotency_key);
	for (i = 0; i < rr->n_events; i++)
		palyra__v1__run_event__free_unpacked(rr->events[i], NULL);
	free(rr->events);
	jnl_appr_free(rr->approval);
	jnl_runprep_turns_free(rr->history, rr->n_history);
	if (rr->runtime_agent != NULL)
		palyra__ipc__agent_config__free_unpacked(
		    rr->runtime_agent, NULL);
	memset(r, 0, sizeof(*r));
}

static char *
column_dup(sqlite3_stmt *st, int col)
{
	const char *s = (const char *)sqlite3_column_text(st, col);

	return strdup(s != NULL ? s : "");
}

/* The runs row. 0, -ENOENT, -ENOMEM or -EIO. */
static int
row_read(
    struct jnl_tenant *t, const char *run_id, Palyra__Ipc__RecoveredRun *rr)
{
	sqlite3_stmt *st;
	int rc, r = 0;

	if (jnl_db_prepare(t->db,
		"SELECT session_id, principal, agent, input, idempotency_key"
		" FROM runs WHERE run_id = ?1",
		&st) < 0)
		return -EIO;
	sqlite3_bind_text(st, 1, run_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		rr->session_id = column_dup(st, 0);
		rr->principal = column_dup(st, 1);
		rr->agent = column_dup(st, 2);
		rr->input = column_dup(st, 3);
		rr->idempotency_key = column_dup(st, 4);
		if (rr->session_id == NULL || rr->principal == NULL ||
		    rr->agent == NULL || rr->input == NULL ||
		    rr->idempotency_key == NULL)
			r = -ENOMEM;
	} else
		r = rc == SQLITE_DONE ? -ENOENT : -EIO;
	sqlite3_finalize(st);
	return r;
}

/*
 * Every committed event of the run in seq order. -E2BIG as soon as their
 * bytes alone pass what one message holds.
 */
static int
events_read(struct jnl_tenant *t, struct recovered *r)
{
	Palyra__Ipc__RecoveredRun *rr = &r->rr;
	Palyra__V1__RunEvent *ev, **grown;
	sqlite3_stmt *st;
	size_t cap = 0;
	const void *blob;
	int rc, len, res = 0;

	if (jnl_db_prepare(t->db,
		"SELECT payload FROM events WHERE run_id = ?1"
		" ORDER BY run_seq",
		&st) < 0)
		return -EIO;
	sqlite3_bind_text(st, 1, rr->run_id, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		blob = sqlite3_column_blob(st, 0);
		len = sqlite3_column_bytes(st, 0);
		r->events_bytes += (size_t)len + 8;
		if (r->events_bytes > IPC_MAX_PAYLOAD) {
			res = -E2BIG;
			break;
		}
		if (blob == NULL || len <= 0 ||
		    (ev = palyra__v1__run_event__unpack(
			 NULL, (size_t)len, blob)) == NULL) {
			log_error("%s: run %s: an event does not decode",
			    t->name, rr->run_id);
			res = -EIO;
			break;
		}
		if (rr->n_events == cap) {
			cap = cap ? cap * 2 : 64;
			if ((grown = reallocarray(
				 rr->events, cap, sizeof(*grown))) == NULL) {
				palyra__v1__run_event__free_unpacked(ev, NULL);
				res = -ENOMEM;
				break;
			}
			rr->events = grown;
		}
		rr->events[rr->n_events++] = ev;
	}
	if (res == 0 && rc != SQLITE_DONE)
		res = -EIO;
	sqlite3_finalize(st);
	return res;
}

/* Everything of one run. 0, -E2BIG (too large), -ENOENT, -ENOMEM, -EIO. */
static int
recovered_build(
    struct jnl_tenant *t, const struct jnl_live_run *id, struct recovered *r)
{
	Palyra__Ipc__RecoveredRun *rr = &r->rr;
	struct jnl_run *run;
	int rc;

	memset(r, 0, sizeof(*r));
	palyra__ipc__recovered_run__init(rr);
	rr->run_id = NULL;
	rr->session_id = rr->principal = rr->agent = rr->input = NULL;
	rr->idempotency_key = NULL;
	if ((rr->run_id = strdup(id->run_id)) == NULL)
		return -ENOMEM;
	if (jnl_run_get(t, id->run_id, &run) < 0)
		return -EIO;
	if (run == NULL)
		return -ENOENT;
	rr->status = (Palyra__V1__RunStatus)run->status;
	if ((rc = row_read(t, id->run_id, rr)) < 0 ||
	    (rc = events_read(t, r)) < 0 ||
	    (rc = jnl_appr_latest(t, id->run_id, &rr->approval)) < 0 ||
	    (rc = jnl_runprep_history(t, rr->session_id, rr->principal,
		 rr->run_id, &rr->history, &rr->n_history)) < 0 ||
	    (rc = jnl_agent_runtime_config(t, rr->agent, &rr->runtime_agent)) <
		0)
		return rc;
	if (rr->approval == NULL)
		return -ENOENT;
	return 0;
}

static void
send_done(struct jnl_worker *w, uint32_t request_id, const char *error)
{
	Palyra__Ipc__RunRecovered msg = PALYRA__IPC__RUN_RECOVERED__INIT;
	int rc;

	if (w->closing)
		return;
	msg.done = 1;
	msg.error = (char *)(error != NULL ? error : "");
	if ((rc = ipc_chan_send(w->chan, IPC_RUN_RECOVERED, request_id,
		 &msg.base, NULL, 0)) < 0)
		log_warn("%s: cannot answer run recover: %s",
		    ipc_chan_peer(w->chan), strerror(-rc));
}

/*
 * Fits the run into one message: the session history, the oldest turns
 * first, gives way before the run itself does. 1 when it fits.
 */
static int
fit(Palyra__Ipc__RunRecovered *msg)
{
	Palyra__Ipc__RecoveredRun *rr = msg->run;
	Palyra__Ipc__HistoryTurn *oldest;

	while (
	    protobuf_c_message_get_packed_size(&msg->base) > IPC_MAX_PAYLOAD) {
		if (rr->n_history == 0)
			return 0;
		oldest = rr->history[0];
		memmove(rr->history, rr->history + 1,
		    (rr->n_history - 1) * sizeof(rr->history[0]));
		rr->n_history--;
		free(oldest->run_id);
		free(oldest->input);
		free(oldest->output);
		free(oldest);
	}
	return 1;
}

void
jnl_recover_request(
    struct jnl_ctx *ctx, struct jnl_worker *w, const struct ipc_msg *m)
{
	Palyra__Ipc__RunRecovered msg = PALYRA__IPC__RUN_RECOVERED__INIT;
	struct jnl_tenant *t = w->tenant;
	uint32_t id = m->hdr.request_id;
	struct jnl_live_run *orphans;
	struct recovered r;
	size_t n, i, handed = 0, interrupted = 0;
	int rc;

	if (t->db == NULL) {
		send_done(w, id, "journal unavailable");
		return;
	}
	/* The worker rebuilds from what is committed, never from a batch
	 * that may still roll back. */
	if (t->batch == JNL_BATCH_OPEN)
		jnl_commit_all(ctx);
	if (w->closing)
		return;
	if (jnl_appr_orphans(ctx, t, &orphans, &n) < 0) {
		send_done(w, id, "journal unavailable");
		return;
	}
	for (i = 0; i < n && !w->closing; i++) {
		rc = recovered_build(t, &orphans[i], &r);
		msg.run = &r.rr;
		if (rc == 0 && !fit(&msg))
			rc = -E2BIG;
		if (rc == -E2BIG) {
			log_warn("%s: run %s is %s", t->name, orphans[i].run_id,
			    E_TOO_LARGE);
			if (jnl_interrupt_run(
				ctx, t, &orphans[i], E_TOO_LARGE) == 0)
				interrupted++;
			recovered_clear(&r);
			continue;
		}
		if (rc < 0) {
			/* Left waiting: a later ask may succeed. */
			log_warn("%s: run %s cannot be recovered now: %s",
			    t->name, orphans[i].run_id, strerror(-rc));
			recovered_clear(&r);
			continue;
		}
		rc = jnl_live_add(w, orphans[i].run_id, orphans[i].session_id);
		if (rc == 0 && (rc = ipc_chan_send(w->chan, IPC_RUN_RECOVERED,
				    id, &msg.base, NULL, 0)) < 0) {
			/* Not handed over after all. */
			w->nlive--;
			log_warn("%s: cannot hand over run %s: %s",
			    ipc_chan_peer(w->chan), orphans[i].run_id,
			    strerror(-rc));
		}
		recovered_clear(&r);
		if (rc < 0)
			break;
		handed++;
	}
	free(orphans);
	if (handed > 0 || interrupted > 0)
		log_info("%s: %zu run(s) waiting for an approval handed to "
			 "%s, %zu interrupted",
		    t->name, handed, ipc_chan_peer(w->chan), interrupted);
	send_done(w, id, NULL);
}
