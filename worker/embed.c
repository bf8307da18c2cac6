/*
 * embed.c: text embeddings in palyra-worker (embed.h): the requests, the
 * OpenAI-compatible network embedder and the hand-off to the offline
 * lexical one (embed_offline.c).
 *
 * A request to a network provider goes out in batches of at most
 * WRK_EMBED_BATCH texts, one after the other:
 *
 *	POST BASE_URL/embeddings
 *	Authorization: Bearer KEY		(when the provider has a key)
 *	{"model":"EMBEDDING-MODEL","input":["text 0","text 1",...]}
 *
 *	{"data":[{"index":1,"embedding":[0.1,...]},{"index":0,...}],
 *	 "usage":{"prompt_tokens":12}}
 *
 * and each answer is checked whole (every index once, one dimension, only
 * finite numbers) before its vectors are put in their rows. An attempt
 * that failed with 429, 5xx, a connect or network error or a timeout is
 * retried with the jittered back-off of retry.c, up to
 * WRK_PROVIDER_ATTEMPTS per batch; every provider has a circuit breaker of
 * its own for embeddings in this worker. The credential is put in a
 * request header and wiped; an error message never holds it.
 *
 * Runs on the worker's loop; callbacks always come from the loop, never
 * from inside wrk_embed().
 */
#include <sys/queue.h>

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <jansson.h>
#include <sodium.h>

#include "embed.h"
#include "http.h"
#include "log.h"
#include "provider.h"
#include "worker.h"

#define EMBED_PATH "/embeddings"
#define EMBED_OPENAI_URL "https://api.openai.com/v1"
#define EMBED_HEADER_MAX (JNL_SECRET_MAX_LEN + 64)
#define EMBED_ERROR_MAX 512

/* One provider's embeddings state in this worker. */
struct embed_provider {
	TAILQ_ENTRY(embed_provider) entry;
	char name[NAME_MAX_LEN + 1];
	struct wrk_breaker breaker;
};

struct wrk_embedder {
	struct wrk_http *http; /* NULL until a network call */
	TAILQ_HEAD(, embed_provider) providers;
	TAILQ_HEAD(, wrk_embed_req) reqs;
};

struct wrk_embed_req {
	TAILQ_ENTRY(wrk_embed_req) entry;
	struct wrk_ctx *ctx;
	struct wrk_embedder *em;
	wrk_embed_cb cb;
	void *arg;
	char **texts;
	size_t ntexts;
	char provider[NAME_MAX_LEN + 1];
	struct embed_provider *ep;
	int lexical;
	struct event *timer;

	/* The batch under way: texts [next, next + batch). */
	size_t next;
	size_t batch;
	unsigned int attempt; /* made for this batch */
	int breaker_out;      /* let through, no verdict */
	struct wrk_xfer *xfer;
	long http_status;
	char *body;
	size_t body_len;

	/* The result so far. */
	float *vectors; /* ntexts * dim once dim known */
	size_t dim;
	uint64_t prompt_tokens;
	char error[EMBED_ERROR_MAX];
};

static void step(evutil_socket_t, short, void *);

static const Palyra__Ipc__ProviderConfig *
find_config(const struct wrk_ctx *ctx, const char *name)
{
	size_t i;

	if (ctx->config == NULL)
		return NULL;
	for (i = 0; i < ctx->config->n_providers; i++)
		if (strcmp(ctx->config->providers[i]->name, name) == 0)
			return ctx->config->providers[i];
	return NULL;
}

static struct wrk_embedder *
embedder_get(struct wrk_ctx *ctx)
{
	struct wrk_embedder *em;

	if (ctx->embed != NULL)
		return ctx->embed;
	if ((em = calloc(1, sizeof(*em))) == NULL)
		return NULL;
	TAILQ_INIT(&em->providers);
	TAILQ_INIT(&em->reqs);
	ctx->embed = em;
	return em;
}

static struct embed_provider *
provider_get(struct wrk_embedder *em, const char *name)
{
	struct embed_provider *ep;

	TAILQ_FOREACH(ep, &em->providers, entry)
	if (strcmp(ep->name, name) == 0)
		return ep;
	if ((ep = calloc(1, sizeof(*ep))) == NULL)
		return NULL;
	snprintf(ep->name, sizeof(ep->name), "%s", name);
	TAILQ_INSERT_TAIL(&em->providers, ep, entry);
	return ep;
}

static void
schedule(struct wrk_embed_req *r, uint64_t delay_ms)
{
	struct timeval tv;

	tv.tv_sec = (time_t)(delay_ms / 1000);
	tv.tv_usec = (suseconds_t)(delay_ms % 1000) * 1000;
	evtimer_add(r->timer, &tv);
}

static void req_fail(struct wrk_embed_req *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Sets the request's error (the first one wins) and ends it on the next
 * loop turn. */
static void
req_fail(struct wrk_embed_req *r, const char *fmt, ...)
{
	va_list ap;

	if (r->error[0] == '\0') {
		va_start(ap, fmt);
		vsnprintf(r->error, sizeof(r->error), fmt, ap);
		va_end(ap);
	}
	schedule(r, 0);
}

static void
attempt_clear(struct wrk_embed_req *r)
{
	if (r->xfer != NULL) {
		wrk_xfer_cancel(r->xfer);
		r->xfer = NULL;
	}
	free(r->body);
	r->body = NULL;
	r->body_len = 0;
	r->http_status = 0;
}

static void
req_free(struct wrk_embed_req *r)
{
	size_t i;

	attempt_clear(r);
	if (r->breaker_out) {
		wrk_breaker_release(&r->ep->breaker);
		r->breaker_out = 0;
	}
	if (r->timer != NULL)
		event_free(r->timer);
	for (i = 0; i < r->ntexts; i++)
		free(r->texts[i]);
	free(r->texts);
	free(r->vectors);
	TAILQ_REMOVE(&r->em->reqs, r, entry);
	free(r);
}

/* Calls back with the outcome and frees the request. */
static void
finish(struct wrk_embed_req *r)
{
	struct wrk_embed_result res;

	memset(&res, 0, sizeof(res));
	res.lexical = r->lexical;
	if (r->error[0] != '\0') {
		res.error = r->error;
		log_debug("embeddings (%s): %s",
		    r->lexical ? "offline" : r->provider, r->error);
	} else {
		res.n = r->ntexts;
		res.dim = r->dim;
		res.vectors = r->vectors;
		res.prompt_tokens = r->prompt_tokens;
	}
	/* The callback may cancel other requests or start new ones, never
	 * cancel this one: it is freed below. */
	attempt_clear(r);
	r->cb(&res, r->arg);
	req_free(r);
}

static void
embed_lexical(struct wrk_embed_req *r)
{
	size_t i;

	r->dim = WRK_EMBED_OFFLINE_DIM;
	r->vectors = reallocarray(NULL, r->ntexts, r->dim * sizeof(float));
	if (r->vectors == NULL) {
		snprintf(r->error, sizeof(r->error), "out of memory");
		return;
	}
	for (i = 0; i < r->ntexts; i++)
		wrk_embed_lexical(
		    r->texts[i], strlen(r->texts[i]), r->vectors + i * r->dim);
}

/* Replaces every copy of the key in s with "***". */
static void
scrub_key(char *s, const Palyra__Ipc__ProviderConfig *pc)
{
	const char *key = (const char *)pc->api_key.data;
	size_t klen = pc->api_key.len;
	char *p;

	if (klen < 4)
		return;
	while ((p = memmem(s, strlen(s), key, klen)) != NULL) {
		memcpy(p, "***", 3);
		memmove(p + 3, p + klen, strlen(p + klen) + 1);
	}
}

/* Parsing (pure; exported for the tests). */

static int perr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
perr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

int
wrk_embed_parse(const char *body, size_t len, size_t want, float **out,
    size_t *dim, uint64_t *prompt_tokens, char *err, size_t errlen)
{
	json_t *root, *data, *item, *idx, *emb, *v, *usage;
	json_error_t jerr;
	char *seen = NULL;
	float *vec = NULL, f;
	size_t i, j, d = *dim, n;
	json_int_t k;
	double x;
	int rc = -1;

	*out = NULL;
	*prompt_tokens = 0;
	if ((root = json_loadb(body, len, 0, &jerr)) == NULL)
		return perr(err, errlen,
		    "the answer is not JSON (%s at "
		    "byte %d)",
		    jerr.text, jerr.position);
	if (!json_is_object(root)) {
		perr(err, errlen, "the answer is not a JSON object");
		goto done;
	}
	data = json_object_get(root, "data");
	if (!json_is_array(data)) {
		char msg[256];

		wrk_error_body_message(body, len, msg, sizeof(msg));
		if (msg[0] != '\0')
			perr(err, errlen, "%s", msg);
		else
			perr(err, errlen, "the answer has no \"data\" array");
		goto done;
	}
	if ((n = json_array_size(data)) != want) {
		perr(err, errlen, "%zu vector(s) for %zu text(s)", n, want);
		goto done;
	}
	if ((seen = calloc(want, 1)) == NULL) {
		perr(err, errlen, "out of memory");
		goto done;
	}
	json_array_foreach(data, i, item)
	{
		idx = json_object_get(item, "index");
		if (!json_is_integer(idx) ||
		    (k = json_integer_value(idx)) < 0 || (size_t)k >= want) {
			perr(err, errlen, "data[%zu] has no index in [0, %zu)",
			    i, want);
			goto done;
		}
		if (seen[k]++) {
			perr(err, errlen, "index %lld appears twice",
			    (long long)k);
			goto done;
		}
		emb = json_object_get(item, "embedding");
		if (json_is_string(emb)) {
			perr(err, errlen,
			    "data[%zu]: base64 embeddings are "
			    "not supported",
			    i);
			goto done;
		}
		if (!json_is_array(emb) || json_array_size(emb) == 0) {
			perr(
			    err, errlen, "data[%zu] has no embedding array", i);
			goto done;
		}
		if (d == 0) {
			d = json_array_size(emb);
			if (d > WRK_EMBED_DIM_MAX) {
				perr(err, errlen,
				    "dimension %zu over the limit "
				    "of %d",
				    d, WRK_EMBED_DIM_MAX);
				goto done;
			}
		}
		if (json_array_size(emb) != d) {
			perr(err, errlen,
			    "the vector of index %lld has "
			    "dimension %zu, not %zu",
			    (long long)k, json_array_size(emb), d);
			goto done;
		}
		if (vec == NULL && (vec = reallocarray(NULL, want,
					d * sizeof(float))) == NULL) {
			perr(err, errlen, "out of memory");
			goto done;
		}
		json_array_foreach(emb, j, v)
		{
			if (!json_is_number(v)) {
				perr(err, errlen,
				    "the vector of index %lld "
				    "holds a non-number at %zu",
				    (long long)k, j);
				goto done;
			}
			x = json_number_value(v);
			f = (float)x;
			if (!isfinite(x) || !isfinite(f)) {
				perr(err, errlen,
				    "the vector of index %lld "
				    "holds a non-finite number at %zu",
				    (long long)k, j);
				goto done;
			}
			vec[(size_t)k * d + j] = f;
		}
	}
	for (i = 0; i < want; i++)
		if (!seen[i]) {
			perr(err, errlen, "index %zu is missing", i);
			goto done;
		}
	usage = json_object_get(root, "usage");
	v = json_object_get(usage, "prompt_tokens");
	if (json_is_integer(v) && json_integer_value(v) > 0)
		*prompt_tokens = (uint64_t)json_integer_value(v);
	*out = vec;
	vec = NULL;
	*dim = d;
	rc = 0;
done:
	free(vec);
	free(seen);
	json_decref(root);
	return rc;
}

/* The network embedder. */

/* The body of the batch, or NULL with the error set. */
static char *
batch_body(struct wrk_embed_req *r, const char *model, size_t *len)
{
	json_t *root, *input, *s;
	char *body;
	size_t i;

	if ((root = json_object()) == NULL ||
	    json_object_set_new(root, "model", json_string(model)) == -1 ||
	    json_object_set_new(root, "input", input = json_array()) == -1) {
		json_decref(root);
		snprintf(r->error, sizeof(r->error), "out of memory");
		return NULL;
	}
	for (i = r->next; i < r->next + r->batch; i++) {
		if ((s = json_string(r->texts[i])) == NULL) {
			json_decref(root);
			snprintf(r->error, sizeof(r->error),
			    "text %zu is not "
			    "valid UTF-8",
			    i);
			return NULL;
		}
		if (json_array_append_new(input, s) == -1) {
			json_decref(root);
			snprintf(r->error, sizeof(r->error), "out of memory");
			return NULL;
		}
	}
	body = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	if (body == NULL) {
		snprintf(r->error, sizeof(r->error), "out of memory");
		return NULL;
	}
	*len = strlen(body);
	return body;
}

static int
on_head(struct wrk_xfer *x, long http_status, void *arg)
{
	struct wrk_embed_req *r = arg;

	r->http_status = http_status;
	return 0;
}

static int
on_body(struct wrk_xfer *x, const char *buf, size_t len, void *arg)
{
	struct wrk_embed_req *r = arg;
	size_t limit, take;
	char *grown;

	/* An error body: its start is enough to say what it is. */
	limit = r->http_status >= 200 && r->http_status <= 299
		    ? WRK_EMBED_RESPONSE_MAX
		    : WRK_ERROR_BODY_MAX;
	take = limit - r->body_len;
	if (take > len)
		take = len;
	if (take == 0)
		return 0;
	if ((grown = realloc(r->body, r->body_len + take + 1)) == NULL)
		return -1;
	memcpy(grown + r->body_len, buf, take);
	r->body_len += take;
	grown[r->body_len] = '\0';
	r->body = grown;
	return 0;
}

/* The attempt failed; retryable: 429, 5xx, connect or network error or a
 * timeout, which another try may get past. */
static void
attempt_failed(struct wrk_embed_req *r, int retryable, int64_t retry_after_ms,
    const char *what)
{
	if (r->breaker_out) {
		r->breaker_out = 0;
		if (retryable)
			wrk_breaker_failure(&r->ep->breaker, wrk_now_ms());
		else
			wrk_breaker_success(&r->ep->breaker);
	}
	attempt_clear(r);
	log_info("embeddings: provider %s: %s (attempt %u)", r->provider, what,
	    r->attempt);
	if (retryable && r->attempt < WRK_PROVIDER_ATTEMPTS &&
	    r->ep->breaker.state == WRK_BREAKER_CLOSED) {
		schedule(r, wrk_backoff_ms(r->attempt, retry_after_ms,
				randombytes_random()));
		return;
	}
	if (r->attempt > 1)
		req_fail(r, "provider %s: %s after %u attempts", r->provider,
		    what, r->attempt);
	else
		req_fail(r, "provider %s: %s", r->provider, what);
}

static void
batch_done(struct wrk_embed_req *r, float *vec, size_t dim, uint64_t tokens)
{
	if (r->vectors == NULL) {
		r->dim = dim;
		r->vectors = reallocarray(NULL, r->ntexts, dim * sizeof(float));
		if (r->vectors == NULL) {
			free(vec);
			req_fail(r, "out of memory");
			return;
		}
	}
	memcpy(r->vectors + r->next * r->dim, vec,
	    r->batch * r->dim * sizeof(float));
	free(vec);
	r->prompt_tokens += tokens;
	r->next += r->batch;
	r->batch = 0;
	r->attempt = 0;
	/* The next batch (or the callback) on the next loop turn. */
	schedule(r, 0);
}

static void
on_done(struct wrk_xfer *x, const struct wrk_xfer_result *res, void *arg)
{
	struct wrk_embed_req *r = arg;
	const Palyra__Ipc__ProviderConfig *pc;
	const char *detail = res->message != NULL ? res->message : "";
	char what[EMBED_ERROR_MAX], msg[320], perrbuf[256];
	float *vec;
	size_t dim;
	uint64_t tokens;
	int retryable = 1;

	r->xfer = NULL;
	if (res->status != WRK_XFER_OK) {
		switch (res->status) {
		case WRK_XFER_CONNECT:
			snprintf(what, sizeof(what), "cannot connect");
			break;
		case WRK_XFER_FIRST_BYTE:
			snprintf(what, sizeof(what), "first-byte timeout");
			break;
		case WRK_XFER_IDLE:
			snprintf(what, sizeof(what), "idle timeout");
			break;
		case WRK_XFER_NETWORK:
			snprintf(what, sizeof(what), "connection lost");
			break;
		case WRK_XFER_TOTAL:
			retryable = 0;
			snprintf(what, sizeof(what), "total timeout");
			break;
		default:
			retryable = 0;
			snprintf(what, sizeof(what), "request failed");
			break;
		}
		if (detail[0] != '\0') {
			size_t n = strlen(what);

			snprintf(what + n, sizeof(what) - n, ": %s", detail);
		}
		attempt_failed(r, retryable, res->retry_after_ms, what);
		return;
	}
	pc = find_config(r->ctx, r->provider);
	if (r->http_status < 200 || r->http_status > 299) {
		retryable = r->http_status == 429 || r->http_status == 408 ||
			    r->http_status >= 500;
		wrk_error_body_message(r->body, r->body_len, msg, sizeof(msg));
		snprintf(what, sizeof(what), "HTTP %ld%s%s", r->http_status,
		    msg[0] != '\0' ? ": " : "", msg);
		if (pc != NULL)
			scrub_key(what, pc);
		attempt_failed(r, retryable, res->retry_after_ms, what);
		return;
	}
	dim = r->dim;
	if (wrk_embed_parse(r->body != NULL ? r->body : "", r->body_len,
		r->batch, &vec, &dim, &tokens, perrbuf,
		sizeof(perrbuf)) == -1) {
		snprintf(what, sizeof(what), "malformed embeddings answer: %s",
		    perrbuf);
		if (pc != NULL)
			scrub_key(what, pc);
		/* The provider answered: no strike against its breaker. */
		attempt_failed(r, 0, -1, what);
		return;
	}
	if (r->breaker_out) {
		r->breaker_out = 0;
		wrk_breaker_success(&r->ep->breaker);
	}
	attempt_clear(r);
	batch_done(r, vec, dim, tokens);
}

/* "Authorization: Bearer KEY", or -1 for a key no header can carry. */
static int
auth_header(char *buf, size_t size, const Palyra__Ipc__ProviderConfig *pc)
{
	static const char prefix[] = "Authorization: Bearer ";
	size_t i, n = sizeof(prefix) - 1;

	if (n + pc->api_key.len + 1 > size)
		return -1;
	for (i = 0; i < pc->api_key.len; i++)
		if (pc->api_key.data[i] <= 0x20 || pc->api_key.data[i] == 0x7f)
			return -1;
	memcpy(buf, prefix, n);
	memcpy(buf + n, pc->api_key.data, pc->api_key.len);
	buf[n + pc->api_key.len] = '\0';
	return 0;
}

static void
attempt_begin(struct wrk_embed_req *r)
{
	const Palyra__Ipc__ProviderConfig *pc;
	struct wrk_xfer_req req;
	struct wrk_xfer_cbs cbs = {on_head, on_body, on_done};
	char url[2048], auth[EMBED_HEADER_MAX];
	const char *base;
	char *body;
	size_t n, blen;
	int start_errno;

	if ((pc = find_config(r->ctx, r->provider)) == NULL) {
		req_fail(r, "provider %s is no longer configured", r->provider);
		return;
	}
	base = pc->base_url;
	if (base[0] == '\0' && strcmp(pc->type, "openai") == 0)
		base = EMBED_OPENAI_URL;
	n = strlen(base);
	while (n > 0 && base[n - 1] == '/')
		n--;
	if (n == 0) {
		req_fail(r, "provider %s has no base-url", r->provider);
		return;
	}
	if ((size_t)snprintf(url, sizeof(url), "%.*s%s", (int)n, base,
		EMBED_PATH) >= sizeof(url)) {
		req_fail(r, "provider %s: base-url too long", r->provider);
		return;
	}
	if (pc->api_key.len == 0 && pc->api_key_vault[0] != '\0') {
		req_fail(r, "provider %s: api-key vault:%s: the tenant's vault "
		    "holds no secret %s", r->provider, pc->api_key_vault,
		    pc->api_key_vault);
		return;
	}
	if (pc->api_key.len == 0 && strcmp(pc->type, "openai") == 0) {
		req_fail(r,
		    "provider %s has no api-key (its variable or file is "
		    "empty or unset)",
		    r->provider);
		return;
	}
	if (r->em->http == NULL &&
	    (r->em->http = wrk_http_new(r->ctx->base)) == NULL) {
		req_fail(r, "cannot set up HTTP");
		return;
	}
	if (!wrk_breaker_allow(&r->ep->breaker, wrk_now_ms())) {
		req_fail(r, "provider %s: circuit breaker open", r->provider);
		return;
	}
	r->breaker_out = 1;
	r->batch = r->ntexts - r->next;
	if (r->batch > WRK_EMBED_BATCH)
		r->batch = WRK_EMBED_BATCH;
	if ((body = batch_body(r, pc->embedding_model, &blen)) == NULL) {
		wrk_breaker_release(&r->ep->breaker);
		r->breaker_out = 0;
		schedule(r, 0);
		return;
	}

	memset(&req, 0, sizeof(req));
	req.url = url;
	req.method = "POST";
	req.headers[req.nheaders++] = "Content-Type: application/json";
	req.headers[req.nheaders++] = "Accept: application/json";
	auth[0] = '\0';
	if (pc->api_key.len > 0) {
		if (auth_header(auth, sizeof(auth), pc) == -1) {
			sodium_memzero(auth, sizeof(auth));
			free(body);
			wrk_breaker_release(&r->ep->breaker);
			r->breaker_out = 0;
			req_fail(r,
			    "provider %s: api-key too long or holds a space "
			    "or control byte",
			    r->provider);
			return;
		}
		req.headers[req.nheaders++] = auth;
	}
	req.body = body;
	req.body_len = blen;
	req.connect_ms = pc->timeout_connect_ms;
	req.first_byte_ms = pc->timeout_first_byte_ms;
	req.idle_ms = pc->timeout_idle_ms;
	req.total_ms = pc->timeout_total_ms;
	req.max_response = WRK_EMBED_RESPONSE_MAX;
	r->attempt++;
	r->xfer = wrk_xfer_start(r->em->http, &req, &cbs, r);
	start_errno = errno;
	sodium_memzero(auth, sizeof(auth));
	free(body);
	if (r->xfer == NULL) {
		/* Ours, not the provider's: no verdict for its breaker. */
		wrk_breaker_release(&r->ep->breaker);
		r->breaker_out = 0;
		req_fail(r, "provider %s: cannot start the request: %s",
		    r->provider, strerror(start_errno));
	}
}

/* The request's next step, always on its own loop turn. */
static void
step(evutil_socket_t fd, short events, void *arg)
{
	struct wrk_embed_req *r = arg;

	if (r->error[0] != '\0' || r->lexical || r->next == r->ntexts) {
		if (r->lexical && r->error[0] == '\0')
			embed_lexical(r);
		finish(r);
		return;
	}
	attempt_begin(r);
}

/* Which embedder serves provider_name; sets r->error when none does. */
static void
choose(struct wrk_embed_req *r, const char *provider_name)
{
	const Palyra__Ipc__ProviderConfig *pc;

	if (provider_name == NULL) {
		r->lexical = 1;
		return;
	}
	snprintf(r->provider, sizeof(r->provider), "%s", provider_name);
	if ((pc = find_config(r->ctx, provider_name)) == NULL) {
		snprintf(r->error, sizeof(r->error),
		    "unknown provider \"%.*s\"", NAME_MAX_LEN, provider_name);
		return;
	}
	if (strcmp(pc->type, "offline") == 0) {
		r->lexical = 1;
		return;
	}
	if (strcmp(pc->type, "openai") != 0 &&
	    strcmp(pc->type, "openai-compatible") != 0) {
		snprintf(r->error, sizeof(r->error),
		    "provider %s is of type "
		    "%s, which has no embeddings API",
		    r->provider, pc->type);
		return;
	}
	if (pc->embedding_model == NULL || pc->embedding_model[0] == '\0') {
		snprintf(r->error, sizeof(r->error),
		    "provider %s has no "
		    "embedding-model",
		    r->provider);
		return;
	}
	if ((r->ep = provider_get(r->em, provider_name)) == NULL)
		snprintf(r->error, sizeof(r->error), "out of memory");
}

struct wrk_embed_req *
wrk_embed(struct wrk_ctx *ctx, const char *provider_name,
    const char *const *texts, size_t ntexts, wrk_embed_cb cb, void *arg)
{
	struct wrk_embedder *em;
	struct wrk_embed_req *r;
	size_t i;

	if (texts == NULL || ntexts == 0 || ntexts > WRK_EMBED_TEXTS_MAX ||
	    cb == NULL) {
		errno = EINVAL;
		return NULL;
	}
	for (i = 0; i < ntexts; i++) {
		if (texts[i] == NULL) {
			errno = EINVAL;
			return NULL;
		}
		if (strnlen(texts[i], WRK_EMBED_TEXT_MAX + 1) >
		    WRK_EMBED_TEXT_MAX) {
			errno = E2BIG;
			return NULL;
		}
	}
	if ((em = embedder_get(ctx)) == NULL ||
	    (r = calloc(1, sizeof(*r))) == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	r->ctx = ctx;
	r->em = em;
	r->cb = cb;
	r->arg = arg;
	TAILQ_INSERT_TAIL(&em->reqs, r, entry);
	if ((r->timer = evtimer_new(ctx->base, step, r)) == NULL ||
	    (r->texts = calloc(ntexts, sizeof(*r->texts))) == NULL)
		goto nomem;
	for (r->ntexts = 0; r->ntexts < ntexts; r->ntexts++)
		if ((r->texts[r->ntexts] = strdup(texts[r->ntexts])) == NULL)
			goto nomem;
	choose(r, provider_name);
	schedule(r, 0);
	return r;
nomem:
	req_free(r);
	errno = ENOMEM;
	return NULL;
}

void
wrk_embed_cancel(struct wrk_embed_req *r)
{
	if (r != NULL)
		req_free(r);
}

void
wrk_embed_free(struct wrk_ctx *ctx)
{
	struct wrk_embedder *em = ctx->embed;
	struct embed_provider *ep;
	struct wrk_embed_req *r;

	if (em == NULL)
		return;
	while ((r = TAILQ_FIRST(&em->reqs)) != NULL)
		req_free(r);
	while ((ep = TAILQ_FIRST(&em->providers)) != NULL) {
		TAILQ_REMOVE(&em->providers, ep, entry);
		free(ep);
	}
	if (em->http != NULL)
		wrk_http_free(em->http);
	free(em);
	ctx->embed = NULL;
}
