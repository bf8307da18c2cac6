/*
 * jsonschema.c: the JSON Schema subset of jsonschema.h, used to check the
 * schemas of tools and to validate the arguments a model passes to them.
 * Runs in whichever process links it (palyra-worker for tool calls,
 * palyra-front for declarations); it touches nothing but the jansson
 * values it is given and the caller's error buffer.
 *
 * Both walks carry a depth counter and stop at JSCHEMA_DEPTH_MAX, so a
 * hostile schema or instance costs an error, never the stack. Patterns are
 * POSIX extended regular expressions compiled with regcomp(3); ECMA-262
 * syntax beyond that (lookaround, \d) is refused by regcomp or by the
 * check for back-references, which would make matching exponential; so is
 * a pattern whose repetitions would expand past JSCHEMA_PATTERN_NODES.
 */
#include <sys/types.h>

#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "jsonschema.h"

#define JSCHEMA_PATH_MAX	512
#define JSCHEMA_PATTERN_MAX	1024	/* bytes of a pattern */
#define JSCHEMA_PATTERN_NODES	10000	/* atoms once repetitions expand */
#define JSCHEMA_PATTERN_REPEAT	1000	/* the larger bound of {m,n} */
#define JSCHEMA_PATTERN_GROUPS	64	/* nested groups of a pattern */
#define JSCHEMA_UNIQUE_MAX	2048	/* items checked for uniqueItems */

struct walk {
	char		 path[JSCHEMA_PATH_MAX];
	size_t		 len;
	int		 truncated;	/* segments left out */
	char		*err;
	size_t		 errlen;
	int		 quiet;		/* inside anyOf/oneOf/not: no message */
	int		 root_slash;	/* print the root as "/" (instances) */
};

static const char *const type_names[] = {
	"object", "array", "string", "number", "integer", "boolean", "null",
};
#define NTYPES	(sizeof(type_names) / sizeof(type_names[0]))

/* Errors and paths */

static int
fail(struct walk *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
fail(struct walk *w, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (w->quiet > 0 || w->err == NULL || w->errlen == 0)
		return -1;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(w->err, w->errlen, "%s%s: %s",
	    w->len == 0 && w->root_slash ? "/" : w->path,
	    w->truncated ? "..." : "", msg);
	return -1;
}

/* Appends "/seg" (a JSON pointer segment, ~ and / escaped); returns what
 * to hand pop(): the length to restore, or SIZE_MAX when the path was too
 * long and the segment left out (the message then ends the path "..."). */
static size_t
push(struct walk *w, const char *seg)
{
	size_t saved = w->len;
	const char *s;

	if (w->truncated > 0)
		goto full;
	if (w->len + 1 >= sizeof(w->path))
		goto full;
	w->path[w->len++] = '/';
	for (s = seg; *s != '\0'; s++) {
		if (w->len + 2 >= sizeof(w->path))
			goto full;
		if (*s == '~' || *s == '/') {
			w->path[w->len++] = '~';
			w->path[w->len++] = *s == '~' ? '0' : '1';
		} else
			w->path[w->len++] = *s;
	}
	w->path[w->len] = '\0';
	return saved;
full:
	w->path[saved] = '\0';
	w->len = saved;
	w->truncated++;
	return SIZE_MAX;
}

static size_t
push_index(struct walk *w, size_t i)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%zu", i);
	return push(w, buf);
}

static void
pop(struct walk *w, size_t saved)
{
	if (saved == SIZE_MAX) {
		w->truncated--;
		return;
	}
	w->len = saved;
	w->path[saved] = '\0';
}

/* Values */

static int
is_count(const json_t *v)
{
	double d;

	if (json_is_integer(v))
		return json_integer_value(v) >= 0;
	if (!json_is_real(v))
		return 0;
	d = json_real_value(v);
	return d >= 0 && d <= 9007199254740992.0 && floor(d) == d;
}

static long long
count_value(const json_t *v)
{
	if (json_is_integer(v))
		return json_integer_value(v);
	return (long long)json_real_value(v);
}

static int
is_integral(const json_t *v)
{
	double d;

	if (json_is_integer(v))
		return 1;
	if (!json_is_real(v))
		return 0;
	d = json_real_value(v);
	return isfinite(d) && floor(d) == d;
}

/* -1, 0 or 1; exact when both are integers. */
static int
number_cmp(const json_t *a, const json_t *b)
{
	long long x, y;
	double dx, dy;

	if (json_is_integer(a) && json_is_integer(b)) {
		x = json_integer_value(a);
		y = json_integer_value(b);
		return x < y ? -1 : x > y;
	}
	dx = json_number_value(a);
	dy = json_number_value(b);
	return dx < dy ? -1 : dx > dy;
}

static void
format_number(const json_t *v, char *buf, size_t len)
{
	if (json_is_integer(v))
		snprintf(buf, len, "%lld", (long long)json_integer_value(v));
	else
		snprintf(buf, len, "%.17g", json_real_value(v));
}

/* JSON Schema equality: 1 and 1.0 are equal, objects ignore key order. */
static int
value_equal(const json_t *a, const json_t *b, int depth)
{
	const char *key;
	json_t *va;
	size_t i;

	if (depth > JSCHEMA_DEPTH_MAX * 2)
		return 0;
	if (json_is_number(a) && json_is_number(b))
		return number_cmp(a, b) == 0;
	if (json_typeof(a) != json_typeof(b))
		return 0;
	switch (json_typeof(a)) {
	case JSON_STRING:
		return json_string_length(a) == json_string_length(b) &&
		    memcmp(json_string_value(a), json_string_value(b),
		    json_string_length(a)) == 0;
	case JSON_ARRAY:
		if (json_array_size(a) != json_array_size(b))
			return 0;
		for (i = 0; i < json_array_size(a); i++)
			if (!value_equal(json_array_get(a, i),
			    json_array_get(b, i), depth + 1))
				return 0;
		return 1;
	case JSON_OBJECT:
		if (json_object_size(a) != json_object_size(b))
			return 0;
		json_object_foreach((json_t *)a, key, va) {
			const json_t *vb = json_object_get(b, key);

			if (vb == NULL || !value_equal(va, vb, depth + 1))
				return 0;
		}
		return 1;
	default:
		return 1;	/* true, false, null: same type, same value */
	}
}

/* The depth of a value, counted up to limit + 1. */
static int
value_depth(const json_t *v, int limit)
{
	const char *key;
	json_t *sub;
	size_t i;
	int d, max = 0;

	if (limit < 0)
		return 1;
	if (json_is_array(v)) {
		json_array_foreach(v, i, sub) {
			if ((d = value_depth(sub, limit - 1)) > max)
				max = d;
			if (max > limit)
				break;
		}
		return max + 1;
	}
	if (json_is_object(v)) {
		json_object_foreach((json_t *)v, key, sub) {
			if ((d = value_depth(sub, limit - 1)) > max)
				max = d;
			if (max > limit)
				break;
		}
		return max + 1;
	}
	return 0;
}

static const char *
instance_type(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "object";
	case JSON_ARRAY:
		return "array";
	case JSON_STRING:
		return "string";
	case JSON_INTEGER:
		return "integer";
	case JSON_REAL:
		return "number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "boolean";
	case JSON_NULL:
		break;
	}
	return "null";
}

static int
type_matches(const char *name, const json_t *v)
{
	if (strcmp(name, "object") == 0)
		return json_is_object(v);
	if (strcmp(name, "array") == 0)
		return json_is_array(v);
	if (strcmp(name, "string") == 0)
		return json_is_string(v);
	if (strcmp(name, "number") == 0)
		return json_is_number(v);
	if (strcmp(name, "integer") == 0)
		return is_integral(v);
	if (strcmp(name, "boolean") == 0)
		return json_is_boolean(v);
	return strcmp(name, "null") == 0 && json_is_null(v);
}

/* Code points of a UTF-8 string (jansson's strings are valid UTF-8). */
static size_t
utf8_length(const char *s, size_t bytes)
{
	size_t i, n = 0;

	for (i = 0; i < bytes; i++)
		if (((unsigned char)s[i] & 0xc0) != 0x80)
			n++;
	return n;
}

/*
 * Reads the interval at s ("{m}", "{m,}", "{m,n}", at most 5 digits
 * each): 1 with the copies regcomp() makes of its atom (the larger bound,
 * one more than m for an open one) and *end at the '}', else 0.
 */
static int
interval(const char *s, uint64_t *copies, const char **end)
{
	uint64_t n = 0;
	int digits = 0;

	for (s++; *s >= '0' && *s <= '9'; s++)
		if (++digits > 5)
			return 0;
		else
			n = n * 10 + (uint64_t)(*s - '0');
	if (digits == 0)
		return 0;
	*copies = n;
	if (*s == ',') {
		*copies = n + 1;
		for (s++, digits = 0, n = 0; *s >= '0' && *s <= '9'; s++)
			if (++digits > 5)
				return 0;
			else
				n = n * 10 + (uint64_t)(*s - '0');
		if (digits > 0)
			*copies = n;
	}
	if (*s != '}')
		return 0;
	*end = s;
	return 1;
}

/*
 * Whether regcomp() would build too large a tree for pattern. glibc copies
 * a subexpression once per count of a bounded repetition (a{2,9}: 9
 * copies) and once more for '+' (a+ is aa*), so stacked or nested
 * repetitions grow its tree exponentially: "a?+++..." of 100 bytes took
 * over a gigabyte (found by tests/fuzz/fuzz_jsonschema.c), as would
 * "((a{99}){99}){99}"; a long optional chain (x{1,9999}) takes seconds.
 * So a repetition of a repetition is refused, a count is at most
 * JSCHEMA_PATTERN_REPEAT, and the size of the expanded pattern (an atom
 * 1, a group the sum of its parts) at most JSCHEMA_PATTERN_NODES.
 * Malformed syntax is left for regcomp() to refuse.
 */
static int
pattern_too_big(const char *s)
{
	uint64_t group[JSCHEMA_PATTERN_GROUPS + 1], last = 0, copies;
	const char *end;
	int depth = 0, quantified = 0;

	group[0] = 0;
	for (; *s != '\0'; s++) {
		/* A repetition of a repetition ("a*+", "a{2}{3}") is
		 * undefined in POSIX and exponential in glibc. */
		if (quantified && (*s == '*' || *s == '+' || *s == '?' ||
		    (*s == '{' && interval(s, &copies, &end))))
			return 1;
		quantified = *s == '*' || *s == '+' || *s == '?' ||
		    (*s == '{' && interval(s, &copies, &end));
		switch (*s) {
		case '(':
			if (depth == JSCHEMA_PATTERN_GROUPS)
				return 1;
			group[++depth] = 0;
			last = 0;
			continue;
		case ')':
			if (depth == 0) {
				/* An unmatched ')' is an ordinary character
				 * to glibc. */
				last = 1;
				group[0] += 1;
				break;
			}
			last = group[depth--] + 1;
			group[depth] += last;
			break;
		case '*':
		case '?':
			continue;
		case '+':
			group[depth] += last;
			last *= 2;
			break;
		case '{':
			/* {m}, {m,} or {m,n}: as many copies as the larger
			 * bound, one more for an open one; anything else is
			 * an ordinary '{' or an error of regcomp(). */
			if (!interval(s, &copies, &s)) {
				last = 1;
				group[depth] += 1;
				break;
			}
			if (copies > JSCHEMA_PATTERN_REPEAT)
				return 1;
			if (copies < 1)
				copies = 1;
			group[depth] += last * (copies - 1);
			last *= copies;
			break;
		case '[':
			/* A bracket expression is one atom; "[]...]" and
			 * "[^]...]" hold a ']', "[:alpha:]" a class. An
			 * unterminated one is regcomp()'s error. */
			s++;
			if (*s == '^')
				s++;
			if (*s == ']')
				s++;
			for (; *s != '\0' && *s != ']'; s++)
				if (*s == '[' && (s[1] == ':' || s[1] == '.' ||
				    s[1] == '=') && (end = strchr(s + 2,
				    s[1])) != NULL && end[1] == ']')
					s = end + 1;
			if (*s == '\0')
				return 0;
			last = 1;
			group[depth] += 1;
			break;
		case '\\':
			if (s[1] != '\0')
				s++;
			/* FALLTHROUGH */
		default:
			last = 1;
			group[depth] += 1;
			break;
		}
		if (last > JSCHEMA_PATTERN_NODES || group[depth] >
		    JSCHEMA_PATTERN_NODES)
			return 1;
	}
	return 0;
}

static int
pattern_compile(const char *pattern, regex_t *re, char *why, size_t whylen)
{
	const char *s;
	int rc;

	if (strlen(pattern) > JSCHEMA_PATTERN_MAX) {
		snprintf(why, whylen, "longer than %d bytes",
		    JSCHEMA_PATTERN_MAX);
		return -1;
	}
	if (pattern_too_big(pattern)) {
		snprintf(why, whylen, "too complex (a repeated repetition, "
		    "a count over %d or more than %d atoms once expanded)",
		    JSCHEMA_PATTERN_REPEAT, JSCHEMA_PATTERN_NODES);
		return -1;
	}
	for (s = pattern; *s != '\0'; s++) {
		if (*s != '\\')
			continue;
		if (s[1] >= '1' && s[1] <= '9') {
			snprintf(why, whylen, "back-references are not "
			    "supported");
			return -1;
		}
		if (s[1] != '\0')
			s++;
	}
	if ((rc = regcomp(re, pattern, REG_EXTENDED | REG_NOSUB)) != 0) {
		regerror(rc, re, why, whylen);
		return -1;
	}
	return 0;
}

/* Checking a schema */

static int	check_schema(struct walk *, const json_t *, int depth);

static int
check_subschema(struct walk *w, const char *key, const json_t *v, int depth)
{
	size_t saved = push(w, key);
	int rc = check_schema(w, v, depth + 1);

	pop(w, saved);
	return rc;
}

static int
check_type(struct walk *w, const json_t *v)
{
	const json_t *item, *other;
	size_t i, j, k;

	if (json_is_string(v)) {
		for (k = 0; k < NTYPES; k++)
			if (strcmp(json_string_value(v), type_names[k]) == 0)
				return 0;
		return fail(w, "unknown type \"%s\"", json_string_value(v));
	}
	if (!json_is_array(v) || json_array_size(v) == 0)
		return fail(w, "\"type\" must be a type name or a non-empty "
		    "array of them");
	json_array_foreach(v, i, item) {
		if (!json_is_string(item))
			return fail(w, "\"type\" must be a type name or a "
			    "non-empty array of them");
		for (k = 0; k < NTYPES; k++)
			if (strcmp(json_string_value(item), type_names[k]) == 0)
				break;
		if (k == NTYPES)
			return fail(w, "unknown type \"%s\"",
			    json_string_value(item));
		for (j = 0; j < i; j++) {
			other = json_array_get(v, j);
			if (strcmp(json_string_value(other),
			    json_string_value(item)) == 0)
				return fail(w, "duplicate type \"%s\"",
				    json_string_value(item));
		}
	}
	return 0;
}

static int
check_schema_array(struct walk *w, const char *key, const json_t *v,
    int depth)
{
	const json_t *item;
	size_t i, saved, inner;

	if (!json_is_array(v) || json_array_size(v) == 0)
		return fail(w, "\"%s\" must be a non-empty array of schemas",
		    key);
	saved = push(w, key);
	json_array_foreach(v, i, item) {
		inner = push_index(w, i);
		if (check_schema(w, item, depth + 1) == -1)
			return -1;
		pop(w, inner);
	}
	pop(w, saved);
	return 0;
}

static int
check_keyword(struct walk *w, const char *key, const json_t *v, int depth)
{
	static const char *const ignored[] = {
		"title", "description", "default", "examples", "$schema",
		"$id", "$comment", "format",
	};
	static const char *const counts[] = {
		"minLength", "maxLength", "minItems", "maxItems",
		"minProperties", "maxProperties",
	};
	static const char *const bounds[] = {
		"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
	};
	const json_t *item, *other;
	const char *name;
	char why[128];
	regex_t re;
	size_t i, j, saved;

	for (i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++)
		if (strcmp(key, ignored[i]) == 0)
			return 0;
	for (i = 0; i < sizeof(counts) / sizeof(counts[0]); i++)
		if (strcmp(key, counts[i]) == 0)
			return is_count(v) ? 0 : fail(w, "\"%s\" must be a "
			    "non-negative integer", key);
	for (i = 0; i < sizeof(bounds) / sizeof(bounds[0]); i++)
		if (strcmp(key, bounds[i]) == 0)
			return json_is_number(v) ? 0 : fail(w, "\"%s\" must be "
			    "a number", key);
	if (strcmp(key, "type") == 0)
		return check_type(w, v);
	if (strcmp(key, "properties") == 0) {
		if (!json_is_object(v))
			return fail(w, "\"properties\" must be an object");
		saved = push(w, "properties");
		json_object_foreach((json_t *)v, name, item)
			if (check_subschema(w, name, item, depth) == -1)
				return -1;
		pop(w, saved);
		return 0;
	}
	if (strcmp(key, "required") == 0) {
		if (!json_is_array(v))
			return fail(w, "\"required\" must be an array of "
			    "strings");
		json_array_foreach(v, i, item) {
			if (!json_is_string(item))
				return fail(w, "\"required\" must be an array "
				    "of strings");
			for (j = 0; j < i; j++) {
				other = json_array_get(v, j);
				if (strcmp(json_string_value(other),
				    json_string_value(item)) == 0)
					return fail(w, "duplicate required "
					    "property \"%s\"",
					    json_string_value(item));
			}
		}
		return 0;
	}
	if (strcmp(key, "additionalProperties") == 0 ||
	    strcmp(key, "items") == 0 || strcmp(key, "not") == 0) {
		if (strcmp(key, "items") == 0 && json_is_array(v))
			return fail(w, "\"items\" must be a schema (the array "
			    "form is not supported)");
		return check_subschema(w, key, v, depth);
	}
	if (strcmp(key, "anyOf") == 0 || strcmp(key, "oneOf") == 0 ||
	    strcmp(key, "allOf") == 0)
		return check_schema_array(w, key, v, depth);
	if (strcmp(key, "enum") == 0) {
		if (!json_is_array(v) || json_array_size(v) == 0)
			return fail(w, "\"enum\" must be a non-empty array");
		if (value_depth(v, JSCHEMA_DEPTH_MAX) > JSCHEMA_DEPTH_MAX)
			return fail(w, "\"enum\" nested deeper than %d levels",
			    JSCHEMA_DEPTH_MAX);
		return 0;
	}
	if (strcmp(key, "const") == 0) {
		if (value_depth(v, JSCHEMA_DEPTH_MAX) > JSCHEMA_DEPTH_MAX)
			return fail(w, "\"const\" nested deeper than %d levels",
			    JSCHEMA_DEPTH_MAX);
		return 0;
	}
	if (strcmp(key, "uniqueItems") == 0)
		return json_is_boolean(v) ? 0 : fail(w, "\"uniqueItems\" must "
		    "be a boolean");
	if (strcmp(key, "pattern") == 0) {
		if (!json_is_string(v))
			return fail(w, "\"pattern\" must be a string");
		if (strlen(json_string_value(v)) != json_string_length(v))
			return fail(w, "\"pattern\" contains a NUL character");
		if (pattern_compile(json_string_value(v), &re, why,
		    sizeof(why)) == -1)
			return fail(w, "invalid pattern \"%s\": %s",
			    json_string_value(v), why);
		regfree(&re);
		return 0;
	}
	return fail(w, "unsupported keyword \"%s\"", key);
}

static int
check_schema(struct walk *w, const json_t *schema, int depth)
{
	const char *key;
	json_t *v;

	if (depth > JSCHEMA_DEPTH_MAX)
		return fail(w, "schema nested deeper than %d levels",
		    JSCHEMA_DEPTH_MAX);
	if (json_is_boolean(schema))
		return 0;
	if (!json_is_object(schema))
		return fail(w, "a schema must be an object or a boolean");
	json_object_foreach((json_t *)schema, key, v)
		if (check_keyword(w, key, v, depth) == -1)
			return -1;
	return 0;
}

int
jschema_check(const json_t *schema, char *err, size_t errlen)
{
	struct walk w;

	memset(&w, 0, sizeof(w));
	w.err = err;
	w.errlen = errlen;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (schema == NULL)
		return fail(&w, "no schema");
	return check_schema(&w, schema, 0);
}

/* Validating an instance */

static int	validate(struct walk *, const json_t *schema,
		    const json_t *instance, int depth);

static int
validate_type(struct walk *w, const json_t *type, const json_t *v)
{
	char expected[96];
	const json_t *item;
	size_t i, off = 0;
	int n;

	if (json_is_string(type)) {
		if (type_matches(json_string_value(type), v))
			return 0;
		return fail(w, "expected %s, got %s", json_string_value(type),
		    instance_type(v));
	}
	json_array_foreach(type, i, item)
		if (type_matches(json_string_value(item), v))
			return 0;
	expected[0] = '\0';
	json_array_foreach(type, i, item) {
		n = snprintf(expected + off, sizeof(expected) - off, "%s%s",
		    i == 0 ? "" : i + 1 == json_array_size(type) ? " or " :
		    ", ", json_string_value(item));
		if (n < 0 || (size_t)n >= sizeof(expected) - off)
			break;
		off += (size_t)n;
	}
	return fail(w, "expected %s, got %s", expected, instance_type(v));
}

static int
validate_number(struct walk *w, const json_t *schema, const json_t *v)
{
	const json_t *b;
	char have[40], limit[40];

	if (!json_is_number(v))
		return 0;
	format_number(v, have, sizeof(have));
	if ((b = json_object_get(schema, "minimum")) != NULL &&
	    number_cmp(v, b) < 0) {
		format_number(b, limit, sizeof(limit));
		return fail(w, "%s is less than the minimum %s", have, limit);
	}
	if ((b = json_object_get(schema, "maximum")) != NULL &&
	    number_cmp(v, b) > 0) {
		format_number(b, limit, sizeof(limit));
		return fail(w, "%s is greater than the maximum %s", have,
		    limit);
	}
	if ((b = json_object_get(schema, "exclusiveMinimum")) != NULL &&
	    number_cmp(v, b) <= 0) {
		format_number(b, limit, sizeof(limit));
		return fail(w, "%s is not greater than the exclusive minimum "
		    "%s", have, limit);
	}
	if ((b = json_object_get(schema, "exclusiveMaximum")) != NULL &&
	    number_cmp(v, b) >= 0) {
		format_number(b, limit, sizeof(limit));
		return fail(w, "%s is not less than the exclusive maximum %s",
		    have, limit);
	}
	return 0;
}

static int
validate_string(struct walk *w, const json_t *schema, const json_t *v)
{
	const json_t *b;
	regmatch_t m;
	regex_t re;
	char why[128];
	size_t n;
	int rc;

	if (!json_is_string(v))
		return 0;
	n = utf8_length(json_string_value(v), json_string_length(v));
	if ((b = json_object_get(schema, "minLength")) != NULL &&
	    n < (size_t)count_value(b))
		return fail(w, "string of %zu characters is shorter than the "
		    "minimum length %lld", n, count_value(b));
	if ((b = json_object_get(schema, "maxLength")) != NULL &&
	    n > (size_t)count_value(b))
		return fail(w, "string of %zu characters is longer than the "
		    "maximum length %lld", n, count_value(b));
	if ((b = json_object_get(schema, "pattern")) != NULL) {
		if (pattern_compile(json_string_value(b), &re, why,
		    sizeof(why)) == -1)
			return fail(w, "invalid pattern \"%s\": %s",
			    json_string_value(b), why);
		/* REG_STARTEND: the whole string, NUL characters included. */
		m.rm_so = 0;
		m.rm_eo = (regoff_t)json_string_length(v);
		rc = regexec(&re, json_string_value(v), 1, &m, REG_STARTEND);
		regfree(&re);
		if (rc != 0)
			return fail(w, "string does not match the pattern "
			    "\"%s\"", json_string_value(b));
	}
	return 0;
}

static int
validate_array(struct walk *w, const json_t *schema, const json_t *v,
    int depth)
{
	const json_t *b, *item;
	size_t i, j, n, saved;

	if (!json_is_array(v))
		return 0;
	n = json_array_size(v);
	if ((b = json_object_get(schema, "minItems")) != NULL &&
	    n < (size_t)count_value(b))
		return fail(w, "array of %zu items has fewer than the minimum "
		    "%lld", n, count_value(b));
	if ((b = json_object_get(schema, "maxItems")) != NULL &&
	    n > (size_t)count_value(b))
		return fail(w, "array of %zu items has more than the maximum "
		    "%lld", n, count_value(b));
	/* Pairwise, so bounded: a model's arguments must not buy seconds
	 * of a worker's loop. */
	if (json_is_true(json_object_get(schema, "uniqueItems")) &&
	    n > JSCHEMA_UNIQUE_MAX)
		return fail(w, "array of %zu items is too long for uniqueItems "
		    "(limit %d)", n, JSCHEMA_UNIQUE_MAX);
	if (json_is_true(json_object_get(schema, "uniqueItems")))
		for (i = 1; i < n; i++)
			for (j = 0; j < i; j++)
				if (value_equal(json_array_get(v, i),
				    json_array_get(v, j), 0))
					return fail(w, "items %zu and %zu are "
					    "equal (uniqueItems)", j, i);
	if ((b = json_object_get(schema, "items")) != NULL) {
		json_array_foreach(v, i, item) {
			saved = push_index(w, i);
			if (validate(w, b, item, depth + 1) == -1)
				return -1;
			pop(w, saved);
		}
	}
	return 0;
}

static int
validate_object(struct walk *w, const json_t *schema, const json_t *v,
    int depth)
{
	const json_t *b, *props, *additional, *sub, *item;
	const char *key;
	json_t *value;
	size_t i, n, saved;

	if (!json_is_object(v))
		return 0;
	n = json_object_size(v);
	if ((b = json_object_get(schema, "required")) != NULL)
		json_array_foreach(b, i, item)
			if (json_object_get(v, json_string_value(item)) == NULL)
				return fail(w, "missing required property "
				    "\"%s\"", json_string_value(item));
	if ((b = json_object_get(schema, "minProperties")) != NULL &&
	    n < (size_t)count_value(b))
		return fail(w, "object of %zu properties has fewer than the "
		    "minimum %lld", n, count_value(b));
	if ((b = json_object_get(schema, "maxProperties")) != NULL &&
	    n > (size_t)count_value(b))
		return fail(w, "object of %zu properties has more than the "
		    "maximum %lld", n, count_value(b));
	props = json_object_get(schema, "properties");
	additional = json_object_get(schema, "additionalProperties");
	json_object_foreach((json_t *)v, key, value) {
		sub = props != NULL ? json_object_get(props, key) : NULL;
		if (sub == NULL && json_is_false(additional))
			return fail(w, "property \"%s\" is not allowed", key);
		if (sub == NULL)
			sub = additional;
		if (sub == NULL)
			continue;
		saved = push(w, key);
		if (validate(w, sub, value, depth + 1) == -1)
			return -1;
		pop(w, saved);
	}
	return 0;
}

/* How many of the schemas of array a value matches (stops after stop). */
static size_t
count_matches(struct walk *w, const json_t *schemas, const json_t *v,
    int depth, size_t stop)
{
	const json_t *sub;
	size_t i, n = 0, len = w->len;
	int truncated = w->truncated, rc;

	w->quiet++;
	json_array_foreach(schemas, i, sub) {
		rc = validate(w, sub, v, depth + 1);
		/* A failure returns without popping what it pushed. */
		w->len = len;
		w->path[len] = '\0';
		w->truncated = truncated;
		if (rc == 0 && ++n >= stop)
			break;
	}
	w->quiet--;
	return n;
}

static int
validate_combinators(struct walk *w, const json_t *schema, const json_t *v,
    int depth)
{
	const json_t *b, *sub;
	size_t i, n;
	int rc, truncated;

	if ((b = json_object_get(schema, "allOf")) != NULL)
		json_array_foreach(b, i, sub)
			if (validate(w, sub, v, depth + 1) == -1)
				return -1;
	if ((b = json_object_get(schema, "anyOf")) != NULL &&
	    count_matches(w, b, v, depth, 1) == 0)
		return fail(w, "value matches none of the anyOf schemas");
	if ((b = json_object_get(schema, "oneOf")) != NULL) {
		n = count_matches(w, b, v, depth, 2);
		if (n == 0)
			return fail(w, "value matches none of the oneOf "
			    "schemas");
		if (n > 1)
			return fail(w, "value matches more than one of the "
			    "oneOf schemas");
	}
	if ((b = json_object_get(schema, "not")) != NULL) {
		n = w->len;
		truncated = w->truncated;
		w->quiet++;
		rc = validate(w, b, v, depth + 1);
		w->quiet--;
		w->len = n;
		w->path[n] = '\0';
		w->truncated = truncated;
		if (rc == 0)
			return fail(w, "value matches the \"not\" schema");
	}
	return 0;
}

static int
validate(struct walk *w, const json_t *schema, const json_t *v, int depth)
{
	const json_t *b;
	size_t i;

	if (depth > JSCHEMA_DEPTH_MAX)
		return fail(w, "nested deeper than %d levels",
		    JSCHEMA_DEPTH_MAX);
	if (json_is_true(schema))
		return 0;
	if (!json_is_object(schema))
		return fail(w, "no value is allowed here");
	if ((b = json_object_get(schema, "type")) != NULL &&
	    validate_type(w, b, v) == -1)
		return -1;
	if ((b = json_object_get(schema, "const")) != NULL &&
	    !value_equal(v, b, 0))
		return fail(w, "value is not the constant the schema requires");
	if ((b = json_object_get(schema, "enum")) != NULL) {
		for (i = 0; i < json_array_size(b); i++)
			if (value_equal(v, json_array_get(b, i), 0))
				break;
		if (i == json_array_size(b))
			return fail(w, "value is not one of the enumerated "
			    "values");
	}
	if (validate_number(w, schema, v) == -1 ||
	    validate_string(w, schema, v) == -1 ||
	    validate_array(w, schema, v, depth) == -1 ||
	    validate_object(w, schema, v, depth) == -1)
		return -1;
	return validate_combinators(w, schema, v, depth);
}

/* The instance's own depth, checked whole: parts no keyword visits too. */
static int
instance_depth(struct walk *w, const json_t *v, int depth)
{
	const char *key;
	json_t *sub;
	size_t i, saved;

	if (depth > JSCHEMA_DEPTH_MAX)
		return fail(w, "nested deeper than %d levels",
		    JSCHEMA_DEPTH_MAX);
	if (json_is_array(v))
		json_array_foreach(v, i, sub) {
			saved = push_index(w, i);
			if (instance_depth(w, sub, depth + 1) == -1)
				return -1;
			pop(w, saved);
		}
	else if (json_is_object(v))
		json_object_foreach((json_t *)v, key, sub) {
			saved = push(w, key);
			if (instance_depth(w, sub, depth + 1) == -1)
				return -1;
			pop(w, saved);
		}
	return 0;
}

int
jschema_validate(const json_t *schema, const json_t *instance, char *err,
    size_t errlen)
{
	struct walk w;

	memset(&w, 0, sizeof(w));
	w.err = err;
	w.errlen = errlen;
	w.root_slash = 1;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (schema == NULL || instance == NULL)
		return fail(&w, "no %s", schema == NULL ? "schema" :
		    "value");
	if (instance_depth(&w, instance, 0) == -1)
		return -1;
	return validate(&w, schema, instance, 0);
}
