/*
 * approvals_api.c: ApprovalsService for the front (IPC_SERVICE_CALL,
 * routed here by service.c): ListApprovals, GetApproval, DecideApproval,
 * ExportApprovals, ListGrants, RevokeGrant.
 *
 * Runs in palyra-journald. Touches the approvals and approval_grants
 * tables of the tenant the front verified the token for. The client's
 * request message is decoded here alone. A user token sees and decides
 * only its own principal's approvals and grants (another's are
 * NOT_FOUND, as if they did not exist); operator and admin tokens see
 * the tenant's. Writes are answered after their commit.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "approvals.h"
#include "grpc_status.h"
#include "log.h"

#define PREFIX "/palyra.v1.ApprovalsService/"
#define E_UNAVAILABLE "journal unavailable"
/* Room left in a reply for everything but its repeated items. */
#define REPLY_ITEMS_MAX (IPC_MAX_PAYLOAD - 8 * 1024)

struct caller {
	struct jnl_tenant *tenant;
	const char *principal; /* the token's */
	const char *only;      /* NULL: every principal (operator, admin) */
};

static int
reply_status(struct jnl_ctx *ctx, uint32_t id, uint32_t code, const char *msg)
{
	return jnl_service_reply(ctx, id, code, msg, NULL, 0);
}

/* Page tokens are listing cursors (cursor.c) of (created_ms, id). */
static int
list_approvals(struct jnl_ctx *ctx, uint32_t id, const struct caller *c,
    const Palyra__V1__ListApprovalsRequest *req)
{
	Palyra__V1__ListApprovalsResponse resp =
	    PALYRA__V1__LIST_APPROVALS_RESPONSE__INIT;
	Palyra__V1__Approval **items = NULL;
	sqlite3_stmt *st;
	char after_id[JNL_CURSOR_ID_MAX + 1] = "";
	char next[JNL_CURSOR_MAX + 1] = "";
	int64_t after_ms = INT64_MIN;
	size_t n = 0, size = 0, i, limit;
	int rc, r;

	limit = req->page_size == 0 ? APPR_PAGE_DEFAULT : req->page_size;
	if (req->page_size > APPR_PAGE_MAX)
		return reply_status(ctx, id, GRPC_STATUS_INVALID_ARGUMENT,
		    "page_size must be 1 to 100");
	if ((int)req->state < 0 ||
	    req->state > PALYRA__V1__APPROVAL_STATE__APPROVAL_STATE_EXPIRED)
		return reply_status(
		    ctx, id, GRPC_STATUS_INVALID_ARGUMENT, "unknown state");
	if (req->run_id[0] != '\0' && !jnl_appr_run_id_valid(req->run_id))
		return reply_status(
		    ctx, id, GRPC_STATUS_INVALID_ARGUMENT, "invalid run_id");
	if (req->page_token[0] != '\0' &&
	    jnl_cursor_decode(
		req->page_token, &after_ms, after_id, sizeof(after_id)) < 0)
		return reply_status(ctx, id, GRPC_STATUS_INVALID_ARGUMENT,
		    "invalid page_token");
	if (jnl_db_prepare(c->tenant->db,
		"SELECT " APPR_COLUMNS " FROM approvals"
		" WHERE (?1 IS NULL OR status = ?1)"
		" AND (?2 IS NULL OR run_id = ?2)"
		" AND (?3 IS NULL OR principal = ?3)"
		" AND (created_ms, id) > (?4, ?5)"
		" ORDER BY created_ms, id LIMIT ?6",
		&st) < 0)
		return reply_status(
		    ctx, id, GRPC_STATUS_UNAVAILABLE, E_UNAVAILABLE);
	if (req->state != 0)
		sqlite3_bind_text(
		    st, 1, jnl_appr_state_text(req->state), -1, SQLITE_STATIC);
	if (req->run_id[0] != '\0')
		sqlite3_bind_text(st, 2, req->run_id, -1, SQLITE_STATIC);
	if (c->only != NULL)
		sqlite3_bind_text(st, 3, c->only, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, after_ms);
	sqlite3_bind_text(st, 5, after_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, (int64_t)limit + 1);
	if ((items = calloc(limit + 1, sizeof(*items))) == NULL) {
		sqlite3_finalize(st);
		return reply_status(
		    ctx, id, GRPC_STATUS_UNAVAILABLE, "out of memory");
	}
	r = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == limit) {
			/* There is more: the page ends at its last item. */
			jnl_cursor_encode(items[n - 1]->created_unix_ms,
			    items[n - 1]->approval_id, next, sizeof(next));
			break;
		}
		if ((items[n] = jnl_appr_from_row(st)) == NULL) {
			r = -ENOMEM;
			break;
		}
		size += palyra__v1__approval__get_packed_size(items[n]) + 8;
		if (n > 0 && size > REPLY_ITEMS_MAX) {
			/* Full: this one starts the next page. */
			jnl_appr_free(items[n]);
			jnl_cursor_encode(items[n - 1]->created_unix_ms,
			    items[n - 1]->approval_id, next, sizeof(next));
			break;
		}
		n++;
	}
	if (r == 0 && rc != SQLITE_ROW && rc != SQLITE_DONE)
		r = -EIO;
	sqlite3_finalize(st);
	if (r < 0)
		rc = reply_status(ctx, id, GRPC_STATUS_UNAVAILABLE,
		    r == -ENOMEM ? "out of memory" : E_UNAVAILABLE);
	else {
		resp.approvals = items;
		resp.n_approvals = n;
		resp.next_page_token = next;
		rc = jnl_service_reply(
		    ctx, id, GRPC_STATUS_OK, NULL, &resp.base, 0);
	}
	for (i = 0; i < n; i++)
		jnl_appr_free(items[i]);
	free(items);
	return rc;
}

static int
get_approval(struct jnl_ctx *ctx, uint32_t id, const struct caller *c,
    const Palyra__V1__GetApprovalRequest *req)
{
	Palyra__V1__Approval *a;
	int rc;

	if (!jnl_appr_id_valid(req->approval_id))
		return reply_status(ctx, id, GRPC_STATUS_INVALID_ARGUMENT,
		    "approval_id is not 32 lower-hex characters");
	if ((rc = jnl_appr_get(c->tenant, req->approval_id, &a)) < 0)
		return reply_status(
		    ctx, id, GRPC_STATUS_UNAVAILABLE, E_UNAVAILABLE);
	if (a == NULL ||
	    (c->only != NULL && strcmp(a->principal, c->only) != 0))
		rc = reply_status(
		    ctx, id, GRPC_STATUS_NOT_FOUND, "no such approval");
	else
		rc = jnl_service_reply(
		    ctx, id, GRPC_STATUS_OK, NULL, &a->base, 0);
	jnl_appr_free(a);
	return rc;
}

static int
decide_approval(struct jnl_ctx *ctx, uint32_t id, const struct caller *c,
    const Palyra__V1__DecideApprovalRequest *req)
{
	Palyra__V1__Approval *a = NULL;
	const char *why;
	int rc;

	if ((why = jnl_appr_decision_invalid(req->decision)) != NULL)
		return reply_status(ctx, id, GRPC_STATUS_INVALID_ARGUMENT, why);
	rc = jnl_appr_decide(
	    ctx, c->tenant, req->decision, c->principal, 0, c->only, &a, &why);
	if (rc < 0) {
		jnl_batch_fail(ctx, c->tenant);
		return reply_status(
		    ctx, id, GRPC_STATUS_UNAVAILABLE, JNL_E_STORAGE);
	}
	if (rc > 0) {
		jnl_appr_free(a);
		return reply_status(ctx, id, (uint32_t)rc, why);
	}
	if (jnl_appr_defer_service(ctx, c->tenant, id, a) < 0)
		return reply_status(
		    ctx, id, GRPC_STATUS_UNAVAILABLE, "out of memory");
	return 0;
}

/* Sends the chunk in buf (more: another follows) and empties it. */
static int
export_flush(struct jnl_ctx *ctx, uint32_t id, char *buf, size_t *len, int more)
{
	Palyra__V1__ExportChunk chunk = PALYRA__V1__EXPORT_CHUNK__INIT;
	int rc;

	chunk.ndjson.data = (uint8_t *)buf;
	chunk.ndjson.len = *len;
	rc =
	    jnl_service_reply(ctx, id, GRPC_STATUS_OK, NULL, &chunk.base, more);
	*len = 0;
	return rc;
}

static int
export_approvals(struct jnl_ctx *ctx, uint32_t id, const struct caller *c,
    const Palyra__V1__ExportApprovalsRequest *req)
{
	Palyra__V1__Approval *a;
	sqlite3_stmt *st;
	uint8_t chain[APPR_SHA256_LEN];
	char *buf, *record, *line;
	size_t len = 0, linelen;
	uint64_t count = 0;
	int rc, r = 0;

	if (req->since_unix_ms < 0)
		return reply_status(ctx, id, GRPC_STATUS_INVALID_ARGUMENT,
		    "since_unix_ms must not be negative");
	if ((buf = malloc(APPR_EXPORT_CHUNK)) == NULL)
		return reply_status(
		    ctx, id, GRPC_STATUS_UNAVAILABLE, "out of memory");
	if (jnl_db_prepare(c->tenant->db,
		"SELECT " APPR_COLUMNS " FROM approvals"
		" WHERE created_ms >= ?1 AND (?2 IS NULL OR principal = ?2)"
		" ORDER BY created_ms, id",
		&st) < 0) {
		free(buf);
		return reply_status(
		    ctx, id, GRPC_STATUS_UNAVAILABLE, E_UNAVAILABLE);
	}
	sqlite3_bind_int64(st, 1, req->since_unix_ms);
	if (c->only != NULL)
		sqlite3_bind_text(st, 2, c->only, -1, SQLITE_STATIC);
	memset(chain, 0, sizeof(chain));
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((a = jnl_appr_from_row(st)) == NULL) {
			r = -ENOMEM;
			break;
		}
		record = jnl_export_record(a);
		jnl_appr_free(a);
		if (record == NULL ||
		    jnl_export_line(record, chain, &line, &linelen) < 0) {
			free(record);
			r = -ENOMEM;
			break;
		}
		free(record);
		if (linelen > APPR_EXPORT_CHUNK) {
			free(line);
			r = -EMSGSIZE;
			break;
		}
		if (len + linelen > APPR_EXPORT_CHUNK) {
			/* A front that does not read gets no more than half
			 * its queue: the rest is for its other calls. */
			if (ctx->front == NULL ||
			    ipc_chan_queued(ctx->front) >
				IPC_QUEUE_HIGH_WATER / 2 ||
			    export_flush(ctx, id, buf, &len, 1) < 0) {
				free(line);
				r = -ENOBUFS;
				break;
			}
		}
		memcpy(buf + len, line, linelen);
		len += linelen;
		free(line);
		count++;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = -EIO;
	sqlite3_finalize(st);
	if (r == 0 && jnl_export_end(count, chain, &line, &linelen) < 0)
		r = -ENOMEM;
	if (r == 0) {
		if (len + linelen > APPR_EXPORT_CHUNK &&
		    export_flush(ctx, id, buf, &len, 1) < 0)
			r = -ENOBUFS;
		else {
			memcpy(buf + len, line, linelen);
			len += linelen;
		}
		free(line);
	}
	if (r == 0)
		rc = export_flush(ctx, id, buf, &len, 0);
	else {
		log_warn("%s: approvals export failed: %s", c->tenant->name,
		    strerror(-r));
		rc = reply_status(ctx, id,
		    r == -ENOBUFS ? GRPC_STATUS_RESOURCE_EXHAUSTED
				  : GRPC_STATUS_UNAVAILABLE,
		    r == -ENOBUFS ? "the export is not being read"
				  : "the export failed");
	}
	free(buf);
	return rc;
}

static char *
dup_column(sqlite3_stmt *st, int col)
{
	const char *s = (const char *)sqlite3_column_text(st, col);

	return strdup(s != NULL ? s : "");
}

static void
grant_free(Palyra__V1__Grant *g)
{
	if (g == NULL)
		return;
	free(g->grant_id);
	free(g->tool_name);
	free(g->principal);
	free(g->agent);
	free(g->session_id);
	free(g->approval_id);
	free(g);
}

static Palyra__V1__Grant *
grant_from_row(sqlite3_stmt *st)
{
	Palyra__V1__Grant *g;
	const char *scope;

	if ((g = calloc(1, sizeof(*g))) == NULL)
		return NULL;
	palyra__v1__grant__init(g);
	g->grant_id = dup_column(st, 0);
	g->tool_name = dup_column(st, 1);
	scope = (const char *)sqlite3_column_text(st, 2);
	g->scope = scope != NULL && strcmp(scope, "session") == 0
		       ? PALYRA__V1__APPROVAL_SCOPE__APPROVAL_SCOPE_SESSION
		       : PALYRA__V1__APPROVAL_SCOPE__APPROVAL_SCOPE_TTL;
	g->principal = dup_column(st, 3);
	g->agent = dup_column(st, 4);
	g->session_id = dup_column(st, 5);
	g->created_unix_ms = sqlite3_column_int64(st, 6);
	g->expires_unix_ms = sqlite3_column_int64(st, 7);
	g->approval_id = dup_column(st, 8);
	if (g->grant_id == NULL || g->tool_name == NULL ||
	    g->principal == NULL || g->agent == NULL || g->session_id == NULL ||
	    g->approval_id == NULL) {
		grant_free(g);
		return NULL;
	}
	return g;
}

static int
list_grants(struct jnl_ctx *ctx, uint32_t id, const struct caller *c,
    const Palyra__V1__ListGrantsRequest *req)
{
	Palyra__V1__ListGrantsResponse resp =
	    PALYRA__V1__LIST_GRANTS_RESPONSE__INIT;
	Palyra__V1__Grant **items;
	sqlite3_stmt *st;
	size_t n = 0, i, size = 0;
	int rc, r = 0;

	if ((items = calloc(APPR_GRANTS_MAX, sizeof(*items))) == NULL)
		return reply_status(
		    ctx, id, GRPC_STATUS_UNAVAILABLE, "out of memory");
	if (jnl_db_prepare(c->tenant->db,
		"SELECT id, tool, scope, principal, agent, session_id,"
		" created_ms, expires_ms, approval_id FROM approval_grants"
		" WHERE revoked_ms IS NULL AND scope IN ('session', 'ttl')"
		" AND (?1 IS NULL OR principal = ?1)"
		" AND (?2 OR scope != 'ttl' OR expires_ms > ?3)"
		" ORDER BY created_ms, id LIMIT ?4",
		&st) < 0) {
		free(items);
		return reply_status(
		    ctx, id, GRPC_STATUS_UNAVAILABLE, E_UNAVAILABLE);
	}
	if (c->only != NULL)
		sqlite3_bind_text(st, 1, c->only, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, req->include_expired ? 1 : 0);
	sqlite3_bind_int64(st, 3, (int64_t)jnl_now_ms());
	sqlite3_bind_int(st, 4, APPR_GRANTS_MAX);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((items[n] = grant_from_row(st)) == NULL) {
			r = -ENOMEM;
			break;
		}
		size += palyra__v1__grant__get_packed_size(items[n]) + 8;
		if (size > REPLY_ITEMS_MAX) {
			/* The oldest that fit; the listing has no pages. */
			grant_free(items[n]);
			break;
		}
		n++;
	}
	if (r == 0 && rc != SQLITE_ROW && rc != SQLITE_DONE)
		r = -EIO;
	sqlite3_finalize(st);
	if (r < 0)
		rc = reply_status(ctx, id, GRPC_STATUS_UNAVAILABLE,
		    r == -ENOMEM ? "out of memory" : E_UNAVAILABLE);
	else {
		resp.grants = items;
		resp.n_grants = n;
		rc = jnl_service_reply(
		    ctx, id, GRPC_STATUS_OK, NULL, &resp.base, 0);
	}
	for (i = 0; i < n; i++)
		grant_free(items[i]);
	free(items);
	return rc;
}

static int
revoke_grant(struct jnl_ctx *ctx, uint32_t id, const struct caller *c,
    const Palyra__V1__RevokeGrantRequest *req)
{
	struct jnl_tenant *t = c->tenant;
	sqlite3_stmt *st;
	const char *owner;
	int rc, found = 0, revoked = 0;

	if (!jnl_appr_id_valid(req->grant_id))
		return reply_status(ctx, id, GRPC_STATUS_INVALID_ARGUMENT,
		    "grant_id is not 32 lower-hex characters");
	if (jnl_db_prepare(t->db,
		"SELECT principal, revoked_ms IS NOT NULL FROM approval_grants"
		" WHERE id = ?1",
		&st) < 0)
		return reply_status(
		    ctx, id, GRPC_STATUS_UNAVAILABLE, E_UNAVAILABLE);
	sqlite3_bind_text(st, 1, req->grant_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		owner = (const char *)sqlite3_column_text(st, 0);
		found = c->only == NULL ||
			(owner != NULL && strcmp(owner, c->only) == 0);
		revoked = sqlite3_column_int(st, 1);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return reply_status(
		    ctx, id, GRPC_STATUS_UNAVAILABLE, E_UNAVAILABLE);
	if (!found)
		return reply_status(
		    ctx, id, GRPC_STATUS_NOT_FOUND, "no such grant");
	if (revoked)
		return reply_status(ctx, id, GRPC_STATUS_FAILED_PRECONDITION,
		    "the grant was already revoked");
	if (jnl_batch_begin(ctx, t) < 0 ||
	    jnl_db_prepare(t->db,
		"UPDATE approval_grants SET revoked_ms = ?2 WHERE id = ?1"
		" AND revoked_ms IS NULL",
		&st) < 0) {
		jnl_batch_fail(ctx, t);
		return reply_status(
		    ctx, id, GRPC_STATUS_UNAVAILABLE, JNL_E_STORAGE);
	}
	sqlite3_bind_text(st, 1, req->grant_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (int64_t)jnl_now_ms());
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		log_error("%s: grant revoke: %s", t->name, sqlite3_errstr(rc));
		jnl_batch_fail(ctx, t);
		return reply_status(
		    ctx, id, GRPC_STATUS_UNAVAILABLE, JNL_E_STORAGE);
	}
	log_info(
	    "%s: grant %s revoked by %s", t->name, req->grant_id, c->principal);
	/* No approval: the deferred answer is a RevokeGrantResponse. */
	if (jnl_appr_defer_service(ctx, t, id, NULL) < 0)
		return reply_status(
		    ctx, id, GRPC_STATUS_UNAVAILABLE, "out of memory");
	return 0;
}

int
jnl_approvals_call(struct jnl_ctx *ctx, uint32_t request_id,
    const Palyra__Ipc__ServiceCall *call)
{
	static const struct jnl_method methods[] = {
	    {"ListApprovals", &palyra__v1__list_approvals_request__descriptor},
	    {"GetApproval", &palyra__v1__get_approval_request__descriptor},
	    {"DecideApproval",
		&palyra__v1__decide_approval_request__descriptor},
	    {"ExportApprovals",
		&palyra__v1__export_approvals_request__descriptor},
	    {"ListGrants", &palyra__v1__list_grants_request__descriptor},
	    {"RevokeGrant", &palyra__v1__revoke_grant_request__descriptor},
	};
	const char *method = call->method + strlen(PREFIX);
	ProtobufCMessage *in;
	struct caller c;
	int i, rc;

	memset(&c, 0, sizeof(c));
	if (!jnl_name_valid(call->tenant) || !jnl_name_valid(call->principal))
		return reply_status(ctx, request_id,
		    GRPC_STATUS_INVALID_ARGUMENT,
		    "invalid tenant or principal");
	if ((c.tenant = jnl_tenant_find(ctx, call->tenant)) == NULL ||
	    c.tenant->db == NULL)
		return reply_status(
		    ctx, request_id, GRPC_STATUS_UNAVAILABLE, E_UNAVAILABLE);
	c.principal = call->principal;
	if (!jnl_service_privileged(call))
		c.only = call->principal;
	if ((i = jnl_service_method(ctx, request_id, methods,
		 sizeof(methods) / sizeof(methods[0]), method, &rc)) < 0)
		return rc;
	if ((in = jnl_service_request(
		 ctx, request_id, call, methods[i].desc, &rc)) == NULL)
		return rc;
	switch (i) {
	case 0:
		rc = list_approvals(ctx, request_id, &c,
		    (Palyra__V1__ListApprovalsRequest *)in);
		break;
	case 1:
		rc = get_approval(
		    ctx, request_id, &c, (Palyra__V1__GetApprovalRequest *)in);
		break;
	case 2:
		rc = decide_approval(ctx, request_id, &c,
		    (Palyra__V1__DecideApprovalRequest *)in);
		break;
	case 3:
		rc = export_approvals(ctx, request_id, &c,
		    (Palyra__V1__ExportApprovalsRequest *)in);
		break;
	case 4:
		rc = list_grants(
		    ctx, request_id, &c, (Palyra__V1__ListGrantsRequest *)in);
		break;
	default:
		rc = revoke_grant(
		    ctx, request_id, &c, (Palyra__V1__RevokeGrantRequest *)in);
		break;
	}
	protobuf_c_message_free_unpacked(in, NULL);
	return rc;
}
