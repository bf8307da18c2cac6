"""RunStream reattach: a start with (run_id, after_seq) follows an existing run.

Runs outlive their client (DESIGN section 6): a client that went away, or
whose front was killed, reattaches and gets every committed event after the
last one it saw, from the journal and then live, each exactly once and in
order, ending with the run's terminal status. The tenant "slow" has an agent
on an offline provider with a token-delay, so that its runs last a second or
two and a reattach lands in the middle of one.
"""
import os
import queue
import signal
import threading
import time

import grpc
import pytest

from conftest import (_blob, _require_binaries, auth_md, event_kind,
                      journal_events, pb, poll, run_stream, Daemon)

REATTACH_CONFIG = """\
state-dir "{state}"
listen grpc 127.0.0.1:{grpc_port}
listen http 127.0.0.1:{http_port}
journal {{ durability normal }}
provider "offline" {{ type offline }}
provider "slow" {{ type offline; token-delay 30ms }}
tenant "slow" {{ agent "snail" {{ providers "slow" }} }}
tenant "other" {{ agent "helper" {{ providers "offline" }} }}
"""
TENANTS = ("slow", "other")

# About 65 tokens at 30 ms: a run of about 2 s.
SLOW_INPUT = " ".join(f"word{i}" for i in range(50))
DEADLINE = 20.0
METHOD = "/palyra.v1.GatewayService/RunStream"

S = pb.RunStatus
TERMINAL = {S.RUN_STATUS_COMPLETED, S.RUN_STATUS_FAILED,
            S.RUN_STATUS_CANCELLED, S.RUN_STATUS_INTERRUPTED}


@pytest.fixture
def daemon(tmp_path):
    _require_binaries()
    d = Daemon(tmp_path / "d", REATTACH_CONFIG, TENANTS)
    yield d.start()
    if not d.stopped:
        d.kill()


class Stream(threading.Thread):
    """One RunStream whose events are visible while it runs.

    start: the RunStart to send. stop_after: the client cancels its call
    (goes away) once it received that many events. More requests (a cancel)
    can be sent with send().
    """

    def __init__(self, channel, token, start, stop_after=None):
        super().__init__(daemon=True)
        self.channel, self.token, self.start_msg = channel, token, start
        self.stop_after = stop_after
        self.events = []
        self.code = self.details = None
        self._lock = threading.Lock()
        self._requests = queue.Queue()
        self._done = threading.Event()

    def send(self, req):
        self._requests.put(req)

    def run(self):
        def requests():
            yield pb.RunStreamRequest(start=self.start_msg)
            while not self._done.is_set():
                try:
                    req = self._requests.get(timeout=0.05)
                except queue.Empty:
                    continue
                yield req

        call = self.channel.stream_stream(
            METHOD, request_serializer=pb.RunStreamRequest.SerializeToString,
            response_deserializer=pb.RunEvent.FromString)
        it = call(requests(), metadata=auth_md(self.token), timeout=DEADLINE)
        try:
            for ev in it:
                with self._lock:
                    self.events.append(ev)
                if self.stop_after is not None and len(self.events) >= self.stop_after:
                    it.cancel()
                    break
            self.code, self.details = it.code(), it.details()
        except grpc.RpcError as e:
            self.code, self.details = e.code(), e.details()
        finally:
            self._done.set()

    def count(self):
        with self._lock:
            return len(self.events)

    def run_id(self):
        with self._lock:
            return self.events[0].run_id if self.events else None

    def finish(self, timeout=DEADLINE):
        self.join(timeout)
        assert not self.is_alive(), f"stream still open after {timeout}s"
        return self


def start_run(ch, token, stop_after=None, text=SLOW_INPUT):
    s = Stream(ch, token, pb.RunStart(input=text), stop_after)
    s.start()
    return s


def reattach(ch, token, run_id, after_seq, **kw):
    s = Stream(ch, token, pb.RunStart(run_id=run_id, after_seq=after_seq), **kw)
    s.start()
    return s


def journal_run(d, tenant, run_id):
    """The run's events as the journal holds them, in seq order."""
    rows = journal_events(d.journal_path(tenant), run_id)
    evs = sorted((pb.RunEvent.FromString(_blob(r[5])) for r in rows),
                 key=lambda ev: ev.seq)
    assert [ev.seq for ev in evs] == list(range(1, len(evs) + 1)), \
        f"journal seqs of {run_id} are not 1..n"
    return evs


def run_status(d, tenant, run_id):
    import sqlite3
    db = sqlite3.connect(f"file:{d.journal_path(tenant)}?mode=ro", uri=True,
                         timeout=10)
    try:
        row = db.execute("SELECT status FROM runs WHERE run_id = ?",
                         (run_id,)).fetchone()
    finally:
        db.close()
    return row[0] if row else None


def assert_follows(events, after_seq, journal):
    """events are exactly the journal's events after after_seq, in order,
    each once, ending with the terminal status."""
    seqs = [ev.seq for ev in events]
    want = [ev.seq for ev in journal if ev.seq > after_seq]
    assert seqs == want, f"got seqs {seqs}, journal has {want} after {after_seq}"
    for got, stored in zip(events, [ev for ev in journal if ev.seq > after_seq]):
        assert got == stored, f"event {got.seq} differs from the journal's"
    if events:
        last = events[-1]
        assert event_kind(last) == "status" and last.status.status in TERMINAL, last
        assert sum(1 for ev in events if event_kind(ev) == "status"
                   and ev.status.status in TERMINAL) == 1


def test_reattach_while_running(daemon):
    d = daemon
    tok = d.mint_token("slow", "alice")
    ch = d.new_channel()
    k = 6
    first = start_run(ch, tok, stop_after=k).finish()
    assert first.code == grpc.StatusCode.CANCELLED, (first.code, first.details)
    assert [ev.seq for ev in first.events] == list(range(1, k + 1))
    run_id = first.run_id()
    # The run goes on without its client.
    assert run_status(d, "slow", run_id) not in ("COMPLETED", None)

    again = reattach(ch, tok, run_id, k).finish()
    assert again.code == grpc.StatusCode.OK, (again.code, again.details)
    journal = journal_run(d, "slow", run_id)
    assert journal[-1].status.status == S.RUN_STATUS_COMPLETED
    assert_follows(again.events, k, journal)
    assert again.events[-1].status.status == S.RUN_STATUS_COMPLETED
    # Tokens arrived live, while the run was producing them, not only
    # from the journal at the end.
    tokens = [ev for ev in again.events if event_kind(ev) == "token"]
    assert len(tokens) > 5
    assert first.events + again.events == journal
    ch.close()
    d.assert_clean_stop()


def test_reattach_after_the_run_finished(daemon):
    d = daemon
    tok = d.mint_token("slow", "bob")
    ch = d.new_channel()
    done = start_run(ch, tok, text="short one").finish()
    assert done.code == grpc.StatusCode.OK, (done.code, done.details)
    run_id, n = done.run_id(), len(done.events)
    journal = journal_run(d, "slow", run_id)
    assert done.events == journal

    for after in (0, 3, n - 1):
        r = reattach(ch, tok, run_id, after).finish()
        assert r.code == grpc.StatusCode.OK, (after, r.code, r.details)
        assert_follows(r.events, after, journal)
    for after in (n, n + 10):
        r = reattach(ch, tok, run_id, after).finish()
        assert r.code == grpc.StatusCode.OK, (after, r.code, r.details)
        assert r.events == [], r.events
    ch.close()
    d.assert_clean_stop()


def test_reattach_after_front_kill(daemon):
    d = daemon
    tok = d.mint_token("slow", "carol")
    old = d.pids_of("palyra-front")
    ch = d.new_channel()
    s = start_run(ch, tok)
    poll(lambda: s.count() >= 4, 10, what="the first events")
    os.kill(old[0], signal.SIGKILL)
    s.finish()
    ch.close()
    assert s.code == grpc.StatusCode.UNAVAILABLE, (s.code, s.details)
    run_id = s.run_id()
    seen = list(s.events)
    assert [ev.seq for ev in seen] == list(range(1, len(seen) + 1))

    poll(lambda: [p for p in d.pids_of("palyra-front") if p not in old], 10,
         what="a new front")
    # The new front may not serve yet: the client retries, each time from
    # the last event it saw, as a real client would.
    deadline = time.monotonic() + 15
    while True:
        ch = d.new_channel()
        r = reattach(ch, tok, run_id, seen[-1].seq).finish()
        ch.close()
        seen.extend(r.events)
        if r.code == grpc.StatusCode.OK:
            break
        assert r.code == grpc.StatusCode.UNAVAILABLE, (r.code, r.details)
        assert time.monotonic() < deadline, "no reattach succeeded"
        time.sleep(0.1)
    journal = journal_run(d, "slow", run_id)
    assert seen == journal, \
        f"client saw seqs {[ev.seq for ev in seen]}, journal {len(journal)} events"
    assert seen[-1].status.status == S.RUN_STATUS_COMPLETED
    d.assert_clean_stop()


def test_two_clients_follow_one_run(daemon):
    d = daemon
    tok = d.mint_token("slow", "dave")
    ch = d.new_channel()
    origin = start_run(ch, tok)
    poll(lambda: origin.count() >= 3, 10, what="the first events")
    run_id = origin.run_id()
    a = reattach(ch, tok, run_id, 0)
    b = reattach(d.new_channel(), tok, run_id, 2)
    for s in (origin, a, b):
        s.finish()
        assert s.code == grpc.StatusCode.OK, (s.code, s.details)
    journal = journal_run(d, "slow", run_id)
    assert origin.events == journal
    assert_follows(a.events, 0, journal)
    assert_follows(b.events, 2, journal)
    ch.close()
    d.assert_clean_stop()


def test_cancel_on_a_reattached_call(daemon):
    d = daemon
    tok = d.mint_token("slow", "erin")
    ch = d.new_channel()
    first = start_run(ch, tok, stop_after=3).finish()
    run_id = first.run_id()
    r = reattach(ch, tok, run_id, 3)
    poll(lambda: r.count() >= 2, 10, what="events on the reattached call")
    r.send(pb.RunStreamRequest(cancel=pb.Cancel(reason="enough")))
    r.finish()
    assert r.code == grpc.StatusCode.OK, (r.code, r.details)
    last = r.events[-1]
    assert last.status.status == S.RUN_STATUS_CANCELLED, last
    journal = journal_run(d, "slow", run_id)
    assert_follows(r.events, 3, journal)
    ch.close()
    d.assert_clean_stop()


def test_reattach_refusals(daemon):
    d = daemon
    tok = d.mint_token("slow", "frank")
    same_tenant = d.mint_token("slow", "mallory")
    other_tenant = d.mint_token("other", "frank")
    ch = d.new_channel()
    done = start_run(ch, tok, text="mine").finish()
    assert done.code == grpc.StatusCode.OK
    run_id = done.run_id()
    live = start_run(ch, tok)
    poll(lambda: live.count() >= 2, 10, what="a live run")

    for who in (same_tenant, other_tenant):
        for rid in (run_id, live.run_id()):
            r = reattach(ch, who, rid, 0).finish()
            assert r.code == grpc.StatusCode.NOT_FOUND, (r.code, r.details)
            assert r.events == []
    r = reattach(ch, tok, "0" * 32, 0).finish()
    assert r.code == grpc.StatusCode.NOT_FOUND, (r.code, r.details)
    r = reattach(ch, tok, "", 0)  # an empty run_id is a normal start
    r.finish()
    assert r.code == grpc.StatusCode.INVALID_ARGUMENT, (r.code, r.details)

    res = run_stream(ch, tok, input="more", raw_request=pb.RunStreamRequest(
        start=pb.RunStart(run_id=run_id, input="more")).SerializeToString())
    assert res.code == grpc.StatusCode.INVALID_ARGUMENT, res
    res = run_stream(ch, tok, raw_request=pb.RunStreamRequest(
        start=pb.RunStart(run_id=run_id, agent="snail")).SerializeToString())
    assert res.code == grpc.StatusCode.INVALID_ARGUMENT, res
    res = run_stream(ch, tok, raw_request=pb.RunStreamRequest(
        start=pb.RunStart(run_id="x" * 65)).SerializeToString())
    assert res.code == grpc.StatusCode.INVALID_ARGUMENT, res
    res = run_stream(ch, None, raw_request=pb.RunStreamRequest(
        start=pb.RunStart(run_id=run_id)).SerializeToString())
    assert res.code == grpc.StatusCode.UNAUTHENTICATED, res
    live.finish()
    assert live.code == grpc.StatusCode.OK
    ch.close()
    d.assert_clean_stop()


def test_concurrent_reattach_of_ten_runs(daemon):
    d = daemon
    tok = d.mint_token("slow", "gina")
    ch = d.new_channel()
    firsts = [start_run(ch, tok, stop_after=4) for _ in range(10)]
    for s in firsts:
        s.finish()
        assert [ev.seq for ev in s.events] == [1, 2, 3, 4], s.events
    followers = [reattach(d.new_channel(), tok, s.run_id(), 4) for s in firsts]
    for s, f in zip(firsts, followers):
        f.finish()
        assert f.code == grpc.StatusCode.OK, (f.code, f.details)
        journal = journal_run(d, "slow", s.run_id())
        assert_follows(f.events, 4, journal)
        assert s.events + f.events == journal
    ch.close()
    d.assert_clean_stop()


def ctl(*args, timeout=30):
    import subprocess
    from conftest import PALYRACTL
    if not os.access(PALYRACTL, os.X_OK):
        pytest.fail(f"{PALYRACTL} not built", pytrace=False)
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    return subprocess.run([PALYRACTL, *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, env=env)


def test_palyractl_run_attach(daemon):
    import json
    d = daemon
    tok = d.mint_token("slow", "hank")
    ch = d.new_channel()
    first = start_run(ch, tok, stop_after=5).finish()
    run_id = first.run_id()
    r = ctl("-g", d.grpc_addr, "--json", "run", "--token", tok,
            "--attach", run_id, "--after", "5")
    assert r.returncode == 0, r
    seqs = [json.loads(line)["seq"] for line in r.stdout.splitlines()]
    journal = journal_run(d, "slow", run_id)
    assert seqs == [ev.seq for ev in journal if ev.seq > 5], seqs
    # Text mode prints the rest of the reply; from the end nothing, OK.
    r = ctl("-g", d.grpc_addr, "run", "--token", tok, "--attach", run_id,
            "--after", str(len(journal)))
    assert r.returncode == 0 and r.stdout == "", r
    r = ctl("-g", d.grpc_addr, "run", "--token", d.mint_token("slow", "ivan"),
            "--attach", run_id)
    assert r.returncode == 1 and "NOT_FOUND" in r.stderr, r
    r = ctl("-g", d.grpc_addr, "run", "--token", tok, "--attach", run_id,
            "prompt")
    assert r.returncode == 2, r
    r = ctl("-g", d.grpc_addr, "run", "--token", tok, "--after", "3", "hi")
    assert r.returncode == 2, r
    ch.close()
    d.assert_clean_stop()


def test_reattach_pages_through_a_long_run(daemon):
    """More events than one journal page (JNL_READ_PAGE_MAX, 256)."""
    d = daemon
    tok = d.mint_token("other", "judy")
    ch = d.new_channel()
    text = " ".join(f"w{i}" for i in range(600))
    done = start_run(ch, tok, text=text).finish()
    assert done.code == grpc.StatusCode.OK, (done.code, done.details)
    journal = journal_run(d, "other", done.run_id())
    assert len(journal) > 2 * 256, len(journal)
    for after in (0, 255, 256, 300, 513):
        r = reattach(ch, tok, done.run_id(), after).finish()
        assert r.code == grpc.StatusCode.OK, (after, r.code, r.details)
        assert_follows(r.events, after, journal)
    ch.close()
    d.assert_clean_stop()


def test_reattach_after_worker_kill(daemon):
    """The run's worker died: the reattached call gets what was committed,
    then the INTERRUPTED status journald records, and ends OK."""
    d = daemon
    tok = d.mint_token("slow", "kate")
    ch = d.new_channel()
    first = start_run(ch, tok, stop_after=4).finish()
    run_id = first.run_id()
    worker = d.pids_of("palyra-worker", "slow")
    assert worker
    os.kill(worker[0], signal.SIGKILL)
    r = reattach(ch, tok, run_id, 4).finish()
    assert r.code == grpc.StatusCode.OK, (r.code, r.details)
    journal = journal_run(d, "slow", run_id)
    assert journal[-1].status.status == S.RUN_STATUS_INTERRUPTED, journal[-1]
    assert_follows(r.events, 4, journal)
    ch.close()
    d.assert_clean_stop()


def test_too_many_followers(daemon):
    """A run follows at most WRK_RUN_FOLLOWERS_MAX (16) reattached calls."""
    d = daemon
    tok = d.mint_token("slow", "liam")
    ch = d.new_channel()
    origin = start_run(ch, tok)
    poll(lambda: origin.count() >= 2, 10, what="a live run")
    followers = [reattach(d.new_channel(), tok, origin.run_id(), 0)
                 for _ in range(20)]
    for f in followers:
        f.finish()
    origin.finish()
    assert origin.code == grpc.StatusCode.OK
    codes = [f.code for f in followers]
    exhausted = codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED)
    assert codes.count(grpc.StatusCode.OK) + exhausted == 20, codes
    assert exhausted >= 4, codes
    journal = journal_run(d, "slow", origin.run_id())
    for f in followers:
        if f.code == grpc.StatusCode.OK:
            assert_follows(f.events, 0, journal)
        else:
            assert f.events == [] and "too many" in f.details, f.details
    ch.close()
    d.assert_clean_stop()
