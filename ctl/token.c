/*
 * token.c: `palyractl token list` (GET /admin/v1/tokens, every page) and
 * `palyractl token revoke TOKEN_ID` (DELETE /admin/v1/tokens/TOKEN_ID),
 * with the admin token, and the durations of `token create --expires`.
 * Runs in palyractl. A listing never holds a token nor its hash; server
 * text is printed with control characters replaced.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "ctl.h"

#define CTL_TOKEN_PAGES_MAX 4096 /* pages of one listing: a loop guard */

long long
ctl_duration_seconds(const char *s)
{
	unsigned long long n = 0;
	const char *p = s;

	if (*p < '0' || *p > '9')
		return -1;
	while (*p >= '0' && *p <= '9') {
		n = n * 10 + (unsigned long long)(*p - '0');
		if (n > 100000000000ULL)
			return -1;
		p++;
	}
	if (strcmp(p, "s") == 0)
		;
	else if (strcmp(p, "m") == 0)
		n *= 60;
	else if (strcmp(p, "h") == 0)
		n *= 3600;
	else if (strcmp(p, "d") == 0)
		n *= 86400;
	else
		return -1;
	return n > 0 ? (long long)n : -1;
}

/* A server string for a terminal: printable ASCII only. */
static void
print_clean(const char *s, int width)
{
	char buf[80];
	size_t i;

	for (i = 0; s[i] != '\0' && i < sizeof(buf) - 1; i++)
		buf[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	buf[i] = '\0';
	printf("%-*s", width, buf);
}

static void
print_time(json_int_t t, int width)
{
	char buf[32];
	time_t tt = (time_t)t;
	struct tm tm;

	if (t <= 0 || gmtime_r(&tt, &tm) == NULL)
		snprintf(buf, sizeof(buf), "never");
	else
		strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	printf("%-*s", width, buf);
}

static const char *
str_of(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s != NULL ? s : "?";
}

int
ctl_cmd_token_list(const struct ctl_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tenant", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	const char *tenant = NULL, *next;
	char path[512], err[512], *reply = NULL, *esc_t = NULL, *esc_a = NULL;
	json_t *all, *root, *arr, *o;
	json_error_t jerr;
	char after[128] = "";
	long status = 0;
	size_t i;
	int ch, pages, ret = CTL_EXIT_FAIL;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch != 't') {
			fprintf(stderr, "usage: palyractl token list "
					"[--tenant name]\n");
			return CTL_EXIT_USAGE;
		}
		tenant = optarg;
	}
	if (optind != argc) {
		fprintf(stderr, "usage: palyractl token list [--tenant name]\n");
		return CTL_EXIT_USAGE;
	}
	if ((all = json_array()) == NULL)
		return CTL_EXIT_FAIL;
	if (tenant != NULL &&
	    (esc_t = curl_easy_escape(NULL, tenant, 0)) == NULL)
		goto out;
	for (pages = 0; pages < CTL_TOKEN_PAGES_MAX; pages++) {
		if (after[0] != '\0' &&
		    (esc_a = curl_easy_escape(NULL, after, 0)) == NULL)
			goto out;
		snprintf(path, sizeof(path), "/admin/v1/tokens%s%s%s%s%s",
		    esc_t != NULL || esc_a != NULL ? "?" : "",
		    esc_t != NULL ? "tenant=" : "", esc_t != NULL ? esc_t : "",
		    esc_a != NULL ? (esc_t != NULL ? "&after=" : "after=") : "",
		    esc_a != NULL ? esc_a : "");
		curl_free(esc_a);
		esc_a = NULL;
		if (ctl_admin_get(ctx, path, &status, &reply, err,
			sizeof(err)) < 0) {
			fprintf(stderr, "palyractl: token list: %s\n", err);
			goto out;
		}
		if (status != 200) {
			ctl_admin_error_message(reply, status, err, sizeof(err));
			fprintf(stderr, "palyractl: token list: %s\n", err);
			goto out;
		}
		root = json_loads(reply, 0, &jerr);
		free(reply);
		reply = NULL;
		arr = json_object_get(root, "tokens");
		if (!json_is_array(arr)) {
			json_decref(root);
			fprintf(stderr, "palyractl: token list: malformed "
					"reply\n");
			goto out;
		}
		json_array_extend(all, arr);
		next = json_string_value(json_object_get(root, "next_after"));
		if (next == NULL || strlen(next) >= sizeof(after) ||
		    strcmp(next, after) == 0) {
			json_decref(root);
			break;
		}
		snprintf(after, sizeof(after), "%s", next);
		json_decref(root);
	}
	if (ctx->json) {
		json_t *wrap = json_pack("{s:O}", "tokens", all);
		char *text = wrap != NULL ? json_dumps(wrap, JSON_COMPACT) :
					    NULL;

		json_decref(wrap);
		if (text == NULL)
			goto out;
		printf("%s\n", text);
		free(text);
	} else {
		printf("%-17s %-16s %-16s %-9s %-21s %-21s %s\n", "TOKEN_ID",
		    "TENANT", "PRINCIPAL", "ROLE", "CREATED", "EXPIRES",
		    "REVOKED");
		json_array_foreach(all, i, o) {
			print_clean(str_of(o, "token_id"), 17);
			putchar(' ');
			print_clean(str_of(o, "tenant"), 16);
			putchar(' ');
			print_clean(str_of(o, "principal"), 16);
			putchar(' ');
			print_clean(str_of(o, "role"), 9);
			putchar(' ');
			print_time(json_integer_value(
				       json_object_get(o, "created_unix")), 21);
			putchar(' ');
			print_time(json_integer_value(
				       json_object_get(o, "expires_unix")), 21);
			printf(" %s\n",
			    json_is_true(json_object_get(o, "revoked")) ?
				"yes" : "no");
		}
	}
	ret = CTL_EXIT_OK;
out:
	curl_free(esc_t);
	free(reply);
	json_decref(all);
	return ret;
}

int
ctl_cmd_token_revoke(const struct ctl_ctx *ctx, int argc, char **argv)
{
	char path[512], err[512], *reply = NULL, *esc;
	long status = 0;

	if (argc != 2 || argv[1][0] == '\0') {
		fprintf(stderr, "usage: palyractl token revoke token_id\n");
		return CTL_EXIT_USAGE;
	}
	if ((esc = curl_easy_escape(NULL, argv[1], 0)) == NULL)
		return CTL_EXIT_FAIL;
	if ((size_t)snprintf(path, sizeof(path), "/admin/v1/tokens/%s", esc) >=
	    sizeof(path)) {
		curl_free(esc);
		fprintf(stderr, "palyractl: token revoke: id too long\n");
		return CTL_EXIT_USAGE;
	}
	curl_free(esc);
	if (ctl_admin_delete(ctx, path, &status, &reply, err, sizeof(err)) <
	    0) {
		fprintf(stderr, "palyractl: token revoke: %s\n", err);
		return CTL_EXIT_FAIL;
	}
	if (status != 200) {
		ctl_admin_error_message(reply, status, err, sizeof(err));
		fprintf(stderr, "palyractl: token revoke: %s\n", err);
		free(reply);
		return CTL_EXIT_FAIL;
	}
	free(reply);
	if (ctx->json)
		ctl_print_json(json_pack("{s:s, s:b}", "token_id", argv[1],
		    "revoked", 1));
	else
		printf("token %s revoked\n", argv[1]);
	return CTL_EXIT_OK;
}
