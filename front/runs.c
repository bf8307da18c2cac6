/*
 * runs.c: GatewayService GetRun, AbortRun, AppendEvent and ListRunEvents
 * (DESIGN section 6), for the principal of a verified tenant token.
 *
 * Process: palyra-front. Decodes these methods' request messages (the one
 * place they are decoded), reads the run at journald (IPC_JOURNAL_RUN_READ
 * with no events: the run's row) and, for AbortRun, asks the tenant's
 * workers to cancel it (IPC_RUN_ABORT); the one that holds the run cancels
 * it and answers. AppendEvent goes the same way (IPC_RUN_NOTE): the worker
 * that holds the live run appends the note as an event of the run, which
 * reaches the run's clients once journald committed it, and answers with
 * its seq. ListRunEvents is a reattach (reattach.c) without a
 * client stream: replay from the journal, then live, never cancelling.
 *
 * A principal sees only its own runs; the roles operator and admin see
 * every run of their tenant. Any other run, and every run of another
 * tenant (journald reads only the token's tenant), is NOT_FOUND.
 *
 * The unary calls wait in RUNNING (the client may half-close meanwhile)
 * with a struct fe_run_op that fe_runs_end() releases.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "front.h"
#include "log.h"
#include "palyra/v1/gateway.pb-c.h"

/* One unary run method in progress. */
struct fe_run_op {
	struct event *timer;
	uint32_t probes; /* IPC_RUN_ABORT answers awaited */
	char run_id[FE_RUN_ID_MAX + 1];
	char reason[FE_RUN_REASON_MAX + 1];
	char *text; /* AppendEvent: the note */
};

/* One IPC_RUN_ABORT awaiting its answer, on its worker's list. */
struct fe_abort {
	TAILQ_ENTRY(fe_abort) entry;
	struct fe_call *call; /* NULL: the call ended meanwhile */
	uint32_t request_id;
};

static const char *const status_names[] = {
    "UNSPECIFIED",
    "ACCEPTED",
    "IN_PROGRESS",
    "WAITING_APPROVAL",
    "WAITING_TOOL",
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "INTERRUPTED",
};

static const char *
status_name(int status)
{
	if (status < 0 ||
	    (size_t)status >= sizeof(status_names) / sizeof(status_names[0]))
		return "UNSPECIFIED";
	return status_names[status];
}

int
fe_runs_visible(const struct fe_call *call, const char *principal)
{
	if (strcmp(principal, call->principal) == 0)
		return 1;
	/* RunStream's reattach stays with the run's own principal. */
	if (call->method == FE_METHOD_RUN_STREAM)
		return 0;
	return strcmp(call->role, "operator") == 0 ||
	       strcmp(call->role, "admin") == 0;
}

static void
timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fe_call *call = arg;

	fe_call_finish(call, GRPC_STATUS_UNAVAILABLE,
	    "the run's journal or worker did not answer");
}

/* Validates run_id and starts the op: the run's row from journald. */
static void
op_start(struct fe_call *call, const char *run_id, const char *reason)
{
	Palyra__Ipc__JournalRunReadRequest req =
	    PALYRA__IPC__JOURNAL_RUN_READ_REQUEST__INIT;
	struct fe_ctx *ctx = call->conn->ctx;
	struct timeval tv = {FE_REATTACH_TIMEOUT_MS / 1000,
	    (FE_REATTACH_TIMEOUT_MS % 1000) * 1000};
	struct fe_run_op *op;
	size_t len = strnlen(run_id, FE_RUN_ID_MAX + 1);
	int rc;

	if (len == 0 || len > FE_RUN_ID_MAX) {
		fe_call_finish(call, GRPC_STATUS_INVALID_ARGUMENT,
		    len == 0 ? "run_id is empty" : "run_id too long");
		return;
	}
	if (strnlen(reason, FE_RUN_REASON_MAX + 1) > FE_RUN_REASON_MAX) {
		fe_call_finish(
		    call, GRPC_STATUS_INVALID_ARGUMENT, "reason too long");
		return;
	}
	if ((op = calloc(1, sizeof(*op))) == NULL ||
	    (op->timer = evtimer_new(ctx->base, timeout_cb, call)) == NULL ||
	    evtimer_add(op->timer, &tv) < 0) {
		if (op != NULL && op->timer != NULL)
			event_free(op->timer);
		free(op);
		fe_call_finish(
		    call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	memcpy(op->run_id, run_id, len + 1);
	snprintf(op->reason, sizeof(op->reason), "%s", reason);
	call->run_op = op;
	fe_call_transition(call, FE_CALL_RUNNING);
	req.tenant = call->tenant;
	req.run_id = op->run_id;
	req.max_events = 0;
	rc = fe_journal_request(ctx, IPC_JOURNAL_RUN_READ, &req.base,
	    FE_JREQ_RUN_READ, call, &call->jreq);
	if (rc == -ENOBUFS)
		fe_call_finish(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "server busy");
	else if (rc < 0)
		fe_call_finish(
		    call, GRPC_STATUS_UNAVAILABLE, "journal unavailable");
}

void
fe_runs_message(struct fe_call *call, const uint8_t *msg, size_t len)
{
	Palyra__V1__GetRunRequest *get;
	Palyra__V1__AbortRunRequest *abort_req;
	Palyra__V1__ListRunEventsRequest *list;
	Palyra__V1__AppendEventRequest *note;
	Palyra__V1__RunStart start = PALYRA__V1__RUN_START__INIT;
	size_t text_len;

	if (call->state != FE_CALL_WAITING_START) {
		fe_call_abort(call, GRPC_STATUS_INVALID_ARGUMENT,
		    "the method takes one request message");
		return;
	}
	switch (call->method) {
	case FE_METHOD_GET_RUN:
		get = palyra__v1__get_run_request__unpack(NULL, len, msg);
		if (get == NULL)
			break;
		op_start(call, get->run_id, "");
		palyra__v1__get_run_request__free_unpacked(get, NULL);
		return;
	case FE_METHOD_ABORT_RUN:
		abort_req =
		    palyra__v1__abort_run_request__unpack(NULL, len, msg);
		if (abort_req == NULL)
			break;
		op_start(call, abort_req->run_id, abort_req->reason);
		palyra__v1__abort_run_request__free_unpacked(abort_req, NULL);
		return;
	case FE_METHOD_APPEND_EVENT:
		note = palyra__v1__append_event_request__unpack(NULL, len, msg);
		if (note == NULL)
			break;
		text_len = strnlen(note->text, TEXT_MAX_LEN + 1);
		if (text_len == 0 || text_len > TEXT_MAX_LEN)
			fe_call_finish(call, GRPC_STATUS_INVALID_ARGUMENT,
			    text_len == 0 ? "text is empty" : "text too long");
		else {
			op_start(call, note->run_id, "");
			/* Kept until the worker's answer. */
			if (call->run_op != NULL &&
			    (call->run_op->text = strdup(note->text)) == NULL)
				fe_call_finish(call, GRPC_STATUS_RESOURCE_EXHAUSTED,
				    "out of memory");
		}
		palyra__v1__append_event_request__free_unpacked(note, NULL);
		return;
	case FE_METHOD_LIST_RUN_EVENTS:
		list =
		    palyra__v1__list_run_events_request__unpack(NULL, len, msg);
		if (list == NULL)
			break;
		if (list->run_id[0] == '\0') {
			fe_call_finish(
			    call, GRPC_STATUS_INVALID_ARGUMENT, "run_id is empty");
		} else {
			/* A reattach whose client sends nothing more. */
			start.run_id = list->run_id;
			start.after_seq = list->after_seq;
			fe_reattach_start(call, &start);
		}
		palyra__v1__list_run_events_request__free_unpacked(list, NULL);
		return;
	default:
		break;
	}
	fe_call_finish(
	    call, GRPC_STATUS_INVALID_ARGUMENT, "invalid request message");
}

static void
get_run_reply(struct fe_call *call, const Palyra__Ipc__JournalRunPage *page)
{
	Palyra__V1__Run run = PALYRA__V1__RUN__INIT;

	run.run_id = call->run_op->run_id;
	run.session_id = page->session_id;
	run.principal = page->principal;
	run.agent = page->agent;
	run.status = page->status;
	run.created_unix_ms = page->created_unix_ms;
	run.updated_unix_ms = page->updated_unix_ms;
	run.last_seq = page->last_seq;
	if (fe_call_send_message(call, &run.base) < 0) {
		fe_call_finish(
		    call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	fe_call_finish(call, GRPC_STATUS_OK, NULL);
}

/* Asks every attached worker of the tenant to abort the run, or to
 * append the note to it (AppendEvent). */
static void
abort_probe_all(struct fe_call *call, const Palyra__Ipc__JournalRunPage *page)
{
	Palyra__Ipc__RunAbortRequest req = PALYRA__IPC__RUN_ABORT_REQUEST__INIT;
	Palyra__Ipc__RunNoteRequest note = PALYRA__IPC__RUN_NOTE_REQUEST__INIT;
	const ProtobufCMessage *msg = &req.base;
	enum ipc_type type = IPC_RUN_ABORT;
	struct fe_run_op *op = call->run_op;
	struct fe_worker *w;
	struct fe_abort *probe;

	req.run_id = op->run_id;
	req.principal = page->principal;
	req.reason = op->reason;
	if (call->method == FE_METHOD_APPEND_EVENT) {
		note.run_id = op->run_id;
		note.principal = page->principal;
		note.text = op->text;
		note.author = call->principal;
		msg = &note.base;
		type = IPC_RUN_NOTE;
	}
	TAILQ_FOREACH(w, &call->conn->ctx->workers, entry)
	{
		if (w->chan == NULL || ipc_chan_dead(w->chan) ||
		    strcmp(w->tenant, call->tenant) != 0)
			continue;
		if ((probe = calloc(1, sizeof(*probe))) == NULL)
			break;
		probe->call = call;
		probe->request_id = w->next_call_id++;
		if (w->next_call_id == 0)
			w->next_call_id = 1;
		if (ipc_chan_send(
			w->chan, type, probe->request_id, msg, NULL, 0) < 0) {
			free(probe);
			continue;
		}
		TAILQ_INSERT_TAIL(&w->aborts, probe, entry);
		op->probes++;
	}
	if (op->probes == 0)
		fe_call_finish(
		    call, GRPC_STATUS_UNAVAILABLE, "no worker holds the run");
}

void
fe_runs_page(struct fe_call *call, const Palyra__Ipc__JournalRunPage *page)
{
	char message[FE_GRPC_MESSAGE_MAX];

	call->jreq = NULL;
	if (call->run_op == NULL || (call->state != FE_CALL_RUNNING &&
					call->state != FE_CALL_HALF_CLOSED))
		return;
	if (page->error[0] != '\0') {
		if (strcmp(page->error, "unknown tenant") == 0)
			fe_call_finish(call, GRPC_STATUS_NOT_FOUND, "unknown run");
		else
			fe_call_finish(
			    call, GRPC_STATUS_UNAVAILABLE, "journal unavailable");
		return;
	}
	/* Another principal's run is as unknown as a run that never was. */
	if (!page->found || !fe_runs_visible(call, page->principal)) {
		fe_call_finish(call, GRPC_STATUS_NOT_FOUND, "unknown run");
		return;
	}
	if (call->method == FE_METHOD_GET_RUN) {
		get_run_reply(call, page);
		return;
	}
	if (page->terminal) {
		snprintf(message, sizeof(message), "run already finished (%s)",
		    status_name(page->status));
		fe_call_finish(call, GRPC_STATUS_FAILED_PRECONDITION, message);
		return;
	}
	abort_probe_all(call, page);
}

void
fe_runs_journal_failed(struct fe_call *call)
{
	call->jreq = NULL;
	fe_call_finish(call, GRPC_STATUS_UNAVAILABLE, "journal unavailable");
}

/* One answer, or a lost worker (msg NULL). */
static void
abort_answer(struct fe_call *call, const Palyra__Ipc__RunAborted *msg)
{
	Palyra__V1__AbortRunResponse resp =
	    PALYRA__V1__ABORT_RUN_RESPONSE__INIT;
	struct fe_run_op *op = call->run_op;
	char message[FE_GRPC_MESSAGE_MAX];

	if (op == NULL || (call->state != FE_CALL_RUNNING &&
			      call->state != FE_CALL_HALF_CLOSED))
		return;
	op->probes--;
	if (msg != NULL && msg->owned) {
		if (msg->already_terminal) {
			snprintf(message, sizeof(message),
			    "run already finished (%s)",
			    status_name(msg->status));
			fe_call_finish(
			    call, GRPC_STATUS_FAILED_PRECONDITION, message);
			return;
		}
		resp.status = msg->status;
		if (fe_call_send_message(call, &resp.base) < 0) {
			fe_call_finish(
			    call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
			return;
		}
		fe_call_finish(call, GRPC_STATUS_OK, NULL);
		return;
	}
	if (op->probes == 0)
		fe_call_finish(
		    call, GRPC_STATUS_UNAVAILABLE, "no worker holds the run");
}

/* One answer to AppendEvent, or a lost worker (msg NULL). */
static void
note_answer(struct fe_call *call, const Palyra__Ipc__RunNoted *msg)
{
	Palyra__V1__AppendEventResponse resp =
	    PALYRA__V1__APPEND_EVENT_RESPONSE__INIT;
	struct fe_run_op *op = call->run_op;
	char message[FE_GRPC_MESSAGE_MAX];

	if (op == NULL || (call->state != FE_CALL_RUNNING &&
			      call->state != FE_CALL_HALF_CLOSED))
		return;
	op->probes--;
	if (msg != NULL && msg->owned) {
		if (msg->already_terminal) {
			snprintf(message, sizeof(message),
			    "run already finished (%s)",
			    status_name(msg->status));
			fe_call_finish(
			    call, GRPC_STATUS_FAILED_PRECONDITION, message);
			return;
		}
		if (msg->busy || msg->seq == 0) {
			fe_call_finish(call, GRPC_STATUS_RESOURCE_EXHAUSTED,
			    "the run's journal is busy");
			return;
		}
		resp.seq = msg->seq;
		if (fe_call_send_message(call, &resp.base) < 0) {
			fe_call_finish(
			    call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
			return;
		}
		fe_call_finish(call, GRPC_STATUS_OK, NULL);
		return;
	}
	if (op->probes == 0)
		fe_call_finish(
		    call, GRPC_STATUS_UNAVAILABLE, "no worker holds the run");
}

/* A probe's answer (msg NULL: its worker is gone) for the call's method. */
static void
probe_answer(struct fe_call *call, const ProtobufCMessage *msg)
{
	if (call->method == FE_METHOD_APPEND_EVENT)
		note_answer(call, (const Palyra__Ipc__RunNoted *)msg);
	else
		abort_answer(call, (const Palyra__Ipc__RunAborted *)msg);
}

int
fe_runs_noted(
    struct fe_worker *w, uint32_t request_id, const Palyra__Ipc__RunNoted *msg)
{
	struct fe_abort *probe;
	struct fe_call *call;

	TAILQ_FOREACH(probe, &w->aborts, entry)
	if (probe->request_id == request_id)
		break;
	if (probe == NULL || (probe->call != NULL &&
				 probe->call->method != FE_METHOD_APPEND_EVENT))
		return -EPROTO;
	TAILQ_REMOVE(&w->aborts, probe, entry);
	call = probe->call;
	free(probe);
	if (call != NULL)
		note_answer(call, msg);
	return 0;
}

int
fe_runs_aborted(struct fe_worker *w, uint32_t request_id,
    const Palyra__Ipc__RunAborted *msg)
{
	struct fe_abort *probe;
	struct fe_call *call;

	TAILQ_FOREACH(probe, &w->aborts, entry)
	if (probe->request_id == request_id)
		break;
	if (probe == NULL ||
	    (probe->call != NULL && probe->call->method != FE_METHOD_ABORT_RUN))
		return -EPROTO;
	TAILQ_REMOVE(&w->aborts, probe, entry);
	call = probe->call;
	free(probe);
	if (call != NULL)
		abort_answer(call, msg);
	return 0;
}

void
fe_runs_worker_lost(struct fe_worker *w)
{
	struct fe_abort *probe;
	struct fe_call *call;

	while ((probe = TAILQ_FIRST(&w->aborts)) != NULL) {
		TAILQ_REMOVE(&w->aborts, probe, entry);
		call = probe->call;
		free(probe);
		if (call != NULL)
			probe_answer(call, NULL);
	}
}

void
fe_runs_end(struct fe_call *call)
{
	struct fe_run_op *op = call->run_op;
	struct fe_worker *w;
	struct fe_abort *probe;

	fe_sessions_end(call);
	fe_agents_end(call);
	fe_services_end(call);
	if (op == NULL)
		return;
	call->run_op = NULL;
	TAILQ_FOREACH(w, &call->conn->ctx->workers, entry)
	{
		TAILQ_FOREACH(probe, &w->aborts, entry)
		if (probe->call == call)
			probe->call = NULL;
	}
	event_free(op->timer);
	free(op->text);
	free(op);
}
