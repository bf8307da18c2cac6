/*
 * test_redact.c: unit tests of journald/redact.c, redaction by value.
 *
 * redact.c runs in palyra-journald and is not part of the common library:
 * it is compiled into this test directly. Events are built the way
 * journald gets them, unpacked by protobuf-c from their encoding, so that
 * replacing and freeing their strings is exercised as in the daemon.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../journald/redact.c"

/* Registers values as IPC_JOURNAL_SECRETS would. */
static void
registry(struct jnl_ctx *ctx, const char *const *values, size_t n)
{
	Palyra__Ipc__JournalSecrets *msg;
	struct ipc_msg m;
	size_t i;

	msg = calloc(1, sizeof(*msg));
	assert_non_null(msg);
	palyra__ipc__journal_secrets__init(msg);
	msg->n_values = n;
	msg->values = calloc(n + 1, sizeof(*msg->values));
	assert_non_null(msg->values);
	for (i = 0; i < n; i++) {
		msg->values[i].len = strlen(values[i]);
		msg->values[i].data = (uint8_t *)strdup(values[i]);
	}
	memset(&m, 0, sizeof(m));
	m.msg = &msg->base;
	jnl_handle_secrets(ctx, &m);
	/* The handler wiped the message's copies. */
	for (i = 0; i < n; i++) {
		assert_int_equal(msg->values[i].data[0], 0);
		free(msg->values[i].data);
	}
	free(msg->values);
	free(msg);
}

/* An event of the kind as journald receives it: packed, then unpacked. */
static Palyra__V1__RunEvent *
event(int kind, const char *a, const char *b)
{
	Palyra__V1__RunEvent ev = PALYRA__V1__RUN_EVENT__INIT;
	Palyra__V1__ModelToken token = PALYRA__V1__MODEL_TOKEN__INIT;
	Palyra__V1__Usage usage = PALYRA__V1__USAGE__INIT;
	Palyra__V1__ErrorEvent error = PALYRA__V1__ERROR_EVENT__INIT;
	Palyra__V1__Note note = PALYRA__V1__NOTE__INIT;
	uint8_t buf[4096];
	size_t len;

	ev.run_id = "run-1";
	ev.seq = 3;
	ev.event_case = kind;
	if (kind == PALYRA__V1__RUN_EVENT__EVENT_TOKEN) {
		token.text = (char *)a;
		ev.token = &token;
	} else if (kind == PALYRA__V1__RUN_EVENT__EVENT_USAGE) {
		usage.provider = (char *)a;
		usage.model = (char *)b;
		ev.usage = &usage;
	} else if (kind == PALYRA__V1__RUN_EVENT__EVENT_NOTE) {
		note.text = (char *)a;
		note.principal = (char *)b;
		ev.note = &note;
	} else {
		error.code = (char *)a;
		error.message = (char *)b;
		ev.error = &error;
	}
	len = palyra__v1__run_event__pack(&ev, buf);
	return palyra__v1__run_event__unpack(NULL, len, buf);
}

static void
test_every_occurrence_is_replaced(void **state)
{
	static const char *const values[] = {"sk-secret-123"};
	struct jnl_ctx ctx;
	Palyra__V1__RunEvent *ev;

	memset(&ctx, 0, sizeof(ctx));
	registry(&ctx, values, 1);
	assert_int_equal(ctx.nsecrets, 1);
	ev = event(PALYRA__V1__RUN_EVENT__EVENT_TOKEN,
	    "sk-secret-123 and sk-secret-123sk-secret-123.", NULL);
	assert_int_equal(jnl_redact_event(&ctx, ev), 1);
	assert_string_equal(
	    ev->token->text, "[REDACTED] and [REDACTED][REDACTED].");
	palyra__v1__run_event__free_unpacked(ev, NULL);

	ev = event(PALYRA__V1__RUN_EVENT__EVENT_TOKEN, "nothing here", NULL);
	assert_int_equal(jnl_redact_event(&ctx, ev), 0);
	assert_string_equal(ev->token->text, "nothing here");
	palyra__v1__run_event__free_unpacked(ev, NULL);
	jnl_secrets_clear(&ctx);
	assert_int_equal(ctx.nsecrets, 0);
}

/* A value that contains another is replaced whole, not in part. */
static void
test_longer_value_first(void **state)
{
	static const char *const values[] = {"abcdefgh", "xxabcdefghyy"};
	struct jnl_ctx ctx;
	Palyra__V1__RunEvent *ev;

	memset(&ctx, 0, sizeof(ctx));
	registry(&ctx, values, 2);
	ev = event(PALYRA__V1__RUN_EVENT__EVENT_TOKEN,
	    "<xxabcdefghyy|abcdefgh>", NULL);
	assert_int_equal(jnl_redact_event(&ctx, ev), 1);
	assert_string_equal(ev->token->text, "<[REDACTED]|[REDACTED]>");
	palyra__v1__run_event__free_unpacked(ev, NULL);
	jnl_secrets_clear(&ctx);
}

/* Short values are not registered: they would blank out plain text. */
static void
test_short_values_are_ignored(void **state)
{
	static const char *const values[] = {"1234567", "", "12345678"};
	struct jnl_ctx ctx;
	Palyra__V1__RunEvent *ev;

	memset(&ctx, 0, sizeof(ctx));
	registry(&ctx, values, 3);
	assert_int_equal(ctx.nsecrets, 1);
	ev =
	    event(PALYRA__V1__RUN_EVENT__EVENT_TOKEN, "1234567 12345678", NULL);
	assert_int_equal(jnl_redact_event(&ctx, ev), 1);
	assert_string_equal(ev->token->text, "1234567 [REDACTED]");
	palyra__v1__run_event__free_unpacked(ev, NULL);
	/* A new set replaces the old one. */
	registry(&ctx, NULL, 0);
	assert_int_equal(ctx.nsecrets, 0);
	jnl_secrets_clear(&ctx);
}

/* Every string of the body: usage and error fields too. */
static void
test_every_string_field(void **state)
{
	static const char *const values[] = {"TOPSECRETVALUE"};
	struct jnl_ctx ctx;
	Palyra__V1__RunEvent *ev;

	memset(&ctx, 0, sizeof(ctx));
	registry(&ctx, values, 1);
	ev = event(PALYRA__V1__RUN_EVENT__EVENT_USAGE, "p-TOPSECRETVALUE",
	    "TOPSECRETVALUE-m");
	assert_int_equal(jnl_redact_event(&ctx, ev), 1);
	assert_string_equal(ev->usage->provider, "p-[REDACTED]");
	assert_string_equal(ev->usage->model, "[REDACTED]-m");
	palyra__v1__run_event__free_unpacked(ev, NULL);
	ev = event(PALYRA__V1__RUN_EVENT__EVENT_ERROR, "TOPSECRETVALUE",
	    "key TOPSECRETVALUE rejected");
	assert_int_equal(jnl_redact_event(&ctx, ev), 1);
	assert_string_equal(ev->error->code, "[REDACTED]");
	assert_string_equal(ev->error->message, "key [REDACTED] rejected");
	palyra__v1__run_event__free_unpacked(ev, NULL);
	/* An AppendEvent note's text; its author is a name, not redacted. */
	ev = event(PALYRA__V1__RUN_EVENT__EVENT_NOTE, "use TOPSECRETVALUE",
	    "alice");
	assert_int_equal(jnl_redact_event(&ctx, ev), 1);
	assert_string_equal(ev->note->text, "use [REDACTED]");
	assert_string_equal(ev->note->principal, "alice");
	palyra__v1__run_event__free_unpacked(ev, NULL);
	jnl_secrets_clear(&ctx);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_every_occurrence_is_replaced),
	    cmocka_unit_test(test_longer_value_first),
	    cmocka_unit_test(test_short_values_are_ignored),
	    cmocka_unit_test(test_every_string_field),
	};

	log_init("test_redact", NULL, 0, 1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
