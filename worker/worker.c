/*
 * worker.c: palyra-worker's entry point, context and channels.
 *
 * Started by palyrad as `palyra-worker -t TENANT -w DIR [-i IDLE_MS] ...`
 * with the supervisor's channel on PROC_FD_PARENT (common/proc.h). The supervisor
 * sends the tenant's configuration (IPC_WORKER_CONFIG) and the channels to
 * journald and the front (IPC_ATTACH_PEER, each replacing an older one). The
 * worker answers IPC_READY once configured, then serves runs for the front.
 *
 * Trust: the supervisor's word is law, and a malformed message from it is a
 * broken invariant (exit PROC_EXIT_PEER). The front and journald are peers:
 * a malformed or unpermitted message from one costs that channel, never the
 * worker. Identity comes from the channel: the tenant is the one the
 * supervisor started us for, whatever any payload says.
 *
 * Touches: the three channels, signals; runs through run.c and append.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <sodium.h>

#include "budget.h"
#include "config.h"
#include "embed.h"
#include "http.h"
#include "ipc.h"
#include "log.h"
#include "memory.h"
#include "proc.h"
#include "sandbox.h"
#include "tools.h"
#include "worker.h"

#define ALLOWED_SUPERVISOR \
	(IPC_TYPE_BIT(IPC_WORKER_CONFIG) | IPC_TYPE_BIT(IPC_ATTACH_PEER))
#define ALLOWED_FRONT \
	(IPC_TYPE_BIT(IPC_RUN_START) | IPC_TYPE_BIT(IPC_RUN_CANCEL) | \
	    IPC_TYPE_BIT(IPC_RUN_ATTACH) | IPC_TYPE_BIT(IPC_RUN_ABORT) |	\
	    IPC_TYPE_BIT(IPC_RUN_NOTE) | IPC_TYPE_BIT(IPC_RUN_FLOW) |	\
	    IPC_TYPE_BIT(IPC_RUN_INPUT) | IPC_TYPE_BIT(IPC_RUN_DECISION) | \
	    IPC_TYPE_BIT(IPC_RUN_TOOL_RESULT) | IPC_TYPE_BIT(IPC_SERVICE_CALL))
#define ALLOWED_JOURNALD \
	(IPC_TYPE_BIT(IPC_JOURNAL_ACK) | IPC_TYPE_BIT(IPC_RUN_PREPARED) | \
	    IPC_TYPE_BIT(IPC_BUDGET_RESERVED) | \
	    IPC_TYPE_BIT(IPC_APPROVAL_CREATED) | \
	    IPC_TYPE_BIT(IPC_APPROVAL_DECISION) | IPC_TYPE_BIT(IPC_RUN_RECOVERED) | \
	    IPC_TYPE_BIT(IPC_MEMORY_STORED) | IPC_TYPE_BIT(IPC_MEMORY_HITS) |	\
	    IPC_TYPE_BIT(IPC_VAULT_STORED) | IPC_TYPE_BIT(IPC_VAULT_ITEMS) |	\
	    IPC_TYPE_BIT(IPC_VAULT_CHANGED) | IPC_TYPE_BIT(IPC_CRON_FIRE))

int64_t
wrk_now_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
usage(void)
{
	fprintf(stderr, "usage: palyra-worker -t tenant -w scratch_dir "
	    "[-P ports] [-H host:port,...] [-i idle_ms] [-U uid:gid] [-dv]\n");
	exit(PROC_EXIT_USAGE);
}

static void
stop_loop(struct wrk_ctx *ctx, int code)
{
	ctx->exit_code = code;
	event_base_loopbreak(ctx->base);
}

/*
 * Lets go of a channel the caller already detached from the context. This
 * may be the channel whose callback is running: the channel layer then
 * defers the free until the callback returns.
 */
static void
chan_release(struct wrk_ctx *ctx, struct ipc_chan *chan)
{
	ipc_chan_free(chan);
}

void
wrk_front_error(struct wrk_ctx *ctx, uint32_t call_id, uint32_t grpc_status,
    const char *message)
{
	Palyra__Ipc__RunErrorMsg msg;
	int			 r;

	log_debug("front call %u: error %u: %s", call_id, grpc_status,
	    message);
	if (ctx->front == NULL)
		return;
	palyra__ipc__run_error_msg__init(&msg);
	msg.grpc_status = grpc_status;
	msg.message = (char *)message;
	r = ipc_chan_send(ctx->front, IPC_RUN_ERROR, call_id, &msg.base,
	    NULL, 0);
	if (r < 0)
		log_warn("front call %u: cannot send error: %s", call_id,
		    strerror(-r));
}

/* Ends the front's call of run with a gRPC error; the run is not touched. */
void
wrk_call_error(struct wrk_run *run, uint32_t grpc_status, const char *message)
{
	size_t	 i;

	/* Calls following the run after a reattach end the same way. */
	for (i = 0; i < run->nfollowers; i++)
		wrk_front_error(run->ctx, run->followers[i], grpc_status,
		    message);
	run->nfollowers = 0;
	if (!run->has_call)
		return;
	run->has_call = 0;
	wrk_front_error(run->ctx, run->call_id, grpc_status, message);
}

/* Journald. */

void
wrk_journald_lost(struct wrk_ctx *ctx, const char *why)
{
	struct ipc_chan	*chan = ctx->journald;

	if (chan == NULL)
		return;
	log_warn("journald channel lost: %s", why);
	ctx->journald = NULL;
	ctx->journald_paused = 0;
	wrk_append_drop_all(ctx);
	wrk_run_abandon_all(ctx);
	wrk_budget_forget(ctx);
	wrk_memory_journald_lost(ctx);
	wrk_vault_journald_lost(ctx);
	/* The runs it held were abandoned: the next journald hands out
	 * those that wait for an approval again. */
	ctx->recover_sent = 0;
	ctx->recover_id = 0;
	chan_release(ctx, chan);
}

static void
journald_msg(struct ipc_chan *chan, struct ipc_msg *m, void *arg)
{
	struct wrk_ctx	*ctx = arg;
	int		 r = 0;

	if (chan != ctx->journald)
		return;
	if (m->hdr.type == IPC_RUN_PREPARED) {
		(void)wrk_prepare_answer(ctx, m->hdr.request_id,
		    (const Palyra__Ipc__RunPrepared *)m->msg);
		return;
	}
	if (m->hdr.type == IPC_BUDGET_RESERVED) {
		if (wrk_budget_on_reserved(ctx, m->hdr.request_id,
		    (const Palyra__Ipc__BudgetReserved *)m->msg) < 0)
			wrk_journald_lost(ctx, "malformed budget answer");
		return;
	}
	switch (m->hdr.type) {
	case IPC_APPROVAL_CREATED:
		r = wrk_tool_on_created(ctx, m->hdr.request_id,
		    (const Palyra__Ipc__ApprovalCreated *)m->msg);
		break;
	case IPC_APPROVAL_DECISION:
		r = wrk_tool_on_approval(ctx, m->hdr.request_id,
		    (const Palyra__Ipc__ApprovalDecisionMsg *)m->msg);
		break;
	case IPC_RUN_RECOVERED:
		r = wrk_recover_answer(ctx, m->hdr.request_id,
		    (const Palyra__Ipc__RunRecovered *)m->msg);
		break;
	case IPC_MEMORY_STORED:
		r = wrk_memory_on_stored(ctx, m->hdr.request_id,
		    (const Palyra__Ipc__MemoryStored *)m->msg);
		break;
	case IPC_MEMORY_HITS:
		r = wrk_memory_on_hits(ctx, m->hdr.request_id,
		    (const Palyra__Ipc__MemoryHits *)m->msg);
		break;
	case IPC_VAULT_STORED:
		r = wrk_vault_on_stored(ctx, m->hdr.request_id,
		    (const Palyra__Ipc__VaultStored *)m->msg);
		break;
	case IPC_VAULT_ITEMS:
		r = wrk_vault_on_items(ctx, m->hdr.request_id,
		    (const Palyra__Ipc__VaultItems *)m->msg);
		break;
	case IPC_VAULT_CHANGED:
		r = wrk_vault_on_changed(ctx,
		    (const Palyra__Ipc__VaultChanged *)m->msg);
		break;
	case IPC_CRON_FIRE:
		r = wrk_cron_fire(ctx, m->hdr.request_id,
		    (const Palyra__Ipc__CronFireRequest *)m->msg);
		break;
	case IPC_JOURNAL_ACK:
		break;
	default:
		return;
	}
	if (r < 0) {
		wrk_journald_lost(ctx, "malformed message");
		return;
	}
	if (m->hdr.type != IPC_JOURNAL_ACK)
		return;
	if (wrk_append_ack(ctx, m->hdr.request_id,
	    (const Palyra__Ipc__JournalAck *)m->msg) < 0)
		wrk_journald_lost(ctx, "acknowledgement out of order");
}

static void
journald_close(struct ipc_chan *chan, int error, void *arg)
{
	struct wrk_ctx	*ctx = arg;

	if (chan != ctx->journald)
		return;
	wrk_journald_lost(ctx, error == 0 ? "closed" : strerror(-error));
}

/* Front. */

static void
front_lost(struct wrk_ctx *ctx, const char *why)
{
	struct ipc_chan	*chan = ctx->front;

	if (chan == NULL)
		return;
	log_warn("front channel lost: %s", why);
	ctx->front = NULL;
	wrk_run_front_lost(ctx);
	if (ctx->journald_paused && ctx->journald != NULL) {
		ipc_chan_resume(ctx->journald);
		ctx->journald_paused = 0;
	}
	chan_release(ctx, chan);
}

static void
front_msg(struct ipc_chan *chan, struct ipc_msg *m, void *arg)
{
	struct wrk_ctx	*ctx = arg;
	int		 r = 0;

	if (chan != ctx->front)
		return;
	switch (m->hdr.type) {
	case IPC_RUN_START:
		r = wrk_run_start(ctx, m->hdr.request_id,
		    (const Palyra__Ipc__RunStartRequest *)m->msg);
		break;
	case IPC_RUN_CANCEL:
		r = wrk_run_cancel(ctx, m->hdr.request_id,
		    (const Palyra__Ipc__RunCancelRequest *)m->msg);
		break;
	case IPC_RUN_ATTACH:
		r = wrk_run_attach(ctx, m->hdr.request_id,
		    (const Palyra__Ipc__RunAttachRequest *)m->msg);
		break;
	case IPC_RUN_ABORT:
		r = wrk_run_abort(ctx, m->hdr.request_id,
		    (const Palyra__Ipc__RunAbortRequest *)m->msg);
		break;
	case IPC_RUN_NOTE:
		r = wrk_run_note(ctx, m->hdr.request_id,
		    (const Palyra__Ipc__RunNoteRequest *)m->msg);
		break;
	case IPC_RUN_FLOW:
		r = wrk_run_flow(ctx, m->hdr.request_id,
		    (const Palyra__Ipc__RunFlow *)m->msg);
		break;
	case IPC_RUN_INPUT:
		r = wrk_run_input(ctx, m->hdr.request_id,
		    (const Palyra__Ipc__RunInput *)m->msg);
		break;
	case IPC_RUN_DECISION:
		r = wrk_tool_on_decision(ctx, m->hdr.request_id,
		    (const Palyra__Ipc__RunDecision *)m->msg);
		break;
	case IPC_RUN_TOOL_RESULT:
		r = wrk_tool_on_client_result(ctx, m->hdr.request_id,
		    (const Palyra__Ipc__RunToolResult *)m->msg);
		break;
	case IPC_SERVICE_CALL:
		r = wrk_service_call(ctx, m->hdr.request_id,
		    (const Palyra__Ipc__ServiceCall *)m->msg);
		break;
	default:
		r = -EPERM;
		break;
	}
	if (r < 0)
		front_lost(ctx, "malformed request");
}

static void
front_close(struct ipc_chan *chan, int error, void *arg)
{
	struct wrk_ctx	*ctx = arg;

	if (chan != ctx->front)
		return;
	front_lost(ctx, error == 0 ? "closed" : strerror(-error));
}

/* The front drained its queue: read journald acks again. */
static void
front_drained(struct ipc_chan *chan, void *arg)
{
	struct wrk_ctx	*ctx = arg;

	if (chan != ctx->front || !ctx->journald_paused)
		return;
	ctx->journald_paused = 0;
	if (ctx->journald != NULL)
		ipc_chan_resume(ctx->journald);
}

/* Supervisor. */

static int
attach_peer(struct wrk_ctx *ctx, const Palyra__Ipc__AttachPeer *ap, int fd)
{
	struct ipc_chan	*chan;

	switch (ap->kind) {
	case PALYRA__IPC__PEER_KIND__PEER_JOURNALD:
		wrk_journald_lost(ctx, "replaced");
		chan = ipc_chan_new(ctx->base, fd, "journald",
		    ALLOWED_JOURNALD, journald_msg, journald_close, ctx);
		if (chan == NULL)
			return -ENOMEM;
		ctx->journald = chan;
		log_info("journald attached (generation %u)", ap->generation);
		(void)wrk_recover_send(ctx);
		wrk_vault_start(ctx);
		return 0;
	case PALYRA__IPC__PEER_KIND__PEER_FRONT:
		front_lost(ctx, "replaced");
		chan = ipc_chan_new(ctx->base, fd, "front", ALLOWED_FRONT,
		    front_msg, front_close, ctx);
		if (chan == NULL)
			return -ENOMEM;
		ipc_chan_set_drain_cb(chan, front_drained);
		ctx->front = chan;
		log_info("front attached (generation %u)", ap->generation);
		return 0;
	default:
		log_error("supervisor: cannot attach peer kind %d", ap->kind);
		return -EPROTO;
	}
}

static int
configure(struct wrk_ctx *ctx, Palyra__Ipc__WorkerConfig *config)
{
	Palyra__Ipc__Ready	 ready;
	size_t			 i;
	int			 r;

	if (strcmp(config->tenant, ctx->tenant) != 0) {
		log_error("supervisor: configuration for tenant \"%.64s\"",
		    config->tenant);
		return -EPROTO;
	}
	for (i = 0; i < config->n_agents; i++)
		if (!cfg_name_valid(config->agents[i]->name)) {
			log_error("supervisor: bad agent name");
			return -EPROTO;
		}
	if (ctx->config != NULL)
		protobuf_c_message_free_unpacked(&ctx->config->base, NULL);
	ctx->config = config;
	log_info("configured: %zu agents, %zu providers", config->n_agents,
	    config->n_providers);
	/* Runs waiting for an approval whose worker died (recover.c). */
	(void)wrk_recover_send(ctx);
	/* The vault's key, values and vault:NAME credentials (vault.c). */
	wrk_vault_start(ctx);
	if (ctx->ready_sent)
		return 0;
	palyra__ipc__ready__init(&ready);
	ready.pid = (uint32_t)getpid();
	ready.n_sandbox_applied = ctx->sandbox->napplied;
	ready.sandbox_applied = ctx->sandbox->applied_list;
	ready.n_sandbox_skipped = ctx->sandbox->nskipped;
	ready.sandbox_skipped = ctx->sandbox->skipped_list;
	if ((r = ipc_chan_send(ctx->supervisor, IPC_READY, 0, &ready.base,
	    NULL, 0)) < 0)
		return r;
	ctx->ready_sent = 1;
	return 0;
}

static void
supervisor_msg(struct ipc_chan *chan, struct ipc_msg *m, void *arg)
{
	struct wrk_ctx	*ctx = arg;
	int		 r = -EPROTO;

	switch (m->hdr.type) {
	case IPC_WORKER_CONFIG:
		r = configure(ctx, (Palyra__Ipc__WorkerConfig *)m->msg);
		if (r == 0)
			m->msg = NULL;	/* kept as ctx->config */
		break;
	case IPC_ATTACH_PEER:
		if (m->nfds != 1)
			break;
		r = attach_peer(ctx, (const Palyra__Ipc__AttachPeer *)m->msg,
		    m->fds[0]);
		if (r == 0)
			m->fds[0] = -1;	/* the channel owns it */
		break;
	}
	if (r < 0) {
		log_error("supervisor: %s refused: %s",
		    ipc_type_name(m->hdr.type), strerror(-r));
		stop_loop(ctx, PROC_EXIT_PEER);
	}
}

static void
supervisor_close(struct ipc_chan *chan, int error, void *arg)
{
	struct wrk_ctx	*ctx = arg;

	if (error == 0) {
		log_info("supervisor closed the channel, exiting");
		stop_loop(ctx, PROC_EXIT_OK);
		return;
	}
	log_error("supervisor channel: %s", strerror(-error));
	stop_loop(ctx, PROC_EXIT_PEER);
}

/*
 * The drain ends once every append is acknowledged (and so forwarded) and
 * the front took every forwarded event, or at the deadline.
 */
static void
drain_cb(evutil_socket_t fd, short what, void *arg)
{
	struct wrk_ctx	*ctx = arg;
	struct timeval	 tv = { 0, 10 * 1000 };

	if (ctx->fifo_len == 0 && ctx->nparked == 0 &&
	    (ctx->front == NULL || ipc_chan_dead(ctx->front) ||
	    ipc_chan_queued(ctx->front) == 0)) {
		log_info("every run ended, exiting");
		stop_loop(ctx, PROC_EXIT_OK);
		return;
	}
	if (wrk_now_ms() >= ctx->drain_deadline_ms) {
		log_warn("runs' last events still in flight after %d ms, "
		    "exiting", WRK_STOP_DRAIN_MS);
		stop_loop(ctx, PROC_EXIT_OK);
		return;
	}
	evtimer_add(ctx->drain_ev, &tv);
}

/*
 * SIGTERM drains: no new runs, every live run ends CANCELLED through the
 * normal transition (journaled, then forwarded to its call), then exit.
 */
static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct wrk_ctx	*ctx = arg;

	if (ctx->draining)
		return;
	log_info("%s, cancelling %zu run(s) and exiting",
	    sig == SIGTERM ? "SIGTERM" : "SIGINT", ctx->nlive);
	ctx->draining = 1;
	ctx->drain_deadline_ms = wrk_now_ms() + WRK_STOP_DRAIN_MS;
	wrk_run_cancel_all(ctx, "palyrad is stopping");
	drain_cb(-1, 0, ctx);
}

/*
 * Retirement: the supervisor starts a worker when one is wanted, and the
 * worker leaves by itself once nothing happened for its idle-timeout. The
 * check runs a few times per timeout; a worker that exits here has nothing
 * in flight, so no run and no event is lost. A call the front routed to it
 * meanwhile finds the channel closed and is routed again.
 */
static void
idle_cb(evutil_socket_t fd, short what, void *arg)
{
	struct wrk_ctx	*ctx = arg;
	uint64_t	 step = ctx->idle_timeout_ms / 8;
	struct timeval	 tv;
	int64_t		 now = wrk_now_ms();

	if (ctx->draining)
		return;
	if (ctx->nlive > 0 || ctx->fifo_len > 0 || ctx->nparked > 0 ||
	    wrk_memory_pending(ctx) > 0 || (ctx->front != NULL && !ipc_chan_dead(ctx->front) &&
	    ipc_chan_queued(ctx->front) > 0) || now < ctx->busy_last_ms)
		ctx->busy_last_ms = now;
	else if ((uint64_t)(now - ctx->busy_last_ms) >= ctx->idle_timeout_ms) {
		log_info("idle for %llu ms, retiring",
		    (unsigned long long)ctx->idle_timeout_ms);
		stop_loop(ctx, PROC_EXIT_IDLE);
		return;
	}
	if (step < 10)
		step = 10;
	if (step > 1000)
		step = 1000;
	tv.tv_sec = (time_t)(step / 1000);
	tv.tv_usec = (suseconds_t)(step % 1000) * 1000;
	evtimer_add(ctx->idle_ev, &tv);
}

static void
ctx_init(struct wrk_ctx *ctx, const char *tenant)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->tenant = tenant;
	TAILQ_INIT(&ctx->runs);
	if ((ctx->base = event_base_new()) == NULL)
		fatalx("event_base_new failed");
	if (wrk_append_init(ctx) < 0)
		fatalx("out of memory");
	ctx->sigterm_ev = evsignal_new(ctx->base, SIGTERM, signal_cb, ctx);
	ctx->sigint_ev = evsignal_new(ctx->base, SIGINT, signal_cb, ctx);
	ctx->drain_ev = evtimer_new(ctx->base, drain_cb, ctx);
	ctx->idle_ev = evtimer_new(ctx->base, idle_cb, ctx);
	if (ctx->sigterm_ev == NULL || ctx->sigint_ev == NULL ||
	    ctx->drain_ev == NULL || ctx->idle_ev == NULL ||
	    evsignal_add(ctx->sigterm_ev, NULL) == -1 ||
	    evsignal_add(ctx->sigint_ev, NULL) == -1)
		fatalx("cannot install signal handlers");
	ctx->supervisor = ipc_chan_new(ctx->base, PROC_FD_PARENT, "supervisor",
	    ALLOWED_SUPERVISOR, supervisor_msg, supervisor_close, ctx);
	if (ctx->supervisor == NULL)
		fatalx("cannot set up the supervisor channel");
}

static void
ctx_fini(struct wrk_ctx *ctx)
{
	wrk_append_drop_all(ctx);
	wrk_run_free_all(ctx);
	wrk_budget_forget(ctx);
	wrk_net_free(ctx);
	/* Before the embedders: it cancels its embeddings. */
	wrk_memory_free(ctx);
	wrk_embed_free(ctx);
	wrk_append_fini(ctx);
	wrk_vault_free(ctx);
	if (ctx->front != NULL)
		ipc_chan_free(ctx->front);
	if (ctx->journald != NULL)
		ipc_chan_free(ctx->journald);
	if (ctx->supervisor != NULL)
		ipc_chan_free(ctx->supervisor);
	if (ctx->config != NULL)
		protobuf_c_message_free_unpacked(&ctx->config->base, NULL);
	event_free(ctx->sigterm_ev);
	event_free(ctx->sigint_ev);
	event_free(ctx->drain_ev);
	event_free(ctx->idle_ev);
	event_base_free(ctx->base);
}

int
worker_main(int argc, char **argv)
{
	struct wrk_ctx	 ctx;
	struct sbx_profile profile;
	struct sbx_facts facts;
	const char	*tenant = NULL, *scratch = NULL, *ports = NULL;
	const char	*hostports = NULL;
	const char	*ids = NULL, *errstr = NULL;
	uint64_t	 idle_ms = 0;
	char		*end;
	int		 ch, verbose = 0, to_stderr = 0;

	while ((ch = getopt(argc, argv, "dt:vw:i:H:P:U:")) != -1) {
		switch (ch) {
		case 'i':
			errno = 0;
			idle_ms = strtoull(optarg, &end, 10);
			if (errno != 0 || end == optarg || *end != '\0' ||
			    optarg[0] == '-' || idle_ms > INT64_MAX / 2)
				errstr = "invalid -i";
			break;
		case 'd':
			to_stderr = 1;
			break;
		case 'w':
			scratch = optarg;
			break;
		case 'H':
			hostports = optarg;
			break;
		case 'P':
			ports = optarg;
			break;
		case 'U':
			ids = optarg;
			break;
		case 't':
			tenant = optarg;
			break;
		case 'v':
			verbose = 1;
			break;
		default:
			usage();
		}
	}
	if (optind != argc || tenant == NULL || !cfg_name_valid(tenant) ||
	    errstr != NULL ||
	    sbx_profile_worker(&profile, ids, scratch, ports) < 0)
		usage();

	log_init("palyra-worker", tenant, verbose, to_stderr);
	/* The supervisor's death must not leave us serving unsupervised. */
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) == -1)
		fatal("prctl(PR_SET_PDEATHSIG)");
	if (fcntl(PROC_FD_PARENT, F_GETFD) == -1)
		fatal("no supervisor channel on descriptor %d", PROC_FD_PARENT);
	if (sodium_init() < 0)
		fatalx("libsodium failed to initialise");
	signal(SIGPIPE, SIG_IGN);
	/* Without -w (an older supervisor) the worker gets no directory at
	 * all, which is stricter, not weaker. */
	if (scratch == NULL)
		log_warn("no scratch directory (-w): no files at all");
	/* The CA bundle and the providers' addresses, while /etc and the
	 * resolver can still be reached. */
	if (wrk_http_prepare(hostports) < 0)
		fatalx("invalid -H or cannot prepare outbound HTTP");
	sbx_facts_init(&facts);
	if (sbx_apply(&profile, &facts) < 0) {
		log_error("cannot apply the sandbox; exiting");
		exit(PROC_EXIT_SANDBOX);
	}

	ctx_init(&ctx, tenant);
	ctx.sandbox = &facts;
	if ((ctx.idle_timeout_ms = idle_ms) != 0) {
		ctx.busy_last_ms = wrk_now_ms();
		idle_cb(-1, 0, &ctx);
	}
	log_info("started");
	event_base_dispatch(ctx.base);
	ctx_fini(&ctx);
	return ctx.exit_code;
}

int
main(int argc, char **argv)
{
	return worker_main(argc, argv);
}
