/*
 * test_tools.c: unit tests of worker/tools.c, the built-in tools and the
 * one entry point of every model tool call.
 *
 * tools.c runs in palyra-worker and is not part of the common library: it
 * is compiled into this test directly. It touches no run state, so the
 * run argument is NULL throughout.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "../../worker/tools.c"

/* Runs a tool; returns the result, and its error flag in *is_error. */
static char *
call(const char *name, const char *args, int *is_error)
{
	char	*result = NULL;

	*is_error = -1;
	assert_int_equal(wrk_tool_run(NULL, name, args, &result, is_error), 0);
	assert_non_null(result);
	assert_true(*is_error == 0 || *is_error == 1);
	assert_true(strlen(result) <= WRK_TOOL_RESULT_MAX);
	return result;
}

static long long
now_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
check_time_result(const char *result)
{
	json_error_t	 jerr;
	json_t		*o;
	const char	*utc;
	struct tm	 tm;
	long long	 ms, before = now_ms();
	char		*end;
	time_t		 secs;

	o = json_loads(result, 0, &jerr);
	assert_non_null(o);
	utc = json_string_value(json_object_get(o, "utc"));
	assert_non_null(utc);
	assert_true(json_is_integer(json_object_get(o, "unix_ms")));
	ms = json_integer_value(json_object_get(o, "unix_ms"));
	/* Taken just before: within a few seconds of now. */
	assert_true(ms <= before && ms > before - 5000);
	/* RFC 3339 in UTC with milliseconds: 2026-12-02T05:13:00.123Z */
	assert_int_equal(strlen(utc), 24);
	memset(&tm, 0, sizeof(tm));
	end = strptime(utc, "%Y-%m-%dT%H:%M:%S", &tm);
	assert_non_null(end);
	assert_true(end[0] == '.' && end[4] == 'Z' && end[5] == '\0');
	secs = timegm(&tm);
	assert_int_equal((long long)secs, ms / 1000);
	assert_int_equal(strtol(end + 1, NULL, 10), ms % 1000);
	assert_string_equal(
	    json_string_value(json_object_get(o, "timezone")), "UTC");
	json_decref(o);
}

static void
test_time_now(void **state)
{
	const char	*ok[] = { "", "   ", "{}", "{\"timezone\": \"UTC\"}",
	    " { \"timezone\" : \"UTC\" } ", NULL };
	char		*r;
	int		 err;
	size_t		 i;

	(void)state;
	for (i = 0; ok[i] != NULL; i++) {
		r = call("time.now", ok[i], &err);
		assert_int_equal(err, 0);
		check_time_result(r);
		free(r);
	}
	r = call("time.now", NULL, &err);
	assert_int_equal(err, 0);
	check_time_result(r);
	free(r);
	/* The spelling on the wire of provider APIs. */
	r = call("time_now", "{}", &err);
	assert_int_equal(err, 0);
	check_time_result(r);
	free(r);
	r = call("time_now_", "{}", &err);
	assert_int_equal(err, 1);
	free(r);
	r = call("time.no", "{}", &err);
	assert_int_equal(err, 1);
	free(r);
}

static void
test_time_now_bad_arguments(void **state)
{
	static const struct {
		const char	*args;
		const char	*want;
	} bad[] = {
		{ "{\"timezone\": \"Europe/Paris\"}", "unsupported timezone" },
		{ "{\"timezone\": 3}", "unsupported timezone" },
		{ "{\"zone\": \"UTC\"}", "unknown argument \"zone\"" },
		{ "[]", "must be a JSON object" },
		{ "\"UTC\"", "not valid JSON" },
		{ "{\"timezone\": ", "not valid JSON" },
		{ "{\"timezone\": \"UTC\", \"timezone\": \"UTC\"}",
		    "not valid JSON" },
		{ "{} {}", "not valid JSON" },
	};
	char	*r;
	int	 err;
	size_t	 i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		r = call("time.now", bad[i].args, &err);
		assert_int_equal(err, 1);
		if (strstr(r, bad[i].want) == NULL)
			fail_msg("%s: got \"%s\"", bad[i].args, r);
		assert_int_equal(strncmp(r, "time.now: ", 10), 0);
		free(r);
	}
}

static void
test_unknown_tool(void **state)
{
	char	 longname[200];
	char	*r;
	int	 err;

	(void)state;
	r = call("no.such", "{}", &err);
	assert_int_equal(err, 1);
	assert_string_equal(r, "unknown tool no.such");
	free(r);
	/* Its arguments are not even looked at. */
	r = call("shell", "not json at all", &err);
	assert_int_equal(err, 1);
	assert_string_equal(r, "unknown tool shell");
	free(r);
	r = call("", "{}", &err);
	assert_int_equal(err, 1);
	assert_string_equal(r, "unknown tool ");
	free(r);
	/* A long or binary name is cut and made printable. */
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	longname[3] = '\n';
	r = call(longname, "{}", &err);
	assert_int_equal(err, 1);
	assert_int_equal(strlen(r), strlen("unknown tool ") +
	    TOOL_NAME_SHOWN_MAX);
	assert_null(strchr(r, '\n'));
	assert_memory_equal(r, "unknown tool aaa?aa", 19);
	free(r);
}

static void
test_argument_bounds(void **state)
{
	char	*args, *r;
	int	 err;
	size_t	 n;

	(void)state;
	/* Nesting over WRK_TOOL_ARGS_DEPTH is refused before parsing. */
	n = WRK_TOOL_ARGS_DEPTH + 1;
	args = malloc(2 * n + 1);
	assert_non_null(args);
	memset(args, '[', n);
	memset(args + n, ']', n);
	args[2 * n] = '\0';
	r = call("time.now", args, &err);
	assert_int_equal(err, 1);
	assert_non_null(strstr(r, "nested deeper than"));
	free(r);
	free(args);
	/* Brackets inside strings do not count. */
	r = call("time.now", "{\"timezone\": \"[[[[[[[[[[[[[[[[[[[[[[[\"}",
	    &err);
	assert_int_equal(err, 1);
	assert_non_null(strstr(r, "unsupported timezone"));
	free(r);
	/* WRK_TOOL_ARGS_MAX bytes at most. */
	args = malloc(WRK_TOOL_ARGS_MAX + 2);
	assert_non_null(args);
	memset(args, ' ', WRK_TOOL_ARGS_MAX + 1);
	args[0] = '{';
	args[WRK_TOOL_ARGS_MAX] = '}';
	args[WRK_TOOL_ARGS_MAX + 1] = '\0';
	r = call("time.now", args, &err);
	assert_int_equal(err, 1);
	assert_non_null(strstr(r, "arguments longer than"));
	free(r);
	/* One byte less fits. */
	args[WRK_TOOL_ARGS_MAX - 1] = '}';
	args[WRK_TOOL_ARGS_MAX] = '\0';
	r = call("time.now", args, &err);
	assert_int_equal(err, 0);
	free(r);
	free(args);
}

static void
test_declarations(void **state)
{
	json_error_t	 jerr;
	json_t		*decl, *fn;
	const char	*text;

	(void)state;
	text = wrk_tools_declarations(NULL);
	assert_non_null(text);
	decl = json_loads(text, 0, &jerr);
	assert_non_null(decl);
	assert_true(json_is_array(decl));
	assert_int_equal(json_array_size(decl), 1);
	assert_string_equal(json_string_value(json_object_get(
	    json_array_get(decl, 0), "type")), "function");
	fn = json_object_get(json_array_get(decl, 0), "function");
	assert_string_equal(json_string_value(json_object_get(fn, "name")),
	    "time.now");
	assert_non_null(json_string_value(json_object_get(fn,
	    "description")));
	assert_string_equal(json_string_value(json_object_get(
	    json_object_get(fn, "parameters"), "type")), "object");
	json_decref(decl);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_time_now),
		cmocka_unit_test(test_time_now_bad_arguments),
		cmocka_unit_test(test_unknown_tool),
		cmocka_unit_test(test_argument_bounds),
		cmocka_unit_test(test_declarations),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
