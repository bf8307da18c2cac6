/*
 * test_http.c: the worker's outbound HTTP (worker/http.c) on a libevent
 * loop against a small scripted HTTP/1.1 server running in this process
 * (threads on a loopback port chosen at run time): bodies in pieces,
 * response heads (1xx, Retry-After), each timeout with its own status,
 * refused and unpinned hosts, cancel (the server sees the connection
 * close), pause and resume, the response bound, callbacks that cancel or
 * start transfers, 100 transfers at once, and a transfer made under the
 * worker's seccomp allow-list and Landlock rules.
 */
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "../../worker/http.c"
#include "sandbox.h"
#include "sandbox_int.h"
#include "sse.h"

/* ---- The scripted server. ---- */

static int srv_port, dead_port;
static atomic_int eofs_seen; /* /hold connections the client closed */
static atomic_llong eof_ms;  /* how long after the last byte sent */
static atomic_int accepted;  /* connections */

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

static int
send_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t n;

	while (len > 0) {
		if ((n = send(fd, p, len, MSG_NOSIGNAL)) <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
send_str(int fd, const char *s)
{
	return send_all(fd, s, strlen(s));
}

static int
send_chunk(int fd, const char *s)
{
	char size[32];

	snprintf(size, sizeof(size), "%zx\r\n", strlen(s));
	if (send_str(fd, size) < 0 || send_str(fd, s) < 0)
		return -1;
	return send_str(fd, "\r\n");
}

/* Waits up to ms for the peer to close; 1 if it did. */
static int
wait_eof(int fd, int ms)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	char buf[256];
	int64_t end = now_ms() + ms;
	ssize_t n;

	while (now_ms() < end) {
		if (poll(&pfd, 1, (int)(end - now_ms())) <= 0)
			continue;
		if ((n = recv(fd, buf, sizeof(buf), 0)) == 0 ||
		    (n < 0 && errno == ECONNRESET))
			return 1;
	}
	return 0;
}

static __thread char req_text[16384]; /* the last request read */
static __thread size_t req_used;

/* Reads a request head; the path into path. -1 if it is not HTTP. */
static int
read_request(int fd, char *path, size_t len)
{
	char *buf = req_text;
	const size_t size = 8192;
	size_t used = 0;
	ssize_t n;
	char *sp;

	while (used < size - 1) {
		if ((n = recv(fd, buf + used, size - 1 - used, 0)) <= 0)
			return -1;
		used += (size_t)n;
		buf[used] = '\0';
		if (buf[0] < 'A' || buf[0] > 'Z')
			return -1; /* a TLS ClientHello, say */
		if (strstr(buf, "\r\n\r\n") != NULL)
			break;
	}
	req_used = used;
	if ((sp = strchr(buf, ' ')) == NULL)
		return -1;
	snprintf(path, len, "%.*s", (int)strcspn(sp + 1, " "), sp + 1);
	return 0;
}

/* Answers "METHOD|X-Key|body" of the request. */
static void
echo(int fd)
{
	char *end, *cl, *key, answer[20000];
	size_t head, want = 0, n;
	ssize_t got;

	end = strstr(req_text, "\r\n\r\n");
	head = (size_t)(end - req_text) + 4;
	*end = '\0';
	if ((cl = strcasestr(req_text, "\r\ncontent-length:")) != NULL)
		want = strtoul(cl + 17, NULL, 10);
	while (req_used < head + want && req_used < sizeof(req_text) - 1) {
		got = recv(fd, req_text + req_used,
		    sizeof(req_text) - 1 - req_used, 0);
		if (got <= 0)
			return;
		req_used += (size_t)got;
	}
	key = strcasestr(req_text, "\r\nx-key: ");
	n = (size_t)snprintf(answer + 200, sizeof(answer) - 200,
	    "%.*s|%.*s|%.*s", (int)strcspn(req_text, " "), req_text,
	    key != NULL ? (int)strcspn(key + 9, "\r") : 0,
	    key != NULL ? key + 9 : "", (int)want, req_text + head);
	snprintf(answer, 200,
	    "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n"
	    "Connection: close\r\n\r\n",
	    n);
	send_str(fd, answer);
	send_str(fd, answer + 200);
}

#define CHUNKED_SSE                                                            \
	"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"               \
	"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
#define BIG_PIECE 65536
#define BIG_PIECES 5

static void
serve(int fd, const char *path)
{
	char buf[BIG_PIECE], date[64];
	struct tm tm;
	time_t t;
	size_t i;
	int k;

	if (strcmp(path, "/sse") == 0) {
		send_str(fd, CHUNKED_SSE);
		sleep_ms(40);
		send_chunk(fd, "data: one\n\n");
		sleep_ms(40);
		send_chunk(fd, "data: t");
		sleep_ms(40);
		send_chunk(fd, "wo\r\n\r\n: ping\n\ndata: three\n\n");
		send_str(fd, "0\r\n\r\n");
	} else if (strcmp(path, "/429") == 0) {
		send_str(fd,
		    "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3"
		    "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
	} else if (strcmp(path, "/429date") == 0) {
		t = time(NULL) + 30;
		gmtime_r(&t, &tm);
		strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
		snprintf(buf, sizeof(buf),
		    "HTTP/1.1 503 Unavailable\r\n"
		    "Retry-After:  %s \r\nContent-Length: 0\r\n"
		    "Connection: close\r\n\r\n",
		    date);
		send_str(fd, buf);
	} else if (strcmp(path, "/continue") == 0) {
		send_str(fd, "HTTP/1.1 100 Continue\r\nX-Interim: 1\r\n\r\n"
			     "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
			     "X-Test:   yes  \r\nX-Fold: a\r\n  b\r\n"
			     "Connection: close\r\n\r\nok");
	} else if (strcmp(path, "/ka") == 0) {
		/* Keep-alive: answer every request of the connection. */
		do
			send_str(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
				     "\r\nka");
		while (read_request(fd, buf, sizeof(buf)) == 0 &&
		       strcmp(buf, "/ka") == 0);
	} else if (strcmp(path, "/echo") == 0) {
		echo(fd);
	} else if (strcmp(path, "/small") == 0) {
		send_str(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
			     "Connection: close\r\n\r\nok");
	} else if (strcmp(path, "/stall") == 0) {
		send_str(fd, CHUNKED_SSE);
		send_chunk(fd, "data: 1\n\n");
		wait_eof(fd, 5000);
	} else if (strcmp(path, "/silent") == 0) {
		wait_eof(fd, 5000);
	} else if (strcmp(path, "/hold") == 0) {
		send_str(fd, CHUNKED_SSE);
		send_chunk(fd, "data: 1\n\n");
		t = (time_t)now_ms();
		if (wait_eof(fd, 5000)) {
			eof_ms = now_ms() - (int64_t)t;
			eofs_seen++;
		}
	} else if (strcmp(path, "/big") == 0) {
		snprintf(buf, sizeof(buf),
		    "HTTP/1.1 200 OK\r\n"
		    "Content-Length: %d\r\nConnection: close\r\n\r\n",
		    BIG_PIECE * BIG_PIECES);
		send_str(fd, buf);
		for (k = 0; k < BIG_PIECES; k++) {
			for (i = 0; i < BIG_PIECE; i++)
				buf[i] = (char)((k * BIG_PIECE + i) % 251);
			if (send_all(fd, buf, BIG_PIECE) < 0)
				break;
			sleep_ms(20);
		}
	} else if (strcmp(path, "/drip") == 0) {
		send_str(fd, CHUNKED_SSE);
		for (k = 0; k < 100; k++) {
			if (send_chunk(fd, ": x\n") < 0)
				break;
			sleep_ms(50);
		}
	}
}

static void *
conn_thread(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char path[256];

	if (read_request(fd, path, sizeof(path)) == 0)
		serve(fd, path);
	close(fd);
	return NULL;
}

static void *
accept_thread(void *arg)
{
	int lfd = (int)(intptr_t)arg, fd;
	pthread_attr_t attr;
	pthread_t t;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	for (;;) {
		if ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) == -1)
			continue;
		accepted++;
		if (pthread_create(
			&t, &attr, conn_thread, (void *)(intptr_t)fd) != 0)
			close(fd);
	}
	return NULL;
}

static int
listen_any(int *port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof(sin);
	int fd;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) == -1 ||
	    listen(fd, 256) == -1)
		return -1;
	*port = ntohs(sin.sin_port);
	return fd;
}

/*
 * A TLS server (OpenSSL) with a certificate made at start for 127.0.0.1,
 * answering every connection, one at a time, with "hello".
 */
static int tls_port;
static char *test_ca; /* its certificate, the CA a test trusts */
static size_t test_ca_len;

static void *
tls_thread(void *arg)
{
	static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
				     "Connection: close\r\n\r\nhello";
	SSL_CTX *ctx = arg;
	char buf[4096];
	SSL *ssl;
	int lfd, fd;

	if ((lfd = listen_any(&tls_port)) < 0)
		return NULL;
	for (;;) {
		if ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) == -1)
			continue;
		accepted++;
		if ((ssl = SSL_new(ctx)) != NULL && SSL_set_fd(ssl, fd) == 1 &&
		    SSL_accept(ssl) == 1 && SSL_read(ssl, buf, sizeof(buf)) > 0)
			SSL_write(ssl, answer, (int)strlen(answer));
		if (ssl != NULL) {
			SSL_shutdown(ssl);
			SSL_free(ssl);
		}
		close(fd);
	}
	return NULL;
}

static int
tls_start(void)
{
	char dir[] = "/tmp/test_http.XXXXXX", cmd[1024], path[256];
	pthread_t th;
	SSL_CTX *ctx;
	FILE *f;
	long n;
	int64_t end;

	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(cmd, sizeof(cmd),
	    "openssl req -x509 -newkey ec "
	    "-pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=test "
	    "-addext subjectAltName=IP:127.0.0.1 -keyout %s/key.pem "
	    "-out %s/cert.pem >/dev/null 2>&1",
	    dir, dir);
	if (system(cmd) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/cert.pem", dir);
	if ((f = fopen(path, "r")) == NULL || fseek(f, 0, SEEK_END) != 0 ||
	    (n = ftell(f)) <= 0 || (test_ca = malloc((size_t)n)) == NULL ||
	    fseek(f, 0, SEEK_SET) != 0 ||
	    fread(test_ca, 1, (size_t)n, f) != (size_t)n)
		return -1;
	fclose(f);
	test_ca_len = (size_t)n;
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL ||
	    SSL_CTX_use_certificate_chain_file(ctx, path) != 1)
		return -1;
	snprintf(path, sizeof(path), "%s/key.pem", dir);
	if (SSL_CTX_use_PrivateKey_file(ctx, path, SSL_FILETYPE_PEM) != 1)
		return -1;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		return -1;
	if (pthread_create(&th, NULL, tls_thread, ctx) != 0)
		return -1;
	for (end = now_ms() + 5000; tls_port == 0 && now_ms() < end;)
		sleep_ms(1);
	return tls_port != 0 ? 0 : -1;
}

/* ---- The client side. ---- */

static struct event_base *base;
static struct wrk_http *http;

struct tx {
	struct wrk_xfer *x;
	int heads, bodies, dones;
	long head_status;
	struct wrk_xfer_result res;
	char msg[256];
	char header[64]; /* a header read in on_head */
	const char *header_name;
	char header2[64]; /* the folded X-Fold */
	int interim_seen; /* X-Interim (of a 100 head) in on_head */
	char *body;
	size_t len, cap;
	int64_t started, last_body, done_at;
	int head_rc; /* on_head's answer */
	int cancel_in_body;
	int cancel_in_head;
	struct tx *cancel_other; /* cancelled from on_body */
	int pause_first;
	int bodies_at_pause;
	int64_t resumed_at;
	int start_in_body; /* starts another transfer */
	int start_in_done; /* the same, from on_done */
	struct tx *spawned;
	struct sse_parser *sse;
	int sse_rc;
};

static int
on_head(struct wrk_xfer *x, long status, void *arg)
{
	struct tx *t = arg;
	const char *v;

	assert_ptr_equal(x, t->x);
	t->heads++;
	t->head_status = status;
	if (t->cancel_in_head) {
		wrk_xfer_cancel(x);
		return 0;
	}
	if (t->header_name != NULL &&
	    (v = wrk_xfer_header(x, t->header_name)) != NULL)
		snprintf(t->header, sizeof(t->header), "%s", v);
	t->interim_seen = wrk_xfer_header(x, "X-Interim") != NULL;
	if ((v = wrk_xfer_header(x, "X-Fold")) != NULL)
		snprintf(t->header2, sizeof(t->header2), "%s", v);
	return t->head_rc;
}

static const struct wrk_xfer_cbs cbs;

static void start(struct tx *, const char *, struct wrk_xfer_req *);

static int
on_body(struct wrk_xfer *x, const char *buf, size_t len, void *arg)
{
	struct tx *t = arg;
	int rc;

	assert_ptr_equal(x, t->x);
	assert_int_equal(t->heads, 1);
	t->bodies++;
	t->last_body = now_ms();
	if (t->body != NULL) {
		assert_true(t->len + len <= t->cap);
		memcpy(t->body + t->len, buf, len);
	}
	t->len += len;
	if (t->sse != NULL && t->sse_rc == 0)
		t->sse_rc = sse_feed(t->sse, buf, len);
	if (t->start_in_body && t->spawned != NULL && t->spawned->x == NULL) {
		/* A new transfer from inside curl's write callback. */
		t->spawned->body = NULL;
		start(t->spawned, "/small", NULL);
		assert_non_null(t->spawned->x);
	}
	if (t->cancel_other != NULL) {
		wrk_xfer_cancel(t->cancel_other->x);
		t->cancel_other = NULL;
	}
	if (t->cancel_in_body) {
		wrk_xfer_cancel(x);
		/* Twice is harmless. */
		wrk_xfer_cancel(x);
		return 0;
	}
	if (t->pause_first && t->bodies == 1) {
		t->bodies_at_pause = t->bodies;
		return 1;
	}
	rc = 0;
	return rc;
}

static void
on_done(struct wrk_xfer *x, const struct wrk_xfer_result *r, void *arg)
{
	struct tx *t = arg;

	assert_ptr_equal(x, t->x);
	t->dones++;
	t->done_at = now_ms();
	t->res = *r;
	snprintf(t->msg, sizeof(t->msg), "%s", r->message);
	t->res.message = t->msg;
	/* Cancelling in on_done is a no-op. */
	wrk_xfer_cancel(x);
	if (t->start_in_done && t->spawned != NULL) {
		start(t->spawned, "/small", NULL);
		assert_non_null(t->spawned->x);
	}
}

static const struct wrk_xfer_cbs cbs = {on_head, on_body, on_done};

static void
start(struct tx *t, const char *path, struct wrk_xfer_req *req)
{
	struct wrk_xfer_req def;
	char url[256];

	if (req == NULL) {
		memset(&def, 0, sizeof(def));
		req = &def;
	}
	if (strstr(path, "://") == NULL) {
		snprintf(
		    url, sizeof(url), "http://127.0.0.1:%d%s", srv_port, path);
		req->url = url;
	} else
		req->url = path;
	if (req->method == NULL)
		req->method = "GET";
	t->started = now_ms();
	t->x = wrk_xfer_start(http, req, &cbs, t);
}

static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
}

/* Runs the loop until cond(arg) or ms pass; returns cond's last value. */
static int
run_until(int (*cond)(void *), void *arg, int ms)
{
	struct event *tick = evtimer_new(base, tick_cb, NULL);
	struct timeval tv = {0, 10000};
	int64_t end = now_ms() + ms;
	int ok;

	while (!(ok = cond(arg)) && now_ms() < end) {
		evtimer_add(tick, &tv);
		event_base_loop(base, EVLOOP_ONCE);
	}
	event_free(tick);
	return ok;
}

static int
done1(void *arg)
{
	return ((struct tx *)arg)->dones > 0;
}

static void
tx_init(struct tx *t, size_t cap)
{
	memset(t, 0, sizeof(*t));
	if (cap > 0) {
		t->body = malloc(cap);
		assert_non_null(t->body);
		t->cap = cap;
	}
}

/* ---- The cases. ---- */

static int
sse_collect(const struct sse_event *ev, void *arg)
{
	char *out = arg;

	strcat(out, ev->data);
	strcat(out, "|");
	return 0;
}

static void
test_sse_piecewise(void **state)
{
	struct sse_parser p;
	struct tx t;
	char events[256] = "";

	tx_init(&t, 4096);
	assert_int_equal(sse_init(&p, 1024, sse_collect, events), 0);
	t.sse = &p;
	t.header_name = "content-type";
	start(&t, "/sse", NULL);
	assert_non_null(t.x);
	assert_int_equal(wrk_http_active(http), 1);
	assert_true(run_until(done1, &t, 5000));
	assert_int_equal(t.res.status, WRK_XFER_OK);
	assert_int_equal(t.res.http_status, 200);
	assert_int_equal(t.res.retry_after_ms, -1);
	assert_int_equal(t.heads, 1);
	assert_string_equal(t.header, "text/event-stream");
	/* Three pieces 40 ms apart arrive as (at least) three calls. */
	assert_true(t.bodies >= 3);
	assert_int_equal(t.sse_rc, 0);
	assert_int_equal(sse_finish(&p), 0);
	assert_string_equal(events, "one|two|three|");
	assert_int_equal(p.comments, 1);
	assert_int_equal(wrk_http_active(http), 0);
	sse_fini(&p);
	free(t.body);
}

static void
test_heads(void **state)
{
	struct tx t;
	char url[128];
	int64_t ms;

	/* Retry-After in seconds, through the pinned name "localhost". */
	tx_init(&t, 64);
	t.header_name = "Retry-After";
	snprintf(url, sizeof(url), "http://localhost:%d/429", srv_port);
	start(&t, url, NULL);
	assert_true(run_until(done1, &t, 5000));
	assert_int_equal(t.res.status, WRK_XFER_OK);
	assert_int_equal(t.res.http_status, 429);
	assert_int_equal(t.res.retry_after_ms, 3000);
	assert_string_equal(t.header, "3");
	free(t.body);

	/* Retry-After as an HTTP date, 30 s ahead. */
	tx_init(&t, 64);
	start(&t, "/429date", NULL);
	assert_true(run_until(done1, &t, 5000));
	assert_int_equal(t.res.http_status, 503);
	ms = t.res.retry_after_ms;
	assert_true(ms >= 28000 && ms <= 31000);
	free(t.body);

	/* A 1xx head is not the head; folded values are joined. */
	tx_init(&t, 64);
	t.header_name = "x-test";
	start(&t, "/continue", NULL);
	assert_true(run_until(done1, &t, 5000));
	assert_int_equal(t.res.status, WRK_XFER_OK);
	assert_int_equal(t.heads, 1);
	assert_int_equal(t.head_status, 200);
	assert_string_equal(t.header, "yes");
	assert_string_equal(t.header2, "a b");
	/* The interim head's headers are not the response's. */
	assert_int_equal(t.interim_seen, 0);
	assert_int_equal(t.len, 2);
	assert_memory_equal(t.body, "ok", 2);
	free(t.body);

	/* on_head's -1 aborts: no body, ABORTED. */
	tx_init(&t, 64);
	t.head_rc = -1;
	start(&t, "/sse", NULL);
	assert_true(run_until(done1, &t, 5000));
	assert_int_equal(t.res.status, WRK_XFER_ABORTED);
	assert_int_equal(t.res.http_status, 200);
	assert_int_equal(t.bodies, 0);
	free(t.body);
}

static void
test_connect_failures(void **state)
{
	struct tx t;
	char url[128];

	/* Refused. */
	tx_init(&t, 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", dead_port);
	start(&t, url, NULL);
	assert_non_null(t.x);
	assert_true(run_until(done1, &t, 5000));
	assert_int_equal(t.res.status, WRK_XFER_CONNECT);
	assert_int_equal(t.res.http_status, 0);
	assert_int_equal(t.heads, 0);
	assert_non_null(strstr(t.msg, "onnect"));

	/* A host name not resolved before the sandbox: no lookup now. */
	tx_init(&t, 0);
	snprintf(url, sizeof(url), "http://unpinned.invalid:%d/", srv_port);
	start(&t, url, NULL);
	assert_non_null(t.x);
	assert_true(run_until(done1, &t, 5000));
	assert_int_equal(t.res.status, WRK_XFER_CONNECT);
	assert_string_equal(
	    t.msg, "host unpinned.invalid was not resolved at worker start");

	/* TLS to a server that does not speak it: a connect failure. */
	tx_init(&t, 0);
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/small", srv_port);
	start(&t, url, NULL);
	assert_true(run_until(done1, &t, 5000));
	assert_int_equal(t.res.status, WRK_XFER_CONNECT);

	/* Refused before it starts: not http(s), bad headers. */
	{
		struct wrk_xfer_req req;

		memset(&req, 0, sizeof(req));
		req.url = "ftp://127.0.0.1/";
		assert_null(wrk_xfer_start(http, &req, &cbs, &t));
		assert_int_equal(errno, EINVAL);
		req.url = "http://127.0.0.1/";
		req.headers[0] = "X-A: 1\r\nX-B: 2";
		req.nheaders = 1;
		assert_null(wrk_xfer_start(http, &req, &cbs, &t));
		assert_int_equal(errno, EINVAL);
		assert_int_equal(wrk_http_active(http), 0);
	}
}

static void
test_timeouts(void **state)
{
	struct wrk_xfer_req req;
	struct tx t;
	int64_t took;

	/* Headers and one piece, then silence: IDLE after idle_ms. */
	tx_init(&t, 256);
	memset(&req, 0, sizeof(req));
	req.idle_ms = 300;
	start(&t, "/stall", &req);
	assert_true(run_until(done1, &t, 5000));
	assert_int_equal(t.res.status, WRK_XFER_IDLE);
	assert_int_equal(t.res.http_status, 200);
	assert_string_equal(t.msg, "no data for 0.3 s");
	took = t.done_at - t.last_body;
	assert_true(took >= 250 && took < 1500);
	free(t.body);

	/* Nothing at all after the request: FIRST_BYTE. */
	tx_init(&t, 0);
	memset(&req, 0, sizeof(req));
	req.first_byte_ms = 300;
	req.idle_ms = 100; /* must not apply before the first byte */
	start(&t, "/silent", &req);
	assert_true(run_until(done1, &t, 5000));
	assert_int_equal(t.res.status, WRK_XFER_FIRST_BYTE);
	assert_int_equal(t.res.http_status, 0);
	assert_string_equal(t.msg, "no response within 0.3 s");
	took = t.done_at - t.started;
	assert_true(took >= 250 && took < 1500);

	/* Bytes keep coming, but too long: TOTAL. */
	tx_init(&t, 0);
	memset(&req, 0, sizeof(req));
	req.total_ms = 400;
	start(&t, "/drip", &req);
	assert_true(run_until(done1, &t, 5000));
	assert_int_equal(t.res.status, WRK_XFER_TOTAL);
	assert_string_equal(t.msg, "not complete within 0.4 s");
	assert_true(t.bodies >= 3);
	took = t.done_at - t.started;
	assert_true(took >= 350 && took < 1500);
}

static int
eofs_reach(void *arg)
{
	return eofs_seen >= *(int *)arg;
}

static int
bodies1(void *arg)
{
	return ((struct tx *)arg)->bodies > 0;
}

static void
test_cancel(void **state)
{
	struct tx t;
	int want;

	/* From inside on_body: no on_done, and the server sees EOF. */
	want = eofs_seen + 1;
	tx_init(&t, 0);
	t.cancel_in_body = 1;
	start(&t, "/hold", NULL);
	assert_true(run_until(eofs_reach, &want, 3000));
	assert_true(eof_ms < 1000);
	assert_int_equal(t.bodies, 1);
	assert_int_equal(t.dones, 0);
	assert_int_equal(wrk_http_active(http), 0);

	/* From the loop, mid-body. */
	want = eofs_seen + 1;
	tx_init(&t, 0);
	start(&t, "/hold", NULL);
	assert_true(run_until(bodies1, &t, 3000));
	wrk_xfer_cancel(t.x);
	assert_int_equal(wrk_http_active(http), 0);
	assert_true(run_until(eofs_reach, &want, 3000));
	assert_true(eof_ms < 1000);
	assert_int_equal(t.dones, 0);

	/* From on_head: no body, no on_done. */
	tx_init(&t, 0);
	t.cancel_in_head = 1;
	start(&t, "/small", NULL);
	assert_false(run_until(done1, &t, 300));
	assert_int_equal(t.heads, 1);
	assert_int_equal(t.bodies + t.dones, 0);
	assert_int_equal(wrk_http_active(http), 0);

	/* Another transfer, from inside a callback (curl on the stack). */
	{
		struct tx a, b;

		want = eofs_seen + 1;
		tx_init(&b, 0);
		start(&b, "/hold", NULL);
		assert_true(run_until(bodies1, &b, 3000));
		tx_init(&a, 0);
		a.cancel_other = &b;
		start(&a, "/sse", NULL);
		assert_true(run_until(done1, &a, 3000));
		assert_int_equal(a.res.status, WRK_XFER_OK);
		assert_true(run_until(eofs_reach, &want, 3000));
		assert_int_equal(b.dones, 0);
		assert_int_equal(b.bodies, 1);
	}

	/* Before it connected: nothing at all happens. */
	tx_init(&t, 0);
	start(&t, "/small", NULL);
	wrk_xfer_cancel(t.x);
	assert_false(run_until(done1, &t, 200));
	assert_int_equal(t.heads + t.bodies + t.dones, 0);
}

static void
resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tx *t = arg;

	/* Nothing came while paused. */
	assert_int_equal(t->bodies, t->bodies_at_pause);
	assert_int_equal(t->dones, 0);
	t->resumed_at = now_ms();
	wrk_xfer_pause(t->x, 0);
}

static void
test_pause(void **state)
{
	struct wrk_xfer_req req;
	struct event *ev;
	struct timeval tv = {0, 300000};
	struct tx t;
	size_t i;

	tx_init(&t, BIG_PIECE * BIG_PIECES);
	t.pause_first = 1;
	memset(&req, 0, sizeof(req));
	req.idle_ms = 200; /* a paused transfer is not idle */
	start(&t, "/big", &req);
	ev = evtimer_new(base, resume_cb, &t);
	assert_true(run_until(bodies1, &t, 3000));
	evtimer_add(ev, &tv);
	assert_true(run_until(done1, &t, 5000));
	event_free(ev);
	assert_int_equal(t.res.status, WRK_XFER_OK);
	/* It waited for the resume, and the rest came after it. */
	assert_true(t.resumed_at != 0 && t.done_at >= t.resumed_at);
	assert_true(t.bodies > 1);
	assert_int_equal(t.len, BIG_PIECE * BIG_PIECES);
	for (i = 0; i < t.len; i++)
		if (t.body[i] != (char)(i % 251))
			fail_msg("byte %zu differs", i);
	free(t.body);

	/* The response bound. */
	tx_init(&t, 0);
	memset(&req, 0, sizeof(req));
	req.max_response = 1000;
	start(&t, "/big", &req);
	assert_true(run_until(done1, &t, 5000));
	assert_int_equal(t.res.status, WRK_XFER_ABORTED);
	assert_string_equal(t.msg, "response over 1000 bytes");
	assert_true(t.len <= BIG_PIECE);
}

/*
 * HTTPS: verified against the bundle in memory (here the test's own CA
 * in place of the system's), and refused when it does not vouch.
 */
static void
test_https(void **state)
{
	char *system_ca = http_global.ca;
	size_t system_len = http_global.ca_len;
	char url[128];
	struct tx t;

	snprintf(url, sizeof(url), "https://127.0.0.1:%d/", tls_port);
	http_global.ca = test_ca;
	http_global.ca_len = test_ca_len;
	tx_init(&t, 64);
	start(&t, url, NULL);
	assert_true(run_until(done1, &t, 5000));
	http_global.ca = system_ca;
	http_global.ca_len = system_len;
	assert_int_equal(t.res.status, WRK_XFER_OK);
	assert_int_equal(t.res.http_status, 200);
	assert_int_equal(t.len, 5);
	assert_memory_equal(t.body, "hello", 5);
	free(t.body);

	/* The system bundle does not know the test's CA. */
	tx_init(&t, 0);
	start(&t, url, NULL);
	assert_true(run_until(done1, &t, 5000));
	assert_int_equal(t.res.status, WRK_XFER_CONNECT);
	assert_non_null(strstr(t.msg, "certificate"));
}

/* A POST with its body and headers, and another method. */
static void
test_post(void **state)
{
	static const char body[] = "{\"model\":\"m\",\"stream\":true}";
	struct wrk_xfer_req req;
	struct tx t;

	tx_init(&t, 256);
	memset(&req, 0, sizeof(req));
	req.method = "POST";
	req.headers[0] = "Content-Type: application/json";
	req.headers[1] = "X-Key: k1";
	req.nheaders = 2;
	req.body = body;
	req.body_len = strlen(body);
	start(&t, "/echo", &req);
	assert_true(run_until(done1, &t, 5000));
	assert_int_equal(t.res.status, WRK_XFER_OK);
	t.body[t.len] = '\0';
	assert_string_equal(
	    t.body, "POST|k1|{\"model\":\"m\",\"stream\":true}");
	free(t.body);

	tx_init(&t, 256);
	memset(&req, 0, sizeof(req));
	req.method = "DELETE";
	start(&t, "/echo", &req);
	assert_true(run_until(done1, &t, 5000));
	t.body[t.len] = '\0';
	assert_string_equal(t.body, "DELETE||");
	free(t.body);
}

/* Connections are reused within the multi handle. */
static void
test_reuse(void **state)
{
	struct tx t;
	int before, i;

	before = accepted;
	for (i = 0; i < 3; i++) {
		tx_init(&t, 16);
		start(&t, "/ka", NULL);
		assert_true(run_until(done1, &t, 3000));
		assert_int_equal(t.res.status, WRK_XFER_OK);
		assert_memory_equal(t.body, "ka", 2);
		free(t.body);
	}
	assert_int_equal(accepted - before, 1);
}

/* Freeing the whole thing mid-transfer: no callback, the server sees
 * the connection close. */
static void
test_free_active(void **state)
{
	struct wrk_http *mine, *saved = http;
	struct tx t;
	int want = eofs_seen + 1;

	mine = wrk_http_new(base);
	assert_non_null(mine);
	http = mine;
	tx_init(&t, 0);
	start(&t, "/hold", NULL);
	http = saved;
	assert_true(run_until(bodies1, &t, 3000));
	wrk_http_free(mine);
	assert_true(run_until(eofs_reach, &want, 3000));
	assert_int_equal(t.dones, 0);
}

#define CONCURRENT 100

struct many {
	struct tx t[CONCURRENT];
	struct tx spawned[20];
};

static int
all_done(void *arg)
{
	struct many *m = arg;
	size_t i;

	for (i = 0; i < CONCURRENT; i++)
		if (m->t[i].dones == 0)
			return 0;
	for (i = 0; i < 20; i++)
		if (m->spawned[i].dones == 0)
			return 0;
	return 1;
}

static void
test_concurrent(void **state)
{
	static struct many m;
	size_t i;

	memset(&m, 0, sizeof(m));
	for (i = 0; i < CONCURRENT; i++) {
		tx_init(&m.t[i], 16);
		if (i < 20) {
			/* Ten start another from on_body, ten from on_done. */
			m.t[i].start_in_body = i < 10;
			m.t[i].start_in_done = i >= 10;
			m.t[i].spawned = &m.spawned[i];
		}
		start(&m.t[i], "/small", NULL);
		assert_non_null(m.t[i].x);
	}
	assert_int_equal(wrk_http_active(http), CONCURRENT);
	assert_true(run_until(all_done, &m, 8000));
	for (i = 0; i < CONCURRENT; i++) {
		assert_int_equal(m.t[i].res.status, WRK_XFER_OK);
		assert_int_equal(m.t[i].len, 2);
		assert_memory_equal(m.t[i].body, "ok", 2);
		free(m.t[i].body);
	}
	for (i = 0; i < 20; i++) {
		assert_int_equal(m.spawned[i].res.status, WRK_XFER_OK);
		assert_int_equal(m.spawned[i].len, 2);
	}
	assert_int_equal(wrk_http_active(http), 0);
}

/*
 * Under the worker's own seccomp allow-list and Landlock rules (no file
 * at all, TCP connect to the server's port only), in a child: the pinned
 * name, a body in pieces, TLS set-up with the bundle in memory.
 */
static int
sandboxed_transfers(void)
{
	struct sbx_profile p;
	struct sbx_facts f;
	struct tx t;
	char ports[16], url[128];

	alarm(10);
	snprintf(ports, sizeof(ports), "%d,%d", srv_port, tls_port);
	if (sbx_profile_worker(&p, NULL, NULL, ports) < 0)
		return 10;
	sbx_facts_init(&f);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1 ||
	    sbx_landlock_apply(&p, &f, -1) < 0 || sbx_seccomp_apply(&p, &f) < 0)
		return 11;
	/* The filter is on: even asking about it is not on its list. */
	if (f.napplied == 0 ||
	    strcmp(f.applied_list[f.napplied - 1],
		"seccomp allow-list (worker)") != 0 ||
	    prctl(PR_GET_SECCOMP) != -1 || errno != EPERM)
		return 16;
	/* A fresh loop: the parent's epoll set is not ours to touch. */
	if ((base = event_base_new()) == NULL ||
	    (http = wrk_http_new(base)) == NULL)
		return 12;
	tx_init(&t, 4096);
	snprintf(url, sizeof(url), "http://localhost:%d/sse", srv_port);
	start(&t, url, NULL);
	if (t.x == NULL || !run_until(done1, &t, 5000) ||
	    t.res.status != WRK_XFER_OK || t.len == 0)
		return 13;
	tx_init(&t, 0);
	snprintf(url, sizeof(url), "https://localhost:%d/small", srv_port);
	start(&t, url, NULL);
	if (t.x == NULL || !run_until(done1, &t, 5000) ||
	    t.res.status != WRK_XFER_CONNECT)
		return 14;
	/* A full TLS handshake, verified against the bundle in memory. */
	http_global.ca = test_ca;
	http_global.ca_len = test_ca_len;
	tx_init(&t, 64);
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/", tls_port);
	start(&t, url, NULL);
	if (t.x == NULL || !run_until(done1, &t, 5000) ||
	    t.res.status != WRK_XFER_OK || t.len != 5)
		return 17;
	/* The file system is really gone. */
	if (fopen("/etc/hosts", "r") != NULL)
		return 15;
	wrk_http_free(http);
	return 0;
}

static void
test_sandboxed(void **state)
{
	pid_t pid;
	int status;

	fflush(NULL);
	if ((pid = fork()) == 0)
		_exit(sandboxed_transfers());
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (WIFSIGNALED(status))
		fail_msg("child killed by signal %d", WTERMSIG(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sse_piecewise),
	    cmocka_unit_test(test_heads),
	    cmocka_unit_test(test_connect_failures),
	    cmocka_unit_test(test_timeouts),
	    cmocka_unit_test(test_cancel),
	    cmocka_unit_test(test_pause),
	    cmocka_unit_test(test_concurrent),
	    cmocka_unit_test(test_post),
	    cmocka_unit_test(test_https),
	    cmocka_unit_test(test_reuse),
	    cmocka_unit_test(test_free_active),
	    cmocka_unit_test(test_sandboxed),
	};
	char pins[64];
	pthread_t th;
	int lfd, dfd, rc;

	log_init("test_http", NULL, 0, 1);
	if ((lfd = listen_any(&srv_port)) < 0 ||
	    (dfd = listen_any(&dead_port)) < 0)
		return 1;
	close(dfd); /* nothing listens there now */
	if (pthread_create(&th, NULL, accept_thread, (void *)(intptr_t)lfd))
		return 1;
	if (tls_start() < 0) {
		fprintf(stderr, "test_http: cannot start the TLS server\n");
		return 1;
	}
	/* Malformed lists are refused before anything is resolved. */
	if (wrk_http_prepare("localhost") != -EINVAL ||
	    wrk_http_prepare("localhost:0") != -EINVAL ||
	    wrk_http_prepare("a:1,,b:x") != -EINVAL ||
	    wrk_http_prepare("[::1:80") != -EINVAL)
		return 1;
	snprintf(pins, sizeof(pins), "localhost:%d,127.0.0.1:%d,[::1]:%d",
	    srv_port, srv_port, srv_port);
	if (wrk_http_prepare(pins) != 0 || wrk_http_prepare(pins) != -EALREADY)
		return 1;
	base = event_base_new();
	http = wrk_http_new(base);
	if (base == NULL || http == NULL)
		return 1;
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	wrk_http_free(http);
	event_base_free(base);
	return rc;
}
