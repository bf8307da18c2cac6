/*
 * usage_api.c: UsageService at journald (GetUsage, ListBudgets,
 * SetBudget, DeleteBudget), reached through service.c.
 *
 * Runs in palyra-journald. Reads the usage table, reads and writes the
 * budgets table of the token's tenant (writes inside its batch, committed
 * before the answer), and answers the front. The front verified the token;
 * the request message is decoded here alone. A user token sees only its
 * own principal's usage; setting and deleting budgets takes an operator or
 * admin token.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grpc_status.h"
#include "journald.h"
#include "log.h"
#include "palyra/v1/gateway.pb-c.h"
#include "usage.h"
#include "usage_int.h"

#define USAGE_PREFIX "/palyra.v1.UsageService/"

enum group {
	GROUP_DAY = 0x1,
	GROUP_AGENT = 0x2,
	GROUP_PRINCIPAL = 0x4,
	GROUP_MODEL = 0x8,
};

static const struct {
	const char *name;
	unsigned bit;
	const char *column;
} groups[] = {
    {"day", GROUP_DAY, "day"},
    {"agent", GROUP_AGENT, "agent"},
    {"principal", GROUP_PRINCIPAL, "principal"},
    {"model", GROUP_MODEL, "model"},
};

#define NGROUPS (sizeof(groups) / sizeof(groups[0]))

static int
reply_status(
    struct jnl_ctx *ctx, uint32_t id, uint32_t code, const char *message)
{
	return jnl_service_reply(ctx, id, code, message, NULL, 0);
}

/* GetUsage. */

struct usage_rows {
	Palyra__V1__UsageRow *row;
	Palyra__V1__UsageRow **ptr;
	char **strings; /* owned, 4 per row */
	size_t n;
};

static void
rows_free(struct usage_rows *r)
{
	size_t i;

	for (i = 0; i < r->n * 4; i++)
		free(r->strings[i]);
	free(r->strings);
	free(r->row);
	free(r->ptr);
}

static char *
column_dup(sqlite3_stmt *st, int col)
{
	const char *s = (const char *)sqlite3_column_text(st, col);

	return strdup(s != NULL ? s : "");
}

/*
 * Runs the usage query: one row per group (grouped), or the total. The
 * columns are day, agent, principal, model ('' when not grouped) and the
 * four sums. Returns 0, -E2BIG (more than JNL_USAGE_ROWS_MAX rows),
 * -ENOMEM or -EIO.
 */
static int
usage_query(struct jnl_tenant *t, unsigned group, const char *from,
    const char *to, const char *agent, const char *principal,
    struct usage_rows *out)
{
	char sql[1024], cols[128] = "", order[128] = "";
	Palyra__V1__UsageRow *row;
	sqlite3_stmt *st = NULL;
	size_t i, cap = 0;
	void *n;
	int rc;

	memset(out, 0, sizeof(*out));
	for (i = 0; i < NGROUPS; i++) {
		if (group & groups[i].bit) {
			strcat(cols, groups[i].column);
			if (order[0] != '\0')
				strcat(order, ", ");
			strcat(order, groups[i].column);
		} else
			strcat(cols, "''");
		strcat(cols, ", ");
	}
	snprintf(sql, sizeof(sql),
	    "SELECT %s coalesce(sum(input_tokens), 0),"
	    " coalesce(sum(output_tokens), 0), coalesce(sum(cost_micros), 0),"
	    " coalesce(sum(calls), 0) FROM usage"
	    " WHERE day >= ?1 AND day <= ?2 AND (?3 IS NULL OR agent = ?3)"
	    " AND (?4 IS NULL OR principal = ?4)%s%s%s%s LIMIT %d",
	    cols, group ? " GROUP BY " : "", order, group ? " ORDER BY " : "",
	    order, JNL_USAGE_ROWS_MAX + 1);
	if (jnl_db_prepare(t->db, sql, &st) < 0)
		return -EIO;
	sqlite3_bind_text(st, 1, from, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, to, -1, SQLITE_STATIC);
	if (agent[0] != '\0')
		sqlite3_bind_text(st, 3, agent, -1, SQLITE_STATIC);
	if (principal[0] != '\0')
		sqlite3_bind_text(st, 4, principal, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (out->n == JNL_USAGE_ROWS_MAX) {
			rc = -E2BIG;
			break;
		}
		if (out->n == cap) {
			cap = cap ? cap * 2 : 16;
			if ((n = reallocarray(
				 out->row, cap, sizeof(*out->row))) == NULL) {
				rc = -ENOMEM;
				break;
			}
			out->row = n;
			if ((n = reallocarray(out->strings, cap * 4,
				 sizeof(*out->strings))) == NULL) {
				rc = -ENOMEM;
				break;
			}
			out->strings = n;
		}
		row = &out->row[out->n];
		palyra__v1__usage_row__init(row);
		for (i = 0; i < 4; i++)
			out->strings[out->n * 4 + i] = column_dup(st, (int)i);
		out->n++;
		for (i = 0; i < 4; i++)
			if (out->strings[(out->n - 1) * 4 + i] == NULL)
				rc = -ENOMEM;
		if (rc == -ENOMEM)
			break;
		row->day = out->strings[(out->n - 1) * 4];
		row->agent = out->strings[(out->n - 1) * 4 + 1];
		row->principal = out->strings[(out->n - 1) * 4 + 2];
		row->model = out->strings[(out->n - 1) * 4 + 3];
		row->input_tokens = (uint64_t)sqlite3_column_int64(st, 4);
		row->output_tokens = (uint64_t)sqlite3_column_int64(st, 5);
		row->cost_micro_usd = (uint64_t)sqlite3_column_int64(st, 6);
		row->calls = (uint64_t)sqlite3_column_int64(st, 7);
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE && out->n > 0 &&
	    (out->ptr = calloc(out->n, sizeof(*out->ptr))) == NULL)
		rc = -ENOMEM;
	if (rc != SQLITE_DONE) {
		if (rc > 0)
			log_error(
			    "%s: usage query: %s", t->name, sqlite3_errstr(rc));
		rows_free(out);
		memset(out, 0, sizeof(*out));
		return rc < 0 ? rc : -EIO;
	}
	for (i = 0; i < out->n; i++)
		out->ptr[i] = &out->row[i];
	return 0;
}

static int
get_usage(struct jnl_ctx *ctx, struct jnl_tenant *t, uint32_t id,
    const Palyra__Ipc__ServiceCall *call,
    const Palyra__V1__GetUsageRequest *req)
{
	Palyra__V1__GetUsageResponse resp =
	    PALYRA__V1__GET_USAGE_RESPONSE__INIT;
	Palyra__V1__UsageRow empty = PALYRA__V1__USAGE_ROW__INIT;
	struct usage_rows rows, total;
	struct jnl_usage *u;
	const char *principal = req->principal, *to = req->to_day;
	char message[160];
	unsigned group = 0;
	size_t i, j;
	int rc;

	if (strcmp(call->role, "user") == 0) {
		if (principal[0] != '\0' &&
		    strcmp(principal, call->principal) != 0)
			return reply_status(ctx, id,
			    GRPC_STATUS_PERMISSION_DENIED,
			    "a user token sees only its own usage");
		principal = call->principal;
	}
	if (req->from_day[0] != '\0' && !jnl_day_valid(req->from_day))
		return reply_status(ctx, id, GRPC_STATUS_INVALID_ARGUMENT,
		    "from_day is not a day (YYYY-MM-DD)");
	if (req->to_day[0] != '\0' && !jnl_day_valid(req->to_day))
		return reply_status(ctx, id, GRPC_STATUS_INVALID_ARGUMENT,
		    "to_day is not a day (YYYY-MM-DD)");
	if (req->agent[0] != '\0' && !jnl_name_valid(req->agent))
		return reply_status(ctx, id, GRPC_STATUS_INVALID_ARGUMENT,
		    "invalid agent name");
	if (principal[0] != '\0' && !jnl_name_valid(principal))
		return reply_status(ctx, id, GRPC_STATUS_INVALID_ARGUMENT,
		    "invalid principal name");
	for (i = 0; i < req->n_group_by; i++) {
		for (j = 0; j < NGROUPS; j++)
			if (strcmp(req->group_by[i], groups[j].name) == 0)
				break;
		if (j == NGROUPS) {
			snprintf(message, sizeof(message),
			    "unknown group_by \"%.32s\" (day, agent, "
			    "principal, model)",
			    req->group_by[i]);
			return reply_status(
			    ctx, id, GRPC_STATUS_INVALID_ARGUMENT, message);
		}
		group |= groups[j].bit;
	}
	if (t->db == NULL || (u = jnl_usage_get(t)) == NULL)
		return reply_status(
		    ctx, id, GRPC_STATUS_UNAVAILABLE, "journal unavailable");
	if (to[0] == '\0')
		to = jnl_usage_today(ctx, t, u);
	if (req->from_day[0] != '\0' && strcmp(req->from_day, to) > 0)
		return reply_status(ctx, id, GRPC_STATUS_INVALID_ARGUMENT,
		    "from_day is after to_day (by default today)");
	if ((rc = usage_query(
		 t, 0, req->from_day, to, req->agent, principal, &total)) < 0)
		return reply_status(
		    ctx, id, GRPC_STATUS_UNAVAILABLE, "journal unavailable");
	memset(&rows, 0, sizeof(rows));
	if (group != 0 && (rc = usage_query(t, group, req->from_day, to,
			       req->agent, principal, &rows)) < 0) {
		rows_free(&total);
		if (rc == -E2BIG) {
			snprintf(message, sizeof(message),
			    "more than %d rows: narrow the days or the "
			    "grouping",
			    JNL_USAGE_ROWS_MAX);
			return reply_status(
			    ctx, id, GRPC_STATUS_RESOURCE_EXHAUSTED, message);
		}
		return reply_status(
		    ctx, id, GRPC_STATUS_UNAVAILABLE, "journal unavailable");
	}
	resp.rows = rows.ptr;
	resp.n_rows = rows.n;
	resp.total = total.n > 0 ? &total.row[0] : &empty;
	/* The total is not a group: its columns stay empty. */
	resp.total->day = resp.total->agent = resp.total->principal =
	    resp.total->model = (char *)"";
	resp.timezone = (char *)jnl_usage_timezone(t);
	rc = jnl_service_reply(ctx, id, GRPC_STATUS_OK, NULL, &resp.base, 0);
	rows_free(&rows);
	rows_free(&total);
	return rc;
}

/* Budgets. */

/* Fills pb from b with its used and reserved amounts today. Returns 0 or
 * the ledger's error. */
static int
budget_fill(struct jnl_tenant *t, struct jnl_usage *u, const char *day,
    const struct jnl_budget *b, Palyra__V1__Budget *pb,
    char start[JNL_DAY_LEN + 1])
{
	struct jnl_budget_cell *cell;
	int rc;

	if ((rc = jnl_ledger_cell(
		 &u->ledger, b, day, jnl_usage_load_used, t, &cell)) < 0)
		return rc;
	palyra__v1__budget__init(pb);
	pb->budget_id = (char *)b->id;
	pb->scope = (Palyra__V1__BudgetScope)b->scope;
	pb->subject = (char *)b->subject;
	pb->unit = (Palyra__V1__BudgetUnit)b->unit;
	pb->limit = b->limit;
	pb->period = (Palyra__V1__BudgetPeriod)b->period;
	pb->hard = b->hard;
	pb->source = b->runtime ? "runtime" : "config";
	pb->used = cell->used;
	pb->reserved = cell->reserved;
	jnl_period_start(b->period, day, start);
	pb->period_start = start;
	return 0;
}

static int
list_budgets(struct jnl_ctx *ctx, struct jnl_tenant *t, uint32_t id)
{
	Palyra__V1__ListBudgetsResponse resp =
	    PALYRA__V1__LIST_BUDGETS_RESPONSE__INIT;
	Palyra__V1__Budget *items = NULL, **ptrs = NULL;
	char(*starts)[JNL_DAY_LEN + 1] = NULL;
	struct jnl_usage *u;
	const char *day;
	size_t i, n;
	int rc = 0;

	if (t->db == NULL || (u = jnl_usage_get(t)) == NULL ||
	    jnl_usage_budgets(t, u, &n) < 0)
		return reply_status(
		    ctx, id, GRPC_STATUS_UNAVAILABLE, "journal unavailable");
	day = jnl_usage_today(ctx, t, u);
	if (n > 0 && ((items = calloc(n, sizeof(*items))) == NULL ||
			 (ptrs = calloc(n, sizeof(*ptrs))) == NULL ||
			 (starts = calloc(n, sizeof(*starts))) == NULL))
		rc = -ENOMEM;
	for (i = 0; i < n && rc == 0; i++) {
		rc = budget_fill(t, u, day, &u->all[i], &items[i], starts[i]);
		ptrs[i] = &items[i];
	}
	if (rc < 0)
		rc = reply_status(
		    ctx, id, GRPC_STATUS_UNAVAILABLE, "journal unavailable");
	else {
		resp.budgets = ptrs;
		resp.n_budgets = n;
		rc = jnl_service_reply(
		    ctx, id, GRPC_STATUS_OK, NULL, &resp.base, 0);
	}
	free(items);
	free(ptrs);
	free(starts);
	return rc;
}

static const struct jnl_budget *
runtime_find(const struct jnl_usage *u, const char *budget_id)
{
	size_t i;

	for (i = 0; i < u->nruntime; i++)
		if (strcmp(u->runtime[i].id, budget_id) == 0)
			return &u->runtime[i];
	return NULL;
}

/* Writes b (insert or replace its limit and kind) and commits. Returns 0
 * or -EIO. */
static int
budget_store(
    struct jnl_ctx *ctx, struct jnl_tenant *t, const struct jnl_budget *b)
{
	sqlite3_stmt *st = NULL;
	int rc = -EIO;

	if (jnl_batch_begin(ctx, t) < 0)
		return -EIO;
	jnl_schedule_commit(ctx);
	if (jnl_db_prepare(t->db,
		"INSERT INTO budgets (id, scope, subject, unit, period, amount,"
		" hard, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
		" ON CONFLICT (id) DO UPDATE SET amount = excluded.amount,"
		" hard = excluded.hard",
		&st) == 0) {
		sqlite3_bind_text(st, 1, b->id, -1, SQLITE_STATIC);
		sqlite3_bind_text(
		    st, 2, jnl_budget_scope_name(b->scope), -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, b->subject, -1, SQLITE_STATIC);
		sqlite3_bind_text(
		    st, 4, jnl_budget_unit_name(b->unit), -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, jnl_budget_period_name(b->period), -1,
		    SQLITE_STATIC);
		sqlite3_bind_int64(st, 6, (int64_t)b->limit);
		sqlite3_bind_int(st, 7, b->hard);
		sqlite3_bind_int64(st, 8, b->created_ms);
		if (sqlite3_step(st) == SQLITE_DONE)
			rc = 0;
		else
			log_error("%s: budget %s: %s", t->name, b->id,
			    sqlite3_errmsg(t->db));
	}
	sqlite3_finalize(st);
	/* Stored before it is told: a failed commit rolls the write back
	 * with the batch, and the reload below does not find it. */
	jnl_commit_all(ctx);
	return rc;
}

static int
set_budget(struct jnl_ctx *ctx, struct jnl_tenant *t, uint32_t id,
    const Palyra__Ipc__ServiceCall *call,
    const Palyra__V1__SetBudgetRequest *req)
{
	const Palyra__V1__Budget *in = req->budget;
	struct jnl_budget b, conf;
	const struct jnl_budget *stored;
	Palyra__V1__Budget out;
	char start[JNL_DAY_LEN + 1], message[200];
	struct jnl_usage *u;
	const char *day;

	if (!jnl_service_privileged(call))
		return reply_status(ctx, id, GRPC_STATUS_PERMISSION_DENIED,
		    "setting a budget takes an operator or admin token");
	if (in == NULL)
		return reply_status(ctx, id, GRPC_STATUS_INVALID_ARGUMENT,
		    "budget is required");
	memset(&b, 0, sizeof(b));
	b.scope = (int)in->scope;
	b.unit = (int)in->unit;
	b.period = (int)in->period;
	b.limit = in->limit;
	b.hard = in->hard != 0;
	b.runtime = 1;
	b.created_ms = (int64_t)jnl_now_ms();
	if (jnl_budget_scope_name(b.scope) == NULL)
		return reply_status(ctx, id, GRPC_STATUS_INVALID_ARGUMENT,
		    "scope must be tenant, agent or principal");
	if (jnl_budget_unit_name(b.unit) == NULL)
		return reply_status(ctx, id, GRPC_STATUS_INVALID_ARGUMENT,
		    "unit must be tokens or cost");
	if (jnl_budget_period_name(b.period) == NULL)
		return reply_status(ctx, id, GRPC_STATUS_INVALID_ARGUMENT,
		    "period must be day, month or total");
	if (b.scope == JNL_SCOPE_TENANT && in->subject[0] != '\0')
		return reply_status(ctx, id, GRPC_STATUS_INVALID_ARGUMENT,
		    "a tenant budget has no subject");
	if (b.scope != JNL_SCOPE_TENANT && !jnl_name_valid(in->subject))
		return reply_status(ctx, id, GRPC_STATUS_INVALID_ARGUMENT,
		    b.scope == JNL_SCOPE_AGENT
			? "subject must be an agent name"
			: "subject must be a principal name");
	if (b.limit > JNL_BUDGET_LIMIT_MAX)
		return reply_status(ctx, id, GRPC_STATUS_INVALID_ARGUMENT,
		    "limit is too large");
	snprintf(b.subject, sizeof(b.subject), "%s", in->subject);
	if (jnl_budget_make_id(&b) < 0)
		return reply_status(
		    ctx, id, GRPC_STATUS_INVALID_ARGUMENT, "invalid budget");
	if (jnl_usage_config_find(t, b.id, &conf) != NULL) {
		snprintf(message, sizeof(message),
		    "budget %s is set in palyrad.conf", b.id);
		return reply_status(
		    ctx, id, GRPC_STATUS_FAILED_PRECONDITION, message);
	}
	if (t->db == NULL || (u = jnl_usage_get(t)) == NULL ||
	    (!u->runtime_loaded && jnl_usage_runtime_reload(t, u) < 0))
		return reply_status(
		    ctx, id, GRPC_STATUS_UNAVAILABLE, "journal unavailable");
	if (runtime_find(u, b.id) == NULL && u->nruntime >= JNL_BUDGETS_MAX) {
		snprintf(message, sizeof(message),
		    "too many budgets (at most %d)", JNL_BUDGETS_MAX);
		return reply_status(
		    ctx, id, GRPC_STATUS_RESOURCE_EXHAUSTED, message);
	}
	if (budget_store(ctx, t, &b) < 0 ||
	    jnl_usage_runtime_reload(t, u) < 0 ||
	    (stored = runtime_find(u, b.id)) == NULL ||
	    stored->limit != b.limit || stored->hard != b.hard)
		return reply_status(
		    ctx, id, GRPC_STATUS_UNAVAILABLE, "journal unavailable");
	log_info("%s: budget %s set to %llu (%s) by %s", t->name, b.id,
	    (unsigned long long)b.limit, b.hard ? "hard" : "soft",
	    call->principal);
	day = jnl_usage_today(ctx, t, u);
	if (budget_fill(t, u, day, stored, &out, start) < 0)
		return reply_status(
		    ctx, id, GRPC_STATUS_UNAVAILABLE, "journal unavailable");
	return jnl_service_reply(ctx, id, GRPC_STATUS_OK, NULL, &out.base, 0);
}

static int
delete_budget(struct jnl_ctx *ctx, struct jnl_tenant *t, uint32_t id,
    const Palyra__Ipc__ServiceCall *call,
    const Palyra__V1__DeleteBudgetRequest *req)
{
	Palyra__V1__DeleteBudgetResponse resp =
	    PALYRA__V1__DELETE_BUDGET_RESPONSE__INIT;
	struct jnl_budget conf;
	sqlite3_stmt *st = NULL;
	struct jnl_usage *u;
	char message[200];
	int changed = -1;

	if (!jnl_service_privileged(call))
		return reply_status(ctx, id, GRPC_STATUS_PERMISSION_DENIED,
		    "deleting a budget takes an operator or admin token");
	if (req->budget_id[0] == '\0' ||
	    strlen(req->budget_id) > JNL_BUDGET_ID_MAX)
		return reply_status(
		    ctx, id, GRPC_STATUS_INVALID_ARGUMENT, "invalid budget id");
	if (jnl_usage_config_find(t, req->budget_id, &conf) != NULL) {
		snprintf(message, sizeof(message),
		    "budget %s is set in palyrad.conf, not at run time",
		    req->budget_id);
		return reply_status(ctx, id, GRPC_STATUS_NOT_FOUND, message);
	}
	if (t->db == NULL || (u = jnl_usage_get(t)) == NULL)
		return reply_status(
		    ctx, id, GRPC_STATUS_UNAVAILABLE, "journal unavailable");
	if (jnl_batch_begin(ctx, t) == 0) {
		jnl_schedule_commit(ctx);
		if (jnl_db_prepare(
			t->db, "DELETE FROM budgets WHERE id = ?", &st) == 0) {
			sqlite3_bind_text(
			    st, 1, req->budget_id, -1, SQLITE_STATIC);
			if (sqlite3_step(st) == SQLITE_DONE)
				changed = sqlite3_changes(t->db);
		}
		sqlite3_finalize(st);
		jnl_commit_all(ctx);
	}
	if (changed < 0 || jnl_usage_runtime_reload(t, u) < 0 ||
	    (changed > 0 && runtime_find(u, req->budget_id) != NULL))
		return reply_status(
		    ctx, id, GRPC_STATUS_UNAVAILABLE, "journal unavailable");
	if (changed == 0) {
		snprintf(message, sizeof(message), "no runtime budget %.*s",
		    JNL_BUDGET_ID_MAX, req->budget_id);
		return reply_status(ctx, id, GRPC_STATUS_NOT_FOUND, message);
	}
	log_info("%s: budget %s deleted by %s", t->name, req->budget_id,
	    call->principal);
	return jnl_service_reply(ctx, id, GRPC_STATUS_OK, NULL, &resp.base, 0);
}

/* Dispatch. */

int
jnl_usage_call(struct jnl_ctx *ctx, uint32_t request_id,
    const Palyra__Ipc__ServiceCall *call)
{
	static const struct jnl_method methods[] = {
	    {"GetUsage", &palyra__v1__get_usage_request__descriptor},
	    {"ListBudgets", &palyra__v1__list_budgets_request__descriptor},
	    {"SetBudget", &palyra__v1__set_budget_request__descriptor},
	    {"DeleteBudget", &palyra__v1__delete_budget_request__descriptor},
	};
	static const struct jnl_service svc = {
	    methods, sizeof(methods) / sizeof(methods[0]), NULL};
	ProtobufCMessage *in;
	struct jnl_tenant *t;
	int i, rc;

	if ((i = jnl_service_open(ctx, request_id, call,
		 call->method + strlen(USAGE_PREFIX), &svc, &t, &in, &rc)) < 0)
		return rc;
	switch (i) {
	case 0:
		rc = get_usage(ctx, t, request_id, call,
		    (const Palyra__V1__GetUsageRequest *)in);
		break;
	case 1:
		rc = list_budgets(ctx, t, request_id);
		break;
	case 2:
		rc = set_budget(ctx, t, request_id, call,
		    (const Palyra__V1__SetBudgetRequest *)in);
		break;
	default:
		rc = delete_budget(ctx, t, request_id, call,
		    (const Palyra__V1__DeleteBudgetRequest *)in);
		break;
	}
	protobuf_c_message_free_unpacked(in, NULL);
	return rc;
}
