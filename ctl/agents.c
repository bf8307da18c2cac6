/*
 * agents.c: `palyractl agent list|show|create|update|delete`, over
 * GatewayService ListAgents, GetAgent, CreateAgent, UpdateAgent and
 * DeleteAgent.
 *
 * Runs as the invoking user with no privilege. The token comes from
 * --token or PALYRA_TOKEN; with --tenant, palyractl mints an operator
 * token of that tenant with the admin token (changing agents needs the
 * operator or admin role), as `sessions` does.
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

#define GATEWAY "/palyra.v1.GatewayService/"

struct agent_opts {
	const char *command; /* list, show, create, update, delete */
	const char *name;
	const char *tenant;
	const char *token;
	const char *system_prompt;
	char *providers[CFG_MAX_FAILOVER];
	size_t nproviders;
	uint32_t max_output_tokens; /* 0: not given */
	int set_temperature;
	double temperature;
	uint32_t max_turns;	    /* 0: not given */
	int set_max_tool_calls;
	uint32_t max_tool_calls;
	uint64_t max_wall_clock_ms; /* 0: not given */
};

/* A duration as palyrad.conf(5) writes one: digits and a unit of d, h, m,
 * s or ms. Returns 0 or -1. */
static int
parse_duration(const char *s, uint64_t *ms)
{
	static const struct {
		const char *name;
		uint64_t ms;
	} units[] = {{"d", 86400000}, {"h", 3600000}, {"m", 60000},
	    {"s", 1000}, {"ms", 1}};
	unsigned long long n;
	char *end;
	size_t i;

	if (s[0] < '0' || s[0] > '9')
		return -1;
	errno = 0;
	n = strtoull(s, &end, 10);
	if (errno != 0 || n > 86400000ULL * 365)
		return -1;
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (strcmp(end, units[i].name) == 0) {
			*ms = n * units[i].ms;
			return 0;
		}
	return -1;
}

static int
agent_usage(const char *why)
{
	fprintf(stderr, "palyractl: %s\n", why);
	fprintf(stderr,
	    "usage: palyractl agent list [--tenant name | --token token]\n"
	    "       palyractl agent show|delete [--tenant name | --token "
	    "token] name\n"
	    "       palyractl agent create|update [--tenant name | --token "
	    "token]\n"
	    "           [--system-prompt text] [--provider name ...]\n"
	    "           [--max-output-tokens n] [--temperature x]\n"
	    "           [--max-turns n] [--max-tool-calls n]\n"
	    "           [--max-wall-clock duration] name\n");
	return CTL_EXIT_USAGE;
}

static int
agent_parse(int argc, char **argv, struct agent_opts *o)
{
	static const struct option opts[] = {
	    {"tenant", required_argument, NULL, 't'},
	    {"token", required_argument, NULL, 'T'},
	    {"system-prompt", required_argument, NULL, 's'},
	    {"provider", required_argument, NULL, 'p'},
	    {"max-output-tokens", required_argument, NULL, 'm'},
	    {"temperature", required_argument, NULL, 'x'},
	    {"max-turns", required_argument, NULL, 'n'},
	    {"max-tool-calls", required_argument, NULL, 'c'},
	    {"max-wall-clock", required_argument, NULL, 'w'},
	    {NULL, 0, NULL, 0},
	};
	unsigned long n;
	char *end;
	int ch, want, writes;

	memset(o, 0, sizeof(*o));
	if (argc < 2)
		return agent_usage(
		    "agent needs list, show, create, update or delete");
	o->command = argv[1];
	want = strcmp(o->command, "list") != 0;
	writes = strcmp(o->command, "create") == 0 ||
		 strcmp(o->command, "update") == 0;
	if (want && !writes && strcmp(o->command, "show") != 0 &&
	    strcmp(o->command, "delete") != 0)
		return agent_usage("unknown agent command");
	optind = 0;
	while ((ch = getopt_long(argc - 1, argv + 1, "", opts, NULL)) != -1) {
		if (ch != 't' && ch != 'T' && !writes)
			return agent_usage("that option goes with create and "
					   "update");
		switch (ch) {
		case 't':
			o->tenant = optarg;
			break;
		case 'T':
			o->token = optarg;
			break;
		case 's':
			if (strlen(optarg) > AGENT_PROMPT_MAX)
				return agent_usage(
				    "--system-prompt longer than 16 KiB");
			o->system_prompt = optarg;
			break;
		case 'p':
			if (o->nproviders == CFG_MAX_FAILOVER)
				return agent_usage("too many --provider");
			o->providers[o->nproviders++] = optarg;
			break;
		case 'm':
			errno = 0;
			n = strtoul(optarg, &end, 10);
			if (optarg[0] < '0' || optarg[0] > '9' ||
			    *end != '\0' || errno != 0 || n < 1 ||
			    n > AGENT_MAX_OUTPUT_MAX)
				return agent_usage("--max-output-tokens is 1 "
						   "to 1048576");
			o->max_output_tokens = (uint32_t)n;
			break;
		case 'x':
			errno = 0;
			o->temperature = strtod(optarg, &end);
			if (optarg[0] == '\0' || *end != '\0' || errno != 0 ||
			    !(o->temperature >= 0 &&
				o->temperature <= AGENT_TEMPERATURE_MAX))
				return agent_usage("--temperature is 0 to 2");
			o->set_temperature = 1;
			break;
		case 'n':
			errno = 0;
			n = strtoul(optarg, &end, 10);
			if (optarg[0] < '0' || optarg[0] > '9' ||
			    *end != '\0' || errno != 0 || n < 1 ||
			    n > AGENT_TURNS_MAX)
				return agent_usage("--max-turns is 1 to 64");
			o->max_turns = (uint32_t)n;
			break;
		case 'c':
			errno = 0;
			n = strtoul(optarg, &end, 10);
			if (optarg[0] < '0' || optarg[0] > '9' ||
			    *end != '\0' || errno != 0 ||
			    n > AGENT_TOOL_CALLS_MAX)
				return agent_usage("--max-tool-calls is 0 to "
						   "1024");
			o->max_tool_calls = (uint32_t)n;
			o->set_max_tool_calls = 1;
			break;
		case 'w':
			if (parse_duration(optarg, &o->max_wall_clock_ms) <
				0 ||
			    o->max_wall_clock_ms < AGENT_WALL_CLOCK_MIN_MS ||
			    o->max_wall_clock_ms > AGENT_WALL_CLOCK_MAX_MS)
				return agent_usage("--max-wall-clock is a "
						   "duration of 1s to 24h");
			break;
		default:
			return agent_usage("bad option");
		}
	}
	if (argc - 1 - optind != want)
		return agent_usage(
		    want ? "needs exactly one name" : "list takes no name");
	if (want) {
		o->name = argv[optind + 1];
		if (o->name[0] == '\0' || strlen(o->name) > NAME_MAX_LEN)
			return agent_usage("bad agent name");
	}
	if (strcmp(o->command, "create") == 0 && o->nproviders == 0)
		return agent_usage("create needs --provider");
	if (o->tenant != NULL && o->token != NULL)
		return agent_usage("--tenant and --token exclude each other");
	return 0;
}

static void
print_agent(const struct ctl_ctx *ctx, const Palyra__V1__Agent *a, int full)
{
	json_t *obj, *provs;
	size_t i;

	if (!ctx->json) {
		printf("%s %s", a->name, a->source);
		for (i = 0; i < a->n_providers; i++)
			printf("%s%s", i == 0 ? " " : ",", a->providers[i]);
		printf(" %u %g\n", a->max_output_tokens, a->temperature);
		if (full)
			printf("%s\n", a->system_prompt);
		return;
	}
	if ((provs = json_array()) == NULL)
		return;
	for (i = 0; i < a->n_providers; i++)
		json_array_append_new(provs, json_string(a->providers[i]));
	obj = json_pack("{s:s, s:s, s:o, s:i, s:f, s:s, s:I, s:I, s:i, s:i, "
			"s:I}", "name",
	    a->name, "system_prompt", a->system_prompt, "providers", provs,
	    "max_output_tokens", (int)a->max_output_tokens, "temperature",
	    a->temperature, "source", a->source, "created_unix_ms",
	    (json_int_t)a->created_unix_ms, "updated_unix_ms",
	    (json_int_t)a->updated_unix_ms, "max_turns", (int)a->max_turns,
	    "max_tool_calls", (int)a->max_tool_calls, "max_wall_clock_ms",
	    (json_int_t)a->max_wall_clock_ms);
	if (obj != NULL) {
		json_dumpf(obj, stdout, JSON_COMPACT);
		putchar('\n');
		json_decref(obj);
	}
}

static int
list(const struct ctl_ctx *ctx, const char *token)
{
	Palyra__V1__ListAgentsRequest req = PALYRA__V1__LIST_AGENTS_REQUEST__INIT;
	Palyra__V1__ListAgentsResponse *resp;
	size_t i;

	if ((resp = ctl_unary_msg(ctx, "agent list", GATEWAY "ListAgents",
	    token, &req.base,
	    &palyra__v1__list_agents_response__descriptor)) == NULL)
		return CTL_EXIT_FAIL;
	for (i = 0; i < resp->n_agents; i++)
		print_agent(ctx, resp->agents[i], 0);
	palyra__v1__list_agents_response__free_unpacked(resp, NULL);
	return CTL_EXIT_OK;
}

/* show, create and update: one Agent in reply. */
static int
one_agent(const struct ctl_ctx *ctx, const struct agent_opts *o,
    const char *token)
{
	Palyra__V1__GetAgentRequest get = PALYRA__V1__GET_AGENT_REQUEST__INIT;
	Palyra__V1__CreateAgentRequest create =
	    PALYRA__V1__CREATE_AGENT_REQUEST__INIT;
	Palyra__V1__UpdateAgentRequest update =
	    PALYRA__V1__UPDATE_AGENT_REQUEST__INIT;
	Palyra__V1__Agent agent = PALYRA__V1__AGENT__INIT, *a;
	const ProtobufCMessage *req = &get.base;
	const char *method = GATEWAY "GetAgent", *what = "agent show";

	if (strcmp(o->command, "create") == 0) {
		agent.name = (char *)o->name;
		agent.system_prompt =
		    (char *)(o->system_prompt != NULL ? o->system_prompt : "");
		agent.n_providers = o->nproviders;
		agent.providers = (char **)o->providers;
		agent.max_output_tokens = o->max_output_tokens;
		/* The default of palyrad.conf(5). */
		agent.temperature = o->set_temperature ? o->temperature : 1.0;
		agent.max_turns = o->max_turns;
		agent.set_max_tool_calls = o->set_max_tool_calls;
		agent.max_tool_calls = o->max_tool_calls;
		agent.max_wall_clock_ms = o->max_wall_clock_ms;
		create.agent = &agent;
		req = &create.base;
		method = GATEWAY "CreateAgent";
		what = "agent create";
	} else if (strcmp(o->command, "update") == 0) {
		update.name = (char *)o->name;
		if (o->system_prompt != NULL) {
			update.system_prompt = (char *)o->system_prompt;
			update.clear_system_prompt = o->system_prompt[0] == '\0';
		}
		update.n_providers = o->nproviders;
		update.providers = (char **)o->providers;
		update.max_output_tokens = o->max_output_tokens;
		update.set_temperature = o->set_temperature;
		update.temperature = o->temperature;
		update.max_turns = o->max_turns;
		update.set_max_tool_calls = o->set_max_tool_calls;
		update.max_tool_calls = o->max_tool_calls;
		update.max_wall_clock_ms = o->max_wall_clock_ms;
		req = &update.base;
		method = GATEWAY "UpdateAgent";
		what = "agent update";
	} else
		get.name = (char *)o->name;
	if ((a = ctl_unary_msg(ctx, what, method, token, req,
	    &palyra__v1__agent__descriptor)) == NULL)
		return CTL_EXIT_FAIL;
	print_agent(ctx, a, 1);
	palyra__v1__agent__free_unpacked(a, NULL);
	return CTL_EXIT_OK;
}

static int
delete(const struct ctl_ctx *ctx, const struct agent_opts *o,
    const char *token)
{
	Palyra__V1__DeleteAgentRequest req =
	    PALYRA__V1__DELETE_AGENT_REQUEST__INIT;
	struct ctl_unary_reply reply;

	req.name = (char *)o->name;
	if (ctl_unary(ctx, "agent delete", GATEWAY "DeleteAgent", token,
		&req.base, &reply) < 0)
		return CTL_EXIT_FAIL;
	free(reply.data);
	if (ctx->json)
		ctl_print_json(json_pack("{s:s, s:b}", "name", o->name,
		    "deleted", 1));
	else
		printf("%s deleted\n", o->name);
	return CTL_EXIT_OK;
}

int
ctl_cmd_agent(struct ctl_ctx *ctx, int argc, char **argv)
{
	struct agent_opts o;
	const char *env;
	char *token;
	int rc;

	if ((rc = agent_parse(argc, argv, &o)) != 0)
		return rc;
	env = ctx->token;
	if (o.token == NULL && o.tenant == NULL &&
	    (env == NULL || env[0] == '\0'))
		return agent_usage(
		    "agent needs --token, PALYRA_TOKEN or --tenant");
	if ((token = ctl_bearer(ctx, o.token, o.tenant)) == NULL)
		return CTL_EXIT_FAIL;
	if (strlen(token) > FE_TOKEN_MAX_LEN) {
		free(token);
		return agent_usage("token too long");
	}
	if (strcmp(o.command, "list") == 0)
		rc = list(ctx, token);
	else if (strcmp(o.command, "delete") == 0)
		rc = delete(ctx, &o, token);
	else
		rc = one_agent(ctx, &o, token);
	explicit_bzero(token, strlen(token));
	free(token);
	return rc;
}
