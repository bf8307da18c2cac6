/*
 * tls.c: the certificates and keys of the TLS listeners. Runs in palyrad.
 *
 * The front has no filesystem after its sandbox, so the supervisor, which
 * runs as root, reads each TLS listener's certificate chain and key file and
 * hands their PEM contents to the front as IPC_TLS_CONFIG: when the front
 * starts, and again on SIGHUP so that renewed certificates take effect
 * without a restart. A key file that group or others may access is
 * refused. The supervisor never parses the PEM (it links no TLS library);
 * the front does, and keeps its running contexts when they do not load.
 * Every copy of a key is wiped once the message is queued.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "config.h"
#include "ipc.h"
#include "ipc.pb-c.h"
#include "log.h"
#include "sup.h"

/* One file read into memory; wiped and freed by pem_free(). */
struct pem {
	uint8_t	*data;
	size_t	 len;
};

static void
pem_free(struct pem *p)
{
	if (p->data != NULL) {
		sodium_memzero(p->data, p->len);
		free(p->data);
	}
	p->data = NULL;
	p->len = 0;
}

/*
 * Reads path into out. is_key: refuse a file that group or others may
 * access. Returns 0, or -1 with "PATH: reason" in err.
 */
static int
pem_read(const char *path, int is_key, struct pem *out, char *err,
    size_t errlen)
{
	struct stat st;
	ssize_t n;
	size_t got = 0;
	int fd;

	out->data = NULL;
	out->len = 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		goto fail;
	}
	if (is_key && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
		snprintf(err, errlen, "%s: key file is accessible by group or "
		    "others (mode %04o); it must be 0600 or stricter", path,
		    (unsigned)(st.st_mode & 07777));
		goto fail;
	}
	if (st.st_size <= 0 || st.st_size > TLS_PEM_MAX) {
		snprintf(err, errlen, "%s: %s (the limit is %d bytes)", path,
		    st.st_size <= 0 ? "empty file" : "file too large",
		    TLS_PEM_MAX);
		goto fail;
	}
	if ((out->data = malloc((size_t)st.st_size)) == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto fail;
	}
	out->len = (size_t)st.st_size;
	while (got < out->len) {
		n = read(fd, out->data + got, out->len - got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(err, errlen, "%s: %s", path, n == 0 ?
			    "file shrank while read" : strerror(errno));
			goto fail;
		}
		got += (size_t)n;
	}
	close(fd);
	return 0;
fail:
	pem_free(out);
	close(fd);
	return -1;
}

/* Reads one listener's pair. Returns 0 (nothing for a cleartext one). */
static int
listener_read(const struct cfg_listen *l, struct pem *cert, struct pem *key,
    char *err, size_t errlen)
{
	cert->data = key->data = NULL;
	cert->len = key->len = 0;
	if (!l->tls)
		return 0;
	if (pem_read(l->tls_certificate, 0, cert, err, errlen) == -1)
		return -1;
	if (pem_read(l->tls_key, 1, key, err, errlen) == -1) {
		pem_free(cert);
		return -1;
	}
	return 0;
}

int
sup_tls_check(const struct cfg *cfg, char *err, size_t errlen)
{
	const struct cfg_listen *l[] = { &cfg->grpc, &cfg->http };
	struct pem cert, key;
	size_t i;

	for (i = 0; i < 2; i++) {
		if (listener_read(l[i], &cert, &key, err, errlen) == -1)
			return -1;
		pem_free(&cert);
		pem_free(&key);
	}
	return 0;
}

int
sup_tls_send(struct sup_ctx *ctx, struct sup_child *c)
{
	Palyra__Ipc__TlsConfig tc = PALYRA__IPC__TLS_CONFIG__INIT;
	struct pem gc, gk, hc, hk;
	char err[CFG_ERR_LEN];
	int rc = -1;

	if (c->chan == NULL)
		return -1;
	if (listener_read(&ctx->cfg->grpc, &gc, &gk, err, sizeof(err)) == -1) {
		log_error("gRPC listener tls: %s", err);
		return -1;
	}
	if (listener_read(&ctx->cfg->http, &hc, &hk, err, sizeof(err)) == -1) {
		log_error("HTTP listener tls: %s", err);
		goto out;
	}
	tc.grpc_tls = ctx->cfg->grpc.tls != 0;
	tc.grpc_cert.data = gc.data;
	tc.grpc_cert.len = gc.len;
	tc.grpc_key.data = gk.data;
	tc.grpc_key.len = gk.len;
	tc.http_tls = ctx->cfg->http.tls != 0;
	tc.http_cert.data = hc.data;
	tc.http_cert.len = hc.len;
	tc.http_key.data = hk.data;
	tc.http_key.len = hk.len;
	if ((rc = ipc_chan_send(c->chan, IPC_TLS_CONFIG, 0, &tc.base, NULL,
	    0)) < 0)
		log_error("%s: cannot send TLS_CONFIG: %s", c->label,
		    strerror(-rc));
	rc = rc < 0 ? -1 : 0;
out:
	pem_free(&gc);
	pem_free(&gk);
	pem_free(&hc);
	pem_free(&hk);
	return rc;
}
