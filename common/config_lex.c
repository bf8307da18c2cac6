/*
 * config_lex.c: the tokenizer of palyrad.conf (see config_lex.h). Runs in
 * the supervisor only; reads the buffer it is given and nothing else.
 *
 * Lexical rules (palyrad.conf(5)): "#" starts a comment that runs to the
 * end of the line; a line ends with LF or CR LF; a quoted string knows the
 * escapes \" \\ \n \t, may not span lines and must be valid UTF-8; a bare
 * word is a run of printable ASCII other than { } ; # and ". NUL bytes,
 * other control characters (tab excepted) and a CR not followed by LF are
 * rejected wherever they appear, comments included, so that what an
 * operator sees in an editor is what the parser reads.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "config_lex.h"

void
cfg_error_at(char *err, size_t errlen, const char *file, int line, int col,
    const char *fmt, ...)
{
	va_list ap;
	int n;

	if (err == NULL || errlen == 0)
		return;
	n = snprintf(err, errlen, "%s:%d:%d: ", file, line, col);
	if (n < 0 || (size_t)n >= errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
	va_end(ap);
}

void
cfg_lex_init(struct cfg_lexer *lx, const char *file, const char *buf,
    size_t len, char *err, size_t errlen)
{
	memset(lx, 0, sizeof(*lx));
	lx->file = file;
	lx->buf = (const unsigned char *)buf;
	lx->len = len;
	lx->line = 1;
	lx->col = 1;
	lx->last = CFG_TOKEN_NEWLINE;
	lx->err = err;
	lx->errlen = errlen;
	/* An editor's UTF-8 byte order mark is not part of the text. */
	if (len >= 3 && lx->buf[0] == 0xef && lx->buf[1] == 0xbb &&
	    lx->buf[2] == 0xbf)
		lx->off = 3;
}

static int
lex_error(struct cfg_lexer *lx, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
lex_error(struct cfg_lexer *lx, int line, int col, const char *fmt, ...)
{
	char msg[CFG_MAX_TOKEN_LEN / 8];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	cfg_error_at(lx->err, lx->errlen, lx->file, line, col, "%s", msg);
	return -1;
}

/* Rejects the bytes no part of the file may hold; returns 0 if c is fine. */
static int
lex_check_byte(struct cfg_lexer *lx, unsigned char c)
{
	if (c == '\0')
		return lex_error(lx, lx->line, lx->col, "NUL byte");
	if (c == '\r') {
		if (lx->off + 1 < lx->len && lx->buf[lx->off + 1] == '\n')
			return 0;
		return lex_error(lx, lx->line, lx->col,
		    "carriage return without line feed");
	}
	if ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7f)
		return lex_error(lx, lx->line, lx->col,
		    "invalid control character 0x%02x", c);
	return 0;
}

/* Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF. */
static int
utf8_valid(const unsigned char *s, size_t len)
{
	size_t i = 0, n, k;
	unsigned int cp, min;

	while (i < len) {
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		if ((s[i] & 0xe0) == 0xc0) {
			n = 1;
			cp = s[i] & 0x1f;
			min = 0x80;
		} else if ((s[i] & 0xf0) == 0xe0) {
			n = 2;
			cp = s[i] & 0x0f;
			min = 0x800;
		} else if ((s[i] & 0xf8) == 0xf0) {
			n = 3;
			cp = s[i] & 0x07;
			min = 0x10000;
		} else
			return 0;
		if (len - i - 1 < n)
			return 0;
		for (k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += n + 1;
	}
	return 1;
}

static int
lex_string(struct cfg_lexer *lx, struct cfg_token *t)
{
	unsigned char c, e;

	t->type = CFG_TOKEN_STRING;
	lx->off++;
	lx->col++;
	for (;;) {
		if (lx->off >= lx->len)
			return lex_error(lx, t->line, t->col,
			    "unterminated string");
		c = lx->buf[lx->off];
		if (c == '"') {
			lx->off++;
			lx->col++;
			break;
		}
		if (c == '\n' || c == '\r')
			return lex_error(lx, t->line, t->col,
			    "unterminated string");
		if (c == '\\') {
			if (lx->off + 1 >= lx->len)
				return lex_error(lx, t->line, t->col,
				    "unterminated string");
			e = lx->buf[lx->off + 1];
			switch (e) {
			case '"':
			case '\\':
				c = e;
				break;
			case 'n':
				c = '\n';
				break;
			case 't':
				c = '\t';
				break;
			default:
				if (e > 0x20 && e < 0x7f)
					return lex_error(lx, lx->line, lx->col,
					    "invalid escape \"\\%c\"", e);
				return lex_error(lx, lx->line, lx->col,
				    "invalid escape");
			}
			lx->off++;
			lx->col++;
		} else if (lex_check_byte(lx, c) == -1)
			return -1;
		if (t->len >= CFG_MAX_TOKEN_LEN)
			return lex_error(lx, t->line, t->col,
			    "string too long (limit %d bytes)",
			    CFG_MAX_TOKEN_LEN);
		t->text[t->len++] = (char)c;
		lx->off++;
		lx->col++;
	}
	t->text[t->len] = '\0';
	if (!utf8_valid((const unsigned char *)t->text, t->len))
		return lex_error(lx, t->line, t->col,
		    "invalid UTF-8 in string");
	return 0;
}

static int
word_byte(unsigned char c)
{
	return c > 0x20 && c < 0x7f && c != '{' && c != '}' && c != ';' &&
	    c != '#' && c != '"';
}

static int
lex_scan(struct cfg_lexer *lx, struct cfg_token *t)
{
	unsigned char c;

	t->len = 0;
	t->text[0] = '\0';
	for (;;) {
		t->line = lx->line;
		t->col = lx->col;
		if (lx->off >= lx->len) {
			t->type = CFG_TOKEN_EOF;
			return 0;
		}
		c = lx->buf[lx->off];
		if (c == ' ' || c == '\t') {
			lx->off++;
			lx->col++;
			continue;
		}
		if (c == '#') {
			while (lx->off < lx->len && lx->buf[lx->off] != '\n') {
				if (lx->buf[lx->off] < 0x80 &&
				    lex_check_byte(lx, lx->buf[lx->off]) == -1)
					return -1;
				if (lx->buf[lx->off] == '\r')
					break;
				lx->off++;
				lx->col++;
			}
			continue;
		}
		if (c == '\r' || c == '\n') {
			if (lex_check_byte(lx, c) == -1)
				return -1;
			lx->off += c == '\r' ? 2 : 1;
			lx->line++;
			lx->col = 1;
			t->type = CFG_TOKEN_NEWLINE;
			return 0;
		}
		break;
	}
	switch (c) {
	case '{':
	case '}':
	case ';':
		t->type = c == '{' ? CFG_TOKEN_LBRACE :
		    c == '}' ? CFG_TOKEN_RBRACE : CFG_TOKEN_SEMICOLON;
		t->text[0] = (char)c;
		t->text[1] = '\0';
		t->len = 1;
		lx->off++;
		lx->col++;
		return 0;
	case '"':
		return lex_string(lx, t);
	}
	if (lex_check_byte(lx, c) == -1)
		return -1;
	if (c >= 0x80)
		return lex_error(lx, lx->line, lx->col,
		    "non-ASCII character outside a quoted string");
	t->type = CFG_TOKEN_WORD;
	while (lx->off < lx->len && word_byte(lx->buf[lx->off])) {
		if (t->len >= CFG_MAX_TOKEN_LEN)
			return lex_error(lx, t->line, t->col,
			    "word too long (limit %d bytes)",
			    CFG_MAX_TOKEN_LEN);
		t->text[t->len++] = (char)lx->buf[lx->off];
		lx->off++;
		lx->col++;
	}
	t->text[t->len] = '\0';
	return 0;
}

int
cfg_lex_peek(struct cfg_lexer *lx, const struct cfg_token **out)
{
	if (!lx->have_ahead) {
		if (lex_scan(lx, &lx->ahead) == -1)
			return -1;
		lx->have_ahead = 1;
	}
	*out = &lx->ahead;
	return 0;
}

int
cfg_lex_take(struct cfg_lexer *lx, struct cfg_token *out)
{
	const struct cfg_token *t;

	if (cfg_lex_peek(lx, &t) == -1)
		return -1;
	if (out != NULL) {
		out->type = t->type;
		out->line = t->line;
		out->col = t->col;
		out->len = t->len;
		memcpy(out->text, t->text, t->len + 1);
	}
	lx->last = t->type;
	lx->have_ahead = 0;
	return 0;
}

const char *
cfg_token_describe(const struct cfg_token *t, char *buf, size_t len)
{
	char shown[44];
	size_t i, n;

	if (t->type == CFG_TOKEN_NEWLINE)
		return "end of line";
	if (t->type == CFG_TOKEN_EOF)
		return "end of file";
	n = t->len > 40 ? 37 : t->len;
	/* Quoted text may hold newlines and quotes; a message may not. */
	for (i = 0; i < n; i++)
		shown[i] = (unsigned char)t->text[i] < 0x20 ||
		    t->text[i] == '"' ? '?' : t->text[i];
	shown[n] = '\0';
	snprintf(buf, len, "\"%s%s\"", shown, t->len > 40 ? "..." : "");
	return buf;
}
