/*
 * spawn.c: fork + exec of one child with exactly the descriptors its kind
 * gets (common/proc.h). Runs in palyrad. Between fork and exec the child
 * calls only async-signal-safe functions.
 *
 * A child enters its control group (supervisor/cgroup.c) before it execs:
 * the parent writes the new pid into the group's cgroup.procs while the
 * child waits on a pipe, and only then lets it go on. The child therefore
 * cannot allocate memory or fork outside its group, which matters in v1,
 * where the pages a task charged before it moved stay charged to the old
 * group, and in both versions for any process forked before the move;
 * writing the pid after fork without that wait would race with the child.
 * The parent writes rather than the child, so that a failure is logged
 * with its path and errno by the process that can log.
 */
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "proc.h"
#include "sup.h"

#define SPAWN_FD_HIGH	64	/* parking place while descriptors move */

/* In the forked child: place fd at target, whatever else was there. */
static int
spawn_place(int fd, int target)
{
	if (fd == target)
		return fcntl(fd, F_SETFD, 0);
	return dup2(fd, target) == -1 ? -1 : 0;
}

static void __attribute__((noreturn))
spawn_child(struct sup_ctx *ctx, struct sup_child *child, int chan_fd,
    const char *path, char *const argv[], pid_t parent, const int gate[2])
{
	sigset_t all;
	ssize_t r;
	char go;
	int high[3], n = 0, i, devnull;

	/* Die with the supervisor, even if it is gone before we get here. */
	/* In a new pid namespace our parent has no pid we can see: 0. */
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) == -1 ||
	    (getppid() != parent && getppid() != 0))
		_exit(PROC_EXIT_FATAL);
	for (i = 1; i < NSIG; i++)
		if (i != SIGKILL && i != SIGSTOP)
			signal(i, SIG_DFL);
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);

	/* Wait until the parent has put us in our control group. EOF means
	 * the parent is gone; SIGTERM (PDEATHSIG) now kills us too. */
	if (gate[0] != -1) {
		close(gate[1]);
		do
			r = read(gate[0], &go, 1);
		while (r == -1 && errno == EINTR);
		if (r != 1)
			_exit(PROC_EXIT_FATAL);
		close(gate[0]);
	}

	/* Park every descriptor we hand down above the targets first, so
	 * that no dup2 overwrites another one still to be placed. */
	high[n++] = fcntl(chan_fd, F_DUPFD, SPAWN_FD_HIGH);
	if (child->kind->pass_listeners) {
		high[n++] = fcntl(ctx->grpc_fd, F_DUPFD, SPAWN_FD_HIGH);
		high[n++] = fcntl(ctx->http_fd, F_DUPFD, SPAWN_FD_HIGH);
	}
	for (i = 0; i < n; i++)
		if (high[i] == -1)
			_exit(PROC_EXIT_FATAL);
	if ((devnull = open("/dev/null", O_RDWR)) == -1 ||
	    spawn_place(devnull, 0) == -1 || spawn_place(devnull, 1) == -1)
		_exit(PROC_EXIT_FATAL);
	if (spawn_place(high[0], PROC_FD_PARENT) == -1)
		_exit(PROC_EXIT_FATAL);
	if (child->kind->pass_listeners &&
	    (spawn_place(high[1], PROC_FD_GRPC_LISTEN) == -1 ||
	    spawn_place(high[2], PROC_FD_HTTP_LISTEN) == -1))
		_exit(PROC_EXIT_FATAL);
	i = child->kind->pass_listeners ? PROC_FD_HTTP_LISTEN + 1 :
	    PROC_FD_PARENT + 1;
	if (syscall(SYS_close_range, (unsigned)i, ~0U, 0) == -1)
		_exit(PROC_EXIT_FATAL);
	execv(path, argv);
	_exit(127);
}

/* Provider hosts passed to a worker: WRK_HTTP_HOSTS_MAX of worker/http.h. */
#define SPAWN_HOSTS_MAX 32

/* The TCP port of a provider's base URL: explicit, or the scheme's. */
static unsigned
url_port(const char *url)
{
	const char *p, *host, *end;
	unsigned long v;
	char *stop;

	if (url == NULL || url[0] == '\0')
		return 0;
	if (strncmp(url, "https://", 8) == 0)
		host = url + 8;
	else if (strncmp(url, "http://", 7) == 0)
		host = url + 7;
	else
		return 0;
	end = host + strcspn(host, "/?#");
	p = host;
	if (*p == '[' && (p = memchr(host, ']', (size_t)(end - host))) == NULL)
		return 0;
	if ((p = memchr(p, ':', (size_t)(end - p))) != NULL && p + 1 < end) {
		v = strtoul(p + 1, &stop, 10);
		return stop == end && v > 0 && v <= 65535 ? (unsigned)v : 0;
	}
	return host == url + 8 ? 443 : 80;
}

/* Adds port once; returns -1 when the table is full (SBX_MAX_PORTS). */
static int
port_add(unsigned *ports, size_t *n, size_t max, unsigned port)
{
	size_t k;

	for (k = 0; k < *n && ports[k] != port; k++)
		;
	if (k < *n)
		return 0;
	if (*n == max)
		return -1;
	ports[(*n)++] = port;
	return 0;
}

/* The http-fetch blocks that apply to a tenant's worker: the tenant's
 * and each agent's (an agent's replaces the tenant's for its runs). */
static const struct cfg_fetch *
tenant_fetch(const struct cfg_tenant *t, size_t i)
{
	if (i == 0)
		return &t->fetch;
	return i - 1 < t->nagents ? &t->agents[i - 1].fetch : NULL;
}

/*
 * The ports a tenant's worker may connect to (Landlock, -P): its agents'
 * providers', and those of its http-fetch allow entries (80 and 443 for an
 * entry without one).
 */
static void
tenant_ports(const struct sup_ctx *ctx, const struct cfg_tenant *t,
    char *buf, size_t len)
{
	unsigned ports[SBX_MAX_PORTS], port;
	size_t i, j, n = 0, used = 0, max = SBX_MAX_PORTS, dropped = 0;
	const struct cfg_provider *p;
	const struct cfg_fetch *f;

	buf[0] = '\0';
	for (i = 0; i < t->nagents; i++)
		for (j = 0; j < t->agents[i].nproviders; j++) {
			p = cfg_provider_find(ctx->cfg,
			    t->agents[i].providers[j]);
			if (p == NULL || p->type == CFG_PROVIDER_OFFLINE ||
			    (port = url_port(p->base_url)) == 0)
				continue;
			if (port_add(ports, &n, max, port) == -1)
				dropped++;
		}
	/* The memory embedder, which may be no agent's provider. */
	if (t->memory.embedder != NULL &&
	    (p = cfg_provider_find(ctx->cfg, t->memory.embedder)) != NULL &&
	    p->type != CFG_PROVIDER_OFFLINE &&
	    (port = url_port(p->base_url)) != 0 &&
	    port_add(ports, &n, max, port) == -1)
		dropped++;
	for (i = 0; (f = tenant_fetch(t, i)) != NULL; i++)
		for (j = 0; f->set && j < f->nallow; j++) {
			if (f->allow[j].port != 0) {
				if (port_add(ports, &n, max,
				    f->allow[j].port) == -1)
					dropped++;
				continue;
			}
			if (port_add(ports, &n, max, 80) == -1 ||
			    port_add(ports, &n, max, 443) == -1)
				dropped++;
		}
	if (dropped > 0)
		log_warn("tenant %s: %zu port(s) beyond the %d a worker may "
		    "connect to are left out", t->name, dropped,
		    SBX_MAX_PORTS);
	for (i = 0; i < n && used + 7 < len; i++)
		used += (size_t)snprintf(buf + used, len - used, "%s%u",
		    i > 0 ? "," : "", ports[i]);
}

/*
 * The "host:port" of a provider's base URL (an IPv6 literal in brackets,
 * userinfo left out), or "" if it has none.
 */
static void
url_hostport(const char *url, char *buf, size_t len)
{
	const char *host, *end, *at, *p;
	unsigned port;
	size_t n;

	buf[0] = '\0';
	if ((port = url_port(url)) == 0)
		return;
	host = strstr(url, "://") + 3;
	end = host + strcspn(host, "/?#");
	for (at = host; (p = memchr(at, '@', (size_t)(end - at))) != NULL;)
		at = p + 1;
	host = at;
	if (*host == '[')
		p = (const char *)memchr(host, ']', (size_t)(end - host)) + 1;
	else if ((p = memchr(host, ':', (size_t)(end - host))) == NULL)
		p = end;
	n = (size_t)(p - host);
	if (n == 0 || n + 7 > len)
		return;
	snprintf(buf, len, "%.*s:%u", (int)n, host, port);
}

/*
 * Appends "host:port" to the comma-separated list in buf unless it is
 * there already. Returns 0, or -1 when the list is full (SPAWN_HOSTS_MAX
 * entries or len bytes).
 */
static int
host_add(char *buf, size_t len, size_t *used, size_t *n, const char *one)
{
	size_t olen = strlen(one);
	const char *seen;

	if (olen == 0)
		return 0;
	/* Already listed? Compare whole items. */
	for (seen = buf; (seen = strstr(seen, one)) != NULL; seen += olen)
		if ((seen == buf || seen[-1] == ',') &&
		    (seen[olen] == ',' || seen[olen] == '\0'))
			return 0;
	if (*n == SPAWN_HOSTS_MAX || *used + olen + 2 > len)
		return -1;
	*used += (size_t)snprintf(buf + *used, len - *used, "%s%s",
	    *used > 0 ? "," : "", one);
	(*n)++;
	return 0;
}

static int
numeric_host(const char *host)
{
	struct in6_addr a6;
	struct in_addr a4;

	return inet_pton(AF_INET, host, &a4) == 1 ||
	    inet_pton(AF_INET6, host, &a6) == 1;
}

/*
 * The host names a tenant's worker resolves and pins before its sandbox
 * (palyra-worker -H): its agents' providers' "host:port"s first, then the
 * names of its http-fetch allow entries (host:80 and host:443 for an entry
 * without a port). Addresses need no pin. What does not fit the worker's
 * table (WRK_HTTP_HOSTS_MAX) is left out with a warning: http.fetch then
 * refuses that host.
 */
static void
tenant_hosts(const struct sup_ctx *ctx, const struct cfg_tenant *t,
    char *buf, size_t len)
{
	char one[300];
	size_t i, j, used = 0, n = 0, dropped = 0;
	const struct cfg_provider *p;
	const struct cfg_fetch *f;
	const struct cfg_fetch_allow *a;

	buf[0] = '\0';
	for (i = 0; i < t->nagents; i++)
		for (j = 0; j < t->agents[i].nproviders; j++) {
			p = cfg_provider_find(ctx->cfg,
			    t->agents[i].providers[j]);
			if (p == NULL || p->type == CFG_PROVIDER_OFFLINE)
				continue;
			url_hostport(p->base_url, one, sizeof(one));
			if (host_add(buf, len, &used, &n, one) == -1)
				dropped++;
		}
	/* The memory embedder, which may be no agent's provider. */
	if (t->memory.embedder != NULL &&
	    (p = cfg_provider_find(ctx->cfg, t->memory.embedder)) != NULL &&
	    p->type != CFG_PROVIDER_OFFLINE) {
		url_hostport(p->base_url, one, sizeof(one));
		if (host_add(buf, len, &used, &n, one) == -1)
			dropped++;
	}
	for (i = 0; (f = tenant_fetch(t, i)) != NULL; i++)
		for (j = 0; f->set && j < f->nallow; j++) {
			a = &f->allow[j];
			if (numeric_host(a->host))
				continue;
			if (a->port != 0) {
				snprintf(one, sizeof(one), "%s:%u", a->host,
				    a->port);
				if (host_add(buf, len, &used, &n, one) == -1)
					dropped++;
				continue;
			}
			snprintf(one, sizeof(one), "%s:80", a->host);
			if (host_add(buf, len, &used, &n, one) == -1)
				dropped++;
			snprintf(one, sizeof(one), "%s:443", a->host);
			if (host_add(buf, len, &used, &n, one) == -1)
				dropped++;
		}
	if (dropped > 0)
		log_warn("tenant %s: %zu host:port pair(s) beyond the %d a "
		    "worker pins are left out; http.fetch refuses them",
		    t->name, dropped, SPAWN_HOSTS_MAX);
}

int
sup_spawn(struct sup_ctx *ctx, struct sup_child *child, int chan_fd)
{
	char path[sizeof(ctx->libexec) + 64], ids[32], scratch[4096];
	char ports[SBX_MAX_PORTS * 6 + 1], idle[32];
	char hosts[SPAWN_HOSTS_MAX * 300];
	char *argv[22];
	int argc = 0, gate[2] = { -1, -1 };
	pid_t pid, parent = getpid();

	snprintf(path, sizeof(path), "%s/%s", ctx->libexec,
	    child->kind->executable);
	argv[argc++] = (char *)child->kind->executable;
	if (child->kind->id == SUP_KIND_JOURNALD) {
		argv[argc++] = "-s";
		argv[argc++] = ctx->cfg->state_dir;
	}
	if (child->kind->per_tenant) {
		argv[argc++] = "-t";
		argv[argc++] = child->tenant_name;
		sup_scratch_path(ctx, child->tenant_name, scratch,
		    sizeof(scratch));
		argv[argc++] = "-w";
		argv[argc++] = scratch;
		tenant_ports(ctx, child->tenant, ports, sizeof(ports));
		if (ports[0] != '\0') {
			argv[argc++] = "-P";
			argv[argc++] = ports;
		}
		tenant_hosts(ctx, child->tenant, hosts, sizeof(hosts));
		if (hosts[0] != '\0') {
			argv[argc++] = "-H";
			argv[argc++] = hosts;
		}
		/* Read at each start: a reload's new value applies to the
		 * workers started after it. */
		if (child->tenant->idle_timeout_ms != 0) {
			snprintf(idle, sizeof(idle), "%llu", (unsigned long long)
			    child->tenant->idle_timeout_ms);
			argv[argc++] = "-i";
			argv[argc++] = idle;
		}
	}
	if (child->uid != (uid_t)-1) {
		snprintf(ids, sizeof(ids), "%u:%u", (unsigned)child->uid,
		    (unsigned)child->gid);
		argv[argc++] = "-U";
		argv[argc++] = ids;
	}
	if (ctx->verbose)
		argv[argc++] = "-v";
	if (ctx->foreground)
		argv[argc++] = "-d";
	argv[argc] = NULL;

	/* Without a group (none, or it cannot be made) the child starts at
	 * once; child->cgroup says why. */
	if (sup_cgroup_prepare(ctx, child) == 0 &&
	    pipe2(gate, O_CLOEXEC) == -1) {
		log_error("pipe %s: %s", child->label, strerror(errno));
		return -errno;
	}
	/*
	 * As root, every child starts as pid 1 of a pid namespace of its own:
	 * it cannot see or signal any other process by pid. clone() with no
	 * new stack behaves like fork() here; the supervisor has one thread.
	 */
	if (ctx->root)
		pid = (pid_t)syscall(SYS_clone, CLONE_NEWPID | SIGCHLD, NULL,
		    NULL, NULL, NULL);
	else
		pid = fork();
	if (pid == -1) {
		int saved = errno;

		log_error("fork %s: %s", child->label, strerror(saved));
		if (gate[0] != -1) {
			close(gate[0]);
			close(gate[1]);
		}
		return -saved;
	}
	if (pid == 0)
		spawn_child(ctx, child, chan_fd, path, argv, parent, gate);
	if (gate[0] != -1) {
		close(gate[0]);
		(void)sup_cgroup_enter(ctx, child, pid);
		/* A child already dead makes this fail (EPIPE; SIGPIPE is
		 * ignored); its pidfd reports the death. */
		if (write(gate[1], "", 1) != 1)
			log_debug("%s: pid %d gone before exec", child->label,
			    (int)pid);
		close(gate[1]);
	}
	child->pid = pid;
	child->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (child->pidfd == -1) {
		int saved = errno;

		log_error("pidfd_open %s: %s", child->label,
		    strerror(saved));
		kill(pid, SIGKILL);
		(void)waitpid(pid, NULL, 0);
		child->pid = 0;
		return -saved;
	}
	fcntl(child->pidfd, F_SETFD, FD_CLOEXEC);
	return 0;
}
