"""SIGHUP reload: tenants added and removed, others untouched, bad files
keep the running configuration."""
import os
import signal

import grpc

from conftest import (Daemon, check_successful_run, poll, run_stream,
                      start_workers)

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
