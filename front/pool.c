/*
 * pool.c: routing RunStream calls, and the service calls a worker answers
 * (services.c: IngestMemory, SearchMemory, PutSecret, GetSecret), to the
 * workers of their tenant.
 *
 * Process: palyra-front. Touches the worker channels (through peer.c), the
 * calls it parks and the supervisor channel, on which it sends only
 * IPC_WORKER_WANTED naming a configured tenant.
 *
 * Workers start lazily: a call of a tenant with no worker attached is
 * parked (at most FE_PENDING_CALLS_MAX per tenant, for at most
 * FE_WORKER_START_TIMEOUT_MS) while the supervisor starts one, and goes to
 * it when its channel is attached. A call goes to the attached worker with
 * the fewest live calls; when every one of them has FE_WORKER_BUSY_RUNS or
 * more, the supervisor is asked for one more (it starts one up to the
 * tenant's `workers`). A worker that retires or dies before a run's first
 * event sends that call through here again, once; a service call is not
 * sent again (services.c says why).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "front.h"
#include "log.h"

static struct fe_pool *
pool_find(struct fe_ctx *ctx, const char *tenant)
{
	struct fe_pool *pool;

	TAILQ_FOREACH(pool, &ctx->pools, entry)
	if (strcmp(pool->tenant, tenant) == 0)
		return pool;
	return NULL;
}

static struct fe_worker *least_loaded(struct fe_ctx *, const char *,
    uint32_t *, int *);
static void pool_want(struct fe_pool *, uint32_t);

static void
want_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fe_pool *pool = arg;
	uint32_t nattached;
	int busy;

	/*
	 * Unanswered: the worker could not start yet, or the supervisor had
	 * nothing to add: a worker that retired just as a call was routed to
	 * it still counts as running until it is reaped. Calls still parked
	 * with no worker attached ask again; the supervisor ignores a request
	 * that a starting worker already covers. The next call may ask too.
	 */
	pool->wanted = 0;
	if (pool->nparked > 0 &&
	    least_loaded(pool->ctx, pool->tenant, &nattached, &busy) == NULL)
		pool_want(pool, 1);
}

/* One pool per tenant that ever had a RunStream, bounded by the tenants. */
static struct fe_pool *
pool_get(struct fe_ctx *ctx, const char *tenant)
{
	struct fe_pool *pool;

	if ((pool = pool_find(ctx, tenant)) != NULL)
		return pool;
	if ((pool = calloc(1, sizeof(*pool))) == NULL)
		return NULL;
	pool->want_timer = evtimer_new(ctx->base, want_timeout_cb, pool);
	if (pool->want_timer == NULL) {
		free(pool);
		return NULL;
	}
	pool->ctx = ctx;
	snprintf(pool->tenant, sizeof(pool->tenant), "%s", tenant);
	TAILQ_INIT(&pool->parked);
	TAILQ_INSERT_TAIL(&ctx->pools, pool, entry);
	return pool;
}

/*
 * Asks the supervisor for count workers of the pool's tenant. A request
 * for the same count is not repeated until a worker attached or
 * FE_WORKER_WANT_RETRY_MS passed (then parked calls ask again).
 */
static void
pool_want(struct fe_pool *pool, uint32_t count)
{
	Palyra__Ipc__WorkerWanted ww = PALYRA__IPC__WORKER_WANTED__INIT;
	struct fe_ctx *ctx = pool->ctx;
	struct timeval tv = {FE_WORKER_WANT_RETRY_MS / 1000,
	    (FE_WORKER_WANT_RETRY_MS % 1000) * 1000};
	int rc;

	if (pool->wanted == count || ctx->parent == NULL ||
	    !fe_tenant_known(ctx, pool->tenant))
		return;
	ww.tenant = pool->tenant;
	ww.count = count;
	rc =
	    ipc_chan_send(ctx->parent, IPC_WORKER_WANTED, 0, &ww.base, NULL, 0);
	if (rc < 0) {
		log_warn("cannot ask for a worker of %s: %s", pool->tenant,
		    strerror(-rc));
		return;
	}
	log_debug("asked for %u worker(s) of %s", count, pool->tenant);
	pool->wanted = count;
	evtimer_add(pool->want_timer, &tv);
}

/* The attached worker of tenant with the fewest calls, or NULL. */
static struct fe_worker *
least_loaded(
    struct fe_ctx *ctx, const char *tenant, uint32_t *nattached, int *busy)
{
	struct fe_worker *w, *best = NULL;

	*nattached = 0;
	*busy = 1;
	TAILQ_FOREACH(w, &ctx->workers, entry)
	{
		if (w->chan == NULL || ipc_chan_dead(w->chan) ||
		    strcmp(w->tenant, tenant) != 0)
			continue;
		(*nattached)++;
		if (w->ncalls < FE_WORKER_BUSY_RUNS)
			*busy = 0;
		if (best == NULL || w->ncalls < best->ncalls)
			best = w;
	}
	return best;
}

static void
park(struct fe_call *call, struct fe_pool *pool)
{
	if (pool->nparked >= FE_PENDING_CALLS_MAX) {
		fe_call_finish(call, GRPC_STATUS_RESOURCE_EXHAUSTED,
		    "too many calls waiting for a tenant worker");
		return;
	}
	/* A call parked again keeps its deadline. */
	if ((call->park_timer == NULL ||
		!evtimer_pending(call->park_timer, NULL)) &&
	    fe_call_park_timer_start(call) < 0) {
		fe_call_finish(
		    call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	if (call->state != FE_CALL_PARKED)
		fe_call_transition(call, FE_CALL_PARKED);
	TAILQ_INSERT_TAIL(&pool->parked, call, worker_entry);
	pool->nparked++;
	call->pool = pool;
}

/*
 * Sends the call's start to w. Returns 0; -ENOTCONN when w's channel is
 * already gone (the call is untouched: its close is on its way); or ends
 * the call and returns another error.
 */
static int
dispatch(struct fe_call *call, struct fe_worker *w)
{
	Palyra__Ipc__RunStartRequest req = PALYRA__IPC__RUN_START_REQUEST__INIT;
	enum fe_call_state from = call->state;
	int rc;

	if (call->start_req == NULL)
		rc = fe_services_dispatch(call, w);
	else {
		req.principal = call->principal;
		req.role = call->role;
		req.start = call->start_req->start;
		req.deadline_unix_ms = call->deadline_unix_ms;
		req.runtime_agent = call->runtime_agent;
		rc = fe_worker_start(w, call, &req);
	}
	if (rc == -ENOTCONN)
		return rc;
	if (rc == -ENOBUFS) {
		fe_call_finish(
		    call, GRPC_STATUS_RESOURCE_EXHAUSTED, "tenant worker busy");
		return rc;
	}
	if (rc < 0) {
		fe_call_finish(
		    call, GRPC_STATUS_UNAVAILABLE, "tenant worker unavailable");
		return rc;
	}
	if (call->park_timer != NULL)
		evtimer_del(call->park_timer);
	fe_call_transition(call, FE_CALL_RUNNING);
	/* What the client sent while the call waited (a cancel, its
	 * half-close) is handled now. */
	if (from == FE_CALL_PARKED || from == FE_CALL_RESOLVING)
		fe_call_input_resume(call);
	return 0;
}

/* call is WAITING_START (its start or service request just arrived) or
 * PARKED (rerouted). */
void
fe_pool_route(struct fe_call *call)
{
	struct fe_ctx *ctx = call->conn->ctx;
	struct fe_pool *pool;
	struct fe_worker *w;
	uint32_t nattached;
	int busy, rc;

	if ((pool = pool_get(ctx, call->tenant)) == NULL) {
		fe_call_finish(
		    call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	w = least_loaded(ctx, call->tenant, &nattached, &busy);
	if (w == NULL) {
		park(call, pool);
		if (call->pool != NULL)
			pool_want(pool, 1);
		return;
	}
	if ((rc = dispatch(call, w)) == -ENOTCONN) {
		park(call, pool);
		return;
	}
	if (rc < 0)
		return;
	/* Every attached worker busy now: ask for one more meanwhile. */
	if (least_loaded(ctx, call->tenant, &nattached, &busy) != NULL && busy)
		pool_want(pool, nattached + 1);
}

int
fe_pool_reroute(struct fe_call *call)
{
	if (call->rerouted || call->start_req == NULL ||
	    (call->state != FE_CALL_RUNNING &&
		call->state != FE_CALL_HALF_CLOSED))
		return -EALREADY;
	call->rerouted = 1;
	log_debug("call %d: worker gone before the run started, routing "
		  "it again",
	    call->stream_id);
	/* Through PARKED, so that a half-closed call is half-closed again
	 * once it runs (dispatch() resumes its input). */
	fe_call_transition(call, FE_CALL_PARKED);
	fe_pool_route(call);
	return 0;
}

void
fe_pool_attached(struct fe_ctx *ctx, const char *tenant)
{
	struct fe_pool *pool;
	struct fe_call *call;
	struct fe_worker *w;
	uint32_t nattached;
	int busy;

	if ((pool = pool_find(ctx, tenant)) == NULL)
		return;
	pool->wanted = 0;
	evtimer_del(pool->want_timer);
	while ((call = TAILQ_FIRST(&pool->parked)) != NULL) {
		w = least_loaded(ctx, tenant, &nattached, &busy);
		if (w == NULL)
			break;
		fe_pool_unpark(call);
		if (dispatch(call, w) == -ENOTCONN) {
			park(call, pool);
			break;
		}
	}
	w = least_loaded(ctx, tenant, &nattached, &busy);
	if (w != NULL && busy)
		pool_want(pool, nattached + 1);
}

void
fe_pool_unpark(struct fe_call *call)
{
	struct fe_pool *pool = call->pool;

	if (pool == NULL)
		return;
	TAILQ_REMOVE(&pool->parked, call, worker_entry);
	pool->nparked--;
	call->pool = NULL;
}

void
fe_pool_free_all(struct fe_ctx *ctx)
{
	struct fe_pool *pool;
	struct fe_call *call;

	while ((pool = TAILQ_FIRST(&ctx->pools)) != NULL) {
		while ((call = TAILQ_FIRST(&pool->parked)) != NULL) {
			fe_pool_unpark(call);
			fe_call_finish(call, GRPC_STATUS_UNAVAILABLE,
			    "tenant worker unavailable");
		}
		TAILQ_REMOVE(&ctx->pools, pool, entry);
		event_free(pool->want_timer);
		free(pool);
	}
}
