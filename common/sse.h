/*
 * sse.h: an incremental parser of text/event-stream (the WHATWG "server-sent
 * events" format) as model providers stream it. Bytes are fed as they come
 * off the wire, split anywhere (mid-line, mid-CRLF, mid-UTF-8 sequence);
 * each complete event is handed to the callback once its blank line
 * arrives. Lines may end in LF, CR or CRLF; a leading UTF-8 BOM is skipped;
 * comment lines (":" keep-alives) are counted, not delivered; "data" lines
 * are joined with "\n"; "event" names the event ("message" when absent);
 * "id" and "retry" are kept for the caller; unknown fields are ignored.
 *
 * One event's data may take at most the bound given to sse_init(); a
 * longer one is an error (-EMSGSIZE), never a truncation. The buffer
 * grows on demand up to that bound and shrinks back after a large event,
 * so an idle stream holds about half a KiB. Used by every network
 * provider of palyra-worker.
 */
#ifndef PALYRA_SSE_H
#define PALYRA_SSE_H

#include <stddef.h>
#include <stdint.h>

#define SSE_EVENT_NAME_MAX 64	/* longer event names are an error */
#define SSE_ID_MAX 128

struct sse_event {
	const char	*event;		/* NUL-terminated; "message" by default */
	const char	*data;		/* NUL-terminated, data_len bytes */
	size_t		 data_len;
	const char	*id;		/* last id seen, "" if none */
};

/*
 * Returns 0 to go on; anything else stops sse_feed(), which returns it
 * (use a positive value for "stop, not an error", a -errno otherwise).
 */
typedef int (*sse_event_cb)(const struct sse_event *, void *arg);

struct sse_parser {
	char		*buf;		/* the current event's data */
	size_t		 size;		/* capacity of buf */
	size_t		 max;		/* the most it may grow to */
	size_t		 len;
	char		 line[SSE_EVENT_NAME_MAX + SSE_ID_MAX + 16];
	/* the field name of the line being read and how far into it */
	size_t		 field_len;
	int		 state;		/* internal */
	int		 field;		/* internal: the line's field */
	int		 pending;	/* an event is under way */
	int		 has_data;
	int		 bom_checked;
	int		 last_cr;	/* the previous byte was a CR */
	char		 event[SSE_EVENT_NAME_MAX + 1];
	char		 id[SSE_ID_MAX + 1];
	char		 value[SSE_ID_MAX + 1]; /* short field values */
	size_t		 value_len;
	int		 value_overflow;
	uint64_t	 retry_ms;	/* last "retry" field, 0 if none */
	uint64_t	 comments;	/* comment lines seen (keep-alives) */
	uint64_t	 events;	/* events delivered */
	sse_event_cb	 cb;
	void		*arg;
};

/* max_data: the largest event data accepted (at least 1); the buffer
 * grows to it on demand. 0, -EINVAL or -ENOMEM. */
int	sse_init(struct sse_parser *, size_t max_data, sse_event_cb, void *arg);
void	sse_fini(struct sse_parser *);

/*
 * Feeds len bytes. Returns 0, the callback's non-zero value, or -EMSGSIZE
 * for an event, event name or id over its bound, -EILSEQ for a NUL byte,
 * or -ENOMEM when the buffer could not grow.
 * After an error the parser must not be fed again (it answers -EINVAL).
 * When the callback stops it, the bytes after that event's blank line
 * were not parsed; after a positive value sse_finish() still works.
 */
int	sse_feed(struct sse_parser *, const char *buf, size_t len);

/*
 * The stream ended. An event not terminated by a blank line is dropped,
 * as the format says. Returns 1 if bytes of an unterminated event were
 * pending (a provider that cut its stream short), else 0.
 */
int	sse_finish(struct sse_parser *);

#endif
