/*
 * test_anthropic.c: the Anthropic Messages wire protocol of palyra-worker
 * (worker/anthropic.c, worker/proto.c) without a network: recorded-shape
 * event streams fed through the SSE parser in pieces of every size (text
 * in many text_delta events, a tool_use block whose input_json_delta
 * pieces split the arguments mid-string, usage from message_start and
 * message_delta, ping, error events, malformed JSON, events out of order,
 * truncation), the request bodies built from a conversation (system,
 * max_tokens default, tools converted, tool results), and error bodies.
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

#include "../../worker/anthropic.c"
#include "../../worker/proto.c"

#define TEST_PROTO wrk_anthropic_proto
#include "proto_rec.h"

#define EV(name, json) "event: " name "\ndata: " json "\n\n"

#define START \
	EV("message_start", "{\"type\":\"message_start\",\"message\":{\"id\":" \
	    "\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":" \
	    "[],\"model\":\"claude-x\",\"stop_reason\":null,\"usage\":" \
	    "{\"input_tokens\":25,\"output_tokens\":1}}}")

#define TEXT_STREAM \
	START \
	EV("content_block_start", "{\"type\":\"content_block_start\"," \
	    "\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}") \
	EV("ping", "{\"type\": \"ping\"}") \
	EV("content_block_delta", "{\"type\":\"content_block_delta\"," \
	    "\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hel\"}}") \
	": keep-alive\n\n" \
	EV("content_block_delta", "{\"type\":\"content_block_delta\"," \
	    "\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"lo \"}}") \
	EV("content_block_delta", "{\"type\":\"content_block_delta\"," \
	    "\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":" \
	    "\"w\\u00f6rld\"}}") \
	EV("content_block_stop", "{\"type\":\"content_block_stop\",\"index\":0}") \
	EV("message_delta", "{\"type\":\"message_delta\",\"delta\":" \
	    "{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":" \
	    "{\"output_tokens\":15}}") \
	EV("message_stop", "{\"type\":\"message_stop\"}")

static void
test_text_deltas(void **state)
{
	struct rec	 r;
	size_t		 i;

	for (i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
		assert_int_equal(run_stream(TEXT_STREAM, chunks[i], &r), 0);
		assert_string_equal(r.text, "Hello w\xc3\xb6rld");
		assert_int_equal(r.ntext, 3);
		assert_int_equal(r.nusage, 1);
		assert_int_equal(r.in, 25);
		assert_int_equal(r.out, 15);
		assert_int_equal(r.done, 1);
		assert_string_equal(r.stop, "end_turn");
		assert_int_equal(r.nerror, 0);
		assert_int_equal(r.ncalls, 0);
		rec_free(&r);
	}
}

#define TOOL_STREAM \
	START \
	EV("content_block_start", "{\"type\":\"content_block_start\"," \
	    "\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}") \
	EV("content_block_delta", "{\"type\":\"content_block_delta\"," \
	    "\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":" \
	    "\"Let me look.\"}}") \
	EV("content_block_stop", "{\"type\":\"content_block_stop\",\"index\":0}") \
	EV("content_block_start", "{\"type\":\"content_block_start\"," \
	    "\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":" \
	    "\"toolu_01\",\"name\":\"weather\",\"input\":{}}}") \
	EV("content_block_delta", "{\"type\":\"content_block_delta\"," \
	    "\"index\":1,\"delta\":{\"type\":\"input_json_delta\"," \
	    "\"partial_json\":\"\"}}") \
	EV("content_block_delta", "{\"type\":\"content_block_delta\"," \
	    "\"index\":1,\"delta\":{\"type\":\"input_json_delta\"," \
	    "\"partial_json\":\"{\\\"city\\\": \\\"San Fr\"}}") \
	EV("content_block_delta", "{\"type\":\"content_block_delta\"," \
	    "\"index\":1,\"delta\":{\"type\":\"input_json_delta\"," \
	    "\"partial_json\":\"ancisco\\\", \\\"n\\\": 3}\"}}") \
	EV("content_block_stop", "{\"type\":\"content_block_stop\",\"index\":1}") \
	EV("content_block_start", "{\"type\":\"content_block_start\"," \
	    "\"index\":2,\"content_block\":{\"type\":\"tool_use\",\"id\":" \
	    "\"toolu_02\",\"name\":\"time.now\",\"input\":{}}}") \
	EV("content_block_stop", "{\"type\":\"content_block_stop\",\"index\":2}") \
	EV("message_delta", "{\"type\":\"message_delta\",\"delta\":" \
	    "{\"stop_reason\":\"tool_use\"},\"usage\":{\"output_tokens\":40}}") \
	EV("message_stop", "{\"type\":\"message_stop\"}")

static void
test_tool_use(void **state)
{
	struct rec	 r;
	size_t		 i;

	for (i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
		assert_int_equal(run_stream(TOOL_STREAM, chunks[i], &r), 0);
		assert_int_equal(r.nerror, 0);
		assert_string_equal(r.text, "Let me look.");
		assert_int_equal(r.ncalls, 2);
		assert_string_equal(r.calls[0].id, "toolu_01");
		assert_string_equal(r.calls[0].name, "weather");
		assert_string_equal(r.calls[0].args,
		    "{\"city\": \"San Francisco\", \"n\": 3}");
		assert_string_equal(r.calls[1].id, "toolu_02");
		assert_string_equal(r.calls[1].args, "{}");
		assert_string_equal(r.stop, "tool_use");
		assert_int_equal(r.in, 25);
		assert_int_equal(r.out, 40);
		assert_int_equal(r.done, 1);
		rec_free(&r);
	}
}

static void
test_error_event(void **state)
{
	struct rec	 r;

	assert_int_equal(run_stream(START
	    EV("content_block_start", "{\"type\":\"content_block_start\","
	    "\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}")
	    EV("content_block_delta", "{\"type\":\"content_block_delta\","
	    "\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"t0\"}}")
	    EV("error", "{\"type\":\"error\",\"error\":{\"type\":"
	    "\"overloaded_error\",\"message\":\"Overloaded\"}}"), 6, &r),
	    -EPROTO);
	assert_string_equal(r.text, "t0");
	assert_int_equal(r.nerror, 1);
	assert_string_equal(r.etype, "overloaded_error");
	assert_string_equal(r.emsg, "Overloaded");
	assert_int_equal(r.done, 0);
	rec_free(&r);
}

static void
test_malformed(void **state)
{
	static const char *const bad[] = {
		START EV("content_block_delta", "{\"type\":\"content_blo"),
		START "data: [\"type\"]\n\n",
		EV("content_block_start", "{\"type\":\"content_block_start\","
		    "\"index\":0,\"content_block\":{\"type\":\"text\"}}"),
		START EV("content_block_delta", "{\"type\":"
		    "\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
		    "\"text_delta\",\"text\":\"x\"}}"),
		START EV("content_block_start", "{\"type\":"
		    "\"content_block_start\",\"index\":0,\"content_block\":"
		    "{\"type\":\"tool_use\",\"name\":\"f\"}}"),
		START EV("content_block_start", "{\"type\":"
		    "\"content_block_start\",\"index\":0,\"content_block\":"
		    "{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\"}}")
		    EV("content_block_delta", "{\"type\":"
		    "\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
		    "\"input_json_delta\",\"partial_json\":\"[1\"}}")
		    EV("content_block_stop", "{\"type\":"
		    "\"content_block_stop\",\"index\":0}"),
		START EV("content_block_start", "{\"type\":"
		    "\"content_block_start\",\"index\":0,\"content_block\":"
		    "{\"type\":\"text\",\"text\":\"\"}}")
		    EV("message_stop", "{\"type\":\"message_stop\"}"),
		/* Cut short: no message_stop. */
		START EV("content_block_start", "{\"type\":"
		    "\"content_block_start\",\"index\":0,\"content_block\":"
		    "{\"type\":\"text\",\"text\":\"\"}}"),
	};
	static const char *const why[] = {
		"malformed JSON", "malformed JSON", "before message_start",
		"not open", "without id or name", "not a JSON object",
		"inside a content block", "ended before message_stop",
	};
	struct rec	 r;
	size_t		 i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_not_equal(run_stream(bad[i], 9, &r), 0);
		assert_int_equal(r.nerror, 1);
		if (strstr(r.emsg, why[i]) == NULL)
			fail_msg("case %zu: \"%s\" lacks \"%s\"", i, r.emsg,
			    why[i]);
		assert_int_equal(r.done, 0);
		assert_int_equal(r.ncalls, 0);
		rec_free(&r);
	}
}

static json_t *
build(const struct wrk_proto_request *req)
{
	json_t	*root;
	char	*body;
	size_t	 len;

	assert_int_equal(wrk_anthropic_proto.request(req, &body, &len), 0);
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
	json_t		*root, *msgs, *m, *b, *t;

	wrk_conv_init(&conv);
	assert_int_equal(wrk_conv_add_text(&conv, WRK_MSG_USER, "hi", 2), 0);
	/* An empty answer of the history is left out. */
	assert_int_equal(wrk_conv_add_text(&conv, WRK_MSG_ASSISTANT, "", 0),
	    0);
	assert_int_equal(wrk_conv_add_text(&conv, WRK_MSG_USER, "weather?",
	    8), 0);
	calls = calloc(2, sizeof(*calls));
	calls[0].id = strdup("toolu_1");
	calls[0].name = strdup("weather");
	calls[0].arguments = strdup("{\"city\":\"Paris\"}");
	calls[1].id = strdup("toolu_2");
	calls[1].name = strdup("time.now");
	calls[1].arguments = strdup("not json");
	assert_int_equal(wrk_conv_add_calls(&conv, "Looking.", 8, calls, 2),
	    0);
	assert_int_equal(wrk_conv_add_result(&conv, "toolu_1", "weather",
	    "sunny", 0), 0);
	assert_int_equal(wrk_conv_add_result(&conv, "toolu_2", "time.now",
	    "bad arguments", 1), 0);

	memset(&req, 0, sizeof(req));
	req.model = "claude-test";
	req.system = "Be brief.";
	req.conv = &conv;
	req.temperature = 1.5;
	req.tools_json = "[{\"type\":\"function\",\"function\":{\"name\":"
	    "\"weather\",\"description\":\"The weather\",\"parameters\":"
	    "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":"
	    "\"string\"}}}}},{\"type\":\"function\",\"function\":{\"name\":"
	    "\"time.now\"}}]";
	root = build(&req);
	assert_string_equal(json_string_value(json_object_get(root, "model")),
	    "claude-test");
	assert_true(json_is_true(json_object_get(root, "stream")));
	assert_string_equal(json_string_value(json_object_get(root, "system")),
	    "Be brief.");
	/* max_tokens is required: the default when the agent sets none. */
	assert_int_equal(json_integer_value(json_object_get(root,
	    "max_tokens")), WRK_ANTHROPIC_MAX_TOKENS);
	/* Anthropic's range is 0..1. */
	assert_true(json_real_value(json_object_get(root, "temperature")) ==
	    1.0);
	t = json_object_get(root, "tools");
	assert_int_equal(json_array_size(t), 2);
	assert_string_equal(json_string_value(json_object_get(
	    json_array_get(t, 0), "name")), "weather");
	assert_string_equal(json_string_value(json_object_get(
	    json_array_get(t, 1), "name")), "time_now");
	assert_string_equal(json_string_value(json_object_get(
	    json_array_get(t, 0), "description")), "The weather");
	assert_non_null(json_object_get(json_object_get(json_array_get(t, 0),
	    "input_schema"), "properties"));
	assert_string_equal(json_string_value(json_object_get(json_object_get(
	    json_array_get(t, 1), "input_schema"), "type")), "object");
	assert_null(json_object_get(json_array_get(t, 0), "function"));

	msgs = json_object_get(root, "messages");
	assert_int_equal(json_array_size(msgs), 4);
	m = json_array_get(msgs, 0);
	assert_string_equal(json_string_value(json_object_get(m, "content")),
	    "hi");
	m = json_array_get(msgs, 2);
	assert_string_equal(json_string_value(json_object_get(m, "role")),
	    "assistant");
	b = json_object_get(m, "content");
	assert_int_equal(json_array_size(b), 3);
	assert_string_equal(json_string_value(json_object_get(
	    json_array_get(b, 0), "text")), "Looking.");
	assert_string_equal(json_string_value(json_object_get(
	    json_array_get(b, 1), "type")), "tool_use");
	assert_string_equal(json_string_value(json_object_get(
	    json_array_get(b, 2), "name")), "time_now");
	assert_string_equal(json_string_value(json_object_get(json_object_get(
	    json_array_get(b, 1), "input"), "city")), "Paris");
	/* Malformed arguments of the model: an empty object. */
	assert_int_equal(json_object_size(json_object_get(
	    json_array_get(b, 2), "input")), 0);
	/* Both results in one user message. */
	m = json_array_get(msgs, 3);
	assert_string_equal(json_string_value(json_object_get(m, "role")),
	    "user");
	b = json_object_get(m, "content");
	assert_int_equal(json_array_size(b), 2);
	assert_string_equal(json_string_value(json_object_get(
	    json_array_get(b, 0), "type")), "tool_result");
	assert_string_equal(json_string_value(json_object_get(
	    json_array_get(b, 0), "tool_use_id")), "toolu_1");
	assert_null(json_object_get(json_array_get(b, 0), "is_error"));
	assert_true(json_is_true(json_object_get(json_array_get(b, 1),
	    "is_error")));
	json_decref(root);

	req.max_tokens = 77;
	req.system = NULL;
	req.tools_json = NULL;
	root = build(&req);
	assert_int_equal(json_integer_value(json_object_get(root,
	    "max_tokens")), 77);
	assert_null(json_object_get(root, "system"));
	assert_null(json_object_get(root, "tools"));
	json_decref(root);
	wrk_conv_free(&conv);
}

static void
test_error_body(void **state)
{
	char	 out[256];
	const char *b;

	b = "{\"type\":\"error\",\"error\":{\"type\":\"not_found_error\","
	    "\"message\":\"model: claude-x\"}}";
	wrk_anthropic_proto.error_message(b, strlen(b), out, sizeof(out));
	assert_string_equal(out, "not_found_error: model: claude-x");
	b = "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\"}}";
	wrk_anthropic_proto.error_message(b, strlen(b), out, sizeof(out));
	assert_string_equal(out, "overloaded_error");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_text_deltas),
		cmocka_unit_test(test_tool_use),
		cmocka_unit_test(test_error_event),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_request),
		cmocka_unit_test(test_error_body),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
