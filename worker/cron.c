/*
 * cron.c: the runs of cron fires in palyra-worker (DESIGN section 9,
 * issue 8). journald schedules and records every fire
 * (journald/cron.c); it hands a fire to a worker of the job's tenant as
 * IPC_CRON_FIRE, and the worker starts the run through the normal run
 * path with no client (wrk_run_start_detached, run.c): the job owner's
 * principal, its agent, budgets and tool policies. The answer,
 * IPC_CRON_FIRED, names the run that started, or the existing run the
 * fire's idempotency key ("cron:JOB:SCHEDULED") names when the fire was
 * offered before (a worker died before it answered), or why no run
 * started.
 *
 * An unattended run cannot ask a person: with the job's policy DENY (the
 * default) a tool whose policy is `ask` is refused at once with a reason
 * the model reads (toolgate.c); WAIT takes the normal approval path.
 *
 * Touches: the journald channel (the answer only) and, through run.c,
 * the worker's runs.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "worker.h"

/* journald's job ids: 32 lower-hex. */
static int
job_id_valid(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (i >= 32 || strchr("0123456789abcdef", s[i]) == NULL)
			return 0;
	return i == 32;
}

/* The start's answer to journald (request id: the fire's request). */
static void
cron_started(struct wrk_ctx *ctx, uint32_t request_id, uint32_t grpc_status,
    const char *message, const char *run_id)
{
	Palyra__Ipc__CronFired msg = PALYRA__IPC__CRON_FIRED__INIT;
	int r;

	if (grpc_status == GRPC_STATUS_OK)
		log_info("cron fire %u: run %s", request_id, run_id);
	else
		log_warn("cron fire %u: no run: %s", request_id, message);
	if (ctx->journald == NULL || ipc_chan_dead(ctx->journald))
		return; /* journald offers the fire again */
	msg.grpc_status = grpc_status;
	msg.error = (char *)(message != NULL ? message : "");
	msg.run_id = (char *)(run_id != NULL ? run_id : "");
	if ((r = ipc_chan_send(ctx->journald, IPC_CRON_FIRED, request_id,
		 &msg.base, NULL, 0)) < 0)
		log_warn("cron fire %u: cannot answer journald: %s", request_id,
		    strerror(-r));
}

int
wrk_cron_fire(struct wrk_ctx *ctx, uint32_t request_id,
    const Palyra__Ipc__CronFireRequest *m)
{
	const Palyra__Ipc__RunStartRequest *req = m->start;

	/* journald built this message; one it could not have built
	 * drops the channel (the caller's -EBADMSG). */
	if (!job_id_valid(m->job_id) || req == NULL || req->start == NULL ||
	    m->scheduled_unix_ms <= 0 ||
	    req->start->idempotency_key[0] == '\0' || req->start->n_tools != 0)
		return -EBADMSG;
	log_debug("cron job %s: fire of %lld for principal %.64s", m->job_id,
	    (long long)m->scheduled_unix_ms, req->principal);
	return wrk_run_start_detached(ctx, req,
	    m->unattended !=
		PALYRA__V1__UNATTENDED_POLICY__UNATTENDED_POLICY_WAIT,
	    cron_started, request_id);
}
