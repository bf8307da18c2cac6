/*
 * sse.c: the incremental text/event-stream parser of sse.h, as the WHATWG
 * HTML standard ("server-sent events", section "Parsing an event stream")
 * describes it, with bounds instead of unbounded buffers.
 *
 * Runs in palyra-worker (every network provider). A pure function of the
 * bytes fed: no clock, no I/O, so that it can be fuzzed and its result
 * does not depend on how the bytes were split. The event buffer starts
 * small (SSE_BUF_INITIAL) and grows on demand up to the bound given to
 * sse_init(); an event that made it grow past SSE_BUF_KEEP gives the
 * memory back once delivered, so an idle stream holds little.
 *
 * The parser is a byte-wise state machine; only the data of a "data" line
 * is copied in runs. A line is never kept whole: the field name is kept
 * (bounded), a data value goes straight to the event's buffer, short
 * values (event, id, retry) to a bounded buffer.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sse.h"

enum sse_state {
	SSE_LINE_START = 0, /* nothing of the line read yet */
	SSE_FIELD,	    /* reading the field name */
	SSE_COMMENT,	    /* a ":" line: skipped to its end */
	SSE_VALUE_START,    /* just after the colon: one space is skipped */
	SSE_VALUE,	    /* reading the value */
	SSE_FAILED,	    /* an error was returned; fed no more */
};

enum sse_field {
	SSE_F_OTHER = 0, /* unknown: ignored */
	SSE_F_DATA,
	SSE_F_EVENT,
	SSE_F_ID,
	SSE_F_RETRY,
};

/* The UTF-8 byte order mark, skipped once at the start of the stream. */
static const char sse_bom[3] = {'\xef', '\xbb', '\xbf'};
#define SSE_BOM_DONE 3

/* The event buffer: its first size, and the most it keeps between
 * events. */
#define SSE_BUF_INITIAL 512
#define SSE_BUF_KEEP 4096

/* Field names longer than the line buffer are unknown fields. */
#define SSE_FIELD_OVER (sizeof(((struct sse_parser *)0)->line) + 1)

int
sse_init(struct sse_parser *p, size_t max_data, sse_event_cb cb, void *arg)
{
	memset(p, 0, sizeof(*p));
	if (max_data == 0 || max_data == SIZE_MAX)
		return -EINVAL;
	p->max = max_data + 1;
	p->size = p->max < SSE_BUF_INITIAL ? p->max : SSE_BUF_INITIAL;
	if ((p->buf = malloc(p->size)) == NULL)
		return -ENOMEM;
	p->cb = cb;
	p->arg = arg;
	p->state = SSE_LINE_START;
	return 0;
}

void
sse_fini(struct sse_parser *p)
{
	free(p->buf);
	p->buf = NULL;
	p->size = 0;
	p->max = 0;
}

/* Makes room for need bytes in the event buffer (the NUL included):
 * 0, -EMSGSIZE over the bound, -ENOMEM. */
static int
reserve(struct sse_parser *p, size_t need)
{
	size_t size;
	char *grown;

	if (need > p->max)
		return -EMSGSIZE;
	if (need <= p->size)
		return 0;
	size = p->size;
	while (size < need)
		size = size > p->max / 2 ? p->max : size * 2;
	if ((grown = realloc(p->buf, size)) == NULL)
		return -ENOMEM;
	p->buf = grown;
	p->size = size;
	return 0;
}

static enum sse_field
field_kind(const struct sse_parser *p)
{
	if (p->field_len == 4 && memcmp(p->line, "data", 4) == 0)
		return SSE_F_DATA;
	if (p->field_len == 5 && memcmp(p->line, "event", 5) == 0)
		return SSE_F_EVENT;
	if (p->field_len == 2 && memcmp(p->line, "id", 2) == 0)
		return SSE_F_ID;
	if (p->field_len == 5 && memcmp(p->line, "retry", 5) == 0)
		return SSE_F_RETRY;
	return SSE_F_OTHER;
}

/* The field name is complete (a colon or the end of the line). */
static int
begin_value(struct sse_parser *p)
{
	p->field = field_kind(p);
	p->value_len = 0;
	p->value_overflow = 0;
	if (p->field == SSE_F_DATA) {
		/* Lines are joined with "\n": one before every line but the
		 * first, which is the format's "append, then strip the last".
		 */
		if (p->has_data) {
			int rc;

			if ((rc = reserve(p, p->len + 2)) != 0)
				return rc;
			p->buf[p->len++] = '\n';
		}
		p->has_data = 1;
	}
	return 0;
}

static void
set_retry(struct sse_parser *p)
{
	uint64_t v = 0;
	size_t i;

	if (p->value_overflow || p->value_len == 0)
		return;
	for (i = 0; i < p->value_len; i++) {
		if (p->value[i] < '0' || p->value[i] > '9')
			return; /* not only digits: ignored */
		if (v > (UINT64_MAX - 9) / 10)
			return; /* absurd: ignored */
		v = v * 10 + (uint64_t)(p->value[i] - '0');
	}
	p->retry_ms = v;
}

/* The value of a short field is complete. */
static int
end_value(struct sse_parser *p)
{
	switch (p->field) {
	case SSE_F_EVENT:
		if (p->value_overflow || p->value_len > SSE_EVENT_NAME_MAX)
			return -EMSGSIZE;
		memcpy(p->event, p->value, p->value_len);
		p->event[p->value_len] = '\0';
		break;
	case SSE_F_ID:
		if (p->value_overflow)
			return -EMSGSIZE;
		memcpy(p->id, p->value, p->value_len);
		p->id[p->value_len] = '\0';
		break;
	case SSE_F_RETRY:
		set_retry(p);
		break;
	default:
		break;
	}
	return 0;
}

/* A blank line: deliver the event if it has data, then start afresh. */
static int
dispatch(struct sse_parser *p)
{
	struct sse_event ev;
	int rc = 0;

	if (p->has_data) {
		p->buf[p->len] = '\0';
		ev.event = p->event[0] != '\0' ? p->event : "message";
		ev.data = p->buf;
		ev.data_len = p->len;
		ev.id = p->id;
		p->events++;
		rc = p->cb != NULL ? p->cb(&ev, p->arg) : 0;
	}
	/* A large event's room is given back: streams idle for long. */
	if (p->size > SSE_BUF_KEEP && p->buf != NULL) {
		char *small = realloc(p->buf, SSE_BUF_INITIAL);

		if (small != NULL) {
			p->buf = small;
			p->size = SSE_BUF_INITIAL;
		}
	}
	/* The id stays (it is the stream's "last event id"). */
	p->len = 0;
	p->has_data = 0;
	p->pending = 0;
	p->event[0] = '\0';
	return rc;
}

/* A line ended (CR, LF or CRLF). */
static int
end_line(struct sse_parser *p)
{
	int rc = 0;

	switch (p->state) {
	case SSE_LINE_START:
		rc = dispatch(p);
		break;
	case SSE_FIELD:
		/* A line with no colon: the whole line is the field name and
		 * the value is empty. */
		if ((rc = begin_value(p)) == 0)
			rc = end_value(p);
		break;
	case SSE_VALUE_START:
	case SSE_VALUE:
		rc = end_value(p);
		break;
	default:
		break;
	}
	p->state = SSE_LINE_START;
	p->field_len = 0;
	return rc;
}

/* Appends the run of data bytes at s (no CR, LF or NUL in it). */
static int
data_run(struct sse_parser *p, const char *s, size_t n)
{
	int rc;

	if (n >= p->max - p->len)
		return -EMSGSIZE;
	if ((rc = reserve(p, p->len + n + 1)) != 0)
		return rc;
	memcpy(p->buf + p->len, s, n);
	p->len += n;
	return 0;
}

/* One byte that is not a line end and not NUL. */
static int
byte(struct sse_parser *p, char c)
{
	switch (p->state) {
	case SSE_LINE_START:
		if (c == ':') {
			p->state = SSE_COMMENT;
			p->comments++;
			return 0;
		}
		p->pending = 1;
		p->state = SSE_FIELD;
		/* FALLTHROUGH */
	case SSE_FIELD:
		if (c == ':') {
			p->state = SSE_VALUE_START;
			return begin_value(p);
		}
		if (p->field_len < sizeof(p->line))
			p->line[p->field_len++] = c;
		else
			p->field_len = SSE_FIELD_OVER;
		return 0;
	case SSE_COMMENT:
		return 0;
	case SSE_VALUE_START:
		p->state = SSE_VALUE;
		if (c == ' ')
			return 0;
		/* FALLTHROUGH */
	case SSE_VALUE:
		switch (p->field) {
		case SSE_F_DATA:
			return data_run(p, &c, 1);
		case SSE_F_EVENT:
		case SSE_F_ID:
		case SSE_F_RETRY:
			if (p->value_len < SSE_ID_MAX)
				p->value[p->value_len++] = c;
			else if (p->field == SSE_F_RETRY)
				p->value_overflow = 1;
			else
				return -EMSGSIZE;
			return 0;
		default:
			return 0;
		}
	default:
		return -EINVAL;
	}
}

/* Feeds bytes once the byte order mark question is settled. */
static int
feed_lines(struct sse_parser *p, const char *buf, size_t len)
{
	size_t i = 0, run;
	int rc;
	char c;

	while (i < len) {
		c = buf[i];
		if (p->last_cr) {
			p->last_cr = 0;
			if (c == '\n') { /* the LF of a CRLF */
				i++;
				continue;
			}
		}
		if (c == '\0')
			return -EILSEQ;
		if (c == '\r' || c == '\n') {
			p->last_cr = c == '\r';
			i++;
			if ((rc = end_line(p)) != 0)
				return rc;
			continue;
		}
		if (p->state == SSE_VALUE && p->field == SSE_F_DATA) {
			/* The common case: copy the data up to the line end. */
			for (run = i; run < len && buf[run] != '\n' &&
				      buf[run] != '\r' && buf[run] != '\0';
			     run++)
				;
			if ((rc = data_run(p, buf + i, run - i)) != 0)
				return rc;
			i = run;
			continue;
		}
		if ((rc = byte(p, c)) != 0)
			return rc;
		i++;
	}
	return 0;
}

int
sse_feed(struct sse_parser *p, const char *buf, size_t len)
{
	size_t i = 0;
	int rc;

	if (p->state == SSE_FAILED || p->buf == NULL)
		return -EINVAL;
	/* The BOM may itself arrive split; a partial one that turns out not
	 * to be a BOM is replayed as ordinary bytes. */
	while (p->bom_checked < SSE_BOM_DONE && i < len) {
		if (buf[i] == sse_bom[p->bom_checked]) {
			p->bom_checked++;
			i++;
			continue;
		}
		rc = feed_lines(p, sse_bom, (size_t)p->bom_checked);
		p->bom_checked = SSE_BOM_DONE;
		if (rc != 0)
			goto out;
	}
	rc = feed_lines(p, buf + i, len - i);
out:
	if (rc < 0)
		p->state = SSE_FAILED;
	return rc;
}

int
sse_finish(struct sse_parser *p)
{
	int pending;

	/* A partial BOM is bytes of an unterminated line too. */
	pending = p->pending || p->has_data ||
		  (p->bom_checked > 0 && p->bom_checked < SSE_BOM_DONE) ||
		  (p->state != SSE_LINE_START && p->state != SSE_COMMENT &&
		      p->state != SSE_FAILED);
	p->len = 0;
	p->has_data = 0;
	p->pending = 0;
	p->event[0] = '\0';
	if (p->state != SSE_FAILED)
		p->state = SSE_LINE_START;
	p->field_len = 0;
	p->bom_checked = SSE_BOM_DONE;
	return pending ? 1 : 0;
}
