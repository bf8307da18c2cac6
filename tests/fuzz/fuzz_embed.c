/*
 * fuzz_embed.c: libFuzzer target for the embeddings answer of an
 * OpenAI-compatible /embeddings endpoint (wrk_embed_parse in
 * worker/embed.c) and the offline lexical embedder of the same text
 * (worker/embed_offline.c).
 *
 * Byte 0 is how many texts were asked (1 to 8), byte 1 the dimension
 * expected (0: whatever the first vector says); the rest is the answer's
 * body. An accepted answer must hold want vectors of that dimension of
 * finite numbers; a refusal must say why.
 * Runs in the fuzzer only; touches nothing but memory.
 */
#include <math.h>
#include <time.h>

#include "../../worker/http.c"
#include "../../worker/retry.c"
#include "../../worker/proto.c"
#include "../../worker/embed.c"
#include "../../worker/embed_offline.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* worker.c's clock, which the HTTP client's timers read. */
int64_t
wrk_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	float		*vec = NULL, lex[WRK_EMBED_OFFLINE_DIM];
	uint64_t	 tokens;
	size_t		 want, dim, asked, i;
	char		 err[256];

	if (size < 2)
		return 0;
	want = (size_t)(data[0] % 8) + 1;
	asked = dim = data[1] % 2 == 0 ? 0 : (size_t)(data[1] % 16) + 1;
	data += 2;
	size -= 2;
	err[0] = '\0';
	if (wrk_embed_parse((const char *)data, size, want, &vec, &dim,
	    &tokens, err, sizeof(err)) == 0) {
		if (vec == NULL || dim == 0 || dim > WRK_EMBED_DIM_MAX ||
		    (asked != 0 && dim != asked))
			abort();
		for (i = 0; i < want * dim; i++)
			if (!isfinite(vec[i]))
				abort();
		free(vec);
	} else if (vec != NULL || err[0] == '\0')
		abort();

	wrk_embed_lexical((const char *)data, size, lex);
	if (!isfinite(wrk_embed_cosine(lex, lex, WRK_EMBED_OFFLINE_DIM)))
		abort();
	return 0;
}
