/* approvals.c: placeholder until the approvals helper lands (issue 7). */
#include "grpc_status.h"
#include "journald.h"

int
jnl_approvals_call(struct jnl_ctx *ctx, uint32_t request_id,
    const Palyra__Ipc__ServiceCall *call)
{
	(void)call;
	return jnl_service_reply(ctx, request_id, GRPC_STATUS_UNAVAILABLE,
	    "approvals are not available", NULL, 0);
}

void
jnl_approval_create(struct jnl_ctx *ctx, struct jnl_worker *w,
    const struct ipc_msg *m)
{
	(void)ctx; (void)w; (void)m;
}

void
jnl_approval_decide(struct jnl_ctx *ctx, struct jnl_worker *w,
    const struct ipc_msg *m)
{
	(void)ctx; (void)w; (void)m;
}

void
jnl_approvals_worker_gone(struct jnl_ctx *ctx, struct jnl_worker *w)
{
	(void)ctx; (void)w;
}

int
jnl_approvals_suspended(struct jnl_tenant *t, const char *run_id)
{
	(void)t; (void)run_id;
	return 0;
}

void
jnl_recover_request(struct jnl_ctx *ctx, struct jnl_worker *w,
    const struct ipc_msg *m)
{
	(void)ctx; (void)w; (void)m;
}
