"""fakeprov: a scripted fake model provider speaking the real wire formats.

OpenAI Chat Completions streaming (POST .../chat/completions) and Anthropic
Messages streaming (POST .../messages), over HTTP/1.1 with chunked bodies,
on a loopback port. Stdlib only, so that it runs with Debian's python3.

The first path segment names the "upstream" (one provider block of
palyrad.conf points at http://127.0.0.1:PORT/NAME/v1), so that one server
plays many providers and the log tells them apart.

The scenario of a request is chosen by the text of its first user message:
"fp:NAME key=value ..." (anything else: a short text reply). Scenarios:

  text n=5 gap=0 p=17 c=29   n tokens "t0", " t1", ..., gap seconds apart;
                             ka=1 sends a keep-alive before each token
                             (openai: ": keep-alive" comments; anthropic:
                             "event: ping" and a comment), kawait=S sends
                             keep-alives every 0.3 s for S seconds first;
                             crlf=1 ends lines with CRLF; p/c: usage counts
  utf8                       multi-byte text, every data line written in
                             pieces split mid-line and mid-UTF-8 sequence,
                             each piece its own socket write after a pause
  tool                       without a tool result in the request: a call
                             of time.now (arguments split over chunks);
                             with one: the text "It is now: <result>"
  toolloop                   a call of time.now, tool result or not
                             (never answers: for the agents' run limits)
  ratelimit key=K ra=1       the first request of key K: 429 with
                             Retry-After ra; the next ones: text
  fail status=500 on=NAME    an HTTP error from upstream NAME, text from
                             any other
  stall n=2 hold=8           n tokens, then silence for hold seconds
  slowhead delay=3           no response at all for delay seconds, then text
  badjson n=1                n tokens, then a data line of broken JSON
  badsse n=1                 n tokens, then an event with a NUL byte
  cut n=2                    n tokens, then the body ends mid-event
  huge n=1 size=98304        n tokens, then one event of size bytes (over
                             the worker's largest server-sent event)
  aerror n=1                 (anthropic) n tokens, then "event: error"
  echokey                    one token carrying the key the request
                             sent (to prove it is redacted), then " end"
  idle dur=30 ka=1           keep-alives every ka seconds for dur seconds,
                             then one token and the end (holds a stream)

OpenAI-compatible embeddings (POST .../embeddings, JSON in and out): each
input text gets a deterministic unit vector of dimension 8 (a hash of the
text; the same text, the same vector), the data entries in reverse index
order (clients must reorder by "index"), usage.prompt_tokens the number of
words. The scenario is chosen by the first input text the same way:

  embed dim=8                vectors of dimension dim (1 to 4096)
  ratelimit key=K ra=1       as above, answered with vectors
  fail status=500 on=NAME    as above, answered with vectors
  embedbad kind=K            a 200 with a malformed answer: K is noindex,
                             dim (two dimensions), string (a string in a
                             vector), dup (an index twice), missing (one
                             vector short) or html (not JSON)

A request without a model or a non-empty "input" of strings gets 400.

A request the real API would refuse (an empty message list, a tool name
outside ^[a-zA-Z0-9_-]{1,64}$, a tool result answering no call of the
message before it; for Anthropic also a missing max_tokens or a role other
than user/assistant) gets the API's 400 invalid_request_error instead,
unless the server was made with strict=False (--lenient).

Every request is recorded (see Entry): headers, JSON body, the scenario,
each token with the monotonic time its write began, and whether and
when the client closed the connection before the response ended (a write
that failed, or the socket turning readable with EOF while we wait).

In-process use: srv = FakeProvider().start(); srv.url("fake") ->
"http://127.0.0.1:PORT/fake/v1"; srv.entries(upstream=...); srv.stop().
Standalone: python3 fakeprov.py [--port N]; GET /_log returns the log as
JSON, POST /_reset clears it.
"""
import argparse
import hashlib
import http.server
import json
import re
import select
import socket
import threading
import time

SCENARIO_RE = re.compile(r"fp:(\w+)((?:[ \t]+\w+=[^\s\"\\]+)*)")
UTF8_TOKENS = ["Grüße", ", ", "naïve", " café", " — ", "日本", "語", " ", "🎉",
               " ok"]
DEFAULT_USAGE = (17, 29)


class ClientGone(Exception):
    """The client closed the connection while we were streaming."""


class Entry:
    """One request as the fake server saw it."""

    def __init__(self, seq, method, path, headers, body):
        self.seq = seq
        self.method = method
        self.path = path
        self.upstream = path.strip("/").split("/", 1)[0]
        self.headers = headers          # lower-cased names
        self.body = body                # parsed JSON, or None
        self.raw_body = b""
        self.api = "anthropic" if path.rstrip("/").endswith("/messages") \
            else "openai"
        self.scenario = ""
        self.params = {}
        self.status = None
        self.t_start = time.monotonic()
        self.t_end = None               # the response ended (any way)
        self.sent = []                  # [(t, kind, text)] after each write
        self.closed_by_peer = False
        self.t_closed = None
        self.completed = False          # the whole scripted body was sent
        self.tool_result = None         # (id, content) seen in the request

    def as_dict(self):
        return {
            "seq": self.seq, "method": self.method, "path": self.path,
            "upstream": self.upstream, "api": self.api,
            "headers": self.headers, "body": self.body,
            "scenario": self.scenario, "params": self.params,
            "status": self.status, "t_start": self.t_start,
            "t_end": self.t_end, "sent": self.sent,
            "closed_by_peer": self.closed_by_peer,
            "t_closed": self.t_closed, "completed": self.completed,
            "tool_result": self.tool_result,
        }


def _embedding(text, dim):
    """A deterministic unit vector for text: its SHA-256 stretched."""
    out, i = [], 0
    while len(out) < dim:
        h = hashlib.sha256(b"%d:" % i + text.encode()).digest()
        out += [(b - 127.5) / 127.5 for b in h]
        i += 1
    out = out[:dim]
    n = sum(x * x for x in out) ** 0.5 or 1.0
    return [round(x / n, 6) for x in out]


def _first_user_text(api, body):
    msgs = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(msgs, list):
        return ""
    for m in msgs:
        if not isinstance(m, dict) or m.get("role") != "user":
            continue
        c = m.get("content")
        if isinstance(c, str):
            return c
        if isinstance(c, list):
            return "".join(b.get("text", "") for b in c
                           if isinstance(b, dict) and b.get("type") == "text")
    return ""


def _tool_result(api, body):
    """(tool call id, content text) of the request's tool result, or None."""
    for m in body.get("messages") or []:
        if not isinstance(m, dict):
            continue
        if api == "openai" and m.get("role") == "tool":
            c = m.get("content")
            if isinstance(c, list):
                c = "".join(b.get("text", "") for b in c if isinstance(b, dict))
            return (m.get("tool_call_id"), c)
        if api == "anthropic" and isinstance(m.get("content"), list):
            for b in m["content"]:
                if isinstance(b, dict) and b.get("type") == "tool_result":
                    c = b.get("content")
                    if isinstance(c, list):
                        c = "".join(x.get("text", "") for x in c
                                    if isinstance(x, dict))
                    return (b.get("tool_use_id"), c)
    return None


def _declared_tool(api, body, want="time.now"):
    """The name under which the request offers want (a provider may have to
    spell "time.now" as "time_now" for the API), or None."""
    names = []
    for t in body.get("tools") or []:
        if not isinstance(t, dict):
            continue
        if api == "openai":
            f = t.get("function") or {}
            names.append(f.get("name"))
        else:
            names.append(t.get("name"))
    for n in names:
        if n == want:
            return n
    for n in names:
        if isinstance(n, str) and n.replace("_", ".") == want:
            return n
    return None


TOOL_NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def _validate(api, body):
    """What the real APIs refuse with 400 invalid_request_error, checked
    like they check it: (param, message) of the first problem, or None."""
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        return ("messages", "'messages' must be a non-empty array")
    if not isinstance(body.get("model"), str) or not body["model"]:
        return ("model", "you must provide a model parameter")
    for i, t in enumerate(body.get("tools") or []):
        if api == "openai":
            name = ((t or {}).get("function") or {}).get("name")
            if not isinstance(name, str) or not TOOL_NAME_RE.match(name):
                return (f"tools[{i}].function.name",
                        f"Invalid 'tools[{i}].function.name': string does "
                        "not match pattern. Expected a string that matches "
                        "the pattern '^[a-zA-Z0-9_-]+$'.")
        else:
            name = (t or {}).get("name")
            if not isinstance(name, str) or not TOOL_NAME_RE.match(name):
                return (f"tools.{i}.name", f"tools.{i}.custom.name: String "
                        "should match pattern '^[a-zA-Z0-9_-]{1,64}$'")
    if api == "anthropic":
        if not isinstance(body.get("max_tokens"), int):
            return ("max_tokens", "max_tokens: Field required")
        for i, m in enumerate(msgs):
            if not isinstance(m, dict) or m.get("role") not in ("user",
                                                                 "assistant"):
                return (f"messages.{i}.role", f"messages.{i}.role: Input "
                        "should be 'user' or 'assistant'")
    # A tool result answers a call of the assistant message before it.
    calls = set()
    for i, m in enumerate(msgs):
        if not isinstance(m, dict):
            return (f"messages[{i}]", f"messages[{i}] is not an object")
        c = m.get("content")
        if api == "openai":
            if m.get("role") == "assistant":
                calls = {tc.get("id") for tc in m.get("tool_calls") or []
                         if isinstance(tc, dict)}
            elif m.get("role") == "tool":
                if m.get("tool_call_id") not in calls:
                    return (f"messages.[{i}].role", "Invalid parameter: "
                            "messages with role 'tool' must be a response to "
                            "a preceeding message with 'tool_calls'.")
            else:
                calls = set()
        else:
            blocks = c if isinstance(c, list) else []
            if m.get("role") == "assistant":
                calls = {b.get("id") for b in blocks if isinstance(b, dict)
                         and b.get("type") == "tool_use"}
            else:
                for b in blocks:
                    if isinstance(b, dict) and b.get("type") == "tool_result" \
                            and b.get("tool_use_id") not in calls:
                        return (f"messages.{i}.content", f"messages.{i}."
                                "content: unexpected `tool_use_id` found in "
                                "`tool_result` blocks. Each `tool_result` "
                                "block must have a corresponding `tool_use` "
                                "block in the previous message.")
                calls = set()
    return None


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 2048
    allow_reuse_address = True


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fakeprov/1"
    # TCP_NODELAY, as a provider's real front end: with Nagle's algorithm a
    # chunk written after an unacknowledged one waits for the worker's
    # delayed ACK (about 40 ms), which is no property of palyrad.
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):  # quiet
        pass

    # -- plumbing

    def _read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                line = self.rfile.readline()
                n = int(line.split(b";")[0].strip() or b"0", 16)
                if n == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(n)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def _gone(self, e=None):
        ent = self.entry
        if not ent.closed_by_peer:
            ent.closed_by_peer = True
            ent.t_closed = time.monotonic()
        self.close_connection = True
        raise ClientGone() from e

    def _write(self, data):
        """One HTTP chunk, one socket write."""
        if not data:
            return
        try:
            self.wfile.write(b"%x\r\n" % len(data) + data + b"\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError) as e:
            self._gone(e)

    def _wait(self, secs):
        """Sleeps secs, noticing meanwhile if the client closes."""
        deadline = time.monotonic() + secs
        sock = self.connection
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                r, _, _ = select.select([sock], [], [], left)
            except (OSError, ValueError) as e:
                self._gone(e)
            if r:
                try:
                    peek = sock.recv(1, socket.MSG_PEEK)
                except (ConnectionResetError, OSError) as e:
                    self._gone(e)
                if peek == b"":
                    self._gone()
                time.sleep(min(0.01, max(left, 0)))  # bytes we do not expect

    def _json_reply(self, status, obj, extra=()):
        data = json.dumps(obj).encode()
        self.entry.status = status
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        try:
            self.wfile.write(data)
            self.wfile.flush()
        except OSError as e:
            self._gone(e)
        self.entry.completed = True

    def _stream_head(self):
        self.entry.status = 200
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()

    def _stream_end(self):
        try:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError as e:
            self._gone(e)
        self.entry.completed = True

    # -- requests

    def do_GET(self):
        fp = self.server.fp
        if self.path.split("?")[0] == "/_log":
            data = json.dumps([e.as_dict() for e in fp.entries()]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self._plain(404, b"not found\n")

    def _plain(self, status, data):
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        fp = self.server.fp
        raw = self._read_body()
        if self.path == "/_reset":
            fp.reset()
            self._plain(200, b"ok\n")
            return
        path = self.path.split("?")[0]
        if path.endswith("/embeddings"):
            self._embeddings_request(fp, path, raw)
            return
        if not (path.endswith("/chat/completions") or path.endswith("/messages")):
            self._plain(404, b"not found\n")
            return
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.entry = ent = fp._record(self.command, path, headers, body)
        ent.raw_body = raw
        try:
            self._serve(ent, body)
        except ClientGone:
            pass
        finally:
            ent.t_end = time.monotonic()
            with fp.cond:
                fp.cond.notify_all()

    def _serve(self, ent, body):
        if not isinstance(body, dict):
            self._error(400, "invalid_request_error", "body is not JSON")
            return
        bad = _validate(ent.api, body) if self.server.fp.strict else None
        if bad is not None:
            ent.scenario = "invalid"
            ent.params = {"param": bad[0], "message": bad[1]}
            self._error(400, "invalid_request_error", bad[1])
            return
        text = _first_user_text(ent.api, body)
        m = SCENARIO_RE.search(text)
        if m:
            ent.scenario = m.group(1)
            ent.params = dict(kv.split("=", 1) for kv in m.group(2).split())
        else:
            ent.scenario = "text"
            ent.params = {"n": "3"}
        ent.tool_result = _tool_result(ent.api, body)
        P = ent.params
        sc = ent.scenario
        if sc == "ratelimit":
            n = self.server.fp._count("ratelimit:" + P.get("key", ""))
            if n == 1:
                self._error(429, "rate_limit_error", "Rate limit reached",
                            extra=[("Retry-After", P.get("ra", "1"))])
                return
            sc = "text"
        if sc == "fail":
            if ent.upstream == P.get("on", ""):
                self._error(int(P.get("status", "500")), "server_error",
                            "The server had an error while processing "
                            "your request")
                return
            self._text(ent, body, [f"from {ent.upstream}"])
            return
        if sc == "slowhead":
            self._wait(float(P.get("delay", "3")))
            sc = "text"
        if sc == "tool":
            self._tool(ent, body)
            return
        if sc == "toolloop":
            # A call of time.now whatever the request holds: never an
            # answer (the agent's max-turns or max-tool-calls ends it).
            ent.tool_result = None
            self._tool(ent, body)
            return
        if sc == "echokey":
            auth = ent.headers.get("authorization", "")
            key = auth[7:] if auth.startswith("Bearer ") else \
                ent.headers.get("x-api-key", "")
            self._text(ent, body, [f"key: {key}", " end"])
            return
        if sc == "utf8":
            self._text(ent, body, UTF8_TOKENS, split=True)
            return
        n = int(P.get("n", "3"))
        toks = [f"t{i}" if i == 0 else f" t{i}" for i in range(n)]
        if sc in ("text", "stall", "badjson", "badsse", "cut", "aerror",
                  "idle", "huge"):
            self._text(ent, body, toks, tail=sc)
            return
        self._error(400, "invalid_request_error", f"unknown scenario {sc}")

    # -- embeddings (OpenAI-compatible)

    def _embeddings_request(self, fp, path, raw):
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.entry = ent = fp._record(self.command, path, headers, body)
        ent.raw_body = raw
        try:
            self._embeddings(ent, body)
        except ClientGone:
            pass
        finally:
            ent.t_end = time.monotonic()
            with fp.cond:
                fp.cond.notify_all()

    def _embeddings(self, ent, body):
        inp = body.get("input") if isinstance(body, dict) else None
        if isinstance(inp, str):
            inp = [inp]
        if not isinstance(body, dict):
            self._error(400, "invalid_request_error", "body is not JSON")
            return
        if not isinstance(body.get("model"), str) or not body["model"]:
            self._error(400, "invalid_request_error",
                        "you must provide a model parameter")
            return
        if not isinstance(inp, list) or not inp or len(inp) > 2048 or \
                not all(isinstance(t, str) for t in inp):
            self._error(400, "invalid_request_error",
                        "'input' must be a non-empty array of strings")
            return
        m = SCENARIO_RE.search(inp[0])
        ent.scenario = m.group(1) if m else "embed"
        ent.params = dict(kv.split("=", 1) for kv in m.group(2).split()) \
            if m else {}
        P = ent.params
        sc = ent.scenario
        if sc == "ratelimit":
            if self.server.fp._count("ratelimit:" + P.get("key", "")) == 1:
                self._error(429, "rate_limit_error", "Rate limit reached",
                            extra=[("Retry-After", P.get("ra", "1"))])
                return
        if sc == "fail" and ent.upstream == P.get("on", ""):
            self._error(int(P.get("status", "500")), "server_error",
                        "The server had an error while processing "
                        "your request")
            return
        dim = max(1, min(4096, int(P.get("dim", "8"))))
        data = [{"object": "embedding", "index": i,
                 "embedding": _embedding(t, dim)}
                for i, t in enumerate(inp)]
        data.reverse()
        if sc == "embedbad":
            kind = P.get("kind", "noindex")
            if kind == "html":
                data = None
            elif kind == "noindex":
                del data[0]["index"]
            elif kind == "dim":
                data[0]["embedding"] = data[0]["embedding"] + [0.0]
            elif kind == "string":
                data[0]["embedding"][0] = "0.5"
            elif kind == "dup" and len(data) > 1:
                data[1]["index"] = data[0]["index"]
            elif kind == "missing":
                del data[0]
        if data is None:
            raw = b"<html><body>502 Bad Gateway</body></html>"
            ent.status = 200
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)
            ent.completed = True
            return
        words = sum(len(t.split()) for t in inp)
        self._json_reply(200, {
            "object": "list", "data": data, "model": body["model"],
            "usage": {"prompt_tokens": words, "total_tokens": words}})

    def _error(self, status, etype, message, extra=()):
        if self.entry.api == "anthropic":
            obj = {"type": "error", "error": {"type": etype, "message": message}}
        else:
            obj = {"error": {"message": message, "type": etype, "param": None,
                             "code": None}}
        self._json_reply(status, obj, extra)

    # -- the two wire formats

    def _sse(self, data, event=None, split=False):
        """Writes one SSE event; data is a dict (JSON) or a str."""
        eol = "\r\n" if self.entry.params.get("crlf") == "1" else "\n"
        if not isinstance(data, str):
            data = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        text = (f"event: {event}{eol}" if event else "") + f"data: {data}{eol}{eol}"
        b = text.encode("utf-8")
        if not split:
            self._write(b)
            return
        # Pieces: mid-line (inside "data: "), then inside the first
        # multi-byte character, then the rest.
        cuts = {3}
        for i, ch in enumerate(b):
            if ch >= 0xC0:
                cuts.add(i + 1)
                break
        cuts.add(len(b) - 1)       # the blank line on its own
        last = 0
        for c in sorted(x for x in cuts if 0 < x < len(b)):
            self._write(b[last:c])
            self._wait(0.02)
            last = c
        self._write(b[last:])

    def _keepalive(self):
        if self.entry.api == "anthropic":
            self._sse({"type": "ping"}, event="ping")
        self._write(b": keep-alive\n\n")
        self.entry.sent.append((time.monotonic(), "keepalive", ""))

    def _text(self, ent, body, toks, split=False, tail="text"):
        P = ent.params
        gap = float(P.get("gap", "0"))
        p, c = int(P.get("p", DEFAULT_USAGE[0])), int(P.get("c", DEFAULT_USAGE[1]))
        model = body.get("model", "")
        self._stream_head()
        if tail == "idle":
            dur, ka = float(P.get("dur", "30")), float(P.get("ka", "1"))
            end = time.monotonic() + dur
            while time.monotonic() < end:
                self._keepalive()
                self._wait(min(ka, max(0.0, end - time.monotonic())))
        kawait = float(P.get("kawait", "0"))
        if kawait > 0:
            end = time.monotonic() + kawait
            while time.monotonic() < end:
                self._keepalive()
                self._wait(min(0.3, max(0.0, end - time.monotonic())))
        self._begin(ent, model, p)
        for i, t in enumerate(toks):
            if i > 0 and gap > 0:
                self._wait(gap)
            if P.get("ka") == "1" and tail != "idle":
                self._keepalive()
            t_emit = time.monotonic()
            self._delta(ent, model, t, split)
            ent.sent.append((t_emit, "token", t))
        if tail == "stall":
            self._wait(float(P.get("hold", "8")))
            self.close_connection = True    # no end of the body: cut
            return
        if tail == "badjson":
            self._write(b'data: {"choices":[{"index":0,"delta":{"content":"x"\n\n'
                        if ent.api == "openai" else
                        b'event: content_block_delta\ndata: {"type":"content_'
                        b'block_delta","index":0,"delta":{"type":"text_del\n\n')
            ent.sent.append((time.monotonic(), "malformed", ""))
            self._wait(float(P.get("hold", "5")))
            self._stream_end()
            return
        if tail == "badsse":
            self._write(b"data: {\"choices\":[]}\x00\n\n")
            ent.sent.append((time.monotonic(), "malformed", ""))
            self._wait(float(P.get("hold", "5")))
            self._stream_end()
            return
        if tail == "huge":
            big = "a" * int(P.get("size", str(96 * 1024)))
            ent.sent.append((time.monotonic(), "malformed", ""))
            self._sse(self._chunk(ent, model, {"content": big}))
            self._wait(float(P.get("hold", "5")))
            self._stream_end()
            return
        if tail == "cut":
            self._write(b'data: {"id":"chatcmpl-fake","object":"chat.comp')
            self.close_connection = True
            self._stream_end()
            return
        if tail == "aerror":
            self._sse({"type": "error", "error": {
                "type": "overloaded_error", "message": "Overloaded"}},
                event="error")
            ent.sent.append((time.monotonic(), "error", "Overloaded"))
            self._stream_end()
            return
        self._finish(ent, model, p, c, "stop")

    def _begin(self, ent, model, p):
        if ent.api == "anthropic":
            self._sse({"type": "message_start", "message": {
                "id": f"msg_fake{ent.seq}", "type": "message",
                "role": "assistant", "content": [], "model": model,
                "stop_reason": None, "stop_sequence": None,
                "usage": {"input_tokens": p, "output_tokens": 1}}},
                event="message_start")
            self._sse({"type": "content_block_start", "index": 0,
                       "content_block": {"type": "text", "text": ""}},
                      event="content_block_start")
            self._sse({"type": "ping"}, event="ping")
        else:
            self._sse(self._chunk(ent, model, {"role": "assistant",
                                               "content": ""}))

    def _chunk(self, ent, model, delta, finish=None):
        return {"id": f"chatcmpl-fake{ent.seq}",
                "object": "chat.completion.chunk",
                "created": int(time.time()), "model": model,
                "system_fingerprint": "fp_fake",
                "choices": [{"index": 0, "delta": delta, "logprobs": None,
                             "finish_reason": finish}]}

    def _delta(self, ent, model, t, split=False):
        if ent.api == "anthropic":
            self._sse({"type": "content_block_delta", "index": 0,
                       "delta": {"type": "text_delta", "text": t}},
                      event="content_block_delta", split=split)
        else:
            self._sse(self._chunk(ent, model, {"content": t}), split=split)

    def _finish(self, ent, model, p, c, reason, block=0):
        if ent.api == "anthropic":
            self._sse({"type": "content_block_stop", "index": block},
                      event="content_block_stop")
            self._sse({"type": "message_delta", "delta": {
                "stop_reason": "end_turn" if reason == "stop" else "tool_use",
                "stop_sequence": None}, "usage": {"output_tokens": c}},
                event="message_delta")
            self._sse({"type": "message_stop"}, event="message_stop")
        else:
            self._sse(self._chunk(ent, model, {}, reason))
            so = ent.body.get("stream_options") or {}
            if isinstance(so, dict) and so.get("include_usage"):
                self._sse({"id": f"chatcmpl-fake{ent.seq}",
                           "object": "chat.completion.chunk",
                           "created": int(time.time()), "model": model,
                           "choices": [], "usage": {
                               "prompt_tokens": p, "completion_tokens": c,
                               "total_tokens": p + c}})
            self._sse("[DONE]")
        ent.sent.append((time.monotonic(), "end", ""))
        self._stream_end()

    def _tool(self, ent, body):
        model = body.get("model", "")
        p, c = DEFAULT_USAGE
        if ent.tool_result is not None:
            self._stream_head()
            self._begin(ent, model, p)
            t = f"It is now: {ent.tool_result[1]}"
            self._delta(ent, model, t)
            ent.sent.append((time.monotonic(), "token", t))
            self._finish(ent, model, p, c, "stop")
            return
        name = _declared_tool(ent.api, body)
        if name is None:
            self._error(400, "invalid_request_error",
                        "the request does not offer the tool time.now")
            return
        call_id = f"call_fake{ent.seq}" if ent.api == "openai" \
            else f"toolu_fake{ent.seq}"
        self._stream_head()
        if ent.api == "anthropic":
            self._begin(ent, model, p)
            self._delta(ent, model, "Let me look.")
            self._sse({"type": "content_block_stop", "index": 0},
                      event="content_block_stop")
            self._sse({"type": "content_block_start", "index": 1,
                       "content_block": {"type": "tool_use", "id": call_id,
                                         "name": name, "input": {}}},
                      event="content_block_start")
            for piece in ("", "{", "}"):
                self._sse({"type": "content_block_delta", "index": 1,
                           "delta": {"type": "input_json_delta",
                                     "partial_json": piece}},
                          event="content_block_delta")
            ent.sent.append((time.monotonic(), "tool_call", name))
            self._finish(ent, model, p, c, "tool_calls", block=1)
            return
        self._sse(self._chunk(ent, model, {"role": "assistant",
                                           "content": None}))
        self._sse(self._chunk(ent, model, {"tool_calls": [{
            "index": 0, "id": call_id, "type": "function",
            "function": {"name": name, "arguments": ""}}]}))
        for piece in ("{", "}"):
            self._sse(self._chunk(ent, model, {"tool_calls": [{
                "index": 0, "function": {"arguments": piece}}]}))
        ent.sent.append((time.monotonic(), "tool_call", name))
        self._finish(ent, model, p, c, "tool_calls")


class FakeProvider:
    """The server, run in a thread of the calling process."""

    def __init__(self, host="127.0.0.1", port=0, strict=True):
        """strict: refuse what the real APIs refuse (see _validate)."""
        self.strict = strict
        self.httpd = _Server((host, port), _Handler)
        self.httpd.fp = self
        self.host, self.port = self.httpd.server_address[:2]
        self.cond = threading.Condition()
        self._log = []
        self._counts = {}
        self._thread = None

    def start(self):
        self._thread = threading.Thread(target=self.httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(5)

    def url(self, upstream):
        return f"http://{self.host}:{self.port}/{upstream}/v1"

    def _record(self, method, path, headers, body):
        with self.cond:
            ent = Entry(len(self._log) + 1, method, path, headers, body)
            self._log.append(ent)
            self.cond.notify_all()
            return ent

    def _count(self, key):
        with self.cond:
            self._counts[key] = self._counts.get(key, 0) + 1
            return self._counts[key]

    def reset(self):
        with self.cond:
            self._log = []
            self._counts = {}

    def entries(self, upstream=None, tag=None):
        """The recorded requests, oldest first; tag: a substring of the
        first user message (e.g. a key=... the test put there)."""
        with self.cond:
            out = list(self._log)
        if upstream is not None:
            out = [e for e in out if e.upstream == upstream]
        if tag is not None:
            out = [e for e in out
                   if tag in _first_user_text(e.api, e.body or {})]
        return out

    def wait(self, pred, timeout, what="condition"):
        """Waits until pred() is true (re-checked at every request event)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                v = pred()
                if v:
                    return v
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"fake provider: timed out after {timeout}s "
                        f"waiting for {what}")
                self.cond.wait(min(left, 0.05))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--lenient", action="store_true",
                    help="accept requests the real APIs would refuse")
    a = ap.parse_args()
    fp = FakeProvider(a.host, a.port, strict=not a.lenient)
    print(f"fakeprov listening on http://{fp.host}:{fp.port}", flush=True)
    try:
        fp.httpd.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
