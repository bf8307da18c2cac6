/*
 * memory.c: memory requests of palyra-worker (DESIGN section 9, issue 8):
 * an ingest or a search is checked, its text redacted of the tenant's
 * vault values, embedded with the tenant's embedder (palyrad.conf(5)
 * memory embedder: a provider's embedding-model, else the offline lexical
 * embedder) and sent to journald, which stores or searches
 * (journald/memory.c); its answer ends the request.
 *
 *   EMBEDDING -> (IPC_MEMORY_STORE | IPC_MEMORY_QUERY) WAITING -> done
 *
 * Every request is timed (WRK_MEMORY_TIMEOUT_MS), bounded in number
 * (WRK_MEMORY_PENDING_MAX) and owned (a run, or NULL): a run that ends
 * cancels its own. Request ids are this module's (journald answers with
 * the same id).
 *
 * Process: palyra-worker. Touches the journald channel (requests only),
 * the embedders (embed.h) and the tenant's vault (redaction only).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <sodium.h>

#include "grpc_status.h"
#include "embed.h"
#include "ipc.h"
#include "limits.h"
#include "log.h"
#include "memory.h"
#include "worker.h"

enum memory_kind {
	MEMORY_INGEST,
	MEMORY_SEARCH,
};

enum memory_phase {
	MEMORY_EMBEDDING,
	MEMORY_WAITING,
};

struct memory_req {
	LIST_ENTRY(memory_req)	 entry;
	struct wrk_ctx		*ctx;
	enum memory_kind	 kind;
	enum memory_phase	 phase;
	const void		*owner;
	uint32_t		 request_id;
	struct wrk_embed_req	*embed;
	struct event		*timer;
	wrk_memory_fn		 cb;
	void			*arg;
	char			*embedder;	/* a provider; NULL: offline */
	char			*model;		/* offline, PROVIDER/MODEL */
	/* The message to send, its strings and tags owned here. */
	Palyra__V1__MemoryItem	 item;		/* ingest */
	Palyra__Ipc__MemoryQuery query;		/* search */
	char			**tags;
	size_t			 ntags;
};

LIST_HEAD(memory_list, memory_req);

struct wrk_memory_state {
	struct memory_list	 reqs;
	size_t			 count;
	uint32_t		 counter;
};

int
wrk_memory_tag_valid(const char *s)
{
	size_t	 i, n = strnlen(s, JNL_MEMORY_TAG_MAX + 1);

	if (n == 0 || n > JNL_MEMORY_TAG_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (strchr("abcdefghijklmnopqrstuvwxyz"
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-", s[i]) == NULL)
			return 0;
	return 1;
}

/* 1 to max bytes of UTF-8 with no control character but tab and line
 * breaks. */
int
wrk_memory_text_valid(const char *s, size_t max)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t	 n = strnlen(s, max + 1), i, k, more;

	if (n == 0 || n > max)
		return 0;
	for (i = 0; i < n; i++) {
		if (p[i] < 0x20 && p[i] != '\t' && p[i] != '\n' &&
		    p[i] != '\r')
			return 0;
		if (p[i] == 0x7f)
			return 0;
		if (p[i] < 0x80)
			continue;
		if (p[i] >= 0xc2 && p[i] <= 0xdf)
			more = 1;
		else if (p[i] >= 0xe0 && p[i] <= 0xef)
			more = 2;
		else if (p[i] >= 0xf0 && p[i] <= 0xf4)
			more = 3;
		else
			return 0;
		for (k = 1; k <= more; k++)
			if (i + k >= n || (p[i + k] & 0xc0) != 0x80)
				return 0;
		i += more;
	}
	return 1;
}

int
wrk_memory_source_valid(const char *s)
{
	size_t	 n = strnlen(s, JNL_MEMORY_SOURCE_MAX + 1);

	return n <= JNL_MEMORY_SOURCE_MAX &&
	    (n == 0 || wrk_memory_text_valid(s, JNL_MEMORY_SOURCE_MAX)) &&
	    strpbrk(s, "\t\r\n") == NULL;
}

static struct wrk_memory_state *
state_get(struct wrk_ctx *ctx)
{
	if (ctx->memory == NULL) {
		if ((ctx->memory = calloc(1, sizeof(*ctx->memory))) == NULL)
			return NULL;
		LIST_INIT(&ctx->memory->reqs);
	}
	return ctx->memory;
}

static void
req_free(struct memory_req *r)
{
	size_t	 i;

	LIST_REMOVE(r, entry);
	r->ctx->memory->count--;
	if (r->embed != NULL)
		wrk_embed_cancel(r->embed);
	if (r->timer != NULL)
		event_free(r->timer);
	for (i = 0; i < r->ntags; i++)
		free(r->tags[i]);
	free(r->tags);
	free(r->embedder);
	free(r->model);
	free(r->item.item_id);
	free(r->item.principal);
	free(r->item.session_id);
	free(r->item.source);
	if (r->item.text != NULL)
		sodium_memzero(r->item.text, strlen(r->item.text));
	free(r->item.text);
	free(r->query.principal);
	free(r->query.session_id);
	free(r->query.query);
	free(r);
}

/* Ends r with result: the callback, then r is freed. */
static void
req_finish(struct memory_req *r, const struct wrk_memory_result *res)
{
	wrk_memory_fn	 cb = r->cb;
	void		*arg = r->arg;

	/* Freed first: the callback may start another request or end the
	 * run that owns this one. */
	req_free(r);
	cb(res, arg);
}

static void
req_fail(struct memory_req *r, uint32_t code, const char *message)
{
	struct wrk_memory_result res;

	memset(&res, 0, sizeof(res));
	res.code = code;
	res.message = message;
	req_finish(r, &res);
}

static void
timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct memory_req *r = arg;

	(void)fd;
	(void)what;
	log_warn("memory: a request took too long (%s)",
	    r->phase == MEMORY_EMBEDDING ? "embedding" : "journal");
	req_fail(r, GRPC_STATUS_UNAVAILABLE, r->phase == MEMORY_EMBEDDING ?
	    "the embedder did not answer in time" :
	    "the journal did not answer in time");
}

/*
 * The tenant's embedder: NULL (offline) or a provider name, and the
 * model name items are stored under. Returns 0 or -ENOMEM.
 */
static int
embedder_choose(struct memory_req *r)
{
	const Palyra__Ipc__WorkerConfig *wc = r->ctx->config;
	const Palyra__Ipc__ProviderConfig *p;
	const char *name = NULL;
	size_t	 i;

	if (wc != NULL && wc->memory != NULL && wc->memory->embedder[0])
		name = wc->memory->embedder;
	for (i = 0; name != NULL && wc != NULL && i < wc->n_providers; i++) {
		p = wc->providers[i];
		if (strcmp(p->name, name) != 0)
			continue;
		if (strcmp(p->type, "offline") == 0)
			break;
		if ((r->embedder = strdup(name)) == NULL ||
		    asprintf(&r->model, "%s/%s", name,
		    p->embedding_model) < 0) {
			r->model = NULL;
			return -ENOMEM;
		}
		return 0;
	}
	if (name != NULL && (wc == NULL || i == wc->n_providers)) {
		/* Refused by the embedder (unknown provider), not here. */
		if ((r->embedder = strdup(name)) == NULL ||
		    asprintf(&r->model, "%s/", name) < 0) {
			r->model = NULL;
			return -ENOMEM;
		}
		return 0;
	}
	return (r->model = strdup("offline")) == NULL ? -ENOMEM : 0;
}

static int
send_request(struct memory_req *r, const float *vec, size_t dim)
{
	Palyra__Ipc__MemoryStore store = PALYRA__IPC__MEMORY_STORE__INIT;
	struct wrk_ctx	*ctx = r->ctx;
	uint32_t	 id;
	int		 rc;

	if (ctx->journald == NULL || ipc_chan_dead(ctx->journald))
		return -ENOTCONN;
	if ((id = ctx->memory->counter + 1) == 0)
		id = 1;
	if (r->kind == MEMORY_INGEST) {
		store.item = &r->item;
		if (ctx->config != NULL && ctx->config->memory != NULL)
			store.max_items = ctx->config->memory->max_items;
		store.n_embedding = dim;
		store.embedding = (float *)vec;
		rc = ipc_chan_send(ctx->journald, IPC_MEMORY_STORE, id,
		    &store.base, NULL, 0);
	} else {
		r->query.n_embedding = dim;
		r->query.embedding = (float *)vec;
		rc = ipc_chan_send(ctx->journald, IPC_MEMORY_QUERY, id,
		    &r->query.base, NULL, 0);
		r->query.n_embedding = 0;
		r->query.embedding = NULL;
	}
	if (rc < 0)
		return rc == -EPIPE ? -ENOTCONN : rc;
	ctx->memory->counter = id;
	r->request_id = id;
	r->phase = MEMORY_WAITING;
	return 0;
}

static void
embedded(const struct wrk_embed_result *er, void *arg)
{
	struct memory_req *r = arg;
	char	 msg[256];
	size_t	 dim = 0;
	int	 rc;

	r->embed = NULL;
	if (er->error != NULL) {
		/* The embedder's message names it, never a credential. */
		snprintf(msg, sizeof(msg), "embedder %s: %s",
		    r->embedder != NULL ? r->embedder : "offline", er->error);
		log_warn("memory: %s", msg);
		req_fail(r, GRPC_STATUS_UNAVAILABLE, msg);
		return;
	}
	if (er->n == 1 && er->vectors != NULL)
		dim = er->dim;
	if ((rc = send_request(r, er->vectors, dim)) < 0) {
		req_fail(r, GRPC_STATUS_UNAVAILABLE, "journal unavailable");
		return;
	}
}

/* A new request of kind for owner, counted, timed and listed. */
static struct memory_req *
req_new(struct wrk_ctx *ctx, enum memory_kind kind, const void *owner,
    uint64_t timeout_ms, wrk_memory_fn cb, void *arg, int *err)
{
	struct wrk_memory_state *st;
	struct memory_req *r;
	struct timeval	 tv;

	if (timeout_ms == 0 || timeout_ms > WRK_MEMORY_TIMEOUT_MS)
		timeout_ms = WRK_MEMORY_TIMEOUT_MS;
	tv.tv_sec = (time_t)(timeout_ms / 1000);
	tv.tv_usec = (suseconds_t)(timeout_ms % 1000) * 1000;

	*err = -ENOMEM;
	if ((st = state_get(ctx)) == NULL)
		return NULL;
	if (ctx->journald == NULL || ipc_chan_dead(ctx->journald)) {
		*err = -ENOTCONN;
		return NULL;
	}
	if (st->count >= WRK_MEMORY_PENDING_MAX) {
		*err = -EBUSY;
		return NULL;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	palyra__v1__memory_item__init(&r->item);
	palyra__ipc__memory_query__init(&r->query);
	/* Owned strings, set by the caller (init points them at a shared
	 * empty string, which is never freed). */
	r->item.item_id = r->item.principal = r->item.session_id = NULL;
	r->item.source = r->item.text = NULL;
	r->query.principal = r->query.session_id = r->query.query = NULL;
	r->ctx = ctx;
	r->kind = kind;
	r->owner = owner;
	r->cb = cb;
	r->arg = arg;
	LIST_INSERT_HEAD(&st->reqs, r, entry);
	st->count++;
	if ((r->timer = evtimer_new(ctx->base, timeout_cb, r)) == NULL ||
	    embedder_choose(r) < 0) {
		req_free(r);
		return NULL;
	}
	evtimer_add(r->timer, &tv);
	return r;
}

static int
tags_copy(struct memory_req *r, const char *const *tags, size_t ntags,
    char *why, size_t whylen)
{
	size_t	 i, j;

	if (ntags > JNL_MEMORY_TAGS_MAX) {
		snprintf(why, whylen, "too many tags (at most %d)",
		    JNL_MEMORY_TAGS_MAX);
		return -EINVAL;
	}
	for (i = 0; i < ntags; i++) {
		if (!wrk_memory_tag_valid(tags[i])) {
			snprintf(why, whylen, "invalid tag (1 to %d bytes of "
			    "A-Z, a-z, 0-9, '.', '_', ':' and '-')",
			    JNL_MEMORY_TAG_MAX);
			return -EINVAL;
		}
		for (j = 0; j < i; j++)
			if (strcmp(tags[i], tags[j]) == 0) {
				snprintf(why, whylen, "duplicate tag \"%s\"",
				    tags[i]);
				return -EINVAL;
			}
	}
	if (ntags == 0)
		return 0;
	if ((r->tags = calloc(ntags, sizeof(*r->tags))) == NULL)
		return -ENOMEM;
	for (i = 0; i < ntags; i++) {
		if ((r->tags[i] = strdup(tags[i])) == NULL)
			return -ENOMEM;
		r->ntags++;
	}
	return 0;
}

static int
session_check(const char *session_id, char *why, size_t whylen)
{
	if (session_id[0] != '\0' && !wrk_session_id_valid(session_id)) {
		snprintf(why, whylen, "invalid session_id");
		return -EINVAL;
	}
	return 0;
}

static int
embed_start(struct memory_req *r, const char *text)
{
	const char *texts[1] = { text };

	r->embed = wrk_embed(r->ctx, r->embedder, texts, 1, embedded, r);
	return r->embed == NULL ? -errno : 0;
}

int
wrk_memory_ingest(struct wrk_ctx *ctx, const void *owner,
    const struct wrk_memory_ingest_args *a, wrk_memory_fn cb, void *arg,
    char *why, size_t whylen)
{
	struct memory_req *r;
	unsigned char	 bytes[16];
	char		 id[33];
	uint64_t	 ttl = a->ttl_ms;
	int64_t		 now = wrk_now_ms();
	int		 err;

	why[0] = '\0';
	if (!wrk_memory_text_valid(a->text, JNL_MEMORY_TEXT_MAX)) {
		snprintf(why, whylen, "text must be 1 to %d bytes of UTF-8 "
		    "text", JNL_MEMORY_TEXT_MAX);
		return -EINVAL;
	}
	if (!wrk_memory_source_valid(a->source)) {
		snprintf(why, whylen, "source must be at most %d bytes of "
		    "printable text", JNL_MEMORY_SOURCE_MAX);
		return -EINVAL;
	}
	if (ttl > WRK_MEMORY_TTL_MAX_MS) {
		snprintf(why, whylen, "ttl is over 3650 days");
		return -EINVAL;
	}
	if ((err = session_check(a->session_id, why, whylen)) < 0)
		return err;
	if ((r = req_new(ctx, MEMORY_INGEST, owner, 0, cb, arg, &err)) == NULL)
		return err;
	if ((err = tags_copy(r, a->tags, a->ntags, why, whylen)) < 0) {
		req_free(r);
		return err;
	}
	if (ttl == 0 && ctx->config != NULL && ctx->config->memory != NULL)
		ttl = ctx->config->memory->default_ttl_ms;
	randombytes_buf(bytes, sizeof(bytes));
	sodium_bin2hex(id, sizeof(id), bytes, sizeof(bytes));
	r->item.item_id = strdup(id);
	r->item.principal = strdup(a->principal);
	r->item.session_id = strdup(a->session_id);
	r->item.source = strdup(a->source[0] != '\0' ? a->source : "api");
	r->item.text = wrk_vault_redact_text(ctx, a->text);
	r->item.n_tags = r->ntags;
	r->item.tags = r->tags;
	r->item.created_unix_ms = now;
	r->item.expires_unix_ms = ttl != 0 ? now + (int64_t)ttl : 0;
	r->item.embedding_model = r->model;
	if (r->item.item_id == NULL || r->item.principal == NULL ||
	    r->item.session_id == NULL || r->item.source == NULL ||
	    r->item.text == NULL) {
		req_free(r);
		return -ENOMEM;
	}
	if ((err = embed_start(r, r->item.text)) < 0) {
		req_free(r);
		return err == -E2BIG || err == -EINVAL ? -ENOMEM : err;
	}
	return 0;
}

int
wrk_memory_search(struct wrk_ctx *ctx, const void *owner,
    const struct wrk_memory_search_args *a, wrk_memory_fn cb, void *arg,
    char *why, size_t whylen)
{
	struct memory_req *r;
	int		 err;

	why[0] = '\0';
	if (!wrk_memory_text_valid(a->query, WRK_MEMORY_QUERY_MAX)) {
		snprintf(why, whylen, "query must be 1 to %d bytes of UTF-8 "
		    "text", WRK_MEMORY_QUERY_MAX);
		return -EINVAL;
	}
	if (a->top_k > JNL_MEMORY_TOP_K_MAX) {
		snprintf(why, whylen, "top_k must be at most %d",
		    JNL_MEMORY_TOP_K_MAX);
		return -EINVAL;
	}
	if (!(a->min_score >= 0 && a->min_score <= 1)) {
		snprintf(why, whylen, "min_score must be from 0 to 1");
		return -EINVAL;
	}
	if ((err = session_check(a->session_id, why, whylen)) < 0)
		return err;
	if ((r = req_new(ctx, MEMORY_SEARCH, owner, a->timeout_ms, cb,
	    arg, &err)) == NULL)
		return err;
	if ((err = tags_copy(r, a->tags, a->ntags, why, whylen)) < 0) {
		req_free(r);
		return err;
	}
	r->query.principal = strdup(a->principal);
	r->query.session_id = strdup(a->session_id);
	r->query.query = strdup(a->query);
	r->query.embedding_model = r->model;
	r->query.n_tags = r->ntags;
	r->query.tags = r->tags;
	r->query.top_k = a->top_k != 0 ? a->top_k : JNL_MEMORY_TOP_K_DEFAULT;
	r->query.min_score = a->min_score;
	if (r->query.principal == NULL || r->query.session_id == NULL ||
	    r->query.query == NULL) {
		req_free(r);
		return -ENOMEM;
	}
	if ((err = embed_start(r, r->query.query)) < 0) {
		req_free(r);
		return err == -E2BIG || err == -EINVAL ? -ENOMEM : err;
	}
	return 0;
}

static struct memory_req *
find_waiting(struct wrk_ctx *ctx, enum memory_kind kind, uint32_t id)
{
	struct memory_req *r;

	if (ctx->memory == NULL)
		return NULL;
	LIST_FOREACH(r, &ctx->memory->reqs, entry)
		if (r->kind == kind && r->phase == MEMORY_WAITING &&
		    r->request_id == id)
			return r;
	return NULL;
}

/* A journald error as the caller sees it: its code if it is one. */
static uint32_t
answer_code(uint32_t code)
{
	return code > GRPC_STATUS_OK && code <= GRPC_STATUS_UNAUTHENTICATED ?
	    code : GRPC_STATUS_INTERNAL;
}

int
wrk_memory_on_stored(struct wrk_ctx *ctx, uint32_t request_id,
    const Palyra__Ipc__MemoryStored *m)
{
	struct wrk_memory_result res;
	struct memory_req *r;

	if ((r = find_waiting(ctx, MEMORY_INGEST, request_id)) == NULL)
		return 0;	/* cancelled or timed out meanwhile */
	memset(&res, 0, sizeof(res));
	if (m->grpc_status != GRPC_STATUS_OK) {
		res.code = answer_code(m->grpc_status);
		res.message = m->error[0] != '\0' ? m->error :
		    "the journal refused the item";
	} else if (m->item == NULL) {
		res.code = GRPC_STATUS_OK;
		res.item = &r->item;
	} else {
		res.code = GRPC_STATUS_OK;
		res.item = m->item;
	}
	if (res.item != &r->item) {
		req_finish(r, &res);
		return 0;
	}
	/* The request's own item is the answer: called before it is
	 * freed. */
	r->cb(&res, r->arg);
	req_free(r);
	return 0;
}

int
wrk_memory_on_hits(struct wrk_ctx *ctx, uint32_t request_id,
    const Palyra__Ipc__MemoryHits *m)
{
	struct wrk_memory_result res;
	struct memory_req *r;

	if ((r = find_waiting(ctx, MEMORY_SEARCH, request_id)) == NULL)
		return 0;
	memset(&res, 0, sizeof(res));
	if (m->grpc_status != GRPC_STATUS_OK) {
		res.code = answer_code(m->grpc_status);
		res.message = m->error[0] != '\0' ? m->error :
		    "the journal refused the search";
	} else {
		res.code = GRPC_STATUS_OK;
		res.hits = m->hits;
		res.nhits = m->n_hits;
	}
	req_finish(r, &res);
	return 0;
}

size_t
wrk_memory_pending(const struct wrk_ctx *ctx)
{
	return ctx->memory != NULL ? ctx->memory->count : 0;
}

void
wrk_memory_cancel_owner(struct wrk_ctx *ctx, const void *owner)
{
	struct memory_req *r, *next;

	if (ctx->memory == NULL || owner == NULL)
		return;
	for (r = LIST_FIRST(&ctx->memory->reqs); r != NULL; r = next) {
		next = LIST_NEXT(r, entry);
		if (r->owner == owner) {
			free(r->arg);
			req_free(r);
		}
	}
}

void
wrk_memory_journald_lost(struct wrk_ctx *ctx)
{
	struct memory_req *r;

	if (ctx->memory == NULL)
		return;
	/* One at a time from the head: a callback may add or cancel. */
	for (;;) {
		LIST_FOREACH(r, &ctx->memory->reqs, entry)
			if (r->phase == MEMORY_WAITING)
				break;
		if (r == NULL)
			break;
		req_fail(r, GRPC_STATUS_UNAVAILABLE, "journal unavailable");
	}
}

void
wrk_memory_free(struct wrk_ctx *ctx)
{
	if (ctx->memory == NULL)
		return;
	while (!LIST_EMPTY(&ctx->memory->reqs))
		req_free(LIST_FIRST(&ctx->memory->reqs));
	free(ctx->memory);
	ctx->memory = NULL;
}
