"""palyractl's machine and terminal interfaces (issue 9).

- --json on every command against the real palyrad: stdout parses as JSON
  (one document, or one object a line for lists and streams) with the keys
  and types palyractl(1) documents; on an error stdout stays empty and the
  exit code says which (2 usage, 1 refused, 3 palyrad unreachable).
- `config check`: palyrad -n's FILE:LINE:COL and exit status, -v and --json.
- On a terminal (a pty from Python's pty module): `run` asks before a tool
  whose policy is ask, and the answer goes on the run's stream; the
  progress line of long operations is drawn with \\r on a terminal and
  never reaches a pipe. Without a terminal, an approval request says how to
  decide it and the run waits.
"""
import json
import os
import pty
import select
import subprocess
import threading
import time
from concurrent import futures

import grpc
import pytest

from conftest import (PALYRACTL, Daemon, _require_binaries, free_port, pb,
                      poll)

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
DEADLINE = 30


def clean_env(extra=None):
    e = {k: v for k, v in os.environ.items()
         if "proxy" not in k.lower() and not k.startswith("PALYRA_")}
    e.update(extra or {})
    return e


def ctl(*args, timeout=DEADLINE):
    if not os.access(PALYRACTL, os.X_OK):
        pytest.fail(f"{PALYRACTL} not built", pytrace=False)
    return subprocess.run([PALYRACTL, *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL,
                          env=clean_env())


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    _require_binaries()
    d = Daemon(tmp_path_factory.mktemp("ctl_json"), CONFIG, ("default",))
    d.start()
    yield d
    if not d.stopped:
        d.kill()


def dctl(d, *args, timeout=DEADLINE):
    return ctl("-g", d.grpc_addr, "-u", d.http_url, "-s", d.state, *args,
               timeout=timeout)


def jdoc(r):
    """The one JSON document of a successful --json call."""
    assert r.returncode == 0, r
    lines = r.stdout.splitlines()
    assert len(lines) == 1, r.stdout
    return json.loads(lines[0])


def jlines(r):
    """The objects of a --json list or stream, one a line."""
    assert r.returncode == 0, r
    out = [json.loads(line) for line in r.stdout.splitlines()]
    assert all(isinstance(o, dict) for o in out), out
    return out


def shape(obj, spec):
    """obj has at least the keys of spec, each of its type."""
    assert isinstance(obj, dict), obj
    for key, typ in spec.items():
        assert key in obj, (key, obj)
        assert isinstance(obj[key], typ), (key, obj[key], typ)
        if typ is int:
            assert not isinstance(obj[key], bool), (key, obj)


EVENT_KINDS = {"status", "token", "final", "usage", "error", "note",
               "tool_call", "tool_result", "input", "approval_request",
               "approval_decided", "budget_warning"}
EVENT = {"run_id": str, "seq": int, "timestamp_unix_ms": int,
         "session_id": str}


def check_events(events):
    for ev in events:
        shape(ev, EVENT)
        kinds = set(ev) & EVENT_KINDS
        assert len(kinds) == 1, ev
    seqs = [ev["seq"] for ev in events]
    assert seqs == sorted(seqs), seqs


@pytest.fixture(scope="module")
def a_run(daemon):
    r = dctl(daemon, "--json", "run", "--tenant", "default", "hello")
    events = jlines(r)
    check_events(events)
    assert events[-1]["status"]["status"] == "COMPLETED", events[-1]
    assert "".join(e["token"]["text"] for e in events if "token" in e) \
        .startswith("I am the offline model"), events
    return events[0]["run_id"], events[0]["session_id"]


# ------------------------------------------------------------- --json shapes

def test_health_json(daemon):
    h = jdoc(dctl(daemon, "--json", "health"))
    shape(h, {"status": str, "version": str, "uptime_seconds": int,
              "tenants": int})
    assert h["status"] == "SERVING" and h["tenants"] == 1, h


def test_token_json(daemon):
    r = dctl(daemon, "--json", "token", "create", "--tenant", "default",
             "--principal", "jay")
    t = jdoc(r)
    shape(t, {"token": str, "token_id": str, "tenant": str, "principal": str,
              "role": str, "expires_unix": int})
    listed = jdoc(dctl(daemon, "--json", "token", "list"))
    shape(listed, {"tokens": list})
    mine = [x for x in listed["tokens"] if x["token_id"] == t["token_id"]]
    assert len(mine) == 1, listed
    shape(mine[0], {"token_id": str, "tenant": str, "principal": str,
                    "role": str, "created_unix": int, "revoked": bool})
    rv = jdoc(dctl(daemon, "--json", "token", "revoke", t["token_id"]))
    assert rv == {"token_id": t["token_id"], "revoked": True}, rv


def test_run_json_is_ndjson(a_run):
    assert len(a_run[0]) == 32


def test_runs_json(daemon, a_run):
    run_id, session_id = a_run
    run = jdoc(dctl(daemon, "--json", "runs", "show", "--tenant", "default",
                    run_id))
    shape(run, {"run_id": str, "session_id": str, "principal": str,
                "agent": str, "status": str, "created_unix_ms": int,
                "updated_unix_ms": int, "last_seq": int})
    assert run["status"] == "COMPLETED" and run["session_id"] == session_id
    events = jlines(dctl(daemon, "--json", "runs", "events", "--tenant",
                         "default", run_id))
    check_events(events)
    assert events[-1]["seq"] == run["last_seq"], events


def test_runs_note_and_abort_json(daemon):
    # A run waiting for an approval is still live: it takes a note and
    # can be aborted.
    proc = subprocess.Popen(
        [PALYRACTL, "-g", daemon.grpc_addr, "-u", daemon.http_url, "-s",
         daemon.state, "--json", "run", "--tenant", "default",
         "/tool time.now {}"], stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=clean_env())
    try:
        first = json.loads(proc.stdout.readline())
        run_id = first["run_id"]
        note = jdoc(dctl(daemon, "--json", "runs", "note", "--tenant",
                         "default", run_id, "looked at it"))
        assert note["run_id"] == run_id and isinstance(note["seq"], int)
        ab = jdoc(dctl(daemon, "--json", "runs", "abort", "--tenant",
                       "default", "--reason", "test", run_id))
        assert ab["run_id"] == run_id and isinstance(ab["status"], str), ab
        out, err = proc.communicate(timeout=DEADLINE)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    events = [first] + [json.loads(line) for line in out.splitlines()]
    check_events(events)
    assert events[-1]["status"]["status"] == "CANCELLED", events[-1]
    assert proc.returncode == 1, err


def test_sessions_json(daemon, a_run):
    _, session_id = a_run
    sessions = jlines(dctl(daemon, "--json", "sessions", "list", "--tenant",
                           "default"))
    spec = {"session_id": str, "principal": str, "created_unix_ms": int,
            "run_count": int, "last_run_unix_ms": int, "closed_unix_ms": int}
    for s in sessions:
        shape(s, spec)
    assert session_id in {s["session_id"] for s in sessions}, sessions
    r = dctl(daemon, "--json", "run", "--tenant", "default", "--session-key",
             "json-key", "hi")
    assert r.returncode == 0, r
    s = jdoc(dctl(daemon, "--json", "sessions", "resolve", "--tenant",
                  "default", "json-key"))
    shape(s, spec)
    c = jdoc(dctl(daemon, "--json", "sessions", "cleanup", "--tenant",
                  "default", s["session_id"]))
    assert c == {"session_id": s["session_id"], "runs_removed": 1}, c


def test_agent_json(daemon):
    spec = {"name": str, "system_prompt": str, "providers": list,
            "max_output_tokens": int, "temperature": float, "source": str,
            "max_turns": int, "max_tool_calls": int,
            "max_wall_clock_ms": int}
    agents = jlines(dctl(daemon, "--json", "agent", "list", "--tenant",
                         "default"))
    assert [a["name"] for a in agents] == ["assistant"], agents
    shape(agents[0], spec)
    a = jdoc(dctl(daemon, "--json", "agent", "create", "--tenant", "default",
                  "--provider", "offline", "jsonbot"))
    shape(a, spec)
    assert a["name"] == "jsonbot" and a["providers"] == ["offline"], a
    a = jdoc(dctl(daemon, "--json", "agent", "update", "--tenant", "default",
                  "--temperature", "0.5", "jsonbot"))
    assert a["temperature"] == 0.5, a
    shape(jdoc(dctl(daemon, "--json", "agent", "show", "--tenant", "default",
                    "jsonbot")), spec)
    d = jdoc(dctl(daemon, "--json", "agent", "delete", "--tenant", "default",
                  "jsonbot"))
    assert d == {"name": "jsonbot", "deleted": True}, d


TENANT = {"name": str, "source": str, "workers": int, "running_workers": int,
          "idle_timeout_ms": int, "agents": list}


def test_tenant_reload_status_json(daemon):
    t = jdoc(dctl(daemon, "--json", "tenant", "list"))
    shape(t, {"tenants": list})
    shape(t["tenants"][0], TENANT)
    shape(jdoc(dctl(daemon, "--json", "tenant", "show", "default")), TENANT)
    r = jdoc(dctl(daemon, "--json", "reload"))
    shape(r, {"reloaded": bool, "tenants": list})
    st = jdoc(dctl(daemon, "--json", "status"))
    shape(st, {"processes": list})
    kinds = {p["kind"] for p in st["processes"]}
    assert {"journald", "front", "worker"} <= kinds, kinds
    for p in st["processes"]:
        shape(p, {"kind": str, "pid": int, "state": str, "restarts": int})


def test_journal_json(daemon, a_run):
    v = jdoc(dctl(daemon, "--json", "journal", "verify"))
    shape(v, {"results": list})
    shape(v["results"][0], {"tenant": str, "ok": bool, "events": int,
                            "head_seq": int, "head_hash": str})
    c = jdoc(dctl(daemon, "--json", "journal", "checkpoint"))
    shape(c["checkpoints"][0], {"tenant": str, "chain_seq": int,
                                "written": bool})
    k = jdoc(dctl(daemon, "--json", "journal", "pubkey"))
    shape(k, {"algorithm": str, "public_key": str})
    lines = jlines(dctl(daemon, "--json", "journal", "export", "--tenant",
                        "default"))
    assert lines, "empty export"
    for line in lines:
        shape(line, {"chain_seq": int, "run_id": str, "kind": str,
                     "hash": str})
    b = jdoc(dctl(daemon, "--json", "journal", "backup", "--tenant",
                  "default"))
    shape(b, {"tenant": str, "file": str, "size": int})
    p = jdoc(dctl(daemon, "--json", "journal", "prune", "--tenant",
                  "default", "--older-than", "30d"))
    shape(p, {"tenant": str, "events": int, "runs": int})


def test_approvals_usage_budget_json(daemon, tmp_path):
    # A denied request leaves an approval record behind.
    r = dctl(daemon, "--json", "run", "--tenant", "default", "--deny",
             "/tool time.now {}")
    events = jlines(r)
    check_events(events)
    decided = [e["approval_decided"] for e in events
               if "approval_decided" in e]
    assert decided and decided[0]["decision"] == "deny", events
    approvals = jlines(dctl(daemon, "--json", "approvals", "list",
                            "--tenant", "default", "--state", "denied"))
    assert approvals, approvals
    for a in approvals:
        shape(a, {"approval_id": str, "state": str, "tool_name": str})
        assert a["state"] == "denied", a
    shape(jdoc(dctl(daemon, "--json", "approvals", "show", "--tenant",
                    "default", approvals[0]["approval_id"])),
          {"approval_id": str, "state": str})
    out = tmp_path / "approvals.ndjson"
    r = dctl(daemon, "--json", "approvals", "export", "--tenant", "default",
             "-o", str(out))
    assert r.returncode == 0 and r.stdout == "", r
    v = jdoc(dctl(daemon, "--json", "approvals", "verify-export", str(out)))
    assert v["ok"] is True and v["records"] >= 1, v
    shape(v, {"ok": bool, "records": int, "chain": str})
    u = jdoc(dctl(daemon, "--json", "usage", "--tenant", "default"))
    shape(u, {"rows": list, "total": dict, "timezone": str})
    shape(u["total"], {"input_tokens": int, "output_tokens": int,
                       "calls": int})
    b = jdoc(dctl(daemon, "--json", "budget", "set", "--tenant", "default",
                  "tenant", "tokens", "100000", "per", "day", "soft"))
    shape(b, {"budget_id": str})
    budgets = jlines(dctl(daemon, "--json", "budget", "list", "--tenant",
                          "default"))
    assert b["budget_id"] in {x["budget_id"] for x in budgets}, budgets
    r = dctl(daemon, "--json", "budget", "delete", "--tenant", "default",
             b["budget_id"])
    assert r.returncode == 0 and json.loads(r.stdout), r


# ------------------------------------------------------------- exit codes

@pytest.mark.parametrize("args", [
    ("runs", "show"),
    ("health", "extra"),
    ("no-such-command",),
    ("journal", "export"),
    ("config",),
    ("run", "--approve", "maybe", "x"),
])
def test_usage_errors_exit_2_with_empty_stdout(daemon, args):
    r = dctl(daemon, "--json", *args)
    assert r.returncode == 2, r
    assert r.stdout == "" and r.stderr != "", r


@pytest.mark.parametrize("args", [
    ("runs", "show", "--tenant", "default", "0" * 32),
    ("tenant", "show", "nosuchtenant"),
    ("agent", "show", "--tenant", "default", "nosuchagent"),
    ("approvals", "show", "--tenant", "default", "f" * 32),
])
def test_refused_calls_exit_1_with_empty_stdout(daemon, args):
    r = dctl(daemon, "--json", *args)
    assert r.returncode == 1, r
    assert r.stdout == "" and "palyractl:" in r.stderr, r


@pytest.mark.parametrize("args", [
    ("health",),
    ("tenant", "list"),
    ("journal", "verify"),
    ("runs", "show", "--token", "tok", "0" * 32),
])
def test_unreachable_daemon_exits_3(tmp_path, args):
    port = free_port()
    token = tmp_path / "admin.token"
    token.write_text("x" * 43 + "\n")
    os.chmod(token, 0o600)
    r = ctl("-g", f"127.0.0.1:{port}", "-u", f"http://127.0.0.1:{port}",
            "-s", str(tmp_path), "--json", *args)
    assert r.returncode == 3, r
    assert r.stdout == "" and r.stderr != "", r


# ------------------------------------------------------------- config check

def test_config_check_bad_file(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text('provider "offline" { type offline }\nfrobnicate 3\n')
    for extra in ((), ("--json",)):
        r = ctl(*extra, "config", "check", "-f", str(conf))
        assert r.returncode == 1, r
        assert f"{conf}:2:1:" in r.stderr, r
        assert r.stdout == "", r


def test_config_check_good_file(daemon):
    r = ctl("config", "check", "-f", daemon.conf)
    assert r.returncode == 0 and r.stdout == "", r
    assert "configuration OK" in r.stderr, r
    r = ctl("config", "check", "-v", "-f", daemon.conf)
    assert r.returncode == 0 and 'tool "time.now" ask' in r.stdout, r
    doc = jdoc(ctl("--json", "config", "check", "-f", daemon.conf))
    assert doc == {"file": daemon.conf, "ok": True}, doc
    doc = jdoc(ctl("-v", "--json", "config", "check", "-f", daemon.conf))
    assert "approval-timeout 1m" in doc["config"], doc


def test_config_check_missing_file(tmp_path):
    r = ctl("config", "check", "-f", str(tmp_path / "none.conf"))
    assert r.returncode == 1 and "none.conf" in r.stderr, r
    r = ctl("config", "check", "extra")
    assert r.returncode == 2, r


# ------------------------------------------------------------- terminals

class PtyRun:
    """palyractl with stdin and stderr on a pty (a terminal), stdout on a
    pipe; everything written to the terminal is collected."""

    def __init__(self, args):
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen(
            [PALYRACTL, *args], stdin=slave, stderr=slave,
            stdout=subprocess.PIPE, env=clean_env({"TERM": "dumb"}),
            start_new_session=True)
        os.close(slave)
        self.buf = b""
        self.lock = threading.Lock()
        self.out = b""
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.stdout_reader = threading.Thread(target=self._read_out,
                                              daemon=True)
        self.stdout_reader.start()

    def _read(self):
        while True:
            try:
                ready, _, _ = select.select([self.master], [], [], 0.2)
                if not ready:
                    if self.proc.poll() is not None:
                        return
                    continue
                data = os.read(self.master, 4096)
            except OSError:
                return  # EIO: the terminal's other side is gone
            if not data:
                return
            with self.lock:
                self.buf += data

    def _read_out(self):
        self.out = self.proc.stdout.read()

    def terminal(self):
        with self.lock:
            return self.buf.decode("utf-8", "replace")

    def type(self, text):
        os.write(self.master, text.encode())

    def wait(self, timeout=DEADLINE):
        try:
            rc = self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        self.reader.join(5)
        self.stdout_reader.join(5)
        os.close(self.master)
        return rc


def test_tty_prompt_approves_once(daemon):
    t = PtyRun(["-g", daemon.grpc_addr, "-u", daemon.http_url, "-s",
                daemon.state, "run", "--tenant", "default",
                "/tool time.now {}"])
    try:
        poll(lambda: "[o]nce [s]ession [t]tl [d]eny: " in t.terminal(),
             DEADLINE, what="the approval prompt")
        assert "approve time.now({})? " in t.terminal(), t.terminal()
        assert "decide with" not in t.terminal(), t.terminal()
        t.type("o\n")
    finally:
        rc = t.wait()
    term = t.terminal()
    assert rc == 0, (term, t.out)
    assert "[approved " in term and "scope once" in term, term
    assert "[tool time.now {}]" in term, term
    assert "[result time.now {" in term, term
    assert "The tool time.now returned" in t.out.decode(), t.out


def test_tty_prompt_asks_again_then_denies(daemon):
    t = PtyRun(["-g", daemon.grpc_addr, "-u", daemon.http_url, "-s",
                daemon.state, "run", "--tenant", "default",
                "/tool time.now {}"])
    try:
        poll(lambda: "[d]eny: " in t.terminal(), DEADLINE,
             what="the approval prompt")
        t.type("maybe\n")
        poll(lambda: t.terminal().count("[d]eny: ") == 2, DEADLINE,
             what="the prompt again")
        assert "answer o (once)" in t.terminal(), t.terminal()
        t.type("d\n")
    finally:
        rc = t.wait()
    term = t.terminal()
    assert "[denied " in term, term
    assert "[error time.now " in term, term
    assert rc == 0, (term, t.out)


def test_pipe_run_says_how_to_decide_and_waits(daemon):
    """No terminal and no --approve: the request is shown, the run waits
    for a decision made elsewhere."""
    proc = subprocess.Popen(
        [PALYRACTL, "-g", daemon.grpc_addr, "-u", daemon.http_url, "-s",
         daemon.state, "run", "--tenant", "default", "/tool time.now {}"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env=clean_env())
    try:
        line = ""
        deadline = time.monotonic() + DEADLINE
        while "decide with" not in line and time.monotonic() < deadline:
            line = proc.stderr.readline()
            assert line != "", "palyractl ended before asking"
        assert "palyractl approvals decide " in line, line
        approval_id = line.split("approvals decide ")[1].split()[0]
        assert proc.poll() is None, "the run did not wait"
        r = dctl(daemon, "approvals", "decide", "--tenant", "default",
                 approval_id, "allow")
        assert r.returncode == 0, r
        out, err = proc.communicate(timeout=DEADLINE)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "The tool time.now returned" in out, out


def test_progress_line_on_a_terminal_only(daemon, tmp_path):
    base = ["-g", daemon.grpc_addr, "-u", daemon.http_url, "-s",
            daemon.state]
    t = PtyRun([*base, "journal", "backup", "--tenant", "default"])
    rc = t.wait()
    term = t.terminal()
    assert rc == 0, term
    assert "\rjournal backup: " in term, repr(term)
    assert term.endswith("\r"), repr(term)   # erased at the end
    assert "default: backups/" in t.out.decode(), t.out

    # The same through a pipe, and with --json: no progress line at all.
    for extra in ((), ("--json",)):
        r = subprocess.run([PALYRACTL, *base, *extra, "journal", "backup",
                            "--tenant", "default"], capture_output=True,
                           stdin=subprocess.DEVNULL, env=clean_env(),
                           timeout=DEADLINE)
        assert r.returncode == 0, r
        assert b"\r" not in r.stderr and b"journal backup:" not in r.stderr

    # approvals export then verify-export, on a terminal and in a pipe.
    out = tmp_path / "export.ndjson"
    t = PtyRun([*base, "approvals", "export", "--tenant", "default", "-o",
                str(out)])
    rc = t.wait()
    assert rc == 0, t.terminal()
    assert "\rapprovals export: " in t.terminal(), repr(t.terminal())
    t = PtyRun(["approvals", "verify-export", str(out)])
    rc = t.wait()
    assert rc == 0, t.terminal()
    assert "\rapprovals verify-export: " in t.terminal(), repr(t.terminal())
    assert t.out.decode().startswith("ok: "), t.out
    r = subprocess.run([PALYRACTL, "approvals", "verify-export", str(out)],
                       capture_output=True, stdin=subprocess.DEVNULL,
                       env=clean_env(), timeout=DEADLINE)
    assert r.returncode == 0 and b"\r" not in r.stderr, r

    # journal export to a pipe, stderr on a terminal.
    t = PtyRun([*base, "journal", "export", "--tenant", "default"])
    rc = t.wait()
    assert rc == 0, t.terminal()
    assert "\rjournal export: " in t.terminal(), repr(t.terminal())
    assert all(json.loads(x) for x in t.out.decode().splitlines())


# ------------------------------------------------------------- tool lines

def long_result_server(content):
    """A RunStream that plays a tool call whose result is content."""
    def handler(requests, context):
        next(requests)

        def ev(seq, **kw):
            return pb.RunEvent(run_id="r" * 32, seq=seq, session_id="s" * 32,
                               timestamp_unix_ms=1, **kw)
        yield ev(1, tool_call=pb.ToolCall(id="c1", name="web.get",
                                          arguments_json='{"u":"x"}'))
        yield ev(2, tool_result=pb.ToolResult(id="c1", name="web.get",
                                              content=content))
        yield ev(3, token=pb.ModelToken(text="answer"))
        yield ev(4, status=pb.StatusEvent(
            status=pb.RunStatus.RUN_STATUS_COMPLETED))
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        "palyra.v1.GatewayService", {
            "RunStream": grpc.stream_stream_rpc_method_handler(
                handler,
                request_deserializer=pb.RunStreamRequest.FromString,
                response_serializer=pb.RunEvent.SerializeToString)}),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, f"127.0.0.1:{port}"


def test_tool_lines_on_stderr_result_shortened():
    # Byte 200 is inside the first two-byte character: cut before it.
    content = "x" * 199 + "\u00e9" * 300
    server, addr = long_result_server(content)
    try:
        r = ctl("-g", addr, "run", "--token", "tok", "hi")
        j = ctl("-g", addr, "--json", "run", "--token", "tok", "hi")
    finally:
        server.stop(0)
    assert r.returncode == 0, r
    assert r.stdout == "answer\n", r
    lines = r.stderr.splitlines()
    assert '[tool web.get {"u":"x"}]' in lines, lines
    res = [x for x in lines if x.startswith("[result web.get ")]
    assert len(res) == 1 and res[0].endswith("...]"), lines
    assert res[0] == "[result web.get " + "x" * 199 + "...]", res
    events = [json.loads(x) for x in j.stdout.splitlines()]
    assert events[1]["tool_result"]["content"] == content, events
