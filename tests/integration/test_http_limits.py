"""Abuse resistance of the HTTP listener (common/limits.h, "HTTP listener
abuse resistance"): open connections per source address, the connection
gauges and refusal counters of /metrics, and the time a connection has to
send a whole request after its opening or its previous reply (slowloris).

Clients are raw sockets bound to a chosen loopback source address, so that
127.0.0.1 can be filled up while 127.0.0.2 still asks /metrics.
"""
import socket
import threading
import time

from conftest import poll

# Mirrors common/limits.h.
FE_CONN_PER_ADDR = 64
FE_HTTP_REQUEST_S = 10


def connect(port, source="127.0.0.1"):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((source, 0))
    s.settimeout(5.0)
    s.connect(("127.0.0.1", port))
    return s


def read_reply(s, timeout=5.0):
    """One HTTP/1.1 reply with a Content-Length: (status, body)."""
    s.settimeout(timeout)
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError("closed before a reply")
        buf += chunk
    head, body = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        k, _, v = line.partition(":")
        if k.strip().lower() == "content-length":
            length = int(v)
    while len(body) < length:
        chunk = s.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, body[:length].decode("utf-8", "replace")


def get(s, path):
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
    return read_reply(s)


def metrics(d, source="127.0.0.2"):
    s = connect(d.http_port, source)
    try:
        st, text = get(s, "/metrics")
    finally:
        s.close()
    assert st == 200, text
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def closed_at_once(s, within):
    """True when the peer closes s within `within` seconds, sending nothing."""
    s.settimeout(within)
    try:
        data = s.recv(1024)
    except socket.timeout:
        return False
    except ConnectionResetError:
        return True
    return data == b""


def test_connections_per_source_address(fresh_daemon):
    d = fresh_daemon
    gauge = "palyra_http_connections"
    refused = 'palyra_http_connections_refused_total{reason="per_addr"}'
    # Only the /metrics request itself is open.
    poll(lambda: metrics(d)[gauge] == 1, 5.0, what="no other HTTP connection")
    refused0 = metrics(d)[refused]
    conns = [connect(d.http_port) for _ in range(FE_CONN_PER_ADDR)]
    try:
        # Served, and kept alive (each reply restarts the request deadline).
        for c in conns:
            assert get(c, "/healthz")[0] == 200
        poll(lambda: metrics(d)[gauge] == FE_CONN_PER_ADDR + 1, 5.0,
             what=f"{FE_CONN_PER_ADDR} open HTTP connections")
        extra = connect(d.http_port)
        try:
            t0 = time.monotonic()
            assert closed_at_once(extra, 3.0), \
                "the connection over the limit was not closed"
            assert time.monotonic() - t0 < 2.0
        finally:
            extra.close()
        m = metrics(d)
        assert m[refused] == refused0 + 1
        assert m[gauge] == FE_CONN_PER_ADDR + 1
        # The gRPC listener has its own gauge, unaffected.
        assert 'palyra_front_connections{proto="h2"}' in m
        # The 64 within the limit are still served.
        for c in conns:
            assert get(c, "/healthz")[0] == 200
    finally:
        for c in conns:
            c.close()
    poll(lambda: metrics(d)[gauge] == 1, 5.0, what="the connections closed")
    again = connect(d.http_port)
    try:
        assert get(again, "/healthz")[0] == 200
    finally:
        again.close()


def _slowloris(port, first_request, result):
    """Sends request headers a byte a second (after one ordinary request
    unless first_request); records how long until the front closed it."""
    s = connect(port)
    try:
        if not first_request:
            assert get(s, "/healthz")[0] == 200
        t0 = time.monotonic()
        line = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: "
        s.settimeout(1.0)
        i = 0
        while time.monotonic() - t0 < FE_HTTP_REQUEST_S + 10:
            try:
                s.sendall(line[i:i + 1] if i < len(line) else b"a")
            except OSError:
                break
            i += 1
            try:
                if s.recv(1024) == b"":
                    break
            except socket.timeout:
                continue
            except OSError:
                break
        result.append(time.monotonic() - t0)
    finally:
        s.close()


def test_slowloris_headers_are_bounded(fresh_daemon):
    d = fresh_daemon
    before = metrics(d)["palyra_http_request_timeouts_total"]
    results = {True: [], False: []}
    threads = [threading.Thread(target=_slowloris,
                                args=(d.http_port, first, results[first]))
               for first in (True, False)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(FE_HTTP_REQUEST_S + 20)
    for first, res in results.items():
        what = "first" if first else "second (kept-alive)"
        assert res, f"the {what} slow request did not finish"
        assert FE_HTTP_REQUEST_S - 1.5 <= res[0] <= FE_HTTP_REQUEST_S + 3, \
            f"the {what} slow request was closed after {res[0]:.1f}s"
    assert metrics(d)["palyra_http_request_timeouts_total"] == before + 2
    # Ordinary requests are still served.
    s = connect(d.http_port)
    try:
        assert get(s, "/healthz")[0] == 200
    finally:
        s.close()
