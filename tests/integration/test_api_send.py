"""Sending through the REST API (issue 6) end to end: POST /api/v1/messages and /messages/raw
against the real binary (urllib and curl), the mail read back over IMAP (imaplib) and checked
with Python's email package part by part, mail for a remote domain received by an aiosmtpd sink
(delivery.routes) with its DKIM signatures (Ed25519 and RSA) verified by python3-dkim against
the records of `lightr domain dns`, templates, the sender and recipient checks, Idempotency-Key,
and GET /api/v1/messages/{id} with per-recipient status and history."""
import base64
import email
import email.policy
import hashlib
import json
import os
import re
import threading
import time

import pytest

from conftest import free_port
from test_api import ApiWorld, dns_records, fails, ok, wait_for

aiosmtpd_controller = pytest.importorskip("aiosmtpd.controller")
dkim = pytest.importorskip("dkim")


class Sink:
    """An aiosmtpd receiver recording (mail_from, rcpts, data) per transaction."""

    def __init__(self):
        self.port = free_port()
        self.messages = []
        self.lock = threading.Lock()
        self.ctl = aiosmtpd_controller.Controller(self, hostname="127.0.0.1", port=self.port,
                                                  data_size_limit=64 * 1024 * 1024)

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.messages.append((envelope.mail_from, list(envelope.rcpt_tos),
                                  bytes(envelope.original_content or envelope.content)))
        return "250 2.0.0 queued here"

    def find(self, token):
        with self.lock:
            return [m for m in self.messages if token.encode() in m[2]]


@pytest.fixture(scope="module")
def env():
    sink = Sink()
    sink.ctl.start()
    w = ApiWorld(delivery=f'  routes: "remote.example=127.0.0.1:{sink.port}"\n')
    w.sink = sink
    yield w
    w.stop()
    sink.ctl.stop()


def b64(data):
    return base64.b64encode(data).decode()


def token():
    return base64.b32encode(os.urandom(10)).decode().lower()


# ---------------------------------------------------------------- IMAP

def inbox_count(w, user):
    s = w.imap(user)
    try:
        typ, d = s.select("INBOX", readonly=True)
        assert typ == "OK", d
        return int(d[0])
    finally:
        s.logout()


def fetch(w, user, message_id, timeout=15):
    """The raw bytes of the message with Message-ID <message_id> in user's INBOX."""
    want = f"<{message_id}>".lower()

    def find():
        s = w.imap(user)
        try:
            typ, d = s.select("INBOX", readonly=True)
            if int(d[0]) == 0:
                return None
            typ, data = s.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
            assert typ == "OK", data
            for item in data:
                if not isinstance(item, tuple):
                    continue
                seq = item[0].split()[0].decode()
                if want in item[1].decode("latin-1").lower():
                    typ, full = s.fetch(seq, "(BODY.PEEK[])")
                    assert typ == "OK", full
                    return full[0][1]
            return None
        finally:
            s.logout()

    raw = wait_for(find, timeout=timeout, step=0.3)
    assert raw is not None, f"no message {want} in {user}'s INBOX"
    return raw


def parse(raw):
    return email.message_from_bytes(raw, policy=email.policy.default)


def nl(s):
    return s.replace("\r\n", "\n")


def header_section(raw):
    return raw.split(b"\r\n\r\n", 1)[0]


# ---------------------------------------------------------------- composed sends

def test_send_mime_structure(env, tmp_path):
    w, api = env, env.api
    tok = token()
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 20 + b"\x00\xff" * 100
    pdf = b"%PDF-1.4\n" + os.urandom(6000) + b"\n%%EOF\n"
    text = ("Hello Bob,\n\nünïcödé text ✓ — 日本語\n" + "long line " * 30 + "\n"
            ".leading dot\nFrom the start\ntrailing space \n")
    html = ('<html><body><p>Hello <b>Bob</b> ✓ — 日本語</p>'
            '<img src="cid:logo@lightr.test" alt="logo"></body></html>')
    subject = f"Grüße aus Köln – 日本語 {tok}"
    body = {
        "from": {"name": "Zoë Äpfelbaum", "email": "alice@a.example"},
        "to": ["Bob Ström <bob@a.example>"],
        "cc": [{"name": "Carol", "email": "carol@b.example"}],
        "reply_to": "Replies <alice@a.example>",
        "subject": subject,
        "text": text,
        "html": html,
        "headers": {"X-Campaign": "spring-" + tok},
        "attachments": [
            {"filename": "logo.png", "content_type": "image/png", "content": b64(png),
             "content_id": "logo@lightr.test"},
            {"filename": "Übersicht März 📄.pdf", "content_type": "application/pdf",
             "content": b64(pdf)},
        ],
        "tags": ["welcome", "test"],
        "metadata": {"user": 42, "tok": tok},
        "track_opens": False,
        "track_clicks": False,
    }
    f = tmp_path / "send.json"
    f.write_text(json.dumps(body, ensure_ascii=False), encoding="utf-8")
    r = api.curl("POST", "/api/v1/messages", key=w.key_a, data_file=str(f),
                 headers=["Content-Type: application/json"])
    res = ok(r, 202)
    assert re.fullmatch(r"msg_[a-z0-9]+", res["id"], re.I), res
    assert res["message_id"] and "<" not in res["message_id"]
    assert res["recipients"] == [
        {"email": "bob@a.example", "kind": "to", "status": "delivered"},
        {"email": "carol@b.example", "kind": "cc", "status": "delivered"}]
    raw = fetch(w, "bob@a.example", res["message_id"])
    assert all(b < 0x80 for b in header_section(raw)), header_section(raw)  # RFC 2047/2231
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    m = parse(raw)
    assert m["Subject"] == subject
    assert m["From"].addresses[0].display_name == "Zoë Äpfelbaum"
    assert m["From"].addresses[0].addr_spec == "alice@a.example"
    assert m["To"].addresses[0].display_name == "Bob Ström"
    assert m["To"].addresses[0].addr_spec == "bob@a.example"
    assert m["Cc"].addresses[0].addr_spec == "carol@b.example"
    assert m["Reply-To"].addresses[0].addr_spec == "alice@a.example"
    assert m["X-Campaign"] == "spring-" + tok
    assert m["Message-ID"] == f"<{res['message_id']}>"
    assert m["Date"] is not None and m["MIME-Version"] == "1.0"
    assert m["Bcc"] is None

    # multipart/mixed > [multipart/related > [multipart/alternative > [plain, html], png], pdf]
    assert m.get_content_type() == "multipart/mixed"
    top = m.get_payload()
    assert [p.get_content_type() for p in top] == ["multipart/related", "application/pdf"]
    related = top[0].get_payload()
    assert [p.get_content_type() for p in related] == ["multipart/alternative", "image/png"]
    alt = related[0].get_payload()
    assert [p.get_content_type() for p in alt] == ["text/plain", "text/html"]
    assert nl(alt[0].get_content()) == text
    assert nl(alt[1].get_content()).rstrip("\n") == html
    assert alt[0].get_content_charset() == "utf-8"
    img = related[1]
    assert img["Content-ID"] == "<logo@lightr.test>"
    assert img.get_content_disposition() in (None, "inline")
    assert img.get_content() == png
    att = top[1]
    assert att.get_content_disposition() == "attachment"
    assert att.get_filename() == "Übersicht März 📄.pdf"
    assert att.get_content() == pdf
    # the cc in another of our domains got the same message
    raw_c = fetch(w, "carol@b.example", res["message_id"])
    assert parse(raw_c)["Subject"] == subject

    # the record: per-recipient status and history, tags and metadata
    g = ok(api.get(f"/api/v1/messages/{res['id']}", w.key_a))
    assert g["id"] == res["id"] and g["from"] == "alice@a.example" and g["domain"] == "a.example"
    assert g["subject"] == subject and g["message_id"] == res["message_id"]
    assert g["tags"] == ["welcome", "test"] and g["metadata"] == {"user": 42, "tok": tok}
    st = {x["email"]: x for x in g["recipients"]}
    assert st["bob@a.example"]["status"] == "delivered"
    assert "message.delivered" in [h["event"] for h in st["bob@a.example"]["history"]]


def test_send_10mb_attachment(env, tmp_path):
    w, api = env, env.api
    data = os.urandom(10 * 1024 * 1024)
    tok = token()
    body = {"from": "alice@a.example", "to": "bob@a.example", "subject": "big " + tok,
            "text": "see attachment\n",
            "attachments": [{"filename": "big.bin", "content_type": "application/octet-stream",
                             "content": b64(data)}]}
    f = tmp_path / "big.json"
    f.write_text(json.dumps(body))
    assert f.stat().st_size > 13 * 1024 * 1024
    t0 = time.monotonic()
    r = api.curl("POST", "/api/v1/messages", key=w.key_a, data_file=str(f),
                 headers=["Content-Type: application/json"])
    res = ok(r, 202)
    print(f"10 MB send answered in {time.monotonic() - t0:.1f} s")
    raw = fetch(w, "bob@a.example", res["message_id"], timeout=60)
    m = parse(raw)
    assert m["Subject"] == "big " + tok
    parts = m.get_payload()
    assert [p.get_content_type() for p in parts] == ["text/plain", "application/octet-stream"]
    assert nl(parts[0].get_content()) == "see attachment\n"
    got = parts[1].get_content()
    assert len(got) == len(data)
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest()
    assert parts[1].get_filename() == "big.bin"


def test_template_send(env):
    w, api = env, env.api
    tpl = {"name": "order", "subject": "Order {{id}} for {{name}}",
           "text": "Dear {{name}},\n{{#items}}- {{.}}\n{{/items}}{{^items}}nothing{{/items}}",
           "html": "<p>Dear {{name}}</p><ul>{{#items}}<li>{{.}}</li>{{/items}}</ul>{{{footer}}}"}
    ok(api.post("/api/v1/templates", tpl, w.key_a), 201)
    variables = {"id": 42, "name": "Tom & \"Jerry\" <tj> 'x'", "items": ["a<b", "c&d"],
                 "footer": "<b>bold</b>"}
    res = ok(api.post("/api/v1/messages", {"from": "alice@a.example", "to": "bob@a.example",
                                           "template": "order", "variables": variables},
                      w.key_a), 202)
    m = parse(fetch(w, "bob@a.example", res["message_id"]))
    assert m["Subject"] == "Order 42 for Tom & \"Jerry\" <tj> 'x'"
    assert m.get_content_type() == "multipart/alternative"
    plain, html = m.get_payload()
    assert nl(plain.get_content()) == "Dear Tom & \"Jerry\" <tj> 'x',\n- a<b\n- c&d\n"
    assert nl(html.get_content()).rstrip("\n") == (
        "<p>Dear Tom &amp; &quot;Jerry&quot; &lt;tj&gt; &#39;x&#39;</p>"
        "<ul><li>a&lt;b</li><li>c&amp;d</li></ul><b>bold</b>")
    # an explicit subject wins over the template's; no variables renders the inverted section
    res = ok(api.post("/api/v1/messages", {"from": "alice@a.example", "to": "bob@a.example",
                                           "subject": "Own subject", "template": "order"},
                      w.key_a), 202)
    m = parse(fetch(w, "bob@a.example", res["message_id"]))
    assert m["Subject"] == "Own subject"
    assert nl(m.get_payload()[0].get_content()) == "Dear ,\nnothing"
    fails(api.post("/api/v1/messages", {"from": "alice@a.example", "to": "bob@a.example",
                                        "template": "order", "text": "x"}, w.key_a), 422,
          "invalid", "template")
    fails(api.post("/api/v1/messages", {"from": "alice@a.example", "to": "bob@a.example",
                                        "template": "nope"}, w.key_a), 422, "invalid", "template")
    fails(api.post("/api/v1/messages", {"from": "alice@a.example", "to": "bob@a.example",
                                        "text": "x", "variables": {"a": 1}}, w.key_a), 422,
          "invalid", "variables")
    fails(api.post("/api/v1/messages", {"from": "alice@a.example", "to": "bob@a.example",
                                        "template": "order", "variables": [1]}, w.key_a), 422,
          "invalid_type", "variables")
    # templates are per domain: b.example has no "order"
    fails(api.post("/api/v1/messages", {"from": "carol@b.example", "to": "bob@a.example",
                                        "template": "order"}, w.key_b), 422, "invalid",
          "template")


# ---------------------------------------------------------------- remote delivery and DKIM

def test_remote_delivery_dkim_and_status(env):
    w, api = env, env.api
    tok = token()
    res = ok(api.post("/api/v1/messages", {
        "from": "Alice <alice@a.example>", "to": "dave@remote.example", "cc": "bob@a.example",
        "bcc": ["eve@remote.example"], "subject": "remote " + tok,
        "text": "Hello Dave ✓\n" + ("line of text\n" * 50), "html": "<p>Hello Dave ✓</p>"},
        w.key_a), 202)
    assert res["recipients"] == [
        {"email": "dave@remote.example", "kind": "to", "status": "queued"},
        {"email": "bob@a.example", "kind": "cc", "status": "delivered"},
        {"email": "eve@remote.example", "kind": "bcc", "status": "queued"}]

    def delivered():
        g = ok(api.get(f"/api/v1/messages/{res['id']}", w.key_a))
        st = {x["email"]: x for x in g["recipients"]}
        if all(st[a]["status"] == "delivered" for a in ("dave@remote.example",
                                                        "eve@remote.example")):
            return g
        return None

    g = wait_for(delivered, timeout=30, step=0.3)
    assert g, ok(api.get(f"/api/v1/messages/{res['id']}", w.key_a))
    got = w.sink.find(tok)
    assert len(got) >= 1
    rcpts = sorted(r for m in got for r in m[1])
    assert rcpts == ["dave@remote.example", "eve@remote.example"]
    mail_from, _, data = got[0]
    assert mail_from.endswith("@a.example")
    hdr = header_section(data)
    assert not re.search(rb"(?im)^bcc:", hdr), hdr
    assert b"eve@remote.example" not in hdr

    # status and history
    st = {x["email"]: x for x in g["recipients"]}
    assert [st[a]["kind"] for a in ("dave@remote.example", "bob@a.example",
                                    "eve@remote.example")] == ["to", "cc", "bcc"]
    for a in ("dave@remote.example", "eve@remote.example"):
        x = st[a]
        assert x["delivered_at"] is not None and x["attempts"] >= 1, x
        assert x["dsn"] is None or x["dsn"].startswith("2."), x
        events = [h["event"] for h in x["history"]]
        assert "message.queued" in events and "message.delivered" in events, x
        assert events.index("message.queued") < events.index("message.delivered")
        d = [h for h in x["history"] if h["event"] == "message.delivered"][0]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", d["at"])
        assert isinstance(d["detail"], dict)
        assert str(w.sink.port) in json.dumps(d["detail"]), d
    assert st["bob@a.example"]["status"] == "delivered"
    assert "message.delivered" in [h["event"] for h in st["bob@a.example"]["history"]]
    # scope: another domain's key cannot see it; the admin can
    fails(api.get(f"/api/v1/messages/{res['id']}", w.key_b), 404, "not_found")
    assert ok(api.get(f"/api/v1/messages/{res['id']}", w.admin))["id"] == res["id"]
    r = api.curl("GET", f"/api/v1/messages/{res['id']}", key=w.key_b)
    fails(r, 404, "not_found")

    # DKIM: both signatures verify against the published records
    recs = dns_records(w.cli("domain", "dns", "a.example"))

    def dnsfunc(name, timeout=5):
        n = name.decode() if isinstance(name, bytes) else name
        if not n.endswith("."):
            n += "."
        v = recs.get((n, "TXT"))
        return v[0].encode() if v else None

    sigs = re.findall(rb"(?im)^dkim-signature:(.*(?:\r\n[ \t].*)*)", hdr)
    assert len(sigs) == 2, hdr
    algos = []
    for s in sigs:
        m = re.search(rb"a=\s*([a-z0-9-]+)", s)
        algos.append(m.group(1).decode())
        assert re.search(rb"d=\s*a\.example", s), s
    assert sorted(algos) == ["ed25519-sha256", "rsa-sha256"]
    for idx in range(2):
        v = dkim.DKIM(data, minkey=1024)
        assert v.verify(idx=idx, dnsfunc=dnsfunc), f"signature {idx} ({algos[idx]}) failed"
    # and a tampered body does not
    bad = data.replace(b"Hello Dave", b"Hello Evil")
    assert bad != data
    for idx in range(2):
        try:
            good = dkim.DKIM(bad, minkey=1024).verify(idx=idx, dnsfunc=dnsfunc)
        except dkim.ValidationError:
            good = False
        assert not good


# ---------------------------------------------------------------- raw sends

def test_raw_send(env, tmp_path):
    w, api = env, env.api
    tok = token()
    msg = (f"From: Alice <alice@a.example>\nTo: bob@a.example\nSubject: raw {tok}\n"
           "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n"
           "\nraw body ✓\n.dot line\nend\n")
    res = ok(api.post("/api/v1/messages/raw", {"to": ["bob@a.example"], "message": msg,
                                               "tags": ["raw"]}, w.key_a), 202)
    assert res["recipients"] == [{"email": "bob@a.example", "kind": "to",
                                  "status": "delivered"}]
    assert res["message_id"].endswith("@a.example")
    raw = fetch(w, "bob@a.example", res["message_id"])
    m = parse(raw)
    assert m["Subject"] == "raw " + tok and m["Date"] is not None
    assert raw.endswith("\r\nraw body ✓\r\n.dot line\r\nend\r\n".encode())
    g = ok(api.get(f"/api/v1/messages/{res['id']}", w.key_a))
    assert g["subject"] == "raw " + tok and g["tags"] == ["raw"]

    # message_base64, with its own Message-ID and an envelope sender, through curl
    mid = f"given-{tok}@a.example"
    binmsg = (f"From: alice@a.example\r\nTo: Bob <bob@a.example>\r\nMessage-ID: <{mid}>\r\n"
              f"Date: Mon, 01 Jan 2024 00:00:00 +0000\r\nSubject: b64 {tok}\r\n\r\n"
              "body\r\n").encode()
    f = tmp_path / "raw.json"
    f.write_text(json.dumps({"to": "bob@a.example", "from": "bob@a.example",
                             "message_base64": b64(binmsg)}))
    r = api.curl("POST", "/api/v1/messages/raw", key=w.key_a, data_file=str(f),
                 headers=["Content-Type: application/json"])
    res = ok(r, 202)
    assert res["message_id"] == mid
    raw = fetch(w, "bob@a.example", mid)
    assert raw.endswith(binmsg.split(b"\r\n\r\n", 1)[1])
    assert parse(raw)["Date"] == "Mon, 01 Jan 2024 00:00:00 +0000"
    assert raw.count(b"Message-ID:") == 1

    k = w.key_a
    fails(api.post("/api/v1/messages/raw", {"to": ["bob@a.example"]}, k), 422, "missing_field")
    fails(api.post("/api/v1/messages/raw", {"to": ["bob@a.example"], "message": msg,
                                            "message_base64": b64(msg.encode())}, k), 422)
    fails(api.post("/api/v1/messages/raw", {"message": msg}, k), 422, "missing_field", "to")
    fails(api.post("/api/v1/messages/raw", {"to": ["bob@a.example"],
                                            "message": "Subject: x\n\nno from\n"}, k), 422,
          "invalid", "message")
    fails(api.post("/api/v1/messages/raw", {"to": ["bob@a.example"],
                                            "message_base64": "!!!not base64"}, k), 422,
          "invalid", "message_base64")
    fails(api.post("/api/v1/messages/raw", {"to": ["bob@a.example"], "message": msg,
                                            "subject": "x"}, k), 422, "unknown_field", "subject")
    fails(api.post("/api/v1/messages/raw", {"to": ["bob@a.example"],
                                            "message": "From: carol@b.example\n\nx\n"}, k),
          403, "forbidden")
    fails(api.post("/api/v1/messages/raw", {"to": ["ghost@a.example"], "message": msg}, k), 422)


# ---------------------------------------------------------------- checks

def test_sender_check(env):
    w, api = env, env.api
    base = {"to": "bob@a.example", "text": "x"}
    fails(api.post("/api/v1/messages", dict(base, **{"from": "carol@b.example"}), w.key_a),
          403, "forbidden")
    fails(api.post("/api/v1/messages", dict(base, **{"from": "Carol <carol@B.EXAMPLE>"}),
                   w.key_a), 403, "forbidden")
    fails(api.post("/api/v1/messages", dict(base, **{"from": "alice@a.example"}), w.key_b),
          403, "forbidden")
    fails(api.post("/api/v1/messages", dict(base, **{"from": "x@notours.example"}), w.admin),
          422, "invalid", "from")
    fails(api.post("/api/v1/messages", dict(base, **{"from": "x@notours.example"}), w.key_a),
          403, "forbidden")
    fails(api.post("/api/v1/messages", base, w.key_a), 422, "missing_field", "from")
    fails(api.post("/api/v1/messages", dict(base, **{"from": "not-an-address"}), w.key_a),
          422, "invalid", "from")
    fails(api.post("/api/v1/messages", dict(base, **{"from": 7}), w.key_a), 422,
          "invalid_type", "from")
    fails(api.post("/api/v1/messages", {"from": "alice@a.example", "text": "x"}, w.key_a), 422,
          "missing_field", "to")
    fails(api.post("/api/v1/messages", {"from": "alice@a.example", "to": "bob@a.example"},
                   w.key_a), 422, "missing_field", "text")
    fails(api.post("/api/v1/messages", dict(base, **{"from": "alice@a.example",
                                                     "subject": "a\r\nBcc: x@y.example"}),
                   w.key_a), 422, "invalid", "subject")
    fails(api.post("/api/v1/messages", dict(base, **{"from": "alice@a.example", "bogus": 1}),
                   w.key_a), 422, "unknown_field", "bogus")
    fails(api.post("/api/v1/messages", dict(base, **{"from": "alice@a.example",
                                                     "attachments": [{"filename": "a"}]}),
                   w.key_a), 422, "missing_field", "attachments[0].content")
    fails(api.post("/api/v1/messages", dict(base, **{
        "from": "alice@a.example",
        "attachments": [{"filename": "a", "content": "!!notb64"}]}), w.key_a), 422, "invalid")
    fails(api.call("POST", "/api/v1/messages", raw=b'{"from": "alice@a.example", '
                   b'"from": "carol@b.example", "to": "bob@a.example", "text": "x"}',
                   key=w.key_a), 400, "invalid_json")
    fails(api.call("POST", "/api/v1/messages", raw=b'{"from": "alice@a.example"',
                   key=w.key_a), 400, "invalid_json")
    fails(api.call("POST", "/api/v1/messages", raw=b'{}', ctype="text/plain", key=w.key_a),
          415, "unsupported_media_type")


def test_unknown_recipients(env):
    w, api = env, env.api
    before = inbox_count(w, "bob@a.example")
    res = ok(api.post("/api/v1/messages", {"from": "alice@a.example",
                                           "to": ["bob@a.example", "ghost@a.example"],
                                           "cc": "Bob again <BOB@a.example>",
                                           "text": "x", "subject": "partly"}, w.key_a), 202)
    r = res["recipients"]
    assert r[0] == {"email": "bob@a.example", "kind": "to", "status": "delivered"}
    assert r[1]["email"] == "ghost@a.example" and r[1]["status"] == "rejected"
    assert r[1]["kind"] == "to" and r[1]["error"]
    assert r[2]["status"] == "duplicate" and r[2]["kind"] == "cc"
    assert inbox_count(w, "bob@a.example") == before + 1
    g = ok(api.get(f"/api/v1/messages/{res['id']}", w.key_a))
    st = {x["email"]: x for x in g["recipients"]}
    assert st["ghost@a.example"]["status"] == "rejected" and st["ghost@a.example"]["error"]
    # none accepted: 422 and nothing stored
    e = fails(api.post("/api/v1/messages", {"from": "alice@a.example",
                                            "to": ["ghost@a.example", "nobody@b.example"],
                                            "text": "x"}, w.key_a), 422)
    assert e["code"] != "invalid_json"
    assert inbox_count(w, "bob@a.example") == before + 1
    fails(api.post("/api/v1/messages", {"from": "alice@a.example", "to": ["not an address"],
                                        "text": "x"}, w.key_a), 422, "invalid", "to[0]")


def test_idempotency_key(env, tmp_path):
    w, api = env, env.api
    before = inbox_count(w, "bob@a.example")
    idem = "order-" + token()
    body = {"from": "alice@a.example", "to": "bob@a.example", "subject": "idem", "text": "once"}
    r1 = api.post("/api/v1/messages", body, w.key_a, headers={"Idempotency-Key": idem})
    res = ok(r1, 202)
    assert r1.header("idempotent-replayed") is None
    assert inbox_count(w, "bob@a.example") == before + 1
    r2 = api.post("/api/v1/messages", body, w.key_a, headers={"Idempotency-Key": idem})
    assert r2.status == 202 and r2.header("idempotent-replayed") == "true", r2
    assert r2.body == r1.body
    f = tmp_path / "idem.json"
    f.write_text(json.dumps(body))
    r3 = api.curl("POST", "/api/v1/messages", key=w.key_a, data_file=str(f),
                  headers=["Content-Type: application/json", f"Idempotency-Key: {idem}"])
    assert r3.status == 202 and r3.header("idempotent-replayed") == "true", r3
    assert r3.json == res
    time.sleep(1)
    assert inbox_count(w, "bob@a.example") == before + 1
    # another key value sends again; the same value under another API key is another request
    r4 = ok(api.post("/api/v1/messages", body, w.key_a,
                     headers={"Idempotency-Key": idem + "-2"}), 202)
    assert r4["id"] != res["id"]
    r5 = ok(api.post("/api/v1/messages", body, w.admin, headers={"Idempotency-Key": idem}), 202)
    assert r5["id"] != res["id"]
    assert inbox_count(w, "bob@a.example") == before + 3
    fails(api.post("/api/v1/messages", body, w.key_a, headers={"Idempotency-Key": "a b"}), 400,
          "bad_request")
    fails(api.post("/api/v1/messages", body, w.key_a, headers={"Idempotency-Key": "k" * 256}),
          400, "bad_request")
    assert inbox_count(w, "bob@a.example") == before + 3
