/*
 * limits.h: every numeric limit of palyrad, named, in one place.
 * Shared by all processes. Over a limit a session fails cleanly with a
 * clear error; the process does not.
 */
/*
 * GCC's own <limits.h> reaches for the system one with #include_next, and
 * GCC's search then passes through this directory too: hand such a lookup
 * on to the real header.
 */
#ifdef _GCC_NEXT_LIMITS_H
#include_next <limits.h>
#else
#ifndef PALYRA_LIMITS_H
#define PALYRA_LIMITS_H

/* IPC (common/ipc.c) */
#define IPC_MAX_PAYLOAD		(200 * 1024)	/* protobuf bytes; fits wmem_default */
#define IPC_MAX_FDS		2	/* descriptors per message */
#define IPC_QUEUE_HIGH_WATER	4096	/* queued outbound messages */
#define IPC_READ_BURST		256	/* messages read per wakeup */

/* Names */
#define NAME_MAX_LEN		64	/* tenant, agent, principal names */
#define TEXT_MAX_LEN		(64 * 1024)	/* run input text */

/* Config (common/config.c) */
#define CFG_MAX_FILE_SIZE	(1024 * 1024)
#define CFG_MAX_TOKEN_LEN	4096
#define CFG_MAX_TENANTS		10000
#define CFG_MAX_DEPTH		8	/* nested blocks */
#define CFG_MAX_PROVIDERS	64
#define CFG_MAX_AGENTS		256	/* per tenant */
#define CFG_MAX_FILES		256	/* files read, the main one too */
#define CFG_MAX_TOTAL_SIZE	(16 * 1024 * 1024)	/* all files */
#define CFG_MAX_FAILOVER	16	/* providers of one agent */
#define CFG_MAX_TOOL_RULES	256	/* tool rules of one agent */
#define CFG_MAX_PRICING		1024	/* pricing blocks */

/* Supervisor */
#define SUP_RESTART_MIN_MS	100
#define SUP_RESTART_MAX_MS	30000
#define SUP_EARLY_DEATH_MS	1000	/* dying sooner counts as "no work done" */
#define SUP_STOP_DEADLINE_MS	5000

/* Front (gRPC and HTTP) */
#define FE_MAX_CONNECTIONS	1024
#define FE_MAX_STREAMS		128	/* concurrent streams per connection */
#define FE_GRPC_MAX_MESSAGE	(4 * 1024 * 1024)
#define FE_STREAM_OUT_MAX	(8 * 1024 * 1024)	/* buffered reply bytes */
#define FE_HTTP_MAX_BODY	(64 * 1024)
#define FE_HTTP_MAX_HEADERS	(16 * 1024)
#define FE_TOKEN_MAX_LEN	256
#define FE_AUTH_TIMEOUT_MS	5000
#define FE_CALL_POOL_MAX	256	/* finished calls kept for reuse */
#define FE_H2_OUTPUT_HIGH	(64 * 1024)	/* bytes before nghttp2 waits */
#define FE_HTTP_TIMEOUT_S	30	/* evhttp idle timeout */

/* Journal */
#define JNL_BATCH_MAX		1024	/* appends per transaction */
#define JNL_PAYLOAD_MAX		(160 * 1024)	/* encoded event bytes */

/* Worker */
#define WRK_MAX_RUNS		1024	/* concurrent runs per worker */
#define WRK_MAX_INFLIGHT	4096	/* unacknowledged journal appends */
#define WRK_SESSION_KEY_MAX_LEN	256	/* resolved into a session id */

#endif
#endif
