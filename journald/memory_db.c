/*
 * memory_db.c: the rows of memory items. Runs in palyra-journald; touches
 * the memory_items table (and, through its triggers, memory_fts) of one
 * tenant's journal.db, through a cache of prepared statements made on
 * first use and finalized when the journal closes; registers the SQL
 * function palyra_memory_tags() on that connection. Also the checks of an
 * item a worker sends, the conversion of a row into a MemoryItem and the
 * redaction of an item's text by value (redact.c's registry).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "memory.h"
#include "redact.h"

#ifndef SQLITE_INNOCUOUS
#define SQLITE_INNOCUOUS 0
#endif

/*
 * Every reader leaves out an item whose expiry is due: "(expires_ms = 0 OR
 * expires_ms > now)". The table is laid out as SQL text, not formatted.
 */
/* clang-format off */
static const char *const memory_sql[JNL_MS_COUNT_ALL] = {
    [JNL_MS_INSERT] =
	"INSERT INTO memory_items (item_id, principal, session_id, tags,"
	" source, text, embedding, embedding_model, created_ms, expires_ms)"
	" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    [JNL_MS_COUNT] = "SELECT count(*) FROM memory_items",
    [JNL_MS_GET] =
	"SELECT " JNL_MEMORY_COLUMNS " FROM memory_items"
	" WHERE item_id = ?1 AND (expires_ms = 0 OR expires_ms > ?2)",
    [JNL_MS_DELETE] =
	"DELETE FROM memory_items WHERE item_id = ?1"
	" AND (?2 IS NULL OR principal = ?2)"
	" AND (expires_ms = 0 OR expires_ms > ?3)",
    /* The best lexical candidates, by FTS5 rank (bm25: lower is better). */
    [JNL_MS_LEXICAL] =
	"SELECT m.seq, m.created_ms, bm25(memory_fts) FROM memory_fts"
	" JOIN memory_items m ON m.seq = memory_fts.rowid"
	" WHERE memory_fts MATCH ?1 AND m.principal = ?2"
	" AND (m.session_id = '' OR m.session_id = ?3)"
	" AND (m.expires_ms = 0 OR m.expires_ms > ?4)"
	" AND palyra_memory_tags(m.tags, ?5)"
	" ORDER BY bm25(memory_fts) LIMIT ?6",
    /* The principal's vectors of the query's model, newest first: the
     * index memory_items_principal streams them without a sort. */
    [JNL_MS_SCAN] =
	"SELECT seq, created_ms, embedding FROM memory_items"
	" WHERE principal = ?1 AND (session_id = '' OR session_id = ?2)"
	" AND (expires_ms = 0 OR expires_ms > ?3)"
	" AND embedding_model = ?4 AND length(embedding) = ?5"
	" AND palyra_memory_tags(tags, ?6)"
	" ORDER BY created_ms DESC, seq DESC LIMIT ?7",
    [JNL_MS_VECTOR_ONE] =
	"SELECT embedding FROM memory_items WHERE seq = ?1"
	" AND embedding_model = ?2 AND length(embedding) = ?3",
    [JNL_MS_BY_SEQ] =
	"SELECT " JNL_MEMORY_COLUMNS " FROM memory_items WHERE seq = ?1",
    [JNL_MS_SWEEP] =
	"DELETE FROM memory_items WHERE seq IN (SELECT seq FROM memory_items"
	" WHERE expires_ms > 0 AND expires_ms <= ?1 LIMIT ?2)",
    [JNL_MS_DUE] =
	"SELECT 1 FROM memory_items WHERE expires_ms > 0"
	" AND expires_ms <= ?1 LIMIT 1",
    [JNL_MS_LIST_ONE] =
	"SELECT " JNL_MEMORY_COLUMNS " FROM memory_items WHERE principal = ?1"
	" AND (?2 IS NULL OR session_id = ?2)"
	" AND palyra_memory_tags(tags, ?3)"
	" AND (expires_ms = 0 OR expires_ms > ?4)"
	" AND (?5 IS NULL OR created_ms < ?5"
	" OR (created_ms = ?5 AND item_id < ?6))"
	" ORDER BY created_ms DESC, item_id DESC LIMIT ?7",
    [JNL_MS_LIST_ALL] =
	"SELECT " JNL_MEMORY_COLUMNS " FROM memory_items WHERE ?1 IS NULL"
	" AND (?2 IS NULL OR session_id = ?2)"
	" AND palyra_memory_tags(tags, ?3)"
	" AND (expires_ms = 0 OR expires_ms > ?4)"
	" AND (?5 IS NULL OR created_ms < ?5"
	" OR (created_ms = ?5 AND item_id < ?6))"
	" ORDER BY created_ms DESC, item_id DESC LIMIT ?7",
    [JNL_MS_PURGE] =
	"DELETE FROM memory_items WHERE (?1 IS NULL OR principal = ?1)"
	" AND (?2 IS NULL OR session_id = ?2)"
	" AND palyra_memory_tags(tags, ?3)"
	" AND (?4 = 0 OR (expires_ms > 0 AND expires_ms <= ?5))",
};
/* clang-format on */

/*
 * palyra_memory_tags(tags, wanted): 1 when the stored " a b " holds every
 * tag of wanted (" c d "; NULL or blank: every item).
 */
static void
tags_fn(sqlite3_context *sctx, int argc, sqlite3_value **argv)
{
	const char *tags, *wanted, *p, *end;
	char needle[JNL_MEMORY_TAG_MAX + 3];
	size_t len;

	(void)argc;
	wanted = (const char *)sqlite3_value_text(argv[1]);
	tags = (const char *)sqlite3_value_text(argv[0]);
	if (wanted == NULL) {
		sqlite3_result_int(sctx, 1);
		return;
	}
	if (tags == NULL)
		tags = "";
	for (p = wanted; *p != '\0'; p = end) {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		for (end = p; *end != '\0' && *end != ' '; end++)
			;
		len = (size_t)(end - p);
		if (len > JNL_MEMORY_TAG_MAX) {
			sqlite3_result_int(sctx, 0);
			return;
		}
		needle[0] = ' ';
		memcpy(needle + 1, p, len);
		needle[len + 1] = ' ';
		needle[len + 2] = '\0';
		if (strstr(tags, needle) == NULL) {
			sqlite3_result_int(sctx, 0);
			return;
		}
	}
	sqlite3_result_int(sctx, 1);
}

sqlite3_stmt *
jnl_memory_stmt(struct jnl_tenant *t, enum jnl_memory_stmt which)
{
	struct jnl_memory *mem;

	if (t->db == NULL)
		return NULL;
	if ((mem = t->memory) == NULL) {
		if ((mem = calloc(1, sizeof(*mem))) == NULL)
			return NULL;
		if (sqlite3_create_function_v2(t->db, "palyra_memory_tags", 2,
			SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS,
			NULL, tags_fn, NULL, NULL, NULL) != SQLITE_OK) {
			log_error("%s: cannot register palyra_memory_tags: %s",
			    t->name, sqlite3_errmsg(t->db));
			free(mem);
			return NULL;
		}
		t->memory = mem;
	}
	if (mem->st[which] == NULL &&
	    jnl_db_prepare(t->db, memory_sql[which], &mem->st[which]) < 0)
		return NULL;
	sqlite3_reset(mem->st[which]);
	sqlite3_clear_bindings(mem->st[which]);
	return mem->st[which];
}

void
jnl_memory_close(struct jnl_tenant *t)
{
	size_t i;

	if (t->memory == NULL)
		return;
	for (i = 0; i < JNL_MS_COUNT_ALL; i++)
		sqlite3_finalize(t->memory->st[i]);
	free(t->memory);
	t->memory = NULL;
}

/* Checks. */

static int
utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, n, k;
	uint32_t c;

	while (i < len) {
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		if (p[i] >= 0xc2 && p[i] <= 0xdf) {
			n = 1;
			c = p[i] & 0x1f;
		} else if (p[i] >= 0xe0 && p[i] <= 0xef) {
			n = 2;
			c = p[i] & 0x0f;
		} else if (p[i] >= 0xf0 && p[i] <= 0xf4) {
			n = 3;
			c = p[i] & 0x07;
		} else
			return 0;
		if (len - i - 1 < n)
			return 0;
		for (k = 1; k <= n; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return 0;
			c = c << 6 | (p[i + k] & 0x3f);
		}
		/* Overlong forms, surrogates and beyond U+10FFFF. */
		if ((n == 2 && c < 0x800) || (n == 3 && c < 0x10000) ||
		    (c >= 0xd800 && c <= 0xdfff) || c > 0x10ffff)
			return 0;
		i += n + 1;
	}
	return 1;
}

static int
id_valid(const char *id)
{
	size_t i;

	for (i = 0; id[i] != '\0'; i++)
		if (i >= JNL_MEMORY_ID_LEN ||
		    !((id[i] >= '0' && id[i] <= '9') ||
			(id[i] >= 'a' && id[i] <= 'f')))
			return 0;
	return i == JNL_MEMORY_ID_LEN;
}

int
jnl_memory_tag_valid(const char *tag)
{
	size_t i;

	for (i = 0; tag[i] != '\0'; i++)
		if (i >= JNL_MEMORY_TAG_MAX ||
		    !((tag[i] >= 'a' && tag[i] <= 'z') ||
			(tag[i] >= 'A' && tag[i] <= 'Z') ||
			(tag[i] >= '0' && tag[i] <= '9') || tag[i] == '.' ||
			tag[i] == '_' || tag[i] == ':' || tag[i] == '-'))
			return 0;
	return i > 0;
}

int
jnl_memory_id_valid(const char *id)
{
	return id_valid(id);
}

const char *
jnl_memory_item_invalid(
    const Palyra__V1__MemoryItem *item, size_t dim, const float *embedding)
{
	size_t i, len;

	if (item == NULL)
		return "item is required";
	if (!id_valid(item->item_id))
		return "item_id is not 32 lower-hex characters";
	if (!jnl_name_valid(item->principal))
		return "invalid principal";
	if (item->session_id[0] != '\0' && !jnl_name_valid(item->session_id))
		return "invalid session_id";
	len = strnlen(item->text, JNL_MEMORY_TEXT_MAX + 1);
	if (len == 0 || len > JNL_MEMORY_TEXT_MAX)
		return "text must be 1 byte to 16 KiB";
	if (!utf8_valid(item->text, len))
		return "text is not UTF-8";
	if (item->n_tags > JNL_MEMORY_TAGS_MAX)
		return "more than 16 tags";
	for (i = 0; i < item->n_tags; i++)
		if (!jnl_memory_tag_valid(item->tags[i]))
			return "a tag is not 1 to 64 bytes of [A-Za-z0-9._:-]";
	len = strnlen(item->source, JNL_MEMORY_SOURCE_MAX + 1);
	if (len > JNL_MEMORY_SOURCE_MAX || !utf8_valid(item->source, len))
		return "source is not UTF-8 text of at most 256 bytes";
	len = strnlen(item->embedding_model, JNL_USAGE_MODEL_MAX + 1);
	if (len > JNL_USAGE_MODEL_MAX ||
	    !utf8_valid(item->embedding_model, len))
		return "invalid embedding_model";
	if (dim > JNL_MEMORY_DIM_MAX)
		return "embedding has too many dimensions";
	if (dim > 0 && len == 0)
		return "an embedding needs its embedding_model";
	for (i = 0; i < dim; i++)
		if (!isfinite(embedding[i]))
			return "embedding holds a value that is not finite";
	if (item->created_unix_ms <= 0)
		return "created_unix_ms must be positive";
	if (item->expires_unix_ms < 0)
		return "expires_unix_ms must not be negative";
	if (item->base.n_unknown_fields != 0)
		return "unknown fields";
	return NULL;
}

void
jnl_memory_tags_join(char *const *tags, size_t n, char *out, size_t size)
{
	size_t i, j, len, used = 1;
	char needle[JNL_MEMORY_TAG_MAX + 3];

	out[0] = ' ';
	out[1] = '\0';
	for (i = 0; i < n; i++) {
		len = strlen(tags[i]);
		snprintf(needle, sizeof(needle), " %s ", tags[i]);
		if (strstr(out, needle) != NULL)
			continue; /* the same tag twice is one tag */
		if (used + len + 2 > size)
			break;
		for (j = 0; j < len; j++)
			out[used++] = tags[i][j];
		out[used++] = ' ';
		out[used] = '\0';
	}
}

int
jnl_memory_insert(struct jnl_tenant *t, const Palyra__V1__MemoryItem *item,
    const float *embedding, size_t dim)
{
	char tags[JNL_MEMORY_TAGS_MAX * (JNL_MEMORY_TAG_MAX + 1) + 2];
	uint8_t *blob = NULL;
	sqlite3_stmt *st;
	int rc;

	if ((st = jnl_memory_stmt(t, JNL_MS_INSERT)) == NULL)
		return -EIO;
	if (dim > 0) {
		if ((blob = malloc(dim * 4)) == NULL)
			return -ENOMEM;
		jnl_memory_blob_encode(embedding, dim, blob);
	}
	jnl_memory_tags_join(item->tags, item->n_tags, tags, sizeof(tags));
	sqlite3_bind_text(st, 1, item->item_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, item->principal, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, item->session_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, tags, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, item->source, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, item->text, -1, SQLITE_STATIC);
	if (blob != NULL)
		sqlite3_bind_blob(st, 7, blob, (int)(dim * 4), SQLITE_STATIC);
	sqlite3_bind_text(
	    st, 8, dim > 0 ? item->embedding_model : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 9, item->created_unix_ms);
	sqlite3_bind_int64(st, 10, item->expires_unix_ms);
	rc = jnl_step_done(st);
	free(blob);
	if (rc == 0)
		return 0;
	/* Extended result codes are on (db.c). A constraint fails the
	 * statement alone, the transaction goes on. */
	if (rc == SQLITE_CONSTRAINT_UNIQUE)
		return 1;
	log_error("%s: memory item insert: %s", t->name, sqlite3_errstr(rc));
	return -EIO;
}

/* The row's text column as a string from malloc. */
static char *
column_dup(sqlite3_stmt *st, int col)
{
	const char *s = (const char *)sqlite3_column_text(st, col);

	return strdup(s != NULL ? s : "");
}

Palyra__V1__MemoryItem *
jnl_memory_item_from_row(sqlite3_stmt *st, int col)
{
	Palyra__V1__MemoryItem *item;
	const char *tags, *p, *end;
	size_t n = 0;

	if ((item = malloc(sizeof(*item))) == NULL)
		return NULL;
	palyra__v1__memory_item__init(item);
	item->item_id = column_dup(st, col);
	item->principal = column_dup(st, col + 1);
	item->session_id = column_dup(st, col + 2);
	item->source = column_dup(st, col + 4);
	item->text = column_dup(st, col + 5);
	item->created_unix_ms = sqlite3_column_int64(st, col + 6);
	item->expires_unix_ms = sqlite3_column_int64(st, col + 7);
	item->embedding_model = column_dup(st, col + 8);
	if ((tags = (const char *)sqlite3_column_text(st, col + 3)) == NULL)
		tags = "";
	if ((item->tags = calloc(JNL_MEMORY_TAGS_MAX, sizeof(char *))) ==
	    NULL) {
		palyra__v1__memory_item__free_unpacked(item, NULL);
		return NULL;
	}
	for (p = tags; *p != '\0' && n < JNL_MEMORY_TAGS_MAX; p = end) {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		for (end = p; *end != '\0' && *end != ' '; end++)
			;
		if ((item->tags[n] = strndup(p, (size_t)(end - p))) == NULL)
			break;
		n++;
		item->n_tags = n;
	}
	if (item->item_id == NULL || item->principal == NULL ||
	    item->session_id == NULL || item->source == NULL ||
	    item->text == NULL || item->embedding_model == NULL ||
	    (*p != '\0' && n < JNL_MEMORY_TAGS_MAX)) {
		palyra__v1__memory_item__free_unpacked(item, NULL);
		return NULL;
	}
	if (n == 0) {
		free(item->tags);
		item->tags = NULL;
	}
	return item;
}

char *
jnl_memory_redacted(const struct jnl_ctx *ctx, const char *text)
{
	size_t outlen;
	char *out;
	int rc;

	if ((rc = redact_text(ctx->secrets, ctx->nsecrets, text, strlen(text),
		 &out, &outlen)) < 0)
		return NULL;
	return rc == 1 ? out : strdup(text);
}

int
jnl_memory_sweep_tenant(
    struct jnl_ctx *ctx, struct jnl_tenant *t, int64_t now, int limit)
{
	sqlite3_stmt *st;
	int rc;

	if (t->db == NULL)
		return 0;
	/* A batch (and a commit) only when something is due. */
	if ((st = jnl_memory_stmt(t, JNL_MS_DUE)) == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, now);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return 0;
	if (rc != SQLITE_ROW || (st = jnl_memory_stmt(t, JNL_MS_SWEEP)) == NULL)
		return -EIO;
	if (jnl_batch_begin(ctx, t) < 0)
		return -EIO;
	sqlite3_bind_int64(st, 1, now);
	sqlite3_bind_int(st, 2, limit);
	if ((rc = jnl_step_done(st)) != 0) {
		log_error("%s: memory sweep: %s", t->name, sqlite3_errstr(rc));
		jnl_batch_fail(ctx, t);
		return -EIO;
	}
	return sqlite3_changes(t->db);
}
