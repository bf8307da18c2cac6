/*
 * front.h: the internals of palyra-front, the only inbound network process
 * of palyrad (DESIGN sections 2, 5, 6, 7).
 *
 * Process: palyra-front. It holds the token keyed-hash key and the admin
 * token hash, never a tenant token in clear beyond one request, and never
 * runs agent code. It talks to the supervisor (fd 3), journald (tokens) and
 * the workers of each tenant (runs), all over typed IPC channels.
 *
 * Modules: front.c (main, context, supervisor channel), peer.c (journald
 * and worker channels), pool.c (routing calls to a tenant's workers,
 * parking them while one starts), h2.c (HTTP/2 connections on nghttp2),
 * call.c (gRPC call state machine and framing), rpc.c (the gRPC methods),
 * reattach.c (a RunStream following an existing run by run_id),
 * auth.c (tokens), authfail.c (rate limit of authentication failures
 * per source address), http.c (the HTTP/1.1 surface), httpconn.c (its
 * connections: per-address limit, request deadline), tokens.c (token
 * listing and revocation over HTTP), processes.c (the
 * supervisor's process list over HTTP), tenants_admin.c (runtime
 * tenants over HTTP), services.c (ApprovalsService, UsageService,
 * VaultService, CronService, MemoryService), console_services.c (their
 * /console/v1 routes),
 * health.c (Health/Watch),
 * reflection.c (gRPC server reflection), tls.c (OpenSSL on both
 * listeners, certificate reload), metrics.c (counters, GET /metrics).
 */
#ifndef PALYRA_FRONT_H
#define PALYRA_FRONT_H

#include <sys/queue.h>

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <nghttp2/nghttp2.h>

#include "grpc_status.h"
#include "ipc.h"
#include "ipc.pb-c.h"
#include "limits.h"

#define FE_HASH_LEN 32	/* keyed token hash and its key */
#define FE_PATH_MAX 128 /* longest :path we route */
#define FE_ROLE_MAX 16
#define FE_AUTH_SOURCE_LEN 9 /* family byte, IPv4 address or IPv6 /64 */
#define FE_GRPC_MESSAGE_MAX 256 /* grpc-message text before encoding */
#define FE_TOKEN_PREFIX "pt_"
#define FE_RUN_ID_MAX 64   /* run ids journald accepts */
#define FE_STOP_POLL_MS 20 /* SIGTERM: how often the drain is checked */
#define FE_STOPPING_MESSAGE "palyrad is stopping"


enum fe_method {
	FE_METHOD_UNKNOWN = 0,
	FE_METHOD_HEALTH_CHECK, /* grpc.health.v1.Health/Check */
	FE_METHOD_GET_HEALTH,	/* palyra.v1.GatewayService/GetHealth */
	FE_METHOD_RUN_STREAM,	/* palyra.v1.GatewayService/RunStream */
	FE_METHOD_HEALTH_WATCH,	/* grpc.health.v1.Health/Watch */
	/* grpc.reflection.v1{,alpha}.ServerReflection/ServerReflectionInfo */
	FE_METHOD_REFLECTION_V1,
	FE_METHOD_REFLECTION_V1ALPHA,
	FE_METHOD_GET_RUN,	   /* palyra.v1.GatewayService/GetRun */
	FE_METHOD_ABORT_RUN,	   /* palyra.v1.GatewayService/AbortRun */
	FE_METHOD_LIST_RUN_EVENTS, /* palyra.v1.GatewayService/ListRunEvents */
	FE_METHOD_LIST_SESSIONS,   /* palyra.v1.GatewayService/ListSessions */
	FE_METHOD_RESOLVE_SESSION, /* .../ResolveSession */
	FE_METHOD_CLEANUP_SESSION, /* .../CleanupSession */
	FE_METHOD_APPEND_EVENT,	   /* .../AppendEvent */
	FE_METHOD_LIST_AGENTS,	   /* .../ListAgents (agents.c) */
	FE_METHOD_GET_AGENT,	   /* .../GetAgent */
	FE_METHOD_CREATE_AGENT,	   /* .../CreateAgent */
	FE_METHOD_UPDATE_AGENT,	   /* .../UpdateAgent */
	FE_METHOD_DELETE_AGENT,	   /* .../DeleteAgent */
	/* palyra.v1.ApprovalsService and UsageService (services.c) */
	FE_METHOD_LIST_APPROVALS,
	FE_METHOD_GET_APPROVAL,
	FE_METHOD_DECIDE_APPROVAL,
	FE_METHOD_EXPORT_APPROVALS, /* server stream */
	FE_METHOD_LIST_GRANTS,
	FE_METHOD_REVOKE_GRANT,
	FE_METHOD_GET_USAGE,
	FE_METHOD_LIST_BUDGETS,
	FE_METHOD_SET_BUDGET,
	FE_METHOD_DELETE_BUDGET,
	/* palyra.v1.VaultService, CronService and MemoryService
	 * (services.c): PutSecret, GetSecret, IngestMemory and SearchMemory
	 * go to a worker of the tenant, the others to journald. */
	FE_METHOD_PUT_SECRET,
	FE_METHOD_GET_SECRET,
	FE_METHOD_DELETE_SECRET,
	FE_METHOD_LIST_SECRETS,
	FE_METHOD_CREATE_JOB,
	FE_METHOD_UPDATE_JOB,
	FE_METHOD_DELETE_JOB,
	FE_METHOD_GET_JOB,
	FE_METHOD_LIST_JOBS,
	FE_METHOD_RUN_JOB_NOW,
	FE_METHOD_LIST_JOB_RUNS,
	FE_METHOD_INGEST_MEMORY,
	FE_METHOD_SEARCH_MEMORY,
	FE_METHOD_GET_MEMORY_ITEM,
	FE_METHOD_LIST_MEMORY_ITEMS,
	FE_METHOD_DELETE_MEMORY_ITEM,
	FE_METHOD_PURGE_MEMORY,
};

/*
 * The life of one gRPC call (one HTTP/2 stream). Every change goes through
 * fe_call_transition(), which rejects moves not listed in call.c.
 */
enum fe_call_state {
	FE_CALL_HEADERS = 0,	/* request headers arriving */
	FE_CALL_AUTHENTICATING, /* token lookup at journald pending */
	FE_CALL_WAITING_START,	/* waiting for the first request message */
	FE_CALL_PARKED,		/* start received, waiting for a worker */
	FE_CALL_RUNNING,	/* run started at the worker, relaying events */
	FE_CALL_HALF_CLOSED,	/* client finished sending, still relaying */
	FE_CALL_CLOSING,	/* status decided, response being flushed */
	FE_CALL_CLOSED,		/* stream gone; the call may be released */
	FE_CALL_REATTACHING,	/* start named a run: replaying its journal */
	FE_CALL_RESOLVING,	/* start named an agent: asking journald */
};

enum fe_auth {
	FE_AUTH_ABSENT = 0,
	FE_AUTH_MALFORMED,
	FE_AUTH_PRESENT, /* call->token_hash holds the keyed hash */
};

struct fe_ctx;
struct fe_conn;
struct fe_worker;
struct fe_jreq;

struct fe_call {
	TAILQ_ENTRY(fe_call) conn_entry;
	TAILQ_ENTRY(fe_call) worker_entry;
	struct fe_conn *conn;
	int32_t stream_id;
	enum fe_call_state state;
	enum fe_method method;

	/* Request headers. */
	char path[FE_PATH_MAX];
	int path_too_long;
	int is_post;
	int content_type_ok;
	int timeout_invalid;
	int64_t timeout_ms; /* -1: none */
	size_t header_bytes;
	enum fe_auth auth;
	uint8_t token_hash[FE_HASH_LEN];

	/* Request messages: partial message bytes across DATA frames. */
	struct evbuffer *in;
	int input_ended; /* END_STREAM received */
	int got_message;

	/* Identity, from the token lookup only. */
	struct fe_jreq *jreq;
	char tenant[NAME_MAX_LEN + 1];
	char principal[NAME_MAX_LEN + 1];
	char role[FE_ROLE_MAX];

	/* The run at the worker. */
	struct fe_worker *worker;
	uint32_t call_id;
	/* The start message, kept until the run's first event so that a call
	 * whose worker went away before it is routed again, once. */
	Palyra__V1__RunStreamRequest *start_req;
	int rerouted;
	/* Parked (on pool->parked by worker_entry) until a worker of the
	 * tenant attaches, or park_timer ends it. */
	struct fe_pool *pool;
	struct event *park_timer;
	/* From the run's first event; matches journald's notices. */
	char run_id[FE_RUN_ID_MAX + 1];
	uint64_t last_seq;
	/* The worker's channel closed; on ctx->orphans until journald's
	 * notice ends the call, or grace_timer does. */
	int orphaned;
	struct event *grace_timer;
	/* The start named an existing run (reattach.c): the call follows it;
	 * going away or a deadline never cancels that run. */
	struct fe_reattach *reattach;
	int reattached;
	/* The client sent Cancel: its run is ending and takes no input. */
	int cancel_sent;
	/* GetRun and AbortRun in progress (runs.c). */
	struct fe_run_op *run_op;
	/* ListSessions, ResolveSession, CleanupSession (sessions.c). */
	struct fe_session_op *session_op;
	/* The runtime agent the start names, as journald resolved it
	 * (agents.c); NULL: a config agent or none. Sent with the start. */
	Palyra__Ipc__AgentConfig *runtime_agent;
	/* ApprovalsService, UsageService (services.c): journald's answer
	 * timer; fe_services_end() (from fe_runs_end()) releases it. */
	struct fe_service_op *service_op;
	/* Health/Watch (health.c): on ctx->health_watches while watching. */
	TAILQ_ENTRY(fe_call) watch_entry;
	int watching;
	int watch_known;  /* the service named is one we serve */
	int watch_status; /* last sent; -1: none yet */
	int64_t deadline_unix_ms;
	struct timespec started; /* CLOCK_MONOTONIC, for metrics.c */
	struct event *deadline_timer;
	struct event *auth_timer;

	/* Response. */
	struct evbuffer *out; /* framed messages not yet sent */
	/* IPC_RUN_FLOW paused the run: out passed FE_FLOW_HIGH_WATER. */
	int flow_paused;
	int headers_sent;
	int trailers_pending;
	int trailers_sent;
	uint32_t status;
	char message[FE_GRPC_MESSAGE_MAX];

	/* A /console/v1 request (console.c) instead of an HTTP/2 stream:
	 * conn is then the request's pseudo-connection (ctx and source only,
	 * no session), and replies go to console.c, never to h2.c. */
	struct fe_console_req *http;
};

TAILQ_HEAD(fe_call_list, fe_call);

struct fe_probe;
TAILQ_HEAD(fe_probe_list, fe_probe);
struct fe_abort;
TAILQ_HEAD(fe_abort_list, fe_abort);

struct fe_conn {
	TAILQ_ENTRY(fe_conn) entry;
	TAILQ_ENTRY(fe_conn) dirty_entry;
	struct fe_ctx *ctx;
	struct bufferevent *bev;
	nghttp2_session *session;
	struct fe_call_list calls;
	int dirty; /* on ctx->dirty, to flush */
	int tls;	/* handshake and ALPN "h2" required before any frame */
	int tls_ready;	/* ... and done */
	int has_source; /* source: the peer's address (authfail.c) */
	uint8_t source[FE_AUTH_SOURCE_LEN];
	/* Abuse resistance (h2.c): the preface and idle timer, the client's
	 * stream resets (a token bucket), why we sent GOAWAY. */
	struct event *timer;
	int preface_done;  /* the client's first SETTINGS arrived */
	int64_t active_ms; /* a stream opened or closed (monotonic) */
	double reset_tokens;
	int64_t reset_ms;
	int goaway_reason; /* enum fe_goaway_reason; -1: none chosen */
	int goaway_counted;
	int closing; /* GOAWAY submitted: freed once flushed, or by timer */
};

TAILQ_HEAD(fe_conn_list, fe_conn);

/* One worker channel of a tenant and the calls running on it. */
struct fe_worker {
	TAILQ_ENTRY(fe_worker) entry;
	struct fe_ctx *ctx;
	struct ipc_chan *chan;
	char tenant[NAME_MAX_LEN + 1];
	uint32_t index; /* which of the tenant's workers (supervisor's word) */
	uint32_t next_call_id;
	struct fe_call_list calls;
	size_t ncalls; /* on calls: its load */
	struct fe_probe_list probes; /* IPC_RUN_ATTACH awaiting answers */
	struct fe_abort_list aborts; /* IPC_RUN_ABORT awaiting answers */
};

TAILQ_HEAD(fe_worker_list, fe_worker);

/* A tenant's calls waiting for a worker, and the request for one. */
struct fe_pool {
	TAILQ_ENTRY(fe_pool) entry;
	struct fe_ctx *ctx;
	char tenant[NAME_MAX_LEN + 1];
	struct fe_call_list parked;
	size_t nparked;
	/* IPC_WORKER_WANTED sent for this many workers, not yet answered by
	 * an attach; want_timer forgets it after FE_WORKER_WANT_RETRY_MS. */
	uint32_t wanted;
	struct event *want_timer;
};

TAILQ_HEAD(fe_pool_list, fe_pool);

enum fe_jreq_kind {
	FE_JREQ_LOOKUP = 0, /* owner: struct fe_call */
	FE_JREQ_STORE,	    /* owner: struct fe_http_token */
	FE_JREQ_RUN_READ,   /* owner: struct fe_call (reattach.c) */
	FE_JREQ_TOKEN_LIST,	/* owner: struct fe_tokreq (tokens.c) */
	FE_JREQ_TOKEN_REVOKE,	/* owner: struct fe_tokreq (tokens.c) */
	FE_JREQ_SESSION,	/* owner: struct fe_call (sessions.c) */
	FE_JREQ_AGENT,	      /* owner: struct fe_call (agents.c) */
	FE_JREQ_SERVICE,      /* owner: struct fe_call (services.c) */
};

/* A request to journald awaiting its reply; owner NULL once abandoned. */
struct fe_jreq {
	TAILQ_ENTRY(fe_jreq) entry;
	uint32_t request_id;
	enum fe_jreq_kind kind;
	void *owner;
};

TAILQ_HEAD(fe_jreq_list, fe_jreq);

/* GET /admin/v1/processes waiting for the supervisor (processes.c). */
struct fe_proc_req;
TAILQ_HEAD(fe_proc_req_list, fe_proc_req);

/* metrics.c: what GET /metrics reports (Prometheus text format 0.0.4).
 * Label sets are bounded: a method label for each enum fe_method value
 * below FE_METRICS_METHODS ("unknown" otherwise), a gRPC status code,
 * a fixed set of reasons and HTTP path groups. */
#define FE_METRICS_METHODS 64
#define FE_METRICS_CODES GRPC_STATUS_COUNT
#define FE_METRICS_BUCKETS 8
#define FE_METRICS_HTTP_CODES 600

enum fe_goaway_reason {
	FE_GOAWAY_IDLE = 0,
	FE_GOAWAY_PREFACE_TIMEOUT,
	FE_GOAWAY_RAPID_RESET,
	FE_GOAWAY_FLOOD, /* nghttp2's own limits: ENHANCE_YOUR_CALM */
	FE_GOAWAY_PROTOCOL_ERROR,
	FE_GOAWAY_OTHER,
	FE_GOAWAY_REASONS
};

enum fe_refused_reason {
	FE_REFUSED_PER_ADDR = 0,
	FE_REFUSED_MAX,
	FE_REFUSED_REASONS
};

enum fe_http_group {
	FE_HTTP_GROUP_HEALTHZ = 0,
	FE_HTTP_GROUP_METRICS,
	FE_HTTP_GROUP_ADMIN,
	FE_HTTP_GROUP_CONSOLE,
	FE_HTTP_GROUP_OTHER,
	FE_HTTP_GROUPS
};

struct fe_metrics {
	uint64_t connections_total;
	uint64_t refused[FE_REFUSED_REASONS];
	uint64_t goaway[FE_GOAWAY_REASONS];
	uint64_t streams_refused_headers; /* header list over the limit */
	uint64_t grpc_requests[FE_METRICS_METHODS][FE_METRICS_CODES];
	/* Per bucket, not cumulative; the last one is +Inf. */
	uint64_t grpc_buckets[FE_METRICS_METHODS][FE_METRICS_BUCKETS + 1];
	double grpc_seconds[FE_METRICS_METHODS];
	/* The :path that fe_rpc_route() mapped to each method (a route of
	 * ours, never free text); "" until the first call. */
	char method_names[FE_METRICS_METHODS][FE_PATH_MAX];
	uint64_t runs_started;
	uint64_t auth_failures;
	uint64_t auth_rate_limited;
	uint64_t http_requests[FE_HTTP_GROUPS][FE_METRICS_HTTP_CODES];
	/* Flow control (call.c): runs paused for a slow reader, followers
	 * ended for falling too far behind. */
	uint64_t flow_pauses;
	uint64_t slow_followers;
	/* The HTTP listener (http.c). */
	uint64_t http_connections_total;
	uint64_t http_refused[FE_REFUSED_REASONS];
	uint64_t http_request_timeouts;
};

/* A GET /metrics waiting for journald and the supervisor (metrics.c). */
struct fe_scrape;
LIST_HEAD(fe_scrape_list, fe_scrape);

struct fe_http_conn; /* httpconn.c */

struct sbx_facts;

struct fe_ctx {
	struct event_base *base;
	int verbose;
	int exit_code;
	int stopping;
	struct timespec started; /* CLOCK_MONOTONIC */

	struct ipc_chan *parent;
	struct fe_proc_req_list proc_reqs;
	size_t nproc_reqs;
	uint32_t next_proc_req_id;
	int have_keys;
	int ready_sent;
	struct sbx_facts *sandbox; /* for READY; front_main() owns it */
	uint8_t token_hash_key[FE_HASH_LEN];
	uint8_t admin_token_hash[FE_HASH_LEN];
	char **tenants; /* sorted, for bsearch */
	size_t ntenants;

	struct ipc_chan *journald;
	uint32_t next_journal_id;
	struct fe_jreq_list jreqs;
	struct fe_worker_list workers;
	struct fe_pool_list pools;
	/* Calls of lost workers (by worker_entry), awaiting journald. */
	struct fe_call_list orphans;

	struct evconnlistener *grpc_listener;
	struct fe_conn_list conns;
	size_t nconns;
	struct fe_conn_list dirty;
	struct event *flush_event;
	struct fe_call_list call_pool;
	size_t ncall_pool;

	struct evhttp *http;
	struct evhttp_bound_socket *http_socket;
	/* httpconn.c: its connections by descriptor, how many are open,
	 * and those accepted but not yet checked (http_check_event). */
	struct fe_http_conn **http_conns;
	size_t http_conns_cap;
	size_t nhttp_conns;
	struct bufferevent **http_pending;
	size_t http_npending;
	size_t http_pending_cap;
	struct event *http_check_event;
	/* tls.c: the listeners' contexts (NULL: cleartext), from the
	 * supervisor's IPC_TLS_CONFIG; nothing is accepted before it. */
	/* Health/Watch calls (health.c); reflection's index (reflection.c,
	 * built on first use). */
	struct fe_call_list health_watches;
	struct fe_reflection *reflection;

	int tls_configured;
	int grpc_is_tls;
	int http_is_tls;
	struct ssl_ctx_st *grpc_tls;
	struct ssl_ctx_st *http_tls;
	struct fe_journal *journal; /* journal.c: audit requests, or NULL */
	struct fe_listings *listings; /* listing.c: listings, or NULL */
	/* tenants_admin.c: /admin/v1/tenants requests, or NULL */
	struct fe_tenant_reqs *tenant_reqs;
	/* vault_admin.c: /admin/v1/vault requests, or NULL */
	struct fe_vault_reqs *vault_reqs;
	struct fe_authfail *authfail; /* authfail.c, allocated on first use */
	struct fe_console *console;   /* console.c, allocated on first use */
	struct fe_metrics metrics;    /* metrics.c */
	struct fe_scrape_list scrapes; /* metrics.c: GET /metrics waiting */
	size_t nscrapes;
	struct event *sigterm_event;
	struct event *sigint_event;

	/* SIGTERM: no new calls; those in flight end, boundedly. */
	int draining;
	int64_t drain_deadline_ms;
	struct event *drain_timer;
};

/* front.c */
int front_main(int argc, char *argv[]);
int fe_tenant_known(const struct fe_ctx *, const char *name);
uint64_t fe_uptime_seconds(const struct fe_ctx *);
int64_t fe_now_unix_ms(void);
/* Frees an IPC channel from the event loop, outside its own callbacks. */
void fe_chan_free_later(struct fe_ctx *, struct ipc_chan *);

/* peer.c: journald and worker channels. */
int fe_peer_attach(struct fe_ctx *, const Palyra__Ipc__AttachPeer *, int fd);
void fe_peer_free_all(struct fe_ctx *);
struct fe_worker *fe_worker_find(
    struct fe_ctx *, const char *tenant, uint32_t index);
/* Sends a request to journald. Returns 0, -ENOTCONN, -ENOBUFS or -errno. */
int fe_journal_request(struct fe_ctx *, enum ipc_type, const ProtobufCMessage *,
    enum fe_jreq_kind, void *owner, struct fe_jreq **out);
void fe_jreq_abandon(struct fe_jreq *);
/* Starts and cancels runs on a worker. Return 0 or -errno. */
int fe_worker_start(
    struct fe_worker *, struct fe_call *, const Palyra__Ipc__RunStartRequest *);
/* Sends a service call (services.c) to w: the call joins w's calls and
 * waits for its IPC_SERVICE_REPLY. Returns 0, -ENOTCONN or -errno. */
int fe_worker_service(
    struct fe_worker *, struct fe_call *, const Palyra__Ipc__ServiceCall *);
int fe_worker_cancel(struct fe_call *, const char *reason, int disconnected);
/* IPC_RUN_FLOW: pauses or resumes the call's run. Returns 0 or -errno. */
int fe_worker_flow(struct fe_call *, int paused);
void fe_worker_detach(struct fe_call *);
/* Handles journald's IPC_RUN_NOTICE. Returns 0, or -EPROTO for a notice
 * journald should never send (the caller drops the channel). */
int fe_peer_run_notice(struct fe_ctx *, const Palyra__Ipc__RunNotice *);

/* pool.c: routing to a tenant's workers. */
/* Starts call->start_req on the least-loaded attached worker of the call's
 * tenant, or parks the call until one attaches; ends the call on failure. */
void fe_pool_route(struct fe_call *);
/* The call's worker went away before its first event: routes it again,
 * once. Returns 0, or -EALREADY when the caller must end it. */
int fe_pool_reroute(struct fe_call *);
/* A worker of tenant attached: parked calls go to it. */
void fe_pool_attached(struct fe_ctx *, const char *tenant);
void fe_pool_unpark(struct fe_call *);
void fe_pool_free_all(struct fe_ctx *);

/* h2.c: the gRPC listener and HTTP/2 connections. */
int fe_h2_listen(struct fe_ctx *, int fd);
void fe_h2_shutdown(struct fe_ctx *);
void fe_h2_stop_accepting(struct fe_ctx *);
/* 1 when no connection holds a call or unsent bytes. */
int fe_h2_idle(const struct fe_ctx *);
void fe_conn_mark_dirty(struct fe_conn *);
int fe_h2_submit_headers(struct fe_call *);
int fe_h2_submit_trailers_only(struct fe_call *);
int fe_h2_submit_http_error(struct fe_call *, int http_status);
int fe_h2_resume(struct fe_call *);
size_t fe_grpc_percent_encode(const char *in, char *out, size_t outsize);

/* call.c: the per-call state machine and gRPC framing. */
struct fe_call *fe_call_new(struct fe_conn *, int32_t stream_id);
void fe_call_release(struct fe_call *, int disconnected);
void fe_call_free_pool(struct fe_ctx *);
int fe_call_transition(struct fe_call *, enum fe_call_state next);
int fe_call_header(struct fe_call *, const uint8_t *name, size_t namelen,
    const uint8_t *value, size_t valuelen);
void fe_call_headers_done(struct fe_call *);
void fe_call_data(struct fe_call *, const uint8_t *data, size_t len);
void fe_call_input_ended(struct fe_call *);
void fe_call_input_resume(struct fe_call *);
void fe_call_finish(struct fe_call *, uint32_t status, const char *msg);
void fe_call_abort(struct fe_call *, uint32_t status, const char *msg);
int fe_call_auth_timer_start(struct fe_call *);
/* Ends the call with UNAVAILABLE after FE_WORKER_LOST_GRACE_MS. */
int fe_call_grace_timer_start(struct fe_call *);
/* Ends a parked call with UNAVAILABLE after FE_WORKER_START_TIMEOUT_MS. */
int fe_call_park_timer_start(struct fe_call *);
int fe_call_send_message(struct fe_call *, const ProtobufCMessage *);
/* Flow control: after out grew or drained, pauses or resumes the call's
 * run (FE_FLOW_HIGH_WATER, FE_FLOW_LOW_WATER). */
void fe_call_flow_check(struct fe_call *);
int fe_grpc_timeout_parse(const char *value, size_t len, int64_t *ms);
const char *fe_call_state_name(enum fe_call_state);

/* rpc.c: the methods. */
enum fe_method fe_rpc_route(const char *path);
int fe_rpc_needs_auth(enum fe_method);
void fe_rpc_begin(struct fe_call *);
void fe_rpc_message(struct fe_call *, const uint8_t *msg, size_t len);
void fe_rpc_input_ended(struct fe_call *);
void fe_rpc_token_info(struct fe_call *, const Palyra__Ipc__TokenInfo *);
void fe_rpc_journal_failed(struct fe_call *);
void fe_rpc_run_event(struct fe_call *, const Palyra__Ipc__RunEventMsg *);
void fe_rpc_run_error(struct fe_call *, const Palyra__Ipc__RunErrorMsg *);
void fe_rpc_worker_gone(struct fe_call *);

/* authfail.c: authentication failures per source address. */
struct sockaddr;
int fe_authfail_source(const struct sockaddr *, size_t salen,
    uint8_t source[FE_AUTH_SOURCE_LEN]);
/* 0 when source may try to authenticate, else the milliseconds until it
 * may again. source NULL (unknown family) is never limited. */
int64_t fe_authfail_blocked_ms(struct fe_ctx *, const uint8_t *source);
/* A failed authentication from source takes one token of its bucket. */
void fe_authfail_record(struct fe_ctx *, const uint8_t *source);
void fe_authfail_free(struct fe_ctx *);

/* runs.c: GetRun, AbortRun, ListRunEvents. */
void fe_runs_message(struct fe_call *, const uint8_t *msg, size_t len);
/* 1 when the call's principal and role may see a run of principal. */
int fe_runs_visible(const struct fe_call *, const char *principal);
void fe_runs_page(struct fe_call *, const Palyra__Ipc__JournalRunPage *);
void fe_runs_journal_failed(struct fe_call *);
/* IPC_RUN_ABORTED. Returns 0, or -EPROTO for an abort never asked. */
int fe_runs_aborted(
    struct fe_worker *, uint32_t request_id, const Palyra__Ipc__RunAborted *);
/* The worker's IPC_RUN_NOTED (AppendEvent). Returns 0 or -EPROTO. */
int fe_runs_noted(
    struct fe_worker *, uint32_t request_id, const Palyra__Ipc__RunNoted *);
void fe_runs_worker_lost(struct fe_worker *);
void fe_runs_end(struct fe_call *);

/* sessions.c: ListSessions, ResolveSession and CleanupSession. */
void fe_sessions_message(struct fe_call *, const uint8_t *msg, size_t len);
/* journald's answer, or NULL when journald is gone. */
void fe_sessions_reply(
    struct fe_call *, const Palyra__Ipc__JournalSessionReply *);
/* Releases the call's session op (from fe_runs_end()). */
void fe_sessions_end(struct fe_call *);

/* agents.c: ListAgents, GetAgent, CreateAgent, UpdateAgent, DeleteAgent,
 * answered by journald, and the runtime agent a RunStream start names. */
int fe_agents_method(enum fe_method);
void fe_agents_message(struct fe_call *, const uint8_t *msg, size_t len);
/* RunStream: resolves the start's agent at journald, then routes the call
 * (fe_pool_route()). */
void fe_agents_resolve(struct fe_call *);
/* journald's answer, or NULL when journald is gone. */
void fe_agents_reply(struct fe_call *, const Palyra__Ipc__JournalAgentReply *);
/* Releases the call's runtime agent (from fe_runs_end()). */
void fe_agents_end(struct fe_call *);

/* services.c: ApprovalsService, UsageService, VaultService, CronService
 * and MemoryService, answered by journald or a worker of the tenant
 * (IPC_SERVICE_CALL). */
int fe_services_method(enum fe_method);
/* 1 for the methods a worker answers (routed through pool.c). */
int fe_services_worker_method(enum fe_method);
enum fe_method fe_services_route(const char *path);
void fe_services_message(struct fe_call *, const uint8_t *msg, size_t len);
/* pool.c chose w for the call's kept request: sends it. Returns 0,
 * -ENOTCONN (w's channel is gone; nothing changed) or -errno. */
int fe_services_dispatch(struct fe_call *, struct fe_worker *w);
/* One IPC_SERVICE_REPLY of the call (from journald or its worker), or
 * NULL when journald is gone. */
void fe_services_reply(struct fe_call *, const Palyra__Ipc__ServiceReply *);
/* Releases the call's service op (from fe_runs_end()). */
void fe_services_end(struct fe_call *);

/* auth.c: tokens. */
int fe_auth_bearer(
    const char *value, size_t len, const char **token, size_t *tokenlen);
int fe_auth_hash(const struct fe_ctx *, const char *token, size_t len,
    uint8_t out[FE_HASH_LEN]);
int fe_auth_admin_ok(const struct fe_ctx *, const char *header);
int fe_auth_new_token(
    char *token, size_t tokensize, char *token_id, size_t idsize);

/* http.c: the HTTP/1.1 surface. */
int fe_http_listen(struct fe_ctx *, int fd);
struct evhttp_request;
/* A JSON reply, and a JSON error {"error":{"code":...,"message":...}}. */
void fe_http_reply_json(
    struct evhttp_request *, int status, const char *text, size_t len);
void fe_http_reply_error(struct evhttp_request *, int status,
    const char *code, const char *message);
/* The admin token check of /admin/v1, rate-limited: returns 1, or 0
 * after answering 401 or 429. */
int fe_http_admin_auth(struct fe_ctx *, struct evhttp_request *);
void fe_http_shutdown(struct fe_ctx *);

/* httpconn.c: the HTTP listener's connections and their limits. */
struct bufferevent;
int fe_http_conn_init(struct fe_ctx *);
/* evhttp made bev for a new connection (its socket is set right after):
 * the limits are applied to it on the next turn of the loop. Returns 0,
 * or -ENOMEM. */
int fe_http_conn_accepted(struct fe_ctx *, struct bufferevent *);
/* A request of req's connection arrived whole (gencb), and its reply went
 * out: the request deadline stops, and starts again. */
void fe_http_conn_request(struct fe_ctx *, struct evhttp_request *);
void fe_http_conn_replied(struct fe_ctx *, struct evhttp_request *);
/* The open connections now (the /metrics gauge). */
size_t fe_http_conn_count(struct fe_ctx *);
void fe_http_conn_shutdown(struct fe_ctx *);
void fe_http_stop_accepting(struct fe_ctx *);
struct fe_http_token;
void fe_http_token_stored(
    struct fe_http_token *, const Palyra__Ipc__TokenStored *);

/* tokens.c: GET /admin/v1/tokens and DELETE /admin/v1/tokens/ID. */
struct fe_tokreq;
void fe_tokens_list(struct fe_ctx *, struct evhttp_request *);
void fe_tokens_revoke(
    struct fe_ctx *, struct evhttp_request *, const char *token_id);
/* journald's answers; NULL: the channel went away. */
void fe_tokens_listed(struct fe_tokreq *, const Palyra__Ipc__TokenList *);
void fe_tokens_revoked(
    struct fe_tokreq *, const Palyra__Ipc__TokenRevoked *);

/* processes.c: GET /admin/v1/processes, answered by the supervisor. */
void fe_processes_get(struct fe_ctx *, struct evhttp_request *);
/* One IPC_PROCESS_LIST page. Returns 0 (a stale page is dropped). */
int fe_processes_reply(
    struct fe_ctx *, uint32_t request_id, const Palyra__Ipc__ProcessList *);
void fe_processes_shutdown(struct fe_ctx *);

/* tenants_admin.c: /admin/v1/tenants (item NULL) and
 * /admin/v1/tenants/NAME (item NAME), answered by the supervisor. */
void fe_tenants_admin_http(
    struct fe_ctx *, struct evhttp_request *, const char *item);
/* POST /admin/v1/reload: the supervisor reloads palyrad.conf. */
void fe_tenants_admin_reload(struct fe_ctx *, struct evhttp_request *);
/* One IPC_TENANT_ADMIN_REPLY (page). Returns 0 (a stale one is dropped). */
int fe_tenants_admin_reply(struct fe_ctx *, uint32_t request_id,
    const Palyra__Ipc__TenantAdminReply *);
void fe_tenants_admin_shutdown(struct fe_ctx *);

/* vault_admin.c: /admin/v1/vault (item NULL) and /admin/v1/vault/NAME
 * (item NAME, rotate-master included), answered by the supervisor. */
void fe_vault_admin_http(
    struct fe_ctx *, struct evhttp_request *, const char *item);
/* One IPC_VAULT_ADMIN_REPLY. Returns 0 (a stale one is dropped). */
int fe_vault_admin_reply(struct fe_ctx *, uint32_t request_id,
    const Palyra__Ipc__VaultAdminReply *);
void fe_vault_admin_shutdown(struct fe_ctx *);

/* listing.c: GET /admin/v1/tenants/NAME/{sessions,runs}, answered by
 * journald. path: what follows /admin/v1/tenants/. */
void fe_listing_http(
    struct fe_ctx *, struct evhttp_request *, const char *path);
/* Handles IPC_JOURNAL_LIST_PAGE: returns 1, or 0 for another type. */
int fe_listing_reply(struct fe_ctx *, const struct ipc_msg *);
void fe_listing_shutdown(struct fe_ctx *);

/* journal.c: /admin/v1/journal/..., answered by journald (audit). */
#define FE_JOURNAL_REPLY_TYPES                                                 \
	(IPC_TYPE_BIT(IPC_JOURNAL_VERIFY_REPORT) |                             \
	    IPC_TYPE_BIT(IPC_JOURNAL_CHECKPOINT_REPORT) |                      \
	    IPC_TYPE_BIT(IPC_JOURNAL_PUBKEY) |                                 \
	    IPC_TYPE_BIT(IPC_JOURNAL_EXPORT_PAGE) |                            \
	    IPC_TYPE_BIT(IPC_JOURNAL_BACKUP_RESULT) |                          \
	    IPC_TYPE_BIT(IPC_JOURNAL_PRUNE_RESULT))
/* endpoint: the path after /admin/v1/journal/. */
void fe_journal_http(
    struct fe_ctx *, struct evhttp_request *, const char *endpoint);
/* Handles a FE_JOURNAL_REPLY_TYPES message: returns 1, or 0 for any
 * other type. */
int fe_journal_reply(struct fe_ctx *, const struct ipc_msg *);
/* The journald channel is gone: requests waiting for it fail. */
void fe_journal_peer_lost(struct fe_ctx *);
void fe_journal_shutdown(struct fe_ctx *);

/* health.c: grpc.health.v1.Health/Watch. */
void fe_health_watch_message(struct fe_call *, const uint8_t *, size_t);
/* journald attached or went away: every watch gets its new status. */
void fe_health_changed(struct fe_ctx *);
void fe_health_unwatch(struct fe_call *);

/* reflection.c: gRPC server reflection (v1 and v1alpha). */
void fe_reflection_message(struct fe_call *, const uint8_t *, size_t);
void fe_reflection_free(struct fe_ctx *);

/* tls.c: OpenSSL on the listeners. */
struct bufferevent;
/* Initialises OpenSSL; before the sandbox. Returns 0 or -EIO. */
int fe_tls_init(void);
/* Applies IPC_TLS_CONFIG: builds the contexts, then (the first time)
 * enables the listeners. Returns 0, or -EINVAL for a first configuration
 * that does not load (a reload that does not load keeps the old one). */
int fe_tls_config(struct fe_ctx *, const Palyra__Ipc__TlsConfig *);
/* A server-side TLS bufferevent on fd (-1: evhttp sets it), or NULL. */
struct bufferevent *fe_tls_bufferevent(
    struct fe_ctx *, struct ssl_ctx_st *, int fd);
/* 1 when the handshake on bev selected ALPN "h2". */
int fe_tls_alpn_is_h2(struct bufferevent *);
void fe_tls_free(struct fe_ctx *);

/* reattach.c: RunStream starts that name an existing run. */
/* Takes the start of call (WAITING_START) with run_id set; ends the call
 * itself on any failure. */
void fe_reattach_start(struct fe_call *, const Palyra__V1__RunStart *);
/* The worker answered the call's start with an existing run (its
 * idempotency key): the call follows that run from seq 0 instead. */
void fe_reattach_follow(struct fe_call *, const char *run_id);
/* journald's notice of the end of the call's run skips events the call
 * was never sent (its worker died after their commit): the call reads
 * them, and the end, from the journal as a reattach after its last seq. */
void fe_reattach_catch_up(struct fe_call *);
void fe_reattach_page(struct fe_call *, const Palyra__Ipc__JournalRunPage *);
void fe_reattach_journal_failed(struct fe_call *);
/* IPC_RUN_ATTACHED from w. Returns 0, or -EPROTO for an answer to nothing
 * asked (the caller drops the worker). */
int fe_reattach_attached(
    struct fe_worker *w, uint32_t request_id, const Palyra__Ipc__RunAttached *);
/* A live event of a call still REATTACHING: held until the replay ends. */
void fe_reattach_live(struct fe_call *, const Palyra__Ipc__RunEventMsg *);
/* w's channel is gone: its answers count as "not the owner". */
void fe_reattach_worker_lost(struct fe_worker *w);
/* The call ends: its reattach state goes. */
void fe_reattach_end(struct fe_call *);

/* metrics.c: counters, and GET /metrics. */
/* A gRPC call ended with call->status (its trailers were submitted). */
void fe_metrics_grpc_done(struct fe_ctx *, const struct fe_call *);
/* A GOAWAY was submitted to conn's client (by h2.c, or by nghttp2 on
 * its own); counted once per connection. */
void fe_metrics_goaway(struct fe_conn *, uint32_t error_code);
/* GET /metrics. */
void fe_metrics_http(struct fe_ctx *, struct evhttp_request *);
/* Counts req by path group and status once its reply is complete. */
void fe_metrics_http_count(struct fe_ctx *, struct evhttp_request *);
/* journald's IPC_JOURNAL_STATS: returns 1, or 0 for another type. */
int fe_metrics_journal_reply(struct fe_ctx *, const struct ipc_msg *);
/* An IPC_PROCESS_LIST page: returns 1 when it answers a scrape, 0 when
 * it is not ours (processes.c's). */
int fe_metrics_process_page(
    struct fe_ctx *, uint32_t request_id, const Palyra__Ipc__ProcessList *);
/* At exit: scrapes still waiting are dropped without an answer. */
void fe_metrics_shutdown(struct fe_ctx *);

/* console.c, console_sse.c: /console/v1, the tenant-facing JSON API.
 * path: what follows /console/v1/. Calls of its requests (call->http set)
 * answer here instead of through h2.c. */
void fe_console_http(struct fe_ctx *, struct evhttp_request *, const char *path);
/* fe_rpc_token_info() set the call's identity: returns 1 when console.c
 * took the call over (login, identity, session transcript). */
int fe_console_authenticated(struct fe_call *);
/* A reply message of the call (fe_call_send_message()): returns 0,
 * -ENOBUFS (a slow reader, a full page) or -ENOMEM. */
int fe_console_send(struct fe_call *, const ProtobufCMessage *);
/* The call ended (fe_call_finish(), state CLOSING): the HTTP reply. */
void fe_console_finish(struct fe_call *);
/* A replay caught up (reattach.c): returns 1 when the call ends there
 * (a JSON page of events rather than a stream). */
int fe_console_replayed(struct fe_call *);
/* Reply bytes queued for the call's client (reattach.c's back-pressure). */
size_t fe_console_pending(const struct fe_call *);
/* The text/event-stream replies open now (the /metrics gauge). */
size_t fe_console_streams(const struct fe_ctx *);
/* IPC_JOURNAL_LIST_PAGE of a transcript: returns 1 when it was ours. */
int fe_console_list_reply(struct fe_ctx *, const struct ipc_msg *);
void fe_console_shutdown(struct fe_ctx *);

/* pbjson.c: a decoded protobuf-c message as JSON (jansson), or NULL. */
struct json_t *fe_pb_json(const ProtobufCMessage *);
/* The same with enum values as lower-case words without their type's
 * prefix (APPROVAL_STATE_PENDING: "pending"), as the console shows them. */
struct json_t *fe_pb_json_words(const ProtobufCMessage *);

#endif
