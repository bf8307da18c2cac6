/*
 * redact.c: redaction by value (DESIGN section 8). Runs in
 * palyra-journald; touches only memory: the registry of secret values the
 * supervisor sends (IPC_JOURNAL_SECRETS: provider credentials now, the
 * vault's values later) and the events of appends before they are hashed
 * and stored.
 *
 * Every occurrence of a registered value (at least JNL_SECRET_MIN_LEN
 * bytes, so that a short value cannot blank out ordinary text) in a string
 * field of an event's body (status reason, token text, final text, usage
 * provider and model, error code and message, note text) becomes
 * JNL_REDACTED. Longer values are replaced first, so that a value
 * containing another is replaced whole. Identifiers (run_id, session_id) are
 * not redacted: they are handles checked against a name syntax, and rewriting
 * them would break the run.
 *
 * What this cannot do: a value split across two events (two model tokens)
 * is in neither event whole and is stored as it came. The registry and
 * every copy of a value are wiped with sodium_memzero; no value is logged.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "journald.h"
#include "log.h"

static int
secret_longer_first(const void *a, const void *b)
{
	const struct jnl_secret *x = a, *y = b;

	return x->len < y->len ? 1 : x->len > y->len ? -1 : 0;
}

void
jnl_secrets_clear(struct jnl_ctx *ctx)
{
	size_t i;

	for (i = 0; i < ctx->nsecrets; i++) {
		sodium_memzero(ctx->secrets[i].value, ctx->secrets[i].len);
		free(ctx->secrets[i].value);
	}
	free(ctx->secrets);
	ctx->secrets = NULL;
	ctx->nsecrets = 0;
}

void
jnl_handle_secrets(struct jnl_ctx *ctx, struct ipc_msg *m)
{
	Palyra__Ipc__JournalSecrets *msg =
	    (Palyra__Ipc__JournalSecrets *)m->msg;
	struct jnl_secret *set;
	size_t i, n = 0, ignored = 0;

	jnl_secrets_clear(ctx);
	if (msg->n_values > 0 &&
	    (set = calloc(msg->n_values, sizeof(*set))) != NULL) {
		for (i = 0; i < msg->n_values; i++) {
			if (msg->values[i].len < JNL_SECRET_MIN_LEN ||
			    msg->values[i].len > JNL_SECRET_MAX_LEN ||
			    n >= JNL_SECRETS_MAX ||
			    (set[n].value = malloc(msg->values[i].len)) ==
				NULL) {
				ignored++;
				continue;
			}
			memcpy(set[n].value, msg->values[i].data,
			    msg->values[i].len);
			set[n].len = msg->values[i].len;
			n++;
		}
		qsort(set, n, sizeof(*set), secret_longer_first);
		ctx->secrets = set;
		ctx->nsecrets = n;
	} else if (msg->n_values > 0)
		ignored = msg->n_values;
	/* Our copy of the message goes: wipe the values in it first. */
	for (i = 0; i < msg->n_values; i++)
		sodium_memzero(msg->values[i].data, msg->values[i].len);
	log_info("%zu secret value(s) registered for redaction", n);
	if (ignored > 0)
		log_warn("%zu secret value(s) not registered (shorter than %d "
			 "bytes, too long, too many, or out of memory)",
		    ignored, JNL_SECRET_MIN_LEN);
}

/*
 * Replaces every registered value in *s. Returns 1 when *s was replaced
 * (by a string from malloc; the old one freed), 0 when it holds none,
 * -ENOMEM.
 */
static int
redact_string(const struct jnl_ctx *ctx, char **s)
{
	static const char mark[] = JNL_REDACTED;
	const size_t marklen = sizeof(mark) - 1;
	char *cur = *s, *out, *hit, *from;
	size_t i, len, count, n;
	int changed = 0;

	if (cur == NULL || cur[0] == '\0')
		return 0;
	for (i = 0; i < ctx->nsecrets; i++) {
		const struct jnl_secret *sec = &ctx->secrets[i];

		len = strlen(cur);
		count = 0;
		for (from = cur; (hit = memmem(from, len - (size_t)(from - cur),
				      sec->value, sec->len)) != NULL;
		     from = hit + sec->len)
			count++;
		if (count == 0)
			continue;
		if ((out = malloc(
			 len - count * sec->len + count * marklen + 1)) == NULL)
			return -ENOMEM;
		n = 0;
		for (from = cur; (hit = memmem(from, len - (size_t)(from - cur),
				      sec->value, sec->len)) != NULL;
		     from = hit + sec->len) {
			memcpy(out + n, from, (size_t)(hit - from));
			n += (size_t)(hit - from);
			memcpy(out + n, mark, marklen);
			n += marklen;
		}
		memcpy(out + n, from, len - (size_t)(from - cur) + 1);
		/* The old text held the value: wipe it before it goes. */
		sodium_memzero(cur, len);
		free(cur);
		cur = out;
		changed = 1;
	}
	*s = cur;
	return changed;
}

/*
 * The event's strings were allocated one by one by protobuf-c's unpack
 * (with the default allocator, as ipc_decode does), and only a string that
 * holds a value (so is not empty, so is not protobuf-c's shared default)
 * is replaced: the message frees as usual.
 */
int
jnl_redact_event(const struct jnl_ctx *ctx, Palyra__V1__RunEvent *ev)
{
	char **fields[2] = {NULL, NULL};
	int i, rc, changed = 0;

	if (ctx->nsecrets == 0)
		return 0;
	switch (ev->event_case) {
	case PALYRA__V1__RUN_EVENT__EVENT_STATUS:
		fields[0] = &ev->status->reason;
		break;
	case PALYRA__V1__RUN_EVENT__EVENT_TOKEN:
		fields[0] = &ev->token->text;
		break;
	case PALYRA__V1__RUN_EVENT__EVENT_FINAL:
		fields[0] = &ev->final->text;
		break;
	case PALYRA__V1__RUN_EVENT__EVENT_USAGE:
		fields[0] = &ev->usage->provider;
		fields[1] = &ev->usage->model;
		break;
	case PALYRA__V1__RUN_EVENT__EVENT_ERROR:
		fields[0] = &ev->error->code;
		fields[1] = &ev->error->message;
		break;
	case PALYRA__V1__RUN_EVENT__EVENT_NOTE:
		fields[0] = &ev->note->text;
		break;
	case PALYRA__V1__RUN_EVENT__EVENT_TOOL_CALL:
		fields[0] = &ev->tool_call->arguments_json;
		break;
	case PALYRA__V1__RUN_EVENT__EVENT_TOOL_RESULT:
		fields[0] = &ev->tool_result->content;
		break;
	case PALYRA__V1__RUN_EVENT__EVENT_INPUT:
		fields[0] = &ev->input->text;
		break;
	case PALYRA__V1__RUN_EVENT__EVENT_APPROVAL_REQUEST:
		fields[0] = &ev->approval_request->arguments_summary;
		break;
	case PALYRA__V1__RUN_EVENT__EVENT_APPROVAL_DECIDED:
		fields[0] = &ev->approval_decided->reason;
		break;
	default:
		break;
	}
	for (i = 0; i < 2 && fields[i] != NULL; i++) {
		if ((rc = redact_string(ctx, fields[i])) < 0)
			return rc;
		changed |= rc;
	}
	return changed;
}
