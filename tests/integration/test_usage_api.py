"""UsageService (DESIGN section 9, issue 7): GetUsage, ListBudgets,
SetBudget and DeleteBudget, answered by journald (journald/usage.c,
usage_api.c) from the tenant's usage and budgets tables.

Budgets come from palyrad.conf (source "config") or are set at run time by
an operator (source "runtime", kept in the tenant's journal). Days are the
tenant's: the tenant here lives in a zone whose date differs from UTC's
when the test runs, so a period that started on the UTC day would show.
Usage rows appear when a worker settles a provider call; the offline
model's calls are priced by the config's pricing table.
"""

import datetime
import os
import re
import signal
import sqlite3
import zoneinfo

import grpc
import pytest

from conftest import (_require_binaries, auth_md, http_request, pb, poll,
                      run_stream, Daemon)

SVC = "/palyra.v1.UsageService/"
TIMEOUT = 10.0


def zone_off_utc():
    """A zone whose date is not UTC's now (for a good while)."""
    hour = datetime.datetime.now(datetime.timezone.utc).hour
    return "Etc/GMT+12" if hour < 11 else "Pacific/Kiritimati"


ZONE = zone_off_utc()

CONFIG = """\
state-dir "{state}"
listen grpc 127.0.0.1:{grpc_port}
listen http 127.0.0.1:{http_port}
journal {{ durability normal }}
provider "offline" {{ type offline }}
pricing "offline-1" {{ input 1000; output 2000 }}
tenant "alpha" {{
	timezone "%s"
	agent "assistant" {{
		providers "offline"
		budget tokens 50000 per month soft
	}}
	agent "helper" {{ providers "offline" }}
	budget tokens 1000000 per day hard
	budget cost 2.50 per total soft principal "alice"
}}
tenant "beta" {{ agent "assistant" {{ providers "offline" }} }}
""" % ZONE
TENANTS = ("alpha", "beta")


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    _require_binaries()
    d = Daemon(tmp_path_factory.mktemp("usage") / "d", CONFIG, TENANTS)
    yield d.start()
    if not d.stopped:
        d.kill()


@pytest.fixture(scope="module")
def tokens(daemon):
    return {
        "alice": daemon.mint_token("alpha", "alice", "user"),
        "bob": daemon.mint_token("alpha", "bob", "user"),
        "ops": daemon.mint_token("alpha", "ops", "operator"),
        "beta": daemon.mint_token("beta", "carol", "admin"),
    }


def unary(ch, name, req, resp_cls, token):
    call = ch.unary_unary(SVC + name,
                          request_serializer=type(req).SerializeToString,
                          response_deserializer=resp_cls.FromString)
    return call(req, metadata=auth_md(token), timeout=TIMEOUT)


def code_of(fn):
    with pytest.raises(grpc.RpcError) as e:
        fn()
    return e.value.code(), e.value.details()


def get_usage(ch, token, **kw):
    return unary(ch, "GetUsage", pb.GetUsageRequest(**kw),
                 pb.GetUsageResponse, token)


def budgets(ch, token):
    return {b.budget_id: b for b in unary(
        ch, "ListBudgets", pb.ListBudgetsRequest(), pb.ListBudgetsResponse,
        token).budgets}


def set_budget(ch, token, **kw):
    return unary(ch, "SetBudget", pb.SetBudgetRequest(budget=pb.Budget(**kw)),
                 pb.Budget, token)


def delete_budget(ch, token, budget_id):
    return unary(ch, "DeleteBudget", pb.DeleteBudgetRequest(
        budget_id=budget_id), pb.DeleteBudgetResponse, token)


def local_days():
    """The tenant's today, read before and after a call (midnight may
    pass in between)."""
    tz = zoneinfo.ZoneInfo(ZONE)
    return datetime.datetime.now(tz).date().isoformat()


def usage_of(res):
    assert res.code == grpc.StatusCode.OK, res
    u = [ev.usage for ev in res.events if ev.WhichOneof("event") == "usage"]
    assert len(u) == 1, res
    return u[0]


S = pb.BudgetScope
U = pb.BudgetUnit
P = pb.BudgetPeriod


def test_config_budgets_in_the_tenant_zone(daemon, tokens):
    ch = daemon.channel
    before = local_days()
    got = budgets(ch, tokens["alice"])
    after = local_days()
    utc = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    assert before != utc, "the test zone must not share UTC's date"

    assert set(got) == {"tenant:tokens:day", "agent:assistant:tokens:month",
                        "principal:alice:cost:total"}
    day = got["tenant:tokens:day"]
    assert (day.scope, day.subject, day.unit, day.period, day.limit,
            day.hard, day.source) == (S.BUDGET_SCOPE_TENANT, "",
                                      U.BUDGET_UNIT_TOKENS,
                                      P.BUDGET_PERIOD_DAY, 1000000, True,
                                      "config")
    assert day.period_start in (before, after)
    month = got["agent:assistant:tokens:month"]
    assert (month.scope, month.subject, month.hard, month.limit) == (
        S.BUDGET_SCOPE_AGENT, "assistant", False, 50000)
    assert month.period_start in (before[:8] + "01", after[:8] + "01")
    cost = got["principal:alice:cost:total"]
    assert (cost.unit, cost.limit, cost.period_start) == (
        U.BUDGET_UNIT_COST, 2500000, "")
    for b in got.values():
        assert (b.used, b.reserved) == (0, 0)

    # Nothing used yet: one row of zeros, in the tenant's zone.
    u = get_usage(ch, tokens["alice"])
    assert u.timezone == ZONE
    assert list(u.rows) == []
    assert (u.total.input_tokens, u.total.output_tokens,
            u.total.cost_micro_usd, u.total.calls) == (0, 0, 0, 0)

    # Another tenant has its own budgets: none, in UTC.
    assert budgets(ch, tokens["beta"]) == {}
    assert get_usage(ch, tokens["beta"]).timezone == "UTC"


def test_get_usage_rejects_bad_requests(daemon, tokens):
    ch = daemon.channel
    alice = tokens["alice"]
    bad = [
        (dict(from_day="2026-13-01"), "from_day"),
        (dict(from_day="2026-02-30"), "from_day"),
        (dict(to_day="yesterday"), "to_day"),
        (dict(from_day="2026-03-02", to_day="2026-03-01"), "after"),
        (dict(group_by=["day", "week"]), "week"),
        (dict(agent="no/such"), "agent"),
    ]
    for kw, word in bad:
        code, details = code_of(lambda: get_usage(ch, alice, **kw))
        assert code == grpc.StatusCode.INVALID_ARGUMENT, (kw, code)
        assert word in details, (kw, details)
    # A user sees only its own usage.
    code, details = code_of(lambda: get_usage(ch, alice, principal="bob"))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert "own" in details
    assert get_usage(ch, alice, principal="alice").total.calls == 0


def test_set_and_delete_runtime_budgets(daemon, tokens):
    ch = daemon.channel
    ops, bob = tokens["ops"], tokens["bob"]

    code, details = code_of(lambda: set_budget(
        ch, bob, scope=S.BUDGET_SCOPE_TENANT, unit=U.BUDGET_UNIT_TOKENS,
        period=P.BUDGET_PERIOD_DAY, limit=5, hard=True))
    assert code == grpc.StatusCode.PERMISSION_DENIED, details

    b = set_budget(ch, ops, scope=S.BUDGET_SCOPE_AGENT, subject="helper",
                   unit=U.BUDGET_UNIT_COST, period=P.BUDGET_PERIOD_MONTH,
                   limit=700000, hard=False, budget_id="ignored",
                   source="config", used=99)
    assert (b.budget_id, b.source, b.limit, b.hard, b.used) == (
        "agent:helper:cost:month", "runtime", 700000, False, 0)
    assert b.period_start[8:] == "01"
    # The same scope, subject, unit and period replaces it.
    b = set_budget(ch, ops, scope=S.BUDGET_SCOPE_AGENT, subject="helper",
                   unit=U.BUDGET_UNIT_COST, period=P.BUDGET_PERIOD_MONTH,
                   limit=800000, hard=True)
    assert (b.budget_id, b.limit, b.hard) == (
        "agent:helper:cost:month", 800000, True)
    got = budgets(ch, tokens["alice"])
    assert got["agent:helper:cost:month"].limit == 800000
    assert got["agent:helper:cost:month"].source == "runtime"
    assert len(got) == 4
    # Not visible to another tenant.
    assert "agent:helper:cost:month" not in budgets(ch, tokens["beta"])

    # palyrad.conf's budgets are not replaced at run time.
    code, details = code_of(lambda: set_budget(
        ch, ops, scope=S.BUDGET_SCOPE_TENANT, unit=U.BUDGET_UNIT_TOKENS,
        period=P.BUDGET_PERIOD_DAY, limit=5, hard=True))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert "tenant:tokens:day" in details and "palyrad.conf" in details

    invalid = [
        dict(unit=U.BUDGET_UNIT_TOKENS, period=P.BUDGET_PERIOD_DAY),
        dict(scope=S.BUDGET_SCOPE_TENANT, subject="x",
             unit=U.BUDGET_UNIT_TOKENS, period=P.BUDGET_PERIOD_DAY),
        dict(scope=S.BUDGET_SCOPE_AGENT, subject="",
             unit=U.BUDGET_UNIT_TOKENS, period=P.BUDGET_PERIOD_DAY),
        dict(scope=S.BUDGET_SCOPE_PRINCIPAL, subject="a:b",
             unit=U.BUDGET_UNIT_TOKENS, period=P.BUDGET_PERIOD_DAY),
        dict(scope=S.BUDGET_SCOPE_TENANT, period=P.BUDGET_PERIOD_DAY),
        dict(scope=S.BUDGET_SCOPE_TENANT, unit=U.BUDGET_UNIT_COST),
        dict(scope=S.BUDGET_SCOPE_TENANT, unit=U.BUDGET_UNIT_COST,
             period=P.BUDGET_PERIOD_MONTH, limit=2**63),
    ]
    for kw in invalid:
        code, details = code_of(lambda: set_budget(ch, ops, **kw))
        assert code == grpc.StatusCode.INVALID_ARGUMENT, (kw, details)

    # Deleting: runtime budgets only, operators only.
    code, _ = code_of(lambda: delete_budget(ch, bob, "agent:helper:cost:month"))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    code, details = code_of(lambda: delete_budget(ch, ops, "tenant:tokens:day"))
    assert code == grpc.StatusCode.NOT_FOUND and "palyrad.conf" in details
    delete_budget(ch, ops, "agent:helper:cost:month")
    code, _ = code_of(lambda: delete_budget(ch, ops, "agent:helper:cost:month"))
    assert code == grpc.StatusCode.NOT_FOUND
    code, _ = code_of(lambda: delete_budget(ch, ops, ""))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "agent:helper:cost:month" not in budgets(ch, tokens["alice"])


def test_usage_recorded_and_grouped(daemon, tokens):
    ch = daemon.channel
    runs = [("alice", "assistant", "one two three"),
            ("alice", "helper", "four five"),
            ("bob", "assistant", "six")]
    want = {}
    for who, agent, text in runs:
        u = usage_of(run_stream(ch, tokens[who], input=text, agent=agent))
        assert (u.provider, u.model) == ("offline", "offline-1")
        w = want.setdefault((who, agent), [0, 0, 0])
        w[0] += u.input_tokens
        w[1] += u.output_tokens
        w[2] += 1
    day = local_days()

    # The operator sees everyone, per principal and agent.
    got = get_usage(ch, tokens["ops"], group_by=["agent", "principal"])
    rows = {(r.principal, r.agent): r for r in got.rows}
    assert set(rows) == set(want)
    for key, (inp, out, calls) in want.items():
        r = rows[key]
        assert (r.input_tokens, r.output_tokens, r.calls) == (inp, out, calls)
        assert r.cost_micro_usd == inp * 1000 + out * 2000
        assert r.day == "" and r.model == ""
    total_in = sum(w[0] for w in want.values())
    total_out = sum(w[1] for w in want.values())
    assert (got.total.input_tokens, got.total.output_tokens,
            got.total.calls) == (total_in, total_out, 3)

    # By day and model: all today, in the tenant's zone.
    got = get_usage(ch, tokens["ops"], group_by=["model", "day"])
    assert [(r.day, r.model) for r in got.rows] == [(day, "offline-1")]
    assert get_usage(ch, tokens["ops"], from_day=day, to_day=day).total.calls == 3
    assert get_usage(ch, tokens["ops"], to_day="2000-01-01").total.calls == 0

    # A user sees its own rows only; filters narrow.
    got = get_usage(ch, tokens["alice"], group_by=["principal"])
    assert [r.principal for r in got.rows] == ["alice"]
    assert got.total.calls == 2
    got = get_usage(ch, tokens["ops"], agent="assistant")
    assert got.total.calls == 2

    # The budgets count it in their periods.
    got = budgets(ch, tokens["ops"])
    assert got["tenant:tokens:day"].used == total_in + total_out
    a = want[("alice", "assistant")]
    b = want[("bob", "assistant")]
    assert got["agent:assistant:tokens:month"].used == a[0] + a[1] + b[0] + b[1]
    alice_cost = sum(w[0] * 1000 + w[1] * 2000 for k, w in want.items()
                     if k[0] == "alice")
    assert got["principal:alice:cost:total"].used == alice_cost
    for b in got.values():
        assert b.reserved == 0


def test_hard_runtime_budget_refuses_and_survives_journald(daemon, tokens):
    ch = daemon.channel
    ops = tokens["ops"]
    # Bob has used something today, then gets a budget of one token.
    usage_of(run_stream(ch, tokens["bob"], input="hello", agent="helper"))
    set_budget(ch, ops, scope=S.BUDGET_SCOPE_PRINCIPAL, subject="bob",
               unit=U.BUDGET_UNIT_TOKENS, period=P.BUDGET_PERIOD_DAY,
               limit=1, hard=True)
    res = run_stream(ch, tokens["bob"], input="hello", agent="helper")
    assert res.code == grpc.StatusCode.RESOURCE_EXHAUSTED, res
    assert "principal:bob:tokens:day" in res.details
    assert "would be exceeded" in res.details
    errors = [ev.error for ev in res.events if ev.WhichOneof("event") == "error"]
    assert errors and errors[0].code == "RESOURCE_EXHAUSTED"
    assert res.events[-1].status.status == pb.RunStatus.RUN_STATUS_FAILED
    # Alice is not bob: her run goes on.
    usage_of(run_stream(ch, tokens["alice"], input="hello", agent="helper"))
    # Counted for GET /metrics.
    st, text = http_request(daemon, "GET", "/metrics")
    assert st == 200
    m = re.search(r'^palyra_budget_refusals_total\{tenant="alpha"\} (\d+)',
                  text, re.M)
    assert m and int(m.group(1)) >= 1, "no refusal counted"

    # The runtime budget is in the journal: a new journald still has it.
    jpids = daemon.pids_of("palyra-journald")
    assert len(jpids) == 1
    os.kill(jpids[0], signal.SIGKILL)

    def back():
        pids = daemon.pids_of("palyra-journald")
        if not pids or pids == jpids:
            return False
        return budgets(ch, ops).get("principal:bob:tokens:day")
    b = poll(back, 20.0, interval=0.1, what="journald restarted")
    assert (b.limit, b.hard, b.source) == (1, True, "runtime")
    assert b.used > 0       # bob's earlier run, read back by SUM

    def refused_again():
        r = run_stream(ch, tokens["bob"], input="hello", agent="helper")
        return r if r.code == grpc.StatusCode.RESOURCE_EXHAUSTED else None
    poll(refused_again, 20.0, interval=0.2, what="bob refused again")


def test_limits_runtime_budgets_and_rows(daemon, tokens):
    ch = daemon.channel
    admin = tokens["beta"]
    # At most 256 runtime budgets per tenant; replacing one is no new one.
    for i in range(256):
        set_budget(ch, admin, scope=S.BUDGET_SCOPE_PRINCIPAL,
                   subject=f"p{i}", unit=U.BUDGET_UNIT_TOKENS,
                   period=P.BUDGET_PERIOD_TOTAL, limit=i)
    code, details = code_of(lambda: set_budget(
        ch, admin, scope=S.BUDGET_SCOPE_PRINCIPAL, subject="p256",
        unit=U.BUDGET_UNIT_TOKENS, period=P.BUDGET_PERIOD_TOTAL, limit=1))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "256" in details
    set_budget(ch, admin, scope=S.BUDGET_SCOPE_PRINCIPAL, subject="p7",
               unit=U.BUDGET_UNIT_TOKENS, period=P.BUDGET_PERIOD_TOTAL,
               limit=70)
    got = budgets(ch, admin)
    assert len(got) == 256 and got["principal:p7:tokens:total"].limit == 70
    delete_budget(ch, admin, "principal:p0:tokens:total")
    set_budget(ch, admin, scope=S.BUDGET_SCOPE_PRINCIPAL, subject="p256",
               unit=U.BUDGET_UNIT_TOKENS, period=P.BUDGET_PERIOD_TOTAL,
               limit=1)

    # At most 1000 rows per answer: usage of 1001 past days (written
    # straight into the journal, as settles would have) is refused whole,
    # and fits once the range is narrowed.
    db = sqlite3.connect(daemon.journal_path("beta"), timeout=10)
    try:
        day0 = datetime.date(2020, 1, 1)
        db.executemany(
            "INSERT INTO usage (day, agent, principal, provider, model,"
            " input_tokens, output_tokens, cost_micros, calls)"
            " VALUES (?, 'assistant', 'carol', 'offline', 'offline-1',"
            " 1, 2, 3, 1)",
            [((day0 + datetime.timedelta(days=i)).isoformat(),)
             for i in range(1001)])
        db.commit()
    finally:
        db.close()
    last = (day0 + datetime.timedelta(days=1000)).isoformat()
    code, details = code_of(lambda: get_usage(
        ch, admin, from_day="2020-01-01", to_day=last, group_by=["day"]))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "1000" in details
    got = get_usage(ch, admin, from_day="2020-01-02", to_day=last,
                    group_by=["day"])
    assert len(got.rows) == 1000
    assert got.rows[0].day == "2020-01-02" and got.rows[-1].day == last
    assert (got.total.input_tokens, got.total.output_tokens,
            got.total.cost_micro_usd, got.total.calls) == (
        1000, 2000, 3000, 1000)
