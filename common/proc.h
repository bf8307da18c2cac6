/*
 * proc.h: how the supervisor starts its children (fork + exec), shared by
 * the supervisor and every child so both sides agree.
 *
 * Descriptors at exec (everything else is closed):
 *   0, 1     /dev/null
 *   2        the supervisor's stderr (log lines)
 *   3        PROC_FD_PARENT: SOCK_SEQPACKET channel to the supervisor
 *   4, 5     front only: the listening gRPC and HTTP sockets
 *
 * Command lines:
 *   palyra-journald -s STATE_DIR [-U UID:GID] [-v] [-d]
 *   palyra-front [-U UID:GID] [-v] [-d]
 *   palyra-worker -t TENANT -w SCRATCH_DIR [-P PORTS] [-i IDLE_MS]
 *                 [-U UID:GID] [-v] [-d]
 * -v: debug logging, -d: log to stderr (else syslog).
 * -U: the ids the child switches to in its sandbox (common/sandbox.h);
 *     given only when the supervisor runs as root.
 * -w: the tenant's scratch directory, the only one the worker may touch;
 *     created by the supervisor, owned by the worker's uid, mode 0700.
 * -P: comma-separated TCP ports the worker may connect to (its providers'
 *     ports); absent: none.
 * -i: the tenant's idle-timeout in milliseconds: a worker with no live run
 *     and no unacknowledged journal append for that long exits with
 *     PROC_EXIT_IDLE; absent: it never retires. Workers start lazily: the
 *     supervisor starts one when the front sends IPC_WORKER_WANTED, and up
 *     to the tenant's `workers` of them, which share the tenant's uid,
 *     scratch directory and control group.
 *
 * Every other channel arrives later as IPC_ATTACH_PEER with one descriptor
 * on PROC_FD_PARENT, so that a restarted peer is re-attached the same way:
 *   journald <- FRONT, WORKER(tenant, index)
 *   front    <- JOURNALD, WORKER(tenant, index)
 *   worker   <- JOURNALD, FRONT
 * Configuration arrives on PROC_FD_PARENT too: IPC_JOURNAL_CONFIG and
 * IPC_TENANT_LIST (journald), IPC_FRONT_KEYS and IPC_TENANT_LIST (front),
 * IPC_WORKER_CONFIG (worker). A child sends IPC_READY once it serves.
 * A child exits when PROC_FD_PARENT reaches EOF, and sets PR_SET_PDEATHSIG.
 */
#ifndef PALYRA_PROC_H
#define PALYRA_PROC_H

#define PROC_FD_PARENT		3
#define PROC_FD_GRPC_LISTEN	4
#define PROC_FD_HTTP_LISTEN	5

/* Exit codes of every palyrad process (documented in palyrad(8)). */
enum proc_exit {
	PROC_EXIT_OK = 0,	/* asked to stop, or parent channel closed */
	PROC_EXIT_FATAL = 1,	/* start-up failure or broken invariant */
	PROC_EXIT_USAGE = 2,	/* bad command line */
	PROC_EXIT_PEER = 3,	/* the supervisor sent a malformed message */
	PROC_EXIT_STORAGE = 4,	/* journald: a database failed */
	PROC_EXIT_SANDBOX = 5,	/* the sandbox could not be applied */
	PROC_EXIT_IDLE = 6,	/* worker: idle for its idle-timeout; retired */
};

#endif
