/*
 * tenant.c: `palyractl tenant list|show|create|update|delete`, the
 * tenants of palyrad over the admin API (/admin/v1/tenants, with the admin
 * token). Runs in palyractl. Tenants of palyrad.conf are listed and shown;
 * only those created here (source "runtime") can be updated or deleted.
 * Server text is printed with control characters replaced.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "ctl.h"

#define TENANT_USAGE                                                           \
	"usage: palyractl tenant list\n"                                       \
	"       palyractl tenant show|delete name\n"                           \
	"       palyractl tenant create|update name [--workers n] "            \
	"[--memory-limit size]\n"                                              \
	"           [--pids-limit n] [--cpu-weight n] [--journal-quota "       \
	"size]\n"                                                              \
	"           [--idle-timeout duration]\n"

static int
usage(void)
{
	fputs(TENANT_USAGE, stderr);
	return CTL_EXIT_USAGE;
}

/* A server string for a terminal: printable ASCII only. */
static void
print_clean(const char *s, int width)
{
	char buf[128];
	size_t i;

	for (i = 0; s != NULL && s[i] != '\0' && i < sizeof(buf) - 1; i++)
		buf[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	buf[i] = '\0';
	printf("%-*s", width, buf);
}

static unsigned long long
uint_of(json_t *o, const char *key)
{
	json_int_t v = json_integer_value(json_object_get(o, key));

	return v > 0 ? (unsigned long long)v : 0;
}

/* 268435456 -> "256M"; 0 -> "-" (no limit). */
static void
format_size(char *buf, size_t len, unsigned long long v)
{
	static const char units[] = "TGMK";
	int i;

	if (v == 0) {
		snprintf(buf, len, "-");
		return;
	}
	for (i = 0; i < 4; i++) {
		unsigned long long f = 1ULL << (10 * (4 - i));

		if (v % f == 0) {
			snprintf(buf, len, "%llu%c", v / f, units[i]);
			return;
		}
	}
	snprintf(buf, len, "%llu", v);
}

/* 300000 -> "5m"; 0 -> "never". */
static void
format_duration(char *buf, size_t len, unsigned long long ms)
{
	static const struct {
		const char *suffix;
		unsigned long long f;
	} units[] = {{"d", 86400000ULL}, {"h", 3600000ULL}, {"m", 60000ULL},
	    {"s", 1000ULL}};
	size_t i;

	if (ms == 0) {
		snprintf(buf, len, "never");
		return;
	}
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (ms % units[i].f == 0) {
			snprintf(buf, len, "%llu%s", ms / units[i].f,
			    units[i].suffix);
			return;
		}
	snprintf(buf, len, "%llums", ms);
}

static void
format_count(char *buf, size_t len, unsigned long long v)
{
	if (v == 0)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%llu", v);
}

static void
print_json(json_t *o)
{
	char *text = json_dumps(o, JSON_COMPACT);

	if (text != NULL) {
		printf("%s\n", text);
		free(text);
	}
}

/*
 * One admin request; method NULL: GET, or POST when body is set. Returns
 * the parsed reply of a 2xx answer, or NULL after a message on stderr.
 */
static json_t *
tenant_request(const struct ctl_ctx *ctx, const char *what, const char *method,
    const char *path, const char *body)
{
	char err[512], *reply = NULL;
	json_error_t jerr;
	json_t *root;
	long status = 0;
	int rc;

	if (method != NULL && strcmp(method, "DELETE") == 0)
		rc = ctl_admin_delete(
		    ctx, path, &status, &reply, err, sizeof(err));
	else if (method != NULL && strcmp(method, "PATCH") == 0)
		rc = ctl_admin_patch(
		    ctx, path, body, &status, &reply, err, sizeof(err));
	else if (body != NULL)
		rc = ctl_admin_post(
		    ctx, path, body, &status, &reply, err, sizeof(err));
	else
		rc =
		    ctl_admin_get(ctx, path, &status, &reply, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "palyractl: tenant %s: %s\n", what, err);
		return NULL;
	}
	if (status < 200 || status > 299) {
		ctl_admin_error_message(reply, status, err, sizeof(err));
		fprintf(stderr, "palyractl: tenant %s: %s\n", what, err);
		free(reply);
		return NULL;
	}
	root = json_loads(reply, 0, &jerr);
	free(reply);
	if (!json_is_object(root)) {
		json_decref(root);
		fprintf(
		    stderr, "palyractl: tenant %s: malformed reply\n", what);
		return NULL;
	}
	return root;
}

static int
cmd_list(const struct ctl_ctx *ctx)
{
	char mem[32], pids[32], cpu[32], quota[32], idle[32];
	json_t *root, *arr, *o;
	size_t i;
	int width = 4;

	if ((root = tenant_request(
		 ctx, "list", NULL, "/admin/v1/tenants", NULL)) == NULL)
		return CTL_EXIT_FAIL;
	arr = json_object_get(root, "tenants");
	if (!json_is_array(arr)) {
		json_decref(root);
		fprintf(stderr, "palyractl: tenant list: malformed reply\n");
		return CTL_EXIT_FAIL;
	}
	if (ctx->json) {
		print_json(root);
		json_decref(root);
		return CTL_EXIT_OK;
	}
	json_array_foreach(arr, i, o)
	{
		const char *n = json_string_value(json_object_get(o, "name"));

		if (n != NULL && (int)strlen(n) > width)
			width = (int)strlen(n);
	}
	if (width > 64)
		width = 64;
	printf("%-*s %-7s %7s %7s %8s %8s %6s %8s %s\n", width, "NAME",
	    "SOURCE", "WORKERS", "RUNNING", "MEMORY", "PIDS", "CPU", "JOURNAL",
	    "IDLE");
	json_array_foreach(arr, i, o)
	{
		format_size(mem, sizeof(mem), uint_of(o, "memory_limit"));
		format_count(pids, sizeof(pids), uint_of(o, "pids_limit"));
		format_count(cpu, sizeof(cpu), uint_of(o, "cpu_weight"));
		format_size(quota, sizeof(quota), uint_of(o, "journal_quota"));
		format_duration(
		    idle, sizeof(idle), uint_of(o, "idle_timeout_ms"));
		print_clean(
		    json_string_value(json_object_get(o, "name")), width);
		putchar(' ');
		print_clean(json_string_value(json_object_get(o, "source")), 7);
		printf(" %7llu %7llu %8s %8s %6s %8s %s\n",
		    uint_of(o, "workers"), uint_of(o, "running_workers"), mem,
		    pids, cpu, quota, idle);
	}
	json_decref(root);
	return CTL_EXIT_OK;
}

static void
print_tenant(json_t *o)
{
	char buf[32];
	json_t *agents, *a;
	size_t i;

	printf("name:            ");
	print_clean(json_string_value(json_object_get(o, "name")), 0);
	printf("\nsource:          ");
	print_clean(json_string_value(json_object_get(o, "source")), 0);
	printf("\nworkers:         %llu\n", uint_of(o, "workers"));
	printf("running workers: %llu\n", uint_of(o, "running_workers"));
	format_size(buf, sizeof(buf), uint_of(o, "memory_limit"));
	printf("memory limit:    %s\n", buf);
	format_count(buf, sizeof(buf), uint_of(o, "pids_limit"));
	printf("pids limit:      %s\n", buf);
	format_count(buf, sizeof(buf), uint_of(o, "cpu_weight"));
	printf("cpu weight:      %s\n", buf);
	format_size(buf, sizeof(buf), uint_of(o, "journal_quota"));
	printf("journal quota:   %s\n", buf);
	format_duration(buf, sizeof(buf), uint_of(o, "idle_timeout_ms"));
	printf("idle timeout:    %s\n", buf);
	printf("agents:         ");
	agents = json_object_get(o, "agents");
	json_array_foreach(agents, i, a)
	{
		putchar(' ');
		print_clean(json_string_value(a), 0);
	}
	putchar('\n');
}

/* /admin/v1/tenants/NAME, the name escaped. Returns 0 or -1. */
static int
item_path(const char *name, char *path, size_t len)
{
	char *esc;
	int n;

	if (name[0] == '\0' || (esc = curl_easy_escape(NULL, name, 0)) == NULL)
		return -1;
	n = snprintf(path, len, "/admin/v1/tenants/%s", esc);
	curl_free(esc);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* A count given on the command line; -1 if not one. */
static json_int_t
count_arg(const char *s)
{
	char *end;
	unsigned long long v;

	if (*s < '0' || *s > '9')
		return -1;
	v = strtoull(s, &end, 10);
	if (*end != '\0' || v > 0xffffffffULL)
		return -1;
	return (json_int_t)v;
}

static int
cmd_create_update(const struct ctl_ctx *ctx, int create, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"workers", required_argument, NULL, 'w'},
	    {"memory-limit", required_argument, NULL, 'm'},
	    {"pids-limit", required_argument, NULL, 'p'},
	    {"cpu-weight", required_argument, NULL, 'c'},
	    {"journal-quota", required_argument, NULL, 'q'},
	    {"idle-timeout", required_argument, NULL, 'i'},
	    {NULL, 0, NULL, 0},
	};
	const char *what = create ? "create" : "update", *name;
	char path[512], *body;
	json_t *req, *root;
	json_int_t n;
	int ch, rc = 0;

	if ((req = json_object()) == NULL)
		return CTL_EXIT_FAIL;
	/* 0: getopt starts afresh, and lets the name stand anywhere. */
	optind = 0;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'w':
		case 'p':
		case 'c':
			if ((n = count_arg(optarg)) < 0) {
				fprintf(stderr,
				    "palyractl: tenant %s: %s is "
				    "not a number\n",
				    what, optarg);
				json_decref(req);
				return usage();
			}
			rc = json_object_set_new(req,
			    ch == 'w'	? "workers"
			    : ch == 'p' ? "pids_limit"
					: "cpu_weight",
			    json_integer(n));
			break;
		case 'm':
			rc = json_object_set_new(
			    req, "memory_limit", json_string(optarg));
			break;
		case 'q':
			rc = json_object_set_new(
			    req, "journal_quota", json_string(optarg));
			break;
		case 'i':
			rc = json_object_set_new(
			    req, "idle_timeout", json_string(optarg));
			break;
		default:
			json_decref(req);
			return usage();
		}
		if (rc != 0) {
			json_decref(req);
			fprintf(stderr, "palyractl: tenant %s: bad argument\n",
			    what);
			return CTL_EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		json_decref(req);
		return usage();
	}
	name = argv[optind];
	if (item_path(name, path, sizeof(path)) < 0) {
		json_decref(req);
		fprintf(stderr, "palyractl: tenant %s: bad name\n", what);
		return CTL_EXIT_USAGE;
	}
	if (create &&
	    json_object_set_new(req, "name", json_string(name)) != 0) {
		json_decref(req);
		fprintf(stderr, "palyractl: tenant create: bad name\n");
		return CTL_EXIT_USAGE;
	}
	body = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (body == NULL)
		return CTL_EXIT_FAIL;
	root = create
		   ? tenant_request(ctx, what, NULL, "/admin/v1/tenants", body)
		   : tenant_request(ctx, what, "PATCH", path, body);
	free(body);
	if (root == NULL)
		return CTL_EXIT_FAIL;
	if (ctx->json)
		print_json(root);
	else
		print_tenant(root);
	json_decref(root);
	return CTL_EXIT_OK;
}

int
ctl_cmd_tenant(const struct ctl_ctx *ctx, int argc, char **argv)
{
	char path[512];
	json_t *root;

	if (argc < 2)
		return usage();
	if (strcmp(argv[1], "list") == 0) {
		if (argc != 2)
			return usage();
		return cmd_list(ctx);
	}
	if (strcmp(argv[1], "create") == 0 || strcmp(argv[1], "update") == 0)
		return cmd_create_update(
		    ctx, strcmp(argv[1], "create") == 0, argc - 1, argv + 1);
	if (strcmp(argv[1], "show") != 0 && strcmp(argv[1], "delete") != 0)
		return usage();
	if (argc != 3)
		return usage();
	if (item_path(argv[2], path, sizeof(path)) < 0) {
		fprintf(stderr, "palyractl: tenant %s: bad name\n", argv[1]);
		return CTL_EXIT_USAGE;
	}
	if (strcmp(argv[1], "show") == 0) {
		if ((root = tenant_request(ctx, "show", NULL, path, NULL)) ==
		    NULL)
			return CTL_EXIT_FAIL;
		if (ctx->json)
			print_json(root);
		else
			print_tenant(root);
		json_decref(root);
		return CTL_EXIT_OK;
	}
	if ((root = tenant_request(ctx, "delete", "DELETE", path, NULL)) ==
	    NULL)
		return CTL_EXIT_FAIL;
	if (ctx->json)
		print_json(root);
	else {
		printf("tenant ");
		print_clean(argv[2], 0);
		printf(" deleted; its journal stays on disk and comes back if "
		       "the name is created again\n");
	}
	json_decref(root);
	return CTL_EXIT_OK;
}

/*
 * `palyractl reload`: palyrad reads palyrad.conf again and applies it, as
 * on SIGHUP; a file with errors is refused and the running configuration
 * stays (exit 1 with the parse error).
 */
int
ctl_cmd_reload(const struct ctl_ctx *ctx, int argc, char **argv)
{
	char err[1024], *reply = NULL;
	json_error_t jerr;
	json_t *root;
	long status = 0;

	if (argc != 1) {
		fputs("usage: palyractl reload\n", stderr);
		return CTL_EXIT_USAGE;
	}
	if (ctl_admin_post(ctx, "/admin/v1/reload", "{}", &status, &reply, err,
	    sizeof(err)) < 0) {
		fprintf(stderr, "palyractl: reload: %s\n", err);
		return CTL_EXIT_FAIL;
	}
	if (status < 200 || status > 299) {
		ctl_admin_error_message(reply, status, err, sizeof(err));
		free(reply);
		fprintf(stderr, "palyractl: reload: %s\n", err);
		return CTL_EXIT_FAIL;
	}
	root = json_loads(reply, 0, &jerr);
	free(reply);
	if (!json_is_object(root)) {
		json_decref(root);
		fprintf(stderr, "palyractl: reload: malformed reply\n");
		return CTL_EXIT_FAIL;
	}
	if (ctx->json)
		print_json(root);
	else
		printf("reloaded: %zu tenants\n",
		    json_array_size(json_object_get(root, "tenants")));
	json_decref(root);
	return CTL_EXIT_OK;
}
