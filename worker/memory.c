/* memory.c: placeholder until the memory engineer lands it. */
#include "grpc_status.h"
#include "worker.h"

int
wrk_memory_call(struct wrk_ctx *ctx, uint32_t request_id,
    const Palyra__Ipc__ServiceCall *call)
{
	(void)call;
	return wrk_service_reply(ctx, request_id, GRPC_STATUS_UNIMPLEMENTED,
	    "memory is not available", NULL) < 0 ? 0 : 0;
}

int
wrk_memory_on_stored(struct wrk_ctx *ctx, uint32_t request_id,
    const Palyra__Ipc__MemoryStored *m)
{
	(void)ctx; (void)request_id; (void)m;
	return 0;
}

int
wrk_memory_on_hits(struct wrk_ctx *ctx, uint32_t request_id,
    const Palyra__Ipc__MemoryHits *m)
{
	(void)ctx; (void)request_id; (void)m;
	return 0;
}
