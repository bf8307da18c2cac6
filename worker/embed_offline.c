/*
 * embed_offline.c: the built-in lexical embedder of palyra-worker and the
 * cosine similarity (worker/embed.h).
 *
 * Feature hashing ("the hashing trick"): a text is cut into words (runs of
 * ASCII letters and digits and of bytes >= 0x80, so UTF-8 letters stay
 * inside words; ASCII lower-cased), and each word adds one feature for
 * itself and one for each character trigram of " word " (the spaces mark
 * its ends, so "cat" and "cats" share "ca", "cat" trigrams). A feature is
 * hashed (64-bit FNV-1a, a tag byte telling words from trigrams) into one
 * of WRK_EMBED_OFFLINE_DIM buckets, with a sign from another bit of the
 * hash so that collisions cancel out on average instead of piling up. The
 * vector is then scaled to unit length.
 *
 * Common English function words ("the", "of", "and") weigh a tenth of
 * other words.
 *
 * It is lexical, not semantic: texts sharing words (or word stems, by
 * their trigrams) score a high cosine; "car" and "automobile" do not.
 * Pure functions: the same text always gives the same vector, on any
 * machine.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "embed.h"

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL
#define WORD_WEIGHT 1.0
#define TRIGRAM_WEIGHT 0.5
/* Longer words are hashed whole but give trigrams of their start only. */
#define WORD_MAX 256
/* Function words weigh this much of a word: texts that share only "the"
 * and "of" should not look alike, yet a text of such words alone still
 * gets a vector. */
#define STOP_FACTOR 0.1

/* Common English function words, sorted for bsearch(). */
static const char *const stop_words[] = {
    "a",
    "about",
    "after",
    "all",
    "also",
    "am",
    "an",
    "and",
    "any",
    "are",
    "as",
    "at",
    "be",
    "been",
    "but",
    "by",
    "can",
    "could",
    "did",
    "do",
    "does",
    "for",
    "from",
    "had",
    "has",
    "have",
    "he",
    "her",
    "his",
    "how",
    "i",
    "if",
    "in",
    "into",
    "is",
    "it",
    "its",
    "me",
    "my",
    "no",
    "not",
    "of",
    "on",
    "or",
    "our",
    "she",
    "so",
    "than",
    "that",
    "the",
    "their",
    "them",
    "then",
    "there",
    "these",
    "they",
    "this",
    "to",
    "up",
    "us",
    "was",
    "we",
    "were",
    "what",
    "when",
    "which",
    "who",
    "will",
    "with",
    "would",
    "you",
    "your",
};

static int
word_byte(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c >= 0x80;
}

static unsigned char
lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

static uint64_t
fnv(uint64_t h, const unsigned char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= p[i];
		h *= FNV_PRIME;
	}
	return h;
}

static void
add_feature(double *acc, unsigned char tag, const unsigned char *p, size_t n,
    double weight)
{
	uint64_t h = fnv(fnv(FNV_OFFSET, &tag, 1), p, n);
	/* Bucket from the low bits, sign from the top one (independent
	 * enough for FNV's well-mixed high bits). */
	size_t bucket = (size_t)(h % WRK_EMBED_OFFLINE_DIM);

	acc[bucket] += (h >> 63) ? -weight : weight;
}

static int
stop_cmp(const void *key, const void *elem)
{
	return strcmp(key, *(const char *const *)elem);
}

static int
stop_word(const unsigned char *w, size_t n)
{
	char word[8];

	if (n >= sizeof(word))
		return 0;
	memcpy(word, w, n);
	word[n] = '\0';
	return bsearch(word, stop_words,
		   sizeof(stop_words) / sizeof(stop_words[0]),
		   sizeof(stop_words[0]), stop_cmp) != NULL;
}

static void
add_word(double *acc, const unsigned char *w, size_t n)
{
	unsigned char padded[WORD_MAX + 2];
	double factor = stop_word(w, n) ? STOP_FACTOR : 1.0;
	size_t m, i;

	add_feature(acc, 'w', w, n, WORD_WEIGHT * factor);
	m = n < WORD_MAX ? n : WORD_MAX;
	padded[0] = ' ';
	memcpy(padded + 1, w, m);
	padded[m + 1] = ' ';
	for (i = 0; i + 3 <= m + 2; i++)
		add_feature(acc, 't', padded + i, 3, TRIGRAM_WEIGHT * factor);
}

void
wrk_embed_lexical(const char *text, size_t len, float *out)
{
	double acc[WRK_EMBED_OFFLINE_DIM], norm = 0;
	unsigned char
	    word[WRK_EMBED_TEXT_MAX < 4096 ? WRK_EMBED_TEXT_MAX : 4096];
	const unsigned char *p = (const unsigned char *)text;
	size_t i, n = 0;

	memset(acc, 0, sizeof(acc));
	for (i = 0; i <= len; i++) {
		if (i < len && word_byte(p[i])) {
			/* A word longer than the buffer is cut into pieces. */
			if (n == sizeof(word)) {
				add_word(acc, word, n);
				n = 0;
			}
			word[n++] = lower(p[i]);
			continue;
		}
		if (n > 0)
			add_word(acc, word, n);
		n = 0;
	}
	for (i = 0; i < WRK_EMBED_OFFLINE_DIM; i++)
		norm += acc[i] * acc[i];
	norm = sqrt(norm);
	for (i = 0; i < WRK_EMBED_OFFLINE_DIM; i++)
		out[i] = norm > 0 ? (float)(acc[i] / norm) : 0.0f;
}

float
wrk_embed_cosine(const float *a, const float *b, size_t dim)
{
	double dot = 0, na = 0, nb = 0, c;
	size_t i;

	for (i = 0; i < dim; i++) {
		dot += (double)a[i] * b[i];
		na += (double)a[i] * a[i];
		nb += (double)b[i] * b[i];
	}
	if (!(na > 0) || !(nb > 0) || !isfinite(dot) || !isfinite(na) ||
	    !isfinite(nb))
		return 0.0f;
	c = dot / (sqrt(na) * sqrt(nb));
	if (c > 1)
		c = 1;
	if (c < -1)
		c = -1;
	return (float)c;
}
