"""Tenant tokens: create (with expiry), list, revoke, role validation, and
the rate limit of authentication failures per source address.

These tests run on daemons of their own: the failures they provoke must not
use up the shared daemon's per-address budget (loopback is not exempt).
"""
import http.client
import json
import os
import socket
import subprocess
import threading
import time

import grpc
import pytest

from conftest import (CHANNEL_OPTIONS, PALYRACTL, Daemon, check_successful_run,
                      http_request, poll, run_stream)

UNAUTH = grpc.StatusCode.UNAUTHENTICATED
EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED
# common/limits.h
FE_AUTH_FAIL_BURST = 10
FE_AUTH_FAIL_PER_MIN = 30
REFILL_S = 60 / FE_AUTH_FAIL_PER_MIN    # one failure's worth


def ctl(d, *args, timeout=30):
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    return subprocess.run([PALYRACTL, "-u", d.http_url, "-s", d.state,
                           "-g", d.grpc_addr, *args], capture_output=True,
                          text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, env=env)


@pytest.fixture(scope="module")
def tokd(tmp_path_factory):
    d = Daemon(tmp_path_factory.mktemp("tokens"))
    d.start()
    yield d
    d.assert_clean_stop()


def create(d, tenant="default", principal="bob", role="user", **extra):
    body = {"tenant": tenant, "principal": principal, "role": role, **extra}
    return http_request(d, "POST", "/admin/v1/tokens", body,
                        token=d.admin_token)


def listing(d, query=""):
    st, body = http_request(d, "GET", "/admin/v1/tokens" + query,
                            token=d.admin_token)
    assert st == 200, (st, body)
    return body


def test_list_shows_tokens_without_secrets(tokd):
    st, made = create(tokd, principal="lister", role="operator")
    assert st == 201, made
    secret = made["token"]
    st, other = create(tokd, tenant="other", principal="lister")
    assert st == 201, other

    st, raw = http_request(tokd, "GET", "/admin/v1/tokens?tenant=default",
                           token=tokd.admin_token)
    assert st == 200, raw
    text = json.dumps(raw)
    assert secret not in text and other["token"] not in text
    rows = {t["token_id"]: t for t in raw["tokens"]}
    assert made["token_id"] in rows and other["token_id"] not in rows
    row = rows[made["token_id"]]
    assert set(row) == {"token_id", "tenant", "principal", "role",
                        "created_unix", "expires_unix", "revoked"}, row
    assert (row["tenant"], row["principal"], row["role"]) == \
        ("default", "lister", "operator")
    assert abs(row["created_unix"] - time.time()) < 60
    assert row["expires_unix"] == 0 and row["revoked"] is False

    every = {t["token_id"] for t in listing(tokd)["tokens"]}
    assert {made["token_id"], other["token_id"]} <= every

    r = ctl(tokd, "token", "list", "--tenant", "default")
    assert r.returncode == 0, r
    assert made["token_id"] in r.stdout and other["token_id"] not in r.stdout
    assert secret not in r.stdout + r.stderr
    assert "operator" in r.stdout and "never" in r.stdout
    r = ctl(tokd, "--json", "token", "list")
    assert r.returncode == 0, r
    ids = {t["token_id"] for t in json.loads(r.stdout)["tokens"]}
    assert {made["token_id"], other["token_id"]} <= ids

    # The listing needs the admin token; a tenant token is not one.
    st, body = http_request(tokd, "GET", "/admin/v1/tokens", token=secret)
    assert st == 401, body
    st, body = http_request(tokd, "GET", "/admin/v1/tokens?tenant=../x",
                            token=tokd.admin_token)
    assert st == 400 and body["error"]["code"] == "bad_request", body


def test_ctl_create_shows_the_token_once(tokd):
    r = ctl(tokd, "token", "create", "--tenant", "default", "--principal",
            "once", "--role", "admin")
    assert r.returncode == 0, r
    secret = r.stdout.strip()
    assert secret.startswith("pt_"), r
    check_successful_run(run_stream(tokd.channel, secret, "hi there"),
                         "hi there")
    # Never again: not in the listing, in no form.
    r = ctl(tokd, "--json", "token", "list")
    assert secret not in r.stdout and secret[3:] not in r.stdout


def test_revoke_takes_effect_at_once(tokd):
    st, made = create(tokd, principal="revokee")
    assert st == 201, made
    check_successful_run(run_stream(tokd.channel, made["token"], "before"),
                         "before")
    r = ctl(tokd, "token", "revoke", made["token_id"])
    assert r.returncode == 0, r
    res = run_stream(tokd.channel, made["token"], "after")
    assert res.code == UNAUTH, res
    assert res.events == []
    row = [t for t in listing(tokd, "?tenant=default")["tokens"]
           if t["token_id"] == made["token_id"]]
    assert row and row[0]["revoked"] is True, row

    # Unknown ids: 404 in JSON, and palyractl fails.
    for tid in ("0123456789abcdef", "no-such-token"):
        st, body = http_request(tokd, "DELETE", "/admin/v1/tokens/" + tid,
                                token=tokd.admin_token)
        assert st == 404 and body["error"]["code"] == "not_found", body
    r = ctl(tokd, "token", "revoke", "0123456789abcdef")
    assert r.returncode != 0 and "no such token" in r.stderr, r
    st, body = http_request(tokd, "DELETE", "/admin/v1/tokens/" +
                            made["token_id"])
    assert st == 401, body
    st, body = http_request(tokd, "GET", "/admin/v1/tokens/" +
                            made["token_id"], token=tokd.admin_token)
    assert st == 405, body


def test_expired_token_fails(tokd):
    r = ctl(tokd, "--json", "token", "create", "--tenant", "default",
            "--principal", "brief", "--expires", "1s")
    assert r.returncode == 0, r
    made = json.loads(r.stdout)
    assert made["expires_unix"] > 0
    row = [t for t in listing(tokd)["tokens"]
           if t["token_id"] == made["token_id"]][0]
    assert row["expires_unix"] == made["expires_unix"]
    assert 1 <= row["expires_unix"] - row["created_unix"] <= 2, row
    # Expiry has one-second resolution: poll past it, boundedly.
    poll(lambda: run_stream(tokd.channel, made["token"]).code == UNAUTH,
         5, interval=0.5, what="the token to expire")

    st, made = create(tokd, principal="later", expires_in_seconds=3600)
    assert st == 201 and made["expires_unix"] > time.time() + 3500, made
    check_successful_run(run_stream(tokd.channel, made["token"], "still"),
                         "still")
    for bad in (0, -5, "60", 1.5, 10 ** 12, None):
        st, body = create(tokd, expires_in_seconds=bad)
        assert st == 400 and body["error"]["code"] == "bad_request", \
            (bad, body)
    for bad in ("0s", "1w", "s", "-1s", ""):
        r = ctl(tokd, "token", "create", "--tenant", "default",
                "--expires", bad)
        assert r.returncode == 2 and not r.stdout, (bad, r)


def test_role_validation(tokd):
    for role in ("user", "operator", "admin"):
        st, made = create(tokd, principal="r-" + role, role=role)
        assert st == 201 and made["role"] == role, made
    for role in ("root", "", "Admin", "user "):
        st, body = create(tokd, role=role)
        assert st == 400 and "role" in body["error"]["message"], (role, body)
        r = ctl(tokd, "token", "create", "--tenant", "default",
                "--role", role)
        assert r.returncode == 2 and not r.stdout, (role, r)
    roles = {t["principal"]: t["role"] for t in listing(tokd)["tokens"]}
    assert roles["r-operator"] == "operator" and roles["r-admin"] == "admin"


# ------------------------------------------------------------ rate limit

class Relay:
    """Forwards TCP connections to the daemon from another loopback
    address, so that one client can stand for a second source."""

    def __init__(self, port, source):
        self.port, self.source = port, source
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.addr = f"127.0.0.1:{self.lsock.getsockname()[1]}"
        self.socks = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            u = socket.socket()
            u.bind((self.source, 0))
            u.connect(("127.0.0.1", self.port))
            self.socks += [c, u]
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pump, args=(a, b),
                                 daemon=True).start()

    @staticmethod
    def _pump(a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        try:
            b.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self):
        self.lsock.close()
        for s in self.socks:
            s.close()


def http_from(d, source, method, path, token=None):
    """One HTTP request from a chosen source address: (status, headers,
    JSON body)."""
    conn = http.client.HTTPConnection("127.0.0.1", d.http_port, timeout=10,
                                      source_address=(source, 0))
    try:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        conn.request(method, path, headers=headers)
        r = conn.getresponse()
        return r.status, r.headers, json.loads(r.read() or b"null")
    finally:
        conn.close()


def test_auth_failures_are_rate_limited(tmp_path):
    d = Daemon(tmp_path / "d")
    d.start()
    relay = None
    try:
        valid = d.mint_token("default", "carol")
        ch = d.new_channel()

        # gRPC from 127.0.0.1: FE_AUTH_FAIL_BURST failures are answered,
        # the next attempt is refused without a lookup, valid token or not.
        t0 = time.monotonic()
        for i in range(FE_AUTH_FAIL_BURST):
            res = run_stream(ch, f"pt_guess{i}")
            assert res.code == UNAUTH, (i, res)
        assert time.monotonic() - t0 < REFILL_S, "too slow to test the burst"
        res = run_stream(ch, "pt_guess-eleven")
        assert res.code == EXHAUSTED, res
        assert res.details == "too many authentication failures", res
        assert res.events == []
        assert run_stream(ch, valid).code == EXHAUSTED
        # The HTTP admin API counts the same source.
        st, hdrs, body = http_from(d, "127.0.0.1", "GET", "/admin/v1/tokens",
                                   token="pt_wrong")
        assert st == 429, (st, body)
        assert body["error"]["code"] == "too_many_requests", body
        assert 1 <= int(hdrs["Retry-After"]) <= REFILL_S + 1, hdrs

        # Another source is not affected: a valid token works meanwhile.
        relay = Relay(d.grpc_port, "127.0.0.2")
        other = grpc.insecure_channel(relay.addr, options=CHANNEL_OPTIONS)
        check_successful_run(run_stream(other, valid, "meanwhile"),
                             "meanwhile")
        st, _, body = http_from(d, "127.0.0.2", "GET", "/admin/v1/tokens",
                                token=d.admin_token)
        assert st == 200, body
        # Successes took nothing from it: still a full burst of failures.
        for i in range(FE_AUTH_FAIL_BURST):
            assert run_stream(other, valid, "ok").code == grpc.StatusCode.OK
        for i in range(FE_AUTH_FAIL_BURST):
            st, _, body = http_from(d, "127.0.0.2", "GET",
                                    "/admin/v1/tokens", token=f"bad{i}")
            assert st == 401, (i, st, body)
        st, hdrs, body = http_from(d, "127.0.0.2", "GET", "/admin/v1/tokens",
                                   token=d.admin_token)
        assert st == 429 and "Retry-After" in hdrs, (st, body)
        res = run_stream(other, "pt_guess")
        assert res.code == EXHAUSTED, res
        other.close()

        # The bucket refills at FE_AUTH_FAIL_PER_MIN: one more attempt
        # after REFILL_S, and the valid token works again.
        poll(lambda: run_stream(ch, valid, "refilled").code ==
             grpc.StatusCode.OK, REFILL_S * 2 + 2, interval=0.25,
             what="the bucket to refill")
        assert run_stream(ch, "pt_guess-again").code == UNAUTH
        assert run_stream(ch, "pt_guess-more").code == EXHAUSTED
        ch.close()
    finally:
        if relay is not None:
            relay.close()
        d.assert_clean_stop()
