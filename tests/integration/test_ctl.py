"""palyractl against a running daemon."""
import os
import subprocess

import pytest

from conftest import (OFFLINE_REPLY, PALYRACTL, check_successful_run,
                      run_stream)


def ctl(*args, timeout=30):
    if not os.access(PALYRACTL, os.X_OK):
        pytest.fail(f"{PALYRACTL} not built", pytrace=False)
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    return subprocess.run([PALYRACTL, *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, env=env)


def test_health(palyra):
    r = ctl("-g", palyra.grpc_addr, "health")
    assert r.returncode == 0, r
    assert r.stdout.startswith("SERVING"), r


def test_health_unreachable():
    from conftest import free_port
    r = ctl("-g", f"127.0.0.1:{free_port()}", "health")
    assert r.returncode != 0, r
    assert "SERVING" not in r.stdout


def test_token_create(palyra, channel):
    r = ctl("-u", palyra.http_url, "-s", palyra.state, "token", "create",
            "--tenant", "default")
    assert r.returncode == 0, r
    lines = r.stdout.splitlines()
    assert len(lines) == 1, f"stdout is not the token alone: {r.stdout!r}"
    tok = lines[0]
    assert tok and tok == tok.strip() and " " not in tok
    check_successful_run(run_stream(channel, tok, "ctl token"), "ctl token")


def test_token_create_unknown_tenant(palyra):
    r = ctl("-u", palyra.http_url, "-s", palyra.state, "token", "create",
            "--tenant", "nosuchtenant")
    assert r.returncode != 0, r
    assert r.stdout == ""


def test_run(palyra):
    r = ctl("-g", palyra.grpc_addr, "-u", palyra.http_url, "-s", palyra.state,
            "run", "--tenant", "default", "hello")
    assert r.returncode == 0, r
    assert r.stdout.rstrip("\n") == OFFLINE_REPLY.format("hello"), r


def test_run_with_token(palyra, token):
    r = ctl("-g", palyra.grpc_addr, "run", "--token", token, "with a token")
    assert r.returncode == 0, r
    assert r.stdout.rstrip("\n") == OFFLINE_REPLY.format("with a token"), r


def test_run_bogus_token(palyra):
    r = ctl("-g", palyra.grpc_addr, "run", "--token", "bogus", "x")
    assert r.returncode == 1, r
    assert OFFLINE_REPLY.format("x") not in r.stdout
    assert r.stderr.strip(), "no error message on stderr"
