/*
 * sup.h: the privileged supervisor, palyrad.
 * Runs as root (or the invoking user in development). Parses only the
 * config file and the command line; everything else it reads is typed IPC
 * from its own children. Owns master.key and admin.token.
 */
#ifndef PALYRA_SUP_H
#define PALYRA_SUP_H

#include <stdint.h>
#include <sys/types.h>

#include "config.h"
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
	const char	*sandbox;	/* sandbox profile (common/sandbox) */
	uint64_t	 allowed;	/* IPC types accepted from it */
	int		 per_tenant;
	int		 pass_listeners; /* gets fds 4 and 5 */
	uint32_t	 peers;		/* bit per sup_kind_id it is wired to */
	int		 stop_order;	/* lower stops first */
};

extern const struct sup_kind sup_kinds[SUP_KIND_COUNT];

/* Child lifecycle; sup_child_transition() is the only place it changes. */
enum sup_child_state {
	SUP_CHILD_IDLE = 0,	/* not started yet */
	SUP_CHILD_STARTING,	/* exec'd, READY not yet received */
	SUP_CHILD_READY,	/* serving */
	SUP_CHILD_BACKOFF,	/* died; restart timer armed */
	SUP_CHILD_STOPPING,	/* SIGTERM sent */
	SUP_CHILD_STOPPED,	/* reaped during shutdown */
};

struct sup_ctx;

struct sup_child {
	struct sup_ctx		*ctx;
	const struct sup_kind	*kind;
	const struct cfg_tenant	*tenant;	/* workers only */
	char			 label[NAME_MAX_LEN + 32];
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
};

struct sup_ctx {
	struct event_base	*base;
	struct cfg		*cfg;
	const char		*config_path;
	char			 libexec[4096];
	int			 verbose;
	int			 foreground;
	int			 grpc_fd;
	int			 http_fd;
	char			 grpc_addr[128];
	char			 http_addr[128];
	uint8_t			 token_hash_key[32];
	uint8_t			 admin_token_hash[32];
	struct sup_child	*children;
	size_t			 nchildren;
	int			 stopping;
	int			 announced;
	struct event		*stop_timer;
	struct event		*signals[4];
};

/* proctab.c */
int	sup_children_init(struct sup_ctx *);
void	sup_children_start(struct sup_ctx *);
void	sup_children_stop(struct sup_ctx *);
int	sup_children_all_stopped(const struct sup_ctx *);
void	sup_children_kill(struct sup_ctx *);
void	sup_children_free(struct sup_ctx *);
const char *sup_child_state_name(enum sup_child_state);

/* spawn.c */
int	sup_spawn(struct sup_ctx *, struct sup_child *, int chan_fd);

/* wire.c */
void	sup_child_configure(struct sup_ctx *, struct sup_child *);
void	sup_child_wire(struct sup_ctx *, struct sup_child *);

/* state.c */
int	sup_state_init(struct sup_ctx *);
int	sup_listeners_open(struct sup_ctx *);

uint64_t sup_now_ms(void);

#endif
