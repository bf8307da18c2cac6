/*
 * test_status.c: unit tests of the supervisor's process list
 * (supervisor/status.c): what each entry says, and the paging that keeps
 * every IPC_PROCESS_LIST datagram within IPC_MAX_PAYLOAD however many
 * children there are.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

/* The code under test, built into this program with the stubs below. */
#include "../../supervisor/status.c"

static uint64_t fake_now_ms;

uint64_t
sup_now_ms(void)
{
	return fake_now_ms;
}

const char *
sup_child_state_name(enum sup_child_state s)
{
	return s == SUP_CHILD_READY ? "ready" : "backoff";
}

static const struct sup_kind worker_kind = { .id = SUP_KIND_WORKER,
	.name = "worker" };

struct fixture {
	struct event_base	*base;
	struct sup_ctx		 ctx;
	struct sup_child	 front;
	int			 peer;		/* the front's end */
};

static void
chan_closed(struct ipc_chan *chan, int error, void *arg)
{
	fail_msg("the front's channel closed: %d", error);
}

static void
fixture_init(struct fixture *f)
{
	int sv[2];

	memset(f, 0, sizeof(*f));
	f->base = event_base_new();
	assert_non_null(f->base);
	TAILQ_INIT(&f->ctx.children);
	f->ctx.started_ms = 1000;
	fake_now_ms = 61000;
	assert_int_equal(ipc_socketpair(sv), 0);
	f->front.chan = ipc_chan_new(f->base, sv[0], "front", 0, NULL,
	    chan_closed, f);
	assert_non_null(f->front.chan);
	snprintf(f->front.label, sizeof(f->front.label), "front");
	f->peer = sv[1];
}

static void
fixture_free(struct fixture *f)
{
	struct sup_child *c;

	while ((c = TAILQ_FIRST(&f->ctx.children)) != NULL) {
		TAILQ_REMOVE(&f->ctx.children, c, entry);
		free(c);
	}
	if (f->front.chan != NULL)
		ipc_chan_free(f->front.chan);
	close(f->peer);
	event_base_free(f->base);
}

/* A worker with full-length sandbox facts; pid 0 for odd i. */
static struct sup_child *
add_child(struct fixture *f, size_t i)
{
	struct sup_child *c = calloc(1, sizeof(*c));
	size_t k;

	assert_non_null(c);
	c->kind = &worker_kind;
	snprintf(c->tenant_name, sizeof(c->tenant_name), "t%05zu", i);
	c->pid = i % 2 == 0 ? (pid_t)(i + 100) : 0;
	c->uid = i % 4 == 0 ? (uid_t)-1 : (uid_t)(200000 + i);
	c->gid = i % 4 == 0 ? (gid_t)-1 : (gid_t)(200000 + i);
	c->state = c->pid != 0 ? SUP_CHILD_READY : SUP_CHILD_BACKOFF;
	c->restarts = (uint32_t)i;
	c->generation = (uint32_t)i + 1;
	c->started_ms = 31000;
	for (k = 0; k < SUP_FACTS_MAX; k++) {
		memset(c->applied[k], 'a', SUP_FACT_LEN - 1);
		memset(c->skipped[k], 's', SUP_FACT_LEN - 1);
	}
	c->napplied = c->nskipped = SUP_FACTS_MAX;
	snprintf(c->cgroup, sizeof(c->cgroup), "cg %zu", i);
	if (c->pid == 0)
		snprintf(c->last_exit, sizeof(c->last_exit), "signal 9");
	TAILQ_INSERT_TAIL(&f->ctx.children, c, entry);
	return c;
}

/*
 * Runs the loop until the last page arrived; checks every page and each
 * entry against the children. Returns the number of pages.
 */
static size_t
collect(struct fixture *f, size_t nchildren, uint32_t request_id)
{
	static uint8_t buf[IPC_DATAGRAM_MAX];
	Palyra__Ipc__ProcessList *page;
	const Palyra__Ipc__ProcessInfo *p;
	struct ipc_msg m;
	size_t pages = 0, seen = 0, i, idle = 0;
	int fds[IPC_MAX_FDS], nfds, last = 0;
	ssize_t n;
	char want[16];

	while (!last) {
		event_base_loop(f->base, EVLOOP_NONBLOCK);
		n = ipc_recvmsg(f->peer, buf, sizeof(buf), fds, &nfds);
		if (n == -EAGAIN) {
			assert_true(++idle < 100000);
			continue;
		}
		assert_true(n > 0);
		assert_true((size_t)n <= IPC_HEADER_LEN + IPC_MAX_PAYLOAD);
		assert_int_equal(ipc_decode(buf, (size_t)n, nfds, &m), 0);
		assert_int_equal(m.hdr.type, IPC_PROCESS_LIST);
		assert_int_equal(m.hdr.request_id, request_id);
		page = (Palyra__Ipc__ProcessList *)m.msg;
		assert_int_equal(page->supervisor_pid, (uint32_t)getpid());
		assert_int_equal(page->supervisor_uptime_ms, 60000);
		pages++;
		last = !page->more;
		/* Only an empty table gives an empty page. */
		assert_true(page->n_processes > 0 || nchildren == 0);
		for (i = 0; i < page->n_processes; i++, seen++) {
			p = page->processes[i];
			snprintf(want, sizeof(want), "t%05zu", seen);
			assert_string_equal(p->kind, "worker");
			assert_string_equal(p->tenant, want);
			if (seen % 2 == 0) {
				assert_int_equal(p->pid, seen + 100);
				assert_string_equal(p->state, "ready");
				assert_int_equal(p->uptime_ms, 30000);
				assert_string_equal(p->last_exit, "");
			} else {
				assert_int_equal(p->pid, 0);
				assert_string_equal(p->state, "backoff");
				assert_int_equal(p->uptime_ms, 0);
				assert_string_equal(p->last_exit, "signal 9");
			}
			/* Ids not switched: the supervisor's own. */
			assert_int_equal(p->uid, seen % 4 == 0 ?
			    (uint32_t)getuid() : 200000 + seen);
			assert_int_equal(p->gid, seen % 4 == 0 ?
			    (uint32_t)getgid() : 200000 + seen);
			assert_int_equal(p->restarts, seen);
			assert_int_equal(p->generation, seen + 1);
			assert_int_equal(p->n_sandbox_applied, SUP_FACTS_MAX);
			assert_int_equal(p->n_sandbox_skipped, SUP_FACTS_MAX);
			assert_int_equal(strlen(p->sandbox_applied[0]),
			    SUP_FACT_LEN - 1);
			snprintf(want, sizeof(want), "cg %zu", seen);
			assert_string_equal(p->cgroup, want);
		}
		ipc_msg_clear(&m);
	}
	assert_int_equal(seen, nchildren);
	return pages;
}

static void
test_small_table_is_one_page(void **state)
{
	struct fixture f;
	size_t i;

	fixture_init(&f);
	for (i = 0; i < 4; i++)
		add_child(&f, i);
	assert_int_equal(sup_status_send(&f.ctx, &f.front, 7), 0);
	assert_int_equal(collect(&f, 4, 7), 1);
	fixture_free(&f);
}

static void
test_empty_table(void **state)
{
	struct fixture f;

	fixture_init(&f);
	assert_int_equal(sup_status_send(&f.ctx, &f.front, 9), 0);
	assert_int_equal(collect(&f, 0, 9), 1);
	fixture_free(&f);
}

/* Thousands of tenants: many pages, each within one datagram, in order. */
static void
test_large_table_is_paged(void **state)
{
	struct fixture f;
	size_t i, n = 1500, pages;

	fixture_init(&f);
	for (i = 0; i < n; i++)
		add_child(&f, i);
	assert_int_equal(sup_status_send(&f.ctx, &f.front, 0xfffffffe), 0);
	pages = collect(&f, n, 0xfffffffe);
	assert_true(pages > 1);
	fixture_free(&f);
}

static void
test_dead_channel(void **state)
{
	struct fixture f;

	fixture_init(&f);
	add_child(&f, 0);
	ipc_chan_free(f.front.chan);
	f.front.chan = NULL;
	assert_int_equal(sup_status_send(&f.ctx, &f.front, 1), -EPIPE);
	fixture_free(&f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_small_table_is_one_page),
		cmocka_unit_test(test_empty_table),
		cmocka_unit_test(test_large_table_is_paged),
		cmocka_unit_test(test_dead_channel),
	};

	log_init("test_status", NULL, 0, 1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
