/*
 * tokens.c: tenant tokens in system.db, for the front (TOKEN_STORE,
 * TOKEN_LOOKUP, TOKEN_LIST_REQUEST, TOKEN_REVOKE). Runs in palyra-journald; touches system.db only.
 *
 * Only keyed hashes of tokens reach this process (the front hashes with a
 * key derived from the master key), so system.db never holds a usable token.
 * Token operations are rare: each is its own autocommitted statement.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journald.h"
#include "log.h"

int
jnl_tokens_open(struct jnl_ctx *ctx)
{
	if (jnl_db_prepare(ctx->system_db,
		"INSERT INTO tokens (token_id, tenant, principal, role, hash,"
		" created_unix, expires_unix) VALUES (?, ?, ?, ?, ?, ?, ?)",
		&ctx->token_insert) < 0)
		return -EIO;
	if (jnl_db_prepare(ctx->system_db,
		"SELECT tenant, principal, role, token_id FROM tokens"
		" WHERE hash = ? AND revoked = 0"
		" AND (expires_unix = 0 OR expires_unix > ?)",
		&ctx->token_lookup) < 0)
		return -EIO;
	return 0;
}

void
jnl_tokens_close(struct jnl_ctx *ctx)
{
	sqlite3_finalize(ctx->token_insert);
	sqlite3_finalize(ctx->token_lookup);
	ctx->token_insert = ctx->token_lookup = NULL;
}

static int
token_role_valid(const char *role)
{
	return strcmp(role, "user") == 0 || strcmp(role, "operator") == 0 ||
	       strcmp(role, "admin") == 0;
}

/* Token ids are printed by palyractl and used in URLs: keep them plain. */
static int
token_id_valid(const char *id)
{
	size_t i;

	for (i = 0; id[i] != '\0'; i++) {
		if (i >= NAME_MAX_LEN)
			return 0;
		if (!((id[i] >= 'a' && id[i] <= 'z') ||
			(id[i] >= 'A' && id[i] <= 'Z') ||
			(id[i] >= '0' && id[i] <= '9') || id[i] == '_' ||
			id[i] == '-'))
			return 0;
	}
	return i > 0;
}

static void
token_stored_reply(
    struct jnl_ctx *ctx, uint32_t request_id, int ok, const char *error)
{
	Palyra__Ipc__TokenStored reply = PALYRA__IPC__TOKEN_STORED__INIT;
	int rc;

	reply.ok = ok;
	reply.error = (char *)(error != NULL ? error : "");
	if (ctx->front == NULL)
		return;
	if ((rc = ipc_chan_send(ctx->front, IPC_TOKEN_STORED, request_id,
		 &reply.base, NULL, 0)) < 0)
		log_warn("front: cannot queue TOKEN_STORED: %s", strerror(-rc));
}

void
jnl_handle_token_store(struct jnl_ctx *ctx, const struct ipc_msg *m)
{
	const Palyra__Ipc__TokenStore *req =
	    (const Palyra__Ipc__TokenStore *)m->msg;
	sqlite3_stmt *st = ctx->token_insert;
	int rc;

	if (!jnl_name_valid(req->tenant) || !jnl_name_valid(req->principal) ||
	    !token_role_valid(req->role) || !token_id_valid(req->token_id) ||
	    req->token_hash.len != CHAIN_HASH_LEN || req->created_unix < 0 ||
	    req->expires_unix < 0) {
		log_warn("front: TOKEN_STORE with invalid fields refused");
		token_stored_reply(ctx, m->hdr.request_id, 0, "invalid");
		return;
	}
	sqlite3_bind_text(st, 1, req->token_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, req->tenant, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, req->principal, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, req->role, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 5, req->token_hash.data, (int)req->token_hash.len,
	    SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, req->created_unix);
	sqlite3_bind_int64(st, 7, req->expires_unix);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc == SQLITE_DONE) {
		log_info("token %s stored for %s/%s (%s)", req->token_id,
		    req->tenant, req->principal, req->role);
		token_stored_reply(ctx, m->hdr.request_id, 1, NULL);
	} else if ((rc & 0xff) == SQLITE_CONSTRAINT) {
		log_warn("token %s: id or hash already stored", req->token_id);
		token_stored_reply(ctx, m->hdr.request_id, 0, "conflict");
	} else {
		log_error("system.db: token insert: %s", sqlite3_errstr(rc));
		token_stored_reply(ctx, m->hdr.request_id, 0, "storage");
	}
}

/* A column as a string for a reply; never NULL (SQLite out of memory). */
static char *
column_text(sqlite3_stmt *st, int col)
{
	const unsigned char *text = sqlite3_column_text(st, col);

	return (char *)(text != NULL ? (const char *)text : "");
}

void
jnl_handle_token_lookup(struct jnl_ctx *ctx, const struct ipc_msg *m)
{
	const Palyra__Ipc__TokenLookup *req =
	    (const Palyra__Ipc__TokenLookup *)m->msg;
	Palyra__Ipc__TokenInfo reply = PALYRA__IPC__TOKEN_INFO__INIT;
	sqlite3_stmt *st = ctx->token_lookup;
	int rc = SQLITE_DONE;

	if (req->token_hash.len == CHAIN_HASH_LEN) {
		sqlite3_bind_blob(st, 1, req->token_hash.data,
		    (int)req->token_hash.len, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, (int64_t)(jnl_now_ms() / 1000));
		rc = sqlite3_step(st);
	} else
		log_warn("front: TOKEN_LOOKUP with a %zu-byte hash",
		    req->token_hash.len);
	if (rc == SQLITE_ROW) {
		reply.found = 1;
		reply.tenant = column_text(st, 0);
		reply.principal = column_text(st, 1);
		reply.role = column_text(st, 2);
		reply.token_id = column_text(st, 3);
	} else if (rc != SQLITE_DONE)
		log_error("system.db: token lookup: %s", sqlite3_errstr(rc));
	if (ctx->front != NULL &&
	    (rc = ipc_chan_send(ctx->front, IPC_TOKEN_INFO, m->hdr.request_id,
		 &reply.base, NULL, 0)) < 0)
		log_warn("front: cannot queue TOKEN_INFO: %s", strerror(-rc));
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

/*
 * TOKEN_LIST_REQUEST: one page of tokens in token_id order, never a hash.
 * The statement is prepared per request: listings are rare and operator
 * driven.
 */
void
jnl_handle_token_list(struct jnl_ctx *ctx, const struct ipc_msg *m)
{
	const Palyra__Ipc__TokenListRequest *req =
	    (const Palyra__Ipc__TokenListRequest *)m->msg;
	Palyra__Ipc__TokenList reply = PALYRA__IPC__TOKEN_LIST__INIT;
	Palyra__Ipc__TokenRecord records[JNL_TOKEN_PAGE_MAX];
	Palyra__Ipc__TokenRecord *ptrs[JNL_TOKEN_PAGE_MAX];
	sqlite3_stmt *st = NULL;
	size_t n = 0;
	int rc = SQLITE_DONE;

	if ((req->tenant[0] != '\0' && !jnl_name_valid(req->tenant)) ||
	    (req->after_token_id[0] != '\0' &&
		!token_id_valid(req->after_token_id))) {
		log_warn("front: TOKEN_LIST_REQUEST with invalid fields");
		goto send;
	}
	if (sqlite3_prepare_v2(ctx->system_db,
		"SELECT token_id, tenant, principal, role, created_unix,"
		" expires_unix, revoked FROM tokens WHERE token_id > ?1"
		" AND (?2 = '' OR tenant = ?2) ORDER BY token_id LIMIT ?3",
		-1, &st, NULL) != SQLITE_OK) {
		log_error("system.db: token list: %s",
		    sqlite3_errmsg(ctx->system_db));
		goto send;
	}
	sqlite3_bind_text(st, 1, req->after_token_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, req->tenant, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, JNL_TOKEN_PAGE_MAX + 1);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		Palyra__Ipc__TokenRecord *r = &records[n];

		if (n == JNL_TOKEN_PAGE_MAX) {
			reply.more = 1;
			rc = SQLITE_DONE;
			break;
		}
		palyra__ipc__token_record__init(r);
		/* Copies: a row's texts do not outlive the next step. */
		r->token_id = strdup(column_text(st, 0));
		r->tenant = strdup(column_text(st, 1));
		r->principal = strdup(column_text(st, 2));
		r->role = strdup(column_text(st, 3));
		r->created_unix = sqlite3_column_int64(st, 4);
		r->expires_unix = sqlite3_column_int64(st, 5);
		r->revoked = sqlite3_column_int(st, 6) != 0;
		ptrs[n] = r;
		n++;
		if (r->token_id == NULL || r->tenant == NULL ||
		    r->principal == NULL || r->role == NULL) {
			rc = SQLITE_NOMEM;
			break;
		}
	}
	if (rc == SQLITE_DONE) {
		reply.ok = 1;
		reply.n_tokens = n;
		reply.tokens = ptrs;
	} else {
		log_error("system.db: token list: %s", sqlite3_errstr(rc));
		reply.more = 0;
	}
send:
	if (ctx->front != NULL &&
	    (rc = ipc_chan_send(ctx->front, IPC_TOKEN_LIST, m->hdr.request_id,
		 &reply.base, NULL, 0)) < 0)
		log_warn("front: cannot queue TOKEN_LIST: %s", strerror(-rc));
	while (n > 0) {
		n--;
		free(records[n].token_id);
		free(records[n].tenant);
		free(records[n].principal);
		free(records[n].role);
	}
	sqlite3_finalize(st);
}

/* TOKEN_REVOKE: marks a token revoked; lookups refuse it from now on. */
void
jnl_handle_token_revoke(struct jnl_ctx *ctx, const struct ipc_msg *m)
{
	const Palyra__Ipc__TokenRevoke *req =
	    (const Palyra__Ipc__TokenRevoke *)m->msg;
	Palyra__Ipc__TokenRevoked reply = PALYRA__IPC__TOKEN_REVOKED__INIT;
	sqlite3_stmt *st = NULL;
	int rc;

	if (!token_id_valid(req->token_id)) {
		/* No such token can exist. */
		reply.ok = 1;
		goto send;
	}
	if (sqlite3_prepare_v2(ctx->system_db,
		"UPDATE tokens SET revoked = 1 WHERE token_id = ?", -1, &st,
		NULL) != SQLITE_OK) {
		log_error("system.db: token revoke: %s",
		    sqlite3_errmsg(ctx->system_db));
		goto send;
	}
	sqlite3_bind_text(st, 1, req->token_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		reply.ok = 1;
		reply.found = sqlite3_changes(ctx->system_db) > 0;
		if (reply.found)
			log_info("token %s revoked", req->token_id);
	} else
		log_error("system.db: token revoke: %s", sqlite3_errstr(rc));
send:
	if (ctx->front != NULL &&
	    (rc = ipc_chan_send(ctx->front, IPC_TOKEN_REVOKED,
		 m->hdr.request_id, &reply.base, NULL, 0)) < 0)
		log_warn("front: cannot queue TOKEN_REVOKED: %s",
		    strerror(-rc));
	sqlite3_finalize(st);
}
