/*
 * export_verify.c: the verifier of approval exports (gateway.proto
 * ExportChunk), for `palyractl approvals verify-export FILE` and for
 * `approvals export`, which checks what it receives as it writes it.
 *
 * Runs in palyractl, on a file or a stream from the server: untrusted
 * bytes. Each line is parsed whole by jansson; its SHA-256 and chain are
 * recomputed with OpenSSL. Nothing is allocated beyond what jansson holds
 * for one line, and lines are bounded by their callers
 * (CTL_EXPORT_LINE_MAX).
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "ctl.h"

/*
 * The export verifier (gateway.proto ExportChunk). Each record line is
 * {"record":R,"sha256":"H","chain":"C"}: H is the SHA-256 of R's bytes as
 * they stand in the line, C = SHA-256(previous C || H), raw, from 32 zero
 * bytes. The last line is {"end":{"count":N,"chain":"C"}}. The raw bytes
 * of R are found by a scan of the line's top-level object, so the order of
 * its keys and white space between them do not matter; the line as a whole
 * must also be valid JSON (jansson).
 */

void
ctl_export_verifier_init(struct ctl_export_verifier *v)
{
	memset(v, 0, sizeof(*v));
}

int
ctl_export_verifier_fail(struct ctl_export_verifier *v, const char *why)
{
	snprintf(v->error, sizeof(v->error), "%lu: %s", v->line, why);
	return -1;
}

static size_t
skip_ws(const char *s, size_t i, size_t len)
{
	while (i < len &&
	       (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n'))
		i++;
	return i;
}

/* The end of the JSON string starting at s[i] == '"', or 0. */
static size_t
scan_string(const char *s, size_t i, size_t len)
{
	for (i++; i < len; i++) {
		if (s[i] == '\\')
			i++;
		else if (s[i] == '"')
			return i + 1;
	}
	return 0;
}

/* The end of the JSON value starting at s[i], or 0 (jansson checks the
 * grammar afterwards; this only needs to find where the value ends). */
static size_t
scan_value(const char *s, size_t i, size_t len)
{
	size_t depth = 0, end;

	if (i >= len)
		return 0;
	if (s[i] == '"')
		return scan_string(s, i, len);
	if (s[i] != '{' && s[i] != '[') {
		while (i < len && s[i] != ',' && s[i] != '}' && s[i] != ']' &&
		       s[i] != ' ' && s[i] != '\t')
			i++;
		return i;
	}
	for (; i < len; i++) {
		if (s[i] == '"') {
			if ((end = scan_string(s, i, len)) == 0)
				return 0;
			i = end - 1;
		} else if (s[i] == '{' || s[i] == '[')
			depth++;
		else if (s[i] == '}' || s[i] == ']') {
			if (--depth == 0)
				return i + 1;
		}
	}
	return 0;
}

/* Finds the raw bytes of the top-level member "record" of line. */
static int
find_record(const char *line, size_t len, size_t *start, size_t *end)
{
	size_t i, k, kend, vend;
	int found = 0;

	i = skip_ws(line, 0, len);
	if (i >= len || line[i] != '{')
		return -1;
	i = skip_ws(line, i + 1, len);
	while (i < len && line[i] == '"') {
		if ((kend = scan_string(line, i, len)) == 0)
			return -1;
		k = i;
		i = skip_ws(line, kend, len);
		if (i >= len || line[i] != ':')
			return -1;
		i = skip_ws(line, i + 1, len);
		if ((vend = scan_value(line, i, len)) == 0)
			return -1;
		if (kend - k == 8 && memcmp(line + k, "\"record\"", 8) == 0) {
			if (found++)
				return -1;
			*start = i;
			*end = vend;
		}
		i = skip_ws(line, vend, len);
		if (i < len && line[i] == ',')
			i = skip_ws(line, i + 1, len);
	}
	return found == 1 ? 0 : -1;
}

void
ctl_hex(const uint8_t *in, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = hex[in[i] >> 4];
		out[2 * i + 1] = hex[in[i] & 15];
	}
	out[2 * n] = '\0';
}

static int
sha256(const void *data, size_t len, uint8_t out[32])
{
	unsigned int n = 0;

	if (EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) != 1 || n != 32)
		return -1;
	return 0;
}

static int
verify_end(struct ctl_export_verifier *v, json_t *end)
{
	json_t *count = json_object_get(end, "count");
	const char *chain = json_string_value(json_object_get(end, "chain"));
	char hex[65], msg[256];

	if (!json_is_object(end) || !json_is_integer(count) || chain == NULL ||
	    json_object_size(end) != 2)
		return ctl_export_verifier_fail(v,
		    "malformed end line (want "
		    "{\"end\":{\"count\":N,\"chain\":\"C\"}})");
	if (json_integer_value(count) < 0 ||
	    (uint64_t)json_integer_value(count) != v->count) {
		snprintf(msg, sizeof(msg),
		    "the end line counts %lld records, "
		    "the file holds %llu",
		    (long long)json_integer_value(count),
		    (unsigned long long)v->count);
		return ctl_export_verifier_fail(v, msg);
	}
	ctl_hex(v->chain, 32, hex);
	if (strcmp(chain, hex) != 0) {
		snprintf(msg, sizeof(msg),
		    "the end line's chain is not the "
		    "last record's (%s)",
		    hex);
		return ctl_export_verifier_fail(v, msg);
	}
	v->ended = 1;
	return 0;
}

/* Checks one line (without its newline). Returns 0 or -1 (v->error). */
int
ctl_export_verifier_line(
    struct ctl_export_verifier *v, const char *line, size_t len)
{
	json_error_t jerr;
	json_t *root;
	const char *h, *c;
	uint8_t digest[32], buf[64], next[32];
	char hex[65], msg[256];
	size_t rs, re;
	int rc = -1;

	v->line++;
	if (v->ended)
		return ctl_export_verifier_fail(v, "data after the end line");
	if (len == 0)
		return ctl_export_verifier_fail(v, "empty line");
	if ((root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr)) ==
		NULL ||
	    !json_is_object(root)) {
		json_decref(root);
		return ctl_export_verifier_fail(v, "not a JSON object");
	}
	if (json_object_get(root, "end") != NULL) {
		rc = json_object_size(root) == 1
			 ? verify_end(v, json_object_get(root, "end"))
			 : ctl_export_verifier_fail(v, "malformed end line");
		json_decref(root);
		return rc;
	}
	h = json_string_value(json_object_get(root, "sha256"));
	c = json_string_value(json_object_get(root, "chain"));
	if (!json_is_object(json_object_get(root, "record")) || h == NULL ||
	    c == NULL || json_object_size(root) != 3 ||
	    find_record(line, len, &rs, &re) < 0) {
		ctl_export_verifier_fail(v,
		    "malformed record line (want "
		    "{\"record\":R,\"sha256\":\"H\",\"chain\":\"C\"})");
		goto out;
	}
	if (sha256(line + rs, re - rs, digest) < 0) {
		ctl_export_verifier_fail(v, "SHA-256 failed");
		goto out;
	}
	ctl_hex(digest, 32, hex);
	if (strcmp(h, hex) != 0) {
		snprintf(msg, sizeof(msg),
		    "sha256 does not match the record "
		    "(the record was changed; its SHA-256 is %s)",
		    hex);
		ctl_export_verifier_fail(v, msg);
		goto out;
	}
	memcpy(buf, v->chain, 32);
	memcpy(buf + 32, digest, 32);
	if (sha256(buf, sizeof(buf), next) < 0) {
		ctl_export_verifier_fail(v, "SHA-256 failed");
		goto out;
	}
	ctl_hex(next, 32, hex);
	if (strcmp(c, hex) != 0) {
		snprintf(msg, sizeof(msg),
		    "chain does not follow from the "
		    "previous line (a line was removed, added or moved; "
		    "expected %s)",
		    hex);
		ctl_export_verifier_fail(v, msg);
		goto out;
	}
	memcpy(v->chain, next, 32);
	v->count++;
	rc = 0;
out:
	json_decref(root);
	return rc;
}

int
ctl_export_verifier_finish(struct ctl_export_verifier *v)
{
	if (v->ended)
		return 0;
	v->line++;
	return ctl_export_verifier_fail(
	    v, "no end line: the export is truncated");
}
