/*
 * http.c: outbound HTTP of palyra-worker's providers (http.h): libcurl's
 * multi interface driven by the worker's libevent loop.
 *
 * Runs in palyra-worker. wrk_http_prepare() runs before the sandbox and is
 * the only part that touches the file system (the CA bundle) or DNS (the
 * provider host names, resolved once and pinned); everything after uses
 * memory and TCP connects only.
 *
 * curl tells us which sockets to watch (sock_cb) and when to wake it
 * (timer_cb); libevent calls back into curl_multi_socket_action(). The
 * timeouts a provider reports are ours (libevent timers per transfer), so
 * that each has its own status: connect, first byte (request sent, no
 * response byte yet), idle (no byte mid-response), total.
 *
 * curl forbids adding or removing an easy handle from inside its own
 * callbacks, and a transfer's owner may cancel or start transfers from
 * on_head/on_body: while curl is on the stack (http->depth > 0) such work
 * is only marked, and settle() does it once curl has returned. A transfer
 * is freed only there, or directly when nothing of curl is on the stack.
 */
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "http.h"
#include "limits.h"
#include "log.h"

#define WRK_HTTP_CA_BUNDLE "/etc/ssl/certs/ca-certificates.crt"
#define WRK_HTTP_HOST_MAX 255 /* a DNS name */
#define WRK_HTTP_RECV_BUFFER 4096 /* CURLOPT_BUFFERSIZE of a transfer */
#define WRK_HTTP_ADDRS_MAX 8  /* pinned addresses per host */
#define WRK_HTTP_USER_AGENT "palyra-worker"

/*
 * What wrk_http_prepare() found before the sandbox: read-only afterwards,
 * shared by every struct wrk_http of the process.
 */
static struct {
	int curl_ready;
	int prepared;
	char *ca; /* the CA bundle (PEM), NULL if none */
	size_t ca_len;
	/* The bundle parsed once, shared by every TLS connection (curl
	 * would keep a copy of the PEM text and parse it per connection). */
	X509_STORE *store;
	const char *store_of; /* the ca text store was made from */
	struct curl_slist *resolve; /* CURLOPT_RESOLVE "host:port:addrs" */
	struct {
		char host[WRK_HTTP_HOST_MAX + 1];
		unsigned port;
		/* What CURLOPT_RESOLVE connects it to (wrk_http_pinned). */
		struct sockaddr_storage addrs[WRK_HTTP_ADDRS_MAX];
		size_t naddrs;
	} pinned[WRK_HTTP_HOSTS_MAX];
	size_t npinned;
} http_global;

/*
 * A transfer's phases; each arms phase_ev with its own timeout. A byte of
 * the response moves WAITING (or CONNECTING, for a reused connection
 * whose prerequisite callback came late) to RECEIVING, and re-arms the
 * idle timeout while RECEIVING.
 */
enum xfer_phase {
	XFER_CONNECTING = 0, /* until the connection is up */
	XFER_WAITING,	     /* request sent, no response byte yet */
	XFER_RECEIVING,	     /* response bytes flowing */
};

struct http_sock {
	LIST_ENTRY(http_sock) entry;
	struct wrk_http *http;
	struct event *ev;
	curl_socket_t fd;
};

struct wrk_xfer {
	TAILQ_ENTRY(wrk_xfer) entry;
	struct wrk_http *http;
	CURL *easy;
	struct curl_slist *headers;
	struct wrk_xfer_cbs cbs;
	void *arg;
	enum xfer_phase phase;
	struct event *phase_ev; /* connect, first byte or idle */
	struct event *total_ev;
	uint64_t connect_ms, first_byte_ms, idle_ms, total_ms;
	size_t max_response;
	size_t received; /* body bytes */
	int added;	 /* in the multi handle */
	int pending_add; /* to be added once curl returns */
	int cancelled;	 /* by its owner: no callback, to free */
	int finished;	 /* on_done is being given */
	int paused;
	int head_done;
	int stopped; /* stop_status decided by us */
	enum wrk_xfer_status stop_status;
	long http_status; /* of the response being read */
	int64_t retry_after_ms;
	/* The final response's headers: "name\0value\0" pairs. */
	char *head;
	size_t head_len, head_size;
	int head_last; /* offset of the last value, -1 none */
	char errbuf[CURL_ERROR_SIZE];
	char message[CURL_ERROR_SIZE];
};

struct wrk_http {
	struct event_base *base;
	CURLM *multi;
	struct event *timer; /* curl's single timeout */
	TAILQ_HEAD(, wrk_xfer) xfers;
	LIST_HEAD(, http_sock) socks;
	size_t nxfers;
	size_t npending; /* cancelled or to add, once curl returns */
	int depth;	 /* curl calls on the stack */
	int settling;
	int dirty; /* settle() must look again */
};

static void settle(struct wrk_http *);

/* ---- Before the sandbox. ---- */

static int
global_init(void)
{
	CURLcode rc;

	if (http_global.curl_ready)
		return 0;
	/* OpenSSL reads its configuration here, before the sandbox. */
	if ((rc = curl_global_init(CURL_GLOBAL_DEFAULT)) != CURLE_OK) {
		log_error("curl_global_init: %s", curl_easy_strerror(rc));
		return -EIO;
	}
	http_global.curl_ready = 1;
	return 0;
}

/* Parses the PEM bundle into http_global.store: 0, -EINVAL (no
 * certificate in it) or -ENOMEM. */
static int
ca_store(const char *pem, size_t len)
{
	STACK_OF(X509_INFO) *infos = NULL;
	X509_INFO *info;
	X509_STORE *store;
	BIO *bio;
	int i, ncerts = 0, rc = -ENOMEM;

	/* len <= WRK_HTTP_CA_MAX: an int. */
	if ((store = X509_STORE_new()) == NULL ||
	    (bio = BIO_new_mem_buf(pem, (int)len)) == NULL) {
		X509_STORE_free(store);
		return -ENOMEM;
	}
	infos = PEM_X509_INFO_read_bio(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (infos == NULL) {
		X509_STORE_free(store);
		return -EINVAL;
	}
	for (i = 0; i < sk_X509_INFO_num(infos); i++) {
		info = sk_X509_INFO_value(infos, i);
		if (info->x509 != NULL) {
			if (X509_STORE_add_cert(store, info->x509) != 1)
				goto out;
			ncerts++;
		}
		if (info->crl != NULL &&
		    X509_STORE_add_crl(store, info->crl) != 1)
			goto out;
	}
	if (ncerts == 0) {
		rc = -EINVAL;
		goto out;
	}
	/* What curl sets on the store it makes itself. */
	X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN |
	    X509_V_FLAG_TRUSTED_FIRST);
	X509_STORE_free(http_global.store);
	http_global.store = store;
	http_global.store_of = pem;
	store = NULL;
	rc = 0;
out:
	sk_X509_INFO_pop_free(infos, X509_INFO_free);
	X509_STORE_free(store);
	return rc;
}

/* CURLOPT_SSL_CTX_FUNCTION: the shared store as the connection's trust. */
static CURLcode
ssl_ctx_cb(CURL *easy, void *ssl_ctx, void *arg)
{
	(void)easy;
	(void)arg;
	/* Made once, before the sandbox; again only if the bundle changed
	 * (the unit tests put their own CA in its place). */
	if (http_global.ca == NULL || ((http_global.store == NULL ||
	    http_global.store_of != http_global.ca) &&
	    ca_store(http_global.ca, http_global.ca_len) < 0))
		return CURLE_SSL_CACERT_BADFILE;
	/* The store that verifies the peer's chain: curl sets up the
	 * context's own store after this callback, and leaves this one. */
	if (SSL_CTX_set1_verify_cert_store(ssl_ctx, http_global.store) != 1)
		return CURLE_OUT_OF_MEMORY;
	return CURLE_OK;
}

static int
read_ca_bundle(const char *path)
{
	struct stat st;
	ssize_t n;
	size_t off = 0;
	char *ca;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -errno;
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
	    st.st_size > WRK_HTTP_CA_MAX) {
		close(fd);
		return -EFBIG;
	}
	if ((ca = malloc((size_t)st.st_size)) == NULL) {
		close(fd);
		return -ENOMEM;
	}
	while (off < (size_t)st.st_size) {
		n = read(fd, ca + off, (size_t)st.st_size - off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			free(ca);
			close(fd);
			return n == 0 ? -EIO : -errno;
		}
		off += (size_t)n;
	}
	close(fd);
	http_global.ca = ca;
	http_global.ca_len = off;
	return ca_store(ca, off);
}

/* An IP literal (IPv6 with or without brackets) needs no resolution. */
static int
ip_literal(const char *host)
{
	unsigned char addr[sizeof(struct in6_addr)];
	char v6[INET6_ADDRSTRLEN + 2];
	size_t len = strlen(host);

	if (inet_pton(AF_INET, host, addr) == 1)
		return 1;
	if (len > 2 && host[0] == '[' && host[len - 1] == ']' &&
	    len - 2 < sizeof(v6)) {
		memcpy(v6, host + 1, len - 2);
		v6[len - 2] = '\0';
		host = v6;
	}
	return inet_pton(AF_INET6, host, addr) == 1;
}

/* "host:port" or "[v6]:port" into host (brackets kept) and port. */
static int
parse_hostport(const char *s, char *host, size_t hostsize, unsigned *port)
{
	const char *colon;
	unsigned long v;
	char *end;
	size_t n;

	if (s[0] == '[') {
		if ((colon = strchr(s, ']')) == NULL || colon[1] != ':')
			return -EINVAL;
		colon++;
	} else if ((colon = strrchr(s, ':')) == NULL ||
		   memchr(s, ':', (size_t)(colon - s)) != NULL)
		return -EINVAL;
	n = (size_t)(colon - s);
	if (n == 0 || n >= hostsize || !isdigit((unsigned char)colon[1]))
		return -EINVAL;
	errno = 0;
	v = strtoul(colon + 1, &end, 10);
	if (errno != 0 || *end != '\0' || v == 0 || v > 65535)
		return -EINVAL;
	memcpy(host, s, n);
	host[n] = '\0';
	for (end = host; *end != '\0'; end++)
		if (!isalnum((unsigned char)*end) &&
		    strchr(".-_[]:", *end) == NULL)
			return -EINVAL;
	*port = (unsigned)v;
	return 0;
}

/* Resolves one host now and remembers its addresses for CURLOPT_RESOLVE. */
static int
pin_host(const char *host, unsigned port)
{
	struct addrinfo hints, *res = NULL, *ai;
	char entry[WRK_HTTP_HOST_MAX + 16 +
		   WRK_HTTP_ADDRS_MAX * (INET6_ADDRSTRLEN + 3)];
	char addr[INET6_ADDRSTRLEN];
	struct curl_slist *l;
	const void *src;
	size_t used, naddrs = 0;
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if ((rc = getaddrinfo(host, NULL, &hints, &res)) != 0) {
		log_warn("provider host %s: %s; its requests will fail", host,
		    gai_strerror(rc));
		return 0;
	}
	used = (size_t)snprintf(entry, sizeof(entry), "%s:%u:", host, port);
	for (ai = res; ai != NULL && naddrs < WRK_HTTP_ADDRS_MAX;
	     ai = ai->ai_next) {
		if (ai->ai_family == AF_INET)
			src = &((struct sockaddr_in *)ai->ai_addr)->sin_addr;
		else if (ai->ai_family == AF_INET6)
			src = &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
		else
			continue;
		if (inet_ntop(ai->ai_family, src, addr, sizeof(addr)) == NULL)
			continue;
		memcpy(&http_global.pinned[http_global.npinned].addrs[naddrs],
		    ai->ai_addr, ai->ai_addrlen);
		used += (size_t)snprintf(entry + used, sizeof(entry) - used,
		    ai->ai_family == AF_INET6 ? "%s[%s]" : "%s%s",
		    naddrs > 0 ? "," : "", addr);
		naddrs++;
	}
	freeaddrinfo(res);
	if (naddrs == 0) {
		log_warn("provider host %s: no address; its requests will fail",
		    host);
		return 0;
	}
	if ((l = curl_slist_append(http_global.resolve, entry)) == NULL)
		return -ENOMEM;
	http_global.resolve = l;
	snprintf(http_global.pinned[http_global.npinned].host,
	    sizeof(http_global.pinned[0].host), "%s", host);
	http_global.pinned[http_global.npinned].port = port;
	http_global.pinned[http_global.npinned].naddrs = naddrs;
	http_global.npinned++;
	log_debug("provider host %s:%u pinned", host, port);
	return 0;
}

int
wrk_http_prepare(const char *hostports)
{
	char list[WRK_HTTP_HOSTS_MAX * (WRK_HTTP_HOST_MAX + 8)];
	char host[WRK_HTTP_HOST_MAX + 1], *item, *save = NULL;
	unsigned port;
	size_t n = 0;
	int rc;

	if (http_global.prepared)
		return -EALREADY;
	if (hostports != NULL && strlen(hostports) >= sizeof(list))
		return -EINVAL;
	/* The whole list is checked before anything is resolved. */
	snprintf(list, sizeof(list), "%s", hostports != NULL ? hostports : "");
	for (item = strtok_r(list, ",", &save); item != NULL;
	     item = strtok_r(NULL, ",", &save)) {
		if (parse_hostport(item, host, sizeof(host), &port) < 0 ||
		    ++n > WRK_HTTP_HOSTS_MAX)
			return -EINVAL;
	}
	if ((rc = global_init()) < 0)
		return rc;
	http_global.prepared = 1;
	if ((rc = read_ca_bundle(WRK_HTTP_CA_BUNDLE)) < 0)
		log_warn("CA bundle %s: %s; https will fail",
		    WRK_HTTP_CA_BUNDLE, strerror(-rc));
	snprintf(list, sizeof(list), "%s", hostports != NULL ? hostports : "");
	for (item = strtok_r(list, ",", &save); item != NULL;
	     item = strtok_r(NULL, ",", &save)) {
		(void)parse_hostport(item, host, sizeof(host), &port);
		if (ip_literal(host))
			continue;
		if ((rc = pin_host(host, port)) < 0)
			return rc;
	}
	return 0;
}

/* May a transfer go to this host? An IP literal or a pinned name. */
static int
host_allowed(const char *host, unsigned port)
{
	size_t i;

	if (ip_literal(host))
		return 1;
	for (i = 0; i < http_global.npinned; i++)
		if (http_global.pinned[i].port == port &&
		    strcasecmp(http_global.pinned[i].host, host) == 0)
			return 1;
	return 0;
}

size_t
wrk_http_pinned(const char *host, unsigned port,
    struct sockaddr_storage *addrs, size_t max)
{
	size_t i, n;

	for (i = 0; i < http_global.npinned; i++) {
		if (http_global.pinned[i].port != port ||
		    strcasecmp(http_global.pinned[i].host, host) != 0)
			continue;
		n = http_global.pinned[i].naddrs < max ?
		    http_global.pinned[i].naddrs : max;
		memcpy(addrs, http_global.pinned[i].addrs, n * sizeof(*addrs));
		return n;
	}
	return 0;
}

/* ---- curl's sockets and timer on libevent. ---- */

static void
sock_ev_cb(evutil_socket_t fd, short what, void *arg)
{
	struct wrk_http *h = arg;
	int action = 0, running;

	if (what & EV_READ)
		action |= CURL_CSELECT_IN;
	if (what & EV_WRITE)
		action |= CURL_CSELECT_OUT;
	h->depth++;
	curl_multi_socket_action(h->multi, fd, action, &running);
	h->depth--;
	settle(h);
}

static int
sock_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct wrk_http *h = userp;
	struct http_sock *s = socketp;
	short flags = EV_PERSIST;

	if (what == CURL_POLL_REMOVE) {
		if (s != NULL) {
			event_free(s->ev);
			LIST_REMOVE(s, entry);
			free(s);
		}
		return 0;
	}
	if (what & CURL_POLL_IN)
		flags |= EV_READ;
	if (what & CURL_POLL_OUT)
		flags |= EV_WRITE;
	if (s == NULL) {
		if ((s = calloc(1, sizeof(*s))) == NULL)
			return -1;
		s->http = h;
		s->fd = fd;
		if ((s->ev = event_new(h->base, fd, flags, sock_ev_cb, h)) ==
		    NULL) {
			free(s);
			return -1;
		}
		LIST_INSERT_HEAD(&h->socks, s, entry);
		curl_multi_assign(h->multi, fd, s);
	} else {
		event_del(s->ev);
		event_assign(s->ev, h->base, fd, flags, sock_ev_cb, h);
	}
	return event_add(s->ev, NULL) == 0 ? 0 : -1;
}

static void
timer_ev_cb(evutil_socket_t fd, short what, void *arg)
{
	struct wrk_http *h = arg;
	int running;

	h->depth++;
	curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	h->depth--;
	settle(h);
}

static int
timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct wrk_http *h = userp;
	struct timeval tv;

	if (timeout_ms < 0) {
		evtimer_del(h->timer);
		return 0;
	}
	/* 0 means "now", which is the next turn of the loop: curl must not
	 * be re-entered from its own callback. */
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	return evtimer_add(h->timer, &tv) == 0 ? 0 : -1;
}

/* ---- Transfers. ---- */

static void
arm(struct event *ev, uint64_t ms)
{
	struct timeval tv;

	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	evtimer_add(ev, &tv);
}

/* Enters a phase (or re-enters RECEIVING) and arms its timeout. */
static void
xfer_phase(struct wrk_xfer *x, enum xfer_phase to)
{
	x->phase = to;
	switch (to) {
	case XFER_CONNECTING:
		arm(x->phase_ev, x->connect_ms);
		break;
	case XFER_WAITING:
		arm(x->phase_ev, x->first_byte_ms);
		break;
	case XFER_RECEIVING:
		/* A paused transfer's silence is ours, not the server's. */
		if (x->paused)
			evtimer_del(x->phase_ev);
		else
			arm(x->phase_ev, x->idle_ms);
		break;
	}
}

/* The end of a transfer we decided while curl was on the stack. */
static void xfer_stop(struct wrk_xfer *x, enum wrk_xfer_status st,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
xfer_stop(struct wrk_xfer *x, enum wrk_xfer_status st, const char *fmt, ...)
{
	va_list ap;

	if (x->stopped)
		return;
	x->stopped = 1;
	x->stop_status = st;
	va_start(ap, fmt);
	vsnprintf(x->message, sizeof(x->message), fmt, ap);
	va_end(ap);
}

static void
xfer_free(struct wrk_xfer *x)
{
	struct wrk_http *h = x->http;

	event_free(x->phase_ev);
	event_free(x->total_ev);
	if (x->added)
		curl_multi_remove_handle(h->multi, x->easy);
	curl_easy_cleanup(x->easy);
	curl_slist_free_all(x->headers);
	free(x->head);
	TAILQ_REMOVE(&h->xfers, x, entry);
	h->nxfers--;
	free(x);
}

/*
 * Ends a transfer with nothing of curl on the stack: out of the multi
 * handle (mid-transfer, curl closes its connection), on_done, freed.
 */
static void
xfer_end(struct wrk_xfer *x, enum wrk_xfer_status st, const char *message)
{
	struct wrk_xfer_result r;

	x->finished = 1;
	evtimer_del(x->phase_ev);
	evtimer_del(x->total_ev);
	if (x->added) {
		curl_multi_remove_handle(x->http->multi, x->easy);
		x->added = 0;
	}
	if (message != x->message)
		snprintf(x->message, sizeof(x->message), "%s", message);
	memset(&r, 0, sizeof(r));
	r.status = st;
	r.http_status = x->head_done ? x->http_status : 0;
	r.retry_after_ms = x->head_done ? x->retry_after_ms : -1;
	r.message = x->message;
	if (x->cbs.on_done != NULL)
		x->cbs.on_done(x, &r, x->arg);
	xfer_free(x);
}

static void
format_s(char *buf, size_t len, uint64_t ms)
{
	snprintf(buf, len, "%" PRIu64 ".%" PRIu64 " s", ms / 1000,
	    (ms % 1000) / 100);
}

static void
phase_ev_cb(evutil_socket_t fd, short what, void *arg)
{
	struct wrk_xfer *x = arg;
	char s[32], msg[64];

	if (x->stopped) { /* decided at start (an unpinned host) */
		xfer_end(x, x->stop_status, x->message);
		return;
	}
	switch (x->phase) {
	case XFER_CONNECTING:
		format_s(s, sizeof(s), x->connect_ms);
		snprintf(msg, sizeof(msg), "could not connect within %s", s);
		xfer_end(x, WRK_XFER_CONNECT, msg);
		break;
	case XFER_WAITING:
		format_s(s, sizeof(s), x->first_byte_ms);
		snprintf(msg, sizeof(msg), "no response within %s", s);
		xfer_end(x, WRK_XFER_FIRST_BYTE, msg);
		break;
	case XFER_RECEIVING:
		format_s(s, sizeof(s), x->idle_ms);
		snprintf(msg, sizeof(msg), "no data for %s", s);
		xfer_end(x, WRK_XFER_IDLE, msg);
		break;
	}
}

static void
total_ev_cb(evutil_socket_t fd, short what, void *arg)
{
	struct wrk_xfer *x = arg;
	char s[32], msg[64];

	format_s(s, sizeof(s), x->total_ms);
	snprintf(msg, sizeof(msg), "not complete within %s", s);
	xfer_end(x, WRK_XFER_TOTAL, msg);
}

/* The status of a transfer curl ended. */
static void
xfer_curl_done(struct wrk_xfer *x, CURLcode code)
{
	enum wrk_xfer_status st;
	char msg[sizeof(x->message)];

	if (x->stopped) {
		xfer_end(x, x->stop_status, x->message);
		return;
	}
	if (code == CURLE_OK) {
		snprintf(msg, sizeof(msg), "HTTP %ld", x->http_status);
		xfer_end(x, WRK_XFER_OK, msg);
		return;
	}
	if (code == CURLE_OUT_OF_MEMORY)
		st = WRK_XFER_INTERNAL;
	else if (x->phase == XFER_CONNECTING)
		st = WRK_XFER_CONNECT; /* refused, TLS, connect timeout */
	else if (code == CURLE_OPERATION_TIMEDOUT)
		st = WRK_XFER_TOTAL;
	else
		st = WRK_XFER_NETWORK;
	/* curl's detail names the host and port at most, never a header. */
	snprintf(msg, sizeof(msg), "%s",
	    x->errbuf[0] != '\0' ? x->errbuf : curl_easy_strerror(code));
	xfer_end(x, st, msg);
}

static void
check_done(struct wrk_http *h)
{
	struct wrk_xfer *x;
	CURLMsg *m;
	CURLcode code;
	char *priv;
	int left;

	while ((m = curl_multi_info_read(h->multi, &left)) != NULL) {
		if (m->msg != CURLMSG_DONE)
			continue;
		code = m->data.result;
		if (curl_easy_getinfo(
			m->easy_handle, CURLINFO_PRIVATE, &priv) != CURLE_OK ||
		    priv == NULL)
			continue;
		x = (struct wrk_xfer *)(void *)priv;
		if (x->cancelled)
			continue; /* freed by the sweep */
		xfer_curl_done(x, code);
	}
}

/* Work marked while curl was on the stack: cancels and additions. */
static void
sweep(struct wrk_http *h)
{
	struct wrk_xfer *x;

again:
	if (h->npending == 0)
		return;
	TAILQ_FOREACH(x, &h->xfers, entry)
	{
		if (x->cancelled) {
			h->npending--;
			xfer_free(x);
			goto again;
		}
		if (x->pending_add) {
			x->pending_add = 0;
			h->npending--;
			if (curl_multi_add_handle(h->multi, x->easy) !=
			    CURLM_OK) {
				xfer_end(x, WRK_XFER_INTERNAL,
				    "cannot add the transfer");
				goto again;
			}
			x->added = 1;
		}
	}
}

static void
settle(struct wrk_http *h)
{
	if (h->depth > 0 || h->settling) {
		h->dirty = 1;
		return;
	}
	h->settling = 1;
	do {
		h->dirty = 0;
		check_done(h);
		sweep(h);
	} while (h->dirty);
	h->settling = 0;
}

/* ---- curl's callbacks for one transfer. ---- */

static int
prereq_cb(void *arg, char *primary_ip, char *local_ip, int primary_port,
    int local_port)
{
	struct wrk_xfer *x = arg;

	if (x->phase == XFER_CONNECTING)
		xfer_phase(x, XFER_WAITING);
	return CURL_PREREQFUNC_OK;
}

/* Retry-After: delta-seconds or an HTTP date; -1 if neither. */
static int64_t
retry_after(const char *v)
{
	const char *p;
	time_t t, now;
	uint64_t s = 0;

	if (v == NULL || *v == '\0')
		return -1;
	if (isdigit((unsigned char)*v)) {
		for (p = v; isdigit((unsigned char)*p); p++) {
			if (s > INT64_MAX / 10000)
				return -1; /* absurd */
			s = s * 10 + (uint64_t)(*p - '0');
		}
		return *p == '\0' ? (int64_t)s * 1000 : -1;
	}
	if ((t = curl_getdate(v, NULL)) == -1)
		return -1;
	now = time(NULL);
	return t > now ? ((int64_t)t - (int64_t)now) * 1000 : 0;
}

static int
head_add(struct wrk_xfer *x, const char *s, size_t n)
{
	size_t size;
	char *p;

	if (x->head_len + n + 1 > x->head_size) {
		size = x->head_size == 0 ? 1024 : x->head_size;
		while (size < x->head_len + n + 1)
			size *= 2;
		if (size > WRK_HTTP_HEAD_MAX)
			return -EMSGSIZE;
		if ((p = realloc(x->head, size)) == NULL)
			return -ENOMEM;
		x->head = p;
		x->head_size = size;
	}
	memcpy(x->head + x->head_len, s, n);
	x->head[x->head_len + n] = '\0';
	x->head_len += n + 1;
	return 0;
}

/* One header line, without its line end. */
static int
head_line(struct wrk_xfer *x, const char *s, size_t n)
{
	const char *colon;
	size_t name_len;
	int rc;

	if (n >= 5 && memcmp(s, "HTTP/", 5) == 0) {
		/* A new response (after a 1xx): forget the previous head. */
		x->head_len = 0;
		x->head_last = -1;
		x->http_status = 0;
		if ((colon = memchr(s, ' ', n)) != NULL &&
		    (size_t)(colon - s) + 4 <= n &&
		    isdigit((unsigned char)colon[1]) &&
		    isdigit((unsigned char)colon[2]) &&
		    isdigit((unsigned char)colon[3]))
			x->http_status = (colon[1] - '0') * 100 +
					 (colon[2] - '0') * 10 +
					 (colon[3] - '0');
		return 0;
	}
	if (s[0] == ' ' || s[0] == '\t') {
		/* obs-fold: the value goes on; joined with a space. */
		if (x->head_last < 0)
			return 0;
		while (n > 0 && (s[0] == ' ' || s[0] == '\t'))
			s++, n--;
		x->head[x->head_len - 1] = ' '; /* its NUL */
		return head_add(x, s, n);
	}
	if ((colon = memchr(s, ':', n)) == NULL || colon == s)
		return 0; /* not a header: ignored */
	name_len = (size_t)(colon - s);
	if ((rc = head_add(x, s, name_len)) < 0)
		return rc;
	s = colon + 1;
	n -= name_len + 1;
	while (n > 0 && (s[0] == ' ' || s[0] == '\t'))
		s++, n--;
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	x->head_last = (int)x->head_len;
	return head_add(x, s, n);
}

static size_t
header_cb(char *buf, size_t size, size_t nitems, void *arg)
{
	struct wrk_xfer *x = arg;
	size_t n = size * nitems, len = n;
	int rc;

	if (x->cancelled || x->stopped)
		return 0;
	xfer_phase(x, XFER_RECEIVING);
	if (x->head_done)
		return len; /* trailers */
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	if (n > 0) {
		if ((rc = head_line(x, buf, n)) < 0) {
			xfer_stop(x, WRK_XFER_NETWORK,
			    "response head over %d bytes", WRK_HTTP_HEAD_MAX);
			return 0;
		}
		return len;
	}
	/* The blank line: the end of a 1xx head, or of the real one. */
	if (x->http_status >= 100 && x->http_status < 200)
		return len;
	x->head_done = 1;
	x->retry_after_ms = retry_after(wrk_xfer_header(x, "retry-after"));
	if (x->cbs.on_head == NULL)
		return len;
	rc = x->cbs.on_head(x, x->http_status, x->arg);
	if (x->cancelled)
		return 0;
	if (rc < 0) {
		xfer_stop(
		    x, WRK_XFER_ABORTED, "aborted after the response head");
		return 0;
	}
	return len;
}

static size_t
write_cb(char *buf, size_t size, size_t nitems, void *arg)
{
	struct wrk_xfer *x = arg;
	size_t len = size * nitems;
	int rc;

	if (x->cancelled || x->stopped)
		return CURL_WRITEFUNC_ERROR;
	x->received += len;
	if (x->max_response != 0 && x->received > x->max_response) {
		xfer_stop(x, WRK_XFER_ABORTED, "response over %zu bytes",
		    x->max_response);
		return CURL_WRITEFUNC_ERROR;
	}
	xfer_phase(x, XFER_RECEIVING);
	if (x->cbs.on_body == NULL || len == 0)
		return len;
	rc = x->cbs.on_body(x, buf, len, x->arg);
	if (x->cancelled)
		return CURL_WRITEFUNC_ERROR;
	if (rc < 0) {
		xfer_stop(x, WRK_XFER_ABORTED, "aborted by its owner");
		return CURL_WRITEFUNC_ERROR;
	}
	/* These bytes are taken: pausing curl (rather than answering
	 * CURL_WRITEFUNC_PAUSE) keeps it from handing them over again. */
	if (rc == 1 && !x->paused) {
		x->paused = 1;
		evtimer_del(x->phase_ev);
		curl_easy_pause(x->easy, CURLPAUSE_RECV);
	}
	return len;
}

/* ---- The interface. ---- */

struct wrk_http *
wrk_http_new(struct event_base *base)
{
	struct wrk_http *h;

	if (global_init() < 0)
		return NULL;
	if ((h = calloc(1, sizeof(*h))) == NULL)
		return NULL;
	h->base = base;
	TAILQ_INIT(&h->xfers);
	LIST_INIT(&h->socks);
	if ((h->multi = curl_multi_init()) == NULL ||
	    (h->timer = evtimer_new(base, timer_ev_cb, h)) == NULL) {
		wrk_http_free(h);
		return NULL;
	}
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
	return h;
}

void
wrk_http_free(struct wrk_http *h)
{
	struct wrk_xfer *x;
	struct http_sock *s;

	if (h == NULL)
		return;
	while ((x = TAILQ_FIRST(&h->xfers)) != NULL)
		xfer_free(x);
	if (h->multi != NULL)
		curl_multi_cleanup(h->multi);
	while ((s = LIST_FIRST(&h->socks)) != NULL) {
		event_free(s->ev);
		LIST_REMOVE(s, entry);
		free(s);
	}
	if (h->timer != NULL)
		event_free(h->timer);
	free(h);
}

size_t
wrk_http_active(const struct wrk_http *h)
{
	return h->nxfers;
}

/* A request header must be one "Name: value" line. */
static int
header_valid(const char *s)
{
	const char *colon;

	if (s == NULL || (colon = strchr(s, ':')) == NULL || colon == s)
		return 0;
	return strpbrk(s, "\r\n") == NULL;
}

static int
xfer_setup(struct wrk_xfer *x, const struct wrk_xfer_req *req)
{
	CURL *e = x->easy;
	CURLcode rc = CURLE_OK;
	struct curl_slist *l;
	const char *method;
	size_t i;

	for (i = 0; i < req->nheaders; i++) {
		if ((l = curl_slist_append(x->headers, req->headers[i])) ==
		    NULL)
			return -ENOMEM;
		x->headers = l;
	}
	/* No "Expect: 100-continue" round trip for large bodies. */
	if ((l = curl_slist_append(x->headers, "Expect:")) == NULL)
		return -ENOMEM;
	x->headers = l;

#define SET(opt, val)                                                          \
	do {                                                                   \
		if (rc == CURLE_OK)                                            \
			rc = curl_easy_setopt(e, opt, val);                    \
	} while (0)
	SET(CURLOPT_URL, req->url);
	SET(CURLOPT_PRIVATE, x);
	SET(CURLOPT_ERRORBUFFER, x->errbuf);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	/* No proxy from the environment: only the providers' own ports are
	 * reachable from the sandbox anyway. */
	SET(CURLOPT_PROXY, "");
	SET(CURLOPT_TCP_KEEPALIVE, 1L);
	SET(CURLOPT_TCP_KEEPIDLE, 30L);
	SET(CURLOPT_TCP_KEEPINTVL, 15L);
	SET(CURLOPT_CONNECTTIMEOUT_MS, (long)x->connect_ms);
	SET(CURLOPT_USERAGENT, WRK_HTTP_USER_AGENT);
	SET(CURLOPT_HTTPHEADER, x->headers);
	SET(CURLOPT_HEADERFUNCTION, header_cb);
	SET(CURLOPT_HEADERDATA, x);
	SET(CURLOPT_WRITEFUNCTION, write_cb);
	SET(CURLOPT_WRITEDATA, x);
	SET(CURLOPT_PREREQFUNCTION, prereq_cb);
	SET(CURLOPT_PREREQDATA, x);
	/* Trust only the bundle read before the sandbox: no path is read
	 * after it (neither the default file nor the hashed directory). */
	SET(CURLOPT_CAINFO, NULL);
	SET(CURLOPT_CAPATH, NULL);
	/* The bundle's one parsed store, not CURLOPT_CAINFO_BLOB: with it
	 * every connection, plain http too, keeps its own copy of the PEM
	 * text (about 200 KiB) and TLS ones parse it again. A smaller
	 * receive buffer than curl's 16 KiB: server-sent events are small
	 * and parsed incrementally. */
	SET(CURLOPT_BUFFERSIZE, (long)WRK_HTTP_RECV_BUFFER);
	if (http_global.ca != NULL)
		SET(CURLOPT_SSL_CTX_FUNCTION, ssl_ctx_cb);
	if (http_global.resolve != NULL)
		SET(CURLOPT_RESOLVE, http_global.resolve);

	method = req->method != NULL ? req->method
		 : req->body != NULL ? "POST"
				     : "GET";
	if (strcmp(method, "GET") == 0 && req->body == NULL)
		SET(CURLOPT_HTTPGET, 1L);
	else if (strcmp(method, "HEAD") == 0 && req->body == NULL)
		SET(CURLOPT_NOBODY, 1L); /* http.fetch: no body to wait for */
	else {
		if (strcmp(method, "POST") != 0)
			SET(CURLOPT_CUSTOMREQUEST, method);
		SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
		SET(CURLOPT_COPYPOSTFIELDS, req->body != NULL ? req->body : "");
	}
#undef SET
	return rc == CURLE_OK		   ? 0
	       : rc == CURLE_OUT_OF_MEMORY ? -ENOMEM
					   : -EINVAL;
}

/* Parses the URL: only http and https; host and port for the pin check. */
static int
url_target(const char *url, char *host, size_t hostsize, unsigned *port)
{
	char *scheme = NULL, *h = NULL, *p = NULL;
	CURLU *u;
	int rc = -EINVAL;

	if ((u = curl_url()) == NULL)
		return -ENOMEM;
	if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
	    (strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0) &&
	    curl_url_get(u, CURLUPART_HOST, &h, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_PORT, &p, CURLU_DEFAULT_PORT) ==
		CURLUE_OK &&
	    strlen(h) < hostsize) {
		snprintf(host, hostsize, "%s", h);
		*port = (unsigned)strtoul(p, NULL, 10);
		rc = 0;
	}
	curl_free(scheme);
	curl_free(h);
	curl_free(p);
	curl_url_cleanup(u);
	return rc;
}

struct wrk_xfer *
wrk_xfer_start(struct wrk_http *h, const struct wrk_xfer_req *req,
    const struct wrk_xfer_cbs *cbs, void *arg)
{
	char host[WRK_HTTP_HOST_MAX + 3];
	struct wrk_xfer *x;
	unsigned port;
	size_t i;
	int rc;

	if (h == NULL || req == NULL || cbs == NULL || req->url == NULL ||
	    req->nheaders > WRK_HTTP_HEADERS_MAX ||
	    (req->body == NULL && req->body_len != 0)) {
		errno = EINVAL;
		return NULL;
	}
	for (i = 0; i < req->nheaders; i++)
		if (!header_valid(req->headers[i])) {
			errno = EINVAL;
			return NULL;
		}
	if ((rc = url_target(req->url, host, sizeof(host), &port)) < 0) {
		errno = -rc;
		return NULL;
	}
	if ((x = calloc(1, sizeof(*x))) == NULL)
		return NULL;
	x->http = h;
	x->cbs = *cbs;
	x->arg = arg;
	x->head_last = -1;
	x->retry_after_ms = -1;
	x->connect_ms = req->connect_ms ? req->connect_ms : WRK_HTTP_CONNECT_MS;
	x->first_byte_ms =
	    req->first_byte_ms ? req->first_byte_ms : WRK_HTTP_FIRST_BYTE_MS;
	x->idle_ms = req->idle_ms ? req->idle_ms : WRK_HTTP_IDLE_MS;
	x->total_ms = req->total_ms ? req->total_ms : WRK_HTTP_TOTAL_MS;
	x->max_response = req->max_response;
	x->phase_ev = evtimer_new(h->base, phase_ev_cb, x);
	x->total_ev = evtimer_new(h->base, total_ev_cb, x);
	x->easy = curl_easy_init();
	if (x->phase_ev == NULL || x->total_ev == NULL || x->easy == NULL ||
	    (rc = xfer_setup(x, req)) < 0) {
		rc = x->easy == NULL ? ENOMEM : -rc;
		if (x->phase_ev != NULL)
			event_free(x->phase_ev);
		if (x->total_ev != NULL)
			event_free(x->total_ev);
		curl_easy_cleanup(x->easy);
		curl_slist_free_all(x->headers);
		free(x);
		errno = rc;
		return NULL;
	}
	TAILQ_INSERT_TAIL(&h->xfers, x, entry);
	h->nxfers++;
	if (!host_allowed(host, port)) {
		/* Not resolved before the sandbox: no lookup now. The end is
		 * reported from the loop, as for any other failure. */
		xfer_stop(x, WRK_XFER_CONNECT,
		    "host %s was not resolved at worker start", host);
		arm(x->phase_ev, 0);
		return x;
	}
	xfer_phase(x, XFER_CONNECTING);
	arm(x->total_ev, x->total_ms);
	if (h->depth > 0 || h->settling) {
		x->pending_add = 1;
		h->npending++;
		h->dirty = 1;
		return x;
	}
	if (curl_multi_add_handle(h->multi, x->easy) != CURLM_OK) {
		xfer_free(x);
		errno = ENOMEM;
		return NULL;
	}
	x->added = 1;
	return x;
}

void
wrk_xfer_cancel(struct wrk_xfer *x)
{
	struct wrk_http *h;

	if (x == NULL || x->cancelled || x->finished)
		return;
	h = x->http;
	x->cancelled = 1;
	evtimer_del(x->phase_ev);
	evtimer_del(x->total_ev);
	if (x->pending_add) {
		x->pending_add = 0;
		h->npending--;
	}
	if (h->depth > 0 || h->settling) {
		/* curl is on the stack: out of the multi handle as soon as
		 * it returns. */
		h->npending++;
		h->dirty = 1;
		return;
	}
	xfer_free(x);
}

void
wrk_xfer_pause(struct wrk_xfer *x, int paused)
{
	struct wrk_http *h = x->http;

	if (x->cancelled || x->finished || x->stopped ||
	    (paused != 0) == x->paused)
		return;
	x->paused = paused != 0;
	if (x->paused) {
		if (x->phase == XFER_RECEIVING)
			evtimer_del(x->phase_ev);
		curl_easy_pause(x->easy, CURLPAUSE_RECV);
		return;
	}
	if (x->phase == XFER_RECEIVING)
		xfer_phase(x, XFER_RECEIVING);
	/* Resuming hands over what curl held at once (write_cb runs from
	 * here), then the multi handle is kicked to read the socket again. */
	h->depth++;
	curl_easy_pause(x->easy, CURLPAUSE_CONT);
	h->depth--;
	timer_cb(h->multi, 0, h);
	settle(h);
}

const char *
wrk_xfer_header(struct wrk_xfer *x, const char *name)
{
	size_t off = 0, n;
	const char *value;

	if (x == NULL || name == NULL || !x->head_done)
		return NULL;
	while (off < x->head_len) {
		n = strlen(x->head + off);
		value = x->head + off + n + 1;
		if (strcasecmp(x->head + off, name) == 0)
			return value;
		off += n + 1 + strlen(value) + 1;
	}
	return NULL;
}
