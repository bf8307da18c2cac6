#!/usr/bin/python3
"""providers.py: the network-provider rows of `make bench` (tests/bench/run.sh).

Starts the fake provider (tests/integration/fakeprov.py) in this process and
a palyrad whose tenant has one worker and an agent on an OpenAI-typed
provider pointing at it, and measures through gRPC RunStream (grpc.aio):

  relay overhead per token, p50 and p99: the fake provider's write of a
      token to the gRPC client's receipt of it, against a plain HTTP client
      reading the same stream straight from the fake provider (the floor:
      loopback, the fake's own writes, Python's reading);
  runs/s at 64 concurrent streams through the fake provider, against the
      same load on the built-in offline provider;
  RunStream time to first event (the call's start to its first event) and
      to first token, one stream at a time: p50 through the fake provider,
      against the offline provider's first event from the same client, and
      the first token against the plain HTTP client's request to its first
      token read straight from the fake provider; and the p99 time to first
      event at 64 concurrent streams, fake against offline, same load;
  the worker's VmRSS holding 1,000 concurrent runs whose provider streams
      stay open (a keep-alive comment each second), against its VmRSS
      before them.

Prints one tab-separated line per row on stdout:
NAME VALUE CEILING_NAME CEILING UNIT. Progress goes to stderr.
"""
import asyncio
import http.client
import json
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import grpc  # noqa: E402
import grpc.aio  # noqa: E402

from conftest import CHANNEL_OPTIONS, Daemon, pb, poll  # noqa: E402
import fakeprov  # noqa: E402

KEY = "sk-bench-0123456789abcdef"
TOKENS_PER_RUN = 50
RELAY_RUNS = int(os.environ.get("PROV_BENCH_RELAY_RUNS", "20"))
CONCURRENCY = 64
RATE_SECONDS = float(os.environ.get("PROV_BENCH_SECONDS", "5"))
IDLE_RUNS = int(os.environ.get("PROV_BENCH_IDLE_RUNS", "1000"))
METHOD = "/palyra.v1.GatewayService/RunStream"
S = pb.RunStatus
TERMINAL = {S.RUN_STATUS_COMPLETED, S.RUN_STATUS_FAILED,
            S.RUN_STATUS_CANCELLED, S.RUN_STATUS_INTERRUPTED}

CONFIG = """\
state-dir "{{state}}"
listen grpc 127.0.0.1:{{grpc_port}}
listen http 127.0.0.1:{{http_port}}
journal {{{{ durability normal }}}}
provider "offline" {{{{ type offline }}}}
provider "fake" {{{{ type openai; base-url "@URL"; api-key env:FAKE_KEY; model "m"; timeout connect 2s first-byte 10s idle 30s total 10m; max-concurrent 1024 }}}}
tenant "default" {{{{
	workers 1
	memory-limit 1G
	agent "oa" {{{{ providers "fake" }}}}
	agent "off" {{{{ providers "offline" }}}}
}}}}
"""


def log(*a):
    print("providers.py:", *a, file=sys.stderr, flush=True)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def tok_text(i):
    return f"t{i}" if i == 0 else f" t{i}"


def prefix_len(i):
    return sum(len(tok_text(j)) for j in range(i + 1))


def channel(d, i):
    # A subchannel pool of its own: one HTTP/2 connection per channel (the
    # front takes at most 128 streams on one connection).
    return grpc.aio.insecure_channel(d.grpc_addr, options=CHANNEL_OPTIONS + [
        ("grpc.use_local_subchannel_pool", 1), ("palyra.bench.channel", i)])


async def one_run(ch, token, agent, text, on_token=None, cancel_disconnect=False,
                  times=None):
    """One RunStream to its end; returns the terminal status. times, a
    dict, receives "first" and "token": ms from the call to its first event
    and to its first token."""
    call = ch.stream_stream(METHOD,
                            request_serializer=pb.RunStreamRequest.SerializeToString,
                            response_deserializer=pb.RunEvent.FromString)
    req = pb.RunStreamRequest(start=pb.RunStart(
        agent=agent, input=text, cancel_on_disconnect=cancel_disconnect))
    t0 = time.monotonic()
    stream = call(iter([req]), metadata=[("authorization", f"Bearer {token}")],
                  timeout=120)
    status = None
    async for ev in stream:
        kind = ev.WhichOneof("event")
        if times is not None:
            times.setdefault("t0", t0)
            ms = (time.monotonic() - t0) * 1000
            times.setdefault("first", ms)
            if kind == "token":
                times.setdefault("token", ms)
        if kind == "token" and on_token is not None:
            on_token(time.monotonic(), ev.token.text)
        elif kind == "status" and ev.status.status in TERMINAL:
            status = ev.status
    return status


# ---------------------------------------------------------------- relay

def relay_floor(fp, runs):
    """Per-token latency of a plain HTTP client reading the fake directly,
    and its request's time to the first token (ms)."""
    lat, firsts = [], []
    for r in range(runs):
        k = f"floor{r:04d}"
        t0 = time.monotonic()
        conn = http.client.HTTPConnection(fp.host, fp.port, timeout=30)
        body = json.dumps({"model": "m", "stream": True, "messages": [
            {"role": "user", "content":
             f"fp:text n={TOKENS_PER_RUN} gap=0.01 key={k}"}]})
        conn.request("POST", "/floor/v1/chat/completions", body,
                     {"Content-Type": "application/json"})
        resp = conn.getresponse()
        buf, got, recv = b"", 0, []
        while got < TOKENS_PER_RUN:
            data = resp.read1(65536)
            if not data:
                break
            t = time.monotonic()
            buf += data
            while got < TOKENS_PER_RUN and \
                    json.dumps({"content": tok_text(got)},
                               separators=(",", ":"))[1:-1].encode() in buf:
                recv.append(t)
                got += 1
        resp.read()
        conn.close()
        if recv:
            firsts.append((recv[0] - t0) * 1000)
        (ent,) = fp.entries(tag=f"key={k}")
        sent = [t for t, kind, _ in ent.sent if kind == "token"]
        lat += [(recv[i] - sent[i]) * 1000 for i in range(min(len(recv), len(sent)))]
    return lat, firsts


async def relay_palyra(d, fp, token, runs):
    """Per-token relay latency; times to first event and first token."""
    lat, firsts, ftoks, reqs = [], [], [], []
    ch = channel(d, 0)
    try:
        for r in range(runs):
            k = f"relay{r}-{time.monotonic_ns()}"
            acc, recv = [0], []

            def on_token(t, text):
                acc[0] += len(text)
                while len(recv) < TOKENS_PER_RUN and acc[0] >= prefix_len(len(recv)):
                    recv.append(t)

            times = {}
            st = await one_run(ch, token, "oa",
                               f"fp:text n={TOKENS_PER_RUN} gap=0.01 key={k}",
                               on_token, times=times)
            if st is None or st.status != S.RUN_STATUS_COMPLETED:
                raise RuntimeError(f"relay run ended with {st}")
            (ent,) = fp.entries(tag=f"key={k}")
            sent = [t for t, kind, _ in ent.sent if kind == "token"]
            lat += [(recv[i] - sent[i]) * 1000
                    for i in range(min(len(recv), len(sent)))]
            firsts.append(times["first"])
            ftoks.append(times["token"])
            reqs.append(((ent.t_start - times["t0"]) * 1000,
                         (sent[0] - times["t0"]) * 1000 if sent else 0))
    finally:
        await ch.close()
    log(f"the call's start to its request read whole by the fake provider: "
        f"p50 {pct([r for r, _ in reqs], 50):.2f} ms, to its first token "
        f"written by it: p50 {pct([t for _, t in reqs], 50):.2f} ms")
    return lat, firsts, ftoks


async def first_event_offline(d, token, runs):
    """Times to first event of offline runs, one at a time (ms)."""
    firsts = []
    ch = channel(d, 1)
    try:
        for _ in range(runs):
            times = {}
            st = await one_run(ch, token, "off", "bench", times=times)
            if st is None or st.status != S.RUN_STATUS_COMPLETED:
                raise RuntimeError(f"offline run ended with {st}")
            firsts.append(times["first"])
    finally:
        await ch.close()
    return firsts


# ---------------------------------------------------------------- rate

async def rate(d, token, agent, text, seconds, conc):
    chans = [channel(d, 100 + i) for i in range(2)]
    done = [0]
    failed = [0]
    firsts = []
    stop = time.monotonic() + seconds

    async def loop(i):
        ch = chans[i % len(chans)]
        while time.monotonic() < stop:
            times = {}
            st = await one_run(ch, token, agent, text, times=times)
            if "first" in times:
                firsts.append(times["first"])
            if st is not None and st.status == S.RUN_STATUS_COMPLETED:
                done[0] += 1
            else:
                failed[0] += 1

    t0 = time.monotonic()
    try:
        await asyncio.gather(*(loop(i) for i in range(conc)))
    finally:
        for ch in chans:
            await ch.close()
    el = time.monotonic() - t0
    if failed[0]:
        raise RuntimeError(f"{failed[0]} of {done[0] + failed[0]} runs on "
                           f"{agent} did not complete")
    return done[0] / el, firsts


# ---------------------------------------------------------------- RSS

def vmrss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


async def idle_rss(d, fp, token, n):
    (pid,) = poll(lambda: d.pids_of("palyra-worker", "default"), 10,
                  what="the worker")
    base = vmrss_kib(pid)
    per_chan = 100
    chans = [channel(d, 200 + i) for i in range((n + per_chan - 1) // per_chan)]
    for ch in chans:            # connected before the load starts
        await asyncio.wait_for(ch.channel_ready(), 10)
    hold = 20.0 + n / 25.0      # far longer than starting them all takes
    tasks = []
    for i in range(n):
        tasks.append(asyncio.ensure_future(one_run(
            chans[i // per_chan], token, "oa", f"fp:idle dur={hold:.1f} ka=1 "
            f"n=1 key=idle{i}", None, True)))
        if i % per_chan == per_chan - 1:
            await asyncio.sleep(0.05)

    def open_streams():
        return sum(1 for e in fp.entries(upstream="fake")
                   if e.scenario == "idle" and e.t_end is None)
    deadline = time.monotonic() + hold
    while open_streams() < n and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    held = open_streams()
    await asyncio.sleep(2.0)        # keep-alives flow meanwhile
    rss = vmrss_kib(pid)
    log(f"{held} provider streams open; worker VmRSS {rss} KiB (idle {base} KiB)")
    # The clients go away; their runs (cancel_on_disconnect) end with them.
    for ch in chans:
        await ch.close()        # cancels every call on it
    res = await asyncio.gather(*tasks, return_exceptions=True)
    errs = {}
    for r in res:
        if isinstance(r, (asyncio.CancelledError, grpc.aio.AioRpcError)) \
                and (not isinstance(r, grpc.aio.AioRpcError)
                     or r.code() == grpc.StatusCode.CANCELLED):
            continue
        if isinstance(r, BaseException):
            key = f"{type(r).__name__}: {getattr(r, 'details', lambda: r)()}"
        elif r is None or r.status != S.RUN_STATUS_COMPLETED:
            key = f"ended with {r}"
        else:
            continue
        errs[key] = errs.get(key, 0) + 1
    for k, v in errs.items():
        log(f"{v} runs: {k}")
    if held < n:
        raise RuntimeError(f"only {held} of {n} streams were open at once")
    poll(lambda: all(e.t_end is not None for e in fp.entries(upstream="fake")),
         30, what="the provider streams to close after their clients left")
    return rss, base


# ---------------------------------------------------------------- main

class Rows(list):
    """Printed as they come: a later failure keeps the earlier rows."""

    def append(self, r):
        print("\t".join(r), flush=True)
        super().append(r)


async def amain(d, fp, token):
    rows = Rows()
    floor, floor_first = relay_floor(fp, max(2, RELAY_RUNS // 2))
    log(f"floor: {len(floor)} tokens")
    lat, first, ftok = await relay_palyra(d, fp, token, RELAY_RUNS)
    log(f"relay: {len(lat)} tokens")
    for p in (50, 99):
        rows.append((f"provider relay per token p{p}", f"{pct(lat, p):.3f}",
                     "fake provider read directly", f"{pct(floor, p):.3f}", "ms"))
    off_first = await first_event_offline(d, token, RELAY_RUNS)
    rows.append(("RunStream first event p50, fake provider, 1 stream",
                 f"{pct(first, 50):.2f}", "offline provider, same client",
                 f"{pct(off_first, 50):.2f}", "ms"))
    rows.append(("RunStream first token p50, fake provider, 1 stream",
                 f"{pct(ftok, 50):.2f}", "fake provider read directly",
                 f"{pct(floor_first, 50):.2f}", "ms"))
    off, off_firsts = await rate(d, token, "off", "bench", RATE_SECONDS,
                                 CONCURRENCY)
    fake, fake_firsts = await rate(d, token, "oa", "fp:text n=5",
                                   RATE_SECONDS, CONCURRENCY)
    rows.append((f"provider runs/s, {CONCURRENCY} streams", f"{fake:.1f}",
                 "offline provider, same load", f"{off:.1f}", "runs/s"))
    rows.append((f"RunStream first event p99, fake, {CONCURRENCY} streams",
                 f"{pct(fake_firsts, 99):.2f}", "offline provider, same load",
                 f"{pct(off_firsts, 99):.2f}", "ms"))
    rss, base = await idle_rss(d, fp, token, IDLE_RUNS)
    rows.append((f"worker RSS, {IDLE_RUNS} idle provider streams",
                 f"{rss / 1024:.1f}", "worker RSS, no run", f"{base / 1024:.1f}",
                 "MiB"))
    return rows


def main():
    # Lenient: the bench measures the relay, not conformance to the APIs'
    # request rules (tests/integration/test_providers.py checks those).
    fp = fakeprov.FakeProvider(strict=False).start()
    os.environ["FAKE_KEY"] = KEY
    work = tempfile.mkdtemp(prefix="palyra-bench-prov-")
    d = Daemon(work, CONFIG.replace("@URL", fp.url("fake")).format(), ("default",))
    status = 0
    try:
        d.start()
        token = d.mint_token("default", "bench")
        asyncio.run(amain(d, fp, token))
    except Exception as e:  # noqa: BLE001 - reported, the table goes on
        log(f"failed: {e}")
        log("palyrad log tail:\n" + d.log_text()[-4000:])
        status = 1
    finally:
        if d.proc is not None and not d.stopped:
            d.stop()
        fp.stop()
    return status


if __name__ == "__main__":
    sys.exit(main())
