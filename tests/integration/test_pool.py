"""Worker pools: `workers N` per tenant, started lazily on the first run,
more when the running ones are busy, retired after `idle-timeout`.

What is asserted comes from outside palyrad: processes in /proc, what the
clients receive, the journal's rows, and GET /admin/v1/processes.
"""
import os
import signal
import shutil
import stat
import threading
import time

import grpc
import pytest

import conftest
from conftest import (BUILD, Daemon, _require_binaries, check_successful_run,
                      event_kind, http_request, open_journal, pb, poll,
                      run_stream, verify_chain)
from test_faults import Stream

CONFIG = """\
state-dir "{state}"
listen grpc 127.0.0.1:{grpc_port}
listen http 127.0.0.1:{http_port}
journal {{ durability normal }}
provider "offline" {{ type offline }}
provider "slow" {{ type offline; token-delay 20ms }}
tenant "a" {{ workers 2; idle-timeout 0; agent "snail" {{ providers "slow" }} }}
tenant "b" {{ }}
tenant "idle" {{ idle-timeout 1s }}
tenant "brief" {{ idle-timeout 300ms }}
tenant "steady" {{ idle-timeout 3s }}
"""
TENANTS = ("a", "b", "idle", "brief", "steady")

BUSY_RUNS = 64                  # FE_WORKER_BUSY_RUNS
PENDING_MAX = 256               # FE_PENDING_CALLS_MAX
START_TIMEOUT = 5.0             # FE_WORKER_START_TIMEOUT_MS
# About 160 tokens at 20 ms: a run of about 3 s, so that every run of the
# first batch is still going while the second worker starts and is killed.
LONG_INPUT = " ".join(f"w{i}" for i in range(150))
S = pb.RunStatus


def workers(d, tenant):
    return d.pids_of("palyra-worker", tenant)


def listing(d):
    st, body = http_request(d, "GET", "/admin/v1/processes", token=d.admin_token)
    assert st == 200, (st, body)
    return [p for p in body["processes"] if p["kind"] == "worker"]


def slots(d, tenant):
    return {p["index"]: p for p in listing(d) if p["tenant"] == tenant}


def proc_uid(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Uid:"):
                return int(line.split()[1])
    raise AssertionError(f"no Uid in /proc/{pid}/status")


def run_rows(d, tenant):
    db = open_journal(d.journal_path(tenant))
    try:
        return dict(db.execute("SELECT run_id, status FROM runs").fetchall())
    finally:
        db.close()


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    _require_binaries()
    d = Daemon(tmp_path_factory.mktemp("pool"), CONFIG, TENANTS)
    d.start()
    yield d
    if not d.stopped:
        d.assert_clean_stop()


def test_no_worker_until_the_first_run(pool):
    d = pool
    # Ready and serving, yet no tenant has a worker.
    assert not workers(d, None), d.children()
    assert all(p["state"] == "idle" and p["pid"] is None for p in listing(d))
    tok = d.mint_token("b", "bea")
    t0 = time.monotonic()
    res = run_stream(d.channel, tok, "first")
    elapsed = time.monotonic() - t0
    check_successful_run(res, "first")
    # The worker started for this run: well within the start timeout.
    assert elapsed < START_TIMEOUT / 2, f"first run took {elapsed:.2f}s"
    assert len(workers(d, "b")) == 1, d.children()
    for t in ("a", "idle", "brief"):
        assert not workers(d, t), (t, d.children())
    assert slots(d, "b")[0]["state"] == "ready"
    assert slots(d, "a")[0]["state"] == "idle"
    # Later runs use the same worker.
    pid = workers(d, "b")
    check_successful_run(run_stream(d.channel, tok, "second"), "second")
    assert workers(d, "b") == pid


def test_busy_worker_gets_a_sibling_and_a_kill_interrupts_only_its_runs(pool):
    d = pool
    tok = d.mint_token("a", "ann")
    ch = d.new_channel()
    ch2 = d.new_channel()
    try:
        first = [Stream(ch, tok, LONG_INPUT) for _ in range(BUSY_RUNS)]
        for s in first:
            s.start()
        poll(lambda: all(s.tokens() >= 1 for s in first), 15,
             what=f"{BUSY_RUNS} runs producing tokens")
        # Every attached worker has FE_WORKER_BUSY_RUNS runs: one more.
        two = poll(lambda: len(workers(d, "a")) == 2 and workers(d, "a"), 10,
                   what="a second worker of tenant a")
        poll(lambda: {i: p["state"] for i, p in slots(d, "a").items()} ==
             {0: "ready", 1: "ready"}, 10, what="both slots of a ready")
        by_index = {p["index"]: p["pid"] for p in listing(d) if p["tenant"] == "a"}
        assert sorted(by_index.values()) == two, (by_index, two)
        # Both share the tenant's uid (and so its scratch directory).
        uids = {proc_uid(pid) for pid in two}
        assert len(uids) == 1, uids
        # New runs go to the least loaded worker: the new one.
        second = [Stream(ch2, tok, LONG_INPUT) for _ in range(8)]
        for s in second:
            s.start()
        poll(lambda: all(s.tokens() >= 1 for s in second), 15,
             what="the second batch producing tokens")
        assert all(s.is_alive() for s in first), "first batch ended too soon"
        os.kill(by_index[1], signal.SIGKILL)
        for s in first + second:
            s.finish()
    finally:
        ch.close()
        ch2.close()
    # The killed worker's runs were interrupted, the other's completed.
    for s in first:
        assert s.code == grpc.StatusCode.OK, (s.code, s.details)
        assert s.events[-1].status.status == S.RUN_STATUS_COMPLETED, s.events[-3:]
    for s in second:
        assert s.code == grpc.StatusCode.OK, (s.code, s.details)
        last = s.events[-1]
        assert event_kind(last) == "status", s.events[-3:]
        assert last.status.status == S.RUN_STATUS_INTERRUPTED, last
    rows = run_rows(d, "a")
    assert all(rows[s.run_id()] == "COMPLETED" for s in first), rows
    assert all(rows[s.run_id()] == "INTERRUPTED" for s in second), rows
    verify_chain(d.journal_path("a"))
    # Only the killed slot restarts; the other worker was not touched.
    poll(lambda: len(workers(d, "a")) == 2 and by_index[1] not in workers(d, "a"),
         10, what="the killed worker of a restarted")
    assert by_index[0] in workers(d, "a")
    s = slots(d, "a")
    assert s[0]["restarts"] == 0 and s[1]["restarts"] == 1, s
    assert s[1]["last_exit"] == "signal 9", s


def test_idle_worker_retires_and_the_next_run_starts_one(pool):
    d = pool
    tok = d.mint_token("idle", "ida")
    check_successful_run(run_stream(d.channel, tok, "wake"), "wake")
    (pid,) = workers(d, "idle")
    # idle-timeout 1s: it exits by itself, cleanly, and is not restarted.
    poll(lambda: not workers(d, "idle"), 5, what="the idle worker to retire")
    p = poll(lambda: slots(d, "idle")[0]["state"] == "idle" and slots(d, "idle")[0],
             5, what="the retired slot in the listing")
    assert p["pid"] is None and p["last_exit"] == "exit 6: idle", p
    assert p["restarts"] == 0, p
    assert "worker[idle#0]: retired" in d.log_text()
    assert "worker[idle#0]: restarting" not in d.log_text()
    # The next run starts a new one.
    check_successful_run(run_stream(d.channel, tok, "again"), "again")
    (new,) = workers(d, "idle")
    assert new != pid
    assert slots(d, "idle")[0]["state"] == "ready"


def test_short_runs_keep_the_worker(pool):
    d = pool
    tok = d.mint_token("steady", "st")
    # idle-timeout 3s, and a short run every 1.2 s: each run starts the
    # idle clock again, even one that began and ended between two of the
    # worker's idle checks, so the worker never retires meanwhile.
    check_successful_run(run_stream(d.channel, tok, "first"), "first")
    (pid,) = workers(d, "steady")
    for i in range(6):
        time.sleep(1.2)
        check_successful_run(run_stream(d.channel, tok, f"short {i}"),
                             f"short {i}")
        assert workers(d, "steady") == [pid], f"retired after run {i}"
    assert "worker[steady#0]: retired" not in d.log_text()


def test_runs_racing_the_retirement_never_fail(pool):
    d = pool
    tok = d.mint_token("brief", "bo")
    # idle-timeout 300ms: runs that arrive around the moment the worker
    # retires are routed again, never failed.
    for i, pause in enumerate((0.0, 0.28, 0.3, 0.32, 0.29, 0.31, 0.5)):
        time.sleep(pause)
        res = run_stream(d.channel, tok, f"race {i}")
        check_successful_run(res, f"race {i}")


def crashy_tree(tmp_path):
    """A copy of the build whose worker dies at once for tenant crashy."""
    root = tmp_path / "tree"
    (root / "bin").mkdir(parents=True)
    (root / "libexec").mkdir()
    shutil.copy2(os.path.join(BUILD, "bin", "palyrad"), root / "bin")
    for exe in ("palyra-front", "palyra-journald"):
        os.symlink(os.path.join(BUILD, "libexec", exe), root / "libexec" / exe)
    wrapper = root / "libexec" / "palyra-worker"
    wrapper.write_text(
        "#!/bin/sh\n"
        'case " $* " in *" -t crashy "*) exit 1 ;; esac\n'
        f'exec "{os.path.join(BUILD, "libexec", "palyra-worker")}" "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP |
                  stat.S_IXOTH)
    return str(root / "bin" / "palyrad")


CRASHY = """\
state-dir "{state}"
listen grpc 127.0.0.1:{grpc_port}
listen http 127.0.0.1:{http_port}
provider "offline" {{ type offline }}
tenant "good" {{ }}
tenant "crashy" {{ }}
"""


def test_parked_calls_time_out_and_are_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(conftest, "PALYRAD", crashy_tree(tmp_path))
    d = Daemon(tmp_path / "run", CRASHY, tenants=("good", "crashy"))
    d.start()
    try:
        tok = d.mint_token("crashy", "cy")
        # Three connections: FE_MAX_STREAMS (128) calls at most on each.
        channels = [grpc.insecure_channel(
            d.grpc_addr, options=conftest.CHANNEL_OPTIONS +
            [("grpc.use_local_subchannel_pool", 1)]) for _ in range(3)]
        results = [None] * (PENDING_MAX + 1)
        times = [None] * len(results)

        def call(i):
            t0 = time.monotonic()
            results[i] = run_stream(channels[i % 3], tok, f"p{i}",
                                    timeout=START_TIMEOUT * 3)
            times[i] = time.monotonic() - t0
        threads = [threading.Thread(target=call, args=(i,), daemon=True)
                   for i in range(len(results))]
        for t in threads:
            t.start()
        # Meanwhile the other tenant is served.
        good = d.mint_token("good", "gd")
        check_successful_run(run_stream(d.channel, good, "fine"), "fine")
        for t in threads:
            t.join(START_TIMEOUT * 3)
        for c in channels:
            c.close()
        codes = [r.code for r in results]
        over = [i for i, r in enumerate(results)
                if r.code == grpc.StatusCode.RESOURCE_EXHAUSTED]
        # FE_PENDING_CALLS_MAX wait; those over it are refused at once.
        assert len(over) >= 1, codes
        assert all(times[i] < START_TIMEOUT / 2 for i in over), \
            [times[i] for i in over]
        assert all("waiting for a tenant worker" in results[i].details
                   for i in over)
        parked = [i for i in range(len(results)) if i not in over]
        assert len(parked) == PENDING_MAX, codes
        for i in parked:
            r = results[i]
            assert r.code == grpc.StatusCode.UNAVAILABLE, r
            assert r.details == "tenant worker unavailable", r
            assert not r.events, r
            assert START_TIMEOUT - 0.5 <= times[i] < START_TIMEOUT + 3, times[i]
        assert not d.pids_of("palyra-worker", "crashy")
    finally:
        d.assert_clean_stop()
