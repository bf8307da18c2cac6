/*
 * sessions.c: `palyractl sessions list|resolve|cleanup`, over
 * GatewayService ListSessions, ResolveSession and CleanupSession.
 *
 * Runs as the invoking user with no privilege. The token comes from
 * --token or PALYRA_TOKEN; with --tenant, palyractl mints an operator
 * token of that tenant with the admin token (an operator sees every
 * session of its tenant), as `runs` does.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ctl.h"
#include "grpc_status.h"
#include "palyra/v1/gateway.pb-c.h"

#define GATEWAY		"/palyra.v1.GatewayService/"
#define ARG_MAX_LEN	256	/* a session key or id */
#define PAGES_MAX	100000	/* a guard against a server that loops */

struct sessions_opts {
	const char	*command;	/* list, resolve, cleanup */
	const char	*arg;		/* resolve: key; cleanup: id */
	const char	*tenant;
	const char	*token;
	uint32_t	 page_size;
};

static int
sessions_usage(const char *why)
{
	fprintf(stderr, "palyractl: %s\n", why);
	fprintf(stderr, "usage: palyractl sessions list "
	    "[--tenant name | --token token] [--page-size n]\n"
	    "       palyractl sessions resolve|cleanup "
	    "[--tenant name | --token token] key|session_id\n");
	return CTL_EXIT_USAGE;
}

static int
sessions_parse(int argc, char **argv, struct sessions_opts *o)
{
	static const struct option opts[] = {
		{ "tenant", required_argument, NULL, 't' },
		{ "token", required_argument, NULL, 'T' },
		{ "page-size", required_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned long	 n;
	char		*end;
	int		 ch, want;

	memset(o, 0, sizeof(*o));
	if (argc < 2)
		return sessions_usage(
		    "sessions needs list, resolve or cleanup");
	o->command = argv[1];
	if (strcmp(o->command, "list") == 0)
		want = 0;
	else if (strcmp(o->command, "resolve") == 0 ||
	    strcmp(o->command, "cleanup") == 0)
		want = 1;
	else
		return sessions_usage("unknown sessions command");
	optind = 0;
	while ((ch = getopt_long(argc - 1, argv + 1, "", opts, NULL)) != -1) {
		switch (ch) {
		case 't':
			o->tenant = optarg;
			break;
		case 'T':
			o->token = optarg;
			break;
		case 'n':
			errno = 0;
			n = strtoul(optarg, &end, 10);
			if (optarg[0] < '0' || optarg[0] > '9' ||
			    *end != '\0' || errno != 0 || n < 1 || n > 100 ||
			    want)
				return sessions_usage("--page-size goes with "
				    "list and is 1 to 100");
			o->page_size = (uint32_t)n;
			break;
		default:
			return sessions_usage("bad option");
		}
	}
	if (argc - 1 - optind != want)
		return sessions_usage(want ? "needs exactly one argument" :
		    "list takes no argument");
	if (want) {
		o->arg = argv[optind + 1];
		if (o->arg[0] == '\0' || strlen(o->arg) > ARG_MAX_LEN)
			return sessions_usage("bad key or session id");
	}
	if (o->tenant != NULL && o->token != NULL)
		return sessions_usage(
		    "--tenant and --token exclude each other");
	return 0;
}

static void
print_session(const struct ctl_ctx *ctx, const Palyra__V1__Session *s)
{
	json_t	*obj;

	if (!ctx->json) {
		printf("%s %s %lld %u %lld%s\n", s->session_id, s->principal,
		    (long long)s->created_unix_ms, s->run_count,
		    (long long)s->last_run_unix_ms,
		    s->closed_unix_ms != 0 ? " closed" : "");
		return;
	}
	obj = json_pack("{s:s, s:s, s:I, s:i, s:I, s:I}", "session_id",
	    s->session_id, "principal", s->principal, "created_unix_ms",
	    (json_int_t)s->created_unix_ms, "run_count", (int)s->run_count,
	    "last_run_unix_ms", (json_int_t)s->last_run_unix_ms,
	    "closed_unix_ms", (json_int_t)s->closed_unix_ms);
	if (obj != NULL) {
		json_dumpf(obj, stdout, JSON_COMPACT);
		putchar('\n');
		json_decref(obj);
	}
}

/* Every page, one session a line, oldest first. */
static int
list(const struct ctl_ctx *ctx, const struct sessions_opts *o,
    const char *token)
{
	Palyra__V1__ListSessionsRequest	 req =
	    PALYRA__V1__LIST_SESSIONS_REQUEST__INIT;
	Palyra__V1__ListSessionsResponse *page = NULL;
	struct ctl_unary_reply		 reply;
	char				*next = NULL;
	size_t				 i;
	int				 pages;

	req.page_size = o->page_size;
	for (pages = 0; pages < PAGES_MAX; pages++) {
		req.page_token = next != NULL ? next : "";
		if (ctl_unary(ctx, "sessions list", GATEWAY "ListSessions",
		    token, &req.base, &reply) < 0)
			break;
		page = palyra__v1__list_sessions_response__unpack(NULL,
		    reply.len, reply.data);
		free(reply.data);
		if (page == NULL) {
			fprintf(stderr, "palyractl: sessions list: "
			    "undecodable reply\n");
			break;
		}
		for (i = 0; i < page->n_sessions; i++)
			print_session(ctx, page->sessions[i]);
		free(next);
		next = NULL;
		if (page->next_page_token[0] == '\0') {
			palyra__v1__list_sessions_response__free_unpacked(
			    page, NULL);
			return CTL_EXIT_OK;
		}
		next = strdup(page->next_page_token);
		palyra__v1__list_sessions_response__free_unpacked(page, NULL);
		if (next == NULL)
			break;
	}
	free(next);
	return CTL_EXIT_FAIL;
}

static int
resolve(const struct ctl_ctx *ctx, const struct sessions_opts *o,
    const char *token)
{
	Palyra__V1__ResolveSessionRequest	 req =
	    PALYRA__V1__RESOLVE_SESSION_REQUEST__INIT;
	Palyra__V1__Session			*s;

	req.session_key = (char *)o->arg;
	if ((s = ctl_unary_msg(ctx, "sessions resolve",
	    GATEWAY "ResolveSession", token, &req.base,
	    &palyra__v1__session__descriptor)) == NULL)
		return CTL_EXIT_FAIL;
	print_session(ctx, s);
	palyra__v1__session__free_unpacked(s, NULL);
	return CTL_EXIT_OK;
}

static int
cleanup(const struct ctl_ctx *ctx, const struct sessions_opts *o,
    const char *token)
{
	Palyra__V1__CleanupSessionRequest	 req =
	    PALYRA__V1__CLEANUP_SESSION_REQUEST__INIT;
	Palyra__V1__CleanupSessionResponse	*resp;

	req.session_id = (char *)o->arg;
	if ((resp = ctl_unary_msg(ctx, "sessions cleanup",
	    GATEWAY "CleanupSession", token, &req.base,
	    &palyra__v1__cleanup_session_response__descriptor)) == NULL)
		return CTL_EXIT_FAIL;
	if (ctx->json)
		ctl_print_json(json_pack("{s:s, s:I}", "session_id", o->arg,
		    "runs_removed", (json_int_t)resp->runs_removed));
	else
		printf("%s closed, %u runs\n", o->arg, resp->runs_removed);
	palyra__v1__cleanup_session_response__free_unpacked(resp, NULL);
	return CTL_EXIT_OK;
}

int
ctl_cmd_sessions(struct ctl_ctx *ctx, int argc, char **argv)
{
	struct sessions_opts	 o;
	const char		*env;
	char			*token;
	int			 rc;

	if ((rc = sessions_parse(argc, argv, &o)) != 0)
		return rc;
	env = ctx->token;
	if (o.token == NULL && o.tenant == NULL &&
	    (env == NULL || env[0] == '\0'))
		return sessions_usage("sessions needs --token, PALYRA_TOKEN "
		    "or --tenant");
	if ((token = ctl_bearer(ctx, o.token, o.tenant)) == NULL)
		return CTL_EXIT_FAIL;
	if (strlen(token) > FE_TOKEN_MAX_LEN) {
		free(token);
		return sessions_usage("token too long");
	}
	if (strcmp(o.command, "list") == 0)
		rc = list(ctx, &o, token);
	else if (strcmp(o.command, "resolve") == 0)
		rc = resolve(ctx, &o, token);
	else
		rc = cleanup(ctx, &o, token);
	explicit_bzero(token, strlen(token));
	free(token);
	return rc;
}
