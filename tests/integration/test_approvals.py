"""Tool approvals (issue 7): ask policies, decisions, scopes, recovery.

An agent whose policy says `tool "time.now" ask` makes every call of it
wait for a person: the run journals an ApprovalRequest, goes
WAITING_APPROVAL, and continues when a decision arrives on its own stream
or out of band (ApprovalsService.DecideApproval from another client), or
is denied when the approval times out. Decisions may grant the tool for
the session or for a TTL. A run waiting for approval survives kill -9 of
its worker. The offline model's tool demo ("/tool NAME {json}") drives the
calls; fakeprov drives one round trip through a network provider.
"""
import json
import os
import signal
import time

import grpc
import pytest

import fakeprov
from conftest import BidiRun, run_event_label, _require_binaries, auth_md, event_kind, pb, poll, Daemon

CONFIG = """\
state-dir "{state}"
listen grpc 127.0.0.1:{grpc_port}
listen http 127.0.0.1:{http_port}
journal {{ durability normal }}
provider "offline" {{ type offline }}
provider "fake" {{ type openai; base-url "@FAKE"; api-key env:FAKE_KEY; model "m" }}
tenant "acme" {{
	agent "asker" {{ providers "offline"; tool "time.now" ask }}
	agent "quick" {{ providers "offline"; tool "time.now" ask; approval-timeout 1s }}
	agent "nay" {{ providers "offline"; tool "time.*" deny }}
	agent "net" {{ providers "fake"; tool "time.now" ask }}
}}
"""
TENANTS = ("acme",)
DEADLINE = 30.0
RUN = "/palyra.v1.GatewayService/RunStream"
APPROVALS = "/palyra.v1.ApprovalsService/"
GATEWAY = "/palyra.v1.GatewayService/"
FAKE_KEY = "sk-fake-approvals"

S = pb.RunStatus
D = pb.ApprovalDecisionKind
SC = pb.ApprovalScope
AS = pb.ApprovalState
TERMINAL = {S.RUN_STATUS_COMPLETED, S.RUN_STATUS_FAILED,
            S.RUN_STATUS_CANCELLED, S.RUN_STATUS_INTERRUPTED}
TOOL = "/tool time.now {}"


@pytest.fixture(scope="module")
def fp():
    srv = fakeprov.FakeProvider().start()
    yield srv
    srv.stop()


@pytest.fixture
def daemon(tmp_path, fp):
    _require_binaries()
    old = os.environ.get("FAKE_KEY")
    os.environ["FAKE_KEY"] = FAKE_KEY
    d = Daemon(tmp_path / "d", CONFIG.replace("@FAKE", fp.url("fake")),
               TENANTS)
    try:
        yield d.start()
    finally:
        if not d.stopped:
            d.kill()
        if old is None:
            os.environ.pop("FAKE_KEY", None)
        else:
            os.environ["FAKE_KEY"] = old


class Stream(BidiRun):
    def __init__(self, channel, token, start):
        super().__init__(channel, token, start, deadline=DEADLINE)


kind_of = run_event_label


def start(ch, tok, agent="asker", text=TOOL, **kw):
    return Stream(ch, tok, pb.RunStart(agent=agent, input=text, **kw))


def decision(approval_id, kind=D.APPROVAL_DECISION_ALLOW, scope=0,
             ttl_ms=0, reason=""):
    return pb.ApprovalDecision(approval_id=approval_id, decision=kind,
                               scope=scope, ttl_ms=ttl_ms, reason=reason)


def decide_on_stream(stream, approval_id, **kw):
    stream.send(pb.RunStreamRequest(approval=decision(approval_id, **kw)))


def unary(ch, method, req, resp_cls, tok, timeout=DEADLINE):
    call = ch.unary_unary(method, request_serializer=type(req).SerializeToString,
                          response_deserializer=resp_cls.FromString)
    return call(req, metadata=auth_md(tok), timeout=timeout,
                wait_for_ready=True)


def decide_out_of_band(ch, tok, approval_id, **kw):
    return unary(ch, APPROVALS + "DecideApproval",
                 pb.DecideApprovalRequest(decision=decision(approval_id, **kw)),
                 pb.Approval, tok)


def get_run(ch, tok, run_id):
    return unary(ch, GATEWAY + "GetRun", pb.GetRunRequest(run_id=run_id),
                 pb.Run, tok)


def run_events(ch, tok, run_id):
    call = ch.unary_stream(
        GATEWAY + "ListRunEvents",
        request_serializer=pb.ListRunEventsRequest.SerializeToString,
        response_deserializer=pb.RunEvent.FromString)
    return list(call(pb.ListRunEventsRequest(run_id=run_id),
                     metadata=auth_md(tok), timeout=DEADLINE,
                     wait_for_ready=True))


def assert_asked_then(s, decided_kinds):
    """The tape of one asked call: ToolCall, ApprovalRequest,
    WAITING_APPROVAL, ApprovalDecided, IN_PROGRESS, then the rest."""
    kinds = s.kinds()
    want = ["ACCEPTED", "IN_PROGRESS", "tool_call", "approval_request",
            "WAITING_APPROVAL", "approval_decided", "IN_PROGRESS",
            "tool_result"]
    assert kinds[:len(want)] == want, kinds
    assert kinds[len(want):] == decided_kinds, kinds
    seqs = [ev.seq for ev in s.events]
    assert seqs == list(range(1, len(seqs) + 1)), seqs


def test_allow_on_the_stream(daemon):
    """The principal allows on its own stream: the tool runs, the model
    answers with its result, the run completes."""
    d = daemon
    tok = d.mint_token("acme", "alice")
    ch = d.new_channel()
    s = start(ch, tok)
    req = s.wait_for("approval_request").approval_request
    call = s.wait_for("tool_call").tool_call
    assert len(req.approval_id) == 32 and int(req.approval_id, 16) >= 0
    assert req.tool_call_id == call.id and req.tool_name == "time.now"
    assert req.arguments_summary == "{}", req
    now = time.time() * 1000
    # The default approval timeout: 5 min.
    assert now + 290_000 < req.expires_unix_ms < now + 310_000, req
    decide_on_stream(s, req.approval_id, reason="fine")
    s.finish()
    assert s.code == grpc.StatusCode.OK, (s.code, s.details)
    assert_asked_then(s, ["token"] * (len(s.events) - 11) +
                      ["final", "usage", "COMPLETED"])
    dec = s.wait_for("approval_decided").approval_decided
    assert dec.approval_id == req.approval_id
    assert dec.decision == D.APPROVAL_DECISION_ALLOW
    assert dec.decided_by == "alice" and dec.reason == "fine", dec
    res = s.wait_for("tool_result").tool_result
    assert not res.is_error and res.id == call.id, res
    assert "unix_ms" in json.loads(res.content)
    assert s.final() == ("I am the offline model of palyrad. The tool "
                         f"time.now returned: {res.content}")
    # The record journald keeps says the same.
    a = unary(ch, APPROVALS + "GetApproval",
              pb.GetApprovalRequest(approval_id=req.approval_id),
              pb.Approval, tok)
    assert a.state == AS.APPROVAL_STATE_ALLOWED and a.decided_by == "alice"
    assert a.run_id == s.events[0].run_id and a.tool_name == "time.now"
    ch.close()
    d.assert_clean_stop()


def test_deny_on_the_stream(daemon):
    """A deny is an error result the model reads; the run still completes."""
    d = daemon
    tok = d.mint_token("acme", "bob")
    ch = d.new_channel()
    s = start(ch, tok)
    req = s.wait_for("approval_request").approval_request
    decide_on_stream(s, req.approval_id, kind=D.APPROVAL_DECISION_DENY,
                     reason="not now")
    s.finish()
    assert s.code == grpc.StatusCode.OK, (s.code, s.details)
    dec = s.wait_for("approval_decided").approval_decided
    assert dec.decision == D.APPROVAL_DECISION_DENY and dec.decided_by == "bob"
    res = s.wait_for("tool_result").tool_result
    assert res.is_error and res.content == "denied by bob: not now", res
    assert s.final() == ("I am the offline model of palyrad. The tool "
                         "time.now failed: denied by bob: not now")
    assert s.kinds()[-1] == "COMPLETED"
    ch.close()
    d.assert_clean_stop()


def test_timeout_denies(daemon):
    """No decision within the agent's approval-timeout (1s): denied, and
    the record says EXPIRED."""
    d = daemon
    tok = d.mint_token("acme", "carol")
    ch = d.new_channel()
    t0 = time.monotonic()
    s = start(ch, tok, agent="quick")
    req = s.wait_for("approval_request").approval_request
    s.finish()
    took = time.monotonic() - t0
    assert s.code == grpc.StatusCode.OK, (s.code, s.details)
    assert 0.9 <= took < 10, took
    dec = s.wait_for("approval_decided").approval_decided
    assert dec.decision == D.APPROVAL_DECISION_DENY
    assert dec.decided_by == "timeout", dec
    res = s.wait_for("tool_result").tool_result
    assert res.is_error and res.content == "approval timed out after 1 s", res
    assert s.kinds()[-1] == "COMPLETED"
    a = unary(ch, APPROVALS + "GetApproval",
              pb.GetApprovalRequest(approval_id=req.approval_id),
              pb.Approval, tok)
    assert a.state == AS.APPROVAL_STATE_EXPIRED, a
    ch.close()
    d.assert_clean_stop()


def test_out_of_band_decision_from_a_second_client(daemon):
    """An operator decides from another connection; the waiting stream
    continues. A user of another principal cannot see or decide it; a
    second decision is FAILED_PRECONDITION."""
    d = daemon
    tok = d.mint_token("acme", "dave")
    op = d.mint_token("acme", "olga", role="operator")
    stranger = d.mint_token("acme", "eve")
    ch = d.new_channel()
    s = start(ch, tok)
    req = s.wait_for("approval_request").approval_request
    ch2 = d.new_channel()
    with pytest.raises(grpc.RpcError) as e:
        decide_out_of_band(ch2, stranger, req.approval_id)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND, e.value
    a = decide_out_of_band(ch2, op, req.approval_id, reason="ok from ops")
    assert a.state == AS.APPROVAL_STATE_ALLOWED and a.decided_by == "olga", a
    s.finish()
    assert s.code == grpc.StatusCode.OK, (s.code, s.details)
    dec = s.wait_for("approval_decided").approval_decided
    assert dec.decided_by == "olga" and dec.reason == "ok from ops", dec
    assert not s.wait_for("tool_result").tool_result.is_error
    assert s.kinds()[-1] == "COMPLETED"
    with pytest.raises(grpc.RpcError) as e:
        decide_out_of_band(ch2, op, req.approval_id,
                           kind=D.APPROVAL_DECISION_DENY)
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION, e.value
    ch.close()
    ch2.close()
    d.assert_clean_stop()


def test_decision_for_no_pending_approval(daemon):
    """A decision naming no pending approval of the run ends that stream
    with FAILED_PRECONDITION; the run goes on and can still be decided."""
    d = daemon
    tok = d.mint_token("acme", "frank")
    ch = d.new_channel()
    s = start(ch, tok)
    req = s.wait_for("approval_request").approval_request
    decide_on_stream(s, "0" * 32)
    s.finish()
    assert s.code == grpc.StatusCode.FAILED_PRECONDITION, (s.code, s.details)
    assert "no pending approval" in s.details, s.details
    run_id = s.events[0].run_id
    assert get_run(ch, tok, run_id).status == S.RUN_STATUS_WAITING_APPROVAL
    decide_out_of_band(ch, tok, req.approval_id)
    poll(lambda: get_run(ch, tok, run_id).status == S.RUN_STATUS_COMPLETED,
         DEADLINE, what="the run completing")
    ch.close()
    d.assert_clean_stop()


def asked(ch, tok, agent="asker", **kw):
    """Runs one /tool call; returns (asked: bool, the stream), allowing an
    approval if one is asked for with the decision kw."""
    s = start(ch, tok, agent=agent, **{k: v for k, v in kw.items()
                                       if k in ("session_key",)})
    dec = {k: v for k, v in kw.items() if k not in ("session_key",)}
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        kinds = s.kinds()
        if "approval_request" in kinds:
            req = s.wait_for("approval_request").approval_request
            decide_on_stream(s, req.approval_id, **dec)
            s.finish()
            return True, s
        if "tool_result" in kinds:
            s.finish()
            return False, s
        time.sleep(0.02)
    raise AssertionError(f"neither asked nor answered: {s.events}")


def test_scopes(daemon):
    """ONCE grants nothing; SESSION covers the same session only; TTL
    covers the principal's other sessions until it expires."""
    d = daemon
    tok = d.mint_token("acme", "gina")
    ch = d.new_channel()
    # ONCE: the next call of the same session asks again.
    was, s = asked(ch, tok, session_key="s1", scope=SC.APPROVAL_SCOPE_ONCE)
    assert was and s.code == grpc.StatusCode.OK
    assert not s.wait_for("approval_decided").approval_decided.grant_id
    was, s = asked(ch, tok, session_key="s1",
                   scope=SC.APPROVAL_SCOPE_SESSION)
    assert was
    grant = s.wait_for("approval_decided").approval_decided.grant_id
    assert len(grant) == 32, grant
    # SESSION: the same session is granted, without a WAITING_APPROVAL.
    was, s = asked(ch, tok, session_key="s1")
    assert not was and s.code == grpc.StatusCode.OK, s
    dec = s.wait_for("approval_decided").approval_decided
    assert dec.decided_by == f"grant:{grant}", dec
    assert dec.decision == D.APPROVAL_DECISION_ALLOW
    assert "WAITING_APPROVAL" not in s.kinds(), s.kinds()
    assert not s.wait_for("tool_result").tool_result.is_error
    # ... but not another session.
    was, s = asked(ch, tok, session_key="s2", scope=SC.APPROVAL_SCOPE_TTL,
                   ttl_ms=2000)
    assert was
    t_grant = time.monotonic()
    ttl_grant = s.wait_for("approval_decided").approval_decided.grant_id
    assert ttl_grant and ttl_grant != grant
    # TTL: any session of the principal, while it lasts.
    was, s = asked(ch, tok, session_key="s3")
    assert not was, s.kinds()
    assert s.wait_for("approval_decided").approval_decided.decided_by == \
        f"grant:{ttl_grant}"
    # Another principal is not covered.
    other = d.mint_token("acme", "hank")
    was, s = asked(ch, other, session_key="s3",
                   kind=D.APPROVAL_DECISION_DENY)
    assert was
    # After the TTL it asks again.
    left = 2.2 - (time.monotonic() - t_grant)
    if left > 0:
        time.sleep(left)
    was, s = asked(ch, tok, session_key="s4")
    assert was, s.kinds()
    ch.close()
    d.assert_clean_stop()


def test_deny_policy_and_unknown_tool(daemon):
    d = daemon
    tok = d.mint_token("acme", "ivan")
    ch = d.new_channel()
    s = start(ch, tok, agent="nay").finish()
    assert s.code == grpc.StatusCode.OK
    res = s.wait_for("tool_result").tool_result
    assert res.is_error
    assert res.content == "tool time.now is denied by the policy of agent nay"
    assert "approval_request" not in s.kinds()
    s = start(ch, tok, text="/tool shell.exec {\"cmd\":\"id\"}").finish()
    res = s.wait_for("tool_result").tool_result
    assert res.is_error and res.content == "unknown tool shell.exec", res
    assert s.kinds()[-1] == "COMPLETED"
    ch.close()
    d.assert_clean_stop()


@pytest.mark.parametrize("agent,text", [
    ("asker", TOOL), ("net", "fp:tool key=appr-kill")])
def test_pending_approval_survives_worker_kill(daemon, agent, text):
    """kill -9 of the worker while a run waits: the restarted worker
    rebuilds the run from the journal (the offline model's turn, or the
    network provider's conversation); a client reattached to it sees the
    decision and the rest; the run completes."""
    d = daemon
    tok = d.mint_token("acme", "judy")
    ch = d.new_channel()
    s = start(ch, tok, agent=agent, text=text)
    req = s.wait_for("approval_request").approval_request
    poll(lambda: "WAITING_APPROVAL" in s.kinds(), DEADLINE,
         what="WAITING_APPROVAL")
    run_id = s.events[0].run_id
    workers = d.pids_of("palyra-worker", "acme")
    assert len(workers) == 1, workers
    os.kill(workers[0], signal.SIGKILL)
    s.finish()
    # The run is not interrupted: it waits.
    assert get_run(ch, tok, run_id).status == S.RUN_STATUS_WAITING_APPROVAL
    # A new worker holds it (the first call starts one if need be).
    poll(lambda: d.pids_of("palyra-worker", "acme") not in ([], workers),
         DEADLINE, what="a new worker")
    ch2 = d.new_channel()
    seen = len(s.events)
    # Followed again by reattaching, once the new worker holds it.
    follow = Stream(ch2, tok, pb.RunStart(run_id=run_id, after_seq=seen))
    poll(lambda: decide_out_of_band(ch2, tok, req.approval_id).state ==
         AS.APPROVAL_STATE_ALLOWED, DEADLINE, what="the decision")
    poll(lambda: get_run(ch2, tok, run_id).status == S.RUN_STATUS_COMPLETED,
         DEADLINE, what="the run completing")
    follow.finish()
    assert follow.code == grpc.StatusCode.OK, (follow.code, follow.details)
    assert [e.seq for e in follow.events] == \
        list(range(seen + 1, seen + 1 + len(follow.events))), follow.events
    assert follow.kinds()[0] == "approval_decided", follow.kinds()
    assert follow.kinds()[-1] == "COMPLETED", follow.kinds()
    if agent == "net":
        res = follow.wait_for("tool_result").tool_result
        assert follow.final() == f"It is now: {res.content}"
    kinds = [kind_of(ev) for ev in run_events(ch2, tok, run_id)]
    i = kinds.index("approval_decided")
    assert kinds[i:i + 3] == ["approval_decided", "IN_PROGRESS",
                              "tool_result"], kinds
    assert kinds.index("final") > i and kinds[-1] == "COMPLETED", kinds
    evs = run_events(ch2, tok, run_id)
    assert [e.seq for e in evs] == list(range(1, len(evs) + 1))
    res = [e for e in evs if event_kind(e) == "tool_result"][0].tool_result
    assert not res.is_error and "unix_ms" in res.content, res
    ch.close()
    ch2.close()
    d.assert_clean_stop()


def test_network_provider_round_trip(daemon, fp):
    """A tool call of a network model (fakeprov) waits for approval; its
    result goes back to the model, whose answer ends the run."""
    d = daemon
    tok = d.mint_token("acme", "kim")
    ch = d.new_channel()
    s = start(ch, tok, agent="net", text="fp:tool key=appr1")
    req = s.wait_for("approval_request").approval_request
    assert req.tool_name == "time.now"
    decide_on_stream(s, req.approval_id)
    s.finish()
    assert s.code == grpc.StatusCode.OK, (s.code, s.details)
    res = s.wait_for("tool_result").tool_result
    assert not res.is_error
    assert s.final() == f"It is now: {res.content}"
    kinds = s.kinds()
    assert kinds.index("tool_call") < kinds.index("approval_request") < \
        kinds.index("approval_decided") < kinds.index("tool_result") < \
        kinds.index("final"), kinds
    assert kinds[-1] == "COMPLETED"
    ch.close()
    d.assert_clean_stop()


def test_pending_approval_survives_a_restart_of_palyrad(daemon, tmp_path, fp):
    """SIGTERM stops palyrad cleanly without cancelling a run that waits
    for a person; after a new start its worker takes it over, and the
    decision completes it."""
    d = daemon
    tok = d.mint_token("acme", "lena")
    ch = d.new_channel()
    s = start(ch, tok)
    req = s.wait_for("approval_request").approval_request
    poll(lambda: "WAITING_APPROVAL" in s.kinds(), DEADLINE,
         what="WAITING_APPROVAL")
    run_id = s.events[0].run_id
    d.assert_clean_stop()
    s.finish()
    assert s.code == grpc.StatusCode.UNAVAILABLE, (s.code, s.details)
    assert "CANCELLED" not in s.kinds(), s.kinds()
    ch.close()
    d2 = Daemon(tmp_path / "d", CONFIG.replace("@FAKE", fp.url("fake")),
                TENANTS)
    try:
        d2.start()
        ch2 = d2.new_channel()
        assert get_run(ch2, tok, run_id).status == \
            S.RUN_STATUS_WAITING_APPROVAL
        poll(lambda: decide_out_of_band(ch2, tok, req.approval_id).state ==
             AS.APPROVAL_STATE_ALLOWED, DEADLINE, what="the decision")
        poll(lambda: get_run(ch2, tok, run_id).status ==
             S.RUN_STATUS_COMPLETED, DEADLINE, what="the run completing")
        kinds = [kind_of(ev) for ev in run_events(ch2, tok, run_id)]
        assert kinds.count("approval_decided") == 1, kinds
        i = kinds.index("approval_decided")
        assert kinds[i:i + 3] == ["approval_decided", "IN_PROGRESS",
                                  "tool_result"], kinds
        assert kinds[-1] == "COMPLETED", kinds
        ch2.close()
        d2.assert_clean_stop()
    finally:
        if not d2.stopped:
            d2.kill()


def test_cancel_while_waiting(daemon):
    """A cancel while the run waits for a decision ends it CANCELLED; its
    approval is closed, so a late decision is refused."""
    d = daemon
    tok = d.mint_token("acme", "mona")
    ch = d.new_channel()
    s = start(ch, tok)
    req = s.wait_for("approval_request").approval_request
    poll(lambda: "WAITING_APPROVAL" in s.kinds(), DEADLINE,
         what="WAITING_APPROVAL")
    s.send(pb.RunStreamRequest(cancel=pb.Cancel(reason="changed my mind")))
    s.finish()
    assert s.code == grpc.StatusCode.OK, (s.code, s.details)
    last = s.events[-1].status
    assert last.status == S.RUN_STATUS_CANCELLED, s.events[-1]
    assert last.reason == "changed my mind"
    assert s.kinds()[-2:] == ["WAITING_APPROVAL", "CANCELLED"], s.kinds()
    with pytest.raises(grpc.RpcError) as e:
        decide_out_of_band(ch, tok, req.approval_id)
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION, e.value
    a = unary(ch, APPROVALS + "GetApproval",
              pb.GetApprovalRequest(approval_id=req.approval_id),
              pb.Approval, tok)
    assert a.state != AS.APPROVAL_STATE_PENDING, a
    # The worker goes on serving.
    s = start(ch, tok, text="still here").finish()
    assert s.kinds()[-1] == "COMPLETED", s.kinds()
    ch.close()
    d.assert_clean_stop()
