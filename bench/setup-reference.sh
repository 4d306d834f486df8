#!/bin/bash
# Reference mail system for bench/smtp-ingest and bench/imap-load: a private Postfix instance
# (smtpd on 127.0.0.1:2625) delivering over LMTP to a private Dovecot instance (127.0.0.1:2624),
# which stores into maildirs of virtual users u1..uN@bench.example (password bench-uK) and
# serves them over IMAP on 127.0.0.1:2643 (plaintext LOGIN allowed: loopback only, no TLS).
# For bench/outbound, Postfix also has a submission-style smtpd on 127.0.0.1:2687 (STARTTLS
# offered with a self-signed certificate, relaying for 127.0.0.0/8 without AUTH) and relays all
# mail for dest.example to a sink on 127.0.0.1:2626 (transport map; the sink is bench/outbound's
# smtp-sink, not started here).
# Loopback only; the system Postfix/Dovecot configuration (/etc/postfix, /etc/dovecot) is
# neither used nor changed.
#
#   bench/setup-reference.sh [start]   install missing packages, write a fresh instance, start it
#   bench/setup-reference.sh stop      stop both daemons of the instance
#   bench/setup-reference.sh status    show the daemons and the message counts
#   bench/setup-reference.sh count     print "queued delivered" (queue files, maildir files)
#
# Environment: REF_DIR (default /tmp/lightr-bench-ref), REF_USERS (default 100),
# REF_SMTP_PORT (2625), REF_LMTP_PORT (2624), REF_IMAP_PORT (2643),
# REF_MAIL_FSYNC (always | optimized | never), REF_IMAP_PROCS (6000: Dovecot runs one imap process
# per IMAP connection; bench/imap-load holds up to 5000 idle ones), REF_SUBMIT_PORT (2687),
# REF_SINK_PORT (2626), REF_SINK_DOMAIN (dest.example).
set -euo pipefail

REF_DIR=${REF_DIR:-/tmp/lightr-bench-ref}
REF_USERS=${REF_USERS:-100}
REF_SMTP_PORT=${REF_SMTP_PORT:-2625}
REF_LMTP_PORT=${REF_LMTP_PORT:-2624}
REF_IMAP_PORT=${REF_IMAP_PORT:-2643}
REF_IMAP_PROCS=${REF_IMAP_PROCS:-6000}
REF_MAIL_FSYNC=${REF_MAIL_FSYNC:-always}
REF_SUBMIT_PORT=${REF_SUBMIT_PORT:-2687}
REF_SINK_PORT=${REF_SINK_PORT:-2626}
REF_SINK_DOMAIN=${REF_SINK_DOMAIN:-dest.example}
DOMAIN=bench.example
MAILUSER=lightr-bench-mail   # owner of the maildirs (Dovecot's mail_uid)

PF=$REF_DIR/postfix          # config_directory
PFQ=$REF_DIR/postfix-spool   # queue_directory
PFD=$REF_DIR/postfix-lib     # data_directory
DC=$REF_DIR/dovecot          # dovecot.conf, users, base_dir
MAIL=$REF_DIR/mail           # maildirs: $MAIL/uN/Maildir

die() { echo "setup-reference: $*" >&2; exit 1; }

need_root() { [ "$(id -u)" = 0 ] || die "run as root (installs packages, starts daemons that drop privileges)"; }

install_packages() {
	local missing=() p
	for p in postfix dovecot-core dovecot-lmtpd dovecot-imapd; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
	done
	[ ${#missing[@]} = 0 ] && return 0
	echo "setup-reference: installing ${missing[*]}"
	# Pids of system daemons already running, so that we stop only those the install starts.
	local before
	before=$(pgrep -x master; pgrep -x dovecot; true)
	echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
	DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q \
		--no-install-recommends "${missing[@]}" >"${TMPDIR:-/tmp}/lightr-bench-apt.log" 2>&1 ||
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 \
			install -y -q --no-install-recommends "${missing[@]}"; }
	local pid
	for pid in $(pgrep -x master; pgrep -x dovecot; true); do
		if ! grep -qx "$pid" <<<"$before"; then
			echo "setup-reference: stopping system daemon pid $pid started by the package install"
			if [ "$(ps -o comm= -p "$pid")" = master ]; then
				postfix -c /etc/postfix stop 2>/dev/null || kill "$pid"
			else
				kill "$pid"
			fi
		fi
	done
}

ensure_user() {
	getent passwd "$MAILUSER" >/dev/null ||
		useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$MAILUSER"
}

stop_instance() {
	if [ -f "$PF/main.cf" ] && [ -f "$PFQ/pid/master.pid" ]; then
		postfix -c "$PF" stop 2>/dev/null || true
	fi
	local pidf=$DC/run/master.pid pid i
	if [ -f "$pidf" ]; then
		pid=$(cat "$pidf")
		if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && [ "$(ps -o comm= -p "$pid")" = dovecot ]; then
			kill "$pid"
			for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		fi
	fi
	# postfix stop returns before master has gone; wait for it (bounded).
	pidf=$PFQ/pid/master.pid
	if [ -f "$pidf" ]; then
		pid=$(tr -d ' ' <"$pidf")
		for i in $(seq 100); do
			{ [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; } || break
			sleep 0.1
		done
	fi
}

write_instance() {
	local uid gid i
	uid=$(id -u "$MAILUSER"); gid=$(id -g "$MAILUSER")
	rm -rf "$REF_DIR"
	mkdir -p "$PF" "$PFQ" "$PFD" "$DC/run" "$MAIL"
	chmod 755 "$REF_DIR"

	# --- Dovecot: LMTP and IMAP, passwd-file users, maildir, mail_fsync as configured. ---
	: >"$DC/users"
	for i in $(seq "$REF_USERS"); do
		echo "u$i@$DOMAIN:{PLAIN}bench-u$i:$uid:$gid::$MAIL/u$i::" >>"$DC/users"
	done
	chown "$MAILUSER:$MAILUSER" "$MAIL"
	cat >"$DC/dovecot.conf" <<CONF
# Private Dovecot instance for bench/smtp-ingest and bench/imap-load (generated by
# setup-reference.sh).
protocols = lmtp imap
listen = 127.0.0.1
base_dir = $DC/run
state_dir = $DC/state
instance_name = lightr-bench-dovecot
log_path = $DC/dovecot.log
ssl = no
disable_plaintext_auth = no
default_internal_user = dovecot
default_login_user = dovenull
first_valid_uid = 100
mail_location = maildir:~/Maildir
mail_fsync = $REF_MAIL_FSYNC
lmtp_save_to_detail_mailbox = no
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $DC/users
}
userdb {
  driver = passwd-file
  args = username_format=%u $DC/users
}
# IMAP: Debian's defaults except what thousands of idle connections need: one imap process per
# connection (process_limit), room in the log/anvil/stats services for all of them
# (default_client_limit), and more than 10 connections per user from 127.0.0.1.
default_client_limit = $((REF_IMAP_PROCS * 2))
mail_max_userip_connections = $REF_IMAP_PROCS
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $REF_IMAP_PORT
  }
  inet_listener imaps {
    port = 0
  }
}
service imap {
  process_limit = $REF_IMAP_PROCS
}
service lmtp {
  user = $MAILUSER
  inet_listener lmtp {
    address = 127.0.0.1
    port = $REF_LMTP_PORT
  }
  unix_listener lmtp {
    mode = 0
  }
}
CONF
	mkdir -p "$DC/state"

	# --- Postfix: smtpd on loopback, virtual mailbox domain, LMTP to Dovecot. ---
	for i in $(seq "$REF_USERS"); do echo "u$i@$DOMAIN OK"; done >"$PF/vmailbox"
	# bench/outbound: everything for the sink domain goes to the sink on loopback (no MX lookup).
	echo "$REF_SINK_DOMAIN smtp:[127.0.0.1]:$REF_SINK_PORT" >"$PF/transport"
	# ... and the submission listener offers STARTTLS with a throwaway self-signed certificate.
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=ref.$DOMAIN" \
		-keyout "$PF/tls.key" -out "$PF/tls.crt" >/dev/null 2>&1
	chmod 600 "$PF/tls.key"
	cat >"$PF/main.cf" <<CONF
# Private Postfix instance for bench/smtp-ingest (generated by setup-reference.sh).
# Postfix's default queue behaviour: cleanup fsyncs the queue file before smtpd answers 250.
compatibility_level = 3.6
config_directory = $PF
queue_directory = $PFQ
data_directory = $PFD
mail_owner = postfix
setgid_group = postdrop
myhostname = ref.$DOMAIN
mydomain = $DOMAIN
myorigin = \$myhostname
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost =
alias_maps =
alias_database =
local_recipient_maps =
biff = no
append_dot_mydomain = no
smtputf8_enable = no
maillog_file_prefixes = $REF_DIR
maillog_file = $REF_DIR/postfix.log
virtual_mailbox_domains = $DOMAIN
virtual_mailbox_maps = texthash:$PF/vmailbox
virtual_transport = lmtp:inet:127.0.0.1:$REF_LMTP_PORT
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
message_size_limit = 26214400
transport_maps = texthash:$PF/transport
CONF
	# Debian's service list without chroot (the private queue has no chroot setup) and with
	# inet listeners only on the benchmark ports (smtp-ingest, outbound).
	cat >"$PF/master.cf" <<CONF
127.0.0.1:$REF_SMTP_PORT inet n - n - - smtpd
127.0.0.1:$REF_SUBMIT_PORT inet n - n - - smtpd
  -o smtpd_tls_security_level=may
  -o smtpd_tls_cert_file=$PF/tls.crt
  -o smtpd_tls_key_file=$PF/tls.key
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
postlog   unix-dgram n  -       n       -       1       postlogd
CONF
}

start_instance() {
	# Dovecot's log process holds one fd per child process: give it the hard limit.
	ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
	dovecot -c "$DC/dovecot.conf"
	postfix -c "$PF" set-permissions >/dev/null 2>&1 || true
	postfix -c "$PF" check
	postfix -c "$PF" start
	# Wait (bounded) until both listeners answer.
	local i
	for i in $(seq 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$REF_SMTP_PORT") 2>/dev/null &&
			(exec 3<>"/dev/tcp/127.0.0.1/$REF_LMTP_PORT") 2>/dev/null &&
			(exec 3<>"/dev/tcp/127.0.0.1/$REF_IMAP_PORT") 2>/dev/null &&
			(exec 3<>"/dev/tcp/127.0.0.1/$REF_SUBMIT_PORT") 2>/dev/null; then
			echo "setup-reference: Postfix smtpd 127.0.0.1:$REF_SMTP_PORT -> LMTP Dovecot 127.0.0.1:$REF_LMTP_PORT" \
				"(mail_fsync=$REF_MAIL_FSYNC), Dovecot IMAP 127.0.0.1:$REF_IMAP_PORT," \
				"users u1..u$REF_USERS@$DOMAIN (password bench-uK), submission 127.0.0.1:$REF_SUBMIT_PORT" \
				"relaying $REF_SINK_DOMAIN to 127.0.0.1:$REF_SINK_PORT, dir $REF_DIR"
			return 0
		fi
		sleep 0.1
	done
	die "listeners did not come up; see $REF_DIR/postfix.log and $DC/dovecot.log"
}

count() {
	local q d
	q=$(find "$PFQ/incoming" "$PFQ/active" "$PFQ/deferred" "$PFQ/maildrop" "$PFQ/hold" -type f 2>/dev/null | wc -l)
	d=$(find "$MAIL" -path '*/Maildir/new/*' -type f 2>/dev/null | wc -l)
	echo "$q $d"
}

case "${1:-start}" in
start)
	need_root
	install_packages
	ensure_user
	stop_instance
	write_instance
	start_instance
	;;
stop)
	need_root
	stop_instance
	;;
status)
	f=""
	for f in "$PFQ/pid/master.pid" "$DC/run/master.pid"; do
		pid=$(tr -d ' ' 2>/dev/null <"$f" || true)
		if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then ps -o pid=,user=,args= -p "$pid"; else echo "not running: $f"; fi
	done
	echo "queued delivered: $(count)"
	;;
count)
	count
	;;
*)
	echo "usage: $0 [start|stop|status|count]" >&2
	exit 2
	;;
esac
