#!/usr/bin/env bash
# run.sh: runs each libFuzzer target given as an argument
# (build/fuzz/fuzz_NAME, from tests/fuzz/fuzz_NAME.c), one at a time:
#   1. every input of tests/fuzz/regress/NAME/ once (the crashes found
#      before, kept as regression tests: each must now run clean);
#   2. fuzzing for FUZZ_SECONDS (default 60) from the seeds of
#      tests/fuzz/corpus/NAME/ with the dictionary tests/fuzz/NAME.dict if
#      there is one. New corpus entries go to a temporary directory,
#      never into the repository; a crash, a leak, a sanitizer report or a
#      timeout leaves its input in FUZZ_ARTIFACTS (default: a temporary
#      directory, printed) and fails the target.
# Ends with "fuzz: N passed, N failed" and exits 1 if anything failed.
set -u

here=$(cd "$(dirname "$0")" && pwd)
seconds=${FUZZ_SECONDS:-60}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/palyra-fuzz.XXXXXX")
artifacts=${FUZZ_ARTIFACTS:-$tmp/crashes}
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$artifacts"

passed=0
failed=0
bad=()
# Leaks are errors; a run stops at the first finding, holding its input.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

for bin in "$@"; do
	name=$(basename "$bin")
	name=${name#fuzz_}
	echo "== fuzz $name (${seconds}s)"
	if [[ ! -x "$bin" ]]; then
		echo "run.sh: $bin: not an executable" >&2
		failed=$((failed + 1))
		bad+=("$name")
		continue
	fi
	ok=1
	regress=("$here/regress/$name"/*)
	if [[ -e "${regress[0]}" ]]; then
		# A tighter memory bound than fuzzing's: some were found
		# as out-of-memory.
		if ! "$bin" -rss_limit_mb=512 -timeout=10 "${regress[@]}" \
			>"$tmp/$name.log" 2>&1; then
			cat "$tmp/$name.log"
			echo "run.sh: $name: a regression input fails again" >&2
			ok=0
		else
			echo "regress: ${#regress[@]} input(s) clean"
		fi
	fi
	if (( ok )); then
		mkdir -p "$tmp/corpus-$name"
		opts=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048
			-max_len=65536 -print_final_stats=1
			-artifact_prefix="$artifacts/$name-")
		[[ -f "$here/$name.dict" ]] && opts+=(-dict="$here/$name.dict")
		seeds=()
		[[ -d "$here/corpus/$name" ]] && seeds+=("$here/corpus/$name")
		if ! "$bin" "${opts[@]}" "$tmp/corpus-$name" "${seeds[@]}" \
			>"$tmp/$name.log" 2>&1; then
			# The report and the input that caused it.
			grep -v '^#[0-9]' "$tmp/$name.log" | tail -n 60
			echo "run.sh: $name: crashed; input kept in $artifacts/" >&2
			ok=0
		else
			grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|Done)' \
				"$tmp/$name.log" | tr '\n' ' '
			echo
		fi
	fi
	if (( ok )); then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
		bad+=("$name")
	fi
done

echo "fuzz: $passed passed, $failed failed${bad:+ (${bad[*]})}"
(( failed == 0 ))
