/*
 * tls.c: TLS on palyra-front's listeners with OpenSSL: the library's
 * start-up (before the sandbox), server contexts built from the PEM the
 * supervisor sends (IPC_TLS_CONFIG), ALPN, and certificate reload.
 *
 * Process: palyra-front. Touches no file: OpenSSL reads its configuration
 * in fe_tls_init(), before sbx_apply(); certificates and keys arrive over
 * the supervisor channel. Keys exist in OpenSSL's structures only; the
 * decoded message is wiped by the caller.
 *
 * The listeners accept nothing until the first IPC_TLS_CONFIG: only then
 * is it known which of them speak TLS, and a TLS listener never serves
 * cleartext. A later IPC_TLS_CONFIG replaces the contexts: connections
 * accepted from then on use the new certificate; open ones keep the old
 * context (each SSL holds a reference to its SSL_CTX).
 */
#include <errno.h>
#include <string.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "front.h"
#include "log.h"

/* ALPN protocol lists in wire format. */
static const unsigned char alpn_h2[] = "\x02h2";
static const unsigned char alpn_http11[] = "\x08http/1.1";

/* TLS 1.2 suites for both listeners (HTTP/2's rules: ECDHE, AEAD only);
 * TLS 1.3 uses OpenSSL's default suites. */
#define FE_TLS12_CIPHERS "ECDHE+AESGCM:ECDHE+CHACHA20"

int
fe_tls_init(void)
{
	SSL_CTX *probe;

	/*
	 * Everything OpenSSL reads from the filesystem (openssl.cnf, the
	 * providers it names) and its first random seed happen here, while
	 * the process can still open files; the probe context makes it load
	 * the algorithms a server context needs.
	 */
	if (OPENSSL_init_ssl(OPENSSL_INIT_LOAD_CONFIG |
				 OPENSSL_INIT_LOAD_SSL_STRINGS |
				 OPENSSL_INIT_LOAD_CRYPTO_STRINGS,
		NULL) != 1)
		return -EIO;
	if ((probe = SSL_CTX_new(TLS_server_method())) == NULL)
		return -EIO;
	SSL_CTX_free(probe);
	ERR_clear_error();
	return 0;
}

/* Logs OpenSSL's error queue after what; empties it. */
static void
log_ssl_error(const char *what)
{
	char buf[256];
	unsigned long e;

	e = ERR_get_error();
	if (e == 0) {
		log_error("tls: %s", what);
		return;
	}
	ERR_error_string_n(e, buf, sizeof(buf));
	log_error("tls: %s: %s", what, buf);
	ERR_clear_error();
}

static int
alpn_select(const unsigned char **out, unsigned char *outlen,
    const unsigned char *in, unsigned int inlen, const unsigned char *want,
    size_t wantlen)
{
	unsigned char *sel = NULL;

	if (SSL_select_next_proto(&sel, outlen, want, (unsigned int)wantlen, in,
		inlen) != OPENSSL_NPN_NEGOTIATED)
		return -1;
	*out = sel;
	return 0;
}

/* gRPC: h2 or nothing (a client without h2 is refused in the handshake;
 * one that offers no ALPN at all is refused by h2.c once connected). */
static int
alpn_grpc_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
    const unsigned char *in, unsigned int inlen, void *arg)
{
	if (alpn_select(out, outlen, in, inlen, alpn_h2, sizeof(alpn_h2) - 1) <
	    0)
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	return SSL_TLSEXT_ERR_OK;
}

/* HTTPS: http/1.1 when offered; otherwise no ALPN (HTTP/1.x implied). */
static int
alpn_http_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
    const unsigned char *in, unsigned int inlen, void *arg)
{
	if (alpn_select(out, outlen, in, inlen, alpn_http11,
		sizeof(alpn_http11) - 1) < 0)
		return SSL_TLSEXT_ERR_NOACK;
	return SSL_TLSEXT_ERR_OK;
}

/* Keys are never encrypted here: no prompt, ever. */
static int
no_passphrase_cb(char *buf, int size, int rwflag, void *u)
{
	return -1;
}

/*
 * A server context from PEM: the certificate, any chain certificates
 * after it, and the private key matching it. Returns NULL (logged) when
 * any of it does not load.
 */
static SSL_CTX *
context_new(const char *name, const ProtobufCBinaryData *cert,
    const ProtobufCBinaryData *key, int grpc)
{
	SSL_CTX *c;
	BIO *bio = NULL;
	X509 *x = NULL;
	EVP_PKEY *pkey = NULL;

	if (cert->len == 0 || key->len == 0 || cert->len > TLS_PEM_MAX ||
	    key->len > TLS_PEM_MAX) {
		log_error(
		    "tls: %s: certificate or key missing or too large", name);
		return NULL;
	}
	if ((c = SSL_CTX_new(TLS_server_method())) == NULL) {
		log_ssl_error("SSL_CTX_new");
		return NULL;
	}
	if (SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_cipher_list(c, FE_TLS12_CIPHERS) != 1) {
		log_ssl_error("protocol settings");
		goto fail;
	}
	SSL_CTX_set_options(c, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
				   SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_alpn_select_cb(c, grpc ? alpn_grpc_cb : alpn_http_cb, NULL);

	bio = BIO_new_mem_buf(cert->data, (int)cert->len);
	if (bio == NULL ||
	    (x = PEM_read_bio_X509(bio, NULL, no_passphrase_cb, NULL)) ==
		NULL ||
	    SSL_CTX_use_certificate(c, x) != 1) {
		log_ssl_error("the certificate does not load");
		goto fail;
	}
	X509_free(x);
	/* The rest of the file: the chain, handed to the context. */
	while ((x = PEM_read_bio_X509(bio, NULL, no_passphrase_cb, NULL)) !=
	       NULL) {
		if (SSL_CTX_add0_chain_cert(c, x) != 1) {
			X509_free(x);
			log_ssl_error("a chain certificate does not load");
			goto fail;
		}
	}
	ERR_clear_error(); /* the end of the file */
	BIO_free(bio);

	bio = BIO_new_mem_buf(key->data, (int)key->len);
	if (bio == NULL ||
	    (pkey = PEM_read_bio_PrivateKey(
		 bio, NULL, no_passphrase_cb, NULL)) == NULL ||
	    SSL_CTX_use_PrivateKey(c, pkey) != 1) {
		log_ssl_error("the private key does not load");
		goto fail;
	}
	EVP_PKEY_free(pkey);
	pkey = NULL;
	BIO_free(bio);
	bio = NULL;
	if (SSL_CTX_check_private_key(c) != 1) {
		log_ssl_error("the key does not match the certificate");
		goto fail;
	}
	return c;
fail:
	log_error("tls: %s listener: certificate or key rejected", name);
	EVP_PKEY_free(pkey);
	BIO_free(bio);
	SSL_CTX_free(c);
	return NULL;
}

static void
listeners_enable(struct fe_ctx *ctx)
{
	if (ctx->draining || ctx->stopping)
		return;
	if (ctx->grpc_listener != NULL)
		(void)evconnlistener_enable(ctx->grpc_listener);
	if (ctx->http_socket != NULL)
		(void)evconnlistener_enable(
		    evhttp_bound_socket_get_listener(ctx->http_socket));
}

int
fe_tls_config(struct fe_ctx *ctx, const Palyra__Ipc__TlsConfig *tc)
{
	SSL_CTX *grpc = NULL, *http = NULL;

	if (ctx->tls_configured &&
	    ((tc->grpc_tls != 0) != ctx->grpc_is_tls ||
		(tc->http_tls != 0) != ctx->http_is_tls)) {
		/* The supervisor keeps tls on/off fixed until a restart. */
		log_error("tls: a listener's tls setting cannot change while "
			  "running; keeping the running certificates");
		return 0;
	}
	if (tc->grpc_tls && (grpc = context_new("gRPC", &tc->grpc_cert,
				 &tc->grpc_key, 1)) == NULL)
		goto fail;
	if (tc->http_tls && (http = context_new("HTTP", &tc->http_cert,
				 &tc->http_key, 0)) == NULL)
		goto fail;
	SSL_CTX_free(ctx->grpc_tls);
	SSL_CTX_free(ctx->http_tls);
	ctx->grpc_tls = grpc;
	ctx->http_tls = http;
	if (ctx->tls_configured) {
		if (grpc != NULL || http != NULL)
			log_info("tls: certificates reloaded");
		return 0;
	}
	ctx->grpc_is_tls = tc->grpc_tls != 0;
	ctx->http_is_tls = tc->http_tls != 0;
	ctx->tls_configured = 1;
	log_debug("tls: gRPC %s, HTTP %s", grpc != NULL ? "tls" : "cleartext",
	    http != NULL ? "tls" : "cleartext");
	listeners_enable(ctx);
	return 0;
fail:
	SSL_CTX_free(grpc);
	SSL_CTX_free(http);
	/* At start the listeners stay shut; on reload the old ones serve. */
	if (!ctx->tls_configured)
		return -EINVAL;
	log_error("tls: reload failed; keeping the running certificates");
	return 0;
}

struct bufferevent *
fe_tls_bufferevent(struct fe_ctx *ctx, struct ssl_ctx_st *tls, int fd)
{
	struct bufferevent *bev;
	SSL *ssl;

	if ((ssl = SSL_new(tls)) == NULL) {
		ERR_clear_error();
		return NULL;
	}
	bev = bufferevent_openssl_socket_new(ctx->base, fd, ssl,
	    BUFFEREVENT_SSL_ACCEPTING,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (bev == NULL) {
		SSL_free(ssl);
		return NULL;
	}
	/* A client closing without close_notify is an ordinary EOF. */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

int
fe_tls_alpn_is_h2(struct bufferevent *bev)
{
	const unsigned char *proto = NULL;
	unsigned int len = 0;
	SSL *ssl = bufferevent_openssl_get_ssl(bev);

	if (ssl == NULL)
		return 0;
	SSL_get0_alpn_selected(ssl, &proto, &len);
	return len == 2 && memcmp(proto, "h2", 2) == 0;
}

void
fe_tls_free(struct fe_ctx *ctx)
{
	SSL_CTX_free(ctx->grpc_tls);
	SSL_CTX_free(ctx->http_tls);
	ctx->grpc_tls = ctx->http_tls = NULL;
}
