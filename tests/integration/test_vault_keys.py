"""The vault's keys in palyrad (README "Vault", palyrad(8) FILES).

STATE/token.key hashes the tokens and is not derived from master.key any
more, so tokens survive restarts and a rotation of master.key; a state
directory from before it gets the old derivation written once. Every
STATE/vault/NAME.key must unwrap with master.key: another master key is
refused at start and by palyrad -n, naming the file, exit status 1. POST
/admin/v1/vault/rotate-master writes a new master.key and re-wraps every
key file (the data keys, so every ciphertext, stay the same); a rotation a
crash interrupted is finished at the next start. The host vault
(/admin/v1/vault) holds provider credentials named by `api-key
vault:host/NAME`. A vault directory or key file others may read is
refused.
"""
import glob
import os
import secrets
import shutil
import subprocess

import grpc
import pytest

from conftest import (PALYRAD, Daemon, _require_binaries, auth_md,
                      http_request, pb, poll, run_stream, start_workers,
                      journal_events)
import fakeprov

try:
    from palyra.v1 import gateway_pb2_grpc as pb_grpc
except ImportError:  # pragma: no cover - reported by the tests using it
    pb_grpc = None

KEY_FILE_LEN = 76


def read(path):
    with open(path, "rb") as f:
        return f.read()


def write_secret(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def key_files(d):
    return {os.path.basename(p): read(p)
            for p in glob.glob(os.path.join(d.state, "vault", "*.key"))}


def sessions_ok(d, token):
    """An authenticated call with a tenant token: True when accepted."""
    call = d.channel.unary_unary(
        "/palyra.v1.GatewayService/ListSessions",
        request_serializer=pb.ListSessionsRequest.SerializeToString,
        response_deserializer=pb.ListSessionsResponse.FromString)
    try:
        call(pb.ListSessionsRequest(), metadata=auth_md(token), timeout=10)
        return True
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.UNAUTHENTICATED, e
        return False


def restart(d):
    d.assert_clean_stop()
    d.stopped = False
    d._stop_sampling.clear()
    d.start()


def rotate(d):
    st, body = http_request(d, "POST", "/admin/v1/vault/rotate-master",
                            token=d.admin_token)
    assert st == 200, (st, body)
    return body


def check_only(d):
    return subprocess.run([PALYRAD, "-n", "-f", d.conf], cwd=d.workdir,
                          capture_output=True, text=True, timeout=30)


# ---------------------------------------------------------- VaultService

def vault_stub(d):
    if pb_grpc is None or not hasattr(pb_grpc, "VaultServiceStub"):
        pytest.skip("no VaultService stubs")
    return pb_grpc.VaultServiceStub(d.channel)


def put_tenant_secret(d, token, name, value):
    """PutSecret through the tenant's worker; skips while the worker side
    of the vault answers UNIMPLEMENTED."""
    try:
        return vault_stub(d).PutSecret(
            pb.PutSecretRequest(name=name, value=value),
            metadata=auth_md(token), timeout=15)
    except grpc.RpcError as e:
        if e.code() == grpc.StatusCode.UNIMPLEMENTED:
            pytest.skip("the tenant vault is not there yet")
        raise


def get_tenant_secret(d, token, name):
    return vault_stub(d).GetSecret(pb.GetSecretRequest(name=name),
                                   metadata=auth_md(token), timeout=15).value


@pytest.fixture
def daemon(tmp_path):
    _require_binaries()
    d = Daemon(tmp_path / "d")
    yield d.start()
    if not d.stopped:
        d.kill()


# ---------------------------------------------------------- token.key

def test_token_key_created_and_tokens_survive_restart_and_rotation(daemon):
    d = daemon
    path = os.path.join(d.state, "token.key")
    tk = read(path)
    assert len(tk) == 32
    assert os.stat(path).st_mode & 0o777 == 0o600
    tok = d.mint_token("default", "alice")
    assert sessions_ok(d, tok)
    assert not sessions_ok(d, tok[:-2] + ("AA" if tok[-2:] != "AA" else "BB"))

    # A state directory of an earlier palyrad has no token.key: the key
    # derived from master.key is written once, the tokens stay valid.
    d.assert_clean_stop()
    os.unlink(path)
    d.stopped = False
    d._stop_sampling.clear()
    d.start()
    assert read(path) == tk
    assert sessions_ok(d, tok)

    master = read(os.path.join(d.state, "master.key"))
    body = rotate(d)
    assert body["rotated"] is True and body["rewrapped"] >= 1
    assert read(os.path.join(d.state, "master.key")) != master
    assert read(path) == tk
    assert sessions_ok(d, tok)
    # The admin token too (its hash uses token.key).
    st, _ = http_request(d, "GET", "/admin/v1/vault", token=d.admin_token)
    assert st == 200
    restart(d)
    assert read(path) == tk
    assert sessions_ok(d, tok)
    assert d.mint_token("other", "bob")


# ---------------------------------------------------------- wrong master

def test_wrong_master_key_refused(daemon):
    d = daemon
    start_workers(d, ["default"])
    keyfile = os.path.join(d.state, "vault", "default.key")
    poll(lambda: os.path.exists(keyfile), 10, what="default.key")
    wrapped = read(keyfile)
    assert len(wrapped) == KEY_FILE_LEN
    d.assert_clean_stop()
    good = read(os.path.join(d.state, "master.key"))
    write_secret(os.path.join(d.state, "master.key"),
                 secrets.token_bytes(32))

    r = check_only(d)
    assert r.returncode == 1, r
    assert f"{d.state}/vault/default.key: cannot be unwrapped with " \
        "master.key: wrong master key, or the file is damaged" in r.stderr

    p = subprocess.run([PALYRAD, "-d", "-f", d.conf], cwd=d.workdir,
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 1, p
    assert f"{d.state}/vault/default.key: cannot be unwrapped" in p.stderr
    # Nothing was created or changed with the wrong key.
    assert read(keyfile) == wrapped
    assert not os.path.exists(os.path.join(d.state, "master.key.new"))

    write_secret(os.path.join(d.state, "master.key"), good)
    assert check_only(d).returncode == 0
    d.stopped = False
    d._stop_sampling.clear()
    d.start()


def test_damaged_key_file_refused(daemon):
    d = daemon
    start_workers(d, ["other"])
    keyfile = os.path.join(d.state, "vault", "other.key")
    poll(lambda: os.path.exists(keyfile), 10, what="other.key")
    d.assert_clean_stop()
    data = bytearray(read(keyfile))
    data[40] ^= 1
    write_secret(keyfile, bytes(data))
    r = check_only(d)
    assert r.returncode == 1
    assert f"{d.state}/vault/other.key: cannot be unwrapped" in r.stderr


# ---------------------------------------------------------- rotation

def test_rotate_master_rewraps_every_key(daemon):
    d = daemon
    start_workers(d)
    names = {"default.key", "other.key", "@host.key"}
    poll(lambda: names <= set(key_files(d)), 10, what="the key files")
    before = key_files(d)
    master = read(os.path.join(d.state, "master.key"))
    body = rotate(d)
    assert body["rewrapped"] == len(before)
    after = key_files(d)
    assert set(after) == set(before)
    for name in before:
        assert len(after[name]) == KEY_FILE_LEN
        assert after[name] != before[name], name
    assert read(os.path.join(d.state, "master.key")) != master
    assert os.stat(os.path.join(d.state, "master.key")).st_mode & 0o777 \
        == 0o600
    assert not glob.glob(os.path.join(d.state, "vault", "*.new"))
    assert not os.path.exists(os.path.join(d.state, "master.key.new"))
    # Running workers go on; a restart unwraps every key with the new
    # master key.
    assert run_stream(d.channel, d.mint_token("default", "x"), "hi").code \
        == grpc.StatusCode.OK
    restart(d)
    assert check_only(d).returncode == 0
    assert run_stream(d.channel, d.mint_token("other", "y"), "hi").code \
        == grpc.StatusCode.OK


def test_rotation_keeps_tenant_secrets_readable(daemon):
    d = daemon
    tok = d.mint_token("default", "ops", "operator")
    value = b"tenant-secret-" + secrets.token_hex(8).encode()
    put_tenant_secret(d, tok, "db-password", value)
    assert get_tenant_secret(d, tok, "db-password") == value
    before = key_files(d)
    rotate(d)
    assert key_files(d)["default.key"] != before["default.key"]
    # The running worker keeps its data key; a new one gets it re-wrapped.
    assert get_tenant_secret(d, tok, "db-password") == value
    restart(d)
    tok = d.mint_token("default", "ops", "operator")
    assert get_tenant_secret(d, tok, "db-password") == value


# ---------------------------------------------------------- crash recovery

def test_interrupted_rotation_finished_at_start(daemon):
    d = daemon
    start_workers(d)
    vdir = os.path.join(d.state, "vault")
    poll(lambda: {"default.key", "other.key", "@host.key"}
         <= set(key_files(d)), 10, what="the key files")
    old_master = read(os.path.join(d.state, "master.key"))
    old = key_files(d)
    rotate(d)
    new_master = read(os.path.join(d.state, "master.key"))
    new = key_files(d)
    d.assert_clean_stop()

    # The crash: master.key.new and every .key.new written, then only
    # default.key renamed; master.key still the old one.
    write_secret(os.path.join(d.state, "master.key"), old_master)
    write_secret(os.path.join(d.state, "master.key.new"), new_master)
    write_secret(os.path.join(vdir, "default.key"), new["default.key"])
    write_secret(os.path.join(vdir, "other.key"), old["other.key"])
    write_secret(os.path.join(vdir, "other.key.new"), new["other.key"])
    write_secret(os.path.join(vdir, "@host.key"), old["@host.key"])
    write_secret(os.path.join(vdir, "@host.key.new"), new["@host.key"])
    write_secret(os.path.join(vdir, "other.key.new.tmp"), b"half")
    assert check_only(d).returncode == 0
    d.stopped = False
    d._stop_sampling.clear()
    d.start()
    assert read(os.path.join(d.state, "master.key")) == new_master
    assert not os.path.exists(os.path.join(d.state, "master.key.new"))
    assert not glob.glob(os.path.join(vdir, "*.new*"))
    assert key_files(d) == new
    start_workers(d)
    d.assert_clean_stop()

    # A crash right after master.key.new was written: no .key.new yet.
    # The keys are re-wrapped at start under the new master key.
    third = secrets.token_bytes(32)
    write_secret(os.path.join(d.state, "master.key.new"), third)
    d.stopped = False
    d._stop_sampling.clear()
    d.start()
    assert read(os.path.join(d.state, "master.key")) == third
    assert not os.path.exists(os.path.join(d.state, "master.key.new"))
    assert set(key_files(d)) == set(new)
    assert all(key_files(d)[n] != new[n] for n in new)
    restart(d)
    start_workers(d)


def test_interrupted_rotation_keeps_tenant_secrets(daemon):
    d = daemon
    tok = d.mint_token("default", "ops", "operator")
    value = b"kept-" + secrets.token_hex(8).encode()
    put_tenant_secret(d, tok, "api", value)
    vdir = os.path.join(d.state, "vault")
    old_master = read(os.path.join(d.state, "master.key"))
    old = key_files(d)
    rotate(d)
    new_master = read(os.path.join(d.state, "master.key"))
    new = key_files(d)
    d.assert_clean_stop()
    write_secret(os.path.join(d.state, "master.key"), old_master)
    write_secret(os.path.join(d.state, "master.key.new"), new_master)
    write_secret(os.path.join(vdir, "default.key"), old["default.key"])
    write_secret(os.path.join(vdir, "default.key.new"), new["default.key"])
    d.stopped = False
    d._stop_sampling.clear()
    d.start()
    tok = d.mint_token("default", "ops", "operator")
    assert get_tenant_secret(d, tok, "api") == value


# ---------------------------------------------------------- host vault

HOST_CONFIG = """\
state-dir "{{state}}"
listen grpc 127.0.0.1:{{grpc_port}}
listen http 127.0.0.1:{{http_port}}
journal {{{{ durability normal }}}}
provider "shared" {{{{ type openai; base-url "@shared"; api-key vault:host/openai-key; model "m" }}}}
provider "own" {{{{ type openai; base-url "@own"; api-key vault:own-key; model "m" }}}}
tenant "default" {{{{
	agent "a" {{{{ providers "shared" }}}}
	agent "b" {{{{ providers "own" }}}}
}}}}
"""


@pytest.fixture
def fp():
    srv = fakeprov.FakeProvider().start()
    yield srv
    srv.stop()


def test_host_vault_and_provider_credential(tmp_path, fp):
    _require_binaries()
    conf = (HOST_CONFIG.replace('"@shared"', f'"{fp.url("shared")}"')
            .replace('"@own"', f'"{fp.url("own")}"').format())
    d = Daemon(tmp_path / "h", conf, ("default",))
    d.start()
    try:
        key = "sk-host-" + secrets.token_hex(16)
        admin = d.admin_token
        st, body = http_request(d, "GET", "/admin/v1/vault", token=admin)
        assert (st, body) == (200, {"secrets": []})
        st, _ = http_request(d, "GET", "/admin/v1/vault")
        assert st == 401
        st, _ = http_request(d, "PUT", "/admin/v1/vault/openai-key",
                             {"value": key}, token="pa_wrong")
        assert st == 401
        st, body = http_request(d, "PUT", "/admin/v1/vault/.bad",
                                {"value": key}, token=admin)
        assert st == 400
        st, body = http_request(d, "PUT", "/admin/v1/vault/x",
                                {"value": ""}, token=admin)
        assert st == 400
        st, body = http_request(d, "PUT", "/admin/v1/vault/x",
                                {"value": key, "colour": 1}, token=admin)
        assert st == 400

        st, body = http_request(d, "PUT", "/admin/v1/vault/openai-key",
                                {"value": key, "description": "shared"},
                                token=admin)
        assert st == 200, body
        assert body["name"] == "openai-key" and body["version"] == 1
        assert body["size"] == len(key)
        assert body["description"] == "shared"
        st, body = http_request(d, "PUT", "/admin/v1/vault/openai-key",
                                {"value": key}, token=admin)
        assert st == 200 and body["version"] == 2
        assert body["description"] == "shared"
        st, body = http_request(d, "GET", "/admin/v1/vault", token=admin)
        assert st == 200
        assert [s["name"] for s in body["secrets"]] == ["openai-key"]
        assert key not in str(body)
        sec = os.path.join(d.state, "vault", "host", "openai-key.sec")
        assert os.stat(sec).st_mode & 0o777 == 0o600
        assert key.encode() not in read(sec)

        # The provider's credential: the worker started now gets it.
        tok = d.mint_token("default", "alice")
        res = run_stream(d.channel, tok, input="fp:echokey", agent="a",
                         timeout=30)
        assert res.code == grpc.StatusCode.OK, res
        ents = fp.entries("shared")
        assert ents, "palyrad never called the provider"
        assert ents[-1].headers.get("authorization") == f"Bearer {key}"
        # journald knows the value: the echoed key is redacted.
        d.assert_clean_stop()
        with open(d.journal_path("default"), "rb") as f:
            assert key.encode() not in f.read()
        d.stopped = False
        d._stop_sampling.clear()
        d.start()

        # Survives a rotation of master.key.
        rotate(d)
        st, body = http_request(d, "GET", "/admin/v1/vault", token=admin)
        assert [s["name"] for s in body["secrets"]] == ["openai-key"]

        st, body = http_request(d, "DELETE", "/admin/v1/vault/openai-key",
                                token=admin)
        assert (st, body) == (200, {"deleted": True})
        assert not os.path.exists(sec)
        st, body = http_request(d, "DELETE", "/admin/v1/vault/openai-key",
                                token=admin)
        assert st == 404
        st, body = http_request(d, "GET", "/admin/v1/vault", token=admin)
        assert body == {"secrets": []}
        assert key not in d.log_text()
        d.assert_clean_stop()
    finally:
        if not d.stopped:
            d.kill()


def test_vault_methods_and_paths(daemon):
    d = daemon
    admin = d.admin_token
    st, _ = http_request(d, "POST", "/admin/v1/vault", token=admin)
    assert st == 405
    st, _ = http_request(d, "GET", "/admin/v1/vault/x", token=admin)
    assert st == 405
    st, _ = http_request(d, "GET", "/admin/v1/vault/rotate-master",
                         token=admin)
    assert st == 405
    st, _ = http_request(d, "POST", "/admin/v1/vault/rotate-master")
    assert st == 401
    st, _ = http_request(d, "PUT", "/admin/v1/vault/x", raw=b"not json",
                         token=admin)
    assert st == 400


# ---------------------------------------------------------- unsafe modes

def test_unsafe_vault_modes_refused(daemon):
    d = daemon
    start_workers(d, ["default"])
    vdir = os.path.join(d.state, "vault")
    keyfile = os.path.join(vdir, "default.key")
    poll(lambda: os.path.exists(keyfile), 10, what="default.key")
    d.assert_clean_stop()
    os.chmod(vdir, 0o755)
    r = check_only(d)
    assert r.returncode == 1
    assert f'vault directory "{vdir}" is accessible by group or others ' \
        "(mode 0755)" in r.stderr
    p = subprocess.run([PALYRAD, "-d", "-f", d.conf], cwd=d.workdir,
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and "vault directory" in p.stderr
    os.chmod(vdir, 0o700)
    os.chmod(keyfile, 0o644)
    r = check_only(d)
    assert r.returncode == 1
    assert f'vault key file "{keyfile}" is accessible by group or others' \
        in r.stderr
    os.chmod(keyfile, 0o600)
    os.chmod(os.path.join(d.state, "token.key"), 0o640)
    r = check_only(d)
    assert r.returncode == 1 and "token.key" in r.stderr
    os.chmod(os.path.join(d.state, "token.key"), 0o600)
    assert check_only(d).returncode == 0


def test_tenant_vault_provider_credential(tmp_path, fp):
    """api-key vault:NAME: the supervisor names the item, the tenant's
    worker decrypts it with the data key it got at start."""
    _require_binaries()
    conf = (HOST_CONFIG.replace('"@shared"', f'"{fp.url("shared")}"')
            .replace('"@own"', f'"{fp.url("own")}"').format())
    d = Daemon(tmp_path / "t", conf, ("default",))
    d.start()
    try:
        key = "sk-tenant-" + secrets.token_hex(16)
        ops = d.mint_token("default", "ops", "operator")
        put_tenant_secret(d, ops, "own-key", key.encode())
        tok = d.mint_token("default", "alice")
        res = run_stream(d.channel, tok, input="fp:text n=2", agent="b",
                         timeout=30)
        assert res.code == grpc.StatusCode.OK, res
        ents = fp.entries("own")
        assert ents, "palyrad never called the provider"
        assert ents[-1].headers.get("authorization") == f"Bearer {key}"
        assert key not in d.log_text()
        d.assert_clean_stop()
    finally:
        if not d.stopped:
            d.kill()
