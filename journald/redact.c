/*
 * redact.c: redaction by value (DESIGN section 8). Runs in
 * palyra-journald; touches only memory: the registry of secret values the
 * supervisor sends (IPC_JOURNAL_SECRETS: provider credentials now, the
 * vault's values are redacted by the tenant's worker, which alone can read
 * them) and the events of appends before they are hashed and stored.
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
 * is in neither event whole and is stored as it came here (the worker
 * holds back a token's tail for its vault values: worker/vault_redact.c).
 * The registry and every copy of a value are wiped with sodium_memzero; no
 * value is logged.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "journald.h"
#include "log.h"
#include "redact.h"

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
	struct redact_secret *set;
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
		redact_sort(set, n);
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
 * The field walk and the replacement are common/redact.c's, shared with
 * the worker, which redacts the tenant's vault values the same way before
 * its events reach journald.
 */
int
jnl_redact_event(const struct jnl_ctx *ctx, Palyra__V1__RunEvent *ev)
{
	return redact_event(ctx->secrets, ctx->nsecrets, ev);
}
