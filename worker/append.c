/*
 * append.c: the worker's journal pipeline (palyra-worker).
 *
 * Every event of every run is sent to palyra-journald as an
 * IPC_JOURNAL_APPEND and remembered in a bounded FIFO. Journald acknowledges
 * appends in order, each only after the transaction holding it committed, so
 * the head of the FIFO always names the next acknowledgement. Only an
 * acknowledged event is forwarded to the front, which is what makes "a
 * client never sees an event the journal does not have" true.
 *
 * Appends are pipelined: producers do not wait for an ack before the next
 * event, because journald commits in groups and throughput depends on it.
 * The FIFO bound (WRK_MAX_INFLIGHT) is the back-pressure: a provider that
 * finds no room stalls and is resumed from the kick event once acks drain.
 *
 * Touches: the journald and front channels of the context, its runs.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "grpc_status.h"
#include "ipc.h"
#include "log.h"
#include "worker.h"

/* The protobuf view of one wrk_event, built on the stack for sending. */
struct pb_event {
	Palyra__V1__RunEvent		 event;
	Palyra__V1__StatusEvent		 status;
	Palyra__V1__ModelToken		 token;
	Palyra__V1__FinalMessage	 final;
	Palyra__V1__Usage		 usage;
	Palyra__V1__Note		 note;
	Palyra__V1__Input		 input;
	Palyra__V1__ToolCall		 tool_call;
	Palyra__V1__ToolResult		 tool_result;
	Palyra__V1__ErrorEvent		 error;
	Palyra__V1__BudgetWarning	 budget_warning;
};

static void	kick_cb(evutil_socket_t, short, void *);

static char *
text_or_empty(const char *s)
{
	return (char *)(s != NULL ? s : "");
}

static void
pb_event_build(const struct wrk_run *run, const struct wrk_event *ev,
    struct pb_event *pb)
{
	palyra__v1__run_event__init(&pb->event);
	pb->event.run_id = (char *)run->run_id;
	pb->event.seq = ev->seq;
	pb->event.timestamp_unix_ms = ev->timestamp_ms;
	pb->event.session_id = (char *)run->session_id;

	switch (ev->kind) {
	case WRK_EVENT_STATUS:
		palyra__v1__status_event__init(&pb->status);
		pb->status.status = (Palyra__V1__RunStatus)ev->status;
		pb->status.reason = text_or_empty(ev->text);
		pb->event.event_case = PALYRA__V1__RUN_EVENT__EVENT_STATUS;
		pb->event.status = &pb->status;
		break;
	case WRK_EVENT_TOKEN:
		palyra__v1__model_token__init(&pb->token);
		pb->token.text = text_or_empty(ev->text);
		pb->event.event_case = PALYRA__V1__RUN_EVENT__EVENT_TOKEN;
		pb->event.token = &pb->token;
		break;
	case WRK_EVENT_FINAL:
		palyra__v1__final_message__init(&pb->final);
		pb->final.text = text_or_empty(ev->text);
		pb->event.event_case = PALYRA__V1__RUN_EVENT__EVENT_FINAL;
		pb->event.final = &pb->final;
		break;
	case WRK_EVENT_USAGE:
		palyra__v1__usage__init(&pb->usage);
		pb->usage.input_tokens = ev->input_tokens;
		pb->usage.output_tokens = ev->output_tokens;
		pb->usage.provider = text_or_empty(run->provider_name);
		pb->usage.model = text_or_empty(run->model);
		pb->event.event_case = PALYRA__V1__RUN_EVENT__EVENT_USAGE;
		pb->event.usage = &pb->usage;
		break;
	case WRK_EVENT_NOTE:
		palyra__v1__note__init(&pb->note);
		pb->note.text = text_or_empty(ev->text);
		pb->note.principal = text_or_empty(ev->author);
		pb->event.event_case = PALYRA__V1__RUN_EVENT__EVENT_NOTE;
		pb->event.note = &pb->note;
		break;
	case WRK_EVENT_INPUT:
		palyra__v1__input__init(&pb->input);
		pb->input.text = text_or_empty(ev->text);
		pb->event.event_case = PALYRA__V1__RUN_EVENT__EVENT_INPUT;
		pb->event.input = &pb->input;
		break;
	case WRK_EVENT_TOOL_CALL:
		palyra__v1__tool_call__init(&pb->tool_call);
		pb->tool_call.id = text_or_empty(ev->tool_id);
		pb->tool_call.name = text_or_empty(ev->tool_name);
		pb->tool_call.arguments_json = text_or_empty(ev->text);
		pb->event.event_case = PALYRA__V1__RUN_EVENT__EVENT_TOOL_CALL;
		pb->event.tool_call = &pb->tool_call;
		break;
	case WRK_EVENT_TOOL_RESULT:
		palyra__v1__tool_result__init(&pb->tool_result);
		pb->tool_result.id = text_or_empty(ev->tool_id);
		pb->tool_result.name = text_or_empty(ev->tool_name);
		pb->tool_result.is_error = ev->is_error;
		pb->tool_result.content = text_or_empty(ev->text);
		pb->event.event_case = PALYRA__V1__RUN_EVENT__EVENT_TOOL_RESULT;
		pb->event.tool_result = &pb->tool_result;
		break;
	case WRK_EVENT_ERROR:
		palyra__v1__error_event__init(&pb->error);
		pb->error.code = (char *)grpc_status_name((int)ev->grpc_status);
		pb->error.message = text_or_empty(ev->text);
		pb->event.event_case = PALYRA__V1__RUN_EVENT__EVENT_ERROR;
		pb->event.error = &pb->error;
		break;
	case WRK_EVENT_BUDGET_WARNING:
		palyra__v1__budget_warning__init(&pb->budget_warning);
		pb->budget_warning.budget_id = text_or_empty(ev->budget_id);
		pb->budget_warning.message = text_or_empty(ev->text);
		pb->budget_warning.used = ev->used;
		pb->budget_warning.limit = ev->limit;
		pb->budget_warning.unit = text_or_empty(ev->unit);
		pb->event.event_case =
		    PALYRA__V1__RUN_EVENT__EVENT_BUDGET_WARNING;
		pb->event.budget_warning = &pb->budget_warning;
		break;
	case WRK_EVENT_APPROVAL_REQUEST:
		pb->event.event_case =
		    PALYRA__V1__RUN_EVENT__EVENT_APPROVAL_REQUEST;
		pb->event.approval_request =
		    (Palyra__V1__ApprovalRequest *)ev->detail;
		break;
	case WRK_EVENT_APPROVAL_DECIDED:
		pb->event.event_case =
		    PALYRA__V1__RUN_EVENT__EVENT_APPROVAL_DECIDED;
		pb->event.approval_decided =
		    (Palyra__V1__ApprovalDecided *)ev->detail;
		break;
	}
}

static int
event_is_last(const struct wrk_event *ev)
{
	return ev->kind == WRK_EVENT_STATUS && wrk_run_terminal(ev->status);
}

void
wrk_event_clear(struct wrk_event *ev)
{
	free(ev->text);
	free(ev->author);
	free(ev->tool_id);
	free(ev->tool_name);
	free(ev->budget_id);
	free(ev->unit);
	if (ev->detail != NULL)
		protobuf_c_message_free_unpacked(ev->detail, NULL);
	memset(ev, 0, sizeof(*ev));
}

int
wrk_append_init(struct wrk_ctx *ctx)
{
	ctx->fifo = calloc(WRK_MAX_INFLIGHT, sizeof(*ctx->fifo));
	if (ctx->fifo == NULL)
		return -ENOMEM;
	ctx->kick_ev = evtimer_new(ctx->base, kick_cb, ctx);
	if (ctx->kick_ev == NULL) {
		free(ctx->fifo);
		ctx->fifo = NULL;
		return -ENOMEM;
	}
	return 0;
}

void
wrk_append_fini(struct wrk_ctx *ctx)
{
	wrk_append_drop_all(ctx);
	if (ctx->kick_ev != NULL)
		event_free(ctx->kick_ev);
	ctx->kick_ev = NULL;
	free(ctx->fifo);
	ctx->fifo = NULL;
}

/* Free FIFO slots, for control events; providers see less (may_emit). */
size_t
wrk_append_room(const struct wrk_ctx *ctx)
{
	return WRK_MAX_INFLIGHT - ctx->fifo_len;
}

/*
 * Sends ev as the run's next event. On success the FIFO owns ev's text and
 * ev is cleared. Returns 0; -ENOBUFS when there is no room (ev untouched, the
 * caller may keep it and retry); -ENOTCONN without a (live) journald
 * channel, or another -errno from the channel (ev cleared in both cases).
 */
int
wrk_emit(struct wrk_run *run, struct wrk_event *ev)
{
	struct wrk_ctx		*ctx = run->ctx;
	Palyra__Ipc__JournalAppend append;
	struct pb_event		 pb;
	struct wrk_append	*slot;
	uint32_t		 request_id;
	int			 r;

	if (ctx->journald == NULL || ipc_chan_dead(ctx->journald)) {
		wrk_event_clear(ev);
		return -ENOTCONN;
	}
	if (ctx->fifo_len >= WRK_MAX_INFLIGHT)
		return -ENOBUFS;

	/* The tenant's vault values never leave the worker (vault_redact.c):
	 * a token's tail that begins one waits for the next token. */
	if ((r = wrk_vault_redact_begin(run, ev)) != 0) {
		if (r == -ENOBUFS)
			return r;
		wrk_event_clear(ev);
		return r == 1 ? 0 : r;
	}
	ev->seq = run->next_seq;
	ev->timestamp_ms = wrk_now_ms();
	pb_event_build(run, ev, &pb);
	if ((r = wrk_vault_redact_fields(run, ev, &pb.event)) < 0) {
		log_warn("run %s: cannot redact event %llu: %s", run->run_id,
		    (unsigned long long)ev->seq, strerror(-r));
		wrk_event_clear(ev);
		return r;
	}
	palyra__ipc__journal_append__init(&append);
	append.event = &pb.event;
	append.principal = run->principal;
	append.agent = run->agent;
	append.session_must_exist = ev->seq == 1 && run->session_named;

	request_id = ctx->append_counter + 1;
	r = ipc_chan_send(ctx->journald, IPC_JOURNAL_APPEND, request_id,
	    &append.base, NULL, 0);
	if (r == -ENOBUFS)
		return r;
	if (r == -EPIPE) {
		/* Journald's close callback follows and abandons the runs. */
		wrk_event_clear(ev);
		return -ENOTCONN;
	}
	if (r < 0) {
		log_warn("run %s: cannot append event %llu: %s", run->run_id,
		    (unsigned long long)ev->seq, strerror(-r));
		wrk_event_clear(ev);
		return r;
	}
	ctx->append_counter = request_id;
	run->next_seq++;
	run->inflight++;

	slot = &ctx->fifo[(ctx->fifo_head + ctx->fifo_len) % WRK_MAX_INFLIGHT];
	slot->request_id = request_id;
	slot->run = run;
	slot->event = *ev;
	memset(ev, 0, sizeof(*ev));
	ctx->fifo_len++;
	return 0;
}

/*
 * Sends one acknowledged event to the front call of its run, if any. When
 * journald stored the event differently (a secret value redacted), stored
 * is what it committed, and that is what the client gets: never the
 * worker's own copy.
 */
static void
forward(struct wrk_ctx *ctx, struct wrk_run *run, const struct wrk_event *ev,
    Palyra__V1__RunEvent *stored)
{
	Palyra__Ipc__RunEventMsg msg;
	struct pb_event		 pb;
	int			 last = event_is_last(ev);
	int			 r;

	if (!run->has_call && run->nfollowers == 0)
		return;
	if (ctx->front == NULL || ipc_chan_dead(ctx->front)) {
		run->has_call = 0;
		run->nfollowers = 0;
		return;
	}
	pb_event_build(run, ev, &pb);
	palyra__ipc__run_event_msg__init(&msg);
	msg.event = &pb.event;
	if (stored != NULL && stored->seq == ev->seq &&
	    stored->event_case == pb.event.event_case &&
	    strcmp(stored->run_id, run->run_id) == 0)
		msg.event = stored;
	msg.last = last;
	/* Reattached calls follow the run too (run.c). */
	wrk_run_forward_followers(run, &msg);
	/* A run failed with a status (wrk_run_fail_status): its own call
	 * gets the last event as any other, then ends with that status. */
	if (last && run->fail_grpc_status != 0)
		msg.last = 0;
	r = !run->has_call ? 0 : ipc_chan_send(ctx->front, IPC_RUN_EVENT,
	    run->call_id, &msg.base, NULL, 0);
	if (r < 0) {
		/* The events stay in the journal; the client can resume. */
		log_warn("run %s: front call %u dropped: %s", run->run_id,
		    run->call_id, strerror(-r));
		run->has_call = 0;
		return;
	}
	if (last && run->has_call && run->fail_grpc_status != 0) {
		run->has_call = 0;
		wrk_front_error(ctx, run->call_id, run->fail_grpc_status,
		    run->fail_message != NULL ? run->fail_message :
		    grpc_status_name((int)run->fail_grpc_status));
	}
	if (last)
		run->has_call = 0;

	/*
	 * Back-pressure: a front that does not drain stops us from reading
	 * acks, which stops forwarding and, through the FIFO bound, the
	 * providers. The front's drain callback resumes journald.
	 */
	if (!ctx->journald_paused && ctx->journald != NULL &&
	    ipc_chan_queued(ctx->front) >= IPC_QUEUE_HIGH_WATER / 2) {
		ipc_chan_pause(ctx->journald);
		ctx->journald_paused = 1;
	}
}

/* What happens to a run whose event journald refused. */
static void
refused(struct wrk_run *run, const struct wrk_event *ev, const char *error,
    int code)
{
	/*
	 * The client named a session that does not exist for its principal:
	 * the run never started, the call fails with NOT_FOUND, and nothing
	 * of it was journaled (every later append is refused as well).
	 */
	if (ev->seq == 1 &&
	    code == PALYRA__IPC__JOURNAL_ERROR__JOURNAL_SESSION_NOT_FOUND) {
		log_info("run %s: unknown session %s", run->run_id,
		    run->session_id);
		run->refused = 1;
		wrk_call_error(run, GRPC_STATUS_NOT_FOUND, "unknown session");
		if (!wrk_run_terminal(run->state))
			wrk_run_transition(run, WRK_RUN_FAILED,
			    "unknown session");
		return;
	}
	/* The session was closed (CleanupSession): likewise, refused. */
	if (ev->seq == 1 &&
	    code == PALYRA__IPC__JOURNAL_ERROR__JOURNAL_SESSION_CLOSED) {
		log_info("run %s: session %s is closed", run->run_id,
		    run->session_id);
		run->refused = 1;
		wrk_call_error(
		    run, GRPC_STATUS_FAILED_PRECONDITION, "session closed");
		if (!wrk_run_terminal(run->state))
			wrk_run_transition(run, WRK_RUN_FAILED,
			    "session closed");
		return;
	}
	log_warn("run %s: journal refused event %llu: %s", run->run_id,
	    (unsigned long long)ev->seq, error);
	/*
	 * The tenant's journal is full: the client learns so, with the
	 * gRPC code that says it. Journald has ended the journal's run
	 * (FAILED after its last stored event); the transition here stops
	 * the provider, and its own FAILED status is refused as late.
	 */
	/*
	 * The disk under the journal is full: nothing of this event was
	 * stored. The client learns it with RESOURCE_EXHAUSTED; the run
	 * ends as below (its FAILED status is stored if space returned).
	 */
	if (code == PALYRA__IPC__JOURNAL_ERROR__JOURNAL_FULL)
		wrk_call_error(run, GRPC_STATUS_RESOURCE_EXHAUSTED,
		    "journal storage full");
	if (code == PALYRA__IPC__JOURNAL_ERROR__JOURNAL_QUOTA) {
		wrk_call_error(run, GRPC_STATUS_RESOURCE_EXHAUSTED,
		    "journal quota exceeded");
		if (!run->refused) {
			run->refused = 1;
			if (!wrk_run_terminal(run->state))
				wrk_run_transition(run, WRK_RUN_FAILED,
				    "journal quota exceeded");
		}
		return;
	}
	if (!run->refused) {
		run->refused = 1;
		if (!wrk_run_terminal(run->state)) {
			/*
			 * The FAILED status is appended too; if that
			 * cannot happen, the transition reports the call.
			 */
			wrk_run_transition(run, WRK_RUN_FAILED,
			    "journal refused event");
			return;
		}
	}
	/*
	 * The run is terminal and its terminal status will not reach the
	 * front through the journal: tell the call directly.
	 */
	wrk_call_error(run, GRPC_STATUS_INTERNAL, "journal write failed");
}

/*
 * Handles journald's acknowledgement of request_id. Returns 0, or -EPROTO
 * when it does not acknowledge the oldest in-flight append (journald then
 * broke its ordering promise and the caller drops the channel).
 */
int
wrk_append_ack(struct wrk_ctx *ctx, uint32_t request_id,
    const Palyra__Ipc__JournalAck *ack)
{
	struct wrk_append	 head;
	struct wrk_run		*run;

	if (ctx->fifo_len == 0) {
		log_warn("journald acked %u with nothing in flight",
		    request_id);
		return -EPROTO;
	}
	if (ctx->fifo[ctx->fifo_head].request_id != request_id) {
		log_warn("journald acked %u, expected %u", request_id,
		    ctx->fifo[ctx->fifo_head].request_id);
		return -EPROTO;
	}
	head = ctx->fifo[ctx->fifo_head];
	memset(&ctx->fifo[ctx->fifo_head], 0, sizeof(head));
	ctx->fifo_head = (ctx->fifo_head + 1) % WRK_MAX_INFLIGHT;
	ctx->fifo_len--;
	run = head.run;
	run->inflight--;
	/* What a reattaching call is told the front already has. */
	run->acked_seq = head.event.seq;

	if (ack->ok) {
		/*
		 * After a refusal the client only gets the FAILED status:
		 * the events in between would show it a gap.
		 */
		if (!run->refused || event_is_last(&head.event))
			forward(ctx, run, &head.event, ack->stored);
	} else
		refused(run, &head.event,
		    ack->error != NULL && ack->error[0] != '\0' ?
		    ack->error : "no reason given", ack->code);

	wrk_event_clear(&head.event);
	wrk_run_maybe_free(run);
	wrk_append_kick(ctx);
	return 0;
}

/* Forgets every in-flight append: their acks will never come. */
void
wrk_append_drop_all(struct wrk_ctx *ctx)
{
	struct wrk_append	*slot;

	while (ctx->fifo_len > 0) {
		slot = &ctx->fifo[ctx->fifo_head];
		slot->run->inflight--;
		wrk_event_clear(&slot->event);
		slot->run = NULL;
		ctx->fifo_head = (ctx->fifo_head + 1) % WRK_MAX_INFLIGHT;
		ctx->fifo_len--;
	}
	ctx->fifo_head = 0;
}

/* Schedules a pass over parked and stalled runs on the next loop turn. */
void
wrk_append_kick(struct wrk_ctx *ctx)
{
	static const struct timeval zero = { 0, 0 };

	if ((ctx->nparked > 0 || ctx->nstalled > 0) && ctx->kick_ev != NULL &&
	    !evtimer_pending(ctx->kick_ev, NULL))
		evtimer_add(ctx->kick_ev, &zero);
}

static void
kick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct wrk_ctx	*ctx = arg;
	struct wrk_run	*run, *next;
	int		 r;

	/* Parked status events first: they were produced earlier. */
	for (run = TAILQ_FIRST(&ctx->runs); run != NULL && ctx->nparked > 0;
	    run = next) {
		next = TAILQ_NEXT(run, entry);
		if (!run->has_parked)
			continue;
		r = wrk_emit(run, &run->parked);
		if (r == -ENOBUFS)
			return;
		run->has_parked = 0;
		ctx->nparked--;
		if (r < 0)
			wrk_event_clear(&run->parked);
		wrk_run_maybe_free(run);
	}

	for (run = TAILQ_FIRST(&ctx->runs); run != NULL && ctx->nstalled > 0 &&
	    ctx->fifo_len < WRK_INFLIGHT_PROVIDER; run = next) {
		next = TAILQ_NEXT(run, entry);
		if (!run->stalled)
			continue;
		run->stalled = 0;
		ctx->nstalled--;
		if (run->provider_running && run->provider->resume != NULL)
			run->provider->resume(run);
	}
}
