/*
 * jbench.c: journal benchmark. Measures, in the same run and on the same
 * disk, (1) the raw SQLite ceiling: rows/s inserted into a table shaped like
 * events (WAL, synchronous FULL, transactions of 256, prepared statement),
 * (the better of two attempts) and (2) palyra-journald's acknowledged
 * appends/s: this program plays the supervisor (JOURNAL_CONFIG full,
 * TENANT_LIST, ATTACH_PEER) and a worker that pipelines appends for many runs
 * with a bounded number in flight. Then it verifies the tenant's hash chain end
 * to end.
 *
 * Output is one "name value" line per figure, for tests/bench/run.sh.
 *
 * usage: jbench [-n APPENDS] [-r RUNS] [-w WINDOW] [-j JOURNALD] [-k]
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "chain.h"
#include "ipc.h"
#include "ipc.pb-c.h"
#include "proc.h"

extern char **environ;

#define RAW_BATCH 256
#define TENANT "bench"
#define TOKEN_TEXT                                                             \
	"The quick brown fox jumps over the lazy dog; "                        \
	"a token delta of a streamed reply."

struct bench {
	long appends;
	int runs;
	int window;
	const char *journald;
	int keep;
	char dir[512];
};

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
die(const char *what)
{
	fprintf(stderr, "jbench: %s\n", what);
	exit(1);
}

static void
sql(sqlite3 *db, const char *text)
{
	char *err = NULL;

	if (sqlite3_exec(db, text, NULL, NULL, &err) != SQLITE_OK) {
		fprintf(stderr, "jbench: %s: %s\n", text, err);
		exit(1);
	}
}

/* (1) The ceiling: what SQLite itself does with the same rows. */
static double
bench_raw_sqlite(const struct bench *b, int attempt)
{
	char path[600], run_id[32];
	uint8_t payload[120], hash[CHAIN_HASH_LEN];
	sqlite3 *db;
	sqlite3_stmt *st;
	double t0, t1;
	long i;

	snprintf(path, sizeof(path), "%s/raw%d.db", b->dir, attempt);
	if (sqlite3_open(path, &db) != SQLITE_OK)
		die("cannot open raw.db");
	sql(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;");
	sql(db, "CREATE TABLE events (chain_seq INTEGER PRIMARY KEY,"
		" run_id TEXT NOT NULL, run_seq INTEGER NOT NULL,"
		" ts_ms INTEGER NOT NULL, kind TEXT NOT NULL,"
		" payload BLOB NOT NULL, hash BLOB NOT NULL,"
		" UNIQUE(run_id, run_seq))");
	if (sqlite3_prepare_v2(db,
		"INSERT INTO events VALUES"
		" (?, ?, ?, ?, ?, ?, ?)",
		-1, &st, NULL) != SQLITE_OK)
		die("prepare");
	memset(payload, 'p', sizeof(payload));
	memset(hash, 0x5a, sizeof(hash));
	t0 = now_s();
	for (i = 0; i < b->appends; i++) {
		if (i % RAW_BATCH == 0)
			sql(db, "BEGIN");
		snprintf(
		    run_id, sizeof(run_id), "bench-run-%04ld", i % b->runs);
		hash[0] = (uint8_t)i;
		sqlite3_bind_int64(st, 1, i + 1);
		sqlite3_bind_text(st, 2, run_id, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 3, i / b->runs + 1);
		sqlite3_bind_int64(st, 4, 1700000000000 + i);
		sqlite3_bind_text(st, 5, "token", -1, SQLITE_STATIC);
		sqlite3_bind_blob(
		    st, 6, payload, sizeof(payload), SQLITE_STATIC);
		sqlite3_bind_blob(st, 7, hash, sizeof(hash), SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE)
			die(sqlite3_errmsg(db));
		sqlite3_reset(st);
		if (i % RAW_BATCH == RAW_BATCH - 1 || i == b->appends - 1)
			sql(db, "COMMIT");
	}
	t1 = now_s();
	sqlite3_finalize(st);
	sqlite3_close(db);
	return (double)b->appends / (t1 - t0);
}

static pid_t
spawn_journald(const struct bench *b, int parent_fd)
{
	pid_t pid;
	int null;

	if ((pid = fork()) == -1)
		die("fork");
	if (pid > 0)
		return pid;
	if ((null = open("/dev/null", O_RDWR)) == -1)
		_exit(127);
	dup2(null, 0);
	dup2(null, 1);
	if (parent_fd == PROC_FD_PARENT)
		fcntl(parent_fd, F_SETFD, 0);
	else if (dup2(parent_fd, PROC_FD_PARENT) == -1)
		_exit(127);
	execl(b->journald, "palyra-journald", "-s", b->dir, "-d", (char *)NULL);
	_exit(127);
}

/* The worker's message for append number i (0-based). */
static void
make_append(const struct bench *b, long i, char *run_id, size_t run_id_len,
    Palyra__Ipc__JournalAppend *app, Palyra__V1__RunEvent *ev,
    Palyra__V1__StatusEvent *status, Palyra__V1__ModelToken *token)
{
	long per_run = b->appends / b->runs;
	long seq = i / b->runs + 1;

	snprintf(run_id, run_id_len, "bench-run-%04ld", i % b->runs);
	palyra__ipc__journal_append__init(app);
	palyra__v1__run_event__init(ev);
	palyra__v1__status_event__init(status);
	palyra__v1__model_token__init(token);
	app->event = ev;
	app->principal = "alice";
	app->agent = "assistant";
	ev->run_id = run_id;
	ev->seq = (uint64_t)seq;
	ev->timestamp_unix_ms = 1700000000000LL + i;
	ev->session_id = "bench-session";
	if (seq == 1 || seq == per_run) {
		status->status =
		    seq == 1 ? PALYRA__V1__RUN_STATUS__RUN_STATUS_ACCEPTED
			     : PALYRA__V1__RUN_STATUS__RUN_STATUS_COMPLETED;
		ev->event_case = PALYRA__V1__RUN_EVENT__EVENT_STATUS;
		ev->status = status;
	} else {
		token->text = TOKEN_TEXT;
		ev->event_case = PALYRA__V1__RUN_EVENT__EVENT_TOKEN;
		ev->token = token;
	}
}

static int
wait_exit(pid_t pid, int timeout_ms)
{
	int status, waited = 0;

	for (;;) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
		if (waited >= timeout_ms) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return -2;
		}
		usleep(10000);
		waited += 10;
	}
}

/* Recomputes every link of the tenant's chain. Returns rows verified, or
 * -1 on the first broken link. */
static long
verify_chain(const struct bench *b)
{
	char path[600];
	uint8_t prev[CHAIN_HASH_LEN] = {0}, h[CHAIN_HASH_LEN];
	sqlite3 *db;
	sqlite3_stmt *st;
	long n = 0;

	snprintf(
	    path, sizeof(path), "%s/tenants/" TENANT "/journal.db", b->dir);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_prepare_v2(db,
		"SELECT chain_seq, run_id, run_seq, ts_ms,"
		" payload, hash FROM events ORDER BY chain_seq",
		-1, &st, NULL) != SQLITE_OK)
		return -1;
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (sqlite3_column_int64(st, 0) != n + 1 ||
		    chain_link(prev, (uint64_t)sqlite3_column_int64(st, 0),
			(const char *)sqlite3_column_text(st, 1),
			(uint64_t)sqlite3_column_int64(st, 2),
			sqlite3_column_int64(st, 3), sqlite3_column_blob(st, 4),
			(size_t)sqlite3_column_bytes(st, 4), h) < 0 ||
		    sqlite3_column_bytes(st, 5) != CHAIN_HASH_LEN ||
		    memcmp(h, sqlite3_column_blob(st, 5), CHAIN_HASH_LEN) !=
			0) {
			fprintf(stderr, "jbench: chain broken at %ld\n", n + 1);
			n = -1;
			break;
		}
		memcpy(prev, h, sizeof(prev));
		n++;
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

/* (2) palyra-journald: acknowledged appends per second. */
static double
bench_journald(const struct bench *b, long *acked_ok)
{
	Palyra__Ipc__JournalConfig config = PALYRA__IPC__JOURNAL_CONFIG__INIT;
	Palyra__Ipc__TenantList list = PALYRA__IPC__TENANT_LIST__INIT;
	Palyra__Ipc__AttachPeer attach = PALYRA__IPC__ATTACH_PEER__INIT;
	Palyra__Ipc__JournalAppend app;
	Palyra__V1__RunEvent ev;
	Palyra__V1__StatusEvent status;
	Palyra__V1__ModelToken token;
	Palyra__Ipc__JournalAck *ack;
	struct ipc_msg m;
	struct pollfd pfd;
	char *names[] = {TENANT}, run_id[32];
	uint8_t *buf;
	uint32_t expect_id = 1;
	long sent = 0, acked = 0, failed = 0;
	ssize_t len, n;
	double t0 = 0, t1;
	pid_t pid;
	int sup[2], wrk[2], fds[IPC_MAX_FDS], nfds, rc, code;
	int send_blocked = 0;

	if ((buf = malloc(IPC_DATAGRAM_MAX)) == NULL)
		die("malloc");
	if (ipc_socketpair(sup) < 0 || ipc_socketpair(wrk) < 0)
		die("socketpair");
	pid = spawn_journald(b, sup[1]);
	close(sup[1]);

	config.durability_full = 1;
	list.n_names = 1;
	list.names = names;
	attach.kind = PALYRA__IPC__PEER_KIND__PEER_WORKER;
	attach.tenant = TENANT;
	attach.generation = 1;
	if (ipc_recv_blocking(sup[0], &m) < 0 || m.hdr.type != IPC_READY)
		die("journald did not send READY");
	ipc_msg_clear(&m);
	if (ipc_send_blocking(
		sup[0], IPC_JOURNAL_CONFIG, 0, &config.base, NULL, 0) < 0 ||
	    ipc_send_blocking(sup[0], IPC_TENANT_LIST, 0, &list.base, NULL, 0) <
		0 ||
	    ipc_send_blocking(
		sup[0], IPC_ATTACH_PEER, 0, &attach.base, &wrk[1], 1) < 0)
		die("cannot configure journald");
	close(wrk[1]);

	t0 = now_s();
	while (acked < b->appends) {
		/* Send while the window allows and the socket takes it. */
		while (!send_blocked && sent < b->appends &&
		       sent - acked < b->window) {
			make_append(b, sent, run_id, sizeof(run_id), &app, &ev,
			    &status, &token);
			len = ipc_encode(buf, IPC_DATAGRAM_MAX,
			    IPC_JOURNAL_APPEND, (uint32_t)(sent + 1),
			    &app.base);
			if (len < 0)
				die("encode");
			rc = ipc_sendmsg(wrk[0], buf, (size_t)len, NULL, 0);
			if (rc == -EAGAIN) {
				send_blocked = 1;
				break;
			}
			if (rc < 0)
				die("send to journald failed");
			sent++;
		}
		pfd.fd = wrk[0];
		pfd.events = POLLIN | (send_blocked ? POLLOUT : 0);
		if (poll(&pfd, 1, 10000) <= 0)
			die("journald stopped acknowledging");
		if (pfd.revents & POLLOUT)
			send_blocked = 0;
		if (!(pfd.revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		for (;;) {
			n = ipc_recvmsg(
			    wrk[0], buf, IPC_DATAGRAM_MAX, fds, &nfds);
			if (n == -EAGAIN)
				break;
			if (n <= 0)
				die("journald closed the worker channel");
			if (ipc_decode(buf, (size_t)n, nfds, &m) < 0 ||
			    m.hdr.type != IPC_JOURNAL_ACK)
				die("unexpected message from journald");
			if (m.hdr.request_id != expect_id++)
				die("acks out of order");
			ack = (Palyra__Ipc__JournalAck *)m.msg;
			if (!ack->ok && failed++ < 5)
				fprintf(stderr,
				    "jbench: append %u refused: "
				    "%s\n",
				    m.hdr.request_id, ack->error);
			acked++;
			ipc_msg_clear(&m);
		}
	}
	t1 = now_s();
	*acked_ok = acked - failed;

	/* EOF on both channels: journald commits, closes and exits 0. */
	close(wrk[0]);
	close(sup[0]);
	if ((code = wait_exit(pid, 10000)) != 0)
		fprintf(stderr, "jbench: journald exited with %d\n", code);
	free(buf);
	return (double)acked / (t1 - t0);
}

int
main(int argc, char **argv)
{
	struct bench b = {100000, 64, 1024, NULL, 0, ""};
	const char *build = getenv("PALYRA_BUILD");
	char journald[1024];
	double raw, jnl;
	long ok, verified;
	int ch;

	while ((ch = getopt(argc, argv, "n:r:w:j:k")) != -1) {
		switch (ch) {
		case 'n':
			b.appends = atol(optarg);
			break;
		case 'r':
			b.runs = atoi(optarg);
			break;
		case 'w':
			b.window = atoi(optarg);
			break;
		case 'j':
			b.journald = optarg;
			break;
		case 'k':
			b.keep = 1;
			break;
		default:
			fprintf(stderr, "usage: jbench [-n APPENDS] [-r RUNS] "
					"[-w WINDOW] [-j JOURNALD] [-k]\n");
			return 2;
		}
	}
	if (b.runs < 1 || b.window < 1 || b.appends < 2L * b.runs)
		die("need RUNS >= 1, WINDOW >= 1, APPENDS >= 2 * RUNS");
	/* Whole runs only, so that each ends with its COMPLETED status. */
	b.appends -= b.appends % b.runs;
	if (b.journald == NULL) {
		snprintf(journald, sizeof(journald),
		    "%s/libexec/palyra-journald", build ? build : "build");
		b.journald = journald;
	}
	/* Both figures are taken on the same file system: TMPDIR's. */
	if ((size_t)snprintf(b.dir, sizeof(b.dir), "%s/jbench.XXXXXX",
		getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp") >=
	    sizeof(b.dir))
		die("TMPDIR too long");
	if (mkdtemp(b.dir) == NULL)
		die("mkdtemp");

	/* The ceiling is the better of two attempts: disks vary, and a low
	 * ceiling would flatter the ratio. */
	raw = bench_raw_sqlite(&b, 1);
	if ((jnl = bench_raw_sqlite(&b, 2)) > raw)
		raw = jnl;
	jnl = bench_journald(&b, &ok);
	verified = verify_chain(&b);

	printf("journal_appends %ld\n", b.appends);
	printf("journal_raw_sqlite_rows_per_s %.0f\n", raw);
	printf("journal_acked_appends_per_s %.0f\n", jnl);
	printf("journal_ratio_percent %.1f\n", 100.0 * jnl / raw);
	printf("journal_appends_ok %ld\n", ok);
	printf("journal_chain_verified %ld\n", verified);

	if (!b.keep) {
		char *rm[] = {"rm", "-rf", "--", b.dir, NULL};
		pid_t pid;

		if (posix_spawnp(&pid, "rm", NULL, NULL, rm, environ) != 0 ||
		    wait_exit(pid, 30000) != 0)
			fprintf(stderr, "jbench: cannot remove %s\n", b.dir);
	} else
		fprintf(stderr, "jbench: state kept in %s\n", b.dir);
	return ok == b.appends && verified == b.appends ? 0 : 1;
}
