/*
 * metrics.c: the counters of palyra-front and GET /metrics on the HTTP
 * listener, in the Prometheus text format 0.0.4. The counters live in
 * ctx->metrics; every label set is bounded (methods by enum fe_method,
 * gRPC codes 0-16, fixed reasons and path groups, tenants by name), so
 * that no client can grow the page.
 *
 * A scrape also asks journald (IPC_JOURNAL_STATS_REQUEST: runs by state,
 * budget warnings and refusals, journal commits) and the supervisor
 * (IPC_PROCESS_LIST: restarts, live workers), and answers once both did,
 * or after FE_METRICS_TIMEOUT_MS with what arrived and
 * palyra_scrape_partial 1. At most FE_METRICS_SCRAPES_MAX scrapes wait at
 * once; more get 503.
 *
 * Process: palyra-front. Touches the context, the HTTP request it answers,
 * and the journald and supervisor channels (requests only).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

#include "front.h"
#include "log.h"

/* What journald's answer may hold: histogram bounds. */
#define SCRAPE_BOUNDS_MAX 32
#define SCRAPE_KIND_MAX 16 /* "journald", "front", "worker" */

/* One tenant's runs and budget events, from journald. */
struct scrape_runs {
	char tenant[NAME_MAX_LEN + 1];
	uint64_t live[4];
	uint64_t ended[4];
	uint64_t budget_warnings;
	uint64_t budget_refusals;
};

/* One child, from the supervisor. */
struct scrape_proc {
	char kind[SCRAPE_KIND_MAX];
	char tenant[NAME_MAX_LEN + 1];
	uint64_t restarts;
	int alive;
};

struct fe_scrape {
	LIST_ENTRY(fe_scrape) entry;
	struct fe_ctx *ctx;
	struct evhttp_request *req;
	struct evhttp_connection *evcon;
	struct event *timer;
	uint32_t journal_id; /* 0: journald not asked */
	uint32_t proc_id;    /* 0: the supervisor not asked */
	int journal_done;    /* its last page arrived */
	int procs_done;

	struct scrape_runs *runs;
	size_t nruns, runs_cap;
	double bounds[SCRAPE_BOUNDS_MAX];
	uint64_t buckets[SCRAPE_BOUNDS_MAX + 1];
	size_t nbounds;
	double commit_seconds;
	uint64_t commits, appends;

	struct scrape_proc *procs;
	size_t nprocs, procs_cap;
};

static const char *const live_names[4] = {
    "ACCEPTED",
    "IN_PROGRESS",
    "WAITING_APPROVAL",
    "WAITING_TOOL",
};

static const char *const ended_names[4] = {
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "INTERRUPTED",
};

/* Upper bounds of the request duration histogram, in seconds. */
static const double bucket_bounds[FE_METRICS_BUCKETS] = {
    0.001,
    0.005,
    0.025,
    0.1,
    0.5,
    2.5,
    10,
    60,
};

static const char *const goaway_names[FE_GOAWAY_REASONS] = {
    "idle",
    "preface_timeout",
    "rapid_reset",
    "flood",
    "protocol_error",
    "other",
};

static const char *const refused_names[FE_REFUSED_REASONS] = {
    "per_addr",
    "max",
};

static const char *const http_group_names[FE_HTTP_GROUPS] = {
    "healthz",
    "metrics",
    "admin",
    "console",
    "other",
};

static size_t
method_slot(enum fe_method method)
{
	/* Slot 0 is FE_METHOD_UNKNOWN, and every method past the table. */
	if ((int)method <= 0 || (size_t)method >= FE_METRICS_METHODS)
		return 0;
	return (size_t)method;
}

void
fe_metrics_grpc_done(struct fe_ctx *ctx, const struct fe_call *call)
{
	struct fe_metrics *m = &ctx->metrics;
	struct timespec now;
	size_t slot = method_slot(call->method), b;
	uint32_t code = call->status < FE_METRICS_CODES ? call->status
							: GRPC_STATUS_UNKNOWN;
	double seconds;

	if (slot != 0 && m->method_names[slot][0] == '\0' &&
	    strlen(call->path) < sizeof(m->method_names[slot]))
		memcpy(
		    m->method_names[slot], call->path, strlen(call->path) + 1);
	m->grpc_requests[slot][code]++;
	clock_gettime(CLOCK_MONOTONIC, &now);
	seconds = (double)(now.tv_sec - call->started.tv_sec) +
		  (double)(now.tv_nsec - call->started.tv_nsec) / 1e9;
	if (seconds < 0)
		seconds = 0;
	for (b = 0; b < FE_METRICS_BUCKETS; b++)
		if (seconds <= bucket_bounds[b])
			break;
	m->grpc_buckets[slot][b]++;
	m->grpc_seconds[slot] += seconds;
}

void
fe_metrics_goaway(struct fe_conn *conn, uint32_t error_code)
{
	int reason = conn->goaway_reason;

	if (conn->goaway_counted)
		return;
	conn->goaway_counted = 1;
	if (reason < 0 || reason >= FE_GOAWAY_REASONS) {
		if (error_code == NGHTTP2_ENHANCE_YOUR_CALM)
			reason = FE_GOAWAY_FLOOD;
		else if (error_code == NGHTTP2_NO_ERROR)
			reason = FE_GOAWAY_OTHER;
		else if (error_code == NGHTTP2_INTERNAL_ERROR)
			reason = FE_GOAWAY_OTHER;
		else
			reason = FE_GOAWAY_PROTOCOL_ERROR;
	}
	conn->ctx->metrics.goaway[reason]++;
}

static enum fe_http_group
http_group(const char *path)
{
	if (path == NULL)
		return FE_HTTP_GROUP_OTHER;
	if (strcmp(path, "/healthz") == 0)
		return FE_HTTP_GROUP_HEALTHZ;
	if (strcmp(path, "/metrics") == 0)
		return FE_HTTP_GROUP_METRICS;
	if (strncmp(path, "/admin/", 7) == 0)
		return FE_HTTP_GROUP_ADMIN;
	if (strncmp(path, "/console/", 9) == 0)
		return FE_HTTP_GROUP_CONSOLE;
	return FE_HTTP_GROUP_OTHER;
}

static void
http_complete_cb(struct evhttp_request *req, void *arg)
{
	struct fe_ctx *ctx = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	int code = evhttp_request_get_response_code(req);

	fe_http_conn_replied(ctx, req);
	if (code < 100 || code >= FE_METRICS_HTTP_CODES)
		code = 0;
	ctx->metrics.http_requests[http_group(
	    uri != NULL ? evhttp_uri_get_path(uri) : NULL)][code]++;
}

void
fe_metrics_http_count(struct fe_ctx *ctx, struct evhttp_request *req)
{
	fe_http_conn_request(ctx, req);
	evhttp_request_set_on_complete_cb(req, http_complete_cb, ctx);
}

static void
header(struct evbuffer *b, const char *name, const char *type, const char *help)
{
	evbuffer_add_printf(
	    b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static const char *
method_label(const struct fe_metrics *m, size_t slot)
{
	return slot != 0 && m->method_names[slot][0] != '\0'
		   ? m->method_names[slot]
		   : "unknown";
}

static void
grpc_lines(const struct fe_metrics *m, struct evbuffer *b)
{
	size_t slot, code, i;
	uint64_t count;

	header(b, "palyra_grpc_requests_total", "counter",
	    "gRPC calls ended, by method and status code.");
	for (slot = 0; slot < FE_METRICS_METHODS; slot++)
		for (code = 0; code < FE_METRICS_CODES; code++)
			if (m->grpc_requests[slot][code] != 0)
				evbuffer_add_printf(b,
				    "palyra_grpc_requests_total{method=\"%s\","
				    "code=\"%s\"} %llu\n",
				    method_label(m, slot),
				    grpc_status_name((int)code),
				    (unsigned long long)
					m->grpc_requests[slot][code]);
	header(b, "palyra_grpc_request_duration_seconds", "histogram",
	    "gRPC call duration from request headers to trailers.");
	for (slot = 0; slot < FE_METRICS_METHODS; slot++) {
		count = 0;
		for (i = 0; i <= FE_METRICS_BUCKETS; i++)
			count += m->grpc_buckets[slot][i];
		if (count == 0)
			continue;
		count = 0;
		for (i = 0; i < FE_METRICS_BUCKETS; i++) {
			count += m->grpc_buckets[slot][i];
			evbuffer_add_printf(b,
			    "palyra_grpc_request_duration_seconds_bucket{"
			    "method=\"%s\",le=\"%g\"} %llu\n",
			    method_label(m, slot), bucket_bounds[i],
			    (unsigned long long)count);
		}
		count += m->grpc_buckets[slot][FE_METRICS_BUCKETS];
		evbuffer_add_printf(b,
		    "palyra_grpc_request_duration_seconds_bucket{"
		    "method=\"%s\",le=\"+Inf\"} %llu\n"
		    "palyra_grpc_request_duration_seconds_sum{method=\"%s\"} "
		    "%.6f\n"
		    "palyra_grpc_request_duration_seconds_count{method=\"%s\"} "
		    "%llu\n",
		    method_label(m, slot), (unsigned long long)count,
		    method_label(m, slot), m->grpc_seconds[slot],
		    method_label(m, slot), (unsigned long long)count);
	}
}

static void
counter(struct evbuffer *b, const char *name, const char *help, uint64_t value)
{
	header(b, name, "counter", help);
	evbuffer_add_printf(b, "%s %llu\n", name, (unsigned long long)value);
}

static void
render(const struct fe_ctx *ctx, struct evbuffer *b)
{
	const struct fe_metrics *m = &ctx->metrics;
	size_t i, code;

	header(b, "palyra_front_connections", "gauge",
	    "Open client connections of the gRPC listener.");
	evbuffer_add_printf(
	    b, "palyra_front_connections{proto=\"h2\"} %zu\n", ctx->nconns);
	header(b, "palyra_http_connections", "gauge",
	    "Open client connections of the HTTP listener.");
	evbuffer_add_printf(
	    b, "palyra_http_connections %zu\n", ctx->nhttp_conns);
	counter(b, "palyra_http_connections_total",
	    "HTTP connections accepted.", m->http_connections_total);
	header(b, "palyra_http_connections_refused_total", "counter",
	    "HTTP connections closed at accept, by reason.");
	for (i = 0; i < FE_REFUSED_REASONS; i++)
		evbuffer_add_printf(b,
		    "palyra_http_connections_refused_total{reason=\"%s\"} "
		    "%llu\n",
		    refused_names[i], (unsigned long long)m->http_refused[i]);
	counter(b, "palyra_http_request_timeouts_total",
	    "HTTP connections closed for not sending a whole request in time.",
	    m->http_request_timeouts);
	counter(b, "palyra_front_connections_total",
	    "gRPC connections accepted.", m->connections_total);
	header(b, "palyra_front_connections_refused_total", "counter",
	    "gRPC connections closed at accept, by reason.");
	for (i = 0; i < FE_REFUSED_REASONS; i++)
		evbuffer_add_printf(b,
		    "palyra_front_connections_refused_total{reason=\"%s\"} "
		    "%llu\n",
		    refused_names[i], (unsigned long long)m->refused[i]);
	header(b, "palyra_h2_goaway_total", "counter",
	    "HTTP/2 connections ended with GOAWAY, by reason.");
	for (i = 0; i < FE_GOAWAY_REASONS; i++)
		evbuffer_add_printf(b,
		    "palyra_h2_goaway_total{reason=\"%s\"} %llu\n",
		    goaway_names[i], (unsigned long long)m->goaway[i]);
	counter(b, "palyra_h2_streams_refused_total",
	    "HTTP/2 streams reset for a header list over the limit.",
	    m->streams_refused_headers);
	grpc_lines(m, b);
	counter(b, "palyra_runs_started_total", "Runs started on a worker.",
	    m->runs_started);
	counter(b, "palyra_flow_pauses_total",
	    "Runs paused because their client did not read.", m->flow_pauses);
	counter(b, "palyra_flow_slow_followers_total",
	    "Reattached calls ended for falling too far behind their run.",
	    m->slow_followers);
	counter(b, "palyra_auth_failures_total",
	    "Tokens presented that did not authenticate.", m->auth_failures);
	counter(b, "palyra_auth_rate_limited_total",
	    "Authentication attempts refused by the per-address limit.",
	    m->auth_rate_limited);
	header(b, "palyra_http_requests_total", "counter",
	    "HTTP requests answered, by path group and status.");
	for (i = 0; i < FE_HTTP_GROUPS; i++)
		for (code = 0; code < FE_METRICS_HTTP_CODES; code++)
			if (m->http_requests[i][code] != 0)
				evbuffer_add_printf(b,
				    "palyra_http_requests_total{path_group="
				    "\"%s\",code=\"%zu\"} %llu\n",
				    http_group_names[i], code,
				    (unsigned long long)
					m->http_requests[i][code]);
}

/*
 * A label value as the exposition format wants it: backslash, double
 * quote and newline escaped. Tenant names are already [A-Za-z0-9._-].
 */
static void
label_value(struct evbuffer *b, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\')
			evbuffer_add(b, "\\\\", 2);
		else if (*s == '"')
			evbuffer_add(b, "\\\"", 2);
		else if (*s == '\n')
			evbuffer_add(b, "\\n", 2);
		else
			evbuffer_add(b, s, 1);
	}
}

/* Open gRPC calls by method, and console event streams: the front's own
 * state at the time of the scrape. */
static void
streams_lines(const struct fe_ctx *ctx, struct evbuffer *b)
{
	const struct fe_metrics *m = &ctx->metrics;
	const char *names[FE_METRICS_METHODS];
	size_t active[FE_METRICS_METHODS];
	const struct fe_conn *conn;
	const struct fe_call *call;
	size_t slot;

	memset(active, 0, sizeof(active));
	for (slot = 0; slot < FE_METRICS_METHODS; slot++)
		names[slot] = m->method_names[slot][0] != '\0'
				  ? m->method_names[slot]
				  : NULL;
	names[0] = "unknown";
	TAILQ_FOREACH(conn, &ctx->conns, entry)
	TAILQ_FOREACH(call, &conn->calls, conn_entry)
	{
		if (call->state == FE_CALL_CLOSED)
			continue;
		slot = method_slot(call->method);
		active[slot]++;
		/* A known method's :path is one of our routes. */
		if (names[slot] == NULL)
			names[slot] = call->path;
	}
	header(b, "palyra_grpc_streams_active", "gauge",
	    "gRPC calls open now, by method.");
	for (slot = 0; slot < FE_METRICS_METHODS; slot++) {
		if (names[slot] == NULL || (slot == 0 && active[0] == 0 &&
					       m->method_names[0][0] == '\0'))
			continue;
		evbuffer_add_printf(b, "palyra_grpc_streams_active{method=\"");
		label_value(b, names[slot]);
		evbuffer_add_printf(b, "\"} %zu\n", active[slot]);
	}
	header(b, "palyra_console_streams_active", "gauge",
	    "Console text/event-stream replies open now.");
	evbuffer_add_printf(
	    b, "palyra_console_streams_active %zu\n", fe_console_streams(ctx));
}

static void
journal_lines(const struct fe_scrape *sc, struct evbuffer *b)
{
	size_t i, j;
	uint64_t count;

	header(b, "palyra_runs", "gauge",
	    "Runs now in each non-terminal state, by tenant.");
	for (i = 0; i < sc->nruns; i++)
		for (j = 0; j < 4; j++) {
			evbuffer_add_printf(b, "palyra_runs{tenant=\"");
			label_value(b, sc->runs[i].tenant);
			evbuffer_add_printf(b, "\",state=\"%s\"} %llu\n",
			    live_names[j],
			    (unsigned long long)sc->runs[i].live[j]);
		}
	header(b, "palyra_runs_ended_total", "counter",
	    "Runs ended in each terminal state since journald started, by "
	    "tenant.");
	for (i = 0; i < sc->nruns; i++)
		for (j = 0; j < 4; j++) {
			evbuffer_add_printf(
			    b, "palyra_runs_ended_total{tenant=\"");
			label_value(b, sc->runs[i].tenant);
			evbuffer_add_printf(b, "\",state=\"%s\"} %llu\n",
			    ended_names[j],
			    (unsigned long long)sc->runs[i].ended[j]);
		}
	header(b, "palyra_budget_warnings_total", "counter",
	    "Soft budgets crossed by provider calls since journald started, "
	    "by tenant.");
	for (i = 0; i < sc->nruns; i++) {
		evbuffer_add_printf(b, "palyra_budget_warnings_total{tenant=\"");
		label_value(b, sc->runs[i].tenant);
		evbuffer_add_printf(b, "\"} %llu\n",
		    (unsigned long long)sc->runs[i].budget_warnings);
	}
	header(b, "palyra_budget_refusals_total", "counter",
	    "Provider calls refused by a hard budget since journald started, "
	    "by tenant.");
	for (i = 0; i < sc->nruns; i++) {
		evbuffer_add_printf(b, "palyra_budget_refusals_total{tenant=\"");
		label_value(b, sc->runs[i].tenant);
		evbuffer_add_printf(b, "\"} %llu\n",
		    (unsigned long long)sc->runs[i].budget_refusals);
	}
	header(b, "palyra_journal_commit_seconds", "histogram",
	    "Journal transactions, from BEGIN to durable COMMIT.");
	count = 0;
	for (i = 0; i < sc->nbounds; i++) {
		count += sc->buckets[i];
		evbuffer_add_printf(b,
		    "palyra_journal_commit_seconds_bucket{le=\"%g\"} %llu\n",
		    sc->bounds[i], (unsigned long long)count);
	}
	count += sc->buckets[sc->nbounds];
	evbuffer_add_printf(b,
	    "palyra_journal_commit_seconds_bucket{le=\"+Inf\"} %llu\n"
	    "palyra_journal_commit_seconds_sum %.6f\n"
	    "palyra_journal_commit_seconds_count %llu\n",
	    (unsigned long long)count, sc->commit_seconds,
	    (unsigned long long)count);
	counter(b, "palyra_journal_commits_total",
	    "Journal transactions committed.", sc->commits);
	counter(b, "palyra_journal_appends_total",
	    "Run events committed to the journal.", sc->appends);
}

static int
proc_cmp(const void *a, const void *b)
{
	const struct scrape_proc *x = a, *y = b;
	int c = strcmp(x->kind, y->kind);

	return c != 0 ? c : strcmp(x->tenant, y->tenant);
}

/*
 * Restarts by kind and tenant, and live workers. The processes are sorted
 * by (kind, tenant) so that each group is one run of the array; a worker
 * tenant is listed only while it has a live worker or a restart.
 */
static void
proc_lines(struct fe_scrape *sc, struct evbuffer *b)
{
	size_t i, j, alive, workers = 0;
	uint64_t restarts;
	int pass;

	qsort(sc->procs, sc->nprocs, sizeof(*sc->procs), proc_cmp);
	for (pass = 0; pass < 2; pass++) {
		if (pass == 0)
			header(b, "palyra_child_restarts_total", "counter",
			    "Restarts of palyrad's children, by kind and "
			    "tenant.");
		else
			header(b, "palyra_workers_by_tenant", "gauge",
			    "Worker processes running now, by tenant.");
		for (i = 0; i < sc->nprocs; i = j) {
			restarts = 0;
			alive = 0;
			for (j = i; j < sc->nprocs &&
				    proc_cmp(&sc->procs[i], &sc->procs[j]) == 0;
			     j++) {
				restarts += sc->procs[j].restarts;
				alive += sc->procs[j].alive != 0;
			}
			if (strcmp(sc->procs[i].kind, "worker") != 0) {
				if (pass == 1)
					continue;
			} else if (pass == 0 ? restarts == 0 && alive == 0
					     : alive == 0)
				continue;
			if (pass == 1)
				workers += alive;
			if (pass == 0) {
				evbuffer_add_printf(
				    b, "palyra_child_restarts_total{kind=\"");
				label_value(b, sc->procs[i].kind);
				evbuffer_add_printf(b, "\",tenant=\"");
				label_value(b, sc->procs[i].tenant);
				evbuffer_add_printf(b, "\"} %llu\n",
				    (unsigned long long)restarts);
			} else {
				evbuffer_add_printf(
				    b, "palyra_workers_by_tenant{tenant=\"");
				label_value(b, sc->procs[i].tenant);
				evbuffer_add_printf(b, "\"} %zu\n", alive);
			}
		}
	}
	header(b, "palyra_workers", "gauge", "Worker processes running now.");
	evbuffer_add_printf(b, "palyra_workers %zu\n", workers);
}

/* The whole page: the front's own figures, then those that answered. */
static void
render_scrape(
    const struct fe_ctx *ctx, struct fe_scrape *sc, struct evbuffer *b)
{
	render(ctx, b);
	streams_lines(ctx, b);
	if (sc->journal_done)
		journal_lines(sc, b);
	if (sc->procs_done)
		proc_lines(sc, b);
	header(b, "palyra_scrape_partial", "gauge",
	    "1 when journald or the supervisor did not answer this scrape.");
	evbuffer_add_printf(b, "palyra_scrape_partial %d\n",
	    !sc->journal_done || !sc->procs_done);
}

static void
scrape_free(struct fe_scrape *sc)
{
	LIST_REMOVE(sc, entry);
	sc->ctx->nscrapes--;
	if (sc->evcon != NULL)
		evhttp_connection_set_closecb(sc->evcon, NULL, NULL);
	if (sc->timer != NULL)
		event_free(sc->timer);
	free(sc->runs);
	free(sc->procs);
	free(sc);
}

static void
scrape_finish(struct fe_scrape *sc)
{
	struct evhttp_request *req = sc->req;
	struct evbuffer *body;

	if ((body = evbuffer_new()) == NULL) {
		scrape_free(sc);
		fe_http_reply_error(req, 503, "unavailable", "out of memory");
		return;
	}
	(void)fe_http_conn_count(sc->ctx); /* forgets those closed */
	render_scrape(sc->ctx, sc, body);
	scrape_free(sc);
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Cache-Control", "no-store");
	evhttp_send_reply(req, 200, "OK", body);
	evbuffer_free(body);
}

static void
scrape_maybe_finish(struct fe_scrape *sc)
{
	if ((sc->journal_id == 0 || sc->journal_done) &&
	    (sc->proc_id == 0 || sc->procs_done))
		scrape_finish(sc);
}

static void
scrape_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct fe_scrape *sc = arg;

	log_warn("/metrics: %s%s%s did not answer in %d ms",
	    sc->journal_id != 0 && !sc->journal_done ? "journald" : "",
	    sc->journal_id != 0 && !sc->journal_done && sc->proc_id != 0 &&
		    !sc->procs_done
		? " and "
		: "",
	    sc->proc_id != 0 && !sc->procs_done ? "the supervisor" : "",
	    FE_METRICS_TIMEOUT_MS);
	/* What did not answer is left out; its late pages find nothing. */
	if (!sc->journal_done) {
		sc->nruns = 0;
		sc->journal_id = 0;
	}
	if (!sc->procs_done) {
		sc->nprocs = 0;
		sc->proc_id = 0;
	}
	scrape_finish(sc);
}

static void
scrape_conn_closed(struct evhttp_connection *evcon, void *arg)
{
	struct fe_scrape *sc = arg;

	/* The client left first; a late answer finds no scrape. */
	sc->evcon = NULL;
	scrape_free(sc);
}

/* Asks journald; returns the request id, or 0 when it cannot be asked. */
static uint32_t
ask_journald(struct fe_ctx *ctx)
{
	static uint32_t next_id;
	Palyra__Ipc__JournalStatsRequest r =
	    PALYRA__IPC__JOURNAL_STATS_REQUEST__INIT;

	if (ctx->journald == NULL)
		return 0;
	if (++next_id == 0)
		next_id = 1;
	if (ipc_chan_send(ctx->journald, IPC_JOURNAL_STATS_REQUEST, next_id,
		&r.base, NULL, 0) < 0)
		return 0;
	return next_id;
}

/* Asks the supervisor; the id is processes.c's sequence, so that the
 * pages of the two never mix. */
static uint32_t
ask_supervisor(struct fe_ctx *ctx)
{
	Palyra__Ipc__ProcessListRequest r =
	    PALYRA__IPC__PROCESS_LIST_REQUEST__INIT;

	if (ctx->parent == NULL || ctx->stopping)
		return 0;
	if (++ctx->next_proc_req_id == 0)
		ctx->next_proc_req_id = 1;
	if (ipc_chan_send(ctx->parent, IPC_PROCESS_LIST_REQUEST,
		ctx->next_proc_req_id, &r.base, NULL, 0) < 0)
		return 0;
	return ctx->next_proc_req_id;
}

void
fe_metrics_http(struct fe_ctx *ctx, struct evhttp_request *req)
{
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	struct timeval tv = {FE_METRICS_TIMEOUT_MS / 1000,
	    (FE_METRICS_TIMEOUT_MS % 1000) * 1000};
	struct fe_scrape *sc;

	if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Allow", "GET, HEAD");
		fe_http_reply_error(
		    req, 405, "method_not_allowed", "method not allowed");
		return;
	}
	if (ctx->nscrapes >= FE_METRICS_SCRAPES_MAX) {
		fe_http_reply_error(
		    req, 503, "unavailable", "too many scrapes in progress");
		return;
	}
	if ((sc = calloc(1, sizeof(*sc))) == NULL ||
	    (sc->timer = evtimer_new(ctx->base, scrape_timeout, sc)) == NULL) {
		free(sc);
		fe_http_reply_error(req, 503, "unavailable", "out of memory");
		return;
	}
	sc->ctx = ctx;
	sc->req = req;
	LIST_INSERT_HEAD(&ctx->scrapes, sc, entry);
	ctx->nscrapes++;
	sc->journal_id = ask_journald(ctx);
	sc->proc_id = ask_supervisor(ctx);
	if ((sc->journal_id == 0 && sc->proc_id == 0) ||
	    evtimer_add(sc->timer, &tv) < 0) {
		sc->journal_id = sc->proc_id = 0;
		scrape_finish(sc);
		return;
	}
	sc->evcon = evhttp_request_get_connection(req);
	if (sc->evcon != NULL)
		evhttp_connection_set_closecb(
		    sc->evcon, scrape_conn_closed, sc);
}

/* Takes one JournalStats page into sc. Returns 0, or -EPROTO for a page
 * journald should never send, -ENOMEM. */
static int
journal_page(struct fe_scrape *sc, const Palyra__Ipc__JournalStats *page)
{
	struct scrape_runs *n;
	size_t i, j, cap;

	if (page->n_commit_bounds > SCRAPE_BOUNDS_MAX ||
	    page->n_commit_buckets != page->n_commit_bounds + 1)
		return -EPROTO;
	for (i = 0; i < page->n_commit_bounds; i++)
		if (!isfinite(page->commit_bounds[i]) ||
		    (i > 0 &&
			page->commit_bounds[i] <= page->commit_bounds[i - 1]))
			return -EPROTO;
	if (page->n_tenants > CFG_MAX_TENANTS - sc->nruns)
		return -EPROTO;
	for (i = 0; i < page->n_tenants; i++) {
		const Palyra__Ipc__JournalTenantStats *ts = page->tenants[i];

		if (ts->n_runs != 4 || ts->n_ended != 4 ||
		    strlen(ts->tenant) > NAME_MAX_LEN)
			return -EPROTO;
		if (sc->nruns == sc->runs_cap) {
			cap = sc->runs_cap ? sc->runs_cap * 2 : 16;
			if ((n = reallocarray(sc->runs, cap, sizeof(*n))) ==
			    NULL)
				return -ENOMEM;
			sc->runs = n;
			sc->runs_cap = cap;
		}
		n = &sc->runs[sc->nruns++];
		snprintf(n->tenant, sizeof(n->tenant), "%s", ts->tenant);
		for (j = 0; j < 4; j++) {
			n->live[j] = ts->runs[j];
			n->ended[j] = ts->ended[j];
		}
		n->budget_warnings = ts->budget_warnings;
		n->budget_refusals = ts->budget_refusals;
	}
	sc->nbounds = page->n_commit_bounds;
	memcpy(sc->bounds, page->commit_bounds,
	    sc->nbounds * sizeof(sc->bounds[0]));
	memcpy(sc->buckets, page->commit_buckets,
	    (sc->nbounds + 1) * sizeof(sc->buckets[0]));
	sc->commit_seconds = page->commit_seconds;
	sc->commits = page->commits;
	sc->appends = page->appends;
	return 0;
}

int
fe_metrics_journal_reply(struct fe_ctx *ctx, const struct ipc_msg *m)
{
	const Palyra__Ipc__JournalStats *page = (const void *)m->msg;
	struct fe_scrape *sc;
	int rc;

	if (m->hdr.type != IPC_JOURNAL_STATS)
		return 0;
	LIST_FOREACH(sc, &ctx->scrapes, entry)
	if (sc->journal_id != 0 && sc->journal_id == m->hdr.request_id)
		break;
	if (sc == NULL)
		return 1;
	if ((rc = journal_page(sc, page)) < 0) {
		log_warn("/metrics: journald's stats page: %s", strerror(-rc));
		/* Left out: the scrape answers without it. */
		sc->nruns = 0;
		sc->journal_id = 0;
		scrape_maybe_finish(sc);
		return 1;
	}
	if (!page->more) {
		sc->journal_done = 1;
		scrape_maybe_finish(sc);
	}
	return 1;
}

int
fe_metrics_process_page(struct fe_ctx *ctx, uint32_t request_id,
    const Palyra__Ipc__ProcessList *page)
{
	struct fe_scrape *sc;
	struct scrape_proc *n;
	size_t i, cap;

	LIST_FOREACH(sc, &ctx->scrapes, entry)
	if (sc->proc_id != 0 && sc->proc_id == request_id)
		break;
	if (sc == NULL)
		return 0;
	if (page->n_processes > FE_PROCESSES_MAX - sc->nprocs) {
		log_warn("/metrics: process list longer than %d entries",
		    FE_PROCESSES_MAX);
		goto fail;
	}
	for (i = 0; i < page->n_processes; i++) {
		const Palyra__Ipc__ProcessInfo *p = page->processes[i];

		if (sc->nprocs == sc->procs_cap) {
			cap = sc->procs_cap ? sc->procs_cap * 2 : 16;
			if ((n = reallocarray(sc->procs, cap, sizeof(*n))) ==
			    NULL)
				goto fail;
			sc->procs = n;
			sc->procs_cap = cap;
		}
		n = &sc->procs[sc->nprocs++];
		/* Bounded copies: a kind or tenant cut short stays a label
		 * of its own, escaped at render time. */
		snprintf(n->kind, sizeof(n->kind), "%s", p->kind);
		snprintf(n->tenant, sizeof(n->tenant), "%s", p->tenant);
		n->restarts = p->restarts;
		n->alive = p->pid != 0;
	}
	if (!page->more) {
		sc->procs_done = 1;
		scrape_maybe_finish(sc);
	}
	return 1;
fail:
	sc->nprocs = 0;
	sc->proc_id = 0;
	scrape_maybe_finish(sc);
	return 1;
}

void
fe_metrics_shutdown(struct fe_ctx *ctx)
{
	struct fe_scrape *sc;

	while ((sc = LIST_FIRST(&ctx->scrapes)) != NULL)
		scrape_free(sc);
}
