/*
 * authfail.c: rate limiting of authentication failures per source address
 * in palyra-front, for gRPC (rpc.c) and the HTTP admin API (http.c,
 * processes.c, journal.c).
 *
 * Process: palyra-front. Touches only its own table. Each source, an IPv4
 * address or an IPv6 /64 (one host usually holds a whole /64), has a token
 * bucket of FE_AUTH_FAIL_BURST failures refilled at FE_AUTH_FAIL_PER_MIN a
 * minute. A failure takes one token; while a source's bucket is empty
 * every attempt from it is refused before its token is even looked up, so
 * that a guesser learns nothing and costs journald nothing. Successes take
 * nothing. The table holds at most FE_AUTH_FAIL_TABLE sources; the least
 * recently failed is evicted for a new one, so memory stays bounded under
 * a flood of addresses. Buckets are found by a keyed hash (SipHash with a
 * random key) so that chosen addresses cannot pile into one chain.
 */
#include <sys/queue.h>
#include <sys/socket.h>

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "front.h"

#define FE_AUTH_FAIL_CHAINS 1024
#define FE_AUTH_FAIL_MILLI 1000 /* bucket levels in thousandths of a token */

struct fe_authfail_entry {
	TAILQ_ENTRY(fe_authfail_entry) lru;
	LIST_ENTRY(fe_authfail_entry) chain;
	uint8_t key[FE_AUTH_SOURCE_LEN];
	int64_t updated_ms; /* CLOCK_MONOTONIC */
	int64_t level;	    /* thousandths of a token */
};

struct fe_authfail {
	struct fe_authfail_entry entries[FE_AUTH_FAIL_TABLE];
	size_t used;
	TAILQ_HEAD(fe_authfail_lru, fe_authfail_entry) lru; /* recent first */
	LIST_HEAD(, fe_authfail_entry) chains[FE_AUTH_FAIL_CHAINS];
	uint8_t hash_key[crypto_shorthash_KEYBYTES];
};

static int64_t
monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * The source of a peer address: 0 and the 4 bytes of an IPv4 address
 * (IPv4-mapped IPv6 too), or 1 and the first 8 bytes of an IPv6 one; the
 * rest zero. Returns 0, or -EAFNOSUPPORT for any other family.
 */
int
fe_authfail_source(const struct sockaddr *sa, size_t salen,
    uint8_t source[FE_AUTH_SOURCE_LEN])
{
	memset(source, 0, FE_AUTH_SOURCE_LEN);
	if (sa == NULL)
		return -EAFNOSUPPORT;
	if (sa->sa_family == AF_INET && salen >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		memcpy(source + 1, &in->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family == AF_INET6 && salen >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *in6 =
		    (const struct sockaddr_in6 *)sa;

		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
			memcpy(source + 1, &in6->sin6_addr.s6_addr[12], 4);
			return 0;
		}
		source[0] = 1;
		memcpy(source + 1, in6->sin6_addr.s6_addr, 8);
		return 0;
	}
	return -EAFNOSUPPORT;
}

static struct fe_authfail *
table(struct fe_ctx *ctx)
{
	struct fe_authfail *t = ctx->authfail;
	size_t i;

	if (t != NULL)
		return t;
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	TAILQ_INIT(&t->lru);
	for (i = 0; i < FE_AUTH_FAIL_CHAINS; i++)
		LIST_INIT(&t->chains[i]);
	randombytes_buf(t->hash_key, sizeof(t->hash_key));
	ctx->authfail = t;
	return t;
}

static size_t
chain_of(const struct fe_authfail *t, const uint8_t *source)
{
	uint8_t h[crypto_shorthash_BYTES];
	uint64_t v;

	crypto_shorthash(h, source, FE_AUTH_SOURCE_LEN, t->hash_key);
	memcpy(&v, h, sizeof(v));
	return (size_t)(v % FE_AUTH_FAIL_CHAINS);
}

static struct fe_authfail_entry *
find(struct fe_authfail *t, const uint8_t *source)
{
	struct fe_authfail_entry *e;

	LIST_FOREACH(e, &t->chains[chain_of(t, source)], chain)
	if (memcmp(e->key, source, FE_AUTH_SOURCE_LEN) == 0)
		return e;
	return NULL;
}

/* Brings e's level up to now. */
static void
refill(struct fe_authfail_entry *e, int64_t now)
{
	int64_t elapsed = now - e->updated_ms, full =
	    (int64_t)FE_AUTH_FAIL_BURST * FE_AUTH_FAIL_MILLI;

	if (elapsed > 0) {
		/* Capped first: no overflow after a long quiet time. */
		if (elapsed > 3600 * 1000)
			elapsed = 3600 * 1000;
		e->level += elapsed * FE_AUTH_FAIL_PER_MIN * FE_AUTH_FAIL_MILLI /
		    60000;
		if (e->level > full)
			e->level = full;
	}
	e->updated_ms = now;
}

int64_t
fe_authfail_blocked_ms(struct fe_ctx *ctx, const uint8_t *source)
{
	struct fe_authfail_entry *e;

	if (source == NULL || ctx->authfail == NULL ||
	    (e = find(ctx->authfail, source)) == NULL)
		return 0;
	refill(e, monotonic_ms());
	if (e->level >= FE_AUTH_FAIL_MILLI)
		return 0;
	ctx->metrics.auth_rate_limited++;
	/* Rounded up, so at least 1 ms: the caller tests for non-zero. */
	return ((FE_AUTH_FAIL_MILLI - e->level) * 60000 +
		   (int64_t)FE_AUTH_FAIL_PER_MIN * FE_AUTH_FAIL_MILLI - 1) /
	    ((int64_t)FE_AUTH_FAIL_PER_MIN * FE_AUTH_FAIL_MILLI);
}

void
fe_authfail_record(struct fe_ctx *ctx, const uint8_t *source)
{
	struct fe_authfail *t;
	struct fe_authfail_entry *e;
	int64_t now = monotonic_ms();

	ctx->metrics.auth_failures++;
	if (source == NULL || (t = table(ctx)) == NULL)
		return;
	if ((e = find(t, source)) != NULL) {
		refill(e, now);
		TAILQ_REMOVE(&t->lru, e, lru);
	} else {
		if (t->used < FE_AUTH_FAIL_TABLE)
			e = &t->entries[t->used++];
		else {
			e = TAILQ_LAST(&t->lru, fe_authfail_lru);
			TAILQ_REMOVE(&t->lru, e, lru);
			LIST_REMOVE(e, chain);
		}
		memcpy(e->key, source, FE_AUTH_SOURCE_LEN);
		e->level = (int64_t)FE_AUTH_FAIL_BURST * FE_AUTH_FAIL_MILLI;
		e->updated_ms = now;
		LIST_INSERT_HEAD(&t->chains[chain_of(t, source)], e, chain);
	}
	e->level -= FE_AUTH_FAIL_MILLI;
	if (e->level < 0)
		e->level = 0;
	TAILQ_INSERT_HEAD(&t->lru, e, lru);
}

void
fe_authfail_free(struct fe_ctx *ctx)
{
	free(ctx->authfail);
	ctx->authfail = NULL;
}
