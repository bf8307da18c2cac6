"""make install / make uninstall into a temporary DESTDIR, and the installed
daemon serving a run (README "Installing", palyrad(8) FILES).

The install copies the already built tree $PALYRA_BUILD (make's -o keeps it
from relinking anything). The installed palyrad is started from DESTDIR with
its helpers found in ../libexec/palyra; as root it runs under the hardening of
the installed systemd unit that can be reproduced without systemd as PID 1:
no_new_privs and the unit's CapabilityBoundingSet (setpriv), which proves the
unit keeps the privilege separation and the sandbox working.
"""
import os
import re
import shutil
import stat
import subprocess

import pytest

from conftest import (BUILD, OFFLINE_REPLY, REPO, Daemon, cmdline, exe_name,
                      free_ports)

PREFIX = "/usr/local"
BINARIES = ("bin/palyrad", "bin/palyractl", "libexec/palyra-front",
            "libexec/palyra-worker", "libexec/palyra-journald")

# Every file make install puts, relative to DESTDIR, with its mode.
EXPECTED = {
    "usr/local/sbin/palyrad": 0o755,
    "usr/local/bin/palyractl": 0o755,
    "usr/local/libexec/palyra/palyra-front": 0o755,
    "usr/local/libexec/palyra/palyra-worker": 0o755,
    "usr/local/libexec/palyra/palyra-journald": 0o755,
    "usr/local/share/man/man1/palyractl.1": 0o644,
    "usr/local/share/man/man5/palyrad.conf.5": 0o644,
    "usr/local/share/man/man8/palyrad.8": 0o644,
    "usr/local/share/bash-completion/completions/palyractl": 0o644,
    "usr/local/lib/systemd/system/palyrad.service": 0o644,
    "usr/local/lib/sysusers.d/palyra.conf": 0o644,
    "usr/local/lib/tmpfiles.d/palyra.conf": 0o644,
    "etc/palyra/palyrad.conf": 0o644,
}

CONFIG = """\
state-dir "{state}"
listen grpc 127.0.0.1:{grpc_port}
listen http 127.0.0.1:{http_port}
provider "offline" {{ type offline }}
tenant "default" {{ agent "assistant" {{ providers "offline" }} }}
"""


def make(target, destdir, prefix=PREFIX):
    old = []
    for b in BINARIES:
        old += ["-o", os.path.join(BUILD, b)]
    r = subprocess.run(
        ["make", "--no-print-directory", "-C", REPO, target, f"B={BUILD}",
         f"DESTDIR={destdir}", f"PREFIX={prefix}", *old],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"make {target} failed:\n{r.stdout}\n{r.stderr}"
    return r


def files_under(root):
    out = {}
    for d, _, names in os.walk(root):
        for n in names:
            p = os.path.join(d, n)
            out[os.path.relpath(p, root)] = stat.S_IMODE(os.lstat(p).st_mode)
    return out


def unit_value(unit_text, key):
    values = re.findall(rf"^{key}=(.*)$", unit_text, re.M)
    assert len(values) == 1, f"{key}= in the unit: {values}"
    return values[0]


def ctl(exe, *args, timeout=30):
    env = {k: v for k, v in os.environ.items()
           if "proxy" not in k.lower() and not k.startswith("PALYRA_")}
    return subprocess.run([exe, *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, env=env)


class InstalledDaemon(Daemon):
    """The palyrad of DESTDIR, under the unit's hardening when root."""

    def __init__(self, workdir, argv):
        super().__init__(workdir, config_template=CONFIG, tenants=("default",))
        self.argv = argv

    def start(self, attempts=5):
        for attempt in range(attempts):
            self.grpc_port, self.http_port = free_ports(2)
            with open(self.conf, "w") as f:
                f.write(self.template.format(state=self.state,
                                             grpc_port=self.grpc_port,
                                             http_port=self.http_port))
            self.log = open(self.log_path, "ab")
            self.proc = subprocess.Popen(
                [*self.argv, "-d", "-f", self.conf], cwd=self.workdir,
                stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log,
                start_new_session=True)
            try:
                self._wait_ready()
                return self
            except AssertionError:
                retry = (self.proc.poll() is not None and attempt + 1 < attempts
                         and "in use" in self.log_text().lower())
                self.kill()
                if not retry:
                    raise AssertionError("installed palyrad did not become "
                                         "ready; its log:\n" + self.log_text())
                self.stopped = False
        raise AssertionError("no free ports")


@pytest.fixture
def destdir(tmp_path):
    for b in BINARIES:
        if not os.access(os.path.join(BUILD, b), os.X_OK):
            pytest.fail(f"{BUILD}/{b} not built", pytrace=False)
    d = tmp_path / "dest"
    d.mkdir()
    return str(d)


def test_install_layout_and_uninstall(destdir, tmp_path):
    make("install", destdir)
    assert files_under(destdir) == EXPECTED

    # The installed configuration is the shipped one with the installed
    # state directory and service user, and the installed palyrad accepts it.
    conf = os.path.join(destdir, "etc/palyra/palyrad.conf")
    text = open(conf).read()
    assert re.search(r'^state-dir "/var/lib/palyra"$', text, re.M), text
    assert re.search(r'^user "_palyra"$', text, re.M), text
    assert 'tenant "default"' in text
    r = subprocess.run([os.path.join(destdir, "usr/local/sbin/palyrad"),
                        "-n", "-f", conf], capture_output=True, text=True,
                       timeout=10, cwd=str(tmp_path))
    assert r.returncode == 0, r

    unit = open(os.path.join(
        destdir, "usr/local/lib/systemd/system/palyrad.service")).read()
    assert "@SBINDIR@" not in unit
    assert unit_value(unit, "ExecStart") == \
        "/usr/local/sbin/palyrad -d -f /etc/palyra/palyrad.conf"
    assert unit_value(unit, "ProtectSystem") == "strict"
    assert unit_value(unit, "UMask") == "0077"
    for forbidden in ("PrivateUsers", "RestrictNamespaces",
                      "ProtectKernelTunables", "ProtectControlGroups"):
        assert not re.search(rf"^{forbidden}=", unit, re.M), forbidden
    sysusers = open(os.path.join(
        destdir, "usr/local/lib/sysusers.d/palyra.conf")).read()
    assert re.search(r"^u _palyra ", sysusers, re.M), sysusers
    tmpfiles = open(os.path.join(
        destdir, "usr/local/lib/tmpfiles.d/palyra.conf")).read()
    assert re.search(r"^d /var/lib/palyra 0700 root root", tmpfiles, re.M)

    # A second install keeps the existing configuration.
    with open(conf, "a") as f:
        f.write("# changed by the operator\n")
    r = make("install", destdir)
    assert "keeping" in r.stdout, r.stdout
    assert open(conf).read().endswith("# changed by the operator\n")
    assert files_under(destdir) == {**EXPECTED,
                                    "etc/palyra/palyrad.conf.example": 0o644}

    # Uninstall removes every file it put, but not the changed configuration.
    r = make("uninstall", destdir)
    assert "keeping" in r.stdout, r.stdout
    assert files_under(destdir) == {"etc/palyra/palyrad.conf": 0o644}
    os.unlink(conf)
    make("install", destdir)
    make("uninstall", destdir)
    assert files_under(destdir) == {}
    assert not os.path.exists(os.path.join(destdir, "usr/local/libexec/palyra"))
    assert not os.path.exists(os.path.join(destdir, "etc/palyra"))


def test_unit_verifies(destdir, tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    make("install", destdir)
    unit = open(os.path.join(
        destdir, "usr/local/lib/systemd/system/palyrad.service")).read()
    # The Exec paths must exist for verify: point them into DESTDIR.
    local = tmp_path / "palyrad.service"
    local.write_text(unit.replace("/usr/local/sbin/",
                                  destdir + "/usr/local/sbin/"))
    r = subprocess.run([analyze, "verify", "--man=no", str(local)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stderr.strip() == "", r
    tmpfiles = shutil.which("systemd-tmpfiles")
    if tmpfiles is not None:
        root = tmp_path / "root"
        root.mkdir()
        r = subprocess.run(
            [tmpfiles, "--create", f"--root={root}", os.path.join(
                destdir, "usr/local/lib/tmpfiles.d/palyra.conf")],
            capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r
        st = os.stat(root / "var/lib/palyra")
        assert stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid == 0


def test_installed_daemon_serves_a_run(destdir, tmp_path):
    make("install", destdir)
    sbin = os.path.join(destdir, "usr/local/sbin/palyrad")
    palyractl = os.path.join(destdir, "usr/local/bin/palyractl")
    libexec = os.path.join(destdir, "usr/local/libexec/palyra")
    argv = [sbin]
    caps = None
    if os.geteuid() == 0 and shutil.which("setpriv"):
        unit = open(os.path.join(
            destdir, "usr/local/lib/systemd/system/palyrad.service")).read()
        assert unit_value(unit, "NoNewPrivileges") == "yes"
        caps = unit_value(unit, "CapabilityBoundingSet").split()
        bset = ",".join(["-all"] + ["+" + c[len("CAP_"):].lower()
                                    for c in caps])
        argv = ["setpriv", "--no-new-privs", f"--bounding-set={bset}",
                "--inh-caps=-all", "--", sbin]
    d = InstalledDaemon(tmp_path / "run", argv)
    d.start()
    try:
        # The helpers run from the installed libexec/palyra.
        kids = d.children()
        for helper in ("palyra-front", "palyra-journald"):
            pids = [p for p, n in kids.items() if n == helper]
            assert pids, f"no {helper}: {kids}"
            assert os.path.realpath(f"/proc/{pids[0]}/exe") == \
                os.path.join(os.path.realpath(libexec), helper)
        r = ctl(palyractl, "-g", d.grpc_addr, "-u", d.http_url, "-s", d.state,
                "run", "--tenant", "default", "installed")
        assert r.returncode == 0, (r, d.log_text())
        assert r.stdout.rstrip("\n") == OFFLINE_REPLY.format("installed"), r

        workers = [p for p, n in d.children().items() if n == "palyra-worker"]
        assert workers, d.children()
        for pid in workers:
            assert os.path.realpath(f"/proc/{pid}/exe").startswith(
                os.path.realpath(libexec) + "/"), cmdline(pid)
        if caps is not None:
            # Under the unit's bounding set and no_new_privs the sandbox is
            # whole: the worker left root, has no_new_privs and seccomp.
            for pid in workers:
                status = open(f"/proc/{pid}/status").read()
                uid = int(re.search(r"^Uid:\s+(\d+)", status, re.M).group(1))
                assert uid != 0, status
                assert re.search(r"^NoNewPrivs:\s+1$", status, re.M), status
                assert re.search(r"^Seccomp:\s+2$", status, re.M), status
                # CAP_SETPCAP of the unit let it empty its bounding set.
                assert re.search(r"^CapBnd:\s+0+$", status, re.M), status
            r = ctl(palyractl, "-u", d.http_url, "-s", d.state, "status")
            assert r.returncode == 0, r
            rows = [ln for ln in r.stdout.splitlines()
                    if ln.startswith(("journald", "front", "worker"))]
            assert len(rows) >= 3, r.stdout
            for row in rows:
                for fact in ("uid", "chroot", "seccomp"):
                    assert fact in row, f"{fact} missing: {row}"
        assert all(exe_name(p) for p in d.children())
    finally:
        d.assert_clean_stop()
    make("uninstall", destdir)
    assert files_under(destdir) == {}
