/*
 * session.h: the session id a (tenant, principal, session_key) names.
 * Used by palyra-worker (a run started with a key) and palyra-front
 * (ResolveSession), so both always agree on it.
 */
#ifndef PALYRA_SESSION_H
#define PALYRA_SESSION_H

#include <stddef.h>

#include "limits.h"

/* Hex characters of a derived (or random) session id. */
#define SESSION_ID_LEN 32

/*
 * The session id derived from the key: the first SESSION_ID_LEN hex
 * digits of BLAKE2b(tenant NUL principal NUL key). The same three always
 * give the same id; the derivation must never change, or existing
 * sessions stop resolving. Returns 0, -EINVAL for an empty key or -E2BIG
 * for a key over WRK_SESSION_KEY_MAX_LEN.
 */
int session_id_derive(const char *tenant, const char *principal,
    const char *session_key, char out[SESSION_ID_LEN + 1]);

#endif
