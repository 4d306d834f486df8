"""The IMAP server (issue 4) against Python's imaplib and a small raw client built on imaplib's
transport: every command of the issue, with real MIME messages (multipart with a message/rfc822
attachment, base64, quoted-printable, RFC 2047 subjects, a latin-1 body). The assertions are on
the protocol results as a reference server gives them, never on Lightr's internals.

By default one Lightr server per module (domain test.example, alice@ / alice-password, plaintext
LOGIN allowed on loopback by imap.plaintext_auth_loopback). The same tests run against another
server by hand, e.g. a private Dovecot 2.3 on loopback:

  IMAP_TEST_TARGET=dovecot:127.0.0.1:10143:alice@test.example:alice-password \\
      /usr/bin/python3 -m pytest tests/integration/test_imap.py

The target account is emptied first (every mailbox but INBOX deleted, INBOX expunged); the tests
then create their own mailboxes. Extensions a target does not advertise (Dovecot 2.3 has no
IMAP4rev2, CREATE-SPECIAL-USE) are skipped for that target only."""
import base64
import datetime
import os
import re
import shutil
import smtplib
import tempfile
import time

import imaplib
import pytest

from conftest import Server, _bin, run, wait_port, write_config

WAIT = 10.0
EXTRA = "imap:\n  plaintext_auth_loopback: true\n  auth_failure_delay: 0s\n"


# ---------------------------------------------------------------- shared: target and raw client
# (test_imap_concurrency.py and test_imap_mbsync.py import these)

class Target:
    """Where the tests connect: kind ("lightr" or e.g. "dovecot"), host, port, user, password,
    and deliver(raw) which puts a message into the user's INBOX over SMTP (Lightr's MX) or LMTP
    (IMAP_TEST_LMTP=host:port for another target)."""

    def __init__(self, kind, host, port, user, pw, smtp=None, lmtp=None, srv=None, tmp=None):
        self.kind, self.host, self.port, self.user, self.pw = kind, host, int(port), user, pw
        self.smtp, self.lmtp, self.srv, self.tmp = smtp, lmtp, srv, tmp

    def deliver(self, raw, rcpt=None):
        rcpt = rcpt or self.user
        if self.smtp:
            with smtplib.SMTP(self.host, self.smtp, timeout=WAIT) as s:
                s.sendmail("sender@remote.example", [rcpt], raw)
        elif self.lmtp:
            h, p = self.lmtp
            with smtplib.LMTP(h, int(p), timeout=WAIT) as s:
                s.sendmail("sender@remote.example", [rcpt], raw)
        else:
            pytest.skip("no delivery path for this target (set IMAP_TEST_LMTP=host:port)")


def _start_lightr(prefix):
    path = _bin()
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} is not built (make san)")
    d = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    os.chmod(d, 0o755)
    cfg, ports = write_config(d, EXTRA)
    for args, stdin in ((("domain", "add", "test.example"), None),
                        (("account", "add", "alice@test.example", "--password-stdin",
                          "--quota", "100MiB"),
                         "alice-password\n"),
                        (("account", "add", "bob@test.example", "--password-stdin"),
                         "bob-password\n")):
        r = run(path, *args, config=cfg, stdin=stdin)
        assert r.returncode == 0, r.stderr
    srv = Server(path, config=cfg, cwd=d, wait_for=ports["imap"])
    assert wait_port(ports["mx"]) and wait_port(ports["imaps"])
    t = Target("lightr", "127.0.0.1", ports["imap"], "alice@test.example", "alice-password",
               smtp=ports["mx"], srv=srv, tmp=d)
    t.ports = ports
    return t


def _stop(t):
    if t.srv:
        t.srv.stop()
        shutil.rmtree(t.tmp, ignore_errors=True)


def _env_target():
    spec = os.environ.get("IMAP_TEST_TARGET")
    if not spec:
        return None
    kind, host, port, user, pw = spec.split(":", 4)
    lmtp = os.environ.get("IMAP_TEST_LMTP")
    return Target(kind, host, port, user, pw, lmtp=lmtp.rsplit(":", 1) if lmtp else None)


SPECIAL_USES = {"\\ALL", "\\ARCHIVE", "\\DRAFTS", "\\FLAGGED", "\\JUNK", "\\SENT", "\\TRASH"}


def _reset(t):
    """Empties the target account: every mailbox but INBOX and the special-use ones deleted,
    INBOX expunged."""
    s = Session(t)
    names = []
    for r in s.ok("LIST", q(""), q("*"), "RETURN", "(SPECIAL-USE)").named("LIST"):
        tok = r.tokens()
        if not {f.upper() for f in tok[2]} & SPECIAL_USES:  # keep Sent, Trash, ...
            names.append(tok[4].decode() if isinstance(tok[4], bytes) else tok[4])
    for n in sorted(names, key=lambda x: -x.count("/")):
        if n.upper() != "INBOX":
            s.cmd("UNSUBSCRIBE", q(n))
            s.cmd("DELETE", q(n))
    s.ok("SELECT", "INBOX")
    s.cmd("STORE", "1:*", "+FLAGS.SILENT", "(\\Deleted)")
    s.ok("EXPUNGE")
    s.logout()


@pytest.fixture(scope="module")
def target():
    t = _env_target()
    if t is None:
        t = _start_lightr("lightr-imap-")
    _reset(t)
    yield t
    _stop(t)


class Lit(bytes):
    """A literal argument (sent synchronizing: {n}, wait for "+", then the bytes)."""


def q(s):
    """An IMAP quoted string."""
    if isinstance(s, str):
        s = s.encode()
    return b'"' + s.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


class Resp:
    """One response: its text segments and literals in order."""

    def __init__(self, segs):
        self.segs = segs

    @property
    def text(self):
        return b"".join(s if not isinstance(s, Lit) else b"{%d}" % len(s) for s in self.segs)

    def tokens(self):
        return nest(tokenize(self.segs))

    def __repr__(self):
        return repr(self.text)


class Result:
    def __init__(self, tagged, untagged):
        self.tagged, self.untagged = tagged, untagged
        self.status = tagged.split(b" ", 2)[1].decode()

    def named(self, name):
        """Untagged responses whose first or second word is name (e.g. EXISTS, FETCH, LIST)."""
        out = []
        for r in self.untagged:
            w = r.text.split(b" ", 3)
            if len(w) > 1 and w[1].upper() == name.encode() or \
                    len(w) > 2 and w[2].upper() == name.encode():
                out.append(r)
        return out

    def fetch(self):
        """{seq: {ITEM: value}} from the FETCH responses (merged when one seq has several)."""
        out = {}
        for r in self.named("FETCH"):
            t = r.tokens()
            d = out.setdefault(int(t[1]), {})
            items = t[3]
            for i in range(0, len(items), 2):
                d[items[i].upper()] = items[i + 1]
        return out

    def numbers(self, name="SEARCH"):
        """The numbers of the SEARCH/SORT responses."""
        out = []
        for r in self.named(name):
            out += [int(x) for x in r.text.split()[2:] if x.isdigit()]
        return out

    def code(self, name):
        """The words of response code [name ...] in the tagged line or an untagged OK/NO."""
        for line in [self.tagged] + [r.text for r in self.untagged]:
            m = re.search(rb"\[" + name.encode() + rb"(?: ([^\]]*))?\]", line, re.I)
            if m:
                return (m.group(1) or b"").decode().split()
        return None


def tokenize(segs):
    """IMAP tokens: "(" ")" as str, atoms as str (NIL -> None; BODY[...]<n> is one atom),
    quoted strings and literals as bytes."""
    out = []
    for s in segs:
        if isinstance(s, Lit):
            out.append(bytes(s))
            continue
        i, n = 0, len(s)
        while i < n:
            c = s[i:i + 1]
            if c == b" ":
                i += 1
            elif c in (b"(", b")"):
                out.append(c.decode())
                i += 1
            elif c == b'"':
                j, v = i + 1, bytearray()
                while s[j:j + 1] != b'"':
                    if s[j:j + 1] == b"\\":
                        j += 1
                    v += s[j:j + 1]
                    j += 1
                out.append(bytes(v))
                i = j + 1
            else:
                j, depth = i, 0
                while j < n and (depth > 0 or s[j:j + 1] not in (b" ", b"(", b")")):
                    if s[j:j + 1] == b"[":
                        depth += 1
                    elif s[j:j + 1] == b"]":
                        depth -= 1
                    j += 1
                a = s[i:j].decode("utf-8", "replace")
                out.append(None if a.upper() == "NIL" else a)
                i = j
    return out


def nest(toks):
    stack = [[]]
    for t in toks:
        if t == "(":
            stack.append([])
        elif t == ")":
            inner = stack.pop()
            stack[-1].append(inner)
        else:
            stack[-1].append(t)
    return stack[0]


class Session:
    """imaplib for the connection and LOGIN; commands sent and read raw so that every response
    (untagged, literals, response codes) is visible to the test."""

    def __init__(self, t, login=True):
        self.t = t
        self.m = imaplib.IMAP4(t.host, t.port, timeout=WAIT)
        self.n = 0
        if login:
            self.m.login(t.user, t.pw)

    def settimeout(self, sec):
        self.m.sock.settimeout(sec)

    def read_resp(self):
        segs = []
        while True:
            line = self.m.readline()
            if not line:
                raise EOFError(segs)
            mo = re.search(rb"\{(\d+)\+?\}\r\n$", line)
            if mo:
                segs.append(line[:mo.start()])
                segs.append(Lit(self.m.read(int(mo.group(1)))))
                continue
            segs.append(line.rstrip(b"\r\n"))
            return Resp(segs)

    def send(self, data):
        self.m.send(data)

    def until(self, tag, untagged=None):
        untagged = [] if untagged is None else untagged
        while True:
            r = self.read_resp()
            if r.text.startswith(tag + b" "):
                return Result(r.text, untagged)
            untagged.append(r)

    def tag(self):
        self.n += 1
        return b"T%d" % self.n

    def cmd(self, *parts):
        tag = self.tag()
        out, untagged = tag, []
        for p in parts:
            if isinstance(p, Lit):
                self.send(out + b" {%d}\r\n" % len(p))
                while True:
                    r = self.read_resp()
                    if r.text.startswith(b"+"):
                        break
                    if r.text.startswith(tag + b" "):
                        return Result(r.text, untagged)
                    untagged.append(r)
                out = bytes(p)
            else:
                out += b" " + (p.encode() if isinstance(p, str) else p)
        self.send(out + b"\r\n")
        return self.until(tag, untagged)

    def ok(self, *parts):
        r = self.cmd(*parts)
        assert r.status == "OK", (parts, r.tagged, r.untagged)
        return r

    def caps(self):
        r = self.ok("CAPABILITY")
        return set(r.named("CAPABILITY")[0].text.decode().upper().split()[2:])

    def append(self, box, raw, flags="", date=None):
        parts = ["APPEND", q(box)]
        if flags:
            parts.append(f"({flags})")
        if date:
            parts.append(q(date))
        return self.ok(*parts, Lit(raw))

    def logout(self):
        try:
            self.cmd("LOGOUT")
        except (EOFError, OSError):
            pass
        self.m.shutdown()


# ---------------------------------------------------------------- messages

def crlf(s):
    return s.replace("\r\n", "\n").replace("\n", "\r\n").encode("latin-1")


M1 = crlf("""From: =?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <juergen@example.org>
To: Alice <alice@test.example>, bob@test.example
Cc: "Carol C." <carol@example.net>
Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus_M=C3=BCnchen?=
Date: Mon, 02 Jan 2023 10:00:00 +0100
Message-ID: <m1@example.org>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

Hallo Alice,
der K=C3=A4sekuchen ist fertig.
Zebrafish xylophone.
""")

INNER_HDR = crlf("""From: Dave <dave@example.com>
To: bob@test.example
Subject: Forwarded inner
Date: Sun, 01 Jan 2023 08:00:00 +0000
Message-ID: <inner@example.com>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="inner"

""")
INNER_BODY = crlf("""--inner
Content-Type: text/plain; charset=us-ascii

Inner text with pangolin.
--inner
Content-Type: application/octet-stream; name="data.bin"
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename="data.bin"

AAECAwQFBgcICQ==
--inner--
""")
PART2_MIME = crlf("""Content-Type: message/rfc822
Content-Disposition: attachment; filename="fwd.eml"

""")
M2_HDR = crlf("""From: Bob <bob@test.example>
To: alice@test.example
Subject: Report with attachment
Date: Tue, 03 Jan 2023 11:00:00 +0000
Message-ID: <m2@example.org>
In-Reply-To: <m1@example.org>
References: <m1@example.org>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

""")
M2_TEXT = (crlf("""This is a multi-part message in MIME format.
--outer
Content-Type: multipart/alternative; boundary="alt"

--alt
Content-Type: text/plain; charset=us-ascii

Plain part of the report.
--alt
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: base64

PGI+SGVsbG88L2I+
--alt--
--outer
""") + PART2_MIME + INNER_HDR + INNER_BODY + crlf("""--outer
Content-Type: application/pdf; name="r.pdf"
Content-Transfer-Encoding: base64

JVBERi0xLjQK
--outer--
"""))
M2 = M2_HDR + M2_TEXT

M3 = crlf("""From: Carol <carol@example.net>
To: alice@test.example
Subject: Re: Report with attachment
Date: Wed, 04 Jan 2023 12:00:00 +0000
Message-ID: <m3@example.org>
In-Reply-To: <m2@example.org>
References: <m1@example.org> <m2@example.org>
MIME-Version: 1.0
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

Sch=F6ne Gr=FC=DFe, meerkat.
""")

M4_BODY = ("Lorem ipsum dolor sit amet. " * 100 + "\nThe secretword is here.\n").encode()
M4 = crlf("""From: Amy <amy@example.com>
To: alice@test.example
Subject: Zzz unrelated
Date: Sun, 01 Jan 2023 09:00:00 +0000
Message-ID: <m4@example.org>
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii
Content-Transfer-Encoding: base64

""") + base64.encodebytes(M4_BODY).replace(b"\n", b"\r\n")

MSGS = [  # raw, flags, internal date
    (M1, "\\Seen", "01-Feb-2023 12:00:00 +0000"),
    (M2, "\\Flagged $Important", "02-Feb-2023 12:00:00 +0000"),
    (M3, "", "03-Feb-2023 12:00:00 +0000"),
    (M4, "\\Seen \\Answered", "04-Feb-2023 12:00:00 +0000"),
]


def fill(s, box):
    """Creates box with the four messages; returns their UIDs."""
    s.cmd("DELETE", q(box))
    s.ok("CREATE", q(box))
    uids = []
    for raw, flags, date in MSGS:
        r = s.append(box, raw, flags, date)
        uids.append(int(r.code("APPENDUID")[1]))
    return uids


@pytest.fixture(scope="module")
def msgs(target):
    """Mailbox "Msgs" with M1..M4, read-only for the tests using it."""
    s = Session(target)
    uids = fill(s, "Msgs")
    s.logout()
    return uids


def mutf7(name):
    """RFC 3501 §5.1.3 modified UTF-7."""
    out, buf = [], []

    def flush():
        if buf:
            b = "".join(buf).encode("utf-16-be")
            out.append("&" + base64.b64encode(b).decode().rstrip("=").replace("/", ",") + "-")
            buf.clear()
    for ch in name:
        if 0x20 <= ord(ch) <= 0x7e:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            buf.append(ch)
    flush()
    return "".join(out)


def idate(v):
    """An INTERNALDATE as an aware datetime (servers may answer in another zone)."""
    return datetime.datetime.strptime(v.decode().strip(), "%d-%b-%Y %H:%M:%S %z")


def flags(lst):
    """A FLAGS list as a set, without \\Recent (IMAP4rev1 only, gone in IMAP4rev2)."""
    return {f for f in lst if f.upper() != "\\RECENT"}


def after_expunges(r, seq_uids):
    """The UIDs left after applying the EXPUNGE responses of r, in order, to seq_uids (a server
    may report several expunges in any order: each one renumbers the following messages)."""
    left = list(seq_uids)
    for x in r.named("EXPUNGE"):
        del left[int(x.text.split()[1]) - 1]
    return left


def list_names(r):
    """{name: set(flags)} of LIST/LSUB responses (names as the server sent them, str)."""
    out = {}
    for x in r.named("LIST") + r.named("LSUB"):
        t = x.tokens()
        name = t[4]
        name = name.decode() if isinstance(name, bytes) else name
        out[name] = {f.upper() for f in t[2]}
    return out


# ---------------------------------------------------------------- not authenticated

def test_capability_and_login(target):
    m = imaplib.IMAP4(target.host, target.port, timeout=WAIT)
    assert "IMAP4REV1" in m.capabilities
    assert "AUTH=PLAIN" in m.capabilities and "LOGINDISABLED" not in m.capabilities
    typ, data = m.login(target.user, target.pw)
    assert typ == "OK"
    typ, data = m.capability()
    caps = set(data[0].decode().upper().split())
    for c in ("IDLE", "UIDPLUS", "MOVE", "ID", "ENABLE", "NAMESPACE", "UNSELECT", "SPECIAL-USE",
              "LIST-EXTENDED", "LIST-STATUS", "CHILDREN", "ESEARCH", "CONDSTORE", "QRESYNC",
              "QUOTA", "SORT", "THREAD=REFERENCES", "THREAD=ORDEREDSUBJECT", "SASL-IR"):
        assert c in caps, c
    assert "LITERAL+" in caps or "LITERAL-" in caps
    assert m.noop()[0] == "OK"
    assert m.logout()[0] == "BYE"


def test_login_wrong_password(target):
    s = Session(target, login=False)
    r = s.cmd("LOGIN", q(target.user), q("wrong"))
    assert r.status == "NO"
    assert r.code("AUTHENTICATIONFAILED") is not None
    s.logout()


def test_authenticate_plain_imaplib(target):
    m = imaplib.IMAP4(target.host, target.port, timeout=WAIT)
    cred = f"\0{target.user}\0{target.pw}".encode()
    typ, _ = m.authenticate("PLAIN", lambda _challenge: cred)
    assert typ == "OK" and m.state == "AUTH"
    m.logout()


def test_authenticate_plain_sasl_ir(target):
    s = Session(target, login=False)
    cred = base64.b64encode(f"\0{target.user}\0{target.pw}".encode())
    r = s.ok("AUTHENTICATE", "PLAIN", cred)
    assert r.code("CAPABILITY") is None or "IMAP4REV1" in " ".join(r.code("CAPABILITY")).upper()
    assert s.ok("SELECT", "INBOX")
    s.logout()
    s = Session(target, login=False)
    bad = base64.b64encode(f"\0{target.user}\0nope".encode())
    assert s.cmd("AUTHENTICATE", "PLAIN", bad).status == "NO"
    s.logout()


def test_authenticate_plain_continuation(target):
    s = Session(target, login=False)
    tag = s.tag()
    s.send(tag + b" AUTHENTICATE PLAIN\r\n")
    assert s.read_resp().text.startswith(b"+")
    s.send(base64.b64encode(f"\0{target.user}\0{target.pw}".encode()) + b"\r\n")
    assert s.until(tag).status == "OK"
    # "*" cancels an exchange (RFC 9051 §6.2.2)
    s2 = Session(target, login=False)
    tag = s2.tag()
    s2.send(tag + b" AUTHENTICATE PLAIN\r\n")
    assert s2.read_resp().text.startswith(b"+")
    s2.send(b"*\r\n")
    assert s2.until(tag).status == "BAD"
    s.logout()
    s2.logout()


def test_id_and_namespace(target):
    s = Session(target)
    r = s.ok("ID", '("name" "pytest" "version" "1")')
    ids = r.named("ID")[0].tokens()
    assert ids[2] is None or isinstance(ids[2], list)
    r = s.ok("NAMESPACE")
    t = r.named("NAMESPACE")[0].tokens()
    personal = t[2]
    assert personal[0][0] == b"" and personal[0][1] == b"/"
    s.logout()


def test_enable(target):
    s = Session(target)
    caps = s.caps()
    r = s.ok("ENABLE", "CONDSTORE")
    assert "CONDSTORE" in r.named("ENABLED")[0].text.decode().upper()
    r = s.ok("ENABLE", "QRESYNC", "X-UNKNOWN-EXTENSION")
    en = r.named("ENABLED")[0].text.decode().upper()
    assert "QRESYNC" in en and "X-UNKNOWN" not in en
    if "IMAP4REV2" in caps:
        r = s.ok("ENABLE", "IMAP4rev2")
        assert "IMAP4REV2" in r.named("ENABLED")[0].text.decode().upper()
    s.logout()


# ---------------------------------------------------------------- mailboxes

def test_create_list_delete(target):
    s = Session(target)
    for n in ("Work", "Work/Projects", "Work/Projects/Alpha", "Work/Reports", "Play"):
        s.ok("CREATE", q(n))
    r = s.cmd("CREATE", q("Work"))
    assert r.status == "NO"
    assert r.code("ALREADYEXISTS") is not None
    s.ok("CREATE", q("Deep/Auto/Parent"))  # intermediate levels created as needed
    names = list_names(s.ok("LIST", q(""), q("*")))
    for n in ("INBOX", "Work", "Work/Projects", "Work/Projects/Alpha", "Work/Reports", "Play",
              "Deep/Auto/Parent"):
        assert n in names, (n, names)
    assert "\\HASCHILDREN" in names["Work"] and "\\HASNOCHILDREN" in names["Play"]
    top = list_names(s.ok("LIST", q(""), q("%")))
    assert "Work" in top and "Play" in top and "Work/Projects" not in top
    lvl = list_names(s.ok("LIST", q("Work/"), q("%")))
    assert set(lvl) == {"Work/Projects", "Work/Reports"}
    star = list_names(s.ok("LIST", q(""), q("Work/*")))
    assert set(star) == {"Work/Projects", "Work/Projects/Alpha", "Work/Reports"}
    # the hierarchy delimiter
    r = s.ok("LIST", q(""), q(""))
    assert r.named("LIST")[0].tokens()[3] == b"/"
    # INBOX is case-insensitive
    assert "INBOX" in list_names(s.ok("LIST", q(""), q("inbox")))
    assert s.ok("SELECT", "inbox")
    s.ok("CLOSE")
    # DELETE: a leaf, then a parent with children (becomes \Noselect or stays, RFC 3501 §6.3.4)
    s.ok("DELETE", q("Work/Projects/Alpha"))
    assert "Work/Projects/Alpha" not in list_names(s.ok("LIST", q(""), q("*")))
    r = s.cmd("DELETE", q("NoSuchBox"))
    assert r.status == "NO"
    assert s.cmd("DELETE", q("INBOX")).status == "NO"
    for n in ("Deep/Auto/Parent", "Work/Projects", "Work/Reports", "Work", "Play"):
        s.ok("DELETE", q(n))
    for n in ("Deep/Auto", "Deep"):  # \Noselect intermediates or real mailboxes: either way
        s.cmd("DELETE", q(n))
    assert not [n for n in list_names(s.ok("LIST", q(""), q("*"))) if n.startswith("Deep")]
    s.logout()


def test_rename_with_children_and_inbox(target):
    s = Session(target)
    for n in ("Old", "Old/Child", "Old/Child/Grand"):
        s.ok("CREATE", q(n))
    s.append("Old/Child", M1)
    s.ok("RENAME", q("Old"), q("New"))
    names = list_names(s.ok("LIST", q(""), q("*")))
    assert {"New", "New/Child", "New/Child/Grand"} <= set(names)
    assert not {"Old", "Old/Child", "Old/Child/Grand"} & set(names)
    r = s.ok("STATUS", q("New/Child"), "(MESSAGES)")
    assert r.named("STATUS")[0].tokens()[3] == ["MESSAGES", "1"]
    assert s.cmd("RENAME", q("Missing"), q("X")).status == "NO"
    assert s.cmd("RENAME", q("New"), q("INBOX")).status == "NO"
    # RENAME INBOX moves its messages into a new mailbox and leaves INBOX empty (§6.3.5)
    s.cmd("DELETE", q("Keep"))
    s.append("INBOX", M3)
    r = s.cmd("RENAME", "INBOX", q("Keep"))
    if r.status == "NO" and target.kind != "lightr":  # Dovecot's maildir INBOX: [CANNOT]
        for n in ("New/Child/Grand", "New/Child", "New"):
            s.ok("DELETE", q(n))
        s.logout()
        pytest.skip(f"{target.kind}: {r.tagged.decode()}")
    assert r.status == "OK", r.tagged
    st = s.ok("STATUS", q("Keep"), "(MESSAGES)").named("STATUS")[0].tokens()[3]
    assert st == ["MESSAGES", "1"]
    st = s.ok("STATUS", "INBOX", "(MESSAGES)").named("STATUS")[0].tokens()[3]
    assert st == ["MESSAGES", "0"]
    for n in ("Keep", "New/Child/Grand", "New/Child", "New"):
        s.ok("DELETE", q(n))
    s.logout()


def test_subscribe_lsub_and_list_extended(target):
    s = Session(target)
    for n in ("Sub", "Sub/A", "Sub/B"):
        s.ok("CREATE", q(n))
    s.ok("SUBSCRIBE", q("Sub/A"))
    s.ok("SUBSCRIBE", q("Sub"))
    lsub = list_names(s.ok("LSUB", q(""), q("Sub*")))
    assert set(lsub) == {"Sub", "Sub/A"}
    lsub = list_names(s.ok("LSUB", q(""), q("Sub/%")))
    assert set(lsub) == {"Sub/A"}
    s.ok("UNSUBSCRIBE", q("Sub"))
    assert set(list_names(s.ok("LSUB", q(""), q("Sub*")))) == {"Sub/A"}
    # LIST-EXTENDED: (SUBSCRIBED) selection, \Subscribed attribute
    r = s.ok("LIST", "(SUBSCRIBED)", q(""), q("Sub*"))
    names = list_names(r)
    assert set(names) == {"Sub/A"} and "\\SUBSCRIBED" in names["Sub/A"]
    # RETURN (CHILDREN SPECIAL-USE STATUS (MESSAGES UIDNEXT)): LIST-STATUS gives a STATUS each
    s.append("Sub/B", M1)
    s.append("Sub/B", M3)
    r = s.ok("LIST", q(""), q("Sub*"), "RETURN",
             "(CHILDREN SPECIAL-USE STATUS (MESSAGES UIDNEXT))")
    names = list_names(r)
    assert "\\HASCHILDREN" in names["Sub"] and "\\HASNOCHILDREN" in names["Sub/B"]
    st = {}
    for x in r.named("STATUS"):
        t = x.tokens()
        n = t[2].decode() if isinstance(t[2], bytes) else t[2]
        st[n] = dict(zip(t[3][::2], t[3][1::2]))
    assert st["Sub/B"]["MESSAGES"] == "2" and st["Sub/A"]["MESSAGES"] == "0"
    # a deleted subscribed mailbox still shows in LSUB/LIST (SUBSCRIBED) as \NonExistent
    s.ok("DELETE", q("Sub/A"))
    r = s.ok("LIST", "(SUBSCRIBED)", q(""), q("Sub*"))
    names = list_names(r)
    assert "\\NONEXISTENT" in names.get("Sub/A", set())
    s.ok("UNSUBSCRIBE", q("Sub/A"))
    assert "Sub/A" not in list_names(s.ok("LIST", "(SUBSCRIBED)", q(""), q("Sub*")))
    for n in ("Sub/B", "Sub"):
        s.ok("DELETE", q(n))
    s.logout()


def test_special_use(target):
    s = Session(target)
    caps = s.caps()
    r = s.ok("LIST", "(SPECIAL-USE)", q(""), q("*"))
    for x in r.named("LIST"):
        assert {f.upper() for f in x.tokens()[2]} & SPECIAL_USES, x
    if target.kind == "lightr":  # a new account's standard mailboxes
        names = list_names(r)
        for n, use in (("Sent", "\\SENT"), ("Drafts", "\\DRAFTS"), ("Trash", "\\TRASH"),
                       ("Junk", "\\JUNK"), ("Archive", "\\ARCHIVE")):
            assert use in names.get(n, set()), (n, names)
        r = s.ok("LIST", q(""), q("Sent"), "RETURN", "(SPECIAL-USE)")
        assert "\\SENT" in list_names(r)["Sent"]
    if "CREATE-SPECIAL-USE" not in caps:
        s.logout()
        pytest.skip("no CREATE-SPECIAL-USE on this target")
    r = s.cmd("CREATE", q("Old Mail"), "(USE (\\Archive))")
    assert r.status == "OK" or r.code("USEATTR") is not None, r.tagged
    if r.status == "OK":
        r = s.ok("LIST", q(""), q("Old Mail"), "RETURN", "(SPECIAL-USE)")
        assert "\\ARCHIVE" in list_names(r)["Old Mail"]
        s.ok("DELETE", q("Old Mail"))
    r = s.cmd("CREATE", q("Bogus"), "(USE (\\NotAUse))")
    assert r.status == "NO" and r.code("USEATTR") is not None
    s.logout()


def test_non_ascii_mailbox_names(target):
    s = Session(target)
    name = "Größe & Co/日本"
    enc = mutf7(name)
    assert enc == "Gr&APYA3w-e &- Co/&ZeVnLA-"
    s.ok("CREATE", q(enc))
    names = list_names(s.ok("LIST", q(""), q("Gr*")))
    assert enc in names and mutf7("Größe & Co") in names
    assert s.cmd("CREATE", q("Bad&Name")).status in ("NO", "BAD")  # invalid modified UTF-7
    s.append(enc, M1)
    if "IMAP4REV2" in s.caps():
        s2 = Session(target)
        s2.ok("ENABLE", "IMAP4rev2")
        names = list_names(s2.ok("LIST", q(""), q("Gr*")))
        assert name in names, names
        r = s2.ok("STATUS", q(name), "(MESSAGES)")
        assert r.named("STATUS")[0].tokens()[3] == ["MESSAGES", "1"]
        s2.ok("SELECT", q(name))
        s2.logout()
    s.ok("DELETE", q(enc))
    s.cmd("DELETE", q(mutf7("Größe & Co")))  # maybe only a \\Noselect parent
    s.logout()


def test_status(target, msgs):
    s = Session(target)
    caps = s.caps()
    items = "MESSAGES UIDNEXT UIDVALIDITY UNSEEN"
    if "STATUS=SIZE" in caps or "IMAP4REV2" in caps:
        items += " SIZE"
    if "CONDSTORE" in caps:
        items += " HIGHESTMODSEQ"
    r = s.ok("STATUS", q("Msgs"), f"({items})")
    t = r.named("STATUS")[0].tokens()
    st = dict(zip(t[3][::2], t[3][1::2]))
    assert st["MESSAGES"] == "4" and st["UNSEEN"] == "2"
    assert int(st["UIDNEXT"]) > msgs[-1] and int(st["UIDVALIDITY"]) > 0
    if "SIZE" in st:
        assert int(st["SIZE"]) == sum(len(m[0]) for m in MSGS)
    if "HIGHESTMODSEQ" in st:
        assert int(st["HIGHESTMODSEQ"]) > 0
    assert s.cmd("STATUS", q("Nope"), "(MESSAGES)").status == "NO"
    s.logout()


def test_quota(target):
    s = Session(target)
    r = s.ok("GETQUOTAROOT", "INBOX")
    root = r.named("QUOTAROOT")[0].tokens()
    assert root[2] == b"INBOX" or root[2] == "INBOX"
    qr = r.named("QUOTA")
    assert qr, r.untagged
    t = qr[0].tokens()
    res = dict(zip(t[3][::3], zip(t[3][1::3], t[3][2::3])))
    assert "STORAGE" in res
    used, limit = (int(x) for x in res["STORAGE"])
    assert 0 <= used <= limit
    qroot = t[2]
    r = s.ok("GETQUOTA", q(qroot))
    assert r.named("QUOTA")
    s.logout()


# ---------------------------------------------------------------- select, append, fetch

def test_select_examine(target, msgs):
    s = Session(target)
    r = s.ok("SELECT", q("Msgs"))
    assert "4" == r.named("EXISTS")[0].text.split()[1].decode()
    flags = r.named("FLAGS")[0].tokens()[2]
    assert {"\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"} <= set(flags)
    assert "$Important" in flags
    assert "\\*" in r.code("PERMANENTFLAGS")[0] + " ".join(r.code("PERMANENTFLAGS"))
    assert int(r.code("UIDVALIDITY")[0]) > 0 and int(r.code("UIDNEXT")[0]) > msgs[-1]
    assert r.code("READ-WRITE") is not None
    r = s.ok("EXAMINE", q("Msgs"))
    assert r.code("READ-ONLY") is not None
    # EXAMINE does not set \Seen by a FETCH BODY[]
    s.ok("FETCH", "3", "BODY[]")
    assert "\\Seen" not in s.ok("FETCH", "3", "FLAGS").fetch()[3]["FLAGS"]
    # a read-only mailbox keeps its flags (NO, or OK without a change as Dovecot does)
    assert s.cmd("STORE", "3", "+FLAGS", "(\\Seen)").status in ("NO", "OK")
    assert "\\Seen" not in s.ok("FETCH", "3", "FLAGS").fetch()[3]["FLAGS"]
    assert s.cmd("SELECT", q("No/Such")).status == "NO"
    # a failed SELECT leaves no mailbox selected
    assert s.cmd("FETCH", "1", "FLAGS").status == "BAD"
    s.logout()


def test_select_condstore_qresync(target):
    s = Session(target)
    uids = fill(s, "Cond")
    r = s.ok("SELECT", q("Cond"), "(CONDSTORE)")
    hms = int(r.code("HIGHESTMODSEQ")[0])
    uidvalidity = r.code("UIDVALIDITY")[0]
    f = s.ok("FETCH", "1:*", "(MODSEQ)").fetch()
    assert all(1 <= int(v["MODSEQ"][0]) <= hms for v in f.values())
    r = s.ok("STORE", "2", "+FLAGS", "(\\Answered)")
    ms2 = int(r.fetch()[2]["MODSEQ"][0])
    assert ms2 > hms
    r = s.ok("UID", "FETCH", "1:*", "(FLAGS)", f"(CHANGEDSINCE {hms})")
    ch = r.fetch()
    assert list(ch) == [2] and "\\Answered" in ch[2]["FLAGS"]
    r = s.ok("SEARCH", "MODSEQ", str(hms + 1))
    assert r.numbers() == [2]
    s.ok("STORE", "4", "+FLAGS.SILENT", "(\\Deleted)")
    s.ok("EXPUNGE")
    s.logout()
    # QRESYNC: VANISHED (EARLIER) for the expunged UID, FETCH for the changed flags
    s = Session(target)
    s.ok("ENABLE", "QRESYNC")
    r = s.ok("SELECT", q("Cond"), f"(QRESYNC ({uidvalidity} {hms}))")
    van = [x.text for x in r.named("VANISHED")]
    assert van and b"(EARLIER)" in van[0] and str(uids[3]).encode() in van[0]
    f = r.fetch()
    assert any(v.get("UID") == str(uids[1]) for v in f.values())
    s.logout()


def test_append(target):
    s = Session(target)
    s.cmd("DELETE", q("Appended"))
    s.ok("CREATE", q("Appended"))
    r = s.append("Appended", M3, "\\Draft $Label1", "15-Mar-2023 08:30:00 -0500")
    uv, uid = (int(x) for x in r.code("APPENDUID"))
    st = s.ok("STATUS", q("Appended"), "(UIDVALIDITY)").named("STATUS")[0].tokens()[3]
    assert st == ["UIDVALIDITY", str(uv)]
    s.ok("SELECT", q("Appended"))
    f = s.ok("UID", "FETCH", str(uid), "(FLAGS INTERNALDATE RFC822.SIZE)").fetch()[1]
    assert flags(f["FLAGS"]) == {"\\Draft", "$Label1"}
    assert idate(f["INTERNALDATE"]) == idate(b"15-Mar-2023 08:30:00 -0500")  # same instant
    assert int(f["RFC822.SIZE"]) == len(M3)
    # APPEND to a missing mailbox: NO [TRYCREATE]
    r = s.cmd("APPEND", q("Missing"), Lit(M1))
    assert r.status == "NO" and r.code("TRYCREATE") is not None
    # non-synchronizing literal (LITERAL+ or LITERAL- for small ones)
    tag = s.tag()
    s.send(tag + b' APPEND "Appended" (\\Seen) {%d+}\r\n' % len(M1) + M1 + b"\r\n")
    r = s.until(tag)
    assert r.status == "OK"
    # the selected mailbox reports the new messages
    assert s.ok("NOOP").named("EXISTS") or r.named("EXISTS")
    # imaplib's own append
    typ, data = s.m.append("Appended", "(\\Flagged)", imaplib.Time2Internaldate(time.time()), M4)
    assert typ == "OK" and b"APPENDUID" in data[0]
    s.ok("CLOSE")
    s.ok("DELETE", q("Appended"))
    s.logout()


def test_fetch_basic_items(target, msgs):
    s = Session(target)
    s.ok("EXAMINE", q("Msgs"))
    f = s.ok("FETCH", "1:4", "(FLAGS UID INTERNALDATE RFC822.SIZE)").fetch()
    assert [int(f[i]["UID"]) for i in (1, 2, 3, 4)] == msgs
    assert flags(f[2]["FLAGS"]) == {"\\Flagged", "$Important"}
    assert flags(f[4]["FLAGS"]) == {"\\Seen", "\\Answered"}
    assert idate(f[1]["INTERNALDATE"]) == idate(b"01-Feb-2023 12:00:00 +0000")
    assert [int(f[i]["RFC822.SIZE"]) for i in (1, 2, 3, 4)] == [len(m[0]) for m in MSGS]
    # macros
    f = s.ok("FETCH", "1", "ALL").fetch()[1]
    assert {"FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"} <= set(f)
    f = s.ok("FETCH", "1", "FULL").fetch()[1]
    assert "BODY" in f
    # UID FETCH always includes UID
    f = s.ok("UID", "FETCH", f"{msgs[2]}", "FLAGS").fetch()
    assert f[3]["UID"] == str(msgs[2])
    # a UID range past the end is not an error; a bad sequence set is
    assert s.ok("UID", "FETCH", "99999:*", "FLAGS").fetch()
    assert s.cmd("FETCH", "0", "FLAGS").status == "BAD"
    s.logout()


def test_fetch_envelope(target, msgs):
    s = Session(target)
    s.ok("EXAMINE", q("Msgs"))
    e = s.ok("FETCH", "1", "ENVELOPE").fetch()[1]["ENVELOPE"]
    date, subject, frm, sender, reply_to, to, cc, bcc, in_reply_to, message_id = e
    assert date == b"Mon, 02 Jan 2023 10:00:00 +0100"
    assert subject == b"=?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus_M=C3=BCnchen?="  # raw, not decoded
    assert frm == [[b"=?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?=", None, b"juergen", b"example.org"]]
    assert sender == frm and reply_to == frm  # defaulted to From (RFC 3501 §7.4.2)
    assert to == [[b"Alice", None, b"alice", b"test.example"],
                  [None, None, b"bob", b"test.example"]]
    assert cc == [[b"Carol C.", None, b"carol", b"example.net"]]
    assert bcc is None and in_reply_to is None
    assert message_id == b"<m1@example.org>"
    e = s.ok("FETCH", "3", "ENVELOPE").fetch()[3]["ENVELOPE"]
    assert e[1] == b"Re: Report with attachment" and e[8] == b"<m2@example.org>"
    s.logout()


def _bs_lower(x):
    if isinstance(x, list):
        return [_bs_lower(i) for i in x]
    if isinstance(x, bytes):
        return x.lower()
    return x


def test_fetch_body_and_bodystructure(target, msgs):
    s = Session(target)
    s.ok("EXAMINE", q("Msgs"))
    f = s.ok("FETCH", "1", "(BODY BODYSTRUCTURE)").fetch()[1]
    body = _bs_lower(f["BODY"])
    assert body[:7] == [b"text", b"plain", [b"charset", b"utf-8"], None, None,
                        b"quoted-printable", str(len(M1) - M1.index(b"\r\n\r\n") - 4)]
    assert body[7] == "3"  # lines
    assert len(body) == 8  # BODY has no extension data
    bs = _bs_lower(f["BODYSTRUCTURE"])
    assert bs[:8] == body and len(bs) > 8  # md5, disposition, ... follow

    bs = _bs_lower(s.ok("FETCH", "2", "BODYSTRUCTURE").fetch()[2]["BODYSTRUCTURE"])
    alt, rfc822, pdf = bs[0], bs[1], bs[2]
    assert bs[3] == b"mixed" and bs[4] == [b"boundary", b"outer"]
    assert alt[0][:2] == [b"text", b"plain"] and alt[1][:2] == [b"text", b"html"]
    assert alt[1][5] == b"base64" and alt[1][6] == "16"
    assert alt[2] == b"alternative"
    assert rfc822[:2] == [b"message", b"rfc822"]
    assert rfc822[6] == str(len(INNER_HDR) + len(INNER_BODY))
    env = rfc822[7]
    assert env[1] == b"forwarded inner" and env[9] == b"<inner@example.com>"
    inner = rfc822[8]
    assert inner[0][:2] == [b"text", b"plain"]
    assert inner[1][:2] == [b"application", b"octet-stream"]
    assert inner[1][2] == [b"name", b"data.bin"]
    assert inner[2] == b"mixed"
    assert int(rfc822[9]) == (INNER_HDR + INNER_BODY).count(b"\r\n")  # lines
    disp = rfc822[11]
    assert disp[0] == b"attachment" and disp[1] == [b"filename", b"fwd.eml"]
    assert pdf[:2] == [b"application", b"pdf"] and pdf[2] == [b"name", b"r.pdf"]
    s.logout()


def test_fetch_sections(target, msgs):
    s = Session(target)
    s.ok("EXAMINE", q("Msgs"))
    hdr_end = M2.index(b"\r\n\r\n") + 4
    cases = {
        "BODY.PEEK[]": M2,
        "BODY.PEEK[HEADER]": M2_HDR,
        "BODY.PEEK[TEXT]": M2_TEXT,
        "BODY.PEEK[1]": None,  # multipart: its body, checked below
        "BODY.PEEK[1.1]": b"Plain part of the report.",
        "BODY.PEEK[1.2]": b"PGI+SGVsbG88L2I+",
        "BODY.PEEK[1.2.MIME]": crlf("Content-Type: text/html; charset=utf-8\n"
                                    "Content-Transfer-Encoding: base64\n\n"),
        "BODY.PEEK[2]": INNER_HDR + INNER_BODY,
        "BODY.PEEK[2.MIME]": PART2_MIME,
        "BODY.PEEK[2.HEADER]": INNER_HDR,
        "BODY.PEEK[2.TEXT]": INNER_BODY,
        "BODY.PEEK[2.1]": b"Inner text with pangolin.",
        "BODY.PEEK[2.2]": b"AAECAwQFBgcICQ==",
        "BODY.PEEK[3]": b"JVBERi0xLjQK",
        "BODY.PEEK[HEADER.FIELDS (Subject Message-ID)]":
            b"Subject: Report with attachment\r\nMessage-ID: <m2@example.org>\r\n\r\n",
        "BODY.PEEK[2.HEADER.FIELDS (SUBJECT)]": b"Subject: Forwarded inner\r\n\r\n",
        "BODY.PEEK[]<0.20>": M2[:20],
        "BODY.PEEK[TEXT]<10.15>": M2_TEXT[10:25],
        "BODY.PEEK[1.1]<6.4>": b"part",
        "BODY.PEEK[]<100000.10>": b"",
        "RFC822.HEADER": M2_HDR,
    }
    assert hdr_end == len(M2_HDR)
    for item, want in cases.items():
        r = s.ok("FETCH", "2", f"({item})")
        d = r.fetch()[2]
        key = item.replace(".PEEK", "").upper()
        key = re.sub(r"<(\d+)\.\d+>$", r"<\1>", key)
        got = [v for k, v in d.items() if k.replace(" ", "") == key.replace(" ", "")]
        assert got, (item, d.keys())
        if want is not None:
            assert got[0] == want or (got[0] is None and want == b""), (item, got[0][:200])
    r = s.ok("FETCH", "2", "BODY.PEEK[1]").fetch()[2]["BODY[1]"]
    assert r.startswith(b"--alt\r\n") and r.rstrip().endswith(b"--alt--")
    # HEADER.FIELDS.NOT
    d = s.ok("FETCH", "3", "BODY.PEEK[HEADER.FIELDS.NOT (Subject Date From To References "
             "In-Reply-To MIME-Version Content-Transfer-Encoding)]").fetch()[3]
    v = list(d.values())[0]
    assert v == b"Message-ID: <m3@example.org>\r\nContent-Type: text/plain; " \
                b"charset=iso-8859-1\r\n\r\n"
    # a missing part is empty, not an error
    d = s.ok("FETCH", "1", "BODY.PEEK[5]").fetch()[1]
    assert list(d.values())[0] in (b"", None)
    s.logout()


def test_fetch_rfc822_and_implicit_seen(target, msgs):
    s = Session(target)
    s.ok("SELECT", q("Msgs"))
    s.ok("STORE", "3", "-FLAGS.SILENT", "(\\Seen)")
    d = s.ok("FETCH", "3", "(RFC822.HEADER RFC822.SIZE)").fetch()[3]
    assert d["RFC822.HEADER"] == M3[:M3.index(b"\r\n\r\n") + 4]
    assert "\\Seen" not in s.ok("FETCH", "3", "FLAGS").fetch()[3]["FLAGS"]
    d = s.ok("FETCH", "3", "RFC822.TEXT").fetch()[3]
    assert d["RFC822.TEXT"] == M3[M3.index(b"\r\n\r\n") + 4:]
    assert "\\Seen" in s.ok("FETCH", "3", "FLAGS").fetch()[3]["FLAGS"]  # RFC822.TEXT sets it
    s.ok("STORE", "3", "-FLAGS.SILENT", "(\\Seen)")
    r = s.ok("FETCH", "3", "BODY.PEEK[TEXT]")
    assert "FLAGS" not in r.fetch()[3]
    r = s.ok("FETCH", "3", "RFC822")
    d = r.fetch()[3]
    assert d["RFC822"] == M3
    assert "\\Seen" in d.get("FLAGS", []) or "\\Seen" in s.ok("FETCH", "3", "FLAGS").fetch()[3][
        "FLAGS"]
    s.ok("STORE", "3", "-FLAGS.SILENT", "(\\Seen)")
    r = s.ok("FETCH", "3", "BODY[1]")
    d = r.fetch()[3]
    assert d["BODY[1]"] == M3[M3.index(b"\r\n\r\n") + 4:]  # a non-multipart's part 1 is its body
    assert "\\Seen" in d.get("FLAGS", [])  # the flag change is reported in the same FETCH
    s.ok("STORE", "3", "-FLAGS.SILENT", "(\\Seen)")
    s.logout()


# ---------------------------------------------------------------- search, sort, thread

def test_search(target, msgs):
    s = Session(target)
    s.ok("EXAMINE", q("Msgs"))
    cases = {
        "ALL": [1, 2, 3, 4],
        "SEEN": [1, 4], "UNSEEN": [2, 3], "FLAGGED": [2], "UNFLAGGED": [1, 3, 4],
        "ANSWERED": [4], "UNANSWERED": [1, 2, 3], "DELETED": [], "UNDELETED": [1, 2, 3, 4],
        "DRAFT": [], "UNDRAFT": [1, 2, 3, 4],
        "KEYWORD $Important": [2], "UNKEYWORD $Important": [1, 3, 4],
        "FROM juergen": [1], "FROM \"Carol\"": [3], "TO bob@test.example": [1],
        "CC carol": [1], "BCC nobody": [],
        "SUBJECT report": [2, 3], "SUBJECT \"unrelated\"": [4],
        "HEADER Message-ID <m2@example.org>": [2], "HEADER References m1": [2, 3],
        "HEADER In-Reply-To \"\"": [2, 3],
        "BODY xylophone": [1], "BODY \"Plain part\"": [2], "TEXT pangolin": [2],
        "BODY secretword": [4],  # base64-decoded
        "TEXT \"Forwarded inner\"": [2], "TEXT amy@example.com": [4],
        "LARGER 3000": [4], "SMALLER 1000": [1, 3],
        "BEFORE 02-Feb-2023": [1], "ON 02-Feb-2023": [2], "SINCE 03-Feb-2023": [3, 4],
        "SENTBEFORE 03-Jan-2023": [1, 4], "SENTON 03-Jan-2023": [2],
        "SENTSINCE 03-Jan-2023": [2, 3],
        "2:3": [2, 3], "1,4": [1, 4], "*": [4], "2:*": [2, 3, 4],
        f"UID {msgs[1]}:{msgs[2]}": [2, 3],
        "OR FLAGGED ANSWERED": [2, 4], "NOT SEEN": [2, 3], "NOT NOT SEEN": [1, 4],
        "OR (FROM bob SUBJECT report) (LARGER 3000)": [2, 4],
        "(OR SEEN FLAGGED) NOT ANSWERED": [1, 2],
        "SEEN SUBJECT report": [],
        "OR OR FLAGGED ANSWERED FROM juergen": [1, 2, 4],
        "NEW": [], "OLD": [1, 2, 3, 4],
    }
    bad = []
    for crit, want in cases.items():
        r = s.ok("SEARCH", crit)
        if sorted(r.numbers()) != want:
            bad.append((crit, want, r.untagged))
    assert not bad
    r = s.ok("UID", "SEARCH", "SUBJECT report")
    assert sorted(r.numbers()) == msgs[1:3]
    assert s.cmd("SEARCH", "FROBNICATE").status == "BAD"
    assert s.cmd("SEARCH", "CHARSET", "X-NO-SUCH", "ALL").status == "NO"
    s.logout()


def test_search_mime_decoded_utf8(target, msgs):
    s = Session(target)
    s.ok("EXAMINE", q("Msgs"))
    cases = [
        ("SUBJECT", "München", [1]),   # RFC 2047 decoded
        ("SUBJECT", "grüße", [1]),     # and case-insensitive
        ("FROM", "Müller", [1]),
        ("BODY", "Käsekuchen", [1]),   # quoted-printable, UTF-8
        ("BODY", "grüße", [3]),        # quoted-printable, ISO-8859-1
        ("TEXT", "schöne", [3]),
    ]
    bad = []
    for key, text, want in cases:
        r = s.ok("SEARCH", "CHARSET", "UTF-8", key, Lit(text.encode()))
        if sorted(r.numbers()) != want:
            bad.append((key, text, want, r.untagged))
    assert not bad
    s.logout()


def test_esearch(target, msgs):
    s = Session(target)
    s.ok("EXAMINE", q("Msgs"))
    r = s.ok("UID", "SEARCH", "RETURN", "(MIN MAX COUNT ALL)", "ALL")
    t = r.named("ESEARCH")[0].tokens()
    assert t[2][0].upper() == "TAG"
    kv = t[3:]
    assert kv[0].upper() == "UID"
    d = dict(zip([k.upper() for k in kv[1::2]], kv[2::2]))
    assert d["MIN"] == str(msgs[0]) and d["MAX"] == str(msgs[-1]) and d["COUNT"] == "4"
    uids = []
    for part in d["ALL"].split(","):
        a, _, b = part.partition(":")
        uids += list(range(int(a), int(b or a) + 1))
    assert uids == msgs
    r = s.ok("SEARCH", "RETURN", "(COUNT)", "FLAGGED")
    t = r.named("ESEARCH")[0].tokens()
    assert [x.upper() if isinstance(x, str) else x for x in t[3:]] == ["COUNT", "1"]
    r = s.ok("SEARCH", "RETURN", "()", "SEEN")  # () means ALL
    assert "ALL" in r.named("ESEARCH")[0].text.decode().upper()
    r = s.ok("SEARCH", "RETURN", "(MIN)", "DELETED")  # no match: no MIN
    assert "MIN" not in r.named("ESEARCH")[0].text.decode().upper()
    s.logout()


def test_sort(target, msgs):
    s = Session(target)
    s.ok("EXAMINE", q("Msgs"))
    cases = {
        "(ARRIVAL)": [1, 2, 3, 4], "(REVERSE ARRIVAL)": [4, 3, 2, 1],
        "(DATE)": [4, 1, 2, 3], "(REVERSE DATE)": [3, 2, 1, 4],
        "(SUBJECT)": [1, 2, 3, 4],  # "Grüße..", "Report..", "Re: Report.." = "Report..", "Zzz"
        "(SIZE)": sorted([1, 2, 3, 4], key=lambda i: len(MSGS[i - 1][0])),
        "(FROM)": [4, 2, 3, 1],  # amy, bob, carol, juergen (mailbox local part)
        "(TO ARRIVAL)": [1, 2, 3, 4],
        "(CC DATE)": [4, 2, 3, 1],  # empty Cc sorts first
    }
    bad = []
    for crit, want in cases.items():
        r = s.ok("SORT", crit, "UTF-8", "ALL")
        if r.numbers("SORT") != want:
            bad.append((crit, want, r.untagged))
    assert not bad
    r = s.ok("UID", "SORT", "(REVERSE ARRIVAL)", "UTF-8", "SUBJECT", "report")
    assert r.numbers("SORT") == [msgs[2], msgs[1]]
    s.logout()


def test_thread(target, msgs):
    s = Session(target)
    s.ok("EXAMINE", q("Msgs"))
    r = s.ok("THREAD", "REFERENCES", "UTF-8", "ALL")
    t = r.named("THREAD")[0].tokens()[2:]
    assert sorted(t, key=str) == sorted([["1", "2", "3"], ["4"]], key=str), t
    r = s.ok("THREAD", "ORDEREDSUBJECT", "UTF-8", "ALL")
    t = r.named("THREAD")[0].tokens()[2:]
    # threads by base subject, ordered by the date of their first message
    assert t == [["4"], ["1"], ["2", "3"]], t
    r = s.ok("UID", "THREAD", "REFERENCES", "UTF-8", "NOT", "UID", str(msgs[0]))
    t = r.named("THREAD")[0].tokens()[2:]
    flat = sorted(int(x) for x in re.findall(r"\d+", str(t)))
    assert flat == msgs[1:]
    s.logout()


# ---------------------------------------------------------------- changing messages

def test_store(target):
    s = Session(target)
    fill(s, "Store")
    r = s.ok("SELECT", q("Store"))
    r = s.ok("STORE", "1", "+FLAGS", "(\\Flagged Work $Custom)")
    assert flags(r.fetch()[1]["FLAGS"]) == {"\\Seen", "\\Flagged", "Work", "$Custom"}
    r = s.ok("STORE", "1", "-FLAGS", "(\\Seen Work)")
    assert flags(r.fetch()[1]["FLAGS"]) == {"\\Flagged", "$Custom"}
    r = s.ok("STORE", "1:2", "FLAGS", "(\\Answered)")
    f = r.fetch()
    assert flags(f[1]["FLAGS"]) == {"\\Answered"} and flags(f[2]["FLAGS"]) == {"\\Answered"}
    r = s.ok("STORE", "3", "+FLAGS.SILENT", "(\\Deleted)")
    assert not r.named("FETCH")
    r = s.ok("UID", "STORE", "1:*", "+FLAGS", "(\\Draft)")
    f = r.fetch()
    assert len(f) == 4 and all("UID" in v for v in f.values())
    # a new keyword joins FLAGS (and PERMANENTFLAGS keeps \*)
    r = s.ok("STORE", "4", "+FLAGS", "(NewKeyword)")
    fl = r.named("FLAGS")
    if fl:
        assert "NewKeyword" in fl[0].tokens()[2]
    r = s.ok("SELECT", q("Store"))
    assert "NewKeyword" in r.named("FLAGS")[0].tokens()[2]
    assert "\\*" in " ".join(r.code("PERMANENTFLAGS"))
    # UNCHANGEDSINCE: a stale modseq fails with [MODIFIED]
    f = s.ok("FETCH", "1:2", "(MODSEQ)").fetch()
    ms = max(int(f[1]["MODSEQ"][0]), int(f[2]["MODSEQ"][0]))
    s.ok("STORE", "1", "+FLAGS", "(\\Seen)")  # message 1 changes after ms, message 2 does not
    r = s.ok("STORE", "1:2", f"(UNCHANGEDSINCE {ms})", "+FLAGS", "(\\Flagged)")
    assert r.code("MODIFIED") == ["1"]
    f = s.ok("FETCH", "1:2", "FLAGS").fetch()
    assert "\\Flagged" not in f[1]["FLAGS"] and "\\Flagged" in f[2]["FLAGS"]
    assert s.cmd("STORE", "1", "+FLAGS", "(\\Bogus)").status in ("BAD", "NO")
    s.ok("CLOSE")
    s.logout()


def test_copy_move(target):
    s = Session(target)
    src = fill(s, "Src")
    s.cmd("DELETE", q("Dst"))
    s.ok("CREATE", q("Dst"))
    s.ok("SELECT", q("Src"))
    r = s.ok("COPY", "1:2", q("Dst"))
    uv, from_uids, to_uids = r.code("COPYUID")
    assert from_uids == f"{src[0]}:{src[1]}" or from_uids == f"{src[0]},{src[1]}"
    st = s.ok("STATUS", q("Dst"), "(MESSAGES UIDVALIDITY)").named("STATUS")[0].tokens()[3]
    assert st == ["MESSAGES", "2", "UIDVALIDITY", uv]
    r = s.cmd("COPY", "1", q("Nowhere"))
    assert r.status == "NO" and r.code("TRYCREATE") is not None
    # MOVE: COPYUID in an untagged OK, EXPUNGE for the moved messages
    r = s.ok("UID", "MOVE", str(src[2]), q("Dst"))
    assert r.code("COPYUID") is not None
    assert [x.text for x in r.named("EXPUNGE")] == [b"* 3 EXPUNGE"]
    r = s.ok("MOVE", "1", q("Dst"))
    assert [x.text for x in r.named("EXPUNGE")] == [b"* 1 EXPUNGE"]
    assert r.code("COPYUID") is not None
    f = s.ok("FETCH", "1:*", "UID").fetch()
    assert [int(v["UID"]) for v in f.values()] == [src[1], src[3]]
    st = s.ok("STATUS", q("Dst"), "(MESSAGES)").named("STATUS")[0].tokens()[3]
    assert st == ["MESSAGES", "4"]
    # flags travel with COPY
    s.ok("SELECT", q("Dst"))
    f = s.ok("FETCH", "1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])").fetch()
    byid = {v["BODY[HEADER.FIELDS (MESSAGE-ID)]"].strip(): flags(v["FLAGS"]) for v in f.values()}
    assert byid[b"Message-ID: <m2@example.org>"] == {"\\Flagged", "$Important"}
    s.ok("CLOSE")
    s.logout()


def test_expunge_uid_expunge_close_unselect(target):
    s = Session(target)
    uids = fill(s, "Exp")
    s.ok("SELECT", q("Exp"))
    s.ok("STORE", "1,3", "+FLAGS.SILENT", "(\\Deleted)")
    r = s.ok("EXPUNGE")
    assert len(r.named("EXPUNGE")) == 2 and after_expunges(r, uids) == [uids[1], uids[3]]
    assert [int(v["UID"]) for v in s.ok("FETCH", "1:*", "UID").fetch().values()] == \
        [uids[1], uids[3]]
    # UID EXPUNGE removes only the listed \Deleted messages
    s.ok("STORE", "1:2", "+FLAGS.SILENT", "(\\Deleted)")
    r = s.ok("UID", "EXPUNGE", str(uids[3]))
    assert [x.text for x in r.named("EXPUNGE")] == [b"* 2 EXPUNGE"]
    # CHECK, NOOP; UNSELECT leaves \Deleted messages; CLOSE expunges silently
    s.ok("CHECK")
    s.ok("NOOP")
    s.ok("UNSELECT")
    assert s.cmd("FETCH", "1", "FLAGS").status == "BAD"
    s.ok("SELECT", q("Exp"))
    r = s.ok("CLOSE")
    assert not r.named("EXPUNGE")
    st = s.ok("STATUS", q("Exp"), "(MESSAGES)").named("STATUS")[0].tokens()[3]
    assert st == ["MESSAGES", "0"]
    # CLOSE after EXAMINE does not expunge
    s.append("Exp", M1, "\\Deleted")
    s.ok("EXAMINE", q("Exp"))
    s.ok("CLOSE")
    st = s.ok("STATUS", q("Exp"), "(MESSAGES)").named("STATUS")[0].tokens()[3]
    assert st == ["MESSAGES", "1"]
    s.logout()


def test_idle(target):
    s = Session(target)
    fill(s, "Idle")
    s.ok("SELECT", q("Idle"))
    other = Session(target)
    tag = s.tag()
    s.send(tag + b" IDLE\r\n")
    assert s.read_resp().text.startswith(b"+")
    other.append("Idle", M1)
    s.settimeout(5)
    t0 = time.monotonic()
    r = s.read_resp()
    assert r.text == b"* 5 EXISTS", r
    assert time.monotonic() - t0 < 3
    s.send(b"DONE\r\n")
    res = s.until(tag)
    assert res.status == "OK"
    s.settimeout(WAIT)
    other.logout()
    s.logout()


def test_logout(target):
    s = Session(target)
    r = s.cmd("LOGOUT")
    assert r.status == "OK" and r.named("BYE")
    assert s.m.readline() == b""
