/*
 * service.c: the gRPC services journald answers for the front
 * (IPC_SERVICE_CALL): ApprovalsService (approvals.c), UsageService
 * (usage.c), MemoryService but IngestMemory and SearchMemory (memory.c;
 * those two go to a worker, which embeds), VaultService ListSecrets and
 * DeleteSecret (vault.c; PutSecret and GetSecret go to a worker, which
 * holds the data key) and CronService (cron.c). The front verified the token and names its tenant, principal
 * and role; the request is the client's message, decoded here alone.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "grpc_status.h"
#include "journald.h"
#include "log.h"

#define APPROVALS_PREFIX	"/palyra.v1.ApprovalsService/"
#define USAGE_PREFIX		"/palyra.v1.UsageService/"
#define MEMORY_PREFIX		"/palyra.v1.MemoryService/"
#define VAULT_PREFIX		"/palyra.v1.VaultService/"
#define CRON_PREFIX		"/palyra.v1.CronService/"

int
jnl_service_reply(struct jnl_ctx *ctx, uint32_t request_id, uint32_t code,
    const char *message, const ProtobufCMessage *response, int more)
{
	Palyra__Ipc__ServiceReply reply = PALYRA__IPC__SERVICE_REPLY__INIT;
	uint8_t *buf = NULL;
	size_t len;
	int rc;

	if (ctx->front == NULL)
		return -EPIPE;
	if (code == GRPC_STATUS_OK && response != NULL) {
		len = protobuf_c_message_get_packed_size(response);
		if (len > IPC_MAX_PAYLOAD - 1024) {
			code = GRPC_STATUS_RESOURCE_EXHAUSTED;
			message = "the answer is too large";
			more = 0;
		} else if ((buf = malloc(len + 1)) == NULL) {
			code = GRPC_STATUS_UNAVAILABLE;
			message = "out of memory";
			more = 0;
		} else {
			protobuf_c_message_pack(response, buf);
			reply.response.data = buf;
			reply.response.len = len;
		}
	}
	reply.grpc_status = code;
	reply.message = (char *)(message != NULL ? message : "");
	reply.more = code == GRPC_STATUS_OK && more;
	if ((rc = ipc_chan_send(ctx->front, IPC_SERVICE_REPLY, request_id,
		 &reply.base, NULL, 0)) < 0)
		log_warn("front: cannot send a service reply: %s",
		    strerror(-rc));
	free(buf);
	return rc;
}

void
jnl_service_call(struct jnl_ctx *ctx, const struct ipc_msg *m)
{
	const Palyra__Ipc__ServiceCall *call =
	    (const Palyra__Ipc__ServiceCall *)m->msg;
	int rc;

	if (strncmp(call->method, APPROVALS_PREFIX,
		strlen(APPROVALS_PREFIX)) == 0)
		rc = jnl_approvals_call(ctx, m->hdr.request_id, call);
	else if (strncmp(call->method, USAGE_PREFIX, strlen(USAGE_PREFIX)) ==
	    0)
		rc = jnl_usage_call(ctx, m->hdr.request_id, call);
	else if (strncmp(call->method, MEMORY_PREFIX, strlen(MEMORY_PREFIX)) ==
	    0)
		rc = jnl_memory_call(ctx, m->hdr.request_id, call);
	else if (strncmp(call->method, VAULT_PREFIX, strlen(VAULT_PREFIX)) ==
	    0)
		rc = jnl_vault_call(ctx, m->hdr.request_id, call);
	else if (strncmp(call->method, CRON_PREFIX, strlen(CRON_PREFIX)) == 0)
		rc = jnl_cron_call(ctx, m->hdr.request_id, call);
	else
		rc = jnl_service_reply(ctx, m->hdr.request_id,
		    GRPC_STATUS_UNIMPLEMENTED, "unknown method", NULL, 0);
	(void)rc;
}
