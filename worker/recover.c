/*
 * recover.c: runs that wait for an approval outlive their worker
 * (palyra-worker, issue 7).
 *
 * A run waiting for a person may wait minutes; a worker may die meanwhile
 * (a crash, kill -9, an OOM). journald does not mark such a run
 * INTERRUPTED when the worker's channel closes: it keeps it suspended and
 * hands it to the next worker of the tenant that asks. So once its
 * WorkerConfig arrived (and on every new journald channel), the worker
 * sends IPC_RUN_RECOVER; each IPC_RUN_RECOVERED holds one run: its row,
 * every committed event, its approval (pending, or decided while no worker
 * held the run) and its session's earlier turns. The run is rebuilt here
 * in WAITING_APPROVAL, without a call (clients reattach with its run id),
 * and its provider's recover op rebuilds the conversation up to the
 * pending tool call and waits for the approval again (wrk_tool_recover).
 * A run that cannot be rebuilt (its agent is gone, say) fails with a
 * reason, which journals its end.
 *
 * Everything in the message came from journald and is checked as any
 * peer's input: ids, lengths, the state and the approval's run.
 *
 * Touches: the context's runs (through run.c), the journald channel.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "ipc.h"
#include "log.h"
#include "worker.h"

int
wrk_recover_send(struct wrk_ctx *ctx)
{
	Palyra__Ipc__RunRecover msg = PALYRA__IPC__RUN_RECOVER__INIT;
	uint32_t	 id;
	int		 r;

	if (ctx->config == NULL || ctx->journald == NULL ||
	    ipc_chan_dead(ctx->journald) || ctx->recover_sent ||
	    ctx->draining)
		return 0;
	if ((id = ++ctx->tool_counter) == 0)
		id = ++ctx->tool_counter;
	r = ipc_chan_send(ctx->journald, IPC_RUN_RECOVER, id, &msg.base, NULL,
	    0);
	if (r < 0) {
		log_warn("cannot ask journald for runs to recover: %s",
		    strerror(-r));
		return r;
	}
	ctx->recover_sent = 1;
	ctx->recover_id = id;
	return 0;
}

const Palyra__V1__ToolCall *
wrk_recover_pending_call(const Palyra__Ipc__RecoveredRun *rr)
{
	const Palyra__V1__RunEvent *ev;
	size_t	 i;

	if (rr->approval == NULL)
		return NULL;
	for (i = rr->n_events; i > 0; i--) {
		ev = rr->events[i - 1];
		if (ev->event_case == PALYRA__V1__RUN_EVENT__EVENT_TOOL_CALL &&
		    ev->tool_call != NULL &&
		    strcmp(ev->tool_call->id, rr->approval->tool_call_id) == 0)
			return ev->tool_call;
	}
	return NULL;
}

static int
run_id_valid(const char *s)
{
	size_t	 i;

	for (i = 0; s[i] != '\0'; i++)
		if (i >= WRK_ID_LEN || strchr("0123456789abcdefghijklmnopqrstu"
		    "vwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_-", s[i]) == NULL)
			return 0;
	return i > 0;
}

/* Whether rr is a run this worker can rebuild; why says what is not. */
static int
recovered_valid(const struct wrk_ctx *ctx, const Palyra__Ipc__RecoveredRun *rr,
    const char **why)
{
	const Palyra__V1__RunEvent *ev;
	uint64_t	 seq = 0;
	size_t		 i;

	*why = NULL;
	if (!run_id_valid(rr->run_id))
		*why = "malformed run id";
	else if (!wrk_session_id_valid(rr->session_id))
		*why = "malformed session id";
	else if (strnlen(rr->principal, NAME_MAX_LEN + 1) > NAME_MAX_LEN ||
	    rr->principal[0] == '\0')
		*why = "malformed principal";
	else if (!cfg_name_valid(rr->agent))
		*why = "malformed agent";
	else if (strnlen(rr->input, TEXT_MAX_LEN + 1) > TEXT_MAX_LEN)
		*why = "input too long";
	else if (rr->status !=
	    PALYRA__V1__RUN_STATUS__RUN_STATUS_WAITING_APPROVAL)
		*why = "not waiting for an approval";
	else if (rr->approval == NULL ||
	    strcmp(rr->approval->run_id, rr->run_id) != 0 ||
	    strlen(rr->approval->approval_id) != WRK_ID_LEN)
		*why = "no approval of this run";
	else if (rr->n_events == 0)
		*why = "no events";
	for (i = 0; *why == NULL && i < rr->n_events; i++) {
		ev = rr->events[i];
		if (ev->seq <= seq)
			*why = "events out of order";
		seq = ev->seq;
	}
	if (*why == NULL && wrk_recover_pending_call(rr) == NULL)
		*why = "its tool call is not in its events";
	if (*why == NULL && ctx->nlive >= WRK_MAX_RUNS)
		*why = "too many runs";
	return *why == NULL;
}

static const Palyra__Ipc__AgentConfig *
recovered_agent(const struct wrk_ctx *ctx, const Palyra__Ipc__RecoveredRun *rr)
{
	size_t	 i;

	for (i = 0; i < ctx->config->n_agents; i++)
		if (strcmp(ctx->config->agents[i]->name, rr->agent) == 0)
			return ctx->config->agents[i];
	if (rr->runtime_agent != NULL &&
	    strcmp(rr->runtime_agent->name, rr->agent) == 0 &&
	    rr->runtime_agent->n_providers > 0 &&
	    strnlen(rr->runtime_agent->system_prompt, AGENT_PROMPT_MAX + 1) <=
	    AGENT_PROMPT_MAX)
		return rr->runtime_agent;
	return NULL;
}

static int
history_copy(struct wrk_run *run, const Palyra__Ipc__RecoveredRun *rr)
{
	size_t	 first = 0, i;

	if (rr->n_history > WRK_HISTORY_MAX_TURNS)
		first = rr->n_history - WRK_HISTORY_MAX_TURNS;
	if (first == rr->n_history)
		return 0;
	run->history = calloc(rr->n_history - first, sizeof(*run->history));
	if (run->history == NULL)
		return -ENOMEM;
	for (i = first; i < rr->n_history; i++) {
		run->history[run->nhistory].input =
		    strdup(rr->history[i]->input);
		run->history[run->nhistory].output =
		    strdup(rr->history[i]->output);
		run->nhistory++;
		if (run->history[run->nhistory - 1].input == NULL ||
		    run->history[run->nhistory - 1].output == NULL)
			return -ENOMEM;
	}
	return 0;
}

static void
rebuild(struct wrk_ctx *ctx, const Palyra__Ipc__RecoveredRun *rr)
{
	const Palyra__Ipc__AgentConfig *agent;
	const Palyra__V1__RunEvent *last;
	struct wrk_run	*run;
	const char	*why;
	char		 reason[128];
	int		 r;

	if (!recovered_valid(ctx, rr, &why)) {
		log_warn("run %.64s not recovered: %s", rr->run_id, why);
		return;
	}
	TAILQ_FOREACH(run, &ctx->runs, entry)
		if (strcmp(run->run_id, rr->run_id) == 0) {
			log_warn("run %s not recovered: already held",
			    rr->run_id);
			return;
		}
	agent = recovered_agent(ctx, rr);
	r = wrk_run_restore(ctx, rr, agent, rr->events[0]->timestamp_unix_ms,
	    &run);
	if (run == NULL) {
		log_warn("run %s not recovered: out of memory", rr->run_id);
		return;
	}
	last = rr->events[rr->n_events - 1];
	run->next_seq = last->seq + 1;
	run->acked_seq = last->seq;
	if (r == 0 && history_copy(run, rr) < 0)
		r = -ENOMEM;
	if (r < 0) {
		if (r == -ENOENT)
			snprintf(reason, sizeof(reason), "agent %s or its "
			    "providers no longer exist", rr->agent);
		else
			snprintf(reason, sizeof(reason), "out of memory");
		log_warn("run %s not recovered: %s", run->run_id, reason);
		wrk_run_fail(run, reason);
		return;
	}
	run->provider_running = 1;
	r = run->provider->recover != NULL ? run->provider->recover(run, rr) :
	    -ENOTSUP;
	if (r < 0) {
		log_warn("run %s not recovered: provider %s: %s", run->run_id,
		    run->provider_name, strerror(-r));
		wrk_run_fail(run, "the run could not be recovered after its "
		    "worker stopped");
		return;
	}
	log_info("run %s recovered, waiting for approval %s", run->run_id,
	    rr->approval->approval_id);
}

int
wrk_recover_answer(struct wrk_ctx *ctx, uint32_t request_id,
    const Palyra__Ipc__RunRecovered *msg)
{
	if (ctx->recover_id == 0 || request_id != ctx->recover_id)
		return 0;
	if (msg->error[0] != '\0')
		log_warn("journald: recovering runs: %.256s", msg->error);
	if (msg->run != NULL && ctx->config != NULL && !ctx->draining)
		rebuild(ctx, msg->run);
	if (msg->done)
		ctx->recover_id = 0;
	return 0;
}
