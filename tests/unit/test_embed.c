/*
 * test_embed.c: palyra-worker's embeddings (worker/embed.c,
 * worker/embed_offline.c).
 *
 * The offline lexical embedder's properties: deterministic, unit length,
 * cosine(a, a) = 1, a text sharing words with another scores higher than
 * an unrelated one (and synonyms do not: it is lexical), an empty text
 * gives the zero vector whose cosine is 0. The cosine helper.
 *
 * The network embedder on a libevent loop against a scripted
 * OpenAI-compatible /embeddings server in this process (threads on a
 * loopback port chosen at run time): answers out of index order come back
 * in order, 150 texts go out as three requests of at most 64 and come
 * back whole, a 429 is retried, malformed answers (missing index, wrong
 * dimension, strings, NaN, duplicate index, not JSON) and error bodies
 * become clear errors that never hold the key, the Authorization header
 * carries the key, and a cancelled request never calls back.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <jansson.h>

#include "config.h"

#include "../../worker/http.c"
#include "../../worker/retry.c"
#include "../../worker/proto.c"
#include "../../worker/embed.c"
#include "../../worker/embed_offline.c"

#define KEY "sk-test-0123456789abcdef"

int64_t
wrk_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- The offline embedder. ---- */

static void
lex(const char *s, float *v)
{
	wrk_embed_lexical(s, strlen(s), v);
}

static double
norm(const float *v, size_t n)
{
	double s = 0;
	size_t i;

	for (i = 0; i < n; i++)
		s += (double)v[i] * v[i];
	return sqrt(s);
}

static void
test_lexical_deterministic(void **state)
{
	float a[WRK_EMBED_OFFLINE_DIM], b[WRK_EMBED_OFFLINE_DIM];
	/* A vector computed once, pinned: the hashing must not change
	 * under anyone's feet (stored vectors would go stale). */
	static const char text[] = "The quick brown fox";

	size_t i, nonzero = 0;

	lex(text, a);
	lex(text, b);
	assert_memory_equal(a, b, sizeof(a));
	for (i = 0; i < WRK_EMBED_OFFLINE_DIM; i++)
		nonzero += a[i] != 0.0f;
	assert_int_equal(nonzero, 19);
	assert_true(fabsf(a[15] - 0.401044071f) < 1e-6f);
	assert_true(fabs(norm(a, WRK_EMBED_OFFLINE_DIM) - 1.0) < 1e-5);
	assert_true(
	    fabs(wrk_embed_cosine(a, a, WRK_EMBED_OFFLINE_DIM) - 1.0f) < 1e-5);
	/* Case and punctuation do not matter, word order neither. */
	lex("the QUICK, brown fox!", b);
	assert_true(wrk_embed_cosine(a, b, WRK_EMBED_OFFLINE_DIM) > 0.9999f);
	lex("fox brown quick the", b);
	assert_true(wrk_embed_cosine(a, b, WRK_EMBED_OFFLINE_DIM) > 0.9999f);
}

static void
test_lexical_similarity(void **state)
{
	float q[WRK_EMBED_OFFLINE_DIM], near[WRK_EMBED_OFFLINE_DIM],
	    far[WRK_EMBED_OFFLINE_DIM], syn[WRK_EMBED_OFFLINE_DIM],
	    stem[WRK_EMBED_OFFLINE_DIM];
	float c_near, c_far, c_syn, c_stem;

	lex("the deployment of the billing service failed", q);
	lex("billing service deployment rolled back", near);
	lex("my grandmother bakes apple pie on sundays", far);
	lex("the rollout of the invoicing daemon broke", syn);
	lex("deployments of billing services", stem);
	c_near = wrk_embed_cosine(q, near, WRK_EMBED_OFFLINE_DIM);
	c_far = wrk_embed_cosine(q, far, WRK_EMBED_OFFLINE_DIM);
	c_syn = wrk_embed_cosine(q, syn, WRK_EMBED_OFFLINE_DIM);
	c_stem = wrk_embed_cosine(q, stem, WRK_EMBED_OFFLINE_DIM);
	assert_true(c_near > 0.5f);
	assert_true(fabsf(c_far) < 0.2f);
	/* Lexical, not semantic: a paraphrase in other words is about as
	 * far as an unrelated text ("the" and "of" weigh little). */
	assert_true(fabsf(c_syn) < 0.2f);
	/* Shared trigrams: plural forms still score. */
	assert_true(c_stem > 0.4f);
	/* "car" and "cars" share two of their trigrams; "automobile"
	 * nothing. */
	lex("my car broke down", q);
	lex("the automobile failed", syn);
	lex("cars break down", near);
	assert_true(
	    fabsf(wrk_embed_cosine(q, syn, WRK_EMBED_OFFLINE_DIM)) < 0.1f);
	assert_true(wrk_embed_cosine(q, near, WRK_EMBED_OFFLINE_DIM) > 0.3f);
	/* Function words alone still make a vector. */
	lex("to be or not to be", q);
	assert_true(fabs(norm(q, WRK_EMBED_OFFLINE_DIM) - 1.0) < 1e-5);
}

static void
test_lexical_empty(void **state)
{
	float z[WRK_EMBED_OFFLINE_DIM], a[WRK_EMBED_OFFLINE_DIM];
	float zero[WRK_EMBED_OFFLINE_DIM];
	float inf[3] = {INFINITY, 0, 0}, one[3] = {1, 0, 0};
	float neg[3] = {-2, 0, 0};
	size_t i;

	memset(zero, 0, sizeof(zero));
	lex("", z);
	assert_memory_equal(z, zero, sizeof(z));
	lex("  ...  !? -- ", z);
	assert_memory_equal(z, zero, sizeof(z));
	lex("hello", a);
	assert_true(wrk_embed_cosine(z, a, WRK_EMBED_OFFLINE_DIM) == 0.0f);
	assert_true(wrk_embed_cosine(z, z, WRK_EMBED_OFFLINE_DIM) == 0.0f);
	assert_true(wrk_embed_cosine(inf, one, 3) == 0.0f);
	assert_true(wrk_embed_cosine(neg, one, 3) == -1.0f);
	assert_true(wrk_embed_cosine(one, one, 0) == 0.0f);
	/* Non-ASCII stays inside words; a huge word does not overflow. */
	{
		char *big = malloc(WRK_EMBED_TEXT_MAX + 1);

		assert_non_null(big);
		memset(big, 'x', WRK_EMBED_TEXT_MAX);
		big[WRK_EMBED_TEXT_MAX] = '\0';
		lex(big, a);
		assert_true(fabs(norm(a, WRK_EMBED_OFFLINE_DIM) - 1) < 1e-5);
		free(big);
	}
	lex("caf\xc3\xa9 cr\xc3\xa8me", a);
	for (i = 0; i < WRK_EMBED_OFFLINE_DIM; i++)
		assert_true(isfinite(a[i]));
	assert_true(fabs(norm(a, WRK_EMBED_OFFLINE_DIM) - 1) < 1e-5);
}

/* ---- The embedding-model directive. ---- */

static void
test_config_directive(void **state)
{
	static const char ok[] = "provider \"local\" {\n"
				 "\ttype openai-compatible\n"
				 "\tbase-url \"http://127.0.0.1:1/v1\"\n"
				 "\tembedding-model \"nomic-embed-text\"\n"
				 "}\n"
				 "provider \"chat\" { type openai-compatible; "
				 "base-url \"http://127.0.0.1:1/v1\" }\n";
	static const struct {
		const char *text, *want;
	} bad[] = {
	    {"provider \"a\" { type anthropic; api-key env:K; "
	     "embedding-model \"m\" }\n",
		"t.conf:1:1: \"embedding-model\" is only valid for "
		"providers of type openai and openai-compatible "
		"(provider \"a\" is anthropic)"},
	    {"provider \"o\" {\n\tembedding-model \"m\"\n"
	     "\ttype offline\n}\n",
		"t.conf:1:1: \"embedding-model\" is only valid for "
		"providers of type openai and openai-compatible "
		"(provider \"o\" is offline)"},
	    {"provider \"e\" { type openai; api-key env:K; "
	     "embedding-model \"\" }\n",
		"t.conf:1:60: invalid embedding model \"\""},
	    {"provider \"d\" { type openai; api-key env:K; "
	     "embedding-model \"a\"; embedding-model \"b\" }\n",
		NULL},
	};
	const struct cfg_provider *pr;
	struct cfg *cfg = NULL;
	char err[512], *dump = NULL;
	size_t i, dlen = 0;
	FILE *fp;

	if (cfg_parse_buffer(
		"t.conf", ok, strlen(ok), NULL, &cfg, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	pr = cfg_provider_find(cfg, "local");
	assert_non_null(pr);
	assert_string_equal(pr->embedding_model, "nomic-embed-text");
	pr = cfg_provider_find(cfg, "chat");
	assert_non_null(pr);
	assert_null(pr->embedding_model);
	/* palyrad -n shows it. */
	fp = open_memstream(&dump, &dlen);
	assert_non_null(fp);
	cfg_dump(cfg, fp);
	fclose(fp);
	assert_non_null(
	    strstr(dump, "\tembedding-model \"nomic-embed-text\"\n"));
	assert_int_equal(
	    strstr(strstr(dump, "provider \"chat\""), "embedding-model"), NULL);
	free(dump);
	cfg_free(cfg);

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cfg = NULL;
		assert_int_equal(
		    cfg_parse_buffer("t.conf", bad[i].text, strlen(bad[i].text),
			NULL, &cfg, err, sizeof(err)),
		    -1);
		assert_null(cfg);
		if (bad[i].want != NULL)
			assert_string_equal(err, bad[i].want);
		else
			assert_non_null(strstr(err, "embedding-model"));
	}
}

/* ---- wrk_embed_parse on its own. ---- */

static int
parse(const char *body, size_t want, char *err)
{
	float *v = NULL;
	size_t dim = 0;
	uint64_t tok;
	int rc;

	rc =
	    wrk_embed_parse(body, strlen(body), want, &v, &dim, &tok, err, 256);
	free(v);
	return rc;
}

static void
test_parse(void **state)
{
	char err[256];
	float *v;
	size_t dim = 0;
	uint64_t tok;
	const char *ok = "{\"data\":[{\"index\":1,\"embedding\":[3,4]},"
			 "{\"index\":0,\"embedding\":[1.5,-2e-3]}],"
			 "\"usage\":{\"prompt_tokens\":7}}";

	assert_int_equal(wrk_embed_parse(ok, strlen(ok), 2, &v, &dim, &tok, err,
			     sizeof(err)),
	    0);
	assert_int_equal(dim, 2);
	assert_int_equal(tok, 7);
	assert_true(v[0] == 1.5f && v[1] == -2e-3f && v[2] == 3 && v[3] == 4);
	free(v);
	/* A dimension fixed by an earlier batch. */
	dim = 3;
	assert_int_equal(wrk_embed_parse(ok, strlen(ok), 2, &v, &dim, &tok, err,
			     sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "dimension 2, not 3"));

	assert_int_equal(parse("{\"data\":[{\"embedding\":[1]}]}", 1, err), -1);
	assert_non_null(strstr(err, "no index"));
	assert_int_equal(parse("{\"data\":[{\"index\":0,\"embedding\":[1]},"
			       "{\"index\":0,\"embedding\":[1]}]}",
			     2, err),
	    -1);
	assert_non_null(strstr(err, "index 0 appears twice"));
	assert_int_equal(
	    parse("{\"data\":[{\"index\":2,\"embedding\":[1]}]}", 1, err), -1);
	assert_non_null(strstr(err, "no index in [0, 1)"));
	assert_int_equal(parse("{\"data\":[{\"index\":0,\"embedding\":[1,"
			       "\"x\"]}]}",
			     1, err),
	    -1);
	assert_non_null(strstr(err, "non-number at 1"));
	assert_int_equal(
	    parse("{\"data\":[{\"index\":0,\"embedding\":[1e300]}]}", 1, err),
	    -1);
	assert_non_null(strstr(err, "non-finite"));
	assert_int_equal(
	    parse("{\"data\":[{\"index\":0,\"embedding\":[NaN]}]}", 1, err),
	    -1);
	assert_non_null(strstr(err, "not JSON"));
	assert_int_equal(
	    parse("{\"data\":[{\"index\":0,\"embedding\":[]}]}", 1, err), -1);
	assert_non_null(strstr(err, "no embedding array"));
	assert_int_equal(
	    parse("{\"data\":[{\"index\":0,\"embedding\":\"AAAA\"}]}", 1, err),
	    -1);
	assert_non_null(strstr(err, "base64"));
	assert_int_equal(parse("{\"data\":[]}", 1, err), -1);
	assert_non_null(strstr(err, "0 vector(s) for 1 text(s)"));
	assert_int_equal(parse("[1,2]", 1, err), -1);
	assert_non_null(strstr(err, "not a JSON object"));
	assert_int_equal(parse("{\"error\":{\"message\":\"model not found\","
			       "\"type\":\"invalid_request_error\"}}",
			     1, err),
	    -1);
	assert_non_null(strstr(err, "model not found"));
	assert_int_equal(parse("", 1, err), -1);
	assert_non_null(strstr(err, "not JSON"));
}

/* ---- The scripted server. ---- */

static int srv_port;
static atomic_int n_order, n_big, n_flaky, n_fail, n_auth, n_hold_seen;
static atomic_int big_sizes[8];
static char auth_seen[256], noauth_seen[256];
static pthread_mutex_t seen_mu = PTHREAD_MUTEX_INITIALIZER;

static int
send_all(int fd, const char *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		if ((n = send(fd, p, len, MSG_NOSIGNAL)) <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void
reply(int fd, int status, const char *extra, const char *body)
{
	char head[512];

	snprintf(head, sizeof(head),
	    "HTTP/1.1 %d X\r\nContent-Type: "
	    "application/json\r\nContent-Length: %zu\r\nConnection: close\r\n"
	    "%s\r\n",
	    status, strlen(body), extra);
	if (send_all(fd, head, strlen(head)) == 0)
		send_all(fd, body, strlen(body));
}

/* The request (head and Content-Length body) into a malloc'd buffer. */
static char *
read_request(int fd, char **body)
{
	size_t size = 1 << 16, used = 0, need = 0;
	char *buf = malloc(size + 1), *end, *cl, *grown;
	ssize_t n;

	while (buf != NULL) {
		if (used == size) {
			size *= 2;
			if ((grown = realloc(buf, size + 1)) == NULL)
				break;
			buf = grown;
		}
		if ((n = recv(fd, buf + used, size - used, 0)) <= 0)
			break;
		used += (size_t)n;
		buf[used] = '\0';
		if ((end = strstr(buf, "\r\n\r\n")) == NULL)
			continue;
		if (need == 0) {
			cl = strcasestr(buf, "\r\nContent-Length:");
			need =
			    (size_t)(end + 4 - buf) +
			    (cl != NULL && cl < end ? strtoul(cl + 17, NULL, 10)
						    : 0);
		}
		if (used >= need) {
			*body = end + 4;
			return buf;
		}
	}
	free(buf);
	return NULL;
}

/* The vectors of inputs, as the data array of an answer, in reverse order:
 * text "t N" -> [N, N + 0.5, -1]. */
static char *
vectors_json(json_t *input)
{
	json_t *data = json_array(), *item, *emb;
	size_t i, n = json_array_size(input);
	double v;
	char *s;

	for (i = n; i-- > 0;) {
		v = atof(json_string_value(json_array_get(input, i)) + 2);
		item = json_object();
		emb = json_array();
		json_array_append_new(emb, json_real(v));
		json_array_append_new(emb, json_real(v + 0.5));
		json_array_append_new(emb, json_integer(-1));
		json_object_set_new(item, "object", json_string("embedding"));
		json_object_set_new(item, "index", json_integer((json_int_t)i));
		json_object_set_new(item, "embedding", emb);
		json_array_append_new(data, item);
	}
	item = json_object();
	json_object_set_new(item, "object", json_string("list"));
	json_object_set_new(item, "data", data);
	json_object_set_new(item, "model", json_string("m"));
	json_object_set_new(item, "usage",
	    json_pack("{s:I,s:I}", "prompt_tokens", (json_int_t)n,
		"total_tokens", (json_int_t)n));
	s = json_dumps(item, JSON_COMPACT);
	json_decref(item);
	return s;
}

static void
serve(int fd, const char *req, const char *body)
{
	char path[128] = "", *ans, *a;
	json_t *root, *input;
	const char *p;
	int k;

	sscanf(req, "POST %127s", path);
	root = json_loads(body, 0, NULL);
	input = json_object_get(root, "input");
	if (strcmp(path, "/order/embeddings") == 0 ||
	    strcmp(path, "/big/embeddings") == 0) {
		if (strcmp(json_string_value(json_object_get(root, "model")),
			"embed-small") != 0 ||
		    !json_is_array(input)) {
			reply(fd, 400, "", "{\"error\":\"bad request\"}");
			goto out;
		}
		if (path[1] == 'b') {
			k = n_big++;
			if (k < 8)
				big_sizes[k] = (int)json_array_size(input);
		} else
			n_order++;
		ans = vectors_json(input);
		reply(fd, 200, "", ans);
		free(ans);
	} else if (strcmp(path, "/flaky/embeddings") == 0) {
		if (n_flaky++ == 0)
			reply(fd, 429, "Retry-After: 0\r\n",
			    "{\"error\":{"
			    "\"message\":\"slow "
			    "down\",\"type\":\"rate_limit\"}}");
		else {
			ans = vectors_json(input);
			reply(fd, 200, "", ans);
			free(ans);
		}
	} else if (strcmp(path, "/fail/embeddings") == 0) {
		n_fail++;
		reply(fd, 503, "", "{\"error\":{\"message\":\"overloaded\"}}");
	} else if (strcmp(path, "/auth/embeddings") == 0 ||
		   strcmp(path, "/noauth/embeddings") == 0) {
		pthread_mutex_lock(&seen_mu);
		a = path[1] == 'a' ? auth_seen : noauth_seen;
		p = strcasestr(req, "\r\nAuthorization: ");
		snprintf(a, sizeof(auth_seen), "%.*s",
		    p == NULL ? 6 : (int)strcspn(p + 17, "\r\n"),
		    p == NULL ? "(none)" : p + 17);
		pthread_mutex_unlock(&seen_mu);
		n_auth++;
		ans = vectors_json(input);
		reply(fd, 200, "", ans);
		free(ans);
	} else if (strcmp(path, "/denied/embeddings") == 0) {
		reply(fd, 401, "",
		    "{\"error\":{\"message\":\"Incorrect API "
		    "key provided: " KEY
		    ".\",\"type\":\"invalid_request_error\","
		    "\"code\":\"invalid_api_key\"}}");
	} else if (strcmp(path, "/hold/embeddings") == 0) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		char c;

		n_hold_seen++;
		/* Until the client goes away (or 10 s). */
		if (poll(&pfd, 1, 10000) == 1)
			(void)recv(fd, &c, 1, 0);
	} else if (strncmp(path, "/bad-", 5) == 0) {
		const char *b = "";

		if (strcmp(path, "/bad-noindex/embeddings") == 0)
			b = "{\"data\":[{\"embedding\":[1]},"
			    "{\"index\":1,\"embedding\":[1]}]}";
		else if (strcmp(path, "/bad-dim/embeddings") == 0)
			b = "{\"data\":[{\"index\":0,\"embedding\":[1,2]},"
			    "{\"index\":1,\"embedding\":[1]}]}";
		else if (strcmp(path, "/bad-string/embeddings") == 0)
			b = "{\"data\":[{\"index\":0,\"embedding\":[1]},"
			    "{\"index\":1,\"embedding\":[\"1\"]}]}";
		else if (strcmp(path, "/bad-nan/embeddings") == 0)
			b = "{\"data\":[{\"index\":0,\"embedding\":[NaN]},"
			    "{\"index\":1,\"embedding\":[1]}]}";
		else if (strcmp(path, "/bad-dup/embeddings") == 0)
			b = "{\"data\":[{\"index\":1,\"embedding\":[1]},"
			    "{\"index\":1,\"embedding\":[1]}]}";
		else if (strcmp(path, "/bad-html/embeddings") == 0)
			b = "<html>Bad Gateway</html>";
		reply(fd, 200, "", b);
	} else
		reply(fd, 404, "", "{\"error\":\"no such path\"}");
out:
	json_decref(root);
}

static void *
conn_thread(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char *req, *body;

	if ((req = read_request(fd, &body)) != NULL) {
		serve(fd, req, body);
		free(req);
	}
	close(fd);
	return NULL;
}

static void *
accept_thread(void *arg)
{
	int lfd = (int)(intptr_t)arg, fd;
	pthread_attr_t attr;
	pthread_t t;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	for (;;) {
		if ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) == -1)
			continue;
		if (pthread_create(
			&t, &attr, conn_thread, (void *)(intptr_t)fd) != 0)
			close(fd);
	}
	return NULL;
}

static int
listen_any(int *port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof(sin);
	int fd;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) == -1 ||
	    listen(fd, 256) == -1)
		return -1;
	*port = ntohs(sin.sin_port);
	return fd;
}

/* ---- The worker side. ---- */

static struct event_base *base;
static struct wrk_ctx ctx;
static Palyra__Ipc__WorkerConfig wconf;
#define NPROV 32
static Palyra__Ipc__ProviderConfig provs[NPROV];
static Palyra__Ipc__ProviderConfig *provp[NPROV];
static char urls[NPROV][128];

/* A provider named NAME of type openai-compatible at /PATH. */
static void
provider_add(const char *name, const char *type, const char *path,
    const char *model, const char *key)
{
	size_t i = wconf.n_providers++;

	assert_true(i < NPROV);
	palyra__ipc__provider_config__init(&provs[i]);
	provs[i].name = (char *)name;
	provs[i].type = (char *)type;
	snprintf(urls[i], sizeof(urls[i]), "http://127.0.0.1:%d/%s/", srv_port,
	    path);
	provs[i].base_url = urls[i];
	provs[i].embedding_model = (char *)model;
	if (key != NULL) {
		provs[i].api_key.data = (uint8_t *)key;
		provs[i].api_key.len = strlen(key);
	}
	provs[i].timeout_total_ms = 15000;
	provp[i] = &provs[i];
}

struct outcome {
	int calls;
	char error[EMBED_ERROR_MAX];
	size_t n, dim;
	float *vectors;
	uint64_t tokens;
	int lexical;
};

static void
done_cb(const struct wrk_embed_result *res, void *arg)
{
	struct outcome *o = arg;

	o->calls++;
	o->lexical = res->lexical;
	if (res->error != NULL) {
		assert_null(res->vectors);
		snprintf(o->error, sizeof(o->error), "%s", res->error);
		return;
	}
	o->n = res->n;
	o->dim = res->dim;
	o->tokens = res->prompt_tokens;
	o->vectors = malloc(res->n * res->dim * sizeof(float));
	assert_non_null(o->vectors);
	memcpy(o->vectors, res->vectors, res->n * res->dim * sizeof(float));
}

static void
loop_until(int (*cond)(void *), void *arg, int ms)
{
	int64_t end = wrk_now_ms() + ms;

	while (!cond(arg) && wrk_now_ms() < end)
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK),
		    usleep(1000);
}

static int
called(void *arg)
{
	return ((struct outcome *)arg)->calls > 0;
}

/* Runs one request to its end; the outcome in o. */
static void
run(const char *provider, const char *const *texts, size_t n, struct outcome *o)
{
	struct wrk_embed_req *r;

	memset(o, 0, sizeof(*o));
	r = wrk_embed(&ctx, provider, texts, n, done_cb, o);
	assert_non_null(r);
	/* Never from inside wrk_embed(). */
	assert_int_equal(o->calls, 0);
	loop_until(called, o, 10000);
	assert_int_equal(o->calls, 1);
}

static const char *const three[] = {"t 0", "t 1", "t 2"};

static void
check_vectors(const struct outcome *o, size_t n)
{
	size_t i;

	assert_int_equal(o->error[0], '\0');
	assert_int_equal(o->n, n);
	assert_int_equal(o->dim, 3);
	for (i = 0; i < n; i++) {
		assert_true(o->vectors[i * 3] == (float)i);
		assert_true(o->vectors[i * 3 + 1] == (float)i + 0.5f);
		assert_true(o->vectors[i * 3 + 2] == -1.0f);
	}
}

static void
test_net_order(void **state)
{
	struct outcome o;

	run("order", three, 3, &o);
	check_vectors(&o, 3);
	assert_int_equal(o.tokens, 3);
	assert_int_equal(o.lexical, 0);
	assert_int_equal(n_order, 1);
	free(o.vectors);
}

static void
test_net_batches(void **state)
{
	char *texts[150];
	struct outcome o;
	size_t i;

	for (i = 0; i < 150; i++)
		assert_true(asprintf(&texts[i], "t %zu", i) > 0);
	run("big", (const char *const *)texts, 150, &o);
	check_vectors(&o, 150);
	assert_int_equal(n_big, 3);
	assert_int_equal(big_sizes[0], WRK_EMBED_BATCH);
	assert_int_equal(big_sizes[1], WRK_EMBED_BATCH);
	assert_int_equal(big_sizes[2], 150 - 2 * WRK_EMBED_BATCH);
	assert_int_equal(o.tokens, 150);
	free(o.vectors);
	for (i = 0; i < 150; i++)
		free(texts[i]);
}

static void
test_net_retry(void **state)
{
	struct outcome o;

	run("flaky", three, 3, &o);
	check_vectors(&o, 3);
	assert_int_equal(n_flaky, 2);
	free(o.vectors);

	/* Always 503: given up after the attempts, the reason named. */
	run("fail", three, 3, &o);
	assert_int_equal(n_fail, WRK_PROVIDER_ATTEMPTS);
	assert_non_null(strstr(o.error, "provider fail: HTTP 503"));
	assert_non_null(strstr(o.error, "overloaded"));
	assert_non_null(strstr(o.error, "after 3 attempts"));
}

static void
test_net_malformed(void **state)
{
	static const struct {
		const char *provider, *want;
	} cases[] = {
	    {"bad-noindex", "data[0] has no index"},
	    {"bad-dim", "index 1 has dimension 1, not 2"},
	    {"bad-string", "non-number"},
	    {"bad-nan", "not JSON"},
	    {"bad-dup", "index 1 appears twice"},
	    {"bad-html", "not JSON"},
	};
	static const char *const two[] = {"t 0", "t 1"};
	struct outcome o;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		run(cases[i].provider, two, 2, &o);
		if (strstr(o.error, cases[i].want) == NULL)
			fail_msg("%s: \"%s\"", cases[i].provider, o.error);
		assert_non_null(strstr(o.error, "malformed embeddings answer"));
		/* Not retried: one attempt only. */
		assert_null(strstr(o.error, "attempts"));
	}
}

static void
test_net_auth(void **state)
{
	struct outcome o;

	run("auth", three, 3, &o);
	check_vectors(&o, 3);
	free(o.vectors);
	assert_string_equal(auth_seen, "Bearer " KEY);
	run("noauth", three, 3, &o);
	check_vectors(&o, 3);
	free(o.vectors);
	assert_string_equal(noauth_seen, "(none)");

	/* A 401 whose message echoes the key: named, the key is not. */
	run("denied", three, 3, &o);
	assert_non_null(strstr(o.error, "provider denied: HTTP 401"));
	assert_non_null(strstr(o.error, "invalid_api_key"));
	assert_non_null(strstr(o.error, "Incorrect API key provided"));
	assert_null(strstr(o.error, KEY));
	assert_null(strstr(o.error, "0123456789abcdef"));
}

static void
test_refusals(void **state)
{
	struct outcome o;
	const char *texts[2] = {"a", NULL};
	char *big;

	run("no-model", three, 3, &o);
	assert_string_equal(o.error, "provider no-model has no "
				     "embedding-model");
	run("claude", three, 3, &o);
	assert_string_equal(o.error, "provider claude is of type anthropic, "
				     "which has no embeddings API");
	run("nope", three, 3, &o);
	assert_string_equal(o.error, "unknown provider \"nope\"");
	run("refused", three, 3, &o);
	assert_non_null(strstr(o.error, "provider refused: cannot connect"));

	/* Bad arguments: no request, no callback. */
	memset(&o, 0, sizeof(o));
	errno = 0;
	assert_null(wrk_embed(&ctx, "order", three, 0, done_cb, &o));
	assert_int_equal(errno, EINVAL);
	assert_null(wrk_embed(&ctx, "order", texts, 2, done_cb, &o));
	assert_int_equal(errno, EINVAL);
	assert_null(wrk_embed(
	    &ctx, "order", three, WRK_EMBED_TEXTS_MAX + 1, done_cb, &o));
	assert_int_equal(errno, EINVAL);
	big = malloc(WRK_EMBED_TEXT_MAX + 2);
	assert_non_null(big);
	memset(big, 'a', WRK_EMBED_TEXT_MAX + 1);
	big[WRK_EMBED_TEXT_MAX + 1] = '\0';
	texts[1] = big;
	assert_null(wrk_embed(&ctx, "order", texts, 2, done_cb, &o));
	assert_int_equal(errno, E2BIG);
	free(big);
	assert_int_equal(o.calls, 0);
}

static void
test_offline_async(void **state)
{
	struct outcome o;
	float v[WRK_EMBED_OFFLINE_DIM];

	run(NULL, three, 3, &o);
	assert_int_equal(o.error[0], '\0');
	assert_int_equal(o.lexical, 1);
	assert_int_equal(o.n, 3);
	assert_int_equal(o.dim, WRK_EMBED_OFFLINE_DIM);
	lex("t 1", v);
	assert_memory_equal(o.vectors + WRK_EMBED_OFFLINE_DIM, v, sizeof(v));
	free(o.vectors);
	/* A provider of type offline embeds lexically too. */
	run("local", three, 3, &o);
	assert_int_equal(o.lexical, 1);
	assert_int_equal(o.dim, WRK_EMBED_OFFLINE_DIM);
	free(o.vectors);
}

static int
hold_seen(void *arg)
{
	return n_hold_seen >= *(int *)arg;
}

static void
test_cancel(void **state)
{
	struct outcome o, o2;
	struct wrk_embed_req *r;
	int want = 1;

	/* Cancelled before its first step. */
	memset(&o, 0, sizeof(o));
	r = wrk_embed(&ctx, "order", three, 3, done_cb, &o);
	assert_non_null(r);
	wrk_embed_cancel(r);
	r = wrk_embed(&ctx, NULL, three, 3, done_cb, &o);
	assert_non_null(r);
	wrk_embed_cancel(r);
	r = wrk_embed(&ctx, "nope", three, 3, done_cb, &o);
	assert_non_null(r);
	wrk_embed_cancel(r);

	/* Cancelled while the server holds the request. */
	r = wrk_embed(&ctx, "hold", three, 3, done_cb, &o);
	assert_non_null(r);
	loop_until(hold_seen, &want, 5000);
	assert_int_equal(n_hold_seen, 1);
	wrk_embed_cancel(r);
	/* Meanwhile another request runs to its end on the same loop. */
	run("order", three, 3, &o2);
	check_vectors(&o2, 3);
	free(o2.vectors);
	loop_until(called, &o, 300);
	assert_int_equal(o.calls, 0);

	/* Left in flight: wrk_embed_free() cancels, no callback. */
	r = wrk_embed(&ctx, "hold", three, 3, done_cb, &o);
	assert_non_null(r);
	want = 2;
	loop_until(hold_seen, &want, 5000);
	assert_int_equal(n_hold_seen, 2);
	wrk_embed_free(&ctx);
	assert_null(ctx.embed);
	loop_until(called, &o, 200);
	assert_int_equal(o.calls, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_lexical_deterministic),
	    cmocka_unit_test(test_lexical_similarity),
	    cmocka_unit_test(test_lexical_empty),
	    cmocka_unit_test(test_config_directive),
	    cmocka_unit_test(test_parse),
	    cmocka_unit_test(test_net_order),
	    cmocka_unit_test(test_net_batches),
	    cmocka_unit_test(test_net_retry),
	    cmocka_unit_test(test_net_malformed),
	    cmocka_unit_test(test_net_auth),
	    cmocka_unit_test(test_refusals),
	    cmocka_unit_test(test_offline_async),
	    cmocka_unit_test(test_cancel),
	};
	static const char *const bad[] = {"bad-noindex", "bad-dim",
	    "bad-string", "bad-nan", "bad-dup", "bad-html"};
	char pins[64];
	pthread_t th;
	size_t i;
	int lfd, dead, dead_port, rc;

	log_init("test_embed", NULL, 0, 1);
	if ((lfd = listen_any(&srv_port)) < 0 ||
	    (dead = listen_any(&dead_port)) < 0)
		return 1;
	close(dead); /* nothing listens there now */
	if (pthread_create(&th, NULL, accept_thread, (void *)(intptr_t)lfd))
		return 1;
	snprintf(pins, sizeof(pins), "127.0.0.1:%d", srv_port);
	if (wrk_http_prepare(pins) != 0)
		return 1;
	if ((base = event_base_new()) == NULL)
		return 1;

	palyra__ipc__worker_config__init(&wconf);
	wconf.providers = provp;
	provider_add(
	    "order", "openai-compatible", "order", "embed-small", NULL);
	provider_add("big", "openai-compatible", "big", "embed-small", NULL);
	provider_add("flaky", "openai-compatible", "flaky", "m", NULL);
	provider_add("fail", "openai-compatible", "fail", "m", NULL);
	provider_add("auth", "openai", "auth", "m", KEY);
	provider_add("noauth", "openai-compatible", "noauth", "m", NULL);
	provider_add("denied", "openai-compatible", "denied", "m", KEY);
	provider_add("hold", "openai-compatible", "hold", "m", NULL);
	provider_add("no-model", "openai-compatible", "order", "", NULL);
	provider_add("claude", "anthropic", "order", "m", KEY);
	provider_add("local", "offline", "x", "", NULL);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		provider_add(bad[i], "openai-compatible", bad[i], "m", NULL);
	provider_add("refused", "openai-compatible", "x", "m", NULL);
	snprintf(urls[wconf.n_providers - 1], sizeof(urls[0]),
	    "http://127.0.0.1:%d", dead_port);
	provs[wconf.n_providers - 1].timeout_connect_ms = 2000;
	ctx.base = base;
	ctx.config = &wconf;

	rc = cmocka_run_group_tests(tests, NULL, NULL);
	wrk_embed_free(&ctx);
	event_base_free(base);
	return rc;
}
