"""The retry policy of palyrad's network providers, against the scripted
fake provider (fakeprov.py): the circuit breaker opening after repeated
failures and the runs that then fail over without touching the provider,
the reason of a run whose every provider failed, a 401 that is not
retried, the per-provider concurrency cap (runs over it wait their turn),
the usage of a tool turn summed over its provider calls, follow-up input
as the next user turn, the bound on the
text a run may stream (WRK_REPLY_MAX), and a client that
stops reading: its run's provider stream is paused (past its idle timeout)
and goes on when the client reads again.
"""
import os
import queue
import re
import secrets
import socket
import threading
import time
import uuid

import grpc
import pytest

from conftest import Daemon, _require_binaries, auth_md, event_kind, pb, poll
import fakeprov
from test_flow_control import SlowReader, get_run

S = pb.RunStatus
TERMINAL = {S.RUN_STATUS_COMPLETED, S.RUN_STATUS_FAILED,
            S.RUN_STATUS_CANCELLED, S.RUN_STATUS_INTERRUPTED}
METHOD = "/palyra.v1.GatewayService/RunStream"
KEY = "sk-policy-" + secrets.token_hex(16)
T = "timeout connect 2s first-byte 5s idle 5s total 30s"


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def make_config(fp, dead_port):
    def prov(name, kind, extra="", t=T):
        return (f'provider "{name}" {{{{ type {kind}; base-url '
                f'"{fp.url(name)}"; api-key env:POLICY_KEY; model "m"; '
                f'{t}{extra} }}}}\n')
    return (
        'state-dir "{state}"\nlisten grpc 127.0.0.1:{grpc_port}\n'
        'listen http 127.0.0.1:{http_port}\n'
        'journal {{ durability normal }}\n'
        'provider "offline" {{ type offline }}\n'
        + prov("brk", "openai") + prov("bk", "anthropic")
        + prov("f5", "openai") + prov("a401", "openai")
        + prov("cap2", "openai", "; max-concurrent 2")
        + prov("tls", "openai")
        + prov("pfl", "openai", t="timeout first-byte 5s idle 1s")
        + f'provider "nc" {{{{ type openai-compatible; base-url '
          f'"http://127.0.0.1:{dead_port}/v1"; {T} }}}}\n'
        + 'tenant "default" {{\n\tworkers 1\n'
        '\tagent "bo" {{ providers "brk" "bk" }}\n'
        '\tagent "bonly" {{ providers "brk" }}\n'
        '\tagent "ex" {{ providers "f5" "nc" }}\n'
        '\tagent "au" {{ providers "a401" }}\n'
        '\tagent "cap" {{ providers "cap2" }}\n'
        '\tagent "tl" {{ providers "tls"; tool "time.now" allow }}\n'
        '\tagent "fl" {{ providers "pfl"; max-output-tokens 100000 }}\n'
        '}}\n')


@pytest.fixture(scope="module")
def fp():
    srv = fakeprov.FakeProvider().start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory, fp):
    _require_binaries()
    old = os.environ.get("POLICY_KEY")
    os.environ["POLICY_KEY"] = KEY
    d = Daemon(tmp_path_factory.mktemp("policy"),
               make_config(fp, closed_port()), ("default",))
    try:
        d.start()
        yield d
    finally:
        if not d.stopped:
            d.kill()
        if old is None:
            os.environ.pop("POLICY_KEY", None)
        else:
            os.environ["POLICY_KEY"] = old


@pytest.fixture(scope="module")
def tok(daemon):
    return daemon.mint_token("default", "alice")


class Run(threading.Thread):
    """One RunStream in a thread, until its terminal status."""

    def __init__(self, channel, token, agent, text):
        super().__init__(daemon=True)
        self.channel, self.token = channel, token
        self.start_msg = pb.RunStart(agent=agent, input=text)
        self.events, self.code = [], None
        self._done = threading.Event()
        self._more = queue.Queue()

    def send(self, req):
        self._more.put(req)

    def run(self):
        def requests():
            yield pb.RunStreamRequest(start=self.start_msg)
            while not self._done.is_set():
                try:
                    yield self._more.get(timeout=0.02)
                except queue.Empty:
                    continue

        call = self.channel.stream_stream(
            METHOD, request_serializer=pb.RunStreamRequest.SerializeToString,
            response_deserializer=pb.RunEvent.FromString)
        it = call(requests(), metadata=auth_md(self.token), timeout=40)
        try:
            for ev in it:
                self.events.append(ev)
                if event_kind(ev) == "status" and \
                        ev.status.status in TERMINAL:
                    break
            self.code = grpc.StatusCode.OK
        except grpc.RpcError as e:
            self.code = e.code()
        finally:
            self._done.set()
            it.cancel()

    def finish(self):
        self.join(45)
        assert not self.is_alive(), "RunStream still open"
        assert self.code == grpc.StatusCode.OK, self.code
        return self

    def of(self, kind):
        return [ev for ev in self.events if event_kind(ev) == kind]

    def terminal(self):
        st = [ev.status for ev in self.of("status")
              if ev.status.status in TERMINAL]
        assert len(st) == 1, self.events
        return st[0]


def run(daemon, tok, agent, text):
    r = Run(daemon.channel, tok, agent, text)
    r.start()
    return r.finish()


def tag():
    return uuid.uuid4().hex[:12]


def test_breaker_opens_then_fails_over_at_once(daemon, tok, fp):
    # 3 failed attempts, then 2 more: the fifth failure in a row opens it.
    k1, k2, k3, k4 = tag(), tag(), tag(), tag()
    r = run(daemon, tok, "bo", f"fp:fail status=500 on=brk key={k1}")
    assert r.terminal().status == S.RUN_STATUS_COMPLETED, r.events
    assert [e.upstream for e in fp.entries(tag=k1)] == \
        ["brk", "brk", "brk", "bk"]
    r = run(daemon, tok, "bo", f"fp:fail status=500 on=brk key={k2}")
    assert r.terminal().status == S.RUN_STATUS_COMPLETED, r.events
    assert [e.upstream for e in fp.entries(tag=k2)] == ["brk", "brk", "bk"]
    # Open: the next run goes straight to the next provider.
    t0 = time.monotonic()
    r = run(daemon, tok, "bo", f"fp:text n=2 key={k3}")
    assert r.terminal().status == S.RUN_STATUS_COMPLETED, r.events
    assert [e.upstream for e in fp.entries(tag=k3)] == ["bk"]
    assert time.monotonic() - t0 < 3
    (u,) = [ev.usage for ev in r.of("usage")]
    assert u.provider == "bk", u
    # With nothing to fail over to, the run fails and says why.
    r = run(daemon, tok, "bonly", f"fp:text n=2 key={k4}")
    st = r.terminal()
    assert st.status == S.RUN_STATUS_FAILED, r.events
    assert re.search(r"provider brk: circuit open", st.reason), st.reason
    assert fp.entries(tag=k4) == []


def test_every_provider_failed_names_each(daemon, tok, fp):
    k = tag()
    r = run(daemon, tok, "ex", f"fp:fail status=503 on=f5 key={k}")
    st = r.terminal()
    assert st.status == S.RUN_STATUS_FAILED, r.events
    assert re.search(r"provider f5: HTTP 503.* after 3 attempts; "
                     r"provider nc: cannot connect.* after 3 attempts",
                     st.reason), st.reason
    assert [e.status for e in fp.entries(tag=k)] == [503, 503, 503]
    assert not r.of("token") and not r.of("final")


def test_401_is_not_retried(daemon, tok, fp):
    k = tag()
    r = run(daemon, tok, "au", f"fp:fail status=401 on=a401 key={k}")
    st = r.terminal()
    assert st.status == S.RUN_STATUS_FAILED, r.events
    assert re.search(r"provider a401: HTTP 401: authentication failed",
                     st.reason), st.reason
    assert KEY not in st.reason
    assert len(fp.entries(tag=k)) == 1


def test_concurrency_cap_queues_runs(daemon, tok, fp):
    k = tag()
    n = 6
    runs = [Run(daemon.channel, tok, "cap", f"fp:text n=4 gap=0.15 key={k}-{i}")
            for i in range(n)]
    for r in runs:
        r.start()
    for r in runs:
        r.finish()
        assert r.terminal().status == S.RUN_STATUS_COMPLETED, r.events
        assert "".join(ev.token.text for ev in r.of("token")) == \
            "t0 t1 t2 t3"
    reqs = fp.entries(tag=f"key={k}-")
    assert len(reqs) == n
    marks = sorted([(e.t_start, 1) for e in reqs] +
                   [(e.t_end, -1) for e in reqs])
    cur = peak = 0
    for _, d in marks:
        cur += d
        peak = max(peak, cur)
    assert peak == 2, f"{peak} requests at once to a provider capped at 2"


def test_tool_turn_usage_is_summed(daemon, tok, fp):
    k = tag()
    r = run(daemon, tok, "tl", f"fp:tool key={k}")
    assert r.terminal().status == S.RUN_STATUS_COMPLETED, r.events
    assert len(fp.entries(tag=k)) == 2
    (u,) = [ev.usage for ev in r.of("usage")]
    p, c = fakeprov.DEFAULT_USAGE
    assert (u.input_tokens, u.output_tokens) == (2 * p, 2 * c), u
    assert (u.provider, u.model) == ("tls", "m"), u


def test_slow_reader_pauses_the_provider_stream(daemon, tok, fp):
    k = tag()
    n = 20000
    r = SlowReader(daemon, tok, pb.RunStart(agent="fl",
                                            input=f"fp:text n={n} key={k}"))
    try:
        poll(lambda: (r.pump(0.2), r.events)[1], 10.0, what="the first events")
        run_id = r.events[0].run_id

        def settled():
            a = get_run(daemon.channel, tok, run_id).last_seq
            time.sleep(0.5)
            b = get_run(daemon.channel, tok, run_id).last_seq
            return b if a == b and b > 0 else None

        stalled_at = poll(settled, 20.0, interval=0.05,
                          what="the run to stop advancing")
        assert stalled_at < n, f"the run went on to seq {stalled_at}"
        # Paused longer than the provider's idle timeout (1 s): the
        # transfer waits, it does not time out.
        time.sleep(2.5)
        run = get_run(daemon.channel, tok, run_id)
        assert run.last_seq == stalled_at, "the paused run advanced"
        assert run.status == S.RUN_STATUS_IN_PROGRESS, run
        (req,) = fp.entries(tag=k)
        assert not req.closed_by_peer, "the provider stream was closed"
        r.open_window()
        deadline = time.monotonic() + 40
        while not r.ended and not r.reset and time.monotonic() < deadline:
            r.pump(1.0)
        assert r.ended and not r.reset, f"{len(r.events)} events"
    finally:
        r.close()
    seqs = [e.seq for e in r.events]
    assert seqs == list(range(1, len(seqs) + 1)), "events lost or repeated"
    last = r.events[-1]
    assert last.WhichOneof("event") == "status"
    assert last.status.status == S.RUN_STATUS_COMPLETED, last
    tokens = "".join(e.token.text for e in r.events
                     if e.WhichOneof("event") == "token")
    assert tokens == "".join(f"t{i}" if i == 0 else f" t{i}"
                             for i in range(n))
    assert req.completed


def test_reply_over_the_limit_fails_the_run(daemon, tok, fp):
    # "t0 t1 ... t29999" is about 170 KB: over WRK_REPLY_MAX (128 KiB).
    k = tag()
    r = run(daemon, tok, "fl", f"fp:text n=30000 key={k}")
    st = r.terminal()
    assert st.status == S.RUN_STATUS_FAILED, st
    assert "provider pfl: the reply is over 131072 bytes" in st.reason, st
    text = "".join(ev.token.text for ev in r.of("token"))
    assert 100000 < len(text) <= 131072
    assert not r.of("final")
    assert len(fp.entries(tag=k)) == 1, "retried after tokens were relayed"


def test_follow_up_input_is_the_next_user_turn(daemon, tok, fp):
    k = tag()
    r = Run(daemon.channel, tok, "cap", f"fp:text n=3 gap=0.3 key={k}")
    r.start()
    poll(lambda: any(event_kind(ev) == "token" for ev in list(r.events)),
         10.0, what="the first token")
    r.send(pb.RunStreamRequest(input=pb.Input(text=f"and then {k}")))
    r.finish()
    assert r.terminal().status == S.RUN_STATUS_COMPLETED, r.events
    # One answer per user turn, then the usage of both calls.
    assert [ev.final.text for ev in r.of("final")] == ["t0 t1 t2"] * 2
    (u,) = [ev.usage for ev in r.of("usage")]
    p, c = fakeprov.DEFAULT_USAGE
    assert (u.input_tokens, u.output_tokens) == (2 * p, 2 * c), u
    reqs = fp.entries(tag=k)
    assert len(reqs) == 2, [e.upstream for e in reqs]
    msgs = reqs[1].body["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "user"], msgs
    assert msgs[1]["content"] == "t0 t1 t2", msgs
    assert msgs[2]["content"] == f"and then {k}", msgs
