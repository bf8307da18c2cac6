"""gRPC server reflection (v1 and v1alpha) from the descriptors compiled
into palyra-front: the client side is written here with the generated
reflection messages over a raw stream-stream call (Debian's python3-grpcio
ships no grpc_reflection)."""
import importlib.util
import os

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool

from conftest import PY_GEN

SERVICES = {"palyra.v1.GatewayService", "palyra.v1.ApprovalsService",
            "palyra.v1.UsageService", "palyra.v1.VaultService",
            "palyra.v1.CronService", "palyra.v1.MemoryService",
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection"}


def _load(version):
    path = os.path.join(PY_GEN, "grpc", "reflection", version, "reflection_pb2.py")
    spec = importlib.util.spec_from_file_location(
        f"palyra_test_reflection_{version}_pb2", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


MODULES = {"v1": _load("v1"), "v1alpha": _load("v1alpha")}


def reflect(channel, version, requests, timeout=15):
    """Sends every request on one stream; returns (responses, code)."""
    m = MODULES[version]
    call = channel.stream_stream(
        f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
        request_serializer=m.ServerReflectionRequest.SerializeToString,
        response_deserializer=m.ServerReflectionResponse.FromString)
    it = call(iter([m.ServerReflectionRequest(**r) for r in requests]),
              timeout=timeout)
    out = list(it)
    return out, it.code()


def files_of(resp):
    assert resp.WhichOneof("message_response") == "file_descriptor_response", resp
    files = []
    for raw in resp.file_descriptor_response.file_descriptor_proto:
        fd = descriptor_pb2.FileDescriptorProto()
        fd.ParseFromString(raw)
        files.append(fd)
    return files


@pytest.mark.parametrize("version", ["v1", "v1alpha"])
def test_list_services(channel, version):
    out, code = reflect(channel, version, [{"host": "h", "list_services": ""}])
    assert code == grpc.StatusCode.OK
    assert len(out) == 1
    names = {s.name for s in out[0].list_services_response.service}
    assert names == SERVICES
    assert out[0].valid_host == "h"
    assert out[0].original_request.list_services == ""


@pytest.mark.parametrize("version", ["v1", "v1alpha"])
def test_file_containing_gateway_service(channel, version):
    out, code = reflect(channel, version,
                        [{"file_containing_symbol": "palyra.v1.GatewayService"}])
    assert code == grpc.StatusCode.OK
    files = files_of(out[0])
    assert files[0].name == "palyra/v1/gateway.proto"
    assert files[0].package == "palyra.v1"
    svc = [s for s in files[0].service if s.name == "GatewayService"]
    assert svc, files[0].service
    methods = {m.name: m for m in svc[0].method}
    assert "RunStream" in methods and "GetHealth" in methods
    rs = methods["RunStream"]
    assert rs.client_streaming and rs.server_streaming
    # The answer is complete: a pool built from it resolves the method.
    pool = descriptor_pool.DescriptorPool()
    by_name = {f.name: f for f in files}
    added = set()

    def add(name):
        if name in added:
            return
        for dep in by_name[name].dependency:
            add(dep)
        pool.Add(by_name[name])
        added.add(name)
    for f in files:
        add(f.name)
    m = pool.FindMethodByName("palyra.v1.GatewayService.RunStream")
    assert m.input_type.full_name == "palyra.v1.RunStreamRequest"
    assert m.output_type.full_name == "palyra.v1.RunEvent"


def test_symbols_of_every_kind(channel):
    symbols = ["palyra.v1.GatewayService.RunStream", "palyra.v1.RunEvent",
               ".palyra.v1.RunEvent", "grpc.health.v1.HealthCheckResponse",
               "grpc.health.v1.HealthCheckResponse.ServingStatus",
               "grpc.health.v1.Health.Watch",
               "grpc.reflection.v1.ServerReflection"]
    out, code = reflect(channel, "v1",
                        [{"file_containing_symbol": s} for s in symbols])
    assert code == grpc.StatusCode.OK
    assert len(out) == len(symbols)
    names = [files_of(r)[0].name for r in out]
    assert names == ["palyra/v1/gateway.proto"] * 3 + \
        ["grpc/health/v1/health.proto"] * 3 + ["grpc/reflection/v1/reflection.proto"]
    health = files_of(out[5])[0]
    watch = [m for m in health.service[0].method if m.name == "Watch"][0]
    assert watch.server_streaming and not watch.client_streaming


def test_new_services_methods(channel):
    """The vault, cron and memory services are described with every
    method, so stock tools can call them."""
    want = {
        "palyra.v1.VaultService": {"PutSecret", "GetSecret", "DeleteSecret",
                                   "ListSecrets"},
        "palyra.v1.CronService": {"CreateJob", "UpdateJob", "DeleteJob",
                                  "GetJob", "ListJobs", "RunJobNow",
                                  "ListJobRuns"},
        "palyra.v1.MemoryService": {"IngestMemory", "SearchMemory",
                                    "GetMemoryItem", "ListMemoryItems",
                                    "DeleteMemoryItem", "PurgeMemory"},
    }
    out, code = reflect(channel, "v1",
                        [{"file_containing_symbol": s} for s in want])
    assert code == grpc.StatusCode.OK
    for r, (name, methods) in zip(out, want.items()):
        f = files_of(r)[0]
        assert f.name == "palyra/v1/gateway.proto"
        svc = [s for s in f.service if f.package + "." + s.name == name]
        assert len(svc) == 1, name
        assert {m.name for m in svc[0].method} == methods


def test_file_by_filename(channel):
    out, code = reflect(channel, "v1",
                        [{"file_by_filename": "grpc/health/v1/health.proto"},
                         {"file_by_filename": "no/such.proto"}])
    assert code == grpc.StatusCode.OK
    assert files_of(out[0])[0].name == "grpc/health/v1/health.proto"
    assert out[1].error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]


@pytest.mark.parametrize("version", ["v1", "v1alpha"])
def test_not_found_answers_keep_the_stream(channel, version):
    m = MODULES[version]
    out, code = reflect(channel, version, [
        {"file_containing_symbol": "no.such.Symbol"},
        {"file_containing_symbol": "palyra.v1.GatewayService.NoSuchMethod"},
        {"file_containing_extension": m.ExtensionRequest(
            containing_type="palyra.v1.RunEvent", extension_number=100)},
        {"all_extension_numbers_of_type": "palyra.v1.RunEvent"},
        {"list_services": ""},
    ])
    assert code == grpc.StatusCode.OK
    assert len(out) == 5
    for r in out[:4]:
        assert r.WhichOneof("message_response") == "error_response", r
        assert r.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]
        assert r.error_response.error_message
    assert out[0].original_request.file_containing_symbol == "no.such.Symbol"
    assert len(out[4].list_services_response.service) == len(SERVICES)


def test_empty_request_is_invalid_argument(channel):
    out, code = reflect(channel, "v1", [{"host": "x"}])
    assert code == grpc.StatusCode.OK
    assert out[0].error_response.error_code == \
        grpc.StatusCode.INVALID_ARGUMENT.value[0]


def test_garbage_request_ends_the_stream(channel):
    call = channel.stream_stream(
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        request_serializer=None, response_deserializer=None)
    it = call(iter([b"\xff\xff\xff"]), timeout=10)
    with pytest.raises(grpc.RpcError) as e:
        list(it)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
