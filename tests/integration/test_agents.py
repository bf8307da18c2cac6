"""GatewayService ListAgents, GetAgent, CreateAgent, UpdateAgent and
DeleteAgent (DESIGN section 6), and runs with runtime agents.

A tenant's agents are those of palyrad.conf (source "config", read-only)
and those an operator creates at run time (source "runtime", kept in the
tenant's journal). A run names a runtime agent like a config one; an update
or a delete takes effect with the next run. The offline model counts the
system prompt's words into usage.input_tokens (worker/offline.c), which
shows which system prompt a run used.
"""

import json
import os
import subprocess

import grpc
import pytest

from conftest import _require_binaries, auth_md, pb, run_stream, Daemon

SVC = "/palyra.v1.GatewayService/"
TIMEOUT = 10.0

CONFIG = """\
state-dir "{state}"
listen grpc 127.0.0.1:{grpc_port}
listen http 127.0.0.1:{http_port}
journal {{ durability normal }}
provider "offline" {{ type offline }}
tenant "alpha" {{
	agent "assistant" {{
		providers "offline"
		system-prompt "You are terse."
		max-output-tokens 512
	}}
}}
tenant "beta" {{ agent "helper" {{ providers "offline" }} }}
"""
TENANTS = ("alpha", "beta")
INPUT = "one two three"


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    _require_binaries()
    d = Daemon(tmp_path_factory.mktemp("agents") / "d", CONFIG, TENANTS)
    yield d.start()
    if not d.stopped:
        d.kill()


def unary(ch, name, req, resp_cls, token):
    call = ch.unary_unary(SVC + name,
                          request_serializer=type(req).SerializeToString,
                          response_deserializer=resp_cls.FromString)
    return call(req, metadata=auth_md(token), timeout=TIMEOUT)


def code_of(fn):
    with pytest.raises(grpc.RpcError) as e:
        fn()
    return e.value.code(), e.value.details()


def list_agents(ch, token):
    return unary(ch, "ListAgents", pb.ListAgentsRequest(),
                 pb.ListAgentsResponse, token).agents


def create(ch, token, name, prompt, providers=("offline",), **kw):
    return unary(ch, "CreateAgent", pb.CreateAgentRequest(agent=pb.Agent(
        name=name, system_prompt=prompt, providers=list(providers), **kw)),
        pb.Agent, token)


def input_tokens(res):
    assert res.code == grpc.StatusCode.OK, res
    usage = [ev.usage for ev in res.events if ev.WhichOneof("event") == "usage"]
    assert len(usage) == 1, res
    return usage[0].input_tokens


def test_agents_crud_and_runs(daemon):
    ch = daemon.channel
    user = daemon.mint_token("alpha", "alice", "user")
    operator = daemon.mint_token("alpha", "ops", "operator")
    other = daemon.mint_token("beta", "bob", "operator")

    # The config agent, for any token.
    agents = list_agents(ch, user)
    assert [(a.name, a.source) for a in agents] == [("assistant", "config")]
    assert agents[0].system_prompt == "You are terse."
    assert list(agents[0].providers) == ["offline"]
    assert agents[0].max_output_tokens == 512
    got = unary(ch, "GetAgent", pb.GetAgentRequest(name="assistant"),
                pb.Agent, user)
    assert got.source == "config"
    base = input_tokens(run_stream(ch, user, input=INPUT, agent="assistant"))
    assert base == 3 + 3

    # A user token cannot create.
    code, _ = code_of(lambda: create(ch, user, "writer", "x"))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    code, _ = code_of(lambda: unary(
        ch, "DeleteAgent", pb.DeleteAgentRequest(name="assistant"),
        pb.DeleteAgentResponse, user))
    assert code == grpc.StatusCode.PERMISSION_DENIED

    # An operator creates one with a longer system prompt.
    prompt = "You are a careful writer who explains every step in detail."
    a = create(ch, operator, "writer", prompt, max_output_tokens=256,
               temperature=0.5)
    assert (a.name, a.source, a.max_output_tokens) == ("writer", "runtime", 256)
    assert a.temperature == 0.5 and a.created_unix_ms > 0
    names = [(x.name, x.source) for x in list_agents(ch, user)]
    assert names == [("assistant", "config"), ("writer", "runtime")]
    res = run_stream(ch, user, input=INPUT, agent="writer")
    assert input_tokens(res) == len(prompt.split()) + 3

    # Duplicates, of a runtime or a config agent.
    for name in ("writer", "assistant"):
        code, _ = code_of(lambda: create(ch, operator, name, "x"))
        assert code == grpc.StatusCode.ALREADY_EXISTS, name

    # Invalid settings.
    for kw in ({"providers": ("nosuch",)}, {"providers": ()},
               {"max_output_tokens": 2000000}, {"temperature": 2.5},
               {"name": "bad name"}, {"prompt": "x" * (16 * 1024 + 1)}):
        args = {"name": "other", "prompt": "p", "providers": ("offline",)}
        args.update(kw)
        code, _ = code_of(lambda: create(ch, operator, args.pop("name"),
                                         args.pop("prompt"), **args))
        assert code == grpc.StatusCode.INVALID_ARGUMENT, kw

    # An update takes effect with the next run.
    upd = unary(ch, "UpdateAgent", pb.UpdateAgentRequest(
        name="writer", system_prompt="Be brief."), pb.Agent, operator)
    assert upd.system_prompt == "Be brief." and upd.max_output_tokens == 256
    assert upd.updated_unix_ms >= a.updated_unix_ms
    res = run_stream(ch, user, input=INPUT, agent="writer")
    assert input_tokens(res) == 2 + 3

    # Config agents are read-only.
    for name, req, resp in (
            ("UpdateAgent", pb.UpdateAgentRequest(name="assistant",
                                                  system_prompt="x"),
             pb.Agent),
            ("DeleteAgent", pb.DeleteAgentRequest(name="assistant"),
             pb.DeleteAgentResponse)):
        code, details = code_of(lambda: unary(ch, name, req, resp, operator))
        assert code == grpc.StatusCode.FAILED_PRECONDITION, name
        assert "defined in the configuration" in details

    # Another tenant sees nothing of it.
    assert [x.name for x in list_agents(ch, other)] == ["helper"]
    code, _ = code_of(lambda: unary(
        ch, "GetAgent", pb.GetAgentRequest(name="writer"), pb.Agent, other))
    assert code == grpc.StatusCode.NOT_FOUND
    res = run_stream(ch, other, input=INPUT, agent="writer")
    assert res.code == grpc.StatusCode.NOT_FOUND, res
    code, _ = code_of(lambda: unary(
        ch, "DeleteAgent", pb.DeleteAgentRequest(name="writer"),
        pb.DeleteAgentResponse, other))
    assert code == grpc.StatusCode.NOT_FOUND

    # Delete: the next run does not find it.
    unary(ch, "DeleteAgent", pb.DeleteAgentRequest(name="writer"),
          pb.DeleteAgentResponse, operator)
    res = run_stream(ch, user, input=INPUT, agent="writer")
    assert res.code == grpc.StatusCode.NOT_FOUND, res
    assert res.details == "unknown agent"
    code, _ = code_of(lambda: unary(
        ch, "GetAgent", pb.GetAgentRequest(name="writer"), pb.Agent, user))
    assert code == grpc.StatusCode.NOT_FOUND
    assert [x.name for x in list_agents(ch, user)] == ["assistant"]


def ctl(d, *args):
    from conftest import PALYRACTL
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    return subprocess.run([PALYRACTL, "-g", d.grpc_addr, "-u", d.http_url,
                           "-s", d.state, *args], capture_output=True,
                          text=True, timeout=30, stdin=subprocess.DEVNULL,
                          env=env)


def test_palyractl_agent(daemon):
    d = daemon
    user = d.mint_token("beta", "carol", "user")
    r = ctl(d, "agent", "list", "--token", user)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["helper config offline 1024 1"], r.stdout
    r = ctl(d, "agent", "create", "--token", user, "--provider", "offline",
            "ctlbot")
    assert r.returncode == 1 and "PERMISSION_DENIED" in r.stderr, r
    r = ctl(d, "--json", "agent", "create", "--tenant", "beta",
            "--system-prompt", "Answer in French please", "--provider",
            "offline", "--max-output-tokens", "64", "--temperature", "0.25",
            "ctlbot")
    assert r.returncode == 0, r.stderr
    a = json.loads(r.stdout)
    assert (a["name"], a["source"], a["providers"], a["max_output_tokens"],
            a["temperature"]) == ("ctlbot", "runtime", ["offline"], 64, 0.25)
    res = run_stream(d.channel, user, input=INPUT, agent="ctlbot")
    assert input_tokens(res) == 4 + 3
    r = ctl(d, "agent", "update", "--tenant", "beta", "--system-prompt",
            "Oui", "ctlbot")
    assert r.returncode == 0, r.stderr
    r = ctl(d, "agent", "show", "--token", user, "ctlbot")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == "Oui"
    assert input_tokens(run_stream(d.channel, user, input=INPUT,
                                   agent="ctlbot")) == 1 + 3
    r = ctl(d, "agent", "update", "--tenant", "beta", "--temperature", "1",
            "helper")
    assert r.returncode == 1 and "FAILED_PRECONDITION" in r.stderr, r
    r = ctl(d, "agent", "create", "--tenant", "beta", "--provider",
            "offline", "ctlbot")
    assert r.returncode == 1 and "ALREADY_EXISTS" in r.stderr, r
    r = ctl(d, "agent", "delete", "--tenant", "beta", "ctlbot")
    assert r.returncode == 0 and r.stdout == "ctlbot deleted\n", r
    r = ctl(d, "agent", "show", "--token", user, "ctlbot")
    assert r.returncode == 1 and "NOT_FOUND" in r.stderr, r
    r = ctl(d, "agent", "create", "--tenant", "beta", "ctlbot")
    assert r.returncode == 2, r


def test_runtime_agent_limit(daemon):
    """At most AGENT_RUNTIME_MAX (64) runtime agents per tenant."""
    ch = daemon.channel
    operator = daemon.mint_token("beta", "limits", "operator")
    names = [f"bot{i}" for i in range(64)]
    for name in names:
        create(ch, operator, name, "p")
    code, details = code_of(lambda: create(ch, operator, "bot64", "p"))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED, details
    assert len(list_agents(ch, operator)) == 1 + 64
    for name in names:
        unary(ch, "DeleteAgent", pb.DeleteAgentRequest(name=name),
              pb.DeleteAgentResponse, operator)
    assert [a.name for a in list_agents(ch, operator)] == ["helper"]
