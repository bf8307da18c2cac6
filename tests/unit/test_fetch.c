/*
 * test_fetch.c: unit tests of worker/fetch.c and worker/fetch_check.c,
 * the built-in http.fetch.
 *
 * Both run in palyra-worker and are compiled into this test directly.
 * The worker's HTTP engine (http.h) is replaced by a fake that records
 * each transfer asked for and lets a test play the server's part through
 * the transfer's callbacks, and the pinned host table by a fixed one; the
 * loop is a real libevent base. So the checks (arguments, URL, allow-list,
 * address classes, redirects, content types, caps, the result) are tested
 * as the worker runs them, with no network.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../worker/fetch.c"
#include "../../worker/fetch_check.c"

/* ---- Fakes of the worker around fetch.c. ---- */

#define FAKE_HEADERS_MAX 8

struct wrk_xfer {
	struct wrk_xfer_cbs cbs;
	void *arg;
	char *url;
	const char *method;
	char *headers[WRK_HTTP_HEADERS_MAX];
	size_t nheaders;
	uint64_t total_ms;
	const char *names[FAKE_HEADERS_MAX]; /* of the response */
	const char *values[FAKE_HEADERS_MAX];
	size_t nresponse;
	int cancelled;
	int head_done;
};

static struct {
	struct wrk_xfer *xfers[16];
	size_t nxfers;
	int fail_start;
	/* The last answer given to done. */
	int calls;
	char *result;
	int is_error;
} fake;

struct pin {
	const char *host;
	unsigned port;
	const char *addrs[2];
};

static const struct pin pins[] = {
    {"localhost", 8080, {"127.0.0.1", "::1"}},
    {"public.test", 80, {"93.184.216.34", NULL}},
    {"mixed.test", 443, {"93.184.216.34", "10.1.2.3"}},
    {"inside.test", 8080, {"10.9.9.9", NULL}},
};

size_t
wrk_http_pinned(
    const char *host, unsigned port, struct sockaddr_storage *addrs, size_t max)
{
	size_t i, n;

	for (i = 0; i < sizeof(pins) / sizeof(pins[0]); i++) {
		if (pins[i].port != port || strcasecmp(pins[i].host, host) != 0)
			continue;
		for (n = 0; n < 2 && n < max && pins[i].addrs[n] != NULL; n++)
			assert_int_equal(
			    netaddr_parse(pins[i].addrs[n], &addrs[n]), 0);
		return n;
	}
	return 0;
}

struct wrk_http *
wrk_net_http(struct wrk_ctx *ctx)
{
	static char engine;

	(void)ctx;
	return (struct wrk_http *)(void *)&engine;
}

struct wrk_xfer *
wrk_xfer_start(struct wrk_http *h, const struct wrk_xfer_req *req,
    const struct wrk_xfer_cbs *cbs, void *arg)
{
	struct wrk_xfer *x;
	size_t i;

	(void)h;
	if (fake.fail_start) {
		errno = ENOMEM;
		return NULL;
	}
	assert_true(fake.nxfers < 16);
	x = calloc(1, sizeof(*x));
	assert_non_null(x);
	x->cbs = *cbs;
	x->arg = arg;
	x->url = strdup(req->url);
	x->method = req->method;
	x->nheaders = req->nheaders;
	for (i = 0; i < req->nheaders; i++)
		x->headers[i] = strdup(req->headers[i]);
	x->total_ms = req->total_ms;
	fake.xfers[fake.nxfers++] = x;
	return x;
}

void
wrk_xfer_cancel(struct wrk_xfer *x)
{
	x->cancelled = 1;
}

const char *
wrk_xfer_header(struct wrk_xfer *x, const char *name)
{
	size_t i;

	for (i = 0; i < x->nresponse; i++)
		if (strcasecmp(x->names[i], name) == 0)
			return x->values[i];
	return NULL;
}

void
wrk_format_duration(char *buf, size_t size, uint64_t ms)
{
	if (ms % 1000 == 0)
		snprintf(buf, size, "%llu s", (unsigned long long)(ms / 1000));
	else
		snprintf(buf, size, "%llu ms", (unsigned long long)ms);
}

/* ---- A run to fetch for. ---- */

struct env {
	struct event_base *base;
	struct wrk_ctx ctx;
	struct wrk_run run;
	Palyra__Ipc__WorkerConfig config;
	Palyra__Ipc__FetchPolicy policy;
	Palyra__Ipc__FetchAllow allow[4];
	Palyra__Ipc__FetchAllow *allowp[4];
	char *types[4];
};

static struct env E;

static void
allow(const char *host, unsigned port, int allow_private)
{
	size_t i = E.policy.n_allow;
	Palyra__Ipc__FetchAllow init = PALYRA__IPC__FETCH_ALLOW__INIT;

	assert_true(i < 4);
	E.allow[i] = init;
	E.allow[i].host = (char *)host;
	E.allow[i].port = port;
	E.allow[i].allow_private = allow_private;
	E.allowp[i] = &E.allow[i];
	E.policy.allow = E.allowp;
	E.policy.n_allow = i + 1;
}

static int
setup(void **state)
{
	Palyra__Ipc__WorkerConfig wc = PALYRA__IPC__WORKER_CONFIG__INIT;
	Palyra__Ipc__FetchPolicy fp = PALYRA__IPC__FETCH_POLICY__INIT;

	(void)state;
	memset(&E, 0, sizeof(E));
	memset(&fake, 0, sizeof(fake));
	E.base = event_base_new();
	assert_non_null(E.base);
	E.config = wc;
	E.policy = fp;
	E.config.fetch = &E.policy;
	E.ctx.base = E.base;
	E.ctx.config = &E.config;
	E.run.ctx = &E.ctx;
	snprintf(E.run.run_id, sizeof(E.run.run_id), "%s",
	    "00000000000000000000000000000001");
	return 0;
}

static int
teardown(void **state)
{
	size_t i, j;

	(void)state;
	wrk_fetch_cancel(&E.run);
	for (i = 0; i < fake.nxfers; i++) {
		free(fake.xfers[i]->url);
		for (j = 0; j < fake.xfers[i]->nheaders; j++)
			free(fake.xfers[i]->headers[j]);
		free(fake.xfers[i]);
	}
	free(fake.result);
	event_base_free(E.base);
	return 0;
}

static void
done_cb(struct wrk_run *run, void *arg, char *result, int is_error)
{
	assert_ptr_equal(run, &E.run);
	assert_ptr_equal(arg, &E);
	assert_null(run->fetch);
	assert_non_null(result);
	assert_true(strlen(result) <= WRK_TOOL_RESULT_MAX);
	fake.calls++;
	free(fake.result);
	fake.result = result;
	fake.is_error = is_error;
}

/* Starts a fetch of args (a JSON text); done is never called from the
 * start itself. */
static void
start(const char *args)
{
	json_error_t jerr;
	json_t *a;

	a = json_loads(args, JSON_ALLOW_NUL, &jerr);
	assert_non_null(a);
	assert_int_equal(wrk_fetch_start(&E.run, a, done_cb, &E), 0);
	json_decref(a);
	assert_int_equal(fake.calls, 0);
}

/* Runs the loop until done was called (or a second passed). */
static void
settle(void)
{
	int i;

	for (i = 0; i < 1000 && fake.calls == 0; i++) {
		event_base_loop(E.base, EVLOOP_NONBLOCK);
		if (fake.calls == 0 && i > 10)
			event_base_loop(E.base, EVLOOP_ONCE);
	}
}

/* Runs the loop's ready events without waiting. */
static void
spin(void)
{
	event_base_loop(E.base, EVLOOP_NONBLOCK);
}

static void
expect_error(const char *args, const char *message)
{
	start(args);
	settle();
	assert_int_equal(fake.calls, 1);
	assert_int_equal(fake.is_error, 1);
	if (strstr(fake.result, message) == NULL)
		fail_msg(
		    "result \"%s\" does not say \"%s\"", fake.result, message);
	assert_int_equal(fake.nxfers, 0);
	fake.calls = 0;
}

/* The transfer under way (the last one started). */
static struct wrk_xfer *
xfer(void)
{
	assert_true(fake.nxfers > 0);
	return fake.xfers[fake.nxfers - 1];
}

static void
respond_head(
    struct wrk_xfer *x, long status, const char *name, const char *value)
{
	if (name != NULL) {
		x->names[x->nresponse] = name;
		x->values[x->nresponse++] = value;
	}
	x->head_done = 1;
	(void)x->cbs.on_head(x, status, x->arg);
}

static void
respond_done(struct wrk_xfer *x, enum wrk_xfer_status st, const char *msg)
{
	struct wrk_xfer_result r;

	memset(&r, 0, sizeof(r));
	r.status = st;
	r.message = msg;
	x->cbs.on_done(x, &r, x->arg);
}

static json_t *
result_json(void)
{
	json_error_t jerr;
	json_t *o;

	assert_int_equal(fake.is_error, 0);
	o = json_loads(fake.result, 0, &jerr);
	if (o == NULL)
		fail_msg("not JSON: %s", fake.result);
	return o;
}

/* ---- Arguments. ---- */

static void
test_bad_arguments(void **state)
{
	(void)state;
	allow("example.com", 0, 0);
	expect_error("{}", "\"url\" (a string) is required");
	expect_error("{\"url\":7}", "\"url\" (a string) is required");
	expect_error("{\"url\":\"http://example.com/\",\"method\":\"POST\"}",
	    "must be GET or HEAD");
	expect_error("{\"url\":\"http://example.com/\",\"body\":\"x\"}",
	    "unknown argument \"body\"");
	expect_error("{\"url\":\"http://example.com/\",\"headers\":[]}",
	    "\"headers\" must be an object");
	expect_error(
	    "{\"url\":\"http://example.com/\",\"headers\":{\"X-A\":1}}",
	    "must be a string");
	expect_error(
	    "{\"url\":\"http://example.com/\",\"headers\":{\"X A\":\"1\"}}",
	    "is not a token");
	expect_error("{\"url\":\"http://example.com/"
		     "\",\"headers\":{\"X-A\":\"a\\r\\nHost: evil\"}}",
	    "control characters");
	expect_error("{\"url\":\"http://example.com/"
		     "\",\"headers\":{\"X-A\":\"a\\u0000b\"}}",
	    "control characters");
}

static void
test_refused_headers(void **state)
{
	static const char *names[] = {"Host", "authorization", "COOKIE",
	    "Proxy-Authorization", "proxy-connection", "Connection",
	    "Keep-Alive", "TE", "Trailer", "Transfer-Encoding", "Upgrade",
	    "Content-Length", "Expect"};
	char args[256], msg[96];
	size_t i;

	(void)state;
	allow("example.com", 0, 0);
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(args, sizeof(args),
		    "{\"url\":\"http://example.com/"
		    "\",\"headers\":{\"%s\":\"x\"}}",
		    names[i]);
		snprintf(
		    msg, sizeof(msg), "header \"%s\" may not be set", names[i]);
		expect_error(args, msg);
	}
}

static void
test_too_many_headers(void **state)
{
	char args[2048];
	size_t i, n;

	(void)state;
	allow("127.0.0.1", 8080, 1);
	n = (size_t)snprintf(args, sizeof(args),
	    "{\"url\":\"http://127.0.0.1:8080/\",\"headers\":{");
	for (i = 0; i < WRK_FETCH_HEADERS_MAX + 1; i++)
		n += (size_t)snprintf(args + n, sizeof(args) - n,
		    "%s\"X-H%zu\":\"v\"", i > 0 ? "," : "", i);
	snprintf(args + n, sizeof(args) - n, "}}");
	expect_error(args, "at most 16 headers");

	/* Sixteen go through, as sent. */
	n = (size_t)snprintf(args, sizeof(args),
	    "{\"url\":\"http://127.0.0.1:8080/\",\"headers\":{");
	for (i = 0; i < WRK_FETCH_HEADERS_MAX; i++)
		n += (size_t)snprintf(args + n, sizeof(args) - n,
		    "%s\"X-H%zu\":\"v%zu\"", i > 0 ? "," : "", i, i);
	snprintf(args + n, sizeof(args) - n, "}}");
	start(args);
	assert_int_equal(fake.nxfers, 1);
	assert_int_equal(xfer()->nheaders, WRK_FETCH_HEADERS_MAX);
	assert_string_equal(xfer()->headers[3], "X-H3: v3");
}

/* ---- URLs and the allow-list. ---- */

static void
test_no_allow_list(void **state)
{
	(void)state;
	expect_error("{\"url\":\"http://example.com/\"}",
	    "http.fetch: no egress allow-list for this agent");
}

/* The agent's block replaces the tenant's, even an empty one. */
static void
test_agent_policy_wins(void **state)
{
	Palyra__Ipc__AgentConfig ac = PALYRA__IPC__AGENT_CONFIG__INIT;
	Palyra__Ipc__FetchPolicy empty = PALYRA__IPC__FETCH_POLICY__INIT;

	(void)state;
	allow("example.com", 0, 0);
	ac.has_fetch = 1;
	ac.fetch = &empty;
	E.run.agent_cfg = &ac;
	expect_error("{\"url\":\"http://example.com/\"}",
	    "no egress allow-list for this agent");
	ac.has_fetch = 0;
	expect_error("{\"url\":\"http://example.com/\"}",
	    "example.com:80 was not resolved at start");
	E.run.agent_cfg = NULL;
}

static void
test_bad_urls(void **state)
{
	char args[4096];

	(void)state;
	allow("example.com", 0, 0);
	expect_error("{\"url\":\"ftp://example.com/x\"}",
	    "http.fetch: refused: scheme \"ftp\" is not allowed");
	expect_error("{\"url\":\"file:///etc/passwd\"}", "refused: ");
	expect_error("{\"url\":\"gopher://example.com/\"}",
	    "is not allowed (only http and https)");
	expect_error("{\"url\":\"example.com/\"}", "not a valid URL");
	expect_error("{\"url\":\"http://example.com/\\u0007\"}",
	    "control characters in the URL");
	expect_error("{\"url\":\"http://user:pw@example.com/\"}",
	    "credentials in the URL are not allowed");
	expect_error("{\"url\":\"http://user@example.com/\"}",
	    "credentials in the URL are not allowed");
	memset(args, 0, sizeof(args));
	snprintf(args, sizeof(args), "{\"url\":\"http://example.com/");
	memset(args + strlen(args), 'a', 2100);
	strcat(args, "\"}");
	expect_error(args, "the URL is over 2048 bytes");
}

static void
test_not_allow_listed(void **state)
{
	(void)state;
	allow("example.com", 0, 0);
	allow("127.0.0.1", 8080, 1);
	expect_error("{\"url\":\"http://example.org/\"}",
	    "http.fetch: refused: example.org:80 is not on the egress "
	    "allow-list");
	/* An entry without port is 80 and 443 only. */
	expect_error("{\"url\":\"http://example.com:8080/\"}",
	    "example.com:8080 is not on the egress allow-list");
	expect_error("{\"url\":\"http://127.0.0.1:8081/\"}",
	    "127.0.0.1:8081 is not on the egress allow-list");
	expect_error("{\"url\":\"http://[::1]:8080/\"}",
	    "[::1]:8080 is not on the egress allow-list");
	/* A subdomain is another host. */
	expect_error("{\"url\":\"http://a.example.com/\"}",
	    "a.example.com:80 is not on the egress allow-list");
}

/* ---- Address classes. ---- */

static void
test_refused_addresses(void **state)
{
	(void)state;
	allow("127.0.0.1", 0, 0);
	allow("10.0.0.1", 0, 0);
	allow("169.254.169.254", 0, 0);
	allow("::1", 0, 0);
	expect_error("{\"url\":\"http://127.0.0.1/\"}",
	    "http.fetch: refused: 127.0.0.1 is a loopback address");
	expect_error("{\"url\":\"http://10.0.0.1/\"}",
	    "http.fetch: refused: 10.0.0.1 is a private address");
	expect_error("{\"url\":\"https://169.254.169.254/latest/\"}",
	    "169.254.169.254 is a cloud metadata address");
	expect_error(
	    "{\"url\":\"http://[::1]/\"}", "::1 is a loopback address");
	/* Other spellings of an allow-listed address are the address. */
	expect_error("{\"url\":\"http://[::ffff:127.0.0.1]/\"}",
	    "is a loopback address");
	expect_error("{\"url\":\"http://[0:0::1]/\"}", "is a loopback address");
}

static void
test_other_spellings(void **state)
{
	(void)state;
	allow("example.com", 0, 0);
	/* Not allow-listed, whatever curl makes of them. */
	expect_error("{\"url\":\"http://0x7f.1/\"}", "refused: ");
	expect_error("{\"url\":\"http://2130706433/\"}", "refused: ");
	expect_error("{\"url\":\"http://[::ffff:127.0.0.1]/\"}",
	    "is not on the egress allow-list");
	expect_error("{\"url\":\"http://[fe80::1%25eth0]/\"}", "refused: ");
}

static void
test_names_by_pins(void **state)
{
	(void)state;
	allow("localhost", 8080, 0);
	allow("public.test", 0, 0);
	allow("mixed.test", 0, 0);
	allow("nowhere.test", 0, 0);
	expect_error("{\"url\":\"http://localhost:8080/\"}",
	    "http.fetch: refused: localhost resolves to 127.0.0.1, a loopback "
	    "address");
	/* One bad address of several is enough. */
	expect_error("{\"url\":\"https://mixed.test/\"}",
	    "mixed.test resolves to 10.1.2.3, a private address");
	expect_error("{\"url\":\"http://nowhere.test/\"}",
	    "nowhere.test:80 was not resolved at start");
	/* A pinned public name goes through, host in lower case. */
	start("{\"url\":\"http://PUBLIC.test/a?b=c#frag\"}");
	assert_int_equal(fake.nxfers, 1);
	assert_string_equal(xfer()->url, "http://public.test/a?b=c");
	assert_string_equal(xfer()->method, "GET");
	/* Non-ASCII is sent percent-encoded, as browsers do. */
	respond_head(xfer(), 302, "Location", "/caf\xc3\xa9?q=\xe9");
	spin();
	assert_int_equal(fake.nxfers, 2);
	assert_string_equal(xfer()->url, "http://public.test/caf%C3%A9?q=%E9");
}

static void
test_private_allowed(void **state)
{
	(void)state;
	allow("localhost", 8080, 1);
	start("{\"url\":\"http://localhost:8080/x\",\"method\":\"HEAD\"}");
	assert_int_equal(fake.nxfers, 1);
	assert_string_equal(xfer()->url, "http://localhost:8080/x");
	assert_string_equal(xfer()->method, "HEAD");
	/* The whole fetch's time, 10 s by default, bounds the transfer. */
	assert_true(xfer()->total_ms > 9000 && xfer()->total_ms <= 10000);
	/* One fetch at a time per run. */
	json_t *a = json_pack("{s:s}", "url", "http://localhost:8080/");
	assert_int_equal(wrk_fetch_start(&E.run, a, done_cb, &E), -EBUSY);
	json_decref(a);
}

/* ---- Redirects. ---- */

static void
test_redirect_followed(void **state)
{
	json_t *o;

	(void)state;
	allow("127.0.0.1", 8080, 1);
	allow("public.test", 80, 0);
	start("{\"url\":\"http://127.0.0.1:8080/a/"
	      "b\",\"headers\":{\"Accept\":\"text/plain\"}}");
	respond_head(xfer(), 302, "Location", "../c?x=1");
	assert_true(xfer()->cancelled);
	spin();
	assert_int_equal(fake.nxfers, 2);
	assert_string_equal(xfer()->url, "http://127.0.0.1:8080/c?x=1");
	assert_string_equal(xfer()->headers[0], "Accept: text/plain");
	respond_head(xfer(), 301, "location", "http://public.test/final");
	spin();
	assert_int_equal(fake.nxfers, 3);
	assert_string_equal(xfer()->url, "http://public.test/final");
	respond_head(xfer(), 200, "Content-Type", "text/plain");
	assert_int_equal(
	    xfer()->cbs.on_body(xfer(), "hello", 5, xfer()->arg), 0);
	respond_done(xfer(), WRK_XFER_OK, "HTTP 200");
	settle();
	o = result_json();
	assert_string_equal(json_string_value(json_object_get(o, "url")),
	    "http://public.test/final");
	assert_int_equal(json_integer_value(json_object_get(o, "status")), 200);
	assert_string_equal(
	    json_string_value(json_object_get(o, "body")), "hello");
	json_decref(o);
}

static void
test_redirect_refused(void **state)
{
	size_t i;

	(void)state;
	allow("127.0.0.1", 8080, 1);
	allow("127.0.0.1", 8081, 0);
	start("{\"url\":\"http://127.0.0.1:8080/\"}");
	respond_head(xfer(), 302, "Location", "http://10.0.0.1/");
	settle();
	assert_int_equal(fake.is_error, 1);
	assert_string_equal(fake.result,
	    "http.fetch: redirect to http://10.0.0.1/ refused: "
	    "10.0.0.1:80 is not on the egress allow-list");
	assert_int_equal(fake.nxfers, 1);

	/* Allow-listed but without private: the address class says no. */
	fake.calls = 0;
	start("{\"url\":\"http://127.0.0.1:8080/\"}");
	respond_head(xfer(), 307, "Location", "http://127.0.0.1:8081/x");
	settle();
	assert_int_equal(fake.is_error, 1);
	assert_string_equal(fake.result,
	    "http.fetch: redirect to http://127.0.0.1:8081/x "
	    "refused: 127.0.0.1 is a loopback address");
	assert_int_equal(fake.nxfers, 2);

	fake.calls = 0;
	start("{\"url\":\"http://127.0.0.1:8080/\"}");
	respond_head(xfer(), 302, "Location",
	    "http://ex\xff"
	    "ample/\x01\xfe");
	settle();
	assert_int_equal(fake.is_error, 1);
	assert_non_null(strstr(fake.result, "redirect to http://ex?ample/??"));
	for (i = 0; fake.result[i] != '\0'; i++)
		assert_true((unsigned char)fake.result[i] < 0x80);

	fake.calls = 0;
	start("{\"url\":\"http://127.0.0.1:8080/\"}");
	respond_head(xfer(), 308, "Location", "file:///etc/passwd");
	settle();
	assert_non_null(
	    strstr(fake.result, "redirect to file:///etc/passwd refused: "
				"scheme \"file\" is not allowed"));
}

static void
test_redirect_private_classes(void **state)
{
	(void)state;
	allow("127.0.0.1", 8080, 1);
	allow("10.0.0.1", 0, 0);
	start("{\"url\":\"http://127.0.0.1:8080/\"}");
	respond_head(xfer(), 303, "Location", "http://10.0.0.1/");
	settle();
	assert_string_equal(fake.result,
	    "http.fetch: redirect to http://10.0.0.1/ refused: "
	    "10.0.0.1 is a private address");
}

static void
test_too_many_redirects(void **state)
{
	size_t i;

	(void)state;
	allow("127.0.0.1", 8080, 1);
	E.policy.max_redirects = 2;
	start("{\"url\":\"http://127.0.0.1:8080/0\"}");
	for (i = 0; i < 3; i++) {
		respond_head(xfer(), 302, "Location", "/again");
		spin();
	}
	settle();
	assert_int_equal(fake.nxfers, 3);
	assert_string_equal(fake.result, "http.fetch: more than 2 redirects");
}

/* max-redirects 0 given: no redirect is followed; 0 not given: 3. */
static void
test_no_redirects(void **state)
{
	size_t i;

	(void)state;
	allow("127.0.0.1", 8080, 1);
	E.policy.has_max_redirects = 1;
	start("{\"url\":\"http://127.0.0.1:8080/0\"}");
	respond_head(xfer(), 301, "Location", "/moved");
	settle();
	assert_int_equal(fake.nxfers, 1);
	assert_string_equal(fake.result,
	    "http.fetch: redirect to /moved not followed (max-redirects 0)");

	fake.calls = 0;
	E.policy.has_max_redirects = 0;
	start("{\"url\":\"http://127.0.0.1:8080/0\"}");
	for (i = 0; i < 4; i++) {
		respond_head(xfer(), 302, "Location", "/again");
		spin();
	}
	settle();
	assert_int_equal(fake.nxfers, 1 + 4);
	assert_string_equal(fake.result, "http.fetch: more than 3 redirects");
}

/* A 3xx without Location is an answer like any other. */
static void
test_redirect_without_location(void **state)
{
	json_t *o;

	(void)state;
	allow("127.0.0.1", 8080, 1);
	start("{\"url\":\"http://127.0.0.1:8080/\"}");
	respond_head(xfer(), 304, "Content-Type", "text/html");
	respond_done(xfer(), WRK_XFER_OK, "HTTP 304");
	settle();
	o = result_json();
	assert_int_equal(json_integer_value(json_object_get(o, "status")), 304);
	json_decref(o);
}

/* ---- Content types, caps, failures. ---- */

static void
test_content_types(void **state)
{
	char type[FETCH_TYPE_MAX];
	Palyra__Ipc__FetchPolicy p = PALYRA__IPC__FETCH_POLICY__INIT;
	char *list[] = {"application/xml", "image/*"};

	(void)state;
	wrk_fetch_media_type("  Text/HTML; charset=UTF-8", type, sizeof(type));
	assert_string_equal(type, "text/html");
	wrk_fetch_media_type("image/p\xffng\"x", type, sizeof(type));
	assert_string_equal(type, "image/p?ng?x");
	wrk_fetch_media_type(NULL, type, sizeof(type));
	assert_string_equal(type, "");
	assert_true(wrk_fetch_type_allowed(NULL, "text/plain"));
	assert_true(wrk_fetch_type_allowed(NULL, "text/html"));
	assert_true(wrk_fetch_type_allowed(NULL, "application/json"));
	assert_false(wrk_fetch_type_allowed(NULL, "application/jsonx"));
	assert_false(wrk_fetch_type_allowed(NULL, "image/png"));
	assert_false(wrk_fetch_type_allowed(NULL, "textual/plain"));
	assert_false(wrk_fetch_type_allowed(NULL, "text"));
	assert_false(wrk_fetch_type_allowed(NULL, "text/"));
	p.content_types = list;
	p.n_content_types = 2;
	assert_true(wrk_fetch_type_allowed(&p, "application/xml"));
	assert_true(wrk_fetch_type_allowed(&p, "image/png"));
	assert_false(wrk_fetch_type_allowed(&p, "text/plain"));
	list[0] = "*/*";
	assert_true(wrk_fetch_type_allowed(&p, "video/mp4"));
}

static void
test_content_type_refused(void **state)
{
	(void)state;
	allow("127.0.0.1", 8080, 1);
	start("{\"url\":\"http://127.0.0.1:8080/img\"}");
	respond_head(xfer(), 200, "Content-Type", "image/png");
	assert_true(xfer()->cancelled);
	settle();
	assert_int_equal(fake.is_error, 1);
	assert_string_equal(
	    fake.result, "http.fetch: content type image/png is not allowed");

	fake.calls = 0;
	start("{\"url\":\"http://127.0.0.1:8080/none\"}");
	respond_head(xfer(), 200, NULL, NULL);
	settle();
	assert_string_equal(fake.result,
	    "http.fetch: the response (HTTP 200) has no content type");

	/* Where no body can come, no type is needed. */
	fake.calls = 0;
	start("{\"url\":\"http://127.0.0.1:8080/none\"}");
	respond_head(xfer(), 204, NULL, NULL);
	assert_false(xfer()->cancelled);
	respond_done(xfer(), WRK_XFER_OK, "HTTP 204");
	settle();
	assert_int_equal(fake.is_error, 0);
	assert_non_null(strstr(fake.result, "\"content_type\":\"\""));
}

static void
test_size_cap(void **state)
{
	char chunk[600];
	json_t *o;
	const char *body;

	(void)state;
	allow("127.0.0.1", 8080, 1);
	E.policy.max_bytes = 1000;
	memset(chunk, 'z', sizeof(chunk));
	start("{\"url\":\"http://127.0.0.1:8080/big\"}");
	respond_head(xfer(), 200, "Content-Type", "text/plain");
	assert_int_equal(
	    xfer()->cbs.on_body(xfer(), chunk, sizeof(chunk), xfer()->arg), 0);
	(void)xfer()->cbs.on_body(xfer(), chunk, sizeof(chunk), xfer()->arg);
	assert_true(xfer()->cancelled);
	settle();
	o = result_json();
	assert_true(json_is_true(json_object_get(o, "truncated")));
	body = json_string_value(json_object_get(o, "body"));
	assert_int_equal(strlen(body), 1000);
	assert_string_equal(
	    json_string_value(json_object_get(o, "content_type")),
	    "text/plain");
	json_decref(o);
}

/* Even under a large max-size, the result fits WRK_TOOL_RESULT_MAX. */
static void
test_result_cap(void **state)
{
	static char chunk[WRK_TOOL_RESULT_MAX + 100];
	json_t *o;

	(void)state;
	allow("127.0.0.1", 8080, 1);
	/* Control characters: six bytes each once encoded. */
	memset(chunk, 0x01, sizeof(chunk));
	start("{\"url\":\"http://127.0.0.1:8080/big\"}");
	respond_head(xfer(), 200, "Content-Type", "text/plain");
	(void)xfer()->cbs.on_body(xfer(), chunk, sizeof(chunk), xfer()->arg);
	settle();
	assert_true(strlen(fake.result) <= WRK_TOOL_RESULT_MAX);
	o = result_json();
	assert_true(json_is_true(json_object_get(o, "truncated")));
	assert_true(json_string_length(json_object_get(o, "body")) > 10000);
	json_decref(o);
}

static void
test_utf8(void **state)
{
	size_t n;
	char *s;

	(void)state;
	s = wrk_fetch_utf8_clean("a\xffz\xc3\xa9", 5, 0, &n);
	assert_string_equal(s, "a\xef\xbf\xbdz\xc3\xa9");
	free(s);
	/* Overlong, surrogate, over U+10FFFF. */
	s = wrk_fetch_utf8_clean(
	    "\xc0\xaf\xed\xa0\x80\xf4\x90\x80\x80", 9, 0, &n);
	assert_int_equal(n, 9 * 3);
	free(s);
	/* A cut in the middle of a character drops its start... */
	s = wrk_fetch_utf8_clean("ab\xe2\x82", 4, 1, &n);
	assert_string_equal(s, "ab");
	free(s);
	/* ...but an uncut body says it was broken. */
	s = wrk_fetch_utf8_clean("ab\xe2\x82", 4, 0, &n);
	assert_string_equal(s, "ab\xef\xbf\xbd\xef\xbf\xbd");
	free(s);
	s = wrk_fetch_utf8_clean("\xf0\x9f\x98\x80", 4, 1, &n);
	assert_string_equal(s, "\xf0\x9f\x98\x80");
	free(s);
}

static void
test_result_shape(void **state)
{
	json_t *o;
	char *text;

	(void)state;
	text = wrk_fetch_result("http://x/", 404, "text/html", 0, "no\xff", 3);
	assert_non_null(text);
	o = json_loads(text, 0, NULL);
	assert_non_null(o);
	assert_int_equal(json_object_size(o), 5);
	assert_string_equal(
	    json_string_value(json_object_get(o, "url")), "http://x/");
	assert_int_equal(json_integer_value(json_object_get(o, "status")), 404);
	assert_string_equal(
	    json_string_value(json_object_get(o, "content_type")), "text/html");
	assert_true(json_is_false(json_object_get(o, "truncated")));
	assert_string_equal(
	    json_string_value(json_object_get(o, "body")), "no\xef\xbf\xbd");
	json_decref(o);
	free(text);
}

static void
test_failures(void **state)
{
	(void)state;
	allow("127.0.0.1", 8080, 1);
	start("{\"url\":\"https://127.0.0.1:8080/\"}");
	respond_done(xfer(), WRK_XFER_CONNECT,
	    "SSL certificate problem: self-signed certificate");
	settle();
	assert_string_equal(fake.result,
	    "http.fetch: cannot connect: SSL certificate problem: "
	    "self-signed certificate");

	fake.calls = 0;
	start("{\"url\":\"http://127.0.0.1:8080/\"}");
	respond_done(xfer(), WRK_XFER_NETWORK, "Recv failure");
	settle();
	assert_string_equal(
	    fake.result, "http.fetch: the connection failed: Recv failure");

	fake.calls = 0;
	start("{\"url\":\"http://127.0.0.1:8080/\"}");
	respond_done(xfer(), WRK_XFER_IDLE, "no data for 10 s");
	settle();
	assert_string_equal(fake.result, "http.fetch: timed out after 10 s");

	fake.calls = 0;
	fake.fail_start = 1;
	start("{\"url\":\"http://127.0.0.1:8080/\"}");
	settle();
	assert_string_equal(
	    fake.result, "http.fetch: the fetch could not start");
}

static void
test_timeout(void **state)
{
	(void)state;
	allow("127.0.0.1", 8080, 1);
	E.policy.timeout_ms = 50;
	start("{\"url\":\"http://127.0.0.1:8080/slow\"}");
	assert_true(xfer()->total_ms <= 50);
	settle();
	assert_int_equal(fake.calls, 1);
	assert_string_equal(fake.result, "http.fetch: timed out after 50 ms");
	assert_true(xfer()->cancelled);
}

static void
test_cancel(void **state)
{
	(void)state;
	allow("127.0.0.1", 8080, 1);
	E.policy.timeout_ms = 20;
	start("{\"url\":\"http://127.0.0.1:8080/\"}");
	wrk_fetch_cancel(&E.run);
	assert_null(E.run.fetch);
	assert_true(xfer()->cancelled);
	wrk_fetch_cancel(&E.run);
	/* Neither the timeout nor anything else answers afterwards. */
	event_base_loop(E.base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	assert_int_equal(fake.calls, 0);

	/* Cancelled while its answer waits for the loop. */
	start("{\"url\":\"http://127.0.0.1:8080/\"}");
	respond_done(xfer(), WRK_XFER_NETWORK, "x");
	wrk_fetch_cancel(&E.run);
	spin();
	assert_int_equal(fake.calls, 0);
}

/* done may start the next fetch. */
static void
again_cb(struct wrk_run *run, void *arg, char *result, int is_error)
{
	json_t *a = json_pack("{s:s}", "url", "http://127.0.0.1:8080/2");

	free(result);
	assert_int_equal(wrk_fetch_start(run, a, done_cb, &E), 0);
	json_decref(a);
}

static void
test_restart_from_done(void **state)
{
	json_t *a;

	(void)state;
	allow("127.0.0.1", 8080, 1);
	a = json_pack("{s:s}", "url", "http://127.0.0.1:8080/1");
	assert_int_equal(wrk_fetch_start(&E.run, a, again_cb, &E), 0);
	json_decref(a);
	respond_done(xfer(), WRK_XFER_NETWORK, "x");
	spin();
	assert_non_null(E.run.fetch);
	assert_int_equal(fake.nxfers, 2);
	assert_string_equal(xfer()->url, "http://127.0.0.1:8080/2");
}

static void
test_schema_text(void **state)
{
	json_t *s;

	(void)state;
	s = json_loads(wrk_fetch_schema, 0, NULL);
	assert_non_null(s);
	assert_string_equal(
	    json_string_value(json_object_get(s, "type")), "object");
	assert_non_null(
	    json_object_get(json_object_get(s, "properties"), "url"));
	json_decref(s);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_bad_arguments),
	    T(test_refused_headers),
	    T(test_too_many_headers),
	    T(test_no_allow_list),
	    T(test_agent_policy_wins),
	    T(test_bad_urls),
	    T(test_not_allow_listed),
	    T(test_refused_addresses),
	    T(test_other_spellings),
	    T(test_names_by_pins),
	    T(test_private_allowed),
	    T(test_redirect_followed),
	    T(test_redirect_refused),
	    T(test_redirect_private_classes),
	    T(test_too_many_redirects),
	    T(test_no_redirects),
	    T(test_redirect_without_location),
	    T(test_content_types),
	    T(test_content_type_refused),
	    T(test_size_cap),
	    T(test_result_cap),
	    T(test_utf8),
	    T(test_result_shape),
	    T(test_failures),
	    T(test_timeout),
	    T(test_cancel),
	    T(test_restart_from_done),
	    T(test_schema_text),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
