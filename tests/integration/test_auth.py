"""gRPC authentication: tenant tokens as `authorization: Bearer TOKEN`."""
import grpc
import pytest

from conftest import check_successful_run, get_health, run_stream

UNAUTH = grpc.StatusCode.UNAUTHENTICATED


def test_runstream_without_metadata(channel):
    res = run_stream(channel, metadata=[])
    assert res.code == UNAUTH, res
    assert res.events == []


def test_runstream_wrong_token(channel):
    res = run_stream(channel, "not-a-token-at-all")
    assert res.code == UNAUTH, res
    assert res.events == []


def test_runstream_altered_token(channel, token):
    bad = token[:-1] + ("A" if token[-1] != "A" else "B")
    res = run_stream(channel, bad)
    assert res.code == UNAUTH, res
    assert res.events == []


@pytest.mark.parametrize("value", ["", "Bearer", "Bearer  x", "Basic dXNlcjpwYXNz", "bearer-x"])
# ("Bearer " with a trailing space is not a valid HTTP/2 field value:
# nghttp2 resets such a stream, correctly.)
def test_runstream_malformed_authorization(channel, value):
    res = run_stream(channel, metadata=[("authorization", value)])
    assert res.code == UNAUTH, res
    assert res.events == []


def test_runstream_token_without_bearer_prefix(channel, token):
    res = run_stream(channel, metadata=[("authorization", token)])
    assert res.code == UNAUTH, res


def test_admin_token_is_not_a_tenant_token(palyra, channel):
    res = run_stream(channel, palyra.admin_token)
    assert res.code == UNAUTH, res
    assert res.events == []


def test_valid_token_after_failures(channel, token):
    # Failed attempts on the same connection do not poison it.
    for _ in range(3):
        assert run_stream(channel, "bogus").code == UNAUTH
    check_successful_run(run_stream(channel, token, "still fine"), "still fine")


def test_get_health_needs_no_token(channel):
    assert get_health(channel).status == "SERVING"
