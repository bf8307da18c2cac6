/*
 * usage.c: usage, budgets and reservations (issue 7): the workers'
 * IPC_BUDGET_RESERVE and IPC_BUDGET_SETTLE, and the state behind
 * UsageService (usage_api.c).
 *
 * Runs in palyra-journald. Touches the usage and budgets tables of the
 * tenants' journal.db (writes inside the tenant's batch) and answers the
 * worker channels. A reservation is answered at once from memory: the
 * ledger (budgets.c) keeps each budget's settled usage of the current
 * period, loaded once by SUM and kept up to date at each settle, and what
 * calls in flight hold. Reservations are not stored: if journald
 * restarts, the workers' runs are interrupted anyway.
 *
 * A budget applies to a call when its scope is the tenant, or its agent
 * is the call's agent, or its principal the call's principal. Budgets
 * come from palyrad.conf (TenantAgents.budgets, source "config") and from
 * the budgets table (SetBudget, source "runtime"); a runtime budget never
 * shadows a configured one of the same id. Days and months are those of
 * the tenant's time zone (zones.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "journald.h"
#include "log.h"
#include "usage.h"
#include "usage_int.h"

#define UPSERT_SQL                                                             \
	"INSERT INTO usage (day, agent, principal, provider, model,"           \
	" input_tokens, output_tokens, cost_micros, calls)"                    \
	" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 1)"                          \
	" ON CONFLICT (day, agent, principal, provider, model) DO UPDATE SET"  \
	" input_tokens = input_tokens + excluded.input_tokens,"                \
	" output_tokens = output_tokens + excluded.output_tokens,"             \
	" cost_micros = cost_micros + excluded.cost_micros,"                   \
	" calls = calls + 1"
#define SUM_SQL                                                                \
	"SELECT coalesce(sum(CASE WHEN ?1 THEN input_tokens + output_tokens"   \
	" ELSE cost_micros END), 0) FROM usage WHERE day >= ?2 AND day <= ?3"  \
	" AND (?4 IS NULL OR agent = ?4) AND (?5 IS NULL OR principal = ?5)"
#define RUNTIME_SQL                                                            \
	"SELECT id, scope, subject, unit, period, amount, hard, created_ms"    \
	" FROM budgets ORDER BY id"

/* State. */

struct jnl_usage *
jnl_usage_get(struct jnl_tenant *t)
{
	struct jnl_usage *u;

	if (t->usage != NULL)
		return t->usage;
	if ((u = calloc(1, sizeof(*u))) == NULL)
		return NULL;
	jnl_ledger_init(&u->ledger);
	u->minute = -1;
	t->usage = u;
	return u;
}

void
jnl_usage_close(struct jnl_tenant *t)
{
	struct jnl_usage *u = t->usage;

	if (u == NULL)
		return;
	sqlite3_finalize(u->upsert);
	sqlite3_finalize(u->sum);
	jnl_ledger_free(&u->ledger);
	free(u->runtime);
	free(u->all);
	free(u->checks);
	free(u);
	t->usage = NULL;
}

void
jnl_usage_rolled_back(struct jnl_tenant *t)
{
	if (t->usage != NULL)
		jnl_ledger_invalidate(&t->usage->ledger);
}

/*
 * Zone rules are read on demand from JNL_ZONEINFO_DIR, which the sandbox
 * keeps readable (a read-only bind of tzdata inside journald's root):
 * walking all of tzdata at start cost 15-20 ms of every start for zones
 * no tenant names. The table stays empty; jnl_zone_rule() reads the one
 * file a tenant names when its day is computed (at most once a minute).
 */
int
jnl_usage_init(struct jnl_ctx *ctx)
{
	ctx->zones = NULL;
	return 0;
}

void
jnl_usage_free(struct jnl_ctx *ctx)
{
	jnl_zones_free(ctx->zones);
	ctx->zones = NULL;
}

const char *
jnl_usage_timezone(const struct jnl_tenant *t)
{
	if (t->agents == NULL || t->agents->timezone == NULL ||
	    t->agents->timezone[0] == '\0')
		return "UTC";
	return t->agents->timezone;
}

/*
 * Today in t's time zone. Midnight and every change of offset fall on a
 * minute boundary, so the day is computed once a minute at most.
 */
const char *
jnl_usage_today(struct jnl_ctx *ctx, struct jnl_tenant *t, struct jnl_usage *u)
{
	const char *name = jnl_usage_timezone(t);
	time_t now = time(NULL);
	struct tm tm;

	if (!u->tz_known || strcmp(name, u->tz_name) != 0) {
		if (strlen(name) > JNL_TZ_NAME_MAX ||
		    jnl_zone_rule(
			ctx->zones, JNL_ZONEINFO_DIR, name, u->tz_rule) < 0) {
			log_warn("%s: time zone \"%.64s\" unknown here; usage "
				 "days are UTC days",
			    t->name, name);
			strcpy(u->tz_rule, "UTC0");
		}
		snprintf(u->tz_name, sizeof(u->tz_name), "%s", name);
		u->tz_known = 1;
		u->minute = -1;
	}
	if ((int64_t)(now / 60) != u->minute) {
		if (jnl_zone_day(u->tz_rule, now, u->day) < 0) {
			gmtime_r(&now, &tm);
			strftime(u->day, sizeof(u->day), "%Y-%m-%d", &tm);
		}
		u->minute = (int64_t)(now / 60);
	}
	return u->day;
}

/* Budgets. */

static int
scratch_reserve(struct jnl_usage *u, size_t n)
{
	struct jnl_budget *all;
	struct jnl_budget_check *checks;

	if (n <= u->all_cap)
		return 0;
	if ((all = reallocarray(u->all, n, sizeof(*all))) == NULL)
		return -ENOMEM;
	u->all = all;
	if ((checks = reallocarray(u->checks, n, sizeof(*checks))) == NULL)
		return -ENOMEM;
	u->checks = checks;
	u->all_cap = n;
	return 0;
}

/* Loads the budgets table into u->runtime. Returns 0 or -EIO. */
static int
runtime_load(struct jnl_tenant *t, struct jnl_usage *u)
{
	struct jnl_budget *list = NULL, *n, *b;
	size_t count = 0, cap = 0;
	sqlite3_stmt *st = NULL;
	const char *s;
	int rc;

	if (t->db == NULL || jnl_db_prepare(t->db, RUNTIME_SQL, &st) < 0)
		return -EIO;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (count == cap) {
			cap = cap ? cap * 2 : 16;
			if ((n = reallocarray(list, cap, sizeof(*n))) == NULL) {
				rc = SQLITE_NOMEM;
				break;
			}
			list = n;
		}
		b = &list[count];
		memset(b, 0, sizeof(*b));
		b->scope = jnl_budget_scope_parse(
		    (const char *)sqlite3_column_text(st, 1));
		s = (const char *)sqlite3_column_text(st, 2);
		snprintf(
		    b->subject, sizeof(b->subject), "%s", s != NULL ? s : "");
		b->unit = jnl_budget_unit_parse(
		    (const char *)sqlite3_column_text(st, 3));
		b->period = jnl_budget_period_parse(
		    (const char *)sqlite3_column_text(st, 4));
		b->limit = (uint64_t)sqlite3_column_int64(st, 5);
		b->hard = sqlite3_column_int(st, 6) != 0;
		b->created_ms = sqlite3_column_int64(st, 7);
		b->runtime = 1;
		s = (const char *)sqlite3_column_text(st, 0);
		/* A row whose id does not say what it counts is skipped:
		 * only SetBudget writes the table, so this is damage. */
		if (jnl_budget_make_id(b) < 0 || s == NULL ||
		    strcmp(s, b->id) != 0) {
			log_warn("%s: budget row %.100s malformed, ignored",
			    t->name, s != NULL ? s : "(null)");
			continue;
		}
		count++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		free(list);
		log_error("%s: cannot read the budgets", t->name);
		return -EIO;
	}
	free(u->runtime);
	u->runtime = list;
	u->nruntime = count;
	u->runtime_loaded = 1;
	return 0;
}

int
jnl_usage_runtime_reload(struct jnl_tenant *t, struct jnl_usage *u)
{
	u->runtime_loaded = 0;
	return runtime_load(t, u);
}

/* A budget of palyrad.conf as the supervisor sent it. */
static int
config_budget(const Palyra__V1__Budget *pb, struct jnl_budget *b)
{
	memset(b, 0, sizeof(*b));
	b->scope = (int)pb->scope;
	if (pb->subject != NULL && strlen(pb->subject) >= sizeof(b->subject))
		return -EINVAL;
	snprintf(b->subject, sizeof(b->subject), "%s",
	    pb->subject != NULL ? pb->subject : "");
	b->unit = (int)pb->unit;
	b->period = (int)pb->period;
	b->limit = pb->limit;
	b->hard = pb->hard;
	return jnl_budget_make_id(b);
}

const struct jnl_budget *
jnl_usage_config_find(
    const struct jnl_tenant *t, const char *id, struct jnl_budget *out)
{
	size_t i;

	if (t->agents == NULL)
		return NULL;
	for (i = 0; i < t->agents->n_budgets; i++)
		if (config_budget(t->agents->budgets[i], out) == 0 &&
		    strcmp(out->id, id) == 0)
			return out;
	return NULL;
}

int
jnl_usage_budgets(struct jnl_tenant *t, struct jnl_usage *u, size_t *count)
{
	size_t nconfig = t->agents != NULL ? t->agents->n_budgets : 0;
	size_t i, j, n = 0, nc;

	*count = 0;
	if (!u->runtime_loaded && runtime_load(t, u) < 0)
		return -EIO;
	if (scratch_reserve(u, nconfig + u->nruntime) < 0)
		return -ENOMEM;
	for (i = 0; i < nconfig; i++)
		if (config_budget(t->agents->budgets[i], &u->all[n]) == 0)
			n++;
	nc = n;
	for (i = 0; i < u->nruntime; i++) {
		for (j = 0; j < nc; j++)
			if (strcmp(u->all[j].id, u->runtime[i].id) == 0)
				break;
		if (j == nc)
			u->all[n++] = u->runtime[i];
	}
	*count = n;
	return 0;
}

/* The ledger's load callback: a cell's settled usage by SUM. */
int
jnl_usage_load_used(void *arg, const struct jnl_budget_cell *c, uint64_t *used)
{
	struct jnl_tenant *t = arg;
	struct jnl_usage *u = t->usage;
	char day[JNL_DAY_LEN + 1], from[JNL_DAY_LEN + 1], to[JNL_DAY_LEN + 1];
	sqlite3_stmt *st;
	int rc;

	if (t->db == NULL || u == NULL)
		return -EIO;
	if (u->sum == NULL && jnl_db_prepare(t->db, SUM_SQL, &u->sum) < 0)
		return -EIO;
	st = u->sum;
	if (c->period == JNL_PERIOD_MONTH)
		snprintf(day, sizeof(day), "%.7s-01", c->key);
	else
		snprintf(day, sizeof(day), "%s", c->key);
	jnl_period_range(c->period, day, from, to);
	sqlite3_bind_int(st, 1, c->unit != JNL_UNIT_COST);
	sqlite3_bind_text(st, 2, from, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, to, -1, SQLITE_STATIC);
	if (c->scope == JNL_SCOPE_AGENT)
		sqlite3_bind_text(st, 4, c->subject, -1, SQLITE_STATIC);
	if (c->scope == JNL_SCOPE_PRINCIPAL)
		sqlite3_bind_text(st, 5, c->subject, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		*used = (uint64_t)sqlite3_column_int64(st, 0);
		rc = 0;
	} else
		log_error("%s: budget %s: cannot sum the usage: %s", t->name,
		    c->id, sqlite3_errstr(rc));
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == 0 ? 0 : -EIO;
}

/* Reservations. */

static int
model_valid(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (i >= JNL_USAGE_MODEL_MAX || (unsigned char)s[i] < 0x20 ||
		    s[i] == 0x7f)
			return 0;
	return 1;
}

static void
reserved_send(struct jnl_worker *w, uint32_t request_id,
    const Palyra__Ipc__BudgetReserved *reply, struct jnl_usage *u)
{
	int rc;

	if (w->closing)
		return;
	if ((rc = ipc_chan_send(w->chan, IPC_BUDGET_RESERVED, request_id,
		 &((Palyra__Ipc__BudgetReserved *)reply)->base, NULL, 0)) == 0)
		return;
	log_warn("%s: cannot answer a budget reservation: %s",
	    ipc_chan_peer(w->chan), strerror(-rc));
	/* Never told, never settled: not held either. */
	if (reply->ok && u != NULL)
		(void)jnl_ledger_release(&u->ledger, reply->reservation, w);
}

static void
reserve_refuse(struct jnl_worker *w, uint32_t request_id, const char *error)
{
	Palyra__Ipc__BudgetReserved reply = PALYRA__IPC__BUDGET_RESERVED__INIT;

	reply.error = (char *)error;
	reserved_send(w, request_id, &reply, NULL);
}

/* A worker's answer with the soft budgets crossed. */
#define WARNING_TEXT_MAX 384

static void
reserve_grant(struct jnl_worker *w, uint32_t request_id, struct jnl_usage *u,
    size_t nchecks, uint64_t reservation)
{
	Palyra__Ipc__BudgetReserved reply = PALYRA__IPC__BUDGET_RESERVED__INIT;
	Palyra__V1__BudgetWarning *warnings = NULL, **ptrs = NULL;
	struct jnl_tenant *t = w->tenant;
	const struct jnl_budget_check *c;
	char *texts = NULL, *text;
	size_t i, n = 0;

	for (i = 0; i < nchecks; i++)
		if (u->checks[i].over)
			n++;
	if (n > 0 && ((warnings = calloc(n, sizeof(*warnings))) == NULL ||
			 (ptrs = calloc(n, sizeof(*ptrs))) == NULL ||
			 (texts = calloc(n, WARNING_TEXT_MAX)) == NULL)) {
		/* The call stays admitted: a soft budget only warns. */
		log_error("%s: out of memory for budget warnings", t->name);
		nchecks = 0;
	}
	for (i = 0; i < nchecks; i++) {
		c = &u->checks[i];
		if (!c->over)
			continue;
		n = reply.n_warnings++;
		text = texts + n * WARNING_TEXT_MAX;
		jnl_budget_describe(c, 0, text, WARNING_TEXT_MAX);
		palyra__v1__budget_warning__init(&warnings[n]);
		warnings[n].budget_id = (char *)c->budget->id;
		warnings[n].message = text;
		/* What the budget will have counted once the call settles
		 * at its worst case. */
		warnings[n].used = c->after;
		warnings[n].limit = c->budget->limit;
		warnings[n].unit =
		    (char *)jnl_budget_unit_name(c->budget->unit);
		ptrs[n] = &warnings[n];
		/* Every call over a soft budget: the run's event and the
		 * metric tell it, the log only when asked. */
		log_debug("%s: %s", t->name, text);
	}
	reply.warnings = ptrs;
	t->budget_warnings += reply.n_warnings;
	reply.ok = 1;
	reply.reservation = reservation;
	reserved_send(w, request_id, &reply, u);
	free(warnings);
	free(ptrs);
	free(texts);
}

void
jnl_budget_reserve(
    struct jnl_ctx *ctx, struct jnl_worker *w, const struct ipc_msg *m)
{
	const Palyra__Ipc__BudgetReserve *req =
	    (const Palyra__Ipc__BudgetReserve *)m->msg;
	Palyra__Ipc__BudgetReserved reply = PALYRA__IPC__BUDGET_RESERVED__INIT;
	struct jnl_tenant *t = w->tenant;
	char error[WARNING_TEXT_MAX];
	struct jnl_usage *u;
	const char *day;
	size_t n, nchecks, refused;
	uint64_t reservation;
	int rc;

	if (strlen(req->run_id) > JNL_RUN_ID_MAX ||
	    !jnl_name_valid(req->agent) || !jnl_name_valid(req->principal) ||
	    req->tokens > JNL_USAGE_CALL_MAX ||
	    req->cost_micro_usd > JNL_USAGE_CALL_MAX) {
		log_warn("%s: malformed budget reservation; dropping the "
			 "channel",
		    ipc_chan_peer(w->chan));
		reserve_refuse(w, m->hdr.request_id, "malformed reservation");
		jnl_worker_fail(ctx, w);
		return;
	}
	if ((u = jnl_usage_get(t)) == NULL) {
		reserve_refuse(w, m->hdr.request_id, "budget check failed");
		return;
	}
	day = jnl_usage_today(ctx, t, u);
	if (jnl_usage_budgets(t, u, &n) < 0) {
		reserve_refuse(w, m->hdr.request_id,
		    "budget check failed: the journal is unavailable");
		return;
	}
	rc = jnl_ledger_reserve(&u->ledger, u->all, n, req->agent,
	    req->principal, day, req->tokens, req->cost_micro_usd, w,
	    jnl_usage_load_used, t, u->checks, &nchecks, &reservation,
	    &refused);
	if (rc == 1) {
		jnl_budget_describe(
		    &u->checks[refused], 1, error, sizeof(error));
		t->budget_refusals++;
		log_info("%s: run %s refused: %s", t->name, req->run_id, error);
		reply.error = error;
		reply.budget_id = (char *)u->checks[refused].budget->id;
		reserved_send(w, m->hdr.request_id, &reply, NULL);
		return;
	}
	if (rc < 0) {
		reserve_refuse(w, m->hdr.request_id,
		    rc == -ENOSPC ? "budget check failed: too many provider "
				    "calls in flight"
				  : "budget check failed: the journal is "
				    "unavailable");
		return;
	}
	reserve_grant(w, m->hdr.request_id, u, nchecks, reservation);
}

void
jnl_budget_settle(
    struct jnl_ctx *ctx, struct jnl_worker *w, const struct ipc_msg *m)
{
	const Palyra__Ipc__BudgetSettle *req =
	    (const Palyra__Ipc__BudgetSettle *)m->msg;
	struct jnl_tenant *t = w->tenant;
	struct jnl_usage *u;
	sqlite3_stmt *st;
	const char *day;
	uint64_t tokens;
	int rc;

	if (strlen(req->run_id) > JNL_RUN_ID_MAX ||
	    !jnl_name_valid(req->agent) || !jnl_name_valid(req->principal) ||
	    (req->provider[0] != '\0' && !jnl_name_valid(req->provider)) ||
	    !model_valid(req->model) ||
	    req->input_tokens > JNL_USAGE_CALL_MAX ||
	    req->output_tokens > JNL_USAGE_CALL_MAX ||
	    req->cost_micro_usd > JNL_USAGE_CALL_MAX) {
		log_warn("%s: malformed budget settle; dropping the channel",
		    ipc_chan_peer(w->chan));
		jnl_worker_fail(ctx, w);
		return;
	}
	if ((u = jnl_usage_get(t)) == NULL) {
		log_error("%s: out of memory: usage of run %s not recorded",
		    t->name, req->run_id);
		return;
	}
	if (req->reservation != 0 &&
	    jnl_ledger_release(&u->ledger, req->reservation, w) < 0)
		log_debug("%s: run %s settles an unknown reservation %llu",
		    ipc_chan_peer(w->chan), req->run_id,
		    (unsigned long long)req->reservation);
	if (t->db == NULL) {
		log_warn("%s: journal unavailable: usage of run %s not "
			 "recorded",
		    t->name, req->run_id);
		return;
	}
	day = jnl_usage_today(ctx, t, u);
	tokens = req->input_tokens + req->output_tokens;
	if (jnl_batch_begin(ctx, t) < 0) {
		log_error(
		    "%s: usage of run %s not recorded", t->name, req->run_id);
		return;
	}
	jnl_schedule_commit(ctx);
	if (u->upsert == NULL &&
	    jnl_db_prepare(t->db, UPSERT_SQL, &u->upsert) < 0) {
		log_error(
		    "%s: usage of run %s not recorded", t->name, req->run_id);
		return;
	}
	st = u->upsert;
	sqlite3_bind_text(st, 1, day, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, req->agent, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, req->principal, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, req->provider, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, req->model, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, (int64_t)req->input_tokens);
	sqlite3_bind_int64(st, 7, (int64_t)req->output_tokens);
	sqlite3_bind_int64(st, 8, (int64_t)req->cost_micro_usd);
	if ((rc = jnl_step_done(st)) != 0) {
		/* The transaction may be unusable: the batch goes, as an
		 * append's storage failure does. */
		log_error("%s: usage of run %s not recorded: %s", t->name,
		    req->run_id, sqlite3_errstr(rc));
		jnl_batch_fail(ctx, t);
		return;
	}
	jnl_ledger_settled(&u->ledger, req->agent, req->principal, day, tokens,
	    req->cost_micro_usd);
}

void
jnl_budget_worker_gone(struct jnl_ctx *ctx, struct jnl_worker *w)
{
	size_t n;

	(void)ctx;
	if (w->tenant == NULL || w->tenant->usage == NULL)
		return;
	if ((n = jnl_ledger_release_owner(&w->tenant->usage->ledger, w)) > 0)
		log_debug("%s: %zu budget reservations released",
		    ipc_chan_peer(w->chan), n);
}
