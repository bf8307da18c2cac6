/*
 * usage.h: usage, budgets and reservations inside palyra-journald
 * (issue 7, DESIGN section 9).
 *
 * usage.c answers the workers (IPC_BUDGET_RESERVE, IPC_BUDGET_SETTLE) and
 * UsageService (GetUsage, ListBudgets, SetBudget, DeleteBudget); it owns
 * the SQL. budgets.c is the ledger: budget ids, the used and reserved
 * amounts of each budget in each period, reservations and their
 * arithmetic, with no SQL (a callback loads a period's used amount).
 * zones.c turns a tenant's time zone into its current local day.
 * budgets.c and zones.c are pure enough to be unit tested alone
 * (tests/unit/test_usage.c).
 */
#ifndef PALYRA_JOURNALD_USAGE_H
#define PALYRA_JOURNALD_USAGE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "limits.h"

/* "YYYY-MM-DD" */
#define JNL_DAY_LEN 10
/* "principal:" NAME ":tokens:month" */
#define JNL_BUDGET_ID_MAX (10 + NAME_MAX_LEN + 13)
/* The longest POSIX TZ rule kept from a zone file's footer. */
#define JNL_TZ_RULE_MAX 128
/* The longest zone name ("America/Argentina/ComodRivadavia"). */
#define JNL_TZ_NAME_MAX 64
#define JNL_ZONEINFO_DIR "/usr/share/zoneinfo"

/* The values of palyra.v1.BudgetScope, BudgetUnit and BudgetPeriod. */
enum jnl_budget_scope {
	JNL_SCOPE_TENANT = 1,
	JNL_SCOPE_AGENT = 2,
	JNL_SCOPE_PRINCIPAL = 3,
};
enum jnl_budget_unit {
	JNL_UNIT_TOKENS = 1,
	JNL_UNIT_COST = 2, /* micro-USD */
};
enum jnl_budget_period {
	JNL_PERIOD_DAY = 1,
	JNL_PERIOD_MONTH = 2,
	JNL_PERIOD_TOTAL = 3,
};

/* A budget: from palyrad.conf (runtime 0) or the budgets table. */
struct jnl_budget {
	char id[JNL_BUDGET_ID_MAX + 1];
	int scope;
	char subject[NAME_MAX_LEN + 1]; /* "" for the tenant scope */
	int unit;
	int period;
	uint64_t limit; /* tokens, or micro-USD */
	int hard;
	int runtime;
	int64_t created_ms;
};

/* One budget's accounting in one period (the budget's id fixes what it
 * counts, so the cell outlives a change of its limit). */
struct jnl_budget_cell {
	struct jnl_budget_cell *next;
	char id[JNL_BUDGET_ID_MAX + 1];
	int scope;
	char subject[NAME_MAX_LEN + 1];
	int unit;
	int period;
	char key[JNL_DAY_LEN + 1]; /* "YYYY-MM-DD", "YYYY-MM" or "" */
	int loaded;		   /* used is known */
	uint64_t used;		   /* settled usage in the period */
	uint64_t reserved;	   /* held by calls in flight */
	size_t refs;		   /* reservations holding a part of it */
};

struct jnl_reservation_part {
	struct jnl_budget_cell *cell;
	uint64_t amount;
};

struct jnl_reservation {
	struct jnl_reservation *next;
	uint64_t id;
	const void *owner; /* the worker channel that holds it */
	size_t nparts;
	struct jnl_reservation_part parts[];
};

#define JNL_RESERVATION_BUCKETS 256

struct jnl_ledger {
	struct jnl_budget_cell *cells;
	struct jnl_reservation *reservations[JNL_RESERVATION_BUCKETS];
	size_t nreservations;
	uint64_t next_id;
	char day[JNL_DAY_LEN + 1]; /* the day cells were last kept for */
};

/* A period's settled usage of a cell (SUM over the usage table). Returns
 * 0 with *used, or a negative errno. */
typedef int (*jnl_ledger_load_fn)(
    void *arg, const struct jnl_budget_cell *cell, uint64_t *used);

/* One applicable budget as a reservation saw it. */
struct jnl_budget_check {
	const struct jnl_budget *budget;
	uint64_t used;
	uint64_t reserved;
	uint64_t call;
	uint64_t after; /* used + reserved + call, at most UINT64_MAX */
	int over;	/* after > limit */
};

/* budgets.c: names and ids. */
const char *jnl_budget_scope_name(int scope);	/* "tenant", NULL */
const char *jnl_budget_unit_name(int unit);	/* "tokens", NULL */
const char *jnl_budget_period_name(int period); /* "day", NULL */
int jnl_budget_scope_parse(const char *);	/* -1: unknown */
int jnl_budget_unit_parse(const char *);
int jnl_budget_period_parse(const char *);
/* Writes b->id from its scope, subject, unit and period. Returns 0 or
 * -EINVAL (a field out of range, a subject that is not a name, or a
 * tenant budget with a subject). */
int jnl_budget_make_id(struct jnl_budget *b);
/* Whether b counts a call of agent by principal. */
int jnl_budget_applies(
    const struct jnl_budget *b, const char *agent, const char *principal);
/* The amount of a call in b's unit. */
uint64_t jnl_budget_amount(int unit, uint64_t tokens, uint64_t cost);
/* "5000 tokens" or "2.50 USD" */
void jnl_budget_format_amount(int unit, uint64_t v, char *buf, size_t size);
/* The refusal (refused 1) or warning text of a check. */
void jnl_budget_describe(
    const struct jnl_budget_check *c, int refused, char *buf, size_t size);

/* budgets.c: days and periods. */
/* Whether s is a valid calendar day "YYYY-MM-DD". */
int jnl_day_valid(const char *s);
/* The period key of day: the day, "YYYY-MM", or "". */
void jnl_period_key(int period, const char *day, char key[JNL_DAY_LEN + 1]);
/* The first and last day of the period of day (inclusive bounds usable
 * against the usage table's day column). */
void jnl_period_range(int period, const char *day, char from[JNL_DAY_LEN + 1],
    char to[JNL_DAY_LEN + 1]);
/* The first day of the period of day: "" for total. */
void jnl_period_start(int period, const char *day, char start[JNL_DAY_LEN + 1]);

/* budgets.c: the ledger. */
void jnl_ledger_init(struct jnl_ledger *);
void jnl_ledger_free(struct jnl_ledger *);
/*
 * The cell of b in the period of day, created and loaded as needed.
 * Returns 0 with *out, -ENOMEM, or load's error.
 */
int jnl_ledger_cell(struct jnl_ledger *, const struct jnl_budget *b,
    const char *day, jnl_ledger_load_fn load, void *arg,
    struct jnl_budget_cell **out);
/*
 * Checks a call (tokens, cost) of agent by principal on day against each
 * of budgets[0..n). Every applicable budget gets a check in checks[]
 * (*nchecks of them). When no hard budget would be crossed the call's
 * amounts are reserved for owner: returns 0 with *reservation. Else
 * returns 1 with *refused (the index in checks of the first hard budget
 * crossed) and reserves nothing. -ENOMEM, -ENOSPC (too many
 * reservations), or load's error.
 */
int jnl_ledger_reserve(struct jnl_ledger *, const struct jnl_budget *budgets,
    size_t n, const char *agent, const char *principal, const char *day,
    uint64_t tokens, uint64_t cost, const void *owner, jnl_ledger_load_fn load,
    void *arg, struct jnl_budget_check *checks, size_t *nchecks,
    uint64_t *reservation, size_t *refused);
/* Releases reservation id of owner. Returns 0 or -ENOENT. */
int jnl_ledger_release(struct jnl_ledger *, uint64_t id, const void *owner);
/* Releases every reservation of owner; returns how many. */
size_t jnl_ledger_release_owner(struct jnl_ledger *, const void *owner);
/* A settled call of agent by principal on day: adds it to every loaded
 * cell of that day's periods that counts it. */
void jnl_ledger_settled(struct jnl_ledger *, const char *agent,
    const char *principal, const char *day, uint64_t tokens, uint64_t cost);
/* The usage table lost writes (a rolled-back batch): every used amount
 * is loaded again on next use. */
void jnl_ledger_invalidate(struct jnl_ledger *);

/* zones.c: time zones. */
struct jnl_zones;
/*
 * Reads the POSIX rule (the TZif footer) of every zone under dir; called
 * before the sandbox, which hides dir. Returns 0 with *out (possibly
 * empty) or -ENOMEM.
 */
int jnl_zones_load(const char *dir, struct jnl_zones **out);
void jnl_zones_free(struct jnl_zones *);
size_t jnl_zones_count(const struct jnl_zones *);
/*
 * The POSIX TZ rule of zone name: "UTC0" for "" and "UTC"; from zones
 * (may be NULL), else read from dir/name. Returns 0, -EINVAL (not a zone
 * name), -ENOENT (no such zone, or one without a rule).
 */
int jnl_zone_rule(const struct jnl_zones *, const char *dir, const char *name,
    char rule[JNL_TZ_RULE_MAX + 1]);
/* Reads the footer rule of one TZif file. Returns 0, -ENOENT, -EINVAL. */
int jnl_zone_read_rule(int fd, char rule[JNL_TZ_RULE_MAX + 1]);
/*
 * The local calendar day of t under POSIX rule (TZ is set around the
 * conversion and restored). Returns 0 or -EINVAL.
 */
int jnl_zone_day(const char *rule, time_t t, char day[JNL_DAY_LEN + 1]);

#endif
