/*
 * test_jsonschema.c: common/jsonschema.c, the JSON Schema subset that
 * checks tool schemas and validates tool arguments: every keyword, the
 * JSON pointer paths of messages (nested, escaped), unsupported keywords
 * refused by jschema_check, depth limits, code-point lengths and patterns.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <jansson.h>

#include "jsonschema.h"

static char err[512];

static json_t *
load(const char *text)
{
	json_error_t jerr;
	json_t *v;

	v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
	if (v == NULL)
		fail_msg("bad test JSON %s: %s", text, jerr.text);
	return v;
}

static void
check_ok(const char *schema)
{
	json_t *s = load(schema);

	if (jschema_check(s, err, sizeof(err)) != 0)
		fail_msg("schema %s refused: %s", schema, err);
	json_decref(s);
}

static void
check_fails(const char *schema, const char *expected)
{
	json_t *s = load(schema);

	assert_int_equal(jschema_check(s, err, sizeof(err)), -1);
	assert_string_equal(err, expected);
	json_decref(s);
}

/* Validates instance against schema (which must pass the check). */
static int
run(const char *schema, const char *instance)
{
	json_t *s = load(schema), *i = load(instance);
	int rc;

	if (jschema_check(s, err, sizeof(err)) != 0)
		fail_msg("schema %s refused: %s", schema, err);
	err[0] = 'X';
	err[1] = '\0';
	rc = jschema_validate(s, i, err, sizeof(err));
	json_decref(s);
	json_decref(i);
	return rc;
}

static void
valid(const char *schema, const char *instance)
{
	if (run(schema, instance) != 0)
		fail_msg("%s against %s: %s", instance, schema, err);
	assert_string_equal(err, "");
}

static void
invalid(const char *schema, const char *instance, const char *expected)
{
	if (run(schema, instance) != -1)
		fail_msg("%s against %s: accepted", instance, schema);
	assert_string_equal(err, expected);
}

static void
test_type(void **state)
{
	(void)state;
	valid("{\"type\":\"string\"}", "\"a\"");
	valid("{\"type\":\"object\"}", "{}");
	valid("{\"type\":\"array\"}", "[]");
	valid("{\"type\":\"number\"}", "1.5");
	valid("{\"type\":\"number\"}", "3");
	valid("{\"type\":\"integer\"}", "3");
	/* JSON Schema: 2.0 is an integer. */
	valid("{\"type\":\"integer\"}", "2.0");
	valid("{\"type\":\"boolean\"}", "false");
	valid("{\"type\":\"null\"}", "null");
	valid("{\"type\":[\"string\",\"null\"]}", "null");
	invalid("{\"type\":\"string\"}", "1", "/: expected string, got "
	    "integer");
	invalid("{\"type\":\"integer\"}", "1.5", "/: expected integer, got "
	    "number");
	invalid("{\"type\":\"boolean\"}", "0", "/: expected boolean, got "
	    "integer");
	invalid("{\"type\":\"null\"}", "{}", "/: expected null, got object");
	invalid("{\"type\":[\"string\",\"null\",\"array\"]}", "true",
	    "/: expected string, null or array, got boolean");
	invalid("{\"type\":[\"string\",\"null\"]}", "[]",
	    "/: expected string or null, got array");
	check_fails("{\"type\":\"text\"}", ": unknown type \"text\"");
	check_fails("{\"type\":[]}", ": \"type\" must be a type name or a "
	    "non-empty array of them");
	check_fails("{\"type\":[\"string\",\"string\"]}",
	    ": duplicate type \"string\"");
	check_fails("{\"type\":7}", ": \"type\" must be a type name or a "
	    "non-empty array of them");
}

static void
test_properties_required(void **state)
{
	const char *s = "{\"type\":\"object\",\"properties\":{\"url\":"
	    "{\"type\":\"string\"},\"n\":{\"type\":\"integer\"}},"
	    "\"required\":[\"url\"]}";

	(void)state;
	valid(s, "{\"url\":\"x\"}");
	valid(s, "{\"url\":\"x\",\"n\":2,\"other\":[1]}");
	invalid(s, "{\"url\":5}", "/url: expected string, got integer");
	invalid(s, "{\"n\":1}", "/: missing required property \"url\"");
	invalid(s, "{\"url\":\"x\",\"n\":\"2\"}", "/n: expected integer, "
	    "got string");
	check_fails("{\"properties\":[]}", ": \"properties\" must be an "
	    "object");
	check_fails("{\"properties\":{\"a\":{\"type\":\"bad\"}}}",
	    "/properties/a: unknown type \"bad\"");
	check_fails("{\"required\":\"url\"}", ": \"required\" must be an "
	    "array of strings");
	check_fails("{\"required\":[\"a\",1]}", ": \"required\" must be an "
	    "array of strings");
	check_fails("{\"required\":[\"a\",\"a\"]}", ": duplicate required "
	    "property \"a\"");
}

static void
test_additional_properties(void **state)
{
	const char *closed = "{\"properties\":{\"a\":{}},"
	    "\"additionalProperties\":false}";
	const char *typed = "{\"properties\":{\"a\":{}},"
	    "\"additionalProperties\":{\"type\":\"integer\"}}";

	(void)state;
	valid(closed, "{\"a\":1}");
	invalid(closed, "{\"a\":1,\"b\":2}", "/: property \"b\" is not "
	    "allowed");
	valid(typed, "{\"a\":\"s\",\"b\":2}");
	invalid(typed, "{\"a\":\"s\",\"b\":\"2\"}", "/b: expected integer, "
	    "got string");
	valid("{\"additionalProperties\":true}", "{\"x\":1}");
	check_fails("{\"additionalProperties\":1}", "/additionalProperties: "
	    "a schema must be an object or a boolean");
	/* A property whose schema is false may not appear. */
	invalid("{\"properties\":{\"a\":false}}", "{\"a\":1}",
	    "/a: no value is allowed here");
}

static void
test_items_nested_paths(void **state)
{
	const char *s = "{\"type\":\"object\",\"properties\":{\"list\":"
	    "{\"type\":\"array\",\"items\":{\"type\":\"object\","
	    "\"properties\":{\"a/b~c\":{\"type\":\"string\"}},"
	    "\"required\":[\"id\"]}}}}";

	(void)state;
	valid(s, "{\"list\":[{\"id\":1},{\"id\":2,\"a/b~c\":\"x\"}]}");
	invalid(s, "{\"list\":[{\"id\":1},{\"id\":2,\"a/b~c\":3}]}",
	    "/list/1/a~1b~0c: expected string, got integer");
	invalid(s, "{\"list\":[{\"id\":1},{}]}",
	    "/list/1: missing required property \"id\"");
	invalid(s, "{\"list\":{}}", "/list: expected array, got object");
	check_fails("{\"items\":[{}]}", ": \"items\" must be a schema (the "
	    "array form is not supported)");
	check_fails("{\"items\":{\"minimum\":\"1\"}}", "/items: \"minimum\" "
	    "must be a number");
}

static void
test_enum_const(void **state)
{
	(void)state;
	valid("{\"enum\":[\"a\",1,null,{\"k\":[1]}]}", "\"a\"");
	valid("{\"enum\":[\"a\",1,null,{\"k\":[1]}]}", "1.0");
	valid("{\"enum\":[\"a\",1,null,{\"k\":[1]}]}", "{\"k\":[1.0]}");
	invalid("{\"enum\":[\"a\",1]}", "\"b\"", "/: value is not one of "
	    "the enumerated values");
	invalid("{\"enum\":[{\"k\":1}]}", "{\"k\":1,\"j\":2}", "/: value is "
	    "not one of the enumerated values");
	valid("{\"const\":{\"a\":[true]}}", "{\"a\":[true]}");
	invalid("{\"const\":\"x\"}", "\"y\"", "/: value is not the constant "
	    "the schema requires");
	invalid("{\"const\":false}", "0", "/: value is not the constant the "
	    "schema requires");
	check_fails("{\"enum\":[]}", ": \"enum\" must be a non-empty array");
	check_fails("{\"enum\":\"a\"}", ": \"enum\" must be a non-empty "
	    "array");
}

static void
test_numbers(void **state)
{
	(void)state;
	valid("{\"minimum\":1,\"maximum\":3}", "1");
	valid("{\"minimum\":1,\"maximum\":3}", "3");
	valid("{\"minimum\":1}", "\"strings are not numbers\"");
	invalid("{\"minimum\":1}", "0", "/: 0 is less than the minimum 1");
	invalid("{\"maximum\":3}", "3.5", "/: 3.5 is greater than the "
	    "maximum 3");
	invalid("{\"exclusiveMinimum\":1}", "1", "/: 1 is not greater than "
	    "the exclusive minimum 1");
	valid("{\"exclusiveMinimum\":1}", "1.25");
	invalid("{\"exclusiveMaximum\":2.5}", "2.5", "/: 2.5 is not less "
	    "than the exclusive maximum 2.5");
	valid("{\"exclusiveMaximum\":2.5}", "2");
	/* Large integers compare exactly, not through a double. */
	invalid("{\"maximum\":9007199254740992}", "9007199254740993",
	    "/: 9007199254740993 is greater than the maximum "
	    "9007199254740992");
	check_fails("{\"maximum\":\"3\"}", ": \"maximum\" must be a number");
	check_fails("{\"exclusiveMinimum\":true}", ": \"exclusiveMinimum\" "
	    "must be a number");
}

static void
test_string_lengths_unicode(void **state)
{
	(void)state;
	/* Code points, not bytes: "héllo" is 5 characters, 6 bytes. */
	valid("{\"maxLength\":5}", "\"h\\u00e9llo\"");
	valid("{\"minLength\":5}", "\"h\\u00e9llo\"");
	/* One astral character (a surrogate pair in JSON) is one. */
	valid("{\"maxLength\":1}", "\"\\ud83d\\ude00\"");
	invalid("{\"minLength\":2}", "\"\\ud83d\\ude00\"", "/: string of 1 "
	    "characters is shorter than the minimum length 2");
	invalid("{\"maxLength\":4}", "\"h\\u00e9llo\"", "/: string of 5 "
	    "characters is longer than the maximum length 4");
	valid("{\"maxLength\":2.0}", "\"ab\"");
	check_fails("{\"maxLength\":-1}", ": \"maxLength\" must be a "
	    "non-negative integer");
	check_fails("{\"minLength\":1.5}", ": \"minLength\" must be a "
	    "non-negative integer");
	check_fails("{\"minLength\":\"1\"}", ": \"minLength\" must be a "
	    "non-negative integer");
}

static void
test_pattern(void **state)
{
	(void)state;
	/* Unanchored unless the pattern anchors itself. */
	valid("{\"pattern\":\"b+\"}", "\"abbbc\"");
	valid("{\"pattern\":\"^https?://[a-z.]+(/.*)?$\"}",
	    "\"https://example.com/x\"");
	invalid("{\"pattern\":\"^https?://\"}", "\"ftp://x\"",
	    "/: string does not match the pattern \"^https?://\"");
	invalid("{\"properties\":{\"id\":{\"pattern\":\"^[0-9]{3}$\"}}}",
	    "{\"id\":\"12a\"}", "/id: string does not match the pattern "
	    "\"^[0-9]{3}$\"");
	/* The whole string is matched, past a NUL character too. */
	invalid("{\"pattern\":\"^[a-z]*$\"}", "\"ab\\u0000CD\"",
	    "/: string does not match the pattern \"^[a-z]*$\"");
	valid("{\"pattern\":\"C\"}", "\"ab\\u0000CD\"");
	valid("{\"pattern\":\"x\"}", "12");
	check_fails("{\"pattern\":\"([a-z]\"}", ": invalid pattern "
	    "\"([a-z]\": Unmatched ( or \\(");
	check_fails("{\"pattern\":\"(a)\\\\1\"}", ": invalid pattern "
	    "\"(a)\\1\": back-references are not supported");
	check_fails("{\"pattern\":3}", ": \"pattern\" must be a string");
}

/*
 * Repetitions that glibc's regcomp() expands into a huge tree are refused
 * before it runs: "a?" and 99 '+' took over a gigabyte (found by
 * tests/fuzz/fuzz_jsonschema.c, tests/fuzz/regress/jsonschema/), "^ht*"
 * and 13 '+' over 10 s; x{1,9999} takes seconds. Ordinary bounded
 * patterns still pass.
 */
static void
test_pattern_expansion(void **state)
{
	char schema[256];
	json_t *s;

	(void)state;
	snprintf(schema, sizeof(schema), "{\"pattern\":\"^a?%.99s\"}",
	    "++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++"
	    "+++++++++++++++++++++++++++++++++++++");
	s = load(schema);
	assert_int_equal(jschema_check(s, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "too complex"));
	json_decref(s);
	check_fails("{\"pattern\":\"((a{99}){99}){99}\"}",
	    ": invalid pattern \"((a{99}){99}){99}\": too complex (a "
	    "repeated repetition, a count over 1000 or more than 10000 atoms "
	    "once expanded)");
	check_fails("{\"pattern\":\"x{1,65535}\"}",
	    ": invalid pattern \"x{1,65535}\": too complex (a "
	    "repeated repetition, a count over 1000 or more than 10000 atoms "
	    "once expanded)");
	valid("{\"pattern\":\"^[a-z0-9]{1,64}(\\\\.[a-z]{2,8}){0,4}$\"}",
	    "\"example.co.uk\"");
	check_fails("{\"pattern\":\"^ht*++\"}", ": invalid pattern "
	    "\"^ht*++\": too complex (a repeated repetition, a count over "
	    "1000 or more than 10000 atoms once expanded)");
	check_fails("{\"pattern\":\"a{2}{3}\"}", ": invalid pattern "
	    "\"a{2}{3}\": too complex (a repeated repetition, a count over "
	    "1000 or more than 10000 atoms once expanded)");
	valid("{\"pattern\":"
	    "\"^[a-z0-9]{1,64}(\\\\.[a-z0-9]{1,63}){0,126}$\"}", "\"a.b\"");
	valid("{\"pattern\":\"^([0-9]{3}-){2}[0-9]{4}$\"}",
	    "\"555-123-4567\"");
	valid("{\"pattern\":\"[[:alpha:]]+[]a{]*(b+)+\"}", "\"xb\"");
}

/* uniqueItems compares pairs: past 2048 items it refuses to. */
static void
test_unique_bound(void)
{
	json_t *s = load("{\"uniqueItems\":true}"), *a = json_array();
	int i;

	for (i = 0; i < 2048; i++)
		json_array_append_new(a, json_integer(i));
	assert_int_equal(jschema_validate(s, a, err, sizeof(err)), 0);
	json_array_append_new(a, json_integer(i));
	assert_int_equal(jschema_validate(s, a, err, sizeof(err)), -1);
	assert_string_equal(err, "/: array of 2049 items is too long for "
	    "uniqueItems (limit 2048)");
	json_decref(a);
	json_decref(s);
}

static void
test_arrays(void **state)
{
	(void)state;
	valid("{\"minItems\":1,\"maxItems\":2}", "[1]");
	invalid("{\"minItems\":1}", "[]", "/: array of 0 items has fewer "
	    "than the minimum 1");
	invalid("{\"maxItems\":2}", "[1,2,3]", "/: array of 3 items has "
	    "more than the maximum 2");
	valid("{\"uniqueItems\":true}", "[1,\"1\",[1],{\"a\":1}]");
	invalid("{\"uniqueItems\":true}", "[1,2,1.0]", "/: items 0 and 2 "
	    "are equal (uniqueItems)");
	invalid("{\"uniqueItems\":true}", "[{\"a\":1,\"b\":2},"
	    "{\"b\":2,\"a\":1}]", "/: items 0 and 1 are equal (uniqueItems)");
	valid("{\"uniqueItems\":false}", "[1,1]");
	test_unique_bound();
	check_fails("{\"uniqueItems\":1}", ": \"uniqueItems\" must be a "
	    "boolean");
	check_fails("{\"minItems\":-2}", ": \"minItems\" must be a "
	    "non-negative integer");
}

static void
test_object_sizes(void **state)
{
	(void)state;
	valid("{\"minProperties\":1,\"maxProperties\":2}", "{\"a\":1}");
	invalid("{\"minProperties\":1}", "{}", "/: object of 0 properties "
	    "has fewer than the minimum 1");
	invalid("{\"maxProperties\":1}", "{\"a\":1,\"b\":2}", "/: object of "
	    "2 properties has more than the maximum 1");
	check_fails("{\"maxProperties\":null}", ": \"maxProperties\" must "
	    "be a non-negative integer");
}

static void
test_combinators(void **state)
{
	const char *any = "{\"anyOf\":[{\"type\":\"string\"},"
	    "{\"type\":\"integer\",\"minimum\":10}]}";
	const char *one = "{\"oneOf\":[{\"type\":\"integer\"},"
	    "{\"minimum\":5}]}";
	const char *all = "{\"allOf\":[{\"type\":\"integer\"},"
	    "{\"minimum\":5}]}";

	(void)state;
	valid(any, "\"s\"");
	valid(any, "12");
	invalid(any, "3", "/: value matches none of the anyOf schemas");
	valid(one, "3");	/* an integer below 5 */
	valid(one, "5.5");	/* a number of at least 5, not an integer */
	invalid(one, "7", "/: value matches more than one of the oneOf "
	    "schemas");
	invalid(one, "1.5", "/: value matches none of the oneOf schemas");
	valid(all, "6");
	invalid(all, "4", "/: 4 is less than the minimum 5");
	valid("{\"not\":{\"type\":\"null\"}}", "1");
	invalid("{\"not\":{\"type\":\"null\"}}", "null", "/: value matches "
	    "the \"not\" schema");
	/* A failed branch deep inside anyOf leaves the path intact. */
	invalid("{\"properties\":{\"a\":{\"anyOf\":[{\"properties\":{\"b\":"
	    "{\"properties\":{\"c\":{\"type\":\"string\"}}}}},"
	    "{\"type\":\"string\"}]}}}", "{\"a\":{\"b\":{\"c\":1}}}",
	    "/a: value matches none of the anyOf schemas");
	check_fails("{\"anyOf\":[]}", ": \"anyOf\" must be a non-empty array "
	    "of schemas");
	check_fails("{\"oneOf\":{}}", ": \"oneOf\" must be a non-empty array "
	    "of schemas");
	check_fails("{\"allOf\":[{},{\"type\":\"x\"}]}", "/allOf/1: unknown "
	    "type \"x\"");
	check_fails("{\"not\":[]}", "/not: a schema must be an object or a "
	    "boolean");
}

static void
test_ignored_and_unsupported(void **state)
{
	(void)state;
	check_ok("{\"$schema\":\"https://json-schema.org/draft/2020-12/"
	    "schema\",\"$id\":\"x\",\"$comment\":\"c\",\"title\":\"t\","
	    "\"description\":\"d\",\"default\":{},\"examples\":[1],"
	    "\"format\":\"uri\",\"type\":\"string\"}");
	/* format is not validated: a "uri" may be anything. */
	valid("{\"type\":\"string\",\"format\":\"uri\"}", "\"not a uri\"");
	check_ok("true");
	check_ok("false");
	check_fails("{\"properties\":{\"url\":{\"$ref\":\"#/defs/u\"}}}",
	    "/properties/url: unsupported keyword \"$ref\"");
	check_fails("{\"patternProperties\":{}}", ": unsupported keyword "
	    "\"patternProperties\"");
	check_fails("{\"if\":{},\"then\":{}}", ": unsupported keyword "
	    "\"if\"");
	check_fails("{\"prefixItems\":[]}", ": unsupported keyword "
	    "\"prefixItems\"");
	check_fails("\"string\"", ": a schema must be an object or a "
	    "boolean");
	check_fails("{\"properties\":{\"a/b\":{\"dependentRequired\":{}}}}",
	    "/properties/a~1b: unsupported keyword \"dependentRequired\"");
	/* false admits nothing, true everything. */
	invalid("false", "1", "/: no value is allowed here");
	valid("true", "[1,{}]");
}

/* "{"properties":{"a": ... n times ... {} ... }}" */
static char *
nested_schema(int n)
{
	size_t len = (size_t)n * 24 + 8, off = 0;
	char *s = malloc(len);
	int i;

	assert_non_null(s);
	for (i = 0; i < n; i++)
		off += (size_t)snprintf(s + off, len - off,
		    "{\"properties\":{\"a\":");
	off += (size_t)snprintf(s + off, len - off, "{}");
	for (i = 0; i < n; i++)
		off += (size_t)snprintf(s + off, len - off, "}}");
	return s;
}

static char *
nested_array(int n)
{
	char *s = malloc((size_t)n * 2 + 1);
	int i;

	assert_non_null(s);
	for (i = 0; i < n; i++) {
		s[i] = '[';
		s[n + i] = ']';
	}
	s[2 * n] = '\0';
	return s;
}

static void
test_depth(void **state)
{
	char *s, *a, expected[256];
	json_t *schema, *inst;

	(void)state;
	s = nested_schema(JSCHEMA_DEPTH_MAX);
	check_ok(s);
	free(s);
	s = nested_schema(JSCHEMA_DEPTH_MAX + 1);
	schema = load(s);
	assert_int_equal(jschema_check(schema, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "schema nested deeper than 32 levels"));
	assert_int_equal(strncmp(err, "/properties/a/properties/a/", 27), 0);
	json_decref(schema);
	free(s);

	/* The instance's depth counts even where no keyword looks. */
	a = nested_array(JSCHEMA_DEPTH_MAX + 1);
	valid("{}", a);
	free(a);
	a = nested_array(JSCHEMA_DEPTH_MAX + 2);
	schema = load("{}");
	inst = load(a);
	assert_int_equal(jschema_validate(schema, inst, err, sizeof(err)), -1);
	snprintf(expected, sizeof(expected), "%s: nested deeper than %d "
	    "levels", "/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0"
	    "/0/0/0/0/0/0", JSCHEMA_DEPTH_MAX);
	assert_string_equal(err, expected);
	json_decref(schema);
	json_decref(inst);
	free(a);

	/* Deep const and enum values are refused when checked. */
	a = nested_array(JSCHEMA_DEPTH_MAX + 2);
	/* asprintf: GCC's -Wformat-overflow does not see assert_non_null()
	 * and takes a malloc'ed buffer for NULL under -fsanitize. */
	assert_true(asprintf(&s, "{\"const\":%s}", a) > 0);
	check_fails(s, ": \"const\" nested deeper than 32 levels");
	free(s);
	assert_true(asprintf(&s, "{\"enum\":%s}", a) > 0);
	check_fails(s, ": \"enum\" nested deeper than 32 levels");
	free(s);
	free(a);
}

static void
test_long_path_truncated(void **state)
{
	char key[200], schema[1024], inst[1024];

	(void)state;
	memset(key, 'k', sizeof(key) - 1);
	key[sizeof(key) - 1] = '\0';
	snprintf(schema, sizeof(schema), "{\"properties\":{\"%s\":"
	    "{\"properties\":{\"%s\":{\"properties\":{\"%s\":{\"type\":"
	    "\"string\"}}}}}}}", key, key, key);
	snprintf(inst, sizeof(inst), "{\"%s\":{\"%s\":{\"%s\":1}}}", key, key,
	    key);
	assert_int_equal(run(schema, inst), -1);
	assert_non_null(strstr(err, "...: expected string, got integer"));
	assert_true(strlen(err) < sizeof(err));
}

static void
test_small_error_buffer(void **state)
{
	json_t *s = load("{\"type\":\"string\"}"), *i = load("1");
	char small[8];

	(void)state;
	assert_int_equal(jschema_validate(s, i, small, sizeof(small)), -1);
	assert_string_equal(small, "/: expe");
	assert_int_equal(jschema_validate(s, i, NULL, 0), -1);
	json_decref(s);
	json_decref(i);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_type),
		cmocka_unit_test(test_properties_required),
		cmocka_unit_test(test_additional_properties),
		cmocka_unit_test(test_items_nested_paths),
		cmocka_unit_test(test_enum_const),
		cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_string_lengths_unicode),
		cmocka_unit_test(test_pattern),
		cmocka_unit_test(test_pattern_expansion),
		cmocka_unit_test(test_arrays),
		cmocka_unit_test(test_object_sizes),
		cmocka_unit_test(test_combinators),
		cmocka_unit_test(test_ignored_and_unsupported),
		cmocka_unit_test(test_depth),
		cmocka_unit_test(test_long_path_truncated),
		cmocka_unit_test(test_small_error_buffer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
