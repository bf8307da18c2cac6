/*
 * approvals_export.c: the line format of ApprovalsService.ExportApprovals
 * (gateway.proto ExportChunk). Runs in palyra-journald (and its unit
 * test); touches only its arguments.
 *
 * A record is the approval as one JSON object in compact form with sorted
 * keys (jansson), so that equal approvals always give equal bytes. Its
 * line is built by hand around those bytes, never re-encoded:
 *
 *   {"record":R,"sha256":"H","chain":"C"}
 *
 * H = hex(SHA-256(R)), C = hex(SHA-256(previous chain raw || H raw)), the
 * chain before the first line being 32 zero bytes. The suffix after R has
 * a fixed length, so a verifier finds R's bytes without a JSON parser of
 * its own. The export ends with {"end":{"count":N,"chain":"C"}}.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "approvals.h"

static const char *const state_names[] = {
    [PALYRA__V1__APPROVAL_STATE__APPROVAL_STATE_UNSPECIFIED] = "UNSPECIFIED",
    [PALYRA__V1__APPROVAL_STATE__APPROVAL_STATE_PENDING] = "PENDING",
    [PALYRA__V1__APPROVAL_STATE__APPROVAL_STATE_ALLOWED] = "ALLOWED",
    [PALYRA__V1__APPROVAL_STATE__APPROVAL_STATE_DENIED] = "DENIED",
    [PALYRA__V1__APPROVAL_STATE__APPROVAL_STATE_EXPIRED] = "EXPIRED",
};

static const char *const scope_names[] = {
    [PALYRA__V1__APPROVAL_SCOPE__APPROVAL_SCOPE_UNSPECIFIED] = "",
    [PALYRA__V1__APPROVAL_SCOPE__APPROVAL_SCOPE_ONCE] = "ONCE",
    [PALYRA__V1__APPROVAL_SCOPE__APPROVAL_SCOPE_SESSION] = "SESSION",
    [PALYRA__V1__APPROVAL_SCOPE__APPROVAL_SCOPE_TTL] = "TTL",
};

/*
 * A JSON string of s. Text that is not UTF-8 (refused when stored, but a
 * record is exported whatever it holds) has each stray byte replaced by
 * '?', so that the export stays valid JSON.
 */
static json_t *
text(const char *s)
{
	json_t *j;
	char *copy;
	size_t i, len;

	if (s == NULL)
		s = "";
	if ((j = json_string(s)) != NULL)
		return j;
	len = strlen(s);
	if ((copy = malloc(len + 1)) == NULL)
		return NULL;
	for (i = 0; i < len; i++)
		copy[i] = (unsigned char)s[i] < 0x80 ? s[i] : '?';
	copy[len] = '\0';
	j = json_string(copy);
	free(copy);
	return j;
}

char *
jnl_export_record(const Palyra__V1__Approval *a)
{
	json_t *o;
	char *out = NULL;
	int bad = 0;
	unsigned state = (unsigned)a->state, scope = (unsigned)a->scope;

	if (state >= sizeof(state_names) / sizeof(state_names[0]))
		state = 0;
	if (scope >= sizeof(scope_names) / sizeof(scope_names[0]))
		scope = 0;
	if ((o = json_object()) == NULL)
		return NULL;
	bad |= json_object_set_new(o, "approval_id", text(a->approval_id));
	bad |= json_object_set_new(o, "run_id", text(a->run_id));
	bad |= json_object_set_new(o, "session_id", text(a->session_id));
	bad |= json_object_set_new(o, "principal", text(a->principal));
	bad |= json_object_set_new(o, "agent", text(a->agent));
	bad |= json_object_set_new(o, "tool_call_id", text(a->tool_call_id));
	bad |= json_object_set_new(o, "tool_name", text(a->tool_name));
	bad |= json_object_set_new(
	    o, "arguments_summary", text(a->arguments_summary));
	bad |= json_object_set_new(o, "state", json_string(state_names[state]));
	bad |= json_object_set_new(o, "scope", json_string(scope_names[scope]));
	bad |= json_object_set_new(o, "decided_by", text(a->decided_by));
	bad |= json_object_set_new(o, "reason", text(a->reason));
	bad |= json_object_set_new(
	    o, "created_unix_ms", json_integer(a->created_unix_ms));
	bad |= json_object_set_new(
	    o, "expires_unix_ms", json_integer(a->expires_unix_ms));
	bad |= json_object_set_new(
	    o, "decided_unix_ms", json_integer(a->decided_unix_ms));
	bad |= json_object_set_new(o, "grant_id", text(a->grant_id));
	if (bad == 0)
		out = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	return out;
}

static void
hex(const uint8_t *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

int
jnl_export_line(const char *record, uint8_t chain[APPR_SHA256_LEN], char **line,
    size_t *len)
{
	static const char head[] = "{\"record\":";
	uint8_t digest[APPR_SHA256_LEN], link[2 * APPR_SHA256_LEN];
	char digest_hex[2 * APPR_SHA256_LEN + 1];
	char chain_hex[2 * APPR_SHA256_LEN + 1];
	size_t rlen = strlen(record), size;
	char *out;
	int n;

	crypto_hash_sha256(digest, (const unsigned char *)record, rlen);
	memcpy(link, chain, APPR_SHA256_LEN);
	memcpy(link + APPR_SHA256_LEN, digest, APPR_SHA256_LEN);
	crypto_hash_sha256(chain, link, sizeof(link));
	hex(digest, APPR_SHA256_LEN, digest_hex);
	hex(chain, APPR_SHA256_LEN, chain_hex);
	/* head, R, ,"sha256":"H","chain":"C"} and the newline. */
	size = sizeof(head) - 1 + rlen + 11 + 64 + 11 + 64 + 3 + 1;
	if ((out = malloc(size)) == NULL)
		return -ENOMEM;
	n = snprintf(out, size, "%s%s,\"sha256\":\"%s\",\"chain\":\"%s\"}\n",
	    head, record, digest_hex, chain_hex);
	if (n < 0 || (size_t)n >= size) {
		free(out);
		return -ENOMEM;
	}
	*line = out;
	*len = (size_t)n;
	return 0;
}

int
jnl_export_end(uint64_t count, const uint8_t chain[APPR_SHA256_LEN],
    char **line, size_t *len)
{
	char chain_hex[2 * APPR_SHA256_LEN + 1];
	char *out;
	int n;

	hex(chain, APPR_SHA256_LEN, chain_hex);
	n = asprintf(&out,
	    "{\"end\":{\"count\":%" PRIu64 ",\"chain\":\"%s\"}}\n", count,
	    chain_hex);
	if (n < 0)
		return -ENOMEM;
	*line = out;
	*len = (size_t)n;
	return 0;
}
