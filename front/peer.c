/*
 * peer.c: palyra-front's channels to journald (token store and lookup) and
 * to each of the tenants' workers (runs, and the service calls only a
 * worker answers), as attached by the supervisor, one per (tenant, index).
 *
 * Process: palyra-front. Touches only the channels it is handed; a peer
 * that sends something malformed or unpermitted loses its channel, the
 * front carries on. Which tenant a worker serves comes from the
 * supervisor's IPC_ATTACH_PEER, never from the worker.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "config.h"
#include "front.h"
#include "log.h"

#define FE_JOURNALD_ALLOWED                                                    \
	(IPC_TYPE_BIT(IPC_TOKEN_STORED) | IPC_TYPE_BIT(IPC_TOKEN_INFO) |       \
	    IPC_TYPE_BIT(IPC_RUN_NOTICE) | FE_JOURNAL_REPLY_TYPES |            \
	    IPC_TYPE_BIT(IPC_JOURNAL_LIST_PAGE) |                              \
	    IPC_TYPE_BIT(IPC_JOURNAL_RUN_PAGE) |                               \
	    IPC_TYPE_BIT(IPC_JOURNAL_SESSION_REPLY) |                          \
	    IPC_TYPE_BIT(IPC_JOURNAL_AGENT_REPLY) |                            \
	    IPC_TYPE_BIT(IPC_TOKEN_LIST) | IPC_TYPE_BIT(IPC_TOKEN_REVOKED) |   \
	    IPC_TYPE_BIT(IPC_JOURNAL_STATS) | IPC_TYPE_BIT(IPC_SERVICE_REPLY))
#define FE_WORKER_ALLOWED                                                      \
	(IPC_TYPE_BIT(IPC_RUN_EVENT) | IPC_TYPE_BIT(IPC_RUN_ERROR) |           \
	    IPC_TYPE_BIT(IPC_RUN_ATTACHED) | IPC_TYPE_BIT(IPC_RUN_ABORTED) |   \
	    IPC_TYPE_BIT(IPC_RUN_NOTED) | IPC_TYPE_BIT(IPC_SERVICE_REPLY))

static void
jreq_fail(struct fe_jreq *jreq)
{
	if (jreq->owner == NULL)
		return;
	if (jreq->kind == FE_JREQ_LOOKUP)
		fe_rpc_journal_failed(jreq->owner);
	else if (jreq->kind == FE_JREQ_RUN_READ &&
		 ((struct fe_call *)jreq->owner)->run_op != NULL)
		fe_runs_journal_failed(jreq->owner);
	else if (jreq->kind == FE_JREQ_RUN_READ)
		fe_reattach_journal_failed(jreq->owner);
	else if (jreq->kind == FE_JREQ_TOKEN_LIST)
		fe_tokens_listed(jreq->owner, NULL);
	else if (jreq->kind == FE_JREQ_TOKEN_REVOKE)
		fe_tokens_revoked(jreq->owner, NULL);
	else if (jreq->kind == FE_JREQ_SESSION)
		fe_sessions_reply(jreq->owner, NULL);
	else if (jreq->kind == FE_JREQ_AGENT)
		fe_agents_reply(jreq->owner, NULL);
	else if (jreq->kind == FE_JREQ_SERVICE)
		fe_services_reply(jreq->owner, NULL);
	else
		fe_http_token_stored(jreq->owner, NULL);
}

/* Forgets the journald channel; every request still waiting fails. */
static void
journald_drop(struct fe_ctx *ctx)
{
	struct fe_jreq *jreq;

	if (ctx->journald == NULL)
		return;
	fe_chan_free_later(ctx, ctx->journald);
	ctx->journald = NULL;
	fe_journal_peer_lost(ctx);
	fe_health_changed(ctx);
	while ((jreq = TAILQ_FIRST(&ctx->jreqs)) != NULL) {
		TAILQ_REMOVE(&ctx->jreqs, jreq, entry);
		jreq_fail(jreq);
		free(jreq);
	}
}

static void
journald_msg(struct ipc_chan *chan, struct ipc_msg *m, void *arg)
{
	struct fe_ctx *ctx = arg;
	struct fe_jreq *jreq;
	enum fe_jreq_kind kind;

	if (chan != ctx->journald)
		return;
	if (fe_journal_reply(ctx, m) || fe_listing_reply(ctx, m) ||
	    fe_metrics_journal_reply(ctx, m))
		return;
	if (m->hdr.type == IPC_RUN_NOTICE) {
		if (fe_peer_run_notice(ctx, (Palyra__Ipc__RunNotice *)m->msg) <
		    0) {
			log_warn("journald sent a malformed RUN_NOTICE, "
				 "dropping its channel");
			journald_drop(ctx);
		}
		return;
	}
	kind = m->hdr.type == IPC_TOKEN_INFO		  ? FE_JREQ_LOOKUP
	       : m->hdr.type == IPC_JOURNAL_RUN_PAGE	  ? FE_JREQ_RUN_READ
	       : m->hdr.type == IPC_TOKEN_LIST		  ? FE_JREQ_TOKEN_LIST
	       : m->hdr.type == IPC_TOKEN_REVOKED	  ? FE_JREQ_TOKEN_REVOKE
	       : m->hdr.type == IPC_JOURNAL_SESSION_REPLY ? FE_JREQ_SESSION
	       : m->hdr.type == IPC_JOURNAL_AGENT_REPLY	  ? FE_JREQ_AGENT
	       : m->hdr.type == IPC_SERVICE_REPLY	  ? FE_JREQ_SERVICE
							  : FE_JREQ_STORE;
	/* Journald answers in order: the match is nearly always the head. */
	TAILQ_FOREACH(jreq, &ctx->jreqs, entry)
	if (jreq->request_id == m->hdr.request_id)
		break;
	if (jreq == NULL || jreq->kind != kind) {
		log_warn("journald sent an unexpected %s (request %u), "
			 "dropping its channel",
		    ipc_type_name(m->hdr.type), m->hdr.request_id);
		journald_drop(ctx);
		return;
	}
	/* A streamed answer (ServiceReply.more) keeps its request until the
	 * last reply; one whose call ended is dropped meanwhile. */
	if (kind == FE_JREQ_SERVICE &&
	    ((Palyra__Ipc__ServiceReply *)m->msg)->more) {
		if (jreq->owner != NULL)
			fe_services_reply(
			    jreq->owner, (Palyra__Ipc__ServiceReply *)m->msg);
		return;
	}
	TAILQ_REMOVE(&ctx->jreqs, jreq, entry);
	if (jreq->owner != NULL) {
		if (kind == FE_JREQ_LOOKUP)
			fe_rpc_token_info(
			    jreq->owner, (Palyra__Ipc__TokenInfo *)m->msg);
		else if (kind == FE_JREQ_RUN_READ &&
			 ((struct fe_call *)jreq->owner)->run_op != NULL)
			fe_runs_page(
			    jreq->owner, (Palyra__Ipc__JournalRunPage *)m->msg);
		else if (kind == FE_JREQ_RUN_READ)
			fe_reattach_page(
			    jreq->owner, (Palyra__Ipc__JournalRunPage *)m->msg);
		else if (kind == FE_JREQ_TOKEN_LIST)
			fe_tokens_listed(
			    jreq->owner, (Palyra__Ipc__TokenList *)m->msg);
		else if (kind == FE_JREQ_TOKEN_REVOKE)
			fe_tokens_revoked(
			    jreq->owner, (Palyra__Ipc__TokenRevoked *)m->msg);
		else if (kind == FE_JREQ_SESSION)
			fe_sessions_reply(jreq->owner,
			    (Palyra__Ipc__JournalSessionReply *)m->msg);
		else if (kind == FE_JREQ_AGENT)
			fe_agents_reply(jreq->owner,
			    (Palyra__Ipc__JournalAgentReply *)m->msg);
		else if (kind == FE_JREQ_SERVICE)
			fe_services_reply(jreq->owner,
			    (Palyra__Ipc__ServiceReply *)m->msg);
		else
			fe_http_token_stored(
			    jreq->owner, (Palyra__Ipc__TokenStored *)m->msg);
	}
	free(jreq);
}

static void
journald_close(struct ipc_chan *chan, int error, void *arg)
{
	struct fe_ctx *ctx = arg;

	if (chan != ctx->journald)
		return;
	if (error == 0)
		log_info("journald channel closed");
	else
		log_warn("journald channel failed: %s", strerror(-error));
	journald_drop(ctx);
}

int
fe_journal_request(struct fe_ctx *ctx, enum ipc_type type,
    const ProtobufCMessage *msg, enum fe_jreq_kind kind, void *owner,
    struct fe_jreq **out)
{
	struct fe_jreq *jreq;
	int rc;

	if (ctx->journald == NULL)
		return -ENOTCONN;
	jreq = calloc(1, sizeof(*jreq));
	if (jreq == NULL)
		return -ENOMEM;
	if (ctx->next_journal_id == 0)
		ctx->next_journal_id = 1;
	jreq->request_id = ctx->next_journal_id++;
	jreq->kind = kind;
	jreq->owner = owner;
	rc = ipc_chan_send(ctx->journald, type, jreq->request_id, msg, NULL, 0);
	if (rc < 0) {
		free(jreq);
		return rc == -EPIPE ? -ENOTCONN : rc;
	}
	TAILQ_INSERT_TAIL(&ctx->jreqs, jreq, entry);
	*out = jreq;
	return 0;
}

void
fe_jreq_abandon(struct fe_jreq *jreq)
{
	/* The reply still has to be matched, so the entry stays queued. */
	if (jreq != NULL)
		jreq->owner = NULL;
}

struct fe_worker *
fe_worker_find(struct fe_ctx *ctx, const char *tenant, uint32_t index)
{
	struct fe_worker *w;

	TAILQ_FOREACH(w, &ctx->workers, entry)
	if (w->index == index && strcmp(w->tenant, tenant) == 0)
		return w;
	return NULL;
}

static struct fe_worker *
worker_by_chan(struct fe_ctx *ctx, const struct ipc_chan *chan)
{
	struct fe_worker *w;

	TAILQ_FOREACH(w, &ctx->workers, entry)
	if (w->chan == chan)
		return w;
	return NULL;
}

/*
 * Lets the worker's current channel go with its calls. With grace (the
 * worker exited, retired or was replaced), a call whose run already showed
 * its first event waits for journald to notice the run's INTERRUPTED
 * status, which journald commits only after it saw the same channel go; a
 * call with no event yet is routed again, once (a worker that retired just
 * as the call was routed to it must not fail the client); every other call
 * ends now. The tenant's other workers and their calls are not touched.
 */
static void
worker_reset(struct fe_worker *w, int grace)
{
	struct fe_ctx *ctx = w->ctx;
	struct fe_call *call;

	/* Gone first, so that a rerouted call cannot land here again. */
	fe_chan_free_later(w->ctx, w->chan);
	w->chan = NULL;
	fe_reattach_worker_lost(w);
	fe_runs_worker_lost(w);
	while ((call = TAILQ_FIRST(&w->calls)) != NULL) {
		fe_worker_detach(call);
		if (grace && call->run_id[0] == '\0' &&
		    fe_pool_reroute(call) == 0)
			continue;
		if (!grace || call->run_id[0] == '\0' ||
		    fe_call_grace_timer_start(call) < 0) {
			fe_rpc_worker_gone(call);
			continue;
		}
		call->orphaned = 1;
		TAILQ_INSERT_TAIL(&ctx->orphans, call, worker_entry);
	}
}

static void
worker_drop(struct fe_worker *w, int grace)
{
	worker_reset(w, grace);
	TAILQ_REMOVE(&w->ctx->workers, w, entry);
	free(w);
}

static void
worker_msg(struct ipc_chan *chan, struct ipc_msg *m, void *arg)
{
	struct fe_ctx *ctx = arg;
	struct fe_worker *w;
	struct fe_call *call;
	Palyra__Ipc__RunEventMsg *ev;

	if ((w = worker_by_chan(ctx, chan)) == NULL)
		return;
	if (m->hdr.type == IPC_RUN_ATTACHED) {
		if (fe_reattach_attached(w, m->hdr.request_id,
			(Palyra__Ipc__RunAttached *)m->msg) < 0) {
			log_warn("worker[%s#%u] answered an attach never "
				 "asked, dropping its channel",
			    w->tenant, w->index);
			worker_drop(w, 0);
		}
		return;
	}
	if (m->hdr.type == IPC_RUN_NOTED) {
		if (fe_runs_noted(w, m->hdr.request_id,
			(Palyra__Ipc__RunNoted *)m->msg) < 0) {
			log_warn("worker[%s#%u] answered a note never "
				 "asked, dropping its channel",
			    w->tenant, w->index);
			worker_drop(w, 0);
		}
		return;
	}
	if (m->hdr.type == IPC_RUN_ABORTED) {
		if (fe_runs_aborted(w, m->hdr.request_id,
			(Palyra__Ipc__RunAborted *)m->msg) < 0) {
			log_warn("worker[%s#%u] answered an abort never "
				 "asked, dropping its channel",
			    w->tenant, w->index);
			worker_drop(w, 0);
		}
		return;
	}
	if (m->hdr.type == IPC_RUN_EVENT) {
		ev = (Palyra__Ipc__RunEventMsg *)m->msg;
		if (ev->event == NULL) {
			log_warn("worker[%s#%u] sent a RUN_EVENT without an "
				 "event, dropping its channel",
			    w->tenant, w->index);
			worker_drop(w, 0);
			return;
		}
	}
	TAILQ_FOREACH(call, &w->calls, worker_entry)
	if (call->call_id == m->hdr.request_id)
		break;
	if (call == NULL)
		return; /* the run outlives its client */
	/* A service call (services.c) takes its reply and nothing else. */
	if ((m->hdr.type == IPC_SERVICE_REPLY) !=
	    fe_services_worker_method(call->method)) {
		log_warn("worker[%s#%u] sent a %s for call %u, dropping its "
			 "channel",
		    w->tenant, w->index, ipc_type_name(m->hdr.type),
		    m->hdr.request_id);
		worker_drop(w, 0);
		return;
	}
	if (m->hdr.type == IPC_SERVICE_REPLY)
		fe_services_reply(call, (Palyra__Ipc__ServiceReply *)m->msg);
	else if (m->hdr.type == IPC_RUN_EVENT)
		fe_rpc_run_event(call, (Palyra__Ipc__RunEventMsg *)m->msg);
	else
		fe_rpc_run_error(call, (Palyra__Ipc__RunErrorMsg *)m->msg);
}

static void
worker_close(struct ipc_chan *chan, int error, void *arg)
{
	struct fe_ctx *ctx = arg;
	struct fe_worker *w;

	if ((w = worker_by_chan(ctx, chan)) == NULL)
		return;
	if (error == 0)
		log_info("worker[%s#%u] channel closed", w->tenant, w->index);
	else
		log_warn("worker[%s#%u] channel failed: %s", w->tenant,
		    w->index, strerror(-error));
	/* A worker that broke the protocol is not waited for. */
	worker_drop(w, error == 0 || error == -EPIPE || error == -ECONNRESET);
}

static int
attach_journald(struct fe_ctx *ctx, int fd)
{
	struct ipc_chan *chan;

	chan = ipc_chan_new(ctx->base, fd, "journald", FE_JOURNALD_ALLOWED,
	    journald_msg, journald_close, ctx);
	if (chan == NULL)
		return -ENOMEM;
	journald_drop(ctx);
	ctx->journald = chan;
	log_info("journald attached");
	fe_health_changed(ctx);
	return 0;
}

static int
attach_worker(struct fe_ctx *ctx, const char *tenant, uint32_t index, int fd)
{
	struct fe_worker *w;
	struct ipc_chan *chan;
	char peer[NAME_MAX_LEN + 24];

	if (!cfg_name_valid(tenant) || index >= CFG_MAX_WORKERS)
		return -EPROTO;
	snprintf(peer, sizeof(peer), "worker[%s#%u]", tenant, index);
	chan = ipc_chan_new(ctx->base, fd, peer, FE_WORKER_ALLOWED, worker_msg,
	    worker_close, ctx);
	if (chan == NULL)
		return -ENOMEM;
	/* Only the channel of the same tenant and index is replaced. */
	if ((w = fe_worker_find(ctx, tenant, index)) != NULL) {
		log_info("%s replaced", peer);
		worker_reset(w, 1);
	} else {
		w = calloc(1, sizeof(*w));
		if (w == NULL) {
			ipc_chan_free(chan);
			return -ENOMEM;
		}
		w->ctx = ctx;
		snprintf(w->tenant, sizeof(w->tenant), "%s", tenant);
		w->index = index;
		TAILQ_INIT(&w->calls);
		TAILQ_INIT(&w->probes);
		TAILQ_INIT(&w->aborts);
		w->next_call_id = 1;
		TAILQ_INSERT_TAIL(&ctx->workers, w, entry);
		log_info("%s attached", peer);
	}
	w->chan = chan;
	fe_pool_attached(ctx, tenant);
	return 0;
}

int
fe_peer_attach(struct fe_ctx *ctx, const Palyra__Ipc__AttachPeer *ap, int fd)
{
	switch (ap->kind) {
	case PALYRA__IPC__PEER_KIND__PEER_JOURNALD:
		return attach_journald(ctx, fd);
	case PALYRA__IPC__PEER_KIND__PEER_WORKER:
		return attach_worker(ctx, ap->tenant, ap->index, fd);
	default:
		return -EPROTO;
	}
}

void
fe_peer_free_all(struct fe_ctx *ctx)
{
	struct fe_worker *w;

	journald_drop(ctx);
	while ((w = TAILQ_FIRST(&ctx->workers)) != NULL)
		worker_drop(w, 0);
	fe_pool_free_all(ctx);
}

int
fe_worker_start(struct fe_worker *w, struct fe_call *call,
    const Palyra__Ipc__RunStartRequest *req)
{
	uint32_t id;
	int rc;

	if (w->chan == NULL)
		return -ENOTCONN;
	id = w->next_call_id++;
	if (w->next_call_id == 0)
		w->next_call_id = 1;
	rc = ipc_chan_send(w->chan, IPC_RUN_START, id, &req->base, NULL, 0);
	if (rc < 0)
		return rc == -EPIPE ? -ENOTCONN : rc;
	call->call_id = id;
	call->worker = w;
	TAILQ_INSERT_TAIL(&w->calls, call, worker_entry);
	w->ncalls++;
	w->ctx->metrics.runs_started++;
	return 0;
}

int
fe_worker_service(struct fe_worker *w, struct fe_call *call,
    const Palyra__Ipc__ServiceCall *req)
{
	uint32_t id;
	int rc;

	if (w->chan == NULL)
		return -ENOTCONN;
	id = w->next_call_id++;
	if (w->next_call_id == 0)
		w->next_call_id = 1;
	rc = ipc_chan_send(w->chan, IPC_SERVICE_CALL, id, &req->base, NULL, 0);
	if (rc < 0)
		return rc == -EPIPE ? -ENOTCONN : rc;
	call->call_id = id;
	call->worker = w;
	TAILQ_INSERT_TAIL(&w->calls, call, worker_entry);
	w->ncalls++;
	return 0;
}

int
fe_worker_cancel(struct fe_call *call, const char *reason, int disconnected)
{
	Palyra__Ipc__RunCancelRequest req =
	    PALYRA__IPC__RUN_CANCEL_REQUEST__INIT;
	int rc;

	if (call->worker == NULL || call->worker->chan == NULL)
		return -ENOTCONN;
	/* A service call has no run to cancel: its reply is dropped. */
	if (fe_services_worker_method(call->method))
		return 0;
	req.reason = (char *)reason;
	req.disconnected = disconnected != 0;
	rc = ipc_chan_send(call->worker->chan, IPC_RUN_CANCEL, call->call_id,
	    &req.base, NULL, 0);
	if (rc < 0)
		log_warn("worker[%s#%u]: cannot cancel call %u: %s",
		    call->worker->tenant, call->worker->index, call->call_id,
		    strerror(-rc));
	return rc;
}

int
fe_worker_flow(struct fe_call *call, int paused)
{
	Palyra__Ipc__RunFlow req = PALYRA__IPC__RUN_FLOW__INIT;

	if (call->worker == NULL || call->worker->chan == NULL ||
	    fe_services_worker_method(call->method))
		return -ENOTCONN;
	req.call_id = call->call_id;
	req.paused = paused != 0;
	return ipc_chan_send(call->worker->chan, IPC_RUN_FLOW, call->call_id,
	    &req.base, NULL, 0);
}

void
fe_worker_detach(struct fe_call *call)
{
	if (call->orphaned) {
		TAILQ_REMOVE(&call->conn->ctx->orphans, call, worker_entry);
		call->orphaned = 0;
		if (call->grace_timer != NULL)
			evtimer_del(call->grace_timer);
	}
	fe_pool_unpark(call);
	if (call->worker == NULL)
		return;
	TAILQ_REMOVE(&call->worker->calls, call, worker_entry);
	call->worker->ncalls--;
	call->worker = NULL;
}

/* Relays a notice to every call of tenant on calls that follows run_id and
 * has not seen it: a run may have several (reattached) calls. */
static void
notice_calls(struct fe_call_list *calls, const char *tenant,
    const Palyra__V1__RunEvent *ev, Palyra__Ipc__RunEventMsg *msg)
{
	struct fe_call *call, *next;

	for (call = TAILQ_FIRST(calls); call != NULL; call = next) {
		next = TAILQ_NEXT(call, worker_entry);
		if (strcmp(call->run_id, ev->run_id) != 0 ||
		    strcmp(call->tenant, tenant) != 0 ||
		    ev->seq <= call->last_seq)
			continue;
		log_debug("call %d: run %s %s by journald", call->stream_id,
		    ev->run_id,
		    ev->status->status ==
			    PALYRA__V1__RUN_STATUS__RUN_STATUS_INTERRUPTED
			? "interrupted"
			: "ended");
		/* Committed events its dead worker never forwarded come
		 * first, from the journal (no gap, DESIGN section 6); a
		 * call still replaying holds the notice and reads its gap
		 * itself (reattach.c). */
		if (ev->seq > call->last_seq + 1 &&
		    (call->state == FE_CALL_RUNNING ||
			call->state == FE_CALL_HALF_CLOSED))
			fe_reattach_catch_up(call);
		else
			fe_rpc_run_event(call, msg);
	}
}

int
fe_peer_run_notice(struct fe_ctx *ctx, const Palyra__Ipc__RunNotice *notice)
{
	const Palyra__V1__RunEvent *ev = notice->event;
	Palyra__Ipc__RunEventMsg msg = PALYRA__IPC__RUN_EVENT_MSG__INIT;
	struct fe_worker *w;

	if (ev == NULL || !cfg_name_valid(notice->tenant) ||
	    ev->run_id[0] == '\0' ||
	    strnlen(ev->run_id, FE_RUN_ID_MAX + 1) > FE_RUN_ID_MAX ||
	    ev->event_case != PALYRA__V1__RUN_EVENT__EVENT_STATUS ||
	    ev->status->status < PALYRA__V1__RUN_STATUS__RUN_STATUS_COMPLETED ||
	    ev->status->status > PALYRA__V1__RUN_STATUS__RUN_STATUS_INTERRUPTED)
		return -EPROTO;
	/*
	 * The call must belong to the notice's tenant (journald knows it from
	 * the supervisor), so a run id alone never reaches another tenant's
	 * client. Usually the call already waits here; the notice may also
	 * overtake the worker channel's EOF.
	 */
	msg.event = (Palyra__V1__RunEvent *)ev;
	msg.last = 1;
	notice_calls(&ctx->orphans, notice->tenant, ev, &msg);
	TAILQ_FOREACH(w, &ctx->workers, entry)
	if (strcmp(w->tenant, notice->tenant) == 0)
		notice_calls(&w->calls, notice->tenant, ev, &msg);
	return 0;
}
