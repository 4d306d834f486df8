"""`lightr send` (issue 5): a message from standard input goes through the submission path.
Local recipients find it in their INBOX (read back over IMAP; local-only mail is not DKIM-signed:
it never leaves the server); a remote recipient is queued with the VERP envelope sender
bounce+<token>@<domain>, dsn_to = the sender, and DKIM-Signature fields (Ed25519 and RSA) in the
queue header that python3-dkim verifies with the keys printed by `lightr domain dns`. Senders
that are not ours are refused, and so are oversized messages."""
import imaplib
import os
import re
import sqlite3
import subprocess
import sys
import time

import pytest

from conftest import free_port, run, wait_port, write_config

EXTRA = ("imap:\n  plaintext_auth_loopback: true\n  auth_failure_delay: 0s\n"
         "smtp:\n  max_message_size: 64KiB\n")
PASSWORD = "alice-secret-1"


@pytest.fixture
def setup(lightr_bin, tmpdir_world):
    cfg, ports = write_config(tmpdir_world, EXTRA)
    for args, stdin in ((("domain", "add", "example.org"), None),
                        (("account", "add", "alice@example.org", "--password-stdin"),
                         PASSWORD + "\n"),
                        (("account", "add", "bob@example.org", "--password-stdin"),
                         PASSWORD + "\n"),
                        (("alias", "add", "team@example.org", "alice@example.org"), None)):
        r = run(lightr_bin, *args, config=cfg, stdin=stdin)
        assert r.returncode == 0, r.stderr
    return cfg, ports, tmpdir_world


def db_path(d):
    return os.path.join(d, "data", "lightr.db")


def queue_rows(d):
    con = sqlite3.connect(db_path(d))
    try:
        con.row_factory = sqlite3.Row
        return [dict(r) for r in con.execute(
            "SELECT m.id, m.mail_from, m.return_path, m.bounce_token, m.dsn_to, m.auth_user,"
            " m.header_text, b.data AS body FROM queue_messages m"
            " JOIN blobs b ON b.sha256 = m.blob_sha256 ORDER BY m.id")]
    finally:
        con.close()


def imap_inbox(port, user):
    m = imaplib.IMAP4("127.0.0.1", port, timeout=20)
    try:
        m.login(user, PASSWORD)
        typ, data = m.select("INBOX")
        assert typ == "OK"
        n = int(data[0])
        msgs = []
        for i in range(1, n + 1):
            typ, d = m.fetch(str(i), "(BODY.PEEK[])")
            assert typ == "OK"
            msgs.append(d[0][1])
        m.logout()
        return msgs
    except Exception:
        m.shutdown()
        raise


def test_send_local_readable_over_imap(lightr_bin, setup, server_factory):
    cfg, ports, d = setup
    srv = server_factory(config=cfg, wait_for=ports["imap"])
    msg = "From: Alice <alice@example.org>\nTo: bob@example.org\nSubject: from cron\n\nline one\n"
    r = run(lightr_bin, "send", "bob@example.org", config=cfg, stdin=msg)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("sent id=") and "queue=" not in r.stdout
    msgs = imap_inbox(ports["imap"], "bob@example.org")
    assert len(msgs) == 1, srv.log()
    m = msgs[0]
    assert b"Return-Path: <alice@example.org>\r\n" in m
    assert b"Delivered-To: bob@example.org\r\n" in m
    assert b"via lightr send" in m
    # RFC 6409 §8: Date and Message-ID added; LF turned into CRLF
    assert re.search(rb"\r\nDate: \w{3}, \d{1,2} \w{3} \d{4} ", m)
    assert re.search(rb"\r\nMessage-ID: <[A-Za-z0-9]+@example\.org>\r\n", m)
    assert b"Subject: from cron\r\n\r\nline one\r\n" in m
    assert b"DKIM-Signature" not in m  # local-only mail is not signed
    assert queue_rows(d) == []


def test_send_from_alias_with_f_and_no_from_header(lightr_bin, setup, server_factory):
    cfg, ports, d = setup
    server_factory(config=cfg, wait_for=ports["imap"])
    r = run(lightr_bin, "send", "-f", "team@example.org", "bob@example.org", config=cfg,
            stdin="Subject: no from\n\nbody\n")
    assert r.returncode == 0, r.stderr
    msgs = imap_inbox(ports["imap"], "bob@example.org")
    assert len(msgs) == 1
    assert b"\r\nFrom: <team@example.org>\r\n" in msgs[0]
    assert b"Return-Path: <team@example.org>" in msgs[0]


def test_send_refuses_foreign_sender(lightr_bin, setup):
    cfg, _, _ = setup
    r = run(lightr_bin, "send", "bob@example.org", config=cfg,
            stdin="From: mallory@elsewhere.example\nSubject: x\n\nx\n")
    assert r.returncode == 1
    assert "not a local account or alias" in r.stderr
    r = run(lightr_bin, "send", "-f", "alice@example.org", "bob@example.org", config=cfg,
            stdin="From: mallory@elsewhere.example\nSubject: x\n\nx\n")
    assert r.returncode == 1
    r = run(lightr_bin, "send", "nobody@example.org", config=cfg,
            stdin="From: alice@example.org\n\nx\n")
    assert r.returncode == 1 and "no such user" in r.stderr
    r = run(lightr_bin, "send", config=cfg, stdin="From: alice@example.org\n\nx\n")
    assert r.returncode == 2


def test_send_too_large(lightr_bin, setup):
    cfg, _, d = setup
    body = "From: alice@example.org\n\n" + ("x" * 99 + "\n") * 700  # > 64 KiB
    r = run(lightr_bin, "send", "bob@remote.example", config=cfg, stdin=body)
    assert r.returncode == 1 and "max_message_size" in r.stderr
    assert queue_rows(d) == []


ORACLE = r"""
import sys, dkim
keys = {}
for line in open(sys.argv[2]):
    k, v = line.rstrip("\n").split(" ", 1)
    keys[k] = v.encode()
def dnsfunc(name, timeout=5):
    return keys.get(name.decode().rstrip("."), b"")
msg = open(sys.argv[1], "rb").read()
v = dkim.DKIM(msg, minkey=1024)
res = [bool(v.verify(idx=i, dnsfunc=dnsfunc)) for i in range(int(sys.argv[3]))]
print(" ".join("ok" if x else "bad" for x in res))
"""


def oracle_python():
    for py in (sys.executable, "/usr/bin/python3"):
        r = subprocess.run([py, "-c", "import dkim, nacl"], capture_output=True)
        if r.returncode == 0:
            return py
    pytest.fail("python3-dkim (with PyNaCl) is not installed (make deps)")


def dns_keys(lightr_bin, cfg, domain):
    """selector._domainkey.domain -> TXT value, from `lightr domain dns`."""
    r = run(lightr_bin, "domain", "dns", domain, config=cfg)
    assert r.returncode == 0, r.stderr
    keys = {}
    for line in r.stdout.splitlines():
        m = re.match(r"^(\S+\._domainkey\.\S+?)\.?\s+IN\s+TXT\s+(.*)$", line)
        if m:
            keys[m.group(1)] = "".join(re.findall(r'"([^"]*)"', m.group(2)))
    assert keys, r.stdout
    return keys


def test_send_remote_queued_verp_dkim(lightr_bin, setup, tmp_path):
    cfg, _, d = setup
    msg = ("From: Alice <alice@example.org>\nTo: Carol <carol@remote.example>\n"
           "Subject: signed =?utf-8?q?caf=C3=A9?=\nDate: Sun, 29 Nov 2026 07:00:00 +0000\n"
           "Message-ID: <t1@example.org>\n\nHello Carol,\n  spaced   line  \n\n\n")
    r = run(lightr_bin, "send", "carol@remote.example", "bob@example.org", config=cfg,
            stdin=msg)
    assert r.returncode == 0, r.stderr
    assert re.search(r"queue=\d+", r.stdout)
    rows = queue_rows(d)
    assert len(rows) == 1
    q = rows[0]
    assert q["mail_from"] == "alice@example.org"
    assert q["dsn_to"] == "alice@example.org"
    assert q["auth_user"] == "alice@example.org"
    assert re.fullmatch(r"[a-z2-7]{16}", q["bounce_token"])
    assert q["return_path"] == f"bounce+{q['bounce_token']}@example.org"
    hdr = bytes(q["header_text"])
    assert hdr.count(b"DKIM-Signature:") == 2
    assert b"a=ed25519-sha256" in hdr and b"a=rsa-sha256" in hdr
    assert b"Received: by mail.test.example (Lightr) via lightr send" in hdr
    full = hdr + bytes(q["body"])
    eml = tmp_path / "q.eml"
    eml.write_bytes(full)
    kf = tmp_path / "keys.txt"
    kf.write_text("".join(f"{k} {v}\n" for k, v in dns_keys(lightr_bin, cfg, "example.org").items()))
    out = subprocess.run([oracle_python(), "-c", ORACLE, str(eml), str(kf), "2"],
                         capture_output=True, text=True)
    assert out.stdout.split() == ["ok", "ok"], out.stdout + out.stderr


def test_send_unsigned_without_keys(lightr_bin, setup):
    cfg, _, d = setup
    r = run(lightr_bin, "dkim", "list", config=cfg)
    assert r.returncode == 0
    sels = re.findall(r"^example\.org\s+(\S+)\s+\S+\s+\d+\s+active", r.stdout, re.M)
    con = sqlite3.connect(db_path(d))
    con.execute("UPDATE dkim_keys SET state = 'retired'")
    con.commit()
    con.close()
    r = run(lightr_bin, "send", "carol@remote.example", config=cfg,
            stdin="From: alice@example.org\nSubject: s\n\nb\n")
    assert r.returncode == 0, r.stderr
    q = queue_rows(d)[0]
    assert b"DKIM-Signature" not in bytes(q["header_text"])
    assert q["return_path"].startswith("bounce+")
    assert sels  # keys existed before


def test_send_while_server_runs_scheduler_sees_it(lightr_bin, setup, server_factory):
    """The CLI writes into the database the running server uses; the queued row is there and
    the server keeps serving (the scheduler polls every second)."""
    cfg, ports, d = setup
    srv = server_factory(config=cfg, wait_for=ports["imap"])
    r = run(lightr_bin, "send", "carol@remote.example", "alice@example.org", config=cfg,
            stdin="From: bob@example.org\nSubject: both\n\nb\n")
    assert r.returncode == 0, r.stderr
    assert len(imap_inbox(ports["imap"], "alice@example.org")) == 1
    rows = queue_rows(d)
    assert len(rows) == 1 and rows[0]["dsn_to"] == "bob@example.org"
    assert srv.proc.poll() is None


def test_smtp_submission_signs_and_sets_verp(lightr_bin, setup, server_factory, tmp_path):
    """The SMTP submission path is the same function: an authenticated submitter's remote mail
    is DKIM-signed (verifiable) and gets the VERP envelope sender and dsn_to."""
    import smtplib
    import ssl
    cfg, ports, d = setup
    srv = server_factory(config=cfg, wait_for=ports["submission"])
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    msg = (b"From: Alice <alice@example.org>\r\nTo: dave@remote.example\r\n"
           b"Subject: over smtp\r\nDate: Sun, 29 Nov 2026 07:00:00 +0000\r\n"
           b"Message-ID: <s1@example.org>\r\n\r\nbody over smtp\r\n")
    with smtplib.SMTP("127.0.0.1", ports["submission"], timeout=20) as s:
        s.starttls(context=ctx)
        s.login("alice@example.org", PASSWORD)
        s.sendmail("alice@example.org", ["dave@remote.example"], msg)
    rows = queue_rows(d)
    assert len(rows) == 1, srv.log()
    q = rows[0]
    assert q["dsn_to"] == "alice@example.org"
    assert q["return_path"] == f"bounce+{q['bounce_token']}@example.org"
    hdr = bytes(q["header_text"])
    assert hdr.count(b"DKIM-Signature:") == 2 and b"with ESMTPS" in hdr
    eml = tmp_path / "s.eml"
    eml.write_bytes(hdr + bytes(q["body"]))
    kf = tmp_path / "keys.txt"
    kf.write_text("".join(f"{k} {v}\n" for k, v in dns_keys(lightr_bin, cfg, "example.org").items()))
    out = subprocess.run([oracle_python(), "-c", ORACLE, str(eml), str(kf), "2"],
                         capture_output=True, text=True)
    assert out.stdout.split() == ["ok", "ok"], out.stdout + out.stderr


class Sink:
    """A tiny SMTP receiver on loopback (stdlib only): RCPT for nobody@... gets 550 5.1.1, others
    250; records each transaction's MAIL FROM, recipients and data."""

    def __init__(self):
        import socket
        import threading
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.got = []
        self.stop = False
        self.t = threading.Thread(target=self.loop, daemon=True)
        self.t.start()

    def loop(self):
        import threading
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.session, args=(c,), daemon=True).start()

    def session(self, c):
        f = c.makefile("rb")
        c.sendall(b"220 sink.test ESMTP\r\n")
        mail, rcpts = None, []
        try:
            while True:
                line = f.readline()
                if not line:
                    return
                cmd = line.strip().upper()
                if cmd.startswith(b"EHLO"):
                    c.sendall(b"250-sink.test\r\n250-8BITMIME\r\n250 PIPELINING\r\n")
                elif cmd.startswith(b"HELO"):
                    c.sendall(b"250 sink.test\r\n")
                elif cmd.startswith(b"MAIL FROM:"):
                    mail, rcpts = line.strip()[10:].split(b" ")[0].strip(b"<>").decode(), []
                    c.sendall(b"250 2.1.0 ok\r\n")
                elif cmd.startswith(b"RCPT TO:"):
                    addr = line.strip()[8:].split(b" ")[0].strip(b"<>").decode()
                    if addr.startswith("nobody@"):
                        c.sendall(b"550 5.1.1 <" + addr.encode() + b">: no such user here\r\n")
                    else:
                        rcpts.append(addr)
                        c.sendall(b"250 2.1.5 ok\r\n")
                elif cmd == b"DATA":
                    if not rcpts:
                        c.sendall(b"554 5.5.1 no valid recipients\r\n")
                        continue
                    c.sendall(b"354 go\r\n")
                    data = b""
                    while True:
                        l2 = f.readline()
                        if not l2 or l2 == b".\r\n":
                            break
                        data += l2[1:] if l2.startswith(b"..") else l2
                    self.got.append((mail, rcpts, data))
                    c.sendall(b"250 2.0.0 queued\r\n")
                elif cmd == b"QUIT":
                    c.sendall(b"221 bye\r\n")
                    return
                else:
                    c.sendall(b"250 ok\r\n")
        finally:
            c.close()

    def close(self):
        self.stop = True
        self.sock.close()


def wait_inbox(port, user, n, timeout=30):
    deadline = time.monotonic() + timeout
    msgs = []
    while time.monotonic() < deadline:
        msgs = imap_inbox(port, user)
        if len(msgs) >= n:
            return msgs
        time.sleep(0.5)
    return msgs


def test_bounce_gives_failure_dsn_in_senders_inbox(lightr_bin, tmpdir_world, server_factory):
    """End to end: `lightr send` to a remote recipient the (routed) receiver refuses with 550 →
    the running server bounces it → a failure DSN (multipart/report) in the sender's INBOX over
    IMAP; the accepted recipient got the message from the VERP sender, DKIM-signed. With
    NOTIFY=SUCCESS over SMTP submission a success DSN follows."""
    import smtplib
    import ssl
    sink = Sink()
    try:
        extra = EXTRA + f'delivery:\n  routes: "remote.example={"127.0.0.1"}:{sink.port}"\n'
        cfg, ports = write_config(tmpdir_world, extra)
        for args, stdin in ((("domain", "add", "example.org"), None),
                            (("account", "add", "alice@example.org", "--password-stdin"),
                             PASSWORD + "\n")):
            r = run(lightr_bin, *args, config=cfg, stdin=stdin)
            assert r.returncode == 0, r.stderr
        srv = server_factory(config=cfg, wait_for=ports["imap"])
        r = run(lightr_bin, "send", "nobody@remote.example", "ok@remote.example", config=cfg,
                stdin="From: alice@example.org\nSubject: will bounce\n\nsecret body\n")
        assert r.returncode == 0, r.stderr
        msgs = wait_inbox(ports["imap"], "alice@example.org", 1)
        assert len(msgs) == 1, srv.log()
        dsn = msgs[0]
        assert b"Return-Path: <>\r\n" in dsn
        assert b"From: Mail Delivery System <MAILER-DAEMON@mail.test.example>" in dsn
        assert b"report-type=delivery-status" in dsn
        assert b"Final-Recipient: rfc822;nobody@remote.example\r\n" in dsn
        assert b"Action: failed\r\n" in dsn and b"Status: 5.1.1\r\n" in dsn
        assert b"Diagnostic-Code: smtp; 550 5.1.1" in dsn
        assert b"Subject: will bounce" in dsn and b"secret body" not in dsn
        assert b"ok@remote.example" not in dsn.split(b"message/delivery-status")[1]
        assert len(sink.got) == 1
        mail, rcpts, data = sink.got[0]
        assert re.fullmatch(r"bounce\+[a-z2-7]{16}@example\.org", mail)
        assert rcpts == ["ok@remote.example"] and data.count(b"DKIM-Signature:") == 2

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with smtplib.SMTP("127.0.0.1", ports["submission"], timeout=20) as s:
            s.starttls(context=ctx)
            s.login("alice@example.org", PASSWORD)
            s.sendmail("alice@example.org", ["ok2@remote.example"],
                       b"From: alice@example.org\r\nSubject: notify me\r\n\r\nx\r\n",
                       rcpt_options=["NOTIFY=SUCCESS"])
        msgs = wait_inbox(ports["imap"], "alice@example.org", 2)
        assert len(msgs) == 2, srv.log()
        assert b"Action: delivered\r\n" in msgs[1] and b"ok2@remote.example" in msgs[1]
    finally:
        sink.close()
