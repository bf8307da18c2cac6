"""palyractl approvals, usage and budget (issue 7).

Three groups:
- `approvals verify-export` on files built here with hashlib exactly per the
  format of gateway.proto ExportChunk: a good file, a tampered record, a
  reordered line, a truncated file, a wrong count. No daemon.
- palyractl against a fake gRPC server (Debian's python3-grpcio) that plays
  the server side exactly as the contract says: `run --approve` answers an
  approval request on the run's own stream, `approvals export` writes and
  checks the chunks, `budget set` sends micro-USD, `usage` prints a table.
  These pin palyractl's half of the wire without depending on the daemon.
- palyractl against the real palyrad: list/show/decide an approval created
  by a run whose agent has `tool "time.now" ask`, export then
  verify-export, `run --approve once`, usage and budget set/list/delete.
"""
import hashlib
import json
import os
import queue
import subprocess
import threading
import time
from concurrent import futures

import grpc
import pytest

from conftest import (PALYRACTL, RPC_TIMEOUT, Daemon, _require_binaries,
                      auth_md, event_kind, pb, poll)

S = pb.RunStatus
D = pb.ApprovalDecisionKind
SC = pb.ApprovalScope
AS = pb.ApprovalState


def ctl(*args, timeout=30, env=None):
    if not os.access(PALYRACTL, os.X_OK):
        pytest.fail(f"{PALYRACTL} not built", pytrace=False)
    e = {k: v for k, v in os.environ.items()
         if "proxy" not in k.lower() and k != "PALYRA_TOKEN"}
    e.update(env or {})
    return subprocess.run([PALYRACTL, *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, env=e)


# ------------------------------------------------------------ export files

def record_line(record, prev_chain):
    """One export line for record (a dict); returns (line, chain)."""
    r = json.dumps(record, separators=(",", ":"))
    h = hashlib.sha256(r.encode()).digest()
    chain = hashlib.sha256(prev_chain + h).digest()
    line = '{"record":%s,"sha256":"%s","chain":"%s"}' % (r, h.hex(), chain.hex())
    return line, chain


def end_line(count, chain):
    return '{"end":{"count":%d,"chain":"%s"}}' % (count, chain.hex())


def sample_records(n=4):
    return [{"approval_id": f"{i:032x}", "run_id": f"run{i}",
             "tool_name": "time.now", "state": "allowed",
             "arguments_summary": "{\"tz\":\"UTC\"}", "created_unix_ms": 1000 + i}
            for i in range(n)]


def build_export(records):
    lines, chain = [], bytes(32)
    for r in records:
        line, chain = record_line(r, chain)
        lines.append(line)
    lines.append(end_line(len(records), chain))
    return lines, chain


def write_lines(path, lines):
    with open(path, "w") as f:
        f.write("".join(line + "\n" for line in lines))
    return str(path)


def verify(path):
    return ctl("approvals", "verify-export", str(path))


def test_verify_export_good(tmp_path):
    lines, chain = build_export(sample_records())
    r = verify(write_lines(tmp_path / "good.ndjson", lines))
    assert r.returncode == 0, r
    assert r.stdout.strip() == f"ok: 4 records, chain {chain.hex()}", r


def test_verify_export_empty_export(tmp_path):
    lines, chain = build_export([])
    assert chain == bytes(32)
    r = verify(write_lines(tmp_path / "empty.ndjson", lines))
    assert r.returncode == 0, r
    assert r.stdout.strip() == "ok: 0 records, chain " + "0" * 64, r


def test_verify_export_tampered_record(tmp_path):
    lines, _ = build_export(sample_records())
    # Line 3: the decision changed after the fact, hashes left as they were.
    lines[2] = lines[2].replace('"state":"allowed"', '"state":"denied"', 1)
    path = write_lines(tmp_path / "tampered.ndjson", lines)
    r = verify(path)
    assert r.returncode == 1, r
    assert r.stderr.startswith(f"{path}:3: "), r
    assert "sha256" in r.stderr and "ok:" not in r.stdout, r


def test_verify_export_white_space_in_record_counts(tmp_path):
    # The hash covers the record's bytes as they stand: re-serialising it
    # with other white space is a change.
    lines, _ = build_export(sample_records(2))
    lines[0] = lines[0].replace('"run_id":"run0"', '"run_id": "run0"', 1)
    path = write_lines(tmp_path / "ws.ndjson", lines)
    r = verify(path)
    assert r.returncode == 1 and r.stderr.startswith(f"{path}:1: "), r


def test_verify_export_reordered_line(tmp_path):
    lines, _ = build_export(sample_records())
    lines[1], lines[2] = lines[2], lines[1]
    path = write_lines(tmp_path / "reordered.ndjson", lines)
    r = verify(path)
    assert r.returncode == 1, r
    assert r.stderr.startswith(f"{path}:2: "), r
    assert "chain" in r.stderr, r


def test_verify_export_removed_line(tmp_path):
    lines, _ = build_export(sample_records())
    del lines[1]
    path = write_lines(tmp_path / "removed.ndjson", lines)
    r = verify(path)
    assert r.returncode == 1 and r.stderr.startswith(f"{path}:2: "), r


def test_verify_export_truncated(tmp_path):
    lines, _ = build_export(sample_records())
    path = write_lines(tmp_path / "truncated.ndjson", lines[:-1])
    r = verify(path)
    assert r.returncode == 1, r
    assert r.stderr.startswith(f"{path}:5: "), r
    assert "truncated" in r.stderr or "end line" in r.stderr, r
    # Cut inside a line: that line is the bad one.
    with open(path, "w") as f:
        f.write(lines[0] + "\n" + lines[1][:40])
    r = verify(path)
    assert r.returncode == 1 and r.stderr.startswith(f"{path}:2: "), r


def test_verify_export_wrong_count(tmp_path):
    lines, chain = build_export(sample_records())
    lines[-1] = end_line(5, chain)
    path = write_lines(tmp_path / "count.ndjson", lines)
    r = verify(path)
    assert r.returncode == 1, r
    assert r.stderr.startswith(f"{path}:5: "), r
    assert "count" in r.stderr, r


def test_verify_export_wrong_end_chain_and_trailing_data(tmp_path):
    lines, chain = build_export(sample_records(2))
    bad = lines[:-1] + [end_line(2, bytes(32))]
    path = write_lines(tmp_path / "endchain.ndjson", bad)
    r = verify(path)
    assert r.returncode == 1 and r.stderr.startswith(f"{path}:3: "), r
    path = write_lines(tmp_path / "trailing.ndjson", lines + [lines[0]])
    r = verify(path)
    assert r.returncode == 1 and r.stderr.startswith(f"{path}:4: "), r


def test_verify_export_bad_input(tmp_path):
    r = verify(tmp_path / "missing.ndjson")
    assert r.returncode == 1 and "missing.ndjson" in r.stderr, r
    path = write_lines(tmp_path / "garbage.ndjson", ["not json"])
    r = verify(path)
    assert r.returncode == 1 and r.stderr.startswith(f"{path}:1: "), r
    r = ctl("approvals", "verify-export")
    assert r.returncode == 2 and "usage" in r.stderr, r


# ------------------------------------------------------------ fake server

class FakeServer:
    """A gRPC server with the handlers given: {(service, method): handler}."""

    def __init__(self, handlers):
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        by_service = {}
        for (service, method), h in handlers.items():
            by_service.setdefault(service, {})[method] = h
        for service, methods in by_service.items():
            self.server.add_generic_rpc_handlers(
                (grpc.method_handlers_generic_handler(service, methods),))
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()
        self.addr = f"127.0.0.1:{self.port}"

    def stop(self):
        self.server.stop(0)


def event(seq, **kw):
    return pb.RunEvent(run_id="r" * 32, seq=seq, session_id="s" * 32,
                       timestamp_unix_ms=int(time.time() * 1000), **kw)


APPROVAL_ID = "a1" * 16


def fake_run_handler(seen):
    """RunStream as the contract plays one asked tool call."""
    def handler(requests, context):
        seen["metadata"] = dict(context.invocation_metadata())
        first = next(requests)
        seen["start"] = first
        yield event(1, status=pb.StatusEvent(status=S.RUN_STATUS_ACCEPTED))
        yield event(2, status=pb.StatusEvent(status=S.RUN_STATUS_IN_PROGRESS))
        yield event(3, tool_call=pb.ToolCall(id="call1", name="time.now",
                                             arguments_json="{}"))
        yield event(4, approval_request=pb.ApprovalRequest(
            approval_id=APPROVAL_ID, tool_call_id="call1", tool_name="time.now",
            arguments_summary="{}",
            expires_unix_ms=int(time.time() * 1000) + 60000))
        yield event(5, status=pb.StatusEvent(status=S.RUN_STATUS_WAITING_APPROVAL))
        try:
            msg = next(requests)
        except StopIteration:
            msg = None
        seen["decision"] = msg
        allow = msg is not None and msg.approval.decision == D.APPROVAL_DECISION_ALLOW
        yield event(6, approval_decided=pb.ApprovalDecided(
            approval_id=APPROVAL_ID,
            decision=D.APPROVAL_DECISION_ALLOW if allow else D.APPROVAL_DECISION_DENY,
            scope=msg.approval.scope if allow else 0,
            decided_by="alice" if msg is not None else "timeout"))
        yield event(7, status=pb.StatusEvent(status=S.RUN_STATUS_IN_PROGRESS))
        yield event(8, budget_warning=pb.BudgetWarning(
            budget_id="tenant:tokens:day", message="soft budget crossed",
            used=900, limit=800, unit="tokens"))
        yield event(9, tool_result=pb.ToolResult(
            id="call1", name="time.now", is_error=not allow,
            content='{"utc":"x"}' if allow else "denied"))
        yield event(10, final=pb.FinalMessage(text="done " + ("allowed" if allow else "denied")))
        yield event(11, status=pb.StatusEvent(status=S.RUN_STATUS_COMPLETED))
        # palyractl ends its request stream once the run is over.
        if msg is not None:
            try:
                seen["after"] = next(requests)
            except StopIteration:
                seen["after"] = "end"
    return grpc.stream_stream_rpc_method_handler(
        handler, request_deserializer=pb.RunStreamRequest.FromString,
        response_serializer=pb.RunEvent.SerializeToString)


@pytest.fixture
def fake_run():
    seen = {}
    srv = FakeServer({("palyra.v1.GatewayService", "RunStream"): fake_run_handler(seen)})
    yield srv, seen
    srv.stop()


@pytest.mark.parametrize("approve,scope,ttl_ms", [
    ("once", SC.APPROVAL_SCOPE_ONCE, 0),
    ("session", SC.APPROVAL_SCOPE_SESSION, 0),
    ("ttl:10m", SC.APPROVAL_SCOPE_TTL, 600000),
])
def test_run_approve_answers_on_the_stream(fake_run, approve, scope, ttl_ms):
    srv, seen = fake_run
    r = ctl("-g", srv.addr, "run", "--token", "tok", "--approve", approve,
            "/tool time.now {}", timeout=20)
    assert r.returncode == 0, r
    assert r.stdout.strip() == "done allowed", r
    d = seen["decision"]
    assert d is not None and d.WhichOneof("msg") == "approval", seen
    assert d.approval.approval_id == APPROVAL_ID
    assert d.approval.decision == D.APPROVAL_DECISION_ALLOW
    assert d.approval.scope == scope and d.approval.ttl_ms == ttl_ms, d
    assert seen["after"] == "end", seen
    assert seen["metadata"].get("authorization") == "Bearer tok"
    assert f"[approval {APPROVAL_ID} tool time.now" in r.stderr, r
    assert f"[approved {APPROVAL_ID} by alice" in r.stderr, r
    assert "[budget tenant:tokens:day used 900 of 800 tokens" in r.stderr, r
    assert "approvals decide" not in r.stderr, r


def test_run_approve_deny(fake_run):
    srv, seen = fake_run
    r = ctl("-g", srv.addr, "run", "--token", "tok", "--approve", "deny", "x",
            timeout=20)
    assert r.returncode == 0, r
    assert r.stdout.strip() == "done denied", r
    assert seen["decision"].approval.decision == D.APPROVAL_DECISION_DENY
    assert f"[denied {APPROVAL_ID}" in r.stderr, r


def test_run_without_approve_says_how_to_decide(fake_run):
    srv, seen = fake_run
    r = ctl("-g", srv.addr, "run", "--token", "tok", "x", timeout=20)
    assert r.returncode == 0, r
    assert seen["decision"] is None, "palyractl sent something without --approve"
    assert f"palyractl approvals decide {APPROVAL_ID} allow" in r.stderr, r


def test_run_json_shows_approval_events(fake_run):
    srv, _ = fake_run
    r = ctl("-g", srv.addr, "--json", "run", "--token", "tok", "--approve",
            "once", "x", timeout=20)
    assert r.returncode == 0, r
    evs = [json.loads(line) for line in r.stdout.splitlines()]
    req = [e for e in evs if "approval_request" in e]
    dec = [e for e in evs if "approval_decided" in e]
    bw = [e for e in evs if "budget_warning" in e]
    assert req and req[0]["approval_request"]["approval_id"] == APPROVAL_ID, evs
    assert dec and dec[0]["approval_decided"]["decision"] == "allow", evs
    assert bw and bw[0]["budget_warning"]["limit"] == 800, evs


def refused_run_handler():
    """RunStream refused by a hard budget, as the contract words it."""
    why = "budget tenant:tokens:day: hard limit 1000 tokens, used 900"

    def handler(requests, context):
        next(requests)
        yield event(1, status=pb.StatusEvent(status=S.RUN_STATUS_ACCEPTED))
        yield event(2, status=pb.StatusEvent(status=S.RUN_STATUS_IN_PROGRESS))
        yield event(3, error=pb.ErrorEvent(code="RESOURCE_EXHAUSTED", message=why))
        yield event(4, status=pb.StatusEvent(status=S.RUN_STATUS_FAILED, reason=why))
        context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, why)
    return grpc.stream_stream_rpc_method_handler(
        handler, request_deserializer=pb.RunStreamRequest.FromString,
        response_serializer=pb.RunEvent.SerializeToString), why


@pytest.mark.parametrize("approve", [[], ["--approve", "once"]])
def test_run_refused_by_budget_says_why(approve):
    h, why = refused_run_handler()
    srv = FakeServer({("palyra.v1.GatewayService", "RunStream"): h})
    try:
        r = ctl("-g", srv.addr, "run", "--token", "t", *approve, "x", timeout=20)
    finally:
        srv.stop()
    assert r.returncode == 1, r
    assert f"palyractl: run error RESOURCE_EXHAUSTED: {why}" in r.stderr, r
    assert f"run failed: RESOURCE_EXHAUSTED: {why}" in r.stderr, r


@pytest.mark.parametrize("bad", ["always", "ttl:", "ttl:0s", "ttl:31d", "ttl:5x"])
def test_run_approve_bad_values(bad):
    r = ctl("-g", "127.0.0.1:1", "run", "--token", "t", "--approve", bad, "x")
    assert r.returncode == 2 and "--approve" in r.stderr, r


def export_handler(chunks, seen):
    def handler(req, context):
        seen["since"] = req.since_unix_ms
        for c in chunks:
            yield pb.ExportChunk(ndjson=c)
    return grpc.unary_stream_rpc_method_handler(
        handler, request_deserializer=pb.ExportApprovalsRequest.FromString,
        response_serializer=pb.ExportChunk.SerializeToString)


def test_export_writes_and_checks_chunks(tmp_path):
    lines, chain = build_export(sample_records(5))
    data = "".join(line + "\n" for line in lines).encode()
    # Chunk boundaries anywhere, also inside a line.
    chunks = [data[:7], data[7:300], data[300:301], data[301:]]
    seen = {}
    srv = FakeServer({("palyra.v1.ApprovalsService", "ExportApprovals"):
                      export_handler(chunks, seen)})
    try:
        out = tmp_path / "export.ndjson"
        r = ctl("-g", srv.addr, "approvals", "export", "--token", "t",
                "-o", str(out), "--since", "2026-12-01")
        assert r.returncode == 0, r
        assert out.read_bytes() == data
        assert seen["since"] == 1796083200000, seen
        assert f"exported 5 records, chain {chain.hex()}" in r.stderr, r
        r = verify(out)
        assert r.returncode == 0 and "ok: 5 records" in r.stdout, r
        r = ctl("-g", srv.addr, "approvals", "export", "--token", "t")
        assert r.returncode == 0 and r.stdout.encode() == data, r
    finally:
        srv.stop()


def test_export_that_does_not_verify_fails(tmp_path):
    lines, _ = build_export(sample_records(3))
    lines[1] = lines[1].replace("run1", "runX")
    data = "".join(line + "\n" for line in lines).encode()
    srv = FakeServer({("palyra.v1.ApprovalsService", "ExportApprovals"):
                      export_handler([data], {})})
    try:
        out = tmp_path / "bad.ndjson"
        r = ctl("-g", srv.addr, "approvals", "export", "--token", "t",
                "-o", str(out))
        assert r.returncode == 1, r
        assert "does not verify" in r.stderr and "2:" in r.stderr, r
        assert not out.exists(), "a failed export left its file"
        assert not [p for p in os.listdir(tmp_path) if p.startswith("bad.")]
    finally:
        srv.stop()


def usage_handlers(seen):
    def set_budget(req, context):
        seen["set"] = req
        b = pb.Budget()
        b.CopyFrom(req.budget)
        b.budget_id = "agent:%s:cost:day" % req.budget.subject
        b.source = "runtime"
        return b

    def get_usage(req, context):
        seen["usage"] = req
        return pb.GetUsageResponse(
            rows=[pb.UsageRow(day="2026-12-01", agent="assistant",
                              input_tokens=10, output_tokens=20,
                              cost_micro_usd=1500, calls=2),
                  pb.UsageRow(day="2026-12-02", agent="assistant",
                              input_tokens=1, output_tokens=2,
                              cost_micro_usd=2500000, calls=1)],
            total=pb.UsageRow(input_tokens=11, output_tokens=22,
                              cost_micro_usd=2501500, calls=3),
            timezone="Europe/Paris")

    def unary(fn, req_cls, resp_cls):
        return grpc.unary_unary_rpc_method_handler(
            fn, request_deserializer=req_cls.FromString,
            response_serializer=resp_cls.SerializeToString)
    return {
        ("palyra.v1.UsageService", "SetBudget"):
            unary(set_budget, pb.SetBudgetRequest, pb.Budget),
        ("palyra.v1.UsageService", "GetUsage"):
            unary(get_usage, pb.GetUsageRequest, pb.GetUsageResponse),
    }


def test_budget_set_and_usage_on_the_wire():
    seen = {}
    srv = FakeServer(usage_handlers(seen))
    try:
        r = ctl("-g", srv.addr, "budget", "set", "--token", "t",
                "agent:assistant", "cost", "2.50", "per", "day", "hard")
        assert r.returncode == 0, r
        b = seen["set"].budget
        assert (b.scope, b.subject, b.unit, b.limit, b.period, b.hard) == (
            pb.BUDGET_SCOPE_AGENT, "assistant", pb.BUDGET_UNIT_COST, 2500000,
            pb.BUDGET_PERIOD_DAY, True), b
        row = r.stdout.splitlines()[1].split()
        assert row[:7] == ["agent:assistant:cost:day", "hard", "USD", "per",
                           "day", "2.50", "0.00"], r

        r = ctl("-g", srv.addr, "usage", "--token", "t", "--from",
                "2026-12-01", "--by", "day,agent")
        assert r.returncode == 0, r
        u = seen["usage"]
        assert u.from_day == "2026-12-01" and list(u.group_by) == ["day", "agent"], u
        out = r.stdout.splitlines()
        assert out[0].split() == ["DAY", "AGENT", "INPUT", "OUTPUT",
                                  "COST_USD", "CALLS"], r.stdout
        assert out[1].split() == ["2026-12-01", "assistant", "10", "20",
                                  "0.0015", "2"], r.stdout
        assert out[2].split() == ["2026-12-02", "assistant", "1", "2",
                                  "2.50", "1"], r.stdout
        assert out[3].split() == ["TOTAL", "11", "22", "2.5015", "3"], r.stdout
        assert "Europe/Paris" in r.stdout, r

        r = ctl("-g", srv.addr, "usage", "--token", "t", "--json", "--by", "day")
        assert r.returncode == 0, r
        j = json.loads(r.stdout)
        assert j["timezone"] == "Europe/Paris" and j["total"]["calls"] == 3, j
        assert j["rows"][1]["cost_micro_usd"] == 2500000, j
    finally:
        srv.stop()


def test_approvals_list_follows_pages():
    seen = []

    def list_approvals(req, context):
        seen.append((req.state, req.run_id, req.page_token))
        if req.page_token == "":
            return pb.ListApprovalsResponse(approvals=[
                pb.Approval(approval_id="%032x" % i, state=AS.APPROVAL_STATE_PENDING,
                            tool_name="time.now", principal="p", agent="a",
                            run_id="r" * 32) for i in range(3)],
                next_page_token="page2")
        assert req.page_token == "page2"
        return pb.ListApprovalsResponse(approvals=[pb.Approval(
            approval_id="%032x" % 3, state=AS.APPROVAL_STATE_PENDING,
            tool_name="x\x1b[2Jy", principal="p", agent="a", run_id="r" * 32)])
    srv = FakeServer({("palyra.v1.ApprovalsService", "ListApprovals"):
                      grpc.unary_unary_rpc_method_handler(
                          list_approvals,
                          request_deserializer=pb.ListApprovalsRequest.FromString,
                          response_serializer=pb.ListApprovalsResponse.SerializeToString)})
    try:
        r = ctl("-g", srv.addr, "approvals", "list", "--token", "t", "--state",
                "pending", "--run", "r" * 32)
    finally:
        srv.stop()
    assert r.returncode == 0, r
    assert seen == [(AS.APPROVAL_STATE_PENDING, "r" * 32, ""),
                    (AS.APPROVAL_STATE_PENDING, "r" * 32, "page2")], seen
    lines = r.stdout.splitlines()
    assert lines[0].split()[:3] == ["APPROVAL", "STATE", "TOOL"], r
    assert [line.split()[0] for line in lines[1:5]] == ["%032x" % i for i in range(4)], r
    assert lines[-1] == "4 approvals", r
    # Server text cannot drive the terminal.
    assert "\x1b" not in r.stdout and "x?[2Jy" in r.stdout, r


@pytest.mark.parametrize("args,why", [
    (["tenant:x", "tokens", "10", "per", "day", "hard"], "subject"),
    (["agent", "tokens", "10", "per", "day", "hard"], "subject"),
    (["tenant", "cost", "2.1234567", "per", "day", "hard"], "six decimals"),
    (["tenant", "tokens", "1.5", "per", "day", "hard"], "whole number"),
    (["tenant", "tokens", "0", "per", "day", "hard"], "more than 0"),
    (["tenant", "tokens", "10", "per", "week", "hard"], "period"),
    (["tenant", "tokens", "10", "per", "day", "firm"], "soft or hard"),
    (["tenant", "tokens", "10", "each", "day", "hard"], "per"),
    (["team", "tokens", "10", "per", "day", "hard"], "scope"),
])
def test_budget_set_bad_arguments(args, why):
    r = ctl("-g", "127.0.0.1:1", "budget", "set", "--token", "t", *args)
    assert r.returncode == 2, r
    assert why in r.stderr, r


@pytest.mark.parametrize("args", [
    ["usage", "--token", "t", "--from", "2026-13-01"],
    ["usage", "--token", "t", "--by", "day,week"],
    ["usage", "--token", "t", "--by", "day,day"],
    ["usage", "--token", "t", "--from", "2026-12-02", "--to", "2026-12-01"],
    ["approvals", "list", "--token", "t", "--state", "maybe"],
    ["approvals", "decide", "--token", "t", "x", "perhaps"],
    ["approvals", "decide", "--token", "t", "x", "deny", "--scope", "session"],
    ["approvals", "decide", "--token", "t", "x", "allow", "--scope", "ttl"],
    ["approvals", "decide", "--token", "t", "x", "allow", "--ttl", "31d"],
    ["approvals", "show", "--token", "t"],
    ["approvals", "export", "--token", "t", "--since", "yesterday"],
    ["approvals", "frobnicate"],
])
def test_bad_usage_is_a_usage_error(args):
    r = ctl("-g", "127.0.0.1:1", *args)
    assert r.returncode == 2, r
    assert r.stderr.startswith("palyractl: "), r


def test_unreachable_daemon_is_a_clear_error():
    from conftest import free_port
    r = ctl("-g", f"127.0.0.1:{free_port()}", "approvals", "list", "--token", "t")
    assert r.returncode == 3, r  # cannot connect (palyractl(1) EXIT STATUS)
    assert "approvals list failed: cannot connect" in r.stderr, r


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
		tool "time.now" ask
		approval-timeout 60s
	}}
}}
"""
DEADLINE = 20.0


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    _require_binaries()
    d = Daemon(tmp_path_factory.mktemp("ctl_approvals"), CONFIG, ("default",))
    d.start()
    yield d
    if not d.stopped:
        d.kill()


def dctl(d, *args, timeout=30, token=None):
    env = {"PALYRA_TOKEN": token} if token is not None else None
    return ctl("-g", d.grpc_addr, "-u", d.http_url, "-s", d.state, *args,
               timeout=timeout, env=env)


class PendingRun:
    """A run on its own stream that asks for time.now and waits."""

    def __init__(self, d, token):
        self.events = []
        self.approval = queue.Queue()
        self.code = None
        md = auth_md(token)
        call = d.channel.stream_stream(
            "/palyra.v1.GatewayService/RunStream",
            request_serializer=pb.RunStreamRequest.SerializeToString,
            response_deserializer=pb.RunEvent.FromString)
        self.done = threading.Event()

        def reqs():
            yield pb.RunStreamRequest(start=pb.RunStart(input="/tool time.now {}"))
            self.done.wait(DEADLINE)

        self.it = call(reqs(), metadata=md, timeout=DEADLINE)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        try:
            for ev in self.it:
                self.events.append(ev)
                if event_kind(ev) == "approval_request":
                    self.approval.put(ev.approval_request)
            self.code = self.it.code()
        except grpc.RpcError as e:
            self.code = e.code()
        finally:
            self.done.set()
            self.approval.put(None)

    def approval_id(self):
        ar = self.approval.get(timeout=DEADLINE)
        assert ar is not None, f"no approval request: {self.code} {self.events}"
        return ar.approval_id

    def finish(self):
        self.thread.join(DEADLINE)
        assert not self.thread.is_alive(), "the run did not end"
        self.done.set()
        return self.events


def test_daemon_list_show_decide(daemon):
    user = daemon.mint_token("default", "alice", "user")
    run = PendingRun(daemon, user)
    aid = run.approval_id()
    assert len(aid) == 32 and all(c in "0123456789abcdef" for c in aid), aid

    r = dctl(daemon, "approvals", "list", "--tenant", "default", "--state",
             "pending")
    assert r.returncode == 0, r
    assert any(line.startswith(aid) and " pending " in line
               for line in r.stdout.splitlines()), r
    r = dctl(daemon, "approvals", "show", aid, "--json", token=user)
    assert r.returncode == 0, r
    a = json.loads(r.stdout)
    assert (a["approval_id"], a["state"], a["tool_name"], a["principal"]) == (
        aid, "pending", "time.now", "alice"), a

    r = dctl(daemon, "approvals", "decide", aid, "allow", "--reason", "ok",
             token=user)
    assert r.returncode == 0, r
    assert r.stdout.split()[:2] == [aid, "allowed"], r
    evs = run.finish()
    assert run.code == grpc.StatusCode.OK, (run.code, evs)
    st = [e.status.status for e in evs if event_kind(e) == "status"]
    assert st[-1] == S.RUN_STATUS_COMPLETED, evs
    results = [e.tool_result for e in evs if event_kind(e) == "tool_result"]
    assert results and not results[0].is_error, evs

    # Decided once: a second decision is refused with the status name.
    r = dctl(daemon, "approvals", "decide", aid, "deny", token=user)
    assert r.returncode == 1, r
    assert "FAILED_PRECONDITION" in r.stderr, r
    r = dctl(daemon, "approvals", "show", aid, token=user)
    assert r.returncode == 0 and "allowed" in r.stdout, r
    r = dctl(daemon, "approvals", "show", "0" * 32, token=user)
    assert r.returncode == 1 and "NOT_FOUND" in r.stderr, r


def test_daemon_decide_deny_with_ttl_scope_refused_locally(daemon):
    r = dctl(daemon, "approvals", "decide", "0" * 32, "deny", "--ttl", "1h",
             "--tenant", "default")
    assert r.returncode == 2, r


def test_daemon_run_approve_once(daemon):
    user = daemon.mint_token("default", "bob", "user")
    r = dctl(daemon, "run", "--token", user, "--approve", "once",
             "/tool time.now {}", timeout=DEADLINE)
    assert r.returncode == 0, r
    assert "The tool time.now returned" in r.stdout, r
    assert "[approval " in r.stderr and "[approved " in r.stderr, r


def test_daemon_run_approve_deny(daemon):
    user = daemon.mint_token("default", "bob", "user")
    r = dctl(daemon, "run", "--token", user, "--approve", "deny",
             "/tool time.now {}", timeout=DEADLINE)
    assert r.returncode == 0, r
    assert "The tool time.now failed" in r.stdout, r
    assert "[denied " in r.stderr, r


def test_daemon_export_then_verify(daemon, tmp_path):
    user = daemon.mint_token("default", "carol", "user")
    r = dctl(daemon, "run", "--token", user, "--approve", "once",
             "/tool time.now {}", timeout=DEADLINE)
    assert r.returncode == 0, r
    out = tmp_path / "approvals.ndjson"
    r = dctl(daemon, "approvals", "export", "--tenant", "default", "-o", str(out))
    assert r.returncode == 0, r
    lines = out.read_text().splitlines()
    assert len(lines) >= 2 and lines[-1].startswith('{"end":'), lines
    ids = [json.loads(line)["record"]["approval_id"] for line in lines[:-1]]
    assert len(ids) == len(set(ids)) >= 1, ids
    r = verify(out)
    assert r.returncode == 0, r
    assert r.stdout.startswith(f"ok: {len(lines) - 1} records, chain "), r
    # One byte changed in the exported file is found.
    lines[0] = lines[0].replace('"time.now"', '"time.nov"', 1)
    bad = write_lines(tmp_path / "bad.ndjson", lines)
    r = verify(bad)
    assert r.returncode == 1 and r.stderr.startswith(f"{bad}:1: "), r


def test_daemon_grants_session_and_revoke(daemon):
    user = daemon.mint_token("default", "dave", "user")
    r = dctl(daemon, "run", "--token", user, "--session-key", "grants",
             "--approve", "session", "/tool time.now {}", timeout=DEADLINE)
    assert r.returncode == 0, r
    r = dctl(daemon, "approvals", "grants", "--json", token=user)
    assert r.returncode == 0, r
    grants = [json.loads(line) for line in r.stdout.splitlines()]
    mine = [g for g in grants if g["principal"] == "dave" and g["scope"] == "session"]
    assert len(mine) == 1 and mine[0]["tool_name"] == "time.now", grants
    # The grant covers the next call of the session: no approval asked.
    r = dctl(daemon, "run", "--token", user, "--session-key", "grants",
             "/tool time.now {}", timeout=DEADLINE)
    assert r.returncode == 0 and "[approval " not in r.stderr, r
    gid = mine[0]["grant_id"]
    r = dctl(daemon, "approvals", "revoke", gid, "--tenant", "default")
    assert r.returncode == 0 and gid in r.stdout, r
    r = dctl(daemon, "approvals", "grants", "--json", token=user)
    assert gid not in r.stdout, r


def test_daemon_usage_and_budgets(daemon):
    user = daemon.mint_token("default", "erin", "user")
    r = dctl(daemon, "run", "--token", user, "hello usage", timeout=DEADLINE)
    assert r.returncode == 0, r

    def counted():
        r = dctl(daemon, "usage", "--tenant", "default", "--json")
        assert r.returncode == 0, r
        j = json.loads(r.stdout)
        return j if j["total"].get("calls", 0) >= 1 else None
    j = poll(counted, DEADLINE, 0.2, "usage of the run")
    assert j["total"]["output_tokens"] > 0 and j["timezone"], j
    r = dctl(daemon, "usage", "--tenant", "default", "--by", "agent,principal")
    assert r.returncode == 0, r
    assert any(line.split()[:2] == ["assistant", "erin"]
               for line in r.stdout.splitlines()), r
    assert "time zone" in r.stdout, r

    r = dctl(daemon, "budget", "set", "--tenant", "default",
             "principal:erin", "tokens", "5000", "per", "month", "soft")
    assert r.returncode == 0, r
    # The budget counts what erin used this month: the run above.
    u = dctl(daemon, "usage", "--tenant", "default", "--principal", "erin",
             "--json")
    assert u.returncode == 0, u
    total = json.loads(u.stdout)["total"]
    used = total["input_tokens"] + total["output_tokens"]
    assert used > 0, u
    out = r.stdout.splitlines()
    assert out[0].split()[0] == "BUDGET", r
    assert out[1].split()[:-1] == ["principal:erin:tokens:month", "soft",
                                   "tokens", "per", "month", "5000",
                                   str(used), "0", "runtime"], r
    r = dctl(daemon, "budget", "set", "--tenant", "default", "tenant",
             "cost", "2.50", "per", "day", "hard")
    assert r.returncode == 0, r
    r = dctl(daemon, "budget", "list", "--tenant", "default", "--json")
    assert r.returncode == 0, r
    budgets = {b["budget_id"]: b for b in map(json.loads, r.stdout.splitlines())}
    assert budgets["tenant:cost:day"]["limit"] == 2500000, budgets
    assert budgets["tenant:cost:day"]["kind"] == "hard", budgets
    assert budgets["principal:erin:tokens:month"]["limit"] == 5000, budgets
    # A user may read but not set budgets.
    r = dctl(daemon, "budget", "set", "tenant", "tokens", "1", "per", "day",
             "hard", token=user)
    assert r.returncode == 1 and "PERMISSION_DENIED" in r.stderr, r
    for bid in ("tenant:cost:day", "principal:erin:tokens:month"):
        r = dctl(daemon, "budget", "delete", bid, "--tenant", "default")
        assert r.returncode == 0, r
    r = dctl(daemon, "budget", "list", "--tenant", "default", "--json")
    assert "tenant:cost:day" not in r.stdout, r
    r = dctl(daemon, "budget", "delete", "tenant:cost:day", "--tenant", "default")
    assert r.returncode == 1 and "NOT_FOUND" in r.stderr, r


def test_daemon_other_principal_sees_not_found(daemon):
    alice = daemon.mint_token("default", "alice2", "user")
    mallory = daemon.mint_token("default", "mallory", "user")
    run = PendingRun(daemon, alice)
    aid = run.approval_id()
    for args in (("approvals", "show", aid), ("approvals", "decide", aid, "allow")):
        r = dctl(daemon, *args, token=mallory)
        assert r.returncode == 1, r
        assert "NOT_FOUND" in r.stderr and aid not in r.stdout, r
    r = dctl(daemon, "approvals", "list", "--json", token=mallory)
    assert r.returncode == 0 and aid not in r.stdout, r
    # An operator of the tenant decides it, and the run goes on.
    r = dctl(daemon, "approvals", "list", "--tenant", "default", "--run",
             run.events[0].run_id, "--json")
    assert r.returncode == 0, r
    listed = [json.loads(line) for line in r.stdout.splitlines()]
    assert [a["approval_id"] for a in listed] == [aid], listed
    r = dctl(daemon, "approvals", "decide", aid, "deny", "--reason", "no",
             "--tenant", "default")
    assert r.returncode == 0 and r.stdout.split()[:2] == [aid, "denied"], r
    evs = run.finish()
    dec = [e.approval_decided for e in evs if event_kind(e) == "approval_decided"]
    assert dec and dec[0].decision == D.APPROVAL_DECISION_DENY, evs
    assert dec[0].reason == "no", dec
    res = [e.tool_result for e in evs if event_kind(e) == "tool_result"]
    assert res and res[0].is_error, evs


def test_daemon_ttl_grant_covers_the_next_run(daemon):
    user = daemon.mint_token("default", "grace", "user")
    run = PendingRun(daemon, user)
    aid = run.approval_id()
    t0 = int(time.time() * 1000)
    r = dctl(daemon, "approvals", "decide", aid, "allow", "--ttl", "2m",
             token=user)
    assert r.returncode == 0, r
    assert r.stdout.split()[:3] == [aid, "allowed", "grant"], r
    run.finish()
    r = dctl(daemon, "approvals", "grants", "--json", token=user)
    grants = [json.loads(line) for line in r.stdout.splitlines()]
    mine = [g for g in grants if g["principal"] == "grace"]
    assert len(mine) == 1 and mine[0]["scope"] == "ttl", grants
    assert abs(mine[0]["expires_unix_ms"] - (t0 + 120000)) < 15000, mine
    # Another session of the same principal: covered, nobody is asked.
    r = dctl(daemon, "run", "--token", user, "--session-key", "elsewhere",
             "/tool time.now {}", timeout=DEADLINE)
    assert r.returncode == 0, r
    assert "[decide with:" not in r.stderr, r
    assert "The tool time.now returned" in r.stdout, r


def test_daemon_hard_budget_refuses_a_run(daemon):
    user = daemon.mint_token("default", "frank", "user")
    r = dctl(daemon, "budget", "set", "--tenant", "default", "principal:frank",
             "tokens", "5", "per", "day", "hard")
    assert r.returncode == 0, r
    try:
        r = dctl(daemon, "run", "--token", user, "hello budget",
                 timeout=DEADLINE)
        assert r.returncode == 1, r
        assert "RESOURCE_EXHAUSTED" in r.stderr, r
        assert "principal:frank:tokens:day" in r.stderr, r
        assert "I am the offline model" not in r.stdout, r
    finally:
        dctl(daemon, "budget", "delete", "--tenant", "default",
             "principal:frank:tokens:day")


def test_daemon_export_since_the_future_is_empty(daemon, tmp_path):
    out = tmp_path / "none.ndjson"
    r = dctl(daemon, "approvals", "export", "--tenant", "default", "-o",
             str(out), "--since", str(int(time.time() * 1000) + 3600_000))
    assert r.returncode == 0, r
    assert out.read_text() == '{"end":{"count":0,"chain":"%s"}}\n' % ("0" * 64)
    r = verify(out)
    assert r.returncode == 0 and r.stdout.startswith("ok: 0 records"), r
