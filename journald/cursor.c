/*
 * cursor.c: the opaque cursors of the session and run listings
 * (journald/listing.c). A cursor is the key of the last row of a page,
 * (created_ms, id), as lowercase hex of the time's 8 bytes (big-endian,
 * two's complement) followed by the id's bytes. The front passes it on
 * untouched; only journald reads it.
 *
 * Runs in palyra-journald (and its unit test). Touches nothing but its
 * arguments. A cursor comes from a client: every byte is checked, and a
 * malformed one is an error, never a guess.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "journald.h"

static const char hexdigits[] = "0123456789abcdef";

int
jnl_cursor_encode(int64_t created_ms, const char *id, char *out, size_t size)
{
	uint64_t v = (uint64_t)created_ms;
	size_t idlen = strlen(id), i, n = 0;
	uint8_t b;

	if (idlen == 0 || idlen > JNL_CURSOR_ID_MAX ||
	    size < 2 * (8 + idlen) + 1)
		return -EINVAL;
	for (i = 0; i < 8; i++) {
		b = (uint8_t)(v >> (56 - 8 * i));
		out[n++] = hexdigits[b >> 4];
		out[n++] = hexdigits[b & 15];
	}
	for (i = 0; i < idlen; i++) {
		b = (uint8_t)id[i];
		out[n++] = hexdigits[b >> 4];
		out[n++] = hexdigits[b & 15];
	}
	out[n] = '\0';
	return 0;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int
jnl_cursor_decode(
    const char *text, int64_t *created_ms, char *id, size_t idsize)
{
	size_t len, i, idlen;
	uint64_t v = 0;
	int hi, lo;
	uint8_t b;

	if (text == NULL)
		return -EINVAL;
	len = strnlen(text, JNL_CURSOR_MAX + 1);
	if (len > JNL_CURSOR_MAX || len % 2 != 0 || len < 2 * (8 + 1))
		return -EINVAL;
	idlen = len / 2 - 8;
	if (idlen >= idsize)
		return -EINVAL;
	for (i = 0; i < len / 2; i++) {
		if ((hi = hexval(text[2 * i])) < 0 ||
		    (lo = hexval(text[2 * i + 1])) < 0)
			return -EINVAL;
		b = (uint8_t)(hi << 4 | lo);
		if (i < 8) {
			v = v << 8 | b;
			continue;
		}
		/* Ids are printable ASCII without spaces: nothing else is
		 * a key a page could have ended on. */
		if (b < 0x21 || b > 0x7e)
			return -EINVAL;
		id[i - 8] = (char)b;
	}
	id[idlen] = '\0';
	*created_ms = (int64_t)v;
	return 0;
}
