"""The SMTP server (issue 3) against real clients: swaks, Python smtplib, openssl s_client and raw
sockets for the hostile cases. Every delivered message is read back from the SQLite store and
compared byte for byte with what the client sent.

Setup: one server per test module, with domain test.example and
  alice@   password alice-password
  bob@     password bob-password
  boss@    domain admin
  carol@   disabled
  dave@    quota 1 KiB (already over after one message)
  sales@   alias -> alice, bob, partner@remote.example
  @catch.example catch-all -> bob"""
import base64
import os
import signal
import smtplib
import socket
import sqlite3
import ssl
import subprocess
import time
from email.message import EmailMessage

import pytest

from conftest import Server, free_port, run, wait_port, write_config

PW = {"alice": "alice-password", "bob": "bob-password", "boss": "boss-password"}
EXTRA = """smtp:
  max_message_size: 64KiB
  auth_failure_delay: 0s
  max_errors: 10
"""


def _tls():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _ok(r):
    assert r.returncode == 0, r.stderr
    return r.stdout


class World:
    def __init__(self, lightr_bin, directory, extra=EXTRA):
        self.bin, self.dir = lightr_bin, directory
        self.cfg, self.ports = write_config(directory, extra)
        cli = lambda *a, stdin=None: _ok(run(lightr_bin, *a, config=self.cfg, stdin=stdin))
        cli("domain", "add", "test.example")
        cli("domain", "add", "catch.example")
        for user in ("alice", "bob"):
            cli("account", "add", f"{user}@test.example", "--password-stdin", stdin=PW[user] + "\n")
        cli("account", "add", "boss@test.example", "--password-stdin", "--domain-admin",
            stdin=PW["boss"] + "\n")
        cli("account", "add", "carol@test.example")
        cli("account", "disable", "carol@test.example")
        cli("account", "add", "dave@test.example", "--quota", "1KiB")
        cli("alias", "add", "sales@test.example", "alice@test.example", "bob@test.example",
            "partner@remote.example")
        cli("alias", "add", "@catch.example", "bob@test.example")
        self.cli = cli
        self.start()

    def start(self):
        self.srv = Server(self.bin, config=self.cfg, cwd=self.dir, wait_for=self.ports["mx"])
        for role in ("submission", "submissions"):
            assert wait_port(self.ports[role])

    def db(self):
        return sqlite3.connect(os.path.join(self.dir, "data", "lightr.db"), timeout=10)

    def inbox(self, account):
        """[(header_text, body)] of the account's INBOX in UID order."""
        with self.db() as db:
            return [(bytes(h), bytes(b)) for h, b in db.execute(
                "SELECT m.header_text, bl.data FROM messages m"
                " JOIN mailboxes mb ON mb.id = m.mailbox_id"
                " JOIN accounts a ON a.id = mb.account_id"
                " JOIN blobs bl ON bl.sha256 = m.blob_sha256"
                " WHERE a.address = ? COLLATE NOCASE AND mb.name = 'INBOX' ORDER BY m.uid",
                (account,))]

    def queue(self):
        with self.db() as db:
            return db.execute("SELECT r.rcpt, r.notify, r.orcpt, q.mail_from, q.ret, q.envid,"
                              " q.requiretls FROM queue_rcpts r"
                              " JOIN queue_messages q ON q.id = r.msg_id ORDER BY r.id").fetchall()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from conftest import _bin
    import shutil
    import tempfile
    d = tempfile.mkdtemp(prefix="lightr-smtp-", dir="/tmp")
    os.chmod(d, 0o755)
    w = World(_bin(), d)
    yield w
    w.srv.stop()
    shutil.rmtree(d, ignore_errors=True)


def _raw(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    return s


def _reply(sock):
    """One whole SMTP reply as bytes (a multi-line reply ends with its "NNN " line); what the
    server sent after it stays unread. b"" when the server closed the connection."""
    data = b""
    while True:
        line = b""
        while not line.endswith(b"\n"):
            ch = sock.recv(1)
            if not ch:
                return data + line
            line += ch
        data += line
        if line[3:4] != b"-":
            return data


def _code(sock):
    r = _reply(sock)
    return int(r[:3]) if r[:3].isdigit() else r


def _session(port, helo=b"EHLO client.example"):
    s = _raw(port)
    assert _reply(s).startswith(b"220 ")
    s.sendall(helo + b"\r\n")
    assert _reply(s).startswith(b"250")
    return s


def _msg(subject, body="Hello.\r\n", sender="x@sender.example", to="alice@test.example"):
    return (f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject.replace(' ', '-')}@sender.example>\r\n\r\n{body}").encode()


def _last(world, account):
    return world.inbox(account)[-1]


# ---- inbound MX ----

def test_mx_smtplib_delivers_exact_bytes(world):
    body = _msg("mx one", "Line one\r\n.leading dot\r\n..two dots\r\n\r\nend\r\n")
    n0 = len(world.inbox("alice@test.example"))
    with smtplib.SMTP("127.0.0.1", world.ports["mx"], timeout=10) as s:
        code, ehlo = s.ehlo("client.example")
        assert code == 250
        for ext in (b"PIPELINING", b"SIZE 65536", b"8BITMIME", b"SMTPUTF8",
                    b"ENHANCEDSTATUSCODES", b"CHUNKING", b"DSN", b"STARTTLS"):
            assert ext in ehlo
        assert b"AUTH" not in ehlo
        s.sendmail("x@sender.example", ["Alice@TEST.example"], body)
    box = world.inbox("alice@test.example")
    assert len(box) == n0 + 1
    header, stored = box[-1]
    assert stored == body  # exactly the received bytes, dot-unstuffed
    lines = header.split(b"\r\n")
    assert lines[0] == b"Return-Path: <x@sender.example>"
    assert lines[1] == b"Delivered-To: alice@test.example"
    assert lines[2].startswith(b"Received: from client.example (")
    assert b"[127.0.0.1]" in header and b"by mail.test.example" in header
    assert b"with ESMTP id " in header and b"for <Alice@TEST.example>" in header
    assert header.endswith(b"\r\n") and b"\r\n\r\n" not in header


def test_mx_recipients(world):
    s = _session(world.ports["mx"])
    s.sendall(b"MAIL FROM:<x@sender.example> SIZE=500\r\n")
    assert _code(s) == 250
    cases = [
        (b"nobody@test.example", b"550 5.1.1"),
        (b"carol@test.example", b"550 5.2.1"),
        (b"someone@remote.example", b"550 5.7.1"),
        (b"bob+news@test.example", b"250 2.1.5"),
        (b"BOB@Test.Example", b"250 2.1.5"),
        (b"anything@catch.example", b"250 2.1.5"),
        (b"sales@test.example", b"250 2.1.5"),
    ]
    for addr, want in cases:
        s.sendall(b"RCPT TO:<" + addr + b">\r\n")
        r = _reply(s)
        assert r.startswith(want), (addr, r)
    s.sendall(b"DATA\r\n")
    assert _code(s) == 354
    body = _msg("fanout")
    s.sendall(body + b".\r\n")
    assert _reply(s).startswith(b"250 2.0.0")
    s.sendall(b"QUIT\r\n")
    assert _reply(s).startswith(b"221 2.0.0")
    s.close()
    # bob three ways (+tag, case, catch-all) and through sales: stored once for bob
    assert sum(1 for h, b in world.inbox("bob@test.example") if b == body) == 1
    assert sum(1 for h, b in world.inbox("alice@test.example") if b == body) == 1
    # the alias's remote target goes to the outbound queue with the original recipient as ORCPT
    q = [r for r in world.queue() if r[0] == "partner@remote.example"]
    assert q and q[-1][2] == "rfc822;sales@test.example"


def test_mx_over_quota(world):
    # dave's quota is 1 KiB: the first message fits, after it he is over quota
    with smtplib.SMTP("127.0.0.1", world.ports["mx"], timeout=10) as s:
        s.sendmail("x@sender.example", ["dave@test.example"], _msg("q1", "x" * 800 + "\r\n"))
        s.ehlo()
        s.mail("x@sender.example")
        code, msg = s.rcpt("dave@test.example")
        assert code == 452 and msg.startswith(b"4.2.2")


def test_swaks_plain_pipelining(world):
    r = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(world.ports["mx"]),
                        "--from", "sw@sender.example", "--to", "bob@test.example",
                        "--pipeline", "--header", "Subject: swaks pipelined",
                        "--body", "via swaks"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "<** " not in r.stdout
    header, body = _last(world, "bob@test.example")
    assert b"Subject: swaks pipelined" in body and b"via swaks" in body


def test_swaks_8bit_body(world, tmp_path):
    data = ("From: a@sender.example\r\nTo: bob@test.example\r\nSubject: 8bit\r\n"
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
            "Grüße aus Köln – ½ €\r\n").encode()
    f = tmp_path / "msg.eml"
    f.write_bytes(data)
    r = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(world.ports["mx"]),
                        "--from", "a@sender.example", "--to", "bob@test.example",
                        "--data", str(f)], capture_output=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    # swaks ends the data with "\r\n.\r\n" after the file's own final CRLF: one empty line more
    assert _last(world, "bob@test.example")[1] == data + b"\r\n"


# ---- submission ----

def test_submission_requires_tls_then_auth(world):
    s = _raw(world.ports["submission"])
    assert _reply(s).startswith(b"220 ")
    s.sendall(b"EHLO c.example\r\n")
    ehlo = _reply(s)
    assert b"STARTTLS" in ehlo and b"AUTH" not in ehlo
    s.sendall(b"AUTH PLAIN " + base64.b64encode(b"\0alice@test.example\0alice-password") +
              b"\r\n")
    assert _reply(s).startswith(b"538 5.7.11")
    s.sendall(b"MAIL FROM:<alice@test.example>\r\n")
    assert _reply(s).startswith(b"530 5.7.0")
    s.close()


def test_swaks_starttls_auth_plain_and_login(world):
    for mech in ("PLAIN", "LOGIN"):
        r = subprocess.run(["swaks", "--server", "127.0.0.1", "--port",
                            str(world.ports["submission"]), "--tls", "--auth", mech,
                            "--auth-user", "alice@test.example", "--auth-password",
                            PW["alice"], "--from", "alice@test.example",
                            "--to", "bob@test.example", "--header", f"Subject: swaks {mech}",
                            "--header", "From: alice@test.example"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stdout + r.stderr
        header, body = _last(world, "bob@test.example")
        assert f"Subject: swaks {mech}".encode() in body
        assert b"with ESMTPSA" in header and b"TLSv1." in header
        assert b"alice@test.example" in header  # authenticated user in Received


def test_swaks_implicit_tls(world):
    r = subprocess.run(["swaks", "--server", "127.0.0.1", "--port",
                        str(world.ports["submissions"]), "--tls-on-connect", "--auth", "PLAIN",
                        "--auth-user", "bob@test.example", "--auth-password", PW["bob"],
                        "--from", "bob@test.example", "--to", "alice@test.example",
                        "--header", "Subject: implicit", "--header", "From: bob@test.example"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    header, body = _last(world, "alice@test.example")
    assert b"Subject: implicit" in body and b"with ESMTPSA" in header


def test_swaks_wrong_password(world):
    r = subprocess.run(["swaks", "--server", "127.0.0.1", "--port",
                        str(world.ports["submission"]), "--tls", "--auth", "PLAIN",
                        "--auth-user", "alice@test.example", "--auth-password", "wrong",
                        "--from", "alice@test.example", "--to", "bob@test.example"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "535 5.7.8" in r.stdout


def _submission(world, user):
    s = smtplib.SMTP("127.0.0.1", world.ports["submission"], timeout=10)
    s.starttls(context=_tls())
    s.login(f"{user}@test.example", PW[user])
    return s


def test_smtplib_send_message_utf8_and_attachment(world):
    m = EmailMessage()
    m["From"] = "Älice Ünïcode <alice@test.example>"
    m["To"] = "bob@test.example"
    m["Subject"] = "Grüße — attachment ✓"
    m.set_content("Hallo Bob,\nanbei die Datei.\n")
    m.add_attachment(bytes(range(256)) * 40, maintype="application", subtype="octet-stream",
                     filename="daten.bin")
    # flattening first fixes the MIME boundary, so send_message sends these very bytes
    sent = m.as_bytes(policy=m.policy.clone(linesep="\r\n"))
    with _submission(world, "alice") as s:
        s.send_message(m)
    header, body = _last(world, "bob@test.example")
    assert body == sent


def test_smtputf8_address(world):
    m = EmailMessage()
    m["From"] = "josé@sender.example"
    m["To"] = "alice@test.example"
    m["Subject"] = "utf8 address"
    m.set_content("ok\n")
    with smtplib.SMTP("127.0.0.1", world.ports["mx"], timeout=10) as s:
        s.ehlo("client.example")
        assert s.has_extn("smtputf8")
        s.send_message(m, from_addr="josé@sender.example", to_addrs=["alice@test.example"])
    header, body = _last(world, "alice@test.example")
    assert "Return-Path: <josé@sender.example>".encode() in header
    assert b"UTF8SMTP" in header
    # without SMTPUTF8 a non-ASCII address is refused
    s = _session(world.ports["mx"])
    s.sendall("MAIL FROM:<josé@sender.example>\r\n".encode())
    assert _reply(s)[:1] == b"5"
    s.close()


def test_sender_authorization(world):
    with _submission(world, "alice") as s:
        code, msg = s.mail("bob@test.example")
        assert code == 553 and msg.startswith(b"5.7.1")
        s.rset()
        # her alias (sales has alice among its targets) and a +tag of her own address
        assert s.mail("sales@test.example")[0] == 250
        s.rset()
        assert s.mail("alice+list@test.example")[0] == 250
        s.rset()
        assert s.mail("<>")[0] == 553
        s.rset()
        # envelope fine, From: header someone else's: refused after DATA
        with pytest.raises(smtplib.SMTPDataError) as e:
            s.sendmail("alice@test.example", ["bob@test.example"],
                       _msg("forged", sender="Bob <bob@test.example>", to="bob@test.example"))
        assert e.value.smtp_code == 553
    with _submission(world, "boss") as s:
        # a domain admin may use any address of the domain
        s.sendmail("noreply@test.example", ["alice@test.example"],
                   _msg("admin", sender="noreply@test.example"))
        code, _ = s.mail("boss@other.example")
        assert code == 553


def test_submission_remote_recipient_is_queued_with_dsn(world):
    s = _raw(world.ports["submission"])
    assert _reply(s).startswith(b"220")
    s.sendall(b"EHLO c.example\r\nSTARTTLS\r\n")
    _reply(s)
    assert _reply(s).startswith(b"220 ")
    t = _tls().wrap_socket(s, server_hostname="mail.test.example")
    t.sendall(b"EHLO c.example\r\n")
    ehlo = _reply(t)
    assert b"REQUIRETLS" in ehlo and b"AUTH PLAIN LOGIN" in ehlo
    t.sendall(b"AUTH PLAIN\r\n")
    assert _reply(t).startswith(b"334")
    t.sendall(base64.b64encode(b"\0alice@test.example\0" + PW["alice"].encode()) + b"\r\n")
    assert _reply(t).startswith(b"235 2.7.0")
    t.sendall(b"MAIL FROM:<alice@test.example> RET=HDRS ENVID=abc+2B1 REQUIRETLS\r\n"
              b"RCPT TO:<friend@remote.example> NOTIFY=SUCCESS,FAILURE"
              b" ORCPT=rfc822;friend+2Bx@remote.example\r\n"
              b"RCPT TO:<bob@test.example>\r\nDATA\r\n")
    for want in (b"250", b"250", b"250", b"354"):
        assert _reply(t).startswith(want)
    t.sendall(_msg("to remote", sender="alice@test.example") + b".\r\n")
    assert _reply(t).startswith(b"250 2.0.0")
    t.sendall(b"QUIT\r\n")
    t.close()
    q = [r for r in world.queue() if r[0] == "friend@remote.example"][-1]
    assert q[1] == "SUCCESS,FAILURE" and q[2] == "rfc822;friend+x@remote.example"
    assert q[3] == "alice@test.example" and q[4] == "HDRS" and q[5] == "abc+1" and q[6] == 1


def test_openssl_s_client_starttls(world):
    r = subprocess.run(["openssl", "s_client", "-starttls", "smtp", "-connect",
                        f"127.0.0.1:{world.ports['submission']}", "-quiet", "-crlf"],
                       input=b"EHLO s-client.example\nQUIT\n", capture_output=True, timeout=30)
    out = r.stdout
    assert b"250-AUTH PLAIN LOGIN" in out and b"221 2.0.0" in out


def test_bdat_chunking(world):
    s = _session(world.ports["mx"])
    body = _msg("bdat", "chunked\r\nmessage\r\n.not stuffed\r\n")
    a, b = body[:40], body[40:]
    # pipelined: both chunks and the commands in one write
    s.sendall(b"MAIL FROM:<x@sender.example> BODY=8BITMIME\r\nRCPT TO:<alice@test.example>\r\n" +
              b"BDAT %d\r\n" % len(a) + a + b"BDAT %d LAST\r\n" % len(b) + b)
    for want in (b"250", b"250", b"250", b"250 2.0.0"):
        r = _reply(s)
        assert r.startswith(want), r
    s.sendall(b"QUIT\r\n")
    s.close()
    assert _last(world, "alice@test.example")[1] == body


def test_vrfy_help_noop_rset(world):
    s = _session(world.ports["mx"])
    for cmd, want in ((b"VRFY alice", b"252 2."), (b"HELP", b"214 2.0.0"), (b"NOOP", b"250 2.0.0"),
                      (b"RSET", b"250 2.0.0"), (b"DATA", b"503 5.5.1"),
                      (b"RCPT TO:<alice@test.example>", b"503 5.5.1")):
        s.sendall(cmd + b"\r\n")
        r = _reply(s)
        assert r.startswith(want), (cmd, r)
    s.close()


# ---- limits and hostile input ----

@pytest.mark.parametrize("evil", [
    b"one\n.\nMAIL FROM:<evil@sender.example>\r\n",    # bare LF dot LF (CVE-2023-51764)
    b"one\r\n.\nRCPT TO:<x@test.example>\r\n",         # CRLF . LF
    b"one\n.\r\nmore\r\n",                              # LF . CRLF
    b"one\r.\rtwo\r\n",                                 # bare CR
    b"nul \0 byte\r\n",                                 # NUL
])
def test_smuggling_and_bare_line_endings_refused(world, evil):
    n0 = len(world.inbox("alice@test.example"))
    s = _session(world.ports["mx"])
    s.sendall(b"MAIL FROM:<x@sender.example>\r\nRCPT TO:<alice@test.example>\r\nDATA\r\n")
    for want in (b"250", b"250", b"354"):
        assert _reply(s).startswith(want)
    s.sendall(b"Subject: s\r\n\r\n" + evil + b".\r\n")
    r = _reply(s)
    assert r.startswith(b"550 5.5."), r
    s.sendall(b"NOOP\r\n")  # the session is still in sync: nothing smuggled was executed
    assert _reply(s).startswith(b"250 2.0.0")
    s.close()
    assert len(world.inbox("alice@test.example")) == n0


def test_long_text_line_and_size_limits(world):
    s = _session(world.ports["mx"])
    s.sendall(b"MAIL FROM:<x@sender.example> SIZE=100000\r\n")
    assert _reply(s).startswith(b"552 5.3.4")
    s.sendall(b"MAIL FROM:<x@sender.example>\r\nRCPT TO:<alice@test.example>\r\nDATA\r\n")
    for want in (b"250", b"250", b"354"):
        assert _reply(s).startswith(want)
    s.sendall(b"Subject: long\r\n\r\n" + b"a" * 1200 + b"\r\n.\r\n")
    assert _reply(s).startswith(b"500 5.5.2")
    s.sendall(b"MAIL FROM:<x@sender.example>\r\nRCPT TO:<alice@test.example>\r\nDATA\r\n")
    for want in (b"250", b"250", b"354"):
        assert _reply(s).startswith(want)
    for _ in range(100):  # 100 * 990 bytes > 64 KiB, each line legal
        s.sendall(b"b" * 988 + b"\r\n")
    s.sendall(b".\r\n")
    assert _reply(s).startswith(b"552 5.3.4")
    s.sendall(b"QUIT\r\n")
    s.close()


def test_recipient_limit_and_10000_rcpts(world):
    s = _session(world.ports["mx"])
    s.sendall(b"MAIL FROM:<x@sender.example>\r\n")
    assert _reply(s).startswith(b"250")
    codes = []
    for _ in range(10):  # pipelined in batches, reading the replies in between
        s.sendall(b"RCPT TO:<bob@test.example>\r\n" * 1000)
        codes += [_reply(s)[:9] for _ in range(1000)]
    assert codes[:100] == [b"250 2.1.5"] * 100
    assert set(codes[100:]) == {b"452 4.5.3"}
    s.sendall(b"NOOP\r\n")
    assert _reply(s).startswith(b"250")
    s.close()


def test_huge_command_line_and_garbage(world):
    s = _session(world.ports["mx"])
    chunk = b"x" * (1 << 20)
    for _ in range(100):  # a 100 MB line: refused once at its end, memory stays bounded
        s.sendall(chunk)
    s.sendall(b"\r\nNOOP\r\n")
    assert _reply(s).startswith(b"500 5.5.2")
    assert _reply(s).startswith(b"250")
    replies = []
    for _ in range(12):
        s.sendall(b"\x01\x02garbage\xff\r\n")
        replies.append(_reply(s))
        if replies[-1].startswith(b"421"):
            break
        assert replies[-1][:1] == b"5", replies
    assert replies[-1].startswith(b"421 4.7.0"), replies
    try:  # closed after the 421: EOF, or a reset when the kernel still held unread bytes
        assert s.recv(10) == b""
    except ConnectionResetError:
        pass
    s.close()
    rss = int([l for l in open(f"/proc/{world.srv.proc.pid}/status")
               if l.startswith("VmRSS")][0].split()[1])
    assert rss < 512 * 1024  # KiB: the 100 MB line was never buffered (ASan build overhead incl.)


def test_auth_failures_counted_then_disconnect(world):
    s = _raw(world.ports["submissions"])
    t = _tls().wrap_socket(s, server_hostname="x")
    assert _reply(t).startswith(b"220")
    t.sendall(b"EHLO c.example\r\n")
    _reply(t)
    bad = base64.b64encode(b"\0alice@test.example\0nope")
    for i in range(3):
        t.sendall(b"AUTH PLAIN " + bad + b"\r\n")
        r = _reply(t)
        assert r.startswith(b"535 5.7.8") or (i == 2 and r.startswith(b"421 4.7.0")), r
    if r.startswith(b"535"):
        assert _reply(t).startswith(b"421 4.7.0")
    t.close()


def test_auth_cancel_and_bad_base64(world):
    s = _raw(world.ports["submissions"])
    t = _tls().wrap_socket(s, server_hostname="x")
    assert _reply(t).startswith(b"220")
    t.sendall(b"EHLO c.example\r\nAUTH LOGIN\r\n")
    _reply(t)
    assert _reply(t).startswith(b"334 ")
    t.sendall(b"*\r\n")
    assert _reply(t).startswith(b"501 5.0.0")
    t.sendall(b"AUTH PLAIN !!notbase64!!\r\n")
    assert _reply(t).startswith(b"501 5.5.2")
    t.sendall(b"AUTH LOGIN " + base64.b64encode(b"alice@test.example") + b"\r\n")
    assert _reply(t).startswith(b"334 ")
    t.sendall(base64.b64encode(PW["alice"].encode()) + b"\r\n")
    assert _reply(t).startswith(b"235 2.7.0")
    t.sendall(b"AUTH PLAIN x\r\n")
    assert _reply(t).startswith(b"503 5.5.1")
    t.close()


def test_starttls_pipelined_plaintext_is_dropped(world):
    """CVE-2011-0411: a command sent in plaintext in the same packet as STARTTLS must not be
    executed after the handshake."""
    s = _raw(world.ports["mx"])
    assert _reply(s).startswith(b"220 ")
    s.sendall(b"EHLO client.example\r\n")
    assert b"STARTTLS" in _reply(s)
    s.sendall(b"STARTTLS\r\nMAIL FROM:<evil@sender.example>\r\n")
    assert _reply(s) == b"220 2.0.0 Ready to start TLS\r\n"
    t = _tls().wrap_socket(s, server_hostname="mail.test.example")
    t.settimeout(1.0)
    with pytest.raises(socket.timeout):
        t.recv(100)  # the injected MAIL was not answered
    t.settimeout(10)
    t.sendall(b"MAIL FROM:<x@sender.example>\r\n")
    assert _reply(t).startswith(b"503")  # EHLO again first (RFC 3207 §4.2)
    t.sendall(b"EHLO client.example\r\n")
    assert b"STARTTLS" not in _reply(t)
    t.sendall(b"QUIT\r\n")
    assert _reply(t).startswith(b"221")
    t.close()


def test_acknowledged_message_survives_kill9(world):
    body = _msg("kill nine")
    s = smtplib.SMTP("127.0.0.1", world.ports["mx"], timeout=10)
    s.sendmail("x@sender.example", ["alice@test.example"], body)  # returns after the 250
    world.srv.proc.send_signal(signal.SIGKILL)
    world.srv.proc.wait()
    s.close()
    world.srv.logf.close()
    assert world.inbox("alice@test.example")[-1][1] == body
    with world.db() as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    world.start()


# ---- settings that need their own server ----

def test_timeouts_messages_per_connection_and_slowloris(lightr_bin, tmpdir_world):
    cfg, ports = write_config(tmpdir_world, "smtp:\n  timeout: 5s\n"
                              "  max_messages_per_connection: 2\n")
    _ok(run(lightr_bin, "domain", "add", "test.example", config=cfg))
    _ok(run(lightr_bin, "account", "add", "alice@test.example", config=cfg))
    srv = Server(lightr_bin, config=cfg, cwd=tmpdir_world, wait_for=ports["mx"])
    try:
        s = _session(ports["mx"])
        for i in range(2):
            s.sendall(b"MAIL FROM:<x@sender.example>\r\nRCPT TO:<alice@test.example>\r\n"
                      b"DATA\r\n" + _msg(f"n{i}") + b".\r\n")
            for want in (b"250", b"250", b"354", b"250"):
                assert _reply(s).startswith(want)
        s.sendall(b"MAIL FROM:<x@sender.example>\r\n")
        assert _reply(s).startswith(b"421 4.7.0")
        s.close()
        # slowloris: one byte per second never completes a command within 5 s
        s = _raw(ports["mx"])
        assert _reply(s).startswith(b"220")
        t0 = time.monotonic()
        closed = False
        for ch in b"EHLO very-slow-client.example.example.example.example\r\n":
            try:
                s.sendall(bytes([ch]))
            except OSError:
                closed = True
                break
            s.settimeout(1.0)
            try:
                data = s.recv(100)
                if data.startswith(b"421") or data == b"":
                    closed = True
                    break
            except socket.timeout:
                pass
        assert closed and time.monotonic() - t0 < 30
        s.close()
        deadline = time.monotonic() + 10
        while "reason=timeout" not in srv.log() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "reason=timeout" in srv.log()
    finally:
        srv.stop()
