/*
 * tools.c: the tool registry of palyra-worker (DESIGN section 9, issue 7):
 * the built-in tools, the run's client-side tools (RunStart.tools), the
 * agent's allow/ask/deny policy, argument checks against each tool's JSON
 * schema (common/jsonschema.h) and the declarations offered to the model.
 * The asynchronous half of the gate (approvals, client tools, http.fetch)
 * is toolgate.c.
 *
 * A tool call arrives as a name and a JSON object text written by a model:
 * untrusted. The text is bounded (WRK_TOOL_ARGS_MAX bytes, nesting at most
 * WRK_TOOL_ARGS_DEPTH) before jansson parses it, and every answer, success
 * or not, is a result the model can read: an unknown tool, a denied one or
 * bad arguments are results with is_error set, never a failure of the run.
 * Client tool declarations come from the client: each is checked (name,
 * size, a schema the validator supports) before the run starts.
 *
 * Built-ins: time.now (the current time, RFC 3339 UTC and Unix ms; no side
 * effects), http.fetch (worker/fetch.c; side effects), memory.search (no
 * side effects) and memory.ingest (side effects; worker/memory_tools.c). Runs in the
 * worker's sandbox; touches nothing but the clock and the run's own tool
 * fields.
 */
#include <errno.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "fetch.h"
#include "jsonschema.h"
#include "limits.h"
#include "memory.h"
#include "tools.h"
#include "tools_int.h"
#include "worker.h"

/* A tool name longer than this is cut in the "unknown tool" result. */
#define TOOL_NAME_SHOWN_MAX	64
/* A schema error quoted in a result or a refusal. */
#define SCHEMA_ERROR_MAX	512

int
wrk_tool_printf(char **result, const char *fmt, ...)
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
	char		 stamp[64];
	long long	 ms;

	(void)args;	/* the schema allows only timezone "UTC" */
	if (clock_gettime(CLOCK_REALTIME, &ts) < 0 ||
	    gmtime_r(&ts.tv_sec, &tm) == NULL ||
	    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
		*is_error = 1;
		return wrk_tool_printf(result, "time.now: clock unavailable");
	}
	ms = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	*is_error = 0;
	return wrk_tool_printf(result,
	    "{\"utc\":\"%s.%03ldZ\",\"unix_ms\":%lld,\"timezone\":\"UTC\"}",
	    stamp, ts.tv_nsec / 1000000, ms);
}

static const struct wrk_builtin builtins[] = {
	{
		"time.now",
		"The current date and time, as RFC 3339 in UTC and as Unix "
		"milliseconds.",
		"{\"type\":\"object\",\"properties\":{\"timezone\":{"
		"\"type\":\"string\",\"enum\":[\"UTC\"],\"description\":"
		"\"Only UTC is supported.\"}},\"additionalProperties\":false}",
		0, time_now, NULL, NULL,
	},
	{
		"http.fetch",
		"Fetches an http or https URL on the agent's egress "
		"allow-list and returns its status, content type and body.",
		wrk_fetch_schema,
		1, NULL, wrk_fetch_start, wrk_fetch_cancel,
	},
	{
		"memory.search",
		"Searches the memory of the current user (and session) and "
		"returns the best items: text, score, item_id, tags.",
		wrk_memory_search_schema,
		0, NULL, wrk_memory_tool_search, wrk_memory_tool_cancel,
	},
	{
		"memory.ingest",
		"Stores a text in the memory of the current user, for later "
		"searches; returns its item_id.",
		wrk_memory_ingest_schema,
		1, NULL, wrk_memory_tool_ingest, wrk_memory_tool_cancel,
	},
};

#define NBUILTINS	(sizeof(builtins) / sizeof(builtins[0]))

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

void
wrk_tool_name_shown(const char *name, char *out, size_t size)
{
	size_t	 i;

	for (i = 0; name[i] != '\0' && i + 1 < size; i++)
		out[i] = (name[i] >= 0x20 && name[i] < 0x7f) ? name[i] : '?';
	out[i] = '\0';
}

int
wrk_tool_find(const struct wrk_run *run, const char *name,
    struct wrk_tool_ref *ref)
{
	size_t	 i;

	memset(ref, 0, sizeof(*ref));
	if (name == NULL)
		return 0;
	/* The exact spelling first: a client tool "a_b" beside "a.b". */
	for (i = 0; run != NULL && i < run->nclient_tools; i++)
		if (strcmp(run->client_tools[i].name, name) == 0) {
			ref->client = &run->client_tools[i];
			ref->name = ref->client->name;
			return 1;
		}
	for (i = 0; i < NBUILTINS; i++)
		if (name_matches(builtins[i].name, name)) {
			ref->builtin = &builtins[i];
			ref->name = builtins[i].name;
			return 1;
		}
	for (i = 0; run != NULL && i < run->nclient_tools; i++)
		if (name_matches(run->client_tools[i].name, name)) {
			ref->client = &run->client_tools[i];
			ref->name = ref->client->name;
			return 1;
		}
	return 0;
}

enum wrk_tool_policy
wrk_tool_policy_of(const struct wrk_run *run, const struct wrk_tool_ref *ref)
{
	const Palyra__Ipc__AgentConfig *cfg = run != NULL ? run->agent_cfg :
	    NULL;
	const char	*policy;
	size_t		 i;

	for (i = 0; cfg != NULL && i < cfg->n_tools; i++) {
		if (fnmatch(cfg->tools[i]->pattern, ref->name, 0) != 0)
			continue;
		policy = cfg->tools[i]->policy;
		if (strcmp(policy, "allow") == 0)
			return WRK_TOOL_ALLOW;
		if (strcmp(policy, "ask") == 0)
			return WRK_TOOL_ASK;
		return WRK_TOOL_DENY;
	}
	if (ref->client != NULL)
		return WRK_TOOL_ALLOW;
	if (ref->builtin != NULL)
		return ref->builtin->side_effects ? WRK_TOOL_ASK :
		    WRK_TOOL_ALLOW;
	return WRK_TOOL_DENY;
}

/* The tool's schema, parsed (the caller decrefs), or NULL. */
static json_t *
tool_schema(const struct wrk_tool_ref *ref)
{
	const char	*text = ref->builtin != NULL ? ref->builtin->schema :
	    ref->client->parameters_json;

	return json_loads(text, JSON_REJECT_DUPLICATES, NULL);
}

int
wrk_tool_check_args(const struct wrk_tool_ref *ref, const char *args_json,
    json_t **argsp, char **result)
{
	char		 err[SCHEMA_ERROR_MAX];
	json_error_t	 jerr;
	json_t		*args, *schema;
	size_t		 len;

	*argsp = NULL;
	*result = NULL;
	memset(&jerr, 0, sizeof(jerr));
	if (args_json == NULL)
		args_json = "";
	len = strnlen(args_json, WRK_TOOL_ARGS_MAX + 1);
	if (len > WRK_TOOL_ARGS_MAX)
		return wrk_tool_printf(result, "%s: arguments longer than %d "
		    "bytes", ref->name, WRK_TOOL_ARGS_MAX) < 0 ? -ENOMEM : 1;
	if (json_depth_exceeds(args_json, len, WRK_TOOL_ARGS_DEPTH))
		return wrk_tool_printf(result, "%s: arguments nested deeper "
		    "than %d", ref->name, WRK_TOOL_ARGS_DEPTH) < 0 ? -ENOMEM :
		    1;
	if (strspn(args_json, " \t\r\n") == len)
		args = json_object();
	else
		args = json_loadb(args_json, len, JSON_REJECT_DUPLICATES,
		    &jerr);
	if (args == NULL)
		return wrk_tool_printf(result, "%s: arguments are not valid "
		    "JSON: %s", ref->name, jerr.text) < 0 ? -ENOMEM : 1;
	if (!json_is_object(args)) {
		json_decref(args);
		return wrk_tool_printf(result, "%s: arguments must be a JSON "
		    "object", ref->name) < 0 ? -ENOMEM : 1;
	}
	if ((schema = tool_schema(ref)) == NULL) {
		json_decref(args);
		return wrk_tool_printf(result, "%s: its schema cannot be read",
		    ref->name) < 0 ? -ENOMEM : 1;
	}
	err[0] = '\0';
	if (jschema_validate(schema, args, err, sizeof(err)) != 0) {
		json_decref(schema);
		json_decref(args);
		return wrk_tool_printf(result, "%s: invalid arguments: %s",
		    ref->name, err[0] != '\0' ? err : "rejected by its schema") <
		    0 ? -ENOMEM : 1;
	}
	json_decref(schema);
	*argsp = args;
	return 0;
}

int
wrk_tool_run(struct wrk_run *run, const char *name, const char *args_json,
    char **result, int *is_error)
{
	struct wrk_tool_ref ref;
	char		 shown[TOOL_NAME_SHOWN_MAX + 1];
	json_t		*args;
	int		 r;

	*result = NULL;
	*is_error = 1;
	if (!wrk_tool_find(run, name, &ref)) {
		wrk_tool_name_shown(name != NULL ? name : "", shown,
		    sizeof(shown));
		return wrk_tool_printf(result, "unknown tool %s", shown);
	}
	if ((r = wrk_tool_check_args(&ref, args_json, &args, result)) != 0)
		return r < 0 ? r : 0;
	if (ref.builtin == NULL || ref.builtin->run == NULL) {
		json_decref(args);
		return wrk_tool_printf(result, "%s runs only through the tool "
		    "gate", ref.name);
	}
	r = ref.builtin->run(args, result, is_error);
	json_decref(args);
	return r;
}

char *
wrk_tool_summary(const json_t *args)
{
	char	*text;
	size_t	 n;

	if ((text = json_dumps(args, JSON_COMPACT | JSON_SORT_KEYS)) == NULL)
		return NULL;
	if ((n = strlen(text)) <= WRK_APPROVAL_SUMMARY_MAX)
		return text;
	n = WRK_APPROVAL_SUMMARY_MAX - 3;
	/* Cut at a character boundary. */
	while (n > 0 && ((unsigned char)text[n] & 0xc0) == 0x80)
		n--;
	memcpy(text + n, "...", 4);
	return text;
}

/* Adds one {type:function,function:{...}} declaration. 0 or -ENOMEM. */
static int
declare(json_t *list, const char *name, const char *description,
    const char *schema_text)
{
	json_t	*schema, *fn;

	schema = json_loads(schema_text, 0, NULL);
	if (schema == NULL)
		schema = json_pack("{s:s}", "type", "object");
	fn = json_pack("{s:s,s:{s:s,s:s,s:o}}", "type", "function",
	    "function", "name", name, "description", description,
	    "parameters", schema);
	if (fn == NULL || json_array_append_new(list, fn) < 0)
		return -ENOMEM;
	return 0;
}

const char *
wrk_tools_declarations(struct wrk_run *run)
{
	struct wrk_tool_ref ref;
	json_t		*list;
	size_t		 i;

	if (run == NULL)
		return NULL;
	if (run->tools_json != NULL)
		return run->tools_json;
	if ((list = json_array()) == NULL)
		return NULL;
	for (i = 0; i < NBUILTINS; i++) {
		memset(&ref, 0, sizeof(ref));
		ref.builtin = &builtins[i];
		ref.name = builtins[i].name;
		if (wrk_tool_policy_of(run, &ref) == WRK_TOOL_DENY)
			continue;
		if (declare(list, builtins[i].name, builtins[i].description,
		    builtins[i].schema) < 0)
			goto fail;
	}
	for (i = 0; i < run->nclient_tools; i++) {
		memset(&ref, 0, sizeof(ref));
		ref.client = &run->client_tools[i];
		ref.name = ref.client->name;
		if (wrk_tool_policy_of(run, &ref) == WRK_TOOL_DENY)
			continue;
		if (declare(list, ref.name, ref.client->description,
		    ref.client->parameters_json) < 0)
			goto fail;
	}
	if (json_array_size(list) > 0)
		run->tools_json = json_dumps(list, JSON_COMPACT);
	json_decref(list);
	return run->tools_json;
fail:
	json_decref(list);
	return NULL;
}

/* Run set-up: the agent's config and the client's declarations. */

static int
client_name_valid(const char *name)
{
	size_t	 i, n = strnlen(name, WRK_CLIENT_TOOL_NAME_MAX + 1);

	if (n == 0 || n > WRK_CLIENT_TOOL_NAME_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		    "0123456789._-", name[i]) == NULL)
			return 0;
	return 1;
}

/* Checks one declaration; 0, or -EINVAL with why set. */
static int
client_check(const struct wrk_run *run, const Palyra__V1__ToolDeclaration *d,
    char *why, size_t whylen)
{
	char		 shown[TOOL_NAME_SHOWN_MAX + 1], err[SCHEMA_ERROR_MAX];
	json_error_t	 jerr;
	json_t		*schema;
	size_t		 i, len;

	if (!client_name_valid(d->name)) {
		wrk_tool_name_shown(d->name, shown, sizeof(shown));
		snprintf(why, whylen, "invalid tool name \"%s\" (1 to %d of "
		    "A-Z a-z 0-9 . _ -)", shown, WRK_CLIENT_TOOL_NAME_MAX);
		return -EINVAL;
	}
	for (i = 0; i < NBUILTINS; i++)
		if (name_matches(builtins[i].name, d->name)) {
			snprintf(why, whylen, "tool \"%s\" is the name of a "
			    "built-in tool", d->name);
			return -EINVAL;
		}
	for (i = 0; i < run->nclient_tools; i++)
		if (strcmp(run->client_tools[i].name, d->name) == 0) {
			snprintf(why, whylen, "tool \"%s\" is declared twice",
			    d->name);
			return -EINVAL;
		}
	if (strnlen(d->description, WRK_CLIENT_TOOL_DESC_MAX + 1) >
	    WRK_CLIENT_TOOL_DESC_MAX) {
		snprintf(why, whylen, "tool \"%s\": description longer than "
		    "%d bytes", d->name, WRK_CLIENT_TOOL_DESC_MAX);
		return -EINVAL;
	}
	len = strnlen(d->parameters_json, WRK_CLIENT_TOOL_SCHEMA_MAX + 1);
	if (len > WRK_CLIENT_TOOL_SCHEMA_MAX) {
		snprintf(why, whylen, "tool \"%s\": parameters_json longer "
		    "than %d bytes", d->name, WRK_CLIENT_TOOL_SCHEMA_MAX);
		return -EINVAL;
	}
	if (strspn(d->parameters_json, " \t\r\n") == len)
		return 0;
	if (json_depth_exceeds(d->parameters_json, len, JSCHEMA_DEPTH_MAX)) {
		snprintf(why, whylen, "tool \"%s\": parameters_json nested "
		    "deeper than %d", d->name, JSCHEMA_DEPTH_MAX);
		return -EINVAL;
	}
	schema = json_loadb(d->parameters_json, len, JSON_REJECT_DUPLICATES,
	    &jerr);
	if (schema == NULL) {
		snprintf(why, whylen, "tool \"%s\": parameters_json is not "
		    "valid JSON: %s", d->name, jerr.text);
		return -EINVAL;
	}
	err[0] = '\0';
	if (!json_is_object(schema) ||
	    jschema_check(schema, err, sizeof(err)) != 0) {
		snprintf(why, whylen, "tool \"%s\": parameters_json: %s",
		    d->name, err[0] != '\0' ? err : "not a JSON schema object");
		json_decref(schema);
		return -EINVAL;
	}
	json_decref(schema);
	return 0;
}

/* An owned copy of an AgentConfig (packed, then unpacked). */
static Palyra__Ipc__AgentConfig *
agent_copy(const Palyra__Ipc__AgentConfig *agent)
{
	Palyra__Ipc__AgentConfig *copy;
	uint8_t		*buf;
	size_t		 len;

	len = palyra__ipc__agent_config__get_packed_size(agent);
	if ((buf = malloc(len > 0 ? len : 1)) == NULL)
		return NULL;
	palyra__ipc__agent_config__pack(agent, buf);
	copy = palyra__ipc__agent_config__unpack(NULL, len, buf);
	free(buf);
	return copy;
}

int
wrk_tools_setup(struct wrk_run *run, const Palyra__Ipc__AgentConfig *agent,
    Palyra__V1__ToolDeclaration *const *decls, size_t ndecls, char *why,
    size_t whylen)
{
	const Palyra__V1__ToolDeclaration *d;
	struct wrk_client_tool *t;
	size_t		 i;
	int		 r;

	if (agent != NULL && (run->agent_cfg = agent_copy(agent)) == NULL) {
		snprintf(why, whylen, "out of memory");
		return -ENOMEM;
	}
	if (ndecls > WRK_CLIENT_TOOLS_MAX) {
		snprintf(why, whylen, "too many tools (at most %d)",
		    WRK_CLIENT_TOOLS_MAX);
		return -EINVAL;
	}
	if (ndecls == 0)
		return 0;
	if ((run->client_tools = calloc(ndecls, sizeof(*t))) == NULL) {
		snprintf(why, whylen, "out of memory");
		return -ENOMEM;
	}
	for (i = 0; i < ndecls; i++) {
		d = decls[i];
		if ((r = client_check(run, d, why, whylen)) < 0)
			return r;
		t = &run->client_tools[run->nclient_tools];
		t->name = strdup(d->name);
		t->description = strdup(d->description);
		t->parameters_json = strdup(strspn(d->parameters_json,
		    " \t\r\n") == strlen(d->parameters_json) ? "{}" :
		    d->parameters_json);
		run->nclient_tools++;
		if (t->name == NULL || t->description == NULL ||
		    t->parameters_json == NULL) {
			snprintf(why, whylen, "out of memory");
			return -ENOMEM;
		}
	}
	return 0;
}

void
wrk_tools_free(struct wrk_run *run)
{
	size_t	 i;

	for (i = 0; i < run->nclient_tools; i++) {
		free(run->client_tools[i].name);
		free(run->client_tools[i].description);
		free(run->client_tools[i].parameters_json);
	}
	free(run->client_tools);
	run->client_tools = NULL;
	run->nclient_tools = 0;
	if (run->agent_cfg != NULL)
		palyra__ipc__agent_config__free_unpacked(run->agent_cfg, NULL);
	run->agent_cfg = NULL;
	free(run->tools_json);
	run->tools_json = NULL;
}
