/*
 * ctl.c: palyractl's entry point, options and commands (palyractl(1)).
 *
 * Runs as the invoking user with no privilege. It reads the admin token file
 * (admin.c) when a command needs the admin API, and otherwise only talks to
 * palyrad over gRPC (grpc.c). Output is for people by default and for
 * programs with --json (one JSON object, or NDJSON for streams).
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "ctl.h"
#include "grpc_status.h"
#include "palyra/v1/gateway.pb-c.h"

#define GATEWAY		"/palyra.v1.GatewayService/"

static const char *const run_status_names[] = {
	"UNSPECIFIED", "ACCEPTED", "IN_PROGRESS", "WAITING_APPROVAL",
	"WAITING_TOOL", "COMPLETED", "FAILED", "CANCELLED", "INTERRUPTED",
};

const char *
ctl_run_status_name(int s)
{
	if (s < 0 || (size_t)s >= sizeof(run_status_names) /
	    sizeof(run_status_names[0]))
		return "UNKNOWN";
	return run_status_names[s];
}

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: palyractl [-hv] [--json] [-g host:port] [-s state_dir]\n"
	    "                 [-u url] [--token-file file] command ...\n"
	    "commands:\n"
	    "  health\n"
	    "  token create --tenant name [--principal name] "
	    "[--role user|operator|admin]\n"
	    "      [--expires duration]\n"
	    "  token list [--tenant name]\n"
	    "  token revoke token_id\n"
	    "  run [--tenant name | --token token] [--agent name]\n"
	    "      [--session-key key] [--idempotency-key key]\n"
	    "      [--cancel-on-disconnect] "
	    "[--approve once|session|ttl:duration|deny]\n"
	    "      [--deny] [-v] prompt\n"
	    "  run [--tenant name | --token token] --attach run_id "
	    "[--after seq] [-v]\n"
	    "  runs show|abort|events [--tenant name | --token token] "
	    "run_id\n"
	    "      [--reason text] [--after seq]\n"
	    "  runs note [--tenant name | --token token] run_id text\n"
	    "  sessions list [--tenant name | --token token] "
	    "[--page-size n]\n"
	    "  sessions resolve|cleanup [--tenant name | --token token] "
	    "key|session_id\n"
	    "  agent list [--tenant name | --token token]\n"
	    "  agent show|delete [--tenant name | --token token] name\n"
	    "  agent create|update [--tenant name | --token token] "
	    "[--system-prompt text]\n"
	    "      [--provider name ...] [--max-output-tokens n] "
	    "[--temperature x] name\n"
	    "  tenant list\n"
	    "  tenant show|delete name\n"
	    "  tenant create|update name [--workers n] [--memory-limit size]\n"
	    "      [--pids-limit n] [--cpu-weight n] [--journal-quota size]\n"
	    "      [--idle-timeout duration]\n"
	    "  reload\n"
	    "  config check [-v] [-f file]\n"
	    "  status\n"
	    "  journal verify [--tenant name]\n"
	    "  journal checkpoint [--tenant name]\n"
	    "  journal pubkey\n"
	    "  journal export --tenant name [--since seq]\n"
	    "  journal backup --tenant name\n"
	    "  journal prune --tenant name --older-than duration\n"
	    "  approvals list [--state pending|allowed|denied|expired] "
	    "[--run run_id]\n"
	    "  approvals show approval_id\n"
	    "  approvals decide approval_id allow|deny "
	    "[--scope once|session|ttl]\n"
	    "      [--ttl duration] [--reason text]\n"
	    "  approvals grants [--all]\n"
	    "  approvals revoke grant_id\n"
	    "  approvals export [-o file] [--since time]\n"
	    "  approvals verify-export file\n"
	    "  usage [--from day] [--to day] [--agent name] "
	    "[--principal name]\n"
	    "      [--by day,agent,principal,model]\n"
	    "  budget list\n"
	    "  budget set tenant|agent:name|principal:name tokens|cost "
	    "limit\n"
	    "      per day|month|total soft|hard\n"
	    "  budget delete budget_id\n"
	    "  memory add [--session id] [--tag tag ...] [--source text] "
	    "[--ttl duration]\n"
	    "      [--principal name] text | --file file | -\n"
	    "  memory search [--top-k n] [--min-score x] [--session id] "
	    "[--tag tag ...]\n"
	    "      [--principal name] query\n"
	    "  memory list [--principal name|*] [--session id] [--tag tag] "
	    "[--page-size n]\n"
	    "      [--all]\n"
	    "  memory show|rm item_id\n"
	    "  memory purge [--principal name|*] [--session id] [--tag tag] "
	    "[--expired] --yes\n"
	    "  vault put [--host] [--description text] [--file file] "
	    "[--strip-newline] name\n"
	    "  vault get [--force] name\n"
	    "  vault list [--host]\n"
	    "  vault rm [--host] name\n"
	    "  vault rotate-master\n"
	    "  cron add name --schedule schedule [--agent name] [--tz zone]\n"
	    "      [--misfire skip|catch-up|once] [--catch-up-max n] "
	    "[--overlap]\n"
	    "      [--jitter duration] [--unattended deny|wait] "
	    "[--session-key key]\n"
	    "      [--disabled] input | --file file\n"
	    "  cron list\n"
	    "  cron show|rm|enable|disable job\n"
	    "  cron run [--follow] job\n"
	    "  cron runs [--limit n] job\n"
	    "  (approvals, usage, budget, memory, vault and cron take "
	    "--tenant name or\n"
	    "   --token token, and --json)\n"
	    "  completion bash\n"
	    "  help\n");
}

static int	usage_error(const char *, ...)
		    __attribute__((format(printf, 1, 2)));

static int
usage_error(const char *fmt, ...)
{
	va_list	 ap;

	fprintf(stderr, "palyractl: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	usage(stderr);
	return CTL_EXIT_USAGE;
}

static void
print_json(json_t *obj)
{
	char	*s;

	if (obj != NULL && (s = json_dumps(obj, JSON_COMPACT)) != NULL) {
		printf("%s\n", s);
		free(s);
	}
	json_decref(obj);
	fflush(stdout);
}

/* health */

struct health_call {
	Palyra__V1__GetHealthResponse	*resp;
	int				 count;
};

static int
health_msg(const uint8_t *msg, size_t len, void *arg)
{
	struct health_call *hc = arg;

	if (++hc->count > 1)
		return -1;
	hc->resp = palyra__v1__get_health_response__unpack(NULL, len, msg);
	return hc->resp == NULL ? -1 : 0;
}

static int
cmd_health(const struct ctl_ctx *ctx, int argc, char **argv)
{
	Palyra__V1__GetHealthResponse	*h;
	struct health_call		 hc = { NULL, 0 };
	struct ctl_grpc_result		 res;
	int				 ok;

	if (argc != 1)
		return usage_error("health takes no arguments");
	if (ctl_grpc_call(ctx, GATEWAY "GetHealth", NULL, NULL, 0,
	    health_msg, &hc, &res) < 0) {
		fprintf(stderr, "palyractl: %s\n", hc.count > 1 ?
		    "server sent more than one reply" : hc.count == 1 &&
		    hc.resp == NULL ? "undecodable reply" : res.error);
		goto fail;
	}
	if (res.grpc_status != 0) {
		fprintf(stderr, "palyractl: health: %s: %s\n",
		    grpc_status_name(res.grpc_status), res.grpc_message);
		goto fail;
	}
	if ((h = hc.resp) == NULL) {
		fprintf(stderr, "palyractl: health: empty reply\n");
		return CTL_EXIT_FAIL;
	}
	ok = strcmp(h->status, "SERVING") == 0;
	if (ctx->json)
		print_json(json_pack("{s:s, s:s, s:I, s:I}", "status",
		    h->status, "version", h->version, "uptime_seconds",
		    (json_int_t)h->uptime_seconds, "tenants",
		    (json_int_t)h->tenants));
	else
		printf("%s version %s uptime %llus tenants %u\n", h->status,
		    h->version, (unsigned long long)h->uptime_seconds,
		    h->tenants);
	palyra__v1__get_health_response__free_unpacked(h, NULL);
	return ok ? CTL_EXIT_OK : CTL_EXIT_FAIL;
fail:
	if (hc.resp != NULL)
		palyra__v1__get_health_response__free_unpacked(hc.resp, NULL);
	return CTL_EXIT_FAIL;
}

/* token create */

static const char *
json_str(json_t *obj, const char *key)
{
	const char	*s = json_string_value(json_object_get(obj, key));

	return s != NULL ? s : "?";
}

/* Mints a token; returns it (caller frees) and the parsed reply. */
static char *
mint_token(const struct ctl_ctx *ctx, const char *tenant,
    const char *principal, const char *role, long long expires_in,
    json_t **replyp)
{
	char		 err[512], *reply, *token;
	json_error_t	 jerr;
	json_t		*root;
	const char	*t;

	if (ctl_token_create(ctx, tenant, principal, role, expires_in, &reply,
	    err, sizeof(err)) < 0) {
		fprintf(stderr, "palyractl: token create: %s\n", err);
		return NULL;
	}
	root = json_loads(reply, 0, &jerr);
	explicit_bzero(reply, strlen(reply));
	free(reply);
	t = json_string_value(json_object_get(root, "token"));
	if (t == NULL || t[0] == '\0' || strlen(t) > FE_TOKEN_MAX_LEN) {
		fprintf(stderr, "palyractl: token create: malformed reply\n");
		json_decref(root);
		return NULL;
	}
	token = strdup(t);
	if (replyp != NULL)
		*replyp = root;
	else
		json_decref(root);
	return token;
}

static int
cmd_token(const struct ctl_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tenant", required_argument, NULL, 't' },
		{ "principal", required_argument, NULL, 'p' },
		{ "role", required_argument, NULL, 'r' },
		{ "expires", required_argument, NULL, 'e' },
		{ NULL, 0, NULL, 0 },
	};
	const char	*tenant = NULL, *principal = "palyractl";
	const char	*role = "user";
	json_t		*reply = NULL;
	char		*token;
	long long	 expires_in = 0;
	int		 ch;

	if (argc >= 2 && strcmp(argv[1], "list") == 0)
		return ctl_cmd_token_list(ctx, argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "revoke") == 0)
		return ctl_cmd_token_revoke(ctx, argc - 1, argv + 1);
	if (argc < 2 || strcmp(argv[1], "create") != 0)
		return usage_error("unknown token command");
	argc--;
	argv++;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 't':
			tenant = optarg;
			break;
		case 'p':
			principal = optarg;
			break;
		case 'r':
			role = optarg;
			break;
		case 'e':
			if ((expires_in = ctl_duration_seconds(optarg)) < 0)
				return usage_error("--expires takes a duration "
				    "such as 90s, 30m, 12h or 30d");
			break;
		default:
			usage(stderr);
			return CTL_EXIT_USAGE;
		}
	}
	if (optind != argc || tenant == NULL)
		return usage_error("token create needs --tenant");
	if (strcmp(role, "user") != 0 && strcmp(role, "operator") != 0 &&
	    strcmp(role, "admin") != 0)
		return usage_error("unknown role %s", role);

	if ((token = mint_token(ctx, tenant, principal, role, expires_in,
	    &reply)) == NULL)
		return CTL_EXIT_FAIL;
	if (ctx->json)
		print_json(json_incref(reply));
	else {
		printf("%s\n", token);
		fflush(stdout);
	}
	fprintf(stderr, "token_id %s tenant %s principal %s role %s\n",
	    json_str(reply, "token_id"), json_str(reply, "tenant"),
	    json_str(reply, "principal"), json_str(reply, "role"));
	explicit_bzero(token, strlen(token));
	free(token);
	json_decref(reply);
	return CTL_EXIT_OK;
}

/* run */

/* run --approve: the decision given to every approval request of the
 * run, on its own stream. */
struct run_approve {
	int		 decision;	/* ApprovalDecisionKind; 0: none */
	int		 scope;		/* ApprovalScope (allow) */
	uint64_t	 ttl_ms;
};

struct run_call {
	const struct ctl_ctx	*ctx;
	int			 tty;
	int			 printed;	/* token text written */
	int			 terminal;	/* terminal status seen */
	int			 attach;	/* following an existing run */
	char			 reason[512];
	int			 bad;
	struct run_approve	 approve;
	struct ctl_grpc_sender	*sender;	/* run --approve */
	int			 send_failed;
	int			 prompt;	/* ask on the terminal */
};

/* A tool's result on stderr is cut after this many bytes (--json carries
 * it whole). */
#define NOTE_RESULT_MAX	200

/*
 * Writes a line of a run's progress to stderr, control bytes as '?', s cut
 * after max bytes (0: whole) at a character boundary, "..." marking it.
 */
static void
write_note(const char *tag, const char *name, const char *s, size_t max)
{
	const char	*p, *end = NULL;

	if (max > 0 && strlen(s) > max) {
		end = s + max;
		while (end > s && ((unsigned char)*end & 0xc0) == 0x80)
			end--;
	}

	fprintf(stderr, "[%s", tag);
	for (p = name; p != NULL && *p != '\0'; p++)
		fputc((unsigned char)*p < 0x20 ? '?' : *p, stderr);
	fputc(' ', stderr);
	for (p = s; *p != '\0' && p != end; p++)
		fputc((unsigned char)*p < 0x20 ? '?' : *p, stderr);
	fputs(end != NULL ? "...]\n" : "]\n", stderr);
}

/* Writes model text; on a terminal, control bytes cannot act on it. */
static void
write_text(const struct run_call *rc, const char *s)
{
	for (; *s != '\0'; s++) {
		if (rc->tty && (unsigned char)*s < 0x20 && *s != '\n' &&
		    *s != '\t')
			putchar('?');
		else
			putchar(*s);
	}
}

static json_t *
event_json(const Palyra__V1__RunEvent *ev)
{
	json_t	*o, *body = NULL;
	const char *kind = NULL;

	o = json_pack("{s:s, s:I, s:I, s:s}", "run_id", ev->run_id, "seq",
	    (json_int_t)ev->seq, "timestamp_unix_ms",
	    (json_int_t)ev->timestamp_unix_ms, "session_id", ev->session_id);
	switch (ev->event_case) {
	case PALYRA__V1__RUN_EVENT__EVENT_STATUS:
		kind = "status";
		body = json_pack("{s:s, s:s}", "status",
		    ctl_run_status_name(ev->status->status), "reason",
		    ev->status->reason);
		break;
	case PALYRA__V1__RUN_EVENT__EVENT_TOKEN:
		kind = "token";
		body = json_pack("{s:s}", "text", ev->token->text);
		break;
	case PALYRA__V1__RUN_EVENT__EVENT_FINAL:
		kind = "final";
		body = json_pack("{s:s}", "text", ev->final->text);
		break;
	case PALYRA__V1__RUN_EVENT__EVENT_USAGE:
		kind = "usage";
		body = json_pack("{s:I, s:I, s:s, s:s}", "input_tokens",
		    (json_int_t)ev->usage->input_tokens, "output_tokens",
		    (json_int_t)ev->usage->output_tokens, "provider",
		    ev->usage->provider, "model", ev->usage->model);
		break;
	case PALYRA__V1__RUN_EVENT__EVENT_ERROR:
		kind = "error";
		body = json_pack("{s:s, s:s}", "code", ev->error->code,
		    "message", ev->error->message);
		break;
	case PALYRA__V1__RUN_EVENT__EVENT_NOTE:
		kind = "note";
		body = json_pack("{s:s, s:s}", "text", ev->note->text,
		    "principal", ev->note->principal);
		break;
	case PALYRA__V1__RUN_EVENT__EVENT_TOOL_CALL:
		kind = "tool_call";
		body = json_pack("{s:s, s:s, s:s}", "id", ev->tool_call->id,
		    "name", ev->tool_call->name, "arguments_json",
		    ev->tool_call->arguments_json);
		break;
	case PALYRA__V1__RUN_EVENT__EVENT_TOOL_RESULT:
		kind = "tool_result";
		body = json_pack("{s:s, s:s, s:b, s:s}", "id",
		    ev->tool_result->id, "name", ev->tool_result->name,
		    "is_error", ev->tool_result->is_error, "content",
		    ev->tool_result->content);
		break;
	case PALYRA__V1__RUN_EVENT__EVENT_INPUT:
		kind = "input";
		body = json_pack("{s:s}", "text", ev->input->text);
		break;
	case PALYRA__V1__RUN_EVENT__EVENT_APPROVAL_REQUEST:
		kind = "approval_request";
		body = json_pack("{s:s, s:s, s:s, s:s, s:I}", "approval_id",
		    ev->approval_request->approval_id, "tool_call_id",
		    ev->approval_request->tool_call_id, "tool_name",
		    ev->approval_request->tool_name, "arguments_summary",
		    ev->approval_request->arguments_summary,
		    "expires_unix_ms",
		    (json_int_t)ev->approval_request->expires_unix_ms);
		break;
	case PALYRA__V1__RUN_EVENT__EVENT_APPROVAL_DECIDED:
		kind = "approval_decided";
		body = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I}",
		    "approval_id", ev->approval_decided->approval_id,
		    "decision", ev->approval_decided->decision ==
		    PALYRA__V1__APPROVAL_DECISION_KIND__APPROVAL_DECISION_ALLOW ?
		    "allow" : "deny", "scope",
		    ctl_approval_scope_name(ev->approval_decided->scope),
		    "decided_by", ev->approval_decided->decided_by, "reason",
		    ev->approval_decided->reason, "grant_id",
		    ev->approval_decided->grant_id, "grant_expires_unix_ms",
		    (json_int_t)ev->approval_decided->grant_expires_unix_ms);
		break;
	case PALYRA__V1__RUN_EVENT__EVENT_BUDGET_WARNING:
		kind = "budget_warning";
		body = json_pack("{s:s, s:s, s:I, s:I, s:s}", "budget_id",
		    ev->budget_warning->budget_id, "message",
		    ev->budget_warning->message, "used",
		    (json_int_t)ev->budget_warning->used, "limit",
		    (json_int_t)ev->budget_warning->limit, "unit",
		    ev->budget_warning->unit);
		break;
	default:
		break;
	}
	if (o != NULL && kind != NULL && body != NULL)
		json_object_set_new(o, kind, body);
	else
		json_decref(body);
	return o;
}

/* An approval request of the run on stderr, and how to answer it. */
static void
approval_text(const struct run_call *rc,
    const Palyra__V1__ApprovalRequest *ar)
{
	char	 expires[32];

	fprintf(stderr, "[approval %s tool ", ar->approval_id);
	ctl_print_clean(stderr, ar->tool_name);
	fputc(' ', stderr);
	ctl_print_clean(stderr, ar->arguments_summary[0] != '\0' ?
	    ar->arguments_summary : "{}");
	fprintf(stderr, " expires %s]\n", ctl_time_string(ar->expires_unix_ms,
	    expires, sizeof(expires)));
	if (rc->approve.decision == 0 && !rc->prompt)
		fprintf(stderr, "[decide with: palyractl approvals decide %s "
		    "allow (or deny)]\n", ar->approval_id);
}

static void
decided_text(const Palyra__V1__ApprovalDecided *ad)
{
	char	 expires[32];

	fprintf(stderr, "[%s %s by ", ad->decision ==
	    PALYRA__V1__APPROVAL_DECISION_KIND__APPROVAL_DECISION_ALLOW ?
	    "approved" : "denied", ad->approval_id);
	ctl_print_clean(stderr, ad->decided_by);
	if (ad->scope != 0)
		fprintf(stderr, " scope %s",
		    ctl_approval_scope_name(ad->scope));
	if (ad->grant_id[0] != '\0')
		fprintf(stderr, " grant %s", ad->grant_id);
	if (ad->grant_expires_unix_ms > 0)
		fprintf(stderr, " until %s",
		    ctl_time_string(ad->grant_expires_unix_ms, expires,
		    sizeof(expires)));
	if (ad->reason[0] != '\0') {
		fputs(": ", stderr);
		ctl_print_clean(stderr, ad->reason);
	}
	fputs("]\n", stderr);
}

static void
budget_text(const Palyra__V1__BudgetWarning *bw)
{
	fputs("[budget ", stderr);
	ctl_print_clean(stderr, bw->budget_id);
	fprintf(stderr, " used %llu of %llu %s", (unsigned long long)bw->used,
	    (unsigned long long)bw->limit, strcmp(bw->unit, "cost") == 0 ?
	    "micro-USD" : "tokens");
	if (bw->message[0] != '\0') {
		fputs(": ", stderr);
		ctl_print_clean(stderr, bw->message);
	}
	fputs("]\n", stderr);
}

static void
event_text(struct run_call *rc, const Palyra__V1__RunEvent *ev)
{
	const Palyra__V1__StatusEvent *st;

	switch (ev->event_case) {
	case PALYRA__V1__RUN_EVENT__EVENT_TOKEN:
		write_text(rc, ev->token->text);
		fflush(stdout);
		rc->printed = 1;
		break;
	case PALYRA__V1__RUN_EVENT__EVENT_FINAL:
		/* Tokens carried the text already; print it if none came. */
		if (!rc->printed && ev->final->text[0] != '\0') {
			write_text(rc, ev->final->text);
			rc->printed = 1;
		}
		/* Each answer on a line of its own (follow-up input gives a
		 * run several). */
		if (rc->printed) {
			putchar('\n');
			rc->printed = 0;
		}
		fflush(stdout);
		break;
	case PALYRA__V1__RUN_EVENT__EVENT_STATUS:
		st = ev->status;
		if (rc->ctx->verbose)
			fprintf(stderr, "[%s] run %s%s%s\n",
			    ctl_run_status_name(st->status), ev->run_id,
			    st->reason[0] != '\0' ? ": " : "", st->reason);
		break;
	case PALYRA__V1__RUN_EVENT__EVENT_USAGE:
		fprintf(stderr, "[usage] input %llu output %llu "
		    "provider %s model %s\n",
		    (unsigned long long)ev->usage->input_tokens,
		    (unsigned long long)ev->usage->output_tokens,
		    ev->usage->provider, ev->usage->model);
		break;
	case PALYRA__V1__RUN_EVENT__EVENT_TOOL_CALL:
		write_note("tool ", ev->tool_call->name,
		    ev->tool_call->arguments_json[0] != '\0' ?
		    ev->tool_call->arguments_json : "{}", 0);
		break;
	case PALYRA__V1__RUN_EVENT__EVENT_TOOL_RESULT:
		write_note(ev->tool_result->is_error ? "error " : "result ",
		    ev->tool_result->name, ev->tool_result->content,
		    NOTE_RESULT_MAX);
		break;
	case PALYRA__V1__RUN_EVENT__EVENT_INPUT:
		if (rc->ctx->verbose)
			write_note("input", NULL, ev->input->text, 0);
		break;
	case PALYRA__V1__RUN_EVENT__EVENT_ERROR:
		fprintf(stderr, "palyractl: run error %s: %s\n",
		    ev->error->code, ev->error->message);
		break;
	case PALYRA__V1__RUN_EVENT__EVENT_NOTE:
		if (rc->ctx->verbose)
			fprintf(stderr, "[note] %s: %s\n",
			    ev->note->principal, ev->note->text);
		break;
	case PALYRA__V1__RUN_EVENT__EVENT_APPROVAL_REQUEST:
		approval_text(rc, ev->approval_request);
		break;
	case PALYRA__V1__RUN_EVENT__EVENT_APPROVAL_DECIDED:
		decided_text(ev->approval_decided);
		break;
	case PALYRA__V1__RUN_EVENT__EVENT_BUDGET_WARNING:
		budget_text(ev->budget_warning);
		break;
	default:
		break;
	}
}

/* run --approve: answers an approval request on the run's own stream. */
static int
send_decision(struct run_call *rc, const Palyra__V1__ApprovalRequest *ar,
    const struct run_approve *a)
{
	Palyra__V1__RunStreamRequest	 req =
	    PALYRA__V1__RUN_STREAM_REQUEST__INIT;
	Palyra__V1__ApprovalDecision	 d =
	    PALYRA__V1__APPROVAL_DECISION__INIT;
	uint8_t				*buf;
	size_t				 len;
	int				 r;

	d.approval_id = ar->approval_id;
	d.decision = a->decision;
	d.scope = a->scope;
	d.ttl_ms = a->ttl_ms;
	d.reason = rc->prompt ? "palyractl run (terminal)" :
	    "palyractl run --approve";
	req.msg_case = PALYRA__V1__RUN_STREAM_REQUEST__MSG_APPROVAL;
	req.approval = &d;
	len = palyra__v1__run_stream_request__get_packed_size(&req);
	if ((buf = malloc(len > 0 ? len : 1)) == NULL)
		return -1;
	palyra__v1__run_stream_request__pack(&req, buf);
	r = ctl_grpc_send(rc->sender, buf, len);
	free(buf);
	return r;
}

static int
run_msg(const uint8_t *msg, size_t len, void *arg)
{
	struct run_call		*rc = arg;
	Palyra__V1__RunEvent	*ev;

	if ((ev = palyra__v1__run_event__unpack(NULL, len, msg)) == NULL) {
		rc->bad = 1;
		return -1;
	}
	if (ev->event_case == PALYRA__V1__RUN_EVENT__EVENT_STATUS &&
	    ev->status->status >=
	    PALYRA__V1__RUN_STATUS__RUN_STATUS_COMPLETED) {
		rc->terminal = ev->status->status;
		snprintf(rc->reason, sizeof(rc->reason), "%s",
		    ev->status->reason);
	}
	if (rc->ctx->json)
		print_json(event_json(ev));
	else
		event_text(rc, ev);
	if (rc->sender != NULL) {
		struct run_approve asked;

		/* On a terminal without --approve: the person decides. */
		if (ev->event_case ==
		    PALYRA__V1__RUN_EVENT__EVENT_APPROVAL_REQUEST &&
		    rc->prompt && rc->approve.decision == 0) {
			memset(&asked, 0, sizeof(asked));
			(void)ctl_prompt_approval(
			    ev->approval_request->tool_name,
			    ev->approval_request->arguments_summary,
			    &asked.decision, &asked.scope, &asked.ttl_ms);
			if (send_decision(rc, ev->approval_request,
			    &asked) < 0)
				rc->send_failed = 1;
		} else if (ev->event_case ==
		    PALYRA__V1__RUN_EVENT__EVENT_APPROVAL_REQUEST &&
		    rc->approve.decision != 0 &&
		    send_decision(rc, ev->approval_request,
		    &rc->approve) < 0)
			rc->send_failed = 1;
		/* The run is over: the request stream ends too. */
		if (rc->terminal != 0)
			ctl_grpc_close_send(rc->sender);
	}
	palyra__v1__run_event__free_unpacked(ev, NULL);
	if (rc->send_failed) {
		fprintf(stderr, "palyractl: run: could not send the approval "
		    "decision\n");
		return -1;
	}
	return 0;
}

struct run_opts {
	const char	*tenant;
	const char	*token;
	const char	*agent;
	const char	*session_key;
	const char	*idempotency_key;
	int		 cancel_on_disconnect;
	const char	*prompt;
	const char	*attach;	/* run id to follow */
	uint64_t	 after;		/* from after this seq */
	struct run_approve approve;	/* --approve */
};

/* --approve once|session|ttl:DURATION|deny. Returns 0 or -1. */
static int
parse_approve(const char *s, struct run_approve *a)
{
	long long	 ttl;

	memset(a, 0, sizeof(*a));
	a->decision = PALYRA__V1__APPROVAL_DECISION_KIND__APPROVAL_DECISION_ALLOW;
	if (strcmp(s, "deny") == 0)
		a->decision =
		    PALYRA__V1__APPROVAL_DECISION_KIND__APPROVAL_DECISION_DENY;
	else if (strcmp(s, "once") == 0)
		a->scope = PALYRA__V1__APPROVAL_SCOPE__APPROVAL_SCOPE_ONCE;
	else if (strcmp(s, "session") == 0)
		a->scope = PALYRA__V1__APPROVAL_SCOPE__APPROVAL_SCOPE_SESSION;
	else if (strncmp(s, "ttl:", 4) == 0 &&
	    (ttl = ctl_duration_seconds(s + 4)) > 0 &&
	    (uint64_t)ttl * 1000 <= CTL_APPROVAL_TTL_MAX_MS) {
		a->scope = PALYRA__V1__APPROVAL_SCOPE__APPROVAL_SCOPE_TTL;
		a->ttl_ms = (uint64_t)ttl * 1000;
	} else
		return -1;
	return 0;
}

static int
run_parse(struct ctl_ctx *ctx, int argc, char **argv, struct run_opts *o)
{
	static const struct option opts[] = {
		{ "tenant", required_argument, NULL, 't' },
		{ "token", required_argument, NULL, 'T' },
		{ "agent", required_argument, NULL, 'a' },
		{ "session-key", required_argument, NULL, 'k' },
		{ "idempotency-key", required_argument, NULL, 'I' },
		{ "cancel-on-disconnect", no_argument, NULL, 'c' },
		{ "attach", required_argument, NULL, 'A' },
		{ "after", required_argument, NULL, 'S' },
		{ "approve", required_argument, NULL, 'P' },
		{ "deny", no_argument, NULL, 'D' },
		{ NULL, 0, NULL, 0 },
	};
	const char	*after = NULL;
	char	*end;
	int	 ch;

	memset(o, 0, sizeof(*o));
	optind = 1;
	while ((ch = getopt_long(argc, argv, "v", opts, NULL)) != -1) {
		switch (ch) {
		case 't':
			o->tenant = optarg;
			break;
		case 'T':
			o->token = optarg;
			break;
		case 'a':
			o->agent = optarg;
			break;
		case 'k':
			o->session_key = optarg;
			break;
		case 'I':
			o->idempotency_key = optarg;
			break;
		case 'c':
			o->cancel_on_disconnect = 1;
			break;
		case 'A':
			o->attach = optarg;
			break;
		case 'S':
			after = optarg;
			break;
		case 'P':
			if (parse_approve(optarg, &o->approve) < 0) {
				usage_error("--approve is once, session, "
				    "ttl:DURATION (1s to 30d, such as ttl:10m) "
				    "or deny");
				return -1;
			}
			break;
		case 'D':	/* --approve deny */
			(void)parse_approve("deny", &o->approve);
			break;
		case 'v':
			ctx->verbose = 1;
			break;
		default:
			usage(stderr);
			return -1;
		}
	}
	if (o->tenant != NULL && o->token != NULL) {
		usage_error("--tenant and --token exclude each other");
		return -1;
	}
	if (o->attach != NULL) {
		/* A run that exists already: only where to follow it from. */
		if (optind != argc || o->agent != NULL ||
		    o->session_key != NULL || o->idempotency_key != NULL ||
		    o->cancel_on_disconnect || o->approve.decision != 0) {
			usage_error("run --attach takes no prompt, --agent, "
			    "--session-key, --idempotency-key, "
			    "--cancel-on-disconnect or --approve");
			return -1;
		}
		if (o->attach[0] == '\0' || strlen(o->attach) > 64) {
			usage_error("--attach needs a run id");
			return -1;
		}
		if (after != NULL) {
			errno = 0;
			o->after = strtoull(after, &end, 10);
			if (after[0] < '0' || after[0] > '9' || *end != '\0' ||
			    errno != 0) {
				usage_error("--after needs a sequence number");
				return -1;
			}
		}
		return 0;
	}
	if (after != NULL) {
		usage_error("--after needs --attach");
		return -1;
	}
	if (optind + 1 != argc) {
		usage_error("run needs exactly one prompt");
		return -1;
	}
	o->prompt = argv[optind];
	if (strlen(o->prompt) > TEXT_MAX_LEN) {
		usage_error("prompt longer than %d bytes", TEXT_MAX_LEN);
		return -1;
	}
	return 0;
}

static int
run_finish(const struct run_call *rc, const struct ctl_grpc_result *res,
    int called)
{
	if (rc->printed && !rc->ctx->json) {
		putchar('\n');
		fflush(stdout);
	}
	if (called < 0) {
		fprintf(stderr, "palyractl: run failed: %s\n", rc->bad ?
		    "undecodable event from server" : res->error);
		return CTL_EXIT_FAIL;
	}
	if (res->grpc_status != 0) {
		fprintf(stderr, "palyractl: run failed: %s: %s\n",
		    grpc_status_name(res->grpc_status),
		    res->grpc_message);
		return CTL_EXIT_FAIL;
	}
	if (rc->terminal == PALYRA__V1__RUN_STATUS__RUN_STATUS_COMPLETED)
		return CTL_EXIT_OK;
	/* Following a finished run from its end: nothing more to show. */
	if (rc->attach && rc->terminal == 0)
		return CTL_EXIT_OK;
	if (rc->terminal == 0)
		fprintf(stderr, "palyractl: run failed: stream ended without "
		    "a terminal status\n");
	else
		fprintf(stderr, "palyractl: run failed: %s: %s\n",
		    ctl_run_status_name(rc->terminal), rc->reason[0] != '\0' ?
		    rc->reason : "no reason given");
	return CTL_EXIT_FAIL;
}

static int
cmd_run(struct ctl_ctx *ctx, int argc, char **argv)
{
	Palyra__V1__RunStreamRequest	 req;
	Palyra__V1__RunStart		 start;
	struct ctl_grpc_result		 res;
	struct ctl_grpc_sender		 sender;
	struct run_call			 rc;
	struct run_opts			 o;
	const char			*env;
	char				*token = NULL;
	uint8_t				*buf;
	size_t				 len;
	int				 called;

	if (run_parse(ctx, argc, argv, &o) < 0)
		return CTL_EXIT_USAGE;
	env = ctx->token;
	if (o.token != NULL)
		token = strdup(o.token);
	else if (o.tenant == NULL && env != NULL && env[0] != '\0')
		token = strdup(env);
	else if (o.tenant != NULL) {
		if ((token = mint_token(ctx, o.tenant, "palyractl", "user", 0,
		    NULL)) == NULL)
			return CTL_EXIT_FAIL;
	} else
		return usage_error("run needs --token, PALYRA_TOKEN or "
		    "--tenant");
	if (token == NULL || strlen(token) > FE_TOKEN_MAX_LEN) {
		free(token);
		return usage_error("token too long");
	}

	palyra__v1__run_start__init(&start);
	if (o.attach != NULL) {
		start.run_id = (char *)o.attach;
		start.after_seq = o.after;
	} else
		start.input = (char *)o.prompt;
	if (o.agent != NULL)
		start.agent = (char *)o.agent;
	if (o.session_key != NULL)
		start.session_key = (char *)o.session_key;
	if (o.idempotency_key != NULL)
		start.idempotency_key = (char *)o.idempotency_key;
	start.cancel_on_disconnect = o.cancel_on_disconnect;
	palyra__v1__run_stream_request__init(&req);
	req.msg_case = PALYRA__V1__RUN_STREAM_REQUEST__MSG_START;
	req.start = &start;
	len = palyra__v1__run_stream_request__get_packed_size(&req);
	if ((buf = malloc(len > 0 ? len : 1)) == NULL) {
		free(token);
		return CTL_EXIT_FAIL;
	}
	palyra__v1__run_stream_request__pack(&req, buf);

	memset(&rc, 0, sizeof(rc));
	rc.ctx = ctx;
	rc.tty = isatty(STDOUT_FILENO);
	rc.attach = o.attach != NULL;
	rc.approve = o.approve;
	/* A person at a terminal answers approval requests as they come. */
	rc.prompt = o.approve.decision == 0 && o.attach == NULL &&
	    isatty(STDIN_FILENO) && isatty(STDERR_FILENO);
	if (o.approve.decision != 0 || rc.prompt) {
		/* The request stream stays open for the decisions. */
		rc.sender = &sender;
		called = ctl_grpc_bidi(ctx, GATEWAY "RunStream", token, buf,
		    len, run_msg, &rc, &sender, &res);
	} else
		called = ctl_grpc_call(ctx, GATEWAY "RunStream", token, buf,
		    len, run_msg, &rc, &res);
	explicit_bzero(token, strlen(token));
	free(token);
	free(buf);
	return run_finish(&rc, &res, called);
}

int
ctl_follow_events(const struct ctl_ctx *ctx, const char *method,
    const char *token, const uint8_t *req, size_t len)
{
	struct ctl_grpc_result	 res;
	struct run_call		 rc;
	int			 called;

	memset(&rc, 0, sizeof(rc));
	rc.ctx = ctx;
	rc.tty = isatty(STDOUT_FILENO);
	rc.attach = 1;
	called = ctl_grpc_call(ctx, method, token, req, len, run_msg, &rc,
	    &res);
	return run_finish(&rc, &res, called);
}

/* The handlers that only read the context. */
static int
run_health(struct ctl_ctx *ctx, int argc, char **argv)
{
	return cmd_health(ctx, argc, argv);
}

static int
run_token(struct ctl_ctx *ctx, int argc, char **argv)
{
	return cmd_token(ctx, argc, argv);
}

static int
run_status(struct ctl_ctx *ctx, int argc, char **argv)
{
	return ctl_cmd_status(ctx, argc, argv);
}

static int
run_journal(struct ctl_ctx *ctx, int argc, char **argv)
{
	return ctl_cmd_journal(ctx, argc, argv);
}

static int
run_tenant(struct ctl_ctx *ctx, int argc, char **argv)
{
	return ctl_cmd_tenant(ctx, argc, argv);
}

static int
run_reload(struct ctl_ctx *ctx, int argc, char **argv)
{
	return ctl_cmd_reload(ctx, argc, argv);
}

static int	cmd_completion(struct ctl_ctx *, int, char **);

#define TENANT_FLAGS	"--tenant= --token="

/* Every command; the shell completion is generated from this table. */
static const struct ctl_command commands[] = {
	{ "health", "", "", run_health },
	{ "token", "create list revoke",
	    "--tenant= --principal= --role= --expires=", run_token },
	{ "run", "", TENANT_FLAGS " --agent= --session-key= "
	    "--idempotency-key= --cancel-on-disconnect --approve= --deny "
	    "--attach= --after= -v", cmd_run },
	{ "runs", "show abort events note", TENANT_FLAGS " --reason= "
	    "--after=", ctl_cmd_runs },
	{ "sessions", "list resolve cleanup", TENANT_FLAGS " --page-size=",
	    ctl_cmd_sessions },
	{ "agent", "list show create update delete", TENANT_FLAGS
	    " --system-prompt= --provider= --max-output-tokens= "
	    "--temperature= --max-tool-calls= --max-turns= "
	    "--max-wall-clock=", ctl_cmd_agent },
	{ "tenant", "list show create update delete", "--workers= "
	    "--memory-limit= --pids-limit= --cpu-weight= --journal-quota= "
	    "--idle-timeout=", run_tenant },
	{ "reload", "", "", run_reload },
	{ "config", "check", "-f= -v", ctl_cmd_config },
	{ "status", "", "", run_status },
	{ "journal", "verify checkpoint pubkey export backup prune",
	    "--tenant= --since= --older-than=", run_journal },
	{ "approvals", "list show decide grants revoke export verify-export",
	    TENANT_FLAGS " --json --state= --run= --scope= --ttl= --reason= "
	    "--all -o= --since=", ctl_cmd_approvals },
	{ "usage", "", TENANT_FLAGS " --json --from= --to= --agent= "
	    "--principal= --by=", ctl_cmd_usage },
	{ "budget", "list set delete", TENANT_FLAGS " --json",
	    ctl_cmd_budget },
	{ "memory", "add search list show rm purge", TENANT_FLAGS
	    " --json --session= --tag= --source= --ttl= --principal= --file= "
	    "--top-k= --min-score= --page-size= --all --expired --yes",
	    ctl_cmd_memory },
	{ "vault", "put get list rm rotate-master", TENANT_FLAGS
	    " --json --description= --file= --strip-newline --force --host",
	    ctl_cmd_vault },
	{ "cron", "add list show rm run runs enable disable", TENANT_FLAGS
	    " --json --schedule= --agent= --tz= --misfire= --catch-up-max= "
	    "--overlap --jitter= --unattended= --session-key= --disabled "
	    "--file= --follow --limit=", ctl_cmd_cron },
	{ "completion", "bash", "", cmd_completion },
	{ "help", "", "", NULL },
};
#define NCOMMANDS	(sizeof(commands) / sizeof(commands[0]))

static const char global_flags[] = "-g= -u= -s= --token-file= --json -v -h "
    "--help";

static int
cmd_completion(struct ctl_ctx *ctx, int argc, char **argv)
{
	(void)ctx;
	if (argc != 2 || strcmp(argv[1], "bash") != 0)
		return usage_error("completion needs a shell: bash");
	ctl_completion_bash(stdout, commands, NCOMMANDS, global_flags);
	return fflush(stdout) == 0 ? CTL_EXIT_OK : CTL_EXIT_FAIL;
}

/*
 * The tenant token without --token: --token-file, else PALYRA_TOKEN, else
 * PALYRA_TOKEN_FILE (a flag wins over the environment). buf holds a token
 * read from a file. Returns 0, or -1 after a message.
 */
static int
resolve_token(struct ctl_ctx *ctx, const char *token_file, char *buf,
    size_t size)
{
	const char	*env;
	char		 err[512];

	if (token_file == NULL && (env = getenv("PALYRA_TOKEN")) != NULL &&
	    env[0] != '\0') {
		ctx->token = env;
		return 0;
	}
	if (token_file == NULL && (env = getenv("PALYRA_TOKEN_FILE")) !=
	    NULL && env[0] != '\0')
		token_file = env;
	if (token_file == NULL)
		return 0;
	if (ctl_token_file(token_file, buf, size, err, sizeof(err)) < 0) {
		fprintf(stderr, "palyractl: %s\n", err);
		return -1;
	}
	ctx->token = buf;
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "token-file", required_argument, NULL, 'F' },
		{ NULL, 0, NULL, 0 },
	};
	struct ctl_ctx	 ctx;
	const char	*env, *token_file = NULL;
	char		 token[FE_TOKEN_MAX_LEN + 2];
	size_t		 i;
	int		 ch, rc, transport_failed = 0;

	memset(&ctx, 0, sizeof(ctx));
	ctx.transport_failed = &transport_failed;
	ctx.grpc_addr = (env = getenv("PALYRA_GRPC")) != NULL &&
	    env[0] != '\0' ? env : CTL_DEFAULT_GRPC;
	ctx.url = (env = getenv("PALYRA_URL")) != NULL && env[0] != '\0' ?
	    env : CTL_DEFAULT_URL;

	/* "+": options after the command belong to the command. */
	while ((ch = getopt_long(argc, argv, "+g:hs:u:v", opts, NULL)) != -1) {
		switch (ch) {
		case 'F':
			token_file = optarg;
			break;
		case 'g':
			ctx.grpc_addr = optarg;
			break;
		case 'h':
			usage(stdout);
			return CTL_EXIT_OK;
		case 'j':
			ctx.json = 1;
			break;
		case 's':
			ctx.state_dir = optarg;
			break;
		case 'u':
			ctx.url = optarg;
			break;
		case 'v':
			ctx.verbose = 1;
			break;
		default:
			usage(stderr);
			return CTL_EXIT_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1)
		return usage_error("missing command");
	if (strpbrk(ctx.grpc_addr, "/?#@ \t") != NULL ||
	    strchr(ctx.grpc_addr, ':') == NULL)
		return usage_error("bad gRPC address %s (want HOST:PORT)",
		    ctx.grpc_addr);
	if (strncmp(ctx.url, "http://", 7) != 0 &&
	    strncmp(ctx.url, "https://", 8) != 0)
		return usage_error("bad URL %s", ctx.url);
	for (i = 0; i < NCOMMANDS; i++)
		if (strcmp(argv[0], commands[i].name) == 0)
			break;
	if (i == NCOMMANDS)
		return usage_error("unknown command %s", argv[0]);
	if (commands[i].run == NULL) {
		usage(stdout);
		return CTL_EXIT_OK;
	}
	/* Only the commands that take a tenant token read a token file. */
	if (strstr(commands[i].flags, "--token=") != NULL &&
	    resolve_token(&ctx, token_file, token, sizeof(token)) < 0)
		return CTL_EXIT_USAGE;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "palyractl: libcurl failed to initialise\n");
		return CTL_EXIT_FAIL;
	}
	rc = commands[i].run(&ctx, argc, argv);
	curl_global_cleanup();
	explicit_bzero(token, sizeof(token));
	/* No answer from palyrad is not the same as palyrad saying no. */
	if (rc == CTL_EXIT_FAIL && transport_failed)
		rc = CTL_EXIT_CONNECT;
	return rc;
}
