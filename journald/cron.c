/* cron.c: placeholder until the cron engineer lands it. */
#include "grpc_status.h"
#include "journald.h"

void
jnl_cron_fired(struct jnl_ctx *ctx, struct jnl_worker *w,
    const struct ipc_msg *m)
{
	(void)ctx; (void)w; (void)m;
}

void
jnl_cron_worker_gone(struct jnl_ctx *ctx, struct jnl_worker *w)
{
	(void)ctx; (void)w;
}

int
jnl_cron_call(struct jnl_ctx *ctx, uint32_t request_id,
    const Palyra__Ipc__ServiceCall *call)
{
	(void)call;
	return jnl_service_reply(ctx, request_id, GRPC_STATUS_UNIMPLEMENTED,
	    "cron is not available", NULL, 0);
}
