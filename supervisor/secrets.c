/*
 * secrets.c: the secret values journald redacts from events (DESIGN
 * section 8, redaction by value). Runs in palyrad, as root before any
 * child is sandboxed and at every reload; touches the files and
 * environment variables that providers' `api-key file:PATH` and
 * `api-key env:NAME` name, and the host vault's secrets that
 * `api-key vault:host/NAME` names (vault_admin.c).
 *
 * Each credential is resolved here, sent to journald in one
 * IPC_JOURNAL_SECRETS and wiped at once (sodium_memzero): the supervisor
 * keeps no copy, and no value is ever logged, only the provider's name.
 * A tenant's `vault:NAME` values are not known here: the tenant's worker
 * decrypts them and feeds its own redaction (worker/vault.c).
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "ipc.h"
#include "ipc.pb-c.h"
#include "log.h"
#include "sup.h"
#include "vault.h"

/*
 * Reads a provider's credential into buf (JNL_SECRET_MAX_LEN + 1 bytes),
 * trailing newline stripped. Returns its length, 0 for none (a tenant's
 * vault:NAME, an unset variable), or -errno.
 */
static ssize_t
secret_resolve(const char *state_dir, const struct cfg_provider *p,
    uint8_t *buf, size_t size)
{
	const char *v;
	struct stat st;
	ssize_t n;
	size_t len = 0;
	int fd;

	if (strncmp(p->api_key, "env:", 4) == 0) {
		if ((v = getenv(p->api_key + 4)) == NULL)
			return 0;
		len = strlen(v);
		if (len >= size)
			return -E2BIG;
		memcpy(buf, v, len);
	} else if (strncmp(p->api_key, "file:", 5) == 0) {
		if ((fd = open(p->api_key + 5,
		    O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1)
			return -errno;
		/* A credential others may read is already leaked: refuse it
		 * rather than spread it further. */
		if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
		    (st.st_mode & (S_IRWXG | S_IRWXO)) != 0 ||
		    (st.st_uid != 0 && st.st_uid != geteuid())) {
			log_warn("provider %s: credential file %s must be a "
			    "regular file of root or palyrad with mode 0600 "
			    "or stricter; not used", p->name,
			    p->api_key + 5);
			close(fd);
			return -EPERM;
		}
		while (
		    len < size && (n = read(fd, buf + len, size - len)) != 0) {
			if (n < 0) {
				if (errno == EINTR)
					continue;
				n = -errno;
				close(fd);
				sodium_memzero(buf, size);
				return n;
			}
			len += (size_t)n;
		}
		close(fd);
		if (len >= size) {
			sodium_memzero(buf, size);
			return -E2BIG;
		}
	} else if (strncmp(p->api_key, "vault:host/", 11) == 0) {
		n = sup_vault_host_secret(state_dir, p->api_key + 11, buf,
		    size);
		if (n < 0)
			return n;
		len = (size_t)n;
		if (len >= size) {
			sodium_memzero(buf, size);
			return -E2BIG;
		}
	} else
		return 0;
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	return (ssize_t)len;
}

ssize_t
sup_provider_secret(const struct sup_ctx *ctx, const struct cfg_provider *p,
    uint8_t *buf, size_t size)
{
	if (p->api_key == NULL)
		return 0;
	return secret_resolve(ctx->cfg->state_dir, p, buf, size);
}

void
sup_journal_secrets_send(struct sup_ctx *ctx, struct sup_child *c)
{
	Palyra__Ipc__JournalSecrets msg = PALYRA__IPC__JOURNAL_SECRETS__INIT;
	ProtobufCBinaryData *values;
	size_t i, n = 0, np = ctx->cfg->nproviders;
	ssize_t len;
	int rc;

	if (c->chan == NULL)
		return;
	if ((values = calloc(np + 1, sizeof(*values))) == NULL)
		fatal("calloc");
	for (i = 0; i < np; i++) {
		const struct cfg_provider *p = &ctx->cfg->providers[i];

		if (p->api_key == NULL)
			continue;
		if ((values[n].data = malloc(JNL_SECRET_MAX_LEN + 1)) == NULL)
			fatal("malloc");
		len = secret_resolve(ctx->cfg->state_dir, p, values[n].data,
		    JNL_SECRET_MAX_LEN + 1);
		if (len == -ENOENT &&
		    strncmp(p->api_key, "vault:host/", 11) == 0)
			log_warn("provider %s: host vault secret %s is not "
			    "set", p->name, p->api_key + 11);
		else if (len < 0)
			log_warn("provider %s: cannot read its api-key for "
				 "redaction: %s",
			    p->name, strerror((int)-len));
		else if (len > 0 && len < JNL_SECRET_MIN_LEN)
			log_warn("provider %s: api-key shorter than %d bytes "
				 "is not redacted",
			    p->name, JNL_SECRET_MIN_LEN);
		if (len < JNL_SECRET_MIN_LEN) {
			sodium_memzero(values[n].data, JNL_SECRET_MAX_LEN + 1);
			free(values[n].data);
			values[n].data = NULL;
			continue;
		}
		values[n].len = (size_t)len;
		n++;
	}
	msg.n_values = n;
	msg.values = values;
	if ((rc = ipc_chan_send(
		 c->chan, IPC_JOURNAL_SECRETS, 0, &msg.base, NULL, 0)) < 0)
		log_warn("%s: cannot send the secret values: %s", c->label,
		    strerror(-rc));
	else
		log_info(
		    "%s: %zu secret value(s) sent for redaction", c->label, n);
	for (i = 0; i < n; i++) {
		sodium_memzero(values[i].data, JNL_SECRET_MAX_LEN + 1);
		free(values[i].data);
	}
	free(values);
}
