"""The built-in tool http.fetch (issue 7): egress allow-list, address
classes, redirects, caps.

Real palyrad, real worker: runs are driven by the offline model's tool demo
(input `/tool http.fetch {"url": ...}`) under agents whose policy is
`tool "http.fetch" allow`, so no approval is involved, and each run's
ToolResult event is what the model was told. Two Python http.server
instances on 127.0.0.1 play the outside world: MAIN is allow-listed with
`private` (so the loopback test server may be fetched at all) and OTHER is
allow-listed without it. Every request either server gets is recorded, so
that a refused URL is proven never to have reached it. A third server
speaks TLS with a self-signed certificate.

Cases: 127.0.0.1 (OTHER: allow-listed without private), 10.0.0.1,
169.254.169.254, [::1], [::ffff:127.0.0.1], a name that resolves to
loopback (`localhost`, pinned at worker start), a redirect to a private
address and one to OTHER; an allowed fetch (body returned) and an allowed
redirect, too many redirects and `max-redirects 0`; a host not on the list;
the size cap (truncated), a content type not allowed, the timeout, a
certificate that does not verify; the tenant's block for an agent without
one, and no allow-list at all; a run cancelled mid-fetch closes the
connection.
"""
import http.server
import json
import queue
import socket
import ssl
import subprocess
import threading
import time

import grpc
import pytest

from conftest import (Daemon, _require_binaries, auth_md, event_kind, pb, poll,
                      run_stream)

S = pb.RunStatus
SLOW_SECONDS = 3.0

CONFIG = """\
state-dir "{{state}}"
listen grpc 127.0.0.1:{{grpc_port}}
listen http 127.0.0.1:{{http_port}}
journal {{{{ durability normal }}}}
provider "offline" {{{{ type offline }}}}
tenant "default" {{{{
	http-fetch {{{{
		allow "127.0.0.1:{main}" private
	}}}}
	agent "assistant" {{{{
		providers "offline"
		tool "http.fetch" allow
		http-fetch {{{{
			allow "127.0.0.1:{main}" private
			allow "127.0.0.1:{other}"
			allow "localhost:{other}"
			allow "10.0.0.1"
			allow "169.254.169.254"
			allow "::1"
			allow "127.0.0.1:{tls}" private
			allow "[::1]:{v6}" private
		}}}}
	}}}}
	agent "capped" {{{{
		providers "offline"
		tool "http.fetch" allow
		http-fetch {{{{
			allow "127.0.0.1:{main}" private
			max-size 1K
			timeout 1s
			content-types "text/plain" "application/json"
			max-redirects 0
		}}}}
	}}}}
	agent "tenantwide" {{{{
		providers "offline"
		tool "http.fetch" allow
	}}}}
}}}}
tenant "other" {{{{
	agent "bare" {{{{
		providers "offline"
		tool "http.fetch" allow
	}}}}
}}}}
"""
TENANTS = ("default", "other")

TEXT = "hello from the test server\n"
BIG = "0123456789abcdef" * 512          # 8 KiB
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


class Recorder:
    """The requests the test servers saw: (server, method, path)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.seen = []

    def add(self, server, method, path):
        with self.lock:
            self.seen.append((server, method, path))

    def paths(self):
        with self.lock:
            return [p for _, _, p in self.seen]


def make_handler(name, recorder, ports):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def _send(self, status, ctype, body, extra=()):
            self.send_response(status)
            if ctype is not None:
                self.send_header("Content-Type", ctype)
            for k, v in extra:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        def do_HEAD(self):
            self.do_GET()

        def do_GET(self):
            recorder.add(name, self.command, self.path)
            p = self.path.split("?")[0]
            if p.startswith("/text"):
                hdrs = json.dumps({k.lower(): v for k, v in self.headers.items()})
                self._send(200, "text/plain; charset=utf-8",
                           TEXT.encode(), [("X-Seen-Headers", hdrs)])
            elif p == "/echo-headers":
                body = json.dumps({k.lower(): v for k, v in self.headers.items()})
                self._send(200, "application/json", body.encode())
            elif p == "/big":
                self._send(200, "text/plain", BIG.encode())
            elif p == "/image":
                self._send(200, "image/png", PNG)
            elif p == "/slow":
                time.sleep(SLOW_SECONDS)
                self._send(200, "text/plain", b"too late")
            elif p == "/drip":
                # A byte every 50 ms for 5 s, until the client goes away.
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                try:
                    for _ in range(100):
                        self.wfile.write(b"x")
                        self.wfile.flush()
                        time.sleep(0.05)
                except OSError:
                    recorder.add(name, "CLOSED", p)
            elif p == "/redir-private":
                self._send(302, "text/plain", b"", [("Location", "http://10.0.0.1/")])
            elif p == "/redir-other":
                self._send(302, "text/plain", b"",
                           [("Location", f"http://127.0.0.1:{ports['other']}/text-other")])
            elif p == "/redir-ok":
                self._send(301, "text/plain", b"", [("Location", "/text-after-redirect")])
            elif p == "/redir-loop":
                self._send(302, "text/plain", b"", [("Location", "/redir-loop")])
            else:
                self._send(404, "text/plain", b"not found")

    return Handler


class QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass    # the TLS server's failed handshakes are the point


class QuietServer6(QuietServer):
    address_family = socket.AF_INET6


def serve(server):
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    return t


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fetch-world")
    recorder = Recorder()
    ports = {}
    main = QuietServer(("127.0.0.1", 0), make_handler("main", recorder, ports))
    other = QuietServer(("127.0.0.1", 0), make_handler("other", recorder, ports))
    tls = QuietServer(("127.0.0.1", 0), make_handler("tls", recorder, ports))
    ports.update(main=main.server_address[1], other=other.server_address[1],
                 tls=tls.server_address[1])
    try:
        v6 = QuietServer6(("::1", 0), make_handler("v6", recorder, ports))
        ports["v6"] = v6.server_address[1]
    except OSError:
        v6 = None       # no IPv6 loopback here: its test skips
        ports["v6"] = 9
    ports["has_v6"] = v6 is not None
    cert, key = str(tmp / "cert.pem"), str(tmp / "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=30)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    tls.socket = ctx.wrap_socket(tls.socket, server_side=True)
    servers = [main, other, tls] + ([v6] if v6 is not None else [])
    for s in servers:
        serve(s)
    yield recorder, ports
    for s in servers:
        s.shutdown()
        s.server_close()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory, world):
    _require_binaries()
    _, ports = world
    d = Daemon(tmp_path_factory.mktemp("fetch"), CONFIG.format(**ports), TENANTS)
    d.start()
    yield d
    if not d.stopped:
        d.kill()


@pytest.fixture(scope="module")
def token(daemon):
    return daemon.mint_token("default", "fetcher", "user")


def fetch(daemon, token, args, agent="assistant"):
    """Runs `/tool http.fetch ARGS`; returns (ToolResult, RunResult)."""
    res = run_stream(daemon.channel, token=token, agent=agent,
                     input="/tool http.fetch " + json.dumps(args), timeout=30)
    assert res.code == grpc.StatusCode.OK, res
    kinds = [event_kind(ev) for ev in res.events]
    assert "tool_call" in kinds and "tool_result" in kinds, kinds
    assert kinds.index("tool_call") < kinds.index("tool_result"), kinds
    call = res.events[kinds.index("tool_call")].tool_call
    assert call.name == "http.fetch", call
    result = res.events[kinds.index("tool_result")].tool_result
    assert result.id == call.id and result.name == "http.fetch", result
    assert res.events[-1].status.status == S.RUN_STATUS_COMPLETED, res.events[-1]
    # What the model was told is what the client sees in the reply.
    final = [ev.final.text for ev in res.events if event_kind(ev) == "final"]
    assert final and result.content in final[0], (final, result.content)
    return result, res


def refused(daemon, token, url, expect, agent="assistant"):
    result, _ = fetch(daemon, token, {"url": url}, agent)
    assert result.is_error, result
    assert expect in result.content, (expect, result.content)
    return result.content


def ok(daemon, token, args, agent="assistant"):
    result, _ = fetch(daemon, token, args, agent)
    assert not result.is_error, result.content
    return json.loads(result.content)


# ------------------------------------------------------------------ tests

def test_allowed_fetch_returns_the_body(daemon, token, world):
    recorder, ports = world
    url = f"http://127.0.0.1:{ports['main']}/text?x=1#fragment"
    r = ok(daemon, token, {"url": url, "headers": {"X-Probe": "yes"}})
    assert r == {"url": f"http://127.0.0.1:{ports['main']}/text?x=1",
                 "status": 200, "content_type": "text/plain",
                 "truncated": False, "body": TEXT}, r
    assert "/text?x=1" in recorder.paths()
    # The model's header went out; the fragment never does.
    r = ok(daemon, token, {"url": f"http://127.0.0.1:{ports['main']}/echo-headers",
                           "headers": {"X-Probe": "yes"}})
    sent = json.loads(r["body"])
    assert sent.get("x-probe") == "yes", sent
    assert sent.get("host") == f"127.0.0.1:{ports['main']}", sent


def test_head_and_http_errors(daemon, token, world):
    _, ports = world
    r = ok(daemon, token, {"url": f"http://127.0.0.1:{ports['main']}/text",
                           "method": "HEAD"})
    assert r["status"] == 200 and r["body"] == "", r
    # An HTTP error status is an answer for the model, not a tool error.
    r = ok(daemon, token, {"url": f"http://127.0.0.1:{ports['main']}/missing"})
    assert r["status"] == 404 and r["body"] == "not found", r


def test_ipv6_literal_with_private(daemon, token, world):
    recorder, ports = world
    if not ports["has_v6"]:
        pytest.skip("no IPv6 loopback on this host")
    r = ok(daemon, token, {"url": f"http://[::1]:{ports['v6']}/text-v6"})
    assert r["url"] == f"http://[::1]:{ports['v6']}/text-v6", r
    assert r["body"] == TEXT, r
    assert ("v6", "GET", "/text-v6") in recorder.seen, recorder.seen


def test_loopback_without_private_is_refused(daemon, token, world):
    recorder, ports = world
    refused(daemon, token, f"http://127.0.0.1:{ports['other']}/refused-loopback",
            "http.fetch: refused: 127.0.0.1 is a loopback address")
    refused(daemon, token, f"http://[::ffff:127.0.0.1]:{ports['other']}/refused-mapped",
            "is a loopback address")
    assert not [p for p in recorder.paths() if p.startswith("/refused")], \
        recorder.seen


@pytest.mark.parametrize("url,expect", [
    ("http://10.0.0.1/", "http.fetch: refused: 10.0.0.1 is a private address"),
    ("http://169.254.169.254/latest/meta-data/",
     "http.fetch: refused: 169.254.169.254 is a cloud metadata address"),
    ("http://[::1]/", "http.fetch: refused: ::1 is a loopback address"),
])
def test_private_addresses_are_refused(daemon, token, url, expect):
    refused(daemon, token, url, expect)


def test_name_resolving_to_loopback_is_refused(daemon, token, world):
    recorder, ports = world
    content = refused(daemon, token,
                      f"http://localhost:{ports['other']}/refused-localhost",
                      "http.fetch: refused: localhost resolves to ")
    assert "loopback address" in content, content
    assert "/refused-localhost" not in recorder.paths(), recorder.seen


def test_redirects_are_checked_hop_by_hop(daemon, token, world):
    recorder, ports = world
    refused(daemon, token, f"http://127.0.0.1:{ports['main']}/redir-private",
            "http.fetch: redirect to http://10.0.0.1/ refused: "
            "10.0.0.1 is a private address")
    refused(daemon, token, f"http://127.0.0.1:{ports['main']}/redir-other",
            f"http.fetch: redirect to http://127.0.0.1:{ports['other']}/text-other "
            "refused: 127.0.0.1 is a loopback address")
    assert "/redir-other" in recorder.paths()
    assert "/text-other" not in recorder.paths(), recorder.seen
    # An allowed hop is followed; the result names where it ended.
    r = ok(daemon, token, {"url": f"http://127.0.0.1:{ports['main']}/redir-ok"})
    assert r["url"] == f"http://127.0.0.1:{ports['main']}/text-after-redirect", r
    assert r["status"] == 200 and r["body"] == TEXT, r
    refused(daemon, token, f"http://127.0.0.1:{ports['main']}/redir-loop",
            "http.fetch: more than 3 redirects")
    assert recorder.paths().count("/redir-loop") == 4, recorder.seen
    # max-redirects 0: none is followed.
    before = recorder.paths().count("/text-after-redirect")
    refused(daemon, token, f"http://127.0.0.1:{ports['main']}/redir-ok",
            "http.fetch: redirect to /text-after-redirect not followed "
            "(max-redirects 0)", agent="capped")
    assert recorder.paths().count("/text-after-redirect") == before


def test_hosts_not_on_the_allow_list(daemon, token, world):
    recorder, ports = world
    refused(daemon, token, "https://example.com/",
            "http.fetch: refused: example.com:443 is not on the egress allow-list")
    # The right host on another port is another entry.
    refused(daemon, token, "http://127.0.0.1:9/refused-port",
            "127.0.0.1:9 is not on the egress allow-list")
    refused(daemon, token, "ftp://127.0.0.1/", "scheme \"ftp\" is not allowed")
    refused(daemon, token, f"http://user:secret@127.0.0.1:{ports['main']}/refused-creds",
            "credentials in the URL are not allowed")
    assert not [p for p in recorder.paths() if p.startswith("/refused")], \
        recorder.seen


def test_bad_arguments_are_reported_to_the_model(daemon, token, world):
    _, ports = world
    result, _ = fetch(daemon, token, {"url": f"http://127.0.0.1:{ports['main']}/text",
                                      "headers": {"Authorization": "Bearer x"}})
    assert result.is_error, result
    assert "Authorization" in result.content, result.content


def test_size_cap_truncates(daemon, token, world):
    _, ports = world
    r = ok(daemon, token, {"url": f"http://127.0.0.1:{ports['main']}/big"},
           agent="capped")
    assert r["truncated"] is True, {k: v for k, v in r.items() if k != "body"}
    assert r["body"] == BIG[:1024], len(r["body"])
    # Under the default cap (1 MiB) the same body is whole.
    r = ok(daemon, token, {"url": f"http://127.0.0.1:{ports['main']}/big"})
    assert r["truncated"] is False and r["body"] == BIG


def test_content_type_not_allowed(daemon, token, world):
    _, ports = world
    refused(daemon, token, f"http://127.0.0.1:{ports['main']}/image",
            "http.fetch: content type image/png is not allowed")
    refused(daemon, token, f"http://127.0.0.1:{ports['main']}/image",
            "http.fetch: content type image/png is not allowed", agent="capped")


def test_timeout(daemon, token, world):
    _, ports = world
    t0 = time.monotonic()
    refused(daemon, token, f"http://127.0.0.1:{ports['main']}/slow",
            "http.fetch: timed out after 1 s", agent="capped")
    assert time.monotonic() - t0 < SLOW_SECONDS, "the fetch waited for the server"


def test_certificate_must_verify(daemon, token, world):
    recorder, ports = world
    content = refused(daemon, token, f"https://127.0.0.1:{ports['tls']}/secret",
                      "http.fetch: cannot connect: ")
    assert "certificate" in content.lower(), content
    assert "/secret" not in recorder.paths(), recorder.seen


def test_tenant_block_and_no_allow_list(daemon, token, world):
    _, ports = world
    # An agent without its own block uses the tenant's.
    r = ok(daemon, token, {"url": f"http://127.0.0.1:{ports['main']}/text"},
           agent="tenantwide")
    assert r["body"] == TEXT
    refused(daemon, token, f"http://127.0.0.1:{ports['other']}/refused-tenantwide",
            "is not on the egress allow-list", agent="tenantwide")
    other = daemon.mint_token("other", "someone", "user")
    refused(daemon, other, f"http://127.0.0.1:{ports['main']}/refused-bare",
            "http.fetch: no egress allow-list for this agent", agent="bare")


def test_cancel_closes_the_fetch(daemon, token, world):
    """A run cancelled mid-fetch ends at once and its connection closes."""
    recorder, ports = world
    args = {"url": f"http://127.0.0.1:{ports['main']}/drip"}
    requests = queue.Queue()
    requests.put(pb.RunStreamRequest(start=pb.RunStart(
        input="/tool http.fetch " + json.dumps(args), agent="assistant")))

    def gen():
        while True:
            r = requests.get()
            if r is None:
                return
            yield r

    call = daemon.channel.stream_stream(
        "/palyra.v1.GatewayService/RunStream",
        request_serializer=pb.RunStreamRequest.SerializeToString,
        response_deserializer=pb.RunEvent.FromString)
    it = call(gen(), metadata=auth_md(token), timeout=30)
    events = []
    try:
        for ev in it:
            events.append(ev)
            if event_kind(ev) == "tool_call":
                # The server is dripping: the fetch is under way.
                poll(lambda: "/drip" in recorder.paths(), 5, what="the fetch")
                t0 = time.monotonic()
                requests.put(pb.RunStreamRequest(cancel=pb.Cancel()))
    finally:
        requests.put(None)
    statuses = [ev.status.status for ev in events if event_kind(ev) == "status"]
    assert statuses[-1] == S.RUN_STATUS_CANCELLED, events
    assert time.monotonic() - t0 < 3, "the cancel waited for the fetch"
    # The worker closed the connection: the server's next write failed.
    poll(lambda: ("main", "CLOSED", "/drip") in recorder.seen, 3,
         what="the fetch's connection to close")
