/*
 * health.c: grpc.health.v1.Health/Watch, the server-streaming half of the
 * standard health protocol. A watch sends the service's status at once and
 * again whenever it changes (journald attaching or going away), and stays
 * open until the client cancels, its deadline passes or the front drains.
 * An unknown service is not an error here: it is SERVICE_UNKNOWN, per the
 * protocol, and stays so.
 *
 * Process: palyra-front. Decodes the Watch request (the one place it is
 * decoded); sends through call.c only.
 */
#include <errno.h>
#include <string.h>

#include "front.h"
#include "grpc/health/v1/health.pb-c.h"
#include "log.h"

#define STATUS(x) GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__##x

/* The services a probe may name: the server as a whole ("") and those
 * that depend on journald. Check (rpc.c) knows the same set. */
static int
service_known(const char *name)
{
	return name[0] == '\0' ||
	       strcmp(name, "palyra.v1.GatewayService") == 0 ||
	       strcmp(name, "palyra.v1.ApprovalsService") == 0 ||
	       strcmp(name, "palyra.v1.UsageService") == 0 ||
	       strcmp(name, "palyra.v1.VaultService") == 0 ||
	       strcmp(name, "palyra.v1.CronService") == 0 ||
	       strcmp(name, "palyra.v1.MemoryService") == 0;
}

static int
status_now(const struct fe_call *call)
{
	if (!call->watch_known)
		return STATUS(SERVICE_UNKNOWN);
	return call->conn->ctx->journald != NULL ? STATUS(SERVING)
						 : STATUS(NOT_SERVING);
}

/* Sends the status when it differs from the last one sent. */
static void
watch_send(struct fe_call *call)
{
	Grpc__Health__V1__HealthCheckResponse resp =
	    GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
	int status = status_now(call), rc;

	if (status == call->watch_status)
		return;
	resp.status = status;
	rc = fe_call_send_message(call, &resp.base);
	if (rc == -ENOBUFS) {
		fe_call_finish(call, GRPC_STATUS_RESOURCE_EXHAUSTED,
		    "client not reading health updates");
		return;
	}
	if (rc < 0) {
		fe_call_finish(call, GRPC_STATUS_INTERNAL, "internal error");
		return;
	}
	call->watch_status = status;
}

void
fe_health_watch_message(struct fe_call *call, const uint8_t *msg, size_t len)
{
	struct fe_ctx *ctx = call->conn->ctx;
	Grpc__Health__V1__HealthCheckRequest *req;

	if (call->watching) {
		fe_call_finish(call, GRPC_STATUS_INVALID_ARGUMENT,
		    "Watch takes exactly one request");
		return;
	}
	req = grpc__health__v1__health_check_request__unpack(NULL, len, msg);
	if (req == NULL) {
		fe_call_finish(
		    call, GRPC_STATUS_INVALID_ARGUMENT, "invalid request message");
		return;
	}
	call->watch_known = service_known(req->service);
	grpc__health__v1__health_check_request__free_unpacked(req, NULL);
	if (fe_call_transition(call, FE_CALL_RUNNING) < 0) {
		fe_call_finish(call, GRPC_STATUS_INTERNAL, "internal error");
		return;
	}
	TAILQ_INSERT_TAIL(&ctx->health_watches, call, watch_entry);
	call->watching = 1;
	call->watch_status = -1;
	watch_send(call);
}

void
fe_health_changed(struct fe_ctx *ctx)
{
	struct fe_call *call, *next;

	/* watch_send() may end a call, which takes it off the list. */
	for (call = TAILQ_FIRST(&ctx->health_watches); call != NULL;
	     call = next) {
		next = TAILQ_NEXT(call, watch_entry);
		watch_send(call);
	}
}

void
fe_health_unwatch(struct fe_call *call)
{
	if (!call->watching)
		return;
	TAILQ_REMOVE(&call->conn->ctx->health_watches, call, watch_entry);
	call->watching = 0;
}
