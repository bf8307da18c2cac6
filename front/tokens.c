/*
 * tokens.c: GET /admin/v1/tokens (a page of the tenant tokens, never a
 * secret nor a hash) and DELETE /admin/v1/tokens/TOKEN_ID (revocation),
 * both answered by journald; POST /admin/v1/tokens is in http.c.
 *
 * Process: palyra-front. Touches its HTTP connections and the journald
 * channel through peer.c. Revocation takes effect at once because the
 * front keeps no token cache: every RunStream looks its token up.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "config.h"
#include "front.h"
#include "log.h"

#define FE_TOKEN_ID_MAX 64 /* journald's bound on a token id */

/* One listing or revocation waiting for journald. */
struct fe_tokreq {
	struct fe_ctx *ctx;
	struct evhttp_request *req;
	struct evhttp_connection *evcon;
	struct fe_jreq *jreq;
};

static void
tokreq_conn_closed(struct evhttp_connection *evcon, void *arg)
{
	struct fe_tokreq *tr = arg;

	/* The client left before journald answered: forget the request. */
	fe_jreq_abandon(tr->jreq);
	free(tr);
}

/* Sends msg to journald for req; on failure answers req itself. */
static void
tokreq_send(struct fe_ctx *ctx, struct evhttp_request *req,
    enum ipc_type type, const ProtobufCMessage *msg, enum fe_jreq_kind kind)
{
	struct fe_tokreq *tr;
	int rc;

	if (ctx->journald == NULL) {
		fe_http_reply_error(
		    req, 503, "unavailable", "journal unavailable");
		return;
	}
	if ((tr = calloc(1, sizeof(*tr))) == NULL) {
		fe_http_reply_error(req, 503, "unavailable", "out of memory");
		return;
	}
	tr->ctx = ctx;
	tr->req = req;
	tr->evcon = evhttp_request_get_connection(req);
	rc = fe_journal_request(ctx, type, msg, kind, tr, &tr->jreq);
	if (rc < 0) {
		free(tr);
		fe_http_reply_error(req, 503, "unavailable",
		    rc == -ENOBUFS ? "journal busy" : "journal unavailable");
		return;
	}
	if (tr->evcon != NULL)
		evhttp_connection_set_closecb(
		    tr->evcon, tokreq_conn_closed, tr);
}

/* Detaches tr from its connection and returns its request. */
static struct evhttp_request *
tokreq_take(struct fe_tokreq *tr)
{
	struct evhttp_request *req = tr->req;

	if (tr->evcon != NULL)
		evhttp_connection_set_closecb(tr->evcon, NULL, NULL);
	free(tr);
	return req;
}

static int
token_id_plain(const char *id)
{
	size_t i;

	for (i = 0; id[i] != '\0'; i++)
		if (i >= FE_TOKEN_ID_MAX ||
		    !((id[i] >= 'a' && id[i] <= 'z') ||
			(id[i] >= 'A' && id[i] <= 'Z') ||
			(id[i] >= '0' && id[i] <= '9') || id[i] == '_' ||
			id[i] == '-'))
			return 0;
	return i > 0;
}

/* GET /admin/v1/tokens[?tenant=T][&after=TOKEN_ID] */
void
fe_tokens_list(struct fe_ctx *ctx, struct evhttp_request *req)
{
	Palyra__Ipc__TokenListRequest lr =
	    PALYRA__IPC__TOKEN_LIST_REQUEST__INIT;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *query = uri != NULL ? evhttp_uri_get_query(uri) : NULL;
	struct evkeyvalq params;
	struct evkeyval *kv;
	char tenant[NAME_MAX_LEN + 1] = "", after[FE_TOKEN_ID_MAX + 1] = "";
	const char *bad = NULL;

	if (!ctx->have_keys) {
		fe_http_reply_error(req, 503, "unavailable", "not ready");
		return;
	}
	if (!fe_http_admin_auth(ctx, req))
		return;
	TAILQ_INIT(&params);
	if (query != NULL && evhttp_parse_query_str(query, &params) < 0)
		bad = "malformed query";
	TAILQ_FOREACH(kv, &params, next) {
		if (bad != NULL)
			break;
		if (strcmp(kv->key, "tenant") == 0 && tenant[0] == '\0' &&
		    cfg_name_valid(kv->value))
			snprintf(tenant, sizeof(tenant), "%s", kv->value);
		else if (strcmp(kv->key, "after") == 0 && after[0] == '\0' &&
		    token_id_plain(kv->value))
			snprintf(after, sizeof(after), "%s", kv->value);
		else
			bad = "unknown, repeated or invalid query parameter";
	}
	evhttp_clear_headers(&params);
	if (bad != NULL) {
		fe_http_reply_error(req, 400, "bad_request", bad);
		return;
	}
	lr.tenant = tenant;
	lr.after_token_id = after;
	tokreq_send(ctx, req, IPC_TOKEN_LIST_REQUEST, &lr.base,
	    FE_JREQ_TOKEN_LIST);
}

void
fe_tokens_listed(struct fe_tokreq *tr, const Palyra__Ipc__TokenList *list)
{
	struct evhttp_request *req = tokreq_take(tr);
	json_t *root, *arr, *o;
	char *text;
	size_t i;

	if (list == NULL || !list->ok) {
		fe_http_reply_error(
		    req, 503, "unavailable", "the tokens could not be read");
		return;
	}
	root = json_object();
	arr = json_array();
	if (root == NULL || arr == NULL ||
	    json_object_set_new(root, "tokens", arr) < 0) {
		json_decref(root);
		fe_http_reply_error(req, 503, "unavailable", "out of memory");
		return;
	}
	for (i = 0; i < list->n_tokens; i++) {
		const Palyra__Ipc__TokenRecord *r = list->tokens[i];

		o = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:b}",
		    "token_id", r->token_id, "tenant", r->tenant, "principal",
		    r->principal, "role", r->role, "created_unix",
		    (json_int_t)r->created_unix, "expires_unix",
		    (json_int_t)r->expires_unix, "revoked", (int)r->revoked);
		if (o == NULL || json_array_append_new(arr, o) < 0) {
			json_decref(root);
			fe_http_reply_error(
			    req, 503, "unavailable", "out of memory");
			return;
		}
	}
	/* The cursor of the next page: the last id of this one. */
	if (list->more && list->n_tokens > 0)
		json_object_set_new(root, "next_after",
		    json_string(list->tokens[list->n_tokens - 1]->token_id));
	text = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	if (text == NULL) {
		fe_http_reply_error(req, 503, "unavailable", "out of memory");
		return;
	}
	fe_http_reply_json(req, 200, text, strlen(text));
	free(text);
}

/* DELETE /admin/v1/tokens/TOKEN_ID; id is the path after the slash. */
void
fe_tokens_revoke(struct fe_ctx *ctx, struct evhttp_request *req,
    const char *id)
{
	Palyra__Ipc__TokenRevoke rv = PALYRA__IPC__TOKEN_REVOKE__INIT;
	char token_id[FE_TOKEN_ID_MAX + 1];

	if (evhttp_request_get_command(req) != EVHTTP_REQ_DELETE) {
		evhttp_add_header(
		    evhttp_request_get_output_headers(req), "Allow", "DELETE");
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
	if (!token_id_plain(id)) {
		fe_http_reply_error(req, 404, "not_found", "no such token");
		return;
	}
	snprintf(token_id, sizeof(token_id), "%s", id);
	rv.token_id = token_id;
	tokreq_send(ctx, req, IPC_TOKEN_REVOKE, &rv.base, FE_JREQ_TOKEN_REVOKE);
}

void
fe_tokens_revoked(
    struct fe_tokreq *tr, const Palyra__Ipc__TokenRevoked *revoked)
{
	struct evhttp_request *req = tokreq_take(tr);
	static const char ok[] = "{\"revoked\":true}";

	if (revoked == NULL || !revoked->ok)
		fe_http_reply_error(req, 503, "unavailable",
		    "the token could not be revoked");
	else if (!revoked->found)
		fe_http_reply_error(req, 404, "not_found", "no such token");
	else
		fe_http_reply_json(req, 200, ok, sizeof(ok) - 1);
}
