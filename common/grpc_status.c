/*
 * grpc_status.c: names of the gRPC status codes, for logs, metrics and
 * palyractl. Runs in the front and palyractl; touches nothing.
 */
#include "grpc_status.h"

static const char *const grpc_status_names[GRPC_STATUS_COUNT] = {
	"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
	"NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED",
	"RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
	"OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE",
	"DATA_LOSS", "UNAUTHENTICATED",
};

const char *
grpc_status_name(int code)
{
	if (code < 0 || code >= GRPC_STATUS_COUNT)
		return "UNKNOWN";
	return grpc_status_names[code];
}
