"""Journal operations (issue 4): redaction by value, pruning behind a signed
anchor, the per-tenant journal quota, and kill -9 of journald under load.

What is asserted is what an operator and a client see: the bytes of the
database files, the export, palyrad's log, the events and status a client
receives, and verification through the admin API and an independent
recomputation of the chain here.
"""
import base64
import glob
import json
import os
import signal
import sqlite3
import time

import grpc
import pytest

from conftest import (OFFLINE_REPLY, PALYRACTL, Daemon, _blob, _require_binaries,
                      chain_link, event_kind, http_request, journal_events, pb,
                      poll, run_stream, verify_chain)
from test_faults import SLOW_INPUT, TERMINAL, Stream

try:
    import nacl.exceptions
    import nacl.signing
except ImportError:  # pragma: no cover - python3-nacl is in `make deps`
    nacl = None

SECRET = "sk-palyra-TEST-7f3a9c2e51d04b6b"
ANCHOR_MAGIC = b"palyra.anchor.v1"
S = pb.RunStatus

OPS_CONFIG = """\
state-dir "{state}"
listen grpc 127.0.0.1:{grpc_port}
listen http 127.0.0.1:{http_port}
journal {{ durability full }}
provider "offline" {{ type offline }}
provider "keyed" {{ type offline; api-key env:PALYRA_TEST_SECRET }}
provider "slow" {{ type offline; token-delay 40ms }}
tenant "default" {{ agent "assistant" {{ providers "keyed" }} }}
tenant "small" {{ journal-quota 256K; agent "helper" {{ providers "offline" }} }}
tenant "slow" {{ agent "snail" {{ providers "slow" }} }}
"""
TENANTS = ("default", "small", "slow")


@pytest.fixture
def ops(tmp_path, monkeypatch):
    _require_binaries()
    # palyrad's environment: the supervisor resolves env:PALYRA_TEST_SECRET.
    monkeypatch.setenv("PALYRA_TEST_SECRET", SECRET)
    d = Daemon(tmp_path / "d", OPS_CONFIG, TENANTS)
    yield d.start()
    if not d.stopped:
        d.kill()


def ctl(d, *args, check=None):
    env = dict(os.environ, PALYRA_URL=d.http_url, PALYRA_GRPC=d.grpc_addr)
    env.pop("PALYRA_ADMIN_TOKEN", None)
    import subprocess
    r = subprocess.run([PALYRACTL, "-s", d.state, *args], capture_output=True,
                       text=True, timeout=60, env=env)
    if check is not None:
        assert r.returncode == check, f"palyractl {args}: {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r


def verify(d, tenant):
    st, body = http_request(d, "POST", "/admin/v1/journal/verify",
                            {"tenant": tenant}, token=d.admin_token)
    assert st == 200, (st, body)
    (r,) = body["results"]
    return r


def export_lines(d, tenant):
    r = ctl(d, "journal", "export", "--tenant", tenant, check=0)
    return [json.loads(line) for line in r.stdout.splitlines()]


def db_bytes(d, tenant):
    out = b""
    for p in glob.glob(d.journal_path(tenant) + "*"):
        with open(p, "rb") as f:
            out += f.read()
    return out


# ------------------------------------------------------------- redaction

def test_secret_is_redacted_everywhere(ops):
    d = ops
    tok = d.mint_token("default", "alice")
    text = f"please keep {SECRET} safe"
    res = run_stream(d.channel, tok, text)
    assert res.code == grpc.StatusCode.OK, res
    redacted = OFFLINE_REPLY.format(text.replace(SECRET, "[REDACTED]"))
    final = [ev.final.text for ev in res.events if event_kind(ev) == "final"]
    # The client received the committed, redacted events, not the worker's.
    assert final == [redacted], final
    tokens = "".join(ev.token.text for ev in res.events if event_kind(ev) == "token")
    assert tokens == redacted
    for ev in res.events:
        assert SECRET not in str(ev), ev
    run_id = res.events[0].run_id

    # What the client saw is what is stored, byte for byte.
    rows = verify_chain(d.journal_path("default"))
    stored = {(r[1], r[2]): pb.RunEvent.FromString(_blob(r[5])) for r in rows}
    for ev in res.events:
        assert stored[(ev.run_id, ev.seq)] == ev
    assert verify(d, "default")["ok"]

    lines = export_lines(d, "default")
    assert any(line.get("run_id") == run_id for line in lines)
    secret = SECRET.encode()
    b64 = base64.b64encode(secret)
    export_text = "\n".join(json.dumps(line) for line in lines)
    assert SECRET not in export_text
    for line in lines:
        assert secret not in base64.b64decode(line["payload_b64"])
    raw = db_bytes(d, "default")
    assert raw, "no journal files"
    assert secret not in raw and b64 not in raw
    d.assert_clean_stop()
    raw = db_bytes(d, "default")
    assert secret not in raw and b64 not in raw
    log = d.log_text()
    assert "secret value(s)" in log
    assert SECRET not in log


FILE_KEY_CONFIG = """\
state-dir "{{state}}"
listen grpc 127.0.0.1:{{grpc_port}}
listen http 127.0.0.1:{{http_port}}
provider "filed" {{{{ type offline; api-key file:{key} }}}}
tenant "default" {{{{ agent "assistant" {{{{ providers "filed" }}}} }}}}
"""


def final_text(res):
    return [ev.final.text for ev in res.events if event_kind(ev) == "final"]


def test_file_key_redacted_and_reloaded(tmp_path):
    """api-key file:PATH, read by palyrad (trailing newline stripped), and
    read again at a reload: the registry is replaced."""
    _require_binaries()
    key = tmp_path / "provider.key"
    key.write_text("first-secret-value-0001\n")
    os.chmod(key, 0o600)
    d = Daemon(tmp_path / "d", FILE_KEY_CONFIG.format(key=key), ("default",))
    d.start()
    try:
        tok = d.mint_token("default", "alice")
        res = run_stream(d.channel, tok, "a first-secret-value-0001 b")
        assert res.code == grpc.StatusCode.OK, res
        assert final_text(res) == [OFFLINE_REPLY.format("a [REDACTED] b")]

        key.write_text("second-secret-value-0002\n")
        mark = len(d.log_text())
        d.proc.send_signal(signal.SIGHUP)
        poll(lambda: "registered for redaction" in d.log_text()[mark:], 10,
             what="journald's new registry")
        res = run_stream(d.channel, tok,
                         "first-secret-value-0001 second-secret-value-0002")
        assert res.code == grpc.StatusCode.OK, res
        assert final_text(res) == [OFFLINE_REPLY.format(
            "first-secret-value-0001 [REDACTED]")]
        raw = db_bytes(d, "default")
        assert b"second-secret-value-0002" not in raw
        assert verify(d, "default")["ok"]
        assert "second-secret-value" not in d.log_text()
        d.assert_clean_stop()
    finally:
        if not d.stopped:
            d.kill()


# ------------------------------------------------------------- prune

def anchor_message(tenant, seq, h, ts_ms, before_ms):
    t = tenant.encode()
    return (ANCHOR_MAGIC + len(t).to_bytes(4, "big") + t + seq.to_bytes(8, "big")
            + h + ts_ms.to_bytes(8, "big", signed=True)
            + before_ms.to_bytes(8, "big", signed=True))


def test_prune_keeps_the_chain_verifiable(ops):
    d = ops
    tok = d.mint_token("default", "pruner")
    for i in range(3):
        assert run_stream(d.channel, tok, f"old {i}").code == grpc.StatusCode.OK
    # A checkpoint the prune will go past.
    st, _ = http_request(d, "POST", "/admin/v1/journal/checkpoint",
                         {"tenant": "default"}, token=d.admin_token)
    assert st == 200
    old = journal_events(d.journal_path("default"))
    time.sleep(0.01)
    cut = int(time.time() * 1000)
    time.sleep(0.01)
    for i in range(2):
        assert run_stream(d.channel, tok, f"new {i}").code == grpc.StatusCode.OK
    total = len(journal_events(d.journal_path("default")))

    # The append-only trigger still refuses a DELETE without an anchor.
    db = sqlite3.connect(d.journal_path("default"), timeout=10)
    try:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            db.execute("DELETE FROM events WHERE chain_seq = 1")
    finally:
        db.close()

    st, body = http_request(d, "POST", "/admin/v1/journal/prune",
                            {"tenant": "default", "before_ms": cut},
                            token=d.admin_token)
    assert st == 200, (st, body)
    last_old = old[-1]
    assert body["events"] == len(old), body
    assert body["runs"] == 3, body
    anchor = body["anchor"]
    assert anchor["chain_seq"] == last_old[0]
    assert anchor["hash"] == _blob(last_old[6]).hex()

    # The anchor's signature verifies with the published key.
    st, key = http_request(d, "GET", "/admin/v1/journal/pubkey", token=d.admin_token)
    assert st == 200
    if nacl is not None:
        vk = nacl.signing.VerifyKey(bytes.fromhex(key["public_key"]))
        vk.verify(anchor_message("default", anchor["chain_seq"],
                                 bytes.fromhex(anchor["hash"]), anchor["ts_ms"],
                                 anchor["before_ms"]),
                  bytes.fromhex(anchor["signature"]))

    rows = journal_events(d.journal_path("default"))
    assert len(rows) == total - len(old)
    assert rows[0][0] == anchor["chain_seq"] + 1
    # Recomputed here from the anchor: every remaining link holds.
    prev = bytes.fromhex(anchor["hash"])
    for cseq, rid, rseq, ts, kind, payload, h in rows:
        prev = chain_link(prev, cseq, rid, rseq, ts, _blob(payload))
        assert _blob(h) == prev
    r = verify(d, "default")
    assert r["ok"], r
    assert r["events"] == len(rows)

    # Even with the anchor in place, the trigger refuses deleting newer events.
    db = sqlite3.connect(d.journal_path("default"), timeout=10)
    try:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            db.execute("DELETE FROM events WHERE chain_seq = ?", (rows[0][0],))
    finally:
        db.close()

    # The export starts at the anchor.
    lines = export_lines(d, "default")
    assert lines[0] == {"anchor": anchor}, lines[0]
    assert [line["chain_seq"] for line in lines[1:]] == [r[0] for r in rows]

    # The chain goes on from there, checkpoints too, and a second prune
    # with nothing old enough keeps the anchor.
    assert run_stream(d.channel, tok, "after prune").code == grpc.StatusCode.OK
    st, body = http_request(d, "POST", "/admin/v1/journal/checkpoint",
                            {"tenant": "default"}, token=d.admin_token)
    assert st == 200 and body["checkpoints"][0]["written"], body
    r = ctl(d, "journal", "prune", "--tenant", "default", "--older-than", "1d", check=0)
    assert "0 event(s) and 0 run(s) pruned" in r.stdout, r.stdout
    assert verify(d, "default")["ok"]
    d.assert_clean_stop()

    # After a restart the head is where it was.
    d2 = Daemon(d.workdir, OPS_CONFIG, TENANTS)
    d2.start()
    try:
        tok = d2.mint_token("default", "pruner")
        assert run_stream(d2.channel, tok, "restarted").code == grpc.StatusCode.OK
        assert verify(d2, "default")["ok"]
        d2.assert_clean_stop()
    finally:
        if not d2.stopped:
            d2.kill()


def test_prune_stops_at_a_run_in_progress(ops):
    d = ops
    tok = d.mint_token("slow", "pruner")
    ch = d.new_channel()
    s = Stream(ch, tok)
    s.start()
    poll(lambda: s.tokens() >= 2, 10, what="a slow run producing tokens")
    first = journal_events(d.journal_path("slow"))[0][0]
    st, body = http_request(d, "POST", "/admin/v1/journal/prune",
                            {"tenant": "slow", "before_ms": int(time.time() * 1000) + 60000},
                            token=d.admin_token)
    assert st == 200, (st, body)
    # The first event of the slow tenant's journal belongs to the live run.
    assert body["events"] == 0 and body["anchor"] is None, body
    assert journal_events(d.journal_path("slow"))[0][0] == first
    s.finish()
    ch.close()
    assert s.code == grpc.StatusCode.OK
    assert verify(d, "slow")["ok"]
    d.assert_clean_stop()


def test_prune_refuses_bad_requests(ops):
    d = ops
    for body, want in (({"tenant": "default"}, 400),
                       ({"tenant": "default", "before_ms": -1}, 400),
                       ({"tenant": "default", "before_ms": 1, "x": 1}, 400),
                       ({"tenant": "nope", "before_ms": 1}, 404)):
        st, _ = http_request(d, "POST", "/admin/v1/journal/prune", body,
                             token=d.admin_token)
        assert st == want, (body, st)
    st, _ = http_request(d, "POST", "/admin/v1/journal/prune",
                         {"tenant": "default", "before_ms": 1})
    assert st == 401
    r = ctl(d, "journal", "prune", "--tenant", "default", "--older-than", "soon")
    assert r.returncode != 0 and "duration" in r.stderr
    r = ctl(d, "journal", "prune", "--tenant", "default")
    assert r.returncode != 0
    d.assert_clean_stop()


# ------------------------------------------------------------- quota

def test_quota_refusal_reaches_the_client(ops):
    d = ops
    tok = d.mint_token("small", "filler")
    word = "x" * 3000
    refused = None
    completed = []
    for i in range(100):
        res = run_stream(d.channel, tok, f"{word}{i}")
        if res.code == grpc.StatusCode.OK:
            assert res.events[-1].status.status == S.RUN_STATUS_COMPLETED
            completed.append(res)
            continue
        refused = res
        break
    assert refused is not None, "the quota was never reached"
    assert refused.code == grpc.StatusCode.RESOURCE_EXHAUSTED, refused
    assert refused.details == "journal quota exceeded", refused.details
    assert completed, "no run fitted the quota"
    # Still refused; nothing acknowledged was lost; the chain holds.
    res = run_stream(d.channel, tok, "one more")
    assert res.code == grpc.StatusCode.RESOURCE_EXHAUSTED, res
    rows = verify_chain(d.journal_path("small"))
    stored = {(r[1], r[2]): pb.RunEvent.FromString(_blob(r[5])) for r in rows}
    for run in completed + [refused]:
        for ev in run.events:
            assert stored[(ev.run_id, ev.seq)] == ev
    assert verify(d, "small")["ok"]
    db = sqlite3.connect(f"file:{d.journal_path('small')}?mode=ro", uri=True)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        live = db.execute("SELECT count(*) FROM runs WHERE status NOT IN "
                          "('COMPLETED','FAILED','CANCELLED','INTERRUPTED')"
                          ).fetchone()[0]
    finally:
        db.close()
    assert live == 0
    # Other tenants are unaffected.
    other = d.mint_token("default", "bystander")
    assert run_stream(d.channel, other, "hello").code == grpc.StatusCode.OK
    d.assert_clean_stop()


# ------------------------------------------------------------- kill -9

def test_journald_kill_with_8_clients(ops):
    d = ops
    tok = d.mint_token("slow", "crowd")
    old = d.pids_of("palyra-journald")
    channels = [d.new_channel() for _ in range(8)]
    streams = [Stream(ch, tok) for ch in channels]
    for s in streams:
        s.start()
    poll(lambda: all(s.tokens() >= 2 for s in streams), 10,
         what="8 streams producing tokens")
    os.kill(old[0], signal.SIGKILL)
    for s in streams:
        s.finish()
    for ch in channels:
        ch.close()
    poll(lambda: [p for p in d.pids_of("palyra-journald") if p not in old], 10,
         what="a new journald")
    # Every event any client received is present, byte for byte.
    rows = verify_chain(d.journal_path("slow"))
    stored = {(r[1], r[2]): pb.RunEvent.FromString(_blob(r[5])) for r in rows}
    seen = 0
    for s in streams:
        for ev in s.events:
            assert stored.get((ev.run_id, ev.seq)) == ev, \
                f"event {ev.run_id}/{ev.seq} seen by a client is not in the journal"
            seen += 1
        if s.code == grpc.StatusCode.OK:
            assert s.events[-1].status.status in TERMINAL
        else:
            assert s.code == grpc.StatusCode.UNAVAILABLE, (s.code, s.details)
    assert seen >= 8 * 3
    # Every chain verifies, the interrupted runs included.
    def all_ok():
        return all(verify(d, t)["ok"] for t in TENANTS)
    poll(all_ok, 10, what="every chain verifying")
    for t in TENANTS:
        verify_chain(d.journal_path(t))
    d.assert_clean_stop()
