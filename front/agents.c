/*
 * agents.c: GatewayService ListAgents, GetAgent, CreateAgent, UpdateAgent
 * and DeleteAgent (DESIGN section 6) for a verified tenant token, and the
 * runtime agent a RunStream start names.
 *
 * Process: palyra-front. Journald holds a tenant's agents: those of
 * palyrad.conf (the supervisor sends them) and the runtime ones in the
 * tenant's journal.db (journald/agents.c). The front checks the role
 * (any token lists and reads; operator and admin write), then passes the
 * request message as it came to journald, which decodes it (the one place)
 * and answers with a gRPC status and the response message; the front
 * checks that message against the method's response type before it sends
 * it. A RunStream start that names an agent waits in RESOLVING while
 * journald looks the name up among the runtime agents; the agent found
 * travels with the start to the worker, so that an update or a delete
 * takes effect with the next run and no worker keeps a stale copy.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "front.h"
#include "log.h"
#include "palyra/v1/gateway.pb-c.h"

#define OP(name) PALYRA__IPC__JOURNAL_AGENT_REQUEST__OP__##name

int
fe_agents_method(enum fe_method method)
{
	return method == FE_METHOD_LIST_AGENTS ||
	       method == FE_METHOD_GET_AGENT ||
	       method == FE_METHOD_CREATE_AGENT ||
	       method == FE_METHOD_UPDATE_AGENT ||
	       method == FE_METHOD_DELETE_AGENT;
}

static int
may_write(const struct fe_call *call)
{
	return strcmp(call->role, "operator") == 0 ||
	       strcmp(call->role, "admin") == 0;
}

static int
request_send(struct fe_call *call, Palyra__Ipc__JournalAgentRequest *req)
{
	int rc;

	req->tenant = call->tenant;
	req->role = call->role;
	rc = fe_journal_request(call->conn->ctx, IPC_JOURNAL_AGENT_REQUEST,
	    &req->base, FE_JREQ_AGENT, call, &call->jreq);
	if (rc == -ENOBUFS)
		fe_call_finish(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "server busy");
	else if (rc < 0)
		fe_call_finish(
		    call, GRPC_STATUS_UNAVAILABLE, "journal unavailable");
	return rc;
}

void
fe_agents_message(struct fe_call *call, const uint8_t *msg, size_t len)
{
	Palyra__Ipc__JournalAgentRequest req =
	    PALYRA__IPC__JOURNAL_AGENT_REQUEST__INIT;

	if (call->state != FE_CALL_WAITING_START) {
		fe_call_abort(call, GRPC_STATUS_INVALID_ARGUMENT,
		    "the method takes one request message");
		return;
	}
	if (len > IPC_MAX_PAYLOAD - 1024) {
		fe_call_finish(
		    call, GRPC_STATUS_RESOURCE_EXHAUSTED, "request too large");
		return;
	}
	switch (call->method) {
	case FE_METHOD_LIST_AGENTS:
		req.op = OP(LIST);
		break;
	case FE_METHOD_GET_AGENT:
		req.op = OP(GET);
		break;
	case FE_METHOD_CREATE_AGENT:
		req.op = OP(CREATE);
		break;
	case FE_METHOD_UPDATE_AGENT:
		req.op = OP(UPDATE);
		break;
	default:
		req.op = OP(DELETE);
		break;
	}
	if (req.op != OP(LIST) && req.op != OP(GET) && !may_write(call)) {
		fe_call_finish(call, GRPC_STATUS_PERMISSION_DENIED,
		    "changing agents needs the operator or admin role");
		return;
	}
	req.request.data = (uint8_t *)msg;
	req.request.len = len;
	fe_call_transition(call, FE_CALL_RUNNING);
	(void)request_send(call, &req);
}

void
fe_agents_resolve(struct fe_call *call)
{
	Palyra__Ipc__JournalAgentRequest req =
	    PALYRA__IPC__JOURNAL_AGENT_REQUEST__INIT;

	/* The default agent is always one of the configuration. */
	if (call->start_req->start->agent[0] == '\0') {
		fe_pool_route(call);
		return;
	}
	req.op = OP(RESOLVE);
	req.name = call->start_req->start->agent;
	fe_call_transition(call, FE_CALL_RESOLVING);
	(void)request_send(call, &req);
}

/* The response message journald encoded, checked against the method. */
static void
answer(struct fe_call *call, const Palyra__Ipc__JournalAgentReply *r)
{
	const ProtobufCMessageDescriptor *desc =
	    call->method == FE_METHOD_LIST_AGENTS
		? &palyra__v1__list_agents_response__descriptor
	    : call->method == FE_METHOD_DELETE_AGENT
		? &palyra__v1__delete_agent_response__descriptor
		: &palyra__v1__agent__descriptor;
	ProtobufCMessage *resp;
	int rc;

	resp = protobuf_c_message_unpack(
	    desc, NULL, r->response.len, r->response.data);
	if (resp == NULL) {
		fe_call_finish(call, GRPC_STATUS_INTERNAL, "internal error");
		return;
	}
	rc = fe_call_send_message(call, resp);
	protobuf_c_message_free_unpacked(resp, NULL);
	if (rc < 0)
		fe_call_finish(
		    call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	else
		fe_call_finish(call, GRPC_STATUS_OK, NULL);
}

/* RESOLVE's answer: keep the runtime agent (if any), then route. */
static void
resolved(struct fe_call *call, const Palyra__Ipc__JournalAgentReply *r)
{
	uint8_t *buf;
	size_t len;

	if (r->grpc_status != GRPC_STATUS_OK) {
		fe_call_finish(
		    call, GRPC_STATUS_UNAVAILABLE, "journal unavailable");
		return;
	}
	if (r->agent != NULL) {
		if (strcmp(r->agent->name, call->start_req->start->agent) !=
		    0) {
			fe_call_finish(
			    call, GRPC_STATUS_INTERNAL, "internal error");
			return;
		}
		/* A copy of its own: the reply is freed after this. */
		len = protobuf_c_message_get_packed_size(&r->agent->base);
		if ((buf = malloc(len + 1)) == NULL) {
			fe_call_finish(
			    call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
			return;
		}
		protobuf_c_message_pack(&r->agent->base, buf);
		call->runtime_agent =
		    palyra__ipc__agent_config__unpack(NULL, len, buf);
		free(buf);
		if (call->runtime_agent == NULL) {
			fe_call_finish(
			    call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
			return;
		}
	}
	fe_pool_route(call);
}

void
fe_agents_reply(struct fe_call *call, const Palyra__Ipc__JournalAgentReply *r)
{
	uint32_t status;

	call->jreq = NULL;
	if (call->state == FE_CALL_RESOLVING) {
		if (r == NULL)
			fe_call_finish(
			    call, GRPC_STATUS_UNAVAILABLE, "journal unavailable");
		else
			resolved(call, r);
		return;
	}
	if (call->state != FE_CALL_RUNNING &&
	    call->state != FE_CALL_HALF_CLOSED)
		return;
	if (r == NULL) {
		fe_call_finish(
		    call, GRPC_STATUS_UNAVAILABLE, "journal unavailable");
		return;
	}
	status = r->grpc_status;
	if (status == GRPC_STATUS_OK) {
		answer(call, r);
		return;
	}
	if (status > GRPC_STATUS_UNAUTHENTICATED)
		status = GRPC_STATUS_UNKNOWN;
	fe_call_finish(call, status, r->message);
}

void
fe_agents_end(struct fe_call *call)
{
	if (call->runtime_agent != NULL)
		palyra__ipc__agent_config__free_unpacked(
		    call->runtime_agent, NULL);
	call->runtime_agent = NULL;
}
