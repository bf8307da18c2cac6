/*
 * test_config.c: unit tests of common/config.c, the palyrad.conf parser.
 *
 * Errors are compared with golden "FILE:LINE:COL: message" strings whose
 * positions were counted by hand from the inputs. Parsed values are
 * compared field by field. Run from the top of the source tree (as
 * tests/run-unit.sh does): the DESIGN example and the shipped config are
 * read from tests/unit/data/design.conf and etc/palyrad.conf.
 */
#include <sys/stat.h>

#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "limits.h"

#define BASE	"/base"

static char err[CFG_ERR_LEN];

static struct cfg *
parse_ok(const char *text)
{
	struct cfg *cfg = NULL;
	int rc;

	rc = cfg_parse_buffer("t.conf", text, strlen(text), BASE, &cfg, err,
	    sizeof(err));
	if (rc != 0)
		fail_msg("unexpected error: %s", err);
	assert_non_null(cfg);
	return cfg;
}

static void
parse_fails_len(const char *text, size_t len, const char *expected)
{
	struct cfg *cfg = (struct cfg *)1;
	int rc;

	rc = cfg_parse_buffer("t.conf", text, len, BASE, &cfg, err,
	    sizeof(err));
	assert_int_equal(rc, -1);
	assert_null(cfg);
	assert_string_equal(err, expected);
}

static void
parse_fails(const char *text, const char *expected)
{
	parse_fails_len(text, strlen(text), expected);
}

static char *
slurp(const char *path, size_t *len)
{
	FILE *fp;
	char *buf;
	long n;

	if ((fp = fopen(path, "rb")) == NULL)
		fail_msg("%s: cannot open (run from the source tree)", path);
	assert_int_equal(fseek(fp, 0, SEEK_END), 0);
	n = ftell(fp);
	assert_true(n >= 0);
	rewind(fp);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
	buf[n] = '\0';
	fclose(fp);
	*len = (size_t)n;
	return buf;
}

static void
write_file(const char *dir, const char *name, const char *text)
{
	char path[PATH_MAX];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

/* Deep comparison of everything but positions. */
static int
str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static void
assert_listen_equal(const struct cfg_listen *a, const struct cfg_listen *b)
{
	assert_int_equal(a->set, b->set);
	assert_true(str_eq(a->host, b->host));
	assert_int_equal(a->port, b->port);
	assert_int_equal(a->tls, b->tls);
	assert_true(str_eq(a->tls_certificate, b->tls_certificate));
	assert_true(str_eq(a->tls_key, b->tls_key));
}

static void
assert_fetch_equal(const struct cfg_fetch *a, const struct cfg_fetch *b)
{
	size_t i;

	assert_int_equal(a->set, b->set);
	assert_int_equal(a->nallow, b->nallow);
	for (i = 0; i < a->nallow; i++) {
		assert_string_equal(a->allow[i].host, b->allow[i].host);
		assert_int_equal(a->allow[i].port, b->allow[i].port);
		assert_int_equal(a->allow[i].allow_private,
		    b->allow[i].allow_private);
	}
	assert_int_equal(a->max_bytes, b->max_bytes);
	assert_int_equal(a->timeout_ms, b->timeout_ms);
	assert_int_equal(a->ncontent_types, b->ncontent_types);
	for (i = 0; i < a->ncontent_types; i++)
		assert_string_equal(a->content_types[i], b->content_types[i]);
	assert_int_equal(a->max_redirects, b->max_redirects);
	assert_int_equal(a->has_max_redirects, b->has_max_redirects);
}

static void
assert_cfg_equal(const struct cfg *a, const struct cfg *b)
{
	const struct cfg_provider *pa, *pb;
	const struct cfg_tenant *ta, *tb;
	const struct cfg_agent *aa, *ab;
	size_t i, j, k;

	assert_true(str_eq(a->user, b->user));
	assert_string_equal(a->state_dir, b->state_dir);
	assert_int_equal(a->worker_uid_min, b->worker_uid_min);
	assert_int_equal(a->worker_uid_max, b->worker_uid_max);
	assert_listen_equal(&a->grpc, &b->grpc);
	assert_listen_equal(&a->http, &b->http);
	assert_int_equal(a->durability, b->durability);
	assert_int_equal(a->checkpoint_interval_ms, b->checkpoint_interval_ms);
	assert_int_equal(a->nproviders, b->nproviders);
	for (i = 0; i < a->nproviders; i++) {
		pa = &a->providers[i];
		pb = &b->providers[i];
		assert_string_equal(pa->name, pb->name);
		assert_int_equal(pa->type, pb->type);
		assert_true(str_eq(pa->base_url, pb->base_url));
		assert_true(str_eq(pa->api_key, pb->api_key));
		assert_true(str_eq(pa->model, pb->model));
		assert_int_equal(pa->timeout_connect_ms,
		    pb->timeout_connect_ms);
		assert_int_equal(pa->timeout_first_byte_ms,
		    pb->timeout_first_byte_ms);
		assert_int_equal(pa->timeout_idle_ms, pb->timeout_idle_ms);
		assert_int_equal(pa->timeout_total_ms, pb->timeout_total_ms);
		assert_int_equal(pa->max_concurrent, pb->max_concurrent);
		assert_int_equal(pa->token_delay_ms, pb->token_delay_ms);
	}
	assert_int_equal(a->npricing, b->npricing);
	for (i = 0; i < a->npricing; i++) {
		assert_string_equal(a->pricing[i].model, b->pricing[i].model);
		assert_true(a->pricing[i].input_per_million ==
		    b->pricing[i].input_per_million);
		assert_true(a->pricing[i].output_per_million ==
		    b->pricing[i].output_per_million);
	}
	assert_int_equal(a->ntenants, b->ntenants);
	for (i = 0; i < a->ntenants; i++) {
		ta = &a->tenants[i];
		tb = &b->tenants[i];
		assert_string_equal(ta->name, tb->name);
		assert_int_equal(ta->workers, tb->workers);
		assert_int_equal(ta->idle_timeout_ms, tb->idle_timeout_ms);
		assert_int_equal(ta->memory_limit, tb->memory_limit);
		assert_int_equal(ta->pids_limit, tb->pids_limit);
		assert_int_equal(ta->cpu_weight, tb->cpu_weight);
		assert_int_equal(ta->journal_quota, tb->journal_quota);
		assert_int_equal(ta->nagents, tb->nagents);
		for (j = 0; j < ta->nagents; j++) {
			aa = &ta->agents[j];
			ab = &tb->agents[j];
			assert_string_equal(aa->name, ab->name);
			assert_int_equal(aa->nproviders, ab->nproviders);
			for (k = 0; k < aa->nproviders; k++)
				assert_string_equal(aa->providers[k],
				    ab->providers[k]);
			assert_true(str_eq(aa->system_prompt,
			    ab->system_prompt));
			assert_int_equal(aa->max_output_tokens,
			    ab->max_output_tokens);
			assert_true(aa->temperature == ab->temperature);
			assert_int_equal(aa->max_turns, ab->max_turns);
			assert_int_equal(aa->max_tool_calls,
			    ab->max_tool_calls);
			assert_int_equal(aa->max_wall_clock_ms,
			    ab->max_wall_clock_ms);
			assert_int_equal(aa->approval_timeout_ms,
			    ab->approval_timeout_ms);
			assert_int_equal(aa->client_tool_timeout_ms,
			    ab->client_tool_timeout_ms);
			assert_fetch_equal(&aa->fetch, &ab->fetch);
			assert_int_equal(aa->ntools, ab->ntools);
			for (k = 0; k < aa->ntools; k++) {
				assert_string_equal(aa->tools[k].pattern,
				    ab->tools[k].pattern);
				assert_int_equal(aa->tools[k].policy,
				    ab->tools[k].policy);
			}
		}
		assert_int_equal(ta->nbudgets, tb->nbudgets);
		for (j = 0; j < ta->nbudgets; j++) {
			assert_int_equal(ta->budgets[j].unit,
			    tb->budgets[j].unit);
			assert_true(ta->budgets[j].amount ==
			    tb->budgets[j].amount);
			assert_int_equal(ta->budgets[j].period,
			    tb->budgets[j].period);
			assert_int_equal(ta->budgets[j].hard,
			    tb->budgets[j].hard);
			assert_int_equal(ta->budgets[j].scope,
			    tb->budgets[j].scope);
			assert_true(str_eq(ta->budgets[j].subject,
			    tb->budgets[j].subject));
		}
		assert_true(str_eq(ta->timezone, tb->timezone));
		assert_fetch_equal(&ta->fetch, &tb->fetch);
	}
}

static char *
dump_to_string(const struct cfg *cfg)
{
	char *text = NULL;
	size_t len = 0;
	FILE *fp;

	fp = open_memstream(&text, &len);
	assert_non_null(fp);
	cfg_dump(cfg, fp);
	assert_int_equal(fclose(fp), 0);
	return text;
}

/* Dump, parse the dump, compare, and check the dump is a fixed point. */
static void
assert_round_trip(const struct cfg *cfg)
{
	struct cfg *again;
	char *text, *text2;

	text = dump_to_string(cfg);
	again = parse_ok(text);
	assert_cfg_equal(cfg, again);
	text2 = dump_to_string(again);
	assert_string_equal(text, text2);
	free(text);
	free(text2);
	cfg_free(again);
}

static void
test_design_example(void **state)
{
	const struct cfg_provider *pr;
	const struct cfg_tenant *tn;
	const struct cfg_agent *a;
	struct cfg *cfg;
	size_t len;
	char *text;

	text = slurp("tests/unit/data/design.conf", &len);
	if (cfg_parse_buffer("design.conf", text, len, BASE, &cfg, err,
	    sizeof(err)) != 0)
		fail_msg("%s", err);
	free(text);
	assert_string_equal(cfg->user, "_palyra");
	assert_string_equal(cfg->state_dir, "/var/lib/palyra");
	assert_int_equal(cfg->worker_uid_min, 200000);
	assert_int_equal(cfg->worker_uid_max, 299999);
	assert_string_equal(cfg->grpc.host, "127.0.0.1");
	assert_int_equal(cfg->grpc.port, 7443);
	assert_int_equal(cfg->grpc.tls, 0);
	assert_int_equal(cfg->grpc.pos.line, 5);
	assert_int_equal(cfg->grpc.pos.col, 1);
	assert_string_equal(cfg->grpc.pos.file, "design.conf");
	assert_string_equal(cfg->http.host, "127.0.0.1");
	assert_int_equal(cfg->http.port, 7142);
	assert_int_equal(cfg->durability, CFG_DURABILITY_FULL);
	assert_int_equal(cfg->checkpoint_interval_ms, 600000);

	assert_int_equal(cfg->nproviders, 2);
	pr = cfg_provider_find(cfg, "offline");
	assert_ptr_equal(pr, &cfg->providers[0]);
	assert_int_equal(pr->type, CFG_PROVIDER_OFFLINE);
	pr = cfg_provider_find(cfg, "openai");
	assert_non_null(pr);
	assert_int_equal(pr->type, CFG_PROVIDER_OPENAI);
	assert_string_equal(pr->base_url, "https://api.openai.com/v1");
	assert_string_equal(pr->api_key, "env:OPENAI_API_KEY");
	assert_string_equal(pr->model, "gpt-4.1-mini");
	assert_int_equal(pr->timeout_connect_ms, 5000);
	assert_int_equal(pr->timeout_first_byte_ms, 30000);
	assert_int_equal(pr->timeout_idle_ms, 30000);
	assert_int_equal(pr->timeout_total_ms, 600000);
	assert_int_equal(pr->max_concurrent, 16);
	assert_int_equal(pr->pos.line, 16);
	assert_null(cfg_provider_find(cfg, "anthropic"));

	assert_int_equal(cfg->npricing, 1);
	assert_string_equal(cfg->pricing[0].model, "gpt-4.1-mini");
	assert_true(cfg->pricing[0].input_per_million == 0.40);
	assert_true(cfg->pricing[0].output_per_million == 1.60);

	assert_int_equal(cfg->ntenants, 1);
	tn = cfg_tenant_find(cfg, "default");
	assert_ptr_equal(tn, &cfg->tenants[0]);
	assert_null(cfg_tenant_find(cfg, "other"));
	assert_int_equal(tn->workers, 1);
	assert_int_equal(tn->memory_limit, 256ULL * 1024 * 1024);
	assert_int_equal(tn->nagents, 1);
	a = &tn->agents[0];
	assert_string_equal(a->name, "assistant");
	assert_int_equal(a->nproviders, 1);
	assert_string_equal(a->providers[0], "offline");
	assert_string_equal(a->system_prompt, "You are a helpful assistant.");
	assert_int_equal(a->max_output_tokens, 1024);
	assert_true(a->temperature == 1.0);
	assert_int_equal(a->ntools, 1);
	assert_string_equal(a->tools[0].pattern, "http.fetch");
	assert_int_equal(a->tools[0].policy, CFG_TOOL_ASK);
	assert_int_equal(tn->nbudgets, 1);
	assert_int_equal(tn->budgets[0].unit, CFG_BUDGET_TOKENS);
	assert_true(tn->budgets[0].amount == 1000000);
	assert_int_equal(tn->budgets[0].period, CFG_PERIOD_DAY);
	assert_int_equal(tn->budgets[0].hard, 1);
	assert_int_equal(cfg->nfiles, 1);
	assert_string_equal(cfg->files[0], "design.conf");

	assert_round_trip(cfg);
	cfg_free(cfg);
}

/* The commented-out line of the example, with tls, on one line. */
static void
test_design_tls_line(void **state)
{
	struct cfg *cfg;

	cfg = parse_ok("listen grpc 0.0.0.0:7443 tls { certificate "
	    "\"/etc/palyra/cert.pem\" key \"/etc/palyra/key.pem\" }\n");
	assert_string_equal(cfg->grpc.host, "0.0.0.0");
	assert_int_equal(cfg->grpc.port, 7443);
	assert_int_equal(cfg->grpc.tls, 1);
	assert_string_equal(cfg->grpc.tls_certificate, "/etc/palyra/cert.pem");
	assert_string_equal(cfg->grpc.tls_key, "/etc/palyra/key.pem");
	assert_round_trip(cfg);
	cfg_free(cfg);

	/* The same with ";" and on several lines; relative paths resolved. */
	cfg = parse_ok("listen http [::]:8080 tls {\n"
	    "\tcertificate \"tls/cert.pem\"; key tls/key.pem\n}\n");
	assert_string_equal(cfg->http.host, "::");
	assert_int_equal(cfg->http.port, 8080);
	assert_string_equal(cfg->http.tls_certificate, BASE "/tls/cert.pem");
	assert_string_equal(cfg->http.tls_key, BASE "/tls/key.pem");
	assert_round_trip(cfg);
	cfg_free(cfg);
}

static void
test_shipped_config(void **state)
{
	const struct cfg_tenant *tn;
	struct cfg *cfg;

	if (cfg_load("etc/palyrad.conf", "/srv/palyra", &cfg, err,
	    sizeof(err)) == 0) {
		/* The path is relative to base_dir: this must not exist. */
		cfg_free(cfg);
		fail_msg("etc/palyrad.conf read outside base_dir");
	}
	assert_string_equal(err, "etc/palyrad.conf: No such file or "
	    "directory");
	if (cfg_load("etc/palyrad.conf", NULL, &cfg, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_non_null(cfg->state_dir);
	assert_true(cfg->state_dir[0] == '/');
	assert_true(strlen(cfg->state_dir) > 4);
	assert_string_equal(cfg->state_dir + strlen(cfg->state_dir) - 4,
	    "/var");
	assert_string_equal(cfg->grpc.host, "127.0.0.1");
	assert_int_equal(cfg->grpc.port, 7443);
	assert_int_equal(cfg->http.port, 7142);
	assert_int_equal(cfg->durability, CFG_DURABILITY_FULL);
	assert_int_equal(cfg->nproviders, 1);
	assert_int_equal(cfg->providers[0].type, CFG_PROVIDER_OFFLINE);
	tn = cfg_tenant_find(cfg, "default");
	assert_non_null(tn);
	assert_int_equal(tn->workers, 1);
	assert_int_equal(tn->idle_timeout_ms, 5 * 60 * 1000);
	assert_int_equal(tn->nagents, 1);
	assert_string_equal(tn->agents[0].name, "assistant");
	assert_string_equal(tn->agents[0].providers[0], "offline");
	assert_string_equal(tn->agents[0].system_prompt,
	    "You are a helpful assistant.");
	assert_int_equal(tn->agents[0].max_output_tokens, 1024);
	assert_string_equal(cfg->files[0], "etc/palyrad.conf");
	assert_round_trip(cfg);
	cfg_free(cfg);
}

static void
test_defaults(void **state)
{
	const struct cfg_agent *a;
	struct cfg *cfg;

	cfg = parse_ok("# nothing but a comment\n\n;;\n");
	assert_null(cfg->user);
	assert_string_equal(cfg->state_dir, "/var/lib/palyra");
	assert_int_equal(cfg->worker_uid_min, 200000);
	assert_int_equal(cfg->worker_uid_max, 299999);
	assert_int_equal(cfg->grpc.set, 1);
	assert_string_equal(cfg->grpc.host, "127.0.0.1");
	assert_int_equal(cfg->grpc.port, 7443);
	assert_int_equal(cfg->grpc.tls, 0);
	assert_string_equal(cfg->http.host, "127.0.0.1");
	assert_int_equal(cfg->http.port, 7142);
	assert_int_equal(cfg->durability, CFG_DURABILITY_FULL);
	assert_int_equal(cfg->checkpoint_interval_ms, 10 * 60 * 1000);
	assert_int_equal(cfg->nproviders, 1);
	assert_string_equal(cfg->providers[0].name, "offline");
	assert_int_equal(cfg->providers[0].type, CFG_PROVIDER_OFFLINE);
	assert_int_equal(cfg->providers[0].timeout_connect_ms, 5000);
	assert_int_equal(cfg->providers[0].timeout_first_byte_ms, 30000);
	assert_int_equal(cfg->providers[0].timeout_idle_ms, 30000);
	assert_int_equal(cfg->providers[0].timeout_total_ms, 600000);
	assert_int_equal(cfg->providers[0].max_concurrent, 16);
	assert_int_equal(cfg->npricing, 0);
	assert_int_equal(cfg->ntenants, 0);
	assert_round_trip(cfg);
	cfg_free(cfg);

	/* A tenant without agents gets "assistant" on "offline". */
	cfg = parse_ok("tenant \"t\" { }\n");
	assert_int_equal(cfg->tenants[0].workers, 1);
	assert_int_equal(cfg->tenants[0].memory_limit, 0);
	assert_int_equal(cfg->tenants[0].nagents, 1);
	a = &cfg->tenants[0].agents[0];
	assert_string_equal(a->name, "assistant");
	assert_int_equal(a->nproviders, 1);
	assert_string_equal(a->providers[0], "offline");
	assert_string_equal(a->system_prompt, "You are a helpful assistant.");
	assert_int_equal(a->max_output_tokens, 1024);
	assert_true(a->temperature == 1.0);
	assert_int_equal(a->ntools, 0);
	assert_round_trip(cfg);
	cfg_free(cfg);

	/* An agent without "providers" uses "offline", with no prompt. */
	cfg = parse_ok("tenant \"t\" { agent \"a\" { temperature 0.25 } }\n");
	a = &cfg->tenants[0].agents[0];
	assert_string_equal(a->name, "a");
	assert_int_equal(a->nproviders, 1);
	assert_string_equal(a->providers[0], "offline");
	assert_null(a->system_prompt);
	assert_true(a->temperature == 0.25);
	/* The run limits' defaults. */
	assert_int_equal(a->max_turns, 8);
	assert_int_equal(a->max_tool_calls, 32);
	assert_int_equal(a->max_wall_clock_ms, 600000);
	assert_round_trip(cfg);
	cfg_free(cfg);

	/* The run limits, at their bounds. */
	cfg = parse_ok("tenant \"t\" {\n"
	    "\tagent \"a\" { max-turns 1; max-tool-calls 0; "
	    "max-wall-clock 1s }\n"
	    "\tagent \"b\" { max-turns 64; max-tool-calls 1024; "
	    "max-wall-clock 24h }\n"
	    "\tagent \"c\" { max-wall-clock 1500ms }\n}\n");
	a = &cfg->tenants[0].agents[0];
	assert_int_equal(a->max_turns, 1);
	assert_int_equal(a->max_tool_calls, 0);
	assert_int_equal(a->max_wall_clock_ms, 1000);
	a = &cfg->tenants[0].agents[1];
	assert_int_equal(a->max_turns, 64);
	assert_int_equal(a->max_tool_calls, 1024);
	assert_int_equal(a->max_wall_clock_ms, 86400000);
	assert_int_equal(cfg->tenants[0].agents[2].max_wall_clock_ms, 1500);
	assert_int_equal(cfg->tenants[0].agents[2].max_turns, 8);
	assert_round_trip(cfg);
	cfg_free(cfg);
}

static void
test_one_line_blocks(void **state)
{
	struct cfg *cfg;

	cfg = parse_ok(
	    "pricing \"m\" { input 0.40; output 1.60 }\n"
	    "provider \"x\" { type anthropic; api-key env:K; model \"claude\" "
	    "timeout total 2m idle 15s max-concurrent 4 }\n"
	    "journal { durability normal; checkpoint-interval 2h }\n"
	    "tenant \"a\" { workers 2 memory-limit 1G; journal-quota 5M; "
	    "agent \"b\" { providers"
	    " \"x\" \"offline\"; tool \"fs.*\" deny tool \"x\" allow } }"
	    "   # trailing comment\n"
	    "tenant \"c\" { budget cost 12.5 per month soft; "
	    "budget tokens 5 per total }\n");
	assert_true(cfg->pricing[0].input_per_million == 0.40);
	assert_true(cfg->pricing[0].output_per_million == 1.60);
	assert_int_equal(cfg->providers[0].type, CFG_PROVIDER_ANTHROPIC);
	assert_string_equal(cfg->providers[0].model, "claude");
	assert_int_equal(cfg->providers[0].timeout_total_ms, 120000);
	assert_int_equal(cfg->providers[0].timeout_idle_ms, 15000);
	assert_int_equal(cfg->providers[0].timeout_connect_ms, 5000);
	assert_int_equal(cfg->providers[0].max_concurrent, 4);
	assert_int_equal(cfg->durability, CFG_DURABILITY_NORMAL);
	assert_int_equal(cfg->checkpoint_interval_ms, 2 * 3600 * 1000);
	assert_int_equal(cfg->tenants[0].workers, 2);
	assert_int_equal(cfg->tenants[0].memory_limit, 1ULL << 30);
	assert_int_equal(cfg->tenants[0].journal_quota, 5ULL << 20);
	assert_int_equal(cfg->tenants[1].journal_quota, 0);
	assert_int_equal(cfg->tenants[0].agents[0].nproviders, 2);
	assert_string_equal(cfg->tenants[0].agents[0].providers[1], "offline");
	assert_int_equal(cfg->tenants[0].agents[0].ntools, 2);
	assert_int_equal(cfg->tenants[0].agents[0].tools[0].policy,
	    CFG_TOOL_DENY);
	assert_int_equal(cfg->tenants[0].agents[0].tools[1].policy,
	    CFG_TOOL_ALLOW);
	assert_int_equal(cfg->tenants[1].nbudgets, 2);
	assert_int_equal(cfg->tenants[1].budgets[0].unit, CFG_BUDGET_COST);
	assert_true(cfg->tenants[1].budgets[0].amount == 12.5);
	assert_int_equal(cfg->tenants[1].budgets[0].period, CFG_PERIOD_MONTH);
	assert_int_equal(cfg->tenants[1].budgets[0].hard, 0);
	assert_int_equal(cfg->tenants[1].budgets[1].period, CFG_PERIOD_TOTAL);
	assert_int_equal(cfg->tenants[1].budgets[1].hard, 1);
	/* The implicit offline provider comes after the declared ones. */
	assert_int_equal(cfg->nproviders, 2);
	assert_string_equal(cfg->providers[1].name, "offline");
	assert_round_trip(cfg);
	cfg_free(cfg);

	/* A brace on its own line, as in C. */
	cfg = parse_ok("tenant \"a\"\n{\n\tworkers 3\n}\n");
	assert_int_equal(cfg->tenants[0].workers, 3);
	cfg_free(cfg);
}

static void
test_crlf(void **state)
{
	struct cfg *lf, *crlf;
	char *text, *converted;
	size_t len, i, n = 0;

	text = slurp("tests/unit/data/design.conf", &len);
	converted = malloc(2 * len + 1);
	assert_non_null(converted);
	for (i = 0; i < len; i++) {
		if (text[i] == '\n')
			converted[n++] = '\r';
		converted[n++] = text[i];
	}
	converted[n] = '\0';
	lf = parse_ok(text);
	crlf = parse_ok(converted);
	assert_cfg_equal(lf, crlf);
	assert_int_equal(crlf->providers[1].pos.line, 16);
	cfg_free(lf);
	cfg_free(crlf);
	free(text);
	free(converted);

	/* Positions after CR LF lines count lines, not bytes. */
	parse_fails("user \"a\"\r\n\r\n  bogus\r\n",
	    "t.conf:3:3: unknown directive \"bogus\"");
	parse_fails("user \"a\"\rstate-dir \"b\"\n",
	    "t.conf:1:9: carriage return without line feed");
	parse_fails("# comment\r\r\n",
	    "t.conf:1:10: carriage return without line feed");
}

static void
test_strings(void **state)
{
	struct cfg *cfg;

	cfg = parse_ok("tenant \"t\" { agent \"a\" {\n"
	    "\tsystem-prompt \"say \\\"hi\\\"\\n\\tand \\\\ bye \xc3\xa9\"\n"
	    "} }\n");
	assert_string_equal(cfg->tenants[0].agents[0].system_prompt,
	    "say \"hi\"\n\tand \\ bye \xc3\xa9");
	assert_round_trip(cfg);
	cfg_free(cfg);

	parse_fails("state-dir \"a\\qb\"\n",
	    "t.conf:1:13: invalid escape \"\\q\"");
	parse_fails("state-dir \"abc\n", "t.conf:1:11: unterminated string");
	parse_fails("state-dir \"abc", "t.conf:1:11: unterminated string");
	parse_fails("state-dir \"abc\\", "t.conf:1:11: unterminated string");
	parse_fails("state-dir \"a\x01\"\n",
	    "t.conf:1:13: invalid control character 0x01");
	parse_fails("# ok\n# bad \x1b\n",
	    "t.conf:2:7: invalid control character 0x1b");
	parse_fails("state-dir \"\xc3\x28\"\n",
	    "t.conf:1:11: invalid UTF-8 in string");
	parse_fails("state-dir \"\xed\xa0\x80\"\n",
	    "t.conf:1:11: invalid UTF-8 in string");
	parse_fails("state-dir caf\xc3\xa9\n",
	    "t.conf:1:14: non-ASCII character outside a quoted string");
	parse_fails_len("user \"a\"\n\0\n", 11, "t.conf:2:1: NUL byte");
	parse_fails_len("user \"a\0\"\n", 10, "t.conf:1:8: NUL byte");
	parse_fails_len("# x\0\n", 5, "t.conf:1:4: NUL byte");
	parse_fails("\"x\"\n",
	    "t.conf:1:1: expected a directive, found a quoted string");
}

#define PROMPT	"tenant t { agent a { system-prompt "

static void
test_token_limits(void **state)
{
	char *text;
	size_t n = CFG_MAX_TOKEN_LEN;
	struct cfg *cfg;

	/* A word of exactly the limit is fine; one more byte is not. */
	text = malloc(n + 64);
	assert_non_null(text);
	memcpy(text, PROMPT, 35);
	memset(text + 35, 'a', n);
	strcpy(text + 35 + n, " } }\n");
	cfg = parse_ok(text);
	assert_int_equal(strlen(cfg->tenants[0].agents[0].system_prompt), n);
	cfg_free(cfg);
	memset(text + 35, 'a', n + 1);
	strcpy(text + 35 + n + 1, " } }\n");
	parse_fails(text, "t.conf:1:36: word too long (limit 4096 bytes)");
	/* The same for a quoted string (decoded length). */
	text[35] = '"';
	memset(text + 36, 'b', n);
	strcpy(text + 36 + n, "\" } }\n");
	cfg = parse_ok(text);
	cfg_free(cfg);
	memset(text + 36, 'b', n + 1);
	strcpy(text + 36 + n + 1, "\" } }\n");
	parse_fails(text, "t.conf:1:36: string too long (limit 4096 bytes)");
	free(text);

	/* The file size limit. */
	text = malloc(CFG_MAX_FILE_SIZE + 1);
	assert_non_null(text);
	memset(text, '\n', CFG_MAX_FILE_SIZE + 1);
	parse_fails_len(text, CFG_MAX_FILE_SIZE + 1,
	    "t.conf: file too large (limit 1048576 bytes)");
	cfg = NULL;
	assert_int_equal(cfg_parse_buffer("t.conf", text, CFG_MAX_FILE_SIZE,
	    BASE, &cfg, err, sizeof(err)), 0);
	cfg_free(cfg);
	free(text);
}

struct golden {
	const char	*text;
	const char	*error;
};

static const struct golden errors[] = {
	/* unknown directive, wrong block */
	{ "bogus 1\n", "t.conf:1:1: unknown directive \"bogus\"" },
	{ "workers 1\n",
	    "t.conf:1:1: \"workers\" is not allowed at top level" },
	{ "provider \"p\" {\n\ttype offline\n\tworkers 2\n}\n",
	    "t.conf:3:2: \"workers\" is not allowed in a provider block" },
	{ "tenant \"t\" { agent \"a\" { agent \"b\" { } } }\n",
	    "t.conf:1:26: \"agent\" is not allowed in an agent block" },
	{ "journal { connect 1s }\n",
	    "t.conf:1:11: unknown directive \"connect\"" },
	/* missing and extra arguments */
	{ "tenant \"a\" {\n\tworkers\n}\n",
	    "t.conf:2:2: missing argument to \"workers\"" },
	{ "tenant \"a\" { workers }\n",
	    "t.conf:1:14: missing argument to \"workers\"" },
	{ "tenant \"a\" { workers 1 2 }\n",
	    "t.conf:1:24: extra argument \"2\" to \"workers\"" },
	{ "tenant \"a\" { workers 1 workers 2 }\n",
	    "t.conf:1:24: duplicate \"workers\"" },
	{ "user \"a\" state-dir \"b\"\n",
	    "t.conf:1:10: extra argument \"state-dir\" to \"user\"" },
	{ "tenant\n", "t.conf:1:1: missing argument to \"tenant\"" },
	{ "tenant \"t\"\n", "t.conf:2:1: expected \"{\" after \"tenant\", "
	    "found end of file" },
	{ "tenant \"t\" workers\n", "t.conf:1:12: expected \"{\" after "
	    "\"tenant\", found \"workers\"" },
	{ "provider \"p\" { type openai; timeout }\n",
	    "t.conf:1:29: missing argument to \"timeout\"" },
	{ "provider \"p\" { type openai; timeout connect }\n",
	    "t.conf:1:37: missing argument to \"connect\"" },
	{ "provider \"p\" { type openai; timeout connect 1s connect 2s }\n",
	    "t.conf:1:48: duplicate \"timeout connect\"" },
	{ "provider \"p\" { type openai; timeout soon 1s }\n",
	    "t.conf:1:37: invalid value \"soon\" for \"timeout\" (expected "
	    "connect, first-byte, idle or total)" },
	{ "tenant \"t\" { agent \"a\" { providers } }\n",
	    "t.conf:1:26: missing argument to \"providers\"" },
	/* token-delay: offline providers only, whatever the order */
	{ "provider \"p\" { type openai; token-delay 1s }\n",
	    "t.conf:1:29: \"token-delay\" is only valid for providers of "
	    "type offline (provider \"p\" is openai)" },
	{ "provider \"p\" {\n\ttoken-delay 20ms\n\ttype anthropic\n}\n",
	    "t.conf:2:2: \"token-delay\" is only valid for providers of "
	    "type offline (provider \"p\" is anthropic)" },
	{ "provider \"p\" { type offline; token-delay 11s }\n",
	    "t.conf:1:42: value \"11s\" out of range for \"token-delay\" "
	    "(0ms..10s)" },
	{ "provider \"p\" { type offline; token-delay 10001ms }\n",
	    "t.conf:1:42: value \"10001ms\" out of range for \"token-delay\" "
	    "(0ms..10s)" },
	{ "provider \"p\" { type offline; token-delay soon }\n",
	    "t.conf:1:42: invalid duration \"soon\" for \"token-delay\"" },
	{ "provider \"p\" { type offline; token-delay 1s token-delay 2s }\n",
	    "t.conf:1:45: duplicate \"token-delay\"" },
	/* numbers */
	{ "tenant \"a\" { workers x }\n",
	    "t.conf:1:22: invalid number \"x\" for \"workers\"" },
	{ "tenant \"a\" { workers -1 }\n",
	    "t.conf:1:22: invalid number \"-1\" for \"workers\"" },
	{ "tenant \"a\" { workers 65 }\n",
	    "t.conf:1:22: value \"65\" out of range for \"workers\" (1..64)" },
	{ "tenant \"a\" { workers 0 }\n",
	    "t.conf:1:22: value \"0\" out of range for \"workers\" (1..64)" },
	{ "tenant \"a\" { idle-timeout 8d }\n",
	    "t.conf:1:27: value \"8d\" out of range for \"idle-timeout\" "
	    "(0ms..7d)" },
	{ "tenant \"a\" {\n\tidle-timeout 604800001ms\n}\n",
	    "t.conf:2:15: value \"604800001ms\" out of range for "
	    "\"idle-timeout\" (0ms..7d)" },
	{ "tenant \"a\" { idle-timeout 5 }\n",
	    "t.conf:1:27: invalid duration \"5\" for \"idle-timeout\"" },
	{ "tenant \"a\" { idle-timeout -1s }\n",
	    "t.conf:1:27: invalid duration \"-1s\" for \"idle-timeout\"" },
	{ "tenant \"a\" { idle-timeout 1s idle-timeout 2s }\n",
	    "t.conf:1:30: duplicate \"idle-timeout\"" },
	{ "idle-timeout 1s\n",
	    "t.conf:1:1: \"idle-timeout\" is not allowed at top level" },
	{ "tenant \"a\" { workers 99999999999999999999 }\n",
	    "t.conf:1:22: value \"99999999999999999999\" out of range for "
	    "\"workers\" (1..64)" },
	{ "tenant \"t\" { memory-limit 99999999999999999999G }\n",
	    "t.conf:1:27: value \"99999999999999999999G\" out of range for "
	    "\"memory-limit\" (1M..1024T)" },
	{ "tenant \"t\" { memory-limit 17179869184G }\n",
	    "t.conf:1:27: value \"17179869184G\" out of range for "
	    "\"memory-limit\" (1M..1024T)" },
	{ "tenant \"t\" { memory-limit 1048575 }\n",
	    "t.conf:1:27: value \"1048575\" out of range for "
	    "\"memory-limit\" (1M..1024T)" },
	{ "tenant \"t\" { memory-limit 12X }\n",
	    "t.conf:1:27: invalid size \"12X\" for \"memory-limit\"" },
	{ "tenant \"t\" { journal-quota 262143 }\n",
	    "t.conf:1:28: value \"262143\" out of range for "
	    "\"journal-quota\" (256K..1024T)" },
	{ "tenant \"t\" { journal-quota 1M journal-quota 2M }\n",
	    "t.conf:1:31: duplicate \"journal-quota\"" },
	{ "tenant \"t\" { memory-limit 1m }\n",
	    "t.conf:1:27: invalid size \"1m\" for \"memory-limit\"" },
	{ "tenant \"t\" { memory-limit M }\n",
	    "t.conf:1:27: invalid size \"M\" for \"memory-limit\"" },
	/* pids-limit and cpu-weight: the cgroup settings of a tenant */
	{ "tenant \"t\" { pids-limit 0 }\n",
	    "t.conf:1:25: value \"0\" out of range for \"pids-limit\" "
	    "(1..1000000)" },
	{ "tenant \"t\" { pids-limit 1000001 }\n",
	    "t.conf:1:25: value \"1000001\" out of range for \"pids-limit\" "
	    "(1..1000000)" },
	{ "tenant \"t\" {\n\tpids-limit 99999999999999999999\n}\n",
	    "t.conf:2:13: value \"99999999999999999999\" out of range for "
	    "\"pids-limit\" (1..1000000)" },
	{ "tenant \"t\" { pids-limit 1k }\n",
	    "t.conf:1:25: invalid number \"1k\" for \"pids-limit\"" },
	{ "tenant \"t\" { pids-limit }\n",
	    "t.conf:1:14: missing argument to \"pids-limit\"" },
	{ "tenant \"t\" { pids-limit 8 pids-limit 9 }\n",
	    "t.conf:1:27: duplicate \"pids-limit\"" },
	{ "pids-limit 8\n",
	    "t.conf:1:1: \"pids-limit\" is not allowed at top level" },
	{ "tenant \"t\" { cpu-weight 0 }\n",
	    "t.conf:1:25: value \"0\" out of range for \"cpu-weight\" "
	    "(1..10000)" },
	{ "tenant \"t\" { cpu-weight 10001 }\n",
	    "t.conf:1:25: value \"10001\" out of range for \"cpu-weight\" "
	    "(1..10000)" },
	{ "tenant \"t\" { cpu-weight -5 }\n",
	    "t.conf:1:25: invalid number \"-5\" for \"cpu-weight\"" },
	{ "tenant \"t\" { cpu-weight 50 50 }\n",
	    "t.conf:1:28: extra argument \"50\" to \"cpu-weight\"" },
	{ "tenant \"t\" { agent \"a\" { cpu-weight 50 } }\n",
	    "t.conf:1:26: \"cpu-weight\" is not allowed in an agent block" },
	{ "journal { checkpoint-interval 10 }\n",
	    "t.conf:1:31: invalid duration \"10\" for "
	    "\"checkpoint-interval\"" },
	{ "journal { checkpoint-interval 1.5s }\n",
	    "t.conf:1:31: invalid duration \"1.5s\" for "
	    "\"checkpoint-interval\"" },
	{ "journal { checkpoint-interval 2d }\n",
	    "t.conf:1:31: value \"2d\" out of range for "
	    "\"checkpoint-interval\" (1s..1d)" },
	{ "journal { checkpoint-interval 999ms }\n",
	    "t.conf:1:31: value \"999ms\" out of range for "
	    "\"checkpoint-interval\" (1s..1d)" },
	{ "journal { checkpoint-interval 99999999999999999999d }\n",
	    "t.conf:1:31: value \"99999999999999999999d\" out of range for "
	    "\"checkpoint-interval\" (1s..1d)" },
	{ "journal { checkpoint-interval 213503982334601d }\n",
	    "t.conf:1:31: value \"213503982334601d\" out of range for "
	    "\"checkpoint-interval\" (1s..1d)" },
	{ "tenant \"t\" { agent \"a\" { temperature 2.5 } }\n",
	    "t.conf:1:38: value \"2.5\" out of range for \"temperature\" "
	    "(0..2)" },
	{ "tenant \"t\" { agent \"a\" { temperature 1e999 } }\n",
	    "t.conf:1:38: value \"1e999\" out of range for \"temperature\" "
	    "(0..2)" },
	{ "tenant \"t\" { agent \"a\" { temperature nan } }\n",
	    "t.conf:1:38: invalid decimal number \"nan\" for "
	    "\"temperature\"" },
	{ "tenant \"t\" { agent \"a\" { temperature .5 } }\n",
	    "t.conf:1:38: invalid decimal number \".5\" for "
	    "\"temperature\"" },
	{ "pricing \"m\" { input 1; output -1 }\n",
	    "t.conf:1:31: invalid decimal number \"-1\" for \"output\"" },
	{ "pricing \"m\" { input 1 }\n",
	    "t.conf:1:1: pricing \"m\" needs both \"input\" and \"output\"" },
	{ "pricing \"m\" { input 1; output 1 }\npricing \"m\" { }\n",
	    "t.conf:2:9: duplicate pricing \"m\"" },
	{ "worker-uid-range 0-5\n", "t.conf:1:18: value \"0-5\" out of range "
	    "for \"worker-uid-range\" (1..4294967294)" },
	{ "worker-uid-range 9-5\n", "t.conf:1:18: value \"9-5\" out of range "
	    "for \"worker-uid-range\" (1..4294967294)" },
	{ "worker-uid-range 1-4294967295\n", "t.conf:1:18: value "
	    "\"1-4294967295\" out of range for \"worker-uid-range\" "
	    "(1..4294967294)" },
	{ "worker-uid-range 100\n", "t.conf:1:18: invalid range \"100\" for "
	    "\"worker-uid-range\" (expected MIN-MAX)" },
	{ "worker-uid-range 1-x\n", "t.conf:1:18: invalid range \"1-x\" for "
	    "\"worker-uid-range\" (expected MIN-MAX)" },
	{ "tenant \"t\" { agent \"a\" { max-output-tokens 0 } }\n",
	    "t.conf:1:44: value \"0\" out of range for \"max-output-tokens\" "
	    "(1..1048576)" },
	/* an agent's run limits */
	{ "tenant \"t\" { agent \"a\" { max-turns 0 } }\n",
	    "t.conf:1:36: value \"0\" out of range for \"max-turns\" (1..64)" },
	{ "tenant \"t\" { agent \"a\" { max-turns 65 } }\n",
	    "t.conf:1:36: value \"65\" out of range for \"max-turns\" "
	    "(1..64)" },
	{ "tenant \"t\" { agent \"a\" { max-turns many } }\n",
	    "t.conf:1:36: invalid number \"many\" for \"max-turns\"" },
	{ "tenant \"t\" { agent \"a\" { max-tool-calls 1025 } }\n",
	    "t.conf:1:41: value \"1025\" out of range for \"max-tool-calls\" "
	    "(0..1024)" },
	{ "tenant \"t\" { agent \"a\" { max-tool-calls -1 } }\n",
	    "t.conf:1:41: invalid number \"-1\" for \"max-tool-calls\"" },
	{ "tenant \"t\" { agent \"a\" { max-wall-clock 999ms } }\n",
	    "t.conf:1:41: value \"999ms\" out of range for \"max-wall-clock\" "
	    "(1s..1d)" },
	{ "tenant \"t\" { agent \"a\" { max-wall-clock 25h } }\n",
	    "t.conf:1:41: value \"25h\" out of range for \"max-wall-clock\" "
	    "(1s..1d)" },
	{ "tenant \"t\" { agent \"a\" { max-wall-clock 10 } }\n",
	    "t.conf:1:41: invalid duration \"10\" for \"max-wall-clock\"" },
	{ "tenant \"t\" { agent \"a\" {\n\tmax-turns 2\n\tmax-turns 3\n} }\n",
	    "t.conf:3:2: duplicate \"max-turns\"" },
	{ "provider \"p\" { type openai; max-concurrent 0 }\n",
	    "t.conf:1:44: value \"0\" out of range for \"max-concurrent\" "
	    "(1..1024)" },
	{ "provider \"p\" { type openai; timeout idle 0ms }\n",
	    "t.conf:1:42: value \"0ms\" out of range for \"idle\" (1ms..1d)" },
	/* keywords */
	{ "journal { durability sometimes }\n",
	    "t.conf:1:22: invalid value \"sometimes\" for \"durability\" "
	    "(expected full or normal)" },
	{ "provider \"p\" { type gemini }\n",
	    "t.conf:1:21: invalid value \"gemini\" for \"type\" (expected "
	    "offline, openai, anthropic or openai-compatible)" },
	{ "tenant \"t\" { budget tokens 100 per week hard }\n",
	    "t.conf:1:36: invalid value \"week\" for \"budget\" (expected day, "
	    "month or total)" },
	{ "tenant \"t\" { budget tokens 100 a day }\n",
	    "t.conf:1:32: invalid value \"a\" for \"budget\" (expected per)" },
	{ "tenant \"t\" { budget tokens 1.5 per day }\n",
	    "t.conf:1:28: invalid number \"1.5\" for \"budget\"" },
	{ "tenant \"t\" { budget tokens 1 per day; budget tokens 2 per day }\n",
	    "t.conf:1:39: duplicate budget \"tenant:tokens:day\" (first at "
	    "line 1 of t.conf)" },
	/* Issue 7: budgets of every scope, timeouts, time zones, fetch. */
	{ "tenant \"t\" {\n\tagent \"a\" { budget cost 2 per month }\n"
	    "\tbudget cost 3 per month hard agent \"a\"\n}\n",
	    "t.conf:3:2: duplicate budget \"agent:a:cost:month\" (first at "
	    "line 2 of t.conf)" },
	{ "tenant \"t\" {\n\tbudget tokens 5 per day principal \"bob\"\n"
	    "\tbudget tokens 6 per day soft principal bob\n}\n",
	    "t.conf:3:2: duplicate budget \"principal:bob:tokens:day\" "
	    "(first at line 2 of t.conf)" },
	{ "tenant \"t\" {\n\tbudget tokens 5 per day agent \"ghost\"\n"
	    "\tagent \"a\" { }\n}\n",
	    "t.conf:2:32: unknown agent \"ghost\" in tenant \"t\"" },
	{ "tenant \"t\" { budget tokens 5 per day agent \"x\" }\n",
	    "t.conf:1:44: unknown agent \"x\" in tenant \"t\"" },
	{ "tenant \"t\" { budget tokens 5 per day agent \"assistant\" "
	    "principal p }\n",
	    "t.conf:1:56: a budget applies to one agent or one principal, not "
	    "both" },
	{ "tenant \"t\" { budget tokens 5 per day principal \"a b\" }\n",
	    "t.conf:1:48: invalid principal name \"a b\"" },
	{ "tenant \"t\" { budget tokens 5 per day agent }\n",
	    "t.conf:1:38: missing argument to \"agent\"" },
	{ "tenant \"t\" { agent \"a\" { budget tokens 5 per day agent a } }\n",
	    "t.conf:1:50: \"agent\" is not allowed in a budget inside an agent "
	    "block (the budget is the agent's)" },
	{ "tenant \"t\" { agent \"a\" { budget tokens 5 per day hard "
	    "principal p } }\n",
	    "t.conf:1:55: \"principal\" is not allowed in a budget inside an "
	    "agent block (the budget is the agent's)" },
	{ "tenant \"t\" { budget tokens 5 per day maybe }\n",
	    "t.conf:1:38: invalid value \"maybe\" for \"budget\" (expected "
	    "hard or soft)" },
	{ "tenant \"t\" { budget cost -1 per day }\n",
	    "t.conf:1:26: invalid decimal number \"-1\" for \"budget\"" },
	{ "tenant \"t\" { timezone \"Mars/Olympus_Mons\" }\n",
	    "t.conf:1:23: unknown time zone \"Mars/Olympus_Mons\": no such "
	    "tzdata zone in /usr/share/zoneinfo" },
	{ "tenant \"t\" { timezone \"../../etc/passwd\" }\n",
	    "t.conf:1:23: invalid time zone \"../../etc/passwd\" (expected a "
	    "tzdata name such as \"Europe/Paris\" or \"UTC\")" },
	{ "tenant \"t\" { timezone \"/etc/localtime\" }\n",
	    "t.conf:1:23: invalid time zone \"/etc/localtime\" (expected a "
	    "tzdata name such as \"Europe/Paris\" or \"UTC\")" },
	{ "tenant \"t\" { timezone \"Europe\" }\n",
	    "t.conf:1:23: unknown time zone \"Europe\": not a tzdata zone in "
	    "/usr/share/zoneinfo" },
	{ "tenant \"t\" { timezone \"tzdata.zi\" }\n",
	    "t.conf:1:23: unknown time zone \"tzdata.zi\": not a tzdata zone "
	    "file in /usr/share/zoneinfo" },
	{ "tenant \"t\" { timezone UTC; timezone UTC }\n",
	    "t.conf:1:28: duplicate \"timezone\"" },
	{ "timezone UTC\n",
	    "t.conf:1:1: \"timezone\" is not allowed at top level" },
	{ "tenant \"t\" { agent \"a\" { timezone UTC } }\n",
	    "t.conf:1:26: \"timezone\" is not allowed in an agent block" },
	{ "tenant \"t\" { agent \"a\" { approval-timeout 500ms } }\n",
	    "t.conf:1:43: value \"500ms\" out of range for "
	    "\"approval-timeout\" (1s..1d)" },
	{ "tenant \"t\" { agent \"a\" { approval-timeout 25h } }\n",
	    "t.conf:1:43: value \"25h\" out of range for \"approval-timeout\" "
	    "(1s..1d)" },
	{ "tenant \"t\" { agent \"a\" { client-tool-timeout 2h } }\n",
	    "t.conf:1:46: value \"2h\" out of range for "
	    "\"client-tool-timeout\" (1s..1h)" },
	{ "tenant \"t\" { agent \"a\" { client-tool-timeout soon } }\n",
	    "t.conf:1:46: invalid duration \"soon\" for "
	    "\"client-tool-timeout\"" },
	{ "tenant \"t\" { agent \"a\" { approval-timeout 1m; "
	    "approval-timeout 2m } }\n",
	    "t.conf:1:47: duplicate \"approval-timeout\"" },
	{ "http-fetch { }\n",
	    "t.conf:1:1: \"http-fetch\" is not allowed at top level" },
	{ "tenant \"t\" { http-fetch { } http-fetch { } }\n",
	    "t.conf:1:29: duplicate \"http-fetch\"" },
	{ "tenant \"t\" { http-fetch { allow \"https://example.com\" } }\n",
	    "t.conf:1:33: invalid host \"https://example.com\" for \"allow\" "
	    "(no scheme: a host name or address, with an optional :PORT)" },
	{ "tenant \"t\" { http-fetch { allow \"example.com/api\" } }\n",
	    "t.conf:1:33: invalid host \"example.com/api\" for \"allow\" (no "
	    "path: a host name or address, with an optional :PORT)" },
	{ "tenant \"t\" { http-fetch { allow \"*.example.com\" } }\n",
	    "t.conf:1:33: invalid host \"*.example.com\" for \"allow\" "
	    "(wildcards are not supported: list each host)" },
	{ "tenant \"t\" { http-fetch { allow \"example.com:0\" } }\n",
	    "t.conf:1:33: invalid host \"example.com:0\" for \"allow\" (the "
	    "port must be 1..65535)" },
	{ "tenant \"t\" { http-fetch { allow \"example.com:65536\" } }\n",
	    "t.conf:1:33: invalid host \"example.com:65536\" for \"allow\" "
	    "(the port must be 1..65535)" },
	{ "tenant \"t\" { http-fetch { allow \"example.com:\" } }\n",
	    "t.conf:1:33: invalid host \"example.com:\" for \"allow\" (the "
	    "port must be 1..65535)" },
	{ "tenant \"t\" { http-fetch { allow \"fd00::1:65536\" } }\n",
	    "t.conf:1:33: invalid host \"fd00::1:65536\" for \"allow\" (an "
	    "IPv6 address with a port needs brackets: [IPV6]:PORT)" },
	{ "tenant \"t\" { http-fetch { allow \"[::g]:80\" } }\n",
	    "t.conf:1:33: invalid host \"[::g]:80\" for \"allow\" (not an "
	    "IPv6 address in brackets)" },
	{ "tenant \"t\" { http-fetch { allow \"exa_mple.com\" } }\n",
	    "t.conf:1:33: invalid host \"exa_mple.com\" for \"allow\" (not a "
	    "host name or IPv4 address)" },
	{ "tenant \"t\" { http-fetch { allow \"-bad.example\" } }\n",
	    "t.conf:1:33: invalid host \"-bad.example\" for \"allow\" (not a "
	    "host name or IPv4 address)" },
	{ "tenant \"t\" { http-fetch { allow \"10.0.0.256\" } }\n",
	    "t.conf:1:33: invalid host \"10.0.0.256\" for \"allow\" (not a "
	    "host name or IPv4 address)" },
	{ "tenant \"t\" { http-fetch { allow \"example.com.\" } }\n",
	    "t.conf:1:33: invalid host \"example.com.\" for \"allow\" (not a "
	    "host name or IPv4 address)" },
	{ "tenant \"t\" { http-fetch { allow \"\" } }\n",
	    "t.conf:1:33: invalid host \"\" for \"allow\" (expected HOST, "
	    "HOST:PORT or [IPV6]:PORT)" },
	{ "tenant \"t\" { http-fetch {\n\tallow \"a.example\"\n"
	    "\tallow \"A.Example\" private\n} }\n",
	    "t.conf:3:8: duplicate allow \"A.Example\" (first at line 2)" },
	{ "tenant \"t\" { http-fetch { allow \"a.example\" public } }\n",
	    "t.conf:1:45: extra argument \"public\" to \"allow\"" },
	{ "tenant \"t\" { http-fetch { max-size 0 } }\n",
	    "t.conf:1:36: value \"0\" out of range for \"max-size\" (1..64M)" },
	{ "tenant \"t\" { http-fetch { max-size 65M } }\n",
	    "t.conf:1:36: value \"65M\" out of range for \"max-size\" "
	    "(1..64M)" },
	{ "tenant \"t\" { http-fetch { timeout 6m } }\n",
	    "t.conf:1:35: value \"6m\" out of range for \"timeout\" (1s..5m)" },
	{ "tenant \"t\" { http-fetch { timeout 0 } }\n",
	    "t.conf:1:35: value \"0\" out of range for \"timeout\" (1s..5m)" },
	{ "tenant \"t\" { http-fetch { max-redirects 11 } }\n",
	    "t.conf:1:41: value \"11\" out of range for \"max-redirects\" "
	    "(0..10)" },
	{ "tenant \"t\" { http-fetch { content-types \"text\" } }\n",
	    "t.conf:1:41: invalid content type \"text\" (expected "
	    "\"type/subtype\" or \"type/*\")" },
	{ "tenant \"t\" { http-fetch { content-types \"*/*\" } }\n",
	    "t.conf:1:41: invalid content type \"*/*\" (expected "
	    "\"type/subtype\" or \"type/*\")" },
	{ "tenant \"t\" { http-fetch { content-types \"text/html; q=1\" } }\n",
	    "t.conf:1:41: invalid content type \"text/html; q=1\" (expected "
	    "\"type/subtype\" or \"type/*\")" },
	{ "tenant \"t\" { http-fetch { content-types text/* TEXT/* } }\n",
	    "t.conf:1:48: duplicate content type \"TEXT/*\"" },
	{ "tenant \"t\" { http-fetch { content-types } }\n",
	    "t.conf:1:27: missing argument to \"content-types\"" },
	{ "tenant \"t\" { http-fetch { workers 2 } }\n",
	    "t.conf:1:27: \"workers\" is not allowed in an http-fetch block" },
	{ "tenant \"t\" { agent \"a\" { http-fetch { allow x.example } "
	    "http-fetch { } } }\n",
	    "t.conf:1:57: duplicate \"http-fetch\"" },
	{ "tenant \"t\" { agent \"a\" { tool \"x\" maybe } }\n",
	    "t.conf:1:35: invalid value \"maybe\" for \"tool\" (expected "
	    "allow, "
	    "ask or deny)" },
	{ "tenant \"t\" { agent \"a\" { tool \"x\" ask; tool \"x\" deny } }\n",
	    "t.conf:1:45: duplicate tool \"x\"" },
	{ "listen ftp 127.0.0.1:21\n",
	    "t.conf:1:8: invalid value \"ftp\" for \"listen\" (expected "
	    "grpc or "
	    "http)" },
	/* duplicates and references */
	{ "tenant \"a\" { }\ntenant \"a\" { }\n",
	    "t.conf:2:8: duplicate tenant \"a\" (first declared at line 1 of "
	    "t.conf)" },
	{ "provider \"p\" { type offline }\nprovider \"p\" { type openai }\n",
	    "t.conf:2:10: duplicate provider \"p\" (first declared at line 1 "
	    "of t.conf)" },
	{ "tenant \"t\" {\n\tagent \"a\" { }\n\tagent \"a\" { }\n}\n",
	    "t.conf:3:8: duplicate agent \"a\" in tenant \"t\"" },
	{ "tenant \"t\" {\n"
	    "\tagent \"a\" { providers \"offline\" \"gpt\" }\n}\n",
	    "t.conf:2:34: unknown provider \"gpt\"" },
	{ "tenant \"t\" { agent \"a\" { providers p p } }\n",
	    "t.conf:1:38: duplicate provider \"p\" in \"providers\"" },
	{ "state-dir \"a\"\nstate-dir \"b\"\n",
	    "t.conf:2:1: duplicate \"state-dir\"" },
	{ "journal { }\njournal { }\n", "t.conf:2:1: duplicate \"journal\"" },
	{ "listen grpc 127.0.0.1:1\nlisten grpc 127.0.0.1:2\n",
	    "t.conf:2:1: duplicate \"listen grpc\"" },
	{ "listen http 127.0.0.1:7443\n",
	    "t.conf:1:1: listen grpc and listen http use the same address" },
	/* braces */
	{ "tenant \"t\" {\n\tworkers 1\n",
	    "t.conf:1:12: unclosed \"{\"" },
	{ "}\n", "t.conf:1:1: unexpected \"}\"" },
	{ "tenant \"t\" { } }\n", "t.conf:1:16: unexpected \"}\"" },
	{ "{\n", "t.conf:1:1: unexpected \"{\"" },
	{ "tenant \"t\" { workers 1 { }\n",
	    "t.conf:1:24: extra argument \"{\" to \"workers\"" },
	/* names */
	{ "tenant \"bad name\" { }\n",
	    "t.conf:1:8: invalid tenant name \"bad name\"" },
	{ "tenant \".hidden\" { }\n",
	    "t.conf:1:8: invalid tenant name \".hidden\"" },
	{ "tenant \"\" { }\n", "t.conf:1:8: invalid tenant name \"\"" },
	{ "provider \"-p\" { type offline }\n",
	    "t.conf:1:10: invalid provider name \"-p\"" },
	{ "tenant t { agent \"a/b\" { } }\n",
	    "t.conf:1:18: invalid agent name \"a/b\"" },
	{ "user \"root\"\n", "t.conf:1:6: \"user\" must not be root" },
	{ "user \"a b\"\n", "t.conf:1:6: invalid user name \"a b\"" },
	/* listen */
	{ "listen grpc 0.0.0.0:7443\n", "t.conf:1:13: listening on a "
	    "non-loopback address requires tls" },
	{ "listen http [2001:db8::1]:80\n", "t.conf:1:13: listening on a "
	    "non-loopback address requires tls" },
	{ "listen grpc 0.0.0.0:7443 tls { certificate \"c\" }\n",
	    "t.conf:1:26: tls requires both certificate and key" },
	{ "listen grpc 0.0.0.0:7443 tls { key \"k\" }\n",
	    "t.conf:1:26: tls requires both certificate and key" },
	{ "listen grpc 127.0.0.1 tls { key \"k\" }\n",
	    "t.conf:1:13: invalid address \"127.0.0.1\" for \"listen\" "
	    "(expected IPV4:PORT, [IPV6]:PORT or localhost:PORT)" },
	{ "listen http 127.0.0.1:70000\n",
	    "t.conf:1:13: invalid address \"127.0.0.1:70000\" for \"listen\" "
	    "(expected IPV4:PORT, [IPV6]:PORT or localhost:PORT)" },
	{ "listen http ::1:80\n",
	    "t.conf:1:13: invalid address \"::1:80\" for \"listen\" "
	    "(expected IPV4:PORT, [IPV6]:PORT or localhost:PORT)" },
	{ "listen http example.com:80\n",
	    "t.conf:1:13: invalid address \"example.com:80\" for \"listen\" "
	    "(expected IPV4:PORT, [IPV6]:PORT or localhost:PORT)" },
	{ "listen http 127.0.0.1:80 tls\n", "t.conf:2:1: expected \"{\" after "
	    "\"tls\", found end of file" },
	/* providers */
	{ "provider \"p\" { }\n",
	    "t.conf:1:1: provider \"p\" has no \"type\"" },
	{ "provider \"p\" { type openai-compatible }\n", "t.conf:1:1: provider "
	    "\"p\" of type openai-compatible has no \"base-url\"" },
	{ "provider \"p\" { type openai }\n", "t.conf:1:1: provider "
	    "\"p\" of type openai has no \"api-key\"" },
	{ "provider \"p\" {\n\ttype anthropic\n\tmodel m\n}\n", "t.conf:1:1: "
	    "provider \"p\" of type anthropic has no \"api-key\"" },
	{ "provider \"p\" { type openai; api-key sk-123 }\n",
	    "t.conf:1:37: invalid api-key \"sk-123\" (expected env:NAME, "
	    "file:PATH, vault:NAME or vault:host/NAME)" },
	{ "provider \"p\" { type openai; api-key env:1X }\n",
	    "t.conf:1:37: invalid api-key \"env:1X\" (expected env:NAME, "
	    "file:PATH, vault:NAME or vault:host/NAME)" },
	{ "provider \"p\" { type openai; api-key vault:host/.x }\n",
	    "t.conf:1:37: invalid api-key \"vault:host/.x\" (expected env:NAME, "
	    "file:PATH, vault:NAME or vault:host/NAME)" },
	{ "provider \"p\" { type openai; api-key file: }\n",
	    "t.conf:1:37: invalid api-key \"file:\" (expected env:NAME, "
	    "file:PATH, vault:NAME or vault:host/NAME)" },
	{ "provider \"p\" { type openai; base-url ftp://x }\n",
	    "t.conf:1:38: invalid URL \"ftp://x\" for \"base-url\" (expected "
	    "http:// or https://)" },
	{ "provider \"p\" { type openai; base-url https:// }\n",
	    "t.conf:1:38: invalid URL \"https://\" for \"base-url\" (expected "
	    "http:// or https://)" },
	{ "state-dir \"\"\n", "t.conf:1:11: empty path for \"state-dir\"" },
	{ "include \"\"\n", "t.conf:1:9: empty path for \"include\"" },
	{ "include \"/nonexistent/palyra.conf\"\n",
	    "t.conf:1:9: include \"/nonexistent/palyra.conf\": No such file or "
	    "directory" },
	{ "include \"/dev/null\"\n", "t.conf:1:9: include \"/dev/null\": not "
	    "a regular file" },
	/* memory block and memory-recall */
	{ "tenant \"t\" { memory { embedder \"nope\" } }\n",
	    "t.conf:1:32: unknown provider \"nope\"" },
	{ "provider \"p\" { type openai-compatible; base-url \"http://x/v1\"; "
	    "model \"m\" }\ntenant \"t\" { memory { embedder \"p\" } }\n",
	    "t.conf:2:32: embedder \"p\" has no embedding-model" },
	{ "tenant \"t\" { memory { default-ttl 4000d } }\n",
	    "t.conf:1:35: value \"4000d\" out of range for \"default-ttl\" "
	    "(0ms..3650d)" },
	{ "tenant \"t\" { memory { max-items 0 } }\n",
	    "t.conf:1:33: value \"0\" out of range for \"max-items\" "
	    "(1..100000)" },
	{ "tenant \"t\" { memory { embedder \"offline\" } memory { } }\n",
	    "t.conf:1:44: duplicate \"memory\"" },
	{ "tenant \"t\" { memory { workers 2 } }\n",
	    "t.conf:1:23: \"workers\" is not allowed in a memory block" },
	{ "tenant \"t\" { memory-recall top-k 5 min-score 0.2 }\n",
	    "t.conf:1:14: \"memory-recall\" is not allowed in a tenant block" },
	{ "tenant \"t\" { agent \"a\" { memory-recall top-k 21 min-score 0.2 } }"
	    "\n", "t.conf:1:46: value \"21\" out of range for \"top-k\" (1..20)" },
	{ "tenant \"t\" { agent \"a\" { memory-recall top-k 5 min-score 1.5 } }"
	    "\n", "t.conf:1:58: value \"1.5\" out of range for \"min-score\" "
	    "(0..1)" },
	{ "tenant \"t\" { agent \"a\" { memory-recall top 5 min-score 0.2 } }\n",
	    "t.conf:1:40: invalid value \"top\" for \"memory-recall\" (expected "
	    "top-k)" },
	{ "tenant \"t\" { agent \"a\" { memory-recall top-k 5 score 0.2 } }\n",
	    "t.conf:1:48: invalid value \"score\" for \"memory-recall\" "
	    "(expected min-score)" },
	{ "tenant \"t\" { agent \"a\" { memory-recall top-k 5 } }\n",
	    "t.conf:1:26: missing argument to \"memory-recall\"" },
};

static void
test_errors(void **state)
{
	struct cfg *cfg;
	size_t i;
	int failed = 0, rc;

	for (i = 0; i < sizeof(errors) / sizeof(errors[0]); i++) {
		cfg = NULL;
		rc = cfg_parse_buffer("t.conf", errors[i].text,
		    strlen(errors[i].text), BASE, &cfg, err, sizeof(err));
		if (rc == -1 && cfg == NULL &&
		    strcmp(err, errors[i].error) == 0)
			continue;
		print_error("input:    %s\nexpected: %s\ngot:      %s\n",
		    errors[i].text, errors[i].error, rc == 0 ? "success" : err);
		cfg_free(cfg);
		failed++;
	}
	assert_int_equal(failed, 0);
}

static void
test_values(void **state)
{
	struct cfg *cfg;

	cfg = parse_ok("worker-uid-range 1-4294967294\n"
	    "listen grpc localhost:0\nlisten http [::1]:65535\n"
	    "journal { checkpoint-interval 1d }\n"
	    "provider \"o\" { type openai-compatible; base-url "
	    "\"http://127.0.0.1:8000/v1\"; api-key file:keys/o.key; timeout "
	    "connect 1ms first-byte 1d idle 2h total 86400000ms }\n"
	    "provider \"v\" { type openai; api-key vault:openai-key }\n"
	    "tenant \"t\" { memory-limit 1048576; journal-quota 256K }\n"
	    "tenant \"u\" { memory-limit 1024T; journal-quota 1024T }\n"
	    "tenant \"w\" { memory-limit 3072K\n"
	    "budget tokens 9007199254740992 per day\n"
	    "agent \"a\" { max-output-tokens 1048576; temperature 0 } }\n"
	    "pricing \"meta-llama/Llama-3-8B\" { input 0; output 1e-3 }\n");
	assert_int_equal(cfg->worker_uid_min, 1);
	assert_int_equal(cfg->worker_uid_max, 4294967294U);
	assert_string_equal(cfg->grpc.host, "localhost");
	assert_int_equal(cfg->grpc.port, 0);
	assert_string_equal(cfg->http.host, "::1");
	assert_int_equal(cfg->http.port, 65535);
	assert_int_equal(cfg->checkpoint_interval_ms, 86400000);
	assert_string_equal(cfg->providers[0].api_key,
	    "file:" BASE "/keys/o.key");
	assert_int_equal(cfg->providers[0].timeout_connect_ms, 1);
	assert_int_equal(cfg->providers[0].timeout_first_byte_ms, 86400000);
	assert_int_equal(cfg->providers[0].timeout_idle_ms, 7200000);
	assert_int_equal(cfg->providers[0].timeout_total_ms, 86400000);
	assert_string_equal(cfg->providers[1].api_key, "vault:openai-key");
	assert_int_equal(cfg->tenants[0].memory_limit, 1048576);
	assert_int_equal(cfg->tenants[1].memory_limit, 1ULL << 50);
	assert_int_equal(cfg->tenants[0].journal_quota, 256 * 1024);
	assert_int_equal(cfg->tenants[1].journal_quota, 1ULL << 50);
	assert_int_equal(cfg->tenants[2].memory_limit, 3072 * 1024);
	assert_true(cfg->tenants[2].budgets[0].amount == 9007199254740992.0);
	assert_int_equal(cfg->tenants[2].agents[0].max_output_tokens, 1048576);
	assert_true(cfg->tenants[2].agents[0].temperature == 0);
	assert_true(cfg->pricing[0].output_per_million == 1e-3);
	assert_round_trip(cfg);
	cfg_free(cfg);

	/* state-dir: relative to base_dir, absolute kept. */
	cfg = parse_ok("state-dir var/lib\n");
	assert_string_equal(cfg->state_dir, BASE "/var/lib");
	cfg_free(cfg);
	cfg = parse_ok("state-dir \"/srv/palyra\"\n");
	assert_string_equal(cfg->state_dir, "/srv/palyra");
	cfg_free(cfg);
}

static void
test_token_delay(void **state)
{
	struct cfg *cfg;

	cfg = parse_ok("provider \"slow\" { token-delay 20ms; type offline }\n"
	    "provider \"max\" { type offline; token-delay 10s }\n"
	    "provider \"zero\" { type offline; token-delay 0ms }\n"
	    "provider \"plain\" { type offline }\n"
	    "provider \"o\" { type openai; api-key env:K }\n"
	    "tenant \"t\" { agent \"a\" { providers \"slow\" } }\n");
	assert_string_equal(cfg->providers[0].name, "slow");
	assert_int_equal(cfg->providers[0].type, CFG_PROVIDER_OFFLINE);
	assert_int_equal(cfg->providers[0].token_delay_ms, 20);
	assert_int_equal(cfg->providers[1].token_delay_ms, 10000);
	assert_int_equal(cfg->providers[2].token_delay_ms, 0);
	assert_int_equal(cfg->providers[3].token_delay_ms, 0);
	assert_int_equal(cfg->providers[4].token_delay_ms, 0);
	/* openai and anthropic default to the vendors' endpoints. */
	assert_string_equal(cfg->providers[4].base_url,
	    "https://api.openai.com/v1");
	assert_null(cfg->providers[0].base_url);
	assert_round_trip(cfg);
	cfg_free(cfg);
}

/* A tenant's worker pool: workers and idle-timeout, bounds accepted. */
static void
test_worker_pool(void **state)
{
	struct cfg *cfg;

	cfg = parse_ok("tenant \"a\" { workers 64; idle-timeout 0 }\n"
	    "tenant \"b\" {\n\tidle-timeout 7d\n\tworkers 2\n}\n"
	    "tenant \"c\" { idle-timeout 1500ms }\n"
	    "tenant \"d\" { idle-timeout 30m }\n"
	    "tenant \"e\" { }\n");
	assert_int_equal(cfg->tenants[0].workers, 64);
	assert_int_equal(cfg->tenants[0].idle_timeout_ms, 0);
	assert_int_equal(cfg->tenants[1].workers, 2);
	assert_int_equal(cfg->tenants[1].idle_timeout_ms,
	    7ULL * 24 * 60 * 60 * 1000);
	assert_int_equal(cfg->tenants[2].idle_timeout_ms, 1500);
	assert_int_equal(cfg->tenants[3].idle_timeout_ms, 30 * 60 * 1000);
	assert_int_equal(cfg->tenants[4].workers, 1);
	assert_int_equal(cfg->tenants[4].idle_timeout_ms, 5 * 60 * 1000);
	assert_round_trip(cfg);
	cfg_free(cfg);
}

/* The cgroup settings of a tenant: bounds accepted, unset is 0. */
static void
test_cgroup_settings(void **state)
{
	struct cfg *cfg;

	cfg = parse_ok("tenant \"a\" { memory-limit 64M; pids-limit 32; "
	    "cpu-weight 50 }\n"
	    "tenant \"lo\" {\n\tpids-limit 1\n\tcpu-weight 1\n}\n"
	    "tenant \"hi\" { cpu-weight 10000 pids-limit 1000000 }\n"
	    "tenant \"none\" { }\n");
	assert_int_equal(cfg->tenants[0].memory_limit, 64ULL << 20);
	assert_int_equal(cfg->tenants[0].pids_limit, 32);
	assert_int_equal(cfg->tenants[0].cpu_weight, 50);
	assert_int_equal(cfg->tenants[1].pids_limit, 1);
	assert_int_equal(cfg->tenants[1].cpu_weight, 1);
	assert_int_equal(cfg->tenants[2].pids_limit, 1000000);
	assert_int_equal(cfg->tenants[2].cpu_weight, 10000);
	assert_int_equal(cfg->tenants[3].memory_limit, 0);
	assert_int_equal(cfg->tenants[3].pids_limit, 0);
	assert_int_equal(cfg->tenants[3].cpu_weight, 0);
	assert_round_trip(cfg);
	cfg_free(cfg);
}

static void
test_limits(void **state)
{
	char *text, *p;
	size_t i, cap;

	/* One tenant more than allowed: the error names the extra one. */
	cap = (size_t)(CFG_MAX_TENANTS + 1) * 32;
	text = malloc(cap);
	assert_non_null(text);
	p = text;
	for (i = 0; i <= CFG_MAX_TENANTS; i++)
		p += sprintf(p, "tenant t%zu { }\n", i);
	parse_fails(text, "t.conf:10001:1: too many tenants (limit 10000)");
	/* Exactly the limit parses. */
	*strstr(text, "tenant t10000") = '\0';
	{
		struct cfg *cfg = parse_ok(text);

		assert_int_equal(cfg->ntenants, CFG_MAX_TENANTS);
		assert_non_null(cfg_tenant_find(cfg, "t9999"));
		cfg_free(cfg);
	}
	free(text);

	/* Providers: 63 declared plus the implicit offline is the limit. */
	text = malloc((CFG_MAX_PROVIDERS + 1) * 48);
	assert_non_null(text);
	p = text;
	for (i = 0; i < CFG_MAX_PROVIDERS; i++)
		p += sprintf(p, "provider p%zu { type offline }\n", i);
	parse_fails(text, "t.conf:1:1: too many providers (limit 64, the "
	    "implicit \"offline\" included)");
	p += sprintf(p, "provider p64 { type offline }\n");
	parse_fails(text, "t.conf:65:1: too many providers (limit 64)");
	free(text);

	/* Agents per tenant. */
	text = malloc((CFG_MAX_AGENTS + 2) * 32);
	assert_non_null(text);
	p = text + sprintf(text, "tenant t {\n");
	for (i = 0; i <= CFG_MAX_AGENTS; i++)
		p += sprintf(p, "agent a%zu { }\n", i);
	sprintf(p, "}\n");
	parse_fails(text, "t.conf:258:1: too many agents in tenant \"t\" "
	    "(limit 256)");
	free(text);
}

static void
test_includes(void **state)
{
	char dir[] = "/tmp/test_config.XXXXXX";
	char path[PATH_MAX + 32];
	struct cfg *cfg;
	int i;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/etc", dir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/etc/tenants", dir);
	assert_int_equal(mkdir(path, 0700), 0);

	/* Relative to the including file, at top level and in a block. */
	write_file(dir, "etc/main.conf", "state-dir \"var\"\n"
	    "include \"tenants/a.conf\"\n"
	    "tenant \"b\" { include \"tenants/b-agents.conf\" }\n");
	write_file(dir, "etc/tenants/a.conf", "include \"../providers.conf\"\n"
	    "tenant \"a\" { agent \"x\" { providers \"remote\" } }\n");
	write_file(dir, "etc/providers.conf",
	    "provider \"remote\" { type anthropic; api-key env:K }\n");
	write_file(dir, "etc/tenants/b-agents.conf",
	    "workers 4\nagent \"y\" { providers remote offline }\n");
	if (cfg_load("etc/main.conf", dir, &cfg, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	snprintf(path, sizeof(path), "%s/var", dir);
	assert_string_equal(cfg->state_dir, path);
	assert_int_equal(cfg->ntenants, 2);
	assert_int_equal(cfg->tenants[1].workers, 4);
	assert_string_equal(cfg->tenants[1].agents[0].providers[0], "remote");
	assert_int_equal(cfg->nfiles, 4);
	assert_string_equal(cfg->files[0], "etc/main.conf");
	assert_string_equal(cfg->files[1], "etc/tenants/a.conf");
	assert_string_equal(cfg->files[2], "etc/tenants/../providers.conf");
	assert_string_equal(cfg->files[3], "etc/tenants/b-agents.conf");
	assert_string_equal(cfg->providers[0].pos.file,
	    "etc/tenants/../providers.conf");
	assert_int_equal(cfg->providers[0].pos.line, 1);
	assert_string_equal(cfg->tenants[0].pos.file, "etc/tenants/a.conf");
	assert_int_equal(cfg->tenants[0].pos.line, 2);
	cfg_free(cfg);

	/* An error inside an included file names that file. */
	write_file(dir, "etc/tenants/b-agents.conf", "workers 4\n  bogus\n");
	assert_int_equal(cfg_load("etc/main.conf", dir, &cfg, err,
	    sizeof(err)), -1);
	assert_null(cfg);
	assert_string_equal(err, "etc/tenants/b-agents.conf:2:3: unknown "
	    "directive \"bogus\"");
	/* An included file must balance its own braces. */
	write_file(dir, "etc/tenants/b-agents.conf", "workers 4 }\n");
	assert_int_equal(cfg_load("etc/main.conf", dir, &cfg, err,
	    sizeof(err)), -1);
	assert_string_equal(err, "etc/tenants/b-agents.conf:1:11: unexpected "
	    "\"}\"");
	/* The included directives must suit the including block. */
	write_file(dir, "etc/tenants/b-agents.conf", "user \"x\"\n");
	assert_int_equal(cfg_load("etc/main.conf", dir, &cfg, err,
	    sizeof(err)), -1);
	assert_string_equal(err, "etc/tenants/b-agents.conf:1:1: \"user\" is "
	    "not allowed in a tenant block");

	/* Cycles. */
	write_file(dir, "etc/a.conf", "include \"b.conf\"\n");
	write_file(dir, "etc/b.conf", "\n include \"./a.conf\"\n");
	assert_int_equal(cfg_load("etc/a.conf", dir, &cfg, err, sizeof(err)),
	    -1);
	assert_string_equal(err, "etc/b.conf:2:10: include cycle: "
	    "\"etc/./a.conf\" is already being read");
	write_file(dir, "etc/self.conf", "include \"self.conf\"\n");
	assert_int_equal(cfg_load("etc/self.conf", dir, &cfg, err,
	    sizeof(err)), -1);
	assert_string_equal(err, "etc/self.conf:1:9: include cycle: "
	    "\"etc/self.conf\" is already being read");

	/* Depth: a chain of includes deeper than CFG_MAX_DEPTH. */
	for (i = 0; i < CFG_MAX_DEPTH + 1; i++) {
		char name[32], text[64];

		snprintf(name, sizeof(name), "etc/d%d.conf", i);
		snprintf(text, sizeof(text), "include \"d%d.conf\"\n", i + 1);
		write_file(dir, name, text);
	}
	write_file(dir, "etc/d9.conf", "tenant \"deep\" { }\n");
	assert_int_equal(cfg_load("etc/d0.conf", dir, &cfg, err, sizeof(err)),
	    -1);
	assert_string_equal(err, "etc/d8.conf:1:1: nesting too deep "
	    "(limit 8)");
	/* One level less parses; a block inside counts as a level too. */
	assert_int_equal(cfg_load("etc/d2.conf", dir, &cfg, err, sizeof(err)),
	    0);
	assert_non_null(cfg_tenant_find(cfg, "deep"));
	cfg_free(cfg);
	assert_int_equal(cfg_load("etc/d1.conf", dir, &cfg, err, sizeof(err)),
	    -1);
	assert_string_equal(err, "etc/d9.conf:1:15: nesting too deep "
	    "(limit 8)");

	/* Unreadable main file and missing include. */
	assert_int_equal(cfg_load("etc/none.conf", dir, &cfg, err,
	    sizeof(err)), -1);
	assert_string_equal(err, "etc/none.conf: No such file or directory");
	write_file(dir, "etc/missing.conf", "\n\tinclude \"gone.conf\"\n");
	assert_int_equal(cfg_load("etc/missing.conf", dir, &cfg, err,
	    sizeof(err)), -1);
	assert_string_equal(err, "etc/missing.conf:2:10: include "
	    "\"etc/gone.conf\": No such file or directory");
	assert_int_equal(cfg_load("etc", dir, &cfg, err, sizeof(err)), -1);
	assert_string_equal(err, "etc: not a regular file");

	/* A file too large to read. */
	{
		FILE *fp;

		snprintf(path, sizeof(path), "%s/etc/big.conf", dir);
		fp = fopen(path, "w");
		assert_non_null(fp);
		for (i = 0; i < CFG_MAX_FILE_SIZE / 64 + 1; i++)
			fprintf(fp, "%63s\n", "#");
		fclose(fp);
		assert_int_equal(cfg_load("etc/big.conf", dir, &cfg, err,
		    sizeof(err)), -1);
		assert_string_equal(err, "etc/big.conf: file too large (limit "
		    "1048576 bytes)");
		write_file(dir, "etc/inc-big.conf", "include \"big.conf\"\n");
		assert_int_equal(cfg_load("etc/inc-big.conf", dir, &cfg, err,
		    sizeof(err)), -1);
		assert_string_equal(err, "etc/inc-big.conf:1:9: include "
		    "\"etc/big.conf\": file too large (limit 1048576 bytes)");
	}

	snprintf(path, sizeof(path), "rm -rf '%s'", dir);
	assert_int_equal(system(path), 0);
}

/* Issue 7: time zone, budgets of every scope, tool timeouts, http-fetch. */
static void
test_tools_budgets_fetch(void **state)
{
	const struct cfg_tenant *tn;
	const struct cfg_agent *a;
	const struct cfg_fetch *fe;
	const struct cfg_budget *b;
	struct cfg *cfg;
	char id[128];

	(void)state;
	cfg = parse_ok(
	    "pricing \"m\" { input 0.4; output 1.6 }\n"
	    "tenant \"t\" {\n"
	    "\ttimezone \"Europe/Paris\"\n"
	    "\tbudget tokens 1000 per day hard\n"
	    "\tbudget cost 2.50 per month soft agent \"helper\"\n"
	    "\tbudget tokens 50 per total principal \"alice\"\n"
	    "\tbudget tokens 60 per total agent helper\n"
	    "\thttp-fetch {\n"
	    "\t\tallow \"Example.COM\"\n"
	    "\t\tallow \"127.0.0.1:8080\" private\n"
	    "\t\tallow \"[::1]:8443\" private\n"
	    "\t\tallow \"2001:DB8::1\"\n"
	    "\t\tallow api.example.org:8443\n"
	    "\t\tmax-size 1M\n"
	    "\t\ttimeout 10s\n"
	    "\t\tcontent-types \"text/*\" \"Application/JSON\"\n"
	    "\t\tmax-redirects 0\n"
	    "\t}\n"
	    "\tagent \"helper\" {\n"
	    "\t\ttool \"http.*\" ask\n"
	    "\t\tapproval-timeout 5m\n"
	    "\t\tclient-tool-timeout 60s\n"
	    "\t\tbudget tokens 70 per day soft\n"
	    "\t\thttp-fetch { allow \"docs.example\" private max-size 64M "
	    "timeout 5m }\n"
	    "\t}\n"
	    "\tagent \"plain\" { }\n"
	    "}\n"
	    "tenant \"u\" { timezone UTC }\n");
	tn = &cfg->tenants[0];
	assert_string_equal(tn->timezone, "Europe/Paris");
	assert_string_equal(cfg->tenants[1].timezone, "UTC");
	assert_int_equal(tn->nbudgets, 5);
	b = &tn->budgets[0];
	assert_int_equal(b->scope, CFG_BUDGET_TENANT);
	assert_null(b->subject);
	assert_int_equal(cfg_budget_id(b, id, sizeof(id)), 17);
	assert_string_equal(id, "tenant:tokens:day");
	assert_int_equal(cfg_budget_limit(b), 1000);
	b = &tn->budgets[1];
	assert_int_equal(b->scope, CFG_BUDGET_AGENT);
	assert_string_equal(b->subject, "helper");
	assert_int_equal(b->hard, 0);
	cfg_budget_id(b, id, sizeof(id));
	assert_string_equal(id, "agent:helper:cost:month");
	assert_int_equal(cfg_budget_limit(b), 2500000);	/* micro-USD */
	b = &tn->budgets[2];
	assert_int_equal(b->scope, CFG_BUDGET_PRINCIPAL);
	cfg_budget_id(b, id, sizeof(id));
	assert_string_equal(id, "principal:alice:tokens:total");
	assert_int_equal(b->hard, 1);
	cfg_budget_id(&tn->budgets[3], id, sizeof(id));
	assert_string_equal(id, "agent:helper:tokens:total");
	/* The agent block's own budget: agent scope, its name. */
	b = &tn->budgets[4];
	cfg_budget_id(b, id, sizeof(id));
	assert_string_equal(id, "agent:helper:tokens:day");
	assert_int_equal(b->hard, 0);

	fe = &tn->fetch;
	assert_int_equal(fe->set, 1);
	assert_int_equal(fe->nallow, 5);
	assert_string_equal(fe->allow[0].host, "example.com");
	assert_int_equal(fe->allow[0].port, 0);
	assert_int_equal(fe->allow[0].allow_private, 0);
	assert_string_equal(fe->allow[1].host, "127.0.0.1");
	assert_int_equal(fe->allow[1].port, 8080);
	assert_int_equal(fe->allow[1].allow_private, 1);
	assert_string_equal(fe->allow[2].host, "::1");
	assert_int_equal(fe->allow[2].port, 8443);
	assert_string_equal(fe->allow[3].host, "2001:db8::1");
	assert_int_equal(fe->allow[3].port, 0);
	assert_string_equal(fe->allow[4].host, "api.example.org");
	assert_int_equal(fe->allow[4].port, 8443);
	assert_int_equal(fe->max_bytes, 1 << 20);
	assert_int_equal(fe->timeout_ms, 10000);
	assert_int_equal(fe->ncontent_types, 2);
	assert_string_equal(fe->content_types[0], "text/*");
	assert_string_equal(fe->content_types[1], "application/json");
	assert_int_equal(fe->has_max_redirects, 1);
	assert_int_equal(fe->max_redirects, 0);

	a = &tn->agents[0];
	assert_int_equal(a->approval_timeout_ms, 5 * 60 * 1000);
	assert_int_equal(a->client_tool_timeout_ms, 60 * 1000);
	assert_int_equal(a->fetch.set, 1);
	assert_int_equal(a->fetch.nallow, 1);
	assert_string_equal(a->fetch.allow[0].host, "docs.example");
	assert_int_equal(a->fetch.allow[0].allow_private, 1);
	assert_int_equal(a->fetch.max_bytes, 64 << 20);
	assert_int_equal(a->fetch.timeout_ms, 5 * 60 * 1000);
	assert_int_equal(a->fetch.has_max_redirects, 0);
	/* Unset: zero, the worker's defaults. */
	a = &tn->agents[1];
	assert_int_equal(a->approval_timeout_ms, 0);
	assert_int_equal(a->client_tool_timeout_ms, 0);
	assert_int_equal(a->fetch.set, 0);
	assert_int_equal(cfg->tenants[1].fetch.set, 0);
	assert_round_trip(cfg);
	cfg_free(cfg);

	/* Budgets on the default agent of a tenant without agents. */
	cfg = parse_ok("tenant \"d\" { budget tokens 9 per day agent "
	    "assistant }\n");
	cfg_budget_id(&cfg->tenants[0].budgets[0], id, sizeof(id));
	assert_string_equal(id, "agent:assistant:tokens:day");
	assert_round_trip(cfg);
	cfg_free(cfg);
	/* Same unit and period, other scopes or subjects: no duplicates. */
	cfg = parse_ok("tenant \"d\" { agent a { }; agent b { }\n"
	    "budget tokens 1 per day\nbudget tokens 1 per day agent a\n"
	    "budget tokens 1 per day agent b\n"
	    "budget tokens 1 per day principal a\n}\n");
	assert_int_equal(cfg->tenants[0].nbudgets, 4);
	cfg_free(cfg);
}

/* The memory block and memory-recall: values, defaults, the dump. */
static void
test_memory(void **state)
{
	const struct cfg_tenant *tn;
	struct cfg *cfg, *again;
	char *text;

	(void)state;
	cfg = parse_ok(
	    "provider \"emb\" { type openai-compatible; "
	    "base-url \"http://127.0.0.1:9/v1\"; model \"m\"; "
	    "embedding-model \"e1\" }\n"
	    "tenant \"t\" {\n"
	    "\tmemory { embedder \"emb\"; default-ttl 30d; max-items 500 }\n"
	    "\tagent \"a\" { memory-recall top-k 5 min-score 0.2 }\n"
	    "\tagent \"b\" { }\n"
	    "}\n"
	    "tenant \"u\" { memory { embedder offline } }\n"
	    "tenant \"v\" { }\n");
	tn = &cfg->tenants[0];
	assert_true(tn->memory.set);
	assert_string_equal(tn->memory.embedder, "emb");
	assert_int_equal(tn->memory.default_ttl_ms, 30ULL * 86400 * 1000);
	assert_int_equal(tn->memory.max_items, 500);
	assert_int_equal(tn->agents[0].recall_top_k, 5);
	assert_true(tn->agents[0].recall_min_score == 0.2);
	assert_int_equal(tn->agents[1].recall_top_k, 0);
	assert_string_equal(cfg->tenants[1].memory.embedder, "offline");
	assert_int_equal(cfg->tenants[1].memory.default_ttl_ms, 0);
	assert_false(cfg->tenants[2].memory.set);
	assert_null(cfg->tenants[2].memory.embedder);
	assert_round_trip(cfg);
	text = dump_to_string(cfg);
	assert_non_null(strstr(text, "\tmemory {\n\t\tembedder \"emb\"\n"));
	assert_non_null(strstr(text,
	    "\t\tmemory-recall top-k 5 min-score 0.2\n"));
	again = parse_ok(text);
	assert_string_equal(again->tenants[0].memory.embedder, "emb");
	assert_int_equal(again->tenants[0].memory.default_ttl_ms,
	    30ULL * 86400 * 1000);
	assert_int_equal(again->tenants[0].memory.max_items, 500);
	assert_int_equal(again->tenants[0].agents[0].recall_top_k, 5);
	assert_true(again->tenants[0].agents[0].recall_min_score == 0.2);
	assert_false(again->tenants[2].memory.set);
	cfg_free(again);
	free(text);
	cfg_free(cfg);
}

static void
test_round_trip_escapes(void **state)
{
	struct cfg *cfg;

	cfg = parse_ok("user \"_palyra\"\n"
	    "listen grpc [::1]:0 tls { certificate \"a \\\"b\\\"\" key k }\n"
	    "provider \"p\" { type openai; model \"m\\\\1\"; api-key "
	    "\"file:/k e y\" }\n"
	    "tenant \"t\" { agent \"a\" { providers p; system-prompt "
	    "\"\\t\\n\\\"\\\\\"; temperature 0.1; tool \"*\" deny }\n"
	    "budget cost 0.3 per total hard }\n");
	assert_string_equal(cfg->grpc.tls_certificate, BASE "/a \"b\"");
	assert_string_equal(cfg->providers[0].model, "m\\1");
	assert_string_equal(cfg->providers[0].api_key, "file:/k e y");
	assert_round_trip(cfg);
	cfg_free(cfg);
}

static void
test_name_valid(void **state)
{
	char longest[NAME_MAX_LEN + 2];

	assert_true(cfg_name_valid("default"));
	assert_true(cfg_name_valid("a"));
	assert_true(cfg_name_valid("A.b_c-9"));
	assert_true(cfg_name_valid("_x"));
	assert_true(cfg_name_valid("9"));
	assert_false(cfg_name_valid(NULL));
	assert_false(cfg_name_valid(""));
	assert_false(cfg_name_valid(".a"));
	assert_false(cfg_name_valid("-a"));
	assert_false(cfg_name_valid("a b"));
	assert_false(cfg_name_valid("a/b"));
	assert_false(cfg_name_valid("a:b"));
	assert_false(cfg_name_valid("caf\xc3\xa9"));
	memset(longest, 'x', NAME_MAX_LEN);
	longest[NAME_MAX_LEN] = '\0';
	assert_true(cfg_name_valid(longest));
	longest[NAME_MAX_LEN] = 'x';
	longest[NAME_MAX_LEN + 1] = '\0';
	assert_false(cfg_name_valid(longest));
}

/* Garbage of every kind must fail cleanly, never crash or leak. */
static void
test_garbage(void **state)
{
	static const char alphabet[] = "{};\"#\\\n\r\t ax1:.-[]\x01\xc3";
	char buf[256];
	struct cfg *cfg;
	unsigned int seed = 12345;
	size_t i, n;
	int round;

	for (round = 0; round < 20000; round++) {
		seed = seed * 1103515245 + 12345;
		n = (seed >> 16) % sizeof(buf);
		for (i = 0; i < n; i++) {
			seed = seed * 1103515245 + 12345;
			buf[i] = alphabet[(seed >> 16) %
			    (sizeof(alphabet) - 1)];
		}
		cfg = NULL;
		if (cfg_parse_buffer("g.conf", buf, n, BASE, &cfg, err,
		    sizeof(err)) == 0)
			cfg_free(cfg);
		else
			assert_null(cfg);
	}
	/* A tiny error buffer is never overrun, and NULL is accepted. */
	assert_int_equal(cfg_parse_buffer("t.conf", "bogus", 5, BASE, &cfg,
	    buf, 8), -1);
	assert_string_equal(buf, "t.conf:");
	assert_int_equal(cfg_parse_buffer("t.conf", "bogus", 5, BASE, &cfg,
	    NULL, 0), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_design_example),
		cmocka_unit_test(test_design_tls_line),
		cmocka_unit_test(test_shipped_config),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_one_line_blocks),
		cmocka_unit_test(test_crlf),
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_token_limits),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_token_delay),
		cmocka_unit_test(test_cgroup_settings),
		cmocka_unit_test(test_worker_pool),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_includes),
		cmocka_unit_test(test_tools_budgets_fetch),
		cmocka_unit_test(test_memory),
		cmocka_unit_test(test_round_trip_escapes),
		cmocka_unit_test(test_name_valid),
		cmocka_unit_test(test_garbage),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
