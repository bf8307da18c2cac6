/*
 * jsonschema.h: validation of tool arguments against the JSON schemas of
 * tools (built-in and client-declared), the subset of JSON Schema (draft
 * 2020-12) that function-calling APIs use:
 *   type (a name or an array of names: object, array, string, number,
 *   integer, boolean, null), properties, required, additionalProperties
 *   (boolean or schema), items (schema), enum, const, minimum, maximum,
 *   exclusiveMinimum, exclusiveMaximum, minLength, maxLength (in code
 *   points), pattern (POSIX extended regex, unanchored), minItems,
 *   maxItems, uniqueItems, minProperties, maxProperties, anyOf, oneOf,
 *   allOf, not; title, description, default, examples, $schema, $id,
 *   $comment and format are accepted and ignored. Any other keyword makes
 *   the schema unsupported (checked when a client declares a tool, so a
 *   schema never silently validates less than it says).
 * Both functions are bounded: nesting deeper than JSCHEMA_DEPTH_MAX in the
 * schema or the instance is an error, not a recursion.
 */
#ifndef PALYRA_JSONSCHEMA_H
#define PALYRA_JSONSCHEMA_H

#include <stddef.h>

#include <jansson.h>

#define JSCHEMA_DEPTH_MAX	32

/* Checks that schema is a schema this validator supports. Returns 0, or -1
 * with "PATH: message" in err (PATH a JSON pointer into the schema, "" for
 * the root, e.g. "/properties/url: unsupported keyword \"$ref\""). */
int	jschema_check(const json_t *schema, char *err, size_t errlen);

/* Validates instance against schema (which passed jschema_check). Returns
 * 0 when valid, or -1 with "PATH: message" in err naming the first
 * violation (PATH a JSON pointer into the instance, e.g.
 * "/url: expected string, got number", "/: missing required property
 * \"url\""). */
int	jschema_validate(const json_t *schema, const json_t *instance,
	    char *err, size_t errlen);

#endif
