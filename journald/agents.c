/*
 * agents.c: the GatewayService agent methods at journald (ListAgents,
 * GetAgent, CreateAgent, UpdateAgent, DeleteAgent) and the lookup of the
 * runtime agent a RunStream start names, for the front (front/agents.c).
 *
 * Runs in palyra-journald. A tenant's agents are those of palyrad.conf,
 * which the supervisor sends (IPC_TENANT_AGENTS, read-only here), and the
 * runtime ones in the agents table of its journal.db, whose config column
 * is the JSON object {"system_prompt", "providers", "max_output_tokens",
 * "temperature", "max_turns", "max_tool_calls", "max_wall_clock_ms"} (a
 * row written before the three limits existed has the defaults).
 * Journald is the one place that decodes the client's request messages
 * of these methods; the front checked the token and its role. Writes go
 * through the tenant's connection inside its batch, which is committed at
 * once; a write is answered only once it is stored.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "journald.h"
#include "log.h"
#include "palyra/v1/gateway.pb-c.h"

#define OP(name) PALYRA__IPC__JOURNAL_AGENT_REQUEST__OP__##name

/* gRPC status codes of the replies. */
#define ST_OK 0
#define ST_INVALID_ARGUMENT 3
#define ST_NOT_FOUND 5
#define ST_ALREADY_EXISTS 6
#define ST_RESOURCE_EXHAUSTED 8
#define ST_FAILED_PRECONDITION 9
#define ST_UNAVAILABLE 14

#define SELECT_SQL                                                             \
	"SELECT name, json_extract(config, '$.system_prompt'),"                \
	" json_extract(config, '$.providers'),"                                \
	" json_extract(config, '$.max_output_tokens'),"                        \
	" json_extract(config, '$.temperature'), created_ms, updated_ms,"      \
	" json_extract(config, '$.max_turns'),"                                \
	" json_extract(config, '$.max_tool_calls'),"                           \
	" json_extract(config, '$.max_wall_clock_ms')"                         \
	" FROM agents"
#define CONFIG_JSON                                                            \
	"json_object('system_prompt', ?2, 'providers', json(?3),"              \
	" 'max_output_tokens', ?4, 'temperature', ?5, 'max_turns', ?7,"        \
	" 'max_tool_calls', ?8, 'max_wall_clock_ms', ?9)"

/* One runtime agent as read from the table (owned strings). */
struct agent_row {
	Palyra__V1__Agent agent;
	char *providers[CFG_MAX_FAILOVER];
};

static void
send_reply(struct jnl_ctx *ctx, uint32_t request_id, uint32_t status,
    const char *message, const ProtobufCMessage *response,
    const Palyra__Ipc__AgentConfig *agent)
{
	Palyra__Ipc__JournalAgentReply reply =
	    PALYRA__IPC__JOURNAL_AGENT_REPLY__INIT;
	uint8_t *buf = NULL;
	size_t len;
	int rc;

	if (ctx->front == NULL)
		return;
	if (response != NULL) {
		len = protobuf_c_message_get_packed_size(response);
		if (len > IPC_MAX_PAYLOAD - 1024) {
			status = ST_RESOURCE_EXHAUSTED;
			message = "the answer is too large";
		} else if ((buf = malloc(len + 1)) == NULL) {
			status = ST_UNAVAILABLE;
			message = "out of memory";
		} else {
			protobuf_c_message_pack(response, buf);
			reply.response.data = buf;
			reply.response.len = len;
		}
	}
	reply.grpc_status = status;
	reply.message = (char *)(message != NULL ? message : "");
	reply.agent = (Palyra__Ipc__AgentConfig *)agent;
	if ((rc = ipc_chan_send(ctx->front, IPC_JOURNAL_AGENT_REPLY, request_id,
		 &reply.base, NULL, 0)) < 0)
		log_warn(
		    "front: cannot send an agent reply: %s", strerror(-rc));
	free(buf);
}

static void
send_status(struct jnl_ctx *ctx, uint32_t request_id, uint32_t status,
    const char *message)
{
	send_reply(ctx, request_id, status, message, NULL, NULL);
}

static const Palyra__Ipc__AgentConfig *
config_agent(const struct jnl_tenant *t, const char *name)
{
	size_t i;

	if (t->agents == NULL)
		return NULL;
	for (i = 0; i < t->agents->n_agents; i++)
		if (strcmp(t->agents->agents[i]->name, name) == 0)
			return t->agents->agents[i];
	return NULL;
}

static void
agent_from_config(Palyra__V1__Agent *a, const Palyra__Ipc__AgentConfig *c)
{
	palyra__v1__agent__init(a);
	a->name = c->name;
	a->system_prompt = c->system_prompt;
	a->n_providers = c->n_providers;
	a->providers = c->providers;
	a->max_output_tokens = c->max_output_tokens;
	a->temperature = c->temperature;
	a->max_turns = c->has_limits ? c->max_turns : AGENT_TURNS_DEFAULT;
	a->set_max_tool_calls = 1;
	a->max_tool_calls = c->has_limits ? c->max_tool_calls :
	    AGENT_TOOL_CALLS_DEFAULT;
	a->max_wall_clock_ms = c->has_limits ? c->max_wall_clock_ms :
	    AGENT_WALL_CLOCK_DEFAULT_MS;
	a->source = "config";
}

static void
row_clear(struct agent_row *r)
{
	size_t i;

	free(r->agent.name);
	free(r->agent.system_prompt);
	for (i = 0; i < CFG_MAX_FAILOVER; i++)
		free(r->providers[i]);
	memset(r, 0, sizeof(*r));
}

/*
 * Splits the stored providers array (written by providers_json() from
 * valid names only) into r->providers. Returns 0 or -EINVAL.
 */
static int
providers_parse(struct agent_row *r, const char *json)
{
	const char *p = json, *q;
	size_t n = 0, len;

	if (json == NULL || *p++ != '[')
		return -EINVAL;
	while (*p == '"') {
		if ((q = strchr(p + 1, '"')) == NULL || n == CFG_MAX_FAILOVER)
			return -EINVAL;
		len = (size_t)(q - p - 1);
		if ((r->providers[n] = strndup(p + 1, len)) == NULL ||
		    !cfg_name_valid(r->providers[n]))
			return -EINVAL;
		n++;
		p = q + 1;
		if (*p == ',')
			p++;
	}
	if (strcmp(p, "]") != 0 || n == 0)
		return -EINVAL;
	r->agent.n_providers = n;
	r->agent.providers = r->providers;
	return 0;
}

/* A limit column: its default when NULL (a row older than the limits). */
static int64_t
column_or(sqlite3_stmt *st, int col, int64_t def)
{
	return sqlite3_column_type(st, col) == SQLITE_NULL ? def :
	    sqlite3_column_int64(st, col);
}

/* Reads one SELECT_SQL row. Returns 0 or -EINVAL (a malformed row). */
static int
row_read(sqlite3_stmt *st, struct agent_row *r)
{
	const char *name = (const char *)sqlite3_column_text(st, 0);
	const char *prompt = (const char *)sqlite3_column_text(st, 1);
	int64_t max_output = sqlite3_column_int64(st, 3);
	int64_t turns = column_or(st, 7, AGENT_TURNS_DEFAULT);
	int64_t calls = column_or(st, 8, AGENT_TOOL_CALLS_DEFAULT);
	int64_t wall = column_or(st, 9, (int64_t)AGENT_WALL_CLOCK_DEFAULT_MS);

	memset(r, 0, sizeof(*r));
	palyra__v1__agent__init(&r->agent);
	if (name == NULL || !cfg_name_valid(name) ||
	    (r->agent.name = strdup(name)) == NULL ||
	    (r->agent.system_prompt = strdup(prompt != NULL ? prompt : "")) ==
		NULL ||
	    providers_parse(r, (const char *)sqlite3_column_text(st, 2)) < 0 ||
	    max_output < 1 || max_output > AGENT_MAX_OUTPUT_MAX ||
	    turns < 1 || turns > AGENT_TURNS_MAX || calls < 0 ||
	    calls > AGENT_TOOL_CALLS_MAX ||
	    wall < (int64_t)AGENT_WALL_CLOCK_MIN_MS ||
	    wall > (int64_t)AGENT_WALL_CLOCK_MAX_MS)
		return -EINVAL;
	r->agent.max_turns = (uint32_t)turns;
	r->agent.set_max_tool_calls = 1;
	r->agent.max_tool_calls = (uint32_t)calls;
	r->agent.max_wall_clock_ms = (uint64_t)wall;
	r->agent.max_output_tokens = (uint32_t)max_output;
	r->agent.temperature = sqlite3_column_double(st, 4);
	r->agent.source = "runtime";
	r->agent.created_unix_ms = sqlite3_column_int64(st, 5);
	r->agent.updated_unix_ms = sqlite3_column_int64(st, 6);
	return 0;
}

/* Reads the runtime agent name. Returns 1 found, 0 not, -EIO. */
static int
runtime_get(struct jnl_tenant *t, const char *name, struct agent_row *r)
{
	sqlite3_stmt *st = NULL;
	int rc, found = -EIO;

	if (t->db == NULL ||
	    jnl_db_prepare(t->db, SELECT_SQL " WHERE name = ?", &st) < 0)
		return -EIO;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(st)) == SQLITE_DONE)
		found = 0;
	else if (rc == SQLITE_ROW)
		found = row_read(st, r) == 0 ? 1 : -EIO;
	sqlite3_finalize(st);
	if (found < 0)
		log_warn("%s: cannot read agent %s", t->name, name);
	return found;
}

static void
list_agents(struct jnl_ctx *ctx, struct jnl_tenant *t, uint32_t request_id)
{
	Palyra__V1__ListAgentsResponse resp =
	    PALYRA__V1__LIST_AGENTS_RESPONSE__INIT;
	size_t nconf = t->agents != NULL ? t->agents->n_agents : 0;
	Palyra__V1__Agent *conf = NULL, **ptrs = NULL;
	struct agent_row *rows = NULL;
	sqlite3_stmt *st = NULL;
	size_t n = 0, i;
	int rc = SQLITE_DONE;

	if ((conf = calloc(nconf + 1, sizeof(*conf))) == NULL ||
	    (rows = calloc(AGENT_RUNTIME_MAX + 1, sizeof(*rows))) == NULL ||
	    (ptrs = calloc(nconf + AGENT_RUNTIME_MAX + 1, sizeof(*ptrs))) ==
		NULL) {
		send_status(ctx, request_id, ST_UNAVAILABLE, "out of memory");
		goto out;
	}
	for (i = 0; i < nconf; i++) {
		agent_from_config(&conf[i], t->agents->agents[i]);
		ptrs[i] = &conf[i];
	}
	if (t->db == NULL ||
	    jnl_db_prepare(t->db, SELECT_SQL " ORDER BY name", &st) < 0) {
		send_status(
		    ctx, request_id, ST_UNAVAILABLE, "journal unavailable");
		goto out;
	}
	while (n < AGENT_RUNTIME_MAX && (rc = sqlite3_step(st)) == SQLITE_ROW)
		/* A config agent a reload added since hides a runtime one
		 * of its name, as it does for runs. */
		if (row_read(st, &rows[n]) == 0 &&
		    config_agent(t, rows[n].agent.name) == NULL) {
			ptrs[nconf + n] = &rows[n].agent;
			n++;
		} else
			row_clear(&rows[n]);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		send_status(
		    ctx, request_id, ST_UNAVAILABLE, "journal unavailable");
		goto out;
	}
	resp.n_agents = nconf + n;
	resp.agents = ptrs;
	send_reply(ctx, request_id, ST_OK, NULL, &resp.base, NULL);
out:
	sqlite3_finalize(st);
	for (i = 0; rows != NULL && i < n; i++)
		row_clear(&rows[i]);
	free(rows);
	free(conf);
	free(ptrs);
}

int
jnl_agent_runtime_config(struct jnl_tenant *t, const char *name,
    Palyra__Ipc__AgentConfig **out)
{
	Palyra__Ipc__AgentConfig run = PALYRA__IPC__AGENT_CONFIG__INIT;
	struct agent_row r;
	uint8_t *buf;
	size_t len;
	int found;

	*out = NULL;
	if (config_agent(t, name) != NULL)
		return 0;
	memset(&r, 0, sizeof(r));
	if ((found = runtime_get(t, name, &r)) <= 0)
		return found;
	run.name = r.agent.name;
	run.system_prompt = r.agent.system_prompt;
	run.n_providers = r.agent.n_providers;
	run.providers = r.agent.providers;
	run.max_output_tokens = r.agent.max_output_tokens;
	run.temperature = r.agent.temperature;
	run.max_turns = r.agent.max_turns;
	run.max_tool_calls = r.agent.max_tool_calls;
	run.max_wall_clock_ms = r.agent.max_wall_clock_ms;
	run.has_limits = 1;
	/* An owned copy, freed like any unpacked message. */
	len = protobuf_c_message_get_packed_size(&run.base);
	if ((buf = malloc(len + 1)) != NULL) {
		protobuf_c_message_pack(&run.base, buf);
		*out = palyra__ipc__agent_config__unpack(NULL, len, buf);
		free(buf);
	}
	row_clear(&r);
	return *out != NULL ? 1 : -ENOMEM;
}

/* GET and RESOLVE (resolve: the run's AgentConfig, runtime agents only). */
static void
get_agent(struct jnl_ctx *ctx, struct jnl_tenant *t, uint32_t request_id,
    const char *name, int resolve)
{
	const Palyra__Ipc__AgentConfig *c = config_agent(t, name);
	Palyra__Ipc__AgentConfig run = PALYRA__IPC__AGENT_CONFIG__INIT;
	Palyra__V1__Agent a;
	struct agent_row r;
	int found;

	if (c != NULL && !resolve) {
		agent_from_config(&a, c);
		send_reply(ctx, request_id, ST_OK, NULL, &a.base, NULL);
		return;
	}
	if (c != NULL) {
		send_status(ctx, request_id, ST_OK, NULL);
		return;
	}
	memset(&r, 0, sizeof(r));
	if ((found = runtime_get(t, name, &r)) < 0)
		send_status(
		    ctx, request_id, ST_UNAVAILABLE, "journal unavailable");
	else if (found == 0 && resolve)
		send_status(ctx, request_id, ST_OK, NULL);
	else if (found == 0)
		send_status(ctx, request_id, ST_NOT_FOUND, "unknown agent");
	else if (resolve) {
		run.name = r.agent.name;
		run.system_prompt = r.agent.system_prompt;
		run.n_providers = r.agent.n_providers;
		run.providers = r.agent.providers;
		run.max_output_tokens = r.agent.max_output_tokens;
		run.temperature = r.agent.temperature;
		run.max_turns = r.agent.max_turns;
		run.max_tool_calls = r.agent.max_tool_calls;
		run.max_wall_clock_ms = r.agent.max_wall_clock_ms;
		run.has_limits = 1;
		send_reply(ctx, request_id, ST_OK, NULL, NULL, &run);
	} else
		send_reply(ctx, request_id, ST_OK, NULL, &r.agent.base, NULL);
	row_clear(&r);
}

/* Returns NULL when the agent's settings are acceptable, else why not. */
static const char *
agent_invalid(const struct jnl_tenant *t, const Palyra__V1__Agent *a)
{
	size_t i, j;
	int known;

	if (strlen(a->system_prompt) > AGENT_PROMPT_MAX)
		return "system_prompt longer than 16 KiB";
	if (a->n_providers == 0)
		return "an agent needs a provider";
	if (a->n_providers > CFG_MAX_FAILOVER)
		return "too many providers";
	for (i = 0; i < a->n_providers; i++) {
		if (!cfg_name_valid(a->providers[i]))
			return "invalid provider name";
		known = 0;
		for (j = 0; t->agents != NULL && j < t->agents->n_providers;
		     j++)
			if (strcmp(t->agents->providers[j], a->providers[i]) ==
			    0)
				known = 1;
		if (!known)
			return "unknown provider";
	}
	if (a->max_output_tokens < 1 ||
	    a->max_output_tokens > AGENT_MAX_OUTPUT_MAX)
		return "max_output_tokens must be 1 to 1048576";
	if (!(a->temperature >= 0 && a->temperature <= AGENT_TEMPERATURE_MAX))
		return "temperature must be 0 to 2";
	if (a->max_turns < 1 || a->max_turns > AGENT_TURNS_MAX)
		return "max_turns must be 1 to 64";
	if (a->max_tool_calls > AGENT_TOOL_CALLS_MAX)
		return "max_tool_calls must be 0 to 1024";
	if (a->max_wall_clock_ms < AGENT_WALL_CLOCK_MIN_MS ||
	    a->max_wall_clock_ms > AGENT_WALL_CLOCK_MAX_MS)
		return "max_wall_clock_ms must be 1000 to 86400000";
	return NULL;
}

/* The providers as a JSON array; names are valid, so need no escaping. */
static char *
providers_json(const Palyra__V1__Agent *a)
{
	size_t i, size = 3, off;
	char *s;

	for (i = 0; i < a->n_providers; i++)
		size += strlen(a->providers[i]) + 3;
	if ((s = malloc(size)) == NULL)
		return NULL;
	off = (size_t)snprintf(s, size, "[");
	for (i = 0; i < a->n_providers; i++)
		off += (size_t)snprintf(s + off, size - off, "%s\"%s\"",
		    i > 0 ? "," : "", a->providers[i]);
	snprintf(s + off, size - off, "]");
	return s;
}

static int64_t
runtime_count(struct jnl_tenant *t)
{
	sqlite3_stmt *st = NULL;
	int64_t n = -1;

	if (jnl_db_prepare(t->db, "SELECT count(*) FROM agents", &st) == 0 &&
	    sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

/*
 * Writes the agent (insert for create, else update) in the tenant's batch
 * and commits it. Returns 0, -EEXIST (create of a stored name), -ENOENT
 * (update of a missing one) or -EIO.
 */
static int
agent_store(struct jnl_ctx *ctx, struct jnl_tenant *t,
    const Palyra__V1__Agent *a, int create, int64_t now)
{
	sqlite3_stmt *st = NULL;
	char *providers;
	int rc = -EIO;

	if ((providers = providers_json(a)) == NULL)
		return -EIO;
	if (t->db == NULL || jnl_batch_begin(ctx, t) < 0)
		goto out;
	jnl_schedule_commit(ctx);
	if (jnl_db_prepare(t->db,
		create ? "INSERT OR IGNORE INTO agents"
			 " (name, config, created_ms, updated_ms)"
			 " VALUES (?1, " CONFIG_JSON ", ?6, ?6)"
		       : "UPDATE agents SET config = " CONFIG_JSON ","
			 " updated_ms = max(created_ms, ?6) WHERE name = ?1",
		&st) < 0)
		goto out;
	sqlite3_bind_text(st, 1, a->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, a->system_prompt, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, providers, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, a->max_output_tokens);
	sqlite3_bind_double(st, 5, a->temperature);
	sqlite3_bind_int64(st, 6, now);
	sqlite3_bind_int64(st, 7, a->max_turns);
	sqlite3_bind_int64(st, 8, a->max_tool_calls);
	sqlite3_bind_int64(st, 9, (int64_t)a->max_wall_clock_ms);
	if (sqlite3_step(st) != SQLITE_DONE)
		goto out;
	rc = sqlite3_changes(t->db) == 1 ? 0 : create ? -EEXIST : -ENOENT;
	sqlite3_finalize(st);
	st = NULL;
	/* Stored before it is told: a failed commit rolls the write back
	 * with the batch. */
	jnl_commit_all(ctx);
out:
	sqlite3_finalize(st);
	free(providers);
	return rc;
}

static void
answer_stored(struct jnl_ctx *ctx, struct jnl_tenant *t, uint32_t request_id,
    const char *name)
{
	struct agent_row r;
	int found;

	memset(&r, 0, sizeof(r));
	found = runtime_get(t, name, &r);
	if (found <= 0)
		send_status(
		    ctx, request_id, ST_UNAVAILABLE, "journal unavailable");
	else
		send_reply(ctx, request_id, ST_OK, NULL, &r.agent.base, NULL);
	row_clear(&r);
}

static void
create_agent(struct jnl_ctx *ctx, struct jnl_tenant *t, uint32_t request_id,
    const Palyra__V1__CreateAgentRequest *req)
{
	Palyra__V1__Agent a;
	const char *why;
	int64_t count;
	int rc;

	if (req->agent == NULL || !cfg_name_valid(req->agent->name)) {
		send_status(
		    ctx, request_id, ST_INVALID_ARGUMENT, "invalid agent name");
		return;
	}
	a = *req->agent;
	if (a.max_output_tokens == 0)
		a.max_output_tokens = AGENT_MAX_OUTPUT_DEFAULT;
	if (a.max_turns == 0)
		a.max_turns = AGENT_TURNS_DEFAULT;
	if (!a.set_max_tool_calls) {
		a.set_max_tool_calls = 1;
		a.max_tool_calls = AGENT_TOOL_CALLS_DEFAULT;
	}
	if (a.max_wall_clock_ms == 0)
		a.max_wall_clock_ms = AGENT_WALL_CLOCK_DEFAULT_MS;
	if ((why = agent_invalid(t, &a)) != NULL) {
		send_status(ctx, request_id, ST_INVALID_ARGUMENT, why);
		return;
	}
	if (config_agent(t, a.name) != NULL) {
		send_status(ctx, request_id, ST_ALREADY_EXISTS,
		    "an agent of that name exists (configuration)");
		return;
	}
	if (t->db == NULL || (count = runtime_count(t)) < 0) {
		send_status(
		    ctx, request_id, ST_UNAVAILABLE, "journal unavailable");
		return;
	}
	if (count >= AGENT_RUNTIME_MAX) {
		send_status(
		    ctx, request_id, ST_RESOURCE_EXHAUSTED, "too many agents");
		return;
	}
	rc = agent_store(ctx, t, &a, 1, (int64_t)jnl_now_ms());
	if (rc == -EEXIST)
		send_status(ctx, request_id, ST_ALREADY_EXISTS,
		    "an agent of that name exists");
	else if (rc < 0)
		send_status(
		    ctx, request_id, ST_UNAVAILABLE, "journal unavailable");
	else {
		log_info("%s: agent %s created", t->name, a.name);
		answer_stored(ctx, t, request_id, a.name);
	}
}

static void
update_agent(struct jnl_ctx *ctx, struct jnl_tenant *t, uint32_t request_id,
    const Palyra__V1__UpdateAgentRequest *req)
{
	struct agent_row r;
	Palyra__V1__Agent a;
	const char *why;
	int found, rc;

	if (!cfg_name_valid(req->name)) {
		send_status(
		    ctx, request_id, ST_INVALID_ARGUMENT, "invalid agent name");
		return;
	}
	if (config_agent(t, req->name) != NULL) {
		send_status(ctx, request_id, ST_FAILED_PRECONDITION,
		    "the agent is defined in the configuration");
		return;
	}
	memset(&r, 0, sizeof(r));
	if ((found = runtime_get(t, req->name, &r)) <= 0) {
		send_status(ctx, request_id,
		    found == 0 ? ST_NOT_FOUND : ST_UNAVAILABLE,
		    found == 0 ? "unknown agent" : "journal unavailable");
		row_clear(&r);
		return;
	}
	a = r.agent;
	if (req->system_prompt[0] != '\0' || req->clear_system_prompt)
		a.system_prompt = req->system_prompt;
	if (req->n_providers > 0) {
		a.n_providers = req->n_providers;
		a.providers = req->providers;
	}
	if (req->max_output_tokens != 0)
		a.max_output_tokens = req->max_output_tokens;
	if (req->set_temperature)
		a.temperature = req->temperature;
	if (req->max_turns != 0)
		a.max_turns = req->max_turns;
	if (req->set_max_tool_calls)
		a.max_tool_calls = req->max_tool_calls;
	if (req->max_wall_clock_ms != 0)
		a.max_wall_clock_ms = req->max_wall_clock_ms;
	if ((why = agent_invalid(t, &a)) != NULL) {
		send_status(ctx, request_id, ST_INVALID_ARGUMENT, why);
		row_clear(&r);
		return;
	}
	rc = agent_store(ctx, t, &a, 0, (int64_t)jnl_now_ms());
	row_clear(&r);
	if (rc == -ENOENT)
		send_status(ctx, request_id, ST_NOT_FOUND, "unknown agent");
	else if (rc < 0)
		send_status(
		    ctx, request_id, ST_UNAVAILABLE, "journal unavailable");
	else {
		log_info("%s: agent %s updated", t->name, req->name);
		answer_stored(ctx, t, request_id, req->name);
	}
}

static void
delete_agent(struct jnl_ctx *ctx, struct jnl_tenant *t, uint32_t request_id,
    const char *name)
{
	Palyra__V1__DeleteAgentResponse resp =
	    PALYRA__V1__DELETE_AGENT_RESPONSE__INIT;
	sqlite3_stmt *st = NULL;
	int changed = -1;

	if (!cfg_name_valid(name)) {
		send_status(
		    ctx, request_id, ST_INVALID_ARGUMENT, "invalid agent name");
		return;
	}
	if (config_agent(t, name) != NULL) {
		send_status(ctx, request_id, ST_FAILED_PRECONDITION,
		    "the agent is defined in the configuration");
		return;
	}
	if (t->db != NULL && jnl_batch_begin(ctx, t) == 0) {
		jnl_schedule_commit(ctx);
		if (jnl_db_prepare(
			t->db, "DELETE FROM agents WHERE name = ?", &st) == 0) {
			sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
			if (sqlite3_step(st) == SQLITE_DONE)
				changed = sqlite3_changes(t->db);
		}
		sqlite3_finalize(st);
		jnl_commit_all(ctx);
	}
	if (changed < 0)
		send_status(
		    ctx, request_id, ST_UNAVAILABLE, "journal unavailable");
	else if (changed == 0)
		send_status(ctx, request_id, ST_NOT_FOUND, "unknown agent");
	else {
		log_info("%s: agent %s deleted", t->name, name);
		send_reply(ctx, request_id, ST_OK, NULL, &resp.base, NULL);
	}
}

void
jnl_agent_request(struct jnl_ctx *ctx, const struct ipc_msg *m)
{
	const Palyra__Ipc__JournalAgentRequest *req =
	    (const Palyra__Ipc__JournalAgentRequest *)m->msg;
	const uint8_t *data = req->request.data;
	size_t len = req->request.len;
	uint32_t id = m->hdr.request_id;
	ProtobufCMessage *in = NULL;
	const ProtobufCMessageDescriptor *desc = NULL;
	struct jnl_tenant *t;

	if (!jnl_name_valid(req->tenant) ||
	    (t = jnl_tenant_find(ctx, req->tenant)) == NULL) {
		send_status(ctx, id, ST_NOT_FOUND, "unknown tenant");
		return;
	}
	switch (req->op) {
	case OP(LIST):
		list_agents(ctx, t, id);
		return;
	case OP(RESOLVE):
		if (!cfg_name_valid(req->name))
			send_status(ctx, id, ST_OK, NULL);
		else
			get_agent(ctx, t, id, req->name, 1);
		return;
	case OP(GET):
		desc = &palyra__v1__get_agent_request__descriptor;
		break;
	case OP(CREATE):
		desc = &palyra__v1__create_agent_request__descriptor;
		break;
	case OP(UPDATE):
		desc = &palyra__v1__update_agent_request__descriptor;
		break;
	case OP(DELETE):
		desc = &palyra__v1__delete_agent_request__descriptor;
		break;
	default:
		send_status(ctx, id, ST_INVALID_ARGUMENT, "unknown method");
		return;
	}
	if ((in = protobuf_c_message_unpack(desc, NULL, len, data)) == NULL) {
		send_status(
		    ctx, id, ST_INVALID_ARGUMENT, "invalid request message");
		return;
	}
	if (req->op == OP(GET)) {
		const char *name = ((Palyra__V1__GetAgentRequest *)in)->name;

		if (!cfg_name_valid(name))
			send_status(
			    ctx, id, ST_INVALID_ARGUMENT, "invalid agent name");
		else
			get_agent(ctx, t, id, name, 0);
	} else if (req->op == OP(CREATE))
		create_agent(ctx, t, id, (Palyra__V1__CreateAgentRequest *)in);
	else if (req->op == OP(UPDATE))
		update_agent(ctx, t, id, (Palyra__V1__UpdateAgentRequest *)in);
	else
		delete_agent(
		    ctx, t, id, ((Palyra__V1__DeleteAgentRequest *)in)->name);
	protobuf_c_message_free_unpacked(in, NULL);
}

void
jnl_tenant_agents(struct jnl_ctx *ctx, struct ipc_msg *m)
{
	Palyra__Ipc__TenantAgents *ta = (Palyra__Ipc__TenantAgents *)m->msg;
	struct jnl_tenant *t;

	if (!jnl_name_valid(ta->tenant) ||
	    (t = jnl_tenant_find(ctx, ta->tenant)) == NULL) {
		log_warn("supervisor: agents of an unknown tenant ignored");
		return;
	}
	if (t->agents != NULL)
		palyra__ipc__tenant_agents__free_unpacked(t->agents, NULL);
	/* Kept: the channel must not free it. */
	t->agents = ta;
	m->msg = NULL;
}
