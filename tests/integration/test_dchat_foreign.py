"""dchat across domains: alice@example.org and bob@example.net, each
enrolled at the registry of their own domain (found by its SRV record on
a real name server), call each other.  Each checks the other by what
their own registry vouches for, asked afresh in the handshake
(client/vouch.c, client/peertls.c): the chain against the other
domain's CA as the registry accepted it (a pinned fingerprint here),
the certificate among those the lookup lists.  What fails that is
refused in the handshake with a sentence that says why, and no session
is opened: a certificate revoked a moment ago, a domain the registry
has no rule for, a certificate of another CA that claims example.net,
a registry that can not be asked."""
import hashlib
import json
import os
import subprocess
import threading
import time

from conftest import Peer, Terminal, call, free_port, run
from test_federation_lookup import NET, ORG, World, ca_sha


def enrol(reg, w, userid, home):
    """A dchat home for userid at reg, found by SRV (no --server)."""
    p = Peer(reg, userid, home)
    r = p.dchat("init", "--dns-server", w.ns.server, "--user", userid,
                "--code", reg.code(userid), "--ca-fingerprint",
                reg.fingerprint)
    assert "enrolled as " + userid in r.stdout, r.stdout
    reg.peers.append(p)  # stopped, and checked, with the registry
    return p


def world(registry, tmp):
    """The two registries with pinned rules both ways, and a dchat for
    alice and bob.  World enrols a device of each with curl; that bob's
    address goes, so that a call reaches his dchat."""
    w = World(registry, tmp)
    w.pin_both()
    r = w.bob.req("DELETE", "/v1/me/addresses")
    assert r.status == 200, r
    alice = enrol(w.org, w, "alice@" + ORG, os.path.join(tmp, "alice"))
    bob = enrol(w.net, w, "bob@" + NET, os.path.join(tmp, "bob"))
    return w, alice, bob


def check_peer(ev, userid, domain):
    p = ev["peer"]
    assert p["userid"] == userid and p["domain"] == domain, p
    assert p["trust"] == "pinned" and p["revocation"] == "lookup", p
    assert "asked through yours" in p["revocation_note"], p


def serial(peer):
    out = run(["openssl", "x509", "-in", peer.cert, "-noout",
               "-serial"]).stdout
    return out.strip().split("=")[1].lower().lstrip("0")


def set_contact(peer, userid, port):
    """peer's contacts file names only userid at 127.0.0.1:port."""
    with open(os.path.join(peer.home, "contacts"), "w") as f:
        f.write(f"{userid} 127.0.0.1 {port} -\n")


def opened(peer, start):
    """The sessions peer opened since the event numbered start."""
    return [e for e in peer.events[start:] if e["event"] == "connected"]


def refused_call(caller, callee, what):
    """caller calls callee: the call fails, for a reason that says what
    (the first attempt, at the address the contacts remember, or the one
    at the address the registry gives), and nobody opens a session."""
    mc, me = caller.mark(), callee.mark()
    caller.cmd(cmd="call", user=callee.userid)
    caller.wait("call_failed", start=mc)
    time.sleep(0.5)
    reasons = [e["reason"] for e in caller.events[mc:]
               if e["event"] in ("call_retry", "call_failed")]
    assert [r for r in reasons if what in r], reasons
    assert not opened(caller, mc) and not opened(callee, me), \
        callee.events[me:]
    return [r for r in reasons if what in r][0]


def frame(obj):
    body = json.dumps(obj).encode()
    return len(body).to_bytes(4, "big") + b"J" + body


def s_client(port, ca, cert, key, data, until, timeout=30):
    """openssl s_client as a caller: data on its stdin, its output until
    `until` shows (or it ends)."""
    p = subprocess.Popen(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-tls1_3",
         "-alpn", "dchat/1", "-CAfile", ca, "-purpose", "sslclient",
         "-verify_return_error", "-cert", cert, "-key", key],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT)
    got, cond = bytearray(), threading.Condition()

    def read():
        while chunk := p.stdout.read1(65536):
            with cond:
                got.extend(chunk)
                cond.notify_all()
        with cond:
            cond.notify_all()
    t = threading.Thread(target=read, daemon=True)
    t.start()
    p.stdin.write(data)
    p.stdin.flush()
    with cond:
        cond.wait_for(lambda: until in got or p.poll() is not None,
                      timeout=timeout)
    p.stdin.close()
    p.wait(30)
    t.join(30)
    return got.decode(errors="replace")


def test_chat_and_a_file_across_domains(registry, tmpdir_shared):
    w, alice, bob = world(registry, tmpdir_shared)
    alice.run(extra=["--auto-accept"])
    bob.run(extra=["--auto-accept"])
    ca, cb = call(alice, bob)
    check_peer(ca, bob.userid, NET)
    check_peer(cb, alice.userid, ORG)
    assert ca["peer"]["code"] == cb["peer"]["code"]
    sa, sb = ca["session"], cb["session"]
    alice.cmd(cmd="msg", session=sa, text="hello from example.org")
    assert bob.wait("message", session=sb)["text"] == \
        "hello from example.org"
    bob.cmd(cmd="msg", session=sb, text="hello from example.net")
    assert alice.wait("message", session=sa)["text"] == \
        "hello from example.net"
    src = os.path.join(tmpdir_shared, "across.bin")
    with open(src, "wb") as f:
        f.write(os.urandom(256 * 1024))
    dst = os.path.join(tmpdir_shared, "across-received.bin")
    alice.cmd(cmd="file", session=sa, path=src)
    offer = bob.wait("file_offer", session=sb)
    bob.cmd(cmd="file_accept", session=sb, id=offer["id"], path=dst)
    bob.wait("file_received", session=sb, timeout=120)
    alice.wait("file_delivered", session=sa, timeout=120)
    with open(src, "rb") as a, open(dst, "rb") as b:
        assert hashlib.sha256(a.read()).digest() == \
            hashlib.sha256(b.read()).digest()
    alice.cmd(cmd="hangup", session=sa)
    bob.wait("closed", session=sb)
    # The other way round.
    cb, ca = call(bob, alice)
    check_peer(cb, alice.userid, ORG)
    check_peer(ca, bob.userid, NET)
    bob.cmd(cmd="hangup", session=cb["session"])
    alice.wait("closed", session=ca["session"])
    # dchat lookup: the domain, the rule, the CA, as alice's registry
    # vouches for them, and bob's certificate valid by that CA.
    out = alice.dchat("lookup", bob.userid).stdout
    assert "domain example.net, CA pinned by your registry" in out, out
    assert ca_sha(w.net) in out and "certificate valid" in out, out
    j = json.loads(alice.dchat("lookup", "--json", bob.userid).stdout)
    assert j["registry"] == {"domain": NET, "trust": "pinned",
                             "ca_sha256": ca_sha(w.net)}, j
    assert {d["status"] for d in j["devices"]} == {"valid"}, j
    # A user of our own domain shows none of it.
    j = json.loads(alice.dchat("lookup", "--json", alice.userid).stdout)
    assert "registry" not in j, j
    # openssl s_client with bob's certificate calls alice: her dchat
    # checks it by her registry's word, and answers.
    hello = frame({"type": "Capabilities_Offer", "version": 1,
                   "caps": ["chat"]}) + \
        frame({"type": "User_Info", "userid": bob.userid, "name": "Bob"})
    m = alice.mark()
    out = s_client(alice.port, w.org.ca, bob.cert, bob.key, hello,
                   b"Capabilities_Accept")
    assert "Capabilities_Accept" in out and \
        "Verify return code: 0 (ok)" in out, out
    check_peer(alice.wait("connected", start=m), bob.userid, NET)
    # A person at a terminal reads where the peer is from, and why its
    # CA is trusted.
    assert alice.stop() == 0
    term = Terminal(alice, free_port())
    try:
        term.read_until(b"ready; type 'help'")
        term.type(f"call {bob.userid}")
        out = term.read_until(b"verification code:")
        assert b"<bob@example.net> - example.net, CA pinned by your " \
            b"registry\r\n" in out, out
        assert b"revocation status: lookup" in out, out
        assert b"WARNING" not in out, out
    finally:
        rc = term.close()
    assert rc == 0, term.out


def test_allow_and_deny_by_domain(registry, tmpdir_shared):
    w, alice, bob = world(registry, tmpdir_shared)
    alice.run(extra=["--auto-accept"])
    bob.run(extra=["--auto-accept", "--no-contact-requests"])
    bob.cmd(cmd="allow", user="@" + ORG)
    bob.wait("lists", allow=["@" + ORG])
    ca, cb = call(alice, bob)
    assert cb["restricted"] is False, cb
    alice.cmd(cmd="hangup", session=ca["session"])
    bob.wait("closed", session=cb["session"])
    bob.cmd(cmd="deny", user="@" + ORG)
    bob.wait("lists", deny=["@" + ORG])
    m = bob.mark()
    alice.cmd(cmd="call", user=bob.userid)
    ref = bob.wait("refused", start=m)
    assert ref["peer"] == alice.userid and "deny list" in ref["reason"], ref
    assert not opened(bob, m), bob.events[m:]


def test_refusals_across_domains(registry, tmpdir_shared):
    w, alice, bob = world(registry, tmpdir_shared)
    alice.run(extra=["--auto-accept"])
    bob.run(extra=["--auto-accept"])
    ca, cb = call(alice, bob)  # alice's contacts now hold bob's address
    alice.cmd(cmd="hangup", session=ca["session"])
    bob.wait("closed", session=cb["session"])
    # No rule for example.net at alice's registry: nothing vouches for
    # bob, and alice's dchat refuses him.
    w.org.ctl("federation", "remove", NET)
    reason = refused_call(alice, bob, "cannot check bob@example.net with "
                          "your registry")
    assert "no federation rule for example.net" in reason, reason
    w.org.ctl("federation", "add", NET, "--ca-fingerprint", ca_sha(w.net))
    time.sleep(1.2)  # the refusal is kept for federation_negative_ttl
    # A certificate of another CA that says bob@example.net answers at
    # bob's address: its chain does not lead to example.net's CA.
    # (Bob is away, so that alice does not find him after that.)
    evil = registry(domain=NET, hosts=("dir.example.net", "localhost"))
    evil.add(bob.userid, "Bob")
    mallory = Peer(evil, bob.userid, os.path.join(tmpdir_shared, "mallory"))
    mallory.init(evil.code(bob.userid))
    evil.peers.append(mallory)
    mallory.run(extra=["--auto-accept"])
    assert bob.stop() == 0
    set_contact(alice, bob.userid, mallory.port)
    refused_call(alice, mallory, "checked against the CA your registry "
                 "vouches for example.net")
    # Bob's certificate revoked a moment ago at example.net: the fresh
    # lookup no longer lists it.
    bob.run(extra=["--auto-accept"])
    set_contact(alice, bob.userid, bob.port)
    w.net.ctl("cert", "revoke", serial(bob), "--reason", "keyCompromise")
    refused_call(alice, bob, "the registry of example.net does not list "
                 "it for bob@example.net (revoked, or not this user's)")
    # Alice's own registry is down: her dchat's last answer about bob
    # stands in (VOUCH_STALE_SECS), and it lists his certificate no more.
    w.org.d.stop()
    refused_call(alice, bob, "the registry of example.net does not list "
                 "it for bob@example.net")
    # Started again, her dchat has no answer of its own to go by, and
    # nobody can vouch for bob.
    assert alice.stop() == 0
    alice.run(extra=["--auto-accept"], registered=False)
    refused_call(alice, bob, "cannot check bob@example.net with your "
                 "registry")


def contacts(peer):
    path = os.path.join(peer.home, "contacts")
    if not os.path.exists(path):
        return ""
    with open(path) as f:
        return f.read()


def failed_call(caller, callee):
    """caller calls callee, who is never reached: the reason given."""
    m = caller.mark()
    caller.cmd(cmd="call", user=callee.userid)
    return caller.wait("call_failed", start=m)["reason"]


def test_dns_down_then_the_other_registry_down(registry, tmpdir_shared):
    w, alice, bob = world(registry, tmpdir_shared)
    alice.run(extra=["--auto-accept"])
    bob.run(extra=["--auto-accept"])
    # The name server is down before alice's registry ever looked for
    # example.net's: the call fails, saying so, and nothing is kept.
    w.ns.stop()
    reason = failed_call(alice, bob)
    assert "DNS" in reason or "dns" in reason, reason
    assert bob.userid not in contacts(alice)
    w.ns.start()
    time.sleep(1.2)  # the failure is kept for federation_negative_ttl
    # Now example.net's registry is down, before anything was heard
    # from it: nothing can vouch for bob, and nothing is kept.
    w.net.d.stop()
    reason = failed_call(alice, bob)
    assert "registry of example.net" in reason and (
        "can not be reached" in reason or "did not answer" in reason), reason
    assert bob.userid not in contacts(alice)
    # Back up: alice calls bob, who is kept in her contacts.
    w.net.start(*w.settings, port=w.p_net)
    time.sleep(1.2)
    ca, cb = call(alice, bob)
    check_peer(ca, bob.userid, NET)
    check_peer(cb, alice.userid, ORG)
    alice.cmd(cmd="hangup", session=ca["session"])
    bob.wait("closed", session=cb["session"])
    assert bob.userid in contacts(alice)
    # example.net's registry down again: the call still works from the
    # address alice keeps.  Her registry stands in with what example.net
    # said before (federation_stale_max), bob's dchat with what his
    # registry said of alice (VOUCH_STALE_SECS); each shows it as an
    # earlier answer, not a check made now.
    w.net.d.stop()
    ca, cb = call(alice, bob)
    pa, pb = ca["peer"], cb["peer"]
    assert pa["domain"] == NET and pa["trust"] == "pinned", pa
    assert pa["revocation"] == "cached", pa
    assert "listed as of" in pa["revocation_note"], pa
    assert pb["domain"] == ORG and pb["revocation"] == "cached", pb
    assert "your registry could not be asked" in pb["revocation_note"], pb
    alice.cmd(cmd="msg", session=ca["session"], text="still here")
    assert bob.wait("message", session=cb["session"])["text"] == \
        "still here"


def test_a_contact_request_across_domains(registry, tmpdir_shared):
    """Bob admits only his own domain; alice, of another, may leave one
    request, checked by what bob's registry vouches for, as within one
    domain."""
    w, alice, bob = world(registry, tmpdir_shared)
    bob.run(extra=["--auto-accept"])
    bob.cmd(cmd="allow", user="@" + NET)
    bob.wait("lists", allow=["@" + NET])
    alice.run()
    alice.cmd(cmd="request", user=bob.userid, text="Alice of example.org")
    con = alice.wait("connected")
    assert con["restricted"] is True and con["peer"]["domain"] == NET, con
    req = bob.wait("contact_request")
    assert req["userid"] == alice.userid, req
    assert req["note"] == "Alice of example.org", req
    assert "contact request recorded" in alice.wait("closed")["reason"]
    # Accepted: alice of example.org gets through like anyone listed.
    bob.cmd(cmd="allow", user=alice.userid)
    bob.wait("lists", allow=["@" + NET, alice.userid])
    ca, cb = call(alice, bob)
    assert cb["restricted"] is False and cb["peer"]["domain"] == ORG, cb
