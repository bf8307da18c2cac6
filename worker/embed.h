/*
 * embed.h: text embeddings for palyra-worker (memory search: cosine
 * similarity next to full-text search).
 *
 * Two embedders behind one asynchronous call:
 *
 *   embed.c          a network provider's OpenAI-compatible POST
 *                    BASE_URL/embeddings, {"model": M, "input": [...]},
 *                    M being the provider's `embedding-model`
 *                    (palyrad.conf(5)); WRK_EMBED_BATCH texts a request,
 *                    requests made one after the other and the vectors
 *                    reassembled in the order of the texts; retries and
 *                    the circuit breaker of worker/retry.c.
 *   embed_offline.c  the built-in lexical embedder: feature hashing of
 *                    lower-cased words and character trigrams into
 *                    WRK_EMBED_OFFLINE_DIM signed buckets, L2-normalised.
 *                    It is lexical, not semantic: texts that share words
 *                    score a high cosine, synonyms and paraphrases do not.
 *                    Deterministic, no network, no model.
 */
#ifndef PALYRA_WORKER_EMBED_H
#define PALYRA_WORKER_EMBED_H

#include <stddef.h>
#include <stdint.h>

#include "limits.h"

struct wrk_ctx;
struct wrk_embed_req;

/*
 * The outcome of one wrk_embed() call. On success error is NULL and
 * vectors holds n rows of dim floats, row i being the embedding of text
 * i; on failure error is a short message safe to show (it names the
 * provider, never a credential) and vectors is NULL. Everything is valid
 * during the callback only.
 */
struct wrk_embed_result {
	const char *error;
	size_t n;
	size_t dim;
	const float *vectors;
	uint64_t prompt_tokens; /* usage.prompt_tokens summed; 0 */
	int lexical;		/* 1: the offline lexical embedder */
};

typedef void (*wrk_embed_cb)(const struct wrk_embed_result *, void *arg);

/*
 * Embeds texts (NUL-terminated, each at most WRK_EMBED_TEXT_MAX bytes,
 * 1 to WRK_EMBED_TEXTS_MAX of them; copied) with provider_name's
 * embedding model, or with the offline lexical embedder when
 * provider_name is NULL or names a provider of type offline. cb is
 * called exactly once, never from inside this call, unless the request
 * is cancelled first; the request is freed after cb returns. cb may start
 * other requests.
 *
 * Returns the request, or NULL with errno set and no callback: EINVAL
 * (no texts, too many, a NULL text), E2BIG (a text over the limit),
 * ENOMEM. Every other failure (unknown provider, one without
 * `embedding-model`, a refusal or malformed answer of the provider, the
 * circuit breaker open) comes through cb.
 */
struct wrk_embed_req *wrk_embed(struct wrk_ctx *, const char *provider_name,
    const char *const *texts, size_t ntexts, wrk_embed_cb cb, void *arg);
/* Ends a request that has not called back: its transfer is closed, no
 * callback follows. Never from or after its own callback. */
void wrk_embed_cancel(struct wrk_embed_req *);
/* Cancels every request (no callbacks) and frees the embedders' state
 * (the HTTP engine, the breakers). Called when the worker exits. */
void wrk_embed_free(struct wrk_ctx *);

/*
 * Parses an OpenAI-compatible embeddings response body holding want
 * vectors: every data[i].index in [0, want) exactly once, every
 * data[i].embedding an array of the same dimension (1 to
 * WRK_EMBED_DIM_MAX, and *dim's if *dim is not 0) of finite numbers.
 * Fills out (want * dim floats, malloc'd, row = index), *dim and
 * *prompt_tokens (0 if absent). Returns 0, or -1 with a message in err.
 */
int wrk_embed_parse(const char *body, size_t len, size_t want, float **out,
    size_t *dim, uint64_t *prompt_tokens, char *err, size_t errlen);

/* embed_offline.c: pure functions. */

/* The lexical embedding of text[0..len) into out (WRK_EMBED_OFFLINE_DIM
 * floats): unit length, or all zeros for a text without a word. */
void wrk_embed_lexical(const char *text, size_t len, float *out);
/* The cosine similarity of a and b (dim floats each), in [-1, 1]; 0 when
 * either is a zero vector (or not finite). */
float wrk_embed_cosine(const float *a, const float *b, size_t dim);

#endif
