/*
 * services.c: palyra.v1.ApprovalsService (ListApprovals, GetApproval,
 * DecideApproval, ExportApprovals, ListGrants, RevokeGrant) and
 * palyra.v1.UsageService (GetUsage, ListBudgets, SetBudget, DeleteBudget)
 * for a verified tenant token (DESIGN sections 6 and 9).
 *
 * Process: palyra-front. Journald holds approvals, grants, usage and
 * budgets (journald/approvals.c, journald/usage.c). The front checks only
 * what needs no data: the size of the request and, for the budget writes,
 * the role (before any lookup, as for agent writes). It passes the request
 * message as it came, with the token's tenant, principal and role, to
 * journald (IPC_SERVICE_CALL), which decodes it (the one place) and
 * answers with a gRPC status and the response message (IPC_SERVICE_REPLY).
 * The front decodes that message against the method's response type
 * before it sends it on, so nothing but a well-formed response reaches a
 * client.
 *
 * ExportApprovals streams: journald answers with several replies, every
 * one but the last with more set, each relayed as one ExportChunk. The
 * journald channel is shared by every tenant, so a slow client cannot be
 * allowed to stop it: the chunks wait in the call's output buffer, and a
 * client that leaves more than FE_STREAM_OUT_MAX unread ends its call with
 * RESOURCE_EXHAUSTED (the rest of journald's replies are dropped).
 *
 * A call waits in RUNNING (the client may half-close meanwhile) with a
 * struct fe_service_op whose timer ends it with UNAVAILABLE when journald
 * does not answer within FE_JOURNAL_TIMEOUT_MS (for a stream: between two
 * replies); the gRPC deadline (call.c) and the client's cancel end it too.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "front.h"
#include "log.h"
#include "palyra/v1/gateway.pb-c.h"

/* One method's call in progress. */
struct fe_service_op {
	struct event *timer;
};

static const struct fe_service {
	enum fe_method method;
	const char *path;
	const ProtobufCMessageDescriptor *response;
	int streaming;
	int write; /* operator and admin only */
} services[] = {
    {FE_METHOD_LIST_APPROVALS, "/palyra.v1.ApprovalsService/ListApprovals",
	&palyra__v1__list_approvals_response__descriptor, 0, 0},
    {FE_METHOD_GET_APPROVAL, "/palyra.v1.ApprovalsService/GetApproval",
	&palyra__v1__approval__descriptor, 0, 0},
    {FE_METHOD_DECIDE_APPROVAL, "/palyra.v1.ApprovalsService/DecideApproval",
	&palyra__v1__approval__descriptor, 0, 0},
    {FE_METHOD_EXPORT_APPROVALS, "/palyra.v1.ApprovalsService/ExportApprovals",
	&palyra__v1__export_chunk__descriptor, 1, 0},
    {FE_METHOD_LIST_GRANTS, "/palyra.v1.ApprovalsService/ListGrants",
	&palyra__v1__list_grants_response__descriptor, 0, 0},
    {FE_METHOD_REVOKE_GRANT, "/palyra.v1.ApprovalsService/RevokeGrant",
	&palyra__v1__revoke_grant_response__descriptor, 0, 0},
    {FE_METHOD_GET_USAGE, "/palyra.v1.UsageService/GetUsage",
	&palyra__v1__get_usage_response__descriptor, 0, 0},
    {FE_METHOD_LIST_BUDGETS, "/palyra.v1.UsageService/ListBudgets",
	&palyra__v1__list_budgets_response__descriptor, 0, 0},
    {FE_METHOD_SET_BUDGET, "/palyra.v1.UsageService/SetBudget",
	&palyra__v1__budget__descriptor, 0, 1},
    {FE_METHOD_DELETE_BUDGET, "/palyra.v1.UsageService/DeleteBudget",
	&palyra__v1__delete_budget_response__descriptor, 0, 1},
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

	fe_call_finish(
	    call, GRPC_STATUS_UNAVAILABLE, "the journal did not answer");
}

static int
timer_arm(struct fe_call *call)
{
	struct timeval tv = {FE_JOURNAL_TIMEOUT_MS / 1000,
	    (FE_JOURNAL_TIMEOUT_MS % 1000) * 1000};

	return evtimer_add(call->service_op->timer, &tv) < 0 ? -ENOMEM : 0;
}

void
fe_services_message(struct fe_call *call, const uint8_t *msg, size_t len)
{
	Palyra__Ipc__ServiceCall req = PALYRA__IPC__SERVICE_CALL__INIT;
	const struct fe_service *svc = service_of(call->method);
	struct fe_ctx *ctx = call->conn->ctx;
	struct fe_service_op *op;
	int rc;

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
	if (len > IPC_MAX_PAYLOAD - 1024) {
		fe_call_finish(
		    call, GRPC_STATUS_RESOURCE_EXHAUSTED, "request too large");
		return;
	}
	/* The role forbids the method whatever it names: said before any
	 * lookup, so that it tells nothing about what exists. */
	if (svc->write && strcmp(call->role, "operator") != 0 &&
	    strcmp(call->role, "admin") != 0) {
		fe_call_finish(call, GRPC_STATUS_PERMISSION_DENIED,
		    "changing budgets needs the operator or admin role");
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
	fe_call_transition(call, FE_CALL_RUNNING);
	if (timer_arm(call) < 0) {
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
	rc = fe_journal_request(ctx, IPC_SERVICE_CALL, &req.base,
	    FE_JREQ_SERVICE, call, &call->jreq);
	if (rc == -ENOBUFS)
		fe_call_finish(
		    call, GRPC_STATUS_RESOURCE_EXHAUSTED, "server busy");
	else if (rc < 0)
		fe_call_finish(
		    call, GRPC_STATUS_UNAVAILABLE, "journal unavailable");
}

/* Sends journald's response message, decoded against the method's type.
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
		log_warn(
		    "journald answered %s with a malformed message", svc->path);
		fe_call_finish(call, GRPC_STATUS_INTERNAL, "internal error");
		return -1;
	}
	rc = fe_call_send_message(call, resp);
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
		log_warn("journald streamed an answer to %s", svc->path);
		fe_call_finish(call, GRPC_STATUS_INTERNAL, "internal error");
		return;
	}
	/* A stream's replies are its chunks (the last may hold none); a
	 * unary answer is always one message, empty or not. */
	if ((!svc->streaming || r->response.len > 0) && relay(call, svc, r) < 0)
		return;
	if (r->more) {
		if (timer_arm(call) < 0)
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
	free(op);
}
