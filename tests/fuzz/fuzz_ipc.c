/*
 * fuzz_ipc.c: libFuzzer target for the IPC codec (common/ipc.c).
 *
 * The input is one received datagram: ipc_decode() must refuse anything
 * malformed (short, truncated, trailing bytes, unknown type, flags, wrong
 * descriptor count, undecodable payload) without crashing, and a datagram
 * it accepts must re-encode (or be refused with -EINVAL when protobuf-c
 * could not pack it back decodably), and the re-encoding must decode to
 * the same bytes again (the codec is its own inverse on what it accepts).
 * Runs in the fuzzer only; touches nothing but memory.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ipc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t	 first[IPC_DATAGRAM_MAX];
static uint8_t	 second[IPC_DATAGRAM_MAX];

static void
round_trip(const struct ipc_msg *m)
{
	struct ipc_msg	 again;
	ssize_t		 n1, n2;

	n1 = ipc_encode(first, sizeof(first), m->hdr.type, m->hdr.request_id,
	    m->msg);
	/* A payload that decoded within the limit may still re-encode a
	 * little larger (a varint packed longer than needed is accepted). */
	if (n1 == -EMSGSIZE)
		return;
	/* A message holding an unknown field numbered 0, which protobuf-c
	 * would pack into bytes it refuses, is not sent on (ipc.c). */
	if (n1 == -EINVAL)
		return;
	if (n1 < 0)
		abort();
	if (ipc_decode(first, (size_t)n1, m->nfds, &again) != 0)
		abort();
	if (again.hdr.type != m->hdr.type ||
	    again.hdr.request_id != m->hdr.request_id)
		abort();
	n2 = ipc_encode(second, sizeof(second), again.hdr.type,
	    again.hdr.request_id, again.msg);
	if (n2 != n1 || memcmp(first, second, (size_t)n1) != 0)
		abort();
	ipc_msg_clear(&again);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ipc_msg	 m;
	uint32_t	 type;
	int		 nfds, rc;

	/* The descriptor count comes with the datagram, not in it: try each
	 * one the codec may be told. No descriptor is real, and the codec
	 * must not touch them. */
	for (nfds = 0; nfds <= IPC_MAX_FDS; nfds++) {
		rc = ipc_decode(data, size, nfds, &m);
		if (rc == 0) {
			if (m.msg == NULL || m.hdr.length != size -
			    IPC_HEADER_LEN)
				abort();
			m.nfds = nfds;
			round_trip(&m);
			m.nfds = 0;
			ipc_msg_clear(&m);
		} else if (rc != -EBADMSG && rc != -EPROTO &&
		    rc != -EMSGSIZE)
			abort();
	}
	if (size >= sizeof(type)) {
		memcpy(&type, data, sizeof(type));
		if (ipc_type_name(type) == NULL)
			abort();
	}
	return 0;
}
