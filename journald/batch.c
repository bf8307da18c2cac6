/*
 * batch.c: group commit. Runs in palyra-journald; touches the tenants'
 * journal.db files (transactions only) and the workers' channels (acks).
 *
 * Appends go into their tenant's open transaction (the batch); their acks
 * wait in ctx->acks. The commit event runs at a lower priority than channel
 * I/O, so it fires once every readable channel of the loop iteration was
 * served; it COMMITs every open batch and only then sends the acks, in
 * arrival order. A failed commit rolls back, reloads the chain head from
 * the database and refuses every append of that batch. A worker whose
 * channel will not take more acks is not read until it drains.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <sodium.h>

#include "journald.h"
#include "log.h"
#include "proc.h"

/* Batches. */

void
jnl_schedule_commit(struct jnl_ctx *ctx)
{
	event_active(ctx->commit_ev, EV_TIMEOUT, 0);
}

int
jnl_batch_begin(struct jnl_ctx *ctx, struct jnl_tenant *t)
{
	int rc;

	if (t->batch == JNL_BATCH_OPEN)
		return 0;
	if ((rc = jnl_step_done(t->st[JNL_ST_BEGIN])) != 0) {
		log_error("%s: BEGIN: %s", t->name, sqlite3_errstr(rc));
		return -EIO;
	}
	t->batch = JNL_BATCH_OPEN;
	t->batch_count = 0;
	clock_gettime(CLOCK_MONOTONIC, &t->batch_began);
	ctx->open[ctx->nopen++] = t;
	jnl_schedule_commit(ctx);
	return 0;
}

static void
open_list_remove(struct jnl_ctx *ctx, struct jnl_tenant *t)
{
	size_t i;

	for (i = 0; i < ctx->nopen; i++)
		if (ctx->open[i] == t) {
			memmove(&ctx->open[i], &ctx->open[i + 1],
			    (ctx->nopen - i - 1) * sizeof(ctx->open[0]));
			ctx->nopen--;
			return;
		}
}

/*
 * Rolls back t's batch, refuses every append in it and reloads the state
 * the database holds. A database that cannot even tell its chain head is
 * broken beyond what this process can mend.
 */
void
jnl_batch_fail(struct jnl_ctx *ctx, struct jnl_tenant *t)
{
	size_t i;
	int rc;

	/* Read before the ROLLBACK replaces the connection's last error. */
	t->full = jnl_db_error_full(t->db);
	if (t->batch == JNL_BATCH_OPEN && !sqlite3_get_autocommit(t->db) &&
	    (rc = jnl_step_done(t->st[JNL_ST_ROLLBACK])) != 0)
		log_error("%s: ROLLBACK: %s", t->name, sqlite3_errstr(rc));
	log_error("%s: batch of %zu appends rolled back%s", t->name,
	    t->batch_count, t->full ? ": storage full" : "");
	for (i = 0; i < ctx->nacks; i++)
		if (ctx->acks[i].tenant == t && ctx->acks[i].ok) {
			ctx->acks[i].ok = 0;
			ctx->acks[i].error = t->full ? JNL_E_FULL
						     : JNL_E_STORAGE;
			ctx->acks[i].code =
			    t->full ? PALYRA__IPC__JOURNAL_ERROR__JOURNAL_FULL
				    : PALYRA__IPC__JOURNAL_ERROR__JOURNAL_STORAGE;
			jnl_ack_release(&ctx->acks[i]);
		}
	t->batch = JNL_BATCH_IDLE;
	t->batch_count = 0;
	jnl_stats_rolled_back(t);
	jnl_usage_rolled_back(t);
	open_list_remove(ctx, t);
	jnl_run_cache_clear(t);
	if (jnl_tenant_load_head(t) < 0) {
		log_error("%s: cannot reload the chain head; exiting", t->name);
		exit(PROC_EXIT_STORAGE);
	}
}

/* Writes the runs rows changed in this batch. */
static int
batch_flush_runs(struct jnl_tenant *t)
{
	sqlite3_stmt *st = t->st[JNL_ST_RUN_UPDATE];
	struct jnl_run *run;
	int rc;

	for (run = t->dirty; run != NULL; run = run->dirty_next) {
		sqlite3_bind_text(
		    st, 1, jnl_status_name(run->status), -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, run->updated_ms);
		sqlite3_bind_int64(st, 3, (int64_t)run->last_seq);
		sqlite3_bind_text(st, 4, run->run_id, -1, SQLITE_STATIC);
		if ((rc = jnl_step_done(st)) != 0) {
			log_error("%s: run %s update: %s", t->name, run->run_id,
			    sqlite3_errstr(rc));
			return -EIO;
		}
	}
	return 0;
}

/* After a commit: finished runs take no more events, forget them. */
static void
batch_done(struct jnl_tenant *t)
{
	struct jnl_run *run, *next;

	for (run = t->dirty; run != NULL; run = next) {
		next = run->dirty_next;
		run->dirty = 0;
		run->dirty_next = NULL;
		if (jnl_status_terminal(run->status))
			jnl_run_cache_remove(t, run);
	}
	t->dirty = NULL;
	if (t->nruns > JNL_RUN_CACHE_MAX)
		jnl_run_cache_clear(t);
	t->batch = JNL_BATCH_IDLE;
	t->batch_count = 0;
}

int
jnl_ack_push(struct jnl_ctx *ctx, const struct jnl_ack *ack)
{
	struct jnl_ack *n;
	size_t cap;

	if (ctx->nacks == ctx->acks_cap) {
		cap = ctx->acks_cap ? ctx->acks_cap * 2 : JNL_BATCH_MAX;
		if ((n = reallocarray(ctx->acks, cap, sizeof(*n))) == NULL)
			return -ENOMEM;
		ctx->acks = n;
		ctx->acks_cap = cap;
	}
	ctx->acks[ctx->nacks++] = *ack;
	return 0;
}

static int
backlog_push(struct jnl_worker *w, const struct jnl_ack *ack)
{
	struct jnl_ack *n;
	size_t cap;

	if (w->nbacklog == w->backlog_cap) {
		cap = w->backlog_cap ? w->backlog_cap * 2 : 256;
		if ((n = reallocarray(w->backlog, cap, sizeof(*n))) == NULL)
			return -ENOMEM;
		w->backlog = n;
		w->backlog_cap = cap;
	}
	w->backlog[w->nbacklog++] = *ack;
	return 0;
}

void
jnl_ack_release(struct jnl_ack *ack)
{
	if (ack->stored != NULL) {
		sodium_memzero(ack->stored, ack->stored_len);
		free(ack->stored);
	}
	ack->stored = NULL;
	ack->stored_len = 0;
}

int
jnl_ack_send(struct jnl_worker *w, const struct jnl_ack *ack)
{
	Palyra__Ipc__JournalAck msg = PALYRA__IPC__JOURNAL_ACK__INIT;
	int rc;

	msg.ok = ack->ok;
	msg.error = (char *)(ack->error != NULL ? ack->error : "");
	msg.code = (Palyra__Ipc__JournalError)ack->code;
	if (ack->ok) {
		msg.chain_seq = ack->chain_seq;
		msg.hash.data = (uint8_t *)ack->hash;
		msg.hash.len = CHAIN_HASH_LEN;
		/* Our own encoding: it unpacks, short of memory. */
		if (ack->stored != NULL &&
		    (msg.stored = palyra__v1__run_event__unpack(NULL,
			 ack->stored_len, ack->stored)) == NULL)
			return -ENOMEM;
	}
	rc = ipc_chan_send(
	    w->chan, IPC_JOURNAL_ACK, ack->request_id, &msg.base, NULL, 0);
	if (msg.stored != NULL)
		palyra__v1__run_event__free_unpacked(msg.stored, NULL);
	return rc;
}

/*
 * Tells the front about a committed reconciliation event. A front that is
 * gone or does not drain misses it; its calls then end on their own timer.
 */
static void
notice_deliver(struct jnl_ctx *ctx, const struct jnl_ack *ack)
{
	Palyra__Ipc__RunNotice msg = PALYRA__IPC__RUN_NOTICE__INIT;
	Palyra__V1__RunEvent ev = PALYRA__V1__RUN_EVENT__INIT;
	Palyra__V1__StatusEvent status = PALYRA__V1__STATUS_EVENT__INIT;
	const struct jnl_notice *n = ack->notice;
	int rc;

	if (!ack->ok || ctx->front == NULL || ipc_chan_dead(ctx->front))
		return;
	status.status = (Palyra__V1__RunStatus)n->status;
	status.reason = (char *)n->reason;
	ev.run_id = (char *)n->run_id;
	ev.session_id = (char *)n->session_id;
	ev.seq = n->seq;
	ev.timestamp_unix_ms = n->timestamp_ms;
	ev.event_case = PALYRA__V1__RUN_EVENT__EVENT_STATUS;
	ev.status = &status;
	msg.tenant = ack->tenant->name;
	msg.event = &ev;
	if ((rc = ipc_chan_send(
		 ctx->front, IPC_RUN_NOTICE, 0, &msg.base, NULL, 0)) < 0)
		log_warn("%s: run %s: cannot notify the front: %s",
		    ack->tenant->name, n->run_id, strerror(-rc));
}

/*
 * Hands an ack to the worker's channel. When the channel's queue is full the
 * ack waits in the worker's backlog and the worker is not read until the
 * channel drains: back-pressure instead of an unbounded queue.
 */
static void
ack_deliver(struct jnl_ctx *ctx, struct jnl_ack *ack)
{
	struct jnl_worker *w = ack->worker;
	int rc;

	if (w == NULL || w->closing) {
		jnl_ack_release(ack);
		return;
	}
	if (w->nbacklog == 0) {
		rc = jnl_ack_send(w, ack);
		if (rc != -ENOBUFS) {
			/* Sent, or the channel is dying; without memory for
			 * a redacted ack the worker must not forward its own
			 * copy: it goes. */
			if (rc == -ENOMEM) {
				log_error("%s: out of memory for a redacted "
					  "ack; dropping the worker",
				    ipc_chan_peer(w->chan));
				w->closing = 1;
				ipc_chan_pause(w->chan);
			}
			jnl_ack_release(ack);
			return;
		}
		ipc_chan_pause(w->chan);
	}
	/* The backlog owns the stored event from here. */
	if (backlog_push(w, ack) < 0) {
		log_error("%s: out of memory for acks; dropping the worker",
		    ipc_chan_peer(w->chan));
		jnl_ack_release(ack);
		w->closing = 1;
		ipc_chan_pause(w->chan);
	}
}

void
jnl_worker_drained(struct ipc_chan *chan, void *arg)
{
	struct jnl_worker *w = arg;
	size_t i;

	for (i = 0; i < w->nbacklog; i++) {
		if (jnl_ack_send(w, &w->backlog[i]) == -ENOBUFS)
			break;
		jnl_ack_release(&w->backlog[i]);
	}
	if (i > 0) {
		memmove(w->backlog, w->backlog + i,
		    (w->nbacklog - i) * sizeof(w->backlog[0]));
		w->nbacklog -= i;
	}
	if (w->nbacklog == 0 && !w->closing && !w->ctx->stopping)
		ipc_chan_resume(chan);
}

void
jnl_commit_all(struct jnl_ctx *ctx)
{
	struct jnl_tenant *t;
	size_t i;
	int rc;

	while (ctx->nopen > 0) {
		t = ctx->open[0];
		if (batch_flush_runs(t) < 0) {
			jnl_batch_fail(ctx, t);
			continue;
		}
		if ((rc = jnl_step_done(t->st[JNL_ST_COMMIT])) != 0) {
			log_error(
			    "%s: COMMIT: %s", t->name, sqlite3_errstr(rc));
			jnl_batch_fail(ctx, t);
			continue;
		}
		jnl_stats_committed(ctx, t);
		batch_done(t);
		open_list_remove(ctx, t);
	}
	for (i = 0; i < ctx->nacks; i++) {
		if (ctx->acks[i].notice != NULL) {
			notice_deliver(ctx, &ctx->acks[i]);
			free(ctx->acks[i].notice);
			ctx->acks[i].notice = NULL;
			continue;
		}
		if (ctx->acks[i].deliver != NULL) {
			ctx->acks[i].deliver(ctx, &ctx->acks[i]);
			continue;
		}
		ack_deliver(ctx, &ctx->acks[i]);
	}
	ctx->nacks = 0;
}
