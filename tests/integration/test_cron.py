"""Cron routines (issue 8, DESIGN section 9): CronService through the real
palyrad. journald schedules and records every fire under its unique (job,
scheduled time) before a worker starts its run; the run goes through the
normal run path as the job's owner.

What a user sees is asserted: the job's fields and validation errors, who
sees which job, fires listed by ListJobRuns with their run's status, the
runs in the journal, and what survives kill -9 of a worker or of journald
and a stop of palyrad (the misfire policies).
"""
import datetime
import os
import signal
import time

import grpc
import pytest

from conftest import Daemon, _require_binaries, auth_md, open_journal, pb, poll
from palyra.v1 import gateway_pb2_grpc as pbg

CONFIG = """\
state-dir "{state}"
listen grpc 127.0.0.1:{grpc_port}
listen http 127.0.0.1:{http_port}
journal {{ durability normal }}
provider "offline" {{ type offline }}
provider "slow" {{ type offline; token-delay 150ms }}
tenant "acme" {{
	agent "assistant" {{ providers "offline" }}
	agent "slowpoke" {{ providers "slow" }}
	agent "asker" {{ providers "offline"; tool "time.now" ask }}
}}
tenant "other" {{ agent "helper" {{ providers "offline" }} }}
"""
TENANTS = ("acme", "other")
TIMEOUT = 15.0
C = pb.CronFireState
S = pb.RunStatus
M = pb.MisfirePolicy
FINAL_STATES = (C.CRON_FIRE_STATE_DONE, C.CRON_FIRE_STATE_FAILED,
                C.CRON_FIRE_STATE_SKIPPED)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    _require_binaries()
    d = Daemon(tmp_path_factory.mktemp("cron") / "d", CONFIG, TENANTS)
    yield d.start()
    if not d.stopped:
        d.kill()


@pytest.fixture(scope="module")
def tokens(daemon):
    return {
        "alice": daemon.mint_token("acme", "alice", "user"),
        "bob": daemon.mint_token("acme", "bob", "user"),
        "ops": daemon.mint_token("acme", "ops", "operator"),
        "other": daemon.mint_token("other", "carol", "admin"),
    }


@pytest.fixture
def own(tmp_path):
    """A palyrad of the test's own, for kills and restarts."""
    _require_binaries()
    d = Daemon(tmp_path / "d", CONFIG, TENANTS)
    yield d.start()
    if not d.stopped:
        d.kill()


def stub(d):
    return pbg.CronServiceStub(d.channel)


def call(d, method, req, token):
    return getattr(stub(d), method)(req, metadata=auth_md(token),
                                    timeout=TIMEOUT)


def code_of(fn):
    with pytest.raises(grpc.RpcError) as e:
        fn()
    return e.value.code(), e.value.details()


def create(d, token, **job):
    job.setdefault("input", "hello cron")
    disabled = not job.pop("enabled", True)
    return call(d, "CreateJob", pb.CreateJobRequest(
        job=pb.CronJob(**job), disabled=disabled), token)


def fires(d, token, job, page_size=1000):
    return list(call(d, "ListJobRuns", pb.ListJobRunsRequest(
        job_id=job, page_size=page_size), token).fires)


def delete(d, token, job):
    call(d, "DeleteJob", pb.DeleteJobRequest(job_id=job), token)


def rfc3339(ms):
    return datetime.datetime.fromtimestamp(
        ms / 1000, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_fire_invariants(d, tenant, job_id):
    """Every scheduled time has at most one fire and one run; every run of
    the job's fires exists once, and no key started two runs."""
    db = open_journal(d.journal_path(tenant))
    try:
        dup = db.execute(
            "SELECT scheduled_ms, count(*) FROM cron_fires WHERE job_id = ?"
            " GROUP BY scheduled_ms HAVING count(*) > 1", (job_id,)).fetchall()
        assert dup == [], dup
        runs = db.execute(
            "SELECT idempotency_key, count(*) FROM runs WHERE"
            " idempotency_key LIKE ? GROUP BY idempotency_key",
            (f"cron:{job_id}:%",)).fetchall()
        assert all(n == 1 for _, n in runs), runs
        shared = db.execute(
            "SELECT run_id, count(*) FROM cron_fires WHERE job_id = ?"
            " AND run_id IS NOT NULL GROUP BY run_id HAVING count(*) > 1",
            (job_id,)).fetchall()
        assert shared == [], shared
        keyed = {k for k, _ in runs}
        fired = db.execute(
            "SELECT scheduled_ms, run_id FROM cron_fires WHERE job_id = ?"
            " AND run_id IS NOT NULL", (job_id,)).fetchall()
        for sched, run_id in fired:
            assert f"cron:{job_id}:{sched}" in keyed, (sched, run_id)
        return db.execute(
            "SELECT scheduled_ms, state, run_id, reason FROM cron_fires"
            " WHERE job_id = ? ORDER BY scheduled_ms", (job_id,)).fetchall()
    finally:
        db.close()


# ---------------------------------------------------------------- CRUD


def test_create_get_list_update_delete(daemon, tokens):
    t = tokens["alice"]
    job = create(daemon, t, name="nightly", schedule="30 2 * * MON-FRI",
                 timezone="Europe/Prague", agent="assistant",
                 misfire=M.MISFIRE_POLICY_CATCH_UP, jitter_ms=500)
    assert len(job.job_id) == 32 and job.principal == "alice", job
    assert job.enabled and job.catch_up_max == 10, job
    assert job.unattended == pb.UNATTENDED_POLICY_DENY, job
    now = time.time() * 1000
    assert now < job.next_fire_unix_ms < now + 4 * 86400 * 1000, job
    assert job.last_fire_unix_ms == 0
    by_name = call(daemon, "GetJob", pb.GetJobRequest(job_id="nightly"), t)
    assert by_name.job_id == job.job_id and by_name.schedule == job.schedule
    # Every field named, or the named ones only.
    up = call(daemon, "UpdateJob", pb.UpdateJobRequest(
        job_id=job.job_id, job=pb.CronJob(input="changed", enabled=False),
        fields=["input", "enabled"]), t)
    assert up.input == "changed" and not up.enabled, up
    assert up.schedule == job.schedule and up.next_fire_unix_ms == 0, up
    assert up.updated_unix_ms >= job.updated_unix_ms
    code, msg = code_of(lambda: call(daemon, "UpdateJob", pb.UpdateJobRequest(
        job_id=job.job_id, job=pb.CronJob(name="x"), fields=["name"]), t))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "name" in msg, msg
    names = []
    for i in range(5):
        names.append(create(daemon, t, name=f"page{i}", schedule="@daily").name)
    seen, token = [], ""
    while True:
        page = call(daemon, "ListJobs", pb.ListJobsRequest(
            page_size=2, page_token=token), t)
        assert len(page.jobs) <= 2
        seen += [j.name for j in page.jobs]
        token = page.next_page_token
        if not token:
            break
    assert seen == sorted(names + ["nightly"]), seen
    for n in names + ["nightly"]:
        delete(daemon, t, n)
    code, _ = code_of(lambda: call(daemon, "GetJob",
                                   pb.GetJobRequest(job_id="nightly"), t))
    assert code == grpc.StatusCode.NOT_FOUND


def test_next_fire_in_the_job_zone(daemon, tokens):
    from zoneinfo import ZoneInfo
    t = tokens["alice"]
    now = datetime.datetime.now(datetime.timezone.utc)
    for zone in ("America/New_York", "Asia/Kolkata", ""):
        job = create(daemon, t, name="noon", schedule="0 12 * * *",
                     timezone=zone)
        tz = ZoneInfo(zone or "UTC")
        local = now.astimezone(tz)
        want = local.replace(hour=12, minute=0, second=0, microsecond=0)
        if want <= local:
            want = (want.replace(tzinfo=None) + datetime.timedelta(days=1)
                    ).replace(tzinfo=tz)
        assert job.next_fire_unix_ms == int(want.timestamp()) * 1000, \
            (zone, job.next_fire_unix_ms, want)
        delete(daemon, t, job.job_id)


@pytest.mark.parametrize("job,code,words", [
    (dict(name="bad", schedule="0 25 * * *"), "INVALID_ARGUMENT", "column"),
    (dict(name="bad", schedule="every 0s"), "INVALID_ARGUMENT", "schedule"),
    (dict(name="bad", schedule="@daily", timezone="Mars/Olympus"),
     "INVALID_ARGUMENT", "time zone"),
    (dict(name="bad", schedule="@daily", agent="ghost"),
     "FAILED_PRECONDITION", "unknown agent"),
    (dict(name="-bad", schedule="@daily"), "INVALID_ARGUMENT", "name"),
    (dict(name="bad", schedule="@daily", input=""), "INVALID_ARGUMENT",
     "input"),
    (dict(name="bad", schedule="@daily", input="x" * (64 * 1024 + 1)),
     "INVALID_ARGUMENT", "input"),
    (dict(name="bad", schedule="@daily", jitter_ms=3600001),
     "INVALID_ARGUMENT", "jitter_ms"),
    (dict(name="bad", schedule="@daily", catch_up_max=101),
     "INVALID_ARGUMENT", "catch_up_max"),
    (dict(name="bad", schedule="at 2001-01-01T00:00:00Z"),
     "INVALID_ARGUMENT", "passed"),
])
def test_validation_errors(daemon, tokens, job, code, words):
    job.setdefault("input", "x")
    got, msg = code_of(lambda: call(
        daemon, "CreateJob", pb.CreateJobRequest(job=pb.CronJob(**job)),
        tokens["alice"]))
    assert got == getattr(grpc.StatusCode, code), (got, msg)
    assert words in msg, msg


def test_duplicate_name_and_unknown_field(daemon, tokens):
    create(daemon, tokens["alice"], name="twice", schedule="@hourly")
    code, _ = code_of(lambda: create(daemon, tokens["ops"], name="twice",
                                     schedule="@daily"))
    assert code == grpc.StatusCode.ALREADY_EXISTS
    code, msg = code_of(lambda: call(daemon, "UpdateJob", pb.UpdateJobRequest(
        job_id="twice", job=pb.CronJob(), fields=["bogus"]), tokens["alice"]))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "bogus" in msg
    delete(daemon, tokens["alice"], "twice")


def test_roles_principals_and_tenants(daemon, tokens):
    mine = create(daemon, tokens["alice"], name="alices", schedule="@daily")
    for tok in (tokens["bob"], tokens["other"]):
        for method, req in (
                ("GetJob", pb.GetJobRequest(job_id=mine.job_id)),
                ("GetJob", pb.GetJobRequest(job_id="alices")),
                ("RunJobNow", pb.RunJobNowRequest(job_id=mine.job_id)),
                ("DeleteJob", pb.DeleteJobRequest(job_id=mine.job_id)),
                ("ListJobRuns", pb.ListJobRunsRequest(job_id=mine.job_id)),
                ("UpdateJob", pb.UpdateJobRequest(
                    job_id=mine.job_id, job=pb.CronJob(enabled=False),
                    fields=["enabled"]))):
            code, _ = code_of(lambda: call(daemon, method, req, tok))
            assert code == grpc.StatusCode.NOT_FOUND, (method, code)
        listed = call(daemon, "ListJobs", pb.ListJobsRequest(), tok).jobs
        assert mine.job_id not in [j.job_id for j in listed]
    # An operator sees and changes the tenant's jobs; the owner stays.
    got = call(daemon, "GetJob", pb.GetJobRequest(job_id="alices"),
               tokens["ops"])
    assert got.principal == "alice"
    listed = call(daemon, "ListJobs", pb.ListJobsRequest(), tokens["ops"]).jobs
    assert mine.job_id in [j.job_id for j in listed]
    code, _ = code_of(lambda: call(daemon, "ListJobs", pb.ListJobsRequest(),
                                   None))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    delete(daemon, tokens["ops"], mine.job_id)


# ---------------------------------------------------------------- fires


def test_every_second_fires_completed_runs(daemon, tokens):
    t = tokens["alice"]
    job = create(daemon, t, name="ticker", schedule="every 1s",
                 input="tick tock")
    done = poll(lambda: [f for f in fires(daemon, t, job.job_id)
                         if f.state == C.CRON_FIRE_STATE_DONE][3:], 20,
                what="four fires done")
    call(daemon, "UpdateJob", pb.UpdateJobRequest(
        job_id=job.job_id, job=pb.CronJob(enabled=False), fields=["enabled"]),
        t)
    listed = fires(daemon, t, job.job_id)
    sched = [f.scheduled_unix_ms for f in listed]
    assert sched == sorted(sched, reverse=True), "newest first"
    assert len(set(sched)) == len(sched)
    for f in done:
        assert f.run_status == S.RUN_STATUS_COMPLETED and f.run_id, f
        assert not f.manual and f.fired_unix_ms >= f.scheduled_unix_ms - 5
        assert (f.scheduled_unix_ms - job.created_unix_ms) % 1000 == 0, f
    db = open_journal(daemon.journal_path("acme"))
    try:
        rows = db.execute(
            "SELECT r.principal, r.agent, r.status FROM cron_fires f JOIN runs"
            " r ON r.run_id = f.run_id WHERE f.job_id = ? AND f.state = 'done'",
            (job.job_id,)).fetchall()
    finally:
        db.close()
    assert rows and all(r == ("alice", "assistant", "COMPLETED") for r in rows)
    check_fire_invariants(daemon, "acme", job.job_id)
    got = call(daemon, "GetJob", pb.GetJobRequest(job_id=job.job_id), t)
    assert got.last_fire_unix_ms == max(sched)
    # Disabled: no new fire.
    n = len(fires(daemon, t, job.job_id))
    time.sleep(1.5)
    assert len(fires(daemon, t, job.job_id)) == n
    delete(daemon, t, job.job_id)


def test_run_job_now(daemon, tokens):
    t = tokens["alice"]
    job = create(daemon, t, name="manual", schedule="@yearly", enabled=False,
                 input="by hand")
    fire = call(daemon, "RunJobNow", pb.RunJobNowRequest(job_id="manual"), t)
    assert fire.manual and fire.state == C.CRON_FIRE_STATE_PENDING, fire
    assert abs(fire.scheduled_unix_ms - time.time() * 1000) < 5000
    f = poll(lambda: [f for f in fires(daemon, t, job.job_id)
                      if f.state == C.CRON_FIRE_STATE_DONE], 15,
             what="the manual fire done")[0]
    assert f.scheduled_unix_ms == fire.scheduled_unix_ms and f.manual
    assert f.run_status == S.RUN_STATUS_COMPLETED
    delete(daemon, t, job.job_id)


def test_at_job_fires_once_then_disabled(daemon, tokens):
    t = tokens["alice"]
    at = (int(time.time()) + 2) * 1000
    job = create(daemon, t, name="once", schedule=f"at {rfc3339(at)}")
    assert job.next_fire_unix_ms == at, job
    poll(lambda: [f for f in fires(daemon, t, job.job_id)
                  if f.state == C.CRON_FIRE_STATE_DONE], 15, what="the at fire")
    got = call(daemon, "GetJob", pb.GetJobRequest(job_id=job.job_id), t)
    assert not got.enabled and got.next_fire_unix_ms == 0, got
    assert [f.scheduled_unix_ms for f in fires(daemon, t, job.job_id)] == [at]
    delete(daemon, t, job.job_id)


def test_overlap_skips_while_the_run_lives(daemon, tokens):
    t = tokens["alice"]
    # 150 ms a token: the run lasts about 3 s, every 1s overlaps it.
    job = create(daemon, t, name="overlap", schedule="every 1s",
                 agent="slowpoke", input="one two three four five six seven")
    skipped = poll(lambda: [f for f in fires(daemon, t, job.job_id)
                            if f.state == C.CRON_FIRE_STATE_SKIPPED], 15,
                   what="an overlap skip")
    call(daemon, "UpdateJob", pb.UpdateJobRequest(
        job_id=job.job_id, job=pb.CronJob(enabled=False), fields=["enabled"]),
        t)
    assert skipped[0].reason.startswith("overlap: "), skipped[0]
    assert not skipped[0].run_id
    ran = [f for f in fires(daemon, t, job.job_id) if f.run_id]
    live = [f for f in ran if f.state == C.CRON_FIRE_STATE_STARTED]
    assert len(live) <= 1, live
    delete(daemon, t, job.job_id)


def test_unattended_ask_is_denied_at_once(daemon, tokens):
    t = tokens["alice"]
    job = create(daemon, t, name="unattended", schedule="@yearly",
                 enabled=False, agent="asker", input="/tool time.now {}")
    call(daemon, "RunJobNow", pb.RunJobNowRequest(job_id=job.job_id), t)
    f = poll(lambda: [f for f in fires(daemon, t, job.job_id)
                      if f.state in FINAL_STATES], 10,
             what="the unattended run ended")[0]
    assert f.state == C.CRON_FIRE_STATE_DONE, f
    db = open_journal(daemon.journal_path("acme"))
    try:
        asked = db.execute("SELECT count(*) FROM approvals WHERE run_id = ?",
                           (f.run_id,)).fetchone()[0]
    finally:
        db.close()
    assert asked == 0, "no approval was asked for"
    ev = call_events(daemon, t, f.run_id)
    results = [e.tool_result for e in ev if e.WhichOneof("event") == "tool_result"]
    assert results and results[0].is_error, ev
    assert "no one can approve in an unattended cron run" in \
        results[0].content, results[0]
    delete(daemon, t, job.job_id)


def test_unattended_wait_takes_an_out_of_band_decision(daemon, tokens):
    t = tokens["alice"]
    job = create(daemon, t, name="waiter", schedule="@yearly", enabled=False,
                 agent="asker", input="/tool time.now {}",
                 unattended=pb.UNATTENDED_POLICY_WAIT)
    call(daemon, "RunJobNow", pb.RunJobNowRequest(job_id=job.job_id), t)
    f = poll(lambda: [f for f in fires(daemon, t, job.job_id)
                      if f.run_status == S.RUN_STATUS_WAITING_APPROVAL], 10,
             what="the run waiting for an approval")[0]
    assert f.state == C.CRON_FIRE_STATE_STARTED, f
    appr = pbg.ApprovalsServiceStub(daemon.channel)
    pending = appr.ListApprovals(pb.ListApprovalsRequest(run_id=f.run_id),
                                 metadata=auth_md(t), timeout=TIMEOUT).approvals
    assert len(pending) == 1, pending
    appr.DecideApproval(pb.DecideApprovalRequest(decision=pb.ApprovalDecision(
        approval_id=pending[0].approval_id,
        decision=pb.APPROVAL_DECISION_ALLOW,
        scope=pb.APPROVAL_SCOPE_ONCE)), metadata=auth_md(t), timeout=TIMEOUT)
    f = poll(lambda: [f for f in fires(daemon, t, job.job_id)
                      if f.state == C.CRON_FIRE_STATE_DONE], 10,
             what="the fire done once approved")[0]
    assert f.run_status == S.RUN_STATUS_COMPLETED
    results = [e.tool_result for e in call_events(daemon, t, f.run_id)
               if e.WhichOneof("event") == "tool_result"]
    assert results and not results[0].is_error, results
    delete(daemon, t, job.job_id)


def call_events(d, token, run_id):
    stream = d.channel.unary_stream(
        "/palyra.v1.GatewayService/ListRunEvents",
        request_serializer=pb.ListRunEventsRequest.SerializeToString,
        response_deserializer=pb.RunEvent.FromString)
    return list(stream(pb.ListRunEventsRequest(run_id=run_id),
                       metadata=auth_md(token), timeout=TIMEOUT))


# ---------------------------------------------------------------- crashes


def settle(d, token, job_id, timeout=20):
    """Disables the job and waits until none of its fires is open."""
    call(d, "UpdateJob", pb.UpdateJobRequest(
        job_id=job_id, job=pb.CronJob(enabled=False), fields=["enabled"]),
        token)
    return poll(lambda: (lambda fs: fs if fs and all(
        f.state in FINAL_STATES for f in fs) else None)(
        fires(d, token, job_id)), timeout, what="every fire ended")


def test_kill_worker_around_fires(own):
    t = own.mint_token("acme", "alice", "user")
    job = create(own, t, name="killw", schedule="every 1s", input="x")
    killed = 0
    deadline = time.monotonic() + 20
    while killed < 3 and time.monotonic() < deadline:
        pids = own.pids_of("palyra-worker", "acme")
        if pids:
            os.kill(pids[0], signal.SIGKILL)
            killed += 1
            time.sleep(0.7)
        else:
            time.sleep(0.05)
    assert killed == 3
    poll(lambda: [f for f in fires(own, t, job.job_id)
                  if f.state == C.CRON_FIRE_STATE_DONE], 20,
         what="a fire done after the kills")
    fs = settle(own, t, job.job_id)
    assert all(f.state in (C.CRON_FIRE_STATE_DONE, C.CRON_FIRE_STATE_FAILED,
                           C.CRON_FIRE_STATE_SKIPPED) for f in fs)
    check_fire_invariants(own, "acme", job.job_id)


def test_kill_journald_around_fires(own):
    t = own.mint_token("acme", "alice", "user")
    job = create(own, t, name="killj", schedule="every 1s", input="x")
    poll(lambda: fires(own, t, job.job_id), 10, what="a first fire")
    for _ in range(2):
        pid = poll(lambda: own.pids_of("palyra-journald"), 10,
                   what="journald")[0]
        os.kill(pid, signal.SIGKILL)
        poll(lambda: (lambda p: p and p[0] != pid)(
            own.pids_of("palyra-journald")), 15, what="journald restarted")
        time.sleep(1.2)

    def listed():
        try:
            return [f for f in fires(own, t, job.job_id)
                    if f.state == C.CRON_FIRE_STATE_DONE
                    and f.fired_unix_ms > time.time() * 1000 - 3000]
        except grpc.RpcError:
            return None
    poll(listed, 20, what="fires done after journald restarted")
    settle(own, t, job.job_id)
    check_fire_invariants(own, "acme", job.job_id)


def test_misfire_policies_after_a_stop(tmp_path):
    _require_binaries()
    d = Daemon(tmp_path / "d", CONFIG, TENANTS).start()
    try:
        t = d.mint_token("acme", "alice", "user")
        ids = {}
        for name, policy in (("skip", M.MISFIRE_POLICY_SKIP),
                             ("catchup", M.MISFIRE_POLICY_CATCH_UP),
                             ("once", M.MISFIRE_POLICY_ONCE)):
            # Overlap allowed: a fire left pending by the stop is offered
            # again at the restart, and must not hide the policy's fires.
            ids[name] = create(d, t, name=name, schedule="every 1s",
                               misfire=policy, catch_up_max=3,
                               allow_overlap=True, input="m").job_id
        for j in ids.values():
            poll(lambda: fires(d, t, j), 10, what="a first fire")
        d.assert_clean_stop()
        stopped = time.time() * 1000
        # At least four seconds are missed by more than the 2 s grace.
        time.sleep(6.5)
        d = Daemon(tmp_path / "d", CONFIG, TENANTS).start()
        t = d.mint_token("acme", "alice", "user")
        for j in ids.values():
            poll(lambda: [f for f in fires(d, t, j)
                          if f.fired_unix_ms > stopped], 10,
                 what="fires after the restart")
        # Missed: recorded after the restart for a time older than the
        # grace when it was recorded (a fire left pending by the stop was
        # recorded before it).
        missed = {}
        for name, j in ids.items():
            missed[name] = sorted(
                (f for f in fires(d, t, j) if f.fired_unix_ms > stopped
                 and f.scheduled_unix_ms < f.fired_unix_ms - 2000),
                key=lambda f: f.scheduled_unix_ms)
        assert len(missed["skip"]) == 1, missed["skip"]
        assert missed["skip"][0].state == C.CRON_FIRE_STATE_SKIPPED
        assert missed["skip"][0].reason == "missed: journald was down"
        assert len(missed["once"]) == 1, missed["once"]
        assert missed["once"][0].state != C.CRON_FIRE_STATE_SKIPPED
        assert len(missed["catchup"]) == 3, missed["catchup"]
        assert all(f.state != C.CRON_FIRE_STATE_SKIPPED
                   for f in missed["catchup"])
        sched = [f.scheduled_unix_ms for f in missed["catchup"]]
        assert sched[2] - sched[0] == 2000, sched
        # The latest missed times: the next second was late, not missed.
        for name in ("skip", "once", "catchup"):
            f = missed[name][-1]
            assert f.scheduled_unix_ms + 1000 >= f.fired_unix_ms - 2000, f
        for j in ids.values():
            settle(d, t, j)
            check_fire_invariants(d, "acme", j)
    finally:
        if not d.stopped:
            d.kill()
