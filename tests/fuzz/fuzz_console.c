/*
 * fuzz_console.c: libFuzzer target for the parsers of /console/v1 request
 * bodies and headers that need no context (front/console_parse.c), with
 * jansson behind them as the front uses it (front/console_routes.c).
 *
 * Byte 0 chooses the parser, the rest is its input:
 *   0  a JSON body: the nesting check, then json_loadb() with duplicate
 *      members refused. The check is compared with the real depth of
 *      what jansson parsed: it must let through exactly the documents no
 *      deeper than the bound (a false refusal is a bug, a deeper document
 *      let through would reach jansson's recursion).
 *   1  a Cookie header, looking for the session cookie;
 *   2  an unsigned query value, checked against its bounds;
 *   3  a budget id ("agent:NAME:cost:month").
 * Runs in the fuzzer only; touches nothing but memory.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "../../front/console_parse.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
depth_of(const json_t *v)
{
	const char	*key;
	json_t		*m;
	size_t		 i;
	int		 d, max = 0;

	if (json_is_object(v)) {
		json_object_foreach((json_t *)v, key, m)
			if ((d = depth_of(m)) > max)
				max = d;
		return max + 1;
	}
	if (json_is_array(v)) {
		json_array_foreach(v, i, m)
			if ((d = depth_of(m)) > max)
				max = d;
		return max + 1;
	}
	return 0;
}

static void
json_body(const char *text, size_t len)
{
	json_error_t	 jerr;
	json_t		*root;
	int		 ok;

	ok = fe_console_json_depth_ok(text, len, FE_CONSOLE_JSON_DEPTH_MAX);
	/* jansson's own bound (2048) is far above ours: parse regardless,
	 * only to compare. */
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY,
	    &jerr);
	if (root != NULL) {
		if (ok != (depth_of(root) <= FE_CONSOLE_JSON_DEPTH_MAX))
			abort();
		json_decref(root);
	}
}

static void
cookie(const char *text)
{
	char	 out[64];

	if (fe_console_cookie_value(text, "palyra_session", out,
	    sizeof(out)) == 0) {
		if (strlen(out) >= sizeof(out) || strstr(text,
		    "palyra_session=") == NULL || strstr(text, out) == NULL)
			abort();
	}
}

static void
query(const char *text)
{
	int64_t	 v;

	v = fe_console_query_uint(text, 1, 1000);
	if (v != -1 && (v < 1 || v > 1000))
		abort();
	v = fe_console_query_uint(text, 0, INT64_MAX);
	if (v < -1)
		abort();
}

static void
budget(const char *text)
{
	struct fe_budget_id	 id;

	if (fe_console_budget_id(text, &id) == 0) {
		if (memchr(id.subject, '\0', sizeof(id.subject)) == NULL ||
		    (id.subject[0] != '\0' && strstr(text, id.subject) ==
		    NULL))
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	*text;

	if (size == 0)
		return 0;
	/* The front hands these parsers NUL-terminated strings, but for the
	 * body, which has a length. */
	if ((text = malloc(size)) == NULL)
		return 0;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	switch (data[0] % 4) {
	case 0:
		json_body(text, size - 1);
		break;
	case 1:
		cookie(text);
		break;
	case 2:
		query(text);
		break;
	default:
		budget(text);
		break;
	}
	free(text);
	return 0;
}
