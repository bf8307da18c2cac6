/*
 * config.h: palyrad.conf, parsed in the supervisor only (DESIGN section 10,
 * palyrad.conf(5)). The parser reads the whole file into memory, tokenizes
 * it with line and column tracking and fills struct cfg; every error is
 * reported as "FILE:LINE:COL: message" and nothing is half-applied.
 */
#ifndef PALYRA_CONFIG_H
#define PALYRA_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define CFG_ERR_LEN 512
/* The base-url of providers of type openai and anthropic without one. */
#define CFG_OPENAI_BASE_URL	"https://api.openai.com/v1"
#define CFG_ANTHROPIC_BASE_URL	"https://api.anthropic.com/v1"

enum cfg_provider_type {
	CFG_PROVIDER_OFFLINE = 0,
	CFG_PROVIDER_OPENAI,
	CFG_PROVIDER_ANTHROPIC,
	CFG_PROVIDER_OPENAI_COMPATIBLE,
};

enum cfg_durability {
	CFG_DURABILITY_FULL = 0,
	CFG_DURABILITY_NORMAL,
};

enum cfg_tool_policy {
	CFG_TOOL_ALLOW = 0,
	CFG_TOOL_ASK,
	CFG_TOOL_DENY,
};

enum cfg_budget_unit { CFG_BUDGET_TOKENS = 0, CFG_BUDGET_COST };
enum cfg_budget_period { CFG_PERIOD_DAY = 0, CFG_PERIOD_MONTH, CFG_PERIOD_TOTAL };
enum cfg_budget_scope {
	CFG_BUDGET_TENANT = 0,
	CFG_BUDGET_AGENT,
	CFG_BUDGET_PRINCIPAL,
};

/* Where a directive stood, for later diagnostics. */
struct cfg_pos {
	const char	*file;		/* points into cfg->files */
	int		 line;
	int		 col;
};

struct cfg_listen {
	int		 set;
	char		*host;		/* numeric address or "localhost" */
	uint16_t	 port;		/* 0: any free port */
	int		 tls;
	char		*tls_certificate;
	char		*tls_key;
	struct cfg_pos	 pos;
	struct cfg_pos	 tls_key_pos;	/* of "key", for the safety checks */
};

struct cfg_provider {
	char		*name;
	enum cfg_provider_type type;
	char		*base_url;
	char		*api_key;	/* "env:NAME", "file:PATH" or "vault:NAME" */
	char		*model;
	char		*embedding_model;	/* NULL: no embeddings through it */
	uint64_t	 timeout_connect_ms;
	uint64_t	 timeout_first_byte_ms;
	uint64_t	 timeout_idle_ms;
	uint64_t	 timeout_total_ms;
	uint32_t	 max_concurrent;
	uint32_t	 token_delay_ms;	/* offline only: between tokens */
	struct cfg_pos	 pos;
	struct cfg_pos	 api_key_pos;	/* of "api-key", for the safety checks */
};

struct cfg_pricing {
	char		*model;
	double		 input_per_million;
	double		 output_per_million;
	struct cfg_pos	 pos;
};

struct cfg_tool_rule {
	char		*pattern;	/* tool name or glob */
	enum cfg_tool_policy policy;
};

/* One entry of an http-fetch allow-list: allow "HOST[:PORT]" [private]. */
struct cfg_fetch_allow {
	char		*host;		/* lower case; IPv6 without brackets */
	uint16_t	 port;		/* 0: 80 and 443 */
	int		 allow_private;
	struct cfg_pos	 pos;
};

/* An http-fetch { } block (tenant or agent); 0 values: the defaults. */
struct cfg_fetch {
	int		 set;		/* the block was given */
	struct cfg_fetch_allow *allow;
	size_t		 nallow;
	uint64_t	 max_bytes;
	uint64_t	 timeout_ms;
	char		**content_types; /* "type/sub", or "type/" and a star */
	size_t		 ncontent_types;
	uint32_t	 max_redirects;
	int		 has_max_redirects; /* 0 is a valid max-redirects */
	struct cfg_pos	 pos;
};

/* A tenant's memory { } block (palyrad.conf(5)); 0 values: defaults. */
struct cfg_memory {
	int		 set;		/* the block was given */
	char		*embedder;	/* a provider; NULL: offline */
	uint64_t	 default_ttl_ms; /* 0: items never expire */
	uint64_t	 max_items;	/* 0: the default */
	struct cfg_pos	 embedder_pos;
	struct cfg_pos	 pos;
};

struct cfg_agent {
	char		*name;
	char		**providers;	/* ordered failover list */
	size_t		 nproviders;
	char		*system_prompt;
	uint32_t	 max_output_tokens;
	double		 temperature;
	uint32_t	 max_turns;		/* provider calls of a run */
	uint32_t	 max_tool_calls;	/* tool calls of a run */
	uint64_t	 max_wall_clock_ms;	/* a run's wall clock */
	struct cfg_tool_rule *tools;
	size_t		 ntools;
	uint64_t	 approval_timeout_ms;	/* 0: the worker's default */
	uint64_t	 client_tool_timeout_ms; /* 0: the worker's default */
	struct cfg_fetch fetch;		/* replaces the tenant's if set */
	/* memory-recall top-k N min-score F; 0 items: no recall. */
	uint32_t	 recall_top_k;
	double		 recall_min_score;
	struct cfg_pos	 pos;
};

/*
 * budget tokens|cost AMOUNT per PERIOD hard|soft [agent "A"] [principal "P"]
 * in a tenant block, or the same inside an agent block (agent scope).
 * amount: tokens, or USD for cost budgets.
 */
struct cfg_budget {
	enum cfg_budget_scope scope;
	char		*subject;	/* agent or principal; NULL: tenant */
	enum cfg_budget_unit unit;
	double		 amount;
	enum cfg_budget_period period;
	int		 hard;
	struct cfg_pos	 pos;
	struct cfg_pos	 subject_pos;	/* of an agent name, for checks */
};

struct cfg_tenant {
	char		*name;
	uint32_t	 workers;	/* 1..CFG_MAX_WORKERS, started lazily */
	uint64_t	 idle_timeout_ms; /* a worker idle this long exits; 0: never */
	uint64_t	 memory_limit;	/* bytes, 0: none */
	uint32_t	 pids_limit;	/* tasks, 0: none */
	uint32_t	 cpu_weight;	/* 1..10000, 0: the kernel's default */
	uint64_t	 journal_quota;	/* journal.db bytes, 0: none */
	int		 runtime;	/* from STATE/tenants.conf (admin API) */
	struct cfg_agent *agents;	/* the first is the default */
	size_t		 nagents;
	struct cfg_budget *budgets;	/* every scope, agent blocks' too */
	size_t		 nbudgets;
	char		*timezone;	/* tzdata name; NULL: UTC */
	struct cfg_fetch fetch;		/* the tenant's http-fetch block */
	struct cfg_memory memory;	/* the tenant's memory block */
	struct cfg_pos	 pos;
};

struct cfg {
	char		*user;		/* service user, NULL: none */
	char		*state_dir;	/* absolute after parsing */
	uint32_t	 worker_uid_min;
	uint32_t	 worker_uid_max;
	struct cfg_listen grpc;
	struct cfg_listen http;
	enum cfg_durability durability;
	uint64_t	 checkpoint_interval_ms;
	struct cfg_provider *providers;
	size_t		 nproviders;
	struct cfg_pricing *pricing;
	size_t		 npricing;
	struct cfg_tenant *tenants;
	size_t		 ntenants;
	char		**files;	/* every file read, for cfg_pos */
	size_t		 nfiles;
	struct cfg_pos	 state_dir_pos;	/* file NULL: the default state-dir */
};

/*
 * Parses path (and its includes). Relative paths inside are resolved
 * against base_dir (the directory palyrad was started in; NULL: the current
 * directory). Returns 0 and *out, or -1 with "FILE:LINE:COL: message" in
 * err (for a file that cannot be read: "FILE: message").
 */
int	cfg_load(const char *path, const char *base_dir, struct cfg **out,
	    char *err, size_t errlen);

/* Parses a buffer as if it were the file named name (tests, fuzzing). */
int	cfg_parse_buffer(const char *name, const char *buf, size_t len,
	    const char *base_dir, struct cfg **out, char *err, size_t errlen);

void	cfg_free(struct cfg *);

const struct cfg_tenant *cfg_tenant_find(const struct cfg *, const char *name);
const struct cfg_provider *cfg_provider_find(const struct cfg *,
	    const char *name);

/* Checks a tenant, agent or principal name: [A-Za-z0-9._-], 1..NAME_MAX_LEN,
 * not starting with '.' or '-'. Returns 1 if valid. */
int	cfg_name_valid(const char *name);
/* Checks a vault secret's name (gateway.proto VaultService): 1 to 128
 * bytes of [A-Za-z0-9._-], not starting with '.'. Returns 1 if valid. */
int	cfg_vault_name_valid(const char *name);

/* The budget id of the shared contract: "tenant:UNIT:PERIOD",
 * "agent:NAME:UNIT:PERIOD" or "principal:NAME:UNIT:PERIOD". Returns the
 * length snprintf would write. */
int	cfg_budget_id(const struct cfg_budget *, char *buf, size_t len);

/* The budget's limit as sent to workers and journald: tokens, or
 * micro-USD (rounded to the nearest) for cost budgets. */
uint64_t cfg_budget_limit(const struct cfg_budget *);

/* Where tzdata names are looked up (palyrad.conf(5) timezone). */
#define CFG_ZONEINFO_DIR	"/usr/share/zoneinfo"

/* Prints the effective configuration in the file's syntax (palyrad -n -v). */
void	cfg_dump(const struct cfg *, void *stdio_file);

#endif
