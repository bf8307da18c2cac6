"""A full disk under the journal (issue 4): appends that cannot be written
are refused with RESOURCE_EXHAUSTED "journal storage full", nothing
acknowledged is lost, the database stays intact and its chain verifies,
and runs succeed again once space returns.

The state directory is a small tmpfs mounted for the test (root only);
space is taken by a filler file created beside the journal and given back
by deleting it.
"""
import os
import sqlite3
import subprocess

import grpc
import pytest

from conftest import (Daemon, _blob, _require_binaries, pb, run_stream,
                      verify_chain)

S = pb.RunStatus
TMPFS_SIZE = "3m"
# Left free after the filler: a few runs fit, then the disk is full.
HEADROOM = 256 * 1024


def _mount(target):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    os.makedirs(target, mode=0o700, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o",
                        f"size={TMPFS_SIZE},mode=0700", "tmpfs", target],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {r.stderr.strip()}")


@pytest.fixture
def small_disk(tmp_path):
    _require_binaries()
    d = Daemon(tmp_path / "d")
    _mount(d.state)
    try:
        yield d.start()
    finally:
        if d.proc is not None and not d.stopped:
            d.kill()
        subprocess.run(["umount", "-l", d.state], check=False)


def _free(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def test_full_disk_refuses_then_recovers(small_disk):
    d = small_disk
    tok = d.mint_token("default", "filler")
    res = run_stream(d.channel, tok, "before the disk fills")
    assert res.code == grpc.StatusCode.OK, res
    filler = os.path.join(d.state, "filler")
    with open(filler, "wb") as f:
        f.write(b"\0" * max(0, _free(d.state) - HEADROOM))
        f.flush()
        os.fsync(f.fileno())

    word = "y" * 16000
    completed, refused = [res], None
    for i in range(200):
        res = run_stream(d.channel, tok, f"{word}{i}")
        if res.code == grpc.StatusCode.OK:
            assert res.events[-1].status.status == S.RUN_STATUS_COMPLETED
            completed.append(res)
            continue
        refused = res
        break
    assert refused is not None, "the disk never filled"
    assert refused.code == grpc.StatusCode.RESOURCE_EXHAUSTED, refused
    assert refused.details == "journal storage full", refused.details
    assert "storage full" in d.log_text()

    # Nothing acknowledged is lost, the file is intact, the chain holds.
    path = d.journal_path("default")
    rows = verify_chain(path)
    stored = {(r[1], r[2]): pb.RunEvent.FromString(_blob(r[5])) for r in rows}
    for run in completed:
        for ev in run.events:
            assert stored[(ev.run_id, ev.seq)] == ev
    for ev in refused.events:
        assert stored[(ev.run_id, ev.seq)] == ev
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        db.close()

    # Space returns: the next runs are journaled again, chain and all.
    os.unlink(filler)
    for i in range(3):
        res = run_stream(d.channel, tok, f"after the disk emptied {i}")
        assert res.code == grpc.StatusCode.OK, res
        assert res.events[-1].status.status == S.RUN_STATUS_COMPLETED
    rows = verify_chain(path)
    assert (res.events[-1].run_id, res.events[-1].seq) in \
        {(r[1], r[2]) for r in rows}
    d.assert_clean_stop()
