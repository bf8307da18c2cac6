/*
 * export.c: pages of a tenant's events for `palyractl journal export`
 * (GET /admin/v1/journal/export), in chain order with their hashes.
 *
 * Runs in palyra-journald. Touches one tenant's journal.db through a
 * read-only connection (committed events only) for the length of one
 * page. A page is bounded by JNL_EXPORT_PAGE_EVENTS and by what fits one
 * datagram; the front asks for the next page only once it wrote the last
 * one to its client, so neither process holds more than a page.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "log.h"

/* Bytes a row adds to the encoded page, generously: tags and lengths. */
#define ROW_OVERHEAD 64

static void
send_error(struct jnl_ctx *ctx, uint32_t request_id, const char *error)
{
	Palyra__Ipc__JournalExportPage page =
	    PALYRA__IPC__JOURNAL_EXPORT_PAGE__INIT;

	page.error = (char *)error;
	(void)jnl_audit_reply(
	    ctx, IPC_JOURNAL_EXPORT_PAGE, request_id, &page.base);
}

static void
rows_free(Palyra__Ipc__JournalEventRow *rows, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(rows[i].run_id);
		free(rows[i].kind);
		free(rows[i].payload.data);
		free(rows[i].hash.data);
	}
	free(rows);
}

static char *
text_dup(sqlite3_stmt *st, int col)
{
	const unsigned char *s = sqlite3_column_text(st, col);

	return strdup(s != NULL ? (const char *)s : "");
}

static uint8_t *
blob_dup(sqlite3_stmt *st, int col, size_t *len)
{
	const void *b = sqlite3_column_blob(st, col);
	uint8_t *p;

	*len = (size_t)sqlite3_column_bytes(st, col);
	if ((p = malloc(*len > 0 ? *len : 1)) != NULL && *len > 0)
		memcpy(p, b, *len);
	return p;
}

void
jnl_export_request(struct jnl_ctx *ctx, const struct ipc_msg *m)
{
	const Palyra__Ipc__JournalExportRequest *req =
	    (const Palyra__Ipc__JournalExportRequest *)m->msg;
	Palyra__Ipc__JournalExportPage page =
	    PALYRA__IPC__JOURNAL_EXPORT_PAGE__INIT;
	Palyra__Ipc__JournalEventRow *rows = NULL, **rowp = NULL;
	struct jnl_tenant *t;
	sqlite3 *reader = NULL;
	sqlite3_stmt *st = NULL;
	size_t n = 0, bytes = 0, size, max;
	const char *error = NULL;
	Palyra__Ipc__JournalEventRow *r;
	Palyra__Ipc__JournalAnchor pa = PALYRA__IPC__JOURNAL_ANCHOR__INIT;
	struct jnl_anchor anchor;
	int rc;

	if (!jnl_name_valid(req->tenant) ||
	    (t = jnl_tenant_find(ctx, req->tenant)) == NULL) {
		send_error(ctx, m->hdr.request_id, "unknown tenant");
		return;
	}
	if (req->after_seq > INT64_MAX) {
		send_error(ctx, m->hdr.request_id, "after_seq out of range");
		return;
	}
	max = req->max_events == 0 || req->max_events > JNL_EXPORT_PAGE_EVENTS
		  ? JNL_EXPORT_PAGE_EVENTS
		  : req->max_events;
	if (t->db == NULL || jnl_reader_open(t, &reader) < 0) {
		send_error(ctx, m->hdr.request_id, "journal unavailable");
		return;
	}
	/* A pruned journal's export starts at its anchor: the first page
	 * says where the remaining chain continues from. */
	if (jnl_anchor_latest(reader, t->name, &anchor) < 0) {
		error = "cannot read the anchors";
		goto out;
	}
	if (anchor.chain_seq != 0 && !anchor.malformed &&
	    req->after_seq < anchor.chain_seq) {
		pa.chain_seq = anchor.chain_seq;
		pa.hash.data = anchor.hash;
		pa.hash.len = CHAIN_HASH_LEN;
		pa.ts_ms = anchor.ts_ms;
		pa.signature.data = anchor.signature;
		pa.signature.len = JNL_SIGNATURE_LEN;
		pa.before_ms = anchor.before_ms;
		page.anchor = &pa;
	}
	if ((rows = calloc(max, sizeof(*rows))) == NULL ||
	    (rowp = calloc(max, sizeof(*rowp))) == NULL) {
		error = "out of memory";
		goto out;
	}
	if (jnl_db_prepare(reader,
		"SELECT chain_seq, run_id, run_seq, ts_ms, kind, payload, hash"
		" FROM events WHERE chain_seq > ? ORDER BY chain_seq LIMIT ?",
		&st) < 0) {
		error = "cannot read the events";
		goto out;
	}
	sqlite3_bind_int64(st, 1, (int64_t)req->after_seq);
	/* One row more than the page holds tells whether more follow. */
	sqlite3_bind_int64(st, 2, (int64_t)max + 1);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		size = (size_t)sqlite3_column_bytes(st, 1) +
		       (size_t)sqlite3_column_bytes(st, 4) +
		       (size_t)sqlite3_column_bytes(st, 5) +
		       (size_t)sqlite3_column_bytes(st, 6) + ROW_OVERHEAD;
		if (n == max || bytes + size > JNL_EXPORT_PAGE_BYTES) {
			page.more = 1;
			if (n == 0)
				error = "an event is too large to export";
			break;
		}
		r = &rows[n];
		palyra__ipc__journal_event_row__init(r);
		rowp[n++] = r;
		r->chain_seq = (uint64_t)sqlite3_column_int64(st, 0);
		r->run_seq = (uint64_t)sqlite3_column_int64(st, 2);
		r->ts_ms = sqlite3_column_int64(st, 3);
		r->run_id = text_dup(st, 1);
		r->kind = text_dup(st, 4);
		r->payload.data = blob_dup(st, 5, &r->payload.len);
		r->hash.data = blob_dup(st, 6, &r->hash.len);
		if (r->run_id == NULL || r->kind == NULL ||
		    r->payload.data == NULL || r->hash.data == NULL) {
			error = "out of memory";
			break;
		}
		bytes += size;
	}
	if (error == NULL && rc != SQLITE_ROW && rc != SQLITE_DONE)
		error = "cannot read the events";
out:
	sqlite3_finalize(st);
	jnl_db_close(reader);
	if (error != NULL) {
		log_warn("%s: export: %s", t->name, error);
		send_error(ctx, m->hdr.request_id, error);
	} else {
		page.n_events = n;
		page.events = rowp;
		page.error = "";
		(void)jnl_audit_reply(ctx, IPC_JOURNAL_EXPORT_PAGE,
		    m->hdr.request_id, &page.base);
	}
	rows_free(rows, n);
	free(rowp);
}
