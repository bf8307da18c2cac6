/*
 * grpc.c: the gRPC client of palyractl.
 *
 * One unary or server-streaming call per libcurl easy handle over HTTP/2
 * with prior knowledge (h2c): a POST whose body is the request message with
 * the 5-byte gRPC prefix; the request stream ends with it (a half-close).
 * Response messages are decoded incrementally in the write callback as they
 * stream, so a caller sees each one the moment it arrives. The status comes
 * as grpc-status/grpc-message trailers, or in the headers of a
 * trailers-only response; libcurl hands both to the header callback.
 *
 * Every byte from the server is checked: the compressed flag must be 0 (we
 * never offer compression), a message is at most CTL_GRPC_MAX_MESSAGE, and a
 * body that ends inside a message or without grpc-status is an error.
 *
 * The same decoding serves the bidirectional calls of grpc_bidi.c through
 * the ctl_grpc_decoder functions at the end of this file.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "ctl.h"
#include "grpc_status.h"

#define GRPC_PREFIX_LEN	5

struct grpc_call {
	ctl_grpc_msg_cb		 cb;
	void			*arg;
	struct ctl_grpc_result	*res;
	int			 have_status;
	int			 failed;	/* decoding or callback */
	uint8_t			 prefix[GRPC_PREFIX_LEN];
	size_t			 prefix_have;
	uint8_t			*msg;
	size_t			 msg_len;
	size_t			 msg_have;
};


static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* grpc-message is percent-encoded; control bytes are dropped on output. */
static void
percent_decode(char *out, size_t size, const char *in, size_t len)
{
	size_t	 i, o = 0;
	int	 hi, lo, c;

	for (i = 0; i < len && o + 1 < size; i++) {
		c = (unsigned char)in[i];
		if (c == '%' && i + 2 < len &&
		    (hi = hexval(in[i + 1])) >= 0 &&
		    (lo = hexval(in[i + 2])) >= 0) {
			c = hi * 16 + lo;
			i += 2;
		}
		if (c < 0x20 || c == 0x7f)
			c = ' ';
		out[o++] = (char)c;
	}
	out[o] = '\0';
}

/* Matches "name:" at the start of a header line, case-insensitively. */
static const char *
header_value(const char *line, size_t len, const char *name, size_t *vlen)
{
	size_t	 n = strlen(name);

	if (len <= n || strncasecmp(line, name, n) != 0 || line[n] != ':')
		return NULL;
	line += n + 1;
	len -= n + 1;
	while (len > 0 && (*line == ' ' || *line == '\t')) {
		line++;
		len--;
	}
	while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == '\n' ||
	    line[len - 1] == ' '))
		len--;
	*vlen = len;
	return line;
}

static size_t
header_cb(char *buf, size_t size, size_t nitems, void *arg)
{
	struct grpc_call *call = arg;
	size_t		 len = size * nitems, vlen, i;
	const char	*v;
	int		 status = 0;

	if ((v = header_value(buf, len, "grpc-status", &vlen)) != NULL) {
		if (vlen == 0 || vlen > 3)
			status = -1;
		for (i = 0; i < vlen && status >= 0; i++) {
			if (!isdigit((unsigned char)v[i]))
				status = -1;
			else
				status = status * 10 + (v[i] - '0');
		}
		if (status < 0) {
			snprintf(call->res->error, sizeof(call->res->error),
			    "malformed grpc-status from server");
			call->failed = 1;
			return 0;
		}
		call->res->grpc_status = status;
		call->have_status = 1;
	} else if ((v = header_value(buf, len, "grpc-message", &vlen)) != NULL)
		percent_decode(call->res->grpc_message,
		    sizeof(call->res->grpc_message), v, vlen);
	return len;
}

static int
decode_fail(struct grpc_call *call, const char *why)
{
	snprintf(call->res->error, sizeof(call->res->error), "%s", why);
	call->failed = 1;
	return 0;
}

/* Feeds response body bytes; returns 1 to go on, 0 to abort. */
static int
feed(struct grpc_call *call, const uint8_t *p, size_t len)
{
	size_t	 n;

	while (len > 0) {
		if (call->prefix_have < GRPC_PREFIX_LEN) {
			n = GRPC_PREFIX_LEN - call->prefix_have;
			if (n > len)
				n = len;
			memcpy(call->prefix + call->prefix_have, p, n);
			call->prefix_have += n;
			p += n;
			len -= n;
			if (call->prefix_have < GRPC_PREFIX_LEN)
				return 1;
			if (call->prefix[0] != 0)
				return decode_fail(call,
				    "server sent a compressed message");
			call->msg_len = (size_t)call->prefix[1] << 24 |
			    (size_t)call->prefix[2] << 16 |
			    (size_t)call->prefix[3] << 8 | call->prefix[4];
			if (call->msg_len > CTL_GRPC_MAX_MESSAGE)
				return decode_fail(call,
				    "server message over the size limit");
			call->msg_have = 0;
			free(call->msg);
			call->msg = malloc(call->msg_len > 0 ?
			    call->msg_len : 1);
			if (call->msg == NULL)
				return decode_fail(call, "out of memory");
		}
		n = call->msg_len - call->msg_have;
		if (n > len)
			n = len;
		memcpy(call->msg + call->msg_have, p, n);
		call->msg_have += n;
		p += n;
		len -= n;
		if (call->msg_have < call->msg_len)
			return 1;
		call->prefix_have = 0;
		if (call->cb(call->msg, call->msg_len, call->arg) != 0) {
			call->failed = 1;
			return 0;
		}
	}
	return 1;
}

static size_t
write_cb(char *buf, size_t size, size_t nmemb, void *arg)
{
	struct grpc_call *call = arg;
	size_t		 len = size * nmemb;

	if (call->failed || !feed(call, (const uint8_t *)buf, len))
		return 0;
	return len;
}

void
ctl_transport_failed(const struct ctl_ctx *ctx, int curl_code)
{
	/*
	 * Only a connection that could not be made or that broke: a stream
	 * the server reset (CURLE_HTTP2_STREAM) or a GOAWAY (CURLE_HTTP2) is
	 * palyrad's answer, even if libcurl lost the status that came with it.
	 */
	switch ((CURLcode)curl_code) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_GOT_NOTHING:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_PARTIAL_FILE:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
		if (ctx->transport_failed != NULL)
			*ctx->transport_failed = 1;
		break;
	default:
		break;
	}
}

/* Describes a transport failure the way an operator wants to read it. */
static void
transport_error(const struct ctl_ctx *ctx, CURL *curl, CURLcode rc,
    const char *errbuf, struct ctl_grpc_result *res)
{
	long	 oserr = 0;

	ctl_transport_failed(ctx, (int)rc);
	curl_easy_getinfo(curl, CURLINFO_OS_ERRNO, &oserr);
	if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST)
		snprintf(res->error, sizeof(res->error),
		    "cannot connect to %s: %s", ctx->grpc_addr,
		    oserr != 0 ? strerror((int)oserr) :
		    errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc));
	else
		snprintf(res->error, sizeof(res->error), "%s: %s",
		    ctx->grpc_addr, errbuf[0] != '\0' ? errbuf :
		    curl_easy_strerror(rc));
}

/*
 * Calls path ("/palyra.v1.GatewayService/GetHealth") with one request
 * message and hands each response message to cb. Returns 0 when the call
 * got a grpc-status (see res->grpc_status), -1 otherwise (res->error).
 */
int
ctl_grpc_call(const struct ctl_ctx *ctx, const char *path, const char *bearer,
    const uint8_t *req, size_t req_len, ctl_grpc_msg_cb cb, void *arg,
    struct ctl_grpc_result *res)
{
	struct grpc_call	 call;
	struct curl_slist	*headers = NULL, *h;
	char			 url[512], auth[FE_TOKEN_MAX_LEN + 32];
	char			 errbuf[CURL_ERROR_SIZE];
	uint8_t			*body;
	long			 http_status = 0;
	CURL			*curl;
	CURLcode		 rc;

	memset(res, 0, sizeof(*res));
	res->transport_error = 1;
	memset(&call, 0, sizeof(call));
	call.cb = cb;
	call.arg = arg;
	call.res = res;
	errbuf[0] = '\0';

	if ((size_t)snprintf(url, sizeof(url), "http://%s%s", ctx->grpc_addr,
	    path) >= sizeof(url) || req_len > CTL_GRPC_MAX_MESSAGE) {
		snprintf(res->error, sizeof(res->error), "request too large");
		return -1;
	}
	if ((body = malloc(GRPC_PREFIX_LEN + req_len)) == NULL) {
		snprintf(res->error, sizeof(res->error), "out of memory");
		return -1;
	}
	body[0] = 0;
	body[1] = (uint8_t)(req_len >> 24);
	body[2] = (uint8_t)(req_len >> 16);
	body[3] = (uint8_t)(req_len >> 8);
	body[4] = (uint8_t)req_len;
	if (req_len > 0)
		memcpy(body + GRPC_PREFIX_LEN, req, req_len);

	headers = curl_slist_append(headers, "content-type: application/grpc");
	if (headers != NULL && (h = curl_slist_append(headers,
	    "te: trailers")) != NULL)
		headers = h;
	if (headers != NULL && bearer != NULL) {
		snprintf(auth, sizeof(auth), "authorization: Bearer %s",
		    bearer);
		if ((h = curl_slist_append(headers, auth)) != NULL)
			headers = h;
		explicit_bzero(auth, sizeof(auth));
	}
	if ((curl = curl_easy_init()) == NULL || headers == NULL) {
		snprintf(res->error, sizeof(res->error), "libcurl failed");
		goto out;
	}
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_HTTP_VERSION,
	    (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
	curl_easy_setopt(curl, CURLOPT_POST, 1L);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE,
	    (long)(GRPC_PREFIX_LEN + req_len));
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "palyractl");
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &call);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, &call);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http");

	rc = curl_easy_perform(curl);
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &http_status);
	if (call.failed) {
		if (res->error[0] == '\0')
			snprintf(res->error, sizeof(res->error),
			    "call aborted");
		goto out;
	}
	/*
	 * A server that answers before it read the whole request (a trailers-
	 * only error) may then reset the stream with NO_ERROR, which libcurl
	 * reports as a failure: the grpc-status came in the last HEADERS
	 * frame, so the answer is complete and is what the user must see.
	 */
	if (rc != CURLE_OK && !(call.have_status && http_status == 200)) {
		transport_error(ctx, curl, rc, errbuf, res);
		goto out;
	}
	if (http_status != 200) {
		snprintf(res->error, sizeof(res->error),
		    "server answered HTTP status %ld", http_status);
		goto out;
	}
	if (call.prefix_have != 0) {
		snprintf(res->error, sizeof(res->error),
		    "response ended inside a message");
		goto out;
	}
	if (!call.have_status) {
		snprintf(res->error, sizeof(res->error),
		    "response without grpc-status");
		goto out;
	}
	res->transport_error = 0;
out:
	if (curl != NULL)
		curl_easy_cleanup(curl);
	curl_slist_free_all(headers);
	free(call.msg);
	free(body);
	return res->transport_error ? -1 : 0;
}

static int
unary_msg(const uint8_t *msg, size_t len, void *arg)
{
	struct ctl_unary_reply *r = arg;

	if (r->count++ > 0)
		return -1;
	if ((r->data = malloc(len > 0 ? len : 1)) == NULL)
		return -1;
	memcpy(r->data, msg, len);
	r->len = len;
	return 0;
}

int
ctl_unary(const struct ctl_ctx *ctx, const char *what, const char *method,
    const char *bearer, const ProtobufCMessage *req,
    struct ctl_unary_reply *reply)
{
	struct ctl_grpc_result	 res;
	uint8_t			*buf;
	size_t			 len = protobuf_c_message_get_packed_size(req);
	int			 called;

	memset(reply, 0, sizeof(*reply));
	if ((buf = malloc(len > 0 ? len : 1)) == NULL) {
		fprintf(stderr, "palyractl: %s failed: out of memory\n", what);
		return -1;
	}
	protobuf_c_message_pack(req, buf);
	called = ctl_grpc_call(ctx, method, bearer, buf, len, unary_msg,
	    reply, &res);
	free(buf);
	if (called < 0 || res.transport_error)
		fprintf(stderr, "palyractl: %s failed: %s\n", what, res.error);
	else if (res.grpc_status != 0)
		fprintf(stderr, "palyractl: %s failed: %s: %s\n", what,
		    grpc_status_name(res.grpc_status), res.grpc_message);
	else if (reply->count != 1)
		fprintf(stderr, "palyractl: %s failed: no reply message\n",
		    what);
	else
		return 0;
	free(reply->data);
	reply->data = NULL;
	return -1;
}

/* The decoder of this file for another transport (grpc_bidi.c). */
struct ctl_grpc_decoder *
ctl_grpc_decoder_new(ctl_grpc_msg_cb cb, void *arg,
    struct ctl_grpc_result *res)
{
	struct grpc_call	*call;

	if ((call = calloc(1, sizeof(*call))) == NULL)
		return NULL;
	call->cb = cb;
	call->arg = arg;
	call->res = res;
	return (struct ctl_grpc_decoder *)call;
}

int
ctl_grpc_decoder_body(struct ctl_grpc_decoder *d, const uint8_t *p,
    size_t len)
{
	struct grpc_call *call = (struct grpc_call *)d;

	if (call->failed || !feed(call, p, len))
		return -1;
	return 0;
}

int
ctl_grpc_decoder_header(struct ctl_grpc_decoder *d, const char *name,
    size_t namelen, const char *value, size_t valuelen)
{
	struct grpc_call *call = (struct grpc_call *)d;
	char		 line[1400];
	int		 n;

	/* Only the status headers matter; they are short. */
	if (namelen + valuelen + 3 > sizeof(line))
		return 0;
	n = snprintf(line, sizeof(line), "%.*s: %.*s", (int)namelen, name,
	    (int)valuelen, value);
	if (header_cb(line, 1, (size_t)n, call) != (size_t)n)
		return -1;
	return 0;
}

int
ctl_grpc_decoder_finish(struct ctl_grpc_decoder *d)
{
	struct grpc_call *call = (struct grpc_call *)d;

	if (call->failed) {
		if (call->res->error[0] == '\0')
			snprintf(call->res->error, sizeof(call->res->error),
			    "call aborted");
		return -1;
	}
	if (call->prefix_have != 0) {
		snprintf(call->res->error, sizeof(call->res->error),
		    "response ended inside a message");
		return -1;
	}
	if (!call->have_status) {
		snprintf(call->res->error, sizeof(call->res->error),
		    "response without grpc-status");
		return -1;
	}
	call->res->transport_error = 0;
	return 0;
}

void
ctl_grpc_decoder_free(struct ctl_grpc_decoder *d)
{
	struct grpc_call *call = (struct grpc_call *)d;

	if (call != NULL) {
		free(call->msg);
		free(call);
	}
}
