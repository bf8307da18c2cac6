"""palyractl connection settings, token files, exit codes and completion.

Precedence is flag > environment > default: -g over PALYRA_GRPC, -u over
PALYRA_URL, --token over --token-file over PALYRA_TOKEN over
PALYRA_TOKEN_FILE. Exit codes (palyractl(1) EXIT STATUS): 0 success, 1 the
daemon answered an error, 2 usage error, 3 cannot connect.
"""
import os
import re
import subprocess

import pytest

from conftest import OFFLINE_REPLY, PALYRACTL, free_port

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_CONNECT = 0, 1, 2, 3


def ctl(*args, env=None, timeout=30):
    if not os.access(PALYRACTL, os.X_OK):
        pytest.fail(f"{PALYRACTL} not built", pytrace=False)
    # Nothing from the caller's environment decides the outcome: no proxy,
    # no PALYRA_* setting but those the test gives.
    base = {k: v for k, v in os.environ.items()
            if "proxy" not in k.lower() and not k.startswith("PALYRA_")}
    base.update(env or {})
    return subprocess.run([PALYRACTL, *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL,
                          env=base, cwd="/")


def dead_grpc():
    return f"127.0.0.1:{free_port()}"


def dead_url():
    return f"http://127.0.0.1:{free_port()}"


def token_file(tmp_path, content, mode=0o600, name="token"):
    p = tmp_path / name
    p.write_text(content)
    os.chmod(p, mode)
    return str(p)


# ------------------------------------------------------------ connection


def test_env_grpc(palyra):
    r = ctl("health", env={"PALYRA_GRPC": palyra.grpc_addr})
    assert r.returncode == EXIT_OK, r
    assert r.stdout.startswith("SERVING"), r


def test_flag_grpc_beats_env(palyra):
    r = ctl("-g", palyra.grpc_addr, "health",
            env={"PALYRA_GRPC": dead_grpc()})
    assert r.returncode == EXIT_OK, r
    assert r.stdout.startswith("SERVING"), r
    dead = dead_grpc()
    r = ctl("-g", dead, "health", env={"PALYRA_GRPC": palyra.grpc_addr})
    assert r.returncode == EXIT_CONNECT, r
    assert f"cannot connect to {dead}" in r.stderr, r


def test_env_url(palyra):
    r = ctl("-s", palyra.state, "token", "create", "--tenant", "default",
            env={"PALYRA_URL": palyra.http_url})
    assert r.returncode == EXIT_OK, r
    assert len(r.stdout.split()) == 1, r


def test_flag_url_beats_env(palyra):
    r = ctl("-u", palyra.http_url, "-s", palyra.state, "tenant", "list",
            env={"PALYRA_URL": dead_url()})
    assert r.returncode == EXIT_OK, r
    assert "default" in r.stdout, r
    dead = dead_url()
    r = ctl("-u", dead, "-s", palyra.state, "tenant", "list",
            env={"PALYRA_URL": palyra.http_url})
    assert r.returncode == EXIT_CONNECT, r
    assert f"cannot connect to {dead}" in r.stderr, r


def test_bad_env_address_is_usage_error():
    r = ctl("health", env={"PALYRA_GRPC": "no-port-here"})
    assert r.returncode == EXIT_USAGE, r
    assert "bad gRPC address no-port-here" in r.stderr, r
    r = ctl("health", env={"PALYRA_URL": "ftp://x"})
    assert r.returncode == EXIT_USAGE, r
    assert "bad URL ftp://x" in r.stderr, r


# ---------------------------------------------------------------- tokens


def test_env_token(palyra, token):
    r = ctl("run", "via env", env={"PALYRA_GRPC": palyra.grpc_addr,
                                   "PALYRA_TOKEN": token})
    assert r.returncode == EXIT_OK, r
    assert r.stdout.rstrip("\n") == OFFLINE_REPLY.format("via env"), r


def test_token_file(palyra, token, tmp_path):
    path = token_file(tmp_path, token + "\n")
    r = ctl("-g", palyra.grpc_addr, "--token-file", path, "run", "from file")
    assert r.returncode == EXIT_OK, r
    assert r.stdout.rstrip("\n") == OFFLINE_REPLY.format("from file"), r
    r = ctl("-g", palyra.grpc_addr, "run", "from env file",
            env={"PALYRA_TOKEN_FILE": path})
    assert r.returncode == EXIT_OK, r
    assert r.stdout.rstrip("\n") == OFFLINE_REPLY.format("from env file"), r


def test_token_precedence(palyra, token, tmp_path):
    good = token_file(tmp_path, token, name="good")
    bogus = token_file(tmp_path, "bogus-token", name="bogus")
    g = palyra.grpc_addr
    # --token-file (a flag) beats PALYRA_TOKEN.
    r = ctl("-g", g, "--token-file", good, "run", "a",
            env={"PALYRA_TOKEN": "bogus-token"})
    assert r.returncode == EXIT_OK, r
    # PALYRA_TOKEN beats PALYRA_TOKEN_FILE.
    r = ctl("-g", g, "run", "b",
            env={"PALYRA_TOKEN": token, "PALYRA_TOKEN_FILE": bogus})
    assert r.returncode == EXIT_OK, r
    # The command's --token beats them all.
    r = ctl("-g", g, "--token-file", bogus, "run", "--token", token, "c",
            env={"PALYRA_TOKEN": "bogus-token"})
    assert r.returncode == EXIT_OK, r
    # That a bogus token that wins is refused: test_bad_token_is_server_error.


@pytest.mark.parametrize("mode", [0o604, 0o644, 0o602, 0o601])
def test_token_file_open_to_others_refused(palyra, token, tmp_path, mode):
    path = token_file(tmp_path, token, mode=mode)
    r = ctl("-g", palyra.grpc_addr, "--token-file", path, "run", "x")
    assert r.returncode == EXIT_USAGE, r
    assert f"token file {path}: accessible by others" in r.stderr, r
    assert f"{mode:04o}" in r.stderr, r
    assert r.stdout == "", r
    # The same through the environment.
    r = ctl("-g", palyra.grpc_addr, "run", "x",
            env={"PALYRA_TOKEN_FILE": path})
    assert r.returncode == EXIT_USAGE, r
    assert "accessible by others" in r.stderr, r


def test_token_file_only_read_by_token_commands(palyra, tmp_path):
    """A stale PALYRA_TOKEN_FILE does not break health or completion."""
    path = token_file(tmp_path, "x", mode=0o644)
    env = {"PALYRA_TOKEN_FILE": path}
    r = ctl("-g", palyra.grpc_addr, "health", env=env)
    assert r.returncode == EXIT_OK, r
    r = ctl("completion", "bash", env=env)
    assert r.returncode == EXIT_OK, r
    r = ctl("-g", palyra.grpc_addr, "sessions", "list", env=env)
    assert r.returncode == EXIT_USAGE, r
    assert "accessible by others" in r.stderr, r


def test_token_file_group_readable_accepted(palyra, token, tmp_path):
    path = token_file(tmp_path, token, mode=0o640)
    r = ctl("-g", palyra.grpc_addr, "--token-file", path, "run", "grp")
    assert r.returncode == EXIT_OK, r


def test_token_file_not_regular(palyra, tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o600)
    for path in (str(tmp_path), str(fifo)):
        # A FIFO must be refused, not block palyractl.
        r = ctl("-g", palyra.grpc_addr, "--token-file", path, "run", "x",
                timeout=10)
        assert r.returncode == EXIT_USAGE, r
        assert f"token file {path}: not a regular file" in r.stderr, r


def test_token_file_bad_contents(palyra, tmp_path):
    missing = str(tmp_path / "missing")
    r = ctl("-g", palyra.grpc_addr, "--token-file", missing, "run", "x")
    assert r.returncode == EXIT_USAGE, r
    assert f"token file {missing}: No such file or directory" in r.stderr, r
    cases = {"empty": ("\n", "empty"),
             "long": ("a" * 300, "token longer than 256 bytes"),
             "two": ("one two\n", "not one token on one line")}
    for name, (content, why) in cases.items():
        path = token_file(tmp_path, content, name=name)
        r = ctl("-g", palyra.grpc_addr, "--token-file", path, "run", "x")
        assert r.returncode == EXIT_USAGE, (name, r)
        assert f"token file {path}: {why}" in r.stderr, (name, r)


# ------------------------------------------------------------ exit codes


@pytest.mark.parametrize("args,message", [
    ((), "missing command"),
    (("frobnicate",), "unknown command frobnicate"),
    (("run", "x"), "run needs --token"),
    (("approvals", "list"), "approvals list needs --token"),
    (("usage",), "usage needs --token"),
    (("budget", "list", "--tenant", "a", "--token", "b"),
     "exclude each other"),
    (("runs", "show"), ""),
    (("completion", "zsh"), "completion needs a shell: bash"),
    (("--no-such-flag", "health"), ""),
])
def test_usage_errors(args, message):
    r = ctl("-g", dead_grpc(), "-u", dead_url(), *args)
    assert r.returncode == EXIT_USAGE, r
    assert message in r.stderr, r
    assert r.stderr.strip(), r
    assert r.stdout == "", r


@pytest.mark.parametrize("args", [
    ("health",),
    ("status",),
    ("run", "--token", "t", "x"),
    ("run", "--tenant", "default", "x"),
    ("runs", "show", "--token", "t", "r1"),
    ("sessions", "list", "--token", "t"),
    ("agent", "list", "--token", "t"),
    ("approvals", "list", "--token", "t"),
    ("usage", "--token", "t"),
    ("budget", "list", "--token", "t"),
    ("tenant", "list"),
    ("token", "create", "--tenant", "default"),
    ("journal", "pubkey"),
    ("reload",),
])
def test_unreachable_daemon(args):
    r = ctl("-g", dead_grpc(), "-u", dead_url(), *args,
            env={"PALYRA_ADMIN_TOKEN": "x" * 32})
    assert r.returncode == EXIT_CONNECT, r
    assert re.search(r"cannot connect to (http://)?127\.0\.0\.1:\d+",
                     r.stderr), r


def test_unreachable_json(palyra):
    r = ctl("--json", "-g", dead_grpc(), "health")
    assert r.returncode == EXIT_CONNECT, r


@pytest.mark.parametrize("args", [
    ("runs", "show", "--token", "{token}", "0" * 32),
    ("approvals", "show", "--token", "{token}", "nosuchapproval"),
    ("agent", "show", "--token", "{token}", "nosuchagent"),
    ("token", "create", "--tenant", "nosuchtenant"),
    ("tenant", "show", "nosuchtenant"),
])
def test_server_errors(palyra, token, args):
    args = [a.format(token=token) for a in args]
    r = ctl("-g", palyra.grpc_addr, "-u", palyra.http_url, "-s",
            palyra.state, *args)
    assert r.returncode == EXIT_FAIL, r
    assert r.stderr.strip(), r
    assert "cannot connect" not in r.stderr, r


def test_bad_token_is_server_error(fresh_daemon, tmp_path):
    """A token the daemon refuses is its answer (1), not a usage error.

    A daemon of its own: refused tokens spend the source's allowance of
    authentication failures (FE_AUTH_FAIL_BURST), shared with other tests.
    """
    d = fresh_daemon
    bogus = token_file(tmp_path, "bogus-token")
    for args in (("run", "--token", "bogus", "x"),
                 ("approvals", "list", "--token", "bogus"),
                 ("usage", "--token", "bogus")):
        r = ctl("-g", d.grpc_addr, *args)
        assert r.returncode == EXIT_FAIL, r
        assert r.stderr.strip() and "cannot connect" not in r.stderr, r
    # The token of --token-file wins over PALYRA_TOKEN, bad as it is.
    r = ctl("-g", d.grpc_addr, "--token-file", bogus, "run", "d",
            env={"PALYRA_TOKEN": d.mint_token()})
    assert r.returncode == EXIT_FAIL, r
    assert OFFLINE_REPLY.format("d") not in r.stdout


def test_success_and_help_exit_zero(palyra):
    assert ctl("help").returncode == EXIT_OK
    assert ctl("-h").returncode == EXIT_OK
    r = ctl("-g", palyra.grpc_addr, "--json", "health")
    assert r.returncode == EXIT_OK, r


# ------------------------------------------------------------ completion


def bash(script, tmp_path):
    comp = tmp_path / "palyractl.bash"
    r = ctl("completion", "bash")
    assert r.returncode == EXIT_OK, r
    comp.write_text(r.stdout)
    return subprocess.run(["bash", "--norc", "--noprofile", "-c",
                           f"source {comp}\n{script}"],
                          capture_output=True, text=True, timeout=10)


COMPLETE = """
c() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=()
      _palyractl; echo "${COMPREPLY[*]}"; }
"""


def test_completion_script_valid(tmp_path):
    r = ctl("completion", "bash")
    assert r.returncode == EXIT_OK, r
    comp = tmp_path / "c.bash"
    comp.write_text(r.stdout)
    n = subprocess.run(["bash", "-n", str(comp)], capture_output=True,
                       text=True, timeout=10)
    assert n.returncode == 0, n
    r = bash("complete -p palyractl", tmp_path)
    assert r.returncode == 0, r
    assert r.stdout.strip() == "complete -F _palyractl palyractl", r


@pytest.mark.parametrize("words,expected", [
    (["appr"], "approvals"),
    ([""], "health token run runs sessions agent tenant reload config "
     "status journal approvals usage budget memory vault cron completion "
     "help"),
    (["ru"], "run runs"),
    (["approvals", "ver"], "verify-export"),
    (["approvals", "list", "--st"], "--state"),
    (["token", ""], "create list revoke"),
    (["token", "create", "--te"], "--tenant"),
    (["--token-f"], "--token-file"),
    (["-g", "127.0.0.1:1", "jou"], "journal"),
    (["journal", "--tenant", "acme", "ch"], "checkpoint"),
    (["runs", "--tenant", "t", "show", "--a"], "--after"),
    (["completion", ""], "bash"),
    (["run", "--tenant", "acme", "--ag"], "--agent"),
    (["health", "--js"], ""),
    (["run", "--tenant", ""], ""),
])
def test_completion_words(tmp_path, words, expected):
    quoted = " ".join(f"'{w}'" for w in ["palyractl", *words])
    r = bash(COMPLETE + f"c {quoted}\n", tmp_path)
    assert r.returncode == 0, r
    assert r.stdout.strip() == expected, r


def test_completion_names_every_command_in_usage(tmp_path):
    """The usage text and the completion come from the same commands."""
    usage = ctl("help").stdout
    r = bash(COMPLETE + "c palyractl ''\n", tmp_path)
    for name in r.stdout.split():
        assert f"  {name}" in usage, name
