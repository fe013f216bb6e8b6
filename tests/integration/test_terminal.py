"""The terminal interface as a person meets it: `dchat run` without --json
on a pseudo-terminal, typed at key by key, against --json peers."""
import os
import subprocess
import termios

from conftest import Lines, Terminal, dchat_path, free_port, people, spawn

UP, LEFT, BACKSPACE, CTRL_D = b"\x1b[A", b"\x1b[D", b"\x7f", b"\x04"


def connect(term, other):
    """The person on term calls other (running with --auto-accept); the
    session number on the other side."""
    m = other.mark()
    term.type(f"call {other.userid}")
    term.read_until(b"verification code:")
    return other.wait("connected", start=m)["session"]


def test_typed_text_and_paths_arrive_whole(reg, tmpdir_shared):
    """Everything after a command's fixed words is one piece of free
    text or one path, spaces and all: a message, a file's name, a
    contact request's note."""
    alice, bob, carol = people(reg, "alice", "bob", "carol")
    bob.run(extra=["--auto-accept", "--accept-files"])
    # Carol takes calls only from Bob: Alice may leave a request.
    carol.run(extra=["--auto-accept"])
    carol.cmd(cmd="allow", user=bob.userid)
    carol.wait("lists", allow=[bob.userid])
    src = os.path.join(tmpdir_shared, "my holiday  notes.txt")
    with open(src, "wb") as f:
        f.write(b"sun, sea\nand a few words\n")
    term = Terminal(alice, free_port())
    try:
        term.read_until(b"ready; type 'help'")
        sid = connect(term, bob)
        term.type("msg hello bob, this is alice")
        assert bob.wait("message", session=sid)["text"] == \
            "hello bob, this is alice"
        # The session number may come first; the text still whole, a
        # tab too.
        m = bob.mark()
        term.type("msg 1 and a second line,\tnumbered")
        assert bob.wait("message", start=m)["text"] == \
            "and a second line,\tnumbered"
        # Plain text is a message too, its blanks as typed.
        m = bob.mark()
        term.type("and\tplain  text")
        assert bob.wait("message", start=m)["text"] == "and\tplain  text"
        term.type(f"file {src}")
        offer = bob.wait("file_offer", session=sid)
        assert offer["name"] == "my holiday  notes.txt", offer
        got = bob.wait("file_received", session=sid)
        with open(got["path"], "rb") as f:
            assert f.read() == b"sun, sea\nand a few words\n"
        term.read_until(b"delivered and checked")
        m = carol.mark()
        term.type(f"request {carol.userid} Alice from the meetup, may I?")
        req = carol.wait("contact_request", start=m)
        assert req["note"] == "Alice from the meetup, may I?", req
    finally:
        rc = term.close()
    assert rc == 0, term.out


def test_a_person_edits_recalls_and_reads_while_typing(reg):
    """Line editing as a person uses it: Backspace, the cursor keys, the
    Up arrow for an earlier line.  A message that arrives while a line is
    half typed is shown above it, and the half line stays as it was, to
    be finished and sent.  ^D on an empty line ends dchat, and the
    terminal is as it was."""
    alice, bob = people(reg, "alice", "bob")
    bob.run(extra=["--auto-accept"])
    # The POSIX locale, as in a bare container or an ssh session that
    # forwards none: what is typed is UTF-8 all the same.
    term = Terminal(alice, free_port(), env={"LC_ALL": "C"})
    try:
        term.read_until(b"ready; type 'help'")
        sid = connect(term, bob)
        # A typo taken back with Backspace.
        term.keys(b"msg hellp")
        term.screen_until(lambda s: s.rows[s.row] == "> msg hellp")
        term.keys(BACKSPACE + b"o, typo fixed\r")
        bob.wait("message", session=sid, text="hello, typo fixed")
        # Words put in front with the Left arrow.
        term.keys(b"msg world")
        term.screen_until(lambda s: s.rows[s.row] == "> msg world")
        term.keys(LEFT * 5 + "hello, ça va? ".encode() + b"\r")
        bob.wait("message", session=sid, text="hello, ça va? world")
        # The line before that, recalled with Up twice and sent again.
        m = bob.mark()
        term.keys(UP + UP)
        term.screen_until(
            lambda s: s.rows[s.row] == "> msg hello, typo fixed")
        term.keys(b"\r")
        bob.wait("message", start=m, session=sid, text="hello, typo fixed")
        # Half a line typed, and Bob's message arrives: above it.
        term.keys(b"this is half")
        term.screen_until(lambda s: s.rows[s.row] == "> this is half")
        bob.cmd(cmd="msg", session=sid, text="interrupting you")
        screen = term.screen_until(
            lambda s: s.rows[s.row - 1] ==
            "[1] bob@example.org: interrupting you" and
            s.rows[s.row] == "> this is half")
        assert screen.col == len("> this is half"), screen.text()
        assert screen.text().count("this is half") == 1, screen.text()
        term.keys(b" a line\r")
        bob.wait("message", session=sid, text="this is half a line")
        term.keys(CTRL_D)
        assert term.proc.wait(30) == 0, term.out
        lflag = termios.tcgetattr(term.master)[3]
        assert lflag & termios.ICANON and lflag & termios.ECHO, lflag
    finally:
        rc = term.close()
    assert rc == 0, term.out


def test_lines_from_a_pipe_are_read_as_before(reg):
    """Without a terminal there is no line editor: lines are read as
    they come, no prompt is written, and the text of a line is whole."""
    alice, bob = people(reg, "alice", "bob")
    bob.run(extra=["--auto-accept"])
    port = free_port()
    proc = spawn(
        [dchat_path(), "--home", alice.home, "run", "--listen",
         f"127.0.0.1:{port}", "--advertise", f"127.0.0.1:{port}"],
        reg.base, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    out = Lines(proc.stdout)
    m = bob.mark()
    proc.stdin.write(f"call {bob.userid}\n")
    proc.stdin.flush()
    sid = bob.wait("connected", start=m)["session"]
    out.until(lambda ln: "verification code:" in ln)
    proc.stdin.write("msg hello bob, this is alice\nand\tplain  text\n")
    proc.stdin.flush()
    bob.wait("message", session=sid, text="hello bob, this is alice")
    bob.wait("message", session=sid, text="and\tplain  text")
    proc.stdin.close()  # the end of the input is the end of dchat
    assert proc.wait(30) == 0
    text = out.rest()
    assert not any(ln.startswith("> ") for ln in text.splitlines()), text
    assert "\x1b" not in text, text
