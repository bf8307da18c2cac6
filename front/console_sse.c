/*
 * console_sse.c: the text/event-stream replies of /console/v1 (a run's
 * start, a run's events with stream=1): one SSE event per RunEvent as the
 * gRPC code hands it over (that is, once journald committed it):
 *
 *   id: SEQ
 *   event: status|token|final|usage|error|note|input|tool_call|tool_result|
 *          approval_request|approval_decided|budget_warning
 *          (common/runevent.c names them)
 *   data: {the RunEvent as JSON, front/pbjson.c}
 *
 * The stream ends after the run's terminal status. A call that ends with
 * an error after the stream started ends it with one more event,
 * "event: error" with data {"error":{"code":...,"message":...}} and no id;
 * before the first event, the error is a plain JSON reply with its HTTP
 * status. An idle stream gets a ":" comment every
 * FE_CONSOLE_SSE_KEEPALIVE_S.
 *
 * A slow reader: when more than FE_CONSOLE_SSE_OUT_MAX bytes wait in the
 * connection's output buffer, the stream ends with an error event
 * (too_many_requests, "client not reading events"): the front never
 * buffers without bound. The run goes on; the client reads the rest from
 * /runs/ID/events after the last id it got. Streams open at once are
 * bounded per source address (FE_CONSOLE_SSE_PER_SOURCE) and in all
 * (FE_CONSOLE_SSE_MAX).
 *
 * Process: palyra-front. Touches the HTTP connections of its streams.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "console.h"
#include "log.h"
#include "palyra/v1/gateway.pb-c.h"
#include "runevent.h"

int
fe_console_sse_admit(struct fe_console_req *cr)
{
	struct fe_console *c = cr->ctx->console;
	struct fe_console_req *o;
	size_t same = 0;

	TAILQ_FOREACH(o, &c->reqs, entry)
	if (o->sse_counted && o->conn.has_source == cr->conn.has_source &&
	    memcmp(o->conn.source, cr->conn.source, FE_AUTH_SOURCE_LEN) == 0)
		same++;
	if (same >= FE_CONSOLE_SSE_PER_SOURCE ||
	    c->nsse >= FE_CONSOLE_SSE_MAX) {
		fe_console_fail(cr, 429, "too_many_requests",
		    "too many event streams open");
		return -1;
	}
	cr->sse_counted = 1;
	c->nsse++;
	return 0;
}

size_t
fe_console_streams(const struct fe_ctx *ctx)
{
	return ctx->console != NULL ? ctx->console->nsse : 0;
}

static size_t
out_pending(const struct fe_console_req *cr)
{
	struct evhttp_connection *evcon;
	struct bufferevent *bev;

	if (cr->req == NULL ||
	    (evcon = evhttp_request_get_connection(cr->req)) == NULL ||
	    (bev = evhttp_connection_get_bufferevent(evcon)) == NULL)
		return 0;
	return evbuffer_get_length(bufferevent_get_output(bev));
}

size_t
fe_console_pending(const struct fe_call *call)
{
	return call->http != NULL ? out_pending(call->http) : 0;
}

static void
keepalive_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fe_console_req *cr = arg;
	struct evbuffer *b;

	if (cr->req == NULL || !cr->sse_started ||
	    out_pending(cr) > FE_CONSOLE_SSE_OUT_MAX ||
	    (b = evbuffer_new()) == NULL)
		return;
	evbuffer_add(b, ":\n\n", 3);
	evhttp_send_reply_chunk(cr->req, b);
	evbuffer_free(b);
}

static int
start(struct fe_console_req *cr)
{
	struct evkeyvalq *h;
	struct timeval tv = {FE_CONSOLE_SSE_KEEPALIVE_S, 0};
	struct timeval wtv = {FE_HTTP_TIMEOUT_S, 0};
	struct evhttp_connection *evcon;
	struct bufferevent *bev;

	if (cr->sse_started)
		return 0;
	if (cr->req == NULL)
		return -ENOBUFS;
	h = evhttp_request_get_output_headers(cr->req);
	evhttp_add_header(h, "Content-Type", "text/event-stream");
	evhttp_add_header(h, "X-Accel-Buffering", "no");
	cr->sse_started = 1;
	cr->answered = 1;
	evhttp_send_reply_start(cr->req, 200, "OK");
	/*
	 * A stream is quiet while its run waits (a slow model, an approval):
	 * evhttp's read timeout would end it. Only writing is timed while it
	 * lasts; reading stays on to see the client go.
	 */
	if ((evcon = evhttp_request_get_connection(cr->req)) != NULL &&
	    (bev = evhttp_connection_get_bufferevent(evcon)) != NULL)
		bufferevent_set_timeouts(bev, NULL, &wtv);
	cr->keepalive =
	    event_new(cr->ctx->base, -1, EV_PERSIST, keepalive_cb, cr);
	if (cr->keepalive != NULL)
		event_add(cr->keepalive, &tv);
	return 0;
}

/* Writes one SSE event: id (0: none), name, data (one line: compact
 * JSON has no newline). */
static int
write_event(
    struct fe_console_req *cr, uint64_t id, const char *name, const char *data)
{
	struct evbuffer *b;
	int rc = 0;

	if ((b = evbuffer_new()) == NULL)
		return -ENOMEM;
	if ((id > 0 && evbuffer_add_printf(
			   b, "id: %llu\n", (unsigned long long)id) < 0) ||
	    evbuffer_add_printf(b, "event: %s\ndata: %s\n\n", name, data) < 0)
		rc = -ENOMEM;
	else
		evhttp_send_reply_chunk(cr->req, b);
	evbuffer_free(b);
	return rc;
}

int
fe_console_sse_event(struct fe_console_req *cr, const ProtobufCMessage *msg)
{
	const Palyra__V1__RunEvent *ev = (const Palyra__V1__RunEvent *)msg;
	json_t *obj;
	const char *kind;
	char *text;
	int rc;

	if (msg->descriptor != &palyra__v1__run_event__descriptor)
		return -EINVAL;
	if (cr->req == NULL || out_pending(cr) > FE_CONSOLE_SSE_OUT_MAX)
		return -ENOBUFS;
	if ((rc = start(cr)) < 0)
		return rc;
	if ((obj = fe_pb_json(msg)) == NULL)
		return -ENOMEM;
	text = json_dumps(obj, JSON_COMPACT);
	json_decref(obj);
	if (text == NULL)
		return -ENOMEM;
	kind = run_event_kind(ev);
	rc = write_event(cr, ev->seq, kind != NULL ? kind : "message", text);
	free(text);
	return rc;
}

int
fe_console_sse_finish(struct fe_console_req *cr, struct fe_call *call)
{
	struct evhttp_connection *evcon;
	const char *code;
	json_t *obj;
	char *text;
	int status;

	if (cr->req == NULL)
		return 1;
	if (!cr->sse_started) {
		if (call->status != GRPC_STATUS_OK)
			return 0;
		/* Nothing after after_seq in a run that ended. */
		if (start(cr) < 0)
			return 0;
	}
	if (call->status != GRPC_STATUS_OK) {
		fe_console_status_http(call->status, &status, &code);
		obj = json_pack("{s:{s:s,s:s}}", "error", "code", code,
		    "message", call->message[0] != '\0' ? call->message : code);
		text = obj != NULL ? json_dumps(obj, JSON_COMPACT) : NULL;
		json_decref(obj);
		if (text != NULL)
			(void)write_event(cr, 0, "error", text);
		free(text);
	}
	fe_console_sse_stop(cr);
	/* evhttp may free the connection in there: not our callback. */
	fe_console_detach(cr);
	/* The next request on the connection has evhttp's timeouts again. */
	if ((evcon = evhttp_request_get_connection(cr->req)) != NULL)
		evhttp_connection_set_timeout(evcon, FE_HTTP_TIMEOUT_S);
	evhttp_send_reply_end(cr->req);
	cr->req = NULL;
	return 1;
}

void
fe_console_sse_stop(struct fe_console_req *cr)
{
	if (cr->keepalive != NULL) {
		event_free(cr->keepalive);
		cr->keepalive = NULL;
	}
}
