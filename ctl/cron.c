/*
 * cron.c: `palyractl cron add|list|show|rm|run|runs|enable|disable`, the
 * tenant's cron routines over CronService (CreateJob, ListJobs, GetJob,
 * DeleteJob, RunJobNow, ListJobRuns, UpdateJob), and `cron run --follow`,
 * which follows the fire's run like `runs events` (GatewayService
 * ListRunEvents).
 *
 * Runs in palyractl as the invoking user with no privilege. The token
 * comes from --token, PALYRA_TOKEN or --tenant (an operator token minted
 * with the admin token). Times are printed in UTC (RFC 3339 with Z),
 * whatever the job's time zone; the schedule is the daemon's to parse.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "ctl.h"
#include "palyra/v1/gateway.pb-c.h"

#define CRON		"/palyra.v1.CronService/"
#define GATEWAY		"/palyra.v1.GatewayService/"
#define SCHEDULE_MAX	256
#define TZ_MAX		64
#define SESSION_KEY_MAX	256
#define JOB_REF_MAX	128
#define JITTER_MAX_S	3600
/* cron run --follow: how long the fire may take to start its run. */
#define FOLLOW_START_MS	60000

struct cron_opts {
	const char	*command;
	const char	*job;		/* ID or NAME */
	const char	*input;
	const char	*tenant;
	const char	*token;
	const char	*schedule;
	const char	*agent;
	const char	*tz;
	int		 misfire;
	uint32_t	 catch_up_max;
	int		 overlap;
	uint64_t	 jitter_ms;
	int		 unattended;
	const char	*session_key;
	int		 disabled;
	const char	*file;
	int		 follow;
	uint32_t	 limit;
};

static int
cron_usage(const char *why)
{
	fprintf(stderr, "palyractl: %s\n", why);
	fprintf(stderr,
	    "usage: palyractl cron add name --schedule schedule "
	    "[--agent name] [--tz zone]\n"
	    "           [--misfire skip|catch-up|once] [--catch-up-max n] "
	    "[--overlap]\n"
	    "           [--jitter duration] [--unattended deny|wait] "
	    "[--session-key key]\n"
	    "           [--disabled] input | --file file\n"
	    "       palyractl cron list\n"
	    "       palyractl cron show|rm|enable|disable job\n"
	    "       palyractl cron run [--follow] job\n"
	    "       palyractl cron runs [--limit n] job\n"
	    "   (job is a job id or name; each takes --tenant name or "
	    "--token token,\n"
	    "    and --json)\n");
	return CTL_EXIT_USAGE;
}

/* Printable, without white space at either end, 1 to max bytes. */
static int
valid_text(const char *s, size_t max)
{
	size_t	 i, n = strlen(s);

	if (n == 0 || n > max || s[0] == ' ' || s[n - 1] == ' ')
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	return 1;
}

static int
cron_options(struct ctl_ctx *ctx, int argc, char **argv, struct cron_opts *o)
{
	static const struct option opts[] = {
		CTL_TENANT_OPTIONS,
		{ "schedule", required_argument, NULL, 's' },
		{ "agent", required_argument, NULL, 'a' },
		{ "tz", required_argument, NULL, 'z' },
		{ "misfire", required_argument, NULL, 'm' },
		{ "catch-up-max", required_argument, NULL, 'c' },
		{ "overlap", no_argument, NULL, 'o' },
		{ "jitter", required_argument, NULL, 'J' },
		{ "unattended", required_argument, NULL, 'u' },
		{ "session-key", required_argument, NULL, 'k' },
		{ "disabled", no_argument, NULL, 'd' },
		{ "file", required_argument, NULL, 'f' },
		{ "follow", no_argument, NULL, 'F' },
		{ "limit", required_argument, NULL, 'l' },
		{ NULL, 0, NULL, 0 },
	};
	/* add takes one operand less with --file. */
	static const struct ctl_subcommand commands[] = {
		{ "add", "tTsazmcoJukdfj", 2 },
		{ "list", "tTj", 0 },
		{ "show", "tTj", 1 },
		{ "rm", "tTj", 1 },
		{ "run", "tTFj", 1 },
		{ "runs", "tTlj", 1 },
		{ "enable", "tTj", 1 },
		{ "disable", "tTj", 1 },
	};
	struct ctl_subparse	 p = { .group = "cron", .shortopts = "",
	    .opts = opts };
	long long		 d;
	int			 ch, left, nargs;

	memset(o, 0, sizeof(*o));
	o->limit = 20;
	if (argc < 2)
		return cron_usage("cron needs add, list, show, rm, run, runs, "
		    "enable or disable");
	o->command = argv[1];
	if (ctl_subparse_begin(&p, commands, sizeof(commands) /
	    sizeof(commands[0]), o->command) == NULL)
		return cron_usage("unknown cron command");
	while ((ch = ctl_subparse_next(ctx, &p, argc, argv)) != -1) {
		switch (ch) {
		case 0:
			return cron_usage(p.why);
		case 's':
			if (!valid_text(optarg, SCHEDULE_MAX))
				return cron_usage("--schedule takes a schedule "
				    "such as \"*/5 * * * *\", @daily, "
				    "\"every 30s\" or \"at 2026-12-24T18:00:00Z\"");
			o->schedule = optarg;
			break;
		case 'a':
			if (!valid_text(optarg, NAME_MAX_LEN))
				return cron_usage("an agent name is 1 to 64 "
				    "bytes");
			o->agent = optarg;
			break;
		case 'z':
			if (!valid_text(optarg, TZ_MAX) ||
			    strchr(optarg, ' ') != NULL)
				return cron_usage("--tz takes a tzdata zone "
				    "such as Europe/Prague or UTC");
			o->tz = optarg;
			break;
		case 'm':
			if (strcmp(optarg, "skip") == 0)
				o->misfire =
				    PALYRA__V1__MISFIRE_POLICY__MISFIRE_POLICY_SKIP;
			else if (strcmp(optarg, "catch-up") == 0)
				o->misfire =
				    PALYRA__V1__MISFIRE_POLICY__MISFIRE_POLICY_CATCH_UP;
			else if (strcmp(optarg, "once") == 0)
				o->misfire =
				    PALYRA__V1__MISFIRE_POLICY__MISFIRE_POLICY_ONCE;
			else
				return cron_usage("--misfire is skip, catch-up "
				    "or once");
			break;
		case 'c':
			if (ctl_parse_uint(optarg, 1, 100,
			    &o->catch_up_max) < 0)
				return cron_usage("--catch-up-max is 1 to 100");
			break;
		case 'o':
			o->overlap = 1;
			break;
		case 'J':
			if (strcmp(optarg, "0") == 0)
				d = 0;
			else if ((d = ctl_duration_seconds(optarg)) < 0 ||
			    d > JITTER_MAX_S)
				return cron_usage("--jitter takes a duration "
				    "of at most 1h, such as 30s or 5m");
			o->jitter_ms = (uint64_t)d * 1000;
			break;
		case 'u':
			if (strcmp(optarg, "deny") == 0)
				o->unattended =
				    PALYRA__V1__UNATTENDED_POLICY__UNATTENDED_POLICY_DENY;
			else if (strcmp(optarg, "wait") == 0)
				o->unattended =
				    PALYRA__V1__UNATTENDED_POLICY__UNATTENDED_POLICY_WAIT;
			else
				return cron_usage("--unattended is deny or "
				    "wait");
			break;
		case 'k':
			if (!valid_text(optarg, SESSION_KEY_MAX))
				return cron_usage("bad --session-key");
			o->session_key = optarg;
			break;
		case 'd':
			o->disabled = 1;
			break;
		case 'f':
			if (optarg[0] == '\0')
				return cron_usage("--file needs a file name");
			o->file = optarg;
			break;
		case 'F':
			o->follow = 1;
			break;
		case 'l':
			if (ctl_parse_uint(optarg, 1, 1000, &o->limit) < 0)
				return cron_usage("--limit is 1 to 1000");
			break;
		}
	}
	o->tenant = p.tenant;
	o->token = p.token;
	left = argc - 1 - optind;
	nargs = p.sub->nargs - (o->file != NULL ? 1 : 0);
	if (left != nargs)
		return cron_usage(nargs == 0 ? "cron list takes no arguments" :
		    strcmp(o->command, "add") == 0 ? "cron add needs a name "
		    "and the input, or a name and --file" :
		    "needs exactly one job id or name");
	if (nargs > 0) {
		o->job = argv[optind + 1];
		if (!valid_text(o->job, strcmp(o->command, "add") == 0 ?
		    NAME_MAX_LEN : JOB_REF_MAX) || strchr(o->job, ' ') != NULL)
			return cron_usage(strcmp(o->command, "add") == 0 ?
			    "a job name is 1 to 64 bytes without spaces" :
			    "bad job id or name");
	}
	if (nargs == 2) {
		o->input = argv[optind + 2];
		if (o->input[0] == '\0' || strlen(o->input) > TEXT_MAX_LEN)
			return cron_usage("the input is 1 byte to 64 KiB");
	}
	if (strcmp(o->command, "add") == 0 && o->schedule == NULL)
		return cron_usage("cron add needs --schedule");
	if (o->catch_up_max != 0 && o->misfire !=
	    PALYRA__V1__MISFIRE_POLICY__MISFIRE_POLICY_CATCH_UP)
		return cron_usage("--catch-up-max goes with --misfire "
		    "catch-up");
	return 0;
}

/* Output */

/* An enum value as a word: its name less prefix, lower case; "-" for
 * UNSPECIFIED. */
static const char *
word_of(const ProtobufCEnumDescriptor *d, int v, const char *prefix,
    char *buf, size_t size)
{
	const ProtobufCEnumValue	*ev;
	const char			*name;
	size_t				 i;

	if (v == 0 || (ev = protobuf_c_enum_descriptor_get_value(d, v)) ==
	    NULL)
		return v == 0 ? "-" : "unknown";
	name = ev->name;
	if (strncmp(name, prefix, strlen(prefix)) == 0)
		name += strlen(prefix);
	for (i = 0; name[i] != '\0' && i + 1 < size; i++)
		buf[i] = name[i] >= 'A' && name[i] <= 'Z' ?
		    (char)(name[i] - 'A' + 'a') : name[i];
	buf[i] = '\0';
	return buf;
}

static const char *
misfire_word(int v, char *buf, size_t size)
{
	if (v == 0)
		v = PALYRA__V1__MISFIRE_POLICY__MISFIRE_POLICY_SKIP;
	word_of(&palyra__v1__misfire_policy__descriptor, v,
	    "MISFIRE_POLICY_", buf, size);
	if (strcmp(buf, "catch_up") == 0)
		snprintf(buf, size, "catch-up");
	return buf;
}

static void
print_field(const char *name, const char *value)
{
	printf("%-14s ", name);
	ctl_print_clean(stdout, value[0] != '\0' ? value : "-");
	putchar('\n');
}

static void
print_job(const Palyra__V1__CronJob *j)
{
	char	 t[32], w[32], n[32];

	print_field("job_id", j->job_id);
	print_field("name", j->name);
	print_field("schedule", j->schedule);
	print_field("timezone", j->timezone[0] != '\0' ? j->timezone :
	    "(tenant's)");
	print_field("enabled", j->enabled ? "yes" : "no");
	print_field("next_fire", ctl_time_string(j->next_fire_unix_ms, t,
	    sizeof(t)));
	print_field("last_fire", ctl_time_string(j->last_fire_unix_ms, t,
	    sizeof(t)));
	print_field("agent", j->agent[0] != '\0' ? j->agent : "(default)");
	print_field("principal", j->principal);
	print_field("misfire", misfire_word(j->misfire, w, sizeof(w)));
	snprintf(n, sizeof(n), "%u", j->catch_up_max);
	if (j->misfire == PALYRA__V1__MISFIRE_POLICY__MISFIRE_POLICY_CATCH_UP)
		print_field("catch_up_max", n);
	print_field("overlap", j->allow_overlap ? "allowed" : "skipped");
	snprintf(n, sizeof(n), "%llums", (unsigned long long)j->jitter_ms);
	print_field("jitter", n);
	print_field("unattended", j->unattended ==
	    PALYRA__V1__UNATTENDED_POLICY__UNATTENDED_POLICY_WAIT ? "wait" :
	    "deny");
	print_field("session_key", j->session_key);
	print_field("created", ctl_time_string(j->created_unix_ms, t,
	    sizeof(t)));
	print_field("updated", ctl_time_string(j->updated_unix_ms, t,
	    sizeof(t)));
	printf("input\n");
	ctl_print_clean(stdout, j->input);
	putchar('\n');
}

/* One job: from CreateJob, GetJob or UpdateJob. */
static int
job_call(const struct ctl_ctx *ctx, const char *what, const char *method,
    const char *token, const ProtobufCMessage *req, int full)
{
	Palyra__V1__CronJob	*j;
	char			 t[32];

	if ((j = ctl_unary_msg(ctx, what, method, token, req,
	    &palyra__v1__cron_job__descriptor)) == NULL)
		return CTL_EXIT_FAIL;
	if (ctx->json)
		ctl_print_pb_json(&j->base);
	else if (full)
		print_job(j);
	else {
		ctl_print_clean(stdout, j->name);
		printf(" %s %s next %s\n", j->job_id, j->enabled ? "enabled" :
		    "disabled", ctl_time_string(j->next_fire_unix_ms, t,
		    sizeof(t)));
	}
	palyra__v1__cron_job__free_unpacked(j, NULL);
	return CTL_EXIT_OK;
}

/* Commands */

static int
cmd_add(const struct ctl_ctx *ctx, const struct cron_opts *o,
    const char *token)
{
	Palyra__V1__CreateJobRequest	 req =
	    PALYRA__V1__CREATE_JOB_REQUEST__INIT;
	Palyra__V1__CronJob		 job = PALYRA__V1__CRON_JOB__INIT;
	char				*input = NULL;
	size_t				 len;
	int				 rc;

	if (o->file != NULL) {
		if (ctl_read_input("cron add", o->file, TEXT_MAX_LEN, &input,
		    &len) < 0)
			return CTL_EXIT_FAIL;
		if (len == 0 || strlen(input) != len) {
			fprintf(stderr, "palyractl: cron add: the input is "
			    "empty or holds a NUL byte\n");
			free(input);
			return CTL_EXIT_FAIL;
		}
		job.input = input;
	} else
		job.input = (char *)o->input;
	job.name = (char *)o->job;
	job.schedule = (char *)o->schedule;
	if (o->tz != NULL)
		job.timezone = (char *)o->tz;
	if (o->agent != NULL)
		job.agent = (char *)o->agent;
	job.misfire = o->misfire;
	job.catch_up_max = o->catch_up_max;
	job.allow_overlap = o->overlap;
	job.jitter_ms = o->jitter_ms;
	job.unattended = o->unattended;
	if (o->session_key != NULL)
		job.session_key = (char *)o->session_key;
	req.job = &job;
	req.disabled = o->disabled;
	rc = job_call(ctx, "cron add", CRON "CreateJob", token, &req.base, 0);
	free(input);
	return rc;
}

static int
cmd_show(const struct ctl_ctx *ctx, const struct cron_opts *o,
    const char *token)
{
	Palyra__V1__GetJobRequest	 req = PALYRA__V1__GET_JOB_REQUEST__INIT;

	req.job_id = (char *)o->job;
	return job_call(ctx, "cron show", CRON "GetJob", token, &req.base, 1);
}

static int
cmd_enable(const struct ctl_ctx *ctx, const struct cron_opts *o,
    const char *token)
{
	Palyra__V1__UpdateJobRequest	 req =
	    PALYRA__V1__UPDATE_JOB_REQUEST__INIT;
	Palyra__V1__CronJob		 job = PALYRA__V1__CRON_JOB__INIT;
	char				*fields[] = { "enabled" };
	char				 what[32];

	snprintf(what, sizeof(what), "cron %s", o->command);
	job.enabled = strcmp(o->command, "enable") == 0;
	req.job_id = (char *)o->job;
	req.job = &job;
	req.fields = fields;
	req.n_fields = 1;
	return job_call(ctx, what, CRON "UpdateJob", token, &req.base, 0);
}

static int
job_row(struct ctl_table *t, const ProtobufCMessage *msg)
{
	const Palyra__V1__CronJob *j = (const Palyra__V1__CronJob *)msg;
	char		 nt[32], lt[32];
	const char	*row[] = { j->name, j->job_id, j->schedule,
	    j->timezone[0] != '\0' ? j->timezone : "-",
	    j->enabled ? "yes" : "no",
	    ctl_time_string(j->next_fire_unix_ms, nt, sizeof(nt)),
	    ctl_time_string(j->last_fire_unix_ms, lt, sizeof(lt)),
	    j->agent[0] != '\0' ? j->agent : "-" };

	return ctl_table_add(t, row);
}

static int
cmd_list(const struct ctl_ctx *ctx, const char *token)
{
	static const char *const header[] = {
		"NAME", "ID", "SCHEDULE", "TZ", "ENABLED", "NEXT", "LAST",
		"AGENT",
	};
	Palyra__V1__ListJobsRequest	 req = PALYRA__V1__LIST_JOBS_REQUEST__INIT;
	struct ctl_listing		 l = {
		.what = "cron list", .method = CRON "ListJobs",
		.reply = &palyra__v1__list_jobs_response__descriptor,
		.field = "jobs", .all = 1, .ncols = 8, .align = "llllllll",
		.header = header, .row = job_row,
	};
	int				 rc = CTL_EXIT_FAIL;

	req.page_size = 1000;
	if (ctl_list(ctx, token, &req.base, &l) < 0)
		goto out;
	if (ctx->json)
		ctl_print_json(json_pack("{s:O, s:s}", "jobs", l.items,
		    "next_page_token", ""));
	else {
		ctl_table_print(l.table, stdout);
		printf("%zu job%s\n", l.total, l.total == 1 ? "" : "s");
	}
	rc = CTL_EXIT_OK;
out:
	ctl_listing_free(&l);
	return rc;
}

static int
cmd_rm(const struct ctl_ctx *ctx, const struct cron_opts *o,
    const char *token)
{
	Palyra__V1__DeleteJobRequest	 req =
	    PALYRA__V1__DELETE_JOB_REQUEST__INIT;
	struct ctl_unary_reply		 reply;

	req.job_id = (char *)o->job;
	if (ctl_unary(ctx, "cron rm", CRON "DeleteJob", token, &req.base,
	    &reply) < 0)
		return CTL_EXIT_FAIL;
	free(reply.data);
	ctl_print_deleted(ctx, "job", o->job);
	return CTL_EXIT_OK;
}

static const char *
fire_state(int v, char *buf, size_t size)
{
	return word_of(&palyra__v1__cron_fire_state__descriptor, v,
	    "CRON_FIRE_STATE_", buf, size);
}

static const char *
run_status(int v, char *buf, size_t size)
{
	return word_of(&palyra__v1__run_status__descriptor, v, "RUN_STATUS_",
	    buf, size);
}

/* One page of a job's fires, newest first; NULL after a message. */
static Palyra__V1__ListJobRunsResponse *
list_fires(const struct ctl_ctx *ctx, const char *job, uint32_t limit,
    const char *token)
{
	Palyra__V1__ListJobRunsRequest	 req =
	    PALYRA__V1__LIST_JOB_RUNS_REQUEST__INIT;

	req.job_id = (char *)job;
	req.page_size = limit;
	return ctl_unary_msg(ctx, "cron runs", CRON "ListJobRuns", token,
	    &req.base, &palyra__v1__list_job_runs_response__descriptor);
}

static int
cmd_runs(const struct ctl_ctx *ctx, const struct cron_opts *o,
    const char *token)
{
	static const char *const header[] = {
		"SCHEDULED", "STATE", "RUN", "STATUS", "REASON",
	};
	Palyra__V1__ListJobRunsResponse	*resp;
	const Palyra__V1__CronFire	*f;
	struct ctl_table		*t;
	char				 when[32], st[32], rs[32];
	size_t				 i;
	int				 rc = CTL_EXIT_OK;

	if ((resp = list_fires(ctx, o->job, o->limit, token)) == NULL)
		return CTL_EXIT_FAIL;
	if (ctx->json) {
		rc = ctl_print_pb_json(&resp->base) < 0 ? CTL_EXIT_FAIL :
		    CTL_EXIT_OK;
		palyra__v1__list_job_runs_response__free_unpacked(resp, NULL);
		return rc;
	}
	if ((t = ctl_table_new(5, "lllll", header)) == NULL)
		rc = CTL_EXIT_FAIL;
	for (i = 0; rc == CTL_EXIT_OK && i < resp->n_fires; i++) {
		f = resp->fires[i];
		{
			const char *row[] = {
				ctl_time_string(f->scheduled_unix_ms, when,
				    sizeof(when)),
				fire_state(f->state, st, sizeof(st)),
				f->run_id[0] != '\0' ? f->run_id : "-",
				run_status(f->run_status, rs, sizeof(rs)),
				f->reason[0] != '\0' ? f->reason : f->manual ?
				    "manual" : "-",
			};

			if (ctl_table_add(t, row) < 0)
				rc = CTL_EXIT_FAIL;
		}
	}
	if (rc != CTL_EXIT_OK)
		fprintf(stderr, "palyractl: cron runs: out of memory\n");
	else {
		ctl_table_print(t, stdout);
		printf("%zu fire%s\n", resp->n_fires, resp->n_fires == 1 ? "" :
		    "s");
	}
	ctl_table_free(t);
	palyra__v1__list_job_runs_response__free_unpacked(resp, NULL);
	return rc;
}

static void
sleep_ms(long ms)
{
	struct timespec	 ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int64_t
now_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * cron run --follow: waits (polling ListJobRuns) until the fire has a run,
 * then follows its events. A fire that was skipped or failed before its
 * run started fails with its reason.
 */
static int
follow_fire(const struct ctl_ctx *ctx, const Palyra__V1__CronFire *fire,
    const char *token)
{
	Palyra__V1__ListJobRunsResponse	*resp;
	Palyra__V1__ListRunEventsRequest req =
	    PALYRA__V1__LIST_RUN_EVENTS_REQUEST__INIT;
	const Palyra__V1__CronFire	*f;
	char				 run_id[65] = "", reason[512] = "";
	char				 st[32];
	int64_t				 deadline = now_ms() + FOLLOW_START_MS;
	uint8_t				*buf;
	size_t				 i, len;
	int				 state = fire->state, rc;

	snprintf(run_id, sizeof(run_id), "%s", fire->run_id);
	while (run_id[0] == '\0' &&
	    state != PALYRA__V1__CRON_FIRE_STATE__CRON_FIRE_STATE_SKIPPED &&
	    state != PALYRA__V1__CRON_FIRE_STATE__CRON_FIRE_STATE_FAILED) {
		if (now_ms() > deadline) {
			fprintf(stderr, "palyractl: cron run: the fire did not "
			    "start a run within %d s\n", FOLLOW_START_MS /
			    1000);
			return CTL_EXIT_FAIL;
		}
		sleep_ms(100);
		if ((resp = list_fires(ctx, fire->job_id, 100, token)) == NULL)
			return CTL_EXIT_FAIL;
		for (i = 0; i < resp->n_fires; i++) {
			f = resp->fires[i];
			if (f->scheduled_unix_ms != fire->scheduled_unix_ms)
				continue;
			state = f->state;
			snprintf(run_id, sizeof(run_id), "%s", f->run_id);
			snprintf(reason, sizeof(reason), "%s", f->reason);
			break;
		}
		palyra__v1__list_job_runs_response__free_unpacked(resp, NULL);
	}
	if (run_id[0] == '\0') {
		fprintf(stderr, "palyractl: cron run: the fire was %s: ",
		    fire_state(state, st, sizeof(st)));
		ctl_print_clean(stderr, reason[0] != '\0' ? reason :
		    "no reason given");
		fputc('\n', stderr);
		return CTL_EXIT_FAIL;
	}
	req.run_id = run_id;
	len = palyra__v1__list_run_events_request__get_packed_size(&req);
	if ((buf = malloc(len > 0 ? len : 1)) == NULL)
		return CTL_EXIT_FAIL;
	palyra__v1__list_run_events_request__pack(&req, buf);
	rc = ctl_follow_events(ctx, GATEWAY "ListRunEvents", token, buf, len);
	free(buf);
	return rc;
}

static int
cmd_run(const struct ctl_ctx *ctx, const struct cron_opts *o,
    const char *token)
{
	Palyra__V1__RunJobNowRequest	 req =
	    PALYRA__V1__RUN_JOB_NOW_REQUEST__INIT;
	Palyra__V1__CronFire		*f;
	char				 when[32], st[32];
	int				 rc = CTL_EXIT_OK;

	req.job_id = (char *)o->job;
	if ((f = ctl_unary_msg(ctx, "cron run", CRON "RunJobNow", token,
	    &req.base, &palyra__v1__cron_fire__descriptor)) == NULL)
		return CTL_EXIT_FAIL;
	if (ctx->json)
		ctl_print_pb_json(&f->base);
	else {
		printf("fired %s at %s: %s", f->job_id,
		    ctl_time_string(f->scheduled_unix_ms, when, sizeof(when)),
		    fire_state(f->state, st, sizeof(st)));
		if (f->run_id[0] != '\0')
			printf(" run %s", f->run_id);
		putchar('\n');
		fflush(stdout);
	}
	if (o->follow)
		rc = follow_fire(ctx, f, token);
	palyra__v1__cron_fire__free_unpacked(f, NULL);
	return rc;
}

int
ctl_cmd_cron(struct ctl_ctx *ctx, int argc, char **argv)
{
	struct cron_opts	 o;
	char			*token, what[64];
	int			 rc;

	if ((rc = cron_options(ctx, argc, argv, &o)) != 0)
		return rc;
	snprintf(what, sizeof(what), "cron %s", o.command);
	if ((token = ctl_command_token(ctx, o.token, o.tenant, what, &rc)) ==
	    NULL)
		return rc;
	if (strcmp(o.command, "add") == 0)
		rc = cmd_add(ctx, &o, token);
	else if (strcmp(o.command, "list") == 0)
		rc = cmd_list(ctx, token);
	else if (strcmp(o.command, "show") == 0)
		rc = cmd_show(ctx, &o, token);
	else if (strcmp(o.command, "rm") == 0)
		rc = cmd_rm(ctx, &o, token);
	else if (strcmp(o.command, "run") == 0)
		rc = cmd_run(ctx, &o, token);
	else if (strcmp(o.command, "runs") == 0)
		rc = cmd_runs(ctx, &o, token);
	else
		rc = cmd_enable(ctx, &o, token);
	ctl_free_token(token);
	return rc;
}
