/*
 * log.h: logging for every palyrad process. Each line carries the process
 * name and, where there is one, the tenant. Lines go to stderr (foreground,
 * or the supervisor's stderr inherited by children) or syslog.
 */
#ifndef PALYRA_LOG_H
#define PALYRA_LOG_H

#include <stdarg.h>

enum log_level {
	LOG_LEVEL_ERROR = 0,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

/* Sets the process name and tenant (NULL: none) shown on every line. */
void	log_init(const char *process, const char *tenant, int verbose,
	    int to_stderr);
void	log_set_tenant(const char *tenant);

void	log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/*
 * Log and exit with status 1: for start-up failures and broken invariants
 * only. fatal() appends the text of errno, fatalx() does not.
 */
void	fatal(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2), noreturn));

#endif
