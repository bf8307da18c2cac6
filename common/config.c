/*
 * config.c: the parser of palyrad.conf (DESIGN section 10, palyrad.conf(5)).
 * Runs in the supervisor (palyrad) only, before any child exists; reads the
 * config file and the files it includes, nothing else, and touches no state
 * but the struct cfg it builds.
 *
 * The file is tokenized by config_lex.c and parsed by recursive descent:
 * one table of directives per kind of block, one handler per directive.
 * This file is the driver: it reads files, follows includes, dispatches
 * each directive to its handler (config_directives.c, config_tenant.c),
 * applies the defaults and checks that need the whole file, and frees.
 * The struct cfg under construction is only handed out when the whole
 * file and every check after it succeeded; on any error it is freed and
 * the first error is reported as "FILE:LINE:COL: message".
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "config_int.h"
#include "config_lex.h"

static int	parse_body(struct parser *, struct cfg_lexer *,
		    const struct frame *, const struct cfg_token *);

/* Errors */

int
cfg_parser_error(struct parser *p, const char *file, int line, int col,
    const char *fmt, ...)
{
	char msg[CFG_ERR_LEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	cfg_error_at(p->err, p->errlen, file, line, col, "%s", msg);
	return -1;
}

static void
error_file(char *err, size_t errlen, const char *file, const char *msg)
{
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "%s: %s", file, msg);
}

int
cfg_out_of_memory(struct parser *p, struct cfg_lexer *lx,
    const struct cfg_token *t)
{
	return TOKEN_ERROR(p, lx, t, "out of memory");
}

/* Small helpers */

/*
 * Appends one zeroed element to an array whose capacity is implied by its
 * count (the next power of two), so that struct cfg needs no capacity
 * fields. Returns the new base, or NULL (the old base stays valid).
 */
void *
cfg_array_append(void *base, size_t *count, size_t size)
{
	size_t n = *count;
	void *grown;

	if (n == 0 || (n & (n - 1)) == 0) {
		grown = reallocarray(base, n == 0 ? 1 : n * 2, size);
		if (grown == NULL)
			return NULL;
		base = grown;
	}
	memset((char *)base + n * size, 0, size);
	(*count)++;
	return base;
}

/* Returns base/path, or path if it is absolute; NULL if out of memory. */
char *
cfg_path_join(const char *base, const char *path)
{
	char *joined;

	if (path[0] == '/' || base == NULL || base[0] == '\0')
		return strdup(path);
	if (asprintf(&joined, "%s%s%s", base,
	    base[strlen(base) - 1] == '/' ? "" : "/", path) == -1)
		return NULL;
	return joined;
}

/* Blocks */

int
cfg_open_block(struct parser *p, struct cfg_lexer *lx,
    const struct cfg_token *kw, const struct frame *f, struct cfg_token *brace)
{
	const struct cfg_token *t;
	char what[64];
	int rc;

	/* The brace may stand on the next line, as in C. */
	for (;;) {
		if (cfg_lex_peek(lx, &t) == -1)
			return -1;
		if (t->type != CFG_TOKEN_NEWLINE)
			break;
		if (cfg_lex_take(lx, NULL) == -1)
			return -1;
	}
	if (t->type != CFG_TOKEN_LBRACE)
		return TOKEN_ERROR(p, lx, t, "expected \"{\" after \"%s\", "
		    "found %s", kw->text,
		    cfg_token_describe(t, what, sizeof(what)));
	if (cfg_lex_take(lx, brace) == -1)
		return -1;
	if (p->depth >= CFG_MAX_DEPTH)
		return TOKEN_ERROR(p, lx, brace, "nesting too deep (limit %d)",
		    CFG_MAX_DEPTH);
	p->depth++;
	rc = parse_body(p, lx, f, brace);
	p->depth--;
	return rc;
}

/* include "FILE": relative to the including file's directory. */

static int
read_file(const char *path, char **buf, size_t *len, struct file_id *id,
    const char **why)
{
	struct stat st;
	ssize_t n;
	size_t have = 0;
	char *data;
	int fd, saved;

	*why = NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) ==
	    -1)
		return -errno;
	if (fstat(fd, &st) == -1) {
		saved = errno;
		close(fd);
		return -saved;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		*why = "not a regular file";
		return -EINVAL;
	}
	if (st.st_size > CFG_MAX_FILE_SIZE) {
		close(fd);
		*why = "file too large";
		return -EFBIG;
	}
	/* One byte more than allowed tells a file that grew meanwhile. */
	if ((data = malloc((size_t)CFG_MAX_FILE_SIZE + 1)) == NULL) {
		close(fd);
		return -ENOMEM;
	}
	for (;;) {
		n = read(fd, data + have, (size_t)CFG_MAX_FILE_SIZE + 1 - have);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			saved = errno;
			free(data);
			close(fd);
			return -saved;
		}
		if (n == 0)
			break;
		have += (size_t)n;
		if (have > CFG_MAX_FILE_SIZE) {
			free(data);
			close(fd);
			*why = "file too large";
			return -EFBIG;
		}
	}
	close(fd);
	*buf = data;
	*len = have;
	id->dev = st.st_dev;
	id->ino = st.st_ino;
	return 0;
}

static const char *
read_error(int rc, const char *why, char *buf, size_t len)
{
	if (why != NULL && rc == -EFBIG) {
		snprintf(buf, len, "%s (limit %d bytes)", why,
		    CFG_MAX_FILE_SIZE);
		return buf;
	}
	return why != NULL ? why : strerror(-rc);
}

static char *
add_file_name(struct cfg *cfg, const char *name)
{
	void *grown;
	char *copy;

	if ((copy = strdup(name)) == NULL)
		return NULL;
	grown = cfg_array_append(cfg->files, &cfg->nfiles, sizeof(*cfg->files));
	if (grown == NULL) {
		free(copy);
		return NULL;
	}
	cfg->files = grown;
	cfg->files[cfg->nfiles - 1] = copy;
	return copy;
}

int
cfg_directive_include(struct parser *p, struct cfg_lexer *lx,
    const struct cfg_token *kw, const struct frame *f)
{
	struct cfg_token t;
	struct cfg_lexer *sub = NULL;
	struct file_id id;
	const char *slash, *why;
	char *display = NULL, *open_path = NULL, *dir = NULL, *buf = NULL;
	char *name, msg[128];
	size_t len, i;
	int rc = -1, r;

	if (cfg_take_arg(p, lx, kw, &t) == -1)
		return -1;
	if (t.len == 0)
		return TOKEN_ERROR(p, lx, &t, "empty path for \"include\"");
	if (p->depth >= CFG_MAX_DEPTH)
		return TOKEN_ERROR(p, lx, kw, "nesting too deep (limit %d)",
		    CFG_MAX_DEPTH);
	if (p->cfg->nfiles >= CFG_MAX_FILES)
		return TOKEN_ERROR(p, lx, kw, "too many included files "
		    "(limit %d)", CFG_MAX_FILES);
	slash = strrchr(lx->file, '/');
	if (slash != NULL && (dir = strndup(lx->file,
	    (size_t)(slash - lx->file) + 1)) == NULL)
		return cfg_out_of_memory(p, lx, kw);
	display = dir != NULL ? cfg_path_join(dir, t.text) : strdup(t.text);
	free(dir);
	if (display == NULL || (open_path = cfg_path_join(p->base_dir,
	    display)) == NULL)
		goto oom;
	if ((r = read_file(open_path, &buf, &len, &id, &why)) != 0) {
		TOKEN_ERROR(p, lx, &t, "include \"%s\": %s", display,
		    read_error(r, why, msg, sizeof(msg)));
		goto out;
	}
	for (i = 0; i < p->nopen; i++) {
		if (p->open_files[i].dev == id.dev &&
		    p->open_files[i].ino == id.ino) {
			TOKEN_ERROR(p, lx, &t, "include cycle: \"%s\" is "
			    "already being read", display);
			goto out;
		}
	}
	if (len > CFG_MAX_TOTAL_SIZE - p->total_bytes) {
		TOKEN_ERROR(p, lx, &t, "included files too large in total "
		    "(limit %d bytes)", CFG_MAX_TOTAL_SIZE);
		goto out;
	}
	p->total_bytes += len;
	if ((name = add_file_name(p->cfg, display)) == NULL ||
	    (sub = malloc(sizeof(*sub))) == NULL)
		goto oom;
	cfg_lex_init(sub, name, buf, len, p->err, p->errlen);
	p->open_files[p->nopen++] = id;
	p->depth++;
	rc = parse_body(p, sub, f, NULL);
	p->depth--;
	p->nopen--;
	goto out;
oom:
	cfg_out_of_memory(p, lx, kw);
out:
	free(sub);
	free(buf);
	free(open_path);
	free(display);
	return rc;
}

/*
 * The directive tables live beside their handlers; the order of each is
 * the bit order of its seen mask.
 */
static const struct block *const blocks[BLOCK_COUNT] = {
	[BLOCK_TOP] = &cfg_top_block,
	[BLOCK_JOURNAL] = &cfg_journal_block,
	[BLOCK_PROVIDER] = &cfg_provider_block,
	[BLOCK_PRICING] = &cfg_pricing_block,
	[BLOCK_TENANT] = &cfg_tenant_block,
	[BLOCK_AGENT] = &cfg_agent_block,
	[BLOCK_TLS] = &cfg_tls_block,
	[BLOCK_FETCH] = &cfg_fetch_block,
	[BLOCK_MEMORY] = &cfg_memory_block,
};

static const struct directive *
find_directive(enum block_kind kind, const char *name)
{
	const struct block *b = blocks[kind];
	size_t i;

	for (i = 0; i < b->ndirectives; i++)
		if (strcmp(b->directives[i].name, name) == 0)
			return &b->directives[i];
	return NULL;
}

static int
unknown_directive(struct parser *p, struct cfg_lexer *lx,
    const struct cfg_token *kw, enum block_kind kind)
{
	int k;

	for (k = 0; k < BLOCK_COUNT; k++)
		if (find_directive((enum block_kind)k, kw->text) != NULL)
			return TOKEN_ERROR(p, lx, kw, "\"%s\" is not allowed "
			    "%s", kw->text, blocks[kind]->where);
	return TOKEN_ERROR(p, lx, kw, "unknown directive \"%s\"", kw->text);
}

/*
 * A directive ends at a newline, ";", "}" or the end of the file. Inside a
 * block, a directive of fixed arity also ends where the keyword of another
 * directive of that block follows on the same line, which is what lets
 * tls { certificate "a" key "b" } stand on one line.
 */
static int
end_directive(struct parser *p, struct cfg_lexer *lx,
    const struct cfg_token *kw, const struct directive *d,
    enum block_kind kind)
{
	const struct cfg_token *t;
	char what[64];

	if (cfg_lex_peek(lx, &t) == -1)
		return -1;
	switch (t->type) {
	case CFG_TOKEN_NEWLINE:
	case CFG_TOKEN_SEMICOLON:
		return cfg_lex_take(lx, NULL);
	case CFG_TOKEN_RBRACE:
	case CFG_TOKEN_EOF:
		return 0;
	case CFG_TOKEN_WORD:
		if (kind != BLOCK_TOP && (d->flags & D_CHAIN) &&
		    find_directive(kind, t->text) != NULL)
			return 0;
		break;
	default:
		break;
	}
	return TOKEN_ERROR(p, lx, t, "extra argument %s to \"%s\"",
	    cfg_token_describe(t, what, sizeof(what)), kw->text);
}

/* Parses directives up to the matching "}" (or the end of the file). */
static int
parse_body(struct parser *p, struct cfg_lexer *lx, const struct frame *f,
    const struct cfg_token *brace)
{
	const struct cfg_token *t;
	const struct directive *d;
	struct cfg_token kw;
	unsigned int bit;

	for (;;) {
		if (cfg_lex_peek(lx, &t) == -1)
			return -1;
		switch (t->type) {
		case CFG_TOKEN_NEWLINE:
		case CFG_TOKEN_SEMICOLON:
			if (cfg_lex_take(lx, NULL) == -1)
				return -1;
			continue;
		case CFG_TOKEN_EOF:
			if (brace != NULL)
				return TOKEN_ERROR(p, lx, brace, "unclosed "
				    "\"{\"");
			return 0;
		case CFG_TOKEN_RBRACE:
			if (brace != NULL)
				return cfg_lex_take(lx, NULL);
			return TOKEN_ERROR(p, lx, t, "unexpected \"}\"");
		case CFG_TOKEN_LBRACE:
			return TOKEN_ERROR(p, lx, t, "unexpected \"{\"");
		case CFG_TOKEN_STRING:
			return TOKEN_ERROR(p, lx, t, "expected a directive, "
			    "found a quoted string");
		case CFG_TOKEN_WORD:
			break;
		}
		if (cfg_lex_take(lx, &kw) == -1)
			return -1;
		if ((d = find_directive(f->kind, kw.text)) == NULL)
			return unknown_directive(p, lx, &kw, f->kind);
		bit = 1u << (d - blocks[f->kind]->directives);
		if ((d->flags & D_ONCE) && (*f->seen & bit))
			return TOKEN_ERROR(p, lx, &kw, "duplicate \"%s\"",
			    kw.text);
		*f->seen |= bit;
		if (d->fn(p, lx, &kw, f) == -1)
			return -1;
		/* A directive that ended with its block is complete. */
		if (lx->last == CFG_TOKEN_RBRACE)
			continue;
		if (end_directive(p, lx, &kw, d, f->kind) == -1)
			return -1;
	}
}

/* After the last file: defaults and checks that need the whole picture. */

static int
set_default_listen(struct cfg_listen *l, uint16_t port)
{
	if (l->set)
		return 0;
	l->set = 1;
	l->port = port;
	return (l->host = strdup("127.0.0.1")) == NULL ? -1 : 0;
}

static int
finish(struct parser *p, const char *file)
{
	struct cfg *cfg = p->cfg;
	struct cfg_provider *pr;
	const struct cfg_listen *later;
	size_t i;

	if (cfg->state_dir == NULL &&
	    (cfg->state_dir = strdup(DEFAULT_STATE_DIR)) == NULL)
		goto oom;
	if (set_default_listen(&cfg->grpc, DEFAULT_GRPC_PORT) == -1 ||
	    set_default_listen(&cfg->http, DEFAULT_HTTP_PORT) == -1)
		goto oom;
	if (cfg->grpc.port != 0 && cfg->grpc.port == cfg->http.port &&
	    strcmp(cfg->grpc.host, cfg->http.host) == 0) {
		later = cfg->http.pos.line != 0 ? &cfg->http : &cfg->grpc;
		return cfg_parser_error(p, later->pos.file, later->pos.line,
		    later->pos.col, "listen grpc and listen http use the "
		    "same address");
	}
	if (cfg_provider_find(cfg, DEFAULT_PROVIDER) == NULL) {
		if (cfg->nproviders >= CFG_MAX_PROVIDERS)
			return cfg_parser_error(p, file, 1, 1, "too many "
			    "providers (limit %d, the implicit \"offline\" "
			    "included)", CFG_MAX_PROVIDERS);
		pr = cfg_array_append(cfg->providers, &cfg->nproviders,
		    sizeof(*pr));
		if (pr == NULL)
			goto oom;
		cfg->providers = pr;
		pr = &cfg->providers[cfg->nproviders - 1];
		pr->type = CFG_PROVIDER_OFFLINE;
		pr->timeout_connect_ms = DEFAULT_CONNECT_MS;
		pr->timeout_first_byte_ms = DEFAULT_FIRST_BYTE_MS;
		pr->timeout_idle_ms = DEFAULT_IDLE_MS;
		pr->timeout_total_ms = DEFAULT_TOTAL_MS;
		pr->max_concurrent = DEFAULT_MAX_CONCURRENT;
		if ((pr->name = strdup(DEFAULT_PROVIDER)) == NULL)
			goto oom;
	}
	for (i = 0; i < p->nrefs; i++)
		if (cfg_provider_find(cfg, p->refs[i].name) == NULL)
			return cfg_parser_error(p, p->refs[i].file,
			    p->refs[i].line, p->refs[i].col,
			    "unknown provider \"%s\"", p->refs[i].name);
	return cfg_memory_check(p);
oom:
	return cfg_parser_error(p, file, 1, 1, "out of memory");
}

static int
parser_init(struct parser *p, const char *base_dir, char *err, size_t errlen)
{
	char cwd[PATH_MAX];

	memset(p, 0, sizeof(*p));
	p->err = err;
	p->errlen = errlen;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (base_dir == NULL || base_dir[0] != '/') {
		if (getcwd(cwd, sizeof(cwd)) == NULL) {
			error_file(err, errlen, base_dir != NULL ? base_dir :
			    ".", "cannot determine the current directory");
			return -1;
		}
		p->base_dir = base_dir != NULL ? cfg_path_join(cwd, base_dir) :
		    strdup(cwd);
	} else
		p->base_dir = strdup(base_dir);
	if (p->base_dir == NULL || (p->cfg = calloc(1,
	    sizeof(*p->cfg))) == NULL) {
		free(p->base_dir);
		error_file(err, errlen, base_dir != NULL ? base_dir : ".",
		    "out of memory");
		return -1;
	}
	p->cfg->worker_uid_min = DEFAULT_UID_MIN;
	p->cfg->worker_uid_max = DEFAULT_UID_MAX;
	p->cfg->durability = CFG_DURABILITY_FULL;
	p->cfg->checkpoint_interval_ms = DEFAULT_CHECKPOINT_MS;
	return 0;
}

static void
parser_free(struct parser *p)
{
	size_t i;

	for (i = 0; i < p->nrefs; i++)
		free(p->refs[i].name);
	free(p->refs);
	free(p->base_dir);
	cfg_free(p->cfg);
}

/* Parses the main file's text; on success moves the cfg to *out. */
static int
parse_main(struct parser *p, const char *name, const char *buf, size_t len,
    const struct file_id *id, struct cfg **out)
{
	struct cfg_lexer *lx;
	struct frame top;
	const char *file;
	int rc;

	if (len > CFG_MAX_FILE_SIZE) {
		char msg[64];

		snprintf(msg, sizeof(msg), "file too large (limit %d bytes)",
		    CFG_MAX_FILE_SIZE);
		error_file(p->err, p->errlen, name, msg);
		return -1;
	}
	if ((file = add_file_name(p->cfg, name)) == NULL ||
	    (lx = malloc(sizeof(*lx))) == NULL) {
		error_file(p->err, p->errlen, name, "out of memory");
		return -1;
	}
	if (id != NULL)
		p->open_files[p->nopen++] = *id;
	p->total_bytes = len;
	top.kind = BLOCK_TOP;
	top.object = NULL;
	top.seen = &p->seen_top;
	cfg_lex_init(lx, file, buf, len, p->err, p->errlen);
	rc = parse_body(p, lx, &top, NULL);
	free(lx);
	if (rc == -1 || finish(p, file) == -1)
		return -1;
	*out = p->cfg;
	p->cfg = NULL;
	return 0;
}

int
cfg_parse_buffer(const char *name, const char *buf, size_t len,
    const char *base_dir, struct cfg **out, char *err, size_t errlen)
{
	struct parser p;
	int rc;

	*out = NULL;
	if (parser_init(&p, base_dir, err, errlen) == -1)
		return -1;
	rc = parse_main(&p, name, buf, len, NULL, out);
	parser_free(&p);
	return rc;
}

int
cfg_load(const char *path, const char *base_dir, struct cfg **out,
    char *err, size_t errlen)
{
	struct parser p;
	struct file_id id;
	const char *why;
	char *open_path, *buf = NULL, msg[128];
	size_t len = 0;
	int rc;

	*out = NULL;
	if (parser_init(&p, base_dir, err, errlen) == -1)
		return -1;
	if ((open_path = cfg_path_join(p.base_dir, path)) == NULL) {
		error_file(err, errlen, path, "out of memory");
		parser_free(&p);
		return -1;
	}
	rc = read_file(open_path, &buf, &len, &id, &why);
	free(open_path);
	if (rc != 0) {
		error_file(err, errlen, path, read_error(rc, why, msg,
		    sizeof(msg)));
		parser_free(&p);
		return -1;
	}
	rc = parse_main(&p, path, buf, len, &id, out);
	free(buf);
	parser_free(&p);
	return rc;
}

/* Lookups and release */

const struct cfg_tenant *
cfg_tenant_find(const struct cfg *cfg, const char *name)
{
	size_t i;

	for (i = 0; i < cfg->ntenants; i++)
		if (strcmp(cfg->tenants[i].name, name) == 0)
			return &cfg->tenants[i];
	return NULL;
}

const struct cfg_provider *
cfg_provider_find(const struct cfg *cfg, const char *name)
{
	size_t i;

	for (i = 0; i < cfg->nproviders; i++)
		if (strcmp(cfg->providers[i].name, name) == 0)
			return &cfg->providers[i];
	return NULL;
}

static void
free_agent(struct cfg_agent *a)
{
	size_t i;

	free(a->name);
	for (i = 0; i < a->nproviders; i++)
		free(a->providers[i]);
	free(a->providers);
	free(a->system_prompt);
	for (i = 0; i < a->ntools; i++)
		free(a->tools[i].pattern);
	free(a->tools);
	cfg_fetch_free(&a->fetch);
}

static void
free_listen(struct cfg_listen *l)
{
	free(l->host);
	free(l->tls_certificate);
	free(l->tls_key);
}

void
cfg_free(struct cfg *cfg)
{
	size_t i, j;

	if (cfg == NULL)
		return;
	free(cfg->user);
	free(cfg->state_dir);
	free_listen(&cfg->grpc);
	free_listen(&cfg->http);
	for (i = 0; i < cfg->nproviders; i++) {
		free(cfg->providers[i].name);
		free(cfg->providers[i].base_url);
		free(cfg->providers[i].api_key);
		free(cfg->providers[i].model);
		free(cfg->providers[i].embedding_model);
	}
	free(cfg->providers);
	for (i = 0; i < cfg->npricing; i++)
		free(cfg->pricing[i].model);
	free(cfg->pricing);
	for (i = 0; i < cfg->ntenants; i++) {
		free(cfg->tenants[i].name);
		for (j = 0; j < cfg->tenants[i].nagents; j++)
			free_agent(&cfg->tenants[i].agents[j]);
		free(cfg->tenants[i].agents);
		for (j = 0; j < cfg->tenants[i].nbudgets; j++)
			free(cfg->tenants[i].budgets[j].subject);
		free(cfg->tenants[i].budgets);
		free(cfg->tenants[i].timezone);
		cfg_fetch_free(&cfg->tenants[i].fetch);
		free(cfg->tenants[i].memory.embedder);
	}
	free(cfg->tenants);
	for (i = 0; i < cfg->nfiles; i++)
		free(cfg->files[i]);
	free(cfg->files);
	free(cfg);
}
