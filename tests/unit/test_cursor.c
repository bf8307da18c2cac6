/*
 * test_cursor.c: unit tests of journald/cursor.c, the opaque cursors of
 * the session and run listings: a cursor decodes to the key it was made
 * of, and anything else a client could send is refused cleanly.
 *
 * cursor.c runs in palyra-journald and is not part of the common library:
 * it is compiled into this test directly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../../journald/cursor.c"

static void
round_trip(int64_t ms, const char *id)
{
	char text[JNL_CURSOR_MAX + 1], back[JNL_CURSOR_ID_MAX + 1];
	int64_t got = 0;

	assert_int_equal(jnl_cursor_encode(ms, id, text, sizeof(text)), 0);
	assert_int_equal(strlen(text), 2 * (8 + strlen(id)));
	assert_int_equal(jnl_cursor_decode(text, &got, back, sizeof(back)), 0);
	assert_true(got == ms);
	assert_string_equal(back, id);
}

static void
test_round_trip(void **state)
{
	char id[JNL_CURSOR_ID_MAX + 1];

	round_trip(0, "s");
	round_trip(1764646000123, "session-42");
	round_trip(-1, "a.b_c-d");
	round_trip(INT64_MIN, "x");
	round_trip(INT64_MAX, "0123456789abcdef0123456789abcdef");
	memset(id, 'z', JNL_CURSOR_ID_MAX);
	id[JNL_CURSOR_ID_MAX] = '\0';
	round_trip(7, id);
}

static void
test_encode_refuses(void **state)
{
	char text[JNL_CURSOR_MAX + 1], id[JNL_CURSOR_ID_MAX + 2];

	assert_int_equal(jnl_cursor_encode(1, "", text, sizeof(text)), -EINVAL);
	memset(id, 'z', sizeof(id) - 1);
	id[sizeof(id) - 1] = '\0';
	assert_int_equal(jnl_cursor_encode(1, id, text, sizeof(text)), -EINVAL);
	assert_int_equal(jnl_cursor_encode(1, "abc", text, 10), -EINVAL);
}

/* The order of a page follows the key: encoding keeps it. */
static void
test_known_encoding(void **state)
{
	char text[JNL_CURSOR_MAX + 1];

	assert_int_equal(jnl_cursor_encode(258, "ab", text, sizeof(text)), 0);
	assert_string_equal(text, "00000000000001026162");
}

static void
test_decode_refuses(void **state)
{
	static const char *const bad[] = {
	    "",			    /* nothing */
	    "0000000000000102",	    /* a time, no id */
	    "000000000000010261",   /* valid: checked apart below */
	    "0000000000000102616",  /* odd length */
	    "00000000000001026g62", /* not hex */
	    "00000000000001026A62", /* upper case is not ours */
	    "00000000000001022062", /* a space in the id */
	    "00000000000001020062", /* a NUL in the id */
	    "0000000000000102ff62", /* not ASCII */
	    "zz",
	    "not a cursor at all",
	};
	char back[JNL_CURSOR_ID_MAX + 1], longer[2 * JNL_CURSOR_MAX];
	int64_t ms;
	size_t i;

	/* "000000000000010261" is a valid one-byte id: checked apart. */
	assert_int_equal(jnl_cursor_decode(bad[2], &ms, back, sizeof(back)), 0);
	assert_string_equal(back, "a");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (i == 2)
			continue;
		assert_int_equal(
		    jnl_cursor_decode(bad[i], &ms, back, sizeof(back)),
		    -EINVAL);
	}
	assert_int_equal(
	    jnl_cursor_decode(NULL, &ms, back, sizeof(back)), -EINVAL);
	/* Longer than the longest id. */
	memset(longer, '6', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	assert_int_equal(
	    jnl_cursor_decode(longer, &ms, back, sizeof(back)), -EINVAL);
	longer[JNL_CURSOR_MAX + 2] = '\0';
	assert_int_equal(
	    jnl_cursor_decode(longer, &ms, back, sizeof(back)), -EINVAL);
	/* An id that does not fit the caller's buffer. */
	assert_int_equal(
	    jnl_cursor_decode("00000000000001026162", &ms, back, 2), -EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_encode_refuses),
	    cmocka_unit_test(test_known_encoding),
	    cmocka_unit_test(test_decode_refuses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
