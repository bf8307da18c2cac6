/*
 * spawn.c: fork + exec of one child with exactly the descriptors its kind
 * gets (common/proc.h). Runs in palyrad. Between fork and exec the child
 * calls only async-signal-safe functions.
 */
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <errno.h>
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
    const char *path, char *const argv[], pid_t parent)
{
	sigset_t all;
	int high[3], n = 0, i, devnull;

	/* Die with the supervisor, even if it is gone before we get here. */
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) == -1 || getppid() != parent)
		_exit(PROC_EXIT_FATAL);
	for (i = 1; i < NSIG; i++)
		if (i != SIGKILL && i != SIGSTOP)
			signal(i, SIG_DFL);
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);

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

int
sup_spawn(struct sup_ctx *ctx, struct sup_child *child, int chan_fd)
{
	char path[sizeof(ctx->libexec) + 64];
	char *argv[10];
	int argc = 0;
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
		argv[argc++] = child->tenant->name;
	}
	if (ctx->verbose)
		argv[argc++] = "-v";
	if (ctx->foreground)
		argv[argc++] = "-d";
	argv[argc] = NULL;

	if ((pid = fork()) == -1) {
		log_error("fork %s: %s", child->label, strerror(errno));
		return -errno;
	}
	if (pid == 0)
		spawn_child(ctx, child, chan_fd, path, argv, parent);
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
