/*
 * fuzz_grpc.c: libFuzzer target for gRPC response framing: the
 * length-prefixed message reader and the grpc-status / grpc-message
 * trailer parsing of palyractl (ctl/grpc.c, the ctl_grpc_decoder that both
 * its libcurl and its nghttp2 transports use). The front's reader of
 * request messages is tied to its call state machine (front/call.c) and
 * is covered by the integration tests.
 *
 * Input: byte 0 chooses how the body is cut into reads (1 to 64 bytes, or
 * all at once); byte 1 is how many bytes at the end are trailers, one
 * "name: value" a line; the bytes between are the response body. Every
 * message delivered must be within the size bound; the end must either
 * be a complete response with a status or an error that says why.
 * Runs in the fuzzer only; touches nothing but memory.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../ctl/grpc.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
on_message(const uint8_t *msg, size_t len, void *arg)
{
	size_t	*count = arg;

	if (len > CTL_GRPC_MAX_MESSAGE || (len > 0 && msg == NULL))
		abort();
	(*count)++;
	/* A callback may refuse a message: the decoder must stop cleanly. */
	return len == 3 && memcmp(msg, "bad", 3) == 0 ? -1 : 0;
}

static void
feed_trailers(struct ctl_grpc_decoder *d, const char *p, size_t len)
{
	const char	*nl, *colon, *value;
	size_t		 line, vlen;

	while (len > 0) {
		nl = memchr(p, '\n', len);
		line = nl != NULL ? (size_t)(nl - p) : len;
		colon = memchr(p, ':', line);
		if (colon != NULL) {
			value = colon + 1;
			vlen = line - (size_t)(value - p);
			while (vlen > 0 && *value == ' ') {
				value++;
				vlen--;
			}
			if (ctl_grpc_decoder_header(d, p, (size_t)(colon - p),
			    value, vlen) != 0)
				return;
		}
		if (nl == NULL)
			break;
		p += line + 1;
		len -= line + 1;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ctl_grpc_result	 res;
	struct ctl_grpc_decoder	*d;
	size_t			 chunk, tlen, blen, off, n, count = 0;
	int			 rc = 0;

	if (size < 2)
		return 0;
	chunk = data[0] == 0 ? size : (size_t)(data[0] % 64) + 1;
	tlen = data[1];
	data += 2;
	size -= 2;
	if (tlen > size)
		tlen = size;
	blen = size - tlen;
	memset(&res, 0, sizeof(res));
	res.transport_error = 1;
	if ((d = ctl_grpc_decoder_new(on_message, &count, &res)) == NULL)
		abort();
	for (off = 0; off < blen && rc == 0; off += n) {
		n = blen - off < chunk ? blen - off : chunk;
		rc = ctl_grpc_decoder_body(d, data + off, n);
	}
	feed_trailers(d, (const char *)data + blen, tlen);
	if (ctl_grpc_decoder_finish(d) == 0) {
		if (res.transport_error != 0)
			abort();
	} else if (res.error[0] == '\0')
		abort();
	if (memchr(res.error, '\0', sizeof(res.error)) == NULL ||
	    memchr(res.grpc_message, '\0', sizeof(res.grpc_message)) == NULL)
		abort();
	ctl_grpc_decoder_free(d);
	return 0;
}
