/*
 * vault.c: `palyractl vault put|get|list|rm|rotate-master`: the tenant's
 * secrets over VaultService (PutSecret, GetSecret, ListSecrets,
 * DeleteSecret), the host's with --host over the admin API
 * (/admin/v1/vault), and the re-wrapping of every tenant key under a new
 * master key (POST /admin/v1/vault/rotate-master).
 *
 * Runs in palyractl as the invoking user with no privilege. A secret
 * value is read from standard input or a file, never from the command
 * line, where ps(1) and shell history would keep it; it is wiped from
 * memory once sent. `vault get` writes the value raw to standard output,
 * and refuses a terminal unless --force. Tenant commands take --token,
 * PALYRA_TOKEN or --tenant (an operator token minted with the admin
 * token); --host and rotate-master use the admin token.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <jansson.h>

#include "ctl.h"
#include "palyra/v1/gateway.pb-c.h"

#define VAULT		"/palyra.v1.VaultService/"
#define SECRET_NAME_MAX	128
#define SECRET_MAX	(64 * 1024)
#define DESCRIPTION_MAX	256

struct vault_opts {
	const char	*command;
	const char	*name;
	const char	*tenant;
	const char	*token;
	const char	*description;
	const char	*file;
	int		 strip_newline;
	int		 force;
	int		 host;
};

static int
vault_usage(const char *why)
{
	fprintf(stderr, "palyractl: %s\n", why);
	fprintf(stderr,
	    "usage: palyractl vault put [--host] [--description text] "
	    "[--file file]\n"
	    "           [--strip-newline] name < value\n"
	    "       palyractl vault get [--force] name\n"
	    "       palyractl vault list [--host]\n"
	    "       palyractl vault rm [--host] name\n"
	    "       palyractl vault rotate-master\n"
	    "   (tenant commands take --tenant name or --token token; all "
	    "take --json)\n");
	return CTL_EXIT_USAGE;
}

int
ctl_read_input(const char *what, const char *path, size_t max, char **out,
    size_t *len)
{
	char	*buf;
	size_t	 n = 0;
	ssize_t	 r;
	int	 fd;

	*out = NULL;
	*len = 0;
	if (strcmp(path, "-") == 0)
		fd = STDIN_FILENO;
	else if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) < 0) {
		fprintf(stderr, "palyractl: %s: %s: %s\n", what, path,
		    strerror(errno));
		return -1;
	} else if (fcntl(fd, F_SETFL, 0) < 0) {
		fprintf(stderr, "palyractl: %s: %s: %s\n", what, path,
		    strerror(errno));
		close(fd);
		return -1;
	}
	/* One byte more than allowed tells too long from just right. */
	if ((buf = malloc(max + 2)) == NULL) {
		fprintf(stderr, "palyractl: %s: out of memory\n", what);
		goto fail;
	}
	while (n <= max) {
		if ((r = read(fd, buf + n, max + 1 - n)) < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "palyractl: %s: %s: %s\n", what,
			    strcmp(path, "-") == 0 ? "standard input" : path,
			    strerror(errno));
			goto fail;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (n > max) {
		fprintf(stderr, "palyractl: %s: %s is larger than %zu bytes\n",
		    what, strcmp(path, "-") == 0 ? "standard input" : path,
		    max);
		goto fail;
	}
	buf[n] = '\0';
	if (fd != STDIN_FILENO)
		close(fd);
	*out = buf;
	*len = n;
	return 0;
fail:
	if (buf != NULL) {
		explicit_bzero(buf, max + 2);
		free(buf);
	}
	if (fd != STDIN_FILENO)
		close(fd);
	return -1;
}

/* The message and exit code of an admin API call that failed (err) or
 * whose reply is not 2xx. */
static int
admin_failed(const char *what, int called, long status,
    const char *reply, const char *err)
{
	char	 msg[512];

	if (called < 0) {
		fprintf(stderr, "palyractl: %s failed: %s\n", what, err);
		return CTL_EXIT_FAIL;
	}
	ctl_admin_error_message(reply, status, msg, sizeof(msg));
	fprintf(stderr, "palyractl: %s failed: ", what);
	ctl_print_clean(stderr, msg);
	fputc('\n', stderr);
	return CTL_EXIT_FAIL;
}

/* 1 to 128 bytes of [A-Za-z0-9._-], not starting with '.'. */
static int
valid_name(const char *s)
{
	size_t	 n = strlen(s);

	return n > 0 && n <= SECRET_NAME_MAX && s[0] != '.' &&
	    strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789._-") == n;
}

static int
vault_parse(struct ctl_ctx *ctx, int argc, char **argv,
    struct vault_opts *o)
{
	static const struct option opts[] = {
		CTL_TENANT_OPTIONS,
		{ "description", required_argument, NULL, 'd' },
		{ "file", required_argument, NULL, 'f' },
		{ "strip-newline", no_argument, NULL, 'n' },
		{ "force", no_argument, NULL, 'F' },
		{ "host", no_argument, NULL, 'H' },
		{ NULL, 0, NULL, 0 },
	};
	static const struct ctl_subcommand commands[] = {
		{ "put", "tTdfnHj", 1 },
		{ "get", "tTFj", 1 },
		{ "list", "tTHj", 0 },
		{ "rm", "tTHj", 1 },
		{ "rotate-master", "j", 0 },
	};
	struct ctl_subparse	 p = { .group = "vault", .shortopts = "",
	    .opts = opts };
	int			 ch, nargs, left;

	memset(o, 0, sizeof(*o));
	if (argc < 2)
		return vault_usage("vault needs put, get, list, rm or "
		    "rotate-master");
	o->command = argv[1];
	if (ctl_subparse_begin(&p, commands, sizeof(commands) /
	    sizeof(commands[0]), o->command) == NULL)
		return vault_usage("unknown vault command");
	nargs = p.sub->nargs;
	while ((ch = ctl_subparse_next(ctx, &p, argc, argv)) != -1) {
		switch (ch) {
		case 0:
			return vault_usage(p.why);
		case 'd':
			if (strlen(optarg) > DESCRIPTION_MAX)
				return vault_usage("--description is at most "
				    "256 bytes");
			o->description = optarg;
			break;
		case 'f':
			if (optarg[0] == '\0')
				return vault_usage("--file needs a file name");
			o->file = optarg;
			break;
		case 'n':
			o->strip_newline = 1;
			break;
		case 'F':
			o->force = 1;
			break;
		case 'H':
			o->host = 1;
			break;
		}
	}
	o->tenant = p.tenant;
	o->token = p.token;
	left = argc - 1 - optind;
	if (strcmp(o->command, "put") == 0 && left > 1)
		return vault_usage("vault put reads the value from standard "
		    "input or --file, never from the command line, where "
		    "ps(1) and the shell's history would show it");
	if (left != nargs)
		return vault_usage(nargs == 0 ? "too many arguments" :
		    "needs exactly one secret name");
	if (nargs == 1) {
		o->name = argv[optind + 1];
		if (!valid_name(o->name))
			return vault_usage("a secret name is 1 to 128 bytes of "
			    "A-Z a-z 0-9 . _ -, not starting with '.'");
	}
	if (o->host && (o->tenant != NULL || o->token != NULL))
		return vault_usage("--host goes without --tenant and --token "
		    "(it uses the admin token)");
	return 0;
}

/* One line from the terminal on standard input, its newline included.
 * Returns 0, or -1 after a message. */
static int
read_line(char **value, size_t *len)
{
	char	*buf;
	size_t	 n = 0;
	ssize_t	 r;

	*value = NULL;
	*len = 0;
	if ((buf = malloc(SECRET_MAX + 3)) == NULL) {
		fprintf(stderr, "palyractl: vault put: out of memory\n");
		return -1;
	}
	while (n < SECRET_MAX + 2 && (n == 0 || buf[n - 1] != '\n')) {
		if ((r = read(STDIN_FILENO, buf + n, SECRET_MAX + 2 - n)) < 0 &&
		    errno == EINTR)
			continue;
		if (r < 0) {
			fprintf(stderr, "palyractl: vault put: standard input: "
			    "%s\n", strerror(errno));
			explicit_bzero(buf, SECRET_MAX + 3);
			free(buf);
			return -1;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
	*value = buf;
	*len = n;
	return 0;
}

/*
 * The value of vault put: --file, else standard input. From a terminal,
 * one line is read with echo off (its newline is not part of the value);
 * otherwise the whole input is, a trailing newline kept unless
 * --strip-newline. Returns 0 or -1 after a message.
 */
static int
read_value(const struct vault_opts *o, char **value, size_t *len)
{
	struct termios	 old, quiet;
	size_t		 got;
	int		 tty = o->file == NULL && isatty(STDIN_FILENO);
	int		 rc;

	if (tty) {
		if (tcgetattr(STDIN_FILENO, &old) < 0) {
			fprintf(stderr, "palyractl: vault put: %s\n",
			    strerror(errno));
			return -1;
		}
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		quiet.c_lflag |= ICANON;
		fprintf(stderr, "value of %s (not echoed, ends at the "
		    "newline): ", o->name);
		fflush(stderr);
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	}
	if (tty)
		rc = read_line(value, len);
	else
		rc = ctl_read_input("vault put", o->file != NULL ? o->file :
		    "-", SECRET_MAX + (o->strip_newline ? 2 : 0), value, len);
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fputc('\n', stderr);
	}
	if (rc < 0)
		return -1;
	got = *len;
	if (tty || o->strip_newline) {
		if (*len > 0 && (*value)[*len - 1] == '\n')
			(*len)--;
		if (*len > 0 && (*value)[*len - 1] == '\r')
			(*len)--;
	}
	if (*len == 0 || *len > SECRET_MAX) {
		fprintf(stderr, "palyractl: vault put: a secret value is 1 "
		    "byte to 64 KiB\n");
		explicit_bzero(*value, got);
		free(*value);
		*value = NULL;
		return -1;
	}
	return 0;
}

static void
print_meta(const Palyra__V1__SecretMeta *m)
{
	ctl_print_clean(stdout, m->name);
	printf(" version %u size %llu\n", m->version,
	    (unsigned long long)m->size);
}

static int
cmd_put(const struct ctl_ctx *ctx, const struct vault_opts *o,
    const char *token, char *value, size_t len)
{
	Palyra__V1__PutSecretRequest	 req =
	    PALYRA__V1__PUT_SECRET_REQUEST__INIT;
	Palyra__V1__SecretMeta		*m;

	req.name = (char *)o->name;
	req.value.data = (uint8_t *)value;
	req.value.len = len;
	if (o->description != NULL)
		req.description = (char *)o->description;
	if ((m = ctl_unary_msg(ctx, "vault put", VAULT "PutSecret", token,
	    &req.base, &palyra__v1__secret_meta__descriptor)) == NULL)
		return CTL_EXIT_FAIL;
	if (ctx->json)
		ctl_print_pb_json(&m->base);
	else
		print_meta(m);
	palyra__v1__secret_meta__free_unpacked(m, NULL);
	return CTL_EXIT_OK;
}

static int
cmd_get(const struct ctl_ctx *ctx, const struct vault_opts *o,
    const char *token)
{
	Palyra__V1__GetSecretRequest	 req =
	    PALYRA__V1__GET_SECRET_REQUEST__INIT;
	Palyra__V1__GetSecretResponse	*g;
	int				 rc = CTL_EXIT_OK;

	req.name = (char *)o->name;
	/* ctl_unary_msg wipes the reply it decoded. */
	if ((g = ctl_unary_msg(ctx, "vault get", VAULT "GetSecret", token,
	    &req.base, &palyra__v1__get_secret_response__descriptor)) == NULL)
		return CTL_EXIT_FAIL;
	if (ctx->json) {
		if (ctl_print_pb_json(&g->base) < 0)
			rc = CTL_EXIT_FAIL;
	} else if ((g->value.len > 0 && fwrite(g->value.data, 1, g->value.len,
	    stdout) != g->value.len) || fflush(stdout) != 0) {
		fprintf(stderr, "palyractl: vault get: standard output: %s\n",
		    strerror(errno));
		rc = CTL_EXIT_FAIL;
	}
	if (g->value.data != NULL)
		explicit_bzero(g->value.data, g->value.len);
	palyra__v1__get_secret_response__free_unpacked(g, NULL);
	return rc;
}

static const char *const secret_header[] = {
	"NAME", "VERSION", "SIZE", "UPDATED", "UPDATED_BY", "DESCRIPTION",
};

static int
secret_row(struct ctl_table *t, const char *name, unsigned long long version,
    unsigned long long size, int64_t updated_ms, const char *by,
    const char *description)
{
	char		 v[24], n[24], when[32];
	const char	*row[] = { name, v, n, when, by[0] != '\0' ? by : "-",
	    description[0] != '\0' ? description : "-" };

	snprintf(v, sizeof(v), "%llu", version);
	snprintf(n, sizeof(n), "%llu", size);
	ctl_time_string(updated_ms, when, sizeof(when));
	return ctl_table_add(t, row);
}

static int
meta_row(struct ctl_table *t, const ProtobufCMessage *msg)
{
	const Palyra__V1__SecretMeta *m = (const Palyra__V1__SecretMeta *)msg;

	return secret_row(t, m->name, m->version, m->size, m->updated_unix_ms,
	    m->updated_by, m->description);
}

static int
cmd_list(const struct ctl_ctx *ctx, const char *token)
{
	Palyra__V1__ListSecretsRequest	 req =
	    PALYRA__V1__LIST_SECRETS_REQUEST__INIT;
	struct ctl_listing		 l = {
		.what = "vault list", .method = VAULT "ListSecrets",
		.reply = &palyra__v1__list_secrets_response__descriptor,
		.field = "secrets", .all = 1, .ncols = 6, .align = "lrrlll",
		.header = secret_header, .row = meta_row,
	};
	int				 rc = CTL_EXIT_FAIL;

	req.page_size = 1000;
	if (ctl_list(ctx, token, &req.base, &l) < 0)
		goto out;
	if (ctx->json)
		ctl_print_json(json_pack("{s:O, s:s}", "secrets", l.items,
		    "next_page_token", ""));
	else {
		ctl_table_print(l.table, stdout);
		printf("%zu secret%s\n", l.total, l.total == 1 ? "" : "s");
	}
	rc = CTL_EXIT_OK;
out:
	ctl_listing_free(&l);
	return rc;
}

static int
cmd_rm(const struct ctl_ctx *ctx, const struct vault_opts *o,
    const char *token)
{
	Palyra__V1__DeleteSecretRequest	 req =
	    PALYRA__V1__DELETE_SECRET_REQUEST__INIT;
	struct ctl_unary_reply		 reply;

	req.name = (char *)o->name;
	if (ctl_unary(ctx, "vault rm", VAULT "DeleteSecret", token,
	    &req.base, &reply) < 0)
		return CTL_EXIT_FAIL;
	free(reply.data);
	ctl_print_deleted(ctx, "name", o->name);
	return CTL_EXIT_OK;
}

/* Host scope and rotate-master: the admin API. */

static json_t *
admin_reply(const char *what, const char *reply)
{
	json_t	*root;

	if ((root = json_loads(reply, 0, NULL)) == NULL ||
	    !json_is_object(root)) {
		fprintf(stderr, "palyractl: %s: malformed reply\n", what);
		json_decref(root);
		return NULL;
	}
	return root;
}

static long long
int_field(json_t *obj, const char *key)
{
	json_t	*v = json_object_get(obj, key);

	return json_is_integer(v) ? (long long)json_integer_value(v) : 0;
}

static const char *
str_field(json_t *obj, const char *key)
{
	const char	*s = json_string_value(json_object_get(obj, key));

	return s != NULL ? s : "";
}

static int
host_put(const struct ctl_ctx *ctx, const struct vault_opts *o,
    const char *value, size_t len)
{
	json_t	*body, *root, *meta;
	char	 path[256], err[512], *text, *reply = NULL;
	long	 status = 0;
	int	 called;

	/* JSON carries text: a host secret must be UTF-8. */
	if ((body = json_object()) == NULL ||
	    json_object_set_new(body, "value", json_stringn(value, len)) < 0 ||
	    (o->description != NULL && json_object_set_new(body,
	    "description", json_string(o->description)) < 0)) {
		json_decref(body);
		fprintf(stderr, "palyractl: vault put --host: a host secret "
		    "is UTF-8 text\n");
		return CTL_EXIT_FAIL;
	}
	text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	if (text == NULL) {
		fprintf(stderr, "palyractl: vault put --host: out of memory\n");
		return CTL_EXIT_FAIL;
	}
	snprintf(path, sizeof(path), "/admin/v1/vault/%s", o->name);
	called = ctl_admin_put(ctx, path, text, &status, &reply, err,
	    sizeof(err));
	explicit_bzero(text, strlen(text));
	free(text);
	if (called < 0 || status / 100 != 2) {
		called = admin_failed("vault put --host", called, status,
		    reply, err);
		free(reply);
		return called;
	}
	if ((root = admin_reply("vault put --host", reply)) == NULL) {
		free(reply);
		return CTL_EXIT_FAIL;
	}
	free(reply);
	if (ctx->json)
		return ctl_print_json(root) < 0 ? CTL_EXIT_FAIL : CTL_EXIT_OK;
	/* The secret's metadata, alone or as the one of a list. */
	meta = json_array_get(json_object_get(root, "secrets"), 0);
	if (meta == NULL)
		meta = root;
	printf("host:%s version %lld size %lld\n", o->name,
	    int_field(meta, "version"), int_field(meta, "size") > 0 ?
	    int_field(meta, "size") : (long long)len);
	json_decref(root);
	return CTL_EXIT_OK;
}

static int
host_list(const struct ctl_ctx *ctx)
{
	struct ctl_table	*table;
	json_t			*root, *list, *m;
	char			 err[512], *reply = NULL;
	size_t			 i;
	long			 status = 0;
	int			 called, rc = CTL_EXIT_OK;

	called = ctl_admin_get(ctx, "/admin/v1/vault", &status, &reply, err,
	    sizeof(err));
	if (called < 0 || status / 100 != 2) {
		rc = admin_failed("vault list --host", called, status,
		    reply, err);
		free(reply);
		return rc;
	}
	root = admin_reply("vault list --host", reply);
	free(reply);
	if (root == NULL)
		return CTL_EXIT_FAIL;
	if (ctx->json)
		return ctl_print_json(root) < 0 ? CTL_EXIT_FAIL : CTL_EXIT_OK;
	list = json_object_get(root, "secrets");
	if ((table = ctl_table_new(6, "lrrlll", secret_header)) == NULL) {
		json_decref(root);
		return CTL_EXIT_FAIL;
	}
	json_array_foreach(list, i, m) {
		if (secret_row(table, str_field(m, "name"),
		    (unsigned long long)int_field(m, "version"),
		    (unsigned long long)int_field(m, "size"),
		    int_field(m, "updated_unix_ms"), str_field(m,
		    "updated_by"), str_field(m, "description")) < 0) {
			rc = CTL_EXIT_FAIL;
			break;
		}
	}
	if (rc == CTL_EXIT_OK) {
		ctl_table_print(table, stdout);
		printf("%zu host secret%s\n", json_array_size(list),
		    json_array_size(list) == 1 ? "" : "s");
	}
	ctl_table_free(table);
	json_decref(root);
	return rc;
}

static int
host_rm(const struct ctl_ctx *ctx, const struct vault_opts *o)
{
	char	 path[256], err[512], *reply = NULL;
	long	 status = 0;
	int	 called;

	snprintf(path, sizeof(path), "/admin/v1/vault/%s", o->name);
	called = ctl_admin_delete(ctx, path, &status, &reply, err,
	    sizeof(err));
	if (called < 0 || status / 100 != 2) {
		called = admin_failed("vault rm --host", called, status,
		    reply, err);
		free(reply);
		return called;
	}
	free(reply);
	if (ctx->json)
		ctl_print_json(json_pack("{s:s, s:b}", "name", o->name,
		    "deleted", 1));
	else
		printf("host:%s deleted\n", o->name);
	return CTL_EXIT_OK;
}

static int
rotate_master(const struct ctl_ctx *ctx)
{
	json_t		*root;
	char		 err[512], *reply = NULL;
	long long	 n;
	long		 status = 0;
	int		 called;

	called = ctl_admin_post(ctx, "/admin/v1/vault/rotate-master", "{}",
	    &status, &reply, err, sizeof(err));
	if (called < 0 || status / 100 != 2) {
		called = admin_failed("vault rotate-master", called, status,
		    reply, err);
		free(reply);
		return called;
	}
	root = admin_reply("vault rotate-master", reply);
	free(reply);
	if (root == NULL)
		return CTL_EXIT_FAIL;
	if (ctx->json)
		return ctl_print_json(root) < 0 ? CTL_EXIT_FAIL : CTL_EXIT_OK;
	n = int_field(root, "rewrapped");
	printf("master key rotated: %lld tenant key%s re-wrapped\n", n,
	    n == 1 ? "" : "s");
	json_decref(root);
	return CTL_EXIT_OK;
}

int
ctl_cmd_vault(struct ctl_ctx *ctx, int argc, char **argv)
{
	struct vault_opts	 o;
	char			*token = NULL, *value = NULL, what[64];
	size_t			 len = 0;
	int			 rc;

	if ((rc = vault_parse(ctx, argc, argv, &o)) != 0)
		return rc;
	if (strcmp(o.command, "get") == 0 && !ctx->json && !o.force &&
	    isatty(STDOUT_FILENO))
		return vault_usage("vault get writes the secret to standard "
		    "output, which is a terminal: redirect it, or add "
		    "--force");
	if (strcmp(o.command, "rotate-master") == 0)
		return rotate_master(ctx);
	if (o.host && strcmp(o.command, "list") == 0)
		return host_list(ctx);
	if (o.host && strcmp(o.command, "rm") == 0)
		return host_rm(ctx, &o);
	snprintf(what, sizeof(what), "vault %s", o.command);
	if (!o.host && (token = ctl_command_token(ctx, o.token, o.tenant,
	    what, &rc)) == NULL)
		return rc;
	if (strcmp(o.command, "put") == 0) {
		if (read_value(&o, &value, &len) < 0)
			rc = CTL_EXIT_FAIL;
		else if (o.host)
			rc = host_put(ctx, &o, value, len);
		else
			rc = cmd_put(ctx, &o, token, value, len);
		if (value != NULL) {
			explicit_bzero(value, len);
			free(value);
		}
	} else if (strcmp(o.command, "get") == 0)
		rc = cmd_get(ctx, &o, token);
	else if (strcmp(o.command, "list") == 0)
		rc = cmd_list(ctx, token);
	else
		rc = cmd_rm(ctx, &o, token);
	ctl_free_token(token);
	return rc;
}
