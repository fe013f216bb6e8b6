"""dchat against hostile peers (a security review's findings): what a
peer's text can do to the terminal, idle connections that would fill
every session slot, received files that would overwrite each other, and a
contact request's note kept in full.  Same set-up as test_dchat.py: a
real dird on a real PostgreSQL, real dchat peers on loopback."""
import hashlib
import os
import select
import shutil
import socket
import time

from conftest import (Terminal, ca_sign, call, free_port,
                      openssl, people)
from test_dchat import RawPeer


def planted_certificate(reg, peer, cn):
    """Give peer a certificate with the name cn, signed by the registry's
    CA key and recorded in its store, as a registry that was made to
    issue it would (dird itself refuses such names: ca_name_ok)."""
    csr = os.path.join(reg.base, "planted.csr")
    openssl("req", "-new", "-key", peer.key, "-out", csr, "-subj",
            f"/UID={peer.userid}/CN=x")
    pem = ca_sign(reg.data, reg.base, csr, "planted", eku="clientAuth",
                  subj=f"/UID={peer.userid}/CN={cn}", utf8=True)
    der_path = os.path.join(reg.base, "planted.der")
    openssl("x509", "-in", pem, "-outform", "DER", "-out", der_path)
    with open(der_path, "rb") as f:
        der = f.read()
    serial = openssl("x509", "-in", pem, "-noout", "-serial").stdout
    serial = serial.strip().split("=")[1].lower().lstrip("0")
    issuer = openssl("x509", "-in", os.path.join(reg.data, "ca.pem"),
                     "-noout", "-fingerprint", "-sha256").stdout
    issuer = issuer.split("=", 1)[1].strip().replace(":", "").lower()
    reg.pg.psql(
        "INSERT INTO certificates (issuer, serial, user_id, der, "
        "fingerprint, not_before, not_after) SELECT "
        f"'{issuer}', '{serial}', id, '\\x{der.hex()}'::bytea, "
        f"'{hashlib.sha256(der).hexdigest()}', now() - interval '1 hour', "
        f"now() + interval '20 days' FROM users WHERE userid = "
        f"'{peer.userid}'", reg.db)
    shutil.copy(pem, peer.cert)


def test_terminal_shows_control_characters_from_peers_visibly(reg):
    """A peer's chat text and the name in its certificate carry an escape
    sequence, a carriage return, a newline that would fake a line, a bidi
    override, a C1 control and DEL: the terminal shows each as a visible
    escape and receives none of them raw."""
    (bob,) = people(reg, "bob")
    mallory = reg.person("mallory@example.org", "Mallory")
    planted_certificate(reg, mallory, "Mal\u202elory\u0085")
    mallory.run()
    term = Terminal(bob, free_port())
    try:
        term.read_until(b"ready; type 'help'")
        m = mallory.mark()
        mallory.cmd(cmd="call", user=bob.userid)
        out = term.read_until(b"'accept 1' or 'reject 1'")
        assert b"incoming call from Mal\\u202elory\\u0085 " \
            b"<mallory@example.org>" in out, out
        term.type("accept")
        sid = mallory.wait("connected", start=m)["session"]
        term.read_until(b"verification code:")
        evil = ("\x1b[2J\x1b[H\rhi\n[2] connected to Bob <bob@example.org>"
                "\u202egnp.exe\u009b31m\x7f\tend")
        mallory.cmd(cmd="msg", session=sid, text=evil)
        mallory.wait("ack", session=sid)
        shown = (rb"[1] mallory@example.org: \x1b[2J\x1b[H\rhi\n[2] "
                 rb"connected to Bob <bob@example.org>\u202egnp.exe"
                 rb"\u009b31m\x7f\tend" + b"\r\n")
        out = term.read_until(shown)
        # dchat writes no escape sequence but the line editor's, which
        # takes the prompt off the screen; the only other carriage
        # returns are the terminal's own, before each newline.
        plain = out.replace(Terminal.HIDE, b"")
        assert b"\x1b" not in plain, out
        assert b"\r" not in plain.replace(b"\r\n", b""), out
        for raw in ("\u202e", "\u0085", "\u009b", "\x7f", "\t"):
            assert raw.encode() not in out, (raw, out)
        # The person types an escape sequence and a bell back, each
        # quoted with ^V as the line editor wants.  With --json the
        # receiver gets them escaped by JSON (jansson escapes every C0
        # control), never raw.
        n = len(mallory.lines)
        term.type("\x16\x1b[31mred\x16\x07 alert")
        msg = mallory.wait("message", session=sid)
        assert msg["text"] == "\x1b[31mred\x07 alert", msg
        # The line editor showed them visibly as they were typed.
        out = term.read_until(b"> ^[[31mred^G alert\r\n")
        assert b"\x1b[31m" not in out and b"\x07" not in out, out
        line = next(ln for ln in mallory.lines[n:]
                    if '"event":"message"' in ln)
        assert "\\u001b[31mred\\u0007 alert" in line.lower(), line
        assert "\x1b" not in line and "\x07" not in line, line
        assert not mallory.has("garbage"), mallory.events
    finally:
        rc = term.close()
    assert rc == 0, term.out


# client/admit.h
PER_SOURCE = 8
PENDING_MAX = 64
# client/session.c, for a caller silent for HANDSHAKE_IN_SECS (10 s)
TIMED_OUT = "the caller did not complete the handshake in time"


def accept_queue(port):
    """Connections the kernel holds for the listener on 127.0.0.1:port
    that dchat has not accepted yet."""
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[1] == f"0100007F:{port:04X}":
                return int(fields[4].split(":")[1], 16)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port}")


def still_open(socks):
    """The attacker's connections dchat has not closed, per source."""
    n = {}
    for src, s in socks:
        try:
            closed = s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            closed = False
        except OSError:
            closed = True
        if not closed:
            n[src] = n.get(src, 0) + 1
    return n


def test_idle_connections_do_not_lock_callers_out(reg):
    """An attacker opens 300 TCP connections from 20 loopback addresses
    and never starts a handshake.  dchat keeps at most PER_SOURCE of them
    per address and PENDING_MAX in all, a caller with a certificate still
    gets through at once, and a session already open is not touched."""
    alice, bob, carol = people(reg, "alice", "bob", "carol")
    bob.run(extra=["--auto-accept"])
    alice.run()
    ca, cb = call(alice, bob)
    sources = [f"127.0.0.{i}" for i in range(2, 22)]
    socks = []
    try:
        for src in sources:
            for _ in range(15):
                s = socket.socket()
                socks.append((src, s))
                s.bind((src, 0))
                s.settimeout(10)
                s.connect(("127.0.0.1", bob.port))
                s.setblocking(False)
        deadline = time.time() + 20
        while accept_queue(bob.port) > 0:
            assert time.time() < deadline, "dchat does not accept"
            select.select([], [], [], 0.05)
        # The attacker keeps every socket open.  A caller from another
        # address gets through at once: before dchat drops any of them
        # for saying nothing for 10 s (which would make room anyway).
        p = carol.dchat("send", bob.userid, "through the flood", "--timeout",
                        "20", check=False)
        assert p.returncode == 0, p.stderr
        got = bob.wait("message", text="through the flood")
        late = bob.has("refused", reason=TIMED_OUT)
        assert not late or bob.events.index(late[0]) > \
            bob.events.index(got), bob.events
        # The session opened before the flood still works both ways.
        alice.cmd(cmd="msg", session=ca["session"], text="still here")
        bob.wait("message", session=cb["session"], text="still here")
        bob.cmd(cmd="msg", session=cb["session"], text="me too")
        alice.wait("message", session=ca["session"], text="me too")
        # dchat held no more idle connections than the limits allow; the
        # rest made way, and it said so.
        deadline = time.time() + 10
        while True:
            n = still_open(socks)
            if sum(n.values()) <= PENDING_MAX and \
                    max(n.values(), default=0) <= PER_SOURCE:
                break
            assert time.time() < deadline, n
            select.select([], [], [], 0.1)
        assert bob.has("refused", reason="too many unfinished handshakes; "
                       "the oldest made way for a newer one")
        assert bob.has("refused", reason="too many unfinished handshakes "
                       "from its address; the oldest made way for a newer "
                       "one")
    finally:
        for _, s in socks:
            s.close()
    # A caller that says nothing is dropped after 10 s (calls we place
    # wait 15 s for an answer): not before; after, as soon as a loaded
    # machine gets round to it.
    m = bob.mark()
    with socket.socket() as s:
        s.bind(("127.0.0.99", 0))
        s.connect(("127.0.0.1", bob.port))
        t0 = time.time()
        r, _, _ = select.select([s], [], [], 60)
        took = time.time() - t0
        assert r and s.recv(1) == b"", "not closed"
        assert 8.5 < took < 40, took
    ev = bob.wait("refused", start=m, reason=TIMED_OUT)
    assert ev["addr"].startswith("127.0.0.99 "), ev


def sha(body):
    return hashlib.sha256(body).hexdigest()


def offer(rp, fid, name, body):
    """rp offers body as name; True when the receiver accepted it."""
    rp.send({"type": "file_offer", "id": fid, "name": name,
             "size": len(body), "sha256": sha(body)})
    m = rp.recv()
    assert m is not None and m.get("id") == fid, m
    return m["type"] == "file_accept"


def deliver(rp, fid, body):
    """Send the content of accepted offer fid; the receiver's verdict."""
    rp.send(body, kind=b"D")
    rp.send({"type": "file_done", "id": fid})
    m = rp.recv()
    assert m is not None and m["type"] == "file_received", m
    return m


def test_two_transfers_of_one_name_land_in_two_files(reg):
    """Alice and Carol offer a file of the same name; both are accepted
    before either sends a byte, and each arrives whole in its own file."""
    alice, bob, carol = people(reg, "alice", "bob", "carol")
    bob.run(extra=["--auto-accept", "--accept-files"])
    downloads = os.path.join(bob.home, "downloads")
    m = bob.mark()
    ra, rc = RawPeer(alice, bob.port), RawPeer(carol, bob.port)
    try:
        ra.hello(alice.userid, "Alice")
        rc.hello(carol.userid, "Carol")
        ba, bc = b"from alice\n" * 1000, b"carol's\n" * 700
        assert offer(ra, 1, "same.txt", ba)
        assert offer(rc, 1, "same.txt", bc)
        assert deliver(ra, 1, ba)["ok"] is True
        assert deliver(rc, 1, bc)["ok"] is True
        bob.wait("file_received", start=m, sha256=sha(ba))
        bob.wait("file_received", start=m, sha256=sha(bc))
    finally:
        ra.close()
        rc.close()
    pa = bob.has("file_received", sha256=sha(ba))[0]["path"]
    pc = bob.has("file_received", sha256=sha(bc))[0]["path"]
    assert pa != pc
    assert open(pa, "rb").read() == ba
    assert open(pc, "rb").read() == bc
    assert sorted(os.listdir(downloads)) == ["same.txt", "same.txt.1"]


def test_received_files_never_write_through_files_or_links(reg,
                                                          tmpdir_shared):
    """A file that is already there and a symbolic link planted at
    NAME.part are never written through: the transfer takes the next
    name whose placeholder and .part it can create itself."""
    alice, bob = people(reg, "alice", "bob")
    downloads = os.path.join(bob.home, "downloads")
    os.mkdir(downloads, 0o700)
    victim = os.path.join(tmpdir_shared, "victim")
    with open(victim, "wb") as f:
        f.write(b"victim\n")
    with open(os.path.join(downloads, "precious.txt"), "wb") as f:
        f.write(b"precious\n")
    os.symlink(victim, os.path.join(downloads, "precious.txt.1.part"))
    os.symlink(victim, os.path.join(downloads, "link.txt.part"))
    bob.run(extra=["--auto-accept", "--accept-files"])
    rp = RawPeer(alice, bob.port)
    try:
        rp.hello(alice.userid, "Alice")
        # precious.txt is there, precious.txt.1.part is a link.
        m = bob.mark()
        assert offer(rp, 2, "precious.txt", b"new content\n")
        assert deliver(rp, 2, b"new content\n")["ok"] is True
        ev = bob.wait("file_received", start=m)
        assert ev["path"] == os.path.join(downloads, "precious.txt.2")
        assert open(ev["path"], "rb").read() == b"new content\n"
        # link.txt is free, link.txt.part is a link.
        m = bob.mark()
        assert offer(rp, 3, "link.txt", b"linked?\n")
        assert deliver(rp, 3, b"linked?\n")["ok"] is True
        ev = bob.wait("file_received", start=m)
        assert ev["path"] == os.path.join(downloads, "link.txt.1")
        assert open(ev["path"], "rb").read() == b"linked?\n"
    finally:
        rp.close()
    assert open(victim, "rb").read() == b"victim\n"
    assert open(os.path.join(downloads, "precious.txt"), "rb").read() == \
        b"precious\n"
    for link in ("precious.txt.1.part", "link.txt.part"):
        assert os.readlink(os.path.join(downloads, link)) == victim
    assert sorted(os.listdir(downloads)) == [
        "link.txt.1", "link.txt.part", "precious.txt",
        "precious.txt.1.part", "precious.txt.2"]


def test_accepting_into_a_named_path_never_replaces_it(reg, tmpdir_shared):
    """get ID PATH: an existing PATH, or a link at PATH.part, is refused
    with a reason, the offer stays open, and another PATH works."""
    alice, bob = people(reg, "alice", "bob")
    bob.run(extra=["--auto-accept"])
    victim = os.path.join(tmpdir_shared, "victim")
    with open(victim, "wb") as f:
        f.write(b"victim\n")
    existing = os.path.join(tmpdir_shared, "existing.txt")
    with open(existing, "wb") as f:
        f.write(b"keep me\n")
    linked = os.path.join(tmpdir_shared, "linked.txt")
    os.symlink(victim, linked + ".part")
    body = b"the file\n" * 100
    m = bob.mark()
    rp = RawPeer(alice, bob.port)
    try:
        rp.hello(alice.userid, "Alice")
        sid = bob.wait("connected", start=m)["session"]
        rp.send({"type": "file_offer", "id": 5, "name": "f.txt",
                 "size": len(body), "sha256": sha(body)})
        bob.wait("file_offer", start=m, session=sid)
        for path, taken in ((existing, existing), (linked, linked + ".part")):
            m = bob.mark()
            bob.cmd(cmd="file_accept", session=sid, id=5, path=path)
            err = bob.wait("error", start=m)
            assert err["message"] == (f"{taken} already exists; choose a "
                                      "path where neither it nor its .part "
                                      "file exists"), err
        assert not os.path.exists(linked), "placeholder left behind"
        fresh = os.path.join(tmpdir_shared, "fresh.txt")
        m = bob.mark()
        bob.cmd(cmd="file_accept", session=sid, id=5, path=fresh)
        m2 = rp.recv()
        assert m2 == {"type": "file_accept", "id": 5}, m2
        assert deliver(rp, 5, body)["ok"] is True
        assert bob.wait("file_received", start=m)["path"] == fresh
    finally:
        rp.close()
    assert open(fresh, "rb").read() == body
    assert not os.path.exists(fresh + ".part")
    assert open(existing, "rb").read() == b"keep me\n"
    assert open(victim, "rb").read() == b"victim\n"
    assert os.readlink(linked + ".part") == victim


def test_a_1000_byte_contact_request_note_is_kept_whole(reg):
    """PeerTLS allows a note of 1000 bytes; the requests file keeps all
    of it (it used to keep 511)."""
    alice, bob, carol = people(reg, "alice", "bob", "carol")
    bob.run(extra=["--auto-accept"])
    bob.cmd(cmd="allow", user=carol.userid)
    bob.wait("lists", allow=[carol.userid])
    alice.run()
    note = "Alice from the meetup: " + "\u00e9" * 488 + "!"
    assert len(note.encode()) == 1000
    alice.cmd(cmd="request", user=bob.userid, text=note)
    assert bob.wait("contact_request")["note"] == note
    alice.wait("closed")
    m = bob.mark()
    bob.cmd(cmd="requests")
    assert bob.wait("requests", start=m)["requests"] == [
        {"userid": alice.userid, "name": "Alice", "note": note}]
