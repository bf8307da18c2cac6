/*
 * test_metrics.c: the counters of front/metrics.c and their Prometheus
 * text: bounded method labels, cumulative histogram buckets, GOAWAY
 * reasons counted once per connection; the parts a scrape gathers from
 * journald and the supervisor (runs by state, commit histogram, restarts,
 * workers) and the escaping of their label values.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../front/metrics.c"

/* httpconn.c's connection table; not reached here. */
void
fe_http_conn_request(struct fe_ctx *ctx, struct evhttp_request *req)
{
	fail();
}

void
fe_http_conn_replied(struct fe_ctx *ctx, struct evhttp_request *req)
{
	fail();
}

size_t
fe_http_conn_count(struct fe_ctx *ctx)
{
	fail();
	return 0;
}

/* metrics.c answers a POST with http.c's JSON error; not reached here. */
void
fe_http_reply_error(struct evhttp_request *req, int status, const char *code,
    const char *message)
{
	fail();
}

/* console_sse.c's stream count; no console here. */
size_t
fe_console_streams(const struct fe_ctx *ctx)
{
	return 0;
}

static char *
text_of(struct evbuffer *b)
{
	size_t len = evbuffer_get_length(b);
	char *text = calloc(1, len + 1);

	assert_non_null(text);
	evbuffer_remove(b, text, len);
	evbuffer_free(b);
	return text;
}

static char *
rendered(const struct fe_ctx *ctx)
{
	struct evbuffer *b = evbuffer_new();
	size_t len;
	char *text;

	assert_non_null(b);
	render(ctx, b);
	len = evbuffer_get_length(b);
	text = calloc(1, len + 1);
	assert_non_null(text);
	evbuffer_remove(b, text, len);
	evbuffer_free(b);
	return text;
}

static void
ended_call(struct fe_ctx *ctx, enum fe_method method, const char *path,
    uint32_t status, double seconds_ago)
{
	struct fe_call call;
	int64_t ns;

	memset(&call, 0, sizeof(call));
	call.method = method;
	snprintf(call.path, sizeof(call.path), "%s", path);
	call.status = status;
	clock_gettime(CLOCK_MONOTONIC, &call.started);
	ns = (int64_t)call.started.tv_sec * 1000000000 + call.started.tv_nsec -
	    (int64_t)(seconds_ago * 1e9);
	call.started.tv_sec = (time_t)(ns / 1000000000);
	call.started.tv_nsec = (long)(ns % 1000000000);
	fe_metrics_grpc_done(ctx, &call);
}

static void
test_histogram_is_cumulative(void **state)
{
	struct fe_ctx *ctx = calloc(1, sizeof(*ctx));
	const char *m = "/palyra.v1.GatewayService/GetHealth";
	char *text;

	assert_non_null(ctx);
	ended_call(ctx, FE_METHOD_GET_HEALTH, m, GRPC_STATUS_OK, 0.0);
	ended_call(ctx, FE_METHOD_GET_HEALTH, m, GRPC_STATUS_OK, 0.05);
	ended_call(ctx, FE_METHOD_GET_HEALTH, m, GRPC_STATUS_UNAVAILABLE, 100);
	text = rendered(ctx);
	assert_non_null(strstr(text,
	    "palyra_grpc_requests_total{method=\"/palyra.v1.GatewayService/"
	    "GetHealth\",code=\"OK\"} 2\n"));
	assert_non_null(strstr(text,
	    "palyra_grpc_requests_total{method=\"/palyra.v1.GatewayService/"
	    "GetHealth\",code=\"UNAVAILABLE\"} 1\n"));
	assert_non_null(strstr(text,
	    "palyra_grpc_request_duration_seconds_bucket{method=\"/palyra.v1."
	    "GatewayService/GetHealth\",le=\"0.001\"} 1\n"));
	assert_non_null(strstr(text,
	    "palyra_grpc_request_duration_seconds_bucket{method=\"/palyra.v1."
	    "GatewayService/GetHealth\",le=\"0.1\"} 2\n"));
	assert_non_null(strstr(text,
	    "palyra_grpc_request_duration_seconds_bucket{method=\"/palyra.v1."
	    "GatewayService/GetHealth\",le=\"60\"} 2\n"));
	assert_non_null(strstr(text,
	    "palyra_grpc_request_duration_seconds_bucket{method=\"/palyra.v1."
	    "GatewayService/GetHealth\",le=\"+Inf\"} 3\n"));
	assert_non_null(strstr(text,
	    "palyra_grpc_request_duration_seconds_count{method=\"/palyra.v1."
	    "GatewayService/GetHealth\"} 3\n"));
	free(text);
	free(ctx);
}

static void
test_labels_are_bounded(void **state)
{
	struct fe_ctx *ctx = calloc(1, sizeof(*ctx));
	char *text;

	assert_non_null(ctx);
	ended_call(ctx, FE_METHOD_UNKNOWN, "/evil/one", GRPC_STATUS_UNIMPLEMENTED, 0);
	ended_call(ctx, (enum fe_method)(FE_METRICS_METHODS + 3), "/evil/two",
	    GRPC_STATUS_OK, 0);
	ended_call(ctx, FE_METHOD_GET_HEALTH, "/g", 99, 0);
	text = rendered(ctx);
	assert_null(strstr(text, "evil"));
	assert_non_null(strstr(text,
	    "palyra_grpc_requests_total{method=\"unknown\","
	    "code=\"UNIMPLEMENTED\"} 1\n"));
	assert_non_null(strstr(text,
	    "palyra_grpc_requests_total{method=\"unknown\",code=\"OK\"} 1\n"));
	/* A status past the table counts as UNKNOWN. */
	assert_non_null(strstr(text,
	    "palyra_grpc_requests_total{method=\"/g\",code=\"UNKNOWN\"} 1\n"));
	free(text);
	free(ctx);
}

/* A scrape waiting for both parts, as fe_metrics_http() leaves it. */
static struct fe_scrape *
scrape_new(struct fe_ctx *ctx)
{
	struct fe_scrape *sc = calloc(1, sizeof(*sc));

	assert_non_null(sc);
	sc->ctx = ctx;
	sc->journal_id = 7;
	sc->proc_id = 9;
	LIST_INSERT_HEAD(&ctx->scrapes, sc, entry);
	ctx->nscrapes++;
	return sc;
}

static char *
scrape_text(struct fe_ctx *ctx, struct fe_scrape *sc)
{
	struct evbuffer *b = evbuffer_new();

	assert_non_null(b);
	render_scrape(ctx, sc, b);
	return text_of(b);
}

static void
test_scrape_parts(void **state)
{
	struct fe_ctx *ctx = calloc(1, sizeof(*ctx));
	struct fe_scrape *sc;
	double bounds[2] = {0.001, 0.01};
	uint64_t buckets[3] = {2, 1, 1}, live[4] = {0, 1, 0, 0},
		 ended[4] = {3, 0, 1, 0};
	Palyra__Ipc__JournalTenantStats ts =
	    PALYRA__IPC__JOURNAL_TENANT_STATS__INIT, *tsp = &ts;
	Palyra__Ipc__JournalStats page = PALYRA__IPC__JOURNAL_STATS__INIT;
	Palyra__Ipc__ProcessInfo p[5], *pp[5];
	Palyra__Ipc__ProcessList list = PALYRA__IPC__PROCESS_LIST__INIT;
	struct ipc_msg m;
	char *text;
	size_t i;

	assert_non_null(ctx);
	sc = scrape_new(ctx);
	ts.tenant = "te\"st";
	ts.runs = live;
	ts.n_runs = 4;
	ts.ended = ended;
	ts.n_ended = 4;
	page.tenants = &tsp;
	page.n_tenants = 1;
	page.commit_bounds = bounds;
	page.n_commit_bounds = 2;
	page.commit_buckets = buckets;
	page.n_commit_buckets = 3;
	page.commit_seconds = 0.5;
	page.commits = 4;
	page.appends = 11;
	page.more = 1; /* the last page would answer the HTTP request */
	memset(&m, 0, sizeof(m));
	m.hdr.type = IPC_JOURNAL_STATS;
	m.hdr.request_id = 7;
	m.msg = &page.base;
	assert_int_equal(fe_metrics_journal_reply(ctx, &m), 1);
	/* Another request's page is not taken; nor another type. */
	m.hdr.request_id = 8;
	assert_int_equal(fe_metrics_journal_reply(ctx, &m), 1);
	m.hdr.type = IPC_JOURNAL_LIST_PAGE;
	assert_int_equal(fe_metrics_journal_reply(ctx, &m), 0);
	sc->journal_done = 1;

	for (i = 0; i < 5; i++) {
		palyra__ipc__process_info__init(&p[i]);
		p[i].kind = "worker";
		p[i].tenant = "a";
		pp[i] = &p[i];
	}
	p[0].kind = "journald";
	p[0].tenant = "";
	p[0].restarts = 2;
	p[0].pid = 10;
	p[1].pid = 11;
	p[1].restarts = 1;
	p[2].restarts = 3; /* worker 2 of "a", not running */
	p[3].tenant = "b";
	p[3].pid = 12;
	p[4].tenant = "quiet"; /* no restart, nothing running: not listed */
	list.processes = pp;
	list.n_processes = 5;
	list.more = 1;
	assert_int_equal(fe_metrics_process_page(ctx, 9, &list), 1);
	assert_int_equal(fe_metrics_process_page(ctx, 10, &list), 0);
	sc->procs_done = 1;

	text = scrape_text(ctx, sc);
	assert_non_null(strstr(text,
	    "palyra_runs{tenant=\"te\\\"st\",state=\"IN_PROGRESS\"} 1\n"));
	assert_non_null(strstr(text,
	    "palyra_runs_ended_total{tenant=\"te\\\"st\","
	    "state=\"COMPLETED\"} 3\n"));
	assert_non_null(strstr(text,
	    "palyra_journal_commit_seconds_bucket{le=\"0.001\"} 2\n"
	    "palyra_journal_commit_seconds_bucket{le=\"0.01\"} 3\n"
	    "palyra_journal_commit_seconds_bucket{le=\"+Inf\"} 4\n"
	    "palyra_journal_commit_seconds_sum 0.500000\n"
	    "palyra_journal_commit_seconds_count 4\n"));
	assert_non_null(strstr(text, "palyra_journal_appends_total 11\n"));
	assert_non_null(strstr(text,
	    "palyra_child_restarts_total{kind=\"journald\",tenant=\"\"} 2\n"));
	assert_non_null(strstr(text,
	    "palyra_child_restarts_total{kind=\"worker\",tenant=\"a\"} 4\n"));
	assert_non_null(strstr(text,
	    "palyra_child_restarts_total{kind=\"worker\",tenant=\"b\"} 0\n"));
	assert_null(strstr(text, "quiet"));
	assert_non_null(
	    strstr(text, "palyra_workers_by_tenant{tenant=\"a\"} 1\n"));
	assert_non_null(strstr(text, "palyra_workers 2\n"));
	assert_non_null(strstr(text, "palyra_scrape_partial 0\n"));
	free(text);

	/* A part that did not answer is left out, and said so. */
	sc->procs_done = 0;
	text = scrape_text(ctx, sc);
	assert_null(strstr(text, "palyra_workers"));
	assert_non_null(strstr(text, "palyra_runs{"));
	assert_non_null(strstr(text, "palyra_scrape_partial 1\n"));
	free(text);
	fe_metrics_shutdown(ctx);
	assert_int_equal(ctx->nscrapes, 0);
	free(ctx);
}

static void
test_scrape_bad_journal_page(void **state)
{
	struct fe_ctx *ctx = calloc(1, sizeof(*ctx));
	struct fe_scrape *sc;
	double bounds[2] = {0.01, 0.001}; /* not ascending */
	uint64_t buckets[3] = {0, 0, 0};
	Palyra__Ipc__JournalStats page = PALYRA__IPC__JOURNAL_STATS__INIT;
	struct ipc_msg m;
	char *text;

	assert_non_null(ctx);
	sc = scrape_new(ctx);
	page.commit_bounds = bounds;
	page.n_commit_bounds = 2;
	page.commit_buckets = buckets;
	page.n_commit_buckets = 3;
	memset(&m, 0, sizeof(m));
	m.hdr.type = IPC_JOURNAL_STATS;
	m.hdr.request_id = 7;
	m.msg = &page.base;
	/* Taken and dropped: the scrape still waits for the supervisor. */
	assert_int_equal(fe_metrics_journal_reply(ctx, &m), 1);
	assert_int_equal(sc->journal_id, 0);
	assert_int_equal(ctx->nscrapes, 1);
	text = scrape_text(ctx, sc);
	assert_null(strstr(text, "palyra_journal_commit_seconds"));
	assert_non_null(strstr(text, "palyra_scrape_partial 1\n"));
	free(text);
	fe_metrics_shutdown(ctx);
	free(ctx);
}

static void
test_goaway_reasons(void **state)
{
	struct fe_ctx *ctx = calloc(1, sizeof(*ctx));
	struct fe_conn a, b, c;
	char *text;

	assert_non_null(ctx);
	memset(&a, 0, sizeof(a));
	a.ctx = ctx;
	b = c = a;
	a.goaway_reason = FE_GOAWAY_RAPID_RESET;
	fe_metrics_goaway(&a, NGHTTP2_ENHANCE_YOUR_CALM);
	fe_metrics_goaway(&a, NGHTTP2_ENHANCE_YOUR_CALM); /* once */
	b.goaway_reason = -1;
	fe_metrics_goaway(&b, NGHTTP2_ENHANCE_YOUR_CALM);
	c.goaway_reason = -1;
	fe_metrics_goaway(&c, NGHTTP2_FRAME_SIZE_ERROR);
	text = rendered(ctx);
	assert_non_null(
	    strstr(text, "palyra_h2_goaway_total{reason=\"rapid_reset\"} 1\n"));
	assert_non_null(
	    strstr(text, "palyra_h2_goaway_total{reason=\"flood\"} 1\n"));
	assert_non_null(strstr(
	    text, "palyra_h2_goaway_total{reason=\"protocol_error\"} 1\n"));
	assert_non_null(
	    strstr(text, "palyra_h2_goaway_total{reason=\"idle\"} 0\n"));
	free(text);
	free(ctx);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_histogram_is_cumulative),
		cmocka_unit_test(test_labels_are_bounded),
		cmocka_unit_test(test_goaway_reasons),
		cmocka_unit_test(test_scrape_parts),
		cmocka_unit_test(test_scrape_bad_journal_page),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
