/*
 * proto_rec.h: the recorder the wire protocol tests (test_openai.c,
 * test_anthropic.c) share: a wrk_stream whose callbacks record what a
 * protocol reported, and run_stream(), which feeds a recorded event stream
 * through the SSE parser in pieces of a given size. The includer defines
 * TEST_PROTO (the struct wrk_proto under test) and includes the protocol
 * modules first.
 */
struct rec {
	char		 text[8192];
	size_t		 text_len;
	int		 ntext;
	struct {
		char	 id[64];
		char	 name[64];
		char	*args;
	}		 calls[WRK_TOOL_CALLS_PER_REPLY];
	int		 ncalls;
	uint64_t	 in, out;
	int		 nusage;
	int		 done;
	char		 stop[32];
	int		 nerror;
	char		 etype[64];
	char		 emsg[256];
};

static int
r_text(void *arg, const char *t, size_t n)
{
	struct rec	*r = arg;

	assert_true(r->text_len + n < sizeof(r->text));
	memcpy(r->text + r->text_len, t, n);
	r->text_len += n;
	r->text[r->text_len] = '\0';
	r->ntext++;
	return 0;
}

static int
r_call(void *arg, const struct wrk_tool_call *c)
{
	struct rec	*r = arg;

	snprintf(r->calls[r->ncalls].id, 64, "%s", c->id);
	snprintf(r->calls[r->ncalls].name, 64, "%s", c->name);
	r->calls[r->ncalls].args = strdup(c->arguments);
	r->ncalls++;
	return 0;
}

static int
r_usage(void *arg, uint64_t in, uint64_t out)
{
	struct rec	*r = arg;

	r->in = in;
	r->out = out;
	r->nusage++;
	return 0;
}

static int
r_done(void *arg, const char *stop)
{
	struct rec	*r = arg;

	r->done++;
	snprintf(r->stop, sizeof(r->stop), "%s", stop);
	return 0;
}

static int
r_error(void *arg, const char *type, const char *msg)
{
	struct rec	*r = arg;

	r->nerror++;
	snprintf(r->etype, sizeof(r->etype), "%s", type);
	snprintf(r->emsg, sizeof(r->emsg), "%s", msg);
	return -EPROTO;
}

static const struct wrk_proto_cbs rec_cbs = {
	r_text, r_call, r_usage, r_done, r_error,
};

struct feeder {
	const struct wrk_proto	*proto;
	struct wrk_stream	 st;
};

static int
to_proto(const struct sse_event *ev, void *arg)
{
	struct feeder	*f = arg;

	return f->proto->event(&f->st, ev);
}

static void
rec_free(struct rec *r)
{
	int	 i;

	for (i = 0; i < r->ncalls; i++)
		free(r->calls[i].args);
	memset(r, 0, sizeof(*r));
}

/* Feeds wire in pieces of chunk bytes, then ends the stream. */
static int
run_stream(const char *wire, size_t chunk, struct rec *r)
{
	struct sse_parser p;
	struct feeder	 f;
	size_t		 off, len = strlen(wire), n;
	int		 rc = 0;

	memset(r, 0, sizeof(*r));
	f.proto = &TEST_PROTO;
	wrk_stream_init(&f.st, &rec_cbs, r);
	assert_int_equal(sse_init(&p, WRK_SSE_EVENT_MAX, to_proto, &f), 0);
	for (off = 0; off < len && rc == 0; off += n) {
		n = len - off < chunk ? len - off : chunk;
		rc = sse_feed(&p, wire + off, n);
	}
	if (rc == 0) {
		sse_finish(&p);
		rc = f.proto->finish(&f.st);
	}
	sse_fini(&p);
	wrk_stream_fini(&f.st);
	return rc;
}

static const size_t chunks[] = { 1, 2, 3, 5, 7, 13, 64, 100000 };
