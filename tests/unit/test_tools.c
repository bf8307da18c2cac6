/*
 * test_tools.c: unit tests of worker/tools.c, the tool registry of the
 * gate: the built-in tools, argument checks against their schemas, the
 * agent's policy (first matching glob wins, then the defaults), client
 * tool declarations, the declarations offered to the model and the
 * arguments summary of an approval.
 *
 * tools.c runs in palyra-worker and is not part of the common library: it
 * is compiled into this test directly, with a stand-in for the schema of
 * http.fetch (worker/fetch.c), the memory tools' real schemas (memory.h)
 * and stand-ins for the asynchronous starts (never called here). Runs
 * are plain structs built here.
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

const char wrk_fetch_schema[] = "{\"type\":\"object\",\"properties\":{"
    "\"url\":{\"type\":\"string\"}},\"required\":[\"url\"],"
    "\"additionalProperties\":false}";
const char wrk_memory_search_schema[] = WRK_MEMORY_SEARCH_SCHEMA;
const char wrk_memory_ingest_schema[] = WRK_MEMORY_INGEST_SCHEMA;

int
wrk_fetch_start(struct wrk_run *run, const json_t *args, wrk_fetch_fn done,
    void *arg)
{
	(void)run; (void)args; (void)done; (void)arg;
	return -ENOSYS;
}

void
wrk_fetch_cancel(struct wrk_run *run)
{
	(void)run;
}

int
wrk_memory_tool_search(struct wrk_run *run, const json_t *args,
    wrk_memory_tool_fn done, void *arg)
{
	(void)run; (void)args; (void)done; (void)arg;
	return -ENOSYS;
}

int
wrk_memory_tool_ingest(struct wrk_run *run, const json_t *args,
    wrk_memory_tool_fn done, void *arg)
{
	(void)run; (void)args; (void)done; (void)arg;
	return -ENOSYS;
}

void
wrk_memory_tool_cancel(struct wrk_run *run)
{
	(void)run;
}

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
		{ "{\"timezone\": \"Europe/Paris\"}",
		    "invalid arguments: /timezone" },
		{ "{\"timezone\": 3}", "invalid arguments: /timezone" },
		{ "{\"zone\": \"UTC\"}", "invalid arguments: " },
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
	assert_non_null(strstr(r, "invalid arguments: /timezone"));
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

/* A run with the given tool rules ("pattern=policy" pairs) and client
 * tools (name, schema pairs); freed by run_free_test(). */
static struct wrk_run *
run_make(const char *const *rules, size_t nrules,
    const char *const *tools, size_t ntools, int *setup_status,
    char *why, size_t whylen)
{
	Palyra__Ipc__AgentConfig agent = PALYRA__IPC__AGENT_CONFIG__INIT;
	Palyra__Ipc__ToolRule	 rule[8], *rp[8];
	Palyra__V1__ToolDeclaration decl[80], *dp[80];
	struct wrk_run		*run;
	char			 buf[8][64];
	size_t			 i;

	assert_true(nrules <= 8 && ntools <= 80);
	run = calloc(1, sizeof(*run));
	assert_non_null(run);
	run->agent = (char *)"assistant";
	agent.name = (char *)"assistant";
	for (i = 0; i < nrules; i++) {
		palyra__ipc__tool_rule__init(&rule[i]);
		snprintf(buf[i], sizeof(buf[i]), "%s", rules[i]);
		*strchr(buf[i], '=') = '\0';
		rule[i].pattern = buf[i];
		rule[i].policy = buf[i] + strlen(buf[i]) + 1;
		rp[i] = &rule[i];
	}
	agent.n_tools = nrules;
	agent.tools = rp;
	for (i = 0; i < ntools; i++) {
		palyra__v1__tool_declaration__init(&decl[i]);
		decl[i].name = (char *)tools[2 * i];
		decl[i].description = (char *)"a client tool";
		decl[i].parameters_json = (char *)tools[2 * i + 1];
		dp[i] = &decl[i];
	}
	why[0] = '\0';
	*setup_status = wrk_tools_setup(run, &agent, dp, ntools, why, whylen);
	return run;
}

static void
run_free_test(struct wrk_run *run)
{
	wrk_tools_free(run);
	free(run);
}

static enum wrk_tool_policy
policy(struct wrk_run *run, const char *name)
{
	struct wrk_tool_ref ref;

	if (!wrk_tool_find(run, name, &ref))
		return (enum wrk_tool_policy)-1;
	return wrk_tool_policy_of(run, &ref);
}

static void
test_policy(void **state)
{
	static const char *const none[] = { NULL };
	static const char *const rules[] = { "time.now=deny",
	    "http.*=allow", "*=ask" };
	static const char *const first[] = { "*=allow", "time.now=deny" };
	static const char *const tools[] = { "shell.run", "{}",
	    "ui.confirm", "" };
	struct wrk_run	*run;
	char		 why[256];
	int		 st;

	(void)state;
	/* Defaults: built-ins without side effects and client tools are
	 * allowed, http.fetch asks, anything else is unknown. */
	run = run_make(none, 0, tools, 2, &st, why, sizeof(why));
	assert_int_equal(st, 0);
	assert_int_equal(policy(run, "time.now"), WRK_TOOL_ALLOW);
	assert_int_equal(policy(run, "time_now"), WRK_TOOL_ALLOW);
	assert_int_equal(policy(run, "http.fetch"), WRK_TOOL_ASK);
	/* memory.search reads, memory.ingest stores: it asks. */
	assert_int_equal(policy(run, "memory.search"), WRK_TOOL_ALLOW);
	assert_int_equal(policy(run, "memory_ingest"), WRK_TOOL_ASK);
	assert_int_equal(policy(run, "shell.run"), WRK_TOOL_ALLOW);
	assert_int_equal(policy(run, "shell_run"), WRK_TOOL_ALLOW);
	assert_int_equal((int)policy(run, "rm"), -1);
	run_free_test(run);
	/* Globs, the first match wins. */
	run = run_make(rules, 3, tools, 2, &st, why, sizeof(why));
	assert_int_equal(st, 0);
	assert_int_equal(policy(run, "time.now"), WRK_TOOL_DENY);
	assert_int_equal(policy(run, "http.fetch"), WRK_TOOL_ALLOW);
	assert_int_equal(policy(run, "shell.run"), WRK_TOOL_ASK);
	assert_int_equal(policy(run, "ui.confirm"), WRK_TOOL_ASK);
	run_free_test(run);
	run = run_make(first, 2, tools, 0, &st, why, sizeof(why));
	assert_int_equal(policy(run, "time.now"), WRK_TOOL_ALLOW);
	run_free_test(run);
}

static void
test_client_tools(void **state)
{
	static const struct {
		const char	*name;
		const char	*schema;
		const char	*want;
	} bad[] = {
		{ "", "{}", "invalid tool name" },
		{ "has space", "{}", "invalid tool name" },
		{ "x/y", "{}", "invalid tool name" },
		{ "time.now", "{}", "name of a built-in" },
		{ "time_now", "{}", "name of a built-in" },
		{ "ok", "[]", "not a JSON schema object" },
		{ "ok", "{\"type\":", "not valid JSON" },
		{ "ok", "{\"$ref\":\"#/x\"}", "unsupported keyword" },
		{ "ok", "{\"type\":\"object\",\"properties\":{\"a\":"
		    "{\"$ref\":\"#\"}}}", "/properties/a" },
	};
	const char	*pair[4];
	char		 why[256], name[80], *big;
	const char	*many[2 * 65];
	struct wrk_run	*run;
	size_t		 i;
	int		 st;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		pair[0] = bad[i].name;
		pair[1] = bad[i].schema;
		run = run_make(NULL, 0, pair, 1, &st, why, sizeof(why));
		assert_int_equal(st, -EINVAL);
		if (strstr(why, bad[i].want) == NULL)
			fail_msg("%s %s: got \"%s\"", bad[i].name,
			    bad[i].schema, why);
		run_free_test(run);
	}
	/* Twice the same name. */
	pair[0] = pair[2] = "ask.user";
	pair[1] = pair[3] = "{}";
	run = run_make(NULL, 0, pair, 2, &st, why, sizeof(why));
	assert_int_equal(st, -EINVAL);
	assert_non_null(strstr(why, "declared twice"));
	run_free_test(run);
	/* 65 characters of name; 64 fit. */
	memset(name, 'n', 65);
	name[65] = '\0';
	pair[0] = name;
	pair[1] = "{}";
	run = run_make(NULL, 0, pair, 1, &st, why, sizeof(why));
	assert_int_equal(st, -EINVAL);
	run_free_test(run);
	name[64] = '\0';
	run = run_make(NULL, 0, pair, 1, &st, why, sizeof(why));
	assert_int_equal(st, 0);
	run_free_test(run);
	/* A schema over 16 KiB. */
	big = malloc(WRK_CLIENT_TOOL_SCHEMA_MAX + 2);
	assert_non_null(big);
	memset(big, ' ', WRK_CLIENT_TOOL_SCHEMA_MAX + 1);
	big[0] = '{';
	big[WRK_CLIENT_TOOL_SCHEMA_MAX] = '}';
	big[WRK_CLIENT_TOOL_SCHEMA_MAX + 1] = '\0';
	pair[0] = "big";
	pair[1] = big;
	run = run_make(NULL, 0, pair, 1, &st, why, sizeof(why));
	assert_int_equal(st, -EINVAL);
	assert_non_null(strstr(why, "longer than"));
	run_free_test(run);
	free(big);
	/* 65 tools; 64 fit. */
	for (i = 0; i < 65; i++) {
		char	*n = malloc(16);

		assert_non_null(n);
		snprintf(n, 16, "t%zu", i);
		many[2 * i] = n;
		many[2 * i + 1] = "{}";
	}
	run = run_make(NULL, 0, many, 65, &st, why, sizeof(why));
	assert_int_equal(st, -EINVAL);
	assert_non_null(strstr(why, "too many tools"));
	run_free_test(run);
	run = run_make(NULL, 0, many, 64, &st, why, sizeof(why));
	assert_int_equal(st, 0);
	assert_int_equal(run->nclient_tools, 64);
	run_free_test(run);
	for (i = 0; i < 65; i++)
		free((char *)many[2 * i]);
}

static void
test_client_arguments(void **state)
{
	static const char *const tools[] = { "ask.user",
	    "{\"type\":\"object\",\"properties\":{\"question\":{\"type\":"
	    "\"string\"}},\"required\":[\"question\"],"
	    "\"additionalProperties\":false}" };
	struct wrk_tool_ref ref;
	struct wrk_run	*run;
	json_t		*args;
	char		 why[256], *result;
	int		 st;

	(void)state;
	run = run_make(NULL, 0, tools, 1, &st, why, sizeof(why));
	assert_int_equal(st, 0);
	assert_true(wrk_tool_find(run, "ask_user", &ref));
	assert_string_equal(ref.name, "ask.user");
	assert_int_equal(wrk_tool_check_args(&ref, "{\"question\":\"ok?\"}",
	    &args, &result), 0);
	assert_non_null(args);
	json_decref(args);
	assert_int_equal(wrk_tool_check_args(&ref, "{}", &args, &result), 1);
	assert_null(args);
	assert_non_null(strstr(result, "ask.user: invalid arguments: "));
	assert_non_null(strstr(result, "question"));
	free(result);
	assert_int_equal(wrk_tool_check_args(&ref, "{\"question\":7}", &args,
	    &result), 1);
	assert_non_null(strstr(result, "/question"));
	free(result);
	run_free_test(run);
}

static void
test_declarations(void **state)
{
	static const char *const deny_time[] = { "time.*=deny" };
	static const char *const deny_all[] = { "*=deny" };
	static const char *const tools[] = { "ask.user",
	    "{\"type\":\"object\"}" };
	json_error_t	 jerr;
	json_t		*decl, *fn;
	const char	*text;
	struct wrk_run	*run;
	char		 why[256];
	size_t		 i;
	int		 st, seen_time = 0, seen_fetch = 0, seen_client = 0;

	(void)state;
	assert_null(wrk_tools_declarations(NULL));
	run = run_make(NULL, 0, tools, 1, &st, why, sizeof(why));
	text = wrk_tools_declarations(run);
	assert_non_null(text);
	/* Built once, owned by the run. */
	assert_ptr_equal(text, wrk_tools_declarations(run));
	decl = json_loads(text, 0, &jerr);
	assert_non_null(decl);
	assert_true(json_is_array(decl));
	assert_int_equal(json_array_size(decl), 5);
	for (i = 0; i < json_array_size(decl); i++) {
		assert_string_equal(json_string_value(json_object_get(
		    json_array_get(decl, i), "type")), "function");
		fn = json_object_get(json_array_get(decl, i), "function");
		assert_non_null(json_string_value(json_object_get(fn,
		    "description")));
		assert_string_equal(json_string_value(json_object_get(
		    json_object_get(fn, "parameters"), "type")), "object");
		text = json_string_value(json_object_get(fn, "name"));
		seen_time += strcmp(text, "time.now") == 0;
		seen_fetch += strcmp(text, "http.fetch") == 0;
		seen_client += strcmp(text, "ask.user") == 0;
	}
	assert_true(seen_time == 1 && seen_fetch == 1 && seen_client == 1);
	json_decref(decl);
	run_free_test(run);
	/* A denied tool is not offered. */
	run = run_make(deny_time, 1, NULL, 0, &st, why, sizeof(why));
	decl = json_loads(wrk_tools_declarations(run), 0, &jerr);
	assert_non_null(decl);
	assert_int_equal(json_array_size(decl), 3);
	assert_string_equal(json_string_value(json_object_get(json_object_get(
	    json_array_get(decl, 0), "function"), "name")), "http.fetch");
	json_decref(decl);
	run_free_test(run);
	/* Nothing offered: NULL. */
	run = run_make(deny_all, 1, tools, 1, &st, why, sizeof(why));
	assert_null(wrk_tools_declarations(run));
	run_free_test(run);
}

static void
test_summary(void **state)
{
	json_t	*args;
	char	*s, *text;
	size_t	 i, n;

	(void)state;
	/* Compact, whatever the model's spacing. */
	args = json_loads("{ \"b\" : [1, 2],\n \"a\": \"x\" }", 0, NULL);
	assert_non_null(args);
	s = wrk_tool_summary(args);
	assert_string_equal(s, "{\"a\":\"x\",\"b\":[1,2]}");
	free(s);
	json_decref(args);
	/* Cut to 1 KiB, never inside a UTF-8 character. */
	for (n = 1000; n < 1030; n++) {
		text = malloc(n * 2 + 1);
		assert_non_null(text);
		for (i = 0; i < n; i++)
			memcpy(text + 2 * i, "\xc3\xa9", 2);
		text[2 * n] = '\0';
		args = json_pack("{s:s}", "text", text);
		assert_non_null(args);
		s = wrk_tool_summary(args);
		assert_non_null(s);
		assert_true(strlen(s) <= WRK_APPROVAL_SUMMARY_MAX);
		assert_string_equal(s + strlen(s) - 3, "...");
		/* Everything before the marker is whole characters. */
		assert_true(((unsigned char)s[strlen(s) - 4] & 0xc0) != 0xc0);
		assert_memory_equal(s, "{\"text\":\"\xc3\xa9", 11);
		free(s);
		json_decref(args);
		free(text);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_time_now),
		cmocka_unit_test(test_time_now_bad_arguments),
		cmocka_unit_test(test_unknown_tool),
		cmocka_unit_test(test_argument_bounds),
		cmocka_unit_test(test_policy),
		cmocka_unit_test(test_client_tools),
		cmocka_unit_test(test_client_arguments),
		cmocka_unit_test(test_declarations),
		cmocka_unit_test(test_summary),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
