/*
 * worker.h: palyra-worker, one tenant's orchestration process (DESIGN
 * sections 2 and 9).
 *
 * The worker runs sandboxed under its tenant's uid. It talks only over the
 * descriptors the supervisor hands it: PROC_FD_PARENT (the supervisor), one
 * channel to palyra-journald and one to palyra-front. It never opens a
 * database; every event of every run goes through journald first and reaches
 * the front only once journald acknowledged its commit.
 *
 *   worker.c   main, the context, the three channels and their messages
 *   run.c      the run state machine: start, transitions, cancel, deadline
 *   append.c   the journal pipeline: appends, in-order acks, forwarding
 *   offline.c  the built-in deterministic offline provider
 *   provider.c the network providers: turn loop, retries, failover
 *   openai.c, anthropic.c, proto.c, retry.c  their protocols and policy
 *   tools.c, toolgate.c  the tool gate: registry, policy, approvals,
 *              client-side tools (tools.h)
 *   recover.c  runs waiting for an approval, taken over after their
 *              worker died
 *   budget.c   budget reservations of provider calls (budget.h)
 *   embed.c, embed_offline.c  text embeddings (embed.h)
 *   memory.c, memory_service.c, memory_tools.c  memory ingest and search,
 *              the memory tools and recall (memory.h)
 */
#ifndef PALYRA_WORKER_H
#define PALYRA_WORKER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "grpc_status.h"
#include "ipc.h"
#include "limits.h"

#include "ipc.pb-c.h"

/*
 * Provider output (tokens, final, usage) may only fill the journal pipeline
 * up to this many in-flight appends; the rest is kept for status events
 * caused by control (cancel, deadline, failure), which cannot wait.
 */
#define WRK_INFLIGHT_RESERVE	(WRK_MAX_INFLIGHT / 4)
#define WRK_INFLIGHT_PROVIDER	(WRK_MAX_INFLIGHT - WRK_INFLIGHT_RESERVE)

/* The length of generated run and session ids: 16 bytes in lower hex. */
#define WRK_ID_LEN		32


/* The run state machine (DESIGN section 9); values match palyra.v1. */
enum wrk_run_state {
	WRK_RUN_ACCEPTED = 1,
	WRK_RUN_IN_PROGRESS,
	WRK_RUN_WAITING_APPROVAL,
	WRK_RUN_WAITING_TOOL,
	WRK_RUN_COMPLETED,
	WRK_RUN_FAILED,
	WRK_RUN_CANCELLED,
	WRK_RUN_INTERRUPTED,
};

enum wrk_event_kind {
	WRK_EVENT_STATUS = 0,
	WRK_EVENT_TOKEN,
	WRK_EVENT_FINAL,
	WRK_EVENT_USAGE,
	WRK_EVENT_NOTE,		/* AppendEvent: text, and author */
	WRK_EVENT_INPUT,	/* follow-up input taken: text */
	WRK_EVENT_TOOL_CALL,	/* text: arguments; tool_id, tool_name */
	WRK_EVENT_TOOL_RESULT,	/* text: content; tool_id, tool_name, is_error */
	WRK_EVENT_ERROR,	/* text: message; grpc_status: its code */
	WRK_EVENT_BUDGET_WARNING, /* text: message; budget_id, unit, used,
				   * limit */
	WRK_EVENT_APPROVAL_REQUEST,	/* detail: ApprovalRequest */
	WRK_EVENT_APPROVAL_DECIDED,	/* detail: ApprovalDecided */
};

/* One run event as the worker keeps it until journald acknowledged it. */
struct wrk_event {
	enum wrk_event_kind	 kind;
	uint64_t		 seq;
	int64_t			 timestamp_ms;
	enum wrk_run_state	 status;	/* STATUS */
	/* The reason, token or final text; owned. */
	char			*text;
	uint64_t		 input_tokens;	/* USAGE */
	uint64_t		 output_tokens;
	char			*author;	/* NOTE; owned */
	char			*tool_id;	/* TOOL_*; owned */
	char			*tool_name;	/* TOOL_*; owned */
	int			 is_error;	/* TOOL_RESULT */
	uint32_t		 grpc_status;	/* ERROR */
	char			*budget_id;	/* BUDGET_WARNING; owned */
	char			*unit;		/* BUDGET_WARNING; owned */
	uint64_t		 used;		/* BUDGET_WARNING */
	uint64_t		 limit;
	/* APPROVAL_*: an owned copy of the message (unpacked). */
	ProtobufCMessage	*detail;
};

struct wrk_run;

/* One earlier turn of the run's session, for the prompt (RunPrepared). */
struct wrk_turn {
	char			*input;
	char			*output;
};

/*
 * A model provider. start() begins producing output for run and reports it
 * through the wrk_run_token/complete/fail sink functions below, never
 * blocking the loop. stop() releases everything the provider holds for the
 * run; after it no callback may happen; it is called exactly once for every
 * started run, when the run ends for any reason (also after the provider
 * itself completed it). resume() is called when the journal pipeline has
 * room again after wrk_run_may_emit() said no.
 *
 * A sink function that returns 1 ended the run: the provider's state is
 * already released and the provider must return without touching it.
 */
struct wrk_provider_ops {
	const char	*type;
	int		(*start)(struct wrk_run *);	/* 0 or -errno */
	void		(*stop)(struct wrk_run *);
	void		(*resume)(struct wrk_run *);
	/* Rebuilds the provider's state of a run recovered after its worker
	 * died (recover.c), from rr's committed events, up to the tool call
	 * whose approval it waits for (rr->approval), and resumes that wait
	 * with wrk_tool_recover(). 0 or -errno (the run is then failed). */
	int		(*recover)(struct wrk_run *,
			    const Palyra__Ipc__RecoveredRun *rr);
};

extern const struct wrk_provider_ops wrk_offline_provider;
/* openai, anthropic, openai-compatible (provider.c). */
extern const struct wrk_provider_ops wrk_net_provider;

struct wrk_ctx;
struct wrk_tool_state;
struct wrk_budget_state;
struct wrk_budget_orphan;
struct wrk_fetch_state;

/*
 * How a detached start (wrk_run_start_detached: a cron fire, no client)
 * ended, told once: grpc_status 0 with run_id (the new run, its ACCEPTED
 * sent to journald; or the existing run its idempotency key names), or
 * a refusal with message (run_id NULL).
 */
typedef void	(*wrk_run_started_fn)(struct wrk_ctx *, uint32_t started_id,
		    uint32_t grpc_status, const char *message,
		    const char *run_id);

/* Who hears of a start: the front's call, or a detached callback. */
struct wrk_start_how {
	uint32_t		 call_id;
	wrk_run_started_fn	 started;	/* NULL: the call */
	uint32_t		 started_id;
	int			 unattended_deny;
};

/* A client-side tool declared in RunStart.tools; owned copies. */
struct wrk_client_tool {
	char			*name;
	char			*description;
	char			*parameters_json;	/* "{}" when none */
};

struct wrk_run {
	TAILQ_ENTRY(wrk_run)	 entry;
	struct wrk_ctx		*ctx;
	char			 run_id[WRK_ID_LEN + 1];
	char			 session_id[NAME_MAX_LEN + 1];
	char			*principal;
	char			*agent;
	char			*system_prompt;
	char			*input;
	uint32_t		 max_output_tokens;	/* 0: no limit */
	uint32_t		 token_delay_ms;	/* offline: between tokens */
	char			*provider_name;
	char			*model;
	int			 cancel_on_disconnect;

	double			 temperature;
	/* The agent's run limits (palyrad.conf(5) max-turns, max-tool-calls,
	 * max-wall-clock): provider calls and tool calls the providers
	 * count, and the wall clock armed at launch (wallclock_ev). */
	uint32_t		 max_turns;
	uint32_t		 max_tool_calls;
	uint64_t		 max_wall_clock_ms;
	struct event		*wallclock_ev;
	/* The agent's ordered failover list (provider names); none: the
	 * built-in offline model. */
	char			**providers;
	size_t			 nproviders;
	/* The session's earlier turns, oldest first, trimmed by journald
	 * to the context budget (RunPrepare); filled before start(). */
	struct wrk_turn		*history;
	size_t			 nhistory;
	/* Follow-up input (IPC_RUN_INPUT) not yet taken by the provider,
	 * oldest first; taken as the next user turn after the current one. */
	char			**inputs;
	size_t			 ninputs;
	/* RunPrepare (prepare.c): the run waits for journald's answer
	 * (prepare_id) before its first event; its start's key and deadline
	 * (0: none) are kept for it. */
	int			 preparing;
	uint32_t		 prepare_id;
	struct event		*prepare_ev;	/* WRK_PREPARE_TIMEOUT_MS */
	char			*idempotency_key;
	int64_t			 deadline_ms;
	/* The client stopped reading (IPC_RUN_FLOW): providers produce no
	 * output until it is cleared; then resume() is called, if
	 * wrk_run_may_emit() said no meanwhile (flow_stalled). */
	int			 flow_paused;
	int			 flow_stalled;

	enum wrk_run_state	 state;
	uint64_t		 next_seq;

	/* The front's call that receives this run's events, if any. */
	int			 has_call;
	uint32_t		 call_id;
	/* Reattached front calls that receive them too (IPC_RUN_ATTACH),
	 * and the seq of the last event whose acknowledgement was handled:
	 * every event up to it went to the front already. */
	uint32_t		 followers[WRK_RUN_FOLLOWERS_MAX];
	size_t			 nfollowers;
	uint64_t		 acked_seq;

	const struct wrk_provider_ops *provider;
	void			*provider_state;
	int			 provider_running;
	int			 stalled;	/* waits for room */
	int			 refused;	/* an event was refused */
	int			 session_named;	/* client gave session_id */

	size_t			 inflight;	/* unacked appends */
	int			 has_parked;	/* status awaits room */
	struct wrk_event	 parked;

	struct event		*deadline_ev;

	/* Tools (tools.c): the agent's config as the run started with it
	 * (an owned copy: tool rules, timeouts, http-fetch), the run's
	 * client-side tools, the call in flight through the gate, and the
	 * declarations offered to the model (built once, owned). */
	Palyra__Ipc__AgentConfig *agent_cfg;
	struct wrk_client_tool	*client_tools;
	size_t			 nclient_tools;
	struct wrk_tool_state	*tool;
	char			*tools_json;
	/* Rebuilt after its worker died (recover.c). */
	int			 recovered;
	/* Budgets (budget.c): the reservation of the provider call in
	 * flight, and the soft budgets already warned about. */
	struct wrk_budget_state	*budget;
	/* wrk_run_fail_status(): the run's own call ends with this gRPC
	 * status and message after its last event, instead of OK. */
	uint32_t		 fail_grpc_status;
	char			*fail_message;
	/* http.fetch (fetch.c): the fetch in flight. */
	struct wrk_fetch_state	*fetch;
	/* A detached start (cron.c): told once how it started, then NULL.
	 * unattended_deny: a tool whose policy is `ask` is denied at once,
	 * nobody can approve (toolgate.c). */
	wrk_run_started_fn	 started;
	uint32_t		 started_id;
	int			 unattended_deny;	/* The vault (vault_redact.c): a token's tail held back because it
	 * begins a vault value (owned, wiped), the flush of that tail in
	 * progress, and since when the start waits for the vault's values
	 * (wrk_vault_hold). */
	char			*vault_carry;
	int			 vault_flushing;
	int64_t			 vault_wait_ms;
};

TAILQ_HEAD(wrk_run_list, wrk_run);

/* An append sent to journald, awaiting its acknowledgement. */
struct wrk_append {
	uint32_t		 request_id;
	struct wrk_run		*run;
	struct wrk_event	 event;
};

struct sbx_facts;

struct wrk_ctx {
	struct event_base	*base;
	const char		*tenant;
	int			 exit_code;

	struct ipc_chan		*supervisor;
	struct ipc_chan		*journald;
	struct ipc_chan		*front;
	int			 journald_paused;

	Palyra__Ipc__WorkerConfig *config;	/* NULL until it arrives */
	int			 ready_sent;
	struct sbx_facts	*sandbox;	/* for READY; worker_main's */
	/* The network providers' HTTP engine, their concurrency caps and
	 * circuit breakers (provider.c); NULL until a run needs them. */
	struct wrk_net		*net;
	/* The embedders' HTTP engine and breakers (embed.c); NULL until
	 * an embedding is asked for. */
	struct wrk_embedder	*embed;
	/* Memory requests in flight (memory.c); NULL until the first. */
	struct wrk_memory_state	*memory;
	/* The tenant vault (vault.c): data key, values, requests in flight;
	 * NULL until the configuration arrived. */
	struct wrk_vault	*vault;

	struct wrk_run_list	 runs;		/* live and draining */
	size_t			 nlive;		/* not terminal */
	size_t			 nstalled;
	size_t			 nparked;

	/* FIFO of in-flight appends, in the order journald acks them. */
	struct wrk_append	*fifo;
	size_t			 fifo_head;
	size_t			 fifo_len;
	uint32_t		 append_counter;
	uint32_t		 prepare_counter;	/* RunPrepare ids */
	uint32_t		 tool_counter;	/* ApprovalCreate/Decide ids */
	uint32_t		 budget_counter;	/* BudgetReserve ids */
	/* Reservations asked for by runs that ended before the answer
	 * (budget.c): settled at zero when it comes. */
	struct wrk_budget_orphan *budget_orphans;
	uint32_t		 recover_id;	/* RunRecover; 0: done */
	int			 recover_sent;	/* to this journald */
	struct event		*kick_ev;	/* parked, stalled */

	struct event		*sigterm_ev;
	struct event		*sigint_ev;

	/* Retirement (-i): idle this long, the worker exits PROC_EXIT_IDLE;
	 * 0: never. Idle means no live run, no append in flight and nothing
	 * queued for the front. */
	uint64_t		 idle_timeout_ms;
	int64_t			 busy_last_ms;	/* last time it was not idle */
	struct event		*idle_ev;

	/* SIGTERM: no new runs; live ones end CANCELLED (those waiting for an
	 * approval are left to the next worker: recover.c), then exit. */
	int			 draining;
	int64_t			 drain_deadline_ms;
	struct event		*drain_ev;
};

/* worker.c */
int		 worker_main(int argc, char **argv);
int64_t		 wrk_now_ms(void);
void		 wrk_front_error(struct wrk_ctx *, uint32_t call_id,
		    uint32_t grpc_status, const char *message);
void		 wrk_call_error(struct wrk_run *, uint32_t grpc_status,
		    const char *message);
void		 wrk_journald_lost(struct wrk_ctx *, const char *why);

/* run.c */
const char	*wrk_run_state_name(enum wrk_run_state);
int		 wrk_run_terminal(enum wrk_run_state);
int		 wrk_run_transition(struct wrk_run *, enum wrk_run_state to,
		    const char *reason);
int		 wrk_run_start(struct wrk_ctx *, uint32_t call_id,
		    const Palyra__Ipc__RunStartRequest *);
/*
 * A run with no client (cron fires): the checks and path of
 * wrk_run_start, has_call 0; started is told once how the start ended
 * (also synchronously, for a refusal). Returns 0, or -EBADMSG (no start
 * or no callback: nothing is told).
 */
int		 wrk_run_start_detached(struct wrk_ctx *,
		    const Palyra__Ipc__RunStartRequest *, int unattended_deny,
		    wrk_run_started_fn started, uint32_t started_id);
/* prepare.c: the idempotency key of a detached start names an existing
 * run: its callback is told that run (before the run is dropped). */
void		 wrk_run_report_existing(struct wrk_run *,
		    const char *existing_run_id);
int		 wrk_run_cancel(struct wrk_ctx *, uint32_t call_id,
		    const Palyra__Ipc__RunCancelRequest *);
void		 wrk_run_front_lost(struct wrk_ctx *);
/* IPC_RUN_ATTACH: answers IPC_RUN_ATTACHED. Returns 0, or -EBADMSG for a
 * call id already in use (the caller drops the front). */
int		 wrk_run_attach(struct wrk_ctx *, uint32_t call_id,
		    const Palyra__Ipc__RunAttachRequest *);
/* IPC_RUN_ABORT: cancels the run if held here, answers IPC_RUN_ABORTED.
 * Returns 0. */
int		 wrk_run_note(struct wrk_ctx *, uint32_t request_id,
		    const Palyra__Ipc__RunNoteRequest *);
int		 wrk_run_abort(struct wrk_ctx *, uint32_t request_id,
		    const Palyra__Ipc__RunAbortRequest *);
/* IPC_RUN_FLOW from the front for the run's own call. Returns 0. */
int		 wrk_run_flow(struct wrk_ctx *, uint32_t call_id,
		    const Palyra__Ipc__RunFlow *);
/* Sends msg to every follower of run; the last event ends them all. */
void		 wrk_run_forward_followers(struct wrk_run *,
		    const Palyra__Ipc__RunEventMsg *);
void		 wrk_run_abandon_all(struct wrk_ctx *);
void		 wrk_run_cancel_all(struct wrk_ctx *, const char *reason);
void		 wrk_run_maybe_free(struct wrk_run *);
void		 wrk_run_free_all(struct wrk_ctx *);
int		 wrk_session_id(const char *tenant, const char *principal,
		    const char *session_id, const char *session_key,
		    char out[NAME_MAX_LEN + 1]);
int		 wrk_session_id_valid(const char *);

/* The run's first events and its provider, once prepared (prepare.c). */
void		 wrk_run_launch(struct wrk_run *);
/* A run that ends before its first event (prepare.c): no event is
 * journaled; the call, if still there, gets grpc_status. Frees run. */
void		 wrk_run_drop(struct wrk_run *, uint32_t grpc_status,
		    const char *message);

/* prepare.c: session history, idempotency keys, follow-up input. */
/* Asks journald for the run's history and key (IPC_RUN_PREPARE); the
 * run starts on the answer. Returns 0, or a negative error (the caller
 * fails the run's call). */
int		 wrk_prepare_send(struct wrk_run *);
/* IPC_RUN_PREPARED. Returns 0. */
int		 wrk_prepare_answer(struct wrk_ctx *, uint32_t request_id,
		    const Palyra__Ipc__RunPrepared *);
/* IPC_RUN_INPUT: queues input on the call's live run and journals it.
 * Returns 0, or -EBADMSG for a malformed request. */
int		 wrk_run_input(struct wrk_ctx *, uint32_t call_id,
		    const Palyra__Ipc__RunInput *);
/* Takes the oldest queued follow-up input (the caller frees it), or NULL
 * when none waits. */
char		*wrk_run_next_input(struct wrk_run *);
/* Journals the input queued while the run prepared (after IN_PROGRESS). */
void		 wrk_prepare_journal_inputs(struct wrk_run *);

/* Sink for providers (run.c). */
int		 wrk_run_may_emit(struct wrk_run *, size_t nevents);
int		 wrk_run_token(struct wrk_run *, const char *text,
		    size_t len);
int		 wrk_run_complete(struct wrk_run *, const char *text,
		    size_t len, uint64_t input_tokens, uint64_t output_tokens);
int		 wrk_run_fail(struct wrk_run *, const char *reason);
/* A duration as a run's reason says it: "1.5 s", "10 min", "2 h". */
void		 wrk_format_duration(char *buf, size_t size, uint64_t ms);
/* A tool call of the model and its result (TOOL_CALL, TOOL_RESULT), as
 * wrk_run_token: 0; -EAGAIN (not taken: wait for resume); 1 (run ended). */
int		 wrk_run_tool_call(struct wrk_run *, const char *id,
		    const char *name, const char *arguments_json);
int		 wrk_run_tool_result(struct wrk_run *, const char *id,
		    const char *name, int is_error, const char *content);
/* The tool gate's events (toolgate.c): ApprovalRequest and
 * ApprovalDecided, as wrk_run_token (but also while the run waits): 0,
 * -EAGAIN or 1. */
int		 wrk_run_approval_request(struct wrk_run *,
		    const Palyra__V1__ApprovalRequest *);
int		 wrk_run_approval_decided(struct wrk_run *,
		    const Palyra__V1__ApprovalDecided *);
/* A soft budget crossed (budget.c): a BudgetWarning event (run.c), as
 * wrk_run_token: 0, -EAGAIN or 1. */
int		 wrk_run_budget_warning(struct wrk_run *,
		    const Palyra__V1__BudgetWarning *);
/* Fails the run with an ErrorEvent (code: the gRPC status name) and
 * Status FAILED with reason; the run's call ends with grpc_status and
 * reason instead of OK (budget refusals: RESOURCE_EXHAUSTED). As
 * wrk_run_fail. */
int		 wrk_run_fail_status(struct wrk_run *, uint32_t grpc_status,
		    const char *reason);
/* The answer to one turn when more input waits (the run goes on):
 * appends its FinalMessage. Returns 0, -EAGAIN (no room: the provider
 * waits for resume) or 1 when the run ended. */
int		 wrk_run_final(struct wrk_run *, const char *text, size_t len);

/* append.c */
int		 wrk_append_init(struct wrk_ctx *);
void		 wrk_append_fini(struct wrk_ctx *);
int		 wrk_emit(struct wrk_run *, struct wrk_event *);
size_t		 wrk_append_room(const struct wrk_ctx *);
int		 wrk_append_ack(struct wrk_ctx *, uint32_t request_id,
		    const Palyra__Ipc__JournalAck *);
void		 wrk_append_drop_all(struct wrk_ctx *);
void		 wrk_append_kick(struct wrk_ctx *);
void		 wrk_event_clear(struct wrk_event *);

/* A run rebuilt by recover.c (run.c): see there. */
int		 wrk_run_restore(struct wrk_ctx *,
		    const Palyra__Ipc__RecoveredRun *,
		    const Palyra__Ipc__AgentConfig *, int64_t started_ms,
		    struct wrk_run **);

/* recover.c: runs waiting for an approval whose worker died. */
/* Sends IPC_RUN_RECOVER once the WorkerConfig arrived. 0 or -errno. */
int		 wrk_recover_send(struct wrk_ctx *);
/* The ToolCall event of rr whose id is the pending approval's, or NULL
 * (for the providers' recover ops). */
const Palyra__V1__ToolCall *wrk_recover_pending_call(
		    const Palyra__Ipc__RecoveredRun *rr);
/* IPC_RUN_RECOVERED: rebuilds one run (it joins ctx->runs, WAITING_APPROVAL,
 * with no call: clients follow it by reattaching). Returns 0 or -EBADMSG. */
int		 wrk_recover_answer(struct wrk_ctx *, uint32_t request_id,
		    const Palyra__Ipc__RunRecovered *);

/* provider.c */
int		 wrk_net_type(const char *type);	/* 1: served here */
void		 wrk_net_free(struct wrk_ctx *);
/* The worker's one HTTP engine (worker/http.h), made on first use; also
 * http.fetch's (fetch.c). NULL when it cannot be made. */
struct wrk_http	*wrk_net_http(struct wrk_ctx *);

/* offline.c */
size_t		 wrk_offline_count_words(const char *);
size_t		 wrk_offline_next_token(const char *text, size_t len,
		    size_t pos);

/*
 * service.c: the service methods the front routes to a worker
 * (IPC_SERVICE_CALL from the front; DESIGN section 6): MemoryService
 * IngestMemory and SearchMemory (memory.c), VaultService PutSecret and
 * GetSecret (vault.c). The tenant is the worker's, whatever the message
 * says; principal and role are the front's verified token's.
 */
int		 wrk_service_call(struct wrk_ctx *, uint32_t request_id,
		    const Palyra__Ipc__ServiceCall *);
/* Answers the front's service call request_id (IPC_SERVICE_REPLY): code a
 * gRPC status, response the message on OK (NULL: none). 0 or -errno. */
int		 wrk_service_reply(struct wrk_ctx *, uint32_t request_id,
		    uint32_t code, const char *message,
		    const ProtobufCMessage *response);

/* memory.c: memory items (embeddings here, storage and search in
 * journald), the memory.search and memory.ingest tools, recall. */
int		 wrk_memory_call(struct wrk_ctx *, uint32_t request_id,
		    const Palyra__Ipc__ServiceCall *);
int		 wrk_memory_on_stored(struct wrk_ctx *, uint32_t request_id,
		    const Palyra__Ipc__MemoryStored *);
int		 wrk_memory_on_hits(struct wrk_ctx *, uint32_t request_id,
		    const Palyra__Ipc__MemoryHits *);

/* vault.c: the tenant's vault (the data key is here only), vault:NAME
 * provider credentials and redaction of vault values by value. */
int		 wrk_vault_call(struct wrk_ctx *, uint32_t request_id,
		    const Palyra__Ipc__ServiceCall *);
int		 wrk_vault_on_stored(struct wrk_ctx *, uint32_t request_id,
		    const Palyra__Ipc__VaultStored *);
int		 wrk_vault_on_items(struct wrk_ctx *, uint32_t request_id,
		    const Palyra__Ipc__VaultItems *);
int		 wrk_vault_on_changed(struct wrk_ctx *,
		    const Palyra__Ipc__VaultChanged *);
/* A malloc'd copy of text with every value of the tenant's vault replaced
 * by the redaction mark (as journald's, JNL_REDACTED); NULL: ENOMEM. For
 * text that leaves the worker outside an event (memory items). */
char		*wrk_vault_redact_text(struct wrk_ctx *, const char *text);
/* The configuration (its data key) or a journald channel arrived: takes
 * the key, sets vault:NAME provider keys, loads the values. */
void		 wrk_vault_start(struct wrk_ctx *);
void		 wrk_vault_journald_lost(struct wrk_ctx *);
void		 wrk_vault_free(struct wrk_ctx *);
/* prepare.c: 1 when the run's start must wait for the vault's values (it
 * stays preparing with prepare_id 0; vault.c sends its prepare, or drops
 * it UNAVAILABLE after WRK_VAULT_LOAD_WAIT_MS); 0: go on. */
int		 wrk_vault_hold(struct wrk_run *);
/* append.c, wrk_emit: before the event gets its seq, the token carry-over
 * (0, 1: nothing to send, or -errno; -ENOBUFS: no room, ev untouched);
 * after its protobuf view pb is built, the redaction of its fields in ev
 * and pb (1 changed, 0, -ENOMEM). */
int		 wrk_vault_redact_begin(struct wrk_run *, struct wrk_event *);
int		 wrk_vault_redact_fields(struct wrk_run *, struct wrk_event *,
		    Palyra__V1__RunEvent *pb);
/* Redacts *s (malloc'd) in place: 1 replaced, 0 none, -ENOMEM. */
int		 wrk_vault_redact_string(struct wrk_ctx *, char **s);
/* run.c: a run is freed (its held-back tail wiped). */
void		 wrk_vault_run_free(struct wrk_run *);

/* cron.c: runs of cron fires (journald schedules, the worker runs). */
int		 wrk_cron_fire(struct wrk_ctx *, uint32_t request_id,
		    const Palyra__Ipc__CronFireRequest *);

#endif
