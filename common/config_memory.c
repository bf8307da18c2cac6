/*
 * config_memory.c: the palyrad.conf tenant memory block (the embedder of
 * memory items, their default TTL and how many a tenant may hold) and the
 * agent directive memory-recall (items recalled into the prompt). Runs in
 * the supervisor (palyrad) only, while config.c parses; touches nothing
 * but the struct cfg under construction and the parser's state.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_int.h"
#include "config_lex.h"
#include "limits.h"

/* memory-recall top-k: at most this many items a run. */
#define RECALL_TOP_K_MAX	20
/* default-ttl: 0 (never) to ten years. */
#define MEMORY_TTL_MAX_MS	(3650 * MS_PER_DAY)

/* memory { ... } in a tenant block */
int
cfg_directive_memory(struct parser *p, struct cfg_lexer *lx,
    const struct cfg_token *kw, const struct frame *f)
{
	struct cfg_memory *m = &((struct cfg_tenant *)f->object)->memory;
	struct cfg_token brace;
	unsigned int seen = 0;
	struct frame sub;

	m->set = 1;
	cfg_set_pos(&m->pos, lx, kw);
	sub.kind = BLOCK_MEMORY;
	sub.object = m;
	sub.seen = &seen;
	return cfg_open_block(p, lx, kw, &sub, &brace);
}

/* embedder "PROVIDER": checked once every provider is known. */
static int
d_embedder(struct parser *p, struct cfg_lexer *lx, const struct cfg_token *kw,
    const struct frame *f)
{
	struct cfg_memory *m = f->object;
	struct cfg_token t;

	if (cfg_take_arg(p, lx, kw, &t) == -1)
		return -1;
	if (!cfg_name_valid(t.text))
		return TOKEN_ERROR(p, lx, &t, "invalid provider name \"%s\"",
		    t.text);
	cfg_set_pos(&m->embedder_pos, lx, &t);
	return cfg_dup_string(p, lx, &t, &m->embedder);
}

static int
d_default_ttl(struct parser *p, struct cfg_lexer *lx,
    const struct cfg_token *kw, const struct frame *f)
{
	struct cfg_memory *m = f->object;

	return cfg_take_duration(p, lx, kw, 0, MEMORY_TTL_MAX_MS,
	    &m->default_ttl_ms);
}

static int
d_max_items(struct parser *p, struct cfg_lexer *lx,
    const struct cfg_token *kw, const struct frame *f)
{
	struct cfg_memory *m = f->object;

	return cfg_take_uint(p, lx, kw, 1, JNL_MEMORY_MAX_ITEMS,
	    &m->max_items);
}

/* memory-recall top-k N min-score F in an agent block */
int
cfg_directive_memory_recall(struct parser *p, struct cfg_lexer *lx,
    const struct cfg_token *kw, const struct frame *f)
{
	struct cfg_agent *a = f->object;
	struct cfg_token word;
	uint64_t k;

	if (cfg_take_arg(p, lx, kw, &word) == -1)
		return -1;
	if (strcmp(word.text, "top-k") != 0)
		return TOKEN_ERROR(p, lx, &word, "invalid value \"%s\" for "
		    "\"%s\" (expected top-k)", word.text, kw->text);
	if (cfg_take_uint(p, lx, &word, 1, RECALL_TOP_K_MAX, &k) == -1)
		return -1;
	if (cfg_take_arg(p, lx, kw, &word) == -1)
		return -1;
	if (strcmp(word.text, "min-score") != 0)
		return TOKEN_ERROR(p, lx, &word, "invalid value \"%s\" for "
		    "\"%s\" (expected min-score)", word.text, kw->text);
	if (cfg_take_decimal(p, lx, &word, 0, 1, &a->recall_min_score) == -1)
		return -1;
	a->recall_top_k = (uint32_t)k;
	return 0;
}

int
cfg_memory_check(struct parser *p)
{
	const struct cfg *cfg = p->cfg;
	const struct cfg_memory *m;
	const struct cfg_provider *pr;
	size_t i;

	for (i = 0; i < cfg->ntenants; i++) {
		m = &cfg->tenants[i].memory;
		if (m->embedder == NULL)
			continue;
		if ((pr = cfg_provider_find(cfg, m->embedder)) == NULL)
			return cfg_parser_error(p, m->embedder_pos.file,
			    m->embedder_pos.line, m->embedder_pos.col,
			    "unknown provider \"%s\"", m->embedder);
		if (pr->type != CFG_PROVIDER_OFFLINE &&
		    pr->embedding_model == NULL)
			return cfg_parser_error(p, m->embedder_pos.file,
			    m->embedder_pos.line, m->embedder_pos.col,
			    "embedder \"%s\" has no embedding-model",
			    m->embedder);
	}
	return 0;
}

static const struct directive memory_directives[] = {
	{ "embedder", d_embedder, D_ONCE | D_CHAIN },
	{ "default-ttl", d_default_ttl, D_ONCE | D_CHAIN },
	{ "max-items", d_max_items, D_ONCE | D_CHAIN },
	{ "include", cfg_directive_include, 0 },
};

const struct block cfg_memory_block =
    CFG_BLOCK("in a memory block", memory_directives);
