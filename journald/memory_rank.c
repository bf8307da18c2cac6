/*
 * memory_rank.c: the hybrid search score of memory items, the ranking of
 * candidates, the FTS5 expression of a query and the stored vector
 * encoding. Runs in palyra-journald (memory_search.c); pure: touches only
 * its arguments (tests/unit/test_memory_rank.c).
 *
 * The score (README "Memory", palyrad.conf(5) "Search score"):
 *
 *	s            = -bm25    (FTS5 rank; 0 when the item does not match)
 *	text_score   = s / (s + 1)
 *	vector_score = max(0, cosine(query vector, item vector))
 *	               (0 when the item has no vector of the query's model)
 *	score        = 0.5 text_score + 0.5 vector_score  with a query vector
 *	             = text_score                          without one
 *
 * s / (s + 1) maps FTS5's unbounded rank into 0..1 while keeping its
 * order, so that the two halves weigh the same. Ties go to the newer item.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "memory.h"

double
jnl_memory_text_score(double bm25)
{
	double s = -bm25;

	if (!isfinite(s) || s <= 0)
		return 0;
	return s / (s + 1);
}

static float
blob_float(const uint8_t *p)
{
	uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 |
		     (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
	float f;

	memcpy(&f, &u, sizeof(f));
	return f;
}

void
jnl_memory_blob_encode(const float *v, size_t n, uint8_t *out)
{
	uint32_t u;
	size_t i;

	for (i = 0; i < n; i++) {
		memcpy(&u, &v[i], sizeof(u));
		out[4 * i] = (uint8_t)u;
		out[4 * i + 1] = (uint8_t)(u >> 8);
		out[4 * i + 2] = (uint8_t)(u >> 16);
		out[4 * i + 3] = (uint8_t)(u >> 24);
	}
}

double
jnl_memory_vector_score(const float *q, const uint8_t *blob, size_t dim)
{
	double dot = 0, qq = 0, bb = 0, x, y, c;
	size_t i;

	for (i = 0; i < dim; i++) {
		x = q[i];
		y = blob_float(blob + 4 * i);
		dot += x * y;
		qq += x * x;
		bb += y * y;
	}
	if (!(qq > 0) || !(bb > 0) || !isfinite(dot) || !isfinite(qq) ||
	    !isfinite(bb))
		return 0;
	c = dot / (sqrt(qq) * sqrt(bb));
	if (!(c > 0))
		return 0;
	return c > 1 ? 1 : c;
}

double
jnl_memory_score(double text_score, double vector_score, int has_vector)
{
	if (!has_vector)
		return text_score;
	return 0.5 * text_score + 0.5 * vector_score;
}

int
jnl_memory_better(
    const struct jnl_memory_hit *a, const struct jnl_memory_hit *b)
{
	if (a->score != b->score)
		return a->score > b->score;
	if (a->created_ms != b->created_ms)
		return a->created_ms > b->created_ms;
	return a->seq > b->seq;
}

void
jnl_memory_top_init(struct jnl_memory_top *top, struct jnl_memory_hit *hits,
    size_t k, double min_score)
{
	top->hits = hits;
	top->n = 0;
	top->k = k;
	top->min_score = min_score;
}

int
jnl_memory_top_offer(struct jnl_memory_top *top, const struct jnl_memory_hit *h)
{
	size_t i;

	if (!(h->score > 0) || h->score < top->min_score || top->k == 0)
		return 0;
	if (top->n == top->k && !jnl_memory_better(h, &top->hits[top->n - 1]))
		return 0;
	if (top->n < top->k)
		top->n++;
	/* Insertion from the end: the last slot is free or the worst. */
	for (i = top->n - 1; i > 0 && jnl_memory_better(h, &top->hits[i - 1]);
	     i--)
		top->hits[i] = top->hits[i - 1];
	top->hits[i] = *h;
	return 1;
}

static int
word_byte(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c >= 0x80;
}

int
jnl_memory_fts_expr(const char *query, char **out)
{
	const unsigned char *p = (const unsigned char *)query;
	size_t len = strlen(query), n = 0, words = 0, start;
	char *s;

	*out = NULL;
	/* Each word grows by its two quotes and " OR ": at most 6 bytes a
	 * word, and a word is at least one byte. */
	if ((s = malloc(len + 6 * JNL_MEMORY_WORDS_MAX + 1)) == NULL)
		return -ENOMEM;
	while (*p != '\0' && words < JNL_MEMORY_WORDS_MAX) {
		if (!word_byte(*p)) {
			p++;
			continue;
		}
		start = (size_t)(p - (const unsigned char *)query);
		while (word_byte(*p))
			p++;
		if (words > 0) {
			memcpy(s + n, " OR ", 4);
			n += 4;
		}
		s[n++] = '"';
		memcpy(s + n, query + start,
		    (size_t)(p - (const unsigned char *)query) - start);
		n += (size_t)(p - (const unsigned char *)query) - start;
		s[n++] = '"';
		words++;
	}
	if (words == 0) {
		free(s);
		return 0;
	}
	s[n] = '\0';
	*out = s;
	return (int)words;
}
