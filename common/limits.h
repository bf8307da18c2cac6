/*
 * limits.h: every numeric limit of palyrad, named, in one place.
 * Shared by all processes. Over a limit a session fails cleanly with a
 * clear error; the process does not.
 */
/*
 * GCC's own <limits.h> reaches for the system one with #include_next, and
 * GCC's search then passes through this directory too: hand such a lookup
 * on to the real header.
 */
#ifdef _GCC_NEXT_LIMITS_H
#include_next <limits.h>
#else
#ifndef PALYRA_LIMITS_H
#define PALYRA_LIMITS_H

/* IPC (common/ipc.c) */
#define IPC_MAX_PAYLOAD		(200 * 1024)	/* protobuf bytes; fits wmem_default */
#define IPC_MAX_FDS		2	/* descriptors per message */
#define IPC_QUEUE_HIGH_WATER	4096	/* queued outbound messages */
#define IPC_READ_BURST		256	/* messages read per wakeup */

/* Names */
#define NAME_MAX_LEN		64	/* tenant, agent, principal names */
#define TEXT_MAX_LEN		(64 * 1024)	/* run input text */

/* Config (common/config.c) */
#define CFG_MAX_FILE_SIZE	(1024 * 1024)
#define CFG_MAX_TOKEN_LEN	4096
#define CFG_MAX_TENANTS		10000
#define CFG_MAX_DEPTH		8	/* nested blocks */
#define CFG_MAX_PROVIDERS	64
#define CFG_MAX_AGENTS		256	/* per tenant */
#define CFG_MAX_FILES		256	/* files read, the main one too */
#define CFG_MAX_TOTAL_SIZE	(16 * 1024 * 1024)	/* all files */
#define CFG_MAX_FAILOVER	16	/* providers of one agent */
#define CFG_MAX_TOOL_RULES	256	/* tool rules of one agent */
#define CFG_MAX_PRICING		1024	/* pricing blocks */
#define CFG_MAX_WORKERS		64	/* `workers` of one tenant */
#define CFG_MAX_BUDGETS		1024	/* budgets of one tenant, all scopes */
#define CFG_MAX_FETCH_ALLOW	64	/* allow entries of one http-fetch block */
#define CFG_MAX_CONTENT_TYPES	32	/* content-types of one http-fetch block */
#define CFG_MAX_TIMEZONE_LEN	64	/* a tzdata name */

/* Supervisor */
#define SUP_RESTART_MIN_MS	100
#define SUP_RESTART_MAX_MS	30000
#define SUP_EARLY_BACKOFF_MS	1000	/* first delay after an early death */
#define SUP_PARK_AFTER		6	/* early deaths in a row park a worker */
#define SUP_WARM_MS		60000	/* alive this long: back-off resets */
#define SUP_STOP_DEADLINE_MS	5000
#define SUP_CGROUP_PATH_MAX	1024	/* a control group's directory */
/* A page of IPC_PROCESS_LIST: what fits one datagram with room to spare. */
#define SUP_STATUS_PAGE_BYTES	(IPC_MAX_PAYLOAD - 1024)

/* Front (gRPC and HTTP) */
#define FE_MAX_CONNECTIONS	1024
#define FE_MAX_STREAMS		128	/* concurrent streams per connection */
#define FE_GRPC_MAX_MESSAGE	(4 * 1024 * 1024)
/* A call's reply bytes the front holds at most, whatever else happens:
 * the last line of defence behind the flow control below. */
#define FE_STREAM_OUT_MAX	(8 * 1024 * 1024)
/* Flow control of a RunStream (front/call.c, worker/run.c): when a call's
 * unsent reply bytes (what its client's HTTP/2 window does not let through)
 * pass FE_FLOW_HIGH_WATER, the worker holding its run is told to pause it
 * (IPC_RUN_FLOW): no provider output until they fall to FE_FLOW_LOW_WATER.
 * A reattached call never pauses the run it follows; one that falls more
 * than FE_FLOW_FOLLOWER_MAX bytes behind ends with RESOURCE_EXHAUSTED and
 * may reattach from the last seq it received. */
#define FE_FLOW_HIGH_WATER	(256 * 1024)
#define FE_FLOW_LOW_WATER	(64 * 1024)
#define FE_FLOW_FOLLOWER_MAX	(1024 * 1024)
#define FE_HTTP_MAX_BODY	(64 * 1024)
#define FE_HTTP_MAX_HEADERS	(16 * 1024)
#define FE_TOKEN_MAX_LEN	256
#define FE_AUTH_TIMEOUT_MS	5000
/* Authentication failures per source address (an IPv4 address or an IPv6
 * /64), a token bucket: FE_AUTH_FAIL_BURST failures at once, refilled at
 * FE_AUTH_FAIL_PER_MIN a minute; an empty bucket refuses every attempt
 * from that address without looking the token up. The table of addresses
 * is bounded, the least recently failed evicted. Constants, not config,
 * so that tests reach them quickly; loopback is not exempt. */
#define FE_AUTH_FAIL_BURST	10
#define FE_AUTH_FAIL_PER_MIN	30
#define FE_AUTH_FAIL_TABLE	4096
/* Token expiry from POST /admin/v1/tokens: at most ten years. */
#define FE_TOKEN_EXPIRES_MAX_S	(10LL * 366 * 24 * 3600)
#define FE_CALL_POOL_MAX	256	/* finished calls kept for reuse */
#define FE_H2_OUTPUT_HIGH	(64 * 1024)	/* bytes before nghttp2 waits */
#define FE_HTTP_TIMEOUT_S	30	/* evhttp idle timeout */
/* HTTP listener abuse resistance (front/httpconn.c): at most
 * FE_CONN_PER_ADDR open connections from one source address (below) and
 * FE_MAX_CONNECTIONS in all, the next one closed at once; a connection must
 * send a whole request (headers and body) within FE_HTTP_REQUEST_S of its
 * opening or of its previous reply, else it is closed (slowloris; an idle
 * kept-alive connection too). */
#define FE_HTTP_REQUEST_S	10
/* HTTP/2 abuse resistance (front/h2.c). Over FE_CONN_PER_ADDR open gRPC
 * connections from one source (an IPv4 address or an IPv6 /64) a new one
 * is closed at once. A connection must send the preface and its SETTINGS
 * within FE_H2_PREFACE_S; one without an open stream for FE_H2_IDLE_S gets
 * GOAWAY(NO_ERROR). A request's header list (RFC 7541 sizes) is at most
 * FE_GRPC_MAX_HEADERS (advertised as SETTINGS_MAX_HEADER_LIST_SIZE; over
 * it the stream is reset), in at most FE_H2_MAX_CONTINUATIONS CONTINUATION
 * frames. More than FE_H2_RESETS_PER_S streams reset by the client within
 * one second (CVE-2023-44487) end the connection with GOAWAY
 * (ENHANCE_YOUR_CALM). SETTINGS and PING acknowledgements the client does
 * not read: at most FE_H2_MAX_OUTBOUND_ACK queued, and at most
 * FE_H2_MAX_SETTINGS entries in one SETTINGS frame. */
#define FE_CONN_PER_ADDR	64
#define FE_H2_PREFACE_S		10
#define FE_H2_IDLE_S		120
#define FE_GRPC_MAX_HEADERS	(16 * 1024)
#define FE_H2_MAX_CONTINUATIONS	8
#define FE_H2_RESETS_PER_S	200
#define FE_H2_MAX_OUTBOUND_ACK	1000
#define FE_H2_MAX_SETTINGS	32
/* After our GOAWAY, the client has this long to read it before we close. */
#define FE_H2_CLOSE_S		5
/* GET /admin/v1/processes: listings waiting for the supervisor, how long
 * one may wait, and the most processes one reply may carry. */
#define FE_PROCESS_REQUESTS_MAX	16
#define FE_PROCESS_TIMEOUT_MS	2000
/* GET /metrics: scrapes waiting for journald and the supervisor, and how
 * long one waits before it answers with what it has. */
#define FE_METRICS_SCRAPES_MAX	4
#define FE_METRICS_TIMEOUT_MS	2000
#define FE_PROCESSES_MAX	(CFG_MAX_TENANTS * CFG_MAX_WORKERS + 16)
/* /admin/v1/tenants: requests waiting for the supervisor and how long one
 * may wait (a create or delete writes STATE/tenants.conf with fsync). */
#define FE_TENANT_REQUESTS_MAX	16
#define FE_TENANT_TIMEOUT_MS	10000
/* A worker's channel closed: its calls wait this long for journald's
 * INTERRUPTED notice before they end with UNAVAILABLE. */
#define FE_WORKER_LOST_GRACE_MS	3000
#define FE_STOP_DRAIN_MS	3000	/* SIGTERM: calls in flight may end */
/* A RunStream reattach: live events held while the journal is replayed,
 * and how long journald and the workers may take to answer each step. */
#define FE_REATTACH_LIVE_MAX	4096
#define FE_REATTACH_TIMEOUT_MS	10000
/* The next page of a replay is read only once the call's unsent reply
 * bytes fell below this (back-pressure from a slow client); checked every
 * FE_REATTACH_DRAIN_POLL_MS. */
#define FE_REATTACH_OUT_HIGH	(256 * 1024)
#define FE_REATTACH_DRAIN_POLL_MS 10
/* AbortRun: the longest reason, in bytes (a RunStream cancel's too, and
 * an ApprovalDecision's). */
#define FE_RUN_REASON_MAX	1024
/* RunStream sizes the front checks before a worker sees them: client-side
 * tools of a start (count, name, description, JSON schema), the whole
 * start once encoded (it travels in one IPC message), a ClientToolResult
 * (its tool_call_id and content) and an ApprovalDecision's approval_id. */
#define FE_RUN_TOOLS_MAX	64
#define FE_RUN_TOOL_NAME_MAX	64
#define FE_RUN_TOOL_DESCRIPTION_MAX (4 * 1024)
#define FE_RUN_TOOL_SCHEMA_MAX	(16 * 1024)
#define FE_RUN_START_MAX	(IPC_MAX_PAYLOAD - 16 * 1024)
#define FE_TOOL_CALL_ID_MAX	256
#define FE_TOOL_RESULT_MAX	(64 * 1024)
#define FE_APPROVAL_ID_MAX	64
/* ListSessions: the largest page_size, and the page of a page_size 0. */
#define FE_SESSIONS_PAGE_MAX	100
#define FE_SESSIONS_PAGE_DEFAULT 50
/* /console/v1 (front/console.c): JSON bodies nest at most this deep; login
 * sessions kept in the front's memory (a full table refuses new logins),
 * their idle and absolute lifetimes; SSE streams open at once, per source
 * address and in all; the bytes an SSE stream may have queued for a slow
 * reader before it ends with an error event; a keep-alive comment on an
 * idle stream; events in one JSON page of /runs/ID/events. */
#define FE_CONSOLE_JSON_DEPTH_MAX	8
#define FE_CONSOLE_LOGINS_MAX		1024
#define FE_CONSOLE_LOGIN_IDLE_S		(30 * 60)
#define FE_CONSOLE_LOGIN_MAX_S		(12 * 3600)
#define FE_CONSOLE_SSE_PER_SOURCE	16
#define FE_CONSOLE_SSE_MAX		256
#define FE_CONSOLE_SSE_OUT_MAX		(1024 * 1024)
#define FE_CONSOLE_SSE_KEEPALIVE_S	15
#define FE_CONSOLE_EVENTS_PAGE_MAX	256
/* /admin/v1/journal/...: requests waiting for journald, how long a quick
 * one (pubkey, checkpoint, export page) and a job (verify, backup) may
 * wait for its answer. */
#define FE_JOURNAL_REQUESTS_MAX	16
#define FE_JOURNAL_TIMEOUT_MS	10000
#define FE_JOURNAL_JOB_TIMEOUT_MS (15 * 60 * 1000)
/* Service calls (front/services.c): the encoded request the front passes
 * on, by method: any (ApprovalsService, UsageService), PutSecret (a 64 KiB
 * value), IngestMemory (16 KiB of text, tags, source), CreateJob and
 * UpdateJob (a run input), every other one; how long a worker may take to
 * answer (an ingest or search may wait for an embedding provider): longer
 * than the worker's own bound, so that its answer says what timed out. */
#define FE_SERVICE_REQUEST_MAX		(IPC_MAX_PAYLOAD - 1024)
#define FE_VAULT_PUT_REQUEST_MAX	(68 * 1024)
#define FE_MEMORY_INGEST_REQUEST_MAX	(24 * 1024)
#define FE_CRON_JOB_REQUEST_MAX		(TEXT_MAX_LEN + 8 * 1024)
#define FE_SERVICE_SMALL_REQUEST_MAX	(8 * 1024)
#define FE_WORKER_SERVICE_TIMEOUT_MS	(WRK_MEMORY_TIMEOUT_MS + 5000)
/* Worker pools: calls of one tenant parked while a worker starts, how long
 * one may wait before it ends with UNAVAILABLE, and the live calls per
 * worker past which the front asks for another worker of the tenant. */
#define FE_PENDING_CALLS_MAX	256
#define FE_WORKER_START_TIMEOUT_MS 5000
/* A worker request unanswered this long is sent again while calls wait. */
#define FE_WORKER_WANT_RETRY_MS	250
#define FE_WORKER_BUSY_RUNS	64
/* palyractl status: a process starting for longer than this is reported
 * as a failure (a worker slot that is idle is not). */
#define CTL_STARTING_MAX_MS	FE_WORKER_START_TIMEOUT_MS

/* TLS (supervisor/tls.c reads, front/tls.c builds contexts): the largest
 * certificate chain or key file; the four of IPC_TLS_CONFIG fit one
 * datagram. */
#define TLS_PEM_MAX		(48 * 1024)
#define FE_TLS_HANDSHAKE_S	10	/* a TLS handshake, then h2 or HTTP */

/* Journal */
#define JNL_BATCH_MAX		1024	/* appends per transaction */
#define JNL_PAYLOAD_MAX		(160 * 1024)	/* encoded event bytes */
/* SIGTERM: appends are served until every peer closed, at most this long. */
#define JNL_STOP_DRAIN_MS	3000
/* Audit jobs (journald/admin.h): verifications and backups running at
 * once, events checked per turn of the loop, pages copied per backup step,
 * events of one export page, results of one checkpoint report page. */
#define JNL_AUDIT_JOBS_MAX	8
#define JNL_VERIFY_CHUNK	2048
#define JNL_BACKUP_STEP_PAGES	256
#define JNL_EXPORT_PAGE_EVENTS	512
#define JNL_CHECKPOINT_PAGE	256
#define JNL_CHECKPOINT_DEFAULT_MS (10 * 60 * 1000)
/* Redaction by value (journald/redact.c): shorter values are not
 * registered (they would blank out ordinary text), nor longer ones, nor
 * more than JNL_SECRETS_MAX of them. */
#define JNL_SECRET_MIN_LEN	8
#define JNL_SECRET_MAX_LEN	4096
#define JNL_SECRETS_MAX		1024
/* Prune (journald/prune.c): events deleted per transaction. */
#define JNL_PRUNE_BATCH		4096
/* Usage and budgets (journald/usage.c, budgets.c): runtime budgets of one
 * tenant (SetBudget), the largest budget limit (SQLite's integers), the
 * reservations one tenant may hold at once, rows of one GetUsage answer,
 * the longest model name recorded, and the largest token count or cost
 * one settle may add (far above any real call; keeps sums in range). */
#define JNL_BUDGETS_MAX		256
#define JNL_BUDGET_LIMIT_MAX	((uint64_t)INT64_MAX / 4)
#define JNL_RESERVATIONS_MAX	65536
#define JNL_USAGE_ROWS_MAX	1000
#define JNL_USAGE_MODEL_MAX	256
#define JNL_USAGE_CALL_MAX	((uint64_t)1 << 48)
/* Reattach reads: events of one run per page (and what fits a datagram). */
#define JNL_READ_PAGE_MAX	256
/* Session and run listings (journald/listing.c, front/listing.c): rows of
 * one page, and the longest cursor (hex of an 8-byte time and an id). */
#define JNL_LIST_PAGE_MAX	100
#define JNL_CURSOR_MAX		(2 * (8 + 64))
/* GET /admin/v1/tenants/NAME/{sessions,runs} waiting for journald. */
#define FE_LISTING_REQUESTS_MAX	16
/* GET /admin/v1/tokens: tokens of one page (a cursor names the next). */
#define JNL_TOKEN_PAGE_MAX	256
/*
 * Memory items (journald/memory*.c; DESIGN section 8): the bytes of an
 * item's text and of a query, tags of an item (each 1..JNL_MEMORY_TAG_MAX
 * bytes), the bytes of its source, the largest embedding dimension stored
 * (the largest a worker embeds), the items one tenant may hold whatever
 * its max-items says, top-k of a search (and its default), the words of a
 * query searched, the lexical candidates read from FTS5 and the rows
 * scanned for the vector score, items of one list page (and its default),
 * and the expiry sweep: JNL_MEMORY_SWEEP_AGAIN_MS after start, then
 * every JNL_MEMORY_SWEEP_MS, at most JNL_MEMORY_SWEEP_BATCH items a tenant
 * per pass (again after JNL_MEMORY_SWEEP_AGAIN_MS while more are due).
 */
#define JNL_MEMORY_TEXT_MAX	(16 * 1024)
#define JNL_MEMORY_TAGS_MAX	16
#define JNL_MEMORY_TAG_MAX	64
#define JNL_MEMORY_SOURCE_MAX	256
#define JNL_MEMORY_DIM_MAX	WRK_EMBED_DIM_MAX
#define JNL_MEMORY_MAX_ITEMS	100000
#define JNL_MEMORY_TOP_K_DEFAULT 5
#define JNL_MEMORY_TOP_K_MAX	100
#define JNL_MEMORY_WORDS_MAX	64
#define JNL_MEMORY_LEXICAL_MAX	1000
#define JNL_MEMORY_SCAN_MAX	20000
#define JNL_MEMORY_PAGE_DEFAULT	100
#define JNL_MEMORY_PAGE_MAX	1000
#define JNL_MEMORY_SWEEP_MS	60000
#define JNL_MEMORY_SWEEP_AGAIN_MS 1000
#define JNL_MEMORY_SWEEP_BATCH	1000

/* Agents (journald/agents.c): runtime agents of one tenant, the longest
 * system prompt, max-output-tokens and temperature ranges, and the
 * max-output-tokens of an agent created without one. */
#define AGENT_RUNTIME_MAX	64
#define AGENT_PROMPT_MAX	(16 * 1024)
#define AGENT_MAX_OUTPUT_MAX	1048576
#define AGENT_MAX_OUTPUT_DEFAULT 1024
#define AGENT_TEMPERATURE_MAX	2.0
/* An agent's run limits (palyrad.conf(5) max-turns, max-tool-calls,
 * max-wall-clock): ranges and defaults. */
#define AGENT_TURNS_MAX		64
#define AGENT_TURNS_DEFAULT	8
#define AGENT_TOOL_CALLS_MAX	1024
#define AGENT_TOOL_CALLS_DEFAULT 32
#define AGENT_WALL_CLOCK_MIN_MS	1000
#define AGENT_WALL_CLOCK_MAX_MS	(24ULL * 3600 * 1000)
#define AGENT_WALL_CLOCK_DEFAULT_MS (10ULL * 60 * 1000)

/* Worker */
#define WRK_MAX_RUNS		1024	/* concurrent runs per worker */
#define WRK_MAX_INFLIGHT	4096	/* unacknowledged journal appends */
#define WRK_SESSION_KEY_MAX_LEN	256	/* resolved into a session id */
/* SIGTERM: cancelled runs' events are journaled and forwarded, at most
 * this long. */
#define WRK_STOP_DRAIN_MS	2000
#define WRK_TOKEN_DELAY_MAX_MS	10000	/* offline provider token-delay */
#define WRK_RUN_FOLLOWERS_MAX	16	/* reattached calls following a run */
/* Outbound HTTP (worker/http.c): a response head (status line and
 * headers, of the final response) kept per transfer, and the largest CA
 * bundle read before the sandbox. */
#define WRK_HTTP_HEAD_MAX	(64 * 1024)
#define WRK_HTTP_CA_MAX		(4 * 1024 * 1024)
/*
 * http.fetch (worker/fetch.c, palyrad.conf(5) http-fetch): the URL of one
 * fetch (and of each redirect hop), the request headers a model may set
 * and their sizes, and the defaults of a block's max-size, timeout and
 * max-redirects. The body returned is also bounded by WRK_TOOL_RESULT_MAX
 * (worker/tools.h) once encoded.
 */
#define WRK_FETCH_URL_MAX	2048
#define WRK_FETCH_HEADERS_MAX	16
#define WRK_FETCH_HEADER_NAME_MAX 64
#define WRK_FETCH_HEADER_VALUE_MAX 1024
#define WRK_FETCH_MAX_BYTES_DEFAULT (1024 * 1024)
#define WRK_FETCH_TIMEOUT_DEFAULT_MS 10000
#define WRK_FETCH_REDIRECTS_DEFAULT 3
/*
 * Run features (worker/run.c, journald/runprep.c): the session history a
 * run's prompt is given (its newest earlier turns, at most this many and
 * this many bytes of input plus output text: the model's context budget;
 * the system prompt is always kept); follow-up input (RunStreamRequest
 * .input) queued on a live run, at most this many messages and bytes; the
 * nesting depth of a tool call's arguments; how long journald keeps a run
 * prepared but not yet journaled, and how many such runs it tracks.
 */
#define WRK_HISTORY_MAX_TURNS	16
#define WRK_HISTORY_MAX_BYTES	(96 * 1024)
#define WRK_RUN_INPUTS_MAX	8
#define WRK_RUN_INPUTS_BYTES_MAX (128 * 1024)
#define WRK_TOOL_ARGS_DEPTH	16
/*
 * The tool gate (worker/tools.c, worker/toolgate.c): client-side tools a
 * run may declare, their name and schema sizes, the arguments summary of
 * an approval, and the default approval and client-tool timeouts
 * (palyrad.conf(5) approval-timeout, client-tool-timeout).
 */
#define WRK_CLIENT_TOOLS_MAX	64
#define WRK_CLIENT_TOOL_NAME_MAX 64
#define WRK_CLIENT_TOOL_SCHEMA_MAX (16 * 1024)
#define WRK_CLIENT_TOOL_DESC_MAX (4 * 1024)
#define WRK_APPROVAL_SUMMARY_MAX 1024
#define WRK_APPROVAL_REASON_MAX	1024
#define WRK_APPROVAL_TIMEOUT_DEFAULT_MS (5ULL * 60 * 1000)
#define WRK_CLIENT_TOOL_TIMEOUT_DEFAULT_MS (60ULL * 1000)
#define JNL_RUNPREP_TTL_MS	30000
#define WRK_PREPARE_TIMEOUT_MS	(JNL_RUNPREP_TTL_MS + 5000)	/* its answer */
#define JNL_RUNPREP_PENDING_MAX	4096	/* per tenant */
#define JNL_RUNPREP_RETRY_MS	20	/* a start waiting on a pending key */
/*
 * Network providers (worker/provider.c, palyrad.conf(5) "Providers"): tool
 * calls of one reply and the bytes of one call's arguments, the text a
 * run may stream, the largest server-sent event and error body read.
 */
#define WRK_TOOL_CALLS_PER_REPLY 16
#define WRK_TOOL_ARGS_MAX	(32 * 1024)
#define WRK_REPLY_MAX		(128 * 1024)
#define WRK_SSE_EVENT_MAX	(64 * 1024)
#define WRK_ERROR_BODY_MAX	(8 * 1024)
#define WRK_PROVIDER_RESPONSE_MAX (32 * 1024 * 1024)
#define WRK_PROVIDER_CONCURRENT_DEFAULT 16	/* max-concurrent 0 */
#define WRK_ANTHROPIC_MAX_TOKENS 1024	/* max_tokens when the agent sets none */
/* Retries: attempts per provider and call, jittered exponential back-off,
 * Retry-After honoured up to a bound; the circuit breaker. */
#define WRK_PROVIDER_ATTEMPTS	3
#define WRK_BACKOFF_BASE_MS	250
#define WRK_BACKOFF_CAP_MS	8000
#define WRK_RETRY_AFTER_MAX_MS	30000
#define WRK_BREAKER_FAILURES	5	/* consecutive failures open it */
#define WRK_BREAKER_OPEN_MS	30000	/* then one half-open probe */
/*
 * Embeddings (worker/embed.c, worker/embed_offline.c): texts of one
 * wrk_embed() call, texts per provider request (a larger call is split
 * into several, reassembled in order), bytes of one text, the largest
 * vector dimension accepted from a provider, the response bytes read, and
 * the dimension of the offline lexical embedder.
 */
#define WRK_EMBED_TEXTS_MAX	1024
#define WRK_EMBED_BATCH		64
#define WRK_EMBED_TEXT_MAX	(32 * 1024)
#define WRK_EMBED_DIM_MAX	4096
#define WRK_EMBED_RESPONSE_MAX	(16 * 1024 * 1024)
#define WRK_EMBED_OFFLINE_DIM	256
/*
 * Memory in the worker (worker/memory*.c; the item limits are journald's
 * JNL_MEMORY_*): the bytes of a query, the longest TTL, requests in
 * flight per worker and how long one may take (embedding and journald),
 * and the recall section of a prompt and how long a run waits for it.
 */
#define WRK_MEMORY_QUERY_MAX	(4 * 1024)
#define WRK_MEMORY_TTL_MAX_MS	(3650ULL * 24 * 60 * 60 * 1000)
#define WRK_MEMORY_PENDING_MAX	256
#define WRK_MEMORY_TIMEOUT_MS	30000
#define WRK_RECALL_MAX_BYTES	4096
#define WRK_RECALL_TIMEOUT_MS	10000

/*
 * The tenant vault (worker/vault*.c, journald/vault.c): a secret's name
 * (1..VAULT_NAME_MAX bytes of [A-Za-z0-9._-], not starting with '.'), its
 * value and description, the secrets of one tenant, ListSecrets pages,
 * names of one VaultFetch, Put and Get calls a worker waits on at once,
 * how long it waits for journald's answer, and how long a run start waits
 * for the vault's values to be loaded (then: UNAVAILABLE).
 */
#define VAULT_NAME_MAX		128
#define VAULT_VALUE_MAX		65536
#define VAULT_DESCRIPTION_MAX	256
#define VAULT_ITEMS_MAX		1024
#define VAULT_PAGE_DEFAULT	100
#define VAULT_PAGE_MAX		1000
#define VAULT_FETCH_NAMES_MAX	64
#define WRK_VAULT_PENDING_MAX	256
#define WRK_VAULT_TIMEOUT_MS	10000
#define WRK_VAULT_LOAD_WAIT_MS	10000

/*
 * Cron (journald/cron*.c; DESIGN section 9): jobs of one tenant; a fire
 * more than JNL_CRON_GRACE_MS late is missed (misfire policy), not late;
 * late fires one plan may hold; the bounded scan of due times and its
 * jump; jitter and catch-up bounds; list pages; a worker's refusal
 * offered again after JNL_CRON_RETRY_MS, at most JNL_CRON_ATTEMPTS times;
 * the bytes of a fire's reason; IPC_WORKER_WANTED at most this often.
 */
#define JNL_CRON_JOBS_MAX	1000
#define JNL_CRON_GRACE_MS	2000
#define JNL_CRON_LATE_MAX	16
#define JNL_CRON_SCAN_MAX	100000
#define JNL_CRON_JUMP_MS	(30LL * 86400 * 1000)
#define JNL_CRON_JITTER_MAX_MS	3600000
#define JNL_CRON_CATCH_UP_MAX	100
#define JNL_CRON_CATCH_UP_DEFAULT 10
#define JNL_CRON_PAGE_DEFAULT	100
#define JNL_CRON_PAGE_MAX	1000
#define JNL_CRON_RETRY_MS	1000
#define JNL_CRON_ATTEMPTS	3
#define JNL_CRON_REASON_MAX	256
#define JNL_CRON_WANT_EVERY_MS	1000

/* Sandbox (common/sandbox.c) */
#define SBX_MAX_PORTS		64	/* -P: TCP ports a worker may connect to */
#define SBX_RO_DIRS_MAX		2	/* read-only host directories of a profile */
#define SBX_FACTS_MAX		32	/* applied or skipped steps reported */
#define SBX_FACT_LEN		80	/* bytes of one fact, NUL included */
#define SBX_NOFILE_WORKER	1024
#define SBX_NOFILE_FRONT	(FE_MAX_CONNECTIONS * 2 + 64)
#define SBX_NOFILE_JOURNALD	(CFG_MAX_TENANTS * 3 + 64)	/* db, wal, shm */
#define SBX_FSIZE_WORKER	(256L * 1024 * 1024)	/* largest scratch file */

#endif
#endif
