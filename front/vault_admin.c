/*
 * vault_admin.c: /admin/v1/vault, the host vault (secrets of scope host,
 * for `api-key vault:host/NAME`) and the rotation of master.key, answered
 * by the supervisor (supervisor/vault_admin.c), which alone holds the keys.
 *
 *   GET    /admin/v1/vault                 metadata of every host secret
 *   PUT    /admin/v1/vault/NAME            {"value": "...",
 *                                           "description": "..."}
 *   DELETE /admin/v1/vault/NAME
 *   POST   /admin/v1/vault/rotate-master   a new master.key
 *
 * Process: palyra-front. Touches its HTTP connections and the supervisor
 * channel: each request is one IPC_VAULT_ADMIN, answered by one
 * IPC_VAULT_ADMIN_REPLY with the same request id. Requests waiting are
 * bounded (FE_TENANT_REQUESTS_MAX), end with 503 after
 * FE_TENANT_TIMEOUT_MS and are freed when their client leaves. A PUT's
 * body is decoded here and nowhere else; the value in it is wiped (the
 * request body and the decoded JSON string) once sent, and never logged.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>
#include <sodium.h>

#include "config.h"
#include "front.h"
#include "log.h"

struct fe_vault_req {
	TAILQ_ENTRY(fe_vault_req) entry;
	struct fe_vault_reqs *set;
	struct evhttp_request *req;
	struct evhttp_connection *evcon;
	uint32_t request_id;
	int op;
	struct event *timer;
};

struct fe_vault_reqs {
	TAILQ_HEAD(, fe_vault_req) reqs;
	size_t n;
	uint32_t next_id;
};

static void
vreq_free(struct fe_vault_req *vr)
{
	TAILQ_REMOVE(&vr->set->reqs, vr, entry);
	vr->set->n--;
	if (vr->evcon != NULL)
		evhttp_connection_set_closecb(vr->evcon, NULL, NULL);
	if (vr->timer != NULL)
		event_free(vr->timer);
	free(vr);
}

static void
vreq_fail(
    struct fe_vault_req *vr, int status, const char *code, const char *message)
{
	struct evhttp_request *req = vr->req;

	vreq_free(vr);
	fe_http_reply_error(req, status, code, message);
}

static void
vreq_timeout(evutil_socket_t fd, short what, void *arg)
{
	log_warn("the supervisor did not answer a vault request in %d ms",
	    FE_TENANT_TIMEOUT_MS);
	vreq_fail(arg, 503, "unavailable", "the supervisor did not answer");
}

static void
vreq_conn_closed(struct evhttp_connection *evcon, void *arg)
{
	struct fe_vault_req *vr = arg;

	vr->evcon = NULL;
	vreq_free(vr);
}

/* Sends va to the supervisor and waits for its answer. */
static void
vreq_send(
    struct fe_ctx *ctx, struct evhttp_request *req, Palyra__Ipc__VaultAdmin *va)
{
	struct timeval tv = {
	    FE_TENANT_TIMEOUT_MS / 1000, (FE_TENANT_TIMEOUT_MS % 1000) * 1000};
	struct fe_vault_reqs *set = ctx->vault_reqs;
	struct fe_vault_req *vr;
	int rc;

	if (ctx->parent == NULL || ctx->stopping) {
		fe_http_reply_error(
		    req, 503, "unavailable", "supervisor unavailable");
		return;
	}
	if (set == NULL) {
		if ((set = calloc(1, sizeof(*set))) == NULL) {
			fe_http_reply_error(
			    req, 503, "unavailable", "out of memory");
			return;
		}
		TAILQ_INIT(&set->reqs);
		ctx->vault_reqs = set;
	}
	if (set->n >= FE_TENANT_REQUESTS_MAX) {
		fe_http_reply_error(req, 503, "unavailable",
		    "too many vault requests in progress");
		return;
	}
	if ((vr = calloc(1, sizeof(*vr))) == NULL ||
	    (vr->timer = evtimer_new(ctx->base, vreq_timeout, vr)) == NULL) {
		free(vr);
		fe_http_reply_error(req, 503, "unavailable", "out of memory");
		return;
	}
	vr->set = set;
	vr->req = req;
	vr->op = va->op;
	if (++set->next_id == 0)
		set->next_id = 1;
	vr->request_id = set->next_id;
	TAILQ_INSERT_TAIL(&set->reqs, vr, entry);
	set->n++;
	rc = ipc_chan_send(
	    ctx->parent, IPC_VAULT_ADMIN, vr->request_id, &va->base, NULL, 0);
	if (rc < 0 || evtimer_add(vr->timer, &tv) < 0) {
		vreq_fail(vr, 503, "unavailable",
		    rc == -ENOBUFS ? "supervisor busy"
				   : "supervisor unavailable");
		return;
	}
	vr->evcon = evhttp_request_get_connection(req);
	if (vr->evcon != NULL)
		evhttp_connection_set_closecb(vr->evcon, vreq_conn_closed, vr);
}

static json_t *
meta_json(const Palyra__V1__SecretMeta *m)
{
	return json_pack("{s:s, s:I, s:I, s:s, s:I, s:I, s:s}", "name",
	    m->name != NULL ? m->name : "", "version", (json_int_t)m->version,
	    "size", (json_int_t)m->size, "description",
	    m->description != NULL ? m->description : "", "created_unix_ms",
	    (json_int_t)m->created_unix_ms, "updated_unix_ms",
	    (json_int_t)m->updated_unix_ms, "updated_by",
	    m->updated_by != NULL ? m->updated_by : "");
}

static void
reply_root(struct evhttp_request *req, json_t *root)
{
	char *text;

	text = root != NULL ? json_dumps(root, JSON_COMPACT) : NULL;
	json_decref(root);
	if (text == NULL) {
		fe_http_reply_error(req, 503, "unavailable", "out of memory");
		return;
	}
	fe_http_reply_json(req, 200, text, strlen(text));
	free(text);
}

static const struct {
	uint32_t grpc;
	int http;
	const char *code;
} status_map[] = {
    {GRPC_STATUS_INVALID_ARGUMENT, 400, "bad_request"},
    {GRPC_STATUS_NOT_FOUND, 404, "not_found"},
    {GRPC_STATUS_FAILED_PRECONDITION, 409, "conflict"},
    {GRPC_STATUS_RESOURCE_EXHAUSTED, 429, "too_many_requests"},
    {GRPC_STATUS_UNAVAILABLE, 503, "unavailable"},
};

int
fe_vault_admin_reply(struct fe_ctx *ctx, uint32_t request_id,
    const Palyra__Ipc__VaultAdminReply *r)
{
	struct fe_vault_req *vr;
	struct evhttp_request *req;
	char message[256];
	json_t *root = NULL, *list, *m;
	size_t i;
	int op;

	if (ctx->vault_reqs == NULL)
		return 0;
	TAILQ_FOREACH(vr, &ctx->vault_reqs->reqs, entry)
	if (vr->request_id == request_id)
		break;
	if (vr == NULL)
		return 0; /* timed out, or its client left */
	/* The supervisor's message, printable ASCII only. */
	for (i = 0; r->message != NULL && r->message[i] != '\0' &&
		    i < sizeof(message) - 1;
	     i++)
		message[i] = (unsigned char)r->message[i] >= 0x20 &&
				     (unsigned char)r->message[i] < 0x7f
				 ? r->message[i]
				 : '?';
	message[i] = '\0';
	if (r->code != GRPC_STATUS_OK) {
		for (i = 0; i < sizeof(status_map) / sizeof(status_map[0]); i++)
			if (status_map[i].grpc == r->code)
				break;
		if (i < sizeof(status_map) / sizeof(status_map[0]))
			vreq_fail(vr, status_map[i].http, status_map[i].code,
			    message[0] != '\0' ? message : "error");
		else
			vreq_fail(vr, 500, "internal",
			    message[0] != '\0' ? message : "internal error");
		return 0;
	}
	req = vr->req;
	op = vr->op;
	vreq_free(vr);
	switch (op) {
	case PALYRA__IPC__VAULT_ADMIN__OP__LIST:
		if ((list = json_array()) == NULL)
			break;
		for (i = 0; i < r->n_secrets; i++)
			if ((m = meta_json(r->secrets[i])) == NULL ||
			    json_array_append_new(list, m) < 0) {
				json_decref(list);
				list = NULL;
				break;
			}
		if (list != NULL)
			root = json_pack("{s:o}", "secrets", list);
		break;
	case PALYRA__IPC__VAULT_ADMIN__OP__PUT:
		if (r->n_secrets == 1)
			root = meta_json(r->secrets[0]);
		break;
	case PALYRA__IPC__VAULT_ADMIN__OP__DELETE:
		root = json_pack("{s:b}", "deleted", 1);
		break;
	default:
		root = json_pack("{s:b, s:I}", "rotated", 1, "rewrapped",
		    (json_int_t)r->rewrapped);
		break;
	}
	reply_root(req, root);
	return 0;
}

/* Wipes the request body, which may hold a value. */
static void
body_wipe(struct evhttp_request *req)
{
	struct evbuffer *input = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(input);
	unsigned char *p;

	if (len > 0 && (p = evbuffer_pullup(input, -1)) != NULL)
		sodium_memzero(p, len);
}

/* PUT: the JSON body into va and answered; or 400/413 answered. */
static void
put_send(
    struct fe_ctx *ctx, struct evhttp_request *req, Palyra__Ipc__VaultAdmin *va)
{
	struct evbuffer *input = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(input), vlen = 0;
	const char *key, *why = NULL;
	json_error_t jerr;
	json_t *body, *v, *value = NULL;

	if (len > FE_HTTP_MAX_BODY) {
		body_wipe(req);
		fe_http_reply_error(
		    req, 413, "payload_too_large", "body too large");
		return;
	}
	body = json_loadb((const char *)evbuffer_pullup(input, -1), len,
	    JSON_REJECT_DUPLICATES, &jerr);
	body_wipe(req);
	if (body == NULL || !json_is_object(body)) {
		json_decref(body);
		fe_http_reply_error(req, 400, "bad_request",
		    "body must be a JSON object {\"value\": \"...\"}");
		return;
	}
	json_object_foreach(body, key, v)
	{
		if (strcmp(key, "value") == 0) {
			if (!json_is_string(v)) {
				why = "value must be a string";
				break;
			}
			value = v;
			vlen = json_string_length(v);
		} else if (strcmp(key, "description") == 0) {
			if (!json_is_string(v)) {
				why = "description must be a string";
				break;
			}
			va->description = (char *)json_string_value(v);
		} else {
			/* The key is the client's: it is not echoed. */
			why = "unknown field";
			break;
		}
	}
	if (why == NULL && value == NULL)
		why = "value is required";
	else if (why == NULL && (vlen == 0 || vlen > 64 * 1024))
		why = "value must be 1 byte to 64 KiB";
	if (why == NULL) {
		va->value.data = (uint8_t *)json_string_value(value);
		va->value.len = vlen;
		vreq_send(ctx, req, va);
	} else
		fe_http_reply_error(req, 400, "bad_request", why);
	if (value != NULL)
		sodium_memzero((char *)json_string_value(value), vlen);
	json_decref(body);
}

static void
method_not_allowed(struct evhttp_request *req, const char *allow)
{
	evhttp_add_header(
	    evhttp_request_get_output_headers(req), "Allow", allow);
	fe_http_reply_error(
	    req, 405, "method_not_allowed", "method not allowed");
}

void
fe_vault_admin_http(
    struct fe_ctx *ctx, struct evhttp_request *req, const char *item)
{
	Palyra__Ipc__VaultAdmin va = PALYRA__IPC__VAULT_ADMIN__INIT;
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	int rotate = item != NULL && strcmp(item, "rotate-master") == 0;

	if (item == NULL && cmd != EVHTTP_REQ_GET) {
		method_not_allowed(req, "GET");
		return;
	}
	if (item != NULL && cmd != EVHTTP_REQ_PUT && cmd != EVHTTP_REQ_DELETE &&
	    !(rotate && cmd == EVHTTP_REQ_POST)) {
		method_not_allowed(
		    req, rotate ? "POST, PUT, DELETE" : "PUT, DELETE");
		return;
	}
	if (!ctx->have_keys) {
		fe_http_reply_error(req, 503, "unavailable", "not ready");
		return;
	}
	if (!fe_http_admin_auth(ctx, req)) {
		body_wipe(req);
		return;
	}
	va.name = "";
	va.description = "";
	if (item == NULL) {
		va.op = PALYRA__IPC__VAULT_ADMIN__OP__LIST;
		vreq_send(ctx, req, &va);
		return;
	}
	if (rotate && cmd == EVHTTP_REQ_POST) {
		va.op = PALYRA__IPC__VAULT_ADMIN__OP__ROTATE_MASTER;
		vreq_send(ctx, req, &va);
		return;
	}
	if (!cfg_vault_name_valid(item)) {
		body_wipe(req);
		fe_http_reply_error(req, 400, "bad_request",
		    "invalid secret "
		    "name: 1 to 128 of A-Z a-z 0-9 . _ -, not starting with .");
		return;
	}
	va.name = (char *)item;
	if (cmd == EVHTTP_REQ_DELETE) {
		va.op = PALYRA__IPC__VAULT_ADMIN__OP__DELETE;
		vreq_send(ctx, req, &va);
		return;
	}
	va.op = PALYRA__IPC__VAULT_ADMIN__OP__PUT;
	put_send(ctx, req, &va);
}

void
fe_vault_admin_shutdown(struct fe_ctx *ctx)
{
	struct fe_vault_req *vr;

	if (ctx->vault_reqs == NULL)
		return;
	while ((vr = TAILQ_FIRST(&ctx->vault_reqs->reqs)) != NULL)
		vreq_free(vr);
	free(ctx->vault_reqs);
	ctx->vault_reqs = NULL;
}
