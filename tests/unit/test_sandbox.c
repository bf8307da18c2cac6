/*
 * test_sandbox.c: unit tests of common/sandbox*.c, the sandbox of every
 * palyrad child, against the real kernel.
 *
 * Each case forks a child that applies a real profile (or, to prove one
 * layer on its own, only that layer's step) and then tries one forbidden
 * thing; the parent asserts the outcome: an errno, or death by SIGSYS for
 * the calls seccomp kills. Each protection has a case that applies it
 * alone, so removing it from sbx_apply() makes that case fail.
 *
 * Runs as root in CI (the uid switch needs it); as non-root the cases that
 * depend on the uid switch are skipped.
 */
#include <sys/ptrace.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"
#include "sandbox.h"
#include "sandbox_int.h"

#define WORKER_UID 299990
#define OTHER_UID 299991
#define JOURNALD_UID 299992
#define FRONT_UID 299993
#define CHILD_TIMEOUT_S 10
#define EXIT_SANDBOX_FAILED 250
#define EXIT_SUCCEEDED 0 /* the forbidden thing worked */

enum layer {
	LAYER_ALL = 0,	/* sbx_apply(): the real thing */
	LAYER_IDS,	/* namespaces, ids, chroot, caps, limits, nnp */
	LAYER_LANDLOCK, /* no_new_privs + Landlock only */
	LAYER_SECCOMP,	/* no_new_privs + seccomp only */
};

enum kind { WORKER, JOURNALD, FRONT };

/* Fixture shared by every case, made once in main(). */
static struct {
	char top[64];	    /* /tmp/palyra-sbx-XXXXXX, 0700 root */
	char scratch[128];  /* the worker's, owned by WORKER_UID */
	char other[128];    /* another tenant's, owned by OTHER_UID */
	char other_db[160]; /* a file standing in for journal.db */
	char state[128];    /* journald's, owned by JOURNALD_UID */
	char state_db[160]; /* system.db stand-in */
	char outside[160];  /* a path in /tmp outside every directory */
	int allowed_fd;	    /* listening on 127.0.0.1:allowed_port */
	int forbidden_fd;   /* listening on 127.0.0.1:forbidden_port */
	uint16_t allowed_port;
	uint16_t forbidden_port;
	int root;
} fx;

static int
listen_loopback(uint16_t *port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof(sin);
	int fd;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    listen(fd, 16) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) == -1)
		return -1;
	*port = ntohs(sin.sin_port);
	return fd;
}

static int
fixture_make(void)
{
	int fd;

	fx.root = geteuid() == 0;
	snprintf(fx.top, sizeof(fx.top), "/tmp/palyra-sbx-XXXXXX");
	if (mkdtemp(fx.top) == NULL)
		return -1;
	snprintf(fx.scratch, sizeof(fx.scratch), "%s/scratch", fx.top);
	snprintf(fx.other, sizeof(fx.other), "%s/other", fx.top);
	snprintf(fx.other_db, sizeof(fx.other_db), "%s/journal.db", fx.other);
	snprintf(fx.state, sizeof(fx.state), "%s/state", fx.top);
	snprintf(fx.state_db, sizeof(fx.state_db), "%s/system.db", fx.state);
	snprintf(fx.outside, sizeof(fx.outside), "%s/outside", fx.top);
	if (mkdir(fx.scratch, 0700) == -1 || mkdir(fx.other, 0700) == -1 ||
	    mkdir(fx.state, 0700) == -1)
		return -1;
	if ((fd = open(fx.other_db, O_CREAT | O_WRONLY, 0600)) == -1 ||
	    write(fd, "other tenant", 12) != 12 || close(fd) == -1)
		return -1;
	if ((fd = open(fx.state_db, O_CREAT | O_WRONLY, 0600)) == -1 ||
	    write(fd, "tokens", 6) != 6 || close(fd) == -1)
		return -1;
	if (fx.root &&
	    (chown(fx.scratch, WORKER_UID, WORKER_UID) == -1 ||
		chown(fx.other, OTHER_UID, OTHER_UID) == -1 ||
		chown(fx.other_db, OTHER_UID, OTHER_UID) == -1 ||
		chown(fx.state, JOURNALD_UID, JOURNALD_UID) == -1 ||
		chown(fx.state_db, JOURNALD_UID, JOURNALD_UID) == -1))
		return -1;
	if ((fx.allowed_fd = listen_loopback(&fx.allowed_port)) == -1 ||
	    (fx.forbidden_fd = listen_loopback(&fx.forbidden_port)) == -1)
		return -1;
	return 0;
}

static void
fixture_remove(void)
{
	char cmd[128];

	close(fx.allowed_fd);
	close(fx.forbidden_fd);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx.top);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", fx.top);
}

static void
profile_make(enum kind kind, struct sbx_profile *p)
{
	char ids[32], ports[16];
	int rc = -1;

	switch (kind) {
	case WORKER:
		snprintf(ids, sizeof(ids), "%d:%d", WORKER_UID, WORKER_UID);
		snprintf(ports, sizeof(ports), "%u", fx.allowed_port);
		rc = sbx_profile_worker(
		    p, fx.root ? ids : NULL, fx.scratch, ports);
		break;
	case JOURNALD:
		snprintf(ids, sizeof(ids), "%d:%d", JOURNALD_UID, JOURNALD_UID);
		rc = sbx_profile_journald(p, fx.root ? ids : NULL, fx.state);
		break;
	case FRONT:
		snprintf(ids, sizeof(ids), "%d:%d", FRONT_UID, FRONT_UID);
		rc = sbx_profile_front(p, fx.root ? ids : NULL);
		break;
	}
	if (rc != 0)
		_exit(EXIT_SANDBOX_FAILED);
}

/* In the child: applies the profile of kind, or one layer of it. */
static void
child_sandbox(enum kind kind, enum layer layer)
{
	struct sbx_profile p;
	struct sbx_facts f;
	int dir_fd = -1, rc = 0;

	alarm(CHILD_TIMEOUT_S);
	profile_make(kind, &p);
	sbx_facts_init(&f);
	switch (layer) {
	case LAYER_ALL:
		rc = sbx_apply(&p, &f);
		break;
	case LAYER_IDS:
		rc = sbx_ids_apply(&p, &f, &dir_fd);
		if (rc == 0)
			rc = sbx_limits_apply(&p, &f, getppid());
		break;
	case LAYER_LANDLOCK:
		if (p.dir != NULL)
			dir_fd = open(p.dir, O_PATH | O_DIRECTORY);
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
			rc = -errno;
		if (rc == 0)
			rc = sbx_landlock_apply(&p, &f, dir_fd);
		if (f.nskipped > 0)
			rc = -ENOSYS; /* this kernel cannot prove it */
		break;
	case LAYER_SECCOMP:
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
			rc = -errno;
		if (rc == 0)
			rc = sbx_seccomp_apply(&p, &f);
		break;
	}
	if (rc != 0)
		_exit(EXIT_SANDBOX_FAILED);
}

/* Runs action in a sandboxed child; returns its wait status. */
static int
run_child(enum kind kind, enum layer layer, int (*action)(void))
{
	pid_t pid;
	int status;

	pid = fork();
	assert_true(pid != -1);
	if (pid == 0) {
		child_sandbox(kind, layer);
		_exit(action());
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

/* The child's action result: 0 (it worked) or the errno it failed with. */
static int
expect_errno(enum kind kind, enum layer layer, int (*action)(void))
{
	int status = run_child(kind, layer, action);

	if (!WIFEXITED(status))
		fail_msg("child died by signal %d", WTERMSIG(status));
	if (WEXITSTATUS(status) == EXIT_SANDBOX_FAILED)
		fail_msg("the sandbox could not be applied");
	return WEXITSTATUS(status);
}

static void
expect_sigsys(enum kind kind, enum layer layer, int (*action)(void))
{
	int status = run_child(kind, layer, action);

	if (WIFEXITED(status))
		fail_msg("child exited %d instead of dying by SIGSYS",
		    WEXITSTATUS(status));
	assert_int_equal(WTERMSIG(status), SIGSYS);
}

static int
errno_or_zero(int failed)
{
	return failed ? (errno != 0 ? errno : 255) : EXIT_SUCCEEDED;
}

static void
need_root(void)
{
	if (!fx.root)
		skip();
}

/* Actions, run inside the sandbox. */

static int
open_read(const char *path)
{
	int fd = open(path, O_RDONLY);

	if (fd != -1)
		close(fd);
	return errno_or_zero(fd == -1);
}

static int
act_shadow(void)
{
	return open_read("/etc/shadow");
}

static int
act_other_tenant(void)
{
	return open_read(fx.other_db);
}

static int
act_other_dir(void)
{
	int fd = open(fx.other, O_RDONLY | O_DIRECTORY);

	return errno_or_zero(fd == -1);
}

static int
act_state_db(void)
{
	return open_read(fx.state_db);
}

static int
write_file(const char *path)
{
	int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);

	if (fd == -1)
		return errno_or_zero(1);
	if (write(fd, "x", 1) != 1)
		return errno_or_zero(1);
	return errno_or_zero(close(fd) == -1);
}

static int
act_write_outside(void)
{
	return write_file(fx.outside);
}

/* tzdata inside the sandbox: the zone file, and glibc's use of it. */
static int
act_zoneinfo_read(void)
{
	struct tm tm;
	char magic[4];
	time_t t = 1719792000; /* 2024-07-01 00:00 UTC: 02:00 in Paris */
	int fd;

	if ((fd = open(SBX_ZONEINFO_DIR "/Europe/Paris", O_RDONLY)) == -1)
		return errno;
	if (read(fd, magic, sizeof(magic)) != 4 ||
	    memcmp(magic, "TZif", 4) != 0) {
		close(fd);
		return 200;
	}
	close(fd);
	if (setenv("TZ", "Europe/Paris", 1) == -1)
		return errno;
	tzset();
	if (localtime_r(&t, &tm) == NULL)
		return 201;
	return tm.tm_gmtoff == 7200 && tm.tm_hour == 2 ? 0 : 202;
}

static int
act_zoneinfo_write(void)
{
	return write_file(SBX_ZONEINFO_DIR "/palyra-test");
}

/* Relative to the cwd, which the full profile made the directory. */
static int
act_write_inside_relative(void)
{
	int rc = write_file("inside");

	return rc != 0 ? rc : errno_or_zero(unlink("inside") == -1);
}

static int
act_write_inside_scratch(void)
{
	char path[160];

	snprintf(path, sizeof(path), "%s/inside", fx.scratch);
	return write_file(path);
}

static int
act_write_inside_state(void)
{
	char path[160];

	snprintf(path, sizeof(path), "%s/inside", fx.state);
	return write_file(path);
}

static int
connect_port(uint16_t port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	int fd, rc;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(port);
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return errno_or_zero(1);
	rc = connect(fd, (struct sockaddr *)&sin, sizeof(sin));
	rc = errno_or_zero(rc == -1);
	close(fd);
	return rc;
}

static int
act_connect_allowed(void)
{
	return connect_port(fx.allowed_port);
}

static int
act_connect_forbidden(void)
{
	return connect_port(fx.forbidden_port);
}

static int
act_execve(void)
{
	char *const argv[] = {"true", NULL};

	execve("/bin/true", argv, NULL);
	return errno_or_zero(1);
}

static int
act_setuid0(void)
{
	return errno_or_zero(setuid(0) == -1);
}

static int
act_fork(void)
{
	pid_t pid = fork();

	if (pid == 0)
		_exit(0);
	if (pid > 0)
		(void)waitpid(pid, NULL, 0);
	return errno_or_zero(pid == -1);
}

static void *
thread_main(void *arg)
{
	return arg;
}

static int
act_thread(void)
{
	pthread_t t;
	int rc = pthread_create(&t, NULL, thread_main, NULL);

	if (rc != 0)
		return rc;
	return pthread_join(t, NULL);
}

static int
act_mmap_exec(void)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_EXEC,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return errno_or_zero(p == MAP_FAILED);
}

static int
act_open_root_dir(void)
{
	int fd = open("/", O_RDONLY | O_DIRECTORY);

	return errno_or_zero(fd == -1);
}

static int
act_open_passwd(void)
{
	return open_read("/etc/passwd");
}

/* ptrace of a sibling: a process the parent forked, not our child. */
static pid_t sibling;

static int
act_ptrace_sibling(void)
{
	return errno_or_zero(ptrace(PTRACE_ATTACH, sibling, NULL, NULL) == -1);
}

/* Worker. */

static void
test_worker_etc_shadow(void **state)
{
	assert_int_not_equal(expect_errno(WORKER, LAYER_ALL, act_shadow), 0);
	/* Landlock alone: outside the scratch dir nothing is readable. */
	assert_int_equal(
	    expect_errno(WORKER, LAYER_LANDLOCK, act_shadow), EACCES);
}

static void
test_worker_etc_shadow_ids(void **state)
{
	need_root();
	/* The uid switch and the chroot alone: /etc is not even there. */
	assert_int_equal(expect_errno(WORKER, LAYER_IDS, act_shadow), ENOENT);
}

static void
test_worker_other_tenant(void **state)
{
	assert_int_not_equal(
	    expect_errno(WORKER, LAYER_ALL, act_other_tenant), 0);
	assert_int_not_equal(expect_errno(WORKER, LAYER_ALL, act_other_dir), 0);
	assert_int_not_equal(expect_errno(WORKER, LAYER_ALL, act_state_db), 0);
	assert_int_equal(
	    expect_errno(WORKER, LAYER_LANDLOCK, act_other_tenant), EACCES);
	assert_int_equal(
	    expect_errno(WORKER, LAYER_LANDLOCK, act_other_dir), EACCES);
	assert_int_equal(
	    expect_errno(WORKER, LAYER_LANDLOCK, act_state_db), EACCES);
}

static void
test_worker_connect(void **state)
{
	assert_int_equal(
	    expect_errno(WORKER, LAYER_ALL, act_connect_allowed), 0);
	assert_int_equal(
	    expect_errno(WORKER, LAYER_ALL, act_connect_forbidden), EACCES);
	assert_int_equal(
	    expect_errno(WORKER, LAYER_LANDLOCK, act_connect_forbidden),
	    EACCES);
}

static void
test_worker_ptrace_sibling(void **state)
{
	sibling = fork();
	assert_true(sibling != -1);
	if (sibling == 0) {
		alarm(CHILD_TIMEOUT_S);
		pause();
		_exit(0);
	}
	expect_sigsys(WORKER, LAYER_ALL, act_ptrace_sibling);
	expect_sigsys(WORKER, LAYER_SECCOMP, act_ptrace_sibling);
	if (fx.root)
		/* Without seccomp: another uid, no capability. */
		assert_int_equal(
		    expect_errno(WORKER, LAYER_IDS, act_ptrace_sibling), EPERM);
	kill(sibling, SIGKILL);
	waitpid(sibling, NULL, 0);
}

static void
test_worker_execve(void **state)
{
	expect_sigsys(WORKER, LAYER_ALL, act_execve);
	expect_sigsys(WORKER, LAYER_SECCOMP, act_execve);
	/* Landlock alone: no EXECUTE right anywhere. */
	assert_int_equal(
	    expect_errno(WORKER, LAYER_LANDLOCK, act_execve), EACCES);
}

static void
test_worker_write_outside(void **state)
{
	struct stat st;

	assert_int_not_equal(
	    expect_errno(WORKER, LAYER_ALL, act_write_outside), 0);
	assert_int_equal(
	    expect_errno(WORKER, LAYER_ALL, act_write_inside_relative), 0);
	assert_int_equal(
	    expect_errno(WORKER, LAYER_LANDLOCK, act_write_outside), EACCES);
	assert_int_equal(
	    expect_errno(WORKER, LAYER_LANDLOCK, act_write_inside_scratch), 0);
	assert_int_equal(stat(fx.outside, &st), -1);
}

static void
test_worker_setuid0(void **state)
{
	int rc;

	need_root();
	expect_sigsys(WORKER, LAYER_ALL, act_setuid0);
	/* Without seccomp the ids layer still refuses: uid 0 is not mapped
	 * in the user namespace and no capability is left. */
	rc = expect_errno(WORKER, LAYER_IDS, act_setuid0);
	assert_true(rc == EPERM || rc == EINVAL);
}

static void
test_worker_threads_not_processes(void **state)
{
	assert_int_equal(expect_errno(WORKER, LAYER_ALL, act_thread), 0);
	assert_int_equal(expect_errno(WORKER, LAYER_ALL, act_fork), EPERM);
	assert_int_equal(expect_errno(WORKER, LAYER_SECCOMP, act_fork), EPERM);
	assert_int_equal(
	    expect_errno(WORKER, LAYER_SECCOMP, act_mmap_exec), EPERM);
}

/* Reads "Key:\tvalue..." of /proc/pid/status into value. */
static int
status_field(pid_t pid, const char *key, char *value, size_t size)
{
	char path[64], line[256];
	size_t klen = strlen(key);
	FILE *fp;
	int found = 0;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if ((fp = fopen(path, "r")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), fp) != NULL)
		if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
			snprintf(value, size, "%s", line + klen + 1);
			value[strcspn(value, "\n")] = '\0';
			klen = strlen(value);
			while (klen > 0 && value[klen - 1] == ' ')
				value[--klen] = '\0';
			found = 1;
			break;
		}
	fclose(fp);
	return found;
}

static int
same_ns(pid_t pid, const char *ns)
{
	char a[64], b[64], la[64] = "", lb[64] = "";

	snprintf(a, sizeof(a), "/proc/%d/ns/%s", (int)pid, ns);
	snprintf(b, sizeof(b), "/proc/self/ns/%s", ns);
	if (readlink(a, la, sizeof(la) - 1) == -1 ||
	    readlink(b, lb, sizeof(lb) - 1) == -1)
		fail_msg("readlink %s", a);
	return strcmp(la, lb) == 0;
}

static void
test_worker_proc_status(void **state)
{
	int ready[2], hold[2], status;
	char v[128], want[64], c;
	pid_t pid;

	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(hold), 0);
	if ((pid = fork()) == 0) {
		close(ready[0]);
		close(hold[1]);
		child_sandbox(WORKER, LAYER_ALL);
		if (write(ready[1], "r", 1) != 1 || read(hold[0], &c, 1) < 0)
			_exit(1);
		_exit(0);
	}
	close(ready[1]);
	close(hold[0]);
	assert_int_equal(read(ready[0], &c, 1), 1);
	assert_true(status_field(pid, "NoNewPrivs", v, sizeof(v)));
	assert_string_equal(v, "\t1");
	assert_true(status_field(pid, "Seccomp", v, sizeof(v)));
	assert_string_equal(v, "\t2");
	assert_true(status_field(pid, "CapEff", v, sizeof(v)));
	assert_string_equal(v, "\t0000000000000000");
	assert_true(status_field(pid, "CapBnd", v, sizeof(v)));
	assert_string_equal(v, "\t0000000000000000");
	if (fx.root) {
		snprintf(want, sizeof(want), "\t%d\t%d\t%d\t%d", WORKER_UID,
		    WORKER_UID, WORKER_UID, WORKER_UID);
		assert_true(status_field(pid, "Uid", v, sizeof(v)));
		assert_string_equal(v, want);
		assert_true(status_field(pid, "Gid", v, sizeof(v)));
		assert_string_equal(v, want);
		assert_true(status_field(pid, "Groups", v, sizeof(v)));
		snprintf(want, sizeof(want), "\t%d", WORKER_UID);
		assert_string_equal(v, want);
	}
	/* /proc/PID/ns of a non-dumpable process: readable by root only. */
	if (fx.root) {
		assert_false(same_ns(pid, "mnt"));
		assert_false(same_ns(pid, "ipc"));
		assert_false(same_ns(pid, "user"));
		assert_true(same_ns(pid, "net")); /* provider egress */
	}
	close(hold[1]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(ready[0]);
}

/* The facts name what was applied; none is skipped on this kernel. */
static int
act_facts(void)
{
	struct sbx_profile p;
	struct sbx_facts f;
	char uid[32];
	size_t i;
	int seen_uid = 0, seen_ll = 0, seen_sc = 0;

	profile_make(WORKER, &p);
	sbx_facts_init(&f);
	if (sbx_apply(&p, &f) != 0)
		return EXIT_SANDBOX_FAILED;
	snprintf(uid, sizeof(uid), "uid %d", WORKER_UID);
	for (i = 0; i < f.napplied; i++) {
		seen_uid |= strcmp(f.applied_list[i], uid) == 0;
		seen_ll |= strncmp(f.applied_list[i], "landlock abi ", 13) == 0;
		seen_sc |= strcmp(f.applied_list[i],
			       "seccomp allow-list (worker)") == 0;
	}
	if (f.nskipped != 0 || !seen_uid || !seen_ll || !seen_sc)
		return 1;
	return 0;
}

static void
test_worker_facts(void **state)
{
	pid_t pid;
	int status;

	need_root();
	if ((pid = fork()) == 0) {
		alarm(CHILD_TIMEOUT_S);
		_exit(act_facts());
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* journald and front. */

static void
test_journald_files(void **state)
{
	assert_int_equal(
	    expect_errno(JOURNALD, LAYER_ALL, act_write_inside_relative), 0);
	assert_int_not_equal(
	    expect_errno(JOURNALD, LAYER_ALL, act_write_outside), 0);
	assert_int_not_equal(
	    expect_errno(JOURNALD, LAYER_ALL, act_other_tenant), 0);
	assert_int_equal(
	    expect_errno(JOURNALD, LAYER_LANDLOCK, act_write_inside_state), 0);
	assert_int_equal(
	    expect_errno(JOURNALD, LAYER_LANDLOCK, act_write_outside), EACCES);
	assert_int_equal(
	    expect_errno(JOURNALD, LAYER_LANDLOCK, act_shadow), EACCES);
}

static void
test_journald_no_network(void **state)
{
	/* seccomp: no socket at all. */
	assert_int_equal(
	    expect_errno(JOURNALD, LAYER_ALL, act_connect_allowed), EPERM);
	assert_int_equal(
	    expect_errno(JOURNALD, LAYER_SECCOMP, act_connect_allowed), EPERM);
	/* Landlock alone: no TCP port is allowed. */
	assert_int_equal(
	    expect_errno(JOURNALD, LAYER_LANDLOCK, act_connect_allowed),
	    EACCES);
}

static void
test_journald_net_namespace(void **state)
{
	need_root();
	/* The ids layer alone: an empty network namespace, loopback down. */
	assert_int_equal(expect_errno(JOURNALD, LAYER_IDS, act_connect_allowed),
	    ENETUNREACH);
}

static void
test_front_no_files(void **state)
{
	assert_int_equal(
	    expect_errno(FRONT, LAYER_ALL, act_open_passwd), EPERM);
	assert_int_equal(
	    expect_errno(FRONT, LAYER_ALL, act_open_root_dir), EPERM);
	assert_int_equal(
	    expect_errno(FRONT, LAYER_SECCOMP, act_open_passwd), EPERM);
	/* Landlock alone: not one path. */
	assert_int_equal(
	    expect_errno(FRONT, LAYER_LANDLOCK, act_open_passwd), EACCES);
	assert_int_equal(
	    expect_errno(FRONT, LAYER_LANDLOCK, act_open_root_dir), EACCES);
	assert_int_equal(
	    expect_errno(FRONT, LAYER_LANDLOCK, act_write_outside), EACCES);
}

static void
test_front_empty_root(void **state)
{
	need_root();
	/* The ids layer alone: the root is an empty tmpfs. */
	assert_int_equal(
	    expect_errno(FRONT, LAYER_IDS, act_open_passwd), ENOENT);
}

static void
test_front_no_connect(void **state)
{
	assert_int_equal(
	    expect_errno(FRONT, LAYER_ALL, act_connect_allowed), EPERM);
	assert_int_equal(
	    expect_errno(FRONT, LAYER_LANDLOCK, act_connect_allowed), EACCES);
	expect_sigsys(FRONT, LAYER_ALL, act_execve);
}

/* The tzdata, read-only, inside the worker's and journald's roots. */
static void
test_zoneinfo(void **state)
{
	/* As root or not: a user namespace may bind read-only too. */
	assert_int_equal(expect_errno(WORKER, LAYER_ALL, act_zoneinfo_read), 0);
	assert_int_equal(
	    expect_errno(WORKER, LAYER_ALL, act_zoneinfo_write), EROFS);
	assert_int_equal(
	    expect_errno(JOURNALD, LAYER_ALL, act_zoneinfo_read), 0);
	assert_int_equal(
	    expect_errno(JOURNALD, LAYER_ALL, act_zoneinfo_write), EROFS);
	/* The ids layer alone (chroot, no Landlock): still there. */
	assert_int_equal(expect_errno(WORKER, LAYER_IDS, act_zoneinfo_read), 0);
}

/* A symlink planted where the mount point goes is never followed: the
 * bind is skipped and nothing is created or mounted where it points. */
static void
test_zoneinfo_symlink(void **state)
{
	char link[192], target[192], made[256];
	struct stat st;

	need_root();
	snprintf(link, sizeof(link), "%s/usr", fx.state);
	snprintf(target, sizeof(target), "%s/elsewhere", fx.top);
	snprintf(made, sizeof(made), "%s/share", target);
	(void)rmdir(made);
	assert_int_equal(mkdir(target, 0755), 0);
	if (lstat(link, &st) == 0) {
		char cmd[256];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", link);
		assert_int_equal(system(cmd), 0);
	}
	assert_int_equal(symlink(target, link), 0);
	/* Inside the chroot the link leads nowhere. */
	assert_int_equal(
	    expect_errno(JOURNALD, LAYER_ALL, act_zoneinfo_read), ENOENT);
	assert_int_equal(stat(made, &st), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(unlink(link), 0);
	assert_int_equal(rmdir(target), 0);
}

/* Parsers of -U and -P. */

static void
test_parse_ids(void **state)
{
	static const char *const bad[] = {"", ":", "1", "1:", ":1", "0:5",
	    "5:0", "-1:5", "+1:5", " 1:5", "1:5 ", "1:5:6", "4294967295:1",
	    "99999999999:1", "1x:2", "0x10:2"};
	uid_t u;
	gid_t g;
	size_t i;

	assert_int_equal(sbx_parse_ids("200002:200003", &u, &g), 0);
	assert_int_equal(u, 200002);
	assert_int_equal(g, 200003);
	assert_int_equal(sbx_parse_ids("4294967294:1", &u, &g), 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (sbx_parse_ids(bad[i], &u, &g) != -EINVAL)
			fail_msg("\"%s\" accepted", bad[i]);
}

static void
test_parse_ports(void **state)
{
	static const char *const bad[] = {"", ",", "443,", ",443", "0", "65536",
	    "443,,80", "-1", "+443", "44 3", "443 ", "123456", "0x50"};
	uint16_t ports[SBX_MAX_PORTS];
	char many[SBX_MAX_PORTS * 6 + 16] = "";
	size_t n, i;

	assert_int_equal(sbx_parse_ports("443,8080,443,1,65535", ports, &n), 0);
	assert_int_equal(n, 4);
	assert_int_equal(ports[0], 443);
	assert_int_equal(ports[1], 8080);
	assert_int_equal(ports[2], 1);
	assert_int_equal(ports[3], 65535);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (sbx_parse_ports(bad[i], ports, &n) != -EINVAL)
			fail_msg("\"%s\" accepted", bad[i]);
	for (i = 1; i <= SBX_MAX_PORTS + 1; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many),
		    "%s%zu", i > 1 ? "," : "", i);
	assert_int_equal(sbx_parse_ports(many, ports, &n), -EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_ids),
	    cmocka_unit_test(test_parse_ports),
	    cmocka_unit_test(test_worker_etc_shadow),
	    cmocka_unit_test(test_worker_etc_shadow_ids),
	    cmocka_unit_test(test_worker_other_tenant),
	    cmocka_unit_test(test_worker_connect),
	    cmocka_unit_test(test_worker_ptrace_sibling),
	    cmocka_unit_test(test_worker_execve),
	    cmocka_unit_test(test_worker_write_outside),
	    cmocka_unit_test(test_worker_setuid0),
	    cmocka_unit_test(test_worker_threads_not_processes),
	    cmocka_unit_test(test_worker_proc_status),
	    cmocka_unit_test(test_worker_facts),
	    cmocka_unit_test(test_journald_files),
	    cmocka_unit_test(test_journald_no_network),
	    cmocka_unit_test(test_journald_net_namespace),
	    cmocka_unit_test(test_front_no_files),
	    cmocka_unit_test(test_front_empty_root),
	    cmocka_unit_test(test_front_no_connect),
	    cmocka_unit_test(test_zoneinfo),
	    cmocka_unit_test(test_zoneinfo_symlink),
	};
	int rc;

	/* Only warnings from the sandbox (skipped steps) reach stderr. */
	log_init("test_sandbox", NULL, 0, 1);
	if (fixture_make() != 0) {
		perror("test_sandbox: fixture");
		return 1;
	}
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	fixture_remove();
	return rc;
}
