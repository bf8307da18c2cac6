/*
 * config_int.h: declarations private to the palyrad.conf parser, shared by
 * config.c, config_values.c, config_directives.c, config_tenant.c and
 * config_dump.c. Only those files include it; the rest of the tree uses
 * config.h. Everything here runs in the supervisor only, before any child
 * exists.
 */
#ifndef PALYRA_CONFIG_INT_H
#define PALYRA_CONFIG_INT_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "config_lex.h"
#include "limits.h"

#define DEFAULT_STATE_DIR	"/var/lib/palyra"
#define DEFAULT_UID_MIN		200000
#define DEFAULT_UID_MAX		299999
#define DEFAULT_GRPC_PORT	7443
#define DEFAULT_HTTP_PORT	7142
#define DEFAULT_CHECKPOINT_MS	(10 * 60 * 1000)
#define DEFAULT_CONNECT_MS	(5 * 1000)
#define DEFAULT_FIRST_BYTE_MS	(30 * 1000)
#define DEFAULT_IDLE_MS		(30 * 1000)
#define DEFAULT_TOTAL_MS	(10 * 60 * 1000)
#define DEFAULT_MAX_CONCURRENT	16
#define DEFAULT_MAX_OUTPUT	1024
#define DEFAULT_TEMPERATURE	1.0
#define DEFAULT_AGENT		"assistant"
#define DEFAULT_PROVIDER	"offline"
#define DEFAULT_PROMPT		"You are a helpful assistant."

#define MS_PER_DAY		(24ULL * 60 * 60 * 1000)
#define MAX_STRING_VALUE	256	/* model names, tool patterns */
#define MAX_URL_LEN		2048
#define MAX_USER_LEN		32
#define WORKERS_MAX		CFG_MAX_WORKERS
#define DEFAULT_IDLE_TIMEOUT_MS	(5 * 60 * 1000)
#define IDLE_TIMEOUT_MAX	(7 * MS_PER_DAY)
#define MAX_CONCURRENT_MAX	1024
#define MAX_OUTPUT_MAX		(1024 * 1024)
#define MEMORY_LIMIT_MIN	(1ULL << 20)
/* journal-quota: a journal.db smaller than 64K holds hardly a schema. */
#define JOURNAL_QUOTA_MIN	(256ULL << 10)	/* an empty journal.db is ~200K */
#define JOURNAL_QUOTA_MAX	(1ULL << 50)
#define MEMORY_LIMIT_MAX	(1ULL << 50)
#define PIDS_LIMIT_MAX		1000000
#define CPU_WEIGHT_MAX		10000	/* cgroup v2 cpu.weight's range */
#define PRICE_MAX		1e6
#define COST_BUDGET_MAX		1e12
#define TOKEN_BUDGET_MAX	(1ULL << 53)	/* exact in a double */
#define APPROVAL_TIMEOUT_MIN	1000
#define APPROVAL_TIMEOUT_MAX	MS_PER_DAY
#define CLIENT_TOOL_TIMEOUT_MIN	1000
#define CLIENT_TOOL_TIMEOUT_MAX	(60 * 60 * 1000)
#define FETCH_MAX_SIZE_MAX	(64ULL << 20)
#define FETCH_TIMEOUT_MIN	1000
#define FETCH_TIMEOUT_MAX	(5 * 60 * 1000)
#define FETCH_REDIRECTS_MAX	10
#define FETCH_HOST_MAX		253	/* a DNS name */

#define NUNITS(a)	(sizeof(a) / sizeof((a)[0]))

enum block_kind {
	BLOCK_TOP = 0,
	BLOCK_JOURNAL,
	BLOCK_PROVIDER,
	BLOCK_PRICING,
	BLOCK_TENANT,
	BLOCK_AGENT,
	BLOCK_TLS,
	BLOCK_FETCH,
	BLOCK_MEMORY,
	BLOCK_COUNT,
};

struct file_id {
	dev_t		 dev;
	ino_t		 ino;
};

/* An agent's reference to a provider, checked once every file is read. */
struct provider_ref {
	char		*name;
	const char	*file;
	int		 line;
	int		 col;
};

struct parser {
	struct cfg	*cfg;
	char		*base_dir;	/* absolute, no trailing slash */
	char		*err;
	size_t		 errlen;
	int		 depth;		/* open blocks and includes */
	struct file_id	 open_files[CFG_MAX_DEPTH + 1];
	size_t		 nopen;
	size_t		 total_bytes;
	unsigned int	 seen_top;
	unsigned int	 seen_timeouts;	/* of the current provider */
	struct cfg_pos	 token_delay_pos; /* of the current provider */
	struct provider_ref *refs;
	size_t		 nrefs;
	struct cfg_tenant *tenant;	/* of the tenant block being read */
};

/* What a handler works on: the block, its object, its seen directives. */
struct frame {
	enum block_kind	 kind;
	void		*object;
	unsigned int	*seen;
};

typedef int (*directive_fn)(struct parser *, struct cfg_lexer *,
    const struct cfg_token *, const struct frame *);

#define D_ONCE	0x1	/* may appear once per block */
#define D_CHAIN	0x2	/* fixed arity: a directive may follow */

struct directive {
	const char	*name;
	directive_fn	 fn;
	unsigned int	 flags;
};

struct block {
	const char	*where;		/* for "not allowed" messages */
	const struct directive *directives;
	size_t		 ndirectives;
};

#define CFG_BLOCK(where, table)	{ where, table, NUNITS(table) }

/*
 * config.c: errors, memory, blocks and includes. The error functions
 * record the first error as "FILE:LINE:COL: message" and return -1.
 */
int	cfg_parser_error(struct parser *, const char *file, int line, int col,
	    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
int	cfg_out_of_memory(struct parser *, struct cfg_lexer *,
	    const struct cfg_token *);

#define TOKEN_ERROR(p, lx, t, ...)					\
	cfg_parser_error((p), (lx)->file, (t)->line, (t)->col, __VA_ARGS__)

void	*cfg_array_append(void *base, size_t *count, size_t size);
char	*cfg_path_join(const char *base, const char *path);
int	cfg_open_block(struct parser *, struct cfg_lexer *,
	    const struct cfg_token *kw, const struct frame *,
	    struct cfg_token *brace);
int	cfg_directive_include(struct parser *, struct cfg_lexer *,
	    const struct cfg_token *, const struct frame *);

/* config_values.c: arguments and the values they hold; 0 or -1. */
int	cfg_printable_ascii(const char *s, size_t maxlen);
int	cfg_missing_argument(struct parser *, struct cfg_lexer *,
	    const struct cfg_token *kw);
int	cfg_take_arg(struct parser *, struct cfg_lexer *,
	    const struct cfg_token *kw, struct cfg_token *out);
int	cfg_arg_follows(struct cfg_lexer *, int *more);
int	cfg_dup_string(struct parser *, struct cfg_lexer *,
	    const struct cfg_token *, char **out);
int	cfg_dup_path(struct parser *, struct cfg_lexer *,
	    const struct cfg_token *kw, const struct cfg_token *, char **out);
int	cfg_parse_digits(const char *s, size_t n, uint64_t *out);
void	cfg_format_duration(char *buf, size_t len, uint64_t ms);
void	cfg_format_size(char *buf, size_t len, uint64_t bytes);
int	cfg_out_of_range(struct parser *, struct cfg_lexer *,
	    const struct cfg_token *kw, const struct cfg_token *,
	    const char *min, const char *max);
int	cfg_take_uint(struct parser *, struct cfg_lexer *,
	    const struct cfg_token *kw, uint64_t min, uint64_t max,
	    uint64_t *out);
int	cfg_take_duration(struct parser *, struct cfg_lexer *,
	    const struct cfg_token *kw, uint64_t min, uint64_t max,
	    uint64_t *out);
int	cfg_take_size(struct parser *, struct cfg_lexer *,
	    const struct cfg_token *kw, uint64_t min, uint64_t max,
	    uint64_t *out);
int	cfg_take_decimal(struct parser *, struct cfg_lexer *,
	    const struct cfg_token *kw, double min, double max, double *out);
int	cfg_take_keyword(struct parser *, struct cfg_lexer *,
	    const struct cfg_token *kw, const char *const *words,
	    size_t nwords, const char *expected, int *out);
int	cfg_take_name(struct parser *, struct cfg_lexer *,
	    const struct cfg_token *kw, struct cfg_token *out);
void	cfg_set_pos(struct cfg_pos *, struct cfg_lexer *,
	    const struct cfg_token *);

/* config_directives.c: top level, listen, journal, providers, pricing. */
extern const char *const cfg_provider_types[4];
extern const struct block cfg_top_block;
extern const struct block cfg_journal_block;
extern const struct block cfg_provider_block;
extern const struct block cfg_pricing_block;
extern const struct block cfg_tls_block;

/* config_tenant.c: tenants, their agents and budgets. */
int	cfg_directive_tenant(struct parser *, struct cfg_lexer *,
	    const struct cfg_token *, const struct frame *);
extern const struct block cfg_tenant_block;
extern const struct block cfg_agent_block;

/* config_fetch.c: http-fetch blocks (tenant and agent) and timezone. */
int	cfg_directive_http_fetch(struct parser *, struct cfg_lexer *,
	    const struct cfg_token *, const struct frame *);
int	cfg_directive_timezone(struct parser *, struct cfg_lexer *,
	    const struct cfg_token *, const struct frame *);
void	cfg_fetch_free(struct cfg_fetch *);
extern const struct block cfg_fetch_block;

/* config_memory.c: the tenant's memory block and memory-recall. */
int	cfg_directive_memory(struct parser *, struct cfg_lexer *,
	    const struct cfg_token *, const struct frame *);
int	cfg_directive_memory_recall(struct parser *, struct cfg_lexer *,
	    const struct cfg_token *, const struct frame *);
/* Once every file is read: each embedder names a provider with an
 * embedding-model, or one of type offline. 0 or -1. */
int	cfg_memory_check(struct parser *);
extern const struct block cfg_memory_block;

#endif /* PALYRA_CONFIG_INT_H */
