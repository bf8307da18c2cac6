/*
 * budget.h: budgets that cannot be overshot (DESIGN section 9, issue 7).
 *
 * Before each provider call the worker reserves the call's worst case
 * with journald, the single writer of the tenant's usage: the input
 * estimate (the bytes of the prompt: no tokenizer counts more tokens than
 * bytes) plus the call's max output tokens, in tokens and in micro-USD at
 * the model's price (WorkerConfig.pricing). journald serializes the
 * reservations of every worker of the tenant, so concurrent runs cannot
 * cross a hard budget together. After the call the reservation is settled
 * with the provider's real usage (or, when the provider reported none,
 * with the reservation itself).
 */
#ifndef PALYRA_WORKER_BUDGET_H
#define PALYRA_WORKER_BUDGET_H

#include <stdint.h>

#include "ipc.pb-c.h"

struct wrk_run;
struct wrk_ctx;

/* The max output tokens reserved (and asked of the provider) for a call
 * of a run whose agent sets none. */
#define WRK_BUDGET_DEFAULT_MAX_OUTPUT	4096

/*
 * ok 1: the call may go on. ok 0: a hard budget refused it; why names the
 * budget (the run fails RESOURCE_EXHAUSTED with it). Soft budgets crossed
 * were already journaled as BudgetWarning events (once per run and
 * budget) before done is called.
 */
typedef void (*wrk_budget_fn)(struct wrk_run *, void *arg, int ok,
    const char *why);

/* Reserves for one provider call of run on model. Returns 0 (done is
 * called later, once, unless the run ends first) or a negative errno.
 * One reservation at a time per run. */
int	wrk_budget_reserve(struct wrk_run *, const char *model,
	    uint64_t input_estimate, uint64_t max_output, wrk_budget_fn done,
	    void *arg);

/* Settles the run's reservation with the call's real usage (input_tokens
 * and output_tokens 0 and reported 0: the provider gave none, the
 * reservation is recorded). No-op without a reservation. */
void	wrk_budget_settle(struct wrk_run *, const char *provider,
	    const char *model, uint64_t input_tokens, uint64_t output_tokens,
	    int reported);

/* The run ends: a reservation awaiting its answer is forgotten (the answer
 * is then settled at zero), a held one settled as not reported. */
void	wrk_budget_abort(struct wrk_run *);

/* Journald's channel is gone (it released every reservation of this
 * worker with it), or the worker exits: the questions of runs that ended
 * before their answer are forgotten. */
void	wrk_budget_forget(struct wrk_ctx *);

/* IPC_BUDGET_RESERVED from journald. Returns 0 or -EBADMSG. */
int	wrk_budget_on_reserved(struct wrk_ctx *, uint32_t request_id,
	    const Palyra__Ipc__BudgetReserved *);

/* The cost in micro-USD of tokens of model (rounded up); 0 without a
 * price. */
uint64_t wrk_budget_cost(const struct wrk_ctx *, const char *model,
	    uint64_t input_tokens, uint64_t output_tokens);

#endif
