/*
 * journal.c: the journal audit endpoints of the admin API, answered by
 * journald (journald/audit.h):
 *
 *   POST /admin/v1/journal/verify      {"tenant":NAME}?  chain check
 *   POST /admin/v1/journal/checkpoint  {"tenant":NAME}?  sign heads now
 *   GET  /admin/v1/journal/pubkey                        checkpoint key
 *   GET  /admin/v1/journal/export?tenant=NAME&since=SEQ  NDJSON, chunked
 *   POST /admin/v1/journal/backup      {"tenant":NAME}   online copy
 *   POST /admin/v1/journal/prune {"tenant":NAME,"before_ms":MS}  by age
 *
 * Process: palyra-front. Touches its HTTP connections and the journald
 * channel. Requests waiting for journald are bounded
 * (FE_JOURNAL_REQUESTS_MAX), time out (FE_JOURNAL_TIMEOUT_MS, or
 * FE_JOURNAL_JOB_TIMEOUT_MS for a verification or a backup) and are
 * forgotten when their client leaves. An export holds one page at a time:
 * the next page is asked for only once the last one was written out.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <sodium.h>

#include "config.h"
#include "front.h"
#include "log.h"

#define SINCE_TEXT_MAX 20 /* digits of a uint64 */
#define HEX_MAX (2 * 64 + 1)

enum fe_jaudit_kind {
	FE_JAUDIT_VERIFY = 0,
	FE_JAUDIT_CHECKPOINT,
	FE_JAUDIT_PUBKEY,
	FE_JAUDIT_EXPORT,
	FE_JAUDIT_BACKUP,
	FE_JAUDIT_PRUNE,
};

/* One admin request waiting for journald. */
struct fe_jaudit {
	TAILQ_ENTRY(fe_jaudit) entry;
	struct fe_ctx *ctx;
	struct evhttp_request *req;
	struct evhttp_connection *evcon;
	enum fe_jaudit_kind kind;
	uint32_t request_id; /* of the IPC request in flight; 0: none */
	struct event *timer;
	json_t *results; /* verify, checkpoint: filled page by page */
	/* export */
	char tenant[NAME_MAX_LEN + 1];
	uint64_t after;
	int streaming; /* the 200 and its headers are out */
	int64_t before_ms; /* prune */
};

TAILQ_HEAD(fe_jaudit_list, fe_jaudit);

struct fe_journal {
	struct fe_jaudit_list reqs;
	size_t nreqs;
	uint32_t next_id;
};

static const struct {
	const char *name;
	enum fe_jaudit_kind kind;
	enum evhttp_cmd_type method;
} endpoints[] = {
    {"verify", FE_JAUDIT_VERIFY, EVHTTP_REQ_POST},
    {"checkpoint", FE_JAUDIT_CHECKPOINT, EVHTTP_REQ_POST},
    {"pubkey", FE_JAUDIT_PUBKEY, EVHTTP_REQ_GET},
    {"export", FE_JAUDIT_EXPORT, EVHTTP_REQ_GET},
    {"backup", FE_JAUDIT_BACKUP, EVHTTP_REQ_POST},
    {"prune", FE_JAUDIT_PRUNE, EVHTTP_REQ_POST},
};

static void
jaudit_free(struct fe_jaudit *ja)
{
	struct fe_journal *j = ja->ctx->journal;

	TAILQ_REMOVE(&j->reqs, ja, entry);
	j->nreqs--;
	if (ja->evcon != NULL)
		evhttp_connection_set_closecb(ja->evcon, NULL, NULL);
	if (ja->timer != NULL)
		event_free(ja->timer);
	json_decref(ja->results);
	free(ja);
}

/* A JSON error line ends an export whose 200 is already out. */
static void
export_abort(struct fe_jaudit *ja, const char *message)
{
	struct evhttp_request *req = ja->req;
	struct evbuffer *buf;
	json_t *line;
	char *text;

	jaudit_free(ja);
	line = json_pack("{s:{s:s,s:s}}", "error", "code", "unavailable",
	    "message", message);
	text = line != NULL ? json_dumps(line, JSON_COMPACT) : NULL;
	json_decref(line);
	if (text != NULL && (buf = evbuffer_new()) != NULL) {
		evbuffer_add_printf(buf, "%s\n", text);
		evhttp_send_reply_chunk(req, buf);
		evbuffer_free(buf);
	}
	free(text);
	evhttp_send_reply_end(req);
}

static void
jaudit_fail(
    struct fe_jaudit *ja, int status, const char *code, const char *message)
{
	struct evhttp_request *req = ja->req;

	if (ja->streaming) {
		export_abort(ja, message);
		return;
	}
	jaudit_free(ja);
	fe_http_reply_error(req, status, code, message);
}

/* journald's error text: "unknown tenant" is a 404, the rest a 503. */
static void
jaudit_fail_journald(struct fe_jaudit *ja, const char *error)
{
	if (strcmp(error, "unknown tenant") == 0)
		jaudit_fail(ja, 404, "not_found", "unknown tenant");
	else
		jaudit_fail(ja, 503, "unavailable", error);
}

static void
jaudit_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct fe_jaudit *ja = arg;

	log_warn("journald did not answer a journal %s request in time",
	    endpoints[ja->kind].name);
	jaudit_fail(ja, 503, "unavailable", "journald did not answer");
}

static void
jaudit_conn_closed(struct evhttp_connection *evcon, void *arg)
{
	struct fe_jaudit *ja = arg;

	/* The client left first; a late answer finds no request. */
	ja->evcon = NULL;
	jaudit_free(ja);
}

/* Sends ja's next request to journald and arms its timer. */
static int
jaudit_send(
    struct fe_jaudit *ja, enum ipc_type type, const ProtobufCMessage *msg)
{
	struct fe_journal *j = ja->ctx->journal;
	int ms = ja->kind == FE_JAUDIT_VERIFY || ja->kind == FE_JAUDIT_BACKUP ||
			 ja->kind == FE_JAUDIT_PRUNE
		     ? FE_JOURNAL_JOB_TIMEOUT_MS
		     : FE_JOURNAL_TIMEOUT_MS;
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	int rc;

	if (ja->ctx->journald == NULL)
		return -ENOTCONN;
	if (++j->next_id == 0)
		j->next_id = 1;
	ja->request_id = j->next_id;
	if ((rc = ipc_chan_send(
		 ja->ctx->journald, type, ja->request_id, msg, NULL, 0)) < 0)
		return rc;
	return evtimer_add(ja->timer, &tv) == 0 ? 0 : -ENOMEM;
}

/* Request parsing. */

/*
 * The optional {"tenant": NAME} body. Returns 0 with *tenant (NULL when
 * absent), or -1 after answering 400 or 404.
 */
static int
parse_tenant_body(struct fe_ctx *ctx, struct evhttp_request *req, char *tenant,
    size_t size, int required)
{
	struct evbuffer *input = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(input);
	const char *key, *name = NULL, *err;
	json_t *body, *value;
	json_error_t jerr;

	tenant[0] = '\0';
	if (len > FE_HTTP_MAX_BODY) {
		fe_http_reply_error(
		    req, 413, "payload_too_large", "body too large");
		return -1;
	}
	if (len > 0) {
		body = json_loadb((const char *)evbuffer_pullup(input, -1), len,
		    JSON_REJECT_DUPLICATES, &jerr);
		if (body == NULL || !json_is_object(body)) {
			json_decref(body);
			fe_http_reply_error(req, 400, "bad_request",
			    "body must be a JSON object");
			return -1;
		}
		json_object_foreach(body, key, value)
		{
			if (strcmp(key, "tenant") != 0 ||
			    !json_is_string(value)) {
				/* key belongs to body: decide before freeing.
				 */
				err = strcmp(key, "tenant") != 0
					  ? "unknown field"
					  : "tenant must be a string";
				json_decref(body);
				fe_http_reply_error(
				    req, 400, "bad_request", err);
				return -1;
			}
			name = json_string_value(value);
		}
		if (name != NULL && cfg_name_valid(name))
			snprintf(tenant, size, "%s", name);
		json_decref(body);
		if (name != NULL && tenant[0] == '\0') {
			fe_http_reply_error(
			    req, 400, "bad_request", "invalid tenant name");
			return -1;
		}
	}
	if (required && tenant[0] == '\0') {
		fe_http_reply_error(
		    req, 400, "bad_request", "tenant is required");
		return -1;
	}
	if (tenant[0] != '\0' && !fe_tenant_known(ctx, tenant)) {
		fe_http_reply_error(req, 404, "not_found", "unknown tenant");
		return -1;
	}
	return 0;
}

/*
 * The {"tenant": NAME, "before_ms": MS} body of a prune, both required.
 * Returns 0, or -1 after answering 400, 404 or 413.
 */
static int
parse_prune_body(struct fe_ctx *ctx, struct evhttp_request *req, char *tenant,
    size_t size, int64_t *before_ms)
{
	struct evbuffer *input = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(input);
	const char *err = NULL;
	json_t *body, *name, *before;
	json_error_t jerr;

	tenant[0] = '\0';
	*before_ms = 0;
	if (len > FE_HTTP_MAX_BODY) {
		fe_http_reply_error(
		    req, 413, "payload_too_large", "body too large");
		return -1;
	}
	body = len > 0 ? json_loadb((const char *)evbuffer_pullup(input, -1),
			     len, JSON_REJECT_DUPLICATES, &jerr)
		       : NULL;
	name = json_object_get(body, "tenant");
	before = json_object_get(body, "before_ms");
	if (body == NULL || !json_is_object(body))
		err = "body must be a JSON object";
	else if (json_object_size(body) != 2 || name == NULL || before == NULL)
		err = "tenant and before_ms are required, nothing else";
	else if (!json_is_string(name) ||
	    !cfg_name_valid(json_string_value(name)))
		err = "invalid tenant name";
	else if (!json_is_integer(before) || json_integer_value(before) <= 0)
		err = "before_ms must be a positive integer (Unix ms)";
	else {
		snprintf(tenant, size, "%s", json_string_value(name));
		*before_ms = (int64_t)json_integer_value(before);
	}
	json_decref(body);
	if (err != NULL) {
		fe_http_reply_error(req, 400, "bad_request", err);
		return -1;
	}
	if (!fe_tenant_known(ctx, tenant)) {
		fe_http_reply_error(req, 404, "not_found", "unknown tenant");
		return -1;
	}
	return 0;
}

/* ?tenant=NAME&since=SEQ. Returns 0, or -1 after answering 400 or 404. */
static int
parse_export_query(struct fe_ctx *ctx, struct evhttp_request *req, char *tenant,
    size_t size, uint64_t *since)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *query = uri != NULL ? evhttp_uri_get_query(uri) : NULL;
	struct evkeyvalq params;
	struct evkeyval *kv;
	const char *err = NULL;
	char *end;

	tenant[0] = '\0';
	*since = 0;
	TAILQ_INIT(&params);
	if (query != NULL && evhttp_parse_query_str(query, &params) < 0)
		err = "malformed query";
	TAILQ_FOREACH(kv, &params, next)
	{
		if (err != NULL)
			break;
		if (strcmp(kv->key, "tenant") == 0) {
			if (!cfg_name_valid(kv->value))
				err = "invalid tenant name";
			else
				snprintf(tenant, size, "%s", kv->value);
		} else if (strcmp(kv->key, "since") == 0) {
			errno = 0;
			if (kv->value[0] < '0' || kv->value[0] > '9' ||
			    strlen(kv->value) > SINCE_TEXT_MAX ||
			    (*since = strtoull(kv->value, &end, 10),
				errno != 0 || *end != '\0') ||
			    *since > INT64_MAX)
				err = "since must be a chain_seq";
		} else
			err = "unknown query parameter";
	}
	evhttp_clear_headers(&params);
	if (err == NULL && tenant[0] == '\0')
		err = "tenant is required";
	if (err != NULL) {
		fe_http_reply_error(req, 400, "bad_request", err);
		return -1;
	}
	if (!fe_tenant_known(ctx, tenant)) {
		fe_http_reply_error(req, 404, "not_found", "unknown tenant");
		return -1;
	}
	return 0;
}

static int
export_ask(struct fe_jaudit *ja)
{
	Palyra__Ipc__JournalExportRequest er =
	    PALYRA__IPC__JOURNAL_EXPORT_REQUEST__INIT;

	er.tenant = ja->tenant;
	er.after_seq = ja->after;
	er.max_events = 0; /* journald's page size */
	return jaudit_send(ja, IPC_JOURNAL_EXPORT_REQUEST, &er.base);
}

/* The request to journald for a parsed endpoint. Returns 0 or -errno. */
static int
jaudit_start(struct fe_jaudit *ja)
{
	Palyra__Ipc__JournalVerifyRequest vr =
	    PALYRA__IPC__JOURNAL_VERIFY_REQUEST__INIT;
	Palyra__Ipc__JournalCheckpointRequest cr =
	    PALYRA__IPC__JOURNAL_CHECKPOINT_REQUEST__INIT;
	Palyra__Ipc__JournalPubkeyRequest pr =
	    PALYRA__IPC__JOURNAL_PUBKEY_REQUEST__INIT;
	Palyra__Ipc__JournalBackupRequest br =
	    PALYRA__IPC__JOURNAL_BACKUP_REQUEST__INIT;
	Palyra__Ipc__JournalPruneRequest prr =
	    PALYRA__IPC__JOURNAL_PRUNE_REQUEST__INIT;

	switch (ja->kind) {
	case FE_JAUDIT_VERIFY:
		vr.tenant = ja->tenant;
		return jaudit_send(ja, IPC_JOURNAL_VERIFY_REQUEST, &vr.base);
	case FE_JAUDIT_CHECKPOINT:
		cr.tenant = ja->tenant;
		return jaudit_send(
		    ja, IPC_JOURNAL_CHECKPOINT_REQUEST, &cr.base);
	case FE_JAUDIT_PUBKEY:
		return jaudit_send(ja, IPC_JOURNAL_PUBKEY_REQUEST, &pr.base);
	case FE_JAUDIT_EXPORT:
		return export_ask(ja);
	case FE_JAUDIT_BACKUP:
		br.tenant = ja->tenant;
		return jaudit_send(ja, IPC_JOURNAL_BACKUP_REQUEST, &br.base);
	case FE_JAUDIT_PRUNE:
		prr.tenant = ja->tenant;
		prr.before_ms = ja->before_ms;
		return jaudit_send(ja, IPC_JOURNAL_PRUNE_REQUEST, &prr.base);
	}
	return -EINVAL;
}

void
fe_journal_http(
    struct fe_ctx *ctx, struct evhttp_request *req, const char *endpoint)
{
	struct fe_journal *j = ctx->journal;
	struct fe_jaudit *ja;
	char tenant[NAME_MAX_LEN + 1];
	uint64_t since = 0;
	int64_t before_ms = 0;
	size_t e;
	int rc;

	for (e = 0; e < sizeof(endpoints) / sizeof(endpoints[0]); e++)
		if (strcmp(endpoint, endpoints[e].name) == 0)
			break;
	if (e == sizeof(endpoints) / sizeof(endpoints[0])) {
		fe_http_reply_error(req, 404, "not_found", "no such resource");
		return;
	}
	if (evhttp_request_get_command(req) != endpoints[e].method) {
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Allow",
		    endpoints[e].method == EVHTTP_REQ_GET ? "GET" : "POST");
		fe_http_reply_error(
		    req, 405, "method_not_allowed", "method not allowed");
		return;
	}
	if (!ctx->have_keys) {
		fe_http_reply_error(req, 503, "unavailable", "not ready");
		return;
	}
	if (!fe_http_admin_auth(ctx, req))
		return;
	switch (endpoints[e].kind) {
	case FE_JAUDIT_VERIFY:
	case FE_JAUDIT_CHECKPOINT:
	case FE_JAUDIT_BACKUP:
		if (parse_tenant_body(ctx, req, tenant, sizeof(tenant),
			endpoints[e].kind == FE_JAUDIT_BACKUP) < 0)
			return;
		break;
	case FE_JAUDIT_EXPORT:
		if (parse_export_query(
			ctx, req, tenant, sizeof(tenant), &since) < 0)
			return;
		break;
	case FE_JAUDIT_PUBKEY:
		tenant[0] = '\0';
		break;
	case FE_JAUDIT_PRUNE:
		if (parse_prune_body(
			ctx, req, tenant, sizeof(tenant), &before_ms) < 0)
			return;
		break;
	}
	if (ctx->journald == NULL || ctx->stopping) {
		fe_http_reply_error(
		    req, 503, "unavailable", "journal unavailable");
		return;
	}
	if (j == NULL) {
		if ((j = calloc(1, sizeof(*j))) == NULL) {
			fe_http_reply_error(
			    req, 503, "unavailable", "out of memory");
			return;
		}
		TAILQ_INIT(&j->reqs);
		ctx->journal = j;
	}
	if (j->nreqs >= FE_JOURNAL_REQUESTS_MAX) {
		fe_http_reply_error(req, 503, "unavailable",
		    "too many journal requests in progress");
		return;
	}
	if ((ja = calloc(1, sizeof(*ja))) == NULL ||
	    (ja->timer = evtimer_new(ctx->base, jaudit_timeout, ja)) == NULL) {
		free(ja);
		fe_http_reply_error(req, 503, "unavailable", "out of memory");
		return;
	}
	ja->ctx = ctx;
	ja->req = req;
	ja->kind = endpoints[e].kind;
	ja->after = since;
	ja->before_ms = before_ms;
	snprintf(ja->tenant, sizeof(ja->tenant), "%s", tenant);
	TAILQ_INSERT_TAIL(&j->reqs, ja, entry);
	j->nreqs++;
	if ((ja->kind == FE_JAUDIT_VERIFY ||
		ja->kind == FE_JAUDIT_CHECKPOINT) &&
	    (ja->results = json_array()) == NULL) {
		jaudit_fail(ja, 503, "unavailable", "out of memory");
		return;
	}
	if ((rc = jaudit_start(ja)) < 0) {
		jaudit_fail(ja, 503, "unavailable",
		    rc == -ENOBUFS ? "journal busy" : "journal unavailable");
		return;
	}
	ja->evcon = evhttp_request_get_connection(req);
	if (ja->evcon != NULL)
		evhttp_connection_set_closecb(
		    ja->evcon, jaudit_conn_closed, ja);
}

/* Replies. */

/* A JSON string of text from journald, anything but printable ASCII '?'. */
static json_t *
text_json(const char *s, size_t max)
{
	char buf[256];
	size_t i;

	if (max >= sizeof(buf))
		max = sizeof(buf) - 1;
	for (i = 0; s[i] != '\0' && i < max; i++)
		buf[i] =
		    (unsigned char)s[i] >= 0x20 && (unsigned char)s[i] < 0x7f
			? s[i]
			: '?';
	buf[i] = '\0';
	return json_string(buf);
}

static json_t *
hex_json(const ProtobufCBinaryData *b)
{
	char hex[HEX_MAX];

	if (b->len > (sizeof(hex) - 1) / 2)
		return json_null();
	sodium_bin2hex(hex, sizeof(hex), b->data, b->len);
	return json_string(hex);
}

static void
jaudit_finish_json(struct fe_jaudit *ja, json_t *root)
{
	struct evhttp_request *req = ja->req;
	char *text;

	text = root != NULL ? json_dumps(root, JSON_COMPACT) : NULL;
	json_decref(root);
	jaudit_free(ja);
	if (text == NULL) {
		fe_http_reply_error(req, 503, "unavailable", "out of memory");
		return;
	}
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Cache-Control", "no-store");
	fe_http_reply_json(req, 200, text, strlen(text));
	free(text);
}

static json_t *
verify_result_json(const Palyra__Ipc__JournalVerifyResult *r)
{
	if (r->ok)
		return json_pack("{s:s, s:b, s:I, s:I, s:o, s:I}", "tenant",
		    r->tenant, "ok", 1, "events", (json_int_t)r->events,
		    "head_seq", (json_int_t)r->head_seq, "head_hash",
		    hex_json(&r->head_hash), "checkpoint_seq",
		    (json_int_t)r->checkpoint_seq);
	return json_pack("{s:s, s:b, s:I, s:o, s:o, s:o, s:I, s:I}", "tenant",
	    r->tenant, "ok", 0, "broken_seq", (json_int_t)r->broken_seq,
	    "expected", hex_json(&r->expected), "found", hex_json(&r->found),
	    "reason", text_json(r->reason, 200), "events",
	    (json_int_t)r->events, "checkpoint_seq",
	    (json_int_t)r->checkpoint_seq);
}

static void
verify_report(struct fe_jaudit *ja, const Palyra__Ipc__JournalVerifyReport *m)
{
	json_t *v;
	size_t i;

	if (m->error[0] != '\0') {
		jaudit_fail_journald(ja, m->error);
		return;
	}
	for (i = 0; i < m->n_results; i++) {
		if (!cfg_name_valid(m->results[i]->tenant) ||
		    m->results[i]->head_seq > INT64_MAX ||
		    m->results[i]->broken_seq > INT64_MAX ||
		    json_array_size(ja->results) >= CFG_MAX_TENANTS) {
			jaudit_fail(ja, 503, "unavailable",
			    "malformed answer from journald");
			return;
		}
		if ((v = verify_result_json(m->results[i])) == NULL ||
		    json_array_append_new(ja->results, v) < 0) {
			jaudit_fail(ja, 503, "unavailable", "out of memory");
			return;
		}
	}
	if (!m->more)
		jaudit_finish_json(
		    ja, json_pack("{s:O}", "results", ja->results));
}

static void
checkpoint_report(
    struct fe_jaudit *ja, const Palyra__Ipc__JournalCheckpointReport *m)
{
	const Palyra__Ipc__JournalCheckpointInfo *c;
	json_t *v;
	size_t i;

	if (m->error[0] != '\0') {
		jaudit_fail_journald(ja, m->error);
		return;
	}
	for (i = 0; i < m->n_checkpoints; i++) {
		c = m->checkpoints[i];
		if (!cfg_name_valid(c->tenant) || c->chain_seq > INT64_MAX ||
		    json_array_size(ja->results) >= CFG_MAX_TENANTS) {
			jaudit_fail(ja, 503, "unavailable",
			    "malformed answer from journald");
			return;
		}
		v = json_pack("{s:s, s:b, s:I, s:o, s:I, s:o, s:o}", "tenant",
		    c->tenant, "written", c->written, "chain_seq",
		    (json_int_t)c->chain_seq, "hash", hex_json(&c->hash),
		    "ts_ms", (json_int_t)c->ts_ms, "signature",
		    hex_json(&c->signature), "error",
		    c->error[0] != '\0' ? text_json(c->error, 200)
					: json_null());
		if (v == NULL || json_array_append_new(ja->results, v) < 0) {
			jaudit_fail(ja, 503, "unavailable", "out of memory");
			return;
		}
	}
	if (!m->more)
		jaudit_finish_json(
		    ja, json_pack("{s:O}", "checkpoints", ja->results));
}

static void
pubkey_reply(struct fe_jaudit *ja, const Palyra__Ipc__JournalPubkey *m)
{
	if (m->public_key.len != 32) {
		jaudit_fail(ja, 503, "unavailable", "no checkpoint key");
		return;
	}
	jaudit_finish_json(ja, json_pack("{s:s, s:o}", "algorithm", "ed25519",
				   "public_key", hex_json(&m->public_key)));
}

static void
backup_reply(struct fe_jaudit *ja, const Palyra__Ipc__JournalBackupResult *m)
{
	size_t i;

	if (m->error[0] != '\0') {
		jaudit_fail_journald(ja, m->error);
		return;
	}
	for (i = 0; m->file[i] != '\0'; i++)
		if (i >= 256 || (unsigned char)m->file[i] < 0x20 ||
		    (unsigned char)m->file[i] >= 0x7f)
			break;
	if (m->file[i] != '\0' || i == 0 || m->size > INT64_MAX) {
		jaudit_fail(
		    ja, 503, "unavailable", "malformed answer from journald");
		return;
	}
	jaudit_finish_json(
	    ja, json_pack("{s:s, s:s, s:I}", "tenant", ja->tenant, "file",
		    m->file, "size", (json_int_t)m->size));
}

/* A prune anchor as JSON, or null. */
static json_t *
anchor_json(const Palyra__Ipc__JournalAnchor *a)
{
	if (a == NULL || a->chain_seq == 0 || a->chain_seq > INT64_MAX)
		return json_null();
	return json_pack("{s:I, s:o, s:I, s:I, s:o}", "chain_seq",
	    (json_int_t)a->chain_seq, "hash", hex_json(&a->hash), "ts_ms",
	    (json_int_t)a->ts_ms, "before_ms", (json_int_t)a->before_ms,
	    "signature", hex_json(&a->signature));
}

static void
prune_reply(struct fe_jaudit *ja, const Palyra__Ipc__JournalPruneResult *m)
{
	if (m->error[0] != '\0') {
		jaudit_fail_journald(ja, m->error);
		return;
	}
	if (m->events > INT64_MAX || m->runs > INT64_MAX) {
		jaudit_fail(
		    ja, 503, "unavailable", "malformed answer from journald");
		return;
	}
	jaudit_finish_json(ja,
	    json_pack("{s:s, s:I, s:I, s:o}", "tenant", ja->tenant, "events",
		(json_int_t)m->events, "runs", (json_int_t)m->runs, "anchor",
		anchor_json(m->anchor)));
}

/* One exported event as an NDJSON line into out. Returns 0 or -1. */
static int
export_line(struct evbuffer *out, const Palyra__Ipc__JournalEventRow *r)
{
	Palyra__V1__RunEvent *ev;
	json_t *line, *event = NULL;
	ProtobufCBinaryData payload = r->payload;
	char *text, *b64;
	size_t size;
	int rc = -1;

	size = sodium_base64_ENCODED_LEN(
	    payload.len, sodium_base64_VARIANT_ORIGINAL);
	if ((b64 = malloc(size)) == NULL)
		return -1;
	sodium_bin2base64(b64, size, payload.data, payload.len,
	    sodium_base64_VARIANT_ORIGINAL);
	/* A payload that does not decode is exported all the same: its
	 * bytes are in payload_b64, its event is null. */
	if ((ev = palyra__v1__run_event__unpack(
		 NULL, payload.len, payload.data)) != NULL) {
		event = fe_pb_json(&ev->base);
		palyra__v1__run_event__free_unpacked(ev, NULL);
	}
	line = json_pack("{s:I, s:o, s:I, s:I, s:o, s:o, s:s, s:o}",
	    "chain_seq", (json_int_t)r->chain_seq, "run_id",
	    text_json(r->run_id, 200), "run_seq", (json_int_t)r->run_seq,
	    "ts_ms", (json_int_t)r->ts_ms, "kind", text_json(r->kind, 64),
	    "event", event != NULL ? event : json_null(), "payload_b64", b64,
	    "hash", hex_json(&r->hash));
	free(b64);
	if (line != NULL && (text = json_dumps(line,
				 JSON_COMPACT | JSON_PRESERVE_ORDER)) != NULL) {
		rc = evbuffer_add_printf(out, "%s\n", text) < 0 ? -1 : 0;
		free(text);
	}
	json_decref(line);
	return rc;
}

static void
export_written(struct evhttp_connection *evcon, void *arg)
{
	struct fe_jaudit *ja = arg;
	int rc;

	if (ja->request_id != 0)
		return; /* a page is already asked for */
	if ((rc = export_ask(ja)) < 0)
		export_abort(ja,
		    rc == -ENOBUFS ? "journal busy" : "journal unavailable");
}

static void
export_page(struct fe_jaudit *ja, const Palyra__Ipc__JournalExportPage *m)
{
	struct evhttp_request *req = ja->req;
	struct evbuffer *buf;
	size_t i;

	if (m->error[0] != '\0') {
		jaudit_fail_journald(ja, m->error);
		return;
	}
	for (i = 0; i < m->n_events; i++)
		if (m->events[i]->chain_seq <= ja->after ||
		    m->events[i]->chain_seq > INT64_MAX ||
		    m->events[i]->run_seq > INT64_MAX) {
			jaudit_fail(ja, 503, "unavailable",
			    "malformed answer from journald");
			return;
		}
	if ((buf = evbuffer_new()) == NULL) {
		jaudit_fail(ja, 503, "unavailable", "out of memory");
		return;
	}
	/* A pruned journal: the first line is the anchor the chain of the
	 * lines that follow continues from. */
	if (m->anchor != NULL && m->anchor->chain_seq > ja->after) {
		json_t *line =
		    json_pack("{s:o}", "anchor", anchor_json(m->anchor));
		char *text = line != NULL
				 ? json_dumps(line,
				       JSON_COMPACT | JSON_PRESERVE_ORDER)
				 : NULL;

		json_decref(line);
		if (text == NULL ||
		    evbuffer_add_printf(buf, "%s\n", text) < 0) {
			free(text);
			evbuffer_free(buf);
			jaudit_fail(ja, 503, "unavailable", "out of memory");
			return;
		}
		free(text);
	}
	for (i = 0; i < m->n_events; i++)
		if (export_line(buf, m->events[i]) < 0) {
			evbuffer_free(buf);
			jaudit_fail(ja, 503, "unavailable", "out of memory");
			return;
		}
	if (!ja->streaming) {
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Content-Type", "application/x-ndjson");
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Cache-Control", "no-store");
		evhttp_send_reply_start(req, 200, "OK");
		ja->streaming = 1;
	}
	if (m->n_events > 0)
		ja->after = m->events[m->n_events - 1]->chain_seq;
	if (!m->more || m->n_events == 0) {
		if (evbuffer_get_length(buf) > 0)
			evhttp_send_reply_chunk(req, buf);
		evbuffer_free(buf);
		jaudit_free(ja);
		evhttp_send_reply_end(req);
		return;
	}
	/* The next page is asked for once this one left the buffer. */
	evhttp_send_reply_chunk_with_cb(req, buf, export_written, ja);
	evbuffer_free(buf);
}

int
fe_journal_reply(struct fe_ctx *ctx, const struct ipc_msg *m)
{
	static const enum fe_jaudit_kind kinds[IPC_TYPE_MAX] = {
	    [IPC_JOURNAL_VERIFY_REPORT] = FE_JAUDIT_VERIFY,
	    [IPC_JOURNAL_CHECKPOINT_REPORT] = FE_JAUDIT_CHECKPOINT,
	    [IPC_JOURNAL_PUBKEY] = FE_JAUDIT_PUBKEY,
	    [IPC_JOURNAL_EXPORT_PAGE] = FE_JAUDIT_EXPORT,
	    [IPC_JOURNAL_BACKUP_RESULT] = FE_JAUDIT_BACKUP,
	    [IPC_JOURNAL_PRUNE_RESULT] = FE_JAUDIT_PRUNE,
	};
	struct fe_jaudit *ja;

	if (!(FE_JOURNAL_REPLY_TYPES & IPC_TYPE_BIT(m->hdr.type)))
		return 0;
	if (ctx->journal == NULL)
		return 1;
	TAILQ_FOREACH(ja, &ctx->journal->reqs, entry)
	if (ja->request_id == m->hdr.request_id && ja->request_id != 0)
		break;
	/* Gone (timed out, client left): the answer is dropped. */
	if (ja == NULL || ja->kind != kinds[m->hdr.type])
		return 1;
	/* A verification keeps its request id across its reports. */
	if (ja->kind != FE_JAUDIT_VERIFY && ja->kind != FE_JAUDIT_CHECKPOINT) {
		ja->request_id = 0;
		evtimer_del(ja->timer);
	}
	switch (ja->kind) {
	case FE_JAUDIT_VERIFY:
		verify_report(
		    ja, (const Palyra__Ipc__JournalVerifyReport *)m->msg);
		break;
	case FE_JAUDIT_CHECKPOINT:
		checkpoint_report(
		    ja, (const Palyra__Ipc__JournalCheckpointReport *)m->msg);
		break;
	case FE_JAUDIT_PUBKEY:
		pubkey_reply(ja, (const Palyra__Ipc__JournalPubkey *)m->msg);
		break;
	case FE_JAUDIT_EXPORT:
		export_page(ja, (const Palyra__Ipc__JournalExportPage *)m->msg);
		break;
	case FE_JAUDIT_BACKUP:
		backup_reply(
		    ja, (const Palyra__Ipc__JournalBackupResult *)m->msg);
		break;
	case FE_JAUDIT_PRUNE:
		prune_reply(
		    ja, (const Palyra__Ipc__JournalPruneResult *)m->msg);
		break;
	}
	return 1;
}

void
fe_journal_peer_lost(struct fe_ctx *ctx)
{
	struct fe_jaudit *ja, *next;

	if (ctx->journal == NULL)
		return;
	/* Those between two export pages learn it when they ask again. */
	for (ja = TAILQ_FIRST(&ctx->journal->reqs); ja != NULL; ja = next) {
		next = TAILQ_NEXT(ja, entry);
		if (ja->request_id != 0)
			jaudit_fail(
			    ja, 503, "unavailable", "journal unavailable");
	}
}

void
fe_journal_shutdown(struct fe_ctx *ctx)
{
	struct fe_jaudit *ja;

	if (ctx->journal == NULL)
		return;
	while ((ja = TAILQ_FIRST(&ctx->journal->reqs)) != NULL)
		jaudit_free(ja);
	free(ctx->journal);
	ctx->journal = NULL;
}
