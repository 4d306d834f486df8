"""Rate limits and abuse guardrails (issue 8) end to end against the real binary: outbound limits
per account and per domain on submission (451 4.7.1 naming the limit and when it frees) and on
the REST API (429 with Retry-After), recipients per message without a silent partial send,
daily windows across a restart, inbound limits per client IP on the MX listener (451 4.7.1,
421 4.7.0) kept apart from the outbound budgets, the authentication-failure lockout of one IP
(the right password from 127.0.0.2 still works) and the usage/override surfaces (API and CLI).

Every test starts its own server with its own full "limits:" section (conftest.write_config
turns the limits off otherwise). Every wait is bounded (at most 20 s)."""
import imaplib
import os
import re
import shutil
import smtplib
import socket
import sqlite3
import ssl
import tempfile
import time
import urllib.parse

import pytest

from conftest import Server, _bin, run, wait_port, write_config
from test_api import Api

DOMAIN = "t.example"
PW = {"al": "al-password-1", "bo": "bo-password-1", "cy": "cy-password-1",
      "di": "di-password-1", "ed": "ed-password-1"}
LIMIT_RE = re.compile(rb"retry in (\d+) s")

# every rule off (0 = unlimited, auth generous); a test overrides what it tests
BASE = {
    "account": {"messages_per_minute": 0, "messages_per_hour": 0, "messages_per_day": 0,
                "recipients_per_day": 0, "recipients_per_message": 0},
    "domain": {"messages_per_minute": 0, "messages_per_hour": 0, "messages_per_day": 0,
               "recipients_per_day": 0, "recipients_per_message": 0},
    "ip": {"connections_per_minute": 0, "messages_per_minute": 0, "recipients_per_minute": 0},
    "auth": {"delay_after": 1000, "lockout_after": 10000},
    "api": {"requests_per_second": 0},
}
OTHER = ("imap:\n  plaintext_auth_loopback: true\n  auth_failure_delay: 0s\n"
         "smtp:\n  auth_failure_delay: 0s\n  max_errors: 50\n  max_auth_failures: 50\n")


def limits_yaml(**over):
    out = ["limits:"]
    for sect, rules in BASE.items():
        r = dict(rules)
        r.update(over.get(sect, {}))
        out.append(f"  {sect}: {{" + ", ".join(f"{k}: {v}" for k, v in r.items()) + "}")
    return "\n".join(out) + "\n"


def _tls():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class LimitWorld:
    """A data dir with t.example and accounts al, bo, cy, di, ed @t.example, an admin API key and
    a domain key of t.example, and a running server."""

    def __init__(self, limits, extra=OTHER):
        self.bin = _bin()
        if not os.access(self.bin, os.X_OK):
            pytest.fail(f"{self.bin} is not built (make san)")
        self.dir = tempfile.mkdtemp(prefix="lightr-limits-", dir="/tmp")
        os.chmod(self.dir, 0o755)
        self.srv = None
        try:
            self.cfg, self.ports = write_config(self.dir, limits + extra)
            self.cli("domain", "add", DOMAIN)
            for u, pw in PW.items():
                self.cli("account", "add", f"{u}@{DOMAIN}", "--password-stdin", stdin=pw + "\n")
            self.admin = self.apikey("--name", "admin")
            self.key_t = self.apikey("--domain", DOMAIN, "--name", "key-t")
            self.start()
        except BaseException:
            self.close()
            raise

    def start(self):
        self.srv = Server(self.bin, config=self.cfg, cwd=self.dir, wait_for=self.ports["http"])
        # not the MX port: a probe from 127.0.0.1 would count as an MX connection
        for role in ("submission", "imap"):
            assert wait_port(self.ports[role])
        self.api = Api(self.ports["http"])

    def stop_server(self):
        if self.srv:
            rc = self.srv.stop()
            self.srv = None
            return rc
        return None

    def close(self):
        self.stop_server()
        shutil.rmtree(self.dir, ignore_errors=True)

    def cli(self, *a, stdin=None, check=True):
        r = run(self.bin, *a, config=self.cfg, stdin=stdin)
        if check:
            assert r.returncode == 0, f"lightr {' '.join(a)}: {r.returncode}\n{r.stdout}{r.stderr}"
        return r

    def apikey(self, *args):
        out = self.cli("apikey", "create", *args).stdout
        m = re.search(r"\blr_[A-Za-z0-9_\-]+", out.splitlines()[0])
        assert m, out
        return m.group(0)

    def log(self):
        return self.srv.log() if self.srv else ""

    # ---- SMTP
    def submission(self, user, source="127.0.0.1"):
        s = smtplib.SMTP("127.0.0.1", self.ports["submission"], timeout=30,
                         source_address=(source, 0))
        s.starttls(context=_tls())
        s.login(f"{user}@{DOMAIN}", PW[user])
        return s

    def mx(self, source="127.0.0.1"):
        s = smtplib.SMTP("127.0.0.1", self.ports["mx"], timeout=30, source_address=(source, 0))
        s.ehlo("client.remote.example")
        return s

    def inbox(self, user):
        """Subjects of user's INBOX messages in UID order (read from the store)."""
        with sqlite3.connect(os.path.join(self.dir, "data", "lightr.db"), timeout=10) as db:
            rows = db.execute(
                "SELECT bl.data FROM messages m"
                " JOIN mailboxes mb ON mb.id = m.mailbox_id"
                " JOIN accounts a ON a.id = mb.account_id"
                " JOIN blobs bl ON bl.sha256 = m.blob_sha256"
                " WHERE a.address = ? COLLATE NOCASE AND mb.name = 'INBOX' ORDER BY m.uid",
                (f"{user}@{DOMAIN}",)).fetchall()
        subj = []
        for (h,) in rows:
            m = re.search(rb"^Subject: (.*?)\r?$", bytes(h), re.M)
            subj.append(m.group(1).decode() if m else "")
        return subj

    # ---- API
    def usage(self, kind, name, key=None):
        r = self.api.get(f"/api/v1/{kind}/{urllib.parse.quote(name, safe='')}/limits",
                         key or self.admin)
        assert r.status == 200, r
        return {row["rule"]: row for row in r.json["limits"]}


def message(frm, subject, to="bo@t.example"):
    return (f"From: {frm}\r\nTo: {to}\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject}.{time.monotonic_ns()}@t.example>\r\n\r\nbody {subject}\r\n"
            ).encode()


def send(s, frm, rcpts, subject):
    """One transaction on an open session: (stage, code, text) of the first refusal or
    ("data", 250, text). A refusal before DATA resets the transaction."""
    code, text = s.mail(frm)
    if code != 250:
        s.rset()
        return "mail", code, text
    for r in rcpts:
        code, text = s.rcpt(r)
        if code != 250:
            s.rset()
            return "rcpt", code, text
    code, text = s.data(message(frm, subject, rcpts[0]))
    return "data", code, text


def retry_in(text):
    m = LIMIT_RE.search(text)
    assert m, f"no 'retry in N s' in {text!r}"
    return int(m.group(1))


@pytest.fixture
def world_factory():
    made = []

    def make(limits, extra=OTHER):
        w = LimitWorld(limits, extra)
        made.append(w)
        return w

    yield make
    for w in made:
        w.close()


# ---------------------------------------------------------------- 1. submission per minute

def test_submission_11th_message_in_a_minute_refused_then_frees(world_factory):
    w = world_factory(limits_yaml(account={"messages_per_minute": 10}))
    s = w.submission("al")
    t0 = time.monotonic()
    for i in range(10):
        assert send(s, "al@t.example", ["bo@t.example"], f"m{i}")[1] == 250, i
    assert time.monotonic() - t0 < 5, "10 sends took too long for a per-minute test"
    stage, code, text = send(s, "al@t.example", ["bo@t.example"], "m10")
    assert (stage, code) == ("mail", 451), (stage, code, text)
    assert text.startswith(b"4.7.1 "), text
    assert b"limit of 10 messages per minute" in text and b"al@t.example" in text, text
    n = retry_in(text)
    assert 1 <= n <= 6, text  # GCRA: one message frees every 6 s
    t_refused = time.monotonic()
    if n >= 3:  # still refused well before the announced time
        time.sleep(n - 2)
        stage, code, text = send(s, "al@t.example", ["bo@t.example"], "early")
        assert (stage, code) == ("mail", 451), (stage, code, text)
    # once the announced time has passed, exactly one more goes
    time.sleep(max(0.0, t_refused + n + 0.2 - time.monotonic()))
    stage, code, text = send(s, "al@t.example", ["bo@t.example"], "after")
    assert (stage, code) == ("data", 250), (stage, code, text)
    stage, code, text = send(s, "al@t.example", ["bo@t.example"], "after2")
    assert (stage, code) == ("mail", 451), (stage, code, text)
    s.quit()
    inbox = w.inbox("bo")
    assert inbox == [f"m{i}" for i in range(10)] + ["after"], inbox
    assert "rule=messages_per_minute" in w.log()


# ---------------------------------------------------------------- 2. REST API

def api_send(w, subject, key=None, frm="al@t.example", to="bo@t.example"):
    return w.api.post("/api/v1/messages", {"from": frm, "to": to, "subject": subject,
                                           "text": f"body {subject}"}, key or w.key_t)


def test_api_429_with_retry_after_then_accepted(world_factory):
    # 6 per minute: one message frees every 10 s (a bounded wait)
    w = world_factory(limits_yaml(domain={"messages_per_minute": 6}))
    for i in range(6):
        r = api_send(w, f"a{i}")
        assert r.status == 202, (i, r)
    r = api_send(w, "a6")
    assert r.status == 429, r
    e = r.json["error"]
    assert e["code"] == "rate_limited", r
    assert e["limit"]["rule"] == "messages_per_minute", r
    assert e["limit"]["limit"] == 6 and e["limit"]["who"] == DOMAIN, r
    assert "messages per minute" in e["message"] and DOMAIN in e["message"], r
    ra = r.header("Retry-After")
    assert ra is not None and ra.isdigit(), r.headers
    assert int(ra) == e["limit"]["retry_after"], (ra, e)
    assert 1 <= int(ra) <= 10, ra
    assert f"retry in {ra} s" in e["message"], e
    t_refused = time.monotonic()
    # an admin key sending for the same domain shares the domain's budget
    assert api_send(w, "a6-admin", key=w.admin).status == 429
    time.sleep(max(0.0, t_refused + int(ra) + 0.2 - time.monotonic()))
    r = api_send(w, "a7")
    assert r.status == 202, r
    assert api_send(w, "a8").status == 429
    # nothing refused was sent
    deadline = time.monotonic() + 20
    want = [f"a{i}" for i in range(6)] + ["a7"]
    while sorted(w.inbox("bo")) != sorted(want) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert sorted(w.inbox("bo")) == sorted(want), w.inbox("bo")


def test_api_requests_per_second_per_key(world_factory):
    w = world_factory(limits_yaml(api={"requests_per_second": 2}))
    path = f"/api/v1/domains/{DOMAIN}"
    got = []
    t0 = time.monotonic()
    for _ in range(3):
        got.append(w.api.get(path, w.key_t))
    assert time.monotonic() - t0 < 0.5, "3 requests took too long for a per-second test"
    assert [r.status for r in got[:2]] == [200, 200], got
    r = got[2]
    assert r.status == 429, r
    assert r.json["error"]["code"] == "rate_limited"
    assert r.json["error"]["limit"]["rule"] == "requests_per_second"
    assert r.header("Retry-After") == str(r.json["error"]["limit"]["retry_after"]), r.headers
    # another key has its own budget
    assert w.api.get(path, w.admin).status == 200
    time.sleep(int(r.header("Retry-After")) + 0.1)
    assert w.api.get(path, w.key_t).status == 200


# ---------------------------------------------------------------- 3. per-domain limit, two accounts

def test_domain_limit_shared_by_two_accounts(world_factory):
    w = world_factory(limits_yaml(domain={"messages_per_minute": 4}))
    a, b = w.submission("al"), w.submission("bo")
    for i in range(2):
        assert send(a, "al@t.example", ["cy@t.example"], f"al{i}")[1] == 250
        assert send(b, "bo@t.example", ["cy@t.example"], f"bo{i}")[1] == 250
    for s, frm in ((a, "al@t.example"), (b, "bo@t.example")):
        stage, code, text = send(s, frm, ["cy@t.example"], "over")
        assert (stage, code) == ("mail", 451), (frm, stage, code, text)
        assert text.startswith(b"4.7.1 "), text
        assert b"limit of 4 messages per minute for domain t.example" in text, text
        assert 1 <= retry_in(text) <= 15, text
    # a third account of the domain, never used, is refused as well
    c = w.submission("di")
    stage, code, text = send(c, "di@t.example", ["cy@t.example"], "di")
    assert (stage, code) == ("mail", 451) and b"domain t.example" in text, text
    for s in (a, b, c):
        s.quit()
    assert sorted(w.inbox("cy")) == ["al0", "al1", "bo0", "bo1"]
    u = w.usage("domains", DOMAIN)
    assert u["messages_per_minute"]["used"] == 4 and u["messages_per_minute"]["remaining"] == 0, u


# ---------------------------------------------------------------- 4. recipients per message

def test_recipients_per_message_refuses_the_4th_rcpt_and_says_so(world_factory):
    w = world_factory(limits_yaml(account={"recipients_per_message": 3}))
    s = w.submission("al")
    assert s.mail("al@t.example")[0] == 250
    for u in ("bo", "cy", "di"):
        code, text = s.rcpt(f"{u}@t.example")
        assert code == 250, (u, code, text)
    code, text = s.rcpt("ed@t.example")
    assert code == 451, (code, text)
    assert text.startswith(b"4.7.1 "), text
    assert b"limit of 3 recipients per message" in text and b"al@t.example" in text, text
    # the refusal was said at RCPT for ed; the message goes to the three accepted only
    code, text = s.data(message("al@t.example", "three", "bo@t.example"))
    assert code == 250, (code, text)
    s.quit()
    for u in ("bo", "cy", "di"):
        assert w.inbox(u) == ["three"], u
    assert w.inbox("ed") == []


# ---------------------------------------------------------------- 5. daily window across a restart

def test_daily_limit_survives_a_restart(world_factory):
    w = world_factory(limits_yaml(account={"messages_per_day": 3}))
    s = w.submission("al")
    for i in range(3):
        assert send(s, "al@t.example", ["bo@t.example"], f"d{i}")[1] == 250, i
    s.quit()
    assert w.stop_server() == 0
    w.start()
    s = w.submission("al")
    stage, code, text = send(s, "al@t.example", ["bo@t.example"], "d3")
    assert (stage, code) == ("mail", 451), (stage, code, text)
    assert text.startswith(b"4.7.1 ") and b"limit of 3 messages per day" in text, text
    assert 1 <= retry_in(text) <= 86400, text
    s.quit()
    # another account of the domain is not affected
    s = w.submission("bo")
    assert send(s, "bo@t.example", ["al@t.example"], "bo")[1] == 250
    s.quit()
    u = w.usage("accounts", "al@t.example")
    assert u["messages_per_day"]["used"] == 3 and u["messages_per_day"]["remaining"] == 0, u
    assert w.inbox("bo") == ["d0", "d1", "d2"]


# ---------------------------------------------------------------- 6. brute force, lockout of one IP

class IMAPFrom(imaplib.IMAP4):
    """imaplib from a chosen loopback source address (the server listens on 127.0.0.1)."""

    def __init__(self, port, source):
        self._source = source
        super().__init__("127.0.0.1", port, timeout=30)

    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout,
                                        source_address=(self._source, 0))


def imap_login(w, user, password, source):
    im = IMAPFrom(w.ports["imap"], source)
    try:
        im.login(f"{user}@{DOMAIN}", password)
    except imaplib.IMAP4.error as e:
        im.logout()
        return str(e)
    im.logout()
    return "OK"


def api_get_from(w, source, key, path="/api/v1/domains"):
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", w.ports["http"], timeout=30,
                                   source_address=(source, 0))
    try:
        c.request("GET", path, headers={"Authorization": f"Bearer {key}"})
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def test_brute_force_locks_the_ip_out_not_the_account(world_factory):
    w = world_factory(limits_yaml(auth={"delay_after": 1, "lockout_after": 5, "lockout": "60s"}))
    t0 = time.monotonic()
    for i in range(5):
        r = imap_login(w, "bo", f"wrong-{i}", "127.0.0.1")
        assert r != "OK" and "AUTHENTICATIONFAILED" in r, r
    took = time.monotonic() - t0
    # growing delays after the first failure (1 s step): at least 1+2+3+4 s in all
    assert took >= 8, f"no growing delay: 5 failures in {took:.1f} s"
    # locked out: the right password from the same IP is refused (without a check) ...
    r = imap_login(w, "bo", PW["bo"], "127.0.0.1")
    assert r != "OK", "the right password must not work from a locked-out IP"
    # ... and answered at once, not after another growing delay
    t1 = time.monotonic()
    r = imap_login(w, "bo", PW["bo"], "127.0.0.1")
    assert r != "OK" and time.monotonic() - t1 < 3, r
    # the right password from another loopback address still works
    assert imap_login(w, "bo", PW["bo"], "127.0.0.2") == "OK"
    # SMTP AUTH shares the tracker: refused from 127.0.0.1, fine from 127.0.0.2
    with pytest.raises(smtplib.SMTPAuthenticationError) as ei:
        w.submission("bo", source="127.0.0.1")
    assert ei.value.smtp_code == 535, ei.value
    s = w.submission("bo", source="127.0.0.2")
    assert send(s, "bo@t.example", ["al@t.example"], "from-2")[1] == 250
    s.quit()
    # the API: 429 for the locked-out IP even with a valid key, 200 from 127.0.0.2
    status, heads, body = api_get_from(w, "127.0.0.1", w.admin)
    assert status == 429 and b"rate_limited" in body and heads.get("retry-after"), (status, body)
    status, heads, body = api_get_from(w, "127.0.0.2", w.admin)
    assert status == 200, (status, body)
    log = w.log()
    assert log.count("lockout client=127.0.0.1") == 1, log
    assert "lockout client=127.0.0.2" not in log


def test_brute_force_over_smtp_auth(world_factory):
    w = world_factory(limits_yaml(auth={"delay_after": 1, "lockout_after": 3, "lockout": "60s"}))
    s = smtplib.SMTP("127.0.0.1", w.ports["submission"], timeout=30)
    s.starttls(context=_tls())
    for i in range(3):
        with pytest.raises(smtplib.SMTPAuthenticationError):
            s.login("al@t.example", f"wrong-{i}")
    for _ in range(2):
        with pytest.raises(smtplib.SMTPAuthenticationError):
            s.login("al@t.example", PW["al"])
    s.close()
    assert imap_login(w, "al", PW["al"], "127.0.0.1") != "OK"
    assert imap_login(w, "al", PW["al"], "127.0.0.2") == "OK"
    s = w.submission("al", source="127.0.0.2")
    s.quit()
    log = w.log()
    assert log.count("lockout client=127.0.0.1") == 1, log


# ---------------------------------------------------------------- 7. inbound apart from outbound

def test_inbound_ip_limits_apart_from_outbound(world_factory):
    w = world_factory(limits_yaml(
        account={"messages_per_minute": 10}, domain={"messages_per_minute": 10},
        ip={"connections_per_minute": 4, "messages_per_minute": 2, "recipients_per_minute": 100}))
    # outbound first: 3 messages from 127.0.0.1 (more than the inbound budget of 2)
    s = w.submission("al")
    for i in range(3):
        assert send(s, "al@t.example", ["bo@t.example"], f"out{i}")[1] == 250, i
    s.quit()
    # inbound from the same IP still has its whole budget of 2 (MX connection 1 of 4)
    mx = w.mx()
    for i in range(2):
        assert send(mx, "x@remote.example", ["bo@t.example"], f"in{i}")[1] == 250, i
    stage, code, text = send(mx, "x@remote.example", ["bo@t.example"], "in2")
    assert (stage, code) == ("mail", 451), (stage, code, text)
    assert text.startswith(b"4.7.1 "), text
    assert b"limit of 2 messages per minute for client 127.0.0.1" in text, text
    assert 1 <= retry_in(text) <= 30, text
    mx.quit()
    # outbound from the same IP still goes
    s = w.submission("al")
    assert send(s, "al@t.example", ["bo@t.example"], "out3")[1] == 250
    s.quit()
    # the outbound budgets counted only the 4 submissions, not the 2 inbound messages
    ua, ud = w.usage("accounts", "al@t.example"), w.usage("domains", DOMAIN)
    assert ua["messages_per_minute"]["used"] == 4, ua
    assert ud["messages_per_minute"]["used"] == 4, ud
    ub = w.usage("accounts", "bo@t.example")
    assert ub["messages_per_minute"]["used"] == 0, ub
    # another client IP has its own inbound budget
    mx = w.mx(source="127.0.0.2")
    assert send(mx, "y@remote.example", ["bo@t.example"], "in-2")[1] == 250
    mx.quit()
    # connections per minute on the MX listener: 3 more from 127.0.0.1, the 5th gets 421
    for i in range(3):
        with socket.create_connection(("127.0.0.1", w.ports["mx"]), timeout=10) as c:
            g = c.recv(512)
            assert g.startswith(b"220 "), (i, g)
    with socket.create_connection(("127.0.0.1", w.ports["mx"]), timeout=10) as c:
        g = c.recv(512)
    assert g.startswith(b"421 4.7.0 "), g
    assert b"connections per minute" in g and b"127.0.0.1" in g and b"retry in" in g, g
    # submission connections are not counted against the MX connection budget
    s = w.submission("al")
    s.quit()
    assert sorted(w.inbox("bo")) == sorted(["out0", "out1", "out2", "in0", "in1", "out3",
                                            "in-2"])


# ---------------------------------------------------------------- 8. usage and overrides

def show_line(w, rule, account="al@t.example"):
    out = w.cli("account", "show", account).stdout
    m = re.search(rf"^\s*{rule}\s+(\S+)\s+(\S+)", out, re.M)
    assert m, out
    return m.group(1), m.group(2)


def test_usage_and_overrides(world_factory):
    w = world_factory(limits_yaml(account={"messages_per_day": 2},
                                  domain={"messages_per_day": 10}))
    s = w.submission("al")
    for i in range(2):
        assert send(s, "al@t.example", ["bo@t.example"], f"u{i}")[1] == 250
    stage, code, text = send(s, "al@t.example", ["bo@t.example"], "u2")
    assert (stage, code) == ("mail", 451) and b"limit of 2 messages per day" in text, text

    ua = w.usage("accounts", "al@t.example")
    assert set(ua) == {"messages_per_minute", "messages_per_hour", "messages_per_day",
                       "recipients_per_day", "recipients_per_message"}, ua
    d = ua["messages_per_day"]
    assert (d["limit"], d["used"], d["remaining"], d["overridden"]) == (2, 2, 0, False), d
    assert d["resets_in"] > 0, d
    assert ua["messages_per_minute"]["limit"] is None, ua  # 0 = unlimited
    assert ua["messages_per_minute"]["remaining"] is None, ua
    ud = w.usage("domains", DOMAIN)
    d = ud["messages_per_day"]
    assert (d["limit"], d["used"], d["remaining"]) == (10, 2, 8), d
    # a domain key may read its own domain's usage
    assert w.usage("accounts", "al@t.example", key=w.key_t)["messages_per_day"]["used"] == 2
    assert show_line(w, "messages_per_day") == ("2", "2")

    # a domain key cannot lift its limits
    acct = "/api/v1/accounts/al%40t.example"
    r = w.api.patch(acct, {"limits": {"messages_per_day": 100}}, w.key_t)
    assert r.status == 403, r
    r = w.api.patch(f"/api/v1/domains/{DOMAIN}", {"limits": {"messages_per_day": 100}}, w.key_t)
    assert r.status == 403, r
    assert w.usage("accounts", "al@t.example")["messages_per_day"]["limit"] == 2
    assert w.usage("domains", DOMAIN)["messages_per_day"]["limit"] == 10
    r = w.api.patch(acct, {"limits": {"no_such_rule": 1}}, w.admin)
    assert r.status == 422, r

    # the admin raises it by one: one more goes
    r = w.api.patch(acct, {"limits": {"messages_per_day": 3}}, w.admin)
    assert r.status == 200, r
    d = w.usage("accounts", "al@t.example")["messages_per_day"]
    assert (d["limit"], d["remaining"], d["overridden"]) == (3, 1, True), d
    assert send(s, "al@t.example", ["bo@t.example"], "u3")[1] == 250
    stage, code, text = send(s, "al@t.example", ["bo@t.example"], "u4")
    assert (stage, code) == ("mail", 451) and b"limit of 3 messages per day" in text, text

    # the CLI raises it once more, while the server runs
    r = w.cli("account", "limit", "al@t.example", "messages_per_day", "4")
    assert send(s, "al@t.example", ["bo@t.example"], "u5")[1] == 250
    stage, code, text = send(s, "al@t.example", ["bo@t.example"], "u6")
    assert (stage, code) == ("mail", 451) and b"limit of 4 messages per day" in text, text
    assert show_line(w, "messages_per_day") == ("4", "4")
    # back to the default
    w.cli("account", "limit", "al@t.example", "messages_per_day", "none")
    d = w.usage("accounts", "al@t.example")["messages_per_day"]
    assert (d["limit"], d["overridden"]) == (2, False), d
    bad = w.cli("account", "limit", "al@t.example", "no_such_rule", "4", check=False)
    assert bad.returncode != 0 and "no_such_rule" in (bad.stdout + bad.stderr), bad

    # a domain override applies to every account of the domain (4 sent today)
    w.cli("domain", "limit", DOMAIN, "messages_per_day", "4")
    b = w.submission("bo")
    stage, code, text = send(b, "bo@t.example", ["al@t.example"], "b0")
    assert (stage, code) == ("mail", 451), (stage, code, text)
    assert b"limit of 4 messages per day for domain t.example" in text, text
    r = w.api.patch(f"/api/v1/domains/{DOMAIN}", {"limits": {"messages_per_day": None}},
                    w.admin)
    assert r.status == 200, r
    assert send(b, "bo@t.example", ["al@t.example"], "b1")[1] == 250
    d = w.usage("domains", DOMAIN)["messages_per_day"]
    assert (d["limit"], d["used"], d["overridden"]) == (10, 5, False), d
    b.quit()
    s.quit()


# ---------------------------------------------------------------- more windows and paths

def test_recipients_per_day_and_messages_per_hour(world_factory):
    w = world_factory(limits_yaml(account={"recipients_per_day": 5, "messages_per_hour": 3}))
    s = w.submission("al")
    assert send(s, "al@t.example", ["bo@t.example", "cy@t.example", "di@t.example"], "r0")[1] \
        == 250
    # 3 of 5 recipients used: the 3rd recipient of the next message is refused at RCPT
    assert s.mail("al@t.example")[0] == 250
    assert s.rcpt("bo@t.example")[0] == 250
    assert s.rcpt("cy@t.example")[0] == 250
    code, text = s.rcpt("di@t.example")
    assert code == 451 and text.startswith(b"4.7.1 "), (code, text)
    assert b"limit of 5 recipients per day for account al@t.example" in text, text
    code, text = s.data(message("al@t.example", "r1", "bo@t.example"))
    assert code == 250, (code, text)
    assert w.inbox("di") == ["r0"]
    u = w.usage("accounts", "al@t.example")
    assert (u["recipients_per_day"]["used"], u["recipients_per_day"]["remaining"]) == (5, 0), u
    # per hour: the 3rd message of the hour is the last
    assert s.mail("al@t.example")[0] == 250
    code, text = s.rcpt("bo@t.example")
    assert code == 451 and b"recipients per day" in text, (code, text)
    s.rset()
    w.cli("account", "limit", "al@t.example", "recipients_per_day", "0")
    assert send(s, "al@t.example", ["bo@t.example"], "r2")[1] == 250
    stage, code, text = send(s, "al@t.example", ["bo@t.example"], "r3")
    assert (stage, code) == ("mail", 451), (stage, code, text)
    assert b"limit of 3 messages per hour" in text, text
    assert 60 <= retry_in(text) <= 1200, text  # GCRA: one message frees every 20 min
    s.quit()


def test_one_budget_whatever_the_case_of_the_login(world_factory):
    w = world_factory(limits_yaml(account={"messages_per_minute": 2}))
    a = smtplib.SMTP("127.0.0.1", w.ports["submission"], timeout=30)
    a.starttls(context=_tls())
    a.login("AL@T.Example", PW["al"])
    b = w.submission("al")
    assert send(a, "al@t.example", ["bo@t.example"], "c0")[1] == 250
    assert send(b, "al@t.example", ["bo@t.example"], "c1")[1] == 250
    for s in (a, b):
        stage, code, text = send(s, "al@t.example", ["bo@t.example"], "c2")
        assert (stage, code) == ("mail", 451), (stage, code, text)
        s.quit()


def test_wrong_api_keys_lock_the_ip_out(world_factory):
    w = world_factory(limits_yaml(auth={"delay_after": 1, "lockout_after": 3, "lockout": "60s"}))
    bogus = "lr_" + "A" * 40
    for i in range(3):
        status, _, body = api_get_from(w, "127.0.0.1", bogus)
        assert status == 401, (i, status, body)
    status, heads, body = api_get_from(w, "127.0.0.1", w.admin)
    assert status == 429 and heads.get("retry-after", "").isdigit(), (status, body)
    status, _, body = api_get_from(w, "127.0.0.2", w.admin)
    assert status == 200, (status, body)
    # the lockout is of the IP, for every protocol
    assert imap_login(w, "al", PW["al"], "127.0.0.1") != "OK"
    assert imap_login(w, "al", PW["al"], "127.0.0.2") == "OK"
    assert w.log().count("lockout client=127.0.0.1") == 1, w.log()


def test_lightr_send_shares_the_daily_budget(world_factory):
    """Per-day limits hold across processes (cmd_send.c): a message sent by `lightr send` while
    the server runs counts against the budget the server enforces."""
    w = world_factory(limits_yaml(account={"messages_per_day": 3, "recipients_per_message": 2}))
    s = w.submission("al")
    for i in range(2):
        assert send(s, "al@t.example", ["bo@t.example"], f"s{i}")[1] == 250
    s.quit()
    msg = "From: al@t.example\nSubject: cli\n\nbody\n"
    r = w.cli("send", "bo@t.example", "cy@t.example", "di@t.example", stdin=msg, check=False)
    assert r.returncode != 0 and "recipients per message" in r.stderr, r
    r = w.cli("send", "bo@t.example", stdin=msg, check=False)
    assert r.returncode == 0, r
    r = w.cli("send", "bo@t.example", stdin=msg, check=False)
    assert r.returncode != 0 and "limit of 3 messages per day" in r.stderr, r
    s = w.submission("al")
    stage, code, text = send(s, "al@t.example", ["bo@t.example"], "s3")
    assert (stage, code) == ("mail", 451) and b"messages per day" in text, (stage, code, text)
    s.quit()
    assert w.usage("accounts", "al@t.example")["messages_per_day"]["used"] == 3
