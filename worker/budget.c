/*
 * budget.c: the worker's side of budgets that cannot be overshot
 * (palyra-worker; DESIGN section 9, issue 7, worker/budget.h).
 *
 * Each provider call of a run is bracketed by a reservation: before it,
 * the worst case (input estimate + max output tokens, and its cost at the
 * model's price) is reserved with journald (IPC_BUDGET_RESERVE), which
 * holds every budget of the tenant and serializes the reservations of all
 * its workers; after it, the reservation is settled with the call's real
 * usage (IPC_BUDGET_SETTLE), which journald records as the usage of the
 * tenant, agent, principal and day.
 *
 * A run holds at most one reservation, in one of three states: none, one
 * asked for (waiting for IPC_BUDGET_RESERVED), one held (the call is under
 * way). A run that ends while its question is out forgets it; the answer,
 * when it comes, is settled at zero so that journald releases it. Soft
 * budgets crossed come back as warnings with the answer and become one
 * BudgetWarning event per run and budget (run.c).
 *
 * Touches: the journald channel of the context, the run's budget state,
 * its sinks in run.c. Costs are integers in micro-USD throughout.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grpc_status.h"
#include "ipc.h"
#include "log.h"
#include "budget.h"
#include "worker.h"

/* Budget ids journald sends are at most this long ("agent:NAME:cost:
 * month" with a NAME_MAX_LEN name fits); longer ones are malformed. */
#define BUDGET_ID_MAX		(NAME_MAX_LEN + 32)
/* Warnings in one answer, and budgets one run remembers warning about: a
 * tenant has at most this many budgets that can apply to one call. */
#define BUDGET_WARNINGS_MAX	64
/* The refusal's text is cut to this (it names the budget first). */
#define BUDGET_ERROR_MAX	512

enum budget_phase {
	BUDGET_NONE = 0,	/* no reservation */
	BUDGET_ASKED,		/* IPC_BUDGET_RESERVE sent, no answer yet */
	BUDGET_HELD,		/* granted: the call is under way */
};

struct wrk_budget_state {
	enum budget_phase	 phase;
	uint32_t		 request_id;	/* ASKED */
	uint64_t		 reservation;	/* HELD: journald's id */
	/* What was reserved: settled as is when the provider reports no
	 * usage. */
	uint64_t		 input_estimate;
	uint64_t		 max_output;
	uint64_t		 cost;
	char			*model;
	wrk_budget_fn		 done;
	void			*arg;
	/* Soft budgets this run was already warned about. */
	char			*warned[BUDGET_WARNINGS_MAX];
	size_t			 nwarned;
};

/*
 * A question whose run ended before the answer came. Kept on the context
 * (not the run, which is gone) until the answer arrives, to settle the
 * reservation at zero: journald must not hold it until the worker exits.
 */
struct wrk_budget_orphan {
	struct wrk_budget_orphan *next;
	uint32_t		 request_id;
	char			*run_id;
	char			*agent;
	char			*principal;
	char			*model;
};

static uint64_t
sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/*
 * A price in USD per million tokens is micro-USD per token; kept as an
 * integer count of millionths of a micro-USD per token, so that the sum
 * is exact and rounded up once (0.4 * 1000 must cost 400, not 401).
 */
static uint64_t
price_units(double usd_per_million)
{
	double	 v;

	/* The supervisor checked the range; anything odd costs nothing
	 * rather than overflowing (NaN fails every comparison). */
	if (!(usd_per_million > 0))
		return 0;
	v = usd_per_million * 1e6 + 0.5;
	if (v >= 18446744073709551615.0)
		return UINT64_MAX;
	return (uint64_t)v;
}

/* a * b, saturated (a token count times a price may not fit). */
static unsigned __int128
mul_sat(uint64_t a, uint64_t b)
{
	const unsigned __int128 max = ~(unsigned __int128)0;

	if (a != 0 && b > max / a)
		return max;
	return (unsigned __int128)a * b;
}

uint64_t
wrk_budget_cost(const struct wrk_ctx *ctx, const char *model,
    uint64_t input_tokens, uint64_t output_tokens)
{
	const Palyra__Ipc__Pricing *p = NULL;
	unsigned __int128 in, out, units;
	size_t		 i;

	if (ctx->config == NULL || model == NULL)
		return 0;
	for (i = 0; i < ctx->config->n_pricing; i++)
		if (ctx->config->pricing[i]->model != NULL &&
		    strcmp(ctx->config->pricing[i]->model, model) == 0) {
			p = ctx->config->pricing[i];
			break;
		}
	if (p == NULL)
		return 0;
	in = mul_sat(input_tokens, price_units(p->input_per_million));
	out = mul_sat(output_tokens, price_units(p->output_per_million));
	/* Rounded up once, over the sum; saturated. */
	if (in > ~(unsigned __int128)0 - out - 999999)
		return UINT64_MAX;
	units = (in + out + 999999) / 1000000;
	return units > UINT64_MAX ? UINT64_MAX : (uint64_t)units;
}

static struct wrk_budget_state *
state_get(struct wrk_run *run)
{
	if (run->budget == NULL)
		run->budget = calloc(1, sizeof(*run->budget));
	return run->budget;
}

static void
state_free(struct wrk_budget_state *st)
{
	size_t	 i;

	for (i = 0; i < st->nwarned; i++)
		free(st->warned[i]);
	free(st->model);
	free(st);
}

static int
journald_up(const struct wrk_ctx *ctx)
{
	return ctx->journald != NULL && !ipc_chan_dead(ctx->journald);
}

int
wrk_budget_reserve(struct wrk_run *run, const char *model,
    uint64_t input_estimate, uint64_t max_output, wrk_budget_fn done,
    void *arg)
{
	struct wrk_ctx	*ctx = run->ctx;
	struct wrk_budget_state *st;
	Palyra__Ipc__BudgetReserve msg = PALYRA__IPC__BUDGET_RESERVE__INIT;
	uint32_t	 id;
	char		*m;
	int		 r;

	if (done == NULL || model == NULL)
		return -EINVAL;
	if ((st = state_get(run)) == NULL)
		return -ENOMEM;
	if (st->phase != BUDGET_NONE)
		return -EBUSY;
	if (!journald_up(ctx))
		return -ENOTCONN;
	if ((m = strdup(model)) == NULL)
		return -ENOMEM;
	msg.run_id = run->run_id;
	msg.agent = run->agent;
	msg.principal = run->principal;
	msg.tokens = sat_add(input_estimate, max_output);
	msg.cost_micro_usd = wrk_budget_cost(ctx, model, input_estimate,
	    max_output);
	/* Ids go round; 0 is skipped, as it is what an unset id looks
	 * like. */
	if ((id = ctx->budget_counter + 1) == 0)
		id = 1;
	r = ipc_chan_send(ctx->journald, IPC_BUDGET_RESERVE, id, &msg.base,
	    NULL, 0);
	if (r < 0) {
		free(m);
		return r == -EPIPE ? -ENOTCONN : r;
	}
	ctx->budget_counter = id;
	free(st->model);
	st->model = m;
	st->phase = BUDGET_ASKED;
	st->request_id = id;
	st->input_estimate = input_estimate;
	st->max_output = max_output;
	st->cost = msg.cost_micro_usd;
	st->done = done;
	st->arg = arg;
	log_debug("run %s: reserving %llu tokens, %llu micro-USD (%s)",
	    run->run_id, (unsigned long long)msg.tokens,
	    (unsigned long long)msg.cost_micro_usd, model);
	return 0;
}

static void
settle_send(struct wrk_ctx *ctx, uint64_t reservation, const char *run_id,
    const char *agent, const char *principal, const char *provider,
    const char *model, uint64_t input_tokens, uint64_t output_tokens,
    uint64_t cost)
{
	Palyra__Ipc__BudgetSettle msg = PALYRA__IPC__BUDGET_SETTLE__INIT;
	int	 r;

	if (!journald_up(ctx))
		return;		/* journald released it with the channel */
	msg.reservation = reservation;
	msg.run_id = (char *)run_id;
	msg.agent = (char *)agent;
	msg.principal = (char *)principal;
	msg.provider = (char *)(provider != NULL ? provider : "");
	msg.model = (char *)(model != NULL ? model : "");
	msg.input_tokens = input_tokens;
	msg.output_tokens = output_tokens;
	msg.cost_micro_usd = cost;
	r = ipc_chan_send(ctx->journald, IPC_BUDGET_SETTLE, 0, &msg.base,
	    NULL, 0);
	if (r < 0)
		log_warn("run %s: cannot settle reservation %llu: %s", run_id,
		    (unsigned long long)reservation, strerror(-r));
}

void
wrk_budget_settle(struct wrk_run *run, const char *provider,
    const char *model, uint64_t input_tokens, uint64_t output_tokens,
    int reported)
{
	struct wrk_budget_state *st = run->budget;
	uint64_t	 cost;

	if (st == NULL || st->phase != BUDGET_HELD)
		return;
	if (model == NULL || model[0] == '\0')
		model = st->model;
	if (!reported) {
		/* Nothing known: the worst case is what it cost. */
		input_tokens = st->input_estimate;
		output_tokens = st->max_output;
		cost = strcmp(model, st->model) == 0 ? st->cost :
		    wrk_budget_cost(run->ctx, model, input_tokens,
		    output_tokens);
	} else
		cost = wrk_budget_cost(run->ctx, model, input_tokens,
		    output_tokens);
	if (reported && sat_add(input_tokens, output_tokens) >
	    sat_add(st->input_estimate, st->max_output))
		log_warn("run %s: provider reported %llu+%llu tokens, over "
		    "the %llu+%llu reserved", run->run_id,
		    (unsigned long long)input_tokens,
		    (unsigned long long)output_tokens,
		    (unsigned long long)st->input_estimate,
		    (unsigned long long)st->max_output);
	settle_send(run->ctx, st->reservation, run->run_id, run->agent,
	    run->principal, provider, model, input_tokens, output_tokens,
	    cost);
	st->phase = BUDGET_NONE;
	st->reservation = 0;
}

/* Keeps the question of a run that ends for its answer. */
static void
orphan_add(struct wrk_run *run, struct wrk_budget_state *st)
{
	struct wrk_ctx	*ctx = run->ctx;
	struct wrk_budget_orphan *o;

	if (!journald_up(ctx))
		return;
	if ((o = calloc(1, sizeof(*o))) == NULL ||
	    (o->run_id = strdup(run->run_id)) == NULL ||
	    (o->agent = strdup(run->agent)) == NULL ||
	    (o->principal = strdup(run->principal)) == NULL ||
	    (o->model = strdup(st->model)) == NULL) {
		/* Journald still releases it when this worker goes. */
		log_warn("run %s: out of memory; reservation kept until the "
		    "worker exits", run->run_id);
		if (o != NULL) {
			free(o->run_id);
			free(o->agent);
			free(o->principal);
			free(o);
		}
		return;
	}
	o->request_id = st->request_id;
	o->next = ctx->budget_orphans;
	ctx->budget_orphans = o;
}

static void
orphan_free(struct wrk_budget_orphan *o)
{
	free(o->run_id);
	free(o->agent);
	free(o->principal);
	free(o->model);
	free(o);
}

void
wrk_budget_abort(struct wrk_run *run)
{
	struct wrk_budget_state *st = run->budget;

	if (st == NULL)
		return;
	if (st->phase == BUDGET_ASKED)
		orphan_add(run, st);
	else if (st->phase == BUDGET_HELD)
		wrk_budget_settle(run, run->provider_name, st->model, 0, 0, 0);
	run->budget = NULL;
	state_free(st);
}

void
wrk_budget_forget(struct wrk_ctx *ctx)
{
	struct wrk_budget_orphan *o;

	while ((o = ctx->budget_orphans) != NULL) {
		ctx->budget_orphans = o->next;
		orphan_free(o);
	}
}

static int
warned_before(const struct wrk_budget_state *st, const char *id)
{
	size_t	 i;

	for (i = 0; i < st->nwarned; i++)
		if (strcmp(st->warned[i], id) == 0)
			return 1;
	return 0;
}

/*
 * Journals the soft budgets crossed that this run was not warned about
 * yet. Returns 0, or 1 when the run ended meanwhile. A warning that finds
 * no room in the pipeline is not remembered: the next call warns again.
 */
static int
warn(struct wrk_run *run, const Palyra__Ipc__BudgetReserved *msg)
{
	struct wrk_budget_state *st = run->budget;
	const Palyra__V1__BudgetWarning *w;
	char		*id;
	size_t		 i;
	int		 r;

	for (i = 0; i < msg->n_warnings; i++) {
		w = msg->warnings[i];
		if (warned_before(st, w->budget_id))
			continue;
		r = wrk_run_budget_warning(run, w);
		if (r == 1)
			return 1;
		if (r < 0) {
			log_warn("run %s: budget warning %s not journaled: %s",
			    run->run_id, w->budget_id, strerror(-r));
			continue;
		}
		if (st->nwarned < BUDGET_WARNINGS_MAX &&
		    (id = strdup(w->budget_id)) != NULL)
			st->warned[st->nwarned++] = id;
	}
	return 0;
}

static int
reserved_valid(const Palyra__Ipc__BudgetReserved *msg)
{
	const Palyra__V1__BudgetWarning *w;
	size_t	 i;

	if (msg->n_warnings > BUDGET_WARNINGS_MAX ||
	    strnlen(msg->budget_id, BUDGET_ID_MAX + 1) > BUDGET_ID_MAX ||
	    strnlen(msg->error, TEXT_MAX_LEN + 1) > TEXT_MAX_LEN)
		return 0;
	for (i = 0; i < msg->n_warnings; i++) {
		w = msg->warnings[i];
		if (w == NULL || w->budget_id[0] == '\0' ||
		    strnlen(w->budget_id, BUDGET_ID_MAX + 1) > BUDGET_ID_MAX ||
		    strnlen(w->message, TEXT_MAX_LEN + 1) > TEXT_MAX_LEN ||
		    strnlen(w->unit, 16) >= 16)
			return 0;
	}
	return 1;
}

/* The refusal as the run's reason: journald's text, which names the
 * budget, else the budget id; cut at a character boundary. */
static void
refusal_text(char *buf, size_t size, const Palyra__Ipc__BudgetReserved *msg)
{
	size_t	 n;

	if (msg->error[0] == '\0') {
		snprintf(buf, size, "budget %s exceeded",
		    msg->budget_id[0] != '\0' ? msg->budget_id : "(unnamed)");
		return;
	}
	n = strnlen(msg->error, size - 1);
	if (msg->error[n] != '\0')
		while (n > 0 && ((unsigned char)msg->error[n] & 0xc0) == 0x80)
			n--;
	memcpy(buf, msg->error, n);
	buf[n] = '\0';
}

int
wrk_budget_on_reserved(struct wrk_ctx *ctx, uint32_t request_id,
    const Palyra__Ipc__BudgetReserved *msg)
{
	struct wrk_budget_orphan **op, *o;
	struct wrk_budget_state *st = NULL;
	struct wrk_run	*run;
	wrk_budget_fn	 done;
	void		*arg;
	char		 why[BUDGET_ERROR_MAX];

	if (!reserved_valid(msg)) {
		log_warn("journald: malformed budget answer %u", request_id);
		return -EBADMSG;
	}
	TAILQ_FOREACH(run, &ctx->runs, entry)
		if ((st = run->budget) != NULL &&
		    st->phase == BUDGET_ASKED && st->request_id == request_id)
			break;
	if (run == NULL) {
		for (op = &ctx->budget_orphans; (o = *op) != NULL;
		    op = &o->next)
			if (o->request_id == request_id)
				break;
		if (o == NULL) {
			/* A question forgotten for want of memory: journald
			 * releases its reservation when this worker goes. */
			log_warn("journald: budget answer %u to no question",
			    request_id);
			return 0;
		}
		*op = o->next;
		/* Its run is gone: the reservation is released unused. */
		if (msg->ok)
			settle_send(ctx, msg->reservation, o->run_id,
			    o->agent, o->principal, "", o->model, 0, 0, 0);
		orphan_free(o);
		return 0;
	}
	done = st->done;
	arg = st->arg;
	st->done = NULL;
	st->arg = NULL;
	if (!msg->ok) {
		st->phase = BUDGET_NONE;
		refusal_text(why, sizeof(why), msg);
		log_info("run %s: provider call refused: %s", run->run_id,
		    why);
		done(run, arg, 0, why);
		return 0;
	}
	st->phase = BUDGET_HELD;
	st->reservation = msg->reservation;
	if (warn(run, msg) == 1 || wrk_run_terminal(run->state))
		return 0;
	done(run, arg, 1, NULL);
	return 0;
}
