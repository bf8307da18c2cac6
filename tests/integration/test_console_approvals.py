"""Approvals, grants, usage and budgets through the front (issue 7):
ApprovalsService and UsageService over gRPC (front/services.c), the
/console/v1 routes (front/console_approvals.c), RunStream's approval and
tool_result messages (front/rpc.c), the console's SSE rendering of the new
event kinds and the budget counters of /metrics.

Independent clients only: /usr/bin/python3's grpcio and http.client, and
curl for the NDJSON export. The offline model's tool demo (`/tool NAME
{json}`) drives the tool calls; the agent "asker" asks before time.now.
"""

import hashlib
import http.client
import json
import os
import queue
import subprocess
import threading
import time

import grpc
import pytest

from conftest import (PALYRACTL, _require_binaries, auth_md, Daemon, pb,
                      poll)

CONFIG = """\
state-dir "{state}"
listen grpc 127.0.0.1:{grpc_port}
listen http 127.0.0.1:{http_port}
journal {{ durability normal }}
provider "offline" {{ type offline }}
tenant "alpha" {{
	agent "assistant" {{ providers "offline" }}
	agent "asker" {{
		providers "offline"
		tool "time.now" ask
	}}
	budget tokens 1000000 per day soft
}}
tenant "beta" {{
	agent "asker" {{
		providers "offline"
		tool "time.now" ask
	}}
}}
tenant "gamma" {{
	agent "assistant" {{ providers "offline" }}
	budget tokens 5 per total hard
}}
tenant "delta" {{
	agent "assistant" {{ providers "offline" }}
	budget tokens 1 per day soft
}}
"""
TENANTS = ("alpha", "beta", "gamma", "delta")
TIMEOUT = 15.0
TOOL_INPUT = "/tool time.now {}"
APPROVALS = "/palyra.v1.ApprovalsService/"
USAGE = "/palyra.v1.UsageService/"
S = pb.RunStatus
OK = grpc.StatusCode.OK
NOT_FOUND = grpc.StatusCode.NOT_FOUND


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    _require_binaries()
    d = Daemon(tmp_path_factory.mktemp("approvals") / "d", CONFIG, TENANTS)
    yield d.start()
    if not d.stopped:
        d.kill()


@pytest.fixture(scope="module")
def tokens(daemon):
    return {
        "ann": daemon.mint_token("alpha", "ann", "user"),
        "bob": daemon.mint_token("alpha", "bob", "user"),
        "op": daemon.mint_token("alpha", "olga", "operator"),
        "beta": daemon.mint_token("beta", "ann", "admin"),
    }


@pytest.fixture(scope="module")
def ch(daemon):
    c = daemon.new_channel()
    yield c
    c.close()


# ---------------------------------------------------------------- clients

class Resp:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.raw = status, headers, body
        try:
            self.json = json.loads(body) if body else None
        except ValueError:
            self.json = None

    def __repr__(self):
        return f"Resp({self.status}, {self.raw[:400]!r})"


def req(d, method, path, body=None, token=None, headers=None, raw=None):
    c = http.client.HTTPConnection("127.0.0.1", d.http_port, timeout=TIMEOUT)
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
        return Resp(r.status, {k.lower(): v for k, v in r.getheaders()},
                    r.read())
    finally:
        c.close()


def unary(ch, path, request, resp_cls, token, timeout=TIMEOUT):
    call = ch.unary_unary(path, request_serializer=type(request).SerializeToString,
                          response_deserializer=resp_cls.FromString)
    return call(request, metadata=auth_md(token), timeout=timeout)


def rpc_code(fn):
    try:
        return OK, "", fn()
    except grpc.RpcError as e:
        return e.code(), e.details(), None


def kind(ev):
    return ev.WhichOneof("event")


class Run(threading.Thread):
    """One RunStream whose request side stays open: messages can be sent
    on it while its events are read."""

    def __init__(self, ch, token, text=TOOL_INPUT, agent="asker",
                 session_key="", first=None, timeout=30.0):
        super().__init__(daemon=True)
        self.ch, self.token, self.timeout = ch, token, timeout
        self.first = first if first is not None else pb.RunStreamRequest(
            start=pb.RunStart(input=text, agent=agent,
                              session_key=session_key))
        self.events, self.code, self.details = [], None, None
        self.q = queue.Queue()
        self.lock = threading.Lock()
        self.ended = threading.Event()
        self.start()

    def run(self):
        def requests():
            yield self.first
            while not self.ended.is_set():
                try:
                    m = self.q.get(timeout=0.05)
                except queue.Empty:
                    continue
                yield m

        call = self.ch.stream_stream(
            "/palyra.v1.GatewayService/RunStream",
            request_serializer=pb.RunStreamRequest.SerializeToString,
            response_deserializer=pb.RunEvent.FromString)
        it = call(requests(), metadata=auth_md(self.token), timeout=self.timeout)
        try:
            for ev in it:
                with self.lock:
                    self.events.append(ev)
            self.code, self.details = it.code(), it.details()
        except grpc.RpcError as e:
            self.code, self.details = e.code(), e.details()
        finally:
            self.ended.set()

    def send(self, msg):
        self.q.put(msg)

    def of_kind(self, k):
        with self.lock:
            return [ev for ev in self.events if kind(ev) == k]

    def approval(self):
        """The approval request, once it arrived."""
        def got():
            if self.ended.is_set() and not self.of_kind("approval_request"):
                raise AssertionError(f"run ended: {self.code} {self.details} "
                                     f"{self.events}")
            reqs = self.of_kind("approval_request")
            return reqs[0].approval_request if reqs else None
        return poll(got, TIMEOUT, what="the approval request")

    def finish(self):
        self.ended.wait(self.timeout + 5)
        assert self.ended.is_set(), "the stream did not end"
        return self


def status_of(ev):
    return ev.status.status if kind(ev) == "status" else None


def assert_tool_flow(run, allowed):
    """ToolCall, ApprovalRequest, WAITING_APPROVAL, ApprovalDecided,
    IN_PROGRESS, ToolResult, ..., COMPLETED: the order of the issue."""
    assert run.code == OK, (run.code, run.details, run.events)
    kinds = [kind(ev) for ev in run.events]
    i = kinds.index("tool_call")
    assert kinds[i + 1] == "approval_request", kinds
    assert status_of(run.events[i + 2]) == S.RUN_STATUS_WAITING_APPROVAL, kinds
    assert kinds[i + 3] == "approval_decided", kinds
    assert status_of(run.events[i + 4]) == S.RUN_STATUS_IN_PROGRESS, kinds
    assert kinds[i + 5] == "tool_result", kinds
    result = run.events[i + 5].tool_result
    assert result.is_error != allowed, result
    assert status_of(run.events[-1]) == S.RUN_STATUS_COMPLETED, run.events[-1]
    return run.events[i + 3].approval_decided


def login(d, token):
    r = req(d, "POST", "login", {"token": token})
    assert r.status == 200, r
    return r.headers["set-cookie"].split(";")[0], r.json["csrf_token"]


# ---------------------------------------------------------------- approvals

def test_console_decision_out_of_band(daemon, tokens, ch):
    """ann's run asks; the console lists the pending approval (state as a
    word), shows it, and ann's decision from a second client (the console)
    lets the run go on. Deciding again: 409."""
    run = Run(ch, tokens["ann"])
    ar = run.approval()
    assert len(ar.approval_id) == 32 and ar.tool_name == "time.now", ar
    assert ar.expires_unix_ms > time.time() * 1000
    r = req(daemon, "GET", "approvals?state=pending", token=tokens["ann"])
    assert r.status == 200, r
    mine = [a for a in r.json["approvals"] if a["approval_id"] == ar.approval_id]
    assert len(mine) == 1, r.json
    a = mine[0]
    assert a["state"] == "pending" and a["principal"] == "ann", a
    assert a["tool_name"] == "time.now" and a["agent"] == "asker", a
    assert a["run_id"] == run.events[0].run_id
    r = req(daemon, "GET", f"approvals/{ar.approval_id}", token=tokens["ann"])
    assert r.status == 200 and r.json["approval_id"] == ar.approval_id, r
    assert r.headers["content-type"] == "application/json"

    r = req(daemon, "POST", f"approvals/{ar.approval_id}/decision",
            {"decision": "allow", "scope": "once", "reason": "fine"},
            token=tokens["ann"])
    assert r.status == 200, r
    assert r.json["state"] == "allowed" and r.json["scope"] == "once", r.json
    assert r.json["decided_by"] == "ann" and r.json["reason"] == "fine"
    decided = assert_tool_flow(run.finish(), allowed=True)
    assert decided.decided_by == "ann" and decided.grant_id == ""
    r = req(daemon, "POST", f"approvals/{ar.approval_id}/decision",
            {"decision": "deny"}, token=tokens["ann"])
    assert r.status == 409 and r.json["error"]["code"] == "conflict", r
    r = req(daemon, "GET", f"approvals?run_id={run.events[0].run_id}",
            token=tokens["ann"])
    assert r.status == 200, r
    assert [a["state"] for a in r.json["approvals"]] == ["allowed"], r.json


def test_principal_and_tenant_isolation(daemon, tokens, ch):
    """bob (user) and beta's admin see nothing of ann's approval: 404 for
    reads and decisions, absent from their listings and exports. olga
    (operator of alpha) sees it and decides it."""
    run = Run(ch, tokens["ann"])
    ar = run.approval()
    aid = ar.approval_id
    for who in ("bob", "beta"):
        r = req(daemon, "GET", f"approvals/{aid}", token=tokens[who])
        assert r.status == 404 and r.json["error"]["code"] == "not_found", (who, r)
        assert "ann" not in r.json["error"]["message"]
        r = req(daemon, "POST", f"approvals/{aid}/decision",
                {"decision": "allow"}, token=tokens[who])
        assert r.status == 404, (who, r)
        r = req(daemon, "GET", "approvals", token=tokens[who])
        assert r.status == 200, (who, r)
        assert aid not in {a["approval_id"] for a in r.json["approvals"]}
        r = req(daemon, "GET", "approvals/export", token=tokens[who])
        assert r.status == 200, (who, r)
        assert aid.encode() not in r.raw
        code, _, _ = rpc_code(lambda: unary(
            ch, APPROVALS + "GetApproval", pb.GetApprovalRequest(approval_id=aid),
            pb.Approval, tokens[who]))
        assert code == NOT_FOUND, (who, code)
        code, _, _ = rpc_code(lambda: unary(
            ch, APPROVALS + "DecideApproval", pb.DecideApprovalRequest(
                decision=pb.ApprovalDecision(
                    approval_id=aid,
                    decision=pb.APPROVAL_DECISION_ALLOW)),
            pb.Approval, tokens[who]))
        assert code == NOT_FOUND, (who, code)
    # Nothing happened to it.
    r = req(daemon, "GET", f"approvals/{aid}", token=tokens["ann"])
    assert r.json["state"] == "pending", r.json
    # The operator of the tenant sees and decides it (deny).
    r = req(daemon, "GET", f"approvals/{aid}", token=tokens["op"])
    assert r.status == 200 and r.json["principal"] == "ann", r
    r = req(daemon, "POST", f"approvals/{aid}/decision",
            {"decision": "deny", "reason": "not now"}, token=tokens["op"])
    assert r.status == 200 and r.json["state"] == "denied", r
    decided = assert_tool_flow(run.finish(), allowed=False)
    assert decided.decided_by == "olga", decided


def test_decision_on_the_stream_and_grpc_service(daemon, tokens, ch):
    """The decision on the run's own stream; then GetApproval and
    ListApprovals over gRPC show it."""
    run = Run(ch, tokens["ann"])
    ar = run.approval()
    run.send(pb.RunStreamRequest(approval=pb.ApprovalDecision(
        approval_id=ar.approval_id, decision=pb.APPROVAL_DECISION_ALLOW,
        scope=pb.APPROVAL_SCOPE_ONCE)))
    assert_tool_flow(run.finish(), allowed=True)
    a = unary(ch, APPROVALS + "GetApproval",
              pb.GetApprovalRequest(approval_id=ar.approval_id), pb.Approval,
              tokens["ann"])
    assert a.state == pb.APPROVAL_STATE_ALLOWED and a.decided_unix_ms > 0, a
    lst = unary(ch, APPROVALS + "ListApprovals",
                pb.ListApprovalsRequest(run_id=run.events[0].run_id),
                pb.ListApprovalsResponse, tokens["ann"])
    assert [x.approval_id for x in lst.approvals] == [ar.approval_id], lst


def test_grpc_out_of_band_from_second_client(daemon, tokens):
    """DecideApproval from a second client (its own connection) while the
    first stream waits."""
    c1, c2 = daemon.new_channel(), daemon.new_channel()
    try:
        run = Run(c1, tokens["ann"])
        ar = run.approval()
        a = unary(c2, APPROVALS + "DecideApproval", pb.DecideApprovalRequest(
            decision=pb.ApprovalDecision(
                approval_id=ar.approval_id,
                decision=pb.APPROVAL_DECISION_DENY, reason="no")),
            pb.Approval, tokens["ann"])
        assert a.state == pb.APPROVAL_STATE_DENIED, a
        assert_tool_flow(run.finish(), allowed=False)
        code, details, _ = rpc_code(lambda: unary(
            c2, APPROVALS + "DecideApproval", pb.DecideApprovalRequest(
                decision=pb.ApprovalDecision(
                    approval_id=ar.approval_id,
                    decision=pb.APPROVAL_DECISION_ALLOW)),
            pb.Approval, tokens["ann"]))
        assert code == grpc.StatusCode.FAILED_PRECONDITION, (code, details)
    finally:
        c1.close()
        c2.close()


def test_stream_messages_out_of_place(daemon, tokens, ch):
    """An approval or a tool result before the start: FAILED_PRECONDITION;
    oversized ones: INVALID_ARGUMENT; the run they came on goes on."""
    for first in (pb.RunStreamRequest(approval=pb.ApprovalDecision(
                      approval_id="0" * 32,
                      decision=pb.APPROVAL_DECISION_ALLOW)),
                  pb.RunStreamRequest(tool_result=pb.ClientToolResult(
                      tool_call_id="c1", content="x"))):
        run = Run(ch, tokens["ann"], first=first).finish()
        assert run.code == grpc.StatusCode.FAILED_PRECONDITION, run.details
        assert run.events == []
    run = Run(ch, tokens["ann"])
    ar = run.approval()
    run.send(pb.RunStreamRequest(tool_result=pb.ClientToolResult(
        tool_call_id="c1", content="x" * (64 * 1024 + 1))))
    run.finish()
    assert run.code == grpc.StatusCode.INVALID_ARGUMENT, run.details
    assert "64 KiB" in run.details
    # The run itself waits on: decided out of band, it completes.
    r = req(daemon, "POST", f"approvals/{ar.approval_id}/decision",
            {"decision": "deny"}, token=tokens["ann"])
    assert r.status == 200, r
    run_id = run.events[0].run_id
    got = poll(lambda: (lambda x: x if x.status == S.RUN_STATUS_COMPLETED
                        else None)(unary(
        ch, "/palyra.v1.GatewayService/GetRun", pb.GetRunRequest(run_id=run_id),
        pb.Run, tokens["ann"])), TIMEOUT, what="the run to complete")
    assert got.status == S.RUN_STATUS_COMPLETED


def test_decision_body_errors(daemon, tokens):
    aid = "0" * 32
    for body, want in [
            ({"decision": "maybe"}, "decision must be allow or deny"),
            ({}, "decision is required"),
            ({"decision": "allow", "scope": "forever"},
             "scope must be once, session or ttl"),
            ({"decision": "allow", "ttl_ms": -1}, "ttl_ms"),
            ({"decision": "allow", "reason": 7}, "reason must be a string"),
            ({"decision": "allow", "colour": "red"}, "unknown field")]:
        r = req(daemon, "POST", f"approvals/{aid}/decision", body,
                token=tokens["ann"])
        assert r.status == 400, (body, r)
        assert want in r.json["error"]["message"], (body, r.json)
    r = req(daemon, "POST", f"approvals/{aid}/decision", raw=b"{nope",
            token=tokens["ann"])
    assert r.status == 400, r
    r = req(daemon, "POST", f"approvals/{aid}/decision",
            raw=b'{"reason":"' + b"x" * 70000 + b'"}', token=tokens["ann"])
    assert r.status == 413, r
    r = req(daemon, "POST", f"approvals/{aid}/decision", {"decision": "allow"},
            token=tokens["ann"])
    assert r.status == 404, r       # no such approval
    assert req(daemon, "GET", f"approvals/{aid}/decision",
               token=tokens["ann"]).status == 405
    assert req(daemon, "DELETE", "approvals", token=tokens["ann"]).status == 405
    assert req(daemon, "GET", "approvals?state=bogus",
               token=tokens["ann"]).status == 400
    assert req(daemon, "GET", "approvals?page_size=0",
               token=tokens["ann"]).status == 400
    assert req(daemon, "GET", "approvals?colour=red",
               token=tokens["ann"]).status == 400
    assert req(daemon, "GET", "approvals/" + "a" * 65,
               token=tokens["ann"]).status == 404
    assert req(daemon, "GET", "approvals").status == 401


def test_csrf_on_decisions(daemon, tokens, ch):
    """A cookie-authenticated decision needs X-CSRF-Token; without it,
    403 and the approval stays pending."""
    sid, csrf = login(daemon, tokens["ann"])
    run = Run(ch, tokens["ann"])
    aid = run.approval().approval_id
    r = req(daemon, "GET", f"approvals/{aid}", headers={"Cookie": sid})
    assert r.status == 200 and r.json["state"] == "pending", r
    r = req(daemon, "POST", f"approvals/{aid}/decision", {"decision": "allow"},
            headers={"Cookie": sid})
    assert r.status == 403 and r.json["error"]["code"] == "forbidden", r
    r = req(daemon, "POST", f"approvals/{aid}/decision", {"decision": "allow"},
            headers={"Cookie": sid, "X-CSRF-Token": "0" * 64})
    assert r.status == 403, r
    assert req(daemon, "GET", f"approvals/{aid}",
               headers={"Cookie": sid}).json["state"] == "pending"
    r = req(daemon, "POST", f"approvals/{aid}/decision", {"decision": "allow"},
            headers={"Cookie": sid, "X-CSRF-Token": csrf})
    assert r.status == 200 and r.json["state"] == "allowed", r
    assert_tool_flow(run.finish(), allowed=True)
    r = req(daemon, "DELETE", "grants/" + "0" * 32, headers={"Cookie": sid})
    assert r.status == 403, r


# ---------------------------------------------------------------- grants

def test_session_grant_listed_and_revoked(daemon, tokens, ch):
    """An allow with scope session makes a grant: listed, it covers the
    next call of the same session (no approval asked), and once revoked
    the next call asks again. bob cannot revoke it."""
    key = f"grant-{time.time_ns()}"
    run = Run(ch, tokens["ann"], session_key=key)
    aid = run.approval().approval_id
    r = req(daemon, "POST", f"approvals/{aid}/decision",
            {"decision": "allow", "scope": "session"}, token=tokens["ann"])
    assert r.status == 200 and r.json["scope"] == "session", r
    grant_id = r.json["grant_id"]
    assert len(grant_id) == 32, r.json
    assert_tool_flow(run.finish(), allowed=True)
    r = req(daemon, "GET", "grants", token=tokens["ann"])
    assert r.status == 200, r
    g = [x for x in r.json["grants"] if x["grant_id"] == grant_id]
    assert len(g) == 1 and g[0]["scope"] == "session", r.json
    assert g[0]["tool_name"] == "time.now" and g[0]["approval_id"] == aid
    assert g[0]["session_id"] == run.events[0].session_id
    r = req(daemon, "GET", "grants", token=tokens["beta"])
    assert grant_id not in {x["grant_id"] for x in r.json["grants"]}, r.json

    # Covered: the call is ALLOWED by the grant at once, nobody asked.
    again = Run(ch, tokens["ann"], session_key=key).finish()
    assert again.code == OK, (again.code, again.details)
    kinds = [kind(ev) for ev in again.events]
    assert "approval_request" not in kinds, kinds
    i = kinds.index("tool_call")
    assert kinds[i + 1:i + 3] == ["approval_decided", "tool_result"], kinds
    decided = again.events[i + 1].approval_decided
    assert decided.decided_by == f"grant:{grant_id}", decided
    assert not again.events[i + 2].tool_result.is_error

    for who in ("bob", "beta"):
        r = req(daemon, "DELETE", f"grants/{grant_id}", token=tokens[who])
        assert r.status == 404, (who, r)
    r = req(daemon, "DELETE", f"grants/{grant_id}", token=tokens["ann"])
    assert r.status == 200, r
    r = req(daemon, "GET", "grants", token=tokens["ann"])
    assert grant_id not in {x["grant_id"] for x in r.json["grants"]}
    third = Run(ch, tokens["ann"], session_key=key)
    aid3 = third.approval().approval_id
    r = req(daemon, "POST", f"approvals/{aid3}/decision", {"decision": "deny"},
            token=tokens["ann"])
    assert r.status == 200, r
    assert_tool_flow(third.finish(), allowed=False)


# ---------------------------------------------------------------- export

def verify_export(data):
    """Checks the NDJSON export of gateway.proto ExportChunk: every line's
    sha256 and chain, the end line. Returns the records."""
    lines = data.decode().split("\n")
    assert lines[-1] == "", "the export does not end with a newline"
    lines = lines[:-1]
    prev = bytes(32)
    records = []
    head = '{"record":'
    for line in lines[:-1]:
        assert line.startswith(head), line[:80]
        tail = line[-(len(',"sha256":"",') + 64 + len('"chain":""}') + 64):]
        assert tail.startswith(',"sha256":"'), tail
        record = line[len(head):len(line) - len(tail)]
        obj = json.loads(line)
        h = hashlib.sha256(record.encode()).hexdigest()
        assert obj["sha256"] == h, line[:120]
        prev = hashlib.sha256(prev + bytes.fromhex(h)).digest()
        assert obj["chain"] == prev.hex(), line[:120]
        records.append(json.loads(record))
    end = json.loads(lines[-1])
    assert end["end"]["count"] == len(records), end
    assert end["end"]["chain"] == prev.hex(), end
    return records


def test_export_console_grpc_and_verify(daemon, tokens, ch, tmp_path):
    """The console's NDJSON export, streamed (curl), verifies line by line
    and end to end; the gRPC stream gives the same bytes; palyractl
    approvals verify-export accepts the file and refuses it tampered."""
    run = Run(ch, tokens["ann"])
    aid = run.approval().approval_id
    req(daemon, "POST", f"approvals/{aid}/decision", {"decision": "deny"},
        token=tokens["ann"])
    run.finish()
    out = tmp_path / "export.ndjson"
    p = subprocess.run(
        ["curl", "-sS", "--noproxy", "*", "-D", "-", "-o", str(out),
         "-H", f"Authorization: Bearer {tokens['op']}",
         f"{daemon.http_url}/console/v1/approvals/export"],
        capture_output=True, text=True, timeout=30, check=True)
    head = p.stdout.lower()
    assert head.startswith("http/1.1 200"), p.stdout
    assert "content-type: application/x-ndjson" in head
    assert "transfer-encoding: chunked" in head
    data = out.read_bytes()
    records = verify_export(data)
    assert aid in {r["approval_id"] for r in records}, records
    assert len(records) >= 2

    call = ch.unary_stream(APPROVALS + "ExportApprovals",
                           request_serializer=pb.ExportApprovalsRequest.SerializeToString,
                           response_deserializer=pb.ExportChunk.FromString)
    chunks = list(call(pb.ExportApprovalsRequest(), metadata=auth_md(tokens["op"]),
                       timeout=TIMEOUT))
    assert chunks and all(c.ndjson for c in chunks)
    assert b"".join(c.ndjson for c in chunks) == data
    # ann (user) exports her own only; they verify as well.
    mine = verify_export(req(daemon, "GET", "approvals/export",
                             token=tokens["ann"]).raw)
    assert {r["principal"] for r in mine} == {"ann"}, mine

    ctl = subprocess.run([PALYRACTL, "approvals", "verify-export", str(out)],
                         capture_output=True, text=True, timeout=30)
    assert ctl.returncode == 0, (ctl.stdout, ctl.stderr)
    bad = tmp_path / "tampered.ndjson"
    bad.write_bytes(data.replace(b'"deny', b'"DENY', 1)
                    if b'"deny' in data else data.replace(b"time.now", b"time.naw", 1))
    ctl = subprocess.run([PALYRACTL, "approvals", "verify-export", str(bad)],
                         capture_output=True, text=True, timeout=30)
    assert ctl.returncode != 0, (ctl.stdout, ctl.stderr)


def test_bad_requests_never_crash(daemon, tokens, ch):
    """A request over the IPC bound is RESOURCE_EXHAUSTED at the front; a
    malformed one INVALID_ARGUMENT from journald; no token UNAUTHENTICATED;
    the daemon goes on serving."""
    code, details, _ = rpc_code(lambda: unary(
        ch, APPROVALS + "ListApprovals",
        pb.ListApprovalsRequest(page_token="x" * 250_000),
        pb.ListApprovalsResponse, tokens["op"]))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED, (code, details)
    assert details == "request too large"
    raw = ch.unary_unary(APPROVALS + "GetApproval",
                         request_serializer=None,
                         response_deserializer=pb.Approval.FromString)
    for junk in (b"\xff\xff\xff", b"\x0a\x05ab"):
        try:
            raw(junk, metadata=auth_md(tokens["op"]), timeout=TIMEOUT)
            code = OK
        except grpc.RpcError as e:
            code = e.code()
        assert code == grpc.StatusCode.INVALID_ARGUMENT, (junk, code)
    code, _, _ = rpc_code(lambda: unary(
        ch, USAGE + "ListBudgets", pb.ListBudgetsRequest(),
        pb.ListBudgetsResponse, None))
    assert code == grpc.StatusCode.UNAUTHENTICATED, code
    lst = unary(ch, APPROVALS + "ListApprovals",
                pb.ListApprovalsRequest(page_size=1),
                pb.ListApprovalsResponse, tokens["op"])
    assert len(lst.approvals) == 1 and lst.next_page_token, lst
    nxt = unary(ch, APPROVALS + "ListApprovals",
                pb.ListApprovalsRequest(page_size=1,
                                        page_token=lst.next_page_token),
                pb.ListApprovalsResponse, tokens["op"])
    assert nxt.approvals[0].approval_id != lst.approvals[0].approval_id
    assert nxt.approvals[0].created_unix_ms >= lst.approvals[0].created_unix_ms


# ---------------------------------------------------------------- usage

def test_usage_console_and_grpc(daemon, tokens, ch):
    """Usage from the runs above: per day and agent over the console, the
    totals over gRPC; beta's view holds none of alpha's; a user's view is
    its own principal's."""
    r = req(daemon, "GET", "usage?group_by=day,agent", token=tokens["op"])
    assert r.status == 200, r
    rows = r.json["rows"]
    assert rows and {x["agent"] for x in rows} >= {"asker"}, r.json
    assert r.json["total"]["input_tokens"] > 0, r.json
    assert r.json["total"]["output_tokens"] > 0
    assert r.json["total"]["calls"] >= 1
    assert r.json["timezone"] in ("UTC", ""), r.json
    day = time.strftime("%Y-%m-%d", time.gmtime())
    assert all(x["day"] == day for x in rows), rows
    g = unary(ch, USAGE + "GetUsage", pb.GetUsageRequest(),
              pb.GetUsageResponse, tokens["op"])
    assert g.total.input_tokens == r.json["total"]["input_tokens"], g
    b = req(daemon, "GET", "usage", token=tokens["beta"])
    assert b.status == 200 and b.json["total"].get("input_tokens", 0) == 0, b
    bob = req(daemon, "GET", "usage?group_by=principal", token=tokens["bob"])
    assert bob.status == 200, bob
    assert {x["principal"] for x in bob.json["rows"]} <= {"bob"}, bob.json
    for q in ("usage?group_by=day,,agent", "usage?group_by=colour",
              "usage?group_by=a,b,c,d,e,f,g,h,i", "usage?from_day=yesterday",
              "usage?colour=red", "usage?agent=" + "x" * 65):
        assert req(daemon, "GET", q, token=tokens["op"]).status == 400, q
    assert req(daemon, "POST", "usage", {}, token=tokens["op"]).status == 405


# ---------------------------------------------------------------- budgets

def test_budgets_list_set_delete(daemon, tokens, ch):
    """The configured budget is listed (words for enums); an operator sets
    and deletes a runtime one by id (PUT) and by body (POST); a user
    cannot (403, whatever the id); malformed ids and bodies are 400."""
    r = req(daemon, "GET", "budgets", token=tokens["ann"])
    assert r.status == 200, r
    cfg = [b for b in r.json["budgets"] if b["budget_id"] == "tenant:tokens:day"]
    assert len(cfg) == 1, r.json
    assert cfg[0]["scope"] == "tenant" and cfg[0]["unit"] == "tokens"
    assert cfg[0]["period"] == "day" and cfg[0]["hard"] is False
    assert cfg[0]["source"] == "config" and cfg[0]["limit"] == 1000000
    assert req(daemon, "GET", "budgets", token=tokens["beta"]).json.get(
        "budgets", []) == []

    r = req(daemon, "PUT", "budgets/agent:asker:cost:month",
            {"limit": 2500000, "hard": True}, token=tokens["ann"])
    assert r.status == 403 and r.json["error"]["code"] == "forbidden", r
    r = req(daemon, "PUT", "budgets/agent:asker:cost:month",
            {"limit": 2500000, "hard": True}, token=tokens["op"])
    assert r.status == 200, r
    assert r.json["budget_id"] == "agent:asker:cost:month", r.json
    assert r.json["source"] == "runtime" and r.json["hard"] is True
    r = req(daemon, "PUT", "budgets/agent%3Aasker%3Acost%3Amonth",
            {"limit": 3000000, "hard": True}, token=tokens["op"])
    assert r.status == 200 and r.json["limit"] == 3000000, r
    r = req(daemon, "POST", "budgets",
            {"scope": "principal", "subject": "bob", "unit": "tokens",
             "period": "total", "limit": 500, "hard": False},
            token=tokens["op"])
    assert r.status == 200 and r.json["budget_id"] == "principal:bob:tokens:total", r
    lst = unary(ch, USAGE + "ListBudgets", pb.ListBudgetsRequest(),
                pb.ListBudgetsResponse, tokens["op"])
    ids = {b.budget_id for b in lst.budgets}
    assert {"agent:asker:cost:month", "principal:bob:tokens:total",
            "tenant:tokens:day"} <= ids, ids
    code, _, _ = rpc_code(lambda: unary(
        ch, USAGE + "SetBudget", pb.SetBudgetRequest(budget=pb.Budget(
            scope=pb.BUDGET_SCOPE_TENANT, unit=pb.BUDGET_UNIT_TOKENS,
            period=pb.BUDGET_PERIOD_MONTH, limit=5)),
        pb.Budget, tokens["bob"]))
    assert code == grpc.StatusCode.PERMISSION_DENIED, code

    for path, body in [
            ("budgets/agent:asker:cost", {"limit": 1}),
            ("budgets/tenant:asker:cost:month", {"limit": 1}),
            ("budgets/agent:asker:cost:week", {"limit": 1}),
            ("budgets/agent:asker:cost:month", {"hard": True}),
            ("budgets/agent:asker:cost:month", {"limit": -1}),
            ("budgets/agent:asker:cost:month", {"limit": 1, "unit": "tokens"}),
            ("budgets/agent:asker:cost:month", {"limit": 1, "colour": "x"})]:
        r = req(daemon, "PUT", path, body, token=tokens["op"])
        assert r.status == 400, (path, body, r)
    assert req(daemon, "PATCH", "budgets/tenant:tokens:day", {},
               token=tokens["op"]).status == 405
    for bid in ("agent:asker:cost:month", "principal:bob:tokens:total"):
        r = req(daemon, "DELETE", f"budgets/{bid}", token=tokens["ann"])
        assert r.status == 403, r
        r = req(daemon, "DELETE", f"budgets/{bid}", token=tokens["op"])
        assert r.status == 200, r
    r = req(daemon, "GET", "budgets", token=tokens["op"])
    assert {b["budget_id"] for b in r.json["budgets"]} == {"tenant:tokens:day"}


# ---------------------------------------------------------------- SSE, metrics

def test_console_sse_renders_approval_events(daemon, tokens):
    """A console run on the asker: the SSE stream names the new event
    kinds; the decision comes from the console while it streams."""
    c = http.client.HTTPConnection("127.0.0.1", daemon.http_port, timeout=TIMEOUT)
    c.request("POST", "/console/v1/runs",
              body=json.dumps({"input": TOOL_INPUT, "agent": "asker"}),
              headers={"Authorization": f"Bearer {tokens['ann']}",
                       "Content-Type": "application/json"})
    r = c.getresponse()
    assert r.status == 200
    buf, names, decided = "", [], False
    try:
        while True:
            chunk = r.read1(65536)
            if not chunk:
                break
            buf += chunk.decode()
            while "\n\n" in buf:
                block, buf = buf.split("\n\n", 1)
                name = [ln[7:] for ln in block.split("\n")
                        if ln.startswith("event: ")]
                data = [ln[6:] for ln in block.split("\n")
                        if ln.startswith("data: ")]
                if not name:
                    continue
                names.append(name[0])
                ev = json.loads(data[0])
                if name[0] == "approval_request" and not decided:
                    aid = ev["approval_request"]["approval_id"]
                    d = req(daemon, "POST", f"approvals/{aid}/decision",
                            {"decision": "allow"}, token=tokens["ann"])
                    assert d.status == 200, d
                    decided = True
    finally:
        c.close()
    for k in ("tool_call", "approval_request", "approval_decided",
              "tool_result", "final"):
        assert k in names, names
    assert names.index("approval_request") < names.index("approval_decided") \
        < names.index("tool_result"), names


def metrics(daemon):
    c = http.client.HTTPConnection("127.0.0.1", daemon.http_port, timeout=TIMEOUT)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    c.close()
    return text


def test_hard_budget_refusal_counted(daemon, ch):
    """gamma's hard budget of 5 tokens refuses the first provider call:
    the stream ends RESOURCE_EXHAUSTED naming the budget, the console's
    SSE run ends with that error after FAILED, and /metrics counts the
    refusals of gamma (and nothing for alpha)."""
    tok = daemon.mint_token("gamma", "gus", "user")
    run = Run(ch, tok, text="hello", agent="assistant").finish()
    assert run.code == grpc.StatusCode.RESOURCE_EXHAUSTED, (run.code, run.details)
    assert "tenant:tokens:total" in run.details, run.details
    errs = run.of_kind("error")
    assert errs and errs[0].error.code == "RESOURCE_EXHAUSTED", run.events
    assert status_of(run.events[-1]) == S.RUN_STATUS_FAILED
    c = http.client.HTTPConnection("127.0.0.1", daemon.http_port, timeout=TIMEOUT)
    c.request("POST", "/console/v1/runs",
              body=json.dumps({"input": "hi", "agent": "assistant"}),
              headers={"Authorization": f"Bearer {tok}",
                       "Content-Type": "application/json"})
    body = c.getresponse().read().decode()
    c.close()
    blocks = [b for b in body.split("\n\n") if b.strip()]
    assert "event: error" in blocks[-1] and "too_many_requests" in blocks[-1], body
    assert "RUN_STATUS_FAILED" in blocks[-2], body
    text = metrics(daemon)
    line = [ln for ln in text.splitlines()
            if ln.startswith('palyra_budget_refusals_total{tenant="gamma"}')]
    assert line and int(line[0].split()[-1]) >= 2, text
    assert 'palyra_budget_refusals_total{tenant="alpha"} 0' in text
    r = req(daemon, "GET", "budgets", token=tok)
    hard = [b for b in r.json["budgets"] if b["budget_id"] == "tenant:tokens:total"]
    assert hard and hard[0]["used"] <= 5 and hard[0]["reserved"] == 0, r.json


def test_soft_budget_warning(daemon):
    """delta's soft budget of 1 token a day: the run completes, its SSE
    stream carries one budget_warning event naming the budget, and
    /metrics counts it."""
    tok = daemon.mint_token("delta", "dora", "user")
    c = http.client.HTTPConnection("127.0.0.1", daemon.http_port, timeout=TIMEOUT)
    c.request("POST", "/console/v1/runs",
              body=json.dumps({"input": "hi", "agent": "assistant"}),
              headers={"Authorization": f"Bearer {tok}",
                       "Content-Type": "application/json"})
    body = c.getresponse().read().decode()
    c.close()
    events = []
    for block in body.split("\n\n"):
        name = [ln[7:] for ln in block.split("\n") if ln.startswith("event: ")]
        data = [ln[6:] for ln in block.split("\n") if ln.startswith("data: ")]
        if name:
            events.append((name[0], json.loads(data[0])))
    warnings = [d for n, d in events if n == "budget_warning"]
    assert len(warnings) == 1, [n for n, _ in events]
    w = warnings[0]["budget_warning"]
    assert w["budget_id"] == "tenant:tokens:day" and w["limit"] == 1, w
    assert w["unit"] == "tokens", w
    assert events[-1][1]["status"]["status"] == "RUN_STATUS_COMPLETED"
    text = metrics(daemon)
    line = [ln for ln in text.splitlines()
            if ln.startswith('palyra_budget_warnings_total{tenant="delta"}')]
    assert line and int(line[0].split()[-1]) >= 1, text


def test_metrics_budget_counters(daemon):
    """The two budget counters are on /metrics (typed, per tenant)."""
    text = metrics(daemon)
    assert "# TYPE palyra_budget_warnings_total counter" in text
    assert "# TYPE palyra_budget_refusals_total counter" in text
    assert 'palyra_budget_warnings_total{tenant="alpha"}' in text, text
    assert 'palyra_budget_refusals_total{tenant="alpha"} 0' in text, text


@pytest.mark.parametrize("version", ["v1", "v1alpha"])
def test_reflection_describes_the_services(ch, version):
    """Server reflection lists both services and describes their methods,
    ExportApprovals as a server stream (stock gRPC tools need no .proto)."""
    from test_reflection import files_of, reflect
    out, code = reflect(ch, version, [{"list_services": ""}])
    assert code == OK
    names = {s.name for s in out[0].list_services_response.service}
    assert {"palyra.v1.ApprovalsService", "palyra.v1.UsageService"} <= names
    out, code = reflect(ch, version, [
        {"file_containing_symbol": "palyra.v1.ApprovalsService"}])
    assert code == OK
    svcs = {s.name: s for s in files_of(out[0])[0].service}
    methods = {m.name: m for m in svcs["ApprovalsService"].method}
    assert set(methods) == {"ListApprovals", "GetApproval", "DecideApproval",
                            "ExportApprovals", "ListGrants", "RevokeGrant"}
    assert methods["ExportApprovals"].server_streaming
    assert not methods["DecideApproval"].server_streaming
    assert {m.name for m in svcs["UsageService"].method} == {
        "GetUsage", "ListBudgets", "SetBudget", "DeleteBudget"}


def test_health_knows_the_services(ch):
    from conftest import health_check, health_pb
    for name in ("palyra.v1.ApprovalsService", "palyra.v1.UsageService"):
        r = health_check(ch, name)
        assert r.status == health_pb.HealthCheckResponse.SERVING, (name, r)


# ---------------------------------------------------------------- client tools

ECHO_SCHEMA = json.dumps({"type": "object", "properties": {
    "text": {"type": "string"}}, "required": ["text"],
    "additionalProperties": False})


def client_tool_start(text, tools):
    return pb.RunStreamRequest(start=pb.RunStart(
        input=text, agent="assistant", tools=tools))


def test_client_tool_round_trip(daemon, tokens, ch):
    """A client-side tool: the run waits (WAITING_TOOL) for the client's
    result on the stream, which the model then reads."""
    tool = pb.ToolDeclaration(name="client.echo", description="echoes",
                              parameters_json=ECHO_SCHEMA)
    run = Run(ch, tokens["ann"], first=client_tool_start(
        '/tool client.echo {"text":"hi"}', [tool]))
    call = poll(lambda: (run.of_kind("tool_call") or [None])[0], TIMEOUT,
                what="the tool call").tool_call
    assert call.name == "client.echo" and json.loads(call.arguments_json) == {
        "text": "hi"}, call
    poll(lambda: any(status_of(ev) == S.RUN_STATUS_WAITING_TOOL
                     for ev in run.of_kind("status")), TIMEOUT,
         what="WAITING_TOOL")
    run.send(pb.RunStreamRequest(tool_result=pb.ClientToolResult(
        tool_call_id=call.id, content="echo: hi")))
    run.finish()
    assert run.code == OK, (run.code, run.details)
    result = run.of_kind("tool_result")[0].tool_result
    assert result.content == "echo: hi" and not result.is_error, result
    final = run.of_kind("final")[-1].final.text
    assert "echo: hi" in final, final
    assert status_of(run.events[-1]) == S.RUN_STATUS_COMPLETED


def test_run_start_tool_bounds(daemon, tokens, ch):
    """The front refuses client tools over its bounds before any worker
    sees them: INVALID_ARGUMENT naming what is wrong."""
    many = [pb.ToolDeclaration(name=f"t{i}") for i in range(65)]
    big = [pb.ToolDeclaration(name="big", parameters_json="{" + " " * 17000 + "}")]
    long_name = [pb.ToolDeclaration(name="n" * 65)]
    for tools, want in ((many, "too many tools"),
                        (big, "parameters_json too long"),
                        (long_name, "tool name too long")):
        run = Run(ch, tokens["ann"], first=client_tool_start("hi", tools)).finish()
        assert run.code == grpc.StatusCode.INVALID_ARGUMENT, (run.code, run.details)
        assert want in run.details and run.events == [], run.details


def test_decision_on_a_reattached_stream(daemon, tokens, ch):
    """A second stream of the same principal that reattached to the run
    may decide on it: the worker takes the decision, the first stream sees
    the run complete."""
    run = Run(ch, tokens["ann"])
    aid = run.approval().approval_id
    follower = Run(ch, tokens["ann"], first=pb.RunStreamRequest(
        start=pb.RunStart(run_id=run.events[0].run_id, after_seq=0)))
    poll(lambda: follower.of_kind("approval_request"), TIMEOUT,
         what="the follower's replay")
    follower.send(pb.RunStreamRequest(approval=pb.ApprovalDecision(
        approval_id=aid, decision=pb.APPROVAL_DECISION_ALLOW)))
    assert_tool_flow(run.finish(), allowed=True)
    follower.finish()
    assert follower.code == OK, (follower.code, follower.details)
    assert follower.events == run.events


def test_export_in_many_chunks(daemon, tokens, ch):
    """Enough approvals for several 64 KiB chunks (a TTL grant approves
    each call at once): the gRPC stream relays every chunk, whole lines
    each, and the console streams the same bytes."""
    tok = daemon.mint_token("alpha", "eve", "user")
    run = Run(ch, tok)
    aid = run.approval().approval_id
    r = req(daemon, "POST", f"approvals/{aid}/decision",
            {"decision": "allow", "scope": "ttl", "ttl_ms": 600_000}, token=tok)
    assert r.status == 200 and r.json["scope"] == "ttl", r
    assert len(r.json["grant_id"]) == 32, r.json
    run.finish()

    def many(n):
        c = daemon.new_channel()
        try:
            for _ in range(n):
                x = Run(c, tok, session_key=f"eve-{time.time_ns()}").finish()
                assert x.code == OK, (x.code, x.details)
        finally:
            c.close()
    threads = [threading.Thread(target=many, args=(40,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    call = ch.unary_stream(APPROVALS + "ExportApprovals",
                           request_serializer=pb.ExportApprovalsRequest.SerializeToString,
                           response_deserializer=pb.ExportChunk.FromString)
    chunks = list(call(pb.ExportApprovalsRequest(), metadata=auth_md(tok),
                       timeout=TIMEOUT))
    assert len(chunks) >= 2, len(chunks)
    assert all(c.ndjson.endswith(b"\n") for c in chunks)
    data = b"".join(c.ndjson for c in chunks)
    records = verify_export(data)
    assert len(records) == 161, len(records)
    assert sum(1 for r in records if r["decided_by"].startswith("grant:")) == 160
    assert req(daemon, "GET", "approvals/export", token=tok).raw == data


def test_export_cancelled_by_its_client(daemon, tokens, ch):
    """A client that cancels an export after its first chunk: the front
    drops the rest of journald's replies, holds no open call after it,
    and answers the next export whole."""
    call = ch.unary_stream(APPROVALS + "ExportApprovals",
                           request_serializer=pb.ExportApprovalsRequest.SerializeToString,
                           response_deserializer=pb.ExportChunk.FromString)
    it = call(pb.ExportApprovalsRequest(), metadata=auth_md(tokens["op"]),
              timeout=TIMEOUT)
    first = next(it)
    assert first.ndjson.startswith(b'{"record":'), first.ndjson[:40]
    it.cancel()
    gauge = 'palyra_grpc_streams_active{method="%sExportApprovals"}' % APPROVALS

    def closed():
        lines = [ln for ln in metrics(daemon).splitlines()
                 if ln.startswith(gauge)]
        return not lines or lines[0].endswith(" 0")
    poll(closed, TIMEOUT, what="the cancelled export to close")
    data = b"".join(c.ndjson for c in call(
        pb.ExportApprovalsRequest(), metadata=auth_md(tokens["op"]),
        timeout=TIMEOUT))
    assert len(verify_export(data)) >= 161
