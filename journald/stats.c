/*
 * stats.c: the journal's counters for GET /metrics (front/metrics.c):
 * each tenant's runs by status, its budget warnings and refusals (counted
 * by usage.c), and the latency of the group commits.
 *
 * Runs in palyra-journald. Touches the tenants' counters, their journal.db
 * once at open (a COUNT of the live runs) and the front's channel (the
 * answer to IPC_JOURNAL_STATS_REQUEST). Status moves seen in an open batch
 * count only once its COMMIT is durable; a rollback forgets them, so that
 * the gauges always match what the runs table holds.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "journald.h"
#include "log.h"

/* Tenants per JournalStats page: about 150 bytes each, far under
 * IPC_MAX_PAYLOAD. */
#define STATS_PAGE_TENANTS 256

/* Upper bounds of the commit latency histogram, in seconds. */
static const double commit_bounds[JNL_COMMIT_BUCKETS] = {
    0.0005,
    0.001,
    0.002,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
};

#define FIRST_LIVE PALYRA__V1__RUN_STATUS__RUN_STATUS_ACCEPTED
#define FIRST_ENDED PALYRA__V1__RUN_STATUS__RUN_STATUS_COMPLETED

_Static_assert(FIRST_LIVE + JNL_STATS_LIVE == FIRST_ENDED, "live statuses");
_Static_assert(FIRST_ENDED + JNL_STATS_ENDED - 1 == JNL_RUN_STATUS_MAX,
    "terminal statuses");

size_t
jnl_stats_bucket(double seconds)
{
	size_t b;

	for (b = 0; b < JNL_COMMIT_BUCKETS; b++)
		if (seconds <= commit_bounds[b])
			break;
	return b;
}

int
jnl_stats_load(struct jnl_tenant *t)
{
	sqlite3_stmt *st;
	const char *name;
	int rc, i, status;

	memset(t->stats.live, 0, sizeof(t->stats.live));
	memset(t->stats.batch_live, 0, sizeof(t->stats.batch_live));
	memset(t->stats.batch_ended, 0, sizeof(t->stats.batch_ended));
	if (t->db == NULL)
		return 0;
	if (jnl_db_prepare(t->db,
		"SELECT status, COUNT(*) FROM runs WHERE status NOT IN"
		" ('COMPLETED', 'FAILED', 'CANCELLED', 'INTERRUPTED')"
		" GROUP BY status",
		&st) < 0)
		return -EIO;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		name = (const char *)sqlite3_column_text(st, 0);
		status = -1;
		for (i = FIRST_LIVE; name != NULL && i < FIRST_ENDED; i++)
			if (strcmp(name, jnl_status_name(i)) == 0)
				status = i;
		if (status < 0) {
			log_warn("%s: runs in an unknown status %s not counted",
			    t->name, name != NULL ? name : "(null)");
			continue;
		}
		t->stats.live[status - FIRST_LIVE] =
		    (uint64_t)sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		log_error("%s: cannot count live runs", t->name);
		return -EIO;
	}
	return 0;
}

void
jnl_stats_run(struct jnl_tenant *t, int from, int to)
{
	struct jnl_run_stats *s = &t->stats;

	if (from == to || to < FIRST_LIVE || to > JNL_RUN_STATUS_MAX)
		return;
	if (from >= FIRST_LIVE && from < FIRST_ENDED)
		s->batch_live[from - FIRST_LIVE]--;
	if (to < FIRST_ENDED)
		s->batch_live[to - FIRST_LIVE]++;
	else
		s->batch_ended[to - FIRST_ENDED]++;
}

void
jnl_stats_committed(struct jnl_ctx *ctx, struct jnl_tenant *t)
{
	struct jnl_run_stats *s = &t->stats;
	struct jnl_commit_stats *c = &ctx->commit_stats;
	struct timespec now;
	double seconds;
	int64_t v;
	size_t i;

	for (i = 0; i < JNL_STATS_LIVE; i++) {
		v = (int64_t)s->live[i] + s->batch_live[i];
		/* Never below 0, even for a run a previous life counted
		 * differently. */
		s->live[i] = v > 0 ? (uint64_t)v : 0;
		s->batch_live[i] = 0;
	}
	for (i = 0; i < JNL_STATS_ENDED; i++) {
		s->ended[i] += s->batch_ended[i];
		s->batch_ended[i] = 0;
	}
	clock_gettime(CLOCK_MONOTONIC, &now);
	seconds = (double)(now.tv_sec - t->batch_began.tv_sec) +
		  (double)(now.tv_nsec - t->batch_began.tv_nsec) / 1e9;
	if (seconds < 0)
		seconds = 0;
	c->buckets[jnl_stats_bucket(seconds)]++;
	c->seconds += seconds;
	c->commits++;
	c->appends += t->batch_count;
}

void
jnl_stats_rolled_back(struct jnl_tenant *t)
{
	memset(t->stats.batch_live, 0, sizeof(t->stats.batch_live));
	memset(t->stats.batch_ended, 0, sizeof(t->stats.batch_ended));
}

static int
tenant_listed(const struct jnl_tenant *t)
{
	size_t i;

	for (i = 0; i < JNL_STATS_LIVE; i++)
		if (t->stats.live[i] != 0)
			return 1;
	for (i = 0; i < JNL_STATS_ENDED; i++)
		if (t->stats.ended[i] != 0)
			return 1;
	return t->budget_warnings != 0 || t->budget_refusals != 0;
}

/*
 * Answers the front with pages of STATS_PAGE_TENANTS tenants. A page the
 * channel will not take ends the answer: the front's scrape then times
 * out and reports the journal part missing.
 */
void
jnl_stats_request(struct jnl_ctx *ctx, const struct ipc_msg *m)
{
	Palyra__Ipc__JournalStats page = PALYRA__IPC__JOURNAL_STATS__INIT;
	Palyra__Ipc__JournalTenantStats items[STATS_PAGE_TENANTS];
	Palyra__Ipc__JournalTenantStats *ptrs[STATS_PAGE_TENANTS];
	uint64_t live[STATS_PAGE_TENANTS][JNL_STATS_LIVE];
	uint64_t ended[STATS_PAGE_TENANTS][JNL_STATS_ENDED];
	double bounds[JNL_COMMIT_BUCKETS];
	uint64_t buckets[JNL_COMMIT_BUCKETS + 1];
	struct jnl_tenant *t;
	size_t i = 0, n;
	int rc;

	if (ctx->front == NULL)
		return;
	memcpy(bounds, commit_bounds, sizeof(bounds));
	memcpy(buckets, ctx->commit_stats.buckets, sizeof(buckets));
	page.commit_bounds = bounds;
	page.n_commit_bounds = JNL_COMMIT_BUCKETS;
	page.commit_buckets = buckets;
	page.n_commit_buckets = JNL_COMMIT_BUCKETS + 1;
	page.commit_seconds = ctx->commit_stats.seconds;
	page.commits = ctx->commit_stats.commits;
	page.appends = ctx->commit_stats.appends;
	do {
		n = 0;
		for (; i < ctx->ntenants && n < STATS_PAGE_TENANTS; i++) {
			t = ctx->tenants[i];
			if (!tenant_listed(t))
				continue;
			palyra__ipc__journal_tenant_stats__init(&items[n]);
			items[n].tenant = t->name;
			memcpy(live[n], t->stats.live, sizeof(live[n]));
			memcpy(ended[n], t->stats.ended, sizeof(ended[n]));
			items[n].runs = live[n];
			items[n].n_runs = JNL_STATS_LIVE;
			items[n].ended = ended[n];
			items[n].n_ended = JNL_STATS_ENDED;
			/* Counted by usage.c. */
			items[n].budget_warnings = t->budget_warnings;
			items[n].budget_refusals = t->budget_refusals;
			ptrs[n] = &items[n];
			n++;
		}
		page.tenants = ptrs;
		page.n_tenants = n;
		page.more = i < ctx->ntenants;
		if ((rc = ipc_chan_send(ctx->front, IPC_JOURNAL_STATS,
			 m->hdr.request_id, &page.base, NULL, 0)) < 0) {
			log_warn("front: cannot send the journal stats: %s",
			    strerror(-rc));
			return;
		}
	} while (page.more);
}
