"""lightr apikey create|list|revoke against the real binary: the token is printed once (first line
of stdout) and only its hash is stored, domain scope, revocation, and the usage errors (exit
statuses 0 ok, 1 failure, 2 usage)."""
import hashlib
import os
import re
import sqlite3

import pytest

from conftest import run, write_config

TOKEN_RE = re.compile(r"^lr_[a-z2-7]{40}$")


@pytest.fixture
def cfg(tmpdir_world):
    path, ports = write_config(tmpdir_world)
    return path


def ok(r):
    assert r.returncode == 0, f"exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    return r.stdout


def fails(r, status=1, text=None):
    assert r.returncode == status, f"exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    if text:
        assert text in r.stderr, r.stderr
    return r.stderr


def db_rows(tmpdir_world, sql):
    con = sqlite3.connect(os.path.join(tmpdir_world, "data", "lightr.db"))
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def list_rows(out):
    lines = out.strip().splitlines()
    assert lines[0].split()[:3] == ["ID", "PREFIX", "SCOPE"], out
    return [l.split() for l in lines[1:]]


def test_create_list_revoke(lightr_bin, tmpdir_world, cfg):
    ok(run(lightr_bin, "domain", "add", "example.com", config=cfg))
    r = run(lightr_bin, "apikey", "create", "--name", "ci", config=cfg)
    out = ok(r)
    admin_token = out.splitlines()[0]
    assert TOKEN_RE.match(admin_token), out
    assert "shown only this once" in r.stderr
    assert "scope admin" in out and "name ci" in out
    admin_id = int(re.search(r"\bid (\d+)", out).group(1))

    out = ok(run(lightr_bin, "apikey", "create", "--domain", "Example.COM", config=cfg))
    dom_token = out.splitlines()[0]
    assert TOKEN_RE.match(dom_token) and dom_token != admin_token
    assert "scope example.com" in out
    dom_id = int(re.search(r"\bid (\d+)", out).group(1))

    # only the SHA-256 and the 12-character prefix are stored, never the token
    rows = db_rows(tmpdir_world, "SELECT id, hash, prefix FROM api_keys ORDER BY id")
    assert rows == [(admin_id, hashlib.sha256(admin_token.encode()).hexdigest(), admin_token[:12]),
                    (dom_id, hashlib.sha256(dom_token.encode()).hexdigest(), dom_token[:12])]
    with open(os.path.join(tmpdir_world, "data", "lightr.db"), "rb") as f:
        assert admin_token.encode() not in f.read()

    rows = list_rows(ok(run(lightr_bin, "apikey", "list", config=cfg)))
    assert [r[0] for r in rows] == [str(admin_id), str(dom_id)]
    assert rows[0][1] == admin_token[:12] + "..." and rows[0][2] == "admin" and rows[0][3] == "ci"
    assert rows[1][2] == "example.com" and rows[1][3] == "-"
    assert rows[0][-1] == "-" and rows[1][-1] == "-"

    rows = list_rows(ok(run(lightr_bin, "apikey", "list", "--domain", "example.com", config=cfg)))
    assert [r[0] for r in rows] == [str(dom_id)]

    assert f"api key {dom_id} revoked" in ok(run(lightr_bin, "apikey", "revoke", str(dom_id),
                                                 config=cfg))
    rows = list_rows(ok(run(lightr_bin, "apikey", "list", config=cfg)))
    assert rows[1][-1] != "-" and re.match(r"\d{4}-\d\d-\d\dT", rows[1][-1]), rows
    assert rows[0][-1] == "-"
    revoked = db_rows(tmpdir_world, f"SELECT revoked FROM api_keys WHERE id = {dom_id}")[0][0]
    assert revoked > 0
    # revoking twice keeps the first time
    ok(run(lightr_bin, "apikey", "revoke", str(dom_id), config=cfg))
    assert db_rows(tmpdir_world, f"SELECT revoked FROM api_keys WHERE id = {dom_id}")[0][0] == revoked

    # removing the domain removes its keys
    ok(run(lightr_bin, "domain", "remove", "example.com", config=cfg))
    rows = list_rows(ok(run(lightr_bin, "apikey", "list", config=cfg)))
    assert [r[0] for r in rows] == [str(admin_id)]


def test_errors(lightr_bin, tmpdir_world, cfg):
    fails(run(lightr_bin, "apikey", "create", "--domain", "nope.example", config=cfg), 1,
          "no domain nope.example")
    assert db_rows(tmpdir_world, "SELECT count(*) FROM api_keys") == [(0,)]
    fails(run(lightr_bin, "apikey", "create", "--domain", "bad domain!", config=cfg), 1)
    fails(run(lightr_bin, "apikey", "list", "--domain", "nope.example", config=cfg), 1,
          "no domain nope.example")
    fails(run(lightr_bin, "apikey", "revoke", "999", config=cfg), 1, "no API key 999")
    assert ok(run(lightr_bin, "apikey", "list", config=cfg)) == ""


def test_usage(lightr_bin, cfg):
    assert "apikey" in ok(run(lightr_bin, "--help"))
    fails(run(lightr_bin, "apikey", config=cfg), 2)
    fails(run(lightr_bin, "apikey", "frob", config=cfg), 2, "unknown command 'apikey frob'")
    assert "usage: lightr apikey create" in ok(run(lightr_bin, "apikey", "create", "--help"))
    fails(run(lightr_bin, "apikey", "create", "extra", config=cfg), 2, "unexpected argument")
    fails(run(lightr_bin, "apikey", "create", "--domain", config=cfg), 2, "--domain needs a value")
    fails(run(lightr_bin, "apikey", "create", "--bogus", config=cfg), 2, "unknown option --bogus")
    fails(run(lightr_bin, "apikey", "create", "--name", "x" * 129, config=cfg), 2, "--name")
    fails(run(lightr_bin, "apikey", "create", "--name", "a\nb", config=cfg), 2, "--name")
    fails(run(lightr_bin, "apikey", "list", "extra", config=cfg), 2, "unexpected argument")
    fails(run(lightr_bin, "apikey", "revoke", config=cfg), 2, "missing argument")
    for bad in ("abc", "0", "1.5", "99999999999999999999999", ""):
        fails(run(lightr_bin, "apikey", "revoke", bad, config=cfg), 2, "ID must be")
    fails(run(lightr_bin, "apikey", "revoke", "-1", config=cfg), 2, "unknown option -1")
