"""The capability exchange of docs/peertls.md as a real negotiation: the
listener answers with what both sides support, checks the version, ends
a session with nothing in common, and the session uses only what was
agreed.  The caller here is a raw PeerTLS client (python ssl with a user
certificate) so that it can offer what dchat itself never would."""
import hashlib
import json
import os
import socket
import struct

from conftest import check_peer_cert, peer_client_ctx, people


class Wire:
    """One PeerTLS connection from `me` to `peer`, frame by frame."""

    def __init__(self, me, peer):
        raw = socket.create_connection(("127.0.0.1", peer.port), 30)
        self.s = peer_client_ctx(me).wrap_socket(raw)
        self.s.settimeout(30)
        check_peer_cert(me, self.s)
        self.buf = b""

    def send(self, **obj):
        body = json.dumps(obj).encode()
        self.s.sendall(struct.pack(">I", len(body)) + b"J" + body)

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.s.recv(65536)
            assert chunk, f"the peer closed; had {self.buf!r}"
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv(self):
        """The next JSON message (D frames are not expected here)."""
        n, kind = struct.unpack(">IB", self._read(5))
        body = self._read(n)
        assert kind == ord("J"), (kind, body)
        return json.loads(body)

    def until(self, mtype):
        while True:
            m = self.recv()
            if m.get("type") == mtype:
                return m

    def hello(self, me, caps, version=1):
        self.send(type="Capabilities_Offer", version=version, caps=caps)
        self.send(type="User_Info", userid=me.userid, name="Alice")

    def close(self):
        self.s.close()


def test_chat_only_is_agreed_and_file_offers_are_refused(reg):
    alice, bob = people(reg, "alice", "bob")
    bob.run(extra=["--auto-accept"])
    m = bob.mark()
    w = Wire(alice, bob)
    try:
        w.hello(alice, ["chat"])
        acc = w.until("Capabilities_Accept")
        assert acc["caps"] == ["chat"], acc
        w.until("User_Info")
        w.send(type="chat", id=1, text="chat is agreed")
        assert w.until("ack")["id"] == 1
        bob.wait("message", start=m, text="chat is agreed")
        # A file offer was not agreed: refused, and Bob never sees one.
        w.send(type="file_offer", id=2, name="x.txt", size=3,
               sha256=hashlib.sha256(b"abc").hexdigest())
        rej = w.until("file_reject")
        assert rej["id"] == 2, rej
        # Nor may Bob offer one on this session.
        sid = bob.wait("connected", start=m)["session"]
        src = os.path.join(bob.home, "note.txt")
        with open(src, "w") as f:
            f.write("hello\n")
        bob.cmd(cmd="file", session=sid, path=src)
        err = bob.wait("error", start=m, cmd="file")
        assert "file" in err["message"], err
        w.send(type="chat", id=3, text="still talking")
        assert w.until("ack")["id"] == 3
        assert not bob.has("file_offer"), bob.events
    finally:
        w.close()


def test_the_answer_is_the_intersection(reg):
    alice, bob = people(reg, "alice", "bob")
    bob.run(extra=["--auto-accept"])
    w = Wire(alice, bob)
    try:
        w.hello(alice, ["telepathy", "file", "chat", "contact_request"])
        acc = w.until("Capabilities_Accept")
        assert sorted(acc["caps"]) == ["chat", "file"], acc
    finally:
        w.close()


def test_another_version_or_nothing_in_common_ends_the_session(reg):
    alice, bob = people(reg, "alice", "bob")
    bob.run(extra=["--auto-accept"])
    for caps, version, why in (
            (["chat", "file"], 2, "protocol version 2 is not spoken here"),
            (["telepathy"], 1, "no common capabilities"),
            ([], 1, "no common capabilities")):
        m = bob.mark()
        w = Wire(alice, bob)
        try:
            w.hello(alice, caps, version)
            bye = w.until("bye")
            assert why in bye["reason"], (caps, version, bye)
        finally:
            w.close()
        assert why in bob.wait("refused", start=m)["reason"]
    # A well-formed offer still works afterwards.
    alice.dchat("send", bob.userid, "after the odd offers")
    bob.wait("message", text="after the odd offers")


def test_an_offer_without_a_version_is_a_violation(reg):
    alice, bob = people(reg, "alice", "bob")
    bob.run(extra=["--auto-accept"])
    m = bob.mark()
    w = Wire(alice, bob)
    try:
        w.send(type="Capabilities_Offer", caps=["chat"])
        bye = w.until("bye")
        assert "version" in bye["reason"], bye
    finally:
        w.close()
    assert "version" in bob.wait("refused", start=m)["reason"]
