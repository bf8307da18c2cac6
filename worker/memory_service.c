/*
 * memory_service.c: MemoryService IngestMemory and SearchMemory in
 * palyra-worker (DESIGN section 6; the other MemoryService methods are
 * journald's). The front routes them here (IPC_SERVICE_CALL, service.c)
 * because they need the tenant's embedder; the request is the client's
 * message, decoded here alone, and the answer goes back with
 * wrk_service_reply() once journald stored or searched (memory.c).
 *
 * A user token reaches its own principal's items; operator and admin
 * tokens may name another principal of the tenant. Process:
 * palyra-worker; touches the front channel (replies) and memory.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "grpc_status.h"
#include "log.h"
#include "memory.h"
#include "worker.h"

#define METHOD_INGEST	"/palyra.v1.MemoryService/IngestMemory"
#define METHOD_SEARCH	"/palyra.v1.MemoryService/SearchMemory"

/* One service call waiting for its memory request. */
struct service_wait {
	struct wrk_ctx	*ctx;
	uint32_t	 request_id;
};

static int
privileged(const char *role)
{
	return strcmp(role, "operator") == 0 || strcmp(role, "admin") == 0;
}

/*
 * The principal the call acts for: the token's, or the one it names when
 * its role allows. Returns it, or NULL with *code and *message set.
 */
static const char *
principal_of(const Palyra__Ipc__ServiceCall *call, const char *named,
    uint32_t *code, const char **message)
{
	if (named[0] == '\0' || strcmp(named, call->principal) == 0)
		return call->principal;
	if (!cfg_name_valid(named)) {
		*code = GRPC_STATUS_INVALID_ARGUMENT;
		*message = "invalid principal";
		return NULL;
	}
	if (!privileged(call->role)) {
		*code = GRPC_STATUS_PERMISSION_DENIED;
		*message = "only an operator or admin may name another "
		    "principal";
		return NULL;
	}
	return named;
}

static void
ingested(const struct wrk_memory_result *res, void *arg)
{
	struct service_wait *w = arg;

	if (res->code != GRPC_STATUS_OK)
		(void)wrk_service_reply(w->ctx, w->request_id, res->code,
		    res->message, NULL);
	else
		(void)wrk_service_reply(w->ctx, w->request_id,
		    GRPC_STATUS_OK, NULL, &res->item->base);
	free(w);
}

static void
searched(const struct wrk_memory_result *res, void *arg)
{
	Palyra__V1__SearchMemoryResponse resp =
	    PALYRA__V1__SEARCH_MEMORY_RESPONSE__INIT;
	struct service_wait *w = arg;

	if (res->code != GRPC_STATUS_OK)
		(void)wrk_service_reply(w->ctx, w->request_id, res->code,
		    res->message, NULL);
	else {
		resp.n_hits = res->nhits;
		resp.hits = (Palyra__V1__MemoryHit **)res->hits;
		(void)wrk_service_reply(w->ctx, w->request_id,
		    GRPC_STATUS_OK, NULL, &resp.base);
	}
	free(w);
}

/* A start error as the client's status. */
static void
start_failed(struct wrk_ctx *ctx, uint32_t request_id, int err,
    const char *why)
{
	uint32_t	 code = GRPC_STATUS_UNAVAILABLE;
	const char	*message = "journal unavailable";

	if (err == -EINVAL) {
		code = GRPC_STATUS_INVALID_ARGUMENT;
		message = why;
	} else if (err == -EBUSY) {
		code = GRPC_STATUS_RESOURCE_EXHAUSTED;
		message = "too many memory requests in flight";
	} else if (err == -ENOMEM) {
		code = GRPC_STATUS_RESOURCE_EXHAUSTED;
		message = "out of memory";
	}
	(void)wrk_service_reply(ctx, request_id, code, message, NULL);
}

static void
ingest(struct wrk_ctx *ctx, uint32_t request_id,
    const Palyra__Ipc__ServiceCall *call,
    const Palyra__V1__IngestMemoryRequest *req)
{
	struct wrk_memory_ingest_args a;
	struct service_wait *w;
	const char	*message = NULL;
	uint32_t	 code = 0;
	char		 why[160];
	int		 r;

	memset(&a, 0, sizeof(a));
	if ((a.principal = principal_of(call, req->principal, &code,
	    &message)) == NULL) {
		(void)wrk_service_reply(ctx, request_id, code, message, NULL);
		return;
	}
	a.session_id = req->session_id;
	a.source = req->source;
	a.text = req->text;
	a.tags = (const char *const *)req->tags;
	a.ntags = req->n_tags;
	a.ttl_ms = req->ttl_ms;
	if ((w = calloc(1, sizeof(*w))) == NULL) {
		start_failed(ctx, request_id, -ENOMEM, NULL);
		return;
	}
	w->ctx = ctx;
	w->request_id = request_id;
	if ((r = wrk_memory_ingest(ctx, NULL, &a, ingested, w, why,
	    sizeof(why))) < 0) {
		free(w);
		start_failed(ctx, request_id, r, why);
	}
}

static void
search(struct wrk_ctx *ctx, uint32_t request_id,
    const Palyra__Ipc__ServiceCall *call,
    const Palyra__V1__SearchMemoryRequest *req)
{
	struct wrk_memory_search_args a;
	struct service_wait *w;
	const char	*message = NULL;
	uint32_t	 code = 0;
	char		 why[160];
	int		 r;

	memset(&a, 0, sizeof(a));
	if ((a.principal = principal_of(call, req->principal, &code,
	    &message)) == NULL) {
		(void)wrk_service_reply(ctx, request_id, code, message, NULL);
		return;
	}
	a.session_id = req->session_id;
	a.query = req->query;
	a.tags = (const char *const *)req->tags;
	a.ntags = req->n_tags;
	a.top_k = req->top_k;
	a.min_score = req->min_score;
	if ((w = calloc(1, sizeof(*w))) == NULL) {
		start_failed(ctx, request_id, -ENOMEM, NULL);
		return;
	}
	w->ctx = ctx;
	w->request_id = request_id;
	if ((r = wrk_memory_search(ctx, NULL, &a, searched, w, why,
	    sizeof(why))) < 0) {
		free(w);
		start_failed(ctx, request_id, r, why);
	}
}

int
wrk_memory_call(struct wrk_ctx *ctx, uint32_t request_id,
    const Palyra__Ipc__ServiceCall *call)
{
	Palyra__V1__IngestMemoryRequest *ing;
	Palyra__V1__SearchMemoryRequest *srch;

	if (strcmp(call->method, METHOD_INGEST) == 0) {
		ing = palyra__v1__ingest_memory_request__unpack(NULL,
		    call->request.len, call->request.data);
		if (ing == NULL) {
			(void)wrk_service_reply(ctx, request_id,
			    GRPC_STATUS_INVALID_ARGUMENT,
			    "malformed request", NULL);
			return 0;
		}
		ingest(ctx, request_id, call, ing);
		palyra__v1__ingest_memory_request__free_unpacked(ing, NULL);
		return 0;
	}
	if (strcmp(call->method, METHOD_SEARCH) == 0) {
		srch = palyra__v1__search_memory_request__unpack(NULL,
		    call->request.len, call->request.data);
		if (srch == NULL) {
			(void)wrk_service_reply(ctx, request_id,
			    GRPC_STATUS_INVALID_ARGUMENT,
			    "malformed request", NULL);
			return 0;
		}
		search(ctx, request_id, call, srch);
		palyra__v1__search_memory_request__free_unpacked(srch, NULL);
		return 0;
	}
	(void)wrk_service_reply(ctx, request_id, GRPC_STATUS_UNIMPLEMENTED,
	    "unknown method", NULL);
	return 0;
}
