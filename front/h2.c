/*
 * h2.c: the gRPC listener of palyra-front: HTTP/2 with prior knowledge
 * (h2c) on loopback, or over TLS with ALPN "h2" (tls.c), on libevent
 * bufferevents, one nghttp2 server session per
 * connection. Streams become gRPC calls (call.c); this file moves bytes
 * and frames, and submits the response headers, data and trailers that
 * call.c decides on. It also holds the limits against abusive clients
 * (common/limits.h, "HTTP/2 abuse resistance"): connections per source
 * address, the preface and idle timers, the header list size, rapid
 * reset; nghttp2's own options bound CONTINUATION frames and SETTINGS or
 * PING acknowledgements.
 *
 * Process: palyra-front. Touches the listening socket (fd 4) and the
 * accepted client sockets; never an IPC channel directly.
 */
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "front.h"
#include "log.h"

/* Bytes queued towards a client before nghttp2 is told to wait. */
#define FE_H2_IOV 16

#define NV(n, v)                                                               \
	{                                                                      \
		(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, sizeof(v) - 1,  \
		    NGHTTP2_NV_FLAG_NONE                                       \
	}

static void conn_free(struct fe_conn *);

static int64_t
monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
conn_timer_arm_ms(struct fe_conn *conn, int64_t ms)
{
	struct timeval tv = {
	    (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};

	if (conn->timer != NULL)
		(void)evtimer_add(conn->timer, &tv);
}

/*
 * Ends the connection on our side: GOAWAY with code, then the connection
 * is freed once the GOAWAY is written (conn_send), or after FE_H2_CLOSE_S
 * if the client does not read it.
 */
static void
conn_terminate(
    struct fe_conn *conn, enum fe_goaway_reason reason, uint32_t code)
{
	if (conn->closing)
		return;
	if (conn->goaway_reason < 0)
		conn->goaway_reason = (int)reason;
	(void)nghttp2_session_terminate_session(conn->session, code);
	/* Counted now: a client that reads nothing never gets it. */
	fe_metrics_goaway(conn, code);
	conn->closing = 1;
	conn_timer_arm_ms(conn, FE_H2_CLOSE_S * 1000);
	fe_conn_mark_dirty(conn);
}

/*
 * The connection's one timer: the preface deadline until the client's
 * SETTINGS arrive, then the idle deadline (no stream open for
 * FE_H2_IDLE_S), then, once closing, the deadline to read our GOAWAY.
 */
static void
conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fe_conn *conn = arg;
	int64_t idle_ms;

	if (conn->closing) {
		conn_free(conn);
		return;
	}
	if (!conn->preface_done) {
		if (conn->tls && !conn->tls_ready) {
			conn->ctx->metrics.goaway[FE_GOAWAY_PREFACE_TIMEOUT]++;
			conn_free(conn);
			return;
		}
		log_debug("h2: no preface within %ds", FE_H2_PREFACE_S);
		conn_terminate(
		    conn, FE_GOAWAY_PREFACE_TIMEOUT, NGHTTP2_SETTINGS_TIMEOUT);
		return;
	}
	if (!TAILQ_EMPTY(&conn->calls)) {
		conn_timer_arm_ms(conn, FE_H2_IDLE_S * 1000);
		return;
	}
	idle_ms = monotonic_ms() - conn->active_ms;
	if (idle_ms < FE_H2_IDLE_S * 1000) {
		conn_timer_arm_ms(conn, FE_H2_IDLE_S * 1000 - idle_ms);
		return;
	}
	conn_terminate(conn, FE_GOAWAY_IDLE, NGHTTP2_NO_ERROR);
}

/* One token of the connection's stream reset bucket (rapid reset,
 * CVE-2023-44487); returns 0 when it is empty. */
static int
conn_reset_allowed(struct fe_conn *conn)
{
	int64_t now = monotonic_ms();

	conn->reset_tokens +=
	    (double)(now - conn->reset_ms) * FE_H2_RESETS_PER_S / 1000.0;
	if (conn->reset_tokens > FE_H2_RESETS_PER_S)
		conn->reset_tokens = FE_H2_RESETS_PER_S;
	conn->reset_ms = now;
	if (conn->reset_tokens < 1)
		return 0;
	conn->reset_tokens -= 1;
	return 1;
}

size_t
fe_grpc_percent_encode(const char *in, char *out, size_t outsize)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p;
	size_t n = 0;

	/* The gRPC spec: bytes outside 0x20-0x7E, and '%', become %XX. */
	for (p = (const unsigned char *)in; *p != '\0'; p++) {
		if (*p >= 0x20 && *p <= 0x7e && *p != '%') {
			if (n + 1 >= outsize)
				break;
			out[n++] = (char)*p;
		} else {
			if (n + 3 >= outsize)
				break;
			out[n++] = '%';
			out[n++] = hex[*p >> 4];
			out[n++] = hex[*p & 0x0f];
		}
	}
	if (outsize > 0)
		out[n] = '\0';
	return n;
}

void
fe_conn_mark_dirty(struct fe_conn *conn)
{
	struct fe_ctx *ctx = conn->ctx;

	if (conn->dirty)
		return;
	conn->dirty = 1;
	TAILQ_INSERT_TAIL(&ctx->dirty, conn, dirty_entry);
	event_active(ctx->flush_event, EV_TIMEOUT, 0);
}

/* Returns 0, or -1 when the connection is finished and must be freed. */
static int
conn_send(struct fe_conn *conn)
{
	if (nghttp2_session_send(conn->session) != 0)
		return -1;
	if (!nghttp2_session_want_read(conn->session) &&
	    !nghttp2_session_want_write(conn->session) &&
	    evbuffer_get_length(bufferevent_get_output(conn->bev)) == 0)
		return -1;
	return 0;
}

static void
flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fe_ctx *ctx = arg;
	struct fe_conn *conn;

	while ((conn = TAILQ_FIRST(&ctx->dirty)) != NULL) {
		TAILQ_REMOVE(&ctx->dirty, conn, dirty_entry);
		conn->dirty = 0;
		if (conn_send(conn) < 0)
			conn_free(conn);
	}
}

static void
build_trailers(struct fe_call *call, nghttp2_nv *nv, size_t *nnv, char *status,
    size_t statussize, char *message, size_t messagesize)
{
	size_t n = *nnv;

	fe_metrics_grpc_done(call->conn->ctx, call);
	snprintf(status, statussize, "%u", call->status);
	nv[n].name = (uint8_t *)"grpc-status";
	nv[n].namelen = sizeof("grpc-status") - 1;
	nv[n].value = (uint8_t *)status;
	nv[n].valuelen = strlen(status);
	nv[n].flags = NGHTTP2_NV_FLAG_NONE;
	n++;
	if (call->message[0] != '\0') {
		nv[n].name = (uint8_t *)"grpc-message";
		nv[n].namelen = sizeof("grpc-message") - 1;
		nv[n].value = (uint8_t *)message;
		nv[n].valuelen =
		    fe_grpc_percent_encode(call->message, message, messagesize);
		nv[n].flags = NGHTTP2_NV_FLAG_NONE;
		n++;
	}
	*nnv = n;
}

/*
 * Data provider: hands nghttp2 the framed messages queued on the call;
 * defers when there are none yet (fe_h2_resume() wakes it), and ends with
 * the trailers once the call has its status.
 */
static ssize_t
data_read_cb(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
    size_t length, uint32_t *data_flags, nghttp2_data_source *source,
    void *user_data)
{
	struct fe_call *call = source->ptr;
	nghttp2_nv nv[2];
	char status[16], message[FE_GRPC_MESSAGE_MAX * 3 + 1];
	size_t nnv = 0;
	int n;

	n = evbuffer_remove(call->out, buf, length);
	if (n < 0)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	/* The client read: a paused run may resume (call.c). */
	if (call->flow_paused)
		fe_call_flow_check(call);
	if (evbuffer_get_length(call->out) > 0)
		return n;
	if (!call->trailers_pending)
		return n > 0 ? n : NGHTTP2_ERR_DEFERRED;
	*data_flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
	build_trailers(
	    call, nv, &nnv, status, sizeof(status), message, sizeof(message));
	if (nghttp2_submit_trailer(session, stream_id, nv, nnv) != 0)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	call->trailers_pending = 0;
	call->trailers_sent = 1;
	return n;
}

int
fe_h2_submit_headers(struct fe_call *call)
{
	nghttp2_nv nv[] = {
	    NV(":status", "200"),
	    NV("content-type", "application/grpc"),
	};
	nghttp2_data_provider prd;

	prd.source.ptr = call;
	prd.read_callback = data_read_cb;
	if (nghttp2_submit_response(
		call->conn->session, call->stream_id, nv, 2, &prd) != 0)
		return -EIO;
	call->headers_sent = 1;
	fe_conn_mark_dirty(call->conn);
	return 0;
}

int
fe_h2_submit_trailers_only(struct fe_call *call)
{
	nghttp2_nv nv[4] = {
	    NV(":status", "200"),
	    NV("content-type", "application/grpc"),
	};
	char status[16], message[FE_GRPC_MESSAGE_MAX * 3 + 1];
	size_t nnv = 2;

	build_trailers(
	    call, nv, &nnv, status, sizeof(status), message, sizeof(message));
	if (nghttp2_submit_response(
		call->conn->session, call->stream_id, nv, nnv, NULL) != 0)
		return -EIO;
	call->headers_sent = 1;
	call->trailers_sent = 1;
	call->trailers_pending = 0;
	fe_conn_mark_dirty(call->conn);
	return 0;
}

int
fe_h2_submit_http_error(struct fe_call *call, int http_status)
{
	nghttp2_nv nv[1] = {NV(":status", "500")};
	char status[8];

	snprintf(status, sizeof(status), "%d", http_status);
	nv[0].value = (uint8_t *)status;
	nv[0].valuelen = strlen(status);
	if (nghttp2_submit_response(
		call->conn->session, call->stream_id, nv, 1, NULL) != 0)
		return -EIO;
	call->headers_sent = 1;
	call->trailers_sent = 1;
	fe_conn_mark_dirty(call->conn);
	return 0;
}

int
fe_h2_resume(struct fe_call *call)
{
	/* Fails harmlessly when the data provider is not deferred. */
	(void)nghttp2_session_resume_data(call->conn->session, call->stream_id);
	fe_conn_mark_dirty(call->conn);
	return 0;
}

static ssize_t
send_cb(nghttp2_session *session, const uint8_t *data, size_t length, int flags,
    void *user_data)
{
	struct fe_conn *conn = user_data;
	struct evbuffer *output = bufferevent_get_output(conn->bev);

	if (evbuffer_get_length(output) >= FE_H2_OUTPUT_HIGH)
		return NGHTTP2_ERR_WOULDBLOCK;
	if (evbuffer_add(output, data, length) != 0)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	return (ssize_t)length;
}

static int
on_begin_headers_cb(
    nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
	struct fe_conn *conn = user_data;
	struct fe_call *call;

	if (frame->hd.type != NGHTTP2_HEADERS ||
	    frame->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	conn->active_ms = monotonic_ms();
	call = fe_call_new(conn, frame->hd.stream_id);
	if (call == NULL)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	nghttp2_session_set_stream_user_data(
	    session, frame->hd.stream_id, call);
	return 0;
}

static int
on_header_cb(nghttp2_session *session, const nghttp2_frame *frame,
    const uint8_t *name, size_t namelen, const uint8_t *value, size_t valuelen,
    uint8_t flags, void *user_data)
{
	struct fe_call *call;

	if (frame->hd.type != NGHTTP2_HEADERS ||
	    frame->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0; /* client trailers carry nothing we use */
	call =
	    nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
	if (call == NULL)
		return 0;
	if (fe_call_header(call, name, namelen, value, valuelen) < 0) {
		/* Over FE_GRPC_MAX_HEADERS: this stream is reset, the
		 * connection's others go on. */
		call->conn->ctx->metrics.streams_refused_headers++;
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	}
	return 0;
}

static int
on_frame_recv_cb(
    nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
	struct fe_conn *conn = user_data;
	struct fe_call *call;

	if (frame->hd.type == NGHTTP2_SETTINGS &&
	    !(frame->hd.flags & NGHTTP2_FLAG_ACK) && !conn->preface_done) {
		conn->preface_done = 1;
		conn->active_ms = monotonic_ms();
		if (!conn->closing)
			conn_timer_arm_ms(conn, FE_H2_IDLE_S * 1000);
	}
	if (frame->hd.type == NGHTTP2_RST_STREAM && !conn_reset_allowed(conn)) {
		log_debug("h2: more than %d stream resets a second",
		    FE_H2_RESETS_PER_S);
		conn_terminate(
		    conn, FE_GOAWAY_RAPID_RESET, NGHTTP2_ENHANCE_YOUR_CALM);
		return 0;
	}
	if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
		return 0;
	call =
	    nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
	if (call == NULL)
		return 0;
	if (frame->hd.type == NGHTTP2_HEADERS &&
	    frame->headers.cat == NGHTTP2_HCAT_REQUEST)
		fe_call_headers_done(call);
	if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
		fe_call_input_ended(call);
	return 0;
}

static int
on_data_chunk_recv_cb(nghttp2_session *session, uint8_t flags,
    int32_t stream_id, const uint8_t *data, size_t len, void *user_data)
{
	struct fe_call *call;

	call = nghttp2_session_get_stream_user_data(session, stream_id);
	if (call != NULL)
		fe_call_data(call, data, len);
	return 0;
}

static int
on_frame_send_cb(
    nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
	if (frame->hd.type == NGHTTP2_GOAWAY)
		fe_metrics_goaway(user_data, frame->goaway.error_code);
	/*
	 * Once our side of a stream has ended, a client still sending (an
	 * oversized message, say) is told to stop, as gRPC servers do.
	 */
	if (frame->hd.type == NGHTTP2_HEADERS &&
	    (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
	    nghttp2_session_get_stream_remote_close(
		session, frame->hd.stream_id) == 0)
		nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE,
		    frame->hd.stream_id, NGHTTP2_NO_ERROR);
	return 0;
}

static int
on_stream_close_cb(nghttp2_session *session, int32_t stream_id,
    uint32_t error_code, void *user_data)
{
	struct fe_conn *conn = user_data;
	struct fe_call *call;

	conn->active_ms = monotonic_ms();
	call = nghttp2_session_get_stream_user_data(session, stream_id);
	if (call == NULL)
		return 0;
	nghttp2_session_set_stream_user_data(session, stream_id, NULL);
	fe_call_release(call, 1);
	return 0;
}

static int
session_new(struct fe_conn *conn)
{
	nghttp2_session_callbacks *cbs;
	nghttp2_settings_entry settings[] = {
	    {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, FE_MAX_STREAMS},
	    {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, FE_GRPC_MAX_HEADERS},
	};
	nghttp2_option *opt;
	int rc;

	if (nghttp2_option_new(&opt) != 0)
		return -ENOMEM;
	nghttp2_option_set_max_outbound_ack(opt, FE_H2_MAX_OUTBOUND_ACK);
	nghttp2_option_set_max_settings(opt, FE_H2_MAX_SETTINGS);
	nghttp2_option_set_max_continuations(opt, FE_H2_MAX_CONTINUATIONS);
	/* nghttp2's own reset limit (GOAWAY INTERNAL_ERROR) stays behind
	 * ours, a backstop that never fires first. */
	nghttp2_option_set_stream_reset_rate_limit(
	    opt, 2 * FE_H2_RESETS_PER_S, FE_H2_RESETS_PER_S);
	if (nghttp2_session_callbacks_new(&cbs) != 0) {
		nghttp2_option_del(opt);
		return -ENOMEM;
	}
	nghttp2_session_callbacks_set_send_callback(cbs, send_cb);
	nghttp2_session_callbacks_set_on_begin_headers_callback(
	    cbs, on_begin_headers_cb);
	nghttp2_session_callbacks_set_on_header_callback(cbs, on_header_cb);
	nghttp2_session_callbacks_set_on_frame_recv_callback(
	    cbs, on_frame_recv_cb);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(
	    cbs, on_data_chunk_recv_cb);
	nghttp2_session_callbacks_set_on_frame_send_callback(
	    cbs, on_frame_send_cb);
	nghttp2_session_callbacks_set_on_stream_close_callback(
	    cbs, on_stream_close_cb);
	rc = nghttp2_session_server_new2(&conn->session, cbs, conn, opt);
	nghttp2_session_callbacks_del(cbs);
	nghttp2_option_del(opt);
	if (rc != 0)
		return -ENOMEM;
	if (nghttp2_submit_settings(conn->session, NGHTTP2_FLAG_NONE, settings,
		sizeof(settings) / sizeof(settings[0])) != 0)
		return -EIO;
	return 0;
}

static void
readcb(struct bufferevent *bev, void *arg)
{
	struct fe_conn *conn = arg;
	struct evbuffer *input = bufferevent_get_input(bev);
	struct evbuffer_iovec iov[FE_H2_IOV];
	ssize_t rv;
	size_t consumed;
	int i, n;

	if (conn->tls && !conn->tls_ready)
		return; /* not one frame before the handshake and ALPN */
	/* Feed nghttp2 the buffered chunks in place, FE_H2_IOV at a time. */
	while (evbuffer_get_length(input) > 0) {
		n = evbuffer_peek(input, -1, NULL, iov, FE_H2_IOV);
		if (n > FE_H2_IOV)
			n = FE_H2_IOV;
		consumed = 0;
		for (i = 0; i < n; i++) {
			rv = nghttp2_session_mem_recv(
			    conn->session, iov[i].iov_base, iov[i].iov_len);
			if (rv < 0) {
				log_debug("h2: closing connection: %s",
				    nghttp2_strerror((int)rv));
				/* Say goodbye (GOAWAY) if the session can;
				 * no more reading, freed once it is written. */
				if (rv == NGHTTP2_ERR_FLOODED ||
				    rv == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS)
					conn_terminate(conn, FE_GOAWAY_FLOOD,
					    NGHTTP2_ENHANCE_YOUR_CALM);
				else
					conn_terminate(conn,
					    FE_GOAWAY_PROTOCOL_ERROR,
					    NGHTTP2_PROTOCOL_ERROR);
				(void)bufferevent_disable(bev, EV_READ);
				evbuffer_drain(
				    input, evbuffer_get_length(input));
				if (conn_send(conn) < 0)
					conn_free(conn);
				return;
			}
			consumed += (size_t)rv;
		}
		evbuffer_drain(input, consumed);
	}
	if (conn_send(conn) < 0)
		conn_free(conn);
}

static void
writecb(struct bufferevent *bev, void *arg)
{
	struct fe_conn *conn = arg;

	if (conn->tls && !conn->tls_ready)
		return;
	if (conn_send(conn) < 0)
		conn_free(conn);
}

static void
eventcb(struct bufferevent *bev, short events, void *arg)
{
	struct fe_conn *conn = arg;

	if (events & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
		conn_free(conn);
		return;
	}
	if ((events & BEV_EVENT_CONNECTED) && conn->tls) {
		/* gRPC over TLS is HTTP/2 negotiated by ALPN, nothing else. */
		if (!fe_tls_alpn_is_h2(bev)) {
			log_debug("h2: tls client did not negotiate h2");
			conn_free(conn);
			return;
		}
		bufferevent_set_timeouts(bev, NULL, NULL);
		conn->tls_ready = 1;
		/* Our SETTINGS, and whatever the client sent already. */
		readcb(bev, conn);
	}
}

static void
conn_free(struct fe_conn *conn)
{
	struct fe_ctx *ctx = conn->ctx;
	struct fe_call *call;

	while ((call = TAILQ_FIRST(&conn->calls)) != NULL) {
		if (conn->session != NULL)
			nghttp2_session_set_stream_user_data(
			    conn->session, call->stream_id, NULL);
		fe_call_release(call, 1);
	}
	if (conn->dirty)
		TAILQ_REMOVE(&ctx->dirty, conn, dirty_entry);
	if (conn->timer != NULL)
		event_free(conn->timer);
	if (conn->session != NULL)
		nghttp2_session_del(conn->session);
	if (conn->bev != NULL)
		bufferevent_free(conn->bev);
	TAILQ_REMOVE(&ctx->conns, conn, entry);
	ctx->nconns--;
	free(conn);
}

static void
accept_cb(struct evconnlistener *listener, evutil_socket_t fd,
    struct sockaddr *addr, int addrlen, void *arg)
{
	struct fe_ctx *ctx = arg;
	struct fe_conn *conn, *other;
	uint8_t source[FE_AUTH_SOURCE_LEN];
	int one = 1, has_source;
	size_t same = 0;

	/* Nothing is served before the listener's TLS setting is known. */
	if (ctx->stopping || ctx->draining || !ctx->tls_configured ||
	    (ctx->grpc_is_tls && ctx->grpc_tls == NULL) ||
	    ctx->nconns >= FE_MAX_CONNECTIONS) {
		log_debug("h2: connection refused (%zu open)", ctx->nconns);
		if (ctx->nconns >= FE_MAX_CONNECTIONS)
			ctx->metrics.refused[FE_REFUSED_MAX]++;
		close(fd);
		return;
	}
	has_source = addr != NULL && addrlen > 0 &&
		     fe_authfail_source(addr, (size_t)addrlen, source) == 0;
	if (has_source) {
		TAILQ_FOREACH(other, &ctx->conns, entry)
		if (other->has_source &&
		    memcmp(other->source, source, sizeof(source)) == 0)
			same++;
		if (same >= FE_CONN_PER_ADDR) {
			log_debug(
			    "h2: connection refused (%zu from one address)",
			    same);
			ctx->metrics.refused[FE_REFUSED_PER_ADDR]++;
			close(fd);
			return;
		}
	}
	conn = calloc(1, sizeof(*conn));
	if (conn == NULL) {
		close(fd);
		return;
	}
	conn->ctx = ctx;
	conn->has_source = has_source;
	if (has_source)
		memcpy(conn->source, source, sizeof(source));
	conn->goaway_reason = -1;
	conn->active_ms = conn->reset_ms = monotonic_ms();
	conn->reset_tokens = FE_H2_RESETS_PER_S;
	TAILQ_INIT(&conn->calls);
	TAILQ_INSERT_TAIL(&ctx->conns, conn, entry);
	ctx->nconns++;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (ctx->grpc_tls != NULL) {
		conn->tls = 1;
		conn->bev = fe_tls_bufferevent(ctx, ctx->grpc_tls, fd);
	} else
		conn->bev = bufferevent_socket_new(
		    ctx->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (conn->bev == NULL) {
		close(fd);
		conn_free(conn);
		return;
	}
	ctx->metrics.connections_total++;
	conn->timer = evtimer_new(ctx->base, conn_timer_cb, conn);
	if (conn->timer == NULL) {
		conn_free(conn);
		return;
	}
	conn_timer_arm_ms(conn, FE_H2_PREFACE_S * 1000);
	if (conn->tls) {
		/* The handshake must end in time (slowloris). */
		struct timeval tv = {FE_TLS_HANDSHAKE_S, 0};

		bufferevent_set_timeouts(conn->bev, &tv, &tv);
	}
	if (session_new(conn) < 0) {
		conn_free(conn);
		return;
	}
	bufferevent_setcb(conn->bev, readcb, writecb, eventcb, conn);
	if (bufferevent_enable(conn->bev, EV_READ | EV_WRITE) < 0 ||
	    (!conn->tls && conn_send(conn) < 0))
		conn_free(conn);
}

static void
accept_error_cb(struct evconnlistener *listener, void *arg)
{
	int error = EVUTIL_SOCKET_ERROR();

	/* Out of descriptors or memory: the listener keeps going. */
	log_warn("h2: accept: %s", evutil_socket_error_to_string(error));
}

int
fe_h2_listen(struct fe_ctx *ctx, int fd)
{
	ctx->flush_event = event_new(ctx->base, -1, 0, flush_cb, ctx);
	if (ctx->flush_event == NULL)
		return -ENOMEM;
	/* Backlog 0: the supervisor already called listen(). Disabled
	 * until IPC_TLS_CONFIG arrives (tls.c). */
	ctx->grpc_listener = evconnlistener_new(ctx->base, accept_cb, ctx,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_DISABLED,
	    0, fd);
	if (ctx->grpc_listener == NULL)
		return -ENOMEM;
	evconnlistener_set_error_cb(ctx->grpc_listener, accept_error_cb);
	return 0;
}

void
fe_h2_stop_accepting(struct fe_ctx *ctx)
{
	if (ctx->grpc_listener != NULL)
		(void)evconnlistener_disable(ctx->grpc_listener);
}

int
fe_h2_idle(const struct fe_ctx *ctx)
{
	const struct fe_conn *conn;

	TAILQ_FOREACH(conn, &ctx->conns, entry)
	if (!TAILQ_EMPTY(&conn->calls) ||
	    evbuffer_get_length(bufferevent_get_output(conn->bev)) > 0)
		return 0;
	return 1;
}

void
fe_h2_shutdown(struct fe_ctx *ctx)
{
	struct fe_conn *conn;

	if (ctx->grpc_listener != NULL) {
		evconnlistener_free(ctx->grpc_listener);
		ctx->grpc_listener = NULL;
	}
	while ((conn = TAILQ_FIRST(&ctx->conns)) != NULL)
		conn_free(conn);
	if (ctx->flush_event != NULL) {
		event_free(ctx->flush_event);
		ctx->flush_event = NULL;
	}
}
