/*
 * config_directives.c: the handlers of the palyrad.conf directives outside
 * tenants: user, state-dir, worker-uid-range, listen (and its tls block),
 * journal, provider and pricing, with their directive tables. Runs in the
 * supervisor (palyrad) only, while config.c parses; touches nothing but
 * the struct cfg under construction and the parser's state.
 */
#include <arpa/inet.h>
#include <netinet/in.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_int.h"
#include "config_lex.h"

/* Top-level directives */

static int
d_user(struct parser *p, struct cfg_lexer *lx, const struct cfg_token *kw,
    const struct frame *f)
{
	struct cfg_token t;
	size_t i;

	if (cfg_take_arg(p, lx, kw, &t) == -1)
		return -1;
	for (i = 0; i < t.len; i++)
		if (!(t.text[i] == '_' ||
		    (t.text[i] >= 'a' && t.text[i] <= 'z') ||
		    (t.text[i] >= 'A' && t.text[i] <= 'Z') ||
		    (t.text[i] >= '0' && t.text[i] <= '9') ||
		    t.text[i] == '.' || t.text[i] == '-'))
			break;
	if (t.len == 0 || t.len > MAX_USER_LEN || i < t.len ||
	    t.text[0] == '-')
		return TOKEN_ERROR(p, lx, &t, "invalid user name \"%s\"",
		    t.text);
	if (strcmp(t.text, "root") == 0)
		return TOKEN_ERROR(p, lx, &t, "\"user\" must not be root");
	return cfg_dup_string(p, lx, &t, &p->cfg->user);
}

static int
d_state_dir(struct parser *p, struct cfg_lexer *lx,
    const struct cfg_token *kw, const struct frame *f)
{
	struct cfg_token t;

	if (cfg_take_arg(p, lx, kw, &t) == -1)
		return -1;
	cfg_set_pos(&p->cfg->state_dir_pos, lx, kw);
	return cfg_dup_path(p, lx, kw, &t, &p->cfg->state_dir);
}

static int
d_worker_uid_range(struct parser *p, struct cfg_lexer *lx,
    const struct cfg_token *kw, const struct frame *f)
{
	struct cfg_token t;
	uint64_t lo = 0, hi = 0;
	char *dash;
	int rc1, rc2;

	if (cfg_take_arg(p, lx, kw, &t) == -1)
		return -1;
	if ((dash = strchr(t.text, '-')) == NULL)
		return TOKEN_ERROR(p, lx, &t, "invalid range \"%s\" for "
		    "\"%s\" (expected MIN-MAX)", t.text, kw->text);
	rc1 = cfg_parse_digits(t.text, (size_t)(dash - t.text), &lo);
	rc2 = cfg_parse_digits(dash + 1, strlen(dash + 1), &hi);
	if (rc1 == -1 || rc2 == -1)
		return TOKEN_ERROR(p, lx, &t, "invalid range \"%s\" for "
		    "\"%s\" (expected MIN-MAX)", t.text, kw->text);
	/* uid 0 is root and (uid_t)-1 means "unchanged" to setresuid(). */
	if (rc1 == -2 || rc2 == -2 || lo < 1 || hi >= UINT32_MAX || lo > hi)
		return cfg_out_of_range(p, lx, kw, &t, "1", "4294967294");
	p->cfg->worker_uid_min = (uint32_t)lo;
	p->cfg->worker_uid_max = (uint32_t)hi;
	return 0;
}

static int
is_loopback(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (strcmp(host, "localhost") == 0)
		return 1;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6);
	return 0;
}

/* HOST:PORT, [V6]:PORT or localhost:PORT; returns 0 or -1. */
static int
parse_address(const char *s, char **host, uint16_t *port)
{
	char buf[INET6_ADDRSTRLEN + 8];
	const char *colon, *end;
	struct in6_addr a6;
	struct in_addr a4;
	uint64_t v;
	size_t n;

	if (s[0] == '[') {
		if ((end = strchr(s, ']')) == NULL || end[1] != ':')
			return -1;
		n = (size_t)(end - s - 1);
		colon = end + 1;
		if (n == 0 || n >= sizeof(buf))
			return -1;
		memcpy(buf, s + 1, n);
		buf[n] = '\0';
		if (inet_pton(AF_INET6, buf, &a6) != 1)
			return -1;
	} else {
		if ((colon = strchr(s, ':')) == NULL)
			return -1;
		n = (size_t)(colon - s);
		if (n == 0 || n >= sizeof(buf))
			return -1;
		memcpy(buf, s, n);
		buf[n] = '\0';
		if (strcmp(buf, "localhost") != 0 &&
		    inet_pton(AF_INET, buf, &a4) != 1)
			return -1;
	}
	if (strlen(colon + 1) > 5 ||
	    cfg_parse_digits(colon + 1, strlen(colon + 1), &v) != 0 ||
	    v > 65535)
		return -1;
	if ((*host = strdup(buf)) == NULL)
		return -2;
	*port = (uint16_t)v;
	return 0;
}

static int
d_listen(struct parser *p, struct cfg_lexer *lx, const struct cfg_token *kw,
    const struct frame *f)
{
	static const char *const kinds[] = { "grpc", "http" };
	struct cfg_token addr, tls, brace;
	struct cfg_listen *l;
	unsigned int seen = 0;
	struct frame sub;
	const struct cfg_token *t;
	int kind = 0, rc;

	if (cfg_take_keyword(p, lx, kw, kinds, 2, "grpc or http", &kind) == -1)
		return -1;
	l = kind == 0 ? &p->cfg->grpc : &p->cfg->http;
	if (l->set)
		return TOKEN_ERROR(p, lx, kw, "duplicate \"listen %s\"",
		    kinds[kind]);
	l->set = 1;
	cfg_set_pos(&l->pos, lx, kw);
	if (cfg_take_arg(p, lx, kw, &addr) == -1)
		return -1;
	rc = parse_address(addr.text, &l->host, &l->port);
	if (rc == -2)
		return cfg_out_of_memory(p, lx, &addr);
	if (rc == -1)
		return TOKEN_ERROR(p, lx, &addr, "invalid address \"%s\" for "
		    "\"listen\" (expected IPV4:PORT, [IPV6]:PORT or "
		    "localhost:PORT)", addr.text);
	if (cfg_lex_peek(lx, &t) == -1)
		return -1;
	if (t->type == CFG_TOKEN_WORD && strcmp(t->text, "tls") == 0) {
		if (cfg_lex_take(lx, &tls) == -1)
			return -1;
		l->tls = 1;
		sub.kind = BLOCK_TLS;
		sub.object = l;
		sub.seen = &seen;
		if (cfg_open_block(p, lx, &tls, &sub, &brace) == -1)
			return -1;
		if (l->tls_certificate == NULL || l->tls_key == NULL)
			return TOKEN_ERROR(p, lx, &tls, "tls requires both "
			    "certificate and key");
	}
	if (!l->tls && !is_loopback(l->host))
		return TOKEN_ERROR(p, lx, &addr, "listening on a non-loopback "
		    "address requires tls");
	return 0;
}

static int
d_tls_certificate(struct parser *p, struct cfg_lexer *lx,
    const struct cfg_token *kw, const struct frame *f)
{
	struct cfg_listen *l = f->object;
	struct cfg_token t;

	if (cfg_take_arg(p, lx, kw, &t) == -1)
		return -1;
	return cfg_dup_path(p, lx, kw, &t, &l->tls_certificate);
}

static int
d_tls_key(struct parser *p, struct cfg_lexer *lx, const struct cfg_token *kw,
    const struct frame *f)
{
	struct cfg_listen *l = f->object;
	struct cfg_token t;

	if (cfg_take_arg(p, lx, kw, &t) == -1)
		return -1;
	cfg_set_pos(&l->tls_key_pos, lx, kw);
	return cfg_dup_path(p, lx, kw, &t, &l->tls_key);
}

static int
d_journal(struct parser *p, struct cfg_lexer *lx, const struct cfg_token *kw,
    const struct frame *f)
{
	struct cfg_token brace;
	unsigned int seen = 0;
	struct frame sub = { BLOCK_JOURNAL, NULL, &seen };

	return cfg_open_block(p, lx, kw, &sub, &brace);
}

static int
d_durability(struct parser *p, struct cfg_lexer *lx,
    const struct cfg_token *kw, const struct frame *f)
{
	static const char *const words[] = { "full", "normal" };
	int v;

	if (cfg_take_keyword(p, lx, kw, words, 2, "full or normal", &v) == -1)
		return -1;
	p->cfg->durability = v == 0 ? CFG_DURABILITY_FULL :
	    CFG_DURABILITY_NORMAL;
	return 0;
}

static int
d_checkpoint_interval(struct parser *p, struct cfg_lexer *lx,
    const struct cfg_token *kw, const struct frame *f)
{
	return cfg_take_duration(p, lx, kw, 1000, MS_PER_DAY,
	    &p->cfg->checkpoint_interval_ms);
}

/* Providers */

static int
d_provider(struct parser *p, struct cfg_lexer *lx, const struct cfg_token *kw,
    const struct frame *f)
{
	struct cfg *cfg = p->cfg;
	struct cfg_token name, brace;
	struct cfg_provider *pr;
	unsigned int seen = 0;
	struct frame sub;
	void *grown;

	if (cfg_take_name(p, lx, kw, &name) == -1)
		return -1;
	if ((pr = (struct cfg_provider *)cfg_provider_find(cfg,
	    name.text)) != NULL)
		return TOKEN_ERROR(p, lx, &name, "duplicate provider \"%s\" "
		    "(first declared at line %d of %s)", name.text,
		    pr->pos.line, pr->pos.file);
	if (cfg->nproviders >= CFG_MAX_PROVIDERS)
		return TOKEN_ERROR(p, lx, kw, "too many providers (limit %d)",
		    CFG_MAX_PROVIDERS);
	grown = cfg_array_append(cfg->providers, &cfg->nproviders, sizeof(*pr));
	if (grown == NULL)
		return cfg_out_of_memory(p, lx, kw);
	cfg->providers = grown;
	pr = &cfg->providers[cfg->nproviders - 1];
	cfg_set_pos(&pr->pos, lx, kw);
	pr->timeout_connect_ms = DEFAULT_CONNECT_MS;
	pr->timeout_first_byte_ms = DEFAULT_FIRST_BYTE_MS;
	pr->timeout_idle_ms = DEFAULT_IDLE_MS;
	pr->timeout_total_ms = DEFAULT_TOTAL_MS;
	pr->max_concurrent = DEFAULT_MAX_CONCURRENT;
	if ((pr->name = strdup(name.text)) == NULL)
		return cfg_out_of_memory(p, lx, kw);
	p->seen_timeouts = 0;
	memset(&p->token_delay_pos, 0, sizeof(p->token_delay_pos));
	sub.kind = BLOCK_PROVIDER;
	sub.object = pr;
	sub.seen = &seen;
	if (cfg_open_block(p, lx, kw, &sub, &brace) == -1)
		return -1;
	/* seen bit 0 is "type", the first entry of provider_directives. */
	if (!(seen & 1))
		return TOKEN_ERROR(p, lx, kw, "provider \"%s\" has no \"type\"",
		    pr->name);
	if (pr->type == CFG_PROVIDER_OPENAI_COMPATIBLE && pr->base_url == NULL)
		return TOKEN_ERROR(p, lx, kw, "provider \"%s\" of type "
		    "openai-compatible has no \"base-url\"", pr->name);
	/* The vendors' own endpoints unless told otherwise (palyrad.conf(5)). */
	if (pr->base_url == NULL && (pr->type == CFG_PROVIDER_OPENAI ||
	    pr->type == CFG_PROVIDER_ANTHROPIC) &&
	    (pr->base_url = strdup(pr->type == CFG_PROVIDER_OPENAI ?
	    CFG_OPENAI_BASE_URL : CFG_ANTHROPIC_BASE_URL)) == NULL)
		return cfg_out_of_memory(p, lx, kw);
	/* Known only at the end of the block: the type may come last. */
	if (p->token_delay_pos.line != 0 && pr->type != CFG_PROVIDER_OFFLINE)
		return cfg_parser_error(p, p->token_delay_pos.file,
		    p->token_delay_pos.line, p->token_delay_pos.col,
		    "\"token-delay\" is only valid for providers of type "
		    "offline (provider \"%s\" is %s)", pr->name,
		    cfg_provider_types[pr->type]);
	if (pr->embedding_model != NULL && pr->type != CFG_PROVIDER_OPENAI &&
	    pr->type != CFG_PROVIDER_OPENAI_COMPATIBLE)
		return TOKEN_ERROR(p, lx, kw, "\"embedding-model\" is only "
		    "valid for providers of type openai and openai-compatible "
		    "(provider \"%s\" is %s)", pr->name,
		    cfg_provider_types[pr->type]);
	if (pr->api_key == NULL && (pr->type == CFG_PROVIDER_OPENAI ||
	    pr->type == CFG_PROVIDER_ANTHROPIC))
		return TOKEN_ERROR(p, lx, kw, "provider \"%s\" of type %s "
		    "has no \"api-key\"", pr->name,
		    cfg_provider_types[pr->type]);
	return 0;
}

const char *const cfg_provider_types[] = {
	"offline", "openai", "anthropic", "openai-compatible",
};

static int
d_type(struct parser *p, struct cfg_lexer *lx, const struct cfg_token *kw,
    const struct frame *f)
{
	struct cfg_provider *pr = f->object;
	int v;

	if (cfg_take_keyword(p, lx, kw, cfg_provider_types,
	    NUNITS(cfg_provider_types),
	    "offline, openai, anthropic or openai-compatible", &v) == -1)
		return -1;
	pr->type = (enum cfg_provider_type)v;
	return 0;
}

static int
d_base_url(struct parser *p, struct cfg_lexer *lx, const struct cfg_token *kw,
    const struct frame *f)
{
	struct cfg_provider *pr = f->object;
	struct cfg_token t;

	if (cfg_take_arg(p, lx, kw, &t) == -1)
		return -1;
	if ((strncmp(t.text, "https://", 8) != 0 &&
	    strncmp(t.text, "http://", 7) != 0) ||
	    !cfg_printable_ascii(t.text, MAX_URL_LEN) ||
	    strlen(t.text) == (t.text[4] == 's' ? 8 : 7))
		return TOKEN_ERROR(p, lx, &t, "invalid URL \"%s\" for "
		    "\"base-url\" (expected http:// or https://)", t.text);
	return cfg_dup_string(p, lx, &t, &pr->base_url);
}

static int
env_name_valid(const char *s)
{
	size_t i;

	if (!((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z') ||
	    s[0] == '_'))
		return 0;
	for (i = 1; s[i] != '\0'; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return 0;
	return i <= NAME_MAX_LEN * 2;
}

/*
 * The file holds where the key is, never the key itself: a literal key in
 * a config file ends up in backups and bug reports.
 */
static int
d_api_key(struct parser *p, struct cfg_lexer *lx, const struct cfg_token *kw,
    const struct frame *f)
{
	struct cfg_provider *pr = f->object;
	struct cfg_token t;
	char *path = NULL;
	int ok;

	if (cfg_take_arg(p, lx, kw, &t) == -1)
		return -1;
	cfg_set_pos(&pr->api_key_pos, lx, kw);
	if (strncmp(t.text, "env:", 4) == 0)
		ok = env_name_valid(t.text + 4);
	else if (strncmp(t.text, "vault:host/", 11) == 0)
		ok = cfg_vault_name_valid(t.text + 11);
	else if (strncmp(t.text, "vault:", 6) == 0)
		ok = cfg_vault_name_valid(t.text + 6);
	else if (strncmp(t.text, "file:", 5) == 0 && t.text[5] != '\0') {
		if ((path = cfg_path_join(p->base_dir, t.text + 5)) == NULL)
			return cfg_out_of_memory(p, lx, &t);
		if (strlen(path) >= PATH_MAX) {
			free(path);
			return TOKEN_ERROR(p, lx, &t, "path too long for "
			    "\"api-key\"");
		}
		free(pr->api_key);
		if (asprintf(&pr->api_key, "file:%s", path) == -1) {
			pr->api_key = NULL;
			free(path);
			return cfg_out_of_memory(p, lx, &t);
		}
		free(path);
		return 0;
	} else
		ok = 0;
	if (!ok)
		return TOKEN_ERROR(p, lx, &t, "invalid api-key \"%s\" "
		    "(expected env:NAME, file:PATH, vault:NAME or "
		    "vault:host/NAME)", t.text);
	return cfg_dup_string(p, lx, &t, &pr->api_key);
}

static int
d_model(struct parser *p, struct cfg_lexer *lx, const struct cfg_token *kw,
    const struct frame *f)
{
	struct cfg_provider *pr = f->object;
	struct cfg_token t;

	if (cfg_take_arg(p, lx, kw, &t) == -1)
		return -1;
	if (!cfg_printable_ascii(t.text, MAX_STRING_VALUE))
		return TOKEN_ERROR(p, lx, &t, "invalid model \"%s\"", t.text);
	return cfg_dup_string(p, lx, &t, &pr->model);
}

/* embedding-model NAME: the model of /embeddings requests (worker/embed.c). */
static int
d_embedding_model(struct parser *p, struct cfg_lexer *lx,
    const struct cfg_token *kw, const struct frame *f)
{
	struct cfg_provider *pr = f->object;
	struct cfg_token t;

	if (cfg_take_arg(p, lx, kw, &t) == -1)
		return -1;
	if (t.text[0] == '\0' || !cfg_printable_ascii(t.text, MAX_STRING_VALUE))
		return TOKEN_ERROR(p, lx, &t, "invalid embedding model \"%s\"",
		    t.text);
	return cfg_dup_string(p, lx, &t, &pr->embedding_model);
}

/* timeout connect D first-byte D idle D total D: any subset, any order. */
static int
d_timeout(struct parser *p, struct cfg_lexer *lx, const struct cfg_token *kw,
    const struct frame *f)
{
	static const char *const which[] = {
		"connect", "first-byte", "idle", "total",
	};
	struct cfg_provider *pr = f->object;
	uint64_t *slot[4];
	struct cfg_token key;
	const struct cfg_token *t;
	int i, n = 0;

	slot[0] = &pr->timeout_connect_ms;
	slot[1] = &pr->timeout_first_byte_ms;
	slot[2] = &pr->timeout_idle_ms;
	slot[3] = &pr->timeout_total_ms;
	for (;;) {
		if (cfg_lex_peek(lx, &t) == -1)
			return -1;
		if (t->type != CFG_TOKEN_WORD && t->type != CFG_TOKEN_STRING)
			break;
		for (i = 0; i < 4; i++)
			if (strcmp(t->text, which[i]) == 0)
				break;
		if (i == 4) {
			if (n > 0)
				break;	/* the next directive, or extra */
			return TOKEN_ERROR(p, lx, t, "invalid value \"%s\" for "
			    "\"timeout\" (expected connect, first-byte, idle "
			    "or total)", t->text);
		}
		if (cfg_lex_take(lx, &key) == -1)
			return -1;
		if (p->seen_timeouts & (1u << i))
			return TOKEN_ERROR(p, lx, &key, "duplicate \"timeout "
			    "%s\"", key.text);
		p->seen_timeouts |= 1u << i;
		if (cfg_take_duration(p, lx, &key, 1, MS_PER_DAY,
		    slot[i]) == -1)
			return -1;
		n++;
	}
	if (n == 0)
		return cfg_missing_argument(p, lx, kw);
	return 0;
}

static int
d_max_concurrent(struct parser *p, struct cfg_lexer *lx,
    const struct cfg_token *kw, const struct frame *f)
{
	struct cfg_provider *pr = f->object;
	uint64_t v;

	if (cfg_take_uint(p, lx, kw, 1, MAX_CONCURRENT_MAX, &v) == -1)
		return -1;
	pr->max_concurrent = (uint32_t)v;
	return 0;
}

/* token-delay D: the offline model's pause between tokens (slow runs). */
static int
d_token_delay(struct parser *p, struct cfg_lexer *lx,
    const struct cfg_token *kw, const struct frame *f)
{
	struct cfg_provider *pr = f->object;
	uint64_t v;

	cfg_set_pos(&p->token_delay_pos, lx, kw);
	if (cfg_take_duration(p, lx, kw, 0, WRK_TOKEN_DELAY_MAX_MS, &v) == -1)
		return -1;
	pr->token_delay_ms = (uint32_t)v;
	return 0;
}

/* Pricing */

static int
d_pricing(struct parser *p, struct cfg_lexer *lx, const struct cfg_token *kw,
    const struct frame *f)
{
	struct cfg *cfg = p->cfg;
	struct cfg_token model, brace;
	struct cfg_pricing *pc;
	unsigned int seen = 0;
	struct frame sub;
	void *grown;
	size_t i;

	if (cfg_take_arg(p, lx, kw, &model) == -1)
		return -1;
	if (!cfg_printable_ascii(model.text, MAX_STRING_VALUE))
		return TOKEN_ERROR(p, lx, &model, "invalid model \"%s\"",
		    model.text);
	for (i = 0; i < cfg->npricing; i++)
		if (strcmp(cfg->pricing[i].model, model.text) == 0)
			return TOKEN_ERROR(p, lx, &model, "duplicate pricing "
			    "\"%s\"", model.text);
	if (cfg->npricing >= CFG_MAX_PRICING)
		return TOKEN_ERROR(p, lx, kw, "too many pricing blocks "
		    "(limit %d)", CFG_MAX_PRICING);
	grown = cfg_array_append(cfg->pricing, &cfg->npricing, sizeof(*pc));
	if (grown == NULL)
		return cfg_out_of_memory(p, lx, kw);
	cfg->pricing = grown;
	pc = &cfg->pricing[cfg->npricing - 1];
	cfg_set_pos(&pc->pos, lx, kw);
	if ((pc->model = strdup(model.text)) == NULL)
		return cfg_out_of_memory(p, lx, kw);
	sub.kind = BLOCK_PRICING;
	sub.object = pc;
	sub.seen = &seen;
	if (cfg_open_block(p, lx, kw, &sub, &brace) == -1)
		return -1;
	if ((seen & 3) != 3)
		return TOKEN_ERROR(p, lx, kw, "pricing \"%s\" needs both "
		    "\"input\" and \"output\"", pc->model);
	return 0;
}

static int
d_input(struct parser *p, struct cfg_lexer *lx, const struct cfg_token *kw,
    const struct frame *f)
{
	struct cfg_pricing *pc = f->object;

	return cfg_take_decimal(p, lx, kw, 0, PRICE_MAX,
	    &pc->input_per_million);
}

static int
d_output(struct parser *p, struct cfg_lexer *lx, const struct cfg_token *kw,
    const struct frame *f)
{
	struct cfg_pricing *pc = f->object;

	return cfg_take_decimal(p, lx, kw, 0, PRICE_MAX,
	    &pc->output_per_million);
}

/* Directive tables; the order of each is the bit order of its seen mask. */

static const struct directive top_directives[] = {
	{ "user", d_user, D_ONCE },
	{ "state-dir", d_state_dir, D_ONCE },
	{ "worker-uid-range", d_worker_uid_range, D_ONCE },
	{ "listen", d_listen, 0 },
	{ "journal", d_journal, D_ONCE },
	{ "provider", d_provider, 0 },
	{ "pricing", d_pricing, 0 },
	{ "tenant", cfg_directive_tenant, 0 },
	{ "include", cfg_directive_include, 0 },
};

static const struct directive journal_directives[] = {
	{ "durability", d_durability, D_ONCE | D_CHAIN },
	{ "checkpoint-interval", d_checkpoint_interval, D_ONCE | D_CHAIN },
	{ "include", cfg_directive_include, 0 },
};

static const struct directive provider_directives[] = {
	/* Bit 0 of the seen mask is checked by d_provider. */
	{ "type", d_type, D_ONCE | D_CHAIN },
	{ "base-url", d_base_url, D_ONCE | D_CHAIN },
	{ "api-key", d_api_key, D_ONCE | D_CHAIN },
	{ "model", d_model, D_ONCE | D_CHAIN },
	{ "timeout", d_timeout, D_CHAIN },
	{ "max-concurrent", d_max_concurrent, D_ONCE | D_CHAIN },
	{ "include", cfg_directive_include, 0 },
	{ "token-delay", d_token_delay, D_ONCE | D_CHAIN },
	{ "embedding-model", d_embedding_model, D_ONCE | D_CHAIN },
};

static const struct directive pricing_directives[] = {
	/* Bits 0 and 1 of the seen mask are checked by d_pricing. */
	{ "input", d_input, D_ONCE | D_CHAIN },
	{ "output", d_output, D_ONCE | D_CHAIN },
	{ "include", cfg_directive_include, 0 },
};

static const struct directive tls_directives[] = {
	{ "certificate", d_tls_certificate, D_ONCE | D_CHAIN },
	{ "key", d_tls_key, D_ONCE | D_CHAIN },
	{ "include", cfg_directive_include, 0 },
};

const struct block cfg_top_block =
    CFG_BLOCK("at top level", top_directives);
const struct block cfg_journal_block =
    CFG_BLOCK("in a journal block", journal_directives);
const struct block cfg_provider_block =
    CFG_BLOCK("in a provider block", provider_directives);
const struct block cfg_pricing_block =
    CFG_BLOCK("in a pricing block", pricing_directives);
const struct block cfg_tls_block =
    CFG_BLOCK("in a tls block", tls_directives);
