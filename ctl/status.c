/*
 * status.c: `palyractl status`, palyrad's processes as an aligned table
 * (GET /admin/v1/processes with the admin token), or the server's JSON
 * as received with --json. Runs in palyractl.
 *
 * Exits 0 when every process is ready or idle (a tenant's worker slot
 * that is not running: workers start on first use and retire when idle)
 * and 1 otherwise (one starting for longer than CTL_STARTING_MAX_MS, in
 * back-off, parked, stopping), so that scripts and health checks can use
 * it as it is. Text from the server is shown
 * with control characters replaced, bounded per cell.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ctl.h"

enum {
	COL_KIND = 0,
	COL_TENANT,
	COL_PID,
	COL_UID,
	COL_STATE,
	COL_RESTARTS,
	COL_UPTIME,
	COL_SANDBOX,
	COL_CGROUP,
	COL_COUNT,
};

#define CELL_MAX	200

static const char *const headers[COL_COUNT] = {
	"KIND", "TENANT", "PID", "UID", "STATE", "RESTARTS", "UPTIME",
	"SANDBOX", "CGROUP",
};

struct row {
	char	 cells[COL_COUNT][CELL_MAX];
};

/* Copies a server string into a cell, harmless on a terminal. */
static void
cell_text(char *cell, const char *s)
{
	size_t	 i;

	if (s == NULL || s[0] == '\0')
		s = "-";
	for (i = 0; s[i] != '\0' && i < CELL_MAX - 1; i++)
		cell[i] = (unsigned char)s[i] < 0x20 ||
		    (unsigned char)s[i] == 0x7f ? '?' : s[i];
	cell[i] = '\0';
}

static void
cell_integer(char *cell, json_t *v)
{
	if (json_is_integer(v))
		snprintf(cell, CELL_MAX, "%lld",
		    (long long)json_integer_value(v));
	else
		snprintf(cell, CELL_MAX, "-");
}

/* 42s, 5m03s, 2h05m, 3d04h. */
static void
cell_uptime(char *cell, json_t *v)
{
	long long	 s;

	if (!json_is_number(v) || json_number_value(v) < 0) {
		snprintf(cell, CELL_MAX, "-");
		return;
	}
	s = (long long)json_number_value(v);
	if (s < 60)
		snprintf(cell, CELL_MAX, "%llds", s);
	else if (s < 3600)
		snprintf(cell, CELL_MAX, "%lldm%02llds", s / 60, s % 60);
	else if (s < 86400)
		snprintf(cell, CELL_MAX, "%lldh%02lldm", s / 3600,
		    s / 60 % 60);
	else
		snprintf(cell, CELL_MAX, "%lldd%02lldh", s / 86400,
		    s / 3600 % 24);
}

/*
 * The sandbox in a few letters: the kinds of step applied, in a fixed
 * order ("uid,ns,chroot,caps,nnp,landlock,seccomp"), or "partial: N
 * skipped" when any step was skipped.
 */
static void
cell_sandbox(char *cell, json_t *sandbox)
{
	static const struct {
		const char	*prefix;	/* of the fact */
		const char	*tag;
	} tags[] = {
		{ "uid ", "uid" },
		{ NULL, "ns" },		/* "mount ns", "user ns (...)" */
		{ "chroot", "chroot" },
		{ "capabilities", "caps" },
		{ "no_new_privs", "nnp" },
		{ "landlock", "landlock" },
		{ "seccomp", "seccomp" },
	};
	json_t		*applied = json_object_get(sandbox, "applied");
	json_t		*skipped = json_object_get(sandbox, "skipped");
	json_t		*fact;
	const char	*s;
	size_t		 i, j, len = 0;
	int		 found;

	cell[0] = '\0';
	if (json_array_size(skipped) > 0) {
		snprintf(cell, CELL_MAX, "partial: %zu skipped",
		    json_array_size(skipped));
		return;
	}
	for (i = 0; i < sizeof(tags) / sizeof(tags[0]); i++) {
		found = 0;
		json_array_foreach(applied, j, fact) {
			if ((s = json_string_value(fact)) == NULL)
				continue;
			if (tags[i].prefix != NULL ?
			    strncmp(s, tags[i].prefix,
			    strlen(tags[i].prefix)) == 0 :
			    strstr(s, " ns") != NULL)
				found = 1;
		}
		if (found)
			len += (size_t)snprintf(cell + len, CELL_MAX - len,
			    "%s%s", len > 0 ? "," : "", tags[i].tag);
	}
	if (len == 0)
		snprintf(cell, CELL_MAX, "-");
}

/* Ready, idle, or starting for a little while: what a healthy host shows. */
static int
process_ok(json_t *p, const char *state)
{
	json_t	*up = json_object_get(p, "uptime_seconds");

	if (state == NULL)
		return 0;
	if (strcmp(state, "ready") == 0 || strcmp(state, "idle") == 0)
		return 1;
	return strcmp(state, "starting") == 0 && (json_is_null(up) ||
	    (json_is_number(up) && json_number_value(up) * 1000 <
	    CTL_STARTING_MAX_MS));
}

static int
row_fill(struct row *r, json_t *p)
{
	json_t	*state = json_object_get(p, "state");

	cell_text(r->cells[COL_KIND],
	    json_string_value(json_object_get(p, "kind")));
	cell_text(r->cells[COL_TENANT],
	    json_string_value(json_object_get(p, "tenant")));
	cell_integer(r->cells[COL_PID], json_object_get(p, "pid"));
	cell_integer(r->cells[COL_UID], json_object_get(p, "uid"));
	cell_text(r->cells[COL_STATE], json_string_value(state));
	cell_integer(r->cells[COL_RESTARTS], json_object_get(p, "restarts"));
	cell_uptime(r->cells[COL_UPTIME], json_object_get(p,
	    "uptime_seconds"));
	cell_sandbox(r->cells[COL_SANDBOX], json_object_get(p, "sandbox"));
	cell_text(r->cells[COL_CGROUP],
	    json_string_value(json_object_get(p, "cgroup")));
	return process_ok(p, json_string_value(state));
}

/* One line; the last column is not padded. */
static void
line_print(const char *const cells[COL_COUNT], const size_t width[COL_COUNT])
{
	size_t	 c;

	for (c = 0; c + 1 < COL_COUNT; c++)
		printf("%-*s  ", (int)width[c], cells[c]);
	printf("%s\n", cells[COL_COUNT - 1]);
}

static void
table_print(const struct row *rows, size_t n)
{
	size_t	 width[COL_COUNT], i, c, w;

	for (c = 0; c < COL_COUNT; c++) {
		width[c] = strlen(headers[c]);
		for (i = 0; i < n; i++)
			if ((w = strlen(rows[i].cells[c])) > width[c])
				width[c] = w;
	}
	line_print(headers, width);
	for (i = 0; i < n; i++) {
		const char	*cells[COL_COUNT];

		for (c = 0; c < COL_COUNT; c++)
			cells[c] = rows[i].cells[c];
		line_print(cells, width);
	}
	fflush(stdout);
}

int
ctl_cmd_status(const struct ctl_ctx *ctx, int argc, char **argv)
{
	json_error_t	 jerr;
	json_t		*root, *procs, *p;
	struct row	*rows = NULL;
	char		 err[512], *reply;
	size_t		 i, n;
	int		 all_ready = 1;

	if (argc != 1) {
		fprintf(stderr, "palyractl: status takes no arguments\n");
		return CTL_EXIT_USAGE;
	}
	if (ctl_processes(ctx, &reply, err, sizeof(err)) < 0) {
		fprintf(stderr, "palyractl: status: %s\n", err);
		return CTL_EXIT_FAIL;
	}
	root = json_loads(reply, 0, &jerr);
	procs = json_object_get(root, "processes");
	if (!json_is_array(procs)) {
		fprintf(stderr, "palyractl: status: malformed reply\n");
		json_decref(root);
		free(reply);
		return CTL_EXIT_FAIL;
	}
	n = json_array_size(procs);
	if (!ctx->json && (rows = calloc(n + 1, sizeof(*rows))) == NULL) {
		fprintf(stderr, "palyractl: status: out of memory\n");
		json_decref(root);
		free(reply);
		return CTL_EXIT_FAIL;
	}
	json_array_foreach(procs, i, p) {
		struct row	 scratch;

		if (!row_fill(rows != NULL ? &rows[i] : &scratch, p))
			all_ready = 0;
	}
	if (ctx->json) {
		n = strlen(reply);
		printf("%s%s", reply, n > 0 && reply[n - 1] == '\n' ? "" :
		    "\n");
		fflush(stdout);
	} else
		table_print(rows, n);
	free(rows);
	json_decref(root);
	free(reply);
	return all_ready ? CTL_EXIT_OK : CTL_EXIT_FAIL;
}
