"""kill -9 of every child kind, repeatedly: each is restarted, runs work
again, and the processes that survive (palyrad, and the other children)
hold no more descriptors than before."""
import os
import signal

import grpc

from conftest import (Daemon, check_successful_run, cmdline, poll,
                      run_stream, start_workers)


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def run_ok(d, tok, text):
    """A run succeeds within a deadline (children restart meanwhile)."""
    def attempt():
        res = run_stream(d.new_channel(), tok, text, timeout=5)
        return res if res.code == grpc.StatusCode.OK else None
    res = poll(attempt, 15, interval=0.05, what=f"a successful run: {text}")
    check_successful_run(res, text)


def survivors(d):
    """{name: fd count} of palyrad and every child now, by kind."""
    out = {"palyrad": fd_count(d.proc.pid)}
    for pid, name in d.children().items():
        args = cmdline(pid)
        key = name
        if "-t" in args:
            key += " " + args[args.index("-t") + 1]
        out[key] = fd_count(pid)
    return out


def test_kill_each_kind_leaks_nothing(tmp_path):
    d = Daemon(tmp_path).start()
    try:
        tok = d.mint_token("default", "k")
        start_workers(d)
        run_ok(d, tok, "warm")
        before = survivors(d)

        for kind, tenant in (("palyra-worker", "default"),
                             ("palyra-journald", None),
                             ("palyra-front", None)):
            for i in range(3):
                pids = d.pids_of(kind, tenant)
                assert pids, f"no {kind} to kill: {d.children()}"
                os.kill(pids[0], signal.SIGKILL)
                poll(lambda: pids[0] not in d.pids_of(kind, tenant), 10,
                     what=f"{kind} {pids[0]} to die")
                run_ok(d, tok, f"after {kind} kill {i}")
        start_workers(d)
        after = survivors(d)
        for name, count in before.items():
            assert name in after, f"{name} missing after the kills: {after}"
            assert after[name] <= count, \
                f"{name}: {count} -> {after[name]} descriptors"
    finally:
        d.assert_clean_stop()
