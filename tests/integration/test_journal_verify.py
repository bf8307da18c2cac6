"""Journal audit: chain verification, signed checkpoints, export and online
backup (issue 4), through the admin API and palyractl, checked against an
independent implementation of the chain and the checkpoint signature here."""
import base64
import json
import os
import sqlite3
import stat
import struct
import subprocess
import threading

import pytest
from google.protobuf import json_format

from conftest import (PALYRACTL, Daemon, _blob, chain_link, check_successful_run,
                      http_request, journal_events, pb, poll, run_stream,
                      verify_chain)

try:
    import nacl.exceptions
    import nacl.signing
except ImportError:  # pragma: no cover - python3-nacl is in `make deps`
    nacl = None

CHECKPOINT_MAGIC = b"palyra.checkpoint.v1"


def ctl(d, *args, check=None):
    """Runs palyractl against d; returns the CompletedProcess."""
    env = dict(os.environ, PALYRA_URL=d.http_url, PALYRA_GRPC=d.grpc_addr)
    env.pop("PALYRA_ADMIN_TOKEN", None)
    r = subprocess.run([PALYRACTL, "-s", d.state, *args], capture_output=True,
                       text=True, timeout=60, env=env)
    if check is not None:
        assert r.returncode == check, f"palyractl {args}: {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r


def do_runs(d, n, tenant="default", prefix="run"):
    tok = d.mint_token(tenant, "auditor")
    for i in range(n):
        text = f"{prefix} {i}"
        check_successful_run(run_stream(d.channel, tok, text), text)


def verify(d, tenant=None):
    st, body = http_request(d, "POST", "/admin/v1/journal/verify",
                            {"tenant": tenant} if tenant else None,
                            token=d.admin_token)
    assert st == 200, (st, body)
    return {r["tenant"]: r for r in body["results"]}


def restart(d, tmp_path):
    """Stops d cleanly and starts a daemon on the same state directory."""
    d.assert_clean_stop()
    d2 = Daemon(tmp_path / "d")
    return d2.start()


def rewrite(path, sql, args=()):
    """Runs sql on a stopped daemon's journal with its triggers dropped and
    recreated around it, as an attacker with write access would."""
    db = sqlite3.connect(path)
    try:
        triggers = db.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger'").fetchall()
        for name, _ in triggers:
            db.execute(f'DROP TRIGGER "{name}"')
        db.execute(sql, args)
        for _, text in triggers:
            db.execute(text)
        db.commit()
    finally:
        db.close()


def checkpoint_message(tenant, seq, h, ts_ms):
    t = tenant.encode()
    return (CHECKPOINT_MAGIC + struct.pack(">I", len(t)) + t + struct.pack(">Q", seq)
            + h + struct.pack(">q", ts_ms))


@pytest.fixture
def daemon(tmp_path):
    d = Daemon(tmp_path / "d")
    holder = {"d": d.start()}
    yield holder
    if not holder["d"].stopped:
        holder["d"].kill()


def test_verify_ok_for_every_tenant(daemon):
    d = daemon["d"]
    do_runs(d, 3)
    do_runs(d, 2, tenant="other")
    results = verify(d)
    assert set(results) == {"default", "other"}
    for tenant, r in results.items():
        rows = verify_chain(d.journal_path(tenant))
        assert r["ok"] is True, r
        assert r["events"] == len(rows) == r["head_seq"], r
        assert r["head_hash"] == _blob(rows[-1][6]).hex(), r
    one = verify(d, "other")
    assert list(one) == ["other"] and one["other"]["ok"]

    r = ctl(d, "journal", "verify", check=0)
    lines = sorted(r.stdout.splitlines())
    assert len(lines) == 2, r.stdout
    for line, tenant in zip(lines, ("default", "other")):
        res = results[tenant]
        assert line == (f"{tenant}: ok, {res['events']} events, "
                        f"head {res['head_seq']} {res['head_hash']}")
    r = ctl(d, "--json", "journal", "verify", "--tenant", "default", check=0)
    body = json.loads(r.stdout)
    assert [x["tenant"] for x in body["results"]] == ["default"]
    assert body["results"][0]["ok"] is True
    d.assert_clean_stop()


def test_admin_token_and_methods(daemon):
    d = daemon["d"]
    st, _ = http_request(d, "POST", "/admin/v1/journal/verify")
    assert st == 401
    st, _ = http_request(d, "POST", "/admin/v1/journal/verify", token="pt_wrong")
    assert st == 401
    st, _ = http_request(d, "GET", "/admin/v1/journal/verify", token=d.admin_token)
    assert st == 405
    st, _ = http_request(d, "POST", "/admin/v1/journal/verify", {"tenant": "nope"},
                         token=d.admin_token)
    assert st == 404
    st, _ = http_request(d, "POST", "/admin/v1/journal/verify", {"tenants": "x"},
                         token=d.admin_token)
    assert st == 400
    st, _ = http_request(d, "POST", "/admin/v1/journal/backup", {},
                         token=d.admin_token)
    assert st == 400
    st, _ = http_request(d, "GET", "/admin/v1/journal/export?tenant=default&since=-1",
                         token=d.admin_token)
    assert st == 400
    st, _ = http_request(d, "GET", "/admin/v1/journal/nothing", token=d.admin_token)
    assert st == 404
    d.assert_clean_stop()


def test_tampered_payload_is_named(daemon, tmp_path):
    d = daemon["d"]
    do_runs(d, 3)
    rows = journal_events(d.journal_path("default"))
    victim = len(rows) // 2 + 1
    d.assert_clean_stop()

    path = os.path.join(d.state, "tenants", "default", "journal.db")
    old = rows[victim - 1]
    ev = pb.RunEvent.FromString(_blob(old[5]))
    forged = pb.RunEvent()
    forged.CopyFrom(ev)
    forged.timestamp_unix_ms += 1
    rewrite(path, "UPDATE events SET payload = ? WHERE chain_seq = ?",
            (forged.SerializeToString(), victim))
    with pytest.raises(AssertionError, match=f"chain_seq {victim}"):
        verify_chain(path)

    d = daemon["d"] = Daemon(tmp_path / "d").start()
    r = verify(d)["default"]
    prev = _blob(rows[victim - 2][6])
    expected = chain_link(prev, victim, old[1], old[2], old[3], forged.SerializeToString())
    assert r["ok"] is False, r
    assert r["broken_seq"] == victim, r
    assert r["expected"] == expected.hex(), r
    assert r["found"] == _blob(old[6]).hex(), r
    assert verify(d)["other"]["ok"] is True

    res = ctl(d, "journal", "verify", check=1)
    assert (f"default: BROKEN at seq {victim}: expected {expected.hex()} "
            f"found {_blob(old[6]).hex()}") in res.stdout, res.stdout
    ctl(d, "journal", "verify", "--tenant", "other", check=0)
    d.assert_clean_stop()


def test_gap_is_a_break(daemon, tmp_path):
    d = daemon["d"]
    do_runs(d, 2)
    n = len(journal_events(d.journal_path("default")))
    d.assert_clean_stop()
    rewrite(d.journal_path("default"), "DELETE FROM events WHERE chain_seq = 5")
    d = daemon["d"] = Daemon(tmp_path / "d").start()
    r = verify(d, "default")["default"]
    assert r["ok"] is False and r["broken_seq"] == 5, r
    assert "gap" in r["reason"], r
    assert n > 5
    d.assert_clean_stop()


def test_truncation_after_checkpoint_is_detected(daemon, tmp_path):
    d = daemon["d"]
    do_runs(d, 3)
    r = ctl(d, "journal", "checkpoint", "--tenant", "default", check=0)
    head = len(journal_events(d.journal_path("default")))
    assert r.stdout.startswith(f"default: checkpoint signed at seq {head} "), r.stdout
    d.assert_clean_stop()

    rewrite(d.journal_path("default"), "DELETE FROM events WHERE chain_seq > ?",
            (head - 3,))
    verify_chain(d.journal_path("default"))    # the chain alone still holds

    d = daemon["d"] = Daemon(tmp_path / "d").start()
    r = verify(d, "default")["default"]
    assert r["ok"] is False, r
    assert r["broken_seq"] == head, r
    assert r["reason"] == f"truncated: checkpoint at seq {head}, head now {head - 3}", r
    res = ctl(d, "journal", "verify", check=1)
    assert f"truncated: checkpoint at seq {head}, head now {head - 3}" in res.stdout
    # journald does not paper over the evidence with a new checkpoint, not
    # even once new events extend the truncated chain.
    do_runs(d, 1, prefix="after")
    res = ctl(d, "journal", "checkpoint", "--tenant", "default", check=1)
    assert "no longer holds the newest checkpoint" in res.stdout, res.stdout
    r = verify(d, "default")["default"]
    assert r["ok"] is False and r["broken_seq"] == head, r
    d.assert_clean_stop()


@pytest.mark.skipif(nacl is None, reason="python3-nacl not installed")
def test_checkpoint_signature_verifies(daemon):
    d = daemon["d"]
    key = os.path.join(d.state, "checkpoint.key")
    # journald creates it at its first start, maybe just after /healthz.
    poll(lambda: os.path.exists(key), 10, 0.02, "checkpoint.key")
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert os.path.getsize(key) == 64

    pub = ctl(d, "journal", "pubkey", check=0).stdout.strip()
    st, body = http_request(d, "GET", "/admin/v1/journal/pubkey", token=d.admin_token)
    assert st == 200 and body == {"algorithm": "ed25519", "public_key": pub}
    vk = nacl.signing.VerifyKey(bytes.fromhex(pub))

    # No events yet: nothing to sign.
    res = json.loads(ctl(d, "--json", "journal", "checkpoint", check=0).stdout)
    assert all(not c["written"] and c["chain_seq"] == 0 for c in res["checkpoints"])

    do_runs(d, 2)
    res = json.loads(ctl(d, "journal", "checkpoint", "--json", check=0).stdout)
    by = {c["tenant"]: c for c in res["checkpoints"]}
    assert by["default"]["written"] is True and by["other"]["written"] is False
    c = by["default"]
    rows = journal_events(d.journal_path("default"))
    assert c["chain_seq"] == len(rows)
    assert c["hash"] == _blob(rows[-1][6]).hex()
    msg = checkpoint_message("default", c["chain_seq"], bytes.fromhex(c["hash"]), c["ts_ms"])
    vk.verify(msg, bytes.fromhex(c["signature"]))
    with pytest.raises(nacl.exceptions.BadSignatureError):
        vk.verify(checkpoint_message("default", c["chain_seq"] - 1,
                                     bytes.fromhex(c["hash"]), c["ts_ms"]),
                  bytes.fromhex(c["signature"]))

    # The stored row is the one answered, with the public key beside it.
    db = sqlite3.connect(f"file:{d.journal_path('default')}?mode=ro", uri=True)
    stored = db.execute("SELECT chain_seq, hash, ts_ms, public_key, signature "
                        "FROM checkpoints ORDER BY checkpoint_id").fetchall()
    db.close()
    assert len(stored) == 1
    seq, h, ts, pk, sig = stored[0]
    assert (seq, h.hex(), ts, pk.hex(), sig.hex()) == \
        (c["chain_seq"], c["hash"], c["ts_ms"], pub, c["signature"])

    # Only when the head moved.
    res = json.loads(ctl(d, "--json", "journal", "checkpoint", "--tenant", "default",
                         check=0).stdout)
    assert res["checkpoints"][0]["written"] is False
    assert res["checkpoints"][0]["chain_seq"] == c["chain_seq"]
    r = verify(d, "default")["default"]
    assert r["ok"] and r["checkpoint_seq"] == c["chain_seq"], r
    d.assert_clean_stop()


def test_periodic_checkpoint(tmp_path):
    from conftest import DEFAULT_CONFIG
    conf = DEFAULT_CONFIG.replace("journal {{ durability full }}",
                                  "journal {{ durability full; checkpoint-interval 1s }}")
    assert conf != DEFAULT_CONFIG
    d = Daemon(tmp_path / "d", config_template=conf).start()
    try:
        do_runs(d, 1)
        head = len(journal_events(d.journal_path("default")))

        def signed():
            db = sqlite3.connect(f"file:{d.journal_path('default')}?mode=ro", uri=True)
            try:
                return db.execute("SELECT max(chain_seq) FROM checkpoints").fetchone()[0]
            finally:
                db.close()
        poll(lambda: signed() == head, 10, 0.1, "a periodic checkpoint")
        d.assert_clean_stop()
    finally:
        if not d.stopped:
            d.kill()


def export_lines(d, *args):
    r = ctl(d, "journal", "export", *args, check=0)
    return [json.loads(line) for line in r.stdout.splitlines()]


def test_export_round_trips(daemon):
    d = daemon["d"]
    tok = d.mint_token("default", "exporter")
    # Enough events for several pages (journald sends 512 at most).
    threads = [threading.Thread(target=lambda i=i: [
        check_successful_run(run_stream(d.new_channel(), tok, f"export {i} {j}"),
                             f"export {i} {j}") for j in range(12)]) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    rows = verify_chain(d.journal_path("default"))
    assert len(rows) > 600

    lines = export_lines(d, "--tenant", "default")
    assert len(lines) == len(rows)
    prev = bytes(32)
    for line, (cseq, rid, rseq, ts, kind, payload, h) in zip(lines, rows):
        assert set(line) == {"chain_seq", "run_id", "run_seq", "ts_ms", "kind",
                             "event", "payload_b64", "hash"}
        raw = base64.b64decode(line["payload_b64"], validate=True)
        link = chain_link(prev, line["chain_seq"], line["run_id"], line["run_seq"],
                          line["ts_ms"], raw)
        assert link.hex() == line["hash"], line
        prev = link
        assert (line["chain_seq"], line["run_id"], line["run_seq"], line["ts_ms"],
                line["kind"], raw, line["hash"]) == \
            (cseq, rid, rseq, ts, kind, _blob(payload), _blob(h).hex())
        decoded = json_format.ParseDict(line["event"], pb.RunEvent())
        assert decoded == pb.RunEvent.FromString(raw), line

    since = len(rows) - 7
    tail = export_lines(d, "--tenant", "default", "--since", str(since))
    assert [x["chain_seq"] for x in tail] == list(range(since + 1, len(rows) + 1))
    assert tail == lines[since:]
    assert export_lines(d, "--tenant", "other") == []

    st, body = http_request(d, "GET", "/admin/v1/journal/export?tenant=default&since=3",
                            token=d.admin_token)
    assert st == 200
    assert [json.loads(x) for x in body.splitlines()] == lines[3:]
    r = ctl(d, "journal", "export", "--tenant", "nope", check=1)
    assert "unknown tenant" in r.stderr
    d.assert_clean_stop()


def test_backup_during_load(daemon):
    d = daemon["d"]
    tok = d.mint_token("default", "loader")
    stop = threading.Event()
    done = []
    errors = []

    def client(i):
        ch = d.new_channel()
        j = 0
        while not stop.is_set():
            res = run_stream(ch, tok, f"load {i} {j}")
            try:
                check_successful_run(res, f"load {i} {j}")
                done.append(1)
            except AssertionError as e:
                errors.append(e)
            j += 1
        ch.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    try:
        # More than one backup step of journald (256 pages) to copy, so
        # that commits land between its steps.
        poll(lambda: os.path.getsize(d.journal_path("default")) > 2 * 256 * 4096,
             60, 0.05, "a journal of a few megabytes")
        r = ctl(d, "--json", "journal", "backup", "--tenant", "default", check=0)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert not errors, errors[:3]
    info = json.loads(r.stdout)
    assert info["tenant"] == "default"
    assert info["file"].startswith("backups/default-") and info["file"].endswith(".db")
    path = os.path.join(d.state, info["file"])
    assert os.path.getsize(path) == info["size"]
    assert stat.S_IMODE(os.stat(path).st_mode) & 0o077 == 0
    assert info["size"] > 256 * 4096, info

    copy = verify_chain(path)
    live = verify_chain(d.journal_path("default"))
    assert 0 < len(copy) <= len(live)
    assert copy == live[:len(copy)]
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
    r = ctl(d, "journal", "backup", "--tenant", "other", check=0)
    assert r.stdout.startswith("other: backups/other-") and "bytes)" in r.stdout
    d.assert_clean_stop()
