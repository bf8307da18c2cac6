"""Faults: kill -9 of each child kind and SIGTERM during slow streams.

The tenant "slow" has an agent on an offline provider with a token-delay, so
that its runs last about a second and a fault lands in the middle of one.
What is asserted is what a client sees (its events and the call's status) and
what the journal holds afterwards (chain, run rows, every event a client saw).
"""
import os
import signal
import threading
import time

import grpc
import pytest

from conftest import (OFFLINE_REPLY, _blob, _require_binaries, auth_md,
                      check_successful_run, event_kind, open_journal, pb,
                      poll, run_stream, verify_chain, Daemon)

FAULT_CONFIG = """\
state-dir "{state}"
listen grpc 127.0.0.1:{grpc_port}
listen http 127.0.0.1:{http_port}
journal {{ durability normal }}
provider "offline" {{ type offline }}
provider "slow" {{ type offline; token-delay 40ms }}
tenant "slow" {{ agent "snail" {{ providers "slow" }} }}
tenant "other" {{ agent "helper" {{ providers "offline" }} }}
"""
TENANTS = ("slow", "other")

# About 30 tokens at 40 ms: a run of about 1.2 s.
SLOW_INPUT = " ".join(f"word{i}" for i in range(20))
STREAM_DEADLINE = 15.0

S = pb.RunStatus
TERMINAL = {S.RUN_STATUS_COMPLETED, S.RUN_STATUS_FAILED,
            S.RUN_STATUS_CANCELLED, S.RUN_STATUS_INTERRUPTED}
TERMINAL_NAMES = ("COMPLETED", "FAILED", "CANCELLED", "INTERRUPTED")


class Stream(threading.Thread):
    """One RunStream whose events are visible while it runs."""

    def __init__(self, channel, token, text=SLOW_INPUT):
        super().__init__(daemon=True)
        self.channel, self.token, self.text = channel, token, text
        self.events = []
        self.code = self.details = None
        self._lock = threading.Lock()
        self._done = threading.Event()

    def run(self):
        def requests():
            yield pb.RunStreamRequest(start=pb.RunStart(input=self.text))
            self._done.wait(STREAM_DEADLINE)

        call = self.channel.stream_stream(
            "/palyra.v1.GatewayService/RunStream",
            request_serializer=pb.RunStreamRequest.SerializeToString,
            response_deserializer=pb.RunEvent.FromString)
        it = call(requests(), metadata=auth_md(self.token),
                  timeout=STREAM_DEADLINE)
        try:
            for ev in it:
                with self._lock:
                    self.events.append(ev)
            self.code, self.details = it.code(), it.details()
        except grpc.RpcError as e:
            self.code, self.details = e.code(), e.details()
        finally:
            self._done.set()

    def tokens(self):
        with self._lock:
            return sum(1 for ev in self.events if event_kind(ev) == "token")

    def run_id(self):
        with self._lock:
            return self.events[0].run_id if self.events else None

    def finish(self, timeout=STREAM_DEADLINE):
        self.join(timeout)
        assert not self.is_alive(), f"stream still open after {timeout}s: {self.events[-3:]}"
        return self


def start_streams(d, token, n):
    ch = d.new_channel()
    streams = [Stream(ch, token) for _ in range(n)]
    for s in streams:
        s.start()
    poll(lambda: all(s.tokens() >= 2 for s in streams), 10,
         what=f"{n} streams producing tokens")
    return ch, streams


@pytest.fixture
def daemon(tmp_path):
    _require_binaries()
    d = Daemon(tmp_path / "d", FAULT_CONFIG, TENANTS)
    yield d.start()
    if not d.stopped:
        d.kill()


def run_rows(d, tenant):
    db = open_journal(d.journal_path(tenant))
    try:
        return dict(db.execute("SELECT run_id, status FROM runs").fetchall())
    finally:
        db.close()


def assert_events_journaled(d, tenant, streams):
    """Every event any client received is in the journal, byte for byte."""
    rows = verify_chain(d.journal_path(tenant))
    stored = {(r[1], r[2]): pb.RunEvent.FromString(_blob(r[5])) for r in rows}
    for s in streams:
        for ev in s.events:
            assert stored.get((ev.run_id, ev.seq)) == ev, \
                f"event {ev.run_id}/{ev.seq} seen by a client is not in the journal"
    return rows


def no_live_runs(d, tenant):
    live = {r: st for r, st in run_rows(d, tenant).items() if st not in TERMINAL_NAMES}
    return not live


def works(d, token, text):
    def ok():
        res = run_stream(d.channel, token, text, timeout=5)
        return res if res.code == grpc.StatusCode.OK else None
    return poll(ok, 15, interval=0.1, what=f"a successful run ({text})")


def check_slow_run(res, text):
    """A successful run of the slow tenant (its provider is not "offline")."""
    assert res.code == grpc.StatusCode.OK, (res.code, res.details)
    assert res.events[-1].status.status == S.RUN_STATUS_COMPLETED, res.events[-1]
    final = [ev.final.text for ev in res.events if event_kind(ev) == "final"]
    assert final == [OFFLINE_REPLY.format(text)], final
    assert [ev.usage.provider for ev in res.events
            if event_kind(ev) == "usage"] == ["slow"]


def test_worker_kill_interrupts_the_stream(daemon):
    d = daemon
    tok = d.mint_token("slow", "alice")
    ch, (s,) = start_streams(d, tok, 1)
    old = d.pids_of("palyra-worker", "slow")
    assert len(old) == 1, d.children()
    os.kill(old[0], signal.SIGKILL)
    s.finish()
    ch.close()

    # The client saw the committed INTERRUPTED status last, then OK.
    assert s.code == grpc.StatusCode.OK, (s.code, s.details)
    last = s.events[-1]
    assert event_kind(last) == "status", s.events[-3:]
    assert last.status.status == S.RUN_STATUS_INTERRUPTED, last
    assert "worker" in last.status.reason, last
    seqs = [ev.seq for ev in s.events]
    assert seqs == sorted(set(seqs)), seqs
    assert sum(1 for ev in s.events if event_kind(ev) == "status"
               and ev.status.status in TERMINAL) == 1

    rows = assert_events_journaled(d, "slow", [s])
    assert run_rows(d, "slow")[s.run_id()] == "INTERRUPTED"
    assert rows[-1][1] == s.run_id() and rows[-1][2] == last.seq

    new = poll(lambda: [p for p in d.pids_of("palyra-worker", "slow") if p not in old],
               10, what="a new worker for tenant slow")
    assert new
    check_slow_run(works(d, tok, "again"), "again")
    d.assert_clean_stop()


def test_journald_kill_during_streams(daemon):
    d = daemon
    tok = d.mint_token("slow", "bob")
    old = d.pids_of("palyra-journald")
    ch, streams = start_streams(d, tok, 4)
    os.kill(old[0], signal.SIGKILL)
    for s in streams:
        s.finish()
    ch.close()

    for s in streams:
        if s.code == grpc.StatusCode.OK:
            last = s.events[-1]
            assert event_kind(last) == "status" and last.status.status in TERMINAL, \
                s.events[-3:]
        else:
            assert s.code == grpc.StatusCode.UNAVAILABLE, (s.code, s.details)

    poll(lambda: [p for p in d.pids_of("palyra-journald") if p not in old], 10,
         what="a new journald")
    check_slow_run(works(d, tok, "after journald"), "after journald")
    # The new journald interrupted what the old one left in progress.
    poll(lambda: no_live_runs(d, "slow"), 10, what="no run left in progress")
    rows = run_rows(d, "slow")
    for s in streams:
        assert s.run_id() in rows and rows[s.run_id()] in TERMINAL_NAMES, rows
    assert_events_journaled(d, "slow", streams)
    d.assert_clean_stop()


def test_front_kill_during_streams(daemon):
    d = daemon
    tok = d.mint_token("slow", "carol")
    old = d.pids_of("palyra-front")
    ch, streams = start_streams(d, tok, 3)
    os.kill(old[0], signal.SIGKILL)
    for s in streams:
        s.finish()
    ch.close()
    for s in streams:
        assert s.code == grpc.StatusCode.UNAVAILABLE, (s.code, s.details)

    poll(lambda: [p for p in d.pids_of("palyra-front") if p not in old], 10,
         what="a new front")
    # The runs outlived their clients and the front.
    ids = [s.run_id() for s in streams]
    poll(lambda: all(run_rows(d, "slow").get(r) == "COMPLETED" for r in ids), 10,
         what="the runs in flight to complete")
    assert_events_journaled(d, "slow", streams)
    check_slow_run(works(d, tok, "new front"), "new front")
    d.assert_clean_stop()


def test_sigterm_cancels_streams(daemon):
    d = daemon
    tok = d.mint_token("slow", "dave")
    ch, streams = start_streams(d, tok, 3)
    d.assert_clean_stop(signal.SIGTERM)
    for s in streams:
        s.finish(5)
    ch.close()
    for s in streams:
        assert s.code == grpc.StatusCode.OK, (s.code, s.details, s.events[-3:])
        last = s.events[-1]
        assert event_kind(last) == "status", s.events[-3:]
        assert last.status.status == S.RUN_STATUS_CANCELLED, last
        assert last.status.reason == "palyrad is stopping", last
    rows = assert_events_journaled(d, "slow", streams)
    cancelled = {r[1] for r in rows
                 if pb.RunEvent.FromString(_blob(r[5])).status.status
                 == S.RUN_STATUS_CANCELLED}
    assert {s.run_id() for s in streams} <= cancelled
    assert all(run_rows(d, "slow")[s.run_id()] == "CANCELLED" for s in streams)


def test_other_tenant_unaffected_by_kill_loop(daemon):
    d = daemon
    slow_tok = d.mint_token("slow", "erin")
    other_tok = d.mint_token("other", "frank")
    check_successful_run(run_stream(d.channel, other_tok, "warm"), "warm")
    ch, (s,) = start_streams(d, slow_tok, 1)
    others = d.pids_of("palyra-worker", "other")
    front, journald = d.pids_of("palyra-front"), d.pids_of("palyra-journald")

    stop, killed = threading.Event(), []

    def killer():
        while not stop.is_set():
            for pid in d.pids_of("palyra-worker", "slow"):
                try:
                    os.kill(pid, signal.SIGKILL)
                    if pid not in killed:
                        killed.append(pid)
                except OSError:
                    pass
            stop.wait(0.05)

    t = threading.Thread(target=killer, daemon=True)
    t.start()
    try:
        # At least 3 s and two kills (restarts are backed off), at most 10 s.
        t0, n = time.monotonic(), 0
        while time.monotonic() < t0 + 10 and (
                time.monotonic() < t0 + 3 or len(killed) < 2):
            text = f"meanwhile {n}"
            check_successful_run(run_stream(d.channel, other_tok, text, timeout=5), text)
            n += 1
    finally:
        stop.set()
        t.join(5)
    s.finish()
    ch.close()
    assert n >= 5, f"only {n} runs of the other tenant"
    assert len(killed) >= 2, f"the slow worker was killed {len(killed)} times"
    assert s.code in (grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE), s.code
    assert d.pids_of("palyra-worker", "other") == others
    assert d.pids_of("palyra-front") == front
    assert d.pids_of("palyra-journald") == journald
    assert_events_journaled(d, "other", [])
    d.assert_clean_stop()
