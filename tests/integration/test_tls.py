"""TLS on both listeners: gRPC over TLS with ALPN h2, HTTPS, key file
checks, certificate reload on SIGHUP.

The certificates are made at test time with the openssl command-line tool,
self-signed for 127.0.0.1; the clients trust exactly that certificate.
"""
import json
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
import warnings

import grpc
import pytest

from conftest import (CHANNEL_OPTIONS, Daemon, READY_TIMEOUT, RPC_TIMEOUT,
                      _require_binaries, check_successful_run, health_check,
                      health_pb, poll, run_stream, PALYRAD)

TLS_CONFIG = """\
state-dir "{state}"
listen grpc 127.0.0.1:{grpc_port} tls {{ certificate "@CERT@" key "@KEY@" }}
listen http 127.0.0.1:{http_port} tls {{ certificate "@CERT@" key "@KEY@" }}
journal {{ durability full }}
provider "offline" {{ type offline }}
tenant "default" {{ agent "assistant" {{ providers "offline" }} }}
"""

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def make_cert(directory, name, key_mode=0o600):
    """A self-signed certificate for 127.0.0.1; returns (cert, key) paths."""
    cert = os.path.join(directory, f"{name}.crt")
    key = os.path.join(directory, f"{name}.key")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key,
         "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True)
    os.chmod(key, key_mode)
    return cert, key


def der_of(cert_path):
    with open(cert_path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def peer_der(port, alpn=("h2",)):
    """The certificate a new TLS connection to port is shown (DER)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw) as s:
            return s.getpeercert(binary_form=True)


class TLSDaemon(Daemon):
    """A palyrad whose listeners both speak TLS with one certificate."""

    def __init__(self, workdir, cert, key):
        template = TLS_CONFIG.replace("@CERT@", cert).replace("@KEY@", key)
        super().__init__(workdir, config_template=template, tenants=("default",))
        self.cert, self.key = cert, key

    def ssl_context(self, cafile=None):
        return ssl.create_default_context(cafile=cafile or self.cert)

    def https(self, method, path, body=None, token=None, cafile=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            f"https://127.0.0.1:{self.http_port}{path}", data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if token is not None:
            req.add_header("Authorization", f"Bearer {token}")
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}),
            urllib.request.HTTPSHandler(context=self.ssl_context(cafile)))
        try:
            with opener.open(req, timeout=RPC_TIMEOUT) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def secure_channel(self, cafile=None):
        with open(cafile or self.cert, "rb") as f:
            creds = grpc.ssl_channel_credentials(root_certificates=f.read())
        return grpc.secure_channel(self.grpc_addr, creds, options=CHANNEL_OPTIONS)

    @property
    def channel(self):
        if self._channel is None:
            self._channel = self.secure_channel()
        return self._channel

    def new_channel(self):
        return self.secure_channel()

    def mint_token(self, tenant="default", principal="tester", role="user"):
        st, body = self.https("POST", "/admin/v1/tokens",
                              {"tenant": tenant, "principal": principal,
                               "role": role}, token=self.admin_token)
        assert st == 201, f"token create: HTTPS {st} {body!r}"
        return body["token"]

    def _wait_ready(self):
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"palyrad exited with {self.proc.returncode}")
            self.record()
            st, _ = self.https("GET", "/healthz")
            if st != 200:
                return False
            with self.secure_channel() as ch:
                r = health_check(ch, timeout=1.0)
            return r.status == health_pb.HealthCheckResponse.SERVING
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            try:
                if ready():
                    return
            except AssertionError:
                raise
            except Exception:  # noqa: BLE001 - not ready yet
                pass
            if time.monotonic() >= deadline:
                raise AssertionError(f"palyrad not ready within {READY_TIMEOUT}s")
            time.sleep(0.02)


@pytest.fixture(scope="module")
def tls_daemon(tmp_path_factory):
    _require_binaries()
    d = tmp_path_factory.mktemp("tls")
    cert, key = make_cert(str(d), "server")
    daemon = TLSDaemon(d / "d", cert, key).start()
    yield daemon
    daemon.assert_clean_stop()


def test_grpc_over_tls_check_and_run(tls_daemon):
    ch = tls_daemon.channel
    assert health_check(ch).status == health_pb.HealthCheckResponse.SERVING
    token = tls_daemon.mint_token("default", "tls-user")
    res = run_stream(ch, token, "over tls")
    check_successful_run(res, "over tls")


def test_https_healthz_with_curl(tls_daemon):
    out = subprocess.run(
        ["curl", "-sS", "--noproxy", "*", "--max-time", "10", "-v",
         "--cacert", tls_daemon.cert,
         f"https://127.0.0.1:{tls_daemon.http_port}/healthz"],
        capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"status": "ok"}
    # The HTTPS listener speaks HTTP/1.1, also to a client offering h2.
    assert "HTTP/1.1 200" in out.stderr, out.stderr


def test_https_listener_refuses_cleartext(tls_daemon):
    out = subprocess.run(
        ["curl", "-sS", "--noproxy", "*", "--max-time", "5",
         f"http://127.0.0.1:{tls_daemon.http_port}/healthz"],
        capture_output=True, text=True)
    assert out.returncode != 0 or '"ok"' not in out.stdout, out


def test_h2c_client_refused_on_tls_port(tls_daemon):
    # A stock plaintext gRPC client gets nowhere.
    with grpc.insecure_channel(tls_daemon.grpc_addr, options=CHANNEL_OPTIONS) as ch:
        with pytest.raises(grpc.RpcError) as e:
            health_check(ch, timeout=2.0)
    assert e.value.code() in (grpc.StatusCode.UNAVAILABLE,
                              grpc.StatusCode.DEADLINE_EXCEEDED)
    # Nor does a raw prior-knowledge HTTP/2 preface: no SETTINGS frame
    # (type 4) comes back, the connection ends.
    with socket.create_connection(("127.0.0.1", tls_daemon.grpc_port), timeout=5) as s:
        s.sendall(H2_PREFACE + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        got = b""
        try:
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
        except (ConnectionResetError, socket.timeout):
            pass
    assert not (len(got) >= 9 and got[3] == 4), f"h2c was answered: {got[:32]!r}"


def test_tls_without_h2_alpn_refused(tls_daemon):
    # Offering only http/1.1: the handshake fails (no_application_protocol).
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        peer_der(tls_daemon.grpc_port, alpn=("http/1.1",))
    # Offering nothing: the connection is closed without an HTTP/2 word.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    got = b""
    with socket.create_connection(("127.0.0.1", tls_daemon.grpc_port), timeout=5) as raw:
        try:
            with ctx.wrap_socket(raw) as s:
                s.sendall(H2_PREFACE + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    got += chunk
        except (ssl.SSLError, ConnectionResetError, socket.timeout):
            pass
    assert got == b"", f"served without ALPN h2: {got[:32]!r}"


def test_tls_1_1_refused(tls_daemon):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        # The client's own policy would refuse TLS 1.1 first: lower it, so
        # that the refusal seen is the server's.
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_1
            ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    except (ValueError, OSError, ssl.SSLError):
        pytest.skip("this OpenSSL cannot offer TLS 1.1")
    for port in (tls_daemon.http_port, tls_daemon.grpc_port):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with pytest.raises((ssl.SSLError, ConnectionResetError)) as e:
                ctx.wrap_socket(raw).do_handshake()
        assert "NO_PROTOCOLS_AVAILABLE" not in str(e.value), e.value


def test_key_file_readable_by_others_refused(tmp_path):
    _require_binaries()
    cert, key = make_cert(str(tmp_path), "loose", key_mode=0o644)
    conf = tmp_path / "palyrad.conf"
    conf.write_text(TLS_CONFIG.replace("@CERT@", cert).replace("@KEY@", key)
                    .format(state=tmp_path / "state", grpc_port=0, http_port=0))
    proc = subprocess.run([PALYRAD, "-d", "-f", str(conf)], cwd=str(tmp_path),
                          capture_output=True, text=True, timeout=10)
    assert proc.returncode != 0
    assert key in proc.stderr, proc.stderr
    assert "group or others" in proc.stderr and "0644" in proc.stderr, proc.stderr
    # The configuration check says the same.
    proc = subprocess.run([PALYRAD, "-n", "-f", str(conf)], cwd=str(tmp_path),
                          capture_output=True, text=True, timeout=10)
    assert proc.returncode != 0 and "group or others" in proc.stderr, proc.stderr


def test_sighup_reloads_certificates(tmp_path):
    _require_binaries()
    cert, key = make_cert(str(tmp_path), "server")
    d = TLSDaemon(tmp_path / "d", cert, key).start()
    try:
        old_der = der_of(cert)
        assert peer_der(d.grpc_port) == old_der
        # A channel opened before the reload.
        before = d.secure_channel()
        assert health_check(before).status == health_pb.HealthCheckResponse.SERVING

        # Renewal: new key and certificate written over the old files.
        new_cert, new_key = make_cert(str(tmp_path), "renewed")
        for src, dst in ((new_cert, cert), (new_key, key)):
            tmp = dst + ".new"
            with open(src, "rb") as f, open(tmp, "wb") as g:
                g.write(f.read())
            os.chmod(tmp, 0o600)
            os.replace(tmp, dst)
        new_der = der_of(cert)
        assert new_der != old_der
        d.proc.send_signal(signal.SIGHUP)

        poll(lambda: peer_der(d.grpc_port) == new_der, 10,
             what="the gRPC listener to show the new certificate")
        poll(lambda: peer_der(d.http_port, alpn=("http/1.1",)) == new_der, 10,
             what="the HTTPS listener to show the new certificate")
        # New clients trusting the new certificate get in.
        with d.secure_channel(cafile=cert) as ch:
            assert health_check(ch).status == health_pb.HealthCheckResponse.SERVING
        # The connection opened before the reload keeps working.
        for _ in range(3):
            assert health_check(before).status == \
                health_pb.HealthCheckResponse.SERVING
        before.close()
        assert "certificates reloaded" in d.log_text()
        d.assert_clean_stop()
    finally:
        if not d.stopped:
            d.kill()


def test_sighup_with_bad_key_mode_keeps_running(tmp_path):
    _require_binaries()
    cert, key = make_cert(str(tmp_path), "server")
    d = TLSDaemon(tmp_path / "d", cert, key).start()
    try:
        old_der = der_of(cert)
        os.chmod(key, 0o640)
        d.proc.send_signal(signal.SIGHUP)
        poll(lambda: "reload failed" in d.log_text(), 10, what="reload refusal")
        assert "group or others" in d.log_text()
        assert peer_der(d.grpc_port) == old_der
        with d.secure_channel() as ch:
            assert health_check(ch).status == health_pb.HealthCheckResponse.SERVING
        os.chmod(key, 0o600)
        d.assert_clean_stop()
    finally:
        if not d.stopped:
            d.kill()


def test_certificate_file_over_the_limit_refused(tmp_path):
    # TLS_PEM_MAX (common/limits.h): 48 KiB per certificate or key file.
    _require_binaries()
    cert, key = make_cert(str(tmp_path), "big")
    with open(cert, "a") as f:
        f.write("# padding\n" * (49 * 1024 // 10 + 1))
    conf = tmp_path / "palyrad.conf"
    conf.write_text(TLS_CONFIG.replace("@CERT@", cert).replace("@KEY@", key)
                    .format(state=tmp_path / "state", grpc_port=0, http_port=0))
    proc = subprocess.run([PALYRAD, "-n", "-f", str(conf)], cwd=str(tmp_path),
                          capture_output=True, text=True, timeout=10)
    assert proc.returncode != 0
    assert cert in proc.stderr and "too large" in proc.stderr, proc.stderr
