/*
 * console.c: /console/v1, the tenant-facing JSON API on the HTTP listener
 * (DESIGN section 7), for browsers and scripts:
 *
 *   POST   /console/v1/login            {"token":"..."}: a login cookie
 *   POST   /console/v1/logout
 *   GET    /console/v1/me
 *   GET    /console/v1/sessions?cursor=&limit=
 *   POST   /console/v1/sessions/resolve {"session_key":"..."}
 *   GET    /console/v1/sessions/ID?cursor=&limit=   its runs, in order
 *   DELETE /console/v1/sessions/ID
 *   POST   /console/v1/runs             text/event-stream (console_sse.c)
 *   GET    /console/v1/runs/ID
 *   GET    /console/v1/runs/ID/events?after_seq=N[&stream=1]
 *   POST   /console/v1/runs/ID/abort    {"reason":"..."} (optional)
 *   GET    /console/v1/agents, POST /console/v1/agents
 *   GET, PATCH, DELETE /console/v1/agents/NAME
 *   GET    /console/v1/approvals, /approvals/ID, /approvals/export
 *   POST   /console/v1/approvals/ID/decision
 *   GET    /console/v1/grants, DELETE /console/v1/grants/ID
 *   GET    /console/v1/usage, GET and POST /console/v1/budgets
 *   PUT, DELETE /console/v1/budgets/ID     (console_approvals.c)
 *   /console/v1/memory..., /vault..., /cron... (console_services.c)
 *
 * Every request but login and logout authenticates with a tenant token:
 * "Authorization: Bearer TOKEN", or the login cookie, whose session holds
 * the token's keyed hash only (never the token) and is looked up at
 * journald again on each request, so that a revoked or expired token ends
 * its sessions at once. A cookie-authenticated request other than GET and
 * HEAD must carry X-CSRF-Token equal to its session's CSRF token.
 *
 * Requests become calls of the gRPC methods (struct fe_call with
 * call->http set and a pseudo-connection holding ctx and the source
 * address): the token lookup, the rate limit of authentication failures,
 * the role and principal rules, run routing and reattach are the gRPC
 * code's own. The request message is built from the JSON body, framed and
 * queued on call->in as if it came off an HTTP/2 stream with END_STREAM;
 * the reply messages and the final status come back here (call.c) and
 * become JSON, or SSE events (console_sse.c).
 *
 * Login sessions live in this process's memory only: a bounded table
 * (FE_CONSOLE_LOGINS_MAX), each session ending FE_CONSOLE_LOGIN_IDLE_S
 * after its last use or FE_CONSOLE_LOGIN_MAX_S after the login; a front
 * restart logs everyone out.
 *
 * This file holds the request's life and its call; the routes are in
 * console_routes.c, console_approvals.c and console_services.c, the login
 * and the credentials in console_login.c, the event streams in
 * console_sse.c.
 *
 * Process: palyra-front. Touches the HTTP connections of its requests,
 * and journald and the workers only through the gRPC methods' code (and
 * IPC_JOURNAL_LIST_REQUEST for a session's runs).
 */
#include <sys/socket.h>

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <sodium.h>

#include "config.h"
#include "console.h"
#include "log.h"
#include "palyra/v1/gateway.pb-c.h"

static struct fe_console *
console_get(struct fe_ctx *ctx)
{
	struct fe_console *c;

	if (ctx->console != NULL)
		return ctx->console;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->logins = calloc(FE_CONSOLE_LOGINS_MAX, sizeof(*c->logins));
	if (c->logins == NULL) {
		free(c);
		return NULL;
	}
	TAILQ_INIT(&c->reqs);
	ctx->console = c;
	return c;
}

/* ---- replies ---- */

static const struct {
	uint32_t grpc;
	int http;
	const char *code;
} status_map[] = {
    {GRPC_STATUS_INVALID_ARGUMENT, 400, "bad_request"},
    {GRPC_STATUS_OUT_OF_RANGE, 400, "bad_request"},
    {GRPC_STATUS_UNAUTHENTICATED, 401, "unauthenticated"},
    {GRPC_STATUS_PERMISSION_DENIED, 403, "forbidden"},
    {GRPC_STATUS_NOT_FOUND, 404, "not_found"},
    {GRPC_STATUS_ALREADY_EXISTS, 409, "conflict"},
    {GRPC_STATUS_FAILED_PRECONDITION, 409, "conflict"},
    {GRPC_STATUS_ABORTED, 409, "conflict"},
    {GRPC_STATUS_RESOURCE_EXHAUSTED, 429, "too_many_requests"},
    {GRPC_STATUS_UNIMPLEMENTED, 501, "not_implemented"},
    {GRPC_STATUS_UNAVAILABLE, 503, "unavailable"},
    {GRPC_STATUS_DEADLINE_EXCEEDED, 504, "gateway_timeout"},
};

void
fe_console_status_http(uint32_t status, int *http, const char **code)
{
	size_t i;

	for (i = 0; i < sizeof(status_map) / sizeof(status_map[0]); i++)
		if (status_map[i].grpc == status) {
			*http = status_map[i].http;
			*code = status_map[i].code;
			return;
		}
	*http = 500;
	*code = "internal";
}

/* Answers the request (once) with a JSON error. */
void
fe_console_fail(struct fe_console_req *cr, int status, const char *code,
    const char *message)
{
	char retry[32];
	int64_t wait_ms;

	if (cr->req == NULL || cr->answered)
		return;
	cr->answered = 1;
	/* evhttp may close the connection while answering: not our cb. */
	fe_console_detach(cr);
	if (status == 429 &&
	    (wait_ms = fe_authfail_blocked_ms(
		 cr->ctx, cr->conn.has_source ? cr->conn.source : NULL)) > 0) {
		snprintf(retry, sizeof(retry), "%lld",
		    (long long)((wait_ms + 999) / 1000));
		evhttp_add_header(evhttp_request_get_output_headers(cr->req),
		    "Retry-After", retry);
	}
	fe_http_reply_error(cr->req, status, code, message);
}

/* Answers the request (once) with obj as JSON; takes obj. */
void
fe_console_reply_obj(struct fe_console_req *cr, int status, json_t *obj)
{
	char *text;

	if (cr->req == NULL || cr->answered) {
		json_decref(obj);
		return;
	}
	text = obj != NULL ? json_dumps(obj, JSON_COMPACT) : NULL;
	json_decref(obj);
	if (text == NULL) {
		fe_console_fail(cr, 500, "internal", "out of memory");
		return;
	}
	cr->answered = 1;
	fe_console_detach(cr);
	fe_http_reply_json(cr->req, status, text, strlen(text));
	free(text);
}

/* ---- request lifetime ---- */

static void
req_free(struct fe_console_req *cr)
{
	struct fe_console *c = cr->ctx->console;

	TAILQ_REMOVE(&c->reqs, cr, entry);
	if (cr->sse_counted)
		c->nsse--;
	if (cr->evcon != NULL)
		evhttp_connection_set_closecb(cr->evcon, NULL, NULL);
	if (cr->release_ev != NULL)
		event_free(cr->release_ev);
	if (cr->timer != NULL)
		event_free(cr->timer);
	json_decref(cr->result);
	sodium_memzero(cr, sizeof(*cr));
	free(cr);
}

/* The request's call (if any) goes; disconnected: its client left. */
static void
call_drop(struct fe_console_req *cr, int disconnected)
{
	struct fe_call *call = cr->call;

	if (call == NULL)
		return;
	cr->call = NULL;
	cr->dropping = 1;
	fe_call_release(call, disconnected);
}

static void
release_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fe_console_req *cr = arg;

	call_drop(cr, 0);
	/* Answered before: evhttp owns and frees the request. */
	req_free(cr);
}

/* Before the last write of a reply: a close is evhttp's business now. */
void
fe_console_detach(struct fe_console_req *cr)
{
	if (cr->evcon != NULL) {
		evhttp_connection_set_closecb(cr->evcon, NULL, NULL);
		cr->evcon = NULL;
	}
}

/* The reply is complete: the call and the request go, from the loop. */
void
fe_console_done(struct fe_console_req *cr)
{
	struct timeval now = {0, 0};

	/* Every path answers; should one not, the client still hears. */
	if (cr->req != NULL && !cr->answered)
		fe_console_fail(cr, 500, "internal", "internal error");
	fe_console_detach(cr);
	fe_console_sse_stop(cr);
	cr->req = NULL;
	if (cr->release_ev == NULL)
		cr->release_ev = evtimer_new(cr->ctx->base, release_cb, cr);
	if (cr->release_ev == NULL || evtimer_add(cr->release_ev, &now) < 0)
		fatalx("console: cannot schedule a release");
}

static void
conn_closed(struct evhttp_connection *evcon, void *arg)
{
	struct fe_console_req *cr = arg;
	struct evhttp_request *req = cr->req;

	/*
	 * The client left before the reply ended. A run goes on (its start
	 * never asks to be cancelled on disconnect): the call only stops
	 * following it. evhttp detached the request it still owes us.
	 */
	cr->evcon = NULL;
	cr->req = NULL;
	fe_console_sse_stop(cr);
	call_drop(cr, 1);
	if (req != NULL && evhttp_request_get_connection(req) == NULL)
		evhttp_request_free(req);
	if (cr->release_ev != NULL)
		evtimer_del(cr->release_ev);
	req_free(cr);
}

static struct fe_console_req *
req_new(struct fe_ctx *ctx, struct evhttp_request *req)
{
	struct fe_console *c = console_get(ctx);
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	const struct sockaddr *sa =
	    evcon != NULL ? evhttp_connection_get_addr(evcon) : NULL;
	struct fe_console_req *cr;

	if (c == NULL || (cr = calloc(1, sizeof(*cr))) == NULL) {
		fe_http_reply_error(req, 503, "unavailable", "out of memory");
		return NULL;
	}
	cr->ctx = ctx;
	cr->req = req;
	cr->conn.ctx = ctx;
	TAILQ_INIT(&cr->conn.calls);
	cr->conn.goaway_reason = -1;
	if (sa != NULL &&
	    fe_authfail_source(sa,
		sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
					  : sizeof(struct sockaddr_in),
		cr->conn.source) == 0)
		cr->conn.has_source = 1;
	cr->evcon = evcon;
	TAILQ_INSERT_TAIL(&c->reqs, cr, entry);
	if (evcon != NULL)
		evhttp_connection_set_closecb(evcon, conn_closed, cr);
	return cr;
}

/* ---- starting a call ---- */

/* Queues msg on the call as one framed request message. */
static int
queue_message(struct fe_call *call, const ProtobufCMessage *msg)
{
	uint8_t prefix[5];
	size_t len = protobuf_c_message_get_packed_size(msg);
	uint8_t *buf;
	int rc = 0;

	if ((buf = malloc(len > 0 ? len : 1)) == NULL)
		return -ENOMEM;
	protobuf_c_message_pack(msg, buf);
	prefix[0] = 0;
	prefix[1] = (uint8_t)(len >> 24);
	prefix[2] = (uint8_t)(len >> 16);
	prefix[3] = (uint8_t)(len >> 8);
	prefix[4] = (uint8_t)len;
	if (evbuffer_add(call->in, prefix, sizeof(prefix)) < 0 ||
	    evbuffer_add(call->in, buf, len) < 0)
		rc = -ENOMEM;
	free(buf);
	return rc;
}

/*
 * Makes the call of method for cr, with msg (NULL: none needed) as its
 * request message, and begins it: the token lookup first, as for gRPC.
 */
void
fe_console_call_begin(struct fe_console_req *cr, enum fe_method method,
    const ProtobufCMessage *msg)
{
	struct fe_call *call;

	if ((call = fe_call_new(&cr->conn, 0)) == NULL) {
		fe_console_fail(cr, 503, "unavailable", "out of memory");
		fe_console_done(cr);
		return;
	}
	cr->call = call;
	call->http = cr;
	call->method = method;
	call->is_post = 1;
	call->content_type_ok = 1;
	snprintf(call->path, sizeof(call->path), "/console/v1");
	call->auth = FE_AUTH_PRESENT;
	memcpy(call->token_hash, cr->token_hash, sizeof(call->token_hash));
	if (msg != NULL && queue_message(call, msg) < 0) {
		fe_console_fail(cr, 503, "unavailable", "out of memory");
		call_drop(cr, 0);
		fe_console_done(cr);
		return;
	}
	/* The whole request is here: as a stream that ended. */
	call->input_ended = 1;
	fe_rpc_begin(call);
}

int
fe_console_authenticated(struct fe_call *call)
{
	struct fe_console_req *cr = call->http;

	struct fe_login *l = fe_console_req_login(cr);

	if (l != NULL)
		l->last_used_s = (fe_now_unix_ms() / 1000);
	switch (cr->kind) {
	case FE_CONSOLE_LOGIN:
		fe_console_login_create(cr, call);
		break;
	case FE_CONSOLE_ME:
		fe_console_reply_obj(cr, 200,
		    json_pack("{s:s,s:s,s:s,s:s,s:I}", "tenant", call->tenant,
			"principal", call->principal, "role", call->role,
			"auth", cr->login != NULL ? "cookie" : "bearer",
			"expires_unix",
			(json_int_t)(l != NULL ? l->expires_s : 0)));
		break;
	case FE_CONSOLE_SESSION_SHOW:
		fe_console_transcript(cr, call);
		return 1;
	default:
		return 0;
	}
	fe_call_finish(call, GRPC_STATUS_OK, NULL);
	return 1;
}

/* ---- the call's replies ---- */

int
fe_console_send(struct fe_call *call, const ProtobufCMessage *msg)
{
	struct fe_console_req *cr = call->http;
	json_t *obj;

	if (cr->dropping)
		return -ENOBUFS;
	if (cr->kind == FE_CONSOLE_RUN_START ||
	    cr->kind == FE_CONSOLE_EVENTS_SSE)
		return fe_console_sse_event(cr, msg);
	if (cr->kind == FE_CONSOLE_EXPORT)
		return fe_console_export_chunk(cr, msg);
	if ((obj = cr->words ? fe_pb_json_words(msg) : fe_pb_json(msg)) ==
	    NULL)
		return -ENOMEM;
	if (cr->kind == FE_CONSOLE_EVENTS_PAGE) {
		if (cr->result == NULL && (cr->result = json_array()) == NULL) {
			json_decref(obj);
			return -ENOMEM;
		}
		if (json_array_append_new(cr->result, obj) < 0)
			return -ENOMEM;
		if (json_array_size(cr->result) >= FE_CONSOLE_EVENTS_PAGE_MAX) {
			/* Ends the call; fe_console_finish() sees a page. */
			cr->page_full = 1;
			return -ENOBUFS;
		}
		return 0;
	}
	json_decref(cr->result);
	cr->result = obj;
	return 0;
}

int
fe_console_replayed(struct fe_call *call)
{
	return call->http->kind == FE_CONSOLE_EVENTS_PAGE;
}

/* ListSessions' answer, with the console's names for its paging. */
static json_t *
sessions_page(json_t *res)
{
	json_t *tok = json_object_get(res, "next_page_token");
	const char *t = json_is_string(tok) ? json_string_value(tok) : "";
	json_t *out;

	out = json_pack("{s:O,s:o}", "sessions",
	    json_object_get(res, "sessions") != NULL
		? json_object_get(res, "sessions")
		: json_array(),
	    "next_cursor", t[0] != '\0' ? json_string(t) : json_null());
	return out;
}

static void
finish_ok(struct fe_console_req *cr, struct fe_call *call)
{
	json_t *res = cr->result, *out;

	cr->result = NULL;
	switch (cr->kind) {
	case FE_CONSOLE_EVENTS_PAGE:
		out = json_pack("{s:s,s:o,s:b,s:I}", "run_id", call->run_id,
		    "events", res != NULL ? res : json_array(), "more",
		    cr->page_full, "last_seq", (json_int_t)call->last_seq);
		fe_console_reply_obj(cr, 200, out);
		return;
	case FE_CONSOLE_SESSIONS:
		fe_console_reply_obj(
		    cr, 200, res != NULL ? sessions_page(res) : NULL);
		json_decref(res);
		return;
	case FE_CONSOLE_AGENT_CREATE:
		fe_console_reply_obj(
		    cr, 201, res != NULL ? res : json_object());
		return;
	default:
		fe_console_reply_obj(
		    cr, 200, res != NULL ? res : json_object());
		return;
	}
}

void
fe_console_finish(struct fe_call *call)
{
	struct fe_console_req *cr = call->http;
	const char *code;
	int status;

	if (cr->dropping)
		return;
	if (cr->kind == FE_CONSOLE_RUN_START ||
	    cr->kind == FE_CONSOLE_EVENTS_SSE) {
		if (fe_console_sse_finish(cr, call)) {
			fe_console_done(cr);
			return;
		}
	}
	if (cr->kind == FE_CONSOLE_EXPORT &&
	    fe_console_export_finish(cr, call)) {
		fe_console_done(cr);
		return;
	}
	if (call->status == GRPC_STATUS_OK ||
	    (cr->page_full && cr->kind == FE_CONSOLE_EVENTS_PAGE)) {
		finish_ok(cr, call);
	} else {
		/* A cookie whose token no longer checks out ends its session.
		 */
		if (call->status == GRPC_STATUS_UNAUTHENTICATED &&
		    fe_console_req_login(cr) != NULL) {
			fe_console_login_end(cr->ctx->console, cr->login);
			cr->login = NULL;
		}
		fe_console_status_http(call->status, &status, &code);
		fe_console_fail(cr, status, code,
		    call->message[0] != '\0' ? call->message : code);
	}
	fe_console_done(cr);
}

void
fe_console_http(
    struct fe_ctx *ctx, struct evhttp_request *req, const char *path)
{
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	struct fe_console_req *cr;

	if ((cr = req_new(ctx, req)) == NULL)
		return;
	if (ctx->draining) {
		fe_console_fail(cr, 503, "unavailable", FE_STOPPING_MESSAGE);
	} else if (strcmp(path, "login") == 0) {
		if (!ctx->have_keys)
			fe_console_fail(cr, 503, "unavailable", "not ready");
		else if (fe_authfail_blocked_ms(ctx,
			     cr->conn.has_source ? cr->conn.source : NULL) > 0)
			fe_console_fail(cr, 429, "too_many_requests",
			    "too many authentication failures");
		else
			fe_console_route_login(cr, cmd);
	} else if (strcmp(path, "logout") == 0 || strcmp(path, "me") == 0 ||
		   strcmp(path, "sessions") == 0 ||
		   strncmp(path, "sessions/", 9) == 0 ||
		   strcmp(path, "runs") == 0 ||
		   strncmp(path, "runs/", 5) == 0 ||
		   strcmp(path, "agents") == 0 ||
		   strncmp(path, "agents/", 7) == 0 ||
		   fe_console_governance_path(path) ||
		   fe_console_services_path(path)) {
		if (fe_console_authenticate(cr, cmd) == 0) {
			if (strcmp(path, "logout") == 0)
				fe_console_route_logout(cr, cmd);
			else if (strcmp(path, "me") == 0) {
				if (cmd != EVHTTP_REQ_GET)
					fe_console_not_allowed(cr, "GET");
				else {
					cr->kind = FE_CONSOLE_ME;
					fe_console_call_begin(
					    cr, FE_METHOD_LIST_SESSIONS, NULL);
				}
			} else if (strncmp(path, "sessions", 8) == 0)
				fe_console_route_sessions(
				    cr, cmd, path[8] == '/' ? path + 9 : "");
			else if (strncmp(path, "runs", 4) == 0)
				fe_console_route_runs(
				    cr, cmd, path[4] == '/' ? path + 5 : "");
			else if (fe_console_governance_path(path))
				fe_console_route_governance(cr, cmd, path);
			else if (fe_console_services_path(path))
				fe_console_route_services(cr, cmd, path);
			else
				fe_console_route_agents(
				    cr, cmd, path[6] == '/' ? path + 7 : "");
		}
	} else
		fe_console_fail(cr, 404, "not_found", "no such resource");
	/* Answered without a call (an error, logout): done. */
	if (cr->call == NULL && !cr->sse_started)
		fe_console_done(cr);
}

void
fe_console_shutdown(struct fe_ctx *ctx)
{
	struct fe_console *c = ctx->console;
	struct fe_console_req *cr;

	if (c == NULL)
		return;
	while ((cr = TAILQ_FIRST(&c->reqs)) != NULL) {
		fe_console_sse_stop(cr);
		call_drop(cr, 1);
		/* evhttp_free() frees the requests of its connections. */
		req_free(cr);
	}
	sodium_memzero(c->logins, FE_CONSOLE_LOGINS_MAX * sizeof(*c->logins));
	free(c->logins);
	free(c);
	ctx->console = NULL;
}
