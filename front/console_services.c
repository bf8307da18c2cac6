/*
 * console_services.c: the memory, vault and cron routes of /console/v1
 * (console.c):
 *
 *   GET    /console/v1/memory?principal=&session_id=&tag=&page_size=
 *                            &page_token=
 *   POST   /console/v1/memory         {"text","session_id","tags","source",
 *                                      "ttl_ms","principal"}: 201
 *   GET    /console/v1/memory/search?q=&top_k=&min_score=&session_id=
 *                            &tag=&principal=   (tag may repeat)
 *   GET    /console/v1/memory/ID
 *   DELETE /console/v1/memory/ID
 *   POST   /console/v1/memory/purge   {"principal","session_id","tag",
 *                                      "expired_only"}
 *   GET    /console/v1/vault?page_size=&page_token=   metadata only
 *   DELETE /console/v1/vault/NAME
 *   GET    /console/v1/cron?page_size=&page_token=
 *   POST   /console/v1/cron           {a CronJob: "name", "schedule",
 *                                      ...}: 201
 *   GET, PATCH, DELETE /console/v1/cron/ID   (ID: the job's id or name;
 *                                      PATCH: the members given are
 *                                      the fields replaced)
 *   POST   /console/v1/cron/ID/run
 *   GET    /console/v1/cron/ID/runs?page_size=&page_token=
 *
 * Each is a request message of its MemoryService, VaultService or
 * CronService method (front/services.c), built from the path, the query
 * and the JSON body (checked here: size, depth, known members and their
 * types, enum words); journald or the tenant's worker checks the values
 * and the principal and role rules. Replies are the response messages as
 * JSON with enums as lower-case words ("catch_up", "deny", "done").
 *
 * No secret value ever goes over the console, in either direction: there
 * is no route that puts or reads one (PutSecret and GetSecret are gRPC
 * only, for operator and admin tokens), and GET, PUT and POST of
 * /vault/NAME answer 405 saying so.
 *
 * Process: palyra-front. Decodes these routes' query strings and bodies
 * (the one place they are decoded).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "console.h"
#include "palyra/v1/gateway.pb-c.h"

/* The bounds of gateway.proto's comments, checked before any message is
 * built (the owner checks them again). */
#define PAGE_TOKEN_MAX 256
#define PAGE_SIZE_MAX 1000
#define ITEM_ID_MAX 64 /* 32 lower-hex */
#define SECRET_NAME_MAX 128
#define MEMORY_TEXT_MAX (16 * 1024)
#define MEMORY_QUERY_MAX (4 * 1024)
#define MEMORY_TAGS_MAX 16
#define MEMORY_TAG_MAX 64
#define MEMORY_SOURCE_MAX 256
#define MEMORY_TOP_K_MAX 100
#define CRON_SCHEDULE_MAX 256
#define CRON_TIMEZONE_MAX 64
#define CRON_FIELDS_MAX 11 /* UpdateJobRequest's field names */
#define VAULT_METHODS_MSG                                                      \
	"secret values never go over the console: use VaultService "           \
	"(gRPC) or palyractl vault"

/* An enum word of the console and its value. */
struct word {
	const char *word;
	int value;
};

static const struct word misfire_words[] = {
    {"skip", PALYRA__V1__MISFIRE_POLICY__MISFIRE_POLICY_SKIP},
    {"catch_up", PALYRA__V1__MISFIRE_POLICY__MISFIRE_POLICY_CATCH_UP},
    {"once", PALYRA__V1__MISFIRE_POLICY__MISFIRE_POLICY_ONCE},
    {NULL, 0},
};

static const struct word unattended_words[] = {
    {"deny", PALYRA__V1__UNATTENDED_POLICY__UNATTENDED_POLICY_DENY},
    {"wait", PALYRA__V1__UNATTENDED_POLICY__UNATTENDED_POLICY_WAIT},
    {NULL, 0},
};

static void
call_begin(struct fe_console_req *cr, enum fe_method method,
    const ProtobufCMessage *msg, int created)
{
	cr->kind = created ? FE_CONSOLE_AGENT_CREATE : FE_CONSOLE_UNARY;
	cr->words = 1;
	fe_console_call_begin(cr, method, msg);
}

/* ---- members and query values ---- */

/* An optional string member of at most max bytes: 0, or -1 after a 400. */
static int
str_member(struct fe_console_req *cr, json_t *obj, const char *key, size_t max,
    const char **out)
{
	char msg[96];

	if (fe_console_str_member(cr, obj, key, out) < 0)
		return -1;
	if (*out != NULL && strlen(*out) > max) {
		snprintf(msg, sizeof(msg), "%s too long (at most %zu bytes)",
		    key, max);
		fe_console_fail(cr, 400, "bad_request", msg);
		return -1;
	}
	return 0;
}

/* An optional integer member in [0, max]: 0, or -1 after a 400. */
static int
uint_member(struct fe_console_req *cr, json_t *obj, const char *key,
    uint64_t max, uint64_t *out)
{
	json_t *v = json_object_get(obj, key);
	char msg[96];

	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    (uint64_t)json_integer_value(v) > max) {
		snprintf(msg, sizeof(msg), "%s must be an integer, 0 to %llu",
		    key, (unsigned long long)max);
		fe_console_fail(cr, 400, "bad_request", msg);
		return -1;
	}
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

/* An optional boolean member: 0, or -1 after a 400. */
static int
bool_member(struct fe_console_req *cr, json_t *obj, const char *key,
    protobuf_c_boolean *out)
{
	json_t *v = json_object_get(obj, key);
	char msg[96];

	if (v == NULL)
		return 0;
	if (!json_is_boolean(v)) {
		snprintf(msg, sizeof(msg), "%s must be a boolean", key);
		fe_console_fail(cr, 400, "bad_request", msg);
		return -1;
	}
	*out = json_is_true(v);
	return 0;
}

/* An optional member that must be one of table's words: 0, or -1 after
 * a 400 naming them. */
static int
word_member(struct fe_console_req *cr, json_t *obj, const char *key,
    const struct word *table, int *out)
{
	const char *s = NULL, *sep;
	char msg[128];
	size_t i, n;

	if (fe_console_str_member(cr, obj, key, &s) < 0)
		return -1;
	if (s == NULL)
		return 0;
	for (i = 0; table[i].word != NULL; i++)
		if (strcmp(table[i].word, s) == 0) {
			*out = table[i].value;
			return 0;
		}
	n = (size_t)snprintf(msg, sizeof(msg), "%s must be", key);
	for (i = 0; table[i].word != NULL && n < sizeof(msg); i++) {
		sep = i == 0 ? "" : ",";
		if (i > 0 && table[i + 1].word == NULL)
			sep = " or";
		n += (size_t)snprintf(
		    msg + n, sizeof(msg) - n, "%s %s", sep, table[i].word);
	}
	fe_console_fail(cr, 400, "bad_request", msg);
	return -1;
}

/* The "tags" member: an array of at most MEMORY_TAGS_MAX strings, each
 * 1 to MEMORY_TAG_MAX bytes, pointed to from tags. 0, or -1 after a 400. */
static int
tags_member(struct fe_console_req *cr, json_t *obj, char **tags, size_t *ntags)
{
	json_t *v = json_object_get(obj, "tags"), *t;
	size_t i;

	*ntags = 0;
	if (v == NULL)
		return 0;
	if (!json_is_array(v) || json_array_size(v) > MEMORY_TAGS_MAX) {
		fe_console_fail(cr, 400, "bad_request",
		    "tags must be an array of at most 16 strings");
		return -1;
	}
	json_array_foreach(v, i, t)
	{
		if (!json_is_string(t) || json_string_length(t) == 0 ||
		    json_string_length(t) > MEMORY_TAG_MAX ||
		    strlen(json_string_value(t)) != json_string_length(t)) {
			fe_console_fail(cr, 400, "bad_request",
			    "each tag must be a string of 1 to 64 bytes");
			return -1;
		}
		tags[i] = (char *)json_string_value(t);
	}
	*ntags = json_array_size(v);
	return 0;
}

/* page_size and page_token of q into *size and *token: NULL, or why not. */
static const char *
page_params(struct evkeyvalq *q, uint32_t *size, const char **token)
{
	const char *s = evhttp_find_header(q, "page_size");
	int64_t n = 0;

	*token = evhttp_find_header(q, "page_token");
	if (s != NULL && (n = fe_console_query_uint(s, 1, PAGE_SIZE_MAX)) < 0)
		return "page_size must be 1 to 1000";
	if (*token != NULL && strlen(*token) > PAGE_TOKEN_MAX)
		return "malformed page_token";
	*size = (uint32_t)n;
	if (*token == NULL)
		*token = "";
	return NULL;
}

/* A query value of at most max bytes, or "" when absent; NULL: too long. */
static const char *
query_str(struct evkeyvalq *q, const char *key, size_t max)
{
	const char *v = evhttp_find_header(q, key);

	if (v == NULL)
		return "";
	return strlen(v) > max ? NULL : v;
}

/* One path segment: 1 to max bytes, no slash. */
static int
segment_ok(const char *s, size_t max)
{
	size_t len = strlen(s);

	return len > 0 && len <= max && strchr(s, '/') == NULL;
}

/* ---- memory ---- */

static void
memory_list(struct fe_console_req *cr)
{
	static const char *const params[] = {
	    "principal", "session_id", "tag", "page_size", "page_token", NULL};
	Palyra__V1__ListMemoryItemsRequest m =
	    PALYRA__V1__LIST_MEMORY_ITEMS_REQUEST__INIT;
	const char *principal, *session, *tag, *token, *why;
	struct evkeyvalq q;

	if (fe_console_query(cr, &q, params) < 0)
		return;
	principal = query_str(&q, "principal", NAME_MAX_LEN);
	session = query_str(&q, "session_id", FE_RUN_ID_MAX);
	tag = query_str(&q, "tag", MEMORY_TAG_MAX);
	if ((why = page_params(&q, &m.page_size, &token)) == NULL &&
	    (principal == NULL || session == NULL || tag == NULL))
		why = "principal, session_id or tag too long";
	if (why != NULL) {
		evhttp_clear_headers(&q);
		fe_console_fail(cr, 400, "bad_request", why);
		return;
	}
	m.principal = (char *)principal;
	m.session_id = (char *)session;
	m.tag = (char *)tag;
	m.page_token = (char *)token;
	call_begin(cr, FE_METHOD_LIST_MEMORY_ITEMS, &m.base, 0);
	evhttp_clear_headers(&q);
}

static void
memory_ingest(struct fe_console_req *cr)
{
	static const char *const keys[] = {"text", "session_id", "tags",
	    "source", "ttl_ms", "principal", NULL};
	Palyra__V1__IngestMemoryRequest m =
	    PALYRA__V1__INGEST_MEMORY_REQUEST__INIT;
	const char *text = NULL, *session = NULL, *source = NULL;
	const char *principal = NULL;
	char *tags[MEMORY_TAGS_MAX];
	json_t *body;

	if ((body = fe_console_body_json(cr, keys, 0)) == NULL)
		return;
	if (str_member(cr, body, "text", MEMORY_TEXT_MAX, &text) < 0 ||
	    str_member(cr, body, "session_id", FE_RUN_ID_MAX, &session) < 0 ||
	    str_member(cr, body, "source", MEMORY_SOURCE_MAX, &source) < 0 ||
	    str_member(cr, body, "principal", NAME_MAX_LEN, &principal) < 0 ||
	    uint_member(cr, body, "ttl_ms", INT64_MAX, &m.ttl_ms) < 0 ||
	    tags_member(cr, body, tags, &m.n_tags) < 0)
		goto out;
	if (text == NULL || text[0] == '\0') {
		fe_console_fail(cr, 400, "bad_request", "text is required");
		goto out;
	}
	m.text = (char *)text;
	m.session_id = (char *)(session != NULL ? session : "");
	m.source = (char *)(source != NULL ? source : "");
	m.principal = (char *)(principal != NULL ? principal : "");
	m.tags = tags;
	call_begin(cr, FE_METHOD_INGEST_MEMORY, &m.base, 1);
out:
	json_decref(body);
}

/* min_score: a decimal number from 0 to 1; -1 when it is not one. */
static double
score_value(const char *s)
{
	char *end;
	double v;

	if (s[0] == '\0' || strlen(s) > 32)
		return -1;
	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || *end != '\0' || !isfinite(v) || v < 0 || v > 1)
		return -1;
	return v;
}

static void
memory_search(struct fe_console_req *cr)
{
	static const char *const params[] = {
	    "q", "top_k", "min_score", "session_id", "tag", "principal", NULL};
	Palyra__V1__SearchMemoryRequest m =
	    PALYRA__V1__SEARCH_MEMORY_REQUEST__INIT;
	const char *query, *v, *session, *principal, *why = NULL;
	char *tags[MEMORY_TAGS_MAX];
	struct evkeyvalq q;
	struct evkeyval *kv;
	int64_t n;

	if (fe_console_query(cr, &q, params) < 0)
		return;
	query = query_str(&q, "q", MEMORY_QUERY_MAX);
	session = query_str(&q, "session_id", FE_RUN_ID_MAX);
	principal = query_str(&q, "principal", NAME_MAX_LEN);
	if (query == NULL || query[0] == '\0')
		why = "q is required, 1 byte to 4 KiB";
	else if (session == NULL || principal == NULL)
		why = "session_id or principal too long";
	if (why == NULL && (v = evhttp_find_header(&q, "top_k")) != NULL) {
		if ((n = fe_console_query_uint(v, 1, MEMORY_TOP_K_MAX)) < 0)
			why = "top_k must be 1 to 100";
		else
			m.top_k = (uint32_t)n;
	}
	if (why == NULL && (v = evhttp_find_header(&q, "min_score")) != NULL &&
	    (m.min_score = score_value(v)) < 0)
		why = "min_score must be a number from 0 to 1";
	/* tag may repeat: items holding every one. */
	TAILQ_FOREACH(kv, &q, next)
	{
		if (why != NULL || strcmp(kv->key, "tag") != 0)
			continue;
		if (m.n_tags == MEMORY_TAGS_MAX || kv->value[0] == '\0' ||
		    strlen(kv->value) > MEMORY_TAG_MAX)
			why = "at most 16 tags, each 1 to 64 bytes";
		else
			tags[m.n_tags++] = kv->value;
	}
	if (why != NULL) {
		evhttp_clear_headers(&q);
		fe_console_fail(cr, 400, "bad_request", why);
		return;
	}
	m.query = (char *)query;
	m.session_id = (char *)session;
	m.principal = (char *)principal;
	m.tags = tags;
	call_begin(cr, FE_METHOD_SEARCH_MEMORY, &m.base, 0);
	evhttp_clear_headers(&q);
}

static void
memory_purge(struct fe_console_req *cr)
{
	static const char *const keys[] = {
	    "principal", "session_id", "tag", "expired_only", NULL};
	Palyra__V1__PurgeMemoryRequest m =
	    PALYRA__V1__PURGE_MEMORY_REQUEST__INIT;
	const char *principal = NULL, *session = NULL, *tag = NULL;
	json_t *body;

	if ((body = fe_console_body_json(cr, keys, 1)) == NULL)
		return;
	if (str_member(cr, body, "principal", NAME_MAX_LEN, &principal) < 0 ||
	    str_member(cr, body, "session_id", FE_RUN_ID_MAX, &session) < 0 ||
	    str_member(cr, body, "tag", MEMORY_TAG_MAX, &tag) < 0 ||
	    bool_member(cr, body, "expired_only", &m.expired_only) < 0)
		goto out;
	m.principal = (char *)(principal != NULL ? principal : "");
	m.session_id = (char *)(session != NULL ? session : "");
	m.tag = (char *)(tag != NULL ? tag : "");
	call_begin(cr, FE_METHOD_PURGE_MEMORY, &m.base, 0);
out:
	json_decref(body);
}

static void
route_memory(
    struct fe_console_req *cr, enum evhttp_cmd_type cmd, const char *rest)
{
	Palyra__V1__GetMemoryItemRequest get =
	    PALYRA__V1__GET_MEMORY_ITEM_REQUEST__INIT;
	Palyra__V1__DeleteMemoryItemRequest del =
	    PALYRA__V1__DELETE_MEMORY_ITEM_REQUEST__INIT;

	if (*rest == '\0') {
		if (cmd == EVHTTP_REQ_GET)
			memory_list(cr);
		else if (cmd == EVHTTP_REQ_POST)
			memory_ingest(cr);
		else
			fe_console_not_allowed(cr, "GET, POST");
		return;
	}
	if (strcmp(rest, "search") == 0) {
		if (cmd == EVHTTP_REQ_GET)
			memory_search(cr);
		else
			fe_console_not_allowed(cr, "GET");
		return;
	}
	if (strcmp(rest, "purge") == 0) {
		if (cmd == EVHTTP_REQ_POST)
			memory_purge(cr);
		else
			fe_console_not_allowed(cr, "POST");
		return;
	}
	if (!segment_ok(rest, ITEM_ID_MAX)) {
		fe_console_fail(cr, 404, "not_found", "no such resource");
		return;
	}
	if (cmd == EVHTTP_REQ_GET) {
		get.item_id = (char *)rest;
		call_begin(cr, FE_METHOD_GET_MEMORY_ITEM, &get.base, 0);
	} else if (cmd == EVHTTP_REQ_DELETE) {
		del.item_id = (char *)rest;
		call_begin(cr, FE_METHOD_DELETE_MEMORY_ITEM, &del.base, 0);
	} else
		fe_console_not_allowed(cr, "GET, DELETE");
}

/* ---- vault (metadata only) ---- */

static void
vault_list(struct fe_console_req *cr)
{
	static const char *const params[] = {"page_size", "page_token", NULL};
	Palyra__V1__ListSecretsRequest m =
	    PALYRA__V1__LIST_SECRETS_REQUEST__INIT;
	const char *token, *why;
	struct evkeyvalq q;

	if (fe_console_query(cr, &q, params) < 0)
		return;
	if ((why = page_params(&q, &m.page_size, &token)) != NULL) {
		evhttp_clear_headers(&q);
		fe_console_fail(cr, 400, "bad_request", why);
		return;
	}
	m.page_token = (char *)token;
	call_begin(cr, FE_METHOD_LIST_SECRETS, &m.base, 0);
	evhttp_clear_headers(&q);
}

/* 405 with the methods a route has, saying why values are not among
 * them. */
static void
vault_refused(struct fe_console_req *cr, const char *allow)
{
	evhttp_add_header(
	    evhttp_request_get_output_headers(cr->req), "Allow", allow);
	fe_console_fail(cr, 405, "method_not_allowed", VAULT_METHODS_MSG);
}

static void
route_vault(
    struct fe_console_req *cr, enum evhttp_cmd_type cmd, const char *rest)
{
	Palyra__V1__DeleteSecretRequest del =
	    PALYRA__V1__DELETE_SECRET_REQUEST__INIT;

	if (*rest == '\0') {
		if (cmd == EVHTTP_REQ_GET)
			vault_list(cr);
		else
			vault_refused(cr, "GET");
		return;
	}
	if (!segment_ok(rest, SECRET_NAME_MAX)) {
		fe_console_fail(cr, 404, "not_found", "no such resource");
		return;
	}
	if (cmd != EVHTTP_REQ_DELETE) {
		vault_refused(cr, "DELETE");
		return;
	}
	del.name = (char *)rest;
	call_begin(cr, FE_METHOD_DELETE_SECRET, &del.base, 0);
}

/* ---- cron ---- */

/* The members of a job body into job; with fields (PATCH), the names of
 * the members given. Returns 0, or -1 after a 400. */
static int
job_fields(struct fe_console_req *cr, json_t *body, Palyra__V1__CronJob *job,
    char **fields, size_t *nfields)
{
	static const char *const names[] = {"schedule", "timezone", "agent",
	    "input", "misfire", "catch_up_max", "allow_overlap", "jitter_ms",
	    "enabled", "unattended", "session_key", NULL};
	const char *name = NULL, *schedule = NULL, *tz = NULL, *agent = NULL;
	const char *input = NULL, *session_key = NULL;
	int misfire = 0, unattended = 0;
	uint64_t catch_up = 0;
	size_t i;

	if (str_member(cr, body, "name", NAME_MAX_LEN, &name) < 0 ||
	    str_member(cr, body, "schedule", CRON_SCHEDULE_MAX, &schedule) <
		0 ||
	    str_member(cr, body, "timezone", CRON_TIMEZONE_MAX, &tz) < 0 ||
	    str_member(cr, body, "agent", NAME_MAX_LEN, &agent) < 0 ||
	    str_member(cr, body, "input", TEXT_MAX_LEN, &input) < 0 ||
	    str_member(
		cr, body, "session_key", NAME_MAX_LEN * 4, &session_key) < 0 ||
	    word_member(cr, body, "misfire", misfire_words, &misfire) < 0 ||
	    word_member(cr, body, "unattended", unattended_words, &unattended) <
		0 ||
	    uint_member(cr, body, "catch_up_max", UINT32_MAX, &catch_up) < 0 ||
	    uint_member(cr, body, "jitter_ms", INT64_MAX, &job->jitter_ms) <
		0 ||
	    bool_member(cr, body, "allow_overlap", &job->allow_overlap) < 0 ||
	    bool_member(cr, body, "enabled", &job->enabled) < 0)
		return -1;
	job->name = (char *)(name != NULL ? name : "");
	job->schedule = (char *)(schedule != NULL ? schedule : "");
	job->timezone = (char *)(tz != NULL ? tz : "");
	job->agent = (char *)(agent != NULL ? agent : "");
	job->input = (char *)(input != NULL ? input : "");
	job->session_key = (char *)(session_key != NULL ? session_key : "");
	job->misfire = (Palyra__V1__MisfirePolicy)misfire;
	job->unattended = (Palyra__V1__UnattendedPolicy)unattended;
	job->catch_up_max = (uint32_t)catch_up;
	if (fields == NULL)
		return 0;
	*nfields = 0;
	for (i = 0; names[i] != NULL && *nfields < CRON_FIELDS_MAX; i++)
		if (json_object_get(body, names[i]) != NULL)
			fields[(*nfields)++] = (char *)names[i];
	if (*nfields == 0) {
		/* None named would replace every field: say it instead. */
		fe_console_fail(cr, 400, "bad_request",
		    "name at least one field to change");
		return -1;
	}
	return 0;
}

static void
cron_create(struct fe_console_req *cr)
{
	static const char *const keys[] = {"name", "schedule", "timezone",
	    "agent", "input", "misfire", "catch_up_max", "allow_overlap",
	    "jitter_ms", "enabled", "unattended", "session_key", NULL};
	Palyra__V1__CreateJobRequest m = PALYRA__V1__CREATE_JOB_REQUEST__INIT;
	Palyra__V1__CronJob job = PALYRA__V1__CRON_JOB__INIT;
	json_t *body;

	if ((body = fe_console_body_json(cr, keys, 0)) == NULL)
		return;
	/* A job made here runs unless the body says otherwise. */
	job.enabled = 1;
	if (job_fields(cr, body, &job, NULL, NULL) < 0)
		goto out;
	if (job.name[0] == '\0' || job.schedule[0] == '\0') {
		fe_console_fail(
		    cr, 400, "bad_request", "name and schedule are required");
		goto out;
	}
	/* CreateJob takes the opposite of enabled (proto3 cannot tell an
	 * unset false). */
	m.disabled = !job.enabled;
	m.job = &job;
	call_begin(cr, FE_METHOD_CREATE_JOB, &m.base, 1);
out:
	json_decref(body);
}

static void
cron_update(struct fe_console_req *cr, const char *id)
{
	static const char *const keys[] = {"schedule", "timezone", "agent",
	    "input", "misfire", "catch_up_max", "allow_overlap", "jitter_ms",
	    "enabled", "unattended", "session_key", NULL};
	Palyra__V1__UpdateJobRequest m = PALYRA__V1__UPDATE_JOB_REQUEST__INIT;
	Palyra__V1__CronJob job = PALYRA__V1__CRON_JOB__INIT;
	char *fields[CRON_FIELDS_MAX];
	json_t *body;

	if ((body = fe_console_body_json(cr, keys, 0)) == NULL)
		return;
	if (job_fields(cr, body, &job, fields, &m.n_fields) == 0) {
		m.job_id = (char *)id;
		m.job = &job;
		m.fields = fields;
		call_begin(cr, FE_METHOD_UPDATE_JOB, &m.base, 0);
	}
	json_decref(body);
}

static void
cron_list(struct fe_console_req *cr, const char *id)
{
	static const char *const params[] = {"page_size", "page_token", NULL};
	Palyra__V1__ListJobsRequest jobs = PALYRA__V1__LIST_JOBS_REQUEST__INIT;
	Palyra__V1__ListJobRunsRequest runs =
	    PALYRA__V1__LIST_JOB_RUNS_REQUEST__INIT;
	const char *token, *why;
	struct evkeyvalq q;
	uint32_t size = 0;

	if (fe_console_query(cr, &q, params) < 0)
		return;
	if ((why = page_params(&q, &size, &token)) != NULL) {
		evhttp_clear_headers(&q);
		fe_console_fail(cr, 400, "bad_request", why);
		return;
	}
	if (id == NULL) {
		jobs.page_size = size;
		jobs.page_token = (char *)token;
		call_begin(cr, FE_METHOD_LIST_JOBS, &jobs.base, 0);
	} else {
		runs.job_id = (char *)id;
		runs.page_size = size;
		runs.page_token = (char *)token;
		call_begin(cr, FE_METHOD_LIST_JOB_RUNS, &runs.base, 0);
	}
	evhttp_clear_headers(&q);
}

static void
route_cron(
    struct fe_console_req *cr, enum evhttp_cmd_type cmd, const char *rest)
{
	static const char *const no_keys[] = {NULL};
	Palyra__V1__GetJobRequest get = PALYRA__V1__GET_JOB_REQUEST__INIT;
	Palyra__V1__DeleteJobRequest del = PALYRA__V1__DELETE_JOB_REQUEST__INIT;
	Palyra__V1__RunJobNowRequest run =
	    PALYRA__V1__RUN_JOB_NOW_REQUEST__INIT;
	char id[NAME_MAX_LEN + 1];
	const char *slash = strchr(rest, '/');
	size_t len = slash != NULL ? (size_t)(slash - rest) : strlen(rest);
	json_t *body;

	if (*rest == '\0') {
		if (cmd == EVHTTP_REQ_GET)
			cron_list(cr, NULL);
		else if (cmd == EVHTTP_REQ_POST)
			cron_create(cr);
		else
			fe_console_not_allowed(cr, "GET, POST");
		return;
	}
	if (len == 0 || len > NAME_MAX_LEN ||
	    (slash != NULL && strcmp(slash + 1, "run") != 0 &&
		strcmp(slash + 1, "runs") != 0)) {
		fe_console_fail(cr, 404, "not_found", "no such resource");
		return;
	}
	snprintf(id, sizeof(id), "%.*s", (int)len, rest);
	if (slash != NULL && strcmp(slash + 1, "runs") == 0) {
		if (cmd == EVHTTP_REQ_GET)
			cron_list(cr, id);
		else
			fe_console_not_allowed(cr, "GET");
	} else if (slash != NULL) {
		if (cmd != EVHTTP_REQ_POST) {
			fe_console_not_allowed(cr, "POST");
			return;
		}
		/* No body, or an empty object. */
		if ((body = fe_console_body_json(cr, no_keys, 1)) == NULL)
			return;
		json_decref(body);
		run.job_id = id;
		call_begin(cr, FE_METHOD_RUN_JOB_NOW, &run.base, 0);
	} else if (cmd == EVHTTP_REQ_GET) {
		get.job_id = id;
		call_begin(cr, FE_METHOD_GET_JOB, &get.base, 0);
	} else if (cmd == EVHTTP_REQ_DELETE) {
		del.job_id = id;
		call_begin(cr, FE_METHOD_DELETE_JOB, &del.base, 0);
	} else if (cmd == EVHTTP_REQ_PATCH)
		cron_update(cr, id);
	else
		fe_console_not_allowed(cr, "GET, PATCH, DELETE");
}

/* ---- entry points ---- */

static int
under(const char *path, const char *name)
{
	size_t len = strlen(name);

	return strncmp(path, name, len) == 0 &&
	       (path[len] == '\0' || path[len] == '/');
}

int
fe_console_services_path(const char *path)
{
	return under(path, "memory") || under(path, "vault") ||
	       under(path, "cron");
}

void
fe_console_route_services(
    struct fe_console_req *cr, enum evhttp_cmd_type cmd, const char *path)
{
	if (under(path, "memory"))
		route_memory(cr, cmd, path[6] == '/' ? path + 7 : "");
	else if (under(path, "vault"))
		route_vault(cr, cmd, path[5] == '/' ? path + 6 : "");
	else
		route_cron(cr, cmd, path[4] == '/' ? path + 5 : "");
}
