/*
 * vault.c: the tenant vault in palyra-worker (DESIGN section 9): the data
 * key, the decrypted values, their loading and the provider credentials
 * `api-key vault:NAME`.
 *
 * The supervisor hands the tenant's 32-byte data key to this tenant's
 * workers only (WorkerConfig.vault_key); it is copied into sodium_malloc'd
 * memory kept PROT_NONE while idle, and the configuration's copy is wiped.
 * A worker without a key answers every vault method FAILED_PRECONDITION
 * "the vault is not available" and has no value to load.
 *
 * With a key, the worker reads every item of the tenant from journald
 * (IPC_VAULT_FETCH all, answered in pages of IPC_VAULT_ITEMS), decrypts it
 * and keeps the values for two uses: redaction by value of everything the
 * worker journals (vault_redact.c) and provider credentials (the value
 * becomes ProviderConfig.api_key of each provider whose api_key_vault
 * names it). IPC_VAULT_CHANGED (journald, after any store or delete by any
 * worker) re-reads one item. Fail closed: while a load or re-read is in
 * flight, run starts wait (wrk_vault_hold), at most WRK_VAULT_LOAD_WAIT_MS,
 * then fail UNAVAILABLE; a run never journals an event before the values
 * it could leak are known.
 *
 * Touches: the journald channel (vault requests), the front channel (the
 * answers of vault_service.c), the context's configuration (provider keys)
 * and its runs (held starts).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <sodium.h>

#include "grpc_status.h"
#include "log.h"
#include "vault.h"

#define VAULT_PREFIX	"/palyra.v1.VaultService/"
#define TICK_MS		250

static void	timer_cb(evutil_socket_t, short, void *);

struct wrk_vault *
wrk_vault_get(struct wrk_ctx *ctx)
{
	struct wrk_vault *v;

	if (ctx->vault != NULL)
		return ctx->vault;
	if ((v = calloc(1, sizeof(*v))) == NULL)
		return NULL;
	v->values = calloc(VAULT_ITEMS_MAX, sizeof(*v->values));
	v->incoming = calloc(VAULT_ITEMS_MAX, sizeof(*v->incoming));
	v->set = calloc(VAULT_ITEMS_MAX, sizeof(*v->set));
	v->key = sodium_malloc(WRK_VAULT_KEY_LEN);
	v->timer = evtimer_new(ctx->base, timer_cb, ctx);
	if (v->values == NULL || v->incoming == NULL || v->set == NULL ||
	    v->key == NULL || v->timer == NULL) {
		free(v->values);
		free(v->incoming);
		free(v->set);
		if (v->key != NULL)
			sodium_free(v->key);
		if (v->timer != NULL)
			event_free(v->timer);
		free(v);
		return NULL;
	}
	sodium_mprotect_noaccess(v->key);
	ctx->vault = v;
	return v;
}

int
wrk_vault_name_valid(const char *s)
{
	size_t	 i;

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

static void
value_clear(struct wrk_vault_value *val)
{
	if (val->value != NULL)
		sodium_free(val->value);	/* wipes */
	memset(val, 0, sizeof(*val));
}

static struct wrk_vault_value *
value_find(struct wrk_vault *v, const char *name)
{
	size_t	 i;

	for (i = 0; i < v->nvalues; i++)
		if (strcmp(v->values[i].name, name) == 0)
			return &v->values[i];
	return NULL;
}

/* A copy of value in sodium_malloc'd memory, or NULL. */
static uint8_t *
value_copy(const uint8_t *value, size_t len)
{
	uint8_t	*p;

	if ((p = sodium_malloc(len + 1)) == NULL)
		return NULL;
	memcpy(p, value, len);
	p[len] = '\0';
	return p;
}

/* Makes every provider whose api-key is vault:NAME use NAME's value. */
static void
credentials_apply(struct wrk_ctx *ctx)
{
	Palyra__Ipc__ProviderConfig *pc;
	struct wrk_vault_value *val;
	uint8_t	*copy;
	size_t	 i;

	if (ctx->config == NULL || ctx->vault == NULL)
		return;
	for (i = 0; i < ctx->config->n_providers; i++) {
		pc = ctx->config->providers[i];
		if (pc->api_key_vault == NULL || pc->api_key_vault[0] == '\0')
			continue;
		val = value_find(ctx->vault, pc->api_key_vault);
		copy = NULL;
		if (val != NULL && (copy = malloc(val->len)) != NULL)
			memcpy(copy, val->value, val->len);
		if (pc->api_key.data != NULL) {
			sodium_memzero(pc->api_key.data, pc->api_key.len);
			free(pc->api_key.data);
		}
		pc->api_key.data = copy;
		pc->api_key.len = copy != NULL ? val->len : 0;
	}
}

/* The key (on configure) and every provider credential are wiped. */
static void
credentials_wipe(struct wrk_ctx *ctx)
{
	Palyra__Ipc__ProviderConfig *pc;
	size_t	 i;

	if (ctx->config == NULL)
		return;
	for (i = 0; i < ctx->config->n_providers; i++) {
		pc = ctx->config->providers[i];
		if (pc->api_key_vault != NULL && pc->api_key_vault[0] != '\0' &&
		    pc->api_key.data != NULL)
			sodium_memzero(pc->api_key.data, pc->api_key.len);
	}
}

int
wrk_vault_value_set(struct wrk_ctx *ctx, const char *name, uint32_t version,
    const uint8_t *value, size_t len)
{
	struct wrk_vault *v = ctx->vault;
	struct wrk_vault_value *val;
	uint8_t	*copy;

	if ((copy = value_copy(value, len)) == NULL)
		return -ENOMEM;
	if ((val = value_find(v, name)) == NULL) {
		if (v->nvalues >= VAULT_ITEMS_MAX) {
			sodium_free(copy);
			return -ENOSPC;
		}
		val = &v->values[v->nvalues++];
		memset(val, 0, sizeof(*val));
		snprintf(val->name, sizeof(val->name), "%s", name);
	}
	if (val->value != NULL)
		sodium_free(val->value);
	val->value = copy;
	val->len = len;
	val->version = version;
	wrk_vault_set_rebuild(v);
	credentials_apply(ctx);
	return 0;
}

void
wrk_vault_value_remove(struct wrk_ctx *ctx, const char *name)
{
	struct wrk_vault *v = ctx->vault;
	struct wrk_vault_value *val;

	if ((val = value_find(v, name)) == NULL)
		return;
	value_clear(val);
	*val = v->values[--v->nvalues];
	memset(&v->values[v->nvalues], 0, sizeof(v->values[0]));
	wrk_vault_set_rebuild(v);
	credentials_apply(ctx);
}

static void
timer_arm(struct wrk_vault *v)
{
	struct timeval tv = { 0, TICK_MS * 1000 };

	if (!evtimer_pending(v->timer, NULL))
		evtimer_add(v->timer, &tv);
}

int
wrk_vault_send(struct wrk_ctx *ctx, enum ipc_type type,
    const ProtobufCMessage *msg, struct wrk_vault_pending *p)
{
	struct wrk_vault *v = ctx->vault;
	int	 r;

	if (ctx->journald == NULL || ipc_chan_dead(ctx->journald))
		return -ENOTCONN;
	if (v->npending >= WRK_VAULT_PENDING_MAX)
		return -EBUSY;
	if ((p->id = ++v->counter) == 0)
		p->id = ++v->counter;
	if ((r = ipc_chan_send(ctx->journald, type, p->id, msg, NULL, 0)) < 0)
		return r == -EPIPE ? -ENOTCONN : r;
	p->deadline_ms = wrk_now_ms() + WRK_VAULT_TIMEOUT_MS;
	v->pending[v->npending++] = *p;
	timer_arm(v);
	return 0;
}

void
wrk_vault_pending_drop(struct wrk_vault *v, size_t i)
{
	struct wrk_vault_pending *p = &v->pending[i];

	if (p->value != NULL)
		sodium_free(p->value);
	v->pending[i] = v->pending[--v->npending];
	memset(&v->pending[v->npending], 0, sizeof(v->pending[0]));
}

static int
pending_find(struct wrk_vault *v, uint32_t id, size_t *index)
{
	size_t	 i;

	for (i = 0; i < v->npending; i++)
		if (v->pending[i].id == id) {
			*index = i;
			return 1;
		}
	return 0;
}

/* No load or re-read in flight, and the first load done. */
static int
ready(const struct wrk_vault *v)
{
	size_t	 i;

	if (v == NULL || !v->has_key)
		return 1;
	if (!v->loaded)
		return 0;
	for (i = 0; i < v->npending; i++)
		if (v->pending[i].op == WRK_VAULT_OP_LOAD ||
		    v->pending[i].op == WRK_VAULT_OP_REFRESH)
			return 0;
	return 1;
}

/* A held run start (prepare_id 0 while preparing: wrk_vault_hold). */
static int
held(const struct wrk_run *run)
{
	return run->preparing && run->prepare_id == 0;
}

/* The values are known: held run starts go on to journald. */
static void
release(struct wrk_ctx *ctx)
{
	struct wrk_run *run, *next;

	if (!ready(ctx->vault))
		return;
	for (run = TAILQ_FIRST(&ctx->runs); run != NULL; run = next) {
		next = TAILQ_NEXT(run, entry);
		if (!held(run))
			continue;
		run->preparing = 0;
		if (wrk_prepare_send(run) < 0)
			wrk_run_drop(run, GRPC_STATUS_UNAVAILABLE,
			    "journal unavailable");
	}
}

int
wrk_vault_hold(struct wrk_run *run)
{
	struct wrk_ctx *ctx = run->ctx;

	if (ready(ctx->vault) || ctx->journald == NULL ||
	    ipc_chan_dead(ctx->journald))
		return 0;
	run->preparing = 1;
	run->prepare_id = 0;
	run->vault_wait_ms = wrk_now_ms();
	timer_arm(ctx->vault);
	log_debug("run %s waits for the vault's values", run->run_id);
	return 1;
}

/* Asks journald for every item, unless that is done or under way. */
static void
load_start(struct wrk_ctx *ctx)
{
	Palyra__Ipc__VaultFetch msg = PALYRA__IPC__VAULT_FETCH__INIT;
	struct wrk_vault *v = ctx->vault;
	struct wrk_vault_pending p;
	size_t	 i;
	int	 r;

	if (v == NULL || !v->has_key || v->loaded)
		return;
	for (i = 0; i < v->npending; i++)
		if (v->pending[i].op == WRK_VAULT_OP_LOAD)
			return;
	memset(&p, 0, sizeof(p));
	p.op = WRK_VAULT_OP_LOAD;
	msg.all = 1;
	if ((r = wrk_vault_send(ctx, IPC_VAULT_FETCH, &msg.base, &p)) < 0 &&
	    r != -ENOTCONN)
		log_warn("vault: cannot ask journald for the secrets: %s",
		    strerror(-r));
	timer_arm(v);
}

void
wrk_vault_start(struct wrk_ctx *ctx)
{
	struct wrk_vault *v;
	ProtobufCBinaryData *key;

	if (ctx->config == NULL)
		return;
	key = &ctx->config->vault_key;
	if ((v = wrk_vault_get(ctx)) == NULL) {
		log_warn("vault: out of memory; the vault is not available");
		if (key->data != NULL)
			sodium_memzero(key->data, key->len);
		key->len = 0;
		return;
	}
	if (key->len == WRK_VAULT_KEY_LEN) {
		sodium_mprotect_readwrite(v->key);
		memcpy(v->key, key->data, WRK_VAULT_KEY_LEN);
		sodium_mprotect_noaccess(v->key);
		if (!v->has_key)
			log_info("vault: the tenant's data key is here");
		v->has_key = 1;
	} else if (key->len != 0)
		log_error("vault: the supervisor sent a data key of %zu bytes, "
		    "not %d; the vault is not available", key->len,
		    (int)WRK_VAULT_KEY_LEN);
	if (key->data != NULL)
		sodium_memzero(key->data, key->len);
	key->len = 0;
	credentials_apply(ctx);
	load_start(ctx);
}

void
wrk_vault_journald_lost(struct wrk_ctx *ctx)
{
	struct wrk_vault *v = ctx->vault;
	struct wrk_vault_pending *p;
	size_t	 i;

	if (v == NULL)
		return;
	while (v->npending > 0) {
		p = &v->pending[v->npending - 1];
		if (p->op == WRK_VAULT_OP_PUT || p->op == WRK_VAULT_OP_GET)
			(void)wrk_service_reply(ctx, p->front_id,
			    GRPC_STATUS_UNAVAILABLE, "journal unavailable",
			    NULL);
		wrk_vault_pending_drop(v, v->npending - 1);
	}
	for (i = 0; i < v->nincoming; i++)
		value_clear(&v->incoming[i]);
	v->nincoming = 0;
	/* The next journald is read again from the start. */
	v->loaded = 0;
}

void
wrk_vault_free(struct wrk_ctx *ctx)
{
	struct wrk_vault *v = ctx->vault;
	size_t	 i;

	credentials_wipe(ctx);
	if (v == NULL)
		return;
	while (v->npending > 0)
		wrk_vault_pending_drop(v, v->npending - 1);
	for (i = 0; i < v->nvalues; i++)
		value_clear(&v->values[i]);
	for (i = 0; i < v->nincoming; i++)
		value_clear(&v->incoming[i]);
	free(v->values);
	free(v->incoming);
	free(v->set);
	sodium_free(v->key);
	event_free(v->timer);
	free(v);
	ctx->vault = NULL;
}

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct wrk_ctx	*ctx = arg;
	struct wrk_vault *v = ctx->vault;
	struct wrk_vault_pending *p;
	struct wrk_run	*run, *next;
	int64_t		 now = wrk_now_ms();
	size_t		 i;
	int		 any = 0;

	(void)fd;
	(void)what;
	for (i = v->npending; i > 0; i--) {
		p = &v->pending[i - 1];
		if (p->deadline_ms > now)
			continue;
		log_warn("vault: journald did not answer in time");
		if (p->op == WRK_VAULT_OP_PUT || p->op == WRK_VAULT_OP_GET)
			(void)wrk_service_reply(ctx, p->front_id,
			    GRPC_STATUS_UNAVAILABLE, "journal did not answer",
			    NULL);
		else if (p->op == WRK_VAULT_OP_REFRESH)
			v->loaded = 0;	/* read everything again */
		wrk_vault_pending_drop(v, i - 1);
	}
	load_start(ctx);
	for (run = TAILQ_FIRST(&ctx->runs); run != NULL; run = next) {
		next = TAILQ_NEXT(run, entry);
		if (!held(run))
			continue;
		if (now - run->vault_wait_ms < WRK_VAULT_LOAD_WAIT_MS) {
			any = 1;
			continue;
		}
		log_warn("run %s: the vault's values are not loaded; the run "
		    "does not start", run->run_id);
		wrk_run_drop(run, GRPC_STATUS_UNAVAILABLE,
		    "the vault's values could not be loaded");
	}
	release(ctx);
	if (any || v->npending > 0 || (v->has_key && !v->loaded))
		timer_arm(v);
}

/* Decrypts one item; the value in sodium_malloc'd memory, or NULL. */
static uint8_t *
item_open(struct wrk_ctx *ctx, const Palyra__Ipc__VaultItem *it,
    size_t *len)
{
	struct wrk_vault *v = ctx->vault;
	uint8_t	*out;
	int	 r;

	if (it->meta == NULL || !wrk_vault_name_valid(it->meta->name) ||
	    it->ciphertext.len <= WRK_VAULT_TAG_LEN ||
	    it->ciphertext.len > VAULT_VALUE_MAX + WRK_VAULT_TAG_LEN)
		return NULL;
	*len = it->ciphertext.len - WRK_VAULT_TAG_LEN;
	if ((out = sodium_malloc(*len + 1)) == NULL)
		return NULL;
	sodium_mprotect_readonly(v->key);
	r = wrk_vault_open(v->key, ctx->tenant, it->meta->name,
	    it->ciphertext.data, it->ciphertext.len, it->nonce.data,
	    it->nonce.len, out);
	sodium_mprotect_noaccess(v->key);
	if (r < 0) {
		sodium_free(out);
		return NULL;
	}
	out[*len] = '\0';
	return out;
}

uint8_t *
wrk_vault_item_open(struct wrk_ctx *ctx, const Palyra__Ipc__VaultItem *it,
    size_t *len)
{
	return item_open(ctx, it, len);
}

static void
load_page(struct wrk_ctx *ctx, size_t index, const Palyra__Ipc__VaultItems *m)
{
	struct wrk_vault *v = ctx->vault;
	struct wrk_vault_value *val;
	size_t	 i, len;
	uint8_t	*value;

	if (m->grpc_status != GRPC_STATUS_OK) {
		log_warn("vault: journald cannot read the secrets: %s",
		    m->error);
		goto drop;
	}
	for (i = 0; i < m->n_items; i++) {
		if ((value = item_open(ctx, m->items[i], &len)) == NULL) {
			log_warn("vault: a secret cannot be decrypted; it is "
			    "left out");
			continue;
		}
		if (v->nincoming >= VAULT_ITEMS_MAX) {
			sodium_free(value);
			continue;
		}
		val = &v->incoming[v->nincoming++];
		snprintf(val->name, sizeof(val->name), "%s",
		    m->items[i]->meta->name);
		val->version = m->items[i]->meta->version;
		val->value = value;
		val->len = len;
	}
	if (m->more) {
		v->pending[index].deadline_ms =
		    wrk_now_ms() + WRK_VAULT_TIMEOUT_MS;
		return;
	}
	/* The whole set: it replaces what was known. */
	for (i = 0; i < v->nvalues; i++)
		value_clear(&v->values[i]);
	memcpy(v->values, v->incoming, v->nincoming * sizeof(*v->values));
	v->nvalues = v->nincoming;
	memset(v->incoming, 0, v->nincoming * sizeof(*v->incoming));
	v->nincoming = 0;
	v->loaded = 1;
	wrk_vault_set_rebuild(v);
	credentials_apply(ctx);
	log_info("vault: %zu secret(s) loaded", v->nvalues);
	wrk_vault_pending_drop(v, index);
	release(ctx);
	return;
drop:
	for (i = 0; i < v->nincoming; i++)
		value_clear(&v->incoming[i]);
	v->nincoming = 0;
	wrk_vault_pending_drop(v, index);
}

static void
refresh_page(struct wrk_ctx *ctx, size_t index,
    const Palyra__Ipc__VaultItems *m)
{
	struct wrk_vault *v = ctx->vault;
	struct wrk_vault_pending *p = &v->pending[index];
	const Palyra__Ipc__VaultItem *it;
	uint8_t	*value;
	size_t	 i, len;

	if (m->grpc_status != GRPC_STATUS_OK) {
		log_warn("vault: journald cannot read a secret: %s", m->error);
		v->loaded = 0;	/* read everything again */
		wrk_vault_pending_drop(v, index);
		timer_arm(v);
		return;
	}
	for (i = 0; i < m->n_items; i++) {
		it = m->items[i];
		if (it->meta == NULL || strcmp(it->meta->name, p->name) != 0)
			continue;
		if ((value = item_open(ctx, it, &len)) == NULL) {
			log_warn("vault: secret %s cannot be decrypted",
			    p->name);
			continue;
		}
		if (wrk_vault_value_set(ctx, p->name, it->meta->version,
		    value, len) < 0)
			log_warn("vault: cannot keep secret %s", p->name);
		else
			p->found = 1;
		sodium_free(value);
	}
	if (m->more)
		return;
	if (!p->found)
		wrk_vault_value_remove(ctx, p->name);
	wrk_vault_pending_drop(v, index);
	release(ctx);
}

int
wrk_vault_on_items(struct wrk_ctx *ctx, uint32_t request_id,
    const Palyra__Ipc__VaultItems *m)
{
	struct wrk_vault *v = ctx->vault;
	struct wrk_vault_pending *p;
	size_t	 index, i;

	if (v == NULL || !pending_find(v, request_id, &index))
		return 0;	/* timed out meanwhile */
	p = &v->pending[index];
	switch (p->op) {
	case WRK_VAULT_OP_LOAD:
		load_page(ctx, index, m);
		break;
	case WRK_VAULT_OP_REFRESH:
		refresh_page(ctx, index, m);
		break;
	case WRK_VAULT_OP_GET:
		for (i = 0; m->grpc_status == GRPC_STATUS_OK &&
		    i < m->n_items; i++)
			wrk_vault_get_item(ctx, p, m->items[i]);
		if (m->more && m->grpc_status == GRPC_STATUS_OK)
			break;
		wrk_vault_get_done(ctx, p, m->grpc_status, m->error);
		wrk_vault_pending_drop(v, index);
		break;
	default:
		return -EPROTO;
	}
	return 0;
}

int
wrk_vault_on_stored(struct wrk_ctx *ctx, uint32_t request_id,
    const Palyra__Ipc__VaultStored *m)
{
	struct wrk_vault *v = ctx->vault;
	size_t	 index;

	if (v == NULL || !pending_find(v, request_id, &index))
		return 0;
	if (v->pending[index].op != WRK_VAULT_OP_PUT)
		return -EPROTO;
	wrk_vault_put_done(ctx, &v->pending[index], m);
	wrk_vault_pending_drop(v, index);
	return 0;
}

int
wrk_vault_on_changed(struct wrk_ctx *ctx, const Palyra__Ipc__VaultChanged *m)
{
	Palyra__Ipc__VaultFetch msg = PALYRA__IPC__VAULT_FETCH__INIT;
	struct wrk_vault *v = ctx->vault;
	struct wrk_vault_pending p;
	char	*names[1];
	int	 r;

	if (!wrk_vault_name_valid(m->name))
		return -EPROTO;
	if (v == NULL || !v->has_key)
		return 0;
	if (m->deleted) {
		wrk_vault_value_remove(ctx, m->name);
		return 0;
	}
	memset(&p, 0, sizeof(p));
	p.op = WRK_VAULT_OP_REFRESH;
	snprintf(p.name, sizeof(p.name), "%s", m->name);
	names[0] = p.name;
	msg.names = names;
	msg.n_names = 1;
	if ((r = wrk_vault_send(ctx, IPC_VAULT_FETCH, &msg.base, &p)) < 0) {
		log_warn("vault: cannot re-read secret %s: %s", m->name,
		    strerror(-r));
		v->loaded = 0;	/* read everything again */
		timer_arm(v);
	}
	return 0;
}

int
wrk_vault_call(struct wrk_ctx *ctx, uint32_t request_id,
    const Palyra__Ipc__ServiceCall *call)
{
	const char *method = call->method + strlen(VAULT_PREFIX);

	if (strcmp(method, "PutSecret") == 0)
		return wrk_vault_put(ctx, request_id, call);
	if (strcmp(method, "GetSecret") == 0)
		return wrk_vault_get_secret(ctx, request_id, call);
	(void)wrk_service_reply(ctx, request_id, GRPC_STATUS_UNIMPLEMENTED,
	    "unknown method", NULL);
	return 0;
}
