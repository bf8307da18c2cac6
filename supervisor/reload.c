/*
 * reload.c: SIGHUP. Runs in palyrad.
 *
 * The file is parsed into a new configuration; a file with errors leaves
 * the running one in place. Tenants that were added get an idle worker slot
 * (their workers start on first use, supervisor/pool.c), removed ones drain
 * and stop, changed ones get their new configuration (workers past a
 * lowered `workers` drain and stop), unchanged ones are not touched. Settings that need new sockets, new ids or a new state
 * directory keep their running values until palyrad restarts, and the log
 * says so (a listener's address and whether it uses TLS among them). The
 * certificate and key files of TLS listeners are read again and sent to
 * the front: certificate reload. The tenants of STATE/tenants.conf
 * (created through the admin API) are merged into the new configuration,
 * and the API's own changes are applied by the same sup_reload_apply()
 * (supervisor/tenants.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "sup.h"

#define SWAP(a, b) do {					\
	__typeof__(a) swap_tmp = (a);			\
	(a) = (b);					\
	(b) = swap_tmp;					\
} while (0)

static int
str_differs(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a != b;
	return strcmp(a, b) != 0;
}

static int
listen_differs(const struct cfg_listen *a, const struct cfg_listen *b)
{
	return str_differs(a->host, b->host) || a->port != b->port ||
	    a->tls != b->tls;
}

/* Keeps in next what cannot change while running; warns about changes. */
static void
keep_fixed(struct cfg *cur, struct cfg *next)
{
	if (str_differs(cur->state_dir, next->state_dir))
		log_warn("reload: state-dir changes after a restart");
	SWAP(cur->state_dir, next->state_dir);
	if (str_differs(cur->user, next->user))
		log_warn("reload: user changes after a restart");
	SWAP(cur->user, next->user);
	if (cur->worker_uid_min != next->worker_uid_min ||
	    cur->worker_uid_max != next->worker_uid_max)
		log_warn("reload: worker-uid-range changes after a restart");
	next->worker_uid_min = cur->worker_uid_min;
	next->worker_uid_max = cur->worker_uid_max;
	if (listen_differs(&cur->grpc, &next->grpc) ||
	    listen_differs(&cur->http, &next->http))
		log_warn("reload: listen addresses and tls on/off change after "
		    "a restart");
	/* A listener that stays on TLS takes the new certificate and key
	 * paths: they are read again below (certificate reload). */
	if (cur->grpc.tls && next->grpc.tls && !listen_differs(&cur->grpc,
	    &next->grpc)) {
		SWAP(cur->grpc.tls_certificate, next->grpc.tls_certificate);
		SWAP(cur->grpc.tls_key, next->grpc.tls_key);
	}
	if (cur->http.tls && next->http.tls && !listen_differs(&cur->http,
	    &next->http)) {
		SWAP(cur->http.tls_certificate, next->http.tls_certificate);
		SWAP(cur->http.tls_key, next->http.tls_key);
	}
	SWAP(cur->grpc, next->grpc);
	SWAP(cur->http, next->http);
	if (cur->durability != next->durability)
		log_warn("reload: journal durability changes after a restart");
	next->durability = cur->durability;
}

/*
 * SIGHUP and POST /admin/v1/reload (why names which). Returns 0, or -1
 * with the reason in err (errlen > 0) and the running configuration kept.
 */
int
sup_reload(struct sup_ctx *ctx, const char *why, char *err, size_t errlen)
{
	struct cfg *next;
	char tls[CFG_ERR_LEN];

	log_info("%s: reloading %s", why, ctx->config_path);
	if (cfg_load(ctx->config_path, ctx->start_dir, &next, err,
	    errlen) != 0) {
		log_error("reload failed, keeping the running configuration: "
		    "%s", err);
		return -1;
	}
	if (sup_safety_check(next, err, errlen) == -1) {
		log_error("reload failed, keeping the running configuration: "
		    "%s", err);
		cfg_free(next);
		return -1;
	}
	if (sup_tls_check(next, tls, sizeof(tls)) == -1) {
		snprintf(err, errlen, "tls: %s", tls);
		log_error("reload failed, keeping the running configuration: "
		    "%s", err);
		cfg_free(next);
		return -1;
	}
	if (sup_wire_check(next, err, errlen) == -1) {
		log_error("reload failed, keeping the running configuration: "
		    "%s", err);
		cfg_free(next);
		return -1;
	}
	/* The tenants created through the admin API come along. */
	if (sup_tenants_merge(ctx->cfg->state_dir, next) == -1) {
		snprintf(err, errlen, "the runtime tenants file cannot be "
		    "read (see palyrad's log)");
		log_error("reload failed, keeping the running configuration");
		cfg_free(next);
		return -1;
	}
	keep_fixed(ctx->cfg, next);
	cfg_free(sup_reload_apply(ctx, next, 1));
	return 0;
}

/*
 * Makes next the running configuration and returns the old one, which the
 * caller frees: nothing points into it any more. full: a SIGHUP
 * (certificates are sent again, parked workers get another chance); 0: a
 * tenant change through the admin API (supervisor/tenants.c), which
 * touches nothing but the tenants.
 */
struct cfg *
sup_reload_apply(struct sup_ctx *ctx, struct cfg *next, int full)
{
	struct cfg *old = ctx->cfg;
	const struct cfg_tenant *t;
	struct sup_child *c, *tmp;
	size_t i, added = 0, removed = 0;

	/* Point every worker at its tenant in the new configuration, or
	 * drain it when its tenant is gone. */
	for (c = TAILQ_FIRST(&ctx->children); c != NULL; c = tmp) {
		tmp = TAILQ_NEXT(c, entry);
		if (c->kind->id != SUP_KIND_WORKER || c->removing)
			continue;
		if ((t = cfg_tenant_find(next, c->tenant_name)) == NULL) {
			if (c->index == 0)
				removed++;
			sup_child_remove(c);
			continue;
		}
		if (c->index >= t->workers) {
			sup_child_remove(c);
			continue;
		}
		c->tenant = t;
		/* New limits apply to the running worker now; an added
		 * tenant's group is made when its worker is spawned. */
		if (c->pid > 0)
			(void)sup_cgroup_prepare(ctx, c);
	}
	ctx->cfg = next;

	TAILQ_FOREACH(c, &ctx->children, entry) {
		if (c->removing)
			continue;
		if (c->kind->id != SUP_KIND_WORKER) {
			/* Certificate reload: new connections use the new
			 * certificates, open ones keep theirs. */
			if (full && c->kind->id == SUP_KIND_FRONT &&
			    (c->state == SUP_CHILD_STARTING ||
			    c->state == SUP_CHILD_READY))
				(void)sup_tls_send(ctx, c);
			sup_child_send_tenants(ctx, c);
			continue;
		}
		if (full && c->state == SUP_CHILD_PARKED) {
			log_info("%s: unparked by reload", c->label);
			c->early_deaths = 0;
			c->backoff_ms = 0;
			(void)sup_child_transition(c, SUP_CHILD_IDLE);
		} else if (c->state == SUP_CHILD_STARTING ||
		    c->state == SUP_CHILD_READY)
			sup_child_configure(ctx, c);
	}
	for (i = 0; i < next->ntenants; i++) {
		if (sup_child_find(ctx, SUP_KIND_WORKER,
		    next->tenants[i].name) != NULL)
			continue;
		if ((c = sup_child_add(ctx, &sup_kinds[SUP_KIND_WORKER],
		    &next->tenants[i], 0)) == NULL) {
			log_error("reload: cannot add tenant %s",
			    next->tenants[i].name);
			continue;
		}
		added++;
	}
	log_info("%s: %zu tenant(s), %zu added, %zu removed",
	    full ? "reloaded" : "tenants changed", next->ntenants, added,
	    removed);
	return old;
}
