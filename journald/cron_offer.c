/*
 * cron_offer.c: pending cron fires handed to the workers of their tenant
 * (cron_int.h). Runs in palyra-journald; touches the cron_jobs and
 * cron_fires tables of the tenants' journal.db files (reads; the answer's
 * update inside the open batch), the workers' channels (IPC_CRON_FIRE)
 * and the supervisor's (IPC_WORKER_WANTED).
 *
 * A fire is offered only once the batch that recorded it committed, and
 * after its jitter, to the least loaded live worker of the tenant (runs
 * it holds, fires it was asked for). Without one, the supervisor is asked
 * for a worker (at most every JNL_CRON_WANT_EVERY_MS) and the fire waits
 * until one attaches. The worker's answer (IPC_CRON_FIRED) makes the fire
 * 'started' with its run, 'done' or 'failed' when that run had already
 * ended (the idempotency key named it), or 'failed' with the worker's
 * reason; an UNAVAILABLE worker (stopping, its journald channel lost) is
 * offered the fire again, JNL_CRON_ATTEMPTS times in all. A fire whose
 * worker died before it answered is offered again to another.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "approvals.h"
#include "cron_int.h"
#include "grpc_status.h"
#include "log.h"

static char *
column_text(sqlite3_stmt *st, int col)
{
	const char *s = (const char *)sqlite3_column_text(st, col);

	return (char *)(s != NULL ? s : "");
}

int
jnl_cron_offer_add(struct jnl_ctx *ctx, struct jnl_tenant *t,
    const char *job_id, int64_t scheduled_ms, int64_t send_at_ms)
{
	struct jnl_cron_sched *s = jnl_cron_sched_get(ctx);
	struct jnl_cron_offer *o, **p;

	if (s == NULL || (o = calloc(1, sizeof(*o))) == NULL)
		return -ENOMEM;
	o->tenant = t;
	snprintf(o->job_id, sizeof(o->job_id), "%s", job_id);
	o->scheduled_ms = scheduled_ms;
	o->send_at_ms = send_at_ms;
	/* Oldest first: offers go out in the order they were due. */
	for (p = &s->offers; *p != NULL; p = &(*p)->next)
		;
	*p = o;
	return 0;
}

static void
offer_unlink(struct jnl_ctx *ctx, struct jnl_cron_offer *o)
{
	struct jnl_cron_offer **p;

	for (p = &ctx->cron->offers; *p != NULL; p = &(*p)->next)
		if (*p == o) {
			*p = o->next;
			break;
		}
	free(o);
}

/* The least loaded live worker of t, or NULL. */
static struct jnl_worker *
worker_pick(struct jnl_ctx *ctx, struct jnl_tenant *t)
{
	struct jnl_worker *w, *best = NULL;
	struct jnl_cron_offer *o;
	size_t load, best_load = 0;

	for (w = ctx->workers; w != NULL; w = w->next) {
		if (w->tenant != t || w->closing || ipc_chan_dead(w->chan))
			continue;
		load = w->nlive;
		for (o = ctx->cron->offers; o != NULL; o = o->next)
			load += o->worker == w;
		if (best == NULL || load < best_load) {
			best = w;
			best_load = load;
		}
	}
	return best;
}

/*
 * Sends offer o to worker w: the run start as the job's owner. Returns 0,
 * -ENOENT (the fire is no longer pending: the job was deleted, or it was
 * answered), -EAGAIN (the channel is full: later) or -EIO.
 */
static int
offer_send(struct jnl_ctx *ctx, struct jnl_cron_offer *o, struct jnl_worker *w)
{
	Palyra__Ipc__CronFireRequest msg = PALYRA__IPC__CRON_FIRE_REQUEST__INIT;
	Palyra__Ipc__RunStartRequest req = PALYRA__IPC__RUN_START_REQUEST__INIT;
	Palyra__V1__RunStart start = PALYRA__V1__RUN_START__INIT;
	Palyra__Ipc__AgentConfig *runtime = NULL;
	struct jnl_tenant *t = o->tenant;
	char key[64], session_key[NAME_MAX_LEN + 8];
	sqlite3_stmt *st;
	int rc;

	if (jnl_db_prepare(t->db,
		"SELECT j.principal, j.role, j.agent, j.input, j.session_key,"
		" j.unattended, j.name FROM cron_jobs j JOIN cron_fires f"
		" ON f.job_id = j.job_id WHERE j.job_id = ?1"
		" AND f.scheduled_ms = ?2 AND f.state = 'pending'",
		&st) < 0)
		return -EIO;
	sqlite3_bind_text(st, 1, o->job_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, o->scheduled_ms);
	if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
		sqlite3_finalize(st);
		return rc == SQLITE_DONE ? -ENOENT : -EIO;
	}
	snprintf(key, sizeof(key), "cron:%s:%lld", o->job_id,
	    (long long)o->scheduled_ms);
	snprintf(
	    session_key, sizeof(session_key), "cron/%s", column_text(st, 6));
	req.principal = column_text(st, 0);
	req.role = column_text(st, 1);
	start.agent = column_text(st, 2);
	start.input = column_text(st, 3);
	start.session_key =
	    column_text(st, 4)[0] != '\0' ? column_text(st, 4) : session_key;
	start.idempotency_key = key;
	req.start = &start;
	/* A runtime agent travels with the start, as the front's do. */
	if (start.agent[0] != '\0' &&
	    jnl_agent_runtime_config(t, start.agent, &runtime) < 0) {
		sqlite3_finalize(st);
		return -EIO;
	}
	req.runtime_agent = runtime;
	msg.job_id = o->job_id;
	msg.scheduled_unix_ms = o->scheduled_ms;
	msg.start = &req;
	msg.unattended =
	    strcmp(column_text(st, 5), "wait") == 0
		? PALYRA__V1__UNATTENDED_POLICY__UNATTENDED_POLICY_WAIT
		: PALYRA__V1__UNATTENDED_POLICY__UNATTENDED_POLICY_DENY;
	if ((o->request_id = ++ctx->cron->request_counter) == 0)
		o->request_id = ++ctx->cron->request_counter;
	rc = ipc_chan_send(
	    w->chan, IPC_CRON_FIRE, o->request_id, &msg.base, NULL, 0);
	sqlite3_finalize(st);
	if (runtime != NULL)
		palyra__ipc__agent_config__free_unpacked(runtime, NULL);
	if (rc < 0)
		return -EAGAIN;
	o->worker = w;
	log_info("%s: cron job %s: fire of %lld offered to %s", t->name,
	    o->job_id, (long long)o->scheduled_ms, ipc_chan_peer(w->chan));
	return 0;
}

/* Hands every due waiting offer to a worker, or asks for one. */
void
jnl_cron_dispatch(struct jnl_ctx *ctx)
{
	struct jnl_cron_offer *o, *next;
	struct jnl_worker *w;
	int64_t now = (int64_t)jnl_now_ms();
	int rc;

	if (ctx->cron == NULL || ctx->stopping)
		return;
	for (o = ctx->cron->offers; o != NULL; o = next) {
		next = o->next;
		if (o->worker != NULL || o->send_at_ms > now ||
		    o->tenant->db == NULL)
			continue;
		if ((w = worker_pick(ctx, o->tenant)) == NULL) {
			if (o->tenant->cron != NULL &&
			    now - (int64_t)o->tenant->cron->wanted_ms >=
				JNL_CRON_WANT_EVERY_MS) {
				o->tenant->cron->wanted_ms = (uint64_t)now;
				jnl_appr_want_worker(ctx, o->tenant);
			}
			continue;
		}
		if ((rc = offer_send(ctx, o, w)) == -ENOENT)
			offer_unlink(ctx, o);
		else if (rc < 0)
			o->send_at_ms = now + JNL_CRON_RETRY_MS;
	}
}

void
jnl_cron_offer_commit(struct jnl_ctx *ctx, struct jnl_tenant *t,
    const char *job_id, int64_t scheduled_ms)
{
	if (jnl_cron_offer_add(ctx, t, job_id, scheduled_ms, scheduled_ms) < 0)
		log_error("%s: cron job %s: out of memory for a fire; offered "
			  "at the next start",
		    t->name, job_id);
	jnl_cron_dispatch(ctx);
	jnl_cron_arm(ctx);
}

void
jnl_cron_worker_attached(struct jnl_ctx *ctx, struct jnl_worker *w)
{
	(void)w;
	jnl_cron_dispatch(ctx);
	jnl_cron_arm(ctx);
}

void
jnl_cron_worker_gone(struct jnl_ctx *ctx, struct jnl_worker *w)
{
	struct jnl_cron_offer *o;
	int again = 0;

	if (ctx->cron == NULL)
		return;
	for (o = ctx->cron->offers; o != NULL; o = o->next)
		if (o->worker == w) {
			log_info("%s: cron job %s: fire of %lld offered again "
				 "(its worker is gone)",
			    o->tenant->name, o->job_id,
			    (long long)o->scheduled_ms);
			o->worker = NULL;
			o->send_at_ms = (int64_t)jnl_now_ms();
			again = 1;
		}
	/* From the timer: the worker's runs are reconciled first. */
	if (again)
		jnl_cron_arm(ctx);
}

static int
run_id_valid(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (i >= JNL_RUN_ID_MAX ||
		    strchr("0123456789abcdefghijklmnopqrstuvwxyz"
			   "ABCDEFGHIJKLMNOPQRSTUVWXYZ_-",
			s[i]) == NULL)
			return 0;
	return i > 0;
}

/* Copies text a worker wrote as a reason: printable ASCII, bounded. */
static void
reason_copy(char *out, size_t size, const char *in)
{
	size_t i, n = 0;

	for (i = 0; in[i] != '\0' && n + 1 < size; i++)
		out[n++] = in[i] >= 0x20 && in[i] < 0x7f ? in[i] : '?';
	out[n] = '\0';
}

static int
fire_update(struct jnl_tenant *t, const char *job_id, int64_t scheduled_ms,
    const char *state, const char *run_id, const char *reason)
{
	sqlite3_stmt *st;
	int rc;

	if (jnl_db_prepare(t->db,
		"UPDATE cron_fires SET state = ?3, run_id = ?4, reason = ?5"
		" WHERE job_id = ?1 AND scheduled_ms = ?2"
		" AND state = 'pending'",
		&st) < 0)
		return -EIO;
	sqlite3_bind_text(st, 1, job_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, scheduled_ms);
	sqlite3_bind_text(st, 3, state, -1, SQLITE_STATIC);
	if (run_id != NULL)
		sqlite3_bind_text(st, 4, run_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, reason, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

void
jnl_cron_fired(
    struct jnl_ctx *ctx, struct jnl_worker *w, const struct ipc_msg *m)
{
	const Palyra__Ipc__CronFired *msg =
	    (const Palyra__Ipc__CronFired *)m->msg;
	struct jnl_tenant *t = w->tenant;
	struct jnl_cron_offer *o;
	struct jnl_run *run = NULL;
	char reason[JNL_CRON_REASON_MAX];
	const char *state = "failed", *run_id = NULL;

	for (o = ctx->cron != NULL ? ctx->cron->offers : NULL; o != NULL;
	     o = o->next)
		if (o->worker == w && o->request_id == m->hdr.request_id)
			break;
	if (o == NULL) {
		log_warn(
		    "%s: an answer to no cron fire", ipc_chan_peer(w->chan));
		return;
	}
	if (msg->grpc_status == 0) {
		if (!run_id_valid(msg->run_id)) {
			log_warn("%s: cron fire answered with a malformed run "
				 "id; dropping the worker",
			    ipc_chan_peer(w->chan));
			jnl_worker_fail(ctx, w);
			return;
		}
		run_id = msg->run_id;
	} else if (msg->grpc_status == 14 /* UNAVAILABLE */ &&
		   ++o->attempts < JNL_CRON_ATTEMPTS) {
		/* The worker is stopping or lost journald: another try. */
		o->worker = NULL;
		o->send_at_ms = (int64_t)jnl_now_ms() + JNL_CRON_RETRY_MS;
		jnl_cron_arm(ctx);
		return;
	}
	if (jnl_batch_begin(ctx, t) < 0)
		goto storage;
	if (run_id != NULL && jnl_run_get(t, run_id, &run) < 0)
		goto storage;
	if (run_id == NULL) {
		snprintf(reason, sizeof(reason), "no run started: ");
		reason_copy(reason + strlen(reason),
		    sizeof(reason) - strlen(reason), msg->error);
	} else if (run == NULL || !jnl_status_terminal(run->status)) {
		/* run NULL: its ACCEPTED waits in the worker's pipeline
		 * still. A run never journaled is found at the next start
		 * (jnl_cron_tenant_open). */
		state = "started";
		reason[0] = '\0';
	} else if (run->status ==
		   PALYRA__V1__RUN_STATUS__RUN_STATUS_COMPLETED) {
		/* The run its idempotency key named had already ended. */
		state = "done";
		reason[0] = '\0';
	} else
		snprintf(reason, sizeof(reason), "its run ended %s",
		    jnl_status_name(run->status));
	if (fire_update(t, o->job_id, o->scheduled_ms, state, run_id, reason) <
	    0)
		goto storage;
	log_info("%s: cron job %s: fire of %lld %s%s%s", t->name, o->job_id,
	    (long long)o->scheduled_ms, state, run_id != NULL ? ", run " : "",
	    run_id != NULL ? run_id : "");
	offer_unlink(ctx, o);
	jnl_schedule_commit(ctx);
	return;
storage:
	/* Left pending: offered again at the next start of journald. */
	log_error("%s: cron job %s: the answer to a fire was not stored",
	    t->name, o->job_id);
	jnl_batch_fail(ctx, t);
	offer_unlink(ctx, o);
}
