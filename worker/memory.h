/*
 * memory.h: memory items inside palyra-worker (DESIGN section 9, issue 8).
 *
 * The worker embeds; journald stores and searches (journald/memory.c). An
 * ingest or a search is one asynchronous request:
 *
 *   check -> redact (vault values) -> embed (worker/embed.h) ->
 *     IPC_MEMORY_STORE / IPC_MEMORY_QUERY -> IPC_MEMORY_STORED / _HITS ->
 *     callback
 *
 *   memory.c          the requests, their ids, timeouts and checks
 *   memory_service.c  MemoryService IngestMemory and SearchMemory
 *   memory_tools.c    the tools memory.search and memory.ingest, and the
 *                     recall of an agent's memory-recall into the prompt
 *
 * Every request belongs to an owner (a run, or NULL for a service call):
 * when a run ends its requests are cancelled without callbacks.
 */
#ifndef PALYRA_WORKER_MEMORY_H
#define PALYRA_WORKER_MEMORY_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "ipc.pb-c.h"

struct wrk_ctx;
struct wrk_run;
struct wrk_memory_req;

/* What to store. Strings are copied by wrk_memory_ingest(). */
struct wrk_memory_ingest_args {
	const char		*principal;
	const char		*session_id;	/* "": principal-wide */
	const char		*source;
	const char		*text;
	const char *const	*tags;
	size_t			 ntags;
	uint64_t		 ttl_ms;	/* 0: the tenant's default */
};

/* What to search. */
struct wrk_memory_search_args {
	const char		*principal;
	const char		*session_id;	/* "": principal-wide only */
	const char		*query;
	const char *const	*tags;
	size_t			 ntags;
	uint32_t		 top_k;
	double			 min_score;
	uint64_t		 timeout_ms;	/* 0: WRK_MEMORY_TIMEOUT_MS */
};

/* The outcome of a request: code a gRPC status; message a text safe to
 * show when code is not OK; item (ingest) or hits (search) on OK. Valid
 * during the callback only. */
struct wrk_memory_result {
	uint32_t		 code;
	const char		*message;
	const Palyra__V1__MemoryItem *item;
	Palyra__V1__MemoryHit *const *hits;
	size_t			 nhits;
};

typedef void (*wrk_memory_fn)(const struct wrk_memory_result *, void *arg);

/* memory.c */

/* Checks of the request fields, each 1 when valid. */
int	wrk_memory_tag_valid(const char *);
int	wrk_memory_text_valid(const char *, size_t max);
int	wrk_memory_source_valid(const char *);

/*
 * Checks args (why: a message for INVALID_ARGUMENT) and starts the ingest
 * or the search. cb is called exactly once, never from inside these
 * calls, unless the request is cancelled first: then, for a request with
 * an owner, arg is released with free(). Returns 0, -EINVAL (why
 * filled), -EBUSY (too many in flight), -ENOTCONN (no journald) or
 * -ENOMEM.
 */
int	wrk_memory_ingest(struct wrk_ctx *, const void *owner,
	    const struct wrk_memory_ingest_args *, wrk_memory_fn cb, void *arg,
	    char *why, size_t whylen);
int	wrk_memory_search(struct wrk_ctx *, const void *owner,
	    const struct wrk_memory_search_args *, wrk_memory_fn cb, void *arg,
	    char *why, size_t whylen);
/* Cancels owner's requests: no callback follows, their args are freed.
 * A run owns its tool's request as run and its recall as
 * &run->system_prompt. */
void	wrk_memory_cancel_owner(struct wrk_ctx *, const void *owner);
/* Requests in flight (the worker is not idle while there are some). */
size_t	wrk_memory_pending(const struct wrk_ctx *);
/* journald's channel is gone: every request waiting for it ends with
 * UNAVAILABLE (callbacks called). */
void	wrk_memory_journald_lost(struct wrk_ctx *);
/* The worker exits: everything is cancelled and freed, no callbacks. */
void	wrk_memory_free(struct wrk_ctx *);

/* memory_tools.c */

/* The tools' JSON schemas (also for the unit tests) and their
 * asynchronous runs (tools_int.h). */
#define WRK_MEMORY_SEARCH_SCHEMA					\
    "{\"type\":\"object\",\"properties\":{" \
    "\"query\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":4096," \
    "\"description\":\"What to look for.\"}," \
    "\"top_k\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":20," \
    "\"description\":\"How many items at most (default 5).\"}," \
    "\"tags\":{\"type\":\"array\",\"maxItems\":16,\"items\":{" \
    "\"type\":\"string\",\"pattern\":\"^[A-Za-z0-9._:-]{1,64}$\"}," \
    "\"description\":\"Only items holding every tag.\"}}," \
    "\"required\":[\"query\"],\"additionalProperties\":false}"

#define WRK_MEMORY_INGEST_SCHEMA					\
    "{\"type\":\"object\",\"properties\":{" \
    "\"text\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":16384," \
    "\"description\":\"What to remember.\"}," \
    "\"tags\":{\"type\":\"array\",\"maxItems\":16,\"uniqueItems\":true," \
    "\"items\":{\"type\":\"string\"," \
    "\"pattern\":\"^[A-Za-z0-9._:-]{1,64}$\"}}," \
    "\"ttl_seconds\":{\"type\":\"integer\",\"minimum\":1," \
    "\"maximum\":315360000,\"description\":\"Forget it after this many " \
    "seconds (default: the tenant's).\"}," \
    "\"scope\":{\"type\":\"string\",\"enum\":[\"principal\",\"session\"]," \
    "\"description\":\"session: visible in this session only.\"}}," \
    "\"required\":[\"text\"],\"additionalProperties\":false}"

extern const char wrk_memory_search_schema[];
extern const char wrk_memory_ingest_schema[];
typedef void (*wrk_memory_tool_fn)(struct wrk_run *, void *arg,
	    char *result, int is_error);
int	wrk_memory_tool_search(struct wrk_run *, const json_t *args,
	    wrk_memory_tool_fn done, void *arg);
int	wrk_memory_tool_ingest(struct wrk_run *, const json_t *args,
	    wrk_memory_tool_fn done, void *arg);
void	wrk_memory_tool_cancel(struct wrk_run *);

/* The hits as the memory.search tool returns them: a JSON array text of
 * {"text","score","item_id","tags"} (malloc'd, or NULL). Each text is
 * cut so that the whole stays within max bytes. */
char	*wrk_memory_hits_json(Palyra__V1__MemoryHit *const *hits,
	    size_t nhits, size_t max);
/* The system prompt with a "Relevant memory:" section of the hits
 * appended, the section at most max bytes (whole items only; an item
 * longer than a line is cut at a character boundary); malloc'd, or NULL.
 * No hits: a copy of prompt. */
char	*wrk_memory_recall_prompt(const char *prompt,
	    Palyra__V1__MemoryHit *const *hits, size_t nhits, size_t max);

/*
 * The run is prepared (prepare.c): with the agent's memory-recall, its
 * input is searched first and the hits join its system prompt; then (or
 * at once without recall) wrk_run_launch(). A failed or late search
 * launches the run without recall (logged). Never fails the run.
 */
void	wrk_memory_recall(struct wrk_run *);
/* The run is freed (run.c): its requests and recall are cancelled. */
void	wrk_memory_run_gone(struct wrk_run *);

#endif
