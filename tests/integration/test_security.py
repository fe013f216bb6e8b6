"""Security regressions (issue 15): each test here failed on the code
before its fix.  Real dird, real dchat, real openssl and curl."""
import http.server
import os
import shutil
import socket
import ssl
import subprocess
import threading

import pytest

from conftest import (MIGRATIONS, ROOT, Peer, Terminal, User, ca_sign, call,
                      curl, dchat_path, dirctl_path, free_port, openssl,
                      people, run, wait_until)


class FakeRegistry:
    """An HTTPS server with a self-signed certificate that answers
    GET /v1/ca with a body of the test's choosing and 404 to anything
    else: someone in the path during `dchat init`."""

    def __init__(self, workdir, ca_body):
        key = os.path.join(workdir, "fake.key")
        crt = os.path.join(workdir, "fake.pem")
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
                "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out",
                crt, "-subj", "/CN=localhost", "-days", "1")
        body = ca_body

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                code = 200 if self.path == "/v1/ca" else 404
                data = body if code == 200 else b"{}"
                self.send_response(code)
                self.send_header("Content-Type", "application/x-pem-file")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_POST = do_GET

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(crt, key)
        self.srv.socket = ctx.wrap_socket(self.srv.socket, server_side=True)
        self.url = f"https://localhost:{self.srv.server_address[1]}"
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def init(self, home, fingerprint):
        """`dchat init` against this server, as a victim would run it."""
        return subprocess.run(
            [dchat_path(), "--home", home, "init", "--server", self.url,
             "--user", "victim@example.org", "--code", "X" * 24,
             "--ca-fingerprint", fingerprint],
            capture_output=True, text=True, timeout=60)

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def other_ca(workdir):
    key = os.path.join(workdir, "evil-ca.key")
    crt = os.path.join(workdir, "evil-ca.pem")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", crt,
            "-subj", "/CN=Evil CA", "-days", "30", "-addext",
            "basicConstraints=critical,CA:TRUE")
    with open(crt, "rb") as f:
        return f.read()


def pem_count(path):
    with open(path, "rb") as f:
        return f.read().count(b"-----BEGIN CERTIFICATE-----")


@pytest.mark.parametrize("extra", ["appended CA", "trailing garbage",
                                   "two blocks in one"])
def test_init_refuses_a_ca_body_with_anything_appended(reg, tmpdir_shared,
                                                       extra):
    """Defect 1: dchat checked the fingerprint of the first certificate
    of /v1/ca and stored the whole body as its trust anchors."""
    with open(os.path.join(reg.data, "ca.pem"), "rb") as f:
        real = f.read()
    tail = {"appended CA": other_ca(tmpdir_shared),
            "trailing garbage": b"not a certificate\n",
            "two blocks in one": real}[extra]
    fake = FakeRegistry(tmpdir_shared, real + tail)
    try:
        home = os.path.join(tmpdir_shared, "victim")
        p = fake.init(home, reg.fingerprint)
        assert p.returncode != 0
        assert "exactly one PEM certificate" in p.stderr, p.stderr
        # Nothing is trusted: the anchor file was never written.
        assert not os.path.exists(os.path.join(home, "ca.pem"))
    finally:
        fake.close()


def test_init_stores_only_the_checked_certificate(reg, tmpdir_shared):
    """White space around the one certificate is fine; what is stored is
    that certificate, byte for byte the DER whose fingerprint was
    checked."""
    with open(os.path.join(reg.data, "ca.pem"), "rb") as f:
        real = f.read()
    fake = FakeRegistry(tmpdir_shared, b"\n\n" + real + b"\n  \n")
    try:
        home = os.path.join(tmpdir_shared, "victim")
        p = fake.init(home, reg.fingerprint)
        # The fake registry can not enrol anyone; the CA was accepted.
        assert p.returncode != 0 and "exactly one" not in p.stderr, p.stderr
        ca = os.path.join(home, "ca.pem")
        assert pem_count(ca) == 1
        fp = openssl("x509", "-in", ca, "-noout", "-fingerprint",
                     "-sha256").stdout.split("=", 1)[1].strip()
        assert fp.replace(":", "").lower() == reg.fingerprint.replace(
            ":", "").lower()
    finally:
        fake.close()


def s_server(cert, key, logdir):
    """openssl s_server answering HTTP with cert, on a free port; returns
    (process, port), stopped by the caller.  A port another process took
    between free_port() and the bind is given up for a new one."""
    for attempt in range(3):
        port = free_port()
        log = os.path.join(logdir, f"s_server-{port}.log")
        with open(log, "wb") as errf:
            p = subprocess.Popen(["openssl", "s_server", "-accept",
                                  str(port), "-cert", cert, "-key", key,
                                  "-www", "-quiet"],
                                 stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=errf)

        def up():
            if p.poll() is not None:
                return "exited"
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                return "up"
            except OSError:
                return None
        if wait_until(up, what="s_server") == "up":
            return p, port
        with open(log) as f:
            why = f.read()
    raise AssertionError(f"s_server did not start: {why}")


def test_a_user_certificate_never_passes_for_the_registry(reg,
                                                          tmpdir_shared):
    """Defect 9: a user named like the registry's host answered in its
    place, with the certificate dird issued to them, and curl (which
    falls back to the CN when a certificate has no DNS name) and dchat
    accepted it."""
    reg.ctl("user", "add", "eve@example.org", "--name", "localhost")
    eve = Peer(reg, "eve@example.org", os.path.join(reg.base, "eve"))
    eve.init(reg.code("eve@example.org"))
    ca = os.path.join(reg.data, "ca.pem")
    text = openssl("x509", "-in", eve.cert, "-noout", "-ext",
                   "extendedKeyUsage").stdout
    assert "TLS Web Client Authentication" in text, text
    assert "Server" not in text, text
    (alice,) = people(reg, "alice")
    srv, port = s_server(eve.cert, eve.key, reg.base)
    try:
        p = run(["curl", "-sS", "--cacert", ca,
                 f"https://localhost:{port}/"], check=False)
        assert p.returncode == 60, (p.returncode, p.stderr)
        assert "certificate" in p.stderr, p.stderr
        # dchat, pointed at the impostor, refuses it too.
        cfg = os.path.join(alice.home, "config")
        with open(cfg) as f:
            conf = f.read()
        with open(cfg, "w") as f:
            f.write(conf.replace(reg.d.url, f"https://localhost:{port}"))
        p = alice.dchat("renew", check=False)
        assert p.returncode != 0 and "certificate" in p.stderr, p.stderr
    finally:
        srv.terminate()
        srv.wait()
    # A user certificate made before user certificates lost serverAuth
    # (both purposes, no DNS name, CN = the registry's host): curl's own
    # checks would take it, dchat does not.
    csr = os.path.join(reg.base, "eve.csr")
    openssl("req", "-new", "-key", eve.key, "-out", csr, "-subj",
            "/UID=eve@example.org/CN=localhost")
    old = ca_sign(reg.data, reg.base, csr, "old-eve",
                  subj="/UID=eve@example.org/CN=localhost")
    srv, port = s_server(old, eve.key, reg.base)
    with open(cfg, "w") as f:
        f.write(conf.replace(reg.d.url, f"https://localhost:{port}"))
    try:
        p = alice.dchat("renew", check=False)
        assert p.returncode != 0 and "certificate" in p.stderr, p.stderr
    finally:
        srv.terminate()
        srv.wait()
    # The real registry is still accepted.
    with open(cfg, "w") as f:
        f.write(conf)
    alice.dchat("renew")


# ---- revocation: reasons, disabled users, every certificate at once ----

def crl_of(reg, name="crl"):
    """The registry's current CRL as PEM, written next to its data."""
    r = curl(reg.d, "GET", "/v1/crl", raw_out=True)
    assert r.status == 200, r
    der = os.path.join(reg.base, name + ".der")
    pem = os.path.join(reg.base, name + ".pem")
    with open(der, "wb") as f:
        f.write(r.body)
    openssl("crl", "-inform", "DER", "-in", der, "-out", pem)
    return pem


def crl_verify(reg, cert):
    """openssl verify -crl_check with the CRL the registry publishes now:
    (ok, output)."""
    p = openssl("verify", "-crl_check", "-CAfile",
                os.path.join(reg.data, "ca.pem"), "-CRLfile", crl_of(reg),
                cert, check=False)
    return p.returncode == 0, p.stdout + p.stderr


def crl_text(reg):
    return openssl("crl", "-in", crl_of(reg), "-noout", "-text").stdout


def serial_of(cert):
    out = openssl("x509", "-in", cert, "-noout", "-serial").stdout
    return out.strip().split("=")[1].lower().lstrip("0")


def enrolled(reg, userid, name, device=""):
    if not device:
        reg.ctl("user", "add", userid, "--name", name)
    u = User(reg.d, userid, reg.base, device)
    u.enrol(reg.code(userid))
    return u


def admin(reg):
    reg.ctl("user", "add", "root@example.org", "--name", "Root", "--admin")
    return enrolled(reg, "root@example.org", "Root", device="-dev")


def revoke(user, serial, reason):
    return user.req("POST", f"/v1/certificates/{serial}/revoke",
                    json_body={"reason": reason})


@pytest.mark.parametrize("reason", ["removeFromCRL", "certificateHold",
                                    "cACompromise", "aACompromise",
                                    "privilegeWithdrawn"])
def test_a_holder_can_not_choose_a_reason_that_unrevokes(reg, reason):
    """Defect 2: removeFromCRL from the holder returned 200, a later
    keyCompromise got 409, and the published CRL still passed the
    certificate."""
    alice = enrolled(reg, "alice@example.org", "Alice")
    serial = serial_of(alice.cert)
    r = revoke(alice, serial, reason)
    assert r.status == 400 and r.code == "invalid_reason", r
    assert alice.req("GET", "/v1/me").status == 200
    ok, out = crl_verify(reg, alice.cert)
    assert ok, out
    # The administrator's keyCompromise still works, and every relying
    # party's check fails from the next CRL on.
    reg.ctl("cert", "revoke", serial, "--reason", "keyCompromise")
    ok, out = crl_verify(reg, alice.cert)
    assert not ok and "revoked" in out, out
    assert "Key Compromise" in crl_text(reg)


def test_a_revocation_can_only_be_raised_to_key_compromise(reg):
    alice = enrolled(reg, "alice@example.org", "Alice")
    serial = serial_of(alice.cert)
    r = revoke(alice, serial, "superseded")
    assert r.status == 200 and r.json()["reason"] == "superseded", r
    text = crl_text(reg)
    assert "Superseded" in text and "Key Compromise" not in text, text
    # Another "lower" reason: 409, nothing changes.
    p = reg.ctl("cert", "revoke", serial, "--reason", "affiliationChanged",
                check=False)
    assert p.returncode != 0 and "already revoked" in p.stderr, p.stderr
    # keyCompromise raises it, once.
    reg.ctl("cert", "revoke", serial, "--reason", "keyCompromise")
    text = crl_text(reg)
    assert "Key Compromise" in text and "Superseded" not in text, text
    p = reg.ctl("cert", "revoke", serial, "--reason", "keyCompromise",
                check=False)
    assert p.returncode != 0 and "already revoked" in p.stderr, p.stderr
    p = reg.ctl("cert", "revoke", serial, "--reason", "removeFromCRL",
                check=False)
    assert p.returncode == 2, p.stderr
    ok, out = crl_verify(reg, alice.cert)
    assert not ok and "revoked" in out, out
    audit = reg.pg.psql("SELECT detail FROM audit_log WHERE action = "
                        f"'cert.revoke' AND serial = '{serial}' ORDER BY id",
                        reg.db)
    assert audit.splitlines() == ["reason=superseded",
                                  "reason=keyCompromise (raised)"], audit


def test_the_database_refuses_a_reason_that_unrevokes(reg):
    alice = enrolled(reg, "alice@example.org", "Alice")
    serial = serial_of(alice.cert)
    p = subprocess.run(
        ["psql", "-X", "-q", "-d", reg.pg.dsn(reg.db), "-c",
         "UPDATE certificates SET status = 'revoked', revoked_at = now(), "
         f"revocation_reason = 8 WHERE serial = '{serial}'"],
        capture_output=True, text=True)
    assert p.returncode != 0 and "certificates_reason_end_entity" in \
        p.stderr, p.stderr


def test_disabling_a_user_reaches_peers_through_the_crl(reg):
    """Defect 4: after `user disable` the user's certificates still
    passed `openssl verify -crl_check` and PeerTLS."""
    alice = enrolled(reg, "alice@example.org", "Alice")
    ok, out = crl_verify(reg, alice.cert)
    assert ok, out
    reg.ctl("user", "disable", alice.userid)
    ok, out = crl_verify(reg, alice.cert)
    assert not ok and "revoked" in out, out
    text = crl_text(reg)
    assert "Certificate Hold" in text, text
    # Enabling takes the entry back: the same certificate verifies again.
    reg.ctl("user", "enable", alice.userid)
    ok, out = crl_verify(reg, alice.cert)
    assert ok, out
    assert "Certificate Hold" not in crl_text(reg)
    # The same through the admin API.
    root = admin(reg)
    r = root.req("POST", f"/v1/admin/users/{alice.userid}/disable")
    assert r.status == 200, r
    ok, out = crl_verify(reg, alice.cert)
    assert not ok and "revoked" in out, out
    r = root.req("POST", f"/v1/admin/users/{alice.userid}/enable")
    assert r.status == 200, r
    ok, out = crl_verify(reg, alice.cert)
    assert ok, out


def test_a_disabled_user_is_refused_by_a_peer(reg):
    alice, bob, carol = people(reg, "alice", "bob", "carol")
    bob.run(extra=["--auto-accept"])
    alice.dchat("send", bob.userid, "before")
    bob.wait("message", text="before")
    reg.ctl("user", "disable", alice.userid)
    m = bob.mark()
    bob.cmd(cmd="refresh")
    bob.wait("refreshed", start=m)
    p = alice.dchat("send", bob.userid, "after", "--timeout", "20",
                    check=False)
    assert p.returncode != 0
    ref = bob.wait("refused", start=m)
    assert "revoked" in ref["reason"] and ref["peer"] == alice.userid, ref
    # A later message on the same path arrives; the refused one never.
    carol.dchat("send", bob.userid, "later")
    bob.wait("message", start=m, text="later")
    assert not bob.has("message", text="after"), bob.events


def test_every_certificate_of_a_user_revoked_at_once(reg):
    """A stolen device whose certificate was renewed from the stolen one:
    the administrator revokes everything the user holds."""
    alice = enrolled(reg, "alice@example.org", "Alice")
    alice2 = User(reg.d, alice.userid, reg.base, "-2")
    r = alice.req("POST", "/v1/renew", json_body={"csr": alice2.csr_pem()})
    assert r.status == 201, r
    with open(alice2.cert, "w") as f:
        f.write(r.json()["certificate"])
    bob = enrolled(reg, "bob@example.org", "Bob")
    p = reg.ctl("cert", "revoke", "--user", alice.userid, "--reason",
                "keyCompromise")
    got = sorted(line.split()[1] for line in p.stdout.splitlines()
                 if line.startswith("revoked "))
    assert got == sorted([serial_of(alice.cert), serial_of(alice2.cert)]), \
        p.stdout
    for c in (alice.cert, alice2.cert):
        ok, out = crl_verify(reg, c)
        assert not ok and "revoked" in out, out
        assert alice.req("GET", "/v1/me").status == 401
    ok, out = crl_verify(reg, bob.cert)
    assert ok, out
    # Again: nothing left to revoke, said plainly.
    p = reg.ctl("cert", "revoke", "--user", alice.userid)
    assert "no certificate to revoke" in p.stdout, p.stdout
    # The admin API does the same, and only administrators may.
    r = bob.req("POST", f"/v1/admin/users/{bob.userid}/revoke",
                json_body={})
    assert r.status == 403, r
    root = admin(reg)
    r = root.req("POST", f"/v1/admin/users/{bob.userid}/revoke",
                 json_body={"reason": "removeFromCRL"})
    assert r.status == 400 and r.code == "invalid_reason", r
    r = root.req("POST", f"/v1/admin/users/{bob.userid}/revoke",
                 json_body={"reason": "privilegeWithdrawn"})
    assert r.status == 200, r
    assert r.json()["revoked"] == [serial_of(bob.cert)], r
    ok, out = crl_verify(reg, bob.cert)
    assert not ok and "revoked" in out, out
    r = root.req("POST", "/v1/admin/users/nobody@example.org/revoke",
                 json_body={})
    assert r.status == 404 and r.code == "unknown_user", r


def test_migration_keeps_unrevoking_reasons_revoked(pg, tmpdir_shared):
    """Rows that a holder revoked with removeFromCRL (or another reason
    no end entity may have) before schema 4 stay revoked, as
    unspecified, and the next CRL lists them so."""
    old = os.path.join(tmpdir_shared, "schema3")
    os.mkdir(old)
    for f in MIGRATIONS[:3]:
        shutil.copy(os.path.join(ROOT, "schema", f), old)
    db = pg.new_database()
    data = os.path.join(tmpdir_shared, "data")
    run([dirctl_path(), "--data", data, "--dsn", pg.dsn(db), "init",
         "--domain", "example.org"], env={"DIR_SCHEMA_DIR": old})
    assert pg.psql("SELECT max(version) FROM schema_version", db) == "3"
    fp = openssl("x509", "-in", os.path.join(data, "ca.pem"), "-noout",
                 "-fingerprint", "-sha256").stdout.split("=", 1)[1]
    fp = fp.strip().replace(":", "").lower()
    pg.psql("INSERT INTO users (userid, name) VALUES ('mal@example.org', "
            "'Mal')", db)
    for serial, reason in (("1a2b", 8), ("3c4d", 6), ("5e6f", 1)):
        pg.psql("INSERT INTO certificates (issuer, serial, user_id, der, "
                "fingerprint, not_before, not_after, status, revoked_at, "
                f"revocation_reason) SELECT '{fp}', '{serial}', id, "
                f"'\\x{'30' * 64}'::bytea, "
                f"repeat('{serial[0]}', 64), now(), now() + interval "
                f"'1 day', 'revoked', now(), {reason} FROM users", db)
    p = run([dirctl_path(), "--data", data, "migrate"])
    assert f"schema version {len(MIGRATIONS)}" in p.stdout
    assert pg.psql("SELECT string_agg(serial || '=' || revocation_reason, "
                   "',' ORDER BY serial) FROM certificates", db) == \
        "1a2b=0,3c4d=0,5e6f=1"
    crl = os.path.join(tmpdir_shared, "crl.der")
    run([dirctl_path(), "--data", data, "crl", "--out", crl])
    text = openssl("crl", "-inform", "DER", "-in", crl, "-noout",
                   "-text").stdout
    for serial in ("1A2B", "3C4D", "5E6F"):
        assert serial in text.upper(), text
    assert "Remove From CRL" not in text and "Hold" not in text, text


# ---- bodies are not read for callers who are refused anyway ----

def headers_only(d, request, cert=None, key=None, timeout=10):
    """Send request (the head of an HTTP request whose body never comes)
    over TLS to dird; the status line of the answer, or None when dird
    waits for the body instead of answering."""
    ctx = ssl.create_default_context(cafile=os.path.join(d.data, "ca.pem"))
    if cert:
        ctx.load_cert_chain(cert, key)
    with socket.create_connection(("127.0.0.1", d.port), 10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(request)
            s.settimeout(timeout)
            try:
                data = s.recv(4096)
            except (socket.timeout, TimeoutError):
                return None
            return data.split(b"\r\n", 1)[0].decode(errors="replace")


def test_a_body_is_refused_before_it_is_read(reg, tmpdir_shared):
    """Defect 5: dird buffered request bodies (up to backup_max, on up to
    max_connections connections) before it looked at who sent them."""
    alice = enrolled(reg, "alice@example.org", "Alice")
    big = b"Content-Type: application/x-pkcs12\r\nContent-Length: 1000000\r\n"
    put = b"PUT /v1/me/backup HTTP/1.1\r\nHost: localhost\r\n" + big + b"\r\n"
    # No certificate: 401 at once, while the body has not been sent.
    assert headers_only(reg.d, put) == "HTTP/1.1 401 Unauthorized"
    # A certificate of another CA: the same.
    key = os.path.join(tmpdir_shared, "stranger.key")
    crt = os.path.join(tmpdir_shared, "stranger.pem")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", crt,
            "-subj", "/UID=alice@example.org/CN=Alice", "-days", "1")
    assert headers_only(reg.d, put, crt, key) == "HTTP/1.1 401 Unauthorized"
    # A revoked certificate: the same.
    reg.ctl("cert", "revoke", serial_of(alice.cert))
    assert headers_only(reg.d, put, alice.cert, alice.key) == \
        "HTTP/1.1 401 Unauthorized"
    # Enrolment without any code or password: 401 before the CSR comes.
    post = (b"POST /v1/enroll HTTP/1.1\r\nHost: localhost\r\n"
            b"Content-Type: application/json\r\nContent-Length: 60000\r\n"
            b"\r\n")
    assert headers_only(reg.d, post) == "HTTP/1.1 401 Unauthorized"
    # A valid certificate: dird waits for the body, as it should.
    bob = enrolled(reg, "bob@example.org", "Bob")
    assert headers_only(reg.d, put, bob.cert, bob.key, timeout=2) is None
    # And takes a real upload.
    p12 = os.path.join(tmpdir_shared, "bob.p12")
    openssl("pkcs12", "-export", "-inkey", bob.key, "-in", bob.cert,
            "-out", p12, "-passout", "pass:correct horse")
    with open(p12, "rb") as f:
        r = bob.req("PUT", "/v1/me/backup", body=f.read(),
                    ctype="application/x-pkcs12")
    assert r.status == 200, r


# ---- OCSP: revocation that reaches relying parties at once ----

def with_plain_listener(reg):
    """Restart reg's dird with a plain-HTTP listener (as `dirctl init`
    configures one on port 4606) on a free port: its URL."""
    port = free_port()
    assert reg.d.stop() == 0, reg.d.read_log()
    reg.d.extra += ["--listen", f"http://127.0.0.1:{port}"]
    reg.d.start()
    return f"http://127.0.0.1:{port}"


def ocsp(reg, cert, url, *extra):
    """openssl ocsp as the issue writes it: (status line, whole output)."""
    ca = os.path.join(reg.data, "ca.pem")
    p = openssl("ocsp", "-issuer", ca, "-cert", cert, "-url", url,
                "-CAfile", ca, *extra, check=False)
    out = p.stdout + p.stderr
    assert "Response verify OK" in out, out
    line = [x for x in out.splitlines() if x.startswith(cert + ":")]
    assert line, out
    return line[0].split(": ", 1)[1].strip(), out


def test_certificates_name_their_ocsp_responder_and_crl(reg):
    alice = enrolled(reg, "alice@example.org", "Alice")
    text = openssl("x509", "-in", alice.cert, "-noout", "-ext",
                   "authorityInfoAccess,crlDistributionPoints").stdout
    assert "OCSP - URI:http://localhost:4606/ocsp" in text, text
    assert "CA Issuers - URI:http://localhost:4606/v1/ca" in text, text
    assert "URI:http://localhost:4606/v1/crl" in text, text


def test_ocsp_good_then_revoked_at_once(reg, tmpdir_shared):
    """`openssl ocsp` says good, then revoked right after `dirctl cert
    revoke` and after `dirctl user disable` (and good again after
    enable), over plain HTTP and over the IRP port."""
    plain = with_plain_listener(reg)
    alice = enrolled(reg, "alice@example.org", "Alice")
    bob = enrolled(reg, "bob@example.org", "Bob")
    https = reg.d.url + "/ocsp"
    for url in (plain + "/ocsp", https):
        status, out = ocsp(reg, alice.cert, url)
        assert status == "good", out
    reg.ctl("cert", "revoke", serial_of(alice.cert), "--reason",
            "keyCompromise")
    for url in (plain + "/ocsp", https):
        status, out = ocsp(reg, alice.cert, url)
        assert status == "revoked" and "Reason: keyCompromise" in out, out
    status, out = ocsp(reg, bob.cert, https)
    assert status == "good", out
    reg.ctl("user", "disable", bob.userid)
    status, out = ocsp(reg, bob.cert, https)
    assert status == "revoked" and "certificateHold" in out, out
    reg.ctl("user", "enable", bob.userid)
    status, out = ocsp(reg, bob.cert, https)
    assert status == "good", out
    # GnuTLS's ocsptool agrees.
    p = run(["ocsptool", "--ask=" + plain + "/ocsp", "--load-issuer",
             os.path.join(reg.data, "ca.pem"), "--load-cert", alice.cert,
             "--load-signer", os.path.join(reg.data, "ca.pem")],
            check=False)
    assert "Certificate Status: revoked" in p.stdout, p.stdout + p.stderr
    assert "Verifying OCSP Response: Success" in p.stdout, p.stdout


def test_ocsp_by_get_unknown_serials_and_strangers(reg, tmpdir_shared):
    import base64
    import urllib.parse
    import urllib.request
    plain = with_plain_listener(reg)
    alice = enrolled(reg, "alice@example.org", "Alice")
    ca = os.path.join(reg.data, "ca.pem")
    req = os.path.join(tmpdir_shared, "req.der")
    resp = os.path.join(tmpdir_shared, "resp.der")
    openssl("ocsp", "-issuer", ca, "-cert", alice.cert, "-no_nonce",
            "-reqout", req)
    with open(req, "rb") as f:
        b64 = base64.b64encode(f.read()).decode()
    # RFC 5019 GET: the base64, URL-encoded ('/' and '+' too).
    url = plain + "/ocsp/" + urllib.parse.quote(b64, safe="")
    with urllib.request.urlopen(url, timeout=30) as r:
        assert r.headers["Content-Type"] == "application/ocsp-response"
        with open(resp, "wb") as f:
            f.write(r.read())
    p = openssl("ocsp", "-respin", resp, "-issuer", ca, "-cert", alice.cert,
                "-CAfile", ca, check=False)
    assert "Response verify OK" in p.stdout + p.stderr, p.stderr
    assert f"{alice.cert}: good" in p.stdout, p.stdout
    # A serial this CA never issued (a forgery, say): revoked since 1970,
    # flagged with RFC 6960's extended revoke extension.
    p = openssl("ocsp", "-issuer", ca, "-serial", "0x1234abcd", "-url",
                plain + "/ocsp", "-CAfile", ca, "-resp_text", check=False)
    out = p.stdout + p.stderr
    assert "Response verify OK" in out and "0x1234abcd: revoked" in out, out
    assert "Jan  1 00:00:00 1970" in out, out
    # A certificate of another CA is not ours to judge: unknown.
    other = os.path.join(tmpdir_shared, "other-ca.pem")
    with open(other, "wb") as f:
        f.write(other_ca(tmpdir_shared))
    p = openssl("ocsp", "-issuer", other, "-serial", "0x1234", "-url",
                plain + "/ocsp", "-CAfile", ca, "-VAfile", ca, check=False)
    assert "0x1234: unknown" in p.stdout, p.stdout + p.stderr
    # Garbage: an OCSP error answer, not a crash or an HTML page.
    for body in (b"", b"\x30\x03\x02\x01\x00", os.urandom(300)):
        r = curl(reg.d, "POST", "/ocsp", body=body,
                 ctype="application/ocsp-request", raw_out=True)
        if body == b"":
            continue  # curl sends no body; any answer is fine
        assert r.status == 200, r
        with open(resp, "wb") as f:
            f.write(r.body)
        p = openssl("ocsp", "-respin", resp, "-resp_text", "-noverify",
                    check=False)
        assert "malformedrequest" in (p.stdout + p.stderr).lower(), p.stdout
    r = curl(reg.d, "GET", "/ocsp/not*base64")
    assert r.status == 200, r
    # A JSON body is refused before it is parsed as anything.
    r = curl(reg.d, "POST", "/ocsp", json_body={"a": 1})
    assert r.status == 415, r


def test_metrics_are_for_administrators(reg, tmpdir_shared):
    """Defect 13: /metrics told anyone how many users were online."""
    alice = enrolled(reg, "alice@example.org", "Alice")
    root = admin(reg)
    r = curl(reg.d, "GET", "/metrics")
    assert r.status == 401, r
    r = alice.req("GET", "/metrics")
    assert r.status == 403, r
    r = root.req("GET", "/metrics")
    assert r.status == 200 and "dird_online_users" in r.body, r
    # The metrics listener (metrics_listen) serves anyone who can reach
    # it: an administrator binds it to a private address.
    assert "dird_online_users" in reg.d.metrics()
    # The plain-HTTP listener for relying parties serves what they fetch
    # and nothing else.
    plain = with_plain_listener(reg)
    import urllib.error
    import urllib.request
    for path in ("/metrics", "/v1/me", "/v1/users/alice@example.org"):
        try:
            urllib.request.urlopen(plain + path, timeout=30)
            raise AssertionError(f"{path} served over plain HTTP")
        except urllib.error.HTTPError as e:
            assert e.code == 404, (path, e.code)
    with urllib.request.urlopen(plain + "/v1/crl", timeout=30) as r:
        assert r.headers["Content-Type"] == "application/pkix-crl"
    # metrics = public opens it up again, for those who want that.
    assert reg.d.stop() == 0
    reg.d.extra += ["--set", "metrics=public"]
    reg.d.start()
    assert curl(reg.d, "GET", "/metrics").status == 200


# ---- peers check each other online, and say so when they can not ----

def test_a_revoked_peer_is_refused_in_the_next_handshake(reg):
    """Bob's certificate is revoked while Alice runs: her next call to
    him is refused in the handshake, without a CRL refresh; and a caller
    revoked (or disabled) meanwhile is refused by a listener at once."""
    alice, bob, carol, dave, erin = people(reg, "alice", "bob", "carol",
                                           "dave", "erin")
    alice.run()
    bob.run(extra=["--auto-accept"])
    a, b = call(alice, bob)
    assert a["peer"]["revocation"] == "good", a
    assert b["peer"]["revocation"] == "good", b
    assert a["peer"]["revocation_note"] == "checked with the registry now"
    m = alice.mark()
    alice.cmd(cmd="hangup", session=a["session"])
    alice.wait("closed", start=m)
    reg.ctl("cert", "revoke", serial_of(bob.cert), "--reason",
            "keyCompromise")
    m, mb = alice.mark(), bob.mark()
    alice.cmd(cmd="call", user=bob.userid)
    # At the address that worked last, Bob's certificate is refused in
    # the handshake; the registry then lists no device of his.
    retry = alice.wait("call_retry", start=m, user=bob.userid)
    assert "the registry says it is revoked" in retry["reason"], retry
    alice.wait("call_failed", start=m, user=bob.userid)
    assert not [e for e in alice.events[m:] if e["event"] == "connected"]
    # Bob's end of that handshake ended too, and never came to a session.
    bob.wait("refused", start=mb)
    assert not [e for e in bob.events[mb:] if e["event"] == "connected"]
    # Callers: Carol revoked, Dave's user disabled; Erin, who fetched no
    # CRL since, refuses both in the handshake.  (They call the address
    # that worked before: the registry no longer answers them.)
    erin.run(extra=["--auto-accept"])
    carol.dchat("send", erin.userid, "hello")
    dave.dchat("send", erin.userid, "hello")
    reg.ctl("cert", "revoke", serial_of(carol.cert))
    reg.ctl("user", "disable", dave.userid)
    for who, why in ((carol, "revoked"), (dave, "on hold")):
        m = erin.mark()
        p = who.dchat("send", erin.userid, "after", "--timeout", "20",
                      check=False)
        assert p.returncode != 0, p.stderr
        ref = erin.wait("refused", start=m, peer=who.userid)
        assert why in ref["reason"], ref
    # A later message on the same path arrives; the refused ones never.
    m = erin.mark()
    alice.dchat("send", erin.userid, "later")
    erin.wait("message", start=m, text="later")
    assert not erin.has("message", text="after"), erin.events


def expired_crl(reg, home):
    """Write into home a CRL signed by the registry's CA whose nextUpdate
    has passed (it lists nothing)."""
    d = os.path.join(reg.base, "crlca")
    os.makedirs(d, exist_ok=True)
    open(os.path.join(d, "index.txt"), "w").close()
    cnf = os.path.join(d, "ca.cnf")
    with open(cnf, "w") as f:
        f.write(f"""[ca]
default_ca = x
[x]
database = {d}/index.txt
default_md = sha256
crlnumber = {d}/crlnumber
""")
    with open(os.path.join(d, "crlnumber"), "w") as f:
        f.write("1000\n")
    pem = os.path.join(d, "crl.pem")
    openssl("ca", "-gencrl", "-config", cnf, "-cert",
            os.path.join(reg.data, "ca.pem"), "-keyfile",
            os.path.join(reg.data, "ca.key"), "-crl_lastupdate",
            "20200101000000Z", "-crl_nextupdate", "20200102000000Z",
            "-out", pem)
    openssl("crl", "-in", pem, "-outform", "DER", "-out",
            os.path.join(home, "crl.der"))


def test_an_expired_crl_keeps_peers_talking_and_says_so(reg):
    """Defect 11: with the registry down and the cached CRL past its
    nextUpdate, every handshake failed after the fact.  Now the session
    goes on and both faces say the status is unknown since then."""
    alice, bob = people(reg, "alice", "bob")
    bob.run(extra=["--auto-accept"])
    alice.dchat("send", bob.userid, "Alice knows where Bob is")
    bob.stop()
    assert reg.d.stop() == 0, reg.d.read_log()
    expired_crl(reg, bob.home)
    bob.run(port=bob.port, extra=["--auto-accept"], registered=False)
    p = alice.dchat("send", bob.userid, "the registry is down")
    assert p.returncode == 0, p.stderr
    msg = bob.wait("message", text="the registry is down")
    conn = bob.wait("connected", session=msg["session"])
    assert conn["peer"]["revocation"] == "unknown", conn
    note = conn["peer"]["revocation_note"]
    assert "revocation status unknown since 2020-01-02 00:00 UTC" in note, \
        conn
    bob.stop()
    # The terminal says it as a warning, as a person sees it.
    term = Terminal(bob, bob.port)
    try:
        term.read_until(b"ready")
        sender = subprocess.Popen(
            [dchat_path(), "--home", alice.home, "send", bob.userid,
             "seen on a terminal", "--timeout", "30"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        term.read_until(b"incoming call")
        term.type("accept")
        out = term.read_until(b"seen on a terminal")
        assert b"revocation status: unknown" in out, out
        assert b"WARNING: revocation status unknown since 2020-01-02 " \
            b"00:00 UTC" in out, out
        assert sender.wait(60) == 0, sender.stderr.read()
    finally:
        term.close()
    reg.d.start()


def test_names_that_would_fool_a_reader_are_refused_or_shown(reg):
    """Defect 7, the registry's side.  A name is an administrator's free
    text and reaches every screen (in certificates, in lookups): one with
    control characters or a direction override is refused when the user
    is made, by dirctl and the admin API alike, and the CA would not put
    it in a certificate either.  Whatever a registry's database holds
    anyway (an operator's SQL), `dchat lookup` shows it visibly."""
    (alice,) = people(reg, "alice")
    root = admin(reg)
    for bad in ("Mal\x1b[2Jlory", "Mal\rlory", "Mal\u0085lory",
                "Mal\u202elory", "Mal\u2066lory"):
        p = reg.ctl("user", "add", "mallory@example.org", "--name", bad,
                    check=False)
        assert p.returncode == 2 and "control characters" in p.stderr, \
            (bad, p.stderr)
        r = root.req("POST", "/v1/admin/users", json_body={
            "userid": "mallory@example.org", "name": bad})
        assert r.status == 400 and r.code == "invalid_value", (bad, r)
    reg.ctl("user", "add", "mallory@example.org", "--name", "Mallory")
    mal = Peer(reg, "mallory@example.org", os.path.join(reg.base, "mal"))
    mal.init(reg.code("mallory@example.org"))
    reg.pg.psql("UPDATE users SET name = E'Mal\\x1b[2J\\rlory\\u202e' "
                "WHERE userid = 'mallory@example.org'", reg.db)
    p = alice.dchat("lookup", "mallory@example.org")
    assert "\x1b" not in p.stdout and "\r" not in p.stdout, p.stdout
    assert "\u202e" not in p.stdout, p.stdout
    assert "Mal\\x1b[2J\\rlory\\u202e" in p.stdout, p.stdout
