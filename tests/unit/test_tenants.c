/*
 * test_tenants.c: unit tests of the supervisor's runtime tenants
 * (supervisor/tenants.c): the file STATE/tenants.conf (written, read back
 * by the palyrad.conf parser, refused when not the supervisor's, a name of
 * the configuration winning), the answers to each IPC_TENANT_ADMIN
 * operation, the parser's bounds on limits, and the paging that keeps every
 * IPC_TENANT_ADMIN_REPLY within IPC_MAX_PAYLOAD with CFG_MAX_TENANTS
 * tenants of the longest names.
 */
#include <sys/stat.h>

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

/* The code under test, built into this program with the stubs below. */
#include "../../supervisor/tenants.c"

static int applied;

/* The reload machinery is reload.c's; here a change only swaps the
 * configuration, which is what tenants.c relies on. */
struct cfg *
sup_reload_apply(struct sup_ctx *ctx, struct cfg *next, int full)
{
	struct cfg *old = ctx->cfg;

	assert_int_equal(full, 0);
	ctx->cfg = next;
	applied++;
	return old;
}

/* sup_reload() is reload.c's: here it fails with reload_error when set,
 * and counts its successes. */
static const char *reload_error;
static int reloaded;

int
sup_reload(struct sup_ctx *ctx, const char *why, char *err, size_t errlen)
{
	(void)ctx;
	assert_string_equal(why, "admin API");
	if (reload_error != NULL) {
		snprintf(err, errlen, "%s", reload_error);
		return -1;
	}
	reloaded++;
	return 0;
}

static const char base_conf[] =
    "provider \"offline\" { type offline }\n"
    "tenant \"default\" { workers 2; memory-limit 64M }\n";

struct fixture {
	struct event_base *base;
	struct sup_ctx ctx;
	struct sup_child front;
	int peer;
	char dir[64];
};

static void
chan_closed(struct ipc_chan *chan, int error, void *arg)
{
	fail_msg("the front's channel closed: %d", error);
}

static void
fixture_init(struct fixture *f)
{
	char err[CFG_ERR_LEN], text[512];
	int sv[2];

	memset(f, 0, sizeof(*f));
	applied = 0;
	snprintf(f->dir, sizeof(f->dir), "/tmp/palyra-test-tenants-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(text, sizeof(text), "state-dir \"%s\"\n%s", f->dir, base_conf);
	assert_int_equal(cfg_parse_buffer("test.conf", text, strlen(text), NULL,
			     &f->ctx.cfg, err, sizeof(err)),
	    0);
	f->base = event_base_new();
	assert_non_null(f->base);
	TAILQ_INIT(&f->ctx.children);
	assert_int_equal(ipc_socketpair(sv), 0);
	f->front.chan =
	    ipc_chan_new(f->base, sv[0], "front", 0, NULL, chan_closed, f);
	assert_non_null(f->front.chan);
	snprintf(f->front.label, sizeof(f->front.label), "front");
	f->peer = sv[1];
}

static void
fixture_free(struct fixture *f)
{
	char path[128];

	ipc_chan_free(f->front.chan);
	close(f->peer);
	event_base_free(f->base);
	cfg_free(f->ctx.cfg);
	snprintf(path, sizeof(path), "%s/%s", f->dir, SUP_TENANTS_FILE);
	(void)unlink(path);
	rmdir(f->dir);
}

/* The next reply on the front's end; the caller clears m. */
static Palyra__Ipc__TenantAdminReply *
next_reply(struct fixture *f, struct ipc_msg *m, uint32_t request_id)
{
	static uint8_t buf[IPC_DATAGRAM_MAX];
	int fds[IPC_MAX_FDS], nfds;
	size_t idle = 0;
	ssize_t n;

	for (;;) {
		event_base_loop(f->base, EVLOOP_NONBLOCK);
		n = ipc_recvmsg(f->peer, buf, sizeof(buf), fds, &nfds);
		if (n != -EAGAIN)
			break;
		assert_true(++idle < 100000);
	}
	assert_true(n > 0);
	assert_true((size_t)n <= IPC_HEADER_LEN + IPC_MAX_PAYLOAD);
	assert_int_equal(ipc_decode(buf, (size_t)n, nfds, m), 0);
	assert_int_equal(m->hdr.type, IPC_TENANT_ADMIN_REPLY);
	assert_int_equal(m->hdr.request_id, request_id);
	return (Palyra__Ipc__TenantAdminReply *)m->msg;
}

/* One request; returns the reply's code, its only tenant in *info (a
 * copy of what is checked) and the message in msg. */
static uint32_t
call(struct fixture *f, Palyra__Ipc__TenantAdminOp op, const char *name,
    const Palyra__Ipc__TenantLimits *limits, Palyra__Ipc__TenantInfo *info,
    char *msg, size_t msglen)
{
	Palyra__Ipc__TenantAdminRequest req =
	    PALYRA__IPC__TENANT_ADMIN_REQUEST__INIT;
	Palyra__Ipc__TenantAdminReply *r;
	struct ipc_msg m;
	uint32_t code;

	req.op = op;
	req.name = (char *)name;
	req.limits = (Palyra__Ipc__TenantLimits *)limits;
	sup_tenants_admin(&f->ctx, &f->front, 7, &req);
	r = next_reply(f, &m, 7);
	code = r->code;
	if (msg != NULL)
		snprintf(msg, msglen, "%s", r->message);
	if (info != NULL) {
		palyra__ipc__tenant_info__init(info);
		if (r->n_tenants == 1) {
			info->workers = r->tenants[0]->workers;
			info->memory_limit = r->tenants[0]->memory_limit;
			info->pids_limit = r->tenants[0]->pids_limit;
			info->cpu_weight = r->tenants[0]->cpu_weight;
			info->journal_quota = r->tenants[0]->journal_quota;
			info->idle_timeout_ms = r->tenants[0]->idle_timeout_ms;
			info->source =
			    strcmp(r->tenants[0]->source, "runtime") == 0
				? "runtime"
				: "config";
			info->n_agents = r->tenants[0]->n_agents;
		}
	}
	ipc_msg_clear(&m);
	return code;
}

static void
test_create_update_delete(void **state)
{
	Palyra__Ipc__TenantLimits l = PALYRA__IPC__TENANT_LIMITS__INIT;
	Palyra__Ipc__TenantInfo info;
	const struct cfg_tenant *t;
	struct cfg *back;
	struct stat st;
	char msg[256], path[128];
	struct fixture f;

	(void)state;
	fixture_init(&f);
	l.has_memory_limit = 1;
	l.memory_limit = 128ULL << 20;
	l.has_workers = 1;
	l.workers = 3;
	assert_int_equal(
	    call(&f, PALYRA__IPC__TENANT_ADMIN_OP__TENANT_ADMIN_CREATE, "acme",
		&l, &info, msg, sizeof(msg)),
	    GRPC_STATUS_OK);
	assert_string_equal(info.source, "runtime");
	assert_int_equal(info.workers, 3);
	assert_int_equal(info.memory_limit, 128ULL << 20);
	/* Defaults of a tenant block for the rest, and its agent. */
	assert_int_equal(info.idle_timeout_ms, 5 * 60 * 1000);
	assert_int_equal(info.n_agents, 1);
	t = cfg_tenant_find(f.ctx.cfg, "acme");
	assert_non_null(t);
	assert_true(t->runtime);
	assert_string_equal(t->agents[0].name, "assistant");
	assert_string_equal(t->agents[0].providers[0], "offline");
	assert_int_equal(applied, 1);

	/* The file: the supervisor's, 0600, read back by the parser. */
	snprintf(path, sizeof(path), "%s/%s", f.dir, SUP_TENANTS_FILE);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(st.st_uid, geteuid());

	/* Update: only what is given changes. */
	memset(&l, 0, sizeof(l));
	palyra__ipc__tenant_limits__init(&l);
	l.has_cpu_weight = 1;
	l.cpu_weight = 300;
	l.has_memory_limit = 1;
	l.memory_limit = 0;
	assert_int_equal(
	    call(&f, PALYRA__IPC__TENANT_ADMIN_OP__TENANT_ADMIN_UPDATE, "acme",
		&l, &info, NULL, 0),
	    GRPC_STATUS_OK);
	assert_int_equal(info.cpu_weight, 300);
	assert_int_equal(info.memory_limit, 0);
	assert_int_equal(info.workers, 3);

	/* Read back as start-up would, next to the configuration. */
	{
		char err[CFG_ERR_LEN], text[512];

		snprintf(text, sizeof(text), "state-dir \"%s\"\n%s", f.dir,
		    base_conf);
		assert_int_equal(
		    cfg_parse_buffer("test.conf", text, strlen(text), NULL,
			&back, err, sizeof(err)),
		    0);
		assert_int_equal(sup_tenants_merge(f.dir, back), 0);
		assert_int_equal(back->ntenants, 2);
		t = cfg_tenant_find(back, "acme");
		assert_non_null(t);
		assert_true(t->runtime);
		assert_int_equal(t->workers, 3);
		assert_int_equal(t->cpu_weight, 300);
		assert_int_equal(t->memory_limit, 0);
		assert_false(cfg_tenant_find(back, "default")->runtime);
		cfg_free(back);
	}

	assert_int_equal(
	    call(&f, PALYRA__IPC__TENANT_ADMIN_OP__TENANT_ADMIN_DELETE, "acme",
		NULL, NULL, msg, sizeof(msg)),
	    GRPC_STATUS_OK);
	assert_non_null(strstr(msg, "journal"));
	assert_null(cfg_tenant_find(f.ctx.cfg, "acme"));
	assert_non_null(cfg_tenant_find(f.ctx.cfg, "default"));
	assert_int_equal(
	    call(&f, PALYRA__IPC__TENANT_ADMIN_OP__TENANT_ADMIN_GET, "acme",
		NULL, NULL, NULL, 0),
	    GRPC_STATUS_NOT_FOUND);
	assert_int_equal(
	    call(&f, PALYRA__IPC__TENANT_ADMIN_OP__TENANT_ADMIN_DELETE, "acme",
		NULL, NULL, NULL, 0),
	    GRPC_STATUS_NOT_FOUND);
	fixture_free(&f);
}

static void
test_refusals(void **state)
{
	Palyra__Ipc__TenantLimits l = PALYRA__IPC__TENANT_LIMITS__INIT;
	Palyra__Ipc__TenantInfo info;
	char msg[256];
	struct fixture f;

	(void)state;
	fixture_init(&f);
	assert_int_equal(
	    call(&f, PALYRA__IPC__TENANT_ADMIN_OP__TENANT_ADMIN_CREATE,
		"default", NULL, NULL, msg, sizeof(msg)),
	    GRPC_STATUS_ALREADY_EXISTS);
	assert_non_null(strstr(msg, "palyrad.conf"));
	assert_int_equal(
	    call(&f, PALYRA__IPC__TENANT_ADMIN_OP__TENANT_ADMIN_UPDATE,
		"default", &l, NULL, msg, sizeof(msg)),
	    GRPC_STATUS_FAILED_PRECONDITION);
	assert_non_null(strstr(msg, "palyrad.conf"));
	assert_int_equal(
	    call(&f, PALYRA__IPC__TENANT_ADMIN_OP__TENANT_ADMIN_DELETE,
		"default", NULL, NULL, NULL, 0),
	    GRPC_STATUS_FAILED_PRECONDITION);
	assert_int_equal(
	    call(&f, PALYRA__IPC__TENANT_ADMIN_OP__TENANT_ADMIN_GET, "default",
		NULL, &info, NULL, 0),
	    GRPC_STATUS_OK);
	assert_string_equal(info.source, "config");
	assert_int_equal(info.memory_limit, 64ULL << 20);
	assert_int_equal(
	    call(&f, PALYRA__IPC__TENANT_ADMIN_OP__TENANT_ADMIN_CREATE, "../x",
		NULL, NULL, NULL, 0),
	    GRPC_STATUS_INVALID_ARGUMENT);
	assert_int_equal(
	    call(&f, PALYRA__IPC__TENANT_ADMIN_OP__TENANT_ADMIN_GET, "", NULL,
		NULL, NULL, 0),
	    GRPC_STATUS_INVALID_ARGUMENT);
	assert_int_equal(call(&f, 99, "x", NULL, NULL, NULL, 0),
	    GRPC_STATUS_INVALID_ARGUMENT);

	/* The parser's bounds, and its words, without the file's name. */
	l.has_workers = 1;
	l.workers = 65;
	assert_int_equal(
	    call(&f, PALYRA__IPC__TENANT_ADMIN_OP__TENANT_ADMIN_CREATE, "n1",
		&l, NULL, msg, sizeof(msg)),
	    GRPC_STATUS_INVALID_ARGUMENT);
	assert_string_equal(
	    msg, "value \"65\" out of range for \"workers\" (1..64)");
	l.workers = 1;
	l.has_memory_limit = 1;
	l.memory_limit = 1024;
	assert_int_equal(
	    call(&f, PALYRA__IPC__TENANT_ADMIN_OP__TENANT_ADMIN_CREATE, "n1",
		&l, NULL, msg, sizeof(msg)),
	    GRPC_STATUS_INVALID_ARGUMENT);
	assert_non_null(strstr(msg, "memory-limit"));
	l.memory_limit = 0;
	l.has_idle_timeout_ms = 1;
	l.idle_timeout_ms = 8 * 24 * 3600 * 1000ULL;
	assert_int_equal(
	    call(&f, PALYRA__IPC__TENANT_ADMIN_OP__TENANT_ADMIN_CREATE, "n1",
		&l, NULL, msg, sizeof(msg)),
	    GRPC_STATUS_INVALID_ARGUMENT);
	assert_non_null(strstr(msg, "idle-timeout"));
	assert_null(cfg_tenant_find(f.ctx.cfg, "n1"));
	assert_int_equal(applied, 0);

	/* A stopping supervisor changes nothing. */
	f.ctx.stopping = 1;
	assert_int_equal(
	    call(&f, PALYRA__IPC__TENANT_ADMIN_OP__TENANT_ADMIN_CREATE, "n2",
		NULL, NULL, NULL, 0),
	    GRPC_STATUS_UNAVAILABLE);
	fixture_free(&f);
}

static void
test_file_checks(void **state)
{
	struct fixture f;
	struct cfg *cfg;
	char path[128], err[CFG_ERR_LEN];
	FILE *fp;

	(void)state;
	fixture_init(&f);
	snprintf(path, sizeof(path), "%s/%s", f.dir, SUP_TENANTS_FILE);
	/* No file: nothing to add. */
	assert_int_equal(sup_tenants_merge(f.dir, f.ctx.cfg), 0);
	assert_int_equal(f.ctx.cfg->ntenants, 1);

	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("tenant \"default\" { workers 9 }\ntenant \"x\" { }\n", fp);
	fclose(fp);
	/* Anyone may read it: refused. */
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(sup_tenants_merge(f.dir, f.ctx.cfg), -1);
	assert_int_equal(chmod(path, 0600), 0);
	/* The configuration's "default" wins. */
	assert_int_equal(cfg_parse_buffer("t.conf", base_conf,
			     strlen(base_conf), NULL, &cfg, err, sizeof(err)),
	    0);
	assert_int_equal(sup_tenants_merge(f.dir, cfg), 0);
	assert_int_equal(cfg->ntenants, 2);
	assert_int_equal(cfg_tenant_find(cfg, "default")->workers, 2);
	assert_true(cfg_tenant_find(cfg, "x")->runtime);
	/* Positions point into the merged configuration's own files. */
	assert_string_equal(cfg_tenant_find(cfg, "x")->pos.file, path);
	cfg_free(cfg);

	/* A file that does not parse is refused as a whole. */
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("tenant \"y\" { workers 0 }\n", fp);
	fclose(fp);
	assert_int_equal(sup_tenants_merge(f.dir, f.ctx.cfg), -1);
	assert_int_equal(f.ctx.cfg->ntenants, 1);
	fixture_free(&f);
}

static void
test_large_list_is_paged(void **state)
{
	struct fixture f;
	struct cfg_tenant *t;
	Palyra__Ipc__TenantAdminRequest req =
	    PALYRA__IPC__TENANT_ADMIN_REQUEST__INIT;
	Palyra__Ipc__TenantAdminReply *r;
	struct ipc_msg m;
	size_t i, seen = 0, pages = 0;
	char name[NAME_MAX_LEN + 1];
	int last = 0;

	(void)state;
	fixture_init(&f);
	t = realloc(f.ctx.cfg->tenants, CFG_MAX_TENANTS * sizeof(*t));
	assert_non_null(t);
	f.ctx.cfg->tenants = t;
	for (i = f.ctx.cfg->ntenants; i < CFG_MAX_TENANTS; i++) {
		memset(&t[i], 0, sizeof(t[i]));
		memset(name, 'n', NAME_MAX_LEN);
		snprintf(name + NAME_MAX_LEN - 5, 6, "%05zu", i);
		t[i].name = strdup(name);
		t[i].agents = calloc(1, sizeof(*t[i].agents));
		assert_non_null(t[i].agents);
		t[i].agents[0].name = strdup(name);
		t[i].nagents = 1;
		t[i].workers = 1;
		t[i].runtime = 1;
	}
	f.ctx.cfg->ntenants = CFG_MAX_TENANTS;
	req.op = PALYRA__IPC__TENANT_ADMIN_OP__TENANT_ADMIN_LIST;
	req.name = "";
	sup_tenants_admin(&f.ctx, &f.front, 9, &req);
	while (!last) {
		r = next_reply(&f, &m, 9);
		assert_int_equal(r->code, GRPC_STATUS_OK);
		assert_true(r->n_tenants > 0);
		for (i = 0; i < r->n_tenants; i++, seen++)
			assert_string_equal(
			    r->tenants[i]->name, f.ctx.cfg->tenants[seen].name);
		last = !r->more;
		pages++;
		ipc_msg_clear(&m);
	}
	assert_int_equal(seen, CFG_MAX_TENANTS);
	assert_true(pages > 1);
	fixture_free(&f);
}

static void
test_reload(void **state)
{
	struct fixture f;
	char msg[512];

	(void)state;
	fixture_init(&f);
	reload_error = "palyrad.conf:3:7: unknown directive \"tenantt\"";
	assert_int_equal(call(&f, PALYRA__IPC__TENANT_ADMIN_OP__TENANT_ADMIN_RELOAD,
	    "", NULL, NULL, msg, sizeof(msg)), GRPC_STATUS_FAILED_PRECONDITION);
	assert_non_null(strstr(msg, "running configuration is kept"));
	assert_non_null(strstr(msg, "palyrad.conf:3:7: unknown directive"));
	assert_int_equal(reloaded, 0);
	reload_error = NULL;
	assert_int_equal(call(&f, PALYRA__IPC__TENANT_ADMIN_OP__TENANT_ADMIN_RELOAD,
	    "", NULL, NULL, msg, sizeof(msg)), GRPC_STATUS_OK);
	assert_int_equal(reloaded, 1);
	fixture_free(&f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_create_update_delete),
	    cmocka_unit_test(test_refusals),
	    cmocka_unit_test(test_file_checks),
	    cmocka_unit_test(test_large_list_is_paged),
	    cmocka_unit_test(test_reload),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
