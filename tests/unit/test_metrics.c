/*
 * test_metrics.c: the counters of front/metrics.c and their Prometheus
 * text: bounded method labels, cumulative histogram buckets, GOAWAY
 * reasons counted once per connection.
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
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
