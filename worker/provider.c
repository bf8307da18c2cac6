/*
 * provider.c: the network model providers of palyra-worker (`openai`,
 * `anthropic`, `openai-compatible`; DESIGN section 9, palyrad.conf(5)).
 *
 * One engine serves the three types; the wire protocol (openai.c,
 * anthropic.c) builds the request and parses the stream. For each run it
 * owns the conversation (system prompt, session history, input, then the
 * replies, tool calls and tool results of the run) and drives the agent
 * turn loop: call the provider with streaming, relay each text delta at
 * once, run the reply's tool calls (TOOL_CALL and TOOL_RESULT events),
 * call again with the results, and stop at a final answer or a limit;
 * follow-up input (run->inputs) is the next user turn after an answer.
 *
 * Per provider and worker: a cap on concurrent requests (runs over it wait
 * in a FIFO) and a circuit breaker (retry.c). An attempt that failed with
 * 429, 5xx, a connect or network error or a timeout is retried with
 * jittered back-off, but only while nothing of it reached the client;
 * then the agent's failover list is walked in order. Back-pressure: when
 * the run may not emit, the transfer is paused, holding at most the
 * current event's text and the rest of the chunk at hand.
 *
 * Runs in palyra-worker on its loop; touches its runs through the sink
 * functions of run.c and the network through worker/http.h only. The
 * credential is put in a request header and wiped; it is never logged.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <sodium.h>

#include "budget.h"
#include "http.h"
#include "log.h"
#include "provider.h"
#include "tools.h"
#include "worker.h"

#define OPENAI_DEFAULT_URL	"https://api.openai.com/v1"
#define ANTHROPIC_DEFAULT_URL	"https://api.anthropic.com/v1"
#define ANTHROPIC_VERSION	"2023-06-01"
#define REASONS_MAX		1024	/* the failover history of a run */
#define HEADER_MAX		(JNL_SECRET_MAX_LEN + 64)

/* A callback's "the run ended and its provider state is gone". */
#define GONE			2

/* One provider of the configuration, as this worker uses it. */
struct net_provider {
	TAILQ_ENTRY(net_provider) entry;
	char			 name[NAME_MAX_LEN + 1];
	size_t			 active;	/* requests holding a slot */
	struct wrk_breaker	 breaker;
	TAILQ_HEAD(, net_run)	 waiting;	/* FIFO of runs over the cap */
};

struct wrk_net {
	struct wrk_http		*http;
	TAILQ_HEAD(, net_provider) providers;
};

enum net_state {
	NET_IDLE = 0,		/* between steps (timer armed) */
	NET_WAITING,		/* for a slot of its provider */
	NET_STREAMING,		/* a transfer is under way */
	NET_TOOLS,		/* running the reply's tool calls */
	NET_TOOL_WAIT,		/* the tool gate has a call (tools.h) */
	NET_FINISHING,		/* waits for room for the final events */
	NET_RESERVING,		/* waits for the call's budget reservation */
};

struct net_run {
	struct wrk_run		*run;
	struct wrk_net		*net;
	enum net_state		 state;
	struct wrk_conv		 conv;

	/* The provider in use: index in run->providers, and its state. */
	size_t			 pidx;
	struct net_provider	*np;
	const struct wrk_proto	*proto;
	unsigned int		 attempt;	/* made on it for this call */
	int			 slot_held;
	int			 breaker_out;	/* let through, no verdict yet */
	int			 queued;
	TAILQ_ENTRY(net_run)	 wait_entry;
	struct event		*timer;

	/* The attempt under way. */
	struct wrk_xfer		*xfer;
	long			 http_status;
	char			*errbody;
	size_t			 errlen;
	struct sse_parser	 sse;
	int			 sse_ready;
	/* Inside sse_feed(): a stop() meanwhile leaves the parser and this
	 * struct for feed() to free once the parser returned (dead). */
	int			 in_feed;
	int			 dead;
	struct wrk_stream	 stream;
	int			 stream_ready;
	char			 fail_type[32];
	char			 fail_msg[256];
	int			 relayed;	/* output reached the client */
	char			*pending;	/* text not relayed yet */
	size_t			 pending_len;
	char			*stash;		/* body bytes not parsed yet */
	size_t			 stash_len;
	int			 paused;
	int			 has_result;	/* on_done came while paused */
	struct wrk_xfer_result	 result;
	char			 result_msg[128];

	/* The call (one reply). */
	char			*reply;
	size_t			 reply_len;
	struct wrk_tool_call	*calls;
	size_t			 ncalls;
	int			 call_done;
	uint64_t		 call_in, call_out;
	/* The call's budget reservation is held (budget.c); an attempt got
	 * a 2xx answer, so the call may have cost something. */
	int			 call_reserved;
	int			 call_billable;

	/* The run. */
	size_t			 streamed;	/* text bytes of the run */
	size_t			 text_mark;	/* streamed when the call began */
	uint64_t		 in, out;
	unsigned int		 turns;
	unsigned int		 tool_calls;
	size_t			 tool_msg;	/* NET_TOOLS: the reply */
	size_t			 tool_next;
	char			*tool_result;	/* run, not yet emitted */
	int			 tool_is_error;
	int			 tool_call_emitted;
	char			 reasons[REASONS_MAX];
	/* A provider's api-key vault:NAME named no secret of the vault:
	 * the run fails FAILED_PRECONDITION if no provider serves it. */
	int			 vault_missing;
};

static void	attempt_begin(struct net_run *);
static void	call_begin(struct net_run *);
static void	call_settle(struct net_run *);
static void	tools_step(struct net_run *);
static void	finish_step(struct net_run *);

/* Configuration lookups. */

static const Palyra__Ipc__ProviderConfig *
find_config(const struct wrk_ctx *ctx, const char *name)
{
	size_t	 i;

	if (ctx->config == NULL)
		return NULL;
	for (i = 0; i < ctx->config->n_providers; i++)
		if (strcmp(ctx->config->providers[i]->name, name) == 0)
			return ctx->config->providers[i];
	return NULL;
}

static const struct wrk_proto *
proto_of(const char *type)
{
	if (strcmp(type, "openai") == 0 ||
	    strcmp(type, "openai-compatible") == 0)
		return &wrk_openai_proto;
	if (strcmp(type, "anthropic") == 0)
		return &wrk_anthropic_proto;
	return NULL;
}

int
wrk_net_type(const char *type)
{
	return proto_of(type) != NULL;
}

static struct net_provider *
provider_get(struct wrk_net *net, const char *name)
{
	struct net_provider *np;

	TAILQ_FOREACH(np, &net->providers, entry)
		if (strcmp(np->name, name) == 0)
			return np;
	if ((np = calloc(1, sizeof(*np))) == NULL)
		return NULL;
	snprintf(np->name, sizeof(np->name), "%s", name);
	TAILQ_INIT(&np->waiting);
	TAILQ_INSERT_TAIL(&net->providers, np, entry);
	return np;
}

static size_t
provider_cap(const Palyra__Ipc__ProviderConfig *pc)
{
	return pc != NULL && pc->max_concurrent != 0 ? pc->max_concurrent :
	    WRK_PROVIDER_CONCURRENT_DEFAULT;
}

static void
schedule(struct net_run *nr, uint64_t delay_ms)
{
	struct timeval	 tv;

	nr->state = NET_IDLE;
	tv.tv_sec = (time_t)(delay_ms / 1000);
	tv.tv_usec = (suseconds_t)(delay_ms % 1000) * 1000;
	evtimer_add(nr->timer, &tv);
}

/* Gives the slot back and hands it to the first run waiting for one. */
static void
slot_release(struct net_run *nr)
{
	struct net_provider *np = nr->np;
	struct net_run	*next;

	if (!nr->slot_held)
		return;
	nr->slot_held = 0;
	np->active--;
	if ((next = TAILQ_FIRST(&np->waiting)) == NULL)
		return;
	TAILQ_REMOVE(&np->waiting, next, wait_entry);
	next->queued = 0;
	next->slot_held = 1;
	np->active++;
	/* On its own loop turn: never inside another run's callback. */
	schedule(next, 0);
}

static void
reason_add(struct net_run *nr, const char *fmt, ...)
{
	size_t	 n = strlen(nr->reasons);
	va_list	 ap;

	if (n > 0 && n + 2 < sizeof(nr->reasons)) {
		memcpy(nr->reasons + n, "; ", 3);
		n += 2;
	}
	va_start(ap, fmt);
	vsnprintf(nr->reasons + n, sizeof(nr->reasons) - n, fmt, ap);
	va_end(ap);
}

/* Replaces every copy of the key in s (a provider's message may echo
 * what it was sent). */
static void
scrub_key(char *s, const Palyra__Ipc__ProviderConfig *pc)
{
	const char	*key = (const char *)pc->api_key.data;
	size_t		 klen = pc->api_key.len;
	char		*p;

	if (klen < 4)
		return;
	while ((p = memmem(s, strlen(s), key, klen)) != NULL) {
		memset(p, '*', klen);
		if (klen > 3)
			memmove(p + 3, p + klen, strlen(p + klen) + 1);
	}
}

/* Per-attempt state. */

static void
attempt_clear(struct net_run *nr)
{
	if (nr->xfer != NULL) {
		wrk_xfer_cancel(nr->xfer);
		nr->xfer = NULL;
	}
	if (nr->sse_ready && nr->in_feed == 0) {
		sse_fini(&nr->sse);
		nr->sse_ready = 0;
	}
	if (nr->stream_ready) {
		wrk_stream_fini(&nr->stream);
		nr->stream_ready = 0;
	}
	free(nr->errbody);
	nr->errbody = NULL;
	nr->errlen = 0;
	free(nr->pending);
	nr->pending = NULL;
	nr->pending_len = 0;
	free(nr->stash);
	nr->stash = NULL;
	nr->stash_len = 0;
	nr->paused = 0;
	nr->has_result = 0;
	nr->http_status = 0;
	nr->fail_type[0] = '\0';
	nr->fail_msg[0] = '\0';
	nr->relayed = 0;
}

static void
call_clear(struct net_run *nr)
{
	size_t	 i;

	for (i = 0; i < nr->ncalls; i++)
		wrk_tool_call_clear(&nr->calls[i]);
	free(nr->calls);
	nr->calls = NULL;
	nr->ncalls = 0;
	free(nr->reply);
	nr->reply = NULL;
	nr->reply_len = 0;
	nr->call_done = 0;
	nr->call_in = nr->call_out = 0;
}

static int
buf_append(char **buf, size_t *len, const char *s, size_t n)
{
	char	*grown;

	if ((grown = realloc(*buf, *len + n + 1)) == NULL)
		return -ENOMEM;
	memcpy(grown + *len, s, n);
	*len += n;
	grown[*len] = '\0';
	*buf = grown;
	return 0;
}

/* Stream callbacks (inside sse_feed). */

static int
flush_pending(struct net_run *nr)
{
	int	 r;

	if (nr->pending_len == 0)
		return 0;
	if (!wrk_run_may_emit(nr->run, 1))
		return 0;
	r = wrk_run_token(nr->run, nr->pending, nr->pending_len);
	if (r == 1)
		return GONE;
	if (r == -EAGAIN)
		return 0;
	if (r < 0)
		return wrk_run_fail(nr->run, "provider output refused"), GONE;
	nr->relayed = 1;
	free(nr->pending);
	nr->pending = NULL;
	nr->pending_len = 0;
	return 0;
}

static int
cb_text(void *arg, const char *text, size_t len)
{
	struct net_run	*nr = arg;
	int		 r;

	if (nr->streamed + len > WRK_REPLY_MAX)
		return wrk_stream_error(&nr->stream, "too_long",
		    "the reply is over %d bytes", WRK_REPLY_MAX);
	nr->streamed += len;
	if (buf_append(&nr->reply, &nr->reply_len, text, len) < 0)
		return wrk_stream_error(&nr->stream, "internal",
		    "out of memory");
	if (nr->pending_len == 0 && wrk_run_may_emit(nr->run, 1)) {
		r = wrk_run_token(nr->run, text, len);
		if (r == 1)
			return GONE;
		if (r == 0) {
			nr->relayed = 1;
			return 0;
		}
		if (r != -EAGAIN) {
			wrk_run_fail(nr->run, "provider output refused");
			return GONE;
		}
	}
	/* No room: kept until resume(), the transfer pauses. */
	if (buf_append(&nr->pending, &nr->pending_len, text, len) < 0)
		return wrk_stream_error(&nr->stream, "internal",
		    "out of memory");
	return 0;
}

static int
cb_tool_call(void *arg, const struct wrk_tool_call *call)
{
	struct net_run	*nr = arg;
	struct wrk_tool_call *grown, *c;

	grown = reallocarray(nr->calls, nr->ncalls + 1, sizeof(*grown));
	if (grown == NULL)
		return wrk_stream_error(&nr->stream, "internal",
		    "out of memory");
	nr->calls = grown;
	c = &nr->calls[nr->ncalls];
	memset(c, 0, sizeof(*c));
	if ((c->id = strdup(call->id)) == NULL ||
	    (c->name = strdup(call->name)) == NULL ||
	    (c->arguments = strdup(call->arguments)) == NULL) {
		wrk_tool_call_clear(c);
		return wrk_stream_error(&nr->stream, "internal",
		    "out of memory");
	}
	/* A call without an id still needs one to answer it by. */
	if (c->id[0] == '\0') {
		free(c->id);
		if (asprintf(&c->id, "call_%u_%zu", nr->turns,
		    nr->ncalls) == -1) {
			c->id = NULL;
			wrk_tool_call_clear(c);
			return wrk_stream_error(&nr->stream, "internal",
			    "out of memory");
		}
	}
	nr->ncalls++;
	return 0;
}

static int
cb_usage(void *arg, uint64_t input_tokens, uint64_t output_tokens)
{
	struct net_run	*nr = arg;

	nr->call_in = input_tokens;
	nr->call_out = output_tokens;
	return 0;
}

static int
cb_done(void *arg, const char *stop_reason)
{
	struct net_run	*nr = arg;

	nr->call_done = 1;
	log_debug("run %s: reply complete (%s), %zu tool call(s)",
	    nr->run->run_id, stop_reason[0] != '\0' ? stop_reason : "-",
	    nr->ncalls);
	return 0;
}

static int
cb_error(void *arg, const char *type, const char *message)
{
	struct net_run	*nr = arg;

	snprintf(nr->fail_type, sizeof(nr->fail_type), "%s", type);
	snprintf(nr->fail_msg, sizeof(nr->fail_msg), "%s", message);
	return -EPROTO;
}

static const struct wrk_proto_cbs net_cbs = {
	.text = cb_text,
	.tool_call = cb_tool_call,
	.usage = cb_usage,
	.done = cb_done,
	.error = cb_error,
};

static int
sse_cb(const struct sse_event *ev, void *arg)
{
	struct net_run	*nr = arg;

	return nr->proto->event(&nr->stream, ev);
}

/*
 * Parses body bytes, one line at a time so that it can stop right after
 * an event whose text found no room: the rest is stashed and the transfer
 * pauses. Returns 0, 1 (paused), -1 (abort: the stream failed) or GONE.
 */
static int
feed(struct net_run *nr, const char *buf, size_t len)
{
	const char	*nl;
	size_t		 n;
	int		 r;

	while (len > 0) {
		if (nr->pending_len > 0) {
			if (buf_append(&nr->stash, &nr->stash_len, buf,
			    len) < 0) {
				snprintf(nr->fail_msg, sizeof(nr->fail_msg),
				    "out of memory");
				return -1;
			}
			nr->paused = 1;
			return 1;
		}
		nl = memchr(buf, '\n', len);
		n = nl != NULL ? (size_t)(nl - buf) + 1 : len;
		nr->in_feed++;
		r = sse_feed(&nr->sse, buf, n);
		nr->in_feed--;
		if (nr->dead) {
			/* The run ended in a callback; stop() left us this. */
			if (nr->sse_ready)
				sse_fini(&nr->sse);
			free(nr);
			return GONE;
		}
		buf += n;
		len -= n;
		if (r != 0) {
			if (nr->fail_msg[0] == '\0') {
				snprintf(nr->fail_type, sizeof(nr->fail_type),
				    "bad_response");
				snprintf(nr->fail_msg, sizeof(nr->fail_msg),
				    "malformed event stream (%s)",
				    r == -EMSGSIZE ? "event over the size "
				    "limit" : r == -EILSEQ ? "NUL byte" :
				    strerror(r < 0 ? -r : EPROTO));
			}
			return -1;
		}
	}
	if (nr->pending_len > 0) {
		nr->paused = 1;
		return 1;
	}
	return 0;
}

/* Transfer callbacks. */

static int
on_head(struct wrk_xfer *x, long http_status, void *arg)
{
	struct net_run	*nr = arg;

	nr->http_status = http_status;
	if (http_status >= 200 && http_status <= 299)
		nr->call_billable = 1;
	return 0;
}

static int
on_body(struct wrk_xfer *x, const char *buf, size_t len, void *arg)
{
	struct net_run	*nr = arg;
	size_t		 take;
	int		 r;

	if (nr->http_status < 200 || nr->http_status > 299) {
		/* An error body: its start is enough to say what it is. */
		take = WRK_ERROR_BODY_MAX - nr->errlen;
		if (take > len)
			take = len;
		if (take > 0 && buf_append(&nr->errbody, &nr->errlen, buf,
		    take) < 0)
			return -1;
		return 0;
	}
	r = feed(nr, buf, len);
	/* GONE: the run ended inside; stop() already cancelled x. */
	return r == GONE ? -1 : r;
}

static void	process_result(struct net_run *);

static void
on_done(struct wrk_xfer *x, const struct wrk_xfer_result *res, void *arg)
{
	struct net_run	*nr = arg;

	nr->xfer = NULL;
	nr->result = *res;
	snprintf(nr->result_msg, sizeof(nr->result_msg), "%s",
	    res->message != NULL ? res->message : "");
	nr->result.message = nr->result_msg;
	nr->has_result = 1;
	/* Text still waiting for room is relayed first (resume()). */
	if (nr->pending_len > 0 || nr->stash_len > 0)
		return;
	process_result(nr);
}

/* Outcomes of an attempt. */

/*
 * The attempt failed. retryable: a 429, 5xx, connect or network error or
 * timeout, which another try of the same provider may get past.
 */
static void
attempt_failed(struct net_run *nr, int retryable, int64_t retry_after_ms,
    const char *what)
{
	struct wrk_run	*run = nr->run;
	const char	*name = run->providers[nr->pidx];
	char		 reason[REASONS_MAX + 64];
	int		 relayed = nr->relayed;

	if (nr->breaker_out) {
		nr->breaker_out = 0;
		if (retryable)
			wrk_breaker_failure(&nr->np->breaker, wrk_now_ms());
		else
			wrk_breaker_success(&nr->np->breaker);
	}
	attempt_clear(nr);
	slot_release(nr);
	log_info("run %s: provider %s: %s (attempt %u)", run->run_id, name,
	    what, nr->attempt);
	if (relayed) {
		/* The client saw part of this reply: no second try. */
		snprintf(reason, sizeof(reason), "%s%sprovider %s: %s",
		    nr->reasons, nr->reasons[0] != '\0' ? "; " : "", name,
		    what);
		wrk_run_fail(run, reason);
		return;
	}
	/* Whatever this attempt streamed was never relayed: forget it. */
	nr->streamed = nr->text_mark;
	call_clear(nr);
	if (retryable && nr->attempt < WRK_PROVIDER_ATTEMPTS &&
	    nr->np->breaker.state == WRK_BREAKER_CLOSED) {
		schedule(nr, wrk_backoff_ms(nr->attempt, retry_after_ms,
		    randombytes_random()));
		return;
	}
	if (nr->attempt > 1)
		reason_add(nr, "provider %s: %s after %u attempts", name, what,
		    nr->attempt);
	else
		reason_add(nr, "provider %s: %s", name, what);
	nr->pidx++;
	nr->attempt = 0;
	schedule(nr, 0);
}

/* What went wrong with a transfer, in words, with the HTTP layer's
 * detail (which names a timeout's value, never a header). */
static const char *
xfer_status_text(const struct wrk_xfer_result *res, char *buf, size_t size,
    int *retryable)
{
	const char	*detail = res->message != NULL ? res->message : "";
	const char	*what;

	*retryable = 1;
	switch (res->status) {
	case WRK_XFER_CONNECT:
		what = "cannot connect";
		break;
	case WRK_XFER_FIRST_BYTE:
		what = "first-byte timeout";
		break;
	case WRK_XFER_IDLE:
		what = "idle timeout";
		break;
	case WRK_XFER_NETWORK:
		what = "connection lost";
		break;
	case WRK_XFER_TOTAL:
		*retryable = 0;
		what = "total timeout";
		break;
	case WRK_XFER_ABORTED:
	case WRK_XFER_INTERNAL:
	case WRK_XFER_OK:
	default:
		*retryable = 0;
		what = "request failed";
		break;
	}
	snprintf(buf, size, "%s%s%s", what, detail[0] != '\0' ? ": " : "",
	    detail);
	return buf;
}

/* Stream error types worth another try while nothing was relayed. */
static int
stream_error_retryable(const char *type)
{
	return strcmp(type, "overloaded_error") == 0 ||
	    strcmp(type, "api_error") == 0 ||
	    strcmp(type, "rate_limit_error") == 0 ||
	    strcmp(type, "server_error") == 0 ||
	    strcmp(type, "truncated") == 0;
}

static void	call_complete(struct net_run *);

static void
process_result(struct net_run *nr)
{
	const Palyra__Ipc__ProviderConfig *pc =
	    find_config(nr->run->ctx, nr->run->providers[nr->pidx]);
	const struct wrk_xfer_result *res = &nr->result;
	char		 what[512], detail[320];
	int		 retryable, r;

	nr->has_result = 0;
	if (nr->fail_msg[0] != '\0') {
		/* The stream broke (we aborted it) or reported an error; the
		 * provider's own error types are named, ours speak alone. */
		int	 ours = nr->fail_type[0] == '\0' ||
		    strcmp(nr->fail_type, "bad_response") == 0 ||
		    strcmp(nr->fail_type, "truncated") == 0 ||
		    strcmp(nr->fail_type, "too_long") == 0 ||
		    strcmp(nr->fail_type, "internal") == 0;

		snprintf(what, sizeof(what), "%s%s%s", ours ? "" :
		    nr->fail_type, ours ? "" : ": ", nr->fail_msg);
		if (pc != NULL)
			scrub_key(what, pc);
		attempt_failed(nr, stream_error_retryable(nr->fail_type), -1,
		    what);
		return;
	}
	if (res->status != WRK_XFER_OK) {
		xfer_status_text(res, what, sizeof(what), &retryable);
		attempt_failed(nr, retryable, -1, what);
		return;
	}
	if (nr->http_status < 200 || nr->http_status > 299) {
		nr->proto->error_message(nr->errbody != NULL ? nr->errbody :
		    "", nr->errlen, detail, sizeof(detail));
		if (nr->http_status == 401 || nr->http_status == 403)
			/* Their message may quote part of the key. */
			snprintf(what, sizeof(what), "HTTP %ld: "
			    "authentication failed (check its api-key)",
			    nr->http_status);
		else
			snprintf(what, sizeof(what), "HTTP %ld%s%s",
			    nr->http_status, detail[0] != '\0' ? ": " : "",
			    detail);
		if (pc != NULL)
			scrub_key(what, pc);
		attempt_failed(nr, nr->http_status == 429 ||
		    nr->http_status >= 500 || nr->http_status == 408,
		    res->retry_after_ms, what);
		return;
	}
	/* The body ended: the protocol says whether the reply is whole. */
	if (sse_finish(&nr->sse) == 1)
		log_debug("run %s: stream ended inside an event",
		    nr->run->run_id);
	r = nr->proto->finish(&nr->stream);
	if (r == GONE)
		return;
	if (r != 0 || !nr->call_done) {
		if (nr->fail_msg[0] == '\0')
			snprintf(nr->fail_msg, sizeof(nr->fail_msg),
			    "the stream ended before the reply was complete");
		snprintf(what, sizeof(what), "%s", nr->fail_msg);
		attempt_failed(nr, stream_error_retryable(nr->fail_type[0] ?
		    nr->fail_type : "truncated"), -1, what);
		return;
	}
	if (nr->breaker_out) {
		nr->breaker_out = 0;
		wrk_breaker_success(&nr->np->breaker);
	}
	attempt_clear(nr);
	slot_release(nr);
	call_settle(nr);
	call_complete(nr);
}

/* The turn loop. */

static void
call_complete(struct net_run *nr)
{
	struct wrk_run	*run = nr->run;
	char		 reason[128];

	nr->in += nr->call_in;
	nr->out += nr->call_out;
	nr->turns++;
	if (nr->ncalls > 0) {
		/* The agent's limits (palyrad.conf(5)): a reply that asks
		 * for more tool calls than are left, or for another call
		 * when the turns are used up, fails the run. */
		if (nr->tool_calls + nr->ncalls > run->max_tool_calls) {
			snprintf(reason, sizeof(reason), "agent max-tool-calls "
			    "limit of %u reached", run->max_tool_calls);
			wrk_run_fail(run, reason);
			return;
		}
		if (nr->turns >= run->max_turns) {
			snprintf(reason, sizeof(reason), "agent max-turns "
			    "limit of %u reached", run->max_turns);
			wrk_run_fail(run, reason);
			return;
		}
		if (wrk_conv_add_calls(&nr->conv, nr->reply != NULL ?
		    nr->reply : "", nr->reply_len, nr->calls,
		    nr->ncalls) < 0) {
			nr->calls = NULL;
			nr->ncalls = 0;
			wrk_run_fail(run, "out of memory");
			return;
		}
		nr->calls = NULL;
		nr->ncalls = 0;
		nr->tool_msg = nr->conv.nmsgs - 1;
		nr->tool_next = 0;
		nr->state = NET_TOOLS;
		tools_step(nr);
		return;
	}
	if (wrk_conv_add_text(&nr->conv, WRK_MSG_ASSISTANT, nr->reply != NULL ?
	    nr->reply : "", nr->reply_len) < 0) {
		wrk_run_fail(run, "out of memory");
		return;
	}
	nr->state = NET_FINISHING;
	finish_step(nr);
}

/*
 * An answer. Follow-up input waiting (prepare.c) is the next user turn,
 * while turns are left: this answer gets its own FinalMessage and the
 * run goes on. Else the run completes with the answer and the usage of
 * all its calls. Waits in resume() for room in the pipeline.
 */
static void
finish_step(struct net_run *nr)
{
	struct wrk_run	*run = nr->run;
	char		*input;
	int		 r;

	if (run->ninputs > 0 && nr->turns < run->max_turns) {
		if (!wrk_run_may_emit(run, 1))
			return;
		if (wrk_run_final(run, nr->reply != NULL ? nr->reply : "",
		    nr->reply_len) != 0)
			return;		/* ended, or journald is gone */
		if ((input = wrk_run_next_input(run)) == NULL) {
			wrk_run_fail(run, "follow-up input lost");
			return;
		}
		r = wrk_conv_add_text(&nr->conv, WRK_MSG_USER, input,
		    strlen(input));
		free(input);
		if (r < 0) {
			wrk_run_fail(run, "out of memory");
			return;
		}
		nr->state = NET_IDLE;
		call_begin(nr);
		return;
	}
	if (!wrk_run_may_emit(run, 3))
		return;
	wrk_run_complete(run, nr->reply != NULL ? nr->reply : "",
	    nr->reply_len, nr->in, nr->out);
}

/* The gate has the result of the call in flight: its TOOL_RESULT next. */
static void
tool_done(struct wrk_run *run, void *arg)
{
	struct net_run	*nr = arg;

	free(nr->tool_result);
	nr->tool_result = wrk_tool_take_result(run, &nr->tool_is_error);
	if (nr->tool_result == NULL) {
		wrk_run_fail(run, "tool result lost");
		return;
	}
	nr->state = NET_TOOLS;
	tools_step(nr);
}

/* Runs the reply's tool calls in order, one TOOL_CALL and one TOOL_RESULT
 * event each, each call through the tool gate (tools.h), which may wait
 * for an approval or a client (tool_done() goes on); waits in resume()
 * when the pipeline has no room. */
static void
tools_step(struct net_run *nr)
{
	struct wrk_run	*run = nr->run;
	const struct wrk_tool_call *call;
	int		 r;

	while (nr->tool_next < nr->conv.msgs[nr->tool_msg].ncalls) {
		call = &nr->conv.msgs[nr->tool_msg].calls[nr->tool_next];
		if (!wrk_run_may_emit(run, 2))
			return;
		if (!nr->tool_call_emitted) {
			r = wrk_run_tool_call(run, call->id, call->name,
			    call->arguments);
			if (r == 1 || r == -EAGAIN)
				return;
			if (r < 0) {
				wrk_run_fail(run, "journal write failed");
				return;
			}
			nr->tool_call_emitted = 1;
			nr->tool_calls++;
			log_debug("run %s: tool %s called", run->run_id,
			    call->name);
			r = wrk_tool_begin(run, call->id, call->name,
			    call->arguments, tool_done, nr);
			if (r < 0) {
				wrk_run_fail(run, "out of memory");
				return;
			}
			if (r == 0) {
				nr->state = NET_TOOL_WAIT;
				return;
			}
			nr->tool_result = wrk_tool_take_result(run,
			    &nr->tool_is_error);
			if (nr->tool_result == NULL) {
				wrk_run_fail(run, "tool result lost");
				return;
			}
		}
		r = wrk_run_tool_result(run, call->id, call->name,
		    nr->tool_is_error, nr->tool_result);
		if (r == 1 || r == -EAGAIN)
			return;
		if (r < 0) {
			wrk_run_fail(run, "journal write failed");
			return;
		}
		/* call may move: the conversation grows. */
		r = wrk_conv_add_result(&nr->conv, call->id, call->name,
		    nr->tool_result, nr->tool_is_error);
		free(nr->tool_result);
		nr->tool_result = NULL;
		nr->tool_call_emitted = 0;
		if (r < 0) {
			wrk_run_fail(run, "out of memory");
			return;
		}
		nr->tool_next++;
	}
	call_begin(nr);
}

/*
 * Budgets (budget.h): the input estimate of a call is the byte length of
 * everything sent as its prompt, as no tokenizer counts more tokens than
 * bytes, plus a margin per message for the roles and separators the
 * provider adds around each.
 */
#define PROMPT_MESSAGE_MARGIN	16

static uint64_t
prompt_bytes(const struct wrk_run *run, const struct wrk_conv *conv,
    const char *tools_json)
{
	const struct wrk_msg *m;
	uint64_t	 n = PROMPT_MESSAGE_MARGIN;
	size_t		 i, j;

	n += strlen(run->system_prompt);
	if (tools_json != NULL)
		n += strlen(tools_json);
	for (i = 0; i < conv->nmsgs; i++) {
		m = &conv->msgs[i];
		n += PROMPT_MESSAGE_MARGIN;
		if (m->text != NULL)
			n += strlen(m->text);
		if (m->call_id != NULL)
			n += strlen(m->call_id);
		if (m->tool_name != NULL)
			n += strlen(m->tool_name);
		for (j = 0; j < m->ncalls; j++)
			n += PROMPT_MESSAGE_MARGIN + strlen(m->calls[j].id) +
			    strlen(m->calls[j].name) +
			    strlen(m->calls[j].arguments);
	}
	return n;
}

/* The max output tokens of each call: asked of the provider and reserved. */
static uint32_t
call_max_output(const struct wrk_run *run)
{
	return run->max_output_tokens != 0 ? run->max_output_tokens :
	    WRK_BUDGET_DEFAULT_MAX_OUTPUT;
}

/* Settles the call's reservation with what the provider reported; an
 * answer that never began (an HTTP error, no connection) cost nothing. */
static void
call_settle(struct net_run *nr)
{
	struct wrk_run	*run = nr->run;
	int		 reported = nr->call_in != 0 || nr->call_out != 0;

	if (!nr->call_reserved)
		return;
	nr->call_reserved = 0;
	wrk_budget_settle(run, run->provider_name, run->model, nr->call_in,
	    nr->call_out, reported || !nr->call_billable);
	nr->call_billable = 0;
}

static void
call_reserved(struct wrk_run *run, void *arg, int ok, const char *why)
{
	struct net_run	*nr = arg;

	if (!ok) {
		wrk_run_fail_status(run, GRPC_STATUS_RESOURCE_EXHAUSTED, why);
		return;
	}
	nr->call_reserved = 1;
	nr->call_billable = 0;
	nr->state = NET_IDLE;
	attempt_begin(nr);
}

/*
 * Each call (turn) reserves its worst case first: at the highest price of
 * the providers it may still fail over to, as it may end on any of them.
 */
static void
call_begin(struct net_run *nr)
{
	const Palyra__Ipc__ProviderConfig *pc;
	struct wrk_run	*run = nr->run;
	const char	*model = run->model;
	uint64_t	 in, out, cost, best = 0;
	size_t		 i;
	int		 r;

	call_clear(nr);
	nr->text_mark = nr->streamed;
	nr->attempt = 0;
	in = prompt_bytes(run, &nr->conv, wrk_tools_declarations(run));
	out = call_max_output(run);
	for (i = nr->pidx; i < run->nproviders; i++) {
		if ((pc = find_config(run->ctx, run->providers[i])) == NULL ||
		    proto_of(pc->type) == NULL)
			continue;
		cost = wrk_budget_cost(run->ctx, pc->model, in, out);
		if (i == nr->pidx || cost > best) {
			best = cost;
			model = pc->model;
		}
	}
	nr->state = NET_RESERVING;
	r = wrk_budget_reserve(run, model, in, out, call_reserved, nr);
	if (r < 0)
		wrk_run_fail(run, r == -ENOTCONN ? "journal unavailable" :
		    r == -ENOBUFS ? "journal queue full" :
		    "budget reservation failed");
}

/* The request of an attempt. */

/* "prefix" followed by the key, which may hold no space or control byte
 * (it would end or split the header). 0, -E2BIG or -EINVAL. */
static int
key_header(char *buf, size_t size, const char *prefix, const uint8_t *key,
    size_t len)
{
	size_t	 i, n = strlen(prefix);

	if (n + len + 1 > size)
		return -E2BIG;
	for (i = 0; i < len; i++)
		if (key[i] <= 0x20 || key[i] == 0x7f)
			return -EINVAL;
	memcpy(buf, prefix, n);
	memcpy(buf + n, key, len);
	buf[n + len] = '\0';
	return 0;
}

/*
 * Starts the transfer of an attempt. Returns 0, or -1 with what set for a
 * failure that no retry of this provider can cure.
 */
static int
attempt_start(struct net_run *nr, const Palyra__Ipc__ProviderConfig *pc,
    char *what, size_t whatlen)
{
	struct wrk_run	*run = nr->run;
	struct wrk_proto_request preq;
	struct wrk_xfer_req req;
	struct wrk_xfer_cbs cbs = { on_head, on_body, on_done };
	char		 url[2048], auth[HEADER_MAX];
	const char	*base = pc->base_url;
	char		*body = NULL;
	size_t		 blen, n;
	int		 r, is_anthropic = nr->proto == &wrk_anthropic_proto;

	if (base[0] == '\0')
		base = is_anthropic ? ANTHROPIC_DEFAULT_URL :
		    strcmp(pc->type, "openai") == 0 ? OPENAI_DEFAULT_URL : "";
	n = strlen(base);
	while (n > 0 && base[n - 1] == '/')
		n--;
	if (n == 0) {
		snprintf(what, whatlen, "no base-url");
		return -1;
	}
	if ((size_t)snprintf(url, sizeof(url), "%.*s%s", (int)n, base,
	    nr->proto->path) >= sizeof(url)) {
		snprintf(what, whatlen, "base-url too long");
		return -1;
	}
	if (pc->api_key.len == 0 && pc->api_key_vault[0] != '\0') {
		/* The secret's name, never a value (worker/vault.c). */
		snprintf(what, whatlen, "api-key vault:%s: the tenant's vault "
		    "holds no secret %s", pc->api_key_vault,
		    pc->api_key_vault);
		nr->vault_missing = 1;
		return -1;
	}
	if (pc->api_key.len == 0 && strcmp(pc->type,
	    "openai-compatible") != 0) {
		snprintf(what, whatlen, "no api-key (its variable or file "
		    "is empty or unset)");
		return -1;
	}

	memset(&preq, 0, sizeof(preq));
	preq.model = pc->model;
	preq.system = run->system_prompt;
	preq.conv = &nr->conv;
	preq.max_tokens = call_max_output(run);
	preq.temperature = run->temperature;
	preq.tools_json = wrk_tools_declarations(run);
	preq.openai_native = strcmp(pc->type, "openai") == 0;
	if ((r = nr->proto->request(&preq, &body, &blen)) < 0) {
		snprintf(what, whatlen, "cannot build the request: %s",
		    strerror(-r));
		return -1;
	}

	memset(&req, 0, sizeof(req));
	req.url = url;
	req.method = "POST";
	req.headers[req.nheaders++] = "Content-Type: application/json";
	req.headers[req.nheaders++] = "Accept: text/event-stream";
	auth[0] = '\0';
	if (pc->api_key.len > 0) {
		r = key_header(auth, sizeof(auth), is_anthropic ?
		    "x-api-key: " : "Authorization: Bearer ",
		    pc->api_key.data, pc->api_key.len);
		if (r < 0) {
			sodium_memzero(auth, sizeof(auth));
			free(body);
			snprintf(what, whatlen, "api-key %s", r == -E2BIG ?
			    "too long" : "holds a space or control byte");
			return -1;
		}
		req.headers[req.nheaders++] = auth;
	}
	if (is_anthropic)
		req.headers[req.nheaders++] = "anthropic-version: "
		    ANTHROPIC_VERSION;
	req.body = body;
	req.body_len = blen;
	req.connect_ms = pc->timeout_connect_ms;
	req.first_byte_ms = pc->timeout_first_byte_ms;
	req.idle_ms = pc->timeout_idle_ms;
	req.total_ms = pc->timeout_total_ms;
	req.max_response = WRK_PROVIDER_RESPONSE_MAX;

	wrk_stream_init(&nr->stream, &net_cbs, nr);
	nr->stream.tools_json = preq.tools_json;
	nr->stream_ready = 1;
	if (sse_init(&nr->sse, WRK_SSE_EVENT_MAX, sse_cb, nr) < 0) {
		sodium_memzero(auth, sizeof(auth));
		free(body);
		return -ENOMEM;
	}
	nr->sse_ready = 1;
	nr->xfer = wrk_xfer_start(nr->net->http, &req, &cbs, nr);
	r = nr->xfer == NULL ? -errno : 0;
	sodium_memzero(auth, sizeof(auth));
	free(body);
	return r;
}

/* Sets the run's provider and model (named by its usage event). */
static int
run_set_provider(struct wrk_run *run, const char *name, const char *model)
{
	char	*n, *m;

	if (strcmp(run->provider_name, name) == 0 &&
	    strcmp(run->model, model) == 0)
		return 0;
	if ((n = strdup(name)) == NULL || (m = strdup(model)) == NULL) {
		free(n);
		return -ENOMEM;
	}
	free(run->provider_name);
	free(run->model);
	run->provider_name = n;
	run->model = m;
	return 0;
}

/*
 * Takes the next step towards a request on the current provider of the
 * failover list: skips what cannot serve, waits for a slot, asks the
 * breaker, starts the transfer. Ends the run when no provider is left.
 */
static void
attempt_begin(struct net_run *nr)
{
	const Palyra__Ipc__ProviderConfig *pc;
	struct wrk_run	*run = nr->run;
	const char	*name;
	char		 what[256], reason[REASONS_MAX + 64];
	int		 r;

	for (;; nr->pidx++, nr->attempt = 0) {
		if (nr->pidx >= run->nproviders) {
			snprintf(reason, sizeof(reason), "%s",
			    nr->reasons[0] != '\0' ? nr->reasons :
			    "no usable provider");
			if (nr->vault_missing)
				wrk_run_fail_status(run,
				    GRPC_STATUS_FAILED_PRECONDITION, reason);
			else
				wrk_run_fail(run, reason);
			return;
		}
		name = run->providers[nr->pidx];
		pc = find_config(run->ctx, name);
		if (pc == NULL || (nr->proto = proto_of(pc->type)) == NULL) {
			if (nr->slot_held)
				slot_release(nr);
			reason_add(nr, "provider %s: %s", name, pc == NULL ?
			    "not configured" : "not a network provider");
			continue;
		}
		if (nr->np != NULL && strcmp(nr->np->name, name) != 0 &&
		    nr->slot_held)
			slot_release(nr);
		if ((nr->np = provider_get(nr->net, name)) == NULL) {
			wrk_run_fail(run, "out of memory");
			return;
		}
		/* An open breaker fails over at once, without queueing. */
		if (nr->np->breaker.state == WRK_BREAKER_OPEN &&
		    wrk_now_ms() - nr->np->breaker.opened_ms <
		    WRK_BREAKER_OPEN_MS) {
			if (nr->slot_held)
				slot_release(nr);
			reason_add(nr, "provider %s: circuit open", name);
			continue;
		}
		if (!nr->slot_held) {
			if (nr->np->active >= provider_cap(pc)) {
				nr->state = NET_WAITING;
				nr->queued = 1;
				TAILQ_INSERT_TAIL(&nr->np->waiting, nr,
				    wait_entry);
				return;
			}
			nr->np->active++;
			nr->slot_held = 1;
		}
		if (!wrk_breaker_allow(&nr->np->breaker, wrk_now_ms())) {
			/* Half-open, and another run holds the probe. */
			slot_release(nr);
			reason_add(nr, "provider %s: circuit open", name);
			continue;
		}
		nr->breaker_out = 1;
		if (run_set_provider(run, name, pc->model[0] != '\0' ?
		    pc->model : "") < 0) {
			wrk_run_fail(run, "out of memory");
			return;
		}
		nr->attempt++;
		what[0] = '\0';
		r = attempt_start(nr, pc, what, sizeof(what));
		if (r == 0) {
			nr->state = NET_STREAMING;
			return;
		}
		if (what[0] == '\0')
			snprintf(what, sizeof(what), "cannot start the "
			    "request: %s", strerror(-r));
		/* Its configuration, not its health: no breaker verdict. */
		nr->breaker_out = 0;
		wrk_breaker_release(&nr->np->breaker);
		attempt_clear(nr);
		slot_release(nr);
		if (r == -ENOMEM) {
			wrk_run_fail(run, "out of memory");
			return;
		}
		reason_add(nr, "provider %s: %s", name, what);
	}
}

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct net_run	*nr = arg;

	/* The run's first call reserves first, as every later one. */
	if (!nr->call_reserved) {
		call_begin(nr);
		return;
	}
	attempt_begin(nr);
}

/* The provider interface (worker.h). */

static struct wrk_net *
net_get(struct wrk_ctx *ctx)
{
	struct wrk_net	*net;

	if (ctx->net != NULL)
		return ctx->net;
	if ((net = calloc(1, sizeof(*net))) == NULL)
		return NULL;
	TAILQ_INIT(&net->providers);
	if ((net->http = wrk_http_new(ctx->base)) == NULL) {
		free(net);
		return NULL;
	}
	ctx->net = net;
	return net;
}

struct wrk_http *
wrk_net_http(struct wrk_ctx *ctx)
{
	struct wrk_net	*net = net_get(ctx);

	return net != NULL ? net->http : NULL;
}

void
wrk_net_free(struct wrk_ctx *ctx)
{
	struct wrk_net	*net = ctx->net;
	struct net_provider *np;

	if (net == NULL)
		return;
	while ((np = TAILQ_FIRST(&net->providers)) != NULL) {
		TAILQ_REMOVE(&net->providers, np, entry);
		free(np);
	}
	wrk_http_free(net->http);
	free(net);
	ctx->net = NULL;
}

static int
net_start(struct wrk_run *run)
{
	struct net_run	*nr;
	size_t		 i;

	if ((nr = calloc(1, sizeof(*nr))) == NULL)
		return -ENOMEM;
	nr->run = run;
	wrk_conv_init(&nr->conv);
	if ((nr->net = net_get(run->ctx)) == NULL ||
	    (nr->timer = evtimer_new(run->ctx->base, timer_cb, nr)) == NULL) {
		free(nr);
		return -ENOMEM;
	}
	for (i = 0; i < run->nhistory; i++) {
		if (wrk_conv_add_text(&nr->conv, WRK_MSG_USER,
		    run->history[i].input, strlen(run->history[i].input)) < 0 ||
		    (run->history[i].output != NULL &&
		    wrk_conv_add_text(&nr->conv, WRK_MSG_ASSISTANT,
		    run->history[i].output,
		    strlen(run->history[i].output)) < 0))
			goto fail;
	}
	if (wrk_conv_add_text(&nr->conv, WRK_MSG_USER, run->input,
	    strlen(run->input)) < 0)
		goto fail;
	run->provider_state = nr;
	/* The first step on its own loop turn, as the offline model does. */
	schedule(nr, 0);
	return 0;
fail:
	wrk_conv_free(&nr->conv);
	event_free(nr->timer);
	free(nr);
	return -ENOMEM;
}

static void
net_stop(struct wrk_run *run)
{
	struct net_run	*nr = run->provider_state;

	if (nr == NULL)
		return;
	run->provider_state = NULL;
	if (nr->queued)
		TAILQ_REMOVE(&nr->np->waiting, nr, wait_entry);
	if (nr->breaker_out)
		wrk_breaker_release(&nr->np->breaker);
	attempt_clear(nr);
	slot_release(nr);
	/* The run ends inside a call: what it reported is what it cost. */
	call_settle(nr);
	call_clear(nr);
	wrk_conv_free(&nr->conv);
	event_free(nr->timer);
	free(nr->tool_result);
	if (nr->in_feed > 0) {
		nr->dead = 1;
		return;
	}
	free(nr);
}

static void
net_resume(struct wrk_run *run)
{
	struct net_run	*nr = run->provider_state;
	char		*stash;
	size_t		 len;
	int		 r;

	if (nr == NULL)
		return;
	switch (nr->state) {
	case NET_STREAMING:
		if (flush_pending(nr) == GONE || nr->pending_len > 0)
			return;
		if (nr->stash_len > 0) {
			stash = nr->stash;
			len = nr->stash_len;
			nr->stash = NULL;
			nr->stash_len = 0;
			r = feed(nr, stash, len);
			free(stash);
			if (r == GONE || r == 1)
				return;
			if (r < 0) {
				/* The stream broke in what was kept. */
				if (nr->xfer != NULL) {
					wrk_xfer_cancel(nr->xfer);
					nr->xfer = NULL;
					nr->result.status = WRK_XFER_ABORTED;
					nr->result.message = NULL;
				}
				process_result(nr);
				return;
			}
		}
		if (nr->has_result) {
			process_result(nr);
			return;
		}
		if (nr->paused && nr->xfer != NULL) {
			nr->paused = 0;
			wrk_xfer_pause(nr->xfer, 0);
		}
		break;
	case NET_TOOLS:
		tools_step(nr);
		break;
	case NET_FINISHING:
		finish_step(nr);
		break;
	case NET_TOOL_WAIT:
	case NET_IDLE:
	case NET_WAITING:
	case NET_RESERVING:
		break;
	}
}

/*
 * Recovery (recover.c): the conversation of a run whose worker died while
 * a tool call waited for an approval, rebuilt from its committed events:
 * the input, each reply's text (its tokens; a FinalMessage ends a turn,
 * and the next follow-up input is the next user message), each reply's
 * tool calls with their results, up to the pending call. Input not yet
 * taken is queued again. The reply's calls after the pending one were
 * never journaled and are lost: the model is asked again after it.
 */
struct rebuild {
	char			*text;
	size_t			 len;
	struct wrk_tool_call	*calls;
	size_t			 ncalls;
	const Palyra__V1__ToolResult **results;
	size_t			 nresults;
};

static void
rebuild_clear(struct rebuild *rb)
{
	size_t	 i;

	free(rb->text);
	for (i = 0; i < rb->ncalls; i++)
		wrk_tool_call_clear(&rb->calls[i]);
	free(rb->calls);
	free(rb->results);
	memset(rb, 0, sizeof(*rb));
}

/* The reply with tool calls so far, and their results, join the
 * conversation. 0 or -ENOMEM. */
static int
rebuild_flush(struct net_run *nr, struct rebuild *rb)
{
	const Palyra__V1__ToolResult *tr;
	size_t	 i;
	int	 r;

	if (rb->ncalls == 0)
		return 0;
	r = wrk_conv_add_calls(&nr->conv, rb->text != NULL ? rb->text : "",
	    rb->len, rb->calls, rb->ncalls);
	rb->calls = NULL;
	rb->ncalls = 0;
	if (r < 0)
		return r;
	nr->turns++;
	for (i = 0; i < rb->nresults; i++) {
		tr = rb->results[i];
		if (wrk_conv_add_result(&nr->conv, tr->id, tr->name,
		    tr->content, tr->is_error) < 0)
			return -ENOMEM;
	}
	rb->nresults = 0;
	free(rb->text);
	rb->text = NULL;
	rb->len = 0;
	return 0;
}

static int
rebuild_event(struct net_run *nr, struct rebuild *rb,
    const Palyra__V1__RunEvent *ev, size_t *taken)
{
	struct wrk_run	*run = nr->run;
	struct wrk_tool_call *grown, *c;
	const Palyra__V1__ToolResult **rgrown;
	char		**igrown, *text;

	switch (ev->event_case) {
	case PALYRA__V1__RUN_EVENT__EVENT_TOKEN:
		/* Text after results: the next reply. */
		if (rb->ncalls > 0 && rb->nresults == rb->ncalls &&
		    rebuild_flush(nr, rb) < 0)
			return -ENOMEM;
		nr->streamed += strlen(ev->token->text);
		return buf_append(&rb->text, &rb->len, ev->token->text,
		    strlen(ev->token->text));
	case PALYRA__V1__RUN_EVENT__EVENT_TOOL_CALL:
		grown = reallocarray(rb->calls, rb->ncalls + 1,
		    sizeof(*grown));
		if (grown == NULL)
			return -ENOMEM;
		rb->calls = grown;
		c = &rb->calls[rb->ncalls];
		memset(c, 0, sizeof(*c));
		if ((c->id = strdup(ev->tool_call->id)) == NULL ||
		    (c->name = strdup(ev->tool_call->name)) == NULL ||
		    (c->arguments = strdup(ev->tool_call->arguments_json)) ==
		    NULL) {
			wrk_tool_call_clear(c);
			return -ENOMEM;
		}
		rb->ncalls++;
		nr->tool_calls++;
		return 0;
	case PALYRA__V1__RUN_EVENT__EVENT_TOOL_RESULT:
		rgrown = reallocarray(rb->results, rb->nresults + 1,
		    sizeof(*rgrown));
		if (rgrown == NULL)
			return -ENOMEM;
		rb->results = rgrown;
		rb->results[rb->nresults++] = ev->tool_result;
		return 0;
	case PALYRA__V1__RUN_EVENT__EVENT_INPUT:
		if ((text = strdup(ev->input->text)) == NULL ||
		    (igrown = reallocarray(run->inputs, run->ninputs + 1,
		    sizeof(*igrown))) == NULL) {
			free(text);
			return -ENOMEM;
		}
		run->inputs = igrown;
		run->inputs[run->ninputs++] = text;
		return 0;
	case PALYRA__V1__RUN_EVENT__EVENT_FINAL:
		if (rebuild_flush(nr, rb) < 0 ||
		    wrk_conv_add_text(&nr->conv, WRK_MSG_ASSISTANT,
		    ev->final->text, strlen(ev->final->text)) < 0)
			return -ENOMEM;
		nr->turns++;
		free(rb->text);
		rb->text = NULL;
		rb->len = 0;
		if (*taken < run->ninputs) {
			if (wrk_conv_add_text(&nr->conv, WRK_MSG_USER,
			    run->inputs[*taken], strlen(run->inputs[*taken])) <
			    0)
				return -ENOMEM;
			(*taken)++;
		}
		return 0;
	default:
		return 0;
	}
}

static int
net_recover(struct wrk_run *run, const Palyra__Ipc__RecoveredRun *rr)
{
	const Palyra__V1__ToolCall *call = wrk_recover_pending_call(rr);
	const Palyra__V1__RunEvent *ev;
	struct rebuild	 rb;
	struct net_run	*nr;
	size_t		 i, taken = 0;
	int		 r = -ENOMEM;

	if (call == NULL)
		return -EINVAL;
	if ((nr = calloc(1, sizeof(*nr))) == NULL)
		return -ENOMEM;
	nr->run = run;
	wrk_conv_init(&nr->conv);
	if ((nr->net = net_get(run->ctx)) == NULL ||
	    (nr->timer = evtimer_new(run->ctx->base, timer_cb, nr)) == NULL) {
		free(nr);
		return -ENOMEM;
	}
	/* From here net_stop() frees what is made. */
	run->provider_state = nr;
	memset(&rb, 0, sizeof(rb));
	for (i = 0; i < run->nhistory; i++)
		if (wrk_conv_add_text(&nr->conv, WRK_MSG_USER,
		    run->history[i].input, strlen(run->history[i].input)) < 0 ||
		    wrk_conv_add_text(&nr->conv, WRK_MSG_ASSISTANT,
		    run->history[i].output,
		    strlen(run->history[i].output)) < 0)
			goto out;
	if (wrk_conv_add_text(&nr->conv, WRK_MSG_USER, run->input,
	    strlen(run->input)) < 0)
		goto out;
	for (i = 0; i < rr->n_events; i++) {
		ev = rr->events[i];
		if ((ev->event_case == PALYRA__V1__RUN_EVENT__EVENT_TOKEN &&
		    ev->token == NULL) ||
		    (ev->event_case == PALYRA__V1__RUN_EVENT__EVENT_TOOL_CALL &&
		    ev->tool_call == NULL) ||
		    (ev->event_case ==
		    PALYRA__V1__RUN_EVENT__EVENT_TOOL_RESULT &&
		    ev->tool_result == NULL) ||
		    (ev->event_case == PALYRA__V1__RUN_EVENT__EVENT_INPUT &&
		    ev->input == NULL) ||
		    (ev->event_case == PALYRA__V1__RUN_EVENT__EVENT_FINAL &&
		    ev->final == NULL)) {
			r = -EINVAL;
			goto out;
		}
		if (rebuild_event(nr, &rb, ev, &taken) < 0)
			goto out;
		if (ev->event_case == PALYRA__V1__RUN_EVENT__EVENT_TOOL_CALL &&
		    ev->tool_call == call)
			break;	/* the pending call: nothing after it counts */
	}
	/* The pending call is the last of the reply rebuilt. */
	if (rb.ncalls == 0 || strcmp(rb.calls[rb.ncalls - 1].id, call->id) !=
	    0) {
		r = -EINVAL;
		goto out;
	}
	nr->tool_next = rb.ncalls - 1;
	if (rebuild_flush(nr, &rb) < 0)
		goto out;
	for (i = nr->conv.nmsgs; i > 0; i--)
		if (nr->conv.msgs[i - 1].role == WRK_MSG_ASSISTANT)
			break;
	nr->tool_msg = i - 1;
	/* The results before the pending call are in the conversation. */
	nr->tool_call_emitted = 1;
	nr->state = NET_TOOL_WAIT;
	for (i = 0; i < taken; i++)
		free(wrk_run_next_input(run));
	rebuild_clear(&rb);
	return wrk_tool_recover(run, call->id, call->name,
	    call->arguments_json, rr->approval, tool_done, nr);
out:
	rebuild_clear(&rb);
	return r;
}

const struct wrk_provider_ops wrk_net_provider = {
	.type = "network",
	.start = net_start,
	.stop = net_stop,
	.resume = net_resume,
	.recover = net_recover,
};
