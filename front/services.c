/*
 * services.c: the unary and server-streaming service methods of palyra.v1
 * for a verified tenant token (DESIGN sections 6, 8 and 9):
 * ApprovalsService (ListApprovals, GetApproval, DecideApproval,
 * ExportApprovals, ListGrants, RevokeGrant), UsageService (GetUsage,
 * ListBudgets, SetBudget, DeleteBudget), CronService (every method),
 * MemoryService and VaultService.
 *
 * Process: palyra-front. Journald holds approvals, grants, usage, budgets,
 * cron jobs, memory items and vault ciphertexts; a worker of the token's
 * tenant answers what needs it (MemoryService IngestMemory and
 * SearchMemory compute embeddings, VaultService PutSecret and GetSecret
 * need the tenant's data key, which only its workers hold). The front
 * checks only what needs no data: the size of the request and, for the
 * methods marked write, the role (before any lookup, as for agent
 * writes). It passes the request message as it came, with the token's
 * tenant, principal and role, to its owner (IPC_SERVICE_CALL), which
 * decodes it (the one place) and answers with a gRPC status and the
 * response message (IPC_SERVICE_REPLY). The front decodes that message
 * against the method's response type before it sends it on, so nothing but
 * a well-formed response reaches a client.
 *
 * A worker-routed call goes like a RunStream start (pool.c): to the
 * least-loaded attached worker of the tenant, or parked while the
 * supervisor starts one (at most FE_WORKER_START_TIMEOUT_MS). Its request
 * bytes are kept until then. A worker that exits, retires or is replaced
 * with the call outstanding ends it with UNAVAILABLE: the front cannot
 * know whether the worker acted on it (an item stored, a secret put), so
 * it is not sent again; the client decides.
 *
 * ExportApprovals streams: journald answers with several replies, every
 * one but the last with more set, each relayed as one ExportChunk. The
 * journald channel is shared by every tenant, so a slow client cannot be
 * allowed to stop it: the chunks wait in the call's output buffer, and a
 * client that leaves more than FE_STREAM_OUT_MAX unread ends its call with
 * RESOURCE_EXHAUSTED (the rest of journald's replies are dropped).
 *
 * A call waits in RUNNING (the client may half-close meanwhile) with a
 * struct fe_service_op whose timer ends it with UNAVAILABLE when its owner
 * does not answer within FE_JOURNAL_TIMEOUT_MS (for a stream: between two
 * replies) or FE_WORKER_SERVICE_TIMEOUT_MS; the gRPC deadline (call.c) and
 * the client's cancel end it too.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <sodium.h>

#include "front.h"
#include "log.h"
#include "palyra/v1/gateway.pb-c.h"

/* One method's call in progress. */
struct fe_service_op {
	struct event *timer;
	/* A worker-routed request, kept until a worker takes it. */
	uint8_t *request;
	size_t len;
};

enum fe_service_owner {
	OWNER_JOURNALD = 0,
	OWNER_WORKER,
};

#define ROLE_DENIED_BUDGETS "changing budgets needs the operator or admin role"
#define ROLE_DENIED_VAULT                                                      \
	"secret values and deletions need the operator or admin role"

#define PATH_APPROVALS "/palyra.v1.ApprovalsService/"
#define PATH_USAGE "/palyra.v1.UsageService/"
#define PATH_VAULT "/palyra.v1.VaultService/"
#define PATH_CRON "/palyra.v1.CronService/"
#define PATH_MEMORY "/palyra.v1.MemoryService/"

static const struct fe_service {
	enum fe_method method;
	const char *path;
	const ProtobufCMessageDescriptor *response;
	int streaming;
	/* operator and admin only: why anyone else is refused, or NULL */
	const char *write;
	enum fe_service_owner owner;
	size_t request_max; /* encoded request bytes */
} services[] = {
    {FE_METHOD_LIST_APPROVALS, PATH_APPROVALS "ListApprovals",
	&palyra__v1__list_approvals_response__descriptor, 0, NULL,
	OWNER_JOURNALD, FE_SERVICE_REQUEST_MAX},
    {FE_METHOD_GET_APPROVAL, PATH_APPROVALS "GetApproval",
	&palyra__v1__approval__descriptor, 0, NULL, OWNER_JOURNALD,
	FE_SERVICE_REQUEST_MAX},
    {FE_METHOD_DECIDE_APPROVAL, PATH_APPROVALS "DecideApproval",
	&palyra__v1__approval__descriptor, 0, NULL, OWNER_JOURNALD,
	FE_SERVICE_REQUEST_MAX},
    {FE_METHOD_EXPORT_APPROVALS, PATH_APPROVALS "ExportApprovals",
	&palyra__v1__export_chunk__descriptor, 1, NULL, OWNER_JOURNALD,
	FE_SERVICE_REQUEST_MAX},
    {FE_METHOD_LIST_GRANTS, PATH_APPROVALS "ListGrants",
	&palyra__v1__list_grants_response__descriptor, 0, NULL, OWNER_JOURNALD,
	FE_SERVICE_REQUEST_MAX},
    {FE_METHOD_REVOKE_GRANT, PATH_APPROVALS "RevokeGrant",
	&palyra__v1__revoke_grant_response__descriptor, 0, NULL, OWNER_JOURNALD,
	FE_SERVICE_REQUEST_MAX},
    {FE_METHOD_GET_USAGE, PATH_USAGE "GetUsage",
	&palyra__v1__get_usage_response__descriptor, 0, NULL, OWNER_JOURNALD,
	FE_SERVICE_REQUEST_MAX},
    {FE_METHOD_LIST_BUDGETS, PATH_USAGE "ListBudgets",
	&palyra__v1__list_budgets_response__descriptor, 0, NULL, OWNER_JOURNALD,
	FE_SERVICE_REQUEST_MAX},
    {FE_METHOD_SET_BUDGET, PATH_USAGE "SetBudget",
	&palyra__v1__budget__descriptor, 0, ROLE_DENIED_BUDGETS, OWNER_JOURNALD,
	FE_SERVICE_REQUEST_MAX},
    {FE_METHOD_DELETE_BUDGET, PATH_USAGE "DeleteBudget",
	&palyra__v1__delete_budget_response__descriptor, 0, ROLE_DENIED_BUDGETS,
	OWNER_JOURNALD, FE_SERVICE_REQUEST_MAX},
    {FE_METHOD_PUT_SECRET, PATH_VAULT "PutSecret",
	&palyra__v1__secret_meta__descriptor, 0, ROLE_DENIED_VAULT,
	OWNER_WORKER, FE_VAULT_PUT_REQUEST_MAX},
    {FE_METHOD_GET_SECRET, PATH_VAULT "GetSecret",
	&palyra__v1__get_secret_response__descriptor, 0, ROLE_DENIED_VAULT,
	OWNER_WORKER, FE_SERVICE_SMALL_REQUEST_MAX},
    {FE_METHOD_DELETE_SECRET, PATH_VAULT "DeleteSecret",
	&palyra__v1__delete_secret_response__descriptor, 0, ROLE_DENIED_VAULT,
	OWNER_JOURNALD, FE_SERVICE_SMALL_REQUEST_MAX},
    {FE_METHOD_LIST_SECRETS, PATH_VAULT "ListSecrets",
	&palyra__v1__list_secrets_response__descriptor, 0, NULL, OWNER_JOURNALD,
	FE_SERVICE_SMALL_REQUEST_MAX},
    {FE_METHOD_CREATE_JOB, PATH_CRON "CreateJob",
	&palyra__v1__cron_job__descriptor, 0, NULL, OWNER_JOURNALD,
	FE_CRON_JOB_REQUEST_MAX},
    {FE_METHOD_UPDATE_JOB, PATH_CRON "UpdateJob",
	&palyra__v1__cron_job__descriptor, 0, NULL, OWNER_JOURNALD,
	FE_CRON_JOB_REQUEST_MAX},
    {FE_METHOD_DELETE_JOB, PATH_CRON "DeleteJob",
	&palyra__v1__delete_job_response__descriptor, 0, NULL, OWNER_JOURNALD,
	FE_SERVICE_SMALL_REQUEST_MAX},
    {FE_METHOD_GET_JOB, PATH_CRON "GetJob", &palyra__v1__cron_job__descriptor,
	0, NULL, OWNER_JOURNALD, FE_SERVICE_SMALL_REQUEST_MAX},
    {FE_METHOD_LIST_JOBS, PATH_CRON "ListJobs",
	&palyra__v1__list_jobs_response__descriptor, 0, NULL, OWNER_JOURNALD,
	FE_SERVICE_SMALL_REQUEST_MAX},
    {FE_METHOD_RUN_JOB_NOW, PATH_CRON "RunJobNow",
	&palyra__v1__cron_fire__descriptor, 0, NULL, OWNER_JOURNALD,
	FE_SERVICE_SMALL_REQUEST_MAX},
    {FE_METHOD_LIST_JOB_RUNS, PATH_CRON "ListJobRuns",
	&palyra__v1__list_job_runs_response__descriptor, 0, NULL,
	OWNER_JOURNALD, FE_SERVICE_SMALL_REQUEST_MAX},
    {FE_METHOD_INGEST_MEMORY, PATH_MEMORY "IngestMemory",
	&palyra__v1__memory_item__descriptor, 0, NULL, OWNER_WORKER,
	FE_MEMORY_INGEST_REQUEST_MAX},
    {FE_METHOD_SEARCH_MEMORY, PATH_MEMORY "SearchMemory",
	&palyra__v1__search_memory_response__descriptor, 0, NULL, OWNER_WORKER,
	FE_SERVICE_SMALL_REQUEST_MAX},
    {FE_METHOD_GET_MEMORY_ITEM, PATH_MEMORY "GetMemoryItem",
	&palyra__v1__memory_item__descriptor, 0, NULL, OWNER_JOURNALD,
	FE_SERVICE_SMALL_REQUEST_MAX},
    {FE_METHOD_LIST_MEMORY_ITEMS, PATH_MEMORY "ListMemoryItems",
	&palyra__v1__list_memory_items_response__descriptor, 0, NULL,
	OWNER_JOURNALD, FE_SERVICE_SMALL_REQUEST_MAX},
    {FE_METHOD_DELETE_MEMORY_ITEM, PATH_MEMORY "DeleteMemoryItem",
	&palyra__v1__delete_memory_item_response__descriptor, 0, NULL,
	OWNER_JOURNALD, FE_SERVICE_SMALL_REQUEST_MAX},
    {FE_METHOD_PURGE_MEMORY, PATH_MEMORY "PurgeMemory",
	&palyra__v1__purge_memory_response__descriptor, 0, NULL, OWNER_JOURNALD,
	FE_SERVICE_SMALL_REQUEST_MAX},
};

#define NSERVICES (sizeof(services) / sizeof(services[0]))

static const struct fe_service *
service_of(enum fe_method method)
{
	size_t i;

	for (i = 0; i < NSERVICES; i++)
		if (services[i].method == method)
			return &services[i];
	return NULL;
}

int
fe_services_method(enum fe_method method)
{
	return service_of(method) != NULL;
}

int
fe_services_worker_method(enum fe_method method)
{
	const struct fe_service *svc = service_of(method);

	return svc != NULL && svc->owner == OWNER_WORKER;
}

enum fe_method
fe_services_route(const char *path)
{
	size_t i;

	for (i = 0; i < NSERVICES; i++)
		if (strcmp(path, services[i].path) == 0)
			return services[i].method;
	return FE_METHOD_UNKNOWN;
}

static void
timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fe_call *call = arg;
	const struct fe_service *svc = service_of(call->method);

	fe_call_finish(call, GRPC_STATUS_UNAVAILABLE,
	    svc != NULL && svc->owner == OWNER_WORKER
		? "the tenant worker did not answer"
		: "the journal did not answer");
}

static int
timer_arm(struct fe_call *call, int64_t ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	return evtimer_add(call->service_op->timer, &tv) < 0 ? -ENOMEM : 0;
}

/* The request for a worker: kept, then routed (pool.c parks the call or
 * sends it through fe_services_dispatch()). */
static void
to_worker(struct fe_call *call, const uint8_t *msg, size_t len)
{
	struct fe_service_op *op = call->service_op;

	/* One byte more, so that an empty request is not malloc(0). */
	if ((op->request = malloc(len + 1)) == NULL) {
		fe_call_finish(
		    call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	if (len > 0)
		memcpy(op->request, msg, len);
	op->len = len;
	if (call->conn->ctx->draining) {
		fe_call_finish(
		    call, GRPC_STATUS_UNAVAILABLE, FE_STOPPING_MESSAGE);
		return;
	}
	fe_pool_route(call);
}

static void
to_journald(struct fe_call *call, const struct fe_service *svc,
    const uint8_t *msg, size_t len)
{
	Palyra__Ipc__ServiceCall req = PALYRA__IPC__SERVICE_CALL__INIT;
	int rc;

	fe_call_transition(call, FE_CALL_RUNNING);
	if (timer_arm(call, FE_JOURNAL_TIMEOUT_MS) < 0) {
		fe_call_finish(
		    call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	req.tenant = call->tenant;
	req.principal = call->principal;
	req.role = call->role;
	req.method = (char *)svc->path;
	req.request.data = (uint8_t *)msg;
	req.request.len = len;
	rc = fe_journal_request(call->conn->ctx, IPC_SERVICE_CALL, &req.base,
	    FE_JREQ_SERVICE, call, &call->jreq);
	if (rc == -ENOBUFS)
		fe_call_finish(
		    call, GRPC_STATUS_RESOURCE_EXHAUSTED, "server busy");
	else if (rc < 0)
		fe_call_finish(
		    call, GRPC_STATUS_UNAVAILABLE, "journal unavailable");
}

void
fe_services_message(struct fe_call *call, const uint8_t *msg, size_t len)
{
	const struct fe_service *svc = service_of(call->method);
	struct fe_ctx *ctx = call->conn->ctx;
	struct fe_service_op *op;

	if (call->state != FE_CALL_WAITING_START) {
		fe_call_abort(call, GRPC_STATUS_INVALID_ARGUMENT,
		    "the method takes one request message");
		return;
	}
	if (svc == NULL) {
		fe_call_finish(
		    call, GRPC_STATUS_UNIMPLEMENTED, "unknown method");
		return;
	}
	if (len > svc->request_max) {
		fe_call_finish(
		    call, GRPC_STATUS_RESOURCE_EXHAUSTED, "request too large");
		return;
	}
	/* The role forbids the method whatever it names: said before any
	 * lookup, so that it tells nothing about what exists. */
	if (svc->write != NULL && strcmp(call->role, "operator") != 0 &&
	    strcmp(call->role, "admin") != 0) {
		fe_call_finish(call, GRPC_STATUS_PERMISSION_DENIED, svc->write);
		return;
	}
	if ((op = calloc(1, sizeof(*op))) == NULL ||
	    (op->timer = evtimer_new(ctx->base, timeout_cb, call)) == NULL) {
		free(op);
		fe_call_finish(
		    call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	call->service_op = op;
	if (svc->owner == OWNER_WORKER)
		to_worker(call, msg, len);
	else
		to_journald(call, svc, msg, len);
}

int
fe_services_dispatch(struct fe_call *call, struct fe_worker *w)
{
	Palyra__Ipc__ServiceCall req = PALYRA__IPC__SERVICE_CALL__INIT;
	const struct fe_service *svc = service_of(call->method);
	struct fe_service_op *op = call->service_op;
	int rc;

	if (svc == NULL || op == NULL || op->request == NULL)
		return -EINVAL;
	req.tenant = call->tenant;
	req.principal = call->principal;
	req.role = call->role;
	req.method = (char *)svc->path;
	req.request.data = op->request;
	req.request.len = op->len;
	if ((rc = fe_worker_service(w, call, &req)) < 0)
		return rc;
	/* Sent: the bytes are the worker's now. */
	sodium_memzero(op->request, op->len);
	free(op->request);
	op->request = NULL;
	op->len = 0;
	if (timer_arm(call, FE_WORKER_SERVICE_TIMEOUT_MS) < 0)
		return -ENOMEM;
	return 0;
}

/* Sends the owner's response message, decoded against the method's type.
 * Returns 0, or -1 after ending the call. */
static int
relay(struct fe_call *call, const struct fe_service *svc,
    const Palyra__Ipc__ServiceReply *r)
{
	ProtobufCMessage *resp;
	int rc;

	resp = protobuf_c_message_unpack(
	    svc->response, NULL, r->response.len, r->response.data);
	if (resp == NULL) {
		log_warn("%s answered %s with a malformed message",
		    svc->owner == OWNER_WORKER ? "a worker" : "journald",
		    svc->path);
		fe_call_finish(call, GRPC_STATUS_INTERNAL, "internal error");
		return -1;
	}
	rc = fe_call_send_message(call, resp);
	/* A secret's value is in the client's frame now: no other copy
	 * stays behind in this process's heap. */
	if (svc->method == FE_METHOD_GET_SECRET) {
		Palyra__V1__GetSecretResponse *g =
		    (Palyra__V1__GetSecretResponse *)resp;

		if (g->value.data != NULL)
			sodium_memzero(g->value.data, g->value.len);
	}
	protobuf_c_message_free_unpacked(resp, NULL);
	if (rc == -ENOBUFS && svc->streaming) {
		fe_call_finish(call, GRPC_STATUS_RESOURCE_EXHAUSTED,
		    "client not reading the export");
		return -1;
	}
	if (rc < 0) {
		fe_call_finish(
		    call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return -1;
	}
	return 0;
}

void
fe_services_reply(struct fe_call *call, const Palyra__Ipc__ServiceReply *r)
{
	const struct fe_service *svc = service_of(call->method);
	uint32_t status;

	if (r == NULL || !r->more)
		call->jreq = NULL; /* the last one: peer.c frees it */
	if ((call->state != FE_CALL_RUNNING &&
		call->state != FE_CALL_HALF_CLOSED) ||
	    svc == NULL || call->service_op == NULL)
		return;
	if (r == NULL) {
		fe_call_finish(
		    call, GRPC_STATUS_UNAVAILABLE, "journal unavailable");
		return;
	}
	status = r->grpc_status;
	if (status != GRPC_STATUS_OK) {
		if (status > GRPC_STATUS_UNAUTHENTICATED)
			status = GRPC_STATUS_UNKNOWN;
		fe_call_finish(call, status, r->message);
		return;
	}
	if (r->more && !svc->streaming) {
		log_warn("%s streamed an answer to %s",
		    svc->owner == OWNER_WORKER ? "a worker" : "journald",
		    svc->path);
		fe_call_finish(call, GRPC_STATUS_INTERNAL, "internal error");
		return;
	}
	/* A stream's replies are its chunks (the last may hold none); a
	 * unary answer is always one message, empty or not. */
	if ((!svc->streaming || r->response.len > 0) && relay(call, svc, r) < 0)
		return;
	if (r->more) {
		if (timer_arm(call, FE_JOURNAL_TIMEOUT_MS) < 0)
			fe_call_finish(call, GRPC_STATUS_RESOURCE_EXHAUSTED,
			    "out of memory");
		return;
	}
	fe_call_finish(call, GRPC_STATUS_OK, NULL);
}

void
fe_services_end(struct fe_call *call)
{
	struct fe_service_op *op = call->service_op;

	if (op == NULL)
		return;
	call->service_op = NULL;
	if (op->timer != NULL)
		event_free(op->timer);
	if (op->request != NULL) {
		sodium_memzero(op->request, op->len);
		free(op->request);
	}
	free(op);
}
