/*
 * tools.h: tools the model may call inside palyra-worker. This is the seam
 * between the turn loop (provider.c, offline.c) and the tool registry:
 * every tool call of a model goes through the gate below, which answers
 * with the text fed back to the model (a result, or an error the model can
 * read). tools.c holds the registry, the agent's policy and the
 * declarations; toolgate.c the asynchronous flow (approvals, client-side
 * tools, http.fetch) and its IPC; recover.c hands it runs taken over after
 * their worker died.
 */
#ifndef PALYRA_WORKER_TOOLS_H
#define PALYRA_WORKER_TOOLS_H

#include <stddef.h>
#include <stdint.h>

#include "ipc.pb-c.h"

struct wrk_run;
struct wrk_ctx;

#define WRK_TOOL_RESULT_MAX	(64 * 1024)	/* bytes fed back per call */

/*
 * The tool gate (tools.c): every tool call of a model goes through
 * wrk_tool_begin(), after the provider journaled its ToolCall event and
 * before its ToolResult event. The gate, in order:
 *   1. finds the tool: a built-in (time.now, http.fetch, ...) or one of
 *      the run's client-side tools (RunStart.tools); else "unknown tool";
 *   2. validates the arguments against the tool's JSON schema
 *      (common/jsonschema.h); an error is the result, read by the model;
 *   3. applies the agent's policy (AgentConfig.tools, first match wins;
 *      defaults: see ipc.proto AgentConfig.tools): deny is an error
 *      result; ask creates a durable approval (IPC_APPROVAL_CREATE),
 *      journals an ApprovalRequest event, moves the run to
 *      WAITING_APPROVAL and waits for IPC_APPROVAL_DECISION or the
 *      agent's approval timeout (then: IPC_APPROVAL_DECIDE as "timeout");
 *      the ApprovalDecided event follows, the run goes back to
 *      IN_PROGRESS, and a deny is an error result;
 *   4. runs it: a built-in (http.fetch asynchronously, worker/fetch.h) or,
 *      for a client-side tool, moves the run to WAITING_TOOL until the
 *      client's ClientToolResult (IPC_RUN_TOOL_RESULT) arrives; past the
 *      agent's client-tool timeout the run fails with a reason naming
 *      the tool.
 * The result is then taken by the provider (wrk_tool_take_result) and
 * journaled as the ToolResult event.
 */
typedef void (*wrk_tool_done_fn)(struct wrk_run *, void *arg);

/*
 * Starts the call id of tool name with args_json (a JSON object text;
 * NULL or blank: {}). Returns 1 when the result is ready now, 0 when the
 * call goes on (done(run, arg) is called once when the result is ready,
 * never from inside wrk_tool_begin, unless the run ends first), or a
 * negative errno (-ENOMEM; the caller fails the run). One call at a time
 * per run.
 */
int	wrk_tool_begin(struct wrk_run *, const char *id, const char *name,
	    const char *args_json, wrk_tool_done_fn done, void *arg);

/* The ready result of the run's call (malloc'd, at most
 * WRK_TOOL_RESULT_MAX bytes; the caller frees it) and whether it is an
 * error. NULL when no result is ready. */
char	*wrk_tool_take_result(struct wrk_run *, int *is_error);

/* The run ends: its call in flight, if any, is dropped (a fetch closed, a
 * timer freed); done is not called after this. Idempotent. */
void	 wrk_tool_abort(struct wrk_run *);

/*
 * A run rebuilt after its worker died (recover.c) waits again for the
 * approval of its call id: as wrk_tool_begin past steps 1-3, with the
 * approval as journald holds it (pending, or decided while no worker
 * held the run: then the decision is applied at once, asynchronously).
 */
int	wrk_tool_recover(struct wrk_run *, const char *id, const char *name,
	    const char *args_json, const Palyra__V1__Approval *,
	    wrk_tool_done_fn done, void *arg);

/* IPC handlers (worker.c dispatches). Each returns 0, or -EBADMSG for a
 * malformed message (the caller drops the channel). */
int	wrk_tool_on_decision(struct wrk_ctx *, uint32_t call_id,
	    const Palyra__Ipc__RunDecision *);	/* front */
int	wrk_tool_on_client_result(struct wrk_ctx *, uint32_t call_id,
	    const Palyra__Ipc__RunToolResult *);	/* front */
int	wrk_tool_on_created(struct wrk_ctx *, uint32_t request_id,
	    const Palyra__Ipc__ApprovalCreated *);	/* journald */
int	wrk_tool_on_approval(struct wrk_ctx *, uint32_t request_id,
	    const Palyra__Ipc__ApprovalDecisionMsg *);	/* journald */

/*
 * The built-in time.now, synchronously (also the unit tests' entry):
 * returns 0 with *result (malloc'd) and *is_error, or -ENOMEM. Unknown
 * tools and bad arguments are results with *is_error set.
 */
int	wrk_tool_run(struct wrk_run *, const char *name, const char *args_json,
	    char **result, int *is_error);

/* The JSON-schema tool declarations the model is offered: the built-ins
 * the agent's policy does not deny and the run's client-side tools, as a
 * JSON array text in the OpenAI "tools" shape ([{type:function,function:
 * {name,description,parameters}}]); the providers convert it for their
 * API. Names are the tools' own (time.now); the providers respell them for
 * APIs that allow only [a-zA-Z0-9_-], and the gate takes either spelling.
 * NULL when no tool is offered. Owned by the run (freed with it). */
const char *wrk_tools_declarations(struct wrk_run *);

/*
 * At run start (run.c): an owned copy of the run's agent config (NULL:
 * none, the defaults apply) and its client-side tools, each checked: at
 * most WRK_CLIENT_TOOLS_MAX, names 1..64 of [A-Za-z0-9._-] naming no
 * built-in and no other, a schema of at most WRK_CLIENT_TOOL_SCHEMA_MAX
 * bytes that jschema_check() accepts. Returns 0, or -EINVAL (why says
 * what is wrong: the start fails INVALID_ARGUMENT) or -ENOMEM.
 * wrk_tools_free() releases what it made (with the run).
 */
int	wrk_tools_setup(struct wrk_run *, const Palyra__Ipc__AgentConfig *,
	    Palyra__V1__ToolDeclaration *const *decls, size_t ndecls,
	    char *why, size_t whylen);
void	wrk_tools_free(struct wrk_run *);

#endif
