"""dchat against hostile peers (a security review's findings): what a
peer's text can do to the terminal, idle connections that would fill
every session slot, received files that would overwrite each other, and a
contact request's note kept in full.  Same set-up as test_dchat.py: a
real dird on a real PostgreSQL, real dchat peers on loopback."""
import json
import os
import pty
import select
import socket
import subprocess
import time

from test_dchat import call, dchat_path, people, reg  # noqa: F401 (fixture)
from dird_fixture import free_port


class Terminal:
    """`dchat run` without --json on a pseudo-terminal: a person reads
    what it prints and types lines."""

    def __init__(self, peer, port):
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen(
            [dchat_path(), "--home", peer.home, "run", "--listen",
             f"127.0.0.1:{port}", "--advertise", f"127.0.0.1:{port}"],
            stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
        os.close(slave)
        self.out = b""

    def read_until(self, needle, timeout=30):
        """Everything printed so far, once it holds needle (bytes)."""
        deadline = time.time() + timeout
        while needle not in self.out:
            left = deadline - time.time()
            assert left > 0, (needle, self.out)
            r, _, _ = select.select([self.master], [], [], min(left, 0.5))
            if not r:
                continue
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO: the program is gone
                chunk = b""
            assert chunk, (needle, self.out)
            self.out += chunk
        return self.out

    def type(self, line):
        """A line as typed: Enter sends a carriage return."""
        os.write(self.master, line.encode() + b"\r")

    def close(self):
        if self.proc.poll() is None:
            self.type("quit")
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        try:
            while True:
                r, _, _ = select.select([self.master], [], [], 0)
                if not r:
                    break
                chunk = os.read(self.master, 65536)
                if not chunk:
                    break
                self.out += chunk
        except OSError:
            pass
        os.close(self.master)
        for bad in (b"Sanitizer", b"runtime error:"):
            assert bad not in self.out, self.out
        return self.proc.returncode


def test_terminal_shows_control_characters_from_peers_visibly(reg):
    """A peer's chat text and a name from the registry's certificate
    carry an escape sequence, a carriage return, a newline that would fake
    a line, a bidi override, a C1 control and DEL: the terminal shows
    each as a visible escape and receives none of them raw."""
    (bob,) = people(reg, "bob")
    mallory = reg.person("mallory@example.org", "Mal\u202elory\u0085")
    reg.peers.append(mallory)
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
        # dchat itself writes no escape sequence; the only carriage
        # returns are the terminal's own, before each newline.
        assert b"\x1b" not in out, out
        assert b"\r" not in out.replace(b"\r\n", b""), out
        for raw in ("\u202e", "\u0085", "\u009b", "\x7f", "\t"):
            assert raw.encode() not in out, (raw, out)
        # The person types an escape sequence and a bell back.  With
        # --json the receiver gets them escaped by JSON (jansson escapes
        # every C0 control), never raw.
        n = len(mallory.lines)
        term.type("\x1b[31mred\x07 alert")
        msg = mallory.wait("message", session=sid)
        assert msg["text"] == "\x1b[31mred\x07 alert", msg
        line = next(ln for ln in mallory.lines[n:]
                    if '"event":"message"' in ln)
        assert "\\u001b[31mred\\u0007 alert" in line.lower(), line
        assert "\x1b" not in line and "\x07" not in line, line
        assert not mallory.has("garbage"), mallory.events
    finally:
        assert term.close() == 0, term.out


# client/admit.h
PER_SOURCE = 8
PENDING_MAX = 64


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
        # address gets through within seconds.
        t0 = time.time()
        p = carol.dchat("send", bob.userid, "through the flood", "--timeout",
                        "20", check=False)
        took = time.time() - t0
        assert p.returncode == 0, p.stderr
        assert took < 8, took
        bob.wait("message", text="through the flood")
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
    # wait 15 s for an answer).
    with socket.socket() as s:
        s.bind(("127.0.0.99", 0))
        s.connect(("127.0.0.1", bob.port))
        t0 = time.time()
        r, _, _ = select.select([s], [], [], 20)
        took = time.time() - t0
        assert r and s.recv(1) == b"", "not closed"
        assert 8.5 < took < 12.5, took
