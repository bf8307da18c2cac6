/*
 * config_tenant.c: the handlers of the palyrad.conf tenant block and what
 * it holds: workers, idle-timeout, memory-limit, pids-limit, cpu-weight,
 * journal-quota, timezone, agents (providers, prompt, output and run
 * limits, tools, approval and client-tool timeouts) and budgets of every
 * scope, with their directive tables (http-fetch: config_fetch.c). Runs
 * in the supervisor (palyrad) only, while config.c parses; touches nothing
 * but the struct cfg under construction and the parser's state.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_int.h"
#include "config_lex.h"
#include "limits.h"

static int	budgets_check(struct parser *, const struct cfg_tenant *);

/* Tenants and agents */

static int
agent_set_default_provider(struct cfg_agent *a)
{
	if ((a->providers = calloc(1, sizeof(*a->providers))) == NULL)
		return -1;
	if ((a->providers[0] = strdup(DEFAULT_PROVIDER)) == NULL)
		return -1;
	a->nproviders = 1;
	return 0;
}

int
cfg_directive_tenant(struct parser *p, struct cfg_lexer *lx,
    const struct cfg_token *kw, const struct frame *f)
{
	struct cfg *cfg = p->cfg;
	struct cfg_token name, brace;
	struct cfg_tenant *tn;
	struct cfg_agent *a;
	unsigned int seen = 0;
	struct frame sub;
	void *grown;
	int rc;

	if (cfg_take_name(p, lx, kw, &name) == -1)
		return -1;
	if ((tn = (struct cfg_tenant *)cfg_tenant_find(cfg, name.text)) !=
	    NULL)
		return TOKEN_ERROR(p, lx, &name, "duplicate tenant \"%s\" "
		    "(first declared at line %d of %s)", name.text,
		    tn->pos.line, tn->pos.file);
	if (cfg->ntenants >= CFG_MAX_TENANTS)
		return TOKEN_ERROR(p, lx, kw, "too many tenants (limit %d)",
		    CFG_MAX_TENANTS);
	grown = cfg_array_append(cfg->tenants, &cfg->ntenants, sizeof(*tn));
	if (grown == NULL)
		return cfg_out_of_memory(p, lx, kw);
	cfg->tenants = grown;
	tn = &cfg->tenants[cfg->ntenants - 1];
	cfg_set_pos(&tn->pos, lx, kw);
	tn->workers = 1;
	tn->idle_timeout_ms = DEFAULT_IDLE_TIMEOUT_MS;
	if ((tn->name = strdup(name.text)) == NULL)
		return cfg_out_of_memory(p, lx, kw);
	sub.kind = BLOCK_TENANT;
	sub.object = tn;
	sub.seen = &seen;
	p->tenant = tn;
	rc = cfg_open_block(p, lx, kw, &sub, &brace);
	p->tenant = NULL;
	if (rc == -1)
		return -1;
	if (tn->nagents > 0)
		return budgets_check(p, tn);
	/* A tenant with no agent still answers: "assistant", offline. */
	if ((tn->agents = calloc(1, sizeof(*tn->agents))) == NULL)
		return cfg_out_of_memory(p, lx, kw);
	tn->nagents = 1;
	a = &tn->agents[0];
	a->pos = tn->pos;
	a->max_output_tokens = DEFAULT_MAX_OUTPUT;
	a->temperature = DEFAULT_TEMPERATURE;
	a->max_turns = AGENT_TURNS_DEFAULT;
	a->max_tool_calls = AGENT_TOOL_CALLS_DEFAULT;
	a->max_wall_clock_ms = AGENT_WALL_CLOCK_DEFAULT_MS;
	if ((a->name = strdup(DEFAULT_AGENT)) == NULL ||
	    (a->system_prompt = strdup(DEFAULT_PROMPT)) == NULL ||
	    agent_set_default_provider(a) == -1)
		return cfg_out_of_memory(p, lx, kw);
	return budgets_check(p, tn);
}

static int
d_workers(struct parser *p, struct cfg_lexer *lx, const struct cfg_token *kw,
    const struct frame *f)
{
	struct cfg_tenant *tn = f->object;
	uint64_t v;

	if (cfg_take_uint(p, lx, kw, 1, WORKERS_MAX, &v) == -1)
		return -1;
	tn->workers = (uint32_t)v;
	return 0;
}

/* 0 keeps a tenant's workers forever once started. */
static int
d_idle_timeout(struct parser *p, struct cfg_lexer *lx,
    const struct cfg_token *kw, const struct frame *f)
{
	struct cfg_tenant *tn = f->object;

	return cfg_take_duration(p, lx, kw, 0, IDLE_TIMEOUT_MAX,
	    &tn->idle_timeout_ms);
}

static int
d_memory_limit(struct parser *p, struct cfg_lexer *lx,
    const struct cfg_token *kw, const struct frame *f)
{
	struct cfg_tenant *tn = f->object;

	return cfg_take_size(p, lx, kw, MEMORY_LIMIT_MIN, MEMORY_LIMIT_MAX,
	    &tn->memory_limit);
}

/* The size journald lets the tenant's journal.db grow to. */
static int
d_journal_quota(struct parser *p, struct cfg_lexer *lx,
    const struct cfg_token *kw, const struct frame *f)
{
	struct cfg_tenant *tn = f->object;

	return cfg_take_size(p, lx, kw, JOURNAL_QUOTA_MIN, JOURNAL_QUOTA_MAX,
	    &tn->journal_quota);
}

static int
d_pids_limit(struct parser *p, struct cfg_lexer *lx,
    const struct cfg_token *kw, const struct frame *f)
{
	struct cfg_tenant *tn = f->object;
	uint64_t v;

	if (cfg_take_uint(p, lx, kw, 1, PIDS_LIMIT_MAX, &v) == -1)
		return -1;
	tn->pids_limit = (uint32_t)v;
	return 0;
}

static int
d_cpu_weight(struct parser *p, struct cfg_lexer *lx,
    const struct cfg_token *kw, const struct frame *f)
{
	struct cfg_tenant *tn = f->object;
	uint64_t v;

	if (cfg_take_uint(p, lx, kw, 1, CPU_WEIGHT_MAX, &v) == -1)
		return -1;
	tn->cpu_weight = (uint32_t)v;
	return 0;
}

static int
d_agent(struct parser *p, struct cfg_lexer *lx, const struct cfg_token *kw,
    const struct frame *f)
{
	struct cfg_tenant *tn = f->object;
	struct cfg_token name, brace;
	struct cfg_agent *a;
	unsigned int seen = 0;
	struct frame sub;
	void *grown;
	size_t i;

	if (cfg_take_name(p, lx, kw, &name) == -1)
		return -1;
	for (i = 0; i < tn->nagents; i++)
		if (strcmp(tn->agents[i].name, name.text) == 0)
			return TOKEN_ERROR(p, lx, &name, "duplicate agent "
			    "\"%s\" in tenant \"%s\"", name.text, tn->name);
	if (tn->nagents >= CFG_MAX_AGENTS)
		return TOKEN_ERROR(p, lx, kw, "too many agents in tenant "
		    "\"%s\" (limit %d)", tn->name, CFG_MAX_AGENTS);
	grown = cfg_array_append(tn->agents, &tn->nagents, sizeof(*a));
	if (grown == NULL)
		return cfg_out_of_memory(p, lx, kw);
	tn->agents = grown;
	a = &tn->agents[tn->nagents - 1];
	cfg_set_pos(&a->pos, lx, kw);
	a->max_output_tokens = DEFAULT_MAX_OUTPUT;
	a->temperature = DEFAULT_TEMPERATURE;
	a->max_turns = AGENT_TURNS_DEFAULT;
	a->max_tool_calls = AGENT_TOOL_CALLS_DEFAULT;
	a->max_wall_clock_ms = AGENT_WALL_CLOCK_DEFAULT_MS;
	if ((a->name = strdup(name.text)) == NULL)
		return cfg_out_of_memory(p, lx, kw);
	sub.kind = BLOCK_AGENT;
	sub.object = a;
	sub.seen = &seen;
	if (cfg_open_block(p, lx, kw, &sub, &brace) == -1)
		return -1;
	if (a->nproviders == 0 && agent_set_default_provider(a) == -1)
		return cfg_out_of_memory(p, lx, kw);
	return 0;
}

static int
d_providers(struct parser *p, struct cfg_lexer *lx,
    const struct cfg_token *kw, const struct frame *f)
{
	struct cfg_agent *a = f->object;
	struct cfg_token name;
	struct provider_ref *ref;
	void *grown;
	size_t i;
	int more;

	for (;;) {
		if (cfg_arg_follows(lx, &more) == -1)
			return -1;
		if (!more)
			break;
		if (cfg_take_name(p, lx, kw, &name) == -1)
			return -1;
		for (i = 0; i < a->nproviders; i++)
			if (strcmp(a->providers[i], name.text) == 0)
				return TOKEN_ERROR(p, lx, &name, "duplicate "
				    "provider \"%s\" in \"providers\"",
				    name.text);
		if (a->nproviders >= CFG_MAX_FAILOVER)
			return TOKEN_ERROR(p, lx, &name, "too many providers "
			    "for one agent (limit %d)", CFG_MAX_FAILOVER);
		grown = cfg_array_append(a->providers, &a->nproviders,
		    sizeof(*a->providers));
		if (grown == NULL)
			return cfg_out_of_memory(p, lx, &name);
		a->providers = grown;
		if ((a->providers[a->nproviders - 1] = strdup(name.text)) ==
		    NULL)
			return cfg_out_of_memory(p, lx, &name);
		grown = cfg_array_append(p->refs, &p->nrefs, sizeof(*p->refs));
		if (grown == NULL)
			return cfg_out_of_memory(p, lx, &name);
		p->refs = grown;
		ref = &p->refs[p->nrefs - 1];
		ref->file = lx->file;
		ref->line = name.line;
		ref->col = name.col;
		if ((ref->name = strdup(name.text)) == NULL)
			return cfg_out_of_memory(p, lx, &name);
	}
	if (a->nproviders == 0)
		return cfg_missing_argument(p, lx, kw);
	return 0;
}

static int
d_system_prompt(struct parser *p, struct cfg_lexer *lx,
    const struct cfg_token *kw, const struct frame *f)
{
	struct cfg_agent *a = f->object;
	struct cfg_token t;

	if (cfg_take_arg(p, lx, kw, &t) == -1)
		return -1;
	return cfg_dup_string(p, lx, &t, &a->system_prompt);
}

static int
d_max_output_tokens(struct parser *p, struct cfg_lexer *lx,
    const struct cfg_token *kw, const struct frame *f)
{
	struct cfg_agent *a = f->object;
	uint64_t v;

	if (cfg_take_uint(p, lx, kw, 1, MAX_OUTPUT_MAX, &v) == -1)
		return -1;
	a->max_output_tokens = (uint32_t)v;
	return 0;
}

static int
d_temperature(struct parser *p, struct cfg_lexer *lx,
    const struct cfg_token *kw, const struct frame *f)
{
	struct cfg_agent *a = f->object;

	return cfg_take_decimal(p, lx, kw, 0, 2, &a->temperature);
}

static int
d_max_turns(struct parser *p, struct cfg_lexer *lx,
    const struct cfg_token *kw, const struct frame *f)
{
	struct cfg_agent *a = f->object;
	uint64_t v;

	if (cfg_take_uint(p, lx, kw, 1, AGENT_TURNS_MAX, &v) == -1)
		return -1;
	a->max_turns = (uint32_t)v;
	return 0;
}

static int
d_max_tool_calls(struct parser *p, struct cfg_lexer *lx,
    const struct cfg_token *kw, const struct frame *f)
{
	struct cfg_agent *a = f->object;
	uint64_t v;

	if (cfg_take_uint(p, lx, kw, 0, AGENT_TOOL_CALLS_MAX, &v) == -1)
		return -1;
	a->max_tool_calls = (uint32_t)v;
	return 0;
}

static int
d_max_wall_clock(struct parser *p, struct cfg_lexer *lx,
    const struct cfg_token *kw, const struct frame *f)
{
	struct cfg_agent *a = f->object;

	return cfg_take_duration(p, lx, kw, AGENT_WALL_CLOCK_MIN_MS,
	    AGENT_WALL_CLOCK_MAX_MS, &a->max_wall_clock_ms);
}

static int
d_tool(struct parser *p, struct cfg_lexer *lx, const struct cfg_token *kw,
    const struct frame *f)
{
	static const char *const policies[] = { "allow", "ask", "deny" };
	struct cfg_agent *a = f->object;
	struct cfg_tool_rule *rule;
	struct cfg_token pattern;
	void *grown;
	size_t i;
	int v = 0;

	if (cfg_take_arg(p, lx, kw, &pattern) == -1)
		return -1;
	if (!cfg_printable_ascii(pattern.text, MAX_STRING_VALUE))
		return TOKEN_ERROR(p, lx, &pattern, "invalid tool pattern "
		    "\"%s\"", pattern.text);
	for (i = 0; i < a->ntools; i++)
		if (strcmp(a->tools[i].pattern, pattern.text) == 0)
			return TOKEN_ERROR(p, lx, &pattern, "duplicate tool "
			    "\"%s\"", pattern.text);
	if (cfg_take_keyword(p, lx, kw, policies, 3, "allow, ask or deny",
	    &v) == -1)
		return -1;
	if (a->ntools >= CFG_MAX_TOOL_RULES)
		return TOKEN_ERROR(p, lx, kw, "too many tool rules (limit %d)",
		    CFG_MAX_TOOL_RULES);
	grown = cfg_array_append(a->tools, &a->ntools, sizeof(*rule));
	if (grown == NULL)
		return cfg_out_of_memory(p, lx, kw);
	a->tools = grown;
	rule = &a->tools[a->ntools - 1];
	rule->policy = (enum cfg_tool_policy)v;
	if ((rule->pattern = strdup(pattern.text)) == NULL)
		return cfg_out_of_memory(p, lx, kw);
	return 0;
}

static int
d_approval_timeout(struct parser *p, struct cfg_lexer *lx,
    const struct cfg_token *kw, const struct frame *f)
{
	struct cfg_agent *a = f->object;

	return cfg_take_duration(p, lx, kw, APPROVAL_TIMEOUT_MIN,
	    APPROVAL_TIMEOUT_MAX, &a->approval_timeout_ms);
}

static int
d_client_tool_timeout(struct parser *p, struct cfg_lexer *lx,
    const struct cfg_token *kw, const struct frame *f)
{
	struct cfg_agent *a = f->object;

	return cfg_take_duration(p, lx, kw, CLIENT_TOOL_TIMEOUT_MIN,
	    CLIENT_TOOL_TIMEOUT_MAX, &a->client_tool_timeout_ms);
}

/* Budgets */

static const char *const budget_units[] = { "tokens", "cost" };
static const char *const budget_periods[] = { "day", "month", "total" };
static const char *const budget_scopes[] = { "tenant", "agent", "principal" };

int
cfg_budget_id(const struct cfg_budget *b, char *buf, size_t len)
{
	if (b->scope == CFG_BUDGET_TENANT || b->subject == NULL)
		return snprintf(buf, len, "tenant:%s:%s",
		    budget_units[b->unit], budget_periods[b->period]);
	return snprintf(buf, len, "%s:%s:%s:%s", budget_scopes[b->scope],
	    b->subject, budget_units[b->unit], budget_periods[b->period]);
}

uint64_t
cfg_budget_limit(const struct cfg_budget *b)
{
	if (b->unit == CFG_BUDGET_TOKENS)
		return (uint64_t)b->amount;
	/* USD to micro-USD; COST_BUDGET_MAX keeps this below 2^64. */
	return (uint64_t)(b->amount * 1e6 + 0.5);
}

/* [agent "NAME"] or [principal "NAME"] after a budget's kind. */
static int
budget_subject(struct parser *p, struct cfg_lexer *lx,
    const struct frame *f, struct cfg_budget *b)
{
	const struct cfg_token *next;
	struct cfg_token word, name;
	int scope;

	for (;;) {
		if (cfg_lex_peek(lx, &next) == -1)
			return -1;
		if (next->type != CFG_TOKEN_WORD)
			return 0;
		if (strcmp(next->text, "agent") == 0)
			scope = CFG_BUDGET_AGENT;
		else if (strcmp(next->text, "principal") == 0)
			scope = CFG_BUDGET_PRINCIPAL;
		else
			return 0;
		if (cfg_lex_take(lx, &word) == -1)
			return -1;
		if (f->kind == BLOCK_AGENT)
			return TOKEN_ERROR(p, lx, &word, "\"%s\" is not "
			    "allowed in a budget inside an agent block (the "
			    "budget is the agent's)", word.text);
		if (b->scope != CFG_BUDGET_TENANT)
			return TOKEN_ERROR(p, lx, &word, "a budget applies to "
			    "one agent or one principal, not both");
		if (cfg_take_name(p, lx, &word, &name) == -1)
			return -1;
		b->scope = (enum cfg_budget_scope)scope;
		cfg_set_pos(&b->subject_pos, lx, &name);
		if ((b->subject = strdup(name.text)) == NULL)
			return cfg_out_of_memory(p, lx, &name);
	}
}

/*
 * budget tokens|cost AMOUNT per day|month|total [hard|soft]
 *     [agent "NAME" | principal "NAME"]
 * in a tenant block, or without a subject in an agent block.
 */
static int
d_budget(struct parser *p, struct cfg_lexer *lx, const struct cfg_token *kw,
    const struct frame *f)
{
	static const char *const per[] = { "per" };
	static const char *const kinds[] = { "hard", "soft" };
	struct cfg_tenant *tn = p->tenant;
	const struct cfg_budget *o;
	const struct cfg_token *next;
	struct cfg_budget b;
	char id[NAME_MAX_LEN + 40];
	uint64_t tokens;
	void *grown;
	size_t i;
	int unit, unused, period, hard = 0;

	memset(&b, 0, sizeof(b));
	cfg_set_pos(&b.pos, lx, kw);
	if (cfg_take_keyword(p, lx, kw, budget_units, 2, "tokens or cost",
	    &unit) == -1)
		return -1;
	if (unit == 0) {
		if (cfg_take_uint(p, lx, kw, 1, TOKEN_BUDGET_MAX,
		    &tokens) == -1)
			return -1;
		b.amount = (double)tokens;
	} else if (cfg_take_decimal(p, lx, kw, 0, COST_BUDGET_MAX,
	    &b.amount) == -1)
		return -1;
	if (cfg_take_keyword(p, lx, kw, per, 1, "per", &unused) == -1 ||
	    cfg_take_keyword(p, lx, kw, budget_periods, 3,
	    "day, month or total", &period) == -1)
		return -1;
	if (cfg_lex_peek(lx, &next) == -1)
		return -1;
	if ((next->type == CFG_TOKEN_WORD || next->type == CFG_TOKEN_STRING) &&
	    strcmp(next->text, "agent") != 0 &&
	    strcmp(next->text, "principal") != 0 &&
	    cfg_take_keyword(p, lx, kw, kinds, 2, "hard or soft", &hard) == -1)
		return -1;
	b.unit = unit == 0 ? CFG_BUDGET_TOKENS : CFG_BUDGET_COST;
	b.period = (enum cfg_budget_period)period;
	b.hard = hard == 0;
	if (f->kind == BLOCK_AGENT) {
		b.scope = CFG_BUDGET_AGENT;
		b.subject_pos = b.pos;
		if ((b.subject = strdup(((struct cfg_agent *)
		    f->object)->name)) == NULL)
			return cfg_out_of_memory(p, lx, kw);
	}
	if (budget_subject(p, lx, f, &b) == -1) {
		free(b.subject);
		return -1;
	}
	for (i = 0; i < tn->nbudgets; i++) {
		o = &tn->budgets[i];
		if (o->unit != b.unit || o->period != b.period ||
		    o->scope != b.scope || (b.subject != NULL &&
		    strcmp(o->subject, b.subject) != 0))
			continue;
		cfg_budget_id(&b, id, sizeof(id));
		free(b.subject);
		return TOKEN_ERROR(p, lx, kw, "duplicate budget \"%s\" "
		    "(first at line %d of %s)", id, o->pos.line, o->pos.file);
	}
	if (tn->nbudgets >= CFG_MAX_BUDGETS) {
		free(b.subject);
		return TOKEN_ERROR(p, lx, kw, "too many budgets in tenant "
		    "\"%s\" (limit %d)", tn->name, CFG_MAX_BUDGETS);
	}
	grown = cfg_array_append(tn->budgets, &tn->nbudgets, sizeof(b));
	if (grown == NULL) {
		free(b.subject);
		return cfg_out_of_memory(p, lx, kw);
	}
	tn->budgets = grown;
	tn->budgets[tn->nbudgets - 1] = b;
	return 0;
}

/* Once the tenant block is read: every agent a budget names exists. */
static int
budgets_check(struct parser *p, const struct cfg_tenant *tn)
{
	const struct cfg_budget *b;
	size_t i, j;

	for (i = 0; i < tn->nbudgets; i++) {
		b = &tn->budgets[i];
		if (b->scope != CFG_BUDGET_AGENT)
			continue;
		for (j = 0; j < tn->nagents; j++)
			if (strcmp(tn->agents[j].name, b->subject) == 0)
				break;
		if (j == tn->nagents)
			return cfg_parser_error(p, b->subject_pos.file,
			    b->subject_pos.line, b->subject_pos.col,
			    "unknown agent \"%s\" in tenant \"%s\"",
			    b->subject, tn->name);
	}
	return 0;
}

/* Directive tables; the order of each is the bit order of its seen mask. */

static const struct directive tenant_directives[] = {
	{ "workers", d_workers, D_ONCE | D_CHAIN },
	{ "memory-limit", d_memory_limit, D_ONCE | D_CHAIN },
	{ "pids-limit", d_pids_limit, D_ONCE | D_CHAIN },
	{ "cpu-weight", d_cpu_weight, D_ONCE | D_CHAIN },
	{ "agent", d_agent, 0 },
	{ "budget", d_budget, D_CHAIN },
	{ "include", cfg_directive_include, 0 },
	{ "idle-timeout", d_idle_timeout, D_ONCE | D_CHAIN },
	{ "journal-quota", d_journal_quota, D_ONCE | D_CHAIN },
	{ "timezone", cfg_directive_timezone, D_ONCE | D_CHAIN },
	{ "http-fetch", cfg_directive_http_fetch, D_ONCE },
	{ "memory", cfg_directive_memory, D_ONCE },
};

static const struct directive agent_directives[] = {
	{ "providers", d_providers, D_ONCE },
	{ "system-prompt", d_system_prompt, D_ONCE | D_CHAIN },
	{ "max-output-tokens", d_max_output_tokens, D_ONCE | D_CHAIN },
	{ "temperature", d_temperature, D_ONCE | D_CHAIN },
	{ "tool", d_tool, D_CHAIN },
	{ "include", cfg_directive_include, 0 },
	{ "max-turns", d_max_turns, D_ONCE | D_CHAIN },
	{ "max-tool-calls", d_max_tool_calls, D_ONCE | D_CHAIN },
	{ "max-wall-clock", d_max_wall_clock, D_ONCE | D_CHAIN },
	{ "budget", d_budget, D_CHAIN },
	{ "approval-timeout", d_approval_timeout, D_ONCE | D_CHAIN },
	{ "client-tool-timeout", d_client_tool_timeout, D_ONCE | D_CHAIN },
	{ "http-fetch", cfg_directive_http_fetch, D_ONCE },
	{ "memory-recall", cfg_directive_memory_recall, D_ONCE | D_CHAIN },
};

const struct block cfg_tenant_block =
    CFG_BLOCK("in a tenant block", tenant_directives);
const struct block cfg_agent_block =
    CFG_BLOCK("in an agent block", agent_directives);
