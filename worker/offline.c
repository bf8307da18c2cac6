/*
 * offline.c: the built-in offline model provider (palyra-worker).
 *
 * A deterministic stand-in for a model so that a fresh install works with no
 * key and tests get reproducible runs. The reply to input X is exactly
 *
 *	I am the offline model of palyrad. You said: X
 *
 * streamed like a real provider: one token per event-loop turn (a
 * timer, so journal acks, cancels and other runs interleave between
 * tokens), with no delay unless the provider's token-delay asks for one
 * (slow runs for tests and demos). A token is a run of whitespace followed by a
 * run of non-whitespace, so the tokens concatenate to the reply exactly.
 *
 * Usage is counted in whitespace-separated words: the system prompt and the
 * inputs in, the emitted tokens out. Each turn is one call for budgets
 * (budget.h): it reserves first, never emits more than the agent's
 * max-output-tokens (WRK_BUDGET_DEFAULT_MAX_OUTPUT without one), and is
 * settled with its own counts. Touches nothing but its own run state.
 *
 * Session history does not change its replies, with one exception that
 * makes it visible: the input "/history" is answered with
 *
 *	I was given N earlier turns of this session. The oldest: "X"
 *
 * (X: the oldest turn's input, its first 64 bytes; without turns just the
 * first sentence, N = 0). Follow-up input queued on the run (run->inputs)
 * is answered after the current reply, each answer with its own
 * FinalMessage, in the same run.
 *
 * The tool demo (DESIGN section 9: the offline model "can also produce
 * tool calls for demos and tests"): an input "/tool NAME [ARGS]" makes it
 * call tool NAME with the JSON object text ARGS (empty: {}): a ToolCall
 * event, the call through the tool gate (wrk_tool_begin(), tools.h: the
 * agent's policy, an approval, a client tool's round trip), its
 * ToolResult event, then the reply
 *
 *	I am the offline model of palyrad. The tool NAME returned: RESULT
 *
 * ("failed" instead of "returned" for an error result). Each such call
 * counts against the agent's max-tool-calls: one over it fails the run
 * before the call is made. A run recovered while its call waited for an
 * approval (recover.c) resumes that wait: the turn is rebuilt from its
 * committed events (offline_recover).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "budget.h"
#include "log.h"
#include "tools.h"
#include "worker.h"

#define OFFLINE_PREFIX	"I am the offline model of palyrad. You said: "
#define OFFLINE_TOOL	"I am the offline model of palyrad. The tool "
/* "/history": the oldest earlier turn's input is quoted up to this. */
#define OFFLINE_QUOTE_MAX 64

enum offline_phase {
	OFFLINE_STREAM = 0,	/* tokens of the reply, then its final */
	OFFLINE_TOOL_CALL,	/* the tool demo: the ToolCall event */
	OFFLINE_TOOL_WAIT,	/* the gate has the call */
	OFFLINE_TOOL_RESULT,	/* its ToolResult event */
};

/* The id of a demo call ("offline-call-N"), or of one recovered. */
#define OFFLINE_TOOL_ID_MAX	64

struct offline_run {
	struct wrk_run	*run;
	struct event	*step_ev;
	enum offline_phase phase;
	char		*reply;
	size_t		 len;
	size_t		 pos;		/* bytes already emitted */
	uint64_t	 emitted;	/* tokens already emitted */
	uint64_t	 turn_emitted;	/* of the current turn */
	uint64_t	 input_tokens;
	/* The current turn's tool demo (/tool NAME ARGS). */
	char		*tool_name;
	char		*tool_args;
	char		*tool_result;
	int		 tool_is_error;
	unsigned int	 tool_calls;
	char		 tool_id[OFFLINE_TOOL_ID_MAX + 1];
	/* Budgets (budget.h): each turn is a call that reserves first
	 * (need_reserve, then reserving until the answer) and is settled
	 * with its own counts; conv_bytes: the run's turns so far. */
	int		 need_reserve;
	int		 reserving;
	uint64_t	 settled_in;
	uint64_t	 settled_out;
	uint64_t	 conv_bytes;
};

static int
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
	    c == '\f';
}

size_t
wrk_offline_count_words(const char *s)
{
	size_t	 n = 0;
	int	 in_word = 0;

	for (; *s != '\0'; s++) {
		if (is_space(*s))
			in_word = 0;
		else if (!in_word) {
			in_word = 1;
			n++;
		}
	}
	return n;
}

/* The end of the token starting at pos: leading whitespace, then a word. */
size_t
wrk_offline_next_token(const char *text, size_t len, size_t pos)
{
	while (pos < len && is_space(text[pos]))
		pos++;
	while (pos < len && !is_space(text[pos]))
		pos++;
	return pos;
}

static void
offline_schedule(struct offline_run *st, uint32_t delay_ms)
{
	struct timeval	 tv;

	tv.tv_sec = delay_ms / 1000;
	tv.tv_usec = (suseconds_t)(delay_ms % 1000) * 1000;
	evtimer_add(st->step_ev, &tv);
}

static void
tool_clear(struct offline_run *st)
{
	free(st->tool_name);
	free(st->tool_args);
	free(st->tool_result);
	st->tool_name = st->tool_args = st->tool_result = NULL;
}

/* "/history": how many earlier turns the run was given, and the oldest. */
static int
history_reply(struct offline_run *st)
{
	const struct wrk_run *run = st->run;
	const char	*oldest;
	size_t		 n;
	int		 len;

	if (run->nhistory == 0)
		len = asprintf(&st->reply, "I was given 0 earlier turns of "
		    "this session.");
	else {
		oldest = run->history[0].input;
		n = strnlen(oldest, OFFLINE_QUOTE_MAX);
		/* Cut at a character boundary. */
		if (oldest[n] != '\0')
			while (n > 0 && ((unsigned char)oldest[n] & 0xc0) ==
			    0x80)
				n--;
		len = asprintf(&st->reply, "I was given %zu earlier turn%s of "
		    "this session. The oldest: \"%.*s\"", run->nhistory,
		    run->nhistory == 1 ? "" : "s", (int)n, oldest);
	}
	if (len < 0) {
		st->reply = NULL;
		return -ENOMEM;
	}
	st->len = (size_t)len;
	return 0;
}

/* "/tool NAME [ARGS]": the turn calls tool NAME first. 1: it is one. */
static int
tool_parse(struct offline_run *st, const char *input)
{
	const char	*name, *end;

	if (strncmp(input, "/tool", 5) != 0 || !is_space(input[5]))
		return 0;
	for (name = input + 5; is_space(*name); name++)
		;
	for (end = name; *end != '\0' && !is_space(*end); end++)
		;
	if (end == name)
		return 0;
	while (is_space(*end))
		end++;
	if ((st->tool_name = strndup(name, (size_t)(end - name))) == NULL ||
	    (st->tool_args = strdup(end)) == NULL)
		return -ENOMEM;
	/* The name ends at the first blank. */
	st->tool_name[strcspn(st->tool_name, " \t\r\n\v\f")] = '\0';
	snprintf(st->tool_id, sizeof(st->tool_id), "offline-call-%u",
	    ++st->tool_calls);
	return 1;
}

/* Starts a turn answering input. Returns 0 or -ENOMEM. */
static int
turn_begin(struct offline_run *st, const char *input)
{
	int	 n, r;

	free(st->reply);
	st->reply = NULL;
	tool_clear(st);
	st->len = st->pos = 0;
	st->turn_emitted = 0;
	st->phase = OFFLINE_STREAM;
	st->need_reserve = 1;
	st->conv_bytes += strlen(input);
	st->input_tokens += wrk_offline_count_words(input);
	if (strcmp(input, "/history") == 0)
		return history_reply(st);
	if ((r = tool_parse(st, input)) < 0)
		return r;
	if (r == 1) {
		st->phase = OFFLINE_TOOL_CALL;
		return 0;
	}
	if ((n = asprintf(&st->reply, "%s%s", OFFLINE_PREFIX, input)) < 0) {
		st->reply = NULL;
		return -ENOMEM;
	}
	st->len = (size_t)n;
	return 0;
}

/* The gate has the call's result (tools.h): its ToolResult next. */
static void
tool_done(struct wrk_run *run, void *arg)
{
	struct offline_run *st = arg;

	free(st->tool_result);
	st->tool_result = wrk_tool_take_result(run, &st->tool_is_error);
	if (st->tool_result == NULL) {
		wrk_run_fail(run, "tool result lost");
		return;
	}
	st->phase = OFFLINE_TOOL_RESULT;
	offline_schedule(st, 0);
}

static void	turn_settle(struct offline_run *);

/*
 * The tool demo: the ToolCall event, the call through the gate, its
 * ToolResult event, then a reply that quotes the result (after its own
 * reservation: the next step). Returns 0 to go on streaming, or 1 when
 * the step must return (waits for room, for the gate or for the next
 * step, or the run ended).
 */
static int
tool_step(struct offline_run *st)
{
	struct wrk_run	*run = st->run;
	char		 reason[96];
	int		 n, r;

	if (st->phase == OFFLINE_TOOL_WAIT)
		return 1;
	if (!wrk_run_may_emit(run, 2))
		return 1;
	if (st->phase == OFFLINE_TOOL_CALL) {
		/* A demo call counts against the agent's max-tool-calls as
		 * a model's would (provider.c): over it, no call is made. */
		if (st->tool_calls > run->max_tool_calls) {
			snprintf(reason, sizeof(reason), "agent max-tool-calls "
			    "limit of %u reached", run->max_tool_calls);
			wrk_run_fail(run, reason);
			return 1;
		}
		r = wrk_run_tool_call(run, st->tool_id, st->tool_name,
		    st->tool_args);
		if (r == 1 || r == -EAGAIN)
			return 1;
		if (r < 0) {
			wrk_run_fail(run, "journal write failed");
			return 1;
		}
		/* The model's call ends with its tool call, as a network
		 * provider's: nothing stays reserved while the tool runs or
		 * waits for an approval or a client. */
		turn_settle(st);
		r = wrk_tool_begin(run, st->tool_id, st->tool_name,
		    st->tool_args, tool_done, st);
		if (r < 0) {
			wrk_run_fail(run, "out of memory");
			return 1;
		}
		if (r == 0) {
			/* tool_done() goes on. */
			st->phase = OFFLINE_TOOL_WAIT;
			return 1;
		}
		st->tool_result = wrk_tool_take_result(run,
		    &st->tool_is_error);
		if (st->tool_result == NULL) {
			wrk_run_fail(run, "tool result lost");
			return 1;
		}
		st->phase = OFFLINE_TOOL_RESULT;
	}
	r = wrk_run_tool_result(run, st->tool_id, st->tool_name,
	    st->tool_is_error, st->tool_result);
	if (r == 1 || r == -EAGAIN)
		return 1;
	if (r < 0) {
		wrk_run_fail(run, "journal write failed");
		return 1;
	}
	n = asprintf(&st->reply, "%s%s %s: %s", OFFLINE_TOOL, st->tool_name,
	    st->tool_is_error ? "failed" : "returned", st->tool_result);
	if (n < 0) {
		st->reply = NULL;
		wrk_run_fail(run, "out of memory");
		return 1;
	}
	st->len = (size_t)n;
	st->phase = OFFLINE_STREAM;
	/* The answer with the result is another call: it reserves first,
	 * with the call and its result in its prompt. */
	st->conv_bytes += strlen(st->tool_args) + strlen(st->tool_result);
	st->turn_emitted = 0;
	st->need_reserve = 1;
	offline_schedule(st, 0);
	return 1;
}

/* A turn never emits more tokens than this: what its reservation
 * counted on. */
static uint64_t
turn_max_output(const struct wrk_run *run)
{
	return run->max_output_tokens != 0 ? run->max_output_tokens :
	    WRK_BUDGET_DEFAULT_MAX_OUTPUT;
}

/* The turn's usage so far (words in, tokens out) settles its
 * reservation; the run's Usage event is the sum of its turns'. */
static void
turn_settle(struct offline_run *st)
{
	struct wrk_run	*run = st->run;

	wrk_budget_settle(run, run->provider_name, run->model,
	    st->input_tokens - st->settled_in, st->emitted - st->settled_out,
	    1);
	st->settled_in = st->input_tokens;
	st->settled_out = st->emitted;
}

static void
turn_reserved(struct wrk_run *run, void *arg, int ok, const char *why)
{
	struct offline_run *st = arg;

	st->reserving = 0;
	if (!ok) {
		wrk_run_fail_status(run, GRPC_STATUS_RESOURCE_EXHAUSTED, why);
		return;
	}
	offline_schedule(st, 0);
}

/*
 * Reserves the turn's worst case: its prompt's bytes (system prompt,
 * session history, the run's turns so far, tool declarations), which
 * bound the words counted in, and turn_max_output(). Returns 1: the step
 * waits for the answer (or the run ended).
 */
static int
turn_reserve(struct offline_run *st)
{
	struct wrk_run	*run = st->run;
	const char	*tools = wrk_tools_declarations(run);
	uint64_t	 in;
	size_t		 i;
	int		 r;

	st->need_reserve = 0;
	in = strlen(run->system_prompt) + st->conv_bytes +
	    (tools != NULL ? strlen(tools) : 0);
	for (i = 0; i < run->nhistory; i++)
		in += strlen(run->history[i].input) +
		    (run->history[i].output != NULL ?
		    strlen(run->history[i].output) : 0);
	r = wrk_budget_reserve(run, run->model, in, turn_max_output(run),
	    turn_reserved, st);
	if (r < 0) {
		wrk_run_fail(run, r == -ENOTCONN ? "journal unavailable" :
		    r == -ENOBUFS ? "journal queue full" :
		    "budget reservation failed");
		return 1;
	}
	st->reserving = 1;
	return 1;
}

static void
offline_step(evutil_socket_t fd, short what, void *arg)
{
	struct offline_run *st = arg;
	struct wrk_run	*run = st->run;
	char		*next;
	size_t		 end;
	int		 done, r;

	if (st->reserving || (st->need_reserve && turn_reserve(st) != 0))
		return;
	if (st->phase != OFFLINE_STREAM && tool_step(st) != 0)
		return;
	done = st->pos >= st->len || st->turn_emitted >= turn_max_output(run);
	if (done && run->ninputs > 0) {
		/* Follow-up input waits: this turn's answer, then the next
		 * turn in the same run. */
		if (!wrk_run_may_emit(run, 4))
			return;
		turn_settle(st);
		r = wrk_run_final(run, st->reply, st->pos);
		if (r != 0)
			return;		/* ended, or waits for room */
		st->conv_bytes += st->pos;
		next = wrk_run_next_input(run);
		r = turn_begin(st, next);
		free(next);
		if (r < 0) {
			wrk_run_fail(run, "out of memory");
			return;
		}
		offline_schedule(st, 0);
		return;
	}
	if (done) {
		if (!wrk_run_may_emit(run, 3))
			return;
		turn_settle(st);
		/* Ends the run, which stops us: st is gone afterwards. */
		wrk_run_complete(run, st->reply, st->pos, st->input_tokens,
		    st->emitted);
		return;
	}
	if (!wrk_run_may_emit(run, 1))
		return;
	end = wrk_offline_next_token(st->reply, st->len, st->pos);
	r = wrk_run_token(run, st->reply + st->pos, end - st->pos);
	if (r == 1 || r == -EAGAIN)
		return;
	if (r < 0) {
		wrk_run_fail(run, "provider error");
		return;
	}
	st->pos = end;
	st->emitted++;
	st->turn_emitted++;
	offline_schedule(st, run->token_delay_ms);
}

static void
offline_free(struct offline_run *st)
{
	if (st->step_ev != NULL)
		event_free(st->step_ev);
	free(st->reply);
	tool_clear(st);
	free(st);
}

static int
offline_start(struct wrk_run *run)
{
	struct offline_run *st;

	if ((st = calloc(1, sizeof(*st))) == NULL)
		return -ENOMEM;
	st->run = run;
	st->input_tokens = wrk_offline_count_words(run->system_prompt);
	st->step_ev = evtimer_new(run->ctx->base, offline_step, st);
	if (st->step_ev == NULL || turn_begin(st, run->input) < 0) {
		offline_free(st);
		return -ENOMEM;
	}
	run->provider_state = st;
	offline_schedule(st, 0);
	return 0;
}

static void
offline_stop(struct wrk_run *run)
{
	struct offline_run *st = run->provider_state;

	if (st == NULL)
		return;
	/* Ended inside a turn: what it emitted is what it cost. */
	turn_settle(st);
	offline_free(st);
	run->provider_state = NULL;
}

static void
offline_resume(struct wrk_run *run)
{
	struct offline_run *st = run->provider_state;

	/* Only a stalled step resumes: its delay has already passed. */
	if (st != NULL)
		offline_schedule(st, 0);
}

/*
 * A run recovered while its /tool call waited for an approval
 * (recover.c): the turn is rebuilt from the committed events (the inputs
 * taken, the tokens emitted, the calls made), follow-up input not yet
 * taken is queued again, and the wait resumes in the gate.
 */
static int
offline_recover(struct wrk_run *run, const Palyra__Ipc__RecoveredRun *rr)
{
	const Palyra__V1__ToolCall *call = wrk_recover_pending_call(rr);
	const Palyra__V1__RunEvent *ev;
	struct offline_run *st;
	char		**grown, *text;
	size_t		 i, taken = 0, queued = 0;

	if (call == NULL)
		return -EINVAL;
	if ((st = calloc(1, sizeof(*st))) == NULL)
		return -ENOMEM;
	st->run = run;
	run->provider_state = st;	/* offline_stop() frees it */
	st->input_tokens = wrk_offline_count_words(run->system_prompt) +
	    wrk_offline_count_words(run->input);
	st->conv_bytes = strlen(run->input);
	if ((st->step_ev = evtimer_new(run->ctx->base, offline_step, st)) ==
	    NULL)
		return -ENOMEM;
	for (i = 0; i < rr->n_events; i++) {
		ev = rr->events[i];
		switch (ev->event_case) {
		case PALYRA__V1__RUN_EVENT__EVENT_TOKEN:
			st->emitted++;
			break;
		case PALYRA__V1__RUN_EVENT__EVENT_TOOL_CALL:
			st->tool_calls++;
			break;
		case PALYRA__V1__RUN_EVENT__EVENT_INPUT:
			if (ev->input == NULL)
				break;
			if ((text = strdup(ev->input->text)) == NULL ||
			    (grown = reallocarray(run->inputs, run->ninputs +
			    1, sizeof(*grown))) == NULL) {
				free(text);
				return -ENOMEM;
			}
			run->inputs = grown;
			run->inputs[run->ninputs++] = text;
			queued++;
			break;
		case PALYRA__V1__RUN_EVENT__EVENT_FINAL:
			/* A turn's answer: the next input was taken. */
			if (taken < run->ninputs) {
				st->input_tokens += wrk_offline_count_words(
				    run->inputs[taken]);
				st->conv_bytes += strlen(run->inputs[taken]);
				taken++;
			}
			break;
		default:
			break;
		}
	}
	/* The inputs taken are gone from the queue. */
	for (i = 0; i < taken; i++)
		free(wrk_run_next_input(run));
	st->settled_in = st->input_tokens;
	st->settled_out = st->emitted;
	if ((st->tool_name = strdup(call->name)) == NULL ||
	    (st->tool_args = strdup(call->arguments_json)) == NULL)
		return -ENOMEM;
	snprintf(st->tool_id, sizeof(st->tool_id), "%s", call->id);
	st->phase = OFFLINE_TOOL_WAIT;
	log_debug("run %s: offline turn rebuilt (%zu inputs queued)",
	    run->run_id, queued - taken);
	return wrk_tool_recover(run, call->id, call->name,
	    call->arguments_json, rr->approval, tool_done, st);
}

const struct wrk_provider_ops wrk_offline_provider = {
	.type = "offline",
	.start = offline_start,
	.stop = offline_stop,
	.resume = offline_resume,
	.recover = offline_recover,
};
