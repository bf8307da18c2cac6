/*
 * cgroup.c: per-tenant control groups (DESIGN section 4). Runs in palyrad,
 * as root; touches only the cgroup file systems and /proc/self.
 *
 * At start-up sup_cgroup_init() decides once how children are confined:
 *
 *   v2    a cgroup2 mount whose cgroup.controllers (of palyrad's own group)
 *         offers memory and pids. The "no internal processes" rule allows
 *         controllers only in groups without processes, so palyrad first
 *         moves itself into the leaf palyra/supervisor and then enables
 *         +memory +pids (+cpu) in its former group and in palyra/.
 *   v1    otherwise, the memory, pids and cpu (optional) hierarchies found
 *         in /proc/self/mountinfo, with palyrad's group in each taken from
 *         /proc/self/cgroup. Hosts whose v2 mount carries no controllers
 *         (a "hybrid" layout) land here.
 *   none  neither works: logged once, reported as "cgroups: unavailable".
 *
 * Each tenant's workers live in palyra/TENANT, journald and the front in
 * palyra/_system (no limits), under palyrad's own group in each hierarchy.
 * Groups left by a previous run are reused and their limits rewritten; a
 * tenant without a setting gets the kernel's default back. No failure here
 * stops palyrad or another tenant: it is logged with the path and errno
 * and shown in the child's status text.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "sup.h"

#define SYSTEM_GROUP		"_system"
#define SUPERVISOR_GROUP	"supervisor"	/* v2 only: palyrad itself */
#define V1_DEFAULT_SHARES	1024
#define V2_DEFAULT_WEIGHT	100

struct mount_entry {
	char	 root[SUP_CGROUP_PATH_MAX];	/* within its file system */
	char	 point[SUP_CGROUP_PATH_MAX];
	char	 fstype[16];
	char	 options[256];			/* super options */
};

static const char *const controller_names[] = { "memory", "pids", "cpu" };

/*
 * Formats a message (a reason, a status text) into buf. Paths make them
 * long at times; a cut message is better than none, so truncation is
 * accepted here and only here.
 */
static void __attribute__((format(printf, 3, 4)))
text_set(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

/* Joins parts into buf; -ENAMETOOLONG rather than a truncated path. */
static int
path_join(char *buf, size_t len, const char *dir, const char *name)
{
	int n = snprintf(buf, len, "%s/%s", dir, name);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* Writes text to an existing control file; 0 or -errno (logged). */
static int
write_file(const char *path, const char *text)
{
	size_t len = strlen(text);
	ssize_t n;
	int fd, saved;

	if ((fd = open(path, O_WRONLY | O_CLOEXEC)) == -1) {
		saved = errno;
		log_error("cgroup: open %s: %s", path, strerror(saved));
		return -saved;
	}
	n = write(fd, text, len);
	saved = n == -1 ? errno : (size_t)n != len ? EIO : 0;
	close(fd);
	if (saved != 0) {
		log_error("cgroup: write \"%s\" to %s: %s", text, path,
		    strerror(saved));
		return -saved;
	}
	return 0;
}

/* Reads a small control file, NUL-terminated; 0 or -errno. */
static int
read_file(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd, saved;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -errno;
	n = read(fd, buf, len - 1);
	saved = errno;
	close(fd);
	if (n < 0)
		return -saved;
	buf[n] = '\0';
	return 0;
}

/* mkdir that accepts a directory left by an earlier run. */
static int
make_dir(const char *path)
{
	if (mkdir(path, 0755) == -1 && errno != EEXIST)
		return -errno;
	return 0;
}

/* 1 if word is one of the separator-delimited words of list. */
static int
has_word(const char *list, const char *word, const char *separators)
{
	size_t len = strlen(word), n;
	const char *p = list;

	while (*p != '\0') {
		p += strspn(p, separators);
		n = strcspn(p, separators);
		if (n == len && strncmp(p, word, len) == 0)
			return 1;
		p += n;
	}
	return 0;
}

/* Undoes the octal escapes (\040 and the like) of /proc/self/mountinfo. */
static void
unescape(char *s)
{
	char *out = s;

	for (; *s != '\0'; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' &&
		    s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*out++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 +
			    (s[3] - '0'));
			s += 3;
		} else
			*out++ = *s;
	}
	*out = '\0';
}

/*
 * The next cgroup or cgroup2 mount of /proc/self/mountinfo:
 *   ID PARENT MAJ:MIN ROOT POINT OPTIONS [OPTIONAL...] - TYPE SOURCE SUPER
 * Returns 1 with *m filled, 0 at the end.
 */
static int
next_mount(FILE *fp, struct mount_entry *m)
{
	char line[4096], *field[64], *save, *tok;
	size_t n, i;

	while (fgets(line, sizeof(line), fp) != NULL) {
		n = 0;
		for (tok = strtok_r(line, " \n", &save); tok != NULL &&
		    n < sizeof(field) / sizeof(field[0]);
		    tok = strtok_r(NULL, " \n", &save))
			field[n++] = tok;
		for (i = 6; i < n && strcmp(field[i], "-") != 0; i++)
			;
		if (n < 6 || i + 3 >= n)
			continue;
		if (strcmp(field[i + 1], "cgroup") != 0 &&
		    strcmp(field[i + 1], "cgroup2") != 0)
			continue;
		if (strlen(field[3]) >= sizeof(m->root) ||
		    strlen(field[4]) >= sizeof(m->point) ||
		    strlen(field[i + 3]) >= sizeof(m->options))
			continue;
		snprintf(m->root, sizeof(m->root), "%s", field[3]);
		snprintf(m->point, sizeof(m->point), "%s", field[4]);
		snprintf(m->fstype, sizeof(m->fstype), "%s", field[i + 1]);
		snprintf(m->options, sizeof(m->options), "%s", field[i + 3]);
		unescape(m->root);
		unescape(m->point);
		return 1;
	}
	return 0;
}

/*
 * palyrad's group in one hierarchy, from /proc/self/cgroup
 * ("ID:CONTROLLERS:PATH"): the v2 line when controller is NULL, else the
 * v1 line that lists controller. 0 or -ENOENT.
 */
static int
own_group(const char *controller, char *path, size_t len)
{
	char line[4096], *controllers, *p;
	FILE *fp;
	int rc = -ENOENT;

	if ((fp = fopen("/proc/self/cgroup", "re")) == NULL)
		return -errno;
	while (rc != 0 && fgets(line, sizeof(line), fp) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		if ((controllers = strchr(line, ':')) == NULL)
			continue;
		*controllers++ = '\0';
		if ((p = strchr(controllers, ':')) == NULL)
			continue;
		*p++ = '\0';
		if (controller == NULL ? strcmp(line, "0") == 0 &&
		    controllers[0] == '\0' : has_word(controllers, controller,
		    ","))
			rc = snprintf(path, len, "%s", p) < (int)len ? 0 :
			    -ENAMETOOLONG;
	}
	fclose(fp);
	return rc;
}

/*
 * Where palyrad's group of a hierarchy is in the file system: the mount
 * point plus the group's path below the mount's root. 0, -ENOENT (the
 * group is outside what is mounted) or -ENAMETOOLONG.
 */
static int
group_dir(const struct mount_entry *m, const char *group, char *buf,
    size_t len)
{
	size_t rootlen = strlen(m->root);
	int n;

	if (strcmp(m->root, "/") != 0) {
		if (strncmp(group, m->root, rootlen) != 0 ||
		    (group[rootlen] != '/' && group[rootlen] != '\0'))
			return -ENOENT;
		group += rootlen;
	}
	if (strcmp(group, "/") == 0)
		group = "";
	n = snprintf(buf, len, "%s%s", m->point, group);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static void
names_of(unsigned int controllers, char *buf, size_t len)
{
	size_t i, used = 0;

	buf[0] = '\0';
	for (i = 0; i < 3; i++)
		if (controllers & (1U << i))
			used += (size_t)snprintf(buf + used, len - used,
			    "%s%s", used > 0 ? "," : "", controller_names[i]);
}

/* Moves the process pid into the group dir; 0 or -errno (logged). */
static int
move_into(const char *dir, pid_t pid)
{
	char path[SUP_CGROUP_PATH_MAX + 16], text[24];
	int rc;

	if ((rc = path_join(path, sizeof(path), dir, "cgroup.procs")) < 0)
		return rc;
	snprintf(text, sizeof(text), "%d", (int)pid);
	return write_file(path, text);
}

/* Enables the controllers in dir's subtree_control, if not yet. */
static int
enable_controllers(const char *dir, unsigned int controllers)
{
	char path[SUP_CGROUP_PATH_MAX + 32], enabled[256], text[64];
	size_t i, used = 0;
	int rc;

	if ((rc = path_join(path, sizeof(path), dir,
	    "cgroup.subtree_control")) < 0)
		return rc;
	if (read_file(path, enabled, sizeof(enabled)) < 0)
		enabled[0] = '\0';
	text[0] = '\0';
	for (i = 0; i < 3; i++)
		if ((controllers & (1U << i)) &&
		    !has_word(enabled, controller_names[i], " \n"))
			used += (size_t)snprintf(text + used,
			    sizeof(text) - used, "%s+%s", used > 0 ? " " : "",
			    controller_names[i]);
	return used == 0 ? 0 : write_file(path, text);
}

/*
 * v2: palyrad's group must hold no process once controllers are enabled
 * in it, so palyrad moves into palyra/supervisor first. A palyrad started
 * by a service manager in a delegated group of its own passes; one that
 * shares its group with other processes (a login shell) gets EBUSY and
 * falls back to v1. 0, or -1 with the reason.
 */
static int
detect_v2(struct sup_cgroups *cg, char *reason, size_t len)
{
	char group[SUP_CGROUP_PATH_MAX], base[SUP_CGROUP_PATH_MAX];
	char dir[SUP_CGROUP_PATH_MAX], leaf[SUP_CGROUP_PATH_MAX];
	char controllers[256], path[SUP_CGROUP_PATH_MAX + 32];
	const char *suffix = "/palyra/" SUPERVISOR_GROUP;
	struct mount_entry m;
	unsigned int want = SUP_CGROUP_MEMORY | SUP_CGROUP_PIDS;
	size_t n;
	FILE *fp;
	int found = 0, rc;

	if ((fp = fopen("/proc/self/mountinfo", "re")) == NULL) {
		text_set(reason, len, "v2: /proc/self/mountinfo: %s",
		    strerror(errno));
		return -1;
	}
	while (!found && next_mount(fp, &m))
		found = strcmp(m.fstype, "cgroup2") == 0;
	fclose(fp);
	if (!found) {
		text_set(reason, len, "v2: no cgroup2 mount");
		return -1;
	}
	if ((rc = own_group(NULL, group, sizeof(group))) < 0 ||
	    (rc = group_dir(&m, group, base, sizeof(base))) < 0) {
		text_set(reason, len, "v2: own group in %s: %s", m.point,
		    strerror(-rc));
		return -1;
	}
	/* A palyrad restarted in place finds itself in its own leaf. */
	n = strlen(base);
	if (n > strlen(suffix) && strcmp(base + n - strlen(suffix),
	    suffix) == 0)
		base[n - strlen(suffix)] = '\0';
	if (path_join(path, sizeof(path), base, "cgroup.controllers") < 0 ||
	    (rc = read_file(path, controllers, sizeof(controllers))) < 0) {
		text_set(reason, len, "v2: %s: %s", path, strerror(-rc));
		return -1;
	}
	if (!has_word(controllers, "memory", " \n") ||
	    !has_word(controllers, "pids", " \n")) {
		text_set(reason, len, "v2: %s lacks the memory and pids "
		    "controllers", path);
		return -1;
	}
	if (has_word(controllers, "cpu", " \n"))
		want |= SUP_CGROUP_CPU;
	if (path_join(dir, sizeof(dir), base, "palyra") < 0 ||
	    path_join(leaf, sizeof(leaf), dir, SUPERVISOR_GROUP) < 0) {
		text_set(reason, len, "v2: %s: path too long", base);
		return -1;
	}
	if ((rc = make_dir(dir)) < 0 || (rc = make_dir(leaf)) < 0) {
		text_set(reason, len, "v2: mkdir %s: %s", rc == 0 ? leaf :
		    dir, strerror(-rc));
		return -1;
	}
	if ((rc = move_into(leaf, getpid())) < 0) {
		text_set(reason, len, "v2: cannot move palyrad into %s: %s",
		    leaf, strerror(-rc));
		return -1;
	}
	if ((rc = enable_controllers(base, want)) < 0) {
		(void)move_into(base, getpid());
		(void)rmdir(leaf);
		(void)rmdir(dir);
		text_set(reason, len, "v2: cannot enable controllers in %s: "
		    "%s%s", base, strerror(-rc), rc == -EBUSY ? " (other "
		    "processes share palyrad's group; start it in a delegated "
		    "group of its own)" : "");
		return -1;
	}
	if ((rc = enable_controllers(dir, want)) < 0) {
		text_set(reason, len, "v2: cannot enable controllers in %s: "
		    "%s", dir, strerror(-rc));
		return -1;
	}
	cg->mode = SUP_CGROUP_V2;
	cg->controllers = want;
	cg->nhier = 1;
	snprintf(cg->hier[0].dir, sizeof(cg->hier[0].dir), "%s", dir);
	cg->hier[0].controllers = want;
	return 0;
}

/*
 * v1: one hierarchy per controller, or shared ones (cpu,cpuacct). memory
 * and pids are required, cpu is used where it is mounted. 0, or -1 with
 * the reason.
 */
static int
detect_v1(struct sup_cgroups *cg, char *reason, size_t len)
{
	char group[SUP_CGROUP_PATH_MAX], mine[SUP_CGROUP_PATH_MAX];
	char dir[SUP_CGROUP_PATH_MAX], found[SUP_CGROUP_PATH_MAX];
	struct mount_entry m;
	unsigned int bit, have = 0;
	size_t i, h;
	FILE *fp;
	int rc;

	cg->nhier = 0;
	for (i = 0; i < 3; i++) {
		bit = 1U << i;
		if ((fp = fopen("/proc/self/mountinfo", "re")) == NULL) {
			text_set(reason, len, "v1: /proc/self/mountinfo: %s",
			    strerror(errno));
			return -1;
		}
		found[0] = '\0';
		while (found[0] == '\0' && next_mount(fp, &m))
			if (strcmp(m.fstype, "cgroup") == 0 &&
			    has_word(m.options, controller_names[i], ","))
				snprintf(found, sizeof(found), "%s", m.point);
		fclose(fp);
		if (found[0] == '\0') {
			if (bit == SUP_CGROUP_CPU)
				continue;
			text_set(reason, len, "v1: no %s controller mounted",
			    controller_names[i]);
			return -1;
		}
		if ((rc = own_group(controller_names[i], group,
		    sizeof(group))) < 0 ||
		    (rc = group_dir(&m, group, mine, sizeof(mine))) < 0 ||
		    (rc = path_join(dir, sizeof(dir), mine, "palyra")) < 0) {
			text_set(reason, len, "v1: own %s group: %s",
			    controller_names[i], strerror(-rc));
			return -1;
		}
		if ((rc = make_dir(dir)) < 0) {
			if (bit == SUP_CGROUP_CPU) {
				log_warn("cgroup: mkdir %s: %s; cpu-weight is "
				    "not enforced", dir, strerror(-rc));
				continue;
			}
			text_set(reason, len, "v1: mkdir %s: %s", dir,
			    strerror(-rc));
			return -1;
		}
		have |= bit;
		for (h = 0; h < cg->nhier &&
		    strcmp(cg->hier[h].dir, dir) != 0; h++)
			;
		if (h == cg->nhier) {
			snprintf(cg->hier[h].dir, sizeof(cg->hier[h].dir),
			    "%s", dir);
			cg->hier[h].controllers = 0;
			cg->nhier++;
		}
		cg->hier[h].controllers |= bit;
	}
	cg->mode = SUP_CGROUP_V1;
	cg->controllers = have;
	return 0;
}

/* The group a child lives in, NULL: none (a reserved tenant name). */
static const char *
group_of(const struct sup_child *c)
{
	if (!c->kind->per_tenant)
		return SYSTEM_GROUP;
	if (strcmp(c->tenant_name, SYSTEM_GROUP) == 0 ||
	    strcmp(c->tenant_name, SUPERVISOR_GROUP) == 0)
		return NULL;
	return c->tenant_name;
}

static void
format_size(char *buf, size_t len, uint64_t bytes)
{
	static const char units[] = "KMGT";
	int i;

	for (i = 3; i >= 0; i--)
		if (bytes % (1ULL << (10 * (i + 1))) == 0) {
			snprintf(buf, len, "%llu%c", (unsigned long long)(bytes >>
			    (10 * (i + 1))), units[i]);
			return;
		}
	snprintf(buf, len, "%llu", (unsigned long long)bytes);
}

/* Writes one setting into the group directory; 0 or -errno (logged). */
static int
set_value(const char *group, const char *file, const char *value,
    const char **failed)
{
	char path[SUP_CGROUP_PATH_MAX + 64];
	int rc;

	if ((rc = path_join(path, sizeof(path), group, file)) == 0)
		rc = write_file(path, value);
	if (rc < 0 && *failed == NULL)
		*failed = file;
	return rc;
}

static void
report_failure(struct sup_child *c, const char *group, const char *what,
    int error)
{
	text_set(c->cgroup, sizeof(c->cgroup), "cgroup v%d palyra/%s: %s "
	    "failed: %s (see the log)", c->ctx->cgroups.mode ==
	    SUP_CGROUP_V2 ? 2 : 1, group, what, strerror(error));
}

void
sup_cgroup_init(struct sup_ctx *ctx)
{
	struct sup_cgroups *cg = &ctx->cgroups;
	char v2[256], v1[256], names[32];
	size_t i;

	memset(cg, 0, sizeof(*cg));
	if (detect_v2(cg, v2, sizeof(v2)) == 0) {
		names_of(cg->controllers, names, sizeof(names));
		log_info("cgroups: v2 %s in %s", names, cg->hier[0].dir);
		return;
	}
	memset(cg, 0, sizeof(*cg));
	if (detect_v1(cg, v1, sizeof(v1)) == 0) {
		names_of(cg->controllers, names, sizeof(names));
		log_info("cgroups: v1 %s (%s)", names, v2);
		for (i = 0; i < cg->nhier; i++) {
			names_of(cg->hier[i].controllers, names,
			    sizeof(names));
			log_info("cgroups: v1 %s in %s", names,
			    cg->hier[i].dir);
		}
		return;
	}
	memset(cg, 0, sizeof(*cg));
	cg->mode = SUP_CGROUP_NONE;
	text_set(cg->reason, sizeof(cg->reason), "%s; %s", v2, v1);
	log_warn("cgroups: unavailable (%s); memory-limit, pids-limit and "
	    "cpu-weight are not enforced", cg->reason);
}

int
sup_cgroup_prepare(struct sup_ctx *ctx, struct sup_child *c)
{
	const struct sup_cgroups *cg = &ctx->cgroups;
	const struct cfg_tenant *t = c->kind->per_tenant ? c->tenant : NULL;
	char dir[SUP_CGROUP_PATH_MAX], value[32], memory[32], names[32];
	const char *group, *failed = NULL;
	uint64_t shares;
	size_t i;
	int rc, first_error = 0;

	if (cg->mode == SUP_CGROUP_NONE) {
		text_set(c->cgroup, sizeof(c->cgroup),
		    "cgroups: unavailable (%s)", cg->reason);
		return -ENOTSUP;
	}
	if ((group = group_of(c)) == NULL) {
		log_error("%s: the tenant name \"%s\" is reserved for a "
		    "control group of palyrad; its workers run without one",
		    c->label, c->tenant_name);
		text_set(c->cgroup, sizeof(c->cgroup), "cgroup: none (tenant "
		    "name \"%s\" is reserved)", c->tenant_name);
		return -EINVAL;
	}
	for (i = 0; i < cg->nhier; i++) {
		if ((rc = path_join(dir, sizeof(dir), cg->hier[i].dir,
		    group)) < 0)
			return rc;
		/* Another palyrad sharing our group may have removed the
		 * palyra directory while it stopped: make it again. */
		if ((rc = make_dir(dir)) == -ENOENT &&
		    (rc = make_dir(cg->hier[i].dir)) == 0)
			rc = make_dir(dir);
		if (rc < 0) {
			log_error("cgroup: mkdir %s: %s", dir, strerror(-rc));
			report_failure(c, group, "mkdir", -rc);
			return rc;
		}
		if (cg->hier[i].controllers & SUP_CGROUP_MEMORY) {
			if (t != NULL && t->memory_limit != 0)
				snprintf(value, sizeof(value), "%llu",
				    (unsigned long long)t->memory_limit);
			else
				snprintf(value, sizeof(value), "%s",
				    cg->mode == SUP_CGROUP_V2 ? "max" : "-1");
			rc = set_value(dir, cg->mode == SUP_CGROUP_V2 ?
			    "memory.max" : "memory.limit_in_bytes", value,
			    &failed);
			first_error = first_error != 0 ? first_error : rc;
		}
		if (cg->hier[i].controllers & SUP_CGROUP_PIDS) {
			if (t != NULL && t->pids_limit != 0)
				snprintf(value, sizeof(value), "%u",
				    t->pids_limit);
			else
				snprintf(value, sizeof(value), "max");
			rc = set_value(dir, "pids.max", value, &failed);
			first_error = first_error != 0 ? first_error : rc;
		}
		if (cg->hier[i].controllers & SUP_CGROUP_CPU) {
			if (cg->mode == SUP_CGROUP_V2)
				snprintf(value, sizeof(value), "%u",
				    t != NULL && t->cpu_weight != 0 ?
				    t->cpu_weight : V2_DEFAULT_WEIGHT);
			else {
				/* v1 shares are relative like the weight;
				 * 1024 is the default as 100 is in v2. */
				shares = t != NULL && t->cpu_weight != 0 ?
				    (uint64_t)t->cpu_weight * 1024 / 100 :
				    V1_DEFAULT_SHARES;
				snprintf(value, sizeof(value), "%llu",
				    (unsigned long long)(shares < 2 ? 2 :
				    shares));
			}
			rc = set_value(dir, cg->mode == SUP_CGROUP_V2 ?
			    "cpu.weight" : "cpu.shares", value, &failed);
			first_error = first_error != 0 ? first_error : rc;
		}
	}
	if (failed != NULL) {
		report_failure(c, group, failed, -first_error);
		return 0;	/* the group exists: the child still joins */
	}
	names_of(cg->controllers, names, sizeof(names));
	if (t == NULL) {
		text_set(c->cgroup, sizeof(c->cgroup), "cgroup v%d %s "
		    "palyra/%s (no limits)", cg->mode == SUP_CGROUP_V2 ? 2 : 1,
		    names, group);
		return 0;
	}
	if (t->memory_limit != 0)
		format_size(memory, sizeof(memory), t->memory_limit);
	else
		snprintf(memory, sizeof(memory), "max");
	snprintf(value, sizeof(value), "%u", t->pids_limit);
	text_set(c->cgroup, sizeof(c->cgroup), "cgroup v%d %s palyra/%s "
	    "(memory %s, pids %s, cpu %u%s)", cg->mode == SUP_CGROUP_V2 ? 2 :
	    1, names, group, memory, t->pids_limit != 0 ? value : "max",
	    t->cpu_weight != 0 ? t->cpu_weight : V2_DEFAULT_WEIGHT,
	    cg->controllers & SUP_CGROUP_CPU ? "" : " not enforced");
	return 0;
}

int
sup_cgroup_enter(struct sup_ctx *ctx, struct sup_child *c, pid_t pid)
{
	const struct sup_cgroups *cg = &ctx->cgroups;
	char dir[SUP_CGROUP_PATH_MAX];
	const char *group = group_of(c);
	size_t i;
	int rc;

	if (cg->mode == SUP_CGROUP_NONE || group == NULL)
		return -ENOTSUP;
	for (i = 0; i < cg->nhier; i++) {
		if ((rc = path_join(dir, sizeof(dir), cg->hier[i].dir,
		    group)) == 0)
			rc = move_into(dir, pid);
		if (rc < 0) {
			log_error("%s: pid %d runs outside its control group",
			    c->label, (int)pid);
			report_failure(c, group, "joining", -rc);
			return rc;
		}
	}
	return 0;
}

/* Removes a group of ours in every hierarchy; an empty one only. */
static void
remove_group(const struct sup_cgroups *cg, const char *group)
{
	char dir[SUP_CGROUP_PATH_MAX];
	size_t i;

	for (i = 0; i < cg->nhier; i++) {
		if (path_join(dir, sizeof(dir), cg->hier[i].dir, group) < 0)
			continue;
		if (rmdir(dir) == -1 && errno != ENOENT) {
			/* EBUSY: a process is still in it (another worker
			 * of the tenant, or another palyrad's). */
			if (errno == EBUSY)
				log_debug("cgroup: rmdir %s: still in use",
				    dir);
			else
				log_warn("cgroup: rmdir %s: %s", dir,
				    strerror(errno));
		} else
			log_debug("cgroup: removed %s", dir);
	}
}

void
sup_cgroup_release(struct sup_ctx *ctx, struct sup_child *c)
{
	const char *group = group_of(c);

	if (ctx->cgroups.mode == SUP_CGROUP_NONE || group == NULL ||
	    !c->kind->per_tenant ||
	    sup_child_find(ctx, c->kind->id, c->tenant_name) != NULL)
		return;
	remove_group(&ctx->cgroups, group);
}

void
sup_cgroup_cleanup(struct sup_ctx *ctx)
{
	const struct sup_cgroups *cg = &ctx->cgroups;
	struct sup_child *c;
	const char *group;
	size_t i;

	if (cg->mode == SUP_CGROUP_NONE)
		return;
	TAILQ_FOREACH(c, &ctx->children, entry)
		if (c->kind->per_tenant && (group = group_of(c)) != NULL)
			remove_group(cg, group);
	remove_group(cg, SYSTEM_GROUP);
	/* v2: palyrad stays in palyra/supervisor until it exits, which
	 * leaves that group empty; v1: palyra/ goes if nobody else uses it. */
	if (cg->mode == SUP_CGROUP_V1)
		for (i = 0; i < cg->nhier; i++)
			if (rmdir(cg->hier[i].dir) == -1 && errno != EBUSY &&
			    errno != ENOENT && errno != ENOTEMPTY)
				log_warn("cgroup: rmdir %s: %s",
				    cg->hier[i].dir, strerror(errno));
}
