"""Several clients at once (issue 4): two IMAP sessions on the same INBOX plus SMTP deliveries
into it. The other session sees new messages (EXISTS) on NOOP and within a second during IDLE,
flag changes (FETCH FLAGS) on NOOP, and expunges (EXPUNGE, or VANISHED under QRESYNC) only at
NOOP, never in answer to FETCH, STORE or SEARCH (RFC 9051 §7.5.1), with sequence numbers
consistent for both sessions afterwards (checked with FETCH 1:* UID).

Target: one Lightr per module (see test_imap.py for the account and for running the same tests
against Dovecot by hand with IMAP_TEST_TARGET; deliveries then go over LMTP, IMAP_TEST_LMTP)."""
import time

import pytest

from test_imap import M1, M3, Session, _env_target, _reset, _start_lightr, _stop, flags

IDLE_LIMIT = 1.0  # seconds: "within a second during IDLE"


@pytest.fixture(scope="module")
def target():
    t = _env_target()
    if t is None:
        t = _start_lightr("lightr-imapc-")
    _reset(t)
    yield t
    _stop(t)


def _msg(n):
    return (f"From: Sender <sender@remote.example>\r\nTo: alice@test.example\r\n"
            f"Subject: concurrency {n}\r\n"
            f"Message-ID: <conc-{n}-{time.monotonic_ns()}@remote.example>\r\n"
            f"\r\nBody {n}.\r\n").encode()


def _uids(s):
    """{seq: uid} of the whole selected mailbox, by FETCH 1:* UID (no expunges pending)."""
    r = s.ok("FETCH", "1:*", "UID")
    return {k: int(v["UID"]) for k, v in r.fetch().items()}


def _next(s):
    """The next response, skipping "* n RECENT" (IMAP4rev1 servers send it after EXISTS)."""
    while True:
        r = s.read_resp()
        if not r.text.endswith(b" RECENT"):
            return r


def _exists(r):
    ex = r.named("EXISTS")
    return int(ex[-1].text.split()[1]) if ex else None


@pytest.fixture
def pair(target):
    """Two sessions with INBOX selected, holding three messages (emptied first)."""
    a, b = Session(target), Session(target)
    a.ok("SELECT", "INBOX")
    a.cmd("STORE", "1:*", "+FLAGS.SILENT", "(\\Deleted)")
    a.ok("EXPUNGE")
    for i in range(3):
        a.append("INBOX", _msg(i))
    a.ok("NOOP")
    b.ok("SELECT", "INBOX")
    assert _uids(a) == _uids(b) and len(_uids(a)) == 3
    yield a, b
    a.logout()
    b.logout()


def test_delivery_seen_on_noop(target, pair):
    a, b = pair
    target.deliver(_msg("smtp-1"))
    r = b.ok("NOOP")
    assert _exists(r) == 4, r.untagged
    r = a.ok("NOOP")
    assert _exists(r) == 4
    assert _uids(a) == _uids(b)
    f = b.ok("FETCH", "4", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])").fetch()[4]
    assert f["BODY[HEADER.FIELDS (SUBJECT)]"].strip() == b"Subject: concurrency smtp-1"
    assert "\\Seen" not in f["FLAGS"]


def test_delivery_seen_during_idle(target, pair):
    a, b = pair
    tag = b.tag()
    b.send(tag + b" IDLE\r\n")
    assert b.read_resp().text.startswith(b"+")
    time.sleep(0.3)  # let the server settle into IDLE
    lat = []
    for n in (4, 5):
        target.deliver(_msg(f"idle-{n}"))
        t0 = time.monotonic()
        b.settimeout(5)
        r = _next(b)
        lat.append(time.monotonic() - t0)
        assert r.text == b"* %d EXISTS" % n, r
        # the other session's APPEND is seen the same way
    a.append("INBOX", _msg("idle-append"))
    t0 = time.monotonic()
    r = _next(b)
    lat.append(time.monotonic() - t0)
    assert r.text == b"* 6 EXISTS", r
    b.send(b"DONE\r\n")
    res = b.until(tag)
    assert res.status == "OK"
    b.settimeout(10)
    print(f"IDLE latencies: {', '.join(f'{x * 1000:.0f} ms' for x in lat)}")
    assert max(lat) <= IDLE_LIMIT, lat
    a.ok("NOOP")
    assert _uids(a) == _uids(b)


def test_flags_seen_on_noop(pair):
    a, b = pair
    r = a.ok("STORE", "2", "+FLAGS", "(\\Flagged $Work)")
    assert flags(r.fetch()[2]["FLAGS"]) == {"\\Flagged", "$Work"}
    r = b.ok("NOOP")
    f = r.fetch()
    assert 2 in f and flags(f[2]["FLAGS"]) == {"\\Flagged", "$Work"}, r.untagged
    # a new keyword may come with an untagged FLAGS; it must include it then
    for x in r.named("FLAGS"):
        assert "$Work" in x.tokens()[2]
    a.ok("STORE", "1:3", "+FLAGS.SILENT", "(\\Seen)")
    r = b.ok("NOOP")
    f = r.fetch()
    assert sorted(f) == [1, 2, 3] and all("\\Seen" in v["FLAGS"] for v in f.values())
    r = b.ok("NOOP")
    assert not r.named("FETCH")  # reported once


def test_expunge_only_at_noop(target, pair):
    a, b = pair
    before = _uids(b)
    target.deliver(_msg("exp-4"))
    a.ok("NOOP")
    a.ok("STORE", "2", "+FLAGS.SILENT", "(\\Deleted)")
    r = a.ok("EXPUNGE")
    assert [x.text for x in r.named("EXPUNGE")] == [b"* 2 EXPUNGE"]
    time.sleep(0.3)
    # FETCH, STORE, SEARCH in b: no EXPUNGE, sequence numbers as b knows them
    r = b.cmd("FETCH", "1:3", "UID")
    assert r.status in ("OK", "NO") and not r.named("EXPUNGE"), r.untagged
    got = {k: int(v["UID"]) for k, v in r.fetch().items() if "UID" in v}
    assert all(before[k] == u for k, u in got.items()), (before, got)
    assert 1 in got and 3 in got
    r = b.cmd("STORE", "3", "+FLAGS", "(\\Answered)")
    assert r.status in ("OK", "NO") and not r.named("EXPUNGE"), r.untagged
    for k, v in r.fetch().items():
        if "UID" in v:
            assert before[k] == int(v["UID"])
    r = b.cmd("SEARCH", "ALL")
    assert r.status == "OK" and not r.named("EXPUNGE"), r.untagged
    nums = r.numbers()
    assert max(nums) >= 3  # the expunged message still counts in b's numbering
    # NOOP: the EXPUNGE (and the delivery's EXISTS) now
    r = b.ok("NOOP")
    assert [x.text for x in r.named("EXPUNGE")] == [b"* 2 EXPUNGE"], r.untagged
    ua, ub = _uids(a), _uids(b)
    assert ua == ub and len(ua) == 3
    assert list(ua.values()) == [before[1], before[3], max(ua.values())]
    # the flag stored by b on its message 3 (now 2) is visible to a
    r = a.ok("NOOP")
    f = a.ok("FETCH", "2", "FLAGS").fetch()[2]
    assert "\\Answered" in f["FLAGS"]


def test_expunge_in_idle_and_vanished(target, pair):
    a, b = pair
    uids = _uids(a)
    # IDLE: an expunge by a is reported to b during IDLE (no command in progress)
    tag = b.tag()
    b.send(tag + b" IDLE\r\n")
    assert b.read_resp().text.startswith(b"+")
    time.sleep(0.3)
    a.ok("STORE", "1", "+FLAGS.SILENT", "(\\Deleted)")
    a.ok("EXPUNGE")
    b.settimeout(5)
    seen = []
    while True:
        r = _next(b)
        seen.append(r.text)
        if r.text == b"* 1 EXPUNGE":
            break
        assert r.text.startswith(b"* ") and b"FETCH" in r.text, seen  # \Deleted flag first
    b.send(b"DONE\r\n")
    assert b.until(tag).status == "OK"
    b.settimeout(10)
    assert _uids(a) == _uids(b)
    # QRESYNC: VANISHED instead of EXPUNGE
    c = Session(target)
    c.ok("ENABLE", "QRESYNC")
    c.ok("SELECT", "INBOX")
    a.ok("UID", "STORE", str(uids[3]), "+FLAGS.SILENT", "(\\Deleted)")
    a.ok("UID", "EXPUNGE", str(uids[3]))
    r = c.ok("NOOP")
    assert not r.named("EXPUNGE")
    v = r.named("VANISHED")
    assert v and v[0].text == b"* VANISHED %d" % uids[3], r.untagged
    assert _uids(c) == _uids(a) == {1: uids[2]}
    c.logout()


def test_many_deliveries_and_changes_stay_consistent(target, pair):
    a, b = pair
    for i in range(10):
        target.deliver(_msg(f"burst-{i}"))
        if i % 3 == 0:
            a.ok("NOOP")
            a.ok("STORE", "1", "+FLAGS.SILENT", "(\\Deleted)")
            a.ok("EXPUNGE")
        if i % 4 == 1:
            b.ok("NOOP")
    a.append("INBOX", M1)
    b.append("INBOX", M3)
    a.ok("NOOP")
    b.ok("NOOP")
    ua, ub = _uids(a), _uids(b)
    assert ua == ub
    assert list(ua) == list(range(1, len(ua) + 1))
    assert list(ua.values()) == sorted(ua.values())
    c = Session(target)
    st = c.ok("STATUS", "INBOX", "(MESSAGES)").named("STATUS")[0].tokens()[3]
    assert st == ["MESSAGES", str(len(ua))]
    c.logout()
