"""Run features: session history, idempotency keys, follow-up input, tools.

DESIGN sections 6 and 9 (issue #6). Every run's prompt holds its session's
earlier turns, trimmed to the newest that fit the context budget (the
offline model makes them visible: it answers "/history" with how many it
was given and the oldest one); a start whose idempotency key already names
a run of its session follows that run instead of starting one, also when
two such starts race; RunStreamRequest.input on a live run's stream is the
next user turn of the same run; the offline model's "/tool NAME ARGS" demo
calls a built-in tool (time.now) through the worker's tool seam.
"""
import datetime
import json
import os
import queue
import subprocess
import threading
import time

import grpc
import pytest

from conftest import (PALYRACTL, _blob, _require_binaries, auth_md,
                      event_kind, journal_events, open_journal, pb, poll,
                      Daemon)

CONFIG = """\
state-dir "{state}"
listen grpc 127.0.0.1:{grpc_port}
listen http 127.0.0.1:{http_port}
journal {{ durability normal }}
provider "offline" {{ type offline }}
provider "slow" {{ type offline; token-delay 20ms }}
tenant "default" {{
	agent "assistant" {{ providers "offline" }}
	agent "snail" {{ providers "slow" }}
}}
"""
TENANTS = ("default",)
METHOD = "/palyra.v1.GatewayService/RunStream"
DEADLINE = 20.0
PREFIX = "I am the offline model of palyrad. You said: "
# The history budget of common/limits.h.
HISTORY_MAX_TURNS = 16
# About 50 tokens at 20 ms: the first answer lasts about a second.
SLOW_INPUT = " ".join(f"word{i}" for i in range(50))

S = pb.RunStatus


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    _require_binaries()
    d = Daemon(tmp_path_factory.mktemp("features"), CONFIG, TENANTS)
    d.start()
    yield d
    if not d.stopped:
        d.kill()


@pytest.fixture(scope="module")
def token(daemon):
    return daemon.mint_token("default", "alice", "user")


class Stream(threading.Thread):
    """One RunStream; more requests go with send(); events seen live."""

    def __init__(self, channel, token, start):
        super().__init__(daemon=True)
        self.channel, self.token, self.start_msg = channel, token, start
        self.events = []
        self.code = self.details = None
        self._lock = threading.Lock()
        self._requests = queue.Queue()
        self._done = threading.Event()
        self.first = threading.Event()

    def send(self, *reqs):
        # Together: the client writes them back to back.
        self._requests.put(reqs)

    def run(self):
        def requests():
            yield pb.RunStreamRequest(start=self.start_msg)
            while not self._done.is_set():
                try:
                    reqs = self._requests.get(timeout=0.02)
                except queue.Empty:
                    continue
                yield from reqs

        call = self.channel.stream_stream(
            METHOD, request_serializer=pb.RunStreamRequest.SerializeToString,
            response_deserializer=pb.RunEvent.FromString)
        it = call(requests(), metadata=auth_md(self.token), timeout=DEADLINE)
        try:
            for ev in it:
                with self._lock:
                    self.events.append(ev)
                self.first.set()
            self.code, self.details = it.code(), it.details()
        except grpc.RpcError as e:
            self.code, self.details = e.code(), e.details()
        finally:
            self._done.set()
            self.first.set()

    def finish(self):
        self.join(DEADLINE)
        assert not self.is_alive(), "stream still open"
        return self


def run(channel, token, text, **start):
    s = Stream(channel, token, pb.RunStart(input=text, **start))
    s.start()
    return s.finish()


def finals(evs):
    return [e.final.text for e in evs if event_kind(e) == "final"]


def statuses(evs):
    return [e.status.status for e in evs if event_kind(e) == "status"]


def completed(s):
    assert s.code == grpc.StatusCode.OK, (s.code, s.details)
    assert statuses(s.events)[-1] == S.RUN_STATUS_COMPLETED, s.events
    return s


def journal_runs(d, session_id):
    db = open_journal(d.journal_path("default"))
    try:
        return db.execute(
            "SELECT run_id, idempotency_key FROM runs WHERE session_id = ?",
            (session_id,)).fetchall()
    finally:
        db.close()


def journal_kinds(d, run_id):
    return [r[4] for r in journal_events(d.journal_path("default"), run_id)]


# Session history.

def test_history_counts_the_earlier_turns(daemon, token):
    ch = daemon.channel
    fresh = completed(run(ch, token, "/history", session_key="hist-a"))
    assert finals(fresh.events) == [
        "I was given 0 earlier turns of this session."]
    completed(run(ch, token, "first question", session_key="hist-a"))
    completed(run(ch, token, "second question", session_key="hist-a"))
    s = completed(run(ch, token, "/history", session_key="hist-a"))
    # The first /history run is a turn too: three before this one.
    assert finals(s.events) == [
        'I was given 3 earlier turns of this session. The oldest: '
        '"/history"']
    # Another session sees none of them.
    other = completed(run(ch, token, "/history", session_key="hist-b"))
    assert finals(other.events)[0].startswith("I was given 0 ")


def test_history_keeps_the_newest_turns(daemon, token):
    ch = daemon.channel
    n = HISTORY_MAX_TURNS + 3
    for i in range(n):
        completed(run(ch, token, f"turn-{i}", session_key="hist-many"))
    s = completed(run(ch, token, "/history", session_key="hist-many"))
    assert finals(s.events) == [
        f'I was given {HISTORY_MAX_TURNS} earlier turns of this session. '
        f'The oldest: "turn-{n - HISTORY_MAX_TURNS}"']


def test_history_trimmed_to_the_byte_budget(daemon, token):
    ch = daemon.channel
    # Each turn is about 80 KB (the echo doubles it): one fits 96 KiB.
    completed(run(ch, token, "older " + "x" * 40000, session_key="hist-big"))
    completed(run(ch, token, "newer " + "y" * 40000, session_key="hist-big"))
    s = completed(run(ch, token, "/history", session_key="hist-big"))
    assert finals(s.events) == [
        'I was given 1 earlier turn of this session. The oldest: '
        '"newer ' + "y" * 58 + '"']


# Idempotency keys.

def test_same_key_returns_the_same_run(daemon, token):
    ch = daemon.channel
    a = completed(run(ch, token, "pay once", session_key="idem-a",
                      idempotency_key="order-1"))
    b = completed(run(ch, token, "pay once", session_key="idem-a",
                      idempotency_key="order-1"))
    assert a.events[0].run_id == b.events[0].run_id
    assert [(e.seq, e.SerializeToString()) for e in a.events] == \
        [(e.seq, e.SerializeToString()) for e in b.events]
    assert b.events[0].seq == 1
    sid = a.events[0].session_id
    assert journal_runs(daemon, sid) == [(a.events[0].run_id, "order-1")]
    # GetRun knows the one run; another key starts another run.
    got = pb_stub(ch).GetRun(pb.GetRunRequest(run_id=a.events[0].run_id),
                             metadata=auth_md(token), timeout=10)
    assert got.status == S.RUN_STATUS_COMPLETED and got.session_id == sid
    c = completed(run(ch, token, "pay once", session_key="idem-a",
                      idempotency_key="order-2"))
    assert c.events[0].run_id != a.events[0].run_id
    assert len(journal_runs(daemon, sid)) == 2
    # The key is per session: the same key elsewhere is a new run.
    d = completed(run(ch, token, "pay once", session_key="idem-b",
                      idempotency_key="order-1"))
    assert d.events[0].run_id != a.events[0].run_id


def test_same_key_follows_a_live_run(daemon, token):
    ch = daemon.channel
    first = Stream(ch, token, pb.RunStart(
        input=SLOW_INPUT, agent="snail", session_key="idem-live",
        idempotency_key="k"))
    first.start()
    assert first.first.wait(DEADLINE)
    second = run(ch, token, SLOW_INPUT, agent="snail",
                 session_key="idem-live", idempotency_key="k")
    first.finish()
    completed(first)
    completed(second)
    assert [e.SerializeToString() for e in first.events] == \
        [e.SerializeToString() for e in second.events]


def test_concurrent_starts_with_one_key_start_one_run(daemon, token):
    ch = daemon.channel
    streams = [Stream(ch, token, pb.RunStart(
        input=SLOW_INPUT, agent="snail", session_key="idem-race",
        idempotency_key="race")) for _ in range(6)]
    for s in streams:
        s.start()
    for s in streams:
        completed(s.finish())
    ids = {s.events[0].run_id for s in streams}
    assert len(ids) == 1, ids
    assert journal_runs(daemon, streams[0].events[0].session_id) == \
        [(ids.pop(), "race")]


def pb_stub(ch):
    from palyra.v1 import gateway_pb2_grpc
    return gateway_pb2_grpc.GatewayServiceStub(ch)


# Follow-up input.

def test_two_inputs_give_two_more_answers_in_one_run(daemon, token):
    s = Stream(daemon.channel, token, pb.RunStart(
        input=SLOW_INPUT, agent="snail"))
    s.start()
    assert s.first.wait(DEADLINE)
    s.send(pb.RunStreamRequest(input=pb.Input(text="second question")),
           pb.RunStreamRequest(input=pb.Input(text="third question")))
    completed(s.finish())
    assert finals(s.events) == [PREFIX + SLOW_INPUT,
                                PREFIX + "second question",
                                PREFIX + "third question"]
    assert len({e.run_id for e in s.events}) == 1
    assert statuses(s.events).count(S.RUN_STATUS_COMPLETED) == 1
    inputs = [e.input.text for e in s.events if event_kind(e) == "input"]
    assert inputs == ["second question", "third question"]
    kinds = journal_kinds(daemon, s.events[0].run_id)
    assert kinds.count("input") == 2 and kinds.count("final") == 3
    # Usage counts every turn: the inputs in, all tokens out.
    usage = [e.usage for e in s.events if event_kind(e) == "usage"]
    assert len(usage) == 1 and usage[0].input_tokens == 50 + 2 + 2


def test_followup_turns_are_history_of_later_runs(daemon, token):
    s = Stream(daemon.channel, token, pb.RunStart(
        input=SLOW_INPUT, agent="snail", session_key="hist-input"))
    s.start()
    assert s.first.wait(DEADLINE)
    s.send(pb.RunStreamRequest(input=pb.Input(text="and then")))
    completed(s.finish())
    h = completed(run(daemon.channel, token, "/history",
                      session_key="hist-input"))
    assert finals(h.events)[0].startswith(
        'I was given 2 earlier turns of this session. The oldest: "word0 ')


def test_input_after_the_run_ended_fails(daemon, token):
    s = Stream(daemon.channel, token, pb.RunStart(
        input=SLOW_INPUT, agent="snail"))
    s.start()
    assert s.first.wait(DEADLINE)
    s.send(pb.RunStreamRequest(cancel=pb.Cancel(reason="stop")),
           pb.RunStreamRequest(input=pb.Input(text="too late")))
    s.finish()
    # The client's library may write the input before or after the run's
    # CANCELLED status closed the stream: either the stream is refused
    # with FAILED_PRECONDITION, or it ended OK with CANCELLED before the
    # input came. Never is the late input taken.
    if s.code == grpc.StatusCode.OK:
        assert statuses(s.events)[-1] == S.RUN_STATUS_CANCELLED, s.events
    else:
        assert s.code == grpc.StatusCode.FAILED_PRECONDITION, \
            (s.code, s.events)
        assert "ended" in s.details
    run_id = s.events[0].run_id
    kinds = poll(lambda: (lambda k: k if k and k[-1] == "status" else None)(
        journal_kinds(daemon, run_id)), DEADLINE, what="the run's end")
    assert "input" not in kinds, kinds


def test_input_on_a_reattached_stream_fails(daemon, token):
    s = Stream(daemon.channel, token, pb.RunStart(
        input=SLOW_INPUT, agent="snail"))
    s.start()
    assert s.first.wait(DEADLINE)
    r = Stream(daemon.channel, token, pb.RunStart(run_id=s.events[0].run_id))
    r.start()
    assert r.first.wait(DEADLINE)
    r.send(pb.RunStreamRequest(input=pb.Input(text="not mine")))
    r.finish()
    assert r.code == grpc.StatusCode.FAILED_PRECONDITION, r.details
    assert "reattached" in r.details
    completed(s.finish())
    assert not [e for e in s.events if event_kind(e) == "input"]


def test_too_much_queued_input_is_refused(daemon, token):
    # A first answer of about 3 s: the inputs wait behind it.
    s = Stream(daemon.channel, token, pb.RunStart(
        input=SLOW_INPUT * 3, agent="snail"))
    s.start()
    assert s.first.wait(DEADLINE)
    s.send(*[pb.RunStreamRequest(input=pb.Input(text=f"more {i}"))
             for i in range(9)])
    s.finish()
    assert s.code == grpc.StatusCode.RESOURCE_EXHAUSTED, s.details
    # The run itself goes on with the eight it took.
    db_kinds = []
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        db_kinds = journal_kinds(daemon, s.events[0].run_id)
        if db_kinds and db_kinds[-1] == "status" and \
                db_kinds.count("final") == 9:
            break
        time.sleep(0.05)
    assert db_kinds.count("input") == 8 and db_kinds.count("final") == 9


def test_empty_input_is_invalid(daemon, token):
    s = Stream(daemon.channel, token, pb.RunStart(
        input=SLOW_INPUT, agent="snail"))
    s.start()
    assert s.first.wait(DEADLINE)
    s.send(pb.RunStreamRequest(input=pb.Input(text="")))
    s.finish()
    assert s.code == grpc.StatusCode.INVALID_ARGUMENT, s.details


# The offline tool demo.

def tool_events(evs):
    calls = [e.tool_call for e in evs if event_kind(e) == "tool_call"]
    results = [e.tool_result for e in evs if event_kind(e) == "tool_result"]
    return calls, results


def test_offline_tool_demo_time_now(daemon, token):
    before = time.time()
    s = completed(run(daemon.channel, token,
                      '/tool time.now {"timezone": "UTC"}'))
    after = time.time()
    calls, results = tool_events(s.events)
    assert [(c.name, json.loads(c.arguments_json)) for c in calls] == \
        [("time.now", {"timezone": "UTC"})]
    assert len(results) == 1 and not results[0].is_error
    assert results[0].id == calls[0].id and results[0].name == "time.now"
    got = json.loads(results[0].content)
    t = datetime.datetime.fromisoformat(got["utc"].replace("Z", "+00:00"))
    assert t.tzinfo is not None and t.utcoffset().total_seconds() == 0
    assert before - 1 <= t.timestamp() <= after + 1
    assert abs(got["unix_ms"] / 1000 - t.timestamp()) < 0.002
    kinds = [event_kind(e) for e in s.events]
    assert kinds.index("tool_call") < kinds.index("tool_result") < \
        kinds.index("final")
    assert finals(s.events) == [
        "I am the offline model of palyrad. The tool time.now returned: " +
        results[0].content]
    jk = journal_kinds(daemon, s.events[0].run_id)
    assert jk.count("tool_call") == 1 and jk.count("tool_result") == 1


def test_offline_tool_demo_errors_are_results(daemon, token):
    s = completed(run(daemon.channel, token, "/tool no.such.tool {}"))
    calls, results = tool_events(s.events)
    assert [c.name for c in calls] == ["no.such.tool"]
    assert results[0].is_error
    assert results[0].content == "unknown tool no.such.tool"
    assert finals(s.events) == [
        "I am the offline model of palyrad. The tool no.such.tool failed: "
        "unknown tool no.such.tool"]
    bad = completed(run(daemon.channel, token,
                        '/tool time.now {"timezone": "Europe/Paris"}'))
    _, results = tool_events(bad.events)
    assert results[0].is_error and "timezone" in results[0].content
    notjson = completed(run(daemon.channel, token, "/tool time.now {oops"))
    _, results = tool_events(notjson.events)
    assert results[0].is_error and "not valid JSON" in results[0].content
    deep = completed(run(daemon.channel, token,
                         "/tool time.now " + "[" * 40 + "]" * 40))
    _, results = tool_events(deep.events)
    assert results[0].is_error and "nested" in results[0].content


# palyractl run.

def ctl(daemon, *args, env_token=None):
    env = dict(os.environ)
    if env_token is not None:
        env["PALYRA_TOKEN"] = env_token
    return subprocess.run(
        [PALYRACTL, "-g", daemon.grpc_addr, *args], capture_output=True,
        text=True, timeout=DEADLINE, env=env)


def test_palyractl_run_shows_tools_and_usage(daemon, token):
    r = ctl(daemon, "run", "--agent", "assistant", "/tool time.now",
            env_token=token)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(
        "I am the offline model of palyrad. The tool time.now returned: {")
    lines = r.stderr.splitlines()
    assert "[tool time.now {}]" in lines, r.stderr
    assert any(line.startswith('[result time.now {"utc":"')
               for line in lines), r.stderr
    assert any(line.startswith("[usage] input ") and
               "provider offline" in line for line in lines), r.stderr
    unknown = ctl(daemon, "run", "--agent", "nobody", "hi", env_token=token)
    assert unknown.returncode == 1 and "NOT_FOUND" in unknown.stderr


def test_palyractl_run_idempotency_key_and_json(daemon, token):
    args = ["--json", "run", "--session-key", "ctl-idem",
            "--idempotency-key", "ctl-1", "hello there"]
    a = ctl(daemon, *args, env_token=token)
    b = ctl(daemon, *args, env_token=token)
    assert a.returncode == 0 and b.returncode == 0, (a.stderr, b.stderr)
    ea = [json.loads(line) for line in a.stdout.splitlines()]
    eb = [json.loads(line) for line in b.stdout.splitlines()]
    assert ea == eb and ea[0]["run_id"]
    assert ea[-1]["status"]["status"] == "COMPLETED"
    t = ctl(daemon, "--json", "run", "/tool time.now", env_token=token)
    evs = [json.loads(line) for line in t.stdout.splitlines()]
    assert [e["tool_call"]["name"] for e in evs if "tool_call" in e] == \
        ["time.now"]
    assert [e["tool_result"]["is_error"] for e in evs
            if "tool_result" in e] == [False]
    bad = ctl(daemon, "run", "--attach", "abc", "--idempotency-key", "x",
              env_token=token)
    assert bad.returncode == 2 and "--idempotency-key" in bad.stderr
