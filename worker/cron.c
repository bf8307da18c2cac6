/* cron.c: placeholder until the cron engineer lands it. */
#include "worker.h"

int
wrk_cron_fire(struct wrk_ctx *ctx, uint32_t request_id,
    const Palyra__Ipc__CronFireRequest *m)
{
	(void)ctx; (void)request_id; (void)m;
	return 0;
}
