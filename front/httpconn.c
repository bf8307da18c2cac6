/*
 * httpconn.c: the connections of the HTTP listener and their limits
 * (common/limits.h, "HTTP listener abuse resistance"): open connections
 * per source address and in all, and the time a connection may take to
 * send a whole request (slowloris).
 *
 * Process: palyra-front. Touches the HTTP listener's client sockets
 * (getpeername, fstat, shutdown); no IPC.
 *
 * libevent 2.1 gives evhttp no accept hook and no word when it closes a
 * connection: its bufferevent callback (http.c) runs before the accepted
 * socket is set, and a filter bufferevent would lose the end of a reply
 * (evhttp shuts the socket down once the filter took it). So:
 *
 *  - the new connection's bufferevent is held (a reference) until the next
 *    turn of the loop, when its socket is known: its peer is looked up and,
 *    over a limit, the socket is shut down; evhttp reads EOF and closes
 *    the connection at once, with no reply;
 *  - connections are kept by descriptor with the socket's inode: one
 *    whose descriptor no longer names that socket is gone (evhttp closed
 *    it), checked when a count is needed;
 *  - a connection has FE_HTTP_REQUEST_S from its opening, and from each
 *    reply, until evhttp hands over its next whole request (gencb); then
 *    the socket is shut down the same way. evhttp's own timeout
 *    (FE_HTTP_TIMEOUT_S) starts again with every byte read, so it alone
 *    does not bound a client sending headers a byte at a time.
 */
#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>

#include "front.h"
#include "log.h"

struct fe_http_conn {
	struct fe_ctx *ctx;
	int fd;
	int open;  /* counted in ctx->nhttp_conns */
	dev_t dev; /* the socket fd named when it was accepted */
	ino_t ino;
	int has_source;
	uint8_t source[FE_AUTH_SOURCE_LEN];
	struct event *deadline;
};

/* 1 when fd still names the socket hc was accepted on. */
static int
conn_alive(const struct fe_http_conn *hc)
{
	struct stat st;

	return fstat(hc->fd, &st) == 0 && S_ISSOCK(st.st_mode) &&
	       st.st_dev == hc->dev && st.st_ino == hc->ino;
}

static void
conn_forget(struct fe_http_conn *hc)
{
	if (!hc->open)
		return;
	hc->open = 0;
	hc->ctx->nhttp_conns--;
	evtimer_del(hc->deadline);
}

/* The open connection on fd, or NULL (forgetting one that is gone). */
static struct fe_http_conn *
conn_get(struct fe_ctx *ctx, int fd)
{
	struct fe_http_conn *hc;

	if (fd < 0 || (size_t)fd >= ctx->http_conns_cap ||
	    (hc = ctx->http_conns[fd]) == NULL || !hc->open)
		return NULL;
	if (!conn_alive(hc)) {
		conn_forget(hc);
		return NULL;
	}
	return hc;
}

static void
deadline_start(struct fe_http_conn *hc)
{
	struct timeval tv = {FE_HTTP_REQUEST_S, 0};

	(void)evtimer_add(hc->deadline, &tv);
}

static void
deadline_cb(evutil_socket_t unused, short what, void *arg)
{
	struct fe_http_conn *hc = arg;

	if (!hc->open)
		return;
	if (!conn_alive(hc)) {
		conn_forget(hc);
		return;
	}
	log_debug("http: no whole request within %ds", FE_HTTP_REQUEST_S);
	hc->ctx->metrics.http_request_timeouts++;
	conn_forget(hc);
	(void)shutdown(hc->fd, SHUT_RDWR);
}

/* The slot of fd, allocated. Returns NULL without memory. */
static struct fe_http_conn *
conn_slot(struct fe_ctx *ctx, int fd)
{
	struct fe_http_conn **tab, *hc;
	size_t cap;

	if ((size_t)fd >= ctx->http_conns_cap) {
		cap = ctx->http_conns_cap == 0 ? 64 : ctx->http_conns_cap;
		while (cap <= (size_t)fd)
			cap *= 2;
		if ((tab = reallocarray(ctx->http_conns, cap, sizeof(*tab))) ==
		    NULL)
			return NULL;
		memset(tab + ctx->http_conns_cap, 0,
		    (cap - ctx->http_conns_cap) * sizeof(*tab));
		ctx->http_conns = tab;
		ctx->http_conns_cap = cap;
	}
	if ((hc = ctx->http_conns[fd]) != NULL)
		return hc;
	if ((hc = calloc(1, sizeof(*hc))) == NULL)
		return NULL;
	if ((hc->deadline = evtimer_new(ctx->base, deadline_cb, hc)) == NULL) {
		free(hc);
		return NULL;
	}
	hc->ctx = ctx;
	hc->fd = fd;
	ctx->http_conns[fd] = hc;
	return hc;
}

/* Forgets every connection that is gone; returns how many are open. */
static size_t
conn_prune(struct fe_ctx *ctx)
{
	size_t i;

	for (i = 0; i < ctx->http_conns_cap; i++)
		(void)conn_get(ctx, (int)i);
	return ctx->nhttp_conns;
}

/* Applies the limits to one new connection; refused ones are shut down. */
static void
conn_check(struct fe_ctx *ctx, struct bufferevent *bev)
{
	struct fe_http_conn *hc, *other;
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	uint8_t source[FE_AUTH_SOURCE_LEN];
	struct stat st;
	int fd = (int)bufferevent_getfd(bev), has_source;
	size_t i, same = 0;

	if (fd < 0 || fstat(fd, &st) < 0)
		return; /* evhttp already gave up on it */
	memset(&ss, 0, sizeof(ss));
	has_source = getpeername(fd, (struct sockaddr *)&ss, &sslen) == 0 &&
		     fe_authfail_source(
			 (struct sockaddr *)&ss, (size_t)sslen, source) == 0;
	/* A descriptor of a connection evhttp closed since. */
	if ((hc = conn_get(ctx, fd)) != NULL)
		conn_forget(hc);
	if (ctx->nhttp_conns >= FE_MAX_CONNECTIONS &&
	    conn_prune(ctx) >= FE_MAX_CONNECTIONS) {
		log_debug(
		    "http: connection refused (%zu open)", ctx->nhttp_conns);
		ctx->metrics.http_refused[FE_REFUSED_MAX]++;
		(void)shutdown(fd, SHUT_RDWR);
		return;
	}
	for (i = 0; has_source && i < ctx->http_conns_cap; i++) {
		other = ctx->http_conns[i];
		if (other != NULL && other->open && other->has_source &&
		    memcmp(other->source, source, sizeof(source)) == 0 &&
		    conn_get(ctx, (int)i) != NULL)
			same++;
	}
	if (same >= FE_CONN_PER_ADDR) {
		log_debug(
		    "http: connection refused (%zu from one address)", same);
		ctx->metrics.http_refused[FE_REFUSED_PER_ADDR]++;
		(void)shutdown(fd, SHUT_RDWR);
		return;
	}
	if ((hc = conn_slot(ctx, fd)) == NULL) {
		log_warn("http: out of memory for a connection");
		(void)shutdown(fd, SHUT_RDWR);
		return;
	}
	hc->open = 1;
	hc->dev = st.st_dev;
	hc->ino = st.st_ino;
	hc->has_source = has_source;
	if (has_source)
		memcpy(hc->source, source, sizeof(source));
	ctx->nhttp_conns++;
	ctx->metrics.http_connections_total++;
	deadline_start(hc);
}

static void
check_cb(evutil_socket_t unused, short what, void *arg)
{
	struct fe_ctx *ctx = arg;
	struct bufferevent *bev;
	size_t i;

	for (i = 0; i < ctx->http_npending; i++) {
		bev = ctx->http_pending[i];
		conn_check(ctx, bev);
		bufferevent_decref(bev);
	}
	ctx->http_npending = 0;
}

int
fe_http_conn_init(struct fe_ctx *ctx)
{
	ctx->http_check_event = event_new(ctx->base, -1, 0, check_cb, ctx);
	return ctx->http_check_event == NULL ? -ENOMEM : 0;
}

int
fe_http_conn_accepted(struct fe_ctx *ctx, struct bufferevent *bev)
{
	struct bufferevent **p;
	size_t cap;

	if (ctx->http_npending == ctx->http_pending_cap) {
		cap =
		    ctx->http_pending_cap == 0 ? 16 : ctx->http_pending_cap * 2;
		if ((p = reallocarray(ctx->http_pending, cap, sizeof(*p))) ==
		    NULL)
			return -ENOMEM;
		ctx->http_pending = p;
		ctx->http_pending_cap = cap;
	}
	/* Held until check_cb, whatever evhttp does meanwhile. */
	bufferevent_incref(bev);
	ctx->http_pending[ctx->http_npending++] = bev;
	event_active(ctx->http_check_event, EV_TIMEOUT, 0);
	return 0;
}

static struct fe_http_conn *
conn_of(struct fe_ctx *ctx, struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct bufferevent *bev;

	if (evcon == NULL ||
	    (bev = evhttp_connection_get_bufferevent(evcon)) == NULL)
		return NULL;
	return conn_get(ctx, (int)bufferevent_getfd(bev));
}

void
fe_http_conn_request(struct fe_ctx *ctx, struct evhttp_request *req)
{
	struct fe_http_conn *hc = conn_of(ctx, req);

	if (hc != NULL)
		evtimer_del(hc->deadline);
}

void
fe_http_conn_replied(struct fe_ctx *ctx, struct evhttp_request *req)
{
	struct fe_http_conn *hc = conn_of(ctx, req);

	if (hc != NULL)
		deadline_start(hc);
}

size_t
fe_http_conn_count(struct fe_ctx *ctx)
{
	return conn_prune(ctx);
}

void
fe_http_conn_shutdown(struct fe_ctx *ctx)
{
	size_t i;

	for (i = 0; i < ctx->http_npending; i++)
		bufferevent_decref(ctx->http_pending[i]);
	free(ctx->http_pending);
	ctx->http_pending = NULL;
	ctx->http_npending = ctx->http_pending_cap = 0;
	for (i = 0; i < ctx->http_conns_cap; i++) {
		if (ctx->http_conns[i] == NULL)
			continue;
		event_free(ctx->http_conns[i]->deadline);
		free(ctx->http_conns[i]);
	}
	free(ctx->http_conns);
	ctx->http_conns = NULL;
	ctx->http_conns_cap = ctx->nhttp_conns = 0;
	if (ctx->http_check_event != NULL) {
		event_free(ctx->http_check_event);
		ctx->http_check_event = NULL;
	}
}
