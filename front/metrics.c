/*
 * metrics.c: the counters of palyra-front and GET /metrics on the HTTP
 * listener, in the Prometheus text format 0.0.4. The counters live in
 * ctx->metrics; every label set is bounded (methods by enum fe_method,
 * gRPC codes 0-16, fixed reasons and path groups), so that no client can
 * grow the page.
 *
 * Process: palyra-front. Touches only the context and the HTTP request it
 * answers; no IPC.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "front.h"

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
	uint32_t code =
	    call->status < FE_METRICS_CODES ? call->status : GRPC_STATUS_UNKNOWN;
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

void
fe_metrics_http(struct fe_ctx *ctx, struct evhttp_request *req)
{
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	struct evbuffer *body;

	if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Allow", "GET, HEAD");
		fe_http_reply_error(
		    req, 405, "method_not_allowed", "method not allowed");
		return;
	}
	if ((body = evbuffer_new()) == NULL) {
		evhttp_send_error(req, 500, NULL);
		return;
	}
	(void)fe_http_conn_count(ctx); /* forgets those closed */
	render(ctx, body);
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Cache-Control", "no-store");
	evhttp_send_reply(req, 200, "OK", body);
	evbuffer_free(body);
}
