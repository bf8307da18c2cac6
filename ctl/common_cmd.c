/*
 * common_cmd.c: what the tenant commands of palyractl share (memory,
 * vault, cron, approvals and the gateway commands): the options of a
 * subcommand with --tenant, --token and --json, a unary call with its
 * reply decoded, a listing followed page by page, and the usual lines
 * of a deletion and of a bounded number.
 *
 * Runs in palyractl as the invoking user with no privilege; it touches
 * only the call (ctl_unary) and standard output and error.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ctl.h"

/* A server that hands out pages forever is not followed further. */
#define PAGES_MAX	10000

const struct ctl_subcommand *
ctl_subparse_begin(struct ctl_subparse *p, const struct ctl_subcommand *cmds,
    size_t n, const char *name)
{
	size_t	 i;

	p->sub = NULL;
	p->tenant = NULL;
	p->token = NULL;
	p->why[0] = '\0';
	for (i = 0; i < n; i++)
		if (strcmp(name, cmds[i].name) == 0)
			p->sub = &cmds[i];
	/* 0, not 1: glibc then forgets main()'s "+" (options may follow
	 * the operands). */
	optind = 0;
	return p->sub;
}

int
ctl_subparse_next(struct ctl_ctx *ctx, struct ctl_subparse *p, int argc,
    char **argv)
{
	int	 ch;

	while ((ch = getopt_long(argc - 1, argv + 1, p->shortopts, p->opts,
	    NULL)) != -1) {
		if (ch == '?' || ch == ':') {
			snprintf(p->why, sizeof(p->why), "bad option");
			return 0;
		}
		if (strchr(p->sub->options, ch) == NULL) {
			snprintf(p->why, sizeof(p->why), "that option does not "
			    "go with this %s command", p->group);
			return 0;
		}
		switch (ch) {
		case 't':
			p->tenant = optarg;
			break;
		case 'T':
			p->token = optarg;
			break;
		case 'j':
			ctx->json = 1;
			break;
		default:
			return ch;
		}
	}
	return -1;
}

int
ctl_parse_uint(const char *s, unsigned long min, unsigned long max,
    uint32_t *out)
{
	unsigned long	 v;
	char		*end;

	if (s[0] < '0' || s[0] > '9')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

void *
ctl_unary_msg(const struct ctl_ctx *ctx, const char *what, const char *method,
    const char *bearer, const ProtobufCMessage *req,
    const ProtobufCMessageDescriptor *desc)
{
	struct ctl_unary_reply	 reply;
	ProtobufCMessage	*m;

	if (ctl_unary(ctx, what, method, bearer, req, &reply) < 0)
		return NULL;
	m = protobuf_c_message_unpack(desc, NULL, reply.len, reply.data);
	/* A reply may hold a secret (vault get). */
	explicit_bzero(reply.data, reply.len);
	free(reply.data);
	if (m == NULL)
		fprintf(stderr, "palyractl: %s: undecodable reply\n", what);
	return m;
}

void
ctl_print_deleted(const struct ctl_ctx *ctx, const char *key,
    const char *value)
{
	if (ctx->json)
		ctl_print_json(json_pack("{s:s, s:b}", key, value, "deleted",
		    1));
	else {
		ctl_print_clean(stdout, value);
		printf(" deleted\n");
	}
}

/* The field called name of desc, of type type, or NULL. */
static const ProtobufCFieldDescriptor *
field_of(const ProtobufCMessageDescriptor *desc, const char *name,
    ProtobufCType type)
{
	const ProtobufCFieldDescriptor	*f;

	f = protobuf_c_message_descriptor_get_field_by_name(desc, name);
	return f != NULL && f->type == type ? f : NULL;
}

/* The items of one page into the table or the JSON array; -1: out of
 * memory. */
static int
list_page(const struct ctl_ctx *ctx, struct ctl_listing *l,
    const ProtobufCFieldDescriptor *items, const ProtobufCMessage *page)
{
	ProtobufCMessage *const	*v;
	json_t			*j;
	size_t			 i, n;

	n = *(const size_t *)((const char *)page + items->quantifier_offset);
	v = *(ProtobufCMessage *const *const *)((const char *)page +
	    items->offset);
	l->total += n;
	for (i = 0; i < n; i++) {
		if (ctx->json) {
			if ((j = ctl_pb_json(v[i])) == NULL ||
			    json_array_append_new(l->items, j) < 0)
				return -1;
		} else if (l->row(l->table, v[i]) < 0)
			return -1;
	}
	return 0;
}

int
ctl_list(const struct ctl_ctx *ctx, const char *bearer, ProtobufCMessage *req,
    struct ctl_listing *l)
{
	const ProtobufCFieldDescriptor	*page_token, *next_token, *items;
	ProtobufCMessage		*page;
	const char			*t;
	char				*next = NULL;
	int				 pages = 0, bad;

	l->total = 0;
	l->next = NULL;
	page_token = field_of(req->descriptor, "page_token",
	    PROTOBUF_C_TYPE_STRING);
	next_token = field_of(l->reply, "next_page_token",
	    PROTOBUF_C_TYPE_STRING);
	items = field_of(l->reply, l->field, PROTOBUF_C_TYPE_MESSAGE);
	if (page_token == NULL || next_token == NULL || items == NULL ||
	    items->label != PROTOBUF_C_LABEL_REPEATED) {
		fprintf(stderr, "palyractl: %s: no such listing\n", l->what);
		return -1;
	}
	if ((l->table = ctl_table_new(l->ncols, l->align, l->header)) ==
	    NULL || (l->items = json_array()) == NULL) {
		fprintf(stderr, "palyractl: %s: out of memory\n", l->what);
		return -1;
	}
	for (;;) {
		*(const char **)((char *)req + page_token->offset) =
		    next != NULL ? next : "";
		page = ctl_unary_msg(ctx, l->what, l->method, bearer, req,
		    l->reply);
		*(const char **)((char *)req + page_token->offset) = "";
		free(next);
		next = NULL;
		if (page == NULL)
			return -1;
		bad = list_page(ctx, l, items, page) < 0;
		t = *(const char **)((const char *)page + next_token->offset);
		if (!bad && t != NULL && t[0] != '\0' &&
		    (next = strdup(t)) == NULL)
			bad = 1;
		protobuf_c_message_free_unpacked(page, NULL);
		if (bad) {
			fprintf(stderr, "palyractl: %s: out of memory\n",
			    l->what);
			return -1;
		}
		if (next == NULL || !l->all || ++pages >= PAGES_MAX)
			break;
	}
	l->next = next;
	return 0;
}

void
ctl_listing_free(struct ctl_listing *l)
{
	free(l->next);
	l->next = NULL;
	json_decref(l->items);
	l->items = NULL;
	ctl_table_free(l->table);
	l->table = NULL;
}
