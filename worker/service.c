/*
 * service.c: the service methods the front routes to this worker rather
 * than to journald, because only a worker can answer them: MemoryService
 * IngestMemory and SearchMemory need embeddings (memory.c), VaultService
 * PutSecret and GetSecret need the tenant's data key (vault.c).
 *
 * Process: palyra-worker. Touches the front channel only. The message's
 * tenant is ignored: the channel names it. Principal and role are the
 * front's verified token's; each module checks what its methods allow.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "grpc_status.h"
#include "log.h"
#include "worker.h"

#define MEMORY_PREFIX	"/palyra.v1.MemoryService/"
#define VAULT_PREFIX	"/palyra.v1.VaultService/"

int
wrk_service_reply(struct wrk_ctx *ctx, uint32_t request_id, uint32_t code,
    const char *message, const ProtobufCMessage *response)
{
	Palyra__Ipc__ServiceReply reply = PALYRA__IPC__SERVICE_REPLY__INIT;
	uint8_t	*buf = NULL;
	size_t	 len;
	int	 rc;

	if (ctx->front == NULL)
		return -EPIPE;
	if (code == GRPC_STATUS_OK && response != NULL) {
		len = protobuf_c_message_get_packed_size(response);
		if (len > IPC_MAX_PAYLOAD - 1024) {
			code = GRPC_STATUS_RESOURCE_EXHAUSTED;
			message = "the answer is too large";
		} else if ((buf = malloc(len + 1)) == NULL) {
			code = GRPC_STATUS_RESOURCE_EXHAUSTED;
			message = "out of memory";
		} else {
			protobuf_c_message_pack(response, buf);
			reply.response.data = buf;
			reply.response.len = len;
		}
	}
	reply.grpc_status = code;
	reply.message = (char *)(message != NULL ? message : "");
	if ((rc = ipc_chan_send(ctx->front, IPC_SERVICE_REPLY, request_id,
	    &reply.base, NULL, 0)) < 0)
		log_warn("front: cannot send a service reply: %s",
		    strerror(-rc));
	free(buf);
	return rc;
}

int
wrk_service_call(struct wrk_ctx *ctx, uint32_t request_id,
    const Palyra__Ipc__ServiceCall *call)
{
	if (strncmp(call->method, MEMORY_PREFIX, strlen(MEMORY_PREFIX)) == 0)
		return wrk_memory_call(ctx, request_id, call);
	if (strncmp(call->method, VAULT_PREFIX, strlen(VAULT_PREFIX)) == 0)
		return wrk_vault_call(ctx, request_id, call);
	(void)wrk_service_reply(ctx, request_id, GRPC_STATUS_UNIMPLEMENTED,
	    "unknown method", NULL);
	return 0;
}
