/*
 * fetch.c: the built-in tool http.fetch (fetch.h, DESIGN section 9): GET
 * or HEAD of an allow-listed http(s) URL for a model.
 *
 * Runs in palyra-worker, on its loop, through the worker's one HTTP
 * engine (http.h). Everything here is driven by a model, so every URL,
 * the first and each redirect hop, is checked before a connection is
 * made: the scheme (http, https), no userinfo, a host on the agent's
 * (else the tenant's) egress allow-list with a matching port, and every
 * address the transfer could connect to: a numeric host directly, a name
 * through the addresses it was pinned to before the sandbox (http.c
 * connects to nothing else, and the worker never resolves a name). An
 * address that is not public is refused unless the entry allows private
 * addresses. curl follows no redirect; this file does, hop by hop. The
 * body is cut at max-size (and at what fits WRK_TOOL_RESULT_MAX), the
 * whole fetch is timed, and a content type not listed is refused.
 *
 * Every answer reaches the caller through done, from the loop (never
 * from inside wrk_fetch_start or a curl callback): a JSON result, or a
 * sentence saying why the fetch was refused or failed. The checks and
 * texts themselves are in fetch_check.c.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <jansson.h>

#include "fetch.h"
#include "fetch_int.h"
#include "http.h"
#include "limits.h"
#include "log.h"
#include "tools.h"
#include "worker.h"

const char wrk_fetch_schema[] =
    "{\"type\":\"object\","
    "\"properties\":{"
    "\"url\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":2048,"
    "\"description\":\"The http or https URL to fetch; its host must be "
    "on the agent's egress allow-list.\"},"
    "\"method\":{\"type\":\"string\",\"enum\":[\"GET\",\"HEAD\"],"
    "\"description\":\"GET (the default) or HEAD.\"},"
    "\"headers\":{\"type\":\"object\",\"maxProperties\":16,"
    "\"additionalProperties\":{\"type\":\"string\",\"maxLength\":1024},"
    "\"description\":\"Extra request headers (not Host, Authorization, "
    "Cookie, Proxy-* or hop-by-hop headers).\"}},"
    "\"required\":[\"url\"],"
    "\"additionalProperties\":false}";

/* What the loop does next for a fetch (step_ev). */
enum fetch_step {
	FETCH_STEP_NONE = 0,
	FETCH_STEP_REDIRECT, /* follow st->location */
	FETCH_STEP_FINISH,   /* hand st->result to done */
};

struct wrk_fetch_state {
	struct wrk_run *run;
	wrk_fetch_fn done;
	void *arg;
	/* The policy as the fetch started with it (an owned copy: a reload
	 * may replace the worker's config meanwhile). */
	Palyra__Ipc__FetchPolicy *policy;
	uint64_t max_bytes;
	uint64_t timeout_ms;
	unsigned max_redirects;
	int head; /* HEAD, not GET */
	char *headers[WRK_FETCH_HEADERS_MAX];
	size_t nheaders;

	char *url;		  /* the hop under way */
	int allow_private;	  /* of its allow entry */
	unsigned redirects;	  /* followed so far */
	struct timespec deadline; /* CLOCK_MONOTONIC */
	struct wrk_xfer *xfer;
	struct event *timeout_ev;
	struct event *step_ev;
	enum fetch_step step;
	char *location; /* a redirect's target */

	long status;
	char content_type[FETCH_TYPE_MAX];
	char *body;
	size_t len;
	size_t cap; /* body bytes kept */
	int truncated;

	char *result;
	int is_error;
};

/* ---- The fetch on the loop. ---- */

static void
mono_now(struct timespec *ts)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
}

/* Milliseconds left until the fetch's deadline, 0 if it passed. */
static uint64_t
fetch_left_ms(const struct wrk_fetch_state *st)
{
	struct timespec now;
	int64_t ms;

	mono_now(&now);
	ms = (int64_t)(st->deadline.tv_sec - now.tv_sec) * 1000 +
	     (st->deadline.tv_nsec - now.tv_nsec) / 1000000;
	return ms > 0 ? (uint64_t)ms : 0;
}

static void
fetch_free(struct wrk_fetch_state *st)
{
	size_t i;

	if (st->xfer != NULL)
		wrk_xfer_cancel(st->xfer);
	if (st->timeout_ev != NULL)
		event_free(st->timeout_ev);
	if (st->step_ev != NULL)
		event_free(st->step_ev);
	if (st->policy != NULL)
		palyra__ipc__fetch_policy__free_unpacked(st->policy, NULL);
	for (i = 0; i < st->nheaders; i++)
		free(st->headers[i]);
	free(st->url);
	free(st->location);
	free(st->body);
	free(st->result);
	free(st);
}

static void
step_now(struct wrk_fetch_state *st, enum fetch_step step)
{
	struct timeval tv = {0, 0};

	st->step = step;
	evtimer_add(st->step_ev, &tv);
}

/* Ends the fetch with a result or an error (text, or NULL for out of
 * memory), reported from the loop. */
static void
fetch_finish(struct wrk_fetch_state *st, char *text, int is_error)
{
	if (st->xfer != NULL) {
		wrk_xfer_cancel(st->xfer);
		st->xfer = NULL;
	}
	evtimer_del(st->timeout_ev);
	free(st->result);
	if (text == NULL) {
		text = strdup("http.fetch: out of memory");
		is_error = 1;
	}
	st->result = text;
	st->is_error = is_error;
	step_now(st, FETCH_STEP_FINISH);
}

static void fetch_fail(struct wrk_fetch_state *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

static void
fetch_fail(struct wrk_fetch_state *st, const char *fmt, ...)
{
	va_list ap;
	char *text = NULL, *clean = NULL;
	size_t len;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&text, fmt, ap);
	va_end(ap);
	/* Names and types a server wrote may be in the sentence: it must
	 * stay valid UTF-8 (a protobuf string, a JSON text). */
	if (n >= 0) {
		clean = wrk_fetch_utf8_clean(text, (size_t)n, 0, &len);
		free(text);
	}
	fetch_finish(st, clean, 1);
}

static void
fetch_succeed(struct wrk_fetch_state *st)
{
	fetch_finish(st,
	    wrk_fetch_result(st->url, st->status, st->content_type,
		st->truncated, st->body, st->len),
	    0);
}

static int
redirect_status(long status)
{
	return status == 301 || status == 302 || status == 303 ||
	       status == 307 || status == 308;
}

static int
on_head(struct wrk_xfer *x, long status, void *arg)
{
	struct wrk_fetch_state *st = arg;
	const char *location, *ctype;
	char type[FETCH_TYPE_MAX];

	st->status = status;
	location = wrk_xfer_header(x, "location");
	if (redirect_status(status) && location != NULL && *location != '\0') {
		/* Followed from the loop, after its checks, never by curl. */
		free(st->location);
		if ((st->location = strdup(location)) == NULL) {
			fetch_fail(st, "http.fetch: out of memory");
			return -1;
		}
		wrk_xfer_cancel(x);
		st->xfer = NULL;
		step_now(st, FETCH_STEP_REDIRECT);
		return -1;
	}
	ctype = wrk_xfer_header(x, "content-type");
	wrk_fetch_media_type(ctype, type, sizeof(type));
	/* No type is fine where no body can come. */
	if (type[0] == '\0' && (st->head || status == 204 || status == 304))
		return 0;
	if (type[0] == '\0') {
		fetch_fail(st,
		    "http.fetch: the response (HTTP %ld) has no content type",
		    status);
		return -1;
	}
	if (!wrk_fetch_type_allowed(st->policy, type)) {
		fetch_fail(
		    st, "http.fetch: content type %s is not allowed", type);
		return -1;
	}
	snprintf(st->content_type, sizeof(st->content_type), "%s", type);
	return 0;
}

static int
on_body(struct wrk_xfer *x, const char *buf, size_t len, void *arg)
{
	struct wrk_fetch_state *st = arg;
	size_t take;

	if (st->body == NULL && (st->body = malloc(st->cap + 1)) == NULL) {
		fetch_fail(st, "http.fetch: out of memory");
		return -1;
	}
	take = len < st->cap - st->len ? len : st->cap - st->len;
	memcpy(st->body + st->len, buf, take);
	st->len += take;
	if (take < len) {
		/* Over the cap: what was kept is the answer. */
		st->truncated = 1;
		fetch_succeed(st);
		return -1;
	}
	return 0;
}

static void
on_done(struct wrk_xfer *x, const struct wrk_xfer_result *r, void *arg)
{
	struct wrk_fetch_state *st = arg;
	char d[32];

	st->xfer = NULL;
	switch (r->status) {
	case WRK_XFER_OK:
		fetch_succeed(st);
		return;
	case WRK_XFER_CONNECT:
		fetch_fail(st, "http.fetch: cannot connect: %s", r->message);
		return;
	case WRK_XFER_FIRST_BYTE:
	case WRK_XFER_IDLE:
	case WRK_XFER_TOTAL:
		wrk_format_duration(d, sizeof(d), st->timeout_ms);
		fetch_fail(st, "http.fetch: timed out after %s", d);
		return;
	case WRK_XFER_NETWORK:
		fetch_fail(
		    st, "http.fetch: the connection failed: %s", r->message);
		return;
	case WRK_XFER_ABORTED:
	case WRK_XFER_INTERNAL:
		break;
	}
	fetch_fail(st, "http.fetch: the fetch failed");
}

/* Starts the transfer of st->url (checked) with the time left. */
static void
fetch_hop(struct wrk_fetch_state *st)
{
	static const struct wrk_xfer_cbs cbs = {on_head, on_body, on_done};
	struct wrk_xfer_req req;
	struct wrk_http *http;
	uint64_t left;
	size_t i;
	char d[32];

	if ((left = fetch_left_ms(st)) == 0) {
		wrk_format_duration(d, sizeof(d), st->timeout_ms);
		fetch_fail(st, "http.fetch: timed out after %s", d);
		return;
	}
	memset(&req, 0, sizeof(req));
	req.url = st->url;
	req.method = st->head ? "HEAD" : "GET";
	for (i = 0; i < st->nheaders; i++)
		req.headers[i] = st->headers[i];
	req.nheaders = st->nheaders;
	/* One deadline for the whole fetch: each phase may take what is
	 * left of it (timeout_ev says so first). */
	req.connect_ms = req.first_byte_ms = req.idle_ms = req.total_ms = left;
	st->status = 0;
	st->content_type[0] = '\0';
	st->len = 0;
	if ((http = wrk_net_http(st->run->ctx)) == NULL ||
	    (st->xfer = wrk_xfer_start(http, &req, &cbs, st)) == NULL)
		fetch_fail(st, "http.fetch: the fetch could not start");
}

static void
step_cb(evutil_socket_t fd, short what, void *arg)
{
	struct wrk_fetch_state *st = arg;
	struct wrk_run *run = st->run;
	wrk_fetch_fn done = st->done;
	void *done_arg = st->arg;
	char err[FETCH_ERR_MAX], where[FETCH_SHOWN_MAX + 8], *next, *result;
	int is_error;

	switch (st->step) {
	case FETCH_STEP_REDIRECT:
		st->step = FETCH_STEP_NONE;
		if (st->max_redirects == 0) {
			wrk_fetch_shown(where, sizeof(where), st->location);
			fetch_fail(st,
			    "http.fetch: redirect to %s not followed "
			    "(max-redirects 0)",
			    where);
			return;
		}
		if (st->redirects >= st->max_redirects) {
			fetch_fail(st, "http.fetch: more than %u redirects",
			    st->max_redirects);
			return;
		}
		st->redirects++;
		if (wrk_fetch_target(st->policy, st->location, st->url, &next,
			&st->allow_private, err, sizeof(err)) < 0) {
			fetch_fail(st, "%s", err);
			return;
		}
		free(st->url);
		st->url = next;
		fetch_hop(st);
		return;
	case FETCH_STEP_FINISH:
		/* The run may start another fetch from done. */
		result = st->result;
		is_error = st->is_error;
		st->result = NULL;
		run->fetch = NULL;
		fetch_free(st);
		done(run, done_arg, result, is_error);
		return;
	case FETCH_STEP_NONE:
		break;
	}
}

static void
timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct wrk_fetch_state *st = arg;
	char d[32];

	wrk_format_duration(d, sizeof(d), st->timeout_ms);
	fetch_fail(st, "http.fetch: timed out after %s", d);
}

/* The policy of the run: its agent's http-fetch block, else its
 * tenant's; NULL when neither has one. */
static const Palyra__Ipc__FetchPolicy *
run_policy(const struct wrk_run *run)
{
	if (run->agent_cfg != NULL && run->agent_cfg->has_fetch)
		return run->agent_cfg->fetch;
	if (run->ctx != NULL && run->ctx->config != NULL)
		return run->ctx->config->fetch;
	return NULL;
}

/* An owned copy of policy (NULL: an empty one). 0 or -ENOMEM. */
static int
copy_policy(
    const Palyra__Ipc__FetchPolicy *policy, Palyra__Ipc__FetchPolicy **out)
{
	Palyra__Ipc__FetchPolicy empty = PALYRA__IPC__FETCH_POLICY__INIT;
	uint8_t *buf;
	size_t len;

	if (policy == NULL)
		policy = &empty;
	len = palyra__ipc__fetch_policy__get_packed_size(policy);
	if ((buf = malloc(len > 0 ? len : 1)) == NULL)
		return -ENOMEM;
	palyra__ipc__fetch_policy__pack(policy, buf);
	*out = palyra__ipc__fetch_policy__unpack(NULL, len, buf);
	free(buf);
	return *out != NULL ? 0 : -ENOMEM;
}

int
wrk_fetch_start(
    struct wrk_run *run, const json_t *args, wrk_fetch_fn done, void *arg)
{
	struct wrk_fetch_state *st;
	struct event_base *base;
	struct timeval tv;
	char err[FETCH_ERR_MAX];
	const char *url;
	uint64_t cap;

	if (run == NULL || done == NULL || run->ctx == NULL)
		return -EINVAL;
	if (run->fetch != NULL)
		return -EBUSY;
	base = run->ctx->base;
	if ((st = calloc(1, sizeof(*st))) == NULL)
		return -ENOMEM;
	st->run = run;
	st->done = done;
	st->arg = arg;
	if ((st->timeout_ev = evtimer_new(base, timeout_cb, st)) == NULL ||
	    (st->step_ev = evtimer_new(base, step_cb, st)) == NULL ||
	    copy_policy(run_policy(run), &st->policy) < 0) {
		fetch_free(st);
		return -ENOMEM;
	}
	st->max_bytes = st->policy->max_bytes != 0
			    ? st->policy->max_bytes
			    : WRK_FETCH_MAX_BYTES_DEFAULT;
	st->timeout_ms = st->policy->timeout_ms != 0
			     ? st->policy->timeout_ms
			     : WRK_FETCH_TIMEOUT_DEFAULT_MS;
	/* An explicit max-redirects 0 follows none. */
	st->max_redirects =
	    st->policy->has_max_redirects || st->policy->max_redirects != 0
		? st->policy->max_redirects
		: WRK_FETCH_REDIRECTS_DEFAULT;
	/* More than the result can carry is never read. */
	cap = st->max_bytes < WRK_TOOL_RESULT_MAX ? st->max_bytes
						  : WRK_TOOL_RESULT_MAX;
	st->cap = (size_t)cap;
	run->fetch = st;

	mono_now(&st->deadline);
	st->deadline.tv_sec += (time_t)(st->timeout_ms / 1000);
	st->deadline.tv_nsec += (long)(st->timeout_ms % 1000) * 1000000;
	if (st->deadline.tv_nsec >= 1000000000) {
		st->deadline.tv_sec++;
		st->deadline.tv_nsec -= 1000000000;
	}
	tv.tv_sec = (time_t)(st->timeout_ms / 1000);
	tv.tv_usec = (suseconds_t)(st->timeout_ms % 1000) * 1000;
	evtimer_add(st->timeout_ev, &tv);

	if (wrk_fetch_args(args, &url, &st->head, st->headers, &st->nheaders,
		err, sizeof(err)) < 0) {
		fetch_fail(st, "http.fetch: %s", err);
		return 0;
	}
	if (st->policy->n_allow == 0) {
		fetch_fail(
		    st, "http.fetch: no egress allow-list for this agent");
		return 0;
	}
	if (wrk_fetch_target(st->policy, url, NULL, &st->url,
		&st->allow_private, err, sizeof(err)) < 0) {
		log_debug("run %s: %s", run->run_id, err);
		fetch_fail(st, "%s", err);
		return 0;
	}
	fetch_hop(st);
	return 0;
}

void
wrk_fetch_cancel(struct wrk_run *run)
{
	struct wrk_fetch_state *st;

	if (run == NULL || (st = run->fetch) == NULL)
		return;
	run->fetch = NULL;
	fetch_free(st);
}
