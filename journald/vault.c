/*
 * vault.c: the tenant vault's storage (DESIGN sections 8 and 9). Runs in
 * palyra-journald; touches the vault_items table of a tenant's journal.db
 * (migration 8), the tenant's worker channels and the front's channel.
 *
 * Journald never sees a value: a worker seals it with the tenant's data key
 * (worker/vault.c) and sends the ciphertext and nonce (IPC_VAULT_STORE);
 * journald keeps them with the metadata (size, description, version,
 * times, updated_by) and hands them back to the tenant's workers
 * (IPC_VAULT_FETCH, answered in pages of IPC_VAULT_ITEMS that each fit one
 * datagram). VaultService ListSecrets (metadata, paged by name; any token
 * of the tenant) and DeleteSecret (operator or admin) are answered here;
 * PutSecret and GetSecret go to a worker, which holds the key.
 *
 * A store and a delete are written in the tenant's open batch and answered
 * only after its commit (jnl_ack.deliver); then every worker of the tenant
 * hears IPC_VAULT_CHANGED (request id 0), so that its credentials and its
 * redaction set follow.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "grpc_status.h"
#include "journald.h"
#include "log.h"

#define PREFIX		"/palyra.v1.VaultService/"
#define E_UNAVAILABLE	"the journal is unavailable"
/* Room kept in a datagram for the VaultItems envelope. */
#define PAGE_SLACK	4096

/* What the answer of a committed store or delete is. */
struct deferred {
	int			 deleted;	/* DeleteSecret */
	char			 name[VAULT_NAME_MAX + 1];
	Palyra__V1__SecretMeta	 meta;		/* store */
	char			 description[VAULT_DESCRIPTION_MAX + 1];
	char			 updated_by[NAME_MAX_LEN + 1];
};

static int
name_valid(const char *s)
{
	size_t i;

	if (s == NULL || s[0] == '\0' || s[0] == '.')
		return 0;
	for (i = 0; s[i] != '\0'; i++) {
		if (i >= VAULT_NAME_MAX)
			return 0;
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
			(s[i] >= 'A' && s[i] <= 'Z') ||
			(s[i] >= '0' && s[i] <= '9') || s[i] == '.' ||
			s[i] == '_' || s[i] == '-'))
			return 0;
	}
	return 1;
}

/* Sends to a worker; jnl_worker_send drops one that stopped reading. */
static void
worker_send(struct jnl_worker *w, enum ipc_type type, uint32_t request_id,
    const ProtobufCMessage *msg)
{
	jnl_worker_send(w, type, request_id, msg, "a vault message");
}

/* Tells every worker of t that name changed. */
static void
broadcast_changed(struct jnl_ctx *ctx, struct jnl_tenant *t, const char *name,
    int deleted)
{
	Palyra__Ipc__VaultChanged msg = PALYRA__IPC__VAULT_CHANGED__INIT;
	struct jnl_worker *w;

	msg.name = (char *)name;
	msg.deleted = deleted;
	for (w = ctx->workers; w != NULL; w = w->next)
		if (w->tenant == t)
			worker_send(w, IPC_VAULT_CHANGED, 0, &msg.base);
}

static void
stored_reply(struct jnl_worker *w, uint32_t request_id, uint32_t code,
    const char *error, Palyra__V1__SecretMeta *meta)
{
	Palyra__Ipc__VaultStored msg = PALYRA__IPC__VAULT_STORED__INIT;

	msg.grpc_status = code;
	msg.error = (char *)(error != NULL ? error : "");
	msg.meta = code == GRPC_STATUS_OK ? meta : NULL;
	worker_send(w, IPC_VAULT_STORED, request_id, &msg.base);
}

/* The batch of a store or delete committed (ack->ok) or rolled back. */
static void
deferred_deliver(struct jnl_ctx *ctx, struct jnl_ack *ack)
{
	Palyra__V1__DeleteSecretResponse deleted =
	    PALYRA__V1__DELETE_SECRET_RESPONSE__INIT;
	struct deferred *d = ack->arg;
	const char *error = ack->error != NULL ? ack->error : JNL_E_STORAGE;

	if (d->deleted) {
		if (ack->ok)
			(void)jnl_service_reply(ctx, ack->request_id,
			    GRPC_STATUS_OK, NULL, &deleted.base, 0);
		else
			(void)jnl_service_reply(ctx, ack->request_id,
			    GRPC_STATUS_UNAVAILABLE, error, NULL, 0);
	} else
		stored_reply(ack->worker, ack->request_id,
		    ack->ok ? GRPC_STATUS_OK : GRPC_STATUS_UNAVAILABLE,
		    ack->ok ? NULL : error, &d->meta);
	if (ack->ok) {
		log_info("%s: secret %s %s", ack->tenant->name, d->name,
		    d->deleted ? "deleted" : "stored");
		broadcast_changed(ctx, ack->tenant, d->name, d->deleted);
	}
	free(d);
	ack->arg = NULL;
}

static int
defer(struct jnl_ctx *ctx, struct jnl_tenant *t, struct jnl_worker *w,
    uint32_t request_id, struct deferred *d)
{
	return jnl_ack_defer(ctx, t, w, request_id, deferred_deliver, d);
}

/* Checks a VaultStore; NULL when it is well-formed, else why not. */
static const char *
store_check(const Palyra__Ipc__VaultStore *s)
{
	const Palyra__V1__SecretMeta *meta = s->meta;

	if (meta == NULL || !name_valid(meta->name))
		return "invalid secret name";
	if (meta->size == 0 || meta->size > VAULT_VALUE_MAX)
		return "invalid secret size";
	if (s->ciphertext.len != meta->size +
	    crypto_aead_xchacha20poly1305_ietf_ABYTES)
		return "ciphertext and size disagree";
	if (s->nonce.len != crypto_aead_xchacha20poly1305_ietf_NPUBBYTES)
		return "invalid nonce";
	if (strlen(meta->description) > VAULT_DESCRIPTION_MAX)
		return "description too long";
	if (meta->updated_by[0] != '\0' && !jnl_name_valid(meta->updated_by))
		return "invalid updated_by";
	return NULL;
}

/* 1 when t has a secret name, 0 when not, -EIO. */
static int
exists(struct jnl_tenant *t, const char *name, int64_t *count)
{
	sqlite3_stmt *st;
	int rc, found;

	if (jnl_db_prepare(t->db,
		"SELECT (SELECT count(*) FROM vault_items),"
		" EXISTS (SELECT 1 FROM vault_items WHERE name = ?1)",
		&st) < 0)
		return -EIO;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
		sqlite3_finalize(st);
		return -EIO;
	}
	*count = sqlite3_column_int64(st, 0);
	found = sqlite3_column_int(st, 1);
	sqlite3_finalize(st);
	return found;
}

void
jnl_vault_store(struct jnl_ctx *ctx, struct jnl_worker *w,
    const struct ipc_msg *m)
{
	const Palyra__Ipc__VaultStore *s =
	    (const Palyra__Ipc__VaultStore *)m->msg;
	struct jnl_tenant *t = w->tenant;
	struct deferred *d;
	sqlite3_stmt *st;
	const char *why;
	int64_t now = (int64_t)jnl_now_ms(), count = 0;
	int rc;

	if ((why = store_check(s)) != NULL) {
		stored_reply(w, m->hdr.request_id,
		    GRPC_STATUS_INVALID_ARGUMENT, why, NULL);
		return;
	}
	if (t == NULL || t->db == NULL) {
		stored_reply(w, m->hdr.request_id, GRPC_STATUS_UNAVAILABLE,
		    E_UNAVAILABLE, NULL);
		return;
	}
	if ((rc = exists(t, s->meta->name, &count)) < 0) {
		stored_reply(w, m->hdr.request_id, GRPC_STATUS_UNAVAILABLE,
		    E_UNAVAILABLE, NULL);
		return;
	}
	if (rc == 0 && count >= VAULT_ITEMS_MAX) {
		stored_reply(w, m->hdr.request_id,
		    GRPC_STATUS_RESOURCE_EXHAUSTED,
		    "the vault holds too many secrets", NULL);
		return;
	}
	if ((d = calloc(1, sizeof(*d))) == NULL) {
		stored_reply(w, m->hdr.request_id, GRPC_STATUS_UNAVAILABLE,
		    "out of memory", NULL);
		return;
	}
	if (jnl_batch_begin(ctx, t) < 0 ||
	    jnl_db_prepare(t->db,
		"INSERT INTO vault_items (name, version, size, description,"
		" ciphertext, nonce, created_ms, updated_ms, updated_by)"
		" VALUES (?1, 1, ?2, ?3, ?4, ?5, ?6, ?6, ?7)"
		" ON CONFLICT (name) DO UPDATE SET version = version + 1,"
		" size = excluded.size,"
		" description = CASE WHEN ?8 THEN excluded.description"
		" ELSE description END,"
		" ciphertext = excluded.ciphertext, nonce = excluded.nonce,"
		" updated_ms = max(excluded.updated_ms, created_ms),"
		" updated_by = excluded.updated_by"
		" RETURNING version, description, created_ms, updated_ms",
		&st) < 0) {
		free(d);
		jnl_batch_fail(ctx, t);
		stored_reply(w, m->hdr.request_id, GRPC_STATUS_UNAVAILABLE,
		    JNL_E_STORAGE, NULL);
		return;
	}
	sqlite3_bind_text(st, 1, s->meta->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (int64_t)s->meta->size);
	sqlite3_bind_text(st, 3, s->meta->description, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 4, s->ciphertext.data, (int)s->ciphertext.len,
	    SQLITE_STATIC);
	sqlite3_bind_blob(st, 5, s->nonce.data, (int)s->nonce.len,
	    SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, now);
	sqlite3_bind_text(st, 7, s->meta->updated_by, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 8, s->set_description ? 1 : 0);
	if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
		log_error("%s: vault store: %s", t->name, sqlite3_errstr(rc));
		sqlite3_finalize(st);
		free(d);
		jnl_batch_fail(ctx, t);
		stored_reply(w, m->hdr.request_id, GRPC_STATUS_UNAVAILABLE,
		    JNL_E_STORAGE, NULL);
		return;
	}
	palyra__v1__secret_meta__init(&d->meta);
	snprintf(d->name, sizeof(d->name), "%s", s->meta->name);
	snprintf(d->description, sizeof(d->description), "%s",
	    (const char *)sqlite3_column_text(st, 1));
	snprintf(d->updated_by, sizeof(d->updated_by), "%s",
	    s->meta->updated_by);
	d->meta.name = d->name;
	d->meta.version = (uint32_t)sqlite3_column_int64(st, 0);
	d->meta.size = s->meta->size;
	d->meta.description = d->description;
	d->meta.created_unix_ms = sqlite3_column_int64(st, 2);
	d->meta.updated_unix_ms = sqlite3_column_int64(st, 3);
	d->meta.updated_by = d->updated_by;
	/* RETURNING rows come before the statement finishes: run it out. */
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		;
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		log_error("%s: vault store: %s", t->name, sqlite3_errstr(rc));
		free(d);
		jnl_batch_fail(ctx, t);
		stored_reply(w, m->hdr.request_id, GRPC_STATUS_UNAVAILABLE,
		    JNL_E_STORAGE, NULL);
		return;
	}
	if (defer(ctx, t, w, m->hdr.request_id, d) < 0) {
		free(d);
		jnl_batch_fail(ctx, t);
		stored_reply(w, m->hdr.request_id, GRPC_STATUS_UNAVAILABLE,
		    "out of memory", NULL);
	}
}

/* Reads one row (name, version, size, description, ciphertext, nonce,
 * created_ms, updated_ms, updated_by) into a new VaultItem. */
static Palyra__Ipc__VaultItem *
item_read(sqlite3_stmt *st)
{
	Palyra__Ipc__VaultItem *it;
	Palyra__V1__SecretMeta *meta;
	const void *ct, *nonce;
	size_t ctlen, noncelen;

	ct = sqlite3_column_blob(st, 4);
	ctlen = (size_t)sqlite3_column_bytes(st, 4);
	nonce = sqlite3_column_blob(st, 5);
	noncelen = (size_t)sqlite3_column_bytes(st, 5);
	if ((it = calloc(1, sizeof(*it))) == NULL ||
	    (meta = calloc(1, sizeof(*meta))) == NULL) {
		free(it);
		return NULL;
	}
	palyra__ipc__vault_item__init(it);
	palyra__v1__secret_meta__init(meta);
	it->meta = meta;
	meta->name = strdup((const char *)sqlite3_column_text(st, 0));
	meta->version = (uint32_t)sqlite3_column_int64(st, 1);
	meta->size = (uint64_t)sqlite3_column_int64(st, 2);
	meta->description = strdup((const char *)sqlite3_column_text(st, 3));
	meta->created_unix_ms = sqlite3_column_int64(st, 6);
	meta->updated_unix_ms = sqlite3_column_int64(st, 7);
	meta->updated_by = strdup((const char *)sqlite3_column_text(st, 8));
	it->ciphertext.data = malloc(ctlen + 1);
	it->nonce.data = malloc(noncelen + 1);
	if (meta->name == NULL || meta->description == NULL ||
	    meta->updated_by == NULL || it->ciphertext.data == NULL ||
	    it->nonce.data == NULL) {
		protobuf_c_message_free_unpacked(&it->base, NULL);
		return NULL;
	}
	if (ctlen > 0)
		memcpy(it->ciphertext.data, ct, ctlen);
	if (noncelen > 0)
		memcpy(it->nonce.data, nonce, noncelen);
	it->ciphertext.len = ctlen;
	it->nonce.len = noncelen;
	return it;
}

static void
items_free(Palyra__Ipc__VaultItems *page)
{
	size_t i;

	for (i = 0; i < page->n_items; i++)
		protobuf_c_message_free_unpacked(&page->items[i]->base, NULL);
	page->n_items = 0;
}

static void
items_error(struct jnl_worker *w, uint32_t request_id, uint32_t code,
    const char *error)
{
	Palyra__Ipc__VaultItems msg = PALYRA__IPC__VAULT_ITEMS__INIT;

	msg.grpc_status = code;
	msg.error = (char *)error;
	worker_send(w, IPC_VAULT_ITEMS, request_id, &msg.base);
}

/*
 * Adds the rows of st to the page, sending a page (more set) whenever the
 * next item would not fit one datagram. 0 or -EIO / -ENOMEM.
 */
static int
items_add(struct jnl_worker *w, uint32_t request_id, sqlite3_stmt *st,
    Palyra__Ipc__VaultItems *page, Palyra__Ipc__VaultItem **slots,
    size_t *bytes)
{
	Palyra__Ipc__VaultItem *it;
	size_t size;
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((it = item_read(st)) == NULL)
			return -ENOMEM;
		size = protobuf_c_message_get_packed_size(&it->base) + 16;
		if (page->n_items > 0 &&
		    *bytes + size > IPC_MAX_PAYLOAD - PAGE_SLACK) {
			page->more = 1;
			worker_send(w, IPC_VAULT_ITEMS, request_id,
			    &page->base);
			items_free(page);
			*bytes = 0;
		}
		slots[page->n_items++] = it;
		*bytes += size;
	}
	return rc == SQLITE_DONE ? 0 : -EIO;
}

void
jnl_vault_fetch(struct jnl_ctx *ctx, struct jnl_worker *w,
    const struct ipc_msg *m)
{
	const Palyra__Ipc__VaultFetch *f =
	    (const Palyra__Ipc__VaultFetch *)m->msg;
	Palyra__Ipc__VaultItems page = PALYRA__IPC__VAULT_ITEMS__INIT;
	Palyra__Ipc__VaultItem **slots;
	struct jnl_tenant *t = w->tenant;
	sqlite3_stmt *st = NULL;
	size_t i, bytes = 0;
	int rc = 0;

	(void)ctx;
	if (!f->all &&
	    (f->n_names == 0 || f->n_names > VAULT_FETCH_NAMES_MAX)) {
		items_error(w, m->hdr.request_id,
		    GRPC_STATUS_INVALID_ARGUMENT, "invalid vault fetch");
		return;
	}
	for (i = 0; i < f->n_names; i++)
		if (!name_valid(f->names[i])) {
			items_error(w, m->hdr.request_id,
			    GRPC_STATUS_INVALID_ARGUMENT,
			    "invalid secret name");
			return;
		}
	if (t == NULL || t->db == NULL) {
		items_error(w, m->hdr.request_id, GRPC_STATUS_UNAVAILABLE,
		    E_UNAVAILABLE);
		return;
	}
	/* One datagram holds at least one item of the largest size. */
	if ((slots = calloc(VAULT_ITEMS_MAX, sizeof(*slots))) == NULL) {
		items_error(w, m->hdr.request_id, GRPC_STATUS_UNAVAILABLE,
		    "out of memory");
		return;
	}
	page.items = slots;
	if (jnl_db_prepare(t->db,
		f->all ? "SELECT name, version, size, description, ciphertext,"
			 " nonce, created_ms, updated_ms, updated_by"
			 " FROM vault_items ORDER BY name LIMIT ?1"
		       : "SELECT name, version, size, description, ciphertext,"
			 " nonce, created_ms, updated_ms, updated_by"
			 " FROM vault_items WHERE name = ?1",
		&st) < 0)
		rc = -EIO;
	if (rc == 0 && f->all) {
		sqlite3_bind_int(st, 1, VAULT_ITEMS_MAX);
		rc = items_add(w, m->hdr.request_id, st, &page, slots, &bytes);
	}
	for (i = 0; rc == 0 && !f->all && i < f->n_names; i++) {
		sqlite3_reset(st);
		sqlite3_bind_text(st, 1, f->names[i], -1, SQLITE_STATIC);
		rc = items_add(w, m->hdr.request_id, st, &page, slots, &bytes);
	}
	sqlite3_finalize(st);
	if (rc < 0) {
		items_free(&page);
		free(slots);
		log_error("%s: vault fetch: %s", t->name,
		    rc == -ENOMEM ? "out of memory" : "storage error");
		items_error(w, m->hdr.request_id, GRPC_STATUS_UNAVAILABLE,
		    rc == -ENOMEM ? "out of memory" : E_UNAVAILABLE);
		return;
	}
	page.more = 0;
	worker_send(w, IPC_VAULT_ITEMS, m->hdr.request_id, &page.base);
	items_free(&page);
	free(slots);
}

/* Service calls. */

static int
reply(struct jnl_ctx *ctx, uint32_t id, uint32_t code, const char *message)
{
	(void)jnl_service_reply(ctx, id, code, message, NULL, 0);
	return 0;
}

static int
list_secrets(struct jnl_ctx *ctx, uint32_t id, struct jnl_tenant *t,
    const Palyra__V1__ListSecretsRequest *req)
{
	Palyra__V1__ListSecretsResponse resp =
	    PALYRA__V1__LIST_SECRETS_RESPONSE__INIT;
	Palyra__V1__SecretMeta *metas, **ptrs;
	sqlite3_stmt *st;
	size_t n = 0, i, bytes = 0, limit;
	char *next = NULL;
	int rc;

	limit = req->page_size == 0 ? VAULT_PAGE_DEFAULT : req->page_size;
	if (limit > VAULT_PAGE_MAX)
		return reply(ctx, id, GRPC_STATUS_INVALID_ARGUMENT,
		    "page_size is at most 1000");
	if (req->page_token[0] != '\0' && !name_valid(req->page_token))
		return reply(ctx, id, GRPC_STATUS_INVALID_ARGUMENT,
		    "invalid page_token");
	metas = calloc(limit, sizeof(*metas));
	ptrs = calloc(limit, sizeof(*ptrs));
	if (metas == NULL || ptrs == NULL) {
		free(metas);
		free(ptrs);
		return reply(ctx, id, GRPC_STATUS_UNAVAILABLE, "out of memory");
	}
	if (jnl_db_prepare(t->db,
		"SELECT name, version, size, description, created_ms,"
		" updated_ms, updated_by FROM vault_items WHERE name > ?1"
		" ORDER BY name LIMIT ?2",
		&st) < 0) {
		free(metas);
		free(ptrs);
		return reply(ctx, id, GRPC_STATUS_UNAVAILABLE, E_UNAVAILABLE);
	}
	sqlite3_bind_text(st, 1, req->page_token, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (int64_t)limit + 1);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		/* A full page, or one more would not fit the answer. */
		if (n == limit || bytes > IPC_MAX_PAYLOAD - 2 * PAGE_SLACK) {
			next = n > 0 ? metas[n - 1].name : NULL;
			break;
		}
		palyra__v1__secret_meta__init(&metas[n]);
		metas[n].name =
		    strdup((const char *)sqlite3_column_text(st, 0));
		metas[n].version = (uint32_t)sqlite3_column_int64(st, 1);
		metas[n].size = (uint64_t)sqlite3_column_int64(st, 2);
		metas[n].description =
		    strdup((const char *)sqlite3_column_text(st, 3));
		metas[n].created_unix_ms = sqlite3_column_int64(st, 4);
		metas[n].updated_unix_ms = sqlite3_column_int64(st, 5);
		metas[n].updated_by =
		    strdup((const char *)sqlite3_column_text(st, 6));
		ptrs[n] = &metas[n];
		n++;
		if (metas[n - 1].name == NULL ||
		    metas[n - 1].description == NULL ||
		    metas[n - 1].updated_by == NULL) {
			rc = SQLITE_NOMEM;
			break;
		}
		bytes += protobuf_c_message_get_packed_size(&metas[n - 1].base)
		    + 8;
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
		resp.secrets = ptrs;
		resp.n_secrets = n;
		resp.next_page_token = next != NULL ? next : (char *)"";
		(void)jnl_service_reply(ctx, id, GRPC_STATUS_OK, NULL,
		    &resp.base, 0);
	} else
		(void)reply(ctx, id, GRPC_STATUS_UNAVAILABLE,
		    rc == SQLITE_NOMEM ? "out of memory" : E_UNAVAILABLE);
	for (i = 0; i < n; i++) {
		free(metas[i].name);
		free(metas[i].description);
		free(metas[i].updated_by);
	}
	free(metas);
	free(ptrs);
	return 0;
}

static int
delete_secret(struct jnl_ctx *ctx, uint32_t id, struct jnl_tenant *t,
    const Palyra__V1__DeleteSecretRequest *req)
{
	struct deferred *d;
	sqlite3_stmt *st;
	int rc;

	if (!name_valid(req->name))
		return reply(ctx, id, GRPC_STATUS_INVALID_ARGUMENT,
		    "invalid secret name: 1 to 128 bytes of [A-Za-z0-9._-], "
		    "not starting with '.'");
	if ((d = calloc(1, sizeof(*d))) == NULL)
		return reply(ctx, id, GRPC_STATUS_UNAVAILABLE, "out of memory");
	d->deleted = 1;
	snprintf(d->name, sizeof(d->name), "%s", req->name);
	if (jnl_batch_begin(ctx, t) < 0 ||
	    jnl_db_prepare(t->db, "DELETE FROM vault_items WHERE name = ?1",
		&st) < 0) {
		free(d);
		jnl_batch_fail(ctx, t);
		return reply(ctx, id, GRPC_STATUS_UNAVAILABLE, JNL_E_STORAGE);
	}
	sqlite3_bind_text(st, 1, req->name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		log_error("%s: vault delete: %s", t->name, sqlite3_errstr(rc));
		free(d);
		jnl_batch_fail(ctx, t);
		return reply(ctx, id, GRPC_STATUS_UNAVAILABLE, JNL_E_STORAGE);
	}
	if (sqlite3_changes(t->db) == 0) {
		free(d);
		return reply(ctx, id, GRPC_STATUS_NOT_FOUND, "no such secret");
	}
	if (defer(ctx, t, NULL, id, d) < 0) {
		free(d);
		jnl_batch_fail(ctx, t);
		return reply(ctx, id, GRPC_STATUS_UNAVAILABLE, "out of memory");
	}
	return 0;
}

int
jnl_vault_call(struct jnl_ctx *ctx, uint32_t request_id,
    const Palyra__Ipc__ServiceCall *call)
{
	const char *method = call->method + strlen(PREFIX);
	const ProtobufCMessageDescriptor *desc;
	ProtobufCMessage *in;
	struct jnl_tenant *t;
	int privileged, rc;

	if (!jnl_name_valid(call->tenant) || !jnl_name_valid(call->principal))
		return reply(ctx, request_id, GRPC_STATUS_INVALID_ARGUMENT,
		    "invalid tenant or principal");
	privileged = jnl_service_privileged(call);
	if (strcmp(method, "ListSecrets") == 0)
		desc = &palyra__v1__list_secrets_request__descriptor;
	else if (strcmp(method, "DeleteSecret") == 0)
		desc = &palyra__v1__delete_secret_request__descriptor;
	else
		return reply(ctx, request_id, GRPC_STATUS_UNIMPLEMENTED,
		    "unknown method");
	if (desc == &palyra__v1__delete_secret_request__descriptor &&
	    !privileged)
		return reply(ctx, request_id, GRPC_STATUS_PERMISSION_DENIED,
		    "deleting a secret needs an operator or admin token");
	if ((t = jnl_tenant_find(ctx, call->tenant)) == NULL || t->db == NULL)
		return reply(ctx, request_id, GRPC_STATUS_UNAVAILABLE,
		    E_UNAVAILABLE);
	if ((in = protobuf_c_message_unpack(desc, NULL, call->request.len,
		 call->request.data)) == NULL)
		return reply(ctx, request_id, GRPC_STATUS_INVALID_ARGUMENT,
		    "invalid request message");
	if (desc == &palyra__v1__list_secrets_request__descriptor)
		rc = list_secrets(ctx, request_id, t,
		    (Palyra__V1__ListSecretsRequest *)in);
	else
		rc = delete_secret(ctx, request_id, t,
		    (Palyra__V1__DeleteSecretRequest *)in);
	protobuf_c_message_free_unpacked(in, NULL);
	return rc;
}
