/*
 * test_memory_rank.c: journald's memory search score and ranking
 * (memory_rank.c): the documented formula and its worked example, an
 * exact keyword hit above an unrelated item, a near vector above a far
 * one, min_score and top_k, ties to the newer item, the little-endian
 * vector encoding, and the FTS5 expression of a query, which SQLite's
 * FTS5 must take literally whatever the user typed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../journald/memory_rank.c"

#define EPS 1e-9

static struct jnl_memory_hit
hit(int64_t seq, int64_t created, double text, double vector, int has_vector)
{
	struct jnl_memory_hit h;

	h.seq = seq;
	h.created_ms = created;
	h.text_score = text;
	h.vector_score = vector;
	h.score = jnl_memory_score(text, vector, has_vector);
	return h;
}

static double
cosine(const float *q, const float *v, size_t dim)
{
	uint8_t blob[4 * 8];

	assert_true(dim <= 8);
	jnl_memory_blob_encode(v, dim, blob);
	return jnl_memory_vector_score(q, blob, dim);
}

static void
test_text_score(void **state)
{
	(void)state;
	/* s = -bm25; s / (s + 1). */
	assert_float_equal(jnl_memory_text_score(-1.0), 0.5, EPS);
	assert_float_equal(jnl_memory_text_score(-3.0), 0.75, EPS);
	assert_float_equal(jnl_memory_text_score(0.0), 0.0, EPS);
	assert_float_equal(jnl_memory_text_score(2.0), 0.0, EPS);
	assert_float_equal(jnl_memory_text_score(-INFINITY), 0.0, EPS);
	/* Monotone in the FTS5 rank, below 1. */
	assert_true(jnl_memory_text_score(-7.0) > jnl_memory_text_score(-6.9));
	assert_true(jnl_memory_text_score(-1e9) < 1.0);
}

static void
test_vector_score(void **state)
{
	const float q[3] = {1, 0, 0};
	const float same[3] = {2, 0, 0}, near[3] = {0.9f, 0.1f, 0};
	const float far[3] = {0.1f, 0.9f, 0}, orth[3] = {0, 1, 0};
	const float opposite[3] = {-1, 0, 0}, zero[3] = {0, 0, 0};

	(void)state;
	assert_float_equal(cosine(q, same, 3), 1.0, 1e-6);
	assert_float_equal(cosine(q, orth, 3), 0.0, EPS);
	/* A negative cosine counts as no likeness at all. */
	assert_float_equal(cosine(q, opposite, 3), 0.0, EPS);
	assert_float_equal(cosine(q, zero, 3), 0.0, EPS);
	assert_float_equal(cosine(zero, same, 3), 0.0, EPS);
	assert_true(cosine(q, near, 3) > cosine(q, far, 3));
	assert_float_equal(
	    cosine(q, near, 3), 0.9 / sqrt(0.9 * 0.9 + 0.1 * 0.1), 1e-6);
}

static void
test_blob_little_endian(void **state)
{
	const float v[2] = {1.0f, -2.5f};
	uint8_t blob[8];

	(void)state;
	jnl_memory_blob_encode(v, 2, blob);
	/* 1.0f is 0x3f800000, -2.5f is 0xc0200000, low byte first. */
	assert_int_equal(blob[0], 0x00);
	assert_int_equal(blob[3], 0x3f);
	assert_int_equal(blob[2], 0x80);
	assert_int_equal(blob[7], 0xc0);
	assert_int_equal(blob[6], 0x20);
}

/* The README's worked example: bm25 -3, cosine 0.6. */
static void
test_documented_mix(void **state)
{
	double t = jnl_memory_text_score(-3.0);

	(void)state;
	assert_float_equal(t, 0.75, EPS);
	assert_float_equal(jnl_memory_score(t, 0.6, 1), 0.675, EPS);
	/* Without a query vector the score is the text score alone. */
	assert_float_equal(jnl_memory_score(t, 0.6, 0), 0.75, EPS);
	/* A vector-only hit weighs half. */
	assert_float_equal(jnl_memory_score(0, 0.8, 1), 0.4, EPS);
	/* Both halves at their top give 1. */
	assert_float_equal(jnl_memory_score(1, 1, 1), 1.0, EPS);
}

static void
test_keyword_above_unrelated(void **state)
{
	struct jnl_memory_hit slots[5], h;
	struct jnl_memory_top top;

	(void)state;
	jnl_memory_top_init(&top, slots, 5, 0);
	/* Unrelated: no lexical match, a vector pointing away. */
	h = hit(1, 2000, 0, 0, 1);
	assert_int_equal(jnl_memory_top_offer(&top, &h), 0);
	h = hit(2, 1000, jnl_memory_text_score(-2.0), 0.1, 1);
	assert_int_equal(jnl_memory_top_offer(&top, &h), 1);
	h = hit(3, 3000, 0, 0.05, 1);
	assert_int_equal(jnl_memory_top_offer(&top, &h), 1);
	assert_int_equal(top.n, 2);
	assert_int_equal(top.hits[0].seq, 2);
	assert_int_equal(top.hits[1].seq, 3);
}

static void
test_near_vector_above_far(void **state)
{
	const float q[3] = {1, 0.2f, 0};
	const float near[3] = {0.95f, 0.25f, 0}, far[3] = {0.2f, 1, 0.3f};
	struct jnl_memory_hit slots[5], h;
	struct jnl_memory_top top;

	(void)state;
	jnl_memory_top_init(&top, slots, 5, 0);
	/* The far one is newer: the score, not the age, decides. */
	h = hit(10, 9000, 0, cosine(q, far, 3), 1);
	jnl_memory_top_offer(&top, &h);
	h = hit(11, 1000, 0, cosine(q, near, 3), 1);
	jnl_memory_top_offer(&top, &h);
	assert_int_equal(top.n, 2);
	assert_int_equal(top.hits[0].seq, 11);
	assert_int_equal(top.hits[1].seq, 10);
	assert_true(top.hits[0].score > top.hits[1].score);
}

static void
test_min_score_and_top_k(void **state)
{
	static const double scores[] = {
	    0.2, 0.9, 0.35, 0.5, 0.3, 0.8, 0.1, 0.6};
	struct jnl_memory_hit slots[3], h;
	struct jnl_memory_top top;
	size_t i;

	(void)state;
	jnl_memory_top_init(&top, slots, 3, 0.3);
	for (i = 0; i < sizeof(scores) / sizeof(scores[0]); i++) {
		h = hit((int64_t)i, 1000, scores[i], 0, 0);
		jnl_memory_top_offer(&top, &h);
	}
	assert_int_equal(top.n, 3);
	assert_float_equal(top.hits[0].score, 0.9, EPS);
	assert_float_equal(top.hits[1].score, 0.8, EPS);
	assert_float_equal(top.hits[2].score, 0.6, EPS);

	/* Below min_score never enters, even with room. */
	jnl_memory_top_init(&top, slots, 3, 0.7);
	for (i = 0; i < sizeof(scores) / sizeof(scores[0]); i++) {
		h = hit((int64_t)i, 1000, scores[i], 0, 0);
		jnl_memory_top_offer(&top, &h);
	}
	assert_int_equal(top.n, 2);
	/* min_score is inclusive. */
	h = hit(99, 1000, 0.7, 0, 0);
	assert_int_equal(jnl_memory_top_offer(&top, &h), 1);
	assert_int_equal(top.n, 3);
	assert_int_equal(top.hits[2].seq, 99);
}

static void
test_ties_newer_first(void **state)
{
	struct jnl_memory_hit slots[2], h;
	struct jnl_memory_top top;

	(void)state;
	jnl_memory_top_init(&top, slots, 2, 0);
	h = hit(1, 1000, 0.5, 0, 0);
	jnl_memory_top_offer(&top, &h);
	h = hit(2, 3000, 0.5, 0, 0);
	jnl_memory_top_offer(&top, &h);
	h = hit(3, 2000, 0.5, 0, 0);
	jnl_memory_top_offer(&top, &h);
	assert_int_equal(top.n, 2);
	assert_int_equal(top.hits[0].seq, 2);
	assert_int_equal(top.hits[1].seq, 3);
}

static void
test_fts_expr(void **state)
{
	char query[1024], *expr;
	size_t i;

	(void)state;
	assert_int_equal(jnl_memory_fts_expr("a\" OR b*", &expr), 3);
	assert_string_equal(expr, "\"a\" OR \"OR\" OR \"b\"");
	free(expr);
	assert_int_equal(jnl_memory_fts_expr("NEAR(x y) -z ^w", &expr), 5);
	assert_string_equal(
	    expr, "\"NEAR\" OR \"x\" OR \"y\" OR \"z\" OR \"w\"");
	free(expr);
	assert_int_equal(jnl_memory_fts_expr("caf\xc3\xa9 2026", &expr), 2);
	assert_string_equal(expr, "\"caf\xc3\xa9\" OR \"2026\"");
	free(expr);
	assert_int_equal(jnl_memory_fts_expr("\"*()^:- ", &expr), 0);
	assert_null(expr);
	assert_int_equal(jnl_memory_fts_expr("", &expr), 0);
	/* At most JNL_MEMORY_WORDS_MAX words. */
	query[0] = '\0';
	for (i = 0; i < JNL_MEMORY_WORDS_MAX + 10; i++)
		strcat(query, "w ");
	assert_int_equal(
	    jnl_memory_fts_expr(query, &expr), JNL_MEMORY_WORDS_MAX);
	free(expr);
}

/* FTS5 takes the expression literally: no operator, prefix or column
 * filter of the user's text is interpreted. */
static void
test_fts_expr_in_fts5(void **state)
{
	static const char *const queries[] = {"a\" OR b*", "text:secret",
	    "NOT x", "\"unbalanced", "(", "x AND", "*"};
	sqlite3_stmt *st;
	sqlite3 *db;
	char *expr;
	size_t i;
	int n, rc;

	(void)state;
	assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
			     "CREATE VIRTUAL TABLE f USING fts5(text);"
			     "INSERT INTO f VALUES ('a'), ('bee'), ('b'),"
			     " ('or else'), ('text secret'), ('not');",
			     NULL, NULL, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db,
			     "SELECT group_concat(text, '|') FROM (SELECT text"
			     " FROM f WHERE f MATCH ? ORDER BY rowid)",
			     -1, &st, NULL),
	    SQLITE_OK);
	for (i = 0; i < sizeof(queries) / sizeof(queries[0]); i++) {
		n = jnl_memory_fts_expr(queries[i], &expr);
		if (n == 0)
			continue;
		sqlite3_bind_text(st, 1, expr, -1, SQLITE_TRANSIENT);
		rc = sqlite3_step(st);
		assert_int_equal(rc, SQLITE_ROW);
		if (i == 0) /* "a", "or" and "b"; not "bee" (no prefix). */
			assert_string_equal(
			    (const char *)sqlite3_column_text(st, 0),
			    "a|b|or else");
		if (i == 1) /* two words, not a column filter */
			assert_string_equal(
			    (const char *)sqlite3_column_text(st, 0),
			    "text secret");
		if (i == 2) /* the word "not", and nothing excluded */
			assert_string_equal(
			    (const char *)sqlite3_column_text(st, 0), "not");
		sqlite3_reset(st);
		free(expr);
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_text_score),
	    cmocka_unit_test(test_vector_score),
	    cmocka_unit_test(test_blob_little_endian),
	    cmocka_unit_test(test_documented_mix),
	    cmocka_unit_test(test_keyword_above_unrelated),
	    cmocka_unit_test(test_near_vector_above_far),
	    cmocka_unit_test(test_min_score_and_top_k),
	    cmocka_unit_test(test_ties_newer_first),
	    cmocka_unit_test(test_fts_expr),
	    cmocka_unit_test(test_fts_expr_in_fts5),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
