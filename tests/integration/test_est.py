"""EST (RFC 7030) beside the IRP (dird/api_est.c), done the way an EST
client talks: curl and openssl, base64 PKCS#10 in, base64 PKCS#7
certs-only out, HTTP Basic userid:CODE or userid:PASSWORD, or the
client certificate.  The same policy, approval and audit as
/v1/enroll."""
import base64
import os
import re
import shutil
import subprocess

import pytest

from conftest import DOMAIN, curl, openssl

EST = "/.well-known/est"


def est(reg, method, op, body=None, user=None, secret=None, cert=None,
        key=None, ctype="application/pkcs10"):
    """One EST request with curl: (status, headers, body bytes)."""
    d = reg.d
    out = os.path.join(d.data, "est.out")
    hdr = os.path.join(d.data, "est.hdr")
    argv = ["curl", "-sS", "-o", out, "-D", hdr, "-w", "%{http_code}",
            "-X", method, "--cacert", os.path.join(d.data, "ca.pem")]
    if user is not None:
        argv += ["-u", f"{user}:{secret}"]
    if cert is not None:
        argv += ["--cert", cert, "--key", key]
    if body is not None:
        path = os.path.join(d.data, "est.body")
        with open(path, "wb") as f:
            f.write(body)
        argv += ["--data-binary", "@" + path, "-H", "Content-Type: " + ctype]
    argv.append(d.url + EST + "/" + op)
    p = subprocess.run(argv, capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    with open(out, "rb") as f:
        data = f.read()
    with open(hdr) as f:
        headers = {k.strip().lower(): v.strip() for k, v in (
            line.split(":", 1) for line in f.read().splitlines()[1:]
            if ":" in line)}
    return int(p.stdout.decode()[-3:]), headers, data


def csr_b64(d, name, subj="/CN=device"):
    """A new key and its CSR as an EST client sends it: DER, base64."""
    key = os.path.join(d, name + ".key")
    der = os.path.join(d, name + ".csr.der")
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-outform",
            "DER", "-out", der, "-subj", subj)
    with open(der, "rb") as f:
        return key, base64.encodebytes(f.read())


def certs_of(d, name, b64):
    """The certificates of a base64 PKCS#7 certs-only body, as PEM files
    (the first is returned)."""
    p7 = os.path.join(d, name + ".p7")
    with open(p7, "wb") as f:
        f.write(base64.b64decode(b64))
    pems = openssl("pkcs7", "-inform", "DER", "-in", p7,
                   "-print_certs").stdout
    certs = re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END "
                       r"CERTIFICATE-----\n", pems, re.S)
    assert certs, pems
    path = os.path.join(d, name + ".pem")
    with open(path, "w") as f:
        f.write(certs[0])
    return path, certs


def verified(reg, pem, key):
    """The certificate chains to the CA with openssl and GnuTLS, is for
    key, and authenticates at the registry."""
    ca = os.path.join(reg.data, "ca.pem")
    assert ": OK" in openssl("verify", "-CAfile", ca, pem).stdout
    if shutil.which("certtool"):
        p = subprocess.run(["certtool", "--verify", "--load-ca-certificate",
                            ca, "--infile", pem], capture_output=True,
                           text=True)
        assert p.returncode == 0 and "Verified" in p.stdout, p.stdout
    assert openssl("x509", "-in", pem, "-noout", "-pubkey").stdout == \
        openssl("pkey", "-in", key, "-pubout").stdout
    r = curl(reg.d, "GET", "/v1/me", cert=pem, key=key)
    assert r.status == 200, r
    return r.json()


def test_cacerts_and_csrattrs(reg):
    status, headers, body = est(reg, "GET", "cacerts")
    assert status == 200
    assert headers["content-type"].startswith("application/pkcs7-mime")
    assert headers["content-transfer-encoding"] == "base64"
    _, certs = certs_of(reg.data, "cacerts", body)
    with open(os.path.join(reg.data, "ca.pem")) as f:
        assert certs == [f.read()]
    status, _, body = est(reg, "GET", "csrattrs")
    assert status == 204 and body == b""


def test_simpleenroll_by_code_and_password_then_reenroll(reg,
                                                         tmpdir_shared):
    d = tmpdir_shared
    uid = f"est@{DOMAIN}"
    reg.add(uid)
    code = reg.code(uid)
    key, csr = csr_b64(d, "est")
    status, headers, body = est(reg, "POST", "simpleenroll", csr, uid, code)
    assert status == 200, body
    assert headers["content-transfer-encoding"] == "base64"
    pem, _ = certs_of(d, "est", body)
    me = verified(reg, pem, key)
    assert me["userid"] == uid
    # The code is spent.
    key2, csr2 = csr_b64(d, "est2")
    status, _, body = est(reg, "POST", "simpleenroll", csr2, uid, code)
    assert status == 401 and b"invalid_code" in body, body
    # By password.
    pw = os.path.join(d, "pw")
    with open(pw, "w") as f:
        f.write("a long enough password\n")
    reg.ctl("user", "passwd", uid, "--password-file", pw)
    status, _, body = est(reg, "POST", "simpleenroll", csr2, uid,
                          "a long enough password")
    assert status == 200, body
    verified(reg, certs_of(d, "est2", body)[0], key2)
    # Re-enrolment with the certificate: a new key, a new certificate.
    key3, csr3 = csr_b64(d, "est3")
    status, _, body = est(reg, "POST", "simplereenroll", csr3, cert=pem,
                          key=key)
    assert status == 200, body
    pem3, _ = certs_of(d, "est3", body)
    assert verified(reg, pem3, key3)["serial"] != me["serial"]
    # And simpleenroll with a certificate is a re-enrolment too.
    key4, csr4 = csr_b64(d, "est4")
    status, _, body = est(reg, "POST", "simpleenroll", csr4, cert=pem3,
                          key=key3)
    assert status == 200, body
    verified(reg, certs_of(d, "est4", body)[0], key4)
    rows = reg.sql("SELECT action FROM audit_log WHERE target = "
                   f"'{uid}' AND serial IS NOT NULL ORDER BY id").split()
    assert rows == ["enroll.code", "enroll.password", "renew", "renew"], \
        rows
    reg.ctl("audit", "verify")


def test_what_est_refuses(reg, tmpdir_shared):
    d = tmpdir_shared
    uid = f"bad@{DOMAIN}"
    reg.add(uid)
    code = reg.code(uid)
    _, csr = csr_b64(d, "bad")
    before = reg.digest()
    _, other = csr_b64(d, "other", subj=f"/UID=someone@{DOMAIN}/CN=x")
    for body, user, secret, ctype, want, code_name in (
            (csr, uid, "ABCDEFGHJKLMNPQRSTUVWXYZ", "application/pkcs10",
             401, b"invalid_code"),
            (csr, uid, "not the password", "application/pkcs10", 401,
             b"bad_credentials"),
            (csr, f"someone@{DOMAIN}", code, "application/pkcs10", 401,
             b"invalid_code"),
            (csr, None, None, "application/pkcs10", 401,
             b"credentials_required"),
            (b"garbage!", uid, code, "application/pkcs10", 400,
             b"invalid_csr"),
            (base64.encodebytes(b"\x30\x03\x02\x01\x00"), uid, code,
             "application/pkcs10", 400, b"invalid_csr"),
            (other, uid, code, "application/pkcs10", 403,
             b"csr_for_someone_else"),
            (csr, uid, code, "application/json", 415,
             b"unsupported_media_type")):
        status, _, out = est(reg, "POST", "simpleenroll", body, user, secret,
                             ctype=ctype)
        assert status == want and code_name in out, (code_name, out)
    status, _, out = est(reg, "POST", "simplereenroll", csr)
    assert status == 401, out
    assert reg.digest() == before
    # After all that the code still works.
    status, _, out = est(reg, "POST", "simpleenroll", csr, uid, code)
    assert status == 200, out


@pytest.mark.parametrize("by", ["code", "password"])
def test_approval_then_the_repeated_request_gets_it(registry,
                                                    tmpdir_shared, by):
    reg = registry("enrol_policy=approve", "request_poll=3")
    d = tmpdir_shared
    uid = f"wait-{by}@{DOMAIN}"
    if by == "code":
        reg.add(uid)
        secret = reg.code(uid)
    else:
        pw = os.path.join(d, "pw")
        with open(pw, "w") as f:
            f.write("a long enough password\n")
        reg.add(uid, None, "--password-file", pw)
        secret = "a long enough password"
    key, csr = csr_b64(d, by)
    for _ in range(2):
        status, headers, _ = est(reg, "POST", "simpleenroll", csr, uid,
                                 secret)
        assert status == 202 and headers["retry-after"] == "3"
    out = reg.ctl("request", "list").stdout.splitlines()
    assert len(out) == 1 and by in out[0], out
    reg.ctl("request", "approve", out[0].split()[0])
    status, _, body = est(reg, "POST", "simpleenroll", csr, uid, secret)
    assert status == 200, body
    verified(reg, certs_of(d, by, body)[0], key)
    assert reg.sql("SELECT count(*) FROM certificates").strip() == "1"
