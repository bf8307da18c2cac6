/*
 * db.c: opening palyra-journald's SQLite databases (system.db and each
 * tenant's journal.db): file mode, pragmas and versioned migrations.
 * Runs in palyra-journald only; touches the files it is given.
 *
 * The schema version is PRAGMA user_version. Migrations are an ordered array
 * per database kind; migration i takes the schema from version i to i + 1
 * and is applied in its own transaction together with the version bump, so
 * a crash leaves the database at a whole version. A database whose version
 * is newer than the array is refused: an older binary must not write a
 * schema it does not understand.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "journald.h"
#include "log.h"

static const char *const system_migrations[] = {
    /* 1: tenant tokens, stored as keyed hashes only. */
    "CREATE TABLE tokens ("
    " token_id TEXT PRIMARY KEY,"
    " tenant TEXT NOT NULL,"
    " principal TEXT NOT NULL,"
    " role TEXT NOT NULL,"
    " hash BLOB NOT NULL UNIQUE,"
    " created_unix INTEGER NOT NULL,"
    " expires_unix INTEGER NOT NULL DEFAULT 0,"
    " revoked INTEGER NOT NULL DEFAULT 0);",
};

static const char *const journal_migrations[] = {
    /* 1: sessions, runs and the hash-chained, append-only event tape. */
    "CREATE TABLE sessions ("
    " session_id TEXT PRIMARY KEY,"
    " principal TEXT NOT NULL,"
    " created_ms INTEGER NOT NULL);"
    "CREATE TABLE runs ("
    " run_id TEXT PRIMARY KEY,"
    " session_id TEXT NOT NULL REFERENCES sessions,"
    " principal TEXT NOT NULL,"
    " agent TEXT NOT NULL,"
    " status TEXT NOT NULL,"
    " created_ms INTEGER NOT NULL,"
    " updated_ms INTEGER NOT NULL,"
    " last_seq INTEGER NOT NULL);"
    "CREATE INDEX runs_session ON runs(session_id);"
    "CREATE INDEX runs_status ON runs(status);"
    "CREATE TABLE events ("
    " chain_seq INTEGER PRIMARY KEY,"
    " run_id TEXT NOT NULL REFERENCES runs,"
    " run_seq INTEGER NOT NULL,"
    " ts_ms INTEGER NOT NULL,"
    " kind TEXT NOT NULL,"
    " payload BLOB NOT NULL,"
    " hash BLOB NOT NULL,"
    " UNIQUE(run_id, run_seq));"
    "CREATE TRIGGER events_no_update BEFORE UPDATE ON events"
    " BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;"
    "CREATE TRIGGER events_no_delete BEFORE DELETE ON events"
    " BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;",
    /* 2: signed checkpoints of the chain head (journald/checkpoint.c). */
    "CREATE TABLE checkpoints ("
    " checkpoint_id INTEGER PRIMARY KEY,"
    " chain_seq INTEGER NOT NULL,"
    " hash BLOB NOT NULL,"
    " ts_ms INTEGER NOT NULL,"
    " public_key BLOB NOT NULL,"
    " signature BLOB NOT NULL);"
    "CREATE TRIGGER checkpoints_no_update BEFORE UPDATE ON checkpoints"
    " BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;"
    "CREATE TRIGGER checkpoints_no_delete BEFORE DELETE ON checkpoints"
    " BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;",
    /*
     * 3: prune anchors (journald/prune.c). An anchor records the link
     * (chain_seq, hash) of the last event a prune removes, signed like a
     * checkpoint; verification starts from it. The rule is in the schema,
     * not in a flag a connection could set: an event may be deleted only
     * when an anchor at or after it exists, and an anchor can only be
     * inserted onto a stored event, moving forward, never changed or
     * removed. So a DELETE never leaves the chain unverifiable, and every
     * deletion is bounded by a signed, append-only record of it.
     */
    "CREATE TABLE anchors ("
    " anchor_id INTEGER PRIMARY KEY,"
    " chain_seq INTEGER NOT NULL,"
    " hash BLOB NOT NULL,"
    " ts_ms INTEGER NOT NULL,"
    " before_ms INTEGER NOT NULL,"
    " public_key BLOB NOT NULL,"
    " signature BLOB NOT NULL);"
    "CREATE TRIGGER anchors_forward BEFORE INSERT ON anchors"
    " WHEN NEW.chain_seq <= (SELECT coalesce(max(chain_seq), 0) FROM anchors)"
    " OR NOT EXISTS (SELECT 1 FROM events WHERE chain_seq = NEW.chain_seq"
    " AND hash = NEW.hash)"
    " BEGIN SELECT RAISE(ABORT,"
    " 'an anchor must move forward onto a stored event'); END;"
    "CREATE TRIGGER anchors_no_update BEFORE UPDATE ON anchors"
    " BEGIN SELECT RAISE(ABORT, 'anchors are append-only'); END;"
    "CREATE TRIGGER anchors_no_delete BEFORE DELETE ON anchors"
    " BEGIN SELECT RAISE(ABORT, 'anchors are append-only'); END;"
    "DROP TRIGGER events_no_delete;"
    "CREATE TRIGGER events_no_delete BEFORE DELETE ON events"
    " WHEN OLD.chain_seq > (SELECT coalesce(max(chain_seq), 0) FROM anchors)"
    " BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;",
    /*
     * 4: the rest of DESIGN section 8, for the features that use it
     * (approvals, usage and budgets, agents, cron, memory, vault), and
     * the indices the paginated session and run listings walk
     * (journald/listing.c). Enumerations are CHECK constraints so that
     * no writer can store a state the readers do not know. Approvals
     * reference runs without a foreign key: a prune removes finished
     * runs, and an approval is an audit record that outlives its run.
     */
    "CREATE INDEX sessions_principal_order"
    " ON sessions(principal, created_ms, session_id);"
    "CREATE INDEX sessions_order ON sessions(created_ms, session_id);"
    "CREATE INDEX runs_session_order"
    " ON runs(session_id, created_ms, run_id);"
    "CREATE INDEX runs_principal_order"
    " ON runs(principal, created_ms, run_id);"
    "CREATE INDEX runs_order ON runs(created_ms, run_id);"
    "CREATE TABLE approvals ("
    " id TEXT PRIMARY KEY,"
    " run_id TEXT NOT NULL,"
    " tool TEXT NOT NULL,"
    " arguments_summary TEXT NOT NULL DEFAULT '',"
    " status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN"
    " ('pending', 'approved', 'denied', 'expired')),"
    " created_ms INTEGER NOT NULL,"
    " decided_ms INTEGER,"
    " decided_by TEXT,"
    " timeout_ms INTEGER NOT NULL CHECK (timeout_ms >= 0),"
    " CHECK ((status = 'pending') = (decided_ms IS NULL)));"
    "CREATE INDEX approvals_run ON approvals(run_id);"
    "CREATE INDEX approvals_pending ON approvals(status, created_ms)"
    " WHERE status = 'pending';"
    "CREATE TABLE approval_grants ("
    " id TEXT PRIMARY KEY,"
    " principal TEXT NOT NULL,"
    " agent TEXT NOT NULL,"
    " tool TEXT NOT NULL,"
    " scope TEXT NOT NULL CHECK (scope IN ('once', 'session', 'ttl')),"
    " session_id TEXT REFERENCES sessions ON DELETE CASCADE,"
    " expires_ms INTEGER,"
    " created_ms INTEGER NOT NULL,"
    " CHECK (scope != 'session' OR session_id IS NOT NULL),"
    " CHECK (scope != 'ttl' OR expires_ms IS NOT NULL));"
    "CREATE INDEX approval_grants_lookup"
    " ON approval_grants(principal, agent, tool);"
    "CREATE INDEX approval_grants_session ON approval_grants(session_id);"
    "CREATE TABLE usage ("
    " day TEXT NOT NULL CHECK (day GLOB"
    " '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'),"
    " agent TEXT NOT NULL,"
    " principal TEXT NOT NULL,"
    " provider TEXT NOT NULL,"
    " model TEXT NOT NULL,"
    " input_tokens INTEGER NOT NULL DEFAULT 0 CHECK (input_tokens >= 0),"
    " output_tokens INTEGER NOT NULL DEFAULT 0 CHECK (output_tokens >= 0),"
    " cost_micros INTEGER NOT NULL DEFAULT 0 CHECK (cost_micros >= 0),"
    " PRIMARY KEY (day, agent, principal, provider, model));"
    "CREATE TABLE budgets ("
    " id TEXT PRIMARY KEY,"
    " scope TEXT NOT NULL CHECK (scope IN ('tenant', 'agent', 'principal')),"
    " subject TEXT NOT NULL,"
    " unit TEXT NOT NULL CHECK (unit IN ('tokens', 'cost')),"
    " period TEXT NOT NULL CHECK (period IN ('day', 'month', 'total')),"
    " amount INTEGER NOT NULL CHECK (amount >= 0),"
    " hard INTEGER NOT NULL DEFAULT 1 CHECK (hard IN (0, 1)),"
    " UNIQUE (scope, subject, unit, period));"
    "CREATE TABLE agents ("
    " name TEXT PRIMARY KEY,"
    " config TEXT NOT NULL CHECK (json_valid(config)),"
    " created_ms INTEGER NOT NULL,"
    " updated_ms INTEGER NOT NULL CHECK (updated_ms >= created_ms));"
    "CREATE TABLE cron_jobs ("
    " id TEXT PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE,"
    " schedule TEXT NOT NULL,"
    " timezone TEXT NOT NULL DEFAULT 'UTC',"
    " principal TEXT NOT NULL,"
    " agent TEXT NOT NULL,"
    " input TEXT NOT NULL,"
    " misfire TEXT NOT NULL DEFAULT 'skip' CHECK (misfire IN"
    " ('skip', 'run_once', 'run_all')),"
    " overlap TEXT NOT NULL DEFAULT 'skip' CHECK (overlap IN"
    " ('skip', 'queue', 'allow')),"
    " jitter_ms INTEGER NOT NULL DEFAULT 0 CHECK (jitter_ms >= 0),"
    " enabled INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),"
    " created_ms INTEGER NOT NULL);"
    "CREATE TABLE cron_fires ("
    " job_id TEXT NOT NULL REFERENCES cron_jobs ON DELETE CASCADE,"
    " scheduled_ms INTEGER NOT NULL,"
    " run_id TEXT,"
    " state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN"
    " ('pending', 'started', 'skipped', 'done', 'failed')),"
    " UNIQUE (job_id, scheduled_ms));"
    "CREATE TABLE memory_items ("
    " id INTEGER PRIMARY KEY,"
    " principal TEXT NOT NULL,"
    " session_id TEXT REFERENCES sessions ON DELETE SET NULL,"
    " tags TEXT NOT NULL DEFAULT '',"
    " source TEXT NOT NULL DEFAULT '',"
    " text TEXT NOT NULL,"
    " embedding BLOB,"
    " created_ms INTEGER NOT NULL,"
    " expires_ms INTEGER);"
    "CREATE INDEX memory_items_principal ON memory_items(principal);"
    "CREATE INDEX memory_items_session ON memory_items(session_id);"
    "CREATE VIRTUAL TABLE memory_fts USING fts5("
    " text, content='memory_items', content_rowid='id');"
    "CREATE TRIGGER memory_items_fts_insert AFTER INSERT ON memory_items"
    " BEGIN INSERT INTO memory_fts(rowid, text)"
    " VALUES (NEW.id, NEW.text); END;"
    "CREATE TRIGGER memory_items_fts_delete AFTER DELETE ON memory_items"
    " BEGIN INSERT INTO memory_fts(memory_fts, rowid, text)"
    " VALUES ('delete', OLD.id, OLD.text); END;"
    "CREATE TRIGGER memory_items_fts_update AFTER UPDATE OF text"
    " ON memory_items BEGIN"
    " INSERT INTO memory_fts(memory_fts, rowid, text)"
    " VALUES ('delete', OLD.id, OLD.text);"
    " INSERT INTO memory_fts(rowid, text) VALUES (NEW.id, NEW.text); END;"
    "CREATE TABLE vault_items ("
    " name TEXT PRIMARY KEY,"
    " ciphertext BLOB NOT NULL,"
    " nonce BLOB NOT NULL,"
    " created_ms INTEGER NOT NULL,"
    " updated_ms INTEGER NOT NULL);",
    /*
     * 5: closed sessions (journald/sessions.c). CleanupSession sets
     * closed_ms; a closed session leaves the listings and takes no new
     * run, and its runs and events stay: they are the audit log.
     */
    "ALTER TABLE sessions ADD COLUMN closed_ms INTEGER;",
    /*
     * 6: run features (journald/runprep.c). A run's first input, for the
     * session history of later runs (follow-up input is an "input" event),
     * and its idempotency key: at most one run per session and key.
     */
    "ALTER TABLE runs ADD COLUMN input TEXT;"
    "ALTER TABLE runs ADD COLUMN idempotency_key TEXT;"
    "CREATE UNIQUE INDEX runs_idempotency ON runs(session_id,"
    " idempotency_key) WHERE idempotency_key IS NOT NULL;",
    /*
     * 7: tools, approvals and budgets (journald/approvals.c, usage.c).
     * An approval names its run's session, principal and agent and the
     * tool call it gates; an allow records its scope and the grant it
     * made. A grant may be revoked. Usage rows count provider calls;
     * budgets set at run time carry their creation time.
     */
    "ALTER TABLE approvals ADD COLUMN session_id TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE approvals ADD COLUMN principal TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE approvals ADD COLUMN agent TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE approvals ADD COLUMN tool_call_id TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE approvals ADD COLUMN expires_ms INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE approvals ADD COLUMN scope TEXT CHECK (scope IS NULL OR"
    " scope IN ('once', 'session', 'ttl'));"
    "ALTER TABLE approvals ADD COLUMN reason TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE approvals ADD COLUMN grant_id TEXT;"
    "CREATE INDEX approvals_order ON approvals(created_ms, id);"
    "ALTER TABLE approval_grants ADD COLUMN approval_id TEXT;"
    "ALTER TABLE approval_grants ADD COLUMN revoked_ms INTEGER;"
    "ALTER TABLE usage ADD COLUMN calls INTEGER NOT NULL DEFAULT 0"
    " CHECK (calls >= 0);"
    "CREATE INDEX usage_agent ON usage(agent, day);"
    "CREATE INDEX usage_principal ON usage(principal, day);"
    "ALTER TABLE budgets ADD COLUMN created_ms INTEGER NOT NULL DEFAULT 0;",
    /*
     * 8: memory, the vault and cron routines (journald/memory.c, vault.c,
     * cron.c). Migration 4 laid these tables out before anything used
     * them; no version of journald wrote a row into them, so they are
     * replaced rather than altered (SQLite cannot change a CHECK).
     * memory_items keeps an integer rowid (seq) for its FTS5 index and a
     * random item_id for clients; tags are stored " a b " so that one
     * instr() tests a tag; an embedding is little-endian float32s.
     * vault_items holds ciphertext only. A cron fire is unique per (job,
     * scheduled time): recorded before its run starts, it can never
     * happen twice.
     */
    "DROP TABLE memory_fts;"
    "DROP TABLE memory_items;"
    "DROP TABLE vault_items;"
    "DROP TABLE cron_fires;"
    "DROP TABLE cron_jobs;"
    "CREATE TABLE memory_items ("
    " seq INTEGER PRIMARY KEY,"
    " item_id TEXT NOT NULL UNIQUE,"
    " principal TEXT NOT NULL,"
    " session_id TEXT NOT NULL DEFAULT '',"
    " tags TEXT NOT NULL DEFAULT ' ',"
    " source TEXT NOT NULL DEFAULT '',"
    " text TEXT NOT NULL CHECK (length(text) > 0),"
    " embedding BLOB CHECK (embedding IS NULL OR"
    " (length(embedding) > 0 AND length(embedding) % 4 = 0)),"
    " embedding_model TEXT NOT NULL DEFAULT '',"
    " created_ms INTEGER NOT NULL,"
    " expires_ms INTEGER NOT NULL DEFAULT 0 CHECK (expires_ms >= 0));"
    "CREATE INDEX memory_items_principal"
    " ON memory_items(principal, created_ms, seq);"
    "CREATE INDEX memory_items_expiry ON memory_items(expires_ms)"
    " WHERE expires_ms > 0;"
    "CREATE VIRTUAL TABLE memory_fts USING fts5("
    " text, content='memory_items', content_rowid='seq');"
    "CREATE TRIGGER memory_items_fts_insert AFTER INSERT ON memory_items"
    " BEGIN INSERT INTO memory_fts(rowid, text)"
    " VALUES (NEW.seq, NEW.text); END;"
    "CREATE TRIGGER memory_items_fts_delete AFTER DELETE ON memory_items"
    " BEGIN INSERT INTO memory_fts(memory_fts, rowid, text)"
    " VALUES ('delete', OLD.seq, OLD.text); END;"
    "CREATE TRIGGER memory_items_fts_update AFTER UPDATE OF text"
    " ON memory_items BEGIN"
    " INSERT INTO memory_fts(memory_fts, rowid, text)"
    " VALUES ('delete', OLD.seq, OLD.text);"
    " INSERT INTO memory_fts(rowid, text) VALUES (NEW.seq, NEW.text); END;"
    "CREATE TABLE vault_items ("
    " name TEXT PRIMARY KEY,"
    " version INTEGER NOT NULL CHECK (version >= 1),"
    " size INTEGER NOT NULL CHECK (size > 0),"
    " description TEXT NOT NULL DEFAULT '',"
    " ciphertext BLOB NOT NULL,"
    " nonce BLOB NOT NULL CHECK (length(nonce) = 24),"
    " created_ms INTEGER NOT NULL,"
    " updated_ms INTEGER NOT NULL CHECK (updated_ms >= created_ms),"
    " updated_by TEXT NOT NULL DEFAULT '');"
    "CREATE TABLE cron_jobs ("
    " job_id TEXT PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE,"
    " schedule TEXT NOT NULL,"
    " timezone TEXT NOT NULL DEFAULT '',"
    " principal TEXT NOT NULL,"
    " role TEXT NOT NULL DEFAULT 'user' CHECK (role IN"
    " ('user', 'operator', 'admin')),"
    " agent TEXT NOT NULL DEFAULT '',"
    " input TEXT NOT NULL,"
    " misfire TEXT NOT NULL DEFAULT 'skip' CHECK (misfire IN"
    " ('skip', 'catch_up', 'once')),"
    " catch_up_max INTEGER NOT NULL DEFAULT 10 CHECK (catch_up_max"
    " BETWEEN 1 AND 100),"
    " allow_overlap INTEGER NOT NULL DEFAULT 0 CHECK (allow_overlap IN"
    " (0, 1)),"
    " jitter_ms INTEGER NOT NULL DEFAULT 0 CHECK (jitter_ms BETWEEN 0"
    " AND 3600000),"
    " enabled INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),"
    " unattended TEXT NOT NULL DEFAULT 'deny' CHECK (unattended IN"
    " ('deny', 'wait')),"
    " session_key TEXT NOT NULL DEFAULT '',"
    " created_ms INTEGER NOT NULL,"
    " updated_ms INTEGER NOT NULL CHECK (updated_ms >= created_ms),"
    " last_fire_ms INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX cron_jobs_principal ON cron_jobs(principal, name);"
    "CREATE TABLE cron_fires ("
    " job_id TEXT NOT NULL REFERENCES cron_jobs ON DELETE CASCADE,"
    " scheduled_ms INTEGER NOT NULL,"
    " fired_ms INTEGER NOT NULL,"
    " state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN"
    " ('pending', 'started', 'skipped', 'done', 'failed')),"
    " run_id TEXT,"
    " reason TEXT NOT NULL DEFAULT '',"
    " manual INTEGER NOT NULL DEFAULT 0 CHECK (manual IN (0, 1)),"
    " PRIMARY KEY (job_id, scheduled_ms),"
    " CHECK (state NOT IN ('started', 'done') OR run_id IS NOT NULL));"
    "CREATE INDEX cron_fires_run ON cron_fires(run_id)"
    " WHERE run_id IS NOT NULL;"
    "CREATE INDEX cron_fires_open ON cron_fires(state)"
    " WHERE state IN ('pending', 'started');",
};

static const struct {
	const char *const *sql;
	int count;
} migrations[] = {
    [JNL_DB_SYSTEM] = {system_migrations,
	(int)(sizeof(system_migrations) / sizeof(system_migrations[0]))},
    [JNL_DB_JOURNAL] = {journal_migrations,
	(int)(sizeof(journal_migrations) / sizeof(journal_migrations[0]))},
};

int
jnl_db_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **out)
{
	if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, out,
		NULL) != SQLITE_OK) {
		log_error("%s: cannot prepare statement: %s",
		    sqlite3_db_filename(db, "main"), sqlite3_errmsg(db));
		return -EIO;
	}
	return 0;
}

static int
db_exec(sqlite3 *db, const char *sql)
{
	char *err = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
		log_error("%s: %s", sqlite3_db_filename(db, "main"),
		    err != NULL ? err : sqlite3_errmsg(db));
		sqlite3_free(err);
		return -EIO;
	}
	return 0;
}

static int
db_user_version(sqlite3 *db, int *version)
{
	sqlite3_stmt *st;
	int rc;

	if (jnl_db_prepare(db, "PRAGMA user_version", &st) < 0)
		return -EIO;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : -EIO;
}

static int
db_migrate(sqlite3 *db, const char *path, enum jnl_db_kind kind)
{
	char bump[64];
	int version, known = migrations[kind].count;

	if (db_user_version(db, &version) < 0)
		return -EIO;
	if (version > known) {
		log_error("%s: schema version %d is newer than this "
			  "palyra-journald knows (%d); refusing to open it",
		    path, version, known);
		return -ENOTSUP;
	}
	while (version < known) {
		snprintf(bump, sizeof(bump), "PRAGMA user_version = %d;",
		    version + 1);
		if (db_exec(db, "BEGIN IMMEDIATE;") < 0)
			return -EIO;
		if (db_exec(db, migrations[kind].sql[version]) < 0 ||
		    db_exec(db, bump) < 0 || db_exec(db, "COMMIT;") < 0) {
			(void)sqlite3_exec(db, "ROLLBACK;", NULL, NULL, NULL);
			log_error("%s: migration to schema version %d failed",
			    path, version + 1);
			return -EIO;
		}
		log_info(
		    "%s: migrated to schema version %d", path, version + 1);
		version++;
	}
	return 0;
}

int
jnl_db_error_full(sqlite3 *db)
{
	int code = sqlite3_extended_errcode(db);

	return (code & 0xff) == SQLITE_FULL || code == SQLITE_IOERR_WRITE ||
	       code == SQLITE_IOERR_FSYNC || code == SQLITE_IOERR_TRUNCATE ||
	       code == SQLITE_IOERR_DIR_FSYNC || code == SQLITE_IOERR_SHMSIZE;
}

int
jnl_db_set_durability(sqlite3 *db, int durability_full)
{
	return db_exec(db, durability_full ? "PRAGMA synchronous = FULL;"
					   : "PRAGMA synchronous = NORMAL;");
}

int
jnl_db_open(
    const char *path, enum jnl_db_kind kind, int durability_full, sqlite3 **out)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st;
	int rc;

	*out = NULL;
	rc = sqlite3_open_v2(path, &db,
	    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
		SQLITE_OPEN_NOFOLLOW,
	    NULL);
	if (rc != SQLITE_OK) {
		log_error("%s: cannot open: %s", path,
		    db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		goto fail;
	}
	/* The process umask is 077 already; this covers a file created
	 * earlier by hand or by another tool. */
	if (chmod(path, S_IRUSR | S_IWUSR) == -1)
		log_warn("%s: cannot set mode 0600: %s", path, strerror(errno));
	sqlite3_extended_result_codes(db, 1);
	sqlite3_busy_timeout(db, JNL_BUSY_TIMEOUT_MS);

	/* journal_mode answers with the mode in effect: check it. */
	if (jnl_db_prepare(db, "PRAGMA journal_mode = WAL", &st) < 0)
		goto fail;
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW ||
	    sqlite3_stricmp((const char *)sqlite3_column_text(st, 0), "wal") !=
		0) {
		sqlite3_finalize(st);
		log_error("%s: cannot switch to WAL mode", path);
		goto fail;
	}
	sqlite3_finalize(st);
	/* Temporary tables and indices stay in memory: the sandbox leaves
	 * journald no directory but STATE_DIR. */
	if (db_exec(db, "PRAGMA foreign_keys = ON;") < 0 ||
	    db_exec(db, "PRAGMA temp_store = MEMORY;") < 0 ||
	    jnl_db_set_durability(db, durability_full) < 0)
		goto fail;
	if ((rc = db_migrate(db, path, kind)) < 0) {
		sqlite3_close(db);
		return rc;
	}
	*out = db;
	return 0;
fail:
	if (db != NULL)
		sqlite3_close(db);
	return -EIO;
}

void
jnl_db_close(sqlite3 *db)
{
	if (db == NULL)
		return;
	if (sqlite3_close(db) != SQLITE_OK)
		log_warn("%s: close: %s", sqlite3_db_filename(db, "main"),
		    sqlite3_errmsg(db));
}
