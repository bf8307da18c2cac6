/*
 * anthropic.c: the Anthropic Messages wire protocol (provider type
 * `anthropic`) for palyra-worker's network providers. Builds the
 * streaming request body from a conversation (the system prompt a
 * top-level field, tool results as tool_result blocks of a user message,
 * tools as {name, description, input_schema}) and turns the response's
 * events into the callbacks of provider.h:
 *
 *	message_start		usage.input_tokens
 *	content_block_start	a text block, or tool_use with id and name
 *	content_block_delta	text_delta (relayed), input_json_delta
 *				(partial_json concatenated)
 *	content_block_stop	a tool_use block is a complete call
 *	message_delta		stop_reason, usage.output_tokens
 *	message_stop		the reply is complete
 *	ping			nothing
 *	error			{"error":{"type","message"}}
 *
 * Pure code: no loop, no network; every byte of the provider is decoded
 * here.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "provider.h"

#define BLOCK_NONE	0
#define BLOCK_TEXT	1
#define BLOCK_TOOL_USE	2
#define BLOCK_OTHER	3	/* thinking and kinds not relayed */

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

static json_t *
text_block(const char *text)
{
	json_t	*b = json_object();

	if (b == NULL || set_new(b, "type", json_string("text")) == -1 ||
	    set_new(b, "text", json_string(text)) == -1) {
		json_decref(b);
		return NULL;
	}
	return b;
}

/* A tool call's arguments as the object Anthropic wants; {} if they
 * are not one (the model's own malformed output is not fatal). */
static json_t *
tool_input(const char *arguments)
{
	json_t	*v = json_loads(arguments, 0, NULL);

	if (json_is_object(v))
		return v;
	json_decref(v);
	return json_object();
}

static json_t *
assistant_json(const struct wrk_msg *m)
{
	json_t	*o, *content, *b;
	size_t	 i;

	if ((o = json_object()) == NULL)
		return NULL;
	if (set_new(o, "role", json_string("assistant")) == -1 ||
	    set_new(o, "content", content = json_array()) == -1)
		goto fail;
	if (m->text[0] != '\0' &&
	    json_array_append_new(content, text_block(m->text)) == -1)
		goto fail;
	for (i = 0; i < m->ncalls; i++)
		if ((b = json_object()) == NULL ||
		    json_array_append_new(content, b) == -1 ||
		    set_new(b, "type", json_string("tool_use")) == -1 ||
		    set_new(b, "id", json_string(m->calls[i].id)) == -1 ||
		    set_new(b, "name", wire_name(m->calls[i].name)) == -1 ||
		    set_new(b, "input", tool_input(m->calls[i].arguments)) ==
		    -1)
			goto fail;
	return o;
fail:
	json_decref(o);
	return NULL;
}

static json_t *
tool_result_block(const struct wrk_msg *m)
{
	json_t	*b = json_object();

	if (b == NULL || set_new(b, "type", json_string("tool_result")) ==
	    -1 || set_new(b, "tool_use_id", json_string(m->call_id)) == -1 ||
	    set_new(b, "content", json_string(m->text)) == -1 ||
	    (m->is_error && set_new(b, "is_error", json_true()) == -1)) {
		json_decref(b);
		return NULL;
	}
	return b;
}

/* OpenAI's [{type:function,function:{name,description,parameters}}] as
 * Anthropic's [{name,description,input_schema}]. */
static json_t *
convert_tools(const char *tools_json)
{
	json_t	*in, *out, *t, *fn, *v;
	size_t	 i;

	if ((in = json_loads(tools_json, 0, NULL)) == NULL ||
	    !json_is_array(in) || (out = json_array()) == NULL) {
		json_decref(in);
		return NULL;
	}
	json_array_foreach(in, i, fn) {
		fn = json_object_get(fn, "function");
		if (!json_is_object(fn) ||
		    !json_is_string(json_object_get(fn, "name")))
			continue;
		if ((t = json_object()) == NULL ||
		    json_array_append_new(out, t) == -1)
			goto fail;
		if (set_new(t, "name", wire_name(json_string_value(
		    json_object_get(fn, "name")))) == -1)
			goto fail;
		if (json_is_string(v = json_object_get(fn, "description")))
			json_object_set(t, "description", v);
		v = json_object_get(fn, "parameters");
		if (json_is_object(v))
			json_object_set(t, "input_schema", v);
		else if (set_new(t, "input_schema",
		    json_pack("{s:s}", "type", "object")) == -1)
			goto fail;
	}
	json_decref(in);
	return out;
fail:
	json_decref(in);
	json_decref(out);
	return NULL;
}

static int
anthropic_request(const struct wrk_proto_request *req, char **body,
    size_t *len)
{
	json_t	*root, *msgs, *m, *content = NULL, *tools;
	const struct wrk_msg *msg;
	size_t	 i;
	int	 r = -ENOMEM;

	*body = NULL;
	if ((root = json_object()) == NULL)
		return -ENOMEM;
	if (set_new(root, "model", json_string(req->model)) == -1 ||
	    set_new(root, "max_tokens", json_integer(req->max_tokens != 0 ?
	    req->max_tokens : WRK_ANTHROPIC_MAX_TOKENS)) == -1 ||
	    set_new(root, "stream", json_true()) == -1)
		goto out;
	if (req->system != NULL && req->system[0] != '\0' &&
	    set_new(root, "system", json_string(req->system)) == -1)
		goto out;
	if (req->temperature >= 0 && set_new(root, "temperature",
	    json_real(req->temperature > 1.0 ? 1.0 : req->temperature)) == -1)
		goto out;
	if (set_new(root, "messages", msgs = json_array()) == -1)
		goto out;
	for (i = 0; i < req->conv->nmsgs; i++) {
		msg = &req->conv->msgs[i];
		if (msg->role == WRK_MSG_TOOL) {
			/* Consecutive results form one user message. */
			if (content == NULL) {
				if ((m = json_object()) == NULL ||
				    json_array_append_new(msgs, m) == -1 ||
				    set_new(m, "role", json_string("user")) ==
				    -1 || set_new(m, "content",
				    content = json_array()) == -1)
					goto out;
			}
			if (json_array_append_new(content,
			    tool_result_block(msg)) == -1)
				goto out;
			continue;
		}
		content = NULL;
		if (msg->role == WRK_MSG_ASSISTANT) {
			/* Anthropic refuses an empty assistant turn. */
			if (msg->text[0] == '\0' && msg->ncalls == 0)
				continue;
			m = assistant_json(msg);
		} else
			m = json_pack("{s:s,s:s}", "role", "user", "content",
			    msg->text);
		if (m == NULL || json_array_append_new(msgs, m) == -1)
			goto out;
	}
	if (req->tools_json != NULL) {
		if ((tools = convert_tools(req->tools_json)) == NULL) {
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
read_usage(json_t *usage, const char *key, uint64_t *out)
{
	json_t	*v = json_object_get(usage, key);

	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return 0;
	*out = (uint64_t)json_integer_value(v);
	return 1;
}

static int
block_start(struct wrk_stream *st, json_t *root)
{
	struct wrk_call_slot *slot;
	json_t		*index = json_object_get(root, "index");
	json_t		*block = json_object_get(root, "content_block");
	const char	*type, *id, *name;

	if (!json_is_integer(index) || !json_is_object(block) ||
	    !json_is_string(json_object_get(block, "type")))
		return wrk_stream_error(st, "bad_response",
		    "malformed content_block_start");
	if (st->block_kind != BLOCK_NONE)
		return wrk_stream_error(st, "bad_response",
		    "content block started inside another");
	st->block_index = json_integer_value(index);
	type = json_string_value(json_object_get(block, "type"));
	if (strcmp(type, "text") == 0) {
		st->block_kind = BLOCK_TEXT;
		return 0;
	}
	if (strcmp(type, "tool_use") != 0) {
		/* thinking and other blocks carry nothing we relay. */
		st->block_kind = BLOCK_OTHER;
		return 0;
	}
	st->block_kind = BLOCK_TOOL_USE;
	id = json_string_value(json_object_get(block, "id"));
	name = json_string_value(json_object_get(block, "name"));
	if (id == NULL || name == NULL || name[0] == '\0')
		return wrk_stream_error(st, "bad_response",
		    "tool_use block without id or name");
	if ((slot = wrk_stream_slot(st, st->block_index)) == NULL)
		return wrk_stream_error(st, "bad_response",
		    "more than %d tool calls in one reply",
		    WRK_TOOL_CALLS_PER_REPLY);
	if (slot->id != NULL)
		return wrk_stream_error(st, "bad_response",
		    "content block index used twice");
	if (wrk_slot_append(&slot->id, NULL, id, strlen(id)) < 0 ||
	    wrk_slot_append(&slot->name, NULL, name, strlen(name)) < 0)
		return wrk_stream_error(st, "bad_response",
		    "tool id or name too long");
	return 0;
}

static int
block_delta(struct wrk_stream *st, json_t *root)
{
	struct wrk_call_slot *slot;
	json_t		*delta = json_object_get(root, "delta");
	json_t		*index = json_object_get(root, "index");
	const char	*type;
	json_t		*v;
	int		 r;

	if (!json_is_object(delta) || !json_is_integer(index) ||
	    (type = json_string_value(json_object_get(delta, "type"))) ==
	    NULL)
		return wrk_stream_error(st, "bad_response",
		    "malformed content_block_delta");
	if (st->block_kind == BLOCK_NONE ||
	    json_integer_value(index) != st->block_index)
		return wrk_stream_error(st, "bad_response",
		    "delta for a block that is not open");
	if (strcmp(type, "text_delta") == 0) {
		if (st->block_kind != BLOCK_TEXT ||
		    !json_is_string(v = json_object_get(delta, "text")))
			return wrk_stream_error(st, "bad_response",
			    "malformed text_delta");
		if (json_string_length(v) == 0)
			return 0;
		return st->cbs->text(st->arg, json_string_value(v),
		    json_string_length(v));
	}
	if (strcmp(type, "input_json_delta") == 0) {
		if (st->block_kind != BLOCK_TOOL_USE ||
		    !json_is_string(v = json_object_get(delta,
		    "partial_json")))
			return wrk_stream_error(st, "bad_response",
			    "malformed input_json_delta");
		slot = wrk_stream_slot(st, st->block_index);
		r = wrk_slot_append(&slot->args, &slot->args_len,
		    json_string_value(v), json_string_length(v));
		if (r == -E2BIG)
			return wrk_stream_error(st, "bad_response",
			    "tool call arguments over %d bytes",
			    WRK_TOOL_ARGS_MAX);
		if (r < 0)
			return wrk_stream_error(st, "internal", "out of memory");
		return 0;
	}
	return 0;	/* thinking, signature and later kinds */
}

static int
block_stop(struct wrk_stream *st, json_t *root)
{
	struct wrk_call_slot *slot;
	json_t		*index = json_object_get(root, "index");
	int		 kind = st->block_kind;
	json_t		*v;
	int		 r;

	if (!json_is_integer(index) || kind == BLOCK_NONE ||
	    json_integer_value(index) != st->block_index)
		return wrk_stream_error(st, "bad_response",
		    "content_block_stop for a block that is not open");
	st->block_kind = BLOCK_NONE;
	if (kind != BLOCK_TOOL_USE)
		return 0;
	slot = wrk_stream_slot(st, st->block_index);
	/* The arguments must be one JSON object once complete. */
	if (slot->args_len > 0) {
		v = json_loadb(slot->args, slot->args_len, 0, NULL);
		r = json_is_object(v);
		json_decref(v);
		if (!r)
			return wrk_stream_error(st, "bad_response",
			    "tool call arguments are not a JSON object");
	}
	return wrk_stream_deliver_calls(st);
}

static int
anthropic_event(struct wrk_stream *st, const struct sse_event *ev)
{
	json_t		*root, *v, *msg;
	const char	*type;
	int		 r = 0;

	if (st->failed)
		return -EPROTO;
	if (st->done || ev->data_len == 0)
		return 0;
	root = json_loadb(ev->data, ev->data_len, 0, NULL);
	if (root == NULL || !json_is_object(root) ||
	    (type = json_string_value(json_object_get(root, "type"))) ==
	    NULL) {
		json_decref(root);
		return wrk_stream_error(st, "bad_response",
		    "malformed JSON in the event stream");
	}
	if (strcmp(type, "error") == 0) {
		v = json_object_get(root, "error");
		msg = json_object_get(v, "message");
		r = wrk_stream_error(st,
		    json_is_string(json_object_get(v, "type")) ?
		    json_string_value(json_object_get(v, "type")) : "error",
		    "%s", json_is_string(msg) ? json_string_value(msg) :
		    "error event without a message");
	} else if (strcmp(type, "ping") == 0)
		r = 0;
	else if (strcmp(type, "message_start") == 0) {
		v = json_object_get(json_object_get(root, "message"), "usage");
		st->started = 1;
		if (json_is_object(v)) {
			read_usage(v, "input_tokens", &st->input_tokens);
			read_usage(v, "output_tokens", &st->output_tokens);
			st->has_usage = 1;
		}
	} else if (!st->started)
		r = wrk_stream_error(st, "bad_response",
		    "%s before message_start", type);
	else if (strcmp(type, "content_block_start") == 0)
		r = block_start(st, root);
	else if (strcmp(type, "content_block_delta") == 0)
		r = block_delta(st, root);
	else if (strcmp(type, "content_block_stop") == 0)
		r = block_stop(st, root);
	else if (strcmp(type, "message_delta") == 0) {
		v = json_object_get(json_object_get(root, "delta"),
		    "stop_reason");
		if (json_is_string(v))
			snprintf(st->stop_reason, sizeof(st->stop_reason),
			    "%s", json_string_value(v));
		v = json_object_get(root, "usage");
		if (json_is_object(v)) {
			/* Cumulative: the last one counts. */
			read_usage(v, "output_tokens", &st->output_tokens);
			if (read_usage(v, "input_tokens", &(uint64_t){ 0 }) &&
			    json_integer_value(json_object_get(v,
			    "input_tokens")) > 0)
				read_usage(v, "input_tokens",
				    &st->input_tokens);
			st->has_usage = 1;
		}
	} else if (strcmp(type, "message_stop") == 0) {
		if (st->block_kind != BLOCK_NONE)
			r = wrk_stream_error(st, "bad_response",
			    "message_stop inside a content block");
		else if ((r = wrk_stream_deliver_calls(st)) == 0 &&
		    (r = st->cbs->usage(st->arg, st->input_tokens,
		    st->output_tokens)) == 0) {
			st->done = 1;
			r = st->cbs->done(st->arg, st->stop_reason);
		}
	}
	/* Unknown event types are ignored, as Anthropic asks. */
	json_decref(root);
	return r;
}

static int
anthropic_finish(struct wrk_stream *st)
{
	if (st->failed)
		return -EPROTO;
	if (st->done)
		return 0;
	return wrk_stream_error(st, "truncated",
	    "the stream ended before message_stop");
}

const struct wrk_proto wrk_anthropic_proto = {
	.name = "anthropic",
	.path = "/messages",
	.request = anthropic_request,
	.event = anthropic_event,
	.finish = anthropic_finish,
	.error_message = wrk_error_body_message,
};
