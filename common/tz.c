/*
 * tz.c: time zones from TZif files (RFC 8536) and their footer POSIX TZ
 * rules. Runs in whichever process calls it (palyra-journald's cron
 * scheduler, the unit tests); touches nothing but the zone file tz_load()
 * is asked for, opened relative to the zoneinfo directory without
 * following symbolic links blindly: an alias such as "US/Eastern" is
 * followed only to a valid zone name inside that directory. No TZ
 * variable, no locale, no mutable globals.
 *
 * A file is read whole (at most TZ_FILE_MAX bytes) and checked before
 * anything is kept: the version 1 block of a version 2+ file is skipped by
 * its counts, the 64-bit block is read, every count is bounded by the
 * bytes that remain, transitions must ascend strictly and name a type
 * that exists, offsets stay within 26 hours, the footer must be a rule
 * this file can evaluate and nothing may follow it. Files with leap
 * second records ("right/" zones) are refused: civil time here is POSIX
 * time.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tz.h"

#define HEADER_LEN 44
/* Offsets beyond 26 hours are nonsense in any zone. */
#define OFFSET_MAX (26 * 3600)
#define RULE_NAME_MAX 32
/*
 * Far enough that no arithmetic below overflows, near enough for zic's
 * "big bang" transition at -2^59 that fat TZif files hold.
 */
#define T_LIMIT (INT64_C(1) << 60)
#define SYMLINK_HOPS 4

enum rule_date_kind {
	DATE_JULIAN = 1, /* Jn: 1..365, February 29 never counted */
	DATE_ZERO,	 /* n: 0..365, February 29 counted */
	DATE_MONTH,	 /* Mm.w.d */
};

struct rule_date {
	enum rule_date_kind kind;
	int n;		       /* day (J, zero) */
	int month, week, wday; /* M form */
	int32_t time;	       /* seconds after local midnight */
};

struct tz_rule {
	int32_t std_off; /* seconds east of UTC */
	int32_t dst_off;
	int has_dst;
	struct rule_date start, end;
};

struct tz_type {
	int32_t off;
	int isdst;
};

struct tz_zone {
	size_t ntrans;
	int64_t *trans;
	uint8_t *trans_type;
	size_t ntypes;
	struct tz_type *types;
	int has_rule;
	struct tz_rule rule;
};

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static int64_t
year_of_days(int64_t z)
{
	int64_t era, doe, yoe, y, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	y = yoe + era * 400;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	return y + (mp >= 10);
}

static int64_t
floor_div(int64_t a, int64_t b)
{
	return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

static int
is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int
month_days(int64_t y, int m)
{
	static const int days[12] = {
	    31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/* Local seconds (since 1970-01-01T00:00 local) of a rule date in year y. */
static int64_t
rule_date_local(const struct rule_date *rd, int64_t y)
{
	int64_t days;
	int first_wday, day;

	switch (rd->kind) {
	case DATE_JULIAN:
		days = days_from_civil(y, 1, 1) + rd->n - 1;
		if (is_leap(y) && rd->n >= 60)
			days++;
		break;
	case DATE_ZERO:
		days = days_from_civil(y, 1, 1) + rd->n;
		break;
	default:
		days = days_from_civil(y, rd->month, 1);
		/* 1970-01-01 was a Thursday. */
		first_wday = (int)((days % 7 + 7 + 4) % 7);
		day = 1 + (rd->wday - first_wday + 7) % 7 + 7 * (rd->week - 1);
		while (day > month_days(y, rd->month))
			day -= 7;
		days += day - 1;
		break;
	}
	return days * 86400 + rd->time;
}

/*
 * The rule's changes around year y, in order: the start of daylight time
 * (counted in standard time) and its end (counted in daylight time), for
 * the years y-1 to y+1. Returns how many (6); isdst says which each is.
 */
static int
rule_changes(const struct tz_rule *r, int64_t y, int64_t when[6], int dst[6])
{
	int64_t t;
	int i, j, n = 0, d;

	for (i = -1; i <= 1; i++) {
		when[n] = rule_date_local(&r->start, y + i) - r->std_off;
		dst[n++] = 1;
		when[n] = rule_date_local(&r->end, y + i) - r->dst_off;
		dst[n++] = 0;
	}
	for (i = 1; i < n; i++) {
		for (j = i; j > 0 && when[j - 1] > when[j]; j--) {
			t = when[j];
			when[j] = when[j - 1];
			when[j - 1] = t;
			d = dst[j];
			dst[j] = dst[j - 1];
			dst[j - 1] = d;
		}
	}
	return n;
}

static int64_t
year_of(int64_t t)
{
	return year_of_days(floor_div(t, 86400));
}

static int32_t
rule_offset(const struct tz_rule *r, int64_t t, int *isdst)
{
	int64_t when[6];
	int dst[6], n, i, cur;

	if (!r->has_dst) {
		*isdst = 0;
		return r->std_off;
	}
	n = rule_changes(r, year_of(t), when, dst);
	/* Before the first change of year y-1: the opposite of it. */
	cur = !dst[0];
	for (i = 0; i < n && when[i] <= t; i++)
		cur = dst[i];
	*isdst = cur;
	return cur ? r->dst_off : r->std_off;
}

/* The rule's first change strictly after t: 1 with *when and *off. */
static int
rule_next(const struct tz_rule *r, int64_t t, int64_t *when_out, int32_t *off)
{
	int64_t when[6];
	int dst[6], n, i;

	if (!r->has_dst)
		return 0;
	n = rule_changes(r, year_of(t), when, dst);
	for (i = 0; i < n; i++) {
		if (when[i] <= t)
			continue;
		/* Changes at one instant (all-year daylight time, "0/0,
		 * J365/25"): the last one says what follows. */
		while (i + 1 < n && when[i + 1] == when[i])
			i++;
		*when_out = when[i];
		*off = dst[i] ? r->dst_off : r->std_off;
		return 1;
	}
	return 0;
}

int32_t
tz_offset(const struct tz_zone *z, int64_t t, int *isdst)
{
	size_t lo, hi, mid;
	int dummy;

	if (isdst == NULL)
		isdst = &dummy;
	if (t > T_LIMIT)
		t = T_LIMIT;
	else if (t < -T_LIMIT)
		t = -T_LIMIT;
	if (z->ntrans == 0 || t > z->trans[z->ntrans - 1]) {
		if (z->has_rule)
			return rule_offset(&z->rule, t, isdst);
		if (z->ntrans == 0) {
			*isdst = z->types[0].isdst;
			return z->types[0].off;
		}
	}
	/* RFC 8536: before the first transition, type 0 applies. */
	if (t < z->trans[0]) {
		*isdst = z->types[0].isdst;
		return z->types[0].off;
	}
	/* The last transition at or before t. */
	lo = 0;
	hi = z->ntrans;
	while (hi - lo > 1) {
		mid = lo + (hi - lo) / 2;
		if (z->trans[mid] <= t)
			lo = mid;
		else
			hi = mid;
	}
	*isdst = z->types[z->trans_type[lo]].isdst;
	return z->types[z->trans_type[lo]].off;
}

/* The zone's first change strictly after t: 1 with *when and *off. */
static int
zone_next(const struct tz_zone *z, int64_t t, int64_t *when, int32_t *off)
{
	size_t lo, hi, mid;

	if (z->ntrans > 0 && t < z->trans[z->ntrans - 1]) {
		lo = 0;
		hi = z->ntrans - 1;
		/* The first transition after t lies in [lo, hi]. */
		while (lo < hi) {
			mid = lo + (hi - lo) / 2;
			if (z->trans[mid] > t)
				hi = mid;
			else
				lo = mid + 1;
		}
		*when = z->trans[lo];
		*off = z->types[z->trans_type[lo]].off;
		return 1;
	}
	if (!z->has_rule)
		return 0;
	return rule_next(&z->rule, t, when, off);
}

int
tz_local_to_utc(
    const struct tz_zone *z, int64_t local, int64_t out[2], int64_t *gap_end)
{
	int64_t seg_start, seg_end, window_end, cand, when, gap = 0;
	int32_t off, next_off;
	int n = 0, more, have_gap = 0;

	/* Far beyond any calendar that matters: answered as at the limit. */
	if (local > T_LIMIT)
		local = T_LIMIT;
	else if (local < -T_LIMIT)
		local = -T_LIMIT;
	/*
	 * Every instant whose local time is local lies within OFFSET_MAX of
	 * it. Walk the stretches of constant offset over that window: each
	 * holds at most one answer, local - offset.
	 */
	seg_start = local - OFFSET_MAX - 1;
	window_end = local + OFFSET_MAX + 1;
	off = tz_offset(z, seg_start, NULL);
	for (;;) {
		more = zone_next(z, seg_start, &when, &next_off) &&
		       when <= window_end;
		seg_end = more ? when : window_end + 1;
		cand = local - off;
		if (cand >= seg_start && cand < seg_end && n < 2)
			out[n++] = cand;
		if (!more)
			break;
		/* A forward change over local: the gap ends at the change. */
		if (!have_gap && when + off <= local &&
		    when + next_off > local) {
			gap = when;
			have_gap = 1;
		}
		seg_start = when;
		off = next_off;
	}
	if (n == 0 && gap_end != NULL)
		*gap_end = have_gap ? gap : local - off;
	return n;
}

static uint32_t
be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static int64_t
be64(const uint8_t *p)
{
	return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

struct tzif_header {
	int version;
	uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
};

static int
header_read(const uint8_t *p, size_t len, struct tzif_header *h)
{
	if (len < HEADER_LEN || memcmp(p, "TZif", 4) != 0)
		return -EBADMSG;
	if (p[4] == 0)
		h->version = 1;
	else if (p[4] >= '2' && p[4] <= '9')
		h->version = p[4] - '0';
	else
		return -EBADMSG;
	h->isutcnt = be32(p + 20);
	h->isstdcnt = be32(p + 24);
	h->leapcnt = be32(p + 28);
	h->timecnt = be32(p + 32);
	h->typecnt = be32(p + 36);
	h->charcnt = be32(p + 40);
	/* Bounded so that the block sizes below cannot overflow. */
	if (h->isutcnt > TZ_FILE_MAX || h->isstdcnt > TZ_FILE_MAX ||
	    h->leapcnt > TZ_FILE_MAX || h->timecnt > TZ_FILE_MAX ||
	    h->typecnt > TZ_FILE_MAX || h->charcnt > TZ_FILE_MAX)
		return -EBADMSG;
	return 0;
}

static size_t
block_len(const struct tzif_header *h, size_t timelen)
{
	return (size_t)h->timecnt * timelen + h->timecnt +
	       (size_t)h->typecnt * 6 + h->charcnt +
	       (size_t)h->leapcnt * (timelen + 4) + h->isstdcnt + h->isutcnt;
}

/* [+-]h[h[h]][:mm[:ss]] with hours up to max_hours; seconds in *out. */
static const char *
rule_time(const char *s, int max_hours, int32_t *out)
{
	int sign = 1, h = 0, m = 0, sec = 0, digits = 0;

	if (*s == '+' || *s == '-')
		sign = *s++ == '-' ? -1 : 1;
	while (*s >= '0' && *s <= '9' && digits < 3) {
		h = h * 10 + (*s++ - '0');
		digits++;
	}
	if (digits == 0 || h > max_hours)
		return NULL;
	if (*s == ':') {
		s++;
		if (!(s[0] >= '0' && s[0] <= '5' && s[1] >= '0' && s[1] <= '9'))
			return NULL;
		m = (s[0] - '0') * 10 + (s[1] - '0');
		s += 2;
		if (*s == ':') {
			s++;
			if (!(s[0] >= '0' && s[0] <= '5' && s[1] >= '0' &&
				s[1] <= '9'))
				return NULL;
			sec = (s[0] - '0') * 10 + (s[1] - '0');
			s += 2;
		}
	}
	*out = sign * (h * 3600 + m * 60 + sec);
	return s;
}

/* A zone abbreviation: three or more letters, or <[A-Za-z0-9+-]{3,}>. */
static const char *
rule_name(const char *s)
{
	size_t n = 0;

	if (*s == '<') {
		for (s++; *s != '>'; s++, n++) {
			if (!((*s >= 'A' && *s <= 'Z') ||
				(*s >= 'a' && *s <= 'z') ||
				(*s >= '0' && *s <= '9') || *s == '+' ||
				*s == '-'))
				return NULL;
		}
		return n >= 3 && n <= RULE_NAME_MAX ? s + 1 : NULL;
	}
	for (; (*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z'); s++)
		n++;
	return n >= 3 && n <= RULE_NAME_MAX ? s : NULL;
}

static int
rule_number(const char **sp, int min, int max, int *out)
{
	const char *s = *sp;
	int v = 0, digits = 0;

	while (*s >= '0' && *s <= '9' && digits < 4) {
		v = v * 10 + (*s++ - '0');
		digits++;
	}
	if (digits == 0 || v < min || v > max)
		return -1;
	*sp = s;
	*out = v;
	return 0;
}

static const char *
rule_date(const char *s, struct rule_date *rd)
{
	if (*s == 'J') {
		s++;
		rd->kind = DATE_JULIAN;
		if (rule_number(&s, 1, 365, &rd->n) == -1)
			return NULL;
	} else if (*s == 'M') {
		s++;
		rd->kind = DATE_MONTH;
		if (rule_number(&s, 1, 12, &rd->month) == -1 || *s++ != '.' ||
		    rule_number(&s, 1, 5, &rd->week) == -1 || *s++ != '.' ||
		    rule_number(&s, 0, 6, &rd->wday) == -1)
			return NULL;
	} else {
		rd->kind = DATE_ZERO;
		if (rule_number(&s, 0, 365, &rd->n) == -1)
			return NULL;
	}
	rd->time = 2 * 3600;
	/* RFC 8536 section 3.3.1: times of -167 to 167 hours. */
	if (*s == '/') {
		if ((s = rule_time(s + 1, 167, &rd->time)) == NULL)
			return NULL;
	}
	return s;
}

/*
 * A POSIX TZ rule as RFC 8536 footers hold it: "std offset [dst [offset]
 * [,start[/time],end[/time]]]". POSIX offsets count west of UTC; a daylight
 * name without a rule is refused, since its default is not portable.
 */
static int
rule_parse(const char *s, struct tz_rule *r)
{
	int32_t v;

	memset(r, 0, sizeof(*r));
	if ((s = rule_name(s)) == NULL || (s = rule_time(s, 24, &v)) == NULL)
		return -EBADMSG;
	r->std_off = -v;
	if (*s == '\0')
		return 0;
	if ((s = rule_name(s)) == NULL)
		return -EBADMSG;
	r->has_dst = 1;
	r->dst_off = r->std_off + 3600;
	if (*s != ',' && *s != '\0') {
		if ((s = rule_time(s, 24, &v)) == NULL)
			return -EBADMSG;
		r->dst_off = -v;
	}
	if (*s++ != ',' || (s = rule_date(s, &r->start)) == NULL ||
	    *s++ != ',' || (s = rule_date(s, &r->end)) == NULL || *s != '\0')
		return -EBADMSG;
	return 0;
}

int
tz_parse(const uint8_t *buf, size_t len, struct tz_zone **out)
{
	struct tzif_header h;
	struct tz_zone *z;
	const uint8_t *p, *types, *idx, *footer, *nl;
	size_t timelen = 4, need, i;
	char rule[256];
	int rc, last_dst;

	*out = NULL;
	if (buf == NULL || len > TZ_FILE_MAX)
		return -EBADMSG;
	if ((rc = header_read(buf, len, &h)) != 0)
		return rc;
	p = buf + HEADER_LEN;
	if (h.version >= 2) {
		/* Skip the 32-bit block: the 64-bit one follows it. */
		need = block_len(&h, 4);
		if (need > len - HEADER_LEN)
			return -EBADMSG;
		p += need;
		if ((rc = header_read(p, len - (size_t)(p - buf), &h)) != 0)
			return rc;
		p += HEADER_LEN;
		timelen = 8;
	}
	need = block_len(&h, timelen);
	if (need > len - (size_t)(p - buf))
		return -EBADMSG;
	if (h.typecnt == 0 || h.typecnt > 256 || h.charcnt == 0 ||
	    h.leapcnt != 0 || (h.isstdcnt != 0 && h.isstdcnt != h.typecnt) ||
	    (h.isutcnt != 0 && h.isutcnt != h.typecnt))
		return -EBADMSG;
	idx = p + (size_t)h.timecnt * timelen;
	types = idx + h.timecnt;
	footer = p + need;
	if ((z = calloc(1, sizeof(*z))) == NULL)
		return -ENOMEM;
	z->ntrans = h.timecnt;
	z->ntypes = h.typecnt;
	if ((z->trans = calloc(h.timecnt + 1, sizeof(*z->trans))) == NULL ||
	    (z->trans_type = calloc(h.timecnt + 1, 1)) == NULL ||
	    (z->types = calloc(h.typecnt, sizeof(*z->types))) == NULL) {
		tz_free(z);
		return -ENOMEM;
	}
	for (i = 0; i < h.typecnt; i++) {
		z->types[i].off = (int32_t)be32(types + i * 6);
		z->types[i].isdst = types[i * 6 + 4];
		if (z->types[i].off > OFFSET_MAX ||
		    z->types[i].off < -OFFSET_MAX || z->types[i].isdst > 1 ||
		    types[i * 6 + 5] >= h.charcnt)
			goto bad;
	}
	for (i = 0; i < h.timecnt; i++) {
		z->trans[i] =
		    timelen == 8 ? be64(p + i * 8) : (int32_t)be32(p + i * 4);
		z->trans_type[i] = idx[i];
		if (idx[i] >= h.typecnt || z->trans[i] > T_LIMIT ||
		    z->trans[i] < -T_LIMIT ||
		    (i > 0 && z->trans[i] <= z->trans[i - 1]))
			goto bad;
	}
	if (h.version >= 2) {
		/* "\n" rule "\n", and nothing after it. */
		if (footer >= buf + len || *footer != '\n')
			goto bad;
		footer++;
		nl = memchr(footer, '\n', (size_t)(buf + len - footer));
		if (nl == NULL || nl + 1 != buf + len ||
		    (size_t)(nl - footer) >= sizeof(rule))
			goto bad;
		memcpy(rule, footer, (size_t)(nl - footer));
		rule[nl - footer] = '\0';
		if (memchr(rule, '\0', (size_t)(nl - footer)) != NULL)
			goto bad;
		if (rule[0] != '\0') {
			if (rule_parse(rule, &z->rule) != 0)
				goto bad;
			z->has_rule = 1;
			/* RFC 8536 3.3: the rule must agree with the last
			 * transition, or tz_offset() and the changes that
			 * tz_local_to_utc() walks would disagree after it
			 * (found by tests/fuzz/fuzz_tz.c). */
			if (z->ntrans > 0 &&
			    rule_offset(&z->rule, z->trans[z->ntrans - 1],
				&last_dst) !=
				z->types[z->trans_type[z->ntrans - 1]].off)
				goto bad;
		}
	} else if (footer != buf + len)
		goto bad;
	*out = z;
	return 0;
bad:
	tz_free(z);
	return -EBADMSG;
}

/*
 * The zone tz_fixed() gives when it cannot allocate: UTC, static, never
 * freed. A caller cannot tell; an allocation failure that small means the
 * process is about to fail anyway.
 */
static struct tz_zone utc_fallback = {.has_rule = 1};

struct tz_zone *
tz_fixed(int32_t offset)
{
	struct tz_zone *z;

	if (offset > OFFSET_MAX)
		offset = OFFSET_MAX;
	else if (offset < -OFFSET_MAX)
		offset = -OFFSET_MAX;
	if ((z = calloc(1, sizeof(*z))) == NULL)
		return &utc_fallback;
	z->has_rule = 1;
	z->rule.std_off = offset;
	return z;
}

void
tz_free(struct tz_zone *z)
{
	if (z == NULL || z == &utc_fallback)
		return;
	free(z->trans);
	free(z->trans_type);
	free(z->types);
	free(z);
}

int
tz_name_valid(const char *name)
{
	size_t i, comp = 0;

	if (name == NULL || name[0] == '\0' || name[0] == '/')
		return 0;
	for (i = 0; name[i] != '\0'; i++) {
		if (i >= TZ_NAME_MAX)
			return 0;
		if (name[i] == '/') {
			/* No empty, "." or ".." component. */
			if (i == comp || (i - comp == 1 && name[comp] == '.') ||
			    (i - comp == 2 && name[comp] == '.' &&
				name[comp + 1] == '.'))
				return 0;
			comp = i + 1;
			continue;
		}
		if (!((name[i] >= 'A' && name[i] <= 'Z') ||
			(name[i] >= 'a' && name[i] <= 'z') ||
			(name[i] >= '0' && name[i] <= '9') || name[i] == '_' ||
			name[i] == '+' || name[i] == '-'))
			return 0;
	}
	return i > comp;
}

/*
 * The target of the symbolic link dir/name as a zone name: tzdata links
 * aliases ("US/Eastern" to "../America/New_York"). Only relative targets
 * that stay inside dir and make a valid name are followed. 0 or -ENOENT.
 */
static int
link_resolve(int dirfd, char name[TZ_NAME_MAX + 1])
{
	char target[TZ_NAME_MAX * 2 + 2], path[TZ_NAME_MAX * 3 + 4];
	char *comp, *save, *slash;
	size_t len = 0, clen;
	ssize_t n;

	n = readlinkat(dirfd, name, target, sizeof(target) - 1);
	if (n <= 0 || (size_t)n >= sizeof(target) - 1 || target[0] == '/')
		return -ENOENT;
	target[n] = '\0';
	/* Start from the link's own directory. */
	if ((slash = strrchr(name, '/')) != NULL) {
		len = (size_t)(slash - name);
		memcpy(path, name, len);
	}
	path[len] = '\0';
	for (comp = strtok_r(target, "/", &save); comp != NULL;
	     comp = strtok_r(NULL, "/", &save)) {
		if (strcmp(comp, ".") == 0)
			continue;
		if (strcmp(comp, "..") == 0) {
			if (len == 0)
				return -ENOENT;
			slash = strrchr(path, '/');
			len = slash != NULL ? (size_t)(slash - path) : 0;
			path[len] = '\0';
			continue;
		}
		clen = strlen(comp);
		if (len + clen + 2 > sizeof(path))
			return -ENOENT;
		if (len > 0)
			path[len++] = '/';
		memcpy(path + len, comp, clen + 1);
		len += clen;
	}
	if (!tz_name_valid(path))
		return -ENOENT;
	memcpy(name, path, len + 1);
	return 0;
}

/* Reads dir/name whole into buf; the size in *len. 0 or -errno. */
static int
file_read(int dirfd, const char *name, uint8_t *buf, size_t *len)
{
	struct stat st;
	ssize_t n;
	int fd;

	fd = openat(dirfd, name,
	    O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd == -1)
		return errno == ELOOP	 ? -ELOOP
		       : errno == ENOMEM ? -ENOMEM
					 : -ENOENT;
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -ENOENT;
	}
	if (st.st_size > TZ_FILE_MAX) {
		close(fd);
		return -EBADMSG;
	}
	/* One byte over the limit shows a file that grew past it. */
	*len = 0;
	for (;;) {
		n = read(fd, buf + *len, TZ_FILE_MAX + 1 - *len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		*len += (size_t)n;
		if (*len > TZ_FILE_MAX)
			break;
	}
	close(fd);
	return n == -1 || *len > TZ_FILE_MAX ? -EBADMSG : 0;
}

int
tz_load(const char *dir, const char *name, struct tz_zone **out)
{
	char path[TZ_NAME_MAX + 1];
	uint8_t *buf;
	size_t len = 0;
	int dirfd, rc, hops;

	*out = NULL;
	if (name == NULL)
		return -EINVAL;
	if (name[0] == '\0' || strcmp(name, "UTC") == 0) {
		*out = tz_fixed(0);
		return 0;
	}
	if (!tz_name_valid(name))
		return -EINVAL;
	memcpy(path, name, strlen(name) + 1);
	if ((buf = malloc(TZ_FILE_MAX + 1)) == NULL)
		return -ENOMEM;
	if ((dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		free(buf);
		return -ENOENT;
	}
	for (hops = 0;; hops++) {
		rc = file_read(dirfd, path, buf, &len);
		if (rc != -ELOOP)
			break;
		if (hops == SYMLINK_HOPS ||
		    (rc = link_resolve(dirfd, path)) != 0) {
			rc = -ENOENT;
			break;
		}
	}
	close(dirfd);
	if (rc == 0)
		rc = tz_parse(buf, len, out);
	free(buf);
	return rc;
}
