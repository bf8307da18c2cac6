/*
 * backup.c: consistent online copies of a tenant's journal
 * (`palyractl journal backup`), with SQLite's online backup API.
 *
 * Runs in palyra-journald as an audit job (audit.h). Touches
 * STATE_DIR/backups/ (created 0700): the copy is written as NAME-TIME.db.part
 * and renamed to NAME-YYYYmmddTHHMMSSZ.db once complete and synced. The
 * source is the tenant's own writing connection, so every append committed
 * while the copy runs is carried into it by SQLite (a copy from another
 * connection would restart on every commit); each step copies at most
 * JNL_BACKUP_STEP_PAGES pages, between steps appends keep committing.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "log.h"

#define NAME_TRIES 100 /* NAME-TIME-1.db ... when backups come that fast */

struct backup_state {
	struct jnl_tenant *t;
	sqlite3 *dest;
	sqlite3_backup *backup;
	char part[JNL_PATH_MAX + 8];
	char file[JNL_PATH_MAX];
	int done;
};

static void
send_result(struct jnl_ctx *ctx, uint32_t request_id, const char *tenant,
    const char *file, uint64_t size, const char *error)
{
	Palyra__Ipc__JournalBackupResult r =
	    PALYRA__IPC__JOURNAL_BACKUP_RESULT__INIT;

	r.tenant = (char *)tenant;
	r.file = (char *)(file != NULL ? file : "");
	r.size = size;
	r.error = (char *)(error != NULL ? error : "");
	(void)jnl_audit_reply(
	    ctx, IPC_JOURNAL_BACKUP_RESULT, request_id, &r.base);
}

static void
backup_free(struct jnl_job *job)
{
	struct backup_state *s = job->state;

	if (s->backup != NULL)
		(void)sqlite3_backup_finish(s->backup);
	if (s->dest != NULL)
		jnl_db_close(s->dest);
	/* An unfinished copy is not a backup. */
	if (!s->done && s->part[0] != '\0')
		(void)unlink(s->part);
	free(s);
}

static void
backup_fail(struct jnl_job *job, const char *error)
{
	struct backup_state *s = job->state;

	log_error("%s: backup failed: %s", s->t->name, error);
	send_result(job->ctx, job->request_id, s->t->name, NULL, 0, error);
}

static int
backup_step(struct jnl_job *job)
{
	struct backup_state *s = job->state;
	struct stat st;
	int rc;

	if (s->t->db == NULL) {
		backup_fail(job, "journal unavailable");
		return 1;
	}
	/* The source must not be inside a write transaction: commit the
	 * open batch now, as the commit event would. */
	if (s->t->batch == JNL_BATCH_OPEN)
		jnl_commit_all(job->ctx);
	rc = sqlite3_backup_step(s->backup, JNL_BACKUP_STEP_PAGES);
	if (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
		return 0;
	if (rc != SQLITE_DONE) {
		backup_fail(job, sqlite3_errstr(rc));
		return 1;
	}
	rc = sqlite3_backup_finish(s->backup);
	s->backup = NULL;
	if (rc != SQLITE_OK) {
		backup_fail(job, sqlite3_errstr(rc));
		return 1;
	}
	/* The copy committed (synced) in the destination; close it so that
	 * nothing of it is left in a -wal or -journal file. */
	if (sqlite3_close(s->dest) != SQLITE_OK) {
		backup_fail(job, "cannot close the copy");
		return 1;
	}
	s->dest = NULL;
	if (rename(s->part, s->file) == -1 || stat(s->file, &st) == -1) {
		backup_fail(job, strerror(errno));
		return 1;
	}
	s->done = 1;
	log_info("%s: backup %s, %lld bytes", s->t->name, s->file,
	    (long long)st.st_size);
	send_result(job->ctx, job->request_id, s->t->name, s->file,
	    (uint64_t)st.st_size, NULL);
	return 1;
}

/* Picks a free NAME-TIME[-N].db. Returns 0 or -EEXIST. */
static int
backup_names(struct backup_state *s)
{
	char stamp[32];
	struct tm tm;
	time_t now = time(NULL);
	int i;

	if (gmtime_r(&now, &tm) == NULL ||
	    strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm) == 0)
		return -EINVAL;
	for (i = 0; i < NAME_TRIES; i++) {
		if (i == 0)
			snprintf(s->file, sizeof(s->file), "%s/%s-%s.db",
			    JNL_BACKUP_DIR, s->t->name, stamp);
		else
			snprintf(s->file, sizeof(s->file), "%s/%s-%s-%d.db",
			    JNL_BACKUP_DIR, s->t->name, stamp, i);
		snprintf(s->part, sizeof(s->part), "%s.part", s->file);
		if (access(s->file, F_OK) == -1 && errno == ENOENT &&
		    access(s->part, F_OK) == -1 && errno == ENOENT)
			return 0;
	}
	s->part[0] = '\0';
	return -EEXIST;
}

void
jnl_backup_request(struct jnl_ctx *ctx, const struct ipc_msg *m)
{
	const Palyra__Ipc__JournalBackupRequest *req =
	    (const Palyra__Ipc__JournalBackupRequest *)m->msg;
	struct backup_state *s;
	struct jnl_tenant *t;
	const char *error = NULL;
	int rc;

	if (!jnl_name_valid(req->tenant) ||
	    (t = jnl_tenant_find(ctx, req->tenant)) == NULL) {
		send_result(ctx, m->hdr.request_id, req->tenant, NULL, 0,
		    "unknown tenant");
		return;
	}
	if (t->db == NULL) {
		send_result(ctx, m->hdr.request_id, t->name, NULL, 0,
		    "journal unavailable");
		return;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		send_result(
		    ctx, m->hdr.request_id, t->name, NULL, 0, "out of memory");
		return;
	}
	s->t = t;
	if (mkdir(JNL_BACKUP_DIR, S_IRWXU) == -1 && errno != EEXIST)
		error = strerror(errno);
	else if (backup_names(s) < 0)
		error = "no free backup file name";
	else if ((rc = sqlite3_open_v2(s->part, &s->dest,
		      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
			  SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW,
		      NULL)) != SQLITE_OK)
		error = sqlite3_errstr(rc);
	else if ((s->backup = sqlite3_backup_init(
		      s->dest, "main", t->db, "main")) == NULL)
		error = sqlite3_errmsg(s->dest);
	if (error != NULL) {
		log_error("%s: cannot start a backup: %s", t->name, error);
		send_result(ctx, m->hdr.request_id, t->name, NULL, 0, error);
		backup_free(&(struct jnl_job){.ctx = ctx, .state = s});
		return;
	}
	log_info("%s: backup to %s started", t->name, s->file);
	if ((rc = jnl_job_start(
		 ctx, m->hdr.request_id, backup_step, backup_free, s)) < 0)
		send_result(ctx, m->hdr.request_id, t->name, NULL, 0,
		    rc == -EBUSY ? "too many audit jobs running"
				 : "out of memory");
}
