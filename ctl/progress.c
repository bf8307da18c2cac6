/*
 * progress.c: palyractl's progress line for long operations (journal
 * backup, export and verify, approvals export and verify-export).
 *
 * Runs in palyractl; writes only to stderr. The line is drawn only when
 * stderr is a terminal and --json is not given: one line rewritten in
 * place with a carriage return (what, the bytes or lines done so far, the
 * time elapsed), at most five times a second, and erased at the end so
 * that the terminal shows only the command's own output. Nothing of it
 * ever reaches a pipe or a file.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"

/* Redrawn at most this often. */
#define PROGRESS_INTERVAL_MS	200

static int64_t
now_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
ctl_progress_start(struct ctl_progress *p, int json, const char *what)
{
	memset(p, 0, sizeof(*p));
	p->on = !json && isatty(STDERR_FILENO);
	p->what = what;
	p->start_ms = now_ms();
	p->last_ms = -1;
}

/* "12345 bytes" as "12.1 KiB"; lines and records as a count. */
static void
format_done(char *buf, size_t size, uint64_t done, const char *unit)
{
	if (strcmp(unit, "bytes") != 0 || done < 1024)
		snprintf(buf, size, "%llu %s", (unsigned long long)done, unit);
	else if (done < 1024 * 1024)
		snprintf(buf, size, "%.1f KiB", done / 1024.0);
	else if (done < 1024ULL * 1024 * 1024)
		snprintf(buf, size, "%.1f MiB", done / (1024.0 * 1024));
	else
		snprintf(buf, size, "%.2f GiB",
		    done / (1024.0 * 1024 * 1024));
}

void
ctl_progress_update(struct ctl_progress *p, uint64_t done, const char *unit)
{
	char	 line[160], count[48];
	int64_t	 t;
	int	 n;

	if (!p->on)
		return;
	t = now_ms();
	/* The first call draws at once, the others when due. */
	if (p->last_ms >= 0 && t - p->last_ms < PROGRESS_INTERVAL_MS)
		return;
	p->last_ms = t;
	format_done(count, sizeof(count), done, unit);
	n = snprintf(line, sizeof(line), "%s: %s, %.1fs", p->what, count,
	    (t - p->start_ms) / 1000.0);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	/* Spaces over what a longer line before left. */
	fprintf(stderr, "\r%s%*s", line, p->width > n ? p->width - n : 0, "");
	fflush(stderr);
	if (n > p->width)
		p->width = n;
}

void
ctl_progress_end(struct ctl_progress *p)
{
	if (!p->on || p->width == 0)
		return;
	fprintf(stderr, "\r%*s\r", p->width, "");
	fflush(stderr);
	p->width = 0;
}
