/*
 * provider_stream.h: what fuzz_openai.c and fuzz_anthropic.c share: a
 * provider response stream fed through the SSE parser (common/sse.c) into
 * a wire protocol (worker/openai.c or worker/anthropic.c) as the worker
 * does, with callbacks that check what the protocol reports. The includer
 * includes the protocol's module and worker/proto.c first and defines
 * FUZZ_PROTO.
 *
 * Input: byte 0 chooses how the stream is cut into reads (1 to 64 bytes,
 * or all at once); the rest is the response body. The same bytes are also
 * read as a non-2xx error body.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_rec {
	size_t	 text;
	int	 calls;
	int	 done;
	int	 errors;
};

static int
f_text(void *arg, const char *t, size_t n)
{
	struct fuzz_rec	*r = arg;

	if (t == NULL)
		abort();
	r->text += n;
	return 0;
}

static int
f_call(void *arg, const struct wrk_tool_call *c)
{
	struct fuzz_rec	*r = arg;

	if (c->id == NULL || c->name == NULL || c->arguments == NULL ||
	    strlen(c->arguments) > WRK_TOOL_ARGS_MAX ||
	    ++r->calls > WRK_TOOL_CALLS_PER_REPLY)
		abort();
	return 0;
}

static int
f_usage(void *arg, uint64_t in, uint64_t out)
{
	return 0;
}

static int
f_done(void *arg, const char *stop)
{
	struct fuzz_rec	*r = arg;

	if (stop == NULL)
		abort();
	r->done++;
	return 0;
}

static int
f_error(void *arg, const char *type, const char *msg)
{
	struct fuzz_rec	*r = arg;

	/* Reported once per stream. */
	if (type == NULL || msg == NULL || ++r->errors > 1)
		abort();
	return -EPROTO;
}

static const struct wrk_proto_cbs fuzz_cbs = {
	f_text, f_call, f_usage, f_done, f_error,
};

struct fuzz_feeder {
	struct wrk_stream	 st;
};

static int
to_proto(const struct sse_event *ev, void *arg)
{
	struct fuzz_feeder	*f = arg;

	return FUZZ_PROTO.event(&f->st, ev);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sse_parser	 p;
	struct fuzz_feeder	 f;
	struct fuzz_rec		 r;
	size_t			 chunk, off, n;
	char			 msg[256];
	int			 rc = 0;

	if (size == 0)
		return 0;
	chunk = data[0] == 0 ? size : (size_t)(data[0] % 64) + 1;
	data++;
	size--;
	memset(&r, 0, sizeof(r));
	wrk_stream_init(&f.st, &fuzz_cbs, &r);
	if (sse_init(&p, WRK_SSE_EVENT_MAX, to_proto, &f) != 0)
		abort();
	for (off = 0; off < size && rc == 0; off += n) {
		n = size - off < chunk ? size - off : chunk;
		rc = sse_feed(&p, (const char *)data + off, n);
	}
	if (rc == 0) {
		sse_finish(&p);
		(void)FUZZ_PROTO.finish(&f.st);
	}
	sse_fini(&p);
	wrk_stream_fini(&f.st);

	msg[0] = '\0';
	FUZZ_PROTO.error_message((const char *)data, size, msg, sizeof(msg));
	if (memchr(msg, '\0', sizeof(msg)) == NULL)
		abort();
	return 0;
}
