/* vault.c: placeholder until the vault engineer lands it. */
#include <stdlib.h>
#include <string.h>

#include "grpc_status.h"
#include "worker.h"

int
wrk_vault_call(struct wrk_ctx *ctx, uint32_t request_id,
    const Palyra__Ipc__ServiceCall *call)
{
	(void)call;
	(void)wrk_service_reply(ctx, request_id, GRPC_STATUS_UNIMPLEMENTED,
	    "the vault is not available", NULL);
	return 0;
}

int
wrk_vault_on_stored(struct wrk_ctx *ctx, uint32_t request_id,
    const Palyra__Ipc__VaultStored *m)
{
	(void)ctx; (void)request_id; (void)m;
	return 0;
}

int
wrk_vault_on_items(struct wrk_ctx *ctx, uint32_t request_id,
    const Palyra__Ipc__VaultItems *m)
{
	(void)ctx; (void)request_id; (void)m;
	return 0;
}

int
wrk_vault_on_changed(struct wrk_ctx *ctx, const Palyra__Ipc__VaultChanged *m)
{
	(void)ctx; (void)m;
	return 0;
}

char *
wrk_vault_redact_text(struct wrk_ctx *ctx, const char *text)
{
	(void)ctx;
	return strdup(text);
}
