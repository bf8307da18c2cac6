/*
 * test_budget.c: unit tests of worker/budget.c, the worker's side of
 * budget reservations: prices, the reservation state machine, warnings
 * once per run and budget, and reservations whose run ended first.
 *
 * budget.c runs in palyra-worker and is not part of the common library:
 * it is compiled into this test directly. Journald is the other end of a
 * real socketpair: the test reads what the worker sends and answers with
 * wrk_budget_on_reserved() as the worker's loop would. The run sinks of
 * run.c it calls are stubbed below and count their calls.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "../../worker/budget.c"

/* run.c stubs. */

static int	 warnings_seen;
static char	 last_warning[128];
static int	 warning_answer;	/* what wrk_run_budget_warning returns */

int
wrk_run_budget_warning(struct wrk_run *run,
    const Palyra__V1__BudgetWarning *w)
{
	(void)run;
	warnings_seen++;
	snprintf(last_warning, sizeof(last_warning), "%s", w->budget_id);
	return warning_answer;
}

int
wrk_run_terminal(enum wrk_run_state s)
{
	return s >= WRK_RUN_COMPLETED && s <= WRK_RUN_INTERRUPTED;
}

/* The harness: a context with a journald channel, one run. */

struct harness {
	struct wrk_ctx		 ctx;
	struct wrk_run		 run;
	Palyra__Ipc__WorkerConfig config;
	Palyra__Ipc__Pricing	 price, *prices[1];
	int			 peer;	/* journald's end */
};

static int	 done_calls, done_ok;
static char	 done_why[BUDGET_ERROR_MAX];

static void
done_cb(struct wrk_run *run, void *arg, int ok, const char *why)
{
	(void)run;
	assert_ptr_equal(arg, &done_calls);
	done_calls++;
	done_ok = ok;
	snprintf(done_why, sizeof(done_why), "%s", why != NULL ? why : "");
}

static void
msg_ignore(struct ipc_chan *c, struct ipc_msg *m, void *arg)
{
	(void)c; (void)m; (void)arg;
}

static void
close_ignore(struct ipc_chan *c, int error, void *arg)
{
	(void)c; (void)error; (void)arg;
}

static int
setup(void **state)
{
	struct harness	*h = calloc(1, sizeof(*h));
	int		 sv[2];

	assert_non_null(h);
	assert_int_equal(ipc_socketpair(sv), 0);
	h->ctx.base = event_base_new();
	assert_non_null(h->ctx.base);
	h->ctx.journald = ipc_chan_new(h->ctx.base, sv[0], "journald", 0,
	    msg_ignore, close_ignore, h);
	assert_non_null(h->ctx.journald);
	h->peer = sv[1];
	TAILQ_INIT(&h->ctx.runs);

	palyra__ipc__worker_config__init(&h->config);
	palyra__ipc__pricing__init(&h->price);
	h->price.model = "gpt-test";
	h->price.input_per_million = 0.40;
	h->price.output_per_million = 1.60;
	h->prices[0] = &h->price;
	h->config.pricing = h->prices;
	h->config.n_pricing = 1;
	h->ctx.config = &h->config;

	h->run.ctx = &h->ctx;
	snprintf(h->run.run_id, sizeof(h->run.run_id), "%s",
	    "0123456789abcdef0123456789abcdef");
	h->run.agent = "assistant";
	h->run.principal = "alice";
	h->run.provider_name = "openai";
	h->run.model = "gpt-test";
	h->run.state = WRK_RUN_IN_PROGRESS;
	TAILQ_INSERT_TAIL(&h->ctx.runs, &h->run, entry);

	done_calls = done_ok = warnings_seen = warning_answer = 0;
	done_why[0] = last_warning[0] = '\0';
	*state = h;
	return 0;
}

static int
teardown(void **state)
{
	struct harness	*h = *state;

	wrk_budget_abort(&h->run);
	wrk_budget_forget(&h->ctx);
	ipc_chan_free(h->ctx.journald);
	close(h->peer);
	event_base_free(h->ctx.base);
	free(h);
	return 0;
}

/* The next message the worker sent journald, of the type expected. */
static void
expect_msg(struct harness *h, enum ipc_type type, struct ipc_msg *m)
{
	memset(m, 0, sizeof(*m));
	assert_int_equal(ipc_recv_blocking(h->peer, m), 0);
	assert_int_equal(m->hdr.type, type);
}

/* Nothing more was sent. */
static void
expect_quiet(struct harness *h)
{
	char	 c;

	assert_int_equal(recv(h->peer, &c, 1, MSG_DONTWAIT), -1);
}

static void
test_cost(void **state)
{
	struct harness	*h = *state;

	/* USD per million tokens is micro-USD per token. */
	assert_int_equal(wrk_budget_cost(&h->ctx, "gpt-test", 1000, 0), 400);
	assert_int_equal(wrk_budget_cost(&h->ctx, "gpt-test", 0, 1000), 1600);
	assert_int_equal(wrk_budget_cost(&h->ctx, "gpt-test", 1000, 1000),
	    2000);
	/* Rounded up once, over the sum: 0.4 + 1.6 is 2, not 3. */
	assert_int_equal(wrk_budget_cost(&h->ctx, "gpt-test", 1, 1), 2);
	assert_int_equal(wrk_budget_cost(&h->ctx, "gpt-test", 1, 0), 1);
	assert_int_equal(wrk_budget_cost(&h->ctx, "gpt-test", 0, 0), 0);
	/* Matched exactly; no price, no cost. */
	assert_int_equal(wrk_budget_cost(&h->ctx, "gpt-test-2", 1000, 1000),
	    0);
	assert_int_equal(wrk_budget_cost(&h->ctx, "GPT-TEST", 1000, 1000), 0);
	h->price.input_per_million = 2.5;
	assert_int_equal(wrk_budget_cost(&h->ctx, "gpt-test", 3, 0), 8);
	/* Huge counts saturate instead of wrapping. */
	h->price.input_per_million = 1e9;
	assert_true(wrk_budget_cost(&h->ctx, "gpt-test", UINT64_MAX, 0) ==
	    UINT64_MAX);
	h->price.output_per_million = 1e12;
	assert_true(wrk_budget_cost(&h->ctx, "gpt-test", UINT64_MAX,
	    UINT64_MAX) == UINT64_MAX);
	h->price.output_per_million = 1.60;
	/* A price that makes no sense costs nothing. */
	h->price.input_per_million = -1;
	assert_int_equal(wrk_budget_cost(&h->ctx, "gpt-test", 1000, 0), 0);
}

static void
answer(struct harness *h, uint32_t id, int ok, uint64_t reservation,
    const char *budget_id, const char *error,
    Palyra__V1__BudgetWarning **warnings, size_t nwarnings, int want)
{
	Palyra__Ipc__BudgetReserved a = PALYRA__IPC__BUDGET_RESERVED__INIT;

	a.ok = ok;
	a.reservation = reservation;
	a.budget_id = (char *)budget_id;
	a.error = (char *)error;
	a.warnings = warnings;
	a.n_warnings = nwarnings;
	assert_int_equal(wrk_budget_on_reserved(&h->ctx, id, &a), want);
}

static void
test_reserve_settle(void **state)
{
	struct harness	*h = *state;
	Palyra__Ipc__BudgetReserve *rq;
	Palyra__Ipc__BudgetSettle *st;
	struct ipc_msg	 m;
	uint32_t	 id;

	assert_int_equal(wrk_budget_reserve(&h->run, "gpt-test", 1000, 500,
	    done_cb, &done_calls), 0);
	expect_msg(h, IPC_BUDGET_RESERVE, &m);
	rq = (Palyra__Ipc__BudgetReserve *)m.msg;
	id = m.hdr.request_id;
	assert_int_not_equal(id, 0);
	assert_string_equal(rq->run_id, h->run.run_id);
	assert_string_equal(rq->agent, "assistant");
	assert_string_equal(rq->principal, "alice");
	assert_int_equal(rq->tokens, 1500);
	assert_int_equal(rq->cost_micro_usd, 400 + 800);
	ipc_msg_clear(&m);

	/* One at a time. */
	assert_int_equal(wrk_budget_reserve(&h->run, "gpt-test", 1, 1,
	    done_cb, &done_calls), -EBUSY);
	/* Settling before the answer does nothing. */
	wrk_budget_settle(&h->run, "openai", "gpt-test", 1, 1, 1);
	expect_quiet(h);
	assert_int_equal(done_calls, 0);

	answer(h, id, 1, 77, "", "", NULL, 0, 0);
	assert_int_equal(done_calls, 1);
	assert_int_equal(done_ok, 1);

	/* The real usage, priced by the model it came from. */
	wrk_budget_settle(&h->run, "openai", "gpt-test", 120, 30, 1);
	expect_msg(h, IPC_BUDGET_SETTLE, &m);
	st = (Palyra__Ipc__BudgetSettle *)m.msg;
	assert_int_equal(st->reservation, 77);
	assert_string_equal(st->run_id, h->run.run_id);
	assert_string_equal(st->agent, "assistant");
	assert_string_equal(st->principal, "alice");
	assert_string_equal(st->provider, "openai");
	assert_string_equal(st->model, "gpt-test");
	assert_int_equal(st->input_tokens, 120);
	assert_int_equal(st->output_tokens, 30);
	assert_int_equal(st->cost_micro_usd, 48 + 48);
	ipc_msg_clear(&m);
	/* Once. */
	wrk_budget_settle(&h->run, "openai", "gpt-test", 120, 30, 1);
	expect_quiet(h);

	/* No usage reported: the reservation is what is recorded. */
	assert_int_equal(wrk_budget_reserve(&h->run, "gpt-test", 1000, 500,
	    done_cb, &done_calls), 0);
	expect_msg(h, IPC_BUDGET_RESERVE, &m);
	id = m.hdr.request_id;
	ipc_msg_clear(&m);
	answer(h, id, 1, 78, "", "", NULL, 0, 0);
	assert_int_equal(done_calls, 2);
	wrk_budget_settle(&h->run, "openai", "", 0, 0, 0);
	expect_msg(h, IPC_BUDGET_SETTLE, &m);
	st = (Palyra__Ipc__BudgetSettle *)m.msg;
	assert_int_equal(st->reservation, 78);
	assert_int_equal(st->input_tokens, 1000);
	assert_int_equal(st->output_tokens, 500);
	assert_int_equal(st->cost_micro_usd, 1200);
	assert_string_equal(st->model, "gpt-test");
	ipc_msg_clear(&m);
}

static void
test_refused(void **state)
{
	struct harness	*h = *state;
	struct ipc_msg	 m;
	uint32_t	 id;

	assert_int_equal(wrk_budget_reserve(&h->run, "gpt-test", 10, 10,
	    done_cb, &done_calls), 0);
	expect_msg(h, IPC_BUDGET_RESERVE, &m);
	id = m.hdr.request_id;
	ipc_msg_clear(&m);
	answer(h, id, 0, 0, "tenant:tokens:day",
	    "budget tenant:tokens:day: limit 100, used 95", NULL, 0, 0);
	assert_int_equal(done_calls, 1);
	assert_int_equal(done_ok, 0);
	assert_string_equal(done_why,
	    "budget tenant:tokens:day: limit 100, used 95");
	/* Nothing is held: no settle, and the next call may reserve. */
	wrk_budget_settle(&h->run, "openai", "gpt-test", 1, 1, 1);
	expect_quiet(h);

	/* Without a text, the reason still names the budget. */
	assert_int_equal(wrk_budget_reserve(&h->run, "gpt-test", 10, 10,
	    done_cb, &done_calls), 0);
	expect_msg(h, IPC_BUDGET_RESERVE, &m);
	id = m.hdr.request_id;
	ipc_msg_clear(&m);
	answer(h, id, 0, 0, "agent:assistant:cost:month", "", NULL, 0, 0);
	assert_int_equal(done_ok, 0);
	assert_non_null(strstr(done_why, "agent:assistant:cost:month"));
}

static void
test_warnings_once(void **state)
{
	struct harness	*h = *state;
	Palyra__V1__BudgetWarning w1 = PALYRA__V1__BUDGET_WARNING__INIT;
	Palyra__V1__BudgetWarning w2 = PALYRA__V1__BUDGET_WARNING__INIT;
	Palyra__V1__BudgetWarning *ws[2] = { &w1, &w2 };
	struct ipc_msg	 m;
	uint32_t	 id;
	int		 i;

	w1.budget_id = "tenant:tokens:day";
	w1.unit = "tokens";
	w2.budget_id = "principal:alice:cost:month";
	w2.unit = "cost";
	for (i = 0; i < 3; i++) {
		assert_int_equal(wrk_budget_reserve(&h->run, "gpt-test", 10,
		    10, done_cb, &done_calls), 0);
		expect_msg(h, IPC_BUDGET_RESERVE, &m);
		id = m.hdr.request_id;
		ipc_msg_clear(&m);
		/* The second call crosses a second budget too. */
		answer(h, id, 1, 100 + i, "", "", ws, i == 0 ? 1 : 2, 0);
		assert_int_equal(done_calls, i + 1);
		assert_int_equal(done_ok, 1);
		wrk_budget_settle(&h->run, "openai", "gpt-test", 1, 1, 1);
		expect_msg(h, IPC_BUDGET_SETTLE, &m);
		ipc_msg_clear(&m);
	}
	/* One warning per run and budget. */
	assert_int_equal(warnings_seen, 2);
	assert_string_equal(last_warning, "principal:alice:cost:month");

	/* A warning that found no room is not remembered: next time. */
	w1.budget_id = "agent:assistant:tokens:total";
	warning_answer = -EAGAIN;
	assert_int_equal(wrk_budget_reserve(&h->run, "gpt-test", 10, 10,
	    done_cb, &done_calls), 0);
	expect_msg(h, IPC_BUDGET_RESERVE, &m);
	id = m.hdr.request_id;
	ipc_msg_clear(&m);
	answer(h, id, 1, 200, "", "", ws, 1, 0);
	assert_int_equal(warnings_seen, 3);
	assert_int_equal(done_ok, 1);
	wrk_budget_settle(&h->run, "openai", "gpt-test", 1, 1, 1);
	expect_msg(h, IPC_BUDGET_SETTLE, &m);
	ipc_msg_clear(&m);
	warning_answer = 0;
	assert_int_equal(wrk_budget_reserve(&h->run, "gpt-test", 10, 10,
	    done_cb, &done_calls), 0);
	expect_msg(h, IPC_BUDGET_RESERVE, &m);
	id = m.hdr.request_id;
	ipc_msg_clear(&m);
	answer(h, id, 1, 201, "", "", ws, 1, 0);
	assert_int_equal(warnings_seen, 4);

	/* The run ended while warning: done is not called. */
	wrk_budget_settle(&h->run, "openai", "gpt-test", 1, 1, 1);
	expect_msg(h, IPC_BUDGET_SETTLE, &m);
	ipc_msg_clear(&m);
	w1.budget_id = "tenant:cost:total";
	warning_answer = 1;
	assert_int_equal(wrk_budget_reserve(&h->run, "gpt-test", 10, 10,
	    done_cb, &done_calls), 0);
	expect_msg(h, IPC_BUDGET_RESERVE, &m);
	id = m.hdr.request_id;
	ipc_msg_clear(&m);
	i = done_calls;
	answer(h, id, 1, 202, "", "", ws, 1, 0);
	assert_int_equal(done_calls, i);
}

static void
test_run_ends_first(void **state)
{
	struct harness	*h = *state;
	Palyra__Ipc__BudgetSettle *st;
	struct ipc_msg	 m;
	uint32_t	 id, id2;

	/* Asked, then the run ends: the answer is settled at zero. */
	assert_int_equal(wrk_budget_reserve(&h->run, "gpt-test", 10, 10,
	    done_cb, &done_calls), 0);
	expect_msg(h, IPC_BUDGET_RESERVE, &m);
	id = m.hdr.request_id;
	ipc_msg_clear(&m);
	wrk_budget_abort(&h->run);
	assert_null(h->run.budget);
	expect_quiet(h);
	answer(h, id, 1, 300, "", "", NULL, 0, 0);
	assert_int_equal(done_calls, 0);
	expect_msg(h, IPC_BUDGET_SETTLE, &m);
	st = (Palyra__Ipc__BudgetSettle *)m.msg;
	assert_int_equal(st->reservation, 300);
	assert_int_equal(st->input_tokens, 0);
	assert_int_equal(st->output_tokens, 0);
	assert_int_equal(st->cost_micro_usd, 0);
	assert_string_equal(st->run_id, h->run.run_id);
	ipc_msg_clear(&m);
	/* A refusal of a forgotten question needs nothing. */
	assert_int_equal(wrk_budget_reserve(&h->run, "gpt-test", 10, 10,
	    done_cb, &done_calls), 0);
	expect_msg(h, IPC_BUDGET_RESERVE, &m);
	id = m.hdr.request_id;
	ipc_msg_clear(&m);
	wrk_budget_abort(&h->run);
	answer(h, id, 0, 0, "tenant:tokens:day", "over", NULL, 0, 0);
	expect_quiet(h);
	/* An answer to nothing asked is ignored. */
	answer(h, id, 1, 301, "", "", NULL, 0, 0);
	expect_quiet(h);
	assert_int_equal(done_calls, 0);

	/* Held, then the run ends: settled as not reported. */
	assert_int_equal(wrk_budget_reserve(&h->run, "gpt-test", 10, 20,
	    done_cb, &done_calls), 0);
	expect_msg(h, IPC_BUDGET_RESERVE, &m);
	id2 = m.hdr.request_id;
	assert_int_not_equal(id2, id);
	ipc_msg_clear(&m);
	answer(h, id2, 1, 302, "", "", NULL, 0, 0);
	wrk_budget_abort(&h->run);
	expect_msg(h, IPC_BUDGET_SETTLE, &m);
	st = (Palyra__Ipc__BudgetSettle *)m.msg;
	assert_int_equal(st->reservation, 302);
	assert_int_equal(st->input_tokens, 10);
	assert_int_equal(st->output_tokens, 20);
	ipc_msg_clear(&m);

	/* Journald gone: nothing is asked, questions are forgotten. */
	assert_int_equal(wrk_budget_reserve(&h->run, "gpt-test", 10, 20,
	    done_cb, &done_calls), 0);
	expect_msg(h, IPC_BUDGET_RESERVE, &m);
	ipc_msg_clear(&m);
	wrk_budget_abort(&h->run);
	assert_non_null(h->ctx.budget_orphans);
	wrk_budget_forget(&h->ctx);
	assert_null(h->ctx.budget_orphans);
	ipc_chan_free(h->ctx.journald);
	h->ctx.journald = NULL;
	assert_int_equal(wrk_budget_reserve(&h->run, "gpt-test", 10, 20,
	    done_cb, &done_calls), -ENOTCONN);
	{
		int	 sv[2];

		/* teardown frees a channel. */
		assert_int_equal(ipc_socketpair(sv), 0);
		h->ctx.journald = ipc_chan_new(h->ctx.base, sv[0], "journald",
		    0, msg_ignore, close_ignore, h);
		close(h->peer);
		h->peer = sv[1];
	}
}

static void
test_malformed(void **state)
{
	struct harness	*h = *state;
	Palyra__V1__BudgetWarning w = PALYRA__V1__BUDGET_WARNING__INIT;
	Palyra__V1__BudgetWarning *ws[BUDGET_WARNINGS_MAX + 1];
	char		 longid[BUDGET_ID_MAX + 2];
	struct ipc_msg	 m;
	uint32_t	 id;
	size_t		 i;

	assert_int_equal(wrk_budget_reserve(&h->run, "gpt-test", 10, 10,
	    done_cb, &done_calls), 0);
	expect_msg(h, IPC_BUDGET_RESERVE, &m);
	id = m.hdr.request_id;
	ipc_msg_clear(&m);
	w.budget_id = "tenant:tokens:day";
	for (i = 0; i < BUDGET_WARNINGS_MAX + 1; i++)
		ws[i] = &w;
	answer(h, id, 1, 5, "", "", ws, BUDGET_WARNINGS_MAX + 1, -EBADMSG);
	memset(longid, 'a', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0';
	answer(h, id, 0, 0, longid, "", NULL, 0, -EBADMSG);
	w.budget_id = "";
	answer(h, id, 1, 5, "", "", ws, 1, -EBADMSG);
	assert_int_equal(done_calls, 0);
	assert_int_equal(warnings_seen, 0);
	/* The question still stands. */
	answer(h, id, 1, 5, "", "", NULL, 0, 0);
	assert_int_equal(done_calls, 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_cost, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reserve_settle, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_refused, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_warnings_once, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_run_ends_first, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_malformed, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
