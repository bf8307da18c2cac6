/*
 * listing.c: a tenant's sessions and runs, a page at a time, for the host
 * operator (admin token), answered by journald (journald/listing.c):
 *
 *   GET /admin/v1/tenants/NAME/sessions?principal=&cursor=&limit=
 *   GET /admin/v1/tenants/NAME/runs?session_id=&principal=&status=
 *       &cursor=&limit=
 *
 * The answer is {"items":[...],"next_cursor":"..."|null}; the cursor is
 * opaque here and passed back to journald as it came. limit is 1 to
 * JNL_LIST_PAGE_MAX (the default). Unknown parameters, a malformed cursor
 * or an unknown status are a 400, an unknown tenant a 404.
 *
 * Process: palyra-front. Touches its HTTP connections and the journald
 * channel. Requests waiting for journald are bounded
 * (FE_LISTING_REQUESTS_MAX), time out (FE_JOURNAL_TIMEOUT_MS) and are
 * forgotten when their client leaves.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "front.h"
#include "log.h"

#define STATUS_TEXT_MAX 32

/* One listing waiting for journald. */
struct fe_listing {
	TAILQ_ENTRY(fe_listing) entry;
	struct fe_ctx *ctx;
	struct evhttp_request *req;
	struct evhttp_connection *evcon;
	uint32_t request_id;
	int runs;
	struct event *timer;
};

TAILQ_HEAD(fe_listing_list, fe_listing);

struct fe_listings {
	struct fe_listing_list reqs;
	size_t nreqs;
	uint32_t next_id;
};

static void
listing_free(struct fe_listing *l)
{
	struct fe_listings *ls = l->ctx->listings;

	TAILQ_REMOVE(&ls->reqs, l, entry);
	ls->nreqs--;
	if (l->evcon != NULL)
		evhttp_connection_set_closecb(l->evcon, NULL, NULL);
	if (l->timer != NULL)
		event_free(l->timer);
	free(l);
}

static void
listing_fail(
    struct fe_listing *l, int status, const char *code, const char *message)
{
	struct evhttp_request *req = l->req;

	listing_free(l);
	fe_http_reply_error(req, status, code, message);
}

static void
listing_timeout(evutil_socket_t fd, short what, void *arg)
{
	log_warn("journald did not answer a listing in time");
	listing_fail(arg, 503, "unavailable", "journald did not answer");
}

static void
listing_conn_closed(struct evhttp_connection *evcon, void *arg)
{
	struct fe_listing *l = arg;

	/* The client left first; a late answer finds no request. */
	l->evcon = NULL;
	listing_free(l);
}

static int
name_ok(const char *s, size_t max)
{
	size_t i;

	if (s[0] == '\0' || s[0] == '.' || s[0] == '-')
		return 0;
	for (i = 0; s[i] != '\0'; i++)
		if (i >= max || !((s[i] >= 'a' && s[i] <= 'z') ||
				    (s[i] >= 'A' && s[i] <= 'Z') ||
				    (s[i] >= '0' && s[i] <= '9') ||
				    s[i] == '.' || s[i] == '_' || s[i] == '-'))
			return 0;
	return 1;
}

/*
 * The query into lr (strings point into q). Returns NULL, or the message
 * of a 400.
 */
static const char *
parse_query(struct evkeyvalq *q, int runs, Palyra__Ipc__JournalListRequest *lr)
{
	struct evkeyval *kv;
	unsigned long limit;
	char *end;

	TAILQ_FOREACH(kv, q, next)
	{
		if (strcmp(kv->key, "principal") == 0) {
			if (kv->value[0] != '\0' &&
			    !name_ok(kv->value, NAME_MAX_LEN))
				return "invalid principal";
			lr->principal = kv->value;
		} else if (runs && strcmp(kv->key, "session_id") == 0) {
			if (kv->value[0] != '\0' &&
			    !name_ok(kv->value, NAME_MAX_LEN))
				return "invalid session_id";
			lr->session_id = kv->value;
		} else if (runs && strcmp(kv->key, "status") == 0) {
			if (strlen(kv->value) > STATUS_TEXT_MAX)
				return "unknown status";
			lr->status = kv->value;
		} else if (strcmp(kv->key, "cursor") == 0) {
			if (strlen(kv->value) > JNL_CURSOR_MAX)
				return "malformed cursor";
			lr->cursor = kv->value;
		} else if (strcmp(kv->key, "limit") == 0) {
			if (kv->value[0] < '0' || kv->value[0] > '9' ||
			    strlen(kv->value) > 3)
				return "limit must be 1 to 100";
			limit = strtoul(kv->value, &end, 10);
			if (*end != '\0' || limit < 1 ||
			    limit > JNL_LIST_PAGE_MAX)
				return "limit must be 1 to 100";
			lr->limit = (uint32_t)limit;
		} else
			return "unknown query parameter";
	}
	return NULL;
}

/* path: what follows /admin/v1/tenants/. */
void
fe_listing_http(
    struct fe_ctx *ctx, struct evhttp_request *req, const char *path)
{
	Palyra__Ipc__JournalListRequest lr =
	    PALYRA__IPC__JOURNAL_LIST_REQUEST__INIT;
	struct timeval tv = {FE_JOURNAL_TIMEOUT_MS / 1000,
	    (FE_JOURNAL_TIMEOUT_MS % 1000) * 1000};
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *slash, *what, *query, *err;
	char tenant[NAME_MAX_LEN + 1];
	struct fe_listings *ls = ctx->listings;
	struct evkeyvalq q;
	struct fe_listing *l;
	size_t len;
	int runs, rc;

	if ((slash = strchr(path, '/')) == NULL ||
	    (len = (size_t)(slash - path)) == 0 || len > NAME_MAX_LEN) {
		fe_http_reply_error(req, 404, "not_found", "no such resource");
		return;
	}
	what = slash + 1;
	if (strcmp(what, "sessions") == 0)
		runs = 0;
	else if (strcmp(what, "runs") == 0)
		runs = 1;
	else {
		fe_http_reply_error(req, 404, "not_found", "no such resource");
		return;
	}
	memcpy(tenant, path, len);
	tenant[len] = '\0';
	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
		evhttp_add_header(
		    evhttp_request_get_output_headers(req), "Allow", "GET");
		fe_http_reply_error(
		    req, 405, "method_not_allowed", "method not allowed");
		return;
	}
	if (!ctx->have_keys) {
		fe_http_reply_error(req, 503, "unavailable", "not ready");
		return;
	}
	/* Rate-limited per source address like every admin endpoint. */
	if (!fe_http_admin_auth(ctx, req))
		return;
	if (!name_ok(tenant, NAME_MAX_LEN)) {
		fe_http_reply_error(req, 404, "not_found", "unknown tenant");
		return;
	}
	TAILQ_INIT(&q);
	query = uri != NULL ? evhttp_uri_get_query(uri) : NULL;
	if (query != NULL && evhttp_parse_query_str(query, &q) != 0) {
		evhttp_clear_headers(&q);
		fe_http_reply_error(req, 400, "bad_request", "malformed query");
		return;
	}
	lr.tenant = tenant;
	lr.runs = runs;
	if ((err = parse_query(&q, runs, &lr)) != NULL) {
		evhttp_clear_headers(&q);
		fe_http_reply_error(req, 400, "bad_request", err);
		return;
	}
	if (ctx->journald == NULL || ctx->stopping) {
		evhttp_clear_headers(&q);
		fe_http_reply_error(
		    req, 503, "unavailable", "journal unavailable");
		return;
	}
	if (ls == NULL) {
		if ((ls = calloc(1, sizeof(*ls))) == NULL) {
			evhttp_clear_headers(&q);
			fe_http_reply_error(
			    req, 503, "unavailable", "out of memory");
			return;
		}
		TAILQ_INIT(&ls->reqs);
		ctx->listings = ls;
	}
	if (ls->nreqs >= FE_LISTING_REQUESTS_MAX) {
		evhttp_clear_headers(&q);
		fe_http_reply_error(
		    req, 503, "unavailable", "too many listings in progress");
		return;
	}
	if ((l = calloc(1, sizeof(*l))) == NULL ||
	    (l->timer = evtimer_new(ctx->base, listing_timeout, l)) == NULL) {
		free(l);
		evhttp_clear_headers(&q);
		fe_http_reply_error(req, 503, "unavailable", "out of memory");
		return;
	}
	l->ctx = ctx;
	l->req = req;
	l->runs = runs;
	if (++ls->next_id == 0)
		ls->next_id = 1;
	l->request_id = ls->next_id;
	TAILQ_INSERT_TAIL(&ls->reqs, l, entry);
	ls->nreqs++;
	rc = ipc_chan_send(ctx->journald, IPC_JOURNAL_LIST_REQUEST,
	    l->request_id, &lr.base, NULL, 0);
	evhttp_clear_headers(&q);
	if (rc < 0 || evtimer_add(l->timer, &tv) < 0) {
		listing_fail(l, 503, "unavailable",
		    rc == -ENOBUFS ? "journal busy" : "journal unavailable");
		return;
	}
	l->evcon = evhttp_request_get_connection(req);
	if (l->evcon != NULL)
		evhttp_connection_set_closecb(l->evcon, listing_conn_closed, l);
}

static json_t *
item_json(const Palyra__Ipc__JournalListItem *it, int runs)
{
	if (!runs)
		return json_pack("{s:s,s:s,s:I}", "session_id", it->session_id,
		    "principal", it->principal, "created_ms",
		    (json_int_t)it->created_ms);
	return json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:I}", "run_id",
	    it->run_id, "session_id", it->session_id, "principal",
	    it->principal, "agent", it->agent, "status", it->status,
	    "created_ms", (json_int_t)it->created_ms, "updated_ms",
	    (json_int_t)it->updated_ms, "last_seq", (json_int_t)it->last_seq);
}

int
fe_listing_reply(struct fe_ctx *ctx, const struct ipc_msg *m)
{
	const Palyra__Ipc__JournalListPage *page =
	    (const Palyra__Ipc__JournalListPage *)m->msg;
	struct evhttp_request *req;
	struct fe_listing *l;
	json_t *root = NULL, *items = NULL, *item;
	char *text;
	size_t i;

	if (m->hdr.type != IPC_JOURNAL_LIST_PAGE)
		return 0;
	if (fe_console_list_reply(ctx, m))
		return 1;
	if (ctx->listings == NULL)
		return 1;
	TAILQ_FOREACH(l, &ctx->listings->reqs, entry)
	if (l->request_id == m->hdr.request_id)
		break;
	/* Gone (timed out, client left): the answer is dropped. */
	if (l == NULL)
		return 1;
	if (page->error[0] != '\0') {
		if (page->bad_request)
			listing_fail(l, 400, "bad_request",
			    strcmp(page->error, "unknown status") == 0
				? "unknown status"
			    : strcmp(page->error, "invalid filter") == 0
				? "invalid filter"
				: "malformed cursor");
		else if (strcmp(page->error, "unknown tenant") == 0)
			listing_fail(l, 404, "not_found", "unknown tenant");
		else
			listing_fail(
			    l, 503, "unavailable", "journal unavailable");
		return 1;
	}
	if (page->n_items > JNL_LIST_PAGE_MAX ||
	    strlen(page->next_cursor) > JNL_CURSOR_MAX) {
		listing_fail(l, 503, "unavailable", "journal sent too much");
		return 1;
	}
	if ((items = json_array()) == NULL)
		goto nomem;
	for (i = 0; i < page->n_items; i++)
		if ((item = item_json(page->items[i], l->runs)) == NULL ||
		    json_array_append_new(items, item) < 0)
			goto nomem;
	root = json_pack("{s:o,s:o}", "items", items, "next_cursor",
	    page->next_cursor[0] != '\0' ? json_string(page->next_cursor)
					 : json_null());
	items = NULL;
	if (root == NULL || (text = json_dumps(root, JSON_COMPACT)) == NULL)
		goto nomem;
	json_decref(root);
	req = l->req;
	listing_free(l);
	fe_http_reply_json(req, 200, text, strlen(text));
	free(text);
	return 1;
nomem:
	json_decref(items);
	json_decref(root);
	listing_fail(l, 503, "unavailable", "out of memory");
	return 1;
}

void
fe_listing_shutdown(struct fe_ctx *ctx)
{
	struct fe_listing *l;

	if (ctx->listings == NULL)
		return;
	while ((l = TAILQ_FIRST(&ctx->listings->reqs)) != NULL)
		listing_free(l);
	free(ctx->listings);
	ctx->listings = NULL;
}
