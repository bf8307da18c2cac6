/*
 * vault.h: the tenant vault inside palyra-worker (DESIGN section 9), shared
 * by vault.c (state, loading, provider credentials), vault_service.c
 * (VaultService PutSecret and GetSecret), vault_crypto.c (sealing) and
 * vault_redact.c (redaction by value). The tenant's data key and the
 * decrypted values live here and nowhere else in the worker; both are in
 * sodium_malloc'd memory, wiped when freed, never logged.
 */
#ifndef PALYRA_WORKER_VAULT_H
#define PALYRA_WORKER_VAULT_H

#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#include "redact.h"
#include "worker.h"

#define WRK_VAULT_KEY_LEN	crypto_aead_xchacha20poly1305_ietf_KEYBYTES
#define WRK_VAULT_NONCE_LEN	crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define WRK_VAULT_TAG_LEN	crypto_aead_xchacha20poly1305_ietf_ABYTES

/* One decrypted secret. */
struct wrk_vault_value {
	char			 name[VAULT_NAME_MAX + 1];
	uint32_t		 version;
	uint8_t			*value;	/* sodium_malloc'd */
	size_t			 len;
};

enum wrk_vault_op {
	WRK_VAULT_OP_PUT = 1,	/* VaultStore for a PutSecret */
	WRK_VAULT_OP_GET,	/* VaultFetch of one name: GetSecret */
	WRK_VAULT_OP_REFRESH,	/* the same after VAULT_CHANGED */
	WRK_VAULT_OP_LOAD,	/* VaultFetch of every item */
};

/* A request to journald waiting for its answer. */
struct wrk_vault_pending {
	enum wrk_vault_op	 op;
	uint32_t		 id;		/* to journald */
	uint32_t		 front_id;	/* PUT, GET: the call */
	int64_t			 deadline_ms;
	char			 name[VAULT_NAME_MAX + 1];
	uint8_t			*value;	/* PUT; sodium_malloc */
	size_t			 len;
	int			 found;	/* GET, REFRESH: seen */
};

struct wrk_vault {
	uint8_t			*key;	/* sodium_malloc, PROT_NONE */
	int			 has_key;
	struct wrk_vault_value	*values;	/* VAULT_ITEMS_MAX */
	size_t			 nvalues;
	/* The redaction set: the values, longest first (pointers into
	 * values[]); rebuilt after every change. */
	struct redact_secret	*set;
	size_t			 nset;
	/* Loading: done once every item was read from the journald now
	 * attached; a load (all items) or a refresh (one) in flight holds
	 * run starts (wrk_vault_hold). incoming: the load's pages. */
	int			 loaded;
	struct wrk_vault_value	*incoming;
	size_t			 nincoming;
	struct wrk_vault_pending pending[WRK_VAULT_PENDING_MAX];
	size_t			 npending;
	uint32_t		 counter;
	struct event		*timer;	/* timeouts, retries */
};

/* vault.c */
struct wrk_vault *wrk_vault_get(struct wrk_ctx *);
/* Adds or replaces name's value (copied) in v; 0 or -ENOMEM. */
int		 wrk_vault_value_set(struct wrk_ctx *, const char *name,
		    uint32_t version, const uint8_t *value, size_t len);
void		 wrk_vault_value_remove(struct wrk_ctx *, const char *name);
int		 wrk_vault_name_valid(const char *);
/* Decrypts an item of journald's; the value (NUL-terminated, *len bytes)
 * in sodium_malloc'd memory, or NULL when it does not open. */
uint8_t		*wrk_vault_item_open(struct wrk_ctx *,
		    const Palyra__Ipc__VaultItem *, size_t *len);
/* Sends a request to journald and records it as pending; 0 or -errno. */
int		 wrk_vault_send(struct wrk_ctx *, enum ipc_type,
		    const ProtobufCMessage *, struct wrk_vault_pending *);
void		 wrk_vault_pending_drop(struct wrk_vault *, size_t index);

/* vault_service.c */
int		 wrk_vault_put(struct wrk_ctx *, uint32_t request_id,
		    const Palyra__Ipc__ServiceCall *);
int		 wrk_vault_get_secret(struct wrk_ctx *, uint32_t request_id,
		    const Palyra__Ipc__ServiceCall *);
/* The answers of PUT and GET (the pending entry is dropped after). */
void		 wrk_vault_put_done(struct wrk_ctx *,
		    struct wrk_vault_pending *,
		    const Palyra__Ipc__VaultStored *);
void		 wrk_vault_get_item(struct wrk_ctx *,
		    struct wrk_vault_pending *, const Palyra__Ipc__VaultItem *);
void		 wrk_vault_get_done(struct wrk_ctx *,
		    struct wrk_vault_pending *, uint32_t grpc_status,
		    const char *error);

/* vault_crypto.c: XChaCha20-Poly1305 with additional data tenant NUL
 * name. seal: ct gets len + WRK_VAULT_TAG_LEN bytes, nonce a random one;
 * 0 or -EINVAL. open: out gets ctlen - WRK_VAULT_TAG_LEN bytes; 0, or
 * -EBADMSG for anything that does not authenticate (a wrong key, tenant
 * or name, a changed byte, a bad length). */
int		 wrk_vault_seal(const uint8_t *key, const char *tenant,
		    const char *name, const uint8_t *value, size_t len,
		    uint8_t *ct, uint8_t nonce[WRK_VAULT_NONCE_LEN]);
int		 wrk_vault_open(const uint8_t *key, const char *tenant,
		    const char *name, const uint8_t *ct, size_t ctlen,
		    const uint8_t *nonce, size_t noncelen, uint8_t *out);

/* vault_redact.c */
void		 wrk_vault_set_rebuild(struct wrk_vault *);

#endif
