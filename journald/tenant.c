/*
 * tenant.c: a tenant's journal.db as palyra-journald holds it: the prepared
 * statements, the chain head and the cache of live runs.
 * Runs in palyra-journald; touches STATE_DIR/tenants/NAME/journal.db.
 *
 * Run state (status, last sequence) is cached while a run is live, so that
 * an append needs no SELECT and the runs row is rewritten once per batch,
 * not once per event. The cache is dropped whenever a batch fails and
 * refilled from the database on demand.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "journald.h"
#include "log.h"

static const char *const status_names[] = {
    [PALYRA__V1__RUN_STATUS__RUN_STATUS_UNSPECIFIED] = "UNSPECIFIED",
    [PALYRA__V1__RUN_STATUS__RUN_STATUS_ACCEPTED] = "ACCEPTED",
    [PALYRA__V1__RUN_STATUS__RUN_STATUS_IN_PROGRESS] = "IN_PROGRESS",
    [PALYRA__V1__RUN_STATUS__RUN_STATUS_WAITING_APPROVAL] = "WAITING_APPROVAL",
    [PALYRA__V1__RUN_STATUS__RUN_STATUS_WAITING_TOOL] = "WAITING_TOOL",
    [PALYRA__V1__RUN_STATUS__RUN_STATUS_COMPLETED] = "COMPLETED",
    [PALYRA__V1__RUN_STATUS__RUN_STATUS_FAILED] = "FAILED",
    [PALYRA__V1__RUN_STATUS__RUN_STATUS_CANCELLED] = "CANCELLED",
    [PALYRA__V1__RUN_STATUS__RUN_STATUS_INTERRUPTED] = "INTERRUPTED",
};

static const char *const journal_sql[JNL_ST_COUNT] = {
    [JNL_ST_BEGIN] = "BEGIN IMMEDIATE",
    [JNL_ST_COMMIT] = "COMMIT",
    [JNL_ST_ROLLBACK] = "ROLLBACK",
    [JNL_ST_RUN_GET] =
	"SELECT status, last_seq, updated_ms FROM runs WHERE run_id = ?",
    [JNL_ST_RUN_INSERT] =
	"INSERT INTO runs (run_id, session_id, principal, agent, status,"
	" created_ms, updated_ms, last_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    [JNL_ST_RUN_UPDATE] =
	"UPDATE runs SET status = ?, updated_ms = ?, last_seq = ?"
	" WHERE run_id = ?",
    [JNL_ST_SESSION_INSERT] =
	"INSERT OR IGNORE INTO sessions (session_id, principal, created_ms)"
	" VALUES (?, ?, ?)",
    [JNL_ST_SESSION_OWNER] =
	"SELECT principal, closed_ms FROM sessions WHERE session_id = ?",
    [JNL_ST_EVENT_INSERT] =
	"INSERT INTO events (chain_seq, run_id, run_seq, ts_ms, kind,"
	" payload, hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
    /* After a prune that took every event, the chain continues from its
     * anchor (journald/prune.c). */
    [JNL_ST_HEAD] =
	"SELECT chain_seq, hash FROM (SELECT chain_seq, hash FROM events"
	" ORDER BY chain_seq DESC LIMIT 1) UNION ALL"
	" SELECT chain_seq, hash FROM (SELECT chain_seq, hash FROM anchors"
	" ORDER BY chain_seq DESC LIMIT 1) ORDER BY 1 DESC LIMIT 1",
    /* Free pages are reused before the file grows: they do not count. */
    [JNL_ST_USED_BYTES] =
	"SELECT (p.page_count - f.freelist_count) * s.page_size"
	" FROM pragma_page_count() p, pragma_freelist_count() f,"
	" pragma_page_size() s",
};

int
jnl_status_terminal(int status)
{
	return status >= PALYRA__V1__RUN_STATUS__RUN_STATUS_COMPLETED &&
	       status <= PALYRA__V1__RUN_STATUS__RUN_STATUS_INTERRUPTED;
}

static int
status_parse(const char *name)
{
	int i;

	for (i = 1; i <= JNL_RUN_STATUS_MAX && name != NULL; i++)
		if (strcmp(name, status_names[i]) == 0)
			return i;
	return -1;
}

const char *
jnl_status_name(int status)
{
	return status >= 0 && status <= JNL_RUN_STATUS_MAX
		   ? status_names[status]
		   : "UNSPECIFIED";
}

/* Steps a statement that returns no row and resets it. */
int
jnl_step_done(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? 0 : rc;
}

/* Run cache. */

static size_t
run_bucket(const char *run_id)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	while (*run_id != '\0')
		h = (h ^ (uint8_t)*run_id++) * 16777619u;
	return h % JNL_RUN_BUCKETS;
}

void
jnl_run_cache_clear(struct jnl_tenant *t)
{
	struct jnl_run *r, *next;
	size_t i;

	for (i = 0; i < JNL_RUN_BUCKETS; i++) {
		for (r = t->runs[i]; r != NULL; r = next) {
			next = r->next;
			free(r);
		}
		t->runs[i] = NULL;
	}
	t->nruns = 0;
	t->dirty = NULL;
}

void
jnl_run_cache_remove(struct jnl_tenant *t, struct jnl_run *run)
{
	struct jnl_run **p = &t->runs[run_bucket(run->run_id)];

	while (*p != NULL && *p != run)
		p = &(*p)->next;
	if (*p != NULL) {
		*p = run->next;
		t->nruns--;
		free(run);
	}
}

struct jnl_run *
jnl_run_cache_add(struct jnl_tenant *t, const char *run_id, int status,
    uint64_t last_seq, int64_t updated_ms)
{
	struct jnl_run *run;
	size_t b = run_bucket(run_id);

	if ((run = calloc(1, sizeof(*run))) == NULL)
		return NULL;
	snprintf(run->run_id, sizeof(run->run_id), "%s", run_id);
	run->status = status;
	run->last_seq = last_seq;
	run->updated_ms = updated_ms;
	run->next = t->runs[b];
	t->runs[b] = run;
	t->nruns++;
	return run;
}

/*
 * Finds a run in the cache or the database (which sees this batch's own
 * writes). Returns 0 with *out (NULL: no such run) or -EIO.
 */
int
jnl_run_get(struct jnl_tenant *t, const char *run_id, struct jnl_run **out)
{
	struct jnl_run *run;
	sqlite3_stmt *st = t->st[JNL_ST_RUN_GET];
	int rc, status;

	*out = NULL;
	for (run = t->runs[run_bucket(run_id)]; run != NULL; run = run->next)
		if (strcmp(run->run_id, run_id) == 0) {
			*out = run;
			return 0;
		}
	sqlite3_bind_text(st, 1, run_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		status = status_parse((const char *)sqlite3_column_text(st, 0));
		if (status < 0) {
			log_error("%s: run %s has an unknown status", t->name,
			    run_id);
			rc = SQLITE_CORRUPT;
		} else if ((*out = jnl_run_cache_add(t, run_id, status,
				(uint64_t)sqlite3_column_int64(st, 1),
				sqlite3_column_int64(st, 2))) == NULL)
			rc = SQLITE_NOMEM;
		else
			rc = SQLITE_DONE;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

/* Tenant databases. */

int
jnl_tenant_load_head(struct jnl_tenant *t)
{
	sqlite3_stmt *st = t->st[JNL_ST_HEAD];
	int rc;

	t->head_seq = 0;
	memset(t->head_hash, 0, sizeof(t->head_hash));
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if (sqlite3_column_bytes(st, 1) != CHAIN_HASH_LEN) {
			log_error(
			    "%s: chain head has a malformed hash", t->name);
			rc = SQLITE_CORRUPT;
		} else {
			t->head_seq = (uint64_t)sqlite3_column_int64(st, 0);
			memcpy(t->head_hash, sqlite3_column_blob(st, 1),
			    CHAIN_HASH_LEN);
			rc = SQLITE_DONE;
		}
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

int
jnl_tenant_open(struct jnl_ctx *ctx, struct jnl_tenant *t)
{
	char path[4096];
	int i, rc;

	/* The supervisor creates the directory; making it here too keeps
	 * journald usable on its own (tests, benchmarks). */
	/* Paths are relative to STATE_DIR, journald's cwd (and root) since
	 * its sandbox. */
	(void)mkdir("tenants", S_IRWXU);
	if ((size_t)snprintf(path, sizeof(path), "tenants/%s", t->name) >=
	    sizeof(path))
		return -ENAMETOOLONG;
	if (mkdir(path, S_IRWXU) == -1 && errno != EEXIST) {
		log_error("%s: %s", path, strerror(errno));
		return -EIO;
	}
	if ((size_t)snprintf(path, sizeof(path), "tenants/%s/journal.db",
		t->name) >= sizeof(path))
		return -ENAMETOOLONG;
	if ((rc = jnl_db_open(
		 path, JNL_DB_JOURNAL, ctx->durability_full, &t->db)) < 0)
		return rc;
	for (i = 0; i < JNL_ST_COUNT; i++)
		if (jnl_db_prepare(t->db, journal_sql[i], &t->st[i]) < 0)
			goto fail;
	if (jnl_tenant_load_head(t) < 0)
		goto fail;
	log_debug("tenant %s: journal open, chain head %llu", t->name,
	    (unsigned long long)t->head_seq);
	return 0;
fail:
	jnl_tenant_close(t);
	return -EIO;
}

void
jnl_tenant_close(struct jnl_tenant *t)
{
	int i;

	if (t->db != NULL && t->batch == JNL_BATCH_OPEN)
		(void)jnl_step_done(t->st[JNL_ST_ROLLBACK]);
	t->batch = JNL_BATCH_IDLE;
	for (i = 0; i < JNL_ST_COUNT; i++) {
		sqlite3_finalize(t->st[i]);
		t->st[i] = NULL;
	}
	jnl_usage_close(t);
	jnl_memory_close(t);
	jnl_db_close(t->db);
	t->db = NULL;
	jnl_run_cache_clear(t);
}
