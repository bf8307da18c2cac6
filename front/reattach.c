/*
 * reattach.c: a RunStream whose start names an existing run (run_id,
 * after_seq) follows that run: every committed event after after_seq,
 * from the journal and then live, once each and in order (DESIGN section
 * 6: runs outlive their client).
 *
 * Process: palyra-front. Touches the call, the journald channel (through
 * fe_journal_request) and the tenant's worker channels, on which it sends
 * only IPC_RUN_ATTACH and IPC_RUN_CANCEL for its own calls.
 *
 * The steps, while the call is REATTACHING:
 *
 *   CHECK   journald reads the run (tenant of the token, run_id): unknown,
 *           or of another principal, ends the call with NOT_FOUND, so that
 *           nothing tells one principal about another's runs.
 *   PROBE   every attached worker of the tenant is asked whether it holds
 *           the run (IPC_RUN_ATTACH). The owner answers with the seq L of
 *           the last event it already forwarded and from then on forwards
 *           the run's later events to this call too; they are held here
 *           (at most FE_REATTACH_LIVE_MAX) until the replay ends. A front
 *           that restarted knows no runs: asking the workers covers it.
 *   REPLAY  journald pages (JNL_READ_PAGE_MAX events) of the events with
 *           after_seq < seq <= L, or every one after after_seq when no
 *           worker owns the run.
 *
 * Then the held events after the last replayed one go out and the call is
 * RUNNING like any other. Every event sent was committed: the replay comes
 * from the journal, and a worker forwards only acknowledged events. A run
 * that no worker owns is finished (the call ends OK after its terminal
 * event), or its worker died and journald has yet to interrupt it: the call
 * then waits for journald's notice like a call whose worker died
 * (FE_WORKER_LOST_GRACE_MS), else ends with UNAVAILABLE.
 *
 * A running call whose run journald ended past events the call was never
 * sent (the worker died after their commit, before forwarding them) goes
 * through the same steps from its last seq (fe_reattach_catch_up).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "front.h"
#include "log.h"
#include "palyra/v1/gateway.pb-c.h"

enum fe_reattach_step {
	FE_REATTACH_CHECK = 0,
	FE_REATTACH_PROBE,
	FE_REATTACH_REPLAY,
};

/* A live event held during the replay, packed. */
struct fe_held_event {
	uint8_t *data;
	size_t len;
	uint64_t seq;
	int last;
};

struct fe_reattach {
	enum fe_reattach_step step;
	uint64_t limit;	    /* replay events up to this seq */
	int owned;	    /* a worker holds the run */
	uint64_t owned_seq; /* its last forwarded seq */
	int gap_read;	    /* the journal was read again for a gap */
	uint32_t probes;    /* IPC_RUN_ATTACH answers awaited */
	/* The run's principal (an operator's ListRunEvents may differ). */
	char run_principal[NAME_MAX_LEN + 1];
	struct event *timer;
	struct event *drain_timer; /* the client has not read the last page */
	struct fe_held_event *held;
	size_t nheld;
	size_t held_cap;
};

/* One IPC_RUN_ATTACH awaiting its answer, on its worker's list. */
struct fe_probe {
	TAILQ_ENTRY(fe_probe) entry;
	struct fe_call *call; /* NULL: the call ended meanwhile */
	uint32_t call_id;
};

static void read_page(struct fe_call *, uint32_t max_events);
static void next_page(struct fe_call *);
static void replay_done(struct fe_call *, int terminal);

static void
held_free(struct fe_held_event *held, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(held[i].data);
	free(held);
}

static void
timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fe_call *call = arg;

	if (call->state == FE_CALL_REATTACHING)
		fe_call_finish(call, GRPC_STATUS_UNAVAILABLE,
		    "the run's journal or worker did not answer");
}

static int
is_terminal(const Palyra__V1__RunEvent *ev)
{
	return ev->event_case == PALYRA__V1__RUN_EVENT__EVENT_STATUS &&
	       ev->status->status >=
		   PALYRA__V1__RUN_STATUS__RUN_STATUS_COMPLETED &&
	       ev->status->status <=
		   PALYRA__V1__RUN_STATUS__RUN_STATUS_INTERRUPTED;
}

static void reattach_begin(
    struct fe_call *, const char *run_id, size_t len, uint64_t after_seq);

void
fe_reattach_start(struct fe_call *call, const Palyra__V1__RunStart *start)
{
	size_t len = strnlen(start->run_id, FE_RUN_ID_MAX + 1);

	if (len > FE_RUN_ID_MAX) {
		fe_call_finish(
		    call, GRPC_STATUS_INVALID_ARGUMENT, "run_id too long");
		return;
	}
	if (start->session_id[0] != '\0' || start->session_key[0] != '\0' ||
	    start->agent[0] != '\0' || start->input[0] != '\0') {
		fe_call_finish(call, GRPC_STATUS_INVALID_ARGUMENT,
		    "a start with run_id takes no session, agent or input");
		return;
	}
	reattach_begin(call, start->run_id, len, start->after_seq);
}

/*
 * The start's idempotency key names an existing run of its session (the
 * worker said so, and started nothing): the call follows that run from
 * its first event, exactly as a reattach with after_seq 0 would.
 */
void
fe_reattach_follow(struct fe_call *call, const char *run_id)
{
	size_t len = strnlen(run_id, FE_RUN_ID_MAX + 1);

	if (len == 0 || len > FE_RUN_ID_MAX) {
		fe_call_finish(call, GRPC_STATUS_INTERNAL, "internal error");
		return;
	}
	fe_worker_detach(call);
	if (call->start_req != NULL) {
		palyra__v1__run_stream_request__free_unpacked(
		    call->start_req, NULL);
		call->start_req = NULL;
	}
	log_debug("call %d: idempotency key names run %s", call->stream_id,
	    run_id);
	reattach_begin(call, run_id, len, 0);
}

void
fe_reattach_catch_up(struct fe_call *call)
{
	char run_id[FE_RUN_ID_MAX + 1];
	size_t len = strnlen(call->run_id, FE_RUN_ID_MAX);

	memcpy(run_id, call->run_id, len);
	run_id[len] = '\0';
	/* Off the worker's (or the orphans') list, and a finished replay's
	 * state gone, before the call replays again. */
	fe_worker_detach(call);
	fe_reattach_end(call);
	log_info("call %d: run %s ended past seq %llu: reading the rest",
	    call->stream_id, run_id, (unsigned long long)call->last_seq);
	reattach_begin(call, run_id, len, call->last_seq);
}

static void
reattach_begin(
    struct fe_call *call, const char *run_id, size_t len, uint64_t after_seq)
{
	struct fe_ctx *ctx = call->conn->ctx;
	struct timeval tv = {FE_REATTACH_TIMEOUT_MS / 1000,
	    (FE_REATTACH_TIMEOUT_MS % 1000) * 1000};
	struct fe_reattach *ra;

	if ((ra = calloc(1, sizeof(*ra))) == NULL ||
	    (ra->timer = evtimer_new(ctx->base, timeout_cb, call)) == NULL ||
	    evtimer_add(ra->timer, &tv) < 0) {
		if (ra != NULL && ra->timer != NULL)
			event_free(ra->timer);
		free(ra);
		fe_call_finish(
		    call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	call->reattach = ra;
	call->reattached = 1;
	memcpy(call->run_id, run_id, len);
	call->run_id[len] = '\0';
	call->last_seq = after_seq;
	fe_call_transition(call, FE_CALL_REATTACHING);
	log_debug("call %d: reattach to run %s after %llu", call->stream_id,
	    call->run_id, (unsigned long long)call->last_seq);
	read_page(call, 0);
}

/* Asks journald for the run's events after the last one sent. */
static void
read_page(struct fe_call *call, uint32_t max_events)
{
	Palyra__Ipc__JournalRunReadRequest req =
	    PALYRA__IPC__JOURNAL_RUN_READ_REQUEST__INIT;
	int rc;

	req.tenant = call->tenant;
	req.run_id = call->run_id;
	req.after_seq = call->last_seq;
	req.max_events = max_events;
	rc = fe_journal_request(call->conn->ctx, IPC_JOURNAL_RUN_READ,
	    &req.base, FE_JREQ_RUN_READ, call, &call->jreq);
	if (rc == -ENOBUFS)
		fe_call_finish(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "server busy");
	else if (rc < 0)
		fe_call_finish(
		    call, GRPC_STATUS_UNAVAILABLE, "journal unavailable");
}

void
fe_reattach_journal_failed(struct fe_call *call)
{
	call->jreq = NULL;
	fe_call_finish(call, GRPC_STATUS_UNAVAILABLE, "journal unavailable");
}

/* Every probe answered: the replay starts. */
static void
probes_done(struct fe_call *call)
{
	struct fe_reattach *ra = call->reattach;

	ra->step = FE_REATTACH_REPLAY;
	ra->limit = ra->owned ? ra->owned_seq : UINT64_MAX;
	if (ra->owned && ra->limit <= call->last_seq)
		replay_done(call, 0);
	else
		read_page(call, JNL_READ_PAGE_MAX);
}

/* Asks every attached worker of the call's tenant for the run. */
static void
probe_all(struct fe_call *call)
{
	Palyra__Ipc__RunAttachRequest req =
	    PALYRA__IPC__RUN_ATTACH_REQUEST__INIT;
	struct fe_reattach *ra = call->reattach;
	struct fe_worker *w;
	struct fe_probe *probe;

	ra->step = FE_REATTACH_PROBE;
	req.run_id = call->run_id;
	req.principal = ra->run_principal;
	TAILQ_FOREACH(w, &call->conn->ctx->workers, entry)
	{
		if (w->chan == NULL || ipc_chan_dead(w->chan) ||
		    strcmp(w->tenant, call->tenant) != 0)
			continue;
		if ((probe = calloc(1, sizeof(*probe))) == NULL)
			break;
		probe->call = call;
		probe->call_id = w->next_call_id++;
		if (w->next_call_id == 0)
			w->next_call_id = 1;
		if (ipc_chan_send(w->chan, IPC_RUN_ATTACH, probe->call_id,
			&req.base, NULL, 0) < 0) {
			free(probe);
			continue;
		}
		TAILQ_INSERT_TAIL(&w->probes, probe, entry);
		ra->probes++;
	}
	/* No worker of the tenant attached (lazy pools): nobody owns it. */
	if (ra->probes == 0)
		probes_done(call);
}

/* Sends one replayed event. Returns 1 when the call ended. */
static int
send_replayed(struct fe_call *call, const Palyra__V1__RunEvent *ev)
{
	int rc;

	rc = fe_call_send_message(call, &ev->base);
	if (rc == -ENOBUFS) {
		fe_call_abort(call, GRPC_STATUS_RESOURCE_EXHAUSTED,
		    "client not reading events");
		return 1;
	}
	if (rc < 0) {
		fe_call_abort(call, GRPC_STATUS_INTERNAL, "internal error");
		return 1;
	}
	call->last_seq = ev->seq;
	if (is_terminal(ev)) {
		fe_call_finish(call, GRPC_STATUS_OK, NULL);
		return 1;
	}
	return 0;
}

void
fe_reattach_page(struct fe_call *call, const Palyra__Ipc__JournalRunPage *page)
{
	struct fe_reattach *ra = call->reattach;
	size_t i;

	call->jreq = NULL;
	if (call->state != FE_CALL_REATTACHING || ra == NULL)
		return;
	if (page->error[0] != '\0') {
		/* The token's tenant is no longer served: no such run. */
		if (strcmp(page->error, "unknown tenant") == 0)
			fe_call_finish(call, GRPC_STATUS_NOT_FOUND, "unknown run");
		else
			fe_call_finish(
			    call, GRPC_STATUS_UNAVAILABLE, "journal unavailable");
		return;
	}
	/* Another principal's run is as unknown as a run that never was. */
	if (!page->found || !fe_runs_visible(call, page->principal) ||
	    strlen(page->principal) > NAME_MAX_LEN) {
		fe_call_finish(call, GRPC_STATUS_NOT_FOUND, "unknown run");
		return;
	}
	if (ra->step == FE_REATTACH_CHECK) {
		memcpy(ra->run_principal, page->principal,
		    strlen(page->principal) + 1);
		if (!page->terminal) {
			probe_all(call);
			return;
		}
		/* Finished: everything is in the journal. */
		ra->step = FE_REATTACH_REPLAY;
		ra->limit = UINT64_MAX;
		read_page(call, JNL_READ_PAGE_MAX);
		return;
	}
	if (ra->step != FE_REATTACH_REPLAY)
		return;
	for (i = 0; i < page->n_events; i++) {
		const Palyra__V1__RunEvent *ev = page->events[i];

		if (ev->seq <= call->last_seq)
			continue;
		if (ev->seq > ra->limit)
			break;
		if (send_replayed(call, ev))
			return;
	}
	if (page->more && call->last_seq < ra->limit) {
		next_page(call);
		return;
	}
	replay_done(call, page->terminal);
}

static void
drain_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fe_call *call = arg;

	if (call->state == FE_CALL_REATTACHING)
		next_page(call);
}

/*
 * Reads the next page once the client took most of the last one: a replay
 * holds at most about a page and FE_REATTACH_OUT_HIGH bytes. The step's
 * timer starts again with each page.
 */
static void
next_page(struct fe_call *call)
{
	struct fe_reattach *ra = call->reattach;
	struct timeval poll = {0, FE_REATTACH_DRAIN_POLL_MS * 1000};
	struct timeval step = {FE_REATTACH_TIMEOUT_MS / 1000,
	    (FE_REATTACH_TIMEOUT_MS % 1000) * 1000};

	if (evbuffer_get_length(call->out) +
		(call->http != NULL ? fe_console_pending(call) : 0) >
	    FE_REATTACH_OUT_HIGH) {
		evtimer_del(ra->timer);
		if (ra->drain_timer == NULL)
			ra->drain_timer =
			    evtimer_new(call->conn->ctx->base, drain_cb, call);
		if (ra->drain_timer == NULL ||
		    evtimer_add(ra->drain_timer, &poll) < 0)
			fe_call_finish(
			    call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	evtimer_add(ra->timer, &step);
	read_page(call, JNL_READ_PAGE_MAX);
}

/* The replay is over: held events, then live ones. */
static void
go_live(struct fe_call *call)
{
	struct fe_reattach *ra = call->reattach;
	Palyra__Ipc__RunEventMsg msg = PALYRA__IPC__RUN_EVENT_MSG__INIT;
	struct fe_held_event *held = ra->held;
	size_t nheld = ra->nheld, i;

	ra->held = NULL;
	ra->nheld = ra->held_cap = 0;
	evtimer_del(ra->timer);
	fe_call_transition(call, FE_CALL_RUNNING);
	/* Each may end the call (and free ra): only locals from here. */
	for (i = 0; i < nheld; i++) {
		if (call->state != FE_CALL_RUNNING &&
		    call->state != FE_CALL_HALF_CLOSED)
			break;
		if (held[i].seq <= call->last_seq)
			continue;
		msg.event = palyra__v1__run_event__unpack(
		    NULL, held[i].len, held[i].data);
		if (msg.event == NULL) {
			fe_call_abort(call, GRPC_STATUS_INTERNAL, "internal error");
			break;
		}
		msg.last = held[i].last;
		fe_rpc_run_event(call, &msg);
		palyra__v1__run_event__free_unpacked(msg.event, NULL);
	}
	held_free(held, nheld);
	/* A console JSON page of events ends with what was committed. */
	if (call->state == FE_CALL_RUNNING && call->http != NULL &&
	    fe_console_replayed(call))
		fe_call_finish(call, GRPC_STATUS_OK, NULL);
	/* What the client sent meanwhile (a cancel, its half-close). */
	if (call->state == FE_CALL_RUNNING)
		fe_call_input_resume(call);
}

static void
replay_done(struct fe_call *call, int terminal)
{
	struct fe_reattach *ra = call->reattach;
	struct fe_ctx *ctx = call->conn->ctx;
	size_t i;

	if (!ra->owned) {
		if (terminal) {
			/* after_seq at or past the end: nothing to send. */
			fe_call_finish(call, GRPC_STATUS_OK, NULL);
			return;
		}
		/* Its worker is gone and journald has not yet interrupted
		 * the run: wait for its notice, as an orphaned call does. */
		go_live(call);
		if (call->state != FE_CALL_RUNNING &&
		    call->state != FE_CALL_HALF_CLOSED)
			return;
		if (fe_call_grace_timer_start(call) < 0) {
			fe_call_finish(call, GRPC_STATUS_UNAVAILABLE,
			    "the run's worker is gone");
			return;
		}
		call->orphaned = 1;
		TAILQ_INSERT_TAIL(&ctx->orphans, call, worker_entry);
		return;
	}
	/*
	 * The first held event should follow the last replayed one. Should
	 * the owner have died meanwhile, journald's notice comes later than
	 * events the worker no longer forwarded: read those once more.
	 */
	for (i = 0; i < ra->nheld; i++)
		if (ra->held[i].seq > call->last_seq)
			break;
	if (i < ra->nheld && ra->held[i].seq > call->last_seq + 1 &&
	    !ra->gap_read) {
		ra->gap_read = 1;
		ra->limit = ra->held[i].seq - 1;
		read_page(call, JNL_READ_PAGE_MAX);
		return;
	}
	go_live(call);
}

int
fe_reattach_attached(struct fe_worker *w, uint32_t request_id,
    const Palyra__Ipc__RunAttached *msg)
{
	Palyra__Ipc__RunCancelRequest cancel =
	    PALYRA__IPC__RUN_CANCEL_REQUEST__INIT;
	struct fe_probe *probe;
	struct fe_call *call;
	struct fe_reattach *ra;

	TAILQ_FOREACH(probe, &w->probes, entry)
	if (probe->call_id == request_id)
		break;
	if (probe == NULL)
		return -EPROTO;
	TAILQ_REMOVE(&w->probes, probe, entry);
	call = probe->call;
	free(probe);
	ra = call != NULL ? call->reattach : NULL;
	if (msg->owned && !msg->full &&
	    (ra == NULL || ra->owned || call->state != FE_CALL_REATTACHING)) {
		/* Nobody waits for its events any more: stop them. */
		cancel.reason = "";
		cancel.disconnected = 1;
		(void)ipc_chan_send(
		    w->chan, IPC_RUN_CANCEL, request_id, &cancel.base, NULL, 0);
	}
	if (ra == NULL || call->state != FE_CALL_REATTACHING)
		return 0;
	if (msg->owned && msg->full) {
		fe_call_finish(call, GRPC_STATUS_RESOURCE_EXHAUSTED,
		    "too many calls follow this run");
		return 0;
	}
	if (msg->owned && !ra->owned) {
		ra->owned = 1;
		ra->owned_seq = msg->last_forwarded_seq;
		call->worker = w;
		call->call_id = request_id;
		TAILQ_INSERT_TAIL(&w->calls, call, worker_entry);
		w->ncalls++;
	}
	if (--ra->probes == 0)
		probes_done(call);
	return 0;
}

void
fe_reattach_live(struct fe_call *call, const Palyra__Ipc__RunEventMsg *ev)
{
	struct fe_reattach *ra = call->reattach;
	struct fe_held_event *held;
	size_t cap;

	if (ra == NULL)
		return;
	if (ra->nheld >= FE_REATTACH_LIVE_MAX) {
		/* Mostly a client that does not read the replay (next_page()
		 * waits for it): as for a slow follower (rpc.c). */
		char msg[64];

		snprintf(msg, sizeof(msg),
		    "client too slow; reattach from seq %llu",
		    (unsigned long long)call->last_seq);
		call->conn->ctx->metrics.slow_followers++;
		fe_call_abort(call, GRPC_STATUS_RESOURCE_EXHAUSTED, msg);
		return;
	}
	if (ra->nheld == ra->held_cap) {
		cap = ra->held_cap == 0 ? 16 : ra->held_cap * 2;
		if (cap > FE_REATTACH_LIVE_MAX)
			cap = FE_REATTACH_LIVE_MAX;
		if ((held = reallocarray(ra->held, cap, sizeof(*held))) ==
		    NULL) {
			fe_call_abort(
			    call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
			return;
		}
		ra->held = held;
		ra->held_cap = cap;
	}
	held = &ra->held[ra->nheld];
	held->len = protobuf_c_message_get_packed_size(&ev->event->base);
	if ((held->data = malloc(held->len > 0 ? held->len : 1)) == NULL) {
		fe_call_abort(
		    call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	protobuf_c_message_pack(&ev->event->base, held->data);
	held->seq = ev->event->seq;
	held->last = ev->last;
	ra->nheld++;
}

void
fe_reattach_worker_lost(struct fe_worker *w)
{
	struct fe_probe *probe;
	struct fe_call *call;

	while ((probe = TAILQ_FIRST(&w->probes)) != NULL) {
		TAILQ_REMOVE(&w->probes, probe, entry);
		call = probe->call;
		free(probe);
		if (call == NULL || call->reattach == NULL ||
		    call->state != FE_CALL_REATTACHING)
			continue;
		if (--call->reattach->probes == 0)
			probes_done(call);
	}
}

void
fe_reattach_end(struct fe_call *call)
{
	struct fe_reattach *ra = call->reattach;
	struct fe_worker *w;
	struct fe_probe *probe;

	if (ra == NULL)
		return;
	call->reattach = NULL;
	TAILQ_FOREACH(w, &call->conn->ctx->workers, entry)
	{
		if (strcmp(w->tenant, call->tenant) != 0)
			continue;
		TAILQ_FOREACH(probe, &w->probes, entry)
		if (probe->call == call)
			probe->call = NULL;
	}
	/* The owner stops forwarding to this call; the run goes on. */
	if (call->worker != NULL)
		fe_worker_cancel(call, "", 1);
	held_free(ra->held, ra->nheld);
	event_free(ra->timer);
	if (ra->drain_timer != NULL)
		event_free(ra->drain_timer);
	free(ra);
}
