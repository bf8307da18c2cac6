/*
 * grpc_bidi.c: palyractl's bidirectional gRPC call (`run --approve`).
 *
 * Runs in palyractl as the invoking user. A RunStream whose client answers
 * the server (approval decisions on the run's own stream) needs a request
 * body that stays open and is written while the response streams. libcurl
 * 7.88 cannot do that over HTTP/2: a paused upload stalls the download
 * with it. So this call speaks HTTP/2 itself with nghttp2 over one TCP
 * connection (h2c with prior knowledge, like ctl_grpc_call), one stream,
 * and reuses grpc.c's response decoder for every byte the server sends.
 * The request side is a queue of framed messages: nghttp2's data source
 * defers while it is empty and is resumed, between two rounds of the loop
 * and never from inside a callback, when a message or the end is queued.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#include "ctl.h"

#define GRPC_PREFIX_LEN 5
#define BIDI_CONNECT_MS 10000
#define BIDI_WINDOW (1 << 20)
/* Queued request bytes at most: decisions are small. */
#define BIDI_QUEUE_MAX (4 * CTL_GRPC_MAX_MESSAGE)

struct bidi_call {
	nghttp2_session *session;
	int fd;
	int32_t stream_id;
	struct ctl_grpc_decoder *decoder;
	struct ctl_grpc_sender *sender;
	struct ctl_grpc_result *res;
	long http_status;
	int stream_closed;
	int remote_closed; /* the server's side ended (END_STREAM) */
	uint32_t close_error;
	int failed; /* decoder or callback */
};

int
ctl_grpc_send(struct ctl_grpc_sender *s, const uint8_t *msg, size_t len)
{
	uint8_t *grown;

	if (s->closed || len > CTL_GRPC_MAX_MESSAGE ||
	    s->len + GRPC_PREFIX_LEN + len > BIDI_QUEUE_MAX)
		return -1;
	if ((grown = realloc(s->buf, s->len + GRPC_PREFIX_LEN + len)) == NULL)
		return -1;
	s->buf = grown;
	grown += s->len;
	grown[0] = 0;
	grown[1] = (uint8_t)(len >> 24);
	grown[2] = (uint8_t)(len >> 16);
	grown[3] = (uint8_t)(len >> 8);
	grown[4] = (uint8_t)len;
	if (len > 0)
		memcpy(grown + GRPC_PREFIX_LEN, msg, len);
	s->len += GRPC_PREFIX_LEN + len;
	if (s->paused)
		s->resume = 1;
	return 0;
}

void
ctl_grpc_close_send(struct ctl_grpc_sender *s)
{
	if (!s->closed) {
		s->closed = 1;
		if (s->paused)
			s->resume = 1;
	}
}

/* The request body: queued messages, the end once closed, else a wait. */
static ssize_t
data_read(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
    size_t length, uint32_t *data_flags, nghttp2_data_source *source,
    void *user)
{
	struct ctl_grpc_sender *s = source->ptr;
	size_t n = s->len - s->off;

	if (n > 0) {
		if (n > length)
			n = length;
		memcpy(buf, s->buf + s->off, n);
		s->off += n;
		if (s->off == s->len)
			s->off = s->len = 0;
		return (ssize_t)n;
	}
	if (s->closed) {
		*data_flags |= NGHTTP2_DATA_FLAG_EOF;
		return 0;
	}
	s->paused = 1;
	return NGHTTP2_ERR_DEFERRED;
}

static int
on_header(nghttp2_session *session, const nghttp2_frame *frame,
    const uint8_t *name, size_t namelen, const uint8_t *value, size_t valuelen,
    uint8_t flags, void *user)
{
	struct bidi_call *b = user;
	size_t i;

	if (frame->hd.stream_id != b->stream_id)
		return 0;
	if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
		b->http_status = 0;
		for (i = 0; i < valuelen && i < 3; i++) {
			if (value[i] < '0' || value[i] > '9')
				break;
			b->http_status = b->http_status * 10 + (value[i] - '0');
		}
		return 0;
	}
	if (ctl_grpc_decoder_header(b->decoder, (const char *)name, namelen,
		(const char *)value, valuelen) < 0) {
		b->failed = 1;
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	}
	return 0;
}

static int
on_data(nghttp2_session *session, uint8_t flags, int32_t stream_id,
    const uint8_t *data, size_t len, void *user)
{
	struct bidi_call *b = user;

	if (stream_id != b->stream_id)
		return 0;
	/* A body that is not gRPC (an HTTP error) is not decoded. */
	if (b->http_status != 200)
		return 0;
	if (ctl_grpc_decoder_body(b->decoder, data, len) < 0) {
		b->failed = 1;
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	}
	return 0;
}

/* The server ended its side: the request side ends too, so that the
 * stream closes even if the server waits for that. */
static int
on_frame(nghttp2_session *session, const nghttp2_frame *frame, void *user)
{
	struct bidi_call *b = user;

	if (frame->hd.stream_id == b->stream_id &&
	    (frame->hd.type == NGHTTP2_HEADERS ||
		frame->hd.type == NGHTTP2_DATA) &&
	    (frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
		b->remote_closed = 1;
	return 0;
}

static int
on_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
    void *user)
{
	struct bidi_call *b = user;

	if (stream_id == b->stream_id) {
		b->stream_closed = 1;
		b->close_error = error_code;
	}
	return 0;
}

static int
write_all(int fd, const uint8_t *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		if ((n = send(fd, p, len, MSG_NOSIGNAL)) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* One connect(2) of a non-blocking socket within BIDI_CONNECT_MS:
 * 0, or an errno value. */
static int
connect_one(int fd, const struct sockaddr *sa, socklen_t len)
{
	struct pollfd pfd;
	socklen_t sl = sizeof(int);
	int err = 0, rc;

	if (connect(fd, sa, len) == 0)
		return 0;
	if (errno != EINPROGRESS)
		return errno;
	pfd.fd = fd;
	pfd.events = POLLOUT;
	do
		rc = poll(&pfd, 1, BIDI_CONNECT_MS);
	while (rc < 0 && errno == EINTR);
	if (rc < 0)
		return errno;
	if (rc == 0)
		return ETIMEDOUT;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl) < 0)
		return errno;
	return err;
}

/* Connects to HOST:PORT ([v6]:PORT too); returns a blocking socket or
 * -1 (res->error). */
static int
connect_addr(const char *addr, struct ctl_grpc_result *res)
{
	struct addrinfo hints, *ai = NULL, *a;
	char host[256];
	const char *colon = strrchr(addr, ':');
	size_t hl;
	int fd = -1, err = ECONNREFUSED, one = 1, rc;

	if (colon == NULL || (hl = (size_t)(colon - addr)) == 0 ||
	    hl >= sizeof(host)) {
		snprintf(
		    res->error, sizeof(res->error), "bad address %s", addr);
		return -1;
	}
	if (addr[0] == '[' && hl > 2 && addr[hl - 1] == ']') {
		memcpy(host, addr + 1, hl - 2);
		host[hl - 2] = '\0';
	} else {
		memcpy(host, addr, hl);
		host[hl] = '\0';
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if ((rc = getaddrinfo(host, colon + 1, &hints, &ai)) != 0) {
		snprintf(res->error, sizeof(res->error),
		    "cannot connect to %s: %s", addr, gai_strerror(rc));
		return -1;
	}
	for (a = ai; a != NULL && fd < 0; a = a->ai_next) {
		if ((fd = socket(a->ai_family,
			 a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			 a->ai_protocol)) < 0) {
			err = errno;
			continue;
		}
		if ((err = connect_one(fd, a->ai_addr, a->ai_addrlen)) != 0) {
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(ai);
	if (fd < 0) {
		snprintf(res->error, sizeof(res->error),
		    "cannot connect to %s: %s", addr, strerror(err));
		return -1;
	}
	/* Blocking from here on: the loop polls before each read. */
	if ((rc = fcntl(fd, F_GETFL)) < 0 ||
	    fcntl(fd, F_SETFL, rc & ~O_NONBLOCK) < 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0) {
		snprintf(res->error, sizeof(res->error), "%s: %s", addr,
		    strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* Writes everything nghttp2 has to send. 0 or -1 (res->error). */
static int
flush_out(struct bidi_call *b)
{
	const uint8_t *data;
	ssize_t n;

	while ((n = nghttp2_session_mem_send(b->session, &data)) > 0)
		if (write_all(b->fd, data, (size_t)n) < 0) {
			snprintf(b->res->error, sizeof(b->res->error),
			    "connection lost: %s", strerror(errno));
			return -1;
		}
	if (n < 0) {
		snprintf(b->res->error, sizeof(b->res->error), "HTTP/2: %s",
		    nghttp2_strerror((int)n));
		return -1;
	}
	return 0;
}

/* The call until its stream closes. 0, or -1 with res->error set (or
 * b->failed, the decoder's error). */
static int
run_loop(struct bidi_call *b)
{
	struct pollfd pfd;
	uint8_t buf[16384];
	ssize_t n, used;
	int rc;

	for (;;) {
		if (b->remote_closed && !b->sender->closed)
			ctl_grpc_close_send(b->sender);
		if (flush_out(b) < 0)
			return -1;
		if (b->sender->resume) {
			b->sender->resume = 0;
			b->sender->paused = 0;
			if (nghttp2_session_resume_data(
				b->session, b->stream_id) != 0 &&
			    !b->stream_closed) {
				snprintf(b->res->error, sizeof(b->res->error),
				    "HTTP/2: cannot resume the request");
				return -1;
			}
			continue;
		}
		if (b->stream_closed)
			return 0;
		if (!nghttp2_session_want_read(b->session) &&
		    !nghttp2_session_want_write(b->session)) {
			snprintf(b->res->error, sizeof(b->res->error),
			    "the server ended the connection");
			return -1;
		}
		pfd.fd = b->fd;
		pfd.events = POLLIN;
		if ((rc = poll(&pfd, 1, -1)) < 0) {
			if (errno == EINTR)
				continue;
			snprintf(b->res->error, sizeof(b->res->error),
			    "poll: %s", strerror(errno));
			return -1;
		}
		if ((n = recv(b->fd, buf, sizeof(buf), 0)) < 0) {
			if (errno == EINTR)
				continue;
			snprintf(b->res->error, sizeof(b->res->error),
			    "connection lost: %s", strerror(errno));
			return -1;
		}
		if (n == 0) {
			snprintf(b->res->error, sizeof(b->res->error),
			    "the server closed the connection");
			return -1;
		}
		used = nghttp2_session_mem_recv(b->session, buf, (size_t)n);
		if (b->failed)
			return -1;
		if (used < 0) {
			snprintf(b->res->error, sizeof(b->res->error),
			    "HTTP/2: %s", nghttp2_strerror((int)used));
			return -1;
		}
	}
}

int
ctl_grpc_bidi(const struct ctl_ctx *ctx, const char *path, const char *bearer,
    const uint8_t *req, size_t req_len, ctl_grpc_msg_cb cb, void *arg,
    struct ctl_grpc_sender *sender, struct ctl_grpc_result *res)
{
	nghttp2_session_callbacks *cbs = NULL;
	nghttp2_settings_entry settings[] = {
	    {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
	    {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, BIDI_WINDOW},
	};
	nghttp2_data_provider provider;
	struct bidi_call b;
	char auth[FE_TOKEN_MAX_LEN + 16];
	nghttp2_nv nva[8];
	size_t nnv = 0;
	int rc = -1;

#define NV(n, v)                                                               \
	do {                                                                   \
		nva[nnv].name = (uint8_t *)(n);                                \
		nva[nnv].namelen = strlen(n);                                  \
		nva[nnv].value = (uint8_t *)(v);                               \
		nva[nnv].valuelen = strlen(v);                                 \
		nva[nnv].flags = NGHTTP2_NV_FLAG_NONE;                         \
		nnv++;                                                         \
	} while (0)

	memset(res, 0, sizeof(*res));
	res->transport_error = 1;
	memset(sender, 0, sizeof(*sender));
	memset(&b, 0, sizeof(b));
	b.fd = -1;
	b.sender = sender;
	b.res = res;
	if (ctl_grpc_send(sender, req, req_len) < 0) {
		snprintf(res->error, sizeof(res->error), "request too large");
		goto out;
	}
	if ((b.decoder = ctl_grpc_decoder_new(cb, arg, res)) == NULL ||
	    nghttp2_session_callbacks_new(&cbs) != 0) {
		snprintf(res->error, sizeof(res->error), "out of memory");
		goto out;
	}
	nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_close);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame);
	if (nghttp2_session_client_new(&b.session, cbs, &b) != 0) {
		snprintf(res->error, sizeof(res->error), "out of memory");
		goto out;
	}
	if ((b.fd = connect_addr(ctx->grpc_addr, res)) < 0) {
		if (ctx->transport_failed != NULL)
			*ctx->transport_failed = 1;
		goto out;
	}
	if (bearer != NULL && strlen(bearer) > FE_TOKEN_MAX_LEN) {
		snprintf(res->error, sizeof(res->error), "token too long");
		goto out;
	}
	NV(":method", "POST");
	NV(":scheme", "http");
	NV(":authority", ctx->grpc_addr);
	NV(":path", path);
	NV("content-type", "application/grpc");
	NV("te", "trailers");
	NV("user-agent", "palyractl");
	if (bearer != NULL) {
		snprintf(auth, sizeof(auth), "Bearer %s", bearer);
		NV("authorization", auth);
		nva[nnv - 1].flags = NGHTTP2_NV_FLAG_NO_INDEX;
	}
	provider.source.ptr = sender;
	provider.read_callback = data_read;
	if (nghttp2_submit_settings(b.session, NGHTTP2_FLAG_NONE, settings,
		sizeof(settings) / sizeof(settings[0])) != 0 ||
	    nghttp2_session_set_local_window_size(
		b.session, NGHTTP2_FLAG_NONE, 0, 4 * BIDI_WINDOW) != 0 ||
	    (b.stream_id = nghttp2_submit_request(
		 b.session, NULL, nva, nnv, &provider, NULL)) < 0) {
		snprintf(res->error, sizeof(res->error),
		    "HTTP/2: cannot "
		    "start the call");
		goto out;
	}
	if (run_loop(&b) < 0) {
		if (b.failed)
			ctl_grpc_decoder_finish(b.decoder);
		goto out;
	}
	if (b.http_status != 200) {
		snprintf(res->error, sizeof(res->error),
		    "server answered HTTP status %ld", b.http_status);
		goto out;
	}
	rc = ctl_grpc_decoder_finish(b.decoder);
	if (rc < 0 && b.close_error != NGHTTP2_NO_ERROR)
		snprintf(res->error, sizeof(res->error),
		    "the server reset "
		    "the call (HTTP/2 error %u)",
		    b.close_error);
out:
#undef NV
	explicit_bzero(auth, sizeof(auth));
	if (b.session != NULL)
		nghttp2_session_del(b.session);
	if (cbs != NULL)
		nghttp2_session_callbacks_del(cbs);
	if (b.fd >= 0)
		close(b.fd);
	ctl_grpc_decoder_free(b.decoder);
	free(sender->buf);
	memset(sender, 0, sizeof(*sender));
	sender->closed = 1;
	if (rc < 0)
		res->transport_error = 1;
	return rc;
}
