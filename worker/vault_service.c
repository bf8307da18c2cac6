/*
 * vault_service.c: VaultService PutSecret and GetSecret (palyra-worker),
 * the two methods the front routes to a worker of the tenant because only
 * a worker holds the tenant's data key. ListSecrets and DeleteSecret are
 * journald's (journald/vault.c).
 *
 *   PutSecret: check, seal (vault_crypto.c), IPC_VAULT_STORE -> journald
 *              commits -> IPC_VAULT_STORED -> SecretMeta to the caller
 *   GetSecret: check, IPC_VAULT_FETCH {name} -> IPC_VAULT_ITEMS -> open ->
 *              GetSecretResponse; a ciphertext that does not open is
 *              DATA_LOSS "the secret cannot be decrypted", nothing more
 *
 * Both need an operator or admin token (PERMISSION_DENIED for a user). The
 * principal and role are the front's verified token's; the tenant is this
 * worker's. Touches the journald channel (requests) and the front channel
 * (answers); every copy of a value it makes is wiped.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "grpc_status.h"
#include "log.h"
#include "vault.h"

#define E_NAME		"invalid secret name: 1 to 128 bytes of " \
			"[A-Za-z0-9._-], not starting with '.'"
#define E_NO_VAULT	"the vault is not available"

static int
reply(struct wrk_ctx *ctx, uint32_t id, uint32_t code, const char *message)
{
	(void)wrk_service_reply(ctx, id, code, message, NULL);
	return 0;
}

/* 0 when the caller may use the method, else the answer was sent. */
static int
refused(struct wrk_ctx *ctx, uint32_t id, const Palyra__Ipc__ServiceCall *call,
    const char *what)
{
	char	 why[96];

	if (strcmp(call->role, "operator") != 0 &&
	    strcmp(call->role, "admin") != 0) {
		snprintf(why, sizeof(why), "%s a secret needs an operator or "
		    "admin token", what);
		(void)reply(ctx, id, GRPC_STATUS_PERMISSION_DENIED, why);
		return 1;
	}
	if (ctx->vault == NULL || !ctx->vault->has_key) {
		(void)reply(ctx, id, GRPC_STATUS_FAILED_PRECONDITION,
		    E_NO_VAULT);
		return 1;
	}
	return 0;
}

static int
pending_error(struct wrk_ctx *ctx, uint32_t id, int r)
{
	if (r == -EBUSY)
		return reply(ctx, id, GRPC_STATUS_RESOURCE_EXHAUSTED,
		    "too many vault requests at once");
	return reply(ctx, id, GRPC_STATUS_UNAVAILABLE, "journal unavailable");
}

int
wrk_vault_put(struct wrk_ctx *ctx, uint32_t request_id,
    const Palyra__Ipc__ServiceCall *call)
{
	Palyra__Ipc__VaultStore msg = PALYRA__IPC__VAULT_STORE__INIT;
	Palyra__V1__SecretMeta meta = PALYRA__V1__SECRET_META__INIT;
	Palyra__V1__PutSecretRequest *req;
	struct wrk_vault_pending p;
	struct wrk_vault *v;
	uint8_t	 nonce[WRK_VAULT_NONCE_LEN], *ct = NULL;
	size_t	 len;
	int	 r;

	if (refused(ctx, request_id, call, "storing"))
		return 0;
	v = ctx->vault;
	req = palyra__v1__put_secret_request__unpack(NULL, call->request.len,
	    call->request.data);
	/* The request held the value: our copy of it goes now. */
	if (call->request.data != NULL)
		sodium_memzero(call->request.data, call->request.len);
	if (req == NULL)
		return reply(ctx, request_id, GRPC_STATUS_INVALID_ARGUMENT,
		    "invalid request message");
	len = req->value.len;
	memset(&p, 0, sizeof(p));
	if (!wrk_vault_name_valid(req->name))
		r = reply(ctx, request_id, GRPC_STATUS_INVALID_ARGUMENT,
		    E_NAME);
	else if (len == 0 || len > VAULT_VALUE_MAX)
		r = reply(ctx, request_id, GRPC_STATUS_INVALID_ARGUMENT,
		    "the value must be 1 to 65536 bytes");
	else if (strlen(req->description) > VAULT_DESCRIPTION_MAX)
		r = reply(ctx, request_id, GRPC_STATUS_INVALID_ARGUMENT,
		    "description too long (at most 256 bytes)");
	else if ((ct = malloc(len + WRK_VAULT_TAG_LEN)) == NULL ||
	    (p.value = sodium_malloc(len)) == NULL)
		r = reply(ctx, request_id, GRPC_STATUS_RESOURCE_EXHAUSTED,
		    "out of memory");
	else {
		sodium_mprotect_readonly(v->key);
		r = wrk_vault_seal(v->key, ctx->tenant, req->name,
		    req->value.data, len, ct, nonce);
		sodium_mprotect_noaccess(v->key);
		if (r < 0)
			r = reply(ctx, request_id, GRPC_STATUS_INTERNAL,
			    "the secret cannot be encrypted");
		else {
			memcpy(p.value, req->value.data, len);
			p.len = len;
			p.op = WRK_VAULT_OP_PUT;
			p.front_id = request_id;
			snprintf(p.name, sizeof(p.name), "%s", req->name);
			meta.name = req->name;
			meta.size = len;
			meta.description = req->description;
			meta.updated_by = call->principal;
			msg.meta = &meta;
			msg.set_description = req->description[0] != '\0';
			msg.ciphertext.data = ct;
			msg.ciphertext.len = len + WRK_VAULT_TAG_LEN;
			msg.nonce.data = nonce;
			msg.nonce.len = sizeof(nonce);
			if ((r = wrk_vault_send(ctx, IPC_VAULT_STORE,
			    &msg.base, &p)) == 0)
				p.value = NULL;	/* the pending entry's */
			else
				r = pending_error(ctx, request_id, r);
		}
	}
	if (p.value != NULL)
		sodium_free(p.value);
	free(ct);
	if (req->value.data != NULL)
		sodium_memzero(req->value.data, req->value.len);
	palyra__v1__put_secret_request__free_unpacked(req, NULL);
	return r;
}

void
wrk_vault_put_done(struct wrk_ctx *ctx, struct wrk_vault_pending *p,
    const Palyra__Ipc__VaultStored *m)
{
	if (m->grpc_status != GRPC_STATUS_OK || m->meta == NULL) {
		(void)reply(ctx, p->front_id, m->grpc_status != GRPC_STATUS_OK ?
		    m->grpc_status : GRPC_STATUS_INTERNAL,
		    m->error[0] != '\0' ? m->error : "journal refused");
		return;
	}
	/* Known here at once: a run started right after the answer uses and
	 * redacts the new value (VAULT_CHANGED follows for every worker). */
	if (wrk_vault_value_set(ctx, p->name, m->meta->version, p->value,
	    p->len) < 0)
		log_warn("vault: cannot keep secret %s", p->name);
	(void)wrk_service_reply(ctx, p->front_id, GRPC_STATUS_OK, NULL,
	    &m->meta->base);
}

int
wrk_vault_get_secret(struct wrk_ctx *ctx, uint32_t request_id,
    const Palyra__Ipc__ServiceCall *call)
{
	Palyra__Ipc__VaultFetch msg = PALYRA__IPC__VAULT_FETCH__INIT;
	Palyra__V1__GetSecretRequest *req;
	struct wrk_vault_pending p;
	char	*names[1];
	int	 r;

	if (refused(ctx, request_id, call, "reading"))
		return 0;
	req = palyra__v1__get_secret_request__unpack(NULL, call->request.len,
	    call->request.data);
	if (req == NULL)
		return reply(ctx, request_id, GRPC_STATUS_INVALID_ARGUMENT,
		    "invalid request message");
	if (!wrk_vault_name_valid(req->name)) {
		palyra__v1__get_secret_request__free_unpacked(req, NULL);
		return reply(ctx, request_id, GRPC_STATUS_INVALID_ARGUMENT,
		    E_NAME);
	}
	memset(&p, 0, sizeof(p));
	p.op = WRK_VAULT_OP_GET;
	p.front_id = request_id;
	snprintf(p.name, sizeof(p.name), "%s", req->name);
	palyra__v1__get_secret_request__free_unpacked(req, NULL);
	names[0] = p.name;
	msg.names = names;
	msg.n_names = 1;
	if ((r = wrk_vault_send(ctx, IPC_VAULT_FETCH, &msg.base, &p)) < 0)
		return pending_error(ctx, request_id, r);
	return 0;
}

/* Sends the GetSecretResponse, its encoding wiped after. */
static void
get_answer(struct wrk_ctx *ctx, uint32_t id, Palyra__V1__SecretMeta *meta,
    uint8_t *value, size_t len)
{
	Palyra__V1__GetSecretResponse resp =
	    PALYRA__V1__GET_SECRET_RESPONSE__INIT;
	Palyra__Ipc__ServiceReply out = PALYRA__IPC__SERVICE_REPLY__INIT;
	uint8_t	*buf;
	size_t	 size;
	int	 r;

	resp.meta = meta;
	resp.value.data = value;
	resp.value.len = len;
	size = palyra__v1__get_secret_response__get_packed_size(&resp);
	if (ctx->front == NULL || (buf = sodium_malloc(size + 1)) == NULL) {
		(void)reply(ctx, id, GRPC_STATUS_RESOURCE_EXHAUSTED,
		    "out of memory");
		return;
	}
	palyra__v1__get_secret_response__pack(&resp, buf);
	out.grpc_status = GRPC_STATUS_OK;
	out.message = (char *)"";
	out.response.data = buf;
	out.response.len = size;
	if ((r = ipc_chan_send(ctx->front, IPC_SERVICE_REPLY, id, &out.base,
	    NULL, 0)) < 0)
		log_warn("front: cannot send a service reply: %s",
		    strerror(-r));
	sodium_free(buf);
}

void
wrk_vault_get_item(struct wrk_ctx *ctx, struct wrk_vault_pending *p,
    const Palyra__Ipc__VaultItem *it)
{
	uint8_t	*value;
	size_t	 len;

	if (p->found || it->meta == NULL || strcmp(it->meta->name, p->name))
		return;
	p->found = 1;
	if ((value = wrk_vault_item_open(ctx, it, &len)) == NULL) {
		log_warn("vault: secret %s cannot be decrypted", p->name);
		(void)reply(ctx, p->front_id, GRPC_STATUS_DATA_LOSS,
		    "the secret cannot be decrypted");
		return;
	}
	get_answer(ctx, p->front_id, it->meta, value, len);
	sodium_free(value);
}

void
wrk_vault_get_done(struct wrk_ctx *ctx, struct wrk_vault_pending *p,
    uint32_t grpc_status, const char *error)
{
	if (p->found)
		return;
	if (grpc_status != GRPC_STATUS_OK)
		(void)reply(ctx, p->front_id, grpc_status,
		    error != NULL && error[0] != '\0' ? error :
		    "journal unavailable");
	else
		(void)reply(ctx, p->front_id, GRPC_STATUS_NOT_FOUND,
		    "no such secret");
}
