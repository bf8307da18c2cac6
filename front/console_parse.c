/*
 * console_parse.c: the small parsers of /console/v1 requests that need no
 * context (tests/unit/test_console.c): how deep a JSON text nests, before
 * jansson sees it; a cookie's value in a Cookie header; an unsigned query
 * parameter.
 *
 * Process: palyra-front. Pure: no I/O, no allocation.
 */
#include <stdint.h>
#include <string.h>

#include "console.h"

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
