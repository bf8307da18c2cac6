/*
 * memory_api.c: MemoryService at journald (GetMemoryItem,
 * ListMemoryItems, DeleteMemoryItem, PurgeMemory), reached through
 * service.c and memory.c; IngestMemory and SearchMemory go to a worker.
 *
 * Runs in palyra-journald. Reads and deletes rows of the memory_items
 * table of the token's tenant (memory_db.c); a delete goes into the
 * tenant's batch and is answered only after its commit. The front
 * verified the token and names tenant, principal and role; the request
 * message is decoded here alone.
 *
 * A user token reaches its own principal's items only: another
 * principal's item is NOT_FOUND, exactly like one that does not exist, so
 * that an answer never tells whether it does. Operator and admin tokens
 * reach every item of the tenant, and may name a principal (or "*" for
 * all of them) in ListMemoryItems and PurgeMemory; a principal left empty
 * is the token's own, so that a purge without any filter takes the
 * caller's own items.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grpc_status.h"
#include "log.h"
#include "memory.h"

#define E_UNAVAILABLE "journal unavailable"
#define TAGS_MAX_LEN (JNL_MEMORY_TAG_MAX + 3)

/* A ListMemoryItems answer holds items up to this many bytes. */
#define LIST_BYTES_MAX (IPC_MAX_PAYLOAD - 4096)

static int
reply_status(
    struct jnl_ctx *ctx, uint32_t id, uint32_t code, const char *message)
{
	return jnl_service_reply(ctx, id, code, message, NULL, 0);
}

/* The filters of a List or Purge statement, parameters 1 to 3: each
 * bound only when given (not NULL, not empty). */
static void
bind_filters(sqlite3_stmt *st, const char *principal, const char *session_id,
    const char *tag)
{
	if (principal != NULL)
		sqlite3_bind_text(st, 1, principal, -1, SQLITE_STATIC);
	if (session_id[0] != '\0')
		sqlite3_bind_text(st, 2, session_id, -1, SQLITE_STATIC);
	if (tag[0] != '\0')
		sqlite3_bind_text(st, 3, tag, -1, SQLITE_STATIC);
}

/*
 * The principal a List or Purge reaches: *out is the token's own for "",
 * the one named (operator, admin; a user only its own), or NULL for "*"
 * (operator, admin). Returns 0 or a gRPC status with *why.
 */
static uint32_t
scope_principal(const Palyra__Ipc__ServiceCall *call, const char *asked,
    const char **out, const char **why)
{
	if (asked[0] == '\0') {
		*out = call->principal;
		return 0;
	}
	if (strcmp(asked, "*") == 0) {
		*out = NULL;
		if (jnl_service_privileged(call))
			return 0;
		*why = "every principal's items take an operator or admin "
		       "token";
		return GRPC_STATUS_PERMISSION_DENIED;
	}
	if (!jnl_name_valid(asked)) {
		*why = "invalid principal";
		return GRPC_STATUS_INVALID_ARGUMENT;
	}
	*out = asked;
	if (jnl_service_privileged(call) || strcmp(asked, call->principal) == 0)
		return 0;
	*why = "a user token reaches its own items only";
	return GRPC_STATUS_PERMISSION_DENIED;
}

/* Checks the session and tag filters; builds " tag " into tag_out. */
static const char *
filters_invalid(
    const char *session_id, const char *tag, char tag_out[TAGS_MAX_LEN])
{
	if (session_id[0] != '\0' && !jnl_name_valid(session_id))
		return "invalid session_id";
	tag_out[0] = '\0';
	if (tag[0] != '\0') {
		if (!jnl_memory_tag_valid(tag))
			return "tag is not 1 to 64 bytes of [A-Za-z0-9._:-]";
		snprintf(tag_out, TAGS_MAX_LEN, " %s ", tag);
	}
	return NULL;
}

/* GetMemoryItem. */

static int
get_item(struct jnl_ctx *ctx, struct jnl_tenant *t, uint32_t id,
    const Palyra__Ipc__ServiceCall *call,
    const Palyra__V1__GetMemoryItemRequest *req)
{
	Palyra__V1__MemoryItem *item = NULL;
	sqlite3_stmt *st;
	int rc, step;

	if (!jnl_memory_id_valid(req->item_id))
		return reply_status(ctx, id, GRPC_STATUS_INVALID_ARGUMENT,
		    "item_id is not 32 lower-hex characters");
	if ((st = jnl_memory_stmt(t, JNL_MS_GET)) == NULL)
		return reply_status(
		    ctx, id, GRPC_STATUS_UNAVAILABLE, E_UNAVAILABLE);
	sqlite3_bind_text(st, 1, req->item_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (int64_t)jnl_now_ms());
	step = sqlite3_step(st);
	if (step == SQLITE_ROW)
		item = jnl_memory_item_from_row(st, 0);
	sqlite3_reset(st);
	if (step != SQLITE_ROW && step != SQLITE_DONE)
		return reply_status(
		    ctx, id, GRPC_STATUS_UNAVAILABLE, E_UNAVAILABLE);
	if (step == SQLITE_ROW && item == NULL)
		return reply_status(
		    ctx, id, GRPC_STATUS_UNAVAILABLE, "out of memory");
	if (item == NULL || (!jnl_service_privileged(call) &&
				strcmp(item->principal, call->principal) != 0))
		rc = reply_status(
		    ctx, id, GRPC_STATUS_NOT_FOUND, "no such memory item");
	else
		rc = jnl_service_reply(
		    ctx, id, GRPC_STATUS_OK, NULL, &item->base, 0);
	if (item != NULL)
		palyra__v1__memory_item__free_unpacked(item, NULL);
	return rc;
}

/* ListMemoryItems. */

static int
list_items(struct jnl_ctx *ctx, struct jnl_tenant *t, uint32_t id,
    const Palyra__Ipc__ServiceCall *call,
    const Palyra__V1__ListMemoryItemsRequest *req)
{
	Palyra__V1__ListMemoryItemsResponse resp =
	    PALYRA__V1__LIST_MEMORY_ITEMS_RESPONSE__INIT;
	char tag[TAGS_MAX_LEN], after_id[JNL_CURSOR_ID_MAX + 1];
	char next[JNL_CURSOR_MAX + 1] = "";
	Palyra__V1__MemoryItem **items = NULL, *item;
	const char *principal = NULL, *why = NULL;
	size_t n = 0, limit, bytes = 0, size;
	int64_t after_ms = 0;
	sqlite3_stmt *st;
	uint32_t code;
	int rc = 0, step;

	if ((code = scope_principal(call, req->principal, &principal, &why)) !=
	    0)
		return reply_status(ctx, id, code, why);
	if ((why = filters_invalid(req->session_id, req->tag, tag)) != NULL)
		return reply_status(ctx, id, GRPC_STATUS_INVALID_ARGUMENT, why);
	if (req->page_token[0] != '\0' &&
	    jnl_cursor_decode(
		req->page_token, &after_ms, after_id, sizeof(after_id)) < 0)
		return reply_status(ctx, id, GRPC_STATUS_INVALID_ARGUMENT,
		    "invalid page_token");
	limit = req->page_size == 0		       ? JNL_MEMORY_PAGE_DEFAULT
		: req->page_size > JNL_MEMORY_PAGE_MAX ? JNL_MEMORY_PAGE_MAX
						       : req->page_size;
	if ((st = jnl_memory_stmt(
		 t, principal != NULL ? JNL_MS_LIST_ONE : JNL_MS_LIST_ALL)) ==
	    NULL)
		return reply_status(
		    ctx, id, GRPC_STATUS_UNAVAILABLE, E_UNAVAILABLE);
	if ((items = calloc(limit, sizeof(*items))) == NULL)
		return reply_status(
		    ctx, id, GRPC_STATUS_UNAVAILABLE, "out of memory");
	bind_filters(st, principal, req->session_id, tag);
	sqlite3_bind_int64(st, 4, (int64_t)jnl_now_ms());
	if (req->page_token[0] != '\0') {
		sqlite3_bind_int64(st, 5, after_ms);
		sqlite3_bind_text(st, 6, after_id, -1, SQLITE_STATIC);
	}
	sqlite3_bind_int64(st, 7, (int64_t)limit + 1);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == limit) {
			/* One more exists: the page ends at the last one. */
			(void)jnl_cursor_encode(items[n - 1]->created_unix_ms,
			    items[n - 1]->item_id, next, sizeof(next));
			break;
		}
		if ((item = jnl_memory_item_from_row(st, 0)) == NULL) {
			rc = -ENOMEM;
			break;
		}
		size = palyra__v1__memory_item__get_packed_size(item) + 8;
		if (n > 0 && bytes + size > LIST_BYTES_MAX) {
			/* Full: the next page starts with this one. */
			palyra__v1__memory_item__free_unpacked(item, NULL);
			(void)jnl_cursor_encode(items[n - 1]->created_unix_ms,
			    items[n - 1]->item_id, next, sizeof(next));
			break;
		}
		bytes += size;
		items[n++] = item;
	}
	if (rc == 0 && step != SQLITE_ROW && step != SQLITE_DONE)
		rc = -EIO;
	sqlite3_reset(st);
	if (rc < 0)
		rc = reply_status(ctx, id, GRPC_STATUS_UNAVAILABLE,
		    rc == -ENOMEM ? "out of memory" : E_UNAVAILABLE);
	else {
		resp.items = items;
		resp.n_items = n;
		resp.next_page_token = next;
		rc = jnl_service_reply(
		    ctx, id, GRPC_STATUS_OK, NULL, &resp.base, 0);
	}
	while (n > 0)
		palyra__v1__memory_item__free_unpacked(items[--n], NULL);
	free(items);
	return rc;
}

/* Deletes: answered once their batch committed. */

struct deleted {
	int purge;
	uint64_t count;
};

static void
deleted_deliver(struct jnl_ctx *ctx, struct jnl_ack *ack)
{
	Palyra__V1__DeleteMemoryItemResponse one =
	    PALYRA__V1__DELETE_MEMORY_ITEM_RESPONSE__INIT;
	Palyra__V1__PurgeMemoryResponse purged =
	    PALYRA__V1__PURGE_MEMORY_RESPONSE__INIT;
	struct deleted *d = ack->arg;

	if (!ack->ok)
		(void)reply_status(ctx, ack->request_id,
		    GRPC_STATUS_UNAVAILABLE,
		    ack->error != NULL ? ack->error : JNL_E_STORAGE);
	else if (d->purge) {
		purged.deleted = d->count;
		(void)jnl_service_reply(ctx, ack->request_id, GRPC_STATUS_OK,
		    NULL, &purged.base, 0);
	} else
		(void)jnl_service_reply(
		    ctx, ack->request_id, GRPC_STATUS_OK, NULL, &one.base, 0);
	free(d);
	ack->arg = NULL;
}

static int
deleted_defer(struct jnl_ctx *ctx, struct jnl_tenant *t, uint32_t id, int purge,
    uint64_t count)
{
	struct deleted *d;

	if ((d = calloc(1, sizeof(*d))) == NULL)
		return -ENOMEM;
	d->purge = purge;
	d->count = count;
	if (jnl_ack_defer(ctx, t, NULL, id, deleted_deliver, d) < 0) {
		free(d);
		return -ENOMEM;
	}
	return 0;
}

/* Steps a delete in t's batch. Returns the rows deleted, or -EIO (the
 * batch failed). */
static int64_t
delete_step(struct jnl_ctx *ctx, struct jnl_tenant *t, sqlite3_stmt *st)
{
	int rc;

	if ((rc = jnl_step_done(st)) != 0) {
		log_error("%s: memory delete: %s", t->name, sqlite3_errstr(rc));
		jnl_batch_fail(ctx, t);
		return -EIO;
	}
	return sqlite3_changes64(t->db);
}

static int
delete_item(struct jnl_ctx *ctx, struct jnl_tenant *t, uint32_t id,
    const Palyra__Ipc__ServiceCall *call,
    const Palyra__V1__DeleteMemoryItemRequest *req)
{
	sqlite3_stmt *st;
	int64_t n;

	if (!jnl_memory_id_valid(req->item_id))
		return reply_status(ctx, id, GRPC_STATUS_INVALID_ARGUMENT,
		    "item_id is not 32 lower-hex characters");
	if (jnl_batch_begin(ctx, t) < 0 ||
	    (st = jnl_memory_stmt(t, JNL_MS_DELETE)) == NULL)
		return reply_status(
		    ctx, id, GRPC_STATUS_UNAVAILABLE, E_UNAVAILABLE);
	sqlite3_bind_text(st, 1, req->item_id, -1, SQLITE_STATIC);
	if (!jnl_service_privileged(call))
		sqlite3_bind_text(st, 2, call->principal, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (int64_t)jnl_now_ms());
	if ((n = delete_step(ctx, t, st)) < 0)
		return reply_status(
		    ctx, id, GRPC_STATUS_UNAVAILABLE, E_UNAVAILABLE);
	if (n == 0)
		return reply_status(
		    ctx, id, GRPC_STATUS_NOT_FOUND, "no such memory item");
	log_info("%s: memory item %s deleted by %s", t->name, req->item_id,
	    call->principal);
	if (deleted_defer(ctx, t, id, 0, 1) < 0)
		return reply_status(
		    ctx, id, GRPC_STATUS_UNAVAILABLE, "out of memory");
	return 0;
}

/* PurgeMemory. */

static int
purge(struct jnl_ctx *ctx, struct jnl_tenant *t, uint32_t id,
    const Palyra__Ipc__ServiceCall *call,
    const Palyra__V1__PurgeMemoryRequest *req)
{
	const char *principal = NULL, *why = NULL;
	char tag[TAGS_MAX_LEN];
	sqlite3_stmt *st;
	uint32_t code;
	int64_t n;

	if ((code = scope_principal(call, req->principal, &principal, &why)) !=
	    0)
		return reply_status(ctx, id, code, why);
	if ((why = filters_invalid(req->session_id, req->tag, tag)) != NULL)
		return reply_status(ctx, id, GRPC_STATUS_INVALID_ARGUMENT, why);
	if (jnl_batch_begin(ctx, t) < 0 ||
	    (st = jnl_memory_stmt(t, JNL_MS_PURGE)) == NULL)
		return reply_status(
		    ctx, id, GRPC_STATUS_UNAVAILABLE, E_UNAVAILABLE);
	bind_filters(st, principal, req->session_id, tag);
	sqlite3_bind_int(st, 4, req->expired_only ? 1 : 0);
	sqlite3_bind_int64(st, 5, (int64_t)jnl_now_ms());
	if ((n = delete_step(ctx, t, st)) < 0)
		return reply_status(
		    ctx, id, GRPC_STATUS_UNAVAILABLE, E_UNAVAILABLE);
	log_info("%s: %lld memory item(s) of %s purged by %s%s", t->name,
	    (long long)n, principal != NULL ? principal : "every principal",
	    call->principal, req->expired_only ? " (expired only)" : "");
	if (deleted_defer(ctx, t, id, 1, (uint64_t)n) < 0)
		return reply_status(
		    ctx, id, GRPC_STATUS_UNAVAILABLE, "out of memory");
	return 0;
}

/* Dispatch. */

/* A valid principal and an open journal. */
static int
memory_check(struct jnl_ctx *ctx, uint32_t request_id,
    const Palyra__Ipc__ServiceCall *call, struct jnl_tenant *t, int *rc)
{
	if (!jnl_name_valid(call->principal))
		*rc = reply_status(ctx, request_id,
		    GRPC_STATUS_PERMISSION_DENIED, "invalid principal");
	else if (t->db == NULL)
		*rc = reply_status(
		    ctx, request_id, GRPC_STATUS_UNAVAILABLE, E_UNAVAILABLE);
	else
		return 0;
	return -1;
}

int
jnl_memory_api(struct jnl_ctx *ctx, uint32_t request_id,
    const Palyra__Ipc__ServiceCall *call)
{
	static const struct jnl_method methods[] = {
	    {"GetMemoryItem", &palyra__v1__get_memory_item_request__descriptor},
	    {"ListMemoryItems",
		&palyra__v1__list_memory_items_request__descriptor},
	    {"DeleteMemoryItem",
		&palyra__v1__delete_memory_item_request__descriptor},
	    {"PurgeMemory", &palyra__v1__purge_memory_request__descriptor},
	};
	static const struct jnl_service svc = {
	    methods, sizeof(methods) / sizeof(methods[0]), memory_check};
	ProtobufCMessage *in;
	struct jnl_tenant *t;
	int i, rc;

	if ((i = jnl_service_open(ctx, request_id, call,
		 strrchr(call->method, '/') + 1, &svc, &t, &in, &rc)) < 0)
		return rc;
	switch (i) {
	case 0:
		rc = get_item(ctx, t, request_id, call,
		    (const Palyra__V1__GetMemoryItemRequest *)in);
		break;
	case 1:
		rc = list_items(ctx, t, request_id, call,
		    (const Palyra__V1__ListMemoryItemsRequest *)in);
		break;
	case 2:
		rc = delete_item(ctx, t, request_id, call,
		    (const Palyra__V1__DeleteMemoryItemRequest *)in);
		break;
	default:
		rc = purge(ctx, t, request_id, call,
		    (const Palyra__V1__PurgeMemoryRequest *)in);
		break;
	}
	protobuf_c_message_free_unpacked(in, NULL);
	return rc;
}
