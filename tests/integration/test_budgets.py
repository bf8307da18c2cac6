"""Budgets that cannot be overshot (issue 7): reservations, soft and hard
budgets, their scopes, cost budgets at the configured price, budgets set at
run time, and the tenant's time zone for the day of usage.

Every provider call of a run reserves its worst case (the bytes of its
prompt + max output tokens, and their cost at the model's price) with
journald before it starts; a reservation that would cross a hard budget
refuses the call, and the run fails RESOURCE_EXHAUSTED naming the budget.
The offline model (with a token delay, so that concurrent runs overlap)
and tests/integration/fakeprov.py (whose usage counts are scripted) are
the providers. Everything is asserted as a client sees it: RunStream
events and statuses, UsageService through the front, and the tenant's
journal read-only.
"""
import datetime
import threading
import zoneinfo

import grpc
import pytest

from conftest import (Daemon, _require_binaries, auth_md, event_kind,
                      http_request, journal_events, open_journal, pb, _blob)
import fakeprov

S = pb.RunStatus
RUN = "/palyra.v1.GatewayService/RunStream"
DEADLINE = 30.0
SYSTEM_PROMPT = "Be brief."
MAX_OUT = 8
# The hard budget of the concurrency test: about five runs' reservations
# (each: the prompt's bytes + MAX_OUT), and ten runs' real usage.
HARD_TOKENS = 120
SOFT_TOKENS = 40
PRICE_IN, PRICE_OUT = 100, 100          # USD per million: micro-USD a token
PAID_MAX_OUT = 200
COST_LIMIT_USD = "0.05"                 # 50000 micro-USD
ZONES = {"kiri": "Pacific/Kiritimati", "pago": "Pacific/Pago_Pago"}

# Agents deny every tool: no tool declarations in the prompt, so that the
# reservations are the prompt's bytes and MAX_OUT.
AGENT = ('providers "{p}"; system-prompt "' + SYSTEM_PROMPT + '"; '
         'max-output-tokens ' + str(MAX_OUT) + '; tool "*" deny')

CONFIG = """\
state-dir "{{state}}"
listen grpc 127.0.0.1:{{grpc_port}}
listen http 127.0.0.1:{{http_port}}
journal {{{{ durability normal }}}}
provider "offline" {{{{ type offline }}}}
provider "slow" {{{{ type offline; token-delay 30ms }}}}
provider "fake" {{{{ type openai-compatible; base-url "@fake"; model "fp-model"; timeout connect 2s first-byte 5s idle 5s total 30s }}}}
pricing "fp-model" {{{{ input @PIN; output @POUT }}}}
tenant "hard" {{{{
	agent "assistant" {{{{ @SLOW }}}}
	budget tokens @HARD per day hard
}}}}
tenant "soft" {{{{
	agent "assistant" {{{{ @SLOW }}}}
	budget tokens @SOFT per day soft
}}}}
tenant "scoped" {{{{
	agent "a1" {{{{ @OFF }}}}
	agent "a2" {{{{ @OFF }}}}
	agent "a3" {{{{ @OFF; budget tokens 5 per day hard }}}}
	budget tokens 5 per day hard agent "a1"
	budget tokens 5 per day hard principal "bob"
}}}}
tenant "paid" {{{{
	agent "paid" {{{{ providers "fake"; system-prompt "@SYS"; max-output-tokens @PMAX; tool "*" deny }}}}
	agent "free" {{{{ providers "fake"; tool "*" deny }}}}
	agent "tooly" {{{{ providers "fake"; max-output-tokens 64; tool "time.now" allow }}}}
	agent "clock" {{{{ providers "offline"; max-output-tokens 64; tool "time.now" allow }}}}
	budget cost @COST per day hard agent "paid"
}}}}
tenant "rt" {{{{
	agent "assistant" {{{{ @OFF }}}}
	agent "long" {{{{ providers "slow"; max-output-tokens 64; tool "*" deny }}}}
}}}}
tenant "kiri" {{{{
	timezone "Pacific/Kiritimati"
	agent "assistant" {{{{ @OFF }}}}
}}}}
tenant "pago" {{{{
	timezone "Pacific/Pago_Pago"
	agent "assistant" {{{{ @OFF }}}}
}}}}
"""
TENANTS = ("hard", "soft", "scoped", "paid", "rt", "kiri", "pago")


def make_config(fp):
    s = (CONFIG.replace("@SLOW", AGENT.format(p="slow"))
         .replace("@OFF", AGENT.format(p="offline"))
         .replace("@HARD", str(HARD_TOKENS)).replace("@SOFT", str(SOFT_TOKENS))
         .replace("@PIN", str(PRICE_IN)).replace("@POUT", str(PRICE_OUT))
         .replace("@PMAX", str(PAID_MAX_OUT)).replace("@COST", COST_LIMIT_USD)
         .replace("@SYS", "You are a test agent of the budget tests; answer "
                          "briefly and never call a tool.")
         .replace('"@fake"', '"' + fp.url("fake") + '"'))
    return s.format()


@pytest.fixture(scope="module")
def fp():
    srv = fakeprov.FakeProvider().start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory, fp):
    _require_binaries()
    d = Daemon(tmp_path_factory.mktemp("budgets"), make_config(fp), TENANTS)
    try:
        d.start()
        yield d
        d.assert_clean_stop()
    finally:
        if not d.stopped:
            d.kill()


# ---------------------------------------------------------------- clients

class Run:
    """One RunStream: every event, the final gRPC status."""

    def __init__(self, events, code, details):
        self.events, self.code, self.details = events, code, details

    def kinds(self):
        return [event_kind(e) for e in self.events]

    def of(self, kind):
        return [getattr(e, kind) for e in self.events if event_kind(e) == kind]

    def status(self):
        return self.events[-1].status if self.events and \
            event_kind(self.events[-1]) == "status" else None

    def __repr__(self):
        return f"Run({self.code}, {self.details!r}, {self.kinds()})"


def run_stream(channel, token, text, agent="", more=(), cancel_after=0,
               timeout=DEADLINE):
    """Starts a run; more: follow-up inputs sent once the run is under
    way (its first token arrived); cancel_after: a Cancel once that many
    tokens arrived. Returns the Run when the call ended."""
    first_token = threading.Event()
    enough = threading.Event()
    done = threading.Event()

    def requests():
        yield pb.RunStreamRequest(start=pb.RunStart(input=text, agent=agent))
        if more:
            first_token.wait(timeout)
            for m in more:
                yield pb.RunStreamRequest(input=pb.Input(text=m))
        if cancel_after:
            enough.wait(timeout)
            yield pb.RunStreamRequest(cancel=pb.Cancel(reason="enough"))
        done.wait(timeout)

    call = channel.stream_stream(
        RUN, request_serializer=pb.RunStreamRequest.SerializeToString,
        response_deserializer=pb.RunEvent.FromString)
    events = []
    it = call(requests(), metadata=auth_md(token), timeout=timeout)
    try:
        for ev in it:
            events.append(ev)
            if event_kind(ev) == "token":
                first_token.set()
                if cancel_after and sum(event_kind(e) == "token"
                                        for e in events) >= cancel_after:
                    enough.set()
        code, details = it.code(), it.details()
    except grpc.RpcError as e:
        code, details = e.code(), e.details()
    finally:
        first_token.set()
        enough.set()
        done.set()
    return Run(events, code, details)


def unary(channel, method, req, resp_type, token):
    call = channel.unary_unary(
        method, request_serializer=type(req).SerializeToString,
        response_deserializer=resp_type.FromString)
    return call(req, metadata=auth_md(token), timeout=DEADLINE)


def get_usage(channel, token, **kw):
    return unary(channel, "/palyra.v1.UsageService/GetUsage",
                 pb.GetUsageRequest(**kw), pb.GetUsageResponse, token)


def list_budgets(channel, token):
    return unary(channel, "/palyra.v1.UsageService/ListBudgets",
                 pb.ListBudgetsRequest(), pb.ListBudgetsResponse, token)


def set_budget(channel, token, **kw):
    return unary(channel, "/palyra.v1.UsageService/SetBudget",
                 pb.SetBudgetRequest(budget=pb.Budget(**kw)), pb.Budget, token)


def assert_completed(r):
    assert r.code == grpc.StatusCode.OK, r
    assert r.status() is not None and r.status().status == \
        S.RUN_STATUS_COMPLETED, r
    assert not r.of("error"), r


def assert_refused(r, budget_id):
    """What a client sees of a run whose provider call a hard budget
    refused: no output, an ErrorEvent RESOURCE_EXHAUSTED naming the
    budget, FAILED with the same reason, and the call's status."""
    assert r.code == grpc.StatusCode.RESOURCE_EXHAUSTED, r
    assert budget_id in (r.details or ""), r
    kinds = r.kinds()
    assert kinds[:2] == ["status", "status"], r
    assert kinds[-2:] == ["error", "status"], r
    assert "token" not in kinds and "final" not in kinds and \
        "usage" not in kinds, r
    err = r.events[-2].error
    assert err.code == "RESOURCE_EXHAUSTED", err
    assert budget_id in err.message, err
    st = r.status()
    assert st.status == S.RUN_STATUS_FAILED, st
    assert st.reason == err.message, (st, err)
    assert r.details == err.message, (r.details, err)
    assert "/" not in err.message and "SELECT" not in err.message, err


def journal_usage(d, tenant):
    """The Usage events of the tenant's journal: (input, output) each."""
    out = []
    for _, _, _, _, kind, payload, _ in journal_events(d.journal_path(tenant)):
        if kind != "usage":
            continue
        ev = pb.RunEvent.FromString(_blob(payload))
        out.append((ev.usage.input_tokens, ev.usage.output_tokens))
    return out


def metric(d, name, tenant):
    st, text = http_request(d, "GET", "/metrics")
    assert st == 200, (st, text)
    want = f'{name}{{tenant="{tenant}"}} '
    for line in text.splitlines():
        if line.startswith(want):
            return float(line.split()[-1])
    raise AssertionError(f"no {want.strip()} in /metrics")


def usage_rows(d, tenant):
    db = open_journal(d.journal_path(tenant))
    try:
        return db.execute(
            "SELECT day, agent, principal, model, input_tokens, "
            "output_tokens, cost_micros, calls FROM usage").fetchall()
    finally:
        db.close()


# ---------------------------------------------------------------- tests

def test_concurrent_runs_never_overshoot_a_hard_budget(daemon):
    """32 runs at once against a hard budget that affords about five: the
    usage recorded never exceeds it, several runs complete, and every
    other one fails RESOURCE_EXHAUSTED naming the budget."""
    d = daemon
    op = d.mint_token("hard", "ops", "operator")
    tokens = [d.mint_token("hard", f"user{i % 4}", "user") for i in range(4)]
    results = [None] * 32
    gate = threading.Barrier(32)
    # Four connections with eight streams each.
    channels = [d.new_channel() for _ in range(4)]

    def one(i):
        gate.wait(DEADLINE)
        results[i] = run_stream(channels[i % 4], tokens[i % 4], f"run {i}")

    threads = [threading.Thread(target=one, args=(i,)) for i in range(32)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(DEADLINE + 10)
    finally:
        for ch in channels:
            ch.close()
    assert all(r is not None for r in results), "a run did not end"

    done = [r for r in results if r.code == grpc.StatusCode.OK]
    refused = [r for r in results if r.code != grpc.StatusCode.OK]
    for r in done:
        assert_completed(r)
        # The offline model never answers past max-output-tokens.
        assert r.of("usage")[0].output_tokens <= MAX_OUT, r
    for r in refused:
        assert_refused(r, "tenant:tokens:day")
    assert len(done) >= 2, f"only {len(done)} run(s) completed: {results}"
    assert len(refused) >= 16, f"only {len(refused)} refused of 32"

    # What the client was told, the journal and UsageService agree, and
    # stay within the budget.
    told = sum(u.input_tokens + u.output_tokens
               for r in done for u in r.of("usage"))
    journaled = sum(i + o for i, o in journal_usage(d, "hard"))
    rows = usage_rows(d, "hard")
    recorded = sum(row[4] + row[5] for row in rows)
    total = get_usage(d.channel, op).total
    assert told == journaled == recorded == \
        total.input_tokens + total.output_tokens, (told, journaled, rows, total)
    assert 0 < recorded <= HARD_TOKENS, (recorded, rows)
    assert total.calls == len(done), (total, len(done))
    assert sum(row[7] for row in rows) == len(done), rows

    # Nothing stays reserved once every run ended.
    b = [b for b in list_budgets(d.channel, op).budgets
         if b.budget_id == "tenant:tokens:day"]
    assert len(b) == 1, b
    assert b[0].hard and b[0].limit == HARD_TOKENS and \
        b[0].source == "config", b
    assert b[0].used == recorded and b[0].reserved == 0, b[0]
    assert metric(d, "palyra_budget_refusals_total", "hard") == len(refused)


def test_soft_budget_warns_once_per_run(daemon):
    """Runs under a soft budget: none is refused; once the budget is
    crossed every run gets exactly one BudgetWarning (before its output),
    also a run whose follow-up input makes it call the model again."""
    d = daemon
    tok = d.mint_token("soft", "sam", "user")
    warned_from = None
    used = 0
    for i in range(8):
        more = ("and once more", "and again") if i == 7 else ()
        r = run_stream(d.channel, tok, "hi", more=more)
        assert_completed(r)
        ws = r.of("budget_warning")
        if i == 7:
            assert len(r.of("final")) == 3, r     # three calls, one run
        if ws:
            assert len(ws) == 1, r
            w = ws[0]
            assert w.budget_id == "tenant:tokens:day", w
            assert w.unit == "tokens" and w.limit == SOFT_TOKENS, w
            assert w.message, w
            k = r.kinds()
            assert k.index("budget_warning") < k.index("token"), k
            if warned_from is None:
                warned_from = i
        else:
            # Once crossed, every later run is warned.
            assert warned_from is None, (i, r)
            # Not crossed yet: what was used before this run is under it.
            assert used <= SOFT_TOKENS, (i, used)
        used += sum(u.input_tokens + u.output_tokens for u in r.of("usage"))
    assert warned_from is not None, "no BudgetWarning at all"
    # The metric counts every call that crossed it (the worker journals
    # one event per run).
    assert metric(d, "palyra_budget_warnings_total", "soft") >= 8 - warned_from
    # The first run fits under the limit: it cannot have been warned.
    assert warned_from >= 1, warned_from
    assert used > SOFT_TOKENS, used


def test_agent_and_principal_budgets_hit_only_their_subject(daemon):
    d = daemon
    alice = d.mint_token("scoped", "alice", "user")
    bob = d.mint_token("scoped", "bob", "user")
    assert_refused(run_stream(d.channel, alice, "hello", agent="a1"),
                   "agent:a1:tokens:day")
    assert_refused(run_stream(d.channel, alice, "hello", agent="a3"),
                   "agent:a3:tokens:day")
    assert_completed(run_stream(d.channel, alice, "hello", agent="a2"))
    assert_refused(run_stream(d.channel, bob, "hello", agent="a2"),
                   "principal:bob:tokens:day")
    r = run_stream(d.channel, bob, "hello", agent="a1")
    assert r.code == grpc.StatusCode.RESOURCE_EXHAUSTED, r
    # The console's run stream tells the same: the error event, FAILED,
    # then the stream's own error naming the budget.
    st, text = http_request(d, "POST", "/console/v1/runs",
                            {"input": "hello", "agent": "a1"}, token=alice)
    assert st == 200, (st, text)
    events = [b.split("\n") for b in text.strip().split("\n\n")]
    names = [next(ln[7:] for ln in e if ln.startswith("event: "))
             for e in events]
    assert names == ["status", "status", "error", "status", "error"], text
    assert '"RESOURCE_EXHAUSTED"' in events[2][-1], text
    assert "RUN_STATUS_FAILED" in events[3][-1], text
    assert all("agent:a1:tokens:day" in e[-1] for e in events[2:]), text
    assert_completed(run_stream(d.channel, alice, "again", agent="a2"))
    # Only alice's runs on a2 were recorded.
    rows = usage_rows(d, "scoped")
    assert {(row[1], row[2]) for row in rows} == {("a2", "alice")}, rows
    assert sum(row[7] for row in rows) == 2, rows


def test_cost_budget_refuses_at_the_configured_price(daemon, fp):
    """fakeprov reports the usage; its price makes the cost. A second call
    whose worst case would cross the hard cost budget is refused before
    any request reaches the provider."""
    d = daemon
    op = d.mint_token("paid", "ops", "operator")
    tok = d.mint_token("paid", "pat", "user")
    n0 = len(fp.entries(upstream="fake"))
    r = run_stream(d.channel, tok, "fp:text n=3 p=100 c=200", agent="paid")
    assert_completed(r)
    u = r.of("usage")[0]
    assert (u.input_tokens, u.output_tokens, u.model) == \
        (100, 200, "fp-model"), u
    sent = fp.entries(upstream="fake")[n0:]
    assert len(sent) == 1, sent
    body = sent[0].body
    assert body.get("max_tokens", body.get("max_completion_tokens")) == \
        PAID_MAX_OUT, body
    want = 100 * PRICE_IN + 200 * PRICE_OUT        # 30000 micro-USD
    got = get_usage(d.channel, op, agent="paid").total
    assert got.cost_micro_usd == want, got
    assert (got.input_tokens, got.output_tokens, got.calls) == \
        (100, 200, 1), got

    # 30000 used + at least 200 * 100 reserved for the output alone is
    # over 50000: refused, and the provider never sees the call.
    r = run_stream(d.channel, tok, "fp:text n=3 p=100 c=200", agent="paid")
    assert_refused(r, "agent:paid:cost:day")
    assert len(fp.entries(upstream="fake")) == n0 + 1
    got = get_usage(d.channel, op, agent="paid").total
    assert got.cost_micro_usd == want and got.calls == 1, got

    # Another agent of the tenant is not bound by it; without a
    # max-output-tokens its calls ask for (and reserve) the default of
    # palyrad.conf(5).
    r = run_stream(d.channel, tok, "fp:text n=2 p=5 c=2", agent="free")
    assert_completed(r)
    body = fp.entries(upstream="fake")[-1].body
    assert body.get("max_tokens", body.get("max_completion_tokens")) == \
        1024, body


def test_each_provider_call_is_reserved_and_recorded(daemon, fp):
    """A tool call makes a run call its model twice: both calls are
    reserved and settled, each its own usage row call, for a network
    provider and for the offline model's tool demo alike."""
    d = daemon
    op = d.mint_token("paid", "ops", "operator")
    tok = d.mint_token("paid", "toby", "user")
    n0 = len(fp.entries(upstream="fake"))
    r = run_stream(d.channel, tok, "fp:tool", agent="tooly")
    assert_completed(r)
    assert r.kinds().count("tool_result") == 1, r
    assert len(fp.entries(upstream="fake")) == n0 + 2
    for body in (e.body for e in fp.entries(upstream="fake")[n0:]):
        assert body.get("max_tokens", body.get("max_completion_tokens")) \
            == 64, body
    p, c = fakeprov.DEFAULT_USAGE
    got = get_usage(d.channel, op, agent="tooly").total
    assert (got.calls, got.input_tokens, got.output_tokens) == \
        (2, 2 * p, 2 * c), got
    assert got.cost_micro_usd == 2 * (p * PRICE_IN + c * PRICE_OUT), got
    u = r.of("usage")[0]
    assert (u.input_tokens, u.output_tokens) == (2 * p, 2 * c), u

    r = run_stream(d.channel, tok, "/tool time.now {}", agent="clock")
    assert_completed(r)
    assert r.of("tool_result") and not r.of("tool_result")[0].is_error, r
    got = get_usage(d.channel, op, agent="clock").total
    u = r.of("usage")[0]
    assert got.calls == 2, got
    assert (got.input_tokens, got.output_tokens) == \
        (u.input_tokens, u.output_tokens), (got, u)
    assert u.output_tokens <= 64, u


def test_set_budget_at_run_time_takes_effect(daemon):
    d = daemon
    op = d.mint_token("rt", "ops", "operator")
    user = d.mint_token("rt", "uma", "user")
    assert_completed(run_stream(d.channel, user, "before"))
    # A user may not set budgets.
    with pytest.raises(grpc.RpcError) as e:
        set_budget(d.channel, user, scope=pb.BUDGET_SCOPE_TENANT,
                   unit=pb.BUDGET_UNIT_TOKENS, limit=5,
                   period=pb.BUDGET_PERIOD_DAY, hard=True)
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED, e.value
    assert_completed(run_stream(d.channel, user, "still fine"))

    pid = d.pids_of("palyra-worker", "rt")
    b = set_budget(d.channel, op, scope=pb.BUDGET_SCOPE_TENANT,
                   unit=pb.BUDGET_UNIT_TOKENS, limit=5,
                   period=pb.BUDGET_PERIOD_DAY, hard=True)
    assert b.budget_id == "tenant:tokens:day" and b.source == "runtime", b
    assert b.used > 0, b
    assert_refused(run_stream(d.channel, user, "now refused"),
                   "tenant:tokens:day")
    # Replaced by a larger one: the next run goes through.
    set_budget(d.channel, op, scope=pb.BUDGET_SCOPE_TENANT,
               unit=pb.BUDGET_UNIT_TOKENS, limit=1_000_000,
               period=pb.BUDGET_PERIOD_DAY, hard=True)
    assert_completed(run_stream(d.channel, user, "after"))
    # Without a restart of anything.
    assert d.pids_of("palyra-worker", "rt") == pid


def test_cancelled_run_is_charged_what_it_used(daemon):
    """A run cancelled in the middle of its reply: its reservation is
    settled with what it emitted, and nothing stays reserved."""
    d = daemon
    op = d.mint_token("rt", "ops", "operator")
    tok = d.mint_token("rt", "cleo", "user")
    before = get_usage(d.channel, op, agent="long").total
    r = run_stream(d.channel, tok, "word " * 100, agent="long",
                   cancel_after=3)
    assert r.code == grpc.StatusCode.OK, r
    assert r.status().status == S.RUN_STATUS_CANCELLED, r
    emitted = r.kinds().count("token")
    assert 3 <= emitted < 64, r
    got = get_usage(d.channel, op, agent="long").total
    assert got.calls == before.calls + 1, (before, got)
    assert got.output_tokens - before.output_tokens == emitted, (got, r)
    # The system prompt (none) and the input's words.
    assert got.input_tokens - before.input_tokens == 100, got
    assert all(b.reserved == 0 for b in list_budgets(d.channel, op).budgets)


@pytest.mark.parametrize("tenant", sorted(ZONES))
def test_usage_day_is_the_tenants_day(daemon, tenant):
    """Kiritimati is UTC+14 and Pago Pago UTC-11: at any hour one of the
    two is on another date than UTC, so a day taken in UTC fails one."""
    d = daemon
    zone = zoneinfo.ZoneInfo(ZONES[tenant])
    op = d.mint_token(tenant, "ops", "operator")
    before = datetime.datetime.now(zone).date().isoformat()
    assert_completed(run_stream(d.channel, op, "what day is it"))
    after = datetime.datetime.now(zone).date().isoformat()
    resp = get_usage(d.channel, op, group_by=["day"])
    assert resp.timezone == ZONES[tenant], resp
    days = [row.day for row in resp.rows]
    assert len(days) == 1 and days[0] in (before, after), (days, before)
    assert [row[0] for row in usage_rows(d, tenant)] == days
    # The day filter is the tenant's day too.
    assert get_usage(d.channel, op, from_day=days[0],
                     to_day=days[0]).total.calls == 1
    # And so is a day budget's period: it counts this run.
    b = set_budget(d.channel, op, scope=pb.BUDGET_SCOPE_TENANT,
                   unit=pb.BUDGET_UNIT_TOKENS, limit=1_000_000,
                   period=pb.BUDGET_PERIOD_DAY, hard=False)
    assert b.period_start == days[0], b
    assert b.used == resp.total.input_tokens + resp.total.output_tokens > 0, \
        (b, resp.total)
