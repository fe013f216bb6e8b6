"""The inbox (dird/inbox.c, schema 006): S/MIME messages waiting for a
user who is away.  Posted with the sender's certificate, kept as the
opaque bytes they are (the database holds no word of their text),
listed, fetched and deleted by their recipient alone, within the
administrator's quotas.  Made and read here with `openssl cms`, as any
S/MIME mail program would."""
import os
import shutil
import subprocess

from conftest import openssl

TEXT = "Meet me at the old mill at seven"


def seal(tmp, sender, recipients, text=TEXT, name="m", pad=0):
    """text signed by sender and encrypted to recipients, as openssl cms
    makes it: the S/MIME message, bytes."""
    src = os.path.join(tmp, name + ".txt")
    with open(src, "w") as f:
        f.write(f"From: {sender.userid}\r\nSubject: hello\r\n\r\n{text}\r\n"
                + "x" * pad)
    signed = os.path.join(tmp, name + ".signed")
    out = os.path.join(tmp, name + ".p7m")
    openssl("cms", "-sign", "-in", src, "-signer", sender.cert, "-inkey",
            sender.key, "-out", signed)
    openssl("cms", "-encrypt", "-aes-256-gcm", "-in", signed, "-out", out,
            *[x for r in recipients for x in ("-recip", r.cert)])
    with open(out, "rb") as f:
        return f.read()


def post(sender, to, body, msg_id="m1", ctype="application/pkcs7-mime",
         expect=False):
    """expect: wait for the registry's word before sending the body
    (Expect: 100-continue), as a client of a large upload does, so that
    an early refusal is read rather than cut off mid-send."""
    headers = [f"IRP-Message-Id: {msg_id}"] if msg_id is not None else []
    if expect:
        headers.append("Expect: 100-continue")
    return sender.req("POST", f"/v1/users/{to}/inbox", body=body,
                      ctype=ctype, headers=headers)


def listing(user):
    r = user.req("GET", "/v1/me/inbox")
    assert r.status == 200, r
    return r.json()["messages"]


def code(r):
    return r.json()["error"]["code"]


def test_post_list_fetch_and_delete(reg, tmpdir_shared):
    t = tmpdir_shared
    alice, bob, carol = (reg.user(f"{n}@example.org")
                         for n in ("alice", "bob", "carol"))
    msg = seal(t, alice, [bob])
    r = post(alice, bob.userid, msg)
    assert r.status == 201, r
    item = r.json()
    assert item["sender"] == alice.userid and item["msg_id"] == "m1", item
    assert item["size"] == len(msg) and item["id"] >= 1, item
    assert item["expires_at"] > item["stored_at"], item
    # Once per sender and message id: a second post is refused.
    r = post(alice, bob.userid, msg)
    assert r.status == 409 and code(r) == "duplicate_message", r
    # Nobody but bob sees it, or can take it away.
    assert listing(carol) == [] and listing(alice) == []
    mid = item["id"]
    r = carol.req("GET", f"/v1/me/inbox/{mid}")
    assert r.status == 404 and code(r) == "no_message", r
    r = carol.req("DELETE", f"/v1/me/inbox/{mid}")
    assert r.status == 404, r
    for bad in ("0", "-1", "1x", "99999999999999999999", "01"):
        r = bob.req("GET", f"/v1/me/inbox/{bad}")
        assert r.status == 404, (bad, r)
    (seen,) = listing(bob)
    assert seen == item, (seen, item)
    # The bytes as posted; openssl cms opens and verifies them.
    r = bob.req("GET", f"/v1/me/inbox/{mid}", raw_out=True)
    assert r.status == 200 and r.body == msg, r
    got = os.path.join(t, "got.p7m")
    with open(got, "wb") as f:
        f.write(r.body)
    inner = os.path.join(t, "inner.txt")
    openssl("cms", "-decrypt", "-in", got, "-recip", bob.cert, "-inkey",
            bob.key, "-out", inner)
    p = openssl("cms", "-verify", "-in", inner, "-CAfile", reg.ca,
                "-purpose", "smimesign")
    assert TEXT in p.stdout, p.stdout
    # Not a word of it in the database.
    dump = subprocess.run([shutil.which("pg_dump") or "pg_dump", "-d",
                           reg.dsn], capture_output=True, text=True,
                          check=True).stdout
    assert "inbox" in dump and TEXT not in dump and "old mill" not in dump
    # Deleted once fetched; audited both ways.
    r = bob.req("DELETE", f"/v1/me/inbox/{mid}")
    assert r.status == 200 and r.json() == {"deleted": mid}, r
    assert listing(bob) == []
    r = bob.req("DELETE", f"/v1/me/inbox/{mid}")
    assert r.status == 404, r
    audit = reg.pg.psql("SELECT action, actor, target FROM audit_log "
                        "WHERE action LIKE 'inbox.%' ORDER BY id", reg.db)
    assert audit.splitlines() == [
        f"inbox.post|{alice.userid}|{bob.userid}",
        f"inbox.delete|{bob.userid}|{bob.userid}"], audit


def test_what_is_refused_is_not_stored(reg, tmpdir_shared):
    t = tmpdir_shared
    alice, bob = (reg.user(f"{n}@example.org") for n in ("alice", "bob"))
    msg = seal(t, alice, [bob])
    cases = [
        (post(alice, bob.userid, TEXT.encode()), 400, "not_encrypted"),
        (post(alice, bob.userid, msg, ctype="application/octet-stream"),
         415, "unsupported_media_type"),
        (post(alice, bob.userid, msg, msg_id=None), 400,
         "invalid_message_id"),
        (post(alice, bob.userid, msg, msg_id="a b"), 400,
         "invalid_message_id"),
        (post(alice, bob.userid, msg, msg_id="x" * 129), 400,
         "invalid_message_id"),
        (post(alice, "nobody@example.org", msg), 404, "unknown_user"),
        # Another domain without a federation rule: nothing leaves.
        (post(alice, "bob@example.net", msg), 403, "federation_refused"),
        (post(alice, bob.userid, b""), 400, "empty_body"),
    ]
    for r, status, c in cases:
        assert r.status == status and code(r) == c, (status, c, r)
    # Signed but not encrypted: readable by anyone, so not kept here.
    signed = os.path.join(t, "m.signed")
    with open(signed, "rb") as f:
        r = post(alice, bob.userid, f.read())
    assert r.status == 400 and code(r) == "not_encrypted", r
    # Without a certificate, nobody posts.
    r = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w",
                        "%{http_code}", "--cacert", reg.ca, "-X", "POST",
                        "-H", "Content-Type: application/pkcs7-mime", "-H",
                        "IRP-Message-Id: m9", "--data-binary", "@" +
                        os.path.join(t, "m.p7m"),
                        reg.d.url + f"/v1/users/{bob.userid}/inbox"],
                       capture_output=True, text=True)
    assert r.stdout == "401", r
    # A disabled recipient is not told apart from an unknown one.
    reg.ctl("user", "disable", bob.userid)
    r = post(alice, bob.userid, msg)
    assert r.status == 404 and code(r) == "unknown_user", r
    reg.ctl("user", "enable", bob.userid)
    # A sender whose certificate was revoked a moment ago.
    r = alice.req("POST", f"/v1/certificates/{alice.serial}/revoke",
                  json_body={})
    assert r.status == 200, r
    r = post(alice, bob.userid, msg)
    assert r.status == 401, r
    assert listing(bob) == []
    assert reg.pg.psql("SELECT count(*) FROM inbox", reg.db) == "0"


def test_quotas(registry, tmpdir_shared):
    t = tmpdir_shared
    reg = registry("inbox_msg_max=400000", "inbox_user_count=2",
                   "inbox_sender_mb=1", "inbox_user_mb=1")
    alice, bob, carol, dave = (reg.user(f"{n}@example.org")
                               for n in ("alice", "bob", "carol", "dave"))
    # Too large: refused before it is read.
    big = seal(t, alice, [bob], name="big", pad=400000)
    r = post(alice, bob.userid, big, expect=True)
    assert r.status == 413 and code(r) == "body_too_large", r
    # Two messages may wait for bob; a third is over his quota.
    for i in (1, 2):
        r = post(alice, bob.userid, seal(t, alice, [bob], name=f"s{i}"),
                 msg_id=f"s{i}")
        assert r.status == 201, r
    r = post(carol, bob.userid, seal(t, carol, [bob], name="s3"),
             msg_id="s3")
    assert r.status == 507 and code(r) == "over_quota", r
    assert "2 messages wait for bob@example.org" in \
        r.json()["error"]["message"], r
    assert [m["msg_id"] for m in listing(bob)] == ["s1", "s2"]
    # One sender may have 1 MiB waiting, for everyone together.
    mid = 280000
    for i, to in enumerate((carol, dave)):
        r = post(alice, to.userid, seal(t, alice, [to], name=f"b{i}",
                                        pad=mid), msg_id=f"b{i}")
        assert r.status == 201, r
    r = post(alice, dave.userid, seal(t, alice, [dave], name="b3", pad=mid),
             msg_id="b3")
    assert r.status == 507 and "you have" in r.json()["error"]["message"], r
    # What bob fetched and deleted makes room again.
    for m in listing(bob):
        assert bob.req("DELETE", f"/v1/me/inbox/{m['id']}").status == 200
    r = post(carol, bob.userid, seal(t, carol, [bob], name="s3"),
             msg_id="s3")
    assert r.status == 201, r


def inbox_metric(d, result):
    for line in d.metrics().splitlines():
        if line.startswith(f'dird_inbox_posts_total{{result="{result}"}}'):
            return int(line.split()[-1])
    raise AssertionError(f"no inbox metric {result}")


def test_posts_are_counted(reg, tmpdir_shared):
    alice, bob = (reg.user(f"{n}@example.org") for n in ("alice", "bob"))
    msg = seal(tmpdir_shared, alice, [bob])
    assert post(alice, bob.userid, msg).status == 201
    assert post(alice, bob.userid, msg).status == 409
    assert post(alice, "nobody@example.org", msg).status == 404
    assert (inbox_metric(reg.d, "stored"), inbox_metric(reg.d, "duplicate"),
            inbox_metric(reg.d, "refused"),
            inbox_metric(reg.d, "over_quota")) == (1, 1, 1, 0)


def test_bodies_held_at_once_are_bounded(registry, tmpdir_shared):
    """What all requests' bodies may hold in memory at once (bodies_mb):
    a message that does not fit is refused with 503 and Retry-After, not
    kept, and the room is there again for the next."""
    reg = registry("bodies_mb=1")
    alice, bob = (reg.user(f"{n}@example.org") for n in ("alice", "bob"))
    big = seal(tmpdir_shared, alice, [bob], name="big", pad=1536 * 1024)
    r = post(alice, bob.userid, big, msg_id="big")
    assert r.status == 503 and code(r) == "busy", r
    assert "bodies_mb" in r.json()["error"]["message"], r
    hdr = os.path.join(tmpdir_shared, "h")
    p = subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "-D", hdr, "--cacert", reg.ca,
         "--cert", alice.cert, "--key", alice.key, "-H",
         "IRP-Message-Id: big2", "-H", "Content-Type: application/pkcs7-mime",
         "--data-binary", "@" + os.path.join(tmpdir_shared, "big.p7m"),
         reg.d.url + f"/v1/users/{bob.userid}/inbox"], capture_output=True)
    assert p.returncode == 0, p.stderr
    with open(hdr) as f:
        assert "retry-after: 5" in f.read().lower()
    assert listing(bob) == []
    r = post(alice, bob.userid, seal(tmpdir_shared, alice, [bob]))
    assert r.status == 201, r
    assert len(listing(bob)) == 1
