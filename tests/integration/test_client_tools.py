"""Client-side tools (issue 7): declared in RunStart.tools, run by the client.

A call of a declared tool is validated against its schema (a schema error
goes back to the model as an error result), then the run is WAITING_TOOL
until the client sends a ClientToolResult on its stream, or fails when the
agent's client-tool-timeout passes. Declarations themselves are checked
before any run starts. The offline model's tool demo ("/tool NAME {json}")
makes the calls.
"""
import json
import time

import grpc
import pytest

from conftest import BidiRun, run_event_label, _require_binaries, pb, Daemon

CONFIG = """\
state-dir "{state}"
listen grpc 127.0.0.1:{grpc_port}
listen http 127.0.0.1:{http_port}
journal {{ durability normal }}
provider "offline" {{ type offline }}
tenant "acme" {{
	agent "assistant" {{ providers "offline" }}
	agent "hasty" {{ providers "offline"; client-tool-timeout 1s }}
	agent "strict" {{ providers "offline"; tool "ui.*" deny }}
	agent "careful" {{ providers "offline"; tool "ui.ask" ask }}
}}
"""
TENANTS = ("acme",)
DEADLINE = 30.0
RUN = "/palyra.v1.GatewayService/RunStream"
S = pb.RunStatus
D = pb.ApprovalDecisionKind

ASK = pb.ToolDeclaration(
    name="ui.ask", description="Asks the user a question.",
    parameters_json=json.dumps({
        "type": "object",
        "properties": {"question": {"type": "string", "minLength": 1}},
        "required": ["question"], "additionalProperties": False}))
PREFIX = "I am the offline model of palyrad. The tool "


@pytest.fixture
def daemon(tmp_path):
    _require_binaries()
    d = Daemon(tmp_path / "d", CONFIG, TENANTS)
    yield d.start()
    if not d.stopped:
        d.kill()


class Stream(BidiRun):
    def __init__(self, channel, token, start):
        super().__init__(channel, token, start, deadline=DEADLINE)


kind_of = run_event_label


def start(ch, tok, text, agent="assistant", tools=(ASK,)):
    return Stream(ch, tok, pb.RunStart(agent=agent, input=text,
                                       tools=list(tools)))


def result(call_id, content, is_error=False):
    return pb.RunStreamRequest(tool_result=pb.ClientToolResult(
        tool_call_id=call_id, content=content, is_error=is_error))


def test_round_trip(daemon):
    """The client answers the call; its answer goes back to the model."""
    d = daemon
    tok = d.mint_token("acme", "alice")
    ch = d.new_channel()
    s = start(ch, tok, '/tool ui.ask {"question": "Proceed?"}')
    call = s.wait_for("tool_call").tool_call
    assert call.name == "ui.ask"
    assert json.loads(call.arguments_json) == {"question": "Proceed?"}
    s.wait_for("WAITING_TOOL")
    s.send(result(call.id, "yes, go ahead"))
    s.finish()
    assert s.code == grpc.StatusCode.OK, (s.code, s.details)
    kinds = s.kinds()
    want = ["ACCEPTED", "IN_PROGRESS", "tool_call", "WAITING_TOOL",
            "IN_PROGRESS", "tool_result"]
    assert kinds[:len(want)] == want, kinds
    assert kinds[-3:] == ["final", "usage", "COMPLETED"], kinds
    res = s.wait_for("tool_result").tool_result
    assert res.id == call.id and res.name == "ui.ask"
    assert res.content == "yes, go ahead" and not res.is_error, res
    assert s.final() == PREFIX + "ui.ask returned: yes, go ahead"
    # An error result from the client is kept as one.
    s = start(ch, tok, '/tool ui_ask {"question": "Again?"}')
    call = s.wait_for("tool_call").tool_call
    s.wait_for("WAITING_TOOL")
    s.send(result(call.id, "the user closed the dialog", is_error=True))
    s.finish()
    res = s.wait_for("tool_result").tool_result
    assert res.is_error and res.content == "the user closed the dialog"
    assert s.final() == PREFIX + "ui_ask failed: the user closed the dialog"
    ch.close()
    d.assert_clean_stop()


def test_schema_error_goes_to_the_model(daemon):
    """Arguments that break the declared schema never reach the client:
    the model reads the validation message."""
    d = daemon
    tok = d.mint_token("acme", "bob")
    ch = d.new_channel()
    s = start(ch, tok, '/tool ui.ask {"question": 42}').finish()
    assert s.code == grpc.StatusCode.OK, (s.code, s.details)
    assert "WAITING_TOOL" not in s.kinds(), s.kinds()
    res = s.wait_for("tool_result").tool_result
    assert res.is_error, res
    assert res.content.startswith("ui.ask: invalid arguments: /question"), res
    assert s.final() == PREFIX + "ui.ask failed: " + res.content
    s = start(ch, tok, '/tool ui.ask {"q": "x"}').finish()
    res = s.wait_for("tool_result").tool_result
    assert res.is_error and "question" in res.content, res
    ch.close()
    d.assert_clean_stop()


def test_client_tool_timeout(daemon):
    """No answer within the agent's client-tool-timeout: the run fails and
    says which tool did not answer."""
    d = daemon
    tok = d.mint_token("acme", "carol")
    ch = d.new_channel()
    t0 = time.monotonic()
    s = start(ch, tok, '/tool ui.ask {"question": "?"}', agent="hasty")
    s.finish()
    assert 0.9 <= time.monotonic() - t0 < 10
    assert s.code == grpc.StatusCode.OK, (s.code, s.details)
    last = s.events[-1].status
    assert last.status == S.RUN_STATUS_FAILED, s.events[-1]
    assert last.reason == "client tool ui.ask did not answer within 1 s"
    assert "tool_result" not in s.kinds()
    ch.close()
    d.assert_clean_stop()


def test_result_for_no_waiting_call(daemon):
    """A result naming no call waiting on the run ends that stream with
    FAILED_PRECONDITION."""
    d = daemon
    tok = d.mint_token("acme", "dave")
    ch = d.new_channel()
    s = start(ch, tok, '/tool ui.ask {"question": "?"}', agent="hasty")
    s.wait_for("WAITING_TOOL")
    s.send(result("no-such-call", "x"))
    s.finish()
    assert s.code == grpc.StatusCode.FAILED_PRECONDITION, (s.code, s.details)
    assert "no tool call no-such-call" in s.details, s.details
    ch.close()
    d.assert_clean_stop()


def test_policies_on_client_tools(daemon):
    """deny: an error result without asking the client; ask: the approval
    comes first, then the client's turn; an undeclared tool is unknown."""
    d = daemon
    tok = d.mint_token("acme", "erin")
    ch = d.new_channel()
    s = start(ch, tok, '/tool ui.ask {"question": "?"}', agent="strict")
    s.finish()
    res = s.wait_for("tool_result").tool_result
    assert res.is_error and "denied by the policy" in res.content, res
    assert "WAITING_TOOL" not in s.kinds()
    s = start(ch, tok, '/tool ui.ask {"question": "?"}', agent="careful")
    req = s.wait_for("approval_request").approval_request
    s.send(pb.RunStreamRequest(approval=pb.ApprovalDecision(
        approval_id=req.approval_id, decision=D.APPROVAL_DECISION_ALLOW)))
    call = s.wait_for("tool_call").tool_call
    s.wait_for("WAITING_TOOL")
    s.send(result(call.id, "ok"))
    s.finish()
    kinds = s.kinds()
    assert kinds[2:10] == ["tool_call", "approval_request",
                           "WAITING_APPROVAL", "approval_decided",
                           "IN_PROGRESS", "WAITING_TOOL", "IN_PROGRESS",
                           "tool_result"], kinds
    s = start(ch, tok, '/tool ui.other {}').finish()
    res = s.wait_for("tool_result").tool_result
    assert res.is_error and res.content == "unknown tool ui.other"
    ch.close()
    d.assert_clean_stop()


@pytest.mark.parametrize("decl,why", [
    (pb.ToolDeclaration(name="bad name"), "invalid tool name"),
    (pb.ToolDeclaration(name="time.now"), "name of a built-in"),
    (pb.ToolDeclaration(name="x", parameters_json="{"), "not valid JSON"),
    (pb.ToolDeclaration(name="x", parameters_json='{"$ref": "#/a"}'),
     "unsupported keyword"),
    (pb.ToolDeclaration(name="x", parameters_json=" " * 16385),
     "parameters_json"),
])
def test_bad_declarations(daemon, decl, why):
    d = daemon
    tok = d.mint_token("acme", "frank")
    ch = d.new_channel()
    s = start(ch, tok, "hello", tools=[decl]).finish()
    assert s.code == grpc.StatusCode.INVALID_ARGUMENT, (s.code, s.details)
    assert why in s.details, s.details
    assert s.events == [], s.events
    ch.close()


def test_too_many_declarations(daemon):
    d = daemon
    tok = d.mint_token("acme", "gail")
    ch = d.new_channel()
    tools = [pb.ToolDeclaration(name=f"t{i}") for i in range(65)]
    s = start(ch, tok, "hello", tools=tools).finish()
    assert s.code == grpc.StatusCode.INVALID_ARGUMENT, (s.code, s.details)
    assert "too many tools" in s.details
    # 64 fit: the run starts, and waits for the client's t63.
    s = start(ch, tok, '/tool t63 {}', agent="hasty",
              tools=tools[:64]).finish()
    assert s.code == grpc.StatusCode.OK, (s.code, s.details)
    assert s.events[-1].status.reason == \
        "client tool t63 did not answer within 1 s", s.events[-1]
    ch.close()
    d.assert_clean_stop()
