/*
 * runs.c: `palyractl runs show|abort|events RUN_ID` and `runs note RUN_ID
 * TEXT`, over GatewayService GetRun, AbortRun, ListRunEvents and
 * AppendEvent.
 *
 * Runs as the invoking user with no privilege. The token comes from
 * --token or PALYRA_TOKEN; with --tenant, palyractl mints an operator
 * token of that tenant with the admin token (an operator sees every run
 * of its tenant).
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
#define RUN_ID_MAX	64
#define REASON_MAX	1024

struct runs_opts {
	const char	*command;	/* show, abort, events, note */
	const char	*run_id;
	const char	*text;		/* note */
	const char	*tenant;
	const char	*token;
	const char	*reason;
	uint64_t	 after;
};

static int
runs_usage(const char *why)
{
	fprintf(stderr, "palyractl: %s\n", why);
	fprintf(stderr, "usage: palyractl runs show|abort|events "
	    "[--tenant name | --token token] run_id\n"
	    "           [--reason text] [--after seq]\n"
	    "       palyractl runs note [--tenant name | --token token] "
	    "run_id text\n");
	return CTL_EXIT_USAGE;
}

static int
runs_parse(int argc, char **argv, struct runs_opts *o)
{
	static const struct option opts[] = {
		{ "tenant", required_argument, NULL, 't' },
		{ "token", required_argument, NULL, 'T' },
		{ "reason", required_argument, NULL, 'r' },
		{ "after", required_argument, NULL, 'S' },
		{ NULL, 0, NULL, 0 },
	};
	const char	*after = NULL;
	char		*end;
	int		 ch;

	memset(o, 0, sizeof(*o));
	if (argc < 2)
		return runs_usage("runs needs show, abort, events or note");
	o->command = argv[1];
	if (strcmp(o->command, "show") != 0 &&
	    strcmp(o->command, "abort") != 0 &&
	    strcmp(o->command, "events") != 0 &&
	    strcmp(o->command, "note") != 0)
		return runs_usage("unknown runs command");
	/* 0, not 1: glibc then forgets main()'s "+" (options may follow
	 * the run id). */
	optind = 0;
	while ((ch = getopt_long(argc - 1, argv + 1, "", opts, NULL)) != -1) {
		switch (ch) {
		case 't':
			o->tenant = optarg;
			break;
		case 'T':
			o->token = optarg;
			break;
		case 'r':
			o->reason = optarg;
			break;
		case 'S':
			after = optarg;
			break;
		default:
			return runs_usage("bad option");
		}
	}
	if (strcmp(o->command, "note") == 0) {
		if (optind + 2 != argc - 1)
			return runs_usage("runs note needs a run id and a text");
		o->text = argv[optind + 2];
		if (o->text[0] == '\0' || strlen(o->text) > TEXT_MAX_LEN)
			return runs_usage("the text is 1 to 65536 bytes");
	} else if (optind + 1 != argc - 1)
		return runs_usage("runs needs exactly one run id");
	o->run_id = argv[optind + 1];
	if (o->run_id[0] == '\0' || strlen(o->run_id) > RUN_ID_MAX)
		return runs_usage("bad run id");
	if (o->tenant != NULL && o->token != NULL)
		return runs_usage("--tenant and --token exclude each other");
	if (o->reason != NULL && (strcmp(o->command, "abort") != 0 ||
	    strlen(o->reason) > REASON_MAX))
		return runs_usage("--reason goes with abort, at most 1024 "
		    "bytes");
	if (after != NULL) {
		if (strcmp(o->command, "events") != 0)
			return runs_usage("--after goes with events");
		errno = 0;
		o->after = strtoull(after, &end, 10);
		if (after[0] < '0' || after[0] > '9' || *end != '\0' ||
		    errno != 0)
			return runs_usage("--after needs a sequence number");
	}
	return 0;
}

/* The bearer token to use (caller frees), or NULL after a message. */
static int
show(const struct ctl_ctx *ctx, const struct runs_opts *o, const char *token)
{
	Palyra__V1__GetRunRequest	 req =
	    PALYRA__V1__GET_RUN_REQUEST__INIT;
	Palyra__V1__Run			*run;

	req.run_id = (char *)o->run_id;
	if ((run = ctl_unary_msg(ctx, "runs show", GATEWAY "GetRun", token,
	    &req.base, &palyra__v1__run__descriptor)) == NULL)
		return CTL_EXIT_FAIL;
	if (ctx->json) {
		json_t *obj = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, "
		    "s:I}", "run_id", run->run_id, "session_id",
		    run->session_id, "principal", run->principal, "agent",
		    run->agent, "status", ctl_run_status_name(run->status),
		    "created_unix_ms", (json_int_t)run->created_unix_ms,
		    "updated_unix_ms", (json_int_t)run->updated_unix_ms,
		    "last_seq", (json_int_t)run->last_seq);

		if (obj != NULL) {
			json_dumpf(obj, stdout, JSON_COMPACT);
			putchar('\n');
			json_decref(obj);
		}
	} else
		printf("run_id %s\nsession_id %s\nprincipal %s\nagent %s\n"
		    "status %s\ncreated_unix_ms %lld\nupdated_unix_ms %lld\n"
		    "last_seq %llu\n", run->run_id, run->session_id,
		    run->principal, run->agent, ctl_run_status_name(run->status),
		    (long long)run->created_unix_ms,
		    (long long)run->updated_unix_ms,
		    (unsigned long long)run->last_seq);
	palyra__v1__run__free_unpacked(run, NULL);
	return CTL_EXIT_OK;
}

static int
abort_run(const struct ctl_ctx *ctx, const struct runs_opts *o,
    const char *token)
{
	Palyra__V1__AbortRunRequest	 req =
	    PALYRA__V1__ABORT_RUN_REQUEST__INIT;
	Palyra__V1__AbortRunResponse	*resp;

	req.run_id = (char *)o->run_id;
	if (o->reason != NULL)
		req.reason = (char *)o->reason;
	if ((resp = ctl_unary_msg(ctx, "runs abort", GATEWAY "AbortRun", token,
	    &req.base, &palyra__v1__abort_run_response__descriptor)) == NULL)
		return CTL_EXIT_FAIL;
	if (ctx->json)
		ctl_print_json(json_pack("{s:s, s:s}", "run_id", o->run_id,
		    "status", ctl_run_status_name(resp->status)));
	else
		printf("%s %s\n", o->run_id, ctl_run_status_name(resp->status));
	palyra__v1__abort_run_response__free_unpacked(resp, NULL);
	return CTL_EXIT_OK;
}

static int
note(const struct ctl_ctx *ctx, const struct runs_opts *o, const char *token)
{
	Palyra__V1__AppendEventRequest	 req =
	    PALYRA__V1__APPEND_EVENT_REQUEST__INIT;
	Palyra__V1__AppendEventResponse	*resp;

	req.run_id = (char *)o->run_id;
	req.text = (char *)o->text;
	if ((resp = ctl_unary_msg(ctx, "runs note", GATEWAY "AppendEvent",
	    token, &req.base,
	    &palyra__v1__append_event_response__descriptor)) == NULL)
		return CTL_EXIT_FAIL;
	if (ctx->json)
		ctl_print_json(json_pack("{s:s, s:I}", "run_id", o->run_id,
		    "seq", (json_int_t)resp->seq));
	else
		printf("%s %llu\n", o->run_id, (unsigned long long)resp->seq);
	palyra__v1__append_event_response__free_unpacked(resp, NULL);
	return CTL_EXIT_OK;
}

static int
events(const struct ctl_ctx *ctx, const struct runs_opts *o,
    const char *token)
{
	Palyra__V1__ListRunEventsRequest req =
	    PALYRA__V1__LIST_RUN_EVENTS_REQUEST__INIT;
	uint8_t	*buf;
	size_t	 len;
	int	 rc;

	req.run_id = (char *)o->run_id;
	req.after_seq = o->after;
	len = palyra__v1__list_run_events_request__get_packed_size(&req);
	if ((buf = malloc(len > 0 ? len : 1)) == NULL)
		return CTL_EXIT_FAIL;
	palyra__v1__list_run_events_request__pack(&req, buf);
	rc = ctl_follow_events(ctx, GATEWAY "ListRunEvents", token, buf, len);
	free(buf);
	return rc;
}

int
ctl_cmd_runs(struct ctl_ctx *ctx, int argc, char **argv)
{
	struct runs_opts	 o;
	const char		*env;
	char			*token;
	int			 rc;

	if ((rc = runs_parse(argc, argv, &o)) != 0)
		return rc;
	env = ctx->token;
	if (o.token == NULL && o.tenant == NULL &&
	    (env == NULL || env[0] == '\0'))
		return runs_usage("runs needs --token, PALYRA_TOKEN or "
		    "--tenant");
	if ((token = ctl_bearer(ctx, o.token, o.tenant)) == NULL)
		return CTL_EXIT_FAIL;
	if (strlen(token) > FE_TOKEN_MAX_LEN) {
		free(token);
		return runs_usage("token too long");
	}
	if (strcmp(o.command, "show") == 0)
		rc = show(ctx, &o, token);
	else if (strcmp(o.command, "abort") == 0)
		rc = abort_run(ctx, &o, token);
	else if (strcmp(o.command, "note") == 0)
		rc = note(ctx, &o, token);
	else
		rc = events(ctx, &o, token);
	explicit_bzero(token, strlen(token));
	free(token);
	return rc;
}
