/*
 * tokens.c: tenant tokens in system.db, for the front (TOKEN_STORE,
 * TOKEN_LOOKUP). Runs in palyra-journald; touches system.db only.
 *
 * Only keyed hashes of tokens reach this process (the front hashes with a
 * key derived from the master key), so system.db never holds a usable token.
 * Token operations are rare: each is its own autocommitted statement.
 */
#include <errno.h>
#include <stdio.h>
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
