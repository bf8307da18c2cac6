"""GET /metrics: Prometheus text format 0.0.4 on the HTTP listener."""
import re
import urllib.error
import urllib.request

import grpc

from conftest import _OPENER, get_health, run_stream

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"'
SAMPLE = re.compile(
    rf"^({NAME})(\{{{LABEL}(?:,{LABEL})*\}})? "
    r"(-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|NaN|[+-]Inf)$")
COMMENT = re.compile(rf"^# (HELP {NAME} .*|TYPE {NAME} (counter|gauge|histogram|summary|untyped))$")
LABEL_PAIR = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def scrape(daemon):
    with _OPENER.open(daemon.http_url + "/metrics", timeout=10) as r:
        assert r.status == 200
        ctype = r.headers.get("Content-Type", "")
        text = r.read().decode("utf-8")
    assert ctype.startswith("text/plain; version=0.0.4"), ctype
    return text


def parse(text):
    """[(name, {label: value}, float)]; every line must be a comment or a
    sample, and every sample's family must have a TYPE line."""
    samples, types = [], {}
    assert text.endswith("\n")
    for line in text.splitlines():
        if line.startswith("#"):
            assert COMMENT.match(line), f"bad comment line: {line!r}"
            parts = line.split(" ")
            if parts[1] == "TYPE":
                types[parts[2]] = parts[3]
            continue
        m = SAMPLE.match(line)
        assert m, f"bad sample line: {line!r}"
        labels = dict(LABEL_PAIR.findall(m.group(2) or ""))
        samples.append((m.group(1), labels, float(m.group(3))))
    for name, _, _ in samples:
        family = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in types or family in types, f"{name} has no TYPE"
    return samples, types


def value(samples, name, **labels):
    for n, ls, v in samples:
        if n == name and all(ls.get(k) == w for k, w in labels.items()):
            return v
    return 0.0


def test_metrics_format_and_families(palyra):
    samples, types = parse(scrape(palyra))
    for family, kind in (
            ("palyra_front_connections", "gauge"),
            ("palyra_front_connections_total", "counter"),
            ("palyra_front_connections_refused_total", "counter"),
            ("palyra_grpc_requests_total", "counter"),
            ("palyra_grpc_request_duration_seconds", "histogram"),
            ("palyra_runs_started_total", "counter"),
            ("palyra_auth_failures_total", "counter"),
            ("palyra_auth_rate_limited_total", "counter"),
            ("palyra_h2_goaway_total", "counter"),
            ("palyra_http_requests_total", "counter")):
        assert types.get(family) == kind, f"{family}: {types.get(family)}"
    reasons = {ls["reason"] for n, ls, _ in samples
               if n == "palyra_front_connections_refused_total"}
    assert reasons == {"per_addr", "max"}


def test_metrics_not_for_post(palyra):
    req = urllib.request.Request(palyra.http_url + "/metrics", data=b"x",
                                 method="POST")
    try:
        _OPENER.open(req, timeout=10)
        raise AssertionError("POST /metrics succeeded")
    except urllib.error.HTTPError as e:
        assert e.code == 405


def test_counters_increase(fresh_daemon):
    d = fresh_daemon
    method = "/palyra.v1.GatewayService/GetHealth"
    s0, _ = parse(scrape(d))
    get_health(d.channel)
    res = run_stream(d.channel, "pt_not_a_real_token", "hi")
    assert res.code == grpc.StatusCode.UNAUTHENTICATED, res
    token = d.mint_token("default", "metrics")
    res = run_stream(d.channel, token, "hi")
    assert res.code == grpc.StatusCode.OK, res
    s1, _ = parse(scrape(d))

    assert value(s1, "palyra_grpc_requests_total", method=method, code="OK") \
        == value(s0, "palyra_grpc_requests_total", method=method, code="OK") + 1
    rs = "/palyra.v1.GatewayService/RunStream"
    assert value(s1, "palyra_grpc_requests_total", method=rs,
                 code="UNAUTHENTICATED") >= 1
    assert value(s1, "palyra_grpc_requests_total", method=rs, code="OK") >= 1
    assert value(s1, "palyra_auth_failures_total") \
        == value(s0, "palyra_auth_failures_total") + 1
    assert value(s1, "palyra_runs_started_total") \
        >= value(s0, "palyra_runs_started_total") + 1
    assert value(s1, "palyra_front_connections_total") >= 1
    assert value(s1, "palyra_front_connections", proto="h2") >= 1
    assert value(s1, "palyra_grpc_request_duration_seconds_count",
                 method=method) \
        == value(s0, "palyra_grpc_request_duration_seconds_count",
                 method=method) + 1
    # The scrape before this one was counted, and the admin POST.
    assert value(s1, "palyra_http_requests_total", path_group="metrics",
                 code="200") >= 1
    assert value(s1, "palyra_http_requests_total", path_group="admin",
                 code="201") >= 1


def test_histogram_buckets_are_cumulative(palyra, channel):
    for _ in range(3):
        get_health(channel)
    samples, _ = parse(scrape(palyra))
    methods = {ls["method"] for n, ls, _ in samples
               if n == "palyra_grpc_request_duration_seconds_bucket"}
    assert "/palyra.v1.GatewayService/GetHealth" in methods
    for m in methods:
        buckets = [(ls["le"], v) for n, ls, v in samples
                   if n == "palyra_grpc_request_duration_seconds_bucket"
                   and ls["method"] == m]
        assert buckets[-1][0] == "+Inf"
        bounds = [float(le) for le, _ in buckets]
        assert bounds == sorted(bounds), buckets
        counts = [v for _, v in buckets]
        assert counts == sorted(counts), f"{m}: not cumulative: {buckets}"
        assert counts[-1] == value(
            samples, "palyra_grpc_request_duration_seconds_count", method=m)
        assert value(samples, "palyra_grpc_request_duration_seconds_sum",
                     method=m) >= 0


def test_labels_are_bounded(palyra, channel):
    """An unknown method is counted as "unknown", never by its path."""
    call = channel.unary_unary("/no.such.Service/Method" + "x" * 40)
    try:
        call(b"", timeout=10)
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.UNIMPLEMENTED
    text = scrape(palyra)
    assert "no.such.Service" not in text
    samples, _ = parse(text)
    assert value(samples, "palyra_grpc_requests_total", method="unknown",
                 code="UNIMPLEMENTED") >= 1
