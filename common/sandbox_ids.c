/*
 * sandbox_ids.c: the first steps of sbx_apply(): the profile's directory,
 * namespaces, the switch of ids, chroot, dropping every capability, and the
 * verification that root cannot be regained.
 *
 * Runs in palyra-worker, palyra-journald and palyra-front, once, single
 * threaded. Touches the calling process's credentials and namespaces, its
 * /proc/self/{setgroups,uid_map,gid_map}, and in its own mount namespace
 * mounts (front) an empty read-only tmpfs as its root, or (worker,
 * journald) read-only binds of host directories such as the tzdata inside
 * its directory, creating their mount points there.
 *
 * Started as root, the non-user namespaces are created first (they need
 * CAP_SYS_ADMIN in the initial user namespace), then the ids are dropped,
 * then the now unprivileged user creates its user namespace mapping only its
 * own uid and gid: whatever capabilities that namespace grants are dropped
 * before anything else runs. Started as non-root (development), the user
 * namespace comes first, which makes the others possible, and the id switch
 * is skipped with the reason.
 */
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>

#include <linux/capability.h>
#include <linux/securebits.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "sandbox.h"
#include "sandbox_int.h"

/* Where the front's empty root is mounted, in its own mount namespace. */
#define EMPTY_ROOT "/tmp"

static const struct {
	unsigned bit;
	int flag;
	const char *name;
} namespaces[] = {
    {SBX_NS_MOUNT, CLONE_NEWNS, "mount ns"},
    {SBX_NS_IPC, CLONE_NEWIPC, "ipc ns"},
    {SBX_NS_PID, CLONE_NEWPID, "pid ns (children)"},
    {SBX_NS_NET, CLONE_NEWNET, "net ns (empty)"},
};

struct ids_state {
	int started_root;
	int userns;  /* we created and entered a user namespace */
	int mountns; /* we have a private mount namespace */
};

static int
write_file(const char *path, const char *text)
{
	size_t len = strlen(text);
	ssize_t n;
	int fd, saved;

	if ((fd = open(path, O_WRONLY | O_CLOEXEC)) == -1)
		return -errno;
	n = write(fd, text, len);
	saved = errno;
	close(fd);
	if (n == -1)
		return -saved;
	return (size_t)n == len ? 0 : -EIO;
}

/* The non-user namespaces; each one the kernel refuses is skipped. */
static void
other_namespaces(
    const struct sbx_profile *p, struct sbx_facts *f, struct ids_state *st)
{
	size_t i;
	int own_pidns = getpid() == 1;

	/*
	 * The supervisor starts its children in a pid namespace of their own
	 * when it can (CLONE_NEWPID at spawn): then we are its pid 1, see no
	 * other process by pid and need no unshare, which would also stop us
	 * from creating threads.
	 */
	if (own_pidns)
		sbx_fact_applied(f, "pid ns (own, pid 1)");
	for (i = 0; i < sizeof(namespaces) / sizeof(namespaces[0]); i++) {
		if (!(p->namespaces & namespaces[i].bit))
			continue;
		if (own_pidns && namespaces[i].flag == CLONE_NEWPID)
			continue;
		if (unshare(namespaces[i].flag) == -1) {
			sbx_fact_skipped(
			    f, "%s: %s", namespaces[i].name, strerror(errno));
			continue;
		}
		sbx_fact_applied(f, "%s", namespaces[i].name);
		if (namespaces[i].flag == CLONE_NEWNS)
			st->mountns = 1;
	}
	if (!st->mountns)
		return;
	/* Nothing we mount may leak out, nothing from outside come in. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == -1) {
		sbx_fact_skipped(f, "private mounts: %s", strerror(errno));
		st->mountns = 0;
	}
}

/*
 * A user namespace in which we map only our own uid and gid; we hold every
 * capability in it until caps_drop(). /proc/self is ours to write only while
 * the process is dumpable, which a change of ids has just turned off; the
 * limits step turns it off again for good.
 */
static int
user_namespace(struct sbx_facts *f, struct ids_state *st)
{
	uid_t uid = geteuid();
	gid_t gid = getegid();
	char map[64];
	int rc;

	if (unshare(CLONE_NEWUSER) == -1) {
		sbx_fact_skipped(f, "user ns: %s", strerror(errno));
		return 0;
	}
	if (prctl(PR_SET_DUMPABLE, 1) == -1)
		return -errno;
	if ((rc = write_file("/proc/self/setgroups", "deny")) < 0)
		return rc;
	snprintf(map, sizeof(map), "%u %u 1\n", (unsigned)uid, (unsigned)uid);
	if ((rc = write_file("/proc/self/uid_map", map)) < 0)
		return rc;
	snprintf(map, sizeof(map), "%u %u 1\n", (unsigned)gid, (unsigned)gid);
	if ((rc = write_file("/proc/self/gid_map", map)) < 0)
		return rc;
	st->userns = 1;
	sbx_fact_applied(
	    f, "user ns (maps %u:%u only)", (unsigned)uid, (unsigned)gid);
	return 0;
}

static int
ids_switch(const struct sbx_profile *p, struct sbx_facts *f)
{
	if (setgroups(1, &p->gid) == -1)
		return -errno;
	sbx_fact_applied(f, "setgroups %u", (unsigned)p->gid);
	if (setresgid(p->gid, p->gid, p->gid) == -1)
		return -errno;
	sbx_fact_applied(f, "gid %u", (unsigned)p->gid);
	if (setresuid(p->uid, p->uid, p->uid) == -1)
		return -errno;
	sbx_fact_applied(f, "uid %u", (unsigned)p->uid);
	return 0;
}

/*
 * The front has no directory: its root becomes an empty read-only tmpfs,
 * mounted over EMPTY_ROOT in its own mount namespace only.
 */
static int
empty_root(struct sbx_facts *f, int *dir_fd)
{
	if (mount("palyra-empty", EMPTY_ROOT, "tmpfs",
		MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
		"size=4k,nr_inodes=2,mode=0555") == -1) {
		sbx_fact_skipped(f, "empty root: %s", strerror(errno));
		return 0;
	}
	if ((*dir_fd = open(EMPTY_ROOT, O_PATH | O_DIRECTORY | O_CLOEXEC)) ==
		-1 ||
	    fchdir(*dir_fd) == -1)
		return -errno;
	return 0;
}

/* The MS_* flags of the mount a directory is on, which a remount of a
 * bind of it must keep (a user namespace cannot clear locked ones). */
static unsigned long
mount_flags_of(int fd)
{
	struct statvfs sv;
	unsigned long fl = 0;

	if (fstatvfs(fd, &sv) == -1)
		return 0;
	if (sv.f_flag & ST_NOSUID)
		fl |= MS_NOSUID;
	if (sv.f_flag & ST_NODEV)
		fl |= MS_NODEV;
	if (sv.f_flag & ST_NOEXEC)
		fl |= MS_NOEXEC;
	if (sv.f_flag & ST_NOATIME)
		fl |= MS_NOATIME;
	if (sv.f_flag & ST_NODIRATIME)
		fl |= MS_NODIRATIME;
	if (sv.f_flag & ST_RELATIME)
		fl |= MS_RELATIME;
	return fl;
}

/*
 * Binds host directory src read-only at the same path beneath the
 * profile's directory (the cwd), creating the mount point. Every component
 * is opened with O_NOFOLLOW and both ends are named by /proc/self/fd, so a
 * symlink planted in the directory by an earlier, compromised process of
 * the same kind can never redirect the mount. Any failure skips the step
 * (nothing is left mounted read-write). Returns 0, or -1 when a read-write
 * bind could not be undone, which fails the sandbox.
 */
static int
ro_bind(const char *src, struct sbx_facts *f)
{
	char comp[256], spath[32], tpath[300];
	const char *s = src, *end;
	int sfd, cur = -1, parent = -1, mnt = -1, saved, rc = 0;
	unsigned long flags;
	struct stat st;
	size_t n;

	if ((sfd = open(src, O_PATH | O_DIRECTORY | O_CLOEXEC)) == -1) {
		sbx_fact_skipped(f, "read-only %s: %s", src, strerror(errno));
		return 0;
	}
	/* The directory's descriptor was opened before the mount namespace
	 * existed and names it in the parent's mounts, where we cannot
	 * mount; the cwd (that directory) moved into ours with unshare(). */
	if ((cur = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC)) == -1)
		goto fail;
	while (*s == '/')
		s++;
	while (*s != '\0') {
		end = strchr(s, '/');
		n = end != NULL ? (size_t)(end - s) : strlen(s);
		if (n == 0 || n >= sizeof(comp)) {
			errno = ENAMETOOLONG;
			goto fail;
		}
		memcpy(comp, s, n);
		comp[n] = '\0';
		if (mkdirat(cur, comp, 0755) == -1 && errno != EEXIST)
			goto fail;
		if (parent != -1)
			close(parent);
		parent = cur;
		if ((cur = openat(parent, comp, O_PATH | O_DIRECTORY |
		    O_NOFOLLOW | O_CLOEXEC)) == -1)
			goto fail;
		/* The process runs under its own uid: every directory on
		 * the way must be searchable by others (palyrad's umask
		 * made them 0700). Through the descriptor, never a name. */
		if (fstat(cur, &st) == -1)
			goto fail;
		if ((st.st_mode & 0755) != 0755 && st.st_uid == geteuid()) {
			snprintf(tpath, sizeof(tpath), "/proc/self/fd/%d", cur);
			if (chmod(tpath, (st.st_mode & 07777) | 0755) == -1)
				goto fail;
		}
		for (s += n; *s == '/'; s++)
			;
	}
	if (parent == -1) {
		errno = EINVAL;
		goto fail;
	}
	snprintf(spath, sizeof(spath), "/proc/self/fd/%d", sfd);
	snprintf(tpath, sizeof(tpath), "/proc/self/fd/%d", cur);
	if (mount(spath, tpath, NULL, MS_BIND | MS_REC, NULL) == -1)
		goto fail;
	/* cur still names the directory beneath; the new mount is what the
	 * last component leads to now. */
	if ((mnt = openat(parent, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1)
		goto undo;
	snprintf(tpath, sizeof(tpath), "/proc/self/fd/%d", mnt);
	flags = mount_flags_of(sfd) | MS_BIND | MS_REMOUNT | MS_RDONLY |
	    MS_NOSUID | MS_NODEV | MS_NOEXEC;
	if (mount(NULL, tpath, NULL, flags, NULL) == -1)
		goto undo;
	sbx_fact_applied(f, "read-only %s", src);
	goto out;
undo:
	saved = errno;
	snprintf(tpath, sizeof(tpath), "/proc/self/fd/%d/%s", parent, comp);
	if (umount2(tpath, MNT_DETACH) == -1) {
		log_error("sandbox: %s bound read-write and cannot be "
		    "unmounted: %s", src, strerror(errno));
		rc = -1;
	}
	errno = saved;
fail:
	sbx_fact_skipped(f, "read-only %s: %s", src, strerror(errno));
out:
	if (mnt != -1)
		close(mnt);
	if (cur != -1)
		close(cur);
	if (parent != -1)
		close(parent);
	close(sfd);
	return rc;
}

/* The profile's read-only directories, in our private mount namespace. */
static int
ro_dirs(const struct sbx_profile *p, struct sbx_facts *f, int dir_fd,
    const struct ids_state *st)
{
	size_t i;

	for (i = 0; i < p->nro_dirs; i++) {
		if (!st->mountns || dir_fd == -1 || p->dir == NULL)
			sbx_fact_skipped(f, "read-only %s: %s", p->ro_dirs[i],
			    !st->mountns ? "no mount namespace" :
			    "no directory");
		else if (ro_bind(p->ro_dirs[i], f) == -1)
			return -EPERM;
	}
	return 0;
}

static void
enter_root(struct sbx_facts *f, int dir_fd, const struct sbx_profile *p)
{
	if (dir_fd == -1)
		return;
	/* chroot(".") needs CAP_SYS_CHROOT: ours in our user namespace. */
	if (chroot(".") == -1 || chdir("/") == -1) {
		sbx_fact_skipped(f, "chroot: %s", strerror(errno));
		return;
	}
	sbx_fact_applied(f, "chroot %s", p->dir != NULL ? "dir" : "empty");
}

/* Drops every capability: bounding, ambient, then permitted/effective,
 * and locks the securebits so that uid 0 never means capabilities again. */
static int
caps_drop(struct sbx_facts *f)
{
	struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct data[2];
	int cap, bounding = 1;

	if (prctl(PR_SET_SECUREBITS,
		SECBIT_KEEP_CAPS_LOCKED | SECBIT_NO_SETUID_FIXUP |
		    SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_NOROOT |
		    SECBIT_NOROOT_LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE |
		    SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED) == -1)
		sbx_fact_skipped(f, "securebits: %s", strerror(errno));
	else
		sbx_fact_applied(f, "securebits locked");
	for (cap = 0; cap <= 63; cap++) {
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0)
			continue;
		if (errno == EINVAL)
			break; /* past the last capability the kernel knows */
		bounding = 0;
		break;
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) == -1 &&
	    errno != EINVAL)
		return -errno;
	memset(data, 0, sizeof(data));
	if (syscall(SYS_capset, &hdr, data) == -1)
		return -errno;
	if (bounding)
		sbx_fact_applied(f, "capabilities dropped (all sets)");
	else
		sbx_fact_applied(f, "capabilities dropped (bounding set "
				    "kept: no CAP_SETPCAP)");
	return 0;
}

/* Never continue weakened: any way back to privilege fails the sandbox. */
static int
verify(const struct sbx_profile *p, struct sbx_facts *f)
{
	struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct data[2];
	uid_t ru, eu, su;
	gid_t rg, eg, sg, groups[2];
	int n;

	memset(data, 0, sizeof(data));
	if (syscall(SYS_capget, &hdr, data) == -1)
		return -errno;
	if (data[0].effective != 0 || data[1].effective != 0 ||
	    data[0].permitted != 0 || data[1].permitted != 0 ||
	    data[0].inheritable != 0 || data[1].inheritable != 0) {
		log_error("sandbox: capabilities left after dropping them");
		return -EPERM;
	}
	if (p->set_ids) {
		if (getresuid(&ru, &eu, &su) == -1 ||
		    getresgid(&rg, &eg, &sg) == -1)
			return -errno;
		if (ru != p->uid || eu != p->uid || su != p->uid ||
		    rg != p->gid || eg != p->gid || sg != p->gid) {
			log_error("sandbox: ids are not the target ids");
			return -EPERM;
		}
		n = getgroups(2, groups);
		if (n < 0 || n > 1 || (n == 1 && groups[0] != p->gid)) {
			log_error("sandbox: supplementary groups left");
			return -EPERM;
		}
	}
	if (getuid() != 0) {
		if (setresuid(0, 0, 0) == 0 || setuid(0) == 0 ||
		    setresgid(0, 0, 0) == 0 || setgid(0) == 0) {
			log_error("sandbox: root could be regained");
			return -EPERM;
		}
		sbx_fact_applied(f, "root not regainable");
	}
	return 0;
}

int
sbx_ids_apply(const struct sbx_profile *p, struct sbx_facts *f, int *dir_fd)
{
	struct ids_state st = {.started_root = geteuid() == 0};
	int rc;

	*dir_fd = -1;
	/* Open what is needed while we still may: the directory becomes the
	 * cwd, so that it stays usable after the ids change even when its
	 * parents are not searchable for the new uid. */
	if (p->dir != NULL) {
		if ((*dir_fd = open(
			 p->dir, O_PATH | O_DIRECTORY | O_CLOEXEC)) == -1 ||
		    fchdir(*dir_fd) == -1) {
			rc = -errno;
			log_error("sandbox: %s: %s", p->dir, strerror(-rc));
			return rc;
		}
	}
	if (st.started_root) {
		other_namespaces(p, f, &st);
		if (p->dir == NULL && st.mountns &&
		    (rc = empty_root(f, dir_fd)) < 0)
			return rc;
		if ((rc = ro_dirs(p, f, *dir_fd, &st)) < 0)
			return rc;
		if (p->set_ids && (rc = ids_switch(p, f)) < 0)
			return rc;
		if (!p->set_ids)
			sbx_fact_skipped(f, "setresuid: no -U given, ids kept");
		if ((p->namespaces & SBX_NS_USER) &&
		    (rc = user_namespace(f, &st)) < 0)
			return rc;
	} else {
		if (p->set_ids)
			sbx_fact_skipped(f, "setresuid: not started as root");
		if ((p->namespaces & SBX_NS_USER) &&
		    (rc = user_namespace(f, &st)) < 0)
			return rc;
		other_namespaces(p, f, &st);
		if (p->dir == NULL && st.mountns &&
		    (rc = empty_root(f, dir_fd)) < 0)
			return rc;
		if ((rc = ro_dirs(p, f, *dir_fd, &st)) < 0)
			return rc;
	}
	enter_root(f, *dir_fd, p);
	if ((rc = caps_drop(f)) < 0)
		return rc;
	return verify(p, f);
}
