/*
 * usage_int.h: what usage.c (reservations, settles, the state) shares
 * with usage_api.c (UsageService). Inside palyra-journald only.
 */
#ifndef PALYRA_JOURNALD_USAGE_INT_H
#define PALYRA_JOURNALD_USAGE_INT_H

#include <sqlite3.h>

#include "journald.h"
#include "usage.h"

/* A tenant's usage state (struct jnl_tenant.usage), made on first use. */
struct jnl_usage {
	struct jnl_ledger ledger;
	sqlite3_stmt *upsert; /* prepared on first use */
	sqlite3_stmt *sum;
	/* The budgets table, read once and again after each change. */
	struct jnl_budget *runtime;
	size_t nruntime;
	int runtime_loaded;
	/* Scratch: the budgets in force (config, then runtime) and one
	 * check per budget. */
	struct jnl_budget *all;
	struct jnl_budget_check *checks;
	size_t all_cap;
	/* The tenant's time zone and today in it, at most a minute old. */
	int tz_known;
	char tz_name[JNL_TZ_NAME_MAX + 1];
	char tz_rule[JNL_TZ_RULE_MAX + 1];
	int64_t minute;
	char day[JNL_DAY_LEN + 1];
};

/* usage.c */
/* t's usage state, made on first use; NULL: out of memory. */
struct jnl_usage *jnl_usage_get(struct jnl_tenant *);
/* The tenant's time zone name: "UTC" when it sets none. */
const char *jnl_usage_timezone(const struct jnl_tenant *);
/* Today ("YYYY-MM-DD") in the tenant's time zone. */
const char *jnl_usage_today(
    struct jnl_ctx *, struct jnl_tenant *, struct jnl_usage *);
/* The budgets in force into u->all[0..*count) (u->checks sized alike).
 * Returns 0, -EIO (the budgets table unreadable) or -ENOMEM. */
int jnl_usage_budgets(struct jnl_tenant *, struct jnl_usage *, size_t *count);
/* Reads the budgets table again. Returns 0 or -EIO. */
int jnl_usage_runtime_reload(struct jnl_tenant *, struct jnl_usage *);
/* The configured budget of that id into *out, or NULL. */
const struct jnl_budget *jnl_usage_config_find(
    const struct jnl_tenant *, const char *id, struct jnl_budget *out);
/* The ledger's load callback (arg: the tenant). */
int jnl_usage_load_used(
    void *arg, const struct jnl_budget_cell *, uint64_t *used);

#endif
