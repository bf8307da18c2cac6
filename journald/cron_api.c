/*
 * cron_api.c: CronService at journald (CreateJob, UpdateJob, DeleteJob,
 * GetJob, ListJobs, RunJobNow, ListJobRuns), reached through service.c.
 *
 * Runs in palyra-journald. Reads and writes the cron_jobs and cron_fires
 * tables of the token's tenant (writes inside its batch; the answer goes
 * out once the batch committed, and only then does the scheduler, cron.c,
 * see the change). The front verified the token; the request message is
 * decoded here alone. A user token sees and changes only its own
 * principal's jobs (another's is NOT_FOUND, as a missing one); operator
 * and admin tokens the tenant's. A job runs as the principal and role
 * that created it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cron_int.h"
#include "grpc_status.h"
#include "log.h"
#include "palyra/v1/gateway.pb-c.h"

#define CRON_PREFIX "/palyra.v1.CronService/"
#define E_STORAGE "journal storage failed"
/* A page stops growing past this many encoded bytes. */
#define PAGE_BYTES_MAX (IPC_MAX_PAYLOAD / 2)

#define FIRE(x) PALYRA__V1__CRON_FIRE_STATE__CRON_FIRE_STATE_##x

static const char *const field_names[] = {
    "schedule",
    "timezone",
    "agent",
    "input",
    "misfire",
    "catch_up_max",
    "allow_overlap",
    "jitter_ms",
    "enabled",
    "unattended",
    "session_key",
};

static int
reply_status(
    struct jnl_ctx *ctx, uint32_t id, uint32_t code, const char *message)
{
	return jnl_service_reply(ctx, id, code, message, NULL, 0);
}

/* Answers after the commit. */

enum write_kind {
	W_JOB,	  /* CreateJob, UpdateJob: the job as stored */
	W_DELETE, /* DeleteJob */
	W_FIRE,	  /* RunJobNow: the fire */
};

struct written {
	enum write_kind kind;
	char job_id[JNL_CRON_ID_LEN + 1];
	int64_t scheduled_ms;
	int64_t fired_ms;
	const char *state;
	char reason[JNL_CRON_REASON_MAX];
};

static void
written_deliver(struct jnl_ctx *ctx, struct jnl_ack *ack)
{
	Palyra__V1__DeleteJobResponse deleted =
	    PALYRA__V1__DELETE_JOB_RESPONSE__INIT;
	Palyra__V1__CronFire fire = PALYRA__V1__CRON_FIRE__INIT;
	Palyra__Ipc__ServiceCall any = PALYRA__IPC__SERVICE_CALL__INIT;
	Palyra__V1__CronJob pb;
	struct written *w = ack->arg;
	struct jnl_tenant *t = ack->tenant;
	struct jnl_cron_row j;
	int pending;

	ack->arg = NULL;
	if (!ack->ok) {
		(void)reply_status(
		    ctx, ack->request_id, GRPC_STATUS_UNAVAILABLE, E_STORAGE);
		free(w);
		return;
	}
	switch (w->kind) {
	case W_JOB:
		jnl_cron_job_changed(ctx, t, w->job_id);
		any.role = (char *)"admin";
		if (jnl_cron_row_find(t, &any, w->job_id, &j) != 1) {
			(void)reply_status(ctx, ack->request_id,
			    GRPC_STATUS_UNAVAILABLE, E_STORAGE);
			break;
		}
		jnl_cron_row_to_pb(t, &j, &pb);
		(void)jnl_service_reply(
		    ctx, ack->request_id, GRPC_STATUS_OK, NULL, &pb.base, 0);
		jnl_cron_row_clear(&j);
		break;
	case W_DELETE:
		jnl_cron_job_changed(ctx, t, w->job_id);
		(void)jnl_service_reply(ctx, ack->request_id, GRPC_STATUS_OK,
		    NULL, &deleted.base, 0);
		break;
	case W_FIRE:
		pending = strcmp(w->state, "pending") == 0;
		fire.job_id = w->job_id;
		fire.scheduled_unix_ms = w->scheduled_ms;
		fire.fired_unix_ms = w->fired_ms;
		fire.state = pending ? FIRE(PENDING) : FIRE(SKIPPED);
		fire.reason = w->reason;
		fire.manual = 1;
		(void)jnl_service_reply(
		    ctx, ack->request_id, GRPC_STATUS_OK, NULL, &fire.base, 0);
		if (pending)
			jnl_cron_offer_commit(
			    ctx, t, w->job_id, w->scheduled_ms);
		break;
	}
	free(w);
}

/* Answers once t's batch commits. Returns 0; on failure w is freed and
 * the call answered. */
static int
written_push(struct jnl_ctx *ctx, struct jnl_tenant *t, uint32_t request_id,
    struct written *w)
{
	if (jnl_ack_defer(ctx, t, NULL, request_id, written_deliver, w) < 0) {
		free(w);
		jnl_batch_fail(ctx, t);
		return reply_status(
		    ctx, request_id, GRPC_STATUS_UNAVAILABLE, "out of memory");
	}
	return 0;
}

static struct written *
written_new(enum write_kind kind, const char *job_id)
{
	struct written *w;

	if ((w = calloc(1, sizeof(*w))) == NULL)
		return NULL;
	w->kind = kind;
	snprintf(w->job_id, sizeof(w->job_id), "%s", job_id);
	return w;
}

/* Methods. */

static int
jobs_count(struct jnl_tenant *t)
{
	sqlite3_stmt *st;
	int n = -1;

	if (jnl_db_prepare(t->db, "SELECT count(*) FROM cron_jobs", &st) < 0)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return n;
}

static int
create_job(struct jnl_ctx *ctx, struct jnl_tenant *t, uint32_t id,
    const Palyra__Ipc__ServiceCall *call,
    const Palyra__V1__CreateJobRequest *req)
{
	Palyra__Ipc__ServiceCall any = PALYRA__IPC__SERVICE_CALL__INIT;
	struct jnl_cron_row j, other;
	struct written *w;
	unsigned char raw[JNL_CRON_ID_LEN / 2];
	char err[256];
	uint32_t code;
	int n, rc;

	if (req->job == NULL)
		return reply_status(
		    ctx, id, GRPC_STATUS_INVALID_ARGUMENT, "job is required");
	memset(&j, 0, sizeof(j));
	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(j.id, sizeof(j.id), raw, sizeof(raw));
	j.created_ms = j.updated_ms = (int64_t)jnl_now_ms();
	if ((j.name = strdup(req->job->name)) == NULL ||
	    (j.principal = strdup(call->principal)) == NULL ||
	    (j.role = strdup(
		 jnl_service_privileged(call) ? call->role : "user")) == NULL ||
	    jnl_cron_row_apply(&j, req->job, JNL_CRON_F_ALL) < 0) {
		jnl_cron_row_clear(&j);
		return reply_status(
		    ctx, id, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	}
	j.enabled = !req->disabled;
	if ((code = jnl_cron_row_check(
		 t, &j, j.created_ms, err, sizeof(err))) != 0) {
		jnl_cron_row_clear(&j);
		return reply_status(ctx, id, code, err);
	}
	any.role = (char *)"admin";
	if ((rc = jnl_cron_row_find(t, &any, j.name, &other)) != 0) {
		jnl_cron_row_clear(&j);
		if (rc < 0)
			return reply_status(
			    ctx, id, GRPC_STATUS_UNAVAILABLE, E_STORAGE);
		jnl_cron_row_clear(&other);
		return reply_status(ctx, id, GRPC_STATUS_ALREADY_EXISTS,
		    "a job of that name exists");
	}
	if ((n = jobs_count(t)) < 0 || n >= JNL_CRON_JOBS_MAX) {
		jnl_cron_row_clear(&j);
		return reply_status(ctx, id,
		    n < 0 ? GRPC_STATUS_UNAVAILABLE
			  : GRPC_STATUS_RESOURCE_EXHAUSTED,
		    n < 0 ? E_STORAGE : "too many cron jobs in the tenant");
	}
	if (jnl_batch_begin(ctx, t) < 0 || jnl_cron_row_store(t, &j, 1) != 0 ||
	    (w = written_new(W_JOB, j.id)) == NULL) {
		jnl_cron_row_clear(&j);
		jnl_batch_fail(ctx, t);
		return reply_status(
		    ctx, id, GRPC_STATUS_UNAVAILABLE, E_STORAGE);
	}
	log_info("%s: cron job %s (%s) created by %s", t->name, j.id, j.name,
	    j.principal);
	jnl_cron_row_clear(&j);
	return written_push(ctx, t, id, w);
}

static int
found_or_reply(struct jnl_ctx *ctx, uint32_t id, int rc)
{
	if (rc == 1)
		return 0;
	(void)reply_status(ctx, id,
	    rc == 0 ? GRPC_STATUS_NOT_FOUND : GRPC_STATUS_UNAVAILABLE,
	    rc == 0 ? "no such job" : E_STORAGE);
	return -1;
}

static int
update_job(struct jnl_ctx *ctx, struct jnl_tenant *t, uint32_t id,
    const Palyra__Ipc__ServiceCall *call,
    const Palyra__V1__UpdateJobRequest *req)
{
	struct jnl_cron_row j;
	struct written *w;
	unsigned mask = 0;
	size_t i, k;
	char err[256], sched[CRON_SPEC_MAX + 1], zone[TZ_NAME_MAX + 1];
	int64_t now = (int64_t)jnl_now_ms();
	int was_enabled;
	uint32_t code;

	if (req->job == NULL)
		return reply_status(
		    ctx, id, GRPC_STATUS_INVALID_ARGUMENT, "job is required");
	for (i = 0; i < req->n_fields; i++) {
		for (k = 0; k < sizeof(field_names) / sizeof(field_names[0]);
		     k++)
			if (strcmp(req->fields[i], field_names[k]) == 0)
				break;
		if (k == sizeof(field_names) / sizeof(field_names[0])) {
			snprintf(err, sizeof(err),
			    "fields: \"%.64s\" cannot be updated",
			    req->fields[i]);
			return reply_status(
			    ctx, id, GRPC_STATUS_INVALID_ARGUMENT, err);
		}
		mask |= 1u << k;
	}
	if (mask == 0)
		mask = JNL_CRON_F_ALL;
	if (found_or_reply(
		ctx, id, jnl_cron_row_find(t, call, req->job_id, &j)) < 0)
		return 0;
	snprintf(sched, sizeof(sched), "%s", j.schedule);
	snprintf(zone, sizeof(zone), "%s", j.timezone);
	was_enabled = j.enabled;
	if (jnl_cron_row_apply(&j, req->job, mask) < 0) {
		jnl_cron_row_clear(&j);
		return reply_status(
		    ctx, id, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	}
	if ((code = jnl_cron_row_check(t, &j, now, err, sizeof(err))) != 0) {
		jnl_cron_row_clear(&j);
		return reply_status(ctx, id, code, err);
	}
	/* A new schedule, zone, or a job enabled again starts from now:
	 * what it would have fired before was not missed. */
	if (strcmp(sched, j.schedule) != 0 || strcmp(zone, j.timezone) != 0 ||
	    (!was_enabled && j.enabled))
		j.handled_ms = now;
	j.updated_ms = now > j.created_ms ? now : j.created_ms;
	if (jnl_batch_begin(ctx, t) < 0 || jnl_cron_row_store(t, &j, 0) != 0 ||
	    (w = written_new(W_JOB, j.id)) == NULL) {
		jnl_cron_row_clear(&j);
		jnl_batch_fail(ctx, t);
		return reply_status(
		    ctx, id, GRPC_STATUS_UNAVAILABLE, E_STORAGE);
	}
	jnl_cron_row_clear(&j);
	return written_push(ctx, t, id, w);
}

static int
delete_job(struct jnl_ctx *ctx, struct jnl_tenant *t, uint32_t id,
    const Palyra__Ipc__ServiceCall *call, const char *key)
{
	struct jnl_cron_row j;
	struct written *w;
	sqlite3_stmt *st = NULL;
	int rc = SQLITE_ERROR;

	if (found_or_reply(ctx, id, jnl_cron_row_find(t, call, key, &j)) < 0)
		return 0;
	if (jnl_batch_begin(ctx, t) == 0 &&
	    jnl_db_prepare(
		t->db, "DELETE FROM cron_jobs WHERE job_id = ?1", &st) == 0) {
		sqlite3_bind_text(st, 1, j.id, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE || (w = written_new(W_DELETE, j.id)) == NULL) {
		jnl_cron_row_clear(&j);
		jnl_batch_fail(ctx, t);
		return reply_status(
		    ctx, id, GRPC_STATUS_UNAVAILABLE, E_STORAGE);
	}
	log_info("%s: cron job %s (%s) deleted", t->name, j.id, j.name);
	jnl_cron_row_clear(&j);
	return written_push(ctx, t, id, w);
}

static int
get_job(struct jnl_ctx *ctx, struct jnl_tenant *t, uint32_t id,
    const Palyra__Ipc__ServiceCall *call, const char *key)
{
	Palyra__V1__CronJob pb;
	struct jnl_cron_row j;
	int rc;

	if (found_or_reply(ctx, id, jnl_cron_row_find(t, call, key, &j)) < 0)
		return 0;
	jnl_cron_row_to_pb(t, &j, &pb);
	rc = jnl_service_reply(ctx, id, GRPC_STATUS_OK, NULL, &pb.base, 0);
	jnl_cron_row_clear(&j);
	return rc;
}

static uint32_t
page_size(uint32_t asked)
{
	if (asked == 0)
		return JNL_CRON_PAGE_DEFAULT;
	return asked > JNL_CRON_PAGE_MAX ? JNL_CRON_PAGE_MAX : asked;
}

static int
list_jobs(struct jnl_ctx *ctx, struct jnl_tenant *t, uint32_t id,
    const Palyra__Ipc__ServiceCall *call,
    const Palyra__V1__ListJobsRequest *req)
{
	Palyra__V1__ListJobsResponse resp =
	    PALYRA__V1__LIST_JOBS_RESPONSE__INIT;
	Palyra__V1__CronJob *pbs = NULL, **ptrs = NULL;
	struct jnl_cron_row *jobs = NULL;
	uint32_t size = page_size(req->page_size), n = 0, i;
	sqlite3_stmt *st;
	size_t bytes = 0;
	int rc;

	if (req->page_token[0] != '\0' && !jnl_name_valid(req->page_token))
		return reply_status(ctx, id, GRPC_STATUS_INVALID_ARGUMENT,
		    "invalid page_token");
	if ((jobs = calloc(size + 1, sizeof(*jobs))) == NULL ||
	    (pbs = calloc(size + 1, sizeof(*pbs))) == NULL ||
	    (ptrs = calloc(size + 1, sizeof(*ptrs))) == NULL) {
		free(jobs);
		free(pbs);
		return reply_status(
		    ctx, id, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	}
	rc = jnl_db_prepare(t->db,
	    JNL_CRON_ROW_SELECT
	    " WHERE name > ?1 AND (?2 IS NULL OR principal = ?2)"
	    " ORDER BY name LIMIT ?3",
	    &st);
	if (rc == 0) {
		sqlite3_bind_text(st, 1, req->page_token, -1, SQLITE_STATIC);
		if (!jnl_service_privileged(call))
			sqlite3_bind_text(
			    st, 2, call->principal, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 3, (int)size + 1);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			if (n == size || bytes > PAGE_BYTES_MAX) {
				/* More follow: from the last one sent. */
				resp.next_page_token = jobs[n - 1].name;
				break;
			}
			if (jnl_cron_row_read(st, &jobs[n]) < 0)
				break;
			jnl_cron_row_to_pb(t, &jobs[n], &pbs[n]);
			ptrs[n] = &pbs[n];
			bytes +=
			    protobuf_c_message_get_packed_size(&pbs[n].base);
			n++;
		}
		sqlite3_finalize(st);
	}
	if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
		resp.n_jobs = n;
		resp.jobs = ptrs;
		rc = jnl_service_reply(
		    ctx, id, GRPC_STATUS_OK, NULL, &resp.base, 0);
	} else
		rc = reply_status(ctx, id, GRPC_STATUS_UNAVAILABLE, E_STORAGE);
	for (i = 0; i < n; i++)
		jnl_cron_row_clear(&jobs[i]);
	free(jobs);
	free(pbs);
	free(ptrs);
	return rc;
}

static int
run_job_now(struct jnl_ctx *ctx, struct jnl_tenant *t, uint32_t id,
    const Palyra__Ipc__ServiceCall *call, const char *key)
{
	struct jnl_cron_row j;
	struct written *w;
	int rc;

	if (found_or_reply(ctx, id, jnl_cron_row_find(t, call, key, &j)) < 0)
		return 0;
	if ((w = written_new(W_FIRE, j.id)) == NULL) {
		jnl_cron_row_clear(&j);
		return reply_status(
		    ctx, id, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	}
	jnl_cron_row_clear(&j);
	w->fired_ms = (int64_t)jnl_now_ms();
	if ((rc = jnl_cron_fire_now(ctx, t, w->job_id, &w->scheduled_ms,
		 &w->state, w->reason, sizeof(w->reason))) < 0) {
		free(w);
		if (rc == -ENOENT)
			return reply_status(
			    ctx, id, GRPC_STATUS_NOT_FOUND, "no such job");
		jnl_batch_fail(ctx, t);
		return reply_status(
		    ctx, id, GRPC_STATUS_UNAVAILABLE, E_STORAGE);
	}
	return written_push(ctx, t, id, w);
}

static int
fire_state(const char *s)
{
	static const char *const names[] = {
	    "", "pending", "started", "skipped", "done", "failed"};
	size_t i;

	for (i = 1; i < sizeof(names) / sizeof(names[0]); i++)
		if (s != NULL && strcmp(s, names[i]) == 0)
			return (int)i;
	return 0;
}

static int
run_status(const char *s)
{
	int i;

	for (i = 1; s != NULL && i <= JNL_RUN_STATUS_MAX; i++)
		if (strcmp(s, jnl_status_name(i)) == 0)
			return i;
	return 0;
}

static int
list_job_runs(struct jnl_ctx *ctx, struct jnl_tenant *t, uint32_t id,
    const Palyra__Ipc__ServiceCall *call,
    const Palyra__V1__ListJobRunsRequest *req)
{
	Palyra__V1__ListJobRunsResponse resp =
	    PALYRA__V1__LIST_JOB_RUNS_RESPONSE__INIT;
	Palyra__V1__CronFire *fires = NULL, **ptrs = NULL;
	uint32_t size = page_size(req->page_size), n = 0, i;
	char token[24] = "", *end;
	long long before = 0;
	struct jnl_run *run;
	sqlite3_stmt *st;
	struct jnl_cron_row j;
	int rc;

	if (req->page_token[0] != '\0') {
		errno = 0;
		before = strtoll(req->page_token, &end, 10);
		if (errno != 0 || *end != '\0' || before <= 0)
			return reply_status(ctx, id,
			    GRPC_STATUS_INVALID_ARGUMENT, "invalid page_token");
	}
	if (found_or_reply(
		ctx, id, jnl_cron_row_find(t, call, req->job_id, &j)) < 0)
		return 0;
	if ((fires = calloc(size + 1, sizeof(*fires))) == NULL ||
	    (ptrs = calloc(size + 1, sizeof(*ptrs))) == NULL) {
		free(fires);
		jnl_cron_row_clear(&j);
		return reply_status(
		    ctx, id, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	}
	rc = jnl_db_prepare(t->db,
	    "SELECT f.scheduled_ms, f.fired_ms, f.state, f.run_id, f.reason,"
	    " f.manual, r.status FROM cron_fires f"
	    " LEFT JOIN runs r ON r.run_id = f.run_id WHERE f.job_id = ?1"
	    " AND (?2 IS NULL OR f.scheduled_ms < ?2)"
	    " ORDER BY f.scheduled_ms DESC LIMIT ?3",
	    &st);
	if (rc == 0) {
		sqlite3_bind_text(st, 1, j.id, -1, SQLITE_STATIC);
		if (before > 0)
			sqlite3_bind_int64(st, 2, before);
		sqlite3_bind_int(st, 3, (int)size + 1);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			if (n == size) {
				snprintf(token, sizeof(token), "%lld",
				    (long long)fires[n - 1].scheduled_unix_ms);
				resp.next_page_token = token;
				break;
			}
			palyra__v1__cron_fire__init(&fires[n]);
			fires[n].job_id = j.id;
			fires[n].scheduled_unix_ms =
			    sqlite3_column_int64(st, 0);
			fires[n].fired_unix_ms = sqlite3_column_int64(st, 1);
			fires[n].state = (Palyra__V1__CronFireState)fire_state(
			    (const char *)sqlite3_column_text(st, 2));
			fires[n].run_id = jnl_cron_column_dup(st, 3);
			fires[n].reason = jnl_cron_column_dup(st, 4);
			fires[n].manual = sqlite3_column_int(st, 5);
			fires[n].run_status = (Palyra__V1__RunStatus)run_status(
			    (const char *)sqlite3_column_text(st, 6));
			/* The open batch's run rows are written at its
			 * commit; the run cache knows its status now. */
			if (fires[n].run_id != NULL &&
			    fires[n].run_id[0] != '\0' &&
			    !jnl_status_terminal((int)fires[n].run_status) &&
			    jnl_run_get(t, fires[n].run_id, &run) == 0 &&
			    run != NULL)
				fires[n].run_status =
				    (Palyra__V1__RunStatus)run->status;
			ptrs[n] = &fires[n];
			n++;
			if (fires[n - 1].run_id == NULL ||
			    fires[n - 1].reason == NULL) {
				rc = SQLITE_NOMEM;
				break;
			}
		}
		sqlite3_finalize(st);
	}
	if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
		resp.n_fires = n;
		resp.fires = ptrs;
		rc = jnl_service_reply(
		    ctx, id, GRPC_STATUS_OK, NULL, &resp.base, 0);
	} else
		rc = reply_status(ctx, id, GRPC_STATUS_UNAVAILABLE, E_STORAGE);
	for (i = 0; i < n; i++) {
		free(fires[i].run_id);
		free(fires[i].reason);
	}
	free(fires);
	free(ptrs);
	jnl_cron_row_clear(&j);
	return rc;
}

/* A valid principal and an open journal, or the tenant is not found. */
static int
cron_check(struct jnl_ctx *ctx, uint32_t request_id,
    const Palyra__Ipc__ServiceCall *call, struct jnl_tenant *t, int *rc)
{
	if (jnl_name_valid(call->principal) && t->db != NULL)
		return 0;
	*rc = reply_status(
	    ctx, request_id, GRPC_STATUS_NOT_FOUND, "unknown tenant");
	return -1;
}

int
jnl_cron_call(struct jnl_ctx *ctx, uint32_t request_id,
    const Palyra__Ipc__ServiceCall *call)
{
	static const struct jnl_method methods[] = {
	    {"CreateJob", &palyra__v1__create_job_request__descriptor},
	    {"UpdateJob", &palyra__v1__update_job_request__descriptor},
	    {"DeleteJob", &palyra__v1__delete_job_request__descriptor},
	    {"GetJob", &palyra__v1__get_job_request__descriptor},
	    {"ListJobs", &palyra__v1__list_jobs_request__descriptor},
	    {"RunJobNow", &palyra__v1__run_job_now_request__descriptor},
	    {"ListJobRuns", &palyra__v1__list_job_runs_request__descriptor},
	};
	static const struct jnl_service svc = {
	    methods, sizeof(methods) / sizeof(methods[0]), cron_check};
	ProtobufCMessage *in;
	struct jnl_tenant *t;
	int i, rc;

	if ((i = jnl_service_open(ctx, request_id, call,
		 call->method + strlen(CRON_PREFIX), &svc, &t, &in, &rc)) < 0)
		return rc;
	switch (i) {
	case 0:
		rc = create_job(ctx, t, request_id, call,
		    (const Palyra__V1__CreateJobRequest *)in);
		break;
	case 1:
		rc = update_job(ctx, t, request_id, call,
		    (const Palyra__V1__UpdateJobRequest *)in);
		break;
	case 2:
		rc = delete_job(ctx, t, request_id, call,
		    ((const Palyra__V1__DeleteJobRequest *)in)->job_id);
		break;
	case 3:
		rc = get_job(ctx, t, request_id, call,
		    ((const Palyra__V1__GetJobRequest *)in)->job_id);
		break;
	case 4:
		rc = list_jobs(ctx, t, request_id, call,
		    (const Palyra__V1__ListJobsRequest *)in);
		break;
	case 5:
		rc = run_job_now(ctx, t, request_id, call,
		    ((const Palyra__V1__RunJobNowRequest *)in)->job_id);
		break;
	default:
		rc = list_job_runs(ctx, t, request_id, call,
		    (const Palyra__V1__ListJobRunsRequest *)in);
		break;
	}
	protobuf_c_message_free_unpacked(in, NULL);
	return rc;
}
