#!/usr/bin/env bash
# Checks the include direction of STYLE.md B.3 (includes go downward only, no directory includes
# another directory's _private.h) and that no banned function (tools/banned.h) is called.
# Prints one line per violation and "check-deps: N passed, N failed"-style counts for the summary.
set -u
cd "$(dirname "$0")/.."

declare -A allowed=(
	[util]=""
	[config]="util" [net]="util" [dns]="util" [mail]="util" [auth]="util" [store]="util"
	[smtp]="util mail auth"
	[imap]="util mail auth store"
	[dkim]="util mail dns" [policy]="util mail dns dkim"
	[limit]="util mail store" [tmpl]="util mail store"
	[events]="util mail store net"
	[queue]="util mail store dns net smtp dkim events"
	[http]="util config mail store queue auth events limit tmpl"
	[server]="util config net dns mail auth store smtp imap dkim policy limit tmpl events queue http"
	[cli]="*"
)

bad=0
checked=0
for f in src/*/*.[ch]; do
	dir=$(basename "$(dirname "$f")")
	checked=$((checked + 1))
	if [ -z "${allowed[$dir]+x}" ]; then
		echo "check-deps: $f: directory '$dir' is not in the layer table (tools/check-deps.sh)"
		bad=$((bad + 1))
		continue
	fi
	while IFS= read -r inc; do
		target=${inc%%/*}
		if [[ "$inc" == */*_private.h && "$target" != "$dir" ]]; then
			echo "check-deps: $f includes another directory's private header $inc"
			bad=$((bad + 1))
		fi
		[ "$target" = "$dir" ] && continue
		[ "${allowed[$dir]}" = "*" ] && continue
		case " ${allowed[$dir]} " in
		*" $target "*) ;;
		*)
			echo "check-deps: $f: $dir may not include $inc (layer rule, STYLE.md B.3)"
			bad=$((bad + 1))
			;;
		esac
	done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([a-z_]*\/[^"]*\)".*/\1/p' "$f")
done

banned=$(sed -n 's/^#pragma GCC poison //p' tools/banned.h)
for fn in $banned; do
	hits=$(grep -nE "(^|[^a-zA-Z0-9_.>])$fn[[:space:]]*\(" src/*/*.c src/*/*.h 2>/dev/null |
		grep -vE '^[^:]+:[0-9]+:[[:space:]]*(/\*|\*)' || true)
	if [ -n "$hits" ]; then
		echo "check-deps: banned function $fn (tools/banned.h):"
		echo "$hits" | sed 's/^/    /'
		bad=$((bad + 1))
	fi
done

if [ "$bad" -eq 0 ]; then
	echo "check-deps: $checked files ok"
	exit 0
fi
echo "check-deps: $bad problems"
exit 1
