/*
 * pool.c: the workers of each tenant. Runs in palyrad; touches only the
 * process table (ctx->children).
 *
 * No worker runs until the front asks for one (IPC_WORKER_WANTED, when a
 * RunStream finds no worker of its tenant attached, or every attached one
 * busy), or journald does (runs waiting for an approval to recover). A tenant has at most `workers` of them, in slots 0 .. workers - 1
 * that are added as they are first wanted, so that a host with thousands
 * of configured tenants carries only the active ones. A worker that stays
 * idle for the tenant's idle-timeout exits PROC_EXIT_IDLE and its slot goes
 * back to IDLE, to be started again by the next request. All workers of a
 * tenant share its uid, scratch directory and control group.
 */
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "ipc.h"
#include "log.h"
#include "sup.h"

/*
 * The front wants `count` workers of tenant (at least 1, at most the
 * tenant's `workers`). One more is started when fewer are starting,
 * running or in back-off; nothing happens while one of the tenant's
 * workers is parked (a crash loop waits for a reload). A request for one
 * worker is therefore ignored while one starts or runs. A worker whose
 * channel already closed is on its way out: if no other slot can serve, it
 * is marked to start again as soon as it has exited.
 */
void
sup_worker_wanted(struct sup_ctx *ctx, const char *tenant, uint32_t count)
{
	const struct cfg_tenant *t;
	struct sup_child *c, *idle = NULL, *exiting = NULL;
	uint64_t used = 0;
	uint32_t live = 0, index;

	if (!cfg_name_valid(tenant) ||
	    (t = cfg_tenant_find(ctx->cfg, tenant)) == NULL) {
		log_warn("worker wanted for an unknown tenant");
		return;
	}
	if (count < 1)
		count = 1;
	if (count > t->workers)
		count = t->workers;
	TAILQ_FOREACH(c, &ctx->children, entry) {
		if (c->kind->id != SUP_KIND_WORKER || c->removing ||
		    strcmp(c->tenant_name, tenant) != 0)
			continue;
		if (c->index < 64)
			used |= UINT64_C(1) << c->index;
		switch (c->state) {
		case SUP_CHILD_PARKED:
			log_debug("%s: parked; worker request ignored",
			    c->label);
			return;
		case SUP_CHILD_STARTING:
			live++;
			break;
		case SUP_CHILD_READY:
			if (c->chan == NULL || ipc_chan_dead(c->chan))
				exiting = c;
			else
				live++;
			break;
		case SUP_CHILD_BACKOFF:
			live++;		/* restarts on its own */
			break;
		case SUP_CHILD_IDLE:
			if (c->index < t->workers &&
			    (idle == NULL || c->index < idle->index))
				idle = c;
			break;
		default:
			break;
		}
	}
	if (live >= count)
		return;
	if (idle != NULL) {
		sup_child_start(idle);
		return;
	}
	for (index = 0; index < t->workers && (used >> index & 1); index++)
		;
	if (index < t->workers) {
		if ((c = sup_child_add(ctx, &sup_kinds[SUP_KIND_WORKER], t,
		    index)) == NULL) {
			log_error("worker[%s#%u]: cannot add the slot", tenant,
			    index);
			return;
		}
		sup_child_start(c);
		return;
	}
	if (exiting != NULL) {
		log_debug("%s: exiting; started again once it has",
		    exiting->label);
		exiting->wanted = 1;
	}
}

/* The worker exited PROC_EXIT_IDLE: a clean retirement, no back-off. */
void
sup_worker_retired(struct sup_child *c)
{
	log_info("%s: retired after its idle-timeout", c->label);
	c->early_deaths = 0;
	c->backoff_ms = 0;
	if (sup_child_transition(c, SUP_CHILD_IDLE) != 0) {
		/* Not READY or STARTING: leave the slot as it was. */
		return;
	}
	if (c->wanted)
		sup_child_start(c);
}
