"""`lightr queue list|show|retry|hold|release|drop` (issue 5) on rows created the real way: mail
to remote recipients sent through the submission listener. The server is stopped before the
commands run, so the rows do not move under the test (a relay on a closed port keeps a server
that already delivers from getting anywhere meanwhile)."""
import os
import re
import shutil
import smtplib
import sqlite3
import ssl
import tempfile
import time

import pytest

from conftest import Server, _bin, free_port, run, wait_port, write_config

PW = "alice-password"


def _tls():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _msg(subject):
    return ("From: alice@test.example\r\nTo: x@remote.example\r\nSubject: " + subject +
            "\r\n\r\nhello\r\n").encode()


class World:
    def __init__(self, directory):
        self.bin, self.dir = _bin(), directory
        extra = f"delivery:\n  relay: 127.0.0.1:{free_port()}\n"
        self.cfg, self.ports = write_config(directory, extra)
        self.q("domain", "add", "test.example")
        self.q("account", "add", "alice@test.example", "--password-stdin", stdin=PW + "\n")
        srv = Server(self.bin, config=self.cfg, cwd=directory, wait_for=self.ports["mx"])
        try:
            assert wait_port(self.ports["submission"])
            s = smtplib.SMTP("127.0.0.1", self.ports["submission"], timeout=10)
            s.starttls(context=_tls())
            s.login("alice@test.example", PW)
            s.sendmail("alice@test.example", ["one@remote.example", "two@other.example"],
                       _msg("first"))
            s.sendmail("alice@test.example", ["three@remote.example"], _msg("second"))
            s.quit()
            # The running scheduler tries the (closed) relay at once; wait until every row is
            # back to "deferred", so that none is caught mid-attempt ("delivering") by the stop.
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                rows = _rows(self.q("queue", "list"))
                if len(rows) == 3 and all(r[2] == "deferred" for r in rows):
                    break
                time.sleep(0.2)
        finally:
            srv.stop()

    def run(self, *args, stdin=None):
        return run(self.bin, *args, config=self.cfg, stdin=stdin)

    def q(self, *args, stdin=None):
        r = self.run(*args, stdin=stdin)
        assert r.returncode == 0, r.stderr
        return r.stdout

    def ids(self):
        with sqlite3.connect(os.path.join(self.dir, "data", "lightr.db")) as db:
            return [i for (i,) in db.execute("SELECT id FROM queue_messages ORDER BY id")]


@pytest.fixture(scope="module")
def world():
    d = tempfile.mkdtemp(prefix="lightr-queue-", dir="/tmp")
    os.chmod(d, 0o755)
    yield World(d)
    shutil.rmtree(d, ignore_errors=True)


def _rows(out):
    """[(id, rcpt, state)] of `queue list` output."""
    return [tuple(l.split()[:3]) for l in out.splitlines() if l.strip()]


def test_list_and_filters(world):
    first, second = world.ids()
    rows = _rows(world.q("queue", "list"))
    assert [(r[0], r[1]) for r in rows] == [(str(first), "one@remote.example"),
                                            (str(first), "two@other.example"),
                                            (str(second), "three@remote.example")]
    assert all(r[2] in ("queued", "deferred") for r in rows)
    assert re.search(r"attempts=\d+ next=\d{4}-\d\d-\d\dT", world.q("queue", "list"))
    rows = _rows(world.q("queue", "list", "--domain", "REMOTE.example"))
    assert [r[1] for r in rows] == ["one@remote.example", "three@remote.example"]
    assert world.q("queue", "list", "--state", "held") == ""
    r = world.run("queue", "list", "--state", "nonsense")
    assert r.returncode == 2 and "unknown state" in r.stderr


def test_show(world):
    first = world.ids()[0]
    out = world.q("queue", "show", str(first))
    assert f"id: {first}\n" in out
    assert "mail_from: <alice@test.example>\n" in out
    assert "auth_user: alice@test.example\n" in out
    assert "recipients: 2\n" in out
    assert "  one@remote.example " in out and "  two@other.example " in out
    r = world.run("queue", "show", "999999")
    assert r.returncode == 1 and r.stderr.startswith("lightr: ")
    r = world.run("queue", "show", "abc")
    assert r.returncode == 1
    r = world.run("queue", "show")
    assert r.returncode == 2


def test_hold_release_retry(world):
    first, second = world.ids()
    assert "2 recipient(s)" in world.q("queue", "hold", str(first))
    held = _rows(world.q("queue", "list", "--state", "held"))
    assert sorted(r[1] for r in held) == ["one@remote.example", "two@other.example"]
    # retry does not touch held rows
    world.q("queue", "retry", "--all")
    assert len(_rows(world.q("queue", "list", "--state", "held"))) == 2
    assert "2 recipient(s)" in world.q("queue", "release", str(first))
    assert world.q("queue", "list", "--state", "held") == ""
    assert "1 recipient(s)" in world.q("queue", "retry", str(second))
    assert world.run("queue", "retry").returncode == 2
    assert world.run("queue", "retry", str(second), "--all").returncode == 2
    assert world.run("queue", "hold", "--all").returncode == 2
    assert world.run("queue", "release", "424242").returncode == 1


def test_drop(world):
    first, second = world.ids()
    assert "dropped" in world.q("queue", "drop", str(second))
    rows = _rows(world.q("queue", "list"))
    assert [r[0] for r in rows] == [str(first), str(first)]
    assert world.run("queue", "show", str(second)).returncode == 1
    assert world.run("queue", "drop", str(second)).returncode == 1
    assert world.ids() == [first]


def test_help(world):
    out = world.q("queue", "--help") if world.run("queue", "--help").returncode == 0 else ""
    r = world.run("queue")
    assert r.returncode == 2 or "list" in (r.stdout + r.stderr)
    assert "list" in (out + r.stdout + r.stderr)
