/*
 * memory_tools.c: what runs see of memory in palyra-worker (DESIGN section
 * 9, issue 8): the built-in tools memory.search (no side effects: allowed
 * by default) and memory.ingest (a side effect: ask by default), and the
 * recall of an agent's memory-recall into the system prompt before the
 * run's first provider call.
 *
 * Both tools act as the run's principal. memory.search sees the
 * principal-wide items and those of the run's session; memory.ingest
 * stores principal-wide unless the call asks "scope": "session", with the
 * source "tool:memory.ingest". Arguments were validated against the
 * schemas below by the tool gate (tools.c) before they come here.
 *
 * Recall searches the run's input (its first WRK_MEMORY_QUERY_MAX bytes)
 * once journald prepared the run, waits at most WRK_RECALL_TIMEOUT_MS,
 * and appends the hits as "Relevant memory:" (at most WRK_RECALL_MAX_BYTES)
 * to the run's system prompt. A failed search only costs the recall.
 *
 * Process: palyra-worker. Touches the run's prompt and memory.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <jansson.h>

#include "grpc_status.h"
#include "limits.h"
#include "log.h"
#include "memory.h"
#include "tools.h"
#include "worker.h"

/* A tool's search may return at most this many hits. */
#define TOOL_TOP_K_MAX		20
/* The bytes of a hit's text in a tool result are at least this. */
#define TOOL_HIT_TEXT_MIN	64
/* Room for a hit's other fields in a tool result. */
#define TOOL_HIT_OVERHEAD	(96 + JNL_MEMORY_TAGS_MAX * \
				    (JNL_MEMORY_TAG_MAX + 4))

const char wrk_memory_search_schema[] = WRK_MEMORY_SEARCH_SCHEMA;
const char wrk_memory_ingest_schema[] = WRK_MEMORY_INGEST_SCHEMA;

/* A tool call waiting for its memory request (owned by the request). */
struct tool_wait {
	struct wrk_run		*run;
	wrk_memory_tool_fn	 done;
	void			*arg;
};

/* Copies a UTF-8 text of len bytes, cut to at most max bytes at a
 * character boundary, control characters as spaces. */
static char *
text_cut(const char *s, size_t max, int *cut)
{
	size_t	 n = strlen(s), i;
	char	*out;

	*cut = 0;
	if (n > max) {
		n = max;
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
		*cut = 1;
	}
	if ((out = malloc(n + 1)) == NULL)
		return NULL;
	for (i = 0; i < n; i++)
		out[i] = (unsigned char)s[i] < 0x20 ? ' ' : s[i];
	out[n] = '\0';
	return out;
}

char *
wrk_memory_hits_json(Palyra__V1__MemoryHit *const *hits, size_t nhits,
    size_t max)
{
	json_t	*list, *obj, *tags;
	char	*text, *out = NULL;
	size_t	 i, j, each;
	int	 cut;

	if ((list = json_array()) == NULL)
		return NULL;
	each = nhits > 0 ? max / nhits : max;
	each = each > TOOL_HIT_OVERHEAD + TOOL_HIT_TEXT_MIN ?
	    each - TOOL_HIT_OVERHEAD : TOOL_HIT_TEXT_MIN;
	for (i = 0; i < nhits; i++) {
		const Palyra__V1__MemoryItem *it = hits[i]->item;

		if (it == NULL)
			continue;
		if ((text = text_cut(it->text, each, &cut)) == NULL)
			goto fail;
		obj = json_pack("{s:s, s:f, s:s, s:o}", "text", text,
		    "score", hits[i]->score, "item_id", it->item_id,
		    "tags", json_array());
		free(text);
		if (obj == NULL || json_array_append_new(list, obj) < 0)
			goto fail;
		tags = json_object_get(obj, "tags");
		for (j = 0; j < it->n_tags; j++)
			if (json_array_append_new(tags,
			    json_string(it->tags[j])) < 0)
				goto fail;
	}
	/* Dropped from the end until the whole fits. */
	for (;;) {
		free(out);
		if ((out = json_dumps(list, JSON_COMPACT)) == NULL)
			goto fail;
		if (strlen(out) <= max || json_array_size(list) == 0)
			break;
		json_array_remove(list, json_array_size(list) - 1);
	}
	json_decref(list);
	return out;
fail:
	free(out);
	json_decref(list);
	return NULL;
}

char *
wrk_memory_recall_prompt(const char *prompt,
    Palyra__V1__MemoryHit *const *hits, size_t nhits, size_t max)
{
	static const char head[] = "Relevant memory:\n";
	size_t	 plen = strlen(prompt), used, i, room, n;
	char	*out, *text;
	int	 cut, any = 0;

	if ((out = malloc(plen + 2 + max + 1)) == NULL)
		return NULL;
	memcpy(out, prompt, plen + 1);
	if (nhits == 0 || max < sizeof(head) + 8)
		return out;
	used = plen;
	if (plen > 0) {
		memcpy(out + used, "\n\n", 2);
		used += 2;
	}
	memcpy(out + used, head, sizeof(head) - 1);
	used += sizeof(head) - 1;
	room = max - (sizeof(head) - 1);
	for (i = 0; i < nhits; i++) {
		if (hits[i]->item == NULL)
			continue;
		/* "- " TEXT "\n": a text that does not fit is cut when
		 * a useful part of it fits, else the list ends. */
		if (room < 3 + TOOL_HIT_TEXT_MIN / 2)
			break;
		if ((text = text_cut(hits[i]->item->text, room - 3 -
		    (hits[i]->item->text[0] != '\0' ? 3 : 0), &cut)) == NULL) {
			free(out);
			return NULL;
		}
		n = (size_t)snprintf(out + used, room + 1, "- %s%s\n", text,
		    cut ? "..." : "");
		free(text);
		used += n;
		room -= n;
		any = 1;
		if (cut)
			break;
	}
	if (!any)
		out[plen] = '\0';
	else if (used > 0 && out[used - 1] == '\n')
		out[--used] = '\0';
	return out;
}

/* The tools */

static void
tool_searched(const struct wrk_memory_result *res, void *arg)
{
	struct tool_wait *w = arg;
	char	*result;
	int	 is_error = 0;

	if (res->code != GRPC_STATUS_OK) {
		is_error = 1;
		if (asprintf(&result, "memory.search failed: %s",
		    res->message) < 0)
			result = NULL;
	} else
		result = wrk_memory_hits_json(res->hits, res->nhits,
		    WRK_TOOL_RESULT_MAX);
	w->done(w->run, w->arg, result, is_error);
	free(w);
}

static void
tool_ingested(const struct wrk_memory_result *res, void *arg)
{
	struct tool_wait *w = arg;
	char	*result;
	int	 is_error = 0, n;

	if (res->code != GRPC_STATUS_OK) {
		is_error = 1;
		n = asprintf(&result, "memory.ingest failed: %s",
		    res->message);
	} else
		n = asprintf(&result, "{\"item_id\":\"%s\"}",
		    res->item->item_id);
	if (n < 0)
		result = NULL;
	w->done(w->run, w->arg, result, is_error);
	free(w);
}

/* The tags of args (validated by the schema) as a string array. */
static int
tags_of(const json_t *args, const char **out, size_t *n)
{
	const json_t *tags = json_object_get(args, "tags"), *t;
	size_t	 i;

	*n = 0;
	if (tags == NULL)
		return 0;
	json_array_foreach(tags, i, t) {
		if (*n >= JNL_MEMORY_TAGS_MAX || !json_is_string(t))
			return -EINVAL;
		out[(*n)++] = json_string_value(t);
	}
	return 0;
}

/* A start refused at once: logged (the gate's result names the
 * errno). */
static int
tool_refused(struct wrk_run *run, int r, const char *tool, const char *why)
{
	log_info("run %s: %s refused: %s", run->run_id, tool,
	    r == -EINVAL ? why : strerror(-r));
	return r;
}

int
wrk_memory_tool_search(struct wrk_run *run, const json_t *args,
    wrk_memory_tool_fn done, void *arg)
{
	struct wrk_memory_search_args a;
	const char	*tags[JNL_MEMORY_TAGS_MAX];
	struct tool_wait *w;
	const json_t	*k;
	char		 why[160];
	int		 r;

	memset(&a, 0, sizeof(a));
	a.principal = run->principal;
	a.session_id = run->session_id;
	a.query = json_string_value(json_object_get(args, "query"));
	a.top_k = JNL_MEMORY_TOP_K_DEFAULT;
	if ((k = json_object_get(args, "top_k")) != NULL &&
	    json_is_integer(k) && json_integer_value(k) >= 1 &&
	    json_integer_value(k) <= TOOL_TOP_K_MAX)
		a.top_k = (uint32_t)json_integer_value(k);
	if (a.query == NULL || tags_of(args, tags, &a.ntags) < 0)
		return tool_refused(run, -EINVAL, "memory.search",
		    "invalid arguments");
	a.tags = tags;
	if ((w = calloc(1, sizeof(*w))) == NULL)
		return -ENOMEM;
	w->run = run;
	w->done = done;
	w->arg = arg;
	if ((r = wrk_memory_search(run->ctx, run, &a, tool_searched, w, why,
	    sizeof(why))) < 0) {
		free(w);
		return tool_refused(run, r, "memory.search", why);
	}
	return 0;
}

int
wrk_memory_tool_ingest(struct wrk_run *run, const json_t *args,
    wrk_memory_tool_fn done, void *arg)
{
	struct wrk_memory_ingest_args a;
	const char	*tags[JNL_MEMORY_TAGS_MAX], *scope;
	struct tool_wait *w;
	const json_t	*t;
	char		 why[160];
	int		 r;

	memset(&a, 0, sizeof(a));
	a.principal = run->principal;
	a.session_id = "";
	if ((scope = json_string_value(json_object_get(args, "scope"))) !=
	    NULL && strcmp(scope, "session") == 0)
		a.session_id = run->session_id;
	a.source = "tool:memory.ingest";
	a.text = json_string_value(json_object_get(args, "text"));
	if ((t = json_object_get(args, "ttl_seconds")) != NULL &&
	    json_is_integer(t) && json_integer_value(t) >= 1 &&
	    (uint64_t)json_integer_value(t) <= WRK_MEMORY_TTL_MAX_MS / 1000)
		a.ttl_ms = (uint64_t)json_integer_value(t) * 1000;
	if (a.text == NULL || tags_of(args, tags, &a.ntags) < 0)
		return tool_refused(run, -EINVAL, "memory.ingest",
		    "invalid arguments");
	a.tags = tags;
	if ((w = calloc(1, sizeof(*w))) == NULL)
		return -ENOMEM;
	w->run = run;
	w->done = done;
	w->arg = arg;
	if ((r = wrk_memory_ingest(run->ctx, run, &a, tool_ingested, w, why,
	    sizeof(why))) < 0) {
		free(w);
		return tool_refused(run, r, "memory.ingest", why);
	}
	return 0;
}

void
wrk_memory_tool_cancel(struct wrk_run *run)
{
	wrk_memory_cancel_owner(run->ctx, run);
}

/* Recall */

struct recall_wait {
	struct wrk_ctx	*ctx;
	char		 run_id[WRK_ID_LEN + 1];
};

static struct wrk_run *
run_find(struct wrk_ctx *ctx, const char *run_id)
{
	struct wrk_run	*run;

	TAILQ_FOREACH(run, &ctx->runs, entry)
		if (strcmp(run->run_id, run_id) == 0 && run->preparing)
			return run;
	return NULL;
}

static void
recalled(const struct wrk_memory_result *res, void *arg)
{
	struct recall_wait *w = arg;
	struct wrk_run	*run = run_find(w->ctx, w->run_id);
	char		*prompt;

	free(w);
	if (run == NULL)
		return;
	if (res->code != GRPC_STATUS_OK)
		log_warn("run %s: no memory recall: %s", run->run_id,
		    res->message);
	else if (res->nhits > 0) {
		prompt = wrk_memory_recall_prompt(run->system_prompt,
		    res->hits, res->nhits, WRK_RECALL_MAX_BYTES);
		if (prompt == NULL)
			log_warn("run %s: no memory recall: out of memory",
			    run->run_id);
		else {
			free(run->system_prompt);
			run->system_prompt = prompt;
			log_debug("run %s: %zu memory items recalled",
			    run->run_id, res->nhits);
		}
	}
	wrk_run_launch(run);
}

void
wrk_memory_recall(struct wrk_run *run)
{
	const Palyra__Ipc__AgentConfig *ac = run->agent_cfg;
	struct wrk_memory_search_args a;
	struct recall_wait *w;
	char		*query, why[160];
	int		 cut, r;

	if (ac == NULL || ac->recall_top_k == 0) {
		wrk_run_launch(run);
		return;
	}
	if ((query = text_cut(run->input, WRK_MEMORY_QUERY_MAX, &cut)) ==
	    NULL || (w = calloc(1, sizeof(*w))) == NULL) {
		free(query);
		log_warn("run %s: no memory recall: out of memory",
		    run->run_id);
		wrk_run_launch(run);
		return;
	}
	w->ctx = run->ctx;
	memcpy(w->run_id, run->run_id, sizeof(w->run_id));
	memset(&a, 0, sizeof(a));
	a.principal = run->principal;
	a.session_id = run->session_id;
	a.query = query;
	a.top_k = ac->recall_top_k <= TOOL_TOP_K_MAX ? ac->recall_top_k :
	    TOOL_TOP_K_MAX;
	a.min_score = ac->recall_min_score >= 0 &&
	    ac->recall_min_score <= 1 ? ac->recall_min_score : 0;
	a.timeout_ms = WRK_RECALL_TIMEOUT_MS;
	r = wrk_memory_search(run->ctx, &run->system_prompt, &a, recalled, w,
	    why, sizeof(why));
	free(query);
	if (r < 0) {
		free(w);
		log_warn("run %s: no memory recall: %s", run->run_id,
		    r == -EINVAL ? why : strerror(-r));
		wrk_run_launch(run);
		return;
	}
	/* The prepare timer is journald's; the search has its own. */
	if (run->prepare_ev != NULL)
		evtimer_del(run->prepare_ev);
}

void
wrk_memory_run_gone(struct wrk_run *run)
{
	wrk_memory_cancel_owner(run->ctx, run);
	wrk_memory_cancel_owner(run->ctx, &run->system_prompt);
}
