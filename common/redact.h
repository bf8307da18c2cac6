/*
 * redact.h: redaction by value, shared by palyra-journald (journald/redact.c:
 * the supervisor's provider credentials) and palyra-worker (worker/vault.c:
 * the tenant's vault values). Pure functions over memory: no I/O, no
 * process state.
 *
 * Every occurrence of a value in a string field of a run event becomes
 * REDACT_MARK. Values shorter than JNL_SECRET_MIN_LEN are never used (they
 * would blank out ordinary text); longer values are replaced first, so a
 * value containing another is replaced whole. Identifiers (run_id,
 * session_id, tool names and ids) are not redacted: they are handles
 * checked against a name syntax, and rewriting them would break the run.
 */
#ifndef PALYRA_REDACT_H
#define PALYRA_REDACT_H

#include <stddef.h>
#include <stdint.h>

#include "ipc.pb-c.h"

#define REDACT_MARK	"[REDACTED]"
/* The string fields of one event that redact_event_fields() names. */
#define REDACT_FIELDS_MAX 2

/* One value to redact; a set of them is sorted with redact_sort(). */
struct redact_secret {
	uint8_t	*value;
	size_t	 len;
};

/* Sorts a set longest first, as redaction needs it. */
void	redact_sort(struct redact_secret *, size_t n);

/*
 * The string fields of ev that redaction rewrites, by event kind (status
 * reason, token, final and note text, usage provider and model, error code
 * and message, tool call arguments, tool result content, input text,
 * approval request summary, approval decided reason): writes up to
 * REDACT_FIELDS_MAX pointers to them into fields and returns how many.
 */
size_t	redact_event_fields(Palyra__V1__RunEvent *ev,
	    char **fields[REDACT_FIELDS_MAX]);

/*
 * Redacts s (len bytes, NUL-terminated). Returns 1 with *out, a new
 * NUL-terminated string from malloc (*outlen its length), when s held a
 * value; 0 when it held none (*out NULL); -ENOMEM.
 */
int	redact_text(const struct redact_secret *, size_t n, const char *s,
	    size_t len, char **out, size_t *outlen);

/*
 * Replaces *s (a string from malloc, or NULL) by its redacted copy; the old
 * string is wiped and freed. Returns 1 when replaced, 0, or -ENOMEM (*s
 * untouched).
 */
int	redact_string(const struct redact_secret *, size_t n, char **s);

/*
 * Redacts every field of ev in place (redact_string). ev's strings must
 * come from malloc (protobuf-c's unpack with the default allocator): only
 * a string that holds a value, so is not empty, is replaced. Returns 1
 * when something was redacted, 0 when not, -ENOMEM.
 */
int	redact_event(const struct redact_secret *, size_t n,
	    Palyra__V1__RunEvent *ev);

/*
 * Carry-over across a stream of pieces (model tokens): the length of the
 * longest tail of s (len bytes) that is a proper prefix of a value, which
 * the caller holds back and puts before the next piece, so that a value
 * split across two pieces is whole in one of them. 0: nothing to hold.
 */
size_t	redact_hold(const struct redact_secret *, size_t n, const char *s,
	    size_t len);

#endif
