"""Process lifecycle: start, stop, config check, restarts, isolation."""
import os
import signal
import subprocess
import time

import grpc
import pytest

from conftest import (DEFAULT_CONFIG, PALYRAD, Daemon, check_successful_run,
                      descendants, exe_name, poll, run_stream)

CHILD_EXES = {"palyra-journald", "palyra-front", "palyra-worker"}


def test_children_are_the_expected_executables(fresh_daemon):
    d = fresh_daemon
    check_successful_run(run_stream(d.channel, d.mint_token(), "warm"), "warm")
    check_successful_run(run_stream(d.channel, d.mint_token("other", "o"), "w"), "w")
    names = set(d.children().values())
    assert CHILD_EXES <= names, f"children: {d.children()}"
    assert len(d.pids_of("palyra-journald")) == 1
    assert len(d.pids_of("palyra-front")) == 1
    assert len(d.pids_of("palyra-worker", "default")) >= 1
    assert len(d.pids_of("palyra-worker", "other")) >= 1
    d.assert_clean_stop()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_everything(fresh_daemon, sig):
    d = fresh_daemon
    tok = d.mint_token()
    check_successful_run(run_stream(d.channel, tok, "before stop"), "before stop")
    assert len(d.children()) >= 3
    d.assert_clean_stop(sig)


def test_stop_during_runs(fresh_daemon):
    # Streams open on the gRPC port do not hold the stop back.
    import threading
    d = fresh_daemon
    tok = d.mint_token()
    ch = d.new_channel()
    results = []
    ts = [threading.Thread(target=lambda: results.append(
        run_stream(ch, tok, "busy", keep_open=True, timeout=20))) for _ in range(5)]
    for t in ts:
        t.start()
    d.assert_clean_stop()
    for t in ts:
        t.join(20)
        assert not t.is_alive(), "a client hangs after the daemon stopped"
    ch.close()


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return str(path)


def config_text(tmp_path, body_extra=""):
    return DEFAULT_CONFIG.format(state=tmp_path / "state", grpc_port=1, http_port=2) \
        + body_extra


def test_check_good_config(tmp_path):
    conf = write(tmp_path / "good.conf",
                 config_text(tmp_path, 'tenant "empty" { }\n# a comment\n'))
    r = subprocess.run([PALYRAD, "-n", "-f", conf], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 0, r
    assert not os.path.exists(tmp_path / "state" / "admin.token")


def test_check_unknown_directive(tmp_path):
    conf = write(tmp_path / "bad.conf",
                 'state-dir "/tmp/x"\nlisten grpc 127.0.0.1:7443\n'
                 'frobnicate yes\nlisten http 127.0.0.1:7142\n')
    r = subprocess.run([PALYRAD, "-n", "-f", conf], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 1, r
    assert r.stderr.startswith(conf + ":3:1: "), r.stderr
    assert len(r.stderr.split(": ", 1)[1].strip()) > 0


LISTEN = 'listen grpc 127.0.0.1:7443\nlisten http 127.0.0.1:7142\n'


@pytest.mark.parametrize("text,lines", [
    ('state-dir "/tmp/x"\nlisten grpc 127.0.0.1:notaport\nlisten http 127.0.0.1:7142\n',
     {2}),
    ('state-dir "/tmp/x"\n' + LISTEN
     + 'provider "offline" { type offline }\n'
     + 'tenant "a" {\n  agent "b" { providers "nope" }\n}\n', {6}),
    (LISTEN + 'state-dir "/tmp/x\n', {3}),
    ('state-dir "/tmp/x"\n' + LISTEN + 'tenant "a" {\n', {4, 5}),
])
def test_check_errors_name_the_line(tmp_path, text, lines):
    conf = write(tmp_path / "bad.conf", text)
    r = subprocess.run([PALYRAD, "-n", "-f", conf], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 1, r
    assert r.stderr.startswith(conf + ":"), r.stderr
    line, col = r.stderr[len(conf) + 1:].split(":", 2)[:2]
    assert line.isdigit() and int(line) in lines, f"want line {lines}: {r.stderr!r}"
    assert col.isdigit() and int(col) >= 1, r.stderr


def test_bad_config_without_n_starts_nothing(tmp_path):
    conf = write(tmp_path / "bad.conf", 'frobnicate yes\n')
    p = subprocess.Popen([PALYRAD, "-d", "-f", conf], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _, err = p.communicate(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 1, err
    assert f"{conf}:1:1: " in err


def test_missing_config_file(tmp_path):
    r = subprocess.run([PALYRAD, "-n", "-f", str(tmp_path / "nope.conf")],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 1, r
    assert "nope.conf" in r.stderr


def test_killed_worker_is_restarted(fresh_daemon):
    d = fresh_daemon
    tok = d.mint_token()
    other_tok = d.mint_token("other", "o")
    check_successful_run(run_stream(d.channel, tok, "before"), "before")
    check_successful_run(run_stream(d.channel, other_tok, "o before"), "o before")
    workers = d.pids_of("palyra-worker", "default")
    assert workers, f"no worker for tenant default among {d.children()}"
    others = d.pids_of("palyra-worker", "other")
    front = d.pids_of("palyra-front")
    journald = d.pids_of("palyra-journald")
    for pid in workers:
        os.kill(pid, signal.SIGKILL)
    new = poll(lambda: [p for p in d.pids_of("palyra-worker", "default")
                        if p not in workers],
               10, what="a new worker of tenant default")
    assert new
    # It serves runs again (allowing the new worker to attach first).
    def works():
        res = run_stream(d.channel, tok, "after restart", timeout=5)
        return res if res.code == grpc.StatusCode.OK else None
    res = poll(works, 10, what="a successful run after the restart")
    check_successful_run(res, "after restart")
    # Nobody else was touched.
    assert d.pids_of("palyra-front") == front
    assert d.pids_of("palyra-journald") == journald
    assert d.pids_of("palyra-worker", "other") == others
    check_successful_run(run_stream(d.channel, other_tok, "o after"), "o after")
    d.assert_clean_stop()


def test_state_dir_layout(fresh_daemon):
    d = fresh_daemon
    check_successful_run(run_stream(d.channel, d.mint_token(), "x"), "x")
    assert os.path.isfile(os.path.join(d.state, "system.db"))
    for t in ("default", "other"):
        assert os.path.isfile(d.journal_path(t)), t
    mode = os.stat(os.path.join(d.state, "admin.token")).st_mode & 0o777
    assert mode == 0o600
    d.assert_clean_stop()


def test_admin_token_survives_restart(tmp_path):
    d = Daemon(tmp_path / "d").start()
    try:
        first = d.admin_token
        tok = d.mint_token()
        d.assert_clean_stop()
        d2 = Daemon(tmp_path / "d").start()
        try:
            assert d2.admin_token == first
            # Tokens are stored (as hashes) and still valid after a restart.
            check_successful_run(run_stream(d2.channel, tok, "again"), "again")
            d2.assert_clean_stop()
        finally:
            if not d2.stopped:
                d2.kill()
    finally:
        if not d.stopped:
            d.kill()
