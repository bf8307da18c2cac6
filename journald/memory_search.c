/*
 * memory_search.c: hybrid search of one principal's memory items. Runs in
 * palyra-journald; reads the memory_items and memory_fts tables of one
 * tenant's journal.db (memory_db.c's statements); writes nothing.
 *
 * Candidates are the principal's unexpired items without a session, and
 * the query's session's when it names one, that hold every tag asked:
 *
 * 1. Lexical: the query's words OR-ed, each an FTS5 string
 *    (jnl_memory_fts_expr), at most JNL_MEMORY_LEXICAL_MAX best by bm25.
 * 2. Vector, when the query has one: the candidates embedded by the same
 *    model with the same dimension, newest first, at most
 *    JNL_MEMORY_SCAN_MAX rows, streamed one row at a time; a lexical
 *    candidate beyond that window still gets its cosine, read by seq.
 *
 * Each is scored (memory_rank.c) and offered to a top-k of fixed size; the
 * winners' rows are read last, and as many as fit one datagram answer.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "memory.h"

/* A MemoryHits answer holds hits up to this many bytes. */
#define HITS_BYTES_MAX (IPC_MAX_PAYLOAD - 4096)

struct lexical {
	int64_t seq;
	int64_t created_ms;
	double text_score;
	int seen; /* scored by the vector scan */
};

static int
lexical_by_seq(const void *a, const void *b)
{
	const struct lexical *x = a, *y = b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static struct lexical *
lexical_find(struct lexical *lex, size_t n, int64_t seq)
{
	struct lexical key;

	if (n == 0)
		return NULL;	/* lex is NULL without a lexical part */
	key.seq = seq;
	return bsearch(&key, lex, n, sizeof(*lex), lexical_by_seq);
}

/* Reads the lexical candidates. Returns how many (into lex), or -EIO. */
static int
lexical_read(struct jnl_tenant *t, const struct jnl_memory_query *q,
    const char *expr, const char *tags, struct lexical *lex)
{
	sqlite3_stmt *st;
	int rc, n = 0;

	if ((st = jnl_memory_stmt(t, JNL_MS_LEXICAL)) == NULL)
		return -EIO;
	sqlite3_bind_text(st, 1, expr, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, q->principal, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, q->session_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, q->now);
	if (tags != NULL)
		sqlite3_bind_text(st, 5, tags, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 6, JNL_MEMORY_LEXICAL_MAX);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW &&
	       n < JNL_MEMORY_LEXICAL_MAX) {
		lex[n].seq = sqlite3_column_int64(st, 0);
		lex[n].created_ms = sqlite3_column_int64(st, 1);
		lex[n].text_score =
		    jnl_memory_text_score(sqlite3_column_double(st, 2));
		lex[n].seen = 0;
		n++;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		log_error(
		    "%s: memory search: %s", t->name, sqlite3_errmsg(t->db));
		n = -EIO;
	}
	sqlite3_reset(st);
	return n;
}

/* Scores the vectors of the newest candidates. Returns 0 or -EIO. */
static int
vector_scan(struct jnl_tenant *t, const struct jnl_memory_query *q,
    const char *tags, struct lexical *lex, size_t nlex,
    struct jnl_memory_top *top)
{
	struct jnl_memory_hit h;
	struct lexical *l;
	const uint8_t *blob;
	sqlite3_stmt *st;
	int rc;

	if ((st = jnl_memory_stmt(t, JNL_MS_SCAN)) == NULL)
		return -EIO;
	sqlite3_bind_text(st, 1, q->principal, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, q->session_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, q->now);
	sqlite3_bind_text(st, 4, q->embedding_model, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, (int64_t)q->dim * 4);
	if (tags != NULL)
		sqlite3_bind_text(st, 6, tags, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 7, JNL_MEMORY_SCAN_MAX);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		blob = sqlite3_column_blob(st, 2);
		if (blob == NULL ||
		    (size_t)sqlite3_column_bytes(st, 2) != q->dim * 4)
			continue;
		h.seq = sqlite3_column_int64(st, 0);
		h.created_ms = sqlite3_column_int64(st, 1);
		h.vector_score =
		    jnl_memory_vector_score(q->embedding, blob, q->dim);
		h.text_score = 0;
		if ((l = lexical_find(lex, nlex, h.seq)) != NULL) {
			h.text_score = l->text_score;
			l->seen = 1;
		}
		h.score = jnl_memory_score(h.text_score, h.vector_score, 1);
		(void)jnl_memory_top_offer(top, &h);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		log_error("%s: memory vector scan: %s", t->name,
		    sqlite3_errmsg(t->db));
		return -EIO;
	}
	return 0;
}

/* The cosine of one item by seq (0: no comparable vector), or -EIO. */
static double
vector_one(struct jnl_tenant *t, const struct jnl_memory_query *q, int64_t seq)
{
	sqlite3_stmt *st;
	const uint8_t *blob;
	double score = 0;
	int rc;

	if ((st = jnl_memory_stmt(t, JNL_MS_VECTOR_ONE)) == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_text(st, 2, q->embedding_model, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (int64_t)q->dim * 4);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW &&
	    (blob = sqlite3_column_blob(st, 0)) != NULL &&
	    (size_t)sqlite3_column_bytes(st, 0) == q->dim * 4)
		score = jnl_memory_vector_score(q->embedding, blob, q->dim);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return -EIO;
	return score;
}

void
jnl_memory_hits_free(Palyra__V1__MemoryHit **hits, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (hits[i] != NULL)
			palyra__v1__memory_hit__free_unpacked(hits[i], NULL);
	free(hits);
}

/* Reads the winners' rows into hits. Returns 0 or -ENOMEM or -EIO. */
static int
hits_build(struct jnl_tenant *t, const struct jnl_memory_top *top,
    Palyra__V1__MemoryHit ***out, size_t *nout)
{
	Palyra__V1__MemoryHit **hits, *hit;
	size_t i, n = 0, bytes = 0, size;
	sqlite3_stmt *st;
	int rc = 0, step;

	*out = NULL;
	*nout = 0;
	if (top->n == 0)
		return 0;
	if ((hits = calloc(top->n, sizeof(*hits))) == NULL)
		return -ENOMEM;
	for (i = 0; i < top->n && rc == 0; i++) {
		if ((st = jnl_memory_stmt(t, JNL_MS_BY_SEQ)) == NULL) {
			rc = -EIO;
			break;
		}
		sqlite3_bind_int64(st, 1, top->hits[i].seq);
		if ((step = sqlite3_step(st)) != SQLITE_ROW) {
			sqlite3_reset(st);
			rc = step == SQLITE_DONE ? 0 : -EIO;
			continue;
		}
		if ((hit = malloc(sizeof(*hit))) == NULL) {
			sqlite3_reset(st);
			rc = -ENOMEM;
			break;
		}
		palyra__v1__memory_hit__init(hit);
		hit->score = top->hits[i].score;
		hit->text_score = top->hits[i].text_score;
		hit->vector_score = top->hits[i].vector_score;
		hit->item = jnl_memory_item_from_row(st, 0);
		sqlite3_reset(st);
		if (hit->item == NULL) {
			free(hit);
			rc = -ENOMEM;
			break;
		}
		size = palyra__v1__memory_hit__get_packed_size(hit) + 8;
		if (bytes + size > HITS_BYTES_MAX) {
			/* The rest would not fit one answer: the best go. */
			palyra__v1__memory_hit__free_unpacked(hit, NULL);
			break;
		}
		bytes += size;
		hits[n++] = hit;
	}
	if (rc < 0) {
		jnl_memory_hits_free(hits, n);
		return rc;
	}
	*out = hits;
	*nout = n;
	return 0;
}

int
jnl_memory_search(struct jnl_tenant *t, const struct jnl_memory_query *q,
    Palyra__V1__MemoryHit ***out, size_t *nout)
{
	char tags[JNL_MEMORY_TAGS_MAX * (JNL_MEMORY_TAG_MAX + 1) + 2];
	struct jnl_memory_hit slots[JNL_MEMORY_TOP_K_MAX], h;
	struct lexical *lex = NULL;
	struct jnl_memory_top top;
	const char *wanted = NULL;
	char *expr = NULL;
	int has_vector, nlex = 0, rc;
	double v;
	size_t i;

	*out = NULL;
	*nout = 0;
	has_vector =
	    q->embedding != NULL && q->dim > 0 && q->embedding_model[0] != '\0';
	jnl_memory_top_init(&top, slots,
	    q->top_k > JNL_MEMORY_TOP_K_MAX ? JNL_MEMORY_TOP_K_MAX : q->top_k,
	    q->min_score);
	if (q->ntags > 0) {
		jnl_memory_tags_join(q->tags, q->ntags, tags, sizeof(tags));
		wanted = tags;
	}
	if ((rc = jnl_memory_fts_expr(q->query, &expr)) < 0)
		return rc;
	if (rc > 0) {
		if ((lex = calloc(JNL_MEMORY_LEXICAL_MAX, sizeof(*lex))) ==
		    NULL) {
			free(expr);
			return -ENOMEM;
		}
		nlex = lexical_read(t, q, expr, wanted, lex);
		free(expr);
		if (nlex < 0) {
			free(lex);
			return nlex;
		}
		qsort(lex, (size_t)nlex, sizeof(*lex), lexical_by_seq);
	}
	if (has_vector &&
	    vector_scan(t, q, wanted, lex, (size_t)nlex, &top) < 0) {
		free(lex);
		return -EIO;
	}
	for (i = 0; i < (size_t)nlex; i++) {
		if (lex[i].seen)
			continue;
		h.seq = lex[i].seq;
		h.created_ms = lex[i].created_ms;
		h.text_score = lex[i].text_score;
		h.vector_score = 0;
		if (has_vector) {
			if ((v = vector_one(t, q, h.seq)) < 0) {
				free(lex);
				return -EIO;
			}
			h.vector_score = v;
		}
		h.score =
		    jnl_memory_score(h.text_score, h.vector_score, has_vector);
		(void)jnl_memory_top_offer(&top, &h);
	}
	free(lex);
	return hits_build(t, &top, out, nout);
}
