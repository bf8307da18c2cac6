/*
 * reflection.c: gRPC server reflection, grpc.reflection.v1 and v1alpha
 * ServerReflectionInfo (one bidirectional stream; one response per
 * request), so that stock tools list the services and fetch their
 * descriptors with no .proto files at hand.
 *
 * The descriptors come from a FileDescriptorSet compiled into the binary
 * at build time (the Makefile's descriptor_set.c: fe_descriptor_set[]).
 * It is indexed once, on first use, through a wire-compatible subset of
 * descriptor.proto (proto/palyra/internal/descriptor_index.proto); the
 * files are answered with the very bytes the set holds. v1alpha's messages
 * are v1's under another package name: both are decoded and encoded with
 * the v1 code.
 *
 * Process: palyra-front. Decodes reflection requests (the one place they
 * are decoded); sends through call.c only. Touches no file.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "front.h"
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "log.h"
#include "palyra/internal/descriptor_index.pb-c.h"

#define REQ(x) GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_##x
#define RESP(x) GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_##x
#define REFL_NAME_MAX 1024 /* longest symbol or file name looked up */

/* Makefile: the descriptor set of the served services, with imports. */
extern const unsigned char fe_descriptor_set[];
extern const size_t fe_descriptor_set_len;

struct fe_reflection {
	Palyra__Internal__DescriptorSetIndex *set;
	Palyra__Internal__FileIndex **files; /* set->file[i], indexed */
	size_t nfiles;
};

static void
reflection_free(struct fe_reflection *r)
{
	size_t i;

	if (r == NULL)
		return;
	for (i = 0; i < r->nfiles; i++)
		if (r->files[i] != NULL)
			palyra__internal__file_index__free_unpacked(
			    r->files[i], NULL);
	free(r->files);
	if (r->set != NULL)
		palyra__internal__descriptor_set_index__free_unpacked(
		    r->set, NULL);
	free(r);
}

void
fe_reflection_free(struct fe_ctx *ctx)
{
	reflection_free(ctx->reflection);
	ctx->reflection = NULL;
}

/* Returns 0, or -EBADMSG for a set that does not decode (a build bug). */
static int
reflection_load(struct fe_ctx *ctx)
{
	struct fe_reflection *r;
	size_t i;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		return -ENOMEM;
	r->set = palyra__internal__descriptor_set_index__unpack(
	    NULL, fe_descriptor_set_len, fe_descriptor_set);
	if (r->set == NULL)
		goto bad;
	if ((r->files = calloc(r->set->n_file + 1, sizeof(*r->files))) ==
	    NULL) {
		reflection_free(r);
		return -ENOMEM;
	}
	r->nfiles = r->set->n_file;
	for (i = 0; i < r->nfiles; i++) {
		r->files[i] = palyra__internal__file_index__unpack(
		    NULL, r->set->file[i].len, r->set->file[i].data);
		if (r->files[i] == NULL)
			goto bad;
	}
	ctx->reflection = r;
	return 0;
bad:
	log_error("reflection: the compiled-in descriptor set does not decode");
	reflection_free(r);
	return -EBADMSG;
}

/* s is "prefix.rest": returns rest; otherwise NULL. An empty prefix
 * matches everything. */
static const char *
strip(const char *s, const char *prefix)
{
	size_t n = strlen(prefix);

	if (n == 0)
		return s;
	if (strncmp(s, prefix, n) != 0 || s[n] != '.')
		return NULL;
	return s + n + 1;
}

static bool
named_has(Palyra__Internal__NamedIndex **v, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(v[i]->name, name) == 0)
			return true;
	return false;
}

static bool
enums_have(Palyra__Internal__EnumIndex **v, size_t n, const char *name)
{
	const char *rest;
	size_t i;

	for (i = 0; i < n; i++) {
		if (strcmp(v[i]->name, name) == 0)
			return true;
		if ((rest = strip(name, v[i]->name)) != NULL &&
		    named_has(v[i]->value, v[i]->n_value, rest))
			return true;
	}
	return false;
}

/* name, relative to the scope that holds the messages v, is one of them or
 * defined inside one of them. depth bounds the recursion. */
static bool
messages_have(
    Palyra__Internal__MessageIndex **v, size_t n, const char *name, int depth)
{
	const Palyra__Internal__MessageIndex *m;
	const char *rest;
	size_t i;

	if (depth > 32)
		return false;
	for (i = 0; i < n; i++) {
		m = v[i];
		if (strcmp(m->name, name) == 0)
			return true;
		if ((rest = strip(name, m->name)) == NULL)
			continue;
		if (named_has(m->field, m->n_field, rest) ||
		    named_has(m->extension, m->n_extension, rest) ||
		    enums_have(m->enum_type, m->n_enum_type, rest) ||
		    messages_have(
			m->nested_type, m->n_nested_type, rest, depth + 1))
			return true;
	}
	return false;
}

static bool
file_defines(const Palyra__Internal__FileIndex *f, const char *symbol)
{
	const char *rest, *method;
	size_t i;

	if ((rest = strip(symbol, f->package)) == NULL)
		return false;
	for (i = 0; i < f->n_service; i++) {
		if (strcmp(f->service[i]->name, rest) == 0)
			return true;
		method = strip(rest, f->service[i]->name);
		if (method != NULL && named_has(f->service[i]->method,
					  f->service[i]->n_method, method))
			return true;
	}
	return messages_have(f->message_type, f->n_message_type, rest, 0) ||
	       enums_have(f->enum_type, f->n_enum_type, rest) ||
	       named_has(f->extension, f->n_extension, rest);
}

static ssize_t
file_by_name(const struct fe_reflection *r, const char *name)
{
	size_t i;

	for (i = 0; i < r->nfiles; i++)
		if (strcmp(r->files[i]->name, name) == 0)
			return (ssize_t)i;
	return -1;
}

static ssize_t
file_by_symbol(const struct fe_reflection *r, const char *symbol)
{
	size_t i;

	if (symbol[0] == '.') /* a fully-qualified name may lead with '.' */
		symbol++;
	for (i = 0; i < r->nfiles; i++)
		if (file_defines(r->files[i], symbol))
			return (ssize_t)i;
	return -1;
}

/*
 * The file first, then every file it imports, transitively, each once:
 * a client can build the descriptor from this one answer. Fills out (room
 * for r->nfiles) and returns the count.
 */
static size_t
file_closure(const struct fe_reflection *r, size_t first,
    ProtobufCBinaryData *out, bool *seen)
{
	size_t order[64], n = 0, head = 0, i;
	const Palyra__Internal__FileIndex *f;
	ssize_t dep;

	memset(seen, 0, r->nfiles * sizeof(*seen));
	seen[first] = true;
	order[n++] = first;
	while (head < n) {
		f = r->files[order[head++]];
		for (i = 0; i < f->n_dependency; i++) {
			dep = file_by_name(r, f->dependency[i]);
			if (dep < 0 || seen[dep] ||
			    n >= sizeof(order) / sizeof(order[0]))
				continue;
			seen[dep] = true;
			order[n++] = (size_t)dep;
		}
	}
	for (i = 0; i < n; i++)
		out[i] = r->set->file[order[i]];
	return n;
}

/* Sends resp on the call; ends the call when it cannot. */
static void
reply(
    struct fe_call *call, Grpc__Reflection__V1__ServerReflectionResponse *resp)
{
	int rc = fe_call_send_message(call, &resp->base);

	if (rc == -ENOBUFS)
		fe_call_finish(call, GRPC_STATUS_RESOURCE_EXHAUSTED,
		    "reflection response too large or client not reading");
	else if (rc < 0)
		fe_call_finish(call, GRPC_STATUS_INTERNAL, "internal error");
}

static void
reply_error(struct fe_call *call,
    Grpc__Reflection__V1__ServerReflectionResponse *resp, int code,
    const char *message)
{
	Grpc__Reflection__V1__ErrorResponse err =
	    GRPC__REFLECTION__V1__ERROR_RESPONSE__INIT;

	err.error_code = code;
	err.error_message = (char *)message;
	resp->message_response_case = RESP(RESPONSE_ERROR_RESPONSE);
	resp->error_response = &err;
	reply(call, resp);
}

static void
reply_files(struct fe_call *call, const struct fe_reflection *r,
    Grpc__Reflection__V1__ServerReflectionResponse *resp, ssize_t first,
    const char *what)
{
	Grpc__Reflection__V1__FileDescriptorResponse fdr =
	    GRPC__REFLECTION__V1__FILE_DESCRIPTOR_RESPONSE__INIT;
	ProtobufCBinaryData *files;
	bool *seen;

	if (first < 0) {
		reply_error(call, resp, GRPC_STATUS_NOT_FOUND, what);
		return;
	}
	files = calloc(r->nfiles + 1, sizeof(*files));
	seen = calloc(r->nfiles + 1, sizeof(*seen));
	if (files == NULL || seen == NULL) {
		free(files);
		free(seen);
		fe_call_finish(
		    call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	fdr.n_file_descriptor_proto =
	    file_closure(r, (size_t)first, files, seen);
	fdr.file_descriptor_proto = files;
	resp->message_response_case = RESP(RESPONSE_FILE_DESCRIPTOR_RESPONSE);
	resp->file_descriptor_response = &fdr;
	reply(call, resp);
	free(files);
	free(seen);
}

static void
reply_services(struct fe_call *call, const struct fe_reflection *r,
    Grpc__Reflection__V1__ServerReflectionResponse *resp)
{
	Grpc__Reflection__V1__ListServiceResponse list =
	    GRPC__REFLECTION__V1__LIST_SERVICE_RESPONSE__INIT;
	Grpc__Reflection__V1__ServiceResponse *svc = NULL, **svcp = NULL;
	char **names = NULL;
	size_t i, j, n = 0, total = 0;

	for (i = 0; i < r->nfiles; i++)
		total += r->files[i]->n_service;
	svc = calloc(total + 1, sizeof(*svc));
	svcp = calloc(total + 1, sizeof(*svcp));
	names = calloc(total + 1, sizeof(*names));
	if (svc == NULL || svcp == NULL || names == NULL)
		goto oom;
	for (i = 0; i < r->nfiles; i++) {
		const Palyra__Internal__FileIndex *f = r->files[i];

		for (j = 0; j < f->n_service; j++) {
			size_t len = strlen(f->package) +
				     strlen(f->service[j]->name) + 2;

			if ((names[n] = malloc(len)) == NULL)
				goto oom;
			snprintf(names[n], len, "%s%s%s", f->package,
			    f->package[0] != '\0' ? "." : "",
			    f->service[j]->name);
			grpc__reflection__v1__service_response__init(&svc[n]);
			svc[n].name = names[n];
			svcp[n] = &svc[n];
			n++;
		}
	}
	list.n_service = n;
	list.service = svcp;
	resp->message_response_case = RESP(RESPONSE_LIST_SERVICES_RESPONSE);
	resp->list_services_response = &list;
	reply(call, resp);
	goto out;
oom:
	fe_call_finish(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
out:
	for (i = 0; names != NULL && i < n; i++)
		free(names[i]);
	free(names);
	free(svc);
	free(svcp);
}

void
fe_reflection_message(struct fe_call *call, const uint8_t *msg, size_t len)
{
	Grpc__Reflection__V1__ServerReflectionResponse resp =
	    GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__INIT;
	Grpc__Reflection__V1__ServerReflectionRequest *req;
	struct fe_ctx *ctx = call->conn->ctx;
	const struct fe_reflection *r;
	int rc;

	if (call->state == FE_CALL_WAITING_START &&
	    fe_call_transition(call, FE_CALL_RUNNING) < 0) {
		fe_call_finish(call, GRPC_STATUS_INTERNAL, "internal error");
		return;
	}
	if (ctx->reflection == NULL && (rc = reflection_load(ctx)) < 0) {
		fe_call_finish(
		    call, GRPC_STATUS_INTERNAL, "reflection unavailable");
		return;
	}
	r = ctx->reflection;
	req = grpc__reflection__v1__server_reflection_request__unpack(
	    NULL, len, msg);
	if (req == NULL) {
		fe_call_abort(call, GRPC_STATUS_INVALID_ARGUMENT,
		    "invalid ServerReflectionRequest");
		return;
	}
	resp.valid_host = req->host;
	resp.original_request = req;
	switch (req->message_request_case) {
	case REQ(REQUEST_LIST_SERVICES):
		reply_services(call, r, &resp);
		break;
	case REQ(REQUEST_FILE_BY_FILENAME):
		reply_files(call, r, &resp,
		    strlen(req->file_by_filename) > REFL_NAME_MAX
			? -1
			: file_by_name(r, req->file_by_filename),
		    "file not found");
		break;
	case REQ(REQUEST_FILE_CONTAINING_SYMBOL):
		reply_files(call, r, &resp,
		    strlen(req->file_containing_symbol) > REFL_NAME_MAX
			? -1
			: file_by_symbol(r, req->file_containing_symbol),
		    "symbol not found");
		break;
	case REQ(REQUEST_FILE_CONTAINING_EXTENSION):
	case REQ(REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE):
		/* None of the served files declares extensions. */
		reply_error(
		    call, &resp, GRPC_STATUS_NOT_FOUND, "extensions not found");
		break;
	default:
		reply_error(call, &resp, GRPC_STATUS_INVALID_ARGUMENT,
		    "empty ServerReflectionRequest");
		break;
	}
	grpc__reflection__v1__server_reflection_request__free_unpacked(
	    req, NULL);
}
