"""Session and run listings with cursor pagination (issue 4):
GET /admin/v1/tenants/NAME/sessions and .../runs, answered by journald.

A client pages through 250 sessions 100 at a time and sees every session
exactly once, in (created_ms, session_id) order, the last page without a
next cursor; filters narrow the runs; a malformed cursor, an unknown status
or a limit over JNL_LIST_PAGE_MAX is a 400 with a JSON error, an unknown
tenant a 404, and a tenant token lists nothing.
"""
import urllib.parse

import grpc
import pytest

from conftest import http_request, open_journal, run_stream

PAGE_MAX = 100
SESSIONS = 250


def listing(d, tenant, what, token=None, **params):
    q = urllib.parse.urlencode(params)
    path = f"/admin/v1/tenants/{tenant}/{what}" + (f"?{q}" if q else "")
    return http_request(d, "GET", path,
                        token=d.admin_token if token is None else token)


def page_through(d, tenant, what, limit=PAGE_MAX, **params):
    items, cursor, pages = [], None, 0
    while True:
        args = dict(params, limit=limit)
        if cursor is not None:
            args["cursor"] = cursor
        st, body = listing(d, tenant, what, **args)
        assert st == 200, body
        assert set(body) == {"items", "next_cursor"}, body
        assert len(body["items"]) <= limit
        items.extend(body["items"])
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return items, pages
        assert isinstance(cursor, str) and cursor


def test_sessions_page_by_page(fresh_daemon):
    d = fresh_daemon
    tok = d.mint_token("default", "pager")
    other = d.mint_token("default", "someone")
    for i in range(SESSIONS):
        res = run_stream(d.channel, tok, f"page {i}")
        assert res.code == grpc.StatusCode.OK, res
    res = run_stream(d.channel, other, "not mine")
    assert res.code == grpc.StatusCode.OK, res

    db = open_journal(d.journal_path("default"))
    try:
        want = [r[0] for r in db.execute(
            "SELECT session_id FROM sessions WHERE principal = 'pager'"
            " ORDER BY created_ms, session_id")]
        every = db.execute("SELECT count(*) FROM sessions").fetchone()[0]
    finally:
        db.close()
    assert len(want) == SESSIONS

    items, pages = page_through(d, "default", "sessions", principal="pager")
    assert pages == 3
    got = [it["session_id"] for it in items]
    assert got == want, "not every session exactly once, in order"
    assert {it["principal"] for it in items} == {"pager"}
    keys = [(it["created_ms"], it["session_id"]) for it in items]
    assert keys == sorted(keys)

    # The operator's view: every principal.
    items, _ = page_through(d, "default", "sessions")
    assert len(items) == every == SESSIONS + 1
    assert len({it["session_id"] for it in items}) == every

    # Runs of one session, of a principal, by status.
    sid = want[7]
    st, body = listing(d, "default", "runs", session_id=sid)
    assert st == 200, body
    assert len(body["items"]) == 1 and body["next_cursor"] is None
    run = body["items"][0]
    assert run["session_id"] == sid and run["principal"] == "pager"
    assert run["status"] == "COMPLETED" and run["last_seq"] >= 3
    items, pages = page_through(d, "default", "runs", limit=60,
                                principal="pager", status="COMPLETED")
    assert len(items) == SESSIONS and pages == 5
    assert len({it["run_id"] for it in items}) == SESSIONS
    st, body = listing(d, "default", "runs", status="FAILED")
    assert st == 200 and body == {"items": [], "next_cursor": None}, body
    # Listings are for the host operator: a tenant token lists nothing.
    st, body = listing(d, "default", "sessions", token=tok)
    assert st == 401, body


@pytest.mark.parametrize("what,params,message", [
    ("sessions", {"cursor": "zz"}, "malformed cursor"),
    ("sessions", {"cursor": "00000000000001026A62"}, "malformed cursor"),
    ("runs", {"cursor": "0" * 400}, "malformed cursor"),
    ("runs", {"status": "SLEEPING"}, "unknown status"),
    ("sessions", {"limit": "101"}, "limit must be 1 to 100"),
    ("sessions", {"limit": "0"}, "limit must be 1 to 100"),
    ("sessions", {"limit": "-1"}, "limit must be 1 to 100"),
    ("sessions", {"status": "COMPLETED"}, "unknown query parameter"),
    ("sessions", {"principal": "bad name"}, "invalid principal"),
])
def test_bad_requests(palyra, what, params, message):
    st, body = listing(palyra, "default", what, **params)
    assert st == 400, body
    assert body["error"]["message"] == message, body


def test_unknown_tenant_and_auth(palyra):
    st, body = listing(palyra, "nosuch", "sessions")
    assert st == 404 and body["error"]["message"] == "unknown tenant", body
    st, body = listing(palyra, "default", "nothing")
    assert st == 404, body
    st, _ = http_request(palyra, "POST", "/admin/v1/tenants/default/sessions",
                         {}, token=palyra.admin_token)
    assert st == 405
