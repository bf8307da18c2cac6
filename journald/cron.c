/*
 * cron.c: the cron scheduler (DESIGN section 9, issue 8). Runs in
 * palyra-journald; touches the cron_jobs and cron_fires tables of the
 * tenants' journal.db files (inside their batches) and, through
 * cron_offer.c, the workers' channels (IPC_CRON_FIRE) and the
 * supervisor's (IPC_WORKER_WANTED).
 *
 * journald owns the clock: each open tenant's enabled jobs are kept in
 * memory with their next scheduled time, and one libevent timer wakes the
 * scheduler at the earliest of them all (no polling of the database). A
 * due job is planned (cron_plan.c: late, missed, misfire policy, overlap),
 * its fires are inserted into cron_fires under their unique (job,
 * scheduled time), 'pending' or 'skipped', together with the job's last
 * handled time, and only once that batch has committed is a worker asked
 * to run them. An insert that conflicts names a fire that already
 * happened: it is never made twice. A pending fire is offered (after its
 * jitter) to the least loaded worker of the job's tenant; without one,
 * the supervisor is asked for a worker and the fire waits for it to
 * attach. The worker starts the run as the job's owner with the
 * idempotency key "cron:JOB:SCHEDULED" and answers IPC_CRON_FIRED: the
 * fire is then 'started' with its run, and 'done' or 'failed' when the run
 * ends (jnl_cron_run_ended, in the batch of the run's terminal status). A
 * fire offered to a worker that dies before answering is offered again to
 * another: the key makes the second start find the first run if there was
 * one. At start, pending fires are offered again and started ones follow
 * their run, which reconciliation interrupted if nothing holds it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <sodium.h>

#include "approvals.h"
#include "cron_int.h"
#include "log.h"
#include "usage.h"

/* A tenant without its configuration yet is scheduled after this. */
#define AGENTS_WAIT_MS 5000

/* Fires committed with a batch: offered once it has. */
struct committed {
	size_t n;
	struct jnl_cron_offer *offer; /* array; tenant set */
};

static void tick_cb(evutil_socket_t, short, void *);

const char *
jnl_cron_tenant_zone(const struct jnl_tenant *t)
{
	if (t->agents == NULL || t->agents->timezone == NULL)
		return "";
	return t->agents->timezone;
}

int
jnl_cron_next_of(const char *schedule, const char *zone_name, int64_t anchor_ms,
    int64_t after_ms, int64_t *next_ms, char *err, size_t errlen)
{
	struct cron_sched *s;
	struct tz_zone *z;
	int rc;

	*next_ms = 0;
	if ((rc = cron_parse(schedule, &s, err, errlen)) < 0)
		return rc == -ENOMEM ? -ENOMEM : -EINVAL;
	if ((rc = tz_load(JNL_ZONEINFO_DIR, zone_name, &z)) < 0) {
		cron_free(s);
		if (rc == -ENOMEM)
			return rc;
		snprintf(err, errlen, "unknown time zone \"%.64s\"", zone_name);
		return -EINVAL;
	}
	if (cron_next(s, z, anchor_ms, after_ms, next_ms) != 1)
		*next_ms = 0;
	tz_free(z);
	cron_free(s);
	return 0;
}

/* Jobs in memory. */

static void
job_free(struct jnl_cron_job *j)
{
	if (j == NULL)
		return;
	cron_free(j->sched);
	tz_free(j->zone);
	free(j);
}

static void
jobs_free(struct jnl_cron *c)
{
	struct jnl_cron_job *j;

	while ((j = c->jobs) != NULL) {
		c->jobs = j->next;
		job_free(j);
	}
}

static enum jnl_cron_misfire
misfire_parse(const char *s)
{
	if (s != NULL && strcmp(s, "catch_up") == 0)
		return JNL_MISFIRE_CATCH_UP;
	if (s != NULL && strcmp(s, "once") == 0)
		return JNL_MISFIRE_ONCE;
	return JNL_MISFIRE_SKIP;
}

#define JOB_COLUMNS                                                            \
	"job_id, schedule, timezone, created_ms, last_fire_ms, misfire,"       \
	" catch_up_max, allow_overlap, jitter_ms"

/* A job from a row of JOB_COLUMNS; NULL when it cannot be scheduled
 * (logged) or without memory. */
static struct jnl_cron_job *
job_from_row(struct jnl_tenant *t, sqlite3_stmt *st)
{
	const char *id = (const char *)sqlite3_column_text(st, 0);
	const char *schedule = (const char *)sqlite3_column_text(st, 1);
	const char *zone = (const char *)sqlite3_column_text(st, 2);
	struct jnl_cron_job *j;
	char err[128];
	int64_t after;

	if (id == NULL || schedule == NULL || zone == NULL ||
	    strlen(id) != JNL_CRON_ID_LEN)
		return NULL;
	if ((j = calloc(1, sizeof(*j))) == NULL)
		return NULL;
	memcpy(j->id, id, JNL_CRON_ID_LEN + 1);
	j->tenant_zone = zone[0] == '\0';
	snprintf(j->zone_name, sizeof(j->zone_name), "%s",
	    j->tenant_zone ? jnl_cron_tenant_zone(t) : zone);
	j->anchor_ms = sqlite3_column_int64(st, 3);
	j->handled_ms = sqlite3_column_int64(st, 4);
	j->misfire = misfire_parse((const char *)sqlite3_column_text(st, 5));
	j->catch_up_max = (unsigned)sqlite3_column_int(st, 6);
	j->allow_overlap = sqlite3_column_int(st, 7);
	j->jitter_ms = (uint64_t)sqlite3_column_int64(st, 8);
	if (cron_parse(schedule, &j->sched, err, sizeof(err)) < 0 ||
	    tz_load(JNL_ZONEINFO_DIR, j->zone_name, &j->zone) < 0) {
		log_warn("%s: cron job %s cannot be scheduled (schedule or "
			 "time zone \"%.64s\")",
		    t->name, id, j->zone_name);
		job_free(j);
		return NULL;
	}
	after = j->handled_ms > 0 ? j->handled_ms : j->anchor_ms;
	if (cron_next(j->sched, j->zone, j->anchor_ms, after, &j->next_ms) != 1)
		j->next_ms = 0;
	return j;
}

/* Loads t's enabled jobs (job_id NULL: all of them, replacing the
 * list). Returns 0 or -EIO. */
static int
jobs_load(struct jnl_tenant *t, const char *job_id)
{
	struct jnl_cron_job *j;
	sqlite3_stmt *st;
	int rc;

	if (jnl_db_prepare(t->db,
		"SELECT " JOB_COLUMNS " FROM cron_jobs WHERE enabled = 1"
		" AND (?1 IS NULL OR job_id = ?1)",
		&st) < 0)
		return -EIO;
	if (job_id != NULL)
		sqlite3_bind_text(st, 1, job_id, -1, SQLITE_STATIC);
	else
		jobs_free(t->cron);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if ((j = job_from_row(t, st)) != NULL) {
			j->next = t->cron->jobs;
			t->cron->jobs = j;
		}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

void
jnl_cron_job_changed(
    struct jnl_ctx *ctx, struct jnl_tenant *t, const char *job_id)
{
	struct jnl_cron_job **p, *j;

	if (t->cron == NULL || t->db == NULL)
		return;
	for (p = &t->cron->jobs; *p != NULL; p = &(*p)->next)
		if (strcmp((*p)->id, job_id) == 0) {
			j = *p;
			*p = j->next;
			job_free(j);
			break;
		}
	if (jobs_load(t, job_id) < 0)
		log_error("%s: cron job %s: cannot load it", t->name, job_id);
	jnl_cron_arm(ctx);
}

/* Offers. */

static char *
column_text(sqlite3_stmt *st, int col)
{
	const char *s = (const char *)sqlite3_column_text(st, col);

	return (char *)(s != NULL ? s : "");
}

struct jnl_cron_sched *
jnl_cron_sched_get(struct jnl_ctx *ctx)
{
	struct jnl_cron_sched *s = ctx->cron;

	if (s != NULL)
		return s;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	if ((s->timer = evtimer_new(ctx->base, tick_cb, ctx)) == NULL) {
		free(s);
		return NULL;
	}
	ctx->cron = s;
	return s;
}

/* The timer. */

void
jnl_cron_arm(struct jnl_ctx *ctx)
{
	struct jnl_cron_sched *s = ctx->cron;
	struct jnl_cron_job *j;
	struct jnl_cron_offer *o;
	struct jnl_tenant *t;
	struct timeval tv;
	int64_t now = (int64_t)jnl_now_ms(), at = 0, d, floor;
	size_t i;

	if (s == NULL || ctx->stopping)
		return;
	for (i = 0; i < ctx->ntenants; i++) {
		t = ctx->tenants[i];
		if (t->cron == NULL)
			continue;
		/* Its due jobs wait for the tenant's zone, or for the
		 * storage that failed them: no busy loop meanwhile. */
		floor = (int64_t)t->cron->retry_ms;
		if (t->agents == NULL &&
		    (int64_t)t->cron->opened_ms + AGENTS_WAIT_MS > floor)
			floor = (int64_t)t->cron->opened_ms + AGENTS_WAIT_MS;
		for (j = t->cron->jobs; j != NULL; j = j->next) {
			if (j->next_ms <= 0)
				continue;
			d = j->next_ms > floor ? j->next_ms : floor;
			if (at == 0 || d < at)
				at = d;
		}
	}
	for (o = s->offers; o != NULL; o = o->next) {
		if (o->worker != NULL)
			continue;
		/* One that waits for a worker: ask again now and then. */
		d = o->send_at_ms > now ? o->send_at_ms
					: now + JNL_CRON_WANT_EVERY_MS;
		if (at == 0 || d < at)
			at = d;
	}
	evtimer_del(s->timer);
	if (at == 0)
		return;
	d = at > now ? at - now : 0;
	tv.tv_sec = (time_t)(d / 1000);
	tv.tv_usec = (suseconds_t)(d % 1000) * 1000;
	evtimer_add(s->timer, &tv);
}

/* Scheduling. */

/* Whether a new fire of job_id would overlap a live one: 1 with reason,
 * 0, or -EIO. */
static int
overlapping(
    struct jnl_tenant *t, const char *job_id, char *reason, size_t reasonlen)
{
	struct jnl_run *run = NULL;
	sqlite3_stmt *st;
	const char *state, *run_id;
	int rc, live = 0;

	if (jnl_db_prepare(t->db,
		"SELECT state, run_id FROM cron_fires WHERE job_id = ?1"
		" AND state IN ('pending', 'started')"
		" ORDER BY scheduled_ms DESC LIMIT 1",
		&st) < 0)
		return -EIO;
	sqlite3_bind_text(st, 1, job_id, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		state = column_text(st, 0);
		run_id = column_text(st, 1);
		if (strcmp(state, "pending") == 0) {
			snprintf(reason, reasonlen,
			    "overlap: the previous fire has not started yet");
			live = 1;
		} else if (jnl_run_get(t, run_id, &run) < 0)
			rc = SQLITE_IOERR;
		else if (run != NULL && !jnl_status_terminal(run->status)) {
			snprintf(reason, reasonlen,
			    "overlap: run %.64s still running", run_id);
			live = 1;
		}
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return -EIO;
	return live;
}

/* Inserts one fire in t's open batch: 1 inserted, 0 it exists (already
 * happened), -EIO. */
static int
fire_insert(struct jnl_tenant *t, const char *job_id, int64_t scheduled_ms,
    int64_t now, const char *state, const char *reason, int manual)
{
	sqlite3_stmt *st;
	int rc;

	if (jnl_db_prepare(t->db,
		"INSERT INTO cron_fires (job_id, scheduled_ms, fired_ms, state,"
		" reason, manual) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
		" ON CONFLICT DO NOTHING",
		&st) < 0)
		return -EIO;
	sqlite3_bind_text(st, 1, job_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, scheduled_ms);
	sqlite3_bind_int64(st, 3, now);
	sqlite3_bind_text(st, 4, state, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, reason, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 6, manual);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		log_error(
		    "%s: cron fire insert: %s", t->name, sqlite3_errstr(rc));
		return -EIO;
	}
	return sqlite3_changes(t->db) > 0;
}

static void
committed_deliver(struct jnl_ctx *ctx, struct jnl_ack *ack)
{
	struct committed *c = ack->arg;
	size_t i;

	if (ack->ok) {
		for (i = 0; i < c->n; i++)
			if (jnl_cron_offer_add(ctx, c->offer[i].tenant,
				c->offer[i].job_id, c->offer[i].scheduled_ms,
				c->offer[i].send_at_ms) < 0)
				log_error("%s: cron job %s: out of memory for "
					  "a fire; offered at the next start",
				    ack->tenant->name, c->offer[i].job_id);
		jnl_cron_dispatch(ctx);
	} else if (ack->tenant->cron != NULL && ack->tenant->db != NULL) {
		/* Nothing of it was stored: the jobs are as the database
		 * has them, and due again. */
		log_warn("%s: cron fires rolled back; scheduled again",
		    ack->tenant->name);
		ack->tenant->cron->retry_ms = jnl_now_ms() + JNL_CRON_RETRY_MS;
		(void)jobs_load(ack->tenant, NULL);
	}
	free(c->offer);
	free(c);
	ack->arg = NULL;
	jnl_cron_arm(ctx);
}

/* Queues the offers of c until t's batch commits; frees c on failure. */
static int
committed_push(struct jnl_ctx *ctx, struct jnl_tenant *t, struct committed *c)
{
	if (jnl_ack_defer(ctx, t, NULL, 0, committed_deliver, c) < 0) {
		free(c->offer);
		free(c);
		return -ENOMEM;
	}
	return 0;
}

/*
 * Records the due fires of job j of t in t's open batch and advances the
 * job. Returns 0 or -EIO / -ENOMEM (the caller rolls the batch back).
 */
static int
job_due(struct jnl_ctx *ctx, struct jnl_tenant *t, struct jnl_cron_job *j,
    int64_t now)
{
	struct jnl_cron_item items[JNL_CRON_PLAN_ROOM];
	struct committed *c;
	char reason[JNL_CRON_REASON_MAX];
	const char *state, *why;
	int64_t handled, next;
	size_t n, i;
	int overlap = 0, rc;
	sqlite3_stmt *st;

	n = jnl_cron_plan(j->sched, j->zone, j->anchor_ms, j->next_ms, now,
	    JNL_CRON_GRACE_MS, j->misfire, j->catch_up_max, items, &handled,
	    &next);
	if (handled == 0) {
		j->next_ms = next;
		return 0;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->offer = calloc(n + 1, sizeof(*c->offer))) == NULL) {
		free(c);
		return -ENOMEM;
	}
	reason[0] = '\0';
	if (!j->allow_overlap &&
	    (overlap = overlapping(t, j->id, reason, sizeof(reason))) < 0)
		goto fail;
	for (i = 0; i < n; i++) {
		why = "";
		state = "pending";
		if (items[i].skip) {
			state = "skipped";
			why = "missed: journald was down";
		} else if (overlap) {
			state = "skipped";
			why = reason;
		}
		if ((rc = fire_insert(t, j->id, items[i].scheduled_ms, now,
			 state, why, 0)) < 0)
			goto fail;
		if (rc == 0 || strcmp(state, "pending") != 0) {
			if (rc == 0)
				log_info("%s: cron job %s: fire of %lld "
					 "already recorded",
				    t->name, j->id,
				    (long long)items[i].scheduled_ms);
			continue;
		}
		c->offer[c->n].tenant = t;
		memcpy(c->offer[c->n].job_id, j->id, sizeof(j->id));
		c->offer[c->n].scheduled_ms = items[i].scheduled_ms;
		c->offer[c->n].send_at_ms =
		    items[i].scheduled_ms +
		    (j->jitter_ms > 0 ? (int64_t)randombytes_uniform(
					    (uint32_t)j->jitter_ms + 1)
				      : 0);
		c->n++;
	}
	/* The last handled time goes with the fires; an `at` job that
	 * fired is done. */
	if (jnl_db_prepare(t->db,
		"UPDATE cron_jobs SET last_fire_ms = ?2,"
		" enabled = CASE WHEN ?3 THEN 0 ELSE enabled END"
		" WHERE job_id = ?1",
		&st) < 0)
		goto fail;
	sqlite3_bind_text(st, 1, j->id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, handled);
	sqlite3_bind_int(st, 3, next == 0);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		goto fail;
	j->handled_ms = handled;
	j->next_ms = next;
	return committed_push(ctx, t, c);
fail:
	free(c->offer);
	free(c);
	return -EIO;
}

static void
tenant_tick(struct jnl_ctx *ctx, struct jnl_tenant *t, int64_t now)
{
	struct jnl_cron_job **p, *j;
	const char *zone = jnl_cron_tenant_zone(t);
	struct tz_zone *z;

	if ((t->agents == NULL &&
		now - (int64_t)t->cron->opened_ms < AGENTS_WAIT_MS) ||
	    now < (int64_t)t->cron->retry_ms)
		return;
	for (p = &t->cron->jobs; (j = *p) != NULL;) {
		/* The tenant's zone changed (a reload): from now on. */
		if (j->tenant_zone && strcmp(j->zone_name, zone) != 0 &&
		    tz_load(JNL_ZONEINFO_DIR, zone, &z) == 0) {
			tz_free(j->zone);
			j->zone = z;
			snprintf(
			    j->zone_name, sizeof(j->zone_name), "%s", zone);
			if (cron_next(j->sched, z, j->anchor_ms, now,
				&j->next_ms) != 1)
				j->next_ms = 0;
		}
		if (j->next_ms > 0 && j->next_ms <= now) {
			if (jnl_batch_begin(ctx, t) < 0 ||
			    job_due(ctx, t, j, now) < 0) {
				log_error("%s: cron job %s: cannot record "
					  "its fires",
				    t->name, j->id);
				t->cron->retry_ms =
				    (uint64_t)now + JNL_CRON_RETRY_MS;
				jnl_batch_fail(ctx, t);
				(void)jobs_load(t, NULL);
				return;
			}
		}
		if (j->next_ms == 0) {
			*p = j->next;
			job_free(j);
			continue;
		}
		p = &j->next;
	}
}

static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct jnl_ctx *ctx = arg;
	int64_t now = (int64_t)jnl_now_ms();
	size_t i;

	(void)fd;
	(void)what;
	if (ctx->stopping)
		return;
	for (i = 0; i < ctx->ntenants; i++)
		if (ctx->tenants[i]->cron != NULL &&
		    ctx->tenants[i]->db != NULL)
			tenant_tick(ctx, ctx->tenants[i], now);
	jnl_cron_dispatch(ctx);
	jnl_cron_arm(ctx);
}

/* Manual fires (RunJobNow, cron_api.c). */

int
jnl_cron_fire_now(struct jnl_ctx *ctx, struct jnl_tenant *t, const char *job_id,
    int64_t *scheduled_ms, const char **state, char *reason, size_t reasonlen)
{
	sqlite3_stmt *st;
	int64_t now = (int64_t)jnl_now_ms();
	int rc, allow_overlap, overlap = 0, i;

	if (jnl_db_prepare(t->db,
		"SELECT allow_overlap FROM cron_jobs WHERE job_id = ?1",
		&st) < 0)
		return -EIO;
	sqlite3_bind_text(st, 1, job_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	allow_overlap = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE)
		return -ENOENT;
	if (rc != SQLITE_ROW || jnl_batch_begin(ctx, t) < 0)
		return -EIO;
	reason[0] = '\0';
	if (!allow_overlap &&
	    (overlap = overlapping(t, job_id, reason, reasonlen)) < 0)
		return -EIO;
	*state = overlap ? "skipped" : "pending";
	/* Now, or the next free millisecond: a scheduled fire of the same
	 * instant keeps its own row. */
	for (i = 0; i < 16; i++) {
		*scheduled_ms = now + i;
		if ((rc = fire_insert(t, job_id, *scheduled_ms, now, *state,
			 reason, 1)) != 0)
			return rc < 0 ? -EIO : 0;
	}
	return -EIO;
}

/* Tenants and workers. */

void
jnl_cron_tenant_open(struct jnl_ctx *ctx, struct jnl_tenant *t)
{
	sqlite3_stmt *st;
	int rc;

	if (t->db == NULL || t->cron != NULL ||
	    jnl_cron_sched_get(ctx) == NULL ||
	    (t->cron = calloc(1, sizeof(*t->cron))) == NULL) {
		log_error("%s: cron unavailable: out of memory", t->name);
		return;
	}
	t->cron->opened_ms = jnl_now_ms();
	/* A fire whose run never reached the journal (its batch was lost
	 * with the process) has nothing to follow. */
	if (jnl_batch_begin(ctx, t) == 0 &&
	    jnl_db_prepare(t->db,
		"UPDATE cron_fires SET state = 'failed',"
		" reason = 'its run was not journaled' WHERE state = 'started'"
		" AND run_id NOT IN (SELECT run_id FROM runs)",
		&st) == 0) {
		if (sqlite3_step(st) != SQLITE_DONE)
			log_warn("%s: cron fires not checked", t->name);
		sqlite3_finalize(st);
	}
	if (jobs_load(t, NULL) < 0)
		log_error("%s: cron jobs cannot be loaded", t->name);
	/* Fires recorded but never answered: offered again. */
	if (jnl_db_prepare(t->db,
		"SELECT job_id, scheduled_ms FROM cron_fires"
		" WHERE state = 'pending' ORDER BY scheduled_ms",
		&st) == 0) {
		while ((rc = sqlite3_step(st)) == SQLITE_ROW)
			if (jnl_cron_offer_add(ctx, t, column_text(st, 0),
				sqlite3_column_int64(st, 1),
				(int64_t)jnl_now_ms()) < 0)
				break;
		sqlite3_finalize(st);
	}
	jnl_cron_arm(ctx);
}

int
jnl_cron_run_ended(struct jnl_tenant *t, const char *run_id, int status)
{
	sqlite3_stmt *st;
	char reason[64];
	int rc, done = status == PALYRA__V1__RUN_STATUS__RUN_STATUS_COMPLETED;

	snprintf(reason, sizeof(reason), "its run ended %s",
	    jnl_status_name(status));
	if (jnl_db_prepare(t->db,
		"UPDATE cron_fires SET state = ?2, reason = ?3"
		" WHERE run_id = ?1 AND state IN ('pending', 'started')",
		&st) < 0)
		return -EIO;
	sqlite3_bind_text(st, 1, run_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, done ? "done" : "failed", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, done ? "" : reason, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

void
jnl_cron_free(struct jnl_ctx *ctx)
{
	struct jnl_cron_offer *o;
	size_t i;

	for (i = 0; i < ctx->ntenants; i++)
		if (ctx->tenants[i]->cron != NULL) {
			jobs_free(ctx->tenants[i]->cron);
			free(ctx->tenants[i]->cron);
			ctx->tenants[i]->cron = NULL;
		}
	if (ctx->cron == NULL)
		return;
	while ((o = ctx->cron->offers) != NULL) {
		ctx->cron->offers = o->next;
		free(o);
	}
	event_free(ctx->cron->timer);
	free(ctx->cron);
	ctx->cron = NULL;
}
