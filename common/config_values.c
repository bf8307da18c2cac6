/*
 * config_values.c: the arguments of palyrad.conf directives and the values
 * they hold: numbers, sizes, durations, decimals, keywords, names, paths.
 * Runs in the supervisor (palyrad) only, while config.c parses; touches
 * nothing but the lexer it reads from, the parser's error buffer and the
 * strings it hands back. Every value is checked here, range included,
 * before a handler stores it.
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_int.h"
#include "config_lex.h"

int
cfg_printable_ascii(const char *s, size_t maxlen)
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

int
cfg_vault_name_valid(const char *name)
{
	size_t i;

	if (name == NULL || name[0] == '\0' || name[0] == '.')
		return 0;
	for (i = 0; name[i] != '\0'; i++) {
		if (i >= 128)
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

int
cfg_missing_argument(struct parser *p, struct cfg_lexer *lx,
    const struct cfg_token *kw)
{
	return TOKEN_ERROR(p, lx, kw, "missing argument to \"%s\"", kw->text);
}

/* Takes one argument (a bare word or a quoted string) of directive kw. */
int
cfg_take_arg(struct parser *p, struct cfg_lexer *lx, const struct cfg_token *kw,
    struct cfg_token *out)
{
	const struct cfg_token *t;

	if (cfg_lex_peek(lx, &t) == -1)
		return -1;
	if (t->type != CFG_TOKEN_WORD && t->type != CFG_TOKEN_STRING)
		return cfg_missing_argument(p, lx, kw);
	return cfg_lex_take(lx, out);
}

/* Returns 1 if the next token can be an argument (word or string). */
int
cfg_arg_follows(struct cfg_lexer *lx, int *more)
{
	const struct cfg_token *t;

	if (cfg_lex_peek(lx, &t) == -1)
		return -1;
	*more = t->type == CFG_TOKEN_WORD || t->type == CFG_TOKEN_STRING;
	return 0;
}

int
cfg_dup_string(struct parser *p, struct cfg_lexer *lx,
    const struct cfg_token *t, char **out)
{
	free(*out);
	if ((*out = strdup(t->text)) == NULL)
		return cfg_out_of_memory(p, lx, t);
	return 0;
}

int
cfg_dup_path(struct parser *p, struct cfg_lexer *lx, const struct cfg_token *kw,
    const struct cfg_token *t, char **out)
{
	char *path;

	if (t->len == 0)
		return TOKEN_ERROR(p, lx, t, "empty path for \"%s\"",
		    kw->text);
	if ((path = cfg_path_join(p->base_dir, t->text)) == NULL)
		return cfg_out_of_memory(p, lx, t);
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
int
cfg_parse_digits(const char *s, size_t n, uint64_t *out)
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
	if ((rc = cfg_parse_digits(s, n, &v)) != 0)
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

void
cfg_format_duration(char *buf, size_t len, uint64_t ms)
{
	format_with_unit(buf, len, ms, duration_units, NUNITS(duration_units));
}

void
cfg_format_size(char *buf, size_t len, uint64_t bytes)
{
	format_with_unit(buf, len, bytes, size_units, NUNITS(size_units));
}

int
cfg_out_of_range(struct parser *p, struct cfg_lexer *lx,
    const struct cfg_token *kw, const struct cfg_token *t, const char *min,
    const char *max)
{
	return TOKEN_ERROR(p, lx, t, "value \"%s\" out of range for \"%s\" "
	    "(%s..%s)", t->text, kw->text, min, max);
}

int
cfg_take_uint(struct parser *p, struct cfg_lexer *lx,
    const struct cfg_token *kw, uint64_t min, uint64_t max, uint64_t *out)
{
	struct cfg_token t;
	char lo[32], hi[32];
	int rc;

	if (cfg_take_arg(p, lx, kw, &t) == -1)
		return -1;
	rc = cfg_parse_digits(t.text, t.len, out);
	if (rc == -1)
		return TOKEN_ERROR(p, lx, &t, "invalid number \"%s\" for "
		    "\"%s\"", t.text, kw->text);
	if (rc == -2 || *out < min || *out > max) {
		snprintf(lo, sizeof(lo), "%llu", (unsigned long long)min);
		snprintf(hi, sizeof(hi), "%llu", (unsigned long long)max);
		return cfg_out_of_range(p, lx, kw, &t, lo, hi);
	}
	return 0;
}

int
cfg_take_duration(struct parser *p, struct cfg_lexer *lx,
    const struct cfg_token *kw, uint64_t min, uint64_t max, uint64_t *out)
{
	struct cfg_token t;
	char lo[32], hi[32];
	int rc;

	if (cfg_take_arg(p, lx, kw, &t) == -1)
		return -1;
	/* Zero is zero in any unit: a bare "0" needs none. */
	if (strcmp(t.text, "0") == 0) {
		*out = 0;
		rc = 0;
	} else
		rc = parse_with_unit(t.text, duration_units,
		    NUNITS(duration_units), out);
	if (rc == -1)
		return TOKEN_ERROR(p, lx, &t, "invalid duration \"%s\" for "
		    "\"%s\"", t.text, kw->text);
	if (rc == -2 || *out < min || *out > max) {
		cfg_format_duration(lo, sizeof(lo), min);
		cfg_format_duration(hi, sizeof(hi), max);
		return cfg_out_of_range(p, lx, kw, &t, lo, hi);
	}
	return 0;
}

int
cfg_take_size(struct parser *p, struct cfg_lexer *lx,
    const struct cfg_token *kw, uint64_t min, uint64_t max, uint64_t *out)
{
	struct cfg_token t;
	char lo[32], hi[32];
	int rc;

	if (cfg_take_arg(p, lx, kw, &t) == -1)
		return -1;
	rc = parse_with_unit(t.text, size_units, NUNITS(size_units), out);
	if (rc == -1)
		return TOKEN_ERROR(p, lx, &t, "invalid size \"%s\" for \"%s\"",
		    t.text, kw->text);
	if (rc == -2 || *out < min || *out > max) {
		cfg_format_size(lo, sizeof(lo), min);
		cfg_format_size(hi, sizeof(hi), max);
		return cfg_out_of_range(p, lx, kw, &t, lo, hi);
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

int
cfg_take_decimal(struct parser *p, struct cfg_lexer *lx,
    const struct cfg_token *kw, double min, double max, double *out)
{
	struct cfg_token t;
	char lo[32], hi[32];

	if (cfg_take_arg(p, lx, kw, &t) == -1)
		return -1;
	if (!decimal_syntax(t.text))
		return TOKEN_ERROR(p, lx, &t, "invalid decimal number \"%s\" "
		    "for \"%s\"", t.text, kw->text);
	*out = strtod(t.text, NULL);
	if (!isfinite(*out) || *out < min || *out > max) {
		snprintf(lo, sizeof(lo), "%g", min);
		snprintf(hi, sizeof(hi), "%g", max);
		return cfg_out_of_range(p, lx, kw, &t, lo, hi);
	}
	return 0;
}

/* One of words[]; *out is its index. */
int
cfg_take_keyword(struct parser *p, struct cfg_lexer *lx,
    const struct cfg_token *kw, const char *const *words, size_t nwords,
    const char *expected, int *out)
{
	struct cfg_token t;
	size_t i;

	*out = 0;
	if (cfg_take_arg(p, lx, kw, &t) == -1)
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

int
cfg_take_name(struct parser *p, struct cfg_lexer *lx,
    const struct cfg_token *kw, struct cfg_token *out)
{
	if (cfg_take_arg(p, lx, kw, out) == -1)
		return -1;
	if (!cfg_name_valid(out->text))
		return TOKEN_ERROR(p, lx, out, "invalid %s name \"%s\"",
		    kw->text, out->text);
	return 0;
}

void
cfg_set_pos(struct cfg_pos *pos, struct cfg_lexer *lx,
    const struct cfg_token *t)
{
	pos->file = lx->file;
	pos->line = t->line;
	pos->col = t->col;
}
