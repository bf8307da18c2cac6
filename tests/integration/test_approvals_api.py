"""ApprovalsService against the real palyrad (issue 7; journald/approvals*.c).

A run of an agent whose policy says `tool "time.now" ask` drives the
offline model's tool demo (`/tool time.now {}`): the worker asks journald
for an approval record and the run waits in WAITING_APPROVAL. Everything
else is a second, independent client (Debian's python3-grpcio):

- list, get and decide out of band, and the run goes on with the decision;
- isolation: a user token of another principal (or another tenant) sees
  nothing and decides nothing (NOT_FOUND); an operator sees and decides;
- the first decision wins: a second one is FAILED_PRECONDITION;
- bad requests are INVALID_ARGUMENT with a message;
- pages walk every approval once, in order;
- ExportApprovals: every line's sha256 and chain recomputed here, the end
  line's count and chain, a user's export holds only its own approvals;
- grants: a SESSION grant approves the next call of the session at once,
  is listed, can be revoked (by its principal, not by another user), and
  once revoked asks again; a TTL grant lists until it expires;
- the arguments summary of an approval is stored and shown with the
  tenant's secret values redacted;
- an approval nobody decides expires (decided_by "timeout") and is then
  closed to decisions;
- a run waiting for an approval survives kill -9 of its worker, and of
  journald: it stays WAITING_APPROVAL, a worker takes it over, and the
  decision made out of band completes it.
"""
import hashlib
import json
import os
import queue
import signal
import threading
import time

import grpc
import pytest

from conftest import (RPC_TIMEOUT, Daemon, _require_binaries, auth_md,
                      event_kind, pb, poll)

S = pb.RunStatus
D = pb.ApprovalDecisionKind
SC = pb.ApprovalScope
AS = pb.ApprovalState

CONFIG = """\
state-dir "{state}"
listen grpc 127.0.0.1:{grpc_port}
listen http 127.0.0.1:{http_port}
journal {{ durability normal }}
provider "offline" {{ type offline }}
provider "keyed" {{ type offline; api-key env:PALYRA_TEST_SECRET }}
tenant "default" {{
    agent "assistant" {{
        providers "offline"
        tool "time.now" ask
        approval-timeout 5m
    }}
    agent "quick" {{
        providers "offline"
        tool "time.*" ask
        approval-timeout 1s
    }}
    agent "keyed" {{
        providers "keyed"
        tool "crm.*" ask
    }}
}}
tenant "other" {{ agent "helper" {{ providers "offline"; tool "time.now" ask }} }}
"""

SERVICE = "/palyra.v1.ApprovalsService/"
METHODS = {
    "ListApprovals": (pb.ListApprovalsRequest, pb.ListApprovalsResponse),
    "GetApproval": (pb.GetApprovalRequest, pb.Approval),
    "DecideApproval": (pb.DecideApprovalRequest, pb.Approval),
    "ListGrants": (pb.ListGrantsRequest, pb.ListGrantsResponse),
    "RevokeGrant": (pb.RevokeGrantRequest, pb.RevokeGrantResponse),
}


SECRET = "sk-palyra-APPROVAL-5d1e7c0b93aa"


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    _require_binaries()
    d = Daemon(tmp_path_factory.mktemp("approvals"), config_template=CONFIG)
    # palyrad's environment: the supervisor resolves env:PALYRA_TEST_SECRET
    # and journald learns the value to redact.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PALYRA_TEST_SECRET", SECRET)
        d.start()
    d.tokens = {
        "alice": d.mint_token("default", "alice", "user"),
        "bob": d.mint_token("default", "bob", "user"),
        "ops": d.mint_token("default", "ops", "operator"),
        "stranger": d.mint_token("other", "alice", "user"),
    }
    yield d
    d.assert_clean_stop()


def call(daemon, method, token, **fields):
    req_t, resp_t = METHODS[method]
    stub = daemon.channel.unary_unary(
        SERVICE + method, request_serializer=req_t.SerializeToString,
        response_deserializer=resp_t.FromString)
    return stub(req_t(**fields), metadata=auth_md(daemon.tokens[token]),
                timeout=RPC_TIMEOUT)


def call_error(daemon, method, token, **fields):
    with pytest.raises(grpc.RpcError) as e:
        call(daemon, method, token, **fields)
    return e.value.code(), e.value.details()


def export(daemon, token, since=0):
    stub = daemon.channel.unary_stream(
        SERVICE + "ExportApprovals",
        request_serializer=pb.ExportApprovalsRequest.SerializeToString,
        response_deserializer=pb.ExportChunk.FromString)
    return [c.ndjson for c in stub(pb.ExportApprovalsRequest(since_unix_ms=since),
                                   metadata=auth_md(daemon.tokens[token]),
                                   timeout=RPC_TIMEOUT)]


def decide(daemon, token, approval_id, kind, scope=0, ttl_ms=0, reason=""):
    return call(daemon, "DecideApproval", token, decision=pb.ApprovalDecision(
        approval_id=approval_id, decision=kind, scope=scope, ttl_ms=ttl_ms,
        reason=reason))


class LiveRun:
    """A RunStream kept open in a thread; its events arrive in a queue."""

    def __init__(self, daemon, token, text, session_id="", agent="", tools=()):
        self.events, self.q = [], queue.Queue()
        self.code = self.details = None
        self.stop = threading.Event()
        first = pb.RunStreamRequest(start=pb.RunStart(
            input=text, agent=agent, session_id=session_id, tools=list(tools)))

        def requests():
            yield first
            self.stop.wait(60)

        stub = daemon.new_channel().stream_stream(
            "/palyra.v1.GatewayService/RunStream",
            request_serializer=pb.RunStreamRequest.SerializeToString,
            response_deserializer=pb.RunEvent.FromString)
        self.it = stub(requests(), metadata=auth_md(daemon.tokens[token]),
                       timeout=60)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        try:
            for ev in self.it:
                self.events.append(ev)
                self.q.put(ev)
            self.code, self.details = self.it.code(), self.it.details()
        except grpc.RpcError as e:
            self.code, self.details = e.code(), e.details()
        finally:
            self.q.put(None)

    def wait_for(self, pred, timeout=RPC_TIMEOUT, what="event"):
        deadline = time.monotonic() + timeout
        for ev in self.events:
            if pred(ev):
                return ev
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out waiting for {what}; got {self.events}")
            try:
                ev = self.q.get(timeout=left)
            except queue.Empty:
                continue
            if ev is None:
                raise AssertionError(
                    f"stream ended ({self.code} {self.details}) before {what}: {self.events}")
            if pred(ev):
                return ev

    def approval_request(self):
        return self.wait_for(lambda e: event_kind(e) == "approval_request",
                             what="an approval request").approval_request

    def finish(self, timeout=RPC_TIMEOUT):
        self.thread.join(timeout)
        self.stop.set()
        assert not self.thread.is_alive(), f"run did not end: {self.events}"
        return self.events

    @property
    def run_id(self):
        return self.wait_for(lambda e: True, what="the first event").run_id

    @property
    def session_id(self):
        return self.wait_for(lambda e: True, what="the first event").session_id


def statuses(events):
    return [e.status.status for e in events if event_kind(e) == "status"]


def tool_result(events):
    res = [e.tool_result for e in events if event_kind(e) == "tool_result"]
    assert len(res) == 1, events
    return res[0]


def test_list_get_decide_out_of_band(daemon):
    t0 = int(time.time() * 1000)
    run = LiveRun(daemon, "alice", "/tool time.now {}")
    req = run.approval_request()
    aid = req.approval_id
    assert len(aid) == 32 and all(c in "0123456789abcdef" for c in aid), aid
    run.wait_for(lambda e: event_kind(e) == "status"
                 and e.status.status == S.RUN_STATUS_WAITING_APPROVAL,
                 what="WAITING_APPROVAL")

    a = call(daemon, "GetApproval", "alice", approval_id=aid)
    assert a.approval_id == aid and a.state == AS.APPROVAL_STATE_PENDING, a
    assert (a.run_id, a.session_id) == (run.run_id, run.session_id), a
    assert (a.principal, a.agent, a.tool_name) == ("alice", "assistant", "time.now"), a
    assert a.tool_call_id == req.tool_call_id and a.tool_call_id, a
    assert t0 - 2000 <= a.created_unix_ms <= a.expires_unix_ms, a
    assert a.expires_unix_ms == req.expires_unix_ms, (a, req)
    assert a.decided_unix_ms == 0 and a.decided_by == "" and a.grant_id == "", a

    listed = call(daemon, "ListApprovals", "alice",
                  state=AS.APPROVAL_STATE_PENDING, run_id=run.run_id)
    assert [x.approval_id for x in listed.approvals] == [aid], listed
    assert listed.next_page_token == "", listed
    # Others: a user of another principal and another tenant's user see
    # nothing; an operator of the tenant sees it.
    assert aid not in [x.approval_id for x in
                       call(daemon, "ListApprovals", "bob").approvals]
    assert len(call(daemon, "ListApprovals", "stranger").approvals) == 0
    assert call_error(daemon, "GetApproval", "bob", approval_id=aid)[0] == \
        grpc.StatusCode.NOT_FOUND
    assert call_error(daemon, "GetApproval", "stranger", approval_id=aid)[0] == \
        grpc.StatusCode.NOT_FOUND
    assert call(daemon, "GetApproval", "ops", approval_id=aid).principal == "alice"
    code, _ = call_error(daemon, "DecideApproval", "bob", decision=pb.ApprovalDecision(
        approval_id=aid, decision=D.APPROVAL_DECISION_DENY))
    assert code == grpc.StatusCode.NOT_FOUND
    # Still pending after the refused attempts.
    assert call(daemon, "GetApproval", "alice", approval_id=aid).state == \
        AS.APPROVAL_STATE_PENDING

    # Out of band, from a second client: the run's principal allows once.
    t1 = int(time.time() * 1000)
    got = decide(daemon, "alice", aid, D.APPROVAL_DECISION_ALLOW,
                 scope=SC.APPROVAL_SCOPE_ONCE, reason="looks fine")
    assert got.state == AS.APPROVAL_STATE_ALLOWED, got
    assert got.scope == SC.APPROVAL_SCOPE_ONCE and got.grant_id == "", got
    assert got.decided_by == "alice" and got.reason == "looks fine", got
    assert got.decided_unix_ms >= t1 - 2000, got

    events = run.finish()
    assert run.code == grpc.StatusCode.OK, (run.code, run.details)
    dec = [e.approval_decided for e in events if event_kind(e) == "approval_decided"]
    assert len(dec) == 1 and dec[0].approval_id == aid, events
    assert dec[0].decision == D.APPROVAL_DECISION_ALLOW and dec[0].decided_by == "alice"
    assert not tool_result(events).is_error, events
    assert statuses(events)[-1] == S.RUN_STATUS_COMPLETED, events

    # The first decision won: another is refused and changes nothing.
    code, msg = call_error(daemon, "DecideApproval", "ops", decision=pb.ApprovalDecision(
        approval_id=aid, decision=D.APPROVAL_DECISION_DENY))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "decided" in msg, msg
    again = call(daemon, "GetApproval", "alice", approval_id=aid)
    assert again.state == AS.APPROVAL_STATE_ALLOWED and again.decided_by == "alice"


def test_operator_denies_out_of_band(daemon):
    run = LiveRun(daemon, "alice", "/tool time.now {}")
    aid = run.approval_request().approval_id
    got = decide(daemon, "ops", aid, D.APPROVAL_DECISION_DENY, reason="not now")
    assert got.state == AS.APPROVAL_STATE_DENIED and got.decided_by == "ops", got
    assert got.scope == SC.APPROVAL_SCOPE_UNSPECIFIED and got.reason == "not now"
    events = run.finish()
    assert run.code == grpc.StatusCode.OK, (run.code, run.details)
    assert tool_result(events).is_error, events
    assert statuses(events)[-1] == S.RUN_STATUS_COMPLETED, events
    assert call(daemon, "GetApproval", "alice", approval_id=aid).state == \
        AS.APPROVAL_STATE_DENIED


@pytest.mark.parametrize("method,fields,needle", [
    ("ListApprovals", {"page_size": 101}, "page_size"),
    ("ListApprovals", {"page_token": "zz"}, "page_token"),
    ("ListApprovals", {"run_id": "no/such"}, "run_id"),
    ("ListApprovals", {"state": 9}, "state"),
    ("GetApproval", {"approval_id": "ABC"}, "approval_id"),
    ("GetApproval", {"approval_id": ""}, "approval_id"),
    ("DecideApproval", {"decision": pb.ApprovalDecision(
        approval_id="0" * 32)}, "ALLOW or DENY"),
    ("DecideApproval", {"decision": pb.ApprovalDecision(
        approval_id="0" * 32, decision=D.APPROVAL_DECISION_ALLOW,
        scope=SC.APPROVAL_SCOPE_TTL, ttl_ms=5)}, "ttl_ms"),
    ("DecideApproval", {"decision": pb.ApprovalDecision(
        approval_id="0" * 32, decision=D.APPROVAL_DECISION_DENY,
        reason="x" * 1025)}, "reason"),
    ("RevokeGrant", {"grant_id": "nope"}, "grant_id"),
])
def test_bad_requests(daemon, method, fields, needle):
    code, msg = call_error(daemon, method, "alice", **fields)
    assert code == grpc.StatusCode.INVALID_ARGUMENT, (code, msg)
    assert needle in msg, msg


def test_unknown_ids_are_not_found(daemon):
    for method, fields in (
            ("GetApproval", {"approval_id": "f" * 32}),
            ("DecideApproval", {"decision": pb.ApprovalDecision(
                approval_id="f" * 32, decision=D.APPROVAL_DECISION_ALLOW)}),
            ("RevokeGrant", {"grant_id": "f" * 32})):
        code, msg = call_error(daemon, method, "ops", **fields)
        assert code == grpc.StatusCode.NOT_FOUND and msg, (method, code, msg)


def pending_for(daemon, n):
    """Starts n runs that each wait for an approval; returns them."""
    runs = [LiveRun(daemon, "alice", "/tool time.now {}") for _ in range(n)]
    for r in runs:
        r.approval_request()
    return runs


def test_pages_and_export(daemon):
    runs = pending_for(daemon, 3)
    for r in runs:
        decide(daemon, "alice", r.approval_request().approval_id,
               D.APPROVAL_DECISION_DENY)
        r.finish()
    bob = LiveRun(daemon, "bob", "/tool time.now {}")
    decide(daemon, "bob", bob.approval_request().approval_id,
           D.APPROVAL_DECISION_ALLOW)
    bob.finish()

    everything = call(daemon, "ListApprovals", "ops", page_size=100).approvals
    assert len(everything) >= 4
    keys = [(a.created_unix_ms, a.approval_id) for a in everything]
    assert keys == sorted(keys), keys
    # Pages of one: every approval once, in the same order.
    seen, token = [], ""
    while True:
        page = call(daemon, "ListApprovals", "ops", page_size=1, page_token=token)
        assert len(page.approvals) <= 1
        seen += [a.approval_id for a in page.approvals]
        token = page.next_page_token
        if not token:
            break
        assert len(seen) <= len(everything), "pages never end"
    assert seen == [a.approval_id for a in everything]
    denied = call(daemon, "ListApprovals", "alice", state=AS.APPROVAL_STATE_DENIED)
    assert {r.approval_request().approval_id for r in runs} <= \
        {a.approval_id for a in denied.approvals}
    assert all(a.state == AS.APPROVAL_STATE_DENIED and a.principal == "alice"
               for a in denied.approvals)

    # The operator's export: every approval, each line verifiable.
    chunks = export(daemon, "ops")
    assert chunks and all(c.endswith(b"\n") for c in chunks), chunks
    assert all(len(c) <= 64 * 1024 for c in chunks)
    records = verify_export(b"".join(chunks))
    assert [r["approval_id"] for r in records] == [a.approval_id for a in everything]
    first = records[0]
    assert set(first) == {
        "approval_id", "run_id", "session_id", "principal", "agent",
        "tool_call_id", "tool_name", "arguments_summary", "state", "scope",
        "decided_by", "reason", "created_unix_ms", "expires_unix_ms",
        "decided_unix_ms", "grant_id"}, first
    by_id = {r["approval_id"]: r for r in records}
    b = by_id[bob.approval_request().approval_id]
    assert (b["state"], b["scope"], b["principal"]) == ("ALLOWED", "ONCE", "bob"), b
    # A user's export: its own approvals only.
    mine = verify_export(b"".join(export(daemon, "bob")))
    assert mine and all(r["principal"] == "bob" for r in mine), mine
    # since_unix_ms: nothing after now.
    assert verify_export(b"".join(export(daemon, "ops",
                                          since=int(time.time() * 1000) + 60000))) == []
    code = None
    try:
        export(daemon, "ops", since=-1)
    except grpc.RpcError as e:
        code = e.code()
    assert code == grpc.StatusCode.INVALID_ARGUMENT


def verify_export(data):
    """Checks an export as gateway.proto ExportChunk says; returns records."""
    lines = data.decode().split("\n")
    assert lines[-1] == "", "the export does not end with a newline"
    lines = lines[:-1]
    chain, records = bytes(32), []
    head = '{"record":'
    for n, line in enumerate(lines[:-1], 1):
        assert line.startswith(head), (n, line)
        # ,"sha256":"H","chain":"C"} has a fixed length.
        suffix = len(',"sha256":"",' + '"chain":""}') + 128
        raw, tail = line[len(head):-suffix], line[-suffix:]
        obj = json.loads(line)
        assert obj["record"] == json.loads(raw), n
        h = hashlib.sha256(raw.encode()).digest()
        assert obj["sha256"] == h.hex(), f"line {n}: sha256"
        chain = hashlib.sha256(chain + h).digest()
        assert obj["chain"] == chain.hex(), f"line {n}: chain"
        assert tail == ',"sha256":"%s","chain":"%s"}' % (h.hex(), chain.hex())
        # Compact, with sorted keys: the bytes are the canonical form.
        assert raw == json.dumps(obj["record"], separators=(",", ":"),
                                 sort_keys=True, ensure_ascii=False), n
        records.append(obj["record"])
    end = json.loads(lines[-1])
    assert end == {"end": {"count": len(records), "chain": chain.hex()}}, end
    return records


def test_session_grant_listed_used_and_revoked(daemon):
    first = LiveRun(daemon, "alice", "/tool time.now {}")
    aid = first.approval_request().approval_id
    got = decide(daemon, "alice", aid, D.APPROVAL_DECISION_ALLOW,
                 scope=SC.APPROVAL_SCOPE_SESSION)
    assert got.scope == SC.APPROVAL_SCOPE_SESSION and len(got.grant_id) == 32, got
    first.finish()
    session = first.session_id

    grants = call(daemon, "ListGrants", "alice").grants
    g = [x for x in grants if x.grant_id == got.grant_id]
    assert len(g) == 1, grants
    g = g[0]
    assert (g.tool_name, g.scope, g.principal, g.agent, g.session_id, g.approval_id) == \
        ("time.now", SC.APPROVAL_SCOPE_SESSION, "alice", "assistant", session, aid), g
    assert g.expires_unix_ms == 0 and g.created_unix_ms > 0, g
    assert got.grant_id in [x.grant_id for x in call(daemon, "ListGrants", "ops").grants]
    assert got.grant_id not in [x.grant_id for x in call(daemon, "ListGrants", "bob").grants]

    # The next call of the session is approved by the grant at once.
    second = LiveRun(daemon, "alice", "/tool time.now {}", session_id=session)
    events = second.finish()
    assert second.code == grpc.StatusCode.OK, (second.code, second.details)
    dec = [e.approval_decided for e in events if event_kind(e) == "approval_decided"]
    assert dec and dec[0].decided_by == "grant:" + got.grant_id, events
    assert not tool_result(events).is_error, events
    a = call(daemon, "GetApproval", "alice", approval_id=dec[0].approval_id)
    assert a.state == AS.APPROVAL_STATE_ALLOWED and a.grant_id == got.grant_id, a
    # Another session is not covered.
    other = LiveRun(daemon, "alice", "/tool time.now {}")
    oid = other.approval_request().approval_id
    decide(daemon, "alice", oid, D.APPROVAL_DECISION_DENY)
    other.finish()

    # Revoked: by its principal only (another user: NOT_FOUND), once.
    assert call_error(daemon, "RevokeGrant", "bob", grant_id=got.grant_id)[0] == \
        grpc.StatusCode.NOT_FOUND
    call(daemon, "RevokeGrant", "alice", grant_id=got.grant_id)
    assert got.grant_id not in [x.grant_id for x in call(daemon, "ListGrants", "alice",
                                                          include_expired=True).grants]
    code, msg = call_error(daemon, "RevokeGrant", "alice", grant_id=got.grant_id)
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "revoked" in msg
    third = LiveRun(daemon, "alice", "/tool time.now {}", session_id=session)
    tid = third.approval_request().approval_id
    assert call(daemon, "GetApproval", "alice", approval_id=tid).state == \
        AS.APPROVAL_STATE_PENDING
    decide(daemon, "alice", tid, D.APPROVAL_DECISION_DENY)
    third.finish()


def test_ttl_grant_expires(daemon):
    run = LiveRun(daemon, "alice", "/tool time.now {}")
    aid = run.approval_request().approval_id
    t0 = int(time.time() * 1000)
    got = decide(daemon, "alice", aid, D.APPROVAL_DECISION_ALLOW,
                 scope=SC.APPROVAL_SCOPE_TTL, ttl_ms=2000)
    run.finish()
    g = [x for x in call(daemon, "ListGrants", "alice").grants
         if x.grant_id == got.grant_id]
    assert len(g) == 1 and g[0].scope == SC.APPROVAL_SCOPE_TTL, g
    assert t0 + 2000 - 1000 <= g[0].expires_unix_ms <= t0 + 2000 + 2000, g
    assert g[0].session_id == ""
    # Meanwhile a run in another session of the principal is covered.
    covered = LiveRun(daemon, "alice", "/tool time.now {}")
    dec = covered.wait_for(lambda e: event_kind(e) == "approval_decided",
                           what="the grant's decision").approval_decided
    assert dec.decided_by == "grant:" + got.grant_id
    covered.finish()
    poll(lambda: got.grant_id not in [x.grant_id for x in call(
        daemon, "ListGrants", "alice").grants], 10, what="the TTL grant to expire")
    assert got.grant_id in [x.grant_id for x in call(
        daemon, "ListGrants", "alice", include_expired=True).grants]
    after = LiveRun(daemon, "alice", "/tool time.now {}")
    nid = after.approval_request().approval_id
    assert call(daemon, "GetApproval", "alice", approval_id=nid).state == \
        AS.APPROVAL_STATE_PENDING
    decide(daemon, "alice", nid, D.APPROVAL_DECISION_DENY)
    after.finish()


def get_run(daemon, token, run_id):
    stub = daemon.channel.unary_unary(
        "/palyra.v1.GatewayService/GetRun",
        request_serializer=pb.GetRunRequest.SerializeToString,
        response_deserializer=pb.Run.FromString)
    return stub(pb.GetRunRequest(run_id=run_id),
                metadata=auth_md(daemon.tokens[token]), timeout=RPC_TIMEOUT)


def run_events(daemon, token, run_id, after_seq=0, timeout=RPC_TIMEOUT):
    stub = daemon.channel.unary_stream(
        "/palyra.v1.GatewayService/ListRunEvents",
        request_serializer=pb.ListRunEventsRequest.SerializeToString,
        response_deserializer=pb.RunEvent.FromString)
    return list(stub(pb.ListRunEventsRequest(run_id=run_id, after_seq=after_seq),
                     metadata=auth_md(daemon.tokens[token]), timeout=timeout))


def test_pending_approval_survives_worker_kill(daemon):
    run = LiveRun(daemon, "alice", "/tool time.now {}")
    aid = run.approval_request().approval_id
    run.wait_for(lambda e: event_kind(e) == "status"
                 and e.status.status == S.RUN_STATUS_WAITING_APPROVAL,
                 what="WAITING_APPROVAL")
    workers = daemon.pids_of("palyra-worker", "default")
    assert workers, "no worker of tenant default"
    for pid in workers:
        os.kill(pid, signal.SIGKILL)
    # A new worker of the tenant comes up and takes the run over.
    poll(lambda: [p for p in daemon.pids_of("palyra-worker", "default")
                  if p not in workers], 15, what="a new worker")
    run.stop.set()
    assert get_run(daemon, "alice", run.run_id).status == \
        S.RUN_STATUS_WAITING_APPROVAL
    assert call(daemon, "GetApproval", "alice", approval_id=aid).state == \
        AS.APPROVAL_STATE_PENDING

    # Decided out of band: the recovered run goes on to the end.
    def decided():
        try:
            return decide(daemon, "alice", aid, D.APPROVAL_DECISION_ALLOW)
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.FAILED_PRECONDITION:
                raise AssertionError(f"decided by someone else: {e.details()}")
            raise
    got = decided()
    assert got.state == AS.APPROVAL_STATE_ALLOWED, got
    poll(lambda: get_run(daemon, "alice", run.run_id).status == S.RUN_STATUS_COMPLETED,
         20, what="the recovered run to complete")
    events = run_events(daemon, "alice", run.run_id)
    kinds = [event_kind(e) for e in events]
    assert [e.seq for e in events] == list(range(1, len(events) + 1)), events
    st = statuses(events)
    assert S.RUN_STATUS_INTERRUPTED not in st, events
    assert st[-1] == S.RUN_STATUS_COMPLETED, events
    assert kinds.count("approval_request") == 1, kinds
    dec = [e.approval_decided for e in events if event_kind(e) == "approval_decided"]
    assert len(dec) == 1 and dec[0].approval_id == aid and dec[0].decided_by == "alice"
    assert not tool_result(events).is_error, events


def test_timeout_expires_the_approval(daemon):
    run = LiveRun(daemon, "alice", "/tool time.now {}", agent="quick")
    req = run.approval_request()
    events = run.finish()
    assert run.code == grpc.StatusCode.OK, (run.code, run.details)
    dec = [e.approval_decided for e in events if event_kind(e) == "approval_decided"]
    assert len(dec) == 1 and dec[0].decided_by == "timeout", events
    assert dec[0].decision == D.APPROVAL_DECISION_DENY
    assert tool_result(events).is_error, events
    a = call(daemon, "GetApproval", "alice", approval_id=req.approval_id)
    assert a.state == AS.APPROVAL_STATE_EXPIRED and a.decided_by == "timeout", a
    assert a.agent == "quick" and a.decided_unix_ms >= a.expires_unix_ms - 1000, a
    code, _ = call_error(daemon, "DecideApproval", "alice", decision=pb.ApprovalDecision(
        approval_id=req.approval_id, decision=D.APPROVAL_DECISION_ALLOW))
    assert code == grpc.StatusCode.FAILED_PRECONDITION


def test_pending_approval_survives_journald_kill(daemon):
    run = LiveRun(daemon, "alice", "/tool time.now {}")
    aid = run.approval_request().approval_id
    run.wait_for(lambda e: event_kind(e) == "status"
                 and e.status.status == S.RUN_STATUS_WAITING_APPROVAL,
                 what="WAITING_APPROVAL")
    old = daemon.pids_of("palyra-journald")
    assert len(old) == 1, old
    os.kill(old[0], signal.SIGKILL)
    poll(lambda: [p for p in daemon.pids_of("palyra-journald") if p not in old],
         15, what="a new journald")
    run.stop.set()

    # The restarted journald did not interrupt it; deciding completes it.
    def waiting():
        return get_run(daemon, "alice", run.run_id).status == \
            S.RUN_STATUS_WAITING_APPROVAL
    poll(waiting, 15, what="the journal to answer again")
    got = decide(daemon, "alice", aid, D.APPROVAL_DECISION_ALLOW)
    assert got.state == AS.APPROVAL_STATE_ALLOWED, got
    poll(lambda: get_run(daemon, "alice", run.run_id).status == S.RUN_STATUS_COMPLETED,
         20, what="the run to complete")
    st = statuses(run_events(daemon, "alice", run.run_id))
    assert S.RUN_STATUS_INTERRUPTED not in st and st[-1] == S.RUN_STATUS_COMPLETED, st


def test_run_ending_closes_its_pending_approval(daemon):
    run = LiveRun(daemon, "alice", "/tool time.now {}")
    aid = run.approval_request().approval_id
    stub = daemon.channel.unary_unary(
        "/palyra.v1.GatewayService/AbortRun",
        request_serializer=pb.AbortRunRequest.SerializeToString,
        response_deserializer=pb.AbortRunResponse.FromString)
    stub(pb.AbortRunRequest(run_id=run.run_id, reason="changed my mind"),
         metadata=auth_md(daemon.tokens["alice"]), timeout=RPC_TIMEOUT)
    run.finish()
    assert statuses(run.events)[-1] == S.RUN_STATUS_CANCELLED, run.events
    a = call(daemon, "GetApproval", "alice", approval_id=aid)
    assert a.state == AS.APPROVAL_STATE_EXPIRED and a.decided_by == "run ended", a
    assert aid not in [x.approval_id for x in call(
        daemon, "ListApprovals", "ops", state=AS.APPROVAL_STATE_PENDING).approvals]
    code, msg = call_error(daemon, "DecideApproval", "alice", decision=pb.ApprovalDecision(
        approval_id=aid, decision=D.APPROVAL_DECISION_ALLOW))
    assert code == grpc.StatusCode.FAILED_PRECONDITION, (code, msg)


def test_pending_approval_survives_worker_and_journald_kill(daemon):
    run = LiveRun(daemon, "alice", "/tool time.now {}")
    aid = run.approval_request().approval_id
    run.wait_for(lambda e: event_kind(e) == "status"
                 and e.status.status == S.RUN_STATUS_WAITING_APPROVAL,
                 what="WAITING_APPROVAL")
    workers = daemon.pids_of("palyra-worker", "default")
    journald = daemon.pids_of("palyra-journald")
    for pid in workers + journald:
        os.kill(pid, signal.SIGKILL)
    run.stop.set()
    # The new journald finds the run waiting at its start and asks for a
    # worker; the decision is taken whether or not it arrived yet.
    poll(lambda: [p for p in daemon.pids_of("palyra-journald") if p not in journald],
         15, what="a new journald")

    def decided():
        return decide(daemon, "alice", aid, D.APPROVAL_DECISION_ALLOW)
    got = poll(decided, 15, what="the decision to be taken")
    assert got.state == AS.APPROVAL_STATE_ALLOWED, got
    poll(lambda: get_run(daemon, "alice", run.run_id).status == S.RUN_STATUS_COMPLETED,
         20, what="the run to complete")
    assert [p for p in daemon.pids_of("palyra-worker", "default") if p not in workers]
    st = statuses(run_events(daemon, "alice", run.run_id))
    assert S.RUN_STATUS_INTERRUPTED not in st and st[-1] == S.RUN_STATUS_COMPLETED, st


def test_summary_redacted(daemon):
    tool = pb.ToolDeclaration(name="crm.lookup", description="Looks a key up.",
                              parameters_json='{"type":"object"}')
    run = LiveRun(daemon, "alice", '/tool crm.lookup {"key":"%s"}' % SECRET,
                  agent="keyed", tools=[tool])
    req = run.approval_request()
    assert req.tool_name == "crm.lookup", req
    assert SECRET not in req.arguments_summary, req
    assert "[REDACTED]" in req.arguments_summary, req
    a = call(daemon, "GetApproval", "alice", approval_id=req.approval_id)
    assert a.arguments_summary == req.arguments_summary, (a, req)
    decide(daemon, "alice", req.approval_id, D.APPROVAL_DECISION_DENY,
           reason="no, not with %s" % SECRET)
    events = run.finish()
    assert run.code == grpc.StatusCode.OK, (run.code, run.details)
    dec = [e.approval_decided for e in events if event_kind(e) == "approval_decided"]
    assert dec and SECRET not in dec[0].reason, dec
    a = call(daemon, "GetApproval", "alice", approval_id=req.approval_id)
    assert SECRET not in str(a) and "[REDACTED]" in a.reason, a
    assert SECRET.encode() not in b"".join(export(daemon, "ops"))
