/*
 * sup.h: the privileged supervisor, palyrad.
 * Runs as root (or the invoking user in development). Parses only the
 * config file and the command line; everything else it reads is typed IPC
 * from its own children. Owns master.key and admin.token.
 */
#ifndef PALYRA_SUP_H
#define PALYRA_SUP_H

#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>

#include "config.h"
#include "ipc.h"
#include "limits.h"

struct event_base;
struct event;
struct ipc_chan;

enum sup_kind_id {
	SUP_KIND_JOURNALD = 0,
	SUP_KIND_FRONT,
	SUP_KIND_WORKER,
	SUP_KIND_COUNT,
};

/*
 * The static process table: everything about a child kind is decided here
 * (supervisor/proctab.c) and nowhere else.
 */
struct sup_kind {
	enum sup_kind_id id;
	const char	*name;		/* for logs and `palyractl status` */
	const char	*executable;	/* in the libexec directory */
	const char	*sandbox;	/* sandbox profile (common/sandbox.h) */
	ipc_typeset	 allowed;	/* IPC types accepted from it */
	int		 per_tenant;
	int		 pass_listeners; /* gets fds 4 and 5 */
	uint32_t	 peers;		/* bit per sup_kind_id it is wired to */
	int		 stop_order;	/* lower stops first */
	/* Restart policy. */
	uint64_t	 backoff_min_ms;	/* after a death past warm-up */
	uint64_t	 backoff_early_ms;	/* after an early death */
	uint64_t	 backoff_max_ms;
	uint32_t	 park_after;	/* early deaths in a row; 0: never */
};

extern const struct sup_kind sup_kinds[SUP_KIND_COUNT];

/* Child lifecycle; sup_child_transition() is the only place it changes. */
enum sup_child_state {
	SUP_CHILD_IDLE = 0,	/* not started yet, or a worker retired idle */
	SUP_CHILD_STARTING,	/* exec'd, READY not yet received */
	SUP_CHILD_READY,	/* serving */
	SUP_CHILD_BACKOFF,	/* died; restart timer armed */
	SUP_CHILD_STOPPING,	/* SIGTERM sent */
	SUP_CHILD_STOPPED,	/* reaped during shutdown or removal */
	SUP_CHILD_PARKED,	/* crash loop: not restarted until reload */
};

#define SUP_FACTS_MAX	24
#define SUP_FACT_LEN	96

struct sup_ctx;

struct sup_child {
	TAILQ_ENTRY(sup_child)	 entry;
	struct sup_ctx		*ctx;
	const struct sup_kind	*kind;
	const struct cfg_tenant	*tenant;	/* workers; NULL once removed */
	char			 tenant_name[NAME_MAX_LEN + 1];
	uint32_t		 index;		/* workers: 0 .. workers - 1 */
	char			 label[NAME_MAX_LEN + 32];
	uid_t			 uid;		/* (uid_t)-1: not switched */
	gid_t			 gid;
	int			 removing;	/* reload dropped its tenant */
	enum sup_child_state	 state;
	pid_t			 pid;
	int			 pidfd;
	struct event		*exit_event;
	struct event		*restart_timer;
	struct ipc_chan		*chan;
	uint32_t		 generation;
	uint32_t		 restarts;
	uint64_t		 started_ms;
	uint64_t		 backoff_ms;
	int			 did_work;	/* sent READY since last start */
	/* A worker was wanted while this one was exiting: start it again
	 * as soon as it has retired. */
	int			 wanted;
	uint32_t		 early_deaths;	/* in a row */
	/* The sandbox as the child reported it in IPC_READY. */
	char			 applied[SUP_FACTS_MAX][SUP_FACT_LEN];
	size_t			 napplied;
	char			 skipped[SUP_FACTS_MAX][SUP_FACT_LEN];
	size_t			 nskipped;
	/* How the last process of this child ended ("signal 9", "exit 3:
	 * ..."), for `palyractl status`; empty until one has ended. */
	char			 last_exit[64];
	/* Its control group as set up at the last start, for `palyractl
	 * status`: "cgroup v1 memory,pids,cpu palyra/default (memory 256M,
	 * pids 64, cpu 100)" or "cgroups: unavailable (...)". */
	char			 cgroup[192];
};

TAILQ_HEAD(sup_child_list, sup_child);

/* How children are confined in control groups (supervisor/cgroup.c). */
enum sup_cgroup_mode {
	SUP_CGROUP_NONE = 0,	/* unavailable; reason says why */
	SUP_CGROUP_V1,
	SUP_CGROUP_V2,
};

#define SUP_CGROUP_MEMORY	0x1
#define SUP_CGROUP_PIDS		0x2
#define SUP_CGROUP_CPU		0x4

/* One hierarchy children are placed in: v2 has one, v1 up to three. */
struct sup_cgroup_hierarchy {
	char			 dir[SUP_CGROUP_PATH_MAX];	/* .../palyra */
	unsigned int		 controllers;	/* SUP_CGROUP_* it carries */
};

struct sup_cgroups {
	enum sup_cgroup_mode	 mode;
	unsigned int		 controllers;	/* over all hierarchies */
	struct sup_cgroup_hierarchy hier[3];
	size_t			 nhier;
	char			 reason[256];	/* mode NONE: why */
};

/* A tenant's worker uid, kept in STATE/uids so that it never changes. */
struct sup_uid {
	char		 tenant[NAME_MAX_LEN + 1];
	uid_t		 uid;
};

struct sup_ctx {
	struct event_base	*base;
	struct cfg		*cfg;
	const char		*config_path;
	char			 start_dir[4096];	/* for relative paths */
	char			 libexec[4096];
	int			 verbose;
	int			 foreground;
	int			 grpc_fd;
	int			 http_fd;
	char			 grpc_addr[128];
	char			 http_addr[128];
	uint8_t			 token_hash_key[32];
	uint8_t			 admin_token_hash[32];
	struct sup_child_list	 children;
	int			 root;		/* started as root: switch uids */
	uid_t			 service_uid[2];	/* journald, front */
	gid_t			 service_gid[2];
	struct sup_uid		*uids;
	size_t			 nuids;
	uint64_t		 started_ms;
	struct sup_cgroups	 cgroups;
	int			 stopping;
	int			 announced;
	struct event		*stop_timer;
	struct event		*signals[4];
};

/* proctab.c */
int	sup_children_init(struct sup_ctx *);
struct sup_child *sup_child_add(struct sup_ctx *, const struct sup_kind *,
	    const struct cfg_tenant *, uint32_t index);
void	sup_child_start(struct sup_child *);
int	sup_child_transition(struct sup_child *, enum sup_child_state);
void	sup_child_remove(struct sup_child *);
struct sup_child *sup_child_find(struct sup_ctx *, enum sup_kind_id,
	    const char *tenant);
const char *sup_exit_name(int status);
void	sup_children_start(struct sup_ctx *);
void	sup_children_stop(struct sup_ctx *);
int	sup_children_all_stopped(const struct sup_ctx *);
void	sup_children_kill(struct sup_ctx *);
void	sup_children_free(struct sup_ctx *);
const char *sup_child_state_name(enum sup_child_state);

/* pool.c: the workers of each tenant. */
void	sup_worker_wanted(struct sup_ctx *, const char *tenant, uint32_t count);
void	sup_worker_retired(struct sup_child *);

/* spawn.c */
int	sup_spawn(struct sup_ctx *, struct sup_child *, int chan_fd);

/* wire.c */
void	sup_child_configure(struct sup_ctx *, struct sup_child *);
void	sup_child_send_tenants(struct sup_ctx *, struct sup_child *);
/* Whether every tenant's configuration fits one IPC message to its
 * worker and journald (wire.c). Returns 0, or -1 with
 * "FILE:LINE:COL: message" (the tenant's position) in err. */
int	sup_wire_check(const struct cfg *, char *err, size_t errlen);
/* secrets.c: resolves the providers' credentials and sends them to
 * journald for redaction, wiping every copy. */
void	sup_journal_secrets_send(struct sup_ctx *, struct sup_child *);
/* A provider's credential (api-key env:, file: or vault:host/) into buf
 * of size bytes, for its tenant's worker (wire.c): its length, 0 for none
 * (a tenant's vault:NAME), or -errno. The caller wipes buf
 * (sodium_memzero). */
ssize_t	sup_provider_secret(const struct sup_ctx *,
	    const struct cfg_provider *, uint8_t *buf, size_t size);
void	sup_child_wire(struct sup_ctx *, struct sup_child *);

/* safety.c: refuses an unsafe configuration (secret files others may
 * read, a state directory others may write). Returns 0, or -1 with
 * "FILE:LINE:COL: reason" in err. */
int	sup_safety_check(const struct cfg *, char *err, size_t errlen);

/* tls.c: the TLS listeners' certificate and key files. */
/* Reads every file once; returns 0, or -1 with "FILE: reason" in err. */
int	sup_tls_check(const struct cfg *, char *err, size_t errlen);
/* Sends the front its IPC_TLS_CONFIG. Returns 0, or -1 (logged). */
int	sup_tls_send(struct sup_ctx *, struct sup_child *);

/* state.c */
int	sup_state_init(struct sup_ctx *);
int	sup_state_own(struct sup_ctx *);
int	sup_state_tenant(struct sup_ctx *, const struct cfg_tenant *,
	    uid_t, gid_t);
int	sup_listeners_open(struct sup_ctx *);
void	sup_scratch_path(const struct sup_ctx *, const char *tenant,
	    char *buf, size_t len);

/* uids.c */
int	sup_uids_init(struct sup_ctx *);
int	sup_uid_for(struct sup_ctx *, const struct sup_child *, uid_t *,
	    gid_t *);

/* cgroup.c: 0 or a negative errno; failures are logged and reported in
 * child->cgroup, never fatal. */
void	sup_cgroup_init(struct sup_ctx *);
int	sup_cgroup_prepare(struct sup_ctx *, struct sup_child *);
int	sup_cgroup_enter(struct sup_ctx *, struct sup_child *, pid_t);
void	sup_cgroup_release(struct sup_ctx *, struct sup_child *);
void	sup_cgroup_cleanup(struct sup_ctx *);

/* reload.c */
int	sup_reload(struct sup_ctx *, const char *why, char *err,
	    size_t errlen);
struct cfg *sup_reload_apply(struct sup_ctx *, struct cfg *next, int full);

/* tenants.c: runtime tenants (admin API), kept in STATE/tenants.conf. */
#define SUP_TENANTS_FILE	"tenants.conf"
/* Appends the tenants of STATE/tenants.conf to cfg (marked runtime); a
 * name cfg declares wins. Returns 0, or -1 (logged) for a file that
 * cannot be read or parsed. */
int	sup_tenants_merge(const char *state_dir, struct cfg *cfg);
/* The front's IPC_TENANT_ADMIN; answers with IPC_TENANT_ADMIN_REPLY. */
struct Palyra__Ipc__TenantAdminRequest;
void	sup_tenants_admin(struct sup_ctx *, struct sup_child *from,
	    uint32_t request_id,
	    const struct Palyra__Ipc__TenantAdminRequest *);

/* status.c */
int	sup_status_send(struct sup_ctx *, struct sup_child *to,
	    uint32_t request_id);

uint64_t sup_now_ms(void);

#endif
