/*
 * proto.c: what palyra-worker's two wire protocols (openai.c,
 * anthropic.c) share: the provider-neutral conversation of a run, the
 * assembly of tool calls from a stream's deltas, and the reading of a
 * provider's error body. Pure code: no loop, no network, no run; decodes
 * provider bytes only through jansson, every length bounded.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "provider.h"

void
wrk_conv_init(struct wrk_conv *conv)
{
	memset(conv, 0, sizeof(*conv));
}

void
wrk_tool_call_clear(struct wrk_tool_call *call)
{
	free(call->id);
	free(call->name);
	free(call->arguments);
	memset(call, 0, sizeof(*call));
}

static void
msg_clear(struct wrk_msg *m)
{
	size_t	 i;

	for (i = 0; i < m->ncalls; i++)
		wrk_tool_call_clear(&m->calls[i]);
	free(m->calls);
	free(m->text);
	free(m->call_id);
	free(m->tool_name);
	memset(m, 0, sizeof(*m));
}

void
wrk_conv_free(struct wrk_conv *conv)
{
	size_t	 i;

	for (i = 0; i < conv->nmsgs; i++)
		msg_clear(&conv->msgs[i]);
	free(conv->msgs);
	memset(conv, 0, sizeof(*conv));
}

/* A new zeroed message at the end, or NULL. */
static struct wrk_msg *
conv_push(struct wrk_conv *conv)
{
	struct wrk_msg	*grown;
	size_t		 cap;

	if (conv->nmsgs == conv->cap) {
		cap = conv->cap == 0 ? 8 : conv->cap * 2;
		grown = reallocarray(conv->msgs, cap, sizeof(*grown));
		if (grown == NULL)
			return NULL;
		conv->msgs = grown;
		conv->cap = cap;
	}
	memset(&conv->msgs[conv->nmsgs], 0, sizeof(conv->msgs[0]));
	return &conv->msgs[conv->nmsgs];
}

int
wrk_conv_add_text(struct wrk_conv *conv, enum wrk_msg_role role,
    const char *text, size_t len)
{
	struct wrk_msg	*m;

	if ((m = conv_push(conv)) == NULL)
		return -ENOMEM;
	m->role = role;
	if ((m->text = strndup(text, len)) == NULL)
		return -ENOMEM;
	conv->nmsgs++;
	return 0;
}

int
wrk_conv_add_calls(struct wrk_conv *conv, const char *text, size_t len,
    struct wrk_tool_call *calls, size_t ncalls)
{
	struct wrk_msg	*m;
	size_t		 i;

	if ((m = conv_push(conv)) == NULL ||
	    (m->text = strndup(text, len)) == NULL) {
		for (i = 0; i < ncalls; i++)
			wrk_tool_call_clear(&calls[i]);
		free(calls);
		if (m != NULL)
			msg_clear(m);
		return -ENOMEM;
	}
	m->role = WRK_MSG_ASSISTANT;
	m->calls = calls;
	m->ncalls = ncalls;
	conv->nmsgs++;
	return 0;
}

int
wrk_conv_add_result(struct wrk_conv *conv, const char *call_id,
    const char *tool_name, const char *content, int is_error)
{
	struct wrk_msg	*m;

	if ((m = conv_push(conv)) == NULL)
		return -ENOMEM;
	m->role = WRK_MSG_TOOL;
	m->is_error = is_error;
	if ((m->call_id = strdup(call_id)) == NULL ||
	    (m->tool_name = strdup(tool_name)) == NULL ||
	    (m->text = strdup(content)) == NULL) {
		msg_clear(m);
		return -ENOMEM;
	}
	conv->nmsgs++;
	return 0;
}

void
wrk_stream_init(struct wrk_stream *st, const struct wrk_proto_cbs *cbs,
    void *arg)
{
	memset(st, 0, sizeof(*st));
	st->cbs = cbs;
	st->arg = arg;
	st->block_index = -1;
}

void
wrk_stream_fini(struct wrk_stream *st)
{
	size_t	 i;

	for (i = 0; i < st->nslots; i++) {
		free(st->slots[i].id);
		free(st->slots[i].name);
		free(st->slots[i].args);
	}
	st->nslots = 0;
}

int
wrk_stream_error(struct wrk_stream *st, const char *type, const char *fmt,
    ...)
{
	char	 msg[256];
	va_list	 ap;
	int	 r;

	if (st->failed)
		return -EPROTO;
	st->failed = 1;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	r = st->cbs->error(st->arg, type, msg);
	return r != 0 ? r : -EPROTO;
}

struct wrk_call_slot *
wrk_stream_slot(struct wrk_stream *st, long long index)
{
	size_t	 i;

	for (i = 0; i < st->nslots; i++)
		if (st->slots[i].index == index)
			return &st->slots[i];
	if (st->nslots >= WRK_TOOL_CALLS_PER_REPLY)
		return NULL;
	memset(&st->slots[st->nslots], 0, sizeof(st->slots[0]));
	st->slots[st->nslots].used = 1;
	st->slots[st->nslots].index = index;
	return &st->slots[st->nslots++];
}

int
wrk_slot_append(char **field, size_t *len, const char *s, size_t n)
{
	size_t	 have = *field != NULL ? strlen(*field) : 0;
	char	*grown;

	if (len != NULL)
		have = *len;
	if (n > WRK_TOOL_ARGS_MAX || have + n > WRK_TOOL_ARGS_MAX)
		return -E2BIG;
	if ((grown = realloc(*field, have + n + 1)) == NULL)
		return -ENOMEM;
	memcpy(grown + have, s, n);
	grown[have + n] = '\0';
	*field = grown;
	if (len != NULL)
		*len = have + n;
	return 0;
}

void
wrk_tool_wire_name(const char *name, char *out, size_t size)
{
	size_t	 n;

	for (n = 0; name[n] != '\0' && n < WRK_TOOL_WIRE_NAME_MAX &&
	    n + 1 < size; n++)
		out[n] = (name[n] >= 'a' && name[n] <= 'z') ||
		    (name[n] >= 'A' && name[n] <= 'Z') ||
		    (name[n] >= '0' && name[n] <= '9') || name[n] == '-' ?
		    name[n] : '_';
	if (size > 0)
		out[n] = '\0';
}

void
wrk_tool_declared_name(const char *tools_json, const char *wire, char *out,
    size_t size)
{
	char		 w[WRK_TOOL_WIRE_NAME_MAX + 1];
	const char	*name;
	json_t		*decls, *d;
	size_t		 i;

	snprintf(out, size, "%s", wire);
	if (tools_json == NULL ||
	    (decls = json_loads(tools_json, 0, NULL)) == NULL)
		return;
	json_array_foreach(decls, i, d) {
		name = json_string_value(json_object_get(json_object_get(d,
		    "function"), "name"));
		if (name == NULL)
			continue;
		wrk_tool_wire_name(name, w, sizeof(w));
		if (strcmp(w, wire) == 0) {
			snprintf(out, size, "%s", name);
			break;
		}
	}
	json_decref(decls);
}

/* Slots are kept in arrival order; calls go out in the provider's order. */
int
wrk_stream_deliver_calls(struct wrk_stream *st)
{
	struct wrk_call_slot *best;
	struct wrk_tool_call call;
	char		 name[256];
	size_t		 i;
	int		 r;

	for (;;) {
		best = NULL;
		for (i = 0; i < st->nslots; i++)
			if (!st->slots[i].delivered && (best == NULL ||
			    st->slots[i].index < best->index))
				best = &st->slots[i];
		if (best == NULL)
			return 0;
		best->delivered = 1;
		if (best->name == NULL || best->name[0] == '\0')
			return wrk_stream_error(st, "bad_response",
			    "tool call without a name");
		call.id = best->id != NULL ? best->id : "";
		wrk_tool_declared_name(st->tools_json, best->name, name,
		    sizeof(name));
		call.name = name;
		call.arguments = best->args != NULL && best->args_len > 0 ?
		    best->args : "{}";
		if ((r = st->cbs->tool_call(st->arg, &call)) != 0)
			return r;
	}
}

/* Copies s to out, control bytes as spaces, cut at a UTF-8 boundary. */
static void
copy_clean(char *out, size_t size, const char *s)
{
	size_t	 n = 0;

	for (; *s != '\0' && n + 1 < size; s++)
		out[n++] = (unsigned char)*s < 0x20 || *s == 0x7f ? ' ' : *s;
	if (*s != '\0')
		while (n > 0 && ((unsigned char)out[n] & 0xc0) == 0x80)
			n--;
	out[n] = '\0';
}

void
wrk_error_body_message(const char *body, size_t len, char *out, size_t size)
{
	json_t		*root, *err, *v;
	const char	*type = NULL, *message = NULL;
	char		 code[64] = "", text[512];

	out[0] = '\0';
	if (len == 0 || (root = json_loadb(body, len, 0, NULL)) == NULL)
		return;
	err = json_object_get(root, "error");
	if (json_is_string(err))
		message = json_string_value(err);
	else if (json_is_object(err)) {
		if (json_is_string(v = json_object_get(err, "type")))
			type = json_string_value(v);
		if (json_is_string(v = json_object_get(err, "message")))
			message = json_string_value(v);
		v = json_object_get(err, "code");
		if (json_is_string(v))
			snprintf(code, sizeof(code), "%s", json_string_value(v));
		else if (json_is_integer(v))
			snprintf(code, sizeof(code), "%lld",
			    (long long)json_integer_value(v));
	}
	if (type != NULL && code[0] != '\0' && strcmp(type, code) != 0)
		snprintf(text, sizeof(text), "%s (%s)%s%s", type, code,
		    message != NULL ? ": " : "", message != NULL ? message : "");
	else if (type != NULL || code[0] != '\0')
		snprintf(text, sizeof(text), "%s%s%s",
		    type != NULL ? type : code, message != NULL ? ": " : "",
		    message != NULL ? message : "");
	else
		snprintf(text, sizeof(text), "%s",
		    message != NULL ? message : "");
	copy_clean(out, size, text);
	json_decref(root);
}
