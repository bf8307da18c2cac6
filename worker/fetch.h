/*
 * fetch.h: the built-in tool http.fetch (DESIGN section 9, issue 7).
 *
 * GET (or HEAD) of an http or https URL whose host is on the agent's (else
 * the tenant's) egress allow-list (ipc.proto FetchPolicy). The worker
 * never resolves names: an allow-listed host name was resolved once by the
 * supervisor before the sandbox and is pinned (palyra-worker -H), so a
 * name cannot be re-pointed between check and connect. Every address a
 * fetch would use, the first and after each redirect (followed here, at
 * most max-redirects, each hop checked again), is refused when it is
 * loopback, private (RFC 1918, CGNAT, ULA), link-local, unspecified,
 * multicast, broadcast, documentation or cloud metadata, in IPv4, IPv6 or
 * IPv4-mapped/compatible IPv6 form, unless the allow-list entry says
 * allow-private. The body is capped (max-size), the whole fetch timed
 * (timeout), and only the listed content types are returned.
 */
#ifndef PALYRA_WORKER_FETCH_H
#define PALYRA_WORKER_FETCH_H

#include <jansson.h>

struct wrk_run;

/* The arguments' JSON schema, as offered to the model. */
extern const char wrk_fetch_schema[];

/*
 * The result is a JSON object text {"url","status","content_type",
 * "truncated","body"} or, is_error set, a sentence saying why the fetch
 * was refused or failed (never an internal detail). result is malloc'd
 * and handed to done, which owns it.
 */
typedef void (*wrk_fetch_fn)(struct wrk_run *, void *arg, char *result,
    int is_error);

/* Starts the fetch args asks for (validated against wrk_fetch_schema).
 * Returns 0 (done is called later, once, unless wrk_fetch_cancel) or a
 * negative errno. One fetch at a time per run. */
int	wrk_fetch_start(struct wrk_run *, const json_t *args, wrk_fetch_fn done,
	    void *arg);

/* Stops the run's fetch, if any; done is not called. Idempotent. */
void	wrk_fetch_cancel(struct wrk_run *);

#endif
