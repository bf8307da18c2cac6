/*
 * dispatch.c: what journald's services share: finding the method of a
 * ServiceCall from the front in a service's table and decoding its
 * request (approvals_api.c, usage_api.c, memory_api.c, cron_api.c),
 * answering once the tenant's batch committed, and sending an answer to
 * a worker that may have stopped reading (approvals.c, memory.c,
 * vault.c, cron.c).
 *
 * Runs in palyra-journald. Touches only the front's and the workers'
 * channels: a refused call is answered with IPC_SERVICE_REPLY, and a
 * worker whose channel is full is read no more.
 */
#include <errno.h>
#include <string.h>

#include "grpc_status.h"
#include "journald.h"
#include "log.h"

int
jnl_service_method(struct jnl_ctx *ctx, uint32_t request_id,
    const struct jnl_method *methods, size_t n, const char *name, int *rc)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(name, methods[i].name) == 0)
			return (int)i;
	*rc = jnl_service_reply(ctx, request_id, GRPC_STATUS_UNIMPLEMENTED,
	    "unknown method", NULL, 0);
	return -1;
}

ProtobufCMessage *
jnl_service_request(struct jnl_ctx *ctx, uint32_t request_id,
    const Palyra__Ipc__ServiceCall *call,
    const ProtobufCMessageDescriptor *desc, int *rc)
{
	ProtobufCMessage *in;

	if ((in = protobuf_c_message_unpack(desc, NULL, call->request.len,
		 call->request.data)) == NULL)
		*rc = jnl_service_reply(ctx, request_id,
		    GRPC_STATUS_INVALID_ARGUMENT, "invalid request message",
		    NULL, 0);
	return in;
}

int
jnl_service_open(struct jnl_ctx *ctx, uint32_t request_id,
    const Palyra__Ipc__ServiceCall *call, const char *name,
    const struct jnl_service *svc, struct jnl_tenant **t,
    ProtobufCMessage **in, int *rc)
{
	int i;

	*t = NULL;
	*in = NULL;
	if ((i = jnl_service_method(ctx, request_id, svc->methods, svc->n,
		 name, rc)) < 0)
		return -1;
	if (!jnl_name_valid(call->tenant) ||
	    (*t = jnl_tenant_find(ctx, call->tenant)) == NULL) {
		*rc = jnl_service_reply(ctx, request_id, GRPC_STATUS_NOT_FOUND,
		    "unknown tenant", NULL, 0);
		return -1;
	}
	if (svc->check != NULL &&
	    svc->check(ctx, request_id, call, *t, rc) != 0)
		return -1;
	if ((*in = jnl_service_request(ctx, request_id, call,
		 svc->methods[i].desc, rc)) == NULL)
		return -1;
	return i;
}

int
jnl_service_privileged(const Palyra__Ipc__ServiceCall *call)
{
	return strcmp(call->role, "operator") == 0 ||
	    strcmp(call->role, "admin") == 0;
}

int
jnl_ack_defer(struct jnl_ctx *ctx, struct jnl_tenant *t,
    struct jnl_worker *w, uint32_t request_id,
    void (*deliver)(struct jnl_ctx *, struct jnl_ack *), void *arg)
{
	struct jnl_ack ack;

	memset(&ack, 0, sizeof(ack));
	ack.worker = w;
	ack.tenant = t;
	ack.request_id = request_id;
	ack.ok = 1;
	ack.deliver = deliver;
	ack.arg = arg;
	if (jnl_ack_push(ctx, &ack) < 0)
		return -ENOMEM;
	jnl_schedule_commit(ctx);
	return 0;
}

/*
 * A worker whose channel holds IPC_QUEUE_HIGH_WATER unread messages is
 * stuck: it is read no more, as batch.c does with a worker it cannot
 * acknowledge.
 */
void
jnl_worker_send(struct jnl_worker *w, enum ipc_type type, uint32_t request_id,
    const ProtobufCMessage *msg, const char *what)
{
	int rc;

	if (w == NULL || w->closing)
		return;
	if ((rc = ipc_chan_send(w->chan, type, request_id, msg, NULL, 0)) ==
	    -ENOBUFS) {
		log_error("%s: not reading; dropping the worker",
		    ipc_chan_peer(w->chan));
		w->closing = 1;
		ipc_chan_pause(w->chan);
	} else if (rc < 0)
		log_warn("%s: cannot send %s: %s", ipc_chan_peer(w->chan), what,
		    strerror(-rc));
}
