"""palyractl memory, vault and cron (issues 8 and 9).

Three groups:
- Usage errors, without a daemon: exit status 2 and a message, and a
  secret value on the command line refused with the reason.
- palyractl against a fake gRPC server and a fake admin API that play the
  server side exactly as gateway.proto and /admin/v1/vault say: what
  palyractl sends (a secret from standard input or a file, byte for byte;
  the fields of a cron job; the filters of a search), what it prints
  (tables, `vault get` byte-exact, --json as one document with enum
  words), and a refusal shown with its gRPC status and message, exit 1.
- palyractl against the real palyrad: each command's happy path, a user
  token refused where an operator token is needed, and an `every 1s` cron
  job whose fires are polled until one is done.
"""
import base64
import json
import os
import subprocess
import threading
import time
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import pytest

from conftest import PALYRACTL, Daemon, _require_binaries, pb, poll

FS = pb.CronFireState


def ctl(*args, timeout=30, env=None, input=None):
    if not os.access(PALYRACTL, os.X_OK):
        pytest.fail(f"{PALYRACTL} not built", pytrace=False)
    e = {k: v for k, v in os.environ.items()
         if "proxy" not in k.lower() and k not in ("PALYRA_TOKEN",
                                                   "PALYRA_ADMIN_TOKEN")}
    e.update(env or {})
    return subprocess.run([PALYRACTL, *args], capture_output=True,
                          timeout=timeout, env=e,
                          input=input if input is not None else b"",
                          stdin=None)


def out(r):
    return r.stdout.decode()


def err(r):
    return r.stderr.decode()


# ------------------------------------------------------------ usage errors

@pytest.mark.parametrize("args,why", [
    (["memory"], "memory needs"),
    (["memory", "frob"], "unknown memory command"),
    (["memory", "add", "--token", "t"], "one of them"),
    (["memory", "add", "--token", "t", "--file", "f", "text"], "one of them"),
    (["memory", "add", "--token", "t", "--tag", "a b", "x"], "tag"),
    (["memory", "add", "--token", "t", "--ttl", "soon", "x"], "--ttl"),
    (["memory", "add", "--token", "t", "--top-k", "3", "x"], "does not go"),
    (["memory", "search", "--token", "t"], "one query"),
    (["memory", "search", "--token", "t", "--top-k", "0", "q"], "--top-k"),
    (["memory", "search", "--token", "t", "--top-k", "101", "q"], "--top-k"),
    (["memory", "search", "--token", "t", "--min-score", "1.5", "q"],
     "--min-score"),
    (["memory", "search", "--token", "t", "--principal", "*", "q"], "'*'"),
    (["memory", "list", "--token", "t", "--page-size", "1001"], "--page-size"),
    (["memory", "list", "--token", "t", "--tag", "a", "--tag", "b"], "one --tag"),
    (["memory", "show", "--token", "t"], "item id"),
    (["memory", "rm", "--token", "t", "a", "b"], "item id"),
    (["memory", "purge", "--token", "t"], "--yes"),
    (["vault"], "vault needs"),
    (["vault", "put", "--token", "t"], "secret name"),
    (["vault", "put", "--token", "t", ".hidden"], "not starting with"),
    (["vault", "put", "--token", "t", "a/b"], "A-Z"),
    (["vault", "put", "--token", "t", "x" * 129], "128"),
    (["vault", "put", "--host", "--token", "t", "n"], "admin token"),
    (["vault", "get", "--token", "t", "--host", "n"], "does not go"),
    (["vault", "rotate-master", "extra"], "too many"),
    (["vault", "list", "--token", "t", "n"], "too many"),
    (["cron"], "cron needs"),
    (["cron", "add", "--token", "t", "j", "in"], "--schedule"),
    (["cron", "add", "--token", "t", "--schedule", "every 1s", "j"], "input"),
    (["cron", "add", "--token", "t", "--schedule", "every 1s", "--misfire",
      "later", "j", "in"], "--misfire"),
    (["cron", "add", "--token", "t", "--schedule", "every 1s",
      "--catch-up-max", "5", "j", "in"], "catch-up"),
    (["cron", "add", "--token", "t", "--schedule", "every 1s", "--misfire",
      "catch-up", "--catch-up-max", "101", "j", "in"], "1 to 100"),
    (["cron", "add", "--token", "t", "--schedule", "every 1s", "--jitter",
      "2h", "j", "in"], "--jitter"),
    (["cron", "add", "--token", "t", "--schedule", "every 1s",
      "--unattended", "ask", "j", "in"], "--unattended"),
    (["cron", "add", "--token", "t", "--schedule", "every 1s", "a b", "in"],
     "without spaces"),
    (["cron", "list", "--token", "t", "x"], "no arguments"),
    (["cron", "runs", "--token", "t", "--limit", "0", "j"], "--limit"),
    (["cron", "run", "--token", "t", "--limit", "3", "j"], "does not go"),
    (["cron", "show", "--token", "t"], "job id or name"),
])
def test_usage_errors(args, why):
    r = ctl("-g", "127.0.0.1:1", *args)
    assert r.returncode == 2, r
    assert err(r).startswith("palyractl: ") and why in err(r), r


def test_vault_put_refuses_a_value_on_the_command_line():
    r = ctl("-g", "127.0.0.1:1", "vault", "put", "--token", "t", "name",
            "hunter2")
    assert r.returncode == 2, r
    assert "never from the command line" in err(r), r
    assert "hunter2" not in err(r) + out(r), r


def test_missing_token_is_a_usage_error():
    r = ctl("-g", "127.0.0.1:1", "cron", "list")
    assert r.returncode == 2 and "needs --token" in err(r), r


def test_unreachable_daemon_exits_3():
    from conftest import free_port
    r = ctl("-g", f"127.0.0.1:{free_port()}", "memory", "list", "--token", "t")
    assert r.returncode == 3, r
    assert "memory list failed: cannot connect" in err(r), r


def test_help_and_completion_name_the_commands():
    r = ctl("help")
    assert r.returncode == 0, r
    for line in ("  memory purge", "  vault rotate-master", "  cron runs"):
        assert line in out(r), r
    r = ctl("completion", "bash")
    assert r.returncode == 0, r
    for word in ("memory", "rotate-master", "--strip-newline", "--catch-up-max",
                 "--min-score", "--follow", "enable disable"):
        assert word in out(r), word


def on_tty(args, answer=None, timeout=20):
    """palyractl with stdin, stdout and stderr on a pseudo-terminal; answer
    is typed once a prompt ("? [y/N] ") shows. Returns (code, output)."""
    import pty
    import select
    master, slave = pty.openpty()
    e = {k: v for k, v in os.environ.items()
         if "proxy" not in k.lower() and k != "PALYRA_TOKEN"}
    p = subprocess.Popen([PALYRACTL, *args], stdin=slave, stdout=slave,
                         stderr=slave, env=e, close_fds=True)
    os.close(slave)
    buf, deadline, typed = b"", time.monotonic() + timeout, False
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
        if answer is not None and not typed and b"[y/N]" in buf:
            os.write(master, answer)
            typed = True
        if p.poll() is not None and not ready:
            break
    os.close(master)
    return p.wait(timeout=5), buf.decode(errors="replace")


def test_vault_get_refuses_a_terminal():
    code, text = on_tty(["-g", "127.0.0.1:1", "vault", "get", "--token", "t",
                         "name"])
    assert code == 2, text
    assert "standard output, which is a terminal" in text and "--force" in text


def test_memory_purge_asks_on_a_terminal():
    code, text = on_tty(["-g", "127.0.0.1:1", "memory", "purge", "--token",
                         "t", "--tag", "old"], answer=b"n\n")
    assert code == 1, text
    assert "delete the memory items of your principal tagged old?" in text
    assert "cancelled" in text, text
    # "y": it goes on to the call (here, to a daemon that is not there).
    code, text = on_tty(["-g", "127.0.0.1:1", "memory", "purge", "--token",
                         "t"], answer=b"y\n")
    assert code == 3 and "memory purge failed: cannot connect" in text, text


# ------------------------------------------------------------ fake server

class FakeServer:
    """A gRPC server with the unary handlers given:
    {(service, method): (fn, request class, response class)}."""

    def __init__(self, handlers):
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        by_service = {}
        for (service, method), (fn, req, resp) in handlers.items():
            by_service.setdefault(service, {})[method] = \
                grpc.unary_unary_rpc_method_handler(
                    fn, request_deserializer=req.FromString,
                    response_serializer=resp.SerializeToString)
        for service, methods in by_service.items():
            self.server.add_generic_rpc_handlers(
                (grpc.method_handlers_generic_handler(
                    "palyra.v1." + service, methods),))
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()
        self.addr = f"127.0.0.1:{self.port}"

    def stop(self):
        self.server.stop(0)


@pytest.fixture
def fake():
    servers = []

    def make(handlers):
        s = FakeServer(handlers)
        servers.append(s)
        return s
    yield make
    for s in servers:
        s.stop()


META = dict(name="db-password", version=3, size=9, description="the db",
            created_unix_ms=1764662400000, updated_unix_ms=1764666000000,
            updated_by="ops")


def vault_handlers(seen, value=b"s3cr\x00t\n\xff"):
    def put(req, context):
        seen.append(req)
        return pb.SecretMeta(**{**META, "name": req.name, "size": len(req.value)})

    def get(req, context):
        seen.append(req)
        return pb.GetSecretResponse(meta=pb.SecretMeta(**META), value=value)

    def refuse(req, context):
        context.abort(grpc.StatusCode.PERMISSION_DENIED,
                      "deleting a secret needs an operator or admin token")
    return {
        ("VaultService", "PutSecret"): (put, pb.PutSecretRequest, pb.SecretMeta),
        ("VaultService", "GetSecret"): (get, pb.GetSecretRequest,
                                        pb.GetSecretResponse),
        ("VaultService", "DeleteSecret"): (refuse, pb.DeleteSecretRequest,
                                           pb.DeleteSecretResponse),
    }


def test_vault_put_value_from_stdin_kept_byte_exact(fake):
    seen = []
    srv = fake(vault_handlers(seen))
    r = ctl("-g", srv.addr, "vault", "put", "--token", "t", "--description",
            "the db", "db-password", input=b"pa\x00ss\n")
    assert r.returncode == 0, r
    assert seen[0].name == "db-password" and seen[0].description == "the db"
    assert seen[0].value == b"pa\x00ss\n", seen[0]     # trailing newline kept
    assert out(r) == "db-password version 3 size 6\n", r

    r = ctl("-g", srv.addr, "vault", "put", "--token", "t", "--strip-newline",
            "db-password", input=b"hunter2\n")
    assert r.returncode == 0 and seen[1].value == b"hunter2", (r, seen[1])


def test_vault_put_value_from_file_and_limits(fake, tmp_path):
    seen = []
    srv = fake(vault_handlers(seen))
    f = tmp_path / "value"
    f.write_bytes(b"\x01\x02from a file")
    r = ctl("-g", srv.addr, "--json", "vault", "put", "--token", "t",
            "--file", str(f), "k1")
    assert r.returncode == 0, r
    assert seen[0].value == b"\x01\x02from a file", seen
    j = json.loads(out(r))
    assert j["name"] == "k1" and j["version"] == 3 and j["size"] == 13, j
    assert j["updated_by"] == "ops", j
    # Empty and oversized values never reach the server.
    r = ctl("-g", srv.addr, "vault", "put", "--token", "t", "k2", input=b"")
    assert r.returncode == 1 and "1 byte to 64 KiB" in err(r), r
    f.write_bytes(b"x" * (64 * 1024 + 1))
    r = ctl("-g", srv.addr, "vault", "put", "--token", "t", "--file", str(f),
            "k3")
    assert r.returncode == 1 and "larger than" in err(r), r
    r = ctl("-g", srv.addr, "vault", "put", "--token", "t", "--file",
            str(tmp_path / "missing"), "k4")
    assert r.returncode == 1 and "missing" in err(r), r
    assert len(seen) == 1, seen


def test_vault_get_writes_the_value_raw(fake):
    seen = []
    value = b"s3cr\x00t\n\xff"
    srv = fake(vault_handlers(seen, value))
    r = ctl("-g", srv.addr, "vault", "get", "--token", "t", "db-password")
    assert r.returncode == 0, r
    assert r.stdout == value, r          # byte-exact, no newline added
    assert seen[0].name == "db-password"
    r = ctl("-g", srv.addr, "vault", "get", "--token", "t", "--json",
            "db-password")
    assert r.returncode == 0, r
    j = json.loads(out(r))
    assert base64.b64decode(j["value"]) == value, j
    assert j["meta"]["version"] == 3 and j["meta"]["description"] == "the db"


def test_refused_call_exits_1_with_the_grpc_message(fake):
    srv = fake(vault_handlers([]))
    r = ctl("-g", srv.addr, "vault", "rm", "--token", "t", "db-password")
    assert r.returncode == 1, r
    assert err(r) == ("palyractl: vault rm failed: PERMISSION_DENIED: deleting "
                      "a secret needs an operator or admin token\n"), r


def item(i, **kw):
    d = dict(item_id="%032x" % i, principal="alice", text=f"item {i}",
             tags=["a", "b"], source="api", created_unix_ms=1764662400000)
    d.update(kw)
    return pb.MemoryItem(**d)


def test_memory_on_the_wire(fake, tmp_path):
    seen = {}

    def ingest(req, context):
        seen["ingest"] = req
        return item(1, text=req.text, expires_unix_ms=1764666000000)

    def search(req, context):
        seen["search"] = req
        return pb.SearchMemoryResponse(hits=[
            pb.MemoryHit(item=item(1, text="the cat sat on the mat\n" * 10),
                         score=0.875, text_score=1.0, vector_score=0.5),
            pb.MemoryHit(item=item(2, tags=[]), score=0.25, text_score=0,
                         vector_score=0.5)])

    def list_items(req, context):
        seen.setdefault("list", []).append(req)
        if req.page_token == "":
            return pb.ListMemoryItemsResponse(items=[item(3), item(4)],
                                              next_page_token="p2")
        return pb.ListMemoryItemsResponse(items=[item(5)])

    def purge(req, context):
        seen["purge"] = req
        return pb.PurgeMemoryResponse(deleted=7)
    srv = fake({
        ("MemoryService", "IngestMemory"): (ingest, pb.IngestMemoryRequest,
                                            pb.MemoryItem),
        ("MemoryService", "SearchMemory"): (search, pb.SearchMemoryRequest,
                                            pb.SearchMemoryResponse),
        ("MemoryService", "ListMemoryItems"): (
            list_items, pb.ListMemoryItemsRequest, pb.ListMemoryItemsResponse),
        ("MemoryService", "PurgeMemory"): (purge, pb.PurgeMemoryRequest,
                                           pb.PurgeMemoryResponse),
    })
    r = ctl("-g", srv.addr, "memory", "add", "--token", "t", "--session",
            "s1", "--tag", "x", "--tag", "y:z", "--source", "notes",
            "--ttl", "1h", "--principal", "bob", "remember this")
    assert r.returncode == 0, r
    assert out(r) == "%032x\n" % 1, r
    q = seen["ingest"]
    assert (q.text, q.session_id, list(q.tags), q.source, q.ttl_ms,
            q.principal) == ("remember this", "s1", ["x", "y:z"], "notes",
                             3600000, "bob"), q
    r = ctl("-g", srv.addr, "memory", "add", "--token", "t", "-",
            input=b"from stdin\n")
    assert r.returncode == 0 and seen["ingest"].text == "from stdin\n", r
    f = tmp_path / "note"
    f.write_text("from a file")
    r = ctl("-g", srv.addr, "--json", "memory", "add", "--token", "t",
            "--file", str(f))
    assert r.returncode == 0 and seen["ingest"].text == "from a file", r
    j = json.loads(out(r))
    assert j["item_id"] == "%032x" % 1 and j["expires_unix_ms"] == 1764666000000

    r = ctl("-g", srv.addr, "memory", "search", "--token", "t", "--top-k",
            "3", "--min-score", "0.2", "--tag", "a", "cat")
    assert r.returncode == 0, r
    q = seen["search"]
    assert (q.query, q.top_k, q.min_score, list(q.tags)) == (
        "cat", 3, 0.2, ["a"]), q
    lines = out(r).splitlines()
    assert lines[0].split() == ["SCORE", "TEXT_SCORE", "VECTOR_SCORE", "ID",
                                "TAGS", "TEXT"], r
    assert lines[1].split()[:5] == ["0.875", "1.000", "0.500", "%032x" % 1,
                                    "a,b"], r
    assert lines[1].endswith("...") and len(lines[1]) < 160, r  # shortened
    assert lines[2].split()[:5] == ["0.250", "0.000", "0.500", "%032x" % 2,
                                    "-"], r
    assert lines[-1] == "2 hits", r
    r = ctl("-g", srv.addr, "memory", "search", "--token", "t", "--json", "cat")
    j = json.loads(out(r))
    assert [h["score"] for h in j["hits"]] == [0.875, 0.25], j
    assert j["hits"][0]["item"]["tags"] == ["a", "b"], j

    # One page without --all; every page with it.
    r = ctl("-g", srv.addr, "memory", "list", "--token", "t", "--principal",
            "*", "--tag", "a", "--page-size", "2")
    assert r.returncode == 0, r
    assert out(r).splitlines()[-1] == "2 items (more with --all)", r
    q = seen["list"][0]
    assert (q.principal, q.tag, q.page_size) == ("*", "a", 2), q
    r = ctl("-g", srv.addr, "--json", "memory", "list", "--token", "t", "--all")
    j = json.loads(out(r))
    assert [i["item_id"] for i in j["items"]] == ["%032x" % i
                                                  for i in (3, 4, 5)], j
    assert j["next_page_token"] == "", j

    r = ctl("-g", srv.addr, "memory", "purge", "--token", "t", "--expired",
            "--session", "s1", "--yes")
    assert r.returncode == 0 and out(r) == "7 items deleted\n", r
    assert seen["purge"].expired_only and seen["purge"].session_id == "s1"
    r = ctl("-g", srv.addr, "--json", "memory", "purge", "--token", "t",
            "--yes")
    assert json.loads(out(r)) == {"deleted": 7}, r


def job(**kw):
    d = dict(job_id="c" * 32, name="nightly", schedule="0 3 * * *",
             timezone="Europe/Prague", input="summarise", principal="alice",
             misfire=pb.MISFIRE_POLICY_CATCH_UP, catch_up_max=5, enabled=True,
             unattended=pb.UNATTENDED_POLICY_WAIT,
             next_fire_unix_ms=1764730800000)
    d.update(kw)
    return pb.CronJob(**d)


def test_cron_on_the_wire(fake, tmp_path):
    seen = {}

    def create(req, context):
        seen["create"] = req
        return job(name=req.job.name)

    def update(req, context):
        seen["update"] = req
        return job(enabled=req.job.enabled)

    def runs(req, context):
        seen["runs"] = req
        return pb.ListJobRunsResponse(fires=[
            pb.CronFire(job_id="c" * 32, scheduled_unix_ms=1764730800000,
                        state=FS.CRON_FIRE_STATE_DONE, run_id="r" * 32,
                        run_status=pb.RUN_STATUS_COMPLETED),
            pb.CronFire(job_id="c" * 32, scheduled_unix_ms=1764727200000,
                        state=FS.CRON_FIRE_STATE_SKIPPED,
                        reason="overlap: the last run is live")])

    def get(req, context):
        if req.job_id not in ("nightly", "c" * 32):
            context.abort(grpc.StatusCode.NOT_FOUND, "no such job")
        return job()
    srv = fake({
        ("CronService", "CreateJob"): (create, pb.CreateJobRequest, pb.CronJob),
        ("CronService", "UpdateJob"): (update, pb.UpdateJobRequest, pb.CronJob),
        ("CronService", "ListJobRuns"): (runs, pb.ListJobRunsRequest,
                                         pb.ListJobRunsResponse),
        ("CronService", "GetJob"): (get, pb.GetJobRequest, pb.CronJob),
    })
    r = ctl("-g", srv.addr, "cron", "add", "--token", "t", "nightly",
            "--schedule", "0 3 * * *", "--tz", "Europe/Prague", "--agent",
            "assistant", "--misfire", "catch-up", "--catch-up-max", "5",
            "--overlap", "--jitter", "30s", "--unattended", "wait",
            "--session-key", "k", "--disabled", "summarise")
    assert r.returncode == 0, r
    j = seen["create"].job
    assert (j.name, j.schedule, j.timezone, j.agent, j.misfire, j.catch_up_max,
            j.allow_overlap, j.jitter_ms, j.unattended, j.session_key,
            seen["create"].disabled, j.input) == (
        "nightly", "0 3 * * *", "Europe/Prague", "assistant",
        pb.MISFIRE_POLICY_CATCH_UP, 5, True, 30000, pb.UNATTENDED_POLICY_WAIT,
        "k", True, "summarise"), j
    assert out(r) == ("nightly " + "c" * 32 +
                      " enabled next 2025-12-03T03:00:00Z\n"), r
    f = tmp_path / "input"
    f.write_text("from a file")
    r = ctl("-g", srv.addr, "cron", "add", "--token", "t", "j2", "--schedule",
            "every 1s", "--file", str(f))
    assert r.returncode == 0 and seen["create"].job.input == "from a file", r
    assert not seen["create"].disabled, seen["create"]

    r = ctl("-g", srv.addr, "--json", "cron", "show", "--token", "t", "nightly")
    assert r.returncode == 0, r
    j = json.loads(out(r))
    assert (j["misfire"], j["unattended"], j["next_fire_unix_ms"]) == (
        "catch_up", "wait", 1764730800000), j
    r = ctl("-g", srv.addr, "cron", "show", "--token", "t", "nightly")
    assert "next_fire      2025-12-03T03:00:00Z\n" in out(r), r
    assert "misfire        catch-up\n" in out(r), r
    r = ctl("-g", srv.addr, "cron", "show", "--token", "t", "other")
    assert r.returncode == 1 and "NOT_FOUND: no such job" in err(r), r

    r = ctl("-g", srv.addr, "cron", "disable", "--token", "t", "nightly")
    assert r.returncode == 0, r
    u = seen["update"]
    assert (u.job_id, list(u.fields), u.job.enabled) == (
        "nightly", ["enabled"], False), u
    r = ctl("-g", srv.addr, "cron", "enable", "--token", "t", "nightly")
    assert seen["update"].job.enabled and " enabled " in out(r), r

    r = ctl("-g", srv.addr, "cron", "runs", "--token", "t", "--limit", "5",
            "nightly")
    assert r.returncode == 0, r
    assert seen["runs"].page_size == 5 and seen["runs"].job_id == "nightly"
    lines = out(r).splitlines()
    assert lines[0].split() == ["SCHEDULED", "STATE", "RUN", "STATUS",
                                "REASON"], r
    assert lines[1].split() == ["2025-12-03T03:00:00Z", "done", "r" * 32,
                                "completed", "-"], r
    assert lines[2].split()[:4] == ["2025-12-03T02:00:00Z", "skipped", "-",
                                    "-"], r
    assert "overlap: the last run is live" in lines[2], r
    r = ctl("-g", srv.addr, "--json", "cron", "runs", "--token", "t", "nightly")
    j = json.loads(out(r))
    assert [f["state"] for f in j["fires"]] == ["done", "skipped"], j
    assert j["fires"][0]["run_status"] == "completed", j


class FakeAdmin:
    """The admin API's /admin/v1/vault routes as front/vault_admin.c
    answers them, recording each request."""

    def __init__(self, token="admintoken"):
        self.requests = []
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _reply(self, code, obj):
                body = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _handle(self):
                n = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(n) if n else b""
                outer.requests.append((self.command, self.path, body,
                                       self.headers.get("authorization")))
                if self.headers.get("authorization") != f"Bearer {token}":
                    return self._reply(401, {"error": {"message": "bad token"}})
                if self.path == "/admin/v1/vault/rotate-master":
                    return self._reply(200, {"rotated": True, "rewrapped": 2})
                if self.command == "GET" and self.path == "/admin/v1/vault":
                    return self._reply(200, {"secrets": [
                        {"name": "openai", "version": 2, "size": 51,
                         "description": "provider key",
                         "updated_unix_ms": 1764662400000}]})
                if self.command == "PUT":
                    v = json.loads(body)["value"]
                    return self._reply(200, {"name": self.path.rsplit("/", 1)[1],
                                             "version": 1, "size": len(v)})
                if self.command == "DELETE":
                    return self._reply(404, {"error": {
                        "message": "no such host secret"}})
                return self._reply(404, {"error": {"message": "?"}})
            do_GET = do_PUT = do_POST = do_DELETE = _handle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()


def test_host_vault_and_rotate_master_over_the_admin_api():
    a = FakeAdmin()
    env = {"PALYRA_ADMIN_TOKEN": "admintoken"}
    try:
        r = ctl("-u", a.url, "vault", "put", "--host", "--description",
                "provider key", "openai", input=b"sk-abc\n", env=env)
        assert r.returncode == 0, r
        method, path, body, auth = a.requests[-1]
        assert (method, path) == ("PUT", "/admin/v1/vault/openai"), a.requests
        assert json.loads(body) == {"value": "sk-abc\n",
                                    "description": "provider key"}, body
        assert out(r) == "host:openai version 1 size 7\n", r

        r = ctl("-u", a.url, "vault", "list", "--host", env=env)
        assert r.returncode == 0, r
        lines = out(r).splitlines()
        assert lines[1].split()[:4] == ["openai", "2", "51",
                                        "2025-12-02T08:00:00Z"], r
        assert lines[-1] == "1 host secret", r

        r = ctl("-u", a.url, "vault", "rm", "--host", "gone", env=env)
        assert r.returncode == 1, r
        assert err(r) == "palyractl: vault rm --host failed: no such host secret\n"

        r = ctl("-u", a.url, "vault", "rotate-master", env=env)
        assert r.returncode == 0, r
        assert a.requests[-1][:2] == ("POST", "/admin/v1/vault/rotate-master")
        assert out(r) == "master key rotated: 2 tenant keys re-wrapped\n", r
        r = ctl("-u", a.url, "--json", "vault", "rotate-master", env=env)
        assert json.loads(out(r)) == {"rotated": True, "rewrapped": 2}, r

        r = ctl("-u", a.url, "vault", "rotate-master",
                env={"PALYRA_ADMIN_TOKEN": "wrong"})
        assert r.returncode == 1 and "bad token" in err(r), r
    finally:
        a.stop()


# ------------------------------------------------------------ real daemon

CONFIG = """\
state-dir "{state}"
listen grpc 127.0.0.1:{grpc_port}
listen http 127.0.0.1:{http_port}
journal {{ durability normal }}
provider "offline" {{ type offline }}
tenant "default" {{
	agent "assistant" {{
		providers "offline"
	}}
}}
"""
DEADLINE = 30.0


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    _require_binaries()
    d = Daemon(tmp_path_factory.mktemp("ctl_mvc"), CONFIG, ("default",))
    d.start()
    yield d
    if not d.stopped:
        d.kill()


def dctl(d, *args, token=None, **kw):
    env = {"PALYRA_TOKEN": token} if token is not None else None
    return ctl("-g", d.grpc_addr, "-u", d.http_url, "-s", d.state, *args,
               env=env, **kw)


def test_daemon_memory(daemon):
    user = daemon.mint_token("default", "mem-alice", "user")
    r = dctl(daemon, "memory", "add", "--tag", "pets", "--source", "notes",
             "the cat is called Tiberius", token=user)
    assert r.returncode == 0, r
    iid = out(r).strip()
    assert len(iid) == 32, r
    r = dctl(daemon, "--json", "memory", "add", "--ttl", "1h", "-",
             input=b"the dog is called Rex", token=user)
    assert r.returncode == 0, r
    dog = json.loads(out(r))
    assert dog["principal"] == "mem-alice" and dog["expires_unix_ms"] > 0, dog

    r = dctl(daemon, "memory", "search", "Tiberius", token=user)
    assert r.returncode == 0, r
    lines = out(r).splitlines()
    assert lines[1].split()[3] == iid and "Tiberius" in lines[1], r
    r = dctl(daemon, "--json", "memory", "search", "--tag", "pets", "cat",
             token=user)
    j = json.loads(out(r))
    assert [h["item"]["item_id"] for h in j["hits"]] == [iid], j
    assert 0 < j["hits"][0]["score"] <= 1, j

    r = dctl(daemon, "memory", "list", token=user)
    assert r.returncode == 0 and out(r).splitlines()[-1] == "2 items", r
    r = dctl(daemon, "memory", "show", iid, token=user)
    assert r.returncode == 0 and "Tiberius" in out(r), r
    assert "source           notes" in out(r), r
    # Another principal's user token does not see alice's items.
    bob = daemon.mint_token("default", "mem-bob", "user")
    r = dctl(daemon, "memory", "show", iid, token=bob)
    assert r.returncode == 1 and "NOT_FOUND" in err(r), r
    # An operator (--tenant) lists every principal's.
    r = dctl(daemon, "--json", "memory", "list", "--tenant", "default",
             "--principal", "*")
    assert r.returncode == 0, r
    assert {i["item_id"] for i in json.loads(out(r))["items"]} >= {
        iid, dog["item_id"]}, r
    # A user token may not act on behalf of another principal.
    r = dctl(daemon, "memory", "add", "--principal", "mem-alice", "x",
             token=bob)
    assert r.returncode == 1 and "PERMISSION_DENIED" in err(r), r

    r = dctl(daemon, "memory", "rm", iid, token=user)
    assert r.returncode == 0 and out(r) == f"{iid} deleted\n", r
    r = dctl(daemon, "--json", "memory", "purge", "--yes", token=user)
    assert r.returncode == 0 and json.loads(out(r)) == {"deleted": 1}, r


def test_daemon_vault(daemon, tmp_path):
    op = daemon.mint_token("default", "vault-op", "operator")
    user = daemon.mint_token("default", "vault-user", "user")
    secret = b"pa$$\x00word\n"
    r = dctl(daemon, "vault", "put", "--description", "db", "db-pass",
             input=secret, token=op)
    assert r.returncode == 0, r
    assert out(r) == "db-pass version 1 size 10\n", r
    r = dctl(daemon, "vault", "get", "db-pass", token=op)
    assert r.returncode == 0 and r.stdout == secret, r
    f = tmp_path / "v"
    f.write_bytes(b"second")
    r = dctl(daemon, "--json", "vault", "put", "--file", str(f), "db-pass",
             token=op)
    assert r.returncode == 0, r
    m = json.loads(out(r))
    assert (m["name"], m["version"], m["size"], m["updated_by"]) == (
        "db-pass", 2, 6, "vault-op"), m
    r = dctl(daemon, "vault", "get", "db-pass", token=op)
    assert r.stdout == b"second", r

    # Metadata for any token, values only for operators and admins.
    r = dctl(daemon, "vault", "list", token=user)
    assert r.returncode == 0, r
    assert any(line.split()[:3] == ["db-pass", "2", "6"]
               for line in out(r).splitlines()), r
    assert b"second" not in r.stdout, r
    r = dctl(daemon, "vault", "get", "db-pass", token=user)
    assert r.returncode == 1 and "PERMISSION_DENIED" in err(r), r
    assert r.stdout == b"", r

    r = dctl(daemon, "vault", "rotate-master")
    assert r.returncode == 0, r
    assert out(r).startswith("master key rotated: ") and \
        "re-wrapped" in out(r), r
    r = dctl(daemon, "vault", "get", "db-pass", token=op)
    assert r.returncode == 0 and r.stdout == b"second", r

    r = dctl(daemon, "vault", "put", "--host", "host-key", input=b"sk-host")
    assert r.returncode == 0, r
    r = dctl(daemon, "vault", "list", "--host")
    assert r.returncode == 0 and "host-key" in out(r), r
    r = dctl(daemon, "vault", "rm", "--host", "host-key")
    assert r.returncode == 0, r

    r = dctl(daemon, "vault", "rm", "db-pass", token=op)
    assert r.returncode == 0 and out(r) == "db-pass deleted\n", r
    r = dctl(daemon, "vault", "get", "db-pass", token=op)
    assert r.returncode == 1 and "NOT_FOUND" in err(r), r


def test_daemon_cron_every_second(daemon):
    user = daemon.mint_token("default", "cron-alice", "user")
    r = dctl(daemon, "cron", "add", "tick", "--schedule", "every 1s",
             "--agent", "assistant", "hello from cron", token=user)
    assert r.returncode == 0, r
    name, job_id, state = out(r).split()[:3]
    assert name == "tick" and len(job_id) == 32 and state == "enabled", r

    r = dctl(daemon, "--json", "cron", "list", token=user)
    assert r.returncode == 0, r
    jobs = json.loads(out(r))["jobs"]
    assert [j["name"] for j in jobs] == ["tick"], jobs
    assert jobs[0]["misfire"] in ("skip", "unspecified"), jobs

    def done_fires():
        r = dctl(daemon, "--json", "cron", "runs", "tick", token=user)
        assert r.returncode == 0, r
        return [f for f in json.loads(out(r))["fires"] if f["state"] == "done"]
    fires = poll(done_fires, DEADLINE, interval=0.2, what="a done fire")
    assert fires[0]["run_id"] and fires[0]["run_status"] == "completed", fires

    r = dctl(daemon, "cron", "show", "tick", token=user)
    assert r.returncode == 0, r
    last = [line for line in out(r).splitlines()
            if line.startswith("last_fire")]
    assert last and last[0].split()[1].endswith("Z"), r

    r = dctl(daemon, "cron", "disable", "tick", token=user)
    assert r.returncode == 0 and " disabled " in out(r), r
    r = dctl(daemon, "cron", "run", "--follow", "tick", token=user,
             timeout=DEADLINE + 30)
    assert r.returncode == 0, r
    assert out(r).startswith(f"fired {job_id} at "), r
    assert "hello from cron" in out(r), r

    r = dctl(daemon, "cron", "runs", "--limit", "100", "tick", token=user)
    assert r.returncode == 0, r
    rows = [line.split() for line in out(r).splitlines()[1:-1]]
    assert rows and all(row[0].endswith("Z") for row in rows), r
    assert any(row[1] == "done" and row[3] == "completed" and
               row[-1] == "manual" for row in rows), r

    # Another user does not see alice's job.
    bob = daemon.mint_token("default", "cron-bob", "user")
    r = dctl(daemon, "cron", "show", "tick", token=bob)
    assert r.returncode == 1 and "NOT_FOUND" in err(r), r

    r = dctl(daemon, "cron", "rm", "tick", token=user)
    assert r.returncode == 0 and out(r) == "tick deleted\n", r
    r = dctl(daemon, "cron", "show", job_id, token=user)
    assert r.returncode == 1 and "NOT_FOUND" in err(r), r
