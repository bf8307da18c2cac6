/*
 * sessions.c: GatewayService ListSessions, ResolveSession and
 * CleanupSession (DESIGN section 6), for the principal of a verified
 * tenant token, answered by journald (journald/sessions.c).
 *
 * Process: palyra-front. Decodes these methods' request messages (the one
 * place they are decoded) and sends one IPC_JOURNAL_SESSION_REQUEST for
 * the token's tenant. A user token sees and closes only its principal's
 * sessions; operator and admin tokens every session of their tenant.
 * Anything else is NOT_FOUND, as a session that never was.
 *
 * ResolveSession derives the id with session_id_derive() (common/), the
 * same function the worker uses for a run started with a key, for the
 * caller's own principal. Sessions are created by their first run: a key
 * no run used yet resolves to its id with created_unix_ms 0.
 *
 * A call waits in RUNNING with a struct fe_session_op that
 * fe_sessions_end() (from fe_runs_end()) releases; its deadline and the
 * loss of journald (which fails every waiting request) bound the wait.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "front.h"
#include "log.h"
#include "palyra/v1/gateway.pb-c.h"
#include "session.h"

#define OP(name) PALYRA__IPC__JOURNAL_SESSION_REQUEST__OP__##name
#define CODE(name) PALYRA__IPC__JOURNAL_SESSION_REPLY__CODE__##name

/* One session method in progress. */
struct fe_session_op {
	char session_id[NAME_MAX_LEN + 1]; /* ResolveSession: derived */
};

static int
sees_all(const struct fe_call *call)
{
	return strcmp(call->role, "operator") == 0 ||
	       strcmp(call->role, "admin") == 0;
}

static void
op_send(struct fe_call *call, Palyra__Ipc__JournalSessionRequest *req,
    const char *session_id)
{
	struct fe_ctx *ctx = call->conn->ctx;
	struct fe_session_op *op;
	int rc;

	if ((op = calloc(1, sizeof(*op))) == NULL) {
		fe_call_finish(
		    call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	snprintf(op->session_id, sizeof(op->session_id), "%s", session_id);
	call->session_op = op;
	fe_call_transition(call, FE_CALL_RUNNING);
	req->tenant = call->tenant;
	/* The caller's principal, unless its role sees the whole tenant;
	 * ResolveSession always asks for the caller's own session. */
	req->principal =
	    sees_all(call) && req->op != OP(GET) ? "" : call->principal;
	req->session_id = op->session_id;
	rc = fe_journal_request(ctx, IPC_JOURNAL_SESSION_REQUEST, &req->base,
	    FE_JREQ_SESSION, call, &call->jreq);
	if (rc == -ENOBUFS)
		fe_call_finish(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "server busy");
	else if (rc < 0)
		fe_call_finish(
		    call, GRPC_STATUS_UNAVAILABLE, "journal unavailable");
}

static void
list_sessions(struct fe_call *call, const Palyra__V1__ListSessionsRequest *in)
{
	Palyra__Ipc__JournalSessionRequest req =
	    PALYRA__IPC__JOURNAL_SESSION_REQUEST__INIT;

	if (in->page_size > FE_SESSIONS_PAGE_MAX) {
		fe_call_finish(call, GRPC_STATUS_INVALID_ARGUMENT,
		    "page_size must be 1 to 100");
		return;
	}
	if (strnlen(in->page_token, JNL_CURSOR_MAX + 1) > JNL_CURSOR_MAX) {
		fe_call_finish(
		    call, GRPC_STATUS_INVALID_ARGUMENT, "malformed page_token");
		return;
	}
	req.op = OP(LIST);
	req.limit =
	    in->page_size == 0 ? FE_SESSIONS_PAGE_DEFAULT : in->page_size;
	req.cursor = in->page_token;
	op_send(call, &req, "");
}

static void
resolve_session(
    struct fe_call *call, const Palyra__V1__ResolveSessionRequest *in)
{
	Palyra__Ipc__JournalSessionRequest req =
	    PALYRA__IPC__JOURNAL_SESSION_REQUEST__INIT;
	char id[SESSION_ID_LEN + 1];
	int rc;

	rc = session_id_derive(
	    call->tenant, call->principal, in->session_key, id);
	if (rc < 0) {
		fe_call_finish(call, GRPC_STATUS_INVALID_ARGUMENT,
		    rc == -E2BIG ? "session_key too long"
				 : "session_key is empty");
		return;
	}
	req.op = OP(GET);
	op_send(call, &req, id);
}

static void
cleanup_session(
    struct fe_call *call, const Palyra__V1__CleanupSessionRequest *in)
{
	Palyra__Ipc__JournalSessionRequest req =
	    PALYRA__IPC__JOURNAL_SESSION_REQUEST__INIT;
	size_t len = strnlen(in->session_id, NAME_MAX_LEN + 1);

	if (len == 0 || len > NAME_MAX_LEN) {
		fe_call_finish(call, GRPC_STATUS_INVALID_ARGUMENT,
		    len == 0 ? "session_id is empty" : "session_id too long");
		return;
	}
	req.op = OP(CLOSE);
	op_send(call, &req, in->session_id);
}

void
fe_sessions_message(struct fe_call *call, const uint8_t *msg, size_t len)
{
	Palyra__V1__ListSessionsRequest *list;
	Palyra__V1__ResolveSessionRequest *resolve;
	Palyra__V1__CleanupSessionRequest *cleanup;

	if (call->state != FE_CALL_WAITING_START) {
		fe_call_abort(call, GRPC_STATUS_INVALID_ARGUMENT,
		    "the method takes one request message");
		return;
	}
	switch (call->method) {
	case FE_METHOD_LIST_SESSIONS:
		list =
		    palyra__v1__list_sessions_request__unpack(NULL, len, msg);
		if (list == NULL)
			break;
		list_sessions(call, list);
		palyra__v1__list_sessions_request__free_unpacked(list, NULL);
		return;
	case FE_METHOD_RESOLVE_SESSION:
		resolve =
		    palyra__v1__resolve_session_request__unpack(NULL, len, msg);
		if (resolve == NULL)
			break;
		resolve_session(call, resolve);
		palyra__v1__resolve_session_request__free_unpacked(
		    resolve, NULL);
		return;
	case FE_METHOD_CLEANUP_SESSION:
		cleanup =
		    palyra__v1__cleanup_session_request__unpack(NULL, len, msg);
		if (cleanup == NULL)
			break;
		cleanup_session(call, cleanup);
		palyra__v1__cleanup_session_request__free_unpacked(
		    cleanup, NULL);
		return;
	default:
		break;
	}
	fe_call_finish(
	    call, GRPC_STATUS_INVALID_ARGUMENT, "invalid request message");
}

static void
session_from_item(
    Palyra__V1__Session *s, const Palyra__Ipc__JournalSessionItem *it)
{
	palyra__v1__session__init(s);
	s->session_id = it->session_id;
	s->principal = it->principal;
	s->created_unix_ms = it->created_ms;
	s->run_count = it->run_count;
	s->last_run_unix_ms = it->last_run_ms;
	s->closed_unix_ms = it->closed_ms;
}

static void
send_and_finish(struct fe_call *call, const ProtobufCMessage *m)
{
	if (fe_call_send_message(call, m) < 0) {
		fe_call_finish(
		    call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	fe_call_finish(call, GRPC_STATUS_OK, NULL);
}

static void
list_reply(struct fe_call *call, const Palyra__Ipc__JournalSessionReply *r)
{
	Palyra__V1__ListSessionsResponse resp =
	    PALYRA__V1__LIST_SESSIONS_RESPONSE__INIT;
	Palyra__V1__Session *sessions = NULL, **ptrs = NULL;
	size_t i;

	if (r->n_items > FE_SESSIONS_PAGE_MAX ||
	    strlen(r->next_cursor) > JNL_CURSOR_MAX) {
		fe_call_finish(call, GRPC_STATUS_INTERNAL, "journal sent too much");
		return;
	}
	if (r->n_items > 0 &&
	    ((sessions = calloc(r->n_items, sizeof(*sessions))) == NULL ||
		(ptrs = calloc(r->n_items, sizeof(*ptrs))) == NULL)) {
		free(sessions);
		fe_call_finish(
		    call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	for (i = 0; i < r->n_items; i++) {
		session_from_item(&sessions[i], r->items[i]);
		ptrs[i] = &sessions[i];
	}
	resp.n_sessions = r->n_items;
	resp.sessions = ptrs;
	resp.next_page_token = r->next_cursor;
	send_and_finish(call, &resp.base);
	free(ptrs);
	free(sessions);
}

void
fe_sessions_reply(
    struct fe_call *call, const Palyra__Ipc__JournalSessionReply *r)
{
	Palyra__V1__CleanupSessionResponse cleanup =
	    PALYRA__V1__CLEANUP_SESSION_RESPONSE__INIT;
	Palyra__V1__Session s = PALYRA__V1__SESSION__INIT;
	struct fe_session_op *op = call->session_op;

	call->jreq = NULL;
	if (op == NULL || (call->state != FE_CALL_RUNNING &&
			      call->state != FE_CALL_HALF_CLOSED))
		return;
	if (r == NULL) {
		fe_call_finish(
		    call, GRPC_STATUS_UNAVAILABLE, "journal unavailable");
		return;
	}
	switch (r->code) {
	case CODE(OK):
		break;
	case CODE(BAD_REQUEST):
		fe_call_finish(call, GRPC_STATUS_INVALID_ARGUMENT,
		    call->method == FE_METHOD_LIST_SESSIONS
			? "malformed page_token"
			: "invalid session_id");
		return;
	case CODE(NOT_FOUND):
		if (call->method != FE_METHOD_RESOLVE_SESSION) {
			fe_call_finish(
			    call, GRPC_STATUS_NOT_FOUND, "unknown session");
			return;
		}
		/* Not created yet: its first run will create it. */
		s.session_id = op->session_id;
		s.principal = call->principal;
		send_and_finish(call, &s.base);
		return;
	case CODE(LIVE_RUN):
		fe_call_finish(call, GRPC_STATUS_FAILED_PRECONDITION,
		    "the session has a live run");
		return;
	default:
		fe_call_finish(
		    call, GRPC_STATUS_UNAVAILABLE, "journal unavailable");
		return;
	}
	if (call->method == FE_METHOD_LIST_SESSIONS) {
		list_reply(call, r);
	} else if (call->method == FE_METHOD_RESOLVE_SESSION) {
		if (r->n_items != 1) {
			fe_call_finish(
			    call, GRPC_STATUS_INTERNAL, "internal error");
			return;
		}
		session_from_item(&s, r->items[0]);
		send_and_finish(call, &s.base);
	} else {
		cleanup.runs_removed = r->runs;
		send_and_finish(call, &cleanup.base);
	}
}

void
fe_sessions_end(struct fe_call *call)
{
	free(call->session_op);
	call->session_op = NULL;
}
