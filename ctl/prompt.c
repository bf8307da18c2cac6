/*
 * prompt.c: the approval prompt of `palyractl run` on a terminal.
 *
 * Runs in palyractl as the invoking user; writes the question to stderr
 * and reads the answer a line at a time from standard input, both the
 * person's terminal (ctl.c asks only when stdin and stderr are terminals
 * and no --approve or --deny decided in advance). The tool name and the
 * arguments come from the server and are shown with control bytes as '?'.
 * An answer is bounded (a longer line is read to its end and refused);
 * anything not understood asks again, and the end of input denies.
 */
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "palyra/v1/gateway.pb-c.h"

#define ANSWER_MAX	128

/* A line of standard input without its newline: 0, 1 when too long (the
 * rest was read and dropped), or -1 at the end of input. */
static int
read_answer(char *buf, size_t size)
{
	size_t	 n;
	int	 c;

	if (fgets(buf, (int)size, stdin) == NULL)
		return -1;
	n = strlen(buf);
	if (n > 0 && buf[n - 1] == '\n') {
		buf[n - 1] = '\0';
		return 0;
	}
	if (feof(stdin))
		return 0;
	while ((c = getchar()) != EOF && c != '\n')
		;
	return 1;
}

/* The answer without the spaces around it. */
static char *
trim(char *s)
{
	char	*e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

/* The TTL of a grant: 0 with *ttl_ms, or -1 at the end of input. */
static int
ask_ttl(uint64_t *ttl_ms)
{
	char		 buf[ANSWER_MAX], *a;
	long long	 s;
	int		 r;

	for (;;) {
		fputs("grant for how long (such as 10m, 2h; 1s to 30d)? ",
		    stderr);
		fflush(stderr);
		if ((r = read_answer(buf, sizeof(buf))) < 0)
			return -1;
		a = trim(buf);
		if (r == 0 && (s = ctl_duration_seconds(a)) > 0 &&
		    (uint64_t)s * 1000 <= CTL_APPROVAL_TTL_MAX_MS) {
			*ttl_ms = (uint64_t)s * 1000;
			return 0;
		}
		fputs("a duration such as 90s, 10m, 12h or 7d, at most 30d\n",
		    stderr);
	}
}

int
ctl_prompt_approval(const char *tool, const char *arguments, int *decision,
    int *scope, uint64_t *ttl_ms)
{
	char		 buf[ANSWER_MAX];
	const char	*a;
	int	 r;

	*decision = PALYRA__V1__APPROVAL_DECISION_KIND__APPROVAL_DECISION_ALLOW;
	*scope = 0;
	*ttl_ms = 0;
	for (;;) {
		fputs("approve ", stderr);
		ctl_print_clean(stderr, tool);
		fputc('(', stderr);
		ctl_print_clean(stderr, arguments);
		fputs(")? [o]nce [s]ession [t]tl [d]eny: ", stderr);
		fflush(stderr);
		if ((r = read_answer(buf, sizeof(buf))) < 0)
			break;
		/* A line too long is no answer. */
		a = r == 0 ? trim(buf) : "";
		if (strcmp(a, "o") == 0 || strcmp(a, "once") == 0) {
			*scope = PALYRA__V1__APPROVAL_SCOPE__APPROVAL_SCOPE_ONCE;
			return 0;
		} else if (strcmp(a, "s") == 0 || strcmp(a, "session") == 0) {
			*scope =
			    PALYRA__V1__APPROVAL_SCOPE__APPROVAL_SCOPE_SESSION;
			return 0;
		} else if (strcmp(a, "t") == 0 || strcmp(a, "ttl") == 0) {
			if (ask_ttl(ttl_ms) < 0)
				break;
			*scope = PALYRA__V1__APPROVAL_SCOPE__APPROVAL_SCOPE_TTL;
			return 0;
		} else if (strcmp(a, "d") == 0 || strcmp(a, "deny") == 0) {
			*decision =
			    PALYRA__V1__APPROVAL_DECISION_KIND__APPROVAL_DECISION_DENY;
			return 0;
		}
		fputs("answer o (once), s (session), t (for a time) or "
		    "d (deny)\n", stderr);
	}
	fputs("\nno answer: denied\n", stderr);
	*decision = PALYRA__V1__APPROVAL_DECISION_KIND__APPROVAL_DECISION_DENY;
	*scope = 0;
	*ttl_ms = 0;
	return -1;
}
