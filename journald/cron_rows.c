/*
 * cron_rows.c: cron job rows for CronService (cron_api.c): reading a job
 * as a token may see it, its message with the scheduler's next fire,
 * the checks of a job as it would be stored (schedule errors with their
 * column, time zones, agents, bounds), the fields an update replaces, and
 * the write.
 *
 * Runs in palyra-journald. Reads and writes the cron_jobs table of a
 * tenant's journal.db (writes inside its open batch); reads the tenant's
 * agents and, through tz.h, zone files under the sandbox's tzdata.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cron_int.h"
#include "grpc_status.h"
#include "log.h"
#include "usage.h"

#define E_STORAGE "journal storage failed"
#define MISFIRE(x) PALYRA__V1__MISFIRE_POLICY__MISFIRE_POLICY_##x
#define UNATTENDED(x) PALYRA__V1__UNATTENDED_POLICY__UNATTENDED_POLICY_##x

static const char *const misfire_names[] = {
    [MISFIRE(SKIP)] = "skip",
    [MISFIRE(CATCH_UP)] = "catch_up",
    [MISFIRE(ONCE)] = "once",
};

void
jnl_cron_row_clear(struct jnl_cron_row *j)
{
	free(j->name);
	free(j->schedule);
	free(j->timezone);
	free(j->principal);
	free(j->role);
	free(j->agent);
	free(j->input);
	free(j->session_key);
	memset(j, 0, sizeof(*j));
}

char *
jnl_cron_column_dup(sqlite3_stmt *st, int col)
{
	const char *s = (const char *)sqlite3_column_text(st, col);

	return strdup(s != NULL ? s : "");
}

/* A row of JNL_CRON_ROW_SELECT. 0 or -ENOMEM. */
int
jnl_cron_row_read(sqlite3_stmt *st, struct jnl_cron_row *j)
{
	const char *id = (const char *)sqlite3_column_text(st, 0);
	const char *misfire = (const char *)sqlite3_column_text(st, 8);
	const char *unattended = (const char *)sqlite3_column_text(st, 13);

	memset(j, 0, sizeof(*j));
	snprintf(j->id, sizeof(j->id), "%s", id != NULL ? id : "");
	j->name = jnl_cron_column_dup(st, 1);
	j->schedule = jnl_cron_column_dup(st, 2);
	j->timezone = jnl_cron_column_dup(st, 3);
	j->principal = jnl_cron_column_dup(st, 4);
	j->role = jnl_cron_column_dup(st, 5);
	j->agent = jnl_cron_column_dup(st, 6);
	j->input = jnl_cron_column_dup(st, 7);
	j->session_key = jnl_cron_column_dup(st, 14);
	j->misfire = MISFIRE(SKIP);
	if (misfire != NULL && strcmp(misfire, "catch_up") == 0)
		j->misfire = MISFIRE(CATCH_UP);
	else if (misfire != NULL && strcmp(misfire, "once") == 0)
		j->misfire = MISFIRE(ONCE);
	j->catch_up_max = (unsigned)sqlite3_column_int(st, 9);
	j->allow_overlap = sqlite3_column_int(st, 10);
	j->jitter_ms = (uint64_t)sqlite3_column_int64(st, 11);
	j->enabled = sqlite3_column_int(st, 12);
	j->unattended = unattended != NULL && strcmp(unattended, "wait") == 0
			    ? UNATTENDED(WAIT)
			    : UNATTENDED(DENY);
	j->created_ms = sqlite3_column_int64(st, 15);
	j->updated_ms = sqlite3_column_int64(st, 16);
	j->handled_ms = sqlite3_column_int64(st, 17);
	j->last_fired_ms = sqlite3_column_int64(st, 18);
	if (j->name == NULL || j->schedule == NULL || j->timezone == NULL ||
	    j->principal == NULL || j->role == NULL || j->agent == NULL ||
	    j->input == NULL || j->session_key == NULL) {
		jnl_cron_row_clear(j);
		return -ENOMEM;
	}
	return 0;
}

/*
 * The job named by key (its id or its name) that call may see. Returns 1
 * with *j, 0 (none, or another principal's for a user token), -ENOMEM or
 * -EIO.
 */
int
jnl_cron_row_find(struct jnl_tenant *t, const Palyra__Ipc__ServiceCall *call,
    const char *key, struct jnl_cron_row *j)
{
	sqlite3_stmt *st;
	int rc;

	if (key[0] == '\0' || strlen(key) > NAME_MAX_LEN)
		return 0;
	if (jnl_db_prepare(t->db,
		JNL_CRON_ROW_SELECT " WHERE (job_id = ?1 OR name = ?1)"
				    " AND (?2 IS NULL OR principal = ?2)"
				    " ORDER BY job_id = ?1 DESC LIMIT 1",
		&st) < 0)
		return -EIO;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	if (!jnl_service_privileged(call))
		sqlite3_bind_text(st, 2, call->principal, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		rc = jnl_cron_row_read(st, j) < 0 ? -ENOMEM : 1;
	else
		rc = rc == SQLITE_DONE ? 0 : -EIO;
	sqlite3_finalize(st);
	return rc;
}

/* The job's next fire as the scheduler has it (0: none). */
static int64_t
job_next(struct jnl_tenant *t, const struct jnl_cron_row *j)
{
	struct jnl_cron_job *cj;
	const char *zone;
	char err[128];
	int64_t next = 0;

	if (!j->enabled)
		return 0;
	for (cj = t->cron != NULL ? t->cron->jobs : NULL; cj != NULL;
	     cj = cj->next)
		if (strcmp(cj->id, j->id) == 0)
			return cj->next_ms;
	zone = j->timezone[0] != '\0' ? j->timezone : jnl_cron_tenant_zone(t);
	(void)jnl_cron_next_of(j->schedule, zone, j->created_ms,
	    j->handled_ms > 0 ? j->handled_ms : j->created_ms, &next, err,
	    sizeof(err));
	return next;
}

/* pb views j (no copies): valid while j is. */
void
jnl_cron_row_to_pb(
    struct jnl_tenant *t, struct jnl_cron_row *j, Palyra__V1__CronJob *pb)
{
	palyra__v1__cron_job__init(pb);
	pb->job_id = j->id;
	pb->name = j->name;
	pb->schedule = j->schedule;
	pb->timezone = j->timezone;
	pb->agent = j->agent;
	pb->input = j->input;
	pb->principal = j->principal;
	pb->misfire = (Palyra__V1__MisfirePolicy)j->misfire;
	pb->catch_up_max = j->catch_up_max;
	pb->allow_overlap = j->allow_overlap;
	pb->jitter_ms = j->jitter_ms;
	pb->enabled = j->enabled;
	pb->unattended = (Palyra__V1__UnattendedPolicy)j->unattended;
	pb->session_key = j->session_key;
	pb->created_unix_ms = j->created_ms;
	pb->updated_unix_ms = j->updated_ms;
	pb->next_fire_unix_ms = job_next(t, j);
	pb->last_fire_unix_ms = j->last_fired_ms;
}

/* Validation. */

/* Whether t has agent name (a configured or a runtime one). 1, 0, -EIO. */
static int
agent_known(struct jnl_tenant *t, const char *name)
{
	Palyra__Ipc__AgentConfig *rt = NULL;
	size_t i;
	int rc;

	if (t->agents != NULL)
		for (i = 0; i < t->agents->n_agents; i++)
			if (strcmp(t->agents->agents[i]->name, name) == 0)
				return 1;
	if ((rc = jnl_agent_runtime_config(t, name, &rt)) < 0)
		return -EIO;
	if (rt != NULL)
		palyra__ipc__agent_config__free_unpacked(rt, NULL);
	return rc == 1;
}

/*
 * Checks a job as it would be stored. Returns 0, or a gRPC status with
 * err set.
 */
uint32_t
jnl_cron_row_check(struct jnl_tenant *t, const struct jnl_cron_row *j,
    int64_t now, char *err, size_t errlen)
{
	char why[160];
	const char *zone;
	int64_t next;
	int rc;

	if (!jnl_name_valid(j->name)) {
		snprintf(err, errlen,
		    "name: 1 to %d characters of "
		    "[A-Za-z0-9._-], not starting with '.' "
		    "or '-'",
		    NAME_MAX_LEN);
		return GRPC_STATUS_INVALID_ARGUMENT;
	}
	if (j->schedule[0] == '\0' || strlen(j->schedule) > CRON_SPEC_MAX) {
		snprintf(err, errlen, "schedule: 1 to %d bytes", CRON_SPEC_MAX);
		return GRPC_STATUS_INVALID_ARGUMENT;
	}
	if (j->timezone[0] != '\0' && !tz_name_valid(j->timezone)) {
		snprintf(err, errlen, "timezone: not a time zone name");
		return GRPC_STATUS_INVALID_ARGUMENT;
	}
	if (j->input[0] == '\0' || strlen(j->input) > TEXT_MAX_LEN) {
		snprintf(err, errlen, "input: 1 to %d bytes", TEXT_MAX_LEN);
		return GRPC_STATUS_INVALID_ARGUMENT;
	}
	if (strlen(j->session_key) > WRK_SESSION_KEY_MAX_LEN) {
		snprintf(err, errlen, "session_key: at most %d bytes",
		    WRK_SESSION_KEY_MAX_LEN);
		return GRPC_STATUS_INVALID_ARGUMENT;
	}
	if (j->catch_up_max < 1 || j->catch_up_max > JNL_CRON_CATCH_UP_MAX) {
		snprintf(err, errlen, "catch_up_max: 1 to %d (0: %d)",
		    JNL_CRON_CATCH_UP_MAX, JNL_CRON_CATCH_UP_DEFAULT);
		return GRPC_STATUS_INVALID_ARGUMENT;
	}
	if (j->jitter_ms > JNL_CRON_JITTER_MAX_MS) {
		snprintf(err, errlen, "jitter_ms: at most 1 h (%d)",
		    JNL_CRON_JITTER_MAX_MS);
		return GRPC_STATUS_INVALID_ARGUMENT;
	}
	if (j->misfire < MISFIRE(SKIP) || j->misfire > MISFIRE(ONCE) ||
	    j->unattended < UNATTENDED(DENY) ||
	    j->unattended > UNATTENDED(WAIT)) {
		snprintf(err, errlen, "misfire or unattended: unknown value");
		return GRPC_STATUS_INVALID_ARGUMENT;
	}
	zone = j->timezone[0] != '\0' ? j->timezone : jnl_cron_tenant_zone(t);
	why[0] = '\0';
	if ((rc = jnl_cron_next_of(j->schedule, zone, j->created_ms, now, &next,
		 why, sizeof(why))) < 0) {
		if (rc == -ENOMEM) {
			snprintf(err, errlen, "out of memory");
			return GRPC_STATUS_RESOURCE_EXHAUSTED;
		}
		snprintf(err, errlen, "%s%s",
		    strncmp(why, "unknown time zone", 17) == 0 ? "timezone: "
							       : "schedule: ",
		    why);
		return GRPC_STATUS_INVALID_ARGUMENT;
	}
	if (next == 0 && j->enabled) {
		snprintf(err, errlen, "schedule: it never fires again%s",
		    strncmp(j->schedule, "at", 2) == 0
			? " (the time has passed)"
			: "");
		return GRPC_STATUS_INVALID_ARGUMENT;
	}
	if (j->agent[0] != '\0' && !jnl_name_valid(j->agent)) {
		snprintf(err, errlen, "agent: not an agent name");
		return GRPC_STATUS_INVALID_ARGUMENT;
	}
	if (j->agent[0] != '\0') {
		if ((rc = agent_known(t, j->agent)) < 0) {
			snprintf(err, errlen, E_STORAGE);
			return GRPC_STATUS_UNAVAILABLE;
		}
		if (rc == 0) {
			snprintf(
			    err, errlen, "unknown agent \"%.64s\"", j->agent);
			return GRPC_STATUS_FAILED_PRECONDITION;
		}
	}
	return 0;
}

static int
replace(char **dst, const char *src)
{
	char *s;

	if ((s = strdup(src != NULL ? src : "")) == NULL)
		return -ENOMEM;
	free(*dst);
	*dst = s;
	return 0;
}

int
jnl_cron_row_apply(
    struct jnl_cron_row *j, const Palyra__V1__CronJob *in, unsigned mask)
{
	if (((mask & JNL_CRON_F_SCHEDULE) &&
		replace(&j->schedule, in->schedule) < 0) ||
	    ((mask & JNL_CRON_F_TIMEZONE) &&
		replace(&j->timezone, in->timezone) < 0) ||
	    ((mask & JNL_CRON_F_AGENT) && replace(&j->agent, in->agent) < 0) ||
	    ((mask & JNL_CRON_F_INPUT) && replace(&j->input, in->input) < 0) ||
	    ((mask & JNL_CRON_F_SESSION_KEY) &&
		replace(&j->session_key, in->session_key) < 0))
		return -ENOMEM;
	if (mask & JNL_CRON_F_MISFIRE)
		j->misfire = in->misfire == MISFIRE(UNSPECIFIED)
				 ? MISFIRE(SKIP)
				 : (int)in->misfire;
	if (mask & JNL_CRON_F_CATCH_UP_MAX)
		j->catch_up_max = in->catch_up_max == 0
				      ? JNL_CRON_CATCH_UP_DEFAULT
				      : in->catch_up_max;
	if (mask & JNL_CRON_F_ALLOW_OVERLAP)
		j->allow_overlap = in->allow_overlap != 0;
	if (mask & JNL_CRON_F_JITTER_MS)
		j->jitter_ms = in->jitter_ms;
	if (mask & JNL_CRON_F_ENABLED)
		j->enabled = in->enabled != 0;
	if (mask & JNL_CRON_F_UNATTENDED)
		j->unattended = in->unattended == UNATTENDED(UNSPECIFIED)
				    ? UNATTENDED(DENY)
				    : (int)in->unattended;
	return 0;
}

/* Writes j (insert or the whole row). 0, or a SQLite result code. */
int
jnl_cron_row_store(
    struct jnl_tenant *t, const struct jnl_cron_row *j, int insert)
{
	sqlite3_stmt *st;
	int rc;

	if (jnl_db_prepare(t->db,
		insert ? "INSERT INTO cron_jobs (job_id, name, schedule,"
			 " timezone, principal, role, agent, input, misfire,"
			 " catch_up_max, allow_overlap, jitter_ms, enabled,"
			 " unattended, session_key, created_ms, updated_ms,"
			 " last_fire_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7,"
			 " ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)"
		       : "UPDATE cron_jobs SET schedule = ?3, timezone = ?4,"
			 " agent = ?7, input = ?8, misfire = ?9,"
			 " catch_up_max = ?10, allow_overlap = ?11,"
			 " jitter_ms = ?12, enabled = ?13, unattended = ?14,"
			 " session_key = ?15, updated_ms = ?17,"
			 " last_fire_ms = ?18 WHERE job_id = ?1",
		&st) < 0)
		return SQLITE_ERROR;
	sqlite3_bind_text(st, 1, j->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, j->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, j->schedule, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, j->timezone, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, j->principal, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, j->role, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, j->agent, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 8, j->input, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 9, misfire_names[j->misfire], -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 10, (int)j->catch_up_max);
	sqlite3_bind_int(st, 11, j->allow_overlap);
	sqlite3_bind_int64(st, 12, (int64_t)j->jitter_ms);
	sqlite3_bind_int(st, 13, j->enabled);
	sqlite3_bind_text(st, 14,
	    j->unattended == UNATTENDED(WAIT) ? "wait" : "deny", -1,
	    SQLITE_STATIC);
	sqlite3_bind_text(st, 15, j->session_key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 16, j->created_ms);
	sqlite3_bind_int64(st, 17, j->updated_ms);
	sqlite3_bind_int64(st, 18, j->handled_ms);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : rc;
}
