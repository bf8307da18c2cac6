# grpc.sh: the gRPC row of `make bench`. Sourced by tests/bench/run.sh, which
# defines `row NAME VALUE CEILNAME CEILVALUE` and PALYRA_BUILD.
#
# Ceiling: nghttpd (h2c) serving a ~20-byte file. Figure: palyrad's gRPC
# GetHealth (unary, empty request) under the same h2load shape. Both must
# answer every request with a 2xx, else the function fails.

BENCH_GRPC_N=${BENCH_GRPC_N:-50000}
BENCH_GRPC_SHAPE=${BENCH_GRPC_SHAPE:-"-c 8 -m 32"}

# Prints a free loopback TCP port.
_bg_free_port() {
	/usr/bin/python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# _bg_poll SECONDS CMD...: runs CMD every 20 ms until it succeeds.
_bg_poll() {
	local deadline=$(( $(date +%s%N) + $1 * 1000000000 )); shift
	until "$@" >/dev/null 2>&1; do
		(( $(date +%s%N) < deadline )) || return 1
		sleep 0.02
	done
}

# _bg_h2load LABEL ARGS...: runs h2load, checks every request got a 2xx,
# prints the requests/s.
_bg_h2load() {
	local label=$1 out rps ok; shift
	out=$(h2load -n "$BENCH_GRPC_N" $BENCH_GRPC_SHAPE "$@" 2>&1) || {
		printf 'bench_grpc: h2load (%s) failed:\n%s\n' "$label" "$out" >&2
		return 1
	}
	ok=$(sed -n 's/^status codes: \([0-9]*\) 2xx.*/\1/p' <<<"$out")
	if [[ "$ok" != "$BENCH_GRPC_N" ]]; then
		printf 'bench_grpc: %s: %s of %s requests got a 2xx:\n%s\n' \
			"$label" "${ok:-0}" "$BENCH_GRPC_N" "$out" >&2
		return 1
	fi
	rps=$(sed -n 's/^finished in [^,]*, \([0-9.]*\) req\/s.*/\1/p' <<<"$out")
	[[ -n "$rps" ]] || { echo "bench_grpc: no req/s in h2load output" >&2; return 1; }
	printf '%.0f\n' "$rps"
}

# Runs in a subshell so that its trap stops exactly what it started.
# Prints "CEIL FIGURE" on success.
_bg_measure() (
	set -u
	build=${PALYRA_BUILD:?PALYRA_BUILD not set}
	dir=$(mktemp -d "${TMPDIR:-/tmp}/palyra-bench-grpc.XXXXXX")
	ng_pid="" pd_pid=""
	cleanup() {
		local p
		for p in $pd_pid $ng_pid; do
			kill -TERM "$p" 2>/dev/null
		done
		for p in $pd_pid $ng_pid; do
			# palyrad stops within 5 s; then it is killed.
			for _ in $(seq 300); do kill -0 "$p" 2>/dev/null || break; sleep 0.02; done
			kill -KILL "$p" 2>/dev/null
			wait "$p" 2>/dev/null
		done
		rm -rf "$dir"
	}
	trap cleanup EXIT
	trap 'exit 130' INT TERM

	# Ceiling: nghttpd, small file.
	mkdir -p "$dir/www"
	printf 'palyra bench small\n' >"$dir/www/small.txt"	# 19 bytes
	ng_port=$(_bg_free_port)
	/usr/sbin/nghttpd --no-tls -d "$dir/www" "$ng_port" >"$dir/nghttpd.log" 2>&1 &
	ng_pid=$!
	_bg_poll 10 curl -sf --http2-prior-knowledge -o /dev/null \
		"http://127.0.0.1:$ng_port/small.txt" ||
		{ echo "bench_grpc: nghttpd not ready" >&2; cat "$dir/nghttpd.log" >&2; exit 1; }
	ceil=$(_bg_h2load nghttpd "http://127.0.0.1:$ng_port/small.txt") || exit 1
	kill -TERM "$ng_pid"; wait "$ng_pid" 2>/dev/null; ng_pid=""

	# palyrad, GetHealth.
	read -r gport hport < <(/usr/bin/python3 -c 'import socket
ps = set()
while len(ps) < 2:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); ps.add(s.getsockname()[1]); s.close()
print(*sorted(ps))')
	cat >"$dir/palyrad.conf" <<-CONF
	state-dir "$dir/state"
	listen grpc 127.0.0.1:$gport
	listen http 127.0.0.1:$hport
	journal { durability full }
	provider "offline" { type offline }
	tenant "default" { agent "assistant" { providers "offline"; system-prompt "You are a helpful assistant." } }
	CONF
	"$build/bin/palyrad" -d -f "$dir/palyrad.conf" >"$dir/palyrad.log" 2>&1 &
	pd_pid=$!
	printf '\0\0\0\0\0' >"$dir/gethealth.bin"	# gRPC frame: empty GetHealthRequest
	url="http://127.0.0.1:$gport/palyra.v1.GatewayService/GetHealth"
	grpc_ok() {
		kill -0 "$pd_pid" 2>/dev/null || return 0	# died: stop polling
		curl -sf --http2-prior-knowledge -o /dev/null -X POST \
			--data-binary @"$dir/gethealth.bin" \
			-H 'content-type: application/grpc' -H 'te: trailers' "$url" &&
		curl -sf -o /dev/null "http://127.0.0.1:$hport/healthz"
	}
	_bg_poll 10 grpc_ok && kill -0 "$pd_pid" 2>/dev/null ||
		{ echo "bench_grpc: palyrad not ready" >&2; cat "$dir/palyrad.log" >&2; exit 1; }
	# The answer must be a real GetHealth, not an HTTP 200 carrying an error.
	curl -s --http2-prior-knowledge -X POST --data-binary @"$dir/gethealth.bin" \
		-H 'content-type: application/grpc' -H 'te: trailers' \
		-D "$dir/headers" -o "$dir/reply" "$url"
	if ! grep -aqi '^grpc-status: *0' "$dir/headers" || ! grep -aq SERVING "$dir/reply"; then
		echo "bench_grpc: GetHealth did not succeed:" >&2
		cat "$dir/headers" "$dir/reply" >&2; echo >&2
		exit 1
	fi
	fig=$(_bg_h2load palyrad -d "$dir/gethealth.bin" \
		-H 'content-type: application/grpc' -H 'te: trailers' "$url") ||
		{ tail -n 50 "$dir/palyrad.log" >&2; exit 1; }
	echo "$ceil $fig"
)

bench_grpc() {
	local res ceil fig
	res=$(_bg_measure) || { echo "bench_grpc: failed" >&2; return 1; }
	read -r ceil fig <<<"$res"
	row "gRPC GetHealth req/s (h2load)" "$fig" "nghttpd small file" "$ceil"
}
