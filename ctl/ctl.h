/*
 * ctl.h: palyractl, the operator's command-line client (DESIGN section 5).
 *
 * palyractl runs as the invoking user, holds no privilege and talks to
 * palyrad only through its public surfaces with libcurl: gRPC over HTTP/2
 * (h2c prior knowledge on loopback) and the HTTP admin API (JSON).
 *
 *   ctl.c    main, options, the health, token and run commands
 *   status.c the status command: palyrad's processes as a table
 *   grpc.c   a minimal gRPC client: framing, streaming decode, trailers
 *   admin.c  the HTTP admin API (JSON via jansson) and token sources
 *   journal.c the journal commands: verify, checkpoint, pubkey, export,
 *            backup
 *   tenant.c the tenant commands: runtime tenants over the admin API
 */
#ifndef PALYRA_CTL_H
#define PALYRA_CTL_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "limits.h"

#define CTL_DEFAULT_GRPC	"127.0.0.1:7443"
#define CTL_DEFAULT_URL		"http://127.0.0.1:7142"
#define CTL_DEFAULT_STATE	"/var/lib/palyra"
#define CTL_DEV_STATE		"./var"

/* Largest gRPC message and HTTP reply body palyractl accepts. */
#define CTL_GRPC_MAX_MESSAGE	FE_GRPC_MAX_MESSAGE
#define CTL_HTTP_MAX_BODY	(1024 * 1024)
/* journal: a reply (verify of every tenant), one exported line, and how
 * long a verification or backup may take (the front waits 15 minutes). */
#define CTL_JOURNAL_MAX_BODY	(32 * 1024 * 1024)
#define CTL_EXPORT_LINE_MAX	(4 * 1024 * 1024)
#define CTL_JOURNAL_TIMEOUT_S	(16 * 60)

/* Exit codes (documented in palyractl(1)). */
enum ctl_exit {
	CTL_EXIT_OK = 0,
	CTL_EXIT_FAIL = 1,
	CTL_EXIT_USAGE = 2,
};

/* What every command needs: where palyrad is and how to talk. */
struct ctl_ctx {
	const char	*grpc_addr;	/* HOST:PORT */
	const char	*url;		/* http://HOST:PORT */
	const char	*state_dir;	/* NULL: the default search */
	int		 json;
	int		 verbose;
};

/* Called with each complete response message; nonzero aborts the call. */
typedef int	(*ctl_grpc_msg_cb)(const uint8_t *msg, size_t len,
		    void *arg);

/* The outcome of a gRPC call. */
struct ctl_grpc_result {
	int		 transport_error;	/* 1: no gRPC status */
	char		 error[512];		/* transport */
	int		 grpc_status;
	char		 grpc_message[1024];
};

/* grpc.c */
int		 ctl_grpc_call(const struct ctl_ctx *, const char *path,
		    const char *bearer, const uint8_t *req, size_t req_len,
		    ctl_grpc_msg_cb cb, void *arg, struct ctl_grpc_result *);

/* The one reply message of a unary call; the caller frees data. */
struct ctl_unary_reply {
	uint8_t		*data;
	size_t		 len;
	int		 count;
};

/*
 * One unary call of method with req. Returns 0 with exactly one reply
 * message, or -1 after printing "palyractl: WHAT failed: ..." (reply->data
 * is then NULL).
 */
int		 ctl_unary(const struct ctl_ctx *, const char *what,
		    const char *method, const char *bearer,
		    const ProtobufCMessage *req, struct ctl_unary_reply *reply);

/* ctl.c: "COMPLETED" for RUN_STATUS_COMPLETED, "UNKNOWN" outside. */
const char	*ctl_run_status_name(int status);

/* ctl.c: follows a server stream of palyra.v1.RunEvent (method is the
 * gRPC path) like `run --attach`; returns a CTL_EXIT_ code. */
int		 ctl_follow_events(const struct ctl_ctx *, const char *method,
		    const char *token, const uint8_t *req, size_t len);

/* runs.c: runs show, abort, events. Returns a CTL_EXIT_ code. */
int		 ctl_cmd_runs(struct ctl_ctx *, int argc, char **argv);

/* sessions.c: sessions list, resolve, cleanup. Returns a CTL_EXIT_ code. */
int		 ctl_cmd_sessions(struct ctl_ctx *, int argc, char **argv);

/* agents.c: agent list, show, create, update, delete. Returns a
 * CTL_EXIT_ code. */
int		 ctl_cmd_agent(struct ctl_ctx *, int argc, char **argv);

/* admin.c */
int		 ctl_admin_token(const struct ctl_ctx *, char *out,
		    size_t size, char *err, size_t errlen);
int		 ctl_admin_post(const struct ctl_ctx *, const char *path,
		    const char *body, long *http_status, char **reply,
		    char *err, size_t errlen);
int		 ctl_admin_get(const struct ctl_ctx *, const char *path,
		    long *http_status, char **reply, char *err,
		    size_t errlen);
int		 ctl_admin_patch(const struct ctl_ctx *, const char *path,
		    const char *body, long *http_status, char **reply,
		    char *err, size_t errlen);
int		 ctl_admin_delete(const struct ctl_ctx *, const char *path,
		    long *http_status, char **reply, char *err,
		    size_t errlen);
/* The message of a JSON error reply into err, or a generic one. */
void		 ctl_admin_error_message(const char *reply, long status,
		    char *err, size_t errlen);
/* expires_in: seconds, 0 for a token that never expires. */
int		 ctl_token_create(const struct ctl_ctx *, const char *tenant,
		    const char *principal, const char *role,
		    long long expires_in, char **reply_json, char *err,
		    size_t errlen);
int		 ctl_processes(const struct ctl_ctx *, char **reply_json,
		    char *err, size_t errlen);
/*
 * The bearer token of a tenant command (caller frees): token if given,
 * else an operator token minted for tenant with the admin token, else
 * PALYRA_TOKEN. NULL after a message on stderr.
 */
char		*ctl_bearer(const struct ctl_ctx *, const char *token,
		    const char *tenant);

/* token.c: token list and revoke, and --expires durations. */
int		 ctl_cmd_token_list(const struct ctl_ctx *, int argc,
		    char **argv);
int		 ctl_cmd_token_revoke(const struct ctl_ctx *, int argc,
		    char **argv);
/* "30s", "15m", "12h", "90d": seconds, or -1 if malformed. */
long long	 ctl_duration_seconds(const char *);

/* tenant.c: tenant list, show, create, update, delete (admin API).
 * Returns a CTL_EXIT_ code. */
int		 ctl_cmd_tenant(const struct ctl_ctx *, int argc, char **argv);
/* tenant.c: reload (POST /admin/v1/reload). */
int		 ctl_cmd_reload(const struct ctl_ctx *, int argc, char **argv);

/* status.c */
int		 ctl_cmd_status(const struct ctl_ctx *, int argc, char **argv);

/* journal.c */
int		 ctl_cmd_journal(const struct ctl_ctx *, int argc, char **argv);

#endif
