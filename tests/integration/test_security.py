"""Security regressions (issue 15): each test here failed on the code
before its fix.  Real dird, real dchat, real openssl and curl."""
import http.server
import os
import socket
import ssl
import subprocess
import threading
import time

import pytest

from dird_fixture import free_port
from helpers import ca_sign, openssl, run
from test_dchat import Peer, Registry, dchat_path, people  # noqa: F401
from test_dchat import reg  # noqa: F401  (the fixture)


def wait_until(cond, timeout=30, what="condition"):
    """Poll cond() until it is true; its last value, or fail."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


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
        p = subprocess.run([dchat_path(), "--home", home, "init", "--server",
                            fake.url, "--user", "victim@example.org",
                            "--code", "X" * 24, "--ca-fingerprint",
                            reg.fingerprint],
                           capture_output=True, text=True, timeout=60)
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
        p = subprocess.run([dchat_path(), "--home", home, "init", "--server",
                            fake.url, "--user", "victim@example.org",
                            "--code", "X" * 24, "--ca-fingerprint",
                            reg.fingerprint],
                           capture_output=True, text=True, timeout=60)
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


def s_server(cert, key, port):
    """openssl s_server answering HTTP with cert; stopped by the caller."""
    p = subprocess.Popen(["openssl", "s_server", "-accept", str(port),
                          "-cert", cert, "-key", key, "-www", "-quiet"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)

    def up():
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return True
        except OSError:
            return False
    wait_until(up, what="s_server")
    return p


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
    port = free_port()
    srv = s_server(eve.cert, eve.key, port)
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
    srv = s_server(old, eve.key, port)
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
