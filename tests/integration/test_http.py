"""The HTTP admin API: /healthz and /admin/v1/tokens."""
import grpc

from conftest import check_successful_run, http_request, run_stream


def assert_json_error(st, body, status, code=None):
    assert isinstance(body, dict), f"HTTP {st}: body is not JSON: {body!r}"
    assert st == status, f"HTTP {st} (want {status}): {body!r}"
    err = body.get("error")
    assert isinstance(err, dict), body
    assert isinstance(err.get("code"), str) and err["code"], body
    assert isinstance(err.get("message"), str) and err["message"], body
    if code is not None:
        assert err["code"] == code, body


def test_admin_token_file_is_private(palyra):
    import os
    import stat
    st = os.stat(os.path.join(palyra.state, "admin.token"))
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert len(palyra.admin_token) >= 16


def test_create_token(palyra, channel):
    st, body = http_request(palyra, "POST", "/admin/v1/tokens",
                            {"tenant": "default", "principal": "bob", "role": "operator"},
                            token=palyra.admin_token)
    assert st == 201, body
    assert body["tenant"] == "default"
    assert body["principal"] == "bob"
    assert body["role"] == "operator"
    assert isinstance(body["token"], str) and len(body["token"]) >= 16
    assert isinstance(body["token_id"], str) and body["token_id"]
    assert body["token_id"] != body["token"]
    # The token it returns works on gRPC.
    check_successful_run(run_stream(channel, body["token"], "from bob"), "from bob")


def test_tokens_are_distinct(palyra):
    a = palyra.mint_token("default", "carol")
    b = palyra.mint_token("default", "carol")
    assert a != b


def test_create_token_wrong_admin_token(palyra):
    st, body = http_request(palyra, "POST", "/admin/v1/tokens",
                            {"tenant": "default", "principal": "x", "role": "user"},
                            token=palyra.admin_token + "x")
    assert_json_error(st, body, 401, "unauthenticated")


def test_create_token_without_authorization(palyra):
    st, body = http_request(palyra, "POST", "/admin/v1/tokens",
                            {"tenant": "default", "principal": "x", "role": "user"})
    assert_json_error(st, body, 401, "unauthenticated")


def test_tenant_token_is_not_an_admin_token(palyra, token):
    st, body = http_request(palyra, "POST", "/admin/v1/tokens",
                            {"tenant": "default", "principal": "x", "role": "admin"},
                            token=token)
    assert_json_error(st, body, 401)


def test_create_token_unknown_tenant(palyra):
    st, body = http_request(palyra, "POST", "/admin/v1/tokens",
                            {"tenant": "nosuchtenant", "principal": "x", "role": "user"},
                            token=palyra.admin_token)
    assert_json_error(st, body, 404)


def test_create_token_invalid_json(palyra):
    st, body = http_request(palyra, "POST", "/admin/v1/tokens",
                            raw=b'{"tenant": "default", "principal": ',
                            token=palyra.admin_token)
    assert_json_error(st, body, 400)
    assert palyra.state not in body["error"]["message"]


def test_unknown_path(palyra):
    st, body = http_request(palyra, "GET", "/no/such/path")
    assert_json_error(st, body, 404)
    st, body = http_request(palyra, "GET", "/admin/v1/nosuchthing",
                            token=palyra.admin_token)
    assert_json_error(st, body, 404)


def test_http_still_serves_after_errors(palyra):
    st, body = http_request(palyra, "GET", "/healthz")
    assert (st, body) == (200, {"status": "ok"})


def test_create_token_unknown_role(palyra):
    # Roles are user, operator, admin (DESIGN section 5); anything else is a
    # bad request, never a token.
    st, body = http_request(palyra, "POST", "/admin/v1/tokens",
                            {"tenant": "default", "principal": "x", "role": "root"},
                            token=palyra.admin_token)
    assert_json_error(st, body, 400)


def test_principal_name_over_limit(palyra):
    # NAME_MAX_LEN (common/limits.h) is 64.
    st, body = http_request(palyra, "POST", "/admin/v1/tokens",
                            {"tenant": "default", "principal": "p" * 65, "role": "user"},
                            token=palyra.admin_token)
    assert_json_error(st, body, 400)


def test_body_over_limit(palyra):
    # FE_HTTP_MAX_BODY (common/limits.h) is 64 KiB.
    raw = b'{"tenant": "default", "principal": "x", "role": "user", "pad": "' \
        + b"a" * (65 * 1024) + b'"}'
    st, body = http_request(palyra, "POST", "/admin/v1/tokens", raw=raw,
                            token=palyra.admin_token)
    assert st == 413, f"HTTP {st}: {body!r}"
    st, body = http_request(palyra, "GET", "/healthz")
    assert st == 200


def test_security_headers_on_every_answer(palyra):
    # Success, client error and auth failure alike: nothing is cached,
    # sniffed, framed or loaded.
    import urllib.error
    import urllib.request
    want = {
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    }
    for path in ("/healthz", "/no/such/path", "/admin/v1/tokens"):
        req = urllib.request.Request(palyra.http_url + path, method="GET")
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                headers = r.headers
        except urllib.error.HTTPError as e:
            headers = e.headers
        for k, v in want.items():
            assert headers.get(k) == v, f"{path}: {k} = {headers.get(k)!r}"
