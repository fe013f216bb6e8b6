"""One rule per change: `dirctl` and the admin API are two doors to the
same service layer.  Each test does the same thing through both and
compares what the registry answered and what it wrote in the audit log."""
import os

import pytest

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
