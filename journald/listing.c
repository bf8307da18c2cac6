/*
 * listing.c: pages of a tenant's sessions and runs for the admin API
 * (front/listing.c), with cursor pagination (journald/cursor.c).
 *
 * Runs in palyra-journald. Touches one tenant's journal.db through a
 * read-only connection (committed rows only) for the length of one page.
 * Rows come in (created_ms, id) order, which the indices of schema
 * version 4 serve; a page holds at most JNL_LIST_PAGE_MAX rows, and one
 * row more is read to learn whether another page follows. The front
 * names the tenant; a tenant journald does not serve is refused.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "journald.h"
#include "log.h"

#define SESSIONS_SQL                                                           \
	"SELECT session_id, principal, created_ms FROM sessions"               \
	" WHERE (?1 = '' OR principal = ?1) AND (created_ms, session_id) >"    \
	" (?2, ?3) ORDER BY created_ms, session_id LIMIT ?4"
#define RUNS_SQL                                                               \
	"SELECT run_id, session_id, principal, agent, status, created_ms,"     \
	" updated_ms, last_seq FROM runs"                                      \
	" WHERE (?1 = '' OR principal = ?1) AND (?5 = '' OR session_id = ?5)"  \
	" AND (?6 = '' OR status = ?6) AND (created_ms, run_id) > (?2, ?3)"    \
	" ORDER BY created_ms, run_id LIMIT ?4"

static void
send_page(struct jnl_ctx *ctx, uint32_t request_id,
    const Palyra__Ipc__JournalListPage *page)
{
	int rc;

	if (ctx->front == NULL)
		return;
	if ((rc = ipc_chan_send(ctx->front, IPC_JOURNAL_LIST_PAGE, request_id,
		 &page->base, NULL, 0)) < 0)
		log_warn("front: cannot send a list page: %s", strerror(-rc));
}

static void
send_error(struct jnl_ctx *ctx, uint32_t request_id, const char *error,
    int bad_request)
{
	Palyra__Ipc__JournalListPage page =
	    PALYRA__IPC__JOURNAL_LIST_PAGE__INIT;

	page.error = (char *)error;
	page.bad_request = bad_request;
	send_page(ctx, request_id, &page);
}

static int
status_known(const char *name)
{
	int i;

	for (i = 1; i <= JNL_RUN_STATUS_MAX; i++)
		if (strcmp(name, jnl_status_name(i)) == 0)
			return 1;
	return 0;
}

static char *
column_dup(sqlite3_stmt *st, int col)
{
	const char *text = (const char *)sqlite3_column_text(st, col);

	return strdup(text != NULL ? text : "");
}

static void
items_free(Palyra__Ipc__JournalListItem *items, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(items[i].session_id);
		free(items[i].principal);
		free(items[i].run_id);
		free(items[i].agent);
		free(items[i].status);
	}
	free(items);
}

/* Fills one item from the row. Returns 0 or -ENOMEM. */
static int
item_read(sqlite3_stmt *st, int runs, Palyra__Ipc__JournalListItem *it)
{
	palyra__ipc__journal_list_item__init(it);
	if (!runs) {
		it->session_id = column_dup(st, 0);
		it->principal = column_dup(st, 1);
		it->created_ms = sqlite3_column_int64(st, 2);
		it->run_id = strdup("");
		it->agent = strdup("");
		it->status = strdup("");
	} else {
		it->run_id = column_dup(st, 0);
		it->session_id = column_dup(st, 1);
		it->principal = column_dup(st, 2);
		it->agent = column_dup(st, 3);
		it->status = column_dup(st, 4);
		it->created_ms = sqlite3_column_int64(st, 5);
		it->updated_ms = sqlite3_column_int64(st, 6);
		it->last_seq = (uint64_t)sqlite3_column_int64(st, 7);
	}
	return it->session_id != NULL && it->principal != NULL &&
		       it->run_id != NULL && it->agent != NULL &&
		       it->status != NULL
		   ? 0
		   : -ENOMEM;
}

void
jnl_list_request(struct jnl_ctx *ctx, const struct ipc_msg *m)
{
	const Palyra__Ipc__JournalListRequest *req =
	    (const Palyra__Ipc__JournalListRequest *)m->msg;
	Palyra__Ipc__JournalListPage page =
	    PALYRA__IPC__JOURNAL_LIST_PAGE__INIT;
	Palyra__Ipc__JournalListItem *items = NULL, **ptrs = NULL;
	char after_id[JNL_CURSOR_ID_MAX + 1] = "";
	char next[JNL_CURSOR_MAX + 1] = "";
	int64_t after_ms = INT64_MIN;
	struct jnl_tenant *t;
	sqlite3 *reader = NULL;
	sqlite3_stmt *st = NULL;
	const char *why = NULL, *last_id;
	size_t n = 0, limit, i;
	int rc;

	if (!jnl_name_valid(req->tenant) ||
	    (t = jnl_tenant_find(ctx, req->tenant)) == NULL) {
		send_error(ctx, m->hdr.request_id, "unknown tenant", 0);
		return;
	}
	if ((req->principal[0] != '\0' && !jnl_name_valid(req->principal)) ||
	    (req->session_id[0] != '\0' && !jnl_name_valid(req->session_id))) {
		send_error(ctx, m->hdr.request_id, "invalid filter", 1);
		return;
	}
	if (req->status[0] != '\0' && !status_known(req->status)) {
		send_error(ctx, m->hdr.request_id, "unknown status", 1);
		return;
	}
	if (req->cursor[0] != '\0' && jnl_cursor_decode(req->cursor, &after_ms,
					  after_id, sizeof(after_id)) < 0) {
		send_error(ctx, m->hdr.request_id, "malformed cursor", 1);
		return;
	}
	limit = req->limit == 0 || req->limit > JNL_LIST_PAGE_MAX
		    ? JNL_LIST_PAGE_MAX
		    : req->limit;
	if ((items = calloc(limit + 1, sizeof(*items))) == NULL ||
	    (ptrs = calloc(limit + 1, sizeof(*ptrs))) == NULL) {
		free(items);
		send_error(ctx, m->hdr.request_id, "out of memory", 0);
		return;
	}
	if (t->db == NULL || jnl_reader_open(t, &reader) < 0) {
		why = "journal unavailable";
		goto out;
	}
	if (jnl_db_prepare(reader, req->runs ? RUNS_SQL : SESSIONS_SQL, &st) <
	    0) {
		why = "cannot read the journal";
		goto out;
	}
	sqlite3_bind_text(st, 1, req->principal, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, after_ms);
	sqlite3_bind_text(st, 3, after_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (int64_t)limit + 1);
	if (req->runs) {
		sqlite3_bind_text(st, 5, req->session_id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 6, req->status, -1, SQLITE_STATIC);
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && n <= limit) {
		if (item_read(st, req->runs, &items[n]) < 0) {
			n++;
			why = "out of memory";
			goto out;
		}
		n++;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		why = "cannot read the journal";
		goto out;
	}
	if (n > limit) {
		/* One row more than the page: the page's last row is the
		 * cursor of the next. */
		n--;
		last_id =
		    req->runs ? items[n - 1].run_id : items[n - 1].session_id;
		if (jnl_cursor_encode(items[n - 1].created_ms, last_id, next,
			sizeof(next)) < 0) {
			n++;
			why = "a stored id is malformed";
			goto out;
		}
		n++; /* freed below with the others */
	}
	for (i = 0; i < n && i < limit; i++)
		ptrs[i] = &items[i];
	page.n_items = n < limit ? n : limit;
	page.items = ptrs;
	page.next_cursor = next;
	page.error = "";
	send_page(ctx, m->hdr.request_id, &page);
out:
	sqlite3_finalize(st);
	jnl_db_close(reader);
	if (why != NULL) {
		log_warn("%s: listing: %s", t->name, why);
		send_error(ctx, m->hdr.request_id, why, 0);
	}
	items_free(items, n);
	free(ptrs);
}
