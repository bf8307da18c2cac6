/*
 * tools.c: the built-in tools of palyra-worker (DESIGN section 9) and the
 * one entry point every model tool call goes through (worker/tools.h).
 *
 * A tool call arrives as a name and a JSON object text written by a model:
 * untrusted. The text is bounded (WRK_TOOL_ARGS_MAX bytes, nesting at most
 * WRK_TOOL_ARGS_DEPTH) before jansson parses it, and every answer, success
 * or not, is a result the model can read: an unknown tool or bad arguments
 * are results with is_error set, never a failure of the run.
 *
 * Built-ins: time.now (the current time, RFC 3339 UTC and Unix ms). Runs
 * in the worker's sandbox; touches nothing but the clock.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "limits.h"
#include "tools.h"

/* A tool name longer than this is cut in the "unknown tool" result. */
#define TOOL_NAME_SHOWN_MAX	64

struct builtin {
	const char	*name;
	int		(*run)(json_t *args, char **result, int *is_error);
};

/* A malloc'd result text, or -ENOMEM. */
static int
result_printf(char **result, const char *fmt, ...)
{
	va_list	 ap;
	int	 n;

	va_start(ap, fmt);
	n = vasprintf(result, fmt, ap);
	va_end(ap);
	if (n < 0) {
		*result = NULL;
		return -ENOMEM;
	}
	if ((size_t)n > WRK_TOOL_RESULT_MAX)
		(*result)[WRK_TOOL_RESULT_MAX] = '\0';
	return 0;
}

static int
time_now(json_t *args, char **result, int *is_error)
{
	struct timespec	 ts;
	struct tm	 tm;
	const char	*key, *zone;
	json_t		*value;
	char		 stamp[64];
	long long	 ms;

	json_object_foreach(args, key, value) {
		if (strcmp(key, "timezone") != 0) {
			*is_error = 1;
			return result_printf(result, "time.now: unknown "
			    "argument \"%.64s\" (only \"timezone\")", key);
		}
		zone = json_string_value(value);
		if (zone == NULL || strcmp(zone, "UTC") != 0) {
			*is_error = 1;
			return result_printf(result, "time.now: unsupported "
			    "timezone (only \"UTC\")");
		}
	}
	if (clock_gettime(CLOCK_REALTIME, &ts) < 0 ||
	    gmtime_r(&ts.tv_sec, &tm) == NULL) {
		*is_error = 1;
		return result_printf(result, "time.now: clock unavailable");
	}
	ms = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	if (strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
		*is_error = 1;
		return result_printf(result, "time.now: clock unavailable");
	}
	*is_error = 0;
	return result_printf(result,
	    "{\"utc\":\"%s.%03ldZ\",\"unix_ms\":%lld,\"timezone\":\"UTC\"}",
	    stamp, ts.tv_nsec / 1000000, ms);
}

static const struct builtin builtins[] = {
	{ "time.now", time_now },
};

/*
 * The deepest nesting of objects and arrays in a JSON text, strings
 * skipped, stopping once it passes limit: checked before jansson parses,
 * so that a hostile text costs no recursion.
 */
static int
json_depth_exceeds(const char *s, size_t len, int limit)
{
	size_t	 i;
	int	 depth = 0, in_string = 0;

	for (i = 0; i < len; i++) {
		if (in_string) {
			if (s[i] == '\\')
				i++;
			else if (s[i] == '"')
				in_string = 0;
			continue;
		}
		switch (s[i]) {
		case '"':
			in_string = 1;
			break;
		case '{':
		case '[':
			if (++depth > limit)
				return 1;
			break;
		case '}':
		case ']':
			depth--;
			break;
		}
	}
	return 0;
}

/*
 * Provider APIs allow only [a-zA-Z0-9_-] in a function name: the providers
 * spell a tool's '.' as '_' on the wire (proto.c) and map the model's
 * calls back; a call that still uses the wire spelling (time_now) finds
 * its tool too.
 */
static int
name_matches(const char *tool, const char *name)
{
	for (; *tool != '\0'; tool++, name++)
		if (*name != *tool && !(*tool == '.' && *name == '_'))
			return 0;
	return *name == '\0';
}

/* Copies name for a message: bounded, printable ASCII only. */
static void
name_shown(const char *name, char *out, size_t size)
{
	size_t	 i;

	for (i = 0; name[i] != '\0' && i + 1 < size; i++)
		out[i] = (name[i] >= 0x20 && name[i] < 0x7f) ? name[i] : '?';
	out[i] = '\0';
}

int
wrk_tool_run(struct wrk_run *run, const char *name, const char *args_json,
    char **result, int *is_error)
{
	const struct builtin *tool = NULL;
	char		 shown[TOOL_NAME_SHOWN_MAX + 1];
	json_error_t	 jerr;
	json_t		*args;
	size_t		 i, len;
	int		 r;

	(void)run;
	*result = NULL;
	*is_error = 1;
	memset(&jerr, 0, sizeof(jerr));
	if (name == NULL)
		name = "";
	for (i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++)
		if (name_matches(builtins[i].name, name))
			tool = &builtins[i];
	if (tool == NULL) {
		name_shown(name, shown, sizeof(shown));
		return result_printf(result, "unknown tool %s", shown);
	}
	if (args_json == NULL)
		args_json = "";
	len = strnlen(args_json, WRK_TOOL_ARGS_MAX + 1);
	if (len > WRK_TOOL_ARGS_MAX)
		return result_printf(result, "%s: arguments longer than %d "
		    "bytes", tool->name, WRK_TOOL_ARGS_MAX);
	if (json_depth_exceeds(args_json, len, WRK_TOOL_ARGS_DEPTH))
		return result_printf(result, "%s: arguments nested deeper "
		    "than %d", tool->name, WRK_TOOL_ARGS_DEPTH);
	if (strspn(args_json, " \t\r\n") == len)
		args = json_object();
	else
		args = json_loadb(args_json, len, JSON_REJECT_DUPLICATES,
		    &jerr);
	if (args == NULL)
		return result_printf(result, "%s: arguments are not valid "
		    "JSON: %s", tool->name, jerr.text);
	if (!json_is_object(args)) {
		json_decref(args);
		return result_printf(result, "%s: arguments must be a JSON "
		    "object", tool->name);
	}
	r = tool->run(args, result, is_error);
	json_decref(args);
	return r;
}

const char *
wrk_tools_declarations(struct wrk_run *run)
{
	(void)run;
	return "[{\"type\":\"function\",\"function\":{"
	    "\"name\":\"time.now\","
	    "\"description\":\"The current date and time, as RFC 3339 in UTC "
	    "and as Unix milliseconds.\","
	    "\"parameters\":{\"type\":\"object\",\"properties\":{"
	    "\"timezone\":{\"type\":\"string\",\"enum\":[\"UTC\"],"
	    "\"description\":\"Only UTC is supported.\"}},"
	    "\"additionalProperties\":false}}}]";
}
