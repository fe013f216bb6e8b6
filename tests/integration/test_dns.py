"""Finding a domain's registry in the DNS (irp/irp_dns.c, through
libunbound), against a real name server (Knot DNS) serving a signed and
an unsigned zone: SRV records in RFC 2782 order, addresses, TLSA
records, DNSSEC validation, and plain errors for what is missing,
forged or down."""
import time

import pytest

from conftest import NameServer, dnsq, free_port

NET = """_irp._tcp SRV 10 5 4604 dir.example.net.
dir A 127.0.0.1
dir AAAA ::1
_4604._tcp.dir TLSA 3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
"""
ORG = """_irp._tcp SRV 20 5 14605 dir2.example.org.
_irp._tcp SRV 10 5 14604 dir.example.org.
dir A 127.0.0.2
"""
NONE = """_irp._tcp SRV 0 0 0 .
"""


@pytest.fixture
def ns(tmpdir_shared):
    n = NameServer(tmpdir_shared, {"example.net": (NET, True),
                                   "example.org": (ORG, False),
                                   "example.com": (NONE, False)})
    yield n
    n.stop()


def test_srv_signed_zone_is_secure(ns):
    rc, out = dnsq("srv", "example.net", server=ns.server,
                   anchor=ns.anchor("example.net"))
    assert rc == 0, out
    assert out["records"] == [{"host": "dir.example.net", "port": 4604,
                               "priority": 10, "weight": 5}], out
    assert out["secure"] is True and out["ttl"] == 60, out
    # Without the trust anchor the same answer is not secure.
    rc, out = dnsq("srv", "example.net", server=ns.server)
    assert rc == 0 and out["secure"] is False, out


def test_srv_order_and_unsigned_zone(ns):
    rc, out = dnsq("srv", "example.org", server=ns.server,
                   anchor=ns.anchor("example.net"))
    assert rc == 0, out
    assert [(r["host"], r["port"]) for r in out["records"]] == [
        ("dir.example.org", 14604), ("dir2.example.org", 14605)], out
    assert out["secure"] is False, out


def test_forged_answer_is_refused(ns, tmpdir_shared):
    """A trust anchor that does not match the zone's key: every answer
    from it is bogus, and refused, not returned."""
    good = open(ns.anchor("example.net")).read().splitlines()[0]
    digest = good.split()[-1]
    bad = good[:-len(digest)] + ("0" if digest[0] != "0" else "1") + \
        digest[1:]
    path = f"{tmpdir_shared}/bad.ds"
    with open(path, "w") as f:
        f.write(bad + "\n")
    rc, out = dnsq("srv", "example.net", server=ns.server, anchor=path)
    assert rc == 1 and out["code"] == "dns_bogus", out
    assert "failed DNSSEC validation" in out["message"], out


def test_missing_and_declined(ns):
    rc, out = dnsq("srv", "example.com", server=ns.server)
    assert rc == 1 and out["code"] == "no_registry", out
    assert "runs no registry" in out["message"], out
    rc, out = dnsq("srv", "nowhere.example.net", server=ns.server)
    assert rc == 1 and out["code"] in ("no_domain", "no_registry"), out
    assert "_irp._tcp.nowhere.example.net" in out["message"], out
    rc, out = dnsq("srv", "bad domain", server=ns.server)
    assert rc == 1 and out["code"] == "usage", out
    rc, out = dnsq("addrs", "nohost.example.org", server=ns.server)
    assert rc == 1 and out["code"] in ("no_address", "no_domain"), out


def test_addresses_and_tlsa(ns):
    anchor = ns.anchor("example.net")
    rc, out = dnsq("addrs", "dir.example.net", server=ns.server,
                   anchor=anchor)
    assert rc == 0 and out["records"] == ["::1", "127.0.0.1"], out
    assert out["secure"] is True, out
    rc, out = dnsq("tlsa", "dir.example.net", "4604", server=ns.server,
                   anchor=anchor)
    assert rc == 0 and out["secure"] is True, out
    assert out["records"] == [{"usage": 3, "selector": 1, "mtype": 1,
                               "data": "0123456789abcdef" * 4}], out
    rc, out = dnsq("tlsa", "dir.example.net", "4605", server=ns.server,
                   anchor=anchor)
    assert rc == 0 and out["records"] == [], out


def test_resolver_down_fails_within_the_timeout():
    port = free_port()
    t0 = time.monotonic()
    rc, out = dnsq("srv", "example.net", server=f"127.0.0.1@{port}",
                   timeout_ms=1500)
    took = time.monotonic() - t0
    assert rc == 1 and out["code"] == "dns_unavailable", out
    assert "no answer" in out["message"] or "SERVFAIL" in out["message"], out
    assert took < 10, took
