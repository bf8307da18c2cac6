/*
 * fuzz_pbjson.c: libFuzzer target for the protobuf-to-JSON conversion of
 * the console (front/pbjson.c), fed with whatever protobuf-c accepts as a
 * reply message of gateway.proto: the console turns journald's and the
 * workers' replies into JSON with it, and those carry tenant-written
 * strings and bytes.
 *
 * Byte 0 chooses the message type; the rest is its encoding. A message
 * protobuf-c decodes must convert, both ways of writing enums, into JSON
 * that jansson can serialize.
 * Runs in the fuzzer only; touches nothing but memory.
 */
#include <stdint.h>
#include <stdlib.h>

#include <jansson.h>

#include "../../front/pbjson.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const ProtobufCMessageDescriptor *const types[] = {
	&palyra__v1__run_event__descriptor,
	&palyra__v1__run__descriptor,
	&palyra__v1__session__descriptor,
	&palyra__v1__list_sessions_response__descriptor,
	&palyra__v1__agent__descriptor,
	&palyra__v1__approval__descriptor,
	&palyra__v1__list_approvals_response__descriptor,
	&palyra__v1__export_chunk__descriptor,
	&palyra__v1__list_grants_response__descriptor,
	&palyra__v1__get_usage_response__descriptor,
	&palyra__v1__list_budgets_response__descriptor,
	&palyra__v1__list_secrets_response__descriptor,
	&palyra__v1__list_jobs_response__descriptor,
	&palyra__v1__list_job_runs_response__descriptor,
	&palyra__v1__search_memory_response__descriptor,
	&palyra__v1__list_memory_items_response__descriptor,
	&palyra__v1__run_stream_request__descriptor,
	&palyra__v1__get_health_response__descriptor,
};

static void
convert(json_t *(*fn)(const ProtobufCMessage *), const ProtobufCMessage *m)
{
	json_t	*j;
	char	*text;

	/* NULL only when out of memory or nested past the bound. */
	if ((j = fn(m)) == NULL)
		return;
	if ((text = json_dumps(j, JSON_COMPACT)) == NULL)
		abort();
	free(text);
	json_decref(j);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const ProtobufCMessageDescriptor	*d;
	ProtobufCMessage			*m;

	if (size == 0)
		return 0;
	d = types[data[0] % (sizeof(types) / sizeof(types[0]))];
	if ((m = protobuf_c_message_unpack(d, NULL, size - 1, data + 1)) ==
	    NULL)
		return 0;
	convert(fe_pb_json, m);
	convert(fe_pb_json_words, m);
	protobuf_c_message_free_unpacked(m, NULL);
	return 0;
}
