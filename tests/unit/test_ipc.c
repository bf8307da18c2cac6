/*
 * test_ipc.c: unit tests of the IPC codec and channels (common/ipc*.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "ipc.h"
#include "ipc.pb-c.h"
#include "palyra/v1/gateway.pb-c.h"
#include "log.h"

static uint8_t buf[IPC_DATAGRAM_MAX];

static ssize_t
encode_ready(uint32_t pid, uint32_t reqid)
{
	Palyra__Ipc__Ready r = PALYRA__IPC__READY__INIT;

	r.pid = pid;
	return ipc_encode(buf, sizeof(buf), IPC_READY, reqid, &r.base);
}

static void
test_round_trip(void **state)
{
	Palyra__Ipc__TokenInfo ti = PALYRA__IPC__TOKEN_INFO__INIT, *out;
	struct ipc_msg m;
	ssize_t len;

	ti.found = 1;
	ti.tenant = "acme";
	ti.principal = "alice";
	ti.role = "user";
	ti.token_id = "0123456789abcdef";
	len = ipc_encode(buf, sizeof(buf), IPC_TOKEN_INFO, 77, &ti.base);
	assert_true(len > (ssize_t)IPC_HEADER_LEN);
	assert_int_equal(ipc_decode(buf, (size_t)len, 0, &m), 0);
	assert_int_equal(m.hdr.type, IPC_TOKEN_INFO);
	assert_int_equal(m.hdr.request_id, 77);
	out = (Palyra__Ipc__TokenInfo *)m.msg;
	assert_true(out->found);
	assert_string_equal(out->tenant, "acme");
	assert_string_equal(out->principal, "alice");
	ipc_msg_clear(&m);
	assert_null(m.msg);
}

/* journald -> front: a committed INTERRUPTED status with its tenant. */
static void
test_run_notice_round_trip(void **state)
{
	Palyra__Ipc__RunNotice n = PALYRA__IPC__RUN_NOTICE__INIT, *out;
	Palyra__V1__RunEvent ev = PALYRA__V1__RUN_EVENT__INIT;
	Palyra__V1__StatusEvent st = PALYRA__V1__STATUS_EVENT__INIT;
	struct ipc_msg m;
	ssize_t len;

	st.status = PALYRA__V1__RUN_STATUS__RUN_STATUS_INTERRUPTED;
	st.reason = "worker exited";
	ev.run_id = "0123456789abcdef0123456789abcdef";
	ev.session_id = "s1";
	ev.seq = 7;
	ev.timestamp_unix_ms = 1700000000000;
	ev.event_case = PALYRA__V1__RUN_EVENT__EVENT_STATUS;
	ev.status = &st;
	n.tenant = "acme";
	n.event = &ev;
	len = ipc_encode(buf, sizeof(buf), IPC_RUN_NOTICE, 0, &n.base);
	assert_true(len > (ssize_t)IPC_HEADER_LEN);
	assert_string_equal(ipc_type_name(IPC_RUN_NOTICE), "RUN_NOTICE");
	assert_int_equal(ipc_decode(buf, (size_t)len, 0, &m), 0);
	assert_int_equal(m.hdr.type, IPC_RUN_NOTICE);
	out = (Palyra__Ipc__RunNotice *)m.msg;
	assert_string_equal(out->tenant, "acme");
	assert_non_null(out->event);
	assert_string_equal(out->event->run_id, ev.run_id);
	assert_int_equal(out->event->seq, 7);
	assert_int_equal(out->event->event_case,
	    PALYRA__V1__RUN_EVENT__EVENT_STATUS);
	assert_int_equal(out->event->status->status,
	    PALYRA__V1__RUN_STATUS__RUN_STATUS_INTERRUPTED);
	assert_string_equal(out->event->status->reason, "worker exited");
	ipc_msg_clear(&m);
	/* A notice carries no descriptor. */
	assert_int_equal(ipc_decode(buf, (size_t)len, 1, &m), -EPROTO);
}

/* A reattach page and an attach answer survive the codec. */
static void
test_run_page_round_trip(void **state)
{
	Palyra__Ipc__JournalRunPage page = PALYRA__IPC__JOURNAL_RUN_PAGE__INIT,
				    *out;
	Palyra__Ipc__RunAttached att = PALYRA__IPC__RUN_ATTACHED__INIT, *a;
	Palyra__V1__RunEvent ev[3], *evp[3];
	Palyra__V1__ModelToken tok = PALYRA__V1__MODEL_TOKEN__INIT;
	struct ipc_msg m;
	ssize_t len;
	size_t i;

	tok.text = " word";
	for (i = 0; i < 3; i++) {
		palyra__v1__run_event__init(&ev[i]);
		ev[i].run_id = "0123456789abcdef0123456789abcdef";
		ev[i].session_id = "s1";
		ev[i].seq = 5 + i;
		ev[i].event_case = PALYRA__V1__RUN_EVENT__EVENT_TOKEN;
		ev[i].token = &tok;
		evp[i] = &ev[i];
	}
	page.found = 1;
	page.principal = "alice";
	page.status = PALYRA__V1__RUN_STATUS__RUN_STATUS_IN_PROGRESS;
	page.last_seq = 9;
	page.n_events = 3;
	page.events = evp;
	page.more = 1;
	len = ipc_encode(buf, sizeof(buf), IPC_JOURNAL_RUN_PAGE, 4, &page.base);
	assert_true(len > (ssize_t)IPC_HEADER_LEN);
	assert_string_equal(
	    ipc_type_name(IPC_JOURNAL_RUN_PAGE), "JOURNAL_RUN_PAGE");
	assert_int_equal(ipc_decode(buf, (size_t)len, 0, &m), 0);
	out = (Palyra__Ipc__JournalRunPage *)m.msg;
	assert_true(out->found && out->more && !out->terminal);
	assert_string_equal(out->principal, "alice");
	assert_int_equal(out->n_events, 3);
	for (i = 0; i < 3; i++) {
		assert_int_equal(out->events[i]->seq, 5 + i);
		assert_string_equal(out->events[i]->token->text, " word");
	}
	ipc_msg_clear(&m);

	att.owned = 1;
	att.last_forwarded_seq = 12;
	len = ipc_encode(buf, sizeof(buf), IPC_RUN_ATTACHED, 9, &att.base);
	assert_int_equal(ipc_decode(buf, (size_t)len, 0, &m), 0);
	a = (Palyra__Ipc__RunAttached *)m.msg;
	assert_int_equal(m.hdr.request_id, 9);
	assert_true(a->owned && !a->full);
	assert_int_equal(a->last_forwarded_seq, 12);
	ipc_msg_clear(&m);
	/* The request of one kind is not the answer of another. */
	assert_int_equal(ipc_encode(buf, sizeof(buf), IPC_RUN_ATTACH, 9,
			     &att.base),
	    -EINVAL);
}

static void
test_truncated(void **state)
{
	struct ipc_msg m;
	ssize_t len = encode_ready(1234, 1);

	assert_true(len > 0);
	assert_int_equal(ipc_decode(buf, 0, 0, &m), -EBADMSG);
	assert_int_equal(ipc_decode(buf, IPC_HEADER_LEN - 1, 0, &m),
	    -EBADMSG);
	/* The header promises more than arrived. */
	assert_int_equal(ipc_decode(buf, (size_t)len - 1, 0, &m), -EBADMSG);
	assert_null(m.msg);
}

static void
test_trailing_bytes(void **state)
{
	struct ipc_msg m;
	ssize_t len = encode_ready(1234, 1);

	buf[len] = 0x08;
	assert_int_equal(ipc_decode(buf, (size_t)len + 1, 0, &m), -EBADMSG);
	assert_null(m.msg);
}

static void
test_oversized(void **state)
{
	struct ipc_header h = { IPC_READY, 0, 0, IPC_MAX_PAYLOAD + 1 };
	Palyra__Ipc__TokenStored ts = PALYRA__IPC__TOKEN_STORED__INIT;
	struct ipc_msg m;
	char *big;

	memcpy(buf, &h, sizeof(h));
	assert_int_equal(ipc_decode(buf, sizeof(buf), 0, &m), -EMSGSIZE);
	/* The encoder refuses what the decoder would refuse. */
	big = malloc(IPC_MAX_PAYLOAD + 1);
	assert_non_null(big);
	memset(big, 'x', IPC_MAX_PAYLOAD);
	big[IPC_MAX_PAYLOAD] = '\0';
	ts.error = big;
	assert_int_equal(ipc_encode(buf, sizeof(buf), IPC_TOKEN_STORED, 0,
	    &ts.base), -EMSGSIZE);
	free(big);
}

static void
test_bad_type_flags_fds(void **state)
{
	struct ipc_header h;
	struct ipc_msg m;
	ssize_t len = encode_ready(1, 1);

	memcpy(&h, buf, sizeof(h));
	h.type = IPC_TYPE_MAX;
	memcpy(buf, &h, sizeof(h));
	assert_int_equal(ipc_decode(buf, (size_t)len, 0, &m), -EPROTO);
	h.type = IPC_NONE;
	memcpy(buf, &h, sizeof(h));
	assert_int_equal(ipc_decode(buf, (size_t)len, 0, &m), -EPROTO);
	h.type = IPC_READY;
	h.flags = 1;
	memcpy(buf, &h, sizeof(h));
	assert_int_equal(ipc_decode(buf, (size_t)len, 0, &m), -EPROTO);
	h.flags = 0;
	memcpy(buf, &h, sizeof(h));
	/* READY carries no descriptor; one arriving with it is refused. */
	assert_int_equal(ipc_decode(buf, (size_t)len, 1, &m), -EPROTO);
	assert_int_equal(ipc_decode(buf, (size_t)len, 0, &m), 0);
	ipc_msg_clear(&m);
}

static void
test_garbage_payload(void **state)
{
	struct ipc_header h = { IPC_READY, 0, 0, 3 };
	struct ipc_msg m;

	memcpy(buf, &h, sizeof(h));
	/* A field tag with a length running past the end. */
	buf[IPC_HEADER_LEN] = 0x0a;
	buf[IPC_HEADER_LEN + 1] = 0x7f;
	buf[IPC_HEADER_LEN + 2] = 0x01;
	assert_int_equal(ipc_decode(buf, IPC_HEADER_LEN + 3, 0, &m),
	    -EBADMSG);
}

static void
test_wrong_message_kind(void **state)
{
	Palyra__Ipc__Ready r = PALYRA__IPC__READY__INIT;

	assert_int_equal(ipc_encode(buf, sizeof(buf), IPC_TOKEN_INFO, 0,
	    &r.base), -EINVAL);
	assert_int_equal(ipc_encode(buf, 4, IPC_READY, 0, &r.base),
	    -EMSGSIZE);
}

static void
test_fd_passing(void **state)
{
	Palyra__Ipc__AttachPeer ap = PALYRA__IPC__ATTACH_PEER__INIT;
	struct ipc_msg m;
	int sv[2], pipefd[2];
	char c = 0;

	assert_int_equal(ipc_socketpair(sv), 0);
	assert_int_equal(pipe(pipefd), 0);
	ap.kind = PALYRA__IPC__PEER_KIND__PEER_WORKER;
	ap.tenant = "acme";
	assert_int_equal(ipc_send_blocking(sv[0], IPC_ATTACH_PEER, 9,
	    &ap.base, &pipefd[1], 1), 0);
	assert_int_equal(ipc_recv_blocking(sv[1], &m), 0);
	assert_int_equal(m.nfds, 1);
	assert_true(m.fds[0] >= 0);
	/* The received descriptor is the pipe's write end. */
	assert_int_equal(write(m.fds[0], "z", 1), 1);
	assert_int_equal(read(pipefd[0], &c, 1), 1);
	assert_int_equal(c, 'z');
	assert_true(fcntl(m.fds[0], F_GETFD) & FD_CLOEXEC);
	ipc_msg_clear(&m);
	/* ATTACH_PEER without its descriptor is malformed. */
	assert_int_equal(ipc_send_blocking(sv[0], IPC_ATTACH_PEER, 9,
	    &ap.base, NULL, 0), 0);
	assert_int_equal(ipc_recv_blocking(sv[1], &m), -EPROTO);
	close(pipefd[0]);
	close(pipefd[1]);
	close(sv[0]);
	assert_int_equal(ipc_recv_blocking(sv[1], &m), -EPIPE);
	close(sv[1]);
}

struct chan_result {
	int	 messages;
	int	 closed;
	int	 error;
	struct event_base *base;
};

static void
on_msg(struct ipc_chan *c, struct ipc_msg *m, void *arg)
{
	struct chan_result *r = arg;

	r->messages++;
}

static void
on_close(struct ipc_chan *c, int error, void *arg)
{
	struct chan_result *r = arg;

	r->closed++;
	r->error = error;
	event_base_loopbreak(r->base);
}

static void
run_chan(int fd, uint64_t allowed, struct chan_result *r)
{
	struct ipc_chan *c;

	memset(r, 0, sizeof(*r));
	r->base = event_base_new();
	c = ipc_chan_new(r->base, fd, "test", allowed, on_msg, on_close, r);
	assert_non_null(c);
	event_base_dispatch(r->base);
	ipc_chan_free(c);
	event_base_free(r->base);
}

static void
test_chan_messages_then_eof(void **state)
{
	Palyra__Ipc__Ready rd = PALYRA__IPC__READY__INIT;
	struct chan_result r;
	int sv[2], i;

	assert_int_equal(ipc_socketpair(sv), 0);
	for (i = 0; i < 3; i++)
		assert_int_equal(ipc_send_blocking(sv[0], IPC_READY, i,
		    &rd.base, NULL, 0), 0);
	close(sv[0]);
	run_chan(sv[1], IPC_TYPE_BIT(IPC_READY), &r);
	assert_int_equal(r.messages, 3);
	assert_int_equal(r.closed, 1);
	assert_int_equal(r.error, 0);
}

static void
test_chan_not_allowed(void **state)
{
	Palyra__Ipc__Ready rd = PALYRA__IPC__READY__INIT;
	struct chan_result r;
	int sv[2];

	assert_int_equal(ipc_socketpair(sv), 0);
	assert_int_equal(ipc_send_blocking(sv[0], IPC_READY, 0, &rd.base,
	    NULL, 0), 0);
	run_chan(sv[1], IPC_TYPE_BIT(IPC_RUN_EVENT), &r);
	assert_int_equal(r.messages, 0);
	assert_int_equal(r.closed, 1);
	assert_int_equal(r.error, -EPERM);
	close(sv[0]);
}

static void
test_chan_malformed(void **state)
{
	struct ipc_header h = { IPC_READY, 0, 0, 10 };
	struct chan_result r;
	int sv[2];

	assert_int_equal(ipc_socketpair(sv), 0);
	memcpy(buf, &h, sizeof(h));
	/* Declares 10 payload bytes, sends 2. */
	assert_int_equal(ipc_sendmsg(sv[0], buf, IPC_HEADER_LEN + 2, NULL,
	    0), 0);
	run_chan(sv[1], IPC_TYPE_BIT(IPC_READY), &r);
	assert_int_equal(r.messages, 0);
	assert_int_equal(r.error, -EBADMSG);
	close(sv[0]);
}

static void
test_empty_datagram_is_not_eof(void **state)
{
	struct chan_result r;
	uint8_t b[IPC_HEADER_LEN];
	int sv[2], fds[IPC_MAX_FDS], nfds;

	assert_int_equal(ipc_socketpair(sv), 0);
	/* A live peer's empty datagram is malformed, not a close... */
	assert_int_equal(ipc_sendmsg(sv[0], b, 0, NULL, 0), 0);
	assert_int_equal(ipc_recvmsg(sv[1], buf, sizeof(buf), fds, &nfds),
	    -EBADMSG);
	/* ...and a channel reports it as such. */
	assert_int_equal(ipc_sendmsg(sv[0], b, 0, NULL, 0), 0);
	run_chan(sv[1], IPC_TYPE_BIT(IPC_READY), &r);
	assert_int_equal(r.error, -EBADMSG);
	close(sv[0]);

	/* A peer that hung up is EOF. */
	assert_int_equal(ipc_socketpair(sv), 0);
	close(sv[0]);
	assert_int_equal(ipc_recvmsg(sv[1], buf, sizeof(buf), fds, &nfds), 0);
	close(sv[1]);
}

static void
test_chan_high_water(void **state)
{
	Palyra__Ipc__Ready rd = PALYRA__IPC__READY__INIT;
	struct event_base *base = event_base_new();
	struct chan_result r;
	struct ipc_chan *c;
	int sv[2], i, rc = 0;

	assert_int_equal(ipc_socketpair(sv), 0);
	memset(&r, 0, sizeof(r));
	r.base = base;
	c = ipc_chan_new(base, sv[0], "slow", 0, on_msg, on_close, &r);
	assert_non_null(c);
	/* Nobody reads sv[1]: the kernel fills, then our queue, then we
	 * refuse instead of growing. */
	for (i = 0; i < 1000000; i++) {
		rc = ipc_chan_send(c, IPC_READY, (uint32_t)i, &rd.base, NULL,
		    0);
		if (rc != 0)
			break;
	}
	assert_int_equal(rc, -ENOBUFS);
	assert_int_equal(ipc_chan_queued(c), IPC_QUEUE_HIGH_WATER);
	ipc_chan_free(c);
	event_base_free(base);
	close(sv[1]);
}

/*
 * protobuf-c decodes field number 0 written as a two-byte tag (0x82 0x00)
 * but packs it back as 0x02, which it then refuses: a client's RunStart
 * holding one, carried in IPC_RUN_START, made the worker drop its channel
 * to the front. ipc_encode() refuses such a message instead, at any depth
 * (tests/fuzz/regress/ipc/).
 */
static void
test_field_zero_not_reencoded(void **state)
{
	static const uint8_t client_start[] = { 0x12, 0x02, 'h', 'i',
		0x82, 0x00, 0x01, 'x' };
	Palyra__Ipc__RunStartRequest req = PALYRA__IPC__RUN_START_REQUEST__INIT;
	Palyra__Ipc__Ready rd = PALYRA__IPC__READY__INIT;
	Palyra__V1__RunStart *start;
	struct ipc_msg m;
	uint8_t dgram[IPC_HEADER_LEN + 8];
	struct ipc_header h = { IPC_READY, 0, 9, 0 };
	ssize_t n;

	start = palyra__v1__run_start__unpack(NULL, sizeof(client_start),
	    client_start);
	assert_non_null(start);
	req.principal = "p";
	req.start = start;
	assert_int_equal(ipc_encode(buf, sizeof(buf), IPC_RUN_START, 1,
	    &req.base), -EINVAL);
	palyra__v1__run_start__free_unpacked(start, NULL);

	/* The same at the top level of a received datagram: decoded (the
	 * field is unknown), refused when sent on. */
	h.length = 5;
	memcpy(dgram, &h, sizeof(h));
	memcpy(dgram + IPC_HEADER_LEN, "\x08\x07\x82\x00\x00", 5);
	assert_int_equal(ipc_decode(dgram, IPC_HEADER_LEN + 5, 0, &m), 0);
	assert_int_equal(ipc_encode(buf, sizeof(buf), IPC_READY, 9, m.msg),
	    -EINVAL);
	ipc_msg_clear(&m);

	/* Unknown fields with a real number still travel. */
	memcpy(dgram + IPC_HEADER_LEN, "\x08\x07\xf8\x07\x01", 5);
	assert_int_equal(ipc_decode(dgram, IPC_HEADER_LEN + 5, 0, &m), 0);
	n = ipc_encode(buf, sizeof(buf), IPC_READY, 9, m.msg);
	assert_int_equal(n, IPC_HEADER_LEN + 5);
	ipc_msg_clear(&m);
	rd.pid = 7;
	assert_true(ipc_encode(buf, sizeof(buf), IPC_READY, 9, &rd.base) > 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_run_notice_round_trip),
		cmocka_unit_test(test_run_page_round_trip),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_trailing_bytes),
		cmocka_unit_test(test_oversized),
		cmocka_unit_test(test_bad_type_flags_fds),
		cmocka_unit_test(test_garbage_payload),
		cmocka_unit_test(test_wrong_message_kind),
		cmocka_unit_test(test_fd_passing),
		cmocka_unit_test(test_chan_messages_then_eof),
		cmocka_unit_test(test_chan_not_allowed),
		cmocka_unit_test(test_chan_malformed),
		cmocka_unit_test(test_empty_datagram_is_not_eof),
		cmocka_unit_test(test_chan_high_water),
		cmocka_unit_test(test_field_zero_not_reencoded),
	};

	log_init("test_ipc", NULL, 0, 1);
	return cmocka_run_group_tests_name("ipc", tests, NULL, NULL);
}
