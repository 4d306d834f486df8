"""mbsync (isync) against the IMAP server (issue 4): a 1,000-message mailbox synchronized both ways
with a local Maildir, three runs, with flag changes, new messages and expunges on both sides
between the runs; after each run both sides hold the same messages (by Message-ID) with the same
flags. Over IMAPS with the server's self-signed certificate trusted through CertificateFile.

Against another server by hand (see test_imap.py): IMAP_TEST_TARGET=dovecot:host:port:user:pass
uses SSLType None on that port (plaintext LOGIN over loopback)."""
import os
import random
import re
import shutil
import subprocess
import tempfile
import time

import pytest

from test_imap import Lit, Session, _env_target, _reset, _start_lightr, _stop, q

BOX = "Sync1k"
N_FAR, N_NEAR = 600, 400  # 1,000 messages after the first run
MAILDIR_FLAGS = {"D": "\\Draft", "F": "\\Flagged", "R": "\\Answered", "S": "\\Seen",
                 "T": "\\Deleted"}
IMAP_TO_MAILDIR = {v: k for k, v in MAILDIR_FLAGS.items()}


@pytest.fixture(scope="module")
def target():
    if not shutil.which("mbsync"):
        pytest.skip("mbsync (isync) is not installed")
    t = _env_target()
    if t is None:
        t = _start_lightr("lightr-mbsync-")
    _reset(t)
    yield t
    _stop(t)


def _msg(tag, i):
    body = "".join(f"Line {k} of message {tag}-{i}, some text to make it look real.\n"
                   for k in range(8))
    return (f"From: Sender {i} <s{i}@remote.example>\nTo: alice@test.example\n"
            f"Subject: sync {tag} {i}\nDate: Mon, 02 Jan 2023 10:{i % 60:02d}:00 +0000\n"
            f"Message-ID: <{tag}-{i}@sync.example>\nMIME-Version: 1.0\n"
            f"Content-Type: text/plain; charset=us-ascii\n\n{body}").replace("\n", "\r\n").encode()


class World:
    def __init__(self, t, d):
        self.t, self.d = t, d
        self.maildir = os.path.join(d, "mail", BOX)
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(self.maildir, sub))
        self.rc = os.path.join(d, "mbsyncrc")
        self.n = 0
        if t.kind == "lightr":
            port = t.ports["imaps"]
            tls = (f"SSLType IMAPS\nCertificateFile {t.tmp}/data/tls/cert.pem\n"
                   "SystemCertificates no\n")
        else:
            port, tls = t.port, "SSLType None\n"
        with open(self.rc, "w") as f:
            f.write(f"""IMAPAccount test
Host {t.host}
Port {port}
User {t.user}
Pass {t.pw}
{tls}AuthMechs LOGIN PLAIN
PipelineDepth 50

IMAPStore far
Account test

MaildirStore near
Path {d}/mail/
Inbox {d}/mail/INBOX
SubFolders Verbatim

Channel sync
Far :far:
Near :near:
Patterns {BOX}
Create Both
Expunge Both
SyncState *
Sync All
""")

    def mbsync(self):
        env = dict(os.environ, HOME=self.d)
        t0 = time.monotonic()
        r = subprocess.run(["mbsync", "-c", self.rc, "-a"], capture_output=True, text=True,
                           env=env, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        return time.monotonic() - t0

    def add_near(self, tag, i, flags=""):
        self.n += 1
        name = f"{int(time.time())}.{os.getpid()}_{self.n}.test"
        sub = "cur" if flags else "new"
        if flags:
            name += ":2," + "".join(sorted(flags))
        with open(os.path.join(self.maildir, sub, name), "wb") as f:
            f.write(_msg(tag, i))

    def near(self):
        """{Message-ID: (set of IMAP flags, path)} of the local Maildir."""
        out = {}
        for sub in ("cur", "new"):
            for name in os.listdir(os.path.join(self.maildir, sub)):
                path = os.path.join(self.maildir, sub, name)
                with open(path, "rb") as f:
                    head = f.read(4096)
                m = re.search(rb"^Message-ID: (<[^>]+>)", head, re.M | re.I)
                assert m, path
                fl = name.split(":2,", 1)[1] if ":2," in name else ""
                out[m.group(1).decode()] = ({MAILDIR_FLAGS[c] for c in fl if c in MAILDIR_FLAGS},
                                            path)
        return out

    def set_near_flags(self, path, add="", remove=""):
        base, _, fl = os.path.basename(path).partition(":2,")
        fl = "".join(sorted((set(fl) | set(add)) - set(remove)))
        os.rename(path, os.path.join(self.maildir, "cur", f"{base}:2,{fl}"))


def _far(s):
    """{Message-ID: set of flags} of the server mailbox (s has it selected)."""
    s.ok("NOOP")
    r = s.ok("FETCH", "1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
    out = {}
    for v in r.fetch().values():
        mid = v["BODY[HEADER.FIELDS (MESSAGE-ID)]"].split(b":", 1)[1].strip().decode()
        out[mid] = {f for f in v["FLAGS"] if f in IMAP_TO_MAILDIR}
    return out


def _check_same(w, s):
    near = {k: v[0] for k, v in w.near().items()}
    far = _far(s)
    assert set(near) == set(far), (len(near), len(far), sorted(set(near) ^ set(far))[:10])
    diff = {k: (near[k], far[k]) for k in near if near[k] != far[k]}
    assert not diff, list(diff.items())[:10]
    return far


def test_mbsync_1000_both_ways(target):
    d = tempfile.mkdtemp(prefix="lightr-mbsync-home-", dir="/tmp")
    try:
        _run(target, d)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _run(target, d):
    rnd = random.Random(4)
    w = World(target, d)
    s = Session(target)
    s.cmd("DELETE", q(BOX))
    s.ok("CREATE", q(BOX))
    # 600 messages on the server, APPENDed in pipelined batches (LITERAL+)
    caps = s.caps()
    plus = "LITERAL+" in caps
    for start in range(0, N_FAR, 50):
        tags = []
        for i in range(start, min(start + 50, N_FAR)):
            raw = _msg("far", i)
            fl = "(\\Seen) " if i % 3 == 0 else ""
            if plus:
                tag = s.tag()
                tags.append(tag)
                s.send(tag + b" APPEND " + q(BOX) + b" " + fl.encode() +
                       b"{%d+}\r\n" % len(raw) + raw + b"\r\n")
            else:
                s.ok("APPEND", q(BOX), *([fl.strip()] if fl else []), Lit(raw))
        for tag in tags:
            assert s.until(tag).status == "OK"
    # 400 in the local Maildir, some with flags
    for i in range(N_NEAR):
        w.add_near("near", i, "S" if i % 4 == 0 else ("F" if i % 7 == 0 else ""))
    s.ok("SELECT", q(BOX))

    times = [w.mbsync()]
    far = _check_same(w, s)
    assert len(far) == N_FAR + N_NEAR

    for rnd_no in (2, 3):
        # server side: flags, new messages, expunges
        ids = sorted(far)
        r = s.ok("FETCH", "1:*", "(UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])").fetch()
        uid_of = {v["BODY[HEADER.FIELDS (MESSAGE-ID)]"].split(b":", 1)[1].strip().decode():
                  v["UID"] for v in r.values()}
        pick = rnd.sample(ids, 90)
        flag_on, flag_off, gone_far = pick[:40], pick[40:70], pick[70:90]
        s.ok("UID", "STORE", ",".join(uid_of[m] for m in flag_on), "+FLAGS.SILENT",
             "(\\Flagged \\Answered)")
        s.ok("UID", "STORE", ",".join(uid_of[m] for m in flag_off), "-FLAGS.SILENT", "(\\Seen)")
        s.ok("UID", "STORE", ",".join(uid_of[m] for m in gone_far), "+FLAGS.SILENT",
             "(\\Deleted)")
        s.ok("EXPUNGE")
        for i in range(10):
            s.append(BOX, _msg(f"far{rnd_no}", i), "\\Seen" if i % 2 else "")
        # local side: flags (renamed files), new messages, deleted files and trashed (T) ones
        near = w.near()
        rest = [m for m in ids if m not in pick]
        pick = rnd.sample(rest, 70)
        for m in pick[:30]:
            w.set_near_flags(near[m][1], add="SF")
        for m in pick[30:50]:
            w.set_near_flags(near[m][1], remove="SF")
        for m in pick[50:60]:
            os.unlink(near[m][1])
        for m in pick[60:70]:
            w.set_near_flags(near[m][1], add="T")
        for i in range(10):
            w.add_near(f"near{rnd_no}", i, "R" if i % 2 else "")
        before = len(ids)
        times.append(w.mbsync())
        far = _check_same(w, s)
        # 20 expunged on the server, 10 deleted and 10 trashed locally, 20 new
        assert len(far) == before - 20 - 20 + 20, len(far)
        assert not any("\\Deleted" in f for f in far.values())
        for m in flag_on:
            assert {"\\Flagged", "\\Answered"} <= far[m]
        for m in pick[:30]:
            assert {"\\Flagged", "\\Seen"} <= far[m]
    s.logout()
    print(f"mbsync runs: {', '.join(f'{x:.1f} s' for x in times)}")
