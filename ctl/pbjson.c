/*
 * pbjson.c: any decoded protobuf-c message as one JSON document, by its
 * descriptor, for the --json output of the memory, vault and cron commands
 * (memory.c, vault.c, cron.c).
 *
 * Runs in palyractl; pure but for ctl_print_pb_json, which writes stdout.
 * Field names are the .proto names; enums are words, lower case without
 * the prefix all values of their type share (MISFIRE_POLICY_CATCH_UP:
 * "catch_up"), as the console and the other commands print them; 64-bit
 * integers are JSON numbers (above INT64_MAX a decimal string); bytes are
 * base64 (standard alphabet, padded); a string that is not UTF-8 is null.
 * Every field is present, defaults included, except unset oneof members.
 * The message was bounded by protobuf_c_message_unpack(); the nesting
 * depth is bounded here.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "ctl.h"

#define PBJSON_DEPTH_MAX 16

static json_t *message_json(const ProtobufCMessage *, int depth);

/* The value name less the prefix every value of its type shares up to an
 * underscore, in lower case. */
static json_t *
enum_word(const ProtobufCEnumDescriptor *d, const char *name)
{
	const char *first = d->values[0].name;
	char word[128];
	size_t n = strlen(name), i, j, cut = 0;

	for (i = 0; i < n && name[i] == first[i]; i++) {
		for (j = 1; j < d->n_values; j++)
			if (d->values[j].name[i] != name[i])
				break;
		if (j < d->n_values)
			break;
		if (name[i] == '_')
			cut = i + 1;
	}
	if (d->n_values < 2 || cut >= n)
		cut = 0;
	name += cut;
	for (i = 0; name[i] != '\0' && i + 1 < sizeof(word); i++)
		word[i] = (char)tolower((unsigned char)name[i]);
	word[i] = '\0';
	return json_string(word);
}

static json_t *
bytes_json(const ProtobufCBinaryData *b)
{
	json_t *v;
	char *text;

	/* 4 characters per 3 bytes, and the NUL. */
	if (b->len > (SIZE_MAX - 8) / 4 * 3 ||
	    (text = malloc((b->len + 2) / 3 * 4 + 1)) == NULL)
		return NULL;
	EVP_EncodeBlock((unsigned char *)text, b->data, (int)b->len);
	v = json_string(text);
	free(text);
	return v;
}

static json_t *
value_json(const ProtobufCFieldDescriptor *f, const void *p, int depth)
{
	const ProtobufCEnumValue *ev;
	const char *s;
	json_t *v;
	char num[24];
	uint64_t u;

	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		return json_integer(*(const int32_t *)p);
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		return json_integer(*(const uint32_t *)p);
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		return json_integer(*(const int64_t *)p);
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		u = *(const uint64_t *)p;
		if (u <= INT64_MAX)
			return json_integer((json_int_t)u);
		snprintf(num, sizeof(num), "%llu", (unsigned long long)u);
		return json_string(num);
	case PROTOBUF_C_TYPE_FLOAT:
		return json_real(*(const float *)p);
	case PROTOBUF_C_TYPE_DOUBLE:
		return json_real(*(const double *)p);
	case PROTOBUF_C_TYPE_BOOL:
		return json_boolean(*(const protobuf_c_boolean *)p);
	case PROTOBUF_C_TYPE_ENUM:
		ev = protobuf_c_enum_descriptor_get_value(f->descriptor,
		    *(const int *)p);
		return ev != NULL ? enum_word(f->descriptor, ev->name) :
		    json_integer(*(const int *)p);
	case PROTOBUF_C_TYPE_STRING:
		s = *(char *const *)p;
		v = s != NULL ? json_string(s) : NULL;
		return v != NULL ? v : json_null();
	case PROTOBUF_C_TYPE_BYTES:
		return bytes_json((const ProtobufCBinaryData *)p);
	case PROTOBUF_C_TYPE_MESSAGE:
		return *(ProtobufCMessage *const *)p != NULL ?
		    message_json(*(ProtobufCMessage *const *)p, depth + 1) :
		    json_null();
	}
	return NULL;
}

static size_t
element_size(const ProtobufCFieldDescriptor *f)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return sizeof(uint64_t);
	case PROTOBUF_C_TYPE_DOUBLE:
		return sizeof(double);
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_STRING:
		return sizeof(char *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(ProtobufCMessage *);
	default:
		return sizeof(uint32_t);	/* 32-bit ints, enum, float */
	}
}

static json_t *
message_json(const ProtobufCMessage *m, int depth)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	const ProtobufCFieldDescriptor *f;
	const char *base = (const char *)m, *elems;
	json_t *obj, *v;
	size_t i, j, n;

	if (depth > PBJSON_DEPTH_MAX || (obj = json_object()) == NULL)
		return NULL;
	for (i = 0; i < d->n_fields; i++) {
		f = &d->fields[i];
		if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
			if (*(const uint32_t *)(base + f->quantifier_offset) !=
			    f->id)
				continue;
		} else if (f->label == PROTOBUF_C_LABEL_OPTIONAL &&
		    f->quantifier_offset != 0 &&
		    !*(const protobuf_c_boolean *)(base +
		    f->quantifier_offset))
			continue;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			n = *(const size_t *)(base + f->quantifier_offset);
			elems = *(char *const *)(base + f->offset);
			if ((v = json_array()) == NULL)
				goto fail;
			for (j = 0; j < n; j++)
				if (json_array_append_new(v, value_json(f,
				    elems + j * element_size(f), depth)) < 0) {
					json_decref(v);
					goto fail;
				}
		} else if ((v = value_json(f, base + f->offset, depth)) ==
		    NULL)
			goto fail;
		if (json_object_set_new(obj, f->name, v) < 0)
			goto fail;
	}
	return obj;
fail:
	json_decref(obj);
	return NULL;
}

json_t *
ctl_pb_json(const ProtobufCMessage *m)
{
	return m != NULL ? message_json(m, 0) : NULL;
}

int
ctl_print_json(json_t *obj)
{
	int rc = -1;

	if (obj != NULL && json_dumpf(obj, stdout, JSON_COMPACT) == 0 &&
	    putchar('\n') != EOF && fflush(stdout) == 0)
		rc = 0;
	if (obj == NULL)
		fprintf(stderr, "palyractl: out of memory\n");
	json_decref(obj);
	return rc;
}

int
ctl_print_pb_json(const ProtobufCMessage *m)
{
	return ctl_print_json(ctl_pb_json(m));
}
