"""RunStream: a run's events as the client sees them, and the error codes."""
import threading
import time

import grpc
import pytest

from conftest import (OFFLINE_REPLY, check_successful_run, event_kind,
                      get_health, pb, run_stream)


def now_ms():
    return int(time.time() * 1000)


def test_simple_run(channel, token):
    t0 = now_ms()
    res = run_stream(channel, token, "hello")
    check_successful_run(res, "hello", t0)


def test_run_with_request_stream_kept_open(channel, token):
    # The server ends the call after COMPLETED on its own; it must not wait
    # for the client to half-close.
    t0 = now_ms()
    res = run_stream(channel, token, "keep open", keep_open=True, timeout=10)
    check_successful_run(res, "keep open", t0)


@pytest.mark.parametrize("text", [
    "h\u00e9llo w\u00f6rld \u4e16\u754c \U0001f642",
    "two\nlines and\ttabs",
    "x" * 10000,
])
def test_run_text_round_trip(channel, token, text):
    check_successful_run(run_stream(channel, token, text), text)


def test_explicit_agent(channel, token):
    check_successful_run(run_stream(channel, token, "hi", agent="assistant"), "hi")


def test_runs_get_distinct_ids(channel, token):
    a = check_successful_run(run_stream(channel, token, "one"), "one")
    b = check_successful_run(run_stream(channel, token, "two"), "two")
    assert a[0] != b[0]


def test_session_id_reused(channel, token):
    _, sid = check_successful_run(run_stream(channel, token, "first"), "first")
    rid, sid2 = check_successful_run(
        run_stream(channel, token, "second", session_id=sid), "second")
    assert sid2 == sid


def test_session_key_resolves_to_one_session(channel, token):
    key = f"key-{time.time_ns()}"
    _, s1 = check_successful_run(run_stream(channel, token, "a", session_key=key), "a")
    _, s2 = check_successful_run(run_stream(channel, token, "b", session_key=key), "b")
    _, s3 = check_successful_run(
        run_stream(channel, token, "c", session_key=key + "-other"), "c")
    assert s1 == s2
    assert s3 != s1


def test_concurrent_runs(palyra, token):
    n = 20
    results = [None] * n
    errors = []
    t0 = now_ms()
    with palyra.new_channel() as ch:
        def one(i):
            try:
                results[i] = run_stream(ch, token, f"parallel {i}", timeout=30)
            except Exception as e:  # noqa: BLE001
                errors.append(e)
        threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert not errors, errors
    ids = set()
    for i, res in enumerate(results):
        assert res is not None, f"run {i} did not finish"
        rid, _ = check_successful_run(res, f"parallel {i}", t0)
        ids.add(rid)
    assert len(ids) == n


def test_concurrent_runs_on_separate_connections(palyra, token):
    n = 8
    results = [None] * n

    def one(i):
        with palyra.new_channel() as ch:
            results[i] = run_stream(ch, token, f"conn {i}", timeout=30)
    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for i, res in enumerate(results):
        assert res is not None, f"run {i} did not finish"
        check_successful_run(res, f"conn {i}")


def test_unknown_agent(channel, token):
    res = run_stream(channel, token, "x", agent="no-such-agent")
    assert res.code == grpc.StatusCode.NOT_FOUND, res
    assert not any(event_kind(e) == "final" for e in res.events)


def test_agent_of_another_tenant_is_not_found(channel, token):
    # "helper" exists, but only in tenant "other".
    res = run_stream(channel, token, "x", agent="helper")
    assert res.code == grpc.StatusCode.NOT_FOUND, res


def test_unknown_method(channel, token):
    for path in ("/palyra.v1.GatewayService/NoSuchMethod", "/no.such.Service/Call"):
        call = channel.unary_unary(path)
        with pytest.raises(grpc.RpcError) as e:
            call(b"", metadata=[("authorization", f"Bearer {token}")], timeout=10)
        assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED, path


def test_garbage_message_runstream(channel, token):
    # Field 1 (start), length-delimited, claims 100 bytes but has 3.
    res = run_stream(channel, token, raw_request=b"\x0a\x64abc")
    assert res.code == grpc.StatusCode.INVALID_ARGUMENT, res
    assert res.events == []


def test_garbage_message_unary(channel):
    call = channel.unary_unary("/palyra.v1.GatewayService/GetHealth",
                               response_deserializer=pb.GetHealthResponse.FromString)
    with pytest.raises(grpc.RpcError) as e:
        call(b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", timeout=10)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_runstream_without_start(channel, token):
    # A first message that is not a start (empty oneof) starts nothing.
    res = run_stream(channel, token, raw_request=b"")
    assert res.code == grpc.StatusCode.INVALID_ARGUMENT, res
    assert res.events == []


def test_message_over_4mib(channel, token):
    big = "y" * (4 * 1024 * 1024 + 1024)
    res = run_stream(channel, token, big, timeout=30)
    assert res.code == grpc.StatusCode.RESOURCE_EXHAUSTED, \
        f"{res.code}: {res.details}"
    assert not any(event_kind(e) == "final" for e in res.events)
    # The same channel (connection) still works.
    assert get_health(channel).status == "SERVING"
    check_successful_run(run_stream(channel, token, "after big"), "after big")


TEXT_MAX_LEN = 64 * 1024     # common/limits.h: run input text


def test_input_at_text_limit_is_accepted(channel, token):
    text = "z" * TEXT_MAX_LEN
    res = run_stream(channel, token, text, timeout=30)
    check_successful_run(res, text)


def test_input_over_text_limit_fails_cleanly(channel, token):
    res = run_stream(channel, token, "z" * (TEXT_MAX_LEN + 1), timeout=30)
    assert res.code in (grpc.StatusCode.INVALID_ARGUMENT,
                        grpc.StatusCode.RESOURCE_EXHAUSTED), f"{res.code}: {res.details}"
    assert not any(event_kind(e) == "final" for e in res.events)
    check_successful_run(run_stream(channel, token, "after long"), "after long")


def test_unknown_session_id_is_not_found(channel, token):
    # RunStart.session_id names an existing session; an unknown one is not
    # silently created (session_key is the way to create by name).
    res = run_stream(channel, token, "x", session_id="00112233445566778899aabbccddeeff")
    assert res.code == grpc.StatusCode.NOT_FOUND, f"{res.code}: {res.details}"
    assert not any(event_kind(e) == "final" for e in res.events)
