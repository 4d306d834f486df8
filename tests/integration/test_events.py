"""Events, tracking, bounces and the suppression list (issue 7) end to end: the real binary with an
HTTP listener, a webhook receiver (http.server on loopback) that checks every signature, an
aiosmtpd sink standing for the remote MX (delivery.routes), smtplib for inbound mail, DSNs and
ARF reports to the MX listener, imaplib to read the tracked mail, urllib to follow its links,
and the `lightr webhook|suppression` commands. test_events_webhooks.py (retries, kill -9)
imports the helpers of this file."""
import email
import email.policy
import hashlib
import hmac
import json
import os
import re
import smtplib
import threading
import time
import urllib.error
import urllib.request
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import Server, free_port, wait_port, write_config
from test_api import IMAP_EXTRA, Api, ApiWorld, fails, ok, q, wait_for

aiosmtpd_controller = pytest.importorskip("aiosmtpd.controller")

WAIT = 30  # seconds: the longest any single wait in these tests may take


# ---------------------------------------------------------------- the webhook receiver

class Receiver:
    """A webhook endpoint on 127.0.0.1: checks Lightr-Signature with the webhook's secret
    (set after the 201 of the create; requests wait for it), answers 500 to the first
    fail_first deliveries of each event id and 200 afterwards (after delay seconds). Every
    request is kept in .requests; .accepted maps event id -> number of 200 answers."""

    def __init__(self, fail_first=0, delay=0.0):
        self.fail_first, self.delay = fail_first, delay
        self.secret = None
        self.secret_set = threading.Event()
        self.lock = threading.Lock()
        self.requests = []  # dicts: id, type, body (parsed), status, sig_ok
        self.tries = {}
        self.accepted = {}
        self.bad = []  # problems seen (bad signature, missing header, bad JSON)
        recv = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                status = recv._handle(self.path, self.headers, body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def set_secret(self, secret):
        self.secret = secret
        self.secret_set.set()

    def _check_sig(self, headers, body):
        sig = headers.get("Lightr-Signature") or ""
        m = re.fullmatch(r"t=(\d+),v1=([0-9a-f]{64})", sig)
        if not m:
            return f"malformed Lightr-Signature {sig!r}"
        if not self.secret_set.wait(10):
            return "no secret set"
        t = int(m.group(1))
        want = hmac.new(self.secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(want, m.group(2)):
            return "signature does not verify"
        if abs(time.time() - t) > 300:
            return f"signature time {t} too far from now"
        return None

    def _handle(self, path, headers, body):
        problem = self._check_sig(headers, body)
        doc = None
        if problem is None:
            try:
                doc = json.loads(body)
            except ValueError:
                problem = "body is not JSON"
        if problem is None:
            if set(doc) != {"id", "type", "created_at", "data"}:
                problem = f"unexpected members {sorted(doc)}"
            elif headers.get("Lightr-Event-Id") != doc["id"]:
                problem = f"Lightr-Event-Id {headers.get('Lightr-Event-Id')} != {doc['id']}"
            elif not (headers.get("Content-Type") or "").startswith("application/json"):
                problem = f"Content-Type {headers.get('Content-Type')}"
        if problem is not None:
            with self.lock:
                self.bad.append((problem, headers.get("Lightr-Signature"), body[:300]))
            return 400
        if self.delay:
            time.sleep(self.delay)
        with self.lock:
            eid = doc["id"]
            n = self.tries.get(eid, 0) + 1
            self.tries[eid] = n
            status = 500 if n <= self.fail_first else 200
            if status == 200:
                self.accepted[eid] = self.accepted.get(eid, 0) + 1
            self.requests.append({"id": eid, "type": doc["type"], "doc": doc, "status": status})
        return status

    def docs(self, type_=None):
        """The accepted deliveries (first of each event id), optionally of one type."""
        with self.lock:
            seen, out = set(), []
            for r in self.requests:
                if r["status"] == 200 and r["id"] not in seen and \
                        (type_ is None or r["type"] == type_):
                    seen.add(r["id"])
                    out.append(r["doc"])
            return out


# ---------------------------------------------------------------- the remote sink

class Sink:
    """An aiosmtpd MX for remote.example: refuses RCPT TO for the addresses in .refuse with
    their reply, records every RCPT TO and every accepted transaction."""

    def __init__(self):
        self.port = free_port()
        self.refuse = {}
        self.rcpts_seen = []
        self.messages = []  # (mail_from, rcpts, data)
        self.lock = threading.Lock()
        self.ctl = aiosmtpd_controller.Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with self.lock:
            self.rcpts_seen.append(address.lower())
        reply = self.refuse.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.messages.append((envelope.mail_from, [a.lower() for a in envelope.rcpt_tos],
                                  bytes(envelope.original_content or envelope.content)))
        return "250 2.0.0 queued here"

    def for_rcpt(self, addr):
        with self.lock:
            return [m for m in self.messages if addr.lower() in m[1]]


# ---------------------------------------------------------------- the world

class EventsWorld(ApiWorld):
    """ApiWorld (a.example: alice, bob; b.example: carol; admin, key_a, key_b) with webhooks to
    loopback allowed, 1 s webhook retries, tracking.base_url on our HTTP listener and
    remote.example routed to a Sink."""

    def __init__(self, sink, webhooks_extra=""):
        self.sink = sink
        self.webhooks_extra = webhooks_extra
        self.logs = []  # of servers killed before
        super().__init__(delivery=f'  routes: "remote.example=127.0.0.1:{sink.port}"\n')

    def _setup(self, delivery):
        ports = {r: free_port() for r in
                 ("mx", "submission", "submissions", "imap", "imaps", "http")}
        extra = (IMAP_EXTRA + "delivery:\n  retry_schedule: 1s\n  connect_timeout: 2s\n" +
                 delivery +
                 "webhooks:\n  allow_private_addresses: true\n  retry_schedule: 1s,1s,1s\n"
                 "  timeout: 5s\n" + self.webhooks_extra +
                 f'tracking:\n  base_url: "http://127.0.0.1:{ports["http"]}"\n')
        self.cfg, self.ports = write_config(self.dir, extra, ports=ports)
        for d in ("a.example", "b.example"):
            self.cli("domain", "add", d)
        for addr, pw in self.PASSWORDS.items():
            self.cli("account", "add", addr, "--password-stdin", stdin=pw + "\n")
        self.admin = self.apikey("--name", "test-admin")
        self.key_a = self.apikey("--domain", "a.example", "--name", "key-a")
        self.key_b = self.apikey("--domain", "b.example", "--name", "key-b")
        self.start()

    def start(self):
        if self.srv is not None:
            self.logs.append(self.srv.log())
        self.srv = Server(self.bin, config=self.cfg, cwd=self.dir, wait_for=self.ports["http"])
        assert wait_port(self.ports["imap"]) and wait_port(self.ports["mx"])
        self.api = Api(self.ports["http"])

    def kill9(self):
        """kill -9 of the server; its log stays readable."""
        self.srv.proc.kill()
        self.srv.proc.wait(WAIT)
        self.srv.logf.close()

    def webhook(self, receiver, events=None, key=None, domain=None):
        body = {"url": receiver.url}
        if events is not None:
            body["events"] = events
        if domain is not None:
            body["domain"] = domain
        res = ok(self.api.post("/api/v1/webhooks", body, key or self.admin), 201)
        assert re.fullmatch(r"whsec_[A-Za-z0-9]{32}", res["secret"]), res
        receiver.set_secret(res["secret"])
        return res

    def events(self, key=None, **filters):
        """Every event the key sees with those filters, oldest first (all pages)."""
        out, cursor = [], None
        for _ in range(1000):
            qs = [f"{k}={q(str(v))}" for k, v in filters.items()] + ["limit=1000"]
            if cursor:
                qs.append("cursor=" + q(cursor))
            page = ok(self.api.get("/api/v1/events?" + "&".join(qs), key or self.admin))
            out += page["data"]
            cursor = page["next_cursor"]
            if not cursor:
                return out
        raise AssertionError("events: too many pages")

    def wait_event(self, type_, pred=lambda e: True, key=None, timeout=WAIT, **filters):
        def find():
            hits = [e for e in self.events(key, type=type_, **filters) if pred(e)]
            return hits or None
        hits = wait_for(find, timeout=timeout, step=0.3)
        assert hits, (f"no {type_} event {filters} within {timeout} s; events: " +
                      json.dumps(self.events(key), indent=1)[-4000:] + "\nlog:\n" +
                      self.srv.log()[-4000:])
        return hits

    def stop(self):
        """Stops the server; fails on sanitizer reports in any of its logs."""
        logs = list(self.logs)
        if self.srv is not None:
            srv = self.srv
            self.srv.stop()
            logs.append(srv.log())
            self.srv = srv
        super().stop()
        for log in logs:
            for bad in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
                assert bad not in log, log[-6000:]


def send(w, body, key=None, status=202):
    return ok(w.api.post("/api/v1/messages", body, key or w.key_a), status)


def tok():
    return os.urandom(6).hex()


def rcpt_status(res):
    """email (lower-cased) -> status of the recipients of a send answer."""
    return {r["email"].lower(): r["status"] for r in res["recipients"]}


def mx_send(w, mail_from, rcpts, data):
    with smtplib.SMTP("127.0.0.1", w.ports["mx"], timeout=WAIT) as s:
        s.ehlo("outside.test")
        refused = s.sendmail(mail_from, rcpts, data)
        assert not refused, refused


def mailbox_totals(w):
    """user -> number of messages over all their mailboxes (IMAP STATUS)."""
    out = {}
    for user in w.PASSWORDS:
        s = w.imap(user)
        try:
            typ, data = s.list()
            assert typ == "OK", data
            total = 0
            for line in data:
                name = line.decode().rsplit(' "/" ', 1)[-1].strip()
                typ, st = s.status(name, "(MESSAGES)")
                assert typ == "OK", st
                total += int(re.search(rb"MESSAGES (\d+)", st[0]).group(1))
            out[user] = total
        finally:
            s.logout()
    return out


@pytest.fixture(scope="module")
def sink():
    s = Sink()
    s.ctl.start()
    yield s
    s.ctl.stop()


@pytest.fixture(scope="module")
def world(sink):
    w = EventsWorld(sink)
    yield w
    w.stop()


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()
    assert not r.bad, r.bad


# ---------------------------------------------------------------- 3. tracking

class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def http_get(url, ua):
    """(status, headers lower-cased, body) without following redirects."""
    opener = urllib.request.build_opener(NoRedirect)
    req = urllib.request.Request(url, headers={"User-Agent": ua})
    try:
        with opener.open(req, timeout=WAIT) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def fetch_imap(w, user, subject):
    """The raw message with that subject in user's INBOX (waits for it)."""
    def find():
        s = w.imap(user)
        try:
            typ, d = s.select("INBOX", readonly=True)
            assert typ == "OK", d
            typ, d = s.search(None, "SUBJECT", f'"{subject}"')
            assert typ == "OK", d
            ids = d[0].split()
            if not ids:
                return None
            typ, full = s.fetch(ids[-1], "(BODY.PEEK[])")
            assert typ == "OK", full
            return full[0][1]
        finally:
            s.logout()
    raw = wait_for(find, timeout=WAIT, step=0.3)
    assert raw, f"no message {subject!r} in {user}'s INBOX"
    return raw


HUMAN_UA = "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Thunderbird/115.6.0"
PROXY_UA = ("Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 "
            "(via ggpht.com GoogleImageProxy)")


def forge(token):
    """The token with one character of its MAC changed."""
    i = len(token) - 3
    c = "A" if token[i] != "A" else "B"
    return token[:i] + c + token[i + 1:]


def test_tracking_end_to_end(world, receiver):
    w = world
    wh = w.webhook(receiver, ["message.opened", "message.clicked"], key=w.key_a)
    try:
        d = ok(w.api.patch("/api/v1/domains/a.example",
                           {"track_opens": True, "track_clicks": True}, w.key_a))
        assert d["track_opens"] is True and d["track_clicks"] is True, d
        t = tok()
        links = {"http": f"http://www.example.com/page?x={t}&y=2",
                 "https": f"https://shop.example.org/p/{t}#frag"}
        html = ("<html><head><title>t</title></head><body><p>Hello</p>"
                f'<a href="{links["http"].replace("&", "&amp;")}">one</a> '
                f'<a href="{links["https"]}">two</a> '
                '<a href="mailto:carol@b.example">write carol</a>'
                "</body></html>")
        subject = "tracked " + t
        res = send(w, {"from": "alice@a.example", "to": "bob@a.example", "subject": subject,
                       "text": "plain version\n", "html": html,
                       "tags": ["trk"], "metadata": {"t": t}})
        mid = res["id"]
        raw = fetch_imap(w, "bob@a.example", subject)
        m = email.message_from_bytes(raw, policy=email.policy.default)
        part = m.get_body(preferencelist=("html",))
        assert part is not None, raw[:2000]
        got = part.get_content()
        hrefs = re.findall(r'href="([^"]*)"', got)
        base = f"http://127.0.0.1:{w.ports['http']}"
        clicks = [h for h in hrefs if h.startswith(base + "/t/c/")]
        assert len(clicks) == 2, got
        assert "mailto:carol@b.example" in hrefs, got
        assert links["http"] not in got and links["https"] not in got, got
        pixels = re.findall(r'<img[^>]*src="(' + re.escape(base) + r'/t/o/[^"]+)"', got)
        assert len(pixels) == 1, got
        # the text part is left alone
        assert "/t/c/" not in m.get_body(preferencelist=("plain",)).get_content()

        # the pixel: a GIF, not cached
        st, h, body = http_get(pixels[0], HUMAN_UA)
        assert st == 200 and h["content-type"] == "image/gif", (st, h)
        assert "no-store" in h.get("cache-control", "") and body.startswith(b"GIF89a"), h
        # the clicks: 302 to the original URLs, in order
        st, h, _ = http_get(clicks[0], HUMAN_UA)
        assert st == 302 and h["location"] == links["http"], (st, h)
        st, h, _ = http_get(clicks[1], HUMAN_UA)
        assert st == 302 and h["location"] == links["https"], (st, h)
        # repeats
        assert http_get(pixels[0], HUMAN_UA)[0] == 200
        assert http_get(clicks[0], HUMAN_UA)[0] == 302
        # an image proxy
        assert http_get(pixels[0], PROXY_UA)[0] == 200
        # forged and cut tokens
        for bad in (forge(pixels[0]), forge(clicks[0]), clicks[0][:-4],
                    pixels[0].replace("/t/o/", "/t/c/"), clicks[0].replace("/t/c/", "/t/o/"),
                    base + "/t/c/" + "A" * 40):
            st, h, body = http_get(bad, HUMAN_UA)
            assert st == 404, (bad, st, h, body[:200])
            assert "location" not in h

        opens = wait_for(lambda: (lambda v: v if len(v) >= 3 else None)(
            w.events(w.key_a, type="message.opened", message=mid)), timeout=WAIT)
        assert opens and len(opens) == 3, opens
        for e in opens:
            assert e["data"]["message"] == mid and e["data"]["recipient"] == "bob@a.example"
            assert e["data"]["domain"] == "a.example"
            assert e["data"]["tags"] == ["trk"] and e["data"]["metadata"] == {"t": t}, e
            assert e["data"]["ip"] == "127.0.0.1", e
        assert [e["data"]["first"] for e in opens] == [True, False, False], opens
        assert [e["data"]["machine"] for e in opens] == [False, False, True], opens
        assert [e["data"]["user_agent"] for e in opens] == [HUMAN_UA, HUMAN_UA, PROXY_UA]
        cl = w.events(w.key_a, type="message.clicked", message=mid)
        assert [(e["data"]["url"], e["data"]["first"]) for e in cl] == [
            (links["http"], True), (links["https"], False), (links["http"], False)], cl
        # "first" is the first click of this message and recipient (routes_track.c), any link
        assert all(e["data"]["machine"] is False for e in cl), cl

        # the webhook got all of them
        want = {e["id"] for e in opens + cl}
        assert wait_for(lambda: want <= {d["id"] for d in receiver.docs()}, timeout=WAIT), (
            want, receiver.requests)
        byid = {d["id"]: d for d in receiver.docs()}
        for e in opens + cl:
            assert byid[e["id"]] == e, (byid[e["id"]], e)
    finally:
        ok(w.api.patch("/api/v1/domains/a.example",
                       {"track_opens": False, "track_clicks": False}, w.key_a))
        ok(w.api.delete(f"/api/v1/webhooks/{wh['id']}", w.key_a), 204)


def test_tracking_per_message_and_off(world):
    """Per message track_clicks without opens; track_opens false leaves no pixel; no tracking
    at all leaves the HTML links alone."""
    w = world
    t = tok()
    url = f"https://example.net/{t}"
    html = f'<html><body><a href="{url}">x</a> <a href="#top">top</a></body></html>'
    send(w, {"from": "alice@a.example", "to": "bob@a.example", "subject": "clicks " + t,
             "html": html, "track_clicks": True, "track_opens": False})
    got = email.message_from_bytes(fetch_imap(w, "bob@a.example", "clicks " + t),
                                   policy=email.policy.default).get_body(("html",)).get_content()
    assert "/t/c/" in got and "/t/o/" not in got and url not in got, got
    assert 'href="#top"' in got, got
    send(w, {"from": "alice@a.example", "to": "bob@a.example", "subject": "plain " + t,
             "html": html})
    got = email.message_from_bytes(fetch_imap(w, "bob@a.example", "plain " + t),
                                   policy=email.policy.default).get_body(("html",)).get_content()
    assert "/t/" not in got and url in got, got


# ---------------------------------------------------------------- 4. synchronous bounce

def test_synchronous_bounce_suppresses(world, receiver):
    w, sink = world, world.sink
    t = tok()
    gone = f"gone-{t}@remote.example"
    fine = f"fine-{t}@remote.example"
    sink.refuse[gone] = "550 5.1.1 no such user"
    wh = w.webhook(receiver, ["message.bounced", "message.suppressed", "message.delivered"],
                   key=w.key_a)
    try:
        res = send(w, {"from": "alice@a.example", "to": [gone, fine], "subject": "b " + t,
                       "text": "hello\n"})
        assert rcpt_status(res) == {gone: "queued", fine: "queued"}, res
        b = w.wait_event("message.bounced", key=w.key_a, recipient=gone)
        assert len(b) == 1, b
        d = b[0]["data"]
        assert d["message"] == res["id"] and d["domain"] == "a.example", b
        assert "550" in d.get("reply", "") and "no such user" in d["reply"], b
        assert d.get("dsn") == "5.1.1", b
        w.wait_event("message.delivered", key=w.key_a, recipient=fine)
        assert not w.events(w.key_a, type="message.bounced", recipient=fine)
        sync_detail = d

        sup = ok(w.api.get("/api/v1/suppressions", w.key_a))["data"]
        mine = [s for s in sup if s["address"] == gone]
        assert len(mine) == 1 and mine[0]["reason"] == "hard_bounce", sup
        assert mine[0]["domain"] == "a.example" and mine[0]["created"], mine
        assert not [s for s in sup if s["address"] == fine], sup
        ok(w.api.get(f"/api/v1/suppressions/{q(gone)}", w.key_a))
        # compared case-insensitively on the domain, sub-addressing folded
        variant = gone.replace("@remote.example", "+x@REMOTE.example")
        ok(w.api.get(f"/api/v1/suppressions/{q(variant)}", w.key_a))
        # another domain's list does not have it
        assert not [s for s in ok(w.api.get("/api/v1/suppressions", w.key_b))["data"]
                    if s["address"] == gone]

        seen_before = sink.rcpts_seen.count(gone)
        msgs_before = len(sink.messages)
        res2 = send(w, {"from": "alice@a.example", "to": [variant, fine],
                        "subject": "b2 " + t, "text": "again\n"})
        st = rcpt_status(res2)
        assert st[variant.lower()] == "suppressed" and st[fine] == "queued", res2
        sp = w.wait_event("message.suppressed", key=w.key_a, message=res2["id"])
        assert len(sp) == 1 and sp[0]["data"]["recipient"].lower() in (variant.lower(), gone), sp
        w.wait_event("message.delivered", key=w.key_a, message=res2["id"], recipient=fine)
        time.sleep(1.5)  # a retry would come after 1 s
        assert sink.rcpts_seen.count(gone) == seen_before, sink.rcpts_seen
        assert not [r for r in sink.rcpts_seen if r.startswith(f"gone-{t}+")], sink.rcpts_seen
        assert len(sink.messages) == msgs_before + 1
        g = ok(w.api.get(f"/api/v1/messages/{res2['id']}", w.key_a))
        gs = {r["email"].lower(): r["status"] for r in g["recipients"]}
        assert gs[variant.lower()] == "suppressed", g
        # the webhook saw the bounce and the suppression
        want = {b[0]["id"], sp[0]["id"]}
        assert wait_for(lambda: want <= {x["id"] for x in receiver.docs()}, timeout=WAIT), \
            receiver.requests

        # taken off the list, the address is attempted again
        ok(w.api.delete(f"/api/v1/suppressions/{q(gone)}", w.key_a), 204)
        fails(w.api.get(f"/api/v1/suppressions/{q(gone)}", w.key_a), 404)
        res3 = send(w, {"from": "alice@a.example", "to": gone, "subject": "b3 " + t,
                        "text": "third\n"})
        assert rcpt_status(res3) == {gone: "queued"}, res3
        assert wait_for(lambda: sink.rcpts_seen.count(gone) > seen_before, timeout=WAIT)
    finally:
        ok(w.api.delete(f"/api/v1/webhooks/{wh['id']}", w.key_a), 204)
    # the detail says hard and synchronous (issue 7: "message.bounced (hard/soft, enhanced code,
    # reply, synchronous or from a DSN)"), as the DSN path (bounce.c) does with "hard" and
    # "source": "dsn"; checked last so that the rest of the flow above is tested regardless
    assert sync_detail.get("hard") is True, ("no hard flag in a synchronous bounce", sync_detail)
    assert sync_detail.get("source") not in (None, "dsn"), (
        "no source in a synchronous bounce", sync_detail)


def test_soft_bounces_suppress_after_three(world):
    """A permanent failure that is not an unknown user counts as soft; the third in a row
    suppresses the address (reason soft_bounces); a delivery in between resets the count."""
    w, sink = world, world.sink
    t = tok()
    addr = f"full-{t}@remote.example"
    sink.refuse[addr] = "552 5.7.1 policy says no"

    def bounce(i):
        res = send(w, {"from": "alice@a.example", "to": addr, "subject": f"soft {t} {i}",
                       "text": "x\n"})
        assert rcpt_status(res) == {addr: "queued"}, res
        b = w.wait_event("message.bounced", key=w.key_a, message=res["id"])
        assert b[0]["data"]["recipient"] == addr and b[0]["data"].get("dsn") == "5.7.1", b

    def suppressed():
        return w.api.get(f"/api/v1/suppressions/{q(addr)}", w.key_a)

    bounce(1)
    bounce(2)
    fails(suppressed(), 404)
    # a delivery resets the count
    del sink.refuse[addr]
    res = send(w, {"from": "alice@a.example", "to": addr, "subject": f"soft {t} ok",
                   "text": "x\n"})
    w.wait_event("message.delivered", key=w.key_a, message=res["id"])
    sink.refuse[addr] = "552 5.7.1 policy says no"
    bounce(3)
    bounce(4)
    fails(suppressed(), 404)
    bounce(5)
    s = ok(suppressed())
    assert s["reason"] == "soft_bounces", s
    res = send(w, {"from": "alice@a.example", "to": addr, "subject": f"soft {t} no",
                   "text": "x\n"})
    assert rcpt_status(res) == {addr: "suppressed"}, res


def test_submission_path_events_and_suppression(world):
    """Mail submitted with `lightr send` (the SMTP submission path) gets a message record with
    events, and its suppressed recipients are not attempted either."""
    w, sink = world, world.sink
    t = tok()
    blocked, fine = f"blocked-{t}@remote.example", f"fine-{t}@remote.example"
    ok(w.api.post("/api/v1/suppressions", {"address": blocked}, w.key_a), 201)
    msg = (f"From: alice@a.example\nTo: {blocked}, {fine}\nSubject: cli send {t}\n\n"
           "hello\n")
    r = w.cli("send", blocked, fine, stdin=msg, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    d = w.wait_event("message.delivered", key=w.key_a, recipient=fine)
    mid = d[0]["data"]["message"]
    assert re.fullmatch(r"msg_[A-Za-z0-9]+", mid or ""), d
    sp = w.wait_event("message.suppressed", key=w.key_a, recipient=blocked)
    assert sp[0]["data"]["message"] == mid, (sp, d)
    q_ = w.events(w.key_a, type="message.queued", message=mid)
    assert [e["data"]["recipient"] for e in q_] == [fine], q_
    time.sleep(1.5)
    assert blocked not in sink.rcpts_seen and fine in sink.rcpts_seen, sink.rcpts_seen
    g = ok(w.api.get(f"/api/v1/messages/{mid}", w.key_a))
    st = {x["email"].lower(): x["status"] for x in g["recipients"]}
    assert st == {blocked: "suppressed", fine: "delivered"}, g


# ---------------------------------------------------------------- 5. asynchronous bounce (DSN)

def dsn_report(bounce_addr, rcpt, orig_msgid, status="5.1.1"):
    boundary = "dsn-" + tok()
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.remote.example>\r\n"
        f"To: {bounce_addr}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: <dsn-{tok()}@mx.remote.example>\r\n"
        "Date: Sun, 29 Nov 2026 10:00:00 +0000\r\n"
        "MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"\r\n'
        "\r\n"
        f"--{boundary}\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
        f"Your message could not be delivered to {rcpt}.\r\n\r\n"
        f"--{boundary}\r\n"
        "Content-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.remote.example\r\n"
        "Arrival-Date: Sun, 29 Nov 2026 09:59:58 +0000\r\n\r\n"
        f"Final-Recipient: rfc822; {rcpt}\r\n"
        f"Original-Recipient: rfc822; {rcpt}\r\n"
        "Action: failed\r\n"
        f"Status: {status}\r\n"
        "Remote-MTA: dns; store.remote.example\r\n"
        f"Diagnostic-Code: smtp; 550 {status} <{rcpt}>: Recipient address rejected: "
        "User unknown\r\n\r\n"
        f"--{boundary}\r\n"
        "Content-Type: text/rfc822-headers\r\n\r\n"
        "From: alice@a.example\r\n"
        f"Message-ID: <{orig_msgid}>\r\n"
        "Subject: original\r\n\r\n"
        f"--{boundary}--\r\n")


def arf_report(bounce_addr, rcpt, orig_msgid):
    boundary = "arf-" + tok()
    return (
        "From: feedback@fbl.remote.example\r\n"
        f"To: {bounce_addr}\r\n"
        "Subject: FW: complaint\r\n"
        f"Message-ID: <arf-{tok()}@fbl.remote.example>\r\n"
        "Date: Sun, 29 Nov 2026 10:00:00 +0000\r\n"
        "MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=feedback-report; boundary="{boundary}"\r\n'
        "\r\n"
        f"--{boundary}\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
        "This is an email abuse report.\r\n\r\n"
        f"--{boundary}\r\n"
        "Content-Type: message/feedback-report\r\n\r\n"
        "Feedback-Type: abuse\r\n"
        "User-Agent: RemoteFBL/1.0\r\n"
        "Version: 1\r\n"
        "Original-Mail-From: <alice@a.example>\r\n"
        f"Original-Rcpt-To: <{rcpt}>\r\n"
        "Reported-Domain: a.example\r\n"
        "Source-IP: 127.0.0.1\r\n\r\n"
        f"--{boundary}\r\n"
        "Content-Type: message/rfc822\r\n\r\n"
        "From: alice@a.example\r\n"
        f"To: {rcpt}\r\n"
        f"Message-ID: <{orig_msgid}>\r\n"
        "Subject: original\r\n\r\n"
        "body\r\n\r\n"
        f"--{boundary}--\r\n")


def sent_to(w, addr, subject_token):
    """(mail_from, data) of the sink's transaction for addr whose data has the token."""
    def find():
        hits = [m for m in w.sink.for_rcpt(addr) if subject_token.encode() in m[2]]
        return hits[0] if hits else None
    m = wait_for(find, timeout=WAIT, step=0.2)
    assert m, f"the sink never got {addr}"
    return m


def test_async_bounce_dsn(world, receiver):
    w = world
    t = tok()
    r1, r2 = f"later-{t}@remote.example", f"other-{t}@remote.example"
    wh = w.webhook(receiver, ["message.bounced"], key=w.key_a)
    try:
        before = mailbox_totals(w)
        res = send(w, {"from": "alice@a.example", "to": [r1, r2], "subject": "dsn " + t,
                       "text": "hello\n"})
        mail_from, rcpts, data = sent_to(w, r1, "dsn " + t)
        assert r2 in rcpts, rcpts
        m = re.fullmatch(r"bounce\+([a-z2-7]+)@a\.example", mail_from)
        assert m, f"envelope sender {mail_from!r} is not a VERP address"
        for r in (r1, r2):
            w.wait_event("message.delivered", key=w.key_a, message=res["id"], recipient=r)
        mx_send(w, "", [mail_from], dsn_report(mail_from, r1, res["message_id"]))
        b = w.wait_event("message.bounced", key=w.key_a, message=res["id"])
        time.sleep(1)
        b = w.events(w.key_a, type="message.bounced", message=res["id"])
        assert len(b) == 1, b
        d = b[0]["data"]
        assert d["recipient"] == r1 and d["source"] == "dsn" and d["hard"] is True, b
        assert d["status"] == "5.1.1" and "User unknown" in d["reply"], b
        assert d["reporting_mta"] == "mx.remote.example", b
        assert not w.events(w.key_a, type="message.bounced", recipient=r2)
        sup = {s["address"]: s for s in ok(w.api.get("/api/v1/suppressions", w.key_a))["data"]}
        assert r1 in sup and sup[r1]["reason"] == "hard_bounce", sup
        assert r2 not in sup, sup
        assert wait_for(lambda: b[0]["id"] in {x["id"] for x in receiver.docs()},
                        timeout=WAIT), receiver.requests
        # the report went to no mailbox
        time.sleep(0.5)
        assert mailbox_totals(w) == before
        # a report for an unknown token is refused at RCPT or dropped, never stored
        try:
            mx_send(w, "", ["bounce+aaaaaaaaaaaaaaaaaaaaaaaaaa@a.example"],
                    dsn_report("x", r2, "x@y"))
        except smtplib.SMTPException:
            pass
        assert mailbox_totals(w) == before
        assert not w.events(w.key_a, type="message.bounced", recipient=r2)
    finally:
        ok(w.api.delete(f"/api/v1/webhooks/{wh['id']}", w.key_a), 204)


# ---------------------------------------------------------------- 6. complaint (ARF)

def test_complaint_arf(world, receiver):
    w = world
    t = tok()
    rc = f"angry-{t}@remote.example"
    wh = w.webhook(receiver, ["message.complained"], key=w.key_a)
    try:
        before = mailbox_totals(w)
        res = send(w, {"from": "alice@a.example", "to": rc, "subject": "arf " + t,
                       "text": "buy now\n"})
        mail_from, _, _ = sent_to(w, rc, "arf " + t)
        assert mail_from.startswith("bounce+"), mail_from
        mx_send(w, "", [mail_from], arf_report(mail_from, rc, res["message_id"]))
        c = w.wait_event("message.complained", key=w.key_a, message=res["id"])
        assert len(c) == 1, c
        d = c[0]["data"]
        assert d["recipient"] == rc and d["feedback_type"] == "abuse", c
        sup = ok(w.api.get(f"/api/v1/suppressions/{q(rc)}", w.key_a))
        assert sup["reason"] == "complaint", sup
        assert wait_for(lambda: c[0]["id"] in {x["id"] for x in receiver.docs()},
                        timeout=WAIT), receiver.requests
        assert mailbox_totals(w) == before
        res2 = send(w, {"from": "alice@a.example", "to": rc, "subject": "arf2 " + t,
                        "text": "again\n"})
        assert rcpt_status(res2) == {rc: "suppressed"}, res2
    finally:
        ok(w.api.delete(f"/api/v1/webhooks/{wh['id']}", w.key_a), 204)


# ---------------------------------------------------------------- 7. message.received

def test_message_received(world, receiver):
    w = world
    t = tok()
    wh = w.webhook(receiver, ["message.received"], key=w.key_a)
    try:
        msg = EmailMessage()
        msg["From"] = "Sam Sender <sam@outside.example>"
        msg["To"] = "Bob <bob@a.example>"
        msg["Subject"] = f"inbound {t}"
        msg["Message-ID"] = f"<in-{t}@outside.example>"
        msg["Date"] = "Sun, 29 Nov 2026 10:00:00 +0000"
        msg.set_content(f"text body {t}\n")
        msg.add_alternative(f"<p>html body {t}</p>", subtype="html")
        pdf = b"%PDF-1.4\n" + os.urandom(3000)
        msg.add_attachment(pdf, maintype="application", subtype="pdf", filename="report.pdf")
        mx_send(w, "sam@outside.example", ["bob@a.example"],
                msg.as_bytes(policy=email.policy.SMTP))
        ev = w.wait_event("message.received", key=w.key_a,
                          pred=lambda e: t in (e["data"].get("subject") or ""))
        assert len(ev) == 1, ev
        d = ev[0]["data"]
        assert d["domain"] == "a.example" and d["recipient"] == "bob@a.example", d
        assert re.fullmatch(r"msg_[A-Za-z0-9]+", d["message"] or ""), d
        assert "sam@outside.example" in d["from"] and "bob@a.example" in d["to"], d
        assert d["envelope_from"] == "sam@outside.example", d
        assert d["subject"] == f"inbound {t}" and d["message_id"].strip("<>") == \
            f"in-{t}@outside.example", d
        assert d["date"], d
        assert f"text body {t}" in d["text"] and f"html body {t}" in d["html"], d
        att = d["attachments"]
        assert len(att) == 1 and att[0]["filename"] == "report.pdf", att
        assert att[0]["content_type"] == "application/pdf" and att[0]["size"] == len(pdf), att
        # the filter: only message.received
        all_recv = w.events(w.key_a, type="message.received")
        assert all_recv and {e["type"] for e in all_recv} == {"message.received"}
        assert ev[0]["id"] in {e["id"] for e in all_recv}
        # scope: b.example's key neither sees it nor may ask for a.example
        assert ev[0]["id"] not in {e["id"] for e in w.events(w.key_b)}
        fails(w.api.get("/api/v1/events?domain=a.example", w.key_b), 403)
        fails(w.api.get("/api/v1/events?type=message.received&domain=a.example", w.key_b), 403)
        assert ev[0]["id"] in {e["id"] for e in w.events(w.admin, domain="a.example")}
        assert wait_for(lambda: ev[0]["id"] in {x["id"] for x in receiver.docs()},
                        timeout=WAIT), receiver.requests
        assert {x["type"] for x in receiver.docs()} == {"message.received"}
        # the mail itself was stored
        assert fetch_imap(w, "bob@a.example", f"inbound {t}")
    finally:
        ok(w.api.delete(f"/api/v1/webhooks/{wh['id']}", w.key_a), 204)


def test_events_filters_and_cursor(world):
    w = world
    evs = w.events(w.admin)
    assert len(evs) >= 3
    ids = [int(e["id"][4:]) for e in evs]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    page = ok(w.api.get("/api/v1/events?limit=2", w.admin))
    assert [e["id"] for e in page["data"]] == [e["id"] for e in evs[:2]]
    assert page["next_cursor"]
    nxt = ok(w.api.get("/api/v1/events?limit=2&cursor=" + q(page["next_cursor"]), w.admin))
    assert [e["id"] for e in nxt["data"]] == [e["id"] for e in evs[2:4]]
    after = ok(w.api.get(f"/api/v1/events?after={evs[0]['id']}&limit=1", w.admin))
    assert after["data"][0]["id"] == evs[1]["id"]
    fails(w.api.get("/api/v1/events?cursor=zz", w.admin), 400)
    fails(w.api.get("/api/v1/events?after=42", w.admin), 400)
    fails(w.api.get("/api/v1/events", None), 401)
    for e in w.events(w.key_b):
        assert e["data"]["domain"] == "b.example", e


# ---------------------------------------------------------------- 8. CLI

def test_cli_webhook_and_suppression(world):
    w = world
    url = f"http://127.0.0.1:{free_port()}/cli-hook"
    r = w.cli("webhook", "add", url, "--events", "message.bounced,message.opened",
              "--domain", "a.example", check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert re.fullmatch(r"whsec_[A-Za-z0-9]{32}", lines[0]), r.stdout
    m = re.match(r"id (\d+) ", lines[1])
    assert m, r.stdout
    wid = m.group(1)
    assert "shown only this once" in r.stderr
    out = w.cli("webhook", "list")
    row = [ln for ln in out.splitlines() if ln.split()[:1] == [wid]]
    assert len(row) == 1 and url in row[0] and "a.example" in row[0], out
    assert "message.bounced" in row[0] and "message.opened" in row[0], out
    assert lines[0] not in out  # the secret is not shown again
    # the API sees the same webhook (domain key of a.example, not b.example)
    g = ok(w.api.get(f"/api/v1/webhooks/{wid}", w.key_a))
    assert g["url"] == url and sorted(g["events"]) == ["message.bounced", "message.opened"]
    assert "secret" not in g
    fails(w.api.get(f"/api/v1/webhooks/{wid}", w.key_b), 404)
    assert w.cli("webhook", "list", "--domain", "b.example").strip() == "" or \
        wid not in [ln.split()[0] for ln in
                    w.cli("webhook", "list", "--domain", "b.example").splitlines()[1:]]
    r = w.cli("webhook", "remove", wid, check=False)
    assert r.returncode == 0 and f"webhook {wid} removed" in r.stdout, r.stdout + r.stderr
    assert wid not in [ln.split()[0] for ln in w.cli("webhook", "list").splitlines()[1:]]
    fails(w.api.get(f"/api/v1/webhooks/{wid}", w.key_a), 404)
    # errors
    for args in (("webhook", "remove", wid), ("webhook", "remove", "abc"),
                 ("webhook", "add", "ftp://127.0.0.1/x"),
                 ("webhook", "add", url, "--events", "message.nope"), ("webhook", "add")):
        r = w.cli(*args, check=False)
        assert r.returncode != 0 and r.stderr.strip(), (args, r.returncode, r.stdout, r.stderr)

    t = tok()
    addr = f"Cli-{t}+promo@Remote.Example"
    folded = f"cli-{t}@remote.example"
    r = w.cli("suppression", "add", addr, "--domain", "a.example", "--reason", "complaint",
              check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip() == f"{folded} suppressed for a.example", r.stdout
    r = w.cli("suppression", "add", folded, "--domain", "a.example", check=False)
    assert r.returncode == 0 and "already suppressed" in r.stdout, r.stdout + r.stderr
    out = w.cli("suppression", "list", "a.example")
    row = [ln for ln in out.splitlines() if ln.split()[:1] == [folded]]
    assert len(row) == 1 and "complaint" in row[0] and row[0].split()[-1] == "cli", out
    s = ok(w.api.get(f"/api/v1/suppressions/{q(folded)}", w.key_a))
    assert s["reason"] == "complaint" and s["source"] == "cli", s
    res = send(w, {"from": "alice@a.example", "to": f"cli-{t}@remote.example",
                   "subject": "cli " + t, "text": "x\n"})
    assert rcpt_status(res) == {f"cli-{t}@remote.example": "suppressed"}, res
    r = w.cli("suppression", "remove", addr, "--domain", "a.example", check=False)
    assert r.returncode == 0 and f"{folded} no longer suppressed" in r.stdout, r.stdout + r.stderr
    assert folded not in w.cli("suppression", "list", "a.example")
    fails(w.api.get(f"/api/v1/suppressions/{q(folded)}", w.key_a), 404)
    for args in (("suppression", "remove", addr, "--domain", "a.example"),
                 ("suppression", "add", addr), ("suppression", "add", addr, "--domain",
                                                 "a.example", "--reason", "nope"),
                 ("suppression", "add", "not-an-address", "--domain", "a.example"),
                 ("suppression", "list", "nodomain.example")):
        r = w.cli(*args, check=False)
        assert r.returncode != 0 and r.stderr.strip(), (args, r.returncode, r.stdout, r.stderr)


def test_suppression_api(world):
    w = world
    t = tok()
    a = f"api-{t}@remote.example"
    s = ok(w.api.post("/api/v1/suppressions", {"address": a}, w.key_a), 201)
    assert s["address"] == a and s["reason"] == "manual" and s["source"] == "api", s
    ok(w.api.post("/api/v1/suppressions", {"address": a.upper().replace("@", "+z@")},
                  w.key_a), 200)
    fails(w.api.post("/api/v1/suppressions", {"address": a, "reason": "whatever"}, w.key_a),
          422)
    fails(w.api.post("/api/v1/suppressions", {"address": a, "domain": "a.example"}, w.key_b),
          403)
    fails(w.api.get("/api/v1/suppressions?domain=a.example", w.key_b), 403)
    s = ok(w.api.post("/api/v1/suppressions",
                      {"address": a, "domain": "b.example", "reason": "hard_bounce"},
                      w.admin), 201)
    assert s["domain"] == "b.example"
    ok(w.api.delete(f"/api/v1/suppressions/{q(a)}?domain=b.example", w.admin), 204)
    ok(w.api.delete(f"/api/v1/suppressions/{q(a)}", w.key_a), 204)
    fails(w.api.delete(f"/api/v1/suppressions/{q(a)}", w.key_a), 404)
