"""SIGHUP reload: tenants added and removed, others untouched, bad files
keep the running configuration."""
import os
import re
import signal
import subprocess

import grpc

from conftest import (PALYRACTL, Daemon, check_successful_run, http_request,
                      poll, run_stream, start_workers)

BASE = """\
state-dir "{{state}}"
listen grpc 127.0.0.1:{{grpc_port}}
listen http 127.0.0.1:{{http_port}}
provider "offline" {{{{ type offline }}}}
{tenants}
"""


def config(*tenants):
    body = "\n".join(f'tenant "{t}" {{{{ }}}}' for t in tenants)
    return BASE.format(tenants=body)


def rewrite(d, template):
    with open(d.conf, "w") as f:
        f.write(template.format(state=d.state, grpc_port=d.grpc_port,
                                http_port=d.http_port))


def reload(d):
    mark = len(d.log_text())
    d.proc.send_signal(signal.SIGHUP)
    return mark


def test_reload_adds_and_removes_tenants(tmp_path):
    d = Daemon(tmp_path, config("a", "b"), tenants=("a", "b")).start()
    try:
        # Workers start on first use.
        start_workers(d)
        keep = {
            "journald": d.pids_of("palyra-journald"),
            "front": d.pids_of("palyra-front"),
            "a": d.pids_of("palyra-worker", "a"),
        }
        b_pids = d.pids_of("palyra-worker", "b")
        assert all(keep.values()) and b_pids
        tok_a = d.mint_token("a", "alice")
        tok_b = d.mint_token("b", "bob")

        rewrite(d, config("a", "c"))
        mark = reload(d)
        poll(lambda: "reloaded: 2 tenant(s), 1 added, 1 removed"
             in d.log_text()[mark:], 10, what="reload log line")
        # The added tenant has no worker until its first run.
        assert not d.pids_of("palyra-worker", "c")
        start_workers(d, ("c",))
        poll(lambda: not d.pids_of("palyra-worker", "b"), 10,
             what="worker of the removed tenant to stop")

        # Unchanged processes were not touched.
        assert d.pids_of("palyra-journald") == keep["journald"]
        assert d.pids_of("palyra-front") == keep["front"]
        assert d.pids_of("palyra-worker", "a") == keep["a"]

        # The added tenant serves, the kept one too, the removed one not.
        tok_c = d.mint_token("c", "carol")
        check_successful_run(run_stream(d.channel, tok_c, "new tenant"),
                             "new tenant")
        check_successful_run(run_stream(d.channel, tok_a, "still here"),
                             "still here")
        res = run_stream(d.channel, tok_b, "gone")
        assert res.code in (grpc.StatusCode.UNAVAILABLE,
                            grpc.StatusCode.UNAUTHENTICATED), res
        assert not [e for e in res.events
                    if e.WhichOneof("event") == "final"]
    finally:
        d.assert_clean_stop()


def test_reload_with_errors_keeps_running_config(tmp_path):
    d = Daemon(tmp_path, config("a")).start()
    try:
        pids = sorted(d.children())
        with open(d.conf, "a") as f:
            f.write("tenant \"broken\" { frobnicate 1 }\n")
        mark = reload(d)
        poll(lambda: "reload failed, keeping the running configuration"
             in d.log_text()[mark:], 10, what="reload failure log line")
        tail = d.log_text()[mark:]
        # The message names the file, line and column of the error.
        assert f"{d.conf}:6:" in tail or "palyrad.conf:6:" in tail, tail
        assert sorted(d.children()) == pids
        tok = d.mint_token("a", "alice")
        check_successful_run(run_stream(d.channel, tok, "unchanged"),
                             "unchanged")
        assert os.path.exists(os.path.join(d.state, "tenants", "a"))
        assert not os.path.exists(os.path.join(d.state, "tenants", "broken"))
    finally:
        d.assert_clean_stop()


def test_reload_through_the_admin_api(tmp_path):
    d = Daemon(tmp_path, config("a"), tenants=("a",)).start()
    try:
        # Without the admin token: 401, nothing reloaded.
        st, body = http_request(d, "POST", "/admin/v1/reload", body={})
        assert st == 401, body
        st, body = http_request(d, "GET", "/admin/v1/reload",
                                token=d.admin_token)
        assert st == 405, body

        rewrite(d, config("a", "n"))
        st, body = http_request(d, "POST", "/admin/v1/reload", body={},
                                token=d.admin_token)
        assert st == 200, body
        assert body["reloaded"] is True
        assert sorted(t["name"] for t in body["tenants"]) == ["a", "n"]
        check_successful_run(run_stream(d.channel, d.mint_token("n", "nia"),
                                        "hi n"), "hi n")

        # A file with an error: 409 naming FILE:LINE:COL, the running
        # configuration (with n) stays.
        with open(d.conf, "a") as f:
            f.write("tenantt \"x\" { }\n")
        st, body = http_request(d, "POST", "/admin/v1/reload", body={},
                                token=d.admin_token)
        assert st == 409, body
        msg = body["error"]["message"]
        assert "running configuration is kept" in msg, msg
        assert re.search(r"palyrad\.conf:\d+:\d+: ", msg), msg
        st, body = http_request(d, "GET", "/admin/v1/tenants/n",
                                token=d.admin_token)
        assert st == 200, body

        # palyractl reload: the same, with its exit codes.
        r = subprocess.run([PALYRACTL, "-u", d.http_url, "-s", str(d.state),
                            "reload"], capture_output=True, text=True,
                           timeout=30)
        assert r.returncode == 1 and "palyrad.conf:" in r.stderr, r
        rewrite(d, config("a"))
        r = subprocess.run([PALYRACTL, "-u", d.http_url, "-s", str(d.state),
                            "reload"], capture_output=True, text=True,
                           timeout=30)
        assert r.returncode == 0 and r.stdout == "reloaded: 1 tenants\n", r
        poll(lambda: not d.pids_of("palyra-worker", "n"), 10,
             what="worker of the removed tenant to stop")
    finally:
        d.stop()
