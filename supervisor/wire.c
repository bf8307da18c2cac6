/*
 * wire.c: what the supervisor tells a child that has just started: its
 * configuration, and a fresh channel to every live peer its kind is wired
 * to in the process table. Runs in palyrad.
 *
 * Channels between children are created here, one socketpair per pair of
 * processes, and handed to both ends as IPC_ATTACH_PEER: at start for
 * journald and the front, once ready for a worker. Because the
 * supervisor names the tenant of a worker channel when it hands it to
 * journald and the front, their notion of who is speaking never depends on
 * anything the worker says.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "ipc.h"
#include "ipc.pb-c.h"
#include "log.h"
#include "sup.h"

static void
send_or_warn(struct sup_child *c, enum ipc_type type,
    const ProtobufCMessage *msg, const int *fds, int nfds)
{
	int rc;

	if (c->chan == NULL)
		return;
	if ((rc = ipc_chan_send(c->chan, type, 0, msg, fds, nfds)) < 0)
		log_warn("%s: cannot send %s: %s", c->label,
		    ipc_type_name(type), strerror(-rc));
}

/* journald: each tenant's agents of palyrad.conf and the providers its
 * workers know, for the agent methods (journald/agents.c). */
static void
send_tenant_agents(struct sup_ctx *ctx, struct sup_child *c)
{
	Palyra__Ipc__TenantAgents ta;
	Palyra__Ipc__AgentConfig *agents, **agentp;
	char **provs;
	size_t i, j, np = ctx->cfg->nproviders;

	if ((provs = calloc(np + 1, sizeof(*provs))) == NULL)
		fatal("calloc");
	for (j = 0; j < np; j++)
		provs[j] = ctx->cfg->providers[j].name;
	for (i = 0; i < ctx->cfg->ntenants; i++) {
		const struct cfg_tenant *t = &ctx->cfg->tenants[i];

		agents = calloc(t->nagents + 1, sizeof(*agents));
		agentp = calloc(t->nagents + 1, sizeof(*agentp));
		if (agents == NULL || agentp == NULL)
			fatal("calloc");
		for (j = 0; j < t->nagents; j++) {
			const struct cfg_agent *a = &t->agents[j];

			palyra__ipc__agent_config__init(&agents[j]);
			agents[j].name = a->name;
			agents[j].n_providers = a->nproviders;
			agents[j].providers = a->providers;
			agents[j].system_prompt =
			    a->system_prompt != NULL ? a->system_prompt : "";
			agents[j].max_output_tokens = a->max_output_tokens;
			agents[j].temperature = a->temperature;
			agents[j].max_turns = a->max_turns;
			agents[j].max_tool_calls = a->max_tool_calls;
			agents[j].max_wall_clock_ms = a->max_wall_clock_ms;
			agents[j].has_limits = 1;
			agentp[j] = &agents[j];
		}
		palyra__ipc__tenant_agents__init(&ta);
		ta.tenant = t->name;
		ta.n_agents = t->nagents;
		ta.agents = agentp;
		ta.n_providers = np;
		ta.providers = provs;
		send_or_warn(c, IPC_TENANT_AGENTS, &ta.base, NULL, 0);
		free(agents);
		free(agentp);
	}
	free(provs);
}

void
sup_child_send_tenants(struct sup_ctx *ctx, struct sup_child *c)
{
	Palyra__Ipc__TenantList tl = PALYRA__IPC__TENANT_LIST__INIT;
	char **names;
	uint64_t *quotas;
	size_t i;
	int journald = c->kind->id == SUP_KIND_JOURNALD;

	if ((names = calloc(ctx->cfg->ntenants + 1, sizeof(*names))) == NULL ||
	    (quotas = calloc(ctx->cfg->ntenants + 1, sizeof(*quotas))) == NULL)
		fatal("calloc");
	for (i = 0; i < ctx->cfg->ntenants; i++) {
		names[i] = ctx->cfg->tenants[i].name;
		quotas[i] = ctx->cfg->tenants[i].journal_quota;
	}
	tl.n_names = ctx->cfg->ntenants;
	tl.names = names;
	/* Journald alone enforces journal-quota. */
	if (journald) {
		tl.n_journal_quotas = ctx->cfg->ntenants;
		tl.journal_quotas = quotas;
	}
	send_or_warn(c, IPC_TENANT_LIST, &tl.base, NULL, 0);
	free(names);
	free(quotas);
	/* At start and at every reload, with the tenants: the credentials
	 * of the configuration now in force. */
	if (journald) {
		send_tenant_agents(ctx, c);
		sup_journal_secrets_send(ctx, c);
	}
}

static const char *
provider_type_name(enum cfg_provider_type t)
{
	switch (t) {
	case CFG_PROVIDER_OPENAI:
		return "openai";
	case CFG_PROVIDER_ANTHROPIC:
		return "anthropic";
	case CFG_PROVIDER_OPENAI_COMPATIBLE:
		return "openai-compatible";
	case CFG_PROVIDER_OFFLINE:
		break;
	}
	return "offline";
}

/* Whether one of tenant t's agents names provider name. */
static int
tenant_uses(const struct cfg_tenant *t, const char *name)
{
	size_t i, j;

	for (i = 0; i < t->nagents; i++)
		for (j = 0; j < t->agents[i].nproviders; j++)
			if (strcmp(t->agents[i].providers[j], name) == 0)
				return 1;
	return 0;
}

static void
send_worker_config(struct sup_ctx *ctx, struct sup_child *c)
{
	Palyra__Ipc__WorkerConfig wc = PALYRA__IPC__WORKER_CONFIG__INIT;
	const struct cfg_tenant *t = c->tenant;
	Palyra__Ipc__AgentConfig *agents, **agentp;
	Palyra__Ipc__ProviderConfig *provs, **provp;
	size_t i, np = ctx->cfg->nproviders;
	uint8_t **keys;
	ssize_t klen;

	agents = calloc(t->nagents + 1, sizeof(*agents));
	if ((keys = calloc(np + 1, sizeof(*keys))) == NULL)
		fatal("calloc");
	agentp = calloc(t->nagents + 1, sizeof(*agentp));
	provs = calloc(np + 1, sizeof(*provs));
	provp = calloc(np + 1, sizeof(*provp));
	if (agents == NULL || agentp == NULL || provs == NULL || provp == NULL)
		fatal("calloc");
	for (i = 0; i < t->nagents; i++) {
		const struct cfg_agent *a = &t->agents[i];

		palyra__ipc__agent_config__init(&agents[i]);
		agents[i].name = a->name;
		agents[i].n_providers = a->nproviders;
		agents[i].providers = a->providers;
		agents[i].system_prompt = a->system_prompt != NULL ?
		    a->system_prompt : "";
		agents[i].max_output_tokens = a->max_output_tokens;
		agents[i].temperature = a->temperature;
		agents[i].max_turns = a->max_turns;
		agents[i].max_tool_calls = a->max_tool_calls;
		agents[i].max_wall_clock_ms = a->max_wall_clock_ms;
		agents[i].has_limits = 1;
		agentp[i] = &agents[i];
	}
	for (i = 0; i < np; i++) {
		const struct cfg_provider *p = &ctx->cfg->providers[i];

		palyra__ipc__provider_config__init(&provs[i]);
		provs[i].name = p->name;
		provs[i].type = (char *)provider_type_name(p->type);
		provs[i].model = p->model != NULL ? p->model : "";
		provs[i].embedding_model = p->embedding_model != NULL ?
		    p->embedding_model : "";
		provs[i].base_url = p->base_url != NULL ? p->base_url : "";
		provs[i].token_delay_ms = p->token_delay_ms;
		provs[i].timeout_connect_ms = p->timeout_connect_ms;
		provs[i].timeout_first_byte_ms = p->timeout_first_byte_ms;
		provs[i].timeout_idle_ms = p->timeout_idle_ms;
		provs[i].timeout_total_ms = p->timeout_total_ms;
		provs[i].max_concurrent = p->max_concurrent;
		/* The credential of the tenant's agents' providers only,
		 * wiped once sent; never logged, only the provider's name. */
		if (p->api_key != NULL && tenant_uses(t, p->name)) {
			if ((keys[i] = malloc(JNL_SECRET_MAX_LEN + 1)) == NULL)
				fatal("malloc");
			klen = sup_provider_secret(p, keys[i],
			    JNL_SECRET_MAX_LEN + 1);
			if (klen < 0)
				log_warn("provider %s: cannot read its "
				    "api-key: %s", p->name,
				    strerror((int)-klen));
			else if (klen == 0)
				log_warn("provider %s: its api-key is empty "
				    "or unset", p->name);
			else {
				provs[i].api_key.data = keys[i];
				provs[i].api_key.len = (size_t)klen;
			}
		}
		provp[i] = &provs[i];
	}
	wc.tenant = t->name;
	wc.n_agents = t->nagents;
	wc.agents = agentp;
	wc.n_providers = np;
	wc.providers = provp;
	send_or_warn(c, IPC_WORKER_CONFIG, &wc.base, NULL, 0);
	for (i = 0; i < np; i++)
		if (keys[i] != NULL) {
			sodium_memzero(keys[i], JNL_SECRET_MAX_LEN + 1);
			free(keys[i]);
		}
	free(keys);
	free(agents);
	free(agentp);
	free(provs);
	free(provp);
}

void
sup_child_configure(struct sup_ctx *ctx, struct sup_child *c)
{
	Palyra__Ipc__JournalConfig jc = PALYRA__IPC__JOURNAL_CONFIG__INIT;
	Palyra__Ipc__FrontKeys fk = PALYRA__IPC__FRONT_KEYS__INIT;

	switch (c->kind->id) {
	case SUP_KIND_JOURNALD:
		jc.durability_full =
		    ctx->cfg->durability == CFG_DURABILITY_FULL;
		jc.checkpoint_interval_ms = ctx->cfg->checkpoint_interval_ms;
		send_or_warn(c, IPC_JOURNAL_CONFIG, &jc.base, NULL, 0);
		sup_child_send_tenants(ctx, c);
		break;
	case SUP_KIND_FRONT:
		/* First: the front serves nothing before it knows which of
		 * its listeners speak TLS. */
		(void)sup_tls_send(ctx, c);
		fk.token_hash_key.data = ctx->token_hash_key;
		fk.token_hash_key.len = sizeof(ctx->token_hash_key);
		fk.admin_token_hash.data = ctx->admin_token_hash;
		fk.admin_token_hash.len = sizeof(ctx->admin_token_hash);
		send_or_warn(c, IPC_FRONT_KEYS, &fk.base, NULL, 0);
		sup_child_send_tenants(ctx, c);
		break;
	case SUP_KIND_WORKER:
		send_worker_config(ctx, c);
		break;
	case SUP_KIND_COUNT:
		break;
	}
}

/* Tells child c about a new channel to peer p (fd is c's end). */
static void
attach(struct sup_child *c, const struct sup_child *p, int fd)
{
	Palyra__Ipc__AttachPeer ap = PALYRA__IPC__ATTACH_PEER__INIT;

	switch (p->kind->id) {
	case SUP_KIND_JOURNALD:
		ap.kind = PALYRA__IPC__PEER_KIND__PEER_JOURNALD;
		break;
	case SUP_KIND_FRONT:
		ap.kind = PALYRA__IPC__PEER_KIND__PEER_FRONT;
		break;
	default:
		ap.kind = PALYRA__IPC__PEER_KIND__PEER_WORKER;
		ap.tenant = (char *)p->tenant_name;
		ap.index = p->index;
		break;
	}
	ap.generation = p->generation;
	send_or_warn(c, IPC_ATTACH_PEER, &ap.base, &fd, 1);
}

void
sup_child_wire(struct sup_ctx *ctx, struct sup_child *c)
{
	struct sup_child *p;
	int sv[2], rc;

	TAILQ_FOREACH(p, &ctx->children, entry) {
		if (p == c || p->chan == NULL ||
		    (c->kind->peers & (1U << p->kind->id)) == 0)
			continue;
		if (p->state != SUP_CHILD_READY &&
		    (p->state != SUP_CHILD_STARTING || p->kind->per_tenant))
			continue;
		if ((rc = ipc_socketpair(sv)) < 0) {
			log_error("%s <-> %s: socketpair: %s", c->label,
			    p->label, strerror(-rc));
			continue;
		}
		attach(c, p, sv[0]);
		attach(p, c, sv[1]);
		close(sv[0]);
		close(sv[1]);
	}
}
