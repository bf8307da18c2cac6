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
 * input in, the emitted tokens out. Touches nothing but its own run state.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "log.h"
#include "worker.h"

#define OFFLINE_PREFIX	"I am the offline model of palyrad. You said: "

struct offline_run {
	struct wrk_run	*run;
	struct event	*step_ev;
	char		*reply;
	size_t		 len;
	size_t		 pos;		/* bytes already emitted */
	uint64_t	 emitted;	/* tokens already emitted */
	uint64_t	 input_tokens;
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
offline_step(evutil_socket_t fd, short what, void *arg)
{
	struct offline_run *st = arg;
	struct wrk_run	*run = st->run;
	size_t		 end;
	int		 done, r;

	done = st->pos >= st->len || (run->max_output_tokens != 0 &&
	    st->emitted >= run->max_output_tokens);
	if (done) {
		if (!wrk_run_may_emit(run, 3))
			return;
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
	offline_schedule(st, run->token_delay_ms);
}

static int
offline_start(struct wrk_run *run)
{
	struct offline_run *st;
	int		 n;

	if ((st = calloc(1, sizeof(*st))) == NULL)
		return -ENOMEM;
	st->run = run;
	n = asprintf(&st->reply, "%s%s", OFFLINE_PREFIX, run->input);
	if (n < 0) {
		free(st);
		return -ENOMEM;
	}
	st->len = (size_t)n;
	st->input_tokens = wrk_offline_count_words(run->system_prompt) +
	    wrk_offline_count_words(run->input);
	st->step_ev = evtimer_new(run->ctx->base, offline_step, st);
	if (st->step_ev == NULL) {
		free(st->reply);
		free(st);
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
	event_free(st->step_ev);
	free(st->reply);
	free(st);
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

const struct wrk_provider_ops wrk_offline_provider = {
	.type = "offline",
	.start = offline_start,
	.stop = offline_stop,
	.resume = offline_resume,
};
