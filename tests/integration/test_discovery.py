"""dchat finds its registry in the DNS: `dchat init` and `dchat restore`
without --server look up the user id's domain's `_irp._tcp` SRV
records (client/registry.c, irp/irp_dns.c) on a real name server (Knot
DNS), and keep using that registry through the same DNS server.  What
the DNS says never replaces the CA fingerprint: an SRV record that
points to another registry is refused, and nothing is stored."""
import os

from conftest import NameServer, Peer, call, free_port

HOSTS = ("dir.example.org", "localhost", "127.0.0.1")


def zones(port, extra=""):
    return {"example.org": (f"_irp._tcp SRV 10 5 {port} dir.example.org.\n"
                            f"dir A 127.0.0.1\n{extra}", False),
            "example.com": ("www A 127.0.0.1\n", False)}


def init(peer, code, dns, *extra):
    return peer.dchat("init", "--dns-server", dns, "--user", peer.userid,
                      "--code", code, "--ca-fingerprint",
                      peer.reg.fingerprint, *extra, check=False)


def config(peer):
    with open(os.path.join(peer.home, "config")) as f:
        return dict(line.split(" = ", 1) for line in f.read().splitlines())


def test_init_by_srv_then_chat(registry, tmpdir_shared):
    reg = registry(hosts=HOSTS)
    ns = NameServer(tmpdir_shared, zones(reg.d.port))
    people = {}
    for name in ("alice", "bob"):
        uid = f"{name}@example.org"
        reg.add(uid)
        p = Peer(reg, uid, os.path.join(tmpdir_shared, name))
        r = init(p, reg.code(uid), ns.server)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "enrolled as " + uid in r.stdout, r.stdout
        c = config(p)
        assert c["server"] == f"https://dir.example.org:{reg.d.port}", c
        assert c["dns"] == ns.server, c
        people[name] = p
    alice, bob = people["alice"], people["bob"]
    # Later commands reach the registry by the name, through that DNS.
    r = alice.dchat("lookup", "alice@example.org")
    assert "alice@example.org" in r.stdout, r.stdout
    bob.run(extra=["--auto-accept"])
    alice.run()
    ca, cb = call(alice, bob)
    alice.cmd(cmd="msg", session=ca["session"],
              text="found you through the DNS")
    got = bob.wait("message", session=cb["session"])
    assert got["text"] == "found you through the DNS", got


def test_srv_to_another_registry_is_refused(registry, tmpdir_shared):
    """The SRV record of example.org names a registry with another CA
    (a forged record, or a wrong one): dchat refuses it by the CA
    fingerprint and stores nothing."""
    reg = registry(hosts=HOSTS)
    evil = registry(hosts=HOSTS)
    ns = NameServer(tmpdir_shared, zones(evil.d.port))
    reg.add("alice@example.org")
    p = Peer(reg, "alice@example.org", os.path.join(tmpdir_shared, "a"))
    r = init(p, reg.code("alice@example.org"), ns.server)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "fingerprint" in r.stderr and "refusing it" in r.stderr, r.stderr
    assert "_irp._tcp.example.org" in r.stderr, r.stderr
    for f in ("key.pem", "cert.pem", "config", "ca.pem"):
        assert not os.path.exists(os.path.join(p.home, f)), f


def test_no_registry_and_dns_down(registry, tmpdir_shared):
    reg = registry(hosts=HOSTS)
    ns = NameServer(tmpdir_shared, zones(reg.d.port))
    reg.add("carol@example.org")
    # A domain that publishes no registry.
    p = Peer(reg, "carol@example.com", os.path.join(tmpdir_shared, "c"))
    r = init(p, "x" * 20, ns.server)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "example.com publishes no registry" in r.stderr, r.stderr
    # The DNS server is down: a plain error within the query's wait.
    p = Peer(reg, "carol@example.org", os.path.join(tmpdir_shared, "d"))
    r = init(p, reg.code("carol@example.org"), f"127.0.0.1@{free_port()}")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "DNS" in r.stderr, r.stderr
    assert not os.path.exists(os.path.join(p.home, "key.pem"))
    # With --server the DNS is not asked for the registry.
    r = p.dchat("init", "--server", reg.d.url, "--user", p.userid,
                "--code", reg.code("carol@example.org"), "--ca-fingerprint",
                reg.fingerprint, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "dns" not in config(p), config(p)
