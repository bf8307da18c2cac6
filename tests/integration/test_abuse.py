"""HTTP/2 abuse resistance of the gRPC listener (common/limits.h, "HTTP/2
abuse resistance"): connections per source address, the preface timeout,
the header list size, CONTINUATION flood, rapid reset, PING flood.

The client is a raw socket speaking HTTP/2 frames built here with struct;
HPACK is only ever "literal header field without indexing, new name"
(RFC 7541 section 6.2.2), simple to encode by hand. Every test checks that
the offending connection ends while others keep working and the daemon
stays up.
"""
import socket
import struct
import time

import pytest

from conftest import http_request, poll, health_check

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, CONTINUATION = 0, 1, 3, 4, 6, 7, 9
END_STREAM, END_HEADERS = 0x1, 0x4
CANCEL, SETTINGS_TIMEOUT, ENHANCE_YOUR_CALM = 0x8, 0x4, 0xb

# Mirrors common/limits.h.
FE_CONN_PER_ADDR = 64
FE_H2_PREFACE_S = 10
FE_GRPC_MAX_HEADERS = 16 * 1024

HEALTH_CHECK = "/grpc.health.v1.Health/Check"
# HealthCheckResponse{status: SERVING}, as one gRPC length-prefixed message.
SERVING_MESSAGE = b"\x00\x00\x00\x00\x02\x08\x01"


def frame(ftype, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", stream) + payload


def hpack_int(value, prefix_bits, first=0):
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = bytearray([first | limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7f) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack_literal(name, value):
    name, value = name.encode(), value.encode()
    return b"\x00" + hpack_int(len(name), 7) + name + hpack_int(len(value), 7) + value


def request_block(path=HEALTH_CHECK, extra=()):
    block = b"".join(hpack_literal(n, v) for n, v in (
        (":method", "POST"), (":scheme", "http"), (":path", path),
        (":authority", "localhost"), ("content-type", "application/grpc"),
        ("te", "trailers")) + tuple(extra))
    return block


def health_request(stream):
    """HEADERS and DATA (an empty HealthCheckRequest) of one Check call."""
    return frame(HEADERS, END_HEADERS, stream, request_block()) + \
        frame(DATA, END_STREAM, stream, b"\x00\x00\x00\x00\x00")


class Conn:
    """A raw HTTP/2 client connection."""

    def __init__(self, port, source="127.0.0.1", preface=True, rcvbuf=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.bind((source, 0))
        self.sock.settimeout(5.0)
        self.sock.connect(("127.0.0.1", port))
        self.buf = b""
        self.closed = False
        if preface:
            self.sock.sendall(PREFACE + frame(SETTINGS, 0, 0))

    def send(self, data):
        self.sock.sendall(data)

    def read_frame(self, deadline):
        """The next (type, flags, stream, payload), or None once closed."""
        while True:
            if len(self.buf) >= 9:
                length = struct.unpack(">I", b"\x00" + self.buf[:3])[0]
                if len(self.buf) >= 9 + length:
                    ftype, flags = self.buf[3], self.buf[4]
                    stream = struct.unpack(">I", self.buf[5:9])[0] & 0x7fffffff
                    payload = self.buf[9:9 + length]
                    self.buf = self.buf[9 + length:]
                    return ftype, flags, stream, payload
            if self.closed:
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("timed out waiting for a frame")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                data = b""
            if not data:
                self.closed = True
            self.buf += data

    def frames_until(self, pred, timeout=10.0):
        """Reads frames until pred(frame) is true (returns the frames read)
        or the connection closes."""
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            f = self.read_frame(deadline)
            if f is None:
                return seen
            seen.append(f)
            if pred(f):
                return seen

    def wait_closed(self, timeout):
        """Reads until the peer closes; returns every frame read."""
        return self.frames_until(lambda f: False, timeout)

    def health_ok(self, stream, timeout=10.0):
        """Sends one Check on stream; True when SERVING comes back on it."""
        self.send(health_request(stream))
        frames = self.frames_until(
            lambda f: f[0] == DATA and f[2] == stream
            or f[0] == RST_STREAM and f[2] == stream or f[0] == GOAWAY, timeout)
        return any(f[0] == DATA and f[2] == stream and f[3] == SERVING_MESSAGE
                   for f in frames)

    def close(self):
        self.sock.close()


def goaways(frames):
    return [struct.unpack(">II", f[3][:8]) for f in frames if f[0] == GOAWAY]


def metrics(daemon):
    st, text = http_request(daemon, "GET", "/metrics")
    assert st == 200, text
    out = {}
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        name, value = line.rsplit(" ", 1)
        out[name] = float(value)
    return out


def still_serving(daemon):
    st, _ = http_request(daemon, "GET", "/healthz")
    assert st == 200
    assert health_check(daemon.channel).status == 1


def test_connections_per_source_address(fresh_daemon):
    d = fresh_daemon
    key = 'palyra_front_connections{proto="h2"}'
    # Nothing of the start-up probes may still count against 127.0.0.1.
    poll(lambda: metrics(d)[key] == 0, 5.0, what="no open h2 connection")
    refused0 = metrics(d)['palyra_front_connections_refused_total{reason="per_addr"}']
    conns = [Conn(d.grpc_port) for _ in range(FE_CONN_PER_ADDR)]
    try:
        poll(lambda: metrics(d)[key] == FE_CONN_PER_ADDR, 5.0,
             what=f"{FE_CONN_PER_ADDR} open connections")
        extra = Conn(d.grpc_port)
        t0 = time.monotonic()
        frames = extra.wait_closed(3.0)
        assert extra.closed and time.monotonic() - t0 < 2.0, \
            "the connection over the limit was not closed at once"
        assert not any(f[0] == SETTINGS for f in frames), \
            "the connection over the limit was served"
        extra.close()
        m = metrics(d)
        assert m['palyra_front_connections_refused_total{reason="per_addr"}'] \
            == refused0 + 1
        # The 64 others work.
        for c in conns:
            assert c.health_ok(1), "a connection within the limit failed"
        # The limit is per address: 127.0.0.2 is another one.
        other = Conn(d.grpc_port, source="127.0.0.2")
        try:
            assert other.health_ok(1), "a connection from 127.0.0.2 failed"
        finally:
            other.close()
    finally:
        for c in conns:
            c.close()
    # Once the 64 are gone, 127.0.0.1 may connect again.
    poll(lambda: metrics(d)[key] == 0, 5.0, what="the connections closed")
    again = Conn(d.grpc_port)
    try:
        assert again.health_ok(1)
    finally:
        again.close()


def test_preface_timeout(palyra):
    before = metrics(palyra)['palyra_h2_goaway_total{reason="preface_timeout"}']
    c = Conn(palyra.grpc_port, preface=False)
    try:
        t0 = time.monotonic()
        frames = c.wait_closed(FE_H2_PREFACE_S + 2)
        elapsed = time.monotonic() - t0
        assert c.closed, "a silent connection was not closed"
        assert FE_H2_PREFACE_S - 1 <= elapsed <= FE_H2_PREFACE_S + 2, elapsed
        assert goaways(frames) and goaways(frames)[0][1] == SETTINGS_TIMEOUT, frames
    finally:
        c.close()
    assert metrics(palyra)['palyra_h2_goaway_total{reason="preface_timeout"}'] \
        == before + 1
    still_serving(palyra)


def test_header_list_over_the_limit(palyra):
    before = metrics(palyra)["palyra_h2_streams_refused_total"]
    c = Conn(palyra.grpc_port)
    try:
        block = request_block(extra=(("x-big", "a" * (20 * 1024)),))
        assert len(block) > FE_GRPC_MAX_HEADERS
        # Frames are at most 16384 bytes: HEADERS, then CONTINUATION.
        c.send(frame(HEADERS, END_STREAM, 1, block[:16000]) +
               frame(CONTINUATION, END_HEADERS, 1, block[16000:]))
        frames = c.frames_until(lambda f: f[0] == RST_STREAM and f[2] == 1
                                or f[0] == GOAWAY)
        assert any(f[0] == RST_STREAM and f[2] == 1 for f in frames), frames
        assert not goaways(frames), frames
        # The connection's other streams work.
        assert c.health_ok(3), "stream 3 failed after stream 1 was refused"
        assert c.health_ok(5)
    finally:
        c.close()
    assert metrics(palyra)["palyra_h2_streams_refused_total"] == before + 1
    still_serving(palyra)


def test_continuation_flood(palyra):
    before = metrics(palyra)['palyra_h2_goaway_total{reason="flood"}']
    c = Conn(palyra.grpc_port)
    try:
        block = request_block()
        data = frame(HEADERS, 0, 1, block[:10])
        rest = block[10:]
        for _ in range(200):
            data += frame(CONTINUATION, 0, 1, rest[:1])
            rest = rest[1:] or b"\x00\x00"
        try:
            c.send(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        frames = c.wait_closed(10.0)
        assert c.closed
        codes = [code for _, code in goaways(frames)]
        assert codes and codes[0] != 0, frames
        assert not any(f[0] == HEADERS for f in frames), "the flood was answered"
    finally:
        c.close()
    assert metrics(palyra)['palyra_h2_goaway_total{reason="flood"}'] \
        == before + 1
    still_serving(palyra)


def test_rapid_reset(palyra):
    before = metrics(palyra)['palyra_h2_goaway_total{reason="rapid_reset"}']
    c = Conn(palyra.grpc_port)
    try:
        burst = b"".join(
            frame(HEADERS, END_HEADERS | END_STREAM, 2 * i + 1, request_block()) +
            frame(RST_STREAM, 0, 2 * i + 1, struct.pack(">I", CANCEL))
            for i in range(1000))
        try:
            c.send(burst)
        except (BrokenPipeError, ConnectionResetError):
            pass
        frames = c.wait_closed(10.0)
        assert c.closed, "the connection stayed open"
        g = goaways(frames)
        assert g and g[0][1] == ENHANCE_YOUR_CALM, g
    finally:
        c.close()
    assert metrics(palyra)['palyra_h2_goaway_total{reason="rapid_reset"}'] \
        == before + 1
    still_serving(palyra)


def test_ping_flood_unread(palyra):
    """PINGs whose acknowledgements are never read: nghttp2 holds at most
    FE_H2_MAX_OUTBOUND_ACK of them, then the connection ends."""
    before = metrics(palyra)['palyra_h2_goaway_total{reason="flood"}']
    c = Conn(palyra.grpc_port, rcvbuf=4096)
    try:
        ping = frame(PING, 0, 0, b"\x00" * 8)
        deadline = time.monotonic() + 20.0
        c.sock.settimeout(1.0)
        chunk = ping * 4096
        while time.monotonic() < deadline:
            try:
                c.sock.send(chunk)
            except socket.timeout:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
        else:
            pytest.fail("the connection took PINGs for 20s")
    finally:
        c.close()
    assert metrics(palyra)['palyra_h2_goaway_total{reason="flood"}'] \
        == before + 1
    still_serving(palyra)
