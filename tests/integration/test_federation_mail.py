"""Mail across domains (dird/fed.c fed_post, dird/inbox.c): alice of
example.org leaves mail for bob of example.net, who is away.  Her dchat
posts it to her own registry, which relays it to example.net's over the
registries' mutual TLS, naming her as the sender (IRP-Sender); example.net
keeps it only from a registry its administrator's rule trusts, and only
for that registry's own users.  Bob's dchat judges the signature by the
CA his registry vouches for example.org.  Nothing readable is stored on
either side, and every refusal says why."""
import json
import os

from conftest import curl
from test_dchat_foreign import enrol
from test_federation_lookup import NET, ORG, World, ca_sha, chain_file
from test_mail import mail, sign_encrypt, write


def inbox(peer):
    return json.loads(peer.dchat("inbox", "--json").stdout.splitlines()[-1])


def stored(reg):
    return reg.pg.psql("SELECT sender || ' ' || msg_id FROM inbox ORDER BY "
                       "id", reg.db).splitlines()


def relay(w, sender, data, msg_id, to="bob@example.net", cert=None,
          key=None, domain=ORG):
    """A post to example.net as example.org's registry would make it."""
    hdr = [f"IRP-Message-Id: {msg_id}", f"IRP-Domain: {domain}"]
    if sender is not None:
        hdr.append(f"IRP-Sender: {sender}")
    return curl(w.net.d, "POST", f"/v1/users/{to}/inbox", cert=cert,
                key=key, body=data, ctype="application/pkcs7-mime",
                headers=hdr)


def error(r):
    return r.json()["error"]


def test_mail_to_another_domain_waits_at_its_registry(registry,
                                                      tmpdir_shared):
    t = tmpdir_shared
    w = World(registry, t)
    w.pin_both()
    alice = enrol(w.org, w, "alice@" + ORG, os.path.join(t, "alice"))
    bob = enrol(w.net, w, "bob@" + NET, os.path.join(t, "bob"))
    body = write(os.path.join(t, "body.txt"), "The ferry leaves at six.\n")
    p = alice.dchat("mail", bob.userid, body, "--subject", "Ferry")
    assert "left at the registry" in p.stdout, p.stdout
    # Kept at example.net, from alice, as ciphertext; nothing at home.
    (row,) = stored(w.net)
    assert row.startswith("alice@example.org "), row
    assert stored(w.org) == []
    dump = w.net.pg.psql("SELECT encode(data, 'escape') FROM inbox",
                         w.net.db)
    assert "ferry" not in dump.lower() and "Ferry" not in dump
    # Both registries say what they did.
    fwd = w.org.pg.psql("SELECT actor, target, detail FROM audit_log "
                        "WHERE action = 'inbox.forward'", w.org.db)
    assert fwd.startswith("alice@example.org|bob@example.net|"), fwd
    assert "to=example.net" in fwd, fwd
    post = w.net.pg.psql("SELECT actor, detail FROM audit_log WHERE "
                         "action = 'inbox.post'", w.net.db)
    assert post.startswith("alice@example.org|") and \
        "via=example.org" in post, post
    # A chat message to bob, who is away, takes the same way.
    p = alice.dchat("send", bob.userid, "call me when you land")
    assert "the message waits at the registry" in p.stdout, p.stdout
    counted = [x for x in w.org.d.metrics().splitlines()
               if x.startswith('dird_inbox_posts_total{result="forwarded"}')]
    assert counted == ['dird_inbox_posts_total{result="forwarded"} 2'], \
        counted
    # Bob's dchat checks both against example.org's CA, as his registry
    # vouches for it, and keeps them.
    got = inbox(bob)
    ferry = [m for m in got if m.get("subject") == "Ferry"]
    assert len(ferry) == 1 and ferry[0]["verified"] is True, got
    assert ferry[0]["from"] == alice.userid and "rejected" not in \
        ferry[0], got
    assert all(m["verified"] for m in got), got
    assert stored(w.net) == []
    text = bob.dchat("inbox", "1").stdout
    assert "The ferry leaves at six." in text, text[:500]


def test_what_crosses_domains_is_checked_on_both_sides(registry,
                                                      tmpdir_shared):
    t = tmpdir_shared
    w = World(registry, t)
    bob = enrol(w.net, w, "bob@" + NET, os.path.join(t, "bob"))
    carol = w.org.user("carol@example.org")
    msg = sign_encrypt(t, w.alice, bob, mail(w.alice, bob, "m1"), "m1")

    def send(data=msg, msg_id="m1"):
        return curl(w.org.d, "POST", f"/v1/users/{bob.userid}/inbox",
                    cert=w.alice.cert, key=w.alice.key, body=data,
                    ctype="application/pkcs7-mime",
                    headers=[f"IRP-Message-Id: {msg_id}"])
    # No rule at example.org for example.net: nothing leaves.
    r = send()
    assert r.status == 403 and error(r)["code"] == "federation_refused", r
    # Our rule, but example.net trusts no registry of example.org.
    w.org.ctl("federation", "add", NET, "--ca-fingerprint", ca_sha(w.net))
    r = send()
    assert r.status == 502 and error(r)["code"] == "remote_refused", r
    assert stored(w.net) == []
    # Checked before it leaves: clear text is refused at home.
    r = send(data=b"From: alice\r\n\r\nhello in clear\r\n")
    assert r.status == 400 and error(r)["code"] == "not_encrypted", r
    w.net.ctl("federation", "add", ORG, "--ca-fingerprint", ca_sha(w.org))
    w.restart_org()  # the kept refusal of example.net goes
    r = send()
    assert r.status == 201 and r.json()["sender"] == w.alice.userid, r
    # example.net's refusals reach alice as they were said.
    r = send()
    assert r.status == 409 and error(r)["code"] == "duplicate_message", r
    assert "the registry of example.net" in error(r)["message"], r
    r = curl(w.org.d, "POST", "/v1/users/nobody@example.net/inbox",
             cert=w.alice.cert, key=w.alice.key, body=msg,
             ctype="application/pkcs7-mime", headers=["IRP-Message-Id: m2"])
    assert r.status == 404 and error(r)["code"] == "unknown_user", r
    # Forged: carol signs, alice's registry relays it as alice's; bob's
    # dchat sees whose signature it is and keeps it apart.
    forged = sign_encrypt(t, carol, bob, mail(carol, bob, "f1", "forged"),
                          "f1")
    r = send(data=forged, msg_id="f1")
    assert r.status == 201, r
    got = inbox(bob)
    good = [m for m in got if m["verified"]]
    bad = [m for m in got if not m["verified"]]
    assert len(good) == 1 and good[0]["from"] == w.alice.userid, got
    assert len(bad) == 1 and "signed by carol" in bad[0]["rejected"], got
    # A registry speaks for its own users only, and names them.
    chained = chain_file(t, "org-chain.pem",
                         os.path.join(w.org.data, "server.pem"), w.org.ca)
    key = os.path.join(w.org.data, "server.key")
    for sender, status, code in (
            ("mallory@example.com", 403, "forbidden"),
            ("bob@example.net", 403, "forbidden"),
            (None, 400, "invalid_sender"),
            ("not a user id", 400, "invalid_sender")):
        r = relay(w, sender, msg, "r1", cert=chained, key=key)
        assert r.status == status and error(r)["code"] == code, (sender, r)
    # ... and for the other registry's users only.
    r = relay(w, w.alice.userid, msg, "r1", to="carol@example.org",
              cert=chained, key=key)
    assert r.status == 403 and error(r)["code"] == "other_domain", r
    # alice's own certificate is no registry's, whatever it claims.
    alice_chain = chain_file(t, "alice-chain.pem", w.alice.cert, w.org.ca)
    r = relay(w, w.alice.userid, msg, "r2", cert=alice_chain,
              key=w.alice.key)
    assert r.status == 403, r
    assert stored(w.net) == [], stored(w.net)
