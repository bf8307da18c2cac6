/*
 * memory.c: `palyractl memory add|search|list|show|rm|purge`, the
 * tenant's memory items over MemoryService (IngestMemory, SearchMemory,
 * ListMemoryItems, GetMemoryItem, DeleteMemoryItem, PurgeMemory).
 *
 * Runs in palyractl as the invoking user with no privilege. The token
 * comes from --token, PALYRA_TOKEN or --tenant (an operator token minted
 * with the admin token, which may name another principal with
 * --principal). Text comes from the command line, a file or standard
 * input. purge deletes without asking only with --yes; on a terminal it
 * asks, elsewhere it refuses.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "ctl.h"
#include "palyra/v1/gateway.pb-c.h"

#define MEMORY		"/palyra.v1.MemoryService/"
#define ITEM_TEXT_MAX	(16 * 1024)
#define QUERY_MAX	(4 * 1024)
#define TAGS_MAX	16
#define TAG_MAX		64
#define SOURCE_MAX	256
#define ID_MAX		128
#define SHORT_TEXT	60

struct memory_opts {
	const char	*command;
	const char	*arg;		/* text, query or item id */
	const char	*tenant;
	const char	*token;
	const char	*session;
	char		*tags[TAGS_MAX];
	size_t		 ntags;
	const char	*source;
	uint64_t	 ttl_ms;
	const char	*principal;
	const char	*file;
	uint32_t	 top_k;
	double		 min_score;
	uint32_t	 page_size;
	int		 all;
	int		 expired;
	int		 yes;
};

static int
memory_usage(const char *why)
{
	fprintf(stderr, "palyractl: %s\n", why);
	fprintf(stderr,
	    "usage: palyractl memory add [--session id] [--tag tag ...] "
	    "[--source text]\n"
	    "           [--ttl duration] [--principal name] "
	    "text | --file file | -\n"
	    "       palyractl memory search [--top-k n] [--min-score x] "
	    "[--session id]\n"
	    "           [--tag tag ...] [--principal name] query\n"
	    "       palyractl memory list [--principal name|*] "
	    "[--session id] [--tag tag]\n"
	    "           [--page-size n] [--all]\n"
	    "       palyractl memory show|rm item_id\n"
	    "       palyractl memory purge [--principal name|*] "
	    "[--session id] [--tag tag]\n"
	    "           [--expired] --yes\n"
	    "   (each takes --tenant name or --token token, and --json)\n");
	return CTL_EXIT_USAGE;
}

/* 1 to 64 bytes of [A-Za-z0-9._:-]. */
static int
valid_tag(const char *s)
{
	size_t	 n = strlen(s);

	return n > 0 && n <= TAG_MAX && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789._:-") == n;
}

static int
memory_parse(struct ctl_ctx *ctx, int argc, char **argv,
    struct memory_opts *o)
{
	static const struct option opts[] = {
		CTL_TENANT_OPTIONS,
		{ "session", required_argument, NULL, 's' },
		{ "tag", required_argument, NULL, 'g' },
		{ "source", required_argument, NULL, 'S' },
		{ "ttl", required_argument, NULL, 'L' },
		{ "principal", required_argument, NULL, 'p' },
		{ "file", required_argument, NULL, 'f' },
		{ "top-k", required_argument, NULL, 'k' },
		{ "min-score", required_argument, NULL, 'm' },
		{ "page-size", required_argument, NULL, 'P' },
		{ "all", no_argument, NULL, 'a' },
		{ "expired", no_argument, NULL, 'e' },
		{ "yes", no_argument, NULL, 'y' },
		{ NULL, 0, NULL, 0 },
	};
	static const struct ctl_subcommand commands[] = {
		{ "add", "tTsgSLpfj", 1 },
		{ "search", "tTkmsgpj", 1 },
		{ "list", "tTpsgPaj", 0 },
		{ "show", "tTj", 1 },
		{ "rm", "tTj", 1 },
		{ "purge", "tTpsgeyj", 0 },
	};
	struct ctl_subparse	 p = { .group = "memory", .shortopts = "",
	    .opts = opts };
	long long		 ttl;
	char			*end;
	int			 ch, nargs, left;

	memset(o, 0, sizeof(*o));
	if (argc < 2)
		return memory_usage("memory needs add, search, list, show, rm "
		    "or purge");
	o->command = argv[1];
	if (ctl_subparse_begin(&p, commands, sizeof(commands) /
	    sizeof(commands[0]), o->command) == NULL)
		return memory_usage("unknown memory command");
	nargs = p.sub->nargs;
	while ((ch = ctl_subparse_next(ctx, &p, argc, argv)) != -1) {
		switch (ch) {
		case 0:
			return memory_usage(p.why);
		case 's':
			if (optarg[0] == '\0' || strlen(optarg) > ID_MAX)
				return memory_usage("bad session id");
			o->session = optarg;
			break;
		case 'g':
			if (!valid_tag(optarg))
				return memory_usage("a tag is 1 to 64 bytes of "
				    "A-Z a-z 0-9 . _ : -");
			if (o->ntags == TAGS_MAX ||
			    (o->ntags == 1 && strcmp(o->command, "add") != 0 &&
			    strcmp(o->command, "search") != 0))
				return memory_usage(o->ntags == TAGS_MAX ?
				    "at most 16 tags" : "list and purge take "
				    "one --tag");
			o->tags[o->ntags++] = optarg;
			break;
		case 'S':
			if (strlen(optarg) > SOURCE_MAX)
				return memory_usage("--source is at most 256 "
				    "bytes");
			o->source = optarg;
			break;
		case 'L':
			if ((ttl = ctl_duration_seconds(optarg)) < 1 ||
			    (unsigned long long)ttl > UINT64_MAX / 1000)
				return memory_usage("--ttl takes a duration "
				    "such as 90s, 30m, 12h or 30d");
			o->ttl_ms = (uint64_t)ttl * 1000;
			break;
		case 'p':
			if (optarg[0] == '\0' || strlen(optarg) > NAME_MAX_LEN)
				return memory_usage("a principal is 1 to 64 "
				    "bytes");
			if (strcmp(optarg, "*") == 0 &&
			    strcmp(o->command, "list") != 0 &&
			    strcmp(o->command, "purge") != 0)
				return memory_usage("--principal '*' goes with "
				    "list and purge");
			o->principal = optarg;
			break;
		case 'f':
			if (optarg[0] == '\0')
				return memory_usage("--file needs a file name");
			o->file = optarg;
			break;
		case 'k':
			if (ctl_parse_uint(optarg, 1, 100, &o->top_k) < 0)
				return memory_usage("--top-k is 1 to 100");
			break;
		case 'm':
			errno = 0;
			o->min_score = strtod(optarg, &end);
			if (errno != 0 || end == optarg || *end != '\0' ||
			    !(o->min_score >= 0 && o->min_score <= 1))
				return memory_usage("--min-score is a number "
				    "from 0 to 1");
			break;
		case 'P':
			if (ctl_parse_uint(optarg, 1, 1000, &o->page_size) < 0)
				return memory_usage("--page-size is 1 to 1000");
			break;
		case 'a':
			o->all = 1;
			break;
		case 'e':
			o->expired = 1;
			break;
		case 'y':
			o->yes = 1;
			break;
		}
	}
	o->tenant = p.tenant;
	o->token = p.token;
	left = argc - 1 - optind;
	if (strcmp(o->command, "add") == 0) {
		if (o->file != NULL ? left != 0 : left != 1)
			return memory_usage("memory add takes the text, '-' "
			    "(standard input) or --file, one of them");
		if (o->file == NULL && strcmp(argv[optind + 1], "-") == 0)
			o->file = "-";
		else if (o->file == NULL)
			o->arg = argv[optind + 1];
		if (o->arg != NULL && (o->arg[0] == '\0' ||
		    strlen(o->arg) > ITEM_TEXT_MAX))
			return memory_usage("the text is 1 byte to 16 KiB");
		return 0;
	}
	if (left != nargs)
		return memory_usage(nargs == 0 ? "too many arguments" :
		    strcmp(o->command, "search") == 0 ? "memory search needs "
		    "one query" : "needs exactly one item id");
	if (nargs == 1)
		o->arg = argv[optind + 1];
	if (strcmp(o->command, "search") == 0 && (o->arg[0] == '\0' ||
	    strlen(o->arg) > QUERY_MAX))
		return memory_usage("the query is 1 byte to 4 KiB");
	if ((strcmp(o->command, "show") == 0 ||
	    strcmp(o->command, "rm") == 0) && (o->arg[0] == '\0' ||
	    strlen(o->arg) > ID_MAX))
		return memory_usage("bad item id");
	return 0;
}

/* Output */

/* Tags joined by commas into buf. */
static const char *
tags_string(char *const *tags, size_t n, char *buf, size_t size)
{
	size_t	 i, len = 0;

	buf[0] = '\0';
	for (i = 0; i < n && len < size; i++)
		len += (size_t)snprintf(buf + len, size - len, "%s%s",
		    i > 0 ? "," : "", tags[i]);
	return buf[0] != '\0' ? buf : "-";
}

/* The start of text on one line in buf (of SHORT_TEXT + 4 bytes or
 * more): white space as spaces, at most SHORT_TEXT bytes, not cut inside
 * a UTF-8 character, "..." when cut. */
static const char *
short_text(const char *text, char *buf, size_t size)
{
	size_t	 i, n = strlen(text);
	int	 cut = 0;

	if (size < SHORT_TEXT + 4)
		return "";
	if (n > SHORT_TEXT) {
		n = SHORT_TEXT;
		while (n > 0 && ((unsigned char)text[n] & 0xc0) == 0x80)
			n--;
		cut = 1;
	}
	for (i = 0; i < n; i++)
		buf[i] = text[i] == '\n' || text[i] == '\t' ||
		    text[i] == '\r' ? ' ' : text[i];
	buf[n] = '\0';
	if (cut)
		memcpy(buf + n, "...", 4);
	return buf;
}

static void
print_field(const char *name, const char *value)
{
	printf("%-16s ", name);
	ctl_print_clean(stdout, value[0] != '\0' ? value : "-");
	putchar('\n');
}

static void
print_item(const Palyra__V1__MemoryItem *m)
{
	char	 t[32], tags[TAGS_MAX * (TAG_MAX + 1) + 1];

	print_field("item_id", m->item_id);
	print_field("principal", m->principal);
	print_field("session_id", m->session_id);
	print_field("tags", tags_string(m->tags, m->n_tags, tags,
	    sizeof(tags)));
	print_field("source", m->source);
	print_field("created", ctl_time_string(m->created_unix_ms, t,
	    sizeof(t)));
	print_field("expires", m->expires_unix_ms != 0 ?
	    ctl_time_string(m->expires_unix_ms, t, sizeof(t)) : "never");
	print_field("embedding_model", m->embedding_model);
	printf("text\n");
	ctl_print_clean(stdout, m->text);
	putchar('\n');
}

static int
item_row(struct ctl_table *t, const ProtobufCMessage *msg)
{
	const Palyra__V1__MemoryItem *m = (const Palyra__V1__MemoryItem *)msg;
	char	 created[32], expires[32], text[SHORT_TEXT + 8];
	char	 tags[TAGS_MAX * (TAG_MAX + 1) + 1];
	const char *row[] = {
		m->item_id, m->principal,
		m->session_id[0] != '\0' ? m->session_id : "-",
		tags_string(m->tags, m->n_tags, tags, sizeof(tags)),
		ctl_time_string(m->created_unix_ms, created, sizeof(created)),
		m->expires_unix_ms != 0 ? ctl_time_string(m->expires_unix_ms,
		    expires, sizeof(expires)) : "never",
		short_text(m->text, text, sizeof(text)),
	};

	return ctl_table_add(t, row);
}

/* Commands */

static int
cmd_add(const struct ctl_ctx *ctx, const struct memory_opts *o,
    const char *token)
{
	Palyra__V1__IngestMemoryRequest	 req =
	    PALYRA__V1__INGEST_MEMORY_REQUEST__INIT;
	Palyra__V1__MemoryItem		*m;
	char				*text = NULL;
	size_t				 len;

	if (o->file != NULL) {
		if (ctl_read_input("memory add", o->file, ITEM_TEXT_MAX,
		    &text, &len) < 0)
			return CTL_EXIT_FAIL;
		if (len == 0 || strlen(text) != len) {
			fprintf(stderr, "palyractl: memory add: the text is "
			    "empty or holds a NUL byte\n");
			free(text);
			return CTL_EXIT_FAIL;
		}
		req.text = text;
	} else
		req.text = (char *)o->arg;
	if (o->session != NULL)
		req.session_id = (char *)o->session;
	req.tags = (char **)o->tags;
	req.n_tags = o->ntags;
	if (o->source != NULL)
		req.source = (char *)o->source;
	req.ttl_ms = o->ttl_ms;
	if (o->principal != NULL)
		req.principal = (char *)o->principal;
	m = ctl_unary_msg(ctx, "memory add", MEMORY "IngestMemory", token,
	    &req.base, &palyra__v1__memory_item__descriptor);
	free(text);
	if (m == NULL)
		return CTL_EXIT_FAIL;
	if (ctx->json)
		ctl_print_pb_json(&m->base);
	else
		printf("%s\n", m->item_id);
	palyra__v1__memory_item__free_unpacked(m, NULL);
	return CTL_EXIT_OK;
}

static int
cmd_search(const struct ctl_ctx *ctx, const struct memory_opts *o,
    const char *token)
{
	static const char *const header[] = {
		"SCORE", "TEXT_SCORE", "VECTOR_SCORE", "ID", "TAGS", "TEXT",
	};
	Palyra__V1__SearchMemoryRequest	 req =
	    PALYRA__V1__SEARCH_MEMORY_REQUEST__INIT;
	Palyra__V1__SearchMemoryResponse *resp;
	const Palyra__V1__MemoryHit	*h;
	struct ctl_table		*t = NULL;
	char				 s[3][16], text[SHORT_TEXT + 8];
	char				 tags[TAGS_MAX * (TAG_MAX + 1) + 1];
	size_t				 i;
	int				 rc = CTL_EXIT_OK;

	req.query = (char *)o->arg;
	req.top_k = o->top_k;
	req.min_score = o->min_score;
	if (o->session != NULL)
		req.session_id = (char *)o->session;
	req.tags = (char **)o->tags;
	req.n_tags = o->ntags;
	if (o->principal != NULL)
		req.principal = (char *)o->principal;
	if ((resp = ctl_unary_msg(ctx, "memory search", MEMORY "SearchMemory",
	    token, &req.base, &palyra__v1__search_memory_response__descriptor))
	    == NULL)
		return CTL_EXIT_FAIL;
	if (ctx->json) {
		rc = ctl_print_pb_json(&resp->base) < 0 ? CTL_EXIT_FAIL :
		    CTL_EXIT_OK;
		goto out;
	}
	if ((t = ctl_table_new(6, "rrrlll", header)) == NULL)
		rc = CTL_EXIT_FAIL;
	for (i = 0; rc == CTL_EXIT_OK && i < resp->n_hits; i++) {
		h = resp->hits[i];
		if (h->item == NULL)
			continue;
		snprintf(s[0], sizeof(s[0]), "%.3f", h->score);
		snprintf(s[1], sizeof(s[1]), "%.3f", h->text_score);
		snprintf(s[2], sizeof(s[2]), "%.3f", h->vector_score);
		{
			const char *row[] = { s[0], s[1], s[2],
			    h->item->item_id, tags_string(h->item->tags,
			    h->item->n_tags, tags, sizeof(tags)),
			    short_text(h->item->text, text, sizeof(text)) };

			if (ctl_table_add(t, row) < 0)
				rc = CTL_EXIT_FAIL;
		}
	}
	if (rc != CTL_EXIT_OK)
		fprintf(stderr, "palyractl: memory search: out of memory\n");
	else {
		ctl_table_print(t, stdout);
		printf("%zu hit%s\n", resp->n_hits, resp->n_hits == 1 ? "" :
		    "s");
	}
out:
	ctl_table_free(t);
	palyra__v1__search_memory_response__free_unpacked(resp, NULL);
	return rc;
}

static int
cmd_list(const struct ctl_ctx *ctx, const struct memory_opts *o,
    const char *token)
{
	static const char *const header[] = {
		"ID", "PRINCIPAL", "SESSION", "TAGS", "CREATED", "EXPIRES",
		"TEXT",
	};
	Palyra__V1__ListMemoryItemsRequest	 req =
	    PALYRA__V1__LIST_MEMORY_ITEMS_REQUEST__INIT;
	struct ctl_listing			 l = {
		.what = "memory list", .method = MEMORY "ListMemoryItems",
		.reply = &palyra__v1__list_memory_items_response__descriptor,
		.field = "items", .all = o->all, .ncols = 7,
		.align = "lllllll", .header = header, .row = item_row,
	};
	int					 rc = CTL_EXIT_FAIL;

	if (o->principal != NULL)
		req.principal = (char *)o->principal;
	if (o->session != NULL)
		req.session_id = (char *)o->session;
	if (o->ntags > 0)
		req.tag = o->tags[0];
	req.page_size = o->page_size;
	if (ctl_list(ctx, token, &req.base, &l) < 0)
		goto out;
	if (ctx->json)
		ctl_print_json(json_pack("{s:O, s:s}", "items", l.items,
		    "next_page_token", l.next != NULL ? l.next : ""));
	else {
		ctl_table_print(l.table, stdout);
		printf("%zu item%s%s\n", l.total, l.total == 1 ? "" : "s",
		    l.next != NULL ? " (more with --all)" : "");
	}
	rc = CTL_EXIT_OK;
out:
	ctl_listing_free(&l);
	return rc;
}

static int
cmd_show(const struct ctl_ctx *ctx, const struct memory_opts *o,
    const char *token)
{
	Palyra__V1__GetMemoryItemRequest	 req =
	    PALYRA__V1__GET_MEMORY_ITEM_REQUEST__INIT;
	Palyra__V1__MemoryItem			*m;

	req.item_id = (char *)o->arg;
	if ((m = ctl_unary_msg(ctx, "memory show", MEMORY "GetMemoryItem",
	    token, &req.base, &palyra__v1__memory_item__descriptor)) == NULL)
		return CTL_EXIT_FAIL;
	if (ctx->json)
		ctl_print_pb_json(&m->base);
	else
		print_item(m);
	palyra__v1__memory_item__free_unpacked(m, NULL);
	return CTL_EXIT_OK;
}

static int
cmd_rm(const struct ctl_ctx *ctx, const struct memory_opts *o,
    const char *token)
{
	Palyra__V1__DeleteMemoryItemRequest	 req =
	    PALYRA__V1__DELETE_MEMORY_ITEM_REQUEST__INIT;
	struct ctl_unary_reply			 reply;

	req.item_id = (char *)o->arg;
	if (ctl_unary(ctx, "memory rm", MEMORY "DeleteMemoryItem", token,
	    &req.base, &reply) < 0)
		return CTL_EXIT_FAIL;
	free(reply.data);
	ctl_print_deleted(ctx, "item_id", o->arg);
	return CTL_EXIT_OK;
}

/* On a terminal, asks before a purge. Returns 1 for yes. */
static int
confirm_purge(const struct memory_opts *o)
{
	char	 line[16];

	fprintf(stderr, "delete the memory items of %s%s%s%s%s%s? [y/N] ",
	    o->principal == NULL ? "your principal" : strcmp(o->principal,
	    "*") == 0 ? "every principal" : o->principal,
	    o->session != NULL ? " in session " : "",
	    o->session != NULL ? o->session : "",
	    o->ntags > 0 ? " tagged " : "", o->ntags > 0 ? o->tags[0] : "",
	    o->expired ? " that expired" : "");
	fflush(stderr);
	if (fgets(line, sizeof(line), stdin) == NULL)
		return 0;
	return strcmp(line, "y\n") == 0 || strcmp(line, "yes\n") == 0 ||
	    strcmp(line, "Y\n") == 0;
}

static int
cmd_purge(const struct ctl_ctx *ctx, const struct memory_opts *o,
    const char *token)
{
	Palyra__V1__PurgeMemoryRequest	 req =
	    PALYRA__V1__PURGE_MEMORY_REQUEST__INIT;
	Palyra__V1__PurgeMemoryResponse	*resp;

	if (o->principal != NULL)
		req.principal = (char *)o->principal;
	if (o->session != NULL)
		req.session_id = (char *)o->session;
	if (o->ntags > 0)
		req.tag = o->tags[0];
	req.expired_only = o->expired;
	if ((resp = ctl_unary_msg(ctx, "memory purge", MEMORY "PurgeMemory",
	    token, &req.base, &palyra__v1__purge_memory_response__descriptor))
	    == NULL)
		return CTL_EXIT_FAIL;
	if (ctx->json)
		ctl_print_pb_json(&resp->base);
	else
		printf("%llu item%s deleted\n",
		    (unsigned long long)resp->deleted, resp->deleted == 1 ?
		    "" : "s");
	palyra__v1__purge_memory_response__free_unpacked(resp, NULL);
	return CTL_EXIT_OK;
}

int
ctl_cmd_memory(struct ctl_ctx *ctx, int argc, char **argv)
{
	struct memory_opts	 o;
	char			*token, what[64];
	int			 rc;

	if ((rc = memory_parse(ctx, argc, argv, &o)) != 0)
		return rc;
	if (strcmp(o.command, "purge") == 0 && !o.yes) {
		if (!isatty(STDIN_FILENO) || !isatty(STDERR_FILENO))
			return memory_usage("memory purge deletes items: "
			    "confirm with --yes");
		if (!confirm_purge(&o)) {
			fprintf(stderr, "palyractl: memory purge: "
			    "cancelled\n");
			return CTL_EXIT_FAIL;
		}
	}
	snprintf(what, sizeof(what), "memory %s", o.command);
	if ((token = ctl_command_token(ctx, o.token, o.tenant, what, &rc)) ==
	    NULL)
		return rc;
	if (strcmp(o.command, "add") == 0)
		rc = cmd_add(ctx, &o, token);
	else if (strcmp(o.command, "search") == 0)
		rc = cmd_search(ctx, &o, token);
	else if (strcmp(o.command, "list") == 0)
		rc = cmd_list(ctx, &o, token);
	else if (strcmp(o.command, "show") == 0)
		rc = cmd_show(ctx, &o, token);
	else if (strcmp(o.command, "rm") == 0)
		rc = cmd_rm(ctx, &o, token);
	else
		rc = cmd_purge(ctx, &o, token);
	ctl_free_token(token);
	return rc;
}
