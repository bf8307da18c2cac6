/*
 * vault_redact.c: redaction of the tenant's vault values by value in
 * palyra-worker (DESIGN section 8). Journald redacts what it knows (the
 * supervisor's provider credentials); vault values only the tenant's
 * worker can read, so the worker redacts them before anything leaves it:
 *
 *   - every event it appends (append.c calls wrk_vault_redact_begin and
 *     wrk_vault_redact_fields from wrk_emit): the string fields that
 *     common/redact.c's field walk names (status reason, token, final,
 *     note and input text, tool call arguments, tool result content, error
 *     message, approval summary and reason, budget warning message); the
 *     client gets the event as journald committed it, so redacted too;
 *   - approval argument summaries stored with an approval record
 *     (toolgate.c, wrk_vault_redact_string);
 *   - text other modules send out of the worker (wrk_vault_redact_text:
 *     memory items).
 *
 * Rules are common/redact.c's: values of at least JNL_SECRET_MIN_LEN bytes,
 * longest first, each occurrence replaced by REDACT_MARK. Not redacted:
 * identifiers (run, session, tool call ids and names) and the provider and
 * model names of usage events, which come from the configuration; a value
 * shorter than JNL_SECRET_MIN_LEN bytes.
 *
 * A value split across two model tokens is handled with a carry-over: the
 * longest tail of a token that is the beginning of a value is held back
 * and put before the next token, so the value is whole in one event; the
 * tail held back goes out (redacted) before the run's next event of any
 * other kind. A client therefore sees such a tail one token late, never a
 * value. The text a provider is sent (tool results fed back to the model)
 * is not redacted: the model needs it.
 *
 * Touches: the context's vault (read only) and the events and runs it is
 * handed; wipes every copy of text that held a value.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "log.h"
#include "vault.h"

void
wrk_vault_set_rebuild(struct wrk_vault *v)
{
	size_t	 i;

	v->nset = 0;
	for (i = 0; i < v->nvalues; i++) {
		if (v->values[i].len < JNL_SECRET_MIN_LEN)
			continue;
		v->set[v->nset].value = v->values[i].value;
		v->set[v->nset].len = v->values[i].len;
		v->nset++;
	}
	redact_sort(v->set, v->nset);
}

static size_t
set_size(const struct wrk_ctx *ctx, const struct redact_secret **set)
{
	if (ctx->vault == NULL) {
		*set = NULL;
		return 0;
	}
	*set = ctx->vault->set;
	return ctx->vault->nset;
}

char *
wrk_vault_redact_text(struct wrk_ctx *ctx, const char *text)
{
	const struct redact_secret *set;
	size_t	 n = set_size(ctx, &set), outlen;
	char	*out;
	int	 r;

	if ((r = redact_text(set, n, text, strlen(text), &out, &outlen)) < 0)
		return NULL;
	return r == 1 ? out : strdup(text);
}

int
wrk_vault_redact_string(struct wrk_ctx *ctx, char **s)
{
	const struct redact_secret *set;
	size_t	 n = set_size(ctx, &set);

	return redact_string(set, n, s);
}

static void
carry_clear(struct wrk_run *run)
{
	if (run->vault_carry != NULL) {
		sodium_memzero(run->vault_carry, strlen(run->vault_carry));
		free(run->vault_carry);
	}
	run->vault_carry = NULL;
}

void
wrk_vault_run_free(struct wrk_run *run)
{
	carry_clear(run);
}

/* A token: the carry before it, redacted, its own tail held back.
 * Returns 0, 1 (all of it held back: nothing to send) or -ENOMEM. */
static int
token_carry(struct wrk_run *run, struct wrk_event *ev)
{
	const struct redact_secret *set;
	size_t	 n = set_size(run->ctx, &set), clen, tlen, len, outlen;
	size_t	 hold;
	char	*text, *out;
	int	 r;

	if (n == 0 && run->vault_carry == NULL)
		return 0;
	clen = run->vault_carry != NULL ? strlen(run->vault_carry) : 0;
	tlen = ev->text != NULL ? strlen(ev->text) : 0;
	if ((text = malloc(clen + tlen + 1)) == NULL)
		return -ENOMEM;
	if (clen > 0)
		memcpy(text, run->vault_carry, clen);
	if (tlen > 0)
		memcpy(text + clen, ev->text, tlen);
	len = clen + tlen;
	text[len] = '\0';
	carry_clear(run);
	if ((r = redact_text(set, n, text, len, &out, &outlen)) < 0) {
		sodium_memzero(text, clen + tlen);
		free(text);
		return r;
	}
	if (r == 1) {
		sodium_memzero(text, clen + tlen);
		free(text);
		text = out;
		len = outlen;
	}
	hold = redact_hold(set, n, text, len);
	if (hold > 0) {
		if ((run->vault_carry = strdup(text + len - hold)) == NULL) {
			sodium_memzero(text, len);
			free(text);
			return -ENOMEM;
		}
		sodium_memzero(text + len - hold, hold);
		text[len - hold] = '\0';
	}
	if (ev->text != NULL) {
		sodium_memzero(ev->text, tlen);
		free(ev->text);
	}
	ev->text = text;
	return text[0] == '\0' ? 1 : 0;
}

int
wrk_vault_redact_begin(struct wrk_run *run, struct wrk_event *ev)
{
	struct wrk_ctx	*ctx = run->ctx;
	struct wrk_event tail;
	int		 r;

	if (run->vault_flushing)
		return 0;
	if (ev->kind == WRK_EVENT_TOKEN)
		return token_carry(run, ev);
	if (run->vault_carry == NULL)
		return 0;
	/* The tail held back goes first, as a token of its own. */
	if (ctx->fifo_len + 2 > WRK_MAX_INFLIGHT)
		return -ENOBUFS;
	memset(&tail, 0, sizeof(tail));
	tail.kind = WRK_EVENT_TOKEN;
	tail.text = run->vault_carry;
	run->vault_carry = NULL;
	run->vault_flushing = 1;
	r = wrk_emit(run, &tail);
	run->vault_flushing = 0;
	if (r == -ENOBUFS)
		wrk_event_clear(&tail);
	return r < 0 ? r : 0;
}

/* The member of ev that owns the string s points at, or NULL. */
static char **
owner(struct wrk_event *ev, const char *s)
{
	if (s == ev->text)
		return &ev->text;
	if (s == ev->author)
		return &ev->author;
	return NULL;
}

int
wrk_vault_redact_fields(struct wrk_run *run, struct wrk_event *ev,
    Palyra__V1__RunEvent *pb)
{
	const struct redact_secret *set;
	char	**fields[REDACT_FIELDS_MAX], **own, *out;
	size_t	 n = set_size(run->ctx, &set), i, nfields, len, outlen;
	int	 r, changed = 0;

	if (n == 0)
		return 0;
	nfields = redact_event_fields(pb, fields);
	for (i = 0; i < nfields; i++) {
		if (*fields[i] == NULL || (*fields[i])[0] == '\0')
			continue;
		len = strlen(*fields[i]);
		if ((r = redact_text(set, n, *fields[i], len, &out,
		    &outlen)) < 0)
			return r;
		if (r == 0)
			continue;
		if ((own = owner(ev, *fields[i])) != NULL) {
			/* The event's own text: the pipeline keeps it. */
			sodium_memzero(*own, len);
			free(*own);
			*own = out;
		} else if (ev->detail != NULL) {
			/* A string of the unpacked approval message. */
			sodium_memzero(*fields[i], len);
			free(*fields[i]);
		} else {
			/* Configuration text (provider and model names). */
			sodium_memzero(out, outlen);
			free(out);
			continue;
		}
		*fields[i] = out;
		changed = 1;
	}
	return changed;
}
