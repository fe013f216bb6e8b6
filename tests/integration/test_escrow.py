"""Key escrow (schema 010, reg.c's reg_escrow_*): off unless an
administrator sets the escrow officer's certificate (`dirctl escrow on`);
then a device deposits its key encrypted to it (dchat at init and
renewal; curl and openssl here too), the registry deposits the keys it
makes (PKCS#12) itself, and the officer recovers a key offline from
`dirctl escrow export` with `openssl cms -decrypt`.  The registry keeps
ciphertext it can not open."""
import os
import re
import stat

from conftest import DOMAIN, curl, dchat_path, openssl, run


def officer(d, name="officer"):
    """An escrow officer's key and self-signed certificate."""
    key, pem = os.path.join(d, name + ".key"), os.path.join(d, name + ".pem")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
            "-out", pem, "-subj", f"/CN=Escrow {name}", "-days", "30")
    return pem, key


def pubkey_of_cert(pem):
    return openssl("x509", "-in", pem, "-noout", "-pubkey").stdout


def recovered_pubkey(cms, pem, key):
    """What the officer recovers from an exported deposit: the public
    half of the key inside."""
    plain = openssl("cms", "-decrypt", "-in", cms, "-recip", pem, "-inkey",
                    key).stdout
    return openssl("pkey", "-pubout", input=plain).stdout


def dchat_init(reg, userid, d):
    """`dchat init` of a new user's device, in d/NAME; its output."""
    reg.add(userid)
    return run([dchat_path(), "--home", os.path.join(d, userid.split("@")[0]),
                "init", "--server", reg.d.url, "--user", userid, "--code",
                reg.code(userid), "--ca-fingerprint", reg.fingerprint])


def serial_of(pem):
    s = openssl("x509", "-in", pem, "-noout", "-serial").stdout
    return s.strip().split("=")[1].lower().lstrip("0")


def audited(reg):
    return reg.sql("SELECT action FROM audit_log WHERE action LIKE "
                   "'%escrow%' ORDER BY id").split()


def test_off_unless_an_administrator_turns_it_on(reg, tmpdir_shared):
    r = curl(reg.d, "GET", "/v1/escrow")
    assert r.status == 404 and r.code == "escrow_off", r
    assert reg.ctl("escrow", "status").stdout.strip() == "key escrow off"
    ann = reg.user(f"ann@{DOMAIN}")
    r = ann.req("GET", "/v1/me/escrow")
    assert r.status == 200 and r.json() == {"escrowed": False}, r
    # A deposit while escrow is off is refused, and nothing is kept.
    pem, _ = officer(tmpdir_shared)
    dep = os.path.join(tmpdir_shared, "dep.smime")
    openssl("cms", "-encrypt", "-aes256", "-in", ann.key, "-out", dep, pem)
    r = ann.req("PUT", "/v1/me/escrow?officer=" + "a" * 64, body=open(
        dep, "rb").read(), ctype="application/pkcs7-mime")
    assert r.status == 409 and r.code == "escrow_off", r
    assert reg.sql("SELECT count(*) FROM key_escrow").strip() == "0"
    # A new device deposits nothing, and says nothing of it.
    init = dchat_init(reg, f"bea@{DOMAIN}", tmpdir_shared)
    assert "escrow" not in init.stdout + init.stderr
    assert reg.sql("SELECT count(*) FROM key_escrow").strip() == "0"
    # Turning it off when it is off: a clear refusal.
    q = reg.ctl("escrow", "off", check=False)
    assert q.returncode == 1 and "off already" in q.stderr


def test_a_device_key_is_recovered_by_the_officer(reg, tmpdir_shared):
    pem, key = officer(tmpdir_shared)
    out = reg.ctl("escrow", "on", "--cert", pem).stdout
    fp = re.search(r"officer ([0-9a-f]{64})", out).group(1)
    r = curl(reg.d, "GET", "/v1/escrow")
    assert r.status == 200 and r.json()["fingerprint"] == fp, r
    with open(pem) as f:
        assert r.json()["certificate"].strip() == f.read().strip()
    # dchat init deposits the device's key and says so.
    init = dchat_init(reg, f"kim@{DOMAIN}", tmpdir_shared)
    assert "the key is escrowed" in init.stdout, init.stdout + init.stderr
    # It says to whom: a registry chooses the officer.
    assert fp in init.stdout
    home = os.path.join(tmpdir_shared, "kim")
    cert = os.path.join(home, "cert.pem")
    serial = serial_of(cert)
    exported = os.path.join(tmpdir_shared, "kim.cms")
    reg.ctl("escrow", "export", serial, "--out", exported)
    assert stat.S_IMODE(os.stat(exported).st_mode) == 0o600
    assert recovered_pubkey(exported, pem, key) == pubkey_of_cert(cert)
    # Nobody else opens it: not another key, not the registry.
    other_pem, other_key = officer(tmpdir_shared, "intruder")
    q = openssl("cms", "-decrypt", "-in", exported, "-recip", other_pem,
                "-inkey", other_key, check=False)
    assert q.returncode != 0
    assert reg.sql("SELECT count(*) FROM key_escrow WHERE position("
                   "'PRIVATE KEY' in convert_from(cms, 'UTF8')) > 0"
                   ).strip() == "0"
    assert reg.sql("SELECT count(*) FROM key_escrow").strip() == "1"
    # The user sees it.
    r = curl(reg.d, "GET", "/v1/me/escrow", cert=cert,
             key=os.path.join(home, "key.pem"))
    assert r.json() == {"escrowed": True, "fingerprint": fp}, r
    # A renewal deposits the new key too.
    renewed = run([dchat_path(), "--home", home, "renew"])
    assert "the key is escrowed" in renewed.stdout
    new_serial = serial_of(cert)
    assert new_serial != serial
    reg.ctl("escrow", "export", new_serial, "--out", exported)
    assert recovered_pubkey(exported, pem, key) == pubkey_of_cert(cert)
    assert audited(reg) == ["escrow.on", "key.escrow", "escrow.export",
                            "key.escrow", "escrow.export"]
    reg.ctl("audit", "verify")


def test_deposits_with_curl_and_what_is_refused(reg, tmpdir_shared):
    ann = reg.user(f"ann@{DOMAIN}")
    pem, key = officer(tmpdir_shared)
    fp = re.search(r"officer ([0-9a-f]{64})", reg.ctl(
        "escrow", "on", "--cert", pem).stdout).group(1)
    dep = os.path.join(tmpdir_shared, "dep.smime")
    openssl("cms", "-encrypt", "-aes256", "-in", ann.key, "-out", dep, pem)
    with open(dep, "rb") as f:
        body = f.read()
    with open(ann.key, "rb") as f:
        clear = f.read()
    before = reg.digest()
    for path, data, ctype, status, code in (
            ("/v1/me/escrow", body, "application/pkcs7-mime", 400,
             "invalid_value"),
            ("/v1/me/escrow?officer=" + "b" * 64, body,
             "application/pkcs7-mime", 409, "escrow_changed"),
            (f"/v1/me/escrow?officer={fp}", clear, "application/pkcs7-mime",
             400, "not_encrypted"),
            (f"/v1/me/escrow?officer={fp}", body, "application/json", 415,
             "unsupported_media_type")):
        r = ann.req("PUT", path, body=data, ctype=ctype)
        assert r.status == status and r.code == code, (path, r)
    r = curl(reg.d, "PUT", f"/v1/me/escrow?officer={fp}", body=body,
             ctype="application/pkcs7-mime")
    assert r.status == 401, r
    assert reg.digest() == before
    r = ann.req("PUT", f"/v1/me/escrow?officer={fp}", body=body,
                ctype="application/pkcs7-mime")
    assert r.status == 201 and r.json()["escrowed"] is True, r
    exported = os.path.join(tmpdir_shared, "ann.cms")
    reg.ctl("escrow", "export", ann.serial, "--out", exported)
    assert recovered_pubkey(exported, pem, key) == pubkey_of_cert(ann.cert)
    # Only an administrator exports; an unknown serial is a clear error.
    p = reg.ctl("escrow", "export", "abc123", "--out", exported,
                check=False)
    assert p.returncode == 1 and "no key escrowed" in p.stderr, p.stderr
    # A certificate nothing can be encrypted to is refused as officer.
    p = reg.ctl("escrow", "on", "--cert", ann.key, check=False)
    assert p.returncode == 2, p.stderr


def test_keys_made_here_are_escrowed_by_the_registry(reg, tmpdir_shared):
    pem, key = officer(tmpdir_shared)
    reg.ctl("escrow", "on", "--cert", pem)
    reg.add(f"cal@{DOMAIN}")
    pf = os.path.join(tmpdir_shared, "pass")
    with open(pf, "w") as f:
        f.write("correct horse battery staple\n")
    p12 = os.path.join(tmpdir_shared, "cal.p12")
    reg.ctl("issue-p12", f"cal@{DOMAIN}", "--out", p12, "--passphrase-file",
            pf)
    cert = os.path.join(tmpdir_shared, "cal.pem")
    with open(cert, "w") as f:
        f.write(openssl("pkcs12", "-in", p12, "-clcerts", "-nokeys",
                        "-passin", f"file:{pf}").stdout)
    exported = os.path.join(tmpdir_shared, "cal.cms")
    reg.ctl("escrow", "export", serial_of(cert), "--out", exported)
    assert recovered_pubkey(exported, pem, key) == pubkey_of_cert(cert)
    # Off again: no more deposits; what was deposited stays exportable.
    reg.ctl("escrow", "off")
    assert curl(reg.d, "GET", "/v1/escrow").status == 404
    reg.ctl("issue-p12", f"cal@{DOMAIN}", "--out", p12, "--passphrase-file",
            pf)
    assert reg.sql("SELECT count(*) FROM key_escrow").strip() == "1"
    reg.ctl("escrow", "export", serial_of(cert), "--out", exported)
    assert audited(reg) == ["escrow.on", "key.escrow", "escrow.export",
                            "escrow.off", "escrow.export"]
    reg.ctl("audit", "verify")
