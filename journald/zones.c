/*
 * zones.c: a tenant's time zone for usage days and budget periods.
 * Runs in palyra-journald.
 *
 * journald lives chrooted in its state directory; the sandbox binds tzdata
 * read-only at /usr/share/zoneinfo inside it. From a zone's TZif file
 * (version 2 and later) only the POSIX TZ rule at its end is kept,
 * "CET-1CEST,M3.5.0,M10.5.0/3" for Europe/Paris: glibc evaluates such a
 * rule without any file, which is all that "today in the tenant's zone"
 * needs, since the footer describes the zone's current and future rules.
 * journald reads the file a tenant names when it needs it (usage.c);
 * jnl_zones_load() can also read every zone of a directory into a table
 * (the unit tests use it).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "usage.h"

/* Zones read at start: tzdata has about 600 outside posix/ and right/. */
#define ZONES_MAX 4096
#define ZONES_DEPTH 3
/* The tail of a zone file that holds its footer. */
#define FOOTER_READ (JNL_TZ_RULE_MAX + 2)
#define ZONE_FILE_MAX (1024 * 1024)

struct zone {
	char *name;
	char *rule;
};

struct jnl_zones {
	struct zone *zone;
	size_t n;
	size_t cap;
};

/* A zone name: "Area/City" characters, no "..", not absolute. */
static int
zone_name_valid(const char *name)
{
	size_t i;

	if (name[0] == '\0' || name[0] == '/' || name[0] == '.' ||
	    strstr(name, "..") != NULL || strstr(name, "//") != NULL)
		return 0;
	for (i = 0; name[i] != '\0'; i++) {
		if (i >= JNL_TZ_NAME_MAX)
			return 0;
		if (!((name[i] >= 'a' && name[i] <= 'z') ||
			(name[i] >= 'A' && name[i] <= 'Z') ||
			(name[i] >= '0' && name[i] <= '9') || name[i] == '/' ||
			name[i] == '_' || name[i] == '-' || name[i] == '+' ||
			name[i] == '.'))
			return 0;
	}
	return name[i - 1] != '/';
}

/* The characters of a POSIX TZ rule: names (letters or <+03>), offsets,
 * and the ",M3.5.0/3" rules. */
static int
rule_valid(const char *rule)
{
	size_t i;

	if (rule[0] == '\0')
		return 0;
	for (i = 0; rule[i] != '\0'; i++)
		if (!((rule[i] >= 'a' && rule[i] <= 'z') ||
			(rule[i] >= 'A' && rule[i] <= 'Z') ||
			(rule[i] >= '0' && rule[i] <= '9') ||
			strchr("<>+-,./:", rule[i]) != NULL))
			return 0;
	return 1;
}

int
jnl_zone_read_rule(int fd, char rule[JNL_TZ_RULE_MAX + 1])
{
	char head[5], tail[FOOTER_READ + 1];
	struct stat sb;
	off_t off;
	ssize_t n;
	char *end, *start;

	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode) ||
	    sb.st_size < 44 + 2 || sb.st_size > ZONE_FILE_MAX)
		return -ENOENT;
	if (pread(fd, head, sizeof(head), 0) != (ssize_t)sizeof(head) ||
	    memcmp(head, "TZif", 4) != 0)
		return -EINVAL;
	/* Version 1 files have no footer. */
	if (head[4] == '\0')
		return -ENOENT;
	off = sb.st_size > FOOTER_READ ? sb.st_size - FOOTER_READ : 0;
	if ((n = pread(fd, tail, FOOTER_READ, off)) <= 1)
		return -EINVAL;
	tail[n] = '\0';
	if (tail[n - 1] != '\n')
		return -EINVAL;
	tail[n - 1] = '\0';
	/* The footer starts after the newline that precedes it; the bytes
	 * before are binary and may hold anything. */
	if ((start = memrchr(tail, '\n', (size_t)(n - 1))) == NULL)
		return -EINVAL;
	start++;
	end = tail + n - 1;
	if (start == end)
		return -ENOENT; /* a zone without a POSIX rule */
	if ((size_t)(end - start) > JNL_TZ_RULE_MAX || !rule_valid(start))
		return -EINVAL;
	memcpy(rule, start, (size_t)(end - start) + 1);
	return 0;
}

static int
zones_add(struct jnl_zones *z, const char *name, const char *rule)
{
	struct zone *n;
	size_t cap;

	if (z->n == ZONES_MAX)
		return 0;
	if (z->n == z->cap) {
		cap = z->cap ? z->cap * 2 : 256;
		if ((n = reallocarray(z->zone, cap, sizeof(*n))) == NULL)
			return -ENOMEM;
		z->zone = n;
		z->cap = cap;
	}
	if ((z->zone[z->n].name = strdup(name)) == NULL)
		return -ENOMEM;
	if ((z->zone[z->n].rule = strdup(rule)) == NULL) {
		free(z->zone[z->n].name);
		return -ENOMEM;
	}
	z->n++;
	return 0;
}

/* Reads the zones beneath dirfd, whose path relative to the root is
 * prefix ("" or "Europe/"). */
static int
zones_walk(struct jnl_zones *z, int dirfd, const char *prefix, int depth)
{
	char name[JNL_TZ_NAME_MAX + 2], rule[JNL_TZ_RULE_MAX + 1];
	struct dirent *de;
	struct stat sb;
	DIR *d;
	int fd, rc = 0;

	if ((d = fdopendir(dirfd)) == NULL) {
		close(dirfd);
		return 0;
	}
	while (rc == 0 && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' ||
		    (depth == 0 && (strcmp(de->d_name, "posix") == 0 ||
				       strcmp(de->d_name, "right") == 0)))
			continue;
		if ((size_t)snprintf(name, sizeof(name), "%s%s", prefix,
			de->d_name) >= sizeof(name) ||
		    !zone_name_valid(name))
			continue;
		if ((fd = openat(dirfd, de->d_name,
			 O_RDONLY | O_CLOEXEC | O_NONBLOCK)) == -1)
			continue;
		if (fstat(fd, &sb) == -1) {
			close(fd);
			continue;
		}
		if (S_ISDIR(sb.st_mode)) {
			if (depth + 1 < ZONES_DEPTH &&
			    strlen(name) + 1 < sizeof(name) - 1) {
				strcat(name, "/");
				rc = zones_walk(z, fd, name, depth + 1);
			} else
				close(fd);
			continue;
		}
		if (jnl_zone_read_rule(fd, rule) == 0)
			rc = zones_add(z, name, rule);
		close(fd);
	}
	closedir(d);
	return rc;
}

static int
zone_cmp(const void *a, const void *b)
{
	return strcmp(
	    ((const struct zone *)a)->name, ((const struct zone *)b)->name);
}

int
jnl_zones_load(const char *dir, struct jnl_zones **out)
{
	struct jnl_zones *z;
	int fd, rc = 0;

	if ((z = calloc(1, sizeof(*z))) == NULL)
		return -ENOMEM;
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) != -1)
		rc = zones_walk(z, fd, "", 0);
	if (rc < 0) {
		jnl_zones_free(z);
		return rc;
	}
	if (z->n > 0)
		qsort(z->zone, z->n, sizeof(z->zone[0]), zone_cmp);
	*out = z;
	return 0;
}

void
jnl_zones_free(struct jnl_zones *z)
{
	size_t i;

	if (z == NULL)
		return;
	for (i = 0; i < z->n; i++) {
		free(z->zone[i].name);
		free(z->zone[i].rule);
	}
	free(z->zone);
	free(z);
}

size_t
jnl_zones_count(const struct jnl_zones *z)
{
	return z != NULL ? z->n : 0;
}

int
jnl_zone_rule(const struct jnl_zones *z, const char *dir, const char *name,
    char rule[JNL_TZ_RULE_MAX + 1])
{
	struct zone key, *found;
	char path[4096];
	int fd, rc;

	if (name == NULL || name[0] == '\0' || strcmp(name, "UTC") == 0 ||
	    strcmp(name, "Etc/UTC") == 0) {
		strcpy(rule, "UTC0");
		return 0;
	}
	if (!zone_name_valid(name))
		return -EINVAL;
	if (z != NULL && z->n > 0) {
		key.name = (char *)name;
		if ((found = bsearch(&key, z->zone, z->n, sizeof(z->zone[0]),
			 zone_cmp)) != NULL) {
			memcpy(rule, found->rule, strlen(found->rule) + 1);
			return 0;
		}
	}
	if (dir == NULL || (size_t)snprintf(path, sizeof(path), "%s/%s", dir,
			       name) >= sizeof(path))
		return -ENOENT;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) == -1)
		return -ENOENT;
	rc = jnl_zone_read_rule(fd, rule);
	close(fd);
	return rc == 0 ? 0 : -ENOENT;
}

int
jnl_zone_day(const char *rule, time_t t, char day[JNL_DAY_LEN + 1])
{
	char *saved = NULL;
	const char *old;
	struct tm tm;
	int ok;

	if (rule == NULL || !rule_valid(rule))
		return -EINVAL;
	if ((old = getenv("TZ")) != NULL && (saved = strdup(old)) == NULL)
		return -ENOMEM;
	/* journald has one thread: TZ is ours for the conversion. */
	if (setenv("TZ", rule, 1) == -1) {
		free(saved);
		return -ENOMEM;
	}
	tzset();
	ok = localtime_r(&t, &tm) != NULL;
	if (saved != NULL)
		(void)setenv("TZ", saved, 1);
	else
		(void)unsetenv("TZ");
	tzset();
	free(saved);
	if (!ok || tm.tm_year + 1900 < 1 || tm.tm_year + 1900 > 9999)
		return -EINVAL;
	snprintf(day, JNL_DAY_LEN + 1, "%04d-%02d-%02d", tm.tm_year + 1900,
	    tm.tm_mon + 1, tm.tm_mday);
	return 0;
}
