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
 *   grpc_bidi.c a bidirectional call on nghttp2 (run --approve)
 *   admin.c  the HTTP admin API (JSON via jansson) and token sources
 *   journal.c the journal commands: verify, checkpoint, pubkey, export,
 *            backup
 *   tenant.c the tenant commands: runtime tenants over the admin API
 *   approvals.c the approvals commands (ApprovalsService) and the offline
 *            verifier of approval exports
 *   approvals_export.c approvals export and verify-export
 *   export_verify.c the verifier of approval exports (no daemon)
 *   usage.c  the usage and budget commands (UsageService)
 *   memory.c the memory commands (MemoryService)
 *   vault.c  the vault commands (VaultService, /admin/v1/vault)
 *   cron.c   the cron commands (CronService)
 *   pbjson.c a response message as one JSON document (--json)
 *   table.c  column-aligned tables for people
 *   progress.c the progress line of long operations on a terminal
 *   prompt.c the approval prompt of run on a terminal
 *   config.c the config check command (runs palyrad -n)
 *   completion.c the bash completion script, from the command table
 *   common_cmd.c what the tenant commands share: subcommand options,
 *            decoded unary calls, listings page by page
 */
#ifndef PALYRA_CTL_H
#define PALYRA_CTL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

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
/* approvals decide and run --approve: a TTL grant lasts 1s to 30 days, a
 * reason is at most 1 KiB (gateway.proto ApprovalDecision). */
#define CTL_APPROVAL_TTL_MAX_MS	2592000000ULL
#define CTL_APPROVAL_REASON_MAX	1024

/* Exit codes (documented in palyractl(1)). */
enum ctl_exit {
	CTL_EXIT_OK = 0,
	CTL_EXIT_FAIL = 1,
	CTL_EXIT_USAGE = 2,
	CTL_EXIT_CONNECT = 3,	/* cannot connect, or the transport broke */
};

/* What every command needs: where palyrad is and how to talk. */
struct ctl_ctx {
	const char	*grpc_addr;	/* HOST:PORT */
	const char	*url;		/* http://HOST:PORT */
	const char	*state_dir;	/* NULL: the default search */
	const char	*token;		/* --token-file, PALYRA_TOKEN or
					 * PALYRA_TOKEN_FILE; NULL: none */
	int		 json;
	int		 verbose;
	/* Set to 1 by a call whose transport failed (no reply from palyrad):
	 * main then exits CTL_EXIT_CONNECT instead of CTL_EXIT_FAIL. */
	int		*transport_failed;
};

/*
 * One palyractl command: its name, its subcommands and flags (space
 * separated; a flag ending in '=' takes a value), and its handler. The
 * table in ctl.c dispatches commands and generates the shell completion.
 */
struct ctl_command {
	const char	*name;
	const char	*subcommands;
	const char	*flags;
	int		(*run)(struct ctl_ctx *, int argc, char **argv);
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
/* Marks ctx->transport_failed when a libcurl error (a CURLcode) means
 * that palyrad could not be reached or the connection broke. */
void		 ctl_transport_failed(const struct ctl_ctx *, int curl_code);
int		 ctl_grpc_call(const struct ctl_ctx *, const char *path,
		    const char *bearer, const uint8_t *req, size_t req_len,
		    ctl_grpc_msg_cb cb, void *arg, struct ctl_grpc_result *);

/*
 * grpc.c: the response decoder of ctl_grpc_call for another transport:
 * body bytes as they come (-1: abort, res->error says why), each response
 * header or trailer, and the end (0: a complete response with a
 * grpc-status; -1: res->error). A compressed or oversized message, or a
 * malformed grpc-status, fails.
 */
struct ctl_grpc_decoder;
struct ctl_grpc_decoder *ctl_grpc_decoder_new(ctl_grpc_msg_cb, void *arg,
		    struct ctl_grpc_result *);
int		 ctl_grpc_decoder_body(struct ctl_grpc_decoder *,
		    const uint8_t *, size_t);
int		 ctl_grpc_decoder_header(struct ctl_grpc_decoder *,
		    const char *name, size_t namelen, const char *value,
		    size_t valuelen);
int		 ctl_grpc_decoder_finish(struct ctl_grpc_decoder *);
void		 ctl_grpc_decoder_free(struct ctl_grpc_decoder *);

/*
 * grpc_bidi.c: a bidirectional call (RunStream with run --approve) on
 * nghttp2 over its own TCP connection (h2c prior knowledge, as
 * ctl_grpc_call). req is sent first and the request stream stays open; a
 * message callback may queue more with ctl_grpc_send (0, or -1 when the
 * stream is closed or the queue full) and end it with
 * ctl_grpc_close_send. Returns like ctl_grpc_call.
 */
struct ctl_grpc_sender {
	uint8_t		*buf;		/* framed messages not yet sent */
	size_t		 len;
	size_t		 off;
	int		 paused;	/* nghttp2 waits for data */
	int		 resume;	/* paused with something to send */
	int		 closed;
};
int		 ctl_grpc_bidi(const struct ctl_ctx *, const char *path,
		    const char *bearer, const uint8_t *req, size_t req_len,
		    ctl_grpc_msg_cb cb, void *arg, struct ctl_grpc_sender *,
		    struct ctl_grpc_result *);
int		 ctl_grpc_send(struct ctl_grpc_sender *, const uint8_t *msg,
		    size_t len);
void		 ctl_grpc_close_send(struct ctl_grpc_sender *);

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
int		 ctl_admin_put(const struct ctl_ctx *, const char *path,
		    const char *body, long *http_status, char **reply,
		    char *err, size_t errlen);
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

/* approvals.c: approvals list, show, decide, grants, revoke, export,
 * verify-export. Returns a CTL_EXIT_ code. */
int		 ctl_cmd_approvals(struct ctl_ctx *, int argc, char **argv);
/* approvals_export.c: approvals export (output NULL: stdout; since_ms 0:
 * everything) and verify-export. Return a CTL_EXIT_ code. */
int		 ctl_approvals_export(const struct ctl_ctx *, const char *output,
		    int64_t since_ms, const char *token);
int		 ctl_approvals_verify_export(const struct ctl_ctx *,
		    const char *path);
/* "pending" for APPROVAL_STATE_PENDING; "once" for APPROVAL_SCOPE_ONCE
 * ("" for UNSPECIFIED). */
const char	*ctl_approval_state_name(int state);
const char	*ctl_approval_scope_name(int scope);
/* "2026-12-02T07:50:00Z" (UTC) in buf, "-" for 0; returns buf. */
const char	*ctl_time_string(int64_t unix_ms, char *buf, size_t size);
/* Server text on f with control bytes as '?'. */
void		 ctl_print_clean(FILE *f, const char *s);
/*
 * The bearer token of a tenant command from --token, --tenant or
 * ctx->token (ctl_bearer), checked; NULL after a message naming what, with
 * the CTL_EXIT_ code to return in *exit_code. Free it with ctl_free_token
 * (wiped first).
 */
char		*ctl_command_token(const struct ctl_ctx *, const char *token,
		    const char *tenant, const char *what, int *exit_code);
void		 ctl_free_token(char *token);

/*
 * export_verify.c: checks an approval export a line at a time (without
 * its newline): init, then line for each (0, or -1 with error set to
 * "LINE: why"), then finish (0, or -1: no end line). chain and count are
 * those of the records checked so far. hex: n bytes as 2n lower-hex
 * digits and a NUL.
 */
struct ctl_export_verifier {
	uint8_t		 chain[32];
	uint64_t	 count;
	unsigned long	 line;
	int		 ended;
	char		 error[512];
};
void		 ctl_export_verifier_init(struct ctl_export_verifier *);
int		 ctl_export_verifier_line(struct ctl_export_verifier *,
		    const char *line, size_t len);
int		 ctl_export_verifier_finish(struct ctl_export_verifier *);
int		 ctl_export_verifier_fail(struct ctl_export_verifier *,
		    const char *why);
void		 ctl_hex(const uint8_t *in, size_t n, char *out);

/*
 * table.c: a table for people: ncols columns aligned 'l' (left) or 'r'
 * (right) as align says, a header row, then rows of ncols cells (NULL:
 * empty), each copied with control bytes as '?'. Printed column-aligned,
 * two spaces apart. new: NULL when out of memory; add: 0 or -1.
 */
struct ctl_table;
struct ctl_table *ctl_table_new(size_t ncols, const char *align,
		    const char *const *header);
int		 ctl_table_add(struct ctl_table *, const char *const *row);
void		 ctl_table_print(const struct ctl_table *, FILE *);
void		 ctl_table_free(struct ctl_table *);

/* usage.c: usage; budget list, set, delete. Return a CTL_EXIT_ code. */
int		 ctl_cmd_usage(struct ctl_ctx *, int argc, char **argv);
int		 ctl_cmd_budget(struct ctl_ctx *, int argc, char **argv);

/*
 * completion.c: the bash completion script of the commands (ncommands of
 * them) and the global flags on f.
 */
void		 ctl_completion_bash(FILE *f, const struct ctl_command *,
		    size_t ncommands, const char *global_flags);

/*
 * admin.c: reads a token file (a regular file not accessible by others,
 * one token on a line) into out. Returns 0, or -1 with the reason in err.
 */
int		 ctl_token_file(const char *path, char *out, size_t size,
		    char *err, size_t errlen);

/* pbjson.c: a decoded message as one JSON document (enums as lower-case
 * words, bytes base64), and printing one on stdout (consumes obj). The
 * print functions return 0, or -1 (out of memory, write error). */
struct json_t;
struct json_t	*ctl_pb_json(const ProtobufCMessage *);
int		 ctl_print_json(struct json_t *obj);
int		 ctl_print_pb_json(const ProtobufCMessage *);

/* memory.c, vault.c, cron.c: memory add|search|list|show|rm|purge, vault
 * put|get|list|rm|rotate-master, cron add|list|show|rm|run|runs|enable|
 * disable. Return a CTL_EXIT_ code. */
int		 ctl_cmd_memory(struct ctl_ctx *, int argc, char **argv);
int		 ctl_cmd_vault(struct ctl_ctx *, int argc, char **argv);
int		 ctl_cmd_cron(struct ctl_ctx *, int argc, char **argv);
/*
 * vault.c: the whole of path ("-": standard input) into *out (caller
 * frees, wiped; NUL-terminated past *len), at most max bytes. Returns 0,
 * or -1 after a message on stderr naming what.
 */
int		 ctl_read_input(const char *what, const char *path,
		    size_t max, char **out, size_t *len);

/*
 * progress.c: a progress line on stderr for a long operation, drawn only
 * when stderr is a terminal and json is 0 (no --json): start, update with what
 * is done so far (unit "bytes", "lines" or "records"; redrawn at most
 * five times a second, the first at once), end (erases it).
 */
struct ctl_progress {
	int		 on;
	const char	*what;
	int64_t		 start_ms;
	int64_t		 last_ms;
	int		 width;		/* of the longest line drawn */
};
void		 ctl_progress_start(struct ctl_progress *, int json,
		    const char *what);
void		 ctl_progress_update(struct ctl_progress *, uint64_t done,
		    const char *unit);
void		 ctl_progress_end(struct ctl_progress *);

/*
 * prompt.c: run on a terminal: asks on stderr whether to approve the tool
 * call and reads the answer from standard input. Returns 0 with the
 * ApprovalDecisionKind, ApprovalScope and TTL in milliseconds, or -1 at
 * the end of input (a message said so; the caller denies).
 */
int		 ctl_prompt_approval(const char *tool, const char *arguments,
		    int *decision, int *scope, uint64_t *ttl_ms);

/*
 * common_cmd.c: the options of "GROUP SUBCOMMAND [options] operands".
 * CTL_TENANT_OPTIONS go in its option table; the subcommands are a
 * table of names, the letters of the options each takes and how many
 * operands. begin finds the subcommand (NULL: unknown) and readies
 * getopt; next returns the letter of the next option (--tenant, --token
 * and --json are kept in p and ctx->json instead), -1 after the last, or
 * 0 with the complaint in p->why (a bad option, or one that does not go
 * with this subcommand). optind then counts from argv + 1.
 */
#define CTL_TENANT_OPTIONS \
	{ "tenant", required_argument, NULL, 't' }, \
	{ "token", required_argument, NULL, 'T' }, \
	{ "json", no_argument, NULL, 'j' }
struct option;
struct ctl_subcommand {
	const char	*name;
	const char	*options;	/* letters */
	int		 nargs;
};
struct ctl_subparse {
	const char			*group;	/* "memory" */
	const char			*shortopts;
	const struct option		*opts;
	const struct ctl_subcommand	*sub;
	const char			*tenant;
	const char			*token;
	char				 why[96];
};
const struct ctl_subcommand *ctl_subparse_begin(struct ctl_subparse *,
		    const struct ctl_subcommand *, size_t n, const char *name);
int		 ctl_subparse_next(struct ctl_ctx *, struct ctl_subparse *,
		    int argc, char **argv);
/* A decimal number from min to max into *out: 0, or -1. */
int		 ctl_parse_uint(const char *, unsigned long min,
		    unsigned long max, uint32_t *out);
/*
 * common_cmd.c: ctl_unary with its reply decoded as desc (free it with
 * protobuf_c_message_free_unpacked), or NULL after a message on stderr
 * naming what.
 */
void		*ctl_unary_msg(const struct ctl_ctx *, const char *what,
		    const char *method, const char *bearer,
		    const ProtobufCMessage *req,
		    const ProtobufCMessageDescriptor *desc);
/* {"KEY":"VALUE","deleted":true} with --json, else "VALUE deleted". */
void		 ctl_print_deleted(const struct ctl_ctx *, const char *key,
		    const char *value);
/*
 * common_cmd.c: a listing page by page: method with req (its page_token
 * set from the reply's next_page_token), each reply of type reply, its
 * repeated message field called field appended to items (--json) or
 * handed to row for table (made of ncols, align, header). Without all,
 * the first page alone. Returns 0 with total and next (the page token
 * left, or NULL), or -1 after a message on stderr naming what. Free it
 * with ctl_listing_free.
 */
struct ctl_listing {
	const char			*what;
	const char			*method;
	const ProtobufCMessageDescriptor *reply;
	const char			*field;
	int				 all;
	size_t				 ncols;
	const char			*align;
	const char *const		*header;
	int				(*row)(struct ctl_table *,
					    const ProtobufCMessage *);
	struct ctl_table		*table;
	struct json_t			*items;
	size_t				 total;
	char				*next;
};
int		 ctl_list(const struct ctl_ctx *, const char *bearer,
		    ProtobufCMessage *req, struct ctl_listing *);
void		 ctl_listing_free(struct ctl_listing *);

/* config.c: config check [-v] [-f file] (palyrad -n). */
int		 ctl_cmd_config(struct ctl_ctx *, int argc, char **argv);

/* status.c */
int		 ctl_cmd_status(const struct ctl_ctx *, int argc, char **argv);

/* journal.c */
int		 ctl_cmd_journal(const struct ctl_ctx *, int argc, char **argv);

#endif
