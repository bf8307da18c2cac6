/*
 * cron_int.h: the cron scheduler inside palyra-journald (DESIGN section 9,
 * issue 8), shared by its files:
 *
 *   cron_plan.c  pure: which scheduled times of a due job fire, which are
 *                recorded skipped (misfire policy), and the next one
 *                (tests/unit/test_cron_plan.c)
 *   cron.c       the scheduler: jobs in memory, the one timer, fires
 *                recorded and committed before a worker is asked to run
 *                them (IPC_CRON_FIRE), the answers (IPC_CRON_FIRED), the
 *                fires of a worker that died, the fires' outcome when
 *                their run ends
 *   cron_offer.c pending fires handed to the tenant's workers, their
 *                answers, the fires of a worker that died
 *   cron_api.c   CronService (CreateJob .. ListJobRuns)
 *   cron_rows.c  its job rows: read, checked, stored
 *
 * The cron_jobs and cron_fires tables are migration 8 of journald/db.c.
 */
#ifndef PALYRA_JOURNALD_CRON_INT_H
#define PALYRA_JOURNALD_CRON_INT_H

#include <stddef.h>
#include <stdint.h>

#include "cron.h"
#include "journald.h"
#include "palyra/v1/gateway.pb-c.h"
#include "tz.h"

#define JNL_CRON_ID_LEN 32 /* job ids: 16 random bytes in lower hex */

/* The values of palyra.v1.MisfirePolicy (UNSPECIFIED is SKIP). */
enum jnl_cron_misfire {
	JNL_MISFIRE_SKIP = 1,
	JNL_MISFIRE_CATCH_UP = 2,
	JNL_MISFIRE_ONCE = 3,
};

/* cron_plan.c: one scheduled time of a due job. */
struct jnl_cron_item {
	int64_t scheduled_ms;
	int skip; /* recorded skipped (missed), not fired */
};

/*
 * The plan of a job whose next scheduled time next_ms may be due at
 * now_ms. Every scheduled time t <= now_ms from next_ms on is due; one
 * with t >= now_ms - grace_ms is late, not missed, and fires; the missed
 * ones (journald was down, or the loop stalled) follow policy: SKIP
 * records one skipped item for the latest, ONCE fires the latest,
 * CATCH_UP fires the latest catch_up_max of them, oldest first (the older
 * ones are not recorded). Items come oldest first in out (room for
 * catch_up_max + JNL_CRON_LATE_MAX + 1). *handled is the latest due time
 * (0: none was due), *next the first time after now_ms (0: none).
 * The scan of due times is bounded (JNL_CRON_SCAN_MAX steps, then a jump
 * to JNL_CRON_JUMP_MS before now). Returns the number of items.
 */
size_t jnl_cron_plan(const struct cron_sched *, const struct tz_zone *,
    int64_t anchor_ms, int64_t next_ms, int64_t now_ms, int64_t grace_ms,
    enum jnl_cron_misfire policy, unsigned catch_up_max,
    struct jnl_cron_item *out, int64_t *handled, int64_t *next);
/* The room jnl_cron_plan() needs in out. */
#define JNL_CRON_PLAN_ROOM (JNL_CRON_CATCH_UP_MAX + JNL_CRON_LATE_MAX + 1)

/* A job as the scheduler keeps it (cron.c). */
struct jnl_cron_job {
	struct jnl_cron_job *next;
	char id[JNL_CRON_ID_LEN + 1];
	char zone_name[TZ_NAME_MAX + 1]; /* as loaded: "" for UTC */
	int tenant_zone;		 /* timezone "": the tenant's */
	struct cron_sched *sched;
	struct tz_zone *zone;
	int64_t anchor_ms;  /* every: counted from its creation */
	int64_t handled_ms; /* cron_jobs.last_fire_ms */
	int64_t next_ms;    /* 0: none */
	enum jnl_cron_misfire misfire;
	unsigned catch_up_max;
	int allow_overlap;
	uint64_t jitter_ms;
};

/* A tenant's jobs (jnl_tenant.cron). */
struct jnl_cron {
	struct jnl_cron_job *jobs; /* enabled ones with a next time */
	int loaded;
	uint64_t opened_ms;
	uint64_t wanted_ms; /* last IPC_WORKER_WANTED for its fires */
	uint64_t retry_ms;  /* storage failed: no tick before */
};

/* cron.c, for cron_api.c. */
/* The tenant's zone name for jobs with timezone "" ("" : UTC). */
const char *jnl_cron_tenant_zone(const struct jnl_tenant *);
/* The job's next time after now (0: none), as the scheduler will use it;
 * -EINVAL: schedule or zone unusable (err says why). */
int jnl_cron_next_of(const char *schedule, const char *zone_name,
    int64_t anchor_ms, int64_t after_ms, int64_t *next_ms, char *err,
    size_t errlen);
/* A job was created, changed or deleted: reloads it from t's database
 * (which sees the open batch) and rearms the timer. */
void jnl_cron_job_changed(
    struct jnl_ctx *, struct jnl_tenant *, const char *job_id);
/*
 * A manual fire of job_id now (RunJobNow), in t's open batch: recorded
 * like a scheduled one (overlap applies); *scheduled_ms and the state
 * ("pending" or "skipped") and reason are filled. The offer is made once
 * the batch commits (the caller's deliver calls jnl_cron_offer_commit).
 * Returns 0, -ENOENT (no such job), -EIO.
 */
int jnl_cron_fire_now(struct jnl_ctx *, struct jnl_tenant *, const char *job_id,
    int64_t *scheduled_ms, const char **state, char *reason, size_t reasonlen);
/* After the commit of a manual fire: offers it to a worker. */
void jnl_cron_offer_commit(struct jnl_ctx *, struct jnl_tenant *,
    const char *job_id, int64_t scheduled_ms);

/* cron.c and cron_offer.c: the scheduler's state (jnl_ctx.cron). */
/* A pending fire to hand to a worker. */
struct jnl_cron_offer {
	struct jnl_cron_offer *next;
	struct jnl_tenant *tenant;
	char job_id[JNL_CRON_ID_LEN + 1];
	int64_t scheduled_ms;
	int64_t send_at_ms;
	struct jnl_worker *worker; /* asked, no answer yet; NULL: waits */
	uint32_t request_id;
	unsigned attempts;
};

struct jnl_cron_sched {
	struct event *timer;
	struct jnl_cron_offer *offers;
	uint32_t request_counter;
};

/* The scheduler's state, made on first use; NULL without memory. */
struct jnl_cron_sched *jnl_cron_sched_get(struct jnl_ctx *);
/* Sets the one timer to the earliest due job or waiting fire. */
void jnl_cron_arm(struct jnl_ctx *);
/* Queues a committed pending fire, offered from send_at_ms. 0 or
 * -ENOMEM. */
int jnl_cron_offer_add(struct jnl_ctx *, struct jnl_tenant *,
    const char *job_id, int64_t scheduled_ms, int64_t send_at_ms);
/* Hands every due waiting fire to a worker, or asks for one. */
void jnl_cron_dispatch(struct jnl_ctx *);

/* cron_rows.c: job rows for CronService (cron_api.c). */
/* A job row, its strings owned. */
struct jnl_cron_row {
	char id[JNL_CRON_ID_LEN + 1];
	char *name, *schedule, *timezone, *principal, *role, *agent, *input;
	char *session_key;
	int misfire; /* palyra.v1.MisfirePolicy, not UNSPECIFIED */
	unsigned catch_up_max;
	int allow_overlap, enabled, unattended;
	uint64_t jitter_ms;
	int64_t created_ms, updated_ms, handled_ms, last_fired_ms;
};

#define JNL_CRON_ROW_SELECT                                                    \
	"SELECT job_id, name, schedule, timezone, principal, role, agent,"     \
	" input, misfire, catch_up_max, allow_overlap, jitter_ms, enabled,"    \
	" unattended, session_key, created_ms, updated_ms, last_fire_ms,"      \
	" (SELECT max(scheduled_ms) FROM cron_fires f"                         \
	" WHERE f.job_id = cron_jobs.job_id) FROM cron_jobs"

/* The fields UpdateJob replaces (cron_api.c names them). */
enum {
	JNL_CRON_F_SCHEDULE = 1 << 0,
	JNL_CRON_F_TIMEZONE = 1 << 1,
	JNL_CRON_F_AGENT = 1 << 2,
	JNL_CRON_F_INPUT = 1 << 3,
	JNL_CRON_F_MISFIRE = 1 << 4,
	JNL_CRON_F_CATCH_UP_MAX = 1 << 5,
	JNL_CRON_F_ALLOW_OVERLAP = 1 << 6,
	JNL_CRON_F_JITTER_MS = 1 << 7,
	JNL_CRON_F_ENABLED = 1 << 8,
	JNL_CRON_F_UNATTENDED = 1 << 9,
	JNL_CRON_F_SESSION_KEY = 1 << 10,
	JNL_CRON_F_ALL = (1 << 11) - 1,
};

void jnl_cron_row_clear(struct jnl_cron_row *);
/* A column's text, copied ("" for NULL); NULL without memory. */
char *jnl_cron_column_dup(sqlite3_stmt *, int col);
/* A row of JNL_CRON_ROW_SELECT. 0 or -ENOMEM. */
int jnl_cron_row_read(sqlite3_stmt *, struct jnl_cron_row *);
/* The job key names (its id or name) that call may see: 1 with *out, 0
 * (none, or another principal's for a user token), -ENOMEM or -EIO. */
int jnl_cron_row_find(struct jnl_tenant *, const Palyra__Ipc__ServiceCall *,
    const char *key, struct jnl_cron_row *out);
/* The message of a row (pointing into it), with its next fire. */
void jnl_cron_row_to_pb(
    struct jnl_tenant *, struct jnl_cron_row *, Palyra__V1__CronJob *);
/* A row as it would be stored: 0, or a gRPC status with err set. */
uint32_t jnl_cron_row_check(struct jnl_tenant *, const struct jnl_cron_row *,
    int64_t now, char *err, size_t errlen);
/* Copies the fields of in that mask names. 0 or -ENOMEM. */
int jnl_cron_row_apply(
    struct jnl_cron_row *, const Palyra__V1__CronJob *in, unsigned mask);
/* Inserts the row, or replaces its fields. 0, or a SQLite result code. */
int jnl_cron_row_store(
    struct jnl_tenant *, const struct jnl_cron_row *, int insert);

#endif
