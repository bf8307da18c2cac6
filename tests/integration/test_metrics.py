"""GET /metrics: Prometheus text format 0.0.4 on the HTTP listener.

Besides the front's own counters, a scrape gathers the runs by state and
the journal commits from journald, and the restarts and live workers from
the supervisor; a part that does not answer in time is left out and
palyra_scrape_partial says so.
"""
import json
import os
import re
import signal
import threading
import time
import urllib.error
import urllib.request

import grpc
import pytest

from conftest import (_OPENER, _require_binaries, Daemon, get_health, poll,
                      run_stream, start_workers)
from test_reattach import REATTACH_CONFIG, TENANTS as SLOW_TENANTS, start_run
from test_run_methods import abort_run

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"'
SAMPLE = re.compile(
    rf"^({NAME})(\{{{LABEL}(?:,{LABEL})*\}})? "
    r"(-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|NaN|[+-]Inf)$")
COMMENT = re.compile(rf"^# (HELP {NAME} .*|TYPE {NAME} (counter|gauge|histogram|summary|untyped))$")
LABEL_PAIR = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def scrape(daemon):
    with _OPENER.open(daemon.http_url + "/metrics", timeout=10) as r:
        assert r.status == 200
        ctype = r.headers.get("Content-Type", "")
        text = r.read().decode("utf-8")
    assert ctype.startswith("text/plain; version=0.0.4"), ctype
    return text


def parse(text):
    """[(name, {label: value}, float)]; every line must be a comment or a
    sample, and every sample's family must have a TYPE line."""
    samples, types = [], {}
    assert text.endswith("\n")
    for line in text.splitlines():
        if line.startswith("#"):
            assert COMMENT.match(line), f"bad comment line: {line!r}"
            parts = line.split(" ")
            if parts[1] == "TYPE":
                types[parts[2]] = parts[3]
            continue
        m = SAMPLE.match(line)
        assert m, f"bad sample line: {line!r}"
        labels = dict(LABEL_PAIR.findall(m.group(2) or ""))
        samples.append((m.group(1), labels, float(m.group(3))))
    seen = set()
    for name, labels, _ in samples:
        family = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in types or family in types, f"{name} has no TYPE"
        key = (name, tuple(sorted(labels.items())))
        assert key not in seen, f"duplicate series {key}"
        seen.add(key)
    return samples, types


def value(samples, name, **labels):
    for n, ls, v in samples:
        if n == name and all(ls.get(k) == w for k, w in labels.items()):
            return v
    return 0.0


def test_metrics_format_and_families(palyra):
    samples, types = parse(scrape(palyra))
    for family, kind in (
            ("palyra_front_connections", "gauge"),
            ("palyra_front_connections_total", "counter"),
            ("palyra_front_connections_refused_total", "counter"),
            ("palyra_grpc_requests_total", "counter"),
            ("palyra_grpc_request_duration_seconds", "histogram"),
            ("palyra_runs_started_total", "counter"),
            ("palyra_auth_failures_total", "counter"),
            ("palyra_auth_rate_limited_total", "counter"),
            ("palyra_h2_goaway_total", "counter"),
            ("palyra_http_requests_total", "counter")):
        assert types.get(family) == kind, f"{family}: {types.get(family)}"
    reasons = {ls["reason"] for n, ls, _ in samples
               if n == "palyra_front_connections_refused_total"}
    assert reasons == {"per_addr", "max"}


def test_metrics_not_for_post(palyra):
    req = urllib.request.Request(palyra.http_url + "/metrics", data=b"x",
                                 method="POST")
    try:
        _OPENER.open(req, timeout=10)
        raise AssertionError("POST /metrics succeeded")
    except urllib.error.HTTPError as e:
        assert e.code == 405


def test_counters_increase(fresh_daemon):
    d = fresh_daemon
    method = "/palyra.v1.GatewayService/GetHealth"
    s0, _ = parse(scrape(d))
    get_health(d.channel)
    res = run_stream(d.channel, "pt_not_a_real_token", "hi")
    assert res.code == grpc.StatusCode.UNAUTHENTICATED, res
    token = d.mint_token("default", "metrics")
    res = run_stream(d.channel, token, "hi")
    assert res.code == grpc.StatusCode.OK, res
    s1, _ = parse(scrape(d))

    assert value(s1, "palyra_grpc_requests_total", method=method, code="OK") \
        == value(s0, "palyra_grpc_requests_total", method=method, code="OK") + 1
    rs = "/palyra.v1.GatewayService/RunStream"
    assert value(s1, "palyra_grpc_requests_total", method=rs,
                 code="UNAUTHENTICATED") >= 1
    assert value(s1, "palyra_grpc_requests_total", method=rs, code="OK") >= 1
    assert value(s1, "palyra_auth_failures_total") \
        == value(s0, "palyra_auth_failures_total") + 1
    assert value(s1, "palyra_runs_started_total") \
        >= value(s0, "palyra_runs_started_total") + 1
    assert value(s1, "palyra_front_connections_total") >= 1
    assert value(s1, "palyra_front_connections", proto="h2") >= 1
    assert value(s1, "palyra_grpc_request_duration_seconds_count",
                 method=method) \
        == value(s0, "palyra_grpc_request_duration_seconds_count",
                 method=method) + 1
    # The scrape before this one was counted, and the admin POST.
    assert value(s1, "palyra_http_requests_total", path_group="metrics",
                 code="200") >= 1
    assert value(s1, "palyra_http_requests_total", path_group="admin",
                 code="201") >= 1


def test_histogram_buckets_are_cumulative(palyra, channel):
    for _ in range(3):
        get_health(channel)
    samples, _ = parse(scrape(palyra))
    methods = {ls["method"] for n, ls, _ in samples
               if n == "palyra_grpc_request_duration_seconds_bucket"}
    assert "/palyra.v1.GatewayService/GetHealth" in methods
    for m in methods:
        buckets = [(ls["le"], v) for n, ls, v in samples
                   if n == "palyra_grpc_request_duration_seconds_bucket"
                   and ls["method"] == m]
        assert buckets[-1][0] == "+Inf"
        bounds = [float(le) for le, _ in buckets]
        assert bounds == sorted(bounds), buckets
        counts = [v for _, v in buckets]
        assert counts == sorted(counts), f"{m}: not cumulative: {buckets}"
        assert counts[-1] == value(
            samples, "palyra_grpc_request_duration_seconds_count", method=m)
        assert value(samples, "palyra_grpc_request_duration_seconds_sum",
                     method=m) >= 0


def test_labels_are_bounded(palyra, channel):
    """An unknown method is counted as "unknown", never by its path."""
    call = channel.unary_unary("/no.such.Service/Method" + "x" * 40)
    try:
        call(b"", timeout=10)
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.UNIMPLEMENTED
    text = scrape(palyra)
    assert "no.such.Service" not in text
    samples, _ = parse(text)
    assert value(samples, "palyra_grpc_requests_total", method="unknown",
                 code="UNIMPLEMENTED") >= 1


# ------------------------------------------------ what journald and the
# supervisor report

@pytest.fixture
def slow_daemon(tmp_path):
    """Tenants "slow" (a run of about 2 s) and "other" (instant runs)."""
    _require_binaries()
    d = Daemon(tmp_path / "d", REATTACH_CONFIG, SLOW_TENANTS)
    yield d.start()
    if not d.stopped:
        d.kill()


def scrape_until(d, pred, what, timeout=10.0):
    """Scrapes until pred(samples) holds; returns those samples."""
    last = []

    def ok():
        last[:] = [parse(scrape(d))[0]]
        return pred(last[0])
    poll(ok, timeout, interval=0.1, what=what)
    return last[0]


def histogram(samples, name):
    buckets = [(ls["le"], v) for n, ls, v in samples if n == name + "_bucket"]
    return buckets, value(samples, name + "_count"), value(samples,
                                                            name + "_sum")


def test_new_families_are_typed(palyra):
    samples, types = parse(scrape(palyra))
    for family, kind in (
            ("palyra_grpc_streams_active", "gauge"),
            ("palyra_console_streams_active", "gauge"),
            ("palyra_runs", "gauge"),
            ("palyra_runs_ended_total", "counter"),
            ("palyra_journal_commit_seconds", "histogram"),
            ("palyra_journal_commits_total", "counter"),
            ("palyra_journal_appends_total", "counter"),
            ("palyra_child_restarts_total", "counter"),
            ("palyra_workers", "gauge"),
            ("palyra_scrape_partial", "gauge")):
        assert types.get(family) == kind, f"{family}: {types.get(family)}"
    assert value(samples, "palyra_scrape_partial") == 0
    kinds = {ls["kind"] for n, ls, _ in samples
             if n == "palyra_child_restarts_total"}
    assert {"journald", "front"} <= kinds, kinds


def test_runs_by_state(slow_daemon):
    d = slow_daemon
    s0, _ = parse(scrape(d))
    c0 = value(s0, "palyra_journal_commits_total")
    a0 = value(s0, "palyra_journal_appends_total")
    _, n0, _ = histogram(s0, "palyra_journal_commit_seconds")

    other = d.mint_token("other", "alice")
    res = run_stream(d.channel, other, "hi")
    assert res.code == grpc.StatusCode.OK, res

    slow = d.mint_token("slow", "bob")
    ch = d.new_channel()
    st = start_run(ch, slow)
    poll(lambda: st.count() >= 2, 10.0, what="first events of the slow run")
    s1 = scrape_until(d, lambda s: value(
        s, "palyra_runs", tenant="slow", state="IN_PROGRESS") == 1,
        "the slow run IN_PROGRESS")
    assert value(s1, "palyra_grpc_streams_active",
                 method="/palyra.v1.GatewayService/RunStream") >= 1
    assert value(s1, "palyra_runs_ended_total", tenant="other",
                 state="COMPLETED") == 1
    assert value(s1, "palyra_runs", tenant="other", state="IN_PROGRESS") == 0
    assert value(s1, "palyra_runs_ended_total", tenant="slow",
                 state="CANCELLED") == 0

    abort_run(ch, slow, st.run_id(), reason="metrics")
    st.finish()
    assert st.events[-1].status.status == 7, st.events[-1]  # CANCELLED
    s2 = scrape_until(d, lambda s: value(
        s, "palyra_runs_ended_total", tenant="slow", state="CANCELLED") == 1,
        "the aborted run CANCELLED")
    for state in ("ACCEPTED", "IN_PROGRESS", "WAITING_APPROVAL",
                  "WAITING_TOOL"):
        assert value(s2, "palyra_runs", tenant="slow", state=state) == 0
        assert value(s2, "palyra_runs", tenant="other", state=state) == 0
    assert value(s2, "palyra_runs_ended_total", tenant="slow",
                 state="COMPLETED") == 0
    assert value(s2, "palyra_runs_ended_total", tenant="other",
                 state="COMPLETED") == 1
    for state in ("FAILED", "INTERRUPTED"):
        assert value(s2, "palyra_runs_ended_total", tenant="other",
                     state=state) == 0
    poll(lambda: value(parse(scrape(d))[0], "palyra_grpc_streams_active",
                       method="/palyra.v1.GatewayService/RunStream") == 0,
         10.0, what="no RunStream open")

    # Every event of both runs was committed, in some transactions.
    buckets, n2, total = histogram(s2, "palyra_journal_commit_seconds")
    assert n2 > n0
    assert value(s2, "palyra_journal_commits_total") == n2 > c0
    assert value(s2, "palyra_journal_appends_total") >= \
        a0 + len(res.events) + len(st.events)
    assert buckets[-1][0] == "+Inf" and buckets[-1][1] == n2
    bounds = [float(le) for le, _ in buckets]
    assert bounds == sorted(bounds) and len(set(bounds)) == len(bounds)
    counts = [v for _, v in buckets]
    assert counts == sorted(counts), buckets
    assert total > 0


def test_runs_survive_journald_restart(slow_daemon):
    """The gauges come from the runs table after journald restarts: the
    run it interrupts at start is counted INTERRUPTED."""
    d = slow_daemon
    slow = d.mint_token("slow", "bob")
    ch = d.new_channel()
    st = start_run(ch, slow)
    poll(lambda: st.count() >= 2, 10.0, what="first events of the slow run")
    scrape_until(d, lambda s: value(
        s, "palyra_runs", tenant="slow", state="IN_PROGRESS") == 1,
        "the slow run IN_PROGRESS")
    old = d.pids_of("palyra-journald")
    assert len(old) == 1
    os.kill(old[0], signal.SIGKILL)
    s = scrape_until(d, lambda s: value(
        s, "palyra_runs_ended_total", tenant="slow",
        state="INTERRUPTED") == 1, "the run interrupted by the restart",
        timeout=20.0)
    assert value(s, "palyra_runs", tenant="slow", state="IN_PROGRESS") == 0
    assert value(s, "palyra_child_restarts_total", kind="journald",
                 tenant="") == 1
    st.finish()


def test_worker_restarts_and_count(fresh_daemon):
    d = fresh_daemon
    pids = start_workers(d, ["default"])["default"]
    s0 = scrape_until(d, lambda s: value(s, "palyra_workers") ==
                      len(d.pids_of("palyra-worker")) > 0, "worker count")
    r0 = value(s0, "palyra_child_restarts_total", kind="worker",
               tenant="default")
    assert value(s0, "palyra_workers_by_tenant", tenant="default") == \
        len(d.pids_of("palyra-worker", "default"))
    os.kill(pids[0], signal.SIGKILL)
    s1 = scrape_until(d, lambda s: value(
        s, "palyra_child_restarts_total", kind="worker",
        tenant="default") == r0 + 1, "the worker restart counted")
    assert value(s1, "palyra_child_restarts_total", kind="front",
                 tenant="") == 0
    scrape_until(d, lambda s: value(s, "palyra_workers") ==
                 len(d.pids_of("palyra-worker")), "worker count after")


def test_journald_stopped_gives_partial(fresh_daemon):
    d = fresh_daemon
    jpid = d.pids_of("palyra-journald")[0]
    os.kill(jpid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        samples, types = parse(scrape(d))
        took = time.monotonic() - t0
    finally:
        os.kill(jpid, signal.SIGCONT)
    assert took < 5.0, took
    assert value(samples, "palyra_scrape_partial") == 1
    assert "palyra_runs" not in types
    assert "palyra_journal_commit_seconds" not in types
    # What the front and the supervisor know is still there.
    assert types.get("palyra_grpc_requests_total") == "counter"
    assert types.get("palyra_workers") == "gauge"
    scrape_until(d, lambda s: value(s, "palyra_scrape_partial", ) == 0
                 and any(n == "palyra_journal_commits_total"
                         for n, _, _ in s), "a whole scrape again")


def test_scrapes_in_flight_are_bounded(fresh_daemon):
    """With journald stopped every scrape waits; past the bound they are
    refused at once with a JSON error, and none hangs."""
    d = fresh_daemon
    jpid = d.pids_of("palyra-journald")[0]
    results = []
    lock = threading.Lock()

    def one():
        t0 = time.monotonic()
        try:
            with _OPENER.open(d.http_url + "/metrics", timeout=10) as r:
                out = (r.status, r.read().decode())
        except urllib.error.HTTPError as e:
            out = (e.code, e.read().decode())
        with lock:
            results.append(out + (time.monotonic() - t0,))

    os.kill(jpid, signal.SIGSTOP)
    try:
        threads = [threading.Thread(target=one) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(15)
    finally:
        os.kill(jpid, signal.SIGCONT)
    assert len(results) == 8
    ok = [r for r in results if r[0] == 200]
    refused = [r for r in results if r[0] == 503]
    assert len(ok) + len(refused) == 8, results
    assert 1 <= len(ok) <= 4 and refused, [(c, t) for c, _, t in results]
    for _, body, took in refused:
        err = json.loads(body)["error"]
        assert err["code"] == "unavailable", err
        assert took < 2.0
    for _, body, took in ok:
        assert "palyra_scrape_partial 1\n" in body
        assert took < 5.0
    scrape_until(d, lambda s: value(s, "palyra_scrape_partial") == 0,
                 "a whole scrape again")
