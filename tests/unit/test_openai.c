/*
 * test_openai.c: the OpenAI Chat Completions wire protocol of
 * palyra-worker (worker/openai.c, worker/proto.c) without a network:
 * recorded-shape event streams fed through the SSE parser in pieces of
 * every size (text split into many deltas, tool call deltas split across
 * chunks with arguments split mid-string, the usage chunk, [DONE],
 * keep-alives, error events, malformed JSON, truncation, the bounds),
 * the request bodies built from a conversation, and error bodies.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "../../worker/openai.c"
#include "../../worker/proto.c"

#define TEST_PROTO wrk_openai_proto
#include "proto_rec.h"

#define TEXT_STREAM \
	": keep-alive\n\n" \
	"data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":" \
	"{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n" \
	"data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n" \
	"data: {\"choices\":[{\"delta\":{\"content\":\"lo, \"}}]}\r\n\r\n" \
	"data: {\"choices\":[{\"delta\":{\"content\":\"w\\u00f6r\"}}]}\n\n" \
	": ping\n\n" \
	"data: {\"choices\":[{\"delta\":{\"content\":\"ld \\u2603\"}}]}\n\n" \
	"data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n" \
	"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":9," \
	"\"completion_tokens\":4,\"total_tokens\":13}}\n\n" \
	"data: [DONE]\n\n"

static void
test_text_deltas(void **state)
{
	struct rec	 r;
	size_t		 i;

	for (i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
		assert_int_equal(run_stream(TEXT_STREAM, chunks[i], &r), 0);
		assert_string_equal(r.text, "Hello, w\xc3\xb6rld \xe2\x98\x83");
		/* Each delta is relayed on its own, the empty one not. */
		assert_int_equal(r.ntext, 4);
		assert_int_equal(r.nusage, 1);
		assert_int_equal(r.in, 9);
		assert_int_equal(r.out, 4);
		assert_int_equal(r.done, 1);
		assert_string_equal(r.stop, "stop");
		assert_int_equal(r.nerror, 0);
		assert_int_equal(r.ncalls, 0);
		rec_free(&r);
	}
}

#define TOOL_STREAM \
	"data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":null," \
	"\"tool_calls\":[{\"index\":0,\"id\":\"call_a\",\"type\":\"function\"," \
	"\"function\":{\"name\":\"weather\",\"arguments\":\"\"}}]}}]}\n\n" \
	"data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0," \
	"\"function\":{\"arguments\":\"{\\\"city\\\": \\\"Par\"}}]}}]}\n\n" \
	"data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":1," \
	"\"id\":\"call_b\",\"function\":{\"name\":\"time.now\"," \
	"\"arguments\":\"\"}}]}}]}\n\n" \
	"data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0," \
	"\"function\":{\"arguments\":\"is \\\\\\\"Ville\\\\\\\"\\\"}\"}}]}}]}\n\n" \
	"data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n" \
	"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":50," \
	"\"completion_tokens\":20}}\n\n" \
	"data: [DONE]\n\n"

static void
test_tool_call_deltas(void **state)
{
	struct rec	 r;
	json_t		*args;
	size_t		 i;

	for (i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
		assert_int_equal(run_stream(TOOL_STREAM, chunks[i], &r), 0);
		assert_int_equal(r.nerror, 0);
		assert_int_equal(r.ncalls, 2);
		assert_string_equal(r.calls[0].id, "call_a");
		assert_string_equal(r.calls[0].name, "weather");
		assert_string_equal(r.calls[0].args,
		    "{\"city\": \"Paris \\\"Ville\\\"\"}");
		args = json_loads(r.calls[0].args, 0, NULL);
		assert_non_null(args);
		assert_string_equal(json_string_value(json_object_get(args,
		    "city")), "Paris \"Ville\"");
		json_decref(args);
		assert_string_equal(r.calls[1].id, "call_b");
		assert_string_equal(r.calls[1].name, "time.now");
		/* No arguments at all: an empty object. */
		assert_string_equal(r.calls[1].args, "{}");
		assert_string_equal(r.stop, "tool_calls");
		assert_int_equal(r.done, 1);
		assert_int_equal(r.in, 50);
		assert_int_equal(r.out, 20);
		assert_int_equal(r.text_len, 0);
		rec_free(&r);
	}
}

static void
test_end_of_stream(void **state)
{
	struct rec	 r;

	/* A compatible server that ends after the finish, without [DONE]. */
	assert_int_equal(run_stream("data: {\"choices\":[{\"delta\":"
	    "{\"content\":\"hi\"},\"finish_reason\":\"stop\"}]}\n\n", 4, &r),
	    0);
	assert_int_equal(r.done, 1);
	assert_string_equal(r.text, "hi");
	rec_free(&r);

	/* Cut short: a clear error, not a silent success. */
	assert_int_not_equal(run_stream("data: {\"choices\":[{\"delta\":"
	    "{\"content\":\"hi\"}}]}\n\n", 4, &r), 0);
	assert_int_equal(r.done, 0);
	assert_int_equal(r.nerror, 1);
	assert_string_equal(r.etype, "truncated");
	assert_non_null(strstr(r.emsg, "ended before"));
	rec_free(&r);

	/* Nothing after [DONE] counts. */
	assert_int_equal(run_stream("data: [DONE]\n\ndata: {\"choices\":[{"
	    "\"delta\":{\"content\":\"late\"}}]}\n\n", 3, &r), 0);
	assert_int_equal(r.done, 1);
	assert_int_equal(r.text_len, 0);
	rec_free(&r);
}

static void
test_error_event(void **state)
{
	struct rec	 r;

	assert_int_equal(run_stream("data: {\"choices\":[{\"delta\":"
	    "{\"content\":\"a\"}}]}\n\n"
	    "data: {\"error\":{\"message\":\"The server had an error\","
	    "\"type\":\"server_error\",\"code\":null}}\n\n"
	    "data: {\"choices\":[{\"delta\":{\"content\":\"b\"}}]}\n\n", 5, &r),
	    -EPROTO);
	assert_string_equal(r.text, "a");
	assert_int_equal(r.nerror, 1);
	assert_string_equal(r.etype, "server_error");
	assert_string_equal(r.emsg, "The server had an error");
	assert_int_equal(r.done, 0);
	rec_free(&r);
}

static void
test_malformed(void **state)
{
	static const char *const bad[] = {
		"data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}\n\n",
		"data: not json\n\n",
		"data: [1,2]\n\n",
		"data: {\"choices\":[\"x\"]}\n\n",
		"data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"id\":\"c\","
		    "\"function\":{\"name\":\"f\"}}]}}]}\n\n",
		"data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,"
		    "\"function\":{\"arguments\":\"{}\"}}]},"
		    "\"finish_reason\":\"tool_calls\"}]}\n\n",
	};
	static const char *const why[] = {
		"malformed JSON", "malformed JSON", "malformed JSON",
		"malformed choice", "without an index", "without a name",
	};
	struct rec	 r;
	size_t		 i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_not_equal(run_stream(bad[i], 7, &r), 0);
		assert_int_equal(r.nerror, 1);
		assert_string_equal(r.etype, "bad_response");
		if (strstr(r.emsg, why[i]) == NULL)
			fail_msg("case %zu: \"%s\" lacks \"%s\"", i, r.emsg,
			    why[i]);
		assert_int_equal(r.done, 0);
		rec_free(&r);
	}
}

static void
test_bounds(void **state)
{
	struct rec	 r;
	char		*wire, *p;
	size_t		 i, size = 64 * 1024;

	/* More tool calls in one reply than WRK_TOOL_CALLS_PER_REPLY. */
	p = wire = malloc(size);
	for (i = 0; i <= WRK_TOOL_CALLS_PER_REPLY; i++)
		p += sprintf(p, "data: {\"choices\":[{\"delta\":{\"tool_calls\":"
		    "[{\"index\":%zu,\"id\":\"c%zu\",\"function\":{\"name\":"
		    "\"f\",\"arguments\":\"{}\"}}]}}]}\n\n", i, i);
	assert_int_not_equal(run_stream(wire, 4096, &r), 0);
	assert_non_null(strstr(r.emsg, "tool calls in one reply"));
	rec_free(&r);

	/* Arguments over WRK_TOOL_ARGS_MAX, in pieces. */
	p = wire;
	p += sprintf(p, "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{"
	    "\"index\":0,\"id\":\"c\",\"function\":{\"name\":\"f\"}}]}}]}\n\n");
	for (i = 0; i < 9; i++) {
		p += sprintf(p, "data: {\"choices\":[{\"delta\":{\"tool_calls\":"
		    "[{\"index\":0,\"function\":{\"arguments\":\"");
		memset(p, 'x', 4000);
		p += 4000;
		p += sprintf(p, "\"}}]}}]}\n\n");
	}
	assert_true((size_t)(p - wire) < size);
	assert_int_not_equal(run_stream(wire, 4096, &r), 0);
	assert_non_null(strstr(r.emsg, "arguments over"));
	rec_free(&r);
	free(wire);
}

static json_t *
build(const struct wrk_proto_request *req)
{
	json_t	*root;
	char	*body;
	size_t	 len;

	assert_int_equal(wrk_openai_proto.request(req, &body, &len), 0);
	assert_int_equal(strlen(body), len);
	root = json_loads(body, 0, NULL);
	assert_non_null(root);
	free(body);
	return root;
}

static void
test_request(void **state)
{
	struct wrk_proto_request req;
	struct wrk_tool_call *calls;
	struct wrk_conv	 conv;
	json_t		*root, *msgs, *m, *tc;

	wrk_conv_init(&conv);
	assert_int_equal(wrk_conv_add_text(&conv, WRK_MSG_USER, "earlier", 7),
	    0);
	assert_int_equal(wrk_conv_add_text(&conv, WRK_MSG_ASSISTANT, "reply",
	    5), 0);
	assert_int_equal(wrk_conv_add_text(&conv, WRK_MSG_USER, "what time?",
	    10), 0);
	calls = calloc(1, sizeof(*calls));
	calls[0].id = strdup("call_1");
	calls[0].name = strdup("time.now");
	calls[0].arguments = strdup("{}");
	assert_int_equal(wrk_conv_add_calls(&conv, "", 0, calls, 1), 0);
	assert_int_equal(wrk_conv_add_result(&conv, "call_1", "time.now",
	    "12:00", 0), 0);

	memset(&req, 0, sizeof(req));
	req.model = "gpt-test";
	req.system = "Be brief.";
	req.conv = &conv;
	req.max_tokens = 256;
	req.temperature = 0.5;
	req.tools_json = "[{\"type\":\"function\",\"function\":{\"name\":"
	    "\"time.now\",\"description\":\"d\",\"parameters\":{\"type\":"
	    "\"object\"}}}]";
	req.openai_native = 1;
	root = build(&req);
	assert_string_equal(json_string_value(json_object_get(root, "model")),
	    "gpt-test");
	assert_true(json_is_true(json_object_get(root, "stream")));
	assert_true(json_is_true(json_object_get(json_object_get(root,
	    "stream_options"), "include_usage")));
	assert_int_equal(json_integer_value(json_object_get(root,
	    "max_completion_tokens")), 256);
	assert_null(json_object_get(root, "max_tokens"));
	assert_true(json_real_value(json_object_get(root, "temperature")) ==
	    0.5);
	assert_int_equal(json_array_size(json_object_get(root, "tools")), 1);
	/* Names as the API accepts them: [A-Za-z0-9_-]. */
	assert_string_equal(json_string_value(json_object_get(json_object_get(
	    json_array_get(json_object_get(root, "tools"), 0), "function"),
	    "name")), "time_now");
	msgs = json_object_get(root, "messages");
	assert_int_equal(json_array_size(msgs), 6);
	m = json_array_get(msgs, 0);
	assert_string_equal(json_string_value(json_object_get(m, "role")),
	    "system");
	assert_string_equal(json_string_value(json_object_get(m, "content")),
	    "Be brief.");
	m = json_array_get(msgs, 2);
	assert_string_equal(json_string_value(json_object_get(m, "role")),
	    "assistant");
	m = json_array_get(msgs, 4);
	assert_true(json_is_null(json_object_get(m, "content")));
	tc = json_array_get(json_object_get(m, "tool_calls"), 0);
	assert_string_equal(json_string_value(json_object_get(tc, "id")),
	    "call_1");
	assert_string_equal(json_string_value(json_object_get(tc, "type")),
	    "function");
	assert_string_equal(json_string_value(json_object_get(json_object_get(
	    tc, "function"), "arguments")), "{}");
	assert_string_equal(json_string_value(json_object_get(json_object_get(
	    tc, "function"), "name")), "time_now");
	m = json_array_get(msgs, 5);
	assert_string_equal(json_string_value(json_object_get(m, "role")),
	    "tool");
	assert_string_equal(json_string_value(json_object_get(m,
	    "tool_call_id")), "call_1");
	assert_string_equal(json_string_value(json_object_get(m, "content")),
	    "12:00");
	json_decref(root);

	/* openai-compatible: max_tokens; no tools, no system, no limit. */
	req.openai_native = 0;
	req.tools_json = NULL;
	req.system = "";
	root = build(&req);
	assert_int_equal(json_integer_value(json_object_get(root,
	    "max_tokens")), 256);
	assert_null(json_object_get(root, "tools"));
	assert_string_equal(json_string_value(json_object_get(json_array_get(
	    json_object_get(root, "messages"), 0), "role")), "user");
	json_decref(root);
	req.max_tokens = 0;
	req.temperature = -1;
	root = build(&req);
	assert_null(json_object_get(root, "max_tokens"));
	assert_null(json_object_get(root, "temperature"));
	json_decref(root);

	/* Declarations that are not a JSON array are refused. */
	req.tools_json = "{";
	{
		char	*body;
		size_t	 len;

		assert_int_equal(wrk_openai_proto.request(&req, &body, &len),
		    -EINVAL);
		assert_null(body);
	}
	wrk_conv_free(&conv);
}

/* A call of "time_now" is one of the declared "time.now". */
static void
test_tool_names(void **state)
{
	static const char decls[] = "[{\"type\":\"function\",\"function\":"
	    "{\"name\":\"memory.search\"}},{\"type\":\"function\","
	    "\"function\":{\"name\":\"time.now\"}}]";
	char		 out[128];
	struct sse_parser p;
	struct feeder	 f;
	struct rec	 r;
	const char	*wire = "data: {\"choices\":[{\"delta\":{\"tool_calls\":"
	    "[{\"index\":0,\"id\":\"c1\",\"function\":{\"name\":"
	    "\"time_now\",\"arguments\":\"{}\"}},{\"index\":1,\"id\":"
	    "\"c2\",\"function\":{\"name\":\"nope_x\"}}]},"
	    "\"finish_reason\":\"tool_calls\"}]}\n\ndata: [DONE]\n\n";

	wrk_tool_wire_name("time.now", out, sizeof(out));
	assert_string_equal(out, "time_now");
	wrk_tool_wire_name("a-b_C9 \xc3\xa9/", out, sizeof(out));
	assert_string_equal(out, "a-b_C9____");
	wrk_tool_wire_name("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxx", out, sizeof(out));
	assert_int_equal(strlen(out), WRK_TOOL_WIRE_NAME_MAX);
	wrk_tool_declared_name(decls, "memory_search", out, sizeof(out));
	assert_string_equal(out, "memory.search");
	wrk_tool_declared_name(decls, "other", out, sizeof(out));
	assert_string_equal(out, "other");
	wrk_tool_declared_name(NULL, "time_now", out, sizeof(out));
	assert_string_equal(out, "time_now");

	memset(&r, 0, sizeof(r));
	f.proto = &wrk_openai_proto;
	wrk_stream_init(&f.st, &rec_cbs, &r);
	f.st.tools_json = decls;
	assert_int_equal(sse_init(&p, WRK_SSE_EVENT_MAX, to_proto, &f), 0);
	assert_int_equal(sse_feed(&p, wire, strlen(wire)), 0);
	sse_fini(&p);
	wrk_stream_fini(&f.st);
	assert_int_equal(r.ncalls, 2);
	assert_string_equal(r.calls[0].name, "time.now");
	assert_string_equal(r.calls[1].name, "nope_x");
	rec_free(&r);
}

static void
test_error_body(void **state)
{
	char	 out[256];
	const char *b;

	b = "{\"error\":{\"message\":\"The model `x` does not exist\","
	    "\"type\":\"invalid_request_error\",\"param\":null,"
	    "\"code\":\"model_not_found\"}}";
	wrk_openai_proto.error_message(b, strlen(b), out, sizeof(out));
	assert_string_equal(out, "invalid_request_error (model_not_found): "
	    "The model `x` does not exist");
	b = "{\"error\":{\"message\":\"Rate limit\",\"type\":\"requests\","
	    "\"code\":429}}";
	wrk_openai_proto.error_message(b, strlen(b), out, sizeof(out));
	assert_string_equal(out, "requests (429): Rate limit");
	/* Ollama's shape, control bytes dropped. */
	b = "{\"error\":\"model \\\"llama\\\" not found\\n\"}";
	wrk_openai_proto.error_message(b, strlen(b), out, sizeof(out));
	assert_string_equal(out, "model \"llama\" not found ");
	b = "<html>502 Bad Gateway</html>";
	wrk_openai_proto.error_message(b, strlen(b), out, sizeof(out));
	assert_string_equal(out, "");
	wrk_openai_proto.error_message("", 0, out, sizeof(out));
	assert_string_equal(out, "");
	/* Bounded. */
	b = "{\"error\":{\"message\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}}";
	wrk_openai_proto.error_message(b, strlen(b), out, 10);
	assert_string_equal(out, "aaaaaaaaa");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_text_deltas),
		cmocka_unit_test(test_tool_call_deltas),
		cmocka_unit_test(test_end_of_stream),
		cmocka_unit_test(test_error_event),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_request),
		cmocka_unit_test(test_tool_names),
		cmocka_unit_test(test_error_body),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
