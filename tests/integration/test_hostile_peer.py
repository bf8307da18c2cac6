"""A hostile peer on a worker channel of palyra-journald (issue 3, DESIGN 3, 8).

The test plays the supervisor itself: it starts build/libexec/palyra-journald
with one end of a SOCK_SEQPACKET socketpair as descriptor 3 (common/proc.h),
configures it (JOURNAL_CONFIG, TENANT_LIST [alpha, beta]) and attaches two
"workers" by ATTACH_PEER, each a new socketpair end passed by SCM_RIGHTS. As
root journald gets -U with an unused uid so that its real sandbox applies.

Then the "alpha worker" misbehaves: malformed datagrams, types a worker may
not send, appends naming the other tenant, a flood without reading acks, and
many channels opened and closed. What must hold (DESIGN section 3): journald
drops the offending channel and only that one, never dies, keeps serving
beta promptly, leaves beta's journal untouched, and leaks no descriptor.
"""
import array
import os
import re
import select
import socket
import sqlite3
import struct
import subprocess
import sys
import time

import pytest

from conftest import BUILD, PY_GEN, REPO, pb, poll, verify_chain, watch_log

sys.path.insert(0, PY_GEN)
import ipc_pb2  # noqa: E402

JOURNALD = os.path.join(BUILD, "libexec", "palyra-journald")
SANDBOX_IDS = (299000, 299000)      # unused by anything else on the host
READY_TIMEOUT = 10.0
ACK_TIMEOUT = 5.0
EOF_TIMEOUT = 5.0
EXIT_TIMEOUT = 5.0
# A healthy tenant's append is acknowledged within this, whatever another
# tenant's channel does (group commit with fsync is milliseconds).
PROMPT_ACK = 1.0

S = pb.RunStatus


# ------------------------------------------------------------ wire format

def _ipc_types():
    """enum ipc_type of common/ipc.h: {"ATTACH_PEER": 1, ...}, read from the
    header so that the test follows the source of truth."""
    with open(os.path.join(REPO, "common", "ipc.h")) as f:
        text = f.read()
    body = re.search(r"enum\s+ipc_type\s*\{(.*?)\};", text, re.S).group(1)
    body = re.sub(r"/\*.*?\*/", "", body, flags=re.S)
    types, value = {}, 0
    for item in body.split(","):
        item = item.strip()
        if not item:
            continue
        name, _, explicit = item.partition("=")
        if explicit.strip():
            value = int(explicit.strip(), 0)
        types[name.strip()[len("IPC_"):]] = value
        value += 1
    return types


T = _ipc_types()
HEADER = struct.Struct("=IIII")     # type, flags, request_id, length (host order)
IPC_MAX_PAYLOAD = 200 * 1024        # common/limits.h
IPC_DATAGRAM_MAX = HEADER.size + IPC_MAX_PAYLOAD
MESSAGES = {
    T["READY"]: ipc_pb2.Ready,
    T["JOURNAL_ACK"]: ipc_pb2.JournalAck,
}


def frame(type_, payload, request_id=0, flags=0, length=None):
    return HEADER.pack(type_, flags, request_id,
                       len(payload) if length is None else length) + payload


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


class Channel:
    """Our end of one SOCK_SEQPACKET channel to journald."""

    def __init__(self, sock, name):
        self.sock, self.name = sock, name
        self.next_rid = 1

    def fileno(self):
        return self.sock.fileno()

    def send_raw(self, data, fds=()):
        anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
        return self.sock.sendmsg([data], anc)

    def send(self, type_, msg, fds=(), request_id=None, flags=0):
        if request_id is None:
            request_id = self.next_rid
            self.next_rid += 1
        self.send_raw(frame(type_, msg.SerializeToString(), request_id, flags), fds)
        return request_id

    def recv(self, timeout):
        """(type, flags, request_id, decoded message or raw bytes), or None at
        EOF. Raises TimeoutError. Descriptors received are closed."""
        r, _, _ = select.select([self.sock], [], [], timeout)
        if not r:
            raise TimeoutError(f"{self.name}: nothing within {timeout}s")
        try:
            data, anc, _, _ = self.sock.recvmsg(IPC_DATAGRAM_MAX + 1,
                                                socket.CMSG_SPACE(4 * 8))
        except ConnectionResetError:
            return None     # closed by journald with our datagrams unread
        for level, kind, cdata in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                for fd in array.array("i", cdata[:len(cdata) - len(cdata) % 4]):
                    os.close(fd)
        if not data:
            return None
        assert len(data) >= HEADER.size, f"{self.name}: short datagram {data!r}"
        type_, flags, rid, length = HEADER.unpack_from(data)
        payload = data[HEADER.size:]
        assert length == len(payload), f"{self.name}: length {length} != {len(payload)}"
        cls = MESSAGES.get(type_)
        return type_, flags, rid, cls.FromString(payload) if cls else payload

    def append(self, event, principal="", agent="", must_exist=False, request_id=None):
        return self.send(T["JOURNAL_APPEND"], ipc_pb2.JournalAppend(
            event=event, principal=principal, agent=agent,
            session_must_exist=must_exist), request_id=request_id)

    def ack(self, rid, timeout=ACK_TIMEOUT):
        """The JournalAck of request rid, or None if the channel reached EOF."""
        deadline = time.monotonic() + timeout
        while True:
            m = self.recv(max(0.0, deadline - time.monotonic()))
            if m is None:
                return None
            type_, flags, got, msg = m
            assert type_ == T["JOURNAL_ACK"], f"{self.name}: unexpected type {type_}"
            assert flags == 0
            assert got == rid, f"{self.name}: ack for request {got}, expected {rid}"
            return msg

    def outcome(self, event, principal="", agent="", must_exist=False):
        """'ok' (with the ack), 'refused' (with the ack) or 'dropped'."""
        rid = self.append(event, principal, agent, must_exist)
        a = self.ack(rid)
        if a is None:
            return "dropped", None
        if not a.ok:
            # journald may answer a malformed append, then drop the channel.
            return "refused", a
        return "ok", a

    def close(self):
        self.sock.close()


def ev(run_id, seq, session="", status=None, token=None, final=None, usage=False,
       reason=""):
    e = pb.RunEvent(run_id=run_id, seq=seq, timestamp_unix_ms=int(time.time() * 1000),
                    session_id=session)
    if status is not None:
        e.status.CopyFrom(pb.StatusEvent(status=status, reason=reason))
    elif token is not None:
        e.token.CopyFrom(pb.ModelToken(text=token))
    elif final is not None:
        e.final.CopyFrom(pb.FinalMessage(text=final))
    elif usage:
        e.usage.CopyFrom(pb.Usage(input_tokens=3, output_tokens=4, provider="offline"))
    return e


def valid_run(run_id, session):
    """The events of one complete run, as an honest worker journals them."""
    return [ev(run_id, 1, session, status=S.RUN_STATUS_ACCEPTED),
            ev(run_id, 2, session, status=S.RUN_STATUS_IN_PROGRESS),
            ev(run_id, 3, session, token="Hello"),
            ev(run_id, 4, session, token=" world"),
            ev(run_id, 5, session, final="Hello world"),
            ev(run_id, 6, session, usage=True),
            ev(run_id, 7, session, status=S.RUN_STATUS_COMPLETED)]


# ------------------------------------------------------------ journald

def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def fd_list(pid):
    out = {}
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            out[int(name)] = os.readlink(f"/proc/{pid}/fd/{name}")
        except OSError:
            pass
    return dict(sorted(out.items()))


class Journald:
    """palyra-journald with this test as its supervisor."""

    def __init__(self, workdir):
        self.workdir = str(workdir)
        self.state = os.path.join(self.workdir, "state")
        os.makedirs(self.state, mode=0o700)
        self.log_path = os.path.join(self.workdir, "journald.log")
        watch_log(self.log_path)
        args = [JOURNALD, "-s", self.state, "-d", "-v"]
        if os.geteuid() == 0:
            os.chown(self.state, *SANDBOX_IDS)
            args[3:3] = ["-U", "%d:%d" % SANDBOX_IDS]
        sup, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        cfd = child.fileno()

        def on_fd_3():
            if cfd == 3:
                os.set_inheritable(3, True)
            else:
                os.dup2(cfd, 3)         # dup2 leaves 3 inheritable

        self.log = open(self.log_path, "ab")
        # close_fds=False: every descriptor of ours is close-on-exec already;
        # only the dup2'ed 3 (and stdio) survive the exec.
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=self.log,
                                     close_fds=False, preexec_fn=on_fd_3)
        child.close()
        self.sup = Channel(sup, "supervisor")
        self.exited = False

    @property
    def pid(self):
        return self.proc.pid

    def configure(self, tenants=("alpha", "beta")):
        self.sup.send(T["JOURNAL_CONFIG"], ipc_pb2.JournalConfig(durability_full=True))
        self.sup.send(T["TENANT_LIST"], ipc_pb2.TenantList(names=list(tenants)))

    def attach(self, tenant, kind=ipc_pb2.PEER_WORKER):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.sup.send(T["ATTACH_PEER"], ipc_pb2.AttachPeer(kind=kind, tenant=tenant),
                          fds=[theirs.fileno()])
        finally:
            theirs.close()
        return Channel(ours, f"worker[{tenant}]")

    def wait_ready(self):
        m = self.sup.recv(READY_TIMEOUT)
        assert m is not None, "journald closed the supervisor channel:\n" + self.log_text()
        type_, _, _, msg = m
        assert type_ == T["READY"], f"first message of journald is type {type_}"
        assert msg.pid == self.pid, f"READY pid {msg.pid} != {self.pid}"
        return msg

    def alive(self):
        return self.proc.poll() is None

    def journal(self, tenant):
        return os.path.join(self.state, "tenants", tenant, "journal.db")

    def stop(self, timeout=EXIT_TIMEOUT):
        """Closes descriptor 3's peer; returns journald's exit status."""
        if self.exited:
            return self.proc.returncode
        self.sup.close()
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            rc = None
        self.kill()
        return rc

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.exited = True
        self.log.close()

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")[-20000:]
        except OSError:
            return ""


def dump_db(path):
    """Every row of every table of a journal.db, read-only: {table: [rows]}."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        db.execute("PRAGMA busy_timeout = 10000")
        tables = [r[0] for r in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        out = {}
        for t in tables:
            try:
                out[t] = sorted(db.execute(f'SELECT * FROM "{t}"').fetchall(),
                                key=repr)
            except sqlite3.Error as e:          # a virtual table without its module
                out[t] = f"unreadable: {e}"
        return out
    finally:
        db.close()


def rows(path, sql, args=()):
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        db.execute("PRAGMA busy_timeout = 10000")
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


class Tenant:
    """An honest worker's live run on a channel: each token must be acked."""

    def __init__(self, chan, name):
        self.chan, self.name = chan, name
        self.run_id = f"{name}-live-run"
        self.session = f"{name}-live-session"
        self.seq = 0
        self.chain_seq = None

    def start(self):
        st, a = self.chan.outcome(ev(self.run_id, 1, self.session, status=S.RUN_STATUS_ACCEPTED),
                                  principal=f"{self.name}-user", agent=f"{self.name}-agent")
        assert st == "ok", f"{self.name}: live run not accepted: {st} {a}"
        self.seq, self.chain_seq = 1, a.chain_seq
        return self

    def token(self, limit=PROMPT_ACK):
        t0 = time.monotonic()
        st, a = self.chan.outcome(ev(self.run_id, self.seq + 1, self.session, token="t"))
        took = time.monotonic() - t0
        assert st == "ok", f"{self.name}: token {self.seq + 1} not acked: {st} {a}"
        assert a.chain_seq == self.chain_seq + 1, \
            f"{self.name}: chain_seq {a.chain_seq} after {self.chain_seq}"
        assert took <= limit, f"{self.name}: ack took {took:.2f}s (limit {limit}s)"
        self.seq, self.chain_seq = self.seq + 1, a.chain_seq
        return a


@pytest.fixture
def jd(tmp_path):
    if not os.access(JOURNALD, os.X_OK):
        pytest.fail(f"not built: {JOURNALD}", pytrace=False)
    j = Journald(tmp_path)
    try:
        j.configure()
        j.alpha = j.attach("alpha")
        j.beta = j.attach("beta")
        j.ready = j.wait_ready()
        yield j
        if j.exited:
            return
        assert j.alive(), f"journald died (status {j.proc.returncode}):\n{j.log_text()}"
        rc = j.stop()
        assert rc == 0, f"journald exit status {rc} after its channel closed:\n{j.log_text()}"
    finally:
        if not j.exited:
            j.kill()


def run_valid(chan, run_id, session, principal, agent):
    acks = []
    for i, e in enumerate(valid_run(run_id, session)):
        st, a = chan.outcome(e, principal if i == 0 else "", agent if i == 0 else "")
        assert st == "ok", f"{chan.name}: {run_id} seq {e.seq}: {st} {a}"
        assert len(a.hash) == 32 and a.code == ipc_pb2.JOURNAL_OK, a
        acks.append(a)
    seqs = [a.chain_seq for a in acks]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs
    return acks


def assert_acks_stored(path, acks):
    """Every ok ack names a row of this journal with that hash."""
    stored = {cseq: bytes(h) for cseq, h in rows(path, "SELECT chain_seq, hash FROM events")}
    for a in acks:
        assert stored.get(a.chain_seq) == bytes(a.hash), \
            f"{path}: acked chain_seq {a.chain_seq} missing or different"


# ------------------------------------------------------------ tests

def test_valid_runs_are_acked_after_commit(jd):
    if os.geteuid() == 0:
        with open(f"/proc/{jd.pid}/status") as f:
            st = dict(line.split(":", 1) for line in f if ":" in line)
        assert st["Uid"].split()[0] == str(SANDBOX_IDS[0]), st["Uid"]
        assert st["NoNewPrivs"].strip() == "1"
        assert st["Seccomp"].strip() == "2"
    a_acks = run_valid(jd.alpha, "alpha-run-1", "alpha-session", "alice", "aagent")
    b_acks = run_valid(jd.beta, "beta-run-1", "beta-session", "bob", "bagent")
    # Acked means committed: a reader sees every acked event right away.
    assert_acks_stored(jd.journal("alpha"), a_acks)
    assert_acks_stored(jd.journal("beta"), b_acks)
    assert len(verify_chain(jd.journal("alpha"))) == len(a_acks)
    assert len(verify_chain(jd.journal("beta"))) == len(b_acks)
    assert rows(jd.journal("beta"), "SELECT run_id, status, last_seq, principal FROM runs") \
        == [("beta-run-1", "COMPLETED", 7, "bob")]


def _unknown_field_event():
    """JournalAppend whose event carries field 99: the codec accepts it, the
    append checks must not (it would be re-packed into the chain unchecked)."""
    e = ev("alpha-unknown", 1, "alpha-s", status=S.RUN_STATUS_ACCEPTED).SerializeToString()
    e += varint((99 << 3) | 0) + varint(1)
    return b"\x0a" + varint(len(e)) + e + b"\x12\x05alice\x1a\x01a"


def _good_append():
    return ipc_pb2.JournalAppend(
        event=ev("alpha-hostile", 1, "alpha-s", status=S.RUN_STATUS_ACCEPTED),
        principal="alice", agent="a").SerializeToString()


def _append_payload(**kw):
    return ipc_pb2.JournalAppend(**kw).SerializeToString()


APPEND = T["JOURNAL_APPEND"]
GOOD = _good_append()

# name -> datagram (header included) sent on a fresh alpha channel.
MALFORMED = {
    "empty datagram": b"",
    "truncated header": frame(APPEND, GOOD)[:HEADER.size - 6],
    "header only, declares a payload": HEADER.pack(APPEND, 0, 1, 40),
    "declared length < received": frame(APPEND, GOOD, 1, length=len(GOOD) - 1),
    "declared length > received": frame(APPEND, GOOD, 1, length=len(GOOD) + 1),
    "declared length over the limit": frame(APPEND, GOOD, 1, length=0xFFFFFFFF),
    "type NONE": frame(T["NONE"], GOOD, 1),
    "type TYPE_MAX": frame(T["TYPE_MAX"], GOOD, 1),
    "type 0xffffffff": frame(0xFFFFFFFF, GOOD, 1),
    "non-zero flags": frame(APPEND, GOOD, 1, flags=1),
    "flags high bit": frame(APPEND, GOOD, 1, flags=0x80000000),
    "garbage protobuf": frame(APPEND, b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 1),
    "protobuf length overrun": frame(APPEND, b"\x0a\xff\x01\x08", 1),
    "protobuf wrong wire type": frame(APPEND, b"\x0d\x01\x02\x03\x04", 1),
    "not allowed: TOKEN_LOOKUP": frame(T["TOKEN_LOOKUP"], ipc_pb2.TokenLookup(
        token_hash=b"\0" * 32).SerializeToString(), 1),
    "not allowed: TOKEN_STORE": frame(T["TOKEN_STORE"], ipc_pb2.TokenStore(
        tenant="beta", principal="mallory", role="admin", token_hash=b"\1" * 32,
        token_id="evil").SerializeToString(), 1),
    "not allowed: JOURNAL_CONFIG": frame(T["JOURNAL_CONFIG"], ipc_pb2.JournalConfig(
        durability_full=False).SerializeToString(), 1),
    "not allowed: TENANT_LIST": frame(T["TENANT_LIST"], ipc_pb2.TenantList(
        names=["gamma"]).SerializeToString(), 1),
    "not allowed: READY": frame(T["READY"], ipc_pb2.Ready(pid=1).SerializeToString(), 1),
    "not allowed: JOURNAL_ACK": frame(T["JOURNAL_ACK"], ipc_pb2.JournalAck(
        ok=True).SerializeToString(), 1),
    "not allowed: RUN_NOTICE": frame(T["RUN_NOTICE"], ipc_pb2.RunNotice(
        tenant="beta", event=ev("beta-live-run", 2, status=S.RUN_STATUS_INTERRUPTED)
    ).SerializeToString(), 1),
    # Append-level checks (journald may answer with an error, then drops).
    "append without event": frame(APPEND, _append_payload(principal="alice"), 1),
    "run_id with a path": frame(APPEND, _append_payload(
        event=ev("../beta/x", 1, "s", status=S.RUN_STATUS_ACCEPTED),
        principal="alice", agent="a"), 1),
    "run_id too long": frame(APPEND, _append_payload(
        event=ev("r" * 65, 1, "s", status=S.RUN_STATUS_ACCEPTED),
        principal="alice", agent="a"), 1),
    "seq 0": frame(APPEND, _append_payload(
        event=ev("alpha-r", 0, "s", status=S.RUN_STATUS_ACCEPTED),
        principal="alice", agent="a"), 1),
    "negative timestamp": frame(APPEND, _append_payload(event=pb.RunEvent(
        run_id="alpha-r", seq=1, timestamp_unix_ms=-5, session_id="s",
        status=pb.StatusEvent(status=S.RUN_STATUS_ACCEPTED)),
        principal="alice", agent="a"), 1),
    "session_id with a path": frame(APPEND, _append_payload(
        event=ev("alpha-r", 1, "../../beta", status=S.RUN_STATUS_ACCEPTED),
        principal="alice", agent="a"), 1),
    "event variant not set": frame(APPEND, _append_payload(
        event=ev("alpha-r", 1, "s"), principal="alice", agent="a"), 1),
    "status out of range": frame(APPEND, _append_payload(
        event=ev("alpha-r", 1, "s", status=99), principal="alice", agent="a"), 1),
    "principal too long": frame(APPEND, _append_payload(
        event=ev("alpha-r", 1, "s", status=S.RUN_STATUS_ACCEPTED),
        principal="p" * 65, agent="a"), 1),
    "unknown field in event": frame(APPEND, _unknown_field_event(), 1),
}


def expect_dropped(chan, what):
    """The channel reaches EOF; nothing before it is a successful ack."""
    deadline = time.monotonic() + EOF_TIMEOUT
    seen = []
    while True:
        try:
            m = chan.recv(max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            raise AssertionError(f"{what}: channel still open after {EOF_TIMEOUT}s "
                                 f"(received {seen})") from None
        except ConnectionResetError:
            return seen
        if m is None:
            return seen
        type_, _, _, msg = m
        assert type_ == T["JOURNAL_ACK"] and not msg.ok, \
            f"{what}: journald answered {type_} {msg} instead of dropping the channel"
        seen.append(msg)


def test_malformed_datagrams_drop_only_that_channel(jd):
    run_valid(jd.alpha, "alpha-run-1", "alpha-session", "alice", "aagent")
    beta = Tenant(jd.beta, "beta").start()
    alpha_before = dump_db(jd.journal("alpha"))
    failures = []

    def check(name, send):
        chan = jd.attach("alpha")
        try:
            send(chan)
            expect_dropped(chan, name)
            assert jd.alive(), f"journald died ({jd.proc.returncode})"
            beta.token()
        except AssertionError as e:
            failures.append(f"{name}: {e}")
            if not jd.alive():
                raise AssertionError("\n".join(failures) + "\n" + jd.log_text())
        finally:
            chan.close()

    # Control: the same harness with a valid append keeps the channel open.
    control = jd.attach("alpha")
    st, a = control.outcome(ev("alpha-control", 1, "alpha-s", status=S.RUN_STATUS_ACCEPTED),
                            "alice", "a")
    assert st == "ok", (st, a)
    st, a = control.outcome(ev("alpha-control", 2, "alpha-s", status=S.RUN_STATUS_COMPLETED))
    assert st == "ok", (st, a)
    with pytest.raises(TimeoutError):
        control.recv(0.2)
    control.close()
    poll(lambda: "alpha-control" in {r[0] for r in rows(
        jd.journal("alpha"), "SELECT run_id FROM runs")}, 5, what="the control run")
    alpha_before = dump_db(jd.journal("alpha"))

    for name, data in MALFORMED.items():
        check(name, lambda chan, data=data: chan.send_raw(data))

    # A datagram larger than journald's receive buffer, where the host lets
    # us send one (SO_SNDBUF is capped by net.core.wmem_max).
    big = frame(APPEND, b"\0" * (IPC_MAX_PAYLOAD + 64), 1)
    probe_a, probe_b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        probe_a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * IPC_DATAGRAM_MAX)
        probe_a.send(big)
        can_send_big = True
    except OSError:
        can_send_big = False
    finally:
        probe_a.close()
        probe_b.close()
    if can_send_big:
        def oversize(chan):
            chan.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * IPC_DATAGRAM_MAX)
            chan.send_raw(big)
        check("datagram over IPC_DATAGRAM_MAX", oversize)

    # A valid append with a stray descriptor: the whole datagram is refused
    # and the descriptor closed (a pipe whose only reader journald held
    # reports EPIPE once it is gone).
    rpipe, wpipe = os.pipe()
    try:
        def stray(chan):
            chan.send_raw(frame(APPEND, GOOD, 1), fds=[rpipe])
            os.close(rpipe)
        check("append with a stray descriptor", stray)

        def reader_gone():
            try:
                os.write(wpipe, b"x")
                return False
            except BrokenPipeError:
                return True
        try:
            poll(reader_gone, 5, what="journald to close the stray descriptor")
        except AssertionError as e:
            failures.append(f"stray descriptor: {e}")
    finally:
        os.close(wpipe)

    # Not allowed from a worker: attach a channel (as "beta", or as the
    # front). The smuggled descriptor must be closed, beta's real channel
    # must keep working (not be replaced by alpha's).
    for kind in (ipc_pb2.PEER_WORKER, ipc_pb2.PEER_FRONT, ipc_pb2.PEER_JOURNALD):
        smug_ours, smug_theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)

        def attach(chan, kind=kind, fd=smug_theirs.fileno()):
            chan.send(T["ATTACH_PEER"], ipc_pb2.AttachPeer(kind=kind, tenant="beta"),
                      fds=[fd])
            smug_theirs.close()
        check(f"not allowed: ATTACH_PEER kind {kind}", attach)
        smug = Channel(smug_ours, "smuggled")
        try:
            expect_dropped(smug, f"smuggled ATTACH_PEER kind {kind}")
        except (AssertionError, OSError) as e:
            failures.append(f"smuggled channel kind {kind}: {e}")
        finally:
            smug.close()
        beta.token()

    assert not failures, "\n".join(failures) + "\n--- journald log ---\n" + jd.log_text()
    # Nothing of any of this reached a journal or the system database.
    assert dump_db(jd.journal("alpha")) == alpha_before
    assert not os.path.exists(os.path.join(jd.state, "tenants", "gamma"))
    assert sorted(os.listdir(os.path.join(jd.state, "tenants"))) == ["alpha", "beta"]
    assert rows(os.path.join(jd.state, "system.db"), "SELECT count(*) FROM tokens") == [(0,)]
    verify_chain(jd.journal("alpha"))
    verify_chain(jd.journal("beta"))
    # A well-behaved alpha worker is served again after all that.
    chan = jd.attach("alpha")
    run_valid(chan, "alpha-run-2", "alpha-session", "alice", "aagent")
    beta.token()


def test_appends_naming_another_tenant_stay_in_their_own_journal(jd):
    # beta: one finished run and one live run whose next seq is 4.
    beta_acks = run_valid(jd.beta, "beta-run-1", "beta-session", "bob", "bagent")
    st, a = jd.beta.outcome(ev("beta-live", 1, "beta-session", status=S.RUN_STATUS_ACCEPTED),
                            "bob", "bagent")
    assert st == "ok", a
    for seq, e in ((2, ev("beta-live", 2, "beta-session", status=S.RUN_STATUS_IN_PROGRESS)),
                   (3, ev("beta-live", 3, "beta-session", token="b"))):
        st, a = jd.beta.outcome(e)
        assert st == "ok", a
    beta_head = a.chain_seq
    beta_before = dump_db(jd.journal("beta"))
    run_valid(jd.alpha, "alpha-run-1", "alpha-session", "alice", "aagent")

    chan = jd.alpha
    stored = []         # acks alpha got ok for

    def attempt(what, event, principal="", agent="", must_exist=False, allowed=("ok", "refused", "dropped")):
        nonlocal chan
        st, a = chan.outcome(event, principal, agent, must_exist)
        assert st in allowed, f"{what}: {st} {a}"
        if st == "ok":
            stored.append(a)
        if st == "dropped":
            chan.close()
            chan = jd.attach("alpha")
        return st, a

    no_store = ("refused", "dropped")
    # Continue beta's live run as if it were alpha's.
    attempt("continue beta's run", ev("beta-live", 4, "beta-session", token="evil"),
            allowed=no_store)
    attempt("finish beta's run", ev("beta-live", 4, "beta-session",
                                    status=S.RUN_STATUS_COMPLETED), allowed=no_store)
    attempt("interrupt beta's run", ev("beta-live", 4, "beta-session",
                                       status=S.RUN_STATUS_INTERRUPTED), allowed=no_store)
    # Join beta's session (named by id, so it must already exist).
    for principal in ("bob", "alice", "beta"):
        st, a = attempt(f"join beta's session as {principal}",
                        ev("alpha-join-" + principal, 1, "beta-session",
                           status=S.RUN_STATUS_ACCEPTED),
                        principal, "aagent", must_exist=True, allowed=no_store)
        if st == "refused":
            assert a.code == ipc_pb2.JOURNAL_SESSION_NOT_FOUND, a
    # Names that say "beta" everywhere: at most stored as alpha's own data.
    attempt("principal beta, agent beta", ev("alpha-named", 1, "beta",
                                             status=S.RUN_STATUS_ACCEPTED), "beta", "beta")
    attempt("beta's run id, fresh", ev("beta-live", 1, "beta-session",
                                       status=S.RUN_STATUS_ACCEPTED), "bob", "bagent")
    attempt("beta's finished run id, fresh", ev("beta-run-1", 1, "beta-session",
                                                status=S.RUN_STATUS_ACCEPTED), "bob", "beta")
    attempt("beta's run id, token", ev("beta-live", 4, "beta-session", token="evil"))
    attempt("session named like a tenant path", ev("alpha-p", 1, "tenants.beta",
                                                   status=S.RUN_STATUS_ACCEPTED), "beta", "beta")
    attempt("path in the principal", ev("alpha-q", 1, "alpha-session",
                                        status=S.RUN_STATUS_ACCEPTED), "../beta", "a")
    attempt("path in the agent", ev("alpha-q2", 1, "alpha-session",
                                    status=S.RUN_STATUS_ACCEPTED), "alice", "../../beta")

    # beta is untouched: every row, every hash, and its chain head.
    assert dump_db(jd.journal("beta")) == beta_before, "beta's journal changed"
    verify_chain(jd.journal("beta"))
    verify_chain(jd.journal("alpha"))
    assert_acks_stored(jd.journal("alpha"), stored)
    alpha_hashes = {bytes(a.hash) for a in stored}
    beta_hashes = {bytes(r[6]) for r in verify_chain(jd.journal("beta"))}
    assert not alpha_hashes & beta_hashes
    assert sorted(os.listdir(os.path.join(jd.state, "tenants"))) == ["alpha", "beta"]
    # beta's run goes on exactly where beta left it.
    st, a = jd.beta.outcome(ev("beta-live", 4, "beta-session", token="c"))
    assert st == "ok" and a.chain_seq == beta_head + 1, (st, a)
    st, a = jd.beta.outcome(ev("beta-live", 5, "beta-session", status=S.RUN_STATUS_COMPLETED))
    assert st == "ok", a
    assert rows(jd.journal("beta"), "SELECT run_id, status, last_seq, principal FROM runs "
                "ORDER BY run_id") == [("beta-live", "COMPLETED", 5, "bob"),
                                       ("beta-run-1", "COMPLETED", 7, "bob")]
    assert len(verify_chain(jd.journal("beta"))) == len(beta_acks) + 5
    chan.close()


def test_flood_without_reading_acks_is_back_pressured(jd):
    beta = Tenant(jd.beta, "beta").start()
    alpha = jd.alpha
    alpha.sock.setblocking(False)
    run_id, session = "alpha-flood", "alpha-session"
    sent = []                           # request ids, in order
    seq = 0
    limit = 200_000
    stalled = False
    t0 = time.monotonic()
    while len(sent) < limit and time.monotonic() - t0 < 20:
        seq += 1
        e = ev(run_id, seq, session, status=S.RUN_STATUS_ACCEPTED) if seq == 1 \
            else ev(run_id, seq, session, token="x" * 16)
        rid = alpha.next_rid
        data = frame(APPEND, ipc_pb2.JournalAppend(
            event=e, principal="alice" if seq == 1 else "",
            agent="aagent" if seq == 1 else "").SerializeToString(), rid)
        while True:
            try:
                alpha.sock.send(data)
                break
            except BlockingIOError:
                # journald stopped reading us if the socket stays full.
                _, w, _ = select.select([], [alpha.sock], [], 1.0)
                if not w:
                    stalled = True
                    break
        if stalled:
            seq -= 1
            break
        alpha.next_rid += 1
        sent.append(rid)
        if len(sent) % 1000 == 0:
            # While alpha floods, beta is served promptly too.
            beta.token()
    print(f"flood: {len(sent)} appends before the stall in {time.monotonic() - t0:.2f}s")
    assert stalled, (f"journald kept reading a peer that reads no acks: {len(sent)} "
                     f"appends in {time.monotonic() - t0:.1f}s without back-pressure")
    assert jd.alive()
    # journald serves beta promptly while alpha's acks pile up.
    for _ in range(20):
        beta.token()
    # Still stalled: alpha was not read meanwhile.
    _, w, _ = select.select([], [alpha.sock], [], 0)
    assert not w, "alpha's socket became writable though it read nothing"
    # alpha reads: every ack arrives, in order, committed, chain_seq 1..n.
    alpha.sock.setblocking(True)
    chain = []
    for rid in sent:
        a = alpha.ack(rid, timeout=ACK_TIMEOUT)
        assert a is not None, f"alpha's channel closed at ack {rid} of {len(sent)}"
        assert a.ok, f"append {rid} refused: {a}"
        chain.append(a.chain_seq)
    assert chain == list(range(chain[0], chain[0] + len(chain)))
    assert rows(jd.journal("alpha"), "SELECT last_seq FROM runs WHERE run_id = ?",
                (run_id,)) == [(seq,)]
    assert len(verify_chain(jd.journal("alpha"))) == len(sent)
    beta.token()


def test_no_descriptor_leak_per_closed_channel(jd):
    run_valid(jd.alpha, "alpha-run-1", "alpha-session", "alice", "aagent")
    beta = Tenant(jd.beta, "beta").start()
    beta.token()
    # Start-up plus the live channels (alpha, beta), tenants' databases open.
    base = fd_list(jd.pid)
    jd.alpha.close()
    chan = None
    for i in range(50):
        chan = jd.attach("alpha")
        mode = i % 5
        if mode == 0:       # a short run left live: reconciled when it closes
            st, a = chan.outcome(ev(f"alpha-leak-{i}", 1, "alpha-session",
                                    status=S.RUN_STATUS_ACCEPTED), "alice", "aagent")
            assert st == "ok", a
        elif mode == 1:     # malformed
            chan.send_raw(b"\x01\x02\x03")
            expect_dropped(chan, "garbage")
        elif mode == 2:     # a stray descriptor
            r, w = os.pipe()
            chan.send_raw(frame(APPEND, GOOD, 1), fds=[r, w])
            os.close(r)
            os.close(w)
            expect_dropped(chan, "stray descriptors")
        elif mode == 3:     # an unanswered append, closed at once
            chan.append(ev(f"alpha-leak-{i}", 1, "alpha-session",
                           status=S.RUN_STATUS_ACCEPTED), "alice", "aagent")
        # mode 4: attached and closed without a word
        chan.close()
    beta.token()
    chan = jd.attach("alpha")
    run_valid(chan, "alpha-run-2", "alpha-session", "alice", "aagent")
    try:
        poll(lambda: fd_count(jd.pid) <= len(base), 5,
             what="journald's descriptors to return to the start-up count")
    except AssertionError:
        raise AssertionError(f"descriptor leak: {len(base)} after start-up, "
                             f"{fd_count(jd.pid)} now\nbefore: {base}\nnow: {fd_list(jd.pid)}")
    assert fd_count(jd.pid) == len(base)
    verify_chain(jd.journal("alpha"))
    verify_chain(jd.journal("beta"))
    chan.close()


def test_closing_the_supervisor_channel_stops_journald(jd):
    run_valid(jd.alpha, "alpha-run-1", "alpha-session", "alice", "aagent")
    beta = Tenant(jd.beta, "beta").start()
    beta.token()
    t0 = time.monotonic()
    rc = jd.stop()
    took = time.monotonic() - t0
    assert rc == 0, f"exit status {rc}:\n{jd.log_text()}"
    assert took <= EXIT_TIMEOUT
    # The worker channels went with it.
    for chan in (jd.alpha, jd.beta):
        expect_dropped(chan, f"{chan.name} after journald exited")
    verify_chain(jd.journal("alpha"))
    # beta's live run was left by its worker at exit: at most INTERRUPTED,
    # never lost, and the chain is whole.
    assert len(verify_chain(jd.journal("beta"))) >= 2
