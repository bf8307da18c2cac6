/*
 * test_memory_tools.c: unit tests of the pure parts of palyra-worker's
 * memory (worker/memory.c, worker/memory_tools.c): the checks of item
 * fields, the refusals of a request before anything is sent, the JSON of
 * memory.search's hits and the "Relevant memory:" section recall adds to
 * a system prompt.
 *
 * Both files run in palyra-worker and are compiled into this test
 * directly, with stand-ins for what they call of the rest of the worker
 * (embedders, vault, clock, run launch), none of which a test here
 * reaches but the clock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../worker/memory.c"
#include "../../worker/memory_tools.c"

struct wrk_embed_req *
wrk_embed(struct wrk_ctx *ctx, const char *provider_name,
    const char *const *texts, size_t ntexts, wrk_embed_cb cb, void *arg)
{
	(void)ctx; (void)provider_name; (void)texts; (void)ntexts;
	(void)cb; (void)arg;
	errno = ENOSYS;
	return NULL;
}

void
wrk_embed_cancel(struct wrk_embed_req *req)
{
	(void)req;
}

char *
wrk_vault_redact_text(struct wrk_ctx *ctx, const char *text)
{
	(void)ctx;
	return strdup(text);
}

int64_t
wrk_now_ms(void)
{
	return 1000;
}

int
wrk_session_id_valid(const char *s)
{
	return s[0] != '\0' && strchr(s, '/') == NULL;
}

void
wrk_run_launch(struct wrk_run *run)
{
	(void)run;
}

static Palyra__V1__MemoryItem items[3];
static Palyra__V1__MemoryHit hit_store[3];
static Palyra__V1__MemoryHit *hits[3];
static char *tags_one[] = { "wifi", "office" };

static void
hits_make(const char *t0, const char *t1, const char *t2)
{
	const char *texts[3] = { t0, t1, t2 };
	static const char *const ids[3] = {
		"00000000000000000000000000000001",
		"00000000000000000000000000000002",
		"00000000000000000000000000000003",
	};
	size_t	 i;

	for (i = 0; i < 3; i++) {
		palyra__v1__memory_item__init(&items[i]);
		palyra__v1__memory_hit__init(&hit_store[i]);
		items[i].item_id = (char *)ids[i];
		items[i].text = (char *)texts[i];
		hit_store[i].item = &items[i];
		hit_store[i].score = 0.9 - 0.2 * (double)i;
		hits[i] = &hit_store[i];
	}
	items[0].tags = tags_one;
	items[0].n_tags = 2;
}

static void
test_field_checks(void **state)
{
	char	 big[JNL_MEMORY_TEXT_MAX + 2];

	(void)state;
	assert_true(wrk_memory_tag_valid("db:staging"));
	assert_true(wrk_memory_tag_valid("A.b_c-1"));
	assert_false(wrk_memory_tag_valid(""));
	assert_false(wrk_memory_tag_valid("two words"));
	assert_false(wrk_memory_tag_valid("slash/no"));
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	big[JNL_MEMORY_TAG_MAX] = '\0';
	assert_true(wrk_memory_tag_valid(big));
	big[JNL_MEMORY_TAG_MAX] = 'x';
	big[JNL_MEMORY_TAG_MAX + 1] = '\0';
	assert_false(wrk_memory_tag_valid(big));

	assert_true(wrk_memory_text_valid("line one\nline\ttwo", 100));
	assert_true(wrk_memory_text_valid("caf\xc3\xa9 \xf0\x9f\x8e\x89", 100));
	assert_false(wrk_memory_text_valid("", 100));
	assert_false(wrk_memory_text_valid("bell\a", 100));
	assert_false(wrk_memory_text_valid("cut \xc3", 100));
	assert_false(wrk_memory_text_valid("overlong \xc0\xaf", 100));
	assert_false(wrk_memory_text_valid("abcdef", 5));
	memset(big, 'x', sizeof(big) - 1);
	big[JNL_MEMORY_TEXT_MAX] = '\0';
	assert_true(wrk_memory_text_valid(big, JNL_MEMORY_TEXT_MAX));
	big[JNL_MEMORY_TEXT_MAX] = 'x';
	assert_false(wrk_memory_text_valid(big, JNL_MEMORY_TEXT_MAX));

	assert_true(wrk_memory_source_valid(""));
	assert_true(wrk_memory_source_valid("tool:memory.ingest"));
	assert_false(wrk_memory_source_valid("two\nlines"));
}

static void
never(const struct wrk_memory_result *res, void *arg)
{
	(void)res;
	(void)arg;
	fail_msg("a refused request called back");
}

static void
test_refusals(void **state)
{
	struct wrk_memory_ingest_args in;
	struct wrk_memory_search_args se;
	struct wrk_ctx	 ctx;
	char		 why[160];

	(void)state;
	memset(&ctx, 0, sizeof(ctx));
	memset(&in, 0, sizeof(in));
	in.principal = "alice";
	in.session_id = "";
	in.source = "";
	in.text = "";
	assert_int_equal(wrk_memory_ingest(&ctx, NULL, &in, never, NULL, why,
	    sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "text must be 1 to 16384 bytes"));
	in.text = "ok";
	in.ttl_ms = WRK_MEMORY_TTL_MAX_MS + 1;
	assert_int_equal(wrk_memory_ingest(&ctx, NULL, &in, never, NULL, why,
	    sizeof(why)), -EINVAL);
	in.ttl_ms = 0;
	in.session_id = "a/b";
	assert_int_equal(wrk_memory_ingest(&ctx, NULL, &in, never, NULL, why,
	    sizeof(why)), -EINVAL);
	assert_string_equal(why, "invalid session_id");
	/* Valid, but no journald: refused at once, nothing called back. */
	in.session_id = "";
	assert_int_equal(wrk_memory_ingest(&ctx, NULL, &in, never, NULL, why,
	    sizeof(why)), -ENOTCONN);

	memset(&se, 0, sizeof(se));
	se.principal = "alice";
	se.session_id = "";
	se.query = "q";
	se.top_k = JNL_MEMORY_TOP_K_MAX + 1;
	assert_int_equal(wrk_memory_search(&ctx, NULL, &se, never, NULL, why,
	    sizeof(why)), -EINVAL);
	se.top_k = 0;
	se.min_score = 1.5;
	assert_int_equal(wrk_memory_search(&ctx, NULL, &se, never, NULL, why,
	    sizeof(why)), -EINVAL);
	se.min_score = 0.5;
	assert_int_equal(wrk_memory_search(&ctx, NULL, &se, never, NULL, why,
	    sizeof(why)), -ENOTCONN);
	wrk_memory_free(&ctx);
	assert_null(ctx.memory);
}

static void
test_hits_json(void **state)
{
	json_t		*v, *h;
	json_error_t	 jerr;
	char		*out, long_text[2048];

	(void)state;
	hits_make("The office wifi is amberlattice", "second\nline", "third");
	out = wrk_memory_hits_json(hits, 3, WRK_TOOL_RESULT_MAX);
	assert_non_null(out);
	v = json_loads(out, 0, &jerr);
	assert_non_null(v);
	assert_int_equal(json_array_size(v), 3);
	h = json_array_get(v, 0);
	assert_string_equal(json_string_value(json_object_get(h, "text")),
	    "The office wifi is amberlattice");
	assert_string_equal(json_string_value(json_object_get(h, "item_id")),
	    "00000000000000000000000000000001");
	assert_true(json_real_value(json_object_get(h, "score")) == 0.9);
	assert_int_equal(json_array_size(json_object_get(h, "tags")), 2);
	assert_string_equal(json_string_value(json_array_get(
	    json_object_get(h, "tags"), 1)), "office");
	/* Control characters become spaces. */
	assert_string_equal(json_string_value(json_object_get(
	    json_array_get(v, 1), "text")), "second line");
	json_decref(v);
	free(out);
	/* No hits: an empty list. */
	out = wrk_memory_hits_json(hits, 0, WRK_TOOL_RESULT_MAX);
	assert_string_equal(out, "[]");
	free(out);
	/* Bounded: long texts are cut, hits that do not fit dropped. */
	memset(long_text, 'y', sizeof(long_text) - 1);
	long_text[sizeof(long_text) - 1] = '\0';
	hits_make(long_text, long_text, long_text);
	out = wrk_memory_hits_json(hits, 3, 1200);
	assert_non_null(out);
	assert_true(strlen(out) <= 1200);
	v = json_loads(out, 0, &jerr);
	assert_non_null(v);
	assert_true(json_array_size(v) >= 1);
	json_decref(v);
	free(out);
}

static void
test_recall_prompt(void **state)
{
	char	*out, long_text[600];

	(void)state;
	hits_make("My favourite colour is ultramarine", "two\nlines", "third");
	out = wrk_memory_recall_prompt("Be brief.", hits, 2, 4096);
	assert_string_equal(out, "Be brief.\n\nRelevant memory:\n"
	    "- My favourite colour is ultramarine\n- two lines");
	free(out);
	/* An empty prompt gets the section alone. */
	out = wrk_memory_recall_prompt("", hits, 1, 4096);
	assert_string_equal(out, "Relevant memory:\n"
	    "- My favourite colour is ultramarine");
	free(out);
	/* No hits: the prompt unchanged. */
	out = wrk_memory_recall_prompt("Be brief.", hits, 0, 4096);
	assert_string_equal(out, "Be brief.");
	free(out);
	/* Bounded: the section is at most max bytes; a long item is cut
	 * with "..." and ends the list. */
	memset(long_text, 'z', sizeof(long_text) - 1);
	long_text[sizeof(long_text) - 1] = '\0';
	hits_make("short one", long_text, "never shown");
	out = wrk_memory_recall_prompt("P", hits, 3, 300);
	assert_non_null(out);
	assert_true(strlen(out) <= strlen("P\n\n") + 300);
	assert_non_null(strstr(out, "- short one\n- zzz"));
	assert_non_null(strstr(out, "zzz..."));
	assert_null(strstr(out, "never shown"));
	free(out);
	/* A bound too small for anything: the prompt unchanged. */
	out = wrk_memory_recall_prompt("P", hits, 3, 10);
	assert_string_equal(out, "P");
	free(out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_field_checks),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_hits_json),
		cmocka_unit_test(test_recall_prompt),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
