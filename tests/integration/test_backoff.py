"""A worker that dies at start is backed off with growing delays while the
other tenants go on serving."""
import os
import re
import shutil
import stat

import grpc

import conftest
from conftest import BUILD, Daemon, check_successful_run, poll, run_stream

CONFIG = """\
state-dir "{state}"
listen grpc 127.0.0.1:{grpc_port}
listen http 127.0.0.1:{http_port}
provider "offline" {{ type offline }}
tenant "good" {{ }}
tenant "crashy" {{ }}
"""


def make_tree(tmp_path):
    """A copy of the build whose worker dies at once for tenant crashy."""
    root = tmp_path / "tree"
    (root / "bin").mkdir(parents=True)
    (root / "libexec").mkdir()
    shutil.copy2(os.path.join(BUILD, "bin", "palyrad"), root / "bin")
    for exe in ("palyra-front", "palyra-journald"):
        os.symlink(os.path.join(BUILD, "libexec", exe), root / "libexec" / exe)
    real = os.path.join(BUILD, "libexec", "palyra-worker")
    wrapper = root / "libexec" / "palyra-worker"
    wrapper.write_text(
        "#!/bin/sh\n"
        'case " $* " in *" -t crashy "*) exit 1 ;; esac\n'
        f'exec "{real}" "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP |
                  stat.S_IXOTH)
    return str(root / "bin" / "palyrad")


def delays(log):
    return [int(m) for m in re.findall(
        r"worker\[crashy#0\]: restarting in (\d+) ms", log)]


def test_crashing_worker_is_backed_off(tmp_path, monkeypatch):
    monkeypatch.setattr(conftest, "PALYRAD", make_tree(tmp_path))
    d = Daemon(tmp_path / "run", CONFIG, tenants=("good",))
    # The crashy worker never becomes ready, so readiness is the front's:
    # the daemon serves the good tenant while the other one crashes.
    d.start()
    try:
        # Workers start on first use: a run of crashy starts its worker,
        # which then keeps dying; the call gives up at its deadline.
        res = run_stream(d.channel, d.mint_token("crashy", "c"), "x",
                         timeout=1.0)
        assert res.code != grpc.StatusCode.OK, res
        poll(lambda: len(delays(d.log_text())) >= 3, 15,
             what="three restarts of the crashing worker")
        got = delays(d.log_text())
        # Early deaths start at one second and double each time.
        assert got[0] >= 1000, got
        assert all(b > a for a, b in zip(got, got[1:3])), got
        tok = d.mint_token("good", "g")
        for i in range(5):
            check_successful_run(run_stream(d.channel, tok, f"run {i}"),
                                 f"run {i}")
        assert "worker[good#0]: pid" not in d.log_text(), \
            "the healthy worker was restarted"
    finally:
        d.assert_clean_stop()
