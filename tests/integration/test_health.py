"""Health: the standard grpc.health.v1 probe and palyra.v1 GetHealth."""
import grpc
import pytest

from conftest import get_health, health_check, health_pb, http_request


def test_grpc_health_check_serving_without_token(channel):
    r = health_check(channel, "")
    assert r.status == health_pb.HealthCheckResponse.SERVING


def test_grpc_health_check_unknown_service(channel):
    # The standard protocol: an unknown service name is NOT_FOUND.
    with pytest.raises(grpc.RpcError) as e:
        health_check(channel, "no.such.Service")
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_get_health_counts_tenants(palyra, channel):
    r = get_health(channel)
    assert r.status == "SERVING"
    assert r.tenants == len(palyra.tenants)
    assert r.version != ""


def test_get_health_on_a_second_connection(palyra):
    with palyra.new_channel() as ch:
        assert get_health(ch).status == "SERVING"
        assert health_check(ch).status == health_pb.HealthCheckResponse.SERVING


def test_healthz(palyra):
    st, body = http_request(palyra, "GET", "/healthz")
    assert st == 200
    assert body == {"status": "ok"}
