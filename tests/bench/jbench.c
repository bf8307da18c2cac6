/*
 * jbench.c: journal benchmark. Measures, in the same run and on the same
 * disk, (1) the raw SQLite ceiling: rows/s inserted into a table shaped like
 * events (WAL, synchronous FULL, transactions of 256, prepared statement),
 * (the better of two attempts) and (2) palyra-journald's acknowledged
 * appends/s: this program plays the supervisor (JOURNAL_CONFIG full,
 * TENANT_LIST, ATTACH_PEER) and 1, 8 and 64 workers (one channel each, a
 * fresh journald and tenant per count) that pipeline appends for many runs
 * with a bounded number in flight, with the p50 and p99 acknowledgement
 * latency. Then it verifies each tenant's hash chain end to end.
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
verify_chain(const struct bench *b, const char *tenant)
{
	char path[600];
	uint8_t prev[CHAIN_HASH_LEN] = {0}, h[CHAIN_HASH_LEN];
	sqlite3 *db;
	sqlite3_stmt *st;
	long n = 0;

	snprintf(path, sizeof(path), "%s/tenants/%s/journal.db", b->dir,
	    tenant);
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

/* One worker channel of the benchmark: its appends, window and timing. */
struct writer {
	int fd;
	long appends; /* this writer's share */
	int runs;
	int window;
	long sent;
	long acked;
	long failed;
	uint32_t expect_id;
	int send_blocked;
	double *sent_at; /* ring of window send times, by request id */
};

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Sends while w's window allows and its socket takes it. */
static void
writer_send(const struct bench *b, struct writer *w, int index, uint8_t *buf)
{
	struct bench share = *b;
	Palyra__Ipc__JournalAppend app;
	Palyra__V1__RunEvent ev;
	Palyra__V1__StatusEvent status;
	Palyra__V1__ModelToken token;
	char run_id[48], prefixed[64];
	ssize_t len;
	int rc;

	share.appends = w->appends;
	share.runs = w->runs;
	while (!w->send_blocked && w->sent < w->appends &&
	       w->sent - w->acked < w->window) {
		make_append(&share, w->sent, run_id, sizeof(run_id), &app, &ev,
		    &status, &token);
		/* Run ids are distinct across writers. */
		snprintf(prefixed, sizeof(prefixed), "w%02d-%s", index, run_id);
		ev.run_id = prefixed;
		len = ipc_encode(buf, IPC_DATAGRAM_MAX, IPC_JOURNAL_APPEND,
		    (uint32_t)(w->sent + 1), &app.base);
		if (len < 0)
			die("encode");
		rc = ipc_sendmsg(w->fd, buf, (size_t)len, NULL, 0);
		if (rc == -EAGAIN) {
			w->send_blocked = 1;
			break;
		}
		if (rc < 0)
			die("send to journald failed");
		w->sent_at[w->sent % w->window] = now_s();
		w->sent++;
	}
}

/* Reads every ack w has waiting; records each one's latency. */
static void
writer_recv(struct writer *w, uint8_t *buf, double *lat, long *nlat)
{
	Palyra__Ipc__JournalAck *ack;
	struct ipc_msg m;
	int fds[IPC_MAX_FDS], nfds;
	ssize_t n;

	for (;;) {
		n = ipc_recvmsg(w->fd, buf, IPC_DATAGRAM_MAX, fds, &nfds);
		if (n == -EAGAIN)
			break;
		if (n <= 0)
			die("journald closed the worker channel");
		if (ipc_decode(buf, (size_t)n, nfds, &m) < 0 ||
		    m.hdr.type != IPC_JOURNAL_ACK)
			die("unexpected message from journald");
		if (m.hdr.request_id != w->expect_id++)
			die("acks out of order");
		ack = (Palyra__Ipc__JournalAck *)m.msg;
		if (!ack->ok && w->failed++ < 5)
			fprintf(stderr, "jbench: append %u refused: %s\n",
			    m.hdr.request_id, ack->error);
		lat[(*nlat)++] =
		    now_s() - w->sent_at[(m.hdr.request_id - 1) % w->window];
		w->acked++;
		ipc_msg_clear(&m);
	}
}

/*
 * (2) palyra-journald: acknowledged appends per second from nwriters
 * worker channels of tenant at once, each pipelining its share of the
 * appends over its own runs with window / nwriters (at least 16) in flight,
 * and the p50 and p99 acknowledgement latency (send to ack, in ms).
 */
static double
bench_journald(const struct bench *b, const char *tenant, int nwriters,
    long *acked_ok, double *p50_ms, double *p99_ms)
{
	Palyra__Ipc__JournalConfig config = PALYRA__IPC__JOURNAL_CONFIG__INIT;
	Palyra__Ipc__TenantList list = PALYRA__IPC__TENANT_LIST__INIT;
	Palyra__Ipc__AttachPeer attach = PALYRA__IPC__ATTACH_PEER__INIT;
	struct writer *w;
	struct pollfd *pfd;
	struct ipc_msg m;
	char *names[1];
	uint8_t *buf;
	double t0, t1, *lat;
	long acked = 0, total = 0, nlat = 0, failed = 0;
	pid_t pid;
	int sup[2], pair[2], i, code;

	names[0] = (char *)tenant;
	if ((buf = malloc(IPC_DATAGRAM_MAX)) == NULL ||
	    (w = calloc((size_t)nwriters, sizeof(*w))) == NULL ||
	    (pfd = calloc((size_t)nwriters, sizeof(*pfd))) == NULL ||
	    (lat = calloc((size_t)b->appends + 1, sizeof(*lat))) == NULL)
		die("malloc");
	if (ipc_socketpair(sup) < 0)
		die("socketpair");
	pid = spawn_journald(b, sup[1]);
	close(sup[1]);

	config.durability_full = 1;
	list.n_names = 1;
	list.names = names;
	if (ipc_recv_blocking(sup[0], &m) < 0 || m.hdr.type != IPC_READY)
		die("journald did not send READY");
	ipc_msg_clear(&m);
	if (ipc_send_blocking(
		sup[0], IPC_JOURNAL_CONFIG, 0, &config.base, NULL, 0) < 0 ||
	    ipc_send_blocking(sup[0], IPC_TENANT_LIST, 0, &list.base, NULL, 0) <
		0)
		die("cannot configure journald");
	for (i = 0; i < nwriters; i++) {
		if (ipc_socketpair(pair) < 0)
			die("socketpair");
		attach.kind = PALYRA__IPC__PEER_KIND__PEER_WORKER;
		attach.tenant = (char *)tenant;
		attach.generation = 1;
		attach.index = (uint32_t)i;
		if (ipc_send_blocking(sup[0], IPC_ATTACH_PEER, 0, &attach.base,
			&pair[1], 1) < 0)
			die("cannot attach a worker channel");
		close(pair[1]);
		w[i].fd = pair[0];
		w[i].runs = b->runs / nwriters > 0 ? b->runs / nwriters : 1;
		w[i].appends = b->appends / nwriters;
		w[i].appends -= w[i].appends % w[i].runs;
		if (w[i].appends < 2L * w[i].runs)
			die("too few appends for the writers");
		w[i].window = b->window / nwriters >= 16 ? b->window / nwriters
							 : 16;
		w[i].expect_id = 1;
		if ((w[i].sent_at = calloc((size_t)w[i].window,
			 sizeof(double))) == NULL)
			die("malloc");
		total += w[i].appends;
	}

	t0 = now_s();
	while (acked < total) {
		for (i = 0; i < nwriters; i++) {
			writer_send(b, &w[i], i, buf);
			pfd[i].fd = w[i].fd;
			pfd[i].events =
			    POLLIN | (w[i].send_blocked ? POLLOUT : 0);
			pfd[i].revents = 0;
		}
		if (poll(pfd, (nfds_t)nwriters, 10000) <= 0)
			die("journald stopped acknowledging");
		for (i = 0; i < nwriters; i++) {
			if (pfd[i].revents & POLLOUT)
				w[i].send_blocked = 0;
			if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			acked -= w[i].acked;
			writer_recv(&w[i], buf, lat, &nlat);
			acked += w[i].acked;
		}
	}
	t1 = now_s();
	for (i = 0; i < nwriters; i++)
		failed += w[i].failed;
	*acked_ok = acked - failed;
	qsort(lat, (size_t)nlat, sizeof(*lat), cmp_double);
	*p50_ms = nlat > 0 ? 1000 * lat[nlat / 2] : 0;
	*p99_ms = nlat > 0 ? 1000 * lat[(nlat * 99) / 100] : 0;

	/* EOF on every channel: journald commits, closes and exits 0. */
	for (i = 0; i < nwriters; i++) {
		close(w[i].fd);
		free(w[i].sent_at);
	}
	close(sup[0]);
	if ((code = wait_exit(pid, 10000)) != 0)
		fprintf(stderr, "jbench: journald exited with %d\n", code);
	free(lat);
	free(pfd);
	free(w);
	free(buf);
	return (double)acked / (t1 - t0);
}

int
main(int argc, char **argv)
{
	static const int writers[] = {1, 8, 64};
	struct bench b = {100000, 64, 1024, NULL, 0, ""};
	const char *build = getenv("PALYRA_BUILD");
	char journald[1024], tenant[32];
	double raw, jnl, p50, p99;
	long ok = 0, verified = 0;
	int ch, i, failures = 0;

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
	printf("journal_appends %ld\n", b.appends);
	printf("journal_raw_sqlite_rows_per_s %.0f\n", raw);
	/* A raw transaction of RAW_BATCH rows, for the latency rows. */
	printf("journal_raw_sqlite_commit_ms %.3f\n", 1000.0 * RAW_BATCH / raw);
	for (i = 0; i < (int)(sizeof(writers) / sizeof(writers[0])); i++) {
		snprintf(tenant, sizeof(tenant), TENANT "%d", writers[i]);
		jnl = bench_journald(&b, tenant, writers[i], &ok, &p50, &p99);
		verified = verify_chain(&b, tenant);
		/* The single writer keeps the historical names. */
		if (writers[i] == 1) {
			printf("journal_acked_appends_per_s %.0f\n", jnl);
			printf("journal_ratio_percent %.1f\n",
			    100.0 * jnl / raw);
			printf("journal_appends_ok %ld\n", ok);
			printf("journal_chain_verified %ld\n", verified);
		}
		printf("journal_acked_appends_per_s_w%d %.0f\n", writers[i],
		    jnl);
		printf("journal_ack_p50_ms_w%d %.3f\n", writers[i], p50);
		printf("journal_ack_p99_ms_w%d %.3f\n", writers[i], p99);
		printf("journal_chain_verified_w%d %ld\n", writers[i],
		    verified);
		if (verified != ok || ok <= 0)
			failures++;
	}

	if (!b.keep) {
		char *rm[] = {"rm", "-rf", "--", b.dir, NULL};
		pid_t pid;

		if (posix_spawnp(&pid, "rm", NULL, NULL, rm, environ) != 0 ||
		    wait_exit(pid, 30000) != 0)
			fprintf(stderr, "jbench: cannot remove %s\n", b.dir);
	} else
		fprintf(stderr, "jbench: state kept in %s\n", b.dir);
	return failures == 0 ? 0 : 1;
}
