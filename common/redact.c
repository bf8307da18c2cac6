/*
 * redact.c: redaction by value (common/redact.h), the field walk and the
 * replacement shared by palyra-journald and palyra-worker. Touches only the
 * memory it is given; every copy of text that held a value is wiped with
 * sodium_memzero before it is freed, and no value is ever logged.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "limits.h"
#include "redact.h"

static int
secret_longer_first(const void *a, const void *b)
{
	const struct redact_secret *x = a, *y = b;

	return x->len < y->len ? 1 : x->len > y->len ? -1 : 0;
}

void
redact_sort(struct redact_secret *set, size_t n)
{
	if (n > 1)
		qsort(set, n, sizeof(*set), secret_longer_first);
}

size_t
redact_event_fields(Palyra__V1__RunEvent *ev, char **fields[REDACT_FIELDS_MAX])
{
	size_t n = 0;

	switch (ev->event_case) {
	case PALYRA__V1__RUN_EVENT__EVENT_STATUS:
		fields[n++] = &ev->status->reason;
		break;
	case PALYRA__V1__RUN_EVENT__EVENT_TOKEN:
		fields[n++] = &ev->token->text;
		break;
	case PALYRA__V1__RUN_EVENT__EVENT_FINAL:
		fields[n++] = &ev->final->text;
		break;
	case PALYRA__V1__RUN_EVENT__EVENT_USAGE:
		fields[n++] = &ev->usage->provider;
		fields[n++] = &ev->usage->model;
		break;
	case PALYRA__V1__RUN_EVENT__EVENT_ERROR:
		fields[n++] = &ev->error->code;
		fields[n++] = &ev->error->message;
		break;
	case PALYRA__V1__RUN_EVENT__EVENT_NOTE:
		fields[n++] = &ev->note->text;
		break;
	case PALYRA__V1__RUN_EVENT__EVENT_TOOL_CALL:
		fields[n++] = &ev->tool_call->arguments_json;
		break;
	case PALYRA__V1__RUN_EVENT__EVENT_TOOL_RESULT:
		fields[n++] = &ev->tool_result->content;
		break;
	case PALYRA__V1__RUN_EVENT__EVENT_INPUT:
		fields[n++] = &ev->input->text;
		break;
	case PALYRA__V1__RUN_EVENT__EVENT_APPROVAL_REQUEST:
		fields[n++] = &ev->approval_request->arguments_summary;
		break;
	case PALYRA__V1__RUN_EVENT__EVENT_APPROVAL_DECIDED:
		fields[n++] = &ev->approval_decided->reason;
		break;
	case PALYRA__V1__RUN_EVENT__EVENT_BUDGET_WARNING:
		fields[n++] = &ev->budget_warning->message;
		break;
	default:
		break;
	}
	return n;
}

int
redact_text(const struct redact_secret *set, size_t nset, const char *s,
    size_t len, char **out, size_t *outlen)
{
	static const char mark[] = REDACT_MARK;
	const size_t marklen = sizeof(mark) - 1;
	char *cur = NULL, *next;
	const char *from, *hit, *src = s;
	size_t i, count, n, srclen = len;

	*out = NULL;
	*outlen = 0;
	for (i = 0; i < nset; i++) {
		const struct redact_secret *sec = &set[i];

		if (sec->len < JNL_SECRET_MIN_LEN || sec->len > srclen)
			continue;
		count = 0;
		for (from = src; (hit = memmem(from,
		    srclen - (size_t)(from - src), sec->value,
		    sec->len)) != NULL; from = hit + sec->len)
			count++;
		if (count == 0)
			continue;
		if ((next = malloc(srclen - count * sec->len +
		    count * marklen + 1)) == NULL) {
			if (cur != NULL) {
				sodium_memzero(cur, srclen);
				free(cur);
			}
			return -ENOMEM;
		}
		n = 0;
		for (from = src; (hit = memmem(from,
		    srclen - (size_t)(from - src), sec->value,
		    sec->len)) != NULL; from = hit + sec->len) {
			memcpy(next + n, from, (size_t)(hit - from));
			n += (size_t)(hit - from);
			memcpy(next + n, mark, marklen);
			n += marklen;
		}
		memcpy(next + n, from, srclen - (size_t)(from - src));
		n += srclen - (size_t)(from - src);
		next[n] = '\0';
		/* The intermediate copy held the value: wipe it. */
		if (cur != NULL) {
			sodium_memzero(cur, srclen);
			free(cur);
		}
		cur = next;
		src = cur;
		srclen = n;
	}
	if (cur == NULL)
		return 0;
	*out = cur;
	*outlen = srclen;
	return 1;
}

int
redact_string(const struct redact_secret *set, size_t n, char **s)
{
	char *out;
	size_t len, outlen;
	int rc;

	if (*s == NULL || (*s)[0] == '\0' || n == 0)
		return 0;
	len = strlen(*s);
	if ((rc = redact_text(set, n, *s, len, &out, &outlen)) <= 0)
		return rc;
	/* The old text held the value: wipe it before it goes. */
	sodium_memzero(*s, len);
	free(*s);
	*s = out;
	return 1;
}

int
redact_event(const struct redact_secret *set, size_t n,
    Palyra__V1__RunEvent *ev)
{
	char **fields[REDACT_FIELDS_MAX];
	size_t i, nfields;
	int rc, changed = 0;

	if (n == 0)
		return 0;
	nfields = redact_event_fields(ev, fields);
	for (i = 0; i < nfields; i++) {
		if ((rc = redact_string(set, n, fields[i])) < 0)
			return rc;
		changed |= rc;
	}
	return changed;
}

size_t
redact_hold(const struct redact_secret *set, size_t n, const char *s,
    size_t len)
{
	size_t i, k, best = 0;

	for (i = 0; i < n; i++) {
		const struct redact_secret *sec = &set[i];

		if (sec->len < JNL_SECRET_MIN_LEN)
			continue;
		/* Longest first: k below the value's length, above best. */
		for (k = sec->len - 1 < len ? sec->len - 1 : len; k > best;
		    k--)
			if (memcmp(s + len - k, sec->value, k) == 0) {
				best = k;
				break;
			}
	}
	return best;
}
