"""An agent's run limits (palyrad.conf(5) max-turns, max-tool-calls,
max-wall-clock): the offline tool demo over max-tool-calls, a model that
calls tools forever (fakeprov.py "toolloop") stopped by max-turns or by
max-tool-calls, an offline run with a token-delay stopped by its agent's
wall clock (FAILED, not the CANCELLED of a client deadline), and the same
limits on a runtime agent made with CreateAgent and changed with
UpdateAgent.
"""
import os
import secrets
import time
import uuid

import grpc
import pytest

from conftest import Daemon, _require_binaries, auth_md, event_kind, pb, \
    run_stream
import fakeprov

S = pb.RunStatus
SVC = "/palyra.v1.GatewayService/"
KEY = "sk-limits-" + secrets.token_hex(16)


def make_config(fp):
    return (
        'state-dir "{state}"\nlisten grpc 127.0.0.1:{grpc_port}\n'
        'listen http 127.0.0.1:{http_port}\n'
        'journal {{ durability normal }}\n'
        'provider "offline" {{ type offline }}\n'
        'provider "slow" {{ type offline; token-delay 100ms }}\n'
        f'provider "fake" {{{{ type openai; base-url "{fp.url("fake")}"; '
        'api-key env:LIMITS_KEY; model "m"; timeout connect 2s '
        'first-byte 5s idle 5s total 30s }}\n'
        'tenant "default" {{\n\tworkers 1\n'
        '\tagent "notools" {{ providers "offline"; max-tool-calls 0 }}\n'
        '\tagent "onetool" {{ providers "offline"; max-tool-calls 1 }}\n'
        '\tagent "loop" {{ providers "fake"; tool "time.now" allow;\n'
        '\t\tmax-turns 3 }}\n'
        '\tagent "loopcalls" {{ providers "fake"; tool "time.now" allow;\n'
        '\t\tmax-tool-calls 2 }}\n'
        '\tagent "clock" {{ providers "slow"; max-wall-clock 1s }}\n'
        '\tagent "clockms" {{ providers "slow"; max-wall-clock 1500ms }}\n'
        '}}\n')


@pytest.fixture(scope="module")
def fp():
    srv = fakeprov.FakeProvider().start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory, fp):
    _require_binaries()
    old = os.environ.get("LIMITS_KEY")
    os.environ["LIMITS_KEY"] = KEY
    d = Daemon(tmp_path_factory.mktemp("limits"), make_config(fp),
               ("default",))
    try:
        d.start()
        yield d
    finally:
        if not d.stopped:
            d.kill()
        if old is None:
            os.environ.pop("LIMITS_KEY", None)
        else:
            os.environ["LIMITS_KEY"] = old


@pytest.fixture(scope="module")
def tok(daemon):
    return daemon.mint_token("default", "alice")


def terminal(res):
    assert res.code == grpc.StatusCode.OK, res
    st = [ev.status for ev in res.events if event_kind(ev) == "status"]
    assert st, res
    return st[-1]


def kinds(res, kind):
    return [ev for ev in res.events if event_kind(ev) == kind]


def unary(ch, name, req, resp_cls, token):
    call = ch.unary_unary(SVC + name,
                          request_serializer=type(req).SerializeToString,
                          response_deserializer=resp_cls.FromString)
    return call(req, metadata=auth_md(token), timeout=10)


def test_offline_tool_demo_over_max_tool_calls(daemon, tok):
    res = run_stream(daemon.channel, tok, input="/tool time.now {}",
                     agent="notools")
    st = terminal(res)
    assert st.status == S.RUN_STATUS_FAILED, res
    assert st.reason == "agent max-tool-calls limit of 0 reached", st
    # The call was never made.
    assert kinds(res, "tool_call") == [] and kinds(res, "tool_result") == []

    # One call allowed: the demo runs and completes.
    res = run_stream(daemon.channel, tok, input="/tool time.now {}",
                     agent="onetool")
    st = terminal(res)
    assert st.status == S.RUN_STATUS_COMPLETED, res
    assert len(kinds(res, "tool_call")) == 1
    assert len(kinds(res, "tool_result")) == 1


def requests_of(fp, key):
    return [e for e in fp.entries(upstream="fake")
            if e.scenario == "toolloop" and e.params.get("key") == key]


def test_tools_forever_hit_max_turns(daemon, tok, fp):
    key = uuid.uuid4().hex
    res = run_stream(daemon.channel, tok, input=f"fp:toolloop key={key}",
                     agent="loop")
    st = terminal(res)
    assert st.status == S.RUN_STATUS_FAILED, res
    assert st.reason == "agent max-turns limit of 3 reached", st
    # Three provider calls; the tools of the first two ran, the third
    # reply's calls were refused.
    assert len(requests_of(fp, key)) == 3
    assert len(kinds(res, "tool_call")) == 2
    assert len(kinds(res, "tool_result")) == 2


def test_tools_forever_hit_max_tool_calls(daemon, tok, fp):
    key = uuid.uuid4().hex
    res = run_stream(daemon.channel, tok, input=f"fp:toolloop key={key}",
                     agent="loopcalls")
    st = terminal(res)
    assert st.status == S.RUN_STATUS_FAILED, res
    assert st.reason == "agent max-tool-calls limit of 2 reached", st
    assert len(kinds(res, "tool_call")) == 2
    assert len(requests_of(fp, key)) == 3


@pytest.mark.parametrize("agent,ms,text", [("clock", 1000, "1 s"),
                                           ("clockms", 1500, "1.5 s")])
def test_wall_clock(daemon, tok, agent, ms, text):
    # 100 ms a token, 40 words: about 4 s without the limit.
    words = " ".join(f"w{i}" for i in range(40))
    t0 = time.monotonic()
    res = run_stream(daemon.channel, tok, input=words, agent=agent)
    took = time.monotonic() - t0
    st = terminal(res)
    assert st.status == S.RUN_STATUS_FAILED, res
    assert st.reason == f"agent wall-clock limit of {text} reached", st
    assert ms / 1000.0 - 0.1 <= took < ms / 1000.0 + 1.5, took
    # Tokens came before the limit; no final message after it.
    assert 0 < len(kinds(res, "token")) < 40
    assert kinds(res, "final") == []


def test_runtime_agent_limits(daemon, tok, fp):
    ch = daemon.channel
    op = daemon.mint_token("default", "ops", "operator")
    name = "rt" + uuid.uuid4().hex[:8]
    a = unary(ch, "CreateAgent", pb.CreateAgentRequest(agent=pb.Agent(
        name=name, providers=["fake"], max_turns=2, max_tool_calls=5,
        set_max_tool_calls=True, max_wall_clock_ms=30000)), pb.Agent, op)
    assert (a.max_turns, a.max_tool_calls, a.max_wall_clock_ms) == \
        (2, 5, 30000)
    got = unary(ch, "GetAgent", pb.GetAgentRequest(name=name), pb.Agent, tok)
    assert (got.max_turns, got.max_tool_calls, got.max_wall_clock_ms) == \
        (2, 5, 30000)

    key = uuid.uuid4().hex
    res = run_stream(ch, tok, input=f"fp:toolloop key={key}", agent=name)
    st = terminal(res)
    assert st.status == S.RUN_STATUS_FAILED, res
    assert st.reason == "agent max-turns limit of 2 reached", st
    assert len(requests_of(fp, key)) == 2

    # max_tool_calls 0 is a value, not "keep".
    a = unary(ch, "UpdateAgent", pb.UpdateAgentRequest(
        name=name, set_max_tool_calls=True, max_tool_calls=0), pb.Agent, op)
    assert (a.max_turns, a.max_tool_calls) == (2, 0)
    key = uuid.uuid4().hex
    res = run_stream(ch, tok, input=f"fp:toolloop key={key}", agent=name)
    st = terminal(res)
    assert st.reason == "agent max-tool-calls limit of 0 reached", st
    assert kinds(res, "tool_call") == []

    # Defaults when left out; bounds checked.
    d = unary(ch, "CreateAgent", pb.CreateAgentRequest(agent=pb.Agent(
        name=name + "d", providers=["offline"])), pb.Agent, op)
    assert (d.max_turns, d.max_tool_calls, d.max_wall_clock_ms) == \
        (8, 32, 600000)
    for bad, why in ((dict(max_turns=65), "max_turns must be 1 to 64"),
                     (dict(max_tool_calls=1025, set_max_tool_calls=True),
                      "max_tool_calls must be 0 to 1024"),
                     (dict(max_wall_clock_ms=999), "max_wall_clock_ms")):
        with pytest.raises(grpc.RpcError) as e:
            unary(ch, "CreateAgent", pb.CreateAgentRequest(agent=pb.Agent(
                name=name + "x", providers=["offline"], **bad)), pb.Agent, op)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert why in e.value.details()
    # A config agent reports its limits too.
    cfg = unary(ch, "GetAgent", pb.GetAgentRequest(name="loop"), pb.Agent,
                tok)
    assert (cfg.max_turns, cfg.max_tool_calls, cfg.max_wall_clock_ms) == \
        (3, 32, 600000)
