"""The IMAP server (issue 4) against hostile and unusual clients, over raw sockets: login refused
before TLS (LOGINDISABLED) and the loopback exception, over-long lines, oversize literals
(synchronizing and not), deep nesting, invalid sequence sets, "*:*" on an empty mailbox, bad
modified UTF-7, NUL bytes, failed logins delayed then disconnected, the pre-auth timeout, too
many errors, 10 MB of junk on one line with bounded memory, COMPRESS=DEFLATE (RFC 4978) with
Python's zlib, and IDLE seeing an SMTP delivery.

Each test opens its own connection: error counters are per connection. Waits are generous
(10 s) and no test depends on a timing threshold, except that a failed login is answered
after at least the configured delay.

Setup: one server per module with domain test.example and
  alice@   password alice-password
  bob@     password bob-password  (receives the IDLE delivery)
and the limits in EXTRA."""
import base64
import os
import shutil
import smtplib
import socket
import ssl
import subprocess
import tempfile
import time
import zlib

import pytest

from conftest import Server, _bin, run, wait_port, write_config

PW = {"alice": "alice-password", "bob": "bob-password"}
EXTRA = """imap:
  plaintext_auth_loopback: true
  max_literal: 1MiB
  max_errors: 10
  max_auth_failures: 3
  auth_failure_delay: 1s
  preauth_timeout: 2s
"""
WAIT = 10.0


def _tls():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _ok(r):
    assert r.returncode == 0, r.stderr
    return r.stdout


class Imap:
    """A raw IMAP connection: bytes out, lines in; optionally TLS and/or DEFLATE."""

    def __init__(self, port, tls=False):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        if tls:
            self.sock = _tls().wrap_socket(self.sock, server_hostname="localhost")
        self.buf = b""
        self.eof = False
        self.zin = self.zout = None
        self.greeting = self.line()

    def close(self):
        self.sock.close()

    def starttls(self):
        assert self.buf == b""
        self.sock = _tls().wrap_socket(self.sock, server_hostname="localhost")

    def compress(self):
        self.zin = zlib.decompressobj(wbits=-15)
        self.zout = zlib.compressobj(wbits=-15)

    def send(self, data):
        if self.zout is not None:
            data = self.zout.compress(data) + self.zout.flush(zlib.Z_SYNC_FLUSH)
        self.sock.sendall(data)

    def _fill(self, timeout):
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            return
        if self.zin is not None:
            data = self.zin.decompress(data)
        self.buf += data

    def line(self, timeout=WAIT):
        """One response line with its CRLF; b"" at EOF."""
        while b"\n" not in self.buf and not self.eof:
            self._fill(timeout)
        if b"\n" not in self.buf:
            out, self.buf = self.buf, b""
            return out
        i = self.buf.index(b"\n") + 1
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def until(self, tag, timeout=WAIT):
        """Lines up to and including the one tagged tag; raises at EOF."""
        lines = []
        while True:
            line = self.line(timeout)
            if line == b"":
                raise EOFError(lines)
            lines.append(line)
            if line.startswith(tag + b" "):
                return lines

    def cmd(self, tag, text, timeout=WAIT):
        self.send(tag + b" " + text + b"\r\n")
        return self.until(tag, timeout)

    def rest(self, timeout=WAIT):
        """Every line until the server closes the connection."""
        lines = []
        while True:
            line = self.line(timeout)
            if line == b"":
                return lines
            lines.append(line)

    def login(self, user="alice"):
        r = self.cmd(b"L", b"LOGIN " + f"{user}@test.example {PW[user]}".encode())
        assert r[-1].startswith(b"L OK"), r
        return r


def _tagged(lines, tag):
    return [l for l in lines if l.startswith(tag + b" ")][-1]


class World:
    def __init__(self, lightr_bin, directory, extra=EXTRA):
        self.bin, self.dir = lightr_bin, directory
        self.cfg, self.ports = write_config(directory, extra)
        cli = lambda *a, stdin=None: _ok(run(lightr_bin, *a, config=self.cfg, stdin=stdin))
        cli("domain", "add", "test.example")
        for user in ("alice", "bob"):
            cli("account", "add", f"{user}@test.example", "--password-stdin",
                stdin=PW[user] + "\n")
        self.srv = Server(self.bin, config=self.cfg, cwd=self.dir, wait_for=self.ports["imap"])
        assert wait_port(self.ports["mx"])

    def rss_kib(self):
        with open(f"/proc/{self.srv.proc.pid}/status") as f:
            return int([l for l in f if l.startswith("VmRSS")][0].split()[1])

    def connect(self, tls=False):
        return Imap(self.ports["imaps" if tls else "imap"], tls=tls)


@pytest.fixture(scope="module")
def world():
    d = tempfile.mkdtemp(prefix="lightr-imap-", dir="/tmp")
    os.chmod(d, 0o755)
    w = World(_bin(), d)
    yield w
    rc = w.srv.stop()
    log = w.srv.log()
    shutil.rmtree(d, ignore_errors=True)
    assert rc == 0 and "Sanitizer" not in log and "runtime error" not in log, log[-4000:]


@pytest.fixture
def strict(lightr_bin, tmpdir_world):
    """A server with the default IMAP settings: no login without TLS, even from loopback."""
    cfg, ports = write_config(tmpdir_world)
    _ok(run(lightr_bin, "domain", "add", "test.example", config=cfg))
    _ok(run(lightr_bin, "account", "add", "alice@test.example", "--password-stdin",
            config=cfg, stdin=PW["alice"] + "\n"))
    srv = Server(lightr_bin, config=cfg, cwd=tmpdir_world, wait_for=ports["imap"])
    srv.ports = ports
    yield srv
    assert srv.stop() == 0, srv.log()[-4000:]


# ---- login before TLS ----

def test_login_refused_without_tls(strict):
    c = Imap(strict.ports["imap"])
    assert c.greeting.startswith(b"* OK [CAPABILITY IMAP4rev1")
    assert b" STARTTLS" in c.greeting and b" LOGINDISABLED" in c.greeting
    assert b"AUTH=PLAIN" not in c.greeting
    r = c.cmd(b"a", b"LOGIN alice@test.example alice-password")
    assert r[-1].startswith(b"a NO [PRIVACYREQUIRED]"), r
    r = c.cmd(b"b", b"AUTHENTICATE PLAIN AGFsaWNlQHRlc3QuZXhhbXBsZQBhbGljZS1wYXNzd29yZA==")
    assert not r[-1].startswith(b"b OK"), r
    # After STARTTLS on the same connection the login works.
    assert c.cmd(b"c", b"STARTTLS")[-1].startswith(b"c OK")
    c.starttls()
    r = c.cmd(b"d", b"CAPABILITY")
    caps = [l for l in r if l.startswith(b"* CAPABILITY ")][0]
    assert b"LOGINDISABLED" not in caps and b"STARTTLS" not in caps and b"AUTH=PLAIN" in caps
    c.login()
    assert c.cmd(b"e", b"LOGOUT")[-1].startswith(b"e OK")
    c.close()
    # Implicit TLS: login at once.
    t = Imap(strict.ports["imaps"], tls=True)
    assert b"LOGINDISABLED" not in t.greeting and b"STARTTLS" not in t.greeting
    t.login()
    t.close()


def test_login_allowed_on_loopback_when_configured(world):
    c = world.connect()
    assert b"LOGINDISABLED" not in c.greeting and b"STARTTLS" in c.greeting
    r = c.login()
    assert b"[CAPABILITY " in r[-1]
    assert c.cmd(b"z", b"LOGOUT")[-1].startswith(b"z OK")
    c.close()


# ---- lines, literals, nesting ----

def test_line_over_max(world):
    c = world.connect()
    # Before login: 8 KiB.
    r = c.cmd(b"a", b"NOOP " + b"x" * 9000)
    assert r[-1].startswith(b"a BAD"), r
    assert c.cmd(b"b", b"NOOP")[-1].startswith(b"b OK")
    c.login()
    # After login: 64 KiB; a 9000-byte line is fine now.
    r = c.cmd(b"c", b"NOOP " + b"x" * 9000)
    assert not r[-1].startswith(b"c OK")  # NOOP takes no arguments, but it was parsed
    r = c.cmd(b"d", b"NOOP " + b"x" * 70000)
    assert r[-1].startswith(b"d BAD") and b"too long" in r[-1].lower(), r
    assert c.cmd(b"e", b"NOOP")[-1].startswith(b"e OK")
    c.close()


def test_junk_10mb_one_line_memory_bounded(world):
    c = world.connect()
    c.login()
    before = world.rss_kib()
    chunk = b"\x01junk" * 20000  # 100 KB, no LF
    for _ in range(100):
        c.send(chunk)
    c.send(b"\r\n")
    line = c.line()  # "* BAD": the junk has no valid tag
    assert b" BAD " in line, line
    assert c.cmd(b"b", b"NOOP")[-1].startswith(b"b OK")
    after = world.rss_kib()
    # The 10 MB line was never buffered whole (generous: ASan build, other threads).
    assert after - before < 8 * 1024, (before, after)
    c.close()


def test_sync_literal_over_max_gets_no_continuation(world):
    c = world.connect()
    # Before login: 8 KiB literals.
    c.send(b"a LOGIN {10000}\r\n")
    line = c.line()
    assert not line.startswith(b"+"), line
    assert line.startswith(b"a BAD"), line
    assert c.cmd(b"b", b"NOOP")[-1].startswith(b"b OK")
    c.login()
    # After login: APPEND over imap.max_literal (1 MiB) is NO [TOOBIG] (RFC 7889), no "+".
    c.send(b"c APPEND INBOX {2000000}\r\n")
    line = c.line()
    assert line.startswith(b"c NO [TOOBIG]"), line
    assert c.cmd(b"d", b"NOOP")[-1].startswith(b"d OK")
    # A literal that fits gets its "+".
    c.send(b"e APPEND INBOX {10}\r\n")
    assert c.line().startswith(b"+")
    c.send(b"Subject: x\r\n")
    r = c.until(b"e")
    assert r[-1].startswith(b"e OK") or r[-1].startswith(b"e NO"), r
    c.close()


def test_nonsync_literal_over_max(world):
    """LITERAL+ (RFC 7888): a non-synchronizing literal over the limit is refused with BAD; its
    bytes are skipped, never run as commands."""
    c = world.connect()
    c.send(b"a LOGIN {9000+}\r\n" + b"b NOOP\r\n" * 1125 + b"\r\n")  # 9000 bytes of "data"
    c.send(b"c NOOP\r\n")
    lines = c.until(b"c")
    assert any(l.startswith(b"a BAD") or l.startswith(b"* BAD") for l in lines), lines
    assert not any(l.startswith(b"+") for l in lines), lines
    assert not any(l.startswith(b"b ") for l in lines), lines  # the literal was not executed
    assert lines[-1].startswith(b"c OK"), lines
    c.close()


def test_literal_minus_before_login(world):
    """Before login the server offers LITERAL- (RFC 7888 §4): a non-synchronizing literal of
    200 octets is read as part of the command, one of 5000 (below the pre-login literal limit of 8 KiB) is refused and
    skipped; after login LITERAL+ takes any size up to the limit."""
    c = world.connect()
    caps = c.cmd(b"k", b"CAPABILITY")
    assert any(b" LITERAL-" in l for l in caps) and not any(b"LITERAL+" in l for l in caps), caps
    c.send(b"a LOGIN {200+}\r\n" + b"x" * 200 + b" y\r\n")
    assert _tagged(c.until(b"a"), b"a").startswith(b"a NO"), "a wrong login, not a syntax error"
    c.send(b"b LOGIN {5000+}\r\n" + b"c NOOP\r\n" * 625 + b" y\r\n")
    c.send(b"d NOOP\r\n")
    lines = c.until(b"d")
    assert any(l.startswith(b"b BAD") or l.startswith(b"* BAD") for l in lines), lines
    assert not any(l.startswith(b"c ") for l in lines), lines
    assert lines[-1].startswith(b"d OK"), lines
    c.login()
    caps = c.cmd(b"k2", b"CAPABILITY")
    assert any(b"LITERAL+" in l for l in caps), caps
    c.close()


def test_deep_nesting(world):
    c = world.connect()
    c.login()
    assert c.cmd(b"s", b"SELECT INBOX")[-1].startswith(b"s OK")
    r = c.cmd(b"a", b"SEARCH " + b"(" * 300 + b"ALL" + b")" * 300)
    assert r[-1].startswith(b"a BAD"), r
    r = c.cmd(b"b", b"SEARCH " + b"NOT " * 3000 + b"ALL")
    assert r[-1].startswith(b"b BAD") or r[-1].startswith(b"b OK"), r
    r = c.cmd(b"c", b"FETCH 1 " + b"(" * 300 + b"FLAGS" + b")" * 300)
    assert r[-1].startswith(b"c BAD"), r
    assert c.cmd(b"d", b"NOOP")[-1].startswith(b"d OK")
    c.close()


def test_invalid_sequence_sets(world):
    c = world.connect()
    c.login()
    # A fresh mailbox of its own, so that it is empty whatever other tests delivered.
    name = f"Empty{time.monotonic_ns()}".encode()
    assert c.cmd(b"m", b"CREATE " + name)[-1].startswith(b"m OK")
    r = c.cmd(b"s", b"SELECT " + name)
    assert b"* 0 EXISTS\r\n" in r and r[-1].startswith(b"s OK"), r
    for i, bad in enumerate([b"0", b"1:abc", b"4294967296", b"1,,2", b"-1"]):
        tag = b"b%d" % i
        r = c.cmd(tag, b"FETCH " + bad + b" FLAGS")
        assert r[-1].startswith(tag + b" BAD"), (bad, r)
    # "*:*" on an empty mailbox: no message to name; a clean reply, never a FETCH.
    r = c.cmd(b"e", b"FETCH *:* FLAGS")
    assert r[-1].startswith(b"e NO") or r[-1].startswith(b"e BAD"), r
    assert not any(b" FETCH " in l for l in r[:-1]), r
    r = c.cmd(b"f", b"UID FETCH *:* FLAGS")
    assert r[-1][:4] in (b"f OK", b"f NO", b"f BA"), r
    assert not any(b" FETCH " in l for l in r[:-1]), r
    r = c.cmd(b"g", b"STORE *:* +FLAGS (\\Seen)")
    assert not r[-1].startswith(b"g OK") or len(r) == 1, r
    assert c.cmd(b"h", b"NOOP")[-1].startswith(b"h OK")  # still alive, under max_errors
    c.close()


def test_bad_modified_utf7_names(world):
    c = world.connect()
    c.login()
    for i, name in enumerate([b"&Jjo", b"&AGE-", b"&2D0-", b"&-&", b"a&Jjo!-b", b"&AAA-"]):
        tag = b"c%d" % i
        r = c.cmd(tag, b'CREATE "' + name + b'"')
        assert r[-1].startswith(tag + b" BAD") or r[-1].startswith(tag + b" NO"), (name, r)
    # A valid one works and is listed in the same spelling.
    r = c.cmd(b"d", b'CREATE "Caf&AOk-"')
    assert r[-1].startswith(b"d OK"), r
    r = c.cmd(b"e", b'LIST "" "Caf*"')
    assert any(b'"Caf&AOk-"' in l or b"Caf&AOk-" in l for l in r), r
    c.close()


def test_nul_bytes(world):
    c = world.connect()
    r = c.cmd(b"a", b"NOOP\x00x")
    assert r[-1].startswith(b"a BAD") or r[-1].startswith(b"* BAD"), r
    r = c.cmd(b"b", b"LOGIN alice@test.example\x00 x")
    assert not r[-1].startswith(b"b OK"), r
    c.login()
    r = c.cmd(b"d", b'SELECT "IN\x00BOX"')
    assert not r[-1].startswith(b"d OK"), r
    assert c.cmd(b"e", b"NOOP")[-1].startswith(b"e OK")
    c.close()


# ---- abuse limits ----

def test_failed_logins_delayed_then_disconnected(world):
    c = world.connect()
    t0 = time.monotonic()
    replies = []
    for i in range(3):
        c.send(b"a%d LOGIN alice@test.example wrong-password\r\n" % i)
        replies.append(c.line(timeout=30))
    # n-th failure waits n * auth_failure_delay (1 s): at least 1 + 2 s in total before the third.
    assert time.monotonic() - t0 >= 2.5
    for i, r in enumerate(replies):
        assert r.startswith(b"a%d NO [AUTHENTICATIONFAILED]" % i), replies
    rest = c.rest(timeout=30)
    assert rest and rest[0].startswith(b"* BYE"), rest
    c.close()
    # The account itself is fine.
    d = world.connect()
    d.login()
    d.close()


def test_too_many_errors(world):
    c = world.connect()
    for i in range(10):  # imap.max_errors
        c.send(b"x%d BOGUS\r\n" % i)
        line = c.line()
        assert line.startswith(b"x%d BAD " % i), (i, line)
    assert c.line().startswith(b"* BYE"), c.buf
    assert c.rest() == []
    c.close()


def test_preauth_timeout(world):
    c = world.connect()
    rest = c.rest(timeout=WAIT)  # imap.preauth_timeout is 2 s here
    assert rest and rest[0].startswith(b"* BYE"), rest
    c.close()
    # A client dribbling bytes of a command that never ends is cut off as well.
    d = world.connect()
    t0 = time.monotonic()
    got = b""
    while time.monotonic() - t0 < WAIT:
        try:
            d.sock.sendall(b"x")
            d.sock.settimeout(0.2)
            data = d.sock.recv(100)
        except socket.timeout:
            continue
        except OSError:
            break
        got += data
        if data == b"":
            break
    assert time.monotonic() - t0 < WAIT, "still connected"
    assert got == b"" or got.startswith(b"* BYE"), got
    d.close()
    # After login the autologout timer (>= 30 min) applies instead.
    e = world.connect()
    e.login()
    time.sleep(3)
    assert e.cmd(b"n", b"NOOP")[-1].startswith(b"n OK")
    e.close()


# ---- COMPRESS=DEFLATE ----

def test_compress_deflate(world):
    c = world.connect()
    r = c.login()
    assert b"COMPRESS=DEFLATE" in r[-1]
    assert c.cmd(b"a", b"COMPRESS DEFLATE")[-1] == b"a OK DEFLATE active\r\n"
    c.compress()
    assert c.cmd(b"b", b"NOOP")[-1].startswith(b"b OK")
    r = c.cmd(b"c", b'LIST "" "*"')
    assert r[-1].startswith(b"c OK") and any(b"INBOX" in l for l in r), r
    r = c.cmd(b"d", b"CAPABILITY")
    assert r[-1].startswith(b"d OK") and not any(b"COMPRESS=DEFLATE" in l for l in r[:-1]), r
    r = c.cmd(b"e", b"COMPRESS DEFLATE")
    assert r[-1].startswith(b"e NO [COMPRESSIONACTIVE]"), r
    # Large input and output (incompressible, many times the 8 KiB staging buffers): APPEND a
    # 200 KB message, then FETCH it back.
    body = base64.encodebytes(os.urandom(150000)).replace(b"\n", b"\r\n")
    msg = b"From: a@test.example\r\nSubject: big\r\n\r\n" + body
    name = f"Big{time.monotonic_ns()}".encode()
    assert c.cmd(b"f", b"CREATE " + name)[-1].startswith(b"f OK")
    c.send(b"g APPEND " + name + b" {%d}\r\n" % len(msg))
    assert c.line().startswith(b"+")
    c.send(msg + b"\r\n")
    assert c.until(b"g")[-1].startswith(b"g OK")
    assert c.cmd(b"s", b"SELECT " + name)[-1].startswith(b"s OK")
    c.send(b"t FETCH 1 BODY.PEEK[]\r\n")
    head = c.line()
    assert head.startswith(b"* 1 FETCH (BODY[] {%d}" % len(msg)), head
    while len(c.buf) < len(msg) and not c.eof:
        c._fill(WAIT)
    assert c.buf[:len(msg)] == msg
    c.buf = c.buf[len(msg):]
    assert c.until(b"t")[-1].startswith(b"t OK")
    assert c.cmd(b"h", b"LOGOUT")[-1].startswith(b"h OK")
    assert c.rest() == []
    c.close()


# ---- IDLE ----

def test_idle_sees_smtp_delivery(world):
    c = world.connect()
    c.login("bob")
    r = c.cmd(b"s", b"SELECT INBOX")
    exists = [int(l.split()[1]) for l in r if l.endswith(b" EXISTS\r\n")][0]
    c.send(b"i IDLE\r\n")
    assert c.line().startswith(b"+ ")
    with smtplib.SMTP("127.0.0.1", world.ports["mx"], timeout=WAIT) as s:
        s.sendmail("sender@remote.example", ["bob@test.example"],
                   b"From: sender@remote.example\r\nTo: bob@test.example\r\n"
                   b"Subject: idle test\r\n\r\nhello\r\n")
    line = c.line(timeout=WAIT)  # the server polls every 250 ms; 10 s is generous
    assert line == b"* %d EXISTS\r\n" % (exists + 1), line
    c.send(b"DONE\r\n")
    r = c.until(b"i")
    assert r[-1].startswith(b"i OK"), r
    r = c.cmd(b"f", b"FETCH %d (FLAGS)" % (exists + 1))
    assert r[-1].startswith(b"f OK"), r
    c.close()


def test_idle_compressed_and_tls(world):
    """IDLE over TLS plus DEFLATE: DONE arrives compressed and encrypted."""
    c = world.connect(tls=True)
    c.login()
    assert c.cmd(b"a", b"COMPRESS DEFLATE")[-1].startswith(b"a OK")
    c.compress()
    assert c.cmd(b"s", b"SELECT INBOX")[-1].startswith(b"s OK")
    c.send(b"i IDLE\r\n")
    assert c.line().startswith(b"+ ")
    time.sleep(0.6)  # a few idle slices pass
    c.send(b"DONE\r\n")
    assert c.until(b"i")[-1].startswith(b"i OK")
    assert c.cmd(b"n", b"NOOP")[-1].startswith(b"n OK")
    c.close()


def test_shutdown_says_bye_to_idle_client(lightr_bin, tmpdir_world):
    cfg, ports = write_config(tmpdir_world, "imap: {plaintext_auth_loopback: true}\n"
                              "limits: {shutdown_timeout: 1s}\n")
    _ok(run(lightr_bin, "domain", "add", "test.example", config=cfg))
    _ok(run(lightr_bin, "account", "add", "alice@test.example", "--password-stdin",
            config=cfg, stdin=PW["alice"] + "\n"))
    srv = Server(lightr_bin, config=cfg, cwd=tmpdir_world, wait_for=ports["imap"])
    try:
        c = Imap(ports["imap"])
        c.login()
        assert c.cmd(b"s", b"SELECT INBOX")[-1].startswith(b"s OK")
        c.send(b"i IDLE\r\n")
        assert c.line().startswith(b"+ ")
        srv.signal(15)
        rest = c.rest(timeout=WAIT)
        assert rest and rest[0].startswith(b"* BYE"), rest
        assert srv.proc.wait(WAIT) == 0
        assert "reason=shutdown" in srv.log() and "user=alice@test.example" in srv.log()
        c.close()
    finally:
        srv.stop()
