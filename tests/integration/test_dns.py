"""Checks of tests/zonedns.py itself (the DNS server other integration tests point Lightr at):
answers over UDP and TCP, in-process and as a script, and re-reading the zone file."""
import json
import os
import subprocess
import sys

import pytest

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, TESTS)

from dnslib import QTYPE, RCODE, DNSRecord  # noqa: E402

from zonedns import ZoneDNS  # noqa: E402

ZONE = {
    "servfail": ["broken.example"],
    "timeout": ["slow.example"],
    "records": {
        "example": {"MX": [[10, "mx1.example"], [20, "mx2.example"]]},
        "mx1.example": {"A": ["127.0.0.1"], "AAAA": ["::1"]},
        "nullmx.example": {"MX": [[0, "."]]},
        "alias.example": {"CNAME": "mx1.example"},
        "txt.example": {"TXT": ["v=spf1 -all", ["a", "b"], "x" * 300]},
        "deep.sub.example": {"A": ["127.0.0.5"]},
    },
}


def ask(port, name, qtype, tcp=False, timeout=3):
    q = DNSRecord.question(name, qtype)
    return DNSRecord.parse(q.send("127.0.0.1", port, tcp=tcp, timeout=timeout))


def rdatas(reply, qtype):
    return [str(rr.rdata) for rr in reply.rr if rr.rtype == getattr(QTYPE, qtype)]


@pytest.fixture
def stub():
    with ZoneDNS(ZONE) as s:
        yield s


def test_mx_and_addresses(stub):
    r = ask(stub.port, "Example.", "MX")
    assert r.header.rcode == RCODE.NOERROR
    assert sorted(rdatas(r, "MX")) == ["10 mx1.example.", "20 mx2.example."]
    assert rdatas(ask(stub.port, "mx1.example", "A"), "A") == ["127.0.0.1"]
    assert rdatas(ask(stub.port, "mx1.example", "AAAA"), "AAAA") == ["::1"]
    assert rdatas(ask(stub.port, "nullmx.example", "MX"), "MX") == ["0 ."]


def test_tcp(stub):
    r = ask(stub.port, "example", "MX", tcp=True)
    assert len(rdatas(r, "MX")) == 2


def test_cname_followed(stub):
    r = ask(stub.port, "alias.example", "A")
    assert rdatas(r, "CNAME") == ["mx1.example."]
    assert rdatas(r, "A") == ["127.0.0.1"]
    assert rdatas(ask(stub.port, "alias.example", "CNAME"), "CNAME") == ["mx1.example."]


def test_txt_strings(stub):
    r = ask(stub.port, "txt.example", "TXT")
    recs = [[bytes(s) for s in rr.rdata.data] for rr in r.rr]
    assert [b"v=spf1 -all"] in recs
    assert [b"a", b"b"] in recs
    assert [b"x" * 255, b"x" * 45] in recs


def test_negative_answers(stub):
    r = ask(stub.port, "nope.example", "A")
    assert r.header.rcode == RCODE.NXDOMAIN
    assert len(r.auth) == 1
    r = ask(stub.port, "mx1.example", "MX")  # name exists, no MX: NODATA
    assert r.header.rcode == RCODE.NOERROR and not r.rr
    r = ask(stub.port, "sub.example", "A")  # empty non-terminal
    assert r.header.rcode == RCODE.NOERROR and not r.rr
    assert ask(stub.port, "broken.example", "MX").header.rcode == RCODE.SERVFAIL


def test_timeout_name_gets_no_answer(stub):
    import socket

    with pytest.raises(socket.timeout):
        ask(stub.port, "slow.example", "A", timeout=0.5)


def test_set_zone(stub):
    stub.set_zone({"records": {"example": {"A": ["127.0.0.9"]}}})
    assert rdatas(ask(stub.port, "example", "A"), "A") == ["127.0.0.9"]
    assert ask(stub.port, "mx1.example", "A").header.rcode == RCODE.NXDOMAIN


def test_script_rereads_file(tmp_path):
    zone = tmp_path / "zone.json"
    zone.write_text(json.dumps(ZONE))
    p = subprocess.Popen([sys.executable, os.path.join(TESTS, "zonedns.py"), "--port", "0",
                          "--zone", str(zone)], stdout=subprocess.PIPE, text=True)
    try:
        port = int(p.stdout.readline())
        assert rdatas(ask(port, "mx1.example", "A"), "A") == ["127.0.0.1"]
        changed = dict(ZONE, records={"mx1.example": {"A": ["127.0.0.2"]}})
        tmp = tmp_path / "zone.json.tmp"
        tmp.write_text(json.dumps(changed))
        os.replace(tmp, zone)
        assert rdatas(ask(port, "mx1.example", "A", tcp=True), "A") == ["127.0.0.2"]
    finally:
        p.terminate()
        assert p.wait(timeout=10) == 0
