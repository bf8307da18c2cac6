/*
 * fuzz_export.c: libFuzzer target for the approvals export verifier of
 * palyractl (ctl/export_verify.c), which reads a file a user was handed.
 *
 * Byte 0 chooses the mode; the rest is its input.
 *   even  an export file: one line at a time, then the end. Whatever the
 *         lines, the verifier answers 0 or "LINE: why".
 *   odd   a record R: the line {"record":R,"sha256":H,"chain":C} is built
 *         with the right H and C, as palyra-journald writes it, then its
 *         end line. When R is a JSON object (as jansson reads it), the
 *         verifier must accept both lines: its own scan for the record's
 *         raw bytes must agree with the JSON parser on every R.
 * Runs in the fuzzer only; touches nothing but memory.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../ctl/export_verify.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
whole_file(const char *p, size_t len)
{
	struct ctl_export_verifier	 v;
	const char			*nl;
	size_t				 n;
	int				 rc = 0;

	ctl_export_verifier_init(&v);
	while (len > 0 && rc == 0) {
		nl = memchr(p, '\n', len);
		n = nl != NULL ? (size_t)(nl - p) : len;
		rc = ctl_export_verifier_line(&v, p, n);
		if (nl == NULL)
			break;
		p += n + 1;
		len -= n + 1;
	}
	if (rc == 0)
		rc = ctl_export_verifier_finish(&v);
	if ((rc != 0 && rc != -1) || (rc == -1 && v.error[0] == '\0'))
		abort();
}

static void
built_line(const char *rec, size_t len)
{
	struct ctl_export_verifier	 v;
	uint8_t				 digest[32], buf[64], chain[32];
	char				 h[65], c[65], *line, end[160];
	json_t				*obj;
	int				 n, is_object;

	/* Newlines end lines; a record never holds one raw, nor a NUL
	 * (which jansson reads as the end of the text). */
	if (memchr(rec, '\n', len) != NULL || memchr(rec, '\0', len) != NULL)
		return;
	/* The record's bytes are hashed as written, from its first byte to
	 * its last: whitespace around it is the line's, not the record's. */
	if (len == 0 || strchr(" \t\r", rec[0]) != NULL ||
	    strchr(" \t\r", rec[len - 1]) != NULL)
		return;
	obj = json_loadb(rec, len, JSON_REJECT_DUPLICATES, NULL);
	is_object = json_is_object(obj);
	json_decref(obj);
	if (sha256(rec, len, digest) < 0)
		abort();
	ctl_hex(digest, 32, h);
	memset(buf, 0, 32);
	memcpy(buf + 32, digest, 32);
	if (sha256(buf, sizeof(buf), chain) < 0)
		abort();
	ctl_hex(chain, 32, c);
	if ((line = malloc(len + 200)) == NULL)
		return;
	n = snprintf(line, len + 200, "{\"record\":%.*s,\"sha256\":\"%s\","
	    "\"chain\":\"%s\"}", (int)len, rec, h, c);
	ctl_export_verifier_init(&v);
	if (ctl_export_verifier_line(&v, line, (size_t)n) == 0) {
		if (v.count != 1)
			abort();
		snprintf(end, sizeof(end),
		    "{\"end\":{\"count\":1,\"chain\":\"%s\"}}", c);
		if (ctl_export_verifier_line(&v, end, strlen(end)) != 0 ||
		    ctl_export_verifier_finish(&v) != 0)
			abort();
	} else if (is_object)
		abort();
	free(line);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0 || size > 64 * 1024)
		return 0;
	if (data[0] % 2 == 0)
		whole_file((const char *)data + 1, size - 1);
	else
		built_line((const char *)data + 1, size - 1);
	return 0;
}
