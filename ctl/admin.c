/*
 * admin.c: palyractl's side of the HTTP admin API (/admin/v1) and where the
 * admin token comes from.
 *
 * The admin token is read from PALYRA_ADMIN_TOKEN or STATE_DIR/admin.token
 * (-s, else ./var when ./var/admin.token exists, else /var/lib/palyra). It
 * is sent only as an Authorization header, never printed, and wiped after
 * use. Replies are JSON, read into a bounded buffer and parsed with jansson.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/stat.h>

#include <curl/curl.h>
#include <jansson.h>

#include "ctl.h"

struct reply_buf {
	char	*data;
	size_t	 len;
	int	 overflow;
};

/*
 * Finds the admin token. -s wins, then PALYRA_ADMIN_TOKEN, then the default
 * state directories. Returns 0, or -1 with a message in err.
 */
int
ctl_admin_token(const struct ctl_ctx *ctx, char *out, size_t size, char *err,
    size_t errlen)
{
	const char	*env = getenv("PALYRA_ADMIN_TOKEN");
	const char	*dir = ctx->state_dir;
	char		 path[4096];
	ssize_t		 n;
	size_t		 len;
	int		 fd;

	if (dir == NULL && env != NULL && env[0] != '\0') {
		if (strlen(env) >= size) {
			snprintf(err, errlen, "PALYRA_ADMIN_TOKEN too long");
			return -1;
		}
		snprintf(out, size, "%s", env);
		return 0;
	}
	if (dir == NULL)
		dir = access(CTL_DEV_STATE "/admin.token", F_OK) == 0 ?
		    CTL_DEV_STATE : CTL_DEFAULT_STATE;
	if ((size_t)snprintf(path, sizeof(path), "%s/admin.token", dir) >=
	    sizeof(path)) {
		snprintf(err, errlen, "state directory path too long");
		return -1;
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "cannot read admin token %s: %s", path,
		    strerror(errno));
		return -1;
	}
	n = read(fd, out, size - 1);
	close(fd);
	if (n < 0) {
		snprintf(err, errlen, "cannot read admin token %s: %s", path,
		    strerror(errno));
		return -1;
	}
	len = (size_t)n;
	while (len > 0 && (out[len - 1] == '\n' || out[len - 1] == '\r' ||
	    out[len - 1] == ' ' || out[len - 1] == '\t'))
		len--;
	out[len] = '\0';
	if (len == 0 || len >= size - 1) {
		explicit_bzero(out, size);
		snprintf(err, errlen, "admin token in %s is empty or too long",
		    path);
		return -1;
	}
	return 0;
}

static size_t
reply_write(char *buf, size_t size, size_t nmemb, void *arg)
{
	struct reply_buf *r = arg;
	size_t		 len = size * nmemb;
	char		*p;

	if (r->len + len > CTL_HTTP_MAX_BODY) {
		r->overflow = 1;
		return 0;
	}
	if ((p = realloc(r->data, r->len + len + 1)) == NULL)
		return 0;
	r->data = p;
	memcpy(r->data + r->len, buf, len);
	r->len += len;
	r->data[r->len] = '\0';
	return len;
}

/*
 * Calls the admin API with the admin token: POST with a JSON body, or GET
 * when body is NULL. Returns 0 with the HTTP status and the reply body
 * (caller frees), or -1 with err set.
 */
static int
admin_request(const struct ctl_ctx *ctx, const char *method, const char *path,
    const char *body, long *http_status, char **reply, char *err,
    size_t errlen)
{
	struct reply_buf	 r = { NULL, 0, 0 };
	struct curl_slist	*headers = NULL, *h;
	char			 token[FE_TOKEN_MAX_LEN + 1];
	char			 auth[FE_TOKEN_MAX_LEN + 32], url[1024];
	char			 errbuf[CURL_ERROR_SIZE];
	long			 oserr = 0;
	CURL			*curl = NULL;
	CURLcode		 rc;
	int			 ret = -1;

	*reply = NULL;
	errbuf[0] = '\0';
	if (ctl_admin_token(ctx, token, sizeof(token), err, errlen) < 0)
		return -1;
	snprintf(auth, sizeof(auth), "authorization: Bearer %s", token);
	explicit_bzero(token, sizeof(token));
	if ((size_t)snprintf(url, sizeof(url), "%s%s", ctx->url, path) >=
	    sizeof(url)) {
		snprintf(err, errlen, "URL too long");
		goto out;
	}
	headers = curl_slist_append(NULL, "content-type: application/json");
	if (headers != NULL && (h = curl_slist_append(headers, auth)) != NULL)
		headers = h;
	else {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if ((curl = curl_easy_init()) == NULL) {
		snprintf(err, errlen, "libcurl failed");
		goto out;
	}
	curl_easy_setopt(curl, CURLOPT_URL, url);
	if (body != NULL)
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
	if (method != NULL)
		curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "palyractl");
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, reply_write);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &r);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, 60L);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");

	rc = curl_easy_perform(curl);
	if (r.overflow) {
		snprintf(err, errlen, "reply larger than %d bytes",
		    CTL_HTTP_MAX_BODY);
		goto out;
	}
	if (rc != CURLE_OK) {
		curl_easy_getinfo(curl, CURLINFO_OS_ERRNO, &oserr);
		ctl_transport_failed(ctx, (int)rc);
		if (rc == CURLE_COULDNT_CONNECT ||
		    rc == CURLE_COULDNT_RESOLVE_HOST)
			snprintf(err, errlen, "cannot connect to %s: %s",
			    ctx->url, oserr != 0 ? strerror((int)oserr) :
			    curl_easy_strerror(rc));
		else
			snprintf(err, errlen, "%s: %s", ctx->url,
			    errbuf[0] != '\0' ? errbuf :
			    curl_easy_strerror(rc));
		goto out;
	}
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, http_status);
	*reply = r.data != NULL ? r.data : strdup("");
	r.data = NULL;
	ret = *reply != NULL ? 0 : -1;
out:
	explicit_bzero(auth, sizeof(auth));
	if (curl != NULL)
		curl_easy_cleanup(curl);
	curl_slist_free_all(headers);
	free(r.data);
	return ret;
}

int
ctl_admin_post(const struct ctl_ctx *ctx, const char *path, const char *body,
    long *http_status, char **reply, char *err, size_t errlen)
{
	return admin_request(ctx, NULL, path, body, http_status, reply, err,
	    errlen);
}

int
ctl_admin_get(const struct ctl_ctx *ctx, const char *path, long *http_status,
    char **reply, char *err, size_t errlen)
{
	return admin_request(ctx, NULL, path, NULL, http_status, reply, err,
	    errlen);
}

int
ctl_admin_patch(const struct ctl_ctx *ctx, const char *path, const char *body,
    long *http_status, char **reply, char *err, size_t errlen)
{
	return admin_request(ctx, "PATCH", path, body, http_status, reply,
	    err, errlen);
}

int
ctl_admin_put(const struct ctl_ctx *ctx, const char *path, const char *body,
    long *http_status, char **reply, char *err, size_t errlen)
{
	return admin_request(ctx, "PUT", path, body, http_status, reply, err,
	    errlen);
}

int
ctl_admin_delete(const struct ctl_ctx *ctx, const char *path,
    long *http_status, char **reply, char *err, size_t errlen)
{
	return admin_request(ctx, "DELETE", path, NULL, http_status, reply,
	    err, errlen);
}

/* The message of a JSON error reply, or a generic one. */
void
ctl_admin_error_message(const char *reply, long status, char *err, size_t errlen)
{
	json_error_t	 jerr;
	json_t		*root, *msg;

	root = json_loads(reply, 0, &jerr);
	msg = json_object_get(json_object_get(root, "error"), "message");
	if (json_is_string(msg))
		snprintf(err, errlen, "%s", json_string_value(msg));
	else
		snprintf(err, errlen, "server answered HTTP status %ld",
		    status);
	json_decref(root);
}

/*
 * Creates a tenant token. Returns 0 with the server's JSON reply (caller
 * frees; it holds the token), or -1 with err set.
 */
int
ctl_token_create(const struct ctl_ctx *ctx, const char *tenant,
    const char *principal, const char *role, long long expires_in,
    char **reply_json, char *err, size_t errlen)
{
	json_t		*req;
	char		*body, *reply = NULL;
	long		 status = 0;
	int		 r;

	*reply_json = NULL;
	req = json_pack("{s:s, s:s, s:s}", "tenant", tenant, "principal",
	    principal, "role", role);
	if (req != NULL && expires_in > 0 && json_object_set_new(req,
	    "expires_in_seconds", json_integer(expires_in)) < 0) {
		json_decref(req);
		req = NULL;
	}
	if (req == NULL || (body = json_dumps(req, JSON_COMPACT)) == NULL) {
		json_decref(req);
		snprintf(err, errlen, "cannot build the request");
		return -1;
	}
	json_decref(req);
	r = ctl_admin_post(ctx, "/admin/v1/tokens", body, &status, &reply,
	    err, errlen);
	free(body);
	if (r < 0)
		return -1;
	if (status < 200 || status > 299) {
		ctl_admin_error_message(reply, status, err, errlen);
		free(reply);
		return -1;
	}
	*reply_json = reply;
	return 0;
}

/*
 * Lists palyrad's processes (GET /admin/v1/processes). Returns 0 with the
 * server's JSON reply text (caller frees), or -1 with err set.
 */
int
ctl_processes(const struct ctl_ctx *ctx, char **reply_json, char *err,
    size_t errlen)
{
	char		*reply = NULL;
	long		 status = 0;

	*reply_json = NULL;
	if (ctl_admin_get(ctx, "/admin/v1/processes", &status, &reply, err,
	    errlen) < 0)
		return -1;
	if (status != 200) {
		ctl_admin_error_message(reply, status, err, errlen);
		free(reply);
		return -1;
	}
	*reply_json = reply;
	return 0;
}

char *
ctl_bearer(const struct ctl_ctx *ctx, const char *token, const char *tenant)
{
	const char	*t;
	char		 err[512], *reply = NULL, *out = NULL;
	json_t		*root;

	if (token != NULL)
		return strdup(token);
	if (tenant == NULL)
		return ctx->token != NULL ? strdup(ctx->token) : NULL;
	if (ctl_token_create(ctx, tenant, "palyractl", "operator", 0, &reply,
	    err, sizeof(err)) < 0) {
		fprintf(stderr, "palyractl: token create: %s\n", err);
		return NULL;
	}
	root = json_loads(reply, 0, NULL);
	free(reply);
	t = json_string_value(json_object_get(root, "token"));
	if (t != NULL)
		out = strdup(t);
	else
		fprintf(stderr, "palyractl: token create: malformed reply\n");
	json_decref(root);
	return out;
}

int
ctl_token_file(const char *path, char *out, size_t size, char *err,
    size_t errlen)
{
	struct stat	 st;
	ssize_t		 n;
	size_t		 len = 0, i;
	int		 fd;

	/* O_NONBLOCK: a FIFO in its place must not hang palyractl. */
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) == -1) {
		snprintf(err, errlen, "token file %s: %s", path,
		    strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "token file %s: not a regular file",
		    path);
		goto fail;
	}
	/* A token others can read is a token others hold. */
	if ((st.st_mode & S_IRWXO) != 0) {
		snprintf(err, errlen, "token file %s: accessible by others "
		    "(mode %04o); chmod o= it", path,
		    (unsigned)(st.st_mode & 07777));
		goto fail;
	}
	while (len < size) {
		n = read(fd, out + len, size - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			snprintf(err, errlen, "token file %s: %s", path,
			    strerror(errno));
			goto fail;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	while (len > 0 && (out[len - 1] == '\n' || out[len - 1] == '\r' ||
	    out[len - 1] == ' ' || out[len - 1] == '\t'))
		len--;
	if (len >= size || len > FE_TOKEN_MAX_LEN) {
		snprintf(err, errlen, "token file %s: token longer than %d "
		    "bytes", path, FE_TOKEN_MAX_LEN);
		goto fail;
	}
	if (len == 0) {
		snprintf(err, errlen, "token file %s: empty", path);
		goto fail;
	}
	for (i = 0; i < len; i++)
		if ((unsigned char)out[i] <= 0x20 || out[i] == 0x7f) {
			snprintf(err, errlen, "token file %s: not one token "
			    "on one line", path);
			goto fail;
		}
	out[len] = '\0';
	close(fd);
	return 0;
fail:
	explicit_bzero(out, size);
	close(fd);
	return -1;
}
