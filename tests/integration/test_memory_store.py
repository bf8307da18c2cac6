"""MemoryService's reads and deletes at journald (issue 8; README "Memory"):
GetMemoryItem, ListMemoryItems, DeleteMemoryItem and PurgeMemory, answered
by palyra-journald (journald/memory_api.c) from the tenant's memory_items
table; items are made through IngestMemory (a worker embeds, journald
stores).

What a user sees:
- an item reads back as it was ingested, lists come newest first in pages
  that neither repeat nor skip, a deleted item is gone;
- a user token reaches its own items only: another principal's item is
  NOT_FOUND (never PERMISSION_DENIED), and so is every item of another
  tenant; operator tokens reach every principal, "*" included;
- PurgeMemory deletes what matches every filter, a user's unfiltered purge
  only the user's own items;
- an expired item is never returned (get, list, search), PurgeMemory
  expired_only deletes it from the file, and so does journald's sweep;
- a provider credential in an item's text is stored as [REDACTED];
- a tenant holds at most its max-items items: one more is refused with
  RESOURCE_EXHAUSTED until one goes.
"""
import os
import signal
import time

import grpc
import pytest

from conftest import (Daemon, _require_binaries, auth_md, open_journal, pb,
                      poll)

SVC = "/palyra.v1.MemoryService/"
TIMEOUT = 15.0
SECRET = "sk-palyra-MEMORY-7f3e21c4d9ab"

CONFIG = """\
state-dir "{state}"
listen grpc 127.0.0.1:{grpc_port}
listen http 127.0.0.1:{http_port}
journal {{ durability normal }}
provider "offline" {{ type offline }}
provider "keyed" {{ type offline; api-key env:PALYRA_TEST_MEMORY_SECRET }}
tenant "alpha" {{ agent "assistant" {{ providers "offline" }} }}
tenant "beta" {{ agent "assistant" {{ providers "keyed" }} }}
tenant "gamma" {{
	agent "assistant" {{ providers "offline" }}
	memory {{ max-items 3 }}
}}
"""
TENANTS = ("alpha", "beta", "gamma")

METHODS = {
    "IngestMemory": pb.MemoryItem,
    "SearchMemory": pb.SearchMemoryResponse,
    "GetMemoryItem": pb.MemoryItem,
    "ListMemoryItems": pb.ListMemoryItemsResponse,
    "DeleteMemoryItem": pb.DeleteMemoryItemResponse,
    "PurgeMemory": pb.PurgeMemoryResponse,
}


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    _require_binaries()
    d = Daemon(tmp_path_factory.mktemp("memstore") / "d", CONFIG, TENANTS)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PALYRA_TEST_MEMORY_SECRET", SECRET)
        d.start()
    d.tokens = {
        "alice": d.mint_token("alpha", "alice", "user"),
        "bob": d.mint_token("alpha", "bob", "user"),
        "ops": d.mint_token("alpha", "ops", "operator"),
        "beta": d.mint_token("beta", "alice", "admin"),
        "gamma": d.mint_token("gamma", "gina", "user"),
    }
    yield d
    if not d.stopped:
        d.kill()


def call(d, who, method, **kw):
    req_cls = getattr(pb, method + "Request")
    fn = d.channel.unary_unary(
        SVC + method, request_serializer=req_cls.SerializeToString,
        response_deserializer=METHODS[method].FromString)
    return fn(req_cls(**kw), metadata=auth_md(d.tokens[who]),
              timeout=TIMEOUT)


def code_of(d, who, method, **kw):
    with pytest.raises(grpc.RpcError) as e:
        call(d, who, method, **kw)
    return e.value.code()


def ingest(d, who, text, **kw):
    item = call(d, who, "IngestMemory", text=text, **kw)
    assert len(item.item_id) == 32, item
    return item


def listed(d, who, **kw):
    """Every item of a listing, following its pages."""
    out, token, pages = [], "", 0
    while True:
        resp = call(d, who, "ListMemoryItems", page_token=token, **kw)
        out += list(resp.items)
        pages += 1
        token = resp.next_page_token
        if not token:
            return out, pages
        assert pages < 100


def test_get_list_delete(daemon):
    d = daemon
    first = ingest(d, "alice", "the red kite nests in the beech",
                   tags=["birds", "uk"], source="notebook")
    second = ingest(d, "alice", "the osprey came back in April",
                    session_id="s-1", tags=["birds"])
    third = ingest(d, "alice", "buy more coffee")
    got = call(d, "alice", "GetMemoryItem", item_id=first.item_id)
    assert got.text == "the red kite nests in the beech"
    assert got.principal == "alice" and got.session_id == ""
    assert list(got.tags) == ["birds", "uk"] and got.source == "notebook"
    assert got.created_unix_ms == first.created_unix_ms > 0
    assert got.expires_unix_ms == 0
    assert call(d, "alice", "GetMemoryItem",
                item_id=second.item_id).session_id == "s-1"

    mine, _ = listed(d, "alice")
    ids = [i.item_id for i in mine]
    assert set(ids) >= {first.item_id, second.item_id, third.item_id}
    keys = [(i.created_unix_ms, i.item_id) for i in mine]
    assert keys == sorted(keys, reverse=True), "newest first"
    # pages of one neither repeat nor skip
    paged, pages = listed(d, "alice", page_size=1)
    assert [i.item_id for i in paged] == ids and pages >= len(ids)
    # filters
    birds, _ = listed(d, "alice", tag="birds")
    assert {i.item_id for i in birds} == {first.item_id, second.item_id}
    sess, _ = listed(d, "alice", session_id="s-1")
    assert [i.item_id for i in sess] == [second.item_id]

    call(d, "alice", "DeleteMemoryItem", item_id=third.item_id)
    assert code_of(d, "alice", "GetMemoryItem",
                   item_id=third.item_id) == grpc.StatusCode.NOT_FOUND
    assert code_of(d, "alice", "DeleteMemoryItem",
                   item_id=third.item_id) == grpc.StatusCode.NOT_FOUND
    assert third.item_id not in {i.item_id for i in listed(d, "alice")[0]}


def test_user_reaches_own_items_only(daemon):
    d = daemon
    item = ingest(d, "alice", "alice's locker code is in the blue folder")
    missing = "0" * 32
    # another principal's item looks exactly like one that does not exist
    for iid in (item.item_id, missing):
        assert code_of(d, "bob", "GetMemoryItem",
                       item_id=iid) == grpc.StatusCode.NOT_FOUND
        assert code_of(d, "bob", "DeleteMemoryItem",
                       item_id=iid) == grpc.StatusCode.NOT_FOUND
        # another tenant, even an admin of the same principal name
        assert code_of(d, "beta", "GetMemoryItem",
                       item_id=iid) == grpc.StatusCode.NOT_FOUND
    assert call(d, "alice", "GetMemoryItem",
                item_id=item.item_id).text.startswith("alice's locker")
    assert item.item_id not in {i.item_id for i in listed(d, "bob")[0]}
    for principal in ("alice", "*"):
        assert code_of(d, "bob", "ListMemoryItems", principal=principal) \
            == grpc.StatusCode.PERMISSION_DENIED
        assert code_of(d, "bob", "PurgeMemory", principal=principal) \
            == grpc.StatusCode.PERMISSION_DENIED
    # operators reach every principal of their tenant
    assert call(d, "ops", "GetMemoryItem",
                item_id=item.item_id).principal == "alice"
    bobs = ingest(d, "bob", "bob parks on level 3")
    every, _ = listed(d, "ops", principal="*")
    assert {item.item_id, bobs.item_id} <= {i.item_id for i in every}
    only_alice, _ = listed(d, "ops", principal="alice")
    assert {i.principal for i in only_alice} == {"alice"}
    assert item.item_id in {i.item_id for i in only_alice}
    assert not listed(d, "beta", principal="*")[0]


def test_purge(daemon):
    d = daemon
    a1 = ingest(d, "alice", "purge me: tagged", tags=["tmp"])
    a2 = ingest(d, "alice", "keep me: untagged")
    b1 = ingest(d, "bob", "bob's tagged note", tags=["tmp"])
    # alice's tag purge leaves her other items and bob's tagged one
    assert call(d, "alice", "PurgeMemory", tag="tmp").deleted == 1
    assert code_of(d, "alice", "GetMemoryItem",
                   item_id=a1.item_id) == grpc.StatusCode.NOT_FOUND
    assert call(d, "alice", "GetMemoryItem", item_id=a2.item_id).text
    assert call(d, "bob", "GetMemoryItem", item_id=b1.item_id).text
    # bob's purge with no filter at all takes bob's items only
    n_bob = len(listed(d, "bob")[0])
    assert n_bob >= 1
    assert call(d, "bob", "PurgeMemory").deleted == n_bob
    assert listed(d, "bob")[0] == []
    assert call(d, "alice", "GetMemoryItem", item_id=a2.item_id).text
    # an operator purges one principal's session
    s1 = ingest(d, "alice", "session scoped", session_id="s-purge")
    assert call(d, "ops", "PurgeMemory", principal="alice",
                session_id="s-purge").deleted == 1
    assert code_of(d, "alice", "GetMemoryItem",
                   item_id=s1.item_id) == grpc.StatusCode.NOT_FOUND
    assert call(d, "alice", "GetMemoryItem", item_id=a2.item_id).text


def row_count(d, item_id):
    db = open_journal(d.journal_path("alpha"))
    try:
        return db.execute("SELECT count(*) FROM memory_items"
                          " WHERE item_id = ?", (item_id,)).fetchone()[0]
    finally:
        db.close()


def test_expired_items_are_never_returned(daemon):
    d = daemon
    gone = ingest(d, "alice", "zeppelin timetable for the week",
                  ttl_ms=300)
    kept = ingest(d, "alice", "zeppelin hangar is in Friedrichshafen")
    assert gone.expires_unix_ms == gone.created_unix_ms + 300
    poll(lambda: time.time() * 1000 > gone.expires_unix_ms + 50, 5.0,
         what="the item's expiry")
    assert code_of(d, "alice", "GetMemoryItem",
                   item_id=gone.item_id) == grpc.StatusCode.NOT_FOUND
    ids = {i.item_id for i in listed(d, "alice")[0]}
    assert gone.item_id not in ids and kept.item_id in ids
    hits = call(d, "alice", "SearchMemory", query="zeppelin", top_k=10).hits
    found = {h.item.item_id for h in hits}
    assert kept.item_id in found and gone.item_id not in found
    # In the file until a purge of expired items, or the sweep (its passes
    # come a second after journald starts, then every minute: it may be
    # first here).
    present = row_count(d, gone.item_id)
    assert call(d, "alice", "PurgeMemory",
                expired_only=True).deleted == present
    assert row_count(d, gone.item_id) == 0
    assert row_count(d, kept.item_id) == 1
    assert call(d, "alice", "GetMemoryItem", item_id=kept.item_id).text


def test_provider_credential_is_redacted(daemon):
    d = daemon
    item = ingest(d, "beta", "the key is %s, keep it safe" % SECRET)
    got = call(d, "beta", "GetMemoryItem", item_id=item.item_id)
    assert SECRET not in got.text and "[REDACTED]" in got.text, got.text
    db = open_journal(d.journal_path("beta"))
    try:
        texts = [r[0] for r in db.execute("SELECT text FROM memory_items")]
    finally:
        db.close()
    assert texts and not any(SECRET in t for t in texts)


def test_invalid_requests(daemon):
    d = daemon
    bad = grpc.StatusCode.INVALID_ARGUMENT
    assert code_of(d, "alice", "GetMemoryItem", item_id="nope") == bad
    assert code_of(d, "alice", "GetMemoryItem",
                   item_id="A" * 32) == bad
    assert code_of(d, "alice", "DeleteMemoryItem", item_id="") == bad
    assert code_of(d, "alice", "ListMemoryItems", tag="no spaces") == bad
    assert code_of(d, "alice", "ListMemoryItems",
                   page_token="not-a-token") == bad
    assert code_of(d, "alice", "PurgeMemory", session_id="../x") == bad
    assert code_of(d, "ops", "ListMemoryItems", principal="bad name") == bad


def test_sweep_deletes_expired_items(daemon):
    """The sweep runs a second after journald starts (then every minute):
    an item that expired while journald was down is gone from the file
    soon after it is back, and the items that did not expire stay."""
    d = daemon
    gone = ingest(d, "alice", "expires while journald is away", ttl_ms=200)
    kept = ingest(d, "alice", "outlives the restart")
    poll(lambda: time.time() * 1000 > gone.expires_unix_ms + 50, 5.0,
         what="the item's expiry")
    old = d.pids_of("palyra-journald")
    assert len(old) == 1
    os.kill(old[0], signal.SIGKILL)
    poll(lambda: [p for p in d.pids_of("palyra-journald") if p not in old],
         20.0, what="a new journald")
    poll(lambda: row_count(d, gone.item_id) == 0, 20.0,
         what="the sweep of the expired item")
    assert row_count(d, kept.item_id) == 1

    def readable():
        try:
            return call(d, "alice", "GetMemoryItem",
                        item_id=kept.item_id).text == "outlives the restart"
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.UNAVAILABLE, e
            return False
    poll(readable, 20.0, what="journald answering again")


def test_search_scope_tags_and_literal_query(daemon):
    """What journald searches: the principal's items without a session,
    plus the asked session's; never another principal's or tenant's; only
    items holding every tag asked; the query's words taken literally."""
    d = daemon
    wide = ingest(d, "alice", "walrus colony on the north beach",
                  tags=["zoo", "arctic"])
    sess = ingest(d, "alice", "walrus feeding at noon", session_id="s-w",
                  tags=["zoo"])
    other = ingest(d, "alice", "walrus tusks grow all life",
                   session_id="s-other")
    bobs = ingest(d, "bob", "walrus walrus walrus")

    def found(who, **kw):
        hits = call(d, who, "SearchMemory", top_k=100, **kw).hits
        scores = [h.score for h in hits]
        assert scores == sorted(scores, reverse=True), scores
        assert all(0 < h.score <= 1 for h in hits), hits
        return {h.item.item_id for h in hits}

    got = found("alice", query="walrus")
    assert wide.item_id in got
    assert not got & {sess.item_id, other.item_id, bobs.item_id}
    got = found("alice", query="walrus", session_id="s-w")
    assert {wide.item_id, sess.item_id} <= got
    assert not got & {other.item_id, bobs.item_id}
    assert found("alice", query="walrus", session_id="s-w",
                 tags=["zoo", "arctic"]) & \
        {wide.item_id, sess.item_id} == {wide.item_id}
    assert bobs.item_id in found("bob", query="walrus")
    assert not found("beta", query="walrus") & \
        {wide.item_id, sess.item_id, other.item_id, bobs.item_id}
    # FTS5 syntax in a query is text: no error, no operator
    for q in ('walrus" OR x*', "NEAR(walrus beach)", "text:walrus", "*"):
        call(d, "alice", "SearchMemory", query=q)
    assert wide.item_id in found("alice", query='beach" OR zzz*')


def test_list_page_fits_one_answer(daemon):
    """Items of 16 KiB: a page of 1000 asked holds what fits one answer,
    and the next pages hold the rest, none twice."""
    d = daemon
    made = set()
    for i in range(14):
        text = ("%02d " % i) + "x" * (16 * 1024 - 3)
        made.add(ingest(d, "ops", text, tags=["big"]).item_id)
    first = call(d, "ops", "ListMemoryItems", tag="big", page_size=1000)
    assert 0 < len(first.items) < 14 and first.next_page_token
    items, pages = listed(d, "ops", tag="big", page_size=1000)
    ids = [i.item_id for i in items]
    assert len(ids) == len(set(ids)) == 14 and set(ids) == made
    assert pages >= 2
    assert call(d, "ops", "PurgeMemory", tag="big").deleted == 14


def test_max_items(daemon):
    d = daemon
    made = [ingest(d, "gamma", "item %d" % i) for i in range(3)]
    assert code_of(d, "gamma", "IngestMemory", text="one too many") \
        == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert len(listed(d, "gamma")[0]) == 3
    # the cap is the tenant's: another tenant still stores
    ingest(d, "alice", "alpha is not full")
    call(d, "gamma", "DeleteMemoryItem", item_id=made[0].item_id)
    ingest(d, "gamma", "room again")
    assert code_of(d, "gamma", "IngestMemory", text="full again") \
        == grpc.StatusCode.RESOURCE_EXHAUSTED
