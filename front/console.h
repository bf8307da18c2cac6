/*
 * console.h: the internals of /console/v1 (console.c, console_sse.c),
 * shared by its two files only.
 *
 * Process: palyra-front.
 */
#ifndef PALYRA_FRONT_CONSOLE_H
#define PALYRA_FRONT_CONSOLE_H

#include <sys/queue.h>

#include <stdint.h>

#include <event2/http.h>
#include <jansson.h>

#include "front.h"

#define FE_CONSOLE_SECRET_LEN 32    /* session id and CSRF token: 256 bits */
#define FE_CONSOLE_PROVIDERS_MAX 16 /* an agent's providers */

/* What a request renders. */
enum fe_console_kind {
	FE_CONSOLE_UNARY = 0,	 /* one reply message as JSON */
	FE_CONSOLE_SESSIONS,	 /* ListSessions as a console page */
	FE_CONSOLE_SESSION_SHOW, /* a session's runs (journald listing) */
	FE_CONSOLE_AGENT_CREATE, /* one message, 201 (any create) */
	FE_CONSOLE_RUN_START,	 /* RunStream as text/event-stream */
	FE_CONSOLE_EVENTS_PAGE,	 /* ListRunEvents until caught up, JSON */
	FE_CONSOLE_EVENTS_SSE,	 /* ListRunEvents as text/event-stream */
	FE_CONSOLE_LOGIN,
	FE_CONSOLE_ME,
	FE_CONSOLE_EXPORT,	 /* ExportApprovals as application/x-ndjson */
};

/* One login session: the token's keyed hash, never the token. */
struct fe_login {
	int used;
	uint8_t id[FE_CONSOLE_SECRET_LEN];
	uint8_t csrf[FE_CONSOLE_SECRET_LEN];
	uint8_t token_hash[FE_HASH_LEN];
	int64_t created_s;
	int64_t last_used_s;
	int64_t expires_s; /* absolute */
};

/* One /console/v1 request in progress. */
struct fe_console_req {
	TAILQ_ENTRY(fe_console_req) entry;
	struct fe_ctx *ctx;
	/* The call's pseudo-connection: ctx and the source address only. */
	struct fe_conn conn;
	struct evhttp_request *req;	 /* NULL once answered or gone */
	struct evhttp_connection *evcon; /* NULL once its closecb is unset */
	struct fe_call *call;
	enum fe_console_kind kind;
	int words; /* enums as lower-case words (fe_pb_json_words()) */
	int answered;
	int dropping;		/* its call is being released */
	struct fe_login *login; /* the cookie's session, or NULL (bearer) */
	uint8_t login_id[FE_CONSOLE_SECRET_LEN]; /* ... as it was then */
	uint8_t token_hash[FE_HASH_LEN];
	json_t *result; /* the reply built so far */
	int page_full;	/* EVENTS_PAGE: FE_CONSOLE_EVENTS_PAGE_MAX reached */
	struct event *release_ev;
	struct event *timer; /* SESSION_SHOW: journald's answer */
	/* SESSION_SHOW: the session, the page asked for, our request id. */
	char name[NAME_MAX_LEN + 1];
	char cursor[JNL_CURSOR_MAX + 1];
	uint32_t limit;
	uint32_t list_id;
	/* SSE (console_sse.c). */
	int sse_counted;
	int sse_started;
	struct event *keepalive;
};

TAILQ_HEAD(fe_console_req_list, fe_console_req);

struct fe_console {
	struct fe_console_req_list reqs;
	size_t nsse;
	struct fe_login *logins; /* FE_CONSOLE_LOGINS_MAX */
	size_t nlogins;
	uint32_t next_list_id;
};

/* console.c */
void fe_console_status_http(uint32_t grpc_status, int *http, const char **code);
void fe_console_fail(
    struct fe_console_req *, int status, const char *code, const char *message);
void fe_console_reply_obj(struct fe_console_req *, int status, json_t *obj);
void fe_console_done(struct fe_console_req *);
void fe_console_detach(struct fe_console_req *);
void fe_console_transcript(struct fe_console_req *, struct fe_call *);

void fe_console_call_begin(
    struct fe_console_req *, enum fe_method, const ProtobufCMessage *);

/* console_login.c */
/* The request's credentials: 0 with cr->token_hash set, or -1 after
 * answering (401, 403 for a missing or wrong CSRF token, 429). */
int fe_console_authenticate(struct fe_console_req *, enum evhttp_cmd_type);
void fe_console_route_login(struct fe_console_req *, enum evhttp_cmd_type);
void fe_console_route_logout(struct fe_console_req *, enum evhttp_cmd_type);
/* The token of a login checked out: a new session, answered. */
void fe_console_login_create(struct fe_console_req *, struct fe_call *);
/* The request's login session, unless it ended meanwhile, or NULL. */
struct fe_login *fe_console_req_login(struct fe_console_req *);
void fe_console_login_end(struct fe_console *, struct fe_login *);

/* console_routes.c */
void fe_console_route_sessions(
    struct fe_console_req *, enum evhttp_cmd_type, const char *rest);
void fe_console_route_runs(
    struct fe_console_req *, enum evhttp_cmd_type, const char *rest);
void fe_console_route_agents(
    struct fe_console_req *, enum evhttp_cmd_type, const char *rest);
void fe_console_not_allowed(struct fe_console_req *, const char *allow);
/* Parses the query against allowed names (NULL-terminated) into q: 0, or
 * -1 after a 400. The caller clears q. */
int fe_console_query(
    struct fe_console_req *, struct evkeyvalq *q, const char *const *allowed);
/* The JSON object body with only the members allowed (NULL-terminated),
 * or NULL after answering 400 or 413. */
json_t *fe_console_body_json(
    struct fe_console_req *, const char *const *allowed, int empty_ok);
/* An optional string member: 0, or -1 after answering 400. */
int fe_console_str_member(
    struct fe_console_req *, json_t *obj, const char *key, const char **out);

/* console_approvals.c: approvals, grants, usage and budgets. path: what
 * follows /console/v1/ (approvals..., grants..., usage, budgets...). */
int fe_console_governance_path(const char *path);
void fe_console_route_governance(
    struct fe_console_req *, enum evhttp_cmd_type, const char *path);
/* ExportApprovals' chunks as the reply body: 0, -ENOBUFS (a slow reader)
 * or -ENOMEM; and its end (returns 1 when the body had started, 0 when
 * the end is a plain JSON reply). */
int fe_console_export_chunk(struct fe_console_req *, const ProtobufCMessage *);
int fe_console_export_finish(struct fe_console_req *, struct fe_call *);

/* console_services.c: memory, vault metadata and cron. path: what
 * follows /console/v1/ (memory..., vault..., cron...). */
int fe_console_services_path(const char *path);
void fe_console_route_services(
    struct fe_console_req *, enum evhttp_cmd_type, const char *path);

/* console_parse.c */
/* 1 when the JSON text nests arrays and objects at most max deep (strings
 * and their escapes skipped), else 0. */
int fe_console_json_depth_ok(const char *text, size_t len, int max);
/* The value of cookie name in a Cookie header into out: 0, or -1 when
 * absent or not shorter than outsize. */
int fe_console_cookie_value(
    const char *header, const char *name, char *out, size_t outsize);
/* A decimal query value in [min, max], or -1. */
int64_t fe_console_query_uint(const char *v, int64_t min, int64_t max);
/* A budget id ("tenant:UNIT:PERIOD", "agent:NAME:UNIT:PERIOD" or
 * "principal:NAME:UNIT:PERIOD", UNIT tokens|cost, PERIOD day|month|total)
 * as the enum values of gateway.proto's Budget: 0, or -1 when malformed. */
struct fe_budget_id {
	int scope;  /* Palyra__V1__BudgetScope */
	int unit;   /* Palyra__V1__BudgetUnit */
	int period; /* Palyra__V1__BudgetPeriod */
	char subject[NAME_MAX_LEN + 1]; /* "" for the tenant */
};
int fe_console_budget_id(const char *id, struct fe_budget_id *);

/* console_sse.c */
/* Admits one more SSE stream from the request's source: 0, or -1 after
 * answering 429. */
int fe_console_sse_admit(struct fe_console_req *);
int fe_console_sse_event(struct fe_console_req *, const ProtobufCMessage *);
/* The call ended: ends the stream and returns 1, or returns 0 when no
 * stream was started and the end is a plain JSON reply. */
int fe_console_sse_finish(struct fe_console_req *, struct fe_call *);
void fe_console_sse_stop(struct fe_console_req *);

#endif
