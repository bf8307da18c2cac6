/*
 * sandbox_landlock.c: the Landlock step of sbx_apply(): files only beneath
 * the profile's directory (read-write), TCP connect only to the profile's
 * ports, no TCP bind, and (ABI >= 6) no signals to and no abstract unix
 * sockets of processes outside the sandbox.
 *
 * Runs in palyra-worker, palyra-journald and palyra-front, once, after
 * no_new_privs. Touches only the calling process's Landlock domain.
 *
 * The kernel's ABI is spelled out here rather than taken from
 * <linux/landlock.h>: the build machine's header may be older than the
 * kernel it runs on, and every right the running kernel knows must be
 * handled. Rights are chosen by the ABI version the kernel reports.
 */
#include <sys/syscall.h>

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "sandbox.h"
#include "sandbox_int.h"

#define LL_CREATE_RULESET_VERSION (1U << 0)
#define LL_RULE_PATH_BENEATH 1
#define LL_RULE_NET_PORT 2

#define LL_FS_EXECUTE (1ULL << 0)
#define LL_FS_WRITE_FILE (1ULL << 1)
#define LL_FS_READ_FILE (1ULL << 2)
#define LL_FS_READ_DIR (1ULL << 3)
#define LL_FS_REMOVE_DIR (1ULL << 4)
#define LL_FS_REMOVE_FILE (1ULL << 5)
#define LL_FS_MAKE_CHAR (1ULL << 6)
#define LL_FS_MAKE_DIR (1ULL << 7)
#define LL_FS_MAKE_REG (1ULL << 8)
#define LL_FS_MAKE_SOCK (1ULL << 9)
#define LL_FS_MAKE_FIFO (1ULL << 10)
#define LL_FS_MAKE_BLOCK (1ULL << 11)
#define LL_FS_MAKE_SYM (1ULL << 12)
#define LL_FS_REFER (1ULL << 13)     /* ABI 2 */
#define LL_FS_TRUNCATE (1ULL << 14)  /* ABI 3 */
#define LL_FS_IOCTL_DEV (1ULL << 15) /* ABI 5 */

#define LL_NET_BIND_TCP (1ULL << 0)    /* ABI 4 */
#define LL_NET_CONNECT_TCP (1ULL << 1) /* ABI 4 */

#define LL_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0) /* ABI 6 */
#define LL_SCOPE_SIGNAL (1ULL << 1)		  /* ABI 6 */

/* What the directory rule allows: no exec, no devices, fifos, sockets or
 * symlinks; everything a database or scratch files need. */
#define LL_FS_DIR_RW                                                           \
	(LL_FS_WRITE_FILE | LL_FS_READ_FILE | LL_FS_READ_DIR |                 \
	    LL_FS_REMOVE_DIR | LL_FS_REMOVE_FILE | LL_FS_MAKE_DIR |            \
	    LL_FS_MAKE_REG | LL_FS_REFER | LL_FS_TRUNCATE)

struct ll_ruleset_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net; /* ABI 4 */
	uint64_t scoped;	     /* ABI 6 */
};

struct ll_path_beneath_attr {
	uint64_t allowed_access;
	int32_t parent_fd;
} __attribute__((packed));

struct ll_net_port_attr {
	uint64_t allowed_access;
	uint64_t port;
};

static uint64_t
fs_rights(int abi)
{
	uint64_t r = (LL_FS_MAKE_SYM << 1) - 1; /* ABI 1: bits 0..12 */

	if (abi >= 2)
		r |= LL_FS_REFER;
	if (abi >= 3)
		r |= LL_FS_TRUNCATE;
	if (abi >= 5)
		r |= LL_FS_IOCTL_DEV;
	return r;
}

static int
add_rules(const struct sbx_profile *p, int ruleset, int abi, int dir_fd,
    const struct ll_ruleset_attr *attr)
{
	struct ll_path_beneath_attr path;
	struct ll_net_port_attr port;
	size_t i;

	if (p->dir != NULL && dir_fd != -1) {
		path.allowed_access = LL_FS_DIR_RW & attr->handled_access_fs;
		path.parent_fd = dir_fd;
		if (syscall(SYS_landlock_add_rule, ruleset,
			LL_RULE_PATH_BENEATH, &path, 0) == -1)
			return -errno;
	}
	for (i = 0; abi >= 4 && i < p->nconnect_ports; i++) {
		port.allowed_access = LL_NET_CONNECT_TCP;
		port.port = p->connect_ports[i];
		if (syscall(SYS_landlock_add_rule, ruleset, LL_RULE_NET_PORT,
			&port, 0) == -1)
			return -errno;
	}
	return 0;
}

int
sbx_landlock_apply(const struct sbx_profile *p, struct sbx_facts *f, int dir_fd)
{
	struct ll_ruleset_attr attr;
	size_t attr_size;
	int abi, ruleset, rc;

	abi = (int)syscall(
	    SYS_landlock_create_ruleset, NULL, 0, LL_CREATE_RULESET_VERSION);
	if (abi < 0) {
		/* ENOSYS: not built in; EOPNOTSUPP: disabled at boot. */
		sbx_fact_skipped(f, "landlock: %s", strerror(errno));
		return 0;
	}
	memset(&attr, 0, sizeof(attr));
	attr.handled_access_fs = fs_rights(abi);
	attr_size = sizeof(attr.handled_access_fs);
	if (abi >= 4) {
		attr.handled_access_net = LL_NET_BIND_TCP | LL_NET_CONNECT_TCP;
		attr_size += sizeof(attr.handled_access_net);
	}
	if (abi >= 6) {
		attr.scoped = LL_SCOPE_ABSTRACT_UNIX_SOCKET | LL_SCOPE_SIGNAL;
		attr_size += sizeof(attr.scoped);
	}
	ruleset =
	    (int)syscall(SYS_landlock_create_ruleset, &attr, attr_size, 0);
	if (ruleset == -1)
		return -errno;
	rc = add_rules(p, ruleset, abi, dir_fd, &attr);
	if (rc == 0 && syscall(SYS_landlock_restrict_self, ruleset, 0) == -1)
		rc = -errno;
	close(ruleset);
	if (rc < 0)
		return rc;
	sbx_fact_applied(f, "landlock abi %d (fs%s%s)", abi,
	    abi >= 4 ? ", tcp" : "", abi >= 6 ? ", scopes" : "");
	if (abi < 4)
		sbx_fact_skipped(f, "landlock tcp rules: abi %d < 4", abi);
	if (abi < 6)
		sbx_fact_skipped(f, "landlock scopes: abi %d < 6", abi);
	return 0;
}
