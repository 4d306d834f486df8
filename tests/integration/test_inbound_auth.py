"""Inbound authentication (issue 9) end to end: the real binary's MX listener on loopback with
inbound.authenticate on and dns.forwarders pointing at tests/zonedns.py, messages from 127.0.0.1
signed by python3-dkim (rsa-sha256 and ed25519-sha256) or not, SPF and DMARC records served by the
stub; the stored copy (read over IMAP) must carry our Authentication-Results (authserv-id
mail.test.example) and the configured action must happen (550 5.7.1, Junk or INBOX). The oracles
are python3-dkim (dkim.verify on the same bytes) and python3-spf (spf.check2 with dnspython asking
the same stub)."""
import base64
import email
import email.policy
import os
import re
import smtplib
import sys
import time

import pytest

from conftest import Server, wait_port, write_config
from test_api import IMAP_EXTRA, Api, ApiWorld, ok, wait_for

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, TESTS)

dkim = pytest.importorskip("dkim")
spf = pytest.importorskip("spf")
dns_resolver = pytest.importorskip("dns.resolver")
pytest.importorskip("nacl.signing")
crypto_rsa = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.rsa")
crypto_ser = pytest.importorskip("cryptography.hazmat.primitives.serialization")
zonedns = pytest.importorskip("zonedns")
import nacl.signing  # noqa: E402

# pyspf still calls dns.resolver.query()
pytestmark = pytest.mark.filterwarnings("ignore:please use dns.resolver.resolve:DeprecationWarning")

WAIT = 30
AUTHSERV = "mail.test.example"
RCPT = "bob@a.example"


# ---------------------------------------------------------------- keys and zone

def _rsa_key():
    k = crypto_rsa.generate_private_key(public_exponent=65537, key_size=2048)
    priv = k.private_bytes(crypto_ser.Encoding.PEM, crypto_ser.PrivateFormat.TraditionalOpenSSL,
                           crypto_ser.NoEncryption())
    pub = k.public_key().public_bytes(crypto_ser.Encoding.DER,
                                      crypto_ser.PublicFormat.SubjectPublicKeyInfo)
    return priv, "v=DKIM1; k=rsa; p=" + base64.b64encode(pub).decode()


def _ed_key():
    sk = nacl.signing.SigningKey.generate()
    priv = base64.b64encode(bytes(sk))
    pub = base64.b64encode(bytes(sk.verify_key)).decode()
    return priv, "v=DKIM1; k=ed25519; p=" + pub


RSA_PRIV, RSA_TXT = _rsa_key()
ED_PRIV, ED_TXT = _ed_key()

# SPF table: envelope domain -> (record or None, expected result). Client is 127.0.0.1.
SPF_TABLE = {
    "s-pass.example": ("v=spf1 ip4:127.0.0.1 -all", "pass"),
    "s-cidr.example": ("v=spf1 ip4:127.0.0.0/8 -all", "pass"),
    "s-nomatch.example": ("v=spf1 ip4:192.0.2.0/24 -all", "fail"),
    "s-soft.example": ("v=spf1 ip4:192.0.2.1 ~all", "softfail"),
    "s-neutral.example": ("v=spf1 ?all", "neutral"),
    "s-inc.example": ("v=spf1 include:s-pass.example -all", "pass"),
    "s-incfail.example": ("v=spf1 include:s-nomatch.example ?all", "neutral"),
    "s-a.example": ("v=spf1 a -all", "pass"),
    "s-mx.example": ("v=spf1 mx -all", "pass"),
    "s-redir.example": ("v=spf1 redirect=s-nomatch.example", "fail"),
    "s-many.example": ("v=spf1 " + "a:addr.example " * 11 + "-all", "permerror"),
    "s-norec.example": (None, "none"),
}

ZONE = {
    "servfail": ["s-temp.example", "_dmarc.dtemp.example", "ed1._domainkey.ktemp.example"],
    "records": {
        "addr.example": {"A": ["192.0.2.30"]},
        "s-a.example": {"A": ["127.0.0.1"]},
        "s-mx.example": {"MX": [[10, "mx.s-mx.example"]]},
        "mx.s-mx.example": {"A": ["127.0.0.1"]},
        "s-norec.example": {"A": ["192.0.2.40"]},
        # DKIM keys (dk.example: no DMARC record; dkr.example: p=reject)
        "rsa1._domainkey.dk.example": {"TXT": [RSA_TXT]},
        "ed1._domainkey.dk.example": {"TXT": [ED_TXT]},
        "rsa1._domainkey.dkr.example": {"TXT": [RSA_TXT]},
        "_dmarc.dkr.example": {"TXT": ["v=DMARC1; p=reject"]},
        # DMARC policies
        "_dmarc.rej.example": {"TXT": ["v=DMARC1; p=reject"]},
        "_dmarc.quar.example": {"TXT": ["v=DMARC1; p=quarantine"]},
        "_dmarc.pnone.example": {"TXT": ["v=DMARC1; p=none"]},
        "_dmarc.org.example": {"TXT": ["v=DMARC1; p=reject; sp=quarantine"]},
        "_dmarc.sfail.example": {"TXT": ["v=DMARC1; p=none"]},
    },
}
for _d, (_rec, _res) in SPF_TABLE.items():
    if _rec is not None:
        ZONE["records"].setdefault(_d, {})["TXT"] = [_rec]


def zone_txt(name):
    """The TXT record of name in ZONE as python3-dkim's dnsfunc wants it (None when absent)."""
    name = name.decode() if isinstance(name, bytes) else name
    rec = ZONE["records"].get(name.rstrip(".").lower(), {}).get("TXT")
    return rec[0].encode() if rec else None


# ---------------------------------------------------------------- world

class AuthWorld(ApiWorld):
    """ApiWorld (a.example: alice, bob) with inbound authentication on, DNS from the stub."""

    def __init__(self, stub_port, inbound_extra=""):
        self.stub_port = stub_port
        self.inbound_extra = inbound_extra
        super().__init__()

    def _setup(self, delivery):
        extra = (IMAP_EXTRA + "delivery:\n  retry_schedule: 1s\n  connect_timeout: 2s\n" +
                 f'dns:\n  forwarders: "127.0.0.1@{self.stub_port}"\n'
                 "inbound:\n  authenticate: true\n" + self.inbound_extra)
        self.cfg, self.ports = write_config(self.dir, extra)
        for d in ("a.example", "b.example"):
            self.cli("domain", "add", d)
        for addr, pw in self.PASSWORDS.items():
            self.cli("account", "add", addr, "--password-stdin", stdin=pw + "\n")
        self.admin = self.apikey("--name", "test-admin")
        self.key_a = self.apikey("--domain", "a.example", "--name", "key-a")
        self.key_b = self.apikey("--domain", "b.example", "--name", "key-b")
        self.srv = Server(self.bin, config=self.cfg, cwd=self.dir, wait_for=self.ports["http"])
        assert wait_port(self.ports["imap"]) and wait_port(self.ports["mx"])
        self.api = Api(self.ports["http"])

    def log(self):
        return self.srv.log() if self.srv else ""

    def stop(self):
        log = self.log()
        super().stop()
        for bad in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
            assert bad not in log, log[-6000:]

    def send(self, mail_from, data, helo="outside.example"):
        """Sends over the MX listener; None when accepted, else (code, text) of the refusal."""
        with smtplib.SMTP("127.0.0.1", self.ports["mx"], timeout=WAIT) as s:
            s.ehlo(helo)
            try:
                refused = s.sendmail(mail_from, [RCPT], data)
            except smtplib.SMTPDataError as e:
                return e.smtp_code, e.smtp_error.decode(errors="replace")
            assert not refused, refused
        return None

    def find(self, subject, mailbox="INBOX"):
        """Raw bytes of the message with that subject in bob's mailbox, or None."""
        s = self.imap(RCPT)
        try:
            typ, d = s.select(mailbox, readonly=True)
            if typ != "OK":
                return None
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

    def stored(self, subject, mailbox="INBOX"):
        raw = wait_for(lambda: self.find(subject, mailbox), timeout=WAIT, step=0.2)
        assert raw, (f"no message {subject!r} in {mailbox}; other box has: "
                     f"{self.find(subject, 'Junk' if mailbox == 'INBOX' else 'INBOX')!r}\n"
                     + self.log()[-3000:])
        return raw


@pytest.fixture(scope="module")
def stub():
    with zonedns.ZoneDNS(ZONE) as s:
        yield s


@pytest.fixture(scope="module")
def world(stub):
    w = AuthWorld(stub.port)
    yield w
    w.stop()


@pytest.fixture(scope="module")
def strict_world(stub):
    """inbound.dmarc_reject: quarantine, inbound.spf_fail: reject."""
    w = AuthWorld(stub.port, "  dmarc_reject: quarantine\n  spf_fail: reject\n")
    yield w
    w.stop()


# ---------------------------------------------------------------- helpers

_n = [0]


def subj(tag):
    _n[0] += 1
    return f"{tag}-{os.getpid()}-{_n[0]}-{time.monotonic_ns() % 100000}"


def message(subject, from_addr="sender@outside.example", extra_headers=(), body=None):
    body = body or "Hello Bob.\r\nThis is a test of inbound authentication.\r\n"
    lines = [f"From: {from_addr}", f"To: {RCPT}", f"Subject: {subject}",
             "Date: Sun, 29 Nov 2026 10:00:00 +0000",
             f"Message-ID: <{subject}@outside.example>"] + list(extra_headers)
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


def sign(msg, domain, selector, key, algo=b"rsa-sha256"):
    sig = dkim.sign(msg, selector.encode(), domain.encode(), key, signature_algorithm=algo,
                    include_headers=[b"from", b"to", b"subject", b"date", b"message-id"])
    return sig + msg


def oracle_dkim(msg):
    """python3-dkim's verdict on msg with keys from ZONE."""
    try:
        return dkim.verify(msg, dnsfunc=lambda name, timeout=5: zone_txt(name))
    except Exception:
        return False


def our_ar(raw):
    """The unfolded Authentication-Results fields of the stored message: (ours, others)."""
    m = email.message_from_bytes(raw, policy=email.policy.compat32)
    ars = [re.sub(r"\r?\n[ \t]+", " ", str(v)) for v in (m.get_all("Authentication-Results")
                                                        or [])]
    ours = [a for a in ars if a.strip().lower().startswith(AUTHSERV + ";")]
    return ours, [a for a in ars if a not in ours]


def one_ar(raw):
    ours, _ = our_ar(raw)
    assert len(ours) == 1, (ours, raw[:2000])
    return ours[0]


def method(ar, name):
    m = re.findall(rf"(?:^|;)\s*{name}=([a-z]+)", ar)
    assert m, (name, ar)
    return m


def pyspf_verdict(stub_port, mail_from, helo="outside.example"):
    """python3-spf's result for 127.0.0.1 with dnspython asking the stub."""
    old = dns_resolver.default_resolver
    r = dns_resolver.Resolver(configure=False)
    r.nameservers = ["127.0.0.1"]
    r.port = stub_port
    r.lifetime = r.timeout = 5
    dns_resolver.default_resolver = r
    try:
        return spf.check2(i="127.0.0.1", s=mail_from, h=helo)[0]
    finally:
        dns_resolver.default_resolver = old


# ---------------------------------------------------------------- 1. DKIM

@pytest.mark.parametrize("algo,selector,key", [
    (b"rsa-sha256", "rsa1", RSA_PRIV), (b"ed25519-sha256", "ed1", ED_PRIV)])
def test_dkim_pass_and_tampered(world, algo, selector, key):
    s = subj("dkim-" + selector)
    msg = sign(message(s, "alice@dk.example"), "dk.example", selector, key, algo)
    assert oracle_dkim(msg) is True
    assert world.send("bounce@s-norec.example", msg) is None
    ar = one_ar(world.stored(s))
    assert method(ar, "dkim") == ["pass"], ar
    assert "header.d=dk.example" in ar and f"header.s={selector}" in ar, ar

    s2 = subj("dkim-tampered-" + selector)
    bad = sign(message(s2, "alice@dk.example"), "dk.example", selector, key, algo)
    bad = bad.replace(b"Hello Bob.", b"Hello Eve.")
    assert oracle_dkim(bad) is False
    assert world.send("bounce@s-norec.example", bad) is None
    ar = one_ar(world.stored(s2))
    assert method(ar, "dkim") == ["fail"], ar
    assert "header.d=dk.example" in ar, ar


def test_dkim_none_and_missing_key(world):
    s = subj("dkim-none")
    msg = message(s, "alice@dk.example")
    assert oracle_dkim(msg) is False
    assert world.send("bounce@s-norec.example", msg) is None
    assert method(one_ar(world.stored(s)), "dkim") == ["none"]

    s2 = subj("dkim-nokey")
    msg = sign(message(s2, "alice@dk.example"), "dk.example", "gone", RSA_PRIV)
    assert oracle_dkim(msg) is False
    assert world.send("bounce@s-norec.example", msg) is None
    ar = one_ar(world.stored(s2))
    assert method(ar, "dkim") == ["permerror"], ar


# ---------------------------------------------------------------- 2. SPF

@pytest.mark.parametrize("domain", sorted(SPF_TABLE))
def test_spf_table(world, stub, domain):
    expected = SPF_TABLE[domain][1]
    oracle = pyspf_verdict(stub.port, f"user@{domain}")
    assert oracle == expected, f"oracle says {oracle} for {domain}"
    s = subj("spf-" + domain)
    assert world.send(f"user@{domain}", message(s)) is None
    ar = one_ar(world.stored(s))
    assert method(ar, "spf") == [oracle], ar
    assert f"smtp.mailfrom={domain}" in ar or f"smtp.mailfrom=user@{domain}" in ar, ar


@pytest.mark.parametrize("helo", ["s-pass.example", "s-nomatch.example", "s-soft.example"])
def test_spf_helo_identity_null_sender(world, stub, helo):
    """MAIL FROM:<> is checked with the HELO identity (RFC 7208 2.4)."""
    oracle = pyspf_verdict(stub.port, "", helo)
    assert oracle == SPF_TABLE[helo][1], oracle
    s = subj("spf-helo-" + helo)
    assert world.send("", message(s), helo=helo) is None
    ar = one_ar(world.stored(s))
    assert method(ar, "spf") == [oracle] and f"smtp.helo={helo}" in ar, ar


# ---------------------------------------------------------------- 3. DMARC

def test_dmarc_reject(world):
    s = subj("dmarc-reject")
    r = world.send("bounce@s-pass.example", message(s, "ceo@rej.example"))
    assert r is not None and r[0] == 550 and r[1].startswith("5.7.1"), r
    time.sleep(0.5)
    assert world.find(s) is None and world.find(s, "Junk") is None


def test_dmarc_quarantine_to_junk(world):
    s = subj("dmarc-quar")
    assert world.send("bounce@s-pass.example", message(s, "ceo@quar.example")) is None
    ar = one_ar(world.stored(s, "Junk"))
    assert method(ar, "dmarc") == ["fail"] and "header.from=quar.example" in ar, ar
    assert world.find(s) is None


def test_dmarc_none_to_inbox(world):
    s = subj("dmarc-none")
    assert world.send("bounce@s-pass.example", message(s, "ceo@pnone.example")) is None
    ar = one_ar(world.stored(s))
    assert method(ar, "dmarc") == ["fail"] and method(ar, "spf") == ["pass"], ar


def test_dmarc_aligned_dkim_pass(world):
    s = subj("dmarc-dkim")
    msg = sign(message(s, "ceo@dkr.example"), "dkr.example", "rsa1", RSA_PRIV)
    assert oracle_dkim(msg) is True
    assert world.send("bounce@s-pass.example", msg) is None
    ar = one_ar(world.stored(s))
    assert method(ar, "dmarc") == ["pass"] and method(ar, "dkim") == ["pass"], ar
    # the same author domain without a valid signature is rejected (p=reject)
    s2 = subj("dmarc-dkim-bad")
    bad = msg.replace(b"Hello Bob.", b"Hello Eve.").replace(s.encode(), s2.encode())
    r = world.send("bounce@s-pass.example", bad)
    assert r is not None and r[0] == 550, r


def test_dmarc_org_domain_sp(world):
    """_dmarc only at org.example (p=reject; sp=quarantine): a From at a subdomain gets sp."""
    s = subj("dmarc-sp")
    assert world.send("bounce@s-pass.example", message(s, "ceo@sub.org.example")) is None
    ar = one_ar(world.stored(s, "Junk"))
    assert method(ar, "dmarc") == ["fail"] and "header.from=sub.org.example" in ar, ar
    # the organisational domain itself gets p=reject
    s2 = subj("dmarc-p")
    r = world.send("bounce@s-pass.example", message(s2, "ceo@org.example"))
    assert r is not None and r[0] == 550, r


def test_dmarc_reject_configured_as_quarantine(strict_world):
    s = subj("dmarc-reject-q")
    assert strict_world.send("bounce@s-pass.example", message(s, "ceo@rej.example")) is None
    ar = one_ar(strict_world.stored(s, "Junk"))
    assert method(ar, "dmarc") == ["fail"], ar
    assert strict_world.find(s) is None


# ---------------------------------------------------------------- 4. forged results

def test_forged_authentication_results_removed(world):
    s = subj("forged")
    forged = [f"Authentication-Results: {AUTHSERV}; dkim=pass header.d=paypal.example",
              "Authentication-Results: MAIL.TEST.EXAMPLE;\r\n\tspf=pass smtp.mailfrom=x.example",
              "Authentication-Results: other.example; spf=pass smtp.mailfrom=kept.example"]
    msg = message(s, "alice@outside.example", forged)
    assert world.send("bounce@s-nomatch.example", msg) is None
    raw = world.stored(s)
    ours, others = our_ar(raw)
    assert len(ours) == 1, ours
    assert method(ours[0], "dkim") == ["none"] and method(ours[0], "spf") == ["fail"], ours
    assert b"paypal.example" not in raw and b"smtp.mailfrom=x.example" not in raw
    assert len(others) == 1 and "other.example" in others[0] and "kept.example" in others[0]


# ---------------------------------------------------------------- 5. SPF fail policy

def test_spf_fail_default_delivered(world):
    s = subj("spf-fail-none")
    assert world.send("user@s-nomatch.example", message(s, "ceo@sfail.example")) is None
    ar = one_ar(world.stored(s))
    assert method(ar, "spf") == ["fail"], ar


def test_spf_fail_reject(strict_world):
    s = subj("spf-fail-rej")
    r = strict_world.send("user@s-nomatch.example", message(s, "ceo@sfail.example"))
    assert r is not None and r[0] == 550 and r[1].startswith("5.7.1"), r
    s2 = subj("spf-pass-strict")
    assert strict_world.send("user@s-pass.example", message(s2, "ceo@sfail.example")) is None
    assert method(one_ar(strict_world.stored(s2)), "spf") == ["pass"]
    time.sleep(0.5)
    assert strict_world.find(s) is None and strict_world.find(s, "Junk") is None


# ---------------------------------------------------------------- 7. event

def test_message_received_event(world):
    s = subj("event")
    msg = sign(message(s, "ceo@dk.example"), "dk.example", "ed1", ED_PRIV, b"ed25519-sha256")
    assert world.send("bounce@s-pass.example", msg) is None
    world.stored(s)

    def find():
        page = ok(world.api.get("/api/v1/events?type=message.received&limit=1000", world.key_a))
        hits = [e for e in page["data"] if s in (e["data"].get("subject") or "")]
        return hits or None
    ev = wait_for(find, timeout=WAIT, step=0.3)
    assert ev and len(ev) == 1, ev
    ar = ev[0]["data"].get("authentication_results")
    assert isinstance(ar, dict), ev[0]
    assert ar["spf"]["result"] == "pass" and ar["spf"]["domain"] == "s-pass.example", ar
    assert [(d["result"], d["domain"], d["selector"]) for d in ar["dkim"]] == [
        ("pass", "dk.example", "ed1")], ar
    assert ar["dmarc"]["result"] in ("none",), ar
    assert ar["dmarc"]["from_domain"] == "dk.example", ar
    assert ar["header"].startswith("Authentication-Results: " + AUTHSERV), ar


# ---------------------------------------------------------------- 6. temperror (last: SERVFAIL)

def test_dns_temperror_never_loses_mail(world, stub):
    oracle = pyspf_verdict(stub.port, "user@s-temp.example")
    assert oracle == "temperror", oracle
    s = subj("temperror")
    assert world.send("user@s-temp.example", message(s, "ceo@s-temp.example")) is None
    ar = one_ar(world.stored(s))
    assert method(ar, "spf") == ["temperror"], ar


def test_dmarc_and_dkim_temperror_delivered(world):
    """SERVFAIL for the DMARC record (its From domain) and for a DKIM key: delivered, temperror."""
    s = subj("dmarc-temp")
    assert world.send("bounce@s-pass.example", message(s, "ceo@dtemp.example")) is None
    ar = one_ar(world.stored(s))
    assert method(ar, "dmarc") == ["temperror"], ar
    s2 = subj("dkim-temp")
    msg = sign(message(s2, "ceo@ktemp.example"), "ktemp.example", "ed1", ED_PRIV,
               b"ed25519-sha256")
    assert world.send("bounce@s-pass.example", msg) is None
    ar = one_ar(world.stored(s2))
    assert method(ar, "dkim") == ["temperror"], ar
