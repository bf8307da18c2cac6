/*
 * http.c: the HTTP/1.1 surface of palyra-front on evhttp (HTTPS through
 * tls.c when the listener has tls): /healthz, /metrics (metrics.c) and the
 * admin API (POST /admin/v1/tokens; listing and revocation are in
 * tokens.c, /admin/v1/processes in processes.c), the admin token check
 * with its rate limit (authfail.c), JSON bodies via jansson, JSON errors.
 *
 * Process: palyra-front. Touches the HTTP listening socket (fd 5) and its
 * connections, and journald through peer.c. A new token exists in clear
 * only in one struct fe_http_token, wiped once the reply is written.
 */
#include <sys/socket.h>

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <jansson.h>
#include <sodium.h>

#include "config.h"
#include "front.h"
#include "log.h"

#define FE_TOKEN_TEXT_MAX 64
#define FE_TOKEN_ID_TEXT 17
#define FE_TOKEN_REPLY_MAX 512

/* One token creation waiting for journald. */
struct fe_http_token {
	struct fe_ctx *ctx;
	struct evhttp_request *req; /* NULL once the client left */
	struct evhttp_connection *evcon;
	struct fe_jreq *jreq;
	char token[FE_TOKEN_TEXT_MAX];
	char token_id[FE_TOKEN_ID_TEXT];
	char tenant[NAME_MAX_LEN + 1];
	char principal[NAME_MAX_LEN + 1];
	char role[FE_ROLE_MAX];
	int64_t expires_unix; /* 0: never */
	char reply[FE_TOKEN_REPLY_MAX];
};

static void
token_free(struct fe_http_token *tok)
{
	sodium_memzero(tok, sizeof(*tok));
	free(tok);
}

static void
reply_json_text(
    struct evhttp_request *req, int status, const char *text, size_t len)
{
	struct evbuffer *body;

	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", "application/json");
	body = evbuffer_new();
	if (body == NULL) {
		evhttp_send_error(req, 500, NULL);
		return;
	}
	evbuffer_add(body, text, len);
	evhttp_send_reply(req, status, NULL, body);
	evbuffer_free(body);
}

static void
reply_error(struct evhttp_request *req, int status, const char *code,
    const char *message)
{
	json_t *obj;
	char *text;

	obj = json_pack(
	    "{s:{s:s,s:s}}", "error", "code", code, "message", message);
	text = obj != NULL ? json_dumps(obj, JSON_COMPACT) : NULL;
	json_decref(obj);
	if (text == NULL) {
		evhttp_send_error(req, 500, NULL);
		return;
	}
	if (status == 401)
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "WWW-Authenticate", "Bearer");
	reply_json_text(req, status, text, strlen(text));
	free(text);
}

static void
method_not_allowed(struct evhttp_request *req, const char *allow)
{
	evhttp_add_header(
	    evhttp_request_get_output_headers(req), "Allow", allow);
	reply_error(req, 405, "method_not_allowed", "method not allowed");
}

static void
healthz(struct fe_ctx *ctx, struct evhttp_request *req)
{
	static const char ok[] = "{\"status\":\"ok\"}";
	static const char down[] = "{\"status\":\"unavailable\"}";
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);

	if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
		method_not_allowed(req, "GET, HEAD");
		return;
	}
	if (ctx->journald != NULL)
		reply_json_text(req, 200, ok, sizeof(ok) - 1);
	else
		reply_json_text(req, 503, down, sizeof(down) - 1);
}

static void
token_reply_done(const void *data, size_t len, void *arg)
{
	token_free(arg);
}

static void
token_conn_closed(struct evhttp_connection *evcon, void *arg)
{
	struct fe_http_token *tok = arg;

	/* The client left before journald answered: forget the request. */
	fe_jreq_abandon(tok->jreq);
	token_free(tok);
}

void
fe_http_token_stored(
    struct fe_http_token *tok, const Palyra__Ipc__TokenStored *stored)
{
	struct evbuffer *body;
	int len;

	tok->jreq = NULL;
	evhttp_connection_set_closecb(tok->evcon, NULL, NULL);
	if (stored == NULL || !stored->ok) {
		if (stored != NULL)
			log_warn("journald could not store a token for "
				 "tenant %s",
			    tok->tenant);
		reply_error(tok->req, 503, "unavailable",
		    "the token could not be stored");
		token_free(tok);
		return;
	}
	/* Every value is a checked name or our own encoding: no escaping. */
	len = snprintf(tok->reply, sizeof(tok->reply),
	    "{\"token\":\"%s\",\"token_id\":\"%s\",\"tenant\":\"%s\","
	    "\"principal\":\"%s\",\"role\":\"%s\",\"expires_unix\":%lld}",
	    tok->token, tok->token_id, tok->tenant, tok->principal, tok->role,
	    (long long)tok->expires_unix);
	sodium_memzero(tok->token, sizeof(tok->token));
	body = evbuffer_new();
	if (body == NULL || len < 0 || (size_t)len >= sizeof(tok->reply)) {
		if (body != NULL)
			evbuffer_free(body);
		evhttp_send_error(tok->req, 500, NULL);
		token_free(tok);
		return;
	}
	evhttp_add_header(evhttp_request_get_output_headers(tok->req),
	    "Content-Type", "application/json");
	evhttp_add_header(evhttp_request_get_output_headers(tok->req),
	    "Cache-Control", "no-store");
	/*
	 * The reply is referenced, not copied, so that the token is wiped
	 * (with tok) as soon as libevent is done writing it.
	 */
	if (evbuffer_add_reference(
		body, tok->reply, (size_t)len, token_reply_done, tok) < 0) {
		evbuffer_free(body);
		evhttp_send_error(tok->req, 500, NULL);
		token_free(tok);
		return;
	}
	log_info("token %s created for tenant %s principal %s role %s",
	    tok->token_id, tok->tenant, tok->principal, tok->role);
	evhttp_send_reply(tok->req, 201, NULL, body);
	evbuffer_free(body);
}

/* Reads one optional string member; returns 0, or -EINVAL if not a string. */
static int
member_string(json_t *obj, const char *key, const char **out)
{
	json_t *v = json_object_get(obj, key);

	if (v == NULL)
		return 0;
	if (!json_is_string(v))
		return -EINVAL;
	*out = json_string_value(v);
	return 0;
}

static int
role_valid(const char *role)
{
	return strcmp(role, "user") == 0 || strcmp(role, "operator") == 0 ||
	       strcmp(role, "admin") == 0;
}

static void
token_create_parsed(struct fe_ctx *ctx, struct evhttp_request *req,
    const char *tenant, const char *principal, const char *role,
    int64_t expires_in)
{
	Palyra__Ipc__TokenStore store = PALYRA__IPC__TOKEN_STORE__INIT;
	struct fe_http_token *tok;
	uint8_t hash[FE_HASH_LEN];
	int rc;

	if (ctx->journald == NULL) {
		reply_error(req, 503, "unavailable", "journal unavailable");
		return;
	}
	if ((tok = calloc(1, sizeof(*tok))) == NULL) {
		reply_error(req, 503, "unavailable", "out of memory");
		return;
	}
	tok->ctx = ctx;
	tok->req = req;
	tok->evcon = evhttp_request_get_connection(req);
	snprintf(tok->tenant, sizeof(tok->tenant), "%s", tenant);
	snprintf(tok->principal, sizeof(tok->principal), "%s", principal);
	snprintf(tok->role, sizeof(tok->role), "%s", role);
	if (fe_auth_new_token(tok->token, sizeof(tok->token), tok->token_id,
		sizeof(tok->token_id)) < 0 ||
	    fe_auth_hash(ctx, tok->token, strlen(tok->token), hash) < 0) {
		token_free(tok);
		reply_error(req, 503, "unavailable", "internal error");
		return;
	}
	store.tenant = tok->tenant;
	store.principal = tok->principal;
	store.role = tok->role;
	store.token_hash.data = hash;
	store.token_hash.len = sizeof(hash);
	store.token_id = tok->token_id;
	store.created_unix = (int64_t)time(NULL);
	tok->expires_unix = expires_in > 0 ? store.created_unix + expires_in : 0;
	store.expires_unix = tok->expires_unix;
	rc = fe_journal_request(
	    ctx, IPC_TOKEN_STORE, &store.base, FE_JREQ_STORE, tok, &tok->jreq);
	sodium_memzero(hash, sizeof(hash));
	if (rc < 0) {
		token_free(tok);
		reply_error(req, 503, "unavailable",
		    rc == -ENOBUFS ? "journal busy" : "journal unavailable");
		return;
	}
	if (tok->evcon != NULL)
		evhttp_connection_set_closecb(
		    tok->evcon, token_conn_closed, tok);
}

static void
token_create(struct fe_ctx *ctx, struct evhttp_request *req)
{
	struct evbuffer *input = evhttp_request_get_input_buffer(req);
	const char *tenant = NULL, *principal = "default", *role = "user";
	const char *key;
	json_t *body, *value;
	json_error_t jerr;
	int64_t expires_in;
	size_t len;

	if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
		method_not_allowed(req, "GET, POST");
		return;
	}
	if (!ctx->have_keys) {
		reply_error(req, 503, "unavailable", "not ready");
		return;
	}
	if (!fe_http_admin_auth(ctx, req))
		return;
	len = evbuffer_get_length(input);
	if (len > FE_HTTP_MAX_BODY) {
		reply_error(req, 413, "payload_too_large", "body too large");
		return;
	}
	body = json_loadb((const char *)evbuffer_pullup(input, -1), len,
	    JSON_REJECT_DUPLICATES, &jerr);
	if (body == NULL || !json_is_object(body)) {
		json_decref(body);
		reply_error(req, 400, "bad_request",
		    "body must be a JSON "
		    "object");
		return;
	}
	json_object_foreach(body, key, value)
	{
		if (strcmp(key, "tenant") != 0 &&
		    strcmp(key, "principal") != 0 && strcmp(key, "role") != 0 &&
		    strcmp(key, "expires_in_seconds") != 0) {
			json_decref(body);
			reply_error(req, 400, "bad_request", "unknown field");
			return;
		}
	}
	if (member_string(body, "tenant", &tenant) < 0 ||
	    member_string(body, "principal", &principal) < 0 ||
	    member_string(body, "role", &role) < 0) {
		json_decref(body);
		reply_error(req, 400, "bad_request", "fields must be strings");
		return;
	}
	value = json_object_get(body, "expires_in_seconds");
	if (value != NULL && (!json_is_integer(value) ||
				 json_integer_value(value) <= 0 ||
				 json_integer_value(value) >
				     FE_TOKEN_EXPIRES_MAX_S)) {
		json_decref(body);
		reply_error(req, 400, "bad_request",
		    "expires_in_seconds must be a positive integer of at most "
		    "ten years");
		return;
	}
	expires_in = value != NULL ? (int64_t)json_integer_value(value) : 0;
	if (tenant == NULL || !cfg_name_valid(tenant) ||
	    !cfg_name_valid(principal) || !role_valid(role)) {
		/* The strings live in body: choose the message first. */
		const char *why = tenant == NULL ? "tenant is required" :
		    !role_valid(role) ? "role must be user, operator or admin" :
		    "invalid tenant or principal name";

		json_decref(body);
		reply_error(req, 400, "bad_request", why);
		return;
	}
	if (!fe_tenant_known(ctx, tenant)) {
		json_decref(body);
		reply_error(req, 404, "not_found", "unknown tenant");
		return;
	}
	token_create_parsed(ctx, req, tenant, principal, role, expires_in);
	json_decref(body);
}

/*
 * The admin token check of every /admin/v1 request, rate-limited per
 * source address (authfail.c). Returns 1 when req presents the admin
 * token; otherwise answers 401, or 429 with Retry-After for a source out
 * of failures (whose token is not even checked), and returns 0.
 */
int
fe_http_admin_auth(struct fe_ctx *ctx, struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	const struct sockaddr *sa =
	    evcon != NULL ? evhttp_connection_get_addr(evcon) : NULL;
	uint8_t source[FE_AUTH_SOURCE_LEN];
	const uint8_t *from = NULL;
	const char *auth;
	char retry[32];
	int64_t wait_ms;

	if (sa != NULL &&
	    fe_authfail_source(sa,
		sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
					  : sizeof(struct sockaddr_in),
		source) == 0)
		from = source;
	if ((wait_ms = fe_authfail_blocked_ms(ctx, from)) > 0) {
		snprintf(retry, sizeof(retry), "%lld",
		    (long long)((wait_ms + 999) / 1000));
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Retry-After", retry);
		reply_error(req, 429, "too_many_requests",
		    "too many authentication failures");
		return 0;
	}
	auth = evhttp_find_header(
	    evhttp_request_get_input_headers(req), "Authorization");
	if (fe_auth_admin_ok(ctx, auth))
		return 1;
	/* Only a presented token is a guess; a missing one costs nothing. */
	if (auth != NULL)
		fe_authfail_record(ctx, from);
	reply_error(req, 401, "unauthenticated",
	    "missing or invalid admin token");
	return 0;
}

void
fe_http_reply_json(
    struct evhttp_request *req, int status, const char *text, size_t len)
{
	reply_json_text(req, status, text, len);
}

void
fe_http_reply_error(struct evhttp_request *req, int status, const char *code,
    const char *message)
{
	reply_error(req, status, code, message);
}

/*
 * Every answer is data for a program, never a page: no caching of tokens
 * or journal contents, no sniffing, no framing, nothing to load.
 */
static void
security_headers(struct evhttp_request *req)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);

	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	evhttp_add_header(h, "X-Frame-Options", "DENY");
	evhttp_add_header(h, "Referrer-Policy", "no-referrer");
	evhttp_add_header(h, "Content-Security-Policy",
	    "default-src 'none'; frame-ancestors 'none'");
}

static void
gencb(struct evhttp_request *req, void *arg)
{
	struct fe_ctx *ctx = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;

	fe_metrics_http_count(ctx, req);
	security_headers(req);
	if (path == NULL)
		reply_error(req, 400, "bad_request", "bad request target");
	else if (strcmp(path, "/healthz") == 0)
		healthz(ctx, req);
	else if (strcmp(path, "/metrics") == 0)
		fe_metrics_http(ctx, req);
	else if (strcmp(path, "/admin/v1/tokens") == 0 &&
	    evhttp_request_get_command(req) == EVHTTP_REQ_GET)
		fe_tokens_list(ctx, req);
	else if (strcmp(path, "/admin/v1/tokens") == 0)
		token_create(ctx, req);
	else if (strncmp(path, "/admin/v1/tokens/",
		     sizeof("/admin/v1/tokens/") - 1) == 0)
		fe_tokens_revoke(
		    ctx, req, path + sizeof("/admin/v1/tokens/") - 1);
	else if (strcmp(path, "/admin/v1/processes") == 0)
		fe_processes_get(ctx, req);
	else if (strncmp(path, "/admin/v1/journal/",
		     sizeof("/admin/v1/journal/") - 1) == 0)
		fe_journal_http(
		    ctx, req, path + sizeof("/admin/v1/journal/") - 1);
	else if (strncmp(path, "/console/v1/", sizeof("/console/v1/") - 1) == 0)
		fe_console_http(ctx, req, path + sizeof("/console/v1/") - 1);
	else if (strcmp(path, "/admin/v1/reload") == 0)
		fe_tenants_admin_reload(ctx, req);
	else if (strcmp(path, "/admin/v1/tenants") == 0)
		fe_tenants_admin_http(ctx, req, NULL);
	else if (strcmp(path, "/admin/v1/vault") == 0)
		fe_vault_admin_http(ctx, req, NULL);
	else if (strncmp(path, "/admin/v1/vault/",
		     sizeof("/admin/v1/vault/") - 1) == 0 &&
	    strchr(path + sizeof("/admin/v1/vault/") - 1, '/') == NULL)
		fe_vault_admin_http(
		    ctx, req, path + sizeof("/admin/v1/vault/") - 1);
	else if (strncmp(path, "/admin/v1/tenants/",
		     sizeof("/admin/v1/tenants/") - 1) == 0 &&
	    strchr(path + sizeof("/admin/v1/tenants/") - 1, '/') == NULL)
		fe_tenants_admin_http(
		    ctx, req, path + sizeof("/admin/v1/tenants/") - 1);
	else if (strncmp(path, "/admin/v1/tenants/",
		     sizeof("/admin/v1/tenants/") - 1) == 0)
		fe_listing_http(
		    ctx, req, path + sizeof("/admin/v1/tenants/") - 1);
	else
		reply_error(req, 404, "not_found", "no such resource");
}

/*
 * evhttp asks for the bufferevent of every connection it accepts: a TLS
 * one on an HTTPS listener (the context current at accept time, so that a
 * reload applies to new connections only).
 */
static struct bufferevent *
http_bevcb(struct event_base *base, void *arg)
{
	struct fe_ctx *ctx = arg;
	struct bufferevent *bev;

	/* httpconn.c applies the limits to either kind. */
	if (ctx->http_tls == NULL)
		bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	else
		bev = fe_tls_bufferevent(ctx, ctx->http_tls, -1);
	if (bev != NULL && fe_http_conn_accepted(ctx, bev) < 0) {
		bufferevent_free(bev);
		bev = NULL;
	}
	/*
	 * Returning NULL would make evhttp serve this connection in
	 * cleartext and unchecked, which an HTTPS listener must never do;
	 * without memory for one more connection the front restarts instead.
	 */
	if (bev == NULL)
		fatalx("http: cannot allocate a connection");
	return bev;
}

int
fe_http_listen(struct fe_ctx *ctx, int fd)
{
	struct evconnlistener *listener;

	if (fe_http_conn_init(ctx) < 0)
		return -ENOMEM;
	ctx->http = evhttp_new(ctx->base);
	if (ctx->http == NULL)
		return -ENOMEM;
	evhttp_set_max_headers_size(ctx->http, FE_HTTP_MAX_HEADERS);
	evhttp_set_max_body_size(ctx->http, FE_HTTP_MAX_BODY);
	evhttp_set_timeout(ctx->http, FE_HTTP_TIMEOUT_S);
	/* Let every common method reach gencb, which answers 405 in JSON. */
	evhttp_set_allowed_methods(
	    ctx->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
			   EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
			   EVHTTP_REQ_PATCH | EVHTTP_REQ_OPTIONS);
	evhttp_set_gencb(ctx->http, gencb, ctx);
	evhttp_set_bevcb(ctx->http, http_bevcb, ctx);
	/* Disabled until IPC_TLS_CONFIG says whether this is HTTPS (tls.c). */
	listener = evconnlistener_new(ctx->base, NULL, NULL,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_DISABLED, 0,
	    fd);
	if (listener == NULL)
		return -ENOMEM;
	ctx->http_socket = evhttp_bind_listener(ctx->http, listener);
	if (ctx->http_socket == NULL) {
		evconnlistener_free(listener);
		return -EINVAL;
	}
	return 0;
}

void
fe_http_stop_accepting(struct fe_ctx *ctx)
{
	if (ctx->http_socket != NULL)
		(void)evconnlistener_disable(
		    evhttp_bound_socket_get_listener(ctx->http_socket));
}

void
fe_http_shutdown(struct fe_ctx *ctx)
{
	if (ctx->http == NULL)
		return;
	evhttp_free(ctx->http);
	ctx->http = NULL;
	ctx->http_socket = NULL;
	fe_http_conn_shutdown(ctx);
}
