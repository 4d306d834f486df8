#!/usr/bin/env bash
# Runs libFuzzer targets for FUZZ_SECONDS each, starting from a copy of fuzz/corpus/<target>
# (the committed seeds are never modified) with fuzz/<target>.dict when present.
set -u
cd "$(dirname "$0")/.."
secs=${FUZZ_SECONDS:-3}
status=0
for bin in "$@"; do
	name=${bin##*/fuzz_}
	work=$(mktemp -d /tmp/lightr-fuzz.XXXXXX)
	[ -d "fuzz/corpus/$name" ] && cp -r "fuzz/corpus/$name/." "$work/"
	dict=()
	[ -f "fuzz/$name.dict" ] && dict=(-dict="fuzz/$name.dict")
	"$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$work/" "${dict[@]}" "$work" || {
		status=1
		echo "fuzz $name: crash input kept in $work"
		continue
	}
	rm -rf "$work"
done
exit $status
