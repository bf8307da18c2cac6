/*
 * verify.c: `palyractl journal verify` in palyra-journald: walks a
 * tenant's events in chain_seq order, recomputes every link
 * (common/chain_verify.h) and checks the newest signed checkpoint.
 *
 * Runs in palyra-journald as an audit job (audit.h): every step reads at
 * most JNL_VERIFY_CHUNK events through a read-only connection, so the
 * walk sees committed events only and appends keep committing between
 * steps. The walk ends at the head that was committed when the tenant's
 * turn began. Touches the tenants' journal.db files (read) and the front's
 * channel (one JournalVerifyReport per tenant, then a last one).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "audit.h"
#include "log.h"

struct verify_state {
	int all;
	char tenant[NAME_MAX_LEN + 1];
	size_t index;	      /* next of ctx->tenants */
	size_t count;	      /* tenants to check */
	struct jnl_tenant *t; /* whose walk is under way, or NULL */
	sqlite3 *reader;
	sqlite3_stmt *rows;
	uint64_t target;
	uint64_t anchor_seq; /* the walk starts after it; 0: at genesis */
	struct chain_verifier v;
};

static void
verify_state_close(struct verify_state *s)
{
	sqlite3_finalize(s->rows);
	s->rows = NULL;
	jnl_db_close(s->reader);
	s->reader = NULL;
	s->t = NULL;
}

static void
verify_free(struct jnl_job *job)
{
	struct verify_state *s = job->state;

	verify_state_close(s);
	free(s);
}

static void
send_report(struct jnl_ctx *ctx, uint32_t request_id,
    Palyra__Ipc__JournalVerifyResult *result, int more, const char *error)
{
	Palyra__Ipc__JournalVerifyReport report =
	    PALYRA__IPC__JOURNAL_VERIFY_REPORT__INIT;

	if (result != NULL) {
		report.n_results = 1;
		report.results = &result;
	}
	report.more = more;
	report.error = (char *)(error != NULL ? error : "");
	(void)jnl_audit_reply(
	    ctx, IPC_JOURNAL_VERIFY_REPORT, request_id, &report.base);
}

/* Reports the tenant whose walk ended (or could not start). */
static void
send_result(struct jnl_job *job, const char *unavailable)
{
	Palyra__Ipc__JournalVerifyResult r =
	    PALYRA__IPC__JOURNAL_VERIFY_RESULT__INIT;
	struct verify_state *s = job->state;
	struct chain_verifier *v = &s->v;

	r.tenant = s->t->name;
	r.events = v->events;
	r.head_seq = v->head_seq;
	r.head_hash.data = v->head_hash;
	r.head_hash.len = CHAIN_HASH_LEN;
	r.checkpoint_seq = v->checkpoint_seq;
	if (unavailable != NULL) {
		r.ok = 0;
		r.reason = (char *)unavailable;
	} else if (v->state == CHAIN_VERIFY_OK) {
		r.ok = 1;
		log_info("%s: chain verified, %llu events, head %llu",
		    s->t->name, (unsigned long long)v->events,
		    (unsigned long long)v->head_seq);
	} else {
		r.ok = 0;
		r.broken_seq = v->broken_seq;
		r.expected.data = v->expected;
		r.expected.len = v->expected_len;
		r.found.data = v->found;
		r.found.len = v->found_len;
		r.reason = v->reason;
		log_warn("%s: chain BROKEN at seq %llu: %s", s->t->name,
		    (unsigned long long)v->broken_seq, v->reason);
	}
	send_report(job->ctx, job->request_id, &r, 1, NULL);
	verify_state_close(s);
}

/*
 * Begins t's walk: the newest checkpoint first (its signature must verify
 * with our key), then the committed head, read in that order so that the
 * checkpoint can never be newer than the head the walk ends at.
 */
static void
verify_begin(struct jnl_job *job, struct jnl_tenant *t)
{
	struct verify_state *s = job->state;
	struct jnl_checkpoint cp;
	struct jnl_anchor anchor;
	sqlite3_stmt *st;
	int rc;

	s->t = t;
	chain_verify_init(&s->v);
	if (t->db == NULL || jnl_reader_open(t, &s->reader) < 0) {
		send_result(job, "journal unavailable");
		return;
	}
	if (jnl_checkpoint_latest(s->reader, t->name, &cp) < 0 ||
	    jnl_anchor_latest(s->reader, t->name, &anchor) < 0) {
		send_result(job, "cannot read the checkpoints");
		return;
	}
	/* A pruned chain is walked from its anchor, whose signature must
	 * verify: an anchor nobody signed would hide any rewrite below it. */
	if (anchor.chain_seq != 0) {
		if (!jnl_anchor_signature_ok(
			job->ctx->audit, t->name, &anchor)) {
			s->v.state = CHAIN_VERIFY_BROKEN;
			s->v.broken_seq = anchor.chain_seq;
			snprintf(s->v.reason, sizeof(s->v.reason),
			    "prune anchor at seq %llu: signature does not "
			    "verify",
			    (unsigned long long)anchor.chain_seq);
			send_result(job, NULL);
			return;
		}
		chain_verify_start_at(&s->v, anchor.chain_seq, anchor.hash);
	}
	s->anchor_seq = anchor.chain_seq;
	/* A checkpoint the prune went past was checked when it was signed
	 * onto the chain the anchor now stands for. */
	if (cp.chain_seq != 0 && cp.chain_seq <= anchor.chain_seq)
		cp.chain_seq = 0;
	if (cp.chain_seq != 0) {
		s->v.checkpoint_seq = cp.chain_seq;
		if (!jnl_checkpoint_signature_ok(
			job->ctx->audit, t->name, &cp)) {
			s->v.state = CHAIN_VERIFY_BROKEN;
			s->v.broken_seq = cp.chain_seq;
			snprintf(s->v.reason, sizeof(s->v.reason),
			    "checkpoint at seq %llu: %s",
			    (unsigned long long)cp.chain_seq,
			    cp.malformed ? "malformed"
			    : !job->ctx->audit->have_key
				? "no key to check its signature"
			    : sodium_memcmp(cp.public_key,
				  job->ctx->audit->public_key,
				  JNL_SIGN_PUBLIC_LEN) != 0
				? "signed by another key"
				: "signature does not verify");
			send_result(job, NULL);
			return;
		}
		chain_verify_expect_checkpoint(&s->v, cp.chain_seq, cp.hash);
	}
	if (jnl_db_prepare(
		s->reader, "SELECT max(chain_seq) FROM events", &st) < 0) {
		send_result(job, "cannot read the chain head");
		return;
	}
	rc = sqlite3_step(st);
	s->target =
	    rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW ||
	    jnl_db_prepare(s->reader,
		"SELECT chain_seq, run_id, run_seq, ts_ms, payload, hash"
		" FROM events WHERE chain_seq > ?1 AND chain_seq <= ?2"
		" ORDER BY chain_seq LIMIT ?3",
		&s->rows) < 0)
		send_result(job, "cannot read the events");
}

/* Checks up to JNL_VERIFY_CHUNK events. Returns 1 when the walk ended. */
static int
verify_chunk(struct verify_state *s)
{
	struct chain_row row;
	size_t n = 0;
	int rc;

	/* The first query starts below any chain_seq, so that a row
	 * inserted at 0 or below is seen (as a gap) too; after a prune, at
	 * its anchor (events a crashed prune left below it are covered). */
	sqlite3_bind_int64(s->rows, 1,
	    s->v.events == 0 && s->anchor_seq == 0 ? INT64_MIN
						   : (int64_t)s->v.head_seq);
	sqlite3_bind_int64(s->rows, 2, (int64_t)s->target);
	sqlite3_bind_int(s->rows, 3, JNL_VERIFY_CHUNK);
	while ((rc = sqlite3_step(s->rows)) == SQLITE_ROW) {
		n++;
		row.chain_seq = (uint64_t)sqlite3_column_int64(s->rows, 0);
		row.run_id = (const char *)sqlite3_column_text(s->rows, 1);
		row.run_seq = (uint64_t)sqlite3_column_int64(s->rows, 2);
		row.ts_ms = sqlite3_column_int64(s->rows, 3);
		row.payload = sqlite3_column_blob(s->rows, 4);
		row.payload_len = (size_t)sqlite3_column_bytes(s->rows, 4);
		row.hash = sqlite3_column_blob(s->rows, 5);
		row.hash_len = (size_t)sqlite3_column_bytes(s->rows, 5);
		if (chain_verify_row(&s->v, &row) != 0)
			break;
	}
	sqlite3_reset(s->rows);
	if (s->v.state == CHAIN_VERIFY_BROKEN)
		return 1;
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		s->v.state = CHAIN_VERIFY_BROKEN;
		s->v.broken_seq = s->v.head_seq + 1;
		snprintf(s->v.reason, sizeof(s->v.reason),
		    "cannot read the events: %s", sqlite3_errstr(rc));
		return 1;
	}
	if (n < JNL_VERIFY_CHUNK || s->v.head_seq >= s->target) {
		(void)chain_verify_finish(&s->v);
		return 1;
	}
	return 0;
}

static int
verify_step(struct jnl_job *job)
{
	struct verify_state *s = job->state;
	struct jnl_ctx *ctx = job->ctx;
	struct jnl_tenant *t;

	if (s->t == NULL) {
		if (s->index >= s->count) {
			send_report(ctx, job->request_id, NULL, 0, NULL);
			return 1;
		}
		t = s->all ? ctx->tenants[s->index]
			   : jnl_tenant_find(ctx, s->tenant);
		s->index++;
		if (t == NULL)
			return 0;
		verify_begin(job, t);
		return 0;
	}
	if (verify_chunk(s))
		send_result(job, NULL);
	return 0;
}

void
jnl_verify_request(struct jnl_ctx *ctx, const struct ipc_msg *m)
{
	const Palyra__Ipc__JournalVerifyRequest *req =
	    (const Palyra__Ipc__JournalVerifyRequest *)m->msg;
	struct verify_state *s;
	int rc;

	if (req->tenant[0] != '\0' &&
	    (!jnl_name_valid(req->tenant) ||
		jnl_tenant_find(ctx, req->tenant) == NULL)) {
		send_report(ctx, m->hdr.request_id, NULL, 0, "unknown tenant");
		return;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		send_report(ctx, m->hdr.request_id, NULL, 0, "out of memory");
		return;
	}
	s->all = req->tenant[0] == '\0';
	snprintf(s->tenant, sizeof(s->tenant), "%s", req->tenant);
	s->count = s->all ? ctx->ntenants : 1;
	if ((rc = jnl_job_start(
		 ctx, m->hdr.request_id, verify_step, verify_free, s)) < 0)
		send_report(ctx, m->hdr.request_id, NULL, 0,
		    rc == -EBUSY ? "too many audit jobs running"
				 : "out of memory");
}
