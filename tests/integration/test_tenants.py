"""Tenants at run time: /admin/v1/tenants and `palyractl tenant`.

A tenant created over HTTP serves runs at once (the built-in "assistant"
agent on the offline provider), its limits change live (the cgroup's
memory limit too, where the host has cgroups), and a delete stops its
worker and its tokens while its journal stays on disk. Runtime tenants
live in STATE/tenants.conf and survive a restart and a SIGHUP; the tenants
of palyrad.conf are listed and shown but never changed here, and a name
palyrad.conf later declares is the configuration's.
"""
import json
import os
import signal
import stat
import subprocess

import grpc
import pytest

from conftest import (DEFAULT_CONFIG, PALYRACTL, Daemon, _require_binaries,
                      check_successful_run, http_request, poll, run_stream)
from test_cgroups import groups_of, host_problem, read

MIB = 1024 * 1024


@pytest.fixture
def d(tmp_path):
    _require_binaries()
    daemon = Daemon(tmp_path / "d")
    daemon.start()
    yield daemon
    if not daemon.stopped:
        daemon.kill()


def api(d, method, path, body=None, token=True, raw=None):
    return http_request(d, method, "/admin/v1/tenants" + path, body=body,
                        raw=raw, token=d.admin_token if token is True else token)


def assert_error(st, body, status, code):
    assert st == status, (st, body)
    assert isinstance(body, dict) and set(body) == {"error"}, body
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


def names(d):
    st, body = api(d, "GET", "")
    assert st == 200, (st, body)
    return {t["name"]: t for t in body["tenants"]}


def tenants_file(d):
    return os.path.join(d.state, "tenants.conf")


def worker_memory_limit(pid):
    """The memory limit of pid's group as the kernel shows it, or None."""
    g = groups_of(pid)
    if "v2" in g and g["v2"].rstrip("/").endswith("/palyra/acme"):
        p = os.path.join(g["v2"], "memory.max")
    elif "memory" in g and g["memory"].rstrip("/").endswith("/palyra/acme"):
        p = os.path.join(g["memory"], "memory.limit_in_bytes")
    else:
        return None
    v = read(p)
    return None if v == "max" else int(v)


def test_create_run_update_delete(d):
    st, t = api(d, "POST", "", {"name": "acme", "workers": 2,
                                "memory_limit": "128M", "pids_limit": 64,
                                "idle_timeout": "5m"})
    assert st == 201, (st, t)
    assert t["name"] == "acme" and t["source"] == "runtime"
    assert t["workers"] == 2 and t["memory_limit"] == 128 * MIB
    assert t["pids_limit"] == 64 and t["idle_timeout_ms"] == 300000
    assert t["agents"] == ["assistant"]

    # Kept by the supervisor only: root's (palyrad's), 0600, its syntax.
    fst = os.stat(tenants_file(d))
    assert stat.S_IMODE(fst.st_mode) == 0o600 and fst.st_uid == os.geteuid()
    with open(tenants_file(d)) as f:
        assert 'tenant "acme"' in f.read()

    all_ = names(d)
    assert all_["acme"]["source"] == "runtime"
    assert all_["default"]["source"] == "config"
    assert all_["other"]["source"] == "config"
    st, shown = api(d, "GET", "/acme")
    assert st == 200 and shown["memory_limit"] == 128 * MIB, (st, shown)

    # It serves at once.
    tok = d.mint_token("acme", "alice")
    check_successful_run(run_stream(d.channel, tok, "hi acme"), "hi acme")
    worker = poll(lambda: d.pids_of("palyra-worker", "acme"), 10,
                  what="a worker of acme")[0]
    cgroups = host_problem() is None and \
        "cgroups: unavailable" not in d.log_text()
    if cgroups:
        assert worker_memory_limit(worker) == 128 * MIB

    st, t = api(d, "PATCH", "/acme", {"memory_limit": 256 * MIB,
                                      "cpu_weight": 300})
    assert st == 200, (st, t)
    assert t["memory_limit"] == 256 * MIB and t["cpu_weight"] == 300
    assert t["workers"] == 2 and t["pids_limit"] == 64   # untouched
    st, shown = api(d, "GET", "/acme")
    assert shown["memory_limit"] == 256 * MIB, shown
    with open(tenants_file(d)) as f:
        assert f"memory-limit {256 * MIB}" in f.read()
    if cgroups:
        # The running worker's group takes the new limit at once.
        poll(lambda: worker_memory_limit(worker) == 256 * MIB, 5,
             what="the new memory limit in the worker's cgroup")
    # A limit removed with null.
    st, t = api(d, "PATCH", "/acme", {"pids_limit": None})
    assert st == 200 and t["pids_limit"] == 0, (st, t)
    check_successful_run(run_stream(d.channel, tok, "still"), "still")

    st, body = api(d, "DELETE", "/acme")
    assert st == 200, (st, body)
    assert body["deleted"] is True and "journal" in body["message"]
    assert "acme" not in names(d)
    poll(lambda: not d.pids_of("palyra-worker", "acme"), 10,
         what="acme's worker to exit")
    res = run_stream(d.channel, tok, "gone")
    assert res.code == grpc.StatusCode.UNAUTHENTICATED, res
    assert not res.events
    st, body = api(d, "GET", "/acme")
    assert_error(st, body, 404, "not_found")
    assert_error(*api(d, "DELETE", "/acme"), 404, "not_found")
    # The journal stays, and the name brings it back with its tokens.
    assert os.path.exists(d.journal_path("acme"))
    st, t = api(d, "POST", "", {"name": "acme"})
    assert st == 201 and t["workers"] == 1 and t["memory_limit"] == 0, (st, t)
    check_successful_run(run_stream(d.channel, tok, "back"), "back")
    st, runs = http_request(d, "GET", "/admin/v1/tenants/acme/runs",
                            token=d.admin_token)
    assert st == 200, (st, runs)
    assert len(runs["items"]) == 3, runs
    # The other tenants never noticed.
    check_successful_run(run_stream(d.channel, d.mint_token("default"), "ok"),
                         "ok")
    d.assert_clean_stop()


def test_config_tenants_and_bad_requests(d):
    st, t = api(d, "GET", "/default")
    assert st == 200 and t["source"] == "config", (st, t)
    assert t["agents"] == ["assistant"]
    st, body = api(d, "POST", "", {"name": "default"})
    assert_error(st, body, 409, "conflict")
    assert "palyrad.conf" in body["error"]["message"]
    st, body = api(d, "PATCH", "/other", {"workers": 2})
    assert_error(st, body, 409, "conflict")
    assert "palyrad.conf" in body["error"]["message"]
    assert_error(*api(d, "DELETE", "/default"), 409, "conflict")
    assert set(names(d)) == {"default", "other"}

    for bad in ("-x", ".x", "a/b", "x" * 65, "", 7, None):
        assert_error(*api(d, "POST", "", {"name": bad}), 400, "bad_request")
    assert_error(*api(d, "POST", "", {"workers": 1}), 400, "bad_request")
    assert_error(*api(d, "GET", "/a%2Fb"), 400, "bad_request")
    st, body = api(d, "POST", "", {"name": "n1", "colour": "red"})
    assert_error(st, body, 400, "bad_request")
    assert "unknown field" in body["error"]["message"]
    assert_error(*api(d, "PATCH", "/default", {"name": "x"}), 400,
                 "bad_request")
    for field, value in (("memory_limit", "12Q"), ("memory_limit", "-1"),
                         ("memory_limit", -5), ("memory_limit", 1.5),
                         ("journal_quota", "lots"), ("idle_timeout", "5y"),
                         ("idle_timeout", True), ("workers", "2"),
                         ("workers", None), ("pids_limit", 1 << 40)):
        st, body = api(d, "POST", "", {"name": "n1", field: value})
        assert_error(st, body, 400, "bad_request")
        assert field in body["error"]["message"], body
    # The bounds are palyrad.conf's, checked by its parser.
    for field, value, word in (("workers", 0, "workers"),
                               ("workers", 65, "workers"),
                               ("memory_limit", 1024, "memory-limit"),
                               ("cpu_weight", 10001, "cpu-weight"),
                               ("journal_quota", "1K", "journal-quota"),
                               ("idle_timeout", "8d", "idle-timeout")):
        st, body = api(d, "POST", "", {"name": "n1", field: value})
        assert_error(st, body, 400, "bad_request")
        assert word in body["error"]["message"] and \
            "out of range" in body["error"]["message"], body
        assert d.state not in body["error"]["message"], body
    assert_error(*api(d, "POST", "", raw=b"{not json"), 400, "bad_request")
    assert_error(*api(d, "POST", "", raw=b"[1]"), 400, "bad_request")
    assert_error(*api(d, "POST", "", raw=b'{"name":"a","name":"b"}'), 400,
                 "bad_request")
    assert_error(*api(d, "PATCH", "/nosuch", {"workers": 2}), 404,
                 "not_found")
    assert_error(*api(d, "GET", "", token=None), 401, "unauthenticated")
    assert_error(*api(d, "POST", "", {"name": "n1"}, token="pt_wrong"), 401,
                 "unauthenticated")
    assert_error(*api(d, "PUT", "/default", {}), 405, "method_not_allowed")
    assert_error(*api(d, "DELETE", ""), 405, "method_not_allowed")
    assert "n1" not in names(d)
    # Deeper paths are still the listings'.
    st, body = http_request(d, "GET", "/admin/v1/tenants/default/sessions",
                            token=d.admin_token)
    assert st == 200 and "items" in body, (st, body)
    d.assert_clean_stop()


def test_survives_restart_and_reload(d, tmp_path):
    st, t = api(d, "POST", "", {"name": "keep", "memory_limit": "64M",
                                "journal_quota": "1G", "idle_timeout": 0})
    assert st == 201, (st, t)
    tok = d.mint_token("keep", "bob")
    check_successful_run(run_stream(d.channel, tok, "one"), "one")

    reloads = d.log_text().count("reloaded:")
    d.proc.send_signal(signal.SIGHUP)
    poll(lambda: d.log_text().count("reloaded:") > reloads, 10,
         what="the reload")
    assert "reloaded: 3 tenant(s), 0 added, 0 removed" in d.log_text()
    assert names(d)["keep"]["source"] == "runtime"
    check_successful_run(run_stream(d.channel, tok, "two"), "two")
    d.assert_clean_stop()

    d2 = Daemon(tmp_path / "d")
    d2.start()
    try:
        t = names(d2)["keep"]
        assert t["source"] == "runtime" and t["memory_limit"] == 64 * MIB
        assert t["journal_quota"] == 1 << 30 and t["idle_timeout_ms"] == 0
        check_successful_run(run_stream(d2.channel, tok, "three"), "three")

        # palyrad.conf now declares the name: the configuration wins.
        with open(d2.conf, "w") as f:
            f.write((DEFAULT_CONFIG + 'tenant "keep" {{ workers 3 }}\n')
                    .format(state=d2.state, grpc_port=d2.grpc_port,
                            http_port=d2.http_port))
        reloads = d2.log_text().count("reloaded:")
        ignored = d2.log_text().count("the runtime tenant is ignored")
        d2.proc.send_signal(signal.SIGHUP)
        poll(lambda: d2.log_text().count("reloaded:") > reloads, 10,
             what="the reload")
        assert d2.log_text().count("the runtime tenant is ignored") == \
            ignored + 1
        t = names(d2)["keep"]
        assert t["source"] == "config" and t["workers"] == 3, t
        assert_error(*api(d2, "DELETE", "/keep"), 409, "conflict")
        check_successful_run(run_stream(d2.channel, tok, "four"), "four")
        d2.assert_clean_stop()
    finally:
        if not d2.stopped:
            d2.kill()


def ctl(d, *args):
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    return subprocess.run([PALYRACTL, "-u", d.http_url, "-s", d.state, *args],
                          capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL, env=env)


def test_palyractl_tenant(d):
    r = ctl(d, "tenant", "create", "ctl1", "--workers", "2",
            "--memory-limit", "64M", "--idle-timeout", "90s")
    assert r.returncode == 0, r
    assert "source:          runtime" in r.stdout, r.stdout
    assert "memory limit:    64M" in r.stdout, r.stdout
    assert "idle timeout:    90s" in r.stdout, r.stdout

    r = ctl(d, "tenant", "list")
    assert r.returncode == 0, r
    lines = r.stdout.splitlines()
    assert lines[0].split()[:4] == ["NAME", "SOURCE", "WORKERS", "RUNNING"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows["ctl1"][1:3] == ["runtime", "2"] and rows["ctl1"][4] == "64M"
    assert rows["default"][1] == "config"
    # Aligned: every row starts its SOURCE column at the same place.
    col = lines[0].index("SOURCE")
    assert all(line[col:col + 7].strip() in ("config", "runtime")
               for line in lines[1:]), lines

    r = ctl(d, "tenant", "update", "ctl1", "--pids-limit", "50",
            "--journal-quota", "2G")
    assert r.returncode == 0, r
    r = ctl(d, "--json", "tenant", "show", "ctl1")
    assert r.returncode == 0, r
    t = json.loads(r.stdout)
    assert t["pids_limit"] == 50 and t["journal_quota"] == 2 << 30
    assert t["memory_limit"] == 64 * MIB and t["workers"] == 2
    r = ctl(d, "--json", "tenant", "list")
    assert r.returncode == 0
    assert {x["name"] for x in json.loads(r.stdout)["tenants"]} == \
        {"default", "other", "ctl1"}

    r = ctl(d, "tenant", "delete", "default")
    assert r.returncode == 1 and "palyrad.conf" in r.stderr, r
    r = ctl(d, "tenant", "create", "ctl2", "--workers", "x")
    assert r.returncode == 2, r
    r = ctl(d, "tenant", "create", "ctl2", "--memory-limit", "1K")
    assert r.returncode == 1 and "memory-limit" in r.stderr, r
    r = ctl(d, "tenant", "show", "nosuch")
    assert r.returncode == 1 and "unknown tenant" in r.stderr, r
    r = ctl(d, "tenant", "delete", "ctl1")
    assert r.returncode == 0 and "deleted" in r.stdout, r
    assert "ctl1" not in names(d)
    d.assert_clean_stop()


def test_supervisor_silent(d):
    """Requests waiting for the supervisor are bounded (16), and end with
    503 when it does not answer (after 10 s)."""
    import threading
    import time

    results = []
    lock = threading.Lock()

    def one():
        t0 = time.monotonic()
        st, body = api(d, "GET", "")
        with lock:
            results.append((st, body, time.monotonic() - t0))

    os.kill(d.proc.pid, signal.SIGSTOP)
    try:
        threads = [threading.Thread(target=one, daemon=True)
                   for _ in range(24)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
    finally:
        os.kill(d.proc.pid, signal.SIGCONT)
    assert len(results) == 24
    for st, body, _ in results:
        assert_error(st, body, 503, "unavailable")
    waited = [r for r in results
              if r[1]["error"]["message"] == "the supervisor did not answer"]
    refused = [r for r in results if r[1]["error"]["message"] ==
               "too many tenant requests in progress"]
    assert len(waited) == 16 and len(refused) == 8, results
    assert all(9.5 <= r[2] < 13 for r in waited), waited
    assert all(r[2] < 5 for r in refused), refused
    # The late answers find nobody; the next request is served.
    st, body = api(d, "GET", "")
    assert st == 200 and {t["name"] for t in body["tenants"]} == \
        {"default", "other"}, (st, body)
    d.assert_clean_stop()
