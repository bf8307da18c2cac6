/*
 * fuzz_jsonschema.c: libFuzzer target for the JSON Schema subset that
 * checks tool arguments (common/jsonschema.c).
 *
 * Input: a schema, a NUL byte, an instance (both JSON texts). A schema
 * jschema_check() refuses must say where and why; the instance is then
 * validated against every schema it accepts, which must answer valid or
 * a "PATH: message" error, whatever the nesting of either.
 * Runs in the fuzzer only; touches nothing but memory.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "jsonschema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t	*nul;
	json_t		*schema, *instance;
	size_t		 slen;
	char		 err[256];
	int		 rc;

	nul = memchr(data, '\0', size);
	slen = nul != NULL ? (size_t)(nul - data) : size;
	schema = json_loadb((const char *)data, slen, JSON_DECODE_ANY, NULL);
	if (schema == NULL)
		return 0;
	err[0] = '\0';
	if (jschema_check(schema, err, sizeof(err)) != 0) {
		if (err[0] == '\0')
			abort();
		json_decref(schema);
		return 0;
	}
	instance = nul != NULL ? json_loadb((const char *)nul + 1,
	    size - slen - 1, JSON_DECODE_ANY, NULL) : json_null();
	if (instance != NULL) {
		err[0] = '\0';
		rc = jschema_validate(schema, instance, err, sizeof(err));
		if ((rc != 0 && rc != -1) || (rc == -1 && err[0] == '\0'))
			abort();
		json_decref(instance);
	}
	json_decref(schema);
	return 0;
}
