/*
 * front.c: entry point of palyra-front; the process context, signals and
 * the channel to the supervisor (keys, tenant list, peer channels).
 *
 * Process: palyra-front. Touches the inherited descriptors 3 (supervisor),
 * 4 (gRPC listener) and 5 (HTTP listener); everything else it reaches comes
 * in as IPC_ATTACH_PEER on descriptor 3.
 */
#include <sys/prctl.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <sodium.h>

#include "config.h"
#include "front.h"
#include "log.h"
#include "proc.h"
#include "sandbox.h"

#define FE_PARENT_ALLOWED                                                      \
	(IPC_TYPE_BIT(IPC_FRONT_KEYS) | IPC_TYPE_BIT(IPC_TENANT_LIST) |        \
	    IPC_TYPE_BIT(IPC_ATTACH_PEER) | IPC_TYPE_BIT(IPC_PROCESS_LIST) |   \
	    IPC_TYPE_BIT(IPC_TLS_CONFIG) |                                     \
	    IPC_TYPE_BIT(IPC_TENANT_ADMIN_REPLY) |                             \
	    IPC_TYPE_BIT(IPC_VAULT_ADMIN_REPLY))

static void
usage(void)
{
	fprintf(stderr, "usage: palyra-front [-U UID:GID] [-v] [-d]\n");
}

int64_t
fe_now_unix_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t
fe_uptime_seconds(const struct fe_ctx *ctx)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (now.tv_sec < ctx->started.tv_sec)
		return 0;
	return (uint64_t)(now.tv_sec - ctx->started.tv_sec);
}

static int
tenant_compare(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
fe_tenant_known(const struct fe_ctx *ctx, const char *name)
{
	if (ctx->ntenants == 0)
		return 0;
	return bsearch(&name, ctx->tenants, ctx->ntenants, sizeof(char *),
		   tenant_compare) != NULL;
}

static void
tenants_free(char **names, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/*
 * Replaces the tenant list. Returns 0, -EPROTO for a list the supervisor
 * should never send (bad names, too many), or -ENOMEM.
 */
static int
tenants_set(struct fe_ctx *ctx, const Palyra__Ipc__TenantList *list)
{
	char **names = NULL;
	size_t i;

	if (list->n_names > CFG_MAX_TENANTS)
		return -EPROTO;
	for (i = 0; i < list->n_names; i++)
		if (!cfg_name_valid(list->names[i]))
			return -EPROTO;
	if (list->n_names > 0) {
		names = calloc(list->n_names, sizeof(*names));
		if (names == NULL)
			return -ENOMEM;
	}
	for (i = 0; i < list->n_names; i++) {
		names[i] = strdup(list->names[i]);
		if (names[i] == NULL) {
			tenants_free(names, i);
			return -ENOMEM;
		}
	}
	if (list->n_names > 1)
		qsort(names, list->n_names, sizeof(*names), tenant_compare);
	tenants_free(ctx->tenants, ctx->ntenants);
	ctx->tenants = names;
	ctx->ntenants = list->n_names;
	log_debug("tenant list: %zu tenants", ctx->ntenants);
	return 0;
}

static int
keys_set(struct fe_ctx *ctx, const Palyra__Ipc__FrontKeys *keys)
{
	Palyra__Ipc__Ready ready = PALYRA__IPC__READY__INIT;
	int rc;

	if (keys->token_hash_key.len != FE_HASH_LEN ||
	    keys->admin_token_hash.len != FE_HASH_LEN)
		return -EPROTO;
	memcpy(ctx->token_hash_key, keys->token_hash_key.data, FE_HASH_LEN);
	memcpy(ctx->admin_token_hash, keys->admin_token_hash.data, FE_HASH_LEN);
	ctx->have_keys = 1;
	if (ctx->ready_sent)
		return 0;
	ready.pid = (uint32_t)getpid();
	ready.n_sandbox_applied = ctx->sandbox->napplied;
	ready.sandbox_applied = ctx->sandbox->applied_list;
	ready.n_sandbox_skipped = ctx->sandbox->nskipped;
	ready.sandbox_skipped = ctx->sandbox->skipped_list;
	rc = ipc_chan_send(ctx->parent, IPC_READY, 0, &ready.base, NULL, 0);
	if (rc < 0) {
		log_error("cannot send READY: %s", strerror(-rc));
		return rc;
	}
	ctx->ready_sent = 1;
	log_info("serving");
	return 0;
}

static void
tls_wipe(Palyra__Ipc__TlsConfig *tc)
{
	if (tc->grpc_key.data != NULL)
		sodium_memzero(tc->grpc_key.data, tc->grpc_key.len);
	if (tc->http_key.data != NULL)
		sodium_memzero(tc->http_key.data, tc->http_key.len);
}

static void
parent_stop(struct fe_ctx *ctx, int code)
{
	if (ctx->stopping)
		return;
	ctx->stopping = 1;
	ctx->exit_code = code;
	event_base_loopbreak(ctx->base);
}

static void
parent_msg(struct ipc_chan *chan, struct ipc_msg *m, void *arg)
{
	struct fe_ctx *ctx = arg;
	int rc = -EPROTO;

	switch (m->hdr.type) {
	case IPC_FRONT_KEYS:
		rc = keys_set(ctx, (Palyra__Ipc__FrontKeys *)m->msg);
		/* The decoded copy of the secrets is wiped before it is freed.
		 */
		sodium_memzero(
		    ((Palyra__Ipc__FrontKeys *)m->msg)->token_hash_key.data,
		    ((Palyra__Ipc__FrontKeys *)m->msg)->token_hash_key.len);
		break;
	case IPC_TENANT_LIST:
		rc = tenants_set(ctx, (Palyra__Ipc__TenantList *)m->msg);
		break;
	case IPC_TLS_CONFIG:
		rc = fe_tls_config(ctx, (Palyra__Ipc__TlsConfig *)m->msg);
		if (rc == -EINVAL) /* logged: the certificate or key */
			rc = -EKEYREJECTED;
		/* The decoded copies of the keys are wiped before they are
		 * freed. */
		tls_wipe((Palyra__Ipc__TlsConfig *)m->msg);
		break;
	case IPC_ATTACH_PEER:
		if (m->nfds != 1)
			break;
		rc = fe_peer_attach(
		    ctx, (Palyra__Ipc__AttachPeer *)m->msg, m->fds[0]);
		if (rc == 0)
			m->fds[0] = -1;
		break;
	case IPC_PROCESS_LIST:
		rc = 0;
		if (fe_metrics_process_page(ctx, m->hdr.request_id,
			(Palyra__Ipc__ProcessList *)m->msg))
			break;
		rc = fe_processes_reply(ctx, m->hdr.request_id,
		    (Palyra__Ipc__ProcessList *)m->msg);
		break;
	case IPC_TENANT_ADMIN_REPLY:
		rc = fe_tenants_admin_reply(ctx, m->hdr.request_id,
		    (Palyra__Ipc__TenantAdminReply *)m->msg);
		break;
	case IPC_VAULT_ADMIN_REPLY:
		rc = fe_vault_admin_reply(ctx, m->hdr.request_id,
		    (Palyra__Ipc__VaultAdminReply *)m->msg);
		break;
	default:
		break;
	}
	if (rc == -EPROTO) {
		log_error("supervisor sent a bad %s message",
		    ipc_type_name(m->hdr.type));
		parent_stop(ctx, PROC_EXIT_PEER);
	} else if (rc < 0) {
		log_error("cannot apply %s: %s", ipc_type_name(m->hdr.type),
		    strerror(-rc));
		parent_stop(ctx, PROC_EXIT_FATAL);
	}
}

static void
parent_close(struct ipc_chan *chan, int error, void *arg)
{
	struct fe_ctx *ctx = arg;

	if (error == 0) {
		log_info("supervisor channel closed, exiting");
		parent_stop(ctx, PROC_EXIT_OK);
		return;
	}
	log_error("supervisor channel failed: %s", strerror(-error));
	parent_stop(ctx, error == -EBADMSG || error == -EPROTO ||
				 error == -EMSGSIZE || error == -EPERM
			     ? PROC_EXIT_PEER
			     : PROC_EXIT_FATAL);
}

static void
drain_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fe_ctx *ctx = arg;
	struct timeval tv = {0, FE_STOP_POLL_MS * 1000};

	if (fe_h2_idle(ctx)) {
		log_info("every call ended, exiting");
		parent_stop(ctx, PROC_EXIT_OK);
		return;
	}
	if (fe_now_unix_ms() >= ctx->drain_deadline_ms) {
		log_warn(
		    "calls still open after %d ms, exiting", FE_STOP_DRAIN_MS);
		parent_stop(ctx, PROC_EXIT_OK);
		return;
	}
	evtimer_add(ctx->drain_timer, &tv);
}

/*
 * SIGTERM drains: no new connections, no new calls; the calls in flight
 * keep receiving their runs' events (the workers are stopping at the same
 * time and end every run with CANCELLED) until they end, boundedly.
 */
static void
drain_start(struct fe_ctx *ctx)
{
	struct fe_conn *conn;
	struct fe_call *call;

	if (ctx->draining || ctx->stopping)
		return;
	ctx->draining = 1;
	ctx->drain_deadline_ms = fe_now_unix_ms() + FE_STOP_DRAIN_MS;
	fe_h2_stop_accepting(ctx);
	fe_http_stop_accepting(ctx);
	/* Calls that have not started a run yet are refused now. */
	TAILQ_FOREACH(conn, &ctx->conns, entry)
	TAILQ_FOREACH(call, &conn->calls, conn_entry)
	if (call->state == FE_CALL_HEADERS ||
	    call->state == FE_CALL_AUTHENTICATING ||
	    call->state == FE_CALL_WAITING_START ||
	    call->state == FE_CALL_PARKED || call->state == FE_CALL_RESOLVING ||
	    call->state == FE_CALL_REATTACHING ||
	    /* Health watches and reflection streams follow no run. */
	    call->method == FE_METHOD_HEALTH_WATCH ||
	    call->method == FE_METHOD_REFLECTION_V1 ||
	    call->method == FE_METHOD_REFLECTION_V1ALPHA)
		fe_call_finish(call, GRPC_STATUS_UNAVAILABLE, FE_STOPPING_MESSAGE);
	drain_cb(-1, 0, ctx);
}

static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct fe_ctx *ctx = arg;

	log_info("signal %d, draining", (int)sig);
	drain_start(ctx);
}

static void
chan_free_cb(evutil_socket_t fd, short what, void *arg)
{
	ipc_chan_free(arg);
}

void
fe_chan_free_later(struct fe_ctx *ctx, struct ipc_chan *chan)
{
	struct timeval now = {0, 0};

	if (chan == NULL)
		return;
	/*
	 * A channel may be dropped from inside one of its own callbacks;
	 * freeing it on the next loop pass keeps the channel layer's stack
	 * frames valid.
	 */
	if (event_base_once(
		ctx->base, -1, EV_TIMEOUT, chan_free_cb, chan, &now) < 0)
		ipc_chan_free(chan);
}

static int
set_nonblocking(int fd)
{
	int flags;

	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

static struct fe_ctx *
ctx_new(int verbose)
{
	struct fe_ctx *ctx;

	ctx = calloc(1, sizeof(*ctx));
	if (ctx == NULL)
		fatal("calloc");
	ctx->verbose = verbose;
	clock_gettime(CLOCK_MONOTONIC, &ctx->started);
	TAILQ_INIT(&ctx->jreqs);
	TAILQ_INIT(&ctx->workers);
	TAILQ_INIT(&ctx->pools);
	TAILQ_INIT(&ctx->orphans);
	TAILQ_INIT(&ctx->conns);
	TAILQ_INIT(&ctx->dirty);
	TAILQ_INIT(&ctx->call_pool);
	TAILQ_INIT(&ctx->proc_reqs);
	LIST_INIT(&ctx->scrapes);
	TAILQ_INIT(&ctx->health_watches);
	ctx->next_journal_id = 1;
	ctx->base = event_base_new();
	if (ctx->base == NULL)
		fatalx("event_base_new failed");
	ctx->drain_timer = evtimer_new(ctx->base, drain_cb, ctx);
	if (ctx->drain_timer == NULL)
		fatalx("cannot create the drain timer");
	return ctx;
}

static void
ctx_free(struct fe_ctx *ctx)
{
	fe_h2_shutdown(ctx);
	fe_processes_shutdown(ctx);
	fe_metrics_shutdown(ctx);
	fe_tenants_admin_shutdown(ctx);
	fe_vault_admin_shutdown(ctx);
	fe_journal_shutdown(ctx);
	fe_listing_shutdown(ctx);
	fe_console_shutdown(ctx);
	fe_http_shutdown(ctx);
	fe_tls_free(ctx);
	fe_reflection_free(ctx);
	fe_authfail_free(ctx);
	fe_peer_free_all(ctx);
	fe_call_free_pool(ctx);
	if (ctx->parent != NULL)
		ipc_chan_free(ctx->parent);
	if (ctx->sigterm_event != NULL)
		event_free(ctx->sigterm_event);
	if (ctx->sigint_event != NULL)
		event_free(ctx->sigint_event);
	if (ctx->drain_timer != NULL)
		event_free(ctx->drain_timer);
	tenants_free(ctx->tenants, ctx->ntenants);
	sodium_memzero(ctx->token_hash_key, sizeof(ctx->token_hash_key));
	sodium_memzero(ctx->admin_token_hash, sizeof(ctx->admin_token_hash));
	/* Let pending one-shot events (channel frees) run before the end. */
	event_base_loop(ctx->base, EVLOOP_NONBLOCK);
	event_base_free(ctx->base);
	free(ctx);
}

int
front_main(int argc, char *argv[])
{
	struct fe_ctx *ctx;
	struct sbx_profile profile;
	struct sbx_facts facts;
	const char *ids = NULL;
	int ch, verbose = 0, to_stderr = 0, code, rc;

	while ((ch = getopt(argc, argv, "U:vd")) != -1) {
		switch (ch) {
		case 'U':
			ids = optarg;
			break;
		case 'v':
			verbose = 1;
			break;
		case 'd':
			to_stderr = 1;
			break;
		default:
			usage();
			return PROC_EXIT_USAGE;
		}
	}
	if (optind != argc || sbx_profile_front(&profile, ids) < 0) {
		usage();
		return PROC_EXIT_USAGE;
	}
	log_init("palyra-front", NULL, verbose, to_stderr);
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0)
		fatal("prctl(PR_SET_PDEATHSIG)");
	if (getppid() == 1)
		fatalx("parent already gone");
	if (sodium_init() < 0)
		fatalx("sodium_init failed");
	signal(SIGPIPE, SIG_IGN);
	/* OpenSSL reads its configuration now: the sandbox leaves no file.
	 * Certificates and keys come from the supervisor (tls.c). */
	if (fe_tls_init() < 0)
		fatalx("cannot initialise OpenSSL");
	sbx_facts_init(&facts);
	if (sbx_apply(&profile, &facts) < 0) {
		log_error("cannot apply the sandbox; exiting");
		return PROC_EXIT_SANDBOX;
	}

	ctx = ctx_new(verbose);
	ctx->sandbox = &facts;
	if ((rc = set_nonblocking(PROC_FD_GRPC_LISTEN)) < 0 ||
	    (rc = set_nonblocking(PROC_FD_HTTP_LISTEN)) < 0)
		fatalx("listening sockets: %s", strerror(-rc));
	ctx->parent = ipc_chan_new(ctx->base, PROC_FD_PARENT, "supervisor",
	    FE_PARENT_ALLOWED, parent_msg, parent_close, ctx);
	if (ctx->parent == NULL)
		fatalx("cannot open the supervisor channel");
	if ((rc = fe_h2_listen(ctx, PROC_FD_GRPC_LISTEN)) < 0)
		fatalx("gRPC listener: %s", strerror(-rc));
	if ((rc = fe_http_listen(ctx, PROC_FD_HTTP_LISTEN)) < 0)
		fatalx("HTTP listener: %s", strerror(-rc));
	ctx->sigterm_event = evsignal_new(ctx->base, SIGTERM, signal_cb, ctx);
	ctx->sigint_event = evsignal_new(ctx->base, SIGINT, signal_cb, ctx);
	if (ctx->sigterm_event == NULL || ctx->sigint_event == NULL ||
	    evsignal_add(ctx->sigterm_event, NULL) < 0 ||
	    evsignal_add(ctx->sigint_event, NULL) < 0)
		fatalx("cannot set up signal events");

	log_debug("started, waiting for keys");
	if (event_base_dispatch(ctx->base) < 0)
		fatalx("event loop failed");
	code = ctx->exit_code;
	ctx_free(ctx);
	return code;
}
