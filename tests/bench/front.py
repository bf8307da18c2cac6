#!/usr/bin/python3
"""front.py: the palyra-front rows of `make bench` (tests/bench/run.sh).

Starts a palyrad with the built-in offline provider and measures:

  RunStream runs/s at 64 concurrent streams (a short offline run, about a
      dozen events each, every one read to its end), against the unary
      GetHealth calls/s of the same client at the same concurrency in the
      same run (the reference: what the client and the front do for a call
      that does nothing), and the p99 time from a RunStream call's start to
      its first event, against GetHealth's p99 latency;
  the front's memory holding 10,000 idle streams: 100 HTTP/2 connections
      (from 127.0.0.1 to 127.0.0.4: FE_CONN_PER_ADDR a source) of 100
      grpc.health.v1.Health/Watch streams each, opened by a raw client that
      reads their first answer and then only keeps them open; the front's
      VmRSS and Pss before and after, in MiB per 10,000 streams.

The client is Python's grpc.aio (Debian's python3-grpcio) on the same two
cores as palyrad: the rates are what such a client sees, the ratio is the
figure to compare between runs. Prints one tab-separated line per row on
stdout: NAME VALUE CEILING_NAME CEILING UNIT. Progress goes to stderr.
"""
import asyncio
import os
import selectors
import socket
import struct
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import grpc  # noqa: E402
import grpc.aio  # noqa: E402

from conftest import CHANNEL_OPTIONS, Daemon, pb, poll  # noqa: E402

CONCURRENCY = 64
RATE_SECONDS = float(os.environ.get("FRONT_BENCH_SECONDS", "3"))
IDLE_CONNS = int(os.environ.get("FRONT_BENCH_IDLE_CONNS", "100"))
IDLE_PER_CONN = int(os.environ.get("FRONT_BENCH_IDLE_STREAMS", "100"))
SOURCES = ("127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4")
RUN_STREAM = "/palyra.v1.GatewayService/RunStream"
GET_HEALTH = "/palyra.v1.GatewayService/GetHealth"
WATCH = "/grpc.health.v1.Health/Watch"
S = pb.RunStatus
TERMINAL = {S.RUN_STATUS_COMPLETED, S.RUN_STATUS_FAILED,
            S.RUN_STATUS_CANCELLED, S.RUN_STATUS_INTERRUPTED}

CONFIG = """\
state-dir "{state}"
listen grpc 127.0.0.1:{grpc_port}
listen http 127.0.0.1:{http_port}
journal {{ durability normal }}
provider "offline" {{ type offline }}
tenant "default" {{ agent "assistant" {{ providers "offline" }} }}
"""


def log(*a):
    print("front.py:", *a, file=sys.stderr, flush=True)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def channel(d, i):
    return grpc.aio.insecure_channel(d.grpc_addr, options=CHANNEL_OPTIONS + [
        ("grpc.use_local_subchannel_pool", 1), ("palyra.bench.channel", i)])


# ---------------------------------------------------------------- rates

async def loops(d, one, seconds):
    """Runs `one(ch)` in CONCURRENCY loops over two connections for
    seconds; returns (calls/s, [latencies ms])."""
    chans = [channel(d, i) for i in range(2)]
    lat, done = [], [0]
    for ch in chans:        # connected before the clock starts
        await ch.channel_ready()
    stop = time.monotonic() + seconds

    async def loop(i):
        ch = chans[i % len(chans)]
        while time.monotonic() < stop:
            lat.append(await one(ch))
            done[0] += 1

    t0 = time.monotonic()
    try:
        await asyncio.gather(*(loop(i) for i in range(CONCURRENCY)))
    finally:
        for ch in chans:
            await ch.close()
    return done[0] / (time.monotonic() - t0), lat


async def get_health(ch):
    call = ch.unary_unary(GET_HEALTH,
                          request_serializer=pb.GetHealthRequest.SerializeToString,
                          response_deserializer=pb.GetHealthResponse.FromString)
    t0 = time.monotonic()
    await call(pb.GetHealthRequest(), timeout=30)
    return (time.monotonic() - t0) * 1000


def run_stream_one(token):
    req = pb.RunStreamRequest(start=pb.RunStart(agent="assistant",
                                                input="bench run"))
    md = [("authorization", f"Bearer {token}")]

    async def one(ch):
        call = ch.stream_stream(RUN_STREAM,
                                request_serializer=pb.RunStreamRequest.SerializeToString,
                                response_deserializer=pb.RunEvent.FromString)
        t0 = time.monotonic()
        first, status = None, None
        async for ev in call(iter([req]), metadata=md, timeout=60):
            if first is None:
                first = (time.monotonic() - t0) * 1000
            if ev.WhichOneof("event") == "status" and ev.status.status in TERMINAL:
                status = ev.status.status
        if status != S.RUN_STATUS_COMPLETED:
            raise RuntimeError(f"a bench run ended with {status}")
        return first
    return one


# ---------------------------------------------------------------- idle streams

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def frame(ftype, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", stream) + payload


def literal(name, value):
    name, value = name.encode(), value.encode()
    assert len(name) < 127 and len(value) < 127
    return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value


WATCH_BLOCK = b"".join(literal(n, v) for n, v in (
    (":method", "POST"), (":scheme", "http"), (":path", WATCH),
    (":authority", "localhost"), ("content-type", "application/grpc"),
    ("te", "trailers")))
# An empty HealthCheckRequest (service ""), not half-closed: the watch stays.
WATCH_MESSAGE = b"\x00\x00\x00\x00\x00"


class IdleConn:
    def __init__(self, port, source, n):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((source, 0))
        self.sock.connect(("127.0.0.1", port))
        self.sock.setblocking(False)
        out = [PREFACE, frame(4, 0, 0)]
        for i in range(n):
            sid = 2 * i + 1
            out.append(frame(1, 0x4, sid, WATCH_BLOCK))
            out.append(frame(0, 0, sid, WATCH_MESSAGE))
        self.pending = b"".join(out)
        self.buf = b""
        self.answered = set()       # streams whose first DATA came
        self.closed = False

    def flush(self):
        while self.pending:
            try:
                k = self.sock.send(self.pending)
            except BlockingIOError:
                return
            self.pending = self.pending[k:]

    def read(self):
        try:
            data = self.sock.recv(1 << 16)
        except BlockingIOError:
            return
        if not data:
            self.closed = True
            return
        self.buf += data
        while len(self.buf) >= 9:
            length = struct.unpack(">I", b"\x00" + self.buf[:3])[0]
            if len(self.buf) < 9 + length:
                break
            ftype, flags = self.buf[3], self.buf[4]
            sid = struct.unpack(">I", self.buf[5:9])[0] & 0x7fffffff
            self.buf = self.buf[9 + length:]
            if ftype == 4 and not flags & 1:
                self.pending += frame(4, 1, 0)
            elif ftype == 0 and sid:
                self.answered.add(sid)
            elif ftype in (3, 7):       # RST_STREAM, GOAWAY
                raise RuntimeError(f"idle stream refused (frame {ftype})")


def mem_kib(pid):
    rss = pss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pss = rss
    return rss, pss


def idle_streams(d, nconns, per_conn):
    (pid,) = poll(lambda: d.pids_of("palyra-front"), 10, what="the front")
    rss0, pss0 = mem_kib(pid)
    conns = [IdleConn(d.grpc_port, SOURCES[i % len(SOURCES)], per_conn)
             for i in range(nconns)]
    sel = selectors.DefaultSelector()
    for c in conns:
        sel.register(c.sock, selectors.EVENT_READ, c)
    want = nconns * per_conn
    deadline = time.monotonic() + 60
    try:
        while sum(len(c.answered) for c in conns) < want:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"only {sum(len(c.answered) for c in conns)} of {want} "
                    "watches answered")
            for c in conns:
                c.flush()
            for key, _ in sel.select(0.05):
                key.data.read()
                if key.data.closed:
                    raise RuntimeError("the front closed an idle connection")
        for c in conns:
            c.flush()
        time.sleep(1.0)
        rss1, pss1 = mem_kib(pid)
    finally:
        for c in conns:
            c.sock.close()
    log(f"{want} idle streams: front VmRSS {rss0} -> {rss1} KiB, "
        f"Pss {pss0} -> {pss1} KiB")
    scale = 10000.0 / want
    return (rss1 - rss0) * scale / 1024, (pss1 - pss0) * scale / 1024, \
        rss0 / 1024, pss0 / 1024


# ---------------------------------------------------------------- main

class Rows(list):
    """Printed as they come: a later failure keeps the earlier rows."""

    def append(self, r):
        print("\t".join(r), flush=True)
        super().append(r)


async def rates(d, token, rows):
    # Warm-up: the tenant's worker starts with the first run.
    await loops(d, run_stream_one(token), 1.0)
    hrate, hlat = await loops(d, get_health, RATE_SECONDS)
    log(f"GetHealth: {hrate:.0f} calls/s")
    rrate, first = await loops(d, run_stream_one(token), RATE_SECONDS)
    log(f"RunStream: {rrate:.1f} runs/s, {len(first)} runs")
    rows.append((f"RunStream runs/s, {CONCURRENCY} streams, offline",
                 f"{rrate:.1f}", "GetHealth calls/s, same client",
                 f"{hrate:.1f}", "runs/s"))
    rows.append(("RunStream time to first event p99", f"{pct(first, 99):.2f}",
                 "GetHealth latency p99, same load", f"{pct(hlat, 99):.2f}",
                 "ms"))


def main():
    work = tempfile.mkdtemp(prefix="palyra-bench-front-")
    d = Daemon(work, CONFIG, ("default",))
    status = 0
    rows = Rows()
    try:
        d.start()
        token = d.mint_token("default", "bench")
        asyncio.run(rates(d, token, rows))
        drss, dpss, rss0, pss0 = idle_streams(d, IDLE_CONNS, IDLE_PER_CONN)
        rows.append(("front RSS per 10k idle streams", f"{drss:.1f}",
                     "front RSS, no stream", f"{rss0:.1f}", "MiB"))
        rows.append(("front Pss per 10k idle streams", f"{dpss:.1f}",
                     "front Pss, no stream", f"{pss0:.1f}", "MiB"))
    except Exception as e:  # noqa: BLE001 - reported, the table goes on
        log(f"failed: {e!r}")
        log("palyrad log tail:\n" + d.log_text()[-4000:])
        status = 1
    finally:
        if d.proc is not None and not d.stopped:
            d.stop()
    return status


if __name__ == "__main__":
    sys.exit(main())
