#!/usr/bin/python3
"""zonedns - a small authoritative-style DNS server for tests (loopback only, UDP and TCP).

Lightr's resolver (src/dns/resolver.c, libunbound) is pointed at it as a forwarder, e.g.
dns: {forwarders: ["127.0.0.1@PORT"]}. Name test domains under .example: libunbound answers
.test/.invalid/.localhost itself when it is not given forwarders.

ZONE FORMAT (JSON file, or the same structure as a Python dict):

    {
      "ttl": 0,                              # optional, default 0 (nothing is cached)
      "servfail": ["broken.example"],        # optional: these names answer SERVFAIL
      "timeout": ["slow.example"],           # optional: these names get no answer at all
      "records": {
        "example":      {"MX": [[10, "mx1.example"], [20, "mx2.example"]]},
        "mx1.example":  {"A": ["127.0.0.1"], "AAAA": ["::1"]},
        "nullmx.example": {"MX": [[0, "."]]},
        "implicit.example": {"A": ["127.0.0.2"]},
        "alias.example": {"CNAME": "mx1.example"},
        "spf.example":  {"TXT": ["v=spf1 -all", ["v=DMARC1; ", "p=none"]]}
      }
    }

  Names are case-insensitive, with or without the trailing dot. TXT entries are either one string
  (split into 255-byte character-strings when longer) or a list of character-strings. MX entries
  are [preference, exchange] ("." for a null MX). PTR entries are target names. A CNAME is followed inside the zone for other
  query types. Answers: a name in "records" without the asked type -> NOERROR with no data (plus
  a SOA); a name not in "records" -> NXDOMAIN, unless some record name ends with ".<name>"
  (an empty non-terminal -> NOERROR, no data). The file is re-read on every query, so a test may
  rewrite it (write a temporary file and rename it over) to change the answers.

AS A SCRIPT:

    /usr/bin/python3 tests/zonedns.py --port 0 --zone zone.json [--address 127.0.0.1]

  Binds UDP and TCP on the same port (0 = pick a free one), prints the port alone on the first
  line of stdout (flushed), then serves until SIGTERM/SIGINT.

IN-PROCESS (pytest):

    from zonedns import ZoneDNS          # tests/ on sys.path (see tests/integration/test_dns.py)
    dns = ZoneDNS({"records": {...}})   # a dict, or a path to a JSON file
    port = dns.start()                  # background threads; returns the port
    dns.set_zone({...})                 # replace the dict (for a dict-backed server)
    dns.stop()
    # or: with ZoneDNS(zone) as dns: ... dns.port ...
"""

import argparse
import json
import signal
import sys
import threading

from dnslib import AAAA, CNAME, MX, PTR, QTYPE, RCODE, RR, SOA, TXT, A, DNSLabel
from dnslib.dns import DNSError
from dnslib.server import BaseResolver, DNSServer


def _norm(name):
    name = str(name).lower()
    return name[:-1] if name.endswith(".") else name


class _QuietLogger:
    """dnslib logger that prints nothing."""

    def __getattr__(self, name):
        return lambda *a, **k: None


class _Drop(DNSError):
    """Raised to send no answer (DNSHandler catches DNSError and replies nothing)."""


class ZoneResolver(BaseResolver):
    def __init__(self, zone):
        self.lock = threading.Lock()
        self.zone = zone

    def load(self):
        with self.lock:
            z = self.zone
        if isinstance(z, str):
            with open(z, encoding="utf-8") as f:
                z = json.load(f)
        records = {_norm(k): v for k, v in z.get("records", {}).items()}
        return {
            "ttl": int(z.get("ttl", 0)),
            "servfail": {_norm(n) for n in z.get("servfail", [])},
            "timeout": {_norm(n) for n in z.get("timeout", [])},
            "records": records,
        }

    @staticmethod
    def _rrs(name, rtype, value, ttl):
        out = []
        if rtype == "A":
            out = [RR(name, QTYPE.A, rdata=A(v), ttl=ttl) for v in value]
        elif rtype == "AAAA":
            out = [RR(name, QTYPE.AAAA, rdata=AAAA(v), ttl=ttl) for v in value]
        elif rtype == "MX":
            out = [RR(name, QTYPE.MX, rdata=MX(ex, int(pref)), ttl=ttl) for pref, ex in value]
        elif rtype == "TXT":
            for v in value:
                if isinstance(v, str):
                    b = v.encode()
                    parts = [b[i:i + 255] for i in range(0, len(b), 255)] or [b""]
                else:
                    parts = [p.encode() if isinstance(p, str) else bytes(p) for p in v]
                out.append(RR(name, QTYPE.TXT, rdata=TXT(parts), ttl=ttl))
        elif rtype == "PTR":
            out = [RR(name, QTYPE.PTR, rdata=PTR(v), ttl=ttl) for v in value]
        elif rtype == "CNAME":
            out = [RR(name, QTYPE.CNAME, rdata=CNAME(value), ttl=ttl)]
        return out

    def resolve(self, request, handler):
        z = self.load()
        reply = request.reply()
        qname = _norm(request.q.qname)
        qtype = QTYPE.get(request.q.qtype)
        ttl = z["ttl"]
        if qname in z["timeout"]:
            raise _Drop("timeout " + qname)
        if qname in z["servfail"]:
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        name, seen = qname, 0
        while True:
            recs = z["records"].get(name)
            if recs is None:
                break
            if qtype != "CNAME" and "CNAME" in recs and seen < 8:
                reply.add_answer(*self._rrs(name + ".", "CNAME", recs["CNAME"], ttl))
                name, seen = _norm(recs["CNAME"]), seen + 1
                if name in z["servfail"]:
                    reply.header.rcode = RCODE.SERVFAIL
                    return reply
                continue
            if qtype in recs:
                reply.add_answer(*self._rrs(name + ".", qtype, recs[qtype], ttl))
            break
        if not reply.rr:
            exists = qname in z["records"] or any(
                k.endswith("." + qname) for k in z["records"])
            if not exists:
                reply.header.rcode = RCODE.NXDOMAIN
            apex = qname.rsplit(".", 1)[-1] + "."
            reply.add_auth(RR(apex, QTYPE.SOA, ttl=ttl, rdata=SOA(
                "ns." + apex, "hostmaster." + apex, (1, 60, 60, 60, ttl))))
        return reply


class ZoneDNS:
    """UDP+TCP DNS server on address:port serving zone (a dict or a JSON file path)."""

    def __init__(self, zone, port=0, address="127.0.0.1"):
        self.resolver = ZoneResolver(zone)
        self.address = address
        self.port = port
        self.servers = []

    def set_zone(self, zone):
        with self.resolver.lock:
            self.resolver.zone = zone

    def _bind(self):
        for _ in range(20):
            udp = DNSServer(self.resolver, address=self.address, port=self.port,
                            logger=_QuietLogger())
            port = udp.server.server_address[1]
            try:
                tcp = DNSServer(self.resolver, address=self.address, port=port, tcp=True,
                                logger=_QuietLogger())
            except OSError:
                udp.server.server_close()
                if self.port:
                    raise
                continue
            return port, [udp, tcp]
        raise OSError("zonedns: no port free for both UDP and TCP")

    def start(self):
        self.port, self.servers = self._bind()
        for s in self.servers:
            # A short poll interval keeps stop() fast (socketserver polls for shutdown).
            s.thread = threading.Thread(target=s.server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
            s.thread.start()
        return self.port

    def stop(self):
        for s in self.servers:
            s.stop()
            s.server.server_close()
        self.servers = []

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()


def main():
    ap = argparse.ArgumentParser(description="DNS server for tests (see module docstring)")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--address", default="127.0.0.1")
    ap.add_argument("--zone", required=True, help="JSON zone file, re-read on every query")
    args = ap.parse_args()
    server = ZoneDNS(args.zone, port=args.port, address=args.address)
    port = server.start()
    sys.stdout.write(f"{port}\n")
    sys.stdout.flush()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: done.set())
    signal.signal(signal.SIGINT, lambda *a: done.set())
    while not done.wait(1):
        pass
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
