"""/console/v1: the tenant-facing JSON API on the HTTP listener (DESIGN
section 7, front/console.c and front/console_sse.c).

Independent clients only: /usr/bin/python3's http.client (and curl for the
SSE run). Requests authenticate with a tenant bearer token or with a login
cookie plus X-CSRF-Token; runs stream as text/event-stream.
"""

import http.client
import json
import subprocess
import time

import pytest

from conftest import _require_binaries, Daemon, OFFLINE_REPLY, poll

CONFIG = """\
state-dir "{state}"
listen grpc 127.0.0.1:{grpc_port}
listen http 127.0.0.1:{http_port}
journal {{ durability normal }}
provider "offline" {{ type offline }}
provider "slow" {{ type offline; token-delay 40ms }}
tenant "alpha" {{
	agent "assistant" {{ providers "offline" }}
	agent "snail" {{ providers "slow" }}
}}
tenant "beta" {{ agent "helper" {{ providers "offline" }} }}
"""
TENANTS = ("alpha", "beta")
SLOW_INPUT = " ".join(f"word{i}" for i in range(40))
TERMINAL = ("RUN_STATUS_COMPLETED", "RUN_STATUS_FAILED",
            "RUN_STATUS_CANCELLED", "RUN_STATUS_INTERRUPTED")
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    _require_binaries()
    d = Daemon(tmp_path_factory.mktemp("console") / "d", CONFIG, TENANTS)
    yield d.start()
    if not d.stopped:
        d.kill()


@pytest.fixture(scope="module")
def tokens(daemon):
    return {
        "user": daemon.mint_token("alpha", "ann", "user"),
        "user2": daemon.mint_token("alpha", "bob", "user"),
        "op": daemon.mint_token("alpha", "olga", "operator"),
        "beta": daemon.mint_token("beta", "ann", "admin"),
    }


class Resp:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.raw = status, headers, body
        try:
            self.json = json.loads(body) if body else None
        except ValueError:
            self.json = None

    def __repr__(self):
        return f"Resp({self.status}, {self.raw[:300]!r})"


def req(d, method, path, body=None, token=None, headers=None, raw=None,
        timeout=15.0):
    c = http.client.HTTPConnection("127.0.0.1", d.http_port, timeout=timeout)
    h = dict(headers or {})
    data = raw if raw is not None else (
        json.dumps(body).encode() if body is not None else None)
    if data is not None:
        h.setdefault("Content-Type", "application/json")
    if token is not None:
        h["Authorization"] = f"Bearer {token}"
    try:
        c.request(method, "/console/v1/" + path, body=data, headers=h)
        r = c.getresponse()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        return Resp(r.status, hdrs, r.read())
    finally:
        c.close()


def parse_sse(text):
    """[(id or None, event, data dict)] of a text/event-stream body."""
    out = []
    for block in text.split("\n\n"):
        ev_id, name, data = None, None, []
        for line in block.split("\n"):
            if line.startswith(":") or not line:
                continue
            k, _, v = line.partition(":")
            v = v[1:] if v.startswith(" ") else v
            if k == "id":
                ev_id = int(v)
            elif k == "event":
                name = v
            elif k == "data":
                data.append(v)
        if name is not None:
            out.append((ev_id, name, json.loads("\n".join(data))))
    return out


def sse_request(d, method, path, body=None, token=None, headers=None,
                stop_after=None, timeout=20.0):
    """Reads an SSE response as it comes: (status, headers, events).
    stop_after(events) -> True closes the connection early."""
    c = http.client.HTTPConnection("127.0.0.1", d.http_port, timeout=timeout)
    h = dict(headers or {})
    data = json.dumps(body).encode() if body is not None else None
    if data is not None:
        h["Content-Type"] = "application/json"
    if token is not None:
        h["Authorization"] = f"Bearer {token}"
    c.request(method, "/console/v1/" + path, body=data, headers=h)
    r = c.getresponse()
    hdrs = {k.lower(): v for k, v in r.getheaders()}
    if not hdrs.get("content-type", "").startswith("text/event-stream"):
        body = r.read()
        c.close()
        return r.status, hdrs, Resp(r.status, hdrs, body)
    buf, events = "", []
    try:
        while True:
            chunk = r.read1(65536) if hasattr(r, "read1") else r.read(1)
            if not chunk:
                break
            buf += chunk.decode()
            while "\n\n" in buf:
                block, buf = buf.split("\n\n", 1)
                events.extend(parse_sse(block + "\n\n"))
            if stop_after is not None and stop_after(events):
                break
    finally:
        c.close()
    return r.status, hdrs, events


def check_run_events(events, text):
    """A whole successful run as SSE: order, seq, no duplicate."""
    names = [e[1] for e in events]
    seqs = [e[0] for e in events]
    assert seqs == list(range(1, len(events) + 1)), f"seqs {seqs}"
    for ev_id, name, data in events:
        assert data["seq"] == ev_id
        assert name in data, f"event {name} without its member: {data}"
    assert names[:2] == ["status", "status"], names
    assert events[0][2]["status"]["status"] == "RUN_STATUS_ACCEPTED"
    assert events[1][2]["status"]["status"] == "RUN_STATUS_IN_PROGRESS"
    i = 2
    while names[i] == "token":
        i += 1
    assert i > 2, f"no token events: {names}"
    assert names[i:] == ["final", "usage", "status"], names
    assert events[-1][2]["status"]["status"] == "RUN_STATUS_COMPLETED"
    final = events[i][2]["final"]["text"]
    assert final == OFFLINE_REPLY.format(text)
    assert "".join(e[2]["token"]["text"] for e in events[2:i]) == final
    run_ids = {e[2]["run_id"] for e in events}
    assert len(run_ids) == 1 and "" not in run_ids
    return events[0][2]["run_id"], events[0][2]["session_id"]


def start_run(d, token, text="hello console", **kw):
    body = {"input": text, "agent": "assistant"}
    body.update(kw)
    st, hdrs, events = sse_request(d, "POST", "runs", body, token=token)
    assert st == 200, (st, events)
    assert hdrs["content-type"].startswith("text/event-stream")
    return check_run_events(events, text)


# ---------------------------------------------------------------- auth

def test_bearer_me_and_security_headers(daemon, tokens):
    r = req(daemon, "GET", "me", token=tokens["user"])
    assert r.status == 200, r
    assert r.json["tenant"] == "alpha"
    assert r.json["principal"] == "ann"
    assert r.json["role"] == "user"
    assert r.json["auth"] == "bearer"
    for k, v in SECURITY_HEADERS.items():
        assert r.headers.get(k) == v, (k, r.headers)
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["content-type"] == "application/json"


def test_missing_and_wrong_token(daemon, tokens):
    r = req(daemon, "GET", "sessions")
    assert r.status == 401, r
    assert r.json["error"]["code"] == "unauthenticated"
    r = req(daemon, "GET", "sessions", token="pt_not-a-real-token")
    assert r.status == 401, r
    assert r.json["error"]["code"] == "unauthenticated"
    assert r.headers.get("www-authenticate") == "Bearer"
    for k, v in SECURITY_HEADERS.items():
        assert r.headers.get(k) == v, (k, r.headers)
    r = req(daemon, "GET", "nowhere", token=tokens["user"])
    assert r.status == 404 and r.json["error"]["code"] == "not_found"


def test_login_cookie_csrf_logout(daemon, tokens):
    r = req(daemon, "POST", "login", {"token": tokens["op"]})
    assert r.status == 200, r
    cookie = r.headers["set-cookie"]
    for attr in ("HttpOnly", "SameSite=Strict", "Path=/console/v1",
                 "Max-Age="):
        assert attr in cookie, cookie
    assert "Secure" not in cookie      # a cleartext listener
    assert tokens["op"] not in cookie and tokens["op"] not in r.raw.decode()
    sid = cookie.split(";")[0]
    assert sid.startswith("palyra_session=") and len(sid.split("=")[1]) == 64
    csrf = r.json["csrf_token"]
    assert len(csrf) == 64
    assert r.json["tenant"] == "alpha" and r.json["principal"] == "olga"
    assert r.json["role"] == "operator" and r.json["expires_unix"] > time.time()

    # GET with the cookie alone.
    r = req(daemon, "GET", "me", headers={"Cookie": sid})
    assert r.status == 200, r
    assert r.json["auth"] == "cookie" and r.json["principal"] == "olga"
    # A change without, or with a wrong, CSRF token: 403, nothing done.
    agent = {"name": "csrf-probe", "providers": ["offline"]}
    r = req(daemon, "POST", "agents", agent, headers={"Cookie": sid})
    assert r.status == 403 and r.json["error"]["code"] == "forbidden", r
    r = req(daemon, "POST", "agents", agent,
            headers={"Cookie": sid, "X-CSRF-Token": "0" * 64})
    assert r.status == 403, r
    r = req(daemon, "GET", "agents/csrf-probe", headers={"Cookie": sid})
    assert r.status == 404, r
    # With it: done.
    r = req(daemon, "POST", "agents", agent,
            headers={"Cookie": sid, "X-CSRF-Token": csrf})
    assert r.status == 201, r
    r = req(daemon, "DELETE", "agents/csrf-probe",
            headers={"Cookie": sid, "X-CSRF-Token": csrf})
    assert r.status == 200, r
    # Logout needs CSRF too, then the cookie is dead.
    r = req(daemon, "POST", "logout", headers={"Cookie": sid})
    assert r.status == 403, r
    r = req(daemon, "POST", "logout",
            headers={"Cookie": sid, "X-CSRF-Token": csrf})
    assert r.status == 200 and r.json == {"logged_out": True}, r
    assert "Max-Age=0" in r.headers["set-cookie"]
    r = req(daemon, "GET", "me", headers={"Cookie": sid})
    assert r.status == 401, r


def test_login_revoked_token_ends_session(daemon):
    token = daemon.mint_token("alpha", "rita", "user")
    r = req(daemon, "POST", "login", {"token": token})
    assert r.status == 200, r
    sid = r.headers["set-cookie"].split(";")[0]
    assert req(daemon, "GET", "me", headers={"Cookie": sid}).status == 200
    # Revoke it (admin API): the next cookie request is refused at once.
    st = listed = None
    c = http.client.HTTPConnection("127.0.0.1", daemon.http_port, timeout=10)
    c.request("GET", "/admin/v1/tokens?tenant=alpha",
              headers={"Authorization": f"Bearer {daemon.admin_token}"})
    resp = c.getresponse()
    listed = json.loads(resp.read())
    c.close()
    ids = [t["token_id"] for t in listed["tokens"] if t["principal"] == "rita"]
    assert len(ids) == 1, listed
    c = http.client.HTTPConnection("127.0.0.1", daemon.http_port, timeout=10)
    c.request("DELETE", f"/admin/v1/tokens/{ids[0]}",
              headers={"Authorization": f"Bearer {daemon.admin_token}"})
    st = c.getresponse().status
    c.close()
    assert st in (200, 204), st
    r = req(daemon, "GET", "me", headers={"Cookie": sid})
    assert r.status == 401, r


def test_login_bad_requests(daemon):
    r = req(daemon, "POST", "login", {"token": "pt_wrong"})
    assert r.status == 401, r
    r = req(daemon, "POST", "login", {"tok": "x"})
    assert r.status == 400 and r.json["error"]["code"] == "bad_request", r
    r = req(daemon, "GET", "login")
    assert r.status == 405, r


def test_rate_limit(tmp_path):
    _require_binaries()
    d = Daemon(tmp_path / "rl", CONFIG, TENANTS).start()
    try:
        good = d.mint_token("alpha", "ann", "user")
        codes = [req(d, "GET", "me", token=f"pt_wrong{i}").status
                 for i in range(14)]
        assert codes[0] == 401, codes
        assert 429 in codes, codes
        r = req(d, "GET", "me", token=good)
        assert r.status == 429, r       # the source is out of attempts
        assert r.json["error"]["code"] == "too_many_requests"
        assert int(r.headers["retry-after"]) >= 1
        r = req(d, "POST", "login", {"token": good})
        assert r.status == 429, r
    finally:
        d.kill()


# ---------------------------------------------------------------- runs

def test_run_sse_with_curl(daemon, tokens):
    body = json.dumps({"input": "curl here", "agent": "assistant"})
    out = subprocess.run(
        ["curl", "-sS", "-N", "--noproxy", "*", "-D", "-", "-X", "POST",
         "-H", f"Authorization: Bearer {tokens['user']}",
         "-H", "Content-Type: application/json", "--data", body,
         f"{daemon.http_url}/console/v1/runs"],
        capture_output=True, text=True, timeout=30, check=True).stdout
    # text mode turned the header lines' CRLF into LF.
    head, _, rest = out.partition("\n\n")
    assert head.startswith("HTTP/1.1 200"), head
    assert "text/event-stream" in head.lower()
    assert "transfer-encoding: chunked" in head.lower()
    assert "x-content-type-options: nosniff" in head.lower()
    check_run_events(parse_sse(rest), "curl here")


def test_run_events_page_and_replay(daemon, tokens):
    run_id, session_id = start_run(daemon, tokens["user"], "replay me")
    r = req(daemon, "GET", f"runs/{run_id}", token=tokens["user"])
    assert r.status == 200, r
    assert r.json["run_id"] == run_id and r.json["status"] == "RUN_STATUS_COMPLETED"
    assert r.json["principal"] == "ann"
    last = r.json["last_seq"]
    r = req(daemon, "GET", f"runs/{run_id}/events", token=tokens["user"])
    assert r.status == 200, r
    seqs = [e["seq"] for e in r.json["events"]]
    assert seqs == list(range(1, last + 1)) and r.json["more"] is False
    r = req(daemon, "GET", f"runs/{run_id}/events?after_seq=3",
            token=tokens["user"])
    assert [e["seq"] for e in r.json["events"]] == list(range(4, last + 1))
    # SSE replay, by query and by Last-Event-ID: no gap, no duplicate.
    st, _, evs = sse_request(daemon, "GET", f"runs/{run_id}/events?after_seq=2&stream=1",
                             token=tokens["user"])
    assert st == 200 and [e[0] for e in evs] == list(range(3, last + 1)), evs
    st, _, evs = sse_request(daemon, "GET", f"runs/{run_id}/events",
                             token=tokens["user"],
                             headers={"Accept": "text/event-stream",
                                      "Last-Event-ID": str(last - 2)})
    assert st == 200 and [e[0] for e in evs] == [last - 1, last], evs
    assert evs[-1][2]["status"]["status"] == "RUN_STATUS_COMPLETED"
    r = req(daemon, "GET", f"runs/{run_id}/events?after_seq=x",
            token=tokens["user"])
    assert r.status == 400, r


def test_slow_run_follow_disconnect_and_abort(daemon, tokens):
    # Leave the start's stream after three events: the run goes on.
    st, _, first = sse_request(
        daemon, "POST", "runs", {"input": SLOW_INPUT, "agent": "snail"},
        token=tokens["user"], stop_after=lambda evs: len(evs) >= 3)
    assert st == 200 and len(first) >= 3, first
    run_id = first[0][2]["run_id"]
    r = req(daemon, "GET", f"runs/{run_id}", token=tokens["user"])
    assert r.status == 200 and r.json["status"] == "RUN_STATUS_IN_PROGRESS", r
    # Follow it live from seq 3, then abort it from another request.
    got = []

    def stop(evs):
        got[:] = evs
        if len(evs) == 2:
            a = req(daemon, "POST", f"runs/{run_id}/abort",
                    {"reason": "enough"}, token=tokens["user"])
            assert a.status == 200, a
        return False

    st, _, evs = sse_request(daemon, "GET", f"runs/{run_id}/events?after_seq=3&stream=1",
                             token=tokens["user"], stop_after=stop)
    assert st == 200
    seqs = [e[0] for e in evs]
    assert seqs == list(range(4, 4 + len(evs))), seqs
    assert evs[-1][1] == "status"
    assert evs[-1][2]["status"]["status"] == "RUN_STATUS_CANCELLED", evs[-1]
    r = req(daemon, "GET", f"runs/{run_id}", token=tokens["user"])
    assert r.json["status"] == "RUN_STATUS_CANCELLED"
    # Aborting a finished run is a clear error, not a crash.
    r = req(daemon, "POST", f"runs/{run_id}/abort", token=tokens["user"])
    assert r.status in (409, 400), r
    assert "error" in r.json


def test_run_errors(daemon, tokens):
    r = req(daemon, "POST", "runs", {"agent": "assistant"}, token=tokens["user"])
    assert r.status == 400 and r.json["error"]["message"] == "input is required", r
    r = req(daemon, "POST", "runs", {"input": "x", "agent": "nope"},
            token=tokens["user"])
    assert r.status == 404, r
    r = req(daemon, "POST", "runs", {"input": "", "agent": "assistant"},
            token=tokens["user"])
    assert r.status == 400, r
    r = req(daemon, "GET", "runs", token=tokens["user"])
    assert r.status == 405 and r.headers["allow"] == "POST", r


# ---------------------------------------------------------------- sessions

def test_sessions_list_show_delete(daemon, tokens):
    run_a, sess = start_run(daemon, tokens["user"], "first", session_key="chat-1")
    run_b, sess2 = start_run(daemon, tokens["user"], "second", session_key="chat-1")
    assert sess == sess2
    r = req(daemon, "POST", "sessions/resolve", {"session_key": "chat-1"},
            token=tokens["user"])
    assert r.status == 200 and r.json["session_id"] == sess, r
    r = req(daemon, "GET", "sessions?limit=100", token=tokens["user"])
    assert r.status == 200, r
    assert sess in [s["session_id"] for s in r.json["sessions"]]
    assert all(s["principal"] == "ann" for s in r.json["sessions"])
    assert "next_cursor" in r.json
    r = req(daemon, "GET", f"sessions/{sess}", token=tokens["user"])
    assert r.status == 200, r
    assert [x["run_id"] for x in r.json["runs"]] == [run_a, run_b], r.json
    # Paging: one at a time.
    r = req(daemon, "GET", "sessions?limit=1", token=tokens["user"])
    assert r.status == 200 and len(r.json["sessions"]) == 1
    r = req(daemon, "GET", "sessions?limit=0", token=tokens["user"])
    assert r.status == 400, r
    r = req(daemon, "GET", "sessions?bogus=1", token=tokens["user"])
    assert r.status == 400, r
    # Another principal of the tenant (role user) sees nothing of it.
    r = req(daemon, "GET", f"sessions/{sess}", token=tokens["user2"])
    assert r.status == 404, r
    r = req(daemon, "DELETE", f"sessions/{sess}", token=tokens["user2"])
    assert r.status == 404, r
    r = req(daemon, "GET", f"runs/{run_a}", token=tokens["user2"])
    assert r.status == 404, r
    r = req(daemon, "GET", f"runs/{run_a}/events", token=tokens["user2"])
    assert r.status == 404, r
    r = req(daemon, "GET", "sessions", token=tokens["user2"])
    assert sess not in [s["session_id"] for s in r.json["sessions"]]
    # An operator of the tenant does.
    r = req(daemon, "GET", f"sessions/{sess}", token=tokens["op"])
    assert r.status == 200, r
    r = req(daemon, "GET", f"runs/{run_a}", token=tokens["op"])
    assert r.status == 200, r
    # Delete (CleanupSession).
    r = req(daemon, "DELETE", f"sessions/{sess}", token=tokens["user"])
    assert r.status == 200, r
    assert r.json.get("runs_removed", 0) >= 0
    r = req(daemon, "GET", "sessions?limit=100", token=tokens["user"])
    assert sess not in [s["session_id"] for s in r.json["sessions"]]


# ---------------------------------------------------------------- agents

def test_agents_crud_and_roles(daemon, tokens):
    r = req(daemon, "GET", "agents", token=tokens["user"])
    assert r.status == 200, r
    names = {a["name"] for a in r.json["agents"]}
    assert {"assistant", "snail"} <= names
    new = {"name": "writer", "providers": ["offline"],
           "system_prompt": "Be brief.", "max_output_tokens": 100}
    r = req(daemon, "POST", "agents", new, token=tokens["user"])
    assert r.status == 403 and r.json["error"]["code"] == "forbidden", r
    r = req(daemon, "GET", "agents/writer", token=tokens["user"])
    assert r.status == 404, r
    r = req(daemon, "POST", "agents", new, token=tokens["op"])
    assert r.status == 201, r
    assert r.json["name"] == "writer" and r.json["source"] == "runtime"
    r = req(daemon, "POST", "agents", new, token=tokens["op"])
    assert r.status == 409, r
    r = req(daemon, "PATCH", "agents/writer", {"temperature": 0.5},
            token=tokens["user"])
    assert r.status == 403, r
    r = req(daemon, "PATCH", "agents/writer",
            {"temperature": 0.5, "system_prompt": "Be very brief."},
            token=tokens["op"])
    assert r.status == 200, r
    assert r.json["temperature"] == 0.5
    assert r.json["system_prompt"] == "Be very brief."
    r = req(daemon, "GET", "agents/writer", token=tokens["user"])
    assert r.status == 200 and r.json["system_prompt"] == "Be very brief."
    r = req(daemon, "DELETE", "agents/writer", token=tokens["user"])
    assert r.status == 403, r
    r = req(daemon, "DELETE", "agents/writer", token=tokens["op"])
    assert r.status == 200, r
    r = req(daemon, "GET", "agents/writer", token=tokens["op"])
    assert r.status == 404, r
    r = req(daemon, "PUT", "agents/writer", {}, token=tokens["op"])
    assert r.status == 405, r


# ---------------------------------------------------------------- tenants

def test_cross_tenant_is_404_and_changes_nothing(daemon, tokens):
    run_id, sess = start_run(daemon, tokens["user"], "alpha only",
                             session_key="private")
    beta = tokens["beta"]       # an admin of beta: still nothing of alpha
    for method, path in (("GET", f"runs/{run_id}"),
                         ("GET", f"runs/{run_id}/events"),
                         ("POST", f"runs/{run_id}/abort"),
                         ("GET", f"sessions/{sess}"),
                         ("DELETE", f"sessions/{sess}"),
                         ("GET", "agents/snail"),
                         ("PATCH", "agents/snail"),
                         ("DELETE", "agents/snail")):
        body = {"temperature": 0.25} if method == "PATCH" else None
        r = req(daemon, method, path, body, token=beta)
        assert r.status == 404, (method, path, r)
        assert r.json["error"]["code"] == "not_found"
    st, _, evs = sse_request(daemon, "GET", f"runs/{run_id}/events?stream=1",
                             token=beta)
    assert st == 404, evs
    r = req(daemon, "GET", "sessions?limit=100", token=beta)
    assert sess not in [s["session_id"] for s in r.json["sessions"]]
    # Nothing changed for alpha.
    r = req(daemon, "GET", f"sessions/{sess}", token=tokens["user"])
    assert r.status == 200 and [x["run_id"] for x in r.json["runs"]] == [run_id]
    r = req(daemon, "GET", "agents/snail", token=tokens["user"])
    assert r.status == 200 and r.json["temperature"] != 0.25


# ---------------------------------------------------------------- bad input

def test_bad_bodies(daemon, tokens):
    t = tokens["op"]
    r = req(daemon, "POST", "runs", raw=b"{not json", token=t)
    assert r.status == 400 and r.json["error"]["code"] == "bad_request", r
    r = req(daemon, "POST", "runs", raw=b"[1,2]", token=t)
    assert r.status == 400, r
    r = req(daemon, "POST", "runs", {"input": "x", "colour": "red"}, token=t)
    assert r.status == 400 and r.json["error"]["message"] == "unknown field", r
    r = req(daemon, "POST", "runs", {"input": 5}, token=t)
    assert r.status == 400, r
    deep = b'{"input":"x","agent":' + b"[" * 40 + b"]" * 40 + b"}"
    r = req(daemon, "POST", "runs", raw=deep, token=t)
    assert r.status == 400 and "deep" in r.json["error"]["message"], r
    deeper = b"[" * 100000 + b"]" * 100000
    r = req(daemon, "POST", "agents", raw=deeper, token=t)
    assert r.status in (400, 413), r
    big = json.dumps({"input": "x" * (70 * 1024)}).encode()
    r = req(daemon, "POST", "runs", raw=big, token=t)
    assert r.status == 413, r
    r = req(daemon, "POST", "agents", {"name": "a", "providers": "offline"},
            token=t)
    assert r.status == 400, r
    # The front is fine afterwards.
    assert req(daemon, "GET", "me", token=t).status == 200


# ---------------------------------------------------------------- slow reader

def test_slow_reader_gets_an_error_event_and_the_run_goes_on(daemon, tokens):
    import socket
    op = tokens["op"]
    r = req(daemon, "POST", "agents",
            {"name": "chatty", "providers": ["offline"],
             "max_output_tokens": 100000}, token=op)
    assert r.status == 201, r
    # About 30000 token events (some 6 MB of SSE): far more than the
    # socket buffers and the front's 1 MiB allowance hold.
    body = json.dumps({"input": " ".join(["w"] * 30000), "agent": "chatty",
                       "session_key": "slow-reader"}).encode()
    assert len(body) < 64 * 1024
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(20)
    s.connect(("127.0.0.1", daemon.http_port))
    s.sendall(b"POST /console/v1/runs HTTP/1.1\r\nHost: x\r\n"
              b"Authorization: Bearer " + op.encode() +
              b"\r\nContent-Type: application/json\r\nContent-Length: " +
              str(len(body)).encode() + b"\r\n\r\n" + body)
    # Not reading, until the run has produced some 2 MB of events: twice
    # the front's allowance and the little the kernel holds for a client
    # with a 4 KiB receive window.
    sess = req(daemon, "POST", "sessions/resolve",
               {"session_key": "slow-reader"}, token=op).json["session_id"]

    def far_enough():
        r = req(daemon, "GET", f"sessions/{sess}", token=op)
        return r.status == 200 and r.json["runs"][0]["last_seq"] >= 10000 \
            and r.json["runs"][0]["run_id"]
    run_id = poll(far_enough, 25, interval=0.2, what="10000 events")
    data = b""
    while True:
        c = s.recv(1 << 20)
        if not c:
            break
        data += c
        if b"event: error" in data and data.endswith(b"0\r\n\r\n"):
            break
    s.close()
    text = data.decode()
    assert "event: error" in text, text[-500:]
    assert "client not reading events" in text
    assert '"code":"too_many_requests"' in text
    assert len(data) < 4 * 1024 * 1024 + 2 * 1024 * 1024
    # The run was not cancelled by it; abort it now to save time.
    r = req(daemon, "GET", f"runs/{run_id}", token=op)
    assert r.json["status"] in ("RUN_STATUS_IN_PROGRESS",
                                "RUN_STATUS_COMPLETED"), r
    req(daemon, "POST", f"runs/{run_id}/abort", token=op)


# ---------------------------------------------------------------- limits

def test_event_streams_per_source_are_bounded(daemon, tokens):
    # A slow run to follow: 40 words at 40 ms a token.
    st, _, first = sse_request(
        daemon, "POST", "runs", {"input": SLOW_INPUT, "agent": "snail"},
        token=tokens["user"], stop_after=lambda evs: len(evs) >= 1)
    assert st == 200, first
    run_id = first[0][2]["run_id"]
    path = f"/console/v1/runs/{run_id}/events?stream=1"
    conns = []
    try:
        for _ in range(16):     # FE_CONSOLE_SSE_PER_SOURCE
            c = http.client.HTTPConnection("127.0.0.1", daemon.http_port,
                                           timeout=15)
            c.request("GET", path,
                      headers={"Authorization": f"Bearer {tokens['user']}"})
            r = c.getresponse()
            assert r.status == 200
            assert r.getheader("Content-Type") == "text/event-stream"
            conns.append((c, r))
        r = req(daemon, "GET", f"runs/{run_id}/events?stream=1",
                token=tokens["user"])
        assert r.status == 429, r
        assert r.json["error"]["message"] == "too many event streams open"
    finally:
        for c, _ in conns:
            c.close()
    # Closed streams no longer count.
    def admitted():
        st, _, _ = sse_request(daemon, "GET", f"runs/{run_id}/events?stream=1",
                               token=tokens["user"], stop_after=lambda e: True)
        return st == 200
    poll(admitted, 10, interval=0.1, what="the streams to be forgotten")
    req(daemon, "POST", f"runs/{run_id}/abort", token=tokens["user"])


def test_login_sessions_are_bounded(daemon, tokens):
    """Last in this file: it fills the table of login sessions."""
    token = tokens["user2"]
    codes = []
    c = http.client.HTTPConnection("127.0.0.1", daemon.http_port, timeout=15)
    body = json.dumps({"token": token})
    for _ in range(1100):
        c.request("POST", "/console/v1/login", body=body,
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        codes.append(r.status)
        if r.status != 200:
            break
    c.close()
    assert codes.count(200) == 1024, codes[-3:]   # FE_CONSOLE_LOGINS_MAX
    assert codes[-1] == 503, codes[-3:]
    r = req(daemon, "POST", "login", {"token": token})
    assert r.status == 503 and "too many login sessions" in r.json["error"]["message"]
    # Bearer requests do not need the table.
    assert req(daemon, "GET", "me", token=token).status == 200
