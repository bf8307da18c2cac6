/*
 * prepare.c: the run features around the turn loop of palyra-worker
 * (DESIGN sections 6 and 9): session history and idempotency keys, asked
 * of journald before a run's first event (IPC_RUN_PREPARE), and follow-up
 * input on a live run's stream (IPC_RUN_INPUT).
 *
 *   start -> RUN_PREPARE -> RUN_PREPARED: existing run -> the front follows
 *                                          it (RunErrorMsg.existing_run_id)
 *                                       else history -> run->history,
 *                                          memory recall (memory_tools.c),
 *                                          wrk_run_launch() (ACCEPTED, ...)
 *
 * Nothing of a run is journaled before the answer: a run dropped while it
 * prepares (cancel, lost front or journald) leaves no trace. Follow-up
 * input is queued on run->inputs (bounded: WRK_RUN_INPUTS_MAX messages,
 * WRK_RUN_INPUTS_BYTES_MAX bytes) and journaled as an Input event when it
 * arrives (or, while the run prepares, right after IN_PROGRESS); providers
 * take it with wrk_run_next_input() as the next user turn.
 *
 * Touches: the context's runs, its journald channel (requests only), the
 * front channel (errors for the calls), the journal pipeline (append.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "ipc.h"
#include "log.h"
#include "memory.h"
#include "worker.h"

/* Journald did not answer (an answer it could not queue is lost): the
 * run never started; its call learns so. */
static void
prepare_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct wrk_run	*run = arg;

	(void)fd;
	(void)what;
	if (!run->preparing)
		return;
	log_warn("run %s: journald did not answer its prepare",
	    run->run_id);
	wrk_run_drop(run, GRPC_STATUS_UNAVAILABLE, "journal did not answer");
}

int
wrk_prepare_send(struct wrk_run *run)
{
	Palyra__Ipc__RunPrepare req = PALYRA__IPC__RUN_PREPARE__INIT;
	struct wrk_ctx	*ctx = run->ctx;
	struct timeval	 tv = { WRK_PREPARE_TIMEOUT_MS / 1000,
	    (WRK_PREPARE_TIMEOUT_MS % 1000) * 1000 };
	uint32_t	 id;
	int		 r;

	if (ctx->journald == NULL || ipc_chan_dead(ctx->journald))
		return -ENOTCONN;
	/* Nothing is journaled before the vault's values are known. */
	if (wrk_vault_hold(run))
		return 0;
	if (run->prepare_ev == NULL && (run->prepare_ev = evtimer_new(
	    ctx->base, prepare_timeout_cb, run)) == NULL)
		return -ENOMEM;
	if ((id = ++ctx->prepare_counter) == 0)
		id = ++ctx->prepare_counter;
	req.session_id = run->session_id;
	req.idempotency_key = run->idempotency_key != NULL ?
	    run->idempotency_key : (char *)"";
	req.principal = run->principal;
	req.max_turns = WRK_HISTORY_MAX_TURNS;
	req.max_bytes = WRK_HISTORY_MAX_BYTES;
	req.run_id = run->run_id;
	req.input = run->input;
	r = ipc_chan_send(ctx->journald, IPC_RUN_PREPARE, id, &req.base, NULL,
	    0);
	if (r < 0)
		return r == -EPIPE ? -ENOTCONN : r;
	run->preparing = 1;
	run->prepare_id = id;
	evtimer_add(run->prepare_ev, &tv);
	return 0;
}

/* Journals one follow-up input as an Input event. 0 or -errno. */
static int
input_journal(struct wrk_run *run, const char *text)
{
	struct wrk_event ev;
	int		 r;

	memset(&ev, 0, sizeof(ev));
	ev.kind = WRK_EVENT_INPUT;
	if ((ev.text = strdup(text)) == NULL)
		return -ENOMEM;
	if ((r = wrk_emit(run, &ev)) < 0)
		wrk_event_clear(&ev);
	return r;
}

static int
history_copy(struct wrk_run *run, const Palyra__Ipc__RunPrepared *msg)
{
	const Palyra__Ipc__HistoryTurn *t;
	size_t	 first = msg->n_turns, bytes = 0, size, i;

	/* Journald trimmed them; this side holds to its own limits too,
	 * keeping the newest (the turns come oldest first). */
	while (first > 0 && msg->n_turns - first < WRK_HISTORY_MAX_TURNS) {
		t = msg->turns[first - 1];
		size = strlen(t->input) + strlen(t->output);
		if (bytes + size > WRK_HISTORY_MAX_BYTES)
			break;
		bytes += size;
		first--;
	}
	if (first == msg->n_turns)
		return 0;
	run->history = calloc(msg->n_turns - first, sizeof(*run->history));
	if (run->history == NULL)
		return -ENOMEM;
	for (i = first; i < msg->n_turns; i++) {
		t = msg->turns[i];
		run->history[run->nhistory].input = strdup(t->input);
		run->history[run->nhistory].output = strdup(t->output);
		run->nhistory++;
		if (run->history[run->nhistory - 1].input == NULL ||
		    run->history[run->nhistory - 1].output == NULL)
			return -ENOMEM;
	}
	return 0;
}

static int
run_id_valid(const char *s)
{
	size_t	 i;

	for (i = 0; s[i] != '\0'; i++)
		if (i >= 64 || strchr("0123456789abcdefghijklmnopqrstuvwxyz"
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZ_-", s[i]) == NULL)
			return 0;
	return i > 0;
}

/* Tells the front to follow the existing run instead; drops run. */
static void
redirect(struct wrk_run *run, const char *existing)
{
	Palyra__Ipc__RunErrorMsg msg = PALYRA__IPC__RUN_ERROR_MSG__INIT;
	struct wrk_ctx	*ctx = run->ctx;
	int		 r;

	log_info("session %s: idempotency key names run %s; no new run",
	    run->session_id, existing);
	wrk_run_report_existing(run, existing);
	if (run->has_call && ctx->front != NULL) {
		msg.grpc_status = GRPC_STATUS_OK;
		msg.message = (char *)"idempotency key names an existing run";
		msg.existing_run_id = (char *)existing;
		r = ipc_chan_send(ctx->front, IPC_RUN_ERROR, run->call_id,
		    &msg.base, NULL, 0);
		if (r < 0)
			log_warn("front call %u: cannot redirect: %s",
			    run->call_id, strerror(-r));
		else
			run->has_call = 0;
	}
	wrk_run_drop(run, GRPC_STATUS_UNAVAILABLE, "front unavailable");
}

int
wrk_prepare_answer(struct wrk_ctx *ctx, uint32_t request_id,
    const Palyra__Ipc__RunPrepared *msg)
{
	struct wrk_run	*run;
	uint32_t	 status;

	TAILQ_FOREACH(run, &ctx->runs, entry)
		if (run->preparing && run->prepare_id == request_id)
			break;
	if (run == NULL)
		return 0;	/* dropped meanwhile */
	if (!msg->ok) {
		log_warn("run %s: journald: %s", run->run_id, msg->error);
		status = GRPC_STATUS_UNAVAILABLE;
		if (strncmp(msg->error, "invalid ", 8) == 0 ||
		    strstr(msg->error, "too long") != NULL)
			status = GRPC_STATUS_INVALID_ARGUMENT;
		else if (strncmp(msg->error, "too many", 8) == 0)
			status = GRPC_STATUS_RESOURCE_EXHAUSTED;
		else if (strncmp(msg->error, "a run with this", 15) == 0)
			status = GRPC_STATUS_ABORTED;
		wrk_run_drop(run, status,
		    status == GRPC_STATUS_UNAVAILABLE ? "journal unavailable" :
		    msg->error);
		return 0;
	}
	if (msg->existing_run_id[0] != '\0') {
		if (!run_id_valid(msg->existing_run_id)) {
			wrk_run_drop(run, GRPC_STATUS_INTERNAL,
			    "journal answered a malformed run id");
			return 0;
		}
		redirect(run, msg->existing_run_id);
		return 0;
	}
	if (history_copy(run, msg) < 0) {
		wrk_run_drop(run, GRPC_STATUS_RESOURCE_EXHAUSTED,
		    "out of memory");
		return 0;
	}
	log_debug("run %s: %zu earlier turns of session %s", run->run_id,
	    run->nhistory, run->session_id);
	/* The agent's memory recall, if any, before the first event. */
	wrk_memory_recall(run);
	return 0;
}

/* Ends only this call (the run goes on) with status and message. */
static void
input_refused(struct wrk_ctx *ctx, struct wrk_run *run, uint32_t call_id,
    uint32_t status, const char *message)
{
	if (run != NULL && run->has_call && run->call_id == call_id)
		run->has_call = 0;
	wrk_front_error(ctx, call_id, status, message);
}

int
wrk_run_input(struct wrk_ctx *ctx, uint32_t call_id,
    const Palyra__Ipc__RunInput *req)
{
	struct wrk_run	*run, *found = NULL;
	char		**grown, *text;
	size_t		 len = strnlen(req->text, TEXT_MAX_LEN + 1), i;
	size_t		 queued = 0;

	if (len == 0 || len > TEXT_MAX_LEN ||
	    (req->call_id != 0 && req->call_id != call_id))
		return -EBADMSG;	/* the front checked these */
	TAILQ_FOREACH(run, &ctx->runs, entry) {
		if (run->has_call && run->call_id == call_id) {
			found = run;
			break;
		}
		for (i = 0; i < run->nfollowers; i++)
			if (run->followers[i] == call_id) {
				input_refused(ctx, NULL, call_id,
				    GRPC_STATUS_FAILED_PRECONDITION,
				    "input on a reattached stream");
				return 0;
			}
	}
	if ((run = found) == NULL || wrk_run_terminal(run->state)) {
		input_refused(ctx, run, call_id,
		    GRPC_STATUS_FAILED_PRECONDITION, "the run has ended");
		return 0;
	}
	/* Counted here: a provider may take inputs off the queue itself. */
	for (i = 0; i < run->ninputs; i++)
		queued += strlen(run->inputs[i]);
	if (run->ninputs >= WRK_RUN_INPUTS_MAX ||
	    queued + len > WRK_RUN_INPUTS_BYTES_MAX) {
		input_refused(ctx, run, call_id,
		    GRPC_STATUS_RESOURCE_EXHAUSTED,
		    "too much input waiting for the model");
		return 0;
	}
	if ((text = strndup(req->text, len)) == NULL ||
	    (grown = reallocarray(run->inputs, run->ninputs + 1,
	    sizeof(*grown))) == NULL) {
		free(text);
		input_refused(ctx, run, call_id,
		    GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return 0;
	}
	run->inputs = grown;
	/* Journaled now; while the run prepares, after its IN_PROGRESS. */
	if (!run->preparing && input_journal(run, text) < 0) {
		free(text);
		input_refused(ctx, run, call_id,
		    GRPC_STATUS_RESOURCE_EXHAUSTED, "journal queue full");
		return 0;
	}
	run->inputs[run->ninputs++] = text;
	log_debug("run %s: input queued (%zu waiting)", run->run_id,
	    run->ninputs);
	return 0;
}

void
wrk_prepare_journal_inputs(struct wrk_run *run)
{
	size_t	 i;

	for (i = 0; i < run->ninputs; i++)
		if (input_journal(run, run->inputs[i]) < 0)
			log_warn("run %s: input %zu not journaled",
			    run->run_id, i + 1);
}

char *
wrk_run_next_input(struct wrk_run *run)
{
	char	*text;

	if (run->ninputs == 0)
		return NULL;
	text = run->inputs[0];
	memmove(run->inputs, run->inputs + 1,
	    (run->ninputs - 1) * sizeof(*run->inputs));
	run->ninputs--;
	return text;
}
