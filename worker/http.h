/*
 * http.h: outbound HTTP for palyra-worker's providers: libcurl's multi
 * interface driven by the worker's libevent loop (curl's socket and timer
 * callbacks), so that many transfers run at once and nothing blocks.
 *
 * Everything a transfer needs from the file system or DNS is taken before
 * the sandbox is applied (wrk_http_prepare): the CA bundle is read into
 * memory and parsed once into the X509 store every TLS connection
 * verifies with (CURLOPT_SSL_CTX_FUNCTION), and each provider host name
 * is resolved once and pinned (CURLOPT_RESOLVE), so that the sandboxed
 * worker needs neither /etc nor a resolver. Only TCP connects to the
 * ports the sandbox allows (Landlock) can succeed.
 *
 * A transfer reports its response head once, its body as it arrives, and
 * its end exactly once, unless the owner cancelled it first: after
 * wrk_xfer_cancel() no callback happens. Callbacks may cancel the transfer
 * they are called for (and start new ones).
 */
#ifndef PALYRA_WORKER_HTTP_H
#define PALYRA_WORKER_HTTP_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct wrk_http;
struct wrk_xfer;

/* Defaults when a provider's timeout is 0 (palyrad.conf(5)). */
#define WRK_HTTP_CONNECT_MS	10000
#define WRK_HTTP_FIRST_BYTE_MS	60000
#define WRK_HTTP_IDLE_MS	60000
#define WRK_HTTP_TOTAL_MS	600000
#define WRK_HTTP_HEADERS_MAX	16	/* request headers per transfer */
#define WRK_HTTP_HOSTS_MAX	32	/* pinned host names */

enum wrk_xfer_status {
	WRK_XFER_OK = 0,	/* the response ended (any HTTP status) */
	WRK_XFER_CONNECT,	/* could not connect (refused, unreachable,
				   connect timeout, TLS handshake) */
	WRK_XFER_FIRST_BYTE,	/* no response byte within the first-byte timeout */
	WRK_XFER_IDLE,		/* no byte for the idle timeout mid-response */
	WRK_XFER_TOTAL,		/* the total timeout passed */
	WRK_XFER_NETWORK,	/* connection lost, bad response framing */
	WRK_XFER_ABORTED,	/* a callback returned -1 */
	WRK_XFER_INTERNAL,	/* out of memory, curl refused an option */
};

struct wrk_xfer_result {
	enum wrk_xfer_status status;
	long		 http_status;	/* 0 if no response head came */
	/* Retry-After of the response in milliseconds (delta-seconds or an
	 * HTTP date), -1 if absent or unparsable. */
	int64_t		 retry_after_ms;
	const char	*message;	/* short, for logs and run reasons;
					   never holds credentials */
};

struct wrk_xfer_cbs {
	/* The response head arrived (status line and headers). Return 0 to
	 * go on, -1 to abort the transfer (on_done follows with ABORTED). */
	int	(*on_head)(struct wrk_xfer *, long http_status, void *arg);
	/* Body bytes, as they arrive. Return 0 to go on, -1 to abort,
	 * 1 to pause the transfer (no more body until wrk_xfer_pause(x, 0);
	 * these bytes count as taken). */
	int	(*on_body)(struct wrk_xfer *, const char *buf, size_t len,
		    void *arg);
	/* The end, exactly once. The transfer is freed after it returns. */
	void	(*on_done)(struct wrk_xfer *, const struct wrk_xfer_result *,
		    void *arg);
};

struct wrk_xfer_req {
	const char	*url;
	const char	*method;	/* "POST" (with body), "GET" or
					   "HEAD" */
	const char	*headers[WRK_HTTP_HEADERS_MAX];	/* "Name: value" */
	size_t		 nheaders;
	const char	*body;		/* copied; may be NULL for GET */
	size_t		 body_len;
	uint64_t	 connect_ms;	/* 0: WRK_HTTP_CONNECT_MS, etc. */
	uint64_t	 first_byte_ms;
	uint64_t	 idle_ms;
	uint64_t	 total_ms;
	size_t		 max_response;	/* body bytes before ABORT; 0: none */
};

/*
 * Before the sandbox: global libcurl/OpenSSL set-up, the CA bundle read
 * into memory, and each "host:port" of hostports (comma-separated, as the
 * supervisor passes with -H: its tenant's providers' base URLs; NULL or ""
 * for none; IPv6 literals in brackets) resolved and remembered for
 * pinning. A host that does not resolve is logged and left out (its
 * transfers fail with WRK_XFER_CONNECT). Returns 0 or -errno (-EINVAL for
 * a malformed list). Called once.
 */
int	 wrk_http_prepare(const char *hostports);

/*
 * The addresses host:port (a name as given to wrk_http_prepare) was
 * pinned to, the only ones a transfer to it connects to: copies at most
 * max into addrs and returns how many; 0 when it is not pinned. For
 * http.fetch, which checks each before a transfer (worker/fetch.c).
 */
struct sockaddr_storage;
size_t	 wrk_http_pinned(const char *host, unsigned port,
	    struct sockaddr_storage *addrs, size_t max);

/* After the sandbox, on the worker's loop. NULL on failure. */
struct wrk_http	*wrk_http_new(struct event_base *);
/* Cancels every transfer (no callbacks) and frees. Not from a callback. */
void	 wrk_http_free(struct wrk_http *);
size_t	 wrk_http_active(const struct wrk_http *);

/* Starts a transfer. NULL (with errno set) if it could not start. */
struct wrk_xfer *wrk_xfer_start(struct wrk_http *, const struct wrk_xfer_req *,
	    const struct wrk_xfer_cbs *, void *arg);
/* Ends the transfer now, closing its connection; no callback follows. */
void	 wrk_xfer_cancel(struct wrk_xfer *);
/* Pauses (1) or resumes (0) receiving the body. */
void	 wrk_xfer_pause(struct wrk_xfer *, int paused);
/* A response header's value (case-insensitive name), or NULL. Valid
 * from on_head until the transfer ends. */
const char *wrk_xfer_header(struct wrk_xfer *, const char *name);

#endif
