"""The REST API (issue 6), management side, end to end: the real binary on a loopback HTTP
listener, driven with Python's urllib and with curl. Every route of the contract with its success
and error statuses, the router's order (401 before 404/405/403), JSON input checks (415, 400
invalid_json incl. duplicate keys, 422 invalid_type/missing_field/unknown_field/too_long/
out_of_range), 413 for oversized bodies, scope isolation between two domain keys, revocation,
pagination, and the OpenAPI document against the router.

API keys come from `lightr apikey create` (the token on the first stdout line) and from
POST /api/v1/apikeys. test_api_send.py imports the helpers of this file."""
import json
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import imaplib
import pytest

from conftest import Server, _bin, free_port, run, wait_port, write_config

IMAP_EXTRA = "imap:\n  plaintext_auth_loopback: true\n  auth_failure_delay: 0s\n"
ROUTE_404 = {"error": {"code": "not_found", "message": "no such API route"}}


# ---------------------------------------------------------------- helpers (shared)

class Resp:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    @property
    def json(self):
        return json.loads(self.body)

    @property
    def code(self):
        """The error code of an error body."""
        return self.json["error"]["code"]

    @property
    def field(self):
        return self.json["error"].get("field")

    def header(self, name):
        return self.headers.get(name.lower())

    def __repr__(self):
        return f"<HTTP {self.status} {self.body[:600]!r}>"


class Api:
    """A client of one server: urllib for most requests, curl() for the rest."""

    def __init__(self, port):
        self.port = port
        self.base = f"http://127.0.0.1:{port}"

    def call(self, method, path, body=None, key=None, raw=None, ctype="application/json",
             headers=None, timeout=120):
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
        r = urllib.request.Request(self.base + path, data=data, method=method)
        if key is not None:
            r.add_header("Authorization", f"Bearer {key}")
        if data is not None and ctype:
            r.add_header("Content-Type", ctype)
        for k, v in (headers or {}).items():
            r.add_header(k, v)
        try:
            with urllib.request.urlopen(r, timeout=timeout) as resp:
                return Resp(resp.status, {k.lower(): v for k, v in resp.headers.items()},
                            resp.read())
        except urllib.error.HTTPError as e:
            return Resp(e.code, {k.lower(): v for k, v in e.headers.items()}, e.read())

    def get(self, path, key, **kw):
        return self.call("GET", path, key=key, **kw)

    def post(self, path, body, key, **kw):
        return self.call("POST", path, body, key=key, **kw)

    def patch(self, path, body, key, **kw):
        return self.call("PATCH", path, body, key=key, **kw)

    def delete(self, path, key, **kw):
        return self.call("DELETE", path, key=key, **kw)

    def curl(self, method, path, key=None, data_file=None, data=None, headers=(), extra=()):
        """One request with the curl command; returns Resp (headers lower-cased)."""
        with tempfile.TemporaryDirectory() as d:
            hdr, out = os.path.join(d, "h"), os.path.join(d, "b")
            cmd = ["curl", "-sS", "--max-time", "300", "-X", method, "-D", hdr, "-o", out,
                   "-w", "%{http_code}"]
            if key is not None:
                cmd += ["-H", f"Authorization: Bearer {key}"]
            for h in headers:
                cmd += ["-H", h]
            if data_file is not None:
                cmd += ["--data-binary", "@" + data_file]
            elif data is not None:
                cmd += ["--data-binary", data]
            cmd += list(extra) + [self.base + path]
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=330)
            assert p.returncode == 0, f"curl failed: {p.returncode} {p.stderr}"
            status = int(p.stdout.strip())
            heads = {}
            with open(hdr, "rb") as f:
                for line in f.read().decode("latin-1").split("\r\n"):
                    if ":" in line:
                        k, v = line.split(":", 1)
                        heads[k.strip().lower()] = v.strip()
            with open(out, "rb") as f:
                body = f.read()
            return Resp(status, heads, body)


def q(s):
    """A path segment, percent-encoded."""
    return urllib.parse.quote(s, safe="")


def ok(r, status=200):
    assert r.status == status, r
    return r.json if r.body else None


def fails(r, status, code=None, field=None):
    assert r.status == status, r
    e = r.json["error"]
    assert isinstance(e.get("message"), str)
    if code is not None:
        assert e["code"] == code, r
    if field is not None:
        assert e.get("field") == field, r
    return e


def _ensure_service_user():
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("lightr")
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                            "/usr/sbin/nologin", "lightr"], check=True)


class ApiWorld:
    """A data dir with a.example (alice, bob) and b.example (carol), an admin key and one key per
    domain, and a running server with an HTTP listener. delivery: extra lines under delivery:."""

    PASSWORDS = {"alice@a.example": "alice-password", "bob@a.example": "bob-password",
                 "carol@b.example": "carol-password"}

    def __init__(self, delivery=""):
        self.bin = _bin()
        if not os.access(self.bin, os.X_OK):
            pytest.fail(f"{self.bin} is not built (make san)")
        _ensure_service_user()
        self.dir = tempfile.mkdtemp(prefix="lightr-api-", dir="/tmp")
        os.chmod(self.dir, 0o755)
        self.srv = None
        try:
            self._setup(delivery)
        except BaseException:
            self.stop()
            raise

    def _setup(self, delivery):
        extra = IMAP_EXTRA + "delivery:\n  retry_schedule: 1s\n  connect_timeout: 2s\n" + delivery
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

    def cli(self, *a, stdin=None, check=True):
        r = run(self.bin, *a, config=self.cfg, stdin=stdin)
        if check:
            assert r.returncode == 0, f"lightr {' '.join(a)}: {r.returncode}\n{r.stdout}{r.stderr}"
        return r.stdout if check else r

    def apikey(self, *args):
        out = self.cli("apikey", "create", *args)
        first = out.splitlines()[0].strip()
        m = re.search(r"\blr_[A-Za-z0-9_\-]+", first)
        assert m, f"no token on the first line of `apikey create`: {out!r}"
        return m.group(0)

    def imap(self, user):
        s = imaplib.IMAP4("127.0.0.1", self.ports["imap"], timeout=60)
        s.login(user, self.PASSWORDS[user])
        return s

    def stop(self):
        if self.srv:
            rc = self.srv.stop()
            self.srv = None
            if os.environ.get("LIGHTR_TEST_KEEP"):
                print(f"kept {self.dir} (server exit {rc})")
                return
        shutil.rmtree(self.dir, ignore_errors=True)


def wait_for(pred, timeout=20, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def world():
    # a route to a port nobody listens on: mail for dead.example stays deferred in the queue
    w = ApiWorld(delivery=f'  routes: "dead.example=127.0.0.1:{free_port()}"\n')
    yield w
    w.stop()


@pytest.fixture
def api(world):
    return world.api


# ---------------------------------------------------------------- meta, router, authentication

def test_healthz_without_key(api):
    r = api.get("/healthz", None)
    assert r.status == 200 and r.json["status"] == "ok", r
    r = api.curl("GET", "/healthz")
    assert r.status == 200 and r.json["status"] == "ok"
    assert r.header("content-type").startswith("application/json")


def test_401_before_anything_else(world, api):
    # no key, a garbage key, a non-bearer scheme: 401 on real routes, unknown paths and wrong
    # methods alike, with WWW-Authenticate
    for path, method in (("/api/v1/domains", "GET"), ("/api/v1/no/such/thing", "GET"),
                         ("/api/v1/domains", "PUT"), ("/api/v1/apikeys", "GET"),
                         ("/api/v1/messages", "POST"), ("/api/v1", "GET")):
        for auth in (None, "Bearer lr_garbage", "Bearer ", "Basic YWRtaW46YWRtaW4=",
                     "Bearer " + "x" * 5000):
            h = {"Authorization": auth} if auth is not None else {}
            r = api.call(method, path, headers=h, body={} if method in ("POST", "PUT") else None)
            fails(r, 401, "unauthorized")
            assert r.header("www-authenticate", ) is not None, r.headers
    r = api.curl("GET", "/api/v1/domains", key="lr_not-a-key")
    fails(r, 401, "unauthorized")
    # the right key with a lower-case scheme works
    r = api.get("/api/v1/domains", None, headers={"Authorization": "bearer " + world.admin})
    ok(r)


def test_router_404_and_405(world, api):
    for path in ("/api/v1/nothing", "/api/v1/domains/a.example/nothing", "/api/v1/",
                 "/api/v2/domains", "/api/v1/domains/a.example/dkim/rotate/x"):
        r = api.get(path, world.admin)
        assert r.status == 404 and r.json == ROUTE_404, (path, r)
        r = api.get(path, world.key_a)
        assert r.status == 404 and r.json == ROUTE_404, (path, r)
    for method, path in (("PUT", "/api/v1/domains"), ("DELETE", "/api/v1/domains"),
                         ("PUT", "/api/v1/domains/a.example"),
                         ("POST", "/api/v1/domains/a.example"),
                         ("GET", "/api/v1/messages"), ("DELETE", "/api/v1/messages/raw"),
                         ("PUT", "/api/v1/accounts/alice@a.example"),
                         ("GET", "/api/v1/domains/a.example/dkim/rotate"),
                         ("PATCH", "/api/v1/apikeys"), ("POST", "/healthz")):
        r = api.call(method, path, key=world.admin,
                     body={} if method in ("POST", "PUT", "PATCH") else None)
        fails(r, 405, "method_not_allowed")
    # 405 comes before the admin check
    fails(api.call("PUT", "/api/v1/apikeys", {}, key=world.key_a), 405, "method_not_allowed")


def test_json_input_errors(world, api):
    k = world.admin
    # Content-Type
    fails(api.call("POST", "/api/v1/domains", raw=b'{"name": "ct.example"}', ctype=None,
                   key=k), 415, "unsupported_media_type")
    fails(api.call("POST", "/api/v1/domains", raw=b'{"name": "ct.example"}',
                   ctype="text/plain", key=k), 415, "unsupported_media_type")
    # parameters after the media type are fine
    r = api.call("POST", "/api/v1/domains", raw=b'{"name": "ct.example"}',
                 ctype="application/json; charset=utf-8", key=k)
    ok(r, 201)
    # malformed JSON
    for raw in (b"{", b'{"name": }', b"", b"nul", b'{"name": "x.example",}', b"\xff\xfe",
                b'{"name": "a\x01"}', b'{"name": "x"} trailing'):
        fails(api.call("POST", "/api/v1/domains", raw=raw, key=k), 400, "invalid_json")
    # duplicate keys
    fails(api.call("POST", "/api/v1/domains", raw=b'{"name": "d1.example", "name": "d2.example"}',
                   key=k), 400, "invalid_json")
    fails(api.call("POST", "/api/v1/accounts",
                   raw=b'{"address": "dup@a.example", "quota": 1, "quota": 2}', key=k),
          400, "invalid_json")
    assert api.get("/api/v1/accounts/dup@a.example", k).status == 404
    # not an object (scalars: test_json_scalar_body)
    for raw in (b"[]", b'["name"]'):
        fails(api.call("POST", "/api/v1/domains", raw=raw, key=k), 422, "invalid_type")
    # wrong types
    fails(api.post("/api/v1/domains", {"name": 5}, k), 422, "invalid_type", "name")
    fails(api.post("/api/v1/accounts", {"address": "t1@a.example", "quota": "10"}, k), 422,
          "invalid_type", "quota")
    fails(api.post("/api/v1/accounts", {"address": "t1@a.example", "disabled": "yes"}, k), 422,
          "invalid_type", "disabled")
    fails(api.post("/api/v1/accounts", {"address": ["t1@a.example"]}, k), 422, "invalid_type",
          "address")
    fails(api.post("/api/v1/aliases", {"address": "al@a.example", "targets": "x@a.example"}, k),
          422, "invalid_type", "targets")
    fails(api.post("/api/v1/domains/a.example/dkim", {"bits": 2048.5, "algorithm": "rsa"}, k),
          422, "invalid_type", "bits")
    fails(api.post("/api/v1/apikeys", {"name": True}, k), 422, "invalid_type", "name")
    # missing fields
    fails(api.post("/api/v1/domains", {}, k), 422, "missing_field", "name")
    fails(api.post("/api/v1/accounts", {"password": "long-enough-pw"}, k), 422, "missing_field",
          "address")
    fails(api.post("/api/v1/aliases", {"address": "al@a.example"}, k), 422, "missing_field",
          "targets")
    # unknown fields
    fails(api.post("/api/v1/domains", {"name": "uf.example", "colour": "red"}, k), 422,
          "unknown_field", "colour")
    fails(api.patch("/api/v1/accounts/alice@a.example", {"address": "x@a.example"}, k), 422,
          "unknown_field", "address")
    fails(api.post("/api/v1/apikeys", {"scope": "admin"}, k), 422, "unknown_field", "scope")
    assert api.get("/api/v1/domains/uf.example", k).status == 404
    # too long
    fails(api.post("/api/v1/apikeys", {"name": "n" * 129}, k), 422, "too_long", "name")
    fails(api.post("/api/v1/domains", {"name": "a" * 300 + ".example"}, k), 422, "too_long",
          "name")
    # out of range
    fails(api.post("/api/v1/accounts", {"address": "t2@a.example", "quota": -1}, k), 422,
          "out_of_range", "quota")
    fails(api.post("/api/v1/domains/a.example/dkim/rotate", {"keep_days": 3651}, k), 422,
          "out_of_range", "keep_days")
    fails(api.post("/api/v1/domains/a.example/dkim", {"algorithm": "rsa", "bits": 1024}, k),
          422, "out_of_range", "bits")
    # the same through curl, with a file
    with tempfile.NamedTemporaryFile("wb", suffix=".json", delete=False) as f:
        f.write(b'{"name": "c1.example", "name": "c1.example"}')
    try:
        r = api.curl("POST", "/api/v1/domains", key=k, data_file=f.name,
                     headers=["Content-Type: application/json"])
        fails(r, 400, "invalid_json")
    finally:
        os.unlink(f.name)


def test_json_scalar_body(world, api):
    # valid JSON (RFC 8259 allows any value at the top) that is not an object: 422 invalid_type
    # as the contract says (http_body_object), not 400 invalid_json
    for raw in (b'"x"', b"1", b"null", b"true"):
        fails(api.call("POST", "/api/v1/domains", raw=raw, key=world.admin), 422,
              "invalid_type")


def _raw_http(port, head, send_body=b"", read_timeout=20):
    """Sends head (+ send_body) on a fresh connection; returns (status, body) of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=read_timeout) as s:
        s.sendall(head + send_body)
        data = b""
        while True:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            data += chunk
            if b"\r\n\r\n" in data:
                hdr, _, rest = data.partition(b"\r\n\r\n")
                m = re.search(rb"(?i)content-length:\s*(\d+)", hdr)
                if m and len(rest) >= int(m.group(1)):
                    break
    hdr, _, body = data.partition(b"\r\n\r\n")
    status = int(hdr.split(b" ", 2)[1]) if hdr else 0
    return status, body


def test_oversized_bodies_413(world, api, tmp_path):
    k = world.admin
    # 1 MiB + 1 for a normal route: curl sends Expect: 100-continue and gets 413 up front
    big = tmp_path / "big.json"
    body = b'{"name": "' + b"x" * (1024 * 1024) + b'.example"}'
    assert len(body) > 1024 * 1024
    big.write_bytes(body)
    r = api.curl("POST", "/api/v1/domains", key=k, data_file=str(big),
                 headers=["Content-Type: application/json"])
    fails(r, 413, "payload_too_large")
    # without Expect the body is on its way when 413 comes; also without a key: the size
    # limit is the transport's, 413 either way
    r = api.curl("POST", "/api/v1/accounts", key=k, data_file=str(big),
                 headers=["Content-Type: application/json", "Expect:"])
    fails(r, 413, "payload_too_large")
    # just below the limit is read and judged on its content (422, not 413)
    fits = b'{"name": "' + b"y" * (1024 * 1024 - 100) + b'"}'
    r = api.call("POST", "/api/v1/domains", raw=fits, key=k)
    fails(r, 422, "too_long", "name")
    # sends allow 30 MiB: a declared 31 MiB is refused before any of it is sent
    head = (f"POST /api/v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {k}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {31 * 1024 * 1024}\r\n\r\n").encode()
    status, rbody = _raw_http(world.ports["http"], head)
    assert status == 413, rbody
    assert json.loads(rbody)["error"]["code"] == "payload_too_large"
    # ... while 2 MiB declared for a send is not refused for its size (the body is read)
    small = json.dumps({"from": "alice@a.example", "to": "bob@a.example", "subject": "s",
                        "text": "z" * (2 * 1024 * 1024)}).encode()
    r = api.call("POST", "/api/v1/messages/raw", raw=small, key=k)
    assert r.status != 413, r
    fails(r, 422, "unknown_field")
    # the server is still fine
    ok(api.get("/healthz", None))


def test_oversized_chunked_413(world, api, tmp_path):
    # chunked (no Content-Length): 413 once the body grows past the limit, not a dropped
    # connection
    big = tmp_path / "big.json"
    big.write_bytes(b'{"name": "' + b"x" * (1024 * 1024 + 10) + b'.example"}')
    for expect in ([], ["Expect:"]):
        r = api.curl("POST", "/api/v1/domains", key=world.admin, data_file=str(big),
                     headers=["Content-Type: application/json", "Transfer-Encoding: chunked"]
                     + expect)
        fails(r, 413, "payload_too_large")
    ok(api.get("/healthz", None))


# ---------------------------------------------------------------- domains and DKIM

def dns_records(zone):
    """{(owner, type): [joined TXT value or MX data]} from `lightr domain dns` output."""
    recs = {}
    for line in zone.splitlines():
        if not line or line.startswith(";"):
            continue
        owner, cls, typ, data = line.split("\t", 3)
        if typ == "TXT":
            data = "".join(re.findall(r'"([^"]*)"', data))
        recs.setdefault((owner, typ), []).append(data)
    return recs


def test_domains(world, api):
    k = world.admin
    r = ok(api.post("/api/v1/domains", {"name": "New-Domain.Example"}, k), 201)
    assert r["name"] == "new-domain.example"
    assert r["accounts"] == 0 and r["aliases"] == 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", r["created"])
    assert sorted((d["algorithm"], d["bits"], d["state"]) for d in r["dkim"]) == [
        ("ed25519", 256, "active"), ("rsa", 2048, "active")]
    assert all(d["public_key"] and d["retire_at"] is None for d in r["dkim"])
    assert "PRIVATE" not in json.dumps(r)
    fails(api.post("/api/v1/domains", {"name": "new-domain.example"}, k), 409, "conflict")
    fails(api.post("/api/v1/domains", {"name": "not a domain"}, k), 422, "invalid", "name")
    fails(api.post("/api/v1/domains", {"name": "x.example"}, world.key_a), 403, "forbidden")
    assert api.get("/api/v1/domains/x.example", k).status == 404

    g = ok(api.get("/api/v1/domains/new-domain.example", k))
    assert g == {k2: v for k2, v in r.items() if k2 != "dkim"}
    ok(api.get("/api/v1/domains/NEW-DOMAIN.example", k))
    fails(api.get("/api/v1/domains/missing.example", k), 404, "not_found")
    fails(api.get("/api/v1/domains/..bad..", k), 404, "not_found")
    names = [d["name"] for d in ok(api.get("/api/v1/domains", k))["data"]]
    assert {"a.example", "b.example", "new-domain.example"} <= set(names)
    assert names == sorted(names)
    a = ok(api.get("/api/v1/domains/a.example", k))
    assert a["accounts"] == 2

    # DNS: the same as the CLI prints
    dns = ok(api.get("/api/v1/domains/new-domain.example/dns", k))
    cli = world.cli("domain", "dns", "new-domain.example")
    assert dns["domain"] == "new-domain.example"
    assert dns["zone"] == cli
    recs = dns_records(cli)
    got = {}
    for rec in dns["records"]:
        assert set(rec) == {"name", "type", "value", "comment"}
        got.setdefault((rec["name"], rec["type"]), []).append(rec["value"])
    assert got == recs
    assert got[("new-domain.example.", "MX")] == ["10 mail.test.example."]
    fails(api.get("/api/v1/domains/missing.example/dns", k), 404, "not_found")

    # DKIM keys
    keys = ok(api.get("/api/v1/domains/new-domain.example/dkim", k))
    assert keys["next_cursor"] is None and len(keys["data"]) == 2
    assert {x["selector"] for x in keys["data"]} == {x["selector"] for x in r["dkim"]}
    for x in keys["data"]:
        assert set(x) == {"selector", "algorithm", "bits", "state", "public_key", "created",
                          "retire_at"}
        assert f"v=DKIM1; k={x['algorithm']}; p={x['public_key']}" in recs[
            (f"{x['selector']}._domainkey.new-domain.example.", "TXT")]
    big = ok(api.post("/api/v1/domains/new-domain.example/dkim",
                      {"algorithm": "rsa", "bits": 3072, "selector": "big"}, k), 201)
    assert (big["selector"], big["algorithm"], big["bits"], big["state"]) == (
        "big", "rsa", 3072, "active")
    fails(api.post("/api/v1/domains/new-domain.example/dkim", {"selector": "big"}, k), 409,
          "conflict")
    ed = ok(api.call("POST", "/api/v1/domains/new-domain.example/dkim", key=k, raw=b"",
                     ctype=None), 201)
    assert ed["algorithm"] == "ed25519" and ed["bits"] == 256
    fails(api.post("/api/v1/domains/new-domain.example/dkim", {"algorithm": "dsa"}, k), 422,
          "invalid", "algorithm")
    fails(api.post("/api/v1/domains/new-domain.example/dkim", {"bits": 2048}, k), 422,
          "invalid", "bits")
    fails(api.post("/api/v1/domains/new-domain.example/dkim", {"selector": "A B"}, k), 422,
          "invalid", "selector")
    fails(api.post("/api/v1/domains/missing.example/dkim", {}, k), 404, "not_found")
    assert len(ok(api.get("/api/v1/domains/new-domain.example/dkim", k))["data"]) == 4
    page = ok(api.get("/api/v1/domains/new-domain.example/dkim?limit=3", k))
    assert len(page["data"]) == 3 and page["next_cursor"]
    rot = ok(api.post("/api/v1/domains/new-domain.example/dkim/rotate", {"keep_days": 0}, k))
    states = sorted(x["state"] for x in rot["keys"])
    assert states.count("active") == 2 and len(rot["keys"]) == 6, rot
    rot2 = ok(api.call("POST", "/api/v1/domains/new-domain.example/dkim/rotate", key=k,
                       raw=b"", ctype=None))
    assert len(rot2["keys"]) == 8
    fails(api.post("/api/v1/domains/missing.example/dkim/rotate", {}, k), 404, "not_found")
    # a domain key manages its own domain's DKIM keys
    ok(api.get("/api/v1/domains/a.example/dkim", world.key_a))
    ok(api.get("/api/v1/domains/a.example/dns", world.key_a))

    # delete: 409 with accounts unless forced; admin only
    ok(api.post("/api/v1/accounts", {"address": "u@new-domain.example"}, k), 201)
    fails(api.delete("/api/v1/domains/new-domain.example", k), 409, "conflict")
    fails(api.delete("/api/v1/domains/a.example", world.key_a), 403, "forbidden")
    fails(api.delete("/api/v1/domains/new-domain.example?force=maybe", k), 400, "bad_request")
    r = api.delete("/api/v1/domains/new-domain.example?force=true", k)
    assert r.status == 204 and r.body == b"", r
    fails(api.get("/api/v1/domains/new-domain.example", k), 404, "not_found")
    fails(api.get("/api/v1/accounts/u@new-domain.example", k), 404, "not_found")
    fails(api.delete("/api/v1/domains/new-domain.example", k), 404, "not_found")
    ok(api.post("/api/v1/domains", {"name": "empty.example"}, k), 201)
    assert api.delete("/api/v1/domains/empty.example", k).status == 204


# ---------------------------------------------------------------- accounts and aliases

def test_accounts(world, api):
    k = world.admin
    r = ok(api.post("/api/v1/accounts", {"address": "Dave@A.Example"}, k), 201)
    assert r["address"] == "Dave@a.example" and r["domain"] == "a.example"
    assert re.fullmatch(r"[A-Za-z0-9]{24}", r["password"]), r
    assert (r["quota"], r["used"], r["disabled"], r["domain_admin"]) == (0, 0, False, False)
    generated = r["password"]
    s = imaplib.IMAP4("127.0.0.1", world.ports["imap"], timeout=30)
    s.login("Dave@a.example", generated)
    s.logout()
    r = ok(api.post("/api/v1/accounts", {"address": "erin@a.example", "password": "erin-secret-1",
                                         "quota": 1048576, "disabled": True,
                                         "domain_admin": True}, world.key_a), 201)
    assert "password" not in r
    assert (r["quota"], r["disabled"], r["domain_admin"]) == (1048576, True, True)
    fails(api.post("/api/v1/accounts", {"address": "erin@a.example"}, k), 409, "conflict")
    fails(api.post("/api/v1/accounts", {"address": "f@a.example", "password": "short"}, k), 422,
          "invalid", "password")
    fails(api.post("/api/v1/accounts", {"address": "f@a.example", "password": "long\tenough"},
                   k), 422, "invalid", "password")
    fails(api.post("/api/v1/accounts", {"address": "f@notours.example"}, k), 422, "invalid",
          "address")
    fails(api.post("/api/v1/accounts", {"address": "no-at-sign"}, k), 422, "invalid", "address")
    fails(api.post("/api/v1/accounts", {"address": "f@b.example"}, world.key_a), 403, "forbidden")

    g = ok(api.get("/api/v1/accounts/erin@a.example", k))
    assert set(g) == {"address", "domain", "quota", "used", "disabled", "domain_admin",
                      "created"}
    assert "hash" not in json.dumps(g).lower() and "argon" not in json.dumps(g)
    fails(api.get("/api/v1/accounts/nobody@a.example", k), 404, "not_found")
    fails(api.get("/api/v1/accounts/not-an-address", k), 404, "not_found")

    p = ok(api.patch("/api/v1/accounts/erin@a.example",
                     {"quota": 0, "disabled": False, "password": "erin-secret-2"}, k))
    assert (p["quota"], p["disabled"], p["domain_admin"]) == (0, False, True)
    s = imaplib.IMAP4("127.0.0.1", world.ports["imap"], timeout=30)
    s.login("erin@a.example", "erin-secret-2")
    s.logout()
    fails(api.patch("/api/v1/accounts/erin@a.example", {"password": "x"}, k), 422, "invalid",
          "password")
    fails(api.patch("/api/v1/accounts/nobody@a.example", {"quota": 5}, k), 404, "not_found")
    p = ok(api.patch("/api/v1/accounts/erin@a.example", {}, world.key_a))
    assert p["domain_admin"] is True

    lst = ok(api.get("/api/v1/accounts?domain=a.example", k))
    addrs = [x["address"] for x in lst["data"]]
    assert {"alice@a.example", "bob@a.example", "Dave@a.example", "erin@a.example"} <= set(addrs)
    assert all(a.endswith("@a.example") for a in addrs)
    alla = [x["address"] for x in ok(api.get("/api/v1/accounts", k))["data"]]
    assert "carol@b.example" in alla and "alice@a.example" in alla
    fails(api.get("/api/v1/accounts?domain=bad..domain", k), 422, "invalid", "domain")

    assert api.delete("/api/v1/accounts/Dave@a.example", k).status == 204
    fails(api.get("/api/v1/accounts/Dave@a.example", k), 404, "not_found")
    fails(api.delete("/api/v1/accounts/Dave@a.example", k), 404, "not_found")
    assert api.delete("/api/v1/accounts/erin@a.example", world.key_a).status == 204


def test_aliases(world, api):
    k = world.admin
    r = ok(api.post("/api/v1/aliases", {"address": "info@a.example",
                                         "targets": ["alice@a.example"]}, k), 201)
    assert r == {"address": "info@a.example", "targets": ["alice@a.example"]}
    r = ok(api.post("/api/v1/aliases", {"address": "info@a.example",
                                         "targets": ["bob@a.example", "x@remote.example"]},
                    world.key_a), 201)
    assert sorted(r["targets"]) == ["alice@a.example", "bob@a.example", "x@remote.example"]
    c = ok(api.post("/api/v1/aliases", {"address": "@a.example", "targets": ["alice@a.example"]},
                    k), 201)
    assert c["address"] == "@a.example"
    assert ok(api.get("/api/v1/aliases/%40a.example", k))["address"] == "@a.example"
    assert ok(api.get("/api/v1/aliases/@a.example", k))["address"] == "@a.example"
    g = ok(api.get("/api/v1/aliases/info@a.example", k))
    assert sorted(g["targets"]) == sorted(r["targets"])
    fails(api.get("/api/v1/aliases/none@a.example", k), 404, "not_found")
    fails(api.post("/api/v1/aliases", {"address": "z@a.example", "targets": []}, k), 422,
          "out_of_range", "targets")
    fails(api.post("/api/v1/aliases", {"address": "z@a.example",
                                       "targets": ["t@a.example"] * 101}, k), 422, "out_of_range",
          "targets")
    fails(api.post("/api/v1/aliases", {"address": "z@a.example", "targets": ["nope"]}, k), 422,
          "invalid", "targets[0]")
    fails(api.post("/api/v1/aliases", {"address": "z@a.example", "targets": [1]}, k), 422,
          "invalid_type", "targets[0]")
    fails(api.post("/api/v1/aliases", {"address": "z@notours.example",
                                       "targets": ["t@a.example"]}, k), 422, "invalid", "address")
    lst = ok(api.get("/api/v1/aliases?domain=a.example", k))
    assert {x["address"] for x in lst["data"]} == {"info@a.example", "@a.example"}
    assert len(ok(api.get("/api/v1/aliases", world.key_a))["data"]) == 2

    r = api.delete("/api/v1/aliases/info@a.example?target=bob@a.example", k)
    assert r.status == 204, r
    assert sorted(ok(api.get("/api/v1/aliases/info@a.example", k))["targets"]) == [
        "alice@a.example", "x@remote.example"]
    fails(api.delete("/api/v1/aliases/info@a.example?target=bad", k), 400, "bad_request",
          "target")
    assert api.delete("/api/v1/aliases/info@a.example", world.key_a).status == 204
    fails(api.get("/api/v1/aliases/info@a.example", k), 404, "not_found")
    fails(api.delete("/api/v1/aliases/info@a.example", k), 404, "not_found")
    assert api.delete("/api/v1/aliases/%40a.example", k).status == 204
    assert ok(api.get("/api/v1/aliases?domain=a.example", k))["data"] == []


def test_pagination_walk(world, api):
    k = world.admin
    ok(api.post("/api/v1/domains", {"name": "page.example"}, k), 201)
    want = {f"user{i:02d}@page.example" for i in range(25)}
    for a in sorted(want):
        ok(api.post("/api/v1/accounts", {"address": a, "password": "page-password"}, k), 201)
    seen, cursor, pages = [], None, []
    while True:
        path = "/api/v1/accounts?domain=page.example&limit=10"
        if cursor:
            path += "&cursor=" + urllib.parse.quote(cursor)
        # alternate urllib and curl
        r = api.get(path, k) if len(pages) % 2 == 0 else api.curl("GET", path, key=k)
        page = ok(r)
        assert set(page) == {"data", "next_cursor"}
        pages.append(len(page["data"]))
        seen += [x["address"] for x in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert isinstance(cursor, str) and cursor
        assert len(pages) < 10
    assert pages == [10, 10, 5]
    assert len(seen) == len(set(seen)) == 25 and set(seen) == want
    # limits and cursors
    fails(api.get("/api/v1/accounts?domain=page.example&limit=0", k), 400, "bad_request",
          "limit")
    fails(api.get("/api/v1/accounts?domain=page.example&limit=abc", k), 400, "bad_request",
          "limit")
    fails(api.get("/api/v1/accounts?domain=page.example&limit=1001", k), 400, "bad_request",
          "limit")
    fails(api.get("/api/v1/accounts?domain=page.example&cursor=garbage", k), 400,
          "bad_request", "cursor")
    allp = ok(api.get("/api/v1/accounts?domain=page.example", k))
    assert len(allp["data"]) == 25 and allp["next_cursor"] is None
    one = ok(api.get("/api/v1/accounts?domain=page.example&limit=25", k))
    assert one["next_cursor"] is None
    # a cursor whose item went meanwhile continues after it
    first = ok(api.get("/api/v1/accounts?domain=page.example&limit=10", k))
    assert api.delete("/api/v1/accounts/" + q(first["data"][-1]["address"]), k).status == 204
    nxt = ok(api.get("/api/v1/accounts?domain=page.example&limit=10&cursor="
                     + urllib.parse.quote(first["next_cursor"]), k))
    assert nxt["data"][0]["address"] == sorted(want)[10]
    ok(api.delete("/api/v1/domains/page.example?force=true", k), 204)


# ---------------------------------------------------------------- templates

def test_templates(world, api):
    k = world.admin
    tpl = {"name": "welcome", "subject": "Hi {{name}}", "text": "Hello {{name}}!",
           "html": "<p>Hello {{name}}</p>"}
    fails(api.post("/api/v1/templates", tpl, k), 422, "missing_field", "domain")
    r = ok(api.post("/api/v1/templates?domain=a.example", tpl, k), 201)
    assert {x: r[x] for x in ("name", "subject", "text", "html")} == tpl
    assert r["created"] and r["updated"]
    fails(api.post("/api/v1/templates?domain=a.example", tpl, world.key_a), 409, "conflict")
    fails(api.post("/api/v1/templates?domain=notours.example", tpl, k), 404, "not_found")
    e = fails(api.post("/api/v1/templates", {"name": "bad", "text": "ok\n{{#open}} x"},
                       world.key_a), 422, "template_syntax", "text")
    assert re.match(r"line 2, column \d+: ", e["message"]), e
    fails(api.post("/api/v1/templates", {"name": "bad", "html": "<p>{{/x}}</p>"}, world.key_a),
          422, "template_syntax", "html")
    fails(api.post("/api/v1/templates", {"name": "bad", "subject": "x"}, world.key_a), 422,
          "missing_field", "text")
    fails(api.post("/api/v1/templates", {"name": "bad name", "text": "x"}, world.key_a), 422,
          "invalid", "name")
    fails(api.post("/api/v1/templates", {"name": "big", "text": "x" * (512 * 1024 + 1)},
                   world.key_a), 422, "too_long", "text")

    # a domain key needs no ?domain=
    g = ok(api.get("/api/v1/templates/welcome", world.key_a))
    assert g["html"] == tpl["html"]
    assert ok(api.get("/api/v1/templates/welcome?domain=a.example", k)) == g
    fails(api.get("/api/v1/templates/welcome?domain=b.example", k), 404, "not_found")
    fails(api.get("/api/v1/templates/nothing", world.key_a), 404, "not_found")
    lst = ok(api.get("/api/v1/templates", world.key_a))
    assert [x["name"] for x in lst["data"]] == ["welcome"]

    rr = ok(api.post("/api/v1/templates/welcome/render", {"variables": {"name": "<Bob & Co>"}},
                     world.key_a))
    assert rr == {"subject": "Hi <Bob & Co>", "text": "Hello <Bob & Co>!",
                  "html": "<p>Hello &lt;Bob &amp; Co&gt;</p>", "missing": []}
    rr = ok(api.post("/api/v1/templates/welcome/render", {}, world.key_a))
    assert rr["missing"] == ["name"] and rr["text"] == "Hello !"
    fails(api.post("/api/v1/templates/welcome/render", {"variables": [1]}, world.key_a), 422,
          "invalid_type", "variables")

    u = ok(api.patch("/api/v1/templates/welcome", {"html": None, "subject": "New {{x}}"},
                     world.key_a))
    assert u["html"] is None and u["subject"] == "New {{x}}" and u["text"] == tpl["text"]
    fails(api.patch("/api/v1/templates/welcome", {"text": None}, world.key_a), 422,
          "missing_field", "text")
    fails(api.patch("/api/v1/templates/welcome", {"text": "{{#a}}"}, world.key_a), 422,
          "template_syntax", "text")
    fails(api.patch("/api/v1/templates/missing", {"text": "x"}, world.key_a), 404, "not_found")
    rr = ok(api.post("/api/v1/templates/welcome/render", {"variables": {"x": 1}}, world.key_a))
    assert rr["html"] is None and rr["subject"] == "New 1"
    assert api.delete("/api/v1/templates/welcome", world.key_a).status == 204
    fails(api.get("/api/v1/templates/welcome", world.key_a), 404, "not_found")
    fails(api.delete("/api/v1/templates/welcome?domain=a.example", k), 404, "not_found")


# ---------------------------------------------------------------- API keys

def test_apikeys(world, api):
    k = world.admin
    r = ok(api.post("/api/v1/apikeys", {"name": "ci", "domain": "A.example"}, k), 201)
    assert r["scope"] == "a.example" and r["name"] == "ci" and r["revoked"] is None
    assert r["token"].startswith("lr_") and r["prefix"] and r["token"].startswith(r["prefix"])
    assert isinstance(r["id"], int)
    tok = r["token"]
    ok(api.get("/api/v1/domains/a.example", tok))
    adm = ok(api.post("/api/v1/apikeys", {}, k), 201)
    assert adm["scope"] == "admin"
    ok(api.get("/api/v1/apikeys", adm["token"]))
    fails(api.post("/api/v1/apikeys", {"domain": "notours.example"}, k), 422, "invalid",
          "domain")
    fails(api.post("/api/v1/apikeys", {"domain": "not a domain"}, k), 422, "invalid", "domain")
    fails(api.post("/api/v1/apikeys", {"name": "a\nb"}, k), 422, "invalid", "name")

    g = ok(api.get(f"/api/v1/apikeys/{r['id']}", k))
    assert "token" not in g and g["id"] == r["id"] and g["scope"] == "a.example"
    lst = ok(api.get("/api/v1/apikeys", k))
    ids = [x["id"] for x in lst["data"]]
    assert r["id"] in ids and adm["id"] in ids and ids == sorted(ids)
    assert all("token" not in x for x in lst["data"])
    assert "test-admin" in {x["name"] for x in lst["data"]}
    fails(api.get("/api/v1/apikeys/999999", k), 404, "not_found")
    fails(api.get("/api/v1/apikeys/abc", k), 404, "not_found")
    fails(api.get("/api/v1/apikeys/0", k), 404, "not_found")
    fails(api.delete("/api/v1/apikeys/999999", k), 404, "not_found")
    # admin only
    for m, p, b in (("GET", "/api/v1/apikeys", None), ("POST", "/api/v1/apikeys", {}),
                    ("GET", f"/api/v1/apikeys/{r['id']}", None),
                    ("DELETE", f"/api/v1/apikeys/{r['id']}", None)):
        fails(api.call(m, p, b, key=world.key_a), 403, "forbidden")
    # revocation takes effect within a second
    t0 = time.monotonic()
    assert api.delete(f"/api/v1/apikeys/{r['id']}", k).status == 204
    revoked_after = wait_for(lambda: api.get("/api/v1/domains", tok).status == 401 and
                             time.monotonic() - t0, timeout=1.0, step=0.02)
    assert revoked_after, "a revoked key still works after 1 s"
    print(f"revoked key refused after {revoked_after * 1000:.0f} ms")
    fails(api.get("/api/v1/domains/a.example", tok), 401, "unauthorized")
    fails(api.post("/api/v1/messages", {"from": "alice@a.example", "to": "bob@a.example",
                                        "text": "x"}, tok), 401, "unauthorized")
    assert ok(api.get(f"/api/v1/apikeys/{r['id']}", k))["revoked"] is not None
    # an admin key may revoke itself; the next request with it is 401
    assert api.delete(f"/api/v1/apikeys/{adm['id']}", adm["token"]).status == 204
    assert wait_for(lambda: api.get("/api/v1/apikeys", adm["token"]).status == 401, timeout=1.0,
                    step=0.02)
    # keys made by the CLI are listed with their scope
    scopes = {x["name"]: x["scope"] for x in ok(api.get("/api/v1/apikeys", k))["data"]}
    assert scopes["key-a"] == "a.example" and scopes["test-admin"] == "admin"


# ---------------------------------------------------------------- queue

def _queued(api, key, rcpt):
    items = ok(api.get("/api/v1/queue?domain=dead.example", key))["data"]
    return [x for x in items if x["recipient"] == rcpt]


def test_queue(world, api):
    k = world.admin
    s = ok(api.post("/api/v1/messages", {"from": "alice@a.example", "to": "q1@dead.example",
                                         "subject": "stuck", "text": "x"}, k), 202)
    assert s["recipients"] == [{"email": "q1@dead.example", "kind": "to", "status": "queued"}]
    items = wait_for(lambda: _queued(api, k, "q1@dead.example"))
    assert len(items) == 1
    it = items[0]
    assert set(it) >= {"id", "message_id", "recipient", "domain", "state", "attempts",
                       "next_attempt", "last_attempt", "last_error", "created"}
    assert it["domain"] == "dead.example"
    mid = it["message_id"]
    show = ok(api.get(f"/api/v1/queue/{mid}", k))
    assert show["id"] == mid and show["from"] and show["size"] > 0
    assert [x["recipient"] for x in show["recipients"]] == ["q1@dead.example"]
    assert {"delivered_at", "last_dsn", "relay"} <= set(show["recipients"][0])
    # the failed attempt shows up
    wait_for(lambda: _queued(api, k, "q1@dead.example")[0]["attempts"] >= 1, timeout=15)
    assert ok(api.post(f"/api/v1/queue/{mid}/hold", {}, k))["changed"] >= 1
    assert ok(api.get("/api/v1/queue?state=held", k))["data"][0]["message_id"] == mid
    assert ok(api.post(f"/api/v1/queue/{mid}/release", {}, k))["changed"] >= 1
    assert ok(api.get("/api/v1/queue?state=held", k))["data"] == []
    r = ok(api.post(f"/api/v1/queue/{mid}/retry", {}, k))
    assert isinstance(r["changed"], int)
    r = ok(api.call("POST", "/api/v1/queue/retry", key=k))
    assert isinstance(r["changed"], int)
    fails(api.get("/api/v1/queue?state=bogus", k), 422, "invalid", "state")
    fails(api.get("/api/v1/queue?domain=..", k), 422, "invalid", "domain")
    fails(api.get("/api/v1/queue/999999", k), 404, "not_found")
    fails(api.get("/api/v1/queue/abc", k), 404, "not_found")
    fails(api.post("/api/v1/queue/999999/hold", {}, k), 404, "not_found")
    for m, p in (("GET", "/api/v1/queue"), ("GET", f"/api/v1/queue/{mid}"),
                 ("POST", f"/api/v1/queue/{mid}/retry"), ("POST", "/api/v1/queue/retry"),
                 ("POST", f"/api/v1/queue/{mid}/hold"), ("DELETE", f"/api/v1/queue/{mid}")):
        fails(api.call(m, p, key=world.key_a), 403, "forbidden")
    r = api.curl("DELETE", f"/api/v1/queue/{mid}", key=k)
    assert r.status == 204 and r.body == b"", r
    fails(api.get(f"/api/v1/queue/{mid}", k), 404, "not_found")
    assert _queued(api, k, "q1@dead.example") == []


# ---------------------------------------------------------------- scope isolation

def test_scope_isolation(world, api):
    A, B, adm = world.key_a, world.key_b, world.admin
    # B's objects exist
    ok(api.post("/api/v1/aliases", {"address": "sales@b.example",
                                     "targets": ["carol@b.example"]}, B), 201)
    ok(api.post("/api/v1/templates", {"name": "btpl", "text": "b"}, B), 201)
    ok(api.post("/api/v1/templates", {"name": "atpl", "text": "a"}, A), 201)
    ok(api.post("/api/v1/aliases", {"address": "sales@a.example",
                                     "targets": ["alice@a.example"]}, A), 201)
    # key A on everything of domain B (existing or not) and of a domain that does not exist
    for dom in ("b.example", "B.Example", "nowhere.example"):
        calls = [
            ("GET", f"/api/v1/domains/{dom}", None),
            ("GET", f"/api/v1/domains/{dom}/dns", None),
            ("GET", f"/api/v1/domains/{dom}/dkim", None),
            ("POST", f"/api/v1/domains/{dom}/dkim", {}),
            ("POST", f"/api/v1/domains/{dom}/dkim/rotate", {"keep_days": 0}),
            ("DELETE", f"/api/v1/domains/{dom}?force=true", None),
            ("POST", "/api/v1/domains", {"name": dom}),
            ("GET", f"/api/v1/accounts?domain={dom}", None),
            ("POST", "/api/v1/accounts", {"address": f"new@{dom}", "password": "password-1"}),
            ("GET", f"/api/v1/aliases?domain={dom}", None),
            ("POST", "/api/v1/aliases", {"address": f"x@{dom}", "targets": ["alice@a.example"]}),
            ("POST", "/api/v1/aliases", {"address": f"@{dom}", "targets": ["alice@a.example"]}),
            ("GET", f"/api/v1/aliases/@{dom}", None),
            ("DELETE", f"/api/v1/aliases/@{dom}", None),
            ("GET", f"/api/v1/templates?domain={dom}", None),
            ("POST", f"/api/v1/templates?domain={dom}", {"name": "t", "text": "x"}),
            ("POST", "/api/v1/apikeys", {"domain": dom}),
            ("POST", "/api/v1/messages", {"from": f"carol@{dom}", "to": "alice@a.example",
                                          "text": "x"}),
            ("POST", "/api/v1/messages/raw", {"to": ["alice@a.example"],
                                              "message": f"From: carol@{dom}\n\nx\n"}),
            ("POST", "/api/v1/messages/raw", {"to": ["alice@a.example"], "from": f"carol@{dom}",
                                              "message": "From: alice@a.example\n\nx\n"}),
        ]
        for name in ("btpl", "nothing"):
            calls += [("GET", f"/api/v1/templates/{name}?domain={dom}", None),
                      ("PATCH", f"/api/v1/templates/{name}?domain={dom}", {"text": "y"}),
                      ("DELETE", f"/api/v1/templates/{name}?domain={dom}", None),
                      ("POST", f"/api/v1/templates/{name}/render?domain={dom}", {})]
        for local in ("carol", "sales", "ghost"):
            addr = f"{local}@{dom}"
            calls += [("GET", f"/api/v1/accounts/{addr}", None),
                      ("PATCH", f"/api/v1/accounts/{addr}", {"disabled": True}),
                      ("DELETE", f"/api/v1/accounts/{addr}", None),
                      ("GET", f"/api/v1/aliases/{addr}", None),
                      ("DELETE", f"/api/v1/aliases/{addr}?target=carol@b.example", None),
                      ("DELETE", f"/api/v1/aliases/{addr}", None)]
        for m, p, b in calls:
            r = api.call(m, p, b, key=A)
            assert r.status == 403 and r.code == "forbidden", (m, p, b, r)
    # nothing of B changed
    assert ok(api.get("/api/v1/accounts/carol@b.example", adm))["disabled"] is False
    assert ok(api.get("/api/v1/aliases/sales@b.example", adm))["targets"] == ["carol@b.example"]
    assert ok(api.get("/api/v1/templates/btpl?domain=b.example", adm))["text"] == "b"
    assert len(ok(api.get("/api/v1/domains/b.example/dkim", adm))["data"]) == 2
    # lists for a domain key show its own domain only
    for key, dom in ((A, "a.example"), (B, "b.example")):
        assert [d["name"] for d in ok(api.get("/api/v1/domains", key))["data"]] == [dom]
        accts = ok(api.get("/api/v1/accounts", key))["data"]
        assert accts and all(x["domain"] == dom for x in accts)
        accts2 = ok(api.get(f"/api/v1/accounts?domain={dom}", key))["data"]
        assert accts2 == accts
        als = ok(api.get("/api/v1/aliases", key))["data"]
        assert [x["address"] for x in als] == [f"sales@{dom}"]
        tpls = ok(api.get("/api/v1/templates", key))["data"]
        assert [x["name"] for x in tpls] == [dom[0] + "tpl"]
    # the admin sees both
    assert {"a.example", "b.example"} <= {d["name"] for d in
                                          ok(api.get("/api/v1/domains", adm))["data"]}
    # clean up
    for key, dom in ((A, "a"), (B, "b")):
        assert api.delete(f"/api/v1/aliases/sales@{dom}.example", key).status == 204
        assert api.delete(f"/api/v1/templates/{dom}tpl", key).status == 204


def test_messages_get_unknown(world, api):
    fails(api.get("/api/v1/messages/msg_doesnotexist", world.admin), 404, "not_found")
    fails(api.get("/api/v1/messages/msg_doesnotexist", world.key_a), 404, "not_found")
    fails(api.get("/api/v1/messages/msg_doesnotexist", None), 401, "unauthorized")


# ---------------------------------------------------------------- OpenAPI

KNOWN_ROUTES = {
    ("GET", "/healthz"), ("GET", "/api/v1/openapi.json"),
    ("GET", "/api/v1/domains"), ("POST", "/api/v1/domains"),
    ("GET", "/api/v1/domains/{}"), ("DELETE", "/api/v1/domains/{}"),
    ("GET", "/api/v1/domains/{}/dns"), ("GET", "/api/v1/domains/{}/dkim"),
    ("POST", "/api/v1/domains/{}/dkim"), ("POST", "/api/v1/domains/{}/dkim/rotate"),
    ("GET", "/api/v1/accounts"), ("POST", "/api/v1/accounts"),
    ("GET", "/api/v1/accounts/{}"), ("PATCH", "/api/v1/accounts/{}"),
    ("DELETE", "/api/v1/accounts/{}"),
    ("GET", "/api/v1/aliases"), ("POST", "/api/v1/aliases"), ("GET", "/api/v1/aliases/{}"),
    ("DELETE", "/api/v1/aliases/{}"),
    ("GET", "/api/v1/templates"), ("POST", "/api/v1/templates"),
    ("GET", "/api/v1/templates/{}"), ("PATCH", "/api/v1/templates/{}"),
    ("DELETE", "/api/v1/templates/{}"), ("POST", "/api/v1/templates/{}/render"),
    ("GET", "/api/v1/apikeys"), ("POST", "/api/v1/apikeys"), ("GET", "/api/v1/apikeys/{}"),
    ("DELETE", "/api/v1/apikeys/{}"),
    ("GET", "/api/v1/queue"), ("POST", "/api/v1/queue/retry"), ("GET", "/api/v1/queue/{}"),
    ("DELETE", "/api/v1/queue/{}"), ("POST", "/api/v1/queue/{}/retry"),
    ("POST", "/api/v1/queue/{}/hold"), ("POST", "/api/v1/queue/{}/release"),
    ("POST", "/api/v1/messages"), ("POST", "/api/v1/messages/raw"),
    ("GET", "/api/v1/messages/{}"),
}


def test_openapi(world, api):
    k = world.admin
    r = api.get("/api/v1/openapi.json", None)
    assert r.status == 200, r
    assert r.header("content-type").startswith("application/json")
    doc = r.json
    assert str(doc.get("openapi", "")).startswith("3."), doc.get("openapi")
    assert doc["info"]["title"] and doc["info"]["version"]
    paths = doc["paths"]
    documented = set()
    for p, item in paths.items():
        for m in item:
            if m.lower() in ("get", "post", "put", "patch", "delete", "head", "options"):
                documented.add((m.upper(), re.sub(r"\{[^}]+\}", "{}", p if p.startswith("/")
                                                  else "/" + p)))
    # served under /api/v1: paths may be given relative to a server URL ending in /api/v1
    base = ""
    if not any(p.startswith("/api/v1") for _, p in documented):
        base = "/api/v1"
        documented = {(m, p if p == "/healthz" else base + p) for m, p in documented}
    missing = {r_ for r_ in KNOWN_ROUTES if r_ not in documented and
               r_[1] not in ("/healthz", "/api/v1/openapi.json")}
    assert not missing, f"routes not documented: {sorted(missing)}"
    # every documented operation is routed: answered by something other than the router's
    # 404/405, with real objects in the path where possible (made for this test)
    ok(api.post("/api/v1/domains", {"name": "oa.example"}, k), 201)
    ok(api.post("/api/v1/accounts", {"address": "oa-user@oa.example"}, k), 201)
    ok(api.post("/api/v1/aliases", {"address": "oa-alias@oa.example",
                                     "targets": ["oa-user@oa.example"]}, k), 201)
    ok(api.post("/api/v1/templates?domain=oa.example", {"name": "oa-tpl", "text": "x"}, k), 201)
    spare = ok(api.post("/api/v1/apikeys", {"name": "spare", "domain": "oa.example"}, k), 201)
    sent = ok(api.post("/api/v1/messages", {"from": "oa-user@oa.example",
                                            "to": "oa-user@oa.example", "text": "x"}, k), 202)
    qsent = ok(api.post("/api/v1/messages", {"from": "oa-user@oa.example",
                                             "to": "oa@dead.example", "text": "x"}, k), 202)
    qid = wait_for(lambda: [x["message_id"] for x in ok(api.get(
        "/api/v1/queue?domain=dead.example", k))["data"] if x["recipient"] == "oa@dead.example"])
    assert qid and qsent

    def subst(path):
        if path.startswith("/api/v1/domains/"):
            v = "oa.example"
        elif path.startswith("/api/v1/accounts/"):
            v = "oa-user@oa.example"
        elif path.startswith("/api/v1/aliases/"):
            v = "oa-alias@oa.example"
        elif path.startswith("/api/v1/templates/"):
            v = "oa-tpl"
        elif path.startswith("/api/v1/apikeys/"):
            v = str(spare["id"])
        elif path.startswith("/api/v1/queue/"):
            v = str(qid[0])
        elif path.startswith("/api/v1/messages/"):
            v = sent["id"]
        else:
            v = "x"
        out = re.sub(r"\{[^}]*\}", lambda m_: q(v), path)
        if path.startswith("/api/v1/templates"):
            out += "?domain=oa.example"
        return out

    # GETs first, deletes last, so most calls meet existing objects
    order = {"GET": 0, "HEAD": 0, "POST": 1, "PATCH": 1, "PUT": 1, "DELETE": 2}
    checked = 0
    for m, p in sorted(documented, key=lambda x: (order.get(x[0], 1), x[1])):
        if m in ("HEAD", "OPTIONS"):
            continue
        url = subst(p)
        body = {} if m in ("POST", "PATCH", "PUT") else None
        r = api.call(m, url, body, key=k)
        assert r.status != 405, (m, url, r)
        assert not (r.status == 404 and r.body and r.json == ROUTE_404), (m, url, r)
        assert r.status < 500, (m, url, r)
        checked += 1
    assert checked >= len(KNOWN_ROUTES) - 2
    assert ok(api.get("/healthz", None))["status"] == "ok"
