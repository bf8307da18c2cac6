/*
 * toolgate.c: the asynchronous half of palyra-worker's tool gate
 * (worker/tools.h, issue 7): one model tool call at a time per run, from
 * the provider's ToolCall event to the result it journals as ToolResult.
 *
 *   begin: unknown tool, bad arguments, deny      -> result now
 *          allow: time.now                        -> result now
 *                 http.fetch                      -> FETCHING -> READY
 *                 a client tool                   -> CLIENT_ASK
 *          ask: ApprovalCreate to journald        -> CREATING
 *   CREATING  -- ApprovalCreated: pending         -> ASKING
 *                               allowed by grant  -> DECIDED
 *   ASKING    -- ApprovalRequest, WAITING_APPROVAL, timer -> WAITING
 *   WAITING   -- a decision (the stream, out of band, the timer's own
 *                ApprovalDecide "timeout")        -> DECIDED
 *   DECIDED   -- ApprovalDecided, IN_PROGRESS: allow -> run it as above,
 *                deny or expired -> an error result  -> READY
 *   CLIENT_ASK  -- WAITING_TOOL, timer            -> CLIENT_WAIT
 *   CLIENT_WAIT -- the client's ClientToolResult  -> CLIENT_DONE; its
 *                  timer fails the run
 *   CLIENT_DONE -- IN_PROGRESS                    -> READY
 *   READY     -- done(run, arg); the provider takes the result.
 *
 * Events go through the run's sinks (run.c) from the gate's own step
 * timer, never from inside wrk_tool_begin or an IPC handler, and wait for
 * room in the journal pipeline by retrying the step. Every answer from
 * journald or the front is matched against the call it names; an answer
 * for a call that is gone (the run ended: wrk_tool_abort) is ignored.
 *
 * Runs in palyra-worker; touches its runs' gate state, the journald
 * channel (requests) and the front channel (errors for calls).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <jansson.h>
#include <sodium.h>

#include "fetch.h"
#include "ipc.h"
#include "log.h"
#include "tools.h"
#include "tools_int.h"
#include "worker.h"

/* A step that found no room in the pipeline tries again after this. */
#define GATE_RETRY_MS		10

enum gate_phase {
	GATE_IDLE = 0,
	GATE_CREATING,
	GATE_ASKING,
	GATE_WAITING,
	GATE_DECIDED,
	GATE_FETCHING,
	GATE_CLIENT_ASK,
	GATE_CLIENT_WAIT,
	GATE_CLIENT_DONE,
	GATE_READY,
};

struct wrk_tool_state {
	struct wrk_run		*run;
	enum gate_phase		 phase;
	char			*id;
	char			*name;		/* as the model called it */
	json_t			*args;
	struct wrk_tool_ref	 ref;
	wrk_tool_done_fn	 done;
	void			*done_arg;
	int			 notify;	/* done() is owed */

	/* Approval. */
	char			 approval_id[WRK_ID_LEN + 1];
	uint32_t		 create_id;	/* ApprovalCreate in flight */
	uint32_t		 decide_id;	/* ApprovalDecide in flight */
	int			 has_decider;	/* a stream call decided */
	uint32_t		 decider_call;
	int			 timed_out;
	int			 by_grant;	/* decided at its creation */
	int64_t			 expires_ms;
	Palyra__V1__Approval	*approval;	/* as created, then decided */

	/* The client tool's answer. */
	char			*client_content;
	int			 client_is_error;

	struct event		*timer;		/* approval, client tool */
	struct event		*step_ev;
	char			*result;
	int			 is_error;
};

static void	step_cb(evutil_socket_t, short, void *);
static void	timer_cb(evutil_socket_t, short, void *);

/* The legal moves of the gate's state machine (the diagram above); any
 * phase may go back to IDLE (the call is cleared). */
static int
gate_legal(enum gate_phase from, enum gate_phase to)
{
	if (to == GATE_IDLE)
		return 1;
	switch (from) {
	case GATE_IDLE:
		return to == GATE_CREATING || to == GATE_READY ||
		    to == GATE_FETCHING || to == GATE_CLIENT_ASK ||
		    to == GATE_WAITING;
	case GATE_CREATING:
		return to == GATE_ASKING || to == GATE_DECIDED ||
		    to == GATE_READY;
	case GATE_ASKING:
		return to == GATE_WAITING;
	case GATE_WAITING:
		return to == GATE_DECIDED;
	case GATE_DECIDED:
		return to == GATE_READY || to == GATE_FETCHING ||
		    to == GATE_CLIENT_ASK;
	case GATE_FETCHING:
		return to == GATE_READY;
	case GATE_CLIENT_ASK:
		return to == GATE_CLIENT_WAIT;
	case GATE_CLIENT_WAIT:
		return to == GATE_CLIENT_DONE;
	case GATE_CLIENT_DONE:
		return to == GATE_READY;
	case GATE_READY:
		return 0;
	}
	return 0;
}

/* The one transition function: 0, or -EINVAL for an illegal move
 * (logged; nothing changes). */
static int
gate_move(struct wrk_tool_state *st, enum gate_phase to)
{
	if (!gate_legal(st->phase, to)) {
		log_warn("run %s: tool gate: illegal move %d -> %d",
		    st->run->run_id, st->phase, to);
		return -EINVAL;
	}
	st->phase = to;
	return 0;
}

static uint32_t
next_request_id(struct wrk_ctx *ctx)
{
	if (++ctx->tool_counter == 0)
		++ctx->tool_counter;
	return ctx->tool_counter;
}

static void
schedule(struct wrk_tool_state *st, uint64_t delay_ms)
{
	struct timeval	 tv;

	tv.tv_sec = (time_t)(delay_ms / 1000);
	tv.tv_usec = (suseconds_t)(delay_ms % 1000) * 1000;
	evtimer_add(st->step_ev, &tv);
}

static void
arm_timer(struct wrk_tool_state *st, int64_t ms)
{
	struct timeval	 tv;

	if (ms < 0)
		ms = 0;
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	evtimer_add(st->timer, &tv);
}

/* Forgets the call (not the state itself, kept for the next call). */
static void
call_clear(struct wrk_tool_state *st)
{
	if (st->phase == GATE_FETCHING && st->ref.builtin != NULL &&
	    st->ref.builtin->cancel != NULL)
		st->ref.builtin->cancel(st->run);
	evtimer_del(st->timer);
	evtimer_del(st->step_ev);
	free(st->id);
	free(st->name);
	free(st->result);
	free(st->client_content);
	if (st->args != NULL)
		json_decref(st->args);
	if (st->approval != NULL)
		palyra__v1__approval__free_unpacked(st->approval, NULL);
	st->id = st->name = st->result = st->client_content = NULL;
	st->args = NULL;
	st->approval = NULL;
	memset(&st->ref, 0, sizeof(st->ref));
	st->approval_id[0] = '\0';
	st->create_id = st->decide_id = 0;
	st->has_decider = st->timed_out = st->by_grant = 0;
	st->notify = 0;
	st->phase = GATE_IDLE;
}

static struct wrk_tool_state *
state_get(struct wrk_run *run)
{
	struct wrk_tool_state *st = run->tool;

	if (st != NULL)
		return st;
	if ((st = calloc(1, sizeof(*st))) == NULL)
		return NULL;
	st->run = run;
	st->timer = evtimer_new(run->ctx->base, timer_cb, st);
	st->step_ev = evtimer_new(run->ctx->base, step_cb, st);
	if (st->timer == NULL || st->step_ev == NULL) {
		if (st->timer != NULL)
			event_free(st->timer);
		if (st->step_ev != NULL)
			event_free(st->step_ev);
		free(st);
		return NULL;
	}
	run->tool = st;
	return st;
}

void
wrk_tool_abort(struct wrk_run *run)
{
	struct wrk_tool_state *st = run->tool;

	if (st == NULL)
		return;
	call_clear(st);
	event_free(st->timer);
	event_free(st->step_ev);
	free(st);
	run->tool = NULL;
}

char *
wrk_tool_take_result(struct wrk_run *run, int *is_error)
{
	struct wrk_tool_state *st = run->tool;
	char		*result;

	if (st == NULL || st->phase != GATE_READY || st->result == NULL)
		return NULL;
	result = st->result;
	st->result = NULL;
	*is_error = st->is_error;
	call_clear(st);
	return result;
}

/* The result is known: READY, and done() on the step when owed. */
static int
ready(struct wrk_tool_state *st, int is_error, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
ready(struct wrk_tool_state *st, int is_error, const char *fmt, ...)
{
	va_list	 ap;
	int	 n;

	free(st->result);
	va_start(ap, fmt);
	n = vasprintf(&st->result, fmt, ap);
	va_end(ap);
	if (n < 0) {
		st->result = NULL;
		return -ENOMEM;
	}
	if ((size_t)n > WRK_TOOL_RESULT_MAX)
		st->result[WRK_TOOL_RESULT_MAX] = '\0';
	st->is_error = is_error;
	if (gate_move(st, GATE_READY) < 0)
		return -EINVAL;
	if (st->notify)
		schedule(st, 0);
	return 1;
}

static void
fetch_done(struct wrk_run *run, void *arg, char *result, int is_error)
{
	struct wrk_tool_state *st = arg;

	if (st->phase != GATE_FETCHING) {
		free(result);
		return;
	}
	if (result == NULL) {
		ready(st, 1, "%s: failed", st->ref.name);
		return;
	}
	if (strlen(result) > WRK_TOOL_RESULT_MAX)
		result[WRK_TOOL_RESULT_MAX] = '\0';
	free(st->result);
	st->result = result;
	st->is_error = is_error;
	/* The fetch is over: nothing left to cancel. */
	if (gate_move(st, GATE_READY) == 0)
		schedule(st, 0);
}

/*
 * Runs the allowed call. Returns 1 when the result is ready, 0 when it
 * goes on (fetch, client tool), or -ENOMEM.
 */
static int
execute(struct wrk_tool_state *st)
{
	const struct wrk_builtin *b = st->ref.builtin;
	int	 r, is_error = 1;

	if (st->ref.client != NULL) {
		if (gate_move(st, GATE_CLIENT_ASK) < 0)
			return -EINVAL;
		schedule(st, 0);
		return 0;
	}
	if (b == NULL)
		return ready(st, 1, "unknown tool %s", st->name);
	if (b->run != NULL) {
		free(st->result);
		st->result = NULL;
		if ((r = b->run(st->args, &st->result, &is_error)) < 0)
			return r;
		st->is_error = is_error;
		if (gate_move(st, GATE_READY) < 0)
			return -EINVAL;
		if (st->notify)
			schedule(st, 0);
		return 1;
	}
	if (gate_move(st, GATE_FETCHING) < 0)
		return -EINVAL;
	if (b->start == NULL)
		return ready(st, 1, "unknown tool %s", st->name);
	if ((r = b->start(st->run, st->args, fetch_done, st)) < 0) {
		if (r == -ENOMEM)
			return r;
		return ready(st, 1, "%s: cannot start: %s", st->ref.name,
		    strerror(-r));
	}
	return 0;
}

static uint64_t
approval_timeout_ms(const struct wrk_run *run)
{
	if (run->agent_cfg != NULL && run->agent_cfg->approval_timeout_ms != 0)
		return run->agent_cfg->approval_timeout_ms;
	return WRK_APPROVAL_TIMEOUT_DEFAULT_MS;
}

static uint64_t
client_timeout_ms(const struct wrk_run *run)
{
	if (run->agent_cfg != NULL &&
	    run->agent_cfg->client_tool_timeout_ms != 0)
		return run->agent_cfg->client_tool_timeout_ms;
	return WRK_CLIENT_TOOL_TIMEOUT_DEFAULT_MS;
}

/* Asks journald for a durable approval record. 0 or -errno. */
static int
approval_create(struct wrk_tool_state *st)
{
	Palyra__Ipc__ApprovalCreate msg = PALYRA__IPC__APPROVAL_CREATE__INIT;
	struct wrk_run	*run = st->run;
	struct wrk_ctx	*ctx = run->ctx;
	unsigned char	 bytes[WRK_ID_LEN / 2];
	char		*summary;
	uint32_t	 id;
	int		 r;

	if (ctx->journald == NULL || ipc_chan_dead(ctx->journald))
		return -ENOTCONN;
	if ((summary = wrk_tool_summary(st->args)) == NULL)
		return -ENOMEM;
	/* Stored with the approval: no vault value in it (vault_redact.c). */
	if (wrk_vault_redact_string(ctx, &summary) < 0) {
		free(summary);
		return -ENOMEM;
	}
	randombytes_buf(bytes, sizeof(bytes));
	sodium_bin2hex(st->approval_id, sizeof(st->approval_id), bytes,
	    sizeof(bytes));
	st->expires_ms = wrk_now_ms() + (int64_t)approval_timeout_ms(run);
	msg.approval_id = st->approval_id;
	msg.run_id = run->run_id;
	msg.session_id = run->session_id;
	msg.principal = run->principal;
	msg.agent = run->agent;
	msg.tool_call_id = st->id;
	msg.tool_name = (char *)st->ref.name;
	msg.arguments_summary = summary;
	msg.expires_unix_ms = st->expires_ms;
	id = next_request_id(ctx);
	r = ipc_chan_send(ctx->journald, IPC_APPROVAL_CREATE, id, &msg.base,
	    NULL, 0);
	free(summary);
	if (r < 0)
		return r;
	st->create_id = id;
	if (gate_move(st, GATE_CREATING) < 0)
		return -EINVAL;
	log_debug("run %s: tool %s asks approval %s", run->run_id,
	    st->ref.name, st->approval_id);
	return 0;
}

/* An owned copy of an approval (packed, then unpacked), or NULL. */
static Palyra__V1__Approval *
approval_copy(const Palyra__V1__Approval *a)
{
	Palyra__V1__Approval *copy;
	uint8_t		*buf;
	size_t		 len = palyra__v1__approval__get_packed_size(a);

	if ((buf = malloc(len > 0 ? len : 1)) == NULL)
		return NULL;
	palyra__v1__approval__pack(a, buf);
	copy = palyra__v1__approval__unpack(NULL, len, buf);
	free(buf);
	return copy;
}

static int
approval_decided(const Palyra__V1__Approval *a)
{
	return a->state == PALYRA__V1__APPROVAL_STATE__APPROVAL_STATE_ALLOWED ||
	    a->state == PALYRA__V1__APPROVAL_STATE__APPROVAL_STATE_DENIED ||
	    a->state == PALYRA__V1__APPROVAL_STATE__APPROVAL_STATE_EXPIRED;
}

/*
 * A committed decision on the approval the call waits for: journaled and
 * applied on the step. Returns 0 (also when it does not apply: another
 * approval, not waiting, not decided) or -ENOMEM.
 */
static int
apply_decision(struct wrk_tool_state *st, const Palyra__V1__Approval *a)
{
	Palyra__V1__Approval *copy;

	if (st->phase != GATE_WAITING || !approval_decided(a) ||
	    strcmp(a->approval_id, st->approval_id) != 0)
		return 0;
	if ((copy = approval_copy(a)) == NULL)
		return -ENOMEM;
	if (st->approval != NULL)
		palyra__v1__approval__free_unpacked(st->approval, NULL);
	st->approval = copy;
	evtimer_del(st->timer);
	if (gate_move(st, GATE_DECIDED) == 0)
		schedule(st, 0);
	log_debug("run %s: approval %s decided by %s", st->run->run_id,
	    st->approval_id, a->decided_by);
	return 0;
}

int
wrk_tool_begin(struct wrk_run *run, const char *id, const char *name,
    const char *args_json, wrk_tool_done_fn done, void *arg)
{
	struct wrk_tool_state *st;
	char		 shown[WRK_CLIENT_TOOL_NAME_MAX + 1];
	int		 r;

	if ((st = state_get(run)) == NULL)
		return -ENOMEM;
	call_clear(st);
	st->done = done;
	st->done_arg = arg;
	if ((st->id = strdup(id != NULL ? id : "")) == NULL ||
	    (st->name = strdup(name != NULL ? name : "")) == NULL)
		return -ENOMEM;
	if (!wrk_tool_find(run, st->name, &st->ref)) {
		wrk_tool_name_shown(st->name, shown, sizeof(shown));
		return ready(st, 1, "unknown tool %s", shown);
	}
	r = wrk_tool_check_args(&st->ref, args_json, &st->args, &st->result);
	if (r < 0)
		return r;
	if (r == 1) {
		st->is_error = 1;
		return gate_move(st, GATE_READY) < 0 ? -EINVAL : 1;
	}
	switch (wrk_tool_policy_of(run, &st->ref)) {
	case WRK_TOOL_DENY:
		return ready(st, 1, "tool %s is denied by the policy of agent "
		    "%s", st->ref.name, run->agent);
	case WRK_TOOL_ASK:
		/* A cron run whose job says deny: nobody watches it. */
		if (run->unattended_deny)
			return ready(st, 1, "tool %s needs an approval, and no "
			    "one can approve in an unattended cron run",
			    st->ref.name);
		if ((r = approval_create(st)) == -ENOMEM)
			return r;
		if (r < 0)
			return ready(st, 1, "%s: approval could not be "
			    "requested: journal unavailable", st->ref.name);
		st->notify = 1;
		return 0;
	case WRK_TOOL_ALLOW:
		break;
	}
	if ((r = execute(st)) == 0)
		st->notify = 1;
	return r;
}

int
wrk_tool_recover(struct wrk_run *run, const char *id, const char *name,
    const char *args_json, const Palyra__V1__Approval *approval,
    wrk_tool_done_fn done, void *arg)
{
	struct wrk_tool_state *st;
	char		*err = NULL;
	int		 r;

	if ((st = state_get(run)) == NULL)
		return -ENOMEM;
	call_clear(st);
	st->done = done;
	st->done_arg = arg;
	st->notify = 1;
	if ((st->id = strdup(id)) == NULL || (st->name = strdup(name)) ==
	    NULL)
		return -ENOMEM;
	snprintf(st->approval_id, sizeof(st->approval_id), "%s",
	    approval->approval_id);
	st->expires_ms = approval->expires_unix_ms;
	/* The call as the tape has it: a tool or arguments that no longer
	 * pass (a client tool of the lost stream) become an error result
	 * once decided, as a deny would. */
	if (!wrk_tool_find(run, st->name, &st->ref))
		st->ref.name = st->name;
	else if ((r = wrk_tool_check_args(&st->ref, args_json, &st->args,
	    &err)) < 0)
		return r;
	free(err);
	if (gate_move(st, GATE_WAITING) < 0)
		return -EINVAL;
	if (approval->state == PALYRA__V1__APPROVAL_STATE__APPROVAL_STATE_PENDING) {
		arm_timer(st, st->expires_ms - wrk_now_ms());
		return 0;
	}
	/* Decided while no worker held the run: applied at once. */
	return apply_decision(st, approval) < 0 ? -ENOMEM : 0;
}

/* Steps. */

/* Whether the pipeline has room for n control events; else retries. */
static int
room(struct wrk_tool_state *st, size_t n)
{
	if (wrk_append_room(st->run->ctx) >= n)
		return 1;
	schedule(st, GATE_RETRY_MS);
	return 0;
}

static int
emit_request(struct wrk_tool_state *st)
{
	Palyra__V1__ApprovalRequest req = PALYRA__V1__APPROVAL_REQUEST__INIT;

	req.approval_id = st->approval_id;
	req.tool_call_id = st->id;
	req.tool_name = (char *)st->ref.name;
	/* As journald stored it: secret values redacted. */
	req.arguments_summary = st->approval->arguments_summary;
	req.expires_unix_ms = st->expires_ms;
	return wrk_run_approval_request(st->run, &req);
}

static int
emit_decided(struct wrk_tool_state *st)
{
	Palyra__V1__ApprovalDecided ev = PALYRA__V1__APPROVAL_DECIDED__INIT;
	const Palyra__V1__Approval *a = st->approval;

	ev.approval_id = st->approval_id;
	ev.decision = a->state ==
	    PALYRA__V1__APPROVAL_STATE__APPROVAL_STATE_ALLOWED ?
	    PALYRA__V1__APPROVAL_DECISION_KIND__APPROVAL_DECISION_ALLOW :
	    PALYRA__V1__APPROVAL_DECISION_KIND__APPROVAL_DECISION_DENY;
	ev.scope = a->scope;
	ev.decided_by = a->decided_by;
	ev.reason = a->reason;
	ev.grant_id = a->grant_id;
	return wrk_run_approval_decided(st->run, &ev);
}

/* What a deny or a timeout tells the model. */
static int
refused(struct wrk_tool_state *st)
{
	const Palyra__V1__Approval *a = st->approval;
	char		 d[32];

	if (a->state == PALYRA__V1__APPROVAL_STATE__APPROVAL_STATE_EXPIRED) {
		wrk_format_duration(d, sizeof(d),
		    approval_timeout_ms(st->run));
		return ready(st, 1, "approval timed out after %s", d);
	}
	if (a->reason[0] != '\0')
		return ready(st, 1, "denied by %s: %s", a->decided_by,
		    a->reason);
	return ready(st, 1, "denied by %s", a->decided_by);
}

static void
step_cb(evutil_socket_t fd, short what, void *arg)
{
	struct wrk_tool_state *st = arg;
	struct wrk_run	*run = st->run;
	int		 r;

	switch (st->phase) {
	case GATE_ASKING:
		if (!room(st, 2))
			return;
		if ((r = emit_request(st)) == -EAGAIN) {
			schedule(st, GATE_RETRY_MS);
			return;
		}
		if (r != 0)
			return;		/* the run ended */
		if (gate_move(st, GATE_WAITING) < 0)
			return;
		arm_timer(st, st->expires_ms - wrk_now_ms());
		wrk_run_transition(run, WRK_RUN_WAITING_APPROVAL, NULL);
		return;
	case GATE_DECIDED:
		if (!room(st, 2))
			return;
		if ((r = emit_decided(st)) == -EAGAIN) {
			schedule(st, GATE_RETRY_MS);
			return;
		}
		if (r != 0)
			return;
		if (!st->by_grant && run->state == WRK_RUN_WAITING_APPROVAL)
			wrk_run_transition(run, WRK_RUN_IN_PROGRESS, NULL);
		if (st->approval->state !=
		    PALYRA__V1__APPROVAL_STATE__APPROVAL_STATE_ALLOWED)
			r = refused(st);
		else if (st->args == NULL)
			/* Recovered, and its tool is gone with its stream. */
			r = ready(st, 1, "tool %s is no longer available",
			    st->ref.name);
		else
			r = execute(st);
		if (r < 0)
			wrk_run_fail(run, "out of memory");
		return;
	case GATE_CLIENT_ASK:
		if (!room(st, 1))
			return;
		if (gate_move(st, GATE_CLIENT_WAIT) < 0)
			return;
		arm_timer(st, (int64_t)client_timeout_ms(run));
		wrk_run_transition(run, WRK_RUN_WAITING_TOOL, NULL);
		return;
	case GATE_CLIENT_DONE:
		if (!room(st, 1))
			return;
		if (run->state == WRK_RUN_WAITING_TOOL)
			wrk_run_transition(run, WRK_RUN_IN_PROGRESS, NULL);
		free(st->result);
		st->result = st->client_content;
		st->client_content = NULL;
		st->is_error = st->client_is_error;
		if (gate_move(st, GATE_READY) < 0)
			return;
		/* FALLTHROUGH */
	case GATE_READY:
		if (!st->notify)
			return;
		st->notify = 0;
		/* May end the run, which frees st: nothing after this. */
		st->done(run, st->done_arg);
		return;
	default:
		return;
	}
}

/* Sends an ApprovalDecide for the call's approval. 0 or -errno. */
static int
decide_send(struct wrk_tool_state *st, const Palyra__V1__ApprovalDecision *d,
    const char *decided_by, const char *role)
{
	Palyra__Ipc__ApprovalDecide msg = PALYRA__IPC__APPROVAL_DECIDE__INIT;
	Palyra__V1__ApprovalDecision copy = *d;
	struct wrk_ctx	*ctx = st->run->ctx;
	uint32_t	 id;
	int		 r;

	if (ctx->journald == NULL || ipc_chan_dead(ctx->journald))
		return -ENOTCONN;
	copy.approval_id = st->approval_id;
	msg.decision = &copy;
	msg.decided_by = (char *)decided_by;
	msg.role = (char *)role;
	id = next_request_id(ctx);
	if ((r = ipc_chan_send(ctx->journald, IPC_APPROVAL_DECIDE, id,
	    &msg.base, NULL, 0)) < 0)
		return r;
	st->decide_id = id;
	return 0;
}

/* The approval expired here, journald not answering: denied locally. */
static void
expire_locally(struct wrk_tool_state *st)
{
	Palyra__V1__Approval a = PALYRA__V1__APPROVAL__INIT;

	a.approval_id = st->approval_id;
	a.state = PALYRA__V1__APPROVAL_STATE__APPROVAL_STATE_EXPIRED;
	a.decided_by = (char *)"timeout";
	if (apply_decision(st, &a) < 0)
		wrk_run_fail(st->run, "out of memory");
}

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct wrk_tool_state *st = arg;
	Palyra__V1__ApprovalDecision d = PALYRA__V1__APPROVAL_DECISION__INIT;
	char		 dur[32], reason[128 + WRK_CLIENT_TOOL_NAME_MAX];

	switch (st->phase) {
	case GATE_WAITING:
		if (st->timed_out || st->decide_id != 0) {
			/* journald did not answer the timeout in time. */
			st->decide_id = 0;
			expire_locally(st);
			return;
		}
		st->timed_out = 1;
		wrk_format_duration(dur, sizeof(dur),
		    approval_timeout_ms(st->run));
		snprintf(reason, sizeof(reason), "approval timed out after %s",
		    dur);
		d.decision = PALYRA__V1__APPROVAL_DECISION_KIND__APPROVAL_DECISION_DENY;
		d.reason = reason;
		if (decide_send(st, &d, "timeout", "") < 0) {
			expire_locally(st);
			return;
		}
		/* Its answer applies the decision; this is the fallback. */
		arm_timer(st, WRK_PREPARE_TIMEOUT_MS);
		return;
	case GATE_CLIENT_WAIT:
		wrk_format_duration(dur, sizeof(dur),
		    client_timeout_ms(st->run));
		snprintf(reason, sizeof(reason), "client tool %s did not "
		    "answer within %s", st->ref.name, dur);
		wrk_run_fail(st->run, reason);
		return;
	default:
		return;
	}
}

/* IPC. */

/* The run whose own or reattached call is call_id, or NULL. */
static struct wrk_run *
run_of_call(struct wrk_ctx *ctx, uint32_t call_id)
{
	struct wrk_run	*run;
	size_t		 i;

	TAILQ_FOREACH(run, &ctx->runs, entry) {
		if (run->has_call && run->call_id == call_id)
			return run;
		for (i = 0; i < run->nfollowers; i++)
			if (run->followers[i] == call_id)
				return run;
	}
	return NULL;
}

/* Ends the front's call call_id with status (the run goes on). */
static void
call_end(struct wrk_ctx *ctx, uint32_t call_id, uint32_t status,
    const char *message)
{
	struct wrk_run	*run;
	size_t		 i;

	TAILQ_FOREACH(run, &ctx->runs, entry) {
		if (run->has_call && run->call_id == call_id)
			run->has_call = 0;
		for (i = 0; i < run->nfollowers; i++)
			if (run->followers[i] == call_id)
				run->followers[i] =
				    run->followers[--run->nfollowers];
	}
	wrk_front_error(ctx, call_id, status, message);
}

int
wrk_tool_on_decision(struct wrk_ctx *ctx, uint32_t call_id,
    const Palyra__Ipc__RunDecision *msg)
{
	const Palyra__V1__ApprovalDecision *d = msg->decision;
	struct wrk_tool_state *st;
	struct wrk_run	*run;
	char		 why[160];

	if (d == NULL)
		return -EBADMSG;
	if ((run = run_of_call(ctx, call_id)) == NULL ||
	    wrk_run_terminal(run->state)) {
		call_end(ctx, call_id, GRPC_STATUS_FAILED_PRECONDITION,
		    "the run has ended");
		return 0;
	}
	if (d->decision !=
	    PALYRA__V1__APPROVAL_DECISION_KIND__APPROVAL_DECISION_ALLOW &&
	    d->decision !=
	    PALYRA__V1__APPROVAL_DECISION_KIND__APPROVAL_DECISION_DENY) {
		call_end(ctx, call_id, GRPC_STATUS_INVALID_ARGUMENT,
		    "decision must be ALLOW or DENY");
		return 0;
	}
	if (strnlen(d->reason, WRK_APPROVAL_REASON_MAX + 1) >
	    WRK_APPROVAL_REASON_MAX) {
		call_end(ctx, call_id, GRPC_STATUS_INVALID_ARGUMENT,
		    "reason longer than 1024 bytes");
		return 0;
	}
	st = run->tool;
	snprintf(why, sizeof(why), "no pending approval %.64s on this run",
	    d->approval_id);
	/* Another principal's follower: as if there were none. */
	if (strcmp(msg->principal, run->principal) != 0 &&
	    strcmp(msg->role, "operator") != 0 &&
	    strcmp(msg->role, "admin") != 0) {
		call_end(ctx, call_id, GRPC_STATUS_NOT_FOUND, why);
		return 0;
	}
	if (st == NULL || st->phase != GATE_WAITING ||
	    strcmp(d->approval_id, st->approval_id) != 0) {
		call_end(ctx, call_id, GRPC_STATUS_FAILED_PRECONDITION, why);
		return 0;
	}
	if (st->decide_id != 0) {
		call_end(ctx, call_id, GRPC_STATUS_FAILED_PRECONDITION,
		    "the approval is being decided");
		return 0;
	}
	if (decide_send(st, d, msg->principal, msg->role) < 0) {
		call_end(ctx, call_id, GRPC_STATUS_UNAVAILABLE,
		    "journal unavailable");
		return 0;
	}
	st->has_decider = 1;
	st->decider_call = call_id;
	return 0;
}

int
wrk_tool_on_client_result(struct wrk_ctx *ctx, uint32_t call_id,
    const Palyra__Ipc__RunToolResult *msg)
{
	const Palyra__V1__ClientToolResult *res = msg->result;
	struct wrk_tool_state *st;
	struct wrk_run	*run;
	char		 why[160];

	if (res == NULL)
		return -EBADMSG;
	run = run_of_call(ctx, call_id);
	st = run != NULL ? run->tool : NULL;
	if (st == NULL || st->phase != GATE_CLIENT_WAIT ||
	    strcmp(res->tool_call_id, st->id) != 0) {
		snprintf(why, sizeof(why), "no tool call %.64s waits for a "
		    "result on this run", res->tool_call_id);
		call_end(ctx, call_id, GRPC_STATUS_FAILED_PRECONDITION, why);
		return 0;
	}
	if (strnlen(res->content, WRK_TOOL_RESULT_MAX + 1) >
	    WRK_TOOL_RESULT_MAX) {
		call_end(ctx, call_id, GRPC_STATUS_INVALID_ARGUMENT,
		    "tool result content longer than 64 KiB");
		return 0;
	}
	if ((st->client_content = strdup(res->content)) == NULL) {
		call_end(ctx, call_id, GRPC_STATUS_RESOURCE_EXHAUSTED,
		    "out of memory");
		return 0;
	}
	st->client_is_error = res->is_error;
	evtimer_del(st->timer);
	if (gate_move(st, GATE_CLIENT_DONE) == 0)
		schedule(st, 0);
	return 0;
}

int
wrk_tool_on_created(struct wrk_ctx *ctx, uint32_t request_id,
    const Palyra__Ipc__ApprovalCreated *msg)
{
	const Palyra__V1__Approval *a = msg->approval;
	struct wrk_tool_state *st = NULL;
	struct wrk_run	*run;

	TAILQ_FOREACH(run, &ctx->runs, entry)
		if ((st = run->tool) != NULL && st->phase == GATE_CREATING &&
		    st->create_id == request_id)
			break;
	if (run == NULL)
		return 0;	/* the run ended meanwhile */
	st->create_id = 0;
	if (!msg->ok || a == NULL ||
	    strcmp(a->approval_id, st->approval_id) != 0) {
		log_warn("run %s: approval %s not recorded: %s", run->run_id,
		    st->approval_id, msg->error);
		if (ready(st, 1, "%s: the approval could not be recorded",
		    st->ref.name) < 0)
			wrk_run_fail(run, "out of memory");
		return 0;
	}
	if ((st->approval = approval_copy(a)) == NULL) {
		wrk_run_fail(run, "out of memory");
		return 0;
	}
	if (a->expires_unix_ms != 0)
		st->expires_ms = a->expires_unix_ms;
	if (a->state == PALYRA__V1__APPROVAL_STATE__APPROVAL_STATE_PENDING)
		(void)gate_move(st, GATE_ASKING);
	else if (approval_decided(a)) {
		st->by_grant = 1;
		(void)gate_move(st, GATE_DECIDED);
	} else {
		if (ready(st, 1, "%s: the approval could not be recorded",
		    st->ref.name) < 0)
			wrk_run_fail(run, "out of memory");
		return 0;
	}
	schedule(st, 0);
	return 0;
}

int
wrk_tool_on_approval(struct wrk_ctx *ctx, uint32_t request_id,
    const Palyra__Ipc__ApprovalDecisionMsg *msg)
{
	const Palyra__V1__Approval *a = msg->approval;
	struct wrk_tool_state *st = NULL;
	struct wrk_run	*run;

	if (request_id == 0) {
		/* Out of band: for the run this worker holds. */
		if (a == NULL)
			return -EBADMSG;
		TAILQ_FOREACH(run, &ctx->runs, entry)
			if (strcmp(run->run_id, a->run_id) == 0 &&
			    (st = run->tool) != NULL)
				break;
		if (run != NULL && apply_decision(st, a) < 0)
			wrk_run_fail(run, "out of memory");
		return 0;
	}
	TAILQ_FOREACH(run, &ctx->runs, entry)
		if ((st = run->tool) != NULL && st->decide_id == request_id)
			break;
	if (run == NULL)
		return 0;
	st->decide_id = 0;
	if (!msg->ok && st->has_decider) {
		st->has_decider = 0;
		call_end(ctx, st->decider_call, msg->grpc_status != 0 ?
		    msg->grpc_status : GRPC_STATUS_FAILED_PRECONDITION,
		    msg->error[0] != '\0' ? msg->error : "decision refused");
	}
	st->has_decider = 0;
	if (a != NULL && approval_decided(a)) {
		if (apply_decision(st, a) < 0)
			wrk_run_fail(run, "out of memory");
	} else if (st->timed_out && st->phase == GATE_WAITING)
		expire_locally(st);
	return 0;
}
