"""Outbound delivery (issue 5) end to end: the real binary delivers queued mail to a receiving MTA
on loopback (Python aiosmtpd) found through delivery.routes or through MX records served by
tests/zonedns.py (dns.forwarders). MX hosts are reached on delivery.mx_port (25 in production),
so that a test sink can listen on a free unprivileged port; a second loopback address
(127.0.0.2), where nothing listens, plays the MX that refuses connections.

Mail is injected with `lightr send` (the submission path: DKIM, VERP envelope sender, queue) and
followed with `lightr queue list` and the server log."""
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

import pytest

from conftest import Server, free_port, run, write_config

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
aiosmtpd_controller = pytest.importorskip("aiosmtpd.controller")
zonedns = pytest.importorskip("zonedns")


class Sink:
    """An aiosmtpd receiver recording envelopes. rcpt_reply(addr, n) may return a reply string
    for the n-th RCPT TO of addr (1-based) to refuse it, or None to accept."""

    def __init__(self, port=None, rcpt_reply=None, tls_context=None):
        self.port = port or free_port()
        self.messages = []
        self.rcpt_count = {}
        self.rcpt_reply = rcpt_reply
        self.lock = threading.Lock()
        self.tls_seen = []
        kw = {}
        if tls_context is not None:
            kw = {"tls_context": tls_context, "require_starttls": False}
        self.ctl = aiosmtpd_controller.Controller(self, hostname="127.0.0.1", port=self.port,
                                                  **kw)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with self.lock:
            n = self.rcpt_count.get(address, 0) + 1
            self.rcpt_count[address] = n
        reply = self.rcpt_reply(address, n) if self.rcpt_reply else None
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.messages.append((envelope.mail_from, list(envelope.rcpt_tos),
                                  bytes(envelope.original_content or envelope.content)))
            self.tls_seen.append(session.ssl is not None)
        return "250 2.0.0 queued here"

    def __enter__(self):
        self.ctl.start()
        return self

    def __exit__(self, *exc):
        self.ctl.stop()


def _ok(r):
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


class World:
    """A configured data dir with test.example (alice) and a running server."""

    def __init__(self, lightr_bin, directory, delivery="", dns_port=None):
        self.bin, self.dir = lightr_bin, directory
        extra = "delivery:\n  retry_schedule: 1s\n  connect_timeout: 2s\n" + delivery
        if dns_port:
            extra += f'dns:\n  forwarders: "127.0.0.1@{dns_port}"\n'
        self.cfg, self.ports = write_config(directory, extra)
        self.cli("domain", "add", "test.example")
        self.cli("account", "add", "alice@test.example", "--password-stdin",
                 stdin="alice-password\n")
        self.srv = None

    def cli(self, *a, stdin=None, check=True):
        r = run(self.bin, *a, config=self.cfg, stdin=stdin)
        return _ok(r) if check else r

    def send(self, *rcpts, subject="hi", body="hello\n"):
        msg = (f"From: alice@test.example\nTo: {', '.join(rcpts)}\nSubject: {subject}\n\n"
               + body)
        return self.cli("send", *rcpts, stdin=msg)

    def start(self):
        self.srv = Server(self.bin, config=self.cfg, cwd=self.dir, wait_for=self.ports["mx"])
        return self.srv

    def stop(self):
        if self.srv:
            self.srv.stop()
            self.srv = None

    def queue(self):
        """{rcpt: status line} from `lightr queue list`."""
        out = self.cli("queue", "list")
        rows = {}
        for line in out.splitlines():
            parts = line.split()
            if len(parts) >= 3:
                rows.setdefault(parts[1], []).append(line)
        return rows

    def wait_state(self, rcpt, state, timeout=20):
        deadline = time.monotonic() + timeout
        rows = {}
        while time.monotonic() < deadline:
            rows = self.queue()
            if rcpt in rows and all(f" {state} " in r for r in rows[rcpt]):
                return rows[rcpt]
            time.sleep(0.2)
        raise AssertionError(f"{rcpt} not {state}: {rows}\n" + (self.srv.log() if self.srv
                                                                 else ""))


@pytest.fixture
def world(lightr_bin, tmpdir_world):
    made = []

    def make(**kw):
        w = World(lightr_bin, tmpdir_world, **kw)
        made.append(w)
        return w

    yield make
    for w in made:
        w.stop()


def _wait(pred, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return pred()


def test_delivered_by_route(world):
    with Sink() as sink:
        w = world(delivery=f'  routes: "dest.example=127.0.0.1:{sink.port}"\n')
        body = ".leading dot\n..two dots\n" + ("x" * 998 + "\n") * 3000 + ".\nend\n"
        w.send("bob@dest.example", "carol@dest.example", subject="routed", body=body)
        w.start()
        rows = w.wait_state("bob@dest.example", "delivered")
        w.wait_state("carol@dest.example", "delivered")
        assert _wait(lambda: len(sink.messages) == 1)
        mail_from, rcpts, data = sink.messages[0]
        assert re.fullmatch(r"bounce\+[a-z0-9]+@test\.example", mail_from), mail_from
        assert sorted(rcpts) == ["bob@dest.example", "carol@dest.example"]  # one transaction
        assert b"Subject: routed" in data
        # dot-stuffing undone by the sink: the body arrives unchanged (3 MB, streamed)
        assert data.endswith(body.replace("\n", "\r\n").encode()), data[-200:]
        assert b"DKIM-Signature:" in data  # signed at submission, sent as queued
        assert f"[127.0.0.1]:{sink.port}" in rows[0]
        log = w.srv.log()
        assert re.search(r"queue \d+ delivered rcpt=<bob@dest\.example> relay=\[127\.0\.0\.1\]:"
                         rf"{sink.port} delay=[0-9.]+ dsn=2\.0\.0 tls=none", log), log


def test_tempfail_then_success(world):
    reply = lambda addr, n: "451 4.2.0 mailbox busy, try later" if n == 1 else None
    with Sink(rcpt_reply=reply) as sink:
        w = world(delivery=f'  routes: "dest.example=127.0.0.1:{sink.port}"\n')
        w.send("bob@dest.example")
        w.start()
        w.wait_state("bob@dest.example", "delivered", timeout=30)
        assert sink.rcpt_count["bob@dest.example"] >= 2
        assert len(sink.messages) == 1
        log = w.srv.log()
        assert re.search(r"queue \d+ deferred rcpt=<bob@dest\.example> .*dsn=4\.2\.0 .*"
                         r"mailbox busy", log), log


def test_permfail_bounced(world):
    reply = lambda addr, n: "550 5.1.1 no such user here"
    with Sink(rcpt_reply=reply) as sink:
        w = world(delivery=f'  routes: "dest.example=127.0.0.1:{sink.port}"\n')
        w.send("nobody@dest.example")
        w.start()
        rows = w.wait_state("nobody@dest.example", "bounced")
        assert "5.1.1" in rows[0]
        assert sink.messages == []
        assert sink.rcpt_count["nobody@dest.example"] == 1  # never retried


def _zone(sink_port_unused=None):
    return {"records": {
        "mx.example": {"MX": [[10, "mx1.mx.example"], [20, "mx2.mx.example"]]},
        "mx1.mx.example": {"A": ["127.0.0.2"]},   # nothing listens there: refused
        "mx2.mx.example": {"A": ["127.0.0.1"]},
        "nullmx.example": {"MX": [[0, "."]]},
        "implicit.example": {"A": ["127.0.0.1"]},
    }}


def test_first_mx_refuses_second_used(world):
    with zonedns.ZoneDNS(_zone()) as stub, Sink() as sink:
        w = world(delivery=f"  mx_port: {sink.port}\n", dns_port=stub.port)
        w.send("bob@mx.example", "dan@implicit.example")
        w.start()
        rows = w.wait_state("bob@mx.example", "delivered")
        assert "mx2.mx.example[127.0.0.1]" in rows[0], rows
        w.wait_state("dan@implicit.example", "delivered")  # implicit MX (A only)
        assert _wait(lambda: len(sink.messages) == 2)
        log = w.srv.log()
        assert "connect 127.0.0.2:" in log, log


class Refuser:
    """A raw SMTP server on 127.0.0.2:port that answers every connection with one greeting
    (e.g. 554: no service here) and waits for QUIT."""

    def __init__(self, port, greeting):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.2", port))
        self.sock.listen(8)
        self.greeting = greeting
        self.connections = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with c:
                c.settimeout(5)
                try:
                    c.sendall(self.greeting.encode() + b"\r\n")
                    data = b""
                    while b"QUIT" not in data.upper():
                        chunk = c.recv(512)
                        if not chunk:
                            break
                        data += chunk
                        if b"\n" in chunk:
                            c.sendall(b"503 5.5.1 no service\r\n")
                    c.sendall(b"221 2.0.0 bye\r\n")
                except OSError:
                    pass

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.sock.close()


@pytest.mark.parametrize("greeting", ["554 5.3.2 no service here", "421 4.3.2 busy"])
def test_first_mx_refuses_at_greeting(world, greeting):
    with zonedns.ZoneDNS(_zone()) as stub, Sink() as sink, Refuser(sink.port, greeting) as ref:
        w = world(delivery=f"  mx_port: {sink.port}\n", dns_port=stub.port)
        w.send("bob@mx.example")
        w.start()
        rows = w.wait_state("bob@mx.example", "delivered")
        assert "mx2.mx.example[127.0.0.1]" in rows[0], rows
        assert ref.connections >= 1
        assert len(sink.messages) == 1


def test_null_mx_bounces(world):
    with zonedns.ZoneDNS(_zone()) as stub, Sink() as sink:
        w = world(delivery=f"  mx_port: {sink.port}\n", dns_port=stub.port)
        w.send("bob@nullmx.example")
        w.start()
        rows = w.wait_state("bob@nullmx.example", "bounced")
        assert "5.1.10" in rows[0]
        assert sink.rcpt_count == {}


def _tls_context(directory):
    cert, key = os.path.join(directory, "sink.pem"), os.path.join(directory, "sink.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj",
                    "/CN=sink.example", "-keyout", key, "-out", cert],
                   check=True, capture_output=True)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


@pytest.mark.parametrize("offered", [True, False])
def test_starttls(world, tmpdir_world, offered):
    ctx = _tls_context(tmpdir_world) if offered else None
    with Sink(tls_context=ctx) as sink:
        w = world(delivery=f'  routes: "dest.example=127.0.0.1:{sink.port}"\n')
        w.send("bob@dest.example")
        w.start()
        rows = w.wait_state("bob@dest.example", "delivered")
        assert _wait(lambda: len(sink.messages) == 1)
        assert sink.tls_seen == [offered]
        log = w.srv.log()
        if offered:
            # self-signed: opportunistic TLS goes on, the failure is logged and recorded
            assert re.search(r"tls=TLSv1\.[23]/unverified", rows[0]), rows
            assert "tls unverified" in log
        else:
            assert "tls=none" in rows[0], rows


def test_kill9_exactly_once(world):
    """kill -9 with a full queue: after the restart every message arrives, and none whose
    delivery had been recorded (logged "delivered") before the kill arrives twice. A message
    whose 250 was in flight at the kill may legitimately arrive twice (RFC 5321 §6.1), at most
    one per worker."""
    n = 30
    with Sink() as sink:
        w = world(delivery=f'  routes: "dest.example=127.0.0.1:{sink.port}"\n')
        for i in range(n):
            w.send(f"r{i}@dest.example", subject=f"m{i}")
        srv = w.start()
        assert _wait(lambda: len(sink.messages) >= 3, timeout=30)
        srv.proc.send_signal(signal.SIGKILL)
        srv.proc.wait()
        first_log = srv.log()
        srv.logf.close()
        w.srv = None
        recorded = set(re.findall(r"queue \d+ delivered rcpt=<(r\d+)@dest\.example>", first_log))
        w.start()
        for i in range(n):
            w.wait_state(f"r{i}@dest.example", "delivered", timeout=60)
        time.sleep(1.5)  # a duplicate would arrive now
        got = {}
        for _, rcpts, _ in sink.messages:
            for r in rcpts:
                got[r.split("@")[0]] = got.get(r.split("@")[0], 0) + 1
        assert sorted(got) == sorted(f"r{i}" for i in range(n))
        for r in recorded:
            assert got[r] == 1, (r, got)
        assert sum(got.values()) - n <= 8, got


class CountingSink(Sink):
    """A Sink that also records the client's (address, port) of every accepted message: one
    distinct peer per SMTP connection."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.peers = []

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.peers.append(session.peer)
        return await super().handle_DATA(server, session, envelope)


def test_connection_reuse(world):
    """Several due messages to one route share connections (one transaction each, committed
    one by one): fewer connections than messages, every message exactly once."""
    n = 20
    with CountingSink() as sink:
        w = world(delivery=f'  routes: "dest.example=127.0.0.1:{sink.port}"\n')
        for i in range(n):
            w.send(f"r{i}@dest.example", subject=f"m{i}")
        w.start()
        for i in range(n):
            w.wait_state(f"r{i}@dest.example", "delivered", timeout=60)
        time.sleep(1.0)  # a duplicate would arrive now
        got = sorted(r for _, rcpts, _ in sink.messages for r in rcpts)
        assert got == sorted(f"r{i}@dest.example" for i in range(n)), got
        connections = len(set(sink.peers))
        assert connections < n, sink.peers
        log = w.srv.log()
        assert re.search(r"queue - connection relay=\[127\.0\.0\.1\]:\d+ messages=\d+", log), log



def test_connection_reuse_across_domains_of_one_route(world):
    """Two domains routed to the same host:port share connections too."""
    n = 12
    with CountingSink() as sink:
        w = world(delivery=f'  routes: "one.example=127.0.0.1:{sink.port},'
                  f'two.example=127.0.0.1:{sink.port}"\n  workers: 1\n')
        rcpts = [f"r{i}@{'one' if i % 2 else 'two'}.example" for i in range(n)]
        for i, r in enumerate(rcpts):
            w.send(r, subject=f"m{i}")
        w.start()
        for r in rcpts:
            w.wait_state(r, "delivered", timeout=60)
        time.sleep(1.0)
        got = sorted(r for _, rcpts_, _ in sink.messages for r in rcpts_)
        assert got == sorted(rcpts), got
        # one worker: everything due at start goes over very few connections
        assert len(set(sink.peers)) <= 3, sink.peers


class Mute:
    """Accepts connections on 127.0.0.1 and never says anything."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.sock.listen(8)
        self.conns = []
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() of the thread
        except OSError:
            pass
        self.sock.close()
        self.thread.join(5)
        for c in self.conns:
            c.close()


def test_prompt_shutdown_during_delivery(world):
    """SIGTERM while a delivery waits for a silent server: the server exits within seconds and
    the recipient is due again (no attempt counted), then delivered after the restart."""
    with Mute() as mute:
        w = world(delivery=f'  routes: "dest.example=127.0.0.1:{mute.port}"\n')
        w.send("bob@dest.example")
        srv = w.start()
        assert _wait(lambda: len(mute.conns) >= 1, timeout=20), srv.log()
        time.sleep(0.5)
        t0 = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        srv.proc.wait(30)
        took = time.monotonic() - t0
        log = srv.log()
        srv.logf.close()
        w.srv = None
        assert took < 10, (took, log)
        assert srv.proc.returncode == 0, log
        assert "shutdown: delivery interrupted" in log, log
        rows = w.queue()["bob@dest.example"]
        assert " delivering " not in rows[0], rows
        assert " deferred " in rows[0] or " queued " in rows[0], rows
    port = mute.port
    with Sink(port=port) as sink:
        w.start()
        w.wait_state("bob@dest.example", "delivered")
        assert _wait(lambda: len(sink.messages) == 1)
