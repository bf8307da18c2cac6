/*
 * provider.h: the internals shared by palyra-worker's network providers
 * (DESIGN section 9): the provider-neutral conversation (proto.c), the
 * wire protocols that turn it into a request body and a response's
 * server-sent events into callbacks (openai.c, anthropic.c), and the retry
 * policy: jittered exponential back-off and the circuit breaker
 * (retry.c). None of these touch the network, the loop or a run, so they
 * are unit tested on their own; provider.c drives them with worker/http.h.
 */
#ifndef PALYRA_WORKER_PROVIDER_H
#define PALYRA_WORKER_PROVIDER_H

#include <stddef.h>
#include <stdint.h>

#include "limits.h"
#include "sse.h"

/* One tool call of a model's reply, as assembled from the stream. */
struct wrk_tool_call {
	char		*id;
	char		*name;
	char		*arguments;	/* a JSON object text; never NULL */
};

enum wrk_msg_role {
	WRK_MSG_USER = 0,
	WRK_MSG_ASSISTANT,
	WRK_MSG_TOOL,		/* a tool result */
};

struct wrk_msg {
	enum wrk_msg_role	 role;
	char			*text;	/* user/assistant text, tool result */
	struct wrk_tool_call	*calls;	/* assistant: its tool calls */
	size_t			 ncalls;
	char			*call_id;	/* tool: the call answered */
	char			*tool_name;
	int			 is_error;
};

/* The conversation of a run, oldest first, without the system prompt. */
struct wrk_conv {
	struct wrk_msg		*msgs;
	size_t			 nmsgs;
	size_t			 cap;
};

/* proto.c. Each returns 0 or -ENOMEM; strings are copied. */
void	wrk_conv_init(struct wrk_conv *);
void	wrk_conv_free(struct wrk_conv *);
int	wrk_conv_add_text(struct wrk_conv *, enum wrk_msg_role,
	    const char *text, size_t len);
/* An assistant message with its tool calls; takes ownership of calls
 * (and frees them on failure). */
int	wrk_conv_add_calls(struct wrk_conv *, const char *text, size_t len,
	    struct wrk_tool_call *calls, size_t ncalls);
int	wrk_conv_add_result(struct wrk_conv *, const char *call_id,
	    const char *tool_name, const char *content, int is_error);
void	wrk_tool_call_clear(struct wrk_tool_call *);

/* What a request is made of, for either protocol. */
struct wrk_proto_request {
	const char		*model;
	const char		*system;	/* NULL or "": none */
	const struct wrk_conv	*conv;
	uint32_t		 max_tokens;	/* 0: none (anthropic: default) */
	double			 temperature;	/* < 0: not sent */
	const char		*tools_json;	/* OpenAI "tools" shape, NULL */
	int			 openai_native;	/* max_completion_tokens */
};

/*
 * What a response stream reports. Each callback returns 0 to go on or a
 * non-zero value that stops the event at hand and is returned by the
 * protocol's event function. text: a text delta, relayed at once.
 * tool_call: one complete call (the callee copies what it keeps).
 * usage: the reply's token counts, as the provider reported them. done:
 * the reply is complete (stop_reason as the provider said it, "" if
 * none). error: the provider reported an error in the stream, or sent
 * something malformed; message is safe to show (no request data).
 */
struct wrk_proto_cbs {
	int	(*text)(void *arg, const char *text, size_t len);
	int	(*tool_call)(void *arg, const struct wrk_tool_call *);
	int	(*usage)(void *arg, uint64_t input_tokens,
		    uint64_t output_tokens);
	int	(*done)(void *arg, const char *stop_reason);
	int	(*error)(void *arg, const char *type, const char *message);
};

/* A tool call being assembled from deltas. */
struct wrk_call_slot {
	int		 used;
	int		 delivered;
	long long	 index;		/* the provider's index */
	char		*id;
	char		*name;
	char		*args;
	size_t		 args_len;
};

/* The parse state of one response stream (either protocol). */
struct wrk_stream {
	const struct wrk_proto_cbs *cbs;
	void		*arg;
	const char	*tools_json;	/* the declarations offered, or NULL */
	struct wrk_call_slot slots[WRK_TOOL_CALLS_PER_REPLY];
	size_t		 nslots;
	char		 stop_reason[32];
	uint64_t	 input_tokens;
	uint64_t	 output_tokens;
	int		 has_usage;
	int		 done;		/* [DONE] or message_stop seen */
	int		 failed;	/* error reported */
	int		 started;	/* anthropic: message_start seen */
	/* anthropic: the open content block and its kind */
	long long	 block_index;
	int		 block_kind;	/* 0 none, 1 text, 2 tool_use */
};

void	wrk_stream_init(struct wrk_stream *, const struct wrk_proto_cbs *,
	    void *arg);
void	wrk_stream_fini(struct wrk_stream *);
/* Reports error through the callbacks once; returns its value or -EPROTO. */
int	wrk_stream_error(struct wrk_stream *, const char *type,
	    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The slot for the provider's call index, new if need be, or NULL when
 * the reply has too many calls. */
struct wrk_call_slot *wrk_stream_slot(struct wrk_stream *, long long index);
/* Appends to a slot's field, bounded by WRK_TOOL_ARGS_MAX. 0 or -E2BIG,
 * -ENOMEM. */
int	wrk_slot_append(char **field, size_t *len, const char *s, size_t n);
/* Delivers every assembled, undelivered call in index order. */
int	wrk_stream_deliver_calls(struct wrk_stream *);

/*
 * One wire protocol. request() builds the body (malloc'd JSON text).
 * event() consumes one server-sent event: 0 to go on, or a callback's
 * non-zero value. finish() is called when the body ended: it delivers
 * what a protocol completes at the end and reports a truncated stream as
 * an error; returns like event(). error_message() turns a non-2xx
 * response body into a short message (the provider's error type, code and
 * message), or "" when the body says nothing usable.
 */
struct wrk_proto {
	const char	*name;
	const char	*path;		/* appended to the base URL */
	int		(*request)(const struct wrk_proto_request *,
			    char **body, size_t *len);
	int		(*event)(struct wrk_stream *, const struct sse_event *);
	int		(*finish)(struct wrk_stream *);
	void		(*error_message)(const char *body, size_t len,
			    char *out, size_t size);
};

extern const struct wrk_proto wrk_openai_proto;
extern const struct wrk_proto wrk_anthropic_proto;

/*
 * proto.c: tool names on the wire. Both APIs accept only
 * [A-Za-z0-9_-]{1,64} as a tool name, so "time.now" is offered as
 * "time_now": every other byte becomes '_', cut at 64 bytes. A call's
 * name is mapped back to the declared tool whose wire name it is (the
 * first one, in the declarations' order); an unknown one stays as is.
 */
#define WRK_TOOL_WIRE_NAME_MAX	64
void	wrk_tool_wire_name(const char *name, char *out, size_t size);
void	wrk_tool_declared_name(const char *tools_json, const char *wire,
	    char *out, size_t size);

/* proto.c: a non-2xx body in either vendor's error shape
 * ({"error":{"message","type","code"}} or {"type":"error","error":{..}})
 * as "type (code): message", control bytes dropped, bounded by size. */
void	wrk_error_body_message(const char *body, size_t len, char *out,
	    size_t size);

/* retry.c: the retry policy (palyrad.conf(5), "Retries"). */

/*
 * The delay before attempt number failed + 1 after failed attempts
 * failed (>= 1): an exponential step min(cap, base * 2^(failed - 1)) with
 * "equal jitter", a uniform value in [step / 2, step] drawn from random.
 * A Retry-After of the last response (ms, -1: none) raises the delay to
 * it, at most WRK_RETRY_AFTER_MAX_MS.
 */
uint64_t wrk_backoff_ms(unsigned int failed, int64_t retry_after_ms,
	    uint32_t random);

enum wrk_breaker_state {
	WRK_BREAKER_CLOSED = 0,	/* calls go through */
	WRK_BREAKER_OPEN,	/* calls are refused until the cool-down */
	WRK_BREAKER_HALF_OPEN,	/* one probe call is let through */
};

/*
 * A circuit breaker per provider and worker: WRK_BREAKER_FAILURES
 * consecutive failures open it; after WRK_BREAKER_OPEN_MS one call is let
 * through as a probe (half-open); its success closes the breaker, its
 * failure opens it again for another period. Times are passed in, so
 * tests drive the clock.
 */
struct wrk_breaker {
	enum wrk_breaker_state state;
	unsigned int	 failures;	/* consecutive */
	int64_t		 opened_ms;
	int		 probing;	/* half-open: the probe is out */
};

/* 1 if a call may start now (it may be the probe), else 0. */
int	wrk_breaker_allow(struct wrk_breaker *, int64_t now_ms);
void	wrk_breaker_success(struct wrk_breaker *);
void	wrk_breaker_failure(struct wrk_breaker *, int64_t now_ms);
/* A call let through ended neither way (cancelled): a probe may go again. */
void	wrk_breaker_release(struct wrk_breaker *);
const char *wrk_breaker_state_name(enum wrk_breaker_state);

#endif
