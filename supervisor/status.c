/*
 * status.c: the supervisor's answer to the front's IPC_PROCESS_LIST_REQUEST
 * (GET /admin/v1/processes, `palyractl status`). Runs in palyrad.
 *
 * It reads the process table (ctx->children) and nothing else, and writes
 * only to the channel the request came on, which the process table lets
 * only the front use. The list goes out in pages that each fit one IPC
 * datagram, so that a host with thousands of tenants is listed in full.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ipc.h"
#include "ipc.pb-c.h"
#include "log.h"
#include "sup.h"

/* The wire cost of one element of a repeated message field: its tag,
 * its length as a varint (at most 5 bytes) and its bytes. */
#define REPEATED_OVERHEAD	6

/* What one child looks like in the list; strings point into c. */
static void
info_fill(const struct sup_child *c, Palyra__Ipc__ProcessInfo *info,
    char **applied, char **skipped, uint64_t now_ms)
{
	size_t i;

	palyra__ipc__process_info__init(info);
	info->kind = (char *)c->kind->name;
	info->tenant = (char *)c->tenant_name;
	info->index = c->index;
	info->pid = c->pid > 0 ? (uint32_t)c->pid : 0;
	/* A child whose ids were not switched runs as the supervisor. */
	info->uid = c->uid != (uid_t)-1 ? (uint32_t)c->uid :
	    (uint32_t)getuid();
	info->gid = c->gid != (gid_t)-1 ? (uint32_t)c->gid :
	    (uint32_t)getgid();
	info->state = (char *)sup_child_state_name(c->state);
	info->restarts = c->restarts;
	info->uptime_ms = c->pid > 0 && now_ms > c->started_ms ?
	    now_ms - c->started_ms : 0;
	info->generation = c->generation;
	for (i = 0; i < c->napplied && i < SUP_FACTS_MAX; i++)
		applied[i] = (char *)c->applied[i];
	info->n_sandbox_applied = i;
	info->sandbox_applied = applied;
	for (i = 0; i < c->nskipped && i < SUP_FACTS_MAX; i++)
		skipped[i] = (char *)c->skipped[i];
	info->n_sandbox_skipped = i;
	info->sandbox_skipped = skipped;
	info->cgroup = (char *)c->cgroup;
	info->last_exit = (char *)c->last_exit;
}

static int
page_send(struct sup_ctx *ctx, struct sup_child *to, uint32_t request_id,
    Palyra__Ipc__ProcessInfo **infos, size_t n, int more, uint64_t now_ms)
{
	Palyra__Ipc__ProcessList list = PALYRA__IPC__PROCESS_LIST__INIT;

	list.processes = infos;
	list.n_processes = n;
	list.supervisor_pid = (uint32_t)getpid();
	list.supervisor_uptime_ms = now_ms - ctx->started_ms;
	list.more = more;
	return ipc_chan_send(to->chan, IPC_PROCESS_LIST, request_id,
	    &list.base, NULL, 0);
}

/*
 * Sends the process list to child `to` (the front) as answer to its
 * request request_id. Returns 0, -ENOMEM, or the channel's error
 * (-ENOBUFS, -EPIPE); on an error the front's request times out.
 */
int
sup_status_send(struct sup_ctx *ctx, struct sup_child *to,
    uint32_t request_id)
{
	Palyra__Ipc__ProcessInfo *infos = NULL, **ptrs = NULL;
	char **facts = NULL;
	struct sup_child *c;
	uint64_t now_ms = sup_now_ms();
	size_t n = 0, i, start, page_bytes, one;
	int rc = 0;

	if (to->chan == NULL)
		return -EPIPE;
	TAILQ_FOREACH(c, &ctx->children, entry)
		n++;
	infos = calloc(n + 1, sizeof(*infos));
	ptrs = calloc(n + 1, sizeof(*ptrs));
	facts = calloc((n + 1) * 2 * SUP_FACTS_MAX, sizeof(*facts));
	if (infos == NULL || ptrs == NULL || facts == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	i = 0;
	TAILQ_FOREACH(c, &ctx->children, entry) {
		info_fill(c, &infos[i], &facts[i * 2 * SUP_FACTS_MAX],
		    &facts[i * 2 * SUP_FACTS_MAX + SUP_FACTS_MAX], now_ms);
		ptrs[i] = &infos[i];
		i++;
	}
	/* Pages of as many processes as fit; an empty table is one page. */
	start = 0;
	page_bytes = 0;
	for (i = 0; i < n; i++) {
		one = protobuf_c_message_get_packed_size(&infos[i].base) +
		    REPEATED_OVERHEAD;
		if (i > start && page_bytes + one > SUP_STATUS_PAGE_BYTES) {
			rc = page_send(ctx, to, request_id, &ptrs[start],
			    i - start, 1, now_ms);
			if (rc < 0)
				goto out;
			start = i;
			page_bytes = 0;
		}
		page_bytes += one;
	}
	rc = page_send(ctx, to, request_id, &ptrs[start], n - start, 0,
	    now_ms);
out:
	if (rc < 0)
		log_warn("%s: cannot send the process list: %s", to->label,
		    strerror(-rc));
	free(facts);
	free(ptrs);
	free(infos);
	return rc;
}
