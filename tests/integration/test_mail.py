"""S/MIME mail between users (client/mail.c): `dchat mail` composes,
signs and encrypts to every device of the recipient and leaves it in the
recipient's inbox at the registry; `dchat inbox` fetches, judges and
keeps it in a Maildir that standard tools read.  What fails a check at
receipt (another signer than the sender, an altered message, a revoked
certificate, a replay) is kept apart with the reason, never as mail."""
import base64
import hashlib
import json
import os
import shutil
import time

from conftest import Peer, Terminal, curl, free_port, openssl, people

TEXT = "Lunch at noon by the fountain?\nBring the plans.\n"


def write(path, data):
    with open(path, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)
    return path


def inbox(peer):
    return json.loads(peer.dchat("inbox", "--json").stdout.splitlines()[-1])


def maildir_files(peer, sub="new"):
    d = os.path.join(peer.home, "Maildir", sub)
    return sorted(os.path.join(d, f) for f in os.listdir(d))


def test_mail_with_a_5mb_file_to_two_devices(reg, tmpdir_shared):
    t = tmpdir_shared
    alice, bob = people(reg, "alice", "bob")
    # Bob's second device: a certificate of its own.
    bob2 = Peer(reg, bob.userid, os.path.join(t, "bob2"))
    bob2.init(reg.code(bob.userid))
    blob = os.urandom(5 * 1024 * 1024)
    att = write(os.path.join(t, "plans.bin"), blob)
    body = write(os.path.join(t, "body.txt"), TEXT)
    p = alice.dchat("mail", bob.userid, body, "--subject", "Lunch",
                    "--attach", att)
    assert "left at the registry" in p.stdout, p.stdout
    # Nothing of it readable in the registry's database.
    dump = reg.pg.psql("SELECT encode(data, 'escape') FROM inbox", reg.db)
    assert dump and "fountain" not in dump and "Lunch" not in dump
    # Bob's first device fetches it: verified, kept, gone from the store.
    (m,) = inbox(bob)
    assert m["from"] == alice.userid and m["subject"] == "Lunch", m
    assert m["verified"] is True and "rejected" not in m, m
    assert reg.pg.psql("SELECT count(*) FROM inbox", reg.db) == "0"
    text = bob.dchat("inbox", "1").stdout
    assert "Lunch at noon by the fountain?" in text, text[:500]
    assert 'filename="plans.bin"' in text, text[:2000]
    # Exactly once: fetching again brings nothing new.
    assert len(inbox(bob)) == 1
    # The Maildir file is S/MIME that openssl reads with either device's
    # key: the message is encrypted to both.
    (path,) = maildir_files(bob)
    for dev in (bob, bob2):
        inner = os.path.join(t, f"inner-{os.path.basename(dev.home)}")
        openssl("cms", "-decrypt", "-in", path, "-recip", dev.cert,
                "-inkey", dev.key, "-out", inner)
        v = openssl("cms", "-verify", "-in", inner, "-CAfile", reg.ca,
                    "-purpose", "smimesign")
        assert "fountain" in v.stdout, v.stdout[:300]
    # The attachment comes out whole.
    # (text mode: the CRLFs read as newlines)
    part = text.split('filename="plans.bin"', 1)[1].split("\n\n", 1)[1]
    b64 = part.split("\n--", 1)[0].replace("\n", "")
    assert hashlib.sha256(base64.b64decode(b64)).digest() == \
        hashlib.sha256(blob).digest()


def sign_encrypt(t, signer, recip, text, name):
    """As a mail program makes it with openssl cms: S/MIME bytes."""
    src = write(os.path.join(t, name + ".txt"), text)
    signed = os.path.join(t, name + ".signed")
    out = os.path.join(t, name + ".p7m")
    openssl("cms", "-sign", "-in", src, "-signer", signer.cert, "-inkey",
            signer.key, "-out", signed)
    openssl("cms", "-encrypt", "-aes-256-gcm", "-in", signed, "-out", out,
            "-recip", recip.cert)
    with open(out, "rb") as f:
        return f.read()


def post(reg, sender, to, data, msg_id):
    r = curl(reg.d, "POST", f"/v1/users/{to.userid}/inbox",
             cert=sender.cert, key=sender.key, body=data,
             ctype="application/pkcs7-mime",
             headers=[f"IRP-Message-Id: {msg_id}"])
    assert r.status == 201, r
    return r.json()["id"]


def mail(sender, to, mid, subject="hi", text="hello"):
    return (f"From: {sender.userid}\r\nTo: {to.userid}\r\n"
            f"Subject: {subject}\r\nMessage-ID: <{mid}@example.org>\r\n"
            f"\r\n{text}\r\n")


def test_what_fails_at_receipt_is_never_shown_as_mail(reg, tmpdir_shared):
    t = tmpdir_shared
    alice, bob, carol = people(reg, "alice", "bob", "carol")
    # Made by hand with openssl cms and posted with curl: accepted.
    post(reg, alice, bob, sign_encrypt(t, alice, bob,
                                       mail(alice, bob, "m1", "by hand"),
                                       "m1"), "m1")
    # Signed by carol, posted by alice.
    post(reg, alice, bob, sign_encrypt(t, carol, bob,
                                       mail(carol, bob, "m2", "forged"),
                                       "m2"), "m2")
    # A replay: the same message (same Message-ID) under another id.
    post(reg, alice, bob, sign_encrypt(t, alice, bob,
                                       mail(alice, bob, "m1", "by hand"),
                                       "m1b"), "m1b")
    # Altered at the registry: a byte of its ciphertext changed.
    mid = post(reg, alice, bob, sign_encrypt(t, alice, bob,
                                             mail(alice, bob, "m3"), "m3"),
               "m3")
    reg.pg.psql("UPDATE inbox SET data = set_byte(data, "
                "octet_length(data) / 2, get_byte(data, "
                f"octet_length(data) / 2) # 1) WHERE id = {mid}", reg.db)
    # Signed and posted by alice, but saying it is from carol.
    post(reg, alice, bob, sign_encrypt(t, alice, bob,
                                       mail(carol, bob, "m5", "spoof"),
                                       "m5"), "m5")
    got = inbox(bob)
    good = [m for m in got if m["verified"]]
    bad = [m for m in got if not m["verified"]]
    assert [m["subject"] for m in good] == ["by hand"], got
    reasons = sorted(m["rejected"] for m in bad)
    assert len(bad) == 3, got
    assert any("says it is from carol@example.org, but was signed by "
               "alice@example.org" in r for r in reasons), reasons
    assert all(m["from"] == alice.userid for m in got), got
    assert any("signed by carol@example.org, but posted by "
               "alice@example.org" in r for r in reasons), reasons
    assert any("can not be opened" in r for r in reasons), reasons
    # The replay was dropped, and the store holds nothing more.
    assert reg.pg.psql("SELECT count(*) FROM inbox", reg.db) == "0"
    # A rejected message is not shown as mail.
    n = [m["n"] for m in got if not m["verified"]][0]
    p = bob.dchat("inbox", str(n), check=False)
    assert p.returncode == 1 and "rejected" in p.stderr, p.stderr
    out = bob.dchat("inbox").stdout
    assert "REJECTED from alice@example.org" in out, out
    # A sender whose certificate was revoked after posting.
    post(reg, alice, bob, sign_encrypt(t, alice, bob,
                                       mail(alice, bob, "m4", "late"), "m4"),
         "m4")
    serial = openssl("x509", "-in", alice.cert, "-noout",
                     "-serial").stdout.strip().split("=")[1]
    reg.ctl("cert", "revoke", serial.lower().lstrip("0"))
    got = inbox(bob)
    late = [m for m in got if m.get("message_id") == "<m4@example.org>" or
            (not m["verified"] and "no more" in m.get("rejected", ""))]
    assert late and not late[0]["verified"], got


def test_a_running_dchat_hears_of_mail(reg, tmpdir_shared):
    alice, bob = people(reg, "alice", "bob")
    body = write(os.path.join(tmpdir_shared, "b.txt"), "while you were out")
    alice.dchat("mail", bob.userid, body, "--subject", "Missed you")
    # Fetched once bob runs and is registered.
    bob.run()
    ev = bob.wait("mail")
    assert ev["from"] == alice.userid and ev["subject"] == "Missed you", ev
    # More mail while it runs: handed over directly, as bob answers.
    m = bob.mark()
    alice.dchat("mail", bob.userid, body, "--subject", "Again")
    ev = bob.wait("mail", start=m)
    assert ev["subject"] == "Again", ev
    # What is left at the registry meanwhile (here by a mail program,
    # with curl) is heard of at once: bob's dchat waits at the registry
    # for events (GET /v1/me/events), and asks on its own only every
    # five minutes.
    m = bob.mark()
    t0 = time.monotonic()
    post(reg, alice, bob, sign_encrypt(tmpdir_shared, alice, bob,
                                       mail(alice, bob, "s1", "Stored"),
                                       "s1"), "s1")
    ev = bob.wait("mail", start=m, timeout=10)
    assert ev["subject"] == "Stored", ev
    assert time.monotonic() - t0 < 5, time.monotonic() - t0
    # Forged: carol signs what alice posts; heard of as a rejection.
    carol = people(reg, "carol")[0]
    data = sign_encrypt(tmpdir_shared, carol, bob,
                        mail(carol, bob, "f1", "forged"), "f1")
    m = bob.mark()
    post(reg, alice, bob, data, "f1")
    ev = bob.wait("mail_rejected", start=m, timeout=10)
    assert ev["from"] == alice.userid and "signed by carol" in \
        ev["reason"], ev
    assert not bob.has("mail", subject="forged"), bob.events
    assert bob.stop() == 0
    out = bob.dchat("inbox").stdout
    assert "Missed you" in out and "Again" in out and "Stored" in out, out
    assert "REJECTED" in out, out
    # A person at a terminal reads it as a sentence.
    alice.dchat("mail", bob.userid, body, "--subject", "At the terminal")
    term = Terminal(bob, free_port())
    try:
        out = term.read_until(b"new mail from alice@example.org: "
                              b"At the terminal")
        assert b"WARNING" not in out, out
    finally:
        rc = term.close()
    assert rc == 0, term.out


def test_a_message_and_a_file_for_someone_away_are_delivered_later(
        reg, tmpdir_shared):
    t = tmpdir_shared
    alice, bob = people(reg, "alice", "bob")
    # Bob is not running: nothing answers at any address.
    p = alice.dchat("send", bob.userid, "see you at the dock at nine")
    assert "the message waits at the registry" in p.stdout, p.stdout
    blob = os.urandom(5 * 1024 * 1024)
    src = write(os.path.join(t, "chart.bin"), blob)
    p = alice.dchat("sendfile", bob.userid, src)
    assert "the file waits at the registry" in p.stdout, p.stdout
    # The registry holds both, and not a word of the text.
    assert reg.pg.psql("SELECT count(*) FROM inbox", reg.db) == "2"
    dump = reg.pg.psql("SELECT encode(data, 'escape') FROM inbox", reg.db)
    assert "dock at nine" not in dump and "chart.bin" not in dump
    # Bob starts later and gets both, verified, as delivered later.
    bob.run()
    msg = bob.wait("message_later")
    assert msg["from"] == alice.userid, msg
    assert msg["text"] == "see you at the dock at nine", msg
    f = bob.wait("file_later")
    assert f["from"] == alice.userid and f["name"] == "chart.bin", f
    assert f["sha256"] == hashlib.sha256(blob).hexdigest(), f
    with open(f["path"], "rb") as g:
        assert g.read() == blob
    assert f["path"].startswith(os.path.join(bob.home, "downloads"))
    assert reg.pg.psql("SELECT count(*) FROM inbox", reg.db) == "0"
    # Exactly once: a restart brings neither again.
    assert bob.stop() == 0
    bob.run()
    # Two refreshes: the fetch the first one asks for has run once the
    # second is answered (one loop does both, in turn).
    for _ in range(2):
        r = bob.mark()
        bob.cmd(cmd="refresh")
        bob.wait("refreshed", start=r)
    later = [e for e in bob.events  # since this run began
             if e["event"] in ("message_later", "file_later")]
    assert later == [], later
    assert bob.stop() == 0
    # Someone bob denied can not leave him anything either.
    carol = people(reg, "carol")[0]
    with open(os.path.join(bob.home, "deny"), "a") as g:
        g.write(carol.userid + "\n")
    carol.dchat("send", bob.userid, "let me in")
    got = inbox(bob)
    bad = [m for m in got if not m["verified"]]
    assert bad and "deny list" in bad[-1]["rejected"], got


def test_a_restored_device_reads_mail_sent_to_the_first(reg, tmpdir_shared):
    """Mail sealed for bob's only device, fetched by the device he set up
    afterwards with dchat restore: the key kept from the backup opens
    it."""
    t = tmpdir_shared
    alice, bob = people(reg, "alice", "bob")
    body = write(os.path.join(t, "old.txt"), "for the first device only")
    alice.dchat("mail", bob.userid, body, "--subject", "Old")
    pf = write(os.path.join(t, "pass"), "correct horse battery staple\n")
    bob.dchat("backup", "--passphrase-file", pf)
    bob2 = Peer(reg, bob.userid, os.path.join(t, "bob2"))
    reg.peers.append(bob2)
    bob2.dchat("restore", "--server", reg.d.url, "--user", bob.userid,
               "--ca-fingerprint", reg.fingerprint, "--code",
               reg.code(bob.userid), "--passphrase-file", pf)
    (m,) = inbox(bob2)
    assert m["subject"] == "Old" and m["verified"], m
    assert "for the first device only" in bob2.dchat("inbox", "1").stdout
    # The second device's backup carries the first one's key too, so a
    # third device set up from it still reads what went to the first.
    p = bob2.dchat("backup", "--passphrase-file", pf)
    assert "and 1 of earlier devices" in p.stdout, p.stdout
    r = curl(reg.d, "GET", "/v1/me/backup", cert=bob2.cert, key=bob2.key,
             raw_out=True)
    assert r.status == 200, r
    p12 = write(os.path.join(t, "backup.p12"), r.body)
    # A standard PKCS#12: openssl opens it, two keys and their
    # certificates, this device's named as the user.
    out = openssl("pkcs12", "-in", p12, "-passin", "file:" + pf,
                  "-nodes").stdout
    assert out.count("BEGIN PRIVATE KEY") == 2, out.count("PRIVATE KEY")
    assert out.count("friendlyName: " + bob.userid) == 2, out
    bob3 = Peer(reg, bob.userid, os.path.join(t, "bob3"))
    reg.peers.append(bob3)
    p = bob3.dchat("restore", "--server", reg.d.url, "--user", bob.userid,
                   "--ca-fingerprint", reg.fingerprint, "--code",
                   reg.code(bob.userid), "--passphrase-file", pf)
    assert "the keys of certificates" in p.stdout, p.stdout
    assert len(os.listdir(os.path.join(bob3.home, "restored"))) == 4
    # (What bob2 fetched is gone from the registry: its Maildir file,
    # sealed for the first device, is copied over.)
    assert inbox(bob3) == []
    shutil.copy(maildir_files(bob2)[0],
                os.path.join(bob3.home, "Maildir", "new"))
    assert "for the first device only" in bob3.dchat("inbox", "1").stdout
    # Without the restored key, it could not have been opened.
    shutil.rmtree(os.path.join(bob2.home, "restored"))
    p = bob2.dchat("inbox", "1", check=False)
    assert p.returncode == 1, p.stdout


def test_mail_to_someone_online_goes_directly(reg, tmpdir_shared):
    """No mail server: when one of bob's devices answers, dchat mail
    hands the S/MIME message to it over PeerTLS, and bob's dchat checks
    and keeps it as it does what waited at the registry."""
    alice, bob = people(reg, "alice", "bob")
    bob.run()
    body = write(os.path.join(tmpdir_shared, "d.txt"), "straight to you")
    p = alice.dchat("mail", bob.userid, body, "--subject", "Direct")
    assert "handed to bob@example.org directly" in p.stdout, \
        p.stdout + p.stderr
    ev = bob.wait("mail")
    assert ev["from"] == alice.userid and ev["subject"] == "Direct", ev
    assert not bob.has("file_received"), bob.events
    # Nothing went through the registry's store.
    assert reg.pg.psql("SELECT count(*) FROM inbox", reg.db) == "0"
    # One sender hands over 20 messages in ten minutes at most; the next
    # is left at the registry, whose quotas hold (and bob, hearing of
    # it at once, fetches it from there).
    for i in range(2, 21):
        p = alice.dchat("mail", bob.userid, body, "--subject", f"D{i}")
        assert "directly" in p.stdout, (i, p.stdout + p.stderr)
    p = alice.dchat("mail", bob.userid, body, "--subject", "D21")
    assert "left at the registry" in p.stdout, p.stdout + p.stderr
    assert bob.wait("mail", subject="D21")["from"] == alice.userid
    assert bob.stop() == 0
    got = inbox(bob)
    assert len(got) == 21 and all(m["verified"] for m in got), got
    m = [m for m in got if m["subject"] == "Direct"][0]
    assert m["verified"] and m["subject"] == "Direct", m
    assert "straight to you" in bob.dchat("inbox", "1").stdout
    # Its tmp holds nothing left over.
    assert os.listdir(os.path.join(bob.home, "Maildir", "tmp")) == []


def test_a_call_nobody_picked_up_carries_mail_and_nothing_else(
        reg, tmpdir_shared):
    """A caller offering only "mail" is not rung through, so it must not
    chat either: openssl s_client as alice tries, and bob's dchat hangs
    up on it without showing a message."""
    from test_dchat_foreign import frame, s_client
    alice, bob = people(reg, "alice", "bob")
    bob.run()
    hello = frame({"type": "Capabilities_Offer", "version": 1,
                   "caps": ["mail"]}) + \
        frame({"type": "User_Info", "userid": alice.userid,
               "name": "Alice"}) + \
        frame({"type": "chat", "id": 1, "text": "sneaking in"})
    out = s_client(bob.port, reg.ca, alice.cert, alice.key, hello,
                   b"only mail is taken")
    assert "Capabilities_Accept" in out and "only mail is taken" in out, out
    assert not bob.has("message"), bob.events
    assert not bob.has("incoming"), bob.events
