"""The whole CLI surface against the real binary: every command, its validation, exit statuses
(0 ok, 1 failure, 2 usage) and one-line errors; commands while the server runs; backup."""
import os
import signal
import sqlite3
import stat

import pytest

from conftest import run, write_config, wait_port


@pytest.fixture
def cfg(tmpdir_world):
    path, ports = write_config(tmpdir_world)
    return path


def ok(r):
    assert r.returncode == 0, f"exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    return r.stdout


def fails(r, status=1, text=None):
    assert r.returncode == status, f"exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    assert r.stderr.startswith("lightr: ") or r.stderr.startswith("usage:") or status == 2, r.stderr
    if text:
        assert text in r.stderr, r.stderr
    return r.stderr


def test_help_version_usage(lightr_bin):
    out = ok(run(lightr_bin, "--help"))
    for c in ("serve", "quickstart", "config", "domain", "account", "alias", "backup", "version"):
        assert c in out
    assert ok(run(lightr_bin, "version")).startswith("lightr ")
    assert ok(run(lightr_bin, "--version")).startswith("lightr ")
    assert run(lightr_bin).returncode == 2
    fails(run(lightr_bin, "frobnicate"), 2, "unknown command 'frobnicate'")
    assert run(lightr_bin, "domain").returncode == 2
    fails(run(lightr_bin, "domain", "frob"), 2, "unknown command 'domain frob'")
    assert "usage: lightr domain add DOMAIN" in ok(run(lightr_bin, "domain", "add", "--help"))
    fails(run(lightr_bin, "domain", "list", "--bogus"), 2, "unknown option --bogus")
    fails(run(lightr_bin, "domain", "add"), 2, "missing argument")
    fails(run(lightr_bin, "domain", "add", "a.example", "b.example"), 2, "unexpected argument")
    fails(run(lightr_bin, "account", "add", "x@y.example", "--quota"), 2, "--quota needs a value")
    fails(run(lightr_bin, "-c"), 2)


def test_config_check_good_and_bad(lightr_bin, tmpdir_world, cfg):
    assert ok(run(lightr_bin, "config", "check", config=cfg)).strip() == f"{cfg}: ok"
    # -c after the subcommand works too, and $LIGHTR_CONFIG
    assert ok(run(lightr_bin, "config", "check", "-c", cfg)).strip() == f"{cfg}: ok"
    assert ok(run(lightr_bin, "config", "check", env={"LIGHTR_CONFIG": cfg})).strip() == f"{cfg}: ok"
    bad = os.path.join(tmpdir_world, "bad.yaml")
    with open(bad, "w") as f:
        f.write("hostname: mail.example.com\n"
                "smtp:\n"
                "  max_recipients: 0\n"
                "  max_message_size: -5\n"
                "  frobs: 3\n"
                "limits:\n"
                "  max_connections: 200000\n")
    r = run(lightr_bin, "config", "check", config=bad)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert f"{bad}:3: smtp.max_recipients: 0 is below minimum 1" in lines
    assert any(l.startswith(f"{bad}:4: smtp.max_message_size:") for l in lines), lines
    assert any(l.startswith(f"{bad}:5: smtp.frobs:") and "unknown key" in l for l in lines), lines
    assert any(l.startswith(f"{bad}:7: limits.max_connections:") and "above maximum" in l
               for l in lines), lines
    assert len(lines) == 4
    r = run(lightr_bin, "config", "check", config=os.path.join(tmpdir_world, "nope.yaml"))
    assert r.returncode == 1 and "nope.yaml" in r.stderr


def test_config_dump_round_trip(lightr_bin, tmpdir_world, cfg):
    out = ok(run(lightr_bin, "config", "dump", config=cfg))
    assert "hostname: mail.test.example" in out
    assert "max_recipients: 100" in out
    p = os.path.join(tmpdir_world, "dumped.yaml")
    with open(p, "w") as f:
        f.write(out)
    ok(run(lightr_bin, "config", "check", config=p))
    assert ok(run(lightr_bin, "config", "dump", config=p)) == out
    d = ok(run(lightr_bin, "config", "dump", "--defaults", config=cfg))
    assert "127.0.0.1:2525" in d and "data_dir: ./lightr-data" in d


def test_domains(lightr_bin, cfg):
    assert ok(run(lightr_bin, "domain", "add", "Example.COM", config=cfg)) == "domain example.com added\n"
    ok(run(lightr_bin, "domain", "add", "second.example", config=cfg))
    fails(run(lightr_bin, "domain", "add", "example.com", config=cfg), 1, "example.com")
    for bad in ("localhost", "exa mple.com", "-x.example", "a..b.example", "x" * 64 + ".example"):
        fails(run(lightr_bin, "domain", "add", "--", bad, config=cfg), 1, "not a valid domain")
    # a leading dash without "--" is an unknown option: usage error
    fails(run(lightr_bin, "domain", "add", "-x.example", config=cfg), 2, "unknown option")
    out = ok(run(lightr_bin, "domain", "list", config=cfg))
    assert out.splitlines()[0].split() == ["DOMAIN", "ACCOUNTS", "ALIASES", "CREATED"]
    assert [l.split()[0] for l in out.splitlines()[1:]] == ["example.com", "second.example"]
    show = ok(run(lightr_bin, "domain", "show", "example.com", config=cfg))
    assert "domain:   example.com" in show and "accounts: 0" in show
    fails(run(lightr_bin, "domain", "show", "missing.example", config=cfg), 1, "missing.example")
    ok(run(lightr_bin, "account", "add", "a@example.com", config=cfg))
    fails(run(lightr_bin, "domain", "remove", "example.com", config=cfg), 1, "--force")
    assert "a@example.com" in ok(run(lightr_bin, "account", "list", config=cfg))
    ok(run(lightr_bin, "domain", "remove", "example.com", "--force", config=cfg))
    assert "a@example.com" not in ok(run(lightr_bin, "account", "list", config=cfg))
    ok(run(lightr_bin, "domain", "remove", "second.example", config=cfg))
    fails(run(lightr_bin, "domain", "remove", "second.example", config=cfg), 1)
    assert ok(run(lightr_bin, "domain", "list", config=cfg)) == ""


def db_path(cfg):
    return os.path.join(os.path.dirname(cfg), "data", "lightr.db")


def stored_hash(cfg, address):
    con = sqlite3.connect(db_path(cfg))
    try:
        row = con.execute("SELECT password_hash FROM accounts WHERE address = ?", (address,)).fetchone()
    finally:
        con.close()
    return row[0] if row else None


def test_accounts(lightr_bin, cfg):
    argon2 = pytest.importorskip("argon2")
    ok(run(lightr_bin, "domain", "add", "example.com", config=cfg))
    out = ok(run(lightr_bin, "account", "add", "alice@example.com", "--password-stdin",
                 config=cfg, stdin="s3cret-password\n"))
    assert "password" not in out
    h = stored_hash(cfg, "alice@example.com")
    assert h.startswith("$argon2id$")
    assert argon2.PasswordHasher().verify(h, "s3cret-password")
    # generated password, printed once, verifies against the stored hash (oracle: argon2-cffi)
    out = ok(run(lightr_bin, "account", "add", "Bob@EXAMPLE.com", "--quota", "1GiB", config=cfg))
    pw = [l.split(": ", 1)[1] for l in out.splitlines() if l.startswith("password: ")][0]
    assert len(pw) == 24
    assert argon2.PasswordHasher().verify(stored_hash(cfg, "Bob@example.com"), pw)
    fails(run(lightr_bin, "account", "add", "alice@example.com", config=cfg), 1, "alice@example.com")
    fails(run(lightr_bin, "account", "add", "x@nodomain.example", config=cfg), 1)
    fails(run(lightr_bin, "account", "add", "not-an-address", config=cfg), 1, "not a valid address")
    fails(run(lightr_bin, "account", "add", "c@example.com", "--password-stdin", config=cfg,
              stdin="short\n"), 1, "shorter than 8")
    fails(run(lightr_bin, "account", "add", "c@example.com", "--password-stdin", config=cfg,
              stdin=""), 1, "no password")
    fails(run(lightr_bin, "account", "add", "c@example.com", "--quota", "lots", config=cfg), 1,
          "--quota")
    show = ok(run(lightr_bin, "account", "show", "alice@example.com", config=cfg))
    assert "argon2" not in show and "s3cret" not in show
    for mb in ("INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"):
        assert mb in show
    for su in ("\\Sent", "\\Drafts", "\\Trash", "\\Junk", "\\Archive"):
        assert su in show
    bob = ok(run(lightr_bin, "account", "show", "bob@example.com", config=cfg))
    assert "quota:    1GiB" in bob and "admin:    no" in bob
    assert ok(run(lightr_bin, "account", "admin", "bob@example.com", "on", config=cfg)) == \
        "account bob@example.com domain admin on\n"
    assert "admin:    domain admin" in ok(run(lightr_bin, "account", "show", "bob@example.com",
                                                config=cfg))
    ok(run(lightr_bin, "account", "admin", "bob@example.com", "off", config=cfg))
    fails(run(lightr_bin, "account", "admin", "bob@example.com", "maybe", config=cfg), 2)
    fails(run(lightr_bin, "account", "admin", "nobody@example.com", "on", config=cfg), 1)
    lst = ok(run(lightr_bin, "account", "list", "example.com", config=cfg))
    assert [l.split()[0] for l in lst.splitlines()[1:]] == ["alice@example.com", "Bob@example.com"]
    old = stored_hash(cfg, "alice@example.com")
    ok(run(lightr_bin, "account", "passwd", "alice@example.com", "--password-stdin", config=cfg,
           stdin="another-password\r\n"))
    new = stored_hash(cfg, "alice@example.com")
    assert new != old and argon2.PasswordHasher().verify(new, "another-password")
    fails(run(lightr_bin, "account", "passwd", "zed@example.com", "--password-stdin", config=cfg,
              stdin="whatever-password\n"), 1)
    ok(run(lightr_bin, "account", "disable", "bob@example.com", config=cfg))
    assert "disabled" in ok(run(lightr_bin, "account", "show", "bob@example.com", config=cfg))
    ok(run(lightr_bin, "account", "enable", "bob@example.com", config=cfg))
    ok(run(lightr_bin, "account", "remove", "bob@example.com", config=cfg))
    fails(run(lightr_bin, "account", "show", "bob@example.com", config=cfg), 1)
    fails(run(lightr_bin, "account", "remove", "bob@example.com", config=cfg), 1)


def test_aliases(lightr_bin, cfg):
    ok(run(lightr_bin, "domain", "add", "example.com", config=cfg))
    ok(run(lightr_bin, "account", "add", "alice@example.com", config=cfg))
    ok(run(lightr_bin, "alias", "add", "sales@example.com", "alice@example.com",
           "partner@elsewhere.example", config=cfg))
    ok(run(lightr_bin, "alias", "add", "sales@example.com", "bob@elsewhere.example", config=cfg))
    ok(run(lightr_bin, "alias", "add", "@example.com", "alice@example.com", config=cfg))
    out = ok(run(lightr_bin, "alias", "list", config=cfg))
    assert "@example.com -> alice@example.com" in out
    sales = [l for l in out.splitlines() if l.startswith("sales@")][0]
    assert sorted(sales.split(" -> ")[1].split()) == [
        "alice@example.com", "bob@elsewhere.example", "partner@elsewhere.example"]
    fails(run(lightr_bin, "alias", "add", "alice@example.com", "x@elsewhere.example", config=cfg), 1)
    fails(run(lightr_bin, "alias", "add", "x@unknown.example", "alice@example.com", config=cfg), 1)
    fails(run(lightr_bin, "alias", "add", "sales@example.com", "not an address", config=cfg), 1)
    fails(run(lightr_bin, "alias", "add", "sales@example.com", config=cfg), 2)
    ok(run(lightr_bin, "alias", "remove", "sales@example.com", "bob@elsewhere.example", config=cfg))
    assert "bob@elsewhere.example" not in ok(run(lightr_bin, "alias", "list", config=cfg))
    ok(run(lightr_bin, "alias", "remove", "@example.com", config=cfg))
    ok(run(lightr_bin, "alias", "remove", "sales@example.com", config=cfg))
    assert ok(run(lightr_bin, "alias", "list", "example.com", config=cfg)) == ""
    fails(run(lightr_bin, "alias", "remove", "sales@example.com", config=cfg), 1)


def test_quickstart(lightr_bin, tmpdir_world):
    argon2 = pytest.importorskip("argon2")
    out = ok(run(lightr_bin, "quickstart", "owner@shop.example", cwd=tmpdir_world))
    cfgpath = os.path.join(tmpdir_world, "lightr.yaml")
    assert os.path.exists(cfgpath)
    assert "hostname: mail.shop.example" in open(cfgpath).read()
    pw = [l.split()[1] for l in out.splitlines() if l.strip().startswith("password:")][0]
    assert "MX   10 mail.shop.example." in out and "v=spf1 mx -all" in out
    assert "127.0.0.1:2525" in out
    # ./lightr.yaml is found without -c
    assert ok(run(lightr_bin, "config", "check", cwd=tmpdir_world)).strip() == "lightr.yaml: ok"
    assert "owner@shop.example" in ok(run(lightr_bin, "account", "list", cwd=tmpdir_world))
    con = sqlite3.connect(os.path.join(tmpdir_world, "lightr-data", "lightr.db"))
    h = con.execute("SELECT password_hash FROM accounts").fetchone()[0]
    con.close()
    assert argon2.PasswordHasher().verify(h, pw)
    fails(run(lightr_bin, "quickstart", "owner@shop.example", cwd=tmpdir_world), 1, "--force")
    fails(run(lightr_bin, "quickstart", "not-an-address", cwd=tmpdir_world), 1)


def test_commands_while_serving_and_backup(lightr_bin, tmpdir_world, server_factory):
    cfg, ports = write_config(tmpdir_world)
    srv = server_factory(config=cfg, wait_for=ports["mx"])
    ok(run(lightr_bin, "domain", "add", "live.example", config=cfg))
    for i in range(5):
        ok(run(lightr_bin, "account", "add", f"u{i}@live.example", config=cfg))
    bdir = os.path.join(tmpdir_world, "backups")
    os.mkdir(bdir)
    os.chmod(bdir, 0o777)
    dest = os.path.join(bdir, "copy.db")
    assert ok(run(lightr_bin, "backup", dest, config=cfg)) == f"backup written to {dest}\n"
    con = sqlite3.connect(dest)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert con.execute("SELECT count(*) FROM accounts").fetchone()[0] == 5
    con.close()
    fails(run(lightr_bin, "backup", dest, config=cfg), 1, "already exists")
    assert srv.proc.poll() is None
    assert srv.stop() == 0
    if os.geteuid() == 0:
        # no file of the data directory is left owned by root
        data = os.path.join(tmpdir_world, "data")
        for name in os.listdir(data):
            assert os.stat(os.path.join(data, name)).st_uid != 0, name


def test_serve_without_config_uses_defaults(lightr_bin, tmpdir_world, server_factory):
    srv = server_factory(cwd=tmpdir_world, wait_for=2525)
    assert os.path.isdir(os.path.join(tmpdir_world, "lightr-data"))
    assert os.path.exists(os.path.join(tmpdir_world, "lightr-data", "lightr.db"))
    for port in (2587, 2465, 2143, 2993, 8080):
        assert wait_port(port), port
    import smtplib
    with smtplib.SMTP("127.0.0.1", 2525, timeout=10) as s:
        code, _ = s.noop()
        assert code == 250
    srv.signal(signal.SIGTERM)
    assert srv.proc.wait(30) == 0
