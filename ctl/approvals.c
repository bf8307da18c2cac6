/*
 * approvals.c: `palyractl approvals list|show|decide|grants|revoke|export|
 * verify-export`, over ApprovalsService (ListApprovals, GetApproval,
 * DecideApproval, ListGrants, RevokeGrant, ExportApprovals).
 *
 * Runs in palyractl as the invoking user with no privilege. The token
 * comes from --token or PALYRA_TOKEN; with --tenant, palyractl mints an
 * operator token of that tenant with the admin token (an operator sees and
 * decides every approval of its tenant). export and verify-export are in
 * approvals_export.c: verify-export needs no daemon (it recomputes every
 * line's SHA-256 and the chain), and `approvals export` checks the stream
 * the same way as it writes it, so an export that does not verify never
 * ends with success.
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

#define APPROVALS "/palyra.v1.ApprovalsService/"
#define ID_MAX 64

static const char *const state_names[] = {
    "unspecified",
    "pending",
    "allowed",
    "denied",
    "expired",
};
static const char *const scope_names[] = {
    "",
    "once",
    "session",
    "ttl",
};

const char *
ctl_approval_state_name(int s)
{
	if (s < 0 || (size_t)s >= sizeof(state_names) / sizeof(state_names[0]))
		return "unknown";
	return state_names[s];
}

const char *
ctl_approval_scope_name(int s)
{
	if (s < 0 || (size_t)s >= sizeof(scope_names) / sizeof(scope_names[0]))
		return "unknown";
	return scope_names[s];
}

/* "2026-12-02T07:50:00Z" for a time in ms since the epoch; "-" for 0. */
const char *
ctl_time_string(int64_t unix_ms, char *buf, size_t size)
{
	struct tm tm;
	time_t t = (time_t)(unix_ms / 1000);

	if (unix_ms <= 0 || gmtime_r(&t, &tm) == NULL ||
	    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, size, "-");
	return buf;
}

/* Server text for a terminal: control bytes as '?'. */
void
ctl_print_clean(FILE *f, const char *s)
{
	for (; s != NULL && *s != '\0'; s++)
		fputc((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s, f);
}

char *
ctl_command_token(const struct ctl_ctx *ctx, const char *token,
    const char *tenant, const char *what, int *exit_code)
{
	const char *env = ctx->token;
	char *t;

	/* The first two are usage errors; the rest the daemon's answer. */
	*exit_code = CTL_EXIT_USAGE;
	if (token != NULL && tenant != NULL) {
		fprintf(stderr,
		    "palyractl: %s: --tenant and --token exclude "
		    "each other\n",
		    what);
		return NULL;
	}
	if (token == NULL && tenant == NULL &&
	    (env == NULL || env[0] == '\0')) {
		fprintf(stderr,
		    "palyractl: %s needs --token, PALYRA_TOKEN or "
		    "--tenant\n",
		    what);
		return NULL;
	}
	*exit_code = CTL_EXIT_FAIL;
	if ((t = ctl_bearer(ctx, token, tenant)) == NULL)
		return NULL;
	if (t[0] == '\0' || strlen(t) > FE_TOKEN_MAX_LEN) {
		fprintf(stderr, "palyractl: %s: bad token\n", what);
		free(t);
		return NULL;
	}
	return t;
}

void
ctl_free_token(char *token)
{
	if (token != NULL) {
		explicit_bzero(token, strlen(token));
		free(token);
	}
}

struct approvals_opts {
	const char *command;
	const char *tenant;
	const char *token;
	const char *args[2]; /* positional arguments */
	int nargs;
	int state; /* ApprovalState; 0: all */
	const char *run_id;
	int scope; /* ApprovalScope; 0: not given */
	uint64_t ttl_ms;
	const char *reason;
	int all;
	const char *output;
	int64_t since_ms;
};

static int
approvals_usage(const char *why)
{
	fprintf(stderr, "palyractl: %s\n", why);
	fprintf(stderr,
	    "usage: palyractl approvals list [--state pending|allowed|denied|"
	    "expired]\n"
	    "           [--run run_id] [--json]\n"
	    "       palyractl approvals show approval_id [--json]\n"
	    "       palyractl approvals decide approval_id allow|deny\n"
	    "           [--scope once|session|ttl] [--ttl duration] "
	    "[--reason text]\n"
	    "       palyractl approvals grants [--all] [--json]\n"
	    "       palyractl approvals revoke grant_id\n"
	    "       palyractl approvals export [-o file] [--since time]\n"
	    "       palyractl approvals verify-export file\n"
	    "   (each but verify-export takes --tenant name or --token "
	    "token)\n");
	return CTL_EXIT_USAGE;
}

static int
state_value(const char *s)
{
	int i;

	for (i = 1; i < 5; i++)
		if (strcmp(s, state_names[i]) == 0)
			return i;
	return -1;
}

/*
 * --since: a time in ms since the epoch (digits), a duration before now
 * ("24h"), a day ("2026-12-01", UTC midnight) or a UTC time
 * ("2026-12-01T08:00:00Z"). Returns 0 or -1.
 */
static int
parse_since(const char *s, int64_t *ms)
{
	struct tm tm;
	const char *end;
	long long d;
	char *e;

	if (s[0] >= '0' && s[0] <= '9' &&
	    strspn(s, "0123456789") == strlen(s)) {
		errno = 0;
		*ms = strtoll(s, &e, 10);
		return errno != 0 ? -1 : 0;
	}
	if ((d = ctl_duration_seconds(s)) > 0) {
		*ms = ((int64_t)time(NULL) - d) * 1000;
		return *ms < 0 ? -1 : 0;
	}
	memset(&tm, 0, sizeof(tm));
	if ((end = strptime(s, "%Y-%m-%d", &tm)) == NULL)
		return -1;
	if (*end == 'T') {
		if ((end = strptime(end + 1, "%H:%M:%S", &tm)) == NULL)
			return -1;
		if (*end == 'Z')
			end++;
	}
	if (*end != '\0')
		return -1;
	*ms = (int64_t)timegm(&tm) * 1000;
	return *ms < 0 ? -1 : 0;
}

static int
approvals_parse(
    struct ctl_ctx *ctx, int argc, char **argv, struct approvals_opts *o)
{
	static const struct option opts[] = {
	    CTL_TENANT_OPTIONS,
	    {"state", required_argument, NULL, 's'},
	    {"run", required_argument, NULL, 'r'},
	    {"scope", required_argument, NULL, 'S'},
	    {"ttl", required_argument, NULL, 'L'},
	    {"reason", required_argument, NULL, 'R'},
	    {"all", no_argument, NULL, 'a'},
	    {"output", required_argument, NULL, 'o'},
	    {"since", required_argument, NULL, 'n'},
	    {NULL, 0, NULL, 0},
	};
	/* Which options each command takes, by their letters. */
	static const struct ctl_subcommand commands[] = {
	    {"list", "tTsrj", 0},
	    {"show", "tTj", 1},
	    {"decide", "tTSLRj", 2},
	    {"grants", "tTaj", 0},
	    {"revoke", "tTj", 1},
	    {"export", "tTon", 0},
	    {"verify-export", "j", 1},
	};
	struct ctl_subparse p = {
	    .group = "approvals", .shortopts = "o:", .opts = opts};
	long long ttl;
	size_t i;
	int ch, nargs;

	memset(o, 0, sizeof(*o));
	if (argc < 2)
		return approvals_usage(
		    "approvals needs list, show, decide, "
		    "grants, revoke, export or verify-export");
	o->command = argv[1];
	if (ctl_subparse_begin(&p, commands,
		sizeof(commands) / sizeof(commands[0]), o->command) == NULL)
		return approvals_usage("unknown approvals command");
	nargs = p.sub->nargs;
	while ((ch = ctl_subparse_next(ctx, &p, argc, argv)) != -1) {
		switch (ch) {
		case 0:
			return approvals_usage(p.why);
		case 's':
			if ((o->state = state_value(optarg)) < 0)
				return approvals_usage(
				    "--state is pending, "
				    "allowed, denied or expired");
			break;
		case 'r':
			if (optarg[0] == '\0' || strlen(optarg) > ID_MAX)
				return approvals_usage("bad run id");
			o->run_id = optarg;
			break;
		case 'S':
			if (strcmp(optarg, "once") == 0)
				o->scope =
				    PALYRA__V1__APPROVAL_SCOPE__APPROVAL_SCOPE_ONCE;
			else if (strcmp(optarg, "session") == 0)
				o->scope =
				    PALYRA__V1__APPROVAL_SCOPE__APPROVAL_SCOPE_SESSION;
			else if (strcmp(optarg, "ttl") == 0)
				o->scope =
				    PALYRA__V1__APPROVAL_SCOPE__APPROVAL_SCOPE_TTL;
			else
				return approvals_usage("--scope is once, "
						       "session or ttl");
			break;
		case 'L':
			ttl = ctl_duration_seconds(optarg);
			if (ttl < 1 ||
			    (uint64_t)ttl * 1000 > CTL_APPROVAL_TTL_MAX_MS)
				return approvals_usage(
				    "--ttl is a duration of "
				    "1s to 30d, such as 90s, 30m, 12h or 7d");
			o->ttl_ms = (uint64_t)ttl * 1000;
			break;
		case 'R':
			if (strlen(optarg) > CTL_APPROVAL_REASON_MAX)
				return approvals_usage("--reason is at most "
						       "1024 bytes");
			o->reason = optarg;
			break;
		case 'a':
			o->all = 1;
			break;
		case 'o':
			if (optarg[0] == '\0')
				return approvals_usage("-o needs a file name");
			o->output = optarg;
			break;
		case 'n':
			if (parse_since(optarg, &o->since_ms) < 0)
				return approvals_usage(
				    "--since is a time in ms "
				    "since the epoch, a duration (24h), a day "
				    "(2026-12-01) or a UTC time "
				    "(2026-12-01T08:00:00Z)");
			break;
		}
	}
	o->tenant = p.tenant;
	o->token = p.token;
	if (argc - 1 - optind != nargs)
		return approvals_usage(
		    nargs == 0 ? "too many arguments"
		    : nargs == 1
			? "needs exactly one argument"
			: "decide needs an approval id and allow or deny");
	for (i = 0; i < (size_t)nargs; i++)
		o->args[i] = argv[optind + 1 + i];
	o->nargs = nargs;
	if (strcmp(o->command, "verify-export") != 0 && nargs > 0 &&
	    (o->args[0][0] == '\0' || strlen(o->args[0]) > ID_MAX))
		return approvals_usage("bad id");
	if (strcmp(o->command, "decide") == 0) {
		if (strcmp(o->args[1], "allow") != 0 &&
		    strcmp(o->args[1], "deny") != 0)
			return approvals_usage("decide takes allow or deny");
		if (o->ttl_ms != 0 && o->scope == 0)
			o->scope =
			    PALYRA__V1__APPROVAL_SCOPE__APPROVAL_SCOPE_TTL;
		if (strcmp(o->args[1], "deny") == 0 && o->scope != 0)
			return approvals_usage(
			    "--scope and --ttl go with allow");
		if (o->scope ==
			PALYRA__V1__APPROVAL_SCOPE__APPROVAL_SCOPE_TTL &&
		    o->ttl_ms == 0)
			return approvals_usage("--scope ttl needs --ttl");
		if (o->ttl_ms != 0 &&
		    o->scope != PALYRA__V1__APPROVAL_SCOPE__APPROVAL_SCOPE_TTL)
			return approvals_usage("--ttl goes with --scope ttl");
	}
	return 0;
}

/* Output */

static json_t *
approval_json(const Palyra__V1__Approval *a)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, "
			 "s:s, s:s, s:I, s:I, s:I, s:s}",
	    "approval_id", a->approval_id, "run_id", a->run_id, "session_id",
	    a->session_id, "principal", a->principal, "agent", a->agent,
	    "tool_call_id", a->tool_call_id, "tool_name", a->tool_name,
	    "arguments_summary", a->arguments_summary, "state",
	    ctl_approval_state_name(a->state), "scope",
	    ctl_approval_scope_name(a->scope), "decided_by", a->decided_by,
	    "reason", a->reason, "created_unix_ms",
	    (json_int_t)a->created_unix_ms, "expires_unix_ms",
	    (json_int_t)a->expires_unix_ms, "decided_unix_ms",
	    (json_int_t)a->decided_unix_ms, "grant_id", a->grant_id);
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

static const char *const approval_header[] = {
    "APPROVAL",
    "STATE",
    "TOOL",
    "PRINCIPAL",
    "AGENT",
    "RUN",
    "CREATED",
    "EXPIRES",
};

static int
approval_row(struct ctl_table *t, const Palyra__V1__Approval *a)
{
	char created[32], expires[32];
	const char *row[] = {
	    a->approval_id,
	    ctl_approval_state_name(a->state),
	    a->tool_name,
	    a->principal,
	    a->agent,
	    a->run_id,
	    ctl_time_string(a->created_unix_ms, created, sizeof(created)),
	    ctl_time_string(a->expires_unix_ms, expires, sizeof(expires)),
	};

	return ctl_table_add(t, row);
}

static void
print_field(const char *name, const char *value)
{
	printf("%-18s ", name);
	ctl_print_clean(stdout, value[0] != '\0' ? value : "-");
	putchar('\n');
}

static void
print_approval_full(const Palyra__V1__Approval *a)
{
	char t[32];

	print_field("approval_id", a->approval_id);
	print_field("state", ctl_approval_state_name(a->state));
	print_field("tool", a->tool_name);
	print_field("arguments", a->arguments_summary);
	print_field("run_id", a->run_id);
	print_field("session_id", a->session_id);
	print_field("tool_call_id", a->tool_call_id);
	print_field("principal", a->principal);
	print_field("agent", a->agent);
	print_field(
	    "created", ctl_time_string(a->created_unix_ms, t, sizeof(t)));
	print_field(
	    "expires", ctl_time_string(a->expires_unix_ms, t, sizeof(t)));
	print_field(
	    "decided", ctl_time_string(a->decided_unix_ms, t, sizeof(t)));
	print_field("decided_by", a->decided_by);
	print_field("scope", ctl_approval_scope_name(a->scope));
	print_field("reason", a->reason);
	print_field("grant_id", a->grant_id);
}

/* Commands */

static int
cmd_list(const struct ctl_ctx *ctx, const struct approvals_opts *o,
    const char *token)
{
	Palyra__V1__ListApprovalsRequest req =
	    PALYRA__V1__LIST_APPROVALS_REQUEST__INIT;
	Palyra__V1__ListApprovalsResponse *resp;
	struct ctl_unary_reply reply;
	struct ctl_table *table = NULL;
	char *page = NULL;
	size_t i, total = 0;
	int pages = 0, rc = CTL_EXIT_FAIL;

	req.state = o->state;
	if (o->run_id != NULL)
		req.run_id = (char *)o->run_id;
	req.page_size = 100;
	if (!ctx->json &&
	    (table = ctl_table_new(8, "llllllll", approval_header)) == NULL) {
		fprintf(stderr, "palyractl: approvals list: out of memory\n");
		return CTL_EXIT_FAIL;
	}
	do {
		req.page_token = page != NULL ? page : "";
		if (ctl_unary(ctx, "approvals list", APPROVALS "ListApprovals",
			token, &req.base, &reply) < 0) {
			free(page);
			goto out;
		}
		resp = palyra__v1__list_approvals_response__unpack(
		    NULL, reply.len, reply.data);
		free(reply.data);
		free(page);
		page = NULL;
		if (resp == NULL) {
			fprintf(stderr, "palyractl: approvals list: "
					"undecodable reply\n");
			goto out;
		}
		for (i = 0; i < resp->n_approvals; i++) {
			if (ctx->json)
				print_json(approval_json(resp->approvals[i]));
			else if (approval_row(table, resp->approvals[i]) < 0) {
				fprintf(stderr, "palyractl: approvals list: "
						"out of memory\n");
				palyra__v1__list_approvals_response__free_unpacked(
				    resp, NULL);
				free(page);
				goto out;
			}
		}
		total += resp->n_approvals;
		if (resp->next_page_token[0] != '\0')
			page = strdup(resp->next_page_token);
		palyra__v1__list_approvals_response__free_unpacked(resp, NULL);
		/* A server that hands out pages forever is not followed. */
	} while (page != NULL && ++pages < 10000);
	free(page);
	if (!ctx->json) {
		ctl_table_print(table, stdout);
		printf("%zu approval%s\n", total, total == 1 ? "" : "s");
	}
	rc = CTL_EXIT_OK;
out:
	ctl_table_free(table);
	return rc;
}

static int
one_approval(const struct ctl_ctx *ctx, const struct approvals_opts *o,
    const char *token)
{
	Palyra__V1__GetApprovalRequest get =
	    PALYRA__V1__GET_APPROVAL_REQUEST__INIT;
	Palyra__V1__DecideApprovalRequest decide =
	    PALYRA__V1__DECIDE_APPROVAL_REQUEST__INIT;
	Palyra__V1__ApprovalDecision d = PALYRA__V1__APPROVAL_DECISION__INIT;
	Palyra__V1__Approval *a;
	const ProtobufCMessage *req = &get.base;
	const char *what = "approvals show";
	const char *method = APPROVALS "GetApproval";

	if (strcmp(o->command, "decide") == 0) {
		d.approval_id = (char *)o->args[0];
		d.decision =
		    strcmp(o->args[1], "allow") == 0
			? PALYRA__V1__APPROVAL_DECISION_KIND__APPROVAL_DECISION_ALLOW
			: PALYRA__V1__APPROVAL_DECISION_KIND__APPROVAL_DECISION_DENY;
		if (d.decision ==
		    PALYRA__V1__APPROVAL_DECISION_KIND__APPROVAL_DECISION_ALLOW)
			d.scope =
			    o->scope != 0
				? o->scope
				: PALYRA__V1__APPROVAL_SCOPE__APPROVAL_SCOPE_ONCE;
		d.ttl_ms = o->ttl_ms;
		if (o->reason != NULL)
			d.reason = (char *)o->reason;
		decide.decision = &d;
		req = &decide.base;
		what = "approvals decide";
		method = APPROVALS "DecideApproval";
	} else
		get.approval_id = (char *)o->args[0];
	if ((a = ctl_unary_msg(ctx, what, method, token, req,
		 &palyra__v1__approval__descriptor)) == NULL)
		return CTL_EXIT_FAIL;
	if (ctx->json)
		print_json(approval_json(a));
	else if (strcmp(o->command, "decide") == 0) {
		printf(
		    "%s %s", a->approval_id, ctl_approval_state_name(a->state));
		if (a->grant_id[0] != '\0')
			printf(" grant %s scope %s", a->grant_id,
			    ctl_approval_scope_name(a->scope));
		putchar('\n');
	} else
		print_approval_full(a);
	palyra__v1__approval__free_unpacked(a, NULL);
	return CTL_EXIT_OK;
}

static int
grant_row(struct ctl_table *t, const Palyra__V1__Grant *g)
{
	char created[32], expires[32];
	const char *row[] = {
	    g->grant_id,
	    ctl_approval_scope_name(g->scope),
	    g->tool_name,
	    g->principal,
	    g->agent,
	    g->session_id[0] != '\0' ? g->session_id : "-",
	    ctl_time_string(g->created_unix_ms, created, sizeof(created)),
	    ctl_time_string(g->expires_unix_ms, expires, sizeof(expires)),
	    g->approval_id,
	};

	return ctl_table_add(t, row);
}

static int
cmd_grants(const struct ctl_ctx *ctx, const struct approvals_opts *o,
    const char *token)
{
	Palyra__V1__ListGrantsRequest req =
	    PALYRA__V1__LIST_GRANTS_REQUEST__INIT;
	Palyra__V1__ListGrantsResponse *resp;
	const Palyra__V1__Grant *g;
	static const char *const header[] = {
	    "GRANT",
	    "SCOPE",
	    "TOOL",
	    "PRINCIPAL",
	    "AGENT",
	    "SESSION",
	    "CREATED",
	    "EXPIRES",
	    "APPROVAL",
	};
	struct ctl_table *table = NULL;
	size_t i;
	int rc = CTL_EXIT_OK;

	req.include_expired = o->all;
	if ((resp = ctl_unary_msg(ctx, "approvals grants",
		 APPROVALS "ListGrants", token, &req.base,
		 &palyra__v1__list_grants_response__descriptor)) == NULL)
		return CTL_EXIT_FAIL;
	if (!ctx->json &&
	    (table = ctl_table_new(9, "lllllllll", header)) == NULL)
		rc = CTL_EXIT_FAIL;
	for (i = 0; rc == CTL_EXIT_OK && i < resp->n_grants; i++) {
		g = resp->grants[i];
		if (ctx->json) {
			print_json(json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, "
					     "s:I, s:I, s:s}",
			    "grant_id", g->grant_id, "tool_name", g->tool_name,
			    "scope", ctl_approval_scope_name(g->scope),
			    "principal", g->principal, "agent", g->agent,
			    "session_id", g->session_id, "created_unix_ms",
			    (json_int_t)g->created_unix_ms, "expires_unix_ms",
			    (json_int_t)g->expires_unix_ms, "approval_id",
			    g->approval_id));
			continue;
		}
		if (grant_row(table, g) < 0)
			rc = CTL_EXIT_FAIL;
	}
	if (rc != CTL_EXIT_OK)
		fprintf(stderr, "palyractl: approvals grants: out of memory\n");
	else if (!ctx->json) {
		ctl_table_print(table, stdout);
		printf("%zu grant%s\n", resp->n_grants,
		    resp->n_grants == 1 ? "" : "s");
	}
	ctl_table_free(table);
	palyra__v1__list_grants_response__free_unpacked(resp, NULL);
	return rc;
}

static int
cmd_revoke(const struct ctl_ctx *ctx, const struct approvals_opts *o,
    const char *token)
{
	Palyra__V1__RevokeGrantRequest req =
	    PALYRA__V1__REVOKE_GRANT_REQUEST__INIT;
	struct ctl_unary_reply reply;

	req.grant_id = (char *)o->args[0];
	if (ctl_unary(ctx, "approvals revoke", APPROVALS "RevokeGrant", token,
		&req.base, &reply) < 0)
		return CTL_EXIT_FAIL;
	free(reply.data);
	if (ctx->json)
		ctl_print_json(json_pack("{s:s, s:b}", "grant_id", o->args[0],
		    "revoked", 1));
	else
		printf("%s revoked\n", o->args[0]);
	return CTL_EXIT_OK;
}

int
ctl_cmd_approvals(struct ctl_ctx *ctx, int argc, char **argv)
{
	struct approvals_opts o;
	char *token, what[64];
	int rc;

	if ((rc = approvals_parse(ctx, argc, argv, &o)) != 0)
		return rc;
	if (strcmp(o.command, "verify-export") == 0)
		return ctl_approvals_verify_export(ctx, o.args[0]);
	snprintf(what, sizeof(what), "approvals %s", o.command);
	if ((token = ctl_command_token(ctx, o.token, o.tenant, what, &rc)) ==
	    NULL)
		return rc;
	if (strcmp(o.command, "list") == 0)
		rc = cmd_list(ctx, &o, token);
	else if (strcmp(o.command, "grants") == 0)
		rc = cmd_grants(ctx, &o, token);
	else if (strcmp(o.command, "revoke") == 0)
		rc = cmd_revoke(ctx, &o, token);
	else if (strcmp(o.command, "export") == 0)
		rc = ctl_approvals_export(ctx, o.output, o.since_ms, token);
	else
		rc = one_approval(ctx, &o, token);
	ctl_free_token(token);
	return rc;
}
