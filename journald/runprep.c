/*
 * runprep.c: IPC_RUN_PREPARE, what a worker asks journald before a run's
 * provider starts (DESIGN section 9: session history; section 6:
 * idempotency keys).
 *
 * Process: palyra-journald. Reads the tenant's journal.db of the worker's
 * channel (never a tenant named in the payload) and keeps, in memory, the
 * runs prepared but not yet journaled.
 *
 * The answer (IPC_RUN_PREPARED) holds:
 *
 *   - the session's earlier turns for the prompt: for each earlier run of
 *     the session and principal, its inputs (the start's input, stored on
 *     its runs row, then its Input events) paired in order with its
 *     FinalMessage events; oldest first, trimmed to the newest turns that
 *     fit max_turns and max_bytes (input plus output text);
 *   - existing_run_id when idempotency_key already names a run of the
 *     session: then no run starts and the client follows that one.
 *
 * Two starts with one key must not both start a run, even on two workers
 * of the tenant. A prepared run (run_id in the request) is remembered with
 * its key until its runs row is committed; a second prepare with the same
 * session and key meanwhile waits (polled every JNL_RUNPREP_RETRY_MS) and
 * is answered with that run once it is in the journal, or takes the key
 * for itself if the first run never got there (its worker went away, its
 * first append was refused, JNL_RUNPREP_TTL_MS passed). The runs row's
 * UNIQUE(session_id, idempotency_key) index is the last line of defence.
 *
 * The prepared run's input and key reach its runs row through
 * jnl_runprep_run_inserted(), called by append.c in the same transaction
 * as the row's insert; the input is redacted like every event.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "journald.h"
#include "log.h"

#define RUNPREP_KEY_MAX		(NAME_MAX_LEN * 4)
/* Earlier runs looked at for one answer, beyond the turns kept. */
#define RUNPREP_RUNS_SCAN	(WRK_HISTORY_MAX_TURNS * 4 + 16)

/* A prepared run not yet committed to the journal (per tenant, at most
 * JNL_RUNPREP_PENDING_MAX). */
struct prepared {
	struct prepared		*next;
	struct jnl_tenant	*tenant;
	struct jnl_worker	*worker;
	char			 run_id[JNL_RUN_ID_MAX + 1];
	char			 session_id[NAME_MAX_LEN + 1];
	char			 principal[NAME_MAX_LEN + 1];
	char			*key;		/* NULL: none */
	char			*input;
	uint64_t		 expires_ms;
	int			 inserted;	/* its runs row is written */
};

/* A prepare waiting for another prepared run with its key. */
struct waiter {
	struct waiter		*next;
	struct jnl_worker	*worker;
	uint32_t		 request_id;
	uint64_t		 expires_ms;
	Palyra__Ipc__RunPrepare	*req;		/* owned copy */
};

struct jnl_runprep {
	struct prepared		*prepared;
	size_t			 nprepared;
	struct waiter		*waiters;
	size_t			 nwaiters;
	struct event		*retry_ev;
};

static void	retry_cb(evutil_socket_t, short, void *);

static struct jnl_runprep *
state_get(struct jnl_ctx *ctx)
{
	struct jnl_runprep *rp;

	if (ctx->runprep != NULL)
		return ctx->runprep;
	if ((rp = calloc(1, sizeof(*rp))) == NULL)
		return NULL;
	if ((rp->retry_ev = evtimer_new(ctx->base, retry_cb, ctx)) == NULL) {
		free(rp);
		return NULL;
	}
	ctx->runprep = rp;
	return rp;
}

static void
prepared_free(struct prepared *p)
{
	free(p->key);
	free(p->input);
	free(p);
}

static void
waiter_free(struct waiter *wt)
{
	palyra__ipc__run_prepare__free_unpacked(wt->req, NULL);
	free(wt);
}

/*
 * Forgets prepared runs that are settled: their row was written and no
 * transaction is open on their journal (committed, or rolled back), or
 * they expired before their first event came.
 */
static void
prepared_sweep(struct jnl_runprep *rp)
{
	struct prepared	**pp, *p;
	uint64_t	 now = jnl_now_ms();

	for (pp = &rp->prepared; (p = *pp) != NULL;) {
		if ((p->inserted && p->tenant->batch == JNL_BATCH_IDLE) ||
		    (!p->inserted && now >= p->expires_ms)) {
			*pp = p->next;
			rp->nprepared--;
			prepared_free(p);
			continue;
		}
		pp = &p->next;
	}
}

static int
run_id_valid(const char *s)
{
	size_t	 i;

	for (i = 0; s[i] != '\0'; i++)
		if (i >= JNL_RUN_ID_MAX ||
		    !((s[i] >= '0' && s[i] <= '9') ||
		    (s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= 'A' && s[i] <= 'Z') || s[i] == '_' ||
		    s[i] == '-'))
			return 0;
	return i > 0;
}

static const char *
request_invalid(const Palyra__Ipc__RunPrepare *req)
{
	if (!jnl_name_valid(req->session_id))
		return "invalid session_id";
	if (!jnl_name_valid(req->principal))
		return "invalid principal";
	if (strnlen(req->idempotency_key, RUNPREP_KEY_MAX + 1) >
	    RUNPREP_KEY_MAX)
		return "idempotency_key too long";
	if (req->run_id[0] != '\0' && !run_id_valid(req->run_id))
		return "invalid run_id";
	if (strnlen(req->input, TEXT_MAX_LEN + 1) > TEXT_MAX_LEN)
		return "input too long";
	return NULL;
}

/* One earlier run's turns, gathered before they are trimmed. */
struct run_turns {
	char		**inputs;
	size_t		 ninputs;
	char		**outputs;
	size_t		 noutputs;
};

static void
run_turns_clear(struct run_turns *rt)
{
	size_t	 i;

	for (i = 0; i < rt->ninputs; i++)
		free(rt->inputs[i]);
	for (i = 0; i < rt->noutputs; i++)
		free(rt->outputs[i]);
	free(rt->inputs);
	free(rt->outputs);
	memset(rt, 0, sizeof(*rt));
}

static int
push_text(char ***list, size_t *n, const char *text)
{
	char	**grown, *copy;

	if ((copy = strdup(text)) == NULL)
		return -ENOMEM;
	if ((grown = reallocarray(*list, *n + 1, sizeof(*grown))) == NULL) {
		free(copy);
		return -ENOMEM;
	}
	grown[(*n)++] = copy;
	*list = grown;
	return 0;
}

/* Reads one run's inputs and final texts, in seq order. */
static int
run_turns_read(sqlite3 *db, sqlite3_stmt *st, const char *run_id,
    const char *first_input, struct run_turns *rt)
{
	Palyra__V1__RunEvent	*ev;
	const void		*blob;
	int			 rc = SQLITE_DONE, r = 0, len;

	if (first_input != NULL && push_text(&rt->inputs, &rt->ninputs,
	    first_input) < 0)
		return -ENOMEM;
	sqlite3_bind_text(st, 1, run_id, -1, SQLITE_STATIC);
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		blob = sqlite3_column_blob(st, 0);
		len = sqlite3_column_bytes(st, 0);
		if (blob == NULL || len <= 0)
			continue;
		ev = palyra__v1__run_event__unpack(NULL, (size_t)len, blob);
		if (ev == NULL)
			continue;
		if (ev->event_case == PALYRA__V1__RUN_EVENT__EVENT_INPUT)
			r = push_text(&rt->inputs, &rt->ninputs,
			    ev->input->text);
		else if (ev->event_case == PALYRA__V1__RUN_EVENT__EVENT_FINAL)
			r = push_text(&rt->outputs, &rt->noutputs,
			    ev->final->text);
		palyra__v1__run_event__free_unpacked(ev, NULL);
	}
	if (r == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW) {
		log_warn("%s: history read: %s",
		    sqlite3_db_filename(db, "main"), sqlite3_errmsg(db));
		r = -EIO;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return r;
}

static void
turns_free(Palyra__Ipc__HistoryTurn **turns, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++) {
		free(turns[i]->run_id);
		free(turns[i]->input);
		free(turns[i]->output);
		free(turns[i]);
	}
	free(turns);
}

/*
 * The session's earlier turns, oldest first, as many of the newest as fit
 * max_turns and max_bytes, leaving out the run exclude (NULL: none; a
 * recovered run, recover.c). Returns 0 or -ENOMEM, -EIO.
 */
static int
history_read(struct jnl_tenant *t, const Palyra__Ipc__RunPrepare *req,
    const char *exclude, Palyra__Ipc__HistoryTurn ***out, size_t *nout)
{
	static const char runs_sql[] =
	    "SELECT run_id, input FROM runs WHERE session_id = ?1 AND "
	    "principal = ?2 AND run_id != ?4 "
	    "ORDER BY created_ms DESC, run_id DESC LIMIT ?3";
	static const char events_sql[] =
	    "SELECT payload FROM events WHERE run_id = ?1 AND kind IN "
	    "('input', 'final') ORDER BY run_seq";
	Palyra__Ipc__HistoryTurn **turns = NULL, *turn;
	sqlite3_stmt	*runs = NULL, *events = NULL;
	struct run_turns rt;
	uint64_t	 max_bytes = req->max_bytes, bytes = 0, size;
	size_t		 max_turns = req->max_turns, n = 0, i, pairs;
	const char	*input;
	int		 rc = SQLITE_DONE, r = 0, full = 0;

	memset(&rt, 0, sizeof(rt));
	if (max_turns > WRK_HISTORY_MAX_TURNS)
		max_turns = WRK_HISTORY_MAX_TURNS;
	if (max_bytes > WRK_HISTORY_MAX_BYTES)
		max_bytes = WRK_HISTORY_MAX_BYTES;
	*out = NULL;
	*nout = 0;
	if (max_turns == 0 || max_bytes == 0)
		return 0;
	if (sqlite3_prepare_v2(t->db, runs_sql, -1, &runs, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(t->db, events_sql, -1, &events, NULL) !=
	    SQLITE_OK) {
		log_warn("%s: history: %s", t->name, sqlite3_errmsg(t->db));
		sqlite3_finalize(runs);
		return -EIO;
	}
	if ((turns = calloc(max_turns, sizeof(*turns))) == NULL) {
		r = -ENOMEM;
		goto done;
	}
	sqlite3_bind_text(runs, 1, req->session_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(runs, 2, req->principal, -1, SQLITE_STATIC);
	sqlite3_bind_int(runs, 3, RUNPREP_RUNS_SCAN);
	sqlite3_bind_text(runs, 4, exclude != NULL ? exclude : "", -1,
	    SQLITE_STATIC);
	while (!full && r == 0 && (rc = sqlite3_step(runs)) == SQLITE_ROW) {
		input = (const char *)sqlite3_column_text(runs, 1);
		/* A run from before inputs were stored has no first turn:
		 * its answers cannot be paired with what they answered. */
		if (input == NULL)
			continue;
		if ((r = run_turns_read(t->db, events,
		    (const char *)sqlite3_column_text(runs, 0), input,
		    &rt)) < 0)
			break;
		pairs = rt.ninputs < rt.noutputs ? rt.ninputs : rt.noutputs;
		/* This run's turns, its last one first. */
		for (i = pairs; i > 0 && !full; i--) {
			size = strlen(rt.inputs[i - 1]) +
			    strlen(rt.outputs[i - 1]);
			if (n >= max_turns || bytes + size > max_bytes) {
				full = 1;
				break;
			}
			if ((turn = calloc(1, sizeof(*turn))) == NULL) {
				r = -ENOMEM;
				break;
			}
			palyra__ipc__history_turn__init(turn);
			turn->run_id = strdup(
			    (const char *)sqlite3_column_text(runs, 0));
			turn->input = rt.inputs[i - 1];
			turn->output = rt.outputs[i - 1];
			rt.inputs[i - 1] = NULL;
			rt.outputs[i - 1] = NULL;
			turns[n++] = turn;
			bytes += size;
			if (turn->run_id == NULL) {
				r = -ENOMEM;
				break;
			}
		}
		run_turns_clear(&rt);
	}
	if (r == 0 && !full && rc != SQLITE_DONE) {
		log_warn("%s: history: %s", t->name, sqlite3_errmsg(t->db));
		r = -EIO;
	}
done:
	run_turns_clear(&rt);
	sqlite3_finalize(runs);
	sqlite3_finalize(events);
	if (r < 0) {
		turns_free(turns, n);
		return r;
	}
	/* Oldest first. */
	for (i = 0; i < n / 2; i++) {
		turn = turns[i];
		turns[i] = turns[n - 1 - i];
		turns[n - 1 - i] = turn;
	}
	*out = turns;
	*nout = n;
	return 0;
}

/* The committed run of the session with key; 1 with run_id set, 0, -EIO. */
static int
key_lookup(struct jnl_tenant *t, const Palyra__Ipc__RunPrepare *req,
    char run_id[JNL_RUN_ID_MAX + 1])
{
	static const char sql[] =
	    "SELECT run_id FROM runs WHERE session_id = ?1 AND "
	    "idempotency_key = ?2 AND principal = ?3";
	sqlite3_stmt	*st;
	const char	*id;
	int		 rc, found = 0;

	if (sqlite3_prepare_v2(t->db, sql, -1, &st, NULL) != SQLITE_OK) {
		log_warn("%s: key lookup: %s", t->name, sqlite3_errmsg(t->db));
		return -EIO;
	}
	sqlite3_bind_text(st, 1, req->session_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, req->idempotency_key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, req->principal, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		id = (const char *)sqlite3_column_text(st, 0);
		if (id != NULL && strlen(id) <= JNL_RUN_ID_MAX) {
			memcpy(run_id, id, strlen(id) + 1);
			found = 1;
		}
	} else if (rc != SQLITE_DONE) {
		log_warn("%s: key lookup: %s", t->name, sqlite3_errmsg(t->db));
		found = -EIO;
	}
	sqlite3_finalize(st);
	return found;
}

static void
answer(struct jnl_worker *w, uint32_t request_id,
    Palyra__Ipc__RunPrepared *reply)
{
	int	 r;

	if (w->closing)
		return;
	r = ipc_chan_send(w->chan, IPC_RUN_PREPARED, request_id,
	    &reply->base, NULL, 0);
	if (r < 0)
		log_warn("%s: cannot answer run prepare: %s",
		    ipc_chan_peer(w->chan), strerror(-r));
}

static void
answer_error(struct jnl_worker *w, uint32_t request_id, const char *error)
{
	Palyra__Ipc__RunPrepared reply = PALYRA__IPC__RUN_PREPARED__INIT;

	reply.error = (char *)error;
	answer(w, request_id, &reply);
}

static int
prepared_add(struct jnl_runprep *rp, struct jnl_worker *w,
    const Palyra__Ipc__RunPrepare *req)
{
	struct prepared	*p;
	size_t		 n = 0;

	/* Per tenant: one tenant's starts cannot crowd out another's. */
	for (p = rp->prepared; p != NULL; p = p->next)
		if (p->tenant == w->tenant)
			n++;
	if (n >= JNL_RUNPREP_PENDING_MAX)
		return -ENOBUFS;
	if ((p = calloc(1, sizeof(*p))) == NULL ||
	    (p->input = strdup(req->input)) == NULL ||
	    (req->idempotency_key[0] != '\0' &&
	    (p->key = strdup(req->idempotency_key)) == NULL)) {
		if (p != NULL)
			prepared_free(p);
		return -ENOMEM;
	}
	p->tenant = w->tenant;
	p->worker = w;
	memcpy(p->run_id, req->run_id, strlen(req->run_id) + 1);
	memcpy(p->session_id, req->session_id, strlen(req->session_id) + 1);
	memcpy(p->principal, req->principal, strlen(req->principal) + 1);
	p->expires_ms = jnl_now_ms() + JNL_RUNPREP_TTL_MS;
	p->next = rp->prepared;
	rp->prepared = p;
	rp->nprepared++;
	return 0;
}

/*
 * Answers req, or returns 0 when it must wait for another prepared run
 * with its key. Returns 1 when answered.
 */
static int
evaluate(struct jnl_ctx *ctx, struct jnl_runprep *rp, struct jnl_worker *w,
    uint32_t request_id, const Palyra__Ipc__RunPrepare *req)
{
	Palyra__Ipc__RunPrepared reply = PALYRA__IPC__RUN_PREPARED__INIT;
	struct jnl_tenant *t = w->tenant;
	struct prepared	*p;
	char		 existing[JNL_RUN_ID_MAX + 1];
	int		 r;

	(void)ctx;
	if (t->db == NULL) {
		answer_error(w, request_id, "journal unavailable");
		return 1;
	}
	prepared_sweep(rp);
	if (req->idempotency_key[0] != '\0') {
		for (p = rp->prepared; p != NULL; p = p->next)
			if (p->tenant == t && p->key != NULL &&
			    strcmp(p->run_id, req->run_id) != 0 &&
			    strcmp(p->session_id, req->session_id) == 0 &&
			    strcmp(p->key, req->idempotency_key) == 0 &&
			    strcmp(p->principal, req->principal) == 0)
				return 0;
		if ((r = key_lookup(t, req, existing)) < 0) {
			answer_error(w, request_id, "journal unavailable");
			return 1;
		}
		if (r == 1) {
			reply.ok = 1;
			reply.existing_run_id = existing;
			answer(w, request_id, &reply);
			return 1;
		}
	}
	r = history_read(t, req, NULL, &reply.turns, &reply.n_turns);
	if (r == 0 && req->run_id[0] != '\0')
		r = prepared_add(rp, w, req);
	if (r < 0) {
		turns_free(reply.turns, reply.n_turns);
		answer_error(w, request_id, r == -ENOBUFS ?
		    "too many runs starting" : "journal unavailable");
		return 1;
	}
	reply.ok = 1;
	answer(w, request_id, &reply);
	turns_free(reply.turns, reply.n_turns);
	return 1;
}

int
jnl_runprep_history(struct jnl_tenant *t, const char *session_id,
    const char *principal, const char *exclude_run_id,
    Palyra__Ipc__HistoryTurn ***out, size_t *nout)
{
	Palyra__Ipc__RunPrepare req = PALYRA__IPC__RUN_PREPARE__INIT;

	req.session_id = (char *)session_id;
	req.principal = (char *)principal;
	req.max_turns = WRK_HISTORY_MAX_TURNS;
	req.max_bytes = WRK_HISTORY_MAX_BYTES;
	return history_read(t, &req, exclude_run_id, out, nout);
}

void
jnl_runprep_turns_free(Palyra__Ipc__HistoryTurn **turns, size_t n)
{
	turns_free(turns, n);
}

static void
retry_arm(struct jnl_runprep *rp)
{
	struct timeval	 tv = { 0, JNL_RUNPREP_RETRY_MS * 1000 };

	if (rp->nwaiters > 0 && !evtimer_pending(rp->retry_ev, NULL))
		evtimer_add(rp->retry_ev, &tv);
}

static void
retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct jnl_ctx	*ctx = arg;
	struct jnl_runprep *rp = ctx->runprep;
	struct waiter	**wp, *wt;
	uint64_t	 now = jnl_now_ms();

	(void)fd;
	(void)what;
	for (wp = &rp->waiters; (wt = *wp) != NULL;) {
		if (now >= wt->expires_ms) {
			answer_error(wt->worker, wt->request_id,
			    "a run with this idempotency key is still "
			    "starting");
		} else if (!evaluate(ctx, rp, wt->worker, wt->request_id,
		    wt->req)) {
			wp = &wt->next;
			continue;
		}
		*wp = wt->next;
		rp->nwaiters--;
		waiter_free(wt);
	}
	retry_arm(rp);
}

void
jnl_runprep_request(struct jnl_ctx *ctx, struct jnl_worker *w,
    const struct ipc_msg *m)
{
	const Palyra__Ipc__RunPrepare *req =
	    (const Palyra__Ipc__RunPrepare *)m->msg;
	struct jnl_runprep *rp;
	struct waiter	*wt;
	const char	*why;
	uint8_t		*packed;
	size_t		 len;

	if ((why = request_invalid(req)) != NULL) {
		log_warn("%s: run prepare: %s", ipc_chan_peer(w->chan), why);
		answer_error(w, m->hdr.request_id, why);
		return;
	}
	if ((rp = state_get(ctx)) == NULL) {
		answer_error(w, m->hdr.request_id, "out of memory");
		return;
	}
	if (evaluate(ctx, rp, w, m->hdr.request_id, req))
		return;
	/* It waits: keep a copy of the request (the channel frees its own). */
	if (rp->nwaiters >= JNL_RUNPREP_PENDING_MAX ||
	    (wt = calloc(1, sizeof(*wt))) == NULL) {
		answer_error(w, m->hdr.request_id, "too many runs starting");
		return;
	}
	len = protobuf_c_message_get_packed_size(&req->base);
	if ((packed = malloc(len ? len : 1)) == NULL) {
		free(wt);
		answer_error(w, m->hdr.request_id, "out of memory");
		return;
	}
	(void)protobuf_c_message_pack(&req->base, packed);
	wt->req = palyra__ipc__run_prepare__unpack(NULL, len, packed);
	free(packed);
	if (wt->req == NULL) {
		free(wt);
		answer_error(w, m->hdr.request_id, "out of memory");
		return;
	}
	wt->worker = w;
	wt->request_id = m->hdr.request_id;
	wt->expires_ms = jnl_now_ms() + JNL_RUNPREP_TTL_MS;
	wt->next = rp->waiters;
	rp->waiters = wt;
	rp->nwaiters++;
	retry_arm(rp);
}

int
jnl_runprep_run_inserted(struct jnl_ctx *ctx, struct jnl_tenant *t,
    const char *run_id)
{
	static const char sql[] =
	    "UPDATE runs SET input = ?2, idempotency_key = ?3 "
	    "WHERE run_id = ?1";
	Palyra__V1__RunEvent ev = PALYRA__V1__RUN_EVENT__INIT;
	Palyra__V1__Note note = PALYRA__V1__NOTE__INIT;
	struct jnl_runprep *rp = ctx->runprep;
	struct prepared	*p, **pp;
	sqlite3_stmt	*st;
	int		 rc;

	if (rp == NULL)
		return 0;
	for (p = rp->prepared; p != NULL; p = p->next)
		if (p->tenant == t && !p->inserted &&
		    strcmp(p->run_id, run_id) == 0)
			break;
	if (p == NULL)
		return 0;
	/* The input is stored like an event's text: redacted by value. */
	note.text = p->input;
	note.principal = (char *)"";
	ev.event_case = PALYRA__V1__RUN_EVENT__EVENT_NOTE;
	ev.note = &note;
	if (jnl_redact_event(ctx, &ev) < 0) {
		/* Partly replaced text may be gone: never free it twice. */
		p->input = NULL;
		return -ENOMEM;
	}
	p->input = note.text;
	if (sqlite3_prepare_v2(t->db, sql, -1, &st, NULL) != SQLITE_OK) {
		log_warn("%s: run input: %s", t->name, sqlite3_errmsg(t->db));
		return -EIO;
	}
	sqlite3_bind_text(st, 1, run_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, p->input, -1, SQLITE_STATIC);
	if (p->key != NULL)
		sqlite3_bind_text(st, 3, p->key, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 3);
	rc = sqlite3_step(st);
	if (rc == SQLITE_CONSTRAINT && p->key != NULL) {
		/* Another run holds the key after all: this one keeps its
		 * input and goes without. */
		log_warn("%s: run %s: idempotency key already taken",
		    t->name, run_id);
		sqlite3_reset(st);
		sqlite3_bind_null(st, 3);
		rc = sqlite3_step(st);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		log_warn("%s: run input: %s", t->name, sqlite3_errstr(rc));
		return -EIO;
	}
	p->inserted = 1;
	/* Without a key nothing waits for it: done. A key is held until
	 * the row is committed (prepared_sweep). */
	if (p->key == NULL) {
		for (pp = &rp->prepared; *pp != p; pp = &(*pp)->next)
			;
		*pp = p->next;
		rp->nprepared--;
		prepared_free(p);
	}
	return 0;
}

void
jnl_runprep_worker_gone(struct jnl_ctx *ctx, struct jnl_worker *w)
{
	struct jnl_runprep *rp = ctx->runprep;
	struct prepared	**pp, *p;
	struct waiter	**wp, *wt;

	if (rp == NULL)
		return;
	/* Its runs not yet written will never be: their keys are free. */
	for (pp = &rp->prepared; (p = *pp) != NULL;) {
		if (p->worker == w && !p->inserted) {
			*pp = p->next;
			rp->nprepared--;
			prepared_free(p);
			continue;
		}
		if (p->worker == w)
			p->worker = NULL;
		pp = &p->next;
	}
	for (wp = &rp->waiters; (wt = *wp) != NULL;) {
		if (wt->worker == w) {
			*wp = wt->next;
			rp->nwaiters--;
			waiter_free(wt);
			continue;
		}
		wp = &wt->next;
	}
	retry_arm(rp);
}

void
jnl_runprep_free(struct jnl_ctx *ctx)
{
	struct jnl_runprep *rp = ctx->runprep;
	struct prepared	*p;
	struct waiter	*wt;

	if (rp == NULL)
		return;
	while ((p = rp->prepared) != NULL) {
		rp->prepared = p->next;
		prepared_free(p);
	}
	while ((wt = rp->waiters) != NULL) {
		rp->waiters = wt->next;
		waiter_free(wt);
	}
	event_free(rp->retry_ev);
	free(rp);
	ctx->runprep = NULL;
}
