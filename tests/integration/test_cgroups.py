"""Per-tenant control groups, read from the kernel's own view.

palyrad puts each tenant's workers in palyra/TENANT and journald and the
front in palyra/_system, under its own group in every hierarchy it uses
(cgroup v2 where the unified hierarchy has the memory and pids controllers,
else the v1 memory, pids and cpu hierarchies). These tests find the groups
through /proc/PID/cgroup and /proc/self/mountinfo, independently of palyrad,
and read the limits from the files under /sys/fs/cgroup.

They skip only where the host cannot have usable cgroups (not root, no
controllers), with the reason.
"""
import errno
import os
import signal
import subprocess
import sys

import pytest

from conftest import Daemon, _require_binaries, poll, start_workers

CONFIG = """\
state-dir "{state}"
listen grpc 127.0.0.1:{grpc_port}
listen http 127.0.0.1:{http_port}
journal {{ durability full }}
provider "offline" {{ type offline }}
tenant "a" {{ memory-limit 64M; pids-limit 32; cpu-weight 50 }}
tenant "b" {{ }}
"""

RELOADED = """\
state-dir "{state}"
listen grpc 127.0.0.1:{grpc_port}
listen http 127.0.0.1:{http_port}
journal {{ durability full }}
provider "offline" {{ type offline }}
tenant "a" {{ memory-limit 64M; pids-limit 40; cpu-weight 50 }}
tenant "c" {{ memory-limit 32M; pids-limit 16; cpu-weight 200 }}
"""

MIB = 1024 * 1024
V1_UNLIMITED_MIN = 1 << 62      # v1 reads "no limit" as a huge byte count


# ---------------------------------------------------------------- the kernel's view

def _unescape(s):
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\" and s[i + 1:i + 4].isdigit() and len(s[i + 1:i + 4]) == 3:
            out.append(chr(int(s[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def cgroup_mounts():
    """[(fstype, root, mount point, super options)] of the cgroup mounts."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-", 6)
            fstype = fields[sep + 1]
            if fstype in ("cgroup", "cgroup2"):
                out.append((fstype, _unescape(fields[3]), _unescape(fields[4]),
                            set(fields[sep + 3].split(","))))
    return out


def _dir(root, point, path):
    if root != "/":
        assert path == root or path.startswith(root + "/"), (root, path)
        path = path[len(root):]
    return point.rstrip("/") + (path if path != "/" else "")


def groups_of(pid):
    """{"memory"|"pids"|"cpu": directory} of a process, or {"v2": directory}."""
    mounts = cgroup_mounts()
    out = {}
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            hier, controllers, path = line.rstrip("\n").split(":", 2)
            if hier == "0" and controllers == "":
                for fstype, root, point, _ in mounts:
                    if fstype == "cgroup2":
                        out["v2"] = _dir(root, point, path)
                continue
            for c in ("memory", "pids", "cpu"):
                if c not in controllers.split(","):
                    continue
                for fstype, root, point, opts in mounts:
                    if fstype == "cgroup" and c in opts:
                        out[c] = _dir(root, point, path)
    return out


def read(path):
    with open(path) as f:
        return f.read().strip()


def procs(directory):
    try:
        return {int(x) for x in read(os.path.join(directory, "cgroup.procs")).split()}
    except FileNotFoundError:
        return set()


def host_problem():
    """Why this host cannot have usable cgroups, or None."""
    if os.geteuid() != 0:
        return f"palyrad needs root to create control groups (uid {os.geteuid()})"
    mounts = cgroup_mounts()
    v1 = set()
    for fstype, _, _, opts in mounts:
        if fstype == "cgroup":
            v1 |= opts & {"memory", "pids"}
    if v1 == {"memory", "pids"}:
        return None
    own = groups_of(os.getpid()).get("v2")
    if own is not None:
        try:
            ctl = read(os.path.join(own, "cgroup.controllers")).split()
        except OSError:
            ctl = []
        if "memory" in ctl and "pids" in ctl:
            return None
    return ("no cgroup v1 memory and pids hierarchies, and no cgroup v2 "
            "group with the memory and pids controllers")


class Groups:
    """The groups palyrad made, as the kernel shows them for its children."""

    def __init__(self, daemon):
        self.d = daemon
        # Workers start on first use: one run each brings them up.
        start_workers(daemon, ("a", "b"))
        self.worker = {t: self._one("palyra-worker", t) for t in ("a", "b")}
        self.journald = self._one("palyra-journald")
        self.front = self._one("palyra-front")
        self.of = {pid: groups_of(pid) for pid in
                   (self.worker["a"], self.worker["b"], self.journald, self.front)}
        self.v2 = "v2" in self.of[self.worker["a"]] and \
            self.of[self.worker["a"]]["v2"].endswith("/palyra/a")

    def _one(self, exe, tenant=None):
        pids = poll(lambda: self.d.pids_of(exe, tenant), 10, what=f"{exe} {tenant or ''}")
        return pids[0]

    def dirs(self, pid):
        """{controller: directory} of the hierarchies palyrad manages."""
        g = self.of[pid] if pid in self.of else groups_of(pid)
        if self.v2:
            return {"memory": g["v2"], "pids": g["v2"], "cpu": g["v2"]}
        return {c: g[c] for c in ("memory", "pids", "cpu") if c in g}

    def has_cpu(self, directory):
        if self.v2:
            return os.path.exists(os.path.join(directory, "cpu.weight"))
        return os.path.exists(os.path.join(directory, "cpu.shares"))

    def memory_limit(self, directory):
        v = read(os.path.join(directory, "memory.max" if self.v2 else
                              "memory.limit_in_bytes"))
        if v == "max" or int(v) >= V1_UNLIMITED_MIN:
            return "max"
        return int(v)

    def cpu(self, directory):
        return int(read(os.path.join(directory, "cpu.weight" if self.v2 else
                                     "cpu.shares")))


@pytest.fixture
def cg_daemon(tmp_path):
    problem = host_problem()
    if problem is not None:
        pytest.skip(f"no usable cgroups on this host: {problem}")
    _require_binaries()
    d = Daemon(tmp_path / "d", config_template=CONFIG, tenants=("a", "b"))
    d.start()
    log = d.log_text()
    if "cgroups: unavailable" in log:
        line = [x for x in log.splitlines() if "cgroups: unavailable" in x][0]
        # A v2-only host where palyrad shares its group with the test
        # runner cannot enable controllers (the "no internal processes"
        # rule); v1 controllers, where mounted, must always work.
        v1 = any(fstype == "cgroup" and "memory" in opts
                 for fstype, _, _, opts in cgroup_mounts())
        if not v1 and "v2: cannot enable controllers" in line:
            d.kill()
            pytest.skip(f"palyrad cannot use cgroup v2 here: {line}")
        d.kill()
        pytest.fail(f"palyrad found no cgroups on a host that has them: {line}")
    yield d
    if not d.stopped:
        d.kill()


# ---------------------------------------------------------------- tests

def test_tenants_have_their_groups_and_limits(cg_daemon):
    d = cg_daemon
    g = Groups(d)
    wa, wb = g.worker["a"], g.worker["b"]
    a, b = g.dirs(wa), g.dirs(wb)
    assert {"memory", "pids"} <= set(a), f"worker a groups: {groups_of(wa)}"
    for c, directory in a.items():
        assert directory.endswith("/palyra/a"), f"worker a {c}: {directory}"
    for c, directory in b.items():
        assert directory.endswith("/palyra/b"), f"worker b {c}: {directory}"
    assert g.memory_limit(a["memory"]) == 64 * MIB
    assert read(os.path.join(a["pids"], "pids.max")) == "32"
    assert g.memory_limit(b["memory"]) == "max"
    assert read(os.path.join(b["pids"], "pids.max")) == "max"
    if "cpu" in a and g.has_cpu(a["cpu"]):
        # v2 cpu.weight as configured; v1 cpu.shares = weight * 1024 / 100.
        assert g.cpu(a["cpu"]) == (50 if g.v2 else 512)
        assert g.cpu(b["cpu"]) == (100 if g.v2 else 1024)
    # The worker is really in the group, not only named after it.
    assert wa in procs(a["pids"]) and wb in procs(b["pids"])
    assert wa not in procs(b["pids"])

    for pid in (g.journald, g.front):
        dirs = g.dirs(pid)
        assert dirs, f"pid {pid}: {groups_of(pid)}"
        for c, directory in dirs.items():
            assert directory.endswith("/palyra/_system"), f"{pid} {c}: {directory}"
        assert g.memory_limit(dirs["memory"]) == "max"
        assert read(os.path.join(dirs["pids"], "pids.max")) == "max"

    every = set(a.values()) | set(b.values()) | set(g.dirs(g.journald).values())
    d.assert_clean_stop()
    # Gone, or at least holding none of palyrad's processes (another
    # palyrad of the test session may share palyra/_system).
    ours = set(d.seen)
    for directory in every:
        if directory.endswith("/palyra/_system"):
            assert not procs(directory) & ours, directory
        else:
            assert not os.path.exists(directory) or not procs(directory), \
                f"{directory} left behind with {procs(directory)}"


# Forks until the kernel refuses; children wait on a pipe so they count.
FORKER = r"""
import os, sys
sys.stdin.readline()
r, w = os.pipe()
kids, err = [], 0
while len(kids) < 1000:
    try:
        pid = os.fork()
    except OSError as e:
        err = e.errno
        break
    if pid == 0:
        os.close(w)
        os.read(r, 1)
        os._exit(0)
    kids.append(pid)
print(len(kids), err, flush=True)
sys.stdin.readline()
os.close(w)
for k in kids:
    os.waitpid(k, 0)
"""


def test_fork_past_pids_max_fails(cg_daemon):
    d = cg_daemon
    g = Groups(d)
    a = g.dirs(g.worker["a"])
    events = os.path.join(a["pids"], "pids.events")

    def refused():
        for line in read(events).splitlines():
            k, v = line.split()
            if k == "max":
                return int(v)
        return 0

    before = refused()
    helper = subprocess.Popen([sys.executable, "-c", FORKER], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True,
                              start_new_session=True)
    try:
        # The helper needs only the pids limit; in v1 it stays out of the
        # 64M memory group so that no OOM kill can reach the worker.
        with open(os.path.join(a["pids"], "cgroup.procs"), "w") as f:
            f.write(str(helper.pid))
        assert helper.pid in procs(a["pids"])
        helper.stdin.write("go\n")
        helper.stdin.flush()
        got, err = (int(x) for x in helper.stdout.readline().split())
        current = int(read(os.path.join(a["pids"], "pids.current")))
        helper.stdin.write("done\n")
        helper.stdin.flush()
        assert helper.wait(timeout=10) == 0
    finally:
        if helper.poll() is None:
            os.killpg(helper.pid, signal.SIGKILL)
            helper.wait()
    assert err == errno.EAGAIN, f"fork failed with {errno.errorcode.get(err, err)}"
    # The worker's own tasks count too: the helper gets fewer than 32.
    assert 1 <= got < 32, f"helper forked {got} times under pids.max 32"
    assert current <= 32, f"pids.current {current} over pids.max 32"
    assert refused() > before, "pids.events recorded no refused fork"
    d.assert_clean_stop()


def test_reload_reapplies_limits_and_removes_groups(cg_daemon):
    d = cg_daemon
    g = Groups(d)
    wa = g.worker["a"]
    a, b = g.dirs(wa), g.dirs(g.worker["b"])
    with open(d.conf, "w") as f:
        f.write(RELOADED.format(state=d.state, grpc_port=d.grpc_port,
                                http_port=d.http_port))
    d.proc.send_signal(signal.SIGHUP)
    # The added tenant's worker starts with its first run.
    poll(lambda: "reloaded:" in d.log_text(), 10, what="the reload")
    d.tenants = ("a", "c")
    wc = start_workers(d, ("c",))["c"][0]
    c = g.dirs(wc)
    assert all(x.endswith("/palyra/c") for x in c.values()), groups_of(wc)
    assert read(os.path.join(c["pids"], "pids.max")) == "16"
    assert g.memory_limit(c["memory"]) == 32 * MIB
    if "cpu" in c and g.has_cpu(c["cpu"]):
        assert g.cpu(c["cpu"]) == (200 if g.v2 else 2048)
    # a keeps its worker and gets its new limit.
    poll(lambda: read(os.path.join(a["pids"], "pids.max")) == "40", 5,
         what="a's pids.max to become 40")
    assert d.pids_of("palyra-worker", "a") == [wa]
    assert wa in procs(a["pids"])
    # b's worker drained and its group went with it.
    poll(lambda: not any(os.path.exists(x) for x in b.values()), 10,
         what=f"b's groups {sorted(set(b.values()))} to be removed")
    d.assert_clean_stop()
