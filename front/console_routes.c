/*
 * console_routes.c: the routes of /console/v1 (console.c): sessions, runs
 * and agents, each a request message of the gRPC method it maps to, built
 * from the path, the query and the JSON body (checked here: size, depth,
 * known members and their types); and a session's runs (the transcript),
 * read from journald's listing.
 *
 * Process: palyra-front. Decodes the console's request bodies and query
 * strings (the one place they are decoded).
 */
#include <errno.h>
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
#include "console.h"
#include "log.h"
#include "palyra/v1/gateway.pb-c.h"

/* Our IPC_JOURNAL_LIST_REQUEST ids: listing.c's never have this bit. */
#define LIST_ID_BIT 0x80000000u

/* ---- JSON bodies ---- */

/*
 * The request's JSON object body, checked: at most FE_HTTP_MAX_BODY
 * bytes, FE_CONSOLE_JSON_DEPTH_MAX deep, only the members named in
 * allowed (NULL-terminated). An empty body is {} when empty_ok. Returns
 * the object, or NULL after answering 400 or 413.
 */
json_t *
fe_console_body_json(
    struct fe_console_req *cr, const char *const *allowed, int empty_ok)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(cr->req);
	size_t len = evbuffer_get_length(in), i;
	const char *text, *key;
	json_error_t jerr;
	json_t *obj, *v;

	if (len > FE_HTTP_MAX_BODY) {
		fe_console_fail(cr, 413, "payload_too_large", "body too large");
		return NULL;
	}
	if (len == 0 && empty_ok)
		return json_object();
	text = (const char *)evbuffer_pullup(in, -1);
	if (text == NULL ||
	    !fe_console_json_depth_ok(text, len, FE_CONSOLE_JSON_DEPTH_MAX)) {
		fe_console_fail(cr, 400, "bad_request",
		    text == NULL ? "body must be a JSON object"
				 : "JSON nested too deeply");
		return NULL;
	}
	obj = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (obj == NULL || !json_is_object(obj)) {
		json_decref(obj);
		fe_console_fail(
		    cr, 400, "bad_request", "body must be a JSON object");
		return NULL;
	}
	json_object_foreach(obj, key, v)
	{
		for (i = 0; allowed[i] != NULL; i++)
			if (strcmp(allowed[i], key) == 0)
				break;
		if (allowed[i] == NULL) {
			json_decref(obj);
			fe_console_fail(
			    cr, 400, "bad_request", "unknown field");
			return NULL;
		}
	}
	return obj;
}

/* An optional string member: 0, or -1 after answering 400. */
int
fe_console_str_member(
    struct fe_console_req *cr, json_t *obj, const char *key, const char **out)
{
	json_t *v = json_object_get(obj, key);
	char msg[96];

	if (v == NULL)
		return 0;
	if (!json_is_string(v) ||
	    strlen(json_string_value(v)) != json_string_length(v)) {
		snprintf(msg, sizeof(msg), "%s must be a string", key);
		fe_console_fail(cr, 400, "bad_request", msg);
		return -1;
	}
	*out = json_string_value(v);
	return 0;
}

/* ---- routing ---- */

static int
segment_ok(const char *s)
{
	size_t len = strlen(s);

	return len > 0 && len <= FE_RUN_ID_MAX && strchr(s, '/') == NULL;
}

/* Parses the query against allowed names; 0, or -1 after a 400. */
static int
query_parse(
    struct fe_console_req *cr, struct evkeyvalq *q, const char *const *allowed)
{
	return fe_console_query(cr, q, allowed);
}

int
fe_console_query(
    struct fe_console_req *cr, struct evkeyvalq *q, const char *const *allowed)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(cr->req);
	const char *query = uri != NULL ? evhttp_uri_get_query(uri) : NULL;
	struct evkeyval *kv;
	size_t i;

	TAILQ_INIT(q);
	if (query == NULL)
		return 0;
	if (evhttp_parse_query_str(query, q) < 0) {
		fe_console_fail(cr, 400, "bad_request", "malformed query");
		return -1;
	}
	TAILQ_FOREACH(kv, q, next)
	{
		for (i = 0; allowed[i] != NULL; i++)
			if (strcmp(allowed[i], kv->key) == 0)
				break;
		if (allowed[i] == NULL) {
			evhttp_clear_headers(q);
			fe_console_fail(
			    cr, 400, "bad_request", "unknown query parameter");
			return -1;
		}
	}
	return 0;
}

void
fe_console_not_allowed(struct fe_console_req *cr, const char *allow)
{
	evhttp_add_header(
	    evhttp_request_get_output_headers(cr->req), "Allow", allow);
	fe_console_fail(cr, 405, "method_not_allowed", "method not allowed");
}

static void
route_sessions_list(struct fe_console_req *cr)
{
	static const char *const params[] = {"cursor", "limit", NULL};
	Palyra__V1__ListSessionsRequest m =
	    PALYRA__V1__LIST_SESSIONS_REQUEST__INIT;
	struct evkeyvalq q;
	const char *cursor, *limit;
	int64_t n = 0;

	if (query_parse(cr, &q, params) < 0)
		return;
	cursor = evhttp_find_header(&q, "cursor");
	limit = evhttp_find_header(&q, "limit");
	if (limit != NULL &&
	    (n = fe_console_query_uint(limit, 1, FE_SESSIONS_PAGE_MAX)) < 0) {
		evhttp_clear_headers(&q);
		fe_console_fail(
		    cr, 400, "bad_request", "limit must be 1 to 100");
		return;
	}
	m.page_size = (uint32_t)n;
	m.page_token = (char *)(cursor != NULL ? cursor : "");
	cr->kind = FE_CONSOLE_SESSIONS;
	fe_console_call_begin(cr, FE_METHOD_LIST_SESSIONS, &m.base);
	evhttp_clear_headers(&q);
}

static void
route_session_show(struct fe_console_req *cr, const char *id)
{
	static const char *const params[] = {"cursor", "limit", NULL};
	struct evkeyvalq q;
	const char *cursor, *limit;
	int64_t n = JNL_LIST_PAGE_MAX;

	if (query_parse(cr, &q, params) < 0)
		return;
	cursor = evhttp_find_header(&q, "cursor");
	limit = evhttp_find_header(&q, "limit");
	if ((limit != NULL &&
		(n = fe_console_query_uint(limit, 1, JNL_LIST_PAGE_MAX)) < 0) ||
	    (cursor != NULL && strlen(cursor) > JNL_CURSOR_MAX) ||
	    strlen(id) > NAME_MAX_LEN) {
		evhttp_clear_headers(&q);
		fe_console_fail(cr, 400, "bad_request",
		    strlen(id) > NAME_MAX_LEN ? "session id too long"
					      : "malformed cursor or limit");
		return;
	}
	snprintf(cr->name, sizeof(cr->name), "%s", id);
	snprintf(
	    cr->cursor, sizeof(cr->cursor), "%s", cursor != NULL ? cursor : "");
	cr->limit = (uint32_t)n;
	evhttp_clear_headers(&q);
	cr->kind = FE_CONSOLE_SESSION_SHOW;
	fe_console_call_begin(cr, FE_METHOD_LIST_SESSIONS, NULL);
}

void
fe_console_route_sessions(
    struct fe_console_req *cr, enum evhttp_cmd_type cmd, const char *rest)
{
	static const char *const resolve_keys[] = {"session_key", NULL};
	Palyra__V1__ResolveSessionRequest rs =
	    PALYRA__V1__RESOLVE_SESSION_REQUEST__INIT;
	Palyra__V1__CleanupSessionRequest cl =
	    PALYRA__V1__CLEANUP_SESSION_REQUEST__INIT;
	const char *key = NULL;
	json_t *body;

	if (*rest == '\0') {
		if (cmd != EVHTTP_REQ_GET)
			fe_console_not_allowed(cr, "GET");
		else
			route_sessions_list(cr);
		return;
	}
	if (strcmp(rest, "resolve") == 0) {
		if (cmd != EVHTTP_REQ_POST) {
			fe_console_not_allowed(cr, "POST");
			return;
		}
		if ((body = fe_console_body_json(cr, resolve_keys, 0)) == NULL)
			return;
		if (fe_console_str_member(cr, body, "session_key", &key) == 0) {
			if (key == NULL)
				fe_console_fail(cr, 400, "bad_request",
				    "session_key is required");
			else {
				rs.session_key = (char *)key;
				cr->kind = FE_CONSOLE_UNARY;
				fe_console_call_begin(
				    cr, FE_METHOD_RESOLVE_SESSION, &rs.base);
			}
		}
		json_decref(body);
		return;
	}
	if (!segment_ok(rest)) {
		fe_console_fail(cr, 404, "not_found", "no such resource");
		return;
	}
	if (cmd == EVHTTP_REQ_GET) {
		route_session_show(cr, rest);
	} else if (cmd == EVHTTP_REQ_DELETE) {
		cl.session_id = (char *)rest;
		cr->kind = FE_CONSOLE_UNARY;
		fe_console_call_begin(cr, FE_METHOD_CLEANUP_SESSION, &cl.base);
	} else
		fe_console_not_allowed(cr, "GET, DELETE");
}

static void
route_run_start(struct fe_console_req *cr)
{
	static const char *const keys[] = {"input", "agent", "session_id",
	    "session_key", "idempotency_key", NULL};
	Palyra__V1__RunStreamRequest m = PALYRA__V1__RUN_STREAM_REQUEST__INIT;
	Palyra__V1__RunStart start = PALYRA__V1__RUN_START__INIT;
	const char *input = NULL;
	json_t *body;

	if ((body = fe_console_body_json(cr, keys, 0)) == NULL)
		return;
	if (fe_console_str_member(cr, body, "input", &input) < 0 ||
	    fe_console_str_member(
		cr, body, "agent", (const char **)&start.agent) < 0 ||
	    fe_console_str_member(
		cr, body, "session_id", (const char **)&start.session_id) < 0 ||
	    fe_console_str_member(cr, body, "session_key",
		(const char **)&start.session_key) < 0 ||
	    fe_console_str_member(cr, body, "idempotency_key",
		(const char **)&start.idempotency_key) < 0) {
		json_decref(body);
		return;
	}
	if (input == NULL) {
		json_decref(body);
		fe_console_fail(cr, 400, "bad_request", "input is required");
		return;
	}
	start.input = (char *)input;
	/* Runs outlive their clients: a browser closing never cancels. */
	start.cancel_on_disconnect = 0;
	m.msg_case = PALYRA__V1__RUN_STREAM_REQUEST__MSG_START;
	m.start = &start;
	cr->kind = FE_CONSOLE_RUN_START;
	if (fe_console_sse_admit(cr) == 0)
		fe_console_call_begin(cr, FE_METHOD_RUN_STREAM, &m.base);
	json_decref(body);
}

static void
route_run_events(struct fe_console_req *cr, const char *id)
{
	static const char *const params[] = {"after_seq", "stream", NULL};
	Palyra__V1__ListRunEventsRequest m =
	    PALYRA__V1__LIST_RUN_EVENTS_REQUEST__INIT;
	struct evkeyvalq q;
	const char *after, *stream, *accept, *last_id;
	int64_t seq = 0;
	int sse;

	if (query_parse(cr, &q, params) < 0)
		return;
	after = evhttp_find_header(&q, "after_seq");
	stream = evhttp_find_header(&q, "stream");
	accept = evhttp_find_header(
	    evhttp_request_get_input_headers(cr->req), "Accept");
	last_id = evhttp_find_header(
	    evhttp_request_get_input_headers(cr->req), "Last-Event-ID");
	if (stream != NULL && strcmp(stream, "0") != 0 &&
	    strcmp(stream, "1") != 0) {
		evhttp_clear_headers(&q);
		fe_console_fail(
		    cr, 400, "bad_request", "stream must be 0 or 1");
		return;
	}
	sse = (stream != NULL && strcmp(stream, "1") == 0) ||
	      (stream == NULL && accept != NULL &&
		  strstr(accept, "text/event-stream") != NULL);
	if (after != NULL &&
	    (seq = fe_console_query_uint(after, 0, INT64_MAX)) < 0) {
		evhttp_clear_headers(&q);
		fe_console_fail(cr, 400, "bad_request",
		    "after_seq must be a non-negative integer");
		return;
	}
	evhttp_clear_headers(&q);
	/* A reconnecting EventSource resumes after the last id it saw. */
	if (sse && last_id != NULL) {
		if ((seq = fe_console_query_uint(last_id, 0, INT64_MAX)) < 0) {
			fe_console_fail(cr, 400, "bad_request",
			    "Last-Event-ID must be a sequence number");
			return;
		}
	}
	m.run_id = (char *)id;
	m.after_seq = (uint64_t)seq;
	cr->kind = sse ? FE_CONSOLE_EVENTS_SSE : FE_CONSOLE_EVENTS_PAGE;
	if (sse && fe_console_sse_admit(cr) < 0)
		return;
	fe_console_call_begin(cr, FE_METHOD_LIST_RUN_EVENTS, &m.base);
}

void
fe_console_route_runs(
    struct fe_console_req *cr, enum evhttp_cmd_type cmd, const char *rest)
{
	static const char *const abort_keys[] = {"reason", NULL};
	Palyra__V1__GetRunRequest get = PALYRA__V1__GET_RUN_REQUEST__INIT;
	Palyra__V1__AbortRunRequest ab = PALYRA__V1__ABORT_RUN_REQUEST__INIT;
	char id[FE_RUN_ID_MAX + 1];
	const char *slash, *sub;
	json_t *body;

	if (*rest == '\0') {
		if (cmd != EVHTTP_REQ_POST)
			fe_console_not_allowed(cr, "POST");
		else
			route_run_start(cr);
		return;
	}
	slash = strchr(rest, '/');
	sub = slash != NULL ? slash + 1 : "";
	if ((slash != NULL ? (size_t)(slash - rest) : strlen(rest)) == 0 ||
	    (slash != NULL ? (size_t)(slash - rest) : strlen(rest)) >
		FE_RUN_ID_MAX) {
		fe_console_fail(cr, 404, "not_found", "no such resource");
		return;
	}
	snprintf(id, sizeof(id), "%.*s",
	    (int)(slash != NULL ? slash - rest : (ptrdiff_t)strlen(rest)),
	    rest);
	if (slash == NULL) {
		if (cmd != EVHTTP_REQ_GET) {
			fe_console_not_allowed(cr, "GET");
			return;
		}
		get.run_id = id;
		cr->kind = FE_CONSOLE_UNARY;
		fe_console_call_begin(cr, FE_METHOD_GET_RUN, &get.base);
	} else if (strcmp(sub, "events") == 0) {
		if (cmd != EVHTTP_REQ_GET)
			fe_console_not_allowed(cr, "GET");
		else
			route_run_events(cr, id);
	} else if (strcmp(sub, "abort") == 0) {
		if (cmd != EVHTTP_REQ_POST) {
			fe_console_not_allowed(cr, "POST");
			return;
		}
		if ((body = fe_console_body_json(cr, abort_keys, 1)) == NULL)
			return;
		ab.run_id = id;
		if (fe_console_str_member(
			cr, body, "reason", (const char **)&ab.reason) == 0) {
			cr->kind = FE_CONSOLE_UNARY;
			fe_console_call_begin(
			    cr, FE_METHOD_ABORT_RUN, &ab.base);
		}
		json_decref(body);
	} else
		fe_console_fail(cr, 404, "not_found", "no such resource");
}

/* The members of an agent body into a (the strings stay in body).
 * Returns 0, or -1 after a 400. */
static int
agent_fields(struct fe_console_req *cr, json_t *body, Palyra__V1__Agent *a,
    char **providers, int *set_temperature)
{
	json_t *v, *p;
	size_t i;

	if (fe_console_str_member(cr, body, "name", (const char **)&a->name) <
		0 ||
	    fe_console_str_member(cr, body, "system_prompt",
		(const char **)&a->system_prompt) < 0)
		return -1;
	if ((v = json_object_get(body, "providers")) != NULL) {
		if (!json_is_array(v) ||
		    json_array_size(v) > FE_CONSOLE_PROVIDERS_MAX) {
			fe_console_fail(cr, 400, "bad_request",
			    "providers must be an array of 1 to 16 names");
			return -1;
		}
		json_array_foreach(v, i, p)
		{
			if (!json_is_string(p)) {
				fe_console_fail(cr, 400, "bad_request",
				    "providers must be strings");
				return -1;
			}
			providers[i] = (char *)json_string_value(p);
		}
		a->n_providers = json_array_size(v);
		a->providers = providers;
	}
	if ((v = json_object_get(body, "max_output_tokens")) != NULL) {
		if (!json_is_integer(v) || json_integer_value(v) < 0 ||
		    json_integer_value(v) > UINT32_MAX) {
			fe_console_fail(cr, 400, "bad_request",
			    "max_output_tokens must be a positive integer");
			return -1;
		}
		a->max_output_tokens = (uint32_t)json_integer_value(v);
	}
	if ((v = json_object_get(body, "temperature")) != NULL) {
		if (!json_is_number(v)) {
			fe_console_fail(cr, 400, "bad_request",
			    "temperature must be a number");
			return -1;
		}
		a->temperature = json_number_value(v);
		*set_temperature = 1;
	}
	/* The run limits; journald checks their ranges. */
	if ((v = json_object_get(body, "max_turns")) != NULL) {
		if (!json_is_integer(v) || json_integer_value(v) < 1 ||
		    json_integer_value(v) > UINT32_MAX) {
			fe_console_fail(cr, 400, "bad_request",
			    "max_turns must be a positive integer");
			return -1;
		}
		a->max_turns = (uint32_t)json_integer_value(v);
	}
	if ((v = json_object_get(body, "max_tool_calls")) != NULL) {
		if (!json_is_integer(v) || json_integer_value(v) < 0 ||
		    json_integer_value(v) > UINT32_MAX) {
			fe_console_fail(cr, 400, "bad_request",
			    "max_tool_calls must be an integer, 0 or more");
			return -1;
		}
		a->set_max_tool_calls = 1;
		a->max_tool_calls = (uint32_t)json_integer_value(v);
	}
	if ((v = json_object_get(body, "max_wall_clock_ms")) != NULL) {
		if (!json_is_integer(v) || json_integer_value(v) < 1) {
			fe_console_fail(cr, 400, "bad_request",
			    "max_wall_clock_ms must be a positive integer");
			return -1;
		}
		a->max_wall_clock_ms = (uint64_t)json_integer_value(v);
	}
	return 0;
}

void
fe_console_route_agents(
    struct fe_console_req *cr, enum evhttp_cmd_type cmd, const char *rest)
{
	static const char *const create_keys[] = {"name", "system_prompt",
	    "providers", "max_output_tokens", "temperature", "max_turns",
	    "max_tool_calls", "max_wall_clock_ms", NULL};
	static const char *const update_keys[] = {"system_prompt", "providers",
	    "max_output_tokens", "temperature", "clear_system_prompt",
	    "max_turns", "max_tool_calls", "max_wall_clock_ms", NULL};
	Palyra__V1__ListAgentsRequest list =
	    PALYRA__V1__LIST_AGENTS_REQUEST__INIT;
	Palyra__V1__GetAgentRequest get = PALYRA__V1__GET_AGENT_REQUEST__INIT;
	Palyra__V1__CreateAgentRequest create =
	    PALYRA__V1__CREATE_AGENT_REQUEST__INIT;
	Palyra__V1__UpdateAgentRequest upd =
	    PALYRA__V1__UPDATE_AGENT_REQUEST__INIT;
	Palyra__V1__DeleteAgentRequest del =
	    PALYRA__V1__DELETE_AGENT_REQUEST__INIT;
	Palyra__V1__Agent agent = PALYRA__V1__AGENT__INIT;
	char *providers[FE_CONSOLE_PROVIDERS_MAX];
	int set_temp = 0;
	json_t *body, *v;

	if (*rest == '\0') {
		if (cmd == EVHTTP_REQ_GET) {
			cr->kind = FE_CONSOLE_UNARY;
			fe_console_call_begin(
			    cr, FE_METHOD_LIST_AGENTS, &list.base);
		} else if (cmd == EVHTTP_REQ_POST) {
			if ((body = fe_console_body_json(cr, create_keys, 0)) ==
			    NULL)
				return;
			if (agent_fields(
				cr, body, &agent, providers, &set_temp) == 0) {
				create.agent = &agent;
				cr->kind = FE_CONSOLE_AGENT_CREATE;
				fe_console_call_begin(
				    cr, FE_METHOD_CREATE_AGENT, &create.base);
			}
			json_decref(body);
		} else
			fe_console_not_allowed(cr, "GET, POST");
		return;
	}
	if (!segment_ok(rest) || strlen(rest) > NAME_MAX_LEN * 4) {
		fe_console_fail(cr, 404, "not_found", "no such resource");
		return;
	}
	cr->kind = FE_CONSOLE_UNARY;
	if (cmd == EVHTTP_REQ_GET) {
		get.name = (char *)rest;
		fe_console_call_begin(cr, FE_METHOD_GET_AGENT, &get.base);
	} else if (cmd == EVHTTP_REQ_DELETE) {
		del.name = (char *)rest;
		fe_console_call_begin(cr, FE_METHOD_DELETE_AGENT, &del.base);
	} else if (cmd == EVHTTP_REQ_PATCH) {
		if ((body = fe_console_body_json(cr, update_keys, 0)) == NULL)
			return;
		if (agent_fields(cr, body, &agent, providers, &set_temp) == 0) {
			v = json_object_get(body, "clear_system_prompt");
			if (v != NULL && !json_is_boolean(v)) {
				fe_console_fail(cr, 400, "bad_request",
				    "clear_system_prompt must be a boolean");
			} else {
				upd.name = (char *)rest;
				upd.system_prompt = agent.system_prompt;
				upd.n_providers = agent.n_providers;
				upd.providers = agent.providers;
				upd.max_output_tokens = agent.max_output_tokens;
				upd.set_temperature = set_temp;
				upd.temperature = agent.temperature;
				upd.clear_system_prompt = json_is_true(v);
				upd.max_turns = agent.max_turns;
				upd.set_max_tool_calls =
				    agent.set_max_tool_calls;
				upd.max_tool_calls = agent.max_tool_calls;
				upd.max_wall_clock_ms =
				    agent.max_wall_clock_ms;
				fe_console_call_begin(
				    cr, FE_METHOD_UPDATE_AGENT, &upd.base);
			}
		}
		json_decref(body);
	} else
		fe_console_not_allowed(cr, "GET, PATCH, DELETE");
}

/* ---- a session's runs (IPC_JOURNAL_LIST_REQUEST) ---- */

static void
transcript_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct fe_console_req *cr = arg;

	if (cr->call != NULL)
		fe_call_finish(cr->call, GRPC_STATUS_UNAVAILABLE,
		    "journal did not answer");
}

void
fe_console_transcript(struct fe_console_req *cr, struct fe_call *call)
{
	Palyra__Ipc__JournalListRequest lr =
	    PALYRA__IPC__JOURNAL_LIST_REQUEST__INIT;
	struct fe_console *c = cr->ctx->console;
	struct timeval tv = {FE_JOURNAL_TIMEOUT_MS / 1000,
	    (FE_JOURNAL_TIMEOUT_MS % 1000) * 1000};
	int rc;

	if (cr->ctx->journald == NULL) {
		fe_call_finish(
		    call, GRPC_STATUS_UNAVAILABLE, "journal unavailable");
		return;
	}
	/* As ListSessions decides: operators and admins see every one. */
	lr.tenant = call->tenant;
	lr.runs = 1;
	lr.principal = strcmp(call->role, "operator") == 0 ||
			       strcmp(call->role, "admin") == 0
			   ? ""
			   : call->principal;
	lr.session_id = cr->name;
	lr.cursor = cr->cursor;
	lr.limit = cr->limit;
	if (++c->next_list_id >= LIST_ID_BIT)
		c->next_list_id = 1;
	cr->list_id = LIST_ID_BIT | c->next_list_id;
	if ((cr->timer = evtimer_new(cr->ctx->base, transcript_timeout, cr)) ==
		NULL ||
	    evtimer_add(cr->timer, &tv) < 0) {
		fe_call_finish(
		    call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	rc = ipc_chan_send(cr->ctx->journald, IPC_JOURNAL_LIST_REQUEST,
	    cr->list_id, &lr.base, NULL, 0);
	if (rc < 0)
		fe_call_finish(call,
		    rc == -ENOBUFS ? GRPC_STATUS_RESOURCE_EXHAUSTED
				   : GRPC_STATUS_UNAVAILABLE,
		    rc == -ENOBUFS ? "server busy" : "journal unavailable");
}

int
fe_console_list_reply(struct fe_ctx *ctx, const struct ipc_msg *m)
{
	const Palyra__Ipc__JournalListPage *page =
	    (const Palyra__Ipc__JournalListPage *)m->msg;
	struct fe_console_req *cr;
	json_t *runs, *it;
	size_t i;

	if ((m->hdr.request_id & LIST_ID_BIT) == 0)
		return 0;
	if (ctx->console == NULL)
		return 1;
	TAILQ_FOREACH(cr, &ctx->console->reqs, entry)
	if (cr->list_id == m->hdr.request_id && cr->call != NULL)
		break;
	if (cr == NULL)
		return 1; /* its client left */
	cr->list_id = 0;
	evtimer_del(cr->timer);
	if (page->error[0] != '\0') {
		fe_call_finish(cr->call,
		    page->bad_request ? GRPC_STATUS_INVALID_ARGUMENT
		    : strcmp(page->error, "unknown tenant") == 0
			? GRPC_STATUS_NOT_FOUND
			: GRPC_STATUS_UNAVAILABLE,
		    page->bad_request ? "malformed cursor"
		    : strcmp(page->error, "unknown tenant") == 0
			? "unknown session"
			: "journal unavailable");
		return 1;
	}
	/* Nothing visible: another principal's, another tenant's or no
	 * session are all the same. */
	if (page->n_items == 0 && cr->cursor[0] == '\0') {
		fe_call_finish(
		    cr->call, GRPC_STATUS_NOT_FOUND, "unknown session");
		return 1;
	}
	if ((runs = json_array()) == NULL)
		goto nomem;
	for (i = 0; i < page->n_items && i < JNL_LIST_PAGE_MAX; i++) {
		const Palyra__Ipc__JournalListItem *r = page->items[i];

		it = json_pack("{s:s,s:s,s:s,s:s,s:I,s:I,s:I}", "run_id",
		    r->run_id, "principal", r->principal, "agent", r->agent,
		    "status", r->status, "created_ms",
		    (json_int_t)r->created_ms, "updated_ms",
		    (json_int_t)r->updated_ms, "last_seq",
		    (json_int_t)r->last_seq);
		if (it == NULL || json_array_append_new(runs, it) < 0) {
			json_decref(runs);
			goto nomem;
		}
	}
	json_decref(cr->result);
	cr->result = json_pack("{s:s,s:o,s:o}", "session_id", cr->name, "runs",
	    runs, "next_cursor",
	    page->next_cursor[0] != '\0' &&
		    strlen(page->next_cursor) <= JNL_CURSOR_MAX
		? json_string(page->next_cursor)
		: json_null());
	if (cr->result == NULL)
		goto nomem;
	fe_call_finish(cr->call, GRPC_STATUS_OK, NULL);
	return 1;
nomem:
	fe_call_finish(
	    cr->call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	return 1;
}
