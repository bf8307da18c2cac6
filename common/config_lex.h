/*
 * config_lex.h: the tokenizer of palyrad.conf, private to common/config*.c.
 * It runs in the supervisor only (and in tests and the config fuzzer) and
 * touches nothing but the buffer it is given.
 *
 * Tokens are bare words, quoted strings (escapes decoded), "{", "}", ";",
 * end of line and end of file. Every token carries the 1-based line and
 * column (in bytes) where it starts, so that every error can name
 * FILE:LINE:COL.
 */
#ifndef PALYRA_CONFIG_LEX_H
#define PALYRA_CONFIG_LEX_H

#include <stddef.h>

#include "limits.h"

enum cfg_token_type {
	CFG_TOKEN_WORD = 0,
	CFG_TOKEN_STRING,
	CFG_TOKEN_LBRACE,
	CFG_TOKEN_RBRACE,
	CFG_TOKEN_SEMICOLON,
	CFG_TOKEN_NEWLINE,
	CFG_TOKEN_EOF,
};

struct cfg_token {
	enum cfg_token_type type;
	int		 line;
	int		 col;
	size_t		 len;		/* bytes in text, NUL not counted */
	char		 text[CFG_MAX_TOKEN_LEN + 1];
};

struct cfg_lexer {
	const char	*file;		/* name used in messages */
	const unsigned char *buf;
	size_t		 len;
	size_t		 off;
	int		 line;
	int		 col;
	struct cfg_token ahead;		/* peeked token, if have_ahead */
	int		 have_ahead;
	enum cfg_token_type last;	/* type of the last token taken */
	char		*err;
	size_t		 errlen;
};

/* Formats "FILE:LINE:COL: message" into err (nothing if errlen is 0). */
void	cfg_error_at(char *err, size_t errlen, const char *file, int line,
	    int col, const char *fmt, ...)
	    __attribute__((format(printf, 6, 7)));

void	cfg_lex_init(struct cfg_lexer *, const char *file, const char *buf,
	    size_t len, char *err, size_t errlen);

/*
 * Returns the next token without consuming it. Returns 0, or -1 with the
 * message in the lexer's err buffer (bad byte, bad string, token too long).
 */
int	cfg_lex_peek(struct cfg_lexer *, const struct cfg_token **);

/* Consumes the next token, copying it to out unless out is NULL. */
int	cfg_lex_take(struct cfg_lexer *, struct cfg_token *out);

/* Describes a token for a message: "\"text\"", "end of line", ... */
const char *cfg_token_describe(const struct cfg_token *, char *buf,
	    size_t len);

#endif
