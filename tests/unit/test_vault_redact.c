/*
 * test_vault_redact.c: unit tests of worker/vault_redact.c, the worker's
 * redaction of vault values, and of common/redact.c's carry-over helper.
 * vault_redact.c is compiled in here; wrk_emit and wrk_event_clear are
 * stand-ins that record what the run would have journaled.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../worker/vault_redact.c"

#define SECRET	"hunter2-swordfish"
#define LONGER	"hunter2-swordfish-and-more"

/* What wrk_emit received, concatenated, and how many events. */
static char	 journal[4096];
static size_t	 nemitted;

void
wrk_event_clear(struct wrk_event *ev)
{
	free(ev->text);
	free(ev->author);
	memset(ev, 0, sizeof(*ev));
}

/* Stands in for append.c: the carry-over runs, the event is "sent". */
int
wrk_emit(struct wrk_run *run, struct wrk_event *ev)
{
	int	 r;

	if ((r = wrk_vault_redact_begin(run, ev)) != 0) {
		if (r == -ENOBUFS)
			return r;
		wrk_event_clear(ev);
		return r == 1 ? 0 : r;
	}
	if (ev->kind == WRK_EVENT_TOKEN) {
		strncat(journal, ev->text, sizeof(journal) - strlen(journal) -
		    1);
		nemitted++;
	} else {
		strncat(journal, "|", sizeof(journal) - strlen(journal) - 1);
		nemitted++;
	}
	wrk_event_clear(ev);
	return 0;
}

struct fixture {
	struct wrk_ctx		 ctx;
	struct wrk_vault	 vault;
	struct wrk_vault_value	 values[2];
	struct redact_secret	 set[2];
	struct wrk_run		 run;
};

static struct fixture *
fixture(void)
{
	static struct fixture f;

	memset(&f, 0, sizeof(f));
	snprintf(f.values[0].name, sizeof(f.values[0].name), "a");
	f.values[0].value = (uint8_t *)SECRET;
	f.values[0].len = strlen(SECRET);
	snprintf(f.values[1].name, sizeof(f.values[1].name), "b");
	f.values[1].value = (uint8_t *)LONGER;
	f.values[1].len = strlen(LONGER);
	f.vault.values = f.values;
	f.vault.nvalues = 2;
	f.vault.set = f.set;
	wrk_vault_set_rebuild(&f.vault);
	f.ctx.vault = &f.vault;
	f.run.ctx = &f.ctx;
	journal[0] = '\0';
	nemitted = 0;
	return &f;
}

static void
token(struct wrk_run *run, const char *text)
{
	struct wrk_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.kind = WRK_EVENT_TOKEN;
	ev.text = strdup(text);
	assert_int_equal(wrk_emit(run, &ev), 0);
}

static void
status(struct wrk_run *run)
{
	struct wrk_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.kind = WRK_EVENT_STATUS;
	assert_int_equal(wrk_emit(run, &ev), 0);
}

static void
test_split_across_tokens(void **state)
{
	struct fixture *f = fixture();

	(void)state;
	token(&f->run, "the password is hun");
	token(&f->run, "ter2-sw");
	token(&f->run, "ordfish, keep it");
	status(&f->run);
	assert_string_equal(journal, "the password is [REDACTED], keep it|");
	assert_null(strstr(journal, "ter2"));
	assert_null(f->run.vault_carry);
}

static void
test_longer_first(void **state)
{
	struct fixture *f = fixture();

	(void)state;
	token(&f->run, "x " LONGER " y " SECRET " z");
	status(&f->run);
	assert_string_equal(journal, "x [REDACTED] y [REDACTED] z|");
}

static void
test_tail_flushed_before_other_event(void **state)
{
	struct fixture *f = fixture();

	(void)state;
	/* "hunt" begins the value: held back, then sent before the
	 * status event, as it is no value after all. */
	token(&f->run, "I hunt");
	assert_string_equal(journal, "I ");
	status(&f->run);
	assert_string_equal(journal, "I hunt|");
	assert_int_equal(nemitted, 3);
}

static void
test_no_values_no_change(void **state)
{
	struct fixture *f = fixture();

	(void)state;
	f->vault.nset = 0;
	token(&f->run, "hunter2-sw");
	status(&f->run);
	assert_string_equal(journal, "hunter2-sw|");
	assert_int_equal(nemitted, 2);
}

static void
test_fields_of_an_event(void **state)
{
	struct fixture *f = fixture();
	Palyra__V1__RunEvent pb = PALYRA__V1__RUN_EVENT__INIT;
	Palyra__V1__ToolResult result = PALYRA__V1__TOOL_RESULT__INIT;
	struct wrk_event ev;

	(void)state;
	memset(&ev, 0, sizeof(ev));
	ev.kind = WRK_EVENT_TOOL_RESULT;
	ev.text = strdup("{\"password\": \"" SECRET "\"}");
	result.content = ev.text;
	pb.event_case = PALYRA__V1__RUN_EVENT__EVENT_TOOL_RESULT;
	pb.tool_result = &result;
	assert_int_equal(wrk_vault_redact_fields(&f->run, &ev, &pb), 1);
	assert_string_equal(ev.text, "{\"password\": \"[REDACTED]\"}");
	/* The protobuf view follows the event's own text. */
	assert_ptr_equal(result.content, ev.text);
	assert_int_equal(wrk_vault_redact_fields(&f->run, &ev, &pb), 0);
	wrk_event_clear(&ev);
}

static void
test_redact_text(void **state)
{
	struct fixture *f = fixture();
	char	*s;

	(void)state;
	s = wrk_vault_redact_text(&f->ctx, "remember " SECRET " please");
	assert_string_equal(s, "remember [REDACTED] please");
	free(s);
	s = wrk_vault_redact_text(&f->ctx, "nothing here");
	assert_string_equal(s, "nothing here");
	free(s);
}

static void
test_hold(void **state)
{
	struct fixture *f = fixture();
	const char *s = "abc hunter2";

	(void)state;
	assert_int_equal(redact_hold(f->set, 2, s, strlen(s)), 7);
	assert_int_equal(redact_hold(f->set, 2, "abc", 3), 0);
	/* Only tails that begin a value count; a value's own last byte
	 * may begin it again ("...fish" ends with the "h" of "hunter2"). */
	assert_int_equal(redact_hold(f->set + 1, 1, "hunter2-swordfisX", 17),
	    0);
	assert_int_equal(redact_hold(f->set + 1, 1, SECRET, strlen(SECRET)),
	    1);
	/* The longer value sorts first and begins with SECRET. */
	assert_int_equal(redact_hold(f->set, 1, SECRET, strlen(SECRET)),
	    strlen(SECRET));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split_across_tokens),
		cmocka_unit_test(test_longer_first),
		cmocka_unit_test(test_tail_flushed_before_other_event),
		cmocka_unit_test(test_no_values_no_change),
		cmocka_unit_test(test_fields_of_an_event),
		cmocka_unit_test(test_redact_text),
		cmocka_unit_test(test_hold),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
