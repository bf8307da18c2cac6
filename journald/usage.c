/* usage.c: placeholder until the usage helper lands (issue 7). */
#include "grpc_status.h"
#include "journald.h"

int
jnl_usage_call(struct jnl_ctx *ctx, uint32_t request_id,
    const Palyra__Ipc__ServiceCall *call)
{
	(void)call;
	return jnl_service_reply(ctx, request_id, GRPC_STATUS_UNAVAILABLE,
	    "usage is not available", NULL, 0);
}

void
jnl_budget_reserve(struct jnl_ctx *ctx, struct jnl_worker *w,
    const struct ipc_msg *m)
{
	(void)ctx; (void)w; (void)m;
}

void
jnl_budget_settle(struct jnl_ctx *ctx, struct jnl_worker *w,
    const struct ipc_msg *m)
{
	(void)ctx; (void)w; (void)m;
}

void
jnl_budget_worker_gone(struct jnl_ctx *ctx, struct jnl_worker *w)
{
	(void)ctx; (void)w;
}
