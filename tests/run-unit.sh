#!/usr/bin/env bash
# run-unit.sh: runs each cmocka unit test binary given as an argument
# (build/tests/test_*), shows its output, and ends with the line
#   unit: N passed, N failed
# counting cmocka's per-test results. A binary that crashes, exits non-zero
# without reporting a failure, or reports nothing counts as one failure;
# so does one whose output holds a sanitizer report (make SANITIZE=1: UBSan
# reports and goes on, the test itself would pass).
# Exits 1 if anything failed.
set -u

passed=0
failed=0
bad_bins=()

for bin in "$@"; do
	echo "== $bin"
	if [[ ! -x "$bin" ]]; then
		echo "run-unit.sh: $bin: not an executable" >&2
		failed=$((failed + 1))
		bad_bins+=("$bin")
		continue
	fi
	out=$("$bin" 2>&1)
	rc=$?
	printf '%s\n' "$out"
	p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9][0-9]*\) test(s)\..*/\1/p' | awk '{s+=$1} END {print s+0}')
	f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9][0-9]*\) test(s).*/\1/p' | awk '{s+=$1} END {print s+0}')
	seen=$(printf '%s\n' "$out" | grep -c '^\[==========\] .* test(s) run\.')
	if (( rc != 0 && f == 0 )); then
		# Crashed, aborted or failed outside a test (setup, signal, ...).
		echo "run-unit.sh: $bin exited with status $rc" >&2
		f=1
	elif (( seen == 0 && p == 0 && f == 0 )); then
		echo "run-unit.sh: $bin reported no test results" >&2
		f=1
	fi
	if printf '%s\n' "$out" | grep -Eq ': runtime error: |ERROR: (Address|Leak)Sanitizer'; then
		echo "run-unit.sh: $bin: sanitizer report" >&2
		f=$((f + 1))
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	(( f > 0 )) && bad_bins+=("$bin")
done

if (( ${#bad_bins[@]} > 0 )); then
	echo "failed: ${bad_bins[*]}"
fi
echo "unit: $passed passed, $failed failed"
(( failed == 0 ))
