/*
 * tools_int.h: what the two halves of palyra-worker's tool gate share.
 * tools.c holds the registry (built-ins and the run's client-side tools),
 * the agent's policy, argument checks and the declarations offered to the
 * model; toolgate.c the asynchronous flow of one call (approvals, client
 * tools, http.fetch) and its IPC. Nothing here is used outside them.
 */
#ifndef PALYRA_WORKER_TOOLS_INT_H
#define PALYRA_WORKER_TOOLS_INT_H

#include <stddef.h>

#include <jansson.h>

#include "ipc.pb-c.h"

struct wrk_run;
struct wrk_client_tool;

/* An asynchronous built-in's result: as wrk_fetch_fn (fetch.h). */
typedef void (*wrk_builtin_done_fn)(struct wrk_run *, void *arg,
    char *result, int is_error);

/* A built-in tool. run NULL: it runs asynchronously (http.fetch,
 * memory.search, memory.ingest): start() as wrk_fetch_start(), cancel()
 * as wrk_fetch_cancel() (fetch.h). */
struct wrk_builtin {
	const char	*name;
	const char	*description;
	const char	*schema;	/* JSON schema text of its arguments */
	int		 side_effects;	/* default policy ask, else allow */
	int		(*run)(json_t *args, char **result, int *is_error);
	int		(*start)(struct wrk_run *, const json_t *args,
			    wrk_builtin_done_fn done, void *arg);
	void		(*cancel)(struct wrk_run *);
};

enum wrk_tool_policy {
	WRK_TOOL_ALLOW = 0,
	WRK_TOOL_ASK,
	WRK_TOOL_DENY,
};

/* A tool found by name: a built-in or one of the run's client tools. */
struct wrk_tool_ref {
	const struct wrk_builtin	*builtin;
	const struct wrk_client_tool	*client;
	const char			*name;	/* the tool's own spelling */
};

/* The tool name is called by (either spelling, tools.h); 0 if none. */
int	wrk_tool_find(const struct wrk_run *, const char *name,
	    struct wrk_tool_ref *);
/* The policy of the agent for a tool name (first matching rule, else the
 * defaults of ipc.proto AgentConfig.tools). */
enum wrk_tool_policy wrk_tool_policy_of(const struct wrk_run *,
	    const struct wrk_tool_ref *);
/* Bounds, parses and validates args_json for tool. Returns 0 with *args
 * (the caller decrefs), 1 with *result an error text for the model, or
 * -ENOMEM. */
int	wrk_tool_check_args(const struct wrk_tool_ref *, const char *args_json,
	    json_t **args, char **result);
/* The arguments as an approval shows them: compact JSON, cut at a
 * character boundary to WRK_APPROVAL_SUMMARY_MAX bytes ("..." marks a
 * cut). malloc'd, or NULL. */
char	*wrk_tool_summary(const json_t *args);
/* A malloc'd result text, cut to WRK_TOOL_RESULT_MAX; 0 or -ENOMEM. */
int	wrk_tool_printf(char **result, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
/* A bounded printable copy of a name, for messages. */
void	wrk_tool_name_shown(const char *name, char *out, size_t size);

#endif
