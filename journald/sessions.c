/*
 * sessions.c: the GatewayService session methods at journald: a page of a
 * tenant's open sessions (ListSessions), one session (ResolveSession) and
 * closing one (CleanupSession), for the front (front/sessions.c).
 *
 * Runs in palyra-journald. Reads one tenant's journal.db through a
 * read-only connection (committed rows only); a close writes through the
 * tenant's connection inside its open batch (batch.c), so that the check
 * for live runs and the update see the same rows as the append path,
 * which journald serves on the same thread; the batch is then committed
 * at once and the close answered only once it is stored (a close is rare:
 * it costs the appends of that batch their grouping, nothing else). A
 * closed session keeps its
 * runs and events: they are the audit log. The front names the tenant
 * and, for a user token, the principal; a session of another principal
 * is NOT_FOUND, as one that never was.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "journald.h"
#include "log.h"

#define CODE(name) PALYRA__IPC__JOURNAL_SESSION_REPLY__CODE__##name

/* Sessions with their run count and latest run start: one index walk of
 * runs_session_order per session row. */
#define SESSION_COLUMNS                                                        \
	"SELECT s.session_id, s.principal, s.created_ms,"                      \
	" (SELECT count(*) FROM runs r WHERE r.session_id = s.session_id),"    \
	" (SELECT coalesce(max(r.created_ms), 0) FROM runs r"                  \
	" WHERE r.session_id = s.session_id), coalesce(s.closed_ms, 0)"        \
	" FROM sessions s"
#define LIST_SQL                                                               \
	SESSION_COLUMNS                                                        \
	" WHERE (?1 = '' OR s.principal = ?1) AND s.closed_ms IS NULL"         \
	" AND (s.created_ms, s.session_id) > (?2, ?3)"                         \
	" ORDER BY s.created_ms, s.session_id LIMIT ?4"
#define GET_SQL                                                                \
	SESSION_COLUMNS " WHERE (?1 = '' OR s.principal = ?1)"                 \
			" AND s.session_id = ?2"
#define LIVE_SQL                                                               \
	"SELECT count(*), coalesce(sum(status NOT IN ('COMPLETED', 'FAILED',"  \
	" 'CANCELLED', 'INTERRUPTED')), 0) FROM runs WHERE session_id = ?"
#define CLOSE_SQL                                                              \
	"UPDATE sessions SET closed_ms = ? WHERE session_id = ?"               \
	" AND closed_ms IS NULL"

static void
send_reply(struct jnl_ctx *ctx, uint32_t request_id,
    const Palyra__Ipc__JournalSessionReply *reply)
{
	int rc;

	if (ctx->front == NULL)
		return;
	if ((rc = ipc_chan_send(ctx->front, IPC_JOURNAL_SESSION_REPLY,
		 request_id, &reply->base, NULL, 0)) < 0)
		log_warn(
		    "front: cannot send a session reply: %s", strerror(-rc));
}

static void
send_error(
    struct jnl_ctx *ctx, uint32_t request_id, int code, const char *error)
{
	Palyra__Ipc__JournalSessionReply reply =
	    PALYRA__IPC__JOURNAL_SESSION_REPLY__INIT;

	reply.code = code;
	reply.error = (char *)error;
	send_reply(ctx, request_id, &reply);
}

static void
items_free(Palyra__Ipc__JournalSessionItem *items, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(items[i].session_id);
		free(items[i].principal);
	}
	free(items);
}

/* Fills one item from a SESSION_COLUMNS row. Returns 0 or -ENOMEM. */
static int
item_read(sqlite3_stmt *st, Palyra__Ipc__JournalSessionItem *it)
{
	const char *id = (const char *)sqlite3_column_text(st, 0);
	const char *principal = (const char *)sqlite3_column_text(st, 1);
	int64_t count = sqlite3_column_int64(st, 3);

	palyra__ipc__journal_session_item__init(it);
	it->session_id = strdup(id != NULL ? id : "");
	it->principal = strdup(principal != NULL ? principal : "");
	it->created_ms = sqlite3_column_int64(st, 2);
	it->run_count = count < 0	     ? 0
			: count > UINT32_MAX ? UINT32_MAX
					     : (uint32_t)count;
	it->last_run_ms = sqlite3_column_int64(st, 4);
	it->closed_ms = sqlite3_column_int64(st, 5);
	return it->session_id != NULL && it->principal != NULL ? 0 : -ENOMEM;
}

/* LIST and GET, from a read-only snapshot. */
static void
session_read(struct jnl_ctx *ctx, struct jnl_tenant *t, uint32_t request_id,
    const Palyra__Ipc__JournalSessionRequest *req)
{
	Palyra__Ipc__JournalSessionReply reply =
	    PALYRA__IPC__JOURNAL_SESSION_REPLY__INIT;
	Palyra__Ipc__JournalSessionItem *items = NULL, **ptrs = NULL;
	char after_id[JNL_CURSOR_ID_MAX + 1] = "";
	char next[JNL_CURSOR_MAX + 1] = "";
	int64_t after_ms = INT64_MIN;
	int list = req->op == PALYRA__IPC__JOURNAL_SESSION_REQUEST__OP__LIST;
	sqlite3 *reader = NULL;
	sqlite3_stmt *st = NULL;
	const char *why = NULL;
	size_t n = 0, limit, i;
	int rc = SQLITE_DONE;

	if (list && req->cursor[0] != '\0' &&
	    jnl_cursor_decode(
		req->cursor, &after_ms, after_id, sizeof(after_id)) < 0) {
		send_error(
		    ctx, request_id, CODE(BAD_REQUEST), "malformed page_token");
		return;
	}
	limit = !list ? 1
		: req->limit == 0 || req->limit > JNL_LIST_PAGE_MAX
		    ? JNL_LIST_PAGE_MAX
		    : req->limit;
	if ((items = calloc(limit + 1, sizeof(*items))) == NULL ||
	    (ptrs = calloc(limit + 1, sizeof(*ptrs))) == NULL) {
		free(items);
		send_error(ctx, request_id, CODE(UNAVAILABLE), "out of memory");
		return;
	}
	if (t->db == NULL || jnl_reader_open(t, &reader) < 0) {
		why = "journal unavailable";
		goto out;
	}
	if (jnl_db_prepare(reader, list ? LIST_SQL : GET_SQL, &st) < 0) {
		why = "cannot read the journal";
		goto out;
	}
	sqlite3_bind_text(st, 1, req->principal, -1, SQLITE_STATIC);
	if (list) {
		sqlite3_bind_int64(st, 2, after_ms);
		sqlite3_bind_text(st, 3, after_id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, (int64_t)limit + 1);
	} else
		sqlite3_bind_text(st, 2, req->session_id, -1, SQLITE_STATIC);
	while (n <= limit && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (item_read(st, &items[n++]) < 0) {
			why = "out of memory";
			goto out;
		}
	}
	if (n <= limit && rc != SQLITE_DONE) {
		why = "cannot read the journal";
		goto out;
	}
	if (!list && n == 0) {
		sqlite3_finalize(st);
		st = NULL;
		send_error(ctx, request_id, CODE(NOT_FOUND), "unknown session");
		goto out;
	}
	if (list && n > limit &&
	    jnl_cursor_encode(items[limit - 1].created_ms,
		items[limit - 1].session_id, next, sizeof(next)) < 0) {
		why = "a stored id is malformed";
		goto out;
	}
	for (i = 0; i < n && i < limit; i++)
		ptrs[i] = &items[i];
	reply.n_items = n < limit ? n : limit;
	reply.items = ptrs;
	reply.next_cursor = next;
	reply.error = "";
	send_reply(ctx, request_id, &reply);
out:
	sqlite3_finalize(st);
	jnl_db_close(reader);
	if (why != NULL) {
		log_warn("%s: sessions: %s", t->name, why);
		send_error(ctx, request_id, CODE(UNAVAILABLE), why);
	}
	items_free(items, n);
	free(ptrs);
}

/* CLOSE, in the tenant's batch. */
static void
session_close(struct jnl_ctx *ctx, struct jnl_tenant *t, uint32_t request_id,
    const Palyra__Ipc__JournalSessionRequest *req)
{
	Palyra__Ipc__JournalSessionReply reply =
	    PALYRA__IPC__JOURNAL_SESSION_REPLY__INIT;
	sqlite3_stmt *st = NULL;
	const char *owner;
	int64_t runs = 0, live = 0;
	int found = 0, rc;

	if (t->db == NULL || jnl_batch_begin(ctx, t) < 0)
		goto fail;
	jnl_schedule_commit(ctx);
	if (jnl_db_prepare(t->db,
		"SELECT principal FROM sessions"
		" WHERE session_id = ? AND closed_ms IS NULL",
		&st) < 0)
		goto fail;
	sqlite3_bind_text(st, 1, req->session_id, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		owner = (const char *)sqlite3_column_text(st, 0);
		found =
		    owner != NULL && (req->principal[0] == '\0' ||
					 strcmp(owner, req->principal) == 0);
	} else if (rc != SQLITE_DONE)
		goto fail;
	sqlite3_finalize(st);
	st = NULL;
	if (!found) {
		send_error(ctx, request_id, CODE(NOT_FOUND), "unknown session");
		return;
	}
	if (jnl_db_prepare(t->db, LIVE_SQL, &st) < 0)
		goto fail;
	sqlite3_bind_text(st, 1, req->session_id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_ROW)
		goto fail;
	runs = sqlite3_column_int64(st, 0);
	live = sqlite3_column_int64(st, 1);
	sqlite3_finalize(st);
	st = NULL;
	if (live > 0) {
		send_error(ctx, request_id, CODE(LIVE_RUN),
		    "the session has a live run");
		return;
	}
	if (jnl_db_prepare(t->db, CLOSE_SQL, &st) < 0)
		goto fail;
	sqlite3_bind_int64(st, 1, (int64_t)jnl_now_ms());
	sqlite3_bind_text(st, 2, req->session_id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		goto fail;
	sqlite3_finalize(st);
	st = NULL;
	/* Stored before it is told: a failed commit rolls the close back
	 * with the batch, and then the session is still open. */
	jnl_commit_all(ctx);
	if (t->db == NULL ||
	    jnl_db_prepare(t->db,
		"SELECT 1 FROM sessions"
		" WHERE session_id = ? AND closed_ms IS NOT NULL",
		&st) < 0)
		goto fail;
	sqlite3_bind_text(st, 1, req->session_id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_ROW)
		goto fail;
	sqlite3_finalize(st);
	log_info("%s: session %s closed (%lld runs)", t->name, req->session_id,
	    (long long)runs);
	reply.runs = runs > UINT32_MAX ? UINT32_MAX : (uint32_t)runs;
	reply.error = "";
	reply.next_cursor = "";
	send_reply(ctx, request_id, &reply);
	return;
fail:
	sqlite3_finalize(st);
	log_warn("%s: cannot close session %s", t->name, req->session_id);
	send_error(ctx, request_id, CODE(UNAVAILABLE), "journal unavailable");
}

void
jnl_session_request(struct jnl_ctx *ctx, const struct ipc_msg *m)
{
	const Palyra__Ipc__JournalSessionRequest *req =
	    (const Palyra__Ipc__JournalSessionRequest *)m->msg;
	struct jnl_tenant *t;

	if (!jnl_name_valid(req->tenant) ||
	    (t = jnl_tenant_find(ctx, req->tenant)) == NULL) {
		send_error(
		    ctx, m->hdr.request_id, CODE(NOT_FOUND), "unknown tenant");
		return;
	}
	if (req->principal[0] != '\0' && !jnl_name_valid(req->principal)) {
		send_error(ctx, m->hdr.request_id, CODE(BAD_REQUEST),
		    "invalid principal");
		return;
	}
	if (req->op != PALYRA__IPC__JOURNAL_SESSION_REQUEST__OP__LIST &&
	    !jnl_name_valid(req->session_id)) {
		send_error(ctx, m->hdr.request_id, CODE(BAD_REQUEST),
		    "invalid session_id");
		return;
	}
	if (req->op == PALYRA__IPC__JOURNAL_SESSION_REQUEST__OP__CLOSE)
		session_close(ctx, t, m->hdr.request_id, req);
	else
		session_read(ctx, t, m->hdr.request_id, req);
}
