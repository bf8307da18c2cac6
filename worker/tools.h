/*
 * tools.h: tools the model may call inside palyra-worker. This is the seam
 * between the turn loop (provider.c, offline.c) and the tool registry:
 * every tool call of a model goes through wrk_tool_run(), which answers
 * with the text fed back to the model (a result, or an error the model can
 * read). Policies and approvals (allow/ask/deny) and client-side tools are
 * layered here later without touching the providers.
 */
#ifndef PALYRA_WORKER_TOOLS_H
#define PALYRA_WORKER_TOOLS_H

#include <stddef.h>

struct wrk_run;

#define WRK_TOOL_RESULT_MAX	(64 * 1024)	/* bytes fed back per call */

/*
 * Runs tool name with args_json (a JSON object text; "" means {}).
 * Returns 0 with *result (malloc'd, NUL-terminated, at most
 * WRK_TOOL_RESULT_MAX) and *is_error set: an unknown tool or bad
 * arguments are results with *is_error = 1, not failures. Returns -ENOMEM
 * only when no result could be made.
 */
int	wrk_tool_run(struct wrk_run *, const char *name, const char *args_json,
	    char **result, int *is_error);

/* The JSON-schema tool declarations the model is offered, as a JSON array
 * text in the OpenAI "tools" shape ([{type:function,function:{name,
 * description,parameters}}]); the providers convert it for their API.
 * Names are the tools' own (time.now); the providers respell them for
 * APIs that allow only [a-zA-Z0-9_-], and wrk_tool_run() takes either
 * spelling. NULL when no tool is offered. Static storage. */
const char *wrk_tools_declarations(const struct wrk_run *);

#endif
