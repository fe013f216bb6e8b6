"""Promises the documentation makes (README.md, docs/*.md, the manual
pages) that no other test exercised (issue 23).  Each is tested as the
documents word it, with the real programs on a real PostgreSQL over real
TLS; where a promise was false the code or the document was fixed, and the
test here failed before that fix."""
import base64
import ctypes
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

from conftest import (BUILD, MIGRATIONS, ROOT, SCHEMA_VERSION, Dird, Peer,
                      Terminal, User, call, client_ctx, curl, dchat_path,
                      dirctl_path, free_port, openssl, peer_client_ctx,
                      people, run, wait_until)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def home_file(peer, name):
    return os.path.join(peer.home, name)


def pubkey_of_cert(path):
    return openssl("x509", "-in", path, "-noout", "-pubkey").stdout


def pubkey_of_key(path):
    return openssl("pkey", "-in", path, "-pubout").stdout


def serial_of(cert):
    return openssl("x509", "-in", cert, "-noout", "-serial").stdout.strip() \
        .split("=")[1].lower().lstrip("0")


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
    # The expiry as a date, as everywhere else, not epoch seconds.
    assert re.search(r"expires \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ;",
                     p.stdout), p.stdout
    assert read(dev2.key) != before["key.pem"]
    assert_own_identity_and_restored_key(dev2, alice, p.stdout)


def assert_own_identity_and_restored_key(dev, first, out):
    """dchat(1): restore gives the device a certificate of its own (same
    user, another serial and key) and keeps the first device's key and
    certificate under restored/, only to read earlier mail."""
    serial = serial_of(dev.cert)
    first_serial = serial_of(first.cert)
    assert serial != first_serial
    assert read(dev.cert) != read(first.cert)
    subject = openssl("x509", "-in", dev.cert, "-noout", "-subject").stdout
    assert first.userid in subject, subject
    assert pubkey_of_cert(dev.cert) == pubkey_of_key(dev.key)
    assert pubkey_of_key(dev.key) != pubkey_of_key(first.key)
    assert (f"this device's certificate {serial}," in out and
            f"the key of certificate {first_serial} is kept to read "
            "earlier mail" in out), out
    kept = os.path.join(dev.home, "restored", first_serial)
    assert pubkey_of_key(kept + ".key") == pubkey_of_key(first.key)
    assert read(kept + ".pem") == read(first.cert)
    assert os.stat(kept + ".key").st_mode & 0o777 == 0o600
    assert os.stat(os.path.join(dev.home, "restored")).st_mode & 0o777 == \
        0o700


def test_restore_with_a_password_instead_of_a_code(reg, tmpdir_shared):
    """dchat(1): restore ... (--code CODE | --password-file F): the
    password the administrator set enrols the device, whose certificate
    then fetches the backup.  A wrong password writes no key."""
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
    assert "enrolment failed" in p.stderr, p.stderr
    assert not os.path.exists(dev3.key) and not os.path.exists(dev3.cert)
    dev2 = Peer(reg, dave.userid, os.path.join(tmpdir_shared, "dave2"))
    p = dev2.dchat(*restore, "--password-file", pw)
    assert "restored dave@example.org" in p.stdout, p.stdout
    assert_own_identity_and_restored_key(dev2, dave, p.stdout)
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
    # No CRL cached and none to be had: dchat says so and does not
    # start, so no call is placed, although Alice's contacts say where
    # Bob is.  Whatever it dialled would be seen before a last attempt
    # to `marker` (held, never listening) made after it exited.
    os.unlink(crl)
    assert reg.d.stop() == 0, reg.d.read_log()
    marker = socket.socket()
    marker.bind(("127.0.0.1", 0))
    mport = marker.getsockname()[1]
    watch = SynWatch({bob.port, mport})
    try:
        for argv in (("send", bob.userid, "without a CRL", "--timeout",
                      "20"),
                     ("run", "--json", "--listen",
                      f"127.0.0.1:{free_port()}", "--advertise",
                      "127.0.0.1:4605")):
            p = alice.dchat(*argv, check=False)
            assert p.returncode == 1, p
            assert "no CRL cached, and none fetched: " in p.stderr, \
                p.stderr
            assert "the CRL cache (crl.der)" in p.stderr and \
                "while the DIR is reachable" in p.stderr, p.stderr
            assert not os.path.exists(crl)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", mport), 10)
        tried = wait_until(
            lambda: [a for a in watch.attempts() if a[2] == mport] and
            watch.attempts(), timeout=10, what="the marker attempt")
        assert [a[1:] for a in tried] == [("127.0.0.1", mport)], tried
    finally:
        watch.close()
        marker.close()
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


# ---- ALPN ----

def alpn_ctx(peer, protocols):
    """peer_client_ctx with another ALPN offer (none when empty)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(peer.cert, peer.key)
    if protocols:
        ctx.set_alpn_protocols(protocols)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def test_alpn_other_protocols_in_the_handshake_none_right_after(reg):
    """docs/peertls.md: ALPN dchat/1; a client offering other protocols is
    refused in the handshake, one offering none right after it.  Neither
    gets a message from dchat."""
    alice, bob = people(reg, "alice", "bob")
    bob.run(extra=["--auto-accept"])
    for offer in (["h2"], ["http/1.1", "dchat/2"]):
        m = bob.mark()
        got = knock(alice, bob.port, alpn_ctx(alice, offer))
        assert isinstance(got, ssl.SSLError), (offer, got)
        assert "no application protocol" in str(got).lower() or \
            "NO_APPLICATION_PROTOCOL" in str(got), (offer, got)
        ref = bob.wait("refused", start=m)
        assert ref["reason"].startswith("TLS handshake with the caller "
                                        "failed") and \
            "no application protocol" in ref["reason"], ref
        assert not [e for e in bob.events[m:] if e["event"] == "connected"]
    # No ALPN at all: the handshake completes, and the session ends
    # before dchat says a word.
    m = bob.mark()
    got = knock(alice, bob.port, alpn_ctx(alice, []))
    assert got == (None, b""), got
    ref = bob.wait("refused", start=m)
    assert ref["reason"] == "the peer does not speak dchat/1", ref
    assert ref["peer"] == alice.userid, ref
    # The same client offering dchat/1 among others is answered in the
    # protocol.
    m = bob.mark()
    ctx = alpn_ctx(alice, ["h2", "dchat/1"])
    with socket.create_connection(("127.0.0.1", bob.port), 10) as raw:
        with ctx.wrap_socket(raw) as s:
            assert s.selected_alpn_protocol() == "dchat/1"
            for msg in ({"type": "Capabilities_Offer", "version": 1,
                         "caps": ["chat"]},
                        {"type": "User_Info", "userid": alice.userid,
                         "name": "Alice"}):
                body = json.dumps(msg).encode()
                s.sendall(struct.pack(">I", len(body)) + b"J" + body)
            s.settimeout(15)
            head = b""
            while len(head) < 5:
                chunk = s.recv(5 - len(head))
                assert chunk, head
                head += chunk
            n = struct.unpack(">I", head[:4])[0]
            body = b""
            while len(body) < n:
                chunk = s.recv(n - len(body))
                assert chunk, body
                body += chunk
            assert head[4:5] == b"J" and \
                json.loads(body)["type"] in ("Capabilities_Accept",
                                             "User_Info"), body
    bob.wait("connected", start=m)
    assert not [e for e in bob.events[m:] if e["event"] == "refused"], \
        bob.events[m:]


# ---- signals ----

def lookup(peer, userid):
    return json.loads(peer.dchat("lookup", "--json", userid).stdout)


def test_dchat_says_bye_and_deregisters_on_sigint_and_sigterm(reg):
    """dchat(1): SIGINT and SIGTERM end every session with a bye and
    exit; the addresses are removed from the DIR on exit."""
    alice, bob = people(reg, "alice", "bob")
    alice.run()
    for sig in (signal.SIGINT, signal.SIGTERM):
        bob.run(extra=["--auto-accept"])
        a, _ = call(alice, bob)
        j = lookup(alice, bob.userid)
        assert j["online"] is True, j
        assert ("127.0.0.1", bob.port) in {
            (x["ip"], x["port"]) for d in j["devices"]
            for x in d["addresses"]}, j
        m = alice.mark()
        bob.proc.send_signal(sig)
        closed = alice.wait("closed", start=m, session=a["session"])
        assert closed["reason"] == "the peer said bye: quit", (sig, closed)
        assert bob.proc.wait(30) == 0, sig
        assert bob.stop() == 0
        j = lookup(alice, bob.userid)
        assert j["online"] is False, (sig, j)
        assert [x for d in j["devices"] for x in d["addresses"]] == [], j


def enrolled(reg, userid, name):
    """A User (key made with openssl, certificate from the registry)."""
    reg.ctl("user", "add", userid, "--name", name)
    u = User(reg.d, userid, reg.base)
    u.enrol(reg.code(userid))
    return u


class SlowUpload:
    """PUT /v1/me/backup over TLS as user, its body sent in two halves:
    the head now, with `Expect: 100-continue` as curl sends it, and once
    dird has taken the request (it answers 100 Continue), the first
    half; the rest by finish()."""

    def __init__(self, d, user, body):
        self.body = body
        ctx = client_ctx(d.data, user)
        raw = socket.create_connection(("127.0.0.1", d.port), 10)
        self.s = ctx.wrap_socket(raw, server_hostname="localhost")
        self.s.settimeout(30)
        self.s.sendall(b"PUT /v1/me/backup HTTP/1.1\r\nHost: localhost\r\n"
                       b"Content-Type: application/x-pkcs12\r\n"
                       b"Expect: 100-continue\r\n"
                       b"Content-Length: " + str(len(body)).encode() +
                       b"\r\n\r\n")
        got = b""
        while b"\r\n\r\n" not in got:
            chunk = self.s.recv(4096)
            assert chunk, got
            got += chunk
        assert got == b"HTTP/1.1 100 Continue\r\n\r\n", got
        half = len(body) // 2
        self.s.sendall(body[:half])
        self.rest = body[half:]

    def finish(self):
        """Send the rest; the status and JSON body of the answer, or
        None when the connection was closed without one."""
        try:
            self.s.sendall(self.rest)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = self.s.recv(65536)
                if not chunk:
                    return None
                data += chunk
            head, body = data.split(b"\r\n\r\n", 1)
            n = int(re.search(rb"(?i)content-length: *(\d+)", head)[1])
            while len(body) < n:
                chunk = self.s.recv(65536)
                if not chunk:
                    return None
                body += chunk
            return int(head.split()[1]), json.loads(body)
        except (ssl.SSLError, OSError):
            return None

    def closed(self):
        """Whether dird closed the connection (nothing more to read)."""
        try:
            self.s.settimeout(0.2)
            return self.s.recv(1) == b""
        except (socket.timeout, TimeoutError):
            return False
        except (ssl.SSLError, OSError):
            return True

    def close(self):
        self.s.close()


def a_backup(reg, user):
    """A PKCS#12 of user's key and certificate, as a backup would be."""
    out = os.path.join(reg.base, "backup.p12")
    openssl("pkcs12", "-export", "-inkey", user.key, "-in", user.cert,
            "-passout", "pass:a backup passphrase", "-out", out)
    return read(out)


def test_dird_finishes_requests_in_flight_on_sigterm_and_exits_on_a_second(
        reg):
    """dird(8): SIGTERM and SIGINT finish the requests in flight and
    exit; a second signal exits at once."""
    alice = enrolled(reg, "alice@example.org", "Alice")
    body = a_backup(reg, alice)
    for sig in (signal.SIGTERM, signal.SIGINT):
        up = SlowUpload(reg.d, alice, body)
        try:
            # dird took the request and half of its body: it is in
            # flight when the signal comes.
            reg.d.proc.send_signal(sig)
            wait_until(lambda: "finishing requests and stopping" in
                       reg.d.read_log(), what="dird to begin stopping")
            got = up.finish()
        finally:
            up.close()
        assert got is not None, reg.d.read_log()
        status, j = got
        assert status == 200, (status, j)
        assert j["sha256"] == hashlib.sha256(body).hexdigest()
        assert j["size"] == len(body)
        assert reg.d.proc.wait(30) == 0, reg.d.read_log()
        reg.d.stop()
        reg.d.start()
        r = alice.req("GET", "/v1/me")
        assert r.status == 200, r
    # A second signal while a request is still in flight: dird exits at
    # once, without waiting for it.
    up = SlowUpload(reg.d, alice, body)
    try:
        log_lines = reg.d.read_log().count("finishing requests and stopping")
        reg.d.proc.send_signal(signal.SIGTERM)
        wait_until(lambda: reg.d.read_log().count(
            "finishing requests and stopping") > log_lines,
            what="dird to begin stopping")
        assert reg.d.proc.poll() is None, "dird did not wait for the request"
        reg.d.proc.send_signal(signal.SIGTERM)
        rc = reg.d.proc.wait(10)
        assert rc == -signal.SIGTERM, (rc, reg.d.read_log())
        wait_until(up.closed, timeout=10, what="the connection to close")
    finally:
        up.close()
    reg.d.stop()
    reg.d.start()


# ---- secrets ----

def pem_lines(path):
    """The base64 lines of every PEM block in path."""
    with open(path) as f:
        return [ln.strip() for ln in f if ln.strip() and
                not ln.startswith("-----")]


def test_secrets_are_never_logged_also_with_debug(registry, tmpdir_shared):
    """README.md and dird(8): certificates, codes, passwords and keys are
    never logged; --debug logs every request.  Enrolments with codes and
    passwords (right and wrong), backups and restores, administrators'
    codes and PKCS#12 files: none of the secrets reaches dird's log, the
    audit log, or the output of dirctl and dchat where it has no place."""
    work = tmpdir_shared
    secrets = []   # never to be logged or printed
    pems = []      # files whose PEM blocks are never to be logged
    outputs = []   # dirctl's and dchat's output, where no secret belongs

    def secret(name, text):
        secrets.append(text)
        return secret_file(work, name, text)

    def out(p):
        outputs.append(p.stdout + p.stderr)
        return p

    r = registry(debug=True)
    pw_olga = secret("pw-olga", "Olga's first password")
    out(r.ctl("user", "add", "olga@example.org", "--name", "Olga",
              "--password-file", pw_olga))
    pw_olga = secret("pw-olga2", "Olga's second password")
    out(r.ctl("user", "passwd", "olga@example.org", "--password-file",
              pw_olga))
    peers = {}
    for n in ("alice", "bob", "carol"):
        uid = f"{n}@example.org"
        r.ctl("user", "add", uid, "--name", n.title())
        code = r.code(uid)
        secrets.append(code)
        peers[n] = Peer(r, uid, os.path.join(work, n))
        out(peers[n].init(code))
        pems += [peers[n].key, peers[n].cert]
    alice = peers["alice"]
    # Enrolment: a wrong code, a wrong password, the right password.
    olga = User(r.d, "olga@example.org", work)
    pems += [olga.key, olga.csr]
    for auth in ("Bearer not-a-code-Xq7Zr2", "Basic " + base64.b64encode(
            b"olga@example.org:not Olga's password").decode()):
        secrets.append(auth.split(" ", 1)[1])
        res = curl(r.d, "POST", "/v1/enroll", json_body={
            "csr": olga.csr_pem()}, headers=[f"Authorization: {auth}"])
        assert res.status == 401, res
    basic = base64.b64encode(
        b"olga@example.org:Olga's second password").decode()
    secrets += ["not Olga's password", basic]
    res = curl(r.d, "POST", "/v1/enroll", json_body={
        "csr": olga.csr_pem()}, headers=[f"Authorization: Basic {basic}"])
    assert res.status == 201, res
    with open(olga.cert, "w") as f:
        f.write(res.json()["certificate"])
    pems.append(olga.cert)
    # Backups: stored, fetched with a code and with a password, and
    # with a wrong code.
    pp = secret("passphrase", "Alice's backup passphrase")
    out(alice.dchat("backup", "--passphrase-file", pp))
    pw_alice = secret("pw-alice", "Alice's own password")
    out(r.ctl("user", "passwd", alice.userid, "--password-file",
              pw_alice))
    code = r.code(alice.userid)
    secrets.append(code)
    for i, how in enumerate((("--code", code),
                             ("--password-file", pw_alice))):
        dev = Peer(r, alice.userid, os.path.join(work, f"alice{i}"))
        out(dev.dchat("restore", "--server", r.d.url, "--user",
                      alice.userid, "--ca-fingerprint", r.fingerprint,
                      *how, "--passphrase-file", pp))
    res = curl(r.d, "GET", "/v1/me/backup",
               headers=["Authorization: Bearer not-a-code-Kp3Wd9"])
    assert res.status == 401, res
    secrets.append("not-a-code-Kp3Wd9")
    # An administrator makes a code and a PKCS#12 over the API, and
    # one with dirctl.
    r.ctl("user", "add", "root@example.org", "--name", "Root",
          "--admin")
    root = User(r.d, "root@example.org", work)
    code = r.code(root.userid)
    secrets.append(code)
    root.enrol(code)
    pems += [root.key, root.cert]
    res = root.req("POST", "/v1/admin/users/bob@example.org/codes",
                   json_body={})
    assert res.status == 201, res
    secrets.append(res.json()["code"])
    secrets.append("a passphrase the API got")
    res = root.req("POST", "/v1/admin/users/carol@example.org/p12",
                   json_body={"passphrase": "a passphrase the API got"},
                   raw_out=True)
    assert res.status == 201, res
    secrets.append(base64.b64encode(res.body[:48]).decode())
    pp2 = secret("passphrase2", "a passphrase dirctl got")
    p12 = os.path.join(work, "carol.p12")
    out(r.ctl("issue-p12", "carol@example.org", "--out", p12,
              "--passphrase-file", pp2))
    # A lookup and a renewal carry certificates in their answers.
    res = olga.req("GET", "/v1/users/alice@example.org")
    assert res.status == 200, res
    out(peers["bob"].dchat("renew"))
    pems += [peers["bob"].key, peers["bob"].cert]
    audit = r.pg.psql("SELECT string_agg(audit_log::text, E'\\n') "
                      "FROM audit_log", r.db)
    log = r.d.read_log()
    # --debug was in force: requests that succeeded are logged.
    for route in ("enroll -> 201", "backup_put -> 200", "backup_get -> 200",
                  "admin_code -> 201", "admin_p12 -> 201", "lookup -> 200",
                  "renew -> 201", "enroll -> 401"):
        assert route in log, (route, log)
    assert len(audit.splitlines()) >= 10, audit
    assert len(secrets) > 15 and len(pems) > 10
    for where, text in [("dird's log", log), ("the audit log", audit)] + [
            ("output", o) for o in outputs]:
        for s in secrets:
            assert s not in text, (where, s, text)
        for word in ("PRIVATE KEY", "BEGIN CERTIFICATE", "REQUEST-----"):
            assert word not in text, (where, word, text)
    for path in pems:
        for line in pem_lines(path):
            assert line not in log, (path, line, log)
            assert line not in audit, (path, line, audit)


# ---- failed attempts: 429 with Retry-After, for a window ----

def enrol_with(d, code, csr):
    """POST /v1/enroll with a code over python's TLS; (status,
    Retry-After header or None)."""
    conn = http.client.HTTPSConnection("localhost", d.port, timeout=30,
                                       context=client_ctx(d.data))
    try:
        conn.request("POST", "/v1/enroll", body=json.dumps({"csr": csr}),
                     headers={"Authorization": f"Bearer {code}",
                              "Content-Type": "application/json"})
        r = conn.getresponse()
        r.read()
        return r.status, r.getheader("Retry-After")
    finally:
        conn.close()


def test_a_429_says_when_to_retry_and_the_window_ends(registry):
    """docs/irp.md: 429 (too many failed attempts, with Retry-After);
    dird(8): auth_fail_max failed attempts within auth_fail_window seconds
    before requests get 429.  Retry-After is delta-seconds (RFC 9110) a
    client can trust: no later than that, it is no longer refused."""
    # The three attempts must fall within the window, also on a loaded
    # machine: 5 s, not less.
    for window in (120, 5):
        r = registry("auth_fail_max=2", f"auth_fail_window={window}")
        r.add("olga@example.org")
        olga = User(r.d, "olga@example.org", r.base)
        code = r.code(olga.userid)
        t0 = time.monotonic()
        got = [enrol_with(r.d, "not-a-code", olga.csr_pem())
               for _ in range(3)]
        assert [g[0] for g in got] == [401, 401, 429], got
        assert got[0][1] is None, got
        after = got[2][1]
        assert after is not None and re.fullmatch(r"[0-9]+", after), got
        after = int(after)
        # Never sooner than the window ends, nor later than it can.
        assert window - (time.monotonic() - t0) <= after <= window, \
            (window, after)
        if window > 10:
            continue
        # Limited, a right code is refused before it is looked at
        # (and kept); the window ends by Retry-After, and then the
        # code works.
        t429 = time.monotonic()

        def not_limited():
            status = enrol_with(r.d, code, olga.csr_pem())[0]
            return status if status != 429 else None

        status = wait_until(not_limited, timeout=30,
                            what="the end of the window")
        assert status == 201, status
        assert time.monotonic() - t429 <= after + 2, after


# ---- the environment, and migrations at start ----

def test_data_and_dsn_from_the_environment_and_migrations_at_start(
        pg, tmpdir_shared):
    """dird(8) and dirctl(8): DIR_DATA is the default for --data, DIR_DSN
    for --dsn (before the dsn setting); dird applies pending migrations
    at start-up.  A registry made at schema 3 is migrated by the first
    dird to start on it, found through the environment alone."""
    old = os.path.join(tmpdir_shared, "schema3")
    os.mkdir(old)
    for f in MIGRATIONS[:3]:
        shutil.copy(os.path.join(ROOT, "schema", f), old)
    assert SCHEMA_VERSION > 3
    data = os.path.join(tmpdir_shared, "data")
    db = pg.new_database()
    env = {"DIR_DATA": data, "DIR_DSN": pg.dsn(db)}
    run([dirctl_path(), "init", "--domain", "example.org", "--host",
         "localhost"], env={**env, "DIR_SCHEMA_DIR": old})
    assert os.path.exists(os.path.join(data, "ca.key"))
    version = "SELECT max(version) FROM schema_version"
    assert pg.psql(version, db) == "3"
    # dird.conf names a database that does not exist: only DIR_DSN
    # leads to the right one.
    conf = os.path.join(data, "dird.conf")
    with open(conf) as f:
        text = f.read()
    assert f"dsn = {pg.dsn(db)}" in text, text
    with open(conf, "w") as f:
        f.write(text.replace(f"dsn = {pg.dsn(db)}",
                             f"dsn = host={pg.sock} dbname=nosuchdb "
                             "user=dir"))
    d = Dird(None, env=env, log=os.path.join(data, "dird-env.log")).start()
    try:
        assert pg.psql(version, db) == str(SCHEMA_VERSION)
        assert "database: external" in d.read_log()
        assert curl(d, "GET", "/healthz").status == 200
        # dirctl finds the registry the same way.
        p = run([dirctl_path(), "user", "add", "olga@example.org", "--name",
                 "Olga"], env=env)
        assert "added olga@example.org" in p.stdout
        code = run([dirctl_path(), "code", "olga@example.org"],
                   env=env).stdout.strip().splitlines()[-1]
        olga = User(d, "olga@example.org", tmpdir_shared)
        olga.enrol(code)
        assert olga.req("GET", "/v1/me").json()["userid"] == olga.userid
        # Without DIR_DSN, the dsn setting is what dirctl uses.
        bare = {k: v for k, v in os.environ.items() if k != "DIR_DSN"}
        p = subprocess.run([dirctl_path(), "user", "list"],
                           env={**bare, "DIR_DATA": data},
                           capture_output=True, text=True, timeout=60)
        assert p.returncode != 0 and "nosuchdb" in p.stderr, p
    finally:
        assert d.stop() == 0, d.read_log()


# ---- Happy Eyeballs, as dialed ----

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux
SO_ATTACH_FILTER = 26


def syn_filter():
    """A classic BPF program (linux/filter.h) that keeps the TCP SYNs
    without ACK of IPv4 and IPv6 on an Ethernet-framed interface (lo) and
    drops everything else in the kernel, so that a busy loopback can not
    fill the socket's buffer and lose the few packets a test is after."""
    ldh, ldb, ldx_msh, ldb_x = 0x28, 0x30, 0xb1, 0x50
    jeq, jset, and_, ret = 0x15, 0x45, 0x54, 0x06
    # (code, jump if true, jump if false, k); a jump skips that many.
    prog = [
        (ldh, 0, 0, 12),          # 0: ethertype
        (jeq, 0, 8, 0x0800),      # 1: IPv4, else 10
        (ldb, 0, 0, 23),          # 2: protocol
        (jeq, 0, 13, 6),          # 3: TCP, else drop
        (ldh, 0, 0, 20),          # 4: fragment offset
        (jset, 11, 0, 0x1FFF),    # 5: a later fragment: drop
        (ldx_msh, 0, 0, 14),      # 6: X = IPv4 header length
        (ldb_x, 0, 0, 27),        # 7: TCP flags (14 + X + 13)
        (and_, 0, 0, 0x12),       # 8: SYN and ACK bits
        (jeq, 6, 7, 0x02),        # 9: SYN alone: keep, else drop
        (jeq, 0, 6, 0x86DD),      # 10: IPv6, else drop
        (ldb, 0, 0, 20),          # 11: next header
        (jeq, 0, 4, 6),           # 12: TCP, else drop
        (ldb, 0, 0, 67),          # 13: TCP flags (14 + 40 + 13)
        (and_, 0, 0, 0x12),       # 14: SYN and ACK bits
        (jeq, 0, 1, 0x02),        # 15: SYN alone: keep, else drop
        (ret, 0, 0, 256),         # 16: keep (its first 256 bytes)
        (ret, 0, 0, 0),           # 17: drop
    ]
    code = b"".join(struct.pack("HBBI", *ins) for ins in prog)
    buf = ctypes.create_string_buffer(code)
    return buf, struct.pack("HL", len(prog), ctypes.addressof(buf))


class SynWatch:
    """The TCP connection attempts (SYNs) sent on the loopback interface to
    the given ports, each with the kernel's time stamp: what a caller
    tried, in which order, when.  A packet socket (AF_PACKET) needs root,
    as the suite runs."""

    def __init__(self, ports):
        self.ports = set(ports)
        self.syns = []  # (time, ip, port), in the order sent
        self.lock = threading.Lock()
        self.s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW,
                               socket.htons(3))  # ETH_P_ALL
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        # The program must outlive the call that attaches it.
        self.prog, fprog = syn_filter()
        self.s.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
        self.s.bind(("lo", 0))
        self.s.settimeout(0.1)
        self.done = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.done:
            try:
                data, anc, _, addr = self.s.recvmsg(256,
                                                    socket.CMSG_SPACE(16))
            except (socket.timeout, TimeoutError):
                continue
            except OSError:
                return
            # Each packet on lo is seen going out and coming in.
            if addr[2] != socket.PACKET_OUTGOING:
                continue
            syn = self._syn(data)
            if syn is None:
                continue
            ts = time.time()
            for level, kind, val in anc:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    sec, nsec = struct.unpack("qq", val[:16])
                    ts = sec + nsec / 1e9
            with self.lock:
                self.syns.append((ts,) + syn)

    def _syn(self, data):
        """(ip, port) of a SYN (without ACK) to one of our ports, else
        None."""
        if len(data) < 14 + 40 + 14:
            return None
        kind = data[12:14]
        if kind == b"\x08\x00" and data[14 + 9] == 6:
            tcp = 14 + (data[14] & 0x0F) * 4
            ip = socket.inet_ntop(socket.AF_INET, data[30:34])
        elif kind == b"\x86\xdd" and data[14 + 6] == 6:
            tcp = 14 + 40
            ip = socket.inet_ntop(socket.AF_INET6, data[38:54])
        else:
            return None
        port = struct.unpack(">H", data[tcp + 2:tcp + 4])[0]
        flags = data[tcp + 13]
        if port not in self.ports or not flags & 0x02 or flags & 0x10:
            return None
        return ip, port

    def attempts(self):
        """The first attempt to each address, in the order they began."""
        seen = {}
        with self.lock:
            for ts, ip, port in self.syns:
                seen.setdefault((ip, port), ts)
        return sorted(((ts, ip, port) for (ip, port), ts in seen.items()))

    def close(self):
        self.done = True
        self.thread.join(5)
        self.s.close()


def blackhole():
    """A TCP port on ::1 where connection attempts go unanswered, as on a
    path that drops them: a listener whose queue is full (Linux drops the
    SYNs).  One connection fills it; it is answered, so it sends no SYN
    again later, and neither does the probe that checks, once closed.
    Returns the port and the sockets to close."""
    lst = socket.socket(socket.AF_INET6)
    lst.bind(("::1", 0))
    lst.listen(0)
    port = lst.getsockname()[1]
    fill = socket.create_connection(("::1", port), 10)
    socks = [lst, fill]
    probe = socket.socket(socket.AF_INET6)
    probe.settimeout(0.5)
    try:
        with pytest.raises((socket.timeout, TimeoutError)):
            probe.connect(("::1", port))
    finally:
        probe.close()
    return port, socks


def test_happy_eyeballs_ipv6_first_staggered(reg):
    """dchat(1): a call goes to every address the DIR returns, IPv6 first,
    staggered by 250 ms (Happy Eyeballs); docs/peertls.md's dialer; RFC
    8305's order alternates the families.  Bob registers two IPv6
    addresses that never answer and his real IPv4 one: Alice tries one
    IPv6 address, the IPv4 one 250 ms later (not after the other IPv6
    one), and is connected there at once.  An IPv6 address that refuses
    is tried first too, and the call goes on to IPv4."""
    alice, bob = people(reg, "alice", "bob")
    alice.run()
    (h1, s1), (h2, s2) = blackhole(), blackhole()
    port = free_port()
    watch = None
    try:
        bob.run(port=port, advertise=f"127.0.0.1:{port}",
                extra=["--auto-accept", "--advertise", f"[::1]:{h1}",
                       "--advertise", f"[::1]:{h2}"])
        j = lookup(alice, bob.userid)
        assert {(a["ip"], a["port"]) for d in j["devices"]
                for a in d["addresses"]} == {("127.0.0.1", port),
                                             ("::1", h1), ("::1", h2)}, j
        watch = SynWatch({port, h1, h2})
        m = alice.mark()
        alice.cmd(cmd="call", user=bob.userid)
        conn = alice.wait("connected", start=m)
        assert conn["addr"] == f"127.0.0.1 {port}", conn
        assert alice.has("calling", user=bob.userid, via="registry")
        v4 = ("127.0.0.1", port)

        def with_v4():
            a = watch.attempts()
            return a if v4 in [x[1:] for x in a] else None

        tried = wait_until(with_v4, timeout=10, what="the IPv4 attempt")
        order = [x[1:] for x in tried]
        assert order[0] in (("::1", h1), ("::1", h2)), tried
        assert order[1] == v4, tried
        gap = tried[1][0] - tried[0][0]
        assert 0.24 <= gap <= 2.5, tried
    finally:
        if watch:
            watch.close()
        for s in s1 + s2:
            s.close()
    # An IPv6 address that refuses: tried first, then IPv4 at once.
    bob.stop()
    closed = socket.socket(socket.AF_INET6)
    closed.bind(("::1", 0))  # held, never listening: a refusal
    c6 = closed.getsockname()[1]
    watch = None
    try:
        bob.run(port=port, advertise=f"127.0.0.1:{port}",
                extra=["--auto-accept", "--advertise", f"[::1]:{c6}"])
        os.unlink(home_file(alice, "contacts"))
        watch = SynWatch({port, c6})
        m = alice.mark()
        alice.cmd(cmd="call", user=bob.userid)
        conn = alice.wait("connected", start=m)
        assert conn["addr"] == f"127.0.0.1 {port}", conn
        tried = wait_until(lambda: len(watch.attempts()) == 2 and
                           watch.attempts(), timeout=10,
                           what="both attempts")
        assert [x[1:] for x in tried] == [("::1", c6), v4], tried
        # At once: a refused attempt does not cost a stagger step.
        assert tried[1][0] - tried[0][0] < 0.2, tried
    finally:
        if watch:
            watch.close()
        closed.close()


# ---- usage errors ----

def test_usage_errors_exit_2(reg, tmpdir_shared):
    """dchat(1) and dirctl(8): 2 on a usage error; dird(8) says the same:
    an unknown option, a missing argument and a bad value.  Each says
    what is wrong, and nothing is changed."""
    (alice,) = people(reg, "alice")
    dchat = [dchat_path(), "--home", alice.home]
    dirctl = [dirctl_path(), "--data", reg.data]
    dird = [os.path.join(BUILD, "dird", "dird"), "--data", reg.data]
    port = free_port()
    cases = [
        (dchat + ["--bogus", "run"], "unrecognized option"),
        (dchat + ["run", "--home"], "requires an argument"),
        (dchat + ["frobnicate"], "usage: dchat"),
        (dchat + ["send", alice.userid], "usage: dchat"),
        (dchat + ["init", "--server", reg.d.url, "--user", alice.userid,
                  "--ca-fingerprint", reg.fingerprint], "--code"),
        (dchat + ["run", "--ttl", "5"], "--ttl"),
        (dchat + ["send", alice.userid, "hi", "--timeout", "soon"],
         "--timeout"),
        (dchat + ["run", "--listen", "nonsense"], "--listen nonsense"),
        (dchat + ["run", "--listen", f"127.0.0.1:{port}", "--advertise",
                  "[::1]4605"], "--advertise [::1]4605"),
        ([dirctl_path(), "--bogus", "--data", reg.data, "user", "list"],
         "unrecognized option"),
        (dirctl + ["user", "add", "x@example.org", "--name"],
         "requires an argument"),
        (dirctl + ["frobnicate"], "unknown command"),
        (dirctl + ["user", "add", "x@example.org"], "usage"),
        (dirctl + ["code", "alice@example.org", "--ttl", "5s"], "--ttl"),
        (dirctl + ["cert", "revoke", "1a2b", "--reason", "certificateHold"],
         "certificateHold"),
        (dird + ["--bogus"], "unrecognized option"),
        (dird + ["--listen"], "requires an argument"),
        (dird + ["--workers", "0", "--listen", f"127.0.0.1:{port}"],
         "workers"),
        (dird + ["--set", "no equals sign"], "--set wants KEY=VALUE"),
        (dird + ["--set", "colour=red", "--listen", f"127.0.0.1:{port}"],
         "colour"),
        (dird + ["--check", "--set", "auth_fail_window=0"],
         "auth_fail_window"),
    ]
    for argv, why in cases:
        p = run(argv, check=False)
        assert p.returncode == 2, (argv, p.returncode, p.stderr)
        assert why in p.stderr, (argv, why, p.stderr)
    env_less = {k: v for k, v in os.environ.items() if k != "DIR_DATA"}
    for prog in ([os.path.join(BUILD, "dird", "dird")],
                 [dirctl_path(), "user", "list"]):
        p = subprocess.run(prog, env=env_less, capture_output=True,
                           text=True, timeout=60)
        assert p.returncode == 2 and "--data" in p.stderr, (prog, p)
    assert reg.ctl("user", "list").stdout.count("@example.org") == 1
    alice.dchat("lookup", alice.userid)


# ---- what a person sees on the terminal ----

def fingerprint_of(cert):
    fp = openssl("x509", "-in", cert, "-noout", "-fingerprint",
                 "-sha256").stdout.split("=", 1)[1]
    return fp.strip().replace(":", "").lower()


def test_the_terminal_warns_of_a_changed_certificate(registry):
    """dchat(1), without --json, on a terminal: a certificate that changed
    since the last session with a contact is announced with a warning.
    (What the terminal says of renewal and expiry:
    tests/integration/test_renew.py.)"""
    r = registry()
    alice, bob = people(r, "alice", "bob")
    bob.run(extra=["--auto-accept"])
    first = fingerprint_of(bob.cert)
    term = Terminal(alice, free_port())
    try:
        term.read_until(b"ready; type 'help'")
        m = bob.mark()
        term.type(f"call {bob.userid}")
        out = term.read_until(b"verification code:")
        assert f"fingerprint {first}".encode() in out, out
        assert b"WARNING: the certificate changed" not in out, out
        sid = bob.wait("connected", start=m)["session"]
        term.type("hangup")
        bob.wait("closed", start=m, session=sid)
        # Bob renews: a new key and certificate.
        bob.stop()
        bob.dchat("renew")
        second = fingerprint_of(bob.cert)
        assert second != first
        bob.run(port=bob.port, extra=["--auto-accept"])
        mark = len(term.out)
        term.type(f"call {bob.userid}")
        warning = (f"     WARNING: the certificate changed since last "
                   f"time (was {first})\r\n").encode()
        out = term.read_until(warning)[mark:]
        assert f"connected to Bob <{bob.userid}>".encode() in out, out
        assert f"fingerprint {second}".encode() in out, out
        assert out.index(f"fingerprint {second}".encode()) < \
            out.index(warning), out
    finally:
        rc = term.close()
    assert rc == 0, term.out
