/*
 * ipc.c: the codec and channels of palyrad's internal messages.
 * Runs in every process. Touches only the descriptors it is given.
 *
 * Every byte read from a peer is checked here before anything is allocated
 * for it: datagram bounds, the declared length against what arrived, the
 * type, the flags and the descriptor count. Receivers then see only typed,
 * decoded messages of the kinds they allowed from that peer.
 */
#include <sys/socket.h>
#include <sys/uio.h>

#include <errno.h>
#include <poll.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ipc.h"
#include "log.h"
#include "ipc.pb-c.h"

struct ipc_kind {
	const char			*name;
	const ProtobufCMessageDescriptor *desc;
	int				 nfds;
};

static const struct ipc_kind ipc_kinds[IPC_TYPE_MAX] = {
	[IPC_ATTACH_PEER] = { "ATTACH_PEER",
	    &palyra__ipc__attach_peer__descriptor, 1 },
	[IPC_TENANT_LIST] = { "TENANT_LIST",
	    &palyra__ipc__tenant_list__descriptor, 0 },
	[IPC_FRONT_KEYS] = { "FRONT_KEYS",
	    &palyra__ipc__front_keys__descriptor, 0 },
	[IPC_READY] = { "READY", &palyra__ipc__ready__descriptor, 0 },
	[IPC_TOKEN_STORE] = { "TOKEN_STORE",
	    &palyra__ipc__token_store__descriptor, 0 },
	[IPC_TOKEN_STORED] = { "TOKEN_STORED",
	    &palyra__ipc__token_stored__descriptor, 0 },
	[IPC_TOKEN_LOOKUP] = { "TOKEN_LOOKUP",
	    &palyra__ipc__token_lookup__descriptor, 0 },
	[IPC_TOKEN_INFO] = { "TOKEN_INFO",
	    &palyra__ipc__token_info__descriptor, 0 },
	[IPC_RUN_START] = { "RUN_START",
	    &palyra__ipc__run_start_request__descriptor, 0 },
	[IPC_RUN_CANCEL] = { "RUN_CANCEL",
	    &palyra__ipc__run_cancel_request__descriptor, 0 },
	[IPC_RUN_EVENT] = { "RUN_EVENT",
	    &palyra__ipc__run_event_msg__descriptor, 0 },
	[IPC_RUN_ERROR] = { "RUN_ERROR",
	    &palyra__ipc__run_error_msg__descriptor, 0 },
	[IPC_JOURNAL_APPEND] = { "JOURNAL_APPEND",
	    &palyra__ipc__journal_append__descriptor, 0 },
	[IPC_JOURNAL_ACK] = { "JOURNAL_ACK",
	    &palyra__ipc__journal_ack__descriptor, 0 },
	[IPC_WORKER_CONFIG] = { "WORKER_CONFIG",
	    &palyra__ipc__worker_config__descriptor, 0 },
	[IPC_JOURNAL_CONFIG] = { "JOURNAL_CONFIG",
	    &palyra__ipc__journal_config__descriptor, 0 },
	[IPC_RUN_NOTICE] = { "RUN_NOTICE",
	    &palyra__ipc__run_notice__descriptor, 0 },
	[IPC_PROCESS_LIST_REQUEST] = { "PROCESS_LIST_REQUEST",
	    &palyra__ipc__process_list_request__descriptor, 0 },
	[IPC_PROCESS_LIST] = { "PROCESS_LIST",
	    &palyra__ipc__process_list__descriptor, 0 },
	[IPC_WORKER_WANTED] = { "WORKER_WANTED",
	    &palyra__ipc__worker_wanted__descriptor, 0 },
	[IPC_JOURNAL_VERIFY_REQUEST] = { "JOURNAL_VERIFY_REQUEST",
	    &palyra__ipc__journal_verify_request__descriptor, 0 },
	[IPC_JOURNAL_VERIFY_REPORT] = { "JOURNAL_VERIFY_REPORT",
	    &palyra__ipc__journal_verify_report__descriptor, 0 },
	[IPC_JOURNAL_CHECKPOINT_REQUEST] = { "JOURNAL_CHECKPOINT_REQUEST",
	    &palyra__ipc__journal_checkpoint_request__descriptor, 0 },
	[IPC_JOURNAL_CHECKPOINT_REPORT] = { "JOURNAL_CHECKPOINT_REPORT",
	    &palyra__ipc__journal_checkpoint_report__descriptor, 0 },
	[IPC_JOURNAL_PUBKEY_REQUEST] = { "JOURNAL_PUBKEY_REQUEST",
	    &palyra__ipc__journal_pubkey_request__descriptor, 0 },
	[IPC_JOURNAL_PUBKEY] = { "JOURNAL_PUBKEY",
	    &palyra__ipc__journal_pubkey__descriptor, 0 },
	[IPC_JOURNAL_EXPORT_REQUEST] = { "JOURNAL_EXPORT_REQUEST",
	    &palyra__ipc__journal_export_request__descriptor, 0 },
	[IPC_JOURNAL_EXPORT_PAGE] = { "JOURNAL_EXPORT_PAGE",
	    &palyra__ipc__journal_export_page__descriptor, 0 },
	[IPC_JOURNAL_BACKUP_REQUEST] = { "JOURNAL_BACKUP_REQUEST",
	    &palyra__ipc__journal_backup_request__descriptor, 0 },
	[IPC_JOURNAL_BACKUP_RESULT] = { "JOURNAL_BACKUP_RESULT",
	    &palyra__ipc__journal_backup_result__descriptor, 0 },
	[IPC_JOURNAL_SECRETS] = { "JOURNAL_SECRETS",
	    &palyra__ipc__journal_secrets__descriptor, 0 },
	[IPC_JOURNAL_PRUNE_REQUEST] = { "JOURNAL_PRUNE_REQUEST",
	    &palyra__ipc__journal_prune_request__descriptor, 0 },
	[IPC_JOURNAL_PRUNE_RESULT] = { "JOURNAL_PRUNE_RESULT",
	    &palyra__ipc__journal_prune_result__descriptor, 0 },
	[IPC_JOURNAL_RUN_READ] = { "JOURNAL_RUN_READ",
	    &palyra__ipc__journal_run_read_request__descriptor, 0 },
	[IPC_JOURNAL_RUN_PAGE] = { "JOURNAL_RUN_PAGE",
	    &palyra__ipc__journal_run_page__descriptor, 0 },
	[IPC_RUN_ATTACH] = { "RUN_ATTACH",
	    &palyra__ipc__run_attach_request__descriptor, 0 },
	[IPC_RUN_ATTACHED] = { "RUN_ATTACHED",
	    &palyra__ipc__run_attached__descriptor, 0 },
	[IPC_TLS_CONFIG] = { "TLS_CONFIG",
	    &palyra__ipc__tls_config__descriptor, 0 },
	[IPC_TOKEN_LIST_REQUEST] = { "TOKEN_LIST_REQUEST",
	    &palyra__ipc__token_list_request__descriptor, 0 },
	[IPC_TOKEN_LIST] = { "TOKEN_LIST",
	    &palyra__ipc__token_list__descriptor, 0 },
	[IPC_TOKEN_REVOKE] = { "TOKEN_REVOKE",
	    &palyra__ipc__token_revoke__descriptor, 0 },
	[IPC_TOKEN_REVOKED] = { "TOKEN_REVOKED",
	    &palyra__ipc__token_revoked__descriptor, 0 },
	[IPC_JOURNAL_LIST_REQUEST] = { "JOURNAL_LIST_REQUEST",
	    &palyra__ipc__journal_list_request__descriptor, 0 },
	[IPC_JOURNAL_LIST_PAGE] = { "JOURNAL_LIST_PAGE",
	    &palyra__ipc__journal_list_page__descriptor, 0 },
	[IPC_RUN_ABORT] = { "RUN_ABORT",
	    &palyra__ipc__run_abort_request__descriptor, 0 },
	[IPC_RUN_ABORTED] = { "RUN_ABORTED",
	    &palyra__ipc__run_aborted__descriptor, 0 },
	[IPC_JOURNAL_SESSION_REQUEST] = { "JOURNAL_SESSION_REQUEST",
	    &palyra__ipc__journal_session_request__descriptor, 0 },
	[IPC_JOURNAL_SESSION_REPLY] = { "JOURNAL_SESSION_REPLY",
	    &palyra__ipc__journal_session_reply__descriptor, 0 },
	[IPC_RUN_NOTE] = { "RUN_NOTE",
	    &palyra__ipc__run_note_request__descriptor, 0 },
	[IPC_RUN_NOTED] = { "RUN_NOTED",
	    &palyra__ipc__run_noted__descriptor, 0 },
	[IPC_TENANT_AGENTS] = { "TENANT_AGENTS",
	    &palyra__ipc__tenant_agents__descriptor, 0 },
	[IPC_JOURNAL_AGENT_REQUEST] = { "JOURNAL_AGENT_REQUEST",
	    &palyra__ipc__journal_agent_request__descriptor, 0 },
	[IPC_JOURNAL_AGENT_REPLY] = { "JOURNAL_AGENT_REPLY",
	    &palyra__ipc__journal_agent_reply__descriptor, 0 },
	[IPC_TENANT_ADMIN] = { "TENANT_ADMIN",
	    &palyra__ipc__tenant_admin_request__descriptor, 0 },
	[IPC_TENANT_ADMIN_REPLY] = { "TENANT_ADMIN_REPLY",
	    &palyra__ipc__tenant_admin_reply__descriptor, 0 },
	[IPC_RUN_FLOW] = { "RUN_FLOW",
	    &palyra__ipc__run_flow__descriptor, 0 },
	[IPC_RUN_PREPARE] = { "RUN_PREPARE",
	    &palyra__ipc__run_prepare__descriptor, 0 },
	[IPC_RUN_PREPARED] = { "RUN_PREPARED",
	    &palyra__ipc__run_prepared__descriptor, 0 },
	[IPC_RUN_INPUT] = { "RUN_INPUT",
	    &palyra__ipc__run_input__descriptor, 0 },
	[IPC_JOURNAL_STATS_REQUEST] = { "JOURNAL_STATS_REQUEST",
	    &palyra__ipc__journal_stats_request__descriptor, 0 },
	[IPC_JOURNAL_STATS] = { "JOURNAL_STATS",
	    &palyra__ipc__journal_stats__descriptor, 0 },
	[IPC_APPROVAL_CREATE] = { "APPROVAL_CREATE",
	    &palyra__ipc__approval_create__descriptor, 0 },
	[IPC_APPROVAL_CREATED] = { "APPROVAL_CREATED",
	    &palyra__ipc__approval_created__descriptor, 0 },
	[IPC_APPROVAL_DECIDE] = { "APPROVAL_DECIDE",
	    &palyra__ipc__approval_decide__descriptor, 0 },
	[IPC_APPROVAL_DECISION] = { "APPROVAL_DECISION",
	    &palyra__ipc__approval_decision_msg__descriptor, 0 },
	[IPC_SERVICE_CALL] = { "SERVICE_CALL",
	    &palyra__ipc__service_call__descriptor, 0 },
	[IPC_SERVICE_REPLY] = { "SERVICE_REPLY",
	    &palyra__ipc__service_reply__descriptor, 0 },
	[IPC_RUN_DECISION] = { "RUN_DECISION",
	    &palyra__ipc__run_decision__descriptor, 0 },
	[IPC_RUN_TOOL_RESULT] = { "RUN_TOOL_RESULT",
	    &palyra__ipc__run_tool_result__descriptor, 0 },
	[IPC_BUDGET_RESERVE] = { "BUDGET_RESERVE",
	    &palyra__ipc__budget_reserve__descriptor, 0 },
	[IPC_BUDGET_RESERVED] = { "BUDGET_RESERVED",
	    &palyra__ipc__budget_reserved__descriptor, 0 },
	[IPC_BUDGET_SETTLE] = { "BUDGET_SETTLE",
	    &palyra__ipc__budget_settle__descriptor, 0 },
	[IPC_RUN_RECOVER] = { "RUN_RECOVER",
	    &palyra__ipc__run_recover__descriptor, 0 },
	[IPC_RUN_RECOVERED] = { "RUN_RECOVERED",
	    &palyra__ipc__run_recovered__descriptor, 0 },
	[IPC_MEMORY_STORE] = { "MEMORY_STORE",
	    &palyra__ipc__memory_store__descriptor, 0 },
	[IPC_MEMORY_STORED] = { "MEMORY_STORED",
	    &palyra__ipc__memory_stored__descriptor, 0 },
	[IPC_MEMORY_QUERY] = { "MEMORY_QUERY",
	    &palyra__ipc__memory_query__descriptor, 0 },
	[IPC_MEMORY_HITS] = { "MEMORY_HITS",
	    &palyra__ipc__memory_hits__descriptor, 0 },
	[IPC_VAULT_STORE] = { "VAULT_STORE",
	    &palyra__ipc__vault_store__descriptor, 0 },
	[IPC_VAULT_STORED] = { "VAULT_STORED",
	    &palyra__ipc__vault_stored__descriptor, 0 },
	[IPC_VAULT_FETCH] = { "VAULT_FETCH",
	    &palyra__ipc__vault_fetch__descriptor, 0 },
	[IPC_VAULT_ITEMS] = { "VAULT_ITEMS",
	    &palyra__ipc__vault_items__descriptor, 0 },
	[IPC_VAULT_CHANGED] = { "VAULT_CHANGED",
	    &palyra__ipc__vault_changed__descriptor, 0 },
	[IPC_VAULT_ADMIN] = { "VAULT_ADMIN",
	    &palyra__ipc__vault_admin__descriptor, 0 },
	[IPC_VAULT_ADMIN_REPLY] = { "VAULT_ADMIN_REPLY",
	    &palyra__ipc__vault_admin_reply__descriptor, 0 },
	[IPC_CRON_FIRE] = { "CRON_FIRE",
	    &palyra__ipc__cron_fire_request__descriptor, 0 },
	[IPC_CRON_FIRED] = { "CRON_FIRED",
	    &palyra__ipc__cron_fired__descriptor, 0 },
};

_Static_assert(IPC_TYPE_MAX <= IPC_TYPESET_BITS,
    "IPC types no longer fit an ipc_typeset");

const char *
ipc_type_name(uint32_t type)
{
	if (type >= IPC_TYPE_MAX || ipc_kinds[type].name == NULL)
		return "UNKNOWN";
	return ipc_kinds[type].name;
}

static const struct ipc_kind *
ipc_kind(uint32_t type)
{
	if (type >= IPC_TYPE_MAX || ipc_kinds[type].desc == NULL)
		return NULL;
	return &ipc_kinds[type];
}

/*
 * Whether m, or a message inside it, holds an unknown field numbered 0.
 * protobuf-c decodes field number 0 written as a multi-byte tag (0x82
 * 0x00) into an unknown field, but packs it back as the one-byte tag 0x02,
 * which its own decoder refuses. A client's message carried inside ours
 * (the RunStart of IPC_RUN_START) would so make the receiver drop the
 * whole channel as malformed; found by tests/fuzz/fuzz_ipc.c.
 */
static int
holds_field_zero(const ProtobufCMessage *m, int depth)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	const ProtobufCFieldDescriptor *f;
	const ProtobufCMessage *const *v;
	const char *base = (const char *)m;
	size_t i, j, n;

	/* Deeper than any message of ours: refused rather than walked. */
	if (depth > 32)
		return 1;
	for (i = 0; i < m->n_unknown_fields; i++)
		if (m->unknown_fields[i].tag == 0)
			return 1;
	for (i = 0; i < d->n_fields; i++) {
		f = &d->fields[i];
		if (f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			memcpy(&n, base + f->quantifier_offset, sizeof(n));
			memcpy(&v, base + f->offset, sizeof(v));
		} else {
			if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
			    *(const uint32_t *)(const void *)(base +
			    f->quantifier_offset) != f->id)
				continue;
			n = 1;
			v = (const ProtobufCMessage *const *)(const void *)
			    (base + f->offset);
		}
		for (j = 0; j < n; j++)
			if (v[j] != NULL && holds_field_zero(v[j], depth + 1))
				return 1;
	}
	return 0;
}

ssize_t
ipc_encode(uint8_t *buf, size_t size, enum ipc_type type,
    uint32_t request_id, const ProtobufCMessage *msg)
{
	const struct ipc_kind *k = ipc_kind(type);
	struct ipc_header h;
	size_t len;

	if (k == NULL || msg == NULL || msg->descriptor != k->desc ||
	    holds_field_zero(msg, 0))
		return -EINVAL;
	len = protobuf_c_message_get_packed_size(msg);
	if (len > IPC_MAX_PAYLOAD || size < IPC_HEADER_LEN ||
	    len > size - IPC_HEADER_LEN)
		return -EMSGSIZE;
	h.type = type;
	h.flags = 0;
	h.request_id = request_id;
	h.length = (uint32_t)len;
	memcpy(buf, &h, sizeof(h));
	if (protobuf_c_message_pack(msg, buf + IPC_HEADER_LEN) != len)
		return -EINVAL;
	return (ssize_t)(IPC_HEADER_LEN + len);
}

int
ipc_decode(const uint8_t *buf, size_t len, int nfds, struct ipc_msg *out)
{
	const struct ipc_kind *k;
	struct ipc_header h;
	int i;

	memset(out, 0, sizeof(*out));
	for (i = 0; i < IPC_MAX_FDS; i++)
		out->fds[i] = -1;
	if (buf == NULL || len < IPC_HEADER_LEN)
		return -EBADMSG;
	memcpy(&h, buf, sizeof(h));
	if (h.length > IPC_MAX_PAYLOAD)
		return -EMSGSIZE;
	/* Declared and received lengths must agree: nothing missing, nothing
	 * trailing. */
	if (h.length != len - IPC_HEADER_LEN)
		return -EBADMSG;
	if ((k = ipc_kind(h.type)) == NULL || h.flags != 0)
		return -EPROTO;
	if (nfds != k->nfds)
		return -EPROTO;
	out->msg = protobuf_c_message_unpack(k->desc, NULL, h.length,
	    buf + IPC_HEADER_LEN);
	if (out->msg == NULL)
		return -EBADMSG;
	out->hdr = h;
	return 0;
}

void
ipc_msg_clear(struct ipc_msg *m)
{
	int i;

	if (m->msg != NULL)
		protobuf_c_message_free_unpacked(m->msg, NULL);
	m->msg = NULL;
	for (i = 0; i < m->nfds && i < IPC_MAX_FDS; i++)
		if (m->fds[i] >= 0) {
			close(m->fds[i]);
			m->fds[i] = -1;
		}
	m->nfds = 0;
}

int
ipc_sendmsg(int fd, const uint8_t *buf, size_t len, const int *fds, int nfds)
{
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int) * IPC_MAX_FDS)];
	} cmsgbuf;
	struct iovec iov = { .iov_base = (void *)(uintptr_t)buf,
	    .iov_len = len };
	struct msghdr mh;
	struct cmsghdr *cm;
	ssize_t n;

	if (nfds < 0 || nfds > IPC_MAX_FDS)
		return -EINVAL;
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	if (nfds > 0) {
		memset(&cmsgbuf, 0, sizeof(cmsgbuf));
		mh.msg_control = cmsgbuf.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
	}
	do
		n = sendmsg(fd, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	if ((size_t)n != len)
		return -EMSGSIZE;
	return 0;
}

/*
 * On SOCK_SEQPACKET an empty datagram and the peer's close both read as 0
 * bytes; only a peer that hung up is EOF. Every datagram of ours carries at
 * least a header, so an empty one is malformed.
 */
static int
ipc_peer_gone(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN | POLLRDHUP };

	return poll(&p, 1, 0) == 1 &&
	    (p.revents & (POLLHUP | POLLRDHUP | POLLERR)) != 0;
}

ssize_t
ipc_recvmsg(int fd, uint8_t *buf, size_t size, int *fds, int *nfds)
{
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int) * (IPC_MAX_FDS + 1))];
	} cmsgbuf;
	struct iovec iov = { .iov_base = buf, .iov_len = size };
	struct msghdr mh;
	struct cmsghdr *cm;
	ssize_t n;
	size_t i, count;
	int got[IPC_MAX_FDS + 1], ngot = 0, empty = 0;

	*nfds = 0;
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cmsgbuf.buf;
	mh.msg_controllen = sizeof(cmsgbuf.buf);
	do
		n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	if (n == 0 && !ipc_peer_gone(fd))
		empty = 1;
	for (cm = CMSG_FIRSTHDR(&mh); cm != NULL; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET ||
		    cm->cmsg_type != SCM_RIGHTS)
			continue;
		count = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < count; i++) {
			int d;

			memcpy(&d, CMSG_DATA(cm) + i * sizeof(int), sizeof(d));
			if (ngot < IPC_MAX_FDS + 1)
				got[ngot++] = d;
			else
				close(d);
		}
	}
	if ((mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0 ||
	    ngot > IPC_MAX_FDS) {
		for (i = 0; i < (size_t)ngot; i++)
			close(got[i]);
		return -EMSGSIZE;
	}
	if (empty) {
		for (i = 0; i < (size_t)ngot; i++)
			close(got[i]);
		return -EBADMSG;
	}
	memcpy(fds, got, sizeof(int) * ngot);
	*nfds = ngot;
	return n;
}

int
ipc_socketpair(int sv[2])
{
	int size = 1024 * 1024, i;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0, sv) == -1)
		return -errno;
	/*
	 * A larger send buffer lets more datagrams wait for the peer, which
	 * makes journald's group commits larger. Best effort: without
	 * privilege the kernel caps SO_SNDBUF at wmem_max, which still carries
	 * an IPC_DATAGRAM_MAX datagram.
	 */
	for (i = 0; i < 2; i++)
		if (setsockopt(sv[i], SOL_SOCKET, SO_SNDBUFFORCE, &size,
		    sizeof(size)) == -1)
			(void)setsockopt(sv[i], SOL_SOCKET, SO_SNDBUF, &size,
			    sizeof(size));
	return 0;
}

/* Blocking helpers wait for a full queue or an empty socket politely. */
static void
ipc_pause_briefly(void)
{
	struct timespec ts = { 0, 1000000 };

	nanosleep(&ts, NULL);
}

int
ipc_send_blocking(int fd, enum ipc_type type, uint32_t request_id,
    const ProtobufCMessage *msg, const int *fds, int nfds)
{
	uint8_t *buf;
	ssize_t len;
	int rc;

	if ((buf = malloc(IPC_DATAGRAM_MAX)) == NULL)
		return -ENOMEM;
	len = ipc_encode(buf, IPC_DATAGRAM_MAX, type, request_id, msg);
	if (len < 0) {
		free(buf);
		return (int)len;
	}
	for (;;) {
		rc = ipc_sendmsg(fd, buf, (size_t)len, fds, nfds);
		if (rc != -EAGAIN)
			break;
		ipc_pause_briefly();
	}
	free(buf);
	return rc;
}

int
ipc_recv_blocking(int fd, struct ipc_msg *out)
{
	uint8_t *buf;
	ssize_t n;
	int fds[IPC_MAX_FDS], nfds, rc, i;

	if ((buf = malloc(IPC_DATAGRAM_MAX)) == NULL)
		return -ENOMEM;
	for (;;) {
		n = ipc_recvmsg(fd, buf, IPC_DATAGRAM_MAX, fds, &nfds);
		if (n != -EAGAIN)
			break;
		ipc_pause_briefly();
	}
	if (n <= 0) {
		free(buf);
		return n == 0 ? -EPIPE : (int)n;
	}
	rc = ipc_decode(buf, (size_t)n, nfds, out);
	free(buf);
	if (rc < 0) {
		for (i = 0; i < nfds; i++)
			close(fds[i]);
		return rc;
	}
	for (i = 0; i < nfds; i++)
		out->fds[i] = fds[i];
	out->nfds = nfds;
	return 0;
}
