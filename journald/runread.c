/*
 * runread.c: one run's committed events after a seq, for a RunStream
 * reattach (front/reattach.c): the run's owner, its status, and a page of
 * its events in seq order.
 *
 * Runs in palyra-journald. Touches one tenant's journal.db through a
 * read-only connection (committed events only) for the length of one page,
 * read in one transaction so that the run's status and its events agree: a
 * terminal status comes with every event up to the terminal one. A page is
 * bounded by JNL_READ_PAGE_MAX events and by what fits one datagram. The
 * front names the tenant of the token it verified; a tenant journald does
 * not serve is refused.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "journald.h"
#include "log.h"

/* A page: what fits one datagram with room for the page's own fields. */
#define READ_PAGE_BYTES (IPC_MAX_PAYLOAD - 4096)
#define EVENT_OVERHEAD 16 /* tag and length of one event in the page */

static void
send_page(struct jnl_ctx *ctx, uint32_t request_id,
    const Palyra__Ipc__JournalRunPage *page)
{
	int rc;

	if (ctx->front == NULL)
		return;
	rc = ipc_chan_send(
	    ctx->front, IPC_JOURNAL_RUN_PAGE, request_id, &page->base, NULL, 0);
	if (rc < 0)
		log_warn("front: cannot send a run page: %s", strerror(-rc));
}

static void
send_error(struct jnl_ctx *ctx, uint32_t request_id, const char *error)
{
	Palyra__Ipc__JournalRunPage page = PALYRA__IPC__JOURNAL_RUN_PAGE__INIT;

	page.error = (char *)error;
	send_page(ctx, request_id, &page);
}

static int
status_parse(const char *name)
{
	int i;

	for (i = 1; i <= JNL_RUN_STATUS_MAX && name != NULL; i++)
		if (strcmp(name, jnl_status_name(i)) == 0)
			return i;
	return 0;
}

/* The rest of a run's row, for GetRun. */
struct run_row {
	char *session_id;
	char *agent;
	int64_t created_ms;
	int64_t updated_ms;
};

static char *
column_dup(sqlite3_stmt *st, int col)
{
	const char *text = (const char *)sqlite3_column_text(st, col);

	return strdup(text != NULL ? text : "");
}

/*
 * Reads the run's row. Returns 1 (found, *principal and row's strings
 * allocated, freed by the caller even on -EIO), 0 (no such
 * run) or -EIO.
 */
static int
read_run(sqlite3 *db, const char *run_id, char **principal, int *status,
    uint64_t *last_seq, struct run_row *row)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (jnl_db_prepare(db,
		"SELECT principal, status, last_seq, session_id, agent,"
		" created_ms, updated_ms FROM runs WHERE run_id = ?",
		&st) < 0)
		return -EIO;
	sqlite3_bind_text(st, 1, run_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		sqlite3_finalize(st);
		return 0;
	}
	if (rc != SQLITE_ROW) {
		sqlite3_finalize(st);
		return -EIO;
	}
	*principal = strdup((const char *)sqlite3_column_text(st, 0) != NULL
				? (const char *)sqlite3_column_text(st, 0)
				: "");
	*status = status_parse((const char *)sqlite3_column_text(st, 1));
	*last_seq = (uint64_t)sqlite3_column_int64(st, 2);
	row->session_id = column_dup(st, 3);
	row->agent = column_dup(st, 4);
	row->created_ms = sqlite3_column_int64(st, 5);
	row->updated_ms = sqlite3_column_int64(st, 6);
	sqlite3_finalize(st);
	return *principal != NULL && row->session_id != NULL &&
		       row->agent != NULL
		   ? 1
		   : -EIO;
}

static void
events_free(Palyra__V1__RunEvent **events, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		palyra__v1__run_event__free_unpacked(events[i], NULL);
}

/*
 * Reads up to max events of the run after after_seq into events. Returns
 * the count, with *more set, or a negative error with *why.
 */
static ssize_t
read_events(sqlite3 *db, const char *run_id, uint64_t after_seq, size_t max,
    Palyra__V1__RunEvent **events, int *more, const char **why)
{
	sqlite3_stmt *st = NULL;
	Palyra__V1__RunEvent *ev;
	size_t n = 0, bytes = 0, size;
	uint64_t seq;
	int rc;

	*more = 0;
	if (jnl_db_prepare(db,
		"SELECT run_seq, payload FROM events WHERE run_id = ? AND"
		" run_seq > ? ORDER BY run_seq LIMIT ?",
		&st) < 0) {
		*why = "cannot read the events";
		return -EIO;
	}
	sqlite3_bind_text(st, 1, run_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (int64_t)after_seq);
	/* One row more than the page holds tells whether more follow. */
	sqlite3_bind_int64(st, 3, (int64_t)max + 1);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == max) {
			*more = 1;
			break;
		}
		seq = (uint64_t)sqlite3_column_int64(st, 0);
		ev = palyra__v1__run_event__unpack(NULL,
		    (size_t)sqlite3_column_bytes(st, 1),
		    sqlite3_column_blob(st, 1));
		/* What we stored ourselves must decode and name its row. */
		if (ev == NULL || ev->seq != seq ||
		    strcmp(ev->run_id, run_id) != 0) {
			if (ev != NULL)
				palyra__v1__run_event__free_unpacked(ev, NULL);
			*why = "a stored event is malformed";
			sqlite3_finalize(st);
			events_free(events, n);
			return -EIO;
		}
		size = protobuf_c_message_get_packed_size(&ev->base) +
		       EVENT_OVERHEAD;
		if (bytes + size > READ_PAGE_BYTES) {
			palyra__v1__run_event__free_unpacked(ev, NULL);
			*more = 1;
			if (n == 0) {
				*why = "an event is too large to read";
				sqlite3_finalize(st);
				return -E2BIG; /* n is 0: nothing to free */
			}
			break;
		}
		events[n++] = ev;
		bytes += size;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		*why = "cannot read the events";
		events_free(events, n);
		return -EIO;
	}
	return (ssize_t)n;
}

void
jnl_run_read_request(struct jnl_ctx *ctx, const struct ipc_msg *m)
{
	const Palyra__Ipc__JournalRunReadRequest *req =
	    (const Palyra__Ipc__JournalRunReadRequest *)m->msg;
	Palyra__Ipc__JournalRunPage page = PALYRA__IPC__JOURNAL_RUN_PAGE__INIT;
	Palyra__V1__RunEvent **events = NULL;
	struct jnl_tenant *t;
	struct run_row row = {NULL, NULL, 0, 0};
	sqlite3 *reader = NULL;
	char *principal = NULL;
	const char *why = NULL;
	uint64_t last_seq = 0;
	ssize_t n = 0;
	size_t max;
	int status = 0, more = 0, rc;

	if (!jnl_name_valid(req->tenant) ||
	    (t = jnl_tenant_find(ctx, req->tenant)) == NULL) {
		send_error(ctx, m->hdr.request_id, "unknown tenant");
		return;
	}
	if (req->after_seq > INT64_MAX) {
		send_error(ctx, m->hdr.request_id, "after_seq out of range");
		return;
	}
	if (req->run_id[0] == '\0' ||
	    strnlen(req->run_id, JNL_RUN_ID_MAX + 1) > JNL_RUN_ID_MAX) {
		send_page(ctx, m->hdr.request_id, &page); /* not found */
		return;
	}
	max = req->max_events > JNL_READ_PAGE_MAX ? JNL_READ_PAGE_MAX
						  : req->max_events;
	if (t->db == NULL || jnl_reader_open(t, &reader) < 0) {
		send_error(ctx, m->hdr.request_id, "journal unavailable");
		return;
	}
	if (max > 0 && (events = calloc(max, sizeof(*events))) == NULL) {
		why = "out of memory";
		goto out;
	}
	/* One snapshot for the run's row and its events. */
	if (sqlite3_exec(reader, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
		why = "journal unavailable";
		goto out;
	}
	rc = read_run(
	    reader, req->run_id, &principal, &status, &last_seq, &row);
	if (rc < 0)
		why = "cannot read the run";
	else if (rc > 0 && max > 0 &&
		 (n = read_events(reader, req->run_id, req->after_seq, max,
		      events, &more, &why)) < 0)
		n = 0;
	(void)sqlite3_exec(reader, "COMMIT", NULL, NULL, NULL);
	if (why != NULL)
		goto out;
	if (rc > 0) {
		page.found = 1;
		page.principal = principal;
		page.status = (Palyra__V1__RunStatus)status;
		page.terminal = jnl_status_terminal(status);
		page.last_seq = last_seq;
		page.n_events = (size_t)n;
		page.events = events;
		page.more = more;
		page.session_id = row.session_id;
		page.agent = row.agent;
		page.created_unix_ms = row.created_ms;
		page.updated_unix_ms = row.updated_ms;
	}
	page.error = "";
	send_page(ctx, m->hdr.request_id, &page);
out:
	jnl_db_close(reader);
	if (why != NULL) {
		log_warn("%s: run read: %s", t->name, why);
		send_error(ctx, m->hdr.request_id, why);
	}
	events_free(events, (size_t)n);
	free(events);
	free(principal);
	free(row.session_id);
	free(row.agent);
}
