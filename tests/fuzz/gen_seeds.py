#!/usr/bin/python3
"""gen_seeds.py: writes the binary seeds of tests/fuzz/corpus that are
encodings of real messages, from the protocol files themselves:

  corpus/ipc/     one datagram per IPC type of common/ipc.h (header and a
                  protobuf payload with every field set), as ipc_encode()
                  writes them;
  corpus/pbjson/  a type byte (fuzz_pbjson.c's table) and a message of
                  that type with every field set.

Run it after adding an IPC type or a message: with the Python stubs of
`make B=DIR DIR/py/.stamp`,
    PALYRA_BUILD=DIR /usr/bin/python3 tests/fuzz/gen_seeds.py
It rewrites those two directories and nothing else.
"""
import os
import re
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(os.environ.get("PALYRA_BUILD", "build"), "py"))

import ipc_pb2  # noqa: E402
from palyra.v1 import gateway_pb2  # noqa: E402
from google.protobuf.descriptor import FieldDescriptor as F  # noqa: E402


def fill(msg, depth=0):
    """Sets every field of msg (one element of a repeated one), nested
    messages two levels deep, oneofs to their first member."""
    seen_oneofs = set()
    for f in msg.DESCRIPTOR.fields:
        if f.containing_oneof is not None:
            if f.containing_oneof.name in seen_oneofs:
                continue
            seen_oneofs.add(f.containing_oneof.name)
        rep = f.label == F.LABEL_REPEATED
        if f.type == F.TYPE_MESSAGE:
            if depth >= 2:
                continue
            sub = getattr(msg, f.name).add() if rep else getattr(msg, f.name)
            fill(sub, depth + 1)
            if not rep:
                sub.SetInParent()
            continue
        if f.type == F.TYPE_STRING:
            v = "fuzz-" + f.name
        elif f.type == F.TYPE_BYTES:
            v = b"\x00\x01bytes"
        elif f.type == F.TYPE_BOOL:
            v = True
        elif f.type == F.TYPE_ENUM:
            vals = f.enum_type.values
            v = vals[1].number if len(vals) > 1 else vals[0].number
        elif f.type in (F.TYPE_DOUBLE, F.TYPE_FLOAT):
            v = 1.5
        else:
            v = 7
        if rep:
            getattr(msg, f.name).append(v)
        else:
            setattr(msg, f.name, v)
    return msg


def clear_dir(d):
    os.makedirs(d, exist_ok=True)
    for n in os.listdir(d):
        os.unlink(os.path.join(d, n))


def ipc_seeds():
    out = os.path.join(HERE, "corpus", "ipc")
    clear_dir(out)
    text = open(os.path.join(TOP, "common", "ipc.h")).read()
    body = text[text.index("enum ipc_type {"):text.index("IPC_TYPE_MAX")]
    number = -1
    for line in body.splitlines():
        m = re.match(r"\s*(IPC_[A-Z0-9_]+)\s*(=\s*(\d+))?,\s*(/\*\s*Palyra__Ipc__(\w+))?", line)
        if not m:
            continue
        number = int(m.group(3)) if m.group(3) else number + 1
        if not m.group(5):
            continue
        msg = fill(getattr(ipc_pb2, m.group(5))())
        payload = msg.SerializeToString()
        hdr = struct.pack("=IIII", number, 0, 42, len(payload))
        name = m.group(1)[4:].lower()
        with open(os.path.join(out, name), "wb") as f:
            f.write(hdr + payload)
        if number == 1:
            # An empty message of the first type: the smallest datagram.
            with open(os.path.join(out, "empty"), "wb") as f:
                f.write(struct.pack("=IIII", number, 0, 0, 0))


# The order of fuzz_pbjson.c's table.
PBJSON = ["RunEvent", "Run", "Session", "ListSessionsResponse", "Agent",
          "Approval", "ListApprovalsResponse", "ExportChunk",
          "ListGrantsResponse", "GetUsageResponse", "ListBudgetsResponse",
          "ListSecretsResponse", "ListJobsResponse", "ListJobRunsResponse",
          "SearchMemoryResponse", "ListMemoryItemsResponse",
          "RunStreamRequest", "GetHealthResponse"]


def pbjson_seeds():
    out = os.path.join(HERE, "corpus", "pbjson")
    clear_dir(out)
    for i, name in enumerate(PBJSON):
        msg = fill(getattr(gateway_pb2, name)())
        with open(os.path.join(out, name.lower()), "wb") as f:
            f.write(bytes([i]) + msg.SerializeToString())


ipc_seeds()
pbjson_seeds()
