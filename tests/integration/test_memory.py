"""Memory through a worker (issue 8; README "Memory", palyrad.conf(5)
memory, memory-recall and "Search score"): MemoryService IngestMemory and
SearchMemory, which a worker of the token's tenant answers (it embeds,
journald stores and searches), the built-in tools memory.ingest and
memory.search, and the recall of an agent's memory-recall into the system
prompt.

What a user sees:
- an ingested item comes back from a search with its text, tags, source
  and the embedder's model ("offline" by default; "PROVIDER/MODEL" with a
  memory embedder, even a provider no agent uses);
- an exact keyword hit ranks above a near (lexical vector) hit, and every
  score is 0.5 * text_score + 0.5 * vector_score;
- an item with a TTL stops being found once it expired;
- a user reaches only its own items; an operator may name another
  principal; another tenant's items are never found;
- a failing embedder is UNAVAILABLE naming it, and nothing is stored;
- the offline model's `/tool memory.ingest` and `/tool memory.search`
  store and find items as the run's principal;
- with memory-recall, the provider's system message holds "Relevant
  memory:" and the recalled item; without it, or for another principal,
  it does not.
"""
import json
import os

import grpc
import pytest

import fakeprov
from conftest import (BidiRun, Daemon, _require_binaries, auth_md,
                      event_kind, pb, poll, run_stream)

SVC = "/palyra.v1.MemoryService/"
TIMEOUT = 20.0
FAKE_KEY = "sk-fake-memory-4b1d"

CONFIG = """\
state-dir "{{state}}"
listen grpc 127.0.0.1:{{grpc_port}}
listen http 127.0.0.1:{{http_port}}
journal {{{{ durability normal }}}}
provider "offline" {{{{ type offline }}}}
provider "chat" {{{{ type openai; base-url "@chat"; api-key env:FAKE_KEY; model "m" }}}}
provider "emb" {{{{ type openai-compatible; base-url "@emb"; api-key env:FAKE_KEY; model "m"; embedding-model "e1" }}}}
tenant "alpha" {{{{
    agent "assistant" {{{{ providers "offline"; tool "memory.ingest" allow }}}}
    agent "asker" {{{{ providers "offline" }}}}
    agent "recaller" {{{{ providers "chat"; system-prompt "Be brief."; memory-recall top-k 3 min-score 0.05 }}}}
    agent "forgetful" {{{{ providers "chat"; system-prompt "Be brief." }}}}
}}}}
tenant "beta" {{{{ agent "assistant" {{{{ providers "offline" }}}} }}}}
tenant "gamma" {{{{
    memory {{{{ embedder "emb"; default-ttl 0 }}}}
    agent "assistant" {{{{ providers "offline" }}}}
}}}}
"""
TENANTS = ("alpha", "beta", "gamma")


@pytest.fixture(scope="module")
def fp():
    srv = fakeprov.FakeProvider().start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory, fp):
    _require_binaries()
    conf = CONFIG.replace('"@chat"', '"%s"' % fp.url("chat")).replace(
        '"@emb"', '"%s"' % fp.url("emb")).format()
    old = os.environ.get("FAKE_KEY")
    os.environ["FAKE_KEY"] = FAKE_KEY
    d = Daemon(tmp_path_factory.mktemp("memory") / "d", conf, TENANTS)
    try:
        d.start()
        d.tokens = {
            "alice": d.mint_token("alpha", "alice", "user"),
            "bob": d.mint_token("alpha", "bob", "user"),
            "ops": d.mint_token("alpha", "ops", "operator"),
            "beta": d.mint_token("beta", "alice", "admin"),
            "gamma": d.mint_token("gamma", "carol", "user"),
        }
        yield d
    finally:
        if not d.stopped:
            d.kill()
        if old is None:
            os.environ.pop("FAKE_KEY", None)
        else:
            os.environ["FAKE_KEY"] = old


def ingest(d, who, **kw):
    fn = d.channel.unary_unary(
        SVC + "IngestMemory",
        request_serializer=pb.IngestMemoryRequest.SerializeToString,
        response_deserializer=pb.MemoryItem.FromString)
    return fn(pb.IngestMemoryRequest(**kw), metadata=auth_md(d.tokens[who]),
              timeout=TIMEOUT)


def search(d, who, **kw):
    fn = d.channel.unary_unary(
        SVC + "SearchMemory",
        request_serializer=pb.SearchMemoryRequest.SerializeToString,
        response_deserializer=pb.SearchMemoryResponse.FromString)
    return fn(pb.SearchMemoryRequest(**kw), metadata=auth_md(d.tokens[who]),
              timeout=TIMEOUT).hits


def code_of(fn, *a, **kw):
    with pytest.raises(grpc.RpcError) as e:
        fn(*a, **kw)
    return e.value.code(), e.value.details()


def texts(hits):
    return [h.item.text for h in hits]


def assert_formula(hits):
    for h in hits:
        assert 0 <= h.text_score < 1 and 0 <= h.vector_score <= 1, h
        assert h.score == pytest.approx(
            0.5 * h.text_score + 0.5 * h.vector_score, abs=1e-6), h


def test_ingest_search_round_trip(daemon):
    item = ingest(daemon, "alice", text="The staging database lives on "
                  "host quillfeather.", tags=["infra", "db:staging"],
                  source="notes")
    assert len(item.item_id) == 32 and item.item_id == item.item_id.lower()
    int(item.item_id, 16)
    assert item.principal == "alice" and item.session_id == ""
    assert list(item.tags) == ["infra", "db:staging"]
    assert item.source == "notes" and item.embedding_model == "offline"
    assert item.expires_unix_ms == 0 and item.created_unix_ms > 0
    hits = search(daemon, "alice", query="quillfeather")
    assert hits and hits[0].item.item_id == item.item_id, hits
    assert hits[0].item.text == item.text and hits[0].item.source == "notes"
    assert_formula(hits)
    # Tags filter: every tag given must be held.
    assert search(daemon, "alice", query="quillfeather", tags=["infra"])
    assert not search(daemon, "alice", query="quillfeather", tags=["nope"])
    # The source defaults to "api".
    other = ingest(daemon, "alice", text="another note about llamas")
    assert other.source == "api"


def test_bad_requests(daemon):
    bad = [dict(text=""), dict(text="x" * (16 * 1024 + 1)),
           dict(text="ok", tags=["bad tag"]), dict(text="ok", tags=["a"] * 17),
           dict(text="ok", source="s" * 257),
           dict(text="ok", session_id="no/slash")]
    for kw in bad:
        code, _ = code_of(ingest, daemon, "alice", **kw)
        assert code == grpc.StatusCode.INVALID_ARGUMENT, kw
    for kw in [dict(query=""), dict(query="q", top_k=101),
               dict(query="q", min_score=1.5)]:
        code, _ = code_of(search, daemon, "alice", **kw)
        assert code == grpc.StatusCode.INVALID_ARGUMENT, kw


def test_keyword_hit_ranks_above_near_vector_hit(daemon):
    # Items that share no word with the query: the offline embedder
    # still gives the near one a high cosine (character trigrams), the
    # full-text part nothing.
    for i in range(6):
        ingest(daemon, "alice", text=f"filler note number {i} about gardens",
               tags=["rank"])
    exact = ingest(daemon, "alice", text="zorvendal", tags=["rank"])
    near = ingest(daemon, "alice", text="zorvendals zorvendalx",
                  tags=["rank"])
    hits = search(daemon, "alice", query="zorvendal", tags=["rank"],
                  top_k=10)
    ids = [h.item.item_id for h in hits]
    assert exact.item_id in ids and near.item_id in ids, texts(hits)
    assert ids.index(exact.item_id) < ids.index(near.item_id), hits
    by = {h.item.item_id: h for h in hits}
    assert by[exact.item_id].text_score > 0, by[exact.item_id]
    assert by[near.item_id].text_score == 0, by[near.item_id]
    assert by[near.item_id].vector_score > 0.3, by[near.item_id]
    assert by[exact.item_id].vector_score == pytest.approx(1, abs=1e-4)
    assert_formula(hits)
    # Best first, and min_score cuts.
    assert [h.score for h in hits] == sorted([h.score for h in hits],
                                             reverse=True)
    cut = by[near.item_id].score + 1e-3
    high = search(daemon, "alice", query="zorvendal", tags=["rank"],
                  top_k=10, min_score=cut)
    assert exact.item_id in [h.item.item_id for h in high]
    assert near.item_id not in [h.item.item_id for h in high]
    assert len(search(daemon, "alice", query="zorvendal", tags=["rank"],
                      top_k=1)) == 1


def test_ttl_expiry(daemon):
    item = ingest(daemon, "alice", text="ephemeral mirrorglass token",
                  ttl_ms=1000)
    assert item.expires_unix_ms == item.created_unix_ms + 1000
    poll(lambda: item.item_id not in [h.item.item_id for h in search(
        daemon, "alice", query="mirrorglass")], 15,
        what="the expired item to disappear from searches")
    kept = ingest(daemon, "alice", text="durable mirrorglass token")
    assert kept.item_id in [h.item.item_id for h in search(
        daemon, "alice", query="mirrorglass")]


def test_principal_isolation(daemon):
    mine = ingest(daemon, "alice", text="alice keeps the brassweather key")
    assert not search(daemon, "bob", query="brassweather")
    code, _ = code_of(search, daemon, "bob", query="brassweather",
                      principal="alice")
    assert code == grpc.StatusCode.PERMISSION_DENIED
    code, _ = code_of(ingest, daemon, "bob", text="forged",
                      principal="alice")
    assert code == grpc.StatusCode.PERMISSION_DENIED
    # An operator names alice, and may store on her behalf.
    hits = search(daemon, "ops", query="brassweather", principal="alice")
    assert hits and hits[0].item.item_id == mine.item_id, hits
    assert {h.item.principal for h in hits} == {"alice"}
    assert not search(daemon, "ops", query="brassweather")
    made = ingest(daemon, "ops", text="brassweather rotation done",
                  principal="alice")
    assert made.principal == "alice"
    assert made.item_id in [h.item.item_id for h in search(
        daemon, "alice", query="brassweather")]


def test_tenant_isolation(daemon):
    ingest(daemon, "alice", text="alpha secret plan velvetstorm")
    assert not search(daemon, "beta", query="velvetstorm")
    assert not search(daemon, "beta", query="velvetstorm", principal="alice")
    ingest(daemon, "beta", text="beta plan velvetstorm")
    hits = search(daemon, "beta", query="velvetstorm")
    assert texts(hits) == ["beta plan velvetstorm"]


def test_provider_embedder(daemon, fp):
    # gamma's embedder is a provider none of its agents uses: the worker
    # still reaches it, with its key.
    item = ingest(daemon, "gamma", text="gamma remembers cobaltfinch")
    assert item.embedding_model == "emb/e1"
    reqs = [e for e in fp.entries(upstream="emb") if e.path.endswith(
        "/embeddings")]
    assert reqs and reqs[-1].body["model"] == "e1"
    assert reqs[-1].headers.get("authorization") == "Bearer " + FAKE_KEY
    hits = search(daemon, "gamma", query="cobaltfinch")
    assert hits and hits[0].item.item_id == item.item_id
    assert_formula(hits)
    # The fake's vectors are hashes of the text: the same text, the same
    # vector, so the query holding the whole text has a cosine of 1.
    hits = search(daemon, "gamma", query="gamma remembers cobaltfinch")
    assert hits[0].item.item_id == item.item_id
    assert hits[0].vector_score == pytest.approx(1, abs=1e-4)
    assert_formula(hits)


def test_embedder_failure_stores_nothing(daemon):
    code, details = code_of(ingest, daemon, "gamma",
                            text="fp:embedbad kind=html")
    assert code == grpc.StatusCode.UNAVAILABLE, details
    assert "emb" in details, details
    code, details = code_of(search, daemon, "gamma",
                            query="fp:embedbad kind=html")
    assert code == grpc.StatusCode.UNAVAILABLE, details
    hits = search(daemon, "gamma", query="embedbad kind html")
    assert not [t for t in texts(hits) if "embedbad" in t], hits


def tool_run(d, who, agent, tool, args):
    res = run_stream(d.channel, token=d.tokens[who], agent=agent,
                     input=f"/tool {tool} " + json.dumps(args), timeout=30)
    assert res.code == grpc.StatusCode.OK, res
    results = [ev.tool_result for ev in res.events
               if event_kind(ev) == "tool_result"]
    assert len(results) == 1, res
    return results[0], res


def test_tools_ingest_then_search(daemon):
    result, _ = tool_run(daemon, "alice", "assistant", "memory.ingest",
                         {"text": "The office wifi is amberlattice",
                          "tags": ["wifi"]})
    assert not result.is_error, result
    item_id = json.loads(result.content)["item_id"]
    assert len(item_id) == 32
    hits = search(daemon, "alice", query="amberlattice", tags=["wifi"])
    assert [h.item.item_id for h in hits] == [item_id]
    assert hits[0].item.source == "tool:memory.ingest"
    assert hits[0].item.session_id == "" and list(hits[0].item.tags) == [
        "wifi"]
    result, _ = tool_run(daemon, "alice", "assistant", "memory.search",
                         {"query": "amberlattice"})
    assert not result.is_error, result
    found = json.loads(result.content)
    assert found and found[0]["item_id"] == item_id
    assert found[0]["text"] == "The office wifi is amberlattice"
    assert found[0]["tags"] == ["wifi"] and 0 < found[0]["score"] <= 1
    # As the run's principal: bob's search finds nothing of alice's.
    result, _ = tool_run(daemon, "bob", "assistant", "memory.search",
                         {"query": "amberlattice"})
    assert json.loads(result.content) == []
    # Bad arguments are a result the model reads.
    result, _ = tool_run(daemon, "alice", "assistant", "memory.search",
                         {"query": "x", "top_k": 99})
    assert result.is_error


def test_tool_session_scope(daemon):
    def run(text, key):
        res = run_stream(daemon.channel, token=daemon.tokens["alice"],
                         agent="assistant", session_key=key, input=text,
                         timeout=30)
        assert res.code == grpc.StatusCode.OK, res
        (result,) = [e.tool_result for e in res.events
                     if event_kind(e) == "tool_result"]
        return result, res.events[0].session_id

    result, session = run('/tool memory.ingest {"text": "session only '
                          'petalforge", "scope": "session"}', "work")
    assert not result.is_error, result
    item_id = json.loads(result.content)["item_id"]
    assert session
    # Outside the session it is not found; inside it is.
    assert item_id not in [h.item.item_id for h in search(
        daemon, "alice", query="petalforge")]
    hits = search(daemon, "alice", query="petalforge", session_id=session)
    assert hits[0].item.item_id == item_id
    assert hits[0].item.session_id == session
    result, _ = run('/tool memory.search {"query": "petalforge"}', "work")
    assert item_id in [h["item_id"] for h in json.loads(result.content)]
    result, _ = run('/tool memory.search {"query": "petalforge"}', "play")
    assert item_id not in [h["item_id"] for h in json.loads(result.content)]


def test_tool_ingest_asks_by_default(daemon):
    # No rule names memory.ingest for "asker": a side effect, it asks;
    # denied, nothing is stored.
    s = BidiRun(daemon.channel, daemon.tokens["alice"], pb.RunStart(
        agent="asker", input='/tool memory.ingest {"text": "never '
        'stored sablewing"}'), deadline=30)
    ev = s.wait_for("approval_request")
    s.send(pb.RunStreamRequest(approval=pb.ApprovalDecision(
        approval_id=ev.approval_request.approval_id,
        decision=pb.APPROVAL_DECISION_DENY)))
    s.wait_for("tool_result")
    s.finish()
    (result,) = [e.tool_result for e in s.events
                 if event_kind(e) == "tool_result"]
    assert result.is_error, result
    hits = search(daemon, "alice", query="sablewing")
    assert not [t for t in texts(hits) if "sablewing" in t], hits


def system_of(entry):
    msgs = entry.body["messages"]
    return "\n".join(m["content"] for m in msgs if m["role"] == "system")


def test_recall_into_system_prompt(daemon, fp):
    ingest(daemon, "alice", text="My favourite colour is ultramarine")
    ingest(daemon, "bob", text="Bob's favourite colour is vermilion")
    fp.reset()
    res = run_stream(daemon.channel, token=daemon.tokens["alice"],
                     agent="recaller", input="which favourite colour?",
                     timeout=30)
    assert res.code == grpc.StatusCode.OK, res
    (req,) = [e for e in fp.entries(upstream="chat")]
    system = system_of(req)
    assert system.startswith("Be brief.\n\nRelevant memory:\n- "), system
    assert "My favourite colour is ultramarine" in system
    assert "vermilion" not in system
    # Without memory-recall, no section.
    fp.reset()
    res = run_stream(daemon.channel, token=daemon.tokens["alice"],
                     agent="forgetful", input="which favourite colour?",
                     timeout=30)
    assert res.code == grpc.StatusCode.OK, res
    (req,) = fp.entries(upstream="chat")
    assert system_of(req) == "Be brief."
    # Nothing relevant: no section either, and the run goes on.
    fp.reset()
    res = run_stream(daemon.channel, token=daemon.tokens["alice"],
                     agent="recaller", input="qqqq", timeout=30)
    assert res.code == grpc.StatusCode.OK, res
    (req,) = fp.entries(upstream="chat")
    assert system_of(req) == "Be brief."
