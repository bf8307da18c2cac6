"""The short form of `make chaos` in `make check`: tests/chaos/chaos.py for
CHAOS_SECONDS (20 here unless set) of load while workers, the front and
journald are killed, palyrad reloads and clients drop their connections;
then every acknowledged event is in the journal, every chain verifies,
every run is terminal, nothing is orphaned, descriptors did not grow and
no cron fire happened twice (the script's docstring says how each is
checked). Its output, with the seed to replay and the log of what the
chaos did, is shown when it fails.
"""
import os
import subprocess
import sys

from conftest import BUILD, REPO, _require_binaries

CHAOS = os.path.join(REPO, "tests", "chaos", "chaos.py")


def test_chaos_short():
    _require_binaries()
    seconds = os.environ.get("CHAOS_SECONDS", "20")
    env = dict(os.environ, PALYRA_BUILD=BUILD, CHAOS_SECONDS=seconds)
    r = subprocess.run([sys.executable, CHAOS], env=env, capture_output=True,
                       text=True, timeout=float(seconds) + 240)
    out = r.stdout + r.stderr
    assert r.returncode == 0, "chaos failed:\n" + out[-30000:]
    assert "every invariant holds" in out, out[-30000:]
