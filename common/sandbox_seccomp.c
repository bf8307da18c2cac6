/*
 * sandbox_seccomp.c: the last step of sbx_apply(): a seccomp allow-list
 * built with libseccomp. A call not listed fails with EPERM; the calls
 * that only an attacker makes (exec, ptrace, mount, modules, keys, bpf,
 * namespaces, id changes, ...) kill the whole process with SIGSYS.
 *
 * Runs in palyra-worker, palyra-journald and palyra-front, once, after
 * no_new_privs and Landlock. Touches only the calling process's filter.
 *
 * The lists are by name and resolved for the running architecture; a name
 * this architecture or libseccomp does not know is simply not added (it
 * cannot be called then either, except as "not listed": EPERM).
 */
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#include <linux/netlink.h>
#include <linux/sched.h>

#include <errno.h>
#include <sched.h>
#include <seccomp.h>
#include <stddef.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "log.h"
#include "sandbox.h"
#include "sandbox_int.h"

#ifndef PR_SET_VMA
#define PR_SET_VMA 0x53564d41
#endif

/* The lists stay as dense as they read best. */
/* clang-format off */
/* Kill the process: no production path makes these calls. */
static const char *const kill_list[] = {
    "execve", "execveat", "ptrace", "process_vm_readv", "process_vm_writev",
    "mount", "umount2", "pivot_root", "chroot", "init_module",
    "finit_module", "delete_module", "kexec_load", "kexec_file_load",
    "keyctl", "add_key", "request_key", "bpf", "perf_event_open",
    "userfaultfd", "setns", "unshare", "reboot", "swapon", "swapoff",
    "acct", "quotactl", "quotactl_fd", "personality",
    /* The ids were switched for good before this filter. */
    "setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid",
    "setfsuid", "setfsgid", "setgroups",
    /* The new mount API, file handles, raw I/O ports, io_uring (whose
     * operations seccomp would not see). */
    "fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree",
    "mount_setattr", "open_by_handle_at", "name_to_handle_at", "iopl",
    "ioperm", "io_uring_setup", "io_uring_enter", "io_uring_register",
};

/* Every process: memory, time, signals to itself, its descriptors, IPC
 * channels (sendmsg/recvmsg with SCM_RIGHTS), libevent's epoll loop. */
static const char *const base_list[] = {
    "read", "write", "readv", "writev", "pread64", "pwrite64", "preadv",
    "pwritev", "close", "lseek", "fstat", "newfstatat", "statx", "fcntl",
    "dup", "dup3", "pipe2", "eventfd2", "signalfd4",
    "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "epoll_pwait2",
    "poll", "ppoll", "select", "pselect6",
    "timerfd_create", "timerfd_settime", "timerfd_gettime",
    "brk", "munmap", "mremap", "madvise",
    "futex", "set_robust_list", "get_robust_list", "rseq", "set_tid_address",
    "clock_gettime", "clock_getres", "clock_nanosleep", "nanosleep",
    "gettimeofday", "time", "getrandom",
    "getpid", "gettid", "getppid", "getuid", "geteuid", "getgid", "getegid",
    "getresuid", "getresgid", "getgroups",
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigpending",
    "rt_sigtimedwait", "rt_sigsuspend", "sigaltstack", "restart_syscall",
    "exit", "exit_group",
    "sendmsg", "recvmsg", "sendto", "recvfrom", "sendmmsg", "recvmmsg",
    "shutdown", "getsockopt", "setsockopt", "getsockname", "getpeername",
    "uname", "sysinfo", "sched_getaffinity", "sched_yield", "getrusage",
    "getrlimit",
};

/* SQLite and scratch files: inside the one directory Landlock leaves. */
static const char *const files_list[] = {
    "openat", "open", "unlink", "unlinkat", "mkdir", "mkdirat", "rmdir",
    "rename", "renameat", "renameat2", "fsync", "fdatasync", "ftruncate",
    "fallocate", "chmod", "fchmod", "fchmodat", "access", "faccessat",
    "faccessat2",
    "readlink", "readlinkat", "getdents64", "fstatfs", "statfs", "stat",
    "lstat", "flock", "getcwd",
};

/* The front: its inherited listening sockets. */
static const char *const accept_list[] = {
    "accept", "accept4", "listen",
};

/* The worker: provider egress (libcurl), TCP ports limited by Landlock.
 * The rest of what libcurl and OpenSSL call on a socket (setsockopt,
 * getsockopt, getsockname, getpeername, sendto, recvfrom, poll) is in the
 * base list. socketpair stays out: curl_multi_init() makes a wakeup pair
 * with it, does without when refused, and worker/http.c never wakes the
 * multi handle that way (test_http.c: test_sandboxed). */
static const char *const connect_list[] = {
    "connect",
};

/* clang-format on */

static int
add_list(
    scmp_filter_ctx ctx, uint32_t action, const char *const *names, size_t n)
{
	size_t i;
	int nr, rc;

	for (i = 0; i < n; i++) {
		nr = seccomp_syscall_resolve_name(names[i]);
		if (nr == __NR_SCMP_ERROR)
			continue; /* not on this architecture */
		if ((rc = seccomp_rule_add(ctx, action, nr, 0)) < 0 &&
		    rc != -EEXIST) {
			log_error("seccomp: %s: %s", names[i], strerror(-rc));
			return rc;
		}
	}
	return 0;
}

#define ADD(ctx, action, name, ...)                                            \
	seccomp_rule_add(ctx, action, SCMP_SYS(name), __VA_ARGS__)

/* Calls allowed only with some arguments. */
static int
add_filtered(scmp_filter_ctx ctx, const struct sbx_profile *p)
{
	const scmp_datum_t self = (scmp_datum_t)getpid();
	const scmp_datum_t namespaces =
	    CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC |
	    CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET;
	const scmp_datum_t socktype =
	    ~(scmp_datum_t)(SOCK_NONBLOCK | SOCK_CLOEXEC);
	int rc = 0;

	/* No new executable memory: W^X for everything mapped from now. */
	rc |= ADD(ctx, SCMP_ACT_ALLOW, mmap, 1,
	    SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	rc |= ADD(ctx, SCMP_ACT_ALLOW, mprotect, 1,
	    SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	/* Signals only to ourselves (raise, abort). */
	rc |= ADD(ctx, SCMP_ACT_ALLOW, kill, 1, SCMP_A0(SCMP_CMP_EQ, self));
	rc |= ADD(ctx, SCMP_ACT_ALLOW, tgkill, 1, SCMP_A0(SCMP_CMP_EQ, self));
	/* Our own limits only; raising them needs a capability we lack. */
	rc |= ADD(ctx, SCMP_ACT_ALLOW, prlimit64, 1, SCMP_A0(SCMP_CMP_EQ, 0));
	/* libevent asks how much a socket holds; stdio asks if it is a tty. */
	rc |= ADD(ctx, SCMP_ACT_ALLOW, ioctl, 1,
	    SCMP_A1(SCMP_CMP_EQ, (scmp_datum_t)FIONREAD));
	rc |= ADD(ctx, SCMP_ACT_ALLOW, ioctl, 1,
	    SCMP_A1(SCMP_CMP_EQ, (scmp_datum_t)TCGETS));
	/* Thread names and glibc's naming of anonymous mappings. */
	rc |= ADD(
	    ctx, SCMP_ACT_ALLOW, prctl, 1, SCMP_A0(SCMP_CMP_EQ, PR_SET_NAME));
	rc |= ADD(
	    ctx, SCMP_ACT_ALLOW, prctl, 1, SCMP_A0(SCMP_CMP_EQ, PR_GET_NAME));
	rc |= ADD(
	    ctx, SCMP_ACT_ALLOW, prctl, 1, SCMP_A0(SCMP_CMP_EQ, PR_SET_VMA));
	/* glibc tries clone3 first and falls back to clone on ENOSYS, where
	 * the flags can be seen: only threads, never a new process. */
	rc |= ADD(ctx, SCMP_ACT_ERRNO(ENOSYS), clone3, 0);
	if (p->syscalls & SBX_SYS_THREADS)
		rc |= ADD(ctx, SCMP_ACT_ALLOW, clone, 1,
		    SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD | namespaces,
			CLONE_THREAD));
	if (p->syscalls & SBX_SYS_CONNECT) {
		/* TCP (Landlock limits the ports) and UDP (name service). */
		rc |= ADD(ctx, SCMP_ACT_ALLOW, socket, 2,
		    SCMP_A0(SCMP_CMP_EQ, AF_INET),
		    SCMP_A1(SCMP_CMP_MASKED_EQ, socktype, SOCK_STREAM));
		rc |= ADD(ctx, SCMP_ACT_ALLOW, socket, 2,
		    SCMP_A0(SCMP_CMP_EQ, AF_INET6),
		    SCMP_A1(SCMP_CMP_MASKED_EQ, socktype, SOCK_STREAM));
		rc |= ADD(ctx, SCMP_ACT_ALLOW, socket, 2,
		    SCMP_A0(SCMP_CMP_EQ, AF_INET),
		    SCMP_A1(SCMP_CMP_MASKED_EQ, socktype, SOCK_DGRAM));
		rc |= ADD(ctx, SCMP_ACT_ALLOW, socket, 2,
		    SCMP_A0(SCMP_CMP_EQ, AF_INET6),
		    SCMP_A1(SCMP_CMP_MASKED_EQ, socktype, SOCK_DGRAM));
		/* getaddrinfo(AI_ADDRCONFIG) reads the interface list. */
		rc |= ADD(ctx, SCMP_ACT_ALLOW, socket, 2,
		    SCMP_A0(SCMP_CMP_EQ, AF_NETLINK),
		    SCMP_A2(SCMP_CMP_EQ, NETLINK_ROUTE));
	}
	return rc < 0 ? -EINVAL : 0;
}

int
sbx_seccomp_apply(const struct sbx_profile *p, struct sbx_facts *f)
{
	scmp_filter_ctx ctx;
	int rc;

	if (prctl(PR_GET_SECCOMP) == -1 && errno == EINVAL) {
		sbx_fact_skipped(f, "seccomp: not in this kernel");
		return 0;
	}
	if ((ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM))) == NULL)
		return -ENOMEM;
	/* Syscalls of another ABI (i386, x32) kill: SCMP_FLTATR_ACT_BADARCH
	 * is SCMP_ACT_KILL by default; make it the whole process. */
	rc = seccomp_attr_set(
	    ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
	if (rc == 0)
		rc = add_list(ctx, SCMP_ACT_KILL_PROCESS, kill_list,
		    sizeof(kill_list) / sizeof(kill_list[0]));
	if (rc == 0)
		rc = add_list(ctx, SCMP_ACT_ALLOW, base_list,
		    sizeof(base_list) / sizeof(base_list[0]));
	if (rc == 0 && (p->syscalls & SBX_SYS_FILES))
		rc = add_list(ctx, SCMP_ACT_ALLOW, files_list,
		    sizeof(files_list) / sizeof(files_list[0]));
	if (rc == 0 && (p->syscalls & SBX_SYS_ACCEPT))
		rc = add_list(ctx, SCMP_ACT_ALLOW, accept_list,
		    sizeof(accept_list) / sizeof(accept_list[0]));
	if (rc == 0 && (p->syscalls & SBX_SYS_CONNECT))
		rc = add_list(ctx, SCMP_ACT_ALLOW, connect_list,
		    sizeof(connect_list) / sizeof(connect_list[0]));
	if (rc == 0)
		rc = add_filtered(ctx, p);
	if (rc == 0)
		rc = seccomp_load(ctx);
	seccomp_release(ctx);
	if (rc < 0)
		return rc;
	sbx_fact_applied(f, "seccomp allow-list (%s)", p->name);
	return 0;
}
