/*
 * ipc.h: typed messages between palyrad's processes (DESIGN section 3).
 *
 * Every message is one SOCK_SEQPACKET datagram: a fixed ipc_header in host
 * byte order followed by exactly header.length bytes of a protobuf-c message
 * from proto/ipc.proto, chosen by header.type, with 0 to IPC_MAX_FDS
 * descriptors passed by SCM_RIGHTS. The codec checks every bound before it
 * allocates: datagram size, declared length against received length (no
 * trailing bytes), known type, payload limit, descriptor count for the type.
 *
 * The channel layer drives a descriptor from a libevent loop with a bounded
 * outbound queue (back-pressure, never unbounded buffering) and rejects any
 * type the receiver did not allow from that peer.
 */
#ifndef PALYRA_IPC_H
#define PALYRA_IPC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <protobuf-c/protobuf-c.h>

#include "limits.h"

enum ipc_type {
	IPC_NONE = 0,
	IPC_ATTACH_PEER,	/* Palyra__Ipc__AttachPeer + 1 fd */
	IPC_TENANT_LIST,	/* Palyra__Ipc__TenantList */
	IPC_FRONT_KEYS,		/* Palyra__Ipc__FrontKeys */
	IPC_READY,		/* Palyra__Ipc__Ready */
	IPC_TOKEN_STORE,	/* Palyra__Ipc__TokenStore */
	IPC_TOKEN_STORED,	/* Palyra__Ipc__TokenStored */
	IPC_TOKEN_LOOKUP,	/* Palyra__Ipc__TokenLookup */
	IPC_TOKEN_INFO,		/* Palyra__Ipc__TokenInfo */
	IPC_RUN_START,		/* Palyra__Ipc__RunStartRequest */
	IPC_RUN_CANCEL,		/* Palyra__Ipc__RunCancelRequest */
	IPC_RUN_EVENT,		/* Palyra__Ipc__RunEventMsg */
	IPC_RUN_ERROR,		/* Palyra__Ipc__RunErrorMsg */
	IPC_JOURNAL_APPEND,	/* Palyra__Ipc__JournalAppend */
	IPC_JOURNAL_ACK,	/* Palyra__Ipc__JournalAck */
	IPC_WORKER_CONFIG,	/* Palyra__Ipc__WorkerConfig */
	IPC_JOURNAL_CONFIG,	/* Palyra__Ipc__JournalConfig */
	IPC_RUN_NOTICE,		/* Palyra__Ipc__RunNotice */
	IPC_PROCESS_LIST_REQUEST, /* Palyra__Ipc__ProcessListRequest */
	IPC_PROCESS_LIST,	/* Palyra__Ipc__ProcessList */
	IPC_WORKER_WANTED,	/* Palyra__Ipc__WorkerWanted */
	IPC_JOURNAL_VERIFY_REQUEST, /* Palyra__Ipc__JournalVerifyRequest */
	IPC_JOURNAL_VERIFY_REPORT, /* Palyra__Ipc__JournalVerifyReport */
	IPC_JOURNAL_CHECKPOINT_REQUEST, /* Palyra__Ipc__JournalCheckpointRequest */
	IPC_JOURNAL_CHECKPOINT_REPORT, /* Palyra__Ipc__JournalCheckpointReport */
	IPC_JOURNAL_PUBKEY_REQUEST, /* Palyra__Ipc__JournalPubkeyRequest */
	IPC_JOURNAL_PUBKEY,	/* Palyra__Ipc__JournalPubkey */
	IPC_JOURNAL_EXPORT_REQUEST, /* Palyra__Ipc__JournalExportRequest */
	IPC_JOURNAL_EXPORT_PAGE, /* Palyra__Ipc__JournalExportPage */
	IPC_JOURNAL_BACKUP_REQUEST, /* Palyra__Ipc__JournalBackupRequest */
	IPC_JOURNAL_BACKUP_RESULT, /* Palyra__Ipc__JournalBackupResult */
	IPC_JOURNAL_SECRETS,	/* Palyra__Ipc__JournalSecrets */
	IPC_JOURNAL_PRUNE_REQUEST, /* Palyra__Ipc__JournalPruneRequest */
	IPC_JOURNAL_PRUNE_RESULT, /* Palyra__Ipc__JournalPruneResult */
	IPC_JOURNAL_RUN_READ,	/* Palyra__Ipc__JournalRunReadRequest */
	IPC_JOURNAL_RUN_PAGE,	/* Palyra__Ipc__JournalRunPage */
	IPC_RUN_ATTACH,		/* Palyra__Ipc__RunAttachRequest */
	IPC_RUN_ATTACHED,	/* Palyra__Ipc__RunAttached */
	IPC_TLS_CONFIG,		/* Palyra__Ipc__TlsConfig */
	IPC_TOKEN_LIST_REQUEST,	/* Palyra__Ipc__TokenListRequest */
	IPC_TOKEN_LIST,		/* Palyra__Ipc__TokenList */
	IPC_TOKEN_REVOKE,	/* Palyra__Ipc__TokenRevoke */
	IPC_TOKEN_REVOKED,	/* Palyra__Ipc__TokenRevoked */
	IPC_JOURNAL_LIST_REQUEST, /* Palyra__Ipc__JournalListRequest */
	IPC_JOURNAL_LIST_PAGE,	/* Palyra__Ipc__JournalListPage */
	IPC_RUN_ABORT,		/* Palyra__Ipc__RunAbortRequest */
	IPC_RUN_ABORTED,	/* Palyra__Ipc__RunAborted */
	IPC_JOURNAL_SESSION_REQUEST, /* Palyra__Ipc__JournalSessionRequest */
	IPC_JOURNAL_SESSION_REPLY, /* Palyra__Ipc__JournalSessionReply */
	IPC_RUN_NOTE,		/* Palyra__Ipc__RunNoteRequest */
	IPC_RUN_NOTED,		/* Palyra__Ipc__RunNoted */
	IPC_TENANT_AGENTS,	/* Palyra__Ipc__TenantAgents */
	IPC_JOURNAL_AGENT_REQUEST, /* Palyra__Ipc__JournalAgentRequest */
	IPC_JOURNAL_AGENT_REPLY, /* Palyra__Ipc__JournalAgentReply */
	IPC_TENANT_ADMIN,	/* Palyra__Ipc__TenantAdminRequest */
	IPC_TENANT_ADMIN_REPLY,	/* Palyra__Ipc__TenantAdminReply */
	IPC_RUN_FLOW,		/* Palyra__Ipc__RunFlow */
	IPC_RUN_PREPARE,	/* Palyra__Ipc__RunPrepare */
	IPC_RUN_PREPARED,	/* Palyra__Ipc__RunPrepared */
	IPC_RUN_INPUT,		/* Palyra__Ipc__RunInput */
	IPC_JOURNAL_STATS_REQUEST, /* Palyra__Ipc__JournalStatsRequest */
	IPC_JOURNAL_STATS,	/* Palyra__Ipc__JournalStats */
	IPC_APPROVAL_CREATE,	/* Palyra__Ipc__ApprovalCreate */
	IPC_APPROVAL_CREATED,	/* Palyra__Ipc__ApprovalCreated */
	IPC_APPROVAL_DECIDE,	/* Palyra__Ipc__ApprovalDecide */
	IPC_APPROVAL_DECISION,	/* Palyra__Ipc__ApprovalDecisionMsg */
	IPC_SERVICE_CALL,	/* Palyra__Ipc__ServiceCall */
	IPC_SERVICE_REPLY,	/* Palyra__Ipc__ServiceReply */
	IPC_RUN_DECISION,	/* Palyra__Ipc__RunDecision */
	IPC_RUN_TOOL_RESULT,	/* Palyra__Ipc__RunToolResult */
	IPC_BUDGET_RESERVE,	/* Palyra__Ipc__BudgetReserve */
	IPC_BUDGET_RESERVED,	/* Palyra__Ipc__BudgetReserved */
	IPC_BUDGET_SETTLE,	/* Palyra__Ipc__BudgetSettle */
	IPC_RUN_RECOVER,	/* Palyra__Ipc__RunRecover */
	IPC_RUN_RECOVERED,	/* Palyra__Ipc__RunRecovered */
	IPC_MEMORY_STORE,	/* Palyra__Ipc__MemoryStore */
	IPC_MEMORY_STORED,	/* Palyra__Ipc__MemoryStored */
	IPC_MEMORY_QUERY,	/* Palyra__Ipc__MemoryQuery */
	IPC_MEMORY_HITS,	/* Palyra__Ipc__MemoryHits */
	IPC_VAULT_STORE,	/* Palyra__Ipc__VaultStore */
	IPC_VAULT_STORED,	/* Palyra__Ipc__VaultStored */
	IPC_VAULT_FETCH,	/* Palyra__Ipc__VaultFetch */
	IPC_VAULT_ITEMS,	/* Palyra__Ipc__VaultItems */
	IPC_VAULT_CHANGED,	/* Palyra__Ipc__VaultChanged */
	IPC_VAULT_ADMIN,	/* Palyra__Ipc__VaultAdmin */
	IPC_VAULT_ADMIN_REPLY,	/* Palyra__Ipc__VaultAdminReply */
	IPC_CRON_FIRE,		/* Palyra__Ipc__CronFireRequest */
	IPC_CRON_FIRED,		/* Palyra__Ipc__CronFired */
	IPC_TYPE_MAX
};

/*
 * A set of IPC types, one bit each: what a receiver accepts from a peer.
 * 128 bits; ipc.c checks at compile time that every type fits.
 */
typedef unsigned __int128 ipc_typeset;
#define IPC_TYPE_BIT(t)	((ipc_typeset)1 << (t))
#define IPC_TYPESET_BITS 128

struct ipc_header {
	uint32_t	type;
	uint32_t	flags;		/* must be 0 */
	uint32_t	request_id;
	uint32_t	length;		/* payload bytes after the header */
};

#define IPC_HEADER_LEN	((size_t)sizeof(struct ipc_header))
#define IPC_DATAGRAM_MAX (IPC_HEADER_LEN + IPC_MAX_PAYLOAD)

/* A decoded message. The receiver owns msg and the descriptors. */
struct ipc_msg {
	struct ipc_header	 hdr;
	ProtobufCMessage	*msg;
	int			 fds[IPC_MAX_FDS];
	int			 nfds;
};

/* Codec: pure functions, no I/O. */

/* Name of a type for logs ("ATTACH_PEER"), or "UNKNOWN". */
const char	*ipc_type_name(uint32_t type);

/*
 * Encodes header and payload into buf. Returns the datagram length, -EINVAL
 * for an unknown type, a message of the wrong kind or one holding an
 * unknown field numbered 0 (a peer's message carried inside ours, which
 * protobuf-c would pack into bytes it cannot decode), -EMSGSIZE when it
 * does not fit IPC_MAX_PAYLOAD or size.
 */
ssize_t	ipc_encode(uint8_t *buf, size_t size, enum ipc_type type,
	    uint32_t request_id, const ProtobufCMessage *msg);

/*
 * Decodes one received datagram that came with nfds descriptors. Returns 0
 * and fills out (out->msg allocated; free with ipc_msg_clear), -EBADMSG for
 * a short, truncated, trailing-bytes or undecodable datagram, -EPROTO for an
 * unknown type, a non-zero flags field or a wrong descriptor count,
 * -EMSGSIZE for a declared length over IPC_MAX_PAYLOAD. The descriptors are
 * not touched; the caller closes them on error.
 */
int	ipc_decode(const uint8_t *buf, size_t len, int nfds,
	    struct ipc_msg *out);

/* Frees out->msg and closes descriptors still held (not set to -1). */
void	ipc_msg_clear(struct ipc_msg *m);

/* Raw datagram I/O on a SOCK_SEQPACKET descriptor. */

/* Sends one datagram with descriptors. Returns 0 or -errno (-EAGAIN). */
int	ipc_sendmsg(int fd, const uint8_t *buf, size_t len, const int *fds,
	    int nfds);
/*
 * Receives one datagram into buf (size >= IPC_DATAGRAM_MAX) and up to
 * IPC_MAX_FDS descriptors (close-on-exec). Returns the length, 0 on EOF,
 * -EAGAIN, -EMSGSIZE if the datagram or its control data was truncated,
 * -EBADMSG for an empty datagram (any descriptors received are closed in
 * both cases), or -errno.
 */
ssize_t	ipc_recvmsg(int fd, uint8_t *buf, size_t size, int *fds, int *nfds);

/* Creates a SOCK_SEQPACKET socketpair, close-on-exec and non-blocking. */
int	ipc_socketpair(int sv[2]);

/* Blocking helpers for tools and tests: encode+send, receive+decode. */
int	ipc_send_blocking(int fd, enum ipc_type type, uint32_t request_id,
	    const ProtobufCMessage *msg, const int *fds, int nfds);
int	ipc_recv_blocking(int fd, struct ipc_msg *out);

/* Channel: a descriptor driven by a libevent loop. */

struct event_base;
struct ipc_chan;

/* Called once per valid, allowed message. The channel clears the message
 * after the callback returns; set m->fds[i] = -1 to keep a descriptor and
 * m->msg = NULL to keep the message. */
typedef void	(*ipc_msg_cb)(struct ipc_chan *, struct ipc_msg *m, void *arg);
/*
 * Called once when the channel dies: error 0 for EOF, -EBADMSG/-EPROTO/
 * -EMSGSIZE for a malformed message, -EPERM for a type not allowed from this
 * peer, -ENOBUFS for a peer that would not drain, or another -errno. The
 * channel is already shut for I/O; the owner must ipc_chan_free() it (not
 * from inside this callback is fine too: the channel stays valid).
 */
typedef void	(*ipc_close_cb)(struct ipc_chan *, int error, void *arg);

/*
 * Takes ownership of fd (made non-blocking). allowed is a mask of
 * IPC_TYPE_BIT()s the receiver accepts from this peer. peer names the peer
 * in logs ("worker[default]").
 */
struct ipc_chan	*ipc_chan_new(struct event_base *base, int fd,
		    const char *peer, ipc_typeset allowed, ipc_msg_cb on_msg,
		    ipc_close_cb on_close, void *arg);
void		 ipc_chan_free(struct ipc_chan *);

/*
 * Queues one message (descriptors are duplicated; the caller keeps its
 * own). Returns 0, -ENOBUFS when the outbound queue is at
 * IPC_QUEUE_HIGH_WATER, -EPIPE on a dead channel, or a codec error.
 */
int		 ipc_chan_send(struct ipc_chan *, enum ipc_type type,
		    uint32_t request_id, const ProtobufCMessage *msg,
		    const int *fds, int nfds);
size_t		 ipc_chan_queued(const struct ipc_chan *);
int		 ipc_chan_dead(const struct ipc_chan *);
const char	*ipc_chan_peer(const struct ipc_chan *);
/* Stop and resume reading (back-pressure towards this peer). */
void		 ipc_chan_pause(struct ipc_chan *);
void		 ipc_chan_resume(struct ipc_chan *);
/* Called whenever the outbound queue becomes empty. */
void		 ipc_chan_set_drain_cb(struct ipc_chan *,
		    void (*cb)(struct ipc_chan *, void *));

#endif
