"""The journal schema of DESIGN section 8 (issue 4): a tenant's journal.db
as palyra-journald migrated it holds every table with its columns, its
CHECK constraints refuse states the readers do not know, cron_fires can
hold a job's fire only once, and the FTS5 index of memory_items follows
inserts, updates and deletes through its triggers.

The checks run on an online copy (sqlite3's backup API) of the live
daemon's database, so that nothing here writes into a journal palyrad owns.
"""
import sqlite3

import pytest

from conftest import open_journal, run_stream, grpc

SCHEMA_VERSION = 8

TABLES = {
    "sessions": {"session_id", "principal", "created_ms", "closed_ms"},
    "runs": {"run_id", "session_id", "principal", "agent", "status",
             "created_ms", "updated_ms", "last_seq", "input",
             "idempotency_key"},
    "events": {"chain_seq", "run_id", "run_seq", "ts_ms", "kind", "payload",
               "hash"},
    "approvals": {"id", "run_id", "tool", "arguments_summary", "status",
                  "created_ms", "decided_ms", "decided_by", "timeout_ms",
                  "session_id", "principal", "agent", "tool_call_id",
                  "expires_ms", "scope", "reason", "grant_id"},
    "approval_grants": {"id", "principal", "agent", "tool", "scope",
                        "session_id", "expires_ms", "created_ms",
                        "approval_id", "revoked_ms"},
    "usage": {"day", "agent", "principal", "provider", "model",
              "input_tokens", "output_tokens", "cost_micros", "calls"},
    "budgets": {"id", "scope", "subject", "unit", "period", "amount", "hard",
                "created_ms"},
    "agents": {"name", "config", "created_ms", "updated_ms"},
    "cron_jobs": {"job_id", "name", "schedule", "timezone", "principal",
                  "role", "agent", "input", "misfire", "catch_up_max",
                  "allow_overlap", "jitter_ms", "enabled", "unattended",
                  "session_key", "created_ms", "updated_ms", "last_fire_ms"},
    "cron_fires": {"job_id", "scheduled_ms", "fired_ms", "state", "run_id",
                   "reason", "manual"},
    "memory_items": {"seq", "item_id", "principal", "session_id", "tags",
                     "source", "text", "embedding", "embedding_model",
                     "created_ms", "expires_ms"},
    "vault_items": {"name", "version", "size", "description", "ciphertext",
                    "nonce", "created_ms", "updated_ms", "updated_by"},
}


@pytest.fixture
def journal_copy(palyra, token, tmp_path):
    res = run_stream(palyra.channel, token, "schema")
    assert res.code == grpc.StatusCode.OK, res
    src = open_journal(palyra.journal_path("default"))
    dst = sqlite3.connect(str(tmp_path / "copy.db"))
    try:
        src.backup(dst)
    finally:
        src.close()
    dst.execute("PRAGMA foreign_keys = ON")
    yield dst
    dst.close()


def test_schema_version_and_columns(journal_copy):
    db = journal_copy
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    for table, want in TABLES.items():
        cols = {r[1] for r in db.execute(f"PRAGMA table_info({table})")}
        assert cols == want, f"{table}: columns {sorted(cols)}"
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []


def test_check_constraints(journal_copy):
    db = journal_copy
    bad = [
        ("INSERT INTO approvals(id, run_id, tool, status, created_ms,"
         " timeout_ms) VALUES ('a1', 'r', 'shell', 'maybe', 1, 1000)"),
        ("INSERT INTO approval_grants(id, principal, agent, tool, scope,"
         " created_ms) VALUES ('g1', 'p', 'a', 't', 'forever', 1)"),
        # scope session needs its session
        ("INSERT INTO approval_grants(id, principal, agent, tool, scope,"
         " created_ms) VALUES ('g2', 'p', 'a', 't', 'session', 1)"),
        ("INSERT INTO budgets(id, scope, subject, unit, period, amount)"
         " VALUES ('b1', 'tenant', 'default', 'dollars', 'day', 5)"),
        ("INSERT INTO budgets(id, scope, subject, unit, period, amount)"
         " VALUES ('b2', 'tenant', 'default', 'cost', 'week', 5)"),
        ("INSERT INTO usage(day, agent, principal, provider, model,"
         " input_tokens) VALUES ('2026-12-02', 'a', 'p', 'x', 'm', -1)"),
        "INSERT INTO agents VALUES ('a', 'not json', 1, 1)",
        ("INSERT INTO cron_jobs(job_id, name, schedule, principal, input,"
         " misfire, created_ms, updated_ms) VALUES ('j0', 'n0', '* * * * *',"
         " 'p', 'i', 'sometimes', 1, 1)"),
        ("INSERT INTO cron_jobs(job_id, name, schedule, principal, input,"
         " role, created_ms, updated_ms) VALUES ('j0', 'n0', '* * * * *',"
         " 'p', 'i', 'root', 1, 1)"),
        ("INSERT INTO cron_jobs(job_id, name, schedule, principal, input,"
         " unattended, created_ms, updated_ms) VALUES ('j0', 'n0', '@daily',"
         " 'p', 'i', 'maybe', 1, 1)"),
        ("INSERT INTO cron_jobs(job_id, name, schedule, principal, input,"
         " catch_up_max, created_ms, updated_ms) VALUES ('j0', 'n0',"
         " '@daily', 'p', 'i', 0, 1, 1)"),
        ("INSERT INTO cron_jobs(job_id, name, schedule, principal, input,"
         " jitter_ms, created_ms, updated_ms) VALUES ('j0', 'n0', '@daily',"
         " 'p', 'i', 3600001, 1, 1)"),
        # updated before it was created
        ("INSERT INTO cron_jobs(job_id, name, schedule, principal, input,"
         " created_ms, updated_ms) VALUES ('j0', 'n0', '@daily', 'p', 'i',"
         " 5, 4)"),
        # a fire of a job that does not exist (foreign key)
        ("INSERT INTO cron_fires(job_id, scheduled_ms, fired_ms)"
         " VALUES ('nojob', 1, 1)"),
        # empty text, a negative expiry, an embedding of no whole float
        ("INSERT INTO memory_items(item_id, principal, text, created_ms)"
         " VALUES ('m0', 'p', '', 1)"),
        ("INSERT INTO memory_items(item_id, principal, text, created_ms,"
         " expires_ms) VALUES ('m0', 'p', 'x', 1, -1)"),
        ("INSERT INTO memory_items(item_id, principal, text, created_ms,"
         " embedding) VALUES ('m0', 'p', 'x', 1, x'000000')"),
        ("INSERT INTO memory_items(item_id, principal, text, created_ms,"
         " embedding) VALUES ('m0', 'p', 'x', 1, x'')"),
        # a nonce that is not 24 bytes, version 0, an empty secret
        ("INSERT INTO vault_items(name, version, size, ciphertext, nonce,"
         " created_ms, updated_ms) VALUES ('v', 1, 3, x'00', x'00', 1, 1)"),
        ("INSERT INTO vault_items(name, version, size, ciphertext, nonce,"
         " created_ms, updated_ms) VALUES ('v', 0, 3, x'00', zeroblob(24),"
         " 1, 1)"),
        ("INSERT INTO vault_items(name, version, size, ciphertext, nonce,"
         " created_ms, updated_ms) VALUES ('v', 1, 0, x'00', zeroblob(24),"
         " 1, 1)"),
    ]
    for sql in bad:
        with pytest.raises(sqlite3.IntegrityError):
            db.execute(sql)
    db.execute("INSERT INTO budgets(id, scope, subject, unit, period, amount)"
               " VALUES ('b3', 'agent', 'assistant', 'tokens', 'month', 9)")
    db.execute("INSERT INTO memory_items(item_id, principal, text, created_ms,"
               " embedding) VALUES ('m1', 'p', 'x', 1, x'0000803f')")
    db.execute("INSERT INTO vault_items(name, version, size, ciphertext,"
               " nonce, created_ms, updated_ms) VALUES ('v', 1, 3, x'00',"
               " zeroblob(24), 1, 1)")
    db.execute("INSERT INTO usage(day, agent, principal, provider, model,"
               " input_tokens) VALUES ('2026-12-02', 'a', 'p', 'x', 'm', 3)")
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("INSERT INTO usage(day, agent, principal, provider, model)"
                   " VALUES ('2026-12-02', 'a', 'p', 'x', 'm')")


def test_cron_fire_unique(journal_copy):
    db = journal_copy
    db.execute("INSERT INTO cron_jobs(job_id, name, schedule, principal,"
               " agent, input, created_ms, updated_ms) VALUES ('j1',"
               " 'nightly', '0 3 * * *', 'alice', 'assistant', 'report', 1,"
               " 1)")
    db.execute("INSERT INTO cron_fires(job_id, scheduled_ms, fired_ms)"
               " VALUES ('j1', 1000, 1000)")
    db.execute("INSERT INTO cron_fires(job_id, scheduled_ms, fired_ms)"
               " VALUES ('j1', 2000, 2000)")
    # the same (job, scheduled time) again, whatever its state
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("INSERT INTO cron_fires(job_id, scheduled_ms, fired_ms,"
                   " state, run_id) VALUES ('j1', 1000, 1001, 'started',"
                   " 'r1')")
    # a started fire names its run
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("UPDATE cron_fires SET state = 'started'"
                   " WHERE job_id = 'j1' AND scheduled_ms = 2000")
    db.execute("UPDATE cron_fires SET state = 'started', run_id = 'r2'"
               " WHERE job_id = 'j1' AND scheduled_ms = 2000")
    # names are unique
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("INSERT INTO cron_jobs(job_id, name, schedule, principal,"
                   " input, created_ms, updated_ms) VALUES ('j2', 'nightly',"
                   " '*', 'alice', 'x', 1, 1)")
    assert db.execute("SELECT count(*) FROM cron_fires").fetchone()[0] == 2
    # a job's fires go with it
    db.execute("DELETE FROM cron_jobs WHERE job_id = 'j1'")
    assert db.execute("SELECT count(*) FROM cron_fires").fetchone()[0] == 0


def test_memory_fts_follows_the_table(journal_copy):
    db = journal_copy

    def search(word):
        return [r[0] for r in db.execute(
            "SELECT rowid FROM memory_fts WHERE memory_fts MATCH ?"
            " ORDER BY rowid", (word,))]

    db.execute("INSERT INTO memory_items(seq, item_id, principal, text,"
               " created_ms) VALUES (1, 'i1', 'alice', 'the quick brown fox',"
               " 1)")
    db.execute("INSERT INTO memory_items(seq, item_id, principal, text,"
               " created_ms) VALUES (2, 'i2', 'alice', 'a lazy brown dog', 1)")
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("INSERT INTO memory_items(item_id, principal, text,"
                   " created_ms) VALUES ('i1', 'bob', 'same id', 1)")
    assert search("brown") == [1, 2]
    assert search("fox") == [1]
    db.execute("UPDATE memory_items SET text = 'a quick red fox' WHERE seq = 1")
    assert search("brown") == [2]
    assert search("red") == [1]
    db.execute("DELETE FROM memory_items WHERE seq = 2")
    assert search("dog") == []
    assert search("fox") == [1]
    db.execute("INSERT INTO memory_fts(memory_fts) VALUES ('integrity-check')")
