"""The tenant vault (issue 8): VaultService, ciphertext only in the
journal, redaction of vault values by value, `api-key vault:NAME`.

PutSecret and GetSecret are served by a worker of the tenant (the only
process with the tenant's data key), ListSecrets and DeleteSecret by
journald, which stores ciphertext, nonce and metadata only. Every value of
the vault is redacted from whatever a run journals, and a provider whose
api-key is vault:NAME uses the secret's current value.
"""
import os
import secrets

import grpc
import pytest

from conftest import (BidiRun, Daemon, _require_binaries, auth_md,
                      run_event_label, run_stream, pb, poll)
from palyra.v1 import gateway_pb2_grpc as pbg
import fakeprov

MARK = "[REDACTED]"
DEADLINE = 30.0
S = pb.RunStatus

CONFIG = """\
state-dir "{{state}}"
listen grpc 127.0.0.1:{{grpc_port}}
listen http 127.0.0.1:{{http_port}}
journal {{{{ durability normal }}}}
provider "offline" {{{{ type offline }}}}
provider "remote" {{{{ type openai; base-url "@remote"; api-key vault:remote-key; model "m" }}}}
tenant "acme" {{{{
	agent "assistant" {{{{ providers "offline" }}}}
	agent "remote" {{{{ providers "remote" }}}}
}}}}
tenant "other" {{{{ agent "assistant" {{{{ providers "offline" }}}} }}}}
"""
TENANTS = ("acme", "other")

UI_ASK = pb.ToolDeclaration(
    name="ui.ask", description="Asks the user a question.",
    parameters_json='{"type": "object"}')


@pytest.fixture(scope="module")
def fp():
    srv = fakeprov.FakeProvider().start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory, fp):
    _require_binaries()
    conf = CONFIG.replace('"@remote"', f'"{fp.url("remote")}"').format()
    d = Daemon(tmp_path_factory.mktemp("vault"), conf, TENANTS)
    d.start()
    yield d
    if not d.stopped:
        d.kill()


@pytest.fixture(scope="module")
def ops(daemon):
    """Operator tokens of both tenants, and a user token of acme."""
    return {"acme": daemon.mint_token("acme", "olga", "operator"),
            "other": daemon.mint_token("other", "oscar", "operator"),
            "user": daemon.mint_token("acme", "ursula", "user")}


def vault(daemon):
    return pbg.VaultServiceStub(daemon.channel)


def call(method, req, tok):
    return method(req, metadata=auth_md(tok), timeout=DEADLINE,
                  wait_for_ready=True)


def code_of(method, req, tok):
    with pytest.raises(grpc.RpcError) as e:
        call(method, req, tok)
    return e.value.code(), e.value.details()


def put(daemon, tok, name, value, description=""):
    return call(vault(daemon).PutSecret, pb.PutSecretRequest(
        name=name, value=value, description=description), tok)


def distinctive():
    return ("zq-" + secrets.token_hex(12)).encode()


def journal_bytes(daemon, tenant):
    out = b""
    base = daemon.journal_path(tenant)
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(base + suffix):
            with open(base + suffix, "rb") as f:
                out += f.read()
    return out


def test_put_get_list_delete(daemon, ops):
    v, tok = vault(daemon), ops["acme"]
    value = distinctive()
    meta = put(daemon, tok, "db.password", value, "the database")
    assert (meta.name, meta.version, meta.size) == \
        ("db.password", 1, len(value)), meta
    assert meta.description == "the database" and meta.updated_by == "olga"
    assert meta.created_unix_ms > 0
    got = call(v.GetSecret, pb.GetSecretRequest(name="db.password"), tok)
    assert got.value == value and got.meta.version == 1
    # A second put: a new version, the description kept when not given.
    value2 = distinctive()
    meta2 = put(daemon, tok, "db.password", value2)
    assert meta2.version == 2 and meta2.description == "the database"
    assert meta2.created_unix_ms == meta.created_unix_ms
    assert meta2.updated_unix_ms >= meta.updated_unix_ms
    got = call(v.GetSecret, pb.GetSecretRequest(name="db.password"), tok)
    assert got.value == value2 and got.meta.version == 2
    put(daemon, tok, "a-first", b"x")
    lst = call(v.ListSecrets, pb.ListSecretsRequest(), tok)
    names = [s.name for s in lst.secrets]
    assert names == sorted(names) and {"a-first", "db.password"} <= set(names)
    # Paged by name.
    page = call(v.ListSecrets, pb.ListSecretsRequest(page_size=1), tok)
    assert len(page.secrets) == 1 and page.next_page_token
    rest = call(v.ListSecrets, pb.ListSecretsRequest(
        page_size=1000, page_token=page.next_page_token), tok)
    assert [page.secrets[0].name] + [s.name for s in rest.secrets] == names
    assert rest.next_page_token == ""
    call(v.DeleteSecret, pb.DeleteSecretRequest(name="db.password"), tok)
    assert code_of(v.GetSecret, pb.GetSecretRequest(name="db.password"),
                   tok)[0] == grpc.StatusCode.NOT_FOUND
    assert code_of(v.DeleteSecret, pb.DeleteSecretRequest(name="db.password"),
                   tok)[0] == grpc.StatusCode.NOT_FOUND
    names = [s.name for s in
             call(v.ListSecrets, pb.ListSecretsRequest(), tok).secrets]
    assert "db.password" not in names


def test_roles(daemon, ops):
    v, user = vault(daemon), ops["user"]
    put(daemon, ops["acme"], "role-test", b"operator wrote this")
    denied = grpc.StatusCode.PERMISSION_DENIED
    assert code_of(v.PutSecret, pb.PutSecretRequest(
        name="role-test", value=b"user wrote this"), user)[0] == denied
    assert code_of(v.GetSecret, pb.GetSecretRequest(name="role-test"),
                   user)[0] == denied
    assert code_of(v.DeleteSecret, pb.DeleteSecretRequest(name="role-test"),
                   user)[0] == denied
    # A user lists the metadata, never a value.
    lst = call(v.ListSecrets, pb.ListSecretsRequest(), user)
    metas = {s.name: s for s in lst.secrets}
    assert metas["role-test"].version == 1
    assert b"operator wrote this" not in lst.SerializeToString()


def test_validation(daemon, ops):
    v, tok = vault(daemon), ops["acme"]
    bad = grpc.StatusCode.INVALID_ARGUMENT
    for name in ("", ".hidden", "a/b", "sp ace", "x" * 129, "caf\u00e9"):
        assert code_of(v.PutSecret, pb.PutSecretRequest(
            name=name, value=b"v"), tok)[0] == bad, name
        assert code_of(v.GetSecret, pb.GetSecretRequest(name=name),
                       tok)[0] == bad, name
    assert code_of(v.PutSecret, pb.PutSecretRequest(name="empty"),
                   tok)[0] == bad
    assert code_of(v.PutSecret, pb.PutSecretRequest(
        name="big", value=b"v" * 65537), tok)[0] == bad
    assert code_of(v.PutSecret, pb.PutSecretRequest(
        name="desc", value=b"v", description="d" * 257), tok)[0] == bad
    # The limits themselves are accepted.
    meta = put(daemon, tok, "n" * 128, b"v" * 65536, "d" * 256)
    assert meta.size == 65536
    got = call(v.GetSecret, pb.GetSecretRequest(name="n" * 128), tok)
    assert got.value == b"v" * 65536
    assert code_of(v.ListSecrets, pb.ListSecretsRequest(page_size=1001),
                   tok)[0] == bad


def test_tenant_isolation(daemon, ops):
    v = vault(daemon)
    value = distinctive()
    put(daemon, ops["acme"], "shared-name", value)
    # Another tenant's operator asks for the same name: its own vault
    # has none, and nothing of acme's shows.
    assert code_of(v.GetSecret, pb.GetSecretRequest(name="shared-name"),
                   ops["other"])[0] == grpc.StatusCode.NOT_FOUND
    lst = call(v.ListSecrets, pb.ListSecretsRequest(), ops["other"])
    assert "shared-name" not in [s.name for s in lst.secrets]
    # Its own secret of the same name is another one.
    put(daemon, ops["other"], "shared-name", b"other's own value")
    got = call(v.GetSecret, pb.GetSecretRequest(name="shared-name"),
               ops["other"])
    assert got.value == b"other's own value"
    got = call(v.GetSecret, pb.GetSecretRequest(name="shared-name"),
               ops["acme"])
    assert got.value == value


def test_ciphertext_only(daemon, ops):
    value = distinctive()
    put(daemon, ops["acme"], "grep-me", value, "a description is no secret")
    data = journal_bytes(daemon, "acme")
    assert b"a description is no secret" in data   # the rows are there
    assert value not in data
    assert value not in open(daemon.log_path, "rb").read()


def test_tool_result_is_redacted(daemon, ops):
    """A client-side tool returns the secret; the offline model repeats it.
    Neither the stream nor the journal has the value."""
    value = distinctive()
    put(daemon, ops["acme"], "tool-secret", value)
    user = ops["user"]
    ch = daemon.new_channel()
    s = BidiRun(ch, user, pb.RunStart(
        agent="assistant", input='/tool ui.ask {"q": "key?"}',
        tools=[UI_ASK]), deadline=DEADLINE)
    tc = s.wait_for("tool_call").tool_call
    s.wait_for("WAITING_TOOL")
    s.send(pb.RunStreamRequest(tool_result=pb.ClientToolResult(
        tool_call_id=tc.id, content="the key is " + value.decode())))
    s.finish()
    assert s.code == grpc.StatusCode.OK, (s.code, s.details)
    res = s.wait_for("tool_result").tool_result
    assert res.content == "the key is " + MARK, res
    assert MARK in s.final() and value.decode() not in s.final()
    for ev in s.events:
        assert value not in ev.SerializeToString(), ev
    run_id = s.events[0].run_id
    listed = list(ch.unary_stream(
        "/palyra.v1.GatewayService/ListRunEvents",
        request_serializer=pb.ListRunEventsRequest.SerializeToString,
        response_deserializer=pb.RunEvent.FromString)(
            pb.ListRunEventsRequest(run_id=run_id), metadata=auth_md(user),
            timeout=DEADLINE))
    assert [e.seq for e in listed] == [e.seq for e in s.events]
    assert any(MARK in e.tool_result.content for e in listed)
    assert all(value not in e.SerializeToString() for e in listed)
    # The model's tokens spelled the value out across several of them.
    tokens = "".join(e.token.text for e in listed
                     if run_event_label(e) == "token")
    assert MARK in tokens and value.decode() not in tokens
    assert value not in journal_bytes(daemon, "acme")
    ch.close()


def status_of(res):
    st = [e.status for e in res.events if e.WhichOneof("event") == "status"]
    return st[-1] if st else None


def test_api_key_from_the_vault(daemon, ops, fp):
    user = ops["user"]
    # No such secret yet: the run fails, naming the secret, not a value.
    res = run_stream(daemon.channel, user, input="fp:text n=2",
                     agent="remote", timeout=DEADLINE)
    assert res.code == grpc.StatusCode.FAILED_PRECONDITION, res
    assert "vault:remote-key" in res.details, res.details
    assert not fp.entries("remote")
    for n, key in enumerate(("sk-vault-" + secrets.token_hex(8),
                             "sk-vault-" + secrets.token_hex(8))):
        put(daemon, ops["acme"], "remote-key", key.encode())
        tag = f"tag=v{n}"
        res = run_stream(daemon.channel, user, input=f"fp:text n=2 {tag}",
                         agent="remote", timeout=DEADLINE)
        assert status_of(res).status == S.RUN_STATUS_COMPLETED, res
        ents = fp.entries("remote", tag=tag)
        assert ents, "the provider was never called"
        assert ents[-1].headers.get("authorization") == f"Bearer {key}"
    # A provider echoing the key: the run's events show the mark.
    res = run_stream(daemon.channel, user, input="fp:echokey",
                     agent="remote", timeout=DEADLINE)
    assert status_of(res).status == S.RUN_STATUS_COMPLETED, res
    text = "".join(e.token.text for e in res.events
                   if e.WhichOneof("event") == "token")
    assert MARK in text and key not in text, text
    assert key.encode() not in journal_bytes(daemon, "acme")
    # Deleted: the provider has no key again.
    call(vault(daemon).DeleteSecret,
         pb.DeleteSecretRequest(name="remote-key"), ops["acme"])
    res = poll(lambda: (lambda r: r if r.code ==
                        grpc.StatusCode.FAILED_PRECONDITION else None)(
        run_stream(daemon.channel, user, input="fp:text n=1",
                   agent="remote", timeout=DEADLINE)), 10,
        what="the run to fail without the secret")
    assert "vault:remote-key" in res.details


def tool_run(daemon, tok, content):
    """A run whose client-side tool answers content; its stream events."""
    ch = daemon.new_channel()
    s = BidiRun(ch, tok, pb.RunStart(
        agent="assistant", input='/tool ui.ask {"q": "key?"}',
        tools=[UI_ASK]), deadline=DEADLINE)
    tc = s.wait_for("tool_call").tool_call
    s.wait_for("WAITING_TOOL")
    s.send(pb.RunStreamRequest(tool_result=pb.ClientToolResult(
        tool_call_id=tc.id, content=content)))
    s.finish()
    ch.close()
    assert s.code == grpc.StatusCode.OK, (s.code, s.details)
    return s


def test_new_worker_loads_every_value(daemon, ops):
    """A worker started after the secrets were stored reads them all from
    journald (in several pages: three values of 64 KiB do not fit one
    datagram) before its first run journals anything."""
    for name in ("big-a", "big-b", "big-c"):
        put(daemon, ops["acme"], name, secrets.token_hex(32768).encode())
    last = distinctive()
    put(daemon, ops["acme"], "zz-last", last)
    for pid in daemon.pids_of("palyra-worker", "acme"):
        os.kill(pid, 9)
    poll(lambda: not daemon.pids_of("palyra-worker", "acme"), 10,
         what="the acme workers to be gone")
    s = tool_run(daemon, ops["user"], "it is " + last.decode())
    assert s.wait_for("tool_result").tool_result.content == "it is " + MARK
    for ev in s.events:
        assert last not in ev.SerializeToString(), ev
    assert last not in journal_bytes(daemon, "acme")
