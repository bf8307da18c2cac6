/*
 * sandbox.h: the one audited sandbox of palyrad's children (DESIGN section
 * 4, issue 3). Every child (palyra-worker, palyra-journald, palyra-front)
 * builds its profile and calls sbx_apply() right after start-up, before it
 * serves anything; on failure it logs and exits PROC_EXIT_SANDBOX.
 *
 * sbx_apply() runs the steps in this order (sandbox.c):
 *   open the profile's directory and chdir into it (still privileged)
 *   -> namespaces (mount, ipc, pid, net as the profile says; then user)
 *   -> setgroups -> setresgid -> setresuid (when ids are given)
 *   -> chroot into the directory -> drop every capability
 *   -> verify that root cannot be regained
 *   -> PR_SET_PDEATHSIG, PR_SET_DUMPABLE 0, rlimits
 *   -> no_new_privs -> Landlock -> seccomp allow-list (libseccomp).
 * A step the kernel lacks is logged once and reported as skipped in the
 * facts; nothing is silently weakened. A step that fails otherwise, or a
 * verification that fails, makes sbx_apply() fail.
 */
#ifndef PALYRA_SANDBOX_H
#define PALYRA_SANDBOX_H

#include <sys/resource.h>
#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

#include "limits.h"

/* tzdata, read by the worker and journald for time zones (budget periods,
 * usage days, cron). */
#define SBX_ZONEINFO_DIR "/usr/share/zoneinfo"

/* Namespaces a profile asks for. */
#define SBX_NS_USER 0x01U
#define SBX_NS_MOUNT 0x02U
#define SBX_NS_PID 0x04U
#define SBX_NS_IPC 0x08U
#define SBX_NS_NET 0x10U /* a new, empty network namespace */

/* Syscall groups allowed on top of the base set (sandbox_seccomp.c). */
#define SBX_SYS_FILES 0x01U   /* open, create, sync, lock, unlink files */
#define SBX_SYS_ACCEPT 0x02U  /* accept and listen on inherited sockets */
#define SBX_SYS_CONNECT 0x04U /* create TCP/UDP sockets and connect */
#define SBX_SYS_THREADS 0x08U /* clone(CLONE_THREAD) */

struct sbx_profile {
	const char *name; /* "worker", "journald", "front" */
	int set_ids;	  /* 0: keep the ids we were started with */
	uid_t uid;
	gid_t gid;
	unsigned namespaces; /* SBX_NS_* */
	/* The only directory the process may touch (read-write); it becomes
	 * the cwd and the root. NULL: no filesystem access at all. */
	const char *dir;
	/* Host directories made visible read-only at the same path inside
	 * dir (a bind mount in the private mount namespace, before the
	 * chroot): the tzdata of time zones. Skipped (a fact says why) when
	 * there is no mount namespace or no dir. */
	const char *ro_dirs[SBX_RO_DIRS_MAX];
	size_t nro_dirs;
	uint16_t connect_ports[SBX_MAX_PORTS]; /* TCP connect allowed */
	size_t nconnect_ports;
	rlim_t nofile;	   /* RLIMIT_NOFILE (soft and hard), capped by hard */
	rlim_t fsize;	   /* RLIMIT_FSIZE; RLIM_INFINITY: unchanged */
	unsigned syscalls; /* SBX_SYS_* */
};

/* What sbx_apply() did, for the child's IPC_READY (Ready.sandbox_*). */
struct sbx_facts {
	char applied[SBX_FACTS_MAX][SBX_FACT_LEN];
	char skipped[SBX_FACTS_MAX][SBX_FACT_LEN];
	/* Pointers to the strings above, in the shape protobuf-c wants. */
	char *applied_list[SBX_FACTS_MAX];
	char *skipped_list[SBX_FACTS_MAX];
	size_t napplied;
	size_t nskipped;
};

/*
 * The three profiles. ids: "UID:GID" from -U, or NULL to keep the ids.
 * dir: the worker's scratch dir (-w) or journald's state dir. ports: the
 * worker's -P list or NULL. Return 0, or -EINVAL for malformed ids or
 * ports (the caller exits PROC_EXIT_USAGE).
 */
int sbx_profile_worker(
    struct sbx_profile *, const char *ids, const char *dir, const char *ports);
int sbx_profile_journald(
    struct sbx_profile *, const char *ids, const char *state_dir);
int sbx_profile_front(struct sbx_profile *, const char *ids);

/*
 * Strict parsers of the command-line contract (common/proc.h).
 * "UID:GID": decimal, no sign, no spaces, 1..4294967294 each (root is not
 * a sandbox). "P1,P2,...": decimal ports 1..65535, at most SBX_MAX_PORTS,
 * duplicates dropped. Return 0 or -EINVAL.
 */
int sbx_parse_ids(const char *s, uid_t *uid, gid_t *gid);
int sbx_parse_ports(const char *s, uint16_t *ports, size_t *nports);

/*
 * Applies p to the calling process, in the order above. Must be called
 * while the process has one thread. Returns 0 or a negative errno; after a
 * failure the process is partly sandboxed and must exit.
 */
int sbx_apply(const struct sbx_profile *p, struct sbx_facts *facts);

void sbx_facts_init(struct sbx_facts *);

#endif
