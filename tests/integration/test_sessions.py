"""GatewayService ListSessions, ResolveSession and CleanupSession (DESIGN
section 6).

Sessions are created by the first run that names them (by key here). A
principal lists only its own sessions, an operator of the tenant every one
of them, another principal none; ResolveSession gives the id the worker
derives for a key; CleanupSession closes a session whose runs have all
ended: it leaves the listing and takes no new run, its events stay.
"""
import os
import sqlite3
import subprocess

import grpc
import pytest

from conftest import (_require_binaries, auth_md, pb, poll, run_stream,
                      verify_chain, Daemon)
from test_reattach import REATTACH_CONFIG, TENANTS, start_run

SVC = "/palyra.v1.GatewayService/"
TIMEOUT = 10.0


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    _require_binaries()
    d = Daemon(tmp_path_factory.mktemp("sessions") / "d", REATTACH_CONFIG,
               TENANTS)
    yield d.start()
    if not d.stopped:
        d.kill()


def unary(ch, name, req_cls, resp_cls, req, token):
    call = ch.unary_unary(SVC + name,
                          request_serializer=req_cls.SerializeToString,
                          response_deserializer=resp_cls.FromString)
    return call(req, metadata=auth_md(token), timeout=TIMEOUT)


def list_page(ch, token, page_size=0, page_token=""):
    return unary(ch, "ListSessions", pb.ListSessionsRequest,
                 pb.ListSessionsResponse,
                 pb.ListSessionsRequest(page_size=page_size,
                                        page_token=page_token), token)


def list_all(ch, token, page_size=0):
    out, tok, pages = [], "", 0
    while True:
        page = list_page(ch, token, page_size, tok)
        out.extend(page.sessions)
        pages += 1
        assert pages < 1000
        if not page.next_page_token:
            return out, pages
        tok = page.next_page_token


def resolve(ch, token, key):
    return unary(ch, "ResolveSession", pb.ResolveSessionRequest, pb.Session,
                 pb.ResolveSessionRequest(session_key=key), token)


def cleanup(ch, token, session_id):
    return unary(ch, "CleanupSession", pb.CleanupSessionRequest,
                 pb.CleanupSessionResponse,
                 pb.CleanupSessionRequest(session_id=session_id), token)


def rpc_error(fn, *args):
    with pytest.raises(grpc.RpcError) as e:
        fn(*args)
    return e.value.code(), e.value.details()


def test_list_pages_and_visibility(daemon):
    d = daemon
    alice = d.mint_token("other", "alice")
    bob = d.mint_token("other", "bob")
    operator = d.mint_token("other", "ops", "operator")
    stranger = d.mint_token("slow", "alice", "operator")
    ch = d.new_channel()
    created = []
    for i in range(120):
        res = run_stream(ch, alice, input="hi", session_key=f"list-{i:03d}")
        assert res.code == grpc.StatusCode.OK, res
        created.append(res.events[0].session_id)
    assert len(set(created)) == 120
    sessions, pages = list_all(ch, alice, page_size=7)
    assert pages == 18
    ids = [s.session_id for s in sessions]
    assert sorted(ids) == sorted(created)  # each once
    # In order: (created, id) ascending, which is the creation order
    # (two sessions of the same millisecond go by id).
    keys = [(s.created_unix_ms, s.session_id) for s in sessions]
    assert keys == sorted(keys) and len(set(keys)) == 120
    ms = {s.session_id: s.created_unix_ms for s in sessions}
    assert [ms[c] for c in created] == sorted(ms[c] for c in created)
    for s in sessions:
        assert s.principal == "alice" and s.created_unix_ms > 0
        assert s.run_count == 1 and s.last_run_unix_ms >= s.created_unix_ms
        assert s.closed_unix_ms == 0
    # The default page is 50.
    first = list_page(ch, alice)
    assert len(first.sessions) == 50 and first.next_page_token
    assert list_all(ch, bob)[0] == []
    assert list_all(ch, stranger)[0] == []
    seen = [s.session_id for s in list_all(ch, operator, page_size=100)[0]]
    assert seen == ids


def test_list_bad_arguments(daemon):
    d = daemon
    alice = d.mint_token("other", "alice")
    ch = d.new_channel()
    for token in ("zz", "00", "0" * 16, "g" * 40, "x" * 1000):
        code, _ = rpc_error(list_page, ch, alice, 10, token)
        assert code == grpc.StatusCode.INVALID_ARGUMENT, token
    code, _ = rpc_error(list_page, ch, alice, 101)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    code, _ = rpc_error(list_page, ch, "not-a-token")
    assert code == grpc.StatusCode.UNAUTHENTICATED


def test_resolve_matches_run(daemon):
    d = daemon
    alice = d.mint_token("other", "alice")
    bob = d.mint_token("other", "bob")
    ch = d.new_channel()
    before = resolve(ch, alice, "resolve-me")
    assert before.session_id and before.created_unix_ms == 0
    assert before.principal == "alice"
    res = run_stream(ch, alice, input="hi", session_key="resolve-me")
    assert res.code == grpc.StatusCode.OK, res
    after = resolve(ch, alice, "resolve-me")
    assert after.session_id == before.session_id == res.events[0].session_id
    assert after.created_unix_ms > 0 and after.run_count == 1
    # Another principal's key names another session, not created yet.
    other = resolve(ch, bob, "resolve-me")
    assert other.session_id != after.session_id
    assert other.created_unix_ms == 0
    code, _ = rpc_error(resolve, ch, alice, "")
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    code, _ = rpc_error(resolve, ch, alice, "k" * 257)
    assert code == grpc.StatusCode.INVALID_ARGUMENT


def test_cleanup_finished_session(daemon):
    d = daemon
    alice = d.mint_token("other", "alice")
    bob = d.mint_token("other", "bob")
    ch = d.new_channel()
    for _ in range(2):
        res = run_stream(ch, alice, input="hi", session_key="to-close")
        assert res.code == grpc.StatusCode.OK, res
    sid = res.events[0].session_id
    # Another principal, or an operator of another tenant, finds nothing.
    for tok in (bob, d.mint_token("slow", "alice", "operator")):
        code, _ = rpc_error(cleanup, ch, tok, sid)
        assert code == grpc.StatusCode.NOT_FOUND
    assert resolve(ch, alice, "to-close").closed_unix_ms == 0
    code, _ = rpc_error(cleanup, ch, alice, "no-such-session")
    assert code == grpc.StatusCode.NOT_FOUND
    assert cleanup(ch, alice, sid).runs_removed == 2
    assert sid not in [s.session_id for s in list_all(ch, alice, 100)[0]]
    closed = resolve(ch, alice, "to-close")
    assert closed.session_id == sid and closed.closed_unix_ms > 0
    for kw in ({"session_id": sid}, {"session_key": "to-close"}):
        res = run_stream(ch, alice, input="again", **kw)
        assert res.code == grpc.StatusCode.FAILED_PRECONDITION, res
        assert "session closed" in res.details
    # Closed once: a second cleanup finds no open session.
    code, _ = rpc_error(cleanup, ch, alice, sid)
    assert code == grpc.StatusCode.NOT_FOUND
    # Its events stay in the journal.
    db = d.journal_path("other")
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        n = con.execute("SELECT count(*) FROM events e JOIN runs r"
                        " USING (run_id) WHERE r.session_id = ?",
                        (sid,)).fetchone()[0]
    finally:
        con.close()
    assert n > 0


def test_cleanup_live_session(daemon):
    d = daemon
    alice = d.mint_token("slow", "alice")
    operator = d.mint_token("slow", "ops", "operator")
    ch = d.new_channel()
    s = start_run(ch, alice)
    poll(lambda: s.count() >= 2, 10.0, what="first events of the run")
    sid = s.events[0].session_id
    code, details = rpc_error(cleanup, ch, operator, sid)
    assert code == grpc.StatusCode.FAILED_PRECONDITION, details
    s.finish()
    assert s.code == grpc.StatusCode.OK, (s.code, s.details)
    assert cleanup(ch, operator, sid).runs_removed == 1


def ctl(d, *args):
    from conftest import PALYRACTL
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    return subprocess.run([PALYRACTL, "-g", d.grpc_addr, "-u", d.http_url,
                           "-s", d.state, *args], capture_output=True,
                          text=True, timeout=30, stdin=subprocess.DEVNULL,
                          env=env)


def test_palyractl_sessions(daemon):
    d = daemon
    carol = d.mint_token("other", "carol")
    ch = d.new_channel()
    r = ctl(d, "sessions", "resolve", "--token", carol, "ctl-key")
    assert r.returncode == 0, r.stderr
    sid = r.stdout.split()[0]
    assert r.stdout == f"{sid} carol 0 0 0\n"
    res = run_stream(ch, carol, input="hi", session_key="ctl-key")
    assert res.code == grpc.StatusCode.OK, res
    assert res.events[0].session_id == sid
    r = ctl(d, "sessions", "list", "--token", carol, "--page-size", "1")
    assert r.returncode == 0, r.stderr
    assert [line.split()[0] for line in r.stdout.splitlines()] == [sid]
    # --tenant: an operator token of the tenant sees carol's session.
    r = ctl(d, "--json", "sessions", "list", "--tenant", "other")
    assert r.returncode == 0, r.stderr
    assert f'"session_id":"{sid}"' in r.stdout
    r = ctl(d, "sessions", "cleanup", "--token", carol, sid)
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"{sid} closed, 1 runs\n"
    r = ctl(d, "sessions", "cleanup", "--token", carol, sid)
    assert r.returncode == 1 and "NOT_FOUND" in r.stderr
    r = ctl(d, "sessions", "list", "--token", carol)
    assert r.returncode == 0 and r.stdout == "", r
    r = ctl(d, "sessions", "list", "--token", carol, "extra")
    assert r.returncode == 2
    r = ctl(d, "sessions", "resolve", "--token", carol, "--page-size", "3",
            "k")
    assert r.returncode == 2


def append_event(ch, token, run_id, text):
    return unary(ch, "AppendEvent", pb.AppendEventRequest,
                 pb.AppendEventResponse,
                 pb.AppendEventRequest(run_id=run_id, text=text), token)


def test_append_event_live_run(daemon):
    d = daemon
    alice = d.mint_token("slow", "alice")
    bob = d.mint_token("slow", "bob")
    operator = d.mint_token("slow", "ops", "operator")
    stranger = d.mint_token("other", "alice", "operator")
    ch = d.new_channel()
    s = start_run(ch, alice)
    poll(lambda: s.count() >= 2, 10.0, what="first events of the run")
    run_id = s.run_id()
    for tok in (bob, stranger):
        code, _ = rpc_error(append_event, ch, tok, run_id, "not yours")
        assert code == grpc.StatusCode.NOT_FOUND
    code, _ = rpc_error(append_event, ch, alice, run_id, "")
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    code, _ = rpc_error(append_event, ch, alice, run_id, "x" * 65537)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    seq = append_event(ch, alice, run_id, "a note from alice").seq
    seq2 = append_event(ch, operator, run_id, "and one from ops").seq
    assert seq2 > seq > 1
    s.finish()
    assert s.code == grpc.StatusCode.OK, (s.code, s.details)
    # The streaming client got each note once, with its seq, in order.
    seqs = [ev.seq for ev in s.events]
    assert seqs == list(range(1, len(seqs) + 1))
    notes = [ev for ev in s.events if ev.WhichOneof("event") == "note"]
    assert [(n.seq, n.note.text, n.note.principal) for n in notes] == [
        (seq, "a note from alice", "alice"),
        (seq2, "and one from ops", "ops")]
    rows = verify_chain(d.journal_path("slow"))
    stored = [(r[2], r[4]) for r in rows if r[1] == run_id and r[4] == "note"]
    assert stored == [(seq, "note"), (seq2, "note")]
    for r in rows:
        if r[1] == run_id and r[2] == seq:
            assert pb.RunEvent.FromString(bytes(r[5])) == notes[0]
    # A finished run takes no note.
    code, details = rpc_error(append_event, ch, alice, run_id, "too late")
    assert code == grpc.StatusCode.FAILED_PRECONDITION, details
    r = ctl(d, "runs", "note", "--token", alice, run_id, "late")
    assert r.returncode == 1 and "FAILED_PRECONDITION" in r.stderr


def test_palyractl_runs_note(daemon):
    d = daemon
    alice = d.mint_token("slow", "alice")
    ch = d.new_channel()
    s = start_run(ch, alice)
    poll(lambda: s.count() >= 2, 10.0, what="first events of the run")
    run_id = s.run_id()
    r = ctl(d, "runs", "note", "--token", alice, run_id, "from ctl")
    assert r.returncode == 0, r.stderr
    rid, seq = r.stdout.split()
    assert rid == run_id
    s.finish()
    assert s.code == grpc.StatusCode.OK, (s.code, s.details)
    ev = [e for e in s.events if e.seq == int(seq)][0]
    assert ev.WhichOneof("event") == "note" and ev.note.text == "from ctl"
