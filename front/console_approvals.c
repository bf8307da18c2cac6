/*
 * console_approvals.c: the governance routes of /console/v1 (console.c):
 *
 *   GET    /console/v1/approvals?state=&run_id=&page_size=&page_token=
 *   GET    /console/v1/approvals/ID
 *   POST   /console/v1/approvals/ID/decision
 *          {"decision":"allow"|"deny","scope":"once"|"session"|"ttl",
 *           "ttl_ms":N,"reason":"..."}
 *   GET    /console/v1/approvals/export?since_unix_ms=   application/x-ndjson
 *   GET    /console/v1/grants?include_expired=1
 *   DELETE /console/v1/grants/ID
 *   GET    /console/v1/usage?from_day=&to_day=&agent=&principal=&group_by=
 *   GET    /console/v1/budgets
 *   POST   /console/v1/budgets        {a Budget}
 *   PUT    /console/v1/budgets/ID     {a Budget; the id names its scope,
 *                                      subject, unit and period}
 *   DELETE /console/v1/budgets/ID
 *
 * Each is a request message of its ApprovalsService or UsageService
 * method (front/services.c), built from the path, the query and the JSON
 * body (checked here: size, depth, known members and their types, enum
 * words); journald checks the values and the principal and role rules.
 * Replies are the response messages as JSON with enums as lower-case
 * words ("pending", "ttl", "tokens"). The export streams the NDJSON lines
 * as journald hands them over, bounded like an event stream: a reader more
 * than FE_CONSOLE_SSE_OUT_MAX behind ends it with a last line
 * {"error":{...}} (so does any error after the first line), which
 * `palyractl approvals verify-export` reports as an incomplete export.
 *
 * Process: palyra-front. Decodes these routes' query strings and bodies
 * (the one place they are decoded); touches the HTTP connections of its
 * export replies.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "console.h"
#include "log.h"
#include "palyra/v1/gateway.pb-c.h"

#define GROUP_BY_MAX 8	   /* group_by words */
#define GROUP_WORD_MAX 16  /* "principal" */
#define PAGE_TOKEN_MAX 256 /* journald's tokens are far shorter */
#define BUDGET_ID_MAX (NAME_MAX_LEN + 32)

/* An enum word of the console and its value. */
struct word {
	const char *word;
	int value;
};

static const struct word approval_states[] = {
    {"pending", PALYRA__V1__APPROVAL_STATE__APPROVAL_STATE_PENDING},
    {"allowed", PALYRA__V1__APPROVAL_STATE__APPROVAL_STATE_ALLOWED},
    {"denied", PALYRA__V1__APPROVAL_STATE__APPROVAL_STATE_DENIED},
    {"expired", PALYRA__V1__APPROVAL_STATE__APPROVAL_STATE_EXPIRED},
    {NULL, 0},
};

static const struct word decisions[] = {
    {"allow", PALYRA__V1__APPROVAL_DECISION_KIND__APPROVAL_DECISION_ALLOW},
    {"deny", PALYRA__V1__APPROVAL_DECISION_KIND__APPROVAL_DECISION_DENY},
    {NULL, 0},
};

static const struct word scopes[] = {
    {"once", PALYRA__V1__APPROVAL_SCOPE__APPROVAL_SCOPE_ONCE},
    {"session", PALYRA__V1__APPROVAL_SCOPE__APPROVAL_SCOPE_SESSION},
    {"ttl", PALYRA__V1__APPROVAL_SCOPE__APPROVAL_SCOPE_TTL},
    {NULL, 0},
};

static const struct word budget_scopes[] = {
    {"tenant", PALYRA__V1__BUDGET_SCOPE__BUDGET_SCOPE_TENANT},
    {"agent", PALYRA__V1__BUDGET_SCOPE__BUDGET_SCOPE_AGENT},
    {"principal", PALYRA__V1__BUDGET_SCOPE__BUDGET_SCOPE_PRINCIPAL},
    {NULL, 0},
};

static const struct word budget_units[] = {
    {"tokens", PALYRA__V1__BUDGET_UNIT__BUDGET_UNIT_TOKENS},
    {"cost", PALYRA__V1__BUDGET_UNIT__BUDGET_UNIT_COST},
    {NULL, 0},
};

static const struct word budget_periods[] = {
    {"day", PALYRA__V1__BUDGET_PERIOD__BUDGET_PERIOD_DAY},
    {"month", PALYRA__V1__BUDGET_PERIOD__BUDGET_PERIOD_MONTH},
    {"total", PALYRA__V1__BUDGET_PERIOD__BUDGET_PERIOD_TOTAL},
    {NULL, 0},
};

/* The value of word in table, or -1. */
static int
word_value(const struct word *table, const char *word)
{
	size_t i;

	for (i = 0; table[i].word != NULL; i++)
		if (strcmp(table[i].word, word) == 0)
			return table[i].value;
	return -1;
}

/* An optional member that must be one of table's words: 0 (*out set when
 * present), or -1 after a 400 naming the words. */
static int
word_member(struct fe_console_req *cr, json_t *obj, const char *key,
    const struct word *table, int *out)
{
	const char *s = NULL, *sep;
	char msg[128];
	size_t i, n;
	int v;

	if (fe_console_str_member(cr, obj, key, &s) < 0)
		return -1;
	if (s == NULL)
		return 0;
	if ((v = word_value(table, s)) < 0) {
		n = (size_t)snprintf(msg, sizeof(msg), "%s must be", key);
		for (i = 0; table[i].word != NULL && n < sizeof(msg); i++) {
			sep = i == 0 ? "" : ",";
			if (i > 0 && table[i + 1].word == NULL)
				sep = " or";
			n += (size_t)snprintf(msg + n, sizeof(msg) - n, "%s %s",
			    sep, table[i].word);
		}
		fe_console_fail(cr, 400, "bad_request", msg);
		return -1;
	}
	*out = v;
	return 0;
}

/* An optional non-negative integer member: 0, or -1 after a 400. */
static int
uint_member(struct fe_console_req *cr, json_t *obj, const char *key,
    uint64_t *out, int *present)
{
	json_t *v = json_object_get(obj, key);
	char msg[96];

	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0) {
		snprintf(
		    msg, sizeof(msg), "%s must be an integer, 0 or more", key);
		fe_console_fail(cr, 400, "bad_request", msg);
		return -1;
	}
	*out = (uint64_t)json_integer_value(v);
	if (present != NULL)
		*present = 1;
	return 0;
}

/* An optional boolean member: 0, or -1 after a 400. */
static int
bool_member(struct fe_console_req *cr, json_t *obj, const char *key, int *out)
{
	json_t *v = json_object_get(obj, key);
	char msg[96];

	if (v == NULL)
		return 0;
	if (!json_is_boolean(v)) {
		snprintf(msg, sizeof(msg), "%s must be a boolean", key);
		fe_console_fail(cr, 400, "bad_request", msg);
		return -1;
	}
	*out = json_is_true(v);
	return 0;
}

/* One path segment: an id of at most max bytes, no slash. */
static int
id_ok(const char *s, size_t max)
{
	size_t len = strlen(s);

	return len > 0 && len <= max && strchr(s, '/') == NULL;
}

static void
call_begin(struct fe_console_req *cr, enum fe_method method,
    const ProtobufCMessage *msg)
{
	cr->kind = FE_CONSOLE_UNARY;
	cr->words = 1;
	fe_console_call_begin(cr, method, msg);
}

/* ---- approvals ---- */

static void
approvals_list(struct fe_console_req *cr)
{
	static const char *const params[] = {
	    "state", "run_id", "page_size", "page_token", NULL};
	Palyra__V1__ListApprovalsRequest m =
	    PALYRA__V1__LIST_APPROVALS_REQUEST__INIT;
	struct evkeyvalq q;
	const char *state, *run_id, *size, *token, *why = NULL;
	int64_t n = 0;
	int v = 0;

	if (fe_console_query(cr, &q, params) < 0)
		return;
	state = evhttp_find_header(&q, "state");
	run_id = evhttp_find_header(&q, "run_id");
	size = evhttp_find_header(&q, "page_size");
	token = evhttp_find_header(&q, "page_token");
	if (state != NULL && strcmp(state, "all") != 0 &&
	    (v = word_value(approval_states, state)) < 0)
		why = "state must be pending, allowed, denied, expired or all";
	else if (size != NULL &&
		 (n = fe_console_query_uint(size, 1, FE_SESSIONS_PAGE_MAX)) < 0)
		why = "page_size must be 1 to 100";
	else if (run_id != NULL && strlen(run_id) > FE_RUN_ID_MAX)
		why = "run_id too long";
	else if (token != NULL && strlen(token) > PAGE_TOKEN_MAX)
		why = "malformed page_token";
	if (why != NULL) {
		evhttp_clear_headers(&q);
		fe_console_fail(cr, 400, "bad_request", why);
		return;
	}
	m.state = state != NULL && v > 0 ? (Palyra__V1__ApprovalState)v : 0;
	m.run_id = (char *)(run_id != NULL ? run_id : "");
	m.page_size = (uint32_t)n;
	m.page_token = (char *)(token != NULL ? token : "");
	call_begin(cr, FE_METHOD_LIST_APPROVALS, &m.base);
	evhttp_clear_headers(&q);
}

static void
approvals_export(struct fe_console_req *cr)
{
	static const char *const params[] = {"since_unix_ms", NULL};
	Palyra__V1__ExportApprovalsRequest m =
	    PALYRA__V1__EXPORT_APPROVALS_REQUEST__INIT;
	struct evkeyvalq q;
	const char *since;
	int64_t n = 0;

	if (fe_console_query(cr, &q, params) < 0)
		return;
	since = evhttp_find_header(&q, "since_unix_ms");
	if (since != NULL &&
	    (n = fe_console_query_uint(since, 0, INT64_MAX)) < 0) {
		evhttp_clear_headers(&q);
		fe_console_fail(cr, 400, "bad_request",
		    "since_unix_ms must be a non-negative integer");
		return;
	}
	evhttp_clear_headers(&q);
	m.since_unix_ms = n;
	cr->kind = FE_CONSOLE_EXPORT;
	/* Counted as a stream: bounded per source address and in all. */
	if (fe_console_sse_admit(cr) == 0)
		fe_console_call_begin(cr, FE_METHOD_EXPORT_APPROVALS, &m.base);
}

static void
approval_decide(struct fe_console_req *cr, const char *id)
{
	static const char *const keys[] = {
	    "decision", "scope", "ttl_ms", "reason", NULL};
	Palyra__V1__DecideApprovalRequest m =
	    PALYRA__V1__DECIDE_APPROVAL_REQUEST__INIT;
	Palyra__V1__ApprovalDecision d = PALYRA__V1__APPROVAL_DECISION__INIT;
	int decision = -1, scope = 0;
	const char *reason = NULL;
	json_t *body;

	if ((body = fe_console_body_json(cr, keys, 0)) == NULL)
		return;
	if (word_member(cr, body, "decision", decisions, &decision) < 0 ||
	    word_member(cr, body, "scope", scopes, &scope) < 0 ||
	    uint_member(cr, body, "ttl_ms", &d.ttl_ms, NULL) < 0 ||
	    fe_console_str_member(cr, body, "reason", &reason) < 0)
		goto out;
	if (decision < 0) {
		fe_console_fail(cr, 400, "bad_request",
		    "decision is required: allow or deny");
		goto out;
	}
	if (reason != NULL && strlen(reason) > FE_RUN_REASON_MAX) {
		fe_console_fail(cr, 400, "bad_request", "reason too long");
		goto out;
	}
	d.approval_id = (char *)id;
	d.decision = (Palyra__V1__ApprovalDecisionKind)decision;
	d.scope = (Palyra__V1__ApprovalScope)scope;
	d.reason = (char *)(reason != NULL ? reason : "");
	m.decision = &d;
	call_begin(cr, FE_METHOD_DECIDE_APPROVAL, &m.base);
out:
	json_decref(body);
}

static void
route_approvals(
    struct fe_console_req *cr, enum evhttp_cmd_type cmd, const char *rest)
{
	Palyra__V1__GetApprovalRequest get =
	    PALYRA__V1__GET_APPROVAL_REQUEST__INIT;
	char id[FE_APPROVAL_ID_MAX + 1];
	const char *slash = strchr(rest, '/');
	size_t len = slash != NULL ? (size_t)(slash - rest) : strlen(rest);

	if (*rest == '\0' || strcmp(rest, "export") == 0) {
		if (cmd != EVHTTP_REQ_GET)
			fe_console_not_allowed(cr, "GET");
		else if (*rest == '\0')
			approvals_list(cr);
		else
			approvals_export(cr);
		return;
	}
	if (len == 0 || len > FE_APPROVAL_ID_MAX ||
	    (slash != NULL && strcmp(slash + 1, "decision") != 0)) {
		fe_console_fail(cr, 404, "not_found", "no such resource");
		return;
	}
	snprintf(id, sizeof(id), "%.*s", (int)len, rest);
	if (slash == NULL) {
		if (cmd != EVHTTP_REQ_GET) {
			fe_console_not_allowed(cr, "GET");
			return;
		}
		get.approval_id = id;
		call_begin(cr, FE_METHOD_GET_APPROVAL, &get.base);
	} else if (cmd != EVHTTP_REQ_POST)
		fe_console_not_allowed(cr, "POST");
	else
		approval_decide(cr, id);
}

/* ---- grants ---- */

static void
route_grants(
    struct fe_console_req *cr, enum evhttp_cmd_type cmd, const char *rest)
{
	static const char *const params[] = {"include_expired", NULL};
	Palyra__V1__ListGrantsRequest list =
	    PALYRA__V1__LIST_GRANTS_REQUEST__INIT;
	Palyra__V1__RevokeGrantRequest revoke =
	    PALYRA__V1__REVOKE_GRANT_REQUEST__INIT;
	struct evkeyvalq q;
	const char *inc;

	if (*rest == '\0') {
		if (cmd != EVHTTP_REQ_GET) {
			fe_console_not_allowed(cr, "GET");
			return;
		}
		if (fe_console_query(cr, &q, params) < 0)
			return;
		inc = evhttp_find_header(&q, "include_expired");
		if (inc != NULL && strcmp(inc, "0") != 0 &&
		    strcmp(inc, "1") != 0) {
			evhttp_clear_headers(&q);
			fe_console_fail(cr, 400, "bad_request",
			    "include_expired must be 0 or 1");
			return;
		}
		list.include_expired = inc != NULL && strcmp(inc, "1") == 0;
		evhttp_clear_headers(&q);
		call_begin(cr, FE_METHOD_LIST_GRANTS, &list.base);
		return;
	}
	if (!id_ok(rest, FE_APPROVAL_ID_MAX)) {
		fe_console_fail(cr, 404, "not_found", "no such resource");
		return;
	}
	if (cmd != EVHTTP_REQ_DELETE) {
		fe_console_not_allowed(cr, "DELETE");
		return;
	}
	revoke.grant_id = (char *)rest;
	call_begin(cr, FE_METHOD_REVOKE_GRANT, &revoke.base);
}

/* ---- usage ---- */

static void
route_usage(struct fe_console_req *cr, enum evhttp_cmd_type cmd)
{
	static const char *const params[] = {
	    "from_day", "to_day", "agent", "principal", "group_by", NULL};
	Palyra__V1__GetUsageRequest m = PALYRA__V1__GET_USAGE_REQUEST__INIT;
	char groups[GROUP_BY_MAX][GROUP_WORD_MAX + 1];
	char *group_ptrs[GROUP_BY_MAX];
	struct evkeyvalq q;
	const char *from, *to, *agent, *principal, *group_by, *p, *end;
	const char *why = NULL;
	size_t n = 0, len;

	if (cmd != EVHTTP_REQ_GET) {
		fe_console_not_allowed(cr, "GET");
		return;
	}
	if (fe_console_query(cr, &q, params) < 0)
		return;
	from = evhttp_find_header(&q, "from_day");
	to = evhttp_find_header(&q, "to_day");
	agent = evhttp_find_header(&q, "agent");
	principal = evhttp_find_header(&q, "principal");
	group_by = evhttp_find_header(&q, "group_by");
	if ((from != NULL && strlen(from) > GROUP_WORD_MAX) ||
	    (to != NULL && strlen(to) > GROUP_WORD_MAX))
		why = "from_day and to_day are YYYY-MM-DD";
	else if ((agent != NULL && strlen(agent) > NAME_MAX_LEN) ||
		 (principal != NULL && strlen(principal) > NAME_MAX_LEN))
		why = "agent or principal name too long";
	/* group_by=day,agent: words separated by commas; journald knows
	 * which words it takes. */
	for (p = group_by; why == NULL && p != NULL && *p != '\0'; p = end) {
		end = strchr(p, ',');
		len = end != NULL ? (size_t)(end - p) : strlen(p);
		if (len == 0 || len > GROUP_WORD_MAX || n == GROUP_BY_MAX) {
			why = "group_by takes up to 8 of day, agent, principal "
			      "and model, separated by commas";
			break;
		}
		snprintf(groups[n], sizeof(groups[n]), "%.*s", (int)len, p);
		group_ptrs[n] = groups[n];
		n++;
		end = end != NULL ? end + 1 : p + len;
	}
	if (why != NULL) {
		evhttp_clear_headers(&q);
		fe_console_fail(cr, 400, "bad_request", why);
		return;
	}
	m.from_day = (char *)(from != NULL ? from : "");
	m.to_day = (char *)(to != NULL ? to : "");
	m.agent = (char *)(agent != NULL ? agent : "");
	m.principal = (char *)(principal != NULL ? principal : "");
	m.n_group_by = n;
	m.group_by = group_ptrs;
	call_begin(cr, FE_METHOD_GET_USAGE, &m.base);
	evhttp_clear_headers(&q);
}

/* ---- budgets ---- */

/* POST /budgets (id NULL) and PUT /budgets/ID: SetBudget. */
static void
budget_set(struct fe_console_req *cr, const char *id)
{
	/* A Budget as ListBudgets shows it may come back as it is: what
	 * journald keeps (source, used, reserved, period_start) is ignored. */
	static const char *const keys[] = {"budget_id", "scope", "subject",
	    "unit", "limit", "period", "hard", "source", "used", "reserved",
	    "period_start", NULL};
	Palyra__V1__SetBudgetRequest m = PALYRA__V1__SET_BUDGET_REQUEST__INIT;
	Palyra__V1__Budget b = PALYRA__V1__BUDGET__INIT;
	struct fe_budget_id named;
	const char *subject = NULL, *body_id = NULL;
	int scope = 0, unit = 0, period = 0, hard = 0, has_limit = 0;
	json_t *body;

	if ((body = fe_console_body_json(cr, keys, 0)) == NULL)
		return;
	if (word_member(cr, body, "scope", budget_scopes, &scope) < 0 ||
	    word_member(cr, body, "unit", budget_units, &unit) < 0 ||
	    word_member(cr, body, "period", budget_periods, &period) < 0 ||
	    fe_console_str_member(cr, body, "subject", &subject) < 0 ||
	    fe_console_str_member(cr, body, "budget_id", &body_id) < 0 ||
	    uint_member(cr, body, "limit", &b.limit, &has_limit) < 0 ||
	    bool_member(cr, body, "hard", &hard) < 0)
		goto out;
	if (!has_limit) {
		fe_console_fail(cr, 400, "bad_request",
		    "limit is required (tokens, or micro-USD for cost)");
		goto out;
	}
	b.scope = (Palyra__V1__BudgetScope)scope;
	b.unit = (Palyra__V1__BudgetUnit)unit;
	b.period = (Palyra__V1__BudgetPeriod)period;
	b.subject = (char *)(subject != NULL ? subject : "");
	b.hard = hard;
	/* The id of the path (or of the body) names what the budget covers;
	 * members of the body that say otherwise are a mistake. */
	if (id == NULL && body_id != NULL && body_id[0] != '\0')
		id = body_id;
	if (id != NULL) {
		if (fe_console_budget_id(id, &named) < 0) {
			fe_console_fail(cr, 400, "bad_request",
			    "malformed budget id: tenant:UNIT:PERIOD, "
			    "agent:NAME:UNIT:PERIOD or "
			    "principal:NAME:UNIT:PERIOD");
			goto out;
		}
		if ((scope != 0 && scope != named.scope) ||
		    (unit != 0 && unit != named.unit) ||
		    (period != 0 && period != named.period) ||
		    (subject != NULL && strcmp(subject, named.subject) != 0) ||
		    (body_id != NULL && body_id[0] != '\0' &&
			strcmp(body_id, id) != 0)) {
			fe_console_fail(cr, 400, "bad_request",
			    "the body does not match the budget id");
			goto out;
		}
		b.scope = (Palyra__V1__BudgetScope)named.scope;
		b.unit = (Palyra__V1__BudgetUnit)named.unit;
		b.period = (Palyra__V1__BudgetPeriod)named.period;
		b.subject = named.subject;
	}
	m.budget = &b;
	call_begin(cr, FE_METHOD_SET_BUDGET, &m.base);
out:
	json_decref(body);
}

static void
route_budgets(
    struct fe_console_req *cr, enum evhttp_cmd_type cmd, const char *rest)
{
	Palyra__V1__ListBudgetsRequest list =
	    PALYRA__V1__LIST_BUDGETS_REQUEST__INIT;
	Palyra__V1__DeleteBudgetRequest del =
	    PALYRA__V1__DELETE_BUDGET_REQUEST__INIT;
	char *id;

	if (*rest == '\0') {
		if (cmd == EVHTTP_REQ_GET)
			call_begin(cr, FE_METHOD_LIST_BUDGETS, &list.base);
		else if (cmd == EVHTTP_REQ_POST)
			budget_set(cr, NULL);
		else
			fe_console_not_allowed(cr, "GET, POST");
		return;
	}
	/* Ids hold colons, which a client may have percent-encoded. */
	if (!id_ok(rest, BUDGET_ID_MAX * 3) ||
	    (id = evhttp_uridecode(rest, 0, NULL)) == NULL) {
		fe_console_fail(cr, 404, "not_found", "no such resource");
		return;
	}
	if (!id_ok(id, BUDGET_ID_MAX))
		fe_console_fail(cr, 404, "not_found", "no such resource");
	else if (cmd == EVHTTP_REQ_PUT)
		budget_set(cr, id);
	else if (cmd == EVHTTP_REQ_DELETE) {
		del.budget_id = id;
		call_begin(cr, FE_METHOD_DELETE_BUDGET, &del.base);
	} else
		fe_console_not_allowed(cr, "PUT, DELETE");
	free(id);
}

int
fe_console_governance_path(const char *path)
{
	return strcmp(path, "approvals") == 0 ||
	       strncmp(path, "approvals/", 10) == 0 ||
	       strcmp(path, "grants") == 0 ||
	       strncmp(path, "grants/", 7) == 0 || strcmp(path, "usage") == 0 ||
	       strcmp(path, "budgets") == 0 ||
	       strncmp(path, "budgets/", 8) == 0;
}

void
fe_console_route_governance(
    struct fe_console_req *cr, enum evhttp_cmd_type cmd, const char *path)
{
	if (strncmp(path, "approvals", 9) == 0)
		route_approvals(cr, cmd, path[9] == '/' ? path + 10 : "");
	else if (strncmp(path, "grants", 6) == 0)
		route_grants(cr, cmd, path[6] == '/' ? path + 7 : "");
	else if (strcmp(path, "usage") == 0)
		route_usage(cr, cmd);
	else
		route_budgets(cr, cmd, path[7] == '/' ? path + 8 : "");
}

/* ---- the export's body ---- */

static size_t
pending(const struct fe_console_req *cr)
{
	return cr->call != NULL ? fe_console_pending(cr->call) : 0;
}

static int
export_start(struct fe_console_req *cr)
{
	struct timeval wtv = {FE_HTTP_TIMEOUT_S, 0};
	struct evhttp_connection *evcon;
	struct bufferevent *bev;

	if (cr->sse_started)
		return 0;
	if (cr->req == NULL)
		return -ENOBUFS;
	evhttp_add_header(evhttp_request_get_output_headers(cr->req),
	    "Content-Type", "application/x-ndjson");
	cr->sse_started = 1;
	cr->answered = 1;
	evhttp_send_reply_start(cr->req, 200, "OK");
	/* Only writing is timed while the body streams: journald may take
	 * a while between chunks of a large export. */
	if ((evcon = evhttp_request_get_connection(cr->req)) != NULL &&
	    (bev = evhttp_connection_get_bufferevent(evcon)) != NULL)
		bufferevent_set_timeouts(bev, NULL, &wtv);
	return 0;
}

int
fe_console_export_chunk(struct fe_console_req *cr, const ProtobufCMessage *msg)
{
	const Palyra__V1__ExportChunk *chunk =
	    (const Palyra__V1__ExportChunk *)msg;
	struct evbuffer *b;
	int rc;

	if (msg->descriptor != &palyra__v1__export_chunk__descriptor)
		return -EINVAL;
	if (cr->req == NULL || pending(cr) > FE_CONSOLE_SSE_OUT_MAX)
		return -ENOBUFS;
	if ((rc = export_start(cr)) < 0)
		return rc;
	if (chunk->ndjson.len == 0)
		return 0;
	if ((b = evbuffer_new()) == NULL)
		return -ENOMEM;
	if (evbuffer_add(b, chunk->ndjson.data, chunk->ndjson.len) < 0)
		rc = -ENOMEM;
	else
		evhttp_send_reply_chunk(cr->req, b);
	evbuffer_free(b);
	return rc;
}

int
fe_console_export_finish(struct fe_console_req *cr, struct fe_call *call)
{
	struct evhttp_connection *evcon;
	struct evbuffer *b;
	const char *code;
	json_t *obj;
	char *text;
	int status;

	if (cr->req == NULL)
		return 1;
	if (!cr->sse_started) {
		if (call->status != GRPC_STATUS_OK || export_start(cr) < 0)
			return 0;
	}
	/* An error after the first line: one more line says so, and the
	 * export, lacking its end line, does not verify. */
	if (call->status != GRPC_STATUS_OK) {
		fe_console_status_http(call->status, &status, &code);
		obj = json_pack("{s:{s:s,s:s}}", "error", "code", code,
		    "message", call->message[0] != '\0' ? call->message : code);
		text = obj != NULL ? json_dumps(obj, JSON_COMPACT) : NULL;
		json_decref(obj);
		if (text != NULL && (b = evbuffer_new()) != NULL) {
			evbuffer_add_printf(b, "%s\n", text);
			evhttp_send_reply_chunk(cr->req, b);
			evbuffer_free(b);
		}
		free(text);
	}
	fe_console_detach(cr);
	if ((evcon = evhttp_request_get_connection(cr->req)) != NULL)
		evhttp_connection_set_timeout(evcon, FE_HTTP_TIMEOUT_S);
	evhttp_send_reply_end(cr->req);
	cr->req = NULL;
	return 1;
}
