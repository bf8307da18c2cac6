"""GET /admin/v1/processes and `palyractl status`: the supervisor's process
table as the operator sees it, checked against the kernel's own view."""
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import threading
import time

import conftest
from conftest import (BUILD, PALYRACTL, Daemon, cmdline, http_request,
                      poll, run_stream, start_workers)

PATH = "/admin/v1/processes"
EXE = {"journald": "palyra-journald", "front": "palyra-front",
       "worker": "palyra-worker"}


def listing(d):
    st, body = http_request(d, "GET", PATH, token=d.admin_token)
    assert st == 200, f"GET {PATH}: HTTP {st} {body!r}"
    assert isinstance(body, dict) and isinstance(body.get("processes"), list), body
    return body


def by_name(body):
    """(kind, tenant) -> process entry; each appears once."""
    out = {}
    for p in body["processes"]:
        key = (p["kind"], p["tenant"])
        assert key not in out, f"{key} listed twice: {body}"
        out[key] = p
    return out


def proc_status(pid):
    """The fields of /proc/PID/status as strings."""
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def expected_keys(d):
    return {("journald", None), ("front", None)} | \
        {("worker", t) for t in d.tenants}


def kernel_pid(d, kind, tenant):
    """The pid of the one live child of that kind (and tenant) in /proc."""
    pids = []
    for pid, name in d.children().items():
        # A binary relinked while the daemon runs reads "NAME (deleted)".
        if name.removesuffix(" (deleted)") != EXE[kind]:
            continue
        args = cmdline(pid)
        if tenant is not None and not any(
                a == "-t" and b == tenant for a, b in zip(args, args[1:])):
            continue
        pids.append(pid)
    assert len(pids) == 1, f"{kind}[{tenant}]: children {d.children()}"
    return pids[0]


def test_lists_every_child_with_its_real_pid(palyra):
    t0 = time.monotonic()
    start_workers(palyra)
    body = listing(palyra)
    procs = by_name(body)
    assert set(procs) == expected_keys(palyra), body
    for (kind, tenant), p in procs.items():
        pid = kernel_pid(palyra, kind, tenant)
        assert p["pid"] == pid, f"{kind}[{tenant}]: listed {p['pid']}, kernel {pid}"
        assert p["state"] == "ready", p
        assert p["restarts"] == 0, p
        assert p["last_exit"] is None, p
        assert p["generation"] == 1, p
        assert isinstance(p["uptime_seconds"], (int, float)), p
        assert 0 < p["uptime_seconds"] < 3600, p
        # Ids and sandbox facts agree with what the kernel says.
        ks = proc_status(pid)
        assert p["uid"] == int(ks["Uid"].split()[0]), (p, ks["Uid"])
        assert p["gid"] == int(ks["Gid"].split()[0]), (p, ks["Gid"])
        applied, skipped = p["sandbox"]["applied"], p["sandbox"]["skipped"]
        assert applied, f"{kind}[{tenant}]: no sandbox facts"
        assert all(isinstance(s, str) and s for s in applied + skipped), p
        assert ("no_new_privs" in applied) == (ks["NoNewPrivs"] == "1"), (p, ks)
        assert any(s.startswith("seccomp") for s in applied) == \
            (ks["Seccomp"] == "2"), (p, ks)
        assert "cgroup" in p, p
    # Two tenants' workers run as different users when ids are switched.
    if os.geteuid() == 0:
        assert procs[("worker", "default")]["uid"] != procs[("worker", "other")]["uid"]
    sup = body["supervisor"]
    assert sup["pid"] == palyra.proc.pid, sup
    assert 0 < sup["uptime_seconds"] < 3600 + time.monotonic() - t0, sup


def test_needs_the_admin_token(palyra, token):
    for tok in (None, "pt_not_a_token", token):
        st, body = http_request(palyra, "GET", PATH, token=tok)
        assert st == 401, (tok, st, body)
        assert body["error"]["code"] == "unauthenticated", body


def test_other_methods_are_refused(palyra):
    for method in ("POST", "DELETE", "PUT"):
        st, body = http_request(palyra, method, PATH, body={},
                                token=palyra.admin_token)
        assert st == 405, (method, st, body)
        assert body["error"]["code"] == "method_not_allowed", body


def test_idle_worker_slots_are_listed_idle(fresh_daemon):
    d = fresh_daemon
    # Workers start on first use: none runs yet, and that is healthy.
    procs = by_name(listing(d))
    assert set(procs) == expected_keys(d), procs
    for t in d.tenants:
        p = procs[("worker", t)]
        assert p["state"] == "idle" and p["pid"] is None, p
        assert p["uptime_seconds"] is None and p["restarts"] == 0, p
        assert p["index"] == 0, p
    assert not d.pids_of("palyra-worker")
    r = ctl(d, "status")
    assert r.returncode == 0, r
    rows = {tuple(line.split()[:2]): line.split()
            for line in r.stdout.splitlines()[1:]}
    assert rows[("worker", "default")][2] == "-", r.stdout
    assert rows[("worker", "default")][4] == "idle", r.stdout
    # A run of one tenant starts its worker and no other.
    start_workers(d, ("default",))
    procs = by_name(listing(d))
    assert procs[("worker", "default")]["state"] == "ready", procs
    assert procs[("worker", "other")]["state"] == "idle", procs
    assert ctl(d, "status").returncode == 0
    d.assert_clean_stop()


def test_killed_worker_shows_new_pid_and_restart(fresh_daemon):
    d = fresh_daemon
    start_workers(d)
    before = by_name(listing(d))
    old = before[("worker", "default")]["pid"]
    assert old == kernel_pid(d, "worker", "default")
    os.kill(old, signal.SIGKILL)

    def restarted():
        p = by_name(listing(d))[("worker", "default")]
        return p if p["pid"] not in (None, old) and p["state"] == "ready" else None
    p = poll(restarted, 10, what="the restarted worker in the listing")
    assert p["pid"] == kernel_pid(d, "worker", "default"), (p, d.children())
    assert p["restarts"] == 1, p
    assert p["last_exit"] == "signal 9", p
    assert p["generation"] == before[("worker", "default")]["generation"] + 1, p
    after = by_name(listing(d))
    for key in (("journald", None), ("front", None), ("worker", "other")):
        assert after[key]["pid"] == before[key]["pid"], (key, after[key])
        assert after[key]["restarts"] == 0, after[key]
    d.assert_clean_stop()


def raw_get(d, token):
    """Sends one listing request on a socket of its own; returns it."""
    s = socket.create_connection(("127.0.0.1", d.http_port), timeout=10)
    s.sendall((f"GET {PATH} HTTP/1.1\r\nHost: x\r\n"
               f"Authorization: Bearer {token}\r\nConnection: close\r\n\r\n").encode())
    return s


def raw_reply(s):
    """(status, JSON body, seconds waited) of a raw_get() socket."""
    t0 = time.monotonic()
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body), time.monotonic() - t0


def test_silent_supervisor_gives_503_and_bounds_waiting(fresh_daemon):
    d = fresh_daemon
    tok = d.admin_token
    front = kernel_pid(d, "front", None)
    n = 16      # FE_PROCESS_REQUESTS_MAX
    os.kill(d.proc.pid, signal.SIGSTOP)
    try:
        # A client that leaves before the answer; its request is freed.
        gone = raw_get(d, tok)
        gone.close()
        t0 = time.monotonic()
        socks = [raw_get(d, tok) for _ in range(n + 1)]
        replies = [None] * len(socks)

        def read(i):
            replies[i] = raw_reply(socks[i])
        ts = [threading.Thread(target=read, args=(i,)) for i in range(len(socks))]
        for t in ts:
            t.start()
        for t in ts:
            t.join(15)
        elapsed = time.monotonic() - t0
    finally:
        os.kill(d.proc.pid, signal.SIGCONT)
    assert all(r is not None for r in replies), replies
    assert all(st == 503 for st, _, _ in replies), replies
    msgs = [b["error"]["message"] for _, b, _ in replies]
    # At most n wait; those over the limit are refused at once.
    busy = [r for r in replies if "too many" in r[1]["error"]["message"]]
    timed_out = [r for r in replies if r[1]["error"]["message"] ==
                 "the supervisor did not answer"]
    assert len(busy) >= 1 and len(busy) + len(timed_out) == n + 1, msgs
    assert len(timed_out) <= n, msgs
    assert all(r[2] < 1.5 for r in busy), busy
    assert 1.5 <= elapsed < 6, elapsed
    # The supervisor is back: late answers are dropped, new ones served.
    body = listing(d)
    assert set(by_name(body)) == expected_keys(d)
    assert kernel_pid(d, "front", None) == front, "the front was restarted"
    assert by_name(body)[("front", None)]["restarts"] == 0
    d.assert_clean_stop()


# ---------------------------------------------------------------- palyractl

def ctl(d, *args):
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.pop("PALYRA_ADMIN_TOKEN", None)
    return subprocess.run([PALYRACTL, "-u", d.http_url, "-s", d.state, *args],
                          capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL, env=env)


def test_ctl_status_table(palyra):
    start_workers(palyra)
    r = ctl(palyra, "status")
    assert r.returncode == 0, r
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["KIND", "TENANT", "PID", "UID", "STATE",
                                "RESTARTS", "UPTIME", "SANDBOX", "CGROUP"], r.stdout
    rows = [line.split() for line in lines[1:]]
    assert len(rows) == len(expected_keys(palyra)), r.stdout
    got = {(row[0], None if row[1] == "-" else row[1]): row for row in rows}
    assert set(got) == expected_keys(palyra), r.stdout
    for (kind, tenant), row in got.items():
        assert int(row[2]) == kernel_pid(palyra, kind, tenant), row
        assert row[4] == "ready" and row[5] == "0", row
        assert "seccomp" in row[7] or row[7].startswith("partial"), row
    # The columns are aligned: every row starts each column at the same place.
    starts = [lines[0].index(h) for h in ("PID", "STATE", "SANDBOX")]
    for line in lines[1:]:
        for s in starts:
            assert line[s - 2:s] == "  " and line[s] != " ", (line, s)


def test_ctl_status_json(palyra):
    start_workers(palyra)
    r = ctl(palyra, "--json", "status")
    assert r.returncode == 0, r
    body = json.loads(r.stdout)
    assert {p["pid"] for p in body["processes"]} == \
        {kernel_pid(palyra, k, t) for k, t in expected_keys(palyra)}


def test_ctl_status_without_token(palyra, tmp_path):
    tmp_path.joinpath("admin.token").write_text("pt_wrong\n")
    r = subprocess.run([PALYRACTL, "-u", palyra.http_url, "-s", str(tmp_path),
                        "status"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1, r
    assert r.stdout == "", r
    assert "admin token" in r.stderr, r


def crashy_tree(tmp_path):
    """A copy of the build whose worker exits 1 at once for tenant other."""
    root = tmp_path / "tree"
    (root / "bin").mkdir(parents=True)
    (root / "libexec").mkdir()
    shutil.copy2(os.path.join(BUILD, "bin", "palyrad"), root / "bin")
    for exe in ("palyra-front", "palyra-journald"):
        os.symlink(os.path.join(BUILD, "libexec", exe), root / "libexec" / exe)
    wrapper = root / "libexec" / "palyra-worker"
    wrapper.write_text(
        "#!/bin/sh\n"
        'case " $* " in *" -t other "*) exit 1 ;; esac\n'
        f'exec "{os.path.join(BUILD, "libexec", "palyra-worker")}" "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP |
                  stat.S_IXOTH)
    return str(root / "bin" / "palyrad")


def test_ctl_status_fails_when_a_process_is_not_ready(tmp_path, monkeypatch):
    monkeypatch.setattr(conftest, "PALYRAD", crashy_tree(tmp_path))
    d = Daemon(tmp_path / "run")
    d.start()
    try:
        start_workers(d, ("default",))
        # The crashing worker starts (and keeps crashing) once wanted; the
        # call itself gives up after its client deadline.
        res = run_stream(d.channel, d.mint_token("other", "o"), "x",
                         timeout=1.0)
        assert res.code != conftest.grpc.StatusCode.OK, res

        def crashed():
            p = by_name(listing(d))[("worker", "other")]
            return p if p["restarts"] >= 1 else None
        p = poll(crashed, 10, what="the crashing worker in the listing")
        assert p["last_exit"] == "exit 1: fatal error", p
        assert p["state"] != "ready", p
        # A restart in progress is briefly "starting", which is healthy;
        # back-off and parked are not.
        r = poll(lambda: (lambda r: r if r.returncode == 1 else None)(
            ctl(d, "status")), 10, what="palyractl status to fail")
        rows = {tuple(line.split()[:2]): line.split()
                for line in r.stdout.splitlines()[1:]}
        assert rows[("worker", "other")][4] != "ready", r.stdout
        assert rows[("worker", "default")][4] == "ready", r.stdout
        r = poll(lambda: (lambda r: r if r.returncode == 1 else None)(
            ctl(d, "--json", "status")), 10, what="status --json to fail")
        json.loads(r.stdout)
    finally:
        d.assert_clean_stop()
