/*
 * test_sse.c: the text/event-stream parser (common/sse.c): fields, line
 * ends, BOM, comments, bounds, NUL, callback stops, the end of the stream,
 * and the property that how the bytes are split never changes the events.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sse.h"

/* Every event delivered, as "event|data|id" records. */
struct record {
	char text[65536];
	size_t len;
	size_t n;
	int stop_at; /* return stop_rc at this event (1-based) */
	int stop_rc;
	char last_event[SSE_EVENT_NAME_MAX + 1];
	char last_data[4096];
	size_t last_len;
	char last_id[SSE_ID_MAX + 1];
};

static int
on_event(const struct sse_event *ev, void *arg)
{
	struct record *r = arg;
	int n;

	assert_non_null(ev->event);
	assert_non_null(ev->data);
	assert_non_null(ev->id);
	assert_int_equal(ev->data[ev->data_len], '\0');
	n = snprintf(r->text + r->len, sizeof(r->text) - r->len, "%s|%s|%s\n",
	    ev->event, ev->data, ev->id);
	assert_true(n > 0 && (size_t)n < sizeof(r->text) - r->len);
	r->len += (size_t)n;
	r->n++;
	snprintf(r->last_event, sizeof(r->last_event), "%s", ev->event);
	assert_true(ev->data_len < sizeof(r->last_data));
	memcpy(r->last_data, ev->data, ev->data_len + 1);
	r->last_len = ev->data_len;
	snprintf(r->last_id, sizeof(r->last_id), "%s", ev->id);
	if (r->stop_at != 0 && (size_t)r->stop_at == r->n)
		return r->stop_rc;
	return 0;
}

/* Parses the whole text in one piece; returns sse_feed's result. */
static int
parse(const char *text, size_t len, size_t max, struct record *r,
    struct sse_parser *p)
{
	int rc;

	memset(r, 0, sizeof(*r));
	assert_int_equal(sse_init(p, max, on_event, r), 0);
	rc = sse_feed(p, text, len);
	return rc;
}

static void
expect(const char *text, const char *want)
{
	struct sse_parser p;
	struct record r;

	assert_int_equal(parse(text, strlen(text), 4096, &r, &p), 0);
	assert_int_equal(sse_finish(&p), 0);
	sse_fini(&p);
	assert_string_equal(r.text, want);
}

static void
test_fields(void **state)
{
	expect("data: hello\n\n", "message|hello|\n");
	/* Multi-line data is joined with "\n"; one leading space goes. */
	expect("data: a\ndata:b\ndata:  c\n\n", "message|a\nb\n c|\n");
	/* "data" alone and "data:" are empty lines of data. */
	expect("data\ndata:\ndata: x\n\n", "message|\n\nx|\n");
	expect("data:\n\n", "message||\n");
	/* The event name applies to one event only. */
	expect(
	    "event: delta\ndata: 1\n\ndata: 2\n\n", "delta|1|\nmessage|2|\n");
	/* An empty event name is the default. */
	expect("event:\ndata: 1\n\n", "message|1|\n");
	/* The id stays until changed; an empty id resets it. */
	expect("id: 7\ndata: a\n\ndata: b\n\nid\ndata: c\n\n",
	    "message|a|7\nmessage|b|7\nmessage|c|\n");
	/* Unknown fields and fields with a different case are ignored. */
	expect("foo: bar\nData: no\ndata: yes\nx\n\n", "message|yes|\n");
	/* An event with no data is not delivered; its name does not stay. */
	expect("event: ping\n\ndata: x\n\n", "message|x|\n");
	/* Blank lines alone deliver nothing. */
	expect("\n\n\r\n\r\r", "");
	/* A value may contain colons. */
	expect("data: {\"a\":\"b:c\"}\n\n", "message|{\"a\":\"b:c\"}|\n");
	/* Field names longer than any known one are unknown fields. */
	{
		char text[1024];

		memset(text, 'd', 600);
		snprintf(text + 600, sizeof(text) - 600, ": x\ndata: y\n\n");
		expect(text, "message|y|\n");
	}
}

static void
test_line_ends(void **state)
{
	const char *want = "e|a\nb|1\nmessage|c|1\n";

	expect("event: e\nid: 1\ndata: a\ndata: b\n\ndata: c\n\n", want);
	expect("event: e\rid: 1\rdata: a\rdata: b\r\rdata: c\r\r", want);
	expect("event: e\r\nid: 1\r\ndata: a\r\ndata: b\r\n\r\ndata: c\r\n"
	       "\r\n",
	    want);
	/* Mixed, and a CR LF pair is one line end, a LF CR pair two. */
	expect("event: e\r\nid: 1\rdata: a\ndata: b\r\n\ndata: c\n\r", want);
	expect("data: a\n\rdata: b\n\n", "message|a|\nmessage|b|\n");
}

static void
test_bom(void **state)
{
	expect("\xef\xbb\xbf"
	       "data: x\n\n",
	    "message|x|\n");
	/* Only one BOM is skipped: a second makes an unknown field. */
	expect("\xef\xbb\xbf\xef\xbb\xbf"
	       "data: x\n\ndata: y\n\n",
	    "message|y|\n");
	/* A BOM not at the start is data. */
	expect("data: \xef\xbb\xbf\n\n", "message|\xef\xbb\xbf|\n");
	/* A partial BOM is ordinary bytes. */
	expect("\xef\xbb"
	       "data: x\n\ndata: y\n\n",
	    "message|y|\n");
	expect("\xef"
	       "\n"
	       "data: y\n\n",
	    "message|y|\n");
}

static void
test_comments_retry(void **state)
{
	struct sse_parser p;
	struct record r;
	const char *text = ": keep-alive\n\n:\r\n: x\rdata: 1\n: mid\n\n"
			   "retry: 2500\n\nretry: 10x\nretry:\nretry: -1\n\n";

	assert_int_equal(parse(text, strlen(text), 64, &r, &p), 0);
	assert_int_equal(p.comments, 4);
	assert_int_equal(p.events, 1);
	assert_int_equal(p.retry_ms, 2500);
	assert_string_equal(r.text, "message|1|\n");
	/* A comment alone is not an unterminated event. */
	assert_int_equal(sse_feed(&p, ": tail", 6), 0);
	assert_int_equal(sse_finish(&p), 0);
	sse_fini(&p);
}

static void
test_bounds(void **state)
{
	struct sse_parser p;
	struct record r;
	char text[2048], name[SSE_EVENT_NAME_MAX + 2], id[SSE_ID_MAX + 2];

	/* Exactly max bytes of data, including the joining newlines. */
	snprintf(text, sizeof(text), "data: 0123\ndata: 45678\n\n");
	assert_int_equal(parse(text, strlen(text), 10, &r, &p), 0);
	assert_int_equal(r.last_len, 10);
	assert_string_equal(r.last_data, "0123\n45678");
	sse_fini(&p);
	/* One more is an error, never a truncation. */
	snprintf(text, sizeof(text), "data: 0123\ndata: 456789\n\n");
	assert_int_equal(parse(text, strlen(text), 10, &r, &p), -EMSGSIZE);
	assert_int_equal(r.n, 0);
	/* After an error the parser refuses more. */
	assert_int_equal(sse_feed(&p, "\n", 1), -EINVAL);
	sse_fini(&p);
	/* The joining newline alone can cross the bound. */
	snprintf(text, sizeof(text), "data: 0123456789\ndata\n\n");
	assert_int_equal(parse(text, strlen(text), 10, &r, &p), -EMSGSIZE);
	sse_fini(&p);
	/* Event names: SSE_EVENT_NAME_MAX is fine, one more is not. */
	memset(name, 'n', sizeof(name));
	name[SSE_EVENT_NAME_MAX] = '\0';
	snprintf(text, sizeof(text), "event: %s\ndata: x\n\n", name);
	assert_int_equal(parse(text, strlen(text), 10, &r, &p), 0);
	assert_string_equal(r.last_event, name);
	sse_fini(&p);
	name[SSE_EVENT_NAME_MAX] = 'n';
	name[SSE_EVENT_NAME_MAX + 1] = '\0';
	snprintf(text, sizeof(text), "event: %s\ndata: x\n\n", name);
	assert_int_equal(parse(text, strlen(text), 10, &r, &p), -EMSGSIZE);
	sse_fini(&p);
	/* Ids: SSE_ID_MAX is fine, one more is not. */
	memset(id, 'i', sizeof(id));
	id[SSE_ID_MAX] = '\0';
	snprintf(text, sizeof(text), "id: %s\ndata: x\n\n", id);
	assert_int_equal(parse(text, strlen(text), 10, &r, &p), 0);
	assert_string_equal(r.last_id, id);
	sse_fini(&p);
	id[SSE_ID_MAX] = 'i';
	id[SSE_ID_MAX + 1] = '\0';
	snprintf(text, sizeof(text), "id: %s\ndata: x\n\n", id);
	assert_int_equal(parse(text, strlen(text), 10, &r, &p), -EMSGSIZE);
	sse_fini(&p);
	/* A long retry value is ignored, not an error. */
	memset(text, '9', 1000);
	memcpy(text, "retry: ", 7);
	snprintf(text + 1000, sizeof(text) - 1000, "\ndata: x\n\n");
	assert_int_equal(parse(text, strlen(text), 10, &r, &p), 0);
	assert_int_equal(p.retry_ms, 0);
	assert_int_equal(r.n, 1);
	sse_fini(&p);
	/* An unknown field's value is not bounded (it is not kept). */
	memset(text, 'v', 1500);
	memcpy(text, "x: ", 3);
	snprintf(text + 1500, sizeof(text) - 1500, "\ndata: x\n\n");
	assert_int_equal(parse(text, strlen(text), 10, &r, &p), 0);
	assert_int_equal(r.n, 1);
	sse_fini(&p);
	assert_int_equal(sse_init(&p, 0, on_event, &r), -EINVAL);
}

static void
test_nul(void **state)
{
	struct sse_parser p;
	struct record r;
	static const char in_data[] = "data: a\0b\n\n";
	static const char in_name[] = "da\0ta: a\n\n";
	static const char in_comment[] = ": \0\n";

	assert_int_equal(
	    parse(in_data, sizeof(in_data) - 1, 64, &r, &p), -EILSEQ);
	assert_int_equal(r.n, 0);
	assert_int_equal(sse_feed(&p, "\n", 1), -EINVAL);
	sse_fini(&p);
	assert_int_equal(
	    parse(in_name, sizeof(in_name) - 1, 64, &r, &p), -EILSEQ);
	sse_fini(&p);
	assert_int_equal(
	    parse(in_comment, sizeof(in_comment) - 1, 64, &r, &p), -EILSEQ);
	sse_fini(&p);
}

static void
test_callback_stops(void **state)
{
	struct sse_parser p;
	struct record r;
	const char *text = "data: 1\n\ndata: 2\n\ndata: 3\n\n";

	memset(&r, 0, sizeof(r));
	r.stop_at = 2;
	r.stop_rc = 7;
	assert_int_equal(sse_init(&p, 64, on_event, &r), 0);
	assert_int_equal(sse_feed(&p, text, strlen(text)), 7);
	assert_int_equal(r.n, 2);
	assert_string_equal(r.text, "message|1|\nmessage|2|\n");
	/* A positive stop is not an error: nothing is pending. */
	assert_int_equal(sse_finish(&p), 0);
	sse_fini(&p);

	memset(&r, 0, sizeof(r));
	r.stop_at = 1;
	r.stop_rc = -EPROTO;
	assert_int_equal(sse_init(&p, 64, on_event, &r), 0);
	assert_int_equal(sse_feed(&p, text, strlen(text)), -EPROTO);
	assert_int_equal(r.n, 1);
	assert_int_equal(sse_feed(&p, text, strlen(text)), -EINVAL);
	sse_fini(&p);
}

static void
finish_case(const char *text, int want_pending, size_t want_events)
{
	struct sse_parser p;
	struct record r;

	assert_int_equal(parse(text, strlen(text), 64, &r, &p), 0);
	assert_int_equal(sse_finish(&p), want_pending);
	assert_int_equal(r.n, want_events);
	sse_fini(&p);
}

static void
test_finish(void **state)
{
	finish_case("", 0, 0);
	finish_case("data: 1\n\n", 0, 1);
	/* The unterminated event is dropped and reported. */
	finish_case("data: 1\n\ndata: 2\n", 1, 1);
	finish_case("data: 1\n\ndata: 2", 1, 1);
	finish_case("dat", 1, 0);
	finish_case("event: x\n", 1, 0);
	finish_case("id: 3\n", 1, 0);
	finish_case("\xef\xbb", 1, 0);
	finish_case(": ping\n", 0, 0);
	finish_case(": pi", 0, 0);
	finish_case("\xef\xbb\xbf", 0, 0);
	/* A CR at the very end ends the blank line: nothing pending. */
	finish_case("data: 1\r\r", 0, 1);
}

/*
 * The property: the events (names, data, ids), the comments and the retry
 * value are the same however the stream is cut: in two at every position,
 * in three at every pair of positions of a shorter stream, in 1-byte
 * pieces, and in pseudo-random pieces.
 */
static const char stream[] =
    "\xef\xbb\xbf"
    ": keep-alive\r\n"
    "event: message_start\r\n"
    "id: 1\r\n"
    "data: {\"type\":\"message_start\"}\r\n"
    "\r\n"
    "retry: 1500\n"
    "data: h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\n"
    "data: line two\r"
    "data:no space\r\n"
    "\n"
    ":\n"
    "event: content_block_delta\r"
    "data: {\"delta\":{\"text\":\"a:b\"}}\r"
    "\r"
    "unknown: field\n"
    "data\n"
    "\n"
    "id\r\n"
    "data: [DONE]\n"
    "\n"
    "data: unterminated";

struct outcome {
	struct record r;
	uint64_t comments;
	uint64_t retry_ms;
	int rc;
	int pending;
};

static void
run_split(const size_t *cuts, size_t ncuts, size_t len, struct outcome *o)
{
	struct sse_parser p;
	size_t from = 0, i, to;

	memset(o, 0, sizeof(*o));
	assert_int_equal(sse_init(&p, 256, on_event, &o->r), 0);
	for (i = 0; i <= ncuts; i++) {
		to = i < ncuts ? cuts[i] : len;
		if ((o->rc = sse_feed(&p, stream + from, to - from)) != 0)
			break;
		from = to;
	}
	o->pending = sse_finish(&p);
	o->comments = p.comments;
	o->retry_ms = p.retry_ms;
	sse_fini(&p);
}

static void
same(const struct outcome *a, const struct outcome *b)
{
	assert_int_equal(a->rc, b->rc);
	assert_int_equal(a->pending, b->pending);
	assert_int_equal(a->comments, b->comments);
	assert_int_equal(a->retry_ms, b->retry_ms);
	assert_int_equal(a->r.n, b->r.n);
	assert_string_equal(a->r.text, b->r.text);
}

static void
test_split_anywhere(void **state)
{
	static struct outcome whole, piece;
	const size_t len = sizeof(stream) - 1;
	size_t cuts[sizeof(stream)], i, j, n;
	uint32_t seed = 12345;

	run_split(NULL, 0, len, &whole);
	assert_int_equal(whole.rc, 0);
	assert_int_equal(whole.pending, 1);
	assert_int_equal(whole.comments, 2);
	assert_int_equal(whole.retry_ms, 1500);
	assert_string_equal(whole.r.text,
	    "message_start|{\"type\":\"message_start\"}|1\n"
	    "message|h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\n"
	    "line two\nno space|1\n"
	    "content_block_delta|{\"delta\":{\"text\":\"a:b\"}}|1\n"
	    "message||1\n"
	    "message|[DONE]|\n");
	/* Two pieces, cut at every position (empty pieces included). */
	for (i = 0; i <= len; i++) {
		cuts[0] = i;
		run_split(cuts, 1, len, &piece);
		same(&whole, &piece);
	}
	/* Three pieces, at every pair of positions. */
	for (i = 0; i <= len; i++)
		for (j = i; j <= len; j++) {
			cuts[0] = i;
			cuts[1] = j;
			run_split(cuts, 2, len, &piece);
			same(&whole, &piece);
		}
	/* One byte at a time. */
	for (i = 0; i < len - 1; i++)
		cuts[i] = i + 1;
	run_split(cuts, len - 1, len, &piece);
	same(&whole, &piece);
	/* Random pieces of 1 to 8 bytes. */
	for (j = 0; j < 200; j++) {
		for (n = 0, i = 0;;) {
			seed = seed * 1103515245u + 12345u;
			i += 1 + (seed >> 16) % 8;
			if (i >= len)
				break;
			cuts[n++] = i;
		}
		run_split(cuts, n, len, &piece);
		same(&whole, &piece);
	}
}

/* The buffer grows on demand up to the bound, and back after a large
 * event: events of every size up to the bound arrive whole, fed in
 * pieces that cross the growth steps. */
struct big {
	size_t	 n;
	size_t	 last_len;
	int	 intact;
};

static int
on_big(const struct sse_event *ev, void *arg)
{
	struct big *b = arg;
	size_t i;

	b->n++;
	b->last_len = ev->data_len;
	b->intact = ev->data[ev->data_len] == '\0';
	for (i = 0; i < ev->data_len; i++)
		if (ev->data[i] != (char)('a' + i % 26))
			b->intact = 0;
	return 0;
}

static void
test_growth(void **state)
{
	static const size_t sizes[] = { 1, 511, 512, 513, 4096, 70000,
	    10, 131072, 3 };
	const size_t max = 131072;
	struct sse_parser p;
	struct big b;
	char *text;
	size_t i, k, len, off, step;

	(void)state;
	memset(&b, 0, sizeof(b));
	assert_int_equal(sse_init(&p, max, on_big, &b), 0);
	assert_true(p.size <= 512);
	text = malloc(max + 16);
	assert_non_null(text);
	for (k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		len = (size_t)snprintf(text, 8, "data:");
		for (i = 0; i < sizes[k]; i++)
			text[len++] = (char)('a' + i % 26);
		text[len++] = '\n';
		text[len++] = '\n';
		for (off = 0, step = 777; off < len; off += step) {
			if (step > len - off)
				step = len - off;
			assert_int_equal(sse_feed(&p, text + off, step), 0);
		}
		assert_int_equal(b.n, k + 1);
		assert_int_equal(b.last_len, sizes[k]);
		assert_true(b.intact);
		/* Never more than the bound; little between events. */
		assert_true(p.size <= max + 1);
		assert_true(p.size <= 4096);
	}
	/* One byte over the bound is still an error. */
	len = (size_t)snprintf(text, 8, "data:");
	memset(text + len, 'x', max + 1);
	len += max + 1;
	assert_int_equal(sse_feed(&p, text, len), -EMSGSIZE);
	sse_fini(&p);
	free(text);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fields),
	    cmocka_unit_test(test_line_ends),
	    cmocka_unit_test(test_bom),
	    cmocka_unit_test(test_comments_retry),
	    cmocka_unit_test(test_bounds),
	    cmocka_unit_test(test_nul),
	    cmocka_unit_test(test_callback_stops),
	    cmocka_unit_test(test_finish),
	    cmocka_unit_test(test_split_anywhere),
	    cmocka_unit_test(test_growth),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
