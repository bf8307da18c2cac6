/*
 * config.c: the parser of palyrad.conf (DESIGN section 10, palyrad.conf(5)).
 * Runs in the supervisor only, before any child exists; reads the config
 * file and the files it includes, nothing else.
 *
 * The file is tokenized by config_lex.c and parsed by recursive descent:
 * one table of directives per kind of block, one handler per directive.
 * The struct cfg under construction is only handed out when the whole
 * file and every check after it succeeded; on any error it is freed and
 * the first error is reported as "FILE:LINE:COL: message".
 */
#include <sys/stat.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "config_lex.h"
#include "limits.h"

/*
 * Bounds that belong to the config file alone. They are not in limits.h
 * yet; they keep a hostile or broken file from costing more than a few
 * megabytes and a fraction of a second.
 */
#ifndef CFG_MAX_FILES
#define CFG_MAX_FILES		256	/* files read, the main one too */
#endif
#ifndef CFG_MAX_TOTAL_SIZE
#define CFG_MAX_TOTAL_SIZE	(16 * 1024 * 1024) /* all files */
#endif
#ifndef CFG_MAX_FAILOVER
#define CFG_MAX_FAILOVER	16	/* providers of one agent */
#endif
#ifndef CFG_MAX_TOOL_RULES
#define CFG_MAX_TOOL_RULES	256	/* tool rules of one agent */
#endif
#ifndef CFG_MAX_PRICING
#define CFG_MAX_PRICING		1024	/* pricing blocks */
#endif

#define DEFAULT_STATE_DIR	"/var/lib/palyra"
#define DEFAULT_UID_MIN		200000
#define DEFAULT_UID_MAX		299999
#define DEFAULT_GRPC_PORT	7443
#define DEFAULT_HTTP_PORT	7142
#define DEFAULT_CHECKPOINT_MS	(10 * 60 * 1000)
#define DEFAULT_CONNECT_MS	(5 * 1000)
#define DEFAULT_FIRST_BYTE_MS	(30 * 1000)
#define DEFAULT_IDLE_MS		(30 * 1000)
#define DEFAULT_TOTAL_MS	(10 * 60 * 1000)
#define DEFAULT_MAX_CONCURRENT	16
#define DEFAULT_MAX_OUTPUT	1024
#define DEFAULT_TEMPERATURE	1.0
#define DEFAULT_AGENT		"assistant"
#define DEFAULT_PROVIDER	"offline"
#define DEFAULT_PROMPT		"You are a helpful assistant."

#define MS_PER_DAY		(24ULL * 60 * 60 * 1000)
#define MAX_STRING_VALUE	256	/* model names, tool patterns */
#define MAX_URL_LEN		2048
#define MAX_USER_LEN		32
#define WORKERS_MAX		64
#define MAX_CONCURRENT_MAX	1024
#define MAX_OUTPUT_MAX		(1024 * 1024)
#define MEMORY_LIMIT_MIN	(1ULL << 20)
#define MEMORY_LIMIT_MAX	(1ULL << 50)
#define PRICE_MAX		1e6
#define COST_BUDGET_MAX		1e12
#define TOKEN_BUDGET_MAX	(1ULL << 53)	/* exact in a double */

enum block_kind {
	BLOCK_TOP = 0,
	BLOCK_JOURNAL,
	BLOCK_PROVIDER,
	BLOCK_PRICING,
	BLOCK_TENANT,
	BLOCK_AGENT,
	BLOCK_TLS,
	BLOCK_COUNT,
};

struct file_id {
	dev_t		 dev;
	ino_t		 ino;
};

/* An agent's reference to a provider, checked once every file is read. */
struct provider_ref {
	char		*name;
	const char	*file;
	int		 line;
	int		 col;
};

struct parser {
	struct cfg	*cfg;
	char		*base_dir;	/* absolute, no trailing slash */
	char		*err;
	size_t		 errlen;
	int		 depth;		/* open blocks and includes */
	struct file_id	 open_files[CFG_MAX_DEPTH + 1];
	size_t		 nopen;
	size_t		 total_bytes;
	unsigned int	 seen_top;
	unsigned int	 seen_timeouts;	/* of the current provider */
	struct provider_ref *refs;
	size_t		 nrefs;
};

/* What a handler works on: the block, its object, its seen directives. */
struct frame {
	enum block_kind	 kind;
	void		*object;
	unsigned int	*seen;
};

typedef int (*directive_fn)(struct parser *, struct cfg_lexer *,
    const struct cfg_token *, const struct frame *);

#define D_ONCE	0x1	/* may appear once per block */
#define D_CHAIN	0x2	/* fixed arity: a directive may follow */

struct directive {
	const char	*name;
	directive_fn	 fn;
	unsigned int	 flags;
};

struct block {
	const char	*where;		/* for "not allowed" messages */
	const struct directive *directives;
	size_t		 ndirectives;
};

static int	parse_body(struct parser *, struct cfg_lexer *,
		    const struct frame *, const struct cfg_token *);

/* Errors */

static int
error_at(struct parser *p, const char *file, int line, int col,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int
error_at(struct parser *p, const char *file, int line, int col,
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

#define TOKEN_ERROR(p, lx, t, ...)					\
	error_at((p), (lx)->file, (t)->line, (t)->col, __VA_ARGS__)

static void
error_file(char *err, size_t errlen, const char *file, const char *msg)
{
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "%s: %s", file, msg);
}

static int
out_of_memory(struct parser *p, struct cfg_lexer *lx,
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
static void *
array_append(void *base, size_t *count, size_t size)
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
static char *
path_join(const char *base, const char *path)
{
	char *joined;

	if (path[0] == '/' || base == NULL || base[0] == '\0')
		return strdup(path);
	if (asprintf(&joined, "%s%s%s", base,
	    base[strlen(base) - 1] == '/' ? "" : "/", path) == -1)
		return NULL;
	return joined;
}

static int
printable_ascii(const char *s, size_t maxlen)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return 0;
	return i > 0 && i <= maxlen;
}

int
cfg_name_valid(const char *name)
{
	size_t i;

	if (name == NULL || name[0] == '\0' || name[0] == '.' ||
	    name[0] == '-')
		return 0;
	for (i = 0; name[i] != '\0'; i++) {
		if (i >= NAME_MAX_LEN)
			return 0;
		if (!((name[i] >= 'a' && name[i] <= 'z') ||
		    (name[i] >= 'A' && name[i] <= 'Z') ||
		    (name[i] >= '0' && name[i] <= '9') || name[i] == '.' ||
		    name[i] == '_' || name[i] == '-'))
			return 0;
	}
	return 1;
}

/* Arguments */

static int
missing_argument(struct parser *p, struct cfg_lexer *lx,
    const struct cfg_token *kw)
{
	return TOKEN_ERROR(p, lx, kw, "missing argument to \"%s\"", kw->text);
}

/* Takes one argument (a bare word or a quoted string) of directive kw. */
static int
take_arg(struct parser *p, struct cfg_lexer *lx, const struct cfg_token *kw,
    struct cfg_token *out)
{
	const struct cfg_token *t;

	if (cfg_lex_peek(lx, &t) == -1)
		return -1;
	if (t->type != CFG_TOKEN_WORD && t->type != CFG_TOKEN_STRING)
		return missing_argument(p, lx, kw);
	return cfg_lex_take(lx, out);
}

/* Returns 1 if the next token can be an argument (word or string). */
static int
arg_follows(struct cfg_lexer *lx, int *more)
{
	const struct cfg_token *t;

	if (cfg_lex_peek(lx, &t) == -1)
		return -1;
	*more = t->type == CFG_TOKEN_WORD || t->type == CFG_TOKEN_STRING;
	return 0;
}

static int
dup_string(struct parser *p, struct cfg_lexer *lx, const struct cfg_token *t,
    char **out)
{
	free(*out);
	if ((*out = strdup(t->text)) == NULL)
		return out_of_memory(p, lx, t);
	return 0;
}

static int
dup_path(struct parser *p, struct cfg_lexer *lx, const struct cfg_token *kw,
    const struct cfg_token *t, char **out)
{
	char *path;

	if (t->len == 0)
		return TOKEN_ERROR(p, lx, t, "empty path for \"%s\"",
		    kw->text);
	if ((path = path_join(p->base_dir, t->text)) == NULL)
		return out_of_memory(p, lx, t);
	if (strlen(path) >= PATH_MAX) {
		free(path);
		return TOKEN_ERROR(p, lx, t, "path too long for \"%s\"",
		    kw->text);
	}
	free(*out);
	*out = path;
	return 0;
}

/* Digits only; returns 0, -1 if not a number, -2 on overflow. */
static int
parse_digits(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (n == 0)
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return -2;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return 0;
}

static size_t
count_digits(const char *s)
{
	size_t n = 0;

	while (s[n] >= '0' && s[n] <= '9')
		n++;
	return n;
}

struct unit {
	const char	*suffix;
	uint64_t	 factor;
};

static const struct unit size_units[] = {
	{ "T", 1ULL << 40 }, { "G", 1ULL << 30 }, { "M", 1ULL << 20 },
	{ "K", 1ULL << 10 }, { "", 1 },
};

static const struct unit duration_units[] = {
	{ "d", MS_PER_DAY }, { "h", 60 * 60 * 1000 }, { "m", 60 * 1000 },
	{ "s", 1000 }, { "ms", 1 },
};

/* Number with a unit suffix; returns 0, -1 if malformed, -2 if too big. */
static int
parse_with_unit(const char *s, const struct unit *units, size_t nunits,
    uint64_t *out)
{
	size_t n = count_digits(s), i;
	uint64_t v;
	int rc;

	for (i = 0; i < nunits; i++)
		if (strcmp(s + n, units[i].suffix) == 0)
			break;
	if (i == nunits || n == 0)
		return -1;
	if ((rc = parse_digits(s, n, &v)) != 0)
		return rc;
	if (v > UINT64_MAX / units[i].factor)
		return -2;
	*out = v * units[i].factor;
	return 0;
}

/* Prints v with the largest unit that divides it exactly. */
static void
format_with_unit(char *buf, size_t len, uint64_t v, const struct unit *units,
    size_t nunits)
{
	size_t i;

	for (i = 0; i + 1 < nunits; i++)
		if (v != 0 && v % units[i].factor == 0)
			break;
	snprintf(buf, len, "%llu%s", (unsigned long long)(v / units[i].factor),
	    units[i].suffix);
}

#define NUNITS(a)	(sizeof(a) / sizeof((a)[0]))

static void
format_duration(char *buf, size_t len, uint64_t ms)
{
	format_with_unit(buf, len, ms, duration_units, NUNITS(duration_units));
}

static void
format_size(char *buf, size_t len, uint64_t bytes)
{
	format_with_unit(buf, len, bytes, size_units, NUNITS(size_units));
}

static int
out_of_range(struct parser *p, struct cfg_lexer *lx,
    const struct cfg_token *kw, const struct cfg_token *t, const char *min,
    const char *max)
{
	return TOKEN_ERROR(p, lx, t, "value \"%s\" out of range for \"%s\" "
	    "(%s..%s)", t->text, kw->text, min, max);
}

static int
take_uint(struct parser *p, struct cfg_lexer *lx, const struct cfg_token *kw,
    uint64_t min, uint64_t max, uint64_t *out)
{
	struct cfg_token t;
	char lo[32], hi[32];
	int rc;

	if (take_arg(p, lx, kw, &t) == -1)
		return -1;
	rc = parse_digits(t.text, t.len, out);
	if (rc == -1)
		return TOKEN_ERROR(p, lx, &t, "invalid number \"%s\" for "
		    "\"%s\"", t.text, kw->text);
	if (rc == -2 || *out < min || *out > max) {
		snprintf(lo, sizeof(lo), "%llu", (unsigned long long)min);
		snprintf(hi, sizeof(hi), "%llu", (unsigned long long)max);
		return out_of_range(p, lx, kw, &t, lo, hi);
	}
	return 0;
}

static int
take_duration(struct parser *p, struct cfg_lexer *lx,
    const struct cfg_token *kw, uint64_t min, uint64_t max, uint64_t *out)
{
	struct cfg_token t;
	char lo[32], hi[32];
	int rc;

	if (take_arg(p, lx, kw, &t) == -1)
		return -1;
	rc = parse_with_unit(t.text, duration_units, NUNITS(duration_units),
	    out);
	if (rc == -1)
		return TOKEN_ERROR(p, lx, &t, "invalid duration \"%s\" for "
		    "\"%s\"", t.text, kw->text);
	if (rc == -2 || *out < min || *out > max) {
		format_duration(lo, sizeof(lo), min);
		format_duration(hi, sizeof(hi), max);
		return out_of_range(p, lx, kw, &t, lo, hi);
	}
	return 0;
}

static int
take_size(struct parser *p, struct cfg_lexer *lx, const struct cfg_token *kw,
    uint64_t min, uint64_t max, uint64_t *out)
{
	struct cfg_token t;
	char lo[32], hi[32];
	int rc;

	if (take_arg(p, lx, kw, &t) == -1)
		return -1;
	rc = parse_with_unit(t.text, size_units, NUNITS(size_units), out);
	if (rc == -1)
		return TOKEN_ERROR(p, lx, &t, "invalid size \"%s\" for \"%s\"",
		    t.text, kw->text);
	if (rc == -2 || *out < min || *out > max) {
		format_size(lo, sizeof(lo), min);
		format_size(hi, sizeof(hi), max);
		return out_of_range(p, lx, kw, &t, lo, hi);
	}
	return 0;
}

/*
 * A decimal: DIGITS[.DIGITS][e[+-]DIGITS]. No sign, hex, inf or nan; the
 * syntax is checked here so that strtod only ever converts what the
 * manual allows.
 */
static int
decimal_syntax(const char *s)
{
	size_t n;

	if ((n = count_digits(s)) == 0)
		return 0;
	s += n;
	if (*s == '.') {
		if ((n = count_digits(++s)) == 0)
			return 0;
		s += n;
	}
	if (*s == 'e' || *s == 'E') {
		s++;
		if (*s == '+' || *s == '-')
			s++;
		if ((n = count_digits(s)) == 0)
			return 0;
		s += n;
	}
	return *s == '\0';
}

static int
take_decimal(struct parser *p, struct cfg_lexer *lx,
    const struct cfg_token *kw, double min, double max, double *out)
{
	struct cfg_token t;
	char lo[32], hi[32];

	if (take_arg(p, lx, kw, &t) == -1)
		return -1;
	if (!decimal_syntax(t.text))
		return TOKEN_ERROR(p, lx, &t, "invalid decimal number \"%s\" "
		    "for \"%s\"", t.text, kw->text);
	*out = strtod(t.text, NULL);
	if (!isfinite(*out) || *out < min || *out > max) {
		snprintf(lo, sizeof(lo), "%g", min);
		snprintf(hi, sizeof(hi), "%g", max);
		return out_of_range(p, lx, kw, &t, lo, hi);
	}
	return 0;
}

/* One of words[]; *out is its index. */
static int
take_keyword(struct parser *p, struct cfg_lexer *lx,
    const struct cfg_token *kw, const char *const *words, size_t nwords,
    const char *expected, int *out)
{
	struct cfg_token t;
	size_t i;

	*out = 0;
	if (take_arg(p, lx, kw, &t) == -1)
		return -1;
	for (i = 0; i < nwords; i++) {
		if (strcmp(t.text, words[i]) == 0) {
			*out = (int)i;
			return 0;
		}
	}
	return TOKEN_ERROR(p, lx, &t, "invalid value \"%s\" for \"%s\" "
	    "(expected %s)", t.text, kw->text, expected);
}

static int
take_name(struct parser *p, struct cfg_lexer *lx, const struct cfg_token *kw,
    struct cfg_token *out)
{
	if (take_arg(p, lx, kw, out) == -1)
		return -1;
	if (!cfg_name_valid(out->text))
		return TOKEN_ERROR(p, lx, out, "invalid %s name \"%s\"",
		    kw->text, out->text);
	return 0;
}

static void
set_pos(struct cfg_pos *pos, struct cfg_lexer *lx, const struct cfg_token *t)
{
	pos->file = lx->file;
	pos->line = t->line;
	pos->col = t->col;
}

/* Blocks */

static int
open_block(struct parser *p, struct cfg_lexer *lx, const struct cfg_token *kw,
    const struct frame *f, struct cfg_token *brace)
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

/* Top-level directives */

static int
d_user(struct parser *p, struct cfg_lexer *lx, const struct cfg_token *kw,
    const struct frame *f)
{
	struct cfg_token t;
	size_t i;

	if (take_arg(p, lx, kw, &t) == -1)
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
	return dup_string(p, lx, &t, &p->cfg->user);
}

static int
d_state_dir(struct parser *p, struct cfg_lexer *lx,
    const struct cfg_token *kw, const struct frame *f)
{
	struct cfg_token t;

	if (take_arg(p, lx, kw, &t) == -1)
		return -1;
	return dup_path(p, lx, kw, &t, &p->cfg->state_dir);
}

static int
d_worker_uid_range(struct parser *p, struct cfg_lexer *lx,
    const struct cfg_token *kw, const struct frame *f)
{
	struct cfg_token t;
	uint64_t lo = 0, hi = 0;
	char *dash;
	int rc1, rc2;

	if (take_arg(p, lx, kw, &t) == -1)
		return -1;
	if ((dash = strchr(t.text, '-')) == NULL)
		return TOKEN_ERROR(p, lx, &t, "invalid range \"%s\" for "
		    "\"%s\" (expected MIN-MAX)", t.text, kw->text);
	rc1 = parse_digits(t.text, (size_t)(dash - t.text), &lo);
	rc2 = parse_digits(dash + 1, strlen(dash + 1), &hi);
	if (rc1 == -1 || rc2 == -1)
		return TOKEN_ERROR(p, lx, &t, "invalid range \"%s\" for "
		    "\"%s\" (expected MIN-MAX)", t.text, kw->text);
	/* uid 0 is root and (uid_t)-1 means "unchanged" to setresuid(). */
	if (rc1 == -2 || rc2 == -2 || lo < 1 || hi >= UINT32_MAX || lo > hi)
		return out_of_range(p, lx, kw, &t, "1", "4294967294");
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
	    parse_digits(colon + 1, strlen(colon + 1), &v) != 0 || v > 65535)
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

	if (take_keyword(p, lx, kw, kinds, 2, "grpc or http", &kind) == -1)
		return -1;
	l = kind == 0 ? &p->cfg->grpc : &p->cfg->http;
	if (l->set)
		return TOKEN_ERROR(p, lx, kw, "duplicate \"listen %s\"",
		    kinds[kind]);
	l->set = 1;
	set_pos(&l->pos, lx, kw);
	if (take_arg(p, lx, kw, &addr) == -1)
		return -1;
	rc = parse_address(addr.text, &l->host, &l->port);
	if (rc == -2)
		return out_of_memory(p, lx, &addr);
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
		if (open_block(p, lx, &tls, &sub, &brace) == -1)
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

	if (take_arg(p, lx, kw, &t) == -1)
		return -1;
	return dup_path(p, lx, kw, &t, &l->tls_certificate);
}

static int
d_tls_key(struct parser *p, struct cfg_lexer *lx, const struct cfg_token *kw,
    const struct frame *f)
{
	struct cfg_listen *l = f->object;
	struct cfg_token t;

	if (take_arg(p, lx, kw, &t) == -1)
		return -1;
	return dup_path(p, lx, kw, &t, &l->tls_key);
}

static int
d_journal(struct parser *p, struct cfg_lexer *lx, const struct cfg_token *kw,
    const struct frame *f)
{
	struct cfg_token brace;
	unsigned int seen = 0;
	struct frame sub = { BLOCK_JOURNAL, NULL, &seen };

	return open_block(p, lx, kw, &sub, &brace);
}

static int
d_durability(struct parser *p, struct cfg_lexer *lx,
    const struct cfg_token *kw, const struct frame *f)
{
	static const char *const words[] = { "full", "normal" };
	int v;

	if (take_keyword(p, lx, kw, words, 2, "full or normal", &v) == -1)
		return -1;
	p->cfg->durability = v == 0 ? CFG_DURABILITY_FULL :
	    CFG_DURABILITY_NORMAL;
	return 0;
}

static int
d_checkpoint_interval(struct parser *p, struct cfg_lexer *lx,
    const struct cfg_token *kw, const struct frame *f)
{
	return take_duration(p, lx, kw, 1000, MS_PER_DAY,
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

	if (take_name(p, lx, kw, &name) == -1)
		return -1;
	if ((pr = (struct cfg_provider *)cfg_provider_find(cfg,
	    name.text)) != NULL)
		return TOKEN_ERROR(p, lx, &name, "duplicate provider \"%s\" "
		    "(first declared at line %d of %s)", name.text,
		    pr->pos.line, pr->pos.file);
	if (cfg->nproviders >= CFG_MAX_PROVIDERS)
		return TOKEN_ERROR(p, lx, kw, "too many providers (limit %d)",
		    CFG_MAX_PROVIDERS);
	grown = array_append(cfg->providers, &cfg->nproviders, sizeof(*pr));
	if (grown == NULL)
		return out_of_memory(p, lx, kw);
	cfg->providers = grown;
	pr = &cfg->providers[cfg->nproviders - 1];
	set_pos(&pr->pos, lx, kw);
	pr->timeout_connect_ms = DEFAULT_CONNECT_MS;
	pr->timeout_first_byte_ms = DEFAULT_FIRST_BYTE_MS;
	pr->timeout_idle_ms = DEFAULT_IDLE_MS;
	pr->timeout_total_ms = DEFAULT_TOTAL_MS;
	pr->max_concurrent = DEFAULT_MAX_CONCURRENT;
	if ((pr->name = strdup(name.text)) == NULL)
		return out_of_memory(p, lx, kw);
	p->seen_timeouts = 0;
	sub.kind = BLOCK_PROVIDER;
	sub.object = pr;
	sub.seen = &seen;
	if (open_block(p, lx, kw, &sub, &brace) == -1)
		return -1;
	/* seen bit 0 is "type", the first entry of provider_directives. */
	if (!(seen & 1))
		return TOKEN_ERROR(p, lx, kw, "provider \"%s\" has no \"type\"",
		    pr->name);
	if (pr->type == CFG_PROVIDER_OPENAI_COMPATIBLE && pr->base_url == NULL)
		return TOKEN_ERROR(p, lx, kw, "provider \"%s\" of type "
		    "openai-compatible has no \"base-url\"", pr->name);
	return 0;
}

static const char *const provider_types[] = {
	"offline", "openai", "anthropic", "openai-compatible",
};

static int
d_type(struct parser *p, struct cfg_lexer *lx, const struct cfg_token *kw,
    const struct frame *f)
{
	struct cfg_provider *pr = f->object;
	int v;

	if (take_keyword(p, lx, kw, provider_types, NUNITS(provider_types),
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

	if (take_arg(p, lx, kw, &t) == -1)
		return -1;
	if ((strncmp(t.text, "https://", 8) != 0 &&
	    strncmp(t.text, "http://", 7) != 0) ||
	    !printable_ascii(t.text, MAX_URL_LEN) ||
	    strlen(t.text) == (t.text[4] == 's' ? 8 : 7))
		return TOKEN_ERROR(p, lx, &t, "invalid URL \"%s\" for "
		    "\"base-url\" (expected http:// or https://)", t.text);
	return dup_string(p, lx, &t, &pr->base_url);
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

	if (take_arg(p, lx, kw, &t) == -1)
		return -1;
	if (strncmp(t.text, "env:", 4) == 0)
		ok = env_name_valid(t.text + 4);
	else if (strncmp(t.text, "vault:", 6) == 0)
		ok = cfg_name_valid(t.text + 6);
	else if (strncmp(t.text, "file:", 5) == 0 && t.text[5] != '\0') {
		if ((path = path_join(p->base_dir, t.text + 5)) == NULL)
			return out_of_memory(p, lx, &t);
		if (strlen(path) >= PATH_MAX) {
			free(path);
			return TOKEN_ERROR(p, lx, &t, "path too long for "
			    "\"api-key\"");
		}
		free(pr->api_key);
		if (asprintf(&pr->api_key, "file:%s", path) == -1) {
			pr->api_key = NULL;
			free(path);
			return out_of_memory(p, lx, &t);
		}
		free(path);
		return 0;
	} else
		ok = 0;
	if (!ok)
		return TOKEN_ERROR(p, lx, &t, "invalid api-key \"%s\" "
		    "(expected env:NAME, file:PATH or vault:NAME)", t.text);
	return dup_string(p, lx, &t, &pr->api_key);
}

static int
d_model(struct parser *p, struct cfg_lexer *lx, const struct cfg_token *kw,
    const struct frame *f)
{
	struct cfg_provider *pr = f->object;
	struct cfg_token t;

	if (take_arg(p, lx, kw, &t) == -1)
		return -1;
	if (!printable_ascii(t.text, MAX_STRING_VALUE))
		return TOKEN_ERROR(p, lx, &t, "invalid model \"%s\"", t.text);
	return dup_string(p, lx, &t, &pr->model);
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
		if (take_duration(p, lx, &key, 1, MS_PER_DAY, slot[i]) == -1)
			return -1;
		n++;
	}
	if (n == 0)
		return missing_argument(p, lx, kw);
	return 0;
}

static int
d_max_concurrent(struct parser *p, struct cfg_lexer *lx,
    const struct cfg_token *kw, const struct frame *f)
{
	struct cfg_provider *pr = f->object;
	uint64_t v;

	if (take_uint(p, lx, kw, 1, MAX_CONCURRENT_MAX, &v) == -1)
		return -1;
	pr->max_concurrent = (uint32_t)v;
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

	if (take_arg(p, lx, kw, &model) == -1)
		return -1;
	if (!printable_ascii(model.text, MAX_STRING_VALUE))
		return TOKEN_ERROR(p, lx, &model, "invalid model \"%s\"",
		    model.text);
	for (i = 0; i < cfg->npricing; i++)
		if (strcmp(cfg->pricing[i].model, model.text) == 0)
			return TOKEN_ERROR(p, lx, &model, "duplicate pricing "
			    "\"%s\"", model.text);
	if (cfg->npricing >= CFG_MAX_PRICING)
		return TOKEN_ERROR(p, lx, kw, "too many pricing blocks "
		    "(limit %d)", CFG_MAX_PRICING);
	grown = array_append(cfg->pricing, &cfg->npricing, sizeof(*pc));
	if (grown == NULL)
		return out_of_memory(p, lx, kw);
	cfg->pricing = grown;
	pc = &cfg->pricing[cfg->npricing - 1];
	set_pos(&pc->pos, lx, kw);
	if ((pc->model = strdup(model.text)) == NULL)
		return out_of_memory(p, lx, kw);
	sub.kind = BLOCK_PRICING;
	sub.object = pc;
	sub.seen = &seen;
	if (open_block(p, lx, kw, &sub, &brace) == -1)
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

	return take_decimal(p, lx, kw, 0, PRICE_MAX, &pc->input_per_million);
}

static int
d_output(struct parser *p, struct cfg_lexer *lx, const struct cfg_token *kw,
    const struct frame *f)
{
	struct cfg_pricing *pc = f->object;

	return take_decimal(p, lx, kw, 0, PRICE_MAX, &pc->output_per_million);
}

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

static int
d_tenant(struct parser *p, struct cfg_lexer *lx, const struct cfg_token *kw,
    const struct frame *f)
{
	struct cfg *cfg = p->cfg;
	struct cfg_token name, brace;
	struct cfg_tenant *tn;
	struct cfg_agent *a;
	unsigned int seen = 0;
	struct frame sub;
	void *grown;

	if (take_name(p, lx, kw, &name) == -1)
		return -1;
	if ((tn = (struct cfg_tenant *)cfg_tenant_find(cfg, name.text)) !=
	    NULL)
		return TOKEN_ERROR(p, lx, &name, "duplicate tenant \"%s\" "
		    "(first declared at line %d of %s)", name.text,
		    tn->pos.line, tn->pos.file);
	if (cfg->ntenants >= CFG_MAX_TENANTS)
		return TOKEN_ERROR(p, lx, kw, "too many tenants (limit %d)",
		    CFG_MAX_TENANTS);
	grown = array_append(cfg->tenants, &cfg->ntenants, sizeof(*tn));
	if (grown == NULL)
		return out_of_memory(p, lx, kw);
	cfg->tenants = grown;
	tn = &cfg->tenants[cfg->ntenants - 1];
	set_pos(&tn->pos, lx, kw);
	tn->workers = 1;
	if ((tn->name = strdup(name.text)) == NULL)
		return out_of_memory(p, lx, kw);
	sub.kind = BLOCK_TENANT;
	sub.object = tn;
	sub.seen = &seen;
	if (open_block(p, lx, kw, &sub, &brace) == -1)
		return -1;
	if (tn->nagents > 0)
		return 0;
	/* A tenant with no agent still answers: "assistant", offline. */
	if ((tn->agents = calloc(1, sizeof(*tn->agents))) == NULL)
		return out_of_memory(p, lx, kw);
	tn->nagents = 1;
	a = &tn->agents[0];
	a->pos = tn->pos;
	a->max_output_tokens = DEFAULT_MAX_OUTPUT;
	a->temperature = DEFAULT_TEMPERATURE;
	if ((a->name = strdup(DEFAULT_AGENT)) == NULL ||
	    (a->system_prompt = strdup(DEFAULT_PROMPT)) == NULL ||
	    agent_set_default_provider(a) == -1)
		return out_of_memory(p, lx, kw);
	return 0;
}

static int
d_workers(struct parser *p, struct cfg_lexer *lx, const struct cfg_token *kw,
    const struct frame *f)
{
	struct cfg_tenant *tn = f->object;
	uint64_t v;

	if (take_uint(p, lx, kw, 1, WORKERS_MAX, &v) == -1)
		return -1;
	tn->workers = (uint32_t)v;
	return 0;
}

static int
d_memory_limit(struct parser *p, struct cfg_lexer *lx,
    const struct cfg_token *kw, const struct frame *f)
{
	struct cfg_tenant *tn = f->object;

	return take_size(p, lx, kw, MEMORY_LIMIT_MIN, MEMORY_LIMIT_MAX,
	    &tn->memory_limit);
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

	if (take_name(p, lx, kw, &name) == -1)
		return -1;
	for (i = 0; i < tn->nagents; i++)
		if (strcmp(tn->agents[i].name, name.text) == 0)
			return TOKEN_ERROR(p, lx, &name, "duplicate agent "
			    "\"%s\" in tenant \"%s\"", name.text, tn->name);
	if (tn->nagents >= CFG_MAX_AGENTS)
		return TOKEN_ERROR(p, lx, kw, "too many agents in tenant "
		    "\"%s\" (limit %d)", tn->name, CFG_MAX_AGENTS);
	grown = array_append(tn->agents, &tn->nagents, sizeof(*a));
	if (grown == NULL)
		return out_of_memory(p, lx, kw);
	tn->agents = grown;
	a = &tn->agents[tn->nagents - 1];
	set_pos(&a->pos, lx, kw);
	a->max_output_tokens = DEFAULT_MAX_OUTPUT;
	a->temperature = DEFAULT_TEMPERATURE;
	if ((a->name = strdup(name.text)) == NULL)
		return out_of_memory(p, lx, kw);
	sub.kind = BLOCK_AGENT;
	sub.object = a;
	sub.seen = &seen;
	if (open_block(p, lx, kw, &sub, &brace) == -1)
		return -1;
	if (a->nproviders == 0 && agent_set_default_provider(a) == -1)
		return out_of_memory(p, lx, kw);
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
		if (arg_follows(lx, &more) == -1)
			return -1;
		if (!more)
			break;
		if (take_name(p, lx, kw, &name) == -1)
			return -1;
		for (i = 0; i < a->nproviders; i++)
			if (strcmp(a->providers[i], name.text) == 0)
				return TOKEN_ERROR(p, lx, &name, "duplicate "
				    "provider \"%s\" in \"providers\"",
				    name.text);
		if (a->nproviders >= CFG_MAX_FAILOVER)
			return TOKEN_ERROR(p, lx, &name, "too many providers "
			    "for one agent (limit %d)", CFG_MAX_FAILOVER);
		grown = array_append(a->providers, &a->nproviders,
		    sizeof(*a->providers));
		if (grown == NULL)
			return out_of_memory(p, lx, &name);
		a->providers = grown;
		if ((a->providers[a->nproviders - 1] = strdup(name.text)) ==
		    NULL)
			return out_of_memory(p, lx, &name);
		grown = array_append(p->refs, &p->nrefs, sizeof(*p->refs));
		if (grown == NULL)
			return out_of_memory(p, lx, &name);
		p->refs = grown;
		ref = &p->refs[p->nrefs - 1];
		ref->file = lx->file;
		ref->line = name.line;
		ref->col = name.col;
		if ((ref->name = strdup(name.text)) == NULL)
			return out_of_memory(p, lx, &name);
	}
	if (a->nproviders == 0)
		return missing_argument(p, lx, kw);
	return 0;
}

static int
d_system_prompt(struct parser *p, struct cfg_lexer *lx,
    const struct cfg_token *kw, const struct frame *f)
{
	struct cfg_agent *a = f->object;
	struct cfg_token t;

	if (take_arg(p, lx, kw, &t) == -1)
		return -1;
	return dup_string(p, lx, &t, &a->system_prompt);
}

static int
d_max_output_tokens(struct parser *p, struct cfg_lexer *lx,
    const struct cfg_token *kw, const struct frame *f)
{
	struct cfg_agent *a = f->object;
	uint64_t v;

	if (take_uint(p, lx, kw, 1, MAX_OUTPUT_MAX, &v) == -1)
		return -1;
	a->max_output_tokens = (uint32_t)v;
	return 0;
}

static int
d_temperature(struct parser *p, struct cfg_lexer *lx,
    const struct cfg_token *kw, const struct frame *f)
{
	struct cfg_agent *a = f->object;

	return take_decimal(p, lx, kw, 0, 2, &a->temperature);
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

	if (take_arg(p, lx, kw, &pattern) == -1)
		return -1;
	if (!printable_ascii(pattern.text, MAX_STRING_VALUE))
		return TOKEN_ERROR(p, lx, &pattern, "invalid tool pattern "
		    "\"%s\"", pattern.text);
	for (i = 0; i < a->ntools; i++)
		if (strcmp(a->tools[i].pattern, pattern.text) == 0)
			return TOKEN_ERROR(p, lx, &pattern, "duplicate tool "
			    "\"%s\"", pattern.text);
	if (take_keyword(p, lx, kw, policies, 3, "allow, ask or deny", &v) ==
	    -1)
		return -1;
	if (a->ntools >= CFG_MAX_TOOL_RULES)
		return TOKEN_ERROR(p, lx, kw, "too many tool rules (limit %d)",
		    CFG_MAX_TOOL_RULES);
	grown = array_append(a->tools, &a->ntools, sizeof(*rule));
	if (grown == NULL)
		return out_of_memory(p, lx, kw);
	a->tools = grown;
	rule = &a->tools[a->ntools - 1];
	rule->policy = (enum cfg_tool_policy)v;
	if ((rule->pattern = strdup(pattern.text)) == NULL)
		return out_of_memory(p, lx, kw);
	return 0;
}

/* budget tokens|cost AMOUNT per day|month|total [hard|soft] */
static int
d_budget(struct parser *p, struct cfg_lexer *lx, const struct cfg_token *kw,
    const struct frame *f)
{
	static const char *const units[] = { "tokens", "cost" };
	static const char *const per[] = { "per" };
	static const char *const periods[] = { "day", "month", "total" };
	static const char *const kinds[] = { "hard", "soft" };
	struct cfg_tenant *tn = f->object;
	struct cfg_budget b, *nb;
	uint64_t tokens;
	void *grown;
	size_t i;
	int unit, unused, period, hard = 0, more;

	memset(&b, 0, sizeof(b));
	set_pos(&b.pos, lx, kw);
	if (take_keyword(p, lx, kw, units, 2, "tokens or cost", &unit) == -1)
		return -1;
	if (unit == 0) {
		if (take_uint(p, lx, kw, 1, TOKEN_BUDGET_MAX, &tokens) == -1)
			return -1;
		b.amount = (double)tokens;
	} else if (take_decimal(p, lx, kw, 0, COST_BUDGET_MAX, &b.amount) ==
	    -1)
		return -1;
	if (take_keyword(p, lx, kw, per, 1, "per", &unused) == -1 ||
	    take_keyword(p, lx, kw, periods, 3, "day, month or total",
	    &period) == -1)
		return -1;
	if (arg_follows(lx, &more) == -1)
		return -1;
	if (more && take_keyword(p, lx, kw, kinds, 2, "hard or soft",
	    &hard) == -1)
		return -1;
	b.unit = unit == 0 ? CFG_BUDGET_TOKENS : CFG_BUDGET_COST;
	b.period = (enum cfg_budget_period)period;
	b.hard = hard == 0;
	for (i = 0; i < tn->nbudgets; i++)
		if (tn->budgets[i].unit == b.unit &&
		    tn->budgets[i].period == b.period)
			return TOKEN_ERROR(p, lx, kw, "duplicate budget %s per "
			    "%s", units[unit], periods[period]);
	/* Unit and period are unique, so a tenant has at most six. */
	grown = array_append(tn->budgets, &tn->nbudgets, sizeof(*nb));
	if (grown == NULL)
		return out_of_memory(p, lx, kw);
	tn->budgets = grown;
	tn->budgets[tn->nbudgets - 1] = b;
	return 0;
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
	grown = array_append(cfg->files, &cfg->nfiles, sizeof(*cfg->files));
	if (grown == NULL) {
		free(copy);
		return NULL;
	}
	cfg->files = grown;
	cfg->files[cfg->nfiles - 1] = copy;
	return copy;
}

static int
d_include(struct parser *p, struct cfg_lexer *lx, const struct cfg_token *kw,
    const struct frame *f)
{
	struct cfg_token t;
	struct cfg_lexer *sub = NULL;
	struct file_id id;
	const char *slash, *why;
	char *display = NULL, *open_path = NULL, *dir = NULL, *buf = NULL;
	char *name, msg[128];
	size_t len, i;
	int rc = -1, r;

	if (take_arg(p, lx, kw, &t) == -1)
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
		return out_of_memory(p, lx, kw);
	display = dir != NULL ? path_join(dir, t.text) : strdup(t.text);
	free(dir);
	if (display == NULL || (open_path = path_join(p->base_dir,
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
	out_of_memory(p, lx, kw);
out:
	free(sub);
	free(buf);
	free(open_path);
	free(display);
	return rc;
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
	{ "tenant", d_tenant, 0 },
	{ "include", d_include, 0 },
};

static const struct directive journal_directives[] = {
	{ "durability", d_durability, D_ONCE | D_CHAIN },
	{ "checkpoint-interval", d_checkpoint_interval, D_ONCE | D_CHAIN },
	{ "include", d_include, 0 },
};

static const struct directive provider_directives[] = {
	/* Bit 0 of the seen mask is checked by d_provider. */
	{ "type", d_type, D_ONCE | D_CHAIN },
	{ "base-url", d_base_url, D_ONCE | D_CHAIN },
	{ "api-key", d_api_key, D_ONCE | D_CHAIN },
	{ "model", d_model, D_ONCE | D_CHAIN },
	{ "timeout", d_timeout, D_CHAIN },
	{ "max-concurrent", d_max_concurrent, D_ONCE | D_CHAIN },
	{ "include", d_include, 0 },
};

static const struct directive pricing_directives[] = {
	/* Bits 0 and 1 of the seen mask are checked by d_pricing. */
	{ "input", d_input, D_ONCE | D_CHAIN },
	{ "output", d_output, D_ONCE | D_CHAIN },
	{ "include", d_include, 0 },
};

static const struct directive tenant_directives[] = {
	{ "workers", d_workers, D_ONCE | D_CHAIN },
	{ "memory-limit", d_memory_limit, D_ONCE | D_CHAIN },
	{ "agent", d_agent, 0 },
	{ "budget", d_budget, D_CHAIN },
	{ "include", d_include, 0 },
};

static const struct directive agent_directives[] = {
	{ "providers", d_providers, D_ONCE },
	{ "system-prompt", d_system_prompt, D_ONCE | D_CHAIN },
	{ "max-output-tokens", d_max_output_tokens, D_ONCE | D_CHAIN },
	{ "temperature", d_temperature, D_ONCE | D_CHAIN },
	{ "tool", d_tool, D_CHAIN },
	{ "include", d_include, 0 },
};

static const struct directive tls_directives[] = {
	{ "certificate", d_tls_certificate, D_ONCE | D_CHAIN },
	{ "key", d_tls_key, D_ONCE | D_CHAIN },
	{ "include", d_include, 0 },
};

#define BLOCK(where, table)	{ where, table, NUNITS(table) }

static const struct block blocks[BLOCK_COUNT] = {
	[BLOCK_TOP] = BLOCK("at top level", top_directives),
	[BLOCK_JOURNAL] = BLOCK("in a journal block", journal_directives),
	[BLOCK_PROVIDER] = BLOCK("in a provider block", provider_directives),
	[BLOCK_PRICING] = BLOCK("in a pricing block", pricing_directives),
	[BLOCK_TENANT] = BLOCK("in a tenant block", tenant_directives),
	[BLOCK_AGENT] = BLOCK("in an agent block", agent_directives),
	[BLOCK_TLS] = BLOCK("in a tls block", tls_directives),
};

static const struct directive *
find_directive(enum block_kind kind, const char *name)
{
	const struct block *b = &blocks[kind];
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
			    "%s", kw->text, blocks[kind].where);
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
		bit = 1u << (d - blocks[f->kind].directives);
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
		return error_at(p, later->pos.file, later->pos.line,
		    later->pos.col, "listen grpc and listen http use the "
		    "same address");
	}
	if (cfg_provider_find(cfg, DEFAULT_PROVIDER) == NULL) {
		if (cfg->nproviders >= CFG_MAX_PROVIDERS)
			return error_at(p, file, 1, 1, "too many providers "
			    "(limit %d, the implicit \"offline\" included)",
			    CFG_MAX_PROVIDERS);
		pr = array_append(cfg->providers, &cfg->nproviders,
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
			return error_at(p, p->refs[i].file, p->refs[i].line,
			    p->refs[i].col, "unknown provider \"%s\"",
			    p->refs[i].name);
	return 0;
oom:
	return error_at(p, file, 1, 1, "out of memory");
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
		p->base_dir = base_dir != NULL ? path_join(cwd, base_dir) :
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
	if ((open_path = path_join(p.base_dir, path)) == NULL) {
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
		free(cfg->tenants[i].budgets);
	}
	free(cfg->tenants);
	for (i = 0; i < cfg->nfiles; i++)
		free(cfg->files[i]);
	free(cfg->files);
	free(cfg);
}

/* Dump: the effective configuration in the file's own syntax. */

static void
dump_string(FILE *fp, const char *s)
{
	fputc('"', fp);
	for (; *s != '\0'; s++) {
		switch (*s) {
		case '"':
			fputs("\\\"", fp);
			break;
		case '\\':
			fputs("\\\\", fp);
			break;
		case '\n':
			fputs("\\n", fp);
			break;
		case '\t':
			fputs("\\t", fp);
			break;
		default:
			fputc(*s, fp);
		}
	}
	fputc('"', fp);
}

/* The shortest decimal that reads back as the same double. */
static void
dump_decimal(FILE *fp, double v)
{
	char buf[40];
	int precision;

	for (precision = 1; precision <= 17; precision++) {
		snprintf(buf, sizeof(buf), "%.*g", precision, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	fputs(buf, fp);
}

static void
dump_listen(FILE *fp, const char *kind, const struct cfg_listen *l)
{
	fprintf(fp, "listen %s %s%s%s:%u", kind,
	    strchr(l->host, ':') != NULL ? "[" : "", l->host,
	    strchr(l->host, ':') != NULL ? "]" : "", l->port);
	if (l->tls) {
		fputs(" tls { certificate ", fp);
		dump_string(fp, l->tls_certificate);
		fputs(" key ", fp);
		dump_string(fp, l->tls_key);
		fputs(" }", fp);
	}
	fputc('\n', fp);
}

static void
dump_provider(FILE *fp, const struct cfg_provider *pr)
{
	char c[32], fb[32], idle[32], total[32];

	fputs("\nprovider ", fp);
	dump_string(fp, pr->name);
	fprintf(fp, " {\n\ttype %s\n", provider_types[pr->type]);
	if (pr->base_url != NULL) {
		fputs("\tbase-url ", fp);
		dump_string(fp, pr->base_url);
		fputc('\n', fp);
	}
	if (pr->api_key != NULL) {
		fputs("\tapi-key ", fp);
		dump_string(fp, pr->api_key);
		fputc('\n', fp);
	}
	if (pr->model != NULL) {
		fputs("\tmodel ", fp);
		dump_string(fp, pr->model);
		fputc('\n', fp);
	}
	format_duration(c, sizeof(c), pr->timeout_connect_ms);
	format_duration(fb, sizeof(fb), pr->timeout_first_byte_ms);
	format_duration(idle, sizeof(idle), pr->timeout_idle_ms);
	format_duration(total, sizeof(total), pr->timeout_total_ms);
	fprintf(fp, "\ttimeout connect %s first-byte %s idle %s total %s\n",
	    c, fb, idle, total);
	fprintf(fp, "\tmax-concurrent %u\n}\n", pr->max_concurrent);
}

static void
dump_agent(FILE *fp, const struct cfg_agent *a)
{
	static const char *const policies[] = { "allow", "ask", "deny" };
	size_t i;

	fputs("\tagent ", fp);
	dump_string(fp, a->name);
	fputs(" {\n\t\tproviders", fp);
	for (i = 0; i < a->nproviders; i++) {
		fputc(' ', fp);
		dump_string(fp, a->providers[i]);
	}
	fputc('\n', fp);
	if (a->system_prompt != NULL) {
		fputs("\t\tsystem-prompt ", fp);
		dump_string(fp, a->system_prompt);
		fputc('\n', fp);
	}
	fprintf(fp, "\t\tmax-output-tokens %u\n\t\ttemperature ",
	    a->max_output_tokens);
	dump_decimal(fp, a->temperature);
	fputc('\n', fp);
	for (i = 0; i < a->ntools; i++) {
		fputs("\t\ttool ", fp);
		dump_string(fp, a->tools[i].pattern);
		fprintf(fp, " %s\n", policies[a->tools[i].policy]);
	}
	fputs("\t}\n", fp);
}

static void
dump_tenant(FILE *fp, const struct cfg_tenant *tn)
{
	static const char *const periods[] = { "day", "month", "total" };
	const struct cfg_budget *b;
	char size[32];
	size_t i;

	fputs("\ntenant ", fp);
	dump_string(fp, tn->name);
	fprintf(fp, " {\n\tworkers %u\n", tn->workers);
	if (tn->memory_limit != 0) {
		format_size(size, sizeof(size), tn->memory_limit);
		fprintf(fp, "\tmemory-limit %s\n", size);
	}
	for (i = 0; i < tn->nagents; i++)
		dump_agent(fp, &tn->agents[i]);
	for (i = 0; i < tn->nbudgets; i++) {
		b = &tn->budgets[i];
		if (b->unit == CFG_BUDGET_TOKENS)
			fprintf(fp, "\tbudget tokens %.0f", b->amount);
		else {
			fputs("\tbudget cost ", fp);
			dump_decimal(fp, b->amount);
		}
		fprintf(fp, " per %s %s\n", periods[b->period],
		    b->hard ? "hard" : "soft");
	}
	fputs("}\n", fp);
}

void
cfg_dump(const struct cfg *cfg, void *stdio_file)
{
	FILE *fp = stdio_file;
	char interval[32];
	size_t i;

	fputs("# palyrad effective configuration\n", fp);
	if (cfg->user != NULL) {
		fputs("user ", fp);
		dump_string(fp, cfg->user);
		fputc('\n', fp);
	}
	fputs("state-dir ", fp);
	dump_string(fp, cfg->state_dir);
	fprintf(fp, "\nworker-uid-range %u-%u\n\n", cfg->worker_uid_min,
	    cfg->worker_uid_max);
	dump_listen(fp, "grpc", &cfg->grpc);
	dump_listen(fp, "http", &cfg->http);
	format_duration(interval, sizeof(interval),
	    cfg->checkpoint_interval_ms);
	fprintf(fp, "\njournal {\n\tdurability %s\n\tcheckpoint-interval %s\n"
	    "}\n", cfg->durability == CFG_DURABILITY_FULL ? "full" : "normal",
	    interval);
	for (i = 0; i < cfg->nproviders; i++)
		dump_provider(fp, &cfg->providers[i]);
	for (i = 0; i < cfg->npricing; i++) {
		fputs("\npricing ", fp);
		dump_string(fp, cfg->pricing[i].model);
		fputs(" { input ", fp);
		dump_decimal(fp, cfg->pricing[i].input_per_million);
		fputs("; output ", fp);
		dump_decimal(fp, cfg->pricing[i].output_per_million);
		fputs(" }\n", fp);
	}
	for (i = 0; i < cfg->ntenants; i++)
		dump_tenant(fp, &cfg->tenants[i]);
}
