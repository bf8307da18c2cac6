/*
 * config_fetch.c: the palyrad.conf http-fetch block (tenant and agent
 * level: the egress allow-list and caps of the built-in tool http.fetch)
 * and the tenant's timezone directive. Runs in the supervisor (palyrad)
 * only, while config.c parses; touches nothing but the struct cfg under
 * construction, the parser's state and, for timezone, a read of the
 * tzdata file the name stands for.
 */
#include <sys/stat.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "config_int.h"
#include "config_lex.h"

/* http-fetch { ... } */

int
cfg_directive_http_fetch(struct parser *p, struct cfg_lexer *lx,
    const struct cfg_token *kw, const struct frame *f)
{
	struct cfg_fetch *fetch;
	struct cfg_token brace;
	unsigned int seen = 0;
	struct frame sub;

	if (f->kind == BLOCK_AGENT)
		fetch = &((struct cfg_agent *)f->object)->fetch;
	else
		fetch = &((struct cfg_tenant *)f->object)->fetch;
	fetch->set = 1;
	cfg_set_pos(&fetch->pos, lx, kw);
	sub.kind = BLOCK_FETCH;
	sub.object = fetch;
	sub.seen = &seen;
	return cfg_open_block(p, lx, kw, &sub, &brace);
}

static int
dns_name_valid(const char *s)
{
	size_t i, label = 0, len = strlen(s), last = 0;
	int all_digits = 1;

	if (len == 0 || len > FETCH_HOST_MAX)
		return 0;
	for (i = 0; i <= len; i++) {
		if (s[i] == '.' || s[i] == '\0') {
			/* Empty labels (a trailing dot too) and labels with a
			 * hyphen at either end are not host names. */
			if (label == 0 || label > 63 || s[i - 1] == '-' ||
			    s[last] == '-')
				return 0;
			if (s[i] == '\0')
				break;
			label = 0;
			last = i + 1;
			all_digits = 1;
			continue;
		}
		if (!(isalnum((unsigned char)s[i]) || s[i] == '-'))
			return 0;
		if (!isdigit((unsigned char)s[i]))
			all_digits = 0;
		label++;
	}
	/* "10.1" or "1.2.3.999" is no name: a numeric last label means
	 * someone meant an address (URL hosts follow the same rule). */
	return !all_digits;
}

/*
 * "HOST[:PORT]", "[V6]:PORT" or a bare IPv6 address. Returns 0 with the
 * lower-case host (IPv6 in canonical form, no brackets) and the port (0:
 * none), or -1 with why.
 */
static int
parse_fetch_host(const char *s, char *host, size_t hostlen, uint16_t *port,
    const char **why)
{
	char buf[FETCH_HOST_MAX + 1];
	struct in6_addr a6;
	struct in_addr a4;
	const char *end, *colon = NULL;
	uint64_t v;
	size_t n, i;

	*port = 0;
	*why = "expected HOST, HOST:PORT or [IPV6]:PORT";
	if (strstr(s, "://") != NULL) {
		*why = "no scheme: a host name or address, with an optional "
		    ":PORT";
		return -1;
	}
	if (strchr(s, '/') != NULL || strchr(s, '?') != NULL ||
	    strchr(s, '#') != NULL) {
		*why = "no path: a host name or address, with an optional "
		    ":PORT";
		return -1;
	}
	if (strchr(s, '*') != NULL) {
		*why = "wildcards are not supported: list each host";
		return -1;
	}
	if (s[0] == '[') {
		if ((end = strchr(s, ']')) == NULL)
			return -1;
		n = (size_t)(end - s - 1);
		if (n == 0 || n >= sizeof(buf))
			return -1;
		memcpy(buf, s + 1, n);
		buf[n] = '\0';
		if (inet_pton(AF_INET6, buf, &a6) != 1) {
			*why = "not an IPv6 address in brackets";
			return -1;
		}
		if (end[1] == ':')
			colon = end + 1;
		else if (end[1] != '\0')
			return -1;
		if (inet_ntop(AF_INET6, &a6, host, (socklen_t)hostlen) == NULL)
			return -1;
	} else if ((colon = strchr(s, ':')) != NULL &&
	    strchr(colon + 1, ':') != NULL) {
		/* Two colons or more: a bare IPv6 address, which cannot
		 * carry a port without brackets. */
		if (inet_pton(AF_INET6, s, &a6) != 1) {
			*why = "an IPv6 address with a port needs brackets: "
			    "[IPV6]:PORT";
			return -1;
		}
		colon = NULL;
		if (inet_ntop(AF_INET6, &a6, host, (socklen_t)hostlen) == NULL)
			return -1;
	} else {
		n = colon != NULL ? (size_t)(colon - s) : strlen(s);
		if (n == 0 || n >= sizeof(buf) || n >= hostlen)
			return -1;
		for (i = 0; i < n; i++)
			buf[i] = (char)tolower((unsigned char)s[i]);
		buf[n] = '\0';
		if (inet_pton(AF_INET, buf, &a4) != 1 && !dns_name_valid(buf)) {
			*why = "not a host name or IPv4 address";
			return -1;
		}
		memcpy(host, buf, n + 1);
	}
	if (colon != NULL) {
		if (strlen(colon + 1) > 5 ||
		    cfg_parse_digits(colon + 1, strlen(colon + 1), &v) != 0 ||
		    v == 0 || v > 65535) {
			*why = "the port must be 1..65535";
			return -1;
		}
		*port = (uint16_t)v;
	}
	return 0;
}

/* allow "HOST[:PORT]" [private] */
static int
d_allow(struct parser *p, struct cfg_lexer *lx, const struct cfg_token *kw,
    const struct frame *f)
{
	struct cfg_fetch *fetch = f->object;
	struct cfg_fetch_allow *a;
	char host[FETCH_HOST_MAX + 1];
	const struct cfg_token *next;
	struct cfg_token t;
	const char *why;
	uint16_t port;
	void *grown;
	size_t i;

	if (cfg_take_arg(p, lx, kw, &t) == -1)
		return -1;
	if (parse_fetch_host(t.text, host, sizeof(host), &port, &why) == -1)
		return TOKEN_ERROR(p, lx, &t, "invalid host \"%s\" for "
		    "\"allow\" (%s)", t.text, why);
	for (i = 0; i < fetch->nallow; i++)
		if (fetch->allow[i].port == port &&
		    strcmp(fetch->allow[i].host, host) == 0)
			return TOKEN_ERROR(p, lx, &t, "duplicate allow \"%s\" "
			    "(first at line %d)", t.text,
			    fetch->allow[i].pos.line);
	if (fetch->nallow >= CFG_MAX_FETCH_ALLOW)
		return TOKEN_ERROR(p, lx, kw, "too many allow entries in one "
		    "http-fetch block (limit %d)", CFG_MAX_FETCH_ALLOW);
	grown = cfg_array_append(fetch->allow, &fetch->nallow, sizeof(*a));
	if (grown == NULL)
		return cfg_out_of_memory(p, lx, kw);
	fetch->allow = grown;
	a = &fetch->allow[fetch->nallow - 1];
	cfg_set_pos(&a->pos, lx, &t);
	a->port = port;
	if ((a->host = strdup(host)) == NULL)
		return cfg_out_of_memory(p, lx, kw);
	if (cfg_lex_peek(lx, &next) == -1)
		return -1;
	if (next->type == CFG_TOKEN_WORD && strcmp(next->text, "private") ==
	    0) {
		if (cfg_lex_take(lx, NULL) == -1)
			return -1;
		a->allow_private = 1;
	}
	return 0;
}

static int
d_max_size(struct parser *p, struct cfg_lexer *lx, const struct cfg_token *kw,
    const struct frame *f)
{
	struct cfg_fetch *fetch = f->object;

	return cfg_take_size(p, lx, kw, 1, FETCH_MAX_SIZE_MAX,
	    &fetch->max_bytes);
}

static int
d_timeout(struct parser *p, struct cfg_lexer *lx, const struct cfg_token *kw,
    const struct frame *f)
{
	struct cfg_fetch *fetch = f->object;

	return cfg_take_duration(p, lx, kw, FETCH_TIMEOUT_MIN,
	    FETCH_TIMEOUT_MAX, &fetch->timeout_ms);
}

static int
d_max_redirects(struct parser *p, struct cfg_lexer *lx,
    const struct cfg_token *kw, const struct frame *f)
{
	struct cfg_fetch *fetch = f->object;
	uint64_t v;

	if (cfg_take_uint(p, lx, kw, 0, FETCH_REDIRECTS_MAX, &v) == -1)
		return -1;
	fetch->max_redirects = (uint32_t)v;
	fetch->has_max_redirects = 1;
	return 0;
}

/* An RFC 9110 token: the type and the subtype of a media type. */
static int
media_token(const char *s, size_t n)
{
	size_t i;

	if (n == 0)
		return 0;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) &&
		    strchr("!#$&-^_.+", s[i]) == NULL)
			return 0;
	return 1;
}

/* "type/sub", or "type/" and a star; lower-cased into out. */
static int
content_type_valid(const char *s, char *out, size_t outlen)
{
	const char *slash = strchr(s, '/');
	size_t i, n = strlen(s);

	if (slash == NULL || n >= outlen || n > MAX_STRING_VALUE)
		return 0;
	if (!media_token(s, (size_t)(slash - s)))
		return 0;
	if (strcmp(slash + 1, "*") != 0 &&
	    !media_token(slash + 1, strlen(slash + 1)))
		return 0;
	for (i = 0; i <= n; i++)
		out[i] = (char)tolower((unsigned char)s[i]);
	return 1;
}

/* content-types "T/S" ...: the arguments are strings, or words with a
 * slash, so that another directive may follow on the same line. */
static int
d_content_types(struct parser *p, struct cfg_lexer *lx,
    const struct cfg_token *kw, const struct frame *f)
{
	struct cfg_fetch *fetch = f->object;
	char type[MAX_STRING_VALUE + 1];
	const struct cfg_token *next;
	struct cfg_token t;
	void *grown;
	size_t i, n = 0;

	for (;;) {
		if (cfg_lex_peek(lx, &next) == -1)
			return -1;
		if (next->type != CFG_TOKEN_STRING &&
		    !(next->type == CFG_TOKEN_WORD &&
		    (n == 0 || strchr(next->text, '/') != NULL)))
			break;
		if (cfg_lex_take(lx, &t) == -1)
			return -1;
		if (!content_type_valid(t.text, type, sizeof(type)))
			return TOKEN_ERROR(p, lx, &t, "invalid content type "
			    "\"%s\" (expected \"type/subtype\" or "
			    "\"type/*\")", t.text);
		for (i = 0; i < fetch->ncontent_types; i++)
			if (strcmp(fetch->content_types[i], type) == 0)
				return TOKEN_ERROR(p, lx, &t, "duplicate "
				    "content type \"%s\"", t.text);
		if (fetch->ncontent_types >= CFG_MAX_CONTENT_TYPES)
			return TOKEN_ERROR(p, lx, &t, "too many content types "
			    "(limit %d)", CFG_MAX_CONTENT_TYPES);
		grown = cfg_array_append(fetch->content_types,
		    &fetch->ncontent_types, sizeof(*fetch->content_types));
		if (grown == NULL)
			return cfg_out_of_memory(p, lx, &t);
		fetch->content_types = grown;
		if ((fetch->content_types[fetch->ncontent_types - 1] =
		    strdup(type)) == NULL)
			return cfg_out_of_memory(p, lx, &t);
		n++;
	}
	if (n == 0)
		return cfg_missing_argument(p, lx, kw);
	return 0;
}

void
cfg_fetch_free(struct cfg_fetch *fetch)
{
	size_t i;

	for (i = 0; i < fetch->nallow; i++)
		free(fetch->allow[i].host);
	free(fetch->allow);
	for (i = 0; i < fetch->ncontent_types; i++)
		free(fetch->content_types[i]);
	free(fetch->content_types);
}

/* timezone "Area/City" */

static int
zone_name_valid(const char *s)
{
	size_t i;

	if (s[0] == '\0' || s[0] == '/' || strlen(s) > CFG_MAX_TIMEZONE_LEN)
		return 0;
	for (i = 0; s[i] != '\0'; i++) {
		/* No component may start with a dot: no "..", no hidden
		 * files, nothing outside the zoneinfo directory. */
		if ((i == 0 || s[i - 1] == '/') && (s[i] == '.' ||
		    s[i] == '/'))
			return 0;
		if (!(isalnum((unsigned char)s[i]) ||
		    strchr("/_+-.", s[i]) != NULL))
			return 0;
	}
	return s[i - 1] != '/';
}

/* 0: a TZif file; -1 with why. */
static int
zone_file_check(const char *name, const char **why)
{
	char path[PATH_MAX], magic[4];
	struct stat st;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", CFG_ZONEINFO_DIR, name);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY |
	    O_NONBLOCK)) == -1) {
		*why = errno == ENOENT || errno == ENOTDIR ?
		    "no such tzdata zone" : strerror(errno);
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		close(fd);
		*why = "not a tzdata zone";
		return -1;
	}
	n = read(fd, magic, sizeof(magic));
	close(fd);
	if (n != (ssize_t)sizeof(magic) || memcmp(magic, "TZif", 4) != 0) {
		*why = "not a tzdata zone file";
		return -1;
	}
	return 0;
}

int
cfg_directive_timezone(struct parser *p, struct cfg_lexer *lx,
    const struct cfg_token *kw, const struct frame *f)
{
	struct cfg_tenant *tn = f->object;
	struct cfg_token t;
	const char *why;

	if (cfg_take_arg(p, lx, kw, &t) == -1)
		return -1;
	if (!zone_name_valid(t.text))
		return TOKEN_ERROR(p, lx, &t, "invalid time zone \"%s\" "
		    "(expected a tzdata name such as \"Europe/Paris\" or "
		    "\"UTC\")", t.text);
	if (zone_file_check(t.text, &why) == -1)
		return TOKEN_ERROR(p, lx, &t, "unknown time zone \"%s\": %s "
		    "in %s", t.text, why, CFG_ZONEINFO_DIR);
	return cfg_dup_string(p, lx, &t, &tn->timezone);
}

static const struct directive fetch_directives[] = {
	{ "allow", d_allow, D_CHAIN },
	{ "max-size", d_max_size, D_ONCE | D_CHAIN },
	{ "timeout", d_timeout, D_ONCE | D_CHAIN },
	{ "content-types", d_content_types, D_ONCE | D_CHAIN },
	{ "max-redirects", d_max_redirects, D_ONCE | D_CHAIN },
	{ "include", cfg_directive_include, 0 },
};

const struct block cfg_fetch_block =
    CFG_BLOCK("in an http-fetch block", fetch_directives);
