/*
 * prune.c: pruning a tenant's journal by age behind a signed anchor
 * (`palyractl journal prune`, POST /admin/v1/journal/prune).
 *
 * Runs in palyra-journald as an audit job (audit.h). Touches one tenant's
 * journal.db through its writing connection, between group commits.
 *
 * The state machine of a prune: ANCHOR (find the cut-off, sign and commit
 * an anchor at it), EVENTS (delete the events up to the anchor, at most
 * JNL_PRUNE_BATCH per transaction, each committed), RUNS (delete finished
 * runs older than the cut-off with no event left, in the same batches),
 * then the answer. The cut-off is the last event before the first one that
 * is not older than before_ms or belongs to a run still in progress: a run
 * in progress is never pruned, nor anything after it.
 *
 * The schema (db.c, migration 3) lets an event be deleted only at or below
 * the newest anchor, and an anchor be inserted only onto a stored event,
 * moving forward: the anchor is committed before any event goes, so a
 * crash in between leaves an anchor and all events (verify is ok), or an
 * anchor and some of them (still ok: the walk starts after the anchor and
 * ignores nothing), never a chain that cannot be verified.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "audit.h"
#include "log.h"

enum prune_phase {
	PRUNE_ANCHOR = 0,
	PRUNE_EVENTS,
	PRUNE_RUNS,
};

struct prune_state {
	enum prune_phase phase;
	char tenant[NAME_MAX_LEN + 1];
	int64_t before_ms;
	uint64_t cutoff;
	uint64_t events;
	uint64_t runs;
};

#define TERMINAL_STATUSES "('COMPLETED', 'FAILED', 'CANCELLED', 'INTERRUPTED')"

static void
prune_free(struct jnl_job *job)
{
	free(job->state);
}

static void
send_result(struct jnl_ctx *ctx, uint32_t request_id,
    const struct prune_state *s, struct jnl_tenant *t, const char *error)
{
	Palyra__Ipc__JournalPruneResult r =
	    PALYRA__IPC__JOURNAL_PRUNE_RESULT__INIT;
	Palyra__Ipc__JournalAnchor pa = PALYRA__IPC__JOURNAL_ANCHOR__INIT;
	struct jnl_anchor a;

	r.tenant = (char *)(s != NULL ? s->tenant : "");
	r.error = (char *)(error != NULL ? error : "");
	if (s != NULL) {
		r.events = s->events;
		r.runs = s->runs;
	}
	if (t != NULL && t->db != NULL &&
	    jnl_anchor_latest(t->db, t->name, &a) == 0 && a.chain_seq != 0 &&
	    !a.malformed) {
		pa.chain_seq = a.chain_seq;
		pa.hash.data = a.hash;
		pa.hash.len = CHAIN_HASH_LEN;
		pa.ts_ms = a.ts_ms;
		pa.signature.data = a.signature;
		pa.signature.len = JNL_SIGNATURE_LEN;
		pa.before_ms = a.before_ms;
		r.anchor = &pa;
	}
	(void)jnl_audit_reply(
	    ctx, IPC_JOURNAL_PRUNE_RESULT, request_id, &r.base);
}

/*
 * The last chain_seq a prune before before_ms may remove: everything
 * before the first event that is new enough or of a run not finished.
 * Returns 0 with *cutoff (0: nothing) or -EIO.
 */
static int
find_cutoff(struct jnl_tenant *t, int64_t before_ms, uint64_t *cutoff)
{
	sqlite3_stmt *st;
	int rc;

	*cutoff = 0;
	if (jnl_db_prepare(t->db,
		"SELECT coalesce((SELECT min(e.chain_seq) FROM events e"
		" JOIN runs r ON r.run_id = e.run_id WHERE e.ts_ms >= ?1"
		" OR r.status NOT IN " TERMINAL_STATUSES ") - 1,"
		" (SELECT max(chain_seq) FROM events), 0)",
		&st) < 0)
		return -EIO;
	sqlite3_bind_int64(st, 1, before_ms);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_int64(st, 0) > 0)
		*cutoff = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : -EIO;
}

/* The stored hash of event chain_seq. Returns 0, -ENOENT or -EIO. */
static int
event_hash(struct jnl_tenant *t, uint64_t chain_seq, uint8_t *hash)
{
	sqlite3_stmt *st;
	int rc, found = 0;

	if (jnl_db_prepare(
		t->db, "SELECT hash FROM events WHERE chain_seq = ?", &st) < 0)
		return -EIO;
	sqlite3_bind_int64(st, 1, (int64_t)chain_seq);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_bytes(st, 0) == CHAIN_HASH_LEN) {
		memcpy(hash, sqlite3_column_blob(st, 0), CHAIN_HASH_LEN);
		found = 1;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return -EIO;
	return found ? 0 : -ENOENT;
}

/*
 * Signs and commits an anchor at the cut-off (unless the newest anchor is
 * there already). Returns NULL, *nothing set when the journal has no
 * anchor and nothing to prune, or the error for the admin.
 */
static const char *
prune_anchor(struct jnl_ctx *ctx, struct jnl_tenant *t, struct prune_state *s,
    int *nothing)
{
	struct jnl_audit *au = ctx->audit;
	struct jnl_anchor a, cur;
	uint8_t msg[CHAIN_ANCHOR_MSG_MAX];
	sqlite3_stmt *st;
	int len, rc;

	*nothing = 0;
	if (!au->have_key)
		return "no checkpoint key to sign the anchor";
	/* The runs rows must say what the cache knows: commit first. */
	jnl_commit_all(ctx);
	if (jnl_anchor_latest(t->db, t->name, &cur) < 0 ||
	    find_cutoff(t, s->before_ms, &s->cutoff) < 0)
		return JNL_E_STORAGE;
	if (s->cutoff <= cur.chain_seq) {
		/* Nothing new to anchor; events a crashed prune left below
		 * the anchor are still deleted. */
		s->cutoff = cur.chain_seq;
		*nothing = cur.chain_seq == 0;
		return NULL;
	}
	memset(&a, 0, sizeof(a));
	a.chain_seq = s->cutoff;
	if ((rc = event_hash(t, a.chain_seq, a.hash)) < 0)
		return rc == -ENOENT ? "the chain has a gap at the cut-off"
				     : JNL_E_STORAGE;
	a.ts_ms = (int64_t)jnl_now_ms();
	a.before_ms = s->before_ms;
	memcpy(a.public_key, au->public_key, JNL_SIGN_PUBLIC_LEN);
	len = chain_anchor_message(t->name, a.chain_seq, a.hash, a.ts_ms,
	    a.before_ms, msg, sizeof(msg));
	if (len < 0 || crypto_sign_detached(a.signature, NULL, msg,
			   (unsigned long long)len, au->secret_key) != 0)
		return "cannot sign the anchor";
	if (jnl_batch_begin(ctx, t) < 0)
		return JNL_E_STORAGE;
	if (jnl_db_prepare(t->db,
		"INSERT INTO anchors (chain_seq, hash, ts_ms, before_ms,"
		" public_key, signature) VALUES (?, ?, ?, ?, ?, ?)",
		&st) < 0) {
		jnl_batch_fail(ctx, t);
		return JNL_E_STORAGE;
	}
	sqlite3_bind_int64(st, 1, (int64_t)a.chain_seq);
	sqlite3_bind_blob(st, 2, a.hash, CHAIN_HASH_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, a.ts_ms);
	sqlite3_bind_int64(st, 4, a.before_ms);
	sqlite3_bind_blob(
	    st, 5, a.public_key, JNL_SIGN_PUBLIC_LEN, SQLITE_STATIC);
	sqlite3_bind_blob(st, 6, a.signature, JNL_SIGNATURE_LEN, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		log_error("%s: anchor insert: %s", t->name, sqlite3_errstr(rc));
		jnl_batch_fail(ctx, t);
		return JNL_E_STORAGE;
	}
	jnl_commit_all(ctx);
	if (jnl_anchor_latest(t->db, t->name, &cur) < 0 ||
	    cur.chain_seq != a.chain_seq)
		return JNL_E_STORAGE;
	log_info("%s: prune anchor at seq %llu (before %lld)", t->name,
	    (unsigned long long)a.chain_seq, (long long)a.before_ms);
	return NULL;
}

/*
 * Runs one bounded DELETE in its own committed transaction. Returns the
 * rows deleted or -EIO.
 */
static int64_t
prune_batch(
    struct jnl_ctx *ctx, struct jnl_tenant *t, const char *sql, int64_t arg)
{
	sqlite3_stmt *st;
	int64_t n;
	int rc;

	jnl_commit_all(ctx);
	if (jnl_batch_begin(ctx, t) < 0)
		return -EIO;
	if (jnl_db_prepare(t->db, sql, &st) < 0) {
		jnl_batch_fail(ctx, t);
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, arg);
	sqlite3_bind_int(st, 2, JNL_PRUNE_BATCH);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		log_error("%s: prune: %s", t->name, sqlite3_errstr(rc));
		jnl_batch_fail(ctx, t);
		return -EIO;
	}
	n = sqlite3_changes64(t->db);
	jnl_commit_all(ctx);
	return t->batch == JNL_BATCH_IDLE ? n : -EIO;
}

static int
prune_step(struct jnl_job *job)
{
	struct prune_state *s = job->state;
	struct jnl_ctx *ctx = job->ctx;
	struct jnl_tenant *t = jnl_tenant_find(ctx, s->tenant);
	const char *err;
	int64_t n;
	int nothing;

	if (t == NULL || t->db == NULL) {
		send_result(
		    ctx, job->request_id, s, NULL, "journal unavailable");
		return 1;
	}
	switch (s->phase) {
	case PRUNE_ANCHOR:
		if ((err = prune_anchor(ctx, t, s, &nothing)) != NULL) {
			send_result(ctx, job->request_id, s, t, err);
			return 1;
		}
		if (nothing) {
			send_result(ctx, job->request_id, s, t, NULL);
			return 1;
		}
		s->phase = PRUNE_EVENTS;
		return 0;
	case PRUNE_EVENTS:
		n = prune_batch(ctx, t,
		    "DELETE FROM events WHERE chain_seq IN (SELECT chain_seq"
		    " FROM events WHERE chain_seq <= ?1 ORDER BY chain_seq"
		    " LIMIT ?2)",
		    (int64_t)s->cutoff);
		break;
	case PRUNE_RUNS:
		n = prune_batch(ctx, t,
		    "DELETE FROM runs WHERE rowid IN (SELECT rowid FROM runs r"
		    " WHERE r.status IN " TERMINAL_STATUSES
		    " AND r.updated_ms < ?1 AND NOT EXISTS (SELECT 1 FROM"
		    " events e WHERE e.run_id = r.run_id) LIMIT ?2)",
		    s->before_ms);
		/* The cache may hold a finished run whose row went. */
		jnl_run_cache_clear(t);
		break;
	default:
		return 1;
	}
	if (n < 0) {
		send_result(ctx, job->request_id, s, t, JNL_E_STORAGE);
		return 1;
	}
	if (s->phase == PRUNE_EVENTS)
		s->events += (uint64_t)n;
	else
		s->runs += (uint64_t)n;
	if (n < JNL_PRUNE_BATCH) {
		if (s->phase == PRUNE_EVENTS) {
			s->phase = PRUNE_RUNS;
			return 0;
		}
		log_info("%s: pruned %llu event(s) and %llu run(s) up to seq "
			 "%llu",
		    t->name, (unsigned long long)s->events,
		    (unsigned long long)s->runs, (unsigned long long)s->cutoff);
		send_result(ctx, job->request_id, s, t, NULL);
		return 1;
	}
	return 0;
}

void
jnl_prune_request(struct jnl_ctx *ctx, const struct ipc_msg *m)
{
	const Palyra__Ipc__JournalPruneRequest *req =
	    (const Palyra__Ipc__JournalPruneRequest *)m->msg;
	struct prune_state *s;
	int rc;

	if (!jnl_name_valid(req->tenant) ||
	    jnl_tenant_find(ctx, req->tenant) == NULL) {
		send_result(
		    ctx, m->hdr.request_id, NULL, NULL, "unknown tenant");
		return;
	}
	if (req->before_ms <= 0) {
		send_result(ctx, m->hdr.request_id, NULL, NULL,
		    "before_ms must be positive");
		return;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		send_result(
		    ctx, m->hdr.request_id, NULL, NULL, "out of memory");
		return;
	}
	snprintf(s->tenant, sizeof(s->tenant), "%s", req->tenant);
	s->before_ms = req->before_ms;
	if ((rc = jnl_job_start(
		 ctx, m->hdr.request_id, prune_step, prune_free, s)) < 0)
		send_result(ctx, m->hdr.request_id, NULL, NULL,
		    rc == -EBUSY ? "too many audit jobs running"
				 : "out of memory");
}
