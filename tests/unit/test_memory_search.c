/*
 * test_memory_search.c: journald's memory rows and hybrid search
 * (memory_db.c, memory_search.c) on a real journal.db made by db.c's
 * migrations in a temporary directory: an exact keyword hit ranks above an
 * unrelated item, a near vector above a far one, the documented mix of
 * both with FTS5's own bm25, vectors of another model or dimension count
 * for nothing, the scope (principal, session, tags, expiry), min_score and
 * top_k, a duplicate item_id, the checks of an item, and the bounded
 * expiry sweep. The batch and the name syntax of journald are stubbed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../journald/db.c"
#include "../../journald/memory_db.c"
#include "../../journald/memory_rank.c"
#include "../../journald/memory_search.c"

/* Stubs of journald.c, tenant.c and batch.c. */

int
jnl_name_valid(const char *name)
{
	size_t i;

	for (i = 0; name[i] != '\0'; i++)
		if (i >= NAME_MAX_LEN || name[i] == ' ' || name[i] == '/')
			return 0;
	return i > 0 && name[0] != '.' && name[0] != '-';
}

int
jnl_step_done(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? 0 : rc;
}

int
jnl_batch_begin(struct jnl_ctx *ctx, struct jnl_tenant *t)
{
	(void)ctx;
	(void)t;
	return 0;
}

void
jnl_batch_fail(struct jnl_ctx *ctx, struct jnl_tenant *t)
{
	(void)ctx;
	(void)t;
	fail_msg("the batch failed");
}

/* Fixture: a tenant with a fresh journal.db. */

struct fixture {
	char dir[64];
	char path[96];
	struct jnl_tenant t;
	int64_t next_id;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_memory_XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/journal.db", f->dir);
	assert_int_equal(jnl_db_open(f->path, JNL_DB_JOURNAL, 0, &f->t.db), 0);
	snprintf(f->t.name, sizeof(f->t.name), "test");
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char wal[128];

	jnl_memory_close(&f->t);
	jnl_db_close(f->t.db);
	unlink(f->path);
	snprintf(wal, sizeof(wal), "%s-wal", f->path);
	unlink(wal);
	snprintf(wal, sizeof(wal), "%s-shm", f->path);
	unlink(wal);
	rmdir(f->dir);
	free(f);
	return 0;
}

struct spec {
	const char *principal;
	const char *session;
	const char *text;
	const char *tags[3];
	const float *vec;
	size_t dim;
	const char *model;
	int64_t created;
	int64_t expires;
};

/* Stores an item; returns its seq (the order of storing). */
static int64_t
store(struct fixture *f, const struct spec *s)
{
	Palyra__V1__MemoryItem item = PALYRA__V1__MEMORY_ITEM__INIT;
	char id[JNL_MEMORY_ID_LEN + 1];
	size_t n = 0;

	snprintf(id, sizeof(id), "%032llx", (long long)++f->next_id);
	while (n < 3 && s->tags[n] != NULL)
		n++;
	item.item_id = id;
	item.principal = (char *)s->principal;
	item.session_id = (char *)(s->session != NULL ? s->session : "");
	item.text = (char *)s->text;
	item.tags = (char **)s->tags;
	item.n_tags = n;
	item.source = (char *)"test";
	item.embedding_model = (char *)(s->model != NULL ? s->model : "");
	item.created_unix_ms = s->created != 0 ? s->created : 1000 + f->next_id;
	item.expires_unix_ms = s->expires;
	assert_null(jnl_memory_item_invalid(&item, s->dim, s->vec));
	assert_int_equal(jnl_memory_insert(&f->t, &item, s->vec, s->dim), 0);
	return f->next_id;
}

struct result {
	Palyra__V1__MemoryHit **hits;
	size_t n;
};

static struct result
search(struct fixture *f, const char *principal, const char *session,
    const char *query, const float *vec, size_t dim, size_t top_k,
    double min_score)
{
	struct jnl_memory_query q;
	struct result r;

	memset(&q, 0, sizeof(q));
	q.principal = principal;
	q.session_id = session;
	q.query = query;
	q.embedding = vec;
	q.dim = dim;
	q.embedding_model = vec != NULL ? "m1" : "";
	q.top_k = top_k;
	q.min_score = min_score;
	q.now = 5000;
	assert_int_equal(jnl_memory_search(&f->t, &q, &r.hits, &r.n), 0);
	return r;
}

static const char *
text_of(const struct result *r, size_t i)
{
	assert_true(i < r->n);
	return r->hits[i]->item->text;
}

/* Filler that makes the test words rare, as in a real store: bm25 gives
 * almost nothing to a word in half of the items or more. */
static void
filler(struct fixture *f, const char *principal)
{
	static const char *const texts[] = {"invoice paid on monday",
	    "the train was late", "call the plumber", "lunch with sam",
	    "tickets for the concert", "renew the passport"};
	struct spec s;
	size_t i;

	for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		memset(&s, 0, sizeof(s));
		s.principal = principal;
		s.text = texts[i];
		store(f, &s);
	}
}

static void
test_keyword_hit_above_unrelated(void **state)
{
	struct fixture *f = *state;
	struct spec s = {.principal = "alice"};
	struct result r;

	filler(f, "alice");
	s.text = "the kestrel hovers over the field";
	store(f, &s);
	r = search(f, "alice", "", "Kestrel?", NULL, 0, 5, 0);
	/* Only the hit: an item matching nothing scores 0 and is left out. */
	assert_int_equal(r.n, 1);
	assert_string_equal(
	    text_of(&r, 0), "the kestrel hovers over the field");
	assert_true(r.hits[0]->text_score > 0.3);
	assert_float_equal(r.hits[0]->vector_score, 0, 1e-12);
	assert_float_equal(r.hits[0]->score, r.hits[0]->text_score, 1e-12);
	jnl_memory_hits_free(r.hits, r.n);
}

static void
test_near_vector_above_far(void **state)
{
	static const float q[3] = {1, 0, 0}, near[3] = {0.9f, 0.2f, 0};
	static const float far[3] = {0.2f, 0.9f, 0.1f}, away[3] = {-1, 0, 0};
	struct fixture *f = *state;
	struct spec s = {.principal = "alice", .dim = 3, .model = "m1"};
	struct result r;

	s.text = "far one";
	s.vec = far;
	s.created = 9000; /* newer: the score decides, not the age */
	store(f, &s);
	s.text = "near one";
	s.vec = near;
	s.created = 2000;
	store(f, &s);
	s.text = "pointing away";
	s.vec = away;
	store(f, &s);
	r = search(f, "alice", "", "zzz", q, 3, 5, 0);
	assert_int_equal(r.n, 2);
	assert_string_equal(text_of(&r, 0), "near one");
	assert_string_equal(text_of(&r, 1), "far one");
	/* No word matched: half the cosine. */
	assert_float_equal(r.hits[0]->text_score, 0, 1e-12);
	assert_float_equal(
	    r.hits[0]->score, 0.5 * r.hits[0]->vector_score, 1e-12);
	assert_float_equal(
	    r.hits[0]->vector_score, 0.9 / sqrt(0.81 + 0.04), 1e-6);
	jnl_memory_hits_free(r.hits, r.n);
}

/* score = 0.5 (s / (s + 1)) + 0.5 cosine, s = -bm25 as FTS5 ranks it. */
static void
test_documented_mix(void **state)
{
	static const float q[2] = {1, 0}, v[2] = {0.6f, 0.8f};
	struct fixture *f = *state;
	struct spec s = {.principal = "alice", .dim = 2, .model = "m1"};
	struct result r;
	sqlite3_stmt *st;
	double bm25, t;

	filler(f, "alice");
	s.text = "heron by the river";
	s.vec = v;
	store(f, &s);
	assert_int_equal(sqlite3_prepare_v2(f->t.db,
			     "SELECT bm25(memory_fts) FROM memory_fts"
			     " WHERE memory_fts MATCH '\"heron\"'",
			     -1, &st, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	bm25 = sqlite3_column_double(st, 0);
	sqlite3_finalize(st);
	assert_true(bm25 < 0);
	t = -bm25 / (-bm25 + 1);
	r = search(f, "alice", "", "heron", q, 2, 5, 0);
	assert_int_equal(r.n, 1);
	assert_float_equal(r.hits[0]->text_score, t, 1e-9);
	assert_float_equal(r.hits[0]->vector_score, 0.6, 1e-6);
	assert_float_equal(r.hits[0]->score, 0.5 * t + 0.3, 1e-6);
	jnl_memory_hits_free(r.hits, r.n);
	/* Without a query vector: the text score alone. */
	r = search(f, "alice", "", "heron", NULL, 0, 5, 0);
	assert_int_equal(r.n, 1);
	assert_float_equal(r.hits[0]->score, t, 1e-9);
	jnl_memory_hits_free(r.hits, r.n);
}

static void
test_other_model_or_dim_counts_nothing(void **state)
{
	static const float q[2] = {1, 0}, v2[2] = {1, 0}, v3[3] = {1, 0, 0};
	struct fixture *f = *state;
	struct spec s = {.principal = "alice"};
	struct result r;

	s.text = "model two";
	s.vec = v2;
	s.dim = 2;
	s.model = "m2";
	store(f, &s);
	s.text = "three dims";
	s.vec = v3;
	s.dim = 3;
	s.model = "m1";
	store(f, &s);
	r = search(f, "alice", "", "nothing", q, 2, 5, 0);
	assert_int_equal(r.n, 0);
	jnl_memory_hits_free(r.hits, r.n);
}

static void
test_scope(void **state)
{
	struct fixture *f = *state;
	struct spec s;
	struct result r;

	filler(f, "alice");
	memset(&s, 0, sizeof(s));
	s.principal = "alice";
	s.text = "walrus wide";
	s.tags[0] = "zoo";
	s.tags[1] = "arctic";
	store(f, &s);
	s.text = "walrus session";
	s.session = "s1";
	s.tags[1] = NULL;
	store(f, &s);
	s.text = "walrus elsewhere";
	s.session = "s2";
	store(f, &s);
	s.text = "walrus expired";
	s.session = NULL;
	s.expires = 4000; /* now is 5000 */
	store(f, &s);
	s.text = "walrus later";
	s.expires = 6000;
	store(f, &s);
	memset(&s, 0, sizeof(s));
	s.principal = "bob";
	s.text = "walrus of bob";
	store(f, &s);

	r = search(f, "alice", "", "walrus", NULL, 0, 10, 0);
	assert_int_equal(r.n, 2); /* wide, later */
	jnl_memory_hits_free(r.hits, r.n);
	r = search(f, "alice", "s1", "walrus", NULL, 0, 10, 0);
	assert_int_equal(r.n, 3); /* wide, session, later */
	jnl_memory_hits_free(r.hits, r.n);

	/* Every tag asked. */
	{
		struct jnl_memory_query q;
		char *tags[2] = {(char *)"zoo", (char *)"arctic"};

		memset(&q, 0, sizeof(q));
		q.principal = "alice";
		q.session_id = "s1";
		q.query = "walrus";
		q.embedding_model = "";
		q.tags = tags;
		q.ntags = 2;
		q.top_k = 10;
		q.now = 5000;
		assert_int_equal(
		    jnl_memory_search(&f->t, &q, &r.hits, &r.n), 0);
		assert_int_equal(r.n, 1);
		assert_string_equal(text_of(&r, 0), "walrus wide");
		assert_int_equal(r.hits[0]->item->n_tags, 2);
		assert_string_equal(r.hits[0]->item->tags[1], "arctic");
		jnl_memory_hits_free(r.hits, r.n);
		/* "zoo" alone: wide, session and later hold it. */
		q.ntags = 1;
		assert_int_equal(
		    jnl_memory_search(&f->t, &q, &r.hits, &r.n), 0);
		assert_int_equal(r.n, 3);
		jnl_memory_hits_free(r.hits, r.n);
	}
}

static void
test_min_score_top_k_and_ties(void **state)
{
	static const float q[2] = {1, 0};
	static const float v[4][2] = {
	    {1, 0}, {0.8f, 0.6f}, {0.6f, 0.8f}, {0.8f, 0.6f}};
	struct fixture *f = *state;
	struct spec s = {.principal = "alice", .dim = 2, .model = "m1"};
	struct result r;
	size_t i;

	for (i = 0; i < 4; i++) {
		s.text = i == 3 ? "newer twin" : i == 1 ? "older twin" : "x";
		s.vec = v[i];
		s.created = 1000 + (int64_t)i;
		store(f, &s);
	}
	/* Scores 0.5, 0.4, 0.3, 0.4: top 3, the twins by age. */
	r = search(f, "alice", "", "", q, 2, 3, 0);
	assert_int_equal(r.n, 3);
	assert_float_equal(r.hits[0]->score, 0.5, 1e-6);
	assert_string_equal(text_of(&r, 1), "newer twin");
	assert_string_equal(text_of(&r, 2), "older twin");
	jnl_memory_hits_free(r.hits, r.n);
	r = search(f, "alice", "", "", q, 2, 10, 0.35);
	assert_int_equal(r.n, 3);
	jnl_memory_hits_free(r.hits, r.n);
	r = search(f, "alice", "", "", q, 2, 10, 0.45);
	assert_int_equal(r.n, 1);
	jnl_memory_hits_free(r.hits, r.n);
}

static void
test_duplicate_id_and_checks(void **state)
{
	static const float bad[1] = {INFINITY};
	struct fixture *f = *state;
	Palyra__V1__MemoryItem item = PALYRA__V1__MEMORY_ITEM__INIT;
	char *tags[1] = {(char *)"has space"};

	item.item_id = (char *)"0123456789abcdef0123456789abcdef";
	item.principal = (char *)"alice";
	item.text = (char *)"once";
	item.created_unix_ms = 1;
	assert_null(jnl_memory_item_invalid(&item, 0, NULL));
	assert_int_equal(jnl_memory_insert(&f->t, &item, NULL, 0), 0);
	assert_int_equal(jnl_memory_insert(&f->t, &item, NULL, 0), 1);
	/* Checks. */
	assert_non_null(jnl_memory_item_invalid(&item, 1, bad));
	item.embedding_model = (char *)"m";
	assert_non_null(jnl_memory_item_invalid(&item, 1, bad));
	assert_non_null(
	    jnl_memory_item_invalid(&item, JNL_MEMORY_DIM_MAX + 1, bad));
	item.tags = tags;
	item.n_tags = 1;
	assert_non_null(jnl_memory_item_invalid(&item, 0, NULL));
	item.n_tags = 0;
	item.text = (char *)"\xff\xfe";
	assert_non_null(jnl_memory_item_invalid(&item, 0, NULL));
	item.text = (char *)"";
	assert_non_null(jnl_memory_item_invalid(&item, 0, NULL));
	item.text = (char *)"ok";
	item.item_id = (char *)"0123456789ABCDEF0123456789abcdef";
	assert_non_null(jnl_memory_item_invalid(&item, 0, NULL));
	item.item_id = (char *)"0123456789abcdef0123456789abcdef";
	item.expires_unix_ms = -1;
	assert_non_null(jnl_memory_item_invalid(&item, 0, NULL));
	item.expires_unix_ms = 0;
	item.session_id = (char *)"../etc";
	assert_non_null(jnl_memory_item_invalid(&item, 0, NULL));
}

static void
test_sweep_is_bounded(void **state)
{
	struct fixture *f = *state;
	struct spec s = {.principal = "alice", .text = "ttl"};
	struct result r;
	int i;

	for (i = 0; i < 5; i++) {
		s.expires = 3000 + i;
		store(f, &s);
	}
	s.expires = 0;
	s.text = "ttl forever";
	store(f, &s);
	s.expires = 9000;
	s.text = "ttl later";
	store(f, &s);
	assert_int_equal(jnl_memory_sweep_tenant(NULL, &f->t, 5000, 3), 3);
	assert_int_equal(jnl_memory_sweep_tenant(NULL, &f->t, 5000, 3), 2);
	assert_int_equal(jnl_memory_sweep_tenant(NULL, &f->t, 5000, 3), 0);
	r = search(f, "alice", "", "ttl", NULL, 0, 10, 0);
	assert_int_equal(r.n, 2);
	jnl_memory_hits_free(r.hits, r.n);
	assert_int_equal(jnl_memory_sweep_tenant(NULL, &f->t, 9000, 3), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
		test_keyword_hit_above_unrelated, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_near_vector_above_far, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_documented_mix, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_other_model_or_dim_counts_nothing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_scope, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_min_score_top_k_and_ties, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_duplicate_id_and_checks, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_sweep_is_bounded, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
