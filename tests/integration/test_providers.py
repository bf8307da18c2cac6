"""palyrad's network model providers against a scripted fake provider.

tests/integration/fakeprov.py plays OpenAI (Chat Completions streaming) and
Anthropic (Messages streaming) on a loopback port; each provider block of
the configuration below points at it under its own path prefix, so that
one fake server is many upstreams and its log tells them apart. The user's
input ("fp:SCENARIO key=value ...") picks what the fake answers. Every test
asserts what a gRPC client of RunStream sees, and what the fake server saw
of palyrad's requests (headers, bodies, timing, an early close).
"""
import base64
import json
import os
import queue
import re
import secrets
import subprocess
import threading
import time
import uuid

import grpc
import pytest

from conftest import (PALYRACTL, Daemon, _require_binaries, auth_md,
                      event_kind, free_port, http_request, pb, poll)
import fakeprov

S = pb.RunStatus
TERMINAL = {S.RUN_STATUS_COMPLETED, S.RUN_STATUS_FAILED,
            S.RUN_STATUS_CANCELLED, S.RUN_STATUS_INTERRUPTED}
METHOD = "/palyra.v1.GatewayService/RunStream"
DEADLINE = 30.0
SYSTEM_PROMPT = "You are a test agent."
FAKE_KEY = "sk-fake-" + secrets.token_hex(16)

# Timeouts of every fake provider: idle 1s is what test_idle_timeout hits.
T = "timeout connect 2s first-byte 5s idle 1s total 30s; max-concurrent 200"

CONFIG = """\
state-dir "{{state}}"
listen grpc 127.0.0.1:{{grpc_port}}
listen http 127.0.0.1:{{http_port}}
journal {{{{ durability normal }}}}
provider "offline" {{{{ type offline }}}}
provider "fake" {{{{ type openai; base-url "@fake"; api-key env:FAKE_KEY; model "m"; @T }}}}
provider "anth" {{{{ type anthropic; base-url "@anth"; api-key env:FAKE_KEY; model "am"; @T }}}}
provider "compat" {{{{ type openai-compatible; base-url "@compat"; api-key env:FAKE_KEY; model "cm"; @T }}}}
provider "rl" {{{{ type openai; base-url "@rl"; api-key env:FAKE_KEY; model "m"; @T }}}}
provider "flaky" {{{{ type openai; base-url "@flaky"; api-key env:FAKE_KEY; model "m"; @T }}}}
provider "good" {{{{ type anthropic; base-url "@good"; api-key env:FAKE_KEY; model "gm"; @T }}}}
provider "stall" {{{{ type openai; base-url "@stall"; api-key env:FAKE_KEY; model "m"; @T }}}}
provider "astall" {{{{ type anthropic; base-url "@astall"; api-key env:FAKE_KEY; model "am"; @T }}}}
provider "bad1" {{{{ type openai; base-url "@bad1"; api-key env:FAKE_KEY; model "m"; @T }}}}
provider "bad2" {{{{ type openai; base-url "@bad2"; api-key env:FAKE_KEY; model "m"; @T }}}}
provider "bad3" {{{{ type openai; base-url "@bad3"; api-key env:FAKE_KEY; model "m"; @T }}}}
provider "bad4" {{{{ type openai; base-url "@bad4"; api-key env:FAKE_KEY; model "m"; @T }}}}
provider "abad" {{{{ type anthropic; base-url "@abad"; api-key env:FAKE_KEY; model "am"; @T }}}}
provider "aerr" {{{{ type anthropic; base-url "@aerr"; api-key env:FAKE_KEY; model "am"; @T }}}}
provider "fb" {{{{ type openai; base-url "@fb"; api-key env:FAKE_KEY; model "m"; timeout connect 2s first-byte 1s idle 1s total 30s }}}}
provider "dead" {{{{ type openai; base-url "@dead"; api-key env:FAKE_KEY; model "m"; @T }}}}
provider "cb" {{{{ type openai; base-url "@cb"; api-key env:FAKE_KEY; model "m"; @T }}}}
provider "slowp" {{{{ type openai; base-url "@slowp"; api-key env:FAKE_KEY; model "m"; @T }}}}
tenant "default" {{{{
	workers 1
	agent "oa" {{{{ providers "fake"; system-prompt "@SYS" }}}}
	agent "an" {{{{ providers "anth"; system-prompt "@SYS" }}}}
	agent "cp" {{{{ providers "compat"; system-prompt "@SYS" }}}}
	agent "rl" {{{{ providers "rl" }}}}
	agent "fo" {{{{ providers "flaky" "good" }}}}
	agent "st" {{{{ providers "stall" }}}}
	agent "ast" {{{{ providers "astall" }}}}
	agent "bad1" {{{{ providers "bad1" }}}}
	agent "bad2" {{{{ providers "bad2" }}}}
	agent "bad3" {{{{ providers "bad3" }}}}
	agent "bad4" {{{{ providers "bad4" }}}}
	agent "abad" {{{{ providers "abad" }}}}
	agent "aerr" {{{{ providers "aerr" }}}}
	agent "fb" {{{{ providers "fb" }}}}
	agent "dd" {{{{ providers "dead" "good" }}}}
	agent "cb" {{{{ providers "cb" }}}}
	agent "cbo" {{{{ providers "cb" "good" }}}}
	agent "cx" {{{{ providers "slowp" }}}}
	agent "tl" {{{{ providers "fake"; tool "time.now" allow }}}}
	agent "atl" {{{{ providers "anth"; tool "time.now" allow }}}}
}}}}
"""
UPSTREAMS = ("fake", "anth", "compat", "rl", "flaky", "good", "stall",
             "astall", "bad1", "bad2", "bad3", "bad4", "abad", "aerr", "slowp",
             "fb", "cb")
PROVIDER_OF = {"oa": ("fake", "m", "openai"), "an": ("anth", "am", "anthropic"),
               "cp": ("compat", "cm", "openai")}


def make_config(fp):
    s = CONFIG.replace("@T", T).replace("@SYS", SYSTEM_PROMPT)
    for u in UPSTREAMS:
        # Anthropic's base URL is the host (its paths start with /v1).
        base = fp.url(u)
        s = s.replace(f'"@{u}"', f'"{base}"')
    # Nothing listens there: every connect is refused.
    s = s.replace('"@dead"', f'"http://127.0.0.1:{free_port()}/dead/v1"')
    # One level of braces is for Daemon's .format(), one for ours here.
    return s.format()


@pytest.fixture(scope="module")
def fp():
    srv = fakeprov.FakeProvider().start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory, fp):
    _require_binaries()
    old = os.environ.get("FAKE_KEY")
    os.environ["FAKE_KEY"] = FAKE_KEY
    d = Daemon(tmp_path_factory.mktemp("prov"), make_config(fp), ("default",))
    try:
        d.start()
        yield d
    finally:
        if not d.stopped:
            d.kill()
        if old is None:
            os.environ.pop("FAKE_KEY", None)
        else:
            os.environ["FAKE_KEY"] = old


@pytest.fixture(scope="module")
def tok(daemon):
    return daemon.mint_token("default", "alice")


# ---------------------------------------------------------------- clients

class Stream(threading.Thread):
    """One RunStream in a thread; every event with its monotonic receive
    time. send() adds requests (a Cancel) to the open request stream."""

    def __init__(self, channel, token, agent, text, timeout=DEADLINE):
        super().__init__(daemon=True)
        self.channel, self.token, self.timeout = channel, token, timeout
        self.start_msg = pb.RunStart(agent=agent, input=text)
        self.events, self.times = [], []
        self.code = self.details = None
        self._lock = threading.Lock()
        self._requests = queue.Queue()
        self._done = threading.Event()
        self.t0 = None

    def send(self, req):
        self._requests.put(req)

    def run(self):
        def requests():
            yield pb.RunStreamRequest(start=self.start_msg)
            while not self._done.is_set():
                try:
                    yield self._requests.get(timeout=0.02)
                except queue.Empty:
                    continue

        call = self.channel.stream_stream(
            METHOD, request_serializer=pb.RunStreamRequest.SerializeToString,
            response_deserializer=pb.RunEvent.FromString)
        self.t0 = time.monotonic()
        it = call(requests(), metadata=auth_md(self.token), timeout=self.timeout)
        try:
            for ev in it:
                t = time.monotonic()
                with self._lock:
                    self.events.append(ev)
                    self.times.append(t)
                if event_kind(ev) == "status" and ev.status.status in TERMINAL:
                    break
            self._done.set()
            for ev in it:      # drain to the end of the call
                pass
            self.code, self.details = it.code(), it.details()
        except grpc.RpcError as e:
            self.code, self.details = e.code(), e.details()
        finally:
            self._done.set()

    def snapshot(self):
        with self._lock:
            return list(self.events), list(self.times)

    def finish(self, timeout=DEADLINE + 5):
        self.join(timeout)
        assert not self.is_alive(), f"RunStream still open after {timeout}s"
        return self

    # -- views

    def kinds(self):
        return [event_kind(ev) for ev in self.events]

    def of(self, kind):
        return [ev for ev in self.events if event_kind(ev) == kind]

    def tokens(self):
        return "".join(ev.token.text for ev in self.of("token"))

    def final(self):
        f = self.of("final")
        return f[-1].final.text if f else None

    def terminal(self):
        st = [ev.status for ev in self.of("status") if ev.status.status in TERMINAL]
        return st[-1] if st else None

    def __repr__(self):
        return (f"Stream(code={self.code}, details={self.details!r}, "
                f"events={[str(e).replace(chr(10), ' ') for e in self.events]})")


def run(ch, token, agent, text, timeout=DEADLINE):
    return start(ch, token, agent, text, timeout).finish()


def start(ch, token, agent, text, timeout=DEADLINE):
    s = Stream(ch, token, agent, text, timeout)
    s.start()
    return s


def check_common(s):
    """What every run shows: one call that ended OK, seq 1..n, one run id,
    ACCEPTED first and exactly one terminal status, last."""
    assert s.code == grpc.StatusCode.OK, s
    evs = s.events
    assert evs, s
    assert [ev.seq for ev in evs] == list(range(1, len(evs) + 1)), s
    assert len({ev.run_id for ev in evs}) == 1, s
    assert event_kind(evs[0]) == "status" and \
        evs[0].status.status == S.RUN_STATUS_ACCEPTED, s
    n_term = sum(1 for ev in s.of("status") if ev.status.status in TERMINAL)
    assert n_term == 1, s
    assert event_kind(evs[-1]) == "status" and evs[-1].status.status in TERMINAL, s


def check_completed(s, text=None):
    check_common(s)
    assert s.terminal().status == S.RUN_STATUS_COMPLETED, s
    final = s.final()
    assert final is not None, f"no final message: {s}"
    assert s.tokens() == final, f"tokens {s.tokens()!r} != final {final!r}"
    if text is not None:
        assert final == text, f"final {final!r}, expected {text!r}"
    kinds = s.kinds()
    assert kinds.index("final") < kinds.index("usage") < len(kinds) - 1, kinds
    return final


def check_failed(s, pattern, what):
    check_common(s)
    st = s.terminal()
    assert st.status == S.RUN_STATUS_FAILED, \
        f"{what}: expected FAILED, got {S.Name(st.status)} ({st.reason!r}): {s}"
    assert st.reason, f"{what}: FAILED without a reason: {s}"
    assert re.search(pattern, st.reason, re.I), \
        f"{what}: reason {st.reason!r} does not match /{pattern}/"
    assert FAKE_KEY not in st.reason
    return st.reason


def texts(n):
    return "".join(f"t{i}" if i == 0 else f" t{i}" for i in range(n))


def tag():
    return uuid.uuid4().hex[:12]


def worker_process(d):
    st, body = http_request(d, "GET", "/admin/v1/processes", token=d.admin_token)
    assert st == 200, (st, body)
    ws = [p for p in body["processes"]
          if p["kind"] == "worker" and p["tenant"] == "default"]
    assert len(ws) == 1, body
    return ws[0]


# ---------------------------------------------------------------- streaming

@pytest.mark.parametrize("agent,extra", [
    ("oa", ""), ("an", ""), ("cp", ""), ("oa", " crlf=1"), ("an", " crlf=1")])
def test_text_streaming(daemon, tok, fp, agent, extra):
    k = tag()
    s = run(daemon.channel, tok, agent, f"fp:text n=6 key={k}{extra}")
    check_completed(s, texts(6))
    assert len(s.of("token")) >= 2, f"the reply was not streamed: {s}"
    upstream, model, api = PROVIDER_OF[agent]
    (req,) = fp.entries(tag=k)
    assert req.upstream == upstream and req.method == "POST"
    assert req.body["model"] == model
    assert req.body.get("stream") is True, req.body
    if api == "openai":
        assert req.path == f"/{upstream}/v1/chat/completions", req.path
        assert req.headers.get("authorization") == f"Bearer {FAKE_KEY}", \
            "the OpenAI request does not carry the configured key"
        msgs = req.body["messages"]
        assert msgs[0] == {"role": "system", "content": SYSTEM_PROMPT} or \
            (msgs[0]["role"] == "system" and SYSTEM_PROMPT in json.dumps(msgs[0])), msgs
        assert msgs[-1]["role"] == "user" and k in json.dumps(msgs[-1]), msgs
    else:
        assert req.path.endswith("/messages"), req.path
        assert req.headers.get("x-api-key") == FAKE_KEY, \
            "the Anthropic request does not carry the configured key in x-api-key"
        assert req.headers.get("anthropic-version"), req.headers
        # The Messages API takes the system prompt at top level, and
        # max_tokens is required.
        assert SYSTEM_PROMPT in json.dumps(req.body.get("system")), req.body
        assert all(m.get("role") in ("user", "assistant")
                   for m in req.body["messages"]), req.body["messages"]
        assert isinstance(req.body.get("max_tokens"), int) and \
            req.body["max_tokens"] > 0, req.body
    assert req.completed and not req.closed_by_peer


@pytest.mark.parametrize("agent", ["oa", "an"])
def test_split_chunks_and_utf8(daemon, tok, fp, agent):
    """Every data line arrives in pieces cut mid-line and inside a UTF-8
    sequence, each piece a socket write of its own after a pause."""
    k = tag()
    s = run(daemon.channel, tok, agent, f"fp:utf8 key={k}")
    check_completed(s, "".join(fakeprov.UTF8_TOKENS))
    for ev in s.of("token"):
        assert "\ufffd" not in ev.token.text, f"a token was cut mid-character: {s}"
    assert len(fp.entries(tag=k)) == 1


@pytest.mark.parametrize("agent", ["oa", "an"])
def test_keepalives_ignored_and_keep_the_stream_alive(daemon, tok, fp, agent):
    """Keep-alives before every token, and for 1.6 s (idle timeout 1 s)
    before the first: they keep the stream alive and never show."""
    k = tag()
    s = run(daemon.channel, tok, agent, f"fp:text n=4 ka=1 kawait=1.6 key={k}")
    check_completed(s, texts(4))
    (req,) = fp.entries(tag=k)
    assert sum(1 for x in req.sent if x[1] == "keepalive") >= 6


def test_true_streaming(daemon, tok, fp):
    """With 300 ms between tokens at the provider, each token reaches the
    client before the provider sent the next."""
    k = tag()
    n = 5
    s = run(daemon.channel, tok, "oa", f"fp:text n={n} gap=0.3 key={k}")
    check_completed(s, texts(n))
    (req,) = fp.entries(tag=k)
    sent = [(t, txt) for t, kind, txt in req.sent if kind == "token"]
    assert len(sent) == n
    # The client's receive time of the end of each provider token.
    got, acc, recv = 0, "", []
    for ev, t in zip(s.events, s.times):
        if event_kind(ev) != "token":
            continue
        acc += ev.token.text
        while got < n and len(acc) >= len(texts(got + 1)):
            recv.append(t)
            got += 1
    assert got == n, (acc, s)
    for i in range(n - 1):
        assert recv[i] < sent[i + 1][0], \
            (f"token {i} reached the client {recv[i] - sent[i][0]:.3f}s after "
             f"the provider sent it, after the provider sent token {i + 1}")


# ---------------------------------------------------------------- tools and usage

@pytest.mark.parametrize("agent", ["tl", "atl"])
def test_tool_call_turn(daemon, tok, fp, agent):
    k = tag()
    s = run(daemon.channel, tok, agent, f"fp:tool key={k}")
    check_common(s)
    assert s.terminal().status == S.RUN_STATUS_COMPLETED, s
    kinds = s.kinds()
    assert "tool_call" in kinds and "tool_result" in kinds, kinds
    i_call, i_res = kinds.index("tool_call"), kinds.index("tool_result")
    i_final = kinds.index("final")
    assert i_call < i_res < i_final, kinds
    call = s.events[i_call].tool_call
    res = s.events[i_res].tool_result
    assert call.name == "time.now", call
    assert call.id, call
    assert json.loads(call.arguments_json or "{}") == {}, call
    assert res.id == call.id and res.name == "time.now", (call, res)
    assert not res.is_error and res.content, res
    assert s.final() == f"It is now: {res.content}", s
    reqs = fp.entries(tag=k)
    assert len(reqs) == 2, [r.as_dict() for r in reqs]
    first, second = reqs
    assert first.status == 200 and first.tool_result is None
    assert fakeprov._declared_tool(first.api, first.body) is not None, \
        f"the first request offers no time.now tool: {first.body.get('tools')}"
    assert second.tool_result is not None, \
        f"the second request has no tool result message: {second.body}"
    want_id = (f"call_fake{first.seq}" if first.api == "openai"
               else f"toolu_fake{first.seq}")
    assert second.tool_result[0] == want_id, second.tool_result
    assert second.tool_result[1] == res.content, (second.tool_result, res)


@pytest.mark.parametrize("agent", ["oa", "an"])
def test_usage_from_provider(daemon, tok, fp, agent):
    k = tag()
    s = run(daemon.channel, tok, agent, f"fp:text n=3 p=123 c=45 key={k}")
    check_completed(s, texts(3))
    (u,) = [ev.usage for ev in s.of("usage")]
    upstream, model, api = PROVIDER_OF[agent]
    assert (u.input_tokens, u.output_tokens) == (123, 45), u
    assert u.provider == upstream and u.model == model, u
    (req,) = fp.entries(tag=k)
    if api == "openai":
        assert (req.body.get("stream_options") or {}).get("include_usage") is True, \
            f"the OpenAI request does not ask for the usage chunk: {req.body}"


# ---------------------------------------------------------------- retries, failover

def test_429_retry_after_then_success(daemon, tok, fp):
    k = tag()
    s = run(daemon.channel, tok, "rl", f"fp:ratelimit key={k} ra=1")
    check_completed(s, texts(3))
    reqs = fp.entries(tag=k)
    assert [r.status for r in reqs] == [429, 200], [r.status for r in reqs]
    gap = reqs[1].t_start - reqs[0].t_end
    assert gap >= 0.98, f"retried {gap:.3f}s after a 429 with Retry-After: 1"
    assert gap < 6.0, f"retried only {gap:.3f}s after a Retry-After: 1"


def test_500_fails_over_to_the_next_provider(daemon, tok, fp):
    k = tag()
    t0 = time.monotonic()
    s = run(daemon.channel, tok, "fo", f"fp:fail status=500 on=flaky key={k}")
    check_completed(s, "from good")
    reqs = fp.entries(tag=k)
    ups = [r.upstream for r in reqs]
    assert ups[-1] == "good" and ups.count("good") == 1, ups
    assert set(ups[:-1]) == {"flaky"}, ups
    assert all(r.status == 500 for r in reqs[:-1]), [r.status for r in reqs]
    assert time.monotonic() - t0 < 20
    (u,) = [ev.usage for ev in s.of("usage")]
    assert u.provider == "good" and u.model == "gm", u


def test_first_byte_timeout_is_retried(daemon, tok, fp):
    """No response head within first-byte 1s: retried (nothing was relayed
    yet), then FAILED naming the timeout."""
    k = tag()
    t0 = time.monotonic()
    s = run(daemon.channel, tok, "fb", f"fp:slowhead delay=3 key={k}")
    check_failed(s, r"first.byte", "no response head")
    assert s.tokens() == "", s
    reqs = fp.entries(tag=k)
    assert len(reqs) >= 2, f"a first-byte timeout was not retried: {len(reqs)}"
    for r in reqs:
        fp.wait(lambda: r.t_end is not None, 5.0, "the request to end")
        assert r.closed_by_peer and r.t_closed - r.t_start < 2.5, \
            "the timed-out request was not closed after about 1 s"
    assert time.monotonic() - t0 < 20


def test_connect_refused_fails_over(daemon, tok, fp):
    k = tag()
    s = run(daemon.channel, tok, "dd", f"fp:fail on=none key={k}")
    check_completed(s, "from good")
    assert [r.upstream for r in fp.entries(tag=k)] == ["good"]


def test_circuit_breaker_opens_and_skips_the_provider(daemon, tok, fp):
    """Consecutive failures (5, common/limits.h) open the provider's
    breaker: then a run fails fast without a request to it, and an agent
    with a second provider goes straight there."""
    k = tag()
    opened = None
    for i in range(6):
        before = len(fp.entries(upstream="cb"))
        t0 = time.monotonic()
        s = run(daemon.channel, tok, "cb", f"fp:fail status=503 on=cb key={k}")
        check_failed(s, r".", "503")
        if len(fp.entries(upstream="cb")) == before:
            opened = (i, s.terminal().reason, time.monotonic() - t0, before)
            break
    assert opened is not None, \
        f"the breaker never opened after {len(fp.entries(upstream='cb'))} failures"
    i, reason, took, failures = opened
    assert failures >= 5, f"the breaker opened after only {failures} failures"
    assert re.search(r"circuit|breaker", reason, re.I), reason
    assert took < 1.0, f"a run on an open breaker took {took:.2f}s"
    k2 = tag()
    n_cb = len(fp.entries(upstream="cb"))
    s = run(daemon.channel, tok, "cbo", f"fp:fail status=503 on=cb key={k2}")
    check_completed(s, "from good")
    assert [r.upstream for r in fp.entries(tag=k2)] == ["good"]
    assert len(fp.entries(upstream="cb")) == n_cb


# ---------------------------------------------------------------- failures

@pytest.mark.parametrize("agent", ["st", "ast"])
def test_idle_timeout(daemon, tok, fp, agent):
    """Two tokens, then silence: the 1 s idle timeout fails the run."""
    k = tag()
    s = run(daemon.channel, tok, agent, f"fp:stall n=2 hold=8 key={k}")
    reason = check_failed(s, r"idle", "stalled stream")
    assert s.tokens() == texts(2), s
    reqs = fp.entries(tag=k)
    assert len(reqs) == 1, f"a stream that already produced tokens was retried: {len(reqs)}"
    req = reqs[0]
    last_tok = [t for t, kind, _ in req.sent if kind == "token"][-1]
    t_failed = s.times[-1]
    assert 0.9 <= t_failed - last_tok <= 3.5, \
        f"FAILED ({reason!r}) {t_failed - last_tok:.2f}s after the last byte (idle 1s)"
    fp.wait(lambda: req.t_end is not None, 3.0, "the stalled request to end")
    assert req.closed_by_peer, "palyrad did not close the stalled connection"
    assert req.t_closed - last_tok < 3.5


@pytest.mark.parametrize("agent,scenario,pattern", [
    ("bad1", "badsse", r"sse|event|stream|malformed|invalid|nul"),
    ("bad2", "badjson", r"json"),
    ("abad", "badjson", r"json"),
    ("bad3", "cut", r"end|truncat|incomplete|clos|eof|short|early"),
    ("bad4", "huge", r"large|size|long|exceed|big|limit"),
])
def test_malformed_stream_fails_the_run_only(daemon, tok, fp, agent, scenario,
                                             pattern):
    before = worker_process(daemon) if daemon.pids_of("palyra-worker") else None
    k = tag()
    s = run(daemon.channel, tok, agent, f"fp:{scenario} n=1 key={k}")
    reason = check_failed(s, pattern, f"{scenario} on {agent}")
    assert "idle" not in reason.lower(), \
        f"{scenario}: noticed only by the idle timeout: {reason!r}"
    assert s.tokens() == "t0", s
    reqs = fp.entries(tag=k)
    assert len(reqs) == 1, f"retried after a token was relayed: {len(reqs)}"
    if scenario != "cut":
        # The fake holds the connection 5 s after the bad line.
        fp.wait(lambda: reqs[0].t_end is not None, 6.0, "the request to end")
        assert reqs[0].closed_by_peer, "palyrad kept reading a broken stream"
        bad = [t for t, kind, _ in reqs[0].sent if kind == "malformed"][0]
        assert reqs[0].t_closed - bad < 1.0
    after = worker_process(daemon)
    if before is not None:
        assert after["pid"] == before["pid"], (before, after)
        assert after["restarts"] == before["restarts"], (before, after)
    k2 = tag()
    s2 = run(daemon.channel, tok, "oa", f"fp:text n=2 key={k2}")
    check_completed(s2, texts(2))
    assert worker_process(daemon)["pid"] == after["pid"]


def test_anthropic_error_event(daemon, tok, fp):
    k = tag()
    s = run(daemon.channel, tok, "aerr", f"fp:aerror n=1 key={k}")
    check_failed(s, r"overloaded", "anthropic error event")
    assert s.tokens() == "t0", s


# ---------------------------------------------------------------- cancel

@pytest.mark.parametrize("how", ["cancel", "abort"])
def test_cancel_mid_stream_closes_the_transfer(daemon, tok, fp, how):
    k = tag()
    ch = daemon.new_channel()
    try:
        s = start(ch, tok, "cx", f"fp:text n=400 gap=0.05 key={k}")
        poll(lambda: len(s.snapshot()[0]) and
             sum(1 for ev in s.snapshot()[0] if event_kind(ev) == "token") >= 3,
             10.0, what="three tokens")
        t_cancel = time.monotonic()
        if how == "cancel":
            s.send(pb.RunStreamRequest(cancel=pb.Cancel(reason="user stop")))
        else:
            call = ch.unary_unary(
                "/palyra.v1.GatewayService/AbortRun",
                request_serializer=pb.AbortRunRequest.SerializeToString,
                response_deserializer=pb.AbortRunResponse.FromString)
            r = call(pb.AbortRunRequest(run_id=s.snapshot()[0][0].run_id,
                                        reason="user stop"),
                     metadata=auth_md(tok), timeout=10)
            assert r.status == S.RUN_STATUS_CANCELLED, r
        s.finish()
    finally:
        ch.close()
    check_common(s)
    st = s.terminal()
    assert st.status == S.RUN_STATUS_CANCELLED, s
    assert "user stop" in st.reason, st
    (req,) = fp.entries(tag=k)
    fp.wait(lambda: req.t_end is not None, 3.0, "the cancelled request to end")
    assert req.closed_by_peer and not req.completed, \
        "the provider's connection was not closed by the cancel"
    assert req.t_closed - t_cancel < 1.0, \
        f"the transfer was closed {req.t_closed - t_cancel:.2f}s after the cancel"
    n_sent = sum(1 for x in req.sent if x[1] == "token")
    assert n_sent < 400


# ---------------------------------------------------------------- load

def test_100_concurrent_runs_in_one_worker(daemon, tok, fp):
    k = tag()
    n = 100
    ch = daemon.new_channel()
    try:
        streams = [start(ch, tok, "oa", f"fp:text n=5 gap=0.05 key={k}-{i}",
                         timeout=60) for i in range(n)]
        for s in streams:
            s.finish(65)
    finally:
        ch.close()
    for s in streams:
        check_completed(s, texts(5))
    reqs = fp.entries(tag=k)
    assert len(reqs) == n
    # They ran at the same time: the largest number of overlapping requests.
    marks = sorted([(r.t_start, 1) for r in reqs] + [(r.t_end, -1) for r in reqs])
    cur = peak = 0
    for _, d in marks:
        cur += d
        peak = max(peak, cur)
    assert peak >= 20, f"at most {peak} provider requests at once"
    assert len(daemon.pids_of("palyra-worker", "default")) == 1


# ---------------------------------------------------------------- the key

def test_api_key_never_stored_or_logged(daemon, tok, fp):
    """The fake echoes the key it received in a token: the client gets the
    redacted text; the journal, its export and palyrad's log never hold the
    key (this test runs last, after every other run of the module)."""
    k = tag()
    s = run(daemon.channel, tok, "oa", f"fp:echokey key={k}")
    check_completed(s, "key: [REDACTED] end")
    key = FAKE_KEY.encode()
    raw = b""
    for suffix in ("", "-wal", "-shm"):
        p = daemon.journal_path("default") + suffix
        if os.path.exists(p):
            with open(p, "rb") as f:
                raw += f.read()
    assert raw and key not in raw, "the API key is in journal.db"
    env = dict(os.environ, PALYRA_URL=daemon.http_url,
               PALYRA_GRPC=daemon.grpc_addr)
    r = subprocess.run([PALYRACTL, "-s", daemon.state, "journal", "export",
                        "--tenant", "default"], capture_output=True, timeout=60,
                       env=env)
    assert r.returncode == 0, r
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert any(x.get("run_id") == s.events[0].run_id for x in lines)
    assert key not in r.stdout and key not in r.stderr
    for x in lines:
        assert key not in base64.b64decode(x["payload_b64"]), x
    assert key not in daemon.log_text().encode(), "the API key is in palyrad's log"
