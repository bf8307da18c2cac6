/*
 * rpc.c: the gRPC methods palyra-front serves: grpc.health.v1.Health/Check,
 * palyra.v1.GatewayService/GetHealth and RunStream. RunStream authenticates
 * the bearer token at journald, then relays the run between the client and
 * a worker of the token's tenant (pool.c picks it, or waits for one).
 *
 * Process: palyra-front. Decodes client request messages (the one place
 * they are decoded) and worker replies already decoded by the IPC layer;
 * sends through call.c and peer.c only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "config.h"
#include "front.h"
#include "grpc/health/v1/health.pb-c.h"
#include "log.h"
#include "palyra/v1/gateway.pb-c.h"

#ifndef PALYRA_VERSION
#define PALYRA_VERSION "0.1.0"
#endif

/* How early the worker's deadline timer may end a run before the front's. */
#define FE_DEADLINE_SLACK_MS 100

#define PATH_HEALTH_CHECK "/grpc.health.v1.Health/Check"
#define PATH_HEALTH_WATCH "/grpc.health.v1.Health/Watch"
#define PATH_REFLECTION_V1                                                     \
	"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
#define PATH_REFLECTION_V1ALPHA                                                \
	"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
#define PATH_GET_HEALTH "/palyra.v1.GatewayService/GetHealth"
#define PATH_RUN_STREAM "/palyra.v1.GatewayService/RunStream"
#define PATH_GET_RUN "/palyra.v1.GatewayService/GetRun"
#define PATH_ABORT_RUN "/palyra.v1.GatewayService/AbortRun"
#define PATH_LIST_RUN_EVENTS "/palyra.v1.GatewayService/ListRunEvents"
#define PATH_LIST_SESSIONS "/palyra.v1.GatewayService/ListSessions"
#define PATH_RESOLVE_SESSION "/palyra.v1.GatewayService/ResolveSession"
#define PATH_CLEANUP_SESSION "/palyra.v1.GatewayService/CleanupSession"
#define PATH_APPEND_EVENT "/palyra.v1.GatewayService/AppendEvent"
#define PATH_LIST_AGENTS "/palyra.v1.GatewayService/ListAgents"
#define PATH_GET_AGENT "/palyra.v1.GatewayService/GetAgent"
#define PATH_CREATE_AGENT "/palyra.v1.GatewayService/CreateAgent"
#define PATH_UPDATE_AGENT "/palyra.v1.GatewayService/UpdateAgent"
#define PATH_DELETE_AGENT "/palyra.v1.GatewayService/DeleteAgent"
#define HEALTH_SERVING                                                         \
	GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
#define HEALTH_NOT_SERVING                                                     \
	GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING
#define CANCEL_REASON_MAX FE_RUN_REASON_MAX

enum fe_method
fe_rpc_route(const char *path)
{
	if (strcmp(path, PATH_GET_HEALTH) == 0)
		return FE_METHOD_GET_HEALTH;
	if (strcmp(path, PATH_RUN_STREAM) == 0)
		return FE_METHOD_RUN_STREAM;
	if (strcmp(path, PATH_GET_RUN) == 0)
		return FE_METHOD_GET_RUN;
	if (strcmp(path, PATH_ABORT_RUN) == 0)
		return FE_METHOD_ABORT_RUN;
	if (strcmp(path, PATH_LIST_RUN_EVENTS) == 0)
		return FE_METHOD_LIST_RUN_EVENTS;
	if (strcmp(path, PATH_LIST_SESSIONS) == 0)
		return FE_METHOD_LIST_SESSIONS;
	if (strcmp(path, PATH_RESOLVE_SESSION) == 0)
		return FE_METHOD_RESOLVE_SESSION;
	if (strcmp(path, PATH_CLEANUP_SESSION) == 0)
		return FE_METHOD_CLEANUP_SESSION;
	if (strcmp(path, PATH_APPEND_EVENT) == 0)
		return FE_METHOD_APPEND_EVENT;
	if (strcmp(path, PATH_LIST_AGENTS) == 0)
		return FE_METHOD_LIST_AGENTS;
	if (strcmp(path, PATH_GET_AGENT) == 0)
		return FE_METHOD_GET_AGENT;
	if (strcmp(path, PATH_CREATE_AGENT) == 0)
		return FE_METHOD_CREATE_AGENT;
	if (strcmp(path, PATH_UPDATE_AGENT) == 0)
		return FE_METHOD_UPDATE_AGENT;
	if (strcmp(path, PATH_DELETE_AGENT) == 0)
		return FE_METHOD_DELETE_AGENT;
	if (strcmp(path, PATH_HEALTH_CHECK) == 0)
		return FE_METHOD_HEALTH_CHECK;
	if (strcmp(path, PATH_HEALTH_WATCH) == 0)
		return FE_METHOD_HEALTH_WATCH;
	if (strcmp(path, PATH_REFLECTION_V1) == 0)
		return FE_METHOD_REFLECTION_V1;
	if (strcmp(path, PATH_REFLECTION_V1ALPHA) == 0)
		return FE_METHOD_REFLECTION_V1ALPHA;
	return fe_services_route(path);
}

int
fe_rpc_needs_auth(enum fe_method method)
{
	return method == FE_METHOD_RUN_STREAM || method == FE_METHOD_GET_RUN ||
	       method == FE_METHOD_ABORT_RUN ||
	       method == FE_METHOD_LIST_RUN_EVENTS ||
	       method == FE_METHOD_LIST_SESSIONS ||
	       method == FE_METHOD_RESOLVE_SESSION ||
	       method == FE_METHOD_CLEANUP_SESSION ||
	       method == FE_METHOD_APPEND_EVENT || fe_agents_method(method) ||
	       fe_services_method(method);
}

static void
begin_run_stream(struct fe_call *call)
{
	struct fe_ctx *ctx = call->conn->ctx;
	Palyra__Ipc__TokenLookup lookup = PALYRA__IPC__TOKEN_LOOKUP__INIT;
	int rc;

	/* A source out of failures is refused before any lookup. */
	if (fe_authfail_blocked_ms(ctx, call->conn->has_source ?
		call->conn->source : NULL) > 0) {
		fe_call_finish(call, GRPC_STATUS_RESOURCE_EXHAUSTED,
		    "too many authentication failures");
		return;
	}
	if (call->auth != FE_AUTH_PRESENT) {
		fe_call_finish(call, GRPC_STATUS_UNAUTHENTICATED,
		    "missing or malformed bearer token");
		return;
	}
	if (!ctx->have_keys) {
		fe_call_finish(call, GRPC_STATUS_UNAVAILABLE, "not ready");
		return;
	}
	lookup.token_hash.data = call->token_hash;
	lookup.token_hash.len = sizeof(call->token_hash);
	rc = fe_journal_request(ctx, IPC_TOKEN_LOOKUP, &lookup.base,
	    FE_JREQ_LOOKUP, call, &call->jreq);
	if (rc == -ENOBUFS) {
		fe_call_finish(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "server busy");
		return;
	}
	if (rc < 0) {
		fe_call_finish(
		    call, GRPC_STATUS_UNAVAILABLE, "journal unavailable");
		return;
	}
	fe_call_transition(call, FE_CALL_AUTHENTICATING);
	if (fe_call_auth_timer_start(call) < 0)
		fe_call_finish(
		    call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
}

void
fe_rpc_begin(struct fe_call *call)
{
	if (call->conn->ctx->draining) {
		fe_call_finish(call, GRPC_STATUS_UNAVAILABLE, FE_STOPPING_MESSAGE);
		return;
	}
	if (fe_rpc_needs_auth(call->method))
		begin_run_stream(call);
	else
		fe_call_transition(call, FE_CALL_WAITING_START);
}

void
fe_rpc_journal_failed(struct fe_call *call)
{
	call->jreq = NULL;
	fe_call_finish(call, GRPC_STATUS_UNAVAILABLE, "journal unavailable");
}

void
fe_rpc_token_info(struct fe_call *call, const Palyra__Ipc__TokenInfo *info)
{
	struct fe_ctx *ctx = call->conn->ctx;

	call->jreq = NULL;
	if (call->auth_timer != NULL)
		evtimer_del(call->auth_timer);
	if (call->state != FE_CALL_AUTHENTICATING)
		return;
	if (!info->found) {
		fe_authfail_record(ctx, call->conn->has_source ?
			call->conn->source : NULL);
		fe_call_finish(call, GRPC_STATUS_UNAUTHENTICATED, "invalid token");
		return;
	}
	if (!cfg_name_valid(info->tenant) || !cfg_name_valid(info->principal) ||
	    strlen(info->role) >= sizeof(call->role)) {
		log_warn("journald returned a malformed token record");
		fe_call_finish(call, GRPC_STATUS_INTERNAL, "internal error");
		return;
	}
	/* The token of a tenant that a reload or the admin API removed
	 * authenticates nobody (its record stays, for the day the name is
	 * created again). */
	if (!fe_tenant_known(ctx, info->tenant)) {
		fe_call_finish(call, GRPC_STATUS_UNAUTHENTICATED,
		    "the token's tenant does not exist");
		return;
	}
	/* The tenant of the run comes from here and nowhere else. */
	memcpy(call->tenant, info->tenant, strlen(info->tenant) + 1);
	memcpy(call->principal, info->principal, strlen(info->principal) + 1);
	memcpy(call->role, info->role, strlen(info->role) + 1);
	fe_call_transition(call, FE_CALL_WAITING_START);
	if (call->http != NULL && fe_console_authenticated(call))
		return;
	fe_call_input_resume(call);
}

static void
health_check(struct fe_call *call, const uint8_t *msg, size_t len)
{
	Grpc__Health__V1__HealthCheckRequest *req;
	Grpc__Health__V1__HealthCheckResponse resp =
	    GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
	int known;

	req = grpc__health__v1__health_check_request__unpack(NULL, len, msg);
	if (req == NULL) {
		fe_call_finish(
		    call, GRPC_STATUS_INVALID_ARGUMENT, "invalid request message");
		return;
	}
	known = req->service[0] == '\0' ||
		strcmp(req->service, "palyra.v1.GatewayService") == 0 ||
		strcmp(req->service, "palyra.v1.ApprovalsService") == 0 ||
		strcmp(req->service, "palyra.v1.UsageService") == 0 ||
		strcmp(req->service, "palyra.v1.VaultService") == 0 ||
		strcmp(req->service, "palyra.v1.CronService") == 0 ||
		strcmp(req->service, "palyra.v1.MemoryService") == 0;
	grpc__health__v1__health_check_request__free_unpacked(req, NULL);
	if (!known) {
		fe_call_finish(call, GRPC_STATUS_NOT_FOUND, "unknown service");
		return;
	}
	resp.status = call->conn->ctx->journald != NULL ? HEALTH_SERVING
							: HEALTH_NOT_SERVING;
	if (fe_call_send_message(call, &resp.base) < 0) {
		fe_call_finish(
		    call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	fe_call_finish(call, GRPC_STATUS_OK, NULL);
}

static void
get_health(struct fe_call *call, const uint8_t *msg, size_t len)
{
	Palyra__V1__GetHealthRequest *req;
	Palyra__V1__GetHealthResponse resp =
	    PALYRA__V1__GET_HEALTH_RESPONSE__INIT;
	struct fe_ctx *ctx = call->conn->ctx;

	/* The request has no fields: an empty one needs no decoding. */
	if (len > 0) {
		req = palyra__v1__get_health_request__unpack(NULL, len, msg);
		if (req == NULL) {
			fe_call_finish(call, GRPC_STATUS_INVALID_ARGUMENT,
			    "invalid request message");
			return;
		}
		palyra__v1__get_health_request__free_unpacked(req, NULL);
	}
	resp.status = "SERVING";
	resp.version = PALYRA_VERSION;
	resp.uptime_seconds = fe_uptime_seconds(ctx);
	resp.tenants = (uint32_t)ctx->ntenants;
	if (fe_call_send_message(call, &resp.base) < 0) {
		fe_call_finish(
		    call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	fe_call_finish(call, GRPC_STATUS_OK, NULL);
}

/* Returns NULL if the start's client-side tools fit, else why not; the
 * worker checks their names and schemas. */
static const char *
tools_invalid(const Palyra__V1__RunStart *start)
{
	const Palyra__V1__ToolDeclaration *t;
	size_t i;

	if (start->n_tools > FE_RUN_TOOLS_MAX)
		return "too many tools (at most 64)";
	for (i = 0; i < start->n_tools; i++) {
		t = start->tools[i];
		if (t->name[0] == '\0')
			return "a tool has no name";
		if (strlen(t->name) > FE_RUN_TOOL_NAME_MAX)
			return "tool name too long";
		if (strlen(t->description) > FE_RUN_TOOL_DESCRIPTION_MAX)
			return "tool description too long";
		if (strlen(t->parameters_json) > FE_RUN_TOOL_SCHEMA_MAX)
			return "tool parameters_json too long";
	}
	if (protobuf_c_message_get_packed_size(&start->base) > FE_RUN_START_MAX)
		return "start message too large";
	return NULL;
}

/* Returns NULL if the start is acceptable, else why not. */
static const char *
start_invalid(const Palyra__V1__RunStart *start)
{
	size_t input = strlen(start->input);

	if (input == 0)
		return "input is empty";
	if (input > TEXT_MAX_LEN)
		return "input too long";
	if (strlen(start->agent) > NAME_MAX_LEN * 4)
		return "agent name too long";
	if (strlen(start->session_key) > NAME_MAX_LEN * 4)
		return "session_key too long";
	if (strlen(start->session_id) > NAME_MAX_LEN * 4)
		return "session_id too long";
	if (strlen(start->idempotency_key) > NAME_MAX_LEN * 4)
		return "idempotency_key too long";
	return tools_invalid(start);
}

/* Returns 1 when the call kept req (until its run's first event). */
static int
run_start(struct fe_call *call, Palyra__V1__RunStreamRequest *req)
{
	const char *why;

	/* A start that names a run follows it instead (reattach.c). */
	if (req->start->run_id[0] != '\0') {
		if (call->conn->ctx->draining)
			fe_call_finish(
			    call, GRPC_STATUS_UNAVAILABLE, FE_STOPPING_MESSAGE);
		else
			fe_reattach_start(call, req->start);
		return 0;
	}
	if ((why = start_invalid(req->start)) != NULL) {
		fe_call_finish(call, GRPC_STATUS_INVALID_ARGUMENT, why);
		return 0;
	}
	if (call->conn->ctx->draining) {
		fe_call_finish(call, GRPC_STATUS_UNAVAILABLE, FE_STOPPING_MESSAGE);
		return 0;
	}
	call->start_req = req;
	fe_agents_resolve(call);
	return 1;
}

/*
 * Follow-up input for the stream's live run: to the worker holding it,
 * which queues it as the next user turn (worker/prepare.c) or ends this
 * stream (the run goes on) when it cannot take it.
 */
static void
run_input(struct fe_call *call, const Palyra__V1__Input *input)
{
	Palyra__Ipc__RunInput req = PALYRA__IPC__RUN_INPUT__INIT;
	size_t len = strlen(input->text);
	int rc;

	if (len == 0) {
		fe_call_finish(
		    call, GRPC_STATUS_INVALID_ARGUMENT, "input is empty");
		return;
	}
	if (len > TEXT_MAX_LEN) {
		fe_call_finish(
		    call, GRPC_STATUS_INVALID_ARGUMENT, "input too long");
		return;
	}
	if (call->reattached) {
		fe_call_finish(call, GRPC_STATUS_FAILED_PRECONDITION,
		    "input on a reattached stream");
		return;
	}
	/* The worker refuses input to a run that ended; one this stream
	 * cancelled is refused here, as it is ending for sure. */
	if (call->cancel_sent || call->worker == NULL ||
	    call->worker->chan == NULL) {
		fe_call_finish(call, GRPC_STATUS_FAILED_PRECONDITION,
		    "the run has ended");
		return;
	}
	req.call_id = call->call_id;
	req.text = input->text;
	rc = ipc_chan_send(call->worker->chan, IPC_RUN_INPUT, call->call_id,
	    &req.base, NULL, 0);
	if (rc < 0)
		fe_call_finish(call, GRPC_STATUS_UNAVAILABLE, "worker busy");
}

/* Whether the stream's run may take a decision or a tool result: else
 * the call ends with FAILED_PRECONDITION, as input to no live run. The
 * worker checks the rest (the approval or the call is the run's, pending,
 * and the stream's principal may decide) and ends the stream with its
 * RunErrorMsg when it refuses. A reattached stream may send them too. */
static int
run_live(struct fe_call *call)
{
	if (call->cancel_sent || call->worker == NULL ||
	    call->worker->chan == NULL) {
		fe_call_finish(call, GRPC_STATUS_FAILED_PRECONDITION,
		    call->reattached && !call->cancel_sent
			? "no worker holds the run; decide with "
			  "ApprovalsService.DecideApproval"
			: "the run has ended");
		return 0;
	}
	return 1;
}

/* RunStreamRequest.approval: to the worker holding the run, with the
 * stream's principal and role (IPC_RUN_DECISION). */
static void
run_decision(struct fe_call *call, const Palyra__V1__ApprovalDecision *d)
{
	Palyra__Ipc__RunDecision req = PALYRA__IPC__RUN_DECISION__INIT;
	size_t id_len = strlen(d->approval_id);

	if (id_len == 0 || id_len > FE_APPROVAL_ID_MAX) {
		fe_call_finish(call, GRPC_STATUS_INVALID_ARGUMENT,
		    id_len == 0 ? "approval_id is empty"
				: "approval_id too long");
		return;
	}
	if (strlen(d->reason) > FE_RUN_REASON_MAX) {
		fe_call_finish(
		    call, GRPC_STATUS_INVALID_ARGUMENT, "reason too long");
		return;
	}
	if (!run_live(call))
		return;
	req.call_id = call->call_id;
	req.decision = (Palyra__V1__ApprovalDecision *)d;
	req.principal = call->principal;
	req.role = call->role;
	if (ipc_chan_send(call->worker->chan, IPC_RUN_DECISION, call->call_id,
		&req.base, NULL, 0) < 0)
		fe_call_finish(call, GRPC_STATUS_UNAVAILABLE, "worker busy");
}

/* RunStreamRequest.tool_result: the client's answer to a ToolCall of one
 * of its tools (IPC_RUN_TOOL_RESULT). */
static void
run_tool_result(struct fe_call *call, const Palyra__V1__ClientToolResult *r)
{
	Palyra__Ipc__RunToolResult req = PALYRA__IPC__RUN_TOOL_RESULT__INIT;
	size_t id_len = strlen(r->tool_call_id);

	if (id_len == 0 || id_len > FE_TOOL_CALL_ID_MAX) {
		fe_call_finish(call, GRPC_STATUS_INVALID_ARGUMENT,
		    id_len == 0 ? "tool_call_id is empty"
				: "tool_call_id too long");
		return;
	}
	if (strlen(r->content) > FE_TOOL_RESULT_MAX) {
		fe_call_finish(call, GRPC_STATUS_INVALID_ARGUMENT,
		    "tool result content too long (at most 64 KiB)");
		return;
	}
	if (!run_live(call))
		return;
	req.call_id = call->call_id;
	req.result = (Palyra__V1__ClientToolResult *)r;
	if (ipc_chan_send(call->worker->chan, IPC_RUN_TOOL_RESULT,
		call->call_id, &req.base, NULL, 0) < 0)
		fe_call_finish(call, GRPC_STATUS_UNAVAILABLE, "worker busy");
}

static void
run_stream_message(struct fe_call *call, const uint8_t *msg, size_t len)
{
	Palyra__V1__RunStreamRequest *req;

	req = palyra__v1__run_stream_request__unpack(NULL, len, msg);
	if (req == NULL) {
		fe_call_abort(
		    call, GRPC_STATUS_INVALID_ARGUMENT, "invalid RunStreamRequest");
		return;
	}
	if (call->state == FE_CALL_WAITING_START) {
		if (req->msg_case ==
			PALYRA__V1__RUN_STREAM_REQUEST__MSG_APPROVAL ||
		    req->msg_case ==
			PALYRA__V1__RUN_STREAM_REQUEST__MSG_TOOL_RESULT)
			fe_call_finish(call, GRPC_STATUS_FAILED_PRECONDITION,
			    "no run started on this stream");
		else if (req->msg_case !=
		    PALYRA__V1__RUN_STREAM_REQUEST__MSG_START)
			fe_call_finish(call, GRPC_STATUS_INVALID_ARGUMENT,
			    "RunStream needs a start message");
		else if (run_start(call, req))
			return;
	} else {
		switch (req->msg_case) {
		case PALYRA__V1__RUN_STREAM_REQUEST__MSG_CANCEL:
			if (strlen(req->cancel->reason) > CANCEL_REASON_MAX)
				fe_call_abort(call, GRPC_STATUS_INVALID_ARGUMENT,
				    "cancel reason too long");
			else {
				call->cancel_sent = 1;
				fe_worker_cancel(call, req->cancel->reason, 0);
			}
			break;
		case PALYRA__V1__RUN_STREAM_REQUEST__MSG_INPUT:
			run_input(call, req->input);
			break;
		case PALYRA__V1__RUN_STREAM_REQUEST__MSG_APPROVAL:
			run_decision(call, req->approval);
			break;
		case PALYRA__V1__RUN_STREAM_REQUEST__MSG_TOOL_RESULT:
			run_tool_result(call, req->tool_result);
			break;
		case PALYRA__V1__RUN_STREAM_REQUEST__MSG_START:
			/* Only this stream ends; the run goes on. */
			fe_call_finish(call, GRPC_STATUS_INVALID_ARGUMENT,
			    "run already started");
			break;
		default:
			fe_call_abort(call, GRPC_STATUS_INVALID_ARGUMENT,
			    "empty RunStreamRequest");
			break;
		}
	}
	palyra__v1__run_stream_request__free_unpacked(req, NULL);
}

void
fe_rpc_message(struct fe_call *call, const uint8_t *msg, size_t len)
{
	switch (call->method) {
	case FE_METHOD_HEALTH_CHECK:
		health_check(call, msg, len);
		break;
	case FE_METHOD_GET_HEALTH:
		get_health(call, msg, len);
		break;
	case FE_METHOD_HEALTH_WATCH:
		fe_health_watch_message(call, msg, len);
		break;
	case FE_METHOD_REFLECTION_V1:
	case FE_METHOD_REFLECTION_V1ALPHA:
		fe_reflection_message(call, msg, len);
		break;
	case FE_METHOD_RUN_STREAM:
		run_stream_message(call, msg, len);
		break;
	case FE_METHOD_GET_RUN:
	case FE_METHOD_ABORT_RUN:
	case FE_METHOD_LIST_RUN_EVENTS:
	case FE_METHOD_APPEND_EVENT:
		fe_runs_message(call, msg, len);
		break;
	case FE_METHOD_LIST_SESSIONS:
	case FE_METHOD_RESOLVE_SESSION:
	case FE_METHOD_CLEANUP_SESSION:
		fe_sessions_message(call, msg, len);
		break;
	case FE_METHOD_LIST_AGENTS:
	case FE_METHOD_GET_AGENT:
	case FE_METHOD_CREATE_AGENT:
	case FE_METHOD_UPDATE_AGENT:
	case FE_METHOD_DELETE_AGENT:
		fe_agents_message(call, msg, len);
		break;
	case FE_METHOD_LIST_APPROVALS:
	case FE_METHOD_GET_APPROVAL:
	case FE_METHOD_DECIDE_APPROVAL:
	case FE_METHOD_EXPORT_APPROVALS:
	case FE_METHOD_LIST_GRANTS:
	case FE_METHOD_REVOKE_GRANT:
	case FE_METHOD_GET_USAGE:
	case FE_METHOD_LIST_BUDGETS:
	case FE_METHOD_SET_BUDGET:
	case FE_METHOD_DELETE_BUDGET:
	case FE_METHOD_PUT_SECRET:
	case FE_METHOD_GET_SECRET:
	case FE_METHOD_DELETE_SECRET:
	case FE_METHOD_LIST_SECRETS:
	case FE_METHOD_CREATE_JOB:
	case FE_METHOD_UPDATE_JOB:
	case FE_METHOD_DELETE_JOB:
	case FE_METHOD_GET_JOB:
	case FE_METHOD_LIST_JOBS:
	case FE_METHOD_RUN_JOB_NOW:
	case FE_METHOD_LIST_JOB_RUNS:
	case FE_METHOD_INGEST_MEMORY:
	case FE_METHOD_SEARCH_MEMORY:
	case FE_METHOD_GET_MEMORY_ITEM:
	case FE_METHOD_LIST_MEMORY_ITEMS:
	case FE_METHOD_DELETE_MEMORY_ITEM:
	case FE_METHOD_PURGE_MEMORY:
		fe_services_message(call, msg, len);
		break;
	default:
		fe_call_finish(call, GRPC_STATUS_UNIMPLEMENTED, "unknown method");
		break;
	}
}

void
fe_rpc_input_ended(struct fe_call *call)
{
	/* Reflection answers each request as it comes: done when the
	 * client is. */
	if ((call->method == FE_METHOD_REFLECTION_V1 ||
		call->method == FE_METHOD_REFLECTION_V1ALPHA) &&
	    (call->state == FE_CALL_RUNNING ||
		call->state == FE_CALL_WAITING_START)) {
		fe_call_finish(call, GRPC_STATUS_OK, NULL);
		return;
	}
	if (call->state == FE_CALL_RUNNING) {
		/* The client is done sending; events keep flowing. */
		fe_call_transition(call, FE_CALL_HALF_CLOSED);
		return;
	}
	if (call->state != FE_CALL_WAITING_START)
		return;
	if (call->method == FE_METHOD_RUN_STREAM)
		fe_call_finish(call, GRPC_STATUS_INVALID_ARGUMENT,
		    "RunStream needs a start message");
	else
		fe_call_finish(
		    call, GRPC_STATUS_INTERNAL, "missing request message");
}

/*
 * Whether the run of this call ended because the call's deadline passed:
 * the worker arms the same deadline (RunStartRequest.deadline_unix_ms) and
 * its timer may fire a millisecond before the front's, so the CANCELLED
 * "deadline exceeded" event arrives first. The client must still learn
 * DEADLINE_EXCEEDED, as when the front's timer wins. A reattached call
 * follows a run whose deadline was another call's: it ends OK.
 */
static int
deadline_ended(const struct fe_call *call, const Palyra__V1__RunEvent *ev)
{
	return !call->reattached && call->deadline_unix_ms != 0 &&
	       fe_now_unix_ms() + FE_DEADLINE_SLACK_MS >=
		   call->deadline_unix_ms &&
	       ev->event_case == PALYRA__V1__RUN_EVENT__EVENT_STATUS &&
	       ev->status->status ==
		   PALYRA__V1__RUN_STATUS__RUN_STATUS_CANCELLED &&
	       strcmp(ev->status->reason, "deadline exceeded") == 0;
}

void
fe_rpc_run_event(struct fe_call *call, const Palyra__Ipc__RunEventMsg *ev)
{
	int rc;

	if (call->state == FE_CALL_REATTACHING) {
		fe_reattach_live(call, ev);
		return;
	}
	if (call->state != FE_CALL_RUNNING &&
	    call->state != FE_CALL_HALF_CLOSED)
		return;
	/* A reattached call got this event from the journal already. */
	if (call->reattached && ev->event->seq <= call->last_seq)
		return;
	/* The run's id, for journald's notices should its worker die. */
	if (call->run_id[0] == '\0' &&
	    strnlen(ev->event->run_id, FE_RUN_ID_MAX + 1) <= FE_RUN_ID_MAX)
		memcpy(call->run_id, ev->event->run_id,
		    strlen(ev->event->run_id) + 1);
	/* The run exists now: it is never started again elsewhere. */
	if (call->start_req != NULL) {
		palyra__v1__run_stream_request__free_unpacked(
		    call->start_req, NULL);
		call->start_req = NULL;
	}
	/* A follower that fell too far behind stops here: what it was sent
	 * goes out before the status, so it resumes from last_seq. */
	if (call->reattached &&
	    evbuffer_get_length(call->out) > FE_FLOW_FOLLOWER_MAX) {
		char msg[64];

		snprintf(msg, sizeof(msg),
		    "client too slow; reattach from seq %llu",
		    (unsigned long long)call->last_seq);
		call->conn->ctx->metrics.slow_followers++;
		fe_call_finish(call, GRPC_STATUS_RESOURCE_EXHAUSTED, msg);
		return;
	}
	rc = fe_call_send_message(call, &ev->event->base);
	if (rc == -ENOBUFS) {
		fe_call_abort(call, GRPC_STATUS_RESOURCE_EXHAUSTED,
		    "client not reading events");
		return;
	}
	if (rc < 0) {
		fe_call_abort(call, GRPC_STATUS_INTERNAL, "internal error");
		return;
	}
	if (ev->event->seq > call->last_seq)
		call->last_seq = ev->event->seq;
	if (ev->last) {
		if (deadline_ended(call, ev->event))
			fe_call_finish(call, GRPC_STATUS_DEADLINE_EXCEEDED,
			    "deadline exceeded");
		else
			fe_call_finish(call, GRPC_STATUS_OK, NULL);
		return;
	}
	fe_call_flow_check(call);
}

void
fe_rpc_run_error(struct fe_call *call, const Palyra__Ipc__RunErrorMsg *err)
{
	uint32_t status = err->grpc_status;

	/* No new run: the start's idempotency key names this one. */
	if (err->existing_run_id[0] != '\0' &&
	    (call->state == FE_CALL_RUNNING ||
		call->state == FE_CALL_HALF_CLOSED) &&
	    call->last_seq == 0) {
		fe_reattach_follow(call, err->existing_run_id);
		return;
	}
	if (status == GRPC_STATUS_OK || status > GRPC_STATUS_UNAUTHENTICATED)
		status = GRPC_STATUS_UNKNOWN;
	fe_call_finish(call, status, err->message);
}

void
fe_rpc_worker_gone(struct fe_call *call)
{
	fe_call_finish(call, GRPC_STATUS_UNAVAILABLE, "worker exited");
}
