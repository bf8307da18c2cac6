/*
 * fuzz_sse.c: libFuzzer target for the server-sent events parser
 * (common/sse.c) that reads every provider stream.
 *
 * The first input byte chooses how the rest is cut into sse_feed() calls
 * (1 to 64 bytes, or all at once), so events split across reads at every
 * place are covered. Each event delivered must keep the parser's promises:
 * NUL-terminated data of at most the bound, a bounded event name and id.
 * After an error, feeding again must answer -EINVAL.
 * Runs in the fuzzer only; touches nothing but memory.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_SSE_MAX	4096

static int
on_event(const struct sse_event *ev, void *arg)
{
	size_t	*count = arg;

	if (ev->event == NULL || ev->data == NULL || ev->id == NULL ||
	    ev->data_len > FUZZ_SSE_MAX || ev->data[ev->data_len] != '\0' ||
	    strlen(ev->event) > SSE_EVENT_NAME_MAX ||
	    strlen(ev->id) > SSE_ID_MAX)
		abort();
	(*count)++;
	/* Stop now and then, as a protocol that saw the end does. */
	return ev->data_len == 4 && memcmp(ev->data, "stop", 4) == 0 ? 1 : 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sse_parser	 p;
	size_t			 chunk, off, n, count = 0;
	int			 rc = 0;

	if (size == 0)
		return 0;
	chunk = data[0] == 0 ? size : (size_t)(data[0] % 64) + 1;
	data++;
	size--;
	if (sse_init(&p, FUZZ_SSE_MAX, on_event, &count) != 0)
		abort();
	for (off = 0; off < size && rc == 0; off += n) {
		n = size - off < chunk ? size - off : chunk;
		rc = sse_feed(&p, (const char *)data + off, n);
	}
	if (rc < 0) {
		if (rc != -EMSGSIZE && rc != -EILSEQ && rc != -ENOMEM)
			abort();
		if (sse_feed(&p, "\n\n", 2) != -EINVAL)
			abort();
	} else {
		rc = sse_finish(&p);
		if (rc != 0 && rc != 1)
			abort();
	}
	if (p.events != count)
		abort();
	sse_fini(&p);
	return 0;
}
