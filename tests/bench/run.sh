#!/usr/bin/env bash
# run.sh: the benchmark table of `make bench` (DESIGN section 11). Every
# figure is printed beside its ceiling measured in the same run, with the
# ratio. Also writes $PALYRA_BUILD/bench/results.json: an array of
# {name, value, unit, ceiling_name, ceiling, ratio}.
#
# Rows come from functions: bench_journal (here) and bench_grpc, which
# tests/bench/grpc.sh defines when it exists, then bench_providers and
# bench_front and bench_host (Python, tests/bench/providers.py, front.py and
# host.py). Each row is printed with row NAME VALUE CEILNAME CEILVALUE [UNIT
# [inv]]. The ratio is value / ceiling, in percent; a row given "inv" (a
# time beside a target) has ceiling / value instead, and its name says so:
# above 100% is then better than the target.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PALYRA_BUILD=${PALYRA_BUILD:-build}
PALYRA_BUILD=$(cd "$PALYRA_BUILD" && pwd)
export PALYRA_BUILD
results_json="$PALYRA_BUILD/bench/results.json"
results=()

# row NAME VALUE CEILNAME CEILVALUE [UNIT [inv]]: one line of the table and
# one JSON object for results.json.
row() {
	local name=$1 value=$2 ceil_name=$3 ceil=$4 unit=${5:-ops/s} ratio
	if [ "${6:-}" = inv ]; then
		ratio=$(awk -v v="$value" -v c="$ceil" \
			'BEGIN { if (v > 0) printf "%.1f", 100 * c / v; else print "0" }')
	else
		ratio=$(awk -v v="$value" -v c="$ceil" \
			'BEGIN { if (c > 0) printf "%.1f", 100 * v / c; else print "0" }')
	fi
	printf '%-50s | %9s | %-34s | %9s | %6s%%\n' \
		"$name" "$value" "$ceil_name" "$ceil" "$ratio"
	results+=("$(printf '{"name": "%s", "value": %s, "unit": "%s", "ceiling_name": "%s", "ceiling": %s, "ratio": %s}' \
		"$name" "$value" "$unit" "$ceil_name" "$ceil" "$ratio")")
}

header() {
	printf '%-50s | %9s | %-34s | %9s | %7s\n' \
		"figure" "value" "ceiling or reference" "value" "ratio"
	printf '%s\n' "$(printf -- '-%.0s' $(seq 1 120))"
}

# Journal: palyra-journald's durable, acknowledged appends against SQLite's
# own batched insert rate on the same disk.
bench_journal() {
	local out raw acked commit w p v
	out=$("$PALYRA_BUILD/bench/jbench" ${JBENCH_ARGS:-} 2>/dev/null) || {
		echo "run.sh: jbench failed" >&2
		"$PALYRA_BUILD/bench/jbench" -n 2000 >&2 || true
		return 1
	}
	raw=$(awk '$1 == "journal_raw_sqlite_rows_per_s" { print $2 }' <<<"$out")
	acked=$(awk '$1 == "journal_acked_appends_per_s" { print $2 }' <<<"$out")
	commit=$(awk '$1 == "journal_raw_sqlite_commit_ms" { print $2 }' <<<"$out")
	row "journal appends/s (durable, acked)" "$acked" \
		"raw SQLite batched insert" "$raw" "appends/s"
	# 1, 8 and 64 worker channels at durability full; the latency of an
	# acknowledgement beside one raw transaction of 256 rows (fsync).
	for w in 1 8 64; do
		acked=$(awk -v k="journal_acked_appends_per_s_w$w" \
			'$1 == k { print $2 }' <<<"$out")
		row "journal appends/s, $w writer(s), full" "$acked" \
			"raw SQLite batched insert" "$raw" "appends/s"
	done
	for w in 1 8 64; do
		for p in p50 p99; do
			v=$(awk -v k="journal_ack_${p}_ms_w$w" \
				'$1 == k { print $2 }' <<<"$out")
			row "journal ack latency $p, $w writer(s)" "$v" \
				"raw SQLite commit of 256 rows" "$commit" "ms"
		done
	done
}

# Network providers: tests/bench/providers.py prints its rows (relay
# latency per token, runs/s, worker RSS under 1,000 idle streams) through
# the fake provider, one tab-separated NAME VALUE CEILNAME CEIL UNIT a line.
bench_providers() {
	local out name value cname ceil unit st=0
	out=$(/usr/bin/python3 "$here/providers.py") || st=1
	while IFS=$'\t' read -r name value cname ceil unit; do
		[ -n "$name" ] && row "$name" "$value" "$cname" "$ceil" "$unit"
	done <<<"$out"
	return "$st"
}

# palyra-front: tests/bench/front.py prints its rows (RunStream runs/s at
# 64 streams and time to first event beside GetHealth from the same client;
# the front's memory per 10,000 idle streams), as bench_providers does.
bench_front() {
	local out name value cname ceil unit st=0
	out=$(/usr/bin/python3 "$here/front.py") || st=1
	while IFS=$'\t' read -r name value cname ceil unit; do
		[ -n "$name" ] && row "$name" "$value" "$cname" "$ceil" "$unit"
	done <<<"$out"
	return "$st"
}

# Start and memory: tests/bench/host.py prints its rows (cold start to
# serving beside the 0.2 s target and beside nghttpd's own start; an idle
# worker's RSS and Pss; the whole host's Pss with 1, 1,000 lazy and 100
# active tenants), as bench_providers does, a sixth field "inv" marking a
# row whose ratio is ceiling / value.
bench_host() {
	local out name value cname ceil unit dir st=0
	out=$(/usr/bin/python3 "$here/host.py") || st=1
	while IFS=$'\t' read -r name value cname ceil unit dir; do
		[ -n "$name" ] && row "$name" "$value" "$cname" "$ceil" "$unit" "$dir"
	done <<<"$out"
	return "$st"
}

write_json() {
	local i
	mkdir -p "$(dirname "$results_json")"
	{
		printf '[\n'
		for i in "${!results[@]}"; do
			printf '  %s' "${results[$i]}"
			[ "$i" -lt $((${#results[@]} - 1)) ] && printf ','
			printf '\n'
		done
		printf ']\n'
	} >"$results_json"
}

main() {
	local status=0
	header
	bench_journal || status=1
	if [ -f "$here/grpc.sh" ]; then
		# shellcheck source=/dev/null
		source "$here/grpc.sh"
		# A failed row is reported, it does not hide the others.
		bench_grpc || { echo "run.sh: bench_grpc failed" >&2; status=1; }
	fi
	bench_providers || { echo "run.sh: bench_providers failed" >&2; status=1; }
	bench_front || { echo "run.sh: bench_front failed" >&2; status=1; }
	bench_host || { echo "run.sh: bench_host failed" >&2; status=1; }
	write_json
	echo "results: $results_json"
	return "$status"
}

main "$@"
