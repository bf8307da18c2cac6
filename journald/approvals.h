/*
 * approvals.h: approval records, decisions and grants inside
 * palyra-journald (issue 7), shared by approvals.c (the worker's
 * messages, deferred answers, suspended runs), approvals_store.c (rows,
 * the decision and its grant), approvals_api.c
 * (ApprovalsService for the front), approvals_check.c (checks of ids,
 * text and decisions, pure), approvals_export.c (the NDJSON export
 * format, pure) and recover.c (runs whose worker died while they waited
 * for a decision).
 *
 * An approval row names its run, session, principal and agent, the tool
 * call it gates and its state: 'pending', 'approved', 'denied' or
 * 'expired' (APPROVAL_STATE_PENDING, ALLOWED, DENIED, EXPIRED). Every
 * write goes into the tenant's open batch and is answered only after its
 * commit (jnl_ack.deliver).
 */
#ifndef PALYRA_JOURNALD_APPROVALS_H
#define PALYRA_JOURNALD_APPROVALS_H

#include <stddef.h>
#include <stdint.h>

#include "journald.h"
#include "palyra/v1/gateway.pb-c.h"

#define APPR_ID_LEN 32		  /* approval and grant ids, lower hex */
#define APPR_SUMMARY_MAX 1024	  /* arguments_summary bytes */
#define APPR_REASON_MAX 1024	  /* a decision's reason */
#define APPR_TOOL_CALL_ID_MAX 256 /* ToolCall.id as the provider named it */
#define APPR_TOOL_NAME_MAX 64	  /* [A-Za-z0-9._-] */
#define APPR_DECIDED_BY_MAX (5 + NAME_MAX_LEN) /* "grant:" + id, a name */
#define APPR_TTL_MIN_MS 1000ULL
#define APPR_TTL_MAX_MS 2592000000ULL /* 30 days */
#define APPR_PAGE_MAX 100
#define APPR_PAGE_DEFAULT 50
#define APPR_GRANTS_MAX 1000	      /* grants in one ListGrants answer */
#define APPR_EXPORT_CHUNK (64 * 1024) /* bytes of whole lines per chunk */
#define APPR_EXPORT_LINE_MAX (APPR_EXPORT_CHUNK / 2)

/* The columns jnl_appr_from_row() reads, in order. */
#define APPR_COLUMNS                                                           \
	"id, run_id, session_id, principal, agent, tool_call_id, tool,"        \
	" arguments_summary, status, scope, decided_by, reason, created_ms,"   \
	" expires_ms, decided_ms, grant_id"

/* approvals_check.c: 1 when valid, 0 when not. */
int jnl_appr_id_valid(const char *);	    /* 32 lower-hex characters */
int jnl_appr_run_id_valid(const char *);    /* 1..64 of [0-9A-Za-z_-] */
int jnl_appr_tool_name_valid(const char *); /* 1..64 of [0-9A-Za-z._-] */
/* len bytes of UTF-8 text without control characters but tab and
 * newline. */
int jnl_appr_utf8_valid(const char *, size_t len);
/* Checks a decision (kind, scope, ttl, reason). NULL or the error. */
const char *jnl_appr_decision_invalid(const Palyra__V1__ApprovalDecision *);

/* approvals_store.c */
/* "pending" for APPROVAL_STATE_PENDING...; NULL for UNSPECIFIED. */
const char *jnl_appr_state_text(int state);
/* "once", "session", "ttl"; NULL for UNSPECIFIED. */
const char *jnl_appr_scope_text(int scope);
/* The scope of such a text; APPROVAL_SCOPE_UNSPECIFIED for another. */
int jnl_appr_scope_parse(const char *);
/* text with the tenant's secret values replaced (malloc'd), or NULL. */
char *jnl_appr_redacted(struct jnl_ctx *, const char *text);
/* An approval read from a row of APPR_COLUMNS (every string owned), or
 * NULL without memory. */
Palyra__V1__Approval *jnl_appr_from_row(sqlite3_stmt *);
void jnl_appr_free(Palyra__V1__Approval *);
/* Approval id of t: 0 with *out (NULL: none), -EIO or -ENOMEM. */
int jnl_appr_get(
    struct jnl_tenant *, const char *id, Palyra__V1__Approval **out);
/* The latest approval of run_id: 0 with *out (NULL: none), -EIO, -ENOMEM. */
int jnl_appr_latest(
    struct jnl_tenant *, const char *run_id, Palyra__V1__Approval **out);
/*
 * Decides approval d->approval_id of t inside its open batch: the first
 * decision wins (pending -> approved, denied, or expired when timeout),
 * and an ALLOW of scope SESSION or TTL makes a grant. Returns 0 with *out
 * (the approval as decided), a gRPC status (NOT_FOUND, FAILED_PRECONDITION
 * with *out as it stands, UNAVAILABLE) with *msg, or -EIO when the batch
 * failed (the caller rolls it back). principal: when not NULL, an
 * approval of another principal is NOT_FOUND.
 */
int jnl_appr_decide(struct jnl_ctx *, struct jnl_tenant *,
    const Palyra__V1__ApprovalDecision *d, const char *decided_by, int timeout,
    const char *principal, Palyra__V1__Approval **out, const char **msg);
/* run_id of t ended (a terminal status in the open batch): its pending
 * approvals are closed, state expired, decided_by APPR_RUN_ENDED. 0 or
 * -EIO. */
#define APPR_RUN_ENDED "run ended"
int jnl_appr_run_ended(struct jnl_tenant *, const char *run_id, int64_t ms);

/* approvals.c */
/* Queues the ServiceReply of a decided approval (taken) until t's batch
 * commits, then tells the run's holder; a NULL: a RevokeGrantResponse.
 * 0 or -ENOMEM (a freed). */
int jnl_appr_defer_service(struct jnl_ctx *, struct jnl_tenant *,
    uint32_t request_id, Palyra__V1__Approval *a);
/* The live worker channel of t that holds run_id, or NULL. */
struct jnl_worker *jnl_appr_holder(
    struct jnl_ctx *, struct jnl_tenant *, const char *run_id);
/* Sends IPC_APPROVAL_DECISION with request id 0 to the holder of a's run,
 * if any. */
void jnl_appr_notify_holder(
    struct jnl_ctx *, struct jnl_tenant *, const Palyra__V1__Approval *a);
/* Asks the supervisor for a worker of t (IPC_WORKER_WANTED). */
void jnl_appr_want_worker(struct jnl_ctx *, struct jnl_tenant *);
/* Runs of t waiting for an approval that no live worker holds: 0 with
 * *out (malloc'd) and *nout, -ENOMEM or -EIO. */
int jnl_appr_orphans(struct jnl_ctx *, struct jnl_tenant *,
    struct jnl_live_run **out, size_t *nout);

/* approvals_api.c: ApprovalsService (jnl_approvals_call, journald.h). */

/* approvals_export.c: the NDJSON lines of ExportApprovals (pure). */
#define APPR_SHA256_LEN 32
/* The record of a as compact JSON with sorted keys (malloc'd), or NULL. */
char *jnl_export_record(const Palyra__V1__Approval *a);
/*
 * The line {"record":R,"sha256":"H","chain":"C"} and a newline for the
 * record text R (malloc'd into *line, *len bytes); chain is the previous
 * line's chain (32 zero bytes before the first) and becomes this line's.
 * Returns 0 or -ENOMEM.
 */
int jnl_export_line(const char *record, uint8_t chain[APPR_SHA256_LEN],
    char **line, size_t *len);
/* The last line {"end":{"count":N,"chain":"C"}} and a newline. */
int jnl_export_end(uint64_t count, const uint8_t chain[APPR_SHA256_LEN],
    char **line, size_t *len);

#endif
