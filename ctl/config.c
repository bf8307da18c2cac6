/*
 * config.c: `palyractl config check [-v] [-f file]`: checks a palyrad.conf
 * the way palyrad does, by running `palyrad -n` (palyrad(8)).
 *
 * Runs in palyractl as the invoking user, with no daemon: it forks and
 * executes palyrad, found next to palyractl (../sbin/palyrad of an
 * installed PREFIX, the same directory in the build tree), else on PATH.
 * palyrad's messages (FILE:LINE:COL: why) reach stderr as they are and
 * its exit status is palyractl's: 0 valid, 1 invalid or unsafe, 2 a bad
 * command line. With -v palyrad prints the effective configuration; with
 * --json the result is one JSON object on stdout ({"file", "ok", and with
 * -v "config", that text}), bounded by CTL_HTTP_MAX_BODY.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "ctl.h"

#define CONFIG_DUMP_MAX	CTL_HTTP_MAX_BODY

static int
config_usage(const char *why)
{
	fprintf(stderr, "palyractl: %s\nusage: palyractl config check [-v] "
	    "[-f file]\n", why);
	return CTL_EXIT_USAGE;
}

/* palyrad next to this executable into path, or "palyrad" for PATH. */
static void
find_palyrad(char *path, size_t size)
{
	char	 self[PATH_MAX], *slash;
	ssize_t	 n;

	snprintf(path, size, "palyrad");
	if ((n = readlink("/proc/self/exe", self, sizeof(self) - 1)) <= 0)
		return;
	self[n] = '\0';
	if ((slash = strrchr(self, '/')) == NULL)
		return;
	*slash = '\0';
	if ((size_t)snprintf(path, size, "%s/../sbin/palyrad", self) < size &&
	    access(path, X_OK) == 0)
		return;
	if ((size_t)snprintf(path, size, "%s/palyrad", self) < size &&
	    access(path, X_OK) == 0)
		return;
	snprintf(path, size, "palyrad");
}

/* All of fd into *out (NUL-terminated), at most max bytes: 0, or -1
 * (too long, or a read error; the rest is drained so palyrad ends). */
static int
read_all(int fd, char **out, size_t max)
{
	char	*buf = NULL, *grown, tmp[8192];
	size_t	 len = 0;
	ssize_t	 n;
	int	 ok = 1;

	for (;;) {
		if ((n = read(fd, tmp, sizeof(tmp))) < 0) {
			if (errno == EINTR)
				continue;
			ok = 0;
			break;
		}
		if (n == 0)
			break;
		if (!ok)
			continue;
		if (len + (size_t)n > max ||
		    (grown = realloc(buf, len + (size_t)n + 1)) == NULL) {
			ok = 0;
			continue;
		}
		buf = grown;
		memcpy(buf + len, tmp, (size_t)n);
		len += (size_t)n;
	}
	if (!ok) {
		free(buf);
		return -1;
	}
	if (buf == NULL && (buf = malloc(1)) == NULL)
		return -1;
	buf[len] = '\0';
	*out = buf;
	return 0;
}

int
ctl_cmd_config(struct ctl_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "file", required_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	const char	*file = NULL, *args[6];
	char		 palyrad[PATH_MAX + 16], *dump = NULL;
	int		 ch, verbose = ctx->verbose, out[2] = { -1, -1 };
	int		 errp[2], status, exec_errno = 0, nargs = 0, rc;
	pid_t		 pid;
	ssize_t		 n;
	json_t		*obj;

	if (argc < 2 || strcmp(argv[1], "check") != 0)
		return config_usage("config needs a command: check");
	argc--;
	argv++;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "f:v", opts, NULL)) != -1) {
		switch (ch) {
		case 'f':
			file = optarg;
			break;
		case 'v':
			verbose = 1;
			break;
		default:
			return config_usage("bad option");
		}
	}
	if (optind != argc)
		return config_usage("config check takes no argument");
	if (file != NULL && (file[0] == '\0' || strlen(file) >= PATH_MAX))
		return config_usage("bad file name");
	find_palyrad(palyrad, sizeof(palyrad));
	args[nargs++] = "palyrad";
	args[nargs++] = "-n";
	if (verbose)
		args[nargs++] = "-v";
	if (file != NULL) {
		args[nargs++] = "-f";
		args[nargs++] = file;
	}
	args[nargs] = NULL;

	fflush(stdout);
	fflush(stderr);
	/* errp carries an exec failure's errno; out palyrad's stdout. */
	if (pipe2(errp, O_CLOEXEC) < 0) {
		fprintf(stderr, "palyractl: config check: pipe: %s\n",
		    strerror(errno));
		return CTL_EXIT_FAIL;
	}
	if (ctx->json && pipe2(out, O_CLOEXEC) < 0) {
		fprintf(stderr, "palyractl: config check: pipe: %s\n",
		    strerror(errno));
		close(errp[0]);
		close(errp[1]);
		return CTL_EXIT_FAIL;
	}
	if ((pid = fork()) < 0) {
		fprintf(stderr, "palyractl: config check: fork: %s\n",
		    strerror(errno));
		close(errp[0]);
		close(errp[1]);
		if (out[0] >= 0) {
			close(out[0]);
			close(out[1]);
		}
		return CTL_EXIT_FAIL;
	}
	if (pid == 0) {
		close(errp[0]);
		if (out[1] >= 0 && dup2(out[1], STDOUT_FILENO) < 0)
			_exit(127);
		if (strchr(palyrad, '/') != NULL)
			execv(palyrad, (char *const *)args);
		else
			execvp(palyrad, (char *const *)args);
		exec_errno = errno;
		(void)!write(errp[1], &exec_errno, sizeof(exec_errno));
		_exit(127);
	}
	close(errp[1]);
	if (out[1] >= 0)
		close(out[1]);
	rc = out[0] >= 0 ? read_all(out[0], &dump, CONFIG_DUMP_MAX) : 0;
	if (out[0] >= 0)
		close(out[0]);
	do
		n = read(errp[0], &exec_errno, sizeof(exec_errno));
	while (n < 0 && errno == EINTR);
	close(errp[0]);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			fprintf(stderr, "palyractl: config check: waitpid: "
			    "%s\n", strerror(errno));
			free(dump);
			return CTL_EXIT_FAIL;
		}
	if (n == (ssize_t)sizeof(exec_errno)) {
		fprintf(stderr, "palyractl: config check: cannot run %s: %s\n",
		    palyrad, strerror(exec_errno));
		free(dump);
		return CTL_EXIT_FAIL;
	}
	if (!WIFEXITED(status)) {
		fprintf(stderr, "palyractl: config check: palyrad ended by "
		    "signal %d\n", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
		free(dump);
		return CTL_EXIT_FAIL;
	}
	if (WEXITSTATUS(status) != 0 || !ctx->json) {
		free(dump);
		return WEXITSTATUS(status);
	}
	if (rc < 0) {
		fprintf(stderr, "palyractl: config check: the configuration "
		    "is longer than %d bytes\n", CONFIG_DUMP_MAX);
		return CTL_EXIT_FAIL;
	}
	/* file null: palyrad's default, /etc/palyra/palyrad.conf. */
	obj = json_pack("{s:s?, s:b}", "file", file, "ok", 1);
	if (obj != NULL && verbose &&
	    json_object_set_new(obj, "config", json_string(dump)) < 0) {
		json_decref(obj);
		obj = NULL;
	}
	free(dump);
	return ctl_print_json(obj) == 0 ? CTL_EXIT_OK : CTL_EXIT_FAIL;
}
