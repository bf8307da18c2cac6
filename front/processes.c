/*
 * processes.c: GET /admin/v1/processes, the supervisor's process table as
 * JSON for the host operator (`palyractl status`).
 *
 * Process: palyra-front. Touches its HTTP connections and the supervisor
 * channel: each listing is one IPC_PROCESS_LIST_REQUEST, answered with
 * IPC_PROCESS_LIST pages carrying the same request id. Listings waiting
 * for the supervisor are bounded (FE_PROCESS_REQUESTS_MAX), end with 503
 * after FE_PROCESS_TIMEOUT_MS, and are freed when their client leaves.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>

#include "front.h"
#include "log.h"

/* One listing waiting for the supervisor. */
struct fe_proc_req {
	TAILQ_ENTRY(fe_proc_req) entry;
	struct fe_ctx *ctx;
	struct evhttp_request *req;
	struct evhttp_connection *evcon;
	uint32_t request_id;
	struct event *timer;
	json_t *processes; /* array, filled page by page */
};

static void
proc_req_free(struct fe_proc_req *pr)
{
	TAILQ_REMOVE(&pr->ctx->proc_reqs, pr, entry);
	pr->ctx->nproc_reqs--;
	if (pr->evcon != NULL)
		evhttp_connection_set_closecb(pr->evcon, NULL, NULL);
	if (pr->timer != NULL)
		event_free(pr->timer);
	json_decref(pr->processes);
	free(pr);
}

static void
proc_req_fail(struct fe_proc_req *pr, const char *message)
{
	struct evhttp_request *req = pr->req;

	proc_req_free(pr);
	fe_http_reply_error(req, 503, "unavailable", message);
}

static void
proc_req_timeout(evutil_socket_t fd, short what, void *arg)
{
	log_warn("the supervisor did not answer a process listing in %d ms",
	    FE_PROCESS_TIMEOUT_MS);
	proc_req_fail(arg, "the supervisor did not answer");
}

static void
proc_req_conn_closed(struct evhttp_connection *evcon, void *arg)
{
	struct fe_proc_req *pr = arg;

	/* The client left first; a late answer finds no request. */
	pr->evcon = NULL;
	proc_req_free(pr);
}

void
fe_processes_get(struct fe_ctx *ctx, struct evhttp_request *req)
{
	Palyra__Ipc__ProcessListRequest lr =
	    PALYRA__IPC__PROCESS_LIST_REQUEST__INIT;
	struct timeval tv = {FE_PROCESS_TIMEOUT_MS / 1000,
	    (FE_PROCESS_TIMEOUT_MS % 1000) * 1000};
	struct fe_proc_req *pr;
	int rc;

	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
		evhttp_add_header(
		    evhttp_request_get_output_headers(req), "Allow", "GET");
		fe_http_reply_error(
		    req, 405, "method_not_allowed", "method not allowed");
		return;
	}
	if (!ctx->have_keys) {
		fe_http_reply_error(req, 503, "unavailable", "not ready");
		return;
	}
	if (!fe_http_admin_auth(ctx, req))
		return;
	if (ctx->parent == NULL || ctx->stopping) {
		fe_http_reply_error(
		    req, 503, "unavailable", "supervisor unavailable");
		return;
	}
	if (ctx->nproc_reqs >= FE_PROCESS_REQUESTS_MAX) {
		fe_http_reply_error(req, 503, "unavailable",
		    "too many process listings in progress");
		return;
	}
	if ((pr = calloc(1, sizeof(*pr))) == NULL ||
	    (pr->processes = json_array()) == NULL ||
	    (pr->timer = evtimer_new(ctx->base, proc_req_timeout, pr)) ==
		NULL) {
		if (pr != NULL)
			json_decref(pr->processes);
		free(pr);
		fe_http_reply_error(req, 503, "unavailable", "out of memory");
		return;
	}
	pr->ctx = ctx;
	pr->req = req;
	if (++ctx->next_proc_req_id == 0)
		ctx->next_proc_req_id = 1;
	pr->request_id = ctx->next_proc_req_id;
	TAILQ_INSERT_TAIL(&ctx->proc_reqs, pr, entry);
	ctx->nproc_reqs++;
	rc = ipc_chan_send(ctx->parent, IPC_PROCESS_LIST_REQUEST,
	    pr->request_id, &lr.base, NULL, 0);
	if (rc < 0 || evtimer_add(pr->timer, &tv) < 0) {
		proc_req_fail(pr, rc == -ENOBUFS ? "supervisor busy"
						 : "supervisor unavailable");
		return;
	}
	pr->evcon = evhttp_request_get_connection(req);
	if (pr->evcon != NULL)
		evhttp_connection_set_closecb(
		    pr->evcon, proc_req_conn_closed, pr);
}

/*
 * A JSON string of s with anything but printable ASCII shown as '?': the
 * sandbox facts in the list were written by the children themselves, and
 * may be cut anywhere by the supervisor's bounds.
 */
static json_t *
text_json(const char *s)
{
	char buf[256];
	size_t i;

	for (i = 0; s[i] != '\0' && i < sizeof(buf) - 1; i++)
		buf[i] = (unsigned char)s[i] >= 0x20 &&
				 (unsigned char)s[i] < 0x7f
			     ? s[i]
			     : '?';
	buf[i] = '\0';
	return json_string(buf);
}

/* text_json(), or null for an empty string. */
static json_t *
text_or_null(const char *s)
{
	return s[0] != '\0' ? text_json(s) : json_null();
}

static json_t *
facts_json(char **facts, size_t n)
{
	json_t *a = json_array();
	size_t i;

	for (i = 0; a != NULL && i < n; i++)
		if (json_array_append_new(a, text_json(facts[i])) < 0) {
			json_decref(a);
			return NULL;
		}
	return a;
}

static json_t *
process_json(const Palyra__Ipc__ProcessInfo *p)
{
	return json_pack("{s:o, s:o, s:o, s:o, s:I, s:I, s:o, s:I, s:I, s:o, "
			 "s:{s:o, s:o}, s:o, s:o}",
	    "kind", text_json(p->kind), "tenant", text_or_null(p->tenant),
	    "index",
	    p->tenant[0] != '\0' ? json_integer(p->index) : json_null(),
	    "pid", p->pid != 0 ? json_integer(p->pid) : json_null(), "uid",
	    (json_int_t)p->uid, "gid", (json_int_t)p->gid, "state",
	    text_json(p->state), "restarts", (json_int_t)p->restarts,
	    "generation", (json_int_t)p->generation, "uptime_seconds",
	    p->pid != 0 ? json_real((double)p->uptime_ms / 1000.0)
			: json_null(),
	    "sandbox", "applied",
	    facts_json(p->sandbox_applied, p->n_sandbox_applied), "skipped",
	    facts_json(p->sandbox_skipped, p->n_sandbox_skipped), "cgroup",
	    text_or_null(p->cgroup), "last_exit", text_or_null(p->last_exit));
}

static void
proc_req_finish(struct fe_proc_req *pr, const Palyra__Ipc__ProcessList *page)
{
	struct evhttp_request *req = pr->req;
	json_t *root;
	char *text;

	root = json_pack("{s:O, s:{s:I, s:f}}", "processes", pr->processes,
	    "supervisor", "pid", (json_int_t)page->supervisor_pid,
	    "uptime_seconds", (double)page->supervisor_uptime_ms / 1000.0);
	text = root != NULL ? json_dumps(root, JSON_COMPACT |
						   JSON_REAL_PRECISION(15))
			    : NULL;
	json_decref(root);
	proc_req_free(pr);
	if (text == NULL) {
		fe_http_reply_error(req, 503, "unavailable", "out of memory");
		return;
	}
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Cache-Control", "no-store");
	fe_http_reply_json(req, 200, text, strlen(text));
	free(text);
}

/*
 * One page of the supervisor's answer. Returns 0; a page for a listing
 * that is gone (timed out, client left) is dropped.
 */
int
fe_processes_reply(struct fe_ctx *ctx, uint32_t request_id,
    const Palyra__Ipc__ProcessList *page)
{
	struct fe_proc_req *pr;
	json_t *p;
	size_t i;

	TAILQ_FOREACH(pr, &ctx->proc_reqs, entry)
		if (pr->request_id == request_id)
			break;
	if (pr == NULL)
		return 0;
	if (page->n_processes >
	    FE_PROCESSES_MAX - json_array_size(pr->processes)) {
		log_warn("process listing longer than %d entries",
		    FE_PROCESSES_MAX);
		proc_req_fail(pr, "too many processes to list");
		return 0;
	}
	for (i = 0; i < page->n_processes; i++) {
		if ((p = process_json(page->processes[i])) == NULL ||
		    json_array_append_new(pr->processes, p) < 0) {
			proc_req_fail(pr, "out of memory");
			return 0;
		}
	}
	if (!page->more)
		proc_req_finish(pr, page);
	return 0;
}

/*
 * At exit, before the HTTP connections are freed: listings still waiting
 * are dropped without an answer.
 */
void
fe_processes_shutdown(struct fe_ctx *ctx)
{
	struct fe_proc_req *pr;

	while ((pr = TAILQ_FIRST(&ctx->proc_reqs)) != NULL)
		proc_req_free(pr);
}
