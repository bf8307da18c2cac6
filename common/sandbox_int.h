/*
 * sandbox_int.h: the steps of sbx_apply(), one per file, for sandbox*.c and
 * for the unit tests that prove each layer on its own
 * (tests/unit/test_sandbox.c). Nothing else calls these.
 */
#ifndef PALYRA_SANDBOX_INT_H
#define PALYRA_SANDBOX_INT_H

#include "sandbox.h"

void sbx_fact_applied(struct sbx_facts *, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Records a skipped step and logs it (once: each step runs once). */
void sbx_fact_skipped(struct sbx_facts *, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * sandbox_ids.c: opens and enters p->dir (*dir_fd: O_PATH descriptor of
 * it, or -1), namespaces, ids, chroot, capabilities, and the verification
 * that root cannot be regained. Returns 0 or a negative errno.
 */
int sbx_ids_apply(const struct sbx_profile *, struct sbx_facts *, int *dir_fd);

/* sandbox.c: PR_SET_PDEATHSIG (parent: the pid it must still have),
 * PR_SET_DUMPABLE 0, rlimits, then no_new_privs. */
int sbx_limits_apply(
    const struct sbx_profile *, struct sbx_facts *, pid_t parent);

/* sandbox_landlock.c: filesystem (dir_fd, or nothing), TCP and scopes. */
int sbx_landlock_apply(
    const struct sbx_profile *, struct sbx_facts *, int dir_fd);

/* sandbox_seccomp.c: the allow-list of p->syscalls. */
int sbx_seccomp_apply(const struct sbx_profile *, struct sbx_facts *);

#endif
