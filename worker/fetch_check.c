/*
 * fetch_check.c: the checks and texts of http.fetch (fetch_int.h): its
 * arguments, the URL of each hop against the egress allow-list and the
 * address classes, content types, and the result.
 *
 * Runs in palyra-worker (fetch.c calls it) and the unit tests; touches
 * nothing but its arguments and, read-only, the host pins http.c made
 * before the sandbox (wrk_http_pinned). Everything here reads text a
 * model or a remote server wrote: every length is bounded and every
 * refusal is a sentence for the model, never an internal detail.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <jansson.h>

#include "fetch_int.h"
#include "http.h"
#include "limits.h"
#include "netaddr.h"
#include "tools.h"

/* The request headers a model may not set: the target and credentials
 * are the operator's, and framing and hop-by-hop headers are curl's. */
static const char *const refused_headers[] = {
    "host",
    "authorization",
    "cookie",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "expect",
    "accept-encoding",
};

/* An RFC 9110 token character. */
static int
tchar(int c)
{
	return isalnum(c) ||
	       (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int
header_refused(const char *name)
{
	size_t i;

	if (strncasecmp(name, "proxy-", 6) == 0)
		return 1;
	for (i = 0; i < sizeof(refused_headers) / sizeof(refused_headers[0]);
	     i++)
		if (strcasecmp(name, refused_headers[i]) == 0)
			return 1;
	return 0;
}

/*
 * The arguments, as fetch.h says (the gate validated them against
 * wrk_fetch_schema; this is the one place that reads them): the URL, the
 * method and the headers as "Name: value" lines (owned). 0, or -1 with the
 * reason in err.
 */
int
wrk_fetch_args(const json_t *args, const char **url, int *head, char **headers,
    size_t *nheaders, char *err, size_t errlen)
{
	const char *key, *method, *value;
	json_t *v, *hdrs;
	size_t n, vlen;

	*nheaders = 0;
	*url = NULL;
	*head = 0;
	if (args == NULL || !json_is_object(args)) {
		snprintf(err, errlen, "the arguments must be a JSON object");
		return -1;
	}
	json_object_foreach((json_t *)args, key, v)
	{
		if (strcmp(key, "url") != 0 && strcmp(key, "method") != 0 &&
		    strcmp(key, "headers") != 0) {
			snprintf(
			    err, errlen, "unknown argument \"%.64s\"", key);
			return -1;
		}
	}
	*url = json_string_value(json_object_get(args, "url"));
	if (*url == NULL || **url == '\0') {
		snprintf(err, errlen, "\"url\" (a string) is required");
		return -1;
	}
	if ((v = json_object_get(args, "method")) != NULL) {
		method = json_string_value(v);
		if (method == NULL || (strcmp(method, "GET") != 0 &&
					  strcmp(method, "HEAD") != 0)) {
			snprintf(err, errlen, "\"method\" must be GET or HEAD");
			return -1;
		}
		*head = strcmp(method, "HEAD") == 0;
	}
	if ((hdrs = json_object_get(args, "headers")) == NULL)
		return 0;
	if (!json_is_object(hdrs)) {
		snprintf(
		    err, errlen, "\"headers\" must be an object of strings");
		return -1;
	}
	if (json_object_size(hdrs) > WRK_FETCH_HEADERS_MAX) {
		snprintf(
		    err, errlen, "at most %d headers", WRK_FETCH_HEADERS_MAX);
		return -1;
	}
	json_object_foreach(hdrs, key, v)
	{
		if ((value = json_string_value(v)) == NULL) {
			snprintf(err, errlen,
			    "header \"%.64s\": the value must be a string",
			    key);
			return -1;
		}
		n = strlen(key);
		if (n == 0 || n > WRK_FETCH_HEADER_NAME_MAX) {
			snprintf(err, errlen,
			    "a header name must have 1 to %d characters",
			    WRK_FETCH_HEADER_NAME_MAX);
			return -1;
		}
		for (n = 0; key[n] != '\0'; n++)
			if (!tchar((unsigned char)key[n])) {
				snprintf(err, errlen,
				    "header name \"%.64s\" is not a token",
				    key);
				return -1;
			}
		if (header_refused(key)) {
			snprintf(err, errlen, "header \"%.64s\" may not be set",
			    key);
			return -1;
		}
		vlen = json_string_length(v);
		if (vlen > WRK_FETCH_HEADER_VALUE_MAX) {
			snprintf(err, errlen,
			    "header \"%.64s\": the value is over %d bytes", key,
			    WRK_FETCH_HEADER_VALUE_MAX);
			return -1;
		}
		for (n = 0; n < vlen; n++)
			if (((unsigned char)value[n] < 0x20 &&
				value[n] != '\t') ||
			    value[n] == 0x7f) {
				snprintf(err, errlen,
				    "header \"%.64s\": control characters in "
				    "the value",
				    key);
				return -1;
			}
		if (asprintf(&headers[*nheaders], "%s: %s", key, value) < 0) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		(*nheaders)++;
	}
	return 0;
}

void
wrk_fetch_shown(char *buf, size_t size, const char *url)
{
	size_t i;

	snprintf(buf, size, "%.*s%s", FETCH_SHOWN_MAX, url,
	    strlen(url) > FETCH_SHOWN_MAX ? "..." : "");
	for (i = 0; buf[i] != '\0'; i++)
		if ((unsigned char)buf[i] < 0x20 ||
		    (unsigned char)buf[i] >= 0x7f)
			buf[i] = '?';
}

/*
 * url with each byte over 0x7e percent-encoded, as browsers send them
 * (a URL has no raw non-ASCII, and the URL is quoted in results that must
 * stay valid UTF-8). 0, -EINVAL for a control character, or -ENOMEM.
 */
static int
url_escape(const char *url, char **out)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *s;
	size_t n = 0;
	char *o;

	for (s = (const unsigned char *)url; *s != '\0'; s++) {
		if (*s < 0x20)
			return -EINVAL;
		n += *s >= 0x7f ? 3 : 1;
	}
	if ((*out = o = malloc(n + 1)) == NULL)
		return -ENOMEM;
	for (s = (const unsigned char *)url; *s != '\0'; s++) {
		if (*s >= 0x7f) {
			*o++ = '%';
			*o++ = hex[*s >> 4];
			*o++ = hex[*s & 15];
		} else
			*o++ = (char)*s;
	}
	*o = '\0';
	return 0;
}

/*
 * Parses url (relative to base, for a redirect's Location, when base is
 * not NULL): http or https, no userinfo, no zone id, the fragment
 * dropped, the host in lower case. *out (malloc'd) is the URL to request;
 * host (IPv6 without brackets) and port are its target. 0, or -1 with the
 * reason in err (-ENOMEM as -1 too: "out of memory").
 */
static int
fetch_url(const char *url, const char *base, char **out, char *host,
    size_t hostsize, unsigned *port, char *err, size_t errlen)
{
	char *scheme = NULL, *h = NULL, *p = NULL, *user = NULL, *full = NULL;
	char *zone = NULL, *bracketed = NULL, *escaped = NULL;
	unsigned long v;
	size_t n, i;
	CURLU *u;
	int rc = -1;

	*out = NULL;
	if (strlen(url) > WRK_FETCH_URL_MAX) {
		snprintf(
		    err, errlen, "the URL is over %d bytes", WRK_FETCH_URL_MAX);
		return -1;
	}
	if ((rc = url_escape(url, &escaped)) < 0) {
		snprintf(err, errlen, "%s",
		    rc == -ENOMEM ? "out of memory"
				  : "control characters in the URL");
		return -1;
	}
	rc = -1;
	if ((u = curl_url()) == NULL) {
		free(escaped);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if ((base != NULL &&
		curl_url_set(u, CURLUPART_URL, base, 0) != CURLUE_OK) ||
	    curl_url_set(u, CURLUPART_URL, escaped, CURLU_NON_SUPPORT_SCHEME) !=
		CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK) {
		snprintf(err, errlen, "not a valid URL");
		goto out;
	}
	if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
		snprintf(err, errlen,
		    "scheme \"%.16s\" is not allowed (only http and https)",
		    scheme);
		goto out;
	}
	if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PASSWORD, &user, 0) == CURLUE_OK) {
		snprintf(err, errlen, "credentials in the URL are not allowed");
		goto out;
	}
	if (curl_url_get(u, CURLUPART_ZONEID, &zone, 0) == CURLUE_OK) {
		snprintf(err, errlen, "an IPv6 zone in the URL is not allowed");
		goto out;
	}
	if (curl_url_get(u, CURLUPART_HOST, &h, 0) != CURLUE_OK ||
	    h[0] == '\0') {
		snprintf(err, errlen, "the URL has no host");
		goto out;
	}
	n = strlen(h);
	if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
		memmove(h, h + 1, n - 2);
		h[n - 2] = '\0';
		n -= 2;
	}
	if (n >= hostsize || n > FETCH_HOST_MAX) {
		snprintf(err, errlen, "the host name is too long");
		goto out;
	}
	for (i = 0; i < n; i++)
		host[i] = (char)tolower((unsigned char)h[i]);
	host[n] = '\0';
	if (curl_url_get(u, CURLUPART_PORT, &p, CURLU_DEFAULT_PORT) !=
		CURLUE_OK ||
	    (v = strtoul(p, NULL, 10)) == 0 || v > 65535) {
		snprintf(err, errlen, "the URL has no valid port");
		goto out;
	}
	*port = (unsigned)v;
	/* The host as compared and pinned: curl looks names up in its
	 * CURLOPT_RESOLVE list as written. */
	snprintf(h, n + 1, "%s", host);
	if (strchr(host, ':') != NULL) {
		curl_free(h);
		h = NULL;
		if (asprintf(&bracketed, "[%s]", host) < 0) {
			snprintf(err, errlen, "out of memory");
			goto out;
		}
	}
	if (curl_url_set(u, CURLUPART_FRAGMENT, NULL, 0) != CURLUE_OK ||
	    curl_url_set(u, CURLUPART_HOST,
		bracketed != NULL ? bracketed : host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_URL, &full, 0) != CURLUE_OK) {
		snprintf(err, errlen, "not a valid URL");
		goto out;
	}
	if (strlen(full) > WRK_FETCH_URL_MAX) {
		snprintf(
		    err, errlen, "the URL is over %d bytes", WRK_FETCH_URL_MAX);
		goto out;
	}
	if ((*out = strdup(full)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	rc = 0;
out:
	curl_free(scheme);
	curl_free(h);
	curl_free(p);
	curl_free(user);
	curl_free(zone);
	curl_free(full);
	free(bracketed);
	free(escaped);
	curl_url_cleanup(u);
	return rc;
}

/* An IPv4-mapped IPv6 address as the IPv4 address it is. */
static void
unmap(struct sockaddr_storage *ss)
{
	static const unsigned char prefix[12] = {
	    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_in sin;

	if (ss->ss_family != AF_INET6 ||
	    memcmp(sin6->sin6_addr.s6_addr, prefix, sizeof(prefix)) != 0)
		return;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	memcpy(&sin.sin_addr, sin6->sin6_addr.s6_addr + 12, 4);
	memset(ss, 0, sizeof(*ss));
	memcpy(ss, &sin, sizeof(sin));
}

static int
same_address(struct sockaddr_storage *a, struct sockaddr_storage *b)
{
	unmap(a);
	unmap(b);
	if (a->ss_family != b->ss_family)
		return 0;
	if (a->ss_family == AF_INET)
		return memcmp(&((struct sockaddr_in *)a)->sin_addr,
			   &((struct sockaddr_in *)b)->sin_addr,
			   sizeof(struct in_addr)) == 0;
	return memcmp(&((struct sockaddr_in6 *)a)->sin6_addr,
		   &((struct sockaddr_in6 *)b)->sin6_addr,
		   sizeof(struct in6_addr)) == 0;
}

/* The first allow entry for host (lower case, IPv6 without brackets) and
 * port: the same name (or the same address, however spelled) and the
 * same port, or an entry without port and 80 or 443. NULL: none. */
static const Palyra__Ipc__FetchAllow *
fetch_allowed(
    const Palyra__Ipc__FetchPolicy *policy, const char *host, unsigned port)
{
	struct sockaddr_storage a, b;
	const Palyra__Ipc__FetchAllow *e;
	int numeric;
	size_t i;

	numeric = netaddr_parse(host, &a) == 0;
	for (i = 0; policy != NULL && i < policy->n_allow; i++) {
		e = policy->allow[i];
		if (e == NULL || e->host == NULL)
			continue;
		if (e->port != 0 ? e->port != port : port != 80 && port != 443)
			continue;
		if (numeric ? netaddr_parse(e->host, &b) == 0 &&
				  same_address(&a, &b)
			    : strcasecmp(e->host, host) == 0)
			return e;
	}
	return NULL;
}

static const char *
article(const char *word)
{
	return strchr("aeiou", word[0]) != NULL ? "an" : "a";
}

/*
 * May a transfer to host:port connect? Every address it could use must
 * be public, unless allow_private. A name counts only through its pinned
 * addresses. 0, or -1 with the reason in err.
 */
static int
fetch_addresses(const char *host, unsigned port, int allow_private, char *err,
    size_t errlen)
{
	struct sockaddr_storage addrs[FETCH_ADDRS_MAX];
	enum netaddr_class c;
	char text[INET6_ADDRSTRLEN];
	const void *src;
	size_t i, n;

	if (netaddr_parse(host, &addrs[0]) == 0) {
		c = netaddr_classify((struct sockaddr *)&addrs[0]);
		if (c != NETADDR_PUBLIC && !allow_private) {
			snprintf(err, errlen, "%s is %s %s address", host,
			    article(netaddr_class_name(c)),
			    netaddr_class_name(c));
			return -1;
		}
		return 0;
	}
	if ((n = wrk_http_pinned(host, port, addrs, FETCH_ADDRS_MAX)) == 0) {
		snprintf(err, errlen,
		    "%s:%u was not resolved at start (an allow-listed name is "
		    "resolved when the worker starts)",
		    host, port);
		return -1;
	}
	for (i = 0; i < n && !allow_private; i++) {
		c = netaddr_classify((struct sockaddr *)&addrs[i]);
		if (c == NETADDR_PUBLIC)
			continue;
		src = addrs[i].ss_family == AF_INET
			  ? (const void *)&((struct sockaddr_in *)&addrs[i])
				->sin_addr
			  : (const void *)&((struct sockaddr_in6 *)&addrs[i])
				->sin6_addr;
		if (inet_ntop(addrs[i].ss_family, src, text, sizeof(text)) ==
		    NULL)
			snprintf(text, sizeof(text), "an address");
		snprintf(err, errlen, "%s resolves to %s, %s %s address", host,
		    text, article(netaddr_class_name(c)),
		    netaddr_class_name(c));
		return -1;
	}
	return 0;
}

/*
 * The whole check of one hop: url (relative to base for a redirect) is
 * parsed, allow-listed and its addresses checked. *out is the URL to
 * request, *allow_private its entry's. 0, or -1 with the sentence for the
 * model in err.
 */
int
wrk_fetch_target(const Palyra__Ipc__FetchPolicy *policy, const char *url,
    const char *base, char **out, int *allow_private, char *err, size_t errlen)
{
	const Palyra__Ipc__FetchAllow *e;
	char host[FETCH_HOST_MAX + 1], why[FETCH_WHY_MAX], where[256];
	unsigned port = 0;

	*out = NULL;
	if (fetch_url(url, base, out, host, sizeof(host), &port, why,
		sizeof(why)) < 0)
		goto refused;
	if ((e = fetch_allowed(policy, host, port)) == NULL) {
		snprintf(why, sizeof(why),
		    "%s%s%s:%u is not on the egress allow-list",
		    strchr(host, ':') != NULL ? "[" : "", host,
		    strchr(host, ':') != NULL ? "]" : "", port);
		goto refused;
	}
	if (fetch_addresses(host, port, e->allow_private, why, sizeof(why)) < 0)
		goto refused;
	*allow_private = e->allow_private;
	return 0;
refused:
	free(*out);
	*out = NULL;
	if (base == NULL)
		snprintf(err, errlen, "http.fetch: refused: %s", why);
	else {
		wrk_fetch_shown(where, sizeof(where), url);
		snprintf(err, errlen, "http.fetch: redirect to %s refused: %s",
		    where, why);
	}
	return -1;
}

/* The media type of a Content-Type value, lower case, without
 * parameters: "" when there is none. */
void
wrk_fetch_media_type(const char *value, char *out, size_t size)
{
	size_t n = 0;

	out[0] = '\0';
	if (value == NULL || size == 0)
		return;
	while (*value == ' ' || *value == '\t')
		value++;
	/* A server's bytes: anything but token characters and the slash
	 * is shown as "?" (and matches no pattern). */
	while (*value != '\0' && *value != ';' && *value != ' ' &&
	       *value != '\t' && n + 1 < size) {
		out[n++] = *value == '/' || tchar((unsigned char)*value)
			       ? (char)tolower((unsigned char)*value)
			       : '?';
		value++;
	}
	out[n] = '\0';
}

/* Does type (a media type) match one of the policy's content types: an
 * exact "type/sub", a whole type ("text/" and a star) or anything (star,
 * slash, star)? None listed: any text type and application/json. */
int
wrk_fetch_type_allowed(const Palyra__Ipc__FetchPolicy *policy, const char *type)
{
	static const char *const defaults[] = {"text/*", "application/json"};
	const char *const *list = defaults;
	const char *slash, *pat;
	size_t i, n = 2, plen;

	if ((slash = strchr(type, '/')) == NULL || slash == type ||
	    slash[1] == '\0')
		return 0;
	if (policy != NULL && policy->n_content_types > 0) {
		list = (const char *const *)policy->content_types;
		n = policy->n_content_types;
	}
	for (i = 0; i < n; i++) {
		if ((pat = list[i]) == NULL)
			continue;
		plen = strlen(pat);
		if (strcmp(pat, "*/*") == 0)
			return 1;
		if (plen >= 2 && strcmp(pat + plen - 2, "/*") == 0) {
			if ((size_t)(slash - type) == plen - 2 &&
			    strncasecmp(type, pat, plen - 2) == 0)
				return 1;
		} else if (strcasecmp(type, pat) == 0)
			return 1;
	}
	return 0;
}

/* The length of the valid UTF-8 sequence at s (of n bytes), 0 if none
 * starts there (RFC 3629: no overlong forms, no surrogates). */
static size_t
utf8_seq(const unsigned char *s, size_t n)
{
	size_t len, i;
	unsigned c;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4;
	else
		return 0;
	if (n < len)
		return 0;
	for (i = 1; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	c = len == 2 ? (s[0] & 0x1fu) << 6 | (s[1] & 0x3fu)
	    : len == 3
		? (s[0] & 0x0fu) << 12 | (s[1] & 0x3fu) << 6 | (s[2] & 0x3fu)
		: (s[0] & 0x07u) << 18 | (s[1] & 0x3fu) << 12 |
		      (s[2] & 0x3fu) << 6 | (s[3] & 0x3fu);
	if ((len == 3 && (c < 0x800 || (c >= 0xd800 && c <= 0xdfff))) ||
	    (len == 4 && (c < 0x10000 || c > 0x10ffff)))
		return 0;
	return len;
}

/*
 * body as valid UTF-8 (malloc'd, *outlen bytes): each byte that starts no
 * valid sequence becomes U+FFFD. A cut body (cut set) loses an incomplete
 * sequence at its very end instead. NULL: out of memory.
 */
char *
wrk_fetch_utf8_clean(const char *body, size_t len, int cut, size_t *outlen)
{
	const unsigned char *s = (const unsigned char *)body;
	size_t i = 0, o = 0, k, left;
	char *out;

	if (len > (SIZE_MAX - 1) / 3 || (out = malloc(len * 3 + 1)) == NULL)
		return NULL;
	while (i < len) {
		if ((k = utf8_seq(s + i, len - i)) > 0) {
			memcpy(out + o, s + i, k);
			o += k;
			i += k;
			continue;
		}
		/* A sequence the cut split: its lead byte announces more
		 * than is left, and what is left continues it. */
		left = len - i;
		if (cut && s[i] >= 0xc2 && s[i] <= 0xf4 && left < 4) {
			for (k = 1; k < left && (s[i + k] & 0xc0) == 0x80; k++)
				;
			if (k == left && left < (s[i] >= 0xf0	   ? 4u
						    : s[i] >= 0xe0 ? 3u
								   : 2u))
				break;
		}
		memcpy(out + o, "\xef\xbf\xbd", 3);
		o += 3;
		i++;
	}
	out[o] = '\0';
	*outlen = o;
	return out;
}

/*
 * The result text: {"url","status","content_type","truncated","body"},
 * at most WRK_TOOL_RESULT_MAX bytes: the body (valid UTF-8) is cut, on a
 * character boundary, until it fits, and truncated is then set. NULL:
 * out of memory.
 */
char *
wrk_fetch_result(const char *url, long status, const char *content_type,
    int truncated, const char *body, size_t len)
{
	json_t *o;
	char *text, *clean;
	size_t clen, tlen, shorter;

	if ((clean = wrk_fetch_utf8_clean(body != NULL ? body : "",
		 body != NULL ? len : 0, truncated, &clen)) == NULL)
		return NULL;
	for (;;) {
		o = json_pack("{s:s,s:I,s:s,s:b,s:s%}", "url", url, "status",
		    (json_int_t)status, "content_type", content_type,
		    "truncated", truncated, "body", clean, clen);
		text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
		json_decref(o);
		if (text == NULL ||
		    (tlen = strlen(text)) <= WRK_TOOL_RESULT_MAX)
			break;
		free(text);
		/* In proportion to the excess (escapes make some bytes six),
		 * and by at least one byte: a few rounds at most. */
		shorter =
		    (size_t)((double)clen * WRK_TOOL_RESULT_MAX / (double)tlen);
		clen = shorter < clen ? shorter : clen > 0 ? clen - 1 : 0;
		while (clen > 0 && ((unsigned char)clean[clen] & 0xc0) == 0x80)
			clen--;
		truncated = 1;
	}
	free(clean);
	return text;
}
