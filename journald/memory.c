/* memory.c: placeholder until the memory engineer lands it. */
#include "grpc_status.h"
#include "journald.h"

void
jnl_memory_store(struct jnl_ctx *ctx, struct jnl_worker *w,
    const struct ipc_msg *m)
{
	(void)ctx; (void)w; (void)m;
}

void
jnl_memory_query(struct jnl_ctx *ctx, struct jnl_worker *w,
    const struct ipc_msg *m)
{
	(void)ctx; (void)w; (void)m;
}

int
jnl_memory_call(struct jnl_ctx *ctx, uint32_t request_id,
    const Palyra__Ipc__ServiceCall *call)
{
	(void)call;
	return jnl_service_reply(ctx, request_id, GRPC_STATUS_UNIMPLEMENTED,
	    "memory is not available", NULL, 0);
}
