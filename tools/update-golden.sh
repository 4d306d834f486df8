#!/bin/sh
# Regenerates the golden MIME files tests/testdata/mime/*.ref from the .eml next to them, using
# the dump mode of the unit test ("mime_test --golden"). Review the diff before committing.
#
#   tools/update-golden.sh            rewrite every .ref
#   tools/update-golden.sh --verify   compare our output with a private Dovecot 2.3 instead:
#                                     starts dovecot on 127.0.0.1:$DOVECOT_PORT (31143) in a
#                                     temp dir, APPENDs each .eml, FETCHes ENVELOPE, BODY,
#                                     BODYSTRUCTURE and every section we dump, prints the diffs,
#                                     and stops that dovecot again.
# MIME_TEST overrides the test binary (default build/san/mail/mime_test, built with make);
# MIME_DIR the directory of .eml files.
set -eu
cd "$(dirname "$0")/.."
DIR=${MIME_DIR:-tests/testdata/mime}
BIN=${MIME_TEST:-build/san/mail/mime_test}
[ -n "${MIME_TEST:-}" ] || make --no-print-directory "$BIN" >/dev/null

if [ "${1:-}" != "--verify" ]; then
	for eml in "$DIR"/*.eml; do
		"$BIN" --golden "$eml" >"${eml%.eml}.ref"
	done
	echo "updated $(ls "$DIR"/*.ref | wc -l) files in $DIR"
	exit 0
fi

PORT=${DOVECOT_PORT:-31143}
TMP=$(mktemp -d /tmp/lightr-dovecot.XXXXXX)
chmod 755 "$TMP"
mkdir -p "$TMP/mail" "$TMP/run" "$TMP/state"
if [ "$(id -u)" = 0 ]; then
	MUSER=dovecot
	chown "$MUSER" "$TMP/mail"
else
	MUSER=$(id -un)
fi
LUSER=$( [ "$(id -u)" = 0 ] && echo dovenull || id -un )
IUSER=$( [ "$(id -u)" = 0 ] && echo dovecot || id -un )
cat >"$TMP/dovecot.conf" <<CONF
protocols = imap
listen = 127.0.0.1
base_dir = $TMP/run
state_dir = $TMP/state
log_path = $TMP/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
mail_location = maildir:$TMP/mail/%u
first_valid_uid = 1
default_login_user = $LUSER
default_internal_user = $IUSER
passdb {
  driver = static
  args = password=pw
}
userdb {
  driver = static
  args = uid=$MUSER gid=$(id -gn "$MUSER") home=$TMP/mail/%u
}
service imap-login {
  chroot =
  inet_listener imap {
    address = 127.0.0.1
    port = $PORT
  }
  inet_listener imaps {
    port = 0
  }
}
service anvil {
  chroot =
}
CONF
trap 'rm -rf "$TMP"' EXIT INT TERM
dovecot -c "$TMP/dovecot.conf"
i=0
while [ ! -s "$TMP/run/master.pid" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
PID=$(cat "$TMP/run/master.pid")
trap 'kill "$PID" 2>/dev/null; sleep 1; rm -rf "$TMP"' EXIT INT TERM
sleep 0.5
rc=0
/usr/bin/python3 - "$BIN" "$PORT" "$DIR"/*.eml <<'PY' || rc=$?
import os, re, socket, subprocess, sys

class Imap:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.buf = b""
        self.n = 0
        self.line()

    def line(self):
        while b"\r\n" not in self.buf:
            d = self.s.recv(65536)
            if not d:
                raise EOFError
            self.buf += d
        i = self.buf.index(b"\r\n") + 2
        l, self.buf = self.buf[:i], self.buf[i:]
        return l

    def read(self, n):
        while len(self.buf) < n:
            self.buf += self.s.recv(65536)
        d, self.buf = self.buf[:n], self.buf[n:]
        return d

    def resp(self):
        out = b""
        while True:
            l = self.line()
            out += l
            m = re.search(rb"\{(\d+)\}\r\n$", l)
            if not m:
                return out
            out += self.read(int(m.group(1)))

    def cmd(self, c, lit=None):
        self.n += 1
        tag = b"a%d" % self.n
        if lit is None:
            self.s.sendall(tag + b" " + c + b"\r\n")
        else:
            self.s.sendall(tag + b" " + c + b" {%d}\r\n" % len(lit))
            assert self.line().startswith(b"+")
            self.s.sendall(lit + b"\r\n")
        res = []
        while True:
            r = self.resp()
            if r.startswith(tag + b" "):
                if not r.startswith(tag + b" OK"):
                    raise RuntimeError(r)
                return res
            res.append(r)

    def item(self, item):
        r = [x for x in self.cmd(b"FETCH 1 (" + item + b")") if x.startswith(b"* 1 FETCH (")]
        x = r[0][len(b"* 1 FETCH ("):-3]
        v = x[x.index(b" ") + 1:]
        return b"{0}\r\n" if v in (b'""', b"NIL") else v

# Differences we keep on purpose (see src/mail/mime_test.c).
EXPECTED = {"11-bare-lf.eml", "15-junk-ctype.eml"}
binary, port, files = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
c = Imap(port)
c.cmd(b"LOGIN u pw")
bad = 0
for path in files:
    data = open(path, "rb").read()
    ours = subprocess.run([binary, "--golden", path], capture_output=True, check=True).stdout
    try:
        c.cmd(b"UNSELECT")
    except RuntimeError:
        pass
    try:
        c.cmd(b"DELETE t")
    except RuntimeError:
        pass
    c.cmd(b"CREATE t")
    c.cmd(b"APPEND t", data)
    c.cmd(b"SELECT t")
    theirs = b""
    for it in (b"ENVELOPE", b"BODY", b"BODYSTRUCTURE"):
        theirs += it + b" " + c.item(it) + b"\n"
    for sec in re.findall(rb"^SECTION (\S+) \{", ours, re.M):
        theirs += b"SECTION " + sec + b" " + c.item(b"BODY.PEEK[" + sec + b"]") + b"\n"
    name = os.path.basename(path)
    if ours == theirs:
        print("same     %s" % name)
        continue
    tag = "expected" if name in EXPECTED else "DIFFERS "
    print("%s %s" % (tag, name))
    if name not in EXPECTED:
        bad += 1
    ol, tl = ours.split(b"\n"), theirs.split(b"\n")
    for i in range(max(len(ol), len(tl))):
        a = ol[i] if i < len(ol) else b"<none>"
        b = tl[i] if i < len(tl) else b"<none>"
        if a != b:
            k = next((j for j in range(min(len(a), len(b))) if a[j] != b[j]), min(len(a), len(b)))
            k = max(0, k - 60)
            print("   ours:    ...%r\n   dovecot: ...%r" % (a[k:k + 160], b[k:k + 160]))
            if os.environ.get("MIME_VERBOSE"):
                print("   full dovecot line: %r" % b)
            break
sys.exit(1 if bad else 0)
PY
exit $rc
