/*
 * journald.h: palyra-journald, the single SQLite writer (DESIGN section 8).
 *
 * One process owns system.db (tokens) and every tenant's journal.db. It is
 * reached only over IPC channels: the supervisor (configuration and peer
 * channels), the front (tokens) and one channel per tenant worker (journal
 * appends), several per tenant with `workers N`, told apart by the index
 * the supervisor gave. The tenant of a worker channel is the one the
 * supervisor named when it attached the channel; nothing a worker writes
 * can change it.
 *
 * Files: journald.c (main, context, channels), db.c (open, pragmas,
 * migrations), tenant.c (a tenant's journal: statements, chain head, run
 * cache), batch.c (group commit, acknowledgements, back-pressure),
 * append.c (checks, chain links, crash reconciliation), tokens.c
 * (system.db tokens), redact.c (redaction by value), quota in append.c,
 * runread.c (a run's events after a seq, for a reattaching RunStream),
 * listing.c and cursor.c (pages of sessions and runs for the admin API),
 * stats.c (run and commit counters for GET /metrics);
 * usage.h for usage, budgets and reservations (usage.c, usage_api.c,
 * budgets.c) and the tenants' time zones (zones.c);
 * approvals.h for approvals, grants, their export and the recovery of runs
 * that wait for an approval (approvals.c, approvals_api.c,
 * approvals_export.c, recover.c);
 * audit.h for verification, checkpoints, export, backup and prune;
 * memory.h for memory items, their search and expiry (memory.c,
 * memory_db.c, memory_search.c, memory_rank.c, memory_api.c).
 */
#ifndef PALYRA_JOURNALD_H
#define PALYRA_JOURNALD_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <sqlite3.h>

#include "chain.h"
#include "ipc.h"
#include "limits.h"
#include "redact.h"
#include "ipc.pb-c.h"

/*
 * Event priorities. ipc_chan creates its events at libevent's default
 * priority, which is nprio / 2; with three levels that is 1. Signals run at
 * 0, channel I/O at 1 and the group commit at 2, so the commit fires only
 * once every readable channel of the loop iteration has been served.
 */
#define JNL_PRIO_COUNT 3
#define JNL_PRIO_SIGNAL 0
#define JNL_PRIO_COMMIT 2

#define JNL_RUN_ID_MAX 64
#define JNL_RUN_STATUS_MAX PALYRA__V1__RUN_STATUS__RUN_STATUS_INTERRUPTED
#define JNL_RUN_BUCKETS 1024	/* run cache hash buckets per tenant */
#define JNL_RUN_CACHE_MAX 65536 /* cached runs per tenant */
#define JNL_BUSY_TIMEOUT_MS 5000
#define JNL_STOP_DEADLINE_MS 2000 /* flushing acks at shutdown */

enum jnl_db_kind {
	JNL_DB_SYSTEM = 0,
	JNL_DB_JOURNAL,
};

/* A run's state as journald knows it, cached while the run is live. */
struct jnl_run {
	struct jnl_run *next;	    /* hash bucket */
	struct jnl_run *dirty_next; /* runs row to update before COMMIT */
	int dirty;
	int status; /* Palyra__V1__RunStatus */
	uint64_t last_seq;
	int64_t updated_ms;
	char run_id[JNL_RUN_ID_MAX + 1];
};

/* Prepared statements of a journal.db, reused for every append. */
enum jnl_stmt {
	JNL_ST_BEGIN = 0,
	JNL_ST_COMMIT,
	JNL_ST_ROLLBACK,
	JNL_ST_RUN_GET,
	JNL_ST_RUN_INSERT,
	JNL_ST_RUN_UPDATE,
	JNL_ST_SESSION_INSERT,
	JNL_ST_SESSION_OWNER,
	JNL_ST_EVENT_INSERT,
	JNL_ST_HEAD,
	JNL_ST_USED_BYTES, /* journal-quota: pages in use * page size */
	JNL_ST_COUNT
};

/*
 * The batch of a tenant database: IDLE (no transaction), OPEN (BEGIN done,
 * appends inside, not yet visible to anyone). Commit moves OPEN -> IDLE and
 * acknowledges, a failure rolls back OPEN -> IDLE and refuses.
 */
enum jnl_batch_state {
	JNL_BATCH_IDLE = 0,
	JNL_BATCH_OPEN,
};

/*
 * stats.c: a tenant's runs by status for GET /metrics. live: runs now in
 * each non-terminal status (ACCEPTED .. WAITING_TOOL), from the runs
 * table at open, then kept by every committed status event; ended: runs
 * that ended in each terminal status (COMPLETED .. INTERRUPTED) since
 * journald started. The open batch's changes wait in batch_* until its
 * COMMIT, and are dropped by a rollback.
 */
#define JNL_STATS_LIVE 4
#define JNL_STATS_ENDED 4
#define JNL_COMMIT_BUCKETS 9 /* bounds in stats.c, plus +Inf */

struct jnl_run_stats {
	uint64_t live[JNL_STATS_LIVE];
	uint64_t ended[JNL_STATS_ENDED];
	int64_t batch_live[JNL_STATS_LIVE];
	uint64_t batch_ended[JNL_STATS_ENDED];
};

/* Group commits since journald started (stats.c). */
struct jnl_commit_stats {
	uint64_t buckets[JNL_COMMIT_BUCKETS + 1]; /* not cumulative */
	double seconds;
	uint64_t commits;
	uint64_t appends;
};

struct jnl_tenant {
	char name[NAME_MAX_LEN + 1];
	sqlite3 *db;
	sqlite3_stmt *st[JNL_ST_COUNT];
	enum jnl_batch_state batch;
	size_t batch_count; /* appends in the open batch */
	uint64_t head_seq;  /* chain head: last committed or pending */
	uint8_t head_hash[CHAIN_HASH_LEN];
	struct jnl_run *runs[JNL_RUN_BUCKETS];
	size_t nruns;
	struct jnl_run *dirty; /* runs with a pending row update */
	uint64_t quota;	       /* journal-quota bytes; 0: none */
	int full; /* the last failed batch failed for want of space */
	/* Its agents of palyrad.conf and providers (agents.c); NULL: none
	 * received yet. */
	Palyra__Ipc__TenantAgents *agents;
	struct jnl_run_stats stats; /* stats.c */
	/* usage.c: budgets, reservations and usage; NULL until used. The
	 * counters are GET /metrics' budget warnings and refusals. */
	struct jnl_usage *usage;
	uint64_t budget_warnings;
	uint64_t budget_refusals;
	struct timespec batch_began; /* CLOCK_MONOTONIC, at BEGIN */
	struct jnl_cron *cron; /* cron.c: its jobs; NULL until opened */
	struct jnl_memory *memory; /* memory_db.c: statements; NULL: none */
};

/* A run a worker channel started and has not ended: when the channel
 * closes, these runs (and only these) are interrupted. */
struct jnl_live_run {
	char run_id[JNL_RUN_ID_MAX + 1];
	char session_id[NAME_MAX_LEN + 1];
};

/*
 * A status event journald appended itself (reconciliation), told to the
 * front once its batch committed so that the run's call can end with it.
 */
struct jnl_notice {
	char run_id[JNL_RUN_ID_MAX + 1];
	char session_id[NAME_MAX_LEN + 1];
	uint64_t seq;
	int64_t timestamp_ms;
	int status;	    /* Palyra__V1__RunStatus */
	const char *reason; /* static text */
};

struct jnl_ctx;

/* An acknowledgement owed to a worker, sent after its batch committed. */
struct jnl_ack {
	struct jnl_worker *worker; /* NULL: internal append, no reply */
	struct jnl_notice *notice; /* owned; for the front, or NULL */
	struct jnl_tenant *tenant;
	uint32_t request_id;
	int ok;
	const char *error; /* static text */
	int code;	   /* Palyra__Ipc__JournalError */
	uint64_t chain_seq;
	uint8_t hash[CHAIN_HASH_LEN];
	/* The event as stored, when it differs from the one appended
	 * (redacted): packed palyra.v1.RunEvent, owned, sent back in the
	 * ack so that the worker forwards what was committed. */
	uint8_t *stored;
	size_t stored_len;
	/* A reply other than a JournalAck (approvals.c): called instead,
	 * once the batch committed (ok) or was refused (ok 0, error set);
	 * it owns and frees arg. */
	void (*deliver)(struct jnl_ctx *, struct jnl_ack *);
	void *arg;
};

/* A secret value to redact: struct redact_secret (redact.c, common). */
#define JNL_REDACTED REDACT_MARK

struct jnl_worker {
	struct jnl_ctx *ctx;
	struct jnl_tenant *tenant; /* from ATTACH_PEER only */
	uint32_t index;		   /* which of the tenant's workers */
	struct ipc_chan *chan;
	struct jnl_live_run *live; /* runs it started, not yet terminal */
	size_t nlive;
	size_t live_cap;
	int closing;		 /* ignore further messages */
	struct jnl_ack *backlog; /* acks the channel would not take */
	size_t nbacklog;
	size_t backlog_cap;
	struct jnl_worker *next;
};

struct jnl_ctx {
	struct event_base *base;
	const char *state_dir;
	int durability_full;
	int stopping;
	int exit_code;
	uint64_t stop_deadline_ms;
	int draining; /* SIGTERM: serving until peers close */
	uint64_t drain_deadline_ms;

	struct ipc_chan *parent;
	struct ipc_chan *front;

	sqlite3 *system_db;
	sqlite3_stmt *token_insert;
	sqlite3_stmt *token_lookup;

	struct jnl_tenant **tenants;
	size_t ntenants;
	size_t tenants_cap;
	struct jnl_worker *workers;
	struct jnl_worker *dead_workers; /* freed after the next commit */

	/* Tenants with an OPEN batch, in the order they opened. */
	struct jnl_tenant **open;
	size_t nopen;

	/* Acks owed, in arrival order; all belong to OPEN batches. */
	struct jnl_ack *acks;
	size_t nacks;
	size_t acks_cap;

	uint8_t *payload_buf; /* JNL_PAYLOAD_MAX, re-packed events */

	struct event *commit_ev;
	struct event *sigterm_ev;
	struct event *sigint_ev;
	struct event *stop_ev;
	struct event *drain_ev;

	struct jnl_audit *audit; /* audit.h: verify, checkpoints, export */

	struct redact_secret *secrets; /* longest first */
	size_t nsecrets;

	struct jnl_runprep *runprep; /* runprep.c, allocated on first use */
	struct jnl_commit_stats commit_stats; /* stats.c */
	struct jnl_zones *zones; /* usage.c: time zones read before the sandbox */
	struct jnl_cron_sched *cron; /* cron.c: the timer, fires to offer */
	struct event *memory_sweep_ev; /* memory.c: expiry sweep timer */
};

/* journald.c */
int journald_main(int argc, char **argv);
uint64_t jnl_now_ms(void);
int jnl_name_valid(const char *name);
struct jnl_tenant *jnl_tenant_find(struct jnl_ctx *, const char *name);
/* Stops reading w and frees its channel after the next commit. */
void jnl_worker_fail(struct jnl_ctx *, struct jnl_worker *);

/* runprep.c: IPC_RUN_PREPARE (session history, idempotency keys). */
void jnl_runprep_request(
    struct jnl_ctx *, struct jnl_worker *, const struct ipc_msg *);
/* append.c, after the runs row of run_id was inserted in the open batch:
 * stores the prepared run's input and key on it. 0, -ENOMEM or -EIO. */
int jnl_runprep_run_inserted(
    struct jnl_ctx *, struct jnl_tenant *, const char *run_id);
void jnl_runprep_worker_gone(struct jnl_ctx *, struct jnl_worker *);
void jnl_runprep_free(struct jnl_ctx *);
/* The session's earlier turns as a run's prompt gets them (RunPrepared
 * .turns, oldest first), leaving out the run exclude_run_id (recover.c).
 * 0 with *out and *nout (free with jnl_runprep_turns_free), -ENOMEM or
 * -EIO. */
int jnl_runprep_history(struct jnl_tenant *, const char *session_id,
    const char *principal, const char *exclude_run_id,
    Palyra__Ipc__HistoryTurn ***out, size_t *nout);
void jnl_runprep_turns_free(Palyra__Ipc__HistoryTurn **, size_t);

/* db.c */
/*
 * Opens (creating, mode 0600) and migrates path. Returns 0 and *out, -ENOTSUP
 * for a database newer than this program, or -EIO.
 */
int jnl_db_open(const char *path, enum jnl_db_kind kind, int durability_full,
    sqlite3 **out);
int jnl_db_set_durability(sqlite3 *db, int durability_full);
int jnl_db_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **out);
void jnl_db_close(sqlite3 *db);

/* tenant.c */
int jnl_tenant_open(struct jnl_ctx *, struct jnl_tenant *);
void jnl_tenant_close(struct jnl_tenant *);
/* Reloads the chain head from the last stored event. Returns 0 or -EIO. */
int jnl_tenant_load_head(struct jnl_tenant *);
int jnl_status_terminal(int status);
/* "ACCEPTED" for PALYRA__V1__RUN_STATUS__RUN_STATUS_ACCEPTED, ... */
const char *jnl_status_name(int status);
/* Steps a statement that returns no row, then resets it. Returns 0 or the
 * SQLite result code. */
int jnl_step_done(sqlite3_stmt *);
/*
 * Finds a run in the cache or the database (which sees the open batch's own
 * writes). Returns 0 with *out (NULL: no such run) or -EIO.
 */
int jnl_run_get(struct jnl_tenant *, const char *run_id, struct jnl_run **out);
struct jnl_run *jnl_run_cache_add(struct jnl_tenant *, const char *run_id,
    int status, uint64_t last_seq, int64_t updated_ms);
void jnl_run_cache_remove(struct jnl_tenant *, struct jnl_run *);
void jnl_run_cache_clear(struct jnl_tenant *);

/* batch.c */
#define JNL_E_STORAGE "journal storage failed"
#define JNL_E_FULL "journal storage full"
/*
 * 1 when db's last error says the disk is full or a write or fsync failed:
 * nothing of the batch reached the file, and a later batch may succeed
 * once space returns.
 */
int jnl_db_error_full(sqlite3 *db);
void jnl_schedule_commit(struct jnl_ctx *);
/* Opens t's batch (BEGIN) unless open. Returns 0 or -EIO. */
int jnl_batch_begin(struct jnl_ctx *, struct jnl_tenant *);
/* Rolls back t's batch and refuses every append in it. */
void jnl_batch_fail(struct jnl_ctx *, struct jnl_tenant *);
/* Commits every open batch, then sends every owed ack in order. */
void jnl_commit_all(struct jnl_ctx *);
/* Queues an ack until the next commit. Returns 0 or -ENOMEM. */
int jnl_ack_push(struct jnl_ctx *, const struct jnl_ack *);
/* Sends an ack now. Returns ipc_chan_send()'s result. */
int jnl_ack_send(struct jnl_worker *, const struct jnl_ack *);
void jnl_worker_drained(struct ipc_chan *, void *);

/* append.c */
void jnl_handle_append(
    struct jnl_ctx *, struct jnl_worker *, struct ipc_msg *);
/*
 * Appends status INTERRUPTED (with reason) to every run of t that is not
 * terminal; committed with the next batch. Returns 0 or -EIO.
 */
int jnl_reconcile(struct jnl_ctx *, struct jnl_tenant *, const char *reason);
/* The same for the runs worker channel w started and did not end. */
int jnl_reconcile_worker(
    struct jnl_ctx *, struct jnl_worker *, const char *reason);
/* Runs that wait for an approval (jnl_approvals_suspended) are left as
 * they are by both, for recover.c. */
/* Interrupts run_id of t whatever it waits for (reason static). 0 or
 * -EIO. */
int jnl_interrupt_run(struct jnl_ctx *, struct jnl_tenant *,
    const struct jnl_live_run *, const char *reason);
/* Adds a run to the runs w holds (recover.c). 0 or -ENOMEM. */
int jnl_live_add(struct jnl_worker *, const char *run_id,
    const char *session_id);

/* redact.c */
/* IPC_JOURNAL_SECRETS: replaces the registry (and wipes the message). */
void jnl_handle_secrets(struct jnl_ctx *, struct ipc_msg *);
void jnl_secrets_clear(struct jnl_ctx *);
/*
 * Replaces every registered value in ev's string fields by JNL_REDACTED.
 * ev must come from protobuf-c's unpack. Returns 1 when something was
 * redacted, 0 when not, -ENOMEM.
 */
int jnl_redact_event(const struct jnl_ctx *, Palyra__V1__RunEvent *ev);
/* Frees an ack's stored event. */
void jnl_ack_release(struct jnl_ack *);

/* cursor.c: listing cursors. An id is 1..JNL_CURSOR_ID_MAX bytes. */
#define JNL_CURSOR_ID_MAX 64
_Static_assert(JNL_CURSOR_MAX == 2 * (8 + JNL_CURSOR_ID_MAX), "cursor size");
/* Writes the cursor of (created_ms, id) into out. Returns 0 or -EINVAL
 * (id empty or too long, out smaller than JNL_CURSOR_MAX + 1). */
int jnl_cursor_encode(int64_t created_ms, const char *id, char *out,
    size_t size);
/* Reads a cursor. Returns 0 with *created_ms and id (NUL-terminated), or
 * -EINVAL for anything jnl_cursor_encode() would not have written. */
int jnl_cursor_decode(
    const char *text, int64_t *created_ms, char *id, size_t idsize);

/* listing.c: a page of a tenant's sessions or runs (IPC_JOURNAL_LIST_*). */
void jnl_list_request(struct jnl_ctx *, const struct ipc_msg *);
/* sessions.c: IPC_JOURNAL_SESSION_REQUEST from the front. */
void jnl_session_request(struct jnl_ctx *, const struct ipc_msg *);

/* agents.c: IPC_JOURNAL_AGENT_REQUEST from the front, and the
 * supervisor's IPC_TENANT_AGENTS (kept: m->msg is taken). */
void jnl_agent_request(struct jnl_ctx *, const struct ipc_msg *);
void jnl_tenant_agents(struct jnl_ctx *, struct ipc_msg *);
/* The runtime agent name of t as a run starts with it (what RESOLVE
 * answers), for recover.c: 1 with *out (free with
 * palyra__ipc__agent_config__free_unpacked), 0 when t has no runtime
 * agent of that name (a config agent or none), -EIO or -ENOMEM. */
int jnl_agent_runtime_config(struct jnl_tenant *, const char *name,
    Palyra__Ipc__AgentConfig **out);

/* runread.c: a run's committed events after a seq (reattach). */
void jnl_run_read_request(struct jnl_ctx *, const struct ipc_msg *);

/* stats.c: run and commit counters (IPC_JOURNAL_STATS_REQUEST). */
/* At open, before reconciliation: the live runs of t's runs table.
 * Returns 0 or -EIO. */
int jnl_stats_load(struct jnl_tenant *);
/* A status event in t's open batch moves a run from status from (-1: a
 * new run) to status to. */
void jnl_stats_run(struct jnl_tenant *, int from, int to);
/* t's batch committed (before its batch_count is reset), or rolled back. */
void jnl_stats_committed(struct jnl_ctx *, struct jnl_tenant *);
void jnl_stats_rolled_back(struct jnl_tenant *);
/* The histogram bucket of a commit latency in seconds (pure). */
size_t jnl_stats_bucket(double seconds);
void jnl_stats_request(struct jnl_ctx *, const struct ipc_msg *);

/* service.c: IPC_SERVICE_CALL from the front, routed by method to
 * approvals.c or usage.c; each answers with IPC_SERVICE_REPLY(s). */
void jnl_service_call(struct jnl_ctx *, const struct ipc_msg *);
/* Answers a ServiceCall (request_id) with status code and message, and
 * on OK the response message packed; more: another reply follows. */
int jnl_service_reply(struct jnl_ctx *, uint32_t request_id, uint32_t code,
    const char *message, const ProtobufCMessage *response, int more);
/*
 * dispatch.c: a service's methods: the index of the one called name among
 * n, or -1 after answering UNIMPLEMENTED; then its request decoded as
 * desc (free it with protobuf_c_message_free_unpacked), or NULL after
 * answering INVALID_ARGUMENT. *rc is then what the answer returned.
 */
struct jnl_method {
	const char *name;
	const ProtobufCMessageDescriptor *desc;
};
int jnl_service_method(struct jnl_ctx *, uint32_t request_id,
    const struct jnl_method *, size_t n, const char *name, int *rc);
ProtobufCMessage *jnl_service_request(struct jnl_ctx *, uint32_t request_id,
    const Palyra__Ipc__ServiceCall *, const ProtobufCMessageDescriptor *,
    int *rc);
/*
 * dispatch.c: a service's table, and the tenant checks it makes between
 * finding the tenant and decoding the request (NULL: none; nonzero after
 * answering, *rc what the answer returned). open finds the method, the
 * tenant of call (NOT_FOUND "unknown tenant" when the name is bad or no
 * tenant has it), checks and decodes: the method's index with *t and
 * *in, or -1 after an answer, *rc what it returned.
 */
struct jnl_service {
	const struct jnl_method *methods;
	size_t n;
	int (*check)(struct jnl_ctx *, uint32_t request_id,
	    const Palyra__Ipc__ServiceCall *, struct jnl_tenant *, int *rc);
};
int jnl_service_open(struct jnl_ctx *, uint32_t request_id,
    const Palyra__Ipc__ServiceCall *, const char *name,
    const struct jnl_service *, struct jnl_tenant **, ProtobufCMessage **in,
    int *rc);
/* dispatch.c: operator or admin role. */
int jnl_service_privileged(const Palyra__Ipc__ServiceCall *);
/*
 * dispatch.c: answers request_id of w (NULL: the front's call, or
 * none) through deliver, which owns arg, once t's open batch committed
 * or was refused, and schedules the commit. 0, or -ENOMEM (arg is then
 * the caller's).
 */
int jnl_ack_defer(struct jnl_ctx *, struct jnl_tenant *, struct jnl_worker *,
    uint32_t request_id, void (*deliver)(struct jnl_ctx *, struct jnl_ack *),
    void *arg);
/* dispatch.c: msg to a worker (none when w is NULL or closing); one whose
 * channel is full is dropped; what names the message in a warning. */
void jnl_worker_send(struct jnl_worker *, enum ipc_type, uint32_t request_id,
    const ProtobufCMessage *, const char *what);
int jnl_approvals_call(struct jnl_ctx *, uint32_t request_id,
    const Palyra__Ipc__ServiceCall *);
int jnl_usage_call(struct jnl_ctx *, uint32_t request_id,
    const Palyra__Ipc__ServiceCall *);

/* approvals.c: approval records, decisions, grants, export (issue 7). */
void jnl_approval_create(struct jnl_ctx *, struct jnl_worker *,
    const struct ipc_msg *);
void jnl_approval_decide(struct jnl_ctx *, struct jnl_worker *,
    const struct ipc_msg *);
/* A worker's channel closed: its runs that wait for an approval stay
 * WAITING_APPROVAL (not INTERRUPTED); journald asks the supervisor for a
 * worker (IPC_WORKER_WANTED) to recover them. */
void jnl_approvals_worker_gone(struct jnl_ctx *, struct jnl_worker *);
/* Whether run_id of t waits for an approval: reconciliation skips it. */
int jnl_approvals_suspended(struct jnl_tenant *, const char *run_id);
/* IPC_RUN_RECOVER: hands the worker the orphaned suspended runs. */
void jnl_recover_request(struct jnl_ctx *, struct jnl_worker *,
    const struct ipc_msg *);

/* usage.c: usage, budgets and reservations (issue 7). */
void jnl_budget_reserve(struct jnl_ctx *, struct jnl_worker *,
    const struct ipc_msg *);
void jnl_budget_settle(struct jnl_ctx *, struct jnl_worker *,
    const struct ipc_msg *);
/* Releases every reservation the worker still holds. */
void jnl_budget_worker_gone(struct jnl_ctx *, struct jnl_worker *);
/* Before the sandbox: reads the time zones (0 or -ENOMEM); at exit. */
int jnl_usage_init(struct jnl_ctx *);
void jnl_usage_free(struct jnl_ctx *);
/* t's batch was rolled back: its usage sums are read again. */
void jnl_usage_rolled_back(struct jnl_tenant *);
/* t's journal closes: its usage state goes. */
void jnl_usage_close(struct jnl_tenant *);

/* tokens.c */
int jnl_tokens_open(struct jnl_ctx *);
void jnl_tokens_close(struct jnl_ctx *);
void jnl_handle_token_store(struct jnl_ctx *, const struct ipc_msg *);
void jnl_handle_token_lookup(struct jnl_ctx *, const struct ipc_msg *);
void jnl_handle_token_list(struct jnl_ctx *, const struct ipc_msg *);
void jnl_handle_token_revoke(struct jnl_ctx *, const struct ipc_msg *);

/* memory.c: memory items (issue 8): storage, TTL expiry and hybrid
 * search for the workers; MemoryService but Ingest and Search. */
void jnl_memory_store(struct jnl_ctx *, struct jnl_worker *,
    const struct ipc_msg *);
void jnl_memory_query(struct jnl_ctx *, struct jnl_worker *,
    const struct ipc_msg *);
int jnl_memory_call(struct jnl_ctx *, uint32_t request_id,
    const Palyra__Ipc__ServiceCall *);
/* The expiry sweep's timer (0 or -ENOMEM), and its end at exit. */
int jnl_memory_init(struct jnl_ctx *);
void jnl_memory_free(struct jnl_ctx *);
/* t's journal closes: its memory statements go (tenant.c). */
void jnl_memory_close(struct jnl_tenant *);

/* vault.c: vault ciphertexts (issue 8); ListSecrets and DeleteSecret. */
void jnl_vault_store(struct jnl_ctx *, struct jnl_worker *,
    const struct ipc_msg *);
void jnl_vault_fetch(struct jnl_ctx *, struct jnl_worker *,
    const struct ipc_msg *);
int jnl_vault_call(struct jnl_ctx *, uint32_t request_id,
    const Palyra__Ipc__ServiceCall *);

/* cron.c: the cron scheduler (issue 8): fires recorded here, run by a
 * worker of the tenant (IPC_CRON_FIRE); CronService. */
void jnl_cron_fired(struct jnl_ctx *, struct jnl_worker *,
    const struct ipc_msg *);
void jnl_cron_worker_gone(struct jnl_ctx *, struct jnl_worker *);
int jnl_cron_call(struct jnl_ctx *, uint32_t request_id,
    const Palyra__Ipc__ServiceCall *);
/* At a tenant's open (after reconciliation): loads its jobs, offers its
 * pending fires again, arms the timer. */
void jnl_cron_tenant_open(struct jnl_ctx *, struct jnl_tenant *);
/* A worker channel attached: fires waiting for a worker go to it. */
void jnl_cron_worker_attached(struct jnl_ctx *, struct jnl_worker *);
/* append.c, in the batch of run_id's terminal status: its fire becomes
 * done (COMPLETED) or failed. 0 or -EIO. */
int jnl_cron_run_ended(struct jnl_tenant *, const char *run_id, int status);
void jnl_cron_free(struct jnl_ctx *);

#endif
