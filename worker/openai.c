/*
 * openai.c: the OpenAI Chat Completions wire protocol (provider types
 * `openai` and `openai-compatible`: Ollama, llama.cpp, vLLM), for
 * palyra-worker's network providers. Builds the streaming request body
 * from a conversation and turns the response's server-sent events into
 * the callbacks of provider.h:
 *
 *	data: {"choices":[{"delta":{"content":"Hel"}}]}
 *	data: {"choices":[{"delta":{"tool_calls":[{"index":0,"id":"call_1",
 *	      "function":{"name":"time.now","arguments":"{\"tz"}}]}}]}
 *	data: {"choices":[{"delta":{},"finish_reason":"tool_calls"}]}
 *	data: {"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":3}}
 *	data: [DONE]
 *
 * Tool calls are assembled by index (id and name once, arguments
 * concatenated) and delivered when the choice finishes. Pure code: no
 * loop, no network; every byte of the provider is decoded here.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "provider.h"

static int
set_new(json_t *obj, const char *key, json_t *value)
{
	return value == NULL ? -1 : json_object_set_new(obj, key, value);
}

static json_t *
wire_name(const char *name)
{
	char	 w[WRK_TOOL_WIRE_NAME_MAX + 1];

	wrk_tool_wire_name(name, w, sizeof(w));
	return json_string(w);
}

/* The declarations with their names as the API accepts them. */
static json_t *
wire_tools(const char *tools_json)
{
	json_t	*tools, *t, *fn, *name;
	size_t	 i;

	if ((tools = json_loads(tools_json, 0, NULL)) == NULL)
		return NULL;
	if (!json_is_array(tools)) {
		json_decref(tools);
		return NULL;
	}
	json_array_foreach(tools, i, t) {
		fn = json_object_get(t, "function");
		name = json_object_get(fn, "name");
		if (json_is_string(name) && set_new(fn, "name",
		    wire_name(json_string_value(name))) == -1) {
			json_decref(tools);
			return NULL;
		}
	}
	return tools;
}

static json_t *
message_json(const struct wrk_msg *m)
{
	json_t	*o, *calls, *call, *fn;
	size_t	 i;

	if ((o = json_object()) == NULL)
		return NULL;
	switch (m->role) {
	case WRK_MSG_USER:
		if (set_new(o, "role", json_string("user")) == -1 ||
		    set_new(o, "content", json_string(m->text)) == -1)
			goto fail;
		break;
	case WRK_MSG_ASSISTANT:
		if (set_new(o, "role", json_string("assistant")) == -1)
			goto fail;
		/* With tool calls and no text, content is null. */
		if (set_new(o, "content", m->ncalls > 0 && m->text[0] == '\0' ?
		    json_null() : json_string(m->text)) == -1)
			goto fail;
		if (m->ncalls == 0)
			break;
		if (set_new(o, "tool_calls", calls = json_array()) == -1)
			goto fail;
		for (i = 0; i < m->ncalls; i++) {
			if ((call = json_object()) == NULL ||
			    json_array_append_new(calls, call) == -1 ||
			    set_new(call, "id", json_string(m->calls[i].id)) ==
			    -1 || set_new(call, "type",
			    json_string("function")) == -1 ||
			    set_new(call, "function", fn = json_object()) ==
			    -1 || set_new(fn, "name",
			    wire_name(m->calls[i].name)) == -1 ||
			    set_new(fn, "arguments",
			    json_string(m->calls[i].arguments)) == -1)
				goto fail;
		}
		break;
	case WRK_MSG_TOOL:
		if (set_new(o, "role", json_string("tool")) == -1 ||
		    set_new(o, "tool_call_id", json_string(m->call_id)) == -1 ||
		    set_new(o, "content", json_string(m->text)) == -1)
			goto fail;
		break;
	}
	return o;
fail:
	json_decref(o);
	return NULL;
}

static int
openai_request(const struct wrk_proto_request *req, char **body, size_t *len)
{
	json_t	*root, *msgs, *m, *tools, *opts;
	size_t	 i;
	int	 r = -ENOMEM;

	*body = NULL;
	if ((root = json_object()) == NULL)
		return -ENOMEM;
	if (set_new(root, "model", json_string(req->model)) == -1 ||
	    set_new(root, "stream", json_true()) == -1 ||
	    set_new(root, "stream_options", opts = json_object()) == -1 ||
	    set_new(opts, "include_usage", json_true()) == -1 ||
	    set_new(root, "messages", msgs = json_array()) == -1)
		goto out;
	if (req->system != NULL && req->system[0] != '\0') {
		if ((m = json_object()) == NULL ||
		    json_array_append_new(msgs, m) == -1 ||
		    set_new(m, "role", json_string("system")) == -1 ||
		    set_new(m, "content", json_string(req->system)) == -1)
			goto out;
	}
	for (i = 0; i < req->conv->nmsgs; i++)
		if ((m = message_json(&req->conv->msgs[i])) == NULL ||
		    json_array_append_new(msgs, m) == -1)
			goto out;
	if (req->max_tokens != 0 && set_new(root, req->openai_native ?
	    "max_completion_tokens" : "max_tokens",
	    json_integer(req->max_tokens)) == -1)
		goto out;
	if (req->temperature >= 0 &&
	    set_new(root, "temperature", json_real(req->temperature)) == -1)
		goto out;
	if (req->tools_json != NULL) {
		if ((tools = wire_tools(req->tools_json)) == NULL) {
			r = -EINVAL;
			goto out;
		}
		if (json_array_size(tools) > 0)
			json_object_set(root, "tools", tools);
		json_decref(tools);
	}
	if ((*body = json_dumps(root, JSON_COMPACT)) == NULL)
		goto out;
	*len = strlen(*body);
	r = 0;
out:
	json_decref(root);
	return r;
}

static int
tool_call_delta(struct wrk_stream *st, json_t *tc)
{
	struct wrk_call_slot *slot;
	json_t		*v, *fn;
	const char	*s;
	int		 r;

	if (!json_is_object(tc) ||
	    !json_is_integer(v = json_object_get(tc, "index")))
		return wrk_stream_error(st, "bad_response",
		    "tool call delta without an index");
	if ((slot = wrk_stream_slot(st, json_integer_value(v))) == NULL)
		return wrk_stream_error(st, "bad_response",
		    "more than %d tool calls in one reply",
		    WRK_TOOL_CALLS_PER_REPLY);
	if (slot->delivered)
		return wrk_stream_error(st, "bad_response",
		    "tool call delta after the call ended");
	/* id and name come once; a repeat replaces, as some servers resend. */
	if (json_is_string(v = json_object_get(tc, "id")) &&
	    (s = json_string_value(v))[0] != '\0') {
		free(slot->id);
		slot->id = NULL;
		if ((r = wrk_slot_append(&slot->id, NULL, s, strlen(s))) < 0)
			return wrk_stream_error(st, "bad_response",
			    "tool call id too long");
	}
	fn = json_object_get(tc, "function");
	if (!json_is_object(fn))
		return 0;
	if (json_is_string(v = json_object_get(fn, "name")) &&
	    (s = json_string_value(v))[0] != '\0') {
		free(slot->name);
		slot->name = NULL;
		if (wrk_slot_append(&slot->name, NULL, s, strlen(s)) < 0)
			return wrk_stream_error(st, "bad_response",
			    "tool name too long");
	}
	if (json_is_string(v = json_object_get(fn, "arguments"))) {
		r = wrk_slot_append(&slot->args, &slot->args_len,
		    json_string_value(v), json_string_length(v));
		if (r == -E2BIG)
			return wrk_stream_error(st, "bad_response",
			    "tool call arguments over %d bytes",
			    WRK_TOOL_ARGS_MAX);
		if (r < 0)
			return wrk_stream_error(st, "internal", "out of memory");
	}
	return 0;
}

static int
chunk(struct wrk_stream *st, json_t *root)
{
	json_t		*choices, *choice, *delta, *v, *calls, *usage;
	size_t		 i;
	int		 r;

	if (json_is_object(v = json_object_get(root, "error"))) {
		json_t	*type = json_object_get(v, "type");
		json_t	*msg = json_object_get(v, "message");

		return wrk_stream_error(st, json_is_string(type) ?
		    json_string_value(type) : "error", "%s",
		    json_is_string(msg) ? json_string_value(msg) :
		    "error event without a message");
	}
	choices = json_object_get(root, "choices");
	if (json_is_array(choices) && json_array_size(choices) > 0) {
		/* One choice is asked for (n defaults to 1). */
		choice = json_array_get(choices, 0);
		if (!json_is_object(choice))
			return wrk_stream_error(st, "bad_response",
			    "malformed choice");
		delta = json_object_get(choice, "delta");
		if (json_is_object(delta)) {
			v = json_object_get(delta, "content");
			if (json_is_string(v) && json_string_length(v) > 0 &&
			    (r = st->cbs->text(st->arg, json_string_value(v),
			    json_string_length(v))) != 0)
				return r;
			calls = json_object_get(delta, "tool_calls");
			if (json_is_array(calls))
				for (i = 0; i < json_array_size(calls); i++)
					if ((r = tool_call_delta(st,
					    json_array_get(calls, i))) != 0)
						return r;
		}
		v = json_object_get(choice, "finish_reason");
		if (json_is_string(v)) {
			snprintf(st->stop_reason, sizeof(st->stop_reason),
			    "%s", json_string_value(v));
			if ((r = wrk_stream_deliver_calls(st)) != 0)
				return r;
		}
	}
	usage = json_object_get(root, "usage");
	if (json_is_object(usage)) {
		json_t	*in = json_object_get(usage, "prompt_tokens");
		json_t	*out = json_object_get(usage, "completion_tokens");

		if (json_is_integer(in) && json_integer_value(in) >= 0)
			st->input_tokens = (uint64_t)json_integer_value(in);
		if (json_is_integer(out) && json_integer_value(out) >= 0)
			st->output_tokens = (uint64_t)json_integer_value(out);
		st->has_usage = 1;
		if ((r = st->cbs->usage(st->arg, st->input_tokens,
		    st->output_tokens)) != 0)
			return r;
	}
	return 0;
}

static int
openai_done(struct wrk_stream *st)
{
	int	 r;

	if ((r = wrk_stream_deliver_calls(st)) != 0)
		return r;
	st->done = 1;
	return st->cbs->done(st->arg, st->stop_reason);
}

static int
openai_event(struct wrk_stream *st, const struct sse_event *ev)
{
	json_error_t	 jerr;
	json_t		*root;
	int		 r;

	if (st->failed)
		return -EPROTO;
	if (st->done)
		return 0;	/* nothing counts after [DONE] */
	if (strcmp(ev->event, "error") != 0 && strcmp(ev->event, "message"))
		return 0;	/* other event names are not data */
	if (ev->data_len == 0)
		return 0;
	if (strcmp(ev->data, "[DONE]") == 0)
		return openai_done(st);
	root = json_loadb(ev->data, ev->data_len, 0, &jerr);
	if (root == NULL || !json_is_object(root)) {
		json_decref(root);
		return wrk_stream_error(st, "bad_response",
		    "malformed JSON in the event stream");
	}
	r = chunk(st, root);
	json_decref(root);
	return r;
}

static int
openai_finish(struct wrk_stream *st)
{
	if (st->failed)
		return -EPROTO;
	if (st->done)
		return 0;
	/* Some compatible servers end without [DONE] after a finish. */
	if (st->stop_reason[0] != '\0')
		return openai_done(st);
	return wrk_stream_error(st, "truncated",
	    "the stream ended before the reply was complete");
}

const struct wrk_proto wrk_openai_proto = {
	.name = "openai",
	.path = "/chat/completions",
	.request = openai_request,
	.event = openai_event,
	.finish = openai_finish,
	.error_message = wrk_error_body_message,
};
