/*
 * test_journal_stats.c: journald/stats.c's run counters (a batch's status
 * moves count at COMMIT and are forgotten by a rollback), the commit
 * histogram's buckets, and the live runs counted from a runs table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../journald/stats.c"

static const char *const names[] = {
    "UNSPECIFIED",
    "ACCEPTED",
    "IN_PROGRESS",
    "WAITING_APPROVAL",
    "WAITING_TOOL",
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "INTERRUPTED",
};

/* tenant.c and db.c, as journald has them. */
const char *
jnl_status_name(int status)
{
	return status >= 0 && status <= JNL_RUN_STATUS_MAX ? names[status]
							   : "UNSPECIFIED";
}

int
jnl_db_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **out)
{
	return sqlite3_prepare_v2(db, sql, -1, out, NULL) == SQLITE_OK ? 0
								       : -EIO;
}

enum {
	ACCEPTED = 1,
	IN_PROGRESS,
	WAITING_APPROVAL,
	WAITING_TOOL,
	COMPLETED,
	FAILED,
	CANCELLED,
	INTERRUPTED,
};

static void
test_commit_and_rollback(void **state)
{
	struct jnl_ctx ctx;
	struct jnl_tenant t;

	memset(&ctx, 0, sizeof(ctx));
	memset(&t, 0, sizeof(t));
	clock_gettime(CLOCK_MONOTONIC, &t.batch_began);
	jnl_stats_run(&t, -1, ACCEPTED);
	jnl_stats_run(&t, ACCEPTED, IN_PROGRESS);
	jnl_stats_run(&t, -1, ACCEPTED);
	/* Nothing counts before the COMMIT. */
	assert_int_equal(t.stats.live[0], 0);
	assert_int_equal(t.stats.live[1], 0);
	t.batch_count = 5;
	jnl_stats_committed(&ctx, &t);
	assert_int_equal(t.stats.live[0], 1);
	assert_int_equal(t.stats.live[1], 1);
	assert_int_equal(ctx.commit_stats.commits, 1);
	assert_int_equal(ctx.commit_stats.appends, 5);

	/* A rolled back batch leaves no trace. */
	jnl_stats_run(&t, IN_PROGRESS, COMPLETED);
	jnl_stats_rolled_back(&t);
	t.batch_count = 0;
	jnl_stats_committed(&ctx, &t);
	assert_int_equal(t.stats.live[1], 1);
	assert_int_equal(t.stats.ended[0], 0);

	/* The same status again is no move; an unknown one is ignored. */
	jnl_stats_run(&t, IN_PROGRESS, IN_PROGRESS);
	jnl_stats_run(&t, IN_PROGRESS, 0);
	jnl_stats_run(&t, IN_PROGRESS, 99);
	jnl_stats_run(&t, IN_PROGRESS, CANCELLED);
	jnl_stats_run(&t, ACCEPTED, INTERRUPTED);
	jnl_stats_committed(&ctx, &t);
	assert_int_equal(t.stats.live[0], 0);
	assert_int_equal(t.stats.live[1], 0);
	assert_int_equal(t.stats.ended[CANCELLED - COMPLETED], 1);
	assert_int_equal(t.stats.ended[INTERRUPTED - COMPLETED], 1);
	assert_int_equal(ctx.commit_stats.commits, 3);

	/* Never below zero. */
	jnl_stats_run(&t, WAITING_TOOL, FAILED);
	jnl_stats_committed(&ctx, &t);
	assert_int_equal(t.stats.live[WAITING_TOOL - ACCEPTED], 0);
	assert_int_equal(t.stats.ended[FAILED - COMPLETED], 1);
}

static void
test_buckets(void **state)
{
	assert_int_equal(jnl_stats_bucket(0), 0);
	assert_int_equal(jnl_stats_bucket(0.0005), 0);
	assert_int_equal(jnl_stats_bucket(0.0006), 1);
	assert_int_equal(jnl_stats_bucket(0.003), 3);
	assert_int_equal(jnl_stats_bucket(0.25), JNL_COMMIT_BUCKETS - 1);
	assert_int_equal(jnl_stats_bucket(0.2501), JNL_COMMIT_BUCKETS);
	assert_int_equal(jnl_stats_bucket(1e9), JNL_COMMIT_BUCKETS);
}

static void
test_load(void **state)
{
	struct jnl_tenant t;

	memset(&t, 0, sizeof(t));
	snprintf(t.name, sizeof(t.name), "test");
	assert_int_equal(sqlite3_open(":memory:", &t.db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(t.db,
			     "CREATE TABLE runs (run_id TEXT, status TEXT);"
			     "INSERT INTO runs VALUES ('a', 'IN_PROGRESS'),"
			     " ('b', 'IN_PROGRESS'), ('c', 'WAITING_TOOL'),"
			     " ('d', 'COMPLETED'), ('e', 'INTERRUPTED'),"
			     " ('f', 'ACCEPTED'), ('g', 'BOGUS');",
			     NULL, NULL, NULL),
	    SQLITE_OK);
	t.stats.live[2] = 7;  /* replaced, not added to */
	t.stats.ended[0] = 3; /* kept: since journald started */
	assert_int_equal(jnl_stats_load(&t), 0);
	assert_int_equal(t.stats.live[0], 1);
	assert_int_equal(t.stats.live[1], 2);
	assert_int_equal(t.stats.live[2], 0);
	assert_int_equal(t.stats.live[3], 1);
	assert_int_equal(t.stats.ended[0], 3);
	sqlite3_close(t.db);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_commit_and_rollback),
	    cmocka_unit_test(test_buckets),
	    cmocka_unit_test(test_load),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
