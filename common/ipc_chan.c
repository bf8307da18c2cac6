/*
 * ipc_chan.c: an IPC descriptor driven by a libevent loop.
 * Runs in every process. Touches only its own descriptor.
 *
 * Reading decodes and checks every datagram (ipc.c) and hands each allowed
 * message to the owner. Writing tries the socket first and queues only what
 * the kernel would not take, up to IPC_QUEUE_HIGH_WATER messages: past that
 * ipc_chan_send() refuses, so a peer that does not read cannot make us grow.
 * The owner may free the channel from inside its own callbacks; the free is
 * then deferred until the callback returns.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "ipc.h"
#include "log.h"

struct ipc_out {
	struct ipc_out	*next;
	size_t		 len;
	int		 fds[IPC_MAX_FDS];
	int		 nfds;
	uint8_t		 data[];
};

struct ipc_chan {
	struct event_base *base;
	int		 fd;
	struct event	*rev;
	struct event	*wev;
	char		 peer[96];
	ipc_typeset	 allowed;
	ipc_msg_cb	 on_msg;
	ipc_close_cb	 on_close;
	void		(*on_drain)(struct ipc_chan *, void *);
	void		*arg;
	struct ipc_out	*head;
	struct ipc_out	*tail;
	size_t		 queued;
	int		 dead;		/* shut: no more I/O */
	int		 pending_error;	/* death to report from the loop */
	int		 paused;
	int		 busy;		/* inside an owner callback */
	int		 free_requested;
	uint8_t		*rbuf;
};

static void	ipc_chan_read_cb(evutil_socket_t, short, void *);
static void	ipc_chan_write_cb(evutil_socket_t, short, void *);

struct ipc_chan *
ipc_chan_new(struct event_base *base, int fd, const char *peer,
    ipc_typeset allowed, ipc_msg_cb on_msg, ipc_close_cb on_close, void *arg)
{
	struct ipc_chan *c;
	int flags;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	if ((c->rbuf = malloc(IPC_DATAGRAM_MAX)) == NULL)
		goto fail;
	flags = fcntl(fd, F_GETFL);
	if (flags == -1 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) == -1)
		goto fail;
	c->base = base;
	c->fd = fd;
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	c->allowed = allowed;
	c->on_msg = on_msg;
	c->on_close = on_close;
	c->arg = arg;
	c->rev = event_new(base, fd, EV_READ | EV_PERSIST, ipc_chan_read_cb, c);
	c->wev = event_new(base, fd, EV_WRITE | EV_PERSIST, ipc_chan_write_cb,
	    c);
	if (c->rev == NULL || c->wev == NULL || event_add(c->rev, NULL) == -1)
		goto fail;
	return c;
fail:
	if (c->rev != NULL)
		event_free(c->rev);
	if (c->wev != NULL)
		event_free(c->wev);
	free(c->rbuf);
	free(c);
	return NULL;
}

/* Some messages carry secrets (FRONT_KEYS, TLS_CONFIG): no datagram
 * outlives its sending in clear. */
static void
ipc_out_wipe(struct ipc_out *o, size_t len)
{
	explicit_bzero(o->data, len);
	free(o);
}

static void
ipc_out_free(struct ipc_out *o)
{
	int i;

	for (i = 0; i < o->nfds; i++)
		close(o->fds[i]);
	ipc_out_wipe(o, o->len);
}

static void
ipc_chan_destroy(struct ipc_chan *c)
{
	struct ipc_out *o;

	while ((o = c->head) != NULL) {
		c->head = o->next;
		ipc_out_free(o);
	}
	event_free(c->rev);
	event_free(c->wev);
	if (c->fd >= 0)
		close(c->fd);
	free(c->rbuf);
	free(c);
}

void
ipc_chan_free(struct ipc_chan *c)
{
	if (c == NULL)
		return;
	if (c->busy) {
		c->free_requested = 1;
		event_del(c->rev);
		event_del(c->wev);
		return;
	}
	ipc_chan_destroy(c);
}

/* Shuts the channel and tells the owner once. Returns 1 if the owner freed
 * the channel meanwhile (the caller must not touch it). */
static int
ipc_chan_die(struct ipc_chan *c, int error)
{
	if (c->dead)
		return 0;
	c->dead = 1;
	event_del(c->rev);
	event_del(c->wev);
	if (error != 0)
		log_warn("channel to %s: %s", c->peer,
		    error == -EPERM ? "message type not allowed from peer" :
		    error == -ENOBUFS ? "peer does not drain its queue" :
		    strerror(-error));
	c->busy++;
	c->on_close(c, error, c->arg);
	c->busy--;
	if (c->free_requested && c->busy == 0) {
		ipc_chan_destroy(c);
		return 1;
	}
	return 0;
}

static void
ipc_chan_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ipc_chan *c = arg;
	struct ipc_msg m;
	ssize_t n;
	int fds[IPC_MAX_FDS], nfds, i, rc, count;

	if (c->pending_error != 0) {
		(void)ipc_chan_die(c, c->pending_error);
		return;
	}
	for (count = 0; count < IPC_READ_BURST; count++) {
		if (c->dead || c->paused || c->free_requested)
			break;
		n = ipc_recvmsg(fd, c->rbuf, IPC_DATAGRAM_MAX, fds, &nfds);
		if (n == -EAGAIN)
			break;
		if (n <= 0) {
			(void)ipc_chan_die(c, n == 0 ? 0 : (int)n);
			return;
		}
		rc = ipc_decode(c->rbuf, (size_t)n, nfds, &m);
		/* The decoded message holds its own copy of every field. */
		explicit_bzero(c->rbuf, (size_t)n);
		if (rc == 0 && (c->allowed & IPC_TYPE_BIT(m.hdr.type)) == 0) {
			ipc_msg_clear(&m);
			rc = -EPERM;
		}
		if (rc < 0) {
			for (i = 0; i < nfds; i++)
				close(fds[i]);
			log_warn("%s sent a bad message (%s)", c->peer,
			    rc == -EPERM ? "not allowed" : "malformed");
			(void)ipc_chan_die(c, rc);
			return;
		}
		for (i = 0; i < nfds; i++)
			m.fds[i] = fds[i];
		m.nfds = nfds;
		c->busy++;
		c->on_msg(c, &m, c->arg);
		c->busy--;
		ipc_msg_clear(&m);
		if (c->free_requested && c->busy == 0) {
			ipc_chan_destroy(c);
			return;
		}
	}
}

static int
ipc_chan_flush(struct ipc_chan *c)
{
	struct ipc_out *o;
	int rc;

	while ((o = c->head) != NULL) {
		rc = ipc_sendmsg(c->fd, o->data, o->len, o->fds, o->nfds);
		if (rc == -EAGAIN)
			return 0;
		if (rc < 0)
			return rc;
		c->head = o->next;
		if (c->head == NULL)
			c->tail = NULL;
		c->queued--;
		ipc_out_free(o);
	}
	return 0;
}

static void
ipc_chan_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ipc_chan *c = arg;
	int rc;

	if ((rc = ipc_chan_flush(c)) < 0) {
		(void)ipc_chan_die(c, rc);
		return;
	}
	if (c->head != NULL)
		return;
	event_del(c->wev);
	if (c->on_drain != NULL) {
		c->busy++;
		c->on_drain(c, c->arg);
		c->busy--;
		if (c->free_requested && c->busy == 0)
			ipc_chan_destroy(c);
	}
}

int
ipc_chan_send(struct ipc_chan *c, enum ipc_type type, uint32_t request_id,
    const ProtobufCMessage *msg, const int *fds, int nfds)
{
	struct ipc_out *o;
	size_t packed;
	ssize_t len;
	int i, rc;

	if (c->dead || c->free_requested)
		return -EPIPE;
	if (nfds < 0 || nfds > IPC_MAX_FDS || msg == NULL)
		return -EINVAL;
	if (c->queued >= IPC_QUEUE_HIGH_WATER)
		return -ENOBUFS;
	packed = protobuf_c_message_get_packed_size(msg);
	if (packed > IPC_MAX_PAYLOAD)
		return -EMSGSIZE;
	if ((o = malloc(sizeof(*o) + IPC_HEADER_LEN + packed)) == NULL)
		return -ENOMEM;
	len = ipc_encode(o->data, IPC_HEADER_LEN + packed, type, request_id,
	    msg);
	if (len < 0) {
		ipc_out_wipe(o, IPC_HEADER_LEN + packed);
		return (int)len;
	}
	o->len = (size_t)len;
	o->next = NULL;
	o->nfds = 0;
	if (c->head == NULL) {
		rc = ipc_sendmsg(c->fd, o->data, o->len, fds, nfds);
		if (rc == 0) {
			ipc_out_wipe(o, IPC_HEADER_LEN + packed);
			return 0;
		}
		if (rc != -EAGAIN) {
			ipc_out_wipe(o, IPC_HEADER_LEN + packed);
			/* Report the death from the loop, not from inside
			 * the sender's own call chain. */
			c->pending_error = rc == -EPIPE ? 0 : rc;
			if (c->pending_error == 0)
				c->pending_error = -EPIPE;
			event_active(c->rev, EV_READ, 0);
			return -EPIPE;
		}
	}
	for (i = 0; i < nfds; i++) {
		if ((o->fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 0)) == -1) {
			rc = -errno;
			ipc_out_free(o);
			return rc;
		}
		o->nfds++;
	}
	if (c->tail != NULL)
		c->tail->next = o;
	else
		c->head = o;
	c->tail = o;
	c->queued++;
	event_add(c->wev, NULL);
	return 0;
}

size_t
ipc_chan_queued(const struct ipc_chan *c)
{
	return c->queued;
}

int
ipc_chan_dead(const struct ipc_chan *c)
{
	return c->dead || c->free_requested;
}

const char *
ipc_chan_peer(const struct ipc_chan *c)
{
	return c->peer;
}

void
ipc_chan_pause(struct ipc_chan *c)
{
	if (c->paused || c->dead)
		return;
	c->paused = 1;
	event_del(c->rev);
}

void
ipc_chan_resume(struct ipc_chan *c)
{
	if (!c->paused || c->dead)
		return;
	c->paused = 0;
	event_add(c->rev, NULL);
	/* Datagrams may already be waiting: read them without a new edge. */
	event_active(c->rev, EV_READ, 0);
}

void
ipc_chan_set_drain_cb(struct ipc_chan *c,
    void (*cb)(struct ipc_chan *, void *))
{
	c->on_drain = cb;
}
