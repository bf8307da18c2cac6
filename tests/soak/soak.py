#!/usr/bin/python3
"""Soak: the real palyrad under a constant, mixed load for SOAK_SECONDS
(default 600), watching every process's memory and descriptors.

Load, all through the public gRPC surface, without pause: client threads
starting runs (a slow offline provider; some clients go away after a few
events and follow the run again, as in tests/chaos), memory ingests (with
a 30 s TTL, so that journald's sweep deletes them again) and searches,
vault puts (the same few names again and again) and lists, and a cron job
`every 5s`. Every SOAK_SAMPLE seconds (10) the VmRSS (/proc/PID/status)
and descriptor count (/proc/PID/fd) of palyrad, palyra-front,
palyra-journald and each worker are sampled and printed as a table row.

Failure, judged over the samples after the warm-up (the first 20 % of
the run):
  - RSS growth: the slope of a least-squares line through a process's
    RSS samples, times the length of that window, above 10 % of its first
    RSS after the warm-up plus 2 MiB;
  - descriptor growth: any sample above the first after the warm-up plus
    the slack (2; 4 for the front, whose client connections come and go);
  - a process that exited or was replaced (nothing is killed here: every
    pid must stay the same), a load error rate over 1 %, or a defect of
    the streams (a gap, a duplicate, an event unlike the journal's).

    PALYRA_BUILD=$PWD/build SOAK_SECONDS=600 /usr/bin/python3 tests/soak/soak.py
"""
import os
import random
import shutil
import sys
import tempfile
import threading
import time
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "chaos"))
from harness import (Client, Daemon, Ledger, auth_md, cron_stub,  # noqa: E402
                     fd_count, grpc, http_request, log, pb, pbg,
                     processes, retry, rss_kib, run_stream, strays)

CONFIG = """\
state-dir "{state}"
listen grpc 127.0.0.1:{grpc_port}
listen http 127.0.0.1:{http_port}
provider "offline" {{ type offline }}
provider "slow" {{ type offline; token-delay 10ms }}
tenant "alpha" {{ idle-timeout 0; agent "snail" {{ providers "slow" }} }}
tenant "beta" {{
	idle-timeout 0
	agent "assistant" {{ providers "offline" }}
	agent "snail" {{ providers "slow" }}
}}
"""
TENANTS = ("alpha", "beta")
RUN_CLIENTS = {"alpha": 2, "beta": 1}
WARMUP = 0.2
RSS_PCT, RSS_ABS_KIB = 0.10, 2048
FD_SLACK = {"front": 4}
FD_SLACK_DEFAULT = 2
MAX_ERROR_RATE = 0.01


class Soak:
    def __init__(self, seconds, interval):
        self.seconds, self.interval = seconds, interval
        self.workdir = tempfile.mkdtemp(prefix="palyra-soak-")
        self.d = Daemon(os.path.join(self.workdir, "d"), CONFIG, TENANTS)
        self.stop = threading.Event()
        self.ledger = Ledger()
        self.threads = []
        self.samples = []       # (t, {label: (pid, rss KiB, fds)})
        self.failures = []
        self.lock = threading.Lock()
        self.ops = {}           # what -> [ok, failed]

    def op(self, what, ok):
        with self.lock:
            v = self.ops.setdefault(what, [0, 0])
            v[0 if ok else 1] += 1

    def fail(self, text):
        self.failures.append(text)
        log(f"FAIL {text}")

    # -------------------------------------------------------------- load

    def setup(self):
        d = self.d.start()
        log(f"palyrad {d.proc.pid} on {d.grpc_addr}, state {d.state}")
        self.ops_tok = {t: d.mint_token(t, "soak-ops", "operator")
                        for t in TENANTS}
        for t in TENANTS:
            res = run_stream(d.channel, self.ops_tok[t], "warm up")
            assert res.code == grpc.StatusCode.OK, f"warm-up of {t}: {res}"
        self.cron_tok = d.mint_token("beta", "cronner", "user")
        job = cron_stub(d).CreateJob(pb.CreateJobRequest(job=pb.CronJob(
            name="soak", schedule="every 5s", input="tick", enabled=True)),
            metadata=auth_md(self.cron_tok), timeout=15)
        self.job_id = job.job_id
        i = 0
        for t, n in RUN_CLIENTS.items():
            for _ in range(n):
                tok = d.mint_token(t, f"client{i}", "user")
                self.threads.append(Client(
                    d, f"client{i}/{t}", t, tok, random.Random(i),
                    self.ledger, self.stop, text_words=20, leave=0.2,
                    agent="snail"))
                i += 1
        for t in TENANTS:
            self.threads.append(threading.Thread(
                target=self.memory_loop, args=(t,), daemon=True))
            self.threads.append(threading.Thread(
                target=self.vault_loop, args=(t,), daemon=True))

    def guarded(self, what, fn):
        try:
            fn()
            self.op(what, True)
        except grpc.RpcError as e:
            self.op(what, False)
            self.ledger.count(f"{what} {e.code().name}: {e.details()}")
            self.stop.wait(0.2)

    def memory_loop(self, tenant):
        ch = self.d.new_channel()
        stub = pbg.MemoryServiceStub(ch)
        md = auth_md(self.ops_tok[tenant])
        n = 0
        while not self.stop.is_set():
            n += 1
            text = f"soak note {n} about topic{n % 17} and item{n % 101}"
            self.guarded("memory ingest", lambda: stub.IngestMemory(
                pb.IngestMemoryRequest(text=text, tags=[f"t{n % 5}"],
                                       ttl_ms=30_000),
                metadata=md, timeout=15))
            self.guarded("memory search", lambda: stub.SearchMemory(
                pb.SearchMemoryRequest(query=f"topic{n % 17}", top_k=5),
                metadata=md, timeout=15))
            self.stop.wait(0.05)
        ch.close()

    def vault_loop(self, tenant):
        ch = self.d.new_channel()
        stub = pbg.VaultServiceStub(ch)
        md = auth_md(self.ops_tok[tenant])
        n = 0
        while not self.stop.is_set():
            n += 1
            name = f"soak-{n % 4}"
            self.guarded("vault put", lambda: stub.PutSecret(
                pb.PutSecretRequest(name=name,
                                    value=f"value {n} of {name}".encode()),
                metadata=md, timeout=15))
            self.guarded("vault list", lambda: stub.ListSecrets(
                pb.ListSecretsRequest(), metadata=md, timeout=15))
            self.stop.wait(0.2)
        ch.close()

    # -------------------------------------------------------------- samples

    def sample(self, t):
        row = {}
        for pid, label in processes(self.d).items():
            key = label
            k = 2
            while key in row:          # a tenant's second worker
                key = f"{label}#{k}"
                k += 1
            row[key] = (pid, rss_kib(pid), fd_count(pid))
        self.samples.append((t, row))
        return row

    def print_header(self, row):
        self.labels = sorted(row, key=lambda k: (k != "palyrad", k))
        cols = "".join(f"{k:>22s}" for k in self.labels)
        print(f"{'t(s)':>6s}{cols}   (RSS MiB / descriptors)")

    def print_row(self, t, row):
        cells = []
        for k in self.labels:
            v = row.get(k)
            cells.append(f"{'-':>22s}" if v is None or v[1] is None else
                         f"{v[1] / 1024:>15.1f} / {v[2]:<4d}")
        print(f"{t:6.0f}" + "".join(cells))
        sys.stdout.flush()

    # -------------------------------------------------------------- verdict

    @staticmethod
    def slope(points):
        n = len(points)
        mx = sum(x for x, _ in points) / n
        my = sum(y for _, y in points) / n
        sxx = sum((x - mx) ** 2 for x, _ in points)
        if sxx == 0:
            return 0.0
        return sum((x - mx) * (y - my) for x, y in points) / sxx

    def judge(self):
        start = self.seconds * WARMUP
        window = [(t, row) for t, row in self.samples if t >= start]
        if len(window) < 3:
            self.fail(f"only {len(window)} samples after the warm-up: "
                      f"run longer than {self.seconds}s or sample more often")
            return
        span = window[-1][0] - window[0][0]
        first = window[0][1]
        print(f"\n{'process':<16s}{'RSS first':>11s}{'RSS last':>10s}"
              f"{'fit growth':>12s}{'bound':>9s}{'fds first':>11s}"
              f"{'fds max':>9s}  (after the {WARMUP:.0%} warm-up, "
              f"{span:.0f}s; MiB)")
        for label, (pid, rss0, fd0) in sorted(first.items()):
            pts = [(t, row[label][1]) for t, row in window
                   if label in row and row[label][0] == pid
                   and row[label][1] is not None]
            gone = [t for t, row in window
                    if label not in row or row[label][0] != pid]
            if gone:
                self.fail(f"{label} (pid {pid}) exited or was replaced by "
                          f"{gone[0]:.0f}s")
                continue
            growth = self.slope(pts) * span
            bound = RSS_PCT * rss0 + RSS_ABS_KIB
            fdmax = max(row[label][2] for _, row in window)
            slack = FD_SLACK.get(label, FD_SLACK_DEFAULT)
            print(f"{label:<16s}{rss0 / 1024:>11.1f}{pts[-1][1] / 1024:>10.1f}"
                  f"{growth / 1024:>12.2f}{bound / 1024:>9.2f}{fd0:>11d}"
                  f"{fdmax:>9d}")
            if growth > bound:
                self.fail(f"{label}: RSS grows {growth / 1024:.2f} MiB over "
                          f"{span:.0f}s (fit), bound {bound / 1024:.2f} MiB")
            if fdmax > fd0 + slack:
                self.fail(f"{label}: descriptors {fd0} -> {fdmax} "
                          f"(slack {slack})")
        print()
        for what, (ok, bad) in sorted(self.ops.items()):
            rate = bad / max(1, ok + bad)
            print(f"{what:<16s}{ok:>8d} ok {bad:>6d} failed")
            if rate > MAX_ERROR_RATE:
                self.fail(f"{what}: {bad} of {ok + bad} failed")
        c = self.ledger.counts
        runs = c.get("runs started", 0)
        bad = sum(n for k, n in c.items() if k.startswith("start ")
                  and ":" not in k)
        print(f"{'runs':<16s}{runs:>8d} started {bad:>4d} refused; "
              f"{c.get('runs followed to the end', 0)} followed to the end")
        if runs == 0 or bad / max(1, runs) > MAX_ERROR_RATE:
            self.fail(f"runs: {bad} of {runs} refused")
        for text in self.ledger.defects[:10]:
            self.fail(text)
        others = {k: n for k, n in c.items() if ":" in k}
        if others:
            print(f"errors seen: {others}")

    def check_cron(self):
        stub = cron_stub(self.d, self.d.new_channel())
        page = retry(lambda: stub.ListJobRuns(pb.ListJobRunsRequest(
            job_id=self.job_id, page_size=1000),
            metadata=auth_md(self.cron_tok), timeout=15), what="ListJobRuns")
        sched = [f.scheduled_unix_ms for f in page.fires if not f.manual]
        runs = [f.run_id for f in page.fires if f.run_id]
        want = int(self.seconds / 5 * 0.8)
        print(f"{'cron fires':<16s}{len(page.fires):>8d}, {len(runs)} runs "
              f"(every 5s over {self.seconds:.0f}s)")
        if len(set(sched)) != len(sched) or len(set(runs)) != len(runs):
            self.fail("cron: a scheduled time or a run fired twice")
        if len(runs) < want:
            self.fail(f"cron: {len(runs)} runs, want at least {want}")

    # -------------------------------------------------------------- main

    def run(self):
        try:
            self.setup()
            for th in self.threads:
                th.start()
            t0 = time.monotonic()
            log(f"soak: {self.seconds:.0f}s of load, a sample every "
                f"{self.interval:g}s")
            row = self.sample(0.0)
            self.print_header(row)
            self.print_row(0.0, row)
            k = 1
            while True:
                t_next = t0 + k * self.interval
                if t_next > t0 + self.seconds + 0.001:
                    break
                time.sleep(max(0.0, t_next - time.monotonic()))
                if self.d.proc.poll() is not None:
                    self.fail(f"palyrad exited with {self.d.proc.returncode}")
                    break
                t = time.monotonic() - t0
                self.print_row(t, self.sample(t))
                k += 1
            self.stop.set()
            for th in self.threads:
                th.join(60)
            self.judge()
            self.check_cron()
            st, body = http_request(self.d, "POST", "/admin/v1/journal/verify",
                                    token=self.d.admin_token, timeout=120)
            if st != 200 or not all(r.get("ok") for r in body["results"]):
                self.fail(f"journal verify: {st} {body}")
            rc, _, left = self.d.stop()
            if rc != 0 or left:
                self.fail(f"stop: exit {rc}, left {left}")
            stray = strays([self.workdir], self.d.proc.pid)
            if stray:
                self.fail(f"orphans after the stop: {stray}")
        except Exception:  # noqa: BLE001 - reported as a failure
            self.fail("soak driver: " + traceback.format_exc())
        finally:
            self.stop.set()
            if not self.d.stopped:
                self.d.kill()
        return not self.failures


def main():
    seconds = float(os.environ.get("SOAK_SECONDS", "600"))
    interval = float(os.environ.get("SOAK_SAMPLE", "10"))
    s = Soak(seconds, interval)
    if s.run():
        shutil.rmtree(s.workdir, ignore_errors=True)
        log("soak: no growth")
        return 0
    print(f"\n--- {len(s.failures)} failures (state kept in {s.workdir}) ---")
    for f in s.failures:
        print(f)
    print("\n--- end of palyrad's log ---")
    print("\n".join(s.d.log_text().splitlines()[-100:]))
    return 1


if __name__ == "__main__":
    sys.exit(main())
