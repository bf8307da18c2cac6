/*
 * log.c: logging for every palyrad process.
 * Runs in all processes. Touches only stderr or syslog.
 *
 * Each line reads "PROCESS[TENANT]: LEVEL: message" so that the lines of
 * many children interleaved on one stderr can still be told apart.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "limits.h"

/* Log state is the one mutable global STYLE.md allows. */
static struct {
	char	process[32];
	char	tenant[NAME_MAX_LEN + 1];
	int	verbose;
	int	to_stderr;
	long	pid;
} log_state = { "palyra", "", 0, 1, 0 };

/*
 * Our pid as the host sees it. A child that runs as pid 1 of its own pid
 * namespace finds the outer pid first on the NSpid line of its status.
 */
static long
host_pid(void)
{
	char line[256];
	long pid = (long)getpid();
	FILE *f;

	if (pid != 1 || (f = fopen("/proc/self/status", "re")) == NULL)
		return pid;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "NSpid:", 6) == 0) {
			pid = strtol(line + 6, NULL, 10);
			break;
		}
	fclose(f);
	return pid > 0 ? pid : 1;
}

void
log_init(const char *process, const char *tenant, int verbose, int to_stderr)
{
	snprintf(log_state.process, sizeof(log_state.process), "%s",
	    process != NULL ? process : "palyra");
	log_set_tenant(tenant);
	log_state.verbose = verbose;
	log_state.to_stderr = to_stderr;
	log_state.pid = host_pid();
	if (!to_stderr)
		openlog(log_state.process, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void
log_set_tenant(const char *tenant)
{
	snprintf(log_state.tenant, sizeof(log_state.tenant), "%s",
	    tenant != NULL ? tenant : "");
}

static void
log_emit(enum log_level level, const char *errtext, const char *fmt,
    va_list ap)
{
	static const char *names[] = { "error", "warning", "info", "debug" };
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	char msg[2048], who[sizeof(log_state.process) + NAME_MAX_LEN + 16];
	size_t i;

	if (level == LOG_LEVEL_DEBUG && !log_state.verbose)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	/* Never let a logged value forge a line or a terminal sequence. */
	for (i = 0; msg[i] != '\0'; i++)
		if ((unsigned char)msg[i] < 0x20 || msg[i] == 0x7f)
			msg[i] = '?';
	if (log_state.tenant[0] != '\0')
		snprintf(who, sizeof(who), "%s[%s]", log_state.process,
		    log_state.tenant);
	else
		snprintf(who, sizeof(who), "%s[%ld]", log_state.process,
		    log_state.pid != 0 ? log_state.pid : (long)getpid());
	if (log_state.to_stderr) {
		struct timespec ts;
		struct tm tm;
		char when[32];

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		strftime(when, sizeof(when), "%H:%M:%S", &tm);
		fprintf(stderr, "%s.%03ld %s: %s: %s%s%s\n", when,
		    ts.tv_nsec / 1000000, who, names[level], msg,
		    errtext != NULL ? ": " : "",
		    errtext != NULL ? errtext : "");
	} else
		syslog(prio[level], "%s: %s%s%s", who, msg,
		    errtext != NULL ? ": " : "",
		    errtext != NULL ? errtext : "");
}

#define LOG_FUNC(fn, level)					\
void								\
fn(const char *fmt, ...)					\
{								\
	va_list ap;						\
								\
	va_start(ap, fmt);					\
	log_emit(level, NULL, fmt, ap);				\
	va_end(ap);						\
}

LOG_FUNC(log_error, LOG_LEVEL_ERROR)
LOG_FUNC(log_warn, LOG_LEVEL_WARN)
LOG_FUNC(log_info, LOG_LEVEL_INFO)
LOG_FUNC(log_debug, LOG_LEVEL_DEBUG)

void
fatal(const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	log_emit(LOG_LEVEL_ERROR, strerror(saved), fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_LEVEL_ERROR, NULL, fmt, ap);
	va_end(ap);
	exit(1);
}
