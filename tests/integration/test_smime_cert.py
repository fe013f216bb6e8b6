"""Certificates fit for S/MIME mail (issue 18): the user id, and a
different email the administrator recorded, as rfc822Names in the
subjectAltName (RFC 8550 3: readers match the sender by them),
emailProtection next to clientAuth, keyAgreement for an EC key (mail
to it is encrypted by ECDH, RFC 5753), keyEncipherment for RSA, nothing
for Ed25519 but signing.  Checked with `openssl cms` and GnuTLS
`certtool`, as a mail reader would check them."""
import os

import pytest

from conftest import make_csr, openssl, run

KEYS = {
    "ec": (("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"),
           "Digital Signature, Key Agreement"),
    "rsa": (("-newkey", "rsa:2048"),
            "Digital Signature, Key Encipherment"),
    "ed25519": (("-newkey", "ed25519"), "Digital Signature"),
}


def issue(reg, tmp, userid, kind, *add):
    reg.ctl("user", "add", userid, "--name", "Carol Example", *add)
    key, csr = make_csr(tmp, f"{kind}-{userid}", keyargs=KEYS[kind][0])
    cert = os.path.join(tmp, f"{kind}-{userid}.pem")
    reg.ctl("cert", "issue", userid, "--csr", csr, "--out", cert)
    return key, cert


def ext(cert, name):
    out = openssl("x509", "-in", cert, "-noout", "-ext", name).stdout
    return " ".join(out.split("\n", 1)[1].split())


@pytest.mark.parametrize("kind", sorted(KEYS))
def test_user_certificate_profile(reg, tmpdir_shared, kind):
    key, cert = issue(reg, tmpdir_shared, f"carol-{kind}@example.org", kind,
                      "--email", f"Carol.{kind}@Mail.example")
    san = ext(cert, "subjectAltName")
    assert san == (f"email:carol-{kind}@example.org, "
                   f"email:Carol.{kind}@Mail.example"), san
    assert ext(cert, "extendedKeyUsage") == \
        "TLS Web Client Authentication, E-mail Protection"
    assert ext(cert, "keyUsage") == KEYS[kind][1], ext(cert, "keyUsage")
    openssl("verify", "-CAfile", reg.ca, "-purpose", "smimesign", cert)
    openssl("verify", "-CAfile", reg.ca, "-purpose", "sslclient", cert)
    p = run(["certtool", "--verify", "--load-ca-certificate", reg.ca,
             "--verify-email", f"carol-{kind}@example.org",
             "--verify-purpose", "1.3.6.1.5.5.7.3.4", "--infile", cert])
    assert "Chain verification output: Verified" in p.stdout, p.stdout
    # Never a TLS server, whatever else it may do.
    p = openssl("verify", "-CAfile", reg.ca, "-purpose", "sslserver", cert,
                check=False)
    assert p.returncode != 0, p.stdout


def test_an_email_equal_to_the_user_id_is_named_once(reg, tmpdir_shared):
    key, cert = issue(reg, tmpdir_shared, "dan@example.org", "ec",
                      "--email", "Dan@Example.org")
    assert ext(cert, "subjectAltName") == "email:dan@example.org"
    key, cert = issue(reg, tmpdir_shared, "erin@example.org", "ec")
    assert ext(cert, "subjectAltName") == "email:erin@example.org"


def test_openssl_cms_signs_and_encrypts_with_them(reg, tmpdir_shared):
    """What S/MIME needs of a certificate, done by openssl cms: a signed
    message verifies for the smimesign purpose, and a message encrypted
    to an EC certificate (ECDH) or an RSA one opens with its key."""
    t = tmpdir_shared
    msg = os.path.join(t, "msg.txt")
    with open(msg, "w") as f:
        f.write("Subject: hello\r\n\r\nhello across the registry\r\n")
    akey, acert = issue(reg, t, "alice-cms@example.org", "ec")
    signed = os.path.join(t, "signed.p7m")
    openssl("cms", "-sign", "-in", msg, "-signer", acert, "-inkey", akey,
            "-out", signed)
    p = openssl("cms", "-verify", "-in", signed, "-CAfile", reg.ca,
                "-purpose", "smimesign")
    assert "hello across the registry" in p.stdout, p.stdout
    for kind in ("ec", "rsa"):
        bkey, bcert = issue(reg, t, f"bob-cms-{kind}@example.org", kind)
        enc = os.path.join(t, f"enc-{kind}.p7m")
        openssl("cms", "-encrypt", "-aes-256-gcm", "-in", msg, "-out", enc,
                "-recip", bcert)
        p = openssl("cms", "-decrypt", "-in", enc, "-recip", bcert,
                    "-inkey", bkey)
        assert "hello across the registry" in p.stdout, (kind, p.stdout)
