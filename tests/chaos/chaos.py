#!/usr/bin/python3
"""Chaos: the real palyrad under constant load while processes are killed.

Starts palyrad (the binaries of $PALYRA_BUILD) with three tenants: "alpha"
(two workers, a slow offline provider), "beta" (slow offline) and "gamma"
(offline, with a cron job `every 1s` created through CronService). Client
threads start runs without pause for CHAOS_SECONDS (default 60); some go
away after a few events and some of those follow their run again, through
a RunStream reattach (run_id, after_seq) or ListRunEvents. Meanwhile a
chaos thread, at random intervals of 0.3 to 2.5 s, does one of: kill -9 of
a worker, of palyra-front or of palyra-journald, SIGHUP to palyrad (reload),
or closes every client's connection. Every action is logged with its time;
CHAOS_SEED replays the same choices (timing still varies with the host).

When the chaos stops and the daemon has settled, checked from outside:
  - every event a client was sent is in the journal with the same (run_id,
    seq) and content (ListRunEvents), and each call's events were one run's
    seqs in order with no gap or duplicate;
  - every tenant's hash chain verifies (POST /admin/v1/journal/verify and a
    recomputation from journal.db);
  - every run is terminal (GetRun; WAITING_APPROVAL would be allowed, none
    of these agents asks): none is left ACCEPTED or IN_PROGRESS;
  - no orphan: while running, every descendant of palyrad is its child;
    after palyrad stops, no process runs a binary of the build or names
    the state directory;
  - no descriptor growth: palyrad, the front and journald hold at most
    FD_SLACK more descriptors than before the load (per extra worker
    PER_WORKER_FDS more), measured with no client connected;
  - no cron double fire: ListJobRuns has each scheduled time once and each
    run_id once, and so has cron_fires in journal.db.

Exit status 0 when every invariant holds (the temporary directory is then
removed, unless CHAOS_KEEP is set); 1 with the action log, the failures
and the end of palyrad's log otherwise, the directory kept.

    PALYRA_BUILD=$PWD/build CHAOS_SECONDS=60 [CHAOS_SEED=N] \
        /usr/bin/python3 tests/chaos/chaos.py
"""
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Client, Daemon, Ledger, S, TERMINAL, cron_stub,  # noqa: E402
                     fd_count, gateway_stub, grpc, http_request, log, pb,
                     pids_by_label, poll, retry, run_stream, seeded, strays,
                     verify_chain, wrong_parents, open_journal, auth_md)

CONFIG = """\
state-dir "{state}"
listen grpc 127.0.0.1:{grpc_port}
listen http 127.0.0.1:{http_port}
provider "offline" {{ type offline }}
provider "slow" {{ type offline; token-delay 15ms }}
tenant "alpha" {{ workers 2; idle-timeout 0; agent "snail" {{ providers "slow" }} }}
tenant "beta" {{ agent "snail" {{ providers "slow" }} }}
tenant "gamma" {{
	agent "assistant" {{ providers "offline" }}
	agent "snail" {{ providers "slow" }}
}}
"""
TENANTS = ("alpha", "beta", "gamma")
CLIENTS = {"alpha": 4, "beta": 2, "gamma": 2}
BUSY_RUNS = 64          # FE_WORKER_BUSY_RUNS: more live runs start worker 2
# Descriptor slack: the front may still hold a closing connection or two;
# a worker that exists after the load and not before adds its IPC
# channels to palyrad, the front and journald.
FD_SLACK = {"palyrad": 2, "front": 4, "journald": 2}
PER_WORKER_FDS = 4
SETTLE_SECONDS = 45.0
# The actions are dealt from a shuffled deck holding each this many times,
# so that a short run still does each of them.
ACTIONS = (("kill worker", 3), ("kill front", 2), ("kill journald", 2),
           ("reload", 2), ("drop clients", 2))


class Chaos:
    def __init__(self, seconds, seed, rng):
        self.seconds, self.seed, self.rng = seconds, seed, rng
        self.t0 = time.monotonic()
        self.actions = []       # (t, action, detail)
        self.failures = []
        self.ledger = Ledger()
        self.stop = threading.Event()
        self.clients = []
        self.workdir = tempfile.mkdtemp(prefix="palyra-chaos-")
        self.d = Daemon(os.path.join(self.workdir, "d"), CONFIG, TENANTS)
        self.tokens = {}
        self.operator = {}
        self.job_id = None
        self.fds_before = None

    def note(self, action, detail=""):
        self.actions.append((time.monotonic(), action, detail))

    def fail(self, text):
        self.failures.append(text)
        log(f"FAIL {text.splitlines()[0]}")

    # -------------------------------------------------------------- setup

    def setup(self):
        d = self.d.start()
        log(f"palyrad {d.proc.pid} on {d.grpc_addr}, state {d.state}")
        for t in TENANTS:
            self.operator[t] = d.mint_token(t, "chaos-ops", "operator")
        # One run a tenant starts its worker; the cron job's owner.
        for t in TENANTS:
            res = run_stream(d.channel, self.operator[t], "warm up")
            assert res.code == grpc.StatusCode.OK, f"warm-up run of {t}: {res}"
        cron_tok = d.mint_token("gamma", "cronner", "user")
        job = cron_stub(d).CreateJob(pb.CreateJobRequest(job=pb.CronJob(
            name="tick", schedule="every 1s", input="tick", enabled=True)),
            metadata=auth_md(cron_tok), timeout=15)
        self.job_id, self.cron_tok = job.job_id, cron_tok
        self.note("cron", f"job {job.job_id} every 1s in gamma")
        self.second_worker()
        # journald keeps what a verify opens (3 descriptors): one now, so
        # that the counts before and after both include it.
        st, body = http_request(d, "POST", "/admin/v1/journal/verify",
                                token=d.admin_token, timeout=60)
        assert st == 200, f"journal verify before the load: {st} {body}"
        self.fds_before = self.fd_snapshot()
        log(f"descriptors before: {self.fds_before}")

    def second_worker(self):
        """More than BUSY_RUNS live runs of alpha start its second worker,
        which idle-timeout 0 keeps."""
        d = self.d
        ch = d.new_channel()
        stop = threading.Event()
        tok = self.operator["alpha"]

        def one(i):
            run_stream(ch, tok, " ".join(f"b{i}x{k}" for k in range(60)),
                       timeout=30)
        threads = [threading.Thread(target=one, args=(i,), daemon=True)
                   for i in range(BUSY_RUNS + 8)]
        for th in threads:
            th.start()
        try:
            poll(lambda: len(d.pids_of("palyra-worker", "alpha")) >= 2, 20,
                 interval=0.05, what="the second worker of alpha")
        finally:
            for th in threads:
                th.join(40)
            stop.set()
            ch.close()
        self.note("pool", f"alpha workers {d.pids_of('palyra-worker', 'alpha')}")

    def fd_snapshot(self):
        """{label: fds} of palyrad, the front and journald, and the number
        of workers, once no client is connected and the counts are steady
        for a moment."""
        d = self.d
        prev = None
        deadline = time.monotonic() + 10
        while True:
            labels = pids_by_label(d)
            snap = {}
            for k in ("palyrad", "front", "journald"):
                pids = labels.get(k, [])
                snap[k] = fd_count(pids[0]) if len(pids) == 1 else None
            snap["workers"] = sum(len(v) for k, v in labels.items()
                                  if k.startswith("worker "))
            if snap == prev and None not in snap.values():
                return snap
            if time.monotonic() >= deadline:
                return snap
            prev = snap
            time.sleep(0.3)

    # -------------------------------------------------------------- load

    def start_load(self):
        d = self.d
        i = 0
        for t, n in CLIENTS.items():
            for k in range(n):
                tok = d.mint_token(t, f"client{i}", "user")
                c = Client(d, f"client{i}/{t}", t, tok,
                           random.Random(self.seed * 1000 + i),
                           self.ledger, self.stop, text_words=20,
                           agent="snail")
                self.clients.append(c)
                i += 1
        for c in self.clients:
            c.start()

    def chaos_loop(self):
        end = self.t0 + self.seconds
        deck = []
        while time.monotonic() < end and not self.failures:
            wait = self.rng.uniform(0.3, 2.5)
            next_t = min(end, time.monotonic() + wait)
            while time.monotonic() < next_t:
                self.check_parents()
                time.sleep(min(0.25, max(0.0, next_t - time.monotonic())))
            if time.monotonic() >= end:
                break
            if not deck:
                deck = [a for a, n in ACTIONS for _ in range(n)]
                self.rng.shuffle(deck)
            self.act(deck.pop())

    def check_parents(self):
        d = self.d
        if d.proc.poll() is not None:
            self.fail(f"palyrad exited with {d.proc.returncode}")
            return
        bad = wrong_parents(d)
        if bad:
            # A process being reaped can be seen between two reads of
            # /proc: ask again before calling it an orphan.
            time.sleep(0.2)
            again = {p for p, _, _ in wrong_parents(d)}
            bad = [b for b in bad if b[0] in again]
            if bad:
                self.fail(f"descendants of palyrad that are not its children: {bad}")

    def kill(self, label_prefix, detail_name):
        labels = pids_by_label(self.d)
        pids = sorted(p for k, v in labels.items() if k.startswith(label_prefix)
                      for p in v)
        if not pids:
            self.note(f"kill {detail_name}", "none running")
            return
        pid = self.rng.choice(pids)
        label = [k for k, v in labels.items() if pid in v][0]
        try:
            os.kill(pid, signal.SIGKILL)
            self.note(f"kill {detail_name}", f"{label} pid {pid}")
        except ProcessLookupError:
            self.note(f"kill {detail_name}", f"{label} pid {pid} already gone")

    def act(self, action):
        if action == "kill worker":
            self.kill("worker ", "worker")
        elif action == "kill front":
            self.kill("front", "front")
        elif action == "kill journald":
            self.kill("journald", "journald")
        elif action == "reload":
            self.d.proc.send_signal(signal.SIGHUP)
            self.note("reload", f"SIGHUP palyrad {self.d.proc.pid}")
        elif action == "drop clients":
            n = sum(1 for c in self.clients if c.drop())
            self.note("drop clients", f"{n} connections closed")

    # -------------------------------------------------------------- checks

    def settle(self):
        """Until the daemon serves again: healthz, and a run of each tenant
        that completes."""
        d = self.d

        def healthy():
            st, _ = http_request(d, "GET", "/healthz", timeout=2)
            return st == 200
        poll(healthy, SETTLE_SECONDS, interval=0.1, what="GET /healthz 200")
        for t in TENANTS:
            def works():
                res = run_stream(d.new_channel(), self.operator[t], "settled",
                                 timeout=10)
                return res.code == grpc.StatusCode.OK and \
                    res.events[-1].status.status == S.RUN_STATUS_COMPLETED
            poll(works, SETTLE_SECONDS, interval=0.2,
                 what=f"a completed run of {t}")

    def journal_runs(self, t):
        db = open_journal(self.d.journal_path(t))
        try:
            return [r for (r,) in db.execute("SELECT run_id FROM runs")]
        finally:
            db.close()

    def check_runs(self):
        """Every run of every tenant reaches a terminal status (or waits
        for an approval) by the deadline; returns {run_id: Run}."""
        d = self.d
        ch = d.new_channel()
        stub = gateway_stub(d, ch)
        runs = {}
        for t in TENANTS:
            for r in self.journal_runs(t):
                runs[r] = t
        for r, t in self.ledger.tenant.items():
            if runs.setdefault(r, t) != t:
                self.fail(f"run {r} seen in tenant {t} and {runs[r]}")
        ok = {S.RUN_STATUS_WAITING_APPROVAL} | TERMINAL
        pending = dict(runs)
        got = {}
        deadline = time.monotonic() + SETTLE_SECONDS
        while pending and time.monotonic() < deadline:
            for r, t in list(pending.items()):
                run = retry(lambda: stub.GetRun(
                    pb.GetRunRequest(run_id=r),
                    metadata=auth_md(self.operator[t]), timeout=15),
                    what=f"GetRun {r}")
                got[r] = run
                if run.status in ok:
                    del pending[r]
            if pending:
                time.sleep(0.5)
        for r, t in pending.items():
            self.fail(f"run {r} of {t} is still "
                      f"{S.Name(got[r].status)} after settling")
        ch.close()
        log(f"runs: {len(runs)}, every one terminal: {not pending}")
        return got

    def check_events(self):
        """Every event a client was sent is stored, the same (ListRunEvents
        of each run from seq 0)."""
        d = self.d
        ch = d.new_channel()
        stub = gateway_stub(d, ch)
        by_run = {}
        for (r, seq), ev in self.ledger.events.items():
            by_run.setdefault(r, {})[seq] = ev
        missing = 0
        for r, sent in sorted(by_run.items()):
            t = self.ledger.tenant[r]

            def listing():
                return list(stub.ListRunEvents(
                    pb.ListRunEventsRequest(run_id=r, after_seq=0),
                    metadata=auth_md(self.operator[t]), timeout=15))
            stored = {ev.seq: ev for ev in retry(listing, what=f"ListRunEvents {r}")}
            if sorted(stored) != list(range(1, len(stored) + 1)):
                self.fail(f"run {r}: journal seqs {sorted(stored)} are not 1..n")
            for seq, ev in sorted(sent.items()):
                if stored.get(seq) != ev:
                    missing += 1
                    if missing <= 5:
                        self.fail(f"run {r} seq {seq}: sent to a client but "
                                  f"the journal has {stored.get(seq)!r}, "
                                  f"client got {ev!r}")
        if missing > 5:
            self.fail(f"{missing} acknowledged events missing or different in all")
        ch.close()
        log(f"events sent to clients: {len(self.ledger.events)} in "
            f"{len(by_run)} runs, all in the journal: {missing == 0}")
        for text in self.ledger.defects[:10]:
            self.fail(text)
        if len(self.ledger.defects) > 10:
            self.fail(f"{len(self.ledger.defects)} stream defects in all")

    def check_chains(self):
        d = self.d
        st, body = http_request(d, "POST", "/admin/v1/journal/verify",
                                token=d.admin_token, timeout=60)
        if st != 200:
            self.fail(f"journal verify: HTTP {st} {body!r}")
            return
        results = {r["tenant"]: r for r in body["results"]}
        for t in TENANTS:
            r = results.get(t)
            if r is None or r.get("ok") is not True:
                self.fail(f"journal verify of {t}: {r}")
            try:
                rows = verify_chain(d.journal_path(t))
            except AssertionError as e:
                self.fail(f"chain of {t}: {e}")
                continue
            log(f"chain of {t}: {len(rows)} events, verified")

    def check_cron(self):
        d = self.d
        stub = cron_stub(d, d.new_channel())
        fires = []
        token = ""
        while True:
            page = retry(lambda: stub.ListJobRuns(pb.ListJobRunsRequest(
                job_id=self.job_id, page_size=1000, page_token=token),
                metadata=auth_md(self.cron_tok), timeout=15),
                what="ListJobRuns")
            fires.extend(page.fires)
            token = page.next_page_token
            if not token:
                break
        sched = {}
        runs = {}
        for f in fires:
            if not f.manual:
                sched[f.scheduled_unix_ms] = sched.get(f.scheduled_unix_ms, 0) + 1
            if f.run_id:
                runs[f.run_id] = runs.get(f.run_id, 0) + 1
        twice = {k: n for k, n in sched.items() if n > 1}
        shared = {k: n for k, n in runs.items() if n > 1}
        if twice:
            self.fail(f"cron: scheduled times fired more than once: {twice}")
        if shared:
            self.fail(f"cron: runs shared by several fires: {shared}")
        started = len(runs)
        # every 1s over the load: a run for at least a quarter of the
        # seconds, whatever the kills of journald and of gamma's worker
        # skipped.
        want = max(3, int(self.seconds / 4))
        if started < want:
            self.fail(f"cron: only {started} fires started a run in "
                      f"{self.seconds}s of `every 1s` (want {want})")
        db = open_journal(d.journal_path("gamma"))
        try:
            dup = db.execute(
                "SELECT scheduled_ms, count(*) FROM cron_fires WHERE job_id = ?"
                " GROUP BY scheduled_ms HAVING count(*) > 1",
                (self.job_id,)).fetchall()
            shared_db = db.execute(
                "SELECT run_id, count(*) FROM cron_fires WHERE job_id = ?"
                " AND run_id IS NOT NULL AND run_id != ''"
                " GROUP BY run_id HAVING count(*) > 1",
                (self.job_id,)).fetchall()
            keys = db.execute(
                "SELECT idempotency_key, count(*) FROM runs WHERE"
                " idempotency_key LIKE ? GROUP BY idempotency_key"
                " HAVING count(*) > 1", (f"cron:{self.job_id}:%",)).fetchall()
        finally:
            db.close()
        if dup or shared_db or keys:
            self.fail(f"cron_fires in journal.db: double fires {dup}, shared "
                      f"runs {shared_db}, runs per key {keys}")
        states = {}
        for f in fires:
            n = pb.CronFireState.Name(f.state).replace("CRON_FIRE_STATE_", "")
            states[n] = states.get(n, 0) + 1
        log(f"cron: {len(fires)} fires {states}, {started} runs, no double fire: "
            f"{not (twice or shared or dup or shared_db or keys)}")

    def stop_cron(self):
        d = self.d
        retry(lambda: cron_stub(d, d.new_channel()).UpdateJob(
            pb.UpdateJobRequest(job_id=self.job_id, job=pb.CronJob(enabled=False),
                                fields=["enabled"]),
            metadata=auth_md(self.cron_tok), timeout=15), what="disable the job")
        self.note("cron", "job disabled")

    def check_fds(self):
        """With no client connected, the descriptors of palyrad, the front
        and journald come back to what they were before the load."""
        d = self.d
        if d._channel is not None:
            d._channel.close()
            d._channel = None
        before = self.fds_before

        def steady():
            now = self.fd_snapshot()
            extra = max(0, (now["workers"] or 0) - before["workers"])
            over = {k: (before[k], now[k]) for k in FD_SLACK
                    if now[k] is None or
                    now[k] > before[k] + FD_SLACK[k] + PER_WORKER_FDS * extra}
            return (now, over)
        deadline = time.monotonic() + 15
        while True:
            now, over = steady()
            if not over or time.monotonic() >= deadline:
                break
            time.sleep(0.5)
        log(f"descriptors after: {now}")
        if over:
            self.fail(f"descriptor growth beyond the slack {FD_SLACK} "
                      f"(+{PER_WORKER_FDS} a worker): (before, after) {over}")

    def check_stop(self):
        d = self.d
        rc, elapsed, left = d.stop()
        if rc != 0:
            self.fail(f"palyrad exited with {rc} after SIGTERM")
        if left:
            self.fail(f"processes left {elapsed:.1f}s after SIGTERM: {left}")
        time.sleep(0.2)
        stray = strays([self.workdir], self.d.proc.pid)
        if stray:
            self.fail(f"orphans after palyrad stopped: {stray}")
            for pid, _ in stray:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass

    # -------------------------------------------------------------- main

    def run(self):
        try:
            self.setup()
            log(f"load: {sum(CLIENTS.values())} "
                f"clients, chaos for {self.seconds}s, seed {self.seed}")
            self.t0 = time.monotonic()
            self.start_load()
            self.chaos_loop()
            self.stop.set()
            for c in self.clients:
                c.join(60)
                if c.is_alive():
                    self.fail(f"{c.name} still in a call 60 s after the stop")
            self.note("load stopped")
            self.summary()
            self.settle()
            self.stop_cron()
            self.check_runs()
            self.check_events()
            self.check_chains()
            self.check_cron()
            self.check_fds()
            self.check_parents()
            self.check_stop()
        except Exception:  # noqa: BLE001 - reported as a failure
            self.fail("chaos driver: " + traceback.format_exc())
        finally:
            self.stop.set()
            if not self.d.stopped:
                self.d.kill()
        return not self.failures

    def summary(self):
        kinds = {}
        for _, a, _ in self.actions:
            kinds[a] = kinds.get(a, 0) + 1
        log(f"actions: {kinds}")
        log(f"load: {dict(sorted(self.ledger.counts.items()))}")

    def report(self):
        print("\n--- chaos actions (seconds from the start of the load) ---")
        for t, a, detail in self.actions:
            print(f"{t - self.t0:8.2f}  {a:14s} {detail}")
        print(f"\n--- {len(self.failures)} failures (CHAOS_SEED={self.seed} "
              f"replays the choices; state kept in {self.workdir}) ---")
        for f in self.failures:
            print(f)
        text = self.d.log_text()
        print("\n--- end of palyrad's log ---")
        print("\n".join(text.splitlines()[-200:]))


def main():
    seconds = float(os.environ.get("CHAOS_SECONDS", "60"))
    seed, rng = seeded("CHAOS_SEED")
    log(f"chaos: {seconds:g}s, CHAOS_SEED={seed}")
    c = Chaos(seconds, seed, rng)
    ok = c.run()
    if ok:
        if not os.environ.get("CHAOS_KEEP"):
            shutil.rmtree(c.workdir, ignore_errors=True)
        log(f"chaos: every invariant holds ({len(c.actions)} actions, "
            f"seed {seed})")
        return 0
    c.report()
    return 1


if __name__ == "__main__":
    sys.exit(main())
