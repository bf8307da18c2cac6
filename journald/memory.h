/*
 * memory.h: memory items inside palyra-journald (issue 8; DESIGN sections
 * 8 and 9), shared by memory.c (the workers' IPC_MEMORY_STORE and
 * IPC_MEMORY_QUERY, the expiry sweep), memory_db.c (the statement cache,
 * rows, checks), memory_search.c (hybrid search), memory_api.c
 * (MemoryService for the front) and memory_rank.c (the score, the ranking
 * and the FTS5 expression of a query; pure, unit tested).
 *
 * A row of memory_items (db.c migration 8) is one item of the tenant's
 * journal.db: seq (the FTS5 rowid), item_id (32 lower-hex, the clients'
 * handle), principal, session_id ('' or a session), tags stored " a b "
 * (one instr() finds a tag), source, text, embedding (little-endian
 * float32s or NULL) and its embedding_model, created_ms and expires_ms
 * (0: never). An item whose expires_ms is due is never read, and the
 * sweep deletes it.
 */
#ifndef PALYRA_JOURNALD_MEMORY_H
#define PALYRA_JOURNALD_MEMORY_H

#include <stddef.h>
#include <stdint.h>

#include "journald.h"
#include "palyra/v1/gateway.pb-c.h"

#define JNL_MEMORY_ID_LEN 32

/* The columns jnl_memory_item_from_row() reads, in order. */
#define JNL_MEMORY_COLUMNS                                                     \
	"item_id, principal, session_id, tags, source, text, created_ms,"      \
	" expires_ms, embedding_model"
#define JNL_MEMORY_NCOLUMNS 9

/* memory_rank.c (pure). */

/* A scored candidate of a search. */
struct jnl_memory_hit {
	int64_t seq;
	int64_t created_ms;
	double score;
	double text_score;
	double vector_score;
};

/* The best k candidates so far, best first. */
struct jnl_memory_top {
	struct jnl_memory_hit *hits; /* k slots, the caller's */
	size_t n;
	size_t k;
	double min_score;
};

/* s / (s + 1) of s = -bm25 (0 when negative or not finite). */
double jnl_memory_text_score(double bm25);
/* max(0, cosine) of the query q and a stored little-endian float32
 * vector of the same dim; 0 when either has no length. */
double jnl_memory_vector_score(const float *q, const uint8_t *blob, size_t dim);
/* 0.5 text + 0.5 vector with a query vector, else text. */
double jnl_memory_score(double text_score, double vector_score, int has_vector);
/* 1 when a ranks before b: higher score, then newer, then higher seq. */
int jnl_memory_better(
    const struct jnl_memory_hit *a, const struct jnl_memory_hit *b);
void jnl_memory_top_init(struct jnl_memory_top *, struct jnl_memory_hit *,
    size_t k, double min_score);
/* Keeps h if it scores above 0, at least min_score and among the best k.
 * Returns 1 when kept, 0 when not. */
int jnl_memory_top_offer(
    struct jnl_memory_top *, const struct jnl_memory_hit *h);
/*
 * The FTS5 expression of a query: its words (runs of ASCII letters and
 * digits and of bytes >= 0x80, at most JNL_MEMORY_WORDS_MAX) each quoted
 * as an FTS5 string and OR-ed, so that nothing a user typed is FTS5
 * syntax. Returns the number of words (0: *out NULL) with *out from
 * malloc, or -ENOMEM.
 */
int jnl_memory_fts_expr(const char *query, char **out);
/* Little-endian float32 encoding of n floats into out (4 n bytes). */
void jnl_memory_blob_encode(const float *v, size_t n, uint8_t *out);

/* memory_db.c */

/* A tenant's prepared statements, made on first use. */
enum jnl_memory_stmt {
	JNL_MS_INSERT = 0,
	JNL_MS_COUNT,
	JNL_MS_GET,
	JNL_MS_DELETE,
	JNL_MS_LEXICAL,
	JNL_MS_SCAN,
	JNL_MS_VECTOR_ONE,
	JNL_MS_BY_SEQ,
	JNL_MS_SWEEP,
	JNL_MS_DUE,
	JNL_MS_LIST_ONE,
	JNL_MS_LIST_ALL,
	JNL_MS_PURGE,
	JNL_MS_COUNT_ALL
};

struct jnl_memory {
	sqlite3_stmt *st[JNL_MS_COUNT_ALL];
};

/* The statement of t, prepared on first use (and the tags function
 * registered on the connection). NULL when it cannot be (logged). The
 * statement is reset and its bindings cleared. */
sqlite3_stmt *jnl_memory_stmt(struct jnl_tenant *, enum jnl_memory_stmt);
/* Why an item cannot be stored (static text), or NULL. */
const char *jnl_memory_item_invalid(
    const Palyra__V1__MemoryItem *, size_t dim, const float *embedding);
/* 1 when tag is 1..JNL_MEMORY_TAG_MAX bytes of [A-Za-z0-9._:-]. */
int jnl_memory_tag_valid(const char *tag);
/* 1 when id is 32 lower-hex characters. */
int jnl_memory_id_valid(const char *id);
/* " a b " of tags into out (size at least JNL_MEMORY_TAGS_MAX *
 * (JNL_MEMORY_TAG_MAX + 1) + 2). */
void jnl_memory_tags_join(char *const *tags, size_t n, char *out, size_t size);
/* Inserts a checked item (its text redacted) with its vector (dim 0:
 * none). Returns 0, 1 when its item_id exists, -ENOMEM or -EIO (the
 * statement failed; the caller fails the batch). */
int jnl_memory_insert(struct jnl_tenant *, const Palyra__V1__MemoryItem *,
    const float *embedding, size_t dim);
/* The item of the current row (JNL_MEMORY_COLUMNS from col first), from
 * malloc (free with palyra__v1__memory_item__free_unpacked), or NULL. */
Palyra__V1__MemoryItem *jnl_memory_item_from_row(sqlite3_stmt *, int col);
/* Replaces the registered secret values in text. Returns a string from
 * malloc, or NULL. */
char *jnl_memory_redacted(const struct jnl_ctx *, const char *text);
/* Deletes at most limit items of t whose expiry is due (in t's batch).
 * Returns how many, or -EIO. */
int jnl_memory_sweep_tenant(
    struct jnl_ctx *, struct jnl_tenant *, int64_t now, int limit);

/* memory_search.c */
struct jnl_memory_query {
	const char *principal;
	const char *session_id; /* "": principal-wide items only */
	const char *query;
	const float *embedding; /* NULL: lexical only */
	size_t dim;
	const char *embedding_model;
	char *const *tags;
	size_t ntags;
	size_t top_k;
	double min_score;
	int64_t now;
};

/*
 * Searches t. Returns 0 with *hits (best first, at most top_k, which fit
 * one datagram; free each with palyra__v1__memory_hit__free_unpacked,
 * then the array) and *nhits, -ENOMEM or -EIO.
 */
int jnl_memory_search(struct jnl_tenant *, const struct jnl_memory_query *,
    Palyra__V1__MemoryHit ***hits, size_t *nhits);
void jnl_memory_hits_free(Palyra__V1__MemoryHit **, size_t);

/* memory_api.c: MemoryService's Get, List, Delete and Purge. */
int jnl_memory_api(
    struct jnl_ctx *, uint32_t request_id, const Palyra__Ipc__ServiceCall *);

#endif
