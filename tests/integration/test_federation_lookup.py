"""Federation, the registries' side (dird/fed.c): alice's registry
(example.org) looks bob up at example.net's registry, found by its SRV
record on a real name server (Knot DNS), trusted by its administrator's
rule (a pinned CA fingerprint, or DANE with a DNSSEC-signed TLSA record),
asked over mutual TLS with example.org's own server certificate.  The
other registry admits the question only by its own rule for example.org.
Every refusal is a clear error, and nothing is stored."""
import calendar
import hashlib
import os
import ssl
import subprocess
import time

from conftest import NameServer, curl, free_port, wait_until

ORG, NET = "example.org", "example.net"


def ca_der(reg):
    with open(reg.ca) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def ca_sha(reg):
    return hashlib.sha256(ca_der(reg)).hexdigest()


def srv(domain, port, host=None):
    host = host or "dir." + domain
    return (f"_irp._tcp SRV 0 5 {port} {host}.\n"
            f"dir A 127.0.0.1\n")


class World:
    """Two registries, example.org and example.net, each with its own CA
    and database, found through one name server.  net_zone and
    net_signed shape example.net's zone; settings go to both dird."""

    def __init__(self, registry, tmp, settings=(), net_extra="",
                 net_signed=False, org_settings=()):
        self.p_org, self.p_net = free_port(), free_port()
        self.org = registry(domain=ORG, start=False,
                            hosts=("dir.example.org", "localhost"))
        self.net = registry(domain=NET, start=False,
                            hosts=("dir.example.net", "localhost"))
        net_zone = srv(NET, self.p_net) + net_extra.format(
            port=self.p_net, sha=ca_sha(self.net))
        self.ns = NameServer(tmp, {ORG: (srv(ORG, self.p_org), False),
                                   NET: (net_zone, net_signed)})
        self.settings = (f"federation_dns={self.ns.server}",
                         "federation_negative_ttl=1", *settings)
        self.org.start(*self.settings, *org_settings, port=self.p_org)
        self.net.start(*self.settings, port=self.p_net)
        self.alice = self.org.user("alice@example.org")
        self.bob = self.net.user("bob@example.net")
        r = self.bob.req("PUT", "/v1/me/addresses", json_body={
            "addresses": [{"ip": "192.0.2.7", "port": 4605}]})
        assert r.status == 200, r

    def restart_org(self, *settings):
        self.org.restart(*self.settings, *settings, port=self.p_org)

    def pin_both(self):
        self.org.ctl("federation", "add", NET, "--ca-fingerprint",
                     ca_sha(self.net))
        self.net.ctl("federation", "add", ORG, "--ca-fingerprint",
                     ca_sha(self.org))

    def lookup(self, userid="bob@example.net", fresh=False):
        return self.alice.req("GET", "/v1/users/" + userid, headers=[
            "Cache-Control: no-cache"] if fresh else [])


def error(r):
    return r.json()["error"]


def metric(d, direction, result):
    for line in d.metrics().splitlines():
        if line.startswith("dird_federation_queries_total{direction="
                           f"\"{direction}\",result=\"{result}\"}}"):
            return int(line.split()[-1])
    raise AssertionError(f"no federation metric {direction} {result}")


def test_lookup_by_pinned_rules_both_ways(registry, tmpdir_shared):
    w = World(registry, tmpdir_shared)
    # No rule here for example.net: nothing of it is trusted.
    r = w.lookup()
    assert r.status == 403 and error(r)["code"] == "federation_refused", r
    assert "no federation rule for example.net" in error(r)["message"], r
    # Our rule, but example.net's registry has none for us.
    w.org.ctl("federation", "add", NET, "--ca-fingerprint", ca_sha(w.net))
    r = w.lookup()
    assert r.status == 502 and error(r)["code"] == "remote_refused", r
    assert "example.org" in w.net.d.read_log().split(
        "refused a registry asking as")[-1]
    # Both rules: the answer carries bob, the CA of example.net and why.
    w.net.ctl("federation", "add", ORG, "--ca-fingerprint", ca_sha(w.org))
    time.sleep(1.2)  # the refusal is kept for federation_negative_ttl
    r = w.lookup()
    assert r.status == 200, r
    ans = r.json()
    assert ans["userid"] == "bob@example.net" and ans["online"], ans
    via = ans["registry"]
    assert via["domain"] == NET and via["trust"] == "pinned", via
    assert via["ca_sha256"] == ca_sha(w.net), via
    assert ssl.PEM_cert_to_DER_cert(via["ca"]) == ca_der(w.net)
    dev = ans["devices"][0]
    assert dev["serial"] == w.bob.serial, ans
    assert dev["addresses"][0]["ip"] == "192.0.2.7", ans
    # What it vouches for verifies with standard tools against that CA.
    ca_file = os.path.join(tmpdir_shared, "net-ca.pem")
    cert_file = os.path.join(tmpdir_shared, "bob-cert.pem")
    with open(ca_file, "w") as f:
        f.write(via["ca"])
    with open(cert_file, "w") as f:
        f.write(dev["certificate"])
    v = subprocess.run(["openssl", "verify", "-CAfile", ca_file, cert_file],
                       capture_output=True, text=True)
    assert v.returncode == 0 and ": OK" in v.stdout, v.stdout + v.stderr
    # The other side logged who asked and on what grounds.
    assert ("the registry of example.org (pinned) looks up "
            "bob@example.net") in w.net.d.read_log()
    assert metric(w.net.d, "in", "ok") >= 1
    # An unknown user there is a 404 that names the registry.
    r = w.lookup("nobody@example.net")
    assert r.status == 404 and error(r)["code"] == "unknown_user", r
    assert "registry of example.net" in error(r)["message"], r
    # Kept for its TTL: answered while example.net's dird is down ...
    w.net.d.stop()
    r = w.lookup()
    assert r.status == 200 and r.json()["registry"]["domain"] == NET, r
    # Asked afresh (a peer being checked), the registry of example.net
    # can not be reached: its last answer stands in, saying when it was
    # given (federation_stale_max, 600 s by default).
    r = w.lookup(fresh=True)
    assert r.status == 200, r
    checked = r.json()["registry"]["checked_at"]
    assert checked == via["checked_at"], (checked, via)
    assert r.json()["registry"]["stale"] is True and "stale" not in via, r
    assert time.time() - 60 < calendar.timegm(time.strptime(
        checked, "%Y-%m-%dT%H:%M:%SZ")) <= time.time(), checked
    assert "answering for bob@example.net from an earlier answer" in \
        w.org.d.read_log()
    assert metric(w.org.d, "out", "cached") >= 1
    assert metric(w.org.d, "out", "ok") >= 1
    assert metric(w.org.d, "out", "stale") >= 1
    # A user it never heard of gets the error, not a stand-in.
    r = w.lookup("carol@example.net", fresh=True)
    assert r.status == 502 and error(r)["code"] == "registry_unreachable", r
    assert metric(w.org.d, "out", "error") >= 1


def test_no_stand_in_when_the_administrator_allows_none(registry,
                                                        tmpdir_shared):
    """federation_stale_max = 0: a fresh lookup while the other registry
    is down is an error, whatever was heard from it before."""
    w = World(registry, tmpdir_shared,
              settings=("federation_stale_max=0",))
    w.pin_both()
    assert w.lookup().status == 200
    w.net.d.stop()
    assert w.lookup().status == 200  # current answers are still served
    r = w.lookup(fresh=True)
    assert r.status == 502 and error(r)["code"] == "registry_unreachable", r
    assert "can not be reached" in error(r)["message"] or \
        "did not answer" in error(r)["message"], r


def test_revoked_a_moment_ago_is_gone_from_a_fresh_answer(registry,
                                                           tmpdir_shared):
    w = World(registry, tmpdir_shared)
    w.pin_both()
    assert w.lookup().json()["devices"][0]["serial"] == w.bob.serial
    r = w.bob.req("POST", f"/v1/certificates/{w.bob.serial}/revoke",
                  json_body={})
    assert r.status == 200, r
    r = w.lookup(fresh=True)
    assert r.status == 200, r
    assert all(d["serial"] != w.bob.serial for d in r.json()["devices"]), r


def chain_file(tmp, name, *parts):
    path = os.path.join(tmp, name)
    with open(path, "w") as out:
        for p in parts:
            with open(p) as f:
                out.write(f.read())
    return path


def test_the_other_registry_admits_only_a_registry_it_trusts(
        registry, tmpdir_shared):
    w = World(registry, tmpdir_shared)
    w.pin_both()
    data = w.org.data
    server = os.path.join(data, "server.pem")
    key = os.path.join(data, "server.key")
    chained = chain_file(tmpdir_shared, "org-chain.pem", server, w.org.ca)

    def ask(cert, key, domain, userid="bob@example.net"):
        hdr = [f"IRP-Domain: {domain}"] if domain else []
        return curl(w.net.d, "GET", "/v1/users/" + userid, cert=cert,
                    key=key, headers=hdr)
    # example.org's registry, with its CA after its certificate: admitted.
    r = ask(chained, key, ORG)
    assert r.status == 200 and r.json()["userid"] == "bob@example.net", r
    assert "registry" not in r.json(), r
    # Without its CA nothing can be judged.
    r = ask(server, key, ORG)
    assert r.status == 403 and "followed by its CA" in error(r)["message"], r
    # alice's own certificate is no registry's, whatever it claims.
    alice = chain_file(tmpdir_shared, "alice-chain.pem", w.alice.cert,
                       w.org.ca)
    r = ask(alice, w.alice.key, ORG)
    assert r.status == 403 and "not a registry" in error(r)["message"], r
    # A domain without a rule there, and example.net itself.
    r = ask(chained, key, "example.com")
    assert r.status == 403 and "no federation rule" in \
        error(r)["message"], r
    r = ask(chained, key, NET)
    assert r.status == 403, r
    # A registry gets no recursive answer: no question goes round.
    r = ask(chained, key, ORG, "alice@example.org")
    assert r.status == 403 and "answers for example.net only" in \
        error(r)["message"], r
    # The CA pinned there is another one: refused.
    w.net.ctl("federation", "add", ORG, "--ca-fingerprint", "ab" * 32)
    r = ask(chained, key, ORG)
    assert r.status == 403 and "not the one pinned" in \
        error(r)["message"], r
    # federation_serve = off answers no registry at all.
    w.net.ctl("federation", "add", ORG, "--ca-fingerprint", ca_sha(w.org))
    w.net.restart(*w.settings, "federation_serve=off", port=w.p_net)
    r = ask(chained, key, ORG)
    assert r.status == 403 and "federation_serve" in error(r)["message"], r


def test_impersonation_dns_down_and_no_registry(registry, tmpdir_shared):
    w = World(registry, tmpdir_shared)
    w.pin_both()
    # An SRV record that names a registry with another CA, one that
    # calls itself example.net and has a certificate for its name.
    evil = registry(domain=NET, hosts=("dir.example.net", "localhost"))
    ns2 = NameServer(os.path.join(tmpdir_shared, "ns2"), {
        NET: (srv(NET, evil.d.port), False),
        "example.com": ("www A 127.0.0.1\n", False)})
    digest = w.org.digest()
    w.restart_org(f"federation_dns={ns2.server}")
    r = w.lookup()
    assert r.status == 502 and error(r)["code"] == "untrusted_registry", r
    assert "pinned" in error(r)["message"] and "refusing it" in \
        error(r)["message"], r
    assert w.org.digest() == digest
    # example.com publishes no registry.
    w.org.ctl("federation", "add", "example.com", "--ca-fingerprint",
              ca_sha(w.net))
    r = w.lookup("carol@example.com")
    assert r.status == 502 and error(r)["code"] in (
        "no_registry", "no_domain"), r
    assert "example.com publishes no registry" in error(r)["message"], r
    # The DNS server is down: an error within the configured wait.
    w.restart_org(f"federation_dns=127.0.0.1@{free_port()}",
                  "federation_timeout=2")
    t0 = time.time()
    r = w.lookup()
    assert r.status == 502 and error(r)["code"] == "dns_unavailable", r
    assert time.time() - t0 < 15


def test_rate_and_negative_caching(registry, tmpdir_shared):
    w = World(registry, tmpdir_shared, org_settings=(
        "federation_rate=3", "federation_negative_ttl=60"))
    w.pin_both()
    before = metric(w.net.d, "in", "ok")
    # The same unknown user again and again: asked once, then the kept
    # refusal answers.
    for _ in range(5):
        r = w.lookup("nobody@example.net")
        assert r.status == 404, r
    assert metric(w.net.d, "in", "ok") == before + 1
    # New names each time: the user's budget of questions runs out.
    got = [w.lookup(f"n{i}@example.net").status for i in range(3)]
    assert got == [404, 404, 429], got
    r = w.lookup("n9@example.net")
    assert r.status == 429 and error(r)["code"] == "rate_limited", r
    assert metric(w.org.d, "out", "limited") >= 2


def test_dane(registry, tmpdir_shared):
    tlsa = "_{port}._tcp.dir TLSA 2 0 1 {sha}\n"
    w = World(registry, tmpdir_shared, net_extra=tlsa, net_signed=True)
    w.net.ctl("federation", "add", ORG, "--ca-fingerprint", ca_sha(w.org))
    w.org.ctl("federation", "add", NET, "--dane")
    # Without a trust anchor DANE can not be used.
    r = w.lookup()
    assert r.status == 502 and error(r)["code"] == "dane_unusable", r
    w.restart_org("federation_dns_anchor=" + w.ns.anchor(NET))
    r = w.lookup()
    assert r.status == 200, r
    via = r.json()["registry"]
    assert via["trust"] == "dane" and via["ca_sha256"] == ca_sha(w.net), via


def test_dane_record_of_another_ca_is_refused(registry, tmpdir_shared):
    tlsa = "_{port}._tcp.dir TLSA 2 0 1 " + "ab" * 32 + "\n"
    w = World(registry, tmpdir_shared, net_extra=tlsa, net_signed=True)
    w.net.ctl("federation", "add", ORG, "--ca-fingerprint", ca_sha(w.org))
    w.org.ctl("federation", "add", NET, "--dane")
    w.restart_org("federation_dns_anchor=" + w.ns.anchor(NET))
    r = w.lookup()
    assert r.status == 502 and error(r)["code"] == "untrusted_registry", r
    assert "DANE-TA" in error(r)["message"], r


def cache_hits(d):
    for line in d.metrics().splitlines():
        if line.startswith("dird_cache_hits_total "):
            return int(line.split()[1])
    raise AssertionError("no dird_cache_hits_total in /metrics")


def test_a_rule_change_applies_at_once_with_the_cache_on(registry,
                                                         tmpdir_shared):
    """With its cache on, dird keeps the federation rule of a domain in
    it (a cached federated lookup no longer reads the database); a rule
    removed with dirctl applies at the next lookup all the same, not a
    minute later (schema 008 announces the change), and so does one
    added again."""
    w = World(registry, tmpdir_shared, org_settings=("cache=local",))
    w.pin_both()
    wait_until(lambda: w.lookup().status == 200, "a federated answer",
               timeout=30)
    # Cached: the certificate check and the rule both come from memory.
    before = cache_hits(w.org.d)
    assert w.lookup().status == 200
    assert cache_hits(w.org.d) - before == 2
    w.org.ctl("federation", "remove", NET)
    wait_until(lambda: w.lookup().status == 403, "the removal to apply",
               timeout=10)
    r = w.lookup()
    assert error(r)["code"] == "federation_refused", r
    w.org.ctl("federation", "add", NET, "--ca-fingerprint", ca_sha(w.net))
    wait_until(lambda: w.lookup().status == 200, "the rule to apply again",
               timeout=10)
