"""`lightr serve` against real clients (smtplib, imaplib, urllib, raw sockets): the listeners
(the SMTP protocol itself is tested in test_smtp.py), STARTTLS and implicit TLS, plaintext pipelined after STARTTLS being thrown
away (CVE-2011-0411), per-IP connection limits, SIGHUP reloads (good and bad), SIGTERM, and the
self-signed certificate made on first start and reused afterwards.

Self-contained helpers (prefixed with _); only the lightr_bin and tmpdir_world fixtures come
from conftest.py."""
import imaplib
import json
import os
import pwd
import signal
import smtplib
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from conftest import config_defaults

ROLES = ("mx", "submission", "submissions", "imap", "imaps", "http")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tls_ctx():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _write_config(directory, extra="", ports=None, hostname="mail.test.example"):
    ports = ports or {r: _free_port() for r in ROLES}
    lines = [f"hostname: {hostname}", f"data_dir: {directory}/data", "listeners:"]
    for role, port in ports.items():
        lines.append(f'  - {{role: {role}, address: "127.0.0.1:{port}"}}')
    path = os.path.join(directory, "lightr.yaml")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n" + config_defaults(extra))
    os.chmod(path, 0o644)
    return path, ports


class _Serve:
    """One `lightr -c FILE serve` process with its log in a file."""

    def __init__(self, lightr_bin, config, cwd):
        self.logpath = os.path.join(cwd, f"serve-{time.monotonic_ns()}.log")
        self.logf = open(self.logpath, "w")
        env = dict(os.environ)
        env.pop("LIGHTR_CONFIG", None)
        self.proc = subprocess.Popen([lightr_bin, "-c", config, "serve"], stdout=self.logf,
                                     stderr=subprocess.STDOUT, cwd=cwd, env=env)

    def log(self):
        self.logf.flush()
        with open(self.logpath) as f:
            return f.read()

    def wait_log(self, text, timeout=20.0, count=1):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.log().count(text) >= count:
                return True
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not in the log:\n{self.log()}")

    def stop(self, timeout=20):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()
        return self.proc.returncode


@pytest.fixture
def _serve(lightr_bin, tmpdir_world):
    started = []

    def start(extra="", ports=None, hostname="mail.test.example", wait=True):
        path, ports = _write_config(tmpdir_world, extra, ports, hostname)
        s = _Serve(lightr_bin, path, tmpdir_world)
        s.config, s.ports, s.dir = path, ports, tmpdir_world
        started.append(s)
        if wait:
            s.wait_log("server - started")
        return s

    yield start
    for s in started:
        s.stop()


def _recv_line(sock, timeout=5.0):
    """Reads up to and including one LF (byte by byte: nothing after it is consumed)."""
    sock.settimeout(timeout)
    out = b""
    while not out.endswith(b"\n"):
        ch = sock.recv(1)
        if not ch:
            break
        out += ch
    return out


def _recv_reply(sock, timeout=5.0):
    """One whole SMTP reply (multi-line replies end with a "NNN " line)."""
    lines = []
    while True:
        line = _recv_line(sock, timeout)
        lines.append(line)
        if len(line) < 4 or line[3:4] != b"-":
            return b"".join(lines)


def _connect(port):
    return socket.create_connection(("127.0.0.1", port), timeout=5)


# ---- SMTP ----

def test_submission_starttls(_serve):
    srv = _serve()
    s = smtplib.SMTP("127.0.0.1", srv.ports["submission"], timeout=10)
    code, msg = s.ehlo("client.example")
    assert code == 250 and msg.startswith(b"mail.test.example\n")
    assert s.has_extn("starttls")
    assert s.starttls(context=_tls_ctx())[0] == 220
    code, msg = s.ehlo("client.example")
    assert code == 250 and not s.has_extn("starttls")
    assert s.noop()[0] == 250
    assert s.docmd("STARTTLS")[0] == 503
    assert s.docmd("MAIL", "FROM:<a@client.example>")[0] == 530  # AUTH first
    s.quit()
    srv.wait_log("starttls version=TLSv1.")
    srv.wait_log(" disconnect ")
    log = srv.log()
    assert "connect client=127.0.0.1:" in log and "listener=submission" in log
    assert "reason=quit" in log and "duration=" in log


def test_submissions_implicit_tls(_serve):
    srv = _serve()
    s = smtplib.SMTP_SSL("127.0.0.1", srv.ports["submissions"], context=_tls_ctx(), timeout=10)
    assert s.ehlo("client.example")[0] == 250
    assert not s.has_extn("starttls")
    assert s.noop()[0] == 250
    assert s.has_extn("auth")
    assert s.docmd("MAIL", "FROM:<a@client.example>")[0] == 530
    s.quit()
    assert "listener=submissions" in srv.log()


def test_imap_starttls_pipelined_plaintext_is_dropped(_serve):
    """CVE-2011-0411 on IMAP: a command sent in plaintext in the same packet as STARTTLS must
    not be executed after the handshake (the SMTP case is in test_smtp.py)."""
    srv = _serve()
    with _connect(srv.ports["imap"]) as raw:
        assert _recv_line(raw).startswith(b"* OK ")
        raw.sendall(b"a STARTTLS\r\nb NOOP\r\n")
        assert _recv_line(raw) == b"a OK Begin TLS negotiation now\r\n"
        tls = _tls_ctx().wrap_socket(raw, server_hostname="localhost")
        tls.settimeout(1.0)
        with pytest.raises(socket.timeout):
            tls.recv(100)
        tls.sendall(b"c NOOP\r\n")
        assert _recv_line(tls).startswith(b"c OK NOOP")
    srv.wait_log("starttls version=TLSv1.")


# ---- IMAP ----

def test_imap_greeting_and_basics(_serve):
    srv = _serve()
    m = imaplib.IMAP4("127.0.0.1", srv.ports["imap"], timeout=10)
    assert m.welcome.startswith(b"* OK [CAPABILITY IMAP4rev1 ")
    assert m.welcome.endswith(b"] mail.test.example Lightr ready")
    greeting_caps = m.welcome.split(b"[CAPABILITY ")[1].split(b"]")[0].split()
    assert b"STARTTLS" in greeting_caps and b"LOGINDISABLED" in greeting_caps
    assert b"IMAP4rev2" in greeting_caps and b"AUTH=PLAIN" not in greeting_caps
    typ, data = m.capability()
    assert typ == "OK" and data[0].split() == greeting_caps
    assert m.noop()[0] == "OK"
    with pytest.raises(m.error, match="PRIVACYREQUIRED"):  # no login before TLS
        m.login("alice@test.example", "x")
    typ, data = m.logout()
    assert typ == "BYE"
    with _connect(srv.ports["imap"]) as c:
        _recv_line(c)
        c.sendall(b"\r\n")
        assert b" BAD " in _recv_line(c)
        c.sendall(b"+tag NOOP\r\n")
        assert b" BAD " in _recv_line(c)
        c.sendall(b"t1\r\n")
        assert _recv_line(c).startswith(b"t1 BAD ")
        c.sendall(b"t2 capability\r\n")
        assert _recv_line(c).startswith(b"* CAPABILITY IMAP4rev1")
        assert _recv_line(c).startswith(b"t2 OK ")
        c.sendall(b"t3 NOOP " + b"x" * 9000 + b"\r\nt4 NOOP\r\n")  # 8 KiB before login
        assert _recv_line(c).startswith(b"t3 BAD ")
        assert _recv_line(c).startswith(b"t4 OK ")
        c.sendall(b"t5 LOGOUT\r\n")
        assert _recv_line(c).startswith(b"* BYE")
        assert _recv_line(c).startswith(b"t5 OK")
    srv.wait_log("reason=logout")
    log = srv.log()
    assert "listener=imap" in log and "user=-" in log


def test_imap_starttls(_serve):
    srv = _serve()
    m = imaplib.IMAP4("127.0.0.1", srv.ports["imap"], timeout=10)
    assert m.starttls(ssl_context=_tls_ctx())[0] == "OK"
    assert "STARTTLS" not in m.capabilities and "LOGINDISABLED" not in m.capabilities
    assert "AUTH=PLAIN" in m.capabilities
    assert m.noop()[0] == "OK"
    with pytest.raises(m.error, match="TLS is already active"):
        m._simple_command("STARTTLS")
    m.logout()
    srv.wait_log("starttls version=TLSv1.")


def test_imap_starttls_openssl_s_client(_serve):
    srv = _serve()
    r = subprocess.run(["openssl", "s_client", "-starttls", "imap", "-connect",
                        f"127.0.0.1:{srv.ports['imap']}", "-quiet", "-verify_quiet"],
                       input=b"a CAPABILITY\r\nb LOGOUT\r\n", capture_output=True,
                       timeout=30)
    out = r.stdout
    assert b"* CAPABILITY IMAP4rev1" in out, (out, r.stderr)
    caps = [l for l in out.split(b"\r\n") if l.startswith(b"* CAPABILITY")][0]
    assert b"STARTTLS" not in caps and b"LOGINDISABLED" not in caps
    assert b"a OK" in out and b"* BYE" in out and b"b OK" in out
    srv.wait_log("starttls version=TLSv1.")


def test_imaps(_serve):
    srv = _serve()
    m = imaplib.IMAP4_SSL("127.0.0.1", srv.ports["imaps"], ssl_context=_tls_ctx(), timeout=10)
    assert "STARTTLS" not in m.capabilities and "LOGINDISABLED" not in m.capabilities
    typ, data = m.capability()
    assert typ == "OK" and b"AUTH=PLAIN" in data[0].split()
    assert m.logout()[0] == "BYE"
    srv.wait_log("listener=imaps")
    assert " tls version=TLSv1." in srv.log()


# ---- HTTP ----

def test_http_health(_serve):
    srv = _serve()
    base = f"http://127.0.0.1:{srv.ports['http']}"
    with urllib.request.urlopen(base + "/healthz", timeout=10) as r:
        assert r.status == 200
        assert r.headers["Content-Type"] == "application/json"
        body = json.loads(r.read())
    assert body["status"] == "ok" and body["version"]
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(base + "/api/v1/messages", timeout=10)
    assert e.value.code == 401
    assert json.loads(e.value.read())["error"]["code"] == "unauthorized"


def test_https_listener(lightr_bin, tmpdir_world):
    ports = {"mx": _free_port(), "http": _free_port()}
    path, _ = _write_config(tmpdir_world, ports=ports)
    with open(path) as f:
        text = f.read().replace(f'address: "127.0.0.1:{ports["http"]}"}}',
                                f'address: "127.0.0.1:{ports["http"]}", tls: true}}')
    with open(path, "w") as f:
        f.write(text)
    srv = _Serve(lightr_bin, path, tmpdir_world)
    try:
        srv.wait_log("server - started")
        url = f"https://127.0.0.1:{ports['http']}/healthz"
        with urllib.request.urlopen(url, context=_tls_ctx(), timeout=10) as r:
            assert r.status == 200
    finally:
        assert srv.stop() == 0


# ---- limits ----

def test_connection_limit_per_ip(_serve):
    srv = _serve(extra="limits: {max_connections_per_ip: 2}\n")
    held = []
    for _ in range(2):
        c = _connect(srv.ports["mx"])
        assert _recv_reply(c).startswith(b"220 ")
        held.append(c)
    with _connect(srv.ports["mx"]) as c:
        assert _recv_reply(c) == (b"421 4.7.0 mail.test.example Too many connections, "
                                  b"try again later\r\n")
        assert _recv_line(c) == b""
    # Also across SMTP listeners of the same kind.
    with _connect(srv.ports["submission"]) as c:
        assert _recv_reply(c).startswith(b"421 4.7.0")
    # IMAP clients are counted apart.
    imap = []
    for _ in range(2):
        c = _connect(srv.ports["imap"])
        assert _recv_line(c).startswith(b"* OK")
        imap.append(c)
    with _connect(srv.ports["imap"]) as c:
        assert _recv_line(c) == b"* BYE [UNAVAILABLE] Too many connections\r\n"
    srv.wait_log("reason=max_connections_per_ip")
    # A place frees up when a client leaves.
    held.pop().close()
    deadline = time.monotonic() + 5
    while True:
        with _connect(srv.ports["mx"]) as c:
            if _recv_reply(c).startswith(b"220 "):
                break
        assert time.monotonic() < deadline
        time.sleep(0.1)
    for c in held + imap:
        c.close()


# ---- signals ----

def test_sighup_bad_config_keeps_running(_serve):
    srv = _serve()
    with open(srv.config, "a") as f:
        f.write("smtp: {max_recipients: 0}\nbogus_key: 1\n")
    srv.proc.send_signal(signal.SIGHUP)
    srv.wait_log("server - reload failed")
    log = srv.log()
    assert "error server - reload error: " in log and "max_recipients" in log
    assert srv.proc.poll() is None
    s = smtplib.SMTP("127.0.0.1", srv.ports["mx"], timeout=10)
    assert s.noop()[0] == 250
    s.quit()
    assert srv.stop() == 0


def test_sighup_reload(_serve):
    srv = _serve()
    path, _ = _write_config(srv.dir, "log: {level: debug}\nlimits: {max_connections_per_ip: 1}\n",
                            srv.ports, hostname="other.test.example")
    srv.proc.send_signal(signal.SIGHUP)
    srv.wait_log("server - reloaded")
    log = srv.log()
    assert "hostname changed but needs a restart" in log
    assert "log_level=debug" in log
    with _connect(srv.ports["mx"]) as c:
        # hostname is not reloadable: the running value stays.
        assert _recv_reply(c) == b"220 mail.test.example ESMTP Lightr\r\n"
        with _connect(srv.ports["mx"]) as c2:  # the new per-IP limit applies
            assert _recv_reply(c2).startswith(b"421 4.7.0")
        c.sendall(b"EHLO client.example\r\n")
        assert _recv_reply(c).startswith(b"250-mail.test.example")
    srv.wait_log(" state ")  # debug level is on: session state transitions are logged


def test_sigterm_clean_stop(_serve):
    srv = _serve(extra="limits: {shutdown_timeout: 1s}\n")
    idle = _connect(srv.ports["mx"])
    assert _recv_reply(idle).startswith(b"220 ")
    t0 = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    # The idle session is told after shutdown_timeout, then the process exits with 0.
    assert _recv_reply(idle, timeout=10).startswith(b"421 4.3.2 mail.test.example")
    assert srv.proc.wait(10) == 0
    assert time.monotonic() - t0 < 8
    idle.close()
    log = srv.log()
    assert "server - signal=SIGTERM stopping" in log
    assert "reason=shutdown" in log
    assert log.rstrip().endswith("server - stopped")


def test_sigint_without_sessions_is_quick(_serve):
    srv = _serve()
    t0 = time.monotonic()
    srv.proc.send_signal(signal.SIGINT)
    assert srv.proc.wait(10) == 0
    assert time.monotonic() - t0 < 3
    assert "server - stopped" in srv.log()


# ---- start-up ----

def test_selfsigned_cert_created_then_reused(_serve):
    srv = _serve()
    tls = os.path.join(srv.dir, "data", "tls")
    cert, key = os.path.join(tls, "cert.pem"), os.path.join(tls, "key.pem")
    assert "tls self-signed certificate created" in srv.log()
    assert os.stat(key).st_mode & 0o777 == 0o600
    if os.geteuid() == 0:
        lightr = pwd.getpwnam("lightr").pw_uid
        assert os.stat(key).st_uid == lightr
        assert os.stat(os.path.join(srv.dir, "data", "lightr.db")).st_uid == lightr
        assert "server - privileges dropped user=lightr" in srv.log()
    with open(cert, "rb") as f:
        first = f.read()
    # The certificate names the host (CN and subjectAltName).
    out = subprocess.run(["openssl", "x509", "-noout", "-text", "-in", cert],
                         capture_output=True, text=True).stdout
    assert "CN = mail.test.example" in out
    assert "DNS:mail.test.example" in out and "DNS:localhost" in out
    assert "IP Address:127.0.0.1" in out
    assert srv.stop() == 0
    srv2 = _serve(ports=srv.ports)
    assert "tls self-signed certificate reused" in srv2.log()
    with open(cert, "rb") as f:
        assert f.read() == first
    # And the server really presents it.
    s = smtplib.SMTP_SSL("127.0.0.1", srv.ports["submissions"], context=_tls_ctx(), timeout=10)
    der = s.sock.getpeercert(binary_form=True)
    s.quit()
    assert ssl.DER_cert_to_PEM_cert(der).encode().split() == first.split()


def test_start_fails_on_busy_port(lightr_bin, tmpdir_world):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        path, _ = _write_config(tmpdir_world, ports={"mx": port})
        srv = _Serve(lightr_bin, path, tmpdir_world)
        assert srv.proc.wait(20) == 1
        log = srv.log()
        srv.stop()
    assert f"address 127.0.0.1:{port}: cannot listen" in log and "in use" in log
    assert "server - start failed" in log


@pytest.mark.skipif(os.geteuid() != 0, reason="the privilege drop happens only as root")
def test_start_fails_when_user_is_missing(lightr_bin, tmpdir_world):
    path, _ = _write_config(tmpdir_world, extra="user: nosuchuser-lightr\n",
                            ports={"mx": _free_port()})
    srv = _Serve(lightr_bin, path, tmpdir_world)
    assert srv.proc.wait(20) == 1
    log = srv.log()
    srv.stop()
    assert "user nosuchuser-lightr does not exist" in log and "set user: in lightr.yaml" in log
    assert "server - started" not in log
