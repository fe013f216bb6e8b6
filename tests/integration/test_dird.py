"""dird on TCP, real TLS, real PostgreSQL; clients are curl, openssl and
Python's ssl module (issue: dird)."""
import http.client
import json
import os
import re
import shutil
import ssl
import subprocess
import time


from conftest import (BUILD, ROOT, Dird, PgServer, Registry, User, ca_sign,
                      client_ctx, curl, dirctl, dird_path, free_port,
                      make_csr, openssl, run, spawn, stderr_of, wait_until)

# The dird of every registry here caches (cache=local: it is the only one
# on the database, as with the embedded cluster), so every test also
# checks that no answer outlives a change.
REG_SETTINGS = ("cache=local",)


def settled(request, old_status, timeout=30.0):
    """request() again while it answers old_status, the answer from
    before a dirctl change, which reaches dird's cache by NOTIFY."""
    def changed():
        r = request()
        return r if r.status != old_status else None
    return wait_until(changed, f"an answer other than {old_status}",
                      timeout, interval=0.01)


def test_user_journey_with_curl(reg, tmpdir_shared):
    alice = reg.user("alice@example.org", "Alice Liddell")
    bob = reg.user("bob@example.org", "Bob")
    # The certificate is real: openssl and certtool accept it.
    ca = os.path.join(reg.data, "ca.pem")
    openssl("verify", "-CAfile", ca, "-purpose", "sslclient", alice.cert)
    p = run(["certtool", "--verify", "--load-ca-certificate", ca,
             "--infile", alice.cert])
    assert "Chain verification output: Verified" in p.stdout, p.stdout
    me = alice.req("GET", "/v1/me")
    assert me.status == 200, me
    assert me.json()["userid"] == "alice@example.org"
    assert me.json()["name"] == "Alice Liddell"
    # Register addresses and see them from Bob's side at once.
    r = alice.req("PUT", "/v1/me/addresses", json_body={
        "addresses": [{"ip": "2001:db8::5", "port": 4605},
                      {"ip": "192.0.2.7", "port": 4606}], "ttl": 300})
    assert r.status == 200, r
    kinds = {(a["ip"], a["kind"]) for a in r.json()["addresses"]}
    assert ("2001:db8::5", "declared") in kinds
    assert ("127.0.0.1", "observed") in kinds
    look = bob.req("GET", "/v1/users/Alice@Example.org")
    assert look.status == 200, look
    j = look.json()
    assert j["online"] is True and j["name"] == "Alice Liddell"
    dev = j["devices"][0]
    assert dev["serial"] == alice.serial
    assert {a["ip"] for a in dev["addresses"]} >= {"2001:db8::5", "192.0.2.7"}
    assert "BEGIN CERTIFICATE" in dev["certificate"]
    # Backup: upload, download, byte-identical.
    p12 = os.path.join(tmpdir_shared, "alice.p12")
    openssl("pkcs12", "-export", "-inkey", alice.key, "-in", alice.cert,
            "-out", p12, "-passout", "pass:secret words")
    with open(p12, "rb") as f:
        original = f.read()
    r = alice.req("PUT", "/v1/me/backup", body=original,
                  ctype="application/x-pkcs12")
    assert r.status == 200, r
    r = alice.req("GET", "/v1/me/backup", raw_out=True)
    assert r.status == 200 and r.body == original
    # A new device fetches it with a one-time code instead of a certificate.
    code = reg.code("alice@example.org")
    r = curl(reg.d, "GET", "/v1/me/backup", raw_out=True,
             headers=[f"Authorization: Bearer {code}"])
    assert r.status == 200 and r.body == original
    # Renew: a new certificate; the old one still works until revoked.
    new = User(reg.d, "alice@example.org", tmpdir_shared, device="2")
    r = alice.req("POST", "/v1/renew", json_body={"csr": new.csr_pem()})
    assert r.status == 201, r
    with open(new.cert, "w") as f:
        f.write(r.json()["certificate"])
    new.serial = r.json()["serial"]
    assert new.serial != alice.serial
    p = run(["certtool", "--verify", "--load-ca-certificate", ca,
             "--infile", new.cert])
    assert "Chain verification output: Verified" in p.stdout, p.stdout
    assert new.req("GET", "/v1/me").status == 200
    assert alice.req("GET", "/v1/me").status == 200
    # Revoke the old one: its addresses go, it is refused, the new works.
    r = alice.req("POST", f"/v1/certificates/{alice.serial}/revoke",
                  json_body={"reason": "superseded"})
    assert r.status == 200, r
    r = alice.req("GET", "/v1/me")
    assert r.status == 401 and r.code == "certificate_revoked"
    assert new.req("GET", "/v1/me").status == 200
    assert reg.sql("SELECT count(*) FROM addresses a JOIN certificates c "
                   "ON c.id = a.certificate_id WHERE c.serial = "
                   f"'{alice.serial}'") == "0"
    # The CRL served lists it and verifies against the CA.
    r = curl(reg.d, "GET", "/v1/crl", raw_out=True)
    assert r.status == 200
    crl = os.path.join(tmpdir_shared, "crl.der")
    with open(crl, "wb") as f:
        f.write(r.body)
    p = openssl("crl", "-inform", "DER", "-in", crl, "-noout", "-text",
                "-CAfile", os.path.join(reg.data, "ca.pem"), "-verify")
    assert alice.serial.upper() in p.stdout.replace(":", "").upper()
    # The audit log holds every step and is intact.
    actions = reg.sql("SELECT string_agg(action, ',' ORDER BY id) "
                      "FROM audit_log")
    for a in ("enroll.code", "backup.store", "backup.fetch", "renew",
              "cert.revoke"):
        assert a in actions, actions
    assert "intact" in reg.ctl("audit", "verify").stdout
    # Each action names who did it, to which certificate, from where.
    rows = reg.sql("SELECT string_agg(concat_ws(' ', action, actor, "
                   "coalesce(serial, '-'), coalesce(host(source), '-')), "
                   "'|' ORDER BY id) FROM audit_log WHERE action IN "
                   "('enroll.code', 'renew', 'cert.revoke', 'backup.store', "
                   "'backup.fetch') AND actor = 'alice@example.org'")
    rows = rows.split("|")
    a = "alice@example.org"
    assert f"enroll.code {a} {alice.serial} 127.0.0.1" in rows, rows
    assert f"renew {a} {new.serial} 127.0.0.1" in rows, rows
    assert f"cert.revoke {a} {alice.serial} 127.0.0.1" in rows, rows
    assert any(r.startswith(f"backup.store {a} ") and
               r.endswith(" 127.0.0.1") for r in rows), rows
    assert any(r.startswith(f"backup.fetch {a} ") for r in rows), rows
    # Nothing secret in the log of the server.
    log = reg.d.read_log()
    assert code not in log and "BEGIN" not in log
    # The source address is covered by the chain: changing it shows.
    reg.sql("UPDATE audit_log SET source = '192.0.2.1' WHERE id = "
            "(SELECT min(id) FROM audit_log WHERE action = 'renew')")
    p = reg.ctl("audit", "verify", check=False)
    assert p.returncode != 0 and "altered" in p.stdout, p.stdout


def test_revocation_applies_on_kept_alive_connection(reg):
    carol = reg.user("carol@example.org")
    ctx = client_ctx(reg.data, carol)
    conn = http.client.HTTPSConnection("localhost", reg.d.port, context=ctx)
    conn.request("GET", "/v1/me")
    r = conn.getresponse()
    assert r.status == 200
    r.read()
    sock = conn.sock
    reg.ctl("cert", "revoke", carol.serial)

    def me():
        conn.request("GET", "/v1/me")
        r = conn.getresponse()
        r.body = json.loads(r.read())
        assert conn.sock is sock  # the same TLS connection
        return r

    r = settled(me, 200)
    assert r.status == 401 and r.body["error"]["code"] == "certificate_revoked"
    conn.close()


def test_two_devices_each_with_its_addresses(reg, tmpdir_shared):
    dana = reg.user("dana@example.org")
    second = User(reg.d, "dana@example.org", tmpdir_shared, device="2")
    second.enrol(reg.code("dana@example.org"))
    dana.req("PUT", "/v1/me/addresses",
             json_body={"addresses": [{"ip": "2001:db8::1", "port": 4605}]})
    second.req("PUT", "/v1/me/addresses",
               json_body={"addresses": [{"ip": "2001:db8::2", "port": 4605}]})
    j = dana.req("GET", "/v1/users/dana@example.org").json()
    by = {d["serial"]: {a["ip"] for a in d["addresses"]} for d in j["devices"]}
    assert "2001:db8::1" in by[dana.serial]
    assert "2001:db8::2" in by[second.serial]
    assert "2001:db8::2" not in by[dana.serial]
    # Going offline on one device leaves the other online.
    r = second.req("DELETE", "/v1/me/addresses")
    assert r.status == 200 and r.json()["deleted"] >= 1
    j = dana.req("GET", "/v1/users/dana@example.org").json()
    by = {d["serial"]: d["addresses"] for d in j["devices"]}
    assert by[second.serial] == [] and by[dana.serial]


def test_a_refresh_moves_times_on_and_replaces_only_what_changed(reg):
    """PUT /v1/me/addresses replaces a device's addresses in one
    statement: what is given again keeps its row (only its times move
    on: a refresh deletes and inserts nothing), what is no longer given
    goes, what is new comes in; an address given twice is one."""
    eve = reg.user("eve@example.org")

    def put(*ips, ttl=300):
        r = eve.req("PUT", "/v1/me/addresses", json_body={
            "ttl": ttl, "addresses": [{"ip": ip, "port": 4605}
                                      for ip in ips]})
        assert r.status == 200, r

    def rows():
        out = reg.sql("SELECT host(ip), kind, id, "
                      "extract(epoch FROM expires_at) FROM addresses "
                      "ORDER BY ip, kind")
        return {(f[0], f[1]): (int(f[2]), float(f[3]))
                for f in (x.split("|") for x in out.splitlines())}
    put("2001:db8::1", "2001:db8::2")
    first = rows()
    assert set(first) == {("2001:db8::1", "declared"),
                          ("2001:db8::2", "declared"),
                          ("127.0.0.1", "observed")}, first
    time.sleep(1.1)
    put("2001:db8::1", "2001:db8::2", ttl=600)
    again = rows()
    for k in first:
        assert again[k][0] == first[k][0], (k, first, again)
        assert again[k][1] > first[k][1] + 300, (k, first, again)
    put("2001:db8::2", "2001:db8::3", "2001:db8::3")
    last = rows()
    assert set(last) == {("2001:db8::2", "declared"),
                         ("2001:db8::3", "declared"),
                         ("127.0.0.1", "observed")}, last
    assert last[("2001:db8::2", "declared")][0] == \
        first[("2001:db8::2", "declared")][0]
    assert last[("2001:db8::3", "declared")][0] > max(
        v[0] for v in first.values())
    j = eve.req("GET", "/v1/users/eve@example.org").json()
    assert sorted(a["ip"] for a in j["devices"][0]["addresses"]) == \
        ["127.0.0.1", "2001:db8::2", "2001:db8::3"], j


def make_foreign_cert(workdir, userid):
    """A self-signed certificate with the same subject as a real user's."""
    key = os.path.join(workdir, "foreign.key")
    cert = os.path.join(workdir, "foreign.pem")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
            "-days", "30", "-subj", f"/UID={userid}/CN=Eve",
            "-addext", "extendedKeyUsage=clientAuth")
    return cert, key


def make_expired_cert(reg, workdir, user):
    """A certificate from the real CA whose validity is over, registered
    as valid in the store: only its dates make it unacceptable."""
    out = ca_sign(reg.data, workdir, user.csr, "expired",
                  start="20200101000000Z", end="20200201000000Z",
                  serial="7E57AB1E0001")
    der = subprocess.run(["openssl", "x509", "-in", out, "-outform", "DER"],
                         capture_output=True, check=True).stdout
    fp = subprocess.run(["openssl", "dgst", "-sha256", "-r"], input=der,
                        capture_output=True, check=True).stdout.split()[0]
    issuer = reg.sql("SELECT issuer FROM certificates LIMIT 1")
    reg.sql("INSERT INTO certificates (issuer, serial, user_id, der, "
            "fingerprint, not_before, not_after) SELECT "
            f"'{issuer}', '7e57ab1e0001', id, '\\x{der.hex()}', "
            f"'{fp.decode()}', '2020-01-01', '2020-02-01' FROM users "
            f"WHERE userid = '{user.userid}'")
    return out


def test_refusals_change_nothing(reg, tmpdir_shared):
    erin = reg.user("erin@example.org")
    frank = reg.user("frank@example.org")
    reg.ctl("cert", "revoke", frank.serial)
    foreign_cert, foreign_key = make_foreign_cert(tmpdir_shared, erin.userid)
    expired = make_expired_cert(reg, tmpdir_shared, erin)
    used_code = reg.code("erin@example.org")
    ok = erin.req("POST", "/v1/renew", json_body={"csr": erin.csr_pem()})
    assert ok.status == 201
    expired_code = reg.code("erin@example.org")
    reg.sql("UPDATE enrol_codes SET created_at = now() - interval '2 days', "
            "expires_at = now() - interval '1 day' WHERE id = "
            "(SELECT max(id) FROM enrol_codes)")
    # Use one code so it is "reused" below.
    good = reg.code("erin@example.org")
    erin.enrol(good)
    used_code = good
    # A well-formed CSR the CA's policy refuses (RSA 1024), sent with a
    # fresh code: the code must survive the refusal.
    fresh = reg.code("erin@example.org")
    _, weak_csr = make_csr(tmpdir_shared, "weak", keyargs=("-newkey",
                                                           "rsa:1024"))
    with open(weak_csr) as f:
        weak = f.read()
    addr = "/v1/me/addresses"
    big = {"addresses": [{"ip": "2001:db8::1", "port": 4605}],
           "pad": "x" * 70000}
    cases = [
        ("no certificate", dict(method="GET", path="/v1/me"),
         401, "certificate_required"),
        ("foreign CA", dict(method="GET", path="/v1/me", cert=foreign_cert,
                            key=foreign_key), 401, "certificate_untrusted"),
        ("revoked", dict(method="GET", path="/v1/me", cert=frank.cert,
                         key=frank.key), 401, "certificate_revoked"),
        ("expired", dict(method="GET", path="/v1/me", cert=expired,
                         key=erin.key), 401, "certificate_expired"),
        ("reused code", dict(method="POST", path="/v1/enroll",
                             headers=[f"Authorization: Bearer {used_code}"],
                             json_body={"csr": erin.csr_pem()}),
         401, "invalid_code"),
        ("expired code", dict(method="POST", path="/v1/enroll",
                              headers=[f"Authorization: Bearer "
                                       f"{expired_code}"],
                              json_body={"csr": erin.csr_pem()}),
         401, "invalid_code"),
        ("non-admin", dict(method="GET", path="/v1/admin/users",
                           cert=erin.cert, key=erin.key), 403, "forbidden"),
        ("non-admin user add", dict(method="POST", path="/v1/admin/users",
                                    cert=erin.cert, key=erin.key,
                                    json_body={"userid": "x@example.org",
                                               "name": "X"}),
         403, "forbidden"),
        ("non-admin revoke", dict(
            method="POST", path=f"/v1/admin/certificates/{frank.serial}"
            "/revoke", cert=erin.cert, key=erin.key, json_body={}),
         403, "forbidden"),
        ("non-admin code", dict(method="POST",
                                path="/v1/admin/users/erin@example.org/codes",
                                cert=erin.cert, key=erin.key, json_body={}),
         403, "forbidden"),
        ("malformed JSON", dict(method="PUT", path=addr, cert=erin.cert,
                                key=erin.key, body='{"addresses": [',
                                ctype="application/json"),
         400, "malformed_json"),
        ("wrong type", dict(method="PUT", path=addr, cert=erin.cert,
                            key=erin.key, json_body={"addresses": "none"}),
         400, "wrong_type"),
        ("port as string", dict(method="PUT", path=addr, cert=erin.cert,
                                key=erin.key, json_body={"addresses": [
                                    {"ip": "2001:db8::1", "port": "4605"}]}),
         400, "wrong_type"),
        ("ip as number", dict(method="PUT", path=addr, cert=erin.cert,
                              key=erin.key, json_body={"addresses": [
                                  {"ip": 42, "port": 4605}]}),
         400, "wrong_type"),
        ("ttl as string", dict(method="PUT", path=addr, cert=erin.cert,
                               key=erin.key, json_body={"addresses": [
                                   {"ip": "2001:db8::1", "port": 4605}],
                                   "ttl": "300"}),
         400, "wrong_type"),
        ("csr as number", dict(method="POST", path="/v1/renew",
                               cert=erin.cert, key=erin.key,
                               json_body={"csr": 1}),
         400, "wrong_type"),
        ("wrong content type", dict(method="PUT", path=addr, cert=erin.cert,
                                    key=erin.key, body="addresses=1",
                                    ctype="application/x-www-form-urlencoded"),
         415, "unsupported_media_type"),
        # With Expect: 100-continue, as a client that sends a large body
        # should: without it, curl may still be writing when dird has
        # answered and closed, and reports a broken pipe, not the 413.
        ("oversized", dict(method="PUT", path=addr, cert=erin.cert,
                           key=erin.key, json_body=big,
                           headers=["Expect: 100-continue"]),
         413, "body_too_large"),
        ("oversized, chunked", dict(method="PUT", path=addr,
                                    cert=erin.cert, key=erin.key,
                                    json_body=big, headers=[
                                        "Transfer-Encoding: chunked"]),
         413, "body_too_large"),
        ("bad ip", dict(method="PUT", path=addr, cert=erin.cert,
                        key=erin.key, json_body={"addresses": [
                            {"ip": "2001:db8::zz", "port": 4605}]}),
         400, "invalid_address"),
        ("port 0", dict(method="PUT", path=addr, cert=erin.cert,
                        key=erin.key, json_body={"addresses": [
                            {"ip": "2001:db8::1", "port": 0}]}),
         400, "invalid_port"),
        ("port 65536", dict(method="PUT", path=addr, cert=erin.cert,
                            key=erin.key, json_body={"addresses": [
                                {"ip": "2001:db8::1", "port": 65536}]}),
         400, "invalid_port"),
        ("17 addresses", dict(method="PUT", path=addr, cert=erin.cert,
                              key=erin.key, json_body={"addresses": [
                                  {"ip": f"2001:db8::{i + 1:x}", "port": 4605}
                                  for i in range(17)]}),
         400, "too_many_addresses"),
        ("unknown field", dict(method="PUT", path=addr, cert=erin.cert,
                               key=erin.key, json_body={"addresses": [
                                   {"ip": "2001:db8::1", "port": 1}],
                                   "colour": "red"}),
         400, "unknown_field"),
        ("bad CSR", dict(method="POST", path="/v1/renew", cert=erin.cert,
                         key=erin.key, json_body={"csr": "-----BEGIN "
                                                  "CERTIFICATE REQUEST-----\n"
                                                  "AAAA\n-----END "
                                                  "CERTIFICATE REQUEST-----\n"}),
         400, "invalid_csr"),
        ("RSA 1024 CSR at renew", dict(method="POST", path="/v1/renew",
                                       cert=erin.cert, key=erin.key,
                                       json_body={"csr": weak}),
         400, "invalid_csr"),
        ("RSA 1024 CSR at enrol", dict(method="POST", path="/v1/enroll",
                                       headers=[f"Authorization: Bearer "
                                                f"{fresh}"],
                                       json_body={"csr": weak}),
         400, "invalid_csr"),
        ("unknown user", dict(method="GET", path="/v1/users/nobody@example.org",
                              cert=erin.cert, key=erin.key),
         404, "unknown_user"),
        ("unknown serial", dict(method="POST",
                                path="/v1/certificates/abcdef/revoke",
                                cert=erin.cert, key=erin.key, json_body={}),
         404, "unknown_certificate"),
        ("someone else's certificate", dict(
            method="POST", path=f"/v1/certificates/{ok.json()['serial']}"
            "/revoke", cert=frank.cert, key=frank.key, json_body={}),
         401, "certificate_revoked"),
        ("unknown endpoint", dict(method="GET", path="/v1/nothing"),
         404, "not_found"),
        ("wrong method", dict(method="PATCH", path="/v1/me"),
         405, "method_not_allowed"),
    ]
    before = reg.digest()
    for name, kw, status, code in cases:
        r = curl(reg.d, **kw)
        assert r.status == status, (name, r)
        assert r.code == code, (name, r)
        assert reg.digest() == before, name
    # The limits are where they say: 16 addresses are accepted, and the
    # code offered with the refused CSR is still good.
    r = erin.req("PUT", addr, json_body={"addresses": [
        {"ip": f"2001:db8::{i + 1:x}", "port": 4605} for i in range(16)]})
    assert r.status == 200, r
    assert len([a for a in r.json()["addresses"]
                if a["kind"] == "declared"]) == 16
    User(reg.d, erin.userid, tmpdir_shared, device="-fresh").enrol(fresh)


def test_other_users_data_is_out_of_reach(reg):
    grace = reg.user("grace@example.org")
    heidi = reg.user("heidi@example.org")
    before = reg.digest()
    r = heidi.req("POST", f"/v1/certificates/{grace.serial}/revoke",
                  json_body={})
    assert r.status == 403 and r.code == "forbidden"
    assert reg.digest() == before
    # Addresses only ever go to the caller's own certificate: Heidi's
    # update is taken, shows under her, and Grace stays offline.
    r = heidi.req("PUT", "/v1/me/addresses", json_body={
        "addresses": [{"ip": "192.0.2.99", "port": 4605}]})
    assert r.status == 200, r
    j = heidi.req("GET", "/v1/users/heidi@example.org").json()
    assert j["online"] is True, j
    assert [(d["serial"], a["ip"]) for d in j["devices"]
            for a in d["addresses"] if a["kind"] == "declared"] == \
        [(heidi.serial, "192.0.2.99")], j
    j = heidi.req("GET", "/v1/users/grace@example.org").json()
    assert j["online"] is False, j
    assert all(d["addresses"] == [] for d in j["devices"]), j


def test_password_auth_passwd_and_rate_limit(reg, tmpdir_shared):
    import base64

    def basic(pw):
        tok = base64.b64encode(f"ivan@example.org:{pw}".encode()).decode()
        return [f"Authorization: Basic {tok}"]

    def enrol(pw):
        return curl(reg.d, "POST", "/v1/enroll", headers=basic(pw),
                    json_body={"csr": ivan.csr_pem()})

    pw = os.path.join(tmpdir_shared, "pw")
    with open(pw, "w") as f:
        f.write("a long enough password\n")
    reg.add("ivan@example.org", "Ivan", "--password-file", pw)
    ivan = User(reg.d, "ivan@example.org", tmpdir_shared, device="-new")
    before = reg.digest()
    r = enrol("wrong")
    assert r.status == 401 and r.code == "bad_credentials"
    assert reg.digest() == before
    r = enrol("a long enough password")
    assert r.status == 201, r
    # dirctl user passwd: the old password stops working, the new works.
    with open(pw, "w") as f:
        f.write("another long password\n")
    reg.ctl("user", "passwd", "ivan@example.org", "--password-file", pw)
    before = reg.digest()
    r = enrol("a long enough password")
    assert r.status == 401 and r.code == "bad_credentials", r
    assert reg.digest() == before
    r = enrol("another long password")
    assert r.status == 201, r
    # Two failures so far; the limit is 5 per window: three more are
    # answered 401, then 429, and nothing is written meanwhile.
    before = reg.digest()
    statuses = [enrol("wrong").status for _ in range(5)]
    assert statuses == [401, 401, 401, 429, 429], statuses
    # Limited now even with the right password, for a while.
    r = enrol("another long password")
    assert r.status == 429 and r.code == "rate_limited"
    assert reg.digest() == before
    m = reg.d.metrics()
    fails = [ln for ln in m.splitlines()
             if ln.startswith("dird_auth_failures_total")]
    assert sum(float(ln.split()[-1]) for ln in fails) >= 5, fails


def test_dirctl_disable_enable_reach_dird(reg):
    """An administrator's dirctl changes apply to the running dird (a
    moment after commit: they reach its cache by NOTIFY); codes made with
    --ttl expire when they say."""
    pat = reg.user("pat@example.org")
    code = reg.code("pat@example.org", "--ttl", "2m")
    other = User(reg.d, "pat@example.org", reg.work, device="-2")
    reg.ctl("user", "disable", "pat@example.org")
    before = reg.digest()
    r = settled(lambda: pat.req("GET", "/v1/me"), 200)
    assert r.status == 401 and r.code == "user_disabled", r
    r = pat.req("PUT", "/v1/me/addresses", json_body={
        "addresses": [{"ip": "2001:db8::9", "port": 4605}]})
    assert r.status == 401 and r.code == "user_disabled", r
    # A disabled user can not enrol with a code either.
    r = curl(reg.d, "POST", "/v1/enroll",
             headers=[f"Authorization: Bearer {code}"],
             json_body={"csr": other.csr_pem()})
    assert r.status == 401, r
    assert reg.digest() == before
    reg.ctl("user", "enable", "pat@example.org")
    r = settled(lambda: pat.req("GET", "/v1/me"), 401)
    assert r.status == 200, r
    other.enrol(code)
    left = float(reg.sql("SELECT extract(epoch FROM expires_at - now()) "
                         "FROM enrol_codes ORDER BY id DESC LIMIT 1"))
    assert 60 < left <= 120, left
    actions = reg.sql("SELECT string_agg(action || ' ' || coalesce(target, "
                      "''), ',' ORDER BY id) FROM audit_log")
    assert "user.disable pat@example.org" in actions
    assert "user.enable pat@example.org" in actions


def test_admin_endpoints(reg, tmpdir_shared):
    admin = reg.user("root@example.org", "Admin", admin=True)
    r = admin.req("POST", "/v1/admin/users", json_body={
        "userid": "Judy@Example.org", "name": "Judy",
        "email": "judy@example.org"})
    assert r.status == 201, r
    r = admin.req("POST", "/v1/admin/users", json_body={
        "userid": "judy@example.org", "name": "Judy again"})
    assert r.status == 409, r
    users = admin.req("GET", "/v1/admin/users").json()["users"]
    assert "judy@example.org" in {u["userid"] for u in users}
    r = admin.req("POST", "/v1/admin/users/judy@example.org/codes",
                  json_body={"ttl": 600})
    assert r.status == 201
    judy = User(reg.d, "judy@example.org", tmpdir_shared, device="-new")
    judy.enrol(r.json()["code"])
    # Centralized model: the server makes the key, returns a PKCS#12.
    r = admin.req("POST", "/v1/admin/users/judy@example.org/p12",
                  json_body={"passphrase": "judy's passphrase"}, raw_out=True)
    assert r.status == 201
    p12 = os.path.join(tmpdir_shared, "judy.p12")
    with open(p12, "wb") as f:
        f.write(r.body)
    certpem = openssl("pkcs12", "-in", p12, "-clcerts", "-nokeys", "-passin",
                      "pass:judy's passphrase").stdout
    assert "UID=judy@example.org" in openssl(
        "x509", "-noout", "-subject", "-nameopt", "RFC2253",
        input=certpem).stdout
    r = admin.req("POST", "/v1/admin/users/judy@example.org/disable")
    assert r.status == 200
    r = judy.req("GET", "/v1/me")
    assert r.status == 401 and r.code == "user_disabled"
    r = admin.req("POST", f"/v1/admin/certificates/{judy.serial}/revoke",
                  json_body={"reason": "keyCompromise"})
    assert r.status == 200, r
    # The same action names as dirctl's, with the administrator and the
    # address they came from.
    rows = reg.sql("SELECT string_agg(action || ' ' || actor || ' ' || "
                   "coalesce(host(source), '-'), ',' ORDER BY id) "
                   "FROM audit_log WHERE actor = 'root@example.org'")
    for action in ("user.add", "code.create", "cert.issue_p12",
                   "user.disable", "cert.revoke"):
        assert f"{action} root@example.org 127.0.0.1" in rows.split(","), \
            rows
    assert "admin." not in rows, rows


def test_health_and_metrics(reg):
    kim = reg.user("kim@example.org")
    kim.req("GET", "/v1/me")
    kim.req("PUT", "/v1/me/addresses", json_body={
        "addresses": [{"ip": "2001:db8::3", "port": 4605}]})
    assert curl(reg.d, "GET", "/healthz").status == 200
    m = reg.d.metrics()
    assert 'dird_requests_total{endpoint="me",status="200"} 1' in m
    assert 'dird_requests_total{endpoint="enroll",status="201"} 1' in m
    assert "dird_request_duration_seconds_bucket" in m
    assert "dird_online_users 1" in m
    assert "dird_auth_failures_total" in m
    # Every family is declared with its type, as Prometheus expects.
    for name, kind in (("dird_requests_total", "counter"),
                       ("dird_request_duration_seconds", "histogram"),
                       ("dird_auth_failures_total", "counter"),
                       ("dird_db_errors_total", "counter"),
                       ("dird_online_users", "gauge")):
        assert f"# TYPE {name} {kind}" in m, name
    assert 'dird_request_duration_seconds_bucket{le="+Inf"}' in m
    count = [ln for ln in m.splitlines()
             if ln.startswith("dird_request_duration_seconds_count")]
    assert count and float(count[0].split()[-1]) >= 3, count
    # A refused request is counted under its status.
    assert curl(reg.d, "GET", "/v1/me").status == 401
    m = reg.d.metrics()
    assert 'dird_requests_total{endpoint="me",status="401"} 1' in m, m
    ca = curl(reg.d, "GET", "/v1/ca").body
    with open(os.path.join(reg.data, "ca.pem")) as f:
        assert ca == f.read()


def test_two_instances_share_the_database(reg):
    # Several instances on one database: the strict setting (no cache) on
    # both; test_cache.py covers cache=shared.
    assert reg.d.stop() == 0
    reg.d = Dird(reg.data, extra=["--set", "cache=off"]).start()
    second = Dird(reg.data, extra=["--set", "cache=off"]).start()
    try:
        lee = reg.user("lee@example.org")
        mia = reg.user("mia@example.org")
        for i in range(5):
            ip = f"2001:db8::{i + 10:x}"
            r = lee.req("PUT", "/v1/me/addresses", json_body={
                "addresses": [{"ip": ip, "port": 4605}]})
            assert r.status == 200
            mia.d = second
            r = mia.req("GET", "/v1/users/lee@example.org")
            mia.d = reg.d
            ips = {a["ip"] for d in r.json()["devices"]
                   for a in d["addresses"]}
            assert ip in ips, (i, r)
        # And the other way round.
        lee.d = second
        r = lee.req("PUT", "/v1/me/addresses", json_body={
            "addresses": [{"ip": "192.0.2.200", "port": 4605}]})
        lee.d = reg.d
        assert r.status == 200, r
        r = mia.req("GET", "/v1/users/lee@example.org")
        ips = {a["ip"] for d in r.json()["devices"] for a in d["addresses"]}
        assert "192.0.2.200" in ips, r
        # A revocation through one instance is enforced by the other
        # on the very next request.
        mia.d = second
        assert mia.req("GET", "/v1/me").status == 200
        mia.d = reg.d
        r = mia.req("POST", f"/v1/certificates/{mia.serial}/revoke",
                    json_body={"reason": "keyCompromise"})
        assert r.status == 200, r
        mia.d = second
        r = mia.req("GET", "/v1/me")
        mia.d = reg.d
        assert r.status == 401 and r.code == "certificate_revoked", r
    finally:
        assert second.stop() == 0


def test_header_limit_and_idle_timeout(reg):
    """Oversized headers are refused without harm, and an idle
    connection is closed after connection_timeout seconds."""
    d = Dird(reg.data, extra=["--set", "connection_timeout=2"]).start()
    try:
        # Over the 64 KiB connection pool.
        r = curl(d, "GET", "/healthz", headers=["X-Big: " + "a" * 70000])
        assert r.status == 431, r
        r = curl(d, "GET", "/healthz", headers=["X-Small: " + "a" * 1000])
        assert r.status == 200, r
        ctx = client_ctx(reg.data)
        conn = http.client.HTTPSConnection("localhost", d.port, context=ctx,
                                           timeout=30)
        conn.request("GET", "/healthz")
        resp = conn.getresponse()
        assert resp.status == 200
        resp.read()
        t0 = time.time()
        # The server closes it: the read ends (b"") instead of waiting.
        data = conn.sock.recv(1)
        waited = time.time() - t0
        assert data == b"" and 1.0 < waited < 20, (data, waited)
        conn.close()
    finally:
        assert d.stop() == 0


def test_database_restart_gives_503_then_recovers(tmpdir_shared):
    own = PgServer()
    reg = None
    try:
        reg = Registry(own, tmpdir_shared, settings=["cache=local"])
        nina = reg.user("nina@example.org")
        assert nina.req("GET", "/v1/me").status == 200
        own.stop()
        r = nina.req("GET", "/v1/me")
        assert r.status == 503 and r.code == "database_unavailable", r
        assert curl(reg.d, "GET", "/healthz").status == 503
        own.start()
        wait_until(lambda: nina.req("GET", "/v1/me").status == 200,
                   "dird to answer again", interval=0.2)
        # The cache's listener lost its connection too, and is back.
        assert "answering from the database until it is back" in \
            reg.d.read_log()
        wait_until(lambda: "listening for changes again" in reg.d.read_log(),
                   "the cache's listener to be back")
        r = nina.req("PUT", "/v1/me/addresses", json_body={
            "addresses": [{"ip": "2001:db8::77", "port": 4605}]})
        assert r.status == 200
        assert reg.sql("SELECT count(*) FROM addresses WHERE "
                       "ip = '2001:db8::77'") == "1"
        assert reg.d.stop() == 0
    finally:
        if reg is not None:
            reg.d.stop()  # a no-op after the stop above
        own.cleanup()


def test_first_request_after_a_database_restart_succeeds(tmpdir_shared):
    """A worker whose database connection died with a server restart,
    and saw no request while the server was down, reconnects before it
    sends anything: the first request after the restart gets its answer,
    not a 503.  (The old server leaves a farewell and then EOF; reading
    only the farewell leaves the connection looking healthy.)"""
    own = PgServer()
    reg = None
    try:
        reg = Registry(own, tmpdir_shared, settings=["cache=off"])
        omar = reg.user("omar@example.org")
        d = Dird(reg.data, extra=["--set", "cache=off",
                                  "--set", "workers=1"]).start()
        try:
            r = curl(d, "GET", "/v1/me", cert=omar.cert, key=omar.key)
            assert r.status == 200, r
            own.stop()
            own.start()
            r = curl(d, "PUT", "/v1/me/addresses", cert=omar.cert,
                     key=omar.key, json_body={"addresses": [
                         {"ip": "2001:db8::78", "port": 4605}]})
            assert r.status == 200, r
            r = curl(d, "GET", "/v1/users/omar@example.org", cert=omar.cert,
                     key=omar.key)
            assert r.status == 200, r
            assert "2001:db8::78" in [a["ip"] for dev in r.json()["devices"]
                                      for a in dev["addresses"]], r.json()
        finally:
            assert d.stop() == 0
        assert reg.d.stop() == 0
    finally:
        if reg is not None:
            reg.d.stop()  # a no-op after the stop above
        own.cleanup()


def test_embedded_quick_start_and_clean_shutdown(tmpdir_shared):
    """No DSN anywhere: dird starts the embedded cluster and stops it."""
    data = os.path.join(tmpdir_shared, "data")
    dirctl(data, "init", "--domain", "example.com")
    d = Dird(data).start()
    try:
        assert curl(d, "GET", "/healthz").status == 200
    finally:
        assert d.stop() == 0
    assert not os.path.exists(os.path.join(data, "pg", "postmaster.pid"))
    assert "stopped" in d.read_log()


def test_startup_errors(reg, tmpdir_shared):
    # An occupied port.
    p = run([dird_path(), "--data", reg.data, "--listen",
             f"127.0.0.1:{reg.d.port}"], check=False)
    assert p.returncode != 0 and "cannot listen" in p.stderr
    # A corrupt configuration names file and line.
    bad = os.path.join(tmpdir_shared, "bad")
    shutil.copytree(reg.data, bad, ignore=shutil.ignore_patterns("pg", "run"))
    with open(os.path.join(bad, "dird.conf"), "a") as f:
        f.write("workers = many\n")
    p = run([dird_path(), "--data", bad, "--check"], check=False)
    assert p.returncode != 0 and "dird.conf:" in p.stderr
    assert "workers must be" in p.stderr
    # A missing CA key.
    os.unlink(os.path.join(bad, "ca.key"))
    with open(os.path.join(bad, "dird.conf")) as f:
        text = f.read().replace("workers = many\n", "")
    with open(os.path.join(bad, "dird.conf"), "w") as f:
        f.write(text)
    p = run([dird_path(), "--data", bad], check=False)
    assert p.returncode != 0 and "CA" in p.stderr


def test_ttl_is_clamped_to_the_configured_range(reg):
    olga = reg.user("olga@example.org")
    got = {}
    for asked in (1, 300, 10**6):
        r = olga.req("PUT", "/v1/me/addresses", json_body={
            "addresses": [{"ip": "2001:db8::8", "port": 4605}],
            "ttl": asked})
        assert r.status == 200, r
        got[asked] = r.json()["ttl"]
    assert got == {1: 60, 300: 300, 10**6: 3600}
    left = float(reg.sql("SELECT extract(epoch FROM max(expires_at) - now()) "
                         "FROM addresses"))
    assert 3500 < left <= 3600
    # No "ttl": the default.  Zero or negative: refused, nothing changed.
    r = olga.req("PUT", "/v1/me/addresses", json_body={
        "addresses": [{"ip": "2001:db8::9", "port": 4605}]})
    assert r.status == 200 and r.json()["ttl"] == 300, r
    for asked in (0, -5):
        r = olga.req("PUT", "/v1/me/addresses", json_body={
            "addresses": [{"ip": "2001:db8::a", "port": 4605}],
            "ttl": asked})
        assert r.status == 400 and r.code == "invalid_value", r
        assert f"not {asked}" in r.json()["error"]["message"], r
    assert reg.sql("SELECT string_agg(host(ip), ',') FROM addresses "
                   "WHERE kind = 'declared'") == "2001:db8::9"


def server_sockets(port):
    """The TCP states (hex, as in /proc/net/tcp) of the sockets whose
    local port is port, with the listener's accept queue: what a server
    holds, seen from outside it."""
    states, queued = [], 0
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(name) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) != port:
                    continue
                if fields[3] == "0A":  # LISTEN: rx_queue is the backlog
                    queued += int(fields[4].split(":")[1], 16)
                else:
                    states.append(fields[3])
    return states, queued


def held(port):
    """Connections the server on port has accepted and not closed: its
    ends in ESTABLISHED (01) or CLOSE_WAIT (08, the client closed first),
    once nothing waits in the accept queue; None while something does."""
    states, queued = server_sockets(port)
    return None if queued else sum(st in ("01", "08") for st in states)


def wait_held(port, n, timeout=30):
    """Until the server on port holds exactly n connections."""
    wait_until(lambda: held(port) == n,
               f"{n} connections held on {port}", timeout)


def test_dual_stack_listener_and_connection_limits(reg, tmpdir_shared):
    import socket as so
    # Only the IPv6 wildcard: IPv4 clients must get in through it too.
    port = free_port()
    d = Dird(reg.data, port=port, listen=f"[::]:{port}",
             extra=["--set", "max_connections_per_ip=3"]).start()
    try:
        for host in ("127.0.0.1", "::1"):
            p = subprocess.run(["curl", "-sS", "--cacert",
                                os.path.join(reg.data, "ca.pem"),
                                "--resolve", f"localhost:{port}:{host}",
                                f"https://localhost:{port}/healthz"],
                               capture_output=True, text=True, timeout=30)
            assert '"ok"' in p.stdout, (host, p.stderr)
        # Three idle connections from one address use up its share, once
        # dird let go of the earlier ones and took these.
        wait_held(port, 0)
        idle = [so.create_connection(("127.0.0.1", port)) for _ in range(3)]
        wait_held(port, 3)
        p = subprocess.run(["curl", "-sS", "--cacert",
                            os.path.join(reg.data, "ca.pem"),
                            f"https://localhost:{port}/healthz"],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode != 0 and '"ok"' not in p.stdout
        # Closed, and seen closed by dird: the share is free again.
        for s in idle:
            s.close()
        wait_held(port, 0)
        p = subprocess.run(["curl", "-sS", "--cacert",
                            os.path.join(reg.data, "ca.pem"),
                            f"https://localhost:{port}/healthz"],
                           capture_output=True, text=True, timeout=30)
        assert '"ok"' in p.stdout, p.stderr
    finally:
        assert d.stop() == 0, d.read_log()


def test_quick_start_script(tmpdir_shared):
    """The README's first command: scripts/registry DATA [-- options]
    creates the registry, serves /healthz and stops cleanly on SIGTERM.
    It runs from a copy of scripts/ whose build/ is this run's build, so
    that it builds nothing new and touches no other build directory."""
    import signal
    tree = os.path.join(tmpdir_shared, "tree")
    os.makedirs(os.path.join(tree, "scripts"))
    for s in ("registry", "deps"):
        shutil.copy2(os.path.join(ROOT, "scripts", s),
                     os.path.join(tree, "scripts", s))
    os.symlink(os.path.abspath(BUILD), os.path.join(tree, "build"))
    data = os.path.join(tmpdir_shared, "data")
    port = free_port()
    log = open(os.path.join(tmpdir_shared, "registry.log"), "wb")
    # No domain: the default one, even with dird options after "--".
    # DATA is relative to where the user stands, not to the repository.
    proc = spawn([os.path.join(tree, "scripts", "registry"), "data", "--",
                  "--listen", f"127.0.0.1:{port}"], tmpdir_shared,
                 stdout=log, cwd=tmpdir_shared)

    def output():
        with open(log.name, errors="replace") as f:
            return f.read() + stderr_of(proc)

    def healthy():
        assert proc.poll() is None, output()
        p = subprocess.run(["curl", "-sS", "--cacert",
                            os.path.join(data, "ca.pem"),
                            f"https://localhost:{port}/healthz"],
                           capture_output=True, text=True, timeout=30)
        return p if p.returncode == 0 else None

    try:
        p = wait_until(healthy, "the registry to answer /healthz",
                       interval=0.1)
        out = output()
        assert '"ok"' in p.stdout, (p.stdout, out)
        assert "Add users with:" in out
        with open(os.path.join(data, "dird.conf")) as f:
            assert "domain = example.org" in f.read()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        assert not os.path.exists(os.path.join(data, "pg",
                                               "postmaster.pid"))
    finally:
        log.close()


def tls_records(sock, sslobj, incoming, done):
    """Read raw bytes until done(plaintext) holds; the TLS record types
    that carried them."""
    types, raw, plain = [], b"", b""
    while not done(plain):
        chunk = sock.recv(65536)
        assert chunk, "connection closed"
        raw += chunk
        while len(raw) >= 5 and len(raw) >= 5 + int.from_bytes(raw[3:5],
                                                              "big"):
            n = 5 + int.from_bytes(raw[3:5], "big")
            types.append(raw[0])
            incoming.write(raw[:n])
            raw = raw[n:]
        while True:
            try:
                got = sslobj.read(65536)
            except (ssl.SSLWantReadError, ssl.SSLZeroReturnError):
                break
            if not got:
                break
            plain += got
    return types, plain


def lookups(d):
    """How many lookups d answered, by its metrics."""
    return sum(int(n) for n in re.findall(
        r'^dird_requests_total\{endpoint="lookup",status="[^"]*"\} (\d+)$',
        d.metrics(), re.M))


def test_small_reply_is_one_tls_record_and_a_non_reader_is_cut_off(reg):
    """A small reply leaves as one TLS record (libmicrohttpd alone makes
    header and body two); a client that sends requests without ever
    reading replies is disconnected while others are served."""
    import socket
    zoe = reg.user("zoe@example.org")
    ctx = client_ctx(reg.data, zoe)
    sock = socket.create_connection(("127.0.0.1", reg.d.port), timeout=10)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    while True:
        try:
            obj.do_handshake()
            break
        except ssl.SSLWantReadError:
            sock.sendall(outgoing.read())
            incoming.write(sock.recv(65536))
    sock.sendall(outgoing.read())

    def complete(p):
        head, sep, body = p.partition(b"\r\n\r\n")
        if not sep:
            return False
        n = [int(x.split(b":")[1]) for x in head.split(b"\r\n")
             if x.lower().startswith(b"content-length:")]
        return len(body) >= n[0]

    body = b'{"addresses": [{"ip": "192.0.2.7", "port": 4605}]}'
    for i in range(3):
        obj.write(b"GET /v1/users/zoe@example.org HTTP/1.1\r\n"
                  b"Host: localhost\r\n\r\n")
        sock.sendall(outgoing.read())
        types, plain = tls_records(sock, obj, incoming, complete)
        assert plain.startswith(b"HTTP/1.1 200"), plain[:100]
        assert b"zoe@example.org" in plain
        if i > 0:  # the first may follow session tickets
            assert types == [23], types
        obj.write(b"PUT /v1/me/addresses HTTP/1.1\r\nHost: localhost\r\n"
                  b"Content-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        sock.sendall(outgoing.read())
        types, plain = tls_records(sock, obj, incoming, complete)
        assert plain.startswith(b"HTTP/1.1 200"), plain[:100]
        assert types == [23], types
    # "Connection: close": the corked reply still arrives whole.
    obj.write(b"GET /v1/users/zoe@example.org HTTP/1.1\r\n"
              b"Host: localhost\r\nConnection: close\r\n\r\n")
    sock.sendall(outgoing.read())
    types, plain = tls_records(sock, obj, incoming, complete)
    assert plain.startswith(b"HTTP/1.1 200") and complete(plain)
    sock.close()

    # Pipelined requests, never a reply read, on a dird with one worker:
    # the flood stalls on full socket buffers (or is cut off) and the
    # worker goes on serving another client.
    d = Dird(reg.data, extra=["--set", "workers=1"]).start()
    try:
        flood = ctx.wrap_socket(socket.create_connection(
            ("127.0.0.1", d.port)), server_hostname="localhost")
        req = (b"GET /v1/users/zoe@example.org HTTP/1.1\r\n"
               b"Host: localhost\r\n\r\n")
        # The connection is served like any other until it floods.
        flood.settimeout(30)
        flood.sendall(req)
        reply = b""
        while not complete(reply):
            chunk = flood.recv(65536)
            assert chunk, reply
            reply += chunk
        assert reply.startswith(b"HTTP/1.1 200"), reply[:100]
        flood.settimeout(0.5)
        sent, stalls, served = 0, 0, 0
        while stalls < 3 and sent < 200000:
            try:
                flood.sendall(req * 50)
                sent += 50
            except TimeoutError:
                stalls += 1
            except (ssl.SSLError, OSError):
                # Cut off (not at its first sends: checked below); the
                # worker serves others after it.
                r = curl(d, "GET", "/v1/me", cert=zoe.cert, key=zoe.key)
                assert r.status == 200, (sent, r)
                served += 1
                break
            if sent % 5000 == 0 or stalls:
                r = curl(d, "GET", "/v1/me", cert=zoe.cert, key=zoe.key)
                assert r.status == 200, (sent, r)
                served += 1
        # A flood cut at its first sends would have tested nothing: dird
        # answered 500 of its requests (its own count of lookups, less the
        # one read above) whose replies were never read, and served
        # another client while the flood held its connection.
        took = lookups(d) - 1
        print(f"flood: {sent} requests sent, {took} answered, {stalls} "
              f"stalls, {served} served to another client meanwhile")
        assert took >= 500 and served >= 1, (sent, took, stalls, served)
        assert stalls or sent < 200000, "200000 unread requests taken"
        flood.close()
        r = curl(d, "GET", "/v1/me", cert=zoe.cert, key=zoe.key)
        assert r.status == 200, r
    finally:
        assert d.stop() == 0


def test_replies_are_not_held_back(reg):
    """A reply leaves at once, also on a connection whose request bodies
    arrive in a record of their own (as Python's http.client sends them):
    a reply left in the kernel under TCP_CORK waits 200 ms for its timer,
    every time.  So the fastest of 40 requests says it, however loaded
    the machine (load makes some slow, not all): under 150 ms, where a
    held-back reply takes 200 ms or more.  How fast they are is
    tests/bench/run's business."""
    yan = reg.user("yan@example.org")
    ctx = client_ctx(reg.data, yan)
    c = http.client.HTTPSConnection("localhost", reg.d.port, context=ctx,
                                    timeout=30)
    took = []
    for port in range(1, 21):
        t0 = time.monotonic()
        c.request("PUT", "/v1/me/addresses", body=json.dumps(
            {"addresses": [{"ip": "192.0.2.8", "port": port}]}),
            headers={"Content-Type": "application/json"})
        r = c.getresponse()
        assert r.status == 200, r.read()
        r.read()
        took.append(time.monotonic() - t0)
        t0 = time.monotonic()
        c.request("GET", "/v1/users/yan@example.org")
        r = c.getresponse()
        assert r.status == 200
        assert json.loads(r.read())["devices"], "no device"
        took.append(time.monotonic() - t0)
    c.close()
    print(f"40 requests: fastest {min(took) * 1000:.1f} ms, slowest "
          f"{max(took) * 1000:.1f} ms, all {sum(took):.2f} s")
    assert min(took) < 0.15, f"replies held back: {sorted(took)[:5]}"


def test_concurrent_renewals_keep_the_audit_log_intact(reg):
    """Certificates issued at the same time by several workers spread
    over the audit chains without forking any: every renewal has its
    row, and `dirctl audit verify` finds every chain intact."""
    import threading
    users = [reg.user(f"c{i}@example.org") for i in range(4)]
    errors, done = [], []

    def renew(u):
        c = http.client.HTTPSConnection("localhost", reg.d.port,
                                        context=client_ctx(reg.data, u),
                                        timeout=30)
        body = json.dumps({"csr": u.csr_pem()})
        for _ in range(10):
            c.request("POST", "/v1/renew", body=body,
                      headers={"Content-Type": "application/json"})
            r = c.getresponse()
            r.read()
            if r.status != 201:
                errors.append(r.status)
                return
            done.append(u.userid)
        c.close()

    threads = [threading.Thread(target=renew, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and len(done) == 40, (errors, len(done))
    assert reg.sql("SELECT count(*) FROM audit_log WHERE action = "
                   "'renew'") == "40"
    p = reg.ctl("audit", "verify")
    assert "intact" in p.stdout, p.stdout
    print("chains used:", reg.sql("SELECT string_agg(DISTINCT "
                                  "chain::text, ',') FROM audit_log"))
