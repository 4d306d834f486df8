#!/usr/bin/env bash
# Runs every test of `make test` against the ASan+UBSan build and prints the one summary line
# "tests: N passed, N failed". Parts: unit binaries (build/san/*/*_test), integration tests
# (pytest with Debian's /usr/bin/python3), the include-direction check, clang-format check, and
# FUZZ_SECONDS of each fuzz target. Exits non-zero when anything failed.
set -u
cd "$(dirname "$0")/.."
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LIGHTR_BIN=${LIGHTR_BIN:-$PWD/build/san/lightr}
passed=0
failed=0
log=$(mktemp -d /tmp/lightr-tests.XXXXXX)

count() { # name status
	if [ "$2" -eq 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAILED: $1"; fi
}

echo "== unit tests"
for t in build/san/*/*_test; do
	[ -x "$t" ] || continue
	name=$(basename "$t")
	out="$log/$name.out"
	"$t" >"$out" 2>&1
	rc=$?
	grep -v '^TESTCOUNT' "$out" | grep -E '^(unit |  FAIL|not ok)' || true
	line=$(grep '^TESTCOUNT' "$out" | tail -n 1)
	if [ -n "$line" ]; then
		set -- $line
		passed=$((passed + $2))
		failed=$((failed + $3))
	fi
	if [ "$rc" -ne 0 ] && { [ -z "$line" ] || [ "${3:-0}" -eq 0 ]; }; then
		failed=$((failed + 1))
		echo "FAILED: $name exited $rc"
		tail -n 30 "$out"
	fi
done

echo "== integration tests"
/usr/bin/python3 -m pytest -q -p no:cacheprovider --junitxml="$log/junit.xml" tests/integration
rc=$?
if [ -f "$log/junit.xml" ]; then
	read -r p f < <(/usr/bin/python3 - "$log/junit.xml" <<'PY'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else list(root)
t = sum(int(s.get("tests", 0)) for s in suites)
f = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
sk = sum(int(s.get("skipped", 0)) for s in suites)
print(t - f - sk, f)
PY
)
	passed=$((passed + p))
	failed=$((failed + f))
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then count "pytest exited $rc" 1; fi
else
	count "pytest did not run (exit $rc)" 1
fi

echo "== include direction and banned functions"
tools/check-deps.sh
count check-deps $?

echo "== formatting"
clang-format --dry-run --Werror src/*/*.c src/*/*.h fuzz/*.c tests/harness/*.h >"$log/fmt.out" 2>&1
rc=$?
[ "$rc" -eq 0 ] || head -n 20 "$log/fmt.out"
count clang-format $rc

echo "== fuzz (${FUZZ_SECONDS:-3}s each)"
for f in build/fuzz/fuzz_*; do
	[ -x "$f" ] || continue
	name=${f##*/fuzz_}
	tools/run-fuzz.sh "$f" >"$log/fuzz_$name.out" 2>&1
	rc=$?
	echo "fuzz $name: $(grep -E '^Done|^#[0-9]+.*DONE' "$log/fuzz_$name.out" | tail -n 1)"
	[ "$rc" -eq 0 ] || tail -n 40 "$log/fuzz_$name.out"
	count "fuzz $name" $rc
done

rm -rf "$log"
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
