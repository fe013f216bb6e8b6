"""dchat end to end (issue 4): a real dird on a real PostgreSQL, peers on
loopback driven through `dchat run --json`, and openssl s_client as a
foreign TLS client."""
import hashlib
import json
import os
import re
import shutil
import socket
import ssl
import stat
import struct
import subprocess
import threading
import time

import pytest

from conftest import (Dird, Lines, Peer, Registry, ca_sign, call,
                      check_peer_cert, dchat_path, free_port,
                      peer_client_ctx, people, rfc3339, run, spawn,
                      stderr_of,
                      wait_until)


def test_init_layout_and_wrong_fingerprint(reg, tmpdir_shared):
    (alice,) = people(reg, "alice")
    assert stat.S_IMODE(os.stat(alice.key).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(alice.home).st_mode) == 0o700
    for f in ("cert.pem", "ca.pem", "crl.der", "config"):
        assert os.path.exists(os.path.join(alice.home, f)), f
    text = run(["openssl", "x509", "-in", alice.cert, "-noout",
                "-subject"]).stdout
    assert "alice@example.org" in text
    run(["openssl", "verify", "-CAfile", os.path.join(alice.home, "ca.pem"),
         alice.cert])
    # A CA whose fingerprint is not the one given is refused, and nothing
    # is enrolled (the code stays usable).
    reg.ctl("user", "add", "eve@example.org", "--name", "Eve")
    eve = Peer(reg, "eve@example.org", os.path.join(tmpdir_shared, "eve"))
    code = reg.code("eve@example.org")
    p = eve.dchat("init", "--server", reg.d.url, "--user", eve.userid,
                  "--code", code, "--ca-fingerprint", "00" * 32, check=False)
    assert p.returncode != 0
    assert "fingerprint" in p.stderr and "refusing" in p.stderr, p.stderr
    assert not os.path.exists(eve.key)
    eve.init(code)
    # A wrong code: the registry's own words reach the user.
    reg.ctl("user", "add", "zed@example.org", "--name", "Zed")
    zed = Peer(reg, "zed@example.org", os.path.join(tmpdir_shared, "zed"))
    p = zed.dchat("init", "--server", reg.d.url, "--user", zed.userid,
                  "--code", "not-a-code", "--ca-fingerprint",
                  reg.fingerprint, check=False)
    assert p.returncode != 0 and "the registry says" in p.stderr, p.stderr


def test_chat_both_ways_and_50mb_file(reg, tmpdir_shared):
    alice, bob = people(reg, "alice", "bob")
    alice.run(extra=["--auto-accept"])
    bob.run()  # Bob answers by hand
    m = bob.mark()
    alice.cmd(cmd="call", user=bob.userid)
    inc = bob.wait("incoming", start=m)
    assert inc["peer"]["userid"] == alice.userid
    bob.cmd(cmd="accept", session=inc["session"])
    ca = alice.wait("connected")
    cb = bob.wait("connected")
    # Who is on the other end, and the same verification code on both.
    assert ca["peer"]["userid"] == bob.userid and ca["direction"] == "out"
    assert cb["peer"]["userid"] == alice.userid and cb["direction"] == "in"
    assert ca["peer"]["name"] == "Bob"
    assert ca["peer"]["revocation"] == "good"
    assert "CN=" in ca["peer"]["issuer"]
    assert len(ca["peer"]["fingerprint"]) == 64
    assert ca["peer"]["code"] == cb["peer"]["code"]
    sa, sb = ca["session"], cb["session"]
    # Messages both ways, each confirmed by an ack.
    alice.cmd(cmd="msg", session=sa, text="hello Bob \u2603")
    sent = alice.wait("sent", session=sa)
    msg = bob.wait("message", session=sb)
    assert msg["text"] == "hello Bob \u2603" and msg["from"] == alice.userid
    alice.wait("ack", session=sa, id=sent["id"])
    bob.cmd(cmd="msg", session=sb, text="hi Alice")
    sent = bob.wait("sent", session=sb)
    assert alice.wait("message", session=sa)["text"] == "hi Alice"
    bob.wait("ack", session=sb, id=sent["id"])
    # ping / pong
    alice.cmd(cmd="ping", session=sa)
    alice.wait("pong", session=sa)
    # 50 MB, byte-identical.
    src = os.path.join(tmpdir_shared, "big.bin")
    with open(src, "wb") as f:
        for _ in range(50):
            f.write(os.urandom(1024 * 1024))
    dst = os.path.join(tmpdir_shared, "received.bin")
    t0 = time.time()
    alice.cmd(cmd="file", session=sa, path=src)
    offer = bob.wait("file_offer", session=sb)
    assert offer["name"] == "big.bin" and offer["size"] == 50 * 1024 * 1024
    bob.cmd(cmd="file_accept", session=sb, id=offer["id"], path=dst)
    # How fast is a measurement (tests/bench/run, row dchat_file_mbps),
    # not a test: the deadlines only keep a stuck transfer from hanging.
    got = bob.wait("file_received", session=sb, timeout=600)
    alice.wait("file_delivered", session=sa, timeout=120)
    print(f"50 MiB from Alice to Bob in {time.time() - t0:.1f} s")
    assert got["path"] == dst
    h1 = hashlib.sha256(open(src, "rb").read()).hexdigest()
    h2 = hashlib.sha256(open(dst, "rb").read()).hexdigest()
    assert h1 == h2 == offer["sha256"]
    assert os.path.getsize(dst) == 50 * 1024 * 1024
    # The contacts file remembers Bob's address and fingerprint.
    with open(os.path.join(alice.home, "contacts")) as f:
        contacts = f.read()
    assert f"bob@example.org 127.0.0.1 {bob.port} " \
           f"{ca['peer']['fingerprint']}" in contacts
    # Hang up: Bob is told.
    alice.cmd(cmd="hangup", session=sa)
    assert "hung up" in bob.wait("closed", session=sb)["reason"]
    # Lookup shows Bob online with a valid certificate at his address.
    p = alice.dchat("lookup", "--json", bob.userid)
    j = json.loads(p.stdout)
    assert j["online"] is True
    dev = j["devices"][0]
    assert dev["status"] == "valid"
    assert {(a["ip"], a["port"]) for a in dev["addresses"]} >= \
        {("127.0.0.1", bob.port)}
    # Quitting deregisters: Bob goes offline in the DIR.
    assert bob.stop() == 0
    j = json.loads(alice.dchat("lookup", "--json", bob.userid).stdout)
    assert j["online"] is False


def test_one_shot_send_and_sendfile(reg, tmpdir_shared):
    alice, bob = people(reg, "alice", "bob")
    bob.run(extra=["--auto-accept", "--accept-files"])
    # dchat send exits 0 only once Bob acknowledged the message (a
    # non-zero exit already fails in Peer.dchat): it says so on the way.
    p = alice.dchat("send", bob.userid, "one shot")
    assert re.search(r"^\[\d+\] message \d+ delivered$", p.stderr, re.M), \
        p.stderr
    assert bob.wait("message", text="one shot")["from"] == alice.userid
    src = os.path.join(tmpdir_shared, "note.txt")
    with open(src, "wb") as f:
        f.write(b"file body\n" * 1000)
    alice.dchat("sendfile", bob.userid, src)
    got = bob.wait("file_received")
    with open(got["path"], "rb") as f:
        assert f.read() == b"file body\n" * 1000
    assert got["path"].startswith(os.path.join(bob.home, "downloads"))
    # The terminal face: a person types commands and plain text.
    port = free_port()
    m = bob.mark()
    term = spawn(
        [dchat_path(), "--home", alice.home, "run", "--listen",
         f"127.0.0.1:{port}", "--advertise", f"127.0.0.1:{port}"],
        reg.base, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    out = Lines(term.stdout)
    term.stdin.write(f"call {bob.userid}\n")
    term.stdin.flush()
    bob.wait("connected", start=m)
    out.until(lambda ln: "verification code:" in ln)
    term.stdin.write("hello from the terminal\n")
    term.stdin.flush()
    bob.wait("message", start=m, text="hello from the terminal")
    # The ack travels back: the terminal says the message was delivered.
    out.until(lambda ln: "message 1 delivered" in ln)
    term.stdin.write("sessions\n")
    term.stdin.flush()
    out.until(lambda ln: "*[1] bob@example.org out (open)" in ln)
    term.stdin.write("quit\n")
    term.stdin.flush()
    assert term.wait(30) == 0, stderr_of(term)
    text = out.rest()
    assert "connected to Bob <bob@example.org>" in text, text
    bob.wait("closed", start=m)
    # Nobody there: the message waits at the registry, delivered later
    # (tests/integration/test_mail.py follows it to Bob).
    bob.stop()
    p = alice.dchat("send", bob.userid, "anyone?", "--timeout", "20")
    assert "can not be reached now: the message waits at the registry" \
        in p.stdout, p.stdout + p.stderr


def test_stale_cached_address_falls_back_to_dir(reg):
    alice, bob = people(reg, "alice", "bob")
    alice.run()
    bob.run(extra=["--auto-accept"])
    old = bob.port
    ca, _ = call(alice, bob)
    alice.cmd(cmd="hangup", session=ca["session"])
    alice.wait("closed", session=ca["session"])
    # Bob moves to another port; Alice's contacts still say the old one.
    bob.stop()
    bob.run(extra=["--auto-accept"])
    assert bob.port != old
    m = alice.mark()
    alice.cmd(cmd="call", user=bob.userid)
    retry = alice.wait("call_retry", start=m)
    assert retry["user"] == bob.userid
    ca = alice.wait("connected", start=m)
    assert ca["peer"]["userid"] == bob.userid
    assert ca["addr"] == f"127.0.0.1 {bob.port}"
    bob.wait("connected")


def test_deny_revoked_and_identity_mismatch(reg):
    alice, bob, carol, mallory = people(reg, "alice", "bob", "carol",
                                        "mallory")
    bob.run(extra=["--auto-accept"])
    # Bob denies Alice: her handshake fails, Bob sees no message.
    bob.cmd(cmd="deny", user=alice.userid)
    assert alice.userid in bob.wait("lists")["deny"]
    p = alice.dchat("send", bob.userid, "let me in", "--timeout", "20",
                    check=False)
    assert p.returncode != 0
    assert "refused" in p.stderr, p.stderr
    ref = bob.wait("refused", peer=alice.userid)
    assert "deny list" in ref["reason"]
    # Undeny: she gets through.
    bob.cmd(cmd="undeny", user=alice.userid)
    bob.wait("lists", deny=[])
    alice.dchat("send", bob.userid, "thanks")
    thanks = bob.wait("message", text="thanks")
    # Bob reports what he receives in order: had the refused call carried
    # its message through, it would be listed before this later one.
    assert not bob.has("message", text="let me in"), bob.events
    assert [e["session"] for e in bob.has("connected")] == \
        [thanks["session"]], bob.events
    # Carol's certificate is revoked: Bob (after fetching the new CRL)
    # refuses it during the handshake.  The DIR no longer answers her
    # lookups, so she calls the address her contacts file remembers.
    carol.dchat("send", bob.userid, "before")
    bob.wait("message", text="before")
    serial = run(["openssl", "x509", "-in", carol.cert, "-noout",
                  "-serial"]).stdout.strip().split("=")[1].lower()
    reg.ctl("cert", "revoke", serial.lstrip("0"), "--reason",
            "keyCompromise")
    m = bob.mark()
    bob.cmd(cmd="refresh")
    bob.wait("refreshed", start=m)
    p = carol.dchat("send", bob.userid, "revoked me", "--timeout", "20",
                    check=False)
    assert p.returncode != 0
    ref = bob.wait("refused", start=m)
    assert "revoked" in ref["reason"], ref
    assert ref["peer"] == carol.userid
    # A later message on the same path arrives; the refused one never.
    alice.dchat("send", bob.userid, "after carol")
    bob.wait("message", start=m, text="after carol")
    assert not bob.has("message", text="revoked me"), bob.events
    # Mallory answers at the address Bob registered: Alice aborts.
    bob.stop()
    mallory.run(extra=["--auto-accept"])
    bob.run(advertise=f"127.0.0.1:{mallory.port}", extra=["--auto-accept"])
    os.unlink(os.path.join(alice.home, "contacts"))
    p = alice.dchat("send", bob.userid, "for bob only", "--timeout", "20",
                    check=False)
    assert p.returncode != 0
    assert "identity mismatch" in p.stderr, p.stderr
    # Mallory's first message is the one Alice sends her later, by name.
    alice.dchat("send", mallory.userid, "for mallory")
    mallory.wait("message", text="for mallory")
    assert [e["text"] for e in mallory.has("message")] == ["for mallory"], \
        mallory.events


def test_allow_list_and_contact_request(reg):
    alice, bob, carol = people(reg, "alice", "bob", "carol")
    bob.run(extra=["--auto-accept"])
    bob.cmd(cmd="allow", user=carol.userid)
    bob.wait("lists", allow=[carol.userid])
    carol.dchat("send", bob.userid, "I am on the list")
    bob.wait("message", text="I am on the list")
    # Alice is not on the list: she may leave one request, nothing else.
    p = alice.dchat("send", bob.userid, "plain chat", "--timeout", "20",
                    check=False)
    assert p.returncode != 0 and "contact request" in p.stderr, p.stderr
    # A later message on the same path arrives; the refused one never.
    carol.dchat("send", bob.userid, "still on the list")
    bob.wait("message", text="still on the list")
    assert not bob.has("message", text="plain chat"), bob.events
    alice.run()
    alice.cmd(cmd="request", user=bob.userid,
              text="Alice from the meetup, may I?")
    assert alice.wait("connected")["restricted"] is True
    req = bob.wait("contact_request")
    assert req["userid"] == alice.userid and req["name"] == "Alice"
    assert req["note"] == "Alice from the meetup, may I?"
    assert "contact request recorded" in alice.wait("closed")["reason"]
    m = bob.mark()
    bob.cmd(cmd="requests")
    assert bob.wait("requests", start=m)["requests"] == [
        {"userid": alice.userid, "name": "Alice",
         "note": "Alice from the meetup, may I?"}]
    # Bob accepts the request: Alice joins the allow list and gets through.
    bob.cmd(cmd="allow", user=alice.userid)
    bob.wait("lists", allow=[carol.userid, alice.userid])
    alice.stop()
    alice.dchat("send", bob.userid, "thank you")
    bob.wait("message", text="thank you")
    # With contact requests turned off, an unlisted caller is refused in
    # the handshake.
    bob.stop()
    bob.run(extra=["--auto-accept", "--no-contact-requests"])
    bob.cmd(cmd="unallow", user=alice.userid)
    bob.wait("lists", allow=[carol.userid])
    p = alice.dchat("send", bob.userid, "again", "--timeout", "20",
                    check=False)
    assert p.returncode != 0
    assert "not on the allow list" in bob.wait("refused")["reason"]


def expired_cert(reg, peer):
    """A certificate for peer's key and identity, signed by the DIR's CA,
    valid only in January 2020."""
    csr = os.path.join(reg.base, "expired-req.pem")
    run(["openssl", "req", "-new", "-key", peer.key, "-out", csr, "-subj",
         f"/UID={peer.userid}/CN={peer.userid.split('@')[0].title()}"])
    return ca_sign(reg.data, reg.base, csr, "expired",
                   start="20200101000000Z", end="20200201000000Z")


def test_openssl_s_client_interop(reg):
    alice, bob = people(reg, "alice", "bob")
    bob.run(extra=["--auto-accept"])
    ca = os.path.join(alice.home, "ca.pem")
    base = ["openssl", "s_client", "-connect", f"127.0.0.1:{bob.port}",
            "-alpn", "dchat/1", "-CAfile", ca, "-purpose", "sslclient",
            "-verify_return_error"]

    def frame(obj):
        body = json.dumps(obj).encode()
        return struct.pack(">I", len(body)) + b"J" + body

    # What a caller says first; Bob answers it once he took the caller.
    hello = frame({"type": "Capabilities_Offer", "version": 1,
                   "caps": ["chat"]}) + \
        frame({"type": "User_Info", "userid": alice.userid, "name": "Alice"})

    def s_client(*extra, data=b"", until=None):
        """s_client with data on its stdin, kept open until `until` shows
        in its output or, without one, until s_client ends by itself: a
        refusal, which TLS 1.3 sends after the client's handshake ended,
        ends it.  Closing stdin ends a session that goes on."""
        p = subprocess.Popen(base + list(extra), stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        got, eof = bytearray(), []
        cond = threading.Condition()

        def read():
            while True:
                chunk = p.stdout.read1(65536)
                with cond:
                    if not chunk:
                        eof.append(True)
                    got.extend(chunk)
                    cond.notify_all()
                if not chunk:
                    return

        t = threading.Thread(target=read, daemon=True)
        t.start()
        if data:
            p.stdin.write(data)
            p.stdin.flush()
        with cond:
            cond.wait_for(lambda: eof or
                          (until is not None and until in got), timeout=30)
        try:
            p.stdin.close()
        except BrokenPipeError:
            pass
        p.wait(30)
        t.join(30)
        return p.returncode, got.decode(errors="replace")

    # A valid user certificate: the handshake completes, TLS 1.3 + ALPN,
    # and Bob answers the caller's hello.
    rc, out = s_client("-tls1_3", "-cert", alice.cert, "-key", alice.key,
                       data=hello, until=b"Capabilities_Accept")
    assert rc == 0, out
    assert "Capabilities_Accept" in out, out
    assert "Protocol  : TLSv1.3" in out or "TLSv1.3" in out, out
    assert "ALPN protocol: dchat/1" in out, out
    assert "Verify return code: 0 (ok)" in out, out
    assert "alert" not in out.lower(), out
    # No certificate: refused at the first read.
    m = bob.mark()
    rc, out = s_client("-tls1_3", data=b"\x00\x00\x00\x02J{}")
    assert rc != 0 and "alert certificate required" in out, out
    ref = bob.wait("refused", start=m)
    assert ref["peer"] == "(unknown)"
    # TLS 1.2: no handshake at all.  (Bob says so, a moment after
    # s_client heard it: waited for, or it would be taken for the
    # refusal of the next probe.)
    m = bob.mark()
    rc, out = s_client("-tls1_2", "-cert", alice.cert, "-key", alice.key)
    assert rc != 0 and "alert protocol version" in out, out
    ref = bob.wait("refused", start=m)
    assert "unsupported protocol" in ref["reason"], ref
    # Bob's own certificate, presented to Bob: refused in the handshake.
    m = bob.mark()
    rc, out = s_client("-tls1_3", "-cert", bob.cert, "-key", bob.key,
                       data=b"\x00\x00\x00\x02J{}")
    assert rc != 0 and "alert" in out, out
    ref = bob.wait("refused", start=m)
    assert "our own certificate" in ref["reason"], ref
    # A certificate from the DIR's own CA whose validity is over: refused.
    expired = expired_cert(reg, alice)
    m = bob.mark()
    rc, out = s_client("-tls1_3", "-cert", expired, "-key", alice.key,
                       data=b"\x00\x00\x00\x02J{}")
    assert rc != 0 and "alert" in out, out
    ref = bob.wait("refused", start=m)
    assert "expired" in ref["reason"] and ref["peer"] == alice.userid, ref
    # Certificate-only: no session ticket is issued (in TLS 1.3 a
    # resumable session only exists through one), so s_client has no
    # session to save and nothing can be resumed or sent as 0-RTT.
    sess = os.path.join(alice.home, "s_client.session")
    # A ticket comes right after the handshake, so before Bob's answer.
    rc, out = s_client("-tls1_3", "-cert", alice.cert, "-key", alice.key,
                       "-sess_out", sess, data=hello,
                       until=b"Capabilities_Accept")
    assert rc == 0, out
    assert "Capabilities_Accept" in out, out
    assert "New, TLSv1.3" in out, out
    assert "New Session Ticket" not in out, out
    assert not os.path.exists(sess)
    # Bob is still fine.
    alice.dchat("send", bob.userid, "after the probes")
    bob.wait("message", text="after the probes")


def test_malformed_frames_end_the_session_not_the_peer(reg):
    alice, bob = people(reg, "alice", "bob")
    bob.run(extra=["--auto-accept"])
    ctx = peer_client_ctx(alice)
    cases = [
        (b"\xff\xff\xff\xff" + b"J", "frame too large"),
        (b"\x00\x00\x00\x01X!", "unknown frame kind"),
        (b"\x00\x00\x00\x00J", "empty frame"),
        (b"\x00\x00\x00\x03Jabc", "not a JSON object"),
        (b"\x00\x00\x00\x02[]", "unknown frame kind"),
        (struct.pack(">IB", 5, ord("D")) + b"hello", "not asked for"),
        (struct.pack(">IB", 16, ord("J")) + b'{"type":"chat"} ',
         "before the session opened"),
    ]
    for data, why in cases:
        m = bob.mark()
        with socket.create_connection(("127.0.0.1", bob.port), 10) as raw:
            with ctx.wrap_socket(raw) as s:
                check_peer_cert(alice, s)
                s.sendall(data)
                s.settimeout(10)
                try:
                    while s.recv(65536):
                        pass
                except (ssl.SSLError, OSError):
                    pass
        ev = bob.wait("refused", start=m)
        assert why in ev["reason"], (why, ev)
    # Still alive and serving.
    alice.dchat("send", bob.userid, "still there?")
    bob.wait("message", text="still there?")


def test_concurrent_calls_and_simultaneous_dial(reg):
    alice, bob, carol = people(reg, "alice", "bob", "carol")
    bob.run(extra=["--auto-accept"])
    # Two calls into Bob at the same time are both served.
    procs = [spawn([dchat_path(), "--home", p.home, "send", bob.userid,
                    f"from {p.userid}"], reg.base, stdout=subprocess.DEVNULL)
             for p in (alice, carol)]
    for p in procs:
        assert p.wait(60) == 0, stderr_of(p)
    bob.wait("message", text="from alice@example.org")
    bob.wait("message", text="from carol@example.org")
    # Alice and Bob call each other at once: one session survives.
    alice.run(extra=["--auto-accept"])
    ma, mb = alice.mark(), bob.mark()
    alice.cmd(cmd="call", user=bob.userid)
    bob.cmd(cmd="call", user=alice.userid)
    alice.wait("connected", start=ma)
    bob.wait("connected", start=mb)

    def live(p):
        """p's sessions other than Carol's that are not over yet."""
        m = p.mark()
        p.cmd(cmd="sessions")
        ev = p.wait("sessions", start=m)
        return [s for s in ev["sessions"]
                if s["state"] != "closed" and s["peer"] != carol.userid]

    # Settled: nothing left in a handshake or closing on either side, and
    # (the promise) one open session on each.
    deadline = time.monotonic() + 30
    while True:
        la, lb = live(alice), live(bob)
        if all(s["state"] == "open" for s in la + lb) and \
                len(la) == len(lb) == 1:
            break
        assert time.monotonic() < deadline, (la, lb)
        time.sleep(0.05)  # the interval of a poll with a deadline
    # The survivor is the session Alice (the lower user id) placed.
    assert la[0]["direction"] == "out" and lb[0]["direction"] == "in"
    alice.cmd(cmd="msg", session=la[0]["id"], text="one session")
    bob.wait("message", text="one session")


def test_renew_and_a_changed_certificate_is_announced(reg):
    alice, bob = people(reg, "alice", "bob")
    alice.run()
    bob.run(extra=["--auto-accept"])
    ca, _ = call(alice, bob)
    first = ca["peer"]["fingerprint"]
    assert "fingerprint_changed" not in ca
    alice.cmd(cmd="hangup", session=ca["session"])
    alice.wait("closed", session=ca["session"])
    bob.stop()
    old_cert = open(bob.cert).read()
    old_key = open(bob.key).read()
    out = bob.dchat("renew").stdout
    assert "renewed as bob@example.org" in out, out
    assert open(bob.cert).read() != old_cert
    assert open(bob.key).read() != old_key
    assert stat.S_IMODE(os.stat(bob.key).st_mode) == 0o600
    run(["openssl", "verify", "-CAfile", os.path.join(bob.home, "ca.pem"),
         bob.cert])
    # The new key belongs to the new certificate.
    pub_cert = run(["openssl", "x509", "-in", bob.cert, "-noout",
                    "-pubkey"]).stdout
    pub_key = run(["openssl", "pkey", "-in", bob.key, "-pubout"]).stdout
    assert "PUBLIC KEY" in pub_cert and pub_cert == pub_key
    # Alice calls again: the new certificate is shown, with a warning.
    bob.run(extra=["--auto-accept"])
    m = alice.mark()
    alice.cmd(cmd="call", user=bob.userid)
    ca = alice.wait("connected", start=m)
    assert ca["peer"]["fingerprint"] != first
    assert ca["fingerprint_changed"] is True
    assert ca["previous_fingerprint"] == first
    # The DIR shows both of Bob's certificates as valid: renewal does not
    # revoke the old one.
    j = json.loads(alice.dchat("lookup", "--json", bob.userid).stdout)
    assert sorted(d["status"] for d in j["devices"]) == ["valid", "valid"]


def test_registration_follows_the_ttl_the_registry_grants(registry):
    """Bob asks for an hour; this registry grants at most 12 s.  dchat
    must re-register within what was granted, or Bob drops offline.  Its
    certificates last a week: dchat renews one after two thirds of that
    (tests/integration/test_renew.py), and until then warns of nothing."""
    r = registry("ttl_min=10", "ttl_max=12", "cert_days=7")
    alice, bob = people(r, "alice", "bob")
    m = bob.mark()
    bob.run(extra=["--ttl", "3600"])
    first = bob.wait("registered", start=m)
    assert first["ttl"] == 12, first
    m = bob.mark()
    again = bob.wait("registered", start=m, timeout=60)
    # By the registry's clock: renewed before the first grant ran out.
    first_end = rfc3339(first["expires_at"])
    assert rfc3339(again["expires_at"]) - again["ttl"] < first_end, \
        (first, again)
    assert again["expires_at"] > first["expires_at"]
    # Bob stays online through the end of the first grant and after:
    # looked up until the clock is well past it.
    while True:
        j = json.loads(alice.dchat("lookup", "--json",
                                   bob.userid).stdout)
        assert j["online"] is True, j
        if time.time() > first_end + 3:
            break
        time.sleep(0.5)  # paces the lookups, waits for no process
    # Nothing to warn of: the renewal is days away.
    m = bob.mark()
    bob.cmd(cmd="refresh")
    bob.wait("refreshed", start=m)
    assert not bob.has("cert_expiring") and not bob.has("renewed"), \
        bob.events


def test_incoming_call_is_announced_while_busy(reg):
    alice, bob, carol = people(reg, "alice", "bob", "carol")
    bob.run()  # Bob answers by hand
    alice.run()
    carol.run()
    m = bob.mark()
    alice.cmd(cmd="call", user=bob.userid)
    inc = bob.wait("incoming", start=m)
    bob.cmd(cmd="accept", session=inc["session"])
    sa = alice.wait("connected")["session"]
    sb1 = bob.wait("connected", start=m)["session"]
    # Carol calls while Bob talks to Alice: announced, not dropped.
    m = bob.mark()
    carol.cmd(cmd="call", user=bob.userid)
    inc = bob.wait("incoming", start=m)
    assert inc["peer"]["userid"] == carol.userid
    bob.cmd(cmd="accept", session=inc["session"])
    sc = carol.wait("connected")["session"]
    sb2 = bob.wait("connected", start=m)["session"]
    assert sb1 != sb2
    alice.cmd(cmd="msg", session=sa, text="from alice")
    carol.cmd(cmd="msg", session=sc, text="from carol")
    assert bob.wait("message", text="from alice")["session"] == sb1
    assert bob.wait("message", text="from carol")["session"] == sb2
    m = bob.mark()
    bob.cmd(cmd="sessions")
    open_ = [x for x in bob.wait("sessions", start=m)["sessions"]
             if x["state"] == "open"]
    assert {x["peer"] for x in open_} == {alice.userid, carol.userid}


class RawPeer:
    """A hand-made PeerTLS caller (python ssl) that can send what dchat
    never would."""

    def __init__(self, peer, port):
        ctx = peer_client_ctx(peer)
        raw = socket.create_connection(("127.0.0.1", port), 10)
        self.s = ctx.wrap_socket(raw)
        check_peer_cert(peer, self.s)
        self.s.settimeout(10)
        self.buf = b""

    def send(self, payload, kind=b"J"):
        if isinstance(payload, dict):
            payload = json.dumps(payload).encode()
        self.s.sendall(struct.pack(">I", len(payload)) + kind + payload)

    def recv(self):
        """The next JSON message, or None when the peer closed."""
        while True:
            if len(self.buf) >= 5:
                n = struct.unpack(">I", self.buf[:4])[0]
                if len(self.buf) >= 5 + n:
                    kind, body = self.buf[4:5], self.buf[5:5 + n]
                    self.buf = self.buf[5 + n:]
                    assert kind == b"J", kind
                    return json.loads(body)
            try:
                chunk = self.s.recv(65536)
            except (ssl.SSLError, OSError):
                return None
            if not chunk:
                return None
            self.buf += chunk

    def hello(self, userid, name):
        self.send({"type": "Capabilities_Offer", "version": 1,
                   "caps": ["chat", "file"]})
        self.send({"type": "User_Info", "userid": userid, "name": name})
        got = {}
        while len(got) < 2:
            m = self.recv()
            assert m is not None, got
            got[m["type"]] = m
        assert "file" in got["Capabilities_Accept"]["caps"]
        return got

    def bye_reason(self):
        """Read until the peer's bye; its reason."""
        while True:
            m = self.recv()
            if m is None:
                return None
            if m["type"] == "bye":
                return m["reason"]

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def test_hostile_peer_input_ends_one_session_only(reg):
    """Issue 6's bad input against a listening dchat: each case ends that
    session with a reason, and Bob goes on serving."""
    alice, bob = people(reg, "alice", "bob")
    bob.run(extra=["--auto-accept", "--accept-files"])
    downloads = os.path.join(bob.home, "downloads")

    # Garbage instead of a TLS handshake.
    m = bob.mark()
    with socket.create_connection(("127.0.0.1", bob.port), 10) as raw:
        raw.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 4)
        raw.settimeout(10)
        try:
            while raw.recv(4096):
                pass
        except OSError:
            pass
    ref = bob.wait("refused", start=m)
    assert "handshake" in ref["reason"], ref

    # User_Info that contradicts the certificate.
    m = bob.mark()
    rp = RawPeer(alice, bob.port)
    rp.send({"type": "Capabilities_Offer", "version": 1, "caps": ["chat"]})
    rp.send({"type": "User_Info", "userid": "bob@example.org",
             "name": "Bob"})
    assert rp.bye_reason() == "User_Info does not match the certificate"
    rp.close()
    ref = bob.wait("refused", start=m)
    assert ref["reason"] == "User_Info does not match the certificate"
    assert ref["peer"] == alice.userid

    # An unknown message type in an open session.
    m = bob.mark()
    rp = RawPeer(alice, bob.port)
    rp.hello(alice.userid, "Alice")
    sid = bob.wait("connected", start=m)["session"]
    rp.send({"type": "launch_missiles", "id": 1})
    assert "unknown message type" in rp.bye_reason()
    rp.close()
    assert "unknown message type" in bob.wait("closed", session=sid,
                                               start=m)["reason"]

    # A truncated frame, then the connection ends.
    m = bob.mark()
    rp = RawPeer(alice, bob.port)
    rp.hello(alice.userid, "Alice")
    sid = bob.wait("connected", start=m)["session"]
    rp.s.sendall(struct.pack(">I", 100) + b"J" + b'{"type":"ch')
    # Our end of the connection ends after those bytes (a FIN, no TLS
    # close_notify); Bob, holding part of a frame, closes his.
    rp.s.shutdown(socket.SHUT_WR)
    try:
        while rp.s.recv(65536):
            pass
    except OSError:
        pass
    rp.close()
    ev = bob.wait("closed", session=sid, start=m)
    assert "middle of a frame" in ev["reason"], ev

    # A file whose content does not match its announced SHA-256: not
    # stored, the sender is told, nothing is left in downloads.
    m = bob.mark()
    rp = RawPeer(alice, bob.port)
    rp.hello(alice.userid, "Alice")
    sid = bob.wait("connected", start=m)["session"]
    body = b"not what was announced"
    rp.send({"type": "file_offer", "id": 7, "name": "evil.bin",
             "size": len(body), "sha256": "0" * 64})
    m2 = rp.recv()
    assert m2["type"] == "file_accept" and m2["id"] == 7, m2
    rp.send(body, kind=b"D")
    rp.send({"type": "file_done", "id": 7})
    m2 = rp.recv()
    assert m2 == {"type": "file_received", "id": 7, "ok": False,
                  "reason": "sha256 mismatch"}, m2
    ev = bob.wait("file_failed", session=sid, start=m)
    assert ev["reason"] == "sha256 mismatch"
    assert not os.listdir(downloads), os.listdir(downloads)
    # More data than offered ends the session.
    rp.send({"type": "file_offer", "id": 8, "name": "x.bin", "size": 3,
             "sha256": hashlib.sha256(b"abc").hexdigest()})
    assert rp.recv()["type"] == "file_accept"
    rp.send(b"abcdef", kind=b"D")
    assert "more file data than offered" in rp.bye_reason()
    rp.close()
    bob.wait("closed", session=sid, start=m)
    assert not os.listdir(downloads), os.listdir(downloads)

    # Bob is unharmed.
    alice.dchat("send", bob.userid, "after the hostile peers")
    bob.wait("message", text="after the hostile peers")


def test_peers_keep_talking_while_the_registry_is_down(reg):
    """Chat must not depend on the DIR being up: a known contact is
    called at the address that worked last, and both ends keep enforcing
    the CRL they cached."""
    alice, bob = people(reg, "alice", "bob")
    bob.run(extra=["--auto-accept"])
    alice.dchat("send", bob.userid, "while the DIR is up")
    bob.wait("message", text="while the DIR is up")
    assert reg.d.stop() == 0
    m = bob.mark()
    bob.cmd(cmd="refresh")
    err = bob.wait("registry_error", start=m)
    assert err["message"], err
    p = alice.dchat("send", bob.userid, "while the DIR is down")
    assert re.search(r"^\[\d+\] message \d+ delivered$", p.stderr, re.M), \
        p.stderr
    msg = bob.wait("message", text="while the DIR is down")
    conn = bob.wait("connected", session=msg["session"])
    # Bob could not ask the registry about Alice's certificate: its good
    # answer of a moment ago still holds, and he is told how it was
    # judged.
    assert conn["peer"]["revocation"] == "cached", conn
    assert "could not be asked" in conn["peer"]["revocation_note"], conn
    # A stranger's address can not be found without the DIR: a clear
    # failure, not a hang.
    reg.ctl("user", "add", "carol@example.org", "--name", "Carol")
    p = alice.dchat("send", "carol@example.org", "hello?", "--timeout", "30",
                    check=False)
    assert p.returncode != 0, p.stderr
    assert "call to carol@example.org failed" in p.stderr, p.stderr
    assert "is dird running" in p.stderr, p.stderr
    reg.d.start()


def cert_serial(path):
    """A certificate's serial as the registry and dchat write it."""
    out = run(["openssl", "x509", "-in", path, "-noout", "-serial"]).stdout
    return out.strip().split("=", 1)[1].lstrip("0").lower()


def restored_files(peer):
    d = os.path.join(peer.home, "restored")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def test_backup_and_restore_on_a_second_device(reg, tmpdir_shared):
    """dchat(1): restore enrols the new device with a certificate of its
    own and keeps the backup's key only to read mail sent to the first
    device.  Both devices run at once, each registered with its own
    address; each reaches Bob as Alice, and Bob reaches Alice."""
    alice, bob = people(reg, "alice", "bob")
    pf = os.path.join(tmpdir_shared, "pass")
    with open(pf, "w") as f:
        f.write("correct horse battery staple\n")
    alice.dchat("backup", "--passphrase-file", pf)
    home2 = os.path.join(tmpdir_shared, "alice2")
    code = reg.code(alice.userid)
    a2 = Peer(reg, alice.userid, home2)
    reg.peers.append(a2)
    p = a2.dchat("restore", "--server", reg.d.url, "--user", alice.userid,
                 "--ca-fingerprint", reg.fingerprint, "--code", code,
                 "--passphrase-file", pf)
    assert stat.S_IMODE(os.stat(a2.key).st_mode) == 0o600
    s1, s2 = cert_serial(alice.cert), cert_serial(a2.cert)
    with open(a2.key) as f1, open(alice.key) as f2:
        assert s1 != s2 and f1.read() != f2.read()
    assert restored_files(a2) == [f"{s1}.key", f"{s1}.pem"], p.stdout
    assert re.fullmatch(
        f"restored {alice.userid} \\(Alice\\): this device's certificate "
        f"{s2}, expires \\d{{4}}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ; the key "
        f"of certificate {s1} is kept to read earlier mail",
        p.stdout.strip()), p.stdout
    # Both devices at once, each with its own address.
    alice.run(extra=["--auto-accept"])
    a2.run(extra=["--auto-accept"])
    bob.run(extra=["--auto-accept"])
    j = json.loads(bob.dchat("lookup", "--json", alice.userid).stdout)
    # (Each address as declared and as the registry saw it: one kind
    # each, the same address.)
    addrs = {d["serial"].lower(): {(a["ip"], a["port"])
                                   for a in d["addresses"]}
             for d in j["devices"]}
    assert addrs == {s1: {("127.0.0.1", alice.port)},
                     s2: {("127.0.0.1", a2.port)}}, j
    for dev, text in ((a2, "from device 2"), (alice, "from device 1")):
        dev.dchat("send", bob.userid, text)
        assert bob.wait("message", text=text)["from"] == alice.userid
    bob.dchat("send", alice.userid, "to whichever device answers")
    wait_until(lambda: alice.has("message", text="to whichever device "
                                 "answers") or
               a2.has("message", text="to whichever device answers"),
               "one of Alice's devices to get Bob's message")
    # A wrong passphrase: the device is enrolled all the same (the code
    # is spent) and keeps no earlier key; --backup-only tries again with
    # its own certificate, no code.
    wrong = os.path.join(tmpdir_shared, "wrong")
    with open(wrong, "w") as f:
        f.write("wrong\n")
    a3 = Peer(reg, alice.userid, os.path.join(tmpdir_shared, "alice3"))
    p = a3.dchat("restore", "--server", reg.d.url, "--user", alice.userid,
                 "--ca-fingerprint", reg.fingerprint, "--code",
                 reg.code(alice.userid), "--passphrase-file", wrong,
                 check=False)
    assert p.returncode == 1 and "passphrase" in p.stderr, p.stderr
    assert "dchat restore --backup-only" in p.stderr, p.stderr
    assert os.path.exists(a3.key) and restored_files(a3) == []
    s3 = cert_serial(a3.cert)
    assert s3 not in (s1, s2)
    p = a3.dchat("restore", "--backup-only", "--passphrase-file", pf)
    assert f"this device's certificate {s3}," in p.stdout, p.stdout
    assert restored_files(a3) == [f"{s1}.key", f"{s1}.pem"]
    # A later backup (the second device's) restored too: it carries the
    # second device's key and the first's that it kept; both are kept.
    p = a2.dchat("backup", "--passphrase-file", pf)
    assert "and 1 of earlier devices" in p.stdout, p.stdout
    p = a3.dchat("restore", "--backup-only", "--passphrase-file", pf)
    assert f"the keys of certificates {s2}, {s1} are kept" in p.stdout, \
        p.stdout
    assert restored_files(a3) == sorted(
        [f"{s1}.key", f"{s1}.pem", f"{s2}.key", f"{s2}.pem"])
    # A device's own key in the backup is no earlier key for it: the
    # first device's backup, holding its key alone, gives it nothing.
    alice.dchat("backup", "--passphrase-file", pf)
    p = alice.dchat("restore", "--backup-only", "--passphrase-file", pf,
                    check=False)
    assert p.returncode == 1 and "this device's own key" in p.stderr, \
        p.stderr


def test_restore_without_a_backup_still_enrols(reg, tmpdir_shared):
    """dchat(1): with no backup in the registry, restore still gives the
    device its own identity, says no backup was found, and exits 0;
    --backup-only takes no code and needs an identity."""
    (bob,) = people(reg, "bob")
    pf = os.path.join(tmpdir_shared, "pass")
    with open(pf, "w") as f:
        f.write("a passphrase\n")
    b2 = Peer(reg, bob.userid, os.path.join(tmpdir_shared, "bob2"))
    p = b2.dchat("restore", "--backup-only",
                 "--passphrase-file", pf, check=False)
    assert p.returncode == 1 and "holds no identity" in p.stderr, p.stderr
    p = b2.dchat("restore", "--backup-only", "--code", "x",
                 "--passphrase-file", pf, check=False)
    assert p.returncode == 2 and "takes only --passphrase-file" in \
        p.stderr, p.stderr
    p = b2.dchat("restore", "--server", reg.d.url, "--user", bob.userid,
                 "--ca-fingerprint", reg.fingerprint, "--code",
                 reg.code(bob.userid), "--passphrase-file", pf)
    assert "no backup was found" in p.stdout, p.stdout
    assert f"this device's certificate {cert_serial(b2.cert)}," in \
        p.stdout, p.stdout
    assert cert_serial(b2.cert) != cert_serial(bob.cert)
    assert restored_files(b2) == []
    p = b2.dchat("restore", "--backup-only", "--passphrase-file", pf,
                 check=False)
    assert p.returncode == 1 and "no backup" in p.stderr, p.stderr


def netns_error():
    """Why network namespaces can not be made here, or None."""
    if os.geteuid() != 0:
        return "not root: ip netns needs CAP_SYS_ADMIN"
    if shutil.which("ip") is None:
        return "no ip(8): scripts/deps installs iproute2"
    name = f"dchatprobe{os.getpid()}"
    p = subprocess.run(["ip", "netns", "add", name], capture_output=True,
                       text=True)
    if p.returncode != 0:
        return "ip netns add failed: " + p.stderr.strip()
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    return None


class NsRegistry:
    """Just what Peer needs: the registry's URL and CA fingerprint."""

    def __init__(self, url, fingerprint):
        self.d = type("D", (), {"url": url})()
        self.fingerprint = fingerprint


def test_two_namespaces_over_global_ipv6(pg, tmpdir_shared):
    """Alice and Bob in their own network namespaces joined by a veth pair
    with 2001:db8:1::/64 addresses; dird runs in Alice's namespace (its
    PostgreSQL is reached over a Unix socket, which namespaces share).
    Bob gives no --advertise: his address is discovered from his
    interface.

    The only test of interface discovery, re-registration on netlink news
    and dialing a global IPv6 address: as root (CI) it must run, so a
    namespace that can not be made is a failure there, not a skip."""
    why = netns_error()
    if why is not None and os.geteuid() != 0:
        pytest.skip(why)
    assert why is None, why
    tag = str(os.getpid() % 100000)
    na, nb = "dchatA" + tag, "dchatB" + tag

    def ip(*args):
        run(["ip", *args])

    try:
        ip("netns", "add", na)
        ip("netns", "add", nb)
        ip("-n", na, "link", "add", "va", "type", "veth", "peer", "name",
           "vb", "netns", nb)
        ip("-n", na, "addr", "add", "2001:db8:1::1/64", "dev", "va", "nodad")
        ip("-n", nb, "addr", "add", "2001:db8:1::2/64", "dev", "vb", "nodad")
        for ns, dev in ((na, "va"), (nb, "vb")):
            ip("-n", ns, "link", "set", "lo", "up")
            ip("-n", ns, "link", "set", dev, "up")
        reg = Registry(pg, tmpdir_shared, start=False,
                       hosts=("localhost", "2001:db8:1::1"))
        # Its listeners are in Alice's namespace, out of this one's reach:
        # ready once it says so.
        dird = Dird(reg.data, prefix=("ip", "netns", "exec", na),
                    listen="[2001:db8:1::1]:4604").spawn()
        wait_until(lambda: "listening" in dird.read_log() or
                   not dird.running(), "dird to listen")
        assert dird.running(), dird.read_log()
        nsreg = NsRegistry("https://[2001:db8:1::1]:4604", reg.fingerprint)
        peers = {}
        for name, ns in (("alice", na), ("bob", nb)):
            uid = f"{name}@example.org"
            reg.add(uid)
            p = Peer(nsreg, uid, os.path.join(tmpdir_shared, name),
                     prefix=("ip", "netns", "exec", ns))
            p.init(reg.code(uid))
            peers[name] = p
        bob = peers["bob"]
        bob.run(argv=["ip", "netns", "exec", nb, dchat_path(), "--home",
                      bob.home, "run", "--json", "--auto-accept"])
        reg_ev = bob.wait("registered")
        assert reg_ev["addresses"] == [{"ip": "2001:db8:1::2", "port": 4605}]
        peers["alice"].dchat("send", bob.userid, "over global IPv6")
        msg = bob.wait("message", text="over global IPv6")
        conn = bob.wait("connected", session=msg["session"])
        assert conn["addr"].startswith("2001:db8:1::1 ")
        # Bob's interface gains an address: registered at once (the
        # kernel tells dchat; the periodic check is 30 s away), and a
        # link-local or loopback address never is.
        m = bob.mark()
        t0 = time.time()
        ip("-n", nb, "addr", "add", "2001:db8:1::3/64", "dev", "vb", "nodad")
        ev = bob.wait("registered", start=m, timeout=20)
        assert time.time() - t0 < 10
        assert sorted(a["ip"] for a in ev["addresses"]) == \
            ["2001:db8:1::2", "2001:db8:1::3"], ev
        j = json.loads(peers["alice"].dchat("lookup", "--json",
                                            bob.userid).stdout)
        seen = {a["ip"] for d in j["devices"] for a in d["addresses"]}
        assert {"2001:db8:1::2", "2001:db8:1::3"} <= seen, j
        # ... and loses one.
        m = bob.mark()
        ip("-n", nb, "addr", "del", "2001:db8:1::2/64", "dev", "vb")
        ev = bob.wait("registered", start=m, timeout=20)
        assert [a["ip"] for a in ev["addresses"]] == ["2001:db8:1::3"], ev
        assert bob.stop() == 0
        assert dird.stop() == 0, dird.read_log()
    finally:
        subprocess.run(["ip", "netns", "del", na], capture_output=True)
        subprocess.run(["ip", "netns", "del", nb], capture_output=True)
