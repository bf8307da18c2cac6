/*
 * audit.c: the journal audit's state in palyra-journald: the checkpoint
 * signing key, the front's audit requests, audit jobs and read-only
 * connections (journald/audit.h).
 *
 * Runs in palyra-journald, after its sandbox: paths are relative to
 * STATE_DIR. Touches STATE_DIR/checkpoint.key (created 0600 on first
 * start, raw libsodium Ed25519 secret key, 64 bytes), the tenants'
 * journal.db files (read-only connections) and the front's channel.
 * The secret key never leaves this process and is wiped at exit.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <sodium.h>

#include "audit.h"
#include "log.h"

_Static_assert(
    JNL_SIGN_PUBLIC_LEN == crypto_sign_PUBLICKEYBYTES, "public key size");
_Static_assert(
    JNL_SIGN_SECRET_LEN == crypto_sign_SECRETKEYBYTES, "secret key size");
_Static_assert(JNL_SIGNATURE_LEN == crypto_sign_BYTES, "signature size");

#define KEY_TMP JNL_CHECKPOINT_KEY ".tmp"

/* The checkpoint key. */

static int
key_read(struct jnl_audit *a)
{
	struct stat st;
	ssize_t n;
	int fd;

	if ((fd = open(
		 JNL_CHECKPOINT_KEY, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		return -errno;
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    st.st_size != JNL_SIGN_SECRET_LEN) {
		close(fd);
		log_error("%s: not a %d-byte key file", JNL_CHECKPOINT_KEY,
		    JNL_SIGN_SECRET_LEN);
		return -EINVAL;
	}
	if ((st.st_mode & 077) != 0) {
		log_warn("%s: mode %03o, setting 0600", JNL_CHECKPOINT_KEY,
		    (unsigned)(st.st_mode & 0777));
		(void)fchmod(fd, S_IRUSR | S_IWUSR);
	}
	n = read(fd, a->secret_key, sizeof(a->secret_key));
	close(fd);
	if (n != (ssize_t)sizeof(a->secret_key)) {
		sodium_memzero(a->secret_key, sizeof(a->secret_key));
		log_error("%s: short read", JNL_CHECKPOINT_KEY);
		return -EIO;
	}
	if (crypto_sign_ed25519_sk_to_pk(a->public_key, a->secret_key) != 0)
		return -EINVAL;
	return 0;
}

/* Creates the key: written to a temporary file, synced, then renamed, so
 * a crash never leaves a half-written key behind. */
static int
key_create(struct jnl_audit *a)
{
	ssize_t n;
	int fd, saved;

	if (crypto_sign_keypair(a->public_key, a->secret_key) != 0)
		return -EIO;
	(void)unlink(KEY_TMP);
	if ((fd = open(KEY_TMP,
		 O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		 S_IRUSR | S_IWUSR)) == -1)
		return -errno;
	n = write(fd, a->secret_key, sizeof(a->secret_key));
	saved = errno;
	if (n != (ssize_t)sizeof(a->secret_key) || fsync(fd) == -1) {
		close(fd);
		(void)unlink(KEY_TMP);
		return n < 0 ? -saved : -EIO;
	}
	close(fd);
	if (rename(KEY_TMP, JNL_CHECKPOINT_KEY) == -1) {
		saved = errno;
		(void)unlink(KEY_TMP);
		return -saved;
	}
	log_info("%s: new checkpoint signing key created", JNL_CHECKPOINT_KEY);
	return 0;
}

static void
checkpoint_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct jnl_ctx *ctx = arg;

	if (!ctx->stopping)
		jnl_checkpoint_all(ctx);
}

int
jnl_audit_init(struct jnl_ctx *ctx)
{
	struct jnl_audit *a;
	char hex[2 * JNL_SIGN_PUBLIC_LEN + 1];
	int rc;

	if ((a = calloc(1, sizeof(*a))) == NULL)
		return -ENOMEM;
	a->ctx = ctx;
	if ((a->checkpoint_timer = event_new(ctx->base, -1, EV_PERSIST,
		 checkpoint_timer_cb, ctx)) == NULL ||
	    event_priority_set(a->checkpoint_timer, JNL_PRIO_COMMIT) == -1) {
		if (a->checkpoint_timer != NULL)
			event_free(a->checkpoint_timer);
		free(a);
		return -ENOMEM;
	}
	ctx->audit = a;
	rc = key_read(a);
	if (rc == -ENOENT)
		rc = key_create(a);
	if (rc < 0) {
		sodium_memzero(a->secret_key, sizeof(a->secret_key));
		log_error("%s: no checkpoint key (%s); checkpoints are not "
			  "signed",
		    JNL_CHECKPOINT_KEY, strerror(-rc));
		return 0;
	}
	a->have_key = 1;
	sodium_bin2hex(hex, sizeof(hex), a->public_key, sizeof(a->public_key));
	log_info("checkpoint public key %s", hex);
	jnl_audit_configure(ctx, 0);
	return 0;
}

void
jnl_audit_configure(struct jnl_ctx *ctx, uint64_t interval_ms)
{
	struct jnl_audit *a = ctx->audit;
	struct timeval tv;

	if (a == NULL)
		return;
	if (interval_ms == 0)
		interval_ms = a->checkpoint_interval_ms != 0
				  ? a->checkpoint_interval_ms
				  : JNL_CHECKPOINT_DEFAULT_MS;
	a->checkpoint_interval_ms = interval_ms;
	if (!a->have_key)
		return;
	tv.tv_sec = (time_t)(interval_ms / 1000);
	tv.tv_usec = (suseconds_t)(interval_ms % 1000) * 1000;
	event_del(a->checkpoint_timer);
	if (event_add(a->checkpoint_timer, &tv) == -1)
		log_error("cannot arm the checkpoint timer");
}

static void
job_free(struct jnl_job *job)
{
	struct jnl_audit *a = job->ctx->audit;
	struct jnl_job **p;

	for (p = &a->jobs; *p != NULL; p = &(*p)->next)
		if (*p == job) {
			*p = job->next;
			a->njobs--;
			break;
		}
	if (job->free_state != NULL)
		job->free_state(job);
	if (job->ev != NULL)
		event_free(job->ev);
	free(job);
}

void
jnl_audit_free(struct jnl_ctx *ctx)
{
	struct jnl_audit *a = ctx->audit;

	if (a == NULL)
		return;
	while (a->jobs != NULL)
		job_free(a->jobs);
	if (a->checkpoint_timer != NULL)
		event_free(a->checkpoint_timer);
	sodium_memzero(a->secret_key, sizeof(a->secret_key));
	free(a);
	ctx->audit = NULL;
}

/* Requests. */

int
jnl_audit_reply(struct jnl_ctx *ctx, enum ipc_type type, uint32_t request_id,
    const ProtobufCMessage *msg)
{
	int rc;

	if (ctx->front == NULL || ipc_chan_dead(ctx->front))
		return -EPIPE;
	if ((rc = ipc_chan_send(ctx->front, type, request_id, msg, NULL, 0)) <
	    0)
		log_warn("front: cannot send %s: %s", ipc_type_name(type),
		    strerror(-rc));
	return rc;
}

static void
pubkey_request(struct jnl_ctx *ctx, const struct ipc_msg *m)
{
	Palyra__Ipc__JournalPubkey reply = PALYRA__IPC__JOURNAL_PUBKEY__INIT;

	if (ctx->audit->have_key) {
		reply.public_key.data = ctx->audit->public_key;
		reply.public_key.len = JNL_SIGN_PUBLIC_LEN;
	}
	(void)jnl_audit_reply(
	    ctx, IPC_JOURNAL_PUBKEY, m->hdr.request_id, &reply.base);
}

void
jnl_audit_front_msg(struct jnl_ctx *ctx, const struct ipc_msg *m)
{
	if (ctx->audit == NULL)
		return;
	switch (m->hdr.type) {
	case IPC_JOURNAL_VERIFY_REQUEST:
		jnl_verify_request(ctx, m);
		break;
	case IPC_JOURNAL_CHECKPOINT_REQUEST:
		jnl_checkpoint_request(ctx, m);
		break;
	case IPC_JOURNAL_PUBKEY_REQUEST:
		pubkey_request(ctx, m);
		break;
	case IPC_JOURNAL_EXPORT_REQUEST:
		jnl_export_request(ctx, m);
		break;
	case IPC_JOURNAL_BACKUP_REQUEST:
		jnl_backup_request(ctx, m);
		break;
	case IPC_JOURNAL_PRUNE_REQUEST:
		jnl_prune_request(ctx, m);
		break;
	default:
		break;
	}
}

/* Jobs. */

static void
job_cb(evutil_socket_t fd, short what, void *arg)
{
	struct jnl_job *job = arg;
	const struct timeval now = {0, 0};

	if (job->step(job))
		job_free(job);
	else
		(void)event_add(job->ev, &now);
}

int
jnl_job_start(struct jnl_ctx *ctx, uint32_t request_id, jnl_job_step_fn step,
    jnl_job_free_fn free_state, void *state)
{
	struct jnl_audit *a = ctx->audit;
	const struct timeval now = {0, 0};
	struct jnl_job *job;

	if ((job = calloc(1, sizeof(*job))) == NULL) {
		free_state(&(struct jnl_job){.ctx = ctx, .state = state});
		return -ENOMEM;
	}
	job->ctx = ctx;
	job->request_id = request_id;
	job->step = step;
	job->free_state = free_state;
	job->state = state;
	if (a->njobs >= JNL_AUDIT_JOBS_MAX) {
		job_free(job);
		return -EBUSY;
	}
	/*
	 * The step runs at the commit's priority: after every channel that
	 * is readable was served, so appends go first, and beside the commit,
	 * which it can never starve.
	 */
	if ((job->ev = evtimer_new(ctx->base, job_cb, job)) == NULL ||
	    event_priority_set(job->ev, JNL_PRIO_COMMIT) == -1 ||
	    event_add(job->ev, &now) == -1) {
		job_free(job);
		return -ENOMEM;
	}
	job->next = a->jobs;
	a->jobs = job;
	a->njobs++;
	return 0;
}

/* Reading. */

int
jnl_reader_open(const struct jnl_tenant *t, sqlite3 **out)
{
	char path[JNL_PATH_MAX];
	sqlite3 *db = NULL;
	int rc;

	*out = NULL;
	if ((size_t)snprintf(path, sizeof(path), "tenants/%s/journal.db",
		t->name) >= sizeof(path))
		return -EIO;
	rc = sqlite3_open_v2(path, &db,
	    SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW,
	    NULL);
	if (rc != SQLITE_OK) {
		log_error("%s: cannot open for reading: %s", path,
		    db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		sqlite3_close(db);
		return -EIO;
	}
	sqlite3_extended_result_codes(db, 1);
	sqlite3_busy_timeout(db, JNL_BUSY_TIMEOUT_MS);
	*out = db;
	return 0;
}

int
jnl_checkpoint_latest(
    sqlite3 *db, const char *tenant, struct jnl_checkpoint *cp)
{
	sqlite3_stmt *st;
	int rc;

	memset(cp, 0, sizeof(*cp));
	if (jnl_db_prepare(db,
		"SELECT chain_seq, hash, ts_ms, public_key, signature"
		" FROM checkpoints ORDER BY checkpoint_id DESC LIMIT 1",
		&st) < 0)
		return -EIO;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		cp->chain_seq = (uint64_t)sqlite3_column_int64(st, 0);
		cp->ts_ms = sqlite3_column_int64(st, 2);
		if (sqlite3_column_bytes(st, 1) != CHAIN_HASH_LEN ||
		    sqlite3_column_bytes(st, 3) != JNL_SIGN_PUBLIC_LEN ||
		    sqlite3_column_bytes(st, 4) != JNL_SIGNATURE_LEN)
			cp->malformed = 1;
		else {
			memcpy(cp->hash, sqlite3_column_blob(st, 1),
			    CHAIN_HASH_LEN);
			memcpy(cp->public_key, sqlite3_column_blob(st, 3),
			    JNL_SIGN_PUBLIC_LEN);
			memcpy(cp->signature, sqlite3_column_blob(st, 4),
			    JNL_SIGNATURE_LEN);
		}
		rc = SQLITE_DONE;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		log_error("%s: cannot read the latest checkpoint", tenant);
		return -EIO;
	}
	return 0;
}

int
jnl_checkpoint_signature_ok(const struct jnl_audit *a, const char *tenant,
    const struct jnl_checkpoint *cp)
{
	uint8_t msg[CHAIN_CHECKPOINT_MSG_MAX];
	int len;

	if (!a->have_key || cp->malformed ||
	    sodium_memcmp(cp->public_key, a->public_key, JNL_SIGN_PUBLIC_LEN) !=
		0)
		return 0;
	len = chain_checkpoint_message(
	    tenant, cp->chain_seq, cp->hash, cp->ts_ms, msg, sizeof(msg));
	return len > 0 && crypto_sign_verify_detached(cp->signature, msg,
			      (unsigned long long)len, a->public_key) == 0;
}

int
jnl_anchor_latest(sqlite3 *db, const char *tenant, struct jnl_anchor *a)
{
	sqlite3_stmt *st;
	int rc;

	memset(a, 0, sizeof(*a));
	if (jnl_db_prepare(db,
		"SELECT chain_seq, hash, ts_ms, before_ms, public_key,"
		" signature FROM anchors ORDER BY chain_seq DESC LIMIT 1",
		&st) < 0)
		return -EIO;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		a->chain_seq = (uint64_t)sqlite3_column_int64(st, 0);
		a->ts_ms = sqlite3_column_int64(st, 2);
		a->before_ms = sqlite3_column_int64(st, 3);
		if (sqlite3_column_bytes(st, 1) != CHAIN_HASH_LEN ||
		    sqlite3_column_bytes(st, 4) != JNL_SIGN_PUBLIC_LEN ||
		    sqlite3_column_bytes(st, 5) != JNL_SIGNATURE_LEN)
			a->malformed = 1;
		else {
			memcpy(a->hash, sqlite3_column_blob(st, 1),
			    CHAIN_HASH_LEN);
			memcpy(a->public_key, sqlite3_column_blob(st, 4),
			    JNL_SIGN_PUBLIC_LEN);
			memcpy(a->signature, sqlite3_column_blob(st, 5),
			    JNL_SIGNATURE_LEN);
		}
		rc = SQLITE_DONE;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		log_error("%s: cannot read the latest anchor", tenant);
		return -EIO;
	}
	return 0;
}

int
jnl_anchor_signature_ok(const struct jnl_audit *au, const char *tenant,
    const struct jnl_anchor *a)
{
	uint8_t msg[CHAIN_ANCHOR_MSG_MAX];
	int len;

	if (!au->have_key || a->malformed ||
	    sodium_memcmp(a->public_key, au->public_key, JNL_SIGN_PUBLIC_LEN) !=
		0)
		return 0;
	len = chain_anchor_message(tenant, a->chain_seq, a->hash, a->ts_ms,
	    a->before_ms, msg, sizeof(msg));
	return len > 0 && crypto_sign_verify_detached(a->signature, msg,
			      (unsigned long long)len, au->public_key) == 0;
}
