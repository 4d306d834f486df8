#!/bin/sh
# Installs the Debian packages given as arguments that are not installed yet (idempotent).
# Also creates the unprivileged system user "lightr" that `lightr serve` drops to when it is
# started as root (DESIGN.md §1).
set -e
missing=""
for p in "$@"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
if [ -n "$missing" ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "make deps: missing packages:$missing" >&2
		echo "make deps: run 'sudo make deps' (or as root) to install them" >&2
		exit 1
	fi
	echo "make deps: installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends $missing
fi
if [ "$(id -u)" = 0 ] && ! getent passwd lightr >/dev/null; then
	echo "make deps: creating system user lightr"
	useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin lightr
fi
