/*
 * run.c: the run state machine of palyra-worker (DESIGN section 9).
 *
 * A run is created by the front's IPC_RUN_START, driven by its provider and
 * ended by completion, failure, cancellation or its deadline. Every state
 * change goes through wrk_run_transition(), which rejects illegal moves and
 * turns each legal one into a status event for the journal:
 *
 *   ACCEPTED -> IN_PROGRESS -> (WAITING_APPROVAL | WAITING_TOOL ->
 *   IN_PROGRESS)* -> COMPLETED | FAILED | CANCELLED | INTERRUPTED
 *   ACCEPTED, WAITING_* -> CANCELLED | FAILED; nothing leaves a terminal state.
 *
 * A run's memory outlives its terminal state until journald acknowledged its
 * last event (wrk_run_maybe_free), so that event can still be forwarded.
 * A run waiting for an approval is rebuilt by the next worker when its own
 * died or stopped (recover.c, wrk_run_restore): SIGTERM does not cancel it.
 *
 * Touches: the context's run list, its journal pipeline (append.c), the
 * provider of each run. No I/O of its own besides timers.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <sodium.h>

#include "budget.h"
#include "log.h"
#include "memory.h"
#include "session.h"
#include "tools.h"
#include "worker.h"

/* Cancel reasons from clients are cut to this many bytes. */
#define RUN_REASON_MAX		512

static const char *const state_names[] = {
	[WRK_RUN_ACCEPTED] = "ACCEPTED",
	[WRK_RUN_IN_PROGRESS] = "IN_PROGRESS",
	[WRK_RUN_WAITING_APPROVAL] = "WAITING_APPROVAL",
	[WRK_RUN_WAITING_TOOL] = "WAITING_TOOL",
	[WRK_RUN_COMPLETED] = "COMPLETED",
	[WRK_RUN_FAILED] = "FAILED",
	[WRK_RUN_CANCELLED] = "CANCELLED",
	[WRK_RUN_INTERRUPTED] = "INTERRUPTED",
};

const char *
wrk_run_state_name(enum wrk_run_state s)
{
	if (s < WRK_RUN_ACCEPTED || s > WRK_RUN_INTERRUPTED)
		return "UNKNOWN";
	return state_names[s];
}

int
wrk_run_terminal(enum wrk_run_state s)
{
	return s >= WRK_RUN_COMPLETED && s <= WRK_RUN_INTERRUPTED;
}

static int
transition_legal(enum wrk_run_state from, enum wrk_run_state to)
{
	switch (from) {
	case WRK_RUN_ACCEPTED:
		return to == WRK_RUN_IN_PROGRESS || to == WRK_RUN_CANCELLED ||
		    to == WRK_RUN_FAILED;
	case WRK_RUN_IN_PROGRESS:
		return to == WRK_RUN_WAITING_APPROVAL ||
		    to == WRK_RUN_WAITING_TOOL || wrk_run_terminal(to);
	case WRK_RUN_WAITING_APPROVAL:
	case WRK_RUN_WAITING_TOOL:
		return to == WRK_RUN_IN_PROGRESS || to == WRK_RUN_CANCELLED ||
		    to == WRK_RUN_FAILED;
	default:
		return 0;
	}
}

/* Stops everything that could still produce events for the run. */
static void
run_quiesce(struct wrk_run *run)
{
	struct wrk_ctx	*ctx = run->ctx;

	if (run->provider_running) {
		run->provider_running = 0;
		run->provider->stop(run);
	}
	/* After the provider, which settles what it knows of its call. */
	wrk_budget_abort(run);
	/* The tool call in flight, if any: late answers are ignored. */
	wrk_tool_abort(run);
	if (run->deadline_ev != NULL)
		evtimer_del(run->deadline_ev);
	if (run->wallclock_ev != NULL)
		evtimer_del(run->wallclock_ev);
	if (run->stalled) {
		run->stalled = 0;
		ctx->nstalled--;
	}
}

/*
 * Appends a status event. Without room in the pipeline a terminal status is
 * parked on the run and sent by the kick once acks drain. Returns 0 (sent or
 * parked) or a negative error from wrk_emit (the event is lost).
 */
static int
emit_status(struct wrk_run *run, enum wrk_run_state status,
    const char *reason)
{
	struct wrk_event	 ev;
	int			 r;

	memset(&ev, 0, sizeof(ev));
	ev.kind = WRK_EVENT_STATUS;
	ev.status = status;
	if (reason != NULL && reason[0] != '\0')
		ev.text = strdup(reason);
	r = wrk_emit(run, &ev);
	if (r != -ENOBUFS)
		return r;
	if (run->has_parked) {
		log_error("run %s: status %s lost: pipeline full",
		    run->run_id, wrk_run_state_name(status));
		wrk_event_clear(&ev);
		return r;
	}
	run->parked = ev;
	run->has_parked = 1;
	run->ctx->nparked++;
	wrk_append_kick(run->ctx);
	return 0;
}

/*
 * Moves run to state to and appends the status event. Returns 0; -EINVAL for
 * an illegal move (logged, nothing changes); or another negative error when
 * the move happened but its event could not be journaled (a terminal one is
 * then reported to the front's call as an internal error).
 */
int
wrk_run_transition(struct wrk_run *run, enum wrk_run_state to,
    const char *reason)
{
	enum wrk_run_state	 from = run->state;
	int			 r;

	if (!transition_legal(from, to)) {
		log_warn("run %s: illegal transition %s -> %s", run->run_id,
		    wrk_run_state_name(from), wrk_run_state_name(to));
		return -EINVAL;
	}
	run->state = to;
	/* Work was done: the idle clock (worker.c) starts again from now,
	 * also for a run that began and ended between two of its checks. */
	run->ctx->busy_last_ms = wrk_now_ms();
	if (wrk_run_terminal(to)) {
		run->ctx->nlive--;
		run_quiesce(run);
		log_info("run %s %s%s%s", run->run_id, wrk_run_state_name(to),
		    reason != NULL ? ": " : "", reason != NULL ? reason : "");
	} else
		log_debug("run %s %s -> %s", run->run_id,
		    wrk_run_state_name(from), wrk_run_state_name(to));

	r = emit_status(run, to, reason);
	if (r == -ENOTCONN && wrk_run_terminal(to))
		wrk_call_error(run, GRPC_STATUS_UNAVAILABLE,
		    "journal unavailable");
	else if (r < 0 && wrk_run_terminal(to))
		wrk_call_error(run, GRPC_STATUS_INTERNAL, "journal write failed");
	return r;
}

static struct wrk_run *
find_call(struct wrk_ctx *ctx, uint32_t call_id)
{
	struct wrk_run	*run;

	TAILQ_FOREACH(run, &ctx->runs, entry)
		if (run->has_call && run->call_id == call_id)
			return run;
	return NULL;
}

/* The run that call_id follows after a reattach, with its slot, or NULL. */
static struct wrk_run *
find_follower(struct wrk_ctx *ctx, uint32_t call_id, size_t *slot)
{
	struct wrk_run	*run;
	size_t		 i;

	TAILQ_FOREACH(run, &ctx->runs, entry)
		for (i = 0; i < run->nfollowers; i++)
			if (run->followers[i] == call_id) {
				*slot = i;
				return run;
			}
	return NULL;
}

static const Palyra__Ipc__AgentConfig *
find_agent(const Palyra__Ipc__WorkerConfig *config, const char *name)
{
	size_t	 i;

	if (config->n_agents == 0)
		return NULL;
	if (name == NULL || name[0] == '\0')
		return config->agents[0];
	for (i = 0; i < config->n_agents; i++)
		if (strcmp(config->agents[i]->name, name) == 0)
			return config->agents[i];
	return NULL;
}

/*
 * Picks the first provider of the agent's failover list that this worker
 * implements. An agent without providers gets the built-in offline model.
 * A network provider (provider.c) walks the rest of the list itself when
 * it fails over. Returns 0 with the name, model and ops set, or -ENOENT.
 */
static int
pick_provider(const Palyra__Ipc__WorkerConfig *config,
    const Palyra__Ipc__AgentConfig *agent, const char **name,
    const char **model, uint32_t *token_delay_ms,
    const struct wrk_provider_ops **ops)
{
	const Palyra__Ipc__ProviderConfig *pc;
	size_t	 i, j;

	*name = "offline";
	*model = "offline-1";
	*token_delay_ms = 0;
	*ops = &wrk_offline_provider;
	if (agent->n_providers == 0)
		return 0;
	for (i = 0; i < agent->n_providers; i++) {
		pc = NULL;
		for (j = 0; j < config->n_providers; j++)
			if (strcmp(config->providers[j]->name,
			    agent->providers[i]) == 0)
				pc = config->providers[j];
		if (pc == NULL) {
			if (strcmp(agent->providers[i], "offline") == 0)
				return 0;
			continue;
		}
		if (wrk_net_type(pc->type)) {
			*name = pc->name;
			*model = pc->model;
			*ops = &wrk_net_provider;
			return 0;
		}
		if (strcmp(pc->type, wrk_offline_provider.type) != 0)
			continue;
		*name = pc->name;
		if (pc->model[0] != '\0')
			*model = pc->model;
		/* The supervisor checked the range; a bad one is clamped. */
		*token_delay_ms = pc->token_delay_ms > WRK_TOKEN_DELAY_MAX_MS ?
		    WRK_TOKEN_DELAY_MAX_MS : pc->token_delay_ms;
		return 0;
	}
	return -ENOENT;
}

int
wrk_session_id_valid(const char *s)
{
	size_t	 i, n = strnlen(s, NAME_MAX_LEN + 1);

	if (n == 0 || n > NAME_MAX_LEN)
		return 0;
	for (i = 0; i < n; i++)
		if (strchr("0123456789abcdefghijklmnopqrstuvwxyz"
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZ_-", s[i]) == NULL)
			return 0;
	return 1;
}

static void
random_id(char out[WRK_ID_LEN + 1])
{
	unsigned char	 bytes[WRK_ID_LEN / 2];

	randombytes_buf(bytes, sizeof(bytes));
	sodium_bin2hex(out, WRK_ID_LEN + 1, bytes, sizeof(bytes));
}

/*
 * The session of a run: the client's session id, else one derived from its
 * session key (the same tenant, principal and key always give the same
 * session), else a fresh one. Returns 0, -EINVAL for a malformed session id
 * or -E2BIG for an overlong key.
 */
int
wrk_session_id(const char *tenant, const char *principal,
    const char *session_id, const char *session_key,
    char out[NAME_MAX_LEN + 1])
{
	if (session_id != NULL && session_id[0] != '\0') {
		if (!wrk_session_id_valid(session_id))
			return -EINVAL;
		snprintf(out, NAME_MAX_LEN + 1, "%s", session_id);
		return 0;
	}
	if (session_key == NULL || session_key[0] == '\0') {
		random_id(out);
		return 0;
	}
	/* The one derivation, shared with the front's ResolveSession. */
	return session_id_derive(tenant, principal, session_key, out);
}

/* What prepare.c filled in: history, queued input, the key. */
static void
run_free_features(struct wrk_run *run)
{
	size_t	 i;

	for (i = 0; i < run->nhistory; i++) {
		free(run->history[i].input);
		free(run->history[i].output);
	}
	free(run->history);
	for (i = 0; i < run->ninputs; i++)
		free(run->inputs[i]);
	free(run->inputs);
	free(run->idempotency_key);
	if (run->prepare_ev != NULL)
		event_free(run->prepare_ev);
}

static void
run_free(struct wrk_run *run)
{
	struct wrk_ctx	*ctx = run->ctx;

	TAILQ_REMOVE(&ctx->runs, run, entry);
	/* Idempotent: run_quiesce() did it, if the run went through it. */
	wrk_budget_abort(run);
	if (run->deadline_ev != NULL)
		event_free(run->deadline_ev);
	if (run->wallclock_ev != NULL)
		event_free(run->wallclock_ev);
	if (run->has_parked) {
		wrk_event_clear(&run->parked);
		ctx->nparked--;
	}
	free(run->principal);
	free(run->agent);
	free(run->system_prompt);
	free(run->input);
	free(run->provider_name);
	free(run->model);
	free(run->fail_message);
	wrk_vault_run_free(run);
	wrk_tool_abort(run);
	wrk_tools_free(run);
	wrk_memory_run_gone(run);
	while (run->nproviders > 0)
		free(run->providers[--run->nproviders]);
	free(run->providers);
	run_free_features(run);
	free(run);
}

/* Frees a run that is over and has nothing left in the pipeline. */
void
wrk_run_maybe_free(struct wrk_run *run)
{
	if (!wrk_run_terminal(run->state) || run->inflight > 0 ||
	    run->has_parked)
		return;
	if (run->has_call || run->nfollowers > 0)
		wrk_call_error(run, GRPC_STATUS_INTERNAL,
		    "run ended without a final event");
	run_free(run);
}

static void
deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct wrk_run	*run = arg;

	if (wrk_run_terminal(run->state))
		return;
	wrk_run_transition(run, WRK_RUN_CANCELLED, "deadline exceeded");
	wrk_run_maybe_free(run);
}

static int
run_arm_deadline(struct wrk_run *run, int64_t deadline_ms)
{
	struct timeval	 tv;
	int64_t		 left = deadline_ms - wrk_now_ms();

	run->deadline_ev = evtimer_new(run->ctx->base, deadline_cb, run);
	if (run->deadline_ev == NULL)
		return -ENOMEM;
	tv.tv_sec = left / 1000;
	tv.tv_usec = (left % 1000) * 1000;
	if (evtimer_add(run->deadline_ev, &tv) == -1)
		return -ENOMEM;
	return 0;
}

/* A duration for a reason: "1.5 s", "10 min", "2 h". */
void
wrk_format_duration(char *buf, size_t size, uint64_t ms)
{
	int	 n;

	if (ms >= 3600000 && ms % 3600000 == 0)
		snprintf(buf, size, "%llu h",
		    (unsigned long long)(ms / 3600000));
	else if (ms >= 60000 && ms % 60000 == 0)
		snprintf(buf, size, "%llu min",
		    (unsigned long long)(ms / 60000));
	else if (ms % 1000 == 0)
		snprintf(buf, size, "%llu s", (unsigned long long)(ms / 1000));
	else {
		/* Milliseconds, trailing zeros of the fraction dropped. */
		n = snprintf(buf, size, "%llu.%03u", (unsigned long long)
		    (ms / 1000), (unsigned int)(ms % 1000));
		while (n > 0 && (size_t)n < size && buf[n - 1] == '0')
			buf[--n] = '\0';
		snprintf(buf + n, size - (size_t)n, " s");
	}
}

/* The agent's wall clock ran out: the run fails, whatever it was doing
 * (the client's deadline cancels instead). */
static void
wallclock_cb(evutil_socket_t fd, short what, void *arg)
{
	struct wrk_run	*run = arg;
	char		 d[32], reason[96];

	if (wrk_run_terminal(run->state))
		return;
	wrk_format_duration(d, sizeof(d), run->max_wall_clock_ms);
	snprintf(reason, sizeof(reason), "agent wall-clock limit of %s "
	    "reached", d);
	log_debug("run %s: %s", run->run_id, reason);
	wrk_run_transition(run, WRK_RUN_FAILED, reason);
	wrk_run_maybe_free(run);
}

/* Arms the agent's wall clock, left_ms from now. */
static int
run_arm_wallclock(struct wrk_run *run, uint64_t left_ms)
{
	struct timeval	 tv;

	run->wallclock_ev = evtimer_new(run->ctx->base, wallclock_cb, run);
	if (run->wallclock_ev == NULL)
		return -ENOMEM;
	tv.tv_sec = (time_t)(left_ms / 1000);
	tv.tv_usec = (suseconds_t)(left_ms % 1000) * 1000;
	if (evtimer_add(run->wallclock_ev, &tv) == -1)
		return -ENOMEM;
	return 0;
}

static struct wrk_run *
run_new(struct wrk_ctx *ctx, const char *principal, const char *input,
    const Palyra__Ipc__AgentConfig *agent, const char *provider_name,
    const char *model)
{
	struct wrk_run	*run;

	if ((run = calloc(1, sizeof(*run))) == NULL)
		return NULL;
	run->ctx = ctx;
	run->principal = strdup(principal);
	run->agent = strdup(agent->name);
	run->system_prompt = strdup(agent->system_prompt);
	run->input = strdup(input);
	run->provider_name = strdup(provider_name);
	run->model = strdup(model);
	if (run->principal == NULL || run->agent == NULL ||
	    run->system_prompt == NULL || run->input == NULL ||
	    run->provider_name == NULL || run->model == NULL) {
		free(run->principal);
		free(run->agent);
		free(run->system_prompt);
		free(run->input);
		free(run->provider_name);
		free(run->model);
		free(run);
		return NULL;
	}
	run->max_output_tokens = agent->max_output_tokens;
	/* An AgentConfig without limits (has_limits unset) or a zero turn
	 * count or wall clock: the defaults of palyrad.conf(5). */
	run->max_turns = agent->has_limits && agent->max_turns != 0 ?
	    agent->max_turns : AGENT_TURNS_DEFAULT;
	if (run->max_turns > AGENT_TURNS_MAX)
		run->max_turns = AGENT_TURNS_MAX;
	run->max_tool_calls = agent->has_limits ? agent->max_tool_calls :
	    AGENT_TOOL_CALLS_DEFAULT;
	if (run->max_tool_calls > AGENT_TOOL_CALLS_MAX)
		run->max_tool_calls = AGENT_TOOL_CALLS_MAX;
	run->max_wall_clock_ms = agent->has_limits &&
	    agent->max_wall_clock_ms != 0 ? agent->max_wall_clock_ms :
	    AGENT_WALL_CLOCK_DEFAULT_MS;
	if (run->max_wall_clock_ms > AGENT_WALL_CLOCK_MAX_MS)
		run->max_wall_clock_ms = AGENT_WALL_CLOCK_MAX_MS;
	run->provider = &wrk_offline_provider;
	run->state = WRK_RUN_ACCEPTED;
	run->next_seq = 1;
	random_id(run->run_id);
	TAILQ_INSERT_TAIL(&ctx->runs, run, entry);
	ctx->nlive++;
	return run;
}

/* The agent's failover list and temperature, for a network provider. */
static int
run_set_failover(struct wrk_run *run, const Palyra__Ipc__AgentConfig *agent)
{
	size_t	 i;

	run->temperature = agent->temperature;
	if (agent->n_providers == 0)
		return 0;
	if ((run->providers = calloc(agent->n_providers,
	    sizeof(*run->providers))) == NULL)
		return -ENOMEM;
	for (i = 0; i < agent->n_providers; i++) {
		if ((run->providers[i] = strdup(agent->providers[i])) == NULL)
			return -ENOMEM;
		run->nproviders++;
	}
	return 0;
}

/* Checks a start request; returns 0, or a gRPC status with *why set. */
static uint32_t
start_check(struct wrk_ctx *ctx, const Palyra__Ipc__RunStartRequest *req,
    const Palyra__Ipc__AgentConfig **agent, const char **why)
{
	if (ctx->draining) {
		*why = "palyrad is stopping";
		return GRPC_STATUS_UNAVAILABLE;
	}
	if (ctx->config == NULL) {
		*why = "worker not configured";
		return GRPC_STATUS_UNAVAILABLE;
	}
	/* An agent of the configuration first; else the runtime agent the
	 * front resolved at journald for this start (front/agents.c). */
	if ((*agent = find_agent(ctx->config, req->start->agent)) == NULL &&
	    req->runtime_agent != NULL && req->start->agent[0] != '\0' &&
	    strcmp(req->runtime_agent->name, req->start->agent) == 0)
		*agent = req->runtime_agent;
	if (*agent == NULL) {
		*why = "unknown agent";
		return GRPC_STATUS_NOT_FOUND;
	}
	if (*agent == req->runtime_agent && ((*agent)->n_providers == 0 ||
	    strnlen((*agent)->system_prompt, AGENT_PROMPT_MAX + 1) >
		AGENT_PROMPT_MAX)) {
		*why = "invalid agent";
		return GRPC_STATUS_INVALID_ARGUMENT;
	}
	if (strnlen(req->start->input, TEXT_MAX_LEN + 1) > TEXT_MAX_LEN) {
		*why = "input too long";
		return GRPC_STATUS_INVALID_ARGUMENT;
	}
	if (strnlen(req->principal, NAME_MAX_LEN + 1) > NAME_MAX_LEN) {
		*why = "principal too long";
		return GRPC_STATUS_INVALID_ARGUMENT;
	}
	if (ctx->nlive >= WRK_MAX_RUNS) {
		*why = "too many runs";
		return GRPC_STATUS_RESOURCE_EXHAUSTED;
	}
	if (ctx->journald == NULL) {
		*why = "journal unavailable";
		return GRPC_STATUS_UNAVAILABLE;
	}
	/* ACCEPTED and IN_PROGRESS are appended right away. */
	if (wrk_append_room(ctx) < 2) {
		*why = "journal queue full";
		return GRPC_STATUS_RESOURCE_EXHAUSTED;
	}
	return 0;
}

/* A start refused before its run exists: told to the call, or to the
 * detached start's callback. */
static void
start_refused(struct wrk_ctx *ctx, const struct wrk_start_how *how,
    uint32_t status, const char *why)
{
	if (how->started != NULL)
		how->started(ctx, how->started_id, status, why, NULL);
	else
		wrk_front_error(ctx, how->call_id, status, why);
}

/*
 * The one path of every start, with a call (wrk_run_start) or without
 * (wrk_run_start_detached): the same checks, the same run. Returns 0.
 */
static int
run_begin(struct wrk_ctx *ctx, const Palyra__Ipc__RunStartRequest *req,
    const struct wrk_start_how *how)
{
	const Palyra__Ipc__AgentConfig *agent = NULL;
	const char	*why = NULL, *provider_name, *model;
	char		 session[NAME_MAX_LEN + 1], tools_why[256];
	struct wrk_run	*run;
	const struct wrk_provider_ops *ops;
	uint32_t	 status, token_delay_ms;
	int		 r;

	if ((status = start_check(ctx, req, &agent, &why)) != 0) {
		start_refused(ctx, how, status, why);
		return 0;
	}
	r = wrk_session_id(ctx->tenant, req->principal,
	    req->start->session_id, req->start->session_key, session);
	if (r < 0) {
		start_refused(ctx, how, GRPC_STATUS_INVALID_ARGUMENT,
		    r == -E2BIG ? "session_key too long" :
		    "invalid session_id");
		return 0;
	}
	if (pick_provider(ctx->config, agent, &provider_name, &model,
	    &token_delay_ms, &ops) < 0) {
		start_refused(ctx, how, GRPC_STATUS_FAILED_PRECONDITION,
		    "no usable provider for agent");
		return 0;
	}
	if ((run = run_new(ctx, req->principal, req->start->input, agent,
	    provider_name, model)) == NULL) {
		start_refused(ctx, how, GRPC_STATUS_RESOURCE_EXHAUSTED,
		    "out of memory");
		return 0;
	}
	/* From here on wrk_run_drop() and wrk_run_launch() tell the
	 * detached start's callback. */
	run->started = how->started;
	run->started_id = how->started_id;
	run->unattended_deny = how->unattended_deny;
	run->cancel_on_disconnect = req->start->cancel_on_disconnect;
	memcpy(run->session_id, session, sizeof(session));
	run->token_delay_ms = token_delay_ms;
	run->provider = ops;
	if (run_set_failover(run, agent) < 0) {
		wrk_run_drop(run, GRPC_STATUS_RESOURCE_EXHAUSTED,
		    "out of memory");
		return 0;
	}
	/* The agent's tool policy and the client's tools (tools.c). */
	r = wrk_tools_setup(run, agent, req->start->tools,
	    req->start->n_tools, tools_why, sizeof(tools_why));
	if (r < 0) {
		/* The call learns why; no event of the run was journaled. */
		run->has_call = how->started == NULL;
		run->call_id = how->call_id;
		wrk_run_drop(run, r == -EINVAL ? GRPC_STATUS_INVALID_ARGUMENT :
		    GRPC_STATUS_RESOURCE_EXHAUSTED, tools_why);
		return 0;
	}
	run->session_named = req->start->session_id[0] != '\0';
	run->has_call = how->started == NULL;
	run->call_id = how->call_id;
	log_debug("run %s accepted: agent %s, session %s, principal %s",
	    run->run_id, run->agent, run->session_id, run->principal);

	/* History and idempotency key first (prepare.c): the run's first
	 * event waits for journald's answer. */
	run->deadline_ms = req->deadline_unix_ms;
	if (req->start->idempotency_key[0] != '\0' &&
	    (run->idempotency_key = strdup(req->start->idempotency_key)) ==
	    NULL) {
		wrk_run_drop(run, GRPC_STATUS_RESOURCE_EXHAUSTED,
		    "out of memory");
		return 0;
	}
	if ((r = wrk_prepare_send(run)) < 0)
		wrk_run_drop(run, r == -ENOMEM || r == -ENOBUFS ?
		    GRPC_STATUS_RESOURCE_EXHAUSTED : GRPC_STATUS_UNAVAILABLE,
		    r == -ENOMEM ? "out of memory" : r == -ENOBUFS ?
		    "journal queue full" : "journal unavailable");
	return 0;
}

/*
 * Starts a run for the front's call call_id. Refusals go to the call as
 * IPC_RUN_ERROR. Returns 0, or -EBADMSG for a request the front should never
 * have sent (no start, a call id already in use); the caller drops the front.
 */
int
wrk_run_start(struct wrk_ctx *ctx, uint32_t call_id,
    const Palyra__Ipc__RunStartRequest *req)
{
	struct wrk_start_how how = { .call_id = call_id };

	if (req->start == NULL) {
		log_warn("front: run start %u without a start message",
		    call_id);
		return -EBADMSG;
	}
	if (find_call(ctx, call_id) != NULL ||
	    find_follower(ctx, call_id, &(size_t){ 0 }) != NULL) {
		log_warn("front: call id %u already in use", call_id);
		return -EBADMSG;
	}
	return run_begin(ctx, req, &how);
}

int
wrk_run_start_detached(struct wrk_ctx *ctx,
    const Palyra__Ipc__RunStartRequest *req, int unattended_deny,
    wrk_run_started_fn started, uint32_t started_id)
{
	struct wrk_start_how how = { .started = started,
	    .started_id = started_id, .unattended_deny = unattended_deny };

	if (req->start == NULL || started == NULL)
		return -EBADMSG;
	return run_begin(ctx, req, &how);
}

/* Tells a detached start's callback, once, how its start ended. */
static void
run_report_started(struct wrk_run *run, uint32_t grpc_status,
    const char *message, const char *run_id)
{
	wrk_run_started_fn fn = run->started;

	if (fn == NULL)
		return;
	run->started = NULL;
	fn(run->ctx, run->started_id, grpc_status, message, run_id);
}

void
wrk_run_report_existing(struct wrk_run *run, const char *existing_run_id)
{
	run_report_started(run, GRPC_STATUS_OK, NULL, existing_run_id);
}

void
wrk_run_drop(struct wrk_run *run, uint32_t grpc_status, const char *message)
{
	struct wrk_ctx	*ctx = run->ctx;

	run->preparing = 0;
	run_report_started(run, grpc_status, message, NULL);
	if (run->has_call) {
		run->has_call = 0;
		wrk_front_error(ctx, run->call_id, grpc_status, message);
	}
	run->nfollowers = 0;
	if (!wrk_run_terminal(run->state)) {
		run->state = WRK_RUN_CANCELLED;
		ctx->nlive--;
	}
	run_quiesce(run);
	run_free(run);
}

void
wrk_run_launch(struct wrk_run *run)
{
	struct wrk_ctx	*ctx = run->ctx;
	int		 r;

	run->preparing = 0;
	if (run->prepare_ev != NULL)
		evtimer_del(run->prepare_ev);
	/* ACCEPTED is the initial state, not a transition, but an event. */
	if (emit_status(run, WRK_RUN_ACCEPTED, NULL) < 0) {
		run_report_started(run, GRPC_STATUS_UNAVAILABLE,
		    "journal unavailable", NULL);
		wrk_call_error(run, GRPC_STATUS_UNAVAILABLE,
		    "journal unavailable");
		run->state = WRK_RUN_FAILED;
		ctx->nlive--;
		wrk_run_maybe_free(run);
		return;
	}
	/* Its ACCEPTED is on its way to journald, ahead of the answer. */
	run_report_started(run, GRPC_STATUS_OK, NULL, run->run_id);
	if (run->deadline_ms != 0) {
		if (run->deadline_ms <= wrk_now_ms()) {
			wrk_run_transition(run, WRK_RUN_CANCELLED,
			    "deadline exceeded");
			wrk_run_maybe_free(run);
			return;
		}
		if (run_arm_deadline(run, run->deadline_ms) < 0) {
			wrk_run_transition(run, WRK_RUN_FAILED,
			    "out of memory");
			wrk_run_maybe_free(run);
			return;
		}
	}
	if (run_arm_wallclock(run, run->max_wall_clock_ms) < 0) {
		wrk_run_transition(run, WRK_RUN_FAILED, "out of memory");
		wrk_run_maybe_free(run);
		return;
	}
	wrk_run_transition(run, WRK_RUN_IN_PROGRESS, NULL);
	wrk_prepare_journal_inputs(run);
	run->provider_running = 1;
	if ((r = run->provider->start(run)) < 0) {
		run->provider_running = 0;
		log_warn("run %s: provider %s: %s", run->run_id,
		    run->provider_name, strerror(-r));
		wrk_run_transition(run, WRK_RUN_FAILED,
		    "provider failed to start");
	}
	wrk_run_maybe_free(run);
}

/* Copies a client's reason, cut at a UTF-8 character boundary. */
static void
copy_reason(char *out, size_t size, const char *in)
{
	size_t	 n = strnlen(in, size - 1);

	if (in[n] != '\0')
		while (n > 0 && ((unsigned char)in[n] & 0xc0) == 0x80)
			n--;
	memcpy(out, in, n);
	out[n] = '\0';
}

static void	 run_flow_set(struct wrk_run *, int);

int
wrk_run_cancel(struct wrk_ctx *ctx, uint32_t call_id,
    const Palyra__Ipc__RunCancelRequest *req)
{
	char		 reason[RUN_REASON_MAX];
	struct wrk_run	*run;
	size_t		 slot;

	/*
	 * A reattached call that goes away only stops following; its cancel
	 * cancels the run (the front checked it is the run's principal).
	 */
	if (find_call(ctx, call_id) == NULL &&
	    (run = find_follower(ctx, call_id, &slot)) != NULL) {
		if (req->disconnected) {
			run->followers[slot] =
			    run->followers[--run->nfollowers];
			return 0;
		}
		if (wrk_run_terminal(run->state))
			return 0;
		if (req->reason[0] != '\0')
			copy_reason(reason, sizeof(reason), req->reason);
		else
			snprintf(reason, sizeof(reason), "cancelled by client");
		wrk_run_transition(run, WRK_RUN_CANCELLED, reason);
		wrk_run_maybe_free(run);
		return 0;
	}
	if ((run = find_call(ctx, call_id)) == NULL) {
		/* The run may have ended just before the cancel arrived. */
		log_debug("front: cancel for unknown call %u", call_id);
		return 0;
	}
	/* Not started yet (prepare.c): nothing was journaled. */
	if (run->preparing) {
		wrk_run_drop(run, GRPC_STATUS_CANCELLED, req->disconnected ?
		    "client disconnected" : "cancelled by client");
		return 0;
	}
	if (req->disconnected) {
		run->has_call = 0;
		if (!run->cancel_on_disconnect) {
			log_info("run %s: client gone, run goes on",
			    run->run_id);
			/* Its slow reader is gone: it may not stay paused.
			 * Last: the provider may end the run meanwhile. */
			run_flow_set(run, 0);
			return 0;
		}
	}
	if (wrk_run_terminal(run->state))
		return 0;
	if (req->reason[0] != '\0')
		copy_reason(reason, sizeof(reason), req->reason);
	else
		snprintf(reason, sizeof(reason), "%s", req->disconnected ?
		    "client disconnected" : "cancelled by client");
	wrk_run_transition(run, WRK_RUN_CANCELLED, reason);
	wrk_run_maybe_free(run);
	return 0;
}

/*
 * Flow control (IPC_RUN_FLOW): the front pauses a run while its own call's
 * client does not read, and resumes it once the client caught up. Only
 * provider output waits (wrk_run_may_emit()); status events caused by
 * control (cancel, deadline, failure) go on. A resume calls the provider's
 * resume() if it was held meanwhile; that may end the run (and free it):
 * callers return right after.
 */
static void
run_flow_set(struct wrk_run *run, int paused)
{
	if (paused) {
		run->flow_paused = 1;
		return;
	}
	if (!run->flow_paused)
		return;
	run->flow_paused = 0;
	if (!run->flow_stalled)
		return;
	run->flow_stalled = 0;
	if (run->provider_running && run->provider->resume != NULL)
		run->provider->resume(run);
}

/*
 * Only the run's own call pauses it: a reattached follower that does not
 * read is ended by the front instead (it can reattach from the journal),
 * so that one slow follower never holds the run for the others.
 */
int
wrk_run_flow(struct wrk_ctx *ctx, uint32_t call_id,
    const Palyra__Ipc__RunFlow *req)
{
	struct wrk_run	*run;

	if ((run = find_call(ctx, call_id)) == NULL)
		return 0;	/* ended meanwhile, or a follower */
	if (wrk_run_terminal(run->state))
		return 0;
	log_debug("run %s: %s by its client", run->run_id,
	    req->paused ? "paused" : "resumed");
	run_flow_set(run, req->paused);
	return 0;
}

/* The front went away: its calls are gone; some runs go with them. */
void
wrk_run_front_lost(struct wrk_ctx *ctx)
{
	struct wrk_run	*run, *next;

	for (run = TAILQ_FIRST(&ctx->runs); run != NULL; run = next) {
		next = TAILQ_NEXT(run, entry);
		run->nfollowers = 0;
		/* Not started yet: its client is gone with the front. */
		if (run->preparing) {
			wrk_run_drop(run, GRPC_STATUS_UNAVAILABLE,
			    "front lost");
			continue;
		}
		if (!run->has_call)
			continue;
		run->has_call = 0;
		if (run->cancel_on_disconnect &&
		    !wrk_run_terminal(run->state)) {
			wrk_run_transition(run, WRK_RUN_CANCELLED,
			    "client disconnected");
			wrk_run_maybe_free(run);
		} else
			run_flow_set(run, 0);
	}
}

/*
 * A reattaching call asks whether this worker holds the run. It does while
 * the run still has an event to forward: it is live, or its last events
 * await their acknowledgement. The principal was checked at journald by
 * the front; it is checked again here, as the worker knows it too.
 */
int
wrk_run_attach(struct wrk_ctx *ctx, uint32_t call_id,
    const Palyra__Ipc__RunAttachRequest *req)
{
	Palyra__Ipc__RunAttached reply = PALYRA__IPC__RUN_ATTACHED__INIT;
	struct wrk_run	*run;
	int		 added = 0, r;

	if (find_call(ctx, call_id) != NULL ||
	    find_follower(ctx, call_id, &(size_t){ 0 }) != NULL) {
		log_warn("front: call id %u already in use", call_id);
		return -EBADMSG;
	}
	TAILQ_FOREACH(run, &ctx->runs, entry)
		if (strcmp(run->run_id, req->run_id) == 0)
			break;
	if (run != NULL && strcmp(run->principal, req->principal) == 0 &&
	    !run->refused && (!wrk_run_terminal(run->state) ||
	    run->inflight > 0 || run->has_parked)) {
		reply.owned = 1;
		reply.last_forwarded_seq = run->acked_seq;
		if (run->nfollowers >= WRK_RUN_FOLLOWERS_MAX)
			reply.full = 1;
		else {
			run->followers[run->nfollowers++] = call_id;
			added = 1;
		}
	}
	if (ctx->front == NULL)
		return 0;
	r = ipc_chan_send(ctx->front, IPC_RUN_ATTACHED, call_id, &reply.base,
	    NULL, 0);
	if (r < 0) {
		log_warn("front call %u: cannot answer attach: %s", call_id,
		    strerror(-r));
		if (added)
			run->nfollowers--;
		return 0;
	}
	if (added)
		log_debug("run %s: call %u follows from seq %llu", run->run_id,
		    call_id, (unsigned long long)run->acked_seq);
	return 0;
}

/*
 * AbortRun: the front asks every worker of the tenant; the one that holds
 * the run cancels it with the reason, as a cancel from its own call would,
 * and answers with the resulting status. Its clients get the CANCELLED
 * event through the normal path. The principal is the run's, as journald
 * told the front; it is checked again here.
 */
int
wrk_run_abort(struct wrk_ctx *ctx, uint32_t request_id,
    const Palyra__Ipc__RunAbortRequest *req)
{
	Palyra__Ipc__RunAborted reply = PALYRA__IPC__RUN_ABORTED__INIT;
	char		 reason[RUN_REASON_MAX];
	struct wrk_run	*run;
	int		 r;

	TAILQ_FOREACH(run, &ctx->runs, entry)
		if (strcmp(run->run_id, req->run_id) == 0)
			break;
	if (run != NULL && strcmp(run->principal, req->principal) == 0 &&
	    !run->refused) {
		reply.owned = 1;
		if (wrk_run_terminal(run->state))
			reply.already_terminal = 1;
		else {
			if (req->reason[0] != '\0')
				copy_reason(reason, sizeof(reason),
				    req->reason);
			else
				snprintf(reason, sizeof(reason), "aborted");
			wrk_run_transition(run, WRK_RUN_CANCELLED, reason);
		}
		/* The states and palyra.v1.RunStatus share their numbers. */
		reply.status = (Palyra__V1__RunStatus)run->state;
		wrk_run_maybe_free(run);
	}
	if (ctx->front == NULL)
		return 0;
	r = ipc_chan_send(ctx->front, IPC_RUN_ABORTED, request_id,
	    &reply.base, NULL, 0);
	if (r < 0)
		log_warn("front request %u: cannot answer abort: %s",
		    request_id, strerror(-r));
	return 0;
}

/*
 * AppendEvent: like AbortRun, the front asks every worker of the tenant;
 * the one that holds the live run appends the note as an event of its
 * own through the normal path (journaled, then forwarded to the run's
 * clients after the commit) and answers with its seq. The principal is
 * the run's, as journald told the front; it is checked again here. The
 * text's length was checked by the front, and again here.
 */
int
wrk_run_note(struct wrk_ctx *ctx, uint32_t request_id,
    const Palyra__Ipc__RunNoteRequest *req)
{
	Palyra__Ipc__RunNoted reply = PALYRA__IPC__RUN_NOTED__INIT;
	struct wrk_event ev;
	struct wrk_run	*run;
	size_t		 len = strnlen(req->text, TEXT_MAX_LEN + 1);
	int		 r;

	if (len == 0 || len > TEXT_MAX_LEN ||
	    strnlen(req->author, NAME_MAX_LEN + 1) > NAME_MAX_LEN)
		return -EBADMSG;
	TAILQ_FOREACH(run, &ctx->runs, entry)
		if (strcmp(run->run_id, req->run_id) == 0)
			break;
	if (run != NULL && strcmp(run->principal, req->principal) == 0 &&
	    !run->refused) {
		reply.owned = 1;
		reply.status = (Palyra__V1__RunStatus)run->state;
		if (wrk_run_terminal(run->state))
			reply.already_terminal = 1;
		else {
			memset(&ev, 0, sizeof(ev));
			ev.kind = WRK_EVENT_NOTE;
			if ((ev.text = strndup(req->text, len)) == NULL ||
			    (ev.author = strdup(req->author)) == NULL) {
				wrk_event_clear(&ev);
				reply.busy = 1;
			} else {
				reply.seq = run->next_seq;
				if ((r = wrk_emit(run, &ev)) < 0) {
					wrk_event_clear(&ev);
					reply.busy = 1;
					reply.seq = 0;
				}
			}
		}
	}
	if (ctx->front == NULL)
		return 0;
	r = ipc_chan_send(ctx->front, IPC_RUN_NOTED, request_id,
	    &reply.base, NULL, 0);
	if (r < 0)
		log_warn("front request %u: cannot answer note: %s",
		    request_id, strerror(-r));
	return 0;
}

void
wrk_run_forward_followers(struct wrk_run *run,
    const Palyra__Ipc__RunEventMsg *msg)
{
	struct wrk_ctx	*ctx = run->ctx;
	size_t		 i = 0;
	int		 r;

	while (i < run->nfollowers) {
		r = ipc_chan_send(ctx->front, IPC_RUN_EVENT, run->followers[i],
		    &msg->base, NULL, 0);
		if (r < 0) {
			/* The events stay in the journal; it can resume. */
			log_warn("run %s: front call %u dropped: %s",
			    run->run_id, run->followers[i], strerror(-r));
			run->followers[i] = run->followers[--run->nfollowers];
			continue;
		}
		i++;
	}
	if (msg->last)
		run->nfollowers = 0;
}

/*
 * Journald went away with its in-flight appends (already dropped): no run
 * can record anything, so every run stops here. Journald marks the runs it
 * holds as INTERRUPTED when it reconciles; this is not a transition of ours.
 */
void
wrk_run_abandon_all(struct wrk_ctx *ctx)
{
	struct wrk_run	*run, *next;

	for (run = TAILQ_FIRST(&ctx->runs); run != NULL; run = next) {
		next = TAILQ_NEXT(run, entry);
		if (run->has_call)
			wrk_call_error(run, GRPC_STATUS_UNAVAILABLE,
			    "journal unavailable");
		if (!wrk_run_terminal(run->state)) {
			log_warn("run %s abandoned in %s: journal lost",
			    run->run_id, wrk_run_state_name(run->state));
			run_quiesce(run);
			run->state = WRK_RUN_INTERRUPTED;
			ctx->nlive--;
		}
		if (run->has_parked) {
			wrk_event_clear(&run->parked);
			run->has_parked = 0;
			ctx->nparked--;
		}
		wrk_run_maybe_free(run);
	}
}

/*
 * Ends every live run with CANCELLED through the normal transition: the
 * status is journaled and, once acknowledged, forwarded to the run's call.
 */
void
wrk_run_cancel_all(struct wrk_ctx *ctx, const char *reason)
{
	struct wrk_run	*run, *next;

	for (run = TAILQ_FIRST(&ctx->runs); run != NULL; run = next) {
		next = TAILQ_NEXT(run, entry);
		if (wrk_run_terminal(run->state))
			continue;
		if (run->preparing) {
			wrk_run_drop(run, GRPC_STATUS_UNAVAILABLE, reason);
			continue;
		}
		/*
		 * A run waiting for a person is not cancelled: journald keeps
		 * it WAITING_APPROVAL once this worker is gone, and the next
		 * worker of the tenant takes it over (recover.c). Its clients
		 * learn so and reattach later.
		 */
		if (run->state == WRK_RUN_WAITING_APPROVAL) {
			log_info("run %s left waiting for its approval",
			    run->run_id);
			wrk_call_error(run, GRPC_STATUS_UNAVAILABLE, "the "
			    "worker is stopping; the run waits for its "
			    "approval: reattach to follow it");
			continue;
		}
		wrk_run_transition(run, WRK_RUN_CANCELLED, reason);
		wrk_run_maybe_free(run);
	}
}

/* At exit: stop and free every run without reporting anything. */
void
wrk_run_free_all(struct wrk_ctx *ctx)
{
	struct wrk_run	*run;

	while ((run = TAILQ_FIRST(&ctx->runs)) != NULL) {
		run_quiesce(run);
		run_free(run);
	}
	ctx->nlive = 0;
}

/* Provider sink. */

static void
run_stall(struct wrk_run *run)
{
	if (!run->stalled) {
		run->stalled = 1;
		run->ctx->nstalled++;
	}
}

/*
 * Returns 1 if the provider may produce nevents now; else 0, and the
 * provider's resume() is called once acks made room.
 */
int
wrk_run_may_emit(struct wrk_run *run, size_t nevents)
{
	/* Its client is not reading: wrk_run_flow() resumes it. */
	if (run->flow_paused) {
		run->flow_stalled = 1;
		return 0;
	}
	if (run->ctx->fifo_len + nevents <= WRK_INFLIGHT_PROVIDER)
		return 1;
	run_stall(run);
	return 0;
}

/*
 * Appends one model token. Returns 0; -EAGAIN when the pipeline is full (the
 * token was not taken; the provider waits for resume); 1 when the run ended.
 */
int
wrk_run_token(struct wrk_run *run, const char *text, size_t len)
{
	struct wrk_event ev;
	int		 r;

	if (run->state != WRK_RUN_IN_PROGRESS)
		return -EINVAL;
	memset(&ev, 0, sizeof(ev));
	ev.kind = WRK_EVENT_TOKEN;
	if ((ev.text = strndup(text, len)) == NULL)
		return wrk_run_fail(run, "out of memory");
	r = wrk_emit(run, &ev);
	if (r == -ENOBUFS || r == -ENOTCONN) {
		/*
		 * The channel's own queue is full and acks will drain it, or
		 * journald is gone and its close callback ends the run.
		 */
		wrk_event_clear(&ev);
		run_stall(run);
		return -EAGAIN;
	}
	if (r < 0)
		return wrk_run_fail(run, "journal write failed");
	return 0;
}

/* Appends one event on the way to completion; see wrk_run_complete. */
static int
complete_emit(struct wrk_run *run, struct wrk_event *ev)
{
	int	 r;

	if ((r = wrk_emit(run, ev)) == 0)
		return 0;
	wrk_event_clear(ev);
	if (r == -ENOTCONN) {
		run_stall(run);
		return -EAGAIN;
	}
	return wrk_run_fail(run, "journal write failed");
}

/*
 * The provider finished: appends the final message, the usage and the
 * COMPLETED status. Needs room for three events (check wrk_run_may_emit).
 * Returns 1: the run ended; or -EAGAIN when journald is gone (its close
 * callback ends the run; the provider just returns).
 */
int
wrk_run_complete(struct wrk_run *run, const char *text, size_t len,
    uint64_t input_tokens, uint64_t output_tokens)
{
	struct wrk_event ev;
	int		 r;

	if (run->state != WRK_RUN_IN_PROGRESS)
		return 1;
	memset(&ev, 0, sizeof(ev));
	ev.kind = WRK_EVENT_FINAL;
	if ((ev.text = strndup(text, len)) == NULL)
		return wrk_run_fail(run, "out of memory");
	if ((r = complete_emit(run, &ev)) != 0)
		return r;
	ev.kind = WRK_EVENT_USAGE;
	ev.input_tokens = input_tokens;
	ev.output_tokens = output_tokens;
	if ((r = complete_emit(run, &ev)) != 0)
		return r;
	wrk_run_transition(run, WRK_RUN_COMPLETED, NULL);
	wrk_run_maybe_free(run);
	return 1;
}

/* The provider failed. Returns 1: the run ended. */
int
wrk_run_fail(struct wrk_run *run, const char *reason)
{
	if (!wrk_run_terminal(run->state))
		wrk_run_transition(run, WRK_RUN_FAILED, reason);
	wrk_run_maybe_free(run);
	return 1;
}

/*
 * The run fails for a reason a gRPC status names (a budget refused its
 * provider call: RESOURCE_EXHAUSTED): an ErrorEvent with the status's name
 * as code and the reason as message, then FAILED with the same reason. The
 * run's own call ends with that status after the FAILED event
 * (append.c); followers end OK, as for any terminal event. An ErrorEvent
 * that finds no room is left out: the status still says why. Returns 1.
 */
int
wrk_run_fail_status(struct wrk_run *run, uint32_t grpc_status,
    const char *reason)
{
	struct wrk_event ev;
	int		 r;

	if (wrk_run_terminal(run->state)) {
		wrk_run_maybe_free(run);
		return 1;
	}
	if (grpc_status != GRPC_STATUS_OK && grpc_status < GRPC_STATUS_COUNT) {
		free(run->fail_message);
		run->fail_message = strdup(reason);
		run->fail_grpc_status = grpc_status;
		memset(&ev, 0, sizeof(ev));
		ev.kind = WRK_EVENT_ERROR;
		ev.grpc_status = grpc_status;
		/* Room for the error and the FAILED status after it. */
		if (wrk_append_room(run->ctx) >= 2 &&
		    (ev.text = strdup(reason)) != NULL) {
			if ((r = wrk_emit(run, &ev)) < 0) {
				log_warn("run %s: error event lost: %s",
				    run->run_id, strerror(-r));
				wrk_event_clear(&ev);
			}
		}
	}
	return wrk_run_fail(run, reason);
}

/*
 * A soft budget was crossed by the run's next provider call (budget.c):
 * a BudgetWarning event before the call. Returns as wrk_run_token.
 */
int
wrk_run_budget_warning(struct wrk_run *run,
    const Palyra__V1__BudgetWarning *w)
{
	struct wrk_event ev;
	int		 r;

	if (run->state != WRK_RUN_IN_PROGRESS)
		return -EINVAL;
	memset(&ev, 0, sizeof(ev));
	ev.kind = WRK_EVENT_BUDGET_WARNING;
	ev.used = w->used;
	ev.limit = w->limit;
	if ((ev.budget_id = strdup(w->budget_id)) == NULL ||
	    (ev.unit = strdup(w->unit)) == NULL ||
	    (ev.text = strdup(w->message)) == NULL) {
		wrk_event_clear(&ev);
		return wrk_run_fail(run, "out of memory");
	}
	r = wrk_emit(run, &ev);
	if (r == -ENOBUFS || r == -ENOTCONN) {
		wrk_event_clear(&ev);
		return -EAGAIN;
	}
	if (r < 0)
		return wrk_run_fail(run, "journal write failed");
	return 0;
}

/* A TOOL_CALL or TOOL_RESULT event; returns as wrk_run_token. */
static int
tool_emit(struct wrk_run *run, enum wrk_event_kind kind, const char *id,
    const char *name, int is_error, const char *text)
{
	struct wrk_event ev;
	int		 r;

	if (run->state != WRK_RUN_IN_PROGRESS)
		return -EINVAL;
	memset(&ev, 0, sizeof(ev));
	ev.kind = kind;
	ev.is_error = is_error;
	if ((ev.tool_id = strdup(id)) == NULL ||
	    (ev.tool_name = strdup(name)) == NULL ||
	    (ev.text = strdup(text)) == NULL) {
		wrk_event_clear(&ev);
		return wrk_run_fail(run, "out of memory");
	}
	r = wrk_emit(run, &ev);
	if (r == -ENOBUFS || r == -ENOTCONN) {
		wrk_event_clear(&ev);
		run_stall(run);
		return -EAGAIN;
	}
	if (r < 0)
		return wrk_run_fail(run, "journal write failed");
	return 0;
}

int
wrk_run_tool_call(struct wrk_run *run, const char *id, const char *name,
    const char *arguments_json)
{
	return tool_emit(run, WRK_EVENT_TOOL_CALL, id, name, 0,
	    arguments_json);
}

int
wrk_run_tool_result(struct wrk_run *run, const char *id, const char *name,
    int is_error, const char *content)
{
	return tool_emit(run, WRK_EVENT_TOOL_RESULT, id, name, is_error,
	    content);
}

/*
 * One turn's answer while follow-up input waits: its FinalMessage, and the
 * run goes on with the next input (prepare.c). Needs room for one event.
 */
int
wrk_run_final(struct wrk_run *run, const char *text, size_t len)
{
	struct wrk_event ev;

	if (run->state != WRK_RUN_IN_PROGRESS)
		return 1;
	memset(&ev, 0, sizeof(ev));
	ev.kind = WRK_EVENT_FINAL;
	if ((ev.text = strndup(text, len)) == NULL)
		return wrk_run_fail(run, "out of memory");
	return complete_emit(run, &ev);
}

/* An owned copy of a message (packed, then unpacked), or NULL. */
static ProtobufCMessage *
message_copy(const ProtobufCMessage *msg)
{
	ProtobufCMessage *copy;
	uint8_t		*buf;
	size_t		 len = protobuf_c_message_get_packed_size(msg);

	if ((buf = malloc(len > 0 ? len : 1)) == NULL)
		return NULL;
	protobuf_c_message_pack(msg, buf);
	copy = protobuf_c_message_unpack(msg->descriptor, NULL, len, buf);
	free(buf);
	return copy;
}

/*
 * An event of the tool gate, whose message is copied: also while the run
 * waits (WAITING_APPROVAL: the decision). Returns as wrk_run_token, but
 * -EAGAIN without stalling the provider (the gate retries by itself).
 */
static int
detail_emit(struct wrk_run *run, enum wrk_event_kind kind,
    const ProtobufCMessage *msg)
{
	struct wrk_event ev;
	int		 r;

	if (wrk_run_terminal(run->state))
		return -EINVAL;
	memset(&ev, 0, sizeof(ev));
	ev.kind = kind;
	if ((ev.detail = message_copy(msg)) == NULL)
		return wrk_run_fail(run, "out of memory");
	r = wrk_emit(run, &ev);
	if (r == -ENOBUFS || r == -ENOTCONN) {
		wrk_event_clear(&ev);
		return -EAGAIN;
	}
	if (r < 0)
		return wrk_run_fail(run, "journal write failed");
	return 0;
}

int
wrk_run_approval_request(struct wrk_run *run,
    const Palyra__V1__ApprovalRequest *req)
{
	return detail_emit(run, WRK_EVENT_APPROVAL_REQUEST, &req->base);
}

int
wrk_run_approval_decided(struct wrk_run *run,
    const Palyra__V1__ApprovalDecided *decided)
{
	return detail_emit(run, WRK_EVENT_APPROVAL_DECIDED, &decided->base);
}

/*
 * A run rebuilt after its worker died (recover.c): the run of rr with the
 * agent's config, in WAITING_APPROVAL, without a call, its wall clock
 * counted from started_ms. Returns 0 with *out; -ENOENT with *out too when
 * the agent (agent NULL) or its providers are gone (the caller fails the
 * run, which journals why); or -ENOMEM (nothing made).
 */
int
wrk_run_restore(struct wrk_ctx *ctx, const Palyra__Ipc__RecoveredRun *rr,
    const Palyra__Ipc__AgentConfig *agent, int64_t started_ms,
    struct wrk_run **out)
{
	Palyra__Ipc__AgentConfig gone = PALYRA__IPC__AGENT_CONFIG__INIT;
	const struct wrk_provider_ops *ops;
	const char	*provider_name, *model;
	char		 why[256];
	struct wrk_run	*run;
	uint32_t	 token_delay_ms;
	int64_t		 used;
	int		 missing = 0;

	*out = NULL;
	if (agent == NULL) {
		gone.name = rr->agent;
		gone.system_prompt = (char *)"";
		agent = &gone;
		missing = 1;
	}
	if (pick_provider(ctx->config, agent, &provider_name, &model,
	    &token_delay_ms, &ops) < 0) {
		provider_name = "offline";
		model = "offline-1";
		token_delay_ms = 0;
		ops = &wrk_offline_provider;
		missing = 1;
	}
	if ((run = run_new(ctx, rr->principal, rr->input, agent,
	    provider_name, model)) == NULL)
		return -ENOMEM;
	snprintf(run->run_id, sizeof(run->run_id), "%s", rr->run_id);
	snprintf(run->session_id, sizeof(run->session_id), "%s",
	    rr->session_id);
	run->token_delay_ms = token_delay_ms;
	run->provider = ops;
	run->state = WRK_RUN_WAITING_APPROVAL;
	run->recovered = 1;
	run->session_named = 1;
	*out = run;
	if (run_set_failover(run, agent) < 0 ||
	    wrk_tools_setup(run, missing ? NULL : agent, NULL, 0, why,
	    sizeof(why)) < 0)
		return -ENOMEM;
	used = wrk_now_ms() - started_ms;
	if (used < 0)
		used = 0;
	if (run_arm_wallclock(run, (uint64_t)used >= run->max_wall_clock_ms ?
	    0 : run->max_wall_clock_ms - (uint64_t)used) < 0)
		return -ENOMEM;
	return missing ? -ENOENT : 0;
}
