"""Outbound delivery through a smarthost (issue 5): delivery.relay, delivery.relay_user,
delivery.relay_password and delivery.relay_tls (none|starttls|tls). With a relay and no
delivery.routes every remote domain goes to the relay. The relay is an aiosmtpd server on
loopback that records what it saw (STARTTLS, AUTH with the credentials, whether the command came
under TLS) next to the messages; certificates are self-signed, so Lightr's TLS is "unverified"
(opportunistic, not fatal).

AUTH PLAIN is only sent under TLS (STARTTLS taken, or relay_tls: tls); an AUTH failure (535) is
a temporary failure: the row is deferred with the reply, never bounced.

aiosmtpd 1.4 does not count an implicit-TLS socket (Controller ssl_context=) as TLS for its own
auth_require_tls check, so that relay runs with auth_require_tls=False; the test checks itself
that AUTH came under TLS."""
import re
import signal

import pytest

from conftest import free_port, write_config

aiosmtpd_controller = pytest.importorskip("aiosmtpd.controller")
aiosmtpd_smtp = pytest.importorskip("aiosmtpd.smtp")
# World: config, `lightr send`, `lightr queue list`, the server; the same helpers as there.
from test_delivery import World, _tls_context, _wait  # noqa: E402

USER = "relay-user@smarthost.example"
PASSWORD = "s3cret pass:word"  # a space and a colon: must survive AUTH PLAIN as they are
VERP = re.compile(r"bounce\+[a-z0-9]+@test\.example")


class _RecordingSMTP(aiosmtpd_smtp.SMTP):
    """aiosmtpd's SMTP that notes every STARTTLS and AUTH command (also those it refuses) with
    whether the connection was under TLS at that moment."""

    def _tls_now(self):
        return (self.transport is not None and
                self.transport.get_extra_info("ssl_object") is not None)

    @aiosmtpd_smtp.syntax("STARTTLS", when="tls_context")
    async def smtp_STARTTLS(self, arg):
        self.event_handler.note("STARTTLS", self._tls_now())
        return await super().smtp_STARTTLS(arg)

    @aiosmtpd_smtp.syntax("AUTH <mechanism>")
    async def smtp_AUTH(self, arg):
        self.event_handler.note("AUTH", self._tls_now())
        return await super().smtp_AUTH(arg)


class _Controller(aiosmtpd_controller.Controller):
    def factory(self):
        return _RecordingSMTP(self.handler, **self.SMTP_kwargs)


class RelaySink:
    """A smarthost on 127.0.0.1. starttls: an SSLContext offered with STARTTLS; implicit: an
    SSLContext for TLS from the first byte; password: the one it accepts for USER (None: no
    AUTH check, every AUTH fails). auth_require_tls as aiosmtpd has it (AUTH advertised and
    accepted only after STARTTLS)."""

    def __init__(self, starttls=None, implicit=None, password=PASSWORD, auth_require_tls=True):
        self.port = free_port()
        self.password = password
        self.commands = []  # (verb, under_tls)
        self.auths = []     # (mechanism, login, password, under_tls)
        self.messages = []  # (mail_from, rcpts, data, under_tls)
        kw = {"authenticator": self._authenticate, "auth_require_tls": auth_require_tls}
        if starttls is not None:
            kw.update(tls_context=starttls, require_starttls=False)
        if implicit is not None:
            kw["ssl_context"] = implicit
        self.ctl = _Controller(self, hostname="127.0.0.1", port=self.port, **kw)

    def note(self, verb, tls):
        self.commands.append((verb, tls))

    def verbs(self):
        return [v for v, _ in self.commands]

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        login = auth_data.login.decode("utf-8", "replace")
        password = auth_data.password.decode("utf-8", "replace")
        self.auths.append((mechanism, login, password, server._tls_now()))
        ok = self.password is not None and login == USER and password == self.password
        return aiosmtpd_smtp.AuthResult(success=ok, handled=False)

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos),
                              bytes(envelope.original_content or envelope.content),
                              server._tls_now()))
        return "250 2.0.0 queued at the smarthost"

    def __enter__(self):
        self.ctl.start()
        return self

    def __exit__(self, *exc):
        self.ctl.stop()


def _relay_conf(port, tls, user=USER, password=PASSWORD):
    s = f'  relay: "127.0.0.1:{port}"\n  relay_tls: {tls}\n'
    if user is not None:
        s += f'  relay_user: "{user}"\n'
    if password is not None:
        s += f'  relay_password: "{password}"\n'
    return s


def _rewrite(w, delivery):
    """Rewrites w's config file in place (same ports) with another delivery block, the way
    World wrote it."""
    extra = "delivery:\n  retry_schedule: 1s\n  connect_timeout: 2s\n" + delivery
    write_config(w.dir, extra, ports=w.ports)


def _queue_id(row):
    return row.split()[0]


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


def test_starttls_auth_every_remote_domain(world, tmpdir_world):
    with RelaySink(starttls=_tls_context(tmpdir_world)) as sink:
        w = world(delivery=_relay_conf(sink.port, "starttls"))
        w.send("bob@dest.example", subject="via relay 1")
        w.send("carol@other.example", subject="via relay 2")
        w.start()
        rows = w.wait_state("bob@dest.example", "delivered")
        rows += w.wait_state("carol@other.example", "delivered")
        assert _wait(lambda: len(sink.messages) == 2), sink.messages
        for row in rows:
            assert f"[127.0.0.1]:{sink.port}" in row, row
            assert re.search(r"tls=TLSv1\.[23]/unverified", row), row
        got = {}
        for mail_from, rcpts, data, tls in sink.messages:
            assert VERP.fullmatch(mail_from), mail_from
            assert tls, "message sent without TLS"
            for r in rcpts:
                got[r] = data
        assert sorted(got) == ["bob@dest.example", "carol@other.example"]
        assert b"Subject: via relay 1" in got["bob@dest.example"]
        assert b"Subject: via relay 2" in got["carol@other.example"]
        # STARTTLS before AUTH on every connection, AUTH only under TLS, exactly our credentials
        assert sink.commands and sink.commands[0] == ("STARTTLS", False), sink.commands
        assert all(tls for verb, tls in sink.commands if verb == "AUTH"), sink.commands
        assert sink.verbs().count("STARTTLS") == sink.verbs().count("AUTH"), sink.commands
        assert sink.auths, sink.commands
        assert all(a == ("PLAIN", USER, PASSWORD, True) for a in sink.auths), sink.auths
        log = w.srv.log()
        assert PASSWORD not in log  # never logged
        assert re.search(r"queue \d+ delivered rcpt=<bob@dest\.example> relay=\[127\.0\.0\.1\]:"
                         rf"{sink.port} .*tls=TLSv1\.[23]/unverified", log), log


def test_implicit_tls_auth(world, tmpdir_world):
    with RelaySink(implicit=_tls_context(tmpdir_world), auth_require_tls=False) as sink:
        w = world(delivery=_relay_conf(sink.port, "tls"))
        w.send("bob@dest.example", subject="implicit")
        w.start()
        rows = w.wait_state("bob@dest.example", "delivered")
        assert re.search(r"tls=TLSv1\.[23]/unverified", rows[0]), rows
        assert _wait(lambda: len(sink.messages) == 1), sink.messages
        mail_from, rcpts, data, tls = sink.messages[0]
        assert VERP.fullmatch(mail_from), mail_from
        assert rcpts == ["bob@dest.example"]
        assert b"Subject: implicit" in data
        assert tls
        assert "STARTTLS" not in sink.verbs(), sink.commands  # TLS from the first byte
        assert sink.auths == [("PLAIN", USER, PASSWORD, True)], sink.auths


def test_implicit_tls_against_plaintext_relay(world):
    """relay_tls: tls, but the relay speaks plain SMTP: the handshake fails, the row is
    deferred, and there is no fallback to plaintext (no AUTH, no message)."""
    with RelaySink(auth_require_tls=False) as sink:
        w = world(delivery=_relay_conf(sink.port, "tls"))
        w.send("bob@dest.example")
        w.start()
        rows = w.wait_state("bob@dest.example", "deferred")
        assert "dsn=4." in rows[0] and 'error="tls: ' in rows[0], rows
        assert _wait(lambda: "attempts=1 " not in w.queue()["bob@dest.example"][0], 10)
        assert sink.auths == [] and "AUTH" not in sink.verbs(), sink.commands
        assert sink.messages == []


def _wrong_password_deferred(w, sink):
    rows = w.wait_state("bob@dest.example", "deferred")
    assert "535" in rows[0] and "dsn=4.7.8" in rows[0], rows
    assert "Authentication credentials invalid" in rows[0], rows
    qid = _queue_id(rows[0])
    show = w.cli("queue", "show", qid)
    assert "bob@dest.example deferred" in show and "535" in show, show
    assert sink.auths and sink.auths[0] == ("PLAIN", USER, "wrong", True), sink.auths
    assert sink.messages == []
    # retried (retry_schedule 1s), still deferred, never bounced
    assert _wait(lambda: len(sink.auths) >= 2, 10), sink.auths
    rows = w.wait_state("bob@dest.example", "deferred")
    assert "bounced" not in rows[0]


def test_wrong_password_deferred_then_fixed_with_restart(world, tmpdir_world):
    with RelaySink(starttls=_tls_context(tmpdir_world)) as sink:
        w = world(delivery=_relay_conf(sink.port, "starttls", password="wrong"))
        w.send("bob@dest.example", subject="after fix")
        w.start()
        _wrong_password_deferred(w, sink)
        _rewrite(w, _relay_conf(sink.port, "starttls"))
        w.stop()
        w.start()
        w.cli("queue", "retry", "--all")
        rows = w.wait_state("bob@dest.example", "delivered")
        assert f"[127.0.0.1]:{sink.port}" in rows[0], rows
        assert _wait(lambda: len(sink.messages) == 1), sink.messages
        assert b"Subject: after fix" in sink.messages[0][2]
        assert sink.auths[-1] == ("PLAIN", USER, PASSWORD, True), sink.auths


def test_relay_password_change_needs_restart(world, tmpdir_world):
    """delivery.* is read when the queue starts: SIGHUP keeps the running value and says that
    a restart is needed (the restart itself is test_wrong_password_deferred_then_fixed_...)."""
    with RelaySink(starttls=_tls_context(tmpdir_world)) as sink:
        w = world(delivery=_relay_conf(sink.port, "starttls", password="wrong"))
        w.send("bob@dest.example")
        w.start()
        _wrong_password_deferred(w, sink)
        _rewrite(w, _relay_conf(sink.port, "starttls"))
        w.srv.signal(signal.SIGHUP)
        assert _wait(lambda: "server - reloaded" in w.srv.log(), 10), w.srv.log()
        assert "key=delivery.relay_password changed but needs a restart" in w.srv.log()
        assert PASSWORD not in w.srv.log()


def _no_auth_in_clear(w, sink):
    rows = w.wait_state("bob@dest.example", "deferred")
    assert "AUTH not attempted without TLS" in rows[0], rows
    assert "dsn=4.7.0" in rows[0], rows
    # a retry (retry_schedule 1s) does the same
    assert _wait(lambda: "attempts=1 " not in w.queue()["bob@dest.example"][0], 10)
    rows = w.wait_state("bob@dest.example", "deferred")
    assert "AUTH not attempted without TLS" in rows[0], rows
    assert "AUTH" not in sink.verbs(), sink.commands
    assert sink.auths == []
    assert sink.messages == []  # not sent unauthenticated either
    assert PASSWORD not in w.srv.log()


def test_relay_tls_none_with_user_never_auths_in_clear(world, tmpdir_world):
    """relay_tls: none with relay_user set: no STARTTLS (even though offered) and so no AUTH;
    the relay advertises AUTH PLAIN in plaintext, which must not tempt the client."""
    with RelaySink(starttls=_tls_context(tmpdir_world), auth_require_tls=False) as sink:
        w = world(delivery=_relay_conf(sink.port, "none"))
        w.send("bob@dest.example")
        w.start()
        _no_auth_in_clear(w, sink)
        assert "STARTTLS" not in sink.verbs(), sink.commands


def test_relay_starttls_not_offered_never_auths_in_clear(world):
    """relay_tls: starttls, the relay offers no STARTTLS but AUTH PLAIN in plaintext."""
    with RelaySink(auth_require_tls=False) as sink:
        w = world(delivery=_relay_conf(sink.port, "starttls"))
        w.send("bob@dest.example")
        w.start()
        _no_auth_in_clear(w, sink)
