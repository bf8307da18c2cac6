"""The sandbox of every child, as the kernel reports it (issue 3).

Reads /proc/PID/status and /proc/PID/ns/* of each child of a running
palyrad: the ids of the per-process uid plan (journald = worker-uid-range
min, front = min + 1, each tenant's worker a distinct uid from min + 2 up,
gid = uid) when palyrad runs as root, no capability, no_new_privs, a seccomp
filter, and the namespaces each profile asks for (common/sandbox.c).
"""
import os

import pytest

from conftest import check_successful_run, run_stream

# DESIGN section 10: the default worker-uid-range; DEFAULT_CONFIG sets none.
UID_MIN = 200000
UID_MAX = 299999

# The namespaces that differ from palyrad's, per executable; the worker
# keeps the host network for provider egress.
NEW_NS = {
    "palyra-journald": {"mnt", "ipc", "net", "user"},
    "palyra-front": {"mnt", "ipc", "net", "user"},
    "palyra-worker": {"mnt", "ipc", "user"},
}
ALL_NS = ("mnt", "ipc", "net", "user")


def status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            out[key] = value.split()
    return out


def ns(pid, name):
    return os.readlink(f"/proc/{pid}/ns/{name}")


def tenant_of(pid):
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        args = [a.decode() for a in f.read().split(b"\0")]
    return args[args.index("-t") + 1] if "-t" in args else None


@pytest.fixture(scope="module")
def children(palyra):
    """{pid: exe} of palyrad's children, with a worker for both tenants."""
    for tenant in ("default", "other"):
        tok = palyra.mint_token(tenant, "sandbox-test", "user")
        check_successful_run(run_stream(palyra.channel, tok, "sandbox"),
                             "sandbox")
    kids = palyra.children()
    exes = sorted(kids.values())
    assert exes.count("palyra-journald") == 1, kids
    assert exes.count("palyra-front") == 1, kids
    assert len(palyra.pids_of("palyra-worker", "default")) >= 1, kids
    assert len(palyra.pids_of("palyra-worker", "other")) >= 1, kids
    return kids


def test_no_capabilities_no_new_privs_seccomp(children):
    for pid, exe in children.items():
        st = status(pid)
        assert st["CapEff"] == ["0000000000000000"], f"{exe} {pid}: {st['CapEff']}"
        assert st["CapPrm"] == ["0000000000000000"], f"{exe} {pid}: {st['CapPrm']}"
        assert st["CapBnd"] == ["0000000000000000"], f"{exe} {pid}: {st['CapBnd']}"
        assert st["CapAmb"] == ["0000000000000000"], f"{exe} {pid}: {st['CapAmb']}"
        assert st["NoNewPrivs"] == ["1"], f"{exe} {pid}: NoNewPrivs {st['NoNewPrivs']}"
        assert st["Seccomp"] == ["2"], f"{exe} {pid}: Seccomp {st['Seccomp']}"


def test_namespaces(palyra, children):
    for pid, exe in children.items():
        for name in ALL_NS:
            differs = ns(pid, name) != ns(palyra.proc.pid, name)
            want = name in NEW_NS[exe]
            assert differs == want, \
                f"{exe} {pid}: {name} namespace {'shared with' if not differs else 'differs from'} palyrad's"


def test_front_and_journald_have_an_empty_network(children):
    # A new network namespace with nothing but a loopback that is down.
    for pid, exe in children.items():
        if exe == "palyra-worker":
            continue
        with open(f"/proc/{pid}/net/dev") as f:
            ifaces = [line.split(":")[0].strip() for line in f.readlines()[2:]]
        assert ifaces == ["lo"], f"{exe} {pid}: interfaces {ifaces}"


@pytest.mark.skipif(os.geteuid() != 0, reason="ids change only when palyrad runs as root")
def test_uids_per_process(children):
    uids = {}
    for pid, exe in children.items():
        st = status(pid)
        u, g = st["Uid"], st["Gid"]
        assert len(set(u)) == 1, f"{exe} {pid}: real/effective/saved/fs uids differ: {u}"
        assert len(set(g)) == 1, f"{exe} {pid}: gids differ: {g}"
        uid, gid = int(u[0]), int(g[0])
        assert gid == uid, f"{exe} {pid}: gid {gid} != uid {uid}"
        assert st["Groups"] in ([], [str(gid)]), f"{exe} {pid}: groups {st['Groups']}"
        uids[pid] = (exe, uid)
    for pid, (exe, uid) in uids.items():
        if exe == "palyra-journald":
            assert uid == UID_MIN, f"journald runs as {uid}, expected {UID_MIN}"
        elif exe == "palyra-front":
            assert uid == UID_MIN + 1, f"front runs as {uid}, expected {UID_MIN + 1}"
        else:
            assert UID_MIN + 2 <= uid <= UID_MAX, f"worker {pid} runs as {uid}"
    workers = {}
    for pid, (exe, uid) in uids.items():
        if exe == "palyra-worker":
            workers.setdefault(tenant_of(pid), set()).add(uid)
    assert set(workers) >= {"default", "other"}, workers
    assert not (workers["default"] & workers["other"]), \
        f"two tenants share a uid: {workers}"
    taken = {uid for exe, uid in uids.values() if exe != "palyra-worker"}
    for tenant, tenant_uids in workers.items():
        assert not (tenant_uids & taken), f"worker of {tenant} shares a service uid"
