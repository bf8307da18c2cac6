/*
 * console_login.c: the browser login of /console/v1 (console.c): POST
 * /console/v1/login and /logout, the login sessions (a bounded table in
 * this process's memory, idle and absolute expiry), the session cookie,
 * the CSRF check, and which credentials a request presents.
 *
 * A session holds the token's keyed hash, never the token; each request
 * looks the hash up at journald again (console.c), so that revocation and
 * expiry apply at once. Session ids and CSRF tokens are 256 random bits
 * from libsodium, compared in constant time.
 *
 * Process: palyra-front. No I/O of its own beyond the request's headers.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <sodium.h>

#include "config.h"
#include "console.h"
#include "log.h"
#include "palyra/v1/gateway.pb-c.h"

#define COOKIE_NAME "palyra_session"

/* ---- login sessions ---- */

static int64_t
now_s(void)
{
	return fe_now_unix_ms() / 1000;
}

static int
login_live(const struct fe_login *l, int64_t now)
{
	return l->used && now < l->expires_s &&
	       now < l->last_used_s + FE_CONSOLE_LOGIN_IDLE_S;
}

/* The request's login session, unless it ended (its slot may hold
 * another session by now). */
struct fe_login *
fe_console_req_login(struct fe_console_req *cr)
{
	struct fe_login *l = cr->login;

	if (l == NULL || !l->used ||
	    sodium_memcmp(l->id, cr->login_id, sizeof(l->id)) != 0)
		return NULL;
	return l;
}

void
fe_console_login_end(struct fe_console *c, struct fe_login *l)
{
	if (l->used)
		c->nlogins--;
	sodium_memzero(l, sizeof(*l));
}

/* The live session of a cookie value, or NULL. */
static struct fe_login *
login_find(struct fe_console *c, const char *hex)
{
	uint8_t id[FE_CONSOLE_SECRET_LEN];
	struct fe_login *found = NULL;
	int64_t now = now_s();
	size_t i, binlen;

	if (sodium_hex2bin(
		id, sizeof(id), hex, strlen(hex), NULL, &binlen, NULL) != 0 ||
	    binlen != sizeof(id) || strlen(hex) != 2 * sizeof(id))
		return NULL;
	for (i = 0; i < FE_CONSOLE_LOGINS_MAX; i++) {
		struct fe_login *l = &c->logins[i];

		if (!l->used)
			continue;
		if (!login_live(l, now)) {
			fe_console_login_end(c, l);
			continue;
		}
		if (sodium_memcmp(l->id, id, sizeof(id)) == 0)
			found = l;
	}
	sodium_memzero(id, sizeof(id));
	return found;
}

static void
hex_of(const uint8_t *bin, size_t len, char *out, size_t outsize)
{
	sodium_bin2hex(out, outsize, bin, len);
}

static void
set_cookie(struct fe_console_req *cr, const char *value, int64_t max_age)
{
	char buf[256];

	snprintf(buf, sizeof(buf),
	    COOKIE_NAME "=%s; Path=/console/v1; Max-Age=%lld; HttpOnly; "
			"SameSite=Strict%s",
	    value, (long long)max_age, cr->ctx->http_is_tls ? "; Secure" : "");
	evhttp_add_header(
	    evhttp_request_get_output_headers(cr->req), "Set-Cookie", buf);
}

/* Login: the token checked out. A new session for it. */
void
fe_console_login_create(struct fe_console_req *cr, struct fe_call *call)
{
	struct fe_console *c = cr->ctx->console;
	struct fe_login *l = NULL;
	char idhex[2 * FE_CONSOLE_SECRET_LEN + 1];
	char csrf[2 * FE_CONSOLE_SECRET_LEN + 1];
	int64_t now = now_s();
	size_t i;

	for (i = 0; i < FE_CONSOLE_LOGINS_MAX; i++) {
		if (c->logins[i].used && !login_live(&c->logins[i], now))
			fe_console_login_end(c, &c->logins[i]);
		if (!c->logins[i].used && l == NULL)
			l = &c->logins[i];
	}
	if (l == NULL) {
		fe_console_fail(cr, 503, "unavailable",
		    "too many login sessions; try again later");
		return;
	}
	l->used = 1;
	c->nlogins++;
	randombytes_buf(l->id, sizeof(l->id));
	randombytes_buf(l->csrf, sizeof(l->csrf));
	memcpy(l->token_hash, call->token_hash, sizeof(l->token_hash));
	l->created_s = l->last_used_s = now;
	l->expires_s = now + FE_CONSOLE_LOGIN_MAX_S;
	hex_of(l->id, sizeof(l->id), idhex, sizeof(idhex));
	hex_of(l->csrf, sizeof(l->csrf), csrf, sizeof(csrf));
	set_cookie(cr, idhex, FE_CONSOLE_LOGIN_MAX_S);
	log_info("console: login of tenant %s principal %s", call->tenant,
	    call->principal);
	fe_console_reply_obj(cr, 200,
	    json_pack("{s:s,s:s,s:s,s:s,s:I,s:i}", "csrf_token", csrf, "tenant",
		call->tenant, "principal", call->principal, "role", call->role,
		"expires_unix", (json_int_t)l->expires_s,
		"idle_timeout_seconds", FE_CONSOLE_LOGIN_IDLE_S));
	sodium_memzero(idhex, sizeof(idhex));
	sodium_memzero(csrf, sizeof(csrf));
}

void
fe_console_route_login(struct fe_console_req *cr, enum evhttp_cmd_type cmd)
{
	static const char *const keys[] = {"token", NULL};
	const char *token = NULL;
	json_t *body;

	if (cmd != EVHTTP_REQ_POST) {
		fe_console_not_allowed(cr, "POST");
		return;
	}
	if ((body = fe_console_body_json(cr, keys, 0)) == NULL)
		return;
	if (fe_console_str_member(cr, body, "token", &token) < 0) {
		json_decref(body);
		return;
	}
	if (token == NULL || token[0] == '\0' ||
	    strlen(token) > FE_TOKEN_MAX_LEN) {
		json_decref(body);
		fe_console_fail(cr, 400, "bad_request",
		    "token is required (at most 256 bytes)");
		return;
	}
	fe_auth_hash(cr->ctx, token, strlen(token), cr->token_hash);
	json_decref(body);
	cr->kind = FE_CONSOLE_LOGIN;
	fe_console_call_begin(cr, FE_METHOD_LIST_SESSIONS, NULL);
}

void
fe_console_route_logout(struct fe_console_req *cr, enum evhttp_cmd_type cmd)
{
	if (cmd != EVHTTP_REQ_POST) {
		fe_console_not_allowed(cr, "POST");
		return;
	}
	if (fe_console_req_login(cr) == NULL) {
		fe_console_fail(
		    cr, 400, "bad_request", "no login session to end");
		return;
	}
	fe_console_login_end(cr->ctx->console, cr->login);
	cr->login = NULL;
	set_cookie(cr, "", 0);
	fe_console_reply_obj(cr, 200, json_pack("{s:b}", "logged_out", 1));
}

/*
 * The request's credentials: a bearer token, else the login cookie (and
 * its CSRF token for a request that changes something). Returns 0 with
 * cr->token_hash set, or -1 after answering.
 */
int
fe_console_authenticate(struct fe_console_req *cr, enum evhttp_cmd_type cmd)
{
	struct evkeyvalq *h = evhttp_request_get_input_headers(cr->req);
	const char *auth = evhttp_find_header(h, "Authorization");
	const char *cookie = evhttp_find_header(h, "Cookie");
	const char *csrf, *token;
	char value[2 * FE_CONSOLE_SECRET_LEN + 1];
	char want[2 * FE_CONSOLE_SECRET_LEN + 1];
	size_t tokenlen;
	struct fe_login *l;

	if (!cr->ctx->have_keys) {
		fe_console_fail(cr, 503, "unavailable", "not ready");
		return -1;
	}
	if (fe_authfail_blocked_ms(
		cr->ctx, cr->conn.has_source ? cr->conn.source : NULL) > 0) {
		fe_console_fail(cr, 429, "too_many_requests",
		    "too many authentication failures");
		return -1;
	}
	if (auth != NULL) {
		if (fe_auth_bearer(auth, strlen(auth), &token, &tokenlen) < 0) {
			fe_console_fail(cr, 401, "unauthenticated",
			    "malformed bearer token");
			return -1;
		}
		fe_auth_hash(cr->ctx, token, tokenlen, cr->token_hash);
		return 0;
	}
	if (cookie == NULL || fe_console_cookie_value(cookie, COOKIE_NAME,
				  value, sizeof(value)) < 0) {
		fe_console_fail(cr, 401, "unauthenticated",
		    "a bearer token or a login session is required");
		return -1;
	}
	if ((l = login_find(cr->ctx->console, value)) == NULL) {
		/* A guessed session id is a guessed token. */
		fe_authfail_record(
		    cr->ctx, cr->conn.has_source ? cr->conn.source : NULL);
		fe_console_fail(cr, 401, "unauthenticated",
		    "the login session ended; log in again");
		return -1;
	}
	if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
		csrf = evhttp_find_header(h, "X-CSRF-Token");
		hex_of(l->csrf, sizeof(l->csrf), want, sizeof(want));
		if (csrf == NULL || strlen(csrf) != strlen(want) ||
		    sodium_memcmp(csrf, want, strlen(want)) != 0) {
			sodium_memzero(want, sizeof(want));
			fe_console_fail(cr, 403, "forbidden",
			    "missing or wrong X-CSRF-Token");
			return -1;
		}
		sodium_memzero(want, sizeof(want));
	}
	cr->login = l;
	memcpy(cr->login_id, l->id, sizeof(cr->login_id));
	memcpy(cr->token_hash, l->token_hash, sizeof(cr->token_hash));
	return 0;
}
