"""DKIM (issue 5): every message signed by our implementation (emitted by the unit test binary
build/san/dkim/dkim_test with DKIM_EMIT_DIR) must verify with python3-dkim for both rsa-sha256
and ed25519-sha256; and the CLI commands dkim generate|list|rotate|export and domain dns."""
import json
import os
import re
import subprocess
import sys
import time

import pytest

from conftest import ROOT, run, write_config

DKIM_TEST = os.environ.get("DKIM_TEST_BIN", os.path.join(ROOT, "build", "san", "dkim", "dkim_test"))

# The oracle runs in an interpreter that has python3-dkim (and PyNaCl for ed25519): the Debian
# package lives in the system python, which may not be the one running pytest.
ORACLE = r"""
import json, os, sys
import dkim
d = sys.argv[1]
keys = json.load(open(os.path.join(d, "keys.json")))
def dnsfunc(name, timeout=5):
    sel = name.decode().split("._domainkey.")[0]
    return keys[sel].encode()
bad = []
n = 0
for f in sorted(os.listdir(d)):
    if not f.endswith(".eml"):
        continue
    msg = open(os.path.join(d, f), "rb").read()
    nsig = 2 if f.endswith("-both.eml") else 1
    for idx in range(nsig):
        n += 1
        v = dkim.DKIM(msg, minkey=1024)
        try:
            ok = v.verify(idx=idx, dnsfunc=dnsfunc)
        except Exception as e:
            ok = False
            print(f, idx, "exception", e)
        if not ok:
            bad.append((f, idx))
print(json.dumps({"checked": n, "bad": bad}))
"""


def oracle_python():
    for py in (sys.executable, "/usr/bin/python3"):
        r = subprocess.run([py, "-c", "import dkim, nacl"], capture_output=True)
        if r.returncode == 0:
            return py
    pytest.fail("python3-dkim (with PyNaCl) is not installed (make deps)")


def test_signatures_verify_with_python_dkim(tmp_path):
    if not os.access(DKIM_TEST, os.X_OK):
        pytest.fail(f"{DKIM_TEST} is not built (make san)")
    out = tmp_path / "emit"
    out.mkdir()
    r = subprocess.run([DKIM_TEST], env=dict(os.environ, DKIM_EMIT_DIR=str(out)),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    keys = json.loads((out / "keys.json").read_text())
    assert any("k=ed25519" in v for v in keys.values())
    assert any("k=rsa" in v for v in keys.values())
    files = sorted(p.name for p in out.iterdir() if p.name.endswith(".eml"))
    for case in ("basic", "empty-body", "header-only", "no-final-crlf", "bare-lf",
                 "trailing-space", "utf8-8bit", "folded-repeated", "long-lines"):
        for v in ("ed25519", "rsa", "both"):
            assert f"{case}-{v}.eml" in files
    r = subprocess.run([oracle_python(), "-c", ORACLE, str(out)], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["bad"] == [], r.stdout
    assert res["checked"] == len(files) + len([f for f in files if f.endswith("-both.eml")])
    # a tampered body must fail (the oracle is not trivially True)
    victim = out / "basic-rsa.eml"
    victim.write_bytes(victim.read_bytes().replace(b"Hello Bob.", b"Hello Eve."))
    r = subprocess.run([oracle_python(), "-c", ORACLE, str(out)], capture_output=True,
                       text=True, timeout=300)
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["bad"] == [["basic-rsa.eml", 0]], r.stdout


# ---- CLI: dkim generate|list|rotate|export, domain add (default keys), domain dns ----

@pytest.fixture
def cfg(tmpdir_world):
    path, _ = write_config(tmpdir_world)
    return path


def ok(r):
    assert r.returncode == 0, f"exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    return r.stdout


def fails(r, status=1, text=None):
    assert r.returncode == status, f"exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    if text:
        assert text in r.stderr, r.stderr
    return r.stderr


def keys_table(lightr_bin, cfg, *domain):
    out = ok(run(lightr_bin, "dkim", "list", *domain, config=cfg))
    lines = out.splitlines()
    if lines and lines[0].startswith("no DKIM keys"):
        return []
    assert lines[0].split() == ["DOMAIN", "SELECTOR", "ALGO", "BITS", "STATE", "CREATED",
                                "RETIRE_AT"]
    return [dict(zip(("domain", "selector", "algo", "bits", "state", "created", "retire_at"),
                     l.split())) for l in lines[1:]]


def dns_records(out):
    """{owner: [joined TXT value or MX data]} from domain dns output."""
    recs = {}
    for line in out.splitlines():
        if not line or line.startswith(";"):
            continue
        owner, cls, typ, data = line.split("\t", 3)
        assert cls == "IN"
        if typ == "TXT":
            parts = re.findall(r'"([^"]*)"', data)
            assert all(len(p.encode()) <= 255 for p in parts), data
            assert data == " ".join(f'"{p}"' for p in parts)
            data = "".join(parts)
        recs.setdefault((owner, typ), []).append(data)
    return recs


def pubkey_from_pem(pem, algo, tmpdir):
    """The p= value computed from an exported private key with the openssl command."""
    path = os.path.join(tmpdir, "k.pem")
    with open(path, "w") as f:
        f.write(pem)
    der = subprocess.run(["openssl", "pkey", "-in", path, "-pubout", "-outform", "DER"],
                         capture_output=True, check=True).stdout
    os.unlink(path)
    if algo == "ed25519":
        der = der[-32:]  # SubjectPublicKeyInfo of Ed25519 ends with the raw 32-byte key
    import base64
    return base64.b64encode(der).decode()


def test_cli_domain_add_creates_keys_and_dns(lightr_bin, cfg, tmpdir_world):
    ok(run(lightr_bin, "domain", "add", "Example.COM", config=cfg))
    keys = keys_table(lightr_bin, cfg)
    assert sorted((k["algo"], k["bits"], k["state"]) for k in keys) == [
        ("ed25519", "256", "active"), ("rsa", "2048", "active")]
    day = time.strftime("%Y%m%d", time.gmtime())
    assert sorted(k["selector"] for k in keys) == [f"ed25519-{day}", f"rsa-{day}"]
    assert all(k["domain"] == "example.com" and k["retire_at"] == "-" for k in keys)

    out = ok(run(lightr_bin, "domain", "dns", "example.com", config=cfg))
    assert "starting point" in out
    recs = dns_records(out)
    assert recs[("example.com.", "MX")] == ["10 mail.test.example."]
    assert recs[("example.com.", "TXT")] == ["v=spf1 mx -all"]
    assert recs[("_dmarc.example.com.", "TXT")] == [
        "v=DMARC1; p=quarantine; rua=mailto:postmaster@example.com"]
    for k in keys:
        owner = f"{k['selector']}._domainkey.example.com."
        [txt] = recs[(owner, "TXT")]
        pem = ok(run(lightr_bin, "dkim", "export", "example.com", k["selector"], config=cfg))
        assert pem.startswith("-----BEGIN PRIVATE KEY-----")
        assert txt == f"v=DKIM1; k={k['algo']}; p={pubkey_from_pem(pem, k['algo'], tmpdir_world)}"
    # the RSA record is longer than 255 octets: split into several strings
    rsa_line = [l for l in out.splitlines() if l.startswith(f"rsa-{day}._domainkey")][0]
    assert rsa_line.count('"') >= 4
    # private keys are printed by export only
    assert "PRIVATE" not in out
    assert "PRIVATE" not in ok(run(lightr_bin, "dkim", "list", config=cfg))
    fails(run(lightr_bin, "domain", "dns", "missing.example", config=cfg), 1, "missing.example")


def test_cli_dkim_generate_list_export(lightr_bin, cfg):
    ok(run(lightr_bin, "domain", "add", "example.com", config=cfg))
    ok(run(lightr_bin, "domain", "add", "other.example", config=cfg))
    day = time.strftime("%Y%m%d", time.gmtime())
    out = ok(run(lightr_bin, "dkim", "generate", "example.com", config=cfg))
    assert f"ed25519-{day}-2" in out  # default selectors stay unique
    ok(run(lightr_bin, "dkim", "generate", "example.com", "--algo", "rsa", "--bits", "3072",
           "--selector", "big", config=cfg))
    keys = {k["selector"]: k for k in keys_table(lightr_bin, cfg, "example.com")}
    assert keys["big"]["bits"] == "3072" and keys["big"]["algo"] == "rsa"
    assert keys[f"ed25519-{day}-2"]["state"] == "active"
    assert len(keys) == 4
    assert len(keys_table(lightr_bin, cfg)) == 6
    assert {k["domain"] for k in keys_table(lightr_bin, cfg, "other.example")} == {"other.example"}
    fails(run(lightr_bin, "dkim", "generate", "example.com", "--selector", "big", config=cfg), 1,
          "big")
    fails(run(lightr_bin, "dkim", "generate", "example.com", "--algo", "dsa", config=cfg), 2,
          "--algo")
    fails(run(lightr_bin, "dkim", "generate", "example.com", "--algo", "rsa", "--bits", "1024",
              config=cfg), 2, "--bits")
    fails(run(lightr_bin, "dkim", "generate", "example.com", "--bits", "2048", config=cfg), 2)
    fails(run(lightr_bin, "dkim", "generate", "example.com", "--selector", "a b", config=cfg), 1)
    fails(run(lightr_bin, "dkim", "generate", "missing.example", config=cfg), 1,
          "missing.example")
    fails(run(lightr_bin, "dkim", "list", "missing.example", config=cfg), 1, "missing.example")
    fails(run(lightr_bin, "dkim", "export", "example.com", "nope", config=cfg), 1, "nope")
    fails(run(lightr_bin, "dkim", "export", "example.com", config=cfg), 2, "missing argument")
    fails(run(lightr_bin, "dkim", "frob", config=cfg), 2, "unknown command 'dkim frob'")
    assert "usage: lightr dkim rotate DOMAIN" in ok(run(lightr_bin, "dkim", "rotate", "--help"))
    assert "dkim" in ok(run(lightr_bin, "--help"))


def test_cli_dkim_rotate(lightr_bin, cfg):
    ok(run(lightr_bin, "domain", "add", "example.com", config=cfg))
    before = {k["selector"] for k in keys_table(lightr_bin, cfg)}
    ok(run(lightr_bin, "dkim", "rotate", "example.com", config=cfg))
    keys = keys_table(lightr_bin, cfg)
    old = [k for k in keys if k["selector"] in before]
    new = [k for k in keys if k["selector"] not in before]
    assert len(old) == 2 and all(k["state"] == "published" for k in old)
    assert sorted(k["algo"] for k in new) == ["ed25519", "rsa"]
    assert all(k["state"] == "active" and k["retire_at"] == "-" for k in new)
    # retire_at is 7 days after the rotation
    created = time.mktime(time.strptime(new[0]["created"], "%Y-%m-%dT%H:%M:%SZ"))
    retire = time.mktime(time.strptime(old[0]["retire_at"], "%Y-%m-%dT%H:%M:%SZ"))
    assert abs(retire - created - 7 * 86400) <= 2
    # both generations are in DNS while the old ones are published
    recs = dns_records(ok(run(lightr_bin, "domain", "dns", "example.com", config=cfg)))
    assert len([o for o, t in recs if "._domainkey." in o]) == 4
    # --keep-days 0: the previous generation is retired at once, and leaves DNS
    ok(run(lightr_bin, "dkim", "rotate", "example.com", "--keep-days", "0", config=cfg))
    keys = keys_table(lightr_bin, cfg)
    states = sorted(k["state"] for k in keys)
    assert states.count("active") == 2 and states.count("retired") == 2, keys
    assert states.count("published") == 2  # the first generation, still within its 7 days
    recs = dns_records(ok(run(lightr_bin, "domain", "dns", "example.com", config=cfg)))
    assert len([o for o, t in recs if "._domainkey." in o]) == 4
    retired = {k["selector"] for k in keys if k["state"] == "retired"}
    assert not any(o.split(".")[0] in retired for o, t in recs)
    fails(run(lightr_bin, "dkim", "rotate", "example.com", "--keep-days", "x", config=cfg), 2)
    fails(run(lightr_bin, "dkim", "rotate", "missing.example", config=cfg), 1, "missing.example")
