"""GatewayService GetRun, AbortRun and ListRunEvents (DESIGN section 6).

The tenant "slow" has an agent on an offline provider with a token-delay,
so that a run lasts a second or two and the methods land in the middle of
one. A principal sees only its own runs; an operator of the tenant sees
every run of it; another tenant's token sees none.
"""
import os
import sqlite3
import subprocess
import threading

import grpc
import pytest

from conftest import _require_binaries, event_kind, pb, poll, Daemon, auth_md
from test_reattach import (REATTACH_CONFIG, TENANTS, TERMINAL, S,
                           journal_run, start_run)

SVC = "/palyra.v1.GatewayService/"
TIMEOUT = 10.0
DEADLINE = 20.0


@pytest.fixture
def daemon(tmp_path):
    _require_binaries()
    d = Daemon(tmp_path / "d", REATTACH_CONFIG, TENANTS)
    yield d.start()
    if not d.stopped:
        d.kill()


def get_run(ch, token, run_id):
    call = ch.unary_unary(SVC + "GetRun",
                          request_serializer=pb.GetRunRequest.SerializeToString,
                          response_deserializer=pb.Run.FromString)
    return call(pb.GetRunRequest(run_id=run_id), metadata=auth_md(token),
                timeout=TIMEOUT)


def abort_run(ch, token, run_id, reason=""):
    call = ch.unary_unary(
        SVC + "AbortRun",
        request_serializer=pb.AbortRunRequest.SerializeToString,
        response_deserializer=pb.AbortRunResponse.FromString)
    return call(pb.AbortRunRequest(run_id=run_id, reason=reason),
                metadata=auth_md(token), timeout=TIMEOUT)


def list_run_events(ch, token, run_id, after_seq=0, timeout=DEADLINE):
    call = ch.unary_stream(
        SVC + "ListRunEvents",
        request_serializer=pb.ListRunEventsRequest.SerializeToString,
        response_deserializer=pb.RunEvent.FromString)
    return call(pb.ListRunEventsRequest(run_id=run_id, after_seq=after_seq),
                metadata=auth_md(token), timeout=timeout)


def rpc_error(fn, *args, **kw):
    with pytest.raises(grpc.RpcError) as e:
        fn(*args, **kw)
    return e.value.code(), e.value.details()


def run_row(d, tenant, run_id):
    db = sqlite3.connect(f"file:{d.journal_path(tenant)}?mode=ro", uri=True,
                         timeout=10)
    try:
        return db.execute(
            "SELECT session_id, principal, agent, status, created_ms,"
            " updated_ms, last_seq FROM runs WHERE run_id = ?",
            (run_id,)).fetchone()
    finally:
        db.close()


def live_run(d, ch, tok):
    """A slow run whose first events arrived; returns its stream."""
    s = start_run(ch, tok)
    poll(lambda: s.count() >= 2, 10.0, what="first events of the run")
    return s


def assert_journal_equal(events, journal, after_seq=0):
    want = [ev for ev in journal if ev.seq > after_seq]
    assert [ev.seq for ev in events] == [ev.seq for ev in want]
    assert list(events) == want
    last = events[-1]
    assert event_kind(last) == "status" and last.status.status in TERMINAL
    assert sum(1 for ev in events if event_kind(ev) == "status"
               and ev.status.status in TERMINAL) == 1


def test_get_run_finished_and_live(daemon):
    d = daemon
    tok = d.mint_token("slow", "alice")
    ch = d.new_channel()
    s = live_run(d, ch, tok)
    run_id = s.run_id()
    live = get_run(ch, tok, run_id)
    assert live.run_id == run_id
    assert live.status == S.RUN_STATUS_IN_PROGRESS
    assert live.principal == "alice"
    s.finish()
    assert s.code == grpc.StatusCode.OK, (s.code, s.details)
    run = get_run(ch, tok, run_id)
    session_id, principal, agent, status, created, updated, last_seq = \
        run_row(d, "slow", run_id)
    assert run.session_id == session_id and session_id
    assert run.principal == principal == "alice"
    assert run.agent == agent == "snail"
    assert run.status == S.Value("RUN_STATUS_" + status)
    assert run.status == S.RUN_STATUS_COMPLETED
    assert run.created_unix_ms == created > 0
    assert run.updated_unix_ms == updated >= created
    assert run.last_seq == last_seq == s.events[-1].seq


def test_get_run_visibility(daemon):
    d = daemon
    alice = d.mint_token("slow", "alice")
    bob = d.mint_token("slow", "bob")
    operator = d.mint_token("slow", "ops", "operator")
    stranger = d.mint_token("other", "alice")
    ch = d.new_channel()
    s = start_run(ch, alice, text="hello").finish()
    assert s.code == grpc.StatusCode.OK, (s.code, s.details)
    run_id = s.run_id()
    for tok in (bob, stranger):
        code, details = rpc_error(get_run, ch, tok, run_id)
        assert code == grpc.StatusCode.NOT_FOUND, (code, details)
        code, _ = rpc_error(abort_run, ch, tok, run_id)
        assert code == grpc.StatusCode.NOT_FOUND
        code, _ = rpc_error(lambda: list(list_run_events(ch, tok, run_id)))
        assert code == grpc.StatusCode.NOT_FOUND
    code, _ = rpc_error(get_run, ch, alice, "r_no_such_run")
    assert code == grpc.StatusCode.NOT_FOUND
    assert get_run(ch, operator, run_id).principal == "alice"
    events = list(list_run_events(ch, operator, run_id))
    assert_journal_equal(events, journal_run(d, "slow", run_id))
    code, _ = rpc_error(get_run, ch, None, run_id)
    assert code == grpc.StatusCode.UNAUTHENTICATED


def test_abort_live_run(daemon):
    d = daemon
    tok = d.mint_token("slow", "alice")
    ch = d.new_channel()
    s = live_run(d, ch, tok)
    run_id = s.run_id()
    resp = abort_run(ch, tok, run_id, reason="operator said stop")
    assert resp.status == S.RUN_STATUS_CANCELLED
    s.finish()
    assert s.code == grpc.StatusCode.OK, (s.code, s.details)
    last = s.events[-1]
    assert event_kind(last) == "status"
    assert last.status.status == S.RUN_STATUS_CANCELLED
    assert last.status.reason == "operator said stop"
    assert get_run(ch, tok, run_id).status == S.RUN_STATUS_CANCELLED
    code, details = rpc_error(abort_run, ch, tok, run_id)
    assert code == grpc.StatusCode.FAILED_PRECONDITION, (code, details)
    assert "run already finished" in details and "CANCELLED" in details


def test_operator_aborts_another_principals_run(daemon):
    d = daemon
    alice = d.mint_token("slow", "alice")
    operator = d.mint_token("slow", "ops", "operator")
    bob = d.mint_token("slow", "bob")
    ch = d.new_channel()
    s = live_run(d, ch, alice)
    code, _ = rpc_error(abort_run, ch, bob, s.run_id())
    assert code == grpc.StatusCode.NOT_FOUND
    assert abort_run(ch, operator, s.run_id()).status == \
        S.RUN_STATUS_CANCELLED
    s.finish()
    assert s.events[-1].status.status == S.RUN_STATUS_CANCELLED
    assert s.events[-1].status.reason == "aborted"


def test_list_run_events_live_and_after(daemon):
    d = daemon
    tok = d.mint_token("slow", "alice")
    ch = d.new_channel()
    s = live_run(d, ch, tok)
    run_id = s.run_id()
    got = []
    lister = threading.Thread(
        target=lambda: got.extend(list_run_events(ch, tok, run_id)),
        daemon=True)
    lister.start()
    lister.join(DEADLINE)
    assert not lister.is_alive()
    s.finish()
    journal = journal_run(d, "slow", run_id)
    assert_journal_equal(got, journal)
    assert list(s.events) == journal
    after = len(journal) // 2
    assert_journal_equal(list(list_run_events(ch, tok, run_id, after)),
                         journal, after)


def test_list_run_events_leaving_does_not_cancel(daemon):
    d = daemon
    tok = d.mint_token("slow", "alice")
    ch = d.new_channel()
    s = live_run(d, ch, tok)
    it = list_run_events(ch, tok, s.run_id())
    next(it)
    it.cancel()
    s.finish()
    assert s.events[-1].status.status == S.RUN_STATUS_COMPLETED


def test_abort_unknown_and_invalid(daemon):
    d = daemon
    tok = d.mint_token("slow", "alice")
    ch = d.new_channel()
    code, _ = rpc_error(abort_run, ch, tok, "")
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    code, _ = rpc_error(abort_run, ch, tok, "r_x", reason="x" * 2000)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    code, _ = rpc_error(get_run, ch, tok, "r" * 200)
    assert code == grpc.StatusCode.INVALID_ARGUMENT


def ctl(d, *args):
    from conftest import PALYRACTL
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    return subprocess.run([PALYRACTL, "-g", d.grpc_addr, "-u", d.http_url,
                           "-s", d.state, *args], capture_output=True,
                          text=True, timeout=30, stdin=subprocess.DEVNULL,
                          env=env)


def test_palyractl_runs(daemon):
    d = daemon
    tok = d.mint_token("slow", "alice")
    ch = d.new_channel()
    s = live_run(d, ch, tok)
    run_id = s.run_id()
    r = ctl(d, "runs", "show", "--token", tok, run_id)
    assert r.returncode == 0, r.stderr
    assert f"run_id {run_id}\n" in r.stdout
    assert "status IN_PROGRESS\n" in r.stdout
    # --tenant: an operator token of the tenant sees alice's run.
    r = ctl(d, "runs", "events", "--tenant", "slow", run_id)
    assert r.returncode == 0, r.stderr
    s.finish()
    r = ctl(d, "--json", "runs", "show", "--token", tok, run_id)
    assert r.returncode == 0, r.stderr
    assert '"status":"COMPLETED"' in r.stdout
    journal = journal_run(d, "slow", run_id)
    r = ctl(d, "--json", "runs", "events", "--token", tok, run_id,
            "--after", str(len(journal) - 2))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 2 and f'"seq":{len(journal)}' in lines[-1]
    r = ctl(d, "runs", "abort", "--token", tok, run_id)
    assert r.returncode == 1
    assert "FAILED_PRECONDITION" in r.stderr
    s2 = live_run(d, ch, tok)
    r = ctl(d, "runs", "abort", "--token", tok, s2.run_id(),
            "--reason", "from ctl")
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"{s2.run_id()} CANCELLED\n"
    s2.finish()
    assert s2.events[-1].status.reason == "from ctl"
    r = ctl(d, "runs", "show", run_id)
    assert r.returncode == 2
    r = ctl(d, "runs", "show", "--token", d.mint_token("other", "x"), run_id)
    assert r.returncode == 1 and "NOT_FOUND" in r.stderr
