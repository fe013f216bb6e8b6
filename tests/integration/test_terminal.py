"""The terminal interface as a person meets it: `dchat run` without --json
on a pseudo-terminal, typed at key by key, against --json peers."""
import os

from conftest import Terminal, free_port, people


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
        # The session number may come first; the text still whole.
        m = bob.mark()
        term.type("msg 1 and a second line, numbered")
        assert bob.wait("message", start=m)["text"] == \
            "and a second line, numbered"
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
