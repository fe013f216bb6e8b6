"""Promises the documentation makes (README.md, docs/*.md, the manual
pages) that no other test exercised (issue 23).  Each is tested as the
documents word it, with the real programs on a real PostgreSQL over real
TLS; where a promise was false the code or the document was fixed, and the
test here failed before that fix."""
import base64
import contextlib
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import threading
import time

import pytest

from conftest import BUILD, ROOT
from dird_fixture import Dird, User, client_ctx, curl, free_port
from helpers import SCHEMA_VERSION, dirctl_path, openssl, run
from test_dchat import Peer, Registry, call, dchat_path, people
from test_dchat import peer_client_ctx
from test_dchat import reg  # noqa: F401 (a fixture)
from test_dchat_security import Terminal
from test_security import wait_until


@contextlib.contextmanager
def registry(pg, base, *settings):
    """A registry whose dird runs with `--set KEY=VALUE` for each of
    settings; its peers and dird are stopped at the end, and dird must
    exit 0."""
    extra = []
    for s in settings:
        extra += ["--set", s]
    r = Registry(pg, base, extra=extra)
    r.peers = []
    try:
        yield r
    finally:
        for p in r.peers:
            p.stop()
        rc = r.d.stop()
    assert rc == 0, r.d.read_log()


def read(path):
    with open(path, "rb") as f:
        return f.read()


def home_file(peer, name):
    return os.path.join(peer.home, name)


def pubkey_of_cert(path):
    return openssl("x509", "-in", path, "-noout", "-pubkey").stdout


def pubkey_of_key(path):
    return openssl("pkey", "-in", path, "-pubout").stdout


def secret_file(workdir, name, text):
    path = os.path.join(workdir, name)
    with open(path, "w") as f:
        f.write(text + "\n")
    return path


# ---- dchat init and restore never replace an identity unasked ----

def test_init_and_restore_refuse_to_replace_a_key_without_force(
        reg, tmpdir_shared):
    """dchat(1): init and restore refuse to replace an existing key unless
    --force is given.  Refused, every file of the identity is byte for
    byte what it was; with --force the key is replaced."""
    (alice,) = people(reg, "alice")
    names = ("key.pem", "cert.pem", "ca.pem", "config")
    before = {n: read(home_file(alice, n)) for n in names}
    code = reg.code(alice.userid)
    init = ("init", "--server", reg.d.url, "--user", alice.userid,
            "--code", code, "--ca-fingerprint", reg.fingerprint)
    p = alice.dchat(*init, check=False)
    assert p.returncode == 1, p
    assert f"{alice.home} already holds a key; use --force to replace it" \
        in p.stderr, p.stderr
    assert {n: read(home_file(alice, n)) for n in names} == before
    # The refusal came before the enrolment: the same code still works.
    p = alice.dchat(*init, "--force")
    assert "enrolled as alice@example.org" in p.stdout, p.stdout
    assert read(alice.key) != before["key.pem"]
    assert read(alice.cert) != before["cert.pem"]
    assert pubkey_of_cert(alice.cert) == pubkey_of_key(alice.key)
    # restore: a second device that holds an identity of its own.
    pf = secret_file(tmpdir_shared, "passphrase", "a backup passphrase")
    alice.dchat("backup", "--passphrase-file", pf)
    dev2 = Peer(reg, alice.userid, os.path.join(tmpdir_shared, "alice2"))
    dev2.init(reg.code(alice.userid))
    before = {n: read(home_file(dev2, n)) for n in names}
    restore = ("restore", "--server", reg.d.url, "--user", alice.userid,
               "--ca-fingerprint", reg.fingerprint, "--code",
               reg.code(alice.userid), "--passphrase-file", pf)
    p = dev2.dchat(*restore, check=False)
    assert p.returncode == 1, p
    assert f"{dev2.home} already holds a key; use --force to replace it" \
        in p.stderr, p.stderr
    assert {n: read(home_file(dev2, n)) for n in names} == before
    p = dev2.dchat(*restore, "--force")
    assert "restored alice@example.org" in p.stdout, p.stdout
    assert read(dev2.key) != before["key.pem"]
    assert read(dev2.cert) == read(alice.cert)
    assert pubkey_of_key(dev2.key) == pubkey_of_key(alice.key)


def test_restore_with_a_password_instead_of_a_code(reg, tmpdir_shared):
    """dchat(1): restore ... (--code CODE | --password-file F): the
    password the administrator set fetches the backup.  A wrong password
    writes nothing."""
    pw = secret_file(tmpdir_shared, "password", "the password Dave has")
    reg.ctl("user", "add", "dave@example.org", "--name", "Dave",
            "--password-file", pw)
    dave = Peer(reg, "dave@example.org", os.path.join(tmpdir_shared, "dave"))
    dave.init(reg.code(dave.userid))
    (bob,) = people(reg, "bob")
    pf = secret_file(tmpdir_shared, "passphrase", "Dave's backup passphrase")
    dave.dchat("backup", "--passphrase-file", pf)
    restore = ("restore", "--server", reg.d.url, "--user", dave.userid,
               "--ca-fingerprint", reg.fingerprint, "--passphrase-file", pf)
    wrong = secret_file(tmpdir_shared, "wrong", "not Dave's password")
    dev3 = Peer(reg, dave.userid, os.path.join(tmpdir_shared, "dave3"))
    p = dev3.dchat(*restore, "--password-file", wrong, check=False)
    assert p.returncode == 1, p
    assert "cannot fetch the backup" in p.stderr, p.stderr
    assert not os.path.exists(dev3.key) and not os.path.exists(dev3.cert)
    dev2 = Peer(reg, dave.userid, os.path.join(tmpdir_shared, "dave2"))
    p = dev2.dchat(*restore, "--password-file", pw)
    assert "restored dave@example.org" in p.stdout, p.stdout
    assert read(dev2.cert) == read(dave.cert)
    assert pubkey_of_key(dev2.key) == pubkey_of_key(dave.key)
    # The restored device is Dave.
    bob.run(extra=["--auto-accept"])
    dev2.dchat("send", bob.userid, "from Dave's second device")
    msg = bob.wait("message", text="from Dave's second device")
    assert msg["from"] == dave.userid


# ---- the peers' CRL ----

def test_without_any_crl_no_handshake_passes(reg):
    """docs/peertls.md: the CRL is fetched from the DIR at start; with no
    CRL at all every handshake fails.  A home without crl.der (its init
    could not fetch one) gets it when dchat starts while the DIR is
    reachable; with the DIR down too, dchat says so and calls nobody."""
    alice, bob = people(reg, "alice", "bob")
    bob.run(extra=["--auto-accept"])
    crl = home_file(alice, "crl.der")
    os.unlink(crl)
    alice.dchat("send", bob.userid, "the CRL was fetched at start")
    bob.wait("message", text="the CRL was fetched at start")
    served = curl(reg.d, "GET", "/v1/crl", raw_out=True)
    assert served.status == 200 and read(crl) == served.body
    # No CRL cached and none to be had: no call is placed, and the
    # reason is given.
    os.unlink(crl)
    assert reg.d.stop() == 0, reg.d.read_log()
    m = bob.mark()
    for argv in (("send", bob.userid, "without a CRL", "--timeout", "20"),
                 ("run", "--json", "--listen", f"127.0.0.1:{free_port()}",
                  "--advertise", "127.0.0.1:4605")):
        p = alice.dchat(*argv, check=False)
        assert p.returncode == 1, p
        assert "no CRL cached, and none fetched: " in p.stderr, p.stderr
        assert "the CRL cache (crl.der)" in p.stderr and \
            "while the DIR is reachable" in p.stderr, p.stderr
        assert not os.path.exists(crl)
    # Bob (who has his CRL) was never called: the one connection he
    # sees from now on is this one, at the front of his queue.
    bob.cmd(cmd="sessions")
    assert bob.wait("sessions", start=m)["sessions"] == []
    assert [e["event"] for e in bob.events[m:]] == ["sessions"], \
        bob.events[m:]
    reg.d.start()


def signed_crl(reg, workdir, last, nxt):
    """A CRL (DER) signed with the registry's CA key by `openssl ca`,
    listing nothing, with the given thisUpdate and nextUpdate (epoch
    seconds)."""
    def stamp(t):
        return time.strftime("%Y%m%d%H%M%SZ", time.gmtime(t))

    d = os.path.join(workdir, "crlca")
    os.makedirs(d, exist_ok=True)
    open(os.path.join(d, "index.txt"), "w").close()
    with open(os.path.join(d, "crlnumber"), "w") as f:
        f.write("4000\n")
    cnf = os.path.join(d, "ca.cnf")
    with open(cnf, "w") as f:
        f.write(f"[ca]\ndefault_ca = x\n[x]\ndatabase = {d}/index.txt\n"
                f"default_md = sha256\ncrlnumber = {d}/crlnumber\n")
    pem = os.path.join(d, "crl.pem")
    openssl("ca", "-gencrl", "-config", cnf, "-cert",
            os.path.join(reg.data, "ca.pem"), "-keyfile",
            os.path.join(reg.data, "ca.key"), "-crl_lastupdate",
            stamp(last), "-crl_nextupdate", stamp(nxt), "-out", pem)
    der = os.path.join(d, "crl.der")
    openssl("crl", "-in", pem, "-outform", "DER", "-out", der)
    return read(der)


def serial_of(cert):
    return openssl("x509", "-in", cert, "-noout", "-serial").stdout.strip() \
        .split("=")[1].lower().lstrip("0")


def test_a_running_dchat_fetches_a_new_crl_before_nextupdate(reg):
    """docs/peertls.md: the CRL is refreshed before its nextUpdate (hourly
    at most).  dird's CRLs last crl_days (a day at least) and are rebuilt
    at half of that, so it never serves one that ends within the hour;
    the registry here serves, from its store, a CRL signed by its CA that
    ends 80 s from now, as another registry might.  Bob's dchat fetches
    the next one before that (30 s after the last fetch, the least it
    waits), not an hour later."""
    alice, bob, carol = people(reg, "alice", "bob", "carol")
    now = int(time.time())
    short = signed_crl(reg, reg.base, now - 60, now + 80)
    n = reg.pg.psql("WITH u AS (UPDATE crl_state SET der = "
                    f"'\\x{short.hex()}'::bytea, next_update = now() + "
                    "interval '30 days' RETURNING 1) SELECT count(*) FROM u",
                    reg.db)
    assert n == "1", n
    assert curl(reg.d, "GET", "/v1/crl", raw_out=True).body == short
    bob.run(extra=["--auto-accept"])
    crl = home_file(bob, "crl.der")
    assert read(crl) == short
    # Carol is revoked: the store's CRL is now dird's own, listing her.
    reg.ctl("cert", "revoke", serial_of(carol.cert))
    served = curl(reg.d, "GET", "/v1/crl", raw_out=True).body
    assert served != short
    wait_until(lambda: read(crl) != short, timeout=now + 80 - time.time(),
               what="Bob's dchat to fetch the CRL before its nextUpdate")
    assert time.time() < now + 80
    assert read(crl) == served
    text = openssl("crl", "-inform", "DER", "-in", crl, "-noout",
                   "-text").stdout
    assert serial_of(carol.cert).upper() in text.upper(), text
    # Bob enforces the new CRL: Carol's certificate is refused by it
    # (before the registry is asked, which would say "the registry says
    # it is revoked").
    m = bob.mark()
    knock(carol, bob.port)
    ref = bob.wait("refused", start=m)
    assert ref["peer"] == carol.userid, ref
    assert ref["reason"] == "peer certificate refused: certificate revoked", \
        ref
    alice.dchat("send", bob.userid, "still fine")
    bob.wait("message", text="still fine")


def knock(peer, port, ctx=None):
    """A TLS 1.3 handshake with the dchat on port, as peer (by default
    offering ALPN dchat/1), then read until it closes.  Returns the TLS
    socket's selected ALPN protocol and what was read, or the SSLError
    that ended the handshake."""
    ctx = ctx or peer_client_ctx(peer)
    with socket.create_connection(("127.0.0.1", port), 10) as raw:
        try:
            s = ctx.wrap_socket(raw)
        except (ssl.SSLError, OSError) as e:
            return e
        with s:
            s.settimeout(15)
            got = b""
            try:
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    got += chunk
            except (ssl.SSLError, OSError):
                pass
            return s.selected_alpn_protocol(), got
