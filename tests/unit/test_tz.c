/*
 * test_tz.c: time zones (common/tz.c): zone names, loading from the
 * installed tzdata (symbolic link aliases included, escapes refused),
 * offsets either side of real 2026 and 2027 transitions, local time to
 * instants across gaps and repeats, footer POSIX rules in every form
 * (built as TZif images in memory), version 1 files, and malformed images:
 * every truncation of a real file, flipped bytes, bad counts, bad footers.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "tz.h"

#define ZONEINFO "/usr/share/zoneinfo"

/* Unix seconds of a UTC civil time (tests only; no libc time zones). */
static int64_t
utc(int y, int mo, int d, int h, int mi, int s)
{
	int64_t era, yoe, doy, doe, yy = y - (mo <= 2);

	era = (yy >= 0 ? yy : yy - 399) / 400;
	yoe = yy - era * 400;
	doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return (era * 146097 + doe - 719468) * 86400 + h * 3600 + mi * 60 + s;
}

static struct tz_zone *
load(const char *name)
{
	struct tz_zone *z = NULL;

	assert_int_equal(tz_load(ZONEINFO, name, &z), 0);
	assert_non_null(z);
	return z;
}

/* The offset and daylight flag at t. */
static void
expect_offset(const struct tz_zone *z, int64_t t, int32_t off, int dst)
{
	int isdst = -1;
	int32_t got = tz_offset(z, t, &isdst);

	if (got != off || isdst != dst)
		fail_msg("at %lld: offset %d dst %d, want %d dst %d",
		    (long long)t, got, isdst, off, dst);
}

/* --- a TZif image builder ------------------------------------------ */

struct image {
	uint8_t buf[8192];
	size_t len;
};

static void
put(struct image *im, const void *p, size_t n)
{
	assert_true(im->len + n <= sizeof(im->buf));
	if (n == 0)
		return;		/* p may be NULL then */
	memcpy(im->buf + im->len, p, n);
	im->len += n;
}

static void
put32(struct image *im, uint32_t v)
{
	uint8_t b[4] = {v >> 24, v >> 16, v >> 8, v};

	put(im, b, 4);
}

static void
put64(struct image *im, int64_t v)
{
	put32(im, (uint32_t)((uint64_t)v >> 32));
	put32(im, (uint32_t)v);
}

static void
header(struct image *im, char version, uint32_t timecnt, uint32_t typecnt,
    uint32_t charcnt)
{
	uint8_t reserved[15] = {0};

	put(im, "TZif", 4);
	put(im, &version, 1);
	put(im, reserved, sizeof(reserved));
	put32(im, 0); /* isutcnt */
	put32(im, 0); /* isstdcnt */
	put32(im, 0); /* leapcnt */
	put32(im, timecnt);
	put32(im, typecnt);
	put32(im, charcnt);
}

struct ttype {
	int32_t off;
	uint8_t isdst;
};

/*
 * A TZif image: version '2' (or 0 for version 1) with the same
 * transitions in both blocks, types named "ZZZ", then the footer.
 */
static void
build(struct image *im, char version, const int64_t *trans, const uint8_t *idx,
    size_t ntrans, const struct ttype *types, size_t ntypes, const char *footer)
{
	size_t i, block, nblocks = version == 0 ? 1 : 2;

	im->len = 0;
	for (block = 0; block < nblocks; block++) {
		header(im, version, (uint32_t)ntrans, (uint32_t)ntypes, 4);
		for (i = 0; i < ntrans; i++) {
			if (block == 0)
				put32(im, (uint32_t)(int32_t)trans[i]);
			else
				put64(im, trans[i]);
		}
		put(im, idx, ntrans);
		for (i = 0; i < ntypes; i++) {
			uint8_t rest[2] = {types[i].isdst, 0};

			put32(im, (uint32_t)types[i].off);
			put(im, rest, 2);
		}
		put(im, "ZZZ", 4);
	}
	if (version != 0) {
		put(im, "\n", 1);
		put(im, footer, strlen(footer));
		put(im, "\n", 1);
	}
}

/* A footer-only zone: no transitions, one type, the rule. */
static struct tz_zone *
rule_zone(const char *rule)
{
	static const struct ttype t = {0, 0};
	struct tz_zone *z = NULL;
	struct image im;

	build(&im, '2', NULL, NULL, 0, &t, 1, rule);
	assert_int_equal(tz_parse(im.buf, im.len, &z), 0);
	assert_non_null(z);
	return z;
}

static int
rule_refused(const char *rule)
{
	static const struct ttype t = {0, 0};
	struct tz_zone *z = NULL;
	struct image im;
	int rc;

	build(&im, '2', NULL, NULL, 0, &t, 1, rule);
	rc = tz_parse(im.buf, im.len, &z);
	assert_null(z);
	return rc == -EBADMSG;
}

static uint8_t *
read_file(const char *path, size_t *len)
{
	uint8_t *buf;
	ssize_t n;
	int fd;

	assert_true((fd = open(path, O_RDONLY)) >= 0);
	buf = malloc(TZ_FILE_MAX);
	assert_non_null(buf);
	n = read(fd, buf, TZ_FILE_MAX);
	close(fd);
	assert_true(n > 0);
	*len = (size_t)n;
	return buf;
}

/* --- tests ----------------------------------------------------------- */

static void
test_name_valid(void **state)
{
	char long_name[TZ_NAME_MAX + 2];

	(void)state;
	assert_true(tz_name_valid("Europe/Prague"));
	assert_true(tz_name_valid("America/Argentina/ComodRivadavia"));
	assert_true(tz_name_valid("Etc/GMT+5"));
	assert_true(tz_name_valid("Etc/GMT-14"));
	assert_true(tz_name_valid("America/Port_of_Spain"));
	assert_true(tz_name_valid("UTC"));
	assert_false(tz_name_valid(""));
	assert_false(tz_name_valid("/etc/passwd"));
	assert_false(tz_name_valid("../etc/passwd"));
	assert_false(tz_name_valid("Europe/../../etc/passwd"));
	assert_false(tz_name_valid("Europe/./Prague"));
	assert_false(tz_name_valid("Europe//Prague"));
	assert_false(tz_name_valid("Europe/"));
	assert_false(tz_name_valid("Europe/Prague "));
	assert_false(tz_name_valid("Europe\\Prague"));
	assert_false(tz_name_valid(".hidden"));
	memset(long_name, 'a', TZ_NAME_MAX);
	long_name[TZ_NAME_MAX] = '\0';
	assert_true(tz_name_valid(long_name));
	long_name[TZ_NAME_MAX] = 'a';
	long_name[TZ_NAME_MAX + 1] = '\0';
	assert_false(tz_name_valid(long_name));
}

static void
test_load_errors(void **state)
{
	struct tz_zone *z = (struct tz_zone *)1;

	(void)state;
	assert_int_equal(tz_load(ZONEINFO, "../etc/passwd", &z), -EINVAL);
	assert_null(z);
	assert_int_equal(tz_load(ZONEINFO, "Europe/Atlantis", &z), -ENOENT);
	assert_null(z);
	assert_int_equal(tz_load(ZONEINFO, "Europe", &z), -ENOENT);
	assert_int_equal(tz_load("/nonexistent", "Europe/Prague", &z), -ENOENT);
	/* "" and "UTC" read nothing: they work without the directory. */
	assert_int_equal(tz_load("/nonexistent", "UTC", &z), 0);
	expect_offset(z, utc(2026, 7, 1, 0, 0, 0), 0, 0);
	tz_free(z);
	assert_int_equal(tz_load("/nonexistent", "", &z), 0);
	expect_offset(z, 0, 0, 0);
	tz_free(z);
}

/* Files in a scratch directory: not TZif, too big, links out of it. */
static void
test_load_files(void **state)
{
	char dir[] = "/tmp/test_tz.XXXXXX", path[256];
	struct tz_zone *z = NULL;
	uint8_t *big;
	int fd;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/Text", dir);
	assert_true((fd = open(path, O_WRONLY | O_CREAT, 0600)) >= 0);
	assert_int_equal(write(fd, "hello\n", 6), 6);
	close(fd);
	assert_int_equal(tz_load(dir, "Text", &z), -EBADMSG);
	assert_null(z);

	/* A real zone padded past TZ_FILE_MAX is refused by its size. */
	snprintf(path, sizeof(path), "%s/Big", dir);
	big = calloc(1, TZ_FILE_MAX + 1);
	assert_non_null(big);
	memcpy(big, "TZif2", 5);
	assert_true((fd = open(path, O_WRONLY | O_CREAT, 0600)) >= 0);
	assert_int_equal(write(fd, big, TZ_FILE_MAX + 1), TZ_FILE_MAX + 1);
	close(fd);
	free(big);
	assert_int_equal(tz_load(dir, "Big", &z), -EBADMSG);

	/* Links: inside the directory followed, out of it refused. */
	snprintf(path, sizeof(path), "%s/Area", dir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/Area/Real", dir);
	assert_int_equal(symlink(ZONEINFO "/Europe/Prague", path), 0);
	snprintf(path, sizeof(path), "%s/Area/Up", dir);
	assert_int_equal(symlink("../../../../../etc/passwd", path), 0);
	snprintf(path, sizeof(path), "%s/Area/Loop", dir);
	assert_int_equal(symlink("Loop", path), 0);
	snprintf(path, sizeof(path), "%s/Alias", dir);
	assert_int_equal(symlink("Area/./Real", path), 0);
	/* Absolute targets are not followed, even to real tzdata. */
	assert_int_equal(tz_load(dir, "Area/Real", &z), -ENOENT);
	assert_int_equal(tz_load(dir, "Area/Up", &z), -ENOENT);
	assert_int_equal(tz_load(dir, "Area/Loop", &z), -ENOENT);
	assert_int_equal(tz_load(dir, "Alias", &z), -ENOENT);
	assert_null(z);

	snprintf(path, sizeof(path), "%s/Alias", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/Area/Loop", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/Area/Up", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/Area/Real", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/Area", dir);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/Big", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/Text", dir);
	unlink(path);
	assert_int_equal(rmdir(dir), 0);
}

/* tzdata's own aliases are relative links: "US/Eastern". */
static void
test_load_alias(void **state)
{
	struct tz_zone *a, *b;
	int64_t t;

	(void)state;
	a = load("US/Eastern");
	b = load("America/New_York");
	for (t = utc(2026, 1, 1, 0, 0, 0); t < utc(2028, 1, 1, 0, 0, 0);
	     t += 86400 / 2)
		assert_int_equal(tz_offset(a, t, NULL), tz_offset(b, t, NULL));
	tz_free(a);
	tz_free(b);
}

static void
test_prague_offsets(void **state)
{
	struct tz_zone *z = load("Europe/Prague");

	(void)state;
	/* 2026-03-29 01:00 UTC: 02:00 CET becomes 03:00 CEST. */
	expect_offset(z, utc(2026, 3, 29, 0, 59, 59), 3600, 0);
	expect_offset(z, utc(2026, 3, 29, 1, 0, 0), 7200, 1);
	/* 2026-10-25 01:00 UTC: 03:00 CEST becomes 02:00 CET. */
	expect_offset(z, utc(2026, 10, 25, 0, 59, 59), 7200, 1);
	expect_offset(z, utc(2026, 10, 25, 1, 0, 0), 3600, 0);
	expect_offset(z, utc(2027, 3, 28, 0, 59, 59), 3600, 0);
	expect_offset(z, utc(2027, 3, 28, 1, 0, 0), 7200, 1);
	expect_offset(z, utc(2027, 10, 31, 0, 59, 59), 7200, 1);
	expect_offset(z, utc(2027, 10, 31, 1, 0, 0), 3600, 0);
	/* Long after the file's last transition: the footer rule. */
	expect_offset(z, utc(2100, 3, 28, 0, 59, 59), 3600, 0);
	expect_offset(z, utc(2100, 3, 28, 1, 0, 0), 7200, 1);
	expect_offset(z, utc(2100, 10, 31, 0, 59, 59), 7200, 1);
	expect_offset(z, utc(2100, 10, 31, 1, 0, 0), 3600, 0);
	/* History: Prague kept summer time over the 1946-47 winter. */
	expect_offset(z, utc(1946, 12, 15, 12, 0, 0), 0, 1);
	/* Before the first transition: local mean time, type 0. */
	expect_offset(z, utc(1850, 1, 1, 0, 0, 0), 3464, 0);
	tz_free(z);
}

static void
test_new_york_offsets(void **state)
{
	struct tz_zone *z = load("America/New_York");

	(void)state;
	/* 2026-03-08 07:00 UTC: 02:00 EST becomes 03:00 EDT. */
	expect_offset(z, utc(2026, 3, 8, 6, 59, 59), -18000, 0);
	expect_offset(z, utc(2026, 3, 8, 7, 0, 0), -14400, 1);
	/* 2026-11-01 06:00 UTC: 02:00 EDT becomes 01:00 EST. */
	expect_offset(z, utc(2026, 11, 1, 5, 59, 59), -14400, 1);
	expect_offset(z, utc(2026, 11, 1, 6, 0, 0), -18000, 0);
	expect_offset(z, utc(2027, 3, 14, 6, 59, 59), -18000, 0);
	expect_offset(z, utc(2027, 3, 14, 7, 0, 0), -14400, 1);
	expect_offset(z, utc(2027, 11, 7, 5, 59, 59), -14400, 1);
	expect_offset(z, utc(2027, 11, 7, 6, 0, 0), -18000, 0);
	expect_offset(z, utc(2222, 7, 1, 0, 0, 0), -14400, 1);
	expect_offset(z, utc(2222, 1, 1, 0, 0, 0), -18000, 0);
	tz_free(z);
}

static void
test_local_to_utc(void **state)
{
	struct tz_zone *z = load("Europe/Prague");
	int64_t out[2], gap_end = 0;

	(void)state;
	/* An ordinary time: one instant. */
	assert_int_equal(
	    tz_local_to_utc(z, utc(2026, 7, 1, 12, 0, 0), out, &gap_end), 1);
	assert_int_equal(out[0], utc(2026, 7, 1, 10, 0, 0));
	/* 02:30 on 2026-03-29 never happens; the gap ends at 03:00 CEST. */
	assert_int_equal(
	    tz_local_to_utc(z, utc(2026, 3, 29, 2, 30, 0), out, &gap_end), 0);
	assert_int_equal(gap_end, utc(2026, 3, 29, 1, 0, 0));
	assert_int_equal(
	    tz_local_to_utc(z, utc(2026, 3, 29, 2, 0, 0), out, NULL), 0);
	assert_int_equal(
	    tz_local_to_utc(z, utc(2026, 3, 29, 1, 59, 59), out, NULL), 1);
	assert_int_equal(out[0], utc(2026, 3, 29, 0, 59, 59));
	assert_int_equal(
	    tz_local_to_utc(z, utc(2026, 3, 29, 3, 0, 0), out, NULL), 1);
	assert_int_equal(out[0], utc(2026, 3, 29, 1, 0, 0));
	/* 02:30 on 2026-10-25 happens twice: CEST first, then CET. */
	assert_int_equal(
	    tz_local_to_utc(z, utc(2026, 10, 25, 2, 30, 0), out, &gap_end), 2);
	assert_int_equal(out[0], utc(2026, 10, 25, 0, 30, 0));
	assert_int_equal(out[1], utc(2026, 10, 25, 1, 30, 0));
	assert_int_equal(
	    tz_local_to_utc(z, utc(2026, 10, 25, 3, 0, 0), out, NULL), 1);
	/* Far in the footer rule's years too. */
	assert_int_equal(
	    tz_local_to_utc(z, utc(2100, 3, 28, 2, 30, 0), out, &gap_end), 0);
	assert_int_equal(gap_end, utc(2100, 3, 28, 1, 0, 0));
	assert_int_equal(
	    tz_local_to_utc(z, utc(2100, 10, 31, 2, 30, 0), out, NULL), 2);
	assert_int_equal(out[0], utc(2100, 10, 31, 0, 30, 0));
	assert_int_equal(out[1], utc(2100, 10, 31, 1, 30, 0));
	/* Absurd inputs answer, never overflow. */
	assert_int_equal(tz_local_to_utc(z, INT64_MAX, out, NULL), 1);
	assert_int_equal(tz_local_to_utc(z, INT64_MIN, out, NULL), 1);
	(void)tz_offset(z, INT64_MAX, NULL);
	(void)tz_offset(z, INT64_MIN, NULL);
	tz_free(z);

	z = load("America/New_York");
	assert_int_equal(
	    tz_local_to_utc(z, utc(2026, 3, 8, 2, 15, 0), out, &gap_end), 0);
	assert_int_equal(gap_end, utc(2026, 3, 8, 7, 0, 0));
	assert_int_equal(
	    tz_local_to_utc(z, utc(2026, 11, 1, 1, 15, 0), out, NULL), 2);
	assert_int_equal(out[0], utc(2026, 11, 1, 5, 15, 0));
	assert_int_equal(out[1], utc(2026, 11, 1, 6, 15, 0));
	tz_free(z);
}

static void
test_fixed(void **state)
{
	struct tz_zone *z = tz_fixed(19800);
	int64_t out[2];

	(void)state;
	assert_non_null(z);
	expect_offset(z, utc(2026, 6, 1, 0, 0, 0), 19800, 0);
	assert_int_equal(tz_local_to_utc(z, 19800, out, NULL), 1);
	assert_int_equal(out[0], 0);
	tz_free(z);
	tz_free(NULL);
}

/* Footer-only images: the rule decides every instant. */
static void
test_rules(void **state)
{
	struct tz_zone *z;
	int64_t out[2], gap_end;

	(void)state;
	z = rule_zone("EST5EDT,M3.2.0,M11.1.0");
	expect_offset(z, utc(2026, 3, 8, 6, 59, 59), -18000, 0);
	expect_offset(z, utc(2026, 3, 8, 7, 0, 0), -14400, 1);
	expect_offset(z, utc(2026, 11, 1, 5, 59, 59), -14400, 1);
	expect_offset(z, utc(2026, 11, 1, 6, 0, 0), -18000, 0);
	/* The rule also stands for the years before (no transitions). */
	expect_offset(z, utc(1990, 7, 1, 0, 0, 0), -14400, 1);
	tz_free(z);

	z = rule_zone("CET-1CEST,M3.5.0,M10.5.0/3");
	expect_offset(z, utc(2027, 3, 28, 0, 59, 59), 3600, 0);
	expect_offset(z, utc(2027, 3, 28, 1, 0, 0), 7200, 1);
	/* Week 5 is the last: October 2027 has four Sundays after 3. */
	expect_offset(z, utc(2027, 10, 31, 0, 59, 59), 7200, 1);
	expect_offset(z, utc(2027, 10, 31, 1, 0, 0), 3600, 0);
	tz_free(z);

	z = rule_zone("<+0330>-3:30");
	expect_offset(z, utc(2026, 6, 1, 0, 0, 0), 12600, 0);
	tz_free(z);
	z = rule_zone("<-03>3");
	expect_offset(z, utc(2026, 6, 1, 0, 0, 0), -10800, 0);
	tz_free(z);
	z = rule_zone("UTC0");
	expect_offset(z, utc(2026, 6, 1, 0, 0, 0), 0, 0);
	tz_free(z);
	z = rule_zone("XXX-5:45:30");
	expect_offset(z, 0, 5 * 3600 + 45 * 60 + 30, 0);
	tz_free(z);

	/* Daylight time in winter (Ireland): the changes wrap the year. */
	z = rule_zone("IST-1GMT0,M10.5.0,M3.5.0/1");
	expect_offset(z, utc(2026, 1, 15, 0, 0, 0), 0, 1);
	expect_offset(z, utc(2026, 3, 29, 0, 59, 59), 0, 1);
	expect_offset(z, utc(2026, 3, 29, 1, 0, 0), 3600, 0);
	expect_offset(z, utc(2026, 10, 25, 0, 59, 59), 3600, 0);
	expect_offset(z, utc(2026, 10, 25, 1, 0, 0), 0, 1);
	tz_free(z);

	/* The southern hemisphere: summer across the new year. */
	z = rule_zone("AEST-10AEDT,M10.1.0,M4.1.0/3");
	expect_offset(z, utc(2027, 1, 1, 0, 0, 0), 39600, 1);
	expect_offset(z, utc(2027, 7, 1, 0, 0, 0), 36000, 0);
	/* 2027-04-04 03:00 AEDT is 2027-04-03 16:00 UTC. */
	expect_offset(z, utc(2027, 4, 3, 15, 59, 59), 39600, 1);
	expect_offset(z, utc(2027, 4, 3, 16, 0, 0), 36000, 0);
	tz_free(z);

	/* Jn never counts February 29: J60 is March 1, leap year or not. */
	z = rule_zone("AAA0BBB,J60/0,J300");
	expect_offset(z, utc(2028, 2, 29, 23, 59, 59), 0, 0);
	expect_offset(z, utc(2028, 3, 1, 0, 0, 0), 3600, 1);
	expect_offset(z, utc(2027, 2, 28, 23, 59, 59), 0, 0);
	expect_offset(z, utc(2027, 3, 1, 0, 0, 0), 3600, 1);
	tz_free(z);
	/* n counts it from 0: day 59 is February 29 in a leap year. */
	z = rule_zone("AAA0BBB,59/0,300");
	expect_offset(z, utc(2028, 2, 28, 23, 59, 59), 0, 0);
	expect_offset(z, utc(2028, 2, 29, 0, 0, 0), 3600, 1);
	expect_offset(z, utc(2027, 2, 28, 23, 59, 59), 0, 0);
	expect_offset(z, utc(2027, 3, 1, 0, 0, 0), 3600, 1);
	tz_free(z);
	/* RFC 8536 times of -167 to 167 hours. */
	z = rule_zone("AAA0BBB,M3.5.0/167,M10.5.0/-167");
	/* Last Sunday of March 2026 (29th) + 167 h: April 4 23:00. */
	expect_offset(z, utc(2026, 4, 4, 22, 59, 59), 0, 0);
	expect_offset(z, utc(2026, 4, 4, 23, 0, 0), 3600, 1);
	/* Last Sunday of October (25th) - 167 h in daylight time. */
	expect_offset(z, utc(2026, 10, 17, 23, 59, 59), 3600, 1);
	expect_offset(z, utc(2026, 10, 18, 0, 0, 0), 0, 0);
	tz_free(z);
	/* RFC 8536's all-year daylight time: the changes meet. */
	z = rule_zone("EST5EDT,0/0,J365/25");
	expect_offset(z, utc(2026, 1, 1, 4, 59, 59), -14400, 1);
	expect_offset(z, utc(2026, 1, 1, 5, 0, 0), -14400, 1);
	expect_offset(z, utc(2026, 7, 1, 0, 0, 0), -14400, 1);
	assert_int_equal(
	    tz_local_to_utc(z, utc(2026, 1, 1, 0, 30, 0), out, &gap_end), 1);
	assert_int_equal(out[0], utc(2026, 1, 1, 4, 30, 0));
	assert_int_equal(
	    tz_local_to_utc(z, utc(2025, 12, 31, 23, 30, 0), out, &gap_end), 1);
	assert_int_equal(out[0], utc(2026, 1, 1, 3, 30, 0));
	tz_free(z);
	/* An explicit daylight offset. */
	z = rule_zone("AAA-10BBB-10:30,M10.1.0,M4.1.0");
	expect_offset(z, utc(2027, 1, 1, 0, 0, 0), 37800, 1);
	tz_free(z);
}

static void
test_rules_refused(void **state)
{
	(void)state;
	assert_true(rule_refused("CET"));	/* no offset */
	assert_true(rule_refused("CE-1"));	/* short name */
	assert_true(rule_refused("CET-25"));	/* offset */
	assert_true(rule_refused("CET-1CEST")); /* no dates */
	assert_true(rule_refused("CET-1CEST,M3.5.0"));
	assert_true(rule_refused("CET-1CEST,M13.5.0,M10.5.0"));
	assert_true(rule_refused("CET-1CEST,M3.6.0,M10.5.0"));
	assert_true(rule_refused("CET-1CEST,M3.5.7,M10.5.0"));
	assert_true(rule_refused("CET-1CEST,M3.5.0,M10.5.0/168"));
	assert_true(rule_refused("CET-1CEST,J0,J365"));
	assert_true(rule_refused("CET-1CEST,J1,J366"));
	assert_true(rule_refused("CET-1CEST,0,366"));
	assert_true(rule_refused("CET-1CEST,M3.5.0,M10.5.0 "));
	assert_true(rule_refused("CET-1:60"));
	assert_true(rule_refused("<+03-3"));
	assert_true(rule_refused("<+0 3>-3"));
}

/* Version 1 files: 32-bit transitions, no footer. */
static void
test_version1(void **state)
{
	static const int64_t trans[] = {1000000000, 1100000000};
	static const uint8_t idx[] = {1, 0};
	static const struct ttype types[] = {{3600, 0}, {7200, 1}};
	struct tz_zone *z = NULL;
	struct image im;

	(void)state;
	build(&im, 0, trans, idx, 2, types, 2, "");
	assert_int_equal(tz_parse(im.buf, im.len, &z), 0);
	expect_offset(z, 999999999, 3600, 0);
	expect_offset(z, 1000000000, 7200, 1);
	expect_offset(z, 1099999999, 7200, 1);
	expect_offset(z, 1100000000, 3600, 0);
	expect_offset(z, INT64_C(4000000000), 3600, 0);
	tz_free(z);

	/* Version 2 with an empty footer: the last type stays. */
	build(&im, '2', trans, idx, 2, types, 2, "");
	assert_int_equal(tz_parse(im.buf, im.len, &z), 0);
	expect_offset(z, INT64_C(4000000000), 3600, 0);
	tz_free(z);
	/* zic's "big bang" transition at -2^59 (fat files) is read. */
	{
		static const int64_t fat[] = {-(INT64_C(1) << 59), 1000000000};

		build(&im, '2', fat, idx, 2, types, 2, "AAA-1");
		assert_int_equal(tz_parse(im.buf, im.len, &z), 0);
		expect_offset(z, -(INT64_C(1) << 58), 7200, 1);
		expect_offset(z, 1000000000, 3600, 0);
		tz_free(z);
	}
	/* Version 3 and 4 files read the same. */
	build(&im, '4', trans, idx, 2, types, 2, "AAA-1");
	assert_int_equal(tz_parse(im.buf, im.len, &z), 0);
	expect_offset(z, 1050000000, 7200, 1);
	tz_free(z);
}

/* Every proper prefix of a real file is refused cleanly. */
static void
test_truncations(void **state)
{
	const char *files[] = {ZONEINFO "/Europe/Prague",
	    ZONEINFO "/America/New_York", ZONEINFO "/Etc/UTC"};
	struct tz_zone *z;
	uint8_t *buf, *copy;
	size_t len, i, f;

	(void)state;
	for (f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
		buf = read_file(files[f], &len);
		z = NULL;
		assert_int_equal(tz_parse(buf, len, &z), 0);
		tz_free(z);
		for (i = 0; i < len; i++) {
			/* A copy of exactly i bytes: ASan sees any overread. */
			copy = malloc(i + 1);
			assert_non_null(copy);
			memcpy(copy, buf, i);
			z = (struct tz_zone *)1;
			assert_int_equal(tz_parse(copy, i, &z), -EBADMSG);
			assert_null(z);
			free(copy);
		}
		free(buf);
	}
}

/* Any single byte changed: parsed or refused, never a crash. */
static void
test_flipped_bytes(void **state)
{
	static const uint8_t values[] = {0x00, 0x01, 0x7f, 0x80, 0xff};
	struct tz_zone *z;
	uint8_t *buf, *copy;
	size_t len, i, v;
	int rc;

	(void)state;
	buf = read_file(ZONEINFO "/Europe/Prague", &len);
	copy = malloc(len);
	assert_non_null(copy);
	for (i = 0; i < len; i++) {
		for (v = 0; v < sizeof(values); v++) {
			memcpy(copy, buf, len);
			copy[i] = values[v];
			z = NULL;
			rc = tz_parse(copy, len, &z);
			assert_true(rc == 0 || rc == -EBADMSG);
			if (rc == 0)
				(void)tz_offset(
				    z, utc(2026, 3, 29, 1, 0, 0), NULL);
			tz_free(z);
		}
	}
	free(copy);
	free(buf);
}

static void
test_malformed(void **state)
{
	static const int64_t trans[] = {100, 200};
	static const int64_t backwards[] = {200, 100};
	static const uint8_t idx[] = {1, 0};
	static const uint8_t bad_idx[] = {1, 2};
	static const struct ttype types[] = {{3600, 0}, {7200, 1}};
	static const struct ttype bad_off[] = {{3600, 0}, {27 * 3600, 1}};
	struct tz_zone *z = NULL;
	struct image im;

	(void)state;
	build(&im, '2', trans, idx, 2, types, 2, "AAA-1");
	assert_int_equal(tz_parse(im.buf, im.len, &z), 0);
	tz_free(z);
	z = NULL;

	/* Trailing bytes after the footer. */
	put(&im, "x", 1);
	assert_int_equal(tz_parse(im.buf, im.len, &z), -EBADMSG);
	/* Bad magic and version. */
	build(&im, '2', trans, idx, 2, types, 2, "AAA-1");
	im.buf[0] = 'X';
	assert_int_equal(tz_parse(im.buf, im.len, &z), -EBADMSG);
	build(&im, '2', trans, idx, 2, types, 2, "AAA-1");
	im.buf[4] = 'x';
	assert_int_equal(tz_parse(im.buf, im.len, &z), -EBADMSG);
	/* A type index that does not exist. */
	build(&im, '2', trans, bad_idx, 2, types, 2, "AAA-1");
	assert_int_equal(tz_parse(im.buf, im.len, &z), -EBADMSG);
	/* Transitions that go backwards. */
	build(&im, '2', backwards, idx, 2, types, 2, "AAA-1");
	assert_int_equal(tz_parse(im.buf, im.len, &z), -EBADMSG);
	/* An offset of 27 hours. */
	build(&im, '2', trans, idx, 2, bad_off, 2, "AAA-1");
	assert_int_equal(tz_parse(im.buf, im.len, &z), -EBADMSG);
	/* No types at all. */
	build(&im, '2', NULL, NULL, 0, types, 0, "AAA-1");
	assert_int_equal(tz_parse(im.buf, im.len, &z), -EBADMSG);
	/* A count far beyond the buffer (timecnt of the 64-bit block). */
	build(&im, '2', trans, idx, 2, types, 2, "AAA-1");
	memset(im.buf + 44 + 2 * 4 + 2 + 2 * 6 + 4 + 32, 0xff, 4);
	assert_int_equal(tz_parse(im.buf, im.len, &z), -EBADMSG);
	/* Leap second records ("right/" zones) are refused. */
	im.len = 0;
	header(&im, 0, 0, 1, 4);
	im.buf[31] = 1;
	put32(&im, 0);
	put(&im, "\0\0", 2);
	put(&im, "ZZZ", 4);
	put32(&im, 0);
	put32(&im, 0);
	assert_int_equal(tz_parse(im.buf, im.len, &z), -EBADMSG);
	/* Over TZ_FILE_MAX, whatever it holds. */
	assert_int_equal(tz_parse(im.buf, TZ_FILE_MAX + 1, &z), -EBADMSG);
	assert_int_equal(tz_parse(NULL, 0, &z), -EBADMSG);
	assert_null(z);
	/* A NUL inside the footer. */
	build(&im, '2', trans, idx, 2, types, 2, "AAA-1");
	im.buf[im.len - 3] = '\0';
	assert_int_equal(tz_parse(im.buf, im.len, &z), -EBADMSG);
}

/*
 * RFC 8536 3.3: a footer that disagrees with the last transition is
 * refused. Such a file (found by tests/fuzz/fuzz_tz.c, kept in
 * tests/fuzz/regress/tz/) made tz_local_to_utc() answer instants whose
 * local time was not the one asked, after the last transition.
 */
static void
test_footer_disagrees(void **state)
{
	static const int64_t trans[] = {1000000000};
	static const uint8_t idx[] = {1};
	static const struct ttype types[] = {{3600, 0}, {7200, 1}};
	struct tz_zone *z = NULL;
	struct image im;
	int64_t out[2];
	int n;

	(void)state;
	build(&im, '2', trans, idx, 1, types, 2, "AAA-1");
	assert_int_equal(tz_parse(im.buf, im.len, &z), -EBADMSG);
	assert_null(z);
	build(&im, '2', trans, idx, 1, types, 2,
	    "<+1030>-10:30<+22>-22,M10.1.0,M4.1.0");
	assert_int_equal(tz_parse(im.buf, im.len, &z), -EBADMSG);
	/* Agreeing, the same zone is read, and maps back both ways. */
	build(&im, '2', trans, idx, 1, types, 2, "BBB-2");
	assert_int_equal(tz_parse(im.buf, im.len, &z), 0);
	expect_offset(z, 1000000001, 7200, 0);
	n = tz_local_to_utc(z, INT64_C(2000000000) + 7200, out, NULL);
	assert_int_equal(n, 1);
	assert_int_equal(out[0], INT64_C(2000000000));
	tz_free(z);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_name_valid),
	    cmocka_unit_test(test_load_errors),
	    cmocka_unit_test(test_load_files),
	    cmocka_unit_test(test_load_alias),
	    cmocka_unit_test(test_prague_offsets),
	    cmocka_unit_test(test_new_york_offsets),
	    cmocka_unit_test(test_local_to_utc),
	    cmocka_unit_test(test_fixed),
	    cmocka_unit_test(test_rules),
	    cmocka_unit_test(test_rules_refused),
	    cmocka_unit_test(test_version1),
	    cmocka_unit_test(test_truncations),
	    cmocka_unit_test(test_flipped_bytes),
	    cmocka_unit_test(test_malformed),
	    cmocka_unit_test(test_footer_disagrees),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
