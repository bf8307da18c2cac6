/*
 * config_dump.c: cfg_dump(), the effective configuration printed in the
 * file's own syntax, defaults included ("palyrad -n"). Runs in the
 * supervisor (palyrad) only; reads a finished struct cfg and writes to
 * the stdio stream it is given, nothing else.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_int.h"

/* Dump: the effective configuration in the file's own syntax. */

static void
dump_string(FILE *fp, const char *s)
{
	fputc('"', fp);
	for (; *s != '\0'; s++) {
		switch (*s) {
		case '"':
			fputs("\\\"", fp);
			break;
		case '\\':
			fputs("\\\\", fp);
			break;
		case '\n':
			fputs("\\n", fp);
			break;
		case '\t':
			fputs("\\t", fp);
			break;
		default:
			fputc(*s, fp);
		}
	}
	fputc('"', fp);
}

/* The shortest decimal that reads back as the same double. */
static void
dump_decimal(FILE *fp, double v)
{
	char buf[40];
	int precision;

	for (precision = 1; precision <= 17; precision++) {
		snprintf(buf, sizeof(buf), "%.*g", precision, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	fputs(buf, fp);
}

static void
dump_listen(FILE *fp, const char *kind, const struct cfg_listen *l)
{
	fprintf(fp, "listen %s %s%s%s:%u", kind,
	    strchr(l->host, ':') != NULL ? "[" : "", l->host,
	    strchr(l->host, ':') != NULL ? "]" : "", l->port);
	if (l->tls) {
		fputs(" tls { certificate ", fp);
		dump_string(fp, l->tls_certificate);
		fputs(" key ", fp);
		dump_string(fp, l->tls_key);
		fputs(" }", fp);
	}
	fputc('\n', fp);
}

static void
dump_provider(FILE *fp, const struct cfg_provider *pr)
{
	char c[32], fb[32], idle[32], total[32];

	fputs("\nprovider ", fp);
	dump_string(fp, pr->name);
	fprintf(fp, " {\n\ttype %s\n", cfg_provider_types[pr->type]);
	if (pr->base_url != NULL) {
		fputs("\tbase-url ", fp);
		dump_string(fp, pr->base_url);
		fputc('\n', fp);
	}
	if (pr->api_key != NULL) {
		fputs("\tapi-key ", fp);
		dump_string(fp, pr->api_key);
		fputc('\n', fp);
	}
	if (pr->model != NULL) {
		fputs("\tmodel ", fp);
		dump_string(fp, pr->model);
		fputc('\n', fp);
	}
	if (pr->embedding_model != NULL) {
		fputs("\tembedding-model ", fp);
		dump_string(fp, pr->embedding_model);
		fputc('\n', fp);
	}
	cfg_format_duration(c, sizeof(c), pr->timeout_connect_ms);
	cfg_format_duration(fb, sizeof(fb), pr->timeout_first_byte_ms);
	cfg_format_duration(idle, sizeof(idle), pr->timeout_idle_ms);
	cfg_format_duration(total, sizeof(total), pr->timeout_total_ms);
	fprintf(fp, "\ttimeout connect %s first-byte %s idle %s total %s\n",
	    c, fb, idle, total);
	fprintf(fp, "\tmax-concurrent %u\n", pr->max_concurrent);
	/* Only offline providers may have one; zero is the default. */
	if (pr->token_delay_ms != 0) {
		cfg_format_duration(c, sizeof(c), pr->token_delay_ms);
		fprintf(fp, "\ttoken-delay %s\n", c);
	}
	fputs("}\n", fp);
}

static void
dump_fetch(FILE *fp, const struct cfg_fetch *fetch, const char *indent)
{
	const struct cfg_fetch_allow *a;
	char v[32];
	size_t i;

	if (!fetch->set)
		return;
	fprintf(fp, "%shttp-fetch {\n", indent);
	for (i = 0; i < fetch->nallow; i++) {
		a = &fetch->allow[i];
		fprintf(fp, "%s\tallow \"%s%s%s", indent,
		    a->port != 0 && strchr(a->host, ':') != NULL ? "[" : "",
		    a->host,
		    a->port != 0 && strchr(a->host, ':') != NULL ? "]" : "");
		if (a->port != 0)
			fprintf(fp, ":%u", a->port);
		fprintf(fp, "\"%s\n", a->allow_private ? " private" : "");
	}
	if (fetch->max_bytes != 0) {
		cfg_format_size(v, sizeof(v), fetch->max_bytes);
		fprintf(fp, "%s\tmax-size %s\n", indent, v);
	}
	if (fetch->timeout_ms != 0) {
		cfg_format_duration(v, sizeof(v), fetch->timeout_ms);
		fprintf(fp, "%s\ttimeout %s\n", indent, v);
	}
	if (fetch->ncontent_types > 0) {
		fprintf(fp, "%s\tcontent-types", indent);
		for (i = 0; i < fetch->ncontent_types; i++) {
			fputc(' ', fp);
			dump_string(fp, fetch->content_types[i]);
		}
		fputc('\n', fp);
	}
	if (fetch->has_max_redirects)
		fprintf(fp, "%s\tmax-redirects %u\n", indent,
		    fetch->max_redirects);
	fprintf(fp, "%s}\n", indent);
}

static void
dump_agent(FILE *fp, const struct cfg_agent *a)
{
	static const char *const policies[] = { "allow", "ask", "deny" };
	char wall[32];
	size_t i;

	fputs("\tagent ", fp);
	dump_string(fp, a->name);
	fputs(" {\n\t\tproviders", fp);
	for (i = 0; i < a->nproviders; i++) {
		fputc(' ', fp);
		dump_string(fp, a->providers[i]);
	}
	fputc('\n', fp);
	if (a->system_prompt != NULL) {
		fputs("\t\tsystem-prompt ", fp);
		dump_string(fp, a->system_prompt);
		fputc('\n', fp);
	}
	fprintf(fp, "\t\tmax-output-tokens %u\n\t\ttemperature ",
	    a->max_output_tokens);
	dump_decimal(fp, a->temperature);
	fputc('\n', fp);
	cfg_format_duration(wall, sizeof(wall), a->max_wall_clock_ms);
	fprintf(fp, "\t\tmax-turns %u\n\t\tmax-tool-calls %u\n"
	    "\t\tmax-wall-clock %s\n", a->max_turns, a->max_tool_calls, wall);
	for (i = 0; i < a->ntools; i++) {
		fputs("\t\ttool ", fp);
		dump_string(fp, a->tools[i].pattern);
		fprintf(fp, " %s\n", policies[a->tools[i].policy]);
	}
	if (a->approval_timeout_ms != 0) {
		cfg_format_duration(wall, sizeof(wall), a->approval_timeout_ms);
		fprintf(fp, "\t\tapproval-timeout %s\n", wall);
	}
	if (a->client_tool_timeout_ms != 0) {
		cfg_format_duration(wall, sizeof(wall),
		    a->client_tool_timeout_ms);
		fprintf(fp, "\t\tclient-tool-timeout %s\n", wall);
	}
	dump_fetch(fp, &a->fetch, "\t\t");
	if (a->recall_top_k != 0) {
		fprintf(fp, "\t\tmemory-recall top-k %u min-score ",
		    a->recall_top_k);
		dump_decimal(fp, a->recall_min_score);
		fputc('\n', fp);
	}
	fputs("\t}\n", fp);
}

static void
dump_tenant(FILE *fp, const struct cfg_tenant *tn)
{
	static const char *const periods[] = { "day", "month", "total" };
	const struct cfg_budget *b;
	char size[32];
	size_t i;

	fputs("\ntenant ", fp);
	dump_string(fp, tn->name);
	fprintf(fp, " {\n\tworkers %u\n", tn->workers);
	cfg_format_duration(size, sizeof(size), tn->idle_timeout_ms);
	fprintf(fp, "\tidle-timeout %s\n", size);
	if (tn->memory_limit != 0) {
		cfg_format_size(size, sizeof(size), tn->memory_limit);
		fprintf(fp, "\tmemory-limit %s\n", size);
	}
	if (tn->journal_quota != 0) {
		cfg_format_size(size, sizeof(size), tn->journal_quota);
		fprintf(fp, "\tjournal-quota %s\n", size);
	}
	if (tn->pids_limit != 0)
		fprintf(fp, "\tpids-limit %u\n", tn->pids_limit);
	if (tn->cpu_weight != 0)
		fprintf(fp, "\tcpu-weight %u\n", tn->cpu_weight);
	if (tn->timezone != NULL) {
		fputs("\ttimezone ", fp);
		dump_string(fp, tn->timezone);
		fputc('\n', fp);
	}
	dump_fetch(fp, &tn->fetch, "\t");
	if (tn->memory.set) {
		fputs("\tmemory {\n", fp);
		if (tn->memory.embedder != NULL) {
			fputs("\t\tembedder ", fp);
			dump_string(fp, tn->memory.embedder);
			fputc('\n', fp);
		}
		cfg_format_duration(size, sizeof(size),
		    tn->memory.default_ttl_ms);
		fprintf(fp, "\t\tdefault-ttl %s\n", size);
		if (tn->memory.max_items != 0)
			fprintf(fp, "\t\tmax-items %llu\n",
			    (unsigned long long)tn->memory.max_items);
		fputs("\t}\n", fp);
	}
	for (i = 0; i < tn->nagents; i++)
		dump_agent(fp, &tn->agents[i]);
	for (i = 0; i < tn->nbudgets; i++) {
		b = &tn->budgets[i];
		if (b->unit == CFG_BUDGET_TOKENS)
			fprintf(fp, "\tbudget tokens %.0f", b->amount);
		else {
			fputs("\tbudget cost ", fp);
			dump_decimal(fp, b->amount);
		}
		fprintf(fp, " per %s %s", periods[b->period],
		    b->hard ? "hard" : "soft");
		/* An agent block's budget reads back the same from here. */
		if (b->subject != NULL) {
			fprintf(fp, " %s ", b->scope == CFG_BUDGET_AGENT ?
			    "agent" : "principal");
			dump_string(fp, b->subject);
		}
		fputc('\n', fp);
	}
	fputs("}\n", fp);
}

void
cfg_dump(const struct cfg *cfg, void *stdio_file)
{
	FILE *fp = stdio_file;
	char interval[32];
	size_t i;

	fputs("# palyrad effective configuration\n", fp);
	if (cfg->user != NULL) {
		fputs("user ", fp);
		dump_string(fp, cfg->user);
		fputc('\n', fp);
	}
	fputs("state-dir ", fp);
	dump_string(fp, cfg->state_dir);
	fprintf(fp, "\nworker-uid-range %u-%u\n\n", cfg->worker_uid_min,
	    cfg->worker_uid_max);
	dump_listen(fp, "grpc", &cfg->grpc);
	dump_listen(fp, "http", &cfg->http);
	cfg_format_duration(interval, sizeof(interval),
	    cfg->checkpoint_interval_ms);
	fprintf(fp, "\njournal {\n\tdurability %s\n\tcheckpoint-interval %s\n"
	    "}\n", cfg->durability == CFG_DURABILITY_FULL ? "full" : "normal",
	    interval);
	for (i = 0; i < cfg->nproviders; i++)
		dump_provider(fp, &cfg->providers[i]);
	for (i = 0; i < cfg->npricing; i++) {
		fputs("\npricing ", fp);
		dump_string(fp, cfg->pricing[i].model);
		fputs(" { input ", fp);
		dump_decimal(fp, cfg->pricing[i].input_per_million);
		fputs("; output ", fp);
		dump_decimal(fp, cfg->pricing[i].output_per_million);
		fputs(" }\n", fp);
	}
	for (i = 0; i < cfg->ntenants; i++)
		dump_tenant(fp, &cfg->tenants[i]);
}
