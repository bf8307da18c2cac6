/*
 * checkpoint.c: signed checkpoints of the tenants' chain heads, so that
 * truncating a journal is detectable (DESIGN section 8).
 *
 * Runs in palyra-journald. Touches the tenants' journal.db files: a
 * checkpoint row goes into the tenant's open batch and commits with the
 * events it covers, or not at all. Written every checkpoint-interval and
 * on demand (`palyractl journal checkpoint`), only when the head moved,
 * and never over a chain that no longer holds the newest checkpoint's
 * link: that is a truncation or a rewrite, and the evidence is kept.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "audit.h"
#include "log.h"

#define E_NO_KEY "no checkpoint key"
#define E_STORAGE "journal storage failed"
#define E_BEHIND "the chain no longer holds the newest checkpoint"
#define E_UNAVAILABLE "journal unavailable"

struct checkpoint_outcome {
	struct jnl_tenant *t;
	int written;
	const char *error;
	struct jnl_checkpoint cp;
};

/* 1 when t's chain holds chain_seq with exactly hash. -EIO on failure. */
static int
chain_holds(struct jnl_tenant *t, uint64_t chain_seq, const uint8_t *hash)
{
	sqlite3_stmt *st;
	int rc, holds = 0;

	if (jnl_db_prepare(
		t->db, "SELECT hash FROM events WHERE chain_seq = ?", &st) < 0)
		return -EIO;
	sqlite3_bind_int64(st, 1, (int64_t)chain_seq);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		holds = sqlite3_column_bytes(st, 0) == CHAIN_HASH_LEN &&
			memcmp(sqlite3_column_blob(st, 0), hash,
			    CHAIN_HASH_LEN) == 0;
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return -EIO;
	return holds;
}

static int
checkpoint_insert(struct jnl_tenant *t, const struct jnl_checkpoint *cp)
{
	sqlite3_stmt *st;
	int rc;

	if (jnl_db_prepare(t->db,
		"INSERT INTO checkpoints (chain_seq, hash, ts_ms, public_key,"
		" signature) VALUES (?, ?, ?, ?, ?)",
		&st) < 0)
		return -EIO;
	sqlite3_bind_int64(st, 1, (int64_t)cp->chain_seq);
	sqlite3_bind_blob(st, 2, cp->hash, CHAIN_HASH_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, cp->ts_ms);
	sqlite3_bind_blob(
	    st, 4, cp->public_key, JNL_SIGN_PUBLIC_LEN, SQLITE_STATIC);
	sqlite3_bind_blob(
	    st, 5, cp->signature, JNL_SIGNATURE_LEN, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		log_error(
		    "%s: checkpoint insert: %s", t->name, sqlite3_errstr(rc));
		return -EIO;
	}
	return 0;
}

/*
 * Signs t's chain head (the open batch's, which commits with it) into
 * o->cp unless the newest checkpoint already covers it; o->cp is then the
 * newest. Sets o->written or o->error.
 */
static void
checkpoint_tenant(
    struct jnl_ctx *ctx, struct jnl_tenant *t, struct checkpoint_outcome *o)
{
	struct jnl_audit *a = ctx->audit;
	struct jnl_checkpoint *cp = &o->cp;
	struct jnl_anchor anchor;
	uint8_t msg[CHAIN_CHECKPOINT_MSG_MAX];
	int len, rc;

	memset(o, 0, sizeof(*o));
	o->t = t;
	if (t->db == NULL) {
		o->error = E_UNAVAILABLE;
		return;
	}
	if (!a->have_key) {
		o->error = E_NO_KEY;
		return;
	}
	if (jnl_checkpoint_latest(t->db, t->name, cp) < 0) {
		o->error = E_STORAGE;
		return;
	}
	if (t->head_seq == 0 ||
	    (cp->chain_seq == t->head_seq && !cp->malformed &&
		memcmp(cp->hash, t->head_hash, CHAIN_HASH_LEN) == 0))
		return; /* nothing new to sign */
	if (cp->chain_seq != 0 &&
	    jnl_anchor_latest(t->db, t->name, &anchor) < 0) {
		o->error = E_STORAGE;
		return;
	}
	if (cp->chain_seq != 0) {
		/* Below a prune anchor the events are gone; the anchor was
		 * only ever inserted onto the chain as it stood. */
		rc = cp->malformed || cp->chain_seq > t->head_seq ? 0
		     : cp->chain_seq <= anchor.chain_seq
			 ? 1
			 : chain_holds(t, cp->chain_seq, cp->hash);
		if (rc < 0) {
			o->error = E_STORAGE;
			return;
		}
		if (rc == 0) {
			log_error("%s: chain head %llu does not extend the "
				  "checkpoint at seq %llu; not signing",
			    t->name, (unsigned long long)t->head_seq,
			    (unsigned long long)cp->chain_seq);
			o->error = E_BEHIND;
			return;
		}
	}
	memset(cp, 0, sizeof(*cp));
	cp->chain_seq = t->head_seq;
	memcpy(cp->hash, t->head_hash, CHAIN_HASH_LEN);
	cp->ts_ms = (int64_t)jnl_now_ms();
	memcpy(cp->public_key, a->public_key, JNL_SIGN_PUBLIC_LEN);
	len = chain_checkpoint_message(
	    t->name, cp->chain_seq, cp->hash, cp->ts_ms, msg, sizeof(msg));
	if (len < 0 || crypto_sign_detached(cp->signature, NULL, msg,
			   (unsigned long long)len, a->secret_key) != 0) {
		o->error = E_NO_KEY;
		return;
	}
	if (jnl_batch_begin(ctx, t) < 0) {
		o->error = E_STORAGE;
		return;
	}
	if (checkpoint_insert(t, cp) < 0) {
		/* A failure that ended the transaction fails the batch. */
		if (sqlite3_get_autocommit(t->db))
			jnl_batch_fail(ctx, t);
		o->error = E_STORAGE;
		return;
	}
	o->written = 1;
	log_debug("%s: checkpoint at seq %llu", t->name,
	    (unsigned long long)cp->chain_seq);
}

void
jnl_checkpoint_all(struct jnl_ctx *ctx)
{
	struct checkpoint_outcome o;
	size_t i, n = 0;

	for (i = 0; i < ctx->ntenants; i++) {
		if (ctx->tenants[i]->db == NULL)
			continue;
		checkpoint_tenant(ctx, ctx->tenants[i], &o);
		n += o.written;
	}
	if (n > 0)
		log_info("%zu checkpoint(s) signed", n);
}

static void
send_page(struct jnl_ctx *ctx, uint32_t request_id,
    const struct checkpoint_outcome *o, size_t n, int more, const char *error)
{
	Palyra__Ipc__JournalCheckpointReport report =
	    PALYRA__IPC__JOURNAL_CHECKPOINT_REPORT__INIT;
	Palyra__Ipc__JournalCheckpointInfo info[JNL_CHECKPOINT_PAGE];
	Palyra__Ipc__JournalCheckpointInfo *infop[JNL_CHECKPOINT_PAGE];
	size_t i;

	for (i = 0; i < n; i++) {
		palyra__ipc__journal_checkpoint_info__init(&info[i]);
		info[i].tenant = (char *)o[i].t->name;
		info[i].written = o[i].written;
		info[i].error = (char *)(o[i].error != NULL ? o[i].error : "");
		if (o[i].cp.chain_seq != 0 && !o[i].cp.malformed) {
			info[i].chain_seq = o[i].cp.chain_seq;
			info[i].hash.data = (uint8_t *)o[i].cp.hash;
			info[i].hash.len = CHAIN_HASH_LEN;
			info[i].ts_ms = o[i].cp.ts_ms;
			info[i].signature.data = (uint8_t *)o[i].cp.signature;
			info[i].signature.len = JNL_SIGNATURE_LEN;
		}
		infop[i] = &info[i];
	}
	report.n_checkpoints = n;
	report.checkpoints = infop;
	report.more = more;
	report.error = (char *)(error != NULL ? error : "");
	(void)jnl_audit_reply(
	    ctx, IPC_JOURNAL_CHECKPOINT_REPORT, request_id, &report.base);
}

void
jnl_checkpoint_request(struct jnl_ctx *ctx, const struct ipc_msg *m)
{
	const Palyra__Ipc__JournalCheckpointRequest *req =
	    (const Palyra__Ipc__JournalCheckpointRequest *)m->msg;
	struct checkpoint_outcome *out;
	struct jnl_checkpoint committed;
	struct jnl_tenant *one = NULL;
	size_t i, n, count;

	if (req->tenant[0] != '\0' &&
	    (!jnl_name_valid(req->tenant) ||
		(one = jnl_tenant_find(ctx, req->tenant)) == NULL)) {
		send_page(ctx, m->hdr.request_id, NULL, 0, 0, "unknown tenant");
		return;
	}
	count = one != NULL ? 1 : ctx->ntenants;
	if ((out = calloc(count > 0 ? count : 1, sizeof(*out))) == NULL) {
		send_page(ctx, m->hdr.request_id, NULL, 0, 0, "out of memory");
		return;
	}
	for (i = 0; i < count; i++)
		checkpoint_tenant(
		    ctx, one != NULL ? one : ctx->tenants[i], &out[i]);
	/* The answer says "written" only for what is on disk. */
	jnl_commit_all(ctx);
	for (i = 0; i < count; i++) {
		if (!out[i].written)
			continue;
		if (out[i].t->db == NULL ||
		    jnl_checkpoint_latest(
			out[i].t->db, out[i].t->name, &committed) < 0 ||
		    committed.chain_seq != out[i].cp.chain_seq ||
		    memcmp(committed.signature, out[i].cp.signature,
			JNL_SIGNATURE_LEN) != 0) {
			out[i].written = 0;
			out[i].error = E_STORAGE;
		}
	}
	for (i = 0; i < count || i == 0; i += n) {
		n = count - i < JNL_CHECKPOINT_PAGE ? count - i
						    : JNL_CHECKPOINT_PAGE;
		send_page(
		    ctx, m->hdr.request_id, out + i, n, i + n < count, NULL);
		if (n == 0)
			break;
	}
	free(out);
}
