"""The journal: every event a client saw is committed, hash-chained and
append-only in the tenant's own database."""
import os
import shutil
import sqlite3
import subprocess

import grpc
import pytest

from conftest import (check_successful_run, journal_events, open_journal, pb,
                      run_stream, verify_chain, _blob)


def test_run_events_are_in_the_journal(palyra, channel, token):
    res = run_stream(channel, token, "journal me")
    run_id, session_id = check_successful_run(res, "journal me")
    # No polling: an event reaches the client only after its commit.
    rows = journal_events(palyra.journal_path("default"), run_id)
    assert len(rows) == len(res.events), \
        f"{len(rows)} journal rows for {len(res.events)} events received"
    for (cseq, rid, rseq, ts, kind, payload, h), ev in zip(rows, res.events):
        stored = pb.RunEvent.FromString(_blob(payload))
        assert stored == ev, f"journal row {cseq} holds {stored}, client got {ev}"
        assert rid == run_id
        assert rseq == ev.seq
        assert ts == ev.timestamp_unix_ms
        assert isinstance(kind, str) and kind
    # The chain_seq of one run's rows increases with its seq.
    cseqs = [r[0] for r in rows]
    assert cseqs == sorted(cseqs)


def test_run_row(palyra, channel):
    tok = palyra.mint_token("default", "dora", "user")
    res = run_stream(channel, tok, "who am i")
    run_id, session_id = check_successful_run(res, "who am i")
    db = open_journal(palyra.journal_path("default"))
    try:
        db.row_factory = sqlite3.Row
        row = db.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    finally:
        db.close()
    assert row is not None, f"no runs row for {run_id}"
    assert row["session_id"] == session_id
    assert row["principal"] == "dora"
    assert row["agent"] == "assistant"
    status = row["status"]
    assert status == pb.RUN_STATUS_COMPLETED or \
        (isinstance(status, str) and "COMPLETED" in status.upper()), status


def test_chain_is_valid(palyra, channel, token):
    for i in range(3):
        check_successful_run(run_stream(channel, token, f"chain {i}"), f"chain {i}")
    rows = verify_chain(palyra.journal_path("default"))
    assert len(rows) >= 3 * 6


def test_chain_valid_after_concurrent_runs(palyra, token):
    import threading
    results = [None] * 10
    with palyra.new_channel() as ch:
        def one(i):
            results[i] = run_stream(ch, token, f"cc {i}", timeout=30)
        ts = [threading.Thread(target=one, args=(i,)) for i in range(10)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
    path = palyra.journal_path("default")
    for i, res in enumerate(results):
        run_id, _ = check_successful_run(res, f"cc {i}")
        rows = journal_events(path, run_id)
        assert [pb.RunEvent.FromString(_blob(r[5])) for r in rows] == res.events
    verify_chain(path)


def test_chain_verifier_detects_tampering(palyra, channel, token, tmp_path):
    # The verifier in this suite must itself be able to fail.
    check_successful_run(run_stream(channel, token, "tamper"), "tamper")
    copy = tmp_path / "copy.db"
    src = open_journal(palyra.journal_path("default"))
    dst = sqlite3.connect(str(copy))
    src.backup(dst)
    src.close()
    for (name,) in dst.execute("SELECT name FROM sqlite_master WHERE type='trigger'").fetchall():
        dst.execute(f'DROP TRIGGER "{name}"')
    dst.execute("UPDATE events SET ts_ms = ts_ms + 1 WHERE chain_seq = 2")
    dst.commit()
    dst.close()
    with pytest.raises(AssertionError, match="chain_seq 2"):
        verify_chain(str(copy))


def test_events_are_append_only(palyra, channel, token, tmp_path):
    check_successful_run(run_stream(channel, token, "immutable"), "immutable")
    copy = str(tmp_path / "journal.db")
    src = open_journal(palyra.journal_path("default"))
    dst = sqlite3.connect(copy)
    src.backup(dst)
    src.close()
    before = dst.execute("SELECT kind, payload FROM events WHERE chain_seq = 1").fetchone()
    dst.close()
    assert before is not None
    for sql in ("UPDATE events SET kind = 'forged' WHERE chain_seq = 1",
                "UPDATE events SET payload = x'00' WHERE chain_seq = 1"):
        r = subprocess.run(["sqlite3", copy, sql], capture_output=True, text=True,
                           timeout=30)
        assert r.returncode != 0, f"{sql!r} succeeded"
    db = sqlite3.connect(copy)
    after = db.execute("SELECT kind, payload FROM events WHERE chain_seq = 1").fetchone()
    db.close()
    assert after == before


def test_tenants_have_separate_journals(palyra, channel):
    other_tok = palyra.mint_token("other", "olga", "user")
    default_tok = palyra.mint_token("default", "dave", "user")
    res_o = run_stream(channel, other_tok, "for other")
    rid_o, sid_o = check_successful_run(res_o, "for other")
    res_d = run_stream(channel, default_tok, "for default")
    rid_d, sid_d = check_successful_run(res_d, "for default")

    other = palyra.journal_path("other")
    default = palyra.journal_path("default")
    assert os.path.realpath(other) != os.path.realpath(default)

    rows = journal_events(other, rid_o)
    assert [pb.RunEvent.FromString(_blob(r[5])) for r in rows] == res_o.events
    assert journal_events(default, rid_o) == []
    assert journal_events(other, rid_d) == []
    # Nothing of other's run anywhere in default's database, in any table.
    db = open_journal(default)
    try:
        for (table,) in db.execute(
                "SELECT name FROM sqlite_master WHERE type='table'").fetchall():
            for row in db.execute(f'SELECT * FROM "{table}"'):
                flat = b"".join(_blob(v) if isinstance(v, (bytes, str)) else b""
                                for v in row)
                assert rid_o.encode() not in flat, f"{rid_o} found in default.{table}"
                assert sid_o.encode() not in flat, f"{sid_o} found in default.{table}"
                assert b"olga" not in flat, f"principal olga found in default.{table}"
    finally:
        db.close()
    verify_chain(other)
    verify_chain(default)


def test_session_of_another_tenant_is_not_found(palyra, channel, token):
    other_tok = palyra.mint_token("other", "oscar", "user")
    _, sid_o = check_successful_run(run_stream(channel, other_tok, "mine"), "mine")
    res = run_stream(channel, token, "steal", session_id=sid_o)
    assert res.code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED), res
    assert all(e.session_id != sid_o for e in res.events)
