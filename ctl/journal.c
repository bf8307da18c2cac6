/*
 * journal.c: `palyractl journal verify|checkpoint|pubkey|export|backup|
 * prune`,
 * the journal audit through the admin API (/admin/v1/journal/...).
 *
 * Runs in palyractl as the invoking user; reads the admin token (admin.c)
 * and talks HTTP with libcurl. Replies are bounded (CTL_JOURNAL_MAX_BODY);
 * an export is streamed to stdout line by line as it arrives, each line
 * bounded (CTL_EXPORT_LINE_MAX), so a journal of any size passes through
 * in constant memory. Text from the server is shown with control
 * characters replaced. verify, backup and export draw a progress line on
 * stderr when it is a terminal (progress.c).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "ctl.h"

struct body {
	char	*data;
	size_t	 len;
	size_t	 max;
	int	 overflow;
	/* export: whole lines go to stdout, the rest waits in data */
	int	 stream;
	int	 error_line;	/* the server ended the export with an error */
	char	 error[512];
	uint64_t lines;		/* export: lines written */
	struct ctl_progress *progress;	/* NULL: none */
};

struct journal_opts {
	const char	*tenant;
	const char	*since;
	int		 json;
	const char	*older_than;	/* prune */
};

static void
safe_print(FILE *f, const char *s)
{
	for (; s != NULL && *s != '\0'; s++)
		fputc((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s, f);
}

/* An export line: printed unless it is the server's error line. */
static int
stream_line(struct body *b, const char *line, size_t len)
{
	json_error_t	 jerr;
	json_t		*root, *msg;

	if (len > 9 && strncmp(line, "{\"error\":", 9) == 0) {
		root = json_loadb(line, len, 0, &jerr);
		msg = json_object_get(json_object_get(root, "error"),
		    "message");
		snprintf(b->error, sizeof(b->error), "%s",
		    json_is_string(msg) ? json_string_value(msg) :
		    "the export ended with an error");
		json_decref(root);
		b->error_line = 1;
		return 0;
	}
	if (fwrite(line, 1, len, stdout) != len || fputc('\n', stdout) == EOF)
		return -1;
	b->lines++;
	if (b->progress != NULL)
		ctl_progress_update(b->progress, b->lines, "lines");
	return 0;
}

/* libcurl's transfer callback: the progress line, also while palyrad
 * works and nothing arrives. */
static int
body_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow,
    curl_off_t ultotal, curl_off_t ulnow)
{
	struct body	*b = arg;

	if (b->stream)
		ctl_progress_update(b->progress, b->lines, "lines");
	else
		ctl_progress_update(b->progress, dlnow > 0 ? (uint64_t)dlnow :
		    0, "bytes");
	return 0;
}

static size_t
body_write(char *buf, size_t size, size_t nmemb, void *arg)
{
	struct body	*b = arg;
	size_t		 len = size * nmemb, start, i;
	char		*p;

	if (b->len + len > b->max) {
		b->overflow = 1;
		return 0;
	}
	if ((p = realloc(b->data, b->len + len + 1)) == NULL)
		return 0;
	b->data = p;
	memcpy(b->data + b->len, buf, len);
	b->len += len;
	b->data[b->len] = '\0';
	if (!b->stream)
		return len;
	for (start = 0, i = 0; i < b->len; i++) {
		if (b->data[i] != '\n')
			continue;
		if (stream_line(b, b->data + start, i - start) < 0)
			return 0;
		start = i + 1;
	}
	memmove(b->data, b->data + start, b->len - start);
	b->len -= start;
	return len;
}

/*
 * One admin request: POST with body, or GET when body is NULL. Returns 0
 * with the HTTP status, or -1 with err set.
 */
static int
journal_request(const struct ctl_ctx *ctx, const char *path,
    const char *body, struct body *reply, long *status, char *err,
    size_t errlen)
{
	struct curl_slist	*headers = NULL, *h;
	char			 token[FE_TOKEN_MAX_LEN + 1];
	char			 auth[FE_TOKEN_MAX_LEN + 32], url[1024];
	char			 errbuf[CURL_ERROR_SIZE];
	CURL			*curl = NULL;
	CURLcode		 rc;
	int			 ret = -1;

	errbuf[0] = '\0';
	if (ctl_admin_token(ctx, token, sizeof(token), err, errlen) < 0)
		return -1;
	snprintf(auth, sizeof(auth), "authorization: Bearer %s", token);
	explicit_bzero(token, sizeof(token));
	if ((size_t)snprintf(url, sizeof(url), "%s%s", ctx->url, path) >=
	    sizeof(url)) {
		snprintf(err, errlen, "URL too long");
		goto out;
	}
	headers = curl_slist_append(NULL, "content-type: application/json");
	if (headers == NULL || (h = curl_slist_append(headers, auth)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	headers = h;
	if ((curl = curl_easy_init()) == NULL) {
		snprintf(err, errlen, "libcurl failed");
		goto out;
	}
	curl_easy_setopt(curl, CURLOPT_URL, url);
	if (body != NULL)
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "palyractl");
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, body_write);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, reply);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
	/* A verification or a backup of a large journal takes a while; the
	 * front gives up on journald a little earlier than this. */
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, (long)CTL_JOURNAL_TIMEOUT_S);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	if (reply->progress != NULL && reply->progress->on) {
		curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION,
		    body_progress);
		curl_easy_setopt(curl, CURLOPT_XFERINFODATA, reply);
		curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
	}
	rc = curl_easy_perform(curl);
	if (reply->overflow) {
		snprintf(err, errlen, "%s longer than %zu bytes",
		    reply->stream ? "an exported line is" : "reply",
		    reply->max);
		goto out;
	}
	if (rc != CURLE_OK) {
		ctl_transport_failed(ctx, (int)rc);
		if (rc == CURLE_COULDNT_CONNECT ||
		    rc == CURLE_COULDNT_RESOLVE_HOST)
			snprintf(err, errlen, "cannot connect to %s: %s",
			    ctx->url, errbuf[0] != '\0' ? errbuf :
			    curl_easy_strerror(rc));
		else
			snprintf(err, errlen, "%s: %s", ctx->url,
			    errbuf[0] != '\0' ? errbuf :
			    curl_easy_strerror(rc));
		goto out;
	}
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status);
	ret = 0;
out:
	explicit_bzero(auth, sizeof(auth));
	if (curl != NULL)
		curl_easy_cleanup(curl);
	curl_slist_free_all(headers);
	return ret;
}

/* The message of a JSON error reply, or a generic one. */
static void
error_message(const char *reply, long status, char *err, size_t errlen)
{
	json_error_t	 jerr;
	json_t		*root, *msg;

	root = reply != NULL ? json_loads(reply, 0, &jerr) : NULL;
	msg = json_object_get(json_object_get(root, "error"), "message");
	if (json_is_string(msg))
		snprintf(err, errlen, "%s", json_string_value(msg));
	else
		snprintf(err, errlen, "server answered HTTP status %ld",
		    status);
	json_decref(root);
}

/*
 * Calls path and parses the 200 reply. Returns the JSON (caller frees),
 * or NULL after printing the error. progress: o->json of a long operation
 * (a progress line on a terminal unless 1), -1 for none.
 */
static json_t *
journal_call(const struct ctl_ctx *ctx, const char *what, const char *path,
    const char *body, int progress)
{
	struct body	 b = { .max = CTL_JOURNAL_MAX_BODY };
	struct ctl_progress p;
	json_error_t	 jerr;
	json_t		*root = NULL;
	char		 err[512], title[64];
	long		 status = 0;
	int		 r;

	if (progress >= 0) {
		snprintf(title, sizeof(title), "journal %s", what);
		ctl_progress_start(&p, progress, title);
		ctl_progress_update(&p, 0, "bytes");
		b.progress = &p;
	}
	r = journal_request(ctx, path, body, &b, &status, err, sizeof(err));
	if (b.progress != NULL)
		ctl_progress_end(b.progress);
	if (r < 0) {
		fprintf(stderr, "palyractl: journal %s: ", what);
		safe_print(stderr, err);
		fputc('\n', stderr);
		free(b.data);
		return NULL;
	}
	if (status != 200) {
		error_message(b.data, status, err, sizeof(err));
		fprintf(stderr, "palyractl: journal %s: ", what);
		safe_print(stderr, err);
		fputc('\n', stderr);
	} else if ((root = json_loads(b.data != NULL ? b.data : "", 0,
	    &jerr)) == NULL || !json_is_object(root)) {
		fprintf(stderr, "palyractl: journal %s: malformed reply\n",
		    what);
		json_decref(root);
		root = NULL;
	}
	free(b.data);
	return root;
}

/* {"tenant": NAME} or NULL for none; caller frees. */
static char *
tenant_body(const char *tenant)
{
	json_t	*req;
	char	*s;

	if (tenant == NULL)
		return NULL;
	req = json_pack("{s:s}", "tenant", tenant);
	s = req != NULL ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	return s;
}

static void
print_json_root(json_t *root)
{
	char	*s;

	if ((s = json_dumps(root, JSON_COMPACT)) != NULL) {
		printf("%s\n", s);
		free(s);
	}
}

static const char *
str(json_t *obj, const char *key)
{
	const char	*s = json_string_value(json_object_get(obj, key));

	return s != NULL && s[0] != '\0' ? s : "-";
}

static long long
num(json_t *obj, const char *key)
{
	return (long long)json_integer_value(json_object_get(obj, key));
}

static int
cmd_verify(const struct ctl_ctx *ctx, const struct journal_opts *o)
{
	json_t		*root, *results, *r;
	char		*body = tenant_body(o->tenant);
	size_t		 i;
	int		 rc = CTL_EXIT_OK;

	root = journal_call(ctx, "verify", "/admin/v1/journal/verify",
	    body != NULL ? body : "", o->json);
	free(body);
	if (root == NULL)
		return CTL_EXIT_FAIL;
	results = json_object_get(root, "results");
	if (!json_is_array(results)) {
		fprintf(stderr, "palyractl: journal verify: malformed reply\n");
		json_decref(root);
		return CTL_EXIT_FAIL;
	}
	json_array_foreach(results, i, r) {
		if (!json_is_true(json_object_get(r, "ok")))
			rc = CTL_EXIT_FAIL;
		if (o->json)
			continue;
		safe_print(stdout, str(r, "tenant"));
		if (json_is_true(json_object_get(r, "ok"))) {
			printf(": ok, %lld events, head %lld ",
			    num(r, "events"), num(r, "head_seq"));
			safe_print(stdout, str(r, "head_hash"));
		} else {
			printf(": BROKEN at seq %lld: ", num(r, "broken_seq"));
			if (strcmp(str(r, "expected"), "-") != 0 ||
			    strcmp(str(r, "found"), "-") != 0) {
				printf("expected ");
				safe_print(stdout, str(r, "expected"));
				printf(" found ");
				safe_print(stdout, str(r, "found"));
				printf(": ");
			}
			safe_print(stdout, str(r, "reason"));
		}
		putchar('\n');
	}
	if (o->json)
		print_json_root(root);
	fflush(stdout);
	json_decref(root);
	return rc;
}

static int
cmd_checkpoint(const struct ctl_ctx *ctx, const struct journal_opts *o)
{
	json_t		*root, *cps, *c;
	char		*body = tenant_body(o->tenant);
	size_t		 i;
	int		 rc = CTL_EXIT_OK;

	root = journal_call(ctx, "checkpoint", "/admin/v1/journal/checkpoint",
	    body != NULL ? body : "", -1);
	free(body);
	if (root == NULL)
		return CTL_EXIT_FAIL;
	cps = json_object_get(root, "checkpoints");
	if (!json_is_array(cps)) {
		fprintf(stderr,
		    "palyractl: journal checkpoint: malformed reply\n");
		json_decref(root);
		return CTL_EXIT_FAIL;
	}
	json_array_foreach(cps, i, c) {
		if (json_is_string(json_object_get(c, "error")))
			rc = CTL_EXIT_FAIL;
		if (o->json)
			continue;
		safe_print(stdout, str(c, "tenant"));
		if (json_is_string(json_object_get(c, "error"))) {
			printf(": error: ");
			safe_print(stdout, str(c, "error"));
		} else if (num(c, "chain_seq") == 0)
			printf(": no events, no checkpoint");
		else {
			printf(": %s at seq %lld ",
			    json_is_true(json_object_get(c, "written")) ?
			    "checkpoint signed" : "unchanged, checkpoint",
			    num(c, "chain_seq"));
			safe_print(stdout, str(c, "hash"));
		}
		putchar('\n');
	}
	if (o->json)
		print_json_root(root);
	fflush(stdout);
	json_decref(root);
	return rc;
}

static int
cmd_pubkey(const struct ctl_ctx *ctx, const struct journal_opts *o)
{
	json_t	*root;

	if ((root = journal_call(ctx, "pubkey", "/admin/v1/journal/pubkey",
	    NULL, -1)) == NULL)
		return CTL_EXIT_FAIL;
	if (o->json)
		print_json_root(root);
	else {
		safe_print(stdout, str(root, "public_key"));
		putchar('\n');
	}
	fflush(stdout);
	json_decref(root);
	return CTL_EXIT_OK;
}

static int
cmd_backup(const struct ctl_ctx *ctx, const struct journal_opts *o)
{
	json_t	*root;
	char	*body = tenant_body(o->tenant);

	if (body == NULL) {
		fprintf(stderr, "palyractl: journal backup: out of memory\n");
		return CTL_EXIT_FAIL;
	}
	root = journal_call(ctx, "backup", "/admin/v1/journal/backup", body,
	    o->json);
	free(body);
	if (root == NULL)
		return CTL_EXIT_FAIL;
	if (o->json)
		print_json_root(root);
	else {
		safe_print(stdout, str(root, "tenant"));
		printf(": ");
		safe_print(stdout, str(root, "file"));
		printf(" (%lld bytes)\n", num(root, "size"));
	}
	fflush(stdout);
	json_decref(root);
	return CTL_EXIT_OK;
}

/*
 * A duration: digits and a unit, ms, s, m, h or d. Returns the
 * milliseconds, or -1 for anything else or more than 100 years.
 */
static int64_t
duration_ms(const char *s)
{
	static const struct {
		const char	*unit;
		int64_t		 ms;
	} units[] = {
		{ "ms", 1 }, { "s", 1000 }, { "m", 60000 },
		{ "h", 3600000 }, { "d", 86400000 },
	};
	const int64_t max = INT64_C(100) * 366 * 86400000;
	int64_t v = 0;
	size_t i;

	if (*s < '0' || *s > '9')
		return -1;
	for (; *s >= '0' && *s <= '9'; s++) {
		v = v * 10 + (*s - '0');
		if (v > max)
			return -1;
	}
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (strcmp(s, units[i].unit) == 0)
			return v * units[i].ms <= max ? v * units[i].ms : -1;
	return -1;
}

static int
cmd_prune(const struct ctl_ctx *ctx, const struct journal_opts *o)
{
	json_t		*root, *body, *anchor;
	char		*text;
	int64_t		 age = duration_ms(o->older_than), now;
	struct timespec	 ts;

	if (age < 0) {
		fprintf(stderr, "palyractl: journal prune: --older-than takes "
		    "a duration such as 30d, 12h or 90m\n");
		return CTL_EXIT_USAGE;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	if (now - age <= 0) {
		fprintf(stderr, "palyractl: journal prune: --older-than "
		    "reaches before 1970\n");
		return CTL_EXIT_USAGE;
	}
	body = json_pack("{s:s, s:I}", "tenant", o->tenant, "before_ms",
	    (json_int_t)(now - age));
	text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	if (text == NULL) {
		fprintf(stderr, "palyractl: journal prune: out of memory\n");
		return CTL_EXIT_FAIL;
	}
	root = journal_call(ctx, "prune", "/admin/v1/journal/prune", text,
	    -1);
	free(text);
	if (root == NULL)
		return CTL_EXIT_FAIL;
	if (o->json)
		print_json_root(root);
	else {
		anchor = json_object_get(root, "anchor");
		safe_print(stdout, str(root, "tenant"));
		printf(": %lld event(s) and %lld run(s) pruned",
		    num(root, "events"), num(root, "runs"));
		if (json_is_object(anchor)) {
			printf("; chain anchored at seq %lld ",
			    num(anchor, "chain_seq"));
			safe_print(stdout, str(anchor, "hash"));
		}
		putchar('\n');
	}
	fflush(stdout);
	json_decref(root);
	return CTL_EXIT_OK;
}

static int
cmd_export(const struct ctl_ctx *ctx, const struct journal_opts *o)
{
	struct body	 b = { .max = CTL_EXPORT_LINE_MAX, .stream = 1 };
	struct ctl_progress p;
	char		 path[256], err[512];
	long		 status = 0;
	int		 rc = CTL_EXIT_FAIL, r;

	snprintf(path, sizeof(path), "/admin/v1/journal/export?tenant=%s%s%s",
	    o->tenant, o->since != NULL ? "&since=" : "",
	    o->since != NULL ? o->since : "");
	/* Not over exported lines on the same terminal. */
	ctl_progress_start(&p, o->json || isatty(STDOUT_FILENO),
	    "journal export");
	ctl_progress_update(&p, 0, "lines");
	b.progress = &p;
	/* Until the status is known, nothing is printed: an error reply is
	 * one JSON object, never an exported line. */
	r = journal_request(ctx, path, NULL, &b, &status, err, sizeof(err));
	ctl_progress_end(&p);
	if (r < 0) {
		fprintf(stderr, "palyractl: journal export: ");
		safe_print(stderr, err);
		fputc('\n', stderr);
	} else if (status != 200) {
		error_message(b.data, status, err, sizeof(err));
		fprintf(stderr, "palyractl: journal export: ");
		safe_print(stderr, err);
		fputc('\n', stderr);
	} else if (b.error_line) {
		fprintf(stderr, "palyractl: journal export: ");
		safe_print(stderr, b.error);
		fputc('\n', stderr);
	} else if (b.len != 0)
		fprintf(stderr, "palyractl: journal export: the last line is "
		    "incomplete\n");
	else
		rc = CTL_EXIT_OK;
	fflush(stdout);
	free(b.data);
	return rc;
}

/* Only digits, so that the value cannot add to the query. */
static int
name_ok(const char *s, int digits_only)
{
	size_t	 i;

	for (i = 0; s[i] != '\0'; i++)
		if (i >= NAME_MAX_LEN || !((s[i] >= '0' && s[i] <= '9') ||
		    (!digits_only && ((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= 'A' && s[i] <= 'Z') || s[i] == '.' ||
		    s[i] == '_' || s[i] == '-'))))
			return 0;
	return i > 0;
}

int
ctl_cmd_journal(const struct ctl_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tenant", required_argument, NULL, 't' },
		{ "since", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "older-than", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 },
	};
	struct journal_opts	 o = { NULL, NULL, ctx->json, NULL };
	const char		*cmd;
	int			 ch;

	if (argc < 2) {
		fprintf(stderr, "palyractl: journal needs a command: verify, "
		    "checkpoint, pubkey, export, backup or prune\n");
		return CTL_EXIT_USAGE;
	}
	cmd = argv[1];
	argc--;
	argv++;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 't':
			o.tenant = optarg;
			break;
		case 's':
			o.since = optarg;
			break;
		case 'j':
			o.json = 1;
			break;
		case 'o':
			o.older_than = optarg;
			break;
		default:
			return CTL_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "palyractl: journal %s: unexpected argument "
		    "%s\n", cmd, argv[optind]);
		return CTL_EXIT_USAGE;
	}
	if (o.tenant != NULL && !name_ok(o.tenant, 0)) {
		fprintf(stderr, "palyractl: journal %s: invalid tenant name\n",
		    cmd);
		return CTL_EXIT_USAGE;
	}
	if (o.since != NULL && (strcmp(cmd, "export") != 0 ||
	    !name_ok(o.since, 1))) {
		fprintf(stderr, "palyractl: journal %s: --since takes a "
		    "chain_seq and only with export\n", cmd);
		return CTL_EXIT_USAGE;
	}
	if ((o.older_than != NULL) != (strcmp(cmd, "prune") == 0)) {
		fprintf(stderr, "palyractl: journal %s: --older-than is for "
		    "prune, and prune needs it\n", cmd);
		return CTL_EXIT_USAGE;
	}
	if ((strcmp(cmd, "export") == 0 || strcmp(cmd, "backup") == 0 ||
	    strcmp(cmd, "prune") == 0) && o.tenant == NULL) {
		fprintf(stderr, "palyractl: journal %s needs --tenant\n", cmd);
		return CTL_EXIT_USAGE;
	}
	if (strcmp(cmd, "pubkey") == 0 && o.tenant != NULL) {
		fprintf(stderr, "palyractl: journal pubkey takes no "
		    "--tenant\n");
		return CTL_EXIT_USAGE;
	}
	if (strcmp(cmd, "verify") == 0)
		return cmd_verify(ctx, &o);
	if (strcmp(cmd, "checkpoint") == 0)
		return cmd_checkpoint(ctx, &o);
	if (strcmp(cmd, "pubkey") == 0)
		return cmd_pubkey(ctx, &o);
	if (strcmp(cmd, "export") == 0)
		return cmd_export(ctx, &o);
	if (strcmp(cmd, "backup") == 0)
		return cmd_backup(ctx, &o);
	if (strcmp(cmd, "prune") == 0)
		return cmd_prune(ctx, &o);
	fprintf(stderr, "palyractl: unknown journal command %s\n", cmd);
	return CTL_EXIT_USAGE;
}
