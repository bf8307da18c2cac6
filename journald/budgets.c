/*
 * budgets.c: the budget ledger of a tenant. Runs in palyra-journald and
 * touches only memory: the SQL that loads a period's settled usage is a
 * callback of usage.c.
 *
 * A budget counts tokens or micro-USD per day, month or in total, for the
 * tenant, one agent or one principal. For every budget and period the
 * ledger keeps a cell: the settled usage (loaded once by SUM, then kept up
 * to date at each settle) and the amount reserved by calls in flight. A
 * call is admitted when no hard budget would pass its limit with the
 * call's worst case added to what is used and reserved; its amounts are
 * then reserved until it settles. journald's one loop serializes every
 * reservation of every worker of the tenant, which is what keeps
 * concurrent runs from overshooting together.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "usage.h"

static const char *const scope_names[] = {
    [JNL_SCOPE_TENANT] = "tenant",
    [JNL_SCOPE_AGENT] = "agent",
    [JNL_SCOPE_PRINCIPAL] = "principal",
};
static const char *const unit_names[] = {
    [JNL_UNIT_TOKENS] = "tokens",
    [JNL_UNIT_COST] = "cost",
};
static const char *const period_names[] = {
    [JNL_PERIOD_DAY] = "day",
    [JNL_PERIOD_MONTH] = "month",
    [JNL_PERIOD_TOTAL] = "total",
};

#define NAMES(a) (int)(sizeof(a) / sizeof((a)[0]))

static const char *
name_of(const char *const *names, int n, int v)
{
	return v >= 1 && v < n ? names[v] : NULL;
}

static int
parse_of(const char *const *names, int n, const char *s)
{
	int i;

	for (i = 1; i < n && s != NULL; i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	return -1;
}

const char *
jnl_budget_scope_name(int scope)
{
	return name_of(scope_names, NAMES(scope_names), scope);
}

const char *
jnl_budget_unit_name(int unit)
{
	return name_of(unit_names, NAMES(unit_names), unit);
}

const char *
jnl_budget_period_name(int period)
{
	return name_of(period_names, NAMES(period_names), period);
}

int
jnl_budget_scope_parse(const char *s)
{
	return parse_of(scope_names, NAMES(scope_names), s);
}

int
jnl_budget_unit_parse(const char *s)
{
	return parse_of(unit_names, NAMES(unit_names), s);
}

int
jnl_budget_period_parse(const char *s)
{
	return parse_of(period_names, NAMES(period_names), s);
}

/* The rule of tenant, agent and principal names (jnl_name_valid()). */
static int
subject_valid(const char *name)
{
	size_t i;

	if (name[0] == '.' || name[0] == '-')
		return 0;
	for (i = 0; name[i] != '\0'; i++) {
		if (i >= NAME_MAX_LEN)
			return 0;
		if (!((name[i] >= 'a' && name[i] <= 'z') ||
			(name[i] >= 'A' && name[i] <= 'Z') ||
			(name[i] >= '0' && name[i] <= '9') || name[i] == '.' ||
			name[i] == '_' || name[i] == '-'))
			return 0;
	}
	return i > 0;
}

int
jnl_budget_make_id(struct jnl_budget *b)
{
	const char *scope = jnl_budget_scope_name(b->scope);
	const char *unit = jnl_budget_unit_name(b->unit);
	const char *period = jnl_budget_period_name(b->period);

	if (scope == NULL || unit == NULL || period == NULL)
		return -EINVAL;
	if (b->scope == JNL_SCOPE_TENANT) {
		if (b->subject[0] != '\0')
			return -EINVAL;
		snprintf(b->id, sizeof(b->id), "tenant:%s:%s", unit, period);
		return 0;
	}
	if (!subject_valid(b->subject))
		return -EINVAL;
	snprintf(b->id, sizeof(b->id), "%s:%s:%s:%s", scope, b->subject, unit,
	    period);
	return 0;
}

int
jnl_budget_applies(
    const struct jnl_budget *b, const char *agent, const char *principal)
{
	switch (b->scope) {
	case JNL_SCOPE_TENANT:
		return 1;
	case JNL_SCOPE_AGENT:
		return strcmp(b->subject, agent) == 0;
	case JNL_SCOPE_PRINCIPAL:
		return strcmp(b->subject, principal) == 0;
	default:
		return 0;
	}
}

uint64_t
jnl_budget_amount(int unit, uint64_t tokens, uint64_t cost)
{
	return unit == JNL_UNIT_COST ? cost : tokens;
}

/* a + b, at most UINT64_MAX. */
static uint64_t
add_sat(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

void
jnl_budget_format_amount(int unit, uint64_t v, char *buf, size_t size)
{
	unsigned long long whole = v / 1000000, frac = v % 1000000;
	int digits = 6;

	if (unit != JNL_UNIT_COST) {
		snprintf(buf, size, "%llu token%s", (unsigned long long)v,
		    v == 1 ? "" : "s");
		return;
	}
	/* Micro-USD as dollars, with at least cents: 2.50, 0.000125. */
	while (digits > 2 && frac % 10 == 0) {
		frac /= 10;
		digits--;
	}
	snprintf(buf, size, "%llu.%0*llu USD", whole, digits, frac);
}

void
jnl_budget_describe(
    const struct jnl_budget_check *c, int refused, char *buf, size_t size)
{
	const struct jnl_budget *b = c->budget;
	char limit[48], used[48], reserved[48], call[48];
	const char *per;

	jnl_budget_format_amount(b->unit, b->limit, limit, sizeof(limit));
	per = b->period == JNL_PERIOD_DAY     ? "per day"
	      : b->period == JNL_PERIOD_MONTH ? "per month"
					      : "in total";
	if (b->unit == JNL_UNIT_COST) {
		jnl_budget_format_amount(b->unit, c->used, used, sizeof(used));
		jnl_budget_format_amount(
		    b->unit, c->reserved, reserved, sizeof(reserved));
		jnl_budget_format_amount(b->unit, c->call, call, sizeof(call));
	} else {
		snprintf(
		    used, sizeof(used), "%llu", (unsigned long long)c->used);
		snprintf(reserved, sizeof(reserved), "%llu",
		    (unsigned long long)c->reserved);
		snprintf(
		    call, sizeof(call), "%llu", (unsigned long long)c->call);
	}
	snprintf(buf, size,
	    "budget %s (%s, %s %s) %s: used %s, reserved %s, this call %s",
	    b->id, b->hard ? "hard" : "soft", limit, per,
	    refused ? "would be exceeded" : "crossed", used, reserved, call);
}

/* Days and periods. */

static int
digits(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return 1;
}

int
jnl_day_valid(const char *s)
{
	static const int mdays[] = {
	    31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int y, m, d, leap;

	if (s == NULL || strlen(s) != JNL_DAY_LEN || s[4] != '-' ||
	    s[7] != '-' || !digits(s, 4) || !digits(s + 5, 2) ||
	    !digits(s + 8, 2))
		return 0;
	y = atoi(s);
	m = (s[5] - '0') * 10 + (s[6] - '0');
	d = (s[8] - '0') * 10 + (s[9] - '0');
	if (y < 1 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1])
		return 0;
	leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return m != 2 || d <= 28 || leap;
}

void
jnl_period_key(int period, const char *day, char key[JNL_DAY_LEN + 1])
{
	if (period == JNL_PERIOD_DAY)
		snprintf(key, JNL_DAY_LEN + 1, "%.10s", day);
	else if (period == JNL_PERIOD_MONTH)
		snprintf(key, JNL_DAY_LEN + 1, "%.7s", day);
	else
		key[0] = '\0';
}

void
jnl_period_range(int period, const char *day, char from[JNL_DAY_LEN + 1],
    char to[JNL_DAY_LEN + 1])
{
	if (period == JNL_PERIOD_DAY) {
		snprintf(from, JNL_DAY_LEN + 1, "%.10s", day);
		snprintf(to, JNL_DAY_LEN + 1, "%.10s", day);
	} else if (period == JNL_PERIOD_MONTH) {
		/* Days compare as text: -31 bounds every month. */
		snprintf(from, JNL_DAY_LEN + 1, "%.7s-01", day);
		snprintf(to, JNL_DAY_LEN + 1, "%.7s-31", day);
	} else {
		snprintf(from, JNL_DAY_LEN + 1, "0000-00-00");
		snprintf(to, JNL_DAY_LEN + 1, "9999-99-99");
	}
}

void
jnl_period_start(int period, const char *day, char start[JNL_DAY_LEN + 1])
{
	if (period == JNL_PERIOD_DAY)
		snprintf(start, JNL_DAY_LEN + 1, "%.10s", day);
	else if (period == JNL_PERIOD_MONTH)
		snprintf(start, JNL_DAY_LEN + 1, "%.7s-01", day);
	else
		start[0] = '\0';
}

/* The ledger. */

void
jnl_ledger_init(struct jnl_ledger *l)
{
	memset(l, 0, sizeof(*l));
	l->next_id = 1;
}

void
jnl_ledger_free(struct jnl_ledger *l)
{
	struct jnl_budget_cell *c;
	struct jnl_reservation *r;
	size_t i;

	while ((c = l->cells) != NULL) {
		l->cells = c->next;
		free(c);
	}
	for (i = 0; i < JNL_RESERVATION_BUCKETS; i++)
		while ((r = l->reservations[i]) != NULL) {
			l->reservations[i] = r->next;
			free(r);
		}
	jnl_ledger_init(l);
}

/* Whether cell counts a call of agent by principal. */
static int
cell_applies(
    const struct jnl_budget_cell *c, const char *agent, const char *principal)
{
	switch (c->scope) {
	case JNL_SCOPE_TENANT:
		return 1;
	case JNL_SCOPE_AGENT:
		return strcmp(c->subject, agent) == 0;
	case JNL_SCOPE_PRINCIPAL:
		return strcmp(c->subject, principal) == 0;
	default:
		return 0;
	}
}

/*
 * A new day: the cells of periods that ended are dropped, unless a
 * reservation made before midnight still holds a part of them (it is
 * released into its own period, and the cell goes on the next day).
 */
static void
ledger_new_day(struct jnl_ledger *l, const char *day)
{
	struct jnl_budget_cell **p = &l->cells, *c;
	char key[JNL_DAY_LEN + 1];

	if (strcmp(l->day, day) == 0)
		return;
	snprintf(l->day, sizeof(l->day), "%s", day);
	while ((c = *p) != NULL) {
		jnl_period_key(c->period, day, key);
		if (c->refs == 0 && strcmp(c->key, key) != 0) {
			*p = c->next;
			free(c);
		} else
			p = &c->next;
	}
}

int
jnl_ledger_cell(struct jnl_ledger *l, const struct jnl_budget *b,
    const char *day, jnl_ledger_load_fn load, void *arg,
    struct jnl_budget_cell **out)
{
	struct jnl_budget_cell *c;
	char key[JNL_DAY_LEN + 1];
	int rc;

	ledger_new_day(l, day);
	jnl_period_key(b->period, day, key);
	for (c = l->cells; c != NULL; c = c->next)
		if (strcmp(c->id, b->id) == 0 && strcmp(c->key, key) == 0)
			break;
	if (c == NULL) {
		if ((c = calloc(1, sizeof(*c))) == NULL)
			return -ENOMEM;
		memcpy(c->id, b->id, sizeof(c->id));
		memcpy(c->subject, b->subject, sizeof(c->subject));
		memcpy(c->key, key, sizeof(c->key));
		c->scope = b->scope;
		c->unit = b->unit;
		c->period = b->period;
		c->next = l->cells;
		l->cells = c;
	}
	if (!c->loaded) {
		if ((rc = load(arg, c, &c->used)) < 0) {
			c->used = 0;
			return rc;
		}
		c->loaded = 1;
	}
	*out = c;
	return 0;
}

int
jnl_ledger_reserve(struct jnl_ledger *l, const struct jnl_budget *budgets,
    size_t n, const char *agent, const char *principal, const char *day,
    uint64_t tokens, uint64_t cost, const void *owner, jnl_ledger_load_fn load,
    void *arg, struct jnl_budget_check *checks, size_t *nchecks,
    uint64_t *reservation, size_t *refused)
{
	struct jnl_budget_cell **cells = NULL;
	struct jnl_reservation *r;
	struct jnl_budget_check *c;
	size_t i, k = 0, b;
	int rc;

	*nchecks = 0;
	*reservation = 0;
	*refused = SIZE_MAX;
	if (l->nreservations >= JNL_RESERVATIONS_MAX)
		return -ENOSPC;
	if (n > 0 && (cells = calloc(n, sizeof(*cells))) == NULL)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		if (!jnl_budget_applies(&budgets[i], agent, principal))
			continue;
		if ((rc = jnl_ledger_cell(
			 l, &budgets[i], day, load, arg, &cells[k])) < 0) {
			free(cells);
			return rc;
		}
		c = &checks[k];
		c->budget = &budgets[i];
		c->used = cells[k]->used;
		c->reserved = cells[k]->reserved;
		c->call = jnl_budget_amount(budgets[i].unit, tokens, cost);
		c->after = add_sat(add_sat(c->used, c->reserved), c->call);
		c->over = c->after > budgets[i].limit;
		if (c->over && budgets[i].hard && *refused == SIZE_MAX)
			*refused = k;
		k++;
	}
	*nchecks = k;
	if (*refused != SIZE_MAX) {
		free(cells);
		return 1;
	}
	if ((r = calloc(1, sizeof(*r) + k * sizeof(r->parts[0]))) == NULL) {
		free(cells);
		return -ENOMEM;
	}
	r->id = l->next_id++;
	r->owner = owner;
	r->nparts = k;
	for (i = 0; i < k; i++) {
		r->parts[i].cell = cells[i];
		r->parts[i].amount = checks[i].call;
		cells[i]->reserved =
		    add_sat(cells[i]->reserved, checks[i].call);
		cells[i]->refs++;
	}
	b = r->id % JNL_RESERVATION_BUCKETS;
	r->next = l->reservations[b];
	l->reservations[b] = r;
	l->nreservations++;
	*reservation = r->id;
	free(cells);
	return 0;
}

static void
reservation_drop(struct jnl_ledger *l, struct jnl_reservation *r)
{
	struct jnl_budget_cell *c;
	size_t i;

	for (i = 0; i < r->nparts; i++) {
		c = r->parts[i].cell;
		c->reserved = c->reserved > r->parts[i].amount
				  ? c->reserved - r->parts[i].amount
				  : 0;
		c->refs--;
	}
	l->nreservations--;
	free(r);
}

int
jnl_ledger_release(struct jnl_ledger *l, uint64_t id, const void *owner)
{
	struct jnl_reservation **p, *r;

	for (p = &l->reservations[id % JNL_RESERVATION_BUCKETS];
	     (r = *p) != NULL; p = &r->next)
		if (r->id == id && r->owner == owner) {
			*p = r->next;
			reservation_drop(l, r);
			return 0;
		}
	return -ENOENT;
}

size_t
jnl_ledger_release_owner(struct jnl_ledger *l, const void *owner)
{
	struct jnl_reservation **p, *r;
	size_t i, n = 0;

	for (i = 0; i < JNL_RESERVATION_BUCKETS; i++)
		for (p = &l->reservations[i]; (r = *p) != NULL;) {
			if (r->owner != owner) {
				p = &r->next;
				continue;
			}
			*p = r->next;
			reservation_drop(l, r);
			n++;
		}
	return n;
}

void
jnl_ledger_settled(struct jnl_ledger *l, const char *agent,
    const char *principal, const char *day, uint64_t tokens, uint64_t cost)
{
	struct jnl_budget_cell *c;
	char key[JNL_DAY_LEN + 1];

	ledger_new_day(l, day);
	for (c = l->cells; c != NULL; c = c->next) {
		jnl_period_key(c->period, day, key);
		if (!c->loaded || strcmp(c->key, key) != 0 ||
		    !cell_applies(c, agent, principal))
			continue;
		c->used =
		    add_sat(c->used, jnl_budget_amount(c->unit, tokens, cost));
	}
}

void
jnl_ledger_invalidate(struct jnl_ledger *l)
{
	struct jnl_budget_cell *c;

	for (c = l->cells; c != NULL; c = c->next) {
		c->loaded = 0;
		c->used = 0;
	}
}
