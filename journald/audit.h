/*
 * audit.h: palyra-journald's audit of the journal for the host admin
 * (DESIGN section 8, issue 4): chain verification, signed checkpoints of
 * the chain heads, export pages and online backups, asked for by the front
 * (front/journal.c) over IPC.
 *
 * Files: audit.c (state, checkpoint key, front requests, jobs, readers),
 * verify.c (the chain walk), checkpoint.c (signing and storing heads),
 * export.c (pages of events), backup.c (SQLite online backup), prune.c
 * (pruning by age behind a signed anchor).
 *
 * Long work (a verification, a backup) is a job: it advances by a bounded
 * step (JNL_VERIFY_CHUNK events, JNL_BACKUP_STEP_PAGES pages) from a timer
 * at the group commit's priority, so that channel I/O and commits go first
 * and appends keep flowing while it runs. Reads for verification and
 * export use a read-only connection, so they see committed events only.
 */
#ifndef PALYRA_JOURNALD_AUDIT_H
#define PALYRA_JOURNALD_AUDIT_H

#include <stdint.h>

#include "chain_verify.h"
#include "journald.h"

#define JNL_SIGN_PUBLIC_LEN 32 /* crypto_sign_PUBLICKEYBYTES */
#define JNL_SIGN_SECRET_LEN 64 /* crypto_sign_SECRETKEYBYTES */
#define JNL_SIGNATURE_LEN 64   /* crypto_sign_BYTES */
#define JNL_CHECKPOINT_KEY "checkpoint.key"
#define JNL_BACKUP_DIR "backups"
#define JNL_PATH_MAX 256
/* An export page: what fits one datagram with room for the framing. */
#define JNL_EXPORT_PAGE_BYTES (IPC_MAX_PAYLOAD - 4096)

/* What the front may ask journald about the journal. */
#define JNL_AUDIT_FRONT_TYPES                                                  \
	(IPC_TYPE_BIT(IPC_JOURNAL_VERIFY_REQUEST) |                            \
	    IPC_TYPE_BIT(IPC_JOURNAL_CHECKPOINT_REQUEST) |                     \
	    IPC_TYPE_BIT(IPC_JOURNAL_PUBKEY_REQUEST) |                         \
	    IPC_TYPE_BIT(IPC_JOURNAL_EXPORT_REQUEST) |                         \
	    IPC_TYPE_BIT(IPC_JOURNAL_BACKUP_REQUEST) |                         \
	    IPC_TYPE_BIT(IPC_JOURNAL_PRUNE_REQUEST))

struct jnl_job;

/* One step of a job; returns 1 when the job is done (it is then freed). */
typedef int (*jnl_job_step_fn)(struct jnl_job *);
typedef void (*jnl_job_free_fn)(struct jnl_job *);

struct jnl_job {
	struct jnl_ctx *ctx;
	struct jnl_job *next;
	uint32_t request_id;
	struct event *ev;
	jnl_job_step_fn step;
	jnl_job_free_fn free_state;
	void *state;
};

struct jnl_audit {
	struct jnl_ctx *ctx;
	int have_key;
	uint8_t public_key[JNL_SIGN_PUBLIC_LEN];
	uint8_t secret_key[JNL_SIGN_SECRET_LEN];
	uint64_t checkpoint_interval_ms;
	struct event *checkpoint_timer;
	struct jnl_job *jobs;
	size_t njobs;
};

/* A checkpoint as stored in a journal's checkpoints table. */
struct jnl_checkpoint {
	uint64_t chain_seq; /* 0: none */
	uint8_t hash[CHAIN_HASH_LEN];
	int64_t ts_ms;
	uint8_t public_key[JNL_SIGN_PUBLIC_LEN];
	uint8_t signature[JNL_SIGNATURE_LEN];
	int malformed; /* a blob of the wrong size */
};

/* A prune anchor as stored in a journal's anchors table. */
struct jnl_anchor {
	uint64_t chain_seq; /* 0: none */
	uint8_t hash[CHAIN_HASH_LEN];
	int64_t ts_ms;
	int64_t before_ms;
	uint8_t public_key[JNL_SIGN_PUBLIC_LEN];
	uint8_t signature[JNL_SIGNATURE_LEN];
	int malformed;
};

/* audit.c */
/*
 * Sets up ctx->audit: loads STATE_DIR/checkpoint.key or creates it (0600);
 * without a usable key journald runs on, but signs nothing. Returns 0 or
 * -ENOMEM.
 */
int jnl_audit_init(struct jnl_ctx *);
void jnl_audit_free(struct jnl_ctx *);
/* JournalConfig: (re)arms the periodic checkpoint timer. */
void jnl_audit_configure(struct jnl_ctx *, uint64_t checkpoint_interval_ms);
/* A front message of a JNL_AUDIT_FRONT_TYPES type. */
void jnl_audit_front_msg(struct jnl_ctx *, const struct ipc_msg *);
/* Sends a reply to the front, logging a failure. Returns 0 or -errno. */
int jnl_audit_reply(struct jnl_ctx *, enum ipc_type, uint32_t request_id,
    const ProtobufCMessage *);
/* Starts a job (state owned by it). Returns 0, -EBUSY or -ENOMEM; on error
 * the state is freed. */
int jnl_job_start(struct jnl_ctx *, uint32_t request_id, jnl_job_step_fn,
    jnl_job_free_fn, void *state);
/* Opens a tenant's journal read-only. Returns 0 or -EIO. */
int jnl_reader_open(const struct jnl_tenant *, sqlite3 **out);
/* Reads the newest checkpoint of db. Returns 0 (cp->chain_seq 0: none)
 * or -EIO. */
int jnl_checkpoint_latest(
    sqlite3 *db, const char *tenant, struct jnl_checkpoint *cp);
/* 1 when the checkpoint's signature verifies with our key. */
int jnl_checkpoint_signature_ok(const struct jnl_audit *, const char *tenant,
    const struct jnl_checkpoint *);

/* Reads the newest anchor of db. Returns 0 (a->chain_seq 0: none) or
 * -EIO. */
int jnl_anchor_latest(sqlite3 *db, const char *tenant, struct jnl_anchor *a);
/* 1 when the anchor's signature verifies with our key. */
int jnl_anchor_signature_ok(
    const struct jnl_audit *, const char *tenant, const struct jnl_anchor *);

/* prune.c */
void jnl_prune_request(struct jnl_ctx *, const struct ipc_msg *);

/* verify.c */
void jnl_verify_request(struct jnl_ctx *, const struct ipc_msg *);

/* checkpoint.c */
void jnl_checkpoint_request(struct jnl_ctx *, const struct ipc_msg *);
/* Signs every chain head that moved; committed with the next batch. */
void jnl_checkpoint_all(struct jnl_ctx *);

/* export.c */
void jnl_export_request(struct jnl_ctx *, const struct ipc_msg *);

/* backup.c */
void jnl_backup_request(struct jnl_ctx *, const struct ipc_msg *);

#endif
