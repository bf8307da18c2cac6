/*
 * call.c: one gRPC call on one HTTP/2 stream: its state machine, request
 * header checks, the length-prefixed message framing in both directions,
 * deadlines, and how a call ends (trailers, or trailers-only).
 *
 * Process: palyra-front. Touches the call's buffers and timers; sends to
 * the client only through h2.c and to peers only through peer.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <sodium.h>

#include "front.h"
#include "log.h"

#define GRPC_PREFIX_LEN 5 /* compressed flag, u32be length */
#define GRPC_TIMEOUT_DIGITS 8

static const char *const state_names[] = {
    [FE_CALL_HEADERS] = "HEADERS",
    [FE_CALL_AUTHENTICATING] = "AUTHENTICATING",
    [FE_CALL_WAITING_START] = "WAITING_START",
    [FE_CALL_PARKED] = "PARKED",
    [FE_CALL_RUNNING] = "RUNNING",
    [FE_CALL_HALF_CLOSED] = "HALF_CLOSED",
    [FE_CALL_CLOSING] = "CLOSING",
    [FE_CALL_CLOSED] = "CLOSED",
    [FE_CALL_REATTACHING] = "REATTACHING",
    [FE_CALL_RESOLVING] = "RESOLVING",
};

#define S(x) (1u << (x))
/* For each state, the states it may move to. */
static const unsigned int transitions[] = {
    [FE_CALL_HEADERS] = S(FE_CALL_AUTHENTICATING) | S(FE_CALL_WAITING_START) |
			S(FE_CALL_CLOSING) | S(FE_CALL_CLOSED),
    [FE_CALL_AUTHENTICATING] =
	S(FE_CALL_WAITING_START) | S(FE_CALL_CLOSING) | S(FE_CALL_CLOSED),
    [FE_CALL_WAITING_START] = S(FE_CALL_RUNNING) | S(FE_CALL_PARKED) |
			      S(FE_CALL_REATTACHING) | S(FE_CALL_RESOLVING) |
			      S(FE_CALL_CLOSING) | S(FE_CALL_CLOSED),
    [FE_CALL_PARKED] =
	S(FE_CALL_RUNNING) | S(FE_CALL_CLOSING) | S(FE_CALL_CLOSED),
    /* Back to PARKED: the worker went away before the run's first event.
     * REATTACHING: the start's idempotency key names an existing run. */
    [FE_CALL_RUNNING] = S(FE_CALL_HALF_CLOSED) | S(FE_CALL_PARKED) |
			S(FE_CALL_REATTACHING) | S(FE_CALL_CLOSING) |
			S(FE_CALL_CLOSED),
    [FE_CALL_HALF_CLOSED] = S(FE_CALL_PARKED) | S(FE_CALL_REATTACHING) |
			    S(FE_CALL_CLOSING) | S(FE_CALL_CLOSED),
    [FE_CALL_CLOSING] = S(FE_CALL_CLOSED),
    [FE_CALL_CLOSED] = 0,
    [FE_CALL_REATTACHING] =
	S(FE_CALL_RUNNING) | S(FE_CALL_CLOSING) | S(FE_CALL_CLOSED),
    [FE_CALL_RESOLVING] = S(FE_CALL_RUNNING) | S(FE_CALL_PARKED) |
			  S(FE_CALL_CLOSING) | S(FE_CALL_CLOSED),
};
#undef S

const char *
fe_call_state_name(enum fe_call_state state)
{
	if ((size_t)state >= sizeof(state_names) / sizeof(state_names[0]))
		return "?";
	return state_names[state];
}

/* Returns 0, or -EINVAL for a move the table above does not allow. */
int
fe_call_transition(struct fe_call *call, enum fe_call_state next)
{
	if ((transitions[call->state] & (1u << next)) == 0) {
		log_warn("call %d: illegal transition %s -> %s",
		    call->stream_id, fe_call_state_name(call->state),
		    fe_call_state_name(next));
		return -EINVAL;
	}
	call->state = next;
	return 0;
}

/*
 * Parses a grpc-timeout value: 1 to 8 ASCII digits and a unit (H M S m u n).
 * Returns 0 and the timeout in milliseconds (rounded up), or -EINVAL.
 */
int
fe_grpc_timeout_parse(const char *value, size_t len, int64_t *ms)
{
	int64_t n = 0;
	size_t i;

	if (len < 2 || len > GRPC_TIMEOUT_DIGITS + 1)
		return -EINVAL;
	for (i = 0; i < len - 1; i++) {
		if (value[i] < '0' || value[i] > '9')
			return -EINVAL;
		n = n * 10 + (value[i] - '0');
	}
	switch (value[len - 1]) {
	case 'H':
		*ms = n * 3600 * 1000;
		break;
	case 'M':
		*ms = n * 60 * 1000;
		break;
	case 'S':
		*ms = n * 1000;
		break;
	case 'm':
		*ms = n;
		break;
	case 'u':
		*ms = (n + 999) / 1000;
		break;
	case 'n':
		*ms = (n + 999999) / 1000000;
		break;
	default:
		return -EINVAL;
	}
	return 0;
}

static int
header_is(const uint8_t *name, size_t namelen, const char *want)
{
	size_t len = strlen(want);

	return namelen == len && memcmp(name, want, len) == 0;
}

static int
content_type_ok(const uint8_t *value, size_t len)
{
	static const char base[] = "application/grpc";
	size_t blen = sizeof(base) - 1;

	if (len < blen || memcmp(value, base, blen) != 0)
		return 0;
	value += blen;
	len -= blen;
	if (len >= 6 && memcmp(value, "+proto", 6) == 0) {
		value += 6;
		len -= 6;
	}
	return len == 0 || value[0] == ';';
}

/* Returns 0, or -E2BIG when the headers are over the limit. */
int
fe_call_header(struct fe_call *call, const uint8_t *name, size_t namelen,
    const uint8_t *value, size_t valuelen)
{
	const char *token;
	size_t tokenlen;

	/* RFC 7541 counts 32 bytes of overhead per field. */
	call->header_bytes += namelen + valuelen + 32;
	if (call->header_bytes > FE_GRPC_MAX_HEADERS)
		return -E2BIG;
	if (header_is(name, namelen, ":method")) {
		call->is_post = valuelen == 4 && memcmp(value, "POST", 4) == 0;
	} else if (header_is(name, namelen, ":path")) {
		if (valuelen >= sizeof(call->path)) {
			call->path_too_long = 1;
			return 0;
		}
		memcpy(call->path, value, valuelen);
		call->path[valuelen] = '\0';
		call->method = fe_rpc_route(call->path);
	} else if (header_is(name, namelen, "content-type")) {
		call->content_type_ok = content_type_ok(value, valuelen);
	} else if (header_is(name, namelen, "grpc-timeout")) {
		if (fe_grpc_timeout_parse(
			(const char *)value, valuelen, &call->timeout_ms) < 0)
			call->timeout_invalid = 1;
	} else if (header_is(name, namelen, "authorization")) {
		if (call->auth != FE_AUTH_ABSENT ||
		    fe_auth_bearer(
			(const char *)value, valuelen, &token, &tokenlen) < 0) {
			call->auth = FE_AUTH_MALFORMED;
			return 0;
		}
		call->auth = FE_AUTH_PRESENT;
		/* Only the keyed hash is kept; the token stays in nghttp2. */
		if (fe_rpc_needs_auth(call->method) &&
		    call->conn->ctx->have_keys)
			fe_auth_hash(
			    call->conn->ctx, token, tokenlen, call->token_hash);
	}
	return 0;
}

static void
deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fe_call *call = arg;

	/* A reattached call only stops following its run. */
	if (call->state == FE_CALL_RUNNING ||
	    call->state == FE_CALL_HALF_CLOSED)
		fe_worker_cancel(call, "deadline exceeded", call->reattached);
	fe_call_finish(call, GRPC_STATUS_DEADLINE_EXCEEDED, "deadline exceeded");
}

static void
auth_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fe_call *call = arg;

	if (call->state == FE_CALL_AUTHENTICATING)
		fe_call_finish(
		    call, GRPC_STATUS_UNAVAILABLE, "authentication timed out");
}

static int
timer_start(struct fe_call *call, struct event **ev,
    void (*cb)(evutil_socket_t, short, void *), int64_t ms)
{
	struct timeval tv;

	if (*ev == NULL) {
		*ev = evtimer_new(call->conn->ctx->base, cb, call);
		if (*ev == NULL)
			return -ENOMEM;
	}
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	return evtimer_add(*ev, &tv) < 0 ? -ENOMEM : 0;
}

int
fe_call_auth_timer_start(struct fe_call *call)
{
	return timer_start(
	    call, &call->auth_timer, auth_timeout_cb, FE_AUTH_TIMEOUT_MS);
}

static void
grace_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fe_call *call = arg;

	/* Journald's notice did not come: the run's end is unknown here. */
	fe_call_finish(call, GRPC_STATUS_UNAVAILABLE, "worker exited");
}

int
fe_call_grace_timer_start(struct fe_call *call)
{
	return timer_start(call, &call->grace_timer, grace_timeout_cb,
	    FE_WORKER_LOST_GRACE_MS);
}

static void
park_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fe_call *call = arg;

	/* No worker of the tenant attached in time (it cannot start). */
	if (call->state == FE_CALL_PARKED)
		fe_call_finish(
		    call, GRPC_STATUS_UNAVAILABLE, "tenant worker unavailable");
}

int
fe_call_park_timer_start(struct fe_call *call)
{
	return timer_start(call, &call->park_timer, park_timeout_cb,
	    FE_WORKER_START_TIMEOUT_MS);
}

void
fe_call_headers_done(struct fe_call *call)
{
	if (call->state != FE_CALL_HEADERS)
		return;
	if (!call->is_post) {
		fe_call_transition(call, FE_CALL_CLOSING);
		fe_h2_submit_http_error(call, 405);
		return;
	}
	if (!call->content_type_ok) {
		fe_call_transition(call, FE_CALL_CLOSING);
		fe_h2_submit_http_error(call, 415);
		return;
	}
	if (call->method == FE_METHOD_UNKNOWN || call->path_too_long) {
		fe_call_finish(call, GRPC_STATUS_UNIMPLEMENTED, "unknown method");
		return;
	}
	if (call->timeout_invalid) {
		fe_call_finish(
		    call, GRPC_STATUS_INVALID_ARGUMENT, "invalid grpc-timeout");
		return;
	}
	/* Unary methods answer at once; only streams need the timer, and
	 * the methods journald answers (services.c), which may be slow. */
	if (call->timeout_ms >= 0 && (call->method == FE_METHOD_RUN_STREAM ||
					 call->method == FE_METHOD_HEALTH_WATCH ||
					 call->method == FE_METHOD_REFLECTION_V1 ||
					 call->method ==
					     FE_METHOD_REFLECTION_V1ALPHA ||
					 fe_services_method(call->method))) {
		call->deadline_unix_ms = fe_now_unix_ms() + call->timeout_ms;
		if (timer_start(call, &call->deadline_timer, deadline_cb,
			call->timeout_ms) < 0) {
			fe_call_finish(
			    call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
			return;
		}
	}
	fe_rpc_begin(call);
}

static int
accepts_messages(const struct fe_call *call)
{
	return call->state == FE_CALL_WAITING_START ||
	       call->state == FE_CALL_RUNNING;
}

/*
 * Checks a message prefix. Returns the message length, or -1 after ending
 * the call for a prefix we refuse.
 */
static int64_t
prefix_check(struct fe_call *call, const uint8_t *p)
{
	char msg[64];
	uint32_t len;

	len = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 |
	      (uint32_t)p[3] << 8 | p[4];
	if (p[0] == 1) {
		fe_call_abort(
		    call, GRPC_STATUS_UNIMPLEMENTED, "compression not supported");
		return -1;
	}
	if (p[0] != 0) {
		fe_call_abort(call, GRPC_STATUS_INTERNAL, "invalid message flags");
		return -1;
	}
	if (len > FE_GRPC_MAX_MESSAGE) {
		snprintf(msg, sizeof(msg), "message larger than %d bytes",
		    FE_GRPC_MAX_MESSAGE);
		fe_call_abort(call, GRPC_STATUS_RESOURCE_EXHAUSTED, msg);
		return -1;
	}
	return len;
}

/* Delivers every complete message buffered on the call. */
static void
drain_input(struct fe_call *call)
{
	uint8_t prefix[GRPC_PREFIX_LEN], *p;
	int64_t len;

	while (accepts_messages(call) &&
	       evbuffer_get_length(call->in) >= GRPC_PREFIX_LEN) {
		evbuffer_copyout(call->in, prefix, GRPC_PREFIX_LEN);
		if ((len = prefix_check(call, prefix)) < 0)
			return;
		if (evbuffer_get_length(call->in) <
		    GRPC_PREFIX_LEN + (size_t)len)
			return;
		p = evbuffer_pullup(call->in, GRPC_PREFIX_LEN + len);
		if (p == NULL) {
			fe_call_abort(
			    call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
			return;
		}
		call->got_message = 1;
		fe_rpc_message(call, p + GRPC_PREFIX_LEN, (size_t)len);
		evbuffer_drain(call->in, GRPC_PREFIX_LEN + len);
	}
}

/*
 * Held until the token is known, or until a worker takes the parked call;
 * bounded like one message.
 */
static void
hold_input(struct fe_call *call, const uint8_t *data, size_t len)
{
	if (evbuffer_get_length(call->in) + len >
	    GRPC_PREFIX_LEN + FE_GRPC_MAX_MESSAGE) {
		fe_call_abort(call, GRPC_STATUS_RESOURCE_EXHAUSTED,
		    call->state == FE_CALL_PARKED ||
			    call->state == FE_CALL_REATTACHING
			? "too much data while waiting for a worker"
			: "too much data before authentication");
		return;
	}
	evbuffer_add(call->in, data, len);
}

void
fe_call_data(struct fe_call *call, const uint8_t *data, size_t len)
{
	int64_t msglen;

	if (call->state == FE_CALL_AUTHENTICATING ||
	    call->state == FE_CALL_PARKED || call->state == FE_CALL_RESOLVING ||
	    call->state == FE_CALL_REATTACHING) {
		hold_input(call, data, len);
		return;
	}
	if (!accepts_messages(call))
		return;
	/* Common case: whole messages in one chunk, nothing to copy. */
	while (evbuffer_get_length(call->in) == 0 && accepts_messages(call) &&
	       len >= GRPC_PREFIX_LEN) {
		if ((msglen = prefix_check(call, data)) < 0)
			return;
		if (len - GRPC_PREFIX_LEN < (size_t)msglen)
			break;
		call->got_message = 1;
		fe_rpc_message(call, data + GRPC_PREFIX_LEN, (size_t)msglen);
		data += GRPC_PREFIX_LEN + msglen;
		len -= GRPC_PREFIX_LEN + msglen;
	}
	if (len > 0 && (call->state == FE_CALL_PARKED ||
			   call->state == FE_CALL_RESOLVING ||
			   call->state == FE_CALL_REATTACHING)) {
		hold_input(call, data, len);
		return;
	}
	if (len == 0 || !accepts_messages(call))
		return;
	if (evbuffer_add(call->in, data, len) < 0) {
		fe_call_abort(
		    call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	drain_input(call);
}

void
fe_call_input_ended(struct fe_call *call)
{
	call->input_ended = 1;
	if (!accepts_messages(call))
		return;
	if (evbuffer_get_length(call->in) > 0) {
		fe_call_abort(
		    call, GRPC_STATUS_INVALID_ARGUMENT, "truncated message");
		return;
	}
	fe_rpc_input_ended(call);
}

void
fe_call_input_resume(struct fe_call *call)
{
	drain_input(call);
	if (call->input_ended)
		fe_call_input_ended(call);
}

void
fe_call_finish(struct fe_call *call, uint32_t status, const char *msg)
{
	if (call->state == FE_CALL_CLOSING || call->state == FE_CALL_CLOSED)
		return;
	fe_reattach_end(call);
	fe_runs_end(call);
	fe_worker_detach(call);
	fe_health_unwatch(call);
	if (call->start_req != NULL) {
		palyra__v1__run_stream_request__free_unpacked(
		    call->start_req, NULL);
		call->start_req = NULL;
	}
	if (call->jreq != NULL) {
		fe_jreq_abandon(call->jreq);
		call->jreq = NULL;
	}
	if (call->deadline_timer != NULL)
		evtimer_del(call->deadline_timer);
	if (call->auth_timer != NULL)
		evtimer_del(call->auth_timer);
	call->status = status;
	snprintf(
	    call->message, sizeof(call->message), "%s", msg != NULL ? msg : "");
	fe_call_transition(call, FE_CALL_CLOSING);
	if (status != GRPC_STATUS_OK)
		log_debug("call %d %s: status %u %s", call->stream_id,
		    call->path, status, call->message);
	if (call->http != NULL) {
		fe_console_finish(call);
		return;
	}
	if (!call->headers_sent) {
		if (fe_h2_submit_trailers_only(call) < 0)
			nghttp2_submit_rst_stream(call->conn->session,
			    NGHTTP2_FLAG_NONE, call->stream_id,
			    NGHTTP2_INTERNAL_ERROR);
		return;
	}
	call->trailers_pending = 1;
	fe_h2_resume(call);
}

void
fe_call_abort(struct fe_call *call, uint32_t status, const char *msg)
{
	/* The client will see no more of the run: as if it went away. */
	if (call->worker != NULL)
		fe_worker_cancel(call, msg, 1);
	fe_call_finish(call, status, msg);
}

/* Returns 0, -ENOBUFS over FE_STREAM_OUT_MAX, or -ENOMEM/-EIO. */
int
fe_call_send_message(struct fe_call *call, const ProtobufCMessage *msg)
{
	struct evbuffer_iovec vec;
	uint8_t *p;
	size_t len;

	if (call->http != NULL)
		return fe_console_send(call, msg);
	len = protobuf_c_message_get_packed_size(msg);
	if (len > FE_GRPC_MAX_MESSAGE ||
	    evbuffer_get_length(call->out) + GRPC_PREFIX_LEN + len >
		FE_STREAM_OUT_MAX)
		return -ENOBUFS;
	if (evbuffer_reserve_space(call->out, GRPC_PREFIX_LEN + len, &vec, 1) !=
	    1)
		return -ENOMEM;
	p = vec.iov_base;
	p[0] = 0;
	p[1] = (uint8_t)(len >> 24);
	p[2] = (uint8_t)(len >> 16);
	p[3] = (uint8_t)(len >> 8);
	p[4] = (uint8_t)len;
	protobuf_c_message_pack(msg, p + GRPC_PREFIX_LEN);
	vec.iov_len = GRPC_PREFIX_LEN + len;
	if (evbuffer_commit_space(call->out, &vec, 1) < 0)
		return -ENOMEM;
	if (!call->headers_sent)
		return fe_h2_submit_headers(call);
	return fe_h2_resume(call);
}

/*
 * Flow control of a run's own call. nghttp2 takes bytes from call->out only
 * as the client's stream and connection windows allow (and h2.c's output
 * bound, FE_H2_OUTPUT_HIGH, per connection), so call->out is what the
 * client has yet to accept. Past FE_FLOW_HIGH_WATER the worker pauses the
 * run (no provider output; its status events still come), and resumes it
 * once the client read down to FE_FLOW_LOW_WATER. A reattached call only
 * follows its run and never pauses it (rpc.c ends one that falls
 * FE_FLOW_FOLLOWER_MAX behind). A failed resume is tried again at the next
 * check; FE_STREAM_OUT_MAX stays the last line of defence.
 */
void
fe_call_flow_check(struct fe_call *call)
{
	size_t len = evbuffer_get_length(call->out);

	if (call->worker == NULL || call->reattached)
		return;
	if (!call->flow_paused && len >= FE_FLOW_HIGH_WATER) {
		if (fe_worker_flow(call, 1) == 0) {
			call->flow_paused = 1;
			call->conn->ctx->metrics.flow_pauses++;
			log_debug("call %d: run paused, %zu bytes unread",
			    call->stream_id, len);
		}
	} else if (call->flow_paused && len <= FE_FLOW_LOW_WATER) {
		if (fe_worker_flow(call, 0) == 0) {
			call->flow_paused = 0;
			log_debug("call %d: run resumed", call->stream_id);
		}
	}
}

static void
call_reset(struct fe_call *call, struct fe_conn *conn, int32_t stream_id)
{
	struct evbuffer *in = call->in, *out = call->out;

	memset(call, 0, sizeof(*call));
	call->in = in;
	call->out = out;
	call->conn = conn;
	call->stream_id = stream_id;
	call->state = FE_CALL_HEADERS;
	call->timeout_ms = -1;
}

struct fe_call *
fe_call_new(struct fe_conn *conn, int32_t stream_id)
{
	struct fe_ctx *ctx = conn->ctx;
	struct fe_call *call;

	if ((call = TAILQ_FIRST(&ctx->call_pool)) != NULL) {
		TAILQ_REMOVE(&ctx->call_pool, call, conn_entry);
		ctx->ncall_pool--;
	} else {
		call = calloc(1, sizeof(*call));
		if (call == NULL)
			return NULL;
		call->in = evbuffer_new();
		call->out = evbuffer_new();
		if (call->in == NULL || call->out == NULL) {
			if (call->in != NULL)
				evbuffer_free(call->in);
			if (call->out != NULL)
				evbuffer_free(call->out);
			free(call);
			return NULL;
		}
	}
	call_reset(call, conn, stream_id);
	clock_gettime(CLOCK_MONOTONIC, &call->started);
	TAILQ_INSERT_TAIL(&conn->calls, call, conn_entry);
	return call;
}

static void
call_free(struct fe_call *call)
{
	evbuffer_free(call->in);
	evbuffer_free(call->out);
	free(call);
}

void
fe_call_release(struct fe_call *call, int disconnected)
{
	struct fe_ctx *ctx = call->conn->ctx;

	if (call->jreq != NULL) {
		fe_jreq_abandon(call->jreq);
		call->jreq = NULL;
	}
	if (call->worker != NULL && disconnected)
		fe_worker_cancel(call, "client disconnected", 1);
	fe_reattach_end(call);
	fe_runs_end(call);
	fe_worker_detach(call);
	fe_health_unwatch(call);
	if (call->deadline_timer != NULL)
		event_free(call->deadline_timer);
	if (call->auth_timer != NULL)
		event_free(call->auth_timer);
	if (call->grace_timer != NULL)
		event_free(call->grace_timer);
	if (call->park_timer != NULL)
		event_free(call->park_timer);
	call->deadline_timer = call->auth_timer = call->grace_timer = NULL;
	call->park_timer = NULL;
	if (call->start_req != NULL) {
		palyra__v1__run_stream_request__free_unpacked(
		    call->start_req, NULL);
		call->start_req = NULL;
	}
	sodium_memzero(call->token_hash, sizeof(call->token_hash));
	if (call->state != FE_CALL_CLOSED)
		fe_call_transition(call, FE_CALL_CLOSED);
	TAILQ_REMOVE(&call->conn->calls, call, conn_entry);
	if (ctx->ncall_pool >= FE_CALL_POOL_MAX) {
		call_free(call);
		return;
	}
	evbuffer_drain(call->in, evbuffer_get_length(call->in));
	evbuffer_drain(call->out, evbuffer_get_length(call->out));
	TAILQ_INSERT_HEAD(&ctx->call_pool, call, conn_entry);
	ctx->ncall_pool++;
}

void
fe_call_free_pool(struct fe_ctx *ctx)
{
	struct fe_call *call;

	while ((call = TAILQ_FIRST(&ctx->call_pool)) != NULL) {
		TAILQ_REMOVE(&ctx->call_pool, call, conn_entry);
		call_free(call);
	}
	ctx->ncall_pool = 0;
}
