/*
 * fuzz_config.c: libFuzzer target for the palyrad.conf parser
 * (common/config*.c) through cfg_parse_buffer().
 *
 * The input is a configuration file. The parser must accept it or refuse
 * it with a "FILE:LINE:COL: message" error; an accepted configuration is
 * printed back (cfg_dump, as palyrad -n -v does) and freed. Relative
 * includes resolve in an empty temporary directory; an absolute include
 * reads that file, as the real parser would, and is refused when it is
 * not a configuration.
 * Runs in the fuzzer only; reads the files the input includes, writes
 * nothing but /dev/null.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char	 base[] = "/tmp/palyra-fuzz-config.XXXXXX";
static FILE	*null_out;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cfg	*cfg = NULL;
	char		 err[512];

	if (null_out == NULL) {
		if (mkdtemp(base) == NULL ||
		    (null_out = fopen("/dev/null", "w")) == NULL)
			abort();
	}
	err[0] = '\0';
	if (cfg_parse_buffer("fuzz.conf", (const char *)data, size, base,
	    &cfg, err, sizeof(err)) == 0) {
		if (cfg == NULL)
			abort();
		cfg_dump(cfg, null_out);
		cfg_free(cfg);
	} else {
		/* A refusal always says where and why. */
		if (cfg != NULL || err[0] == '\0' || memchr(err, '\0',
		    sizeof(err)) == NULL)
			abort();
	}
	return 0;
}
