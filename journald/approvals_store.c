/*
 * approvals_store.c: approval rows and the decision (issue 7): reading an
 * approval, the compare-and-set of a decision and the grant it makes, and
 * closing the pending approvals of a run that ended.
 *
 * Runs in palyra-journald. Touches the approvals and approval_grants
 * tables of one tenant's journal.db, writes inside its open batch (the
 * callers answer once it committed). Used by approvals.c (the workers),
 * approvals_api.c (the front) and recover.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "approvals.h"
#include "grpc_status.h"
#include "log.h"

#define E_UNAVAILABLE "journal unavailable"

#define STATE(x) PALYRA__V1__APPROVAL_STATE__APPROVAL_STATE_##x
#define SCOPE(x) PALYRA__V1__APPROVAL_SCOPE__APPROVAL_SCOPE_##x
#define KIND(x) PALYRA__V1__APPROVAL_DECISION_KIND__APPROVAL_DECISION_##x

/* Names. */

static const char *const state_texts[] = {
    [STATE(PENDING)] = "pending",
    [STATE(ALLOWED)] = "approved",
    [STATE(DENIED)] = "denied",
    [STATE(EXPIRED)] = "expired",
};

static const char *const scope_texts[] = {
    [SCOPE(ONCE)] = "once",
    [SCOPE(SESSION)] = "session",
    [SCOPE(TTL)] = "ttl",
};

const char *
jnl_appr_state_text(int state)
{
	return state > 0 && state <= STATE(EXPIRED) ? state_texts[state] : NULL;
}

const char *
jnl_appr_scope_text(int scope)
{
	return scope > 0 && scope <= SCOPE(TTL) ? scope_texts[scope] : NULL;
}

static int
text_index(const char *const *texts, int max, const char *s)
{
	int i;

	if (s == NULL)
		return 0;
	for (i = 1; i <= max; i++)
		if (strcmp(texts[i], s) == 0)
			return i;
	return 0;
}

int
jnl_appr_scope_parse(const char *s)
{
	return text_index(scope_texts, SCOPE(TTL), s);
}

/* Rows. */

static char *
column_dup(sqlite3_stmt *st, int col)
{
	const char *s = (const char *)sqlite3_column_text(st, col);

	return strdup(s != NULL ? s : "");
}

Palyra__V1__Approval *
jnl_appr_from_row(sqlite3_stmt *st)
{
	Palyra__V1__Approval *a;

	if ((a = calloc(1, sizeof(*a))) == NULL)
		return NULL;
	palyra__v1__approval__init(a);
	a->approval_id = column_dup(st, 0);
	a->run_id = column_dup(st, 1);
	a->session_id = column_dup(st, 2);
	a->principal = column_dup(st, 3);
	a->agent = column_dup(st, 4);
	a->tool_call_id = column_dup(st, 5);
	a->tool_name = column_dup(st, 6);
	a->arguments_summary = column_dup(st, 7);
	a->state = (Palyra__V1__ApprovalState)text_index(state_texts,
	    STATE(EXPIRED), (const char *)sqlite3_column_text(st, 8));
	a->scope = (Palyra__V1__ApprovalScope)text_index(
	    scope_texts, SCOPE(TTL), (const char *)sqlite3_column_text(st, 9));
	a->decided_by = column_dup(st, 10);
	a->reason = column_dup(st, 11);
	a->created_unix_ms = sqlite3_column_int64(st, 12);
	a->expires_unix_ms = sqlite3_column_int64(st, 13);
	a->decided_unix_ms = sqlite3_column_int64(st, 14);
	a->grant_id = column_dup(st, 15);
	if (a->approval_id == NULL || a->run_id == NULL ||
	    a->session_id == NULL || a->principal == NULL || a->agent == NULL ||
	    a->tool_call_id == NULL || a->tool_name == NULL ||
	    a->arguments_summary == NULL || a->decided_by == NULL ||
	    a->reason == NULL || a->grant_id == NULL) {
		jnl_appr_free(a);
		return NULL;
	}
	return a;
}

void
jnl_appr_free(Palyra__V1__Approval *a)
{
	if (a == NULL)
		return;
	free(a->approval_id);
	free(a->run_id);
	free(a->session_id);
	free(a->principal);
	free(a->agent);
	free(a->tool_call_id);
	free(a->tool_name);
	free(a->arguments_summary);
	free(a->decided_by);
	free(a->reason);
	free(a->grant_id);
	free(a);
}

/* One approval by a query with one text parameter. */
static int
appr_query(struct jnl_tenant *t, const char *sql, const char *param,
    Palyra__V1__Approval **out)
{
	sqlite3_stmt *st;
	int rc, r = 0;

	*out = NULL;
	if (t->db == NULL || jnl_db_prepare(t->db, sql, &st) < 0)
		return -EIO;
	sqlite3_bind_text(st, 1, param, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if ((*out = jnl_appr_from_row(st)) == NULL)
			r = -ENOMEM;
	} else if (rc != SQLITE_DONE) {
		log_warn("%s: approval read: %s", t->name, sqlite3_errstr(rc));
		r = -EIO;
	}
	sqlite3_finalize(st);
	return r;
}

int
jnl_appr_get(struct jnl_tenant *t, const char *id, Palyra__V1__Approval **out)
{
	return appr_query(
	    t, "SELECT " APPR_COLUMNS " FROM approvals WHERE id = ?1", id, out);
}

int
jnl_appr_latest(
    struct jnl_tenant *t, const char *run_id, Palyra__V1__Approval **out)
{
	return appr_query(t,
	    "SELECT " APPR_COLUMNS " FROM approvals WHERE run_id = ?1"
	    " ORDER BY created_ms DESC, id DESC LIMIT 1",
	    run_id, out);
}

/* text with the tenant's secret values replaced (malloc'd), or NULL. */
char *
jnl_appr_redacted(struct jnl_ctx *ctx, const char *text)
{
	Palyra__V1__RunEvent ev = PALYRA__V1__RUN_EVENT__INIT;
	Palyra__V1__Note note = PALYRA__V1__NOTE__INIT;

	if ((note.text = strdup(text)) == NULL)
		return NULL;
	note.principal = (char *)"";
	ev.event_case = PALYRA__V1__RUN_EVENT__EVENT_NOTE;
	ev.note = &note;
	if (jnl_redact_event(ctx, &ev) < 0)
		return NULL; /* the partly replaced copy was freed */
	return note.text;
}

/* Deciding. */

static int
random_id(char out[APPR_ID_LEN + 1])
{
	static const char digits[] = "0123456789abcdef";
	uint8_t raw[APPR_ID_LEN / 2];
	size_t i;

	randombytes_buf(raw, sizeof(raw));
	for (i = 0; i < sizeof(raw); i++) {
		out[2 * i] = digits[raw[i] >> 4];
		out[2 * i + 1] = digits[raw[i] & 15];
	}
	out[APPR_ID_LEN] = '\0';
	return 0;
}

static int
grant_insert(struct jnl_tenant *t, const Palyra__V1__Approval *a,
    const char *grant_id, int64_t now, int64_t expires)
{
	sqlite3_stmt *st;
	int rc;

	if (jnl_db_prepare(t->db,
		"INSERT INTO approval_grants (id, principal, agent, tool,"
		" scope, session_id, expires_ms, created_ms, approval_id)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
		&st) < 0)
		return -EIO;
	sqlite3_bind_text(st, 1, grant_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, a->principal, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, a->agent, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, a->tool_name, -1, SQLITE_STATIC);
	sqlite3_bind_text(
	    st, 5, jnl_appr_scope_text(a->scope), -1, SQLITE_STATIC);
	if (a->scope == SCOPE(SESSION))
		sqlite3_bind_text(st, 6, a->session_id, -1, SQLITE_STATIC);
	else
		sqlite3_bind_int64(st, 7, expires);
	sqlite3_bind_int64(st, 8, now);
	sqlite3_bind_text(st, 9, a->approval_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		log_error("%s: grant insert: %s", t->name, sqlite3_errstr(rc));
		return -EIO;
	}
	return 0;
}

static int
appr_update(struct jnl_tenant *t, const Palyra__V1__Approval *a)
{
	sqlite3_stmt *st;
	int rc;

	if (jnl_db_prepare(t->db,
		"UPDATE approvals SET status = ?2, decided_ms = ?3,"
		" decided_by = ?4, scope = ?5, reason = ?6, grant_id = ?7"
		" WHERE id = ?1 AND status = 'pending'",
		&st) < 0)
		return -EIO;
	sqlite3_bind_text(st, 1, a->approval_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(
	    st, 2, jnl_appr_state_text(a->state), -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, a->decided_unix_ms);
	sqlite3_bind_text(st, 4, a->decided_by, -1, SQLITE_STATIC);
	if (a->scope != SCOPE(UNSPECIFIED))
		sqlite3_bind_text(
		    st, 5, jnl_appr_scope_text(a->scope), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, a->reason, -1, SQLITE_STATIC);
	if (a->grant_id[0] != '\0')
		sqlite3_bind_text(st, 7, a->grant_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		log_error(
		    "%s: approval update: %s", t->name, sqlite3_errstr(rc));
		return -EIO;
	}
	return sqlite3_changes(t->db) == 1 ? 0 : 1;
}

static int
replace(char **field, const char *value)
{
	char *copy;

	if ((copy = strdup(value)) == NULL)
		return -ENOMEM;
	free(*field);
	*field = copy;
	return 0;
}

int
jnl_appr_decide(struct jnl_ctx *ctx, struct jnl_tenant *t,
    const Palyra__V1__ApprovalDecision *d, const char *decided_by, int timeout,
    const char *principal, Palyra__V1__Approval **out, const char **msg)
{
	Palyra__V1__Approval *a;
	char grant[APPR_ID_LEN + 1];
	int64_t now = (int64_t)jnl_now_ms(), expires = 0;
	int rc;

	*out = NULL;
	if ((rc = jnl_appr_get(t, d->approval_id, &a)) < 0) {
		*msg = rc == -ENOMEM ? "out of memory" : E_UNAVAILABLE;
		return GRPC_STATUS_UNAVAILABLE;
	}
	if (a == NULL ||
	    (principal != NULL && strcmp(a->principal, principal) != 0)) {
		jnl_appr_free(a);
		*msg = "no such approval";
		return GRPC_STATUS_NOT_FOUND;
	}
	if (a->state != STATE(PENDING)) {
		*out = a;
		*msg = "the approval was already decided";
		return GRPC_STATUS_FAILED_PRECONDITION;
	}
	/* Past its expiry a pending approval waits only for its worker's
	 * timeout, which denies it. */
	if (!timeout && now >= a->expires_unix_ms) {
		*out = a;
		*msg = "the approval expired";
		return GRPC_STATUS_FAILED_PRECONDITION;
	}
	grant[0] = '\0';
	a->decided_unix_ms = now;
	if (timeout)
		a->state = STATE(EXPIRED);
	else if (d->decision == KIND(ALLOW)) {
		a->state = STATE(ALLOWED);
		a->scope =
		    d->scope == SCOPE(UNSPECIFIED) ? SCOPE(ONCE) : d->scope;
		if (a->scope != SCOPE(ONCE))
			random_id(grant);
		if (a->scope == SCOPE(TTL))
			expires = now + (int64_t)d->ttl_ms;
	} else
		a->state = STATE(DENIED);
	free(a->reason);
	/* A reason is stored like a summary: secret values redacted. */
	if ((a->reason = jnl_appr_redacted(ctx, d->reason)) == NULL ||
	    replace(&a->decided_by, decided_by) < 0 ||
	    replace(&a->grant_id, grant) < 0) {
		jnl_appr_free(a);
		*msg = "out of memory";
		return GRPC_STATUS_UNAVAILABLE;
	}
	if (jnl_batch_begin(ctx, t) < 0 ||
	    (grant[0] != '\0' && grant_insert(t, a, grant, now, expires) < 0) ||
	    (rc = appr_update(t, a)) < 0) {
		jnl_appr_free(a);
		return -EIO;
	}
	if (rc == 1) {
		/* Read pending in this very transaction: cannot happen. */
		jnl_appr_free(a);
		return -EIO;
	}
	log_info("%s: approval %s %s by %s%s%s", t->name, a->approval_id,
	    jnl_appr_state_text(a->state), a->decided_by,
	    grant[0] != '\0' ? ", grant " : "", grant);
	*out = a;
	return 0;
}

/* A run that ended. */

int
jnl_appr_run_ended(struct jnl_tenant *t, const char *run_id, int64_t ms)
{
	sqlite3_stmt *st;
	int rc;

	if (jnl_db_prepare(t->db,
		"UPDATE approvals SET status = 'expired', decided_ms = ?2,"
		" decided_by = '" APPR_RUN_ENDED "', reason = 'the run ended"
		" before a decision' WHERE run_id = ?1 AND status = 'pending'",
		&st) < 0)
		return -EIO;
	sqlite3_bind_text(st, 1, run_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, ms);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		log_error("%s: run %s: closing its approvals: %s", t->name,
		    run_id, sqlite3_errstr(rc));
		return -EIO;
	}
	if (sqlite3_changes(t->db) > 0)
		log_info("%s: run %s ended with its approval pending: expired",
		    t->name, run_id);
	return 0;
}
