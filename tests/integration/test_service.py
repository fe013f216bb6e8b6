"""One rule per change: `dirctl` and the admin API are two doors to the
same service layer.  Each test does the same thing through both and
compares what the registry answered and what it wrote in the audit log."""
import base64
import copy
import os
import re

import pytest

from conftest import Dird, curl, openssl, wait_until

ADMIN = "root@example.org"
USERS = "/v1/admin/users"


@pytest.fixture
def admin(reg):
    return reg.user(ADMIN, "Root", admin=True)


def ctl_add(reg, userid, name, email=None, role=None, pwfile=None):
    argv = ["user", "add", userid, "--name", name]
    if email is not None:
        argv += ["--email", email]
    if role == "admin":
        argv.append("--admin")
    if pwfile is not None:
        argv += ["--password-file", pwfile]
    return reg.ctl(*argv, check=False)


def api_add(admin, userid, name, email=None, role=None, password=None):
    body = {"userid": userid, "name": name}
    for k, v in (("email", email), ("role", role), ("password", password)):
        if v is not None:
            body[k] = v
    return admin.req("POST", USERS, json_body=body)


def audit(reg, since):
    """(action, target, serial, detail, actor, source) of the audit rows
    after id `since`, in order."""
    out = reg.sql("SELECT string_agg(concat_ws('|', action, "
                  "coalesce(target, '-'), coalesce(serial, '-'), "
                  "coalesce(detail, '-'), actor, "
                  "coalesce(host(source), '-')), E'\\n' ORDER BY id) "
                  f"FROM audit_log WHERE id > {since}")
    return [tuple(line.split("|")) for line in out.splitlines()]


def last_id(reg):
    return int(reg.sql("SELECT coalesce(max(id), 0) FROM audit_log"))


# name, email, password: each with the answer both doors must give.
N128, N129 = "N" * 128, "N" * 129
E254 = "e" * 242 + "@example.org"
CASES = [
    ("a name of 128 bytes", dict(name=N128), None),
    ("a name of 129 bytes", dict(name=N129), "too_long"),
    ("64 two-byte characters", dict(name="\u00e9" * 64), None),
    ("65 two-byte characters", dict(name="\u00e9" * 65), "too_long"),
    ("an empty name", dict(name=""), "invalid_value"),
    ("a name with a newline", dict(name="Mal\nlory"), "invalid_value"),
    ("a name with a direction override", dict(name="Mal\u202elory"),
     "invalid_value"),
    ("an e-mail of 254 bytes", dict(name="E", email=E254), None),
    ("an e-mail of 255 bytes", dict(name="E", email="e" + E254),
     "too_long"),
    ("an e-mail without @", dict(name="E", email="nobody"),
     "invalid_value"),
    ("an e-mail with two @", dict(name="E", email="a@b@example.org"),
     "invalid_value"),
    ("an e-mail with a space", dict(name="E", email="a b@example.org"),
     "invalid_value"),
    ("a password of 7 characters", dict(name="P", password="1234567"),
     "weak_password"),
    ("a password of 8 characters", dict(name="P", password="12345678"),
     None),
    ("an administrator", dict(name="A", role="admin"), None),
]


@pytest.mark.parametrize("label,fields,code", CASES,
                         ids=[c[0] for c in CASES])
def test_user_add_has_one_rule(reg, admin, tmpdir_shared, label, fields,
                               code):
    """The same user added by dirctl and by the API: both take it or both
    refuse it with the same sentence; taken, both write the same audit
    row but for who did it and from where."""
    pwfile = None
    if "password" in fields:
        pwfile = os.path.join(tmpdir_shared, "pw")
        with open(pwfile, "w") as f:
            f.write(fields["password"] + "\n")
    start = last_id(reg)
    p = ctl_add(reg, "cli@example.org", fields["name"], fields.get("email"),
                fields.get("role"), pwfile)
    mid = last_id(reg)
    r = api_add(admin, "api@example.org", **fields)
    if code is None:
        assert p.returncode == 0, p.stderr
        assert r.status == 201, r
        cli, api = audit(reg, start)[:mid - start], audit(reg, mid)
        assert len(cli) == len(api) == 1, (cli, api)
        assert cli[0][0] == api[0][0] == "user.add"
        assert (cli[0][1], api[0][1]) == ("cli@example.org",
                                         "api@example.org")
        assert cli[0][2:4] == api[0][2:4], (cli, api)
        assert cli[0][4].startswith("dirctl:") and cli[0][5] == "-", cli
        assert api[0][4:] == (ADMIN, "127.0.0.1"), api
        # What was stored is the same too.
        row = ("SELECT concat_ws('|', name, coalesce(email, '-'), role, "
               "password_hash IS NOT NULL) FROM users WHERE userid = '{}'")
        assert reg.sql(row.format("cli@example.org")) == \
            reg.sql(row.format("api@example.org"))
    else:
        assert r.status == 400 and r.code == code, (label, r)
        # A mistake on the command line: exit status 2, the same words.
        assert p.returncode == 2, (label, p.returncode, p.stderr)
        assert r.json()["error"]["message"] in p.stderr, (r, p.stderr)
        assert audit(reg, start) == []
        assert reg.sql("SELECT count(*) FROM users WHERE userid IN "
                       "('cli@example.org', 'api@example.org')") == "0"


def test_user_add_conflict_and_userid_rule_are_shared(reg, admin):
    reg.ctl("user", "add", "dup@example.org", "--name", "Dup")
    for uid in ("dup@example.org", "DUP@Example.ORG"):
        p = ctl_add(reg, uid, "Again")
        r = api_add(admin, uid, "Again")
        assert p.returncode == 1 and r.status == 409, (p.stderr, r)
        assert r.json()["error"]["message"] in p.stderr, (r, p.stderr)
    for uid in ("not-an-id", "a@b@c.org", "u" * 243 + "@example.org"):
        p = ctl_add(reg, uid, "X")
        r = api_add(admin, uid, "X")
        assert p.returncode == 2 and r.status == 400, (p.stderr, r)
        assert r.code in ("invalid_userid", "too_long"), r
        assert r.json()["error"]["message"] in p.stderr, (r, p.stderr)


def test_enable_disable_revoke_code_write_the_same_audit(reg, admin):
    """Disable, enable, a code, revoking one certificate and every
    certificate of a user: dirctl and the API write the same actions with
    the same details; only the actor and the source differ."""
    cli = reg.user("cli@example.org")
    api = reg.user("api@example.org")
    start = last_id(reg)
    reg.ctl("user", "disable", cli.userid)
    reg.ctl("user", "enable", cli.userid)
    reg.ctl("code", cli.userid, "--ttl", "10m")
    reg.ctl("cert", "revoke", cli.serial, "--reason", "superseded")
    reg.ctl("cert", "revoke", cli.serial, "--reason", "keyCompromise")
    reg.ctl("cert", "revoke", "--user", cli.userid)
    mid = last_id(reg)
    base = f"{USERS}/{api.userid}"
    for method, path, body in (
            ("POST", f"{base}/disable", None),
            ("POST", f"{base}/enable", None),
            ("POST", f"{base}/codes", {"ttl": 600}),
            ("POST", f"/v1/admin/certificates/{api.serial}/revoke",
             {"reason": "superseded"}),
            ("POST", f"/v1/admin/certificates/{api.serial}/revoke",
             {"reason": "keyCompromise"}),
            ("POST", f"{base}/revoke", {})):
        r = admin.req(method, path, json_body=body)
        assert r.status in (200, 201), (path, r)
    a_cli, a_api = audit(reg, start)[:mid - start], audit(reg, mid)
    assert len(a_cli) == len(a_api) == 5, (a_cli, a_api)

    def same(row, serial, userid):
        action, target, ser, detail = row[:4]
        return (action, target.replace(userid, "U"),
                ser.replace(serial, "S"), detail)

    assert [same(x, cli.serial, cli.userid) for x in a_cli] == \
        [same(x, api.serial, api.userid) for x in a_api]
    assert [x[0] for x in a_cli] == ["user.disable", "user.enable",
                                     "code.create", "cert.revoke",
                                     "cert.revoke"], a_cli
    assert all(x[4].startswith("dirctl:") and x[5] == "-" for x in a_cli)
    assert all(x[4:] == (ADMIN, "127.0.0.1") for x in a_api), a_api


def test_the_limits_of_a_code_are_shared(reg, admin):
    reg.ctl("user", "add", "cody@example.org", "--name", "Cody")
    for secs, ok in ((59, False), (60, True), (30 * 86400, True),
                     (30 * 86400 + 1, False)):
        p = reg.ctl("code", "cody@example.org", "--ttl", f"{secs}s",
                    check=False)
        r = admin.req("POST", f"{USERS}/cody@example.org/codes",
                      json_body={"ttl": secs})
        if ok:
            assert p.returncode == 0 and r.status == 201, (secs, p, r)
        else:
            assert p.returncode == 2 and r.status == 400, (secs, p, r)
            assert r.code == "invalid_value", r
            assert r.json()["error"]["message"] in p.stderr, (r, p.stderr)


def test_a_holder_revokes_only_their_own(reg):
    """The owner check lives with the revocation: a user who is not an
    administrator is refused another's certificate, and their own
    revocation is audited with them as the actor."""
    ann = reg.user("ann@example.org")
    ben = reg.user("ben@example.org")
    start = last_id(reg)
    r = ann.req("POST", f"/v1/certificates/{ben.serial}/revoke",
                json_body={})
    assert r.status == 403 and r.code == "forbidden", r
    assert audit(reg, start) == []
    r = ann.req("POST", f"/v1/certificates/{ann.serial}/revoke",
                json_body={"reason": "superseded"})
    assert r.status == 200, r
    rows = audit(reg, start)
    assert [(x[0], x[2], x[4], x[5]) for x in rows] == \
        [("cert.revoke", ann.serial, ann.userid, "127.0.0.1")], rows


def test_dirctl_reads_its_secret_files_before_the_database(reg,
                                                          tmpdir_shared):
    """A password file that cannot be read is a usage error, and nothing
    was written."""
    before = reg.digest()
    p = reg.ctl("user", "add", "x@example.org", "--name", "X",
                "--password-file", os.path.join(tmpdir_shared, "none"),
                check=False)
    assert p.returncode == 2, p
    assert reg.digest() == before


# ---- a user's own data: addresses, backup, certificates ----------------


def pwfile(tmpdir, words):
    path = os.path.join(tmpdir, "pw")
    with open(path, "w") as f:
        f.write(words + "\n")
    return path


def metric(d, name):
    m = re.search(rf"^{name} (\d+)$", d.metrics(), re.M)
    return int(m.group(1)) if m else None


def p12_of(user, tmpdir, words):
    """A PKCS#12 of user's key and certificate, as dchat would back up."""
    path = os.path.join(tmpdir, user.userid.split("@")[0] + ".p12")
    openssl("pkcs12", "-export", "-inkey", user.key, "-in", user.cert,
            "-out", path, "-passout", f"pass:{words}")
    with open(path, "rb") as f:
        return f.read()


def addrs_of(looker, userid):
    """The (ip, port, kind) of userid's devices, as looker's lookup says."""
    r = looker.req("GET", f"/v1/users/{userid}")
    assert r.status == 200, r
    return {(a["ip"], a["port"], a["kind"])
            for d in r.json()["devices"] for a in d["addresses"]}


def basic(userid, password):
    raw = base64.b64encode(f"{userid}:{password}".encode()).decode()
    return f"Authorization: Basic {raw}"


def test_a_user_changes_only_their_own_addresses_and_backup(reg,
                                                            tmpdir_shared):
    """Addresses and the backup belong to their user (the addresses to
    the certificate presented): nothing a user sends reaches another's,
    and the other's data reads back the same afterwards."""
    ann = reg.user("ann@example.org")
    ben = reg.user("ben@example.org")
    reg.ctl("user", "passwd", ben.userid, "--password-file",
            pwfile(tmpdir_shared, "ben's own words"))
    r = ben.req("PUT", "/v1/me/addresses", json_body={
        "addresses": [{"ip": "2001:db8::b", "port": 4605}]})
    assert r.status == 200, r
    bens_p12 = p12_of(ben, tmpdir_shared, "ben's backup")
    r = ben.req("PUT", "/v1/me/backup", body=bens_p12,
                ctype="application/x-pkcs12")
    assert r.status == 200, r
    bens_addrs = addrs_of(ann, ben.userid)
    assert ("2001:db8::b", 4605, "declared") in bens_addrs, bens_addrs
    bens_rows = reg.sql("SELECT string_agg(concat_ws('|', host(ip), port, "
                        "kind, expires_at), ',' ORDER BY ip, kind) "
                        "FROM addresses a JOIN users u ON u.id = a.user_id "
                        f"WHERE u.userid = '{ben.userid}'")
    start = last_id(reg)

    # There is no path to another user's addresses or backup.
    for method, path in (("PUT", f"/v1/users/{ben.userid}/addresses"),
                         ("DELETE", f"/v1/users/{ben.userid}/addresses"),
                         ("PUT", f"/v1/users/{ben.userid}/backup"),
                         ("GET", f"/v1/users/{ben.userid}/backup")):
        r = ann.req(method, path, json_body={"addresses": [
            {"ip": "192.0.2.66", "port": 1}]} if method == "PUT" else None)
        assert r.status in (404, 405), (method, path, r)
    # What ann sends to her own changes her own only.
    r = ann.req("PUT", "/v1/me/addresses", json_body={
        "addresses": [{"ip": "192.0.2.66", "port": 1}]})
    assert r.status == 200, r
    assert ann.req("DELETE", "/v1/me/addresses").status == 200
    anns_p12 = p12_of(ann, tmpdir_shared, "ann's backup")
    r = ann.req("PUT", "/v1/me/backup", body=anns_p12,
                ctype="application/x-pkcs12")
    assert r.status == 200, r
    # ann's certificate with ben's name, or ben's name with a wrong
    # password: her own backup, or nothing.
    r = ann.req("GET", "/v1/me/backup", raw_out=True,
                headers=[basic(ben.userid, "not ben's words")])
    assert r.status == 401 and r.body != bens_p12, r
    r = ann.req("GET", "/v1/me/backup", raw_out=True)
    assert r.status == 200 and r.body == anns_p12

    # ben's data reads back as it was.
    assert addrs_of(ann, ben.userid) == bens_addrs
    assert reg.sql("SELECT string_agg(concat_ws('|', host(ip), port, kind, "
                   "expires_at), ',' ORDER BY ip, kind) FROM addresses a "
                   "JOIN users u ON u.id = a.user_id "
                   f"WHERE u.userid = '{ben.userid}'") == bens_rows
    r = ben.req("GET", "/v1/me/backup", raw_out=True)
    assert r.status == 200 and r.body == bens_p12
    r = curl(reg.d, "GET", "/v1/me/backup", raw_out=True,
             headers=[basic(ben.userid, "ben's own words")])
    assert r.status == 200 and r.body == bens_p12
    # The audit log names ann for hers and ben for his own fetches only.
    rows = [(x[0], x[1], x[4]) for x in audit(reg, start)]
    assert ("backup.store", ann.userid, ann.userid) in rows, rows
    assert all(x[1] == x[2] for x in rows), rows
    assert not any(x[0].startswith("address") for x in rows), rows


def served_from_cache(looker, userid):
    """Look userid up until an answer comes from looker's dird's cache
    (two hits: the check and the lookup; a NOTIFY of a change before may
    still drop the entry once).  Returns that answer's addresses."""
    for _ in range(10):
        addrs_of(looker, userid)
        hits = metric(looker.d, "dird_cache_hits_total")
        got = addrs_of(looker, userid)
        if metric(looker.d, "dird_cache_hits_total") == hits + 2:
            return got
    raise AssertionError(f"{looker.d} never served a lookup from its cache")


def test_an_address_change_is_seen_at_once_here_and_soon_on_another(
        registry):
    """A dird that is the only cache on its database (cache = local)
    does not announce its writes: that its own lookup shows a new address
    on the very next request is reg_addr_end dropping the entry itself.
    A second dird on the same database (cache = off) reads the database,
    and announces its writes, which the first hears of by NOTIFY."""
    reg = registry("cache=local")
    other = Dird(reg.data, extra=["--set", "cache=off"]).start()
    try:
        wait_until(lambda: metric(reg.d, "dird_cache_serving") == 1,
                   "the cache to serve", 60)
        lee = reg.user("lee@example.org")
        mia = reg.user("mia@example.org")
        lee2, mia2 = copy.copy(lee), copy.copy(mia)
        lee2.d = mia2.d = other
        for i in range(3):
            ip = f"2001:db8::{i + 20:x}"
            assert not any(a[0] == ip for a in
                           served_from_cache(mia, lee.userid))
            r = lee.req("PUT", "/v1/me/addresses", json_body={
                "addresses": [{"ip": ip, "port": 4605}]})
            assert r.status == 200, r
            assert (ip, 4605, "declared") in addrs_of(mia, lee.userid)
            assert (ip, 4605, "declared") in addrs_of(mia2, lee.userid)
            # Through the other dird: heard of once PostgreSQL delivers.
            ip2 = f"2001:db8::{i + 40:x}"
            served_from_cache(mia, lee.userid)
            r = lee2.req("PUT", "/v1/me/addresses", json_body={
                "addresses": [{"ip": ip2, "port": 4605}]})
            assert r.status == 200, r
            wait_until(lambda: (ip2, 4605, "declared") in
                       addrs_of(mia, lee.userid),
                       f"{ip2} written on the other dird to be seen", 30,
                       interval=0.01)
        # The deletion too, at once where it was made.
        served_from_cache(mia, lee.userid)
        assert lee.req("DELETE", "/v1/me/addresses").status == 200
        assert addrs_of(mia, lee.userid) == set()
    finally:
        assert other.stop() == 0, other.read_log()


def test_issuing_for_another_user_is_refused(reg, tmpdir_shared):
    """A certificate is issued for its own user, or by an administrator:
    a user's renewal is for themselves whatever the CSR says, and the
    server-side key generation for another user is refused, with no
    certificate and no audit row."""
    ann = reg.user("ann@example.org")
    ben = reg.user("ben@example.org")

    def certs_of(userid):
        return int(reg.sql("SELECT count(*) FROM certificates c JOIN users "
                           f"u ON u.id = c.user_id WHERE u.userid = "
                           f"'{userid}'"))

    bens = certs_of(ben.userid)
    start = last_id(reg)
    r = ann.req("POST", f"{USERS}/{ben.userid}/p12",
                json_body={"passphrase": "long enough words"})
    assert r.status == 403 and r.code == "forbidden", r
    assert certs_of(ben.userid) == bens
    assert audit(reg, start) == []
    # A CSR that names ben: the certificate is ann's.
    key = os.path.join(tmpdir_shared, "ben-claim.key")
    csr = os.path.join(tmpdir_shared, "ben-claim.csr")
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", csr,
            "-subj", f"/CN=Ben/UID={ben.userid}/emailAddress={ben.userid}")
    with open(csr) as f:
        r = ann.req("POST", "/v1/renew", json_body={"csr": f.read()})
    assert r.status == 201, r
    assert r.json()["userid"] == ann.userid, r
    subject = openssl("x509", "-noout", "-subject", "-nameopt", "RFC2253",
                      input=r.json()["certificate"]).stdout
    assert ann.userid in subject and ben.userid not in subject, subject
    assert certs_of(ben.userid) == bens
    assert reg.sql("SELECT u.userid FROM certificates c JOIN users u ON "
                   f"u.id = c.user_id WHERE c.serial = "
                   f"'{r.json()['serial']}'") == ann.userid
    assert [(x[0], x[1], x[4]) for x in audit(reg, start)] == \
        [("renew", ann.userid, ann.userid)]
