/*
 * fetch_int.h: the two halves of http.fetch inside palyra-worker. fetch.c
 * runs a fetch on the loop (fetch.h); fetch_check.c holds what needs no
 * loop and is tested on its own: the arguments, the URL, allow-list and
 * address checks of each hop, content types and the result text.
 */
#ifndef PALYRA_WORKER_FETCH_INT_H
#define PALYRA_WORKER_FETCH_INT_H

#include <stddef.h>

#include <jansson.h>

#include "ipc.pb-c.h"

#define FETCH_ADDRS_MAX 8   /* pinned addresses checked per host */
#define FETCH_WHY_MAX 400   /* why a URL is refused */
#define FETCH_ERR_MAX 1024  /* the sentence for the model */
#define FETCH_HOST_MAX 255  /* a DNS name */
#define FETCH_TYPE_MAX 128  /* a media type kept for the result */
#define FETCH_SHOWN_MAX 200 /* bytes of a URL quoted in a message */

/* The arguments (fetch.h): the URL (in args), HEAD or GET, and the
 * headers as owned "Name: value" lines (at most WRK_FETCH_HEADERS_MAX).
 * 0, or -1 with the reason in err. */
int	wrk_fetch_args(const json_t *args, const char **url, int *head,
	    char **headers, size_t *nheaders, char *err, size_t errlen);

/* The whole check of one hop: url (relative to base, a redirect's
 * Location, unless base is NULL) parsed, allow-listed and every address
 * it may connect to checked. *out (malloc'd) is the URL to request and
 * *allow_private its entry's. 0, or -1 with the sentence for the model in
 * err ("http.fetch: refused: ..." or "http.fetch: redirect to URL
 * refused: ..."). */
int	wrk_fetch_target(const Palyra__Ipc__FetchPolicy *policy,
	    const char *url, const char *base, char **out, int *allow_private,
	    char *err, size_t errlen);

/* A URL as a message may quote it: at most FETCH_SHOWN_MAX bytes (then
 * "..."), control characters and non-ASCII bytes as "?". */
void	wrk_fetch_shown(char *buf, size_t size, const char *url);

/* The media type of a Content-Type value: lower case, no parameters; ""
 * when there is none. */
void	wrk_fetch_media_type(const char *value, char *out, size_t size);

/* 1 when the media type is one the policy lets through. */
int	wrk_fetch_type_allowed(const Palyra__Ipc__FetchPolicy *policy,
	    const char *type);

/* len bytes of text as valid UTF-8 (malloc'd, *outlen bytes): a byte
 * that starts no valid sequence becomes U+FFFD; with cut set, an
 * incomplete sequence at the very end is dropped instead. NULL: out of
 * memory. */
char	*wrk_fetch_utf8_clean(const char *text, size_t len, int cut,
	    size_t *outlen);

/* The result text {"url","status","content_type","truncated","body"},
 * at most WRK_TOOL_RESULT_MAX bytes, the body as valid UTF-8 (cut to fit,
 * truncated then set). NULL: out of memory. */
char	*wrk_fetch_result(const char *url, long status,
	    const char *content_type, int truncated, const char *body,
	    size_t len);

#endif
