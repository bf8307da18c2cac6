"""Shared pieces of the chaos (tests/chaos/chaos.py) and soak
(tests/soak/soak.py) drivers: the real palyrad started through the
integration harness (tests/integration/conftest.py, imported, not copied),
per-process samples from /proc, and load clients that record every event
they were sent.

Runs with /usr/bin/python3 and PALYRA_BUILD set to an absolute build
directory whose Python stubs exist ($PALYRA_BUILD/py). Nothing here
touches anything but the daemon it started and its temporary directory.
"""
import os
import random
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))

import grpc  # noqa: E402

import conftest  # noqa: E402,F401 - also puts the stubs on sys.path
from conftest import (Daemon, auth_md, cmdline, descendants,  # noqa: E402,F401
                      event_kind, http_request, open_journal, pb, poll,
                      proc_table, run_stream, verify_chain)
from palyra.v1 import gateway_pb2_grpc as pbg  # noqa: E402

S = pb.RunStatus
TERMINAL = {S.RUN_STATUS_COMPLETED, S.RUN_STATUS_FAILED,
            S.RUN_STATUS_CANCELLED, S.RUN_STATUS_INTERRUPTED}
KINDS = {"palyra-front": "front", "palyra-journald": "journald",
         "palyra-worker": "worker"}
CALL_TIMEOUT = 30.0


def log(msg):
    sys.stdout.write(f"{time.strftime('%H:%M:%S')} {msg}\n")
    sys.stdout.flush()


# ---------------------------------------------------------------- /proc

def fd_count(pid):
    """Open descriptors of pid, None when it is gone."""
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def rss_kib(pid):
    """VmRSS of pid in KiB, None when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def tenant_of(pid):
    args = cmdline(pid)
    for a, b in zip(args, args[1:]):
        if a == "-t":
            return b
    return None


def processes(d):
    """{pid: label} of palyrad and its live children: "palyrad", "front",
    "journald", "worker TENANT"."""
    out = {d.proc.pid: "palyrad"}
    for pid, name in d.children().items():
        kind = KINDS.get(name.removesuffix(" (deleted)"))
        if kind is None:
            out[pid] = name
        elif kind == "worker":
            out[pid] = f"worker {tenant_of(pid)}"
        else:
            out[pid] = kind
    return out


def pids_by_label(d):
    out = {}
    for pid, label in processes(d).items():
        out.setdefault(label, []).append(pid)
    return {k: sorted(v) for k, v in out.items()}


def wrong_parents(d):
    """Descendants of palyrad whose parent is not palyrad: [(pid, ppid,
    comm)]. A child of a killed child is the orphan this looks for."""
    table = proc_table()
    bad = []
    for pid in descendants(d.proc.pid):
        row = table.get(pid)
        if row is not None and row[0] != d.proc.pid and row[2] not in ("Z", "X"):
            bad.append((pid, row[0], row[3]))
    return bad


def session_of(pid):
    """The session id of pid (field 6 of /proc/PID/stat), None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode("utf-8", "replace")
    except OSError:
        return None
    return int(data[data.rfind(")") + 2:].split()[3])


def strays(paths, session):
    """Live processes (not zombies) of the session palyrad led (it starts
    in a session of its own), or whose command line names one of paths:
    [(pid, cmdline)]. Another daemon of the same build, in its own
    session, is not counted."""
    out = []
    for pid, (_, _, state, _) in proc_table().items():
        if pid == os.getpid() or state in ("Z", "X"):
            continue
        text = " ".join(cmdline(pid))
        if session_of(pid) == session or any(p in text for p in paths):
            out.append((pid, text))
    return out


# ---------------------------------------------------------------- clients

class Ledger:
    """Everything the clients were sent: (run_id, seq) -> event, the tenant
    of each run, and each stream's own defects (a gap, a duplicate, a
    second run in one stream). An event is sent only after its commit, so
    each entry is an acknowledged event."""

    def __init__(self):
        self.lock = threading.Lock()
        self.events = {}        # (run_id, seq) -> RunEvent
        self.tenant = {}        # run_id -> tenant
        self.defects = []
        self.counts = {}

    def count(self, what, n=1):
        with self.lock:
            self.counts[what] = self.counts.get(what, 0) + n

    def defect(self, text):
        with self.lock:
            self.defects.append(text)

    def record(self, tenant, ev):
        key = (ev.run_id, ev.seq)
        with self.lock:
            self.tenant.setdefault(ev.run_id, tenant)
            old = self.events.get(key)
            if old is None:
                self.events[key] = ev
            elif old != ev:
                self.defects.append(
                    f"run {ev.run_id} seq {ev.seq}: two clients were sent "
                    f"different events:\n{old}\n{ev}")


class Call:
    """One RunStream or ListRunEvents call, iterated in the calling thread.
    stop_after: the client goes away after that many events."""

    def __init__(self, client, start=None, list_req=None, stop_after=None):
        self.client = client
        self.start_msg, self.list_req = start, list_req
        self.stop_after = stop_after
        self.events = []
        self.code = self.details = None
        self.left = False

    def run(self):
        c = self.client
        ch = c.get_channel()
        done = threading.Event()
        try:
            if self.list_req is not None:
                it = pbg.GatewayServiceStub(ch).ListRunEvents(
                    self.list_req, metadata=auth_md(c.token),
                    timeout=CALL_TIMEOUT)
            else:
                def requests():
                    yield pb.RunStreamRequest(start=self.start_msg)
                    done.wait(CALL_TIMEOUT)
                it = pbg.GatewayServiceStub(ch).RunStream(
                    requests(), metadata=auth_md(c.token),
                    timeout=CALL_TIMEOUT)
            c.current = it
            for ev in it:
                self.events.append(ev)
                c.ledger.record(c.tenant, ev)
                if self.stop_after is not None and \
                        len(self.events) >= self.stop_after:
                    self.left = True
                    it.cancel()
                    break
            self.code, self.details = it.code(), it.details()
        except grpc.RpcError as e:
            self.code, self.details = e.code(), e.details()
        except ValueError as e:
            # The channel was closed under the call (a dropped connection).
            self.code, self.details = grpc.StatusCode.CANCELLED, str(e)
        finally:
            done.set()
            c.current = None
        return self

    def check(self, after_seq, run_id=None):
        """Within one call: one run, seqs after_seq+1, +2, ... with no gap
        or duplicate, at most one terminal status and nothing after it."""
        if not self.events:
            return
        rid = run_id or self.events[0].run_id
        want = after_seq + 1
        for i, ev in enumerate(self.events):
            if ev.run_id != rid or ev.seq != want:
                self.client.ledger.defect(
                    f"{self.client.name}: call after_seq {after_seq} of run "
                    f"{rid}: event {i} is {ev.run_id}/{ev.seq}, expected "
                    f"{rid}/{want}; seqs {[e.seq for e in self.events]}")
                return
            if event_kind(ev) == "status" and ev.status.status in TERMINAL \
                    and i != len(self.events) - 1:
                self.client.ledger.defect(
                    f"{self.client.name}: run {rid}: events after the "
                    f"terminal status at seq {ev.seq}")
                return
            want += 1

    def terminal(self):
        return bool(self.events) and event_kind(self.events[-1]) == "status" \
            and self.events[-1].status.status in TERMINAL


class Client(threading.Thread):
    """Starts runs one after the other until stop is set. Some runs are
    left after a few events (the client goes away) and some of those are
    followed again, through a RunStream reattach (run_id, after_seq) or
    through ListRunEvents, until their terminal status."""

    def __init__(self, d, name, tenant, token, rng, ledger, stop,
                 text_words=20, leave=0.3, follow=0.7, agent=""):
        super().__init__(daemon=True, name=name)
        self.d, self.tenant, self.token = d, tenant, token
        self.rng, self.ledger, self.stop = rng, ledger, stop
        self.text_words, self.leave, self.follow = text_words, leave, follow
        self.agent = agent
        self.lock = threading.Lock()
        self.channel = None
        self.current = None
        self.run_ids = []

    def get_channel(self):
        with self.lock:
            if self.channel is None:
                # A connection of its own: grpc shares one between the
                # channels of a target otherwise, and a drop would not be.
                self.channel = grpc.insecure_channel(
                    self.d.grpc_addr, options=conftest.CHANNEL_OPTIONS +
                    [("grpc.use_local_subchannel_pool", 1)])
            return self.channel

    def drop(self):
        """Closes this client's connection under its live call."""
        with self.lock:
            ch, self.channel = self.channel, None
        if ch is not None:
            ch.close()
            return True
        return False

    def close(self):
        self.drop()

    def pause(self, s):
        self.stop.wait(s)

    def run(self):
        n = 0
        while not self.stop.is_set():
            n += 1
            try:
                self.one(n)
            except Exception as e:  # noqa: BLE001 - a defect, reported
                self.ledger.defect(f"{self.name}: {type(e).__name__}: {e}")
                self.pause(0.2)
        self.close()

    def one(self, n):
        words = " ".join(f"w{n}x{i}" for i in range(self.text_words))
        stop_after = None
        if self.rng.random() < self.leave:
            stop_after = self.rng.randint(1, 8)
        call = Call(self, start=pb.RunStart(input=words, agent=self.agent),
                    stop_after=stop_after).run()
        call.check(0)
        self.ledger.count("runs started")
        if not call.events:
            self.ledger.count(f"start {call.code.name if call.code else '?'}")
            if call.code == grpc.StatusCode.INTERNAL:
                self.ledger.count(f"start INTERNAL: {call.details}")
            self.pause(0.1)
            return
        run_id = call.events[0].run_id
        self.run_ids.append(run_id)
        if call.terminal():
            self.ledger.count("runs followed to the end")
            return
        self.ledger.count("left" if call.left else
                          f"cut {call.code.name if call.code else '?'}")
        if self.rng.random() >= self.follow:
            return
        # Follow the run again until its terminal status, with the last
        # seq this client saw; a front or journald being restarted answers
        # UNAVAILABLE meanwhile.
        seen = call.events[-1].seq
        deadline = time.monotonic() + 20
        while not self.stop.is_set() and time.monotonic() < deadline:
            if self.rng.random() < 0.5:
                c = Call(self, start=pb.RunStart(run_id=run_id, after_seq=seen))
                what = "reattach"
            else:
                c = Call(self, list_req=pb.ListRunEventsRequest(
                    run_id=run_id, after_seq=seen))
                what = "list"
            c.run()
            c.check(seen, run_id)
            self.ledger.count(f"{what} {c.code.name if c.code else '?'}")
            if c.code == grpc.StatusCode.INTERNAL:
                self.ledger.count(f"{what} INTERNAL: {c.details}")
            if c.events:
                seen = c.events[-1].seq
            if c.terminal():
                self.ledger.count("runs followed to the end")
                return
            if c.code == grpc.StatusCode.OK and not c.events:
                return      # nothing after seen: it had already ended
            self.pause(0.1)


# ---------------------------------------------------------------- stubs

def cron_stub(d, ch=None):
    return pbg.CronServiceStub(ch or d.channel)


def gateway_stub(d, ch=None):
    return pbg.GatewayServiceStub(ch or d.channel)


def retry(fn, timeout=30.0, what="a call"):
    """fn() until it does not raise UNAVAILABLE (or a transient code) or
    the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return fn()
        except grpc.RpcError as e:
            if e.code() not in (grpc.StatusCode.UNAVAILABLE,
                                grpc.StatusCode.DEADLINE_EXCEEDED,
                                grpc.StatusCode.CANCELLED,
                                grpc.StatusCode.INTERNAL) \
                    or time.monotonic() >= deadline:
                raise AssertionError(f"{what}: {e.code()} {e.details()}")
        time.sleep(0.1)


def seeded(seed_env):
    """(seed, Random) from the environment variable, or a fresh seed."""
    text = os.environ.get(seed_env, "")
    seed = int(text) if text else random.SystemRandom().randrange(1, 2**31)
    return seed, random.Random(seed)


__all__ = ["Daemon", "Client", "Call", "Ledger", "S", "TERMINAL", "pb", "pbg",
           "grpc", "auth_md", "cron_stub", "gateway_stub", "fd_count",
           "rss_kib", "processes", "pids_by_label", "wrong_parents", "strays",
           "session_of", "poll", "http_request", "open_journal",
           "verify_chain", "run_stream", "retry", "seeded", "log"]
