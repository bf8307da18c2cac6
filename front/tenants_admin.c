/*
 * tenants_admin.c: /admin/v1/tenants (list, create),
 * /admin/v1/tenants/NAME (show, update limits, delete) and
 * /admin/v1/reload, answered by the supervisor, which keeps the runtime
 * tenants (supervisor/tenants.c) and the configuration.
 * Deeper paths (/admin/v1/tenants/NAME/sessions, ...) are listing.c's.
 *
 * Process: palyra-front. Touches its HTTP connections and the supervisor
 * channel: each request is one IPC_TENANT_ADMIN, answered with one
 * IPC_TENANT_ADMIN_REPLY (a listing: pages) carrying the same request id.
 * Requests waiting for the supervisor are bounded (FE_TENANT_REQUESTS_MAX),
 * end with 503 after FE_TENANT_TIMEOUT_MS, and are freed when their client
 * leaves. The JSON body is decoded here and nowhere else; the bounds of
 * each limit are palyrad.conf's and checked by the supervisor's parser.
 *
 * Body of POST (name required) and PATCH (name not allowed): "workers"
 * (integer), "memory_limit" and "journal_quota" (bytes as an integer, or
 * a size string "256M" with a K, M, G or T suffix), "pids_limit" and
 * "cpu_weight" (integers), "idle_timeout" (milliseconds as an integer, or
 * a duration string "5m" with an ms, s, m, h or d suffix). 0 or null
 * removes a memory, pids, cpu or journal limit; idle_timeout 0 keeps the
 * workers forever. A tenant is answered as {"name", "source" ("config" or
 * "runtime"), "workers", "memory_limit", "pids_limit", "cpu_weight",
 * "journal_quota", "idle_timeout_ms", "running_workers", "agents"}.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>

#include "config.h"
#include "front.h"
#include "log.h"

/* One request waiting for the supervisor. */
struct fe_tenant_req {
	TAILQ_ENTRY(fe_tenant_req) entry;
	struct fe_tenant_reqs *set;
	struct evhttp_request *req;
	struct evhttp_connection *evcon;
	uint32_t request_id;
	int op;
	struct event *timer;
	json_t *tenants; /* LIST: filled page by page */
};

struct fe_tenant_reqs {
	struct fe_ctx *ctx;
	TAILQ_HEAD(, fe_tenant_req) reqs;
	size_t n;
	uint32_t next_id;
};

static void
treq_free(struct fe_tenant_req *tr)
{
	TAILQ_REMOVE(&tr->set->reqs, tr, entry);
	tr->set->n--;
	if (tr->evcon != NULL)
		evhttp_connection_set_closecb(tr->evcon, NULL, NULL);
	if (tr->timer != NULL)
		event_free(tr->timer);
	json_decref(tr->tenants);
	free(tr);
}

static void
treq_fail(
    struct fe_tenant_req *tr, int status, const char *code, const char *message)
{
	struct evhttp_request *req = tr->req;

	treq_free(tr);
	fe_http_reply_error(req, status, code, message);
}

static void
treq_timeout(evutil_socket_t fd, short what, void *arg)
{
	log_warn("the supervisor did not answer a tenant request in %d ms",
	    FE_TENANT_TIMEOUT_MS);
	treq_fail(arg, 503, "unavailable", "the supervisor did not answer");
}

static void
treq_conn_closed(struct evhttp_connection *evcon, void *arg)
{
	struct fe_tenant_req *tr = arg;

	/* The client left first; a late answer finds no request. */
	tr->evcon = NULL;
	treq_free(tr);
}

/* Sends req to the supervisor and waits for its answer. */
static void
treq_send(struct fe_ctx *ctx, struct evhttp_request *req,
    Palyra__Ipc__TenantAdminRequest *ar)
{
	struct timeval tv = {
	    FE_TENANT_TIMEOUT_MS / 1000, (FE_TENANT_TIMEOUT_MS % 1000) * 1000};
	struct fe_tenant_reqs *set = ctx->tenant_reqs;
	struct fe_tenant_req *tr;
	int rc;

	if (ctx->parent == NULL || ctx->stopping) {
		fe_http_reply_error(
		    req, 503, "unavailable", "supervisor unavailable");
		return;
	}
	if (set == NULL) {
		if ((set = calloc(1, sizeof(*set))) == NULL) {
			fe_http_reply_error(
			    req, 503, "unavailable", "out of memory");
			return;
		}
		set->ctx = ctx;
		TAILQ_INIT(&set->reqs);
		ctx->tenant_reqs = set;
	}
	if (set->n >= FE_TENANT_REQUESTS_MAX) {
		fe_http_reply_error(req, 503, "unavailable",
		    "too many tenant requests in progress");
		return;
	}
	if ((tr = calloc(1, sizeof(*tr))) == NULL ||
	    (tr->timer = evtimer_new(ctx->base, treq_timeout, tr)) == NULL ||
	    ((ar->op == PALYRA__IPC__TENANT_ADMIN_OP__TENANT_ADMIN_LIST ||
	    ar->op == PALYRA__IPC__TENANT_ADMIN_OP__TENANT_ADMIN_RELOAD) &&
		(tr->tenants = json_array()) == NULL)) {
		if (tr != NULL && tr->timer != NULL)
			event_free(tr->timer);
		free(tr);
		fe_http_reply_error(req, 503, "unavailable", "out of memory");
		return;
	}
	tr->set = set;
	tr->req = req;
	tr->op = ar->op;
	if (++set->next_id == 0)
		set->next_id = 1;
	tr->request_id = set->next_id;
	TAILQ_INSERT_TAIL(&set->reqs, tr, entry);
	set->n++;
	rc = ipc_chan_send(
	    ctx->parent, IPC_TENANT_ADMIN, tr->request_id, &ar->base, NULL, 0);
	if (rc < 0 || evtimer_add(tr->timer, &tv) < 0) {
		treq_fail(tr, 503, "unavailable",
		    rc == -ENOBUFS ? "supervisor busy"
				   : "supervisor unavailable");
		return;
	}
	tr->evcon = evhttp_request_get_connection(req);
	if (tr->evcon != NULL)
		evhttp_connection_set_closecb(tr->evcon, treq_conn_closed, tr);
}

/* Body decoding */

/* digits, then one of the suffixes; 0 and *out, or -1. */
static int
parse_unit(const char *s, const char *const *suffixes, const uint64_t *factors,
    size_t n, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (*s < '0' || *s > '9')
		return -1;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	for (i = 0; i < n; i++)
		if (strcmp(s, suffixes[i]) == 0)
			break;
	if (i == n || (factors[i] != 0 && v > UINT64_MAX / factors[i]))
		return -1;
	*out = v * factors[i];
	return 0;
}

static int
parse_size(const char *s, uint64_t *out)
{
	static const char *const sfx[] = {"", "K", "M", "G", "T"};
	static const uint64_t f[] = {
	    1, 1ULL << 10, 1ULL << 20, 1ULL << 30, 1ULL << 40};

	return parse_unit(s, sfx, f, 5, out);
}

static int
parse_duration(const char *s, uint64_t *out)
{
	static const char *const sfx[] = {"ms", "s", "m", "h", "d"};
	static const uint64_t f[] = {
	    1, 1000, 60 * 1000, 60 * 60 * 1000, 24ULL * 60 * 60 * 1000};

	if (strcmp(s, "0") == 0) {
		*out = 0;
		return 0;
	}
	return parse_unit(s, sfx, f, 5, out);
}

enum limit_kind { LIMIT_COUNT, LIMIT_SIZE, LIMIT_DURATION };

/*
 * One member of the body: an integer, a string in the unit of kind, or
 * null (0) where nullable. Returns 0, or -1 with a message in why.
 */
static int
limit_value(json_t *v, const char *key, enum limit_kind kind, int nullable,
    uint64_t max, uint64_t *out, char *why, size_t whylen)
{
	int rc;

	if (json_is_null(v) && nullable) {
		*out = 0;
		return 0;
	}
	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		*out = (uint64_t)json_integer_value(v);
	} else if (json_is_string(v) && kind != LIMIT_COUNT) {
		rc = kind == LIMIT_SIZE
			 ? parse_size(json_string_value(v), out)
			 : parse_duration(json_string_value(v), out);
		if (rc != 0) {
			snprintf(why, whylen,
			    kind == LIMIT_SIZE
				? "%s must be a byte count or a size such as "
				  "\"256M\""
				: "%s must be milliseconds or a duration such "
				  "as \"5m\"",
			    key);
			return -1;
		}
	} else {
		snprintf(why, whylen,
		    kind == LIMIT_COUNT	 ? "%s must be a non-negative integer"
		    : kind == LIMIT_SIZE ? "%s must be a byte count or a size "
					   "such as \"256M\""
					 : "%s must be milliseconds or a "
					   "duration such as \"5m\"",
		    key);
		return -1;
	}
	if (*out > max) {
		snprintf(why, whylen, "%s is out of range", key);
		return -1;
	}
	return 0;
}

/*
 * Decodes the JSON body into ar->limits (and ar->name for a create).
 * Returns 0, or -1 after answering 400 or 413.
 */
static int
body_decode(struct evhttp_request *req, int create,
    Palyra__Ipc__TenantAdminRequest *ar, Palyra__Ipc__TenantLimits *l,
    char *name, size_t namelen)
{
	struct evbuffer *input = evhttp_request_get_input_buffer(req);
	char why[160];
	const char *key;
	json_error_t jerr;
	json_t *body, *v;
	uint64_t u;
	size_t len = evbuffer_get_length(input);

	if (len > FE_HTTP_MAX_BODY) {
		fe_http_reply_error(
		    req, 413, "payload_too_large", "body too large");
		return -1;
	}
	body = json_loadb((const char *)evbuffer_pullup(input, -1), len,
	    JSON_REJECT_DUPLICATES, &jerr);
	if (body == NULL || !json_is_object(body)) {
		json_decref(body);
		fe_http_reply_error(
		    req, 400, "bad_request", "body must be a JSON object");
		return -1;
	}
	why[0] = '\0';
	json_object_foreach(body, key, v)
	{
		if (create && strcmp(key, "name") == 0) {
			if (!json_is_string(v) ||
			    !cfg_name_valid(json_string_value(v))) {
				snprintf(why, sizeof(why),
				    "invalid tenant name: 1 to 64 of A-Z a-z "
				    "0-9 . _ -, not starting with . or -");
				break;
			}
			snprintf(name, namelen, "%s", json_string_value(v));
		} else if (strcmp(key, "workers") == 0) {
			if (limit_value(v, key, LIMIT_COUNT, 0, UINT32_MAX, &u,
				why, sizeof(why)) < 0)
				break;
			l->has_workers = 1;
			l->workers = (uint32_t)u;
		} else if (strcmp(key, "memory_limit") == 0) {
			if (limit_value(v, key, LIMIT_SIZE, 1, UINT64_MAX,
				&l->memory_limit, why, sizeof(why)) < 0)
				break;
			l->has_memory_limit = 1;
		} else if (strcmp(key, "journal_quota") == 0) {
			if (limit_value(v, key, LIMIT_SIZE, 1, UINT64_MAX,
				&l->journal_quota, why, sizeof(why)) < 0)
				break;
			l->has_journal_quota = 1;
		} else if (strcmp(key, "pids_limit") == 0) {
			if (limit_value(v, key, LIMIT_COUNT, 1, UINT32_MAX, &u,
				why, sizeof(why)) < 0)
				break;
			l->has_pids_limit = 1;
			l->pids_limit = (uint32_t)u;
		} else if (strcmp(key, "cpu_weight") == 0) {
			if (limit_value(v, key, LIMIT_COUNT, 1, UINT32_MAX, &u,
				why, sizeof(why)) < 0)
				break;
			l->has_cpu_weight = 1;
			l->cpu_weight = (uint32_t)u;
		} else if (strcmp(key, "idle_timeout") == 0) {
			if (limit_value(v, key, LIMIT_DURATION, 0, UINT64_MAX,
				&l->idle_timeout_ms, why, sizeof(why)) < 0)
				break;
			l->has_idle_timeout_ms = 1;
		} else {
			/* The key is the client's: it is not echoed. */
			snprintf(why, sizeof(why), "unknown field");
			break;
		}
	}
	json_decref(body);
	if (why[0] == '\0' && create && name[0] == '\0')
		snprintf(why, sizeof(why), "name is required");
	if (why[0] != '\0') {
		fe_http_reply_error(req, 400, "bad_request", why);
		return -1;
	}
	ar->limits = l;
	return 0;
}

/* Answers */

static json_t *
tenant_json(const Palyra__Ipc__TenantInfo *t)
{
	json_t *agents = json_array(), *o;
	size_t i;

	for (i = 0; agents != NULL && i < t->n_agents; i++)
		if (json_array_append_new(agents, json_string(t->agents[i])) <
		    0) {
			json_decref(agents);
			return NULL;
		}
	if (agents == NULL)
		return NULL;
	o = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o}",
	    "name", t->name, "source", t->source, "workers",
	    (json_int_t)t->workers, "memory_limit", (json_int_t)t->memory_limit,
	    "pids_limit", (json_int_t)t->pids_limit, "cpu_weight",
	    (json_int_t)t->cpu_weight, "journal_quota",
	    (json_int_t)t->journal_quota, "idle_timeout_ms",
	    (json_int_t)t->idle_timeout_ms, "running_workers",
	    (json_int_t)t->running_workers, "agents", agents);
	return o;
}

static void
reply_root(struct evhttp_request *req, int status, json_t *root)
{
	char *text;

	text = root != NULL ? json_dumps(root, JSON_COMPACT) : NULL;
	json_decref(root);
	if (text == NULL) {
		fe_http_reply_error(req, 503, "unavailable", "out of memory");
		return;
	}
	fe_http_reply_json(req, status, text, strlen(text));
	free(text);
}

static const struct {
	uint32_t grpc;
	int http;
	const char *code;
} status_map[] = {
    {GRPC_STATUS_INVALID_ARGUMENT, 400, "bad_request"},
    {GRPC_STATUS_UNAUTHENTICATED, 401, "unauthenticated"},
    {GRPC_STATUS_PERMISSION_DENIED, 403, "forbidden"},
    {GRPC_STATUS_NOT_FOUND, 404, "not_found"},
    {GRPC_STATUS_ALREADY_EXISTS, 409, "conflict"},
    {GRPC_STATUS_FAILED_PRECONDITION, 409, "conflict"},
    {GRPC_STATUS_RESOURCE_EXHAUSTED, 429, "too_many_requests"},
    {GRPC_STATUS_UNAVAILABLE, 503, "unavailable"},
};

/* The supervisor's message, printable ASCII only. */
static void
clean_message(const char *s, char *buf, size_t len)
{
	size_t i;

	for (i = 0; s != NULL && s[i] != '\0' && i < len - 1; i++)
		buf[i] =
		    (unsigned char)s[i] >= 0x20 && (unsigned char)s[i] < 0x7f
			? s[i]
			: '?';
	buf[i] = '\0';
}

static void
treq_finish(struct fe_tenant_req *tr, const Palyra__Ipc__TenantAdminReply *r)
{
	struct evhttp_request *req = tr->req;
	/* Room for a reload error: the prefix and a FILE:LINE:COL message. */
	char message[768];
	json_t *root = NULL, *t;
	size_t i;
	int op = tr->op;

	clean_message(r->message, message, sizeof(message));
	if (r->code != GRPC_STATUS_OK) {
		for (i = 0; i < sizeof(status_map) / sizeof(status_map[0]); i++)
			if (status_map[i].grpc == r->code)
				break;
		treq_fail(tr,
		    i < sizeof(status_map) / sizeof(status_map[0])
			? status_map[i].http
			: 500,
		    i < sizeof(status_map) / sizeof(status_map[0])
			? status_map[i].code
			: "internal",
		    message[0] != '\0' ? message : "internal error");
		return;
	}
	if (op == PALYRA__IPC__TENANT_ADMIN_OP__TENANT_ADMIN_LIST) {
		root = json_pack("{s:O}", "tenants", tr->tenants);
		treq_free(tr);
		reply_root(req, 200, root);
		return;
	}
	if (op == PALYRA__IPC__TENANT_ADMIN_OP__TENANT_ADMIN_RELOAD) {
		root = json_pack(
		    "{s:b, s:O}", "reloaded", 1, "tenants", tr->tenants);
		treq_free(tr);
		reply_root(req, 200, root);
		return;
	}
	treq_free(tr);
	if (op == PALYRA__IPC__TENANT_ADMIN_OP__TENANT_ADMIN_DELETE) {
		root =
		    json_pack("{s:b, s:s}", "deleted", 1, "message", message);
		reply_root(req, 200, root);
		return;
	}
	if (r->n_tenants != 1 || (t = tenant_json(r->tenants[0])) == NULL) {
		fe_http_reply_error(req, 500, "internal", "internal error");
		return;
	}
	if (op != PALYRA__IPC__TENANT_ADMIN_OP__TENANT_ADMIN_GET &&
	    message[0] != '\0')
		json_object_set_new(t, "message", json_string(message));
	reply_root(req,
	    op == PALYRA__IPC__TENANT_ADMIN_OP__TENANT_ADMIN_CREATE ? 201 : 200,
	    t);
}

int
fe_tenants_admin_reply(struct fe_ctx *ctx, uint32_t request_id,
    const Palyra__Ipc__TenantAdminReply *r)
{
	struct fe_tenant_req *tr;
	json_t *t;
	size_t i;

	if (ctx->tenant_reqs == NULL)
		return 0;
	TAILQ_FOREACH(tr, &ctx->tenant_reqs->reqs, entry)
	if (tr->request_id == request_id)
		break;
	if (tr == NULL)
		return 0; /* timed out, or its client left */
	if (r->code == GRPC_STATUS_OK &&
	    (tr->op == PALYRA__IPC__TENANT_ADMIN_OP__TENANT_ADMIN_LIST ||
	    tr->op == PALYRA__IPC__TENANT_ADMIN_OP__TENANT_ADMIN_RELOAD)) {
		if (r->n_tenants >
		    (size_t)CFG_MAX_TENANTS - json_array_size(tr->tenants)) {
			log_warn("tenant listing longer than %d entries",
			    CFG_MAX_TENANTS);
			treq_fail(
			    tr, 503, "unavailable", "too many tenants to list");
			return 0;
		}
		for (i = 0; i < r->n_tenants; i++)
			if ((t = tenant_json(r->tenants[i])) == NULL ||
			    json_array_append_new(tr->tenants, t) < 0) {
				treq_fail(
				    tr, 503, "unavailable", "out of memory");
				return 0;
			}
		if (r->more)
			return 0;
	}
	treq_finish(tr, r);
	return 0;
}

/* Requests */

static void
method_not_allowed(struct evhttp_request *req, const char *allow)
{
	evhttp_add_header(
	    evhttp_request_get_output_headers(req), "Allow", allow);
	fe_http_reply_error(
	    req, 405, "method_not_allowed", "method not allowed");
}

/*
 * /admin/v1/tenants (item NULL) and /admin/v1/tenants/NAME (item: NAME,
 * without a '/').
 */
void
fe_tenants_admin_http(
    struct fe_ctx *ctx, struct evhttp_request *req, const char *item)
{
	Palyra__Ipc__TenantAdminRequest ar =
	    PALYRA__IPC__TENANT_ADMIN_REQUEST__INIT;
	Palyra__Ipc__TenantLimits limits = PALYRA__IPC__TENANT_LIMITS__INIT;
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	char name[NAME_MAX_LEN + 1] = "";

	if (item == NULL && cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_POST) {
		method_not_allowed(req, "GET, POST");
		return;
	}
	if (item != NULL && cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_PATCH &&
	    cmd != EVHTTP_REQ_DELETE) {
		method_not_allowed(req, "GET, PATCH, DELETE");
		return;
	}
	if (!ctx->have_keys) {
		fe_http_reply_error(req, 503, "unavailable", "not ready");
		return;
	}
	if (!fe_http_admin_auth(ctx, req))
		return;
	if (item != NULL) {
		if (!cfg_name_valid(item)) {
			fe_http_reply_error(
			    req, 400, "bad_request", "invalid tenant name");
			return;
		}
		snprintf(name, sizeof(name), "%s", item);
	}
	if (item == NULL && cmd == EVHTTP_REQ_GET)
		ar.op = PALYRA__IPC__TENANT_ADMIN_OP__TENANT_ADMIN_LIST;
	else if (item == NULL) {
		ar.op = PALYRA__IPC__TENANT_ADMIN_OP__TENANT_ADMIN_CREATE;
		if (body_decode(req, 1, &ar, &limits, name, sizeof(name)) < 0)
			return;
	} else if (cmd == EVHTTP_REQ_GET)
		ar.op = PALYRA__IPC__TENANT_ADMIN_OP__TENANT_ADMIN_GET;
	else if (cmd == EVHTTP_REQ_DELETE)
		ar.op = PALYRA__IPC__TENANT_ADMIN_OP__TENANT_ADMIN_DELETE;
	else {
		ar.op = PALYRA__IPC__TENANT_ADMIN_OP__TENANT_ADMIN_UPDATE;
		if (body_decode(req, 0, &ar, &limits, NULL, 0) < 0)
			return;
	}
	ar.name = name;
	treq_send(ctx, req, &ar);
}

/*
 * POST /admin/v1/reload: palyrad.conf read again and applied, as on
 * SIGHUP. 200 {"reloaded": true, "tenants": [...]}, or 409 with the parse
 * error when the running configuration was kept.
 */
void
fe_tenants_admin_reload(struct fe_ctx *ctx, struct evhttp_request *req)
{
	Palyra__Ipc__TenantAdminRequest ar =
	    PALYRA__IPC__TENANT_ADMIN_REQUEST__INIT;

	if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
		method_not_allowed(req, "POST");
		return;
	}
	if (!ctx->have_keys) {
		fe_http_reply_error(req, 503, "unavailable", "not ready");
		return;
	}
	if (!fe_http_admin_auth(ctx, req))
		return;
	ar.op = PALYRA__IPC__TENANT_ADMIN_OP__TENANT_ADMIN_RELOAD;
	ar.name = "";
	treq_send(ctx, req, &ar);
}

/*
 * At exit, before the HTTP connections are freed: requests still waiting
 * are dropped without an answer.
 */
void
fe_tenants_admin_shutdown(struct fe_ctx *ctx)
{
	struct fe_tenant_req *tr;

	if (ctx->tenant_reqs == NULL)
		return;
	while ((tr = TAILQ_FIRST(&ctx->tenant_reqs->reqs)) != NULL)
		treq_free(tr);
	free(ctx->tenant_reqs);
	ctx->tenant_reqs = NULL;
}
