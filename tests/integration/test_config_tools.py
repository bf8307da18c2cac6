"""palyrad.conf for tools, approvals and budgets (issue 7): `palyrad -n`
accepts a configuration using every new directive and prints it back with
-v; each bad directive is refused with FILE:LINE:COL and a message that
names the problem; a running daemon hands the http-fetch allow-list to the
tenant's worker (-H pinned names, -P Landlock ports) and gives the worker
and journald the tzdata read-only inside their sandboxes."""
import os
import subprocess

import pytest

from conftest import (PALYRAD, Daemon, _require_binaries, cmdline, http_request,
                      poll, run_stream, start_workers)
import grpc

GOOD = """\
state-dir "{state}"
listen grpc 127.0.0.1:{grpc_port}
listen http 127.0.0.1:{http_port}
provider "offline" {{ type offline }}
pricing "offline" {{ input 0.40; output 1.60 }}
tenant "default" {{
    timezone "Europe/Paris"
    budget tokens 1000000 per day hard
    budget cost 2.50 per month soft agent "assistant"
    budget tokens 5000 per total hard principal "alice"
    http-fetch {{
        allow "fetch-a.example"
        allow "fetch-b.example:8443"
        allow "127.0.0.1:{fetch_port}" private
        allow "[::1]:8081" private
        max-size 1M
        timeout 10s
        content-types "text/*" "application/json"
        max-redirects 3
    }}
    agent "assistant" {{
        providers "offline"
        tool "http.fetch" ask
        tool "time.*" allow
        approval-timeout 5m
        client-tool-timeout 60s
        budget tokens 20000 per day soft
        http-fetch {{ allow "agent-only.example:9443"; max-redirects 0 }}
    }}
}}
tenant "other" {{ timezone "UTC"; agent "helper" {{ providers "offline" }} }}
"""


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return str(path)


def check(conf, *extra):
    return subprocess.run([PALYRAD, "-n", *extra, "-f", conf],
                          capture_output=True, text=True, timeout=10)


def good_text(tmp_path):
    return GOOD.format(state=tmp_path / "state", grpc_port=7443,
                       http_port=7142, fetch_port=8080)


def test_all_new_directives_accepted(tmp_path):
    conf = write(tmp_path / "good.conf", good_text(tmp_path))
    r = check(conf)
    assert r.returncode == 0, r.stderr
    assert "configuration OK" in r.stderr


def test_dump_prints_them_back(tmp_path):
    conf = write(tmp_path / "good.conf", good_text(tmp_path))
    r = check(conf, "-v")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    for want in ('timezone "Europe/Paris"',
                 "budget tokens 1000000 per day hard",
                 'budget cost 2.5 per month soft agent "assistant"',
                 'budget tokens 5000 per total hard principal "alice"',
                 'budget tokens 20000 per day soft agent "assistant"',
                 'allow "fetch-a.example"',
                 'allow "127.0.0.1:8080" private',
                 'allow "[::1]:8081" private',
                 "max-size 1M", "timeout 10s",
                 'content-types "text/*" "application/json"',
                 "max-redirects 3", "max-redirects 0",
                 'allow "agent-only.example:9443"',
                 "approval-timeout 5m", "client-tool-timeout 1m",
                 'tool "http.fetch" ask', 'timezone "UTC"'):
        assert want in out, f"{want!r} missing from the dump:\n{out}"
    # The dump is itself a valid configuration that dumps the same.
    again = write(tmp_path / "again.conf", out)
    r2 = check(again, "-v")
    assert r2.returncode == 0, r2.stderr
    assert r2.stdout == out


BASE = 'state-dir "/tmp/palyra-x"\nlisten grpc 127.0.0.1:7443\n' \
       'listen http 127.0.0.1:7142\n'


# (text after BASE with "@" where the error must point, what the message
# says). The "@" is taken out before the file is written.
BAD = [
    ('tenant "t" {\n    timezone @"Mars/Olympus"\n}\n',
     'unknown time zone "Mars/Olympus"'),
    ('tenant "t" {\n    timezone @"../../etc/passwd"\n}\n',
     'invalid time zone'),
    ('tenant "t" {\n    budget tokens 10 per day agent @"ghost"\n}\n',
     'unknown agent "ghost" in tenant "t"'),
    ('tenant "t" {\n    budget tokens 10 per day\n'
     '    @budget tokens 20 per day soft\n}\n',
     'duplicate budget "tenant:tokens:day"'),
    ('tenant "t" {\n    agent "a" { budget cost 1 per month }\n'
     '    @budget cost 2 per month agent "a"\n}\n',
     'duplicate budget "agent:a:cost:month"'),
    ('tenant "t" {\n    budget tokens 10 per @week\n}\n',
     'expected day, month or total'),
    ('tenant "t" {\n    budget @dollars 10 per day\n}\n',
     'expected tokens or cost'),
    ('tenant "t" {\n    budget tokens 10 per day agent "a" principal '
     '"p"\n    agent "a" { }\n}\n'.replace('principal', '@principal'),
     'one agent or one principal, not both'),
    ('tenant "t" {\n    agent "a" { approval-timeout @2d }\n}\n',
     'out of range for "approval-timeout" (1s..1d)'),
    ('tenant "t" {\n    agent "a" { client-tool-timeout @0 }\n}\n',
     'out of range for "client-tool-timeout" (1s..1h)'),
    ('tenant "t" {\n    http-fetch {\n        allow @"https://x.example"\n'
     '    }\n}\n', "no scheme"),
    ('tenant "t" {\n    http-fetch {\n        allow @"x.example/path"\n'
     '    }\n}\n', "no path"),
    ('tenant "t" {\n    http-fetch {\n        allow @"*.example.com"\n'
     '    }\n}\n', "wildcards are not supported"),
    ('tenant "t" {\n    http-fetch {\n        allow @"::1:99999"\n'
     '    }\n}\n', "needs brackets"),
    ('tenant "t" {\n    http-fetch {\n        max-size @100M\n'
     '    }\n}\n', 'out of range for "max-size" (1..64M)'),
    ('tenant "t" {\n    http-fetch {\n        timeout @10m\n'
     '    }\n}\n', 'out of range for "timeout" (1s..5m)'),
    ('tenant "t" {\n    http-fetch {\n        max-redirects @11\n'
     '    }\n}\n', 'out of range for "max-redirects" (0..10)'),
    ('tenant "t" {\n    http-fetch {\n        content-types @"json"\n'
     '    }\n}\n', 'invalid content type "json"'),
    ('tenant "t" {\n    agent "a" {\n        http-fetch { @frobnicate 1 }\n'
     '    }\n}\n', 'unknown directive "frobnicate"'),
    ('tenant "t" {\n    http-fetch { }\n    @http-fetch { }\n}\n',
     'duplicate "http-fetch"'),
]


def marker_position(text):
    """(line, column) of the "@" in text, both 1-based, and text without
    it."""
    i = text.index("@")
    line = text.count("\n", 0, i) + 1
    col = i - (text.rfind("\n", 0, i) + 1) + 1
    return line, col, text[:i] + text[i + 1:]


@pytest.mark.parametrize("text,message", BAD, ids=[b[1][:40] for b in BAD])
def test_bad_directive_names_file_line_col(tmp_path, text, message):
    line, col, text = marker_position(BASE + text)
    conf = write(tmp_path / "bad.conf", text)
    r = check(conf)
    assert r.returncode == 1, r
    first = r.stderr.splitlines()[0]
    assert first.startswith(f"{conf}:{line}:{col}: "), first
    assert message in first, first


def test_tenant_too_large_for_its_worker(tmp_path):
    # Every limit of one directive holds, but the whole tenant would not
    # fit the one IPC message its worker is configured with.
    rules = "".join(f'        tool "client.tool.{i:03d}.{"x" * 200}" ask\n'
                    for i in range(256))
    agents = "".join(f'    agent "a{i}" {{\n{rules}    }}\n' for i in range(4))
    conf = write(tmp_path / "big.conf", BASE + 'tenant "big" {\n' + agents
                 + '}\n')
    r = check(conf)
    assert r.returncode == 1, r
    first = r.stderr.splitlines()[0]
    assert first.startswith(f"{conf}:4:1: "), first
    assert 'tenant "big" is too large to send to its processes' in first
    # One agent with the same rules fits.
    conf = write(tmp_path / "fits.conf", BASE + 'tenant "big" {\n'
                 + f'    agent "a0" {{\n{rules}    }}\n' + '}\n')
    r = check(conf)
    assert r.returncode == 0, r.stderr


# ---------------------------------------------------------------- running

RUNNING = """\
state-dir "{state}"
listen grpc 127.0.0.1:{grpc_port}
listen http 127.0.0.1:{http_port}
provider "offline" {{ type offline }}
tenant "default" {{
    timezone "Europe/Paris"
    budget tokens 1000000 per day hard
    http-fetch {{
        allow "fetch-a.invalid"
        allow "fetch-b.invalid:8443"
        allow "127.0.0.1:18080" private
    }}
    agent "assistant" {{
        providers "offline"
        http-fetch {{ allow "localhost:18081" private }}
    }}
}}
"""


@pytest.fixture
def fetch_daemon(tmp_path):
    _require_binaries()
    d = Daemon(tmp_path / "d", config_template=RUNNING, tenants=("default",))
    yield d.start()
    if not d.stopped:
        d.kill()


def arg_of(args, flag):
    for i, a in enumerate(args):
        if a == flag and i + 1 < len(args):
            return args[i + 1]
    return None


def test_worker_gets_fetch_hosts_ports_and_tzdata(fetch_daemon):
    d = fetch_daemon
    pids = start_workers(d)["default"]
    args = cmdline(pids[0])
    hosts = (arg_of(args, "-H") or "").split(",")
    # Names are pinned on 80 and 443 without a port, on theirs with one;
    # addresses need no pin.
    for want in ("fetch-a.invalid:80", "fetch-a.invalid:443",
                 "fetch-b.invalid:8443", "localhost:18081"):
        assert want in hosts, f"{want} not pinned: {args}"
    assert not any(h.startswith("127.0.0.1") for h in hosts), args
    ports = set((arg_of(args, "-P") or "").split(","))
    assert {"80", "443", "8443", "18080", "18081"} <= ports, args

    # The worker ran a turn with the tzdata bound read-only in its root,
    # and journald has it too.
    st, body = http_request(d, "GET", "/admin/v1/processes",
                            token=d.admin_token)
    assert st == 200, body
    kinds = {}
    for p in body["processes"]:
        if p["pid"] is not None:
            kinds.setdefault(p["kind"], []).append(p)
    for kind in ("worker", "journald"):
        assert kinds.get(kind), body
        for p in kinds[kind]:
            sb = p["sandbox"]
            if os.geteuid() == 0:
                assert "read-only /usr/share/zoneinfo" in sb["applied"], sb
            else:
                assert any("zoneinfo" in f for f in
                           sb["applied"] + sb["skipped"]), sb
    # The mount point lives in the worker's scratch directory; nothing of
    # the host's tzdata was copied or made writable there.
    scratch = arg_of(args, "-w")
    zdir = os.path.join(scratch, "usr", "share", "zoneinfo")
    assert os.path.isdir(zdir)
    assert os.listdir(zdir) == []


def test_reload_with_bad_timezone_keeps_running(fetch_daemon):
    d = fetch_daemon
    token = d.mint_token("default", "alice")
    with open(d.conf) as f:
        text = f.read()
    with open(d.conf, "w") as f:
        f.write(text.replace('"Europe/Paris"', '"Europe/Atlantis"'))
    st, body = http_request(d, "POST", "/admin/v1/reload", token=d.admin_token)
    assert st != 200, body
    assert "Europe/Atlantis" in str(body), body
    res = run_stream(d.channel, token, "still here")
    assert res.code == grpc.StatusCode.OK, res
    poll(lambda: d.pids_of("palyra-worker", "default"), 10,
         what="the worker")


def test_worker_ports_capped_with_a_warning(tmp_path):
    # 64 allow entries in the tenant's block and 8 in the agent's, each on
    # a port of its own: the worker's Landlock table holds 64 ports, the
    # rest is left out and the log says so.
    _require_binaries()
    tenant_allows = "".join(f'        allow "127.0.0.1:{20000 + i}" private\n'
                            for i in range(64))
    agent_allows = "".join(f'allow "127.0.0.1:{30000 + i}" private; '
                           for i in range(8))
    template = RUNNING.split('tenant "default"')[0] + (
        'tenant "default" {{\n'
        '    http-fetch {{\n' + tenant_allows + '    }}\n'
        '    agent "assistant" {{ http-fetch {{ ' + agent_allows + '}} }}\n'
        '}}\n')
    d = Daemon(tmp_path / "d", config_template=template, tenants=("default",))
    d.start()
    try:
        pids = start_workers(d)["default"]
        ports = (arg_of(cmdline(pids[0]), "-P") or "").split(",")
        assert len(ports) == 64, ports
        assert ports[0] == "20000" and ports[-1] == "20063", ports
        poll(lambda: "8 port(s) beyond the 64 a worker may connect to are "
             "left out" in d.log_text(), 5, what="the warning")
        d.assert_clean_stop()
    finally:
        if not d.stopped:
            d.kill()
