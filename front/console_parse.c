/*
 * console_parse.c: the small parsers of /console/v1 requests that need no
 * context (tests/unit/test_console.c): how deep a JSON text nests, before
 * jansson sees it; a cookie's value in a Cookie header; an unsigned query
 * parameter; a budget id.
 *
 * Process: palyra-front. Pure: no I/O, no allocation.
 */
#include <stdint.h>
#include <string.h>

#include "config.h"
#include "console.h"
#include "palyra/v1/gateway.pb-c.h"

/* 1 when text nests arrays and objects at most max deep. */
int
fe_console_json_depth_ok(const char *p, size_t len, int max)
{
	int depth = 0, in_str = 0, esc = 0;
	size_t i;

	for (i = 0; i < len; i++) {
		char ch = p[i];

		if (in_str) {
			if (esc)
				esc = 0;
			else if (ch == '\\')
				esc = 1;
			else if (ch == '"')
				in_str = 0;
			continue;
		}
		if (ch == '"')
			in_str = 1;
		else if (ch == '{' || ch == '[') {
			if (++depth > max)
				return 0;
		} else if (ch == '}' || ch == ']')
			depth--;
	}
	return 1;
}

/* A query parameter as an unsigned integer in [min, max], or -1. */
int64_t
fe_console_query_uint(const char *v, int64_t min, int64_t max)
{
	int64_t n = 0;

	if (v == NULL || *v == '\0' || strlen(v) > 19)
		return -1;
	for (; *v != '\0'; v++) {
		if (*v < '0' || *v > '9')
			return -1;
		if (n > (INT64_MAX - (*v - '0')) / 10)
			return -1;
		n = n * 10 + (*v - '0');
	}
	return n < min || n > max ? -1 : n;
}

/* The value of cookie name in a Cookie header, into out. */
int
fe_console_cookie_value(
    const char *header, const char *name, char *out, size_t outsize)
{
	const char *p = header, *v, *end;
	size_t nlen = strlen(name);

	while (p != NULL && *p != '\0') {
		while (*p == ' ' || *p == ';')
			p++;
		end = strchr(p, ';');
		if (strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
			v = p + nlen + 1;
			if (end == NULL)
				end = v + strlen(v);
			if ((size_t)(end - v) >= outsize)
				return -1;
			memcpy(out, v, end - v);
			out[end - v] = '\0';
			return 0;
		}
		p = end;
	}
	return -1;
}

/* The index of word in words (NULL-terminated), or -1. */
static int
word_index(const char *const *words, const char *word, size_t len)
{
	int i;

	for (i = 0; words[i] != NULL; i++)
		if (strlen(words[i]) == len && memcmp(words[i], word, len) == 0)
			return i;
	return -1;
}

int
fe_console_budget_id(const char *id, struct fe_budget_id *out)
{
	static const char *const scopes[] = {"tenant", "agent", "principal",
	    NULL};
	static const char *const units[] = {"tokens", "cost", NULL};
	static const char *const periods[] = {"day", "month", "total", NULL};
	const char *part[4], *end;
	size_t len[4], n = 0;
	int scope, unit, period;

	/* Split at every colon: an empty part is malformed. */
	for (;;) {
		if (n == 4)
			return -1;
		end = strchr(id, ':');
		part[n] = id;
		len[n] = end != NULL ? (size_t)(end - id) : strlen(id);
		if (len[n] == 0)
			return -1;
		n++;
		if (end == NULL)
			break;
		id = end + 1;
	}
	if (n < 3 || (scope = word_index(scopes, part[0], len[0])) < 0 ||
	    (unit = word_index(units, part[n - 2], len[n - 2])) < 0 ||
	    (period = word_index(periods, part[n - 1], len[n - 1])) < 0)
		return -1;
	/* A tenant's budget names no subject; the others one name. */
	if ((scope == 0) != (n == 3))
		return -1;
	memset(out, 0, sizeof(*out));
	if (n == 4) {
		if (len[1] > NAME_MAX_LEN)
			return -1;
		memcpy(out->subject, part[1], len[1]);
		if (!cfg_name_valid(out->subject))
			return -1;
	}
	out->scope = PALYRA__V1__BUDGET_SCOPE__BUDGET_SCOPE_TENANT + scope;
	out->unit = PALYRA__V1__BUDGET_UNIT__BUDGET_UNIT_TOKENS + unit;
	out->period = PALYRA__V1__BUDGET_PERIOD__BUDGET_PERIOD_DAY + period;
	return 0;
}
