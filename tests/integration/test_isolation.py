"""Isolation between tenants and principals, deadlines and resume (issue #5).

One palyrad with two tenants, "alpha" (A) and "beta" (B). B holds a session
with a finished run, a live slow run and a runtime agent. Every
GatewayService method, every /admin/v1 route that takes a tenant and (once
it exists) the console API are called with A's tokens on B's ids, and with
one principal's token on another principal's ids inside A. The rule
(README, "Isolation"):

  - another tenant's resource, or another principal's (role user), is
    NOT_FOUND (HTTP 404), exactly as one that never existed, whatever the
    method: reads, aborts, notes, reattaches, starts in its session,
    cleanups, agent reads and writes. A finished run of B is NOT_FOUND too,
    never FAILED_PRECONDITION, which would tell that it exists.
  - PERMISSION_DENIED only where the role forbids the method whatever the
    id: agent writes with role user. It is answered before any lookup, so
    it says nothing about B either.
  - listings (ListSessions, ListAgents) answer OK with the caller's own
    tenant only; ResolveSession derives the id from the caller's tenant and
    principal, so it never names B's session.
  - CreateAgent with the name of B's agent creates A's own agent: names
    are per tenant.
  - /admin/v1 takes the host's admin token only: any tenant token, even
    one with role admin, is 401.

Memory items, secrets and cron jobs (issue 8: MemoryService,
VaultService, CronService and their console routes) follow the same rule;
GetSecret and DeleteSecret are role-checked like agent writes.

After the calls, B's tokens see everything as it was: the live run was
never cancelled or noted and completes, the finished run's events are the
same, the session is open, the agent unchanged, no token was minted or
revoked, nothing was backed up or pruned.

Then, in A: a RunStream whose gRPC deadline is shorter than its run gets
DEADLINE_EXCEEDED and the run ends CANCELLED "deadline exceeded" (while a
reattached follower or ListRunEvents with a deadline leaves the run alone),
and a client that drops mid-run (cancel_on_disconnect false) resumes with
(run_id, after_seq) with no gap and no duplicate.

The matrix rows run in file order against one module daemon; B's live run
lasts about 12 s, longer than the whole matrix.
"""
import http.client
import json
import os
import queue
import sqlite3
import struct
import subprocess
import threading
import time

import grpc
import pytest

from conftest import (_blob, _require_binaries, auth_md, event_kind,
                      http_request, journal_events, pb, poll, run_stream,
                      Daemon)

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
	agent "asker" {{
		providers "offline"
		tool "time.now" ask
	}}
}}
tenant "beta" {{
	agent "assistant" {{ providers "offline" }}
	agent "snail" {{ providers "slow" }}
	agent "asker" {{
		providers "offline"
		tool "time.now" ask
	}}
}}
"""
TENANTS = ("alpha", "beta")
A, B = TENANTS

SVC = "/palyra.v1.GatewayService/"
APPROVALS = "/palyra.v1.ApprovalsService/"
USAGE = "/palyra.v1.UsageService/"
TOOL_INPUT = "/tool time.now {}"
B_BUDGET = "agent:asker:tokens:month"
TIMEOUT = 10.0
DEADLINE = 30.0
# About 300 tokens at 40 ms: a run of about 12 s, outliving the matrix.
LONG_INPUT = " ".join(f"w{i}" for i in range(290))
# About 110 tokens: 4 to 5 s, for the deadline and resume tests.
SLOW_INPUT = " ".join(f"v{i}" for i in range(100))
B_AGENT = "beta-secret-agent"
B_PROMPT = "Only beta may read this."
B_KEY = "carol-notes"
A_KEY = "alice-notes"

S = pb.RunStatus
TERMINAL = {S.RUN_STATUS_COMPLETED, S.RUN_STATUS_FAILED,
            S.RUN_STATUS_CANCELLED, S.RUN_STATUS_INTERRUPTED}
NOT_FOUND = grpc.StatusCode.NOT_FOUND
DENIED = grpc.StatusCode.PERMISSION_DENIED
OK = grpc.StatusCode.OK


# ---------------------------------------------------------------- clients

def unary(ch, name, req, resp_cls, token, timeout=TIMEOUT):
    call = ch.unary_unary(name if name.startswith("/") else SVC + name,
                          request_serializer=type(req).SerializeToString,
                          response_deserializer=resp_cls.FromString)
    return call(req, metadata=auth_md(token), timeout=timeout)


def get_run(ch, token, run_id):
    return unary(ch, "GetRun", pb.GetRunRequest(run_id=run_id), pb.Run, token)


def list_run_events(ch, token, run_id, after_seq=0, timeout=DEADLINE):
    call = ch.unary_stream(
        SVC + "ListRunEvents",
        request_serializer=pb.ListRunEventsRequest.SerializeToString,
        response_deserializer=pb.RunEvent.FromString)
    return list(call(pb.ListRunEventsRequest(run_id=run_id, after_seq=after_seq),
                     metadata=auth_md(token), timeout=timeout))


def list_sessions(ch, token):
    out, page = [], ""
    while True:
        r = unary(ch, "ListSessions",
                  pb.ListSessionsRequest(page_size=100, page_token=page),
                  pb.ListSessionsResponse, token)
        out.extend(r.sessions)
        if not r.next_page_token:
            return out
        page = r.next_page_token


def get_agent(ch, token, name):
    return unary(ch, "GetAgent", pb.GetAgentRequest(name=name), pb.Agent, token)


def list_agents(ch, token):
    return unary(ch, "ListAgents", pb.ListAgentsRequest(),
                 pb.ListAgentsResponse, token).agents


class Stream(threading.Thread):
    """One RunStream whose events are visible while it runs; the client
    goes away (cancels its call, or closes its connection) after
    stop_after events."""

    def __init__(self, ch, token, start, stop_after=None, timeout=DEADLINE,
                 close_channel=False):
        super().__init__(daemon=True)
        self.ch, self.token, self.start_msg = ch, token, start
        self.stop_after, self.timeout = stop_after, timeout
        self.close_channel = close_channel
        self.events = []
        self.code = self.details = None
        self._lock = threading.Lock()
        self._requests = queue.Queue()
        self._done = threading.Event()

    def run(self):
        def requests():
            yield pb.RunStreamRequest(start=self.start_msg)
            while not self._done.is_set():
                try:
                    yield self._requests.get(timeout=0.05)
                except queue.Empty:
                    continue

        call = self.ch.stream_stream(
            SVC + "RunStream",
            request_serializer=pb.RunStreamRequest.SerializeToString,
            response_deserializer=pb.RunEvent.FromString)
        it = call(requests(), metadata=auth_md(self.token), timeout=self.timeout)
        try:
            for ev in it:
                with self._lock:
                    self.events.append(ev)
                if self.stop_after is not None and len(self.events) >= self.stop_after:
                    if self.close_channel:
                        self.ch.close()
                    else:
                        it.cancel()
                    break
            self.code, self.details = it.code(), it.details()
        except grpc.RpcError as e:
            self.code, self.details = e.code(), e.details()
        except ValueError:  # the channel was closed under the call
            self.code, self.details = grpc.StatusCode.CANCELLED, "closed"
        finally:
            self._done.set()

    def count(self):
        with self._lock:
            return len(self.events)

    def run_id(self):
        with self._lock:
            return self.events[0].run_id if self.events else None

    def finish(self, timeout=DEADLINE):
        self.join(timeout)
        assert not self.is_alive(), f"stream still open after {timeout}s"
        return self


def wait_approval(stream):
    """The approval id of the stream's first approval request."""
    def got():
        with stream._lock:
            reqs = [ev for ev in stream.events
                    if event_kind(ev) == "approval_request"]
        if not reqs and stream._done.is_set():
            raise AssertionError(f"run ended: {stream.code} {stream.details}")
        return reqs[0].approval_request.approval_id if reqs else None
    return poll(got, TIMEOUT, what="an approval request")


def start_stream(ch, token, text, agent="snail", session_key="", **kw):
    s = Stream(ch, token, pb.RunStart(input=text, agent=agent,
                                      session_key=session_key,
                                      cancel_on_disconnect=False), **kw)
    s.start()
    return s


def journal_run(d, tenant, run_id):
    rows = journal_events(d.journal_path(tenant), run_id)
    return sorted((pb.RunEvent.FromString(_blob(r[5])) for r in rows),
                  key=lambda ev: ev.seq)


def assert_one_run_tape(events, where):
    """seq 1..n, no gap, no duplicate, exactly one terminal status, last."""
    seqs = [ev.seq for ev in events]
    assert seqs == list(range(1, len(seqs) + 1)), f"{where}: seqs {seqs}"
    terminal = [ev for ev in events if event_kind(ev) == "status"
                and ev.status.status in TERMINAL]
    assert len(terminal) == 1, f"{where}: {len(terminal)} terminal statuses"
    assert terminal[0] is events[-1], f"{where}: terminal status not last"


def http_from(d, src, method, path, body=None, token=None):
    """One HTTP request from the loopback source address src, so that the
    401s of one row do not use up another row's allowance of failed
    authentications (rate-limited per source address)."""
    conn = http.client.HTTPConnection("127.0.0.1", d.http_port,
                                      timeout=TIMEOUT, source_address=(src, 0))
    try:
        headers = {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        conn.request(method, path, body=data, headers=headers)
        r = conn.getresponse()
        text = r.read()
        try:
            return r.status, json.loads(text)
        except ValueError:
            return r.status, text.decode("utf-8", "replace")
    finally:
        conn.close()


# ---------------------------------------------------------------- the world

class World:
    pass


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    _require_binaries()
    d = Daemon(tmp_path_factory.mktemp("isolation") / "d", CONFIG, TENANTS)
    d.start()
    w = World()
    w.d = d
    w.ch = d.new_channel()
    w.tok = {
        "A/alice": d.mint_token(A, "alice", "user"),
        "A/bob": d.mint_token(A, "bob", "user"),
        "A/op": d.mint_token(A, "op", "operator"),
        "A/root": d.mint_token(A, "root", "admin"),
        "B/admin": d.mint_token(B, "admin", "admin"),
    }
    st, body = http_request(d, "POST", "/admin/v1/tokens",
                            {"tenant": B, "principal": "carol", "role": "user"},
                            token=d.admin_token)
    assert st == 201, (st, body)
    w.tok["B/carol"] = body["token"]
    w.carol_token_id = body["token_id"]
    carol, alice = w.tok["B/carol"], w.tok["A/alice"]

    # B: a finished run in a session, a live slow run, a runtime agent.
    res = run_stream(w.ch, carol, "beta finished", agent="assistant",
                     session_key=B_KEY)
    assert res.code == OK, res
    w.b_run, w.b_session = res.events[0].run_id, res.events[0].session_id
    w.b_live = start_stream(w.ch, carol, LONG_INPUT, session_key="carol-live")
    poll(lambda: w.b_live.count() >= 3, TIMEOUT, what="B's live run")
    w.b_live_id = w.b_live.run_id()
    w.b_live_session = w.b_live.events[0].session_id
    w.b_agent = unary(w.ch, "CreateAgent", pb.CreateAgentRequest(agent=pb.Agent(
        name=B_AGENT, system_prompt=B_PROMPT, providers=["offline"])),
        pb.Agent, w.tok["B/admin"])

    # A: alice's finished run in a session and a live slow run.
    res = run_stream(w.ch, alice, "alpha finished", agent="assistant",
                     session_key=A_KEY)
    assert res.code == OK, res
    w.a_run, w.a_session = res.events[0].run_id, res.events[0].session_id
    w.a_live = start_stream(w.ch, alice, LONG_INPUT, session_key="alice-live")
    poll(lambda: w.a_live.count() >= 3, TIMEOUT, what="alice's live run")
    w.a_live_id = w.a_live.run_id()

    # Issue 7: in B, carol's decided approval that made a session grant,
    # her pending approval (a run waiting), and a runtime budget; in A,
    # alice's pending approval.
    w.b_grant_run = start_stream(w.ch, carol, TOOL_INPUT, agent="asker",
                                 session_key="carol-grant")
    first = wait_approval(w.b_grant_run)
    decided = unary(w.ch, APPROVALS + "DecideApproval",
                    pb.DecideApprovalRequest(decision=pb.ApprovalDecision(
                        approval_id=first, decision=pb.APPROVAL_DECISION_ALLOW,
                        scope=pb.APPROVAL_SCOPE_SESSION)), pb.Approval, carol)
    w.b_grant = decided.grant_id
    assert w.b_grant, decided
    w.b_grant_run.finish()
    w.b_ask = start_stream(w.ch, carol, TOOL_INPUT, agent="asker",
                           session_key="carol-ask")
    w.b_approval = wait_approval(w.b_ask)
    unary(w.ch, USAGE + "SetBudget", pb.SetBudgetRequest(budget=pb.Budget(
        scope=pb.BUDGET_SCOPE_AGENT, subject="asker",
        unit=pb.BUDGET_UNIT_TOKENS, period=pb.BUDGET_PERIOD_MONTH,
        limit=1_000_000)), pb.Budget, w.tok["B/admin"])
    w.a_ask = start_stream(w.ch, alice, TOOL_INPUT, agent="asker",
                           session_key="alice-ask")
    w.a_approval = wait_approval(w.a_ask)

    # What B sees now, to compare with after the matrix.
    w.b_before = {
        "approval": unary(w.ch, APPROVALS + "GetApproval",
                          pb.GetApprovalRequest(approval_id=w.b_approval),
                          pb.Approval, carol),
        "grants": unary(w.ch, APPROVALS + "ListGrants", pb.ListGrantsRequest(),
                        pb.ListGrantsResponse, carol),
        "budgets": sorted((b.budget_id, b.limit) for b in unary(
            w.ch, USAGE + "ListBudgets", pb.ListBudgetsRequest(),
            pb.ListBudgetsResponse, carol).budgets),
        "run": get_run(w.ch, carol, w.b_run),
        "events": list_run_events(w.ch, carol, w.b_run),
        "sessions": sorted((s.session_id, s.closed_unix_ms, s.run_count)
                           for s in list_sessions(w.ch, carol)),
        "agent": get_agent(w.ch, w.tok["B/admin"], B_AGENT),
        "agents": list(list_agents(w.ch, carol)),
        "tokens": http_request(d, "GET", f"/admin/v1/tokens?tenant={B}",
                               token=d.admin_token),
    }
    assert w.b_before["tokens"][0] == 200, w.b_before["tokens"]
    w.src = iter(f"127.0.{i // 250 + 1}.{i % 250 + 2}" for i in range(100000))
    yield w
    w.ch.close()
    try:
        d.assert_clean_stop()
    finally:
        if not d.stopped:
            d.kill()


# ---------------------------------------------------------------- the matrix

def rpc_code(fn):
    try:
        r = fn()
    except grpc.RpcError as e:
        return e.code(), e.details(), None
    return OK, "", r


def _stream_code(ch, token, start):
    """A RunStream with one start message: its status and events."""
    call = ch.stream_stream(
        SVC + "RunStream",
        request_serializer=pb.RunStreamRequest.SerializeToString,
        response_deserializer=pb.RunEvent.FromString)
    it = call(iter([pb.RunStreamRequest(start=start)]),
              metadata=auth_md(token), timeout=TIMEOUT)
    events = []
    try:
        for ev in it:
            events.append(ev)
        return it.code(), it.details(), events
    except grpc.RpcError as e:
        return e.code(), e.details(), events


# Each row: (name, call(world, token) -> (code, details, response), expected
# code for the roles user / operator / admin). The calls use A's tokens on
# B's ids; "own" rows check what the caller's own tenant answers instead.
def _get_run(rid):
    return lambda w, t: rpc_code(lambda: get_run(w.ch, t, rid(w)))


def _abort(rid):
    return lambda w, t: rpc_code(lambda: unary(
        w.ch, "AbortRun", pb.AbortRunRequest(run_id=rid(w), reason="mallory"),
        pb.AbortRunResponse, t))


def _events(rid, after=0):
    return lambda w, t: rpc_code(lambda: list_run_events(w.ch, t, rid(w), after,
                                                         timeout=TIMEOUT))


def _reattach(rid, after=0):
    return lambda w, t: _stream_code(w.ch, t, pb.RunStart(run_id=rid(w),
                                                          after_seq=after))


def _start_in(sid):
    return lambda w, t: _stream_code(w.ch, t, pb.RunStart(
        session_id=sid(w), input="let me in", agent="assistant"))


def _cleanup(sid):
    return lambda w, t: rpc_code(lambda: unary(
        w.ch, "CleanupSession", pb.CleanupSessionRequest(session_id=sid(w)),
        pb.CleanupSessionResponse, t))


def _note(rid):
    return lambda w, t: rpc_code(lambda: unary(
        w.ch, "AppendEvent", pb.AppendEventRequest(run_id=rid(w), text="mallory was here"),
        pb.AppendEventResponse, t))


def _get_agent(w, t):
    return rpc_code(lambda: get_agent(w.ch, t, B_AGENT))


def _update_agent(w, t):
    return rpc_code(lambda: unary(w.ch, "UpdateAgent", pb.UpdateAgentRequest(
        name=B_AGENT, system_prompt="taken over", providers=["slow"]),
        pb.Agent, t))


def _delete_agent(w, t):
    return rpc_code(lambda: unary(w.ch, "DeleteAgent",
                                  pb.DeleteAgentRequest(name=B_AGENT),
                                  pb.DeleteAgentResponse, t))


def _get_approval(aid):
    return lambda w, t: rpc_code(lambda: unary(
        w.ch, APPROVALS + "GetApproval", pb.GetApprovalRequest(approval_id=aid(w)),
        pb.Approval, t))


def _decide(aid):
    return lambda w, t: rpc_code(lambda: unary(
        w.ch, APPROVALS + "DecideApproval", pb.DecideApprovalRequest(
            decision=pb.ApprovalDecision(
                approval_id=aid(w), decision=pb.APPROVAL_DECISION_ALLOW,
                scope=pb.APPROVAL_SCOPE_TTL, ttl_ms=3_600_000,
                reason="mallory")),
        pb.Approval, t))


def _revoke_grant(w, t):
    return rpc_code(lambda: unary(
        w.ch, APPROVALS + "RevokeGrant", pb.RevokeGrantRequest(grant_id=w.b_grant),
        pb.RevokeGrantResponse, t))


def _delete_budget(w, t):
    return rpc_code(lambda: unary(
        w.ch, USAGE + "DeleteBudget", pb.DeleteBudgetRequest(budget_id=B_BUDGET),
        pb.DeleteBudgetResponse, t))


def _run_b_agent(w, t):
    return _stream_code(w.ch, t, pb.RunStart(input="hi", agent=B_AGENT))


b_run = lambda w: w.b_run  # noqa: E731
b_live = lambda w: w.b_live_id  # noqa: E731
b_session = lambda w: w.b_session  # noqa: E731
b_live_session = lambda w: w.b_live_session  # noqa: E731
b_approval = lambda w: w.b_approval  # noqa: E731
a_approval = lambda w: w.a_approval  # noqa: E731

NF = {"user": NOT_FOUND, "operator": NOT_FOUND, "admin": NOT_FOUND}
WRITE = {"user": DENIED, "operator": NOT_FOUND, "admin": NOT_FOUND}

GRPC_ROWS = [
    ("GetRun finished", _get_run(b_run), NF, True),
    ("GetRun live", _get_run(b_live), NF, True),
    ("AbortRun live", _abort(b_live), NF, False),
    ("AbortRun finished", _abort(b_run), NF, False),
    ("ListRunEvents live", _events(b_live), NF, False),
    ("ListRunEvents finished", _events(b_run, 1), NF, True),
    ("RunStream reattach live", _reattach(b_live), NF, False),
    ("RunStream reattach finished", _reattach(b_run, 2), NF, True),
    ("RunStream start in session", _start_in(b_session), NF, False),
    ("RunStream start in live session", _start_in(b_live_session), NF, False),
    ("RunStream start with agent", _run_b_agent, NF, False),
    ("CleanupSession", _cleanup(b_session), NF, False),
    ("CleanupSession live", _cleanup(b_live_session), NF, False),
    ("AppendEvent live", _note(b_live), NF, False),
    ("AppendEvent finished", _note(b_run), NF, False),
    ("GetAgent", _get_agent, NF, True),
    ("UpdateAgent", _update_agent, WRITE, False),
    ("DeleteAgent", _delete_agent, WRITE, False),
    ("GetApproval", _get_approval(b_approval), NF, True),
    ("DecideApproval", _decide(b_approval), NF, False),
    ("RevokeGrant", _revoke_grant, NF, False),
    ("DeleteBudget", _delete_budget, WRITE, False),
]
A_TOKENS = [("A/alice", "user"), ("A/bob", "user"), ("A/op", "operator"),
            ("A/root", "admin")]


def assert_b_live_untouched(w):
    """B's live run is not cancelled, failed or noted (it may have
    completed by now)."""
    run = get_run(w.ch, w.tok["B/carol"], w.b_live_id)
    assert run.status in (S.RUN_STATUS_IN_PROGRESS, S.RUN_STATUS_COMPLETED), run
    with w.b_live._lock:
        evs = list(w.b_live.events)
    assert not [ev for ev in evs if event_kind(ev) == "note"], "B's run got a note"
    assert not [ev for ev in evs if event_kind(ev) == "status"
                and ev.status.status in (S.RUN_STATUS_CANCELLED, S.RUN_STATUS_FAILED)]


@pytest.mark.parametrize("name,fn", [r[:2] for r in GRPC_ROWS if r[3]],
                         ids=[r[0] for r in GRPC_ROWS if r[3]])
def test_grpc_rows_control(world, name, fn):
    """The read rows answer OK for B's own carol: the ids are real, so A's
    NOT_FOUND below is isolation, not a typo."""
    code, details, _ = fn(world, world.tok["B/carol"])
    assert code == OK, f"carol {name} on her own: {code} {details!r}"


@pytest.mark.parametrize("who,role", A_TOKENS, ids=[t for t, _ in A_TOKENS])
@pytest.mark.parametrize("name,fn,expect,control", GRPC_ROWS,
                         ids=[r[0] for r in GRPC_ROWS])
def test_grpc_cross_tenant(world, who, role, name, fn, expect, control):
    w = world
    code, details, _ = fn(w, w.tok[who])
    assert code == expect[role], f"{who} {name} on B: {code} {details!r}"
    if code == NOT_FOUND:
        # Worded as for an id that never existed: nothing about B.
        assert B not in details and "principal" not in details, details
    assert_b_live_untouched(w)


@pytest.mark.parametrize("who", [t for t, _ in A_TOKENS])
def test_grpc_cross_tenant_listings(world, who):
    """Listings answer with A's own things only; ResolveSession with B's
    key names A's own (not yet created) session, never B's."""
    w = world
    t = w.tok[who]
    ids = {s.session_id for s in list_sessions(w.ch, t)}
    assert not ids & {w.b_session, w.b_live_session}, ids
    names = {a.name for a in list_agents(w.ch, t)}
    assert B_AGENT not in names, names
    s = unary(w.ch, "ResolveSession", pb.ResolveSessionRequest(session_key=B_KEY),
              pb.Session, t)
    assert s.session_id != w.b_session and s.created_unix_ms == 0, s
    assert s.principal == who.split("/")[1]


def _export(ch, token):
    call = ch.unary_stream(
        APPROVALS + "ExportApprovals",
        request_serializer=pb.ExportApprovalsRequest.SerializeToString,
        response_deserializer=pb.ExportChunk.FromString)
    return b"".join(c.ndjson for c in call(pb.ExportApprovalsRequest(),
                                           metadata=auth_md(token),
                                           timeout=TIMEOUT))


@pytest.mark.parametrize("who", [t for t, _ in A_TOKENS])
def test_grpc_cross_tenant_governance_listings(world, who):
    """ListApprovals, ExportApprovals, ListGrants, ListBudgets and GetUsage
    answer with A's own things only, the console's routes too."""
    w = world
    t = w.tok[who]
    ids = {a.approval_id for a in unary(
        w.ch, APPROVALS + "ListApprovals", pb.ListApprovalsRequest(page_size=100),
        pb.ListApprovalsResponse, t).approvals}
    assert w.b_approval not in ids, ids
    export = _export(w.ch, t)
    assert export.endswith(b"\n") and b'"end"' in export, export[-200:]
    assert w.b_approval.encode() not in export and b"carol" not in export
    grants = unary(w.ch, APPROVALS + "ListGrants",
                   pb.ListGrantsRequest(include_expired=True),
                   pb.ListGrantsResponse, t).grants
    assert w.b_grant not in {g.grant_id for g in grants}
    budgets = unary(w.ch, USAGE + "ListBudgets", pb.ListBudgetsRequest(),
                    pb.ListBudgetsResponse, t).budgets
    assert B_BUDGET not in {b.budget_id for b in budgets}, budgets
    usage = unary(w.ch, USAGE + "GetUsage", pb.GetUsageRequest(
        group_by=["principal"]), pb.GetUsageResponse, t)
    assert "carol" not in {r.principal for r in usage.rows}, usage
    for path in ("approvals", "approvals/export", "grants?include_expired=1",
                 "budgets", "usage?group_by=principal"):
        st, body = http_request(w.d, "GET", "/console/v1/" + path, token=t)
        assert st == 200, (who, path, st, body)
        text = body if isinstance(body, str) else json.dumps(body)
        for secret in (w.b_approval, w.b_grant, B_BUDGET, "carol"):
            assert secret not in text, (who, path, secret)


def test_grpc_create_agent_with_b_name(world):
    """CreateAgent with B's agent name: a user of A is refused for its
    role; an operator of A creates A's own agent, which B never sees."""
    w = world
    req = pb.CreateAgentRequest(agent=pb.Agent(
        name=B_AGENT, system_prompt="alpha's own", providers=["offline"]))
    for who in ("A/alice", "A/bob"):
        code, details, _ = rpc_code(lambda: unary(w.ch, "CreateAgent", req,
                                                   pb.Agent, w.tok[who]))
        assert code == DENIED, (who, code, details)
    made = unary(w.ch, "CreateAgent", req, pb.Agent, w.tok["A/op"])
    assert made.system_prompt == "alpha's own" and made.source == "runtime"
    assert get_agent(w.ch, w.tok["A/alice"], B_AGENT).system_prompt == "alpha's own"
    assert get_agent(w.ch, w.tok["B/carol"], B_AGENT) == w.b_before["agent"]
    unary(w.ch, "DeleteAgent", pb.DeleteAgentRequest(name=B_AGENT),
          pb.DeleteAgentResponse, w.tok["A/op"])
    code, _, _ = rpc_code(lambda: get_agent(w.ch, w.tok["A/op"], B_AGENT))
    assert code == NOT_FOUND
    assert get_agent(w.ch, w.tok["B/carol"], B_AGENT) == w.b_before["agent"]


# Principal isolation inside A: (row, bob's code, op's code). The operator
# reads and aborts any run of its tenant but RunStream's reattach and a
# start in a session stay with their own principal.
PRINCIPAL_ROWS = [
    ("GetRun finished", _get_run(lambda w: w.a_run), OK),
    ("GetRun live", _get_run(lambda w: w.a_live_id), OK),
    ("ListRunEvents finished", _events(lambda w: w.a_run), OK),
    ("RunStream reattach finished", _reattach(lambda w: w.a_run), NOT_FOUND),
    ("RunStream start in session", _start_in(lambda w: w.a_session), NOT_FOUND),
    ("AbortRun finished", _abort(lambda w: w.a_run), grpc.StatusCode.FAILED_PRECONDITION),
    ("AppendEvent finished", _note(lambda w: w.a_run), grpc.StatusCode.FAILED_PRECONDITION),
    ("GetApproval", _get_approval(a_approval), OK),
    # Last: these two would change alice's things if they were allowed.
    ("AbortRun live", _abort(lambda w: w.a_live_id), None),
    ("AppendEvent live", _note(lambda w: w.a_live_id), None),
    ("CleanupSession", _cleanup(lambda w: w.a_session), None),
    ("DecideApproval", _decide(a_approval), None),
]


@pytest.mark.parametrize("name,fn,op_code", PRINCIPAL_ROWS,
                         ids=[r[0] for r in PRINCIPAL_ROWS])
def test_principal_isolation(world, name, fn, op_code):
    w = world
    code, details, _ = fn(w, w.tok["A/bob"])
    assert code == NOT_FOUND, f"bob {name} on alice's: {code} {details!r}"
    assert "alice" not in details, details
    if op_code is not None:
        code, details, resp = fn(w, w.tok["A/op"])
        assert code == op_code, f"op {name} on alice's: {code} {details!r}"
        if name.startswith("GetRun"):
            assert resp.principal == "alice", resp
    run = get_run(w.ch, w.tok["A/alice"], w.a_live_id)
    assert run.status in (S.RUN_STATUS_IN_PROGRESS, S.RUN_STATUS_COMPLETED), run


def test_principal_listings(world):
    w = world
    bob_ids = {a.approval_id for a in unary(
        w.ch, APPROVALS + "ListApprovals", pb.ListApprovalsRequest(page_size=100),
        pb.ListApprovalsResponse, w.tok["A/bob"]).approvals}
    assert w.a_approval not in bob_ids
    assert w.a_approval.encode() not in _export(w.ch, w.tok["A/bob"])
    op_ids = {a.approval_id for a in unary(
        w.ch, APPROVALS + "ListApprovals", pb.ListApprovalsRequest(page_size=100),
        pb.ListApprovalsResponse, w.tok["A/op"]).approvals}
    assert w.a_approval in op_ids
    bob = {s.session_id for s in list_sessions(w.ch, w.tok["A/bob"])}
    assert w.a_session not in bob
    op = {s.session_id: s for s in list_sessions(w.ch, w.tok["A/op"])}
    assert w.a_session in op and op[w.a_session].principal == "alice"
    assert op[w.a_session].closed_unix_ms == 0
    # bob's key resolves to bob's own session, never alice's.
    s = unary(w.ch, "ResolveSession", pb.ResolveSessionRequest(session_key=A_KEY),
              pb.Session, w.tok["A/bob"])
    assert s.session_id != w.a_session and s.created_unix_ms == 0


# /admin/v1 with tenant tokens: always 401, and nothing happens.
def _admin_rows(w):
    now_ms = int(time.time() * 1000) + 60_000
    return [
        ("GET", f"/admin/v1/tenants/{B}/sessions", None),
        ("GET", f"/admin/v1/tenants/{B}/runs", None),
        ("GET", f"/admin/v1/tenants/{B}/runs?session_id={w.b_session}", None),
        ("POST", "/admin/v1/journal/verify", {"tenant": B}),
        ("POST", "/admin/v1/journal/checkpoint", {"tenant": B}),
        ("GET", f"/admin/v1/journal/export?tenant={B}", None),
        ("GET", "/admin/v1/journal/pubkey", None),
        ("POST", "/admin/v1/journal/backup", {"tenant": B}),
        ("POST", "/admin/v1/journal/prune", {"tenant": B, "before_ms": now_ms}),
        ("GET", f"/admin/v1/tokens?tenant={B}", None),
        ("POST", "/admin/v1/tokens", {"tenant": B, "principal": "mallory",
                                      "role": "admin"}),
        ("DELETE", f"/admin/v1/tokens/{w.carol_token_id}", None),
        ("GET", "/admin/v1/processes", None),
    ]


@pytest.mark.parametrize("who", ["A/alice", "A/op", "A/root", "B/admin", "B/carol"])
def test_admin_routes_refuse_tenant_tokens(world, who):
    w = world
    for method, path, body in _admin_rows(w):
        st, resp = http_from(w.d, next(w.src), method, path, body, w.tok[who])
        assert st == 401, f"{who} {method} {path}: {st} {resp!r}"
        assert resp["error"]["code"] == "unauthenticated", resp
    # Nothing happened: carol's token works, no token was minted, no
    # backup written, nothing pruned.
    assert get_run(w.ch, w.tok["B/carol"], w.b_run) == w.b_before["run"]
    tokens = http_request(w.d, "GET", f"/admin/v1/tokens?tenant={B}",
                          token=w.d.admin_token)
    assert tokens == w.b_before["tokens"]
    assert not os.path.exists(os.path.join(w.d.state, "backups")) or \
        not os.listdir(os.path.join(w.d.state, "backups"))
    assert list_run_events(w.ch, w.tok["B/carol"], w.b_run) == w.b_before["events"]


# ---------------------------------------------------------------- console

def _console_missing(w):
    st, body = http_request(w.d, "GET", f"/console/v1/runs/{w.b_run}",
                            token=w.tok["B/carol"])
    return st == 404 and isinstance(body, dict) and \
        body.get("error", {}).get("message") == "no such resource"


H_NF = {"user": 404, "operator": 404, "admin": 404}
H_WRITE = {"user": 403, "operator": 404, "admin": 404}

# (method, path, body, expected status per role of A's token, control: B's
# own token gets 2xx on this GET, so that the route exists and A's 404
# means isolation). The same rule as gRPC: 404 as for an id that never
# existed, 403 only where the role forbids the method whatever the id.
CONSOLE_ROWS = [
    ("GET", "/console/v1/runs/{b_run}", None, H_NF, True),
    ("GET", "/console/v1/runs/{b_live}", None, H_NF, True),
    ("GET", "/console/v1/runs/{b_run}/events", None, H_NF, True),
    ("GET", "/console/v1/runs/{b_run}/events?after_seq=2", None, H_NF, True),
    ("POST", "/console/v1/runs/{b_live}/abort", {"reason": "mallory"}, H_NF, False),
    ("POST", "/console/v1/runs/{b_run}/abort", {"reason": "mallory"}, H_NF, False),
    ("GET", "/console/v1/sessions/{b_session}", None, H_NF, True),
    ("DELETE", "/console/v1/sessions/{b_session}", None, H_NF, False),
    ("DELETE", "/console/v1/sessions/{b_live_session}", None, H_NF, False),
    ("GET", "/console/v1/agents/" + B_AGENT, None, H_NF, True),
    ("PATCH", "/console/v1/agents/" + B_AGENT, {"system_prompt": "taken over"},
     H_WRITE, False),
    ("DELETE", "/console/v1/agents/" + B_AGENT, None, H_WRITE, False),
    ("GET", "/console/v1/approvals/{b_approval}", None, H_NF, True),
    ("POST", "/console/v1/approvals/{b_approval}/decision",
     {"decision": "allow", "scope": "ttl", "ttl_ms": 3_600_000}, H_NF, False),
    ("DELETE", "/console/v1/grants/{b_grant}", None, H_NF, False),
    ("DELETE", "/console/v1/budgets/" + B_BUDGET, None, H_WRITE, False),
]


def _console_path(w, path):
    return path.format(b_run=w.b_run, b_live=w.b_live_id, b_session=w.b_session,
                       b_live_session=w.b_live_session, a_run=w.a_run,
                       a_live=w.a_live_id, a_session=w.a_session,
                       b_approval=w.b_approval, b_grant=w.b_grant,
                       a_approval=w.a_approval)


@pytest.mark.parametrize("method,path,body,expect,control", CONSOLE_ROWS,
                         ids=[f"{r[0]} {r[1]}" for r in CONSOLE_ROWS])
def test_console_cross_tenant(world, method, path, body, expect, control):
    w = world
    if _console_missing(w):
        pytest.skip("console API not built")
    path = _console_path(w, path)
    if control:
        st, resp = http_request(w.d, method, path, token=w.tok["B/carol"])
        assert 200 <= st < 300, f"B's own token {method} {path}: {st} {resp!r}"
    for who, role in A_TOKENS:
        st, resp = http_request(w.d, method, path, body, token=w.tok[who])
        assert st == expect[role], f"{who} {method} {path}: {st} {resp!r}"
        assert isinstance(resp, dict) and "error" in resp, resp
        assert B not in resp["error"]["message"], resp
    assert_b_live_untouched(w)


def test_console_budget_with_b_id(world):
    """PUT of B's budget id: a user of A is refused for its role; an
    operator of A sets A's own budget of that id, which B never sees."""
    w = world
    path = "/console/v1/budgets/" + B_BUDGET
    for who in ("A/alice", "A/bob"):
        st, resp = http_request(w.d, "PUT", path, {"limit": 1}, token=w.tok[who])
        assert st == 403, (who, st, resp)
    st, resp = http_request(w.d, "PUT", path, {"limit": 1, "hard": True},
                            token=w.tok["A/op"])
    assert st == 200 and resp["limit"] == 1 and resp["hard"], (st, resp)
    st, carol = http_request(w.d, "GET", "/console/v1/budgets",
                             token=w.tok["B/carol"])
    assert st == 200
    assert sorted((b["budget_id"], b["limit"]) for b in carol["budgets"]) == \
        [tuple(x) for x in w.b_before["budgets"]]
    st, resp = http_request(w.d, "DELETE", path, token=w.tok["A/root"])
    assert st == 200, (st, resp)
    st, resp = http_request(w.d, "DELETE", path, token=w.tok["A/root"])
    assert st == 404, (st, resp)


# Inside A over the console: bob (user) gets 404 on alice's run and
# session; the operator sees her run.
CONSOLE_PRINCIPAL_ROWS = [
    ("GET", "/console/v1/runs/{a_run}", None, 200),
    ("GET", "/console/v1/runs/{a_run}/events", None, 200),
    ("GET", "/console/v1/sessions/{a_session}", None, 200),
    ("POST", "/console/v1/runs/{a_live}/abort", {"reason": "bob"}, None),
    ("GET", "/console/v1/approvals/{a_approval}", None, 200),
    ("DELETE", "/console/v1/sessions/{a_session}", None, None),
    ("POST", "/console/v1/approvals/{a_approval}/decision",
     {"decision": "allow"}, None),
]


@pytest.mark.parametrize("method,path,body,op_status", CONSOLE_PRINCIPAL_ROWS,
                         ids=[f"{r[0]} {r[1]}" for r in CONSOLE_PRINCIPAL_ROWS])
def test_console_principal_isolation(world, method, path, body, op_status):
    w = world
    if _console_missing(w):
        pytest.skip("console API not built")
    path = _console_path(w, path)
    st, resp = http_request(w.d, method, path, body, token=w.tok["A/bob"])
    assert st == 404, f"bob {method} {path}: {st} {resp!r}"
    if op_status is not None:
        st, resp = http_request(w.d, method, path, body, token=w.tok["A/op"])
        assert st == op_status, f"op {method} {path}: {st} {resp!r}"
    run = get_run(w.ch, w.tok["A/alice"], w.a_live_id)
    assert run.status in (S.RUN_STATUS_IN_PROGRESS, S.RUN_STATUS_COMPLETED), run


# ------------------------------------------- memory, vault and cron (issue 8)
#
# B's carol holds a memory item, B holds a secret and a cron job; A's alice
# holds a memory item and a job. The rule is the same: another tenant's or
# (role user) another principal's item or job is NOT_FOUND, as one that
# never existed; PERMISSION_DENIED only where the role forbids the method
# whatever it names (GetSecret and DeleteSecret need operator or admin,
# answered by the front before any lookup); listings and searches answer
# with the caller's own things only. A secret's name is the tenant's: A's
# operator asking for B's name finds nothing in A's vault.

MEMORY = "/palyra.v1.MemoryService/"
VAULT = "/palyra.v1.VaultService/"
CRON = "/palyra.v1.CronService/"
B_MEMORY_TEXT = "beta keeps the zanzibar ledger"
A_MEMORY_TEXT = "alice keeps the quokka ledger"
B_SECRET = "beta-api-key"
B_SECRET_VALUE = b"beta-secret-value-0451"
B_JOB = "beta-nightly"
A_JOB = "alice-nightly"


@pytest.fixture(scope="module")
def stores(world):
    """B's and alice's memory items, B's secret and the two jobs, made
    by their owners."""
    w = world
    carol, alice = w.tok["B/carol"], w.tok["A/alice"]
    s = World()
    s.b_item = unary(w.ch, MEMORY + "IngestMemory", pb.IngestMemoryRequest(
        text=B_MEMORY_TEXT, tags=["ledger"]), pb.MemoryItem, carol).item_id
    s.a_item = unary(w.ch, MEMORY + "IngestMemory", pb.IngestMemoryRequest(
        text=A_MEMORY_TEXT, tags=["ledger"]), pb.MemoryItem, alice).item_id
    unary(w.ch, VAULT + "PutSecret", pb.PutSecretRequest(
        name=B_SECRET, value=B_SECRET_VALUE), pb.SecretMeta, w.tok["B/admin"])
    job = pb.CronJob(name=B_JOB, schedule="@yearly", input="beta job",
                     agent="assistant")
    s.b_job = unary(w.ch, CRON + "CreateJob", pb.CreateJobRequest(
        job=job, disabled=True), pb.CronJob, carol).job_id
    job = pb.CronJob(name=A_JOB, schedule="@yearly", input="alice job",
                     agent="assistant")
    s.a_job = unary(w.ch, CRON + "CreateJob", pb.CreateJobRequest(
        job=job, disabled=True), pb.CronJob, alice).job_id
    s.b_before = {
        "item": unary(w.ch, MEMORY + "GetMemoryItem", pb.GetMemoryItemRequest(
            item_id=s.b_item), pb.MemoryItem, carol),
        "job": unary(w.ch, CRON + "GetJob", pb.GetJobRequest(job_id=s.b_job),
                     pb.CronJob, carol),
        "secrets": unary(w.ch, VAULT + "ListSecrets", pb.ListSecretsRequest(),
                         pb.ListSecretsResponse, carol),
    }
    return s


def _svc(path, req_fn, resp_cls):
    return lambda w, s, t: rpc_code(lambda: unary(w.ch, path, req_fn(s),
                                                  resp_cls, t))


# (name, call(world, stores, token), expected code per role of A's token,
# control: B's own carol gets OK).
SERVICE_ROWS = [
    ("GetMemoryItem", _svc(MEMORY + "GetMemoryItem",
                           lambda s: pb.GetMemoryItemRequest(item_id=s.b_item),
                           pb.MemoryItem), NF, True),
    ("DeleteMemoryItem", _svc(MEMORY + "DeleteMemoryItem",
                              lambda s: pb.DeleteMemoryItemRequest(
                                  item_id=s.b_item),
                              pb.DeleteMemoryItemResponse), NF, False),
    ("GetSecret", _svc(VAULT + "GetSecret",
                       lambda s: pb.GetSecretRequest(name=B_SECRET),
                       pb.GetSecretResponse), WRITE, False),
    ("DeleteSecret", _svc(VAULT + "DeleteSecret",
                          lambda s: pb.DeleteSecretRequest(name=B_SECRET),
                          pb.DeleteSecretResponse), WRITE, False),
    ("GetJob", _svc(CRON + "GetJob", lambda s: pb.GetJobRequest(job_id=s.b_job),
                    pb.CronJob), NF, True),
    ("GetJob by name", _svc(CRON + "GetJob",
                            lambda s: pb.GetJobRequest(job_id=B_JOB),
                            pb.CronJob), NF, True),
    ("UpdateJob", _svc(CRON + "UpdateJob", lambda s: pb.UpdateJobRequest(
        job_id=s.b_job, job=pb.CronJob(input="mallory", enabled=True),
        fields=["input", "enabled"]), pb.CronJob), NF, False),
    ("RunJobNow", _svc(CRON + "RunJobNow",
                       lambda s: pb.RunJobNowRequest(job_id=s.b_job),
                       pb.CronFire), NF, False),
    ("ListJobRuns", _svc(CRON + "ListJobRuns",
                         lambda s: pb.ListJobRunsRequest(job_id=s.b_job),
                         pb.ListJobRunsResponse), NF, True),
    ("DeleteJob", _svc(CRON + "DeleteJob",
                       lambda s: pb.DeleteJobRequest(job_id=s.b_job),
                       pb.DeleteJobResponse), NF, False),
]


@pytest.mark.parametrize("name,fn", [r[:2] for r in SERVICE_ROWS if r[3]],
                         ids=[r[0] for r in SERVICE_ROWS if r[3]])
def test_services_rows_control(world, stores, name, fn):
    code, details, _ = fn(world, stores, world.tok["B/carol"])
    assert code == OK, f"carol {name} on her own: {code} {details!r}"


@pytest.mark.parametrize("who,role", A_TOKENS, ids=[t for t, _ in A_TOKENS])
@pytest.mark.parametrize("name,fn,expect,control", SERVICE_ROWS,
                         ids=[r[0] for r in SERVICE_ROWS])
def test_services_cross_tenant(world, stores, who, role, name, fn, expect,
                               control):
    code, details, _ = fn(world, stores, world.tok[who])
    assert code == expect[role], f"{who} {name} on B: {code} {details!r}"
    assert B not in details and "carol" not in details, details


@pytest.mark.parametrize("who", [t for t, _ in A_TOKENS])
def test_services_cross_tenant_listings(world, stores, who):
    """Listings and searches answer with A's own things only, over gRPC
    and the console."""
    w, s = world, stores
    t = w.tok[who]
    everyone = "*" if who in ("A/op", "A/root") else ""
    items = unary(w.ch, MEMORY + "ListMemoryItems", pb.ListMemoryItemsRequest(
        principal=everyone, page_size=1000), pb.ListMemoryItemsResponse, t)
    assert s.b_item not in {i.item_id for i in items.items}
    hits = unary(w.ch, MEMORY + "SearchMemory", pb.SearchMemoryRequest(
        query="zanzibar ledger", top_k=100), pb.SearchMemoryResponse, t)
    assert B_MEMORY_TEXT not in {h.item.text for h in hits.hits}, hits
    secrets = unary(w.ch, VAULT + "ListSecrets", pb.ListSecretsRequest(),
                    pb.ListSecretsResponse, t)
    assert B_SECRET not in {m.name for m in secrets.secrets}
    jobs = unary(w.ch, CRON + "ListJobs", pb.ListJobsRequest(),
                 pb.ListJobsResponse, t)
    assert B_JOB not in {j.name for j in jobs.jobs}
    for path in ("memory?principal=" + everyone, "memory/search?q=zanzibar",
                 "vault", "cron"):
        st, body = http_request(w.d, "GET", "/console/v1/" + path, token=t)
        assert st == 200, (who, path, st, body)
        text = json.dumps(body)
        for secret in (s.b_item, s.b_job, B_SECRET, B_JOB, "zanzibar",
                       "carol"):
            assert secret not in text, (who, path, secret)


CONSOLE_SERVICE_ROWS = [
    ("GET", "/console/v1/memory/{b_item}", None, H_NF, True),
    ("DELETE", "/console/v1/memory/{b_item}", None, H_NF, False),
    ("DELETE", "/console/v1/vault/" + B_SECRET, None, H_WRITE, False),
    ("GET", "/console/v1/cron/{b_job}", None, H_NF, True),
    ("GET", "/console/v1/cron/" + B_JOB, None, H_NF, True),
    ("GET", "/console/v1/cron/{b_job}/runs", None, H_NF, True),
    ("PATCH", "/console/v1/cron/{b_job}", {"input": "mallory"}, H_NF, False),
    ("POST", "/console/v1/cron/{b_job}/run", None, H_NF, False),
    ("DELETE", "/console/v1/cron/{b_job}", None, H_NF, False),
]


@pytest.mark.parametrize("method,path,body,expect,control",
                         CONSOLE_SERVICE_ROWS,
                         ids=[f"{r[0]} {r[1]}" for r in CONSOLE_SERVICE_ROWS])
def test_console_services_cross_tenant(world, stores, method, path, body,
                                       expect, control):
    w = world
    path = path.format(b_item=stores.b_item, b_job=stores.b_job)
    if control:
        st, resp = http_request(w.d, method, path, token=w.tok["B/carol"])
        assert 200 <= st < 300, f"B's own token {method} {path}: {st} {resp!r}"
    for who, role in A_TOKENS:
        st, resp = http_request(w.d, method, path, body, token=w.tok[who])
        assert st == expect[role], f"{who} {method} {path}: {st} {resp!r}"
        assert isinstance(resp, dict) and "error" in resp, resp
        assert B not in resp["error"]["message"], resp


def test_services_without_token_or_role(world, stores):
    """No token: UNAUTHENTICATED and 401; a user token on the vault's
    value methods: PERMISSION_DENIED and 403, before any lookup."""
    w, s = world, stores
    for name, fn, _, _ in SERVICE_ROWS:
        code, _, _ = fn(w, s, None)
        assert code == grpc.StatusCode.UNAUTHENTICATED, name
    for method, path, body, _, _ in CONSOLE_SERVICE_ROWS:
        path = path.format(b_item=s.b_item, b_job=s.b_job)
        st, resp = http_request(w.d, method, path, body)
        assert st == 401, (method, path, st, resp)
    code, details, _ = rpc_code(lambda: unary(
        w.ch, VAULT + "PutSecret", pb.PutSecretRequest(name="x", value=b"y"),
        pb.SecretMeta, w.tok["A/alice"]))
    assert code == DENIED, (code, details)


# Inside A: bob (user) gets NOT_FOUND on alice's item and job; the
# operator reaches them.
def test_services_principal_isolation(world, stores):
    w, s = world, stores
    bob, op = w.tok["A/bob"], w.tok["A/op"]
    rows = [
        (MEMORY + "GetMemoryItem", pb.GetMemoryItemRequest(item_id=s.a_item),
         pb.MemoryItem),
        (CRON + "GetJob", pb.GetJobRequest(job_id=s.a_job), pb.CronJob),
        (CRON + "ListJobRuns", pb.ListJobRunsRequest(job_id=s.a_job),
         pb.ListJobRunsResponse),
    ]
    for path, req, resp in rows:
        code, details, _ = rpc_code(lambda: unary(w.ch, path, req, resp, bob))
        assert code == NOT_FOUND, (path, code, details)
        assert "alice" not in details
        code, details, _ = rpc_code(lambda: unary(w.ch, path, req, resp, op))
        assert code == OK, (path, code, details)
    for path, req, resp in (
            (MEMORY + "DeleteMemoryItem",
             pb.DeleteMemoryItemRequest(item_id=s.a_item),
             pb.DeleteMemoryItemResponse),
            (CRON + "DeleteJob", pb.DeleteJobRequest(job_id=s.a_job),
             pb.DeleteJobResponse),
            (CRON + "RunJobNow", pb.RunJobNowRequest(job_id=s.a_job),
             pb.CronFire)):
        code, details, _ = rpc_code(lambda: unary(w.ch, path, req, resp, bob))
        assert code == NOT_FOUND, (path, code, details)
    hits = unary(w.ch, MEMORY + "SearchMemory", pb.SearchMemoryRequest(
        query="quokka ledger", top_k=100), pb.SearchMemoryResponse, bob)
    assert A_MEMORY_TEXT not in {h.item.text for h in hits.hits}
    for path in (f"/console/v1/memory/{s.a_item}", f"/console/v1/cron/{s.a_job}"):
        st, resp = http_request(w.d, "GET", path, token=bob)
        assert st == 404, (path, st, resp)
        st, resp = http_request(w.d, "GET", path, token=op)
        assert st == 200, (path, st, resp)
    # alice's own things are as she left them.
    item = unary(w.ch, MEMORY + "GetMemoryItem", pb.GetMemoryItemRequest(
        item_id=s.a_item), pb.MemoryItem, w.tok["A/alice"])
    assert item.text == A_MEMORY_TEXT


def test_services_b_unchanged(world, stores):
    """B's item, job and secrets are as they were; the secret's value
    is still B's."""
    w, s = world, stores
    carol = w.tok["B/carol"]
    assert unary(w.ch, MEMORY + "GetMemoryItem", pb.GetMemoryItemRequest(
        item_id=s.b_item), pb.MemoryItem, carol) == s.b_before["item"]
    assert unary(w.ch, CRON + "GetJob", pb.GetJobRequest(job_id=s.b_job),
                 pb.CronJob, carol) == s.b_before["job"]
    assert unary(w.ch, VAULT + "ListSecrets", pb.ListSecretsRequest(),
                 pb.ListSecretsResponse, carol) == s.b_before["secrets"]
    got = unary(w.ch, VAULT + "GetSecret", pb.GetSecretRequest(name=B_SECRET),
                pb.GetSecretResponse, w.tok["B/admin"])
    assert got.value == B_SECRET_VALUE
    runs = unary(w.ch, CRON + "ListJobRuns", pb.ListJobRunsRequest(
        job_id=s.b_job), pb.ListJobRunsResponse, carol)
    assert list(runs.fires) == []


# ---------------------------------------------------------------- B after

def test_approvals_untouched_then_decided(world):
    """B's approval is still pending, its grant and budget as they were,
    alice's approval pending too; their own principals then decide them
    and both runs complete."""
    w = world
    carol, alice = w.tok["B/carol"], w.tok["A/alice"]
    assert unary(w.ch, APPROVALS + "GetApproval",
                 pb.GetApprovalRequest(approval_id=w.b_approval), pb.Approval,
                 carol) == w.b_before["approval"]
    assert unary(w.ch, APPROVALS + "ListGrants", pb.ListGrantsRequest(),
                 pb.ListGrantsResponse, carol) == w.b_before["grants"]
    assert sorted((b.budget_id, b.limit) for b in unary(
        w.ch, USAGE + "ListBudgets", pb.ListBudgetsRequest(),
        pb.ListBudgetsResponse, carol).budgets) == w.b_before["budgets"]
    for stream, aid, tok in ((w.b_ask, w.b_approval, carol),
                             (w.a_ask, w.a_approval, alice)):
        a = unary(w.ch, APPROVALS + "GetApproval",
                  pb.GetApprovalRequest(approval_id=aid), pb.Approval, tok)
        assert a.state == pb.APPROVAL_STATE_PENDING, a
        a = unary(w.ch, APPROVALS + "DecideApproval", pb.DecideApprovalRequest(
            decision=pb.ApprovalDecision(approval_id=aid,
                                         decision=pb.APPROVAL_DECISION_DENY)),
            pb.Approval, tok)
        assert a.state == pb.APPROVAL_STATE_DENIED and a.grant_id == "", a
        s = stream.finish()
        assert s.code == OK, (s.code, s.details)
        assert s.events[-1].status.status == S.RUN_STATUS_COMPLETED
        decided = [ev.approval_decided for ev in s.events
                   if event_kind(ev) == "approval_decided"]
        assert len(decided) == 1 and "mallory" not in decided[0].reason



def test_b_unchanged(world):
    """With B's tokens: the live run went on and completed, untouched; the
    finished run, the sessions and the agent are as they were."""
    w = world
    carol = w.tok["B/carol"]
    assert get_run(w.ch, carol, w.b_run) == w.b_before["run"]
    assert list_run_events(w.ch, carol, w.b_run) == w.b_before["events"]
    assert sorted((s.session_id, s.closed_unix_ms, s.run_count)
                  for s in list_sessions(w.ch, carol)) == w.b_before["sessions"]
    assert get_agent(w.ch, w.tok["B/admin"], B_AGENT) == w.b_before["agent"]
    assert list(list_agents(w.ch, carol)) == w.b_before["agents"]

    live = w.b_live.finish()
    assert live.code == OK, (live.code, live.details)
    assert_one_run_tape(live.events, "B's live run")
    last = live.events[-1]
    assert last.status.status == S.RUN_STATUS_COMPLETED, last
    assert not [ev for ev in live.events if event_kind(ev) == "note"]
    assert live.events == journal_run(w.d, B, w.b_live_id)
    assert get_run(w.ch, carol, w.b_live_id).status == S.RUN_STATUS_COMPLETED
    # Not a single event of B's journal came from A's calls.
    for row in journal_events(w.d.journal_path(B)):
        ev = pb.RunEvent.FromString(_blob(row[5]))
        assert "mallory" not in str(ev), ev
    # No run of B's journal is A's, and nothing was pruned (no anchor).
    db = sqlite3.connect(f"file:{w.d.journal_path(B)}?mode=ro", uri=True,
                         timeout=10)
    try:
        principals = {r[0] for r in db.execute("SELECT principal FROM runs")}
        anchors = db.execute("SELECT count(*) FROM anchors").fetchone()[0]
    finally:
        db.close()
    assert principals == {"carol"}, principals
    assert anchors == 0


def test_a_live_run_untouched(world):
    """Alice's live run was neither cancelled nor noted by bob."""
    w = world
    s = w.a_live.finish()
    assert s.code == OK, (s.code, s.details)
    assert_one_run_tape(s.events, "alice's live run")
    assert s.events[-1].status.status == S.RUN_STATUS_COMPLETED
    assert not [ev for ev in s.events if event_kind(ev) == "note"]
    code, _, _ = rpc_code(lambda: unary(
        w.ch, "CleanupSession", pb.CleanupSessionRequest(session_id=w.a_session),
        pb.CleanupSessionResponse, w.tok["A/alice"]))
    # The session was still open: alice herself can close it now.
    assert code == OK


# ---------------------------------------------------------------- deadlines

def test_deadline_ends_the_run(world):
    """A RunStream whose deadline is shorter than its run: the client gets
    DEADLINE_EXCEEDED, the run ends CANCELLED "deadline exceeded" at once
    (cancel_on_disconnect is false: the deadline, not the client's going
    away, ends it) and its worker stops producing."""
    w = world
    tok = w.tok["A/alice"]
    t0 = time.monotonic()
    s = start_stream(w.ch, tok, SLOW_INPUT, timeout=1.0).finish()
    assert s.code == grpc.StatusCode.DEADLINE_EXCEEDED, (s.code, s.details)
    assert s.events, "no event before the deadline"
    run_id = s.run_id()
    run = poll(lambda: (lambda r: r if r.status in TERMINAL else None)(
        get_run(w.ch, tok, run_id)), 2.0, what="the run to end")
    assert time.monotonic() - t0 < 3.5
    assert run.status == S.RUN_STATUS_CANCELLED, run
    evs = list_run_events(w.ch, tok, run_id)
    assert_one_run_tape(evs, "the run past its deadline")
    assert evs[-1].status.reason == "deadline exceeded", evs[-1]
    assert evs[-1].seq == run.last_seq
    # Far fewer tokens than the whole reply: it stopped at the deadline.
    assert sum(1 for ev in evs if event_kind(ev) == "token") < 60
    # The worker stopped producing: nothing more is offered to the journal
    # for this run in the next 25 token delays.
    mark = len(w.d.log_text())
    time.sleep(1.0)
    assert get_run(w.ch, tok, run_id).last_seq == run.last_seq
    later = w.d.log_text()[mark:]
    assert run_id not in later, later
    assert journal_run(w.d, A, run_id) == evs


# Deadlines from shorter than the worker's start of a run to well into it.
WIRE_TIMEOUTS = ["5m", "40m", "60m", "90m", "150m", "300m", "700m"]


@pytest.mark.parametrize("grpc_timeout", WIRE_TIMEOUTS)
def test_deadline_on_the_wire(world, tmp_path, grpc_timeout):
    """The same with curl, whose own clock (--max-time 10) is not the one
    that ends the call: the server itself answers grpc-status 4
    (DEADLINE_EXCEEDED) when the request's grpc-timeout passes, whichever
    of the front's and the worker's deadline timers fires first, and the
    run (if it started) ends CANCELLED "deadline exceeded"."""
    w = world
    tok = w.tok["A/alice"]
    timeout = int(grpc_timeout[:-1]) / 1000
    msg = pb.RunStreamRequest(start=pb.RunStart(
        input=SLOW_INPUT, agent="snail")).SerializeToString()
    req, out = tmp_path / "req.bin", tmp_path / "out.bin"
    req.write_bytes(b"\0" + struct.pack(">I", len(msg)) + msg)
    t0 = time.monotonic()
    p = subprocess.run(
        ["curl", "-sS", "--noproxy", "*", "--http2-prior-knowledge",
         "--max-time", "10", "-H", "content-type: application/grpc",
         "-H", "te: trailers", "-H", f"grpc-timeout: {grpc_timeout}",
         "-H", f"authorization: Bearer {tok}", "--data-binary", f"@{req}",
         "-D", "-", "-o", str(out),
         f"http://{w.d.grpc_addr}/palyra.v1.GatewayService/RunStream"],
        capture_output=True, text=True, timeout=15)
    elapsed = time.monotonic() - t0
    assert p.returncode == 0, p.stderr
    trailers = dict(line.split(": ", 1) for line in p.stdout.splitlines()
                    if line.startswith("grpc-"))
    assert trailers.get("grpc-status") == "4", p.stdout
    assert trailers.get("grpc-message") == "deadline exceeded", p.stdout
    assert timeout - 0.01 <= elapsed < timeout + 2.0, elapsed
    data, evs = out.read_bytes() if out.exists() else b"", []
    while data:
        assert data[0] == 0 and len(data) >= 5, data[:16]
        n = struct.unpack(">I", data[1:5])[0]
        evs.append(pb.RunEvent.FromString(data[5:5 + n]))
        data = data[5 + n:]
    if timeout >= 0.3:
        assert evs, "no event of a run that had time to start"
    if not evs:
        return
    assert evs[0].status.status == S.RUN_STATUS_ACCEPTED, evs[:1]
    run_id = evs[0].run_id
    run = poll(lambda: (lambda r: r if r.status in TERMINAL else None)(
        get_run(w.ch, tok, run_id)), 2.0, what="the run to end")
    assert run.status == S.RUN_STATUS_CANCELLED, run
    tape = list_run_events(w.ch, tok, run_id)
    assert_one_run_tape(tape, "the run past its deadline")
    assert tape[-1].status.reason == "deadline exceeded", tape[-1]
    assert evs == tape[:len(evs)]


def test_deadline_of_a_follower_leaves_the_run(world):
    """A reattached RunStream or a ListRunEvents with a short deadline gets
    DEADLINE_EXCEEDED; the run it followed goes on and completes."""
    w = world
    tok = w.tok["A/alice"]
    s = start_stream(w.ch, tok, SLOW_INPUT)
    poll(lambda: s.count() >= 3, TIMEOUT, what="the run's first events")
    run_id = s.run_id()
    f = Stream(w.ch, tok, pb.RunStart(run_id=run_id), timeout=0.8)
    f.start()
    f.finish()
    assert f.code == grpc.StatusCode.DEADLINE_EXCEEDED, (f.code, f.details)
    code, details, _ = rpc_code(lambda: list_run_events(w.ch, tok, run_id,
                                                        timeout=0.8))
    assert code == grpc.StatusCode.DEADLINE_EXCEEDED, (code, details)
    assert get_run(w.ch, tok, run_id).status == S.RUN_STATUS_IN_PROGRESS
    s.finish()
    assert s.code == OK, (s.code, s.details)
    assert s.events[-1].status.status == S.RUN_STATUS_COMPLETED


# ---------------------------------------------------------------- resume

@pytest.mark.parametrize("drop", ["cancel", "close"])
def test_resume_after_drops(world, drop):
    """A client drops twice mid-run (its call cancelled, or its connection
    closed) and resumes each time with (run_id, after_seq = last seen): the
    union of what it saw is exactly 1..N, the journal's tape, ending in one
    terminal status. cancel_on_disconnect is false, so the run went on."""
    w = world
    tok = w.tok["A/alice"]
    close = drop == "close"
    ch = w.d.new_channel()
    first = start_stream(ch, tok, SLOW_INPUT, stop_after=5,
                         close_channel=close).finish()
    assert first.count() == 5, first.events
    run_id = first.run_id()
    seen = list(first.events)
    assert get_run(w.ch, tok, run_id).status == S.RUN_STATUS_IN_PROGRESS
    # The run goes on without a client: its last seq grows.
    poll(lambda: get_run(w.ch, tok, run_id).last_seq > seen[-1].seq + 3,
         TIMEOUT, what="the run to go on without its client")

    ch = w.d.new_channel()
    second = Stream(ch, tok, pb.RunStart(run_id=run_id, after_seq=seen[-1].seq),
                    stop_after=10, close_channel=close)
    second.start()
    second.finish()
    assert second.count() == 10, (second.code, second.details, second.events)
    seen += second.events

    ch = w.d.new_channel()
    third = Stream(ch, tok, pb.RunStart(run_id=run_id, after_seq=seen[-1].seq))
    third.start()
    third.finish()
    assert third.code == OK, (third.code, third.details)
    seen += third.events
    ch.close()

    assert_one_run_tape(seen, "the resumed client")
    assert seen[-1].status.status == S.RUN_STATUS_COMPLETED
    assert seen == journal_run(w.d, A, run_id)
    final = [ev.final.text for ev in seen if event_kind(ev) == "final"]
    assert len(final) == 1 and final[0].endswith(SLOW_INPUT)
    # Some of the events after the first drop came live, not only from the
    # journal at the end.
    tokens = "".join(ev.token.text for ev in seen if event_kind(ev) == "token")
    assert tokens == final[0]


def test_no_run_left_behind(world):
    """Every run the tests started, in both tenants, including those whose
    deadline passed before the client saw an event, ends: none is left in
    progress, and none of B's was started by A."""
    w = world

    def statuses(tenant):
        db = sqlite3.connect(f"file:{w.d.journal_path(tenant)}?mode=ro",
                             uri=True, timeout=10)
        try:
            return db.execute("SELECT run_id, principal, status FROM runs").fetchall()
        finally:
            db.close()

    live = ("ACCEPTED", "IN_PROGRESS", "WAITING_APPROVAL", "WAITING_TOOL")
    for tenant in TENANTS:
        poll(lambda: not [r for r in statuses(tenant) if r[2] in live],
             DEADLINE, what=f"every run of {tenant} to end")
    assert {r[1] for r in statuses(B)} == {"carol"}
    assert {r[1] for r in statuses(A)} <= {"alice", "bob", "op", "root"}
