#!/usr/bin/python3
"""host.py: the start and memory rows of `make bench` (tests/bench/run.sh).

Starts palyrad (tests/integration/conftest.py's Daemon, as root when the
bench runs as root: every child under its own uid, in its own namespaces)
and measures:

  cold start to serving: from the exec of palyrad, on a configuration of one
      tenant and a state directory that does not exist yet, to the first
      answered GET /healthz (HTTP 200) and then the first answered gRPC
      GetHealth (h2c, "SERVING"), median of COLD_RUNS starts; beside the
      0.2 s target (ratio target / value: above 100% is faster than the
      target) and beside nghttpd (h2c, no TLS) from its exec to its first
      answered GET of a small file, polled by the same client in the same
      run (a trivial C server of the same protocol: no state, no children);
  an idle worker: its VmRSS and Pss once it finished one offline run (its
      idle-timeout far away), beside the 20 MiB idle-host budget;
  the resident memory of the whole host (the sum of Pss over palyrad and
      every descendant) with one tenant configured and no worker, with
      1,000 tenants configured (workers start on first use: none runs),
      and with 100 tenants that each ran once (100 idle workers alive),
      each beside the one-tenant host of the same run: the totals, and what
      each further tenant adds (the total less the one-tenant host, over
      N - 1).

The pollers of the cold start are raw sockets (HTTP/1.1 and HTTP/2 frames
written by hand), retried every millisecond: a gRPC library's channel
start and back-off would be measured otherwise. Prints one tab-separated
line per row on stdout: NAME VALUE CEILING_NAME CEILING UNIT. Progress goes
to stderr.
"""
import asyncio
import os
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import grpc.aio  # noqa: E402

from conftest import (CHANNEL_OPTIONS, PALYRAD, Daemon, descendants,  # noqa: E402
                      exe_name, free_ports, pb, poll)

COLD_RUNS = int(os.environ.get("HOST_BENCH_COLD_RUNS", "9"))
LAZY_TENANTS = int(os.environ.get("HOST_BENCH_LAZY_TENANTS", "1000"))
ACTIVE_TENANTS = int(os.environ.get("HOST_BENCH_ACTIVE_TENANTS", "100"))
START_TARGET_MS = 200.0         # palyrad serving 0.2 s after exec
IDLE_BUDGET_MIB = 20.0          # an idle host of one tenant
SERVE_TIMEOUT = 10.0            # one cold start
BIG_START_TIMEOUT = 120.0       # 1,000 tenants: a journal each
RUN_STREAM = "/palyra.v1.GatewayService/RunStream"
GET_HEALTH = "/palyra.v1.GatewayService/GetHealth"
NGHTTPD = shutil.which("nghttpd") or "/usr/sbin/nghttpd"
S = pb.RunStatus
TERMINAL = {S.RUN_STATUS_COMPLETED, S.RUN_STATUS_FAILED,
            S.RUN_STATUS_CANCELLED, S.RUN_STATUS_INTERRUPTED}

HEAD = """\
state-dir "{{state}}"
listen grpc 127.0.0.1:{{grpc_port}}
listen http 127.0.0.1:{{http_port}}
journal {{{{ durability normal }}}}
provider "offline" {{{{ type offline }}}}
"""
TENANT = ('tenant "{name}" {{{{ idle-timeout 1h; '
          'agent "assistant" {{{{ providers "offline" }}}} }}}}\n')


def config(tenants):
    return HEAD.format() + "".join(TENANT.format(name=t) for t in tenants)


def tenant_names(n):
    return ["default"] + [f"t{i:04d}" for i in range(1, n)]


def log(*a):
    print("host.py:", *a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- pollers

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def frame(ftype, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", stream) + payload


def literal(name, value):
    """An HPACK literal header field without indexing, new name."""
    name, value = name.encode(), value.encode()
    assert len(name) < 127 and len(value) < 127
    return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value


def recv_some(sock, buf, deadline):
    sock.settimeout(max(0.001, deadline - time.monotonic()))
    data = sock.recv(1 << 16)
    if not data:
        raise ConnectionError("closed")
    return buf + data


def try_healthz(port, deadline):
    """True once GET /healthz answers 200."""
    with socket.create_connection(("127.0.0.1", port), timeout=1.0) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  b"Connection: close\r\n\r\n")
        buf = b""
        while b"\r\n" not in buf:
            buf = recv_some(s, buf, deadline)
        return buf.split(b"\r\n", 1)[0].split()[1:2] == [b"200"]


def try_h2(port, method, path, headers, body, want, deadline):
    """One HTTP/2 request with prior knowledge; True once a DATA frame of
    stream 1 holds `want`."""
    block = b"".join(literal(n, v) for n, v in (
        (":method", method), (":scheme", "http"), (":path", path),
        (":authority", "127.0.0.1")) + headers)
    out = PREFACE + frame(4, 0, 0)
    if body is None:
        out += frame(1, 0x5, 1, block)              # END_STREAM|END_HEADERS
    else:
        out += frame(1, 0x4, 1, block) + frame(0, 0x1, 1, body)
    with socket.create_connection(("127.0.0.1", port), timeout=1.0) as s:
        s.sendall(out)
        buf, data = b"", b""
        while True:
            buf = recv_some(s, buf, deadline)
            while len(buf) >= 9:
                length = struct.unpack(">I", b"\x00" + buf[:3])[0]
                if len(buf) < 9 + length:
                    break
                ftype, flags = buf[3], buf[4]
                sid = struct.unpack(">I", buf[5:9])[0] & 0x7fffffff
                payload = buf[9:9 + length]
                buf = buf[9 + length:]
                if ftype == 4 and not flags & 1:
                    s.sendall(frame(4, 1, 0))
                elif ftype == 0 and sid == 1:
                    data += payload
                    if want in data:
                        return True
                elif ftype in (3, 7) or (sid == 1 and flags & 1):
                    return False        # refused, or ended without it


def try_get_health(port, deadline):
    return try_h2(port, "POST", GET_HEALTH,
                  (("content-type", "application/grpc"), ("te", "trailers")),
                  b"\x00\x00\x00\x00\x00", b"SERVING", deadline)


def wait_answer(proc, attempt, what):
    """Retries attempt(deadline) every millisecond; returns the time of
    its first success."""
    deadline = time.monotonic() + SERVE_TIMEOUT
    last = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what}: the server exited with {proc.returncode}")
        try:
            if attempt(deadline):
                return time.monotonic()
        except OSError as e:            # refused, reset, closed: not yet
            last = e
        time.sleep(0.001)
    raise RuntimeError(f"{what}: no answer within {SERVE_TIMEOUT}s ({last!r})")


# ---------------------------------------------------------------- start

class TimedDaemon(Daemon):
    """A Daemon whose start is timed from the exec, polled by raw sockets."""

    def start_timed(self):
        """Starts palyrad; returns (ms to /healthz, ms to both answered)."""
        self.grpc_port, self.http_port = free_ports(2)
        with open(self.conf, "w") as f:
            f.write(self.template.format(state=self.state,
                                         grpc_port=self.grpc_port,
                                         http_port=self.http_port))
        self.log = open(self.log_path, "ab")
        t0 = time.monotonic()
        self.proc = subprocess.Popen(
            [PALYRAD, "-d", "-f", self.conf], cwd=self.workdir,
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log,
            start_new_session=True)
        try:
            t_http = wait_answer(self.proc, lambda dl: try_healthz(
                self.http_port, dl), "palyrad /healthz")
            t_grpc = wait_answer(self.proc, lambda dl: try_get_health(
                self.grpc_port, dl), "palyrad GetHealth")
        except Exception:
            self.record()
            self.kill()
            raise
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()
        return (t_http - t0) * 1000, (t_grpc - t0) * 1000


def palyrad_cold(root, i):
    """(ms to /healthz answered, ms to both answered)."""
    d = TimedDaemon(os.path.join(root, f"cold{i}"), config(["default"]),
                    ("default",))
    try:
        return d.start_timed()
    finally:
        if d.proc is not None and not d.stopped:
            d.stop()


def nghttpd_cold(root, i):
    www = os.path.join(root, f"www{i}")
    os.makedirs(www)
    with open(os.path.join(www, "healthz"), "w") as f:
        f.write("SERVING\n")
    (port,) = free_ports(1)
    t0 = time.monotonic()
    proc = subprocess.Popen([NGHTTPD, "--no-tls", "-d", www, str(port)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        t = wait_answer(proc, lambda dl: try_h2(port, "GET", "/healthz", (),
                                                None, b"SERVING", dl), "nghttpd")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return (t - t0) * 1000


def cold_start(root, rows):
    pal, ng = [], []
    for i in range(COLD_RUNS):        # interleaved: the same machine noise
        pal.append(palyrad_cold(root, i))
        ng.append(nghttpd_cold(root, i))
    http = statistics.median(p[0] for p in pal)
    both = statistics.median(p[1] for p in pal)
    ngm = statistics.median(ng)
    log(f"cold start, ms: palyrad {[f'{p[1]:.1f}' for p in pal]}, "
        f"nghttpd {[f'{n:.1f}' for n in ng]}")
    rows.append((f"cold start to serving, median of {COLD_RUNS} (target/value)",
                 f"{both:.1f}", "target", f"{START_TARGET_MS:.1f}", "ms", "inv"))
    rows.append((f"cold start to serving, median of {COLD_RUNS}", f"{both:.1f}",
                 "nghttpd exec to first answer", f"{ngm:.1f}", "ms"))
    log(f"cold start to /healthz alone: median {http:.1f} ms")


# ---------------------------------------------------------------- memory

def mem_kib(pid):
    """(VmRSS, Pss) of one process in KiB; (0, 0) once it is gone."""
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        return 0, 0
    return rss, pss


def host_mem(d, verbose=False):
    """(sum of VmRSS, sum of Pss) in KiB over palyrad and its descendants,
    and the number of processes; verbose: logs them by executable."""
    pids = [d.proc.pid] + list(descendants(d.proc.pid))
    m = [mem_kib(p) for p in pids]
    by = {}
    for pid, (r, p) in zip(pids, m):
        k = exe_name(pid)
        n0, r0, p0 = by.get(k, (0, 0, 0))
        by[k] = (n0 + 1, r0 + r, p0 + p)
    if verbose:
        log("  " + ", ".join(f"{k} x{n}: RSS {r} KiB, Pss {p} KiB"
                             for k, (n, r, p) in sorted(by.items())))
    return sum(r for r, _ in m), sum(p for _, p in m), len(pids)


def open_journals(d):
    """How many tenant journals journald holds open."""
    (pid,) = d.pids_of("palyra-journald")
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").endswith("/journal.db"):
                n += 1
        except OSError:
            pass
    return n


def settled(d, n):
    """host_mem once journald holds the n journals open and the sum of Pss
    stayed within 1% for two seconds in a row (journald opens the journals
    of a large host after it began serving)."""
    t0 = time.monotonic()
    poll(lambda: open_journals(d) >= n, 120, interval=0.1,
         what=f"journald to open {n} journals")
    log(f"{n} journals open {time.monotonic() - t0:.1f} s after serving")
    last, calm = host_mem(d)[1], 0
    deadline = time.monotonic() + 120
    while calm < 2 and time.monotonic() < deadline:
        time.sleep(1.0)
        cur = host_mem(d)[1]
        calm = calm + 1 if abs(cur - last) <= last / 100 else 0
        last = cur
    if calm < 2:
        raise RuntimeError("the host's memory did not settle within 120 s")
    return host_mem(d, True)


def channel(d, i):
    return grpc.aio.insecure_channel(d.grpc_addr, options=CHANNEL_OPTIONS + [
        ("grpc.use_local_subchannel_pool", 1), ("palyra.bench.channel", i)])


async def one_run(ch, token):
    call = ch.stream_stream(RUN_STREAM,
                            request_serializer=pb.RunStreamRequest.SerializeToString,
                            response_deserializer=pb.RunEvent.FromString)
    req = pb.RunStreamRequest(start=pb.RunStart(agent="assistant",
                                                input="bench run"))
    status = None
    async for ev in call(iter([req]), metadata=[
            ("authorization", f"Bearer {token}")], timeout=60):
        if ev.WhichOneof("event") == "status" and ev.status.status in TERMINAL:
            status = ev.status.status
    if status != S.RUN_STATUS_COMPLETED:
        raise RuntimeError(f"a bench run ended with {status}")


async def run_each(d, tokens, conc=8):
    """One offline run per token, at most conc at a time."""
    chans = [channel(d, i) for i in range(2)]
    sem = asyncio.Semaphore(conc)

    async def one(i, tok):
        async with sem:
            await one_run(chans[i % len(chans)], tok)
    try:
        await asyncio.gather(*(one(i, t) for i, t in enumerate(tokens)))
    finally:
        for ch in chans:
            await ch.close()


def workers(d):
    return d.pids_of("palyra-worker")


def one_tenant(root, rows):
    """The one-tenant host before and after its first run, and its idle
    worker. Returns (host Pss without worker, host Pss with it) in KiB."""
    d = Daemon(os.path.join(root, "one"), config(["default"]), ("default",))
    try:
        d.start()
        rss0, pss0, n0 = settled(d, 1)
        log(f"one tenant, no worker: {n0} processes, RSS {rss0} KiB, "
            f"Pss {pss0} KiB")
        token = d.mint_token("default", "bench")
        asyncio.run(run_each(d, [token]))
        (wpid,) = poll(lambda: workers(d), 10, what="the worker")
        rss1, pss1, n1 = settled(d, 1)
        wrss, wpss = mem_kib(wpid)
        log(f"one tenant, idle worker: {n1} processes, RSS {rss1} KiB, "
            f"Pss {pss1} KiB; worker RSS {wrss} KiB, Pss {wpss} KiB")
        if workers(d) != [wpid]:
            raise RuntimeError("the idle worker did not stay")
    except Exception:
        log("palyrad log tail:\n" + d.log_text()[-3000:])
        raise
    finally:
        if d.proc is not None and not d.stopped:
            d.stop()
    rows.append(("idle worker RSS, after one run", f"{wrss / 1024:.1f}",
                 "idle-host budget", f"{IDLE_BUDGET_MIB:.1f}", "MiB"))
    rows.append(("idle worker Pss, after one run", f"{wpss / 1024:.1f}",
                 "idle-host budget", f"{IDLE_BUDGET_MIB:.1f}", "MiB"))
    rows.append(("host Pss, 1 tenant, no worker", f"{pss0 / 1024:.1f}",
                 "idle-host budget", f"{IDLE_BUDGET_MIB:.1f}", "MiB"))
    rows.append(("host Pss, 1 tenant, idle worker", f"{pss1 / 1024:.1f}",
                 "idle-host budget", f"{IDLE_BUDGET_MIB:.1f}", "MiB"))
    return pss0, pss1


def many_tenants(root, n, active, base, rows):
    """A host of n tenants; with `active`, each runs once and its worker
    stays. base: the one-tenant host's Pss (KiB) of the same run."""
    names = tenant_names(n)
    d = Daemon(os.path.join(root, f"many{n}{'a' if active else ''}"),
               config(names), tuple(names))
    d_ready = Daemon._wait_ready

    def slow_ready(self):       # a journal per tenant to create first
        deadline = time.monotonic() + BIG_START_TIMEOUT
        while True:
            try:
                return d_ready(self)
            except AssertionError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise
    d._wait_ready = slow_ready.__get__(d)
    try:
        t0 = time.monotonic()
        d.start()
        log(f"{n} tenants: serving after {time.monotonic() - t0:.1f} s")
        if active:
            tokens = [d.mint_token(t, "bench") for t in names]
            t0 = time.monotonic()
            asyncio.run(run_each(d, tokens))
            log(f"{n} runs, one a tenant: {time.monotonic() - t0:.1f} s")
            poll(lambda: len(workers(d)) == n, 30, interval=0.2,
                 what=f"{n} workers")
        elif workers(d):
            raise RuntimeError("a worker started without a run")
        rss, pss, procs = settled(d, n)
        if len(workers(d)) != (n if active else 0):
            raise RuntimeError(f"{len(workers(d))} workers, not "
                               f"{n if active else 0}")
        log(f"{n} tenants{' active' if active else ''}: {procs} processes, "
            f"RSS {rss} KiB, Pss {pss} KiB")
    except Exception:
        log("palyrad log tail:\n" + d.log_text()[-3000:])
        raise
    finally:
        if d.proc is not None and not d.stopped:
            d.stop()
    what = "active, each ran once" if active else "lazy, no worker"
    ref = "host Pss, 1 tenant" + (", idle worker" if active else "")
    rows.append((f"host Pss, {n} tenants {what}", f"{pss / 1024:.1f}", ref,
                 f"{base / 1024:.1f}", "MiB"))
    rows.append((f"host Pss per added tenant, {n} {what.split(',')[0]}",
                 f"{(pss - base) / (n - 1):.0f}", ref, f"{base}", "KiB"))


# ---------------------------------------------------------------- main

class Rows(list):
    """Printed as they come: a later failure keeps the earlier rows."""

    def append(self, r):
        print("\t".join(r), flush=True)
        super().append(r)


def main():
    root = tempfile.mkdtemp(prefix="palyra-bench-host-")
    rows = Rows()
    status = 0
    steps = (
        ("cold start", lambda: cold_start(root, rows)),
        ("memory", lambda: memory(root, rows)),
    )
    for what, step in steps:
        try:
            step()
        except Exception as e:  # noqa: BLE001 - reported, the table goes on
            log(f"{what} failed: {e!r}")
            status = 1
    shutil.rmtree(root, ignore_errors=True)
    return status


def memory(root, rows):
    idle, busy = one_tenant(root, rows)
    many_tenants(root, LAZY_TENANTS, False, idle, rows)
    many_tenants(root, ACTIVE_TENANTS, True, busy, rows)


if __name__ == "__main__":
    sys.exit(main())
