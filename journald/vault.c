/* vault.c: placeholder until the vault engineer lands it. */
#include "grpc_status.h"
#include "journald.h"

void
jnl_vault_store(struct jnl_ctx *ctx, struct jnl_worker *w,
    const struct ipc_msg *m)
{
	(void)ctx; (void)w; (void)m;
}

void
jnl_vault_fetch(struct jnl_ctx *ctx, struct jnl_worker *w,
    const struct ipc_msg *m)
{
	(void)ctx; (void)w; (void)m;
}

int
jnl_vault_call(struct jnl_ctx *ctx, uint32_t request_id,
    const Palyra__Ipc__ServiceCall *call)
{
	(void)call;
	return jnl_service_reply(ctx, request_id, GRPC_STATUS_UNIMPLEMENTED,
	    "the vault is not available", NULL, 0);
}
