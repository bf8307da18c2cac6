/*
 * usage.c: `palyractl usage` and `palyractl budget list|set|delete`, over
 * UsageService (GetUsage, ListBudgets, SetBudget, DeleteBudget).
 *
 * Runs in palyractl as the invoking user with no privilege. The token
 * comes from --token or PALYRA_TOKEN; with --tenant, palyractl mints an
 * operator token of that tenant with the admin token (setting budgets
 * needs the operator or admin role). Costs travel as micro-USD integers;
 * they are read and shown as USD in decimal, never through floating point.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "ctl.h"
#include "grpc_status.h"
#include "palyra/v1/gateway.pb-c.h"

#define USAGE_SERVICE "/palyra.v1.UsageService/"
#define GROUPS_MAX 4
#define BUDGET_ID_MAX (NAME_MAX_LEN + 32)
/* The largest limit accepted: 10^12 USD or 10^18 tokens. */
#define LIMIT_MAX 1000000000000000000ULL

static const char *const group_names[GROUPS_MAX] = {
    "day",
    "agent",
    "principal",
    "model",
};
static const char *const scope_names[] = {
    "unspecified",
    "tenant",
    "agent",
    "principal",
};
static const char *const unit_names[] = {
    "unspecified",
    "tokens",
    "cost",
};
static const char *const period_names[] = {
    "unspecified",
    "day",
    "month",
    "total",
};

static const char *
name_of(const char *const *names, size_t n, int v)
{
	return v >= 0 && (size_t)v < n ? names[v] : "unknown";
}

#define NAME_OF(names, v) name_of(names, sizeof(names) / sizeof(names[0]), v)

static int
value_of(const char *const *names, size_t n, const char *s)
{
	size_t i;

	for (i = 1; i < n; i++)
		if (strcmp(s, names[i]) == 0)
			return (int)i;
	return -1;
}

#define VALUE_OF(names, s) value_of(names, sizeof(names) / sizeof(names[0]), s)

/* "2.5" for 2500000 micro-USD: at least two decimals, at most six. */
static const char *
usd_string(uint64_t micro, char *buf, size_t size)
{
	size_t len;

	snprintf(buf, size, "%llu.%06llu",
	    (unsigned long long)(micro / 1000000),
	    (unsigned long long)(micro % 1000000));
	len = strlen(buf);
	while (len > 0 && buf[len - 1] == '0' && buf[len - 3] != '.')
		buf[--len] = '\0';
	return buf;
}

/* USD in decimal ("2.50", "10", "0.000125") to micro-USD; -1 if
 * malformed, more precise than a micro-USD, or over LIMIT_MAX. */
static int
parse_usd(const char *s, uint64_t *micro)
{
	unsigned long long whole = 0, frac = 0;
	const char *p = s;
	int digits = 0;

	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		whole = whole * 10 + (unsigned long long)(*p - '0');
		if (whole > LIMIT_MAX / 1000000)
			return -1;
	}
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++) {
			if (++digits > 6)
				return -1;
			frac = frac * 10 + (unsigned long long)(*p - '0');
		}
		if (digits == 0)
			return -1;
		for (; digits < 6; digits++)
			frac *= 10;
	}
	if (*p != '\0')
		return -1;
	*micro = whole * 1000000 + frac;
	return 0;
}

static int
parse_count(const char *s, uint64_t *n)
{
	unsigned long long v;
	char *end;

	if (s[0] < '0' || s[0] > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > LIMIT_MAX)
		return -1;
	*n = v;
	return 0;
}

/* YYYY-MM-DD, a real calendar day. */
static int
valid_day(const char *s)
{
	struct tm tm;
	const char *end;

	memset(&tm, 0, sizeof(tm));
	if (strlen(s) != 10 || (end = strptime(s, "%Y-%m-%d", &tm)) == NULL ||
	    *end != '\0')
		return 0;
	return 1;
}

static void
print_json(json_t *obj)
{
	if (obj != NULL) {
		json_dumpf(obj, stdout, JSON_COMPACT);
		putchar('\n');
		json_decref(obj);
	}
}

/* usage */

struct usage_opts {
	const char *tenant;
	const char *token;
	const char *from;
	const char *to;
	const char *agent;
	const char *principal;
	char *groups[GROUPS_MAX];
	size_t ngroups;
};

static int
usage_usage(const char *why)
{
	fprintf(stderr, "palyractl: %s\n", why);
	fprintf(stderr,
	    "usage: palyractl usage [--tenant name | --token token] "
	    "[--from day] [--to day]\n"
	    "           [--agent name] [--principal name]\n"
	    "           [--by day,agent,principal,model] [--json]\n");
	return CTL_EXIT_USAGE;
}

static int
add_groups(struct usage_opts *o, char *list)
{
	char *g, *save = NULL;
	size_t i;

	for (g = strtok_r(list, ",", &save); g != NULL;
	     g = strtok_r(NULL, ",", &save)) {
		for (i = 0; i < GROUPS_MAX; i++)
			if (strcmp(g, group_names[i]) == 0)
				break;
		if (i == GROUPS_MAX)
			return -1;
		for (i = 0; i < o->ngroups; i++)
			if (strcmp(o->groups[i], g) == 0)
				return -1;
		if (o->ngroups == GROUPS_MAX)
			return -1;
		o->groups[o->ngroups++] = g;
	}
	return 0;
}

static int
usage_parse(struct ctl_ctx *ctx, int argc, char **argv, struct usage_opts *o)
{
	static const struct option opts[] = {
	    {"tenant", required_argument, NULL, 't'},
	    {"token", required_argument, NULL, 'T'},
	    {"from", required_argument, NULL, 'f'},
	    {"to", required_argument, NULL, 'e'},
	    {"agent", required_argument, NULL, 'a'},
	    {"principal", required_argument, NULL, 'p'},
	    {"by", required_argument, NULL, 'b'},
	    {"json", no_argument, NULL, 'j'},
	    {NULL, 0, NULL, 0},
	};
	int ch;

	memset(o, 0, sizeof(*o));
	optind = 0;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 't':
			o->tenant = optarg;
			break;
		case 'T':
			o->token = optarg;
			break;
		case 'f':
		case 'e':
			if (!valid_day(optarg))
				return usage_usage("--from and --to take a day "
						   "as YYYY-MM-DD");
			if (ch == 'f')
				o->from = optarg;
			else
				o->to = optarg;
			break;
		case 'a':
		case 'p':
			if (optarg[0] == '\0' || strlen(optarg) > NAME_MAX_LEN)
				return usage_usage("a name is 1 to 64 bytes");
			if (ch == 'a')
				o->agent = optarg;
			else
				o->principal = optarg;
			break;
		case 'b':
			if (add_groups(o, optarg) < 0)
				return usage_usage(
				    "--by takes day, agent, "
				    "principal and model, each once, separated "
				    "by commas");
			break;
		case 'j':
			ctx->json = 1;
			break;
		default:
			return usage_usage("bad option");
		}
	}
	if (optind != argc)
		return usage_usage("usage takes no arguments");
	if (o->from != NULL && o->to != NULL && strcmp(o->from, o->to) > 0)
		return usage_usage("--from is after --to");
	return 0;
}

static const char *
row_group(const Palyra__V1__UsageRow *r, const char *group)
{
	const char *v = strcmp(group, "day") == 0	  ? r->day
			: strcmp(group, "agent") == 0	  ? r->agent
			: strcmp(group, "principal") == 0 ? r->principal
							  : r->model;

	return v[0] != '\0' ? v : "-";
}

static json_t *
row_json(const Palyra__V1__UsageRow *r, const struct usage_opts *o)
{
	json_t *obj;
	size_t i;

	obj = json_pack("{s:I, s:I, s:I, s:I}", "input_tokens",
	    (json_int_t)r->input_tokens, "output_tokens",
	    (json_int_t)r->output_tokens, "cost_micro_usd",
	    (json_int_t)r->cost_micro_usd, "calls", (json_int_t)r->calls);
	for (i = 0; obj != NULL && o != NULL && i < o->ngroups; i++)
		json_object_set_new(obj, o->groups[i],
		    json_string(strcmp(o->groups[i], "day") == 0     ? r->day
				: strcmp(o->groups[i], "agent") == 0 ? r->agent
				: strcmp(o->groups[i], "principal") == 0
				    ? r->principal
				    : r->model));
	return obj;
}

/* The table: one column per group, then the figures, then a TOTAL row
 * and the time zone. Returns 0 or -1 (out of memory). */
static int
usage_table(const Palyra__V1__GetUsageResponse *u, const struct usage_opts *o)
{
	static const char *const figures[] = {
	    "INPUT",
	    "OUTPUT",
	    "COST_USD",
	    "CALLS",
	};
	const char *header[GROUPS_MAX + 4], *row[GROUPS_MAX + 4];
	char names[GROUPS_MAX][16], num[4][32], align[GROUPS_MAX + 5];
	const Palyra__V1__UsageRow *r;
	struct ctl_table *t;
	size_t i, j, n = o->ngroups;
	int rc = 0;

	for (j = 0; j < n; j++) {
		for (i = 0; i + 1 < sizeof(names[j]) && o->groups[j][i] != '\0';
		     i++)
			names[j][i] = (char)(o->groups[j][i] - 'a' + 'A');
		names[j][i] = '\0';
		header[j] = names[j];
		align[j] = 'l';
	}
	for (j = 0; j < 4; j++) {
		header[n + j] = figures[j];
		align[n + j] = 'r';
	}
	align[n + 4] = '\0';
	if ((t = ctl_table_new(n + 4, align, header)) == NULL)
		return -1;
	for (i = 0; rc == 0 && i <= u->n_rows; i++) {
		r = i < u->n_rows ? u->rows[i] : u->total;
		if (r == NULL)
			continue;
		for (j = 0; j < n; j++)
			row[j] = i < u->n_rows ? row_group(r, o->groups[j])
				 : j == 0      ? "TOTAL"
					       : "";
		snprintf(num[0], sizeof(num[0]), "%llu",
		    (unsigned long long)r->input_tokens);
		snprintf(num[1], sizeof(num[1]), "%llu",
		    (unsigned long long)r->output_tokens);
		usd_string(r->cost_micro_usd, num[2], sizeof(num[2]));
		snprintf(num[3], sizeof(num[3]), "%llu",
		    (unsigned long long)r->calls);
		for (j = 0; j < 4; j++)
			row[n + j] = num[j];
		rc = ctl_table_add(t, row);
	}
	if (rc == 0) {
		ctl_table_print(t, stdout);
		printf("time zone %s\n",
		    u->timezone[0] != '\0' ? u->timezone : "UTC");
	}
	ctl_table_free(t);
	return rc;
}

int
ctl_cmd_usage(struct ctl_ctx *ctx, int argc, char **argv)
{
	Palyra__V1__GetUsageRequest req = PALYRA__V1__GET_USAGE_REQUEST__INIT;
	Palyra__V1__GetUsageResponse *u;
	struct ctl_unary_reply reply;
	struct usage_opts o;
	json_t *obj, *rows;
	char *token;
	size_t i;
	int rc;

	if ((rc = usage_parse(ctx, argc, argv, &o)) != 0)
		return rc;
	if ((token = ctl_command_token(ctx, o.token, o.tenant, "usage", &rc)) ==
	    NULL)
		return rc;
	req.from_day = (char *)(o.from != NULL ? o.from : "");
	req.to_day = (char *)(o.to != NULL ? o.to : "");
	req.agent = (char *)(o.agent != NULL ? o.agent : "");
	req.principal = (char *)(o.principal != NULL ? o.principal : "");
	req.n_group_by = o.ngroups;
	req.group_by = o.groups;
	rc = ctl_unary(
	    ctx, "usage", USAGE_SERVICE "GetUsage", token, &req.base, &reply);
	ctl_free_token(token);
	if (rc < 0)
		return CTL_EXIT_FAIL;
	u = palyra__v1__get_usage_response__unpack(NULL, reply.len, reply.data);
	free(reply.data);
	if (u == NULL) {
		fprintf(stderr, "palyractl: usage: undecodable reply\n");
		return CTL_EXIT_FAIL;
	}
	if (ctx->json) {
		rows = json_array();
		for (i = 0; rows != NULL && i < u->n_rows; i++)
			json_array_append_new(rows, row_json(u->rows[i], &o));
		obj = json_pack("{s:o, s:o, s:s}", "rows", rows, "total",
		    u->total != NULL ? row_json(u->total, NULL) : json_object(),
		    "timezone", u->timezone);
		print_json(obj);
	} else if (usage_table(u, &o) < 0) {
		fprintf(stderr, "palyractl: usage: out of memory\n");
		palyra__v1__get_usage_response__free_unpacked(u, NULL);
		return CTL_EXIT_FAIL;
	}
	palyra__v1__get_usage_response__free_unpacked(u, NULL);
	return CTL_EXIT_OK;
}

/* budget */

static int
budget_usage(const char *why)
{
	fprintf(stderr, "palyractl: %s\n", why);
	fprintf(stderr,
	    "usage: palyractl budget list [--tenant name | --token token] "
	    "[--json]\n"
	    "       palyractl budget set [--tenant name | --token token]\n"
	    "           tenant|agent:name|principal:name tokens|cost limit\n"
	    "           per day|month|total soft|hard\n"
	    "       palyractl budget delete [--tenant name | --token token] "
	    "budget_id\n"
	    "   (a cost limit is in USD, such as 2.50)\n");
	return CTL_EXIT_USAGE;
}

/* "2.5" USD or "1000" tokens. */
static const char *
amount_string(int unit, uint64_t v, char *buf, size_t size)
{
	if (unit == PALYRA__V1__BUDGET_UNIT__BUDGET_UNIT_COST)
		return usd_string(v, buf, size);
	snprintf(buf, size, "%llu", (unsigned long long)v);
	return buf;
}

static json_t *
budget_json(const Palyra__V1__Budget *b)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:I, s:s, s:s, s:s, s:I, s:I, "
			 "s:s}",
	    "budget_id", b->budget_id, "scope", NAME_OF(scope_names, b->scope),
	    "subject", b->subject, "unit", NAME_OF(unit_names, b->unit),
	    "limit", (json_int_t)b->limit, "period",
	    NAME_OF(period_names, b->period), "kind", b->hard ? "hard" : "soft",
	    "source", b->source, "used", (json_int_t)b->used, "reserved",
	    (json_int_t)b->reserved, "period_start", b->period_start);
}

static const char *const budget_header[] = {
    "BUDGET",
    "KIND",
    "LIMIT",
    "USED",
    "RESERVED",
    "SOURCE",
    "SINCE",
};

static int
budget_row(struct ctl_table *t, const Palyra__V1__Budget *b)
{
	char kind[64], limit[32], used[32], reserved[32];
	const char *row[] = {
	    b->budget_id,
	    kind,
	    amount_string(b->unit, b->limit, limit, sizeof(limit)),
	    amount_string(b->unit, b->used, used, sizeof(used)),
	    amount_string(b->unit, b->reserved, reserved, sizeof(reserved)),
	    b->source,
	    b->period_start[0] != '\0' ? b->period_start : "-",
	};

	snprintf(kind, sizeof(kind), "%s %s per %s", b->hard ? "hard" : "soft",
	    b->unit == PALYRA__V1__BUDGET_UNIT__BUDGET_UNIT_COST ? "USD"
								 : "tokens",
	    NAME_OF(period_names, b->period));
	return ctl_table_add(t, row);
}

/* Budgets as a table, or one JSON object a line. */
static int
print_budgets(
    const struct ctl_ctx *ctx, Palyra__V1__Budget *const *budgets, size_t n)
{
	struct ctl_table *t;
	size_t i;
	int rc = 0;

	if (ctx->json) {
		for (i = 0; i < n; i++)
			print_json(budget_json(budgets[i]));
		return 0;
	}
	if ((t = ctl_table_new(7, "llrrrll", budget_header)) == NULL)
		return -1;
	for (i = 0; rc == 0 && i < n; i++)
		rc = budget_row(t, budgets[i]);
	if (rc == 0)
		ctl_table_print(t, stdout);
	ctl_table_free(t);
	return rc;
}

static int
budget_list(const struct ctl_ctx *ctx, const char *token)
{
	Palyra__V1__ListBudgetsRequest req =
	    PALYRA__V1__LIST_BUDGETS_REQUEST__INIT;
	Palyra__V1__ListBudgetsResponse *resp;
	int rc = CTL_EXIT_OK;

	if ((resp = ctl_unary_msg(ctx, "budget list",
	    USAGE_SERVICE "ListBudgets", token, &req.base,
	    &palyra__v1__list_budgets_response__descriptor)) == NULL)
		return CTL_EXIT_FAIL;
	if (!ctx->json && resp->n_budgets == 0)
		printf("no budgets\n");
	else if (print_budgets(ctx, resp->budgets, resp->n_budgets) < 0) {
		fprintf(stderr, "palyractl: budget list: out of memory\n");
		rc = CTL_EXIT_FAIL;
	}
	palyra__v1__list_budgets_response__free_unpacked(resp, NULL);
	return rc;
}

/* SCOPE[:SUBJECT] tokens|cost LIMIT per day|month|total soft|hard */
static int
budget_set_parse(char **args, Palyra__V1__Budget *b)
{
	const char *colon = strchr(args[0], ':');
	char scope[16];
	size_t n = colon != NULL ? (size_t)(colon - args[0]) : strlen(args[0]);
	int v;

	if (n >= sizeof(scope))
		return budget_usage("the scope is tenant, agent:NAME or "
				    "principal:NAME");
	memcpy(scope, args[0], n);
	scope[n] = '\0';
	if ((v = VALUE_OF(scope_names, scope)) < 0)
		return budget_usage("the scope is tenant, agent:NAME or "
				    "principal:NAME");
	b->scope = v;
	b->subject = colon != NULL ? (char *)colon + 1 : "";
	if (v == PALYRA__V1__BUDGET_SCOPE__BUDGET_SCOPE_TENANT && colon != NULL)
		return budget_usage("a tenant budget has no subject");
	if (v != PALYRA__V1__BUDGET_SCOPE__BUDGET_SCOPE_TENANT &&
	    (b->subject[0] == '\0' || strlen(b->subject) > NAME_MAX_LEN ||
		strpbrk(b->subject, ": \t\n") != NULL))
		return budget_usage("agent and principal budgets name their "
				    "subject: agent:NAME, principal:NAME");
	if ((v = VALUE_OF(unit_names, args[1])) < 0)
		return budget_usage("the unit is tokens or cost");
	b->unit = v;
	if (v == PALYRA__V1__BUDGET_UNIT__BUDGET_UNIT_COST
		? parse_usd(args[2], &b->limit) < 0
		: parse_count(args[2], &b->limit) < 0)
		return budget_usage(
		    v == PALYRA__V1__BUDGET_UNIT__BUDGET_UNIT_COST
			? "a cost limit is USD with at most six decimals, such "
			  "as "
			  "2.50"
			: "a token limit is a whole number");
	if (b->limit == 0)
		return budget_usage("the limit must be more than 0");
	if (strcmp(args[3], "per") != 0)
		return budget_usage("expected \"per\" before the period");
	if ((v = VALUE_OF(period_names, args[4])) < 0)
		return budget_usage("the period is day, month or total");
	b->period = v;
	if (strcmp(args[5], "hard") == 0)
		b->hard = 1;
	else if (strcmp(args[5], "soft") != 0)
		return budget_usage("a budget is soft or hard");
	return 0;
}

static int
budget_set(const struct ctl_ctx *ctx, Palyra__V1__Budget *b, const char *token)
{
	Palyra__V1__SetBudgetRequest req = PALYRA__V1__SET_BUDGET_REQUEST__INIT;
	Palyra__V1__Budget *got;
	int rc;

	req.budget = b;
	if ((got = ctl_unary_msg(ctx, "budget set", USAGE_SERVICE "SetBudget",
	    token, &req.base, &palyra__v1__budget__descriptor)) == NULL)
		return CTL_EXIT_FAIL;
	rc = print_budgets(ctx, &got, 1) < 0 ? CTL_EXIT_FAIL : CTL_EXIT_OK;
	if (rc != CTL_EXIT_OK)
		fprintf(stderr, "palyractl: budget set: out of memory\n");
	palyra__v1__budget__free_unpacked(got, NULL);
	return rc;
}

static int
budget_delete(const struct ctl_ctx *ctx, const char *id, const char *token)
{
	Palyra__V1__DeleteBudgetRequest req =
	    PALYRA__V1__DELETE_BUDGET_REQUEST__INIT;
	struct ctl_unary_reply reply;

	req.budget_id = (char *)id;
	if (ctl_unary(ctx, "budget delete", USAGE_SERVICE "DeleteBudget", token,
		&req.base, &reply) < 0)
		return CTL_EXIT_FAIL;
	free(reply.data);
	ctl_print_deleted(ctx, "budget_id", id);
	return CTL_EXIT_OK;
}

int
ctl_cmd_budget(struct ctl_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"tenant", required_argument, NULL, 't'},
	    {"token", required_argument, NULL, 'T'},
	    {"json", no_argument, NULL, 'j'},
	    {NULL, 0, NULL, 0},
	};
	Palyra__V1__Budget b = PALYRA__V1__BUDGET__INIT;
	const char *tenant = NULL, *tok = NULL, *cmd, *what;
	char *token;
	int ch, nargs, rc;

	if (argc < 2)
		return budget_usage("budget needs list, set or delete");
	cmd = argv[1];
	if (strcmp(cmd, "list") == 0) {
		nargs = 0;
		what = "budget list";
	} else if (strcmp(cmd, "set") == 0) {
		nargs = 6;
		what = "budget set";
	} else if (strcmp(cmd, "delete") == 0) {
		nargs = 1;
		what = "budget delete";
	} else
		return budget_usage("unknown budget command");
	optind = 0;
	while ((ch = getopt_long(argc - 1, argv + 1, "", opts, NULL)) != -1) {
		switch (ch) {
		case 't':
			tenant = optarg;
			break;
		case 'T':
			tok = optarg;
			break;
		case 'j':
			ctx->json = 1;
			break;
		default:
			return budget_usage("bad option");
		}
	}
	if (argc - 1 - optind != nargs)
		return budget_usage(
		    nargs == 0 ? "budget list takes no "
				 "arguments"
		    : nargs == 1
			? "budget delete needs a budget "
			  "id"
			: "budget set needs SCOPE[:SUBJECT] tokens|cost "
			  "LIMIT per day|month|total soft|hard");
	if (nargs == 6 && (rc = budget_set_parse(argv + optind + 1, &b)) != 0)
		return rc;
	if (nargs == 1 && (argv[optind + 1][0] == '\0' ||
			      strlen(argv[optind + 1]) > BUDGET_ID_MAX))
		return budget_usage("bad budget id");
	if ((token = ctl_command_token(ctx, tok, tenant, what, &rc)) == NULL)
		return rc;
	if (nargs == 0)
		rc = budget_list(ctx, token);
	else if (nargs == 6)
		rc = budget_set(ctx, &b, token);
	else
		rc = budget_delete(ctx, argv[optind + 1], token);
	ctl_free_token(token);
	return rc;
}
