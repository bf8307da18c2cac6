/*
 * approvals_check.c: the checks of what approvals are made of: ids, tool
 * names, text (UTF-8 without control characters, as it goes into JSON
 * exports and logs) and a decision. Runs in palyra-journald (and its unit
 * test); touches only its arguments, which come from a worker or a
 * client: every byte is looked at, nothing is assumed.
 */
#include <stdint.h>
#include <string.h>

#include "approvals.h"

#define SCOPE(x) PALYRA__V1__APPROVAL_SCOPE__APPROVAL_SCOPE_##x
#define KIND(x) PALYRA__V1__APPROVAL_DECISION_KIND__APPROVAL_DECISION_##x

int
jnl_appr_id_valid(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (i >= APPR_ID_LEN || !((s[i] >= '0' && s[i] <= '9') ||
					    (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return i == APPR_ID_LEN;
}

int
jnl_appr_run_id_valid(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (i >= JNL_RUN_ID_MAX || !((s[i] >= '0' && s[i] <= '9') ||
					       (s[i] >= 'a' && s[i] <= 'z') ||
					       (s[i] >= 'A' && s[i] <= 'Z') ||
					       s[i] == '_' || s[i] == '-'))
			return 0;
	return i > 0;
}

int
jnl_appr_tool_name_valid(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (i >= APPR_TOOL_NAME_MAX ||
		    !((s[i] >= '0' && s[i] <= '9') ||
			(s[i] >= 'a' && s[i] <= 'z') ||
			(s[i] >= 'A' && s[i] <= 'Z') || s[i] == '_' ||
			s[i] == '-' || s[i] == '.'))
			return 0;
	return i > 0;
}

/* Well-formed UTF-8 without control characters other than tab and
 * newline: the text goes into JSON exports and logs. */
int
jnl_appr_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, n, k;
	uint32_t cp;

	while (i < len) {
		if (p[i] < 0x80) {
			if ((p[i] < 0x20 && p[i] != '\t' && p[i] != '\n') ||
			    p[i] == 0x7f)
				return 0;
			i++;
			continue;
		}
		if ((p[i] & 0xe0) == 0xc0) {
			n = 1;
			cp = p[i] & 0x1f;
		} else if ((p[i] & 0xf0) == 0xe0) {
			n = 2;
			cp = p[i] & 0x0f;
		} else if ((p[i] & 0xf8) == 0xf0) {
			n = 3;
			cp = p[i] & 0x07;
		} else
			return 0;
		if (i + n >= len)
			return 0;
		for (k = 1; k <= n; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (p[i + k] & 0x3f);
		}
		if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) ||
		    (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += n + 1;
	}
	return 1;
}

const char *
jnl_appr_decision_invalid(const Palyra__V1__ApprovalDecision *d)
{
	size_t len;

	if (d == NULL)
		return "decision missing";
	if (!jnl_appr_id_valid(d->approval_id))
		return "approval_id is not 32 lower-hex characters";
	if (d->decision != KIND(ALLOW) && d->decision != KIND(DENY))
		return "decision must be ALLOW or DENY";
	if ((int)d->scope < 0 || d->scope > SCOPE(TTL))
		return "unknown scope";
	if (d->decision == KIND(ALLOW) && d->scope == SCOPE(TTL) &&
	    (d->ttl_ms < APPR_TTL_MIN_MS || d->ttl_ms > APPR_TTL_MAX_MS))
		return "ttl_ms must be 1000 to 2592000000 for scope TTL";
	len = strnlen(d->reason, APPR_REASON_MAX + 1);
	if (len > APPR_REASON_MAX)
		return "reason longer than 1024 bytes";
	if (!jnl_appr_utf8_valid(d->reason, len))
		return "reason is not UTF-8 text";
	return NULL;
}
