"""Flow control of RunStream (common/limits.h, "Flow control"): a client
that stops reading back-pressures its run instead of growing the front's
buffers; once it reads again the run goes on and every event arrives once,
in order.

The slow client is a raw HTTP/2 connection built with struct (as in
test_abuse.py): it advertises a small SETTINGS_INITIAL_WINDOW_SIZE and sends
no WINDOW_UPDATE, so the front can send it only that many bytes of the
stream. A second, ordinary gRPC client watches the run through GetRun
(last_seq, status), and the front's VmRSS is read from /proc.
"""
import struct
import time

import grpc
import pytest

from conftest import Daemon, auth_md, pb, poll, http_request
from test_abuse import (DATA, END_HEADERS, END_STREAM, GOAWAY, HEADERS,
                        RST_STREAM, SETTINGS, Conn, frame, hpack_literal)

WINDOW_UPDATE = 8
ACK = 0x1
SETTINGS_INITIAL_WINDOW_SIZE = 4

# Mirrors common/limits.h.
FE_FLOW_HIGH_WATER = 256 * 1024
FE_FLOW_FOLLOWER_MAX = 1024 * 1024

# A long offline run: the reply repeats the input, one token per word.
WORDS = 30000
INPUT = "w " * WORDS
SMALL_WINDOW = 4096

CONFIG = """\
state-dir "{state}"
listen grpc 127.0.0.1:{grpc_port}
listen http 127.0.0.1:{http_port}
journal {{ durability normal }}
provider "offline" {{ type offline }}
tenant "default" {{
	agent "assistant" {{
		providers "offline"
		max-output-tokens 100000
	}}
}}
"""


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    d = Daemon(tmp_path_factory.mktemp("flow") / "d", CONFIG, ("default",))
    d.start()
    yield d
    d.assert_clean_stop()


def front_rss_kib(d):
    pids = d.pids_of("palyra-front")
    assert len(pids) == 1, pids
    with open(f"/proc/{pids[0]}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def get_run(channel, token, run_id):
    call = channel.unary_unary(
        "/palyra.v1.GatewayService/GetRun",
        request_serializer=pb.GetRunRequest.SerializeToString,
        response_deserializer=pb.Run.FromString)
    return call(pb.GetRunRequest(run_id=run_id), metadata=auth_md(token),
                timeout=10)


def metric(d, name):
    st, text = http_request(d, "GET", "/metrics")
    assert st == 200
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"no {name} in /metrics")


class SlowReader:
    """A RunStream over a raw HTTP/2 connection whose stream window is
    SMALL_WINDOW until open_window()."""

    def __init__(self, d, token, start):
        self.c = Conn(d.grpc_port, preface=False)
        self.c.send(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(
            SETTINGS, 0, 0,
            struct.pack(">HI", SETTINGS_INITIAL_WINDOW_SIZE, SMALL_WINDOW)))
        block = b"".join(hpack_literal(n, v) for n, v in (
            (":method", "POST"), (":scheme", "http"),
            (":path", "/palyra.v1.GatewayService/RunStream"),
            (":authority", "localhost"), ("content-type", "application/grpc"),
            ("te", "trailers"), ("authorization", f"Bearer {token}")))
        msg = pb.RunStreamRequest(start=start).SerializeToString()
        body = b"\x00" + struct.pack(">I", len(msg)) + msg
        out = [frame(HEADERS, END_HEADERS, 1, block)]
        for i in range(0, len(body), 16384):    # SETTINGS_MAX_FRAME_SIZE
            last = i + 16384 >= len(body)
            out.append(frame(DATA, END_STREAM if last else 0, 1,
                             body[i:i + 16384]))
        self.c.send(b"".join(out))
        self.data = b""
        self.events = []
        self.ended = False      # trailers (HEADERS with END_STREAM) came
        self.reset = False
        self.window_open = False

    def pump(self, timeout):
        """Reads frames for up to timeout seconds (or until the end)."""
        deadline = time.monotonic() + timeout
        while not self.ended and not self.reset:
            try:
                f = self.c.read_frame(deadline)
            except AssertionError:
                return      # nothing more within timeout
            except OSError:
                return
            if f is None:
                self.reset = True
                return
            ftype, flags, stream, payload = f
            if ftype == SETTINGS and not flags & ACK:
                self.c.send(frame(SETTINGS, ACK, 0))
            elif ftype == DATA and stream == 1:
                self.data += payload
                self._messages()
                if self.window_open and payload:
                    # Give back what was read, stream and connection.
                    inc = struct.pack(">I", len(payload))
                    self.c.send(frame(WINDOW_UPDATE, 0, 0, inc) +
                                frame(WINDOW_UPDATE, 0, 1, inc))
                if flags & END_STREAM:
                    self.ended = True
            elif ftype == HEADERS and stream == 1 and flags & END_STREAM:
                self.ended = True
            elif ftype in (RST_STREAM, GOAWAY):
                self.reset = True

    def _messages(self):
        while len(self.data) >= 5:
            n = struct.unpack(">I", self.data[1:5])[0]
            if len(self.data) < 5 + n:
                return
            self.events.append(pb.RunEvent.FromString(self.data[5:5 + n]))
            self.data = self.data[5 + n:]

    def open_window(self):
        """A large stream and connection window, then one per read."""
        self.window_open = True
        inc = struct.pack(">I", 1 << 30)
        self.c.send(frame(WINDOW_UPDATE, 0, 0, inc) +
                    frame(WINDOW_UPDATE, 0, 1, inc))

    def close(self):
        self.c.close()


def test_slow_reader_pauses_its_run(daemon):
    d = daemon
    token = d.mint_token("default", "flow", "user")
    rss0 = front_rss_kib(d)
    pauses0 = metric(d, "palyra_flow_pauses_total")
    r = SlowReader(d, token, pb.RunStart(input=INPUT, agent="assistant"))
    try:
        poll(lambda: (r.pump(0.2), r.events)[1], 10.0, what="the first events")
        run_id = r.events[0].run_id
        assert run_id

        # The reader is stalled: the run advances until the front holds
        # FE_FLOW_HIGH_WATER for it (and what was in flight), then stops.
        def last_seq():
            return get_run(d.channel, token, run_id).last_seq

        def settled():
            a = last_seq()
            time.sleep(0.5)
            b = last_seq()
            return b if a == b and b > 0 else None

        stalled_at = poll(settled, 20.0, interval=0.05,
                          what="the run to stop advancing")
        run = get_run(d.channel, token, run_id)
        assert run.status == pb.RunStatus.RUN_STATUS_IN_PROGRESS, run
        total = WORDS + 20
        print(f"run stalled at seq {stalled_at} of about {total}")
        assert stalled_at < total // 2, \
            f"the run went on to seq {stalled_at} of about {total} " \
            "with its reader stalled"
        time.sleep(1.0)
        assert last_seq() == stalled_at, "the paused run advanced"
        assert metric(d, "palyra_flow_pauses_total") >= pauses0 + 1
        rss1 = front_rss_kib(d)
        assert rss1 - rss0 < 16 * 1024, \
            f"the front grew by {rss1 - rss0} KiB for one stalled reader"

        # The reader catches up: the run completes, every event once and
        # in order, the last the terminal COMPLETED.
        r.open_window()
        deadline = time.monotonic() + 40
        while not r.ended and not r.reset and time.monotonic() < deadline:
            r.pump(1.0)
        assert r.ended and not r.reset, \
            f"the stream did not end cleanly ({len(r.events)} events)"
    finally:
        r.close()
    seqs = [e.seq for e in r.events]
    assert seqs == list(range(1, len(seqs) + 1)), "events lost or repeated"
    assert r.events[-1].WhichOneof("event") == "status"
    assert r.events[-1].status.status == pb.RunStatus.RUN_STATUS_COMPLETED
    tokens = "".join(e.token.text for e in r.events
                     if e.WhichOneof("event") == "token")
    assert tokens.count("w") == WORDS
    run = get_run(d.channel, token, run_id)
    assert run.status == pb.RunStatus.RUN_STATUS_COMPLETED
    assert run.last_seq == seqs[-1]


def test_slow_follower_is_ended_and_can_reattach(daemon):
    """A reattached follower never pauses the run; one that falls more than
    FE_FLOW_FOLLOWER_MAX behind ends with RESOURCE_EXHAUSTED and the seq to
    reattach from, and reattaching from it gets the rest."""
    d = daemon
    token = d.mint_token("default", "follow", "user")
    # The run's own call: an ordinary client that reads everything.
    call = d.channel.stream_stream(
        "/palyra.v1.GatewayService/RunStream",
        request_serializer=pb.RunStreamRequest.SerializeToString,
        response_deserializer=pb.RunEvent.FromString)
    # Long enough (about 3 MB of events) that the follower falls more than
    # FE_FLOW_FOLLOWER_MAX behind before the end.
    it = call(iter([pb.RunStreamRequest(start=pb.RunStart(
        input="x " * 32000, agent="assistant"))]),
        metadata=auth_md(token), timeout=60)
    first = next(it)
    run_id = first.run_id
    # The follower: reattaches from seq 1 and reads nothing.
    f = SlowReader(d, token, pb.RunStart(run_id=run_id, after_seq=1))
    try:
        owner = [first] + list(it)
        assert it.code() == grpc.StatusCode.OK, it.details()
        assert owner[-1].status.status == pb.RunStatus.RUN_STATUS_COMPLETED
        # The follower ended on its own: RST or trailers once it reads.
        f.open_window()
        deadline = time.monotonic() + 30
        while not f.ended and not f.reset and time.monotonic() < deadline:
            f.pump(1.0)
        assert f.ended, "the slow follower was not ended with a status"
        got = [e.seq for e in f.events]
        assert got == list(range(2, 2 + len(got))), "follower events out of order"
        assert got[-1] < owner[-1].seq, \
            "the follower got the whole run: it was never too slow"
    finally:
        f.close()
    assert metric(d, "palyra_flow_slow_followers_total") >= 1
    # Reattaching from the last seq received gets the rest, once each.
    rest = list(call(iter([pb.RunStreamRequest(start=pb.RunStart(
        run_id=run_id, after_seq=got[-1]))]), metadata=auth_md(token),
        timeout=30))
    assert [e.seq for e in rest] == list(range(got[-1] + 1, owner[-1].seq + 1))


def test_slow_follower_status_names_the_seq(daemon):
    """What an ordinary gRPC client sees as a follower that stopped reading:
    the events it was sent, then RESOURCE_EXHAUSTED "client too slow;
    reattach from seq N" with N the last seq it got."""
    d = daemon
    token = d.mint_token("default", "follow2", "user")
    call = d.channel.stream_stream(
        "/palyra.v1.GatewayService/RunStream",
        request_serializer=pb.RunStreamRequest.SerializeToString,
        response_deserializer=pb.RunEvent.FromString)
    it = call(iter([pb.RunStreamRequest(start=pb.RunStart(
        input="z " * 32000, agent="assistant"))]),
        metadata=auth_md(token), timeout=60)
    first = next(it)
    # No BDP probing: the follower's window stays at 64 KiB.
    with grpc.insecure_channel(d.grpc_addr, options=[
            ("grpc.http2.bdp_probe", 0), ("grpc.enable_http_proxy", 0),
            ("grpc.max_receive_message_length", 16 * 1024 * 1024)]) as ch:
        fcall = ch.stream_stream(
            "/palyra.v1.GatewayService/RunStream",
            request_serializer=pb.RunStreamRequest.SerializeToString,
            response_deserializer=pb.RunEvent.FromString)
        fit = fcall(iter([pb.RunStreamRequest(start=pb.RunStart(
            run_id=first.run_id, after_seq=first.seq))]),
            metadata=auth_md(token), timeout=60)
        got = [next(fit)]           # following
        owner = [first] + list(it)  # the run ends meanwhile
        assert owner[-1].status.status == pb.RunStatus.RUN_STATUS_COMPLETED
        try:
            for ev in fit:
                got.append(ev)
            code, details = fit.code(), fit.details()
        except grpc.RpcError as e:
            code, details = e.code(), e.details()
    seqs = [e.seq for e in got]
    assert seqs == list(range(first.seq + 1, first.seq + 1 + len(seqs)))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED, (code, details)
    assert details == f"client too slow; reattach from seq {seqs[-1]}"


def test_paused_run_goes_on_when_its_client_leaves(daemon):
    """A run paused for its reader, whose client then goes away (without
    cancel_on_disconnect), is resumed and completes."""
    d = daemon
    token = d.mint_token("default", "leaver", "user")
    pauses0 = metric(d, "palyra_flow_pauses_total")
    r = SlowReader(d, token, pb.RunStart(input=INPUT, agent="assistant"))
    try:
        poll(lambda: (r.pump(0.2), r.events)[1], 10.0, what="the first events")
        run_id = r.events[0].run_id
        poll(lambda: metric(d, "palyra_flow_pauses_total") > pauses0, 10.0,
             what="the run paused")

        def settled():
            a = get_run(d.channel, token, run_id).last_seq
            time.sleep(0.3)
            return a == get_run(d.channel, token, run_id).last_seq
        poll(settled, 20.0, interval=0.05, what="the run to stop advancing")
    finally:
        r.close()
    run = poll(lambda: (lambda x: x if x.status ==
                        pb.RunStatus.RUN_STATUS_COMPLETED else None)(
        get_run(d.channel, token, run_id)), 30.0,
        what="the run to complete after its client left")
    assert run.last_seq > WORDS
