/*
 * memory.c: memory items at journald (issue 8; DESIGN sections 8 and 9):
 * a worker's IPC_MEMORY_STORE and IPC_MEMORY_QUERY, the expiry sweep, and
 * the routing of MemoryService calls from the front.
 *
 * Runs in palyra-journald. Touches the memory_items table (memory_db.c)
 * of the journal.db of the worker's channel: the tenant is the channel's,
 * never one a payload names. A store goes into the tenant's open batch,
 * and its IPC_MEMORY_STORED answer goes out only after that batch
 * committed (jnl_ack.deliver), or says UNAVAILABLE when it was rolled
 * back. A query reads and answers IPC_MEMORY_HITS at once. Both answer
 * with the request's id on the worker's channel; every field is checked
 * here and a bad one refused with INVALID_ARGUMENT.
 *
 * The text of an item is redacted by value (the registry of redact.c)
 * before it is stored; the worker already took out the tenant's vault
 * values. A timer deletes expired items a second after start, then every
 * JNL_MEMORY_SWEEP_MS, at most
 * JNL_MEMORY_SWEEP_BATCH a tenant per pass (again after
 * JNL_MEMORY_SWEEP_AGAIN_MS while more are due); readers never return an
 * expired item meanwhile.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "grpc_status.h"
#include "log.h"
#include "memory.h"

#define MEMORY_PREFIX "/palyra.v1.MemoryService/"
#define E_UNAVAILABLE "journal unavailable"

/* Sends to a worker; jnl_worker_send drops one that stopped reading. */
static void
worker_send(struct jnl_worker *w, enum ipc_type type, uint32_t request_id,
    const ProtobufCMessage *msg)
{
	jnl_worker_send(w, type, request_id, msg, "a memory answer");
}

static void
stored_error(struct jnl_worker *w, uint32_t request_id, uint32_t status,
    const char *error)
{
	Palyra__Ipc__MemoryStored reply = PALYRA__IPC__MEMORY_STORED__INIT;

	reply.grpc_status = status;
	reply.error = (char *)error;
	worker_send(w, IPC_MEMORY_STORED, request_id, &reply.base);
}

/* The stored item, packed, until its batch committed. */
struct stored {
	uint8_t *item;
	size_t len;
};

static void
stored_deliver(struct jnl_ctx *ctx, struct jnl_ack *ack)
{
	Palyra__Ipc__MemoryStored reply = PALYRA__IPC__MEMORY_STORED__INIT;
	struct stored *s = ack->arg;

	(void)ctx;
	if (!ack->ok)
		stored_error(ack->worker, ack->request_id,
		    GRPC_STATUS_UNAVAILABLE,
		    ack->error != NULL ? ack->error : JNL_E_STORAGE);
	else if ((reply.item = palyra__v1__memory_item__unpack(
		      NULL, s->len, s->item)) == NULL)
		stored_error(ack->worker, ack->request_id,
		    GRPC_STATUS_UNAVAILABLE, "out of memory");
	else {
		worker_send(ack->worker, IPC_MEMORY_STORED, ack->request_id,
		    &reply.base);
		palyra__v1__memory_item__free_unpacked(reply.item, NULL);
	}
	free(s->item);
	free(s);
	ack->arg = NULL;
}

/* Queues the answer about item until t's batch commits. 0 or -ENOMEM. */
static int
stored_defer(struct jnl_ctx *ctx, struct jnl_tenant *t, struct jnl_worker *w,
    uint32_t request_id, const Palyra__V1__MemoryItem *item)
{
	struct stored *s;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return -ENOMEM;
	s->len = palyra__v1__memory_item__get_packed_size(item);
	if ((s->item = malloc(s->len + 1)) == NULL) {
		free(s);
		return -ENOMEM;
	}
	palyra__v1__memory_item__pack(item, s->item);
	if (jnl_ack_defer(ctx, t, w, request_id, stored_deliver, s) < 0) {
		free(s->item);
		free(s);
		return -ENOMEM;
	}
	return 0;
}

/* Inserts the item (text already redacted) into t's open batch. Returns 0,
 * 1 when its item_id exists, -ENOMEM, -EIO (the batch failed). */
static int
item_insert(struct jnl_ctx *ctx, struct jnl_tenant *t,
    const Palyra__V1__MemoryItem *item, const float *embedding, size_t dim)
{
	int rc;

	if (jnl_batch_begin(ctx, t) < 0)
		return -EIO;
	if ((rc = jnl_memory_insert(t, item, embedding, dim)) == -EIO)
		/* A failed statement may have ended the transaction: roll
		 * the batch back rather than guess what it still holds. */
		jnl_batch_fail(ctx, t);
	return rc;
}

/* The tenant's items (0 or more), or -EIO. */
static int64_t
items_count(struct jnl_tenant *t)
{
	sqlite3_stmt *st;
	int64_t n = -EIO;

	if ((st = jnl_memory_stmt(t, JNL_MS_COUNT)) == NULL)
		return -EIO;
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return n;
}

void
jnl_memory_store(
    struct jnl_ctx *ctx, struct jnl_worker *w, const struct ipc_msg *m)
{
	const Palyra__Ipc__MemoryStore *req =
	    (const Palyra__Ipc__MemoryStore *)m->msg;
	struct jnl_tenant *t = w->tenant;
	uint32_t id = m->hdr.request_id;
	Palyra__V1__MemoryItem item;
	uint64_t cap = JNL_MEMORY_MAX_ITEMS;
	const char *why;
	char *text;
	int64_t n;
	int rc;

	if ((why = jnl_memory_item_invalid(
		 req->item, req->n_embedding, req->embedding)) != NULL ||
	    (req->base.n_unknown_fields != 0 && (why = "unknown fields"))) {
		stored_error(w, id, GRPC_STATUS_INVALID_ARGUMENT, why);
		return;
	}
	if (req->max_items > 0 && req->max_items < cap)
		cap = req->max_items;
	if (t->db == NULL || (n = items_count(t)) < 0) {
		stored_error(w, id, GRPC_STATUS_UNAVAILABLE, E_UNAVAILABLE);
		return;
	}
	if ((uint64_t)n >= cap) {
		stored_error(w, id, GRPC_STATUS_RESOURCE_EXHAUSTED,
		    "the tenant holds its most memory items (max-items)");
		return;
	}
	if ((text = jnl_memory_redacted(ctx, req->item->text)) == NULL) {
		stored_error(w, id, GRPC_STATUS_UNAVAILABLE, "out of memory");
		return;
	}
	item = *req->item;
	item.text = text;
	if (req->n_embedding == 0)
		item.embedding_model = (char *)"";
	rc = item_insert(ctx, t, &item, req->embedding, req->n_embedding);
	if (rc == 0 && stored_defer(ctx, t, w, id, &item) < 0)
		rc = -ENOMEM;
	free(text);
	if (rc == 1)
		stored_error(
		    w, id, GRPC_STATUS_ALREADY_EXISTS, "item_id already used");
	else if (rc < 0)
		stored_error(w, id, GRPC_STATUS_UNAVAILABLE,
		    rc == -ENOMEM ? "out of memory" : JNL_E_STORAGE);
	else
		log_debug("%s: memory item %s of %s stored", t->name,
		    item.item_id, item.principal);
}

/* Queries. */

static const char *
query_invalid(const Palyra__Ipc__MemoryQuery *q)
{
	size_t i, len;

	if (!jnl_name_valid(q->principal))
		return "invalid principal";
	if (q->session_id[0] != '\0' && !jnl_name_valid(q->session_id))
		return "invalid session_id";
	len = strnlen(q->query, JNL_MEMORY_TEXT_MAX + 1);
	if (len > JNL_MEMORY_TEXT_MAX)
		return "query longer than 16 KiB";
	if (len == 0 && q->n_embedding == 0)
		return "query is empty";
	if (q->n_embedding > JNL_MEMORY_DIM_MAX)
		return "embedding has too many dimensions";
	for (i = 0; i < q->n_embedding; i++)
		if (!isfinite(q->embedding[i]))
			return "embedding holds a value that is not finite";
	if (strnlen(q->embedding_model, JNL_USAGE_MODEL_MAX + 1) >
	    JNL_USAGE_MODEL_MAX)
		return "invalid embedding_model";
	if (q->n_tags > JNL_MEMORY_TAGS_MAX)
		return "more than 16 tags";
	for (i = 0; i < q->n_tags; i++)
		if (!jnl_memory_tag_valid(q->tags[i]))
			return "a tag is not 1 to 64 bytes of [A-Za-z0-9._:-]";
	if (q->top_k > JNL_MEMORY_TOP_K_MAX)
		return "top_k is more than 100";
	if (!(q->min_score >= 0 && q->min_score <= 1))
		return "min_score is not between 0 and 1";
	if (q->base.n_unknown_fields != 0)
		return "unknown fields";
	return NULL;
}

void
jnl_memory_query(
    struct jnl_ctx *ctx, struct jnl_worker *w, const struct ipc_msg *m)
{
	const Palyra__Ipc__MemoryQuery *req =
	    (const Palyra__Ipc__MemoryQuery *)m->msg;
	Palyra__Ipc__MemoryHits reply = PALYRA__IPC__MEMORY_HITS__INIT;
	struct jnl_memory_query q;
	Palyra__V1__MemoryHit **hits = NULL;
	size_t nhits = 0;
	const char *why;
	int rc;

	(void)ctx;
	if ((why = query_invalid(req)) != NULL) {
		reply.grpc_status = GRPC_STATUS_INVALID_ARGUMENT;
		reply.error = (char *)why;
		worker_send(w, IPC_MEMORY_HITS, m->hdr.request_id, &reply.base);
		return;
	}
	memset(&q, 0, sizeof(q));
	q.principal = req->principal;
	q.session_id = req->session_id;
	q.query = req->query;
	q.embedding = req->n_embedding > 0 ? req->embedding : NULL;
	q.dim = req->n_embedding;
	q.embedding_model = req->embedding_model;
	q.tags = req->tags;
	q.ntags = req->n_tags;
	q.top_k = req->top_k > 0 ? req->top_k : JNL_MEMORY_TOP_K_DEFAULT;
	q.min_score = req->min_score;
	q.now = (int64_t)jnl_now_ms();
	if (w->tenant->db == NULL)
		rc = -EIO;
	else
		rc = jnl_memory_search(w->tenant, &q, &hits, &nhits);
	if (rc < 0) {
		reply.grpc_status = GRPC_STATUS_UNAVAILABLE;
		reply.error = rc == -ENOMEM ? "out of memory" : E_UNAVAILABLE;
	} else {
		reply.hits = hits;
		reply.n_hits = nhits;
	}
	worker_send(w, IPC_MEMORY_HITS, m->hdr.request_id, &reply.base);
	jnl_memory_hits_free(hits, nhits);
}

/* The expiry sweep. */

static void
sweep_arm(struct jnl_ctx *ctx, uint64_t ms)
{
	struct timeval tv;

	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	if (evtimer_add(ctx->memory_sweep_ev, &tv) == -1)
		log_error("cannot arm the memory sweep timer");
}

static void
sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	struct jnl_ctx *ctx = arg;
	int64_t now = (int64_t)jnl_now_ms();
	size_t i;
	int n, more = 0;

	(void)fd;
	(void)what;
	if (ctx->stopping)
		return;
	/* Until every tenant's journal is open, again soon. */
	if (ctx->ntenants == 0)
		more = 1;
	for (i = 0; i < ctx->ntenants; i++) {
		if (ctx->tenants[i]->db == NULL)
			more = 1;
		if ((n = jnl_memory_sweep_tenant(ctx, ctx->tenants[i], now,
			 JNL_MEMORY_SWEEP_BATCH)) <= 0)
			continue;
		log_debug("%s: %d expired memory item(s) deleted",
		    ctx->tenants[i]->name, n);
		if (n == JNL_MEMORY_SWEEP_BATCH)
			more = 1;
	}
	sweep_arm(ctx, more ? JNL_MEMORY_SWEEP_AGAIN_MS : JNL_MEMORY_SWEEP_MS);
}

int
jnl_memory_init(struct jnl_ctx *ctx)
{
	if ((ctx->memory_sweep_ev = evtimer_new(ctx->base, sweep_cb, ctx)) ==
		NULL ||
	    event_priority_set(ctx->memory_sweep_ev, JNL_PRIO_COMMIT) == -1)
		return -ENOMEM;
	/* The first pass soon after start: what expired while journald was
	 * down goes at once. */
	sweep_arm(ctx, JNL_MEMORY_SWEEP_AGAIN_MS);
	return 0;
}

void
jnl_memory_free(struct jnl_ctx *ctx)
{
	if (ctx->memory_sweep_ev != NULL)
		event_free(ctx->memory_sweep_ev);
	ctx->memory_sweep_ev = NULL;
}

/* MemoryService. */

int
jnl_memory_call(struct jnl_ctx *ctx, uint32_t request_id,
    const Palyra__Ipc__ServiceCall *call)
{
	const char *method = call->method + strlen(MEMORY_PREFIX);

	if (strcmp(method, "IngestMemory") == 0 ||
	    strcmp(method, "SearchMemory") == 0)
		return jnl_service_reply(ctx, request_id,
		    GRPC_STATUS_UNIMPLEMENTED,
		    "IngestMemory and SearchMemory are served by a worker",
		    NULL, 0);
	return jnl_memory_api(ctx, request_id, call);
}
