/*
 * sandbox.c: sbx_apply(), the orchestration of the sandbox every palyrad
 * child applies right after exec; its profiles, the parsers of -U and -P,
 * the facts reported to the supervisor, and the process limits step
 * (PR_SET_PDEATHSIG, PR_SET_DUMPABLE, rlimits, no_new_privs).
 *
 * Runs in palyra-worker, palyra-journald and palyra-front, once, while the
 * process has a single thread. Touches only the calling process.
 * The steps live in sandbox_ids.c (directory, namespaces, ids, chroot,
 * capabilities), sandbox_landlock.c and sandbox_seccomp.c.
 */
#include <sys/prctl.h>
#include <sys/resource.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "sandbox.h"
#include "sandbox_int.h"

void
sbx_facts_init(struct sbx_facts *f)
{
	memset(f, 0, sizeof(*f));
}

static void
fact_add(char (*list)[SBX_FACT_LEN], char **ptrs, size_t *n, const char *fmt,
    va_list ap)
{
	if (*n >= SBX_FACTS_MAX)
		return;
	vsnprintf(list[*n], SBX_FACT_LEN, fmt, ap);
	ptrs[*n] = list[*n];
	(*n)++;
}

void
sbx_fact_applied(struct sbx_facts *f, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fact_add(f->applied, f->applied_list, &f->napplied, fmt, ap);
	va_end(ap);
	log_debug("sandbox: applied %s", f->applied[f->napplied - 1]);
}

void
sbx_fact_skipped(struct sbx_facts *f, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fact_add(f->skipped, f->skipped_list, &f->nskipped, fmt, ap);
	va_end(ap);
	log_warn("sandbox: skipped %s", f->skipped[f->nskipped - 1]);
}

/* Parses a decimal number of at most max, digits only. */
static int
parse_number(
    const char *s, size_t len, unsigned long long max, unsigned long long *out)
{
	unsigned long long v = 0;
	size_t i;

	if (len == 0 || len > 10)
		return -EINVAL;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (unsigned long long)(s[i] - '0');
	}
	if (v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

int
sbx_parse_ids(const char *s, uid_t *uid, gid_t *gid)
{
	/* (uid_t)-1 means "unchanged" to setresuid: never a target. */
	const unsigned long long max = 4294967294ULL;
	unsigned long long u, g;
	const char *colon;

	if (s == NULL || (colon = strchr(s, ':')) == NULL)
		return -EINVAL;
	if (parse_number(s, (size_t)(colon - s), max, &u) < 0 ||
	    parse_number(colon + 1, strlen(colon + 1), max, &g) < 0 || u == 0 ||
	    g == 0)
		return -EINVAL;
	*uid = (uid_t)u;
	*gid = (gid_t)g;
	return 0;
}

int
sbx_parse_ports(const char *s, uint16_t *ports, size_t *nports)
{
	unsigned long long v;
	const char *p = s, *comma;
	size_t len, i, n = 0;

	*nports = 0;
	if (s == NULL || *s == '\0')
		return -EINVAL;
	for (;;) {
		comma = strchr(p, ',');
		len = comma != NULL ? (size_t)(comma - p) : strlen(p);
		if (len > 5 || parse_number(p, len, 65535, &v) < 0 || v == 0)
			return -EINVAL;
		for (i = 0; i < n && ports[i] != v; i++)
			;
		if (i == n) {
			if (n >= SBX_MAX_PORTS)
				return -EINVAL;
			ports[n++] = (uint16_t)v;
		}
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	*nports = n;
	return 0;
}

static int
profile_ids(struct sbx_profile *p, const char *ids)
{
	if (ids == NULL)
		return 0;
	if (sbx_parse_ids(ids, &p->uid, &p->gid) < 0)
		return -EINVAL;
	p->set_ids = 1;
	return 0;
}

/*
 * The worker keeps the host network for provider egress; Landlock leaves it
 * TCP connect to its providers' ports only, and files in its scratch dir
 * (with the tzdata read-only inside it).
 */
int
sbx_profile_worker(
    struct sbx_profile *p, const char *ids, const char *dir, const char *ports)
{
	memset(p, 0, sizeof(*p));
	p->name = "worker";
	p->namespaces = SBX_NS_USER | SBX_NS_MOUNT | SBX_NS_IPC;
	p->dir = dir;
	p->nofile = SBX_NOFILE_WORKER;
	p->fsize = SBX_FSIZE_WORKER;
	p->syscalls = SBX_SYS_FILES | SBX_SYS_CONNECT | SBX_SYS_THREADS;
	p->ro_dirs[p->nro_dirs++] = SBX_ZONEINFO_DIR;
	if (ports != NULL &&
	    sbx_parse_ports(ports, p->connect_ports, &p->nconnect_ports) < 0)
		return -EINVAL;
	return profile_ids(p, ids);
}

/* journald: its state directory (with the tzdata read-only inside it), no
 * network at all. */
int
sbx_profile_journald(
    struct sbx_profile *p, const char *ids, const char *state_dir)
{
	memset(p, 0, sizeof(*p));
	p->name = "journald";
	p->namespaces =
	    SBX_NS_USER | SBX_NS_MOUNT | SBX_NS_PID | SBX_NS_IPC | SBX_NS_NET;
	p->dir = state_dir;
	p->nofile = SBX_NOFILE_JOURNALD;
	p->fsize = RLIM_INFINITY;
	p->syscalls = SBX_SYS_FILES;
	p->ro_dirs[p->nro_dirs++] = SBX_ZONEINFO_DIR;
	return profile_ids(p, ids);
}

/* The front: its inherited listeners and channels, no file, no connect. */
int
sbx_profile_front(struct sbx_profile *p, const char *ids)
{
	memset(p, 0, sizeof(*p));
	p->name = "front";
	p->namespaces =
	    SBX_NS_USER | SBX_NS_MOUNT | SBX_NS_PID | SBX_NS_IPC | SBX_NS_NET;
	p->dir = NULL;
	p->nofile = SBX_NOFILE_FRONT;
	p->fsize = RLIM_INFINITY;
	p->syscalls = SBX_SYS_ACCEPT;
	return profile_ids(p, ids);
}

/* Sets soft and hard limit to v, or to the hard limit if that is lower:
 * without capabilities a hard limit can only go down. */
static int
limit_set(int resource, const char *name, rlim_t v, struct sbx_facts *f)
{
	struct rlimit rl;

	if (getrlimit(resource, &rl) == -1)
		return -errno;
	if (rl.rlim_max != RLIM_INFINITY &&
	    (v == RLIM_INFINITY || v > rl.rlim_max))
		v = rl.rlim_max;
	rl.rlim_cur = rl.rlim_max = v;
	if (setrlimit(resource, &rl) == -1)
		return -errno;
	sbx_fact_applied(f, "rlimit %s %llu", name, (unsigned long long)v);
	return 0;
}

int
sbx_limits_apply(const struct sbx_profile *p, struct sbx_facts *f, pid_t parent)
{
	int rc;

	/* Every change of ids above cleared the death signal: set it now. */
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) == -1)
		return -errno;
	if (getppid() != parent)
		return -ESRCH; /* the supervisor died meanwhile */
	sbx_fact_applied(f, "pdeathsig");
	if (prctl(PR_SET_DUMPABLE, 0) == -1)
		return -errno;
	sbx_fact_applied(f, "dumpable 0");
	if ((rc = limit_set(RLIMIT_CORE, "core", 0, f)) < 0 ||
	    (rc = limit_set(RLIMIT_NOFILE, "nofile", p->nofile, f)) < 0)
		return rc;
	if (p->fsize != RLIM_INFINITY) {
		/* An oversized write fails with EFBIG, the process lives. */
		signal(SIGXFSZ, SIG_IGN);
		if ((rc = limit_set(RLIMIT_FSIZE, "fsize", p->fsize, f)) < 0)
			return rc;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		return -errno;
	sbx_fact_applied(f, "no_new_privs");
	return 0;
}

int
sbx_apply(const struct sbx_profile *p, struct sbx_facts *f)
{
	pid_t parent = getppid();
	int dir_fd = -1, rc;

	if ((rc = sbx_ids_apply(p, f, &dir_fd)) < 0) {
		log_error("sandbox %s: namespaces and ids: %s", p->name,
		    strerror(-rc));
		goto out;
	}
	if ((rc = sbx_limits_apply(p, f, parent)) < 0) {
		log_error(
		    "sandbox %s: process limits: %s", p->name, strerror(-rc));
		goto out;
	}
	if ((rc = sbx_landlock_apply(p, f, dir_fd)) < 0) {
		log_error("sandbox %s: landlock: %s", p->name, strerror(-rc));
		goto out;
	}
	if ((rc = sbx_seccomp_apply(p, f)) < 0) {
		log_error("sandbox %s: seccomp: %s", p->name, strerror(-rc));
		goto out;
	}
	log_info("sandbox %s: %zu steps applied, %zu skipped", p->name,
	    f->napplied, f->nskipped);
out:
	if (dir_fd != -1)
		close(dir_fd);
	return rc;
}
