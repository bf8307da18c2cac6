"""VaultService, CronService and MemoryService through palyra-front (DESIGN
sections 6, 7 and 9; issue 8): the gRPC routing of every method to its
owner (journald, or a worker of the token's tenant), the checks the front
makes before any lookup (token, role, request size), the worker route's
failure modes, and the /console/v1 routes of memory, vault metadata and
cron.

What is asserted is what a client sees: gRPC statuses and messages, HTTP
statuses and JSON bodies, and processes in /proc.
"""
import http.client
import json
import os
import re
import signal
import subprocess
import time

import grpc
import pytest

from conftest import (_require_binaries, auth_md, http_request, pb, poll,
                      Daemon)

TIMEOUT = 10.0

CONFIG = """\
state-dir "{state}"
listen grpc 127.0.0.1:{grpc_port}
listen http 127.0.0.1:{http_port}
journal {{ durability normal }}
provider "offline" {{ type offline }}
tenant "alpha" {{ agent "assistant" {{ providers "offline" }} }}
tenant "beta" {{ agent "assistant" {{ providers "offline" }} }}
tenant "lazy" {{ agent "assistant" {{ providers "offline" }} }}
tenant "doomed" {{ agent "assistant" {{ providers "offline" }} }}
"""
TENANTS = ("alpha", "beta", "lazy", "doomed")

VAULT = "/palyra.v1.VaultService/"
CRON = "/palyra.v1.CronService/"
MEMORY = "/palyra.v1.MemoryService/"

# (path, request, response type, owner): every method of the three
# services, with a request its owner can take.
METHODS = [
    (VAULT + "PutSecret", pb.PutSecretRequest(name="k1", value=b"v1"),
     pb.SecretMeta, "worker"),
    (VAULT + "GetSecret", pb.GetSecretRequest(name="k1"),
     pb.GetSecretResponse, "worker"),
    (VAULT + "DeleteSecret", pb.DeleteSecretRequest(name="k1"),
     pb.DeleteSecretResponse, "journald"),
    (VAULT + "ListSecrets", pb.ListSecretsRequest(),
     pb.ListSecretsResponse, "journald"),
    (CRON + "CreateJob", pb.CreateJobRequest(job=pb.CronJob(
        name="j1", schedule="@daily", input="hello")), pb.CronJob,
     "journald"),
    (CRON + "UpdateJob", pb.UpdateJobRequest(
        job_id="j1", job=pb.CronJob(enabled=False), fields=["enabled"]),
     pb.CronJob, "journald"),
    (CRON + "GetJob", pb.GetJobRequest(job_id="j1"), pb.CronJob,
     "journald"),
    (CRON + "ListJobs", pb.ListJobsRequest(), pb.ListJobsResponse,
     "journald"),
    (CRON + "RunJobNow", pb.RunJobNowRequest(job_id="j1"), pb.CronFire,
     "journald"),
    (CRON + "ListJobRuns", pb.ListJobRunsRequest(job_id="j1"),
     pb.ListJobRunsResponse, "journald"),
    (CRON + "DeleteJob", pb.DeleteJobRequest(job_id="j1"),
     pb.DeleteJobResponse, "journald"),
    (MEMORY + "IngestMemory", pb.IngestMemoryRequest(text="the sky is blue"),
     pb.MemoryItem, "worker"),
    (MEMORY + "SearchMemory", pb.SearchMemoryRequest(query="sky"),
     pb.SearchMemoryResponse, "worker"),
    (MEMORY + "GetMemoryItem", pb.GetMemoryItemRequest(item_id="0" * 32),
     pb.MemoryItem, "journald"),
    (MEMORY + "ListMemoryItems", pb.ListMemoryItemsRequest(),
     pb.ListMemoryItemsResponse, "journald"),
    (MEMORY + "DeleteMemoryItem", pb.DeleteMemoryItemRequest(item_id="0" * 32),
     pb.DeleteMemoryItemResponse, "journald"),
    (MEMORY + "PurgeMemory", pb.PurgeMemoryRequest(expired_only=True),
     pb.PurgeMemoryResponse, "journald"),
]
OPERATOR_ONLY = {VAULT + "PutSecret", VAULT + "GetSecret",
                 VAULT + "DeleteSecret"}


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    _require_binaries()
    d = Daemon(tmp_path_factory.mktemp("services") / "d", CONFIG, TENANTS)
    yield d.start()
    if not d.stopped:
        d.kill()


@pytest.fixture(scope="module")
def tokens(daemon):
    return {
        "alice": daemon.mint_token("alpha", "alice", "user"),
        "ops": daemon.mint_token("alpha", "ops", "operator"),
        "beta": daemon.mint_token("beta", "carol", "admin"),
        "lazy": daemon.mint_token("lazy", "dan", "operator"),
        "doomed": daemon.mint_token("doomed", "eve", "operator"),
    }


def unary(ch, path, req, resp_cls, token, timeout=TIMEOUT):
    call = ch.unary_unary(path, request_serializer=type(req).SerializeToString,
                          response_deserializer=resp_cls.FromString)
    return call(req, metadata=auth_md(token), timeout=timeout)


def code_of(fn):
    with pytest.raises(grpc.RpcError) as e:
        fn()
    return e.value.code(), e.value.details()


def outcome(ch, path, req, resp_cls, token, timeout=TIMEOUT):
    """(status code, details or the response)."""
    try:
        return grpc.StatusCode.OK, unary(ch, path, req, resp_cls, token,
                                         timeout)
    except grpc.RpcError as e:
        return e.code(), e.details()


def workers(d, tenant):
    return d.pids_of("palyra-worker", tenant)


def test_no_token_is_unauthenticated(daemon):
    for path, req, resp, _ in METHODS:
        code, _ = code_of(lambda: unary(daemon.channel, path, req, resp, None))
        assert code == grpc.StatusCode.UNAUTHENTICATED, path
    # A wrong token too (a few: failures are rate-limited per address).
    for path, req, resp, _ in METHODS[:2]:
        code, _ = code_of(lambda: unary(daemon.channel, path, req, resp,
                                        "pt_not-a-token"))
        assert code == grpc.StatusCode.UNAUTHENTICATED, path


def test_user_role_cannot_touch_secret_values(daemon, tokens):
    for path in sorted(OPERATOR_ONLY):
        req, resp = next((r, c) for p, r, c, _ in METHODS if p == path)
        code, details = code_of(lambda: unary(daemon.channel, path, req,
                                              resp, tokens["alice"]))
        assert code == grpc.StatusCode.PERMISSION_DENIED, path
        assert "operator or admin" in details, details


def test_every_method_reaches_its_owner(daemon, tokens):
    """Each method is answered by its owner, journald or the tenant's
    worker, and its answer decoded as its response type: in order, a
    secret put, read and deleted, a job made, changed, fired and deleted,
    an item stored and found; an item id that does not exist is
    NOT_FOUND."""
    assert workers(daemon, "alpha") == []
    got = {}
    for path, req, resp, _ in METHODS:
        code, answer = outcome(daemon.channel, path, req, resp, tokens["ops"])
        if path.endswith("MemoryItem"):
            assert code == grpc.StatusCode.NOT_FOUND, (path, code, answer)
            continue
        assert code == grpc.StatusCode.OK, (path, code, answer)
        got[path.rsplit("/", 1)[1]] = answer
    assert got["GetSecret"].value == b"v1"
    assert got["GetSecret"].meta.name == "k1"
    assert got["UpdateJob"].enabled is False
    assert got["GetJob"].name == "j1"
    assert got["RunJobNow"].manual
    assert got["IngestMemory"].text == "the sky is blue"
    assert [h.item.item_id for h in got["SearchMemory"].hits] == [
        got["IngestMemory"].item_id]
    # The worker-routed ones started a worker of the tenant.
    assert len(workers(daemon, "alpha")) == 1
    # Each call is counted by method, as the other services' are.
    st, text = http_request(daemon, "GET", "/metrics")
    assert st == 200
    for path, _, _, _ in METHODS:
        code = "NOT_FOUND" if path.endswith("MemoryItem") else "OK"
        assert (f'palyra_grpc_requests_total{{method="{path}",'
                f'code="{code}"}} 1') in text, path


def test_oversized_requests_are_refused(daemon, tokens):
    ops = tokens["ops"]
    big = [
        (VAULT + "PutSecret", pb.PutSecretRequest(
            name="k", value=b"x" * (69 * 1024)), pb.SecretMeta),
        (MEMORY + "IngestMemory", pb.IngestMemoryRequest(
            text="x" * (25 * 1024)), pb.MemoryItem),
        (MEMORY + "SearchMemory", pb.SearchMemoryRequest(
            query="x" * (9 * 1024)), pb.SearchMemoryResponse),
        (CRON + "GetJob", pb.GetJobRequest(job_id="x" * (9 * 1024)),
         pb.CronJob),
        (CRON + "CreateJob", pb.CreateJobRequest(job=pb.CronJob(
            name="big", schedule="@daily", input="x" * (73 * 1024))),
         pb.CronJob),
    ]
    for path, req, resp in big:
        code, details = code_of(lambda: unary(daemon.channel, path, req,
                                              resp, ops))
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED, (path, details)
        assert details == "request too large"


def test_health_knows_the_new_services(daemon):
    from conftest import health_check
    for name in ("palyra.v1.VaultService", "palyra.v1.CronService",
                 "palyra.v1.MemoryService"):
        assert health_check(daemon.channel, name).status == 1  # SERVING


def test_parked_call_gets_a_worker(daemon, tokens):
    """A worker-routed call of a tenant with no worker waits while the
    supervisor starts one, then has its answer from it."""
    assert workers(daemon, "lazy") == []
    code, got = outcome(daemon.channel, MEMORY + "SearchMemory",
                        pb.SearchMemoryRequest(query="anything"),
                        pb.SearchMemoryResponse, tokens["lazy"])
    assert code == grpc.StatusCode.OK, (code, got)
    assert list(got.hits) == []
    assert len(workers(daemon, "lazy")) == 1


def _socket_inodes(pid):
    out = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        m = re.fullmatch(r"socket:\[(\d+)\]", target)
        if m:
            out.add(m.group(1))
    return out


def _queued_to(pid):
    """Bytes waiting unread on the process's unix sockets (ss)."""
    inodes = _socket_inodes(pid)
    text = subprocess.run(["ss", "-x", "-a", "-n", "-H"], check=True,
                          capture_output=True, text=True).stdout
    total = 0
    for line in text.splitlines():
        f = line.split()
        # Netid State Recv-Q Send-Q Local Port Peer Port
        if len(f) >= 8 and f[5] in inodes:
            total += int(f[2])
    return total


def test_worker_killed_with_call_outstanding_is_unavailable(daemon, tokens):
    """The call's worker dies with the call outstanding: the client gets
    UNAVAILABLE at once, not a hang until its deadline."""
    ch, tok = daemon.channel, tokens["doomed"]
    # A worker of the tenant, then stopped: the next call waits on it.
    outcome(ch, MEMORY + "SearchMemory", pb.SearchMemoryRequest(query="a"),
            pb.SearchMemoryResponse, tok)
    (pid,) = workers(daemon, "doomed")
    os.kill(pid, signal.SIGSTOP)
    try:
        call = ch.unary_unary(
            MEMORY + "SearchMemory",
            request_serializer=pb.SearchMemoryRequest.SerializeToString,
            response_deserializer=pb.SearchMemoryResponse.FromString)
        fut = call.future(pb.SearchMemoryRequest(query="sky"),
                          metadata=auth_md(tok), timeout=60)
        poll(lambda: _queued_to(pid) > 0, TIMEOUT,
             what="the call to reach the stopped worker")
        assert not fut.done()
        t0 = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(grpc.RpcError) as e:
            fut.result(timeout=TIMEOUT)
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "worker" in e.value.details()
        assert time.monotonic() - t0 < 5.0
    finally:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
    # The tenant is served again afterwards.
    code, got = outcome(ch, MEMORY + "SearchMemory",
                        pb.SearchMemoryRequest(query="sky"),
                        pb.SearchMemoryResponse, tok)
    assert code == grpc.StatusCode.OK, (code, got)


# ---------------------------------------------------------------- console

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


def login(d, token):
    r = req(d, "POST", "login", {"token": token})
    assert r.status == 200, r
    return r.headers["set-cookie"].split(";")[0], r.json["csrf_token"]


def error_code(r):
    assert r.json is not None and set(r.json) == {"error"}, r
    return r.json["error"]["code"]


ROUTES = [
    ("GET", "memory", None), ("POST", "memory", {"text": "x"}),
    ("GET", "memory/search?q=x", None), ("GET", "memory/" + "0" * 32, None),
    ("DELETE", "memory/" + "0" * 32, None),
    ("POST", "memory/purge", {"expired_only": True}),
    ("GET", "vault", None), ("DELETE", "vault/k1", None),
    ("GET", "cron", None),
    ("POST", "cron", {"name": "j", "schedule": "@daily"}),
    ("GET", "cron/j", None), ("PATCH", "cron/j", {"enabled": False}),
    ("DELETE", "cron/j", None), ("POST", "cron/j/run", None),
    ("GET", "cron/j/runs", None),
]


def test_console_routes_need_a_token(daemon):
    for method, path, body in ROUTES:
        r = req(daemon, method, path, body)
        assert r.status == 401, (method, path, r)
        assert error_code(r) == "unauthenticated"


def test_console_bodies_and_queries_checked(daemon, tokens):
    ops = tokens["ops"]
    bad = [
        ("POST", "memory", {"text": "x", "colour": "red"}, 400),
        ("POST", "memory", {"text": 5}, 400),
        ("POST", "memory", {}, 400),
        ("POST", "memory", {"text": "x", "tags": "a"}, 400),
        ("POST", "memory", {"text": "x", "tags": ["t"] * 17}, 400),
        ("POST", "memory", {"text": "x", "tags": [""]}, 400),
        ("POST", "memory", {"text": "x", "ttl_ms": -1}, 400),
        ("POST", "memory", {"text": "x" * (16 * 1024 + 1)}, 400),
        ("POST", "memory", {"text": "x" * (65 * 1024)}, 413),
        ("POST", "memory/purge", {"expired_only": "yes"}, 400),
        ("GET", "memory/search", None, 400),
        ("GET", "memory/search?q=x&top_k=0", None, 400),
        ("GET", "memory/search?q=x&top_k=101", None, 400),
        ("GET", "memory/search?q=x&min_score=1.5", None, 400),
        ("GET", "memory/search?q=x&min_score=nan", None, 400),
        ("GET", "memory/search?q=x&colour=red", None, 400),
        ("GET", "memory?page_size=1001", None, 400),
        ("GET", "vault?page_token=" + "x" * 300, None, 400),
        ("POST", "cron", {"name": "j"}, 400),
        ("POST", "cron", {"name": "j", "schedule": "@daily",
                          "misfire": "sometimes"}, 400),
        ("POST", "cron", {"name": "j", "schedule": "@daily",
                          "enabled": "true"}, 400),
        ("POST", "cron", {"name": "j", "schedule": "@daily",
                          "job_id": "0" * 32}, 400),
        ("PATCH", "cron/j", {}, 400),
        ("PATCH", "cron/j", {"name": "renamed"}, 400),
        ("POST", "cron/j/run", {"now": True}, 400),
        ("GET", "cron?page_size=x", None, 400),
        ("GET", "memory/a/b", None, 404),
        ("GET", "cron/j/jobs", None, 404),
        ("GET", "cron/" + "j" * 65, None, 404),
        ("PUT", "memory", {"text": "x"}, 405),
        ("POST", "memory/search", {}, 405),
        ("PUT", "cron/j", {}, 405),
    ]
    for method, path, body, status in bad:
        r = req(daemon, method, path, body, token=ops)
        assert r.status == status, (method, path, r)
        # (evhttp itself refuses a body over its limit, in HTML.)
        assert status == 413 or error_code(r) in (
            "bad_request", "not_found", "method_not_allowed"), r
    deep = '{"text":"x","tags":' + "[" * 20 + "]" * 20 + "}"
    r = req(daemon, "POST", "memory", raw=deep.encode(), token=ops)
    assert r.status == 400 and "deep" in r.json["error"]["message"], r


def test_console_never_carries_secret_values(daemon, tokens):
    """No route puts or reads a value: 405, saying so."""
    ops = tokens["ops"]
    for method in ("GET", "PUT", "POST"):
        r = req(daemon, method, "vault/k1", {"value": "s3cret"}
                if method != "GET" else None, token=ops)
        assert r.status == 405, (method, r)
        assert "never go over the console" in r.json["error"]["message"]
        assert "DELETE" in r.headers["allow"]
    r = req(daemon, "POST", "vault", {"name": "k", "value": "v"}, token=ops)
    assert r.status == 405 and r.headers["allow"] == "GET", r


def test_console_vault_delete_needs_operator(daemon, tokens):
    r = req(daemon, "DELETE", "vault/k1", token=tokens["alice"])
    assert r.status == 403 and error_code(r) == "forbidden", r


def test_console_cookie_needs_csrf(daemon, tokens):
    sid, csrf = login(daemon, tokens["ops"])
    # Reads go with the cookie alone.
    r = req(daemon, "GET", "cron", headers={"Cookie": sid})
    assert r.status != 403, r
    for method, path, body in ROUTES:
        if method == "GET":
            continue
        r = req(daemon, method, path, body, headers={"Cookie": sid})
        assert r.status == 403 and error_code(r) == "forbidden", (path, r)
        r = req(daemon, method, path, body,
                headers={"Cookie": sid, "X-CSRF-Token": "0" * 64})
        assert r.status == 403, (path, r)
    r = req(daemon, "POST", "memory/purge", {"expired_only": True},
            headers={"Cookie": sid, "X-CSRF-Token": csrf})
    assert r.status != 403, r


def test_console_memory_round_trip(daemon, tokens):
    """Add, list, get, search, delete and purge over the console; the add
    and the search go through the tenant's worker."""
    ops = tokens["ops"]
    r = req(daemon, "POST", "memory", {
        "text": "the lighthouse keeper logs every storm",
        "tags": ["weather", "log"], "source": "console-test",
        "session_id": ""}, token=ops)
    assert r.status == 201, r
    item = r.json
    assert item["text"] == "the lighthouse keeper logs every storm"
    assert item["tags"] == ["weather", "log"] and item["principal"] == "ops"
    assert re.fullmatch(r"[0-9a-f]{32}", item["item_id"]), item
    iid = item["item_id"]
    r = req(daemon, "POST", "memory", {"text": "brief note", "ttl_ms": 1,
                                       "tags": ["scratch"]}, token=ops)
    assert r.status == 201 and r.json["expires_unix_ms"] > 0, r

    r = req(daemon, "GET", "memory/" + iid, token=ops)
    assert r.status == 200 and r.json == item, r
    r = req(daemon, "GET", "memory?tag=weather&page_size=10", token=ops)
    assert r.status == 200, r
    assert [i["item_id"] for i in r.json["items"]] == [iid], r
    r = req(daemon, "GET", "memory/search?q=lighthouse%20storm&top_k=3"
            "&tag=weather", token=ops)
    assert r.status == 200, r
    hits = r.json["hits"]
    assert hits and hits[0]["item"]["item_id"] == iid, r
    assert 0 < hits[0]["score"] <= 1, hits[0]
    r = req(daemon, "GET", "memory/search?q=lighthouse&min_score=1",
            token=ops)
    assert r.status == 200 and r.json.get("hits", []) == [], r

    # The expired item goes with an expired_only purge; the other stays.
    poll(lambda: req(daemon, "POST", "memory/purge", {"expired_only": True},
                     token=ops).json.get("deleted") == 1, TIMEOUT,
         what="the expired item to be purged")
    r = req(daemon, "DELETE", "memory/" + iid, token=ops)
    assert r.status == 200, r
    r = req(daemon, "GET", "memory/" + iid, token=ops)
    assert r.status == 404 and error_code(r) == "not_found", r
    r = req(daemon, "DELETE", "memory/" + iid, token=ops)
    assert r.status == 404, r


def test_console_vault_metadata_only(daemon, tokens):
    """A secret put over gRPC shows in the console's list by its metadata,
    never its value; the console deletes it (operator)."""
    value = b"console-must-not-see-7781"
    meta = unary(daemon.channel, VAULT + "PutSecret", pb.PutSecretRequest(
        name="smtp-password", value=value, description="outbound mail"),
        pb.SecretMeta, tokens["ops"])
    assert meta.version == 1 and meta.size == len(value)
    for tok in (tokens["ops"], tokens["alice"]):
        r = req(daemon, "GET", "vault", token=tok)
        assert r.status == 200, r
        assert value not in r.raw and b"Y29uc29sZS" not in r.raw, r
        got = {m["name"]: m for m in r.json["secrets"]}
        m = got["smtp-password"]
        assert (m["version"], m["size"], m["description"],
                m["updated_by"]) == (1, len(value), "outbound mail", "ops")
        assert "value" not in m
    r = req(daemon, "DELETE", "vault/smtp-password", token=tokens["ops"])
    assert r.status == 200, r
    r = req(daemon, "DELETE", "vault/smtp-password", token=tokens["ops"])
    assert r.status == 404, r
    r = req(daemon, "GET", "vault", token=tokens["ops"])
    assert "smtp-password" not in {m["name"] for m in r.json.get(
        "secrets", [])}


def test_console_cron_round_trip(daemon, tokens):
    ops = tokens["ops"]
    r = req(daemon, "POST", "cron", {
        "name": "console-job", "schedule": "0 3 * * *",
        "timezone": "Europe/Prague", "agent": "assistant",
        "input": "good night", "misfire": "catch_up", "catch_up_max": 3,
        "unattended": "deny"}, token=ops)
    assert r.status == 201, r
    job = r.json
    assert (job["name"], job["schedule"], job["timezone"], job["misfire"],
            job["unattended"], job["enabled"], job["principal"]) == (
        "console-job", "0 3 * * *", "Europe/Prague", "catch_up", "deny",
        True, "ops"), job
    assert job["next_fire_unix_ms"] > int(time.time() * 1000), job
    jid = job["job_id"]
    r = req(daemon, "POST", "cron", {"name": "console-job", "input": "x",
                                     "schedule": "@daily"}, token=ops)
    assert r.status == 409 and error_code(r) == "conflict", r
    r = req(daemon, "POST", "cron", {"name": "console-off", "input": "x",
                                     "schedule": "@hourly", "enabled": False},
            token=ops)
    assert r.status == 201, r
    assert (r.json["enabled"], r.json["next_fire_unix_ms"]) == (False, 0), r
    assert req(daemon, "DELETE", "cron/console-off", token=ops).status == 200
    r = req(daemon, "POST", "cron", {"name": "bad-schedule", "input": "x",
                                     "schedule": "61 * * * *"}, token=ops)
    assert r.status == 400 and error_code(r) == "bad_request", r

    for ref in (jid, "console-job"):
        r = req(daemon, "GET", "cron/" + ref, token=ops)
        assert r.status == 200 and r.json["job_id"] == jid, r
    # PATCH replaces the members given, nothing else.
    r = req(daemon, "PATCH", "cron/" + jid, {"enabled": False,
                                             "input": "sleep"}, token=ops)
    assert r.status == 200, r
    assert (r.json["enabled"], r.json["input"], r.json["schedule"],
            r.json["misfire"]) == (False, "sleep", "0 3 * * *", "catch_up")
    assert r.json["next_fire_unix_ms"] == 0, r
    r = req(daemon, "GET", "cron", token=ops)
    assert r.status == 200 and jid in {j["job_id"] for j in r.json["jobs"]}

    r = req(daemon, "POST", f"cron/{jid}/run", token=ops)
    assert r.status == 200, r
    assert r.json["manual"] is True and r.json["job_id"] == jid, r
    r = req(daemon, "GET", f"cron/{jid}/runs?page_size=5", token=ops)
    assert r.status == 200 and len(r.json["fires"]) == 1, r
    assert r.json["fires"][0]["manual"] is True

    r = req(daemon, "DELETE", "cron/" + jid, token=ops)
    assert r.status == 200, r
    r = req(daemon, "GET", "cron/" + jid, token=ops)
    assert r.status == 404, r


def test_deadline_with_worker_call_outstanding(daemon, tokens):
    """A call whose deadline passes while its worker holds it ends with
    DEADLINE_EXCEEDED; the worker's late answer is dropped and the worker
    keeps serving (its channel is not taken for a broken one)."""
    ch, tok = daemon.channel, tokens["ops"]
    code, _ = outcome(ch, MEMORY + "SearchMemory",
                      pb.SearchMemoryRequest(query="warm up"),
                      pb.SearchMemoryResponse, tok)
    assert code == grpc.StatusCode.OK
    (pid,) = workers(daemon, "alpha")
    os.kill(pid, signal.SIGSTOP)
    try:
        code, details = outcome(ch, MEMORY + "SearchMemory",
                                pb.SearchMemoryRequest(query="late"),
                                pb.SearchMemoryResponse, tok, timeout=1.0)
        assert code == grpc.StatusCode.DEADLINE_EXCEEDED, (code, details)
    finally:
        os.kill(pid, signal.SIGCONT)
    code, got = outcome(ch, MEMORY + "SearchMemory",
                        pb.SearchMemoryRequest(query="sky"),
                        pb.SearchMemoryResponse, tok)
    assert code == grpc.StatusCode.OK, (code, got)
    assert workers(daemon, "alpha") == [pid]


CRASHY = """\
state-dir "{state}"
listen grpc 127.0.0.1:{grpc_port}
listen http 127.0.0.1:{http_port}
provider "offline" {{ type offline }}
tenant "good" {{ }}
tenant "crashy" {{ }}
"""


def test_parked_call_without_worker_times_out(tmp_path, monkeypatch):
    """A tenant whose worker cannot start: a worker-routed call waits
    FE_WORKER_START_TIMEOUT_MS (5 s), then ends UNAVAILABLE, over gRPC and
    the console; journald's methods of the same tenant are answered
    meanwhile."""
    import conftest
    from test_pool import crashy_tree
    monkeypatch.setattr(conftest, "PALYRAD", crashy_tree(tmp_path))
    d = Daemon(tmp_path / "run", CRASHY, tenants=("good", "crashy"))
    d.start()
    try:
        tok = d.mint_token("crashy", "cy", "operator")
        call = d.channel.unary_unary(
            MEMORY + "SearchMemory",
            request_serializer=pb.SearchMemoryRequest.SerializeToString,
            response_deserializer=pb.SearchMemoryResponse.FromString)
        t0 = time.monotonic()
        fut = call.future(pb.SearchMemoryRequest(query="sky"),
                          metadata=auth_md(tok), timeout=30)
        lst = unary(d.channel, VAULT + "ListSecrets", pb.ListSecretsRequest(),
                    pb.ListSecretsResponse, tok)
        assert list(lst.secrets) == []
        assert not fut.done()
        with pytest.raises(grpc.RpcError) as e:
            fut.result(timeout=15)
        took = time.monotonic() - t0
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE
        assert e.value.details() == "tenant worker unavailable"
        assert 4.5 <= took < 8, took
        r = req(d, "POST", "memory", {"text": "x"}, token=tok)
        assert r.status == 503 and error_code(r) == "unavailable", r
        assert not d.pids_of("palyra-worker", "crashy")
    finally:
        d.assert_clean_stop()
