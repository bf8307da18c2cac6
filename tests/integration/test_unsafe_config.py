"""Unsafe configurations are refused (issue 9): by `palyrad -n`, at start
and at a reload, each with the exact reason and, where a directive is the
cause, its FILE:LINE:COL (palyrad.conf(5), SECURITY CONSIDERATIONS).

- a listener on a non-loopback address without tls;
- a provider's `api-key file:PATH` that group or others may access, or
  that belongs to neither root nor palyrad's user;
- a TLS key file that group or others may access;
- an existing state directory that group or others may write, or that
  belongs to another user.

Golden tests: the whole of stderr is compared, line for line.
"""
import os
import signal
import subprocess

import pytest

from conftest import PALYRAD, Daemon, _require_binaries, http_request, poll

# A uid that owns nothing on the test host.
STRANGER = 4242

needs_root = pytest.mark.skipif(os.geteuid() != 0,
                                reason="chown to another uid needs root")


@pytest.fixture(autouse=True)
def _binaries():
    _require_binaries()


def write(path, text, mode=None):
    path.write_text(text)
    if mode is not None:
        os.chmod(path, mode)
    return str(path)


def check(conf, cwd):
    return subprocess.run([PALYRAD, "-n", "-f", conf], cwd=str(cwd),
                          capture_output=True, text=True, timeout=10)


def start(conf, cwd):
    """palyrad -d on an unsafe configuration: it must exit by itself,
    having started nothing."""
    p = subprocess.Popen([PALYRAD, "-d", "-f", conf], cwd=str(cwd),
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         text=True, start_new_session=True)
    try:
        _, err = p.communicate(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    return p.returncode, err


def assert_refused(conf, cwd, line, state=None):
    """-n and a start both fail with exit 1 and exactly this one line."""
    r = check(conf, cwd)
    assert (r.returncode, r.stderr) == (1, line + "\n"), r
    rc, err = start(conf, cwd)
    assert (rc, err) == (1, line + "\n"), err
    if state is not None:
        # Nothing was created or taken over in the state directory.
        assert not os.path.exists(os.path.join(state, "master.key"))
        assert not os.path.exists(os.path.join(state, "admin.token"))


SAFE = """\
state-dir "{state}"
listen grpc 127.0.0.1:0
listen http 127.0.0.1:0
provider "remote" {{
	type openai
	api-key file:{key}
	model "m"
}}
"""


def safe_setup(tmp_path, key_mode=0o600, state_mode=0o700):
    state = tmp_path / "state"
    state.mkdir()
    os.chmod(state, state_mode)
    key = tmp_path / "remote.key"
    write(key, "sk-" + "x" * 40 + "\n", key_mode)
    conf = write(tmp_path / "palyrad.conf", SAFE.format(state=state, key=key))
    return conf, str(state), str(key)


def test_safe_configuration_is_accepted(tmp_path):
    # The control: the same files with safe modes pass.
    conf, _, _ = safe_setup(tmp_path)
    r = check(conf, tmp_path)
    assert (r.returncode, r.stderr) == (0, f"{conf}: configuration OK\n"), r


@pytest.mark.parametrize("address,col", [
    ("0.0.0.0:7443", 13), ("192.0.2.1:7443", 13), ("[::]:7443", 13),
    ("[2001:db8::1]:7443", 13),
])
def test_non_loopback_listener_without_tls(tmp_path, address, col):
    conf = write(tmp_path / "palyrad.conf",
                 f'state-dir "{tmp_path}/state"\n'
                 "listen http 127.0.0.1:0\n"
                 f"listen grpc {address}\n")
    assert_refused(conf, tmp_path, f"{conf}:3:{col}: listening on a "
                   "non-loopback address requires tls")


def test_loopback_listener_without_tls_is_fine(tmp_path):
    conf = write(tmp_path / "palyrad.conf",
                 f'state-dir "{tmp_path}/state"\n'
                 "listen http [::1]:0\nlisten grpc localhost:0\n")
    r = check(conf, tmp_path)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_api_key_file_readable_by_others(tmp_path, mode):
    conf, state, key = safe_setup(tmp_path, key_mode=mode)
    assert_refused(conf, tmp_path, f'{conf}:6:2: provider "remote": api-key '
                   f'file "{key}" is accessible by group or others (mode '
                   f"{mode:04o}); it must be 0600 or stricter", state)


@needs_root
def test_api_key_file_of_another_user(tmp_path):
    conf, state, key = safe_setup(tmp_path)
    os.chown(key, STRANGER, STRANGER)
    assert_refused(conf, tmp_path, f'{conf}:6:2: provider "remote": api-key '
                   f'file "{key}" is owned by uid {STRANGER}; it must belong '
                   "to root or to the user palyrad runs as", state)


def test_api_key_file_not_a_regular_file(tmp_path):
    conf, state, key = safe_setup(tmp_path)
    os.unlink(key)
    os.mkdir(key, 0o700)
    assert_refused(conf, tmp_path, f'{conf}:6:2: provider "remote": api-key '
                   f'file "{key}" is not a regular file', state)


TLS = """\
state-dir "{state}"
listen http 127.0.0.1:0
listen grpc 0.0.0.0:0 tls {{
	certificate "{cert}"
	key "{key}"
}}
"""


def test_tls_key_readable_by_others(tmp_path):
    cert, key = tmp_path / "server.crt", tmp_path / "server.key"
    # The modes are checked before any PEM is parsed: any content will do.
    write(cert, "not a certificate\n", 0o644)
    write(key, "not a key\n", 0o640)
    conf = write(tmp_path / "palyrad.conf",
                 TLS.format(state=tmp_path / "state", cert=cert, key=key))
    assert_refused(conf, tmp_path, f'{conf}:5:2: tls key file "{key}" is '
                   "accessible by group or others (mode 0640); it must be "
                   "0600 or stricter")


def test_api_key_file_symlink(tmp_path):
    # palyrad opens credentials with O_NOFOLLOW: a link is refused up front.
    conf, state, key = safe_setup(tmp_path)
    os.rename(key, key + ".real")
    os.symlink(key + ".real", key)
    assert_refused(conf, tmp_path, f'{conf}:6:2: provider "remote": api-key '
                   f'file "{key}" is a symbolic link; name the file itself',
                   state)


def test_tls_key_symlink_to_a_private_file_is_fine(tmp_path):
    # Certificate managers keep keys behind links (live/ -> archive/).
    cert, real = tmp_path / "server.crt", tmp_path / "server.key.1"
    write(cert, "not a certificate\n", 0o644)
    write(real, "not a key\n", 0o600)
    key = tmp_path / "server.key"
    os.symlink(real, key)
    conf = write(tmp_path / "palyrad.conf",
                 TLS.format(state=tmp_path / "state", cert=cert, key=key))
    r = check(conf, tmp_path)
    assert (r.returncode, r.stderr) == (0, f"{conf}: configuration OK\n"), r
    os.chmod(real, 0o604)
    assert_refused(conf, tmp_path, f'{conf}:5:2: tls key file "{key}" is '
                   "accessible by group or others (mode 0604); it must be "
                   "0600 or stricter")


@pytest.mark.parametrize("name", ["master.key", "admin.token"])
def test_state_secret_readable_by_others(tmp_path, name):
    conf, state, _ = safe_setup(tmp_path)
    path = os.path.join(state, name)
    write(tmp_path / "state" / name, "x" * 32, 0o644)
    assert_refused(conf, tmp_path, f'{conf}:1:1: state file "{path}" is '
                   "accessible by group or others (mode 0644); it must be "
                   "0600 or stricter")
    # Once private again, the configuration is accepted.
    os.chmod(path, 0o600)
    r = check(conf, tmp_path)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("mode", [0o770, 0o707, 0o1777])
def test_state_dir_writable_by_others(tmp_path, mode):
    conf, state, _ = safe_setup(tmp_path, state_mode=mode)
    assert_refused(conf, tmp_path, f'{conf}:1:1: state directory "{state}" '
                   f"is writable by group or others (mode {mode:04o}); it "
                   "must be 0755 or stricter", state)


@needs_root
def test_state_dir_of_another_user(tmp_path):
    conf, state, _ = safe_setup(tmp_path)
    os.chown(state, STRANGER, STRANGER)
    assert_refused(conf, tmp_path, f'{conf}:1:1: state directory "{state}" '
                   f"is owned by uid {STRANGER}; it must belong to root, to "
                   "the user palyrad runs as or to its service user", state)


def test_state_dir_not_a_directory(tmp_path):
    conf, state, _ = safe_setup(tmp_path)
    os.rmdir(state)
    write(tmp_path / "state", "", 0o600)
    assert_refused(conf, tmp_path, f'{conf}:1:1: state directory "{state}" '
                   "is not a directory")


def test_include_names_the_included_file(tmp_path):
    # The position is the directive's own, in the file that holds it.
    conf, state, key = safe_setup(tmp_path, key_mode=0o644)
    inc = write(tmp_path / "providers.conf",
                "# credentials\nprovider \"remote\" {\n"
                f"\ttype openai\n\tmodel \"m\"\n\tapi-key file:{key}\n}}\n")
    main = write(tmp_path / "main.conf",
                 f'state-dir "{state}"\nlisten grpc 127.0.0.1:0\n'
                 f'listen http 127.0.0.1:0\ninclude "{inc}"\n')
    assert_refused(main, tmp_path, f'{inc}:5:2: provider "remote": api-key '
                   f'file "{key}" is accessible by group or others (mode '
                   "0644); it must be 0600 or stricter", state)


RELOAD = """\
state-dir "{{state}}"
listen grpc 127.0.0.1:{{grpc_port}}
listen http 127.0.0.1:{{http_port}}
provider "remote" {{{{ type openai; api-key file:{key}; model "m" }}}}
tenant "default" {{{{ }}}}
"""


def test_reload_refuses_and_keeps_running(tmp_path):
    key = tmp_path / "remote.key"
    write(key, "sk-" + "y" * 40 + "\n", 0o600)
    d = Daemon(tmp_path / "d", RELOAD.format(key=key), ("default",))
    d.start()
    try:
        os.chmod(key, 0o644)
        mark = len(d.log_text())
        d.proc.send_signal(signal.SIGHUP)
        poll(lambda: "reload failed" in d.log_text()[mark:], 10,
             what="the reload to be refused")
        log = d.log_text()[mark:]
        assert (f'{d.conf}:4:34: provider "remote": api-key file "{key}" is '
                "accessible by group or others (mode 0644); it must be 0600 "
                "or stricter") in log, log
        # The admin API's reload is refused the same way.
        st, body = http_request(d, "POST", "/admin/v1/reload",
                                token=d.admin_token)
        assert st == 409 and body["error"]["code"] == "conflict", body
        assert body["error"]["message"].endswith(
            f'{d.conf}:4:34: provider "remote": api-key file "{key}" is '
            "accessible by group or others (mode 0644); it must be 0600 "
            "or stricter"), body
        # The running configuration stays.
        st, _ = http_request(d, "GET", "/healthz", timeout=5)
        assert st == 200
        os.chmod(key, 0o600)
        d.assert_clean_stop()
    finally:
        if not d.stopped:
            d.kill()
