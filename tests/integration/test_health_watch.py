"""grpc.health.v1.Health/Watch: the status at once, again on every change,
SERVICE_UNKNOWN for an unknown service, open until cancel or shutdown."""
import os
import queue
import signal
import threading

import grpc

from conftest import health_pb, poll

SERVING = health_pb.HealthCheckResponse.SERVING
NOT_SERVING = health_pb.HealthCheckResponse.NOT_SERVING
SERVICE_UNKNOWN = health_pb.HealthCheckResponse.SERVICE_UNKNOWN


class Watcher:
    """One Watch call; its responses arrive on a queue from a thread."""

    def __init__(self, channel, service="", timeout=None):
        call = channel.unary_stream(
            "/grpc.health.v1.Health/Watch",
            request_serializer=health_pb.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb.HealthCheckResponse.FromString)
        self.it = call(health_pb.HealthCheckRequest(service=service),
                       timeout=timeout)
        self.q = queue.Queue()
        self.code = None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            for r in self.it:
                self.q.put(r.status)
            self.code = self.it.code()
        except grpc.RpcError as e:
            self.code = e.code()
        self.done.set()

    def next(self, timeout=10):
        return self.q.get(timeout=timeout)

    def nothing_more(self, wait=0.3):
        try:
            extra = self.q.get(timeout=wait)
        except queue.Empty:
            return True
        raise AssertionError(f"unexpected update {extra}")

    def end(self, timeout=10):
        assert self.done.wait(timeout), "the watch did not end"
        return self.code


def test_watch_sends_status_at_once_and_stays_open(channel):
    w = Watcher(channel, "")
    assert w.next() == SERVING
    assert w.nothing_more()
    assert not w.done.is_set(), f"the watch ended: {w.code}"
    w.it.cancel()
    assert w.end() == grpc.StatusCode.CANCELLED


def test_watch_named_service(channel):
    w = Watcher(channel, "palyra.v1.GatewayService")
    assert w.next() == SERVING
    w.it.cancel()
    w.end()


def test_watch_unknown_service_is_not_an_error(channel):
    w = Watcher(channel, "no.such.Service")
    assert w.next() == SERVICE_UNKNOWN
    assert w.nothing_more()
    assert not w.done.is_set(), f"the watch ended: {w.code}"
    w.it.cancel()
    assert w.end() == grpc.StatusCode.CANCELLED


def test_watch_deadline(channel):
    w = Watcher(channel, "", timeout=0.5)
    assert w.next() == SERVING
    assert w.end() == grpc.StatusCode.DEADLINE_EXCEEDED


def test_watch_follows_journald(fresh_daemon):
    d = fresh_daemon
    with d.new_channel() as ch:
        w = Watcher(ch, "")
        unknown = Watcher(ch, "no.such.Service")
        assert w.next() == SERVING
        assert unknown.next() == SERVICE_UNKNOWN
        old = d.pids_of("palyra-journald")
        assert len(old) == 1
        os.kill(old[0], signal.SIGKILL)
        assert w.next() == NOT_SERVING
        poll(lambda: [p for p in d.pids_of("palyra-journald") if p not in old],
             10, what="a new journald")
        assert w.next(timeout=15) == SERVING
        # The unknown service stays unknown: no update at all.
        assert unknown.nothing_more(0.1)
        assert not w.done.is_set() and not unknown.done.is_set()
        w.it.cancel()
        unknown.it.cancel()
        w.end()
        unknown.end()
    d.assert_clean_stop()


def test_watch_ends_when_the_front_stops(fresh_daemon):
    d = fresh_daemon
    ch = d.new_channel()
    try:
        w = Watcher(ch, "")
        assert w.next() == SERVING
        d.assert_clean_stop()
        assert w.end() in (grpc.StatusCode.UNAVAILABLE,
                           grpc.StatusCode.CANCELLED)
    finally:
        ch.close()
