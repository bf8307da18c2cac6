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
#include "vault.h"

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

/*
 * The allocations behind one message: protobuf-c wants arrays of
 * pointers, which live only until the message is sent.
 */
struct wire_arena {
	void		**ptrs;
	size_t		 n;
	size_t		 cap;
};

static void *
arena_calloc(struct wire_arena *a, size_t n, size_t size)
{
	void **grown, *p;

	if (a->n == a->cap) {
		a->cap = a->cap == 0 ? 16 : a->cap * 2;
		if ((grown = reallocarray(a->ptrs, a->cap,
		    sizeof(*a->ptrs))) == NULL)
			fatal("reallocarray");
		a->ptrs = grown;
	}
	/* One more element than asked: calloc(0) may return NULL. */
	if ((p = calloc(n + 1, size)) == NULL)
		fatal("calloc");
	a->ptrs[a->n++] = p;
	return p;
}

static void
arena_free(struct wire_arena *a)
{
	size_t i;

	for (i = 0; i < a->n; i++)
		free(a->ptrs[i]);
	free(a->ptrs);
	memset(a, 0, sizeof(*a));
}

static const char *const tool_policy_names[] = { "allow", "ask", "deny" };

/* palyrad.conf http-fetch { } as FetchPolicy (worker/fetch.c). */
static void
fetch_fill(Palyra__Ipc__FetchPolicy *fp, const struct cfg_fetch *f,
    struct wire_arena *arena)
{
	Palyra__Ipc__FetchAllow *allow, **allowp;
	size_t i;

	palyra__ipc__fetch_policy__init(fp);
	allow = arena_calloc(arena, f->nallow, sizeof(*allow));
	allowp = arena_calloc(arena, f->nallow, sizeof(*allowp));
	for (i = 0; i < f->nallow; i++) {
		palyra__ipc__fetch_allow__init(&allow[i]);
		allow[i].host = f->allow[i].host;
		allow[i].port = f->allow[i].port;
		allow[i].allow_private = f->allow[i].allow_private;
		allowp[i] = &allow[i];
	}
	fp->n_allow = f->nallow;
	fp->allow = allowp;
	fp->max_bytes = f->max_bytes;
	fp->timeout_ms = f->timeout_ms;
	fp->n_content_types = f->ncontent_types;
	fp->content_types = f->content_types;
	fp->max_redirects = f->max_redirects;
	fp->has_max_redirects = f->has_max_redirects;
}

/* One agent of palyrad.conf as AgentConfig, for workers and journald. */
static void
agent_fill(Palyra__Ipc__AgentConfig *ac, const struct cfg_agent *a,
    struct wire_arena *arena)
{
	Palyra__Ipc__ToolRule *rules, **rulep;
	Palyra__Ipc__FetchPolicy *fetch;
	size_t i;

	palyra__ipc__agent_config__init(ac);
	ac->name = a->name;
	ac->n_providers = a->nproviders;
	ac->providers = a->providers;
	ac->system_prompt = a->system_prompt != NULL ? a->system_prompt : "";
	ac->max_output_tokens = a->max_output_tokens;
	ac->temperature = a->temperature;
	ac->max_turns = a->max_turns;
	ac->max_tool_calls = a->max_tool_calls;
	ac->max_wall_clock_ms = a->max_wall_clock_ms;
	ac->has_limits = 1;
	rules = arena_calloc(arena, a->ntools, sizeof(*rules));
	rulep = arena_calloc(arena, a->ntools, sizeof(*rulep));
	for (i = 0; i < a->ntools; i++) {
		palyra__ipc__tool_rule__init(&rules[i]);
		rules[i].pattern = a->tools[i].pattern;
		rules[i].policy = (char *)tool_policy_names[a->tools[i].policy];
		rulep[i] = &rules[i];
	}
	ac->n_tools = a->ntools;
	ac->tools = rulep;
	ac->approval_timeout_ms = a->approval_timeout_ms;
	ac->client_tool_timeout_ms = a->client_tool_timeout_ms;
	if (a->fetch.set) {
		fetch = arena_calloc(arena, 1, sizeof(*fetch));
		fetch_fill(fetch, &a->fetch, arena);
		ac->has_fetch = 1;
		ac->fetch = fetch;
	}
	ac->recall_top_k = a->recall_top_k;
	ac->recall_min_score = a->recall_min_score;
}

/* A tenant's agents as an array of AgentConfig pointers. */
static Palyra__Ipc__AgentConfig **
agents_fill(const struct cfg_tenant *t, struct wire_arena *arena)
{
	Palyra__Ipc__AgentConfig *agents, **agentp;
	size_t i;

	agents = arena_calloc(arena, t->nagents, sizeof(*agents));
	agentp = arena_calloc(arena, t->nagents, sizeof(*agentp));
	for (i = 0; i < t->nagents; i++) {
		agent_fill(&agents[i], &t->agents[i], arena);
		agentp[i] = &agents[i];
	}
	return agentp;
}

/* The tenant's budgets of palyrad.conf (journald/usage.c): ids of the
 * shared contract, limits in tokens or micro-USD, source "config". */
static Palyra__V1__Budget **
budgets_fill(const struct cfg_tenant *t, struct wire_arena *arena)
{
	static const Palyra__V1__BudgetScope scopes[] = {
		[CFG_BUDGET_TENANT] =
		    PALYRA__V1__BUDGET_SCOPE__BUDGET_SCOPE_TENANT,
		[CFG_BUDGET_AGENT] =
		    PALYRA__V1__BUDGET_SCOPE__BUDGET_SCOPE_AGENT,
		[CFG_BUDGET_PRINCIPAL] =
		    PALYRA__V1__BUDGET_SCOPE__BUDGET_SCOPE_PRINCIPAL,
	};
	static const Palyra__V1__BudgetPeriod periods[] = {
		[CFG_PERIOD_DAY] = PALYRA__V1__BUDGET_PERIOD__BUDGET_PERIOD_DAY,
		[CFG_PERIOD_MONTH] =
		    PALYRA__V1__BUDGET_PERIOD__BUDGET_PERIOD_MONTH,
		[CFG_PERIOD_TOTAL] =
		    PALYRA__V1__BUDGET_PERIOD__BUDGET_PERIOD_TOTAL,
	};
	Palyra__V1__Budget *budgets, **budgetp;
	const struct cfg_budget *b;
	char *id;
	size_t i, idlen = NAME_MAX_LEN + 40;

	budgets = arena_calloc(arena, t->nbudgets, sizeof(*budgets));
	budgetp = arena_calloc(arena, t->nbudgets, sizeof(*budgetp));
	for (i = 0; i < t->nbudgets; i++) {
		b = &t->budgets[i];
		palyra__v1__budget__init(&budgets[i]);
		id = arena_calloc(arena, idlen, 1);
		cfg_budget_id(b, id, idlen);
		budgets[i].budget_id = id;
		budgets[i].scope = scopes[b->scope];
		budgets[i].subject = b->subject != NULL ? b->subject : "";
		budgets[i].unit = b->unit == CFG_BUDGET_COST ?
		    PALYRA__V1__BUDGET_UNIT__BUDGET_UNIT_COST :
		    PALYRA__V1__BUDGET_UNIT__BUDGET_UNIT_TOKENS;
		budgets[i].limit = cfg_budget_limit(b);
		budgets[i].period = periods[b->period];
		budgets[i].hard = b->hard;
		budgets[i].source = "config";
		budgetp[i] = &budgets[i];
	}
	return budgetp;
}

/* One tenant's TenantAgents; provs: the names of every provider. */
static void
tenant_agents_fill(const struct cfg *cfg, const struct cfg_tenant *t,
    char **provs, Palyra__Ipc__TenantAgents *ta, struct wire_arena *arena)
{
	palyra__ipc__tenant_agents__init(ta);
	ta->tenant = t->name;
	ta->n_agents = t->nagents;
	ta->agents = agents_fill(t, arena);
	ta->n_providers = cfg->nproviders;
	ta->providers = provs;
	ta->n_budgets = t->nbudgets;
	ta->budgets = budgets_fill(t, arena);
	ta->timezone = t->timezone != NULL ? t->timezone : "";
}

static char **
provider_names(const struct cfg *cfg)
{
	char **provs;
	size_t j;

	if ((provs = calloc(cfg->nproviders + 1, sizeof(*provs))) == NULL)
		fatal("calloc");
	for (j = 0; j < cfg->nproviders; j++)
		provs[j] = cfg->providers[j].name;
	return provs;
}

/* journald: each tenant's agents of palyrad.conf and the providers its
 * workers know, for the agent methods (journald/agents.c), with its
 * budgets and time zone (journald/usage.c). */
static void
send_tenant_agents(struct sup_ctx *ctx, struct sup_child *c)
{
	Palyra__Ipc__TenantAgents ta;
	struct wire_arena arena = { NULL, 0, 0 };
	char **provs = provider_names(ctx->cfg);
	size_t i;

	for (i = 0; i < ctx->cfg->ntenants; i++) {
		tenant_agents_fill(ctx->cfg, &ctx->cfg->tenants[i], provs, &ta,
		    &arena);
		send_or_warn(c, IPC_TENANT_AGENTS, &ta.base, NULL, 0);
		arena_free(&arena);
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

/* Whether one of tenant t's agents names provider name, or its memory
 * block names it as the embedder. */
static int
tenant_uses(const struct cfg_tenant *t, const char *name)
{
	size_t i, j;

	if (t->memory.embedder != NULL &&
	    strcmp(t->memory.embedder, name) == 0)
		return 1;
	for (i = 0; i < t->nagents; i++)
		for (j = 0; j < t->agents[i].nproviders; j++)
			if (strcmp(t->agents[i].providers[j], name) == 0)
				return 1;
	return 0;
}

/* A tenant's WorkerConfig but the providers' credentials. */
static void
worker_config_fill(const struct cfg *cfg, const struct cfg_tenant *t,
    Palyra__Ipc__WorkerConfig *wc, Palyra__Ipc__FetchPolicy *fetch,
    struct wire_arena *arena)
{
	Palyra__Ipc__ProviderConfig *provs, **provp;
	Palyra__Ipc__Pricing *prices, **pricep;
	Palyra__Ipc__MemoryConfig *memory;
	size_t i, np = cfg->nproviders, nprice = cfg->npricing;

	palyra__ipc__worker_config__init(wc);
	provs = arena_calloc(arena, np, sizeof(*provs));
	provp = arena_calloc(arena, np, sizeof(*provp));
	for (i = 0; i < np; i++) {
		const struct cfg_provider *p = &cfg->providers[i];

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
		provp[i] = &provs[i];
	}
	/* Every price: a tenant's provider may serve any model. */
	prices = arena_calloc(arena, nprice, sizeof(*prices));
	pricep = arena_calloc(arena, nprice, sizeof(*pricep));
	for (i = 0; i < nprice; i++) {
		palyra__ipc__pricing__init(&prices[i]);
		prices[i].model = cfg->pricing[i].model;
		prices[i].input_per_million =
		    cfg->pricing[i].input_per_million;
		prices[i].output_per_million =
		    cfg->pricing[i].output_per_million;
		pricep[i] = &prices[i];
	}
	wc->tenant = t->name;
	wc->n_agents = t->nagents;
	wc->agents = agents_fill(t, arena);
	wc->n_providers = np;
	wc->providers = provp;
	wc->n_pricing = nprice;
	wc->pricing = pricep;
	wc->timezone = t->timezone != NULL ? t->timezone : "";
	fetch_fill(fetch, &t->fetch, arena);
	wc->fetch = fetch;
	memory = arena_calloc(arena, 1, sizeof(*memory));
	palyra__ipc__memory_config__init(memory);
	memory->embedder = t->memory.embedder != NULL ?
	    t->memory.embedder : "";
	memory->default_ttl_ms = t->memory.default_ttl_ms;
	memory->max_items = t->memory.max_items;
	wc->memory = memory;
}

static void
send_worker_config(struct sup_ctx *ctx, struct sup_child *c)
{
	Palyra__Ipc__WorkerConfig wc;
	Palyra__Ipc__FetchPolicy fetch;
	const struct cfg_tenant *t = c->tenant;
	struct wire_arena arena = { NULL, 0, 0 };
	size_t i, np = ctx->cfg->nproviders;
	uint8_t **keys, vault_key[SUP_VAULT_KEY_LEN];
	ssize_t klen;

	if ((keys = calloc(np + 1, sizeof(*keys))) == NULL)
		fatal("calloc");
	worker_config_fill(ctx->cfg, t, &wc, &fetch, &arena);
	/* The tenant's vault data key, for this tenant's workers only;
	 * without it the worker answers vault calls with an error. */
	if (sup_vault_tenant_key(ctx, t->name, vault_key) == 0) {
		wc.vault_key.data = vault_key;
		wc.vault_key.len = sizeof(vault_key);
	}
	for (i = 0; i < np; i++) {
		const struct cfg_provider *p = &ctx->cfg->providers[i];

		/* The credential of the tenant's agents' providers only,
		 * wiped once sent; never logged, only the provider's name. */
		if (p->api_key == NULL || !tenant_uses(t, p->name))
			continue;
		/* vault:NAME: the worker decrypts the tenant's item NAME. */
		if (strncmp(p->api_key, "vault:", 6) == 0 &&
		    strncmp(p->api_key, "vault:host/", 11) != 0) {
			wc.providers[i]->api_key_vault = p->api_key + 6;
			continue;
		}
		if ((keys[i] = malloc(JNL_SECRET_MAX_LEN + 1)) == NULL)
			fatal("malloc");
		klen = sup_provider_secret(ctx, p, keys[i],
		    JNL_SECRET_MAX_LEN + 1);
		if (klen == -ENOENT &&
		    strncmp(p->api_key, "vault:host/", 11) == 0)
			log_warn("provider %s: host vault secret %s is not "
			    "set", p->name, p->api_key + 11);
		else if (klen < 0)
			log_warn("provider %s: cannot read its api-key: %s",
			    p->name, strerror((int)-klen));
		else if (klen == 0)
			log_warn("provider %s: its api-key is empty or unset",
			    p->name);
		else {
			wc.providers[i]->api_key.data = keys[i];
			wc.providers[i]->api_key.len = (size_t)klen;
		}
	}
	send_or_warn(c, IPC_WORKER_CONFIG, &wc.base, NULL, 0);
	sodium_memzero(vault_key, sizeof(vault_key));
	for (i = 0; i < np; i++)
		if (keys[i] != NULL) {
			sodium_memzero(keys[i], JNL_SECRET_MAX_LEN + 1);
			free(keys[i]);
		}
	free(keys);
	arena_free(&arena);
}

int
sup_wire_check(const struct cfg *cfg, char *err, size_t errlen)
{
	Palyra__Ipc__TenantAgents ta;
	Palyra__Ipc__WorkerConfig wc;
	Palyra__Ipc__FetchPolicy fetch;
	struct wire_arena arena = { NULL, 0, 0 };
	const struct cfg_tenant *t;
	char **provs = provider_names(cfg);
	size_t i, j, size, worst;
	int rc = 0;

	for (i = 0; i < cfg->ntenants && rc == 0; i++) {
		t = &cfg->tenants[i];
		worker_config_fill(cfg, t, &wc, &fetch, &arena);
		/* Room for the credentials the worker may get, and for
		 * its vault key. */
		size = protobuf_c_message_get_packed_size(&wc.base) +
		    SUP_VAULT_KEY_LEN + 8;
		for (j = 0; j < cfg->nproviders; j++)
			if (cfg->providers[j].api_key != NULL)
				size += JNL_SECRET_MAX_LEN + 8;
		arena_free(&arena);
		tenant_agents_fill(cfg, t, provs, &ta, &arena);
		worst = protobuf_c_message_get_packed_size(&ta.base);
		arena_free(&arena);
		if (worst < size)
			worst = size;
		if (worst > IPC_MAX_PAYLOAD) {
			snprintf(err, errlen, "%s:%d:%d: tenant \"%s\" is too "
			    "large to send to its processes (%zu bytes with "
			    "its agents, prompts, tool rules and budgets; "
			    "limit %d)", t->pos.file != NULL ? t->pos.file :
			    "palyrad.conf", t->pos.line, t->pos.col, t->name,
			    worst, IPC_MAX_PAYLOAD);
			rc = -1;
		}
	}
	free(provs);
	return rc;
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
