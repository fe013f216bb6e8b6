"""dirctl and the CA, end to end on a real PostgreSQL (issue: foundation).

Each test gets a fresh data directory whose database lives on the
session's throwaway PostgreSQL (--dsn); one test runs the embedded
cluster that dirctl starts by itself.
"""
import os
import re
import shutil
import stat
import subprocess

import pytest

from conftest import (MIGRATIONS, ROOT, Lines, dirctl_path, make_csr, openssl,
                      run)

# dirctl alone: no dird runs on the registries here.
REG_START = False


def test_init_layout_and_modes(reg):
    assert "CA fingerprint (SHA-256): " in reg.init_out, reg.init_out
    for name in ("ca.key", "server.key"):
        mode = stat.S_IMODE(os.stat(os.path.join(reg.data, name)).st_mode)
        assert mode == 0o600, f"{name} has mode {oct(mode)}"
    text = openssl("x509", "-in", reg.ca, "-noout", "-text").stdout
    assert re.search(r"CA:TRUE", text)
    assert "Certificate Sign, CRL Sign" in text
    assert "Subject Key Identifier" in text
    srv = openssl("x509", "-in", os.path.join(reg.data, "server.pem"),
                  "-noout", "-text").stdout
    assert "TLS Web Server Authentication" in srv
    assert "DNS:localhost" in srv and "IP Address:127.0.0.1" in srv
    openssl("verify", "-CAfile", reg.ca, os.path.join(reg.data, "server.pem"))
    with open(os.path.join(reg.data, "dird.conf")) as f:
        conf = f.read()
    assert "domain = example.org" in conf


def test_init_refuses_to_overwrite_ca(reg):
    with open(os.path.join(reg.data, "ca.key"), "rb") as f:
        before = f.read()
    p = reg.ctl("init", "--domain", "example.org", check=False)
    assert p.returncode != 0
    assert "refusing to overwrite" in p.stderr
    with open(os.path.join(reg.data, "ca.key"), "rb") as f:
        assert f.read() == before


def test_issue_csr_verifies_with_openssl_and_certtool(reg, tmpdir_shared):
    reg.ctl("user", "add", "Alice@Example.org", "--name", "Alice Liddell",
            "--email", "alice@example.org")
    # The CSR asks for another identity and for CA powers: the CA ignores it.
    key, csr = make_csr(tmpdir_shared, "alice",
                        subj="/UID=mallory@evil.example/CN=Mallory/O=Evil")
    openssl("req", "-new", "-key", key, "-out", csr, "-subj",
            "/UID=mallory@evil.example/CN=Mallory", "-addext",
            "basicConstraints=critical,CA:TRUE", "-addext",
            "subjectAltName=DNS:evil.example", "-addext",
            "keyUsage=critical,keyCertSign,cRLSign", "-addext",
            "extendedKeyUsage=codeSigning,emailProtection")
    assert "Code Signing" in openssl("req", "-in", csr, "-noout",
                                     "-text").stdout
    cert = os.path.join(tmpdir_shared, "alice.pem")
    reg.ctl("cert", "issue", "alice@example.org", "--csr", csr, "--out", cert)
    openssl("verify", "-CAfile", reg.ca, "-purpose", "sslclient", cert)
    # Never a TLS server: no user may pass for the registry (issue 15).
    p = openssl("verify", "-CAfile", reg.ca, "-purpose", "sslserver", cert,
                check=False)
    assert p.returncode != 0 and "unsuitable certificate purpose" in \
        p.stderr, p.stderr
    p = run(["certtool", "--verify", "--load-ca-certificate", reg.ca,
             "--infile", cert])
    assert "Chain verification output: Verified" in p.stdout
    text = openssl("x509", "-in", cert, "-noout", "-text",
                   "-nameopt", "RFC2253").stdout
    assert "UID=alice@example.org" in text
    assert "CN=Alice Liddell" in text
    assert "mallory" not in text.lower() and "evil" not in text.lower()
    subject = openssl("x509", "-in", cert, "-noout", "-subject", "-nameopt",
                      "RFC2253").stdout.strip()
    rdns = set(subject.split("=", 1)[1].split(","))
    assert rdns <= {"UID=alice@example.org", "CN=Alice Liddell",
                    "emailAddress=alice@example.org"}, subject
    assert {"UID=alice@example.org", "CN=Alice Liddell"} <= rdns, subject
    assert "Certificate Sign" not in text and "CRL Sign" not in text
    assert "Code Signing" not in text
    assert "CA:FALSE" in text
    assert "email:alice@example.org" in text
    eku = text.split("X509v3 Extended Key Usage:")[1].split("\n")[1]
    assert eku.strip() == ("TLS Web Client Authentication, "
                           "E-mail Protection"), eku
    assert "Digital Signature" in text
    assert "X509v3 Authority Key Identifier" in text
    assert "URI:http://localhost:4606/v1/crl" in text
    assert "OCSP - URI:http://localhost:4606/ocsp" in text
    serial = openssl("x509", "-in", cert, "-noout", "-serial").stdout
    serial = serial.strip().split("=")[1].lower().lstrip("0")
    assert 0 < int(serial, 16) < 2**128
    # The key of the certificate is the CSR's key.
    k = openssl("pkey", "-in", key, "-pubout").stdout
    c = openssl("x509", "-in", cert, "-noout", "-pubkey").stdout
    assert k == c
    listed = reg.ctl("cert", "list", "alice@example.org").stdout
    assert serial in listed and "valid" in listed
    assert reg.sql("SELECT count(*) FROM audit_log WHERE "
               f"action = 'cert.issue' AND serial = '{serial}'") == "1"


CSR_CASES = [
    # name, how to make it, expected words in the error
    ("rsa1024", ("-newkey", "rsa:1024"), "RSA key of 1024 bits is too small"),
    ("dsa", None, "DSA keys are not accepted"),
    ("garbage", b"this is not a CSR at all\n", "CSR is not valid PEM"),
    ("empty", b"", "empty CSR"),
    ("wrongpem", "cert",
     "expected a PEM CERTIFICATE REQUEST, got CERTIFICATE"),
    ("tampered", "tamper", "signature of the CSR does not verify"),
]


@pytest.mark.parametrize("name,how,words", CSR_CASES,
                         ids=[c[0] for c in CSR_CASES])
def test_refused_csrs(reg, tmpdir_shared, name, how, words):
    reg.ctl("user", "add", "bob@example.org", "--name", "Bob")
    csr = os.path.join(tmpdir_shared, name + ".csr")
    if isinstance(how, tuple):
        make_csr(tmpdir_shared, name, keyargs=how)
    elif how is None:  # DSA
        params = os.path.join(tmpdir_shared, "dsa.param")
        key = os.path.join(tmpdir_shared, "dsa.key")
        openssl("genpkey", "-genparam", "-algorithm", "DSA", "-pkeyopt",
                "dsa_paramgen_bits:2048", "-out", params)
        openssl("genpkey", "-paramfile", params, "-out", key)
        openssl("req", "-new", "-key", key, "-out", csr, "-subj", "/CN=x")
    elif how == "cert":
        with open(reg.ca) as src, open(csr, "w") as dst:
            dst.write(src.read())
    elif how == "tamper":
        _, good = make_csr(tmpdir_shared, "good")
        raw = subprocess.run(["openssl", "req", "-in", good, "-outform",
                              "DER"], capture_output=True, check=True).stdout
        raw = bytearray(raw)
        raw[-5] ^= 0x55  # inside the signature value
        derpath = csr + ".der"
        with open(derpath, "wb") as f:
            f.write(raw)
        openssl("req", "-inform", "DER", "-in", derpath, "-out", csr)
    else:
        with open(csr, "wb") as f:
            f.write(how)
    before = reg.digest()
    out = os.path.join(tmpdir_shared, name + ".pem")
    p = reg.ctl("cert", "issue", "bob@example.org", "--csr", csr, "--out",
                out, check=False)
    assert p.returncode != 0
    assert words.lower() in p.stderr.lower(), p.stderr
    assert not os.path.exists(out)
    assert reg.digest() == before


def test_issue_p12_opens_with_openssl(reg, tmpdir_shared):
    reg.ctl("user", "add", "carol@example.org", "--name", "Carol")
    pf = os.path.join(tmpdir_shared, "pass")
    with open(pf, "w") as f:
        f.write("correct horse battery staple\n")
    out = os.path.join(tmpdir_shared, "carol.p12")
    reg.ctl("issue-p12", "carol@example.org", "--out", out,
            "--passphrase-file", pf)
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    info = openssl("pkcs12", "-info", "-in", out, "-noout", "-passin",
                   "pass:correct horse battery staple").stderr
    assert "AES-256-CBC" in info
    key = openssl("pkcs12", "-in", out, "-nocerts", "-nodes", "-passin",
                  "pass:correct horse battery staple").stdout
    cert = openssl("pkcs12", "-in", out, "-clcerts", "-nokeys", "-passin",
                   "pass:correct horse battery staple").stdout
    kpub = openssl("pkey", "-pubout", input=key).stdout
    cpub = openssl("x509", "-noout", "-pubkey", input=cert).stdout
    assert kpub == cpub
    p = openssl("pkcs12", "-in", out, "-noout", "-passin", "pass:wrong",
                check=False)
    assert p.returncode != 0
    certfile = os.path.join(tmpdir_shared, "carol.pem")
    with open(certfile, "w") as f:
        f.write(cert)
    openssl("verify", "-CAfile", reg.ca, certfile)


def test_revoked_serial_in_verified_crl(reg, tmpdir_shared):
    reg.ctl("user", "add", "dave@example.org", "--name", "Dave")
    _, csr = make_csr(tmpdir_shared, "dave")
    cert = os.path.join(tmpdir_shared, "dave.pem")
    reg.ctl("cert", "issue", "dave@example.org", "--csr", csr, "--out", cert)
    serial = openssl("x509", "-in", cert, "-noout", "-serial").stdout
    serial = serial.strip().split("=")[1]
    reg.ctl("cert", "revoke", serial, "--reason", "keyCompromise")
    crl = os.path.join(tmpdir_shared, "crl.der")
    reg.ctl("crl", "--out", crl)
    p = openssl("crl", "-inform", "DER", "-in", crl, "-CAfile", reg.ca,
                "-noout", "-verify")
    assert "verify OK" in p.stdout + p.stderr
    text = openssl("crl", "-inform", "DER", "-in", crl, "-noout",
                   "-text").stdout
    assert serial.upper().lstrip("0") in text.replace(":", "").upper()
    assert "Key Compromise" in text
    assert "X509v3 CRL Number" in text
    # openssl verify with the CRL now refuses the certificate.
    pem = os.path.join(tmpdir_shared, "crl.pem")
    openssl("crl", "-inform", "DER", "-in", crl, "-out", pem)
    p = openssl("verify", "-crl_check", "-CAfile", reg.ca, "-CRLfile", pem,
                cert, check=False)
    assert p.returncode != 0 and "revoked" in (p.stdout + p.stderr)
    listed = reg.ctl("cert", "list").stdout
    assert "revoked" in listed
    # Revoking twice, or an unknown serial: refused, nothing changes.
    before = reg.digest()
    p = reg.ctl("cert", "revoke", serial, check=False)
    assert p.returncode != 0 and "already revoked" in p.stderr
    p = reg.ctl("cert", "revoke", "abcdef0123", check=False)
    assert p.returncode != 0 and "no certificate" in p.stderr
    assert reg.digest() == before


BAD_INPUT = [
    (["user", "add", "not-an-id", "--name", "X"], "not a valid user id"),
    (["user", "add", "a@b@c.org", "--name", "X"], "not a valid user id"),
    (["user", "add", "x@example.org"], "usage"),
    (["user", "add", "x@example.org", "--name", "X", "--email",
      "not an email@example.org"], "not an e-mail address"),
    (["user", "add", "x@example.org", "--name", "X", "--email",
      "a@b@example.org"], "not an e-mail address"),
    (["user", "add", "x@example.org", "--name", "X", "--email", "@x.org"],
     "not an e-mail address"),
    (["user", "add", "dup@example.org", "--name", "Again"], "already exists"),
    (["user", "add", "DUP@example.org", "--name", "Again"], "already exists"),
    (["user", "disable", "nobody@example.org"], "no user"),
    (["code", "nobody@example.org"], "no user"),
    (["code", "dup@example.org", "--ttl", "forever"], "--ttl"),
    (["cert", "issue", "nobody@example.org", "--csr", "CSR", "--out", "OUT"],
     "no user"),
    (["cert", "revoke", "xyz"], "not a certificate serial"),
    (["cert", "revoke", "01", "--reason", "boredom"], "unknown reason"),
    (["issue-p12", "nobody@example.org", "--out", "OUT",
      "--passphrase-file", "PASS"], "no user"),
    (["frobnicate"], "unknown command"),
    # PASS holds a two-character password: too short to be one.
    (["user", "add", "short@example.org", "--name", "S", "--password-file",
      "PASS"], "at least 8 characters"),
    (["user", "passwd", "dup@example.org", "--password-file", "PASS"],
     "at least 8 characters"),
]


def test_bad_input_changes_nothing(reg, tmpdir_shared):
    reg.ctl("user", "add", "dup@example.org", "--name", "Dup")
    _, csr = make_csr(tmpdir_shared, "x")
    pf = os.path.join(tmpdir_shared, "pass")
    with open(pf, "w") as f:
        f.write("pw\n")
    out = os.path.join(tmpdir_shared, "out.pem")
    before = reg.digest()
    for argv, words in BAD_INPUT:
        argv = [{"CSR": csr, "OUT": out, "PASS": pf}.get(a, a) for a in argv]
        p = reg.ctl(*argv, check=False)
        assert p.returncode != 0, argv
        assert words.lower() in p.stderr.lower(), (argv, p.stderr)
        assert not os.path.exists(out), argv
    assert reg.digest() == before


def test_users_codes_and_audit(reg):
    reg.ctl("user", "add", "erin@example.org", "--name", "Erin", "--admin")
    reg.ctl("user", "add", "frank@example.org", "--name", "Frank")
    p = reg.ctl("code", "frank@example.org", "--ttl", "15m")
    code = p.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"[A-Z2-9]{24}", code)
    # Only a hash is stored, and never the code itself.
    assert reg.sql("SELECT count(*) FROM enrol_codes WHERE "
               "expires_at BETWEEN now() + interval '14 minutes' AND "
               "now() + interval '16 minutes'") == "1"
    dump = reg.sql("SELECT string_agg(e::text, ' ') FROM enrol_codes e") + \
        reg.sql("SELECT string_agg(a::text, ' ') FROM audit_log a")
    assert code not in dump and code.lower() not in dump
    reg.ctl("user", "disable", "frank@example.org")
    listing = reg.ctl("user", "list").stdout
    assert re.search(r"erin@example.org\s+admin\s+enabled", listing)
    assert re.search(r"frank@example.org\s+user\s+disabled", listing)
    p = reg.ctl("audit", "verify")
    assert "intact" in p.stdout
    n = int(reg.sql("SELECT count(*) FROM audit_log"))
    assert n >= 4
    # Altering a row is detected; so is removing one.
    reg.sql("UPDATE audit_log SET actor = 'someone else' WHERE id = "
        "(SELECT min(id) + 1 FROM audit_log)")
    p = reg.ctl("audit", "verify", check=False)
    assert p.returncode != 0 and "altered" in p.stdout
    reg.sql("DELETE FROM audit_log WHERE id = "
        "(SELECT min(id) + 1 FROM audit_log)")
    p = reg.ctl("audit", "verify", check=False)
    assert p.returncode != 0 and "chain broken" in p.stdout


def test_enable_passwd_ttl_and_audit_rows(reg, tmpdir_shared):
    """The user-management commands an administrator runs day to day,
    and the audit row each leaves: who (dirctl:OS user), what, on whom,
    which certificate."""
    pw = os.path.join(tmpdir_shared, "pw")
    with open(pw, "w") as f:
        f.write("first password\n")
    reg.ctl("user", "add", "gus@example.org", "--name", "Gus",
            "--password-file", pw)
    first = reg.sql("SELECT password_hash FROM users WHERE "
                "userid = 'gus@example.org'")
    assert first.startswith("$argon2id$") and "first" not in first
    with open(pw, "w") as f:
        f.write("second password\n")
    p = reg.ctl("user", "passwd", "Gus@Example.org", "--password-file", pw)
    assert "password set for gus@example.org" in p.stdout
    second = reg.sql("SELECT password_hash FROM users WHERE "
                 "userid = 'gus@example.org'")
    assert second.startswith("$argon2id$") and second != first
    reg.ctl("user", "disable", "gus@example.org")
    assert re.search(r"gus@example.org\s+user\s+disabled",
                     reg.ctl("user", "list").stdout)
    p = reg.ctl("user", "enable", "gus@example.org")
    assert "enabled gus@example.org" in p.stdout
    assert re.search(r"gus@example.org\s+user\s+enabled",
                     reg.ctl("user", "list").stdout)
    # Codes: --ttl within 60s..30d, and the expiry is the one asked for.
    reg.ctl("code", "gus@example.org", "--ttl", "60s")
    assert reg.sql("SELECT count(*) FROM enrol_codes WHERE expires_at "
               "BETWEEN now() + interval '50 seconds' AND now() + "
               "interval '61 seconds'") == "1"
    reg.ctl("code", "gus@example.org", "--ttl", "30d")
    assert reg.sql("SELECT count(*) FROM enrol_codes WHERE expires_at "
               "BETWEEN now() + interval '29 days 23 hours' AND now() + "
               "interval '30 days'") == "1"
    _, csr = make_csr(tmpdir_shared, "gus")
    cert = os.path.join(tmpdir_shared, "gus.pem")
    reg.ctl("cert", "issue", "gus@example.org", "--csr", csr, "--out", cert)
    serial = openssl("x509", "-in", cert, "-noout", "-serial").stdout
    serial = serial.strip().split("=")[1].lower().lstrip("0")
    reg.ctl("cert", "revoke", serial, "--reason", "superseded")
    rows = reg.sql("SELECT string_agg(concat_ws(' ', action, actor, "
               "coalesce(target, '-'), coalesce(serial, '-')), '|' "
               "ORDER BY id) FROM audit_log").split("|")
    who = r"dirctl:\S+"
    for want in (rf"user\.add {who} gus@example\.org -",
                 rf"user\.passwd {who} gus@example\.org -",
                 rf"user\.disable {who} gus@example\.org -",
                 rf"user\.enable {who} gus@example\.org -",
                 rf"code\.create {who} gus@example\.org -",
                 rf"cert\.issue {who} gus@example\.org {serial}",
                 rf"cert\.revoke {who} \S+ {serial}"):
        assert any(re.fullmatch(want, r) for r in rows), (want, rows)
    assert "intact" in reg.ctl("audit", "verify").stdout
    # Refused: nothing changes.
    before = reg.digest()
    for argv, words in (
            (["user", "passwd", "nobody@example.org", "--password-file", pw],
             "no user"),
            (["user", "passwd", "gus@example.org"], "usage"),
            (["user", "enable", "nobody@example.org"], "no user"),
            (["code", "gus@example.org", "--ttl", "59s"],
             "from 60 seconds to 30 days"),
            (["code", "gus@example.org", "--ttl", "31d"],
             "from 60 seconds to 30 days"),
            (["code", "gus@example.org", "--ttl", "0"], "--ttl")):
        p = reg.ctl(*argv, check=False)
        assert p.returncode != 0, argv
        assert words in p.stderr, (argv, p.stderr)
    assert reg.digest() == before


def applied(psql):
    """The migrations a database records, as "VERSION NAME" in order."""
    return psql("SELECT string_agg(version || ' ' || name, ',' ORDER BY "
                "version) FROM schema_version").split(",")


def test_migrations_fresh_and_again(reg):
    want = str(len(MIGRATIONS))
    listed = [f"{i + 1} {name}" for i, name in enumerate(MIGRATIONS)]
    assert applied(reg.sql) == listed
    before = reg.sql("SELECT string_agg(applied_at::text, ',' ORDER BY "
                 "version) FROM schema_version")
    p = reg.ctl("migrate")
    assert f"schema version {want}" in p.stdout
    assert reg.sql("SELECT count(*) FROM schema_version") == want
    assert reg.sql("SELECT string_agg(applied_at::text, ',' ORDER BY "
               "version) FROM schema_version") == before
    # dirctl migrate on a brand-new, empty database creates the schema.
    fresh = reg.pg.new_database()
    assert reg.pg.psql("SELECT count(*) FROM pg_tables WHERE "
                       "schemaname = 'public'", fresh) == "0"
    for _ in range(2):
        p = reg.ctl("--dsn", reg.pg.dsn(fresh), "migrate")
        assert f"schema version {want}" in p.stdout
        assert applied(lambda q: reg.pg.psql(q, fresh)) == listed
    tables = reg.pg.psql("SELECT string_agg(tablename, ',' ORDER BY "
                         "tablename) FROM pg_tables WHERE schemaname = "
                         "'public'", fresh).split(",")
    for t in ("users", "certificates", "enrol_codes", "addresses",
              "backups", "audit_log", "crl_state"):
        assert t in tables, tables
    # Constraints are in the database, not only in C.
    for bad in ("INSERT INTO users (userid, name) VALUES ('UPPER@x.org', 'x')",
                "INSERT INTO users (userid, name) VALUES ('a@b.org', '')",
                "INSERT INTO users (userid, name, role) "
                "VALUES ('a@b.org', 'x', 'root')"):
        with pytest.raises(subprocess.CalledProcessError):
            reg.sql(bad)


def test_embedded_cluster(tmpdir_shared):
    """No --dsn: dirctl creates and runs a private cluster, socket only."""
    data = os.path.join(tmpdir_shared, "data")
    ctl = [dirctl_path(), "--data", data]
    p = run(ctl + ["init", "--domain", "example.net"])
    assert "database: embedded" in p.stdout
    assert os.path.exists(os.path.join(data, "pg", "PG_VERSION"))
    run(ctl + ["user", "add", "zoe@example.net", "--name", "Zoe"])
    assert "zoe@example.net" in run(ctl + ["user", "list"]).stdout
    # dirctl stopped the cluster it started: nothing is left running.
    assert not os.path.exists(os.path.join(data, "pg", "postmaster.pid"))
    # Socket only: the server was started with no TCP listener.
    with open(os.path.join(data, "pg", "server.log")) as f:
        log = f.read()
    assert "listening on IPv4" not in log and "listening on IPv6" not in log
    assert "listening on Unix socket" in log


def test_audit_appends_do_not_wait_for_each_other(reg):
    """An audit append whose transaction has not committed yet does not
    hold up another: that one goes to the next chain at once (one lock
    per chain, schema/003).  A transaction that appends twice stays on
    its chain; `audit verify` follows every chain and notices a row
    moved from one to another."""
    reg.ctl("user", "add", "hana@example.org", "--name", "Hana")
    append = ("SELECT audit_append('test', 'test.{}', NULL, NULL, NULL, "
              "NULL);\n")
    psql = ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d",
            reg.pg.dsn(reg.db)]
    held = subprocess.Popen(psql, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        out = Lines(held.stdout)
        held.stdin.write("BEGIN;\n" + append.format("held") * 2)
        held.stdin.flush()
        for _ in range(2):  # both appends are done
            assert out.until(lambda ln: True).strip().isdigit(), out.seen
        # With the lock of chain 0 taken, this one would wait for the
        # COMMIT below if there were one chain: a timeout says so.
        other = subprocess.run(psql + ["-c", append.format("other")],
                               capture_output=True, text=True, timeout=20)
        assert other.returncode == 0, other.stderr
        held.stdin.write("COMMIT;\n")
        held.stdin.close()
        assert held.wait(20) == 0, held.stderr.read()
    finally:
        if held.poll() is None:
            held.kill()
    rows = reg.sql("SELECT string_agg(action || ':' || chain, ',' "
               "ORDER BY id) FROM audit_log WHERE actor = 'test'")
    assert rows == "test.held:0,test.held:0,test.other:1", rows
    assert reg.sql("SELECT count(*) FROM audit_log WHERE chain = 0 "
               "AND actor <> 'test'") != "0"
    p = reg.ctl("audit", "verify")
    assert "intact" in p.stdout, p.stdout
    # A chain named by hand is locked all the same, and stays linked.
    reg.sql("SET dir.audit_chain = '5'; " + append.format("named"))
    assert reg.sql("SELECT chain FROM audit_log WHERE action = "
               "'test.named'") == "5"
    assert "intact" in reg.ctl("audit", "verify").stdout
    reg.sql("UPDATE audit_log SET chain = 0 WHERE action = 'test.other'")
    p = reg.ctl("audit", "verify", check=False)
    assert p.returncode != 0 and "chain broken" in p.stdout, p.stdout


def test_audit_log_of_schema_2_stays_verifiable(pg, tmpdir_shared):
    """A registry whose audit rows were written before schema 3 (one
    chain) is migrated: its rows become chain 0, new rows link to them,
    and `audit verify` finds the whole log intact."""
    old = os.path.join(tmpdir_shared, "schema2")
    os.mkdir(old)
    for f in MIGRATIONS[:2]:
        shutil.copy(os.path.join(ROOT, "schema", f), old)
    db = pg.new_database()
    data = os.path.join(tmpdir_shared, "data")
    env = {"DIR_SCHEMA_DIR": old}
    run([dirctl_path(), "--data", data, "--dsn", pg.dsn(db), "init",
         "--domain", "example.org"], env=env)
    assert pg.psql("SELECT max(version) FROM schema_version", db) == "2"
    # Rows as schema 2's audit_append wrote them (this dirctl prepares
    # statements of schema 3, so it migrates before it runs anything).
    for i in range(3):
        pg.psql("SELECT audit_append('old', 'test.old', NULL, NULL, NULL, "
                f"'{i}')", db)
    n = int(pg.psql("SELECT count(*) FROM audit_log", db))
    assert n >= 3
    p = run([dirctl_path(), "--data", data, "migrate"])
    assert f"schema version {len(MIGRATIONS)}" in p.stdout
    run([dirctl_path(), "--data", data, "user", "add", "ivo@example.org",
         "--name", "Ivo"])
    assert pg.psql("SELECT string_agg(DISTINCT chain::text, ',') FROM "
                   "audit_log", db) == "0"
    p = run([dirctl_path(), "--data", data, "audit", "verify"])
    assert f"intact: {n + 1} rows" in p.stdout, p.stdout
