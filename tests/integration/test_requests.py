"""Enrolment requests an administrator approves (schema 009, reg.c's
reg_request_*).  Under the policy `approve` (dird.conf's enrol_policy
for everyone, or `dirctl user policy` for one user) an enrolment by code
or password issues nothing: the client is answered 202 with a token and
Retry-After, and polls GET /v1/requests/TOKEN; the administrator
approves or rejects with dirctl or the admin API; every step is in the
audit chain.  Done as clients do it: curl, openssl, dchat."""
import base64
import http.client
import json
import os
import re
import time

from conftest import (DOMAIN, User, client_ctx, curl, dchat_path, openssl,
                      spawn, stderr_of, wait_until)


def ask(reg, user, code):
    """POST /v1/enroll with user's CSR and a code over http.client: the
    status, the Retry-After header and the JSON body."""
    conn = http.client.HTTPSConnection("localhost", reg.d.port,
                                       context=client_ctx(reg.data),
                                       timeout=30)
    conn.request("POST", "/v1/enroll",
                 body=json.dumps({"csr": user.csr_pem()}),
                 headers={"Authorization": f"Bearer {code}",
                          "Content-Type": "application/json"})
    r = conn.getresponse()
    body = json.loads(r.read())
    conn.close()
    return r.status, r.getheader("Retry-After"), body


def poll(reg, token):
    return curl(reg.d, "GET", f"/v1/requests/{token}")


def listed(reg, *extra):
    """dirctl request list: {id: (status, userid, proof)}."""
    out = reg.ctl("request", "list", *extra).stdout
    rows = {}
    for line in out.splitlines():
        f = line.split()
        rows[int(f[0])] = (f[1], f[2], f[3])
    return rows


def audit_actions(reg):
    return reg.sql("SELECT action FROM audit_log WHERE action LIKE "
                   "'request.%' ORDER BY id").split()


def keep(user, body):
    """Store an issued certificate as user's, and check it is for user's
    key and chains to the registry's CA."""
    with open(user.cert, "w") as f:
        f.write(body["certificate"])
    user.serial = body["serial"]
    ca = os.path.join(user.d.data, "ca.pem")
    assert ": OK" in openssl("verify", "-CAfile", ca, user.cert).stdout
    pub = openssl("x509", "-in", user.cert, "-noout", "-pubkey").stdout
    assert pub == openssl("pkey", "-in", user.key, "-pubout").stdout


def test_approved_by_dirctl_the_client_gets_its_certificate(registry):
    reg = registry("enrol_policy=approve", "request_poll=2")
    ann = reg.user(f"ann@{DOMAIN}", enrol=False)
    code = reg.code(ann.userid)
    status, after, body = ask(reg, ann, code)
    assert status == 202, body
    assert after == "2"
    assert body["status"] == "pending"
    assert re.fullmatch(r"[0-9a-f]{64}", body["request"]), body
    token = body["request"]
    # The code is spent on the request: it can not make a second one.
    status, _, again = ask(reg, ann, code)
    assert status == 401 and again["error"]["code"] == "invalid_code"
    # Nothing is issued while it waits.
    r = poll(reg, token)
    assert r.status == 202 and r.json()["request"] == token, r
    assert reg.sql("SELECT count(*) FROM certificates").strip() == "0"
    rows = listed(reg)
    assert list(rows.values()) == [("pending", ann.userid, "code")], rows
    rid = next(iter(rows))
    shown = reg.ctl("request", "show", str(rid)).stdout
    assert ann.userid in shown and ann.csr_pem().strip() in shown
    out = reg.ctl("request", "approve", str(rid)).stdout
    m = re.search(r"certificate ([0-9a-f]+) issued to (\S+)", out)
    assert m and m.group(2) == ann.userid, out
    r = poll(reg, token)
    assert r.status == 200, r
    assert r.json()["serial"] == m.group(1)
    keep(ann, r.json())
    assert ann.req("GET", "/v1/me").status == 200
    # Decided once: approving again is refused, and changes nothing.
    before = reg.digest()
    p = reg.ctl("request", "approve", str(rid), check=False)
    assert p.returncode == 1 and "not pending" in p.stderr, p.stderr
    assert reg.digest() == before
    assert listed(reg) == {}
    assert listed(reg, "--all")[rid][0] == "approved"
    assert audit_actions(reg) == ["request.submit", "request.approve"]
    reg.ctl("audit", "verify")


def test_rejected_gets_a_clear_error_and_others_enrol_at_once(registry):
    """A policy of one user's own: their enrolment waits, and the
    rejection (with the administrator's reason) is what their poll
    says; another user, on the registry's default (auto), enrols at
    once."""
    reg = registry("request_poll=1")
    bob = reg.user(f"bob@{DOMAIN}", enrol=False)
    reg.ctl("user", "policy", bob.userid, "approve")
    status, _, body = ask(reg, bob, reg.code(bob.userid))
    assert status == 202, body
    rid = next(iter(listed(reg)))
    reg.ctl("request", "reject", str(rid), "--reason", "not a device of ours")
    r = poll(reg, body["request"])
    assert r.status == 403 and r.code == "request_rejected", r
    assert "not a device of ours" in r.json()["error"]["message"]
    assert reg.sql("SELECT count(*) FROM certificates").strip() == "0"
    p = reg.ctl("request", "reject", str(rid), check=False)
    assert p.returncode == 1 and "not pending" in p.stderr
    # The registry's default is auto: carl is issued at once.
    carl = reg.user(f"carl@{DOMAIN}")
    assert carl.req("GET", "/v1/me").status == 200
    # Back to the default: bob enrols at once too.
    reg.ctl("user", "policy", bob.userid, "default")
    bob.enrol(reg.code(bob.userid))
    assert audit_actions(reg) == ["request.submit", "request.reject"]
    assert reg.sql("SELECT count(*) FROM audit_log WHERE action = "
                   "'user.policy'").strip() == "2"
    reg.ctl("audit", "verify")
    # Bad input to the commands: usage errors, nothing changed.
    before = reg.digest()
    for args in (("user", "policy", bob.userid, "sometimes"),
                 ("request", "approve", "0"), ("request", "show", "x"),
                 ("request", "reject", "1", "--reason", "a\tb")):
        p = reg.ctl(*args, check=False)
        assert p.returncode == 2, (args, p.stderr)
    p = reg.ctl("request", "show", "999", check=False)
    assert p.returncode == 1 and "no such request" in p.stderr
    assert reg.digest() == before


def test_a_request_not_decided_in_time_expires(registry):
    reg = registry("enrol_policy=approve")
    dan = reg.user(f"dan@{DOMAIN}", enrol=False)
    status, _, body = ask(reg, dan, reg.code(dan.userid))
    assert status == 202
    rid = next(iter(listed(reg)))
    reg.sql("UPDATE cert_requests SET created_at = now() - interval "
            "'2 days', expires_at = now() - interval '1 day'")
    r = poll(reg, body["request"])
    assert r.status == 410 and r.code == "request_expired", r
    assert listed(reg) == {}
    assert listed(reg, "--all")[rid][0] == "expired"
    p = reg.ctl("request", "approve", str(rid), check=False)
    assert p.returncode == 1 and "expired" in p.stderr, p.stderr
    assert reg.sql("SELECT count(*) FROM certificates").strip() == "0"
    # An unknown token, and one that is not a token at all.
    assert poll(reg, "0" * 64).status == 404
    assert poll(reg, "nonsense").status == 404


def test_the_admin_api_decides_and_others_may_not(registry):
    reg = registry("enrol_policy=approve", "request_poll=1")
    # The administrator enrols before the policy is in force for them.
    admin = reg.user(f"root@{DOMAIN}", admin=True, enrol=False)
    reg.ctl("user", "policy", admin.userid, "auto")
    admin.enrol(reg.code(admin.userid))
    eve = reg.user(f"eve@{DOMAIN}", enrol=False)
    reg.ctl("user", "policy", eve.userid, "auto")
    eve.enrol(reg.code(eve.userid))
    fay = reg.user(f"fay@{DOMAIN}", enrol=False)
    gus = reg.user(f"gus@{DOMAIN}", enrol=False)
    tokens = {}
    for u in (fay, gus):
        status, _, body = ask(reg, u, reg.code(u.userid))
        assert status == 202
        tokens[u.userid] = body["request"]
    r = admin.req("GET", "/v1/admin/requests")
    assert r.status == 200, r
    reqs = {q["userid"]: q for q in r.json()["requests"]}
    assert set(reqs) == {fay.userid, gus.userid}
    assert reqs[fay.userid]["status"] == "pending"
    assert reqs[fay.userid]["source"] == "127.0.0.1"
    fid, gid = reqs[fay.userid]["id"], reqs[gus.userid]["id"]
    # Not an administrator: refused, and nothing decided.
    for method, path, body in (
            ("GET", "/v1/admin/requests", None),
            ("POST", f"/v1/admin/requests/{fid}/approve", None),
            ("POST", f"/v1/admin/requests/{fid}/reject", {})):
        r = eve.req(method, path, json_body=body)
        assert r.status == 403, (path, r)
    assert poll(reg, tokens[fay.userid]).status == 202
    r = admin.req("POST", f"/v1/admin/requests/{fid}/approve")
    assert r.status == 200 and r.json()["status"] == "approved", r
    assert r.json()["decided_by"] == admin.userid
    serial = r.json()["serial"]
    r = poll(reg, tokens[fay.userid])
    assert r.status == 200 and r.json()["serial"] == serial, r
    keep(fay, r.json())
    r = admin.req("POST", f"/v1/admin/requests/{gid}/reject",
                  json_body={"reason": "ask your manager"})
    assert r.status == 200 and r.json()["status"] == "rejected", r
    r = poll(reg, tokens[gus.userid])
    assert r.status == 403 and "ask your manager" in r.body, r
    # Bad input: clear errors.
    for method, path, body, status, code in (
            ("POST", "/v1/admin/requests/abc/approve", None, 400,
             "invalid_request_id"),
            ("POST", "/v1/admin/requests/0/approve", None, 400,
             "invalid_request_id"),
            ("POST", "/v1/admin/requests/999/approve", None, 404,
             "unknown_request"),
            ("POST", f"/v1/admin/requests/{gid}/approve", None, 409,
             "not_pending"),
            ("POST", f"/v1/admin/requests/{fid}/reject", {"reason": 7},
             400, "wrong_type")):
        r = admin.req(method, path, json_body=body)
        assert r.status == status and r.code == code, (path, r)
    reg.ctl("audit", "verify")


def test_dchat_init_waits_for_the_decision(registry, tmpdir_shared):
    reg = registry("enrol_policy=approve", "request_poll=1")
    reg.add(f"hal@{DOMAIN}")
    home = os.path.join(tmpdir_shared, "hal")
    p = spawn([dchat_path(), "--home", home, "init", "--server", reg.d.url,
               "--user", f"hal@{DOMAIN}", "--code", reg.code(f"hal@{DOMAIN}"),
               "--ca-fingerprint", reg.fingerprint], tmpdir_shared,
              stdout=open(os.path.join(tmpdir_shared, "init.out"), "w"))
    wait_until(lambda: "approval" in stderr_of(p),
               "dchat init to say it waits", timeout=60)
    assert "waiting for the decision" in stderr_of(p)
    assert p.poll() is None
    rid = next(iter(listed(reg)))
    reg.ctl("request", "approve", str(rid))
    assert p.wait(60) == 0, stderr_of(p)
    with open(os.path.join(tmpdir_shared, "init.out")) as f:
        out = f.read()
    assert out.startswith(f"enrolled as hal@{DOMAIN}"), out
    # The device holds a certificate for its own key.
    hal = User(reg.d, f"hal@{DOMAIN}", tmpdir_shared)
    hal.cert = os.path.join(home, "cert.pem")
    hal.key = os.path.join(home, "key.pem")
    assert hal.req("GET", "/v1/me").status == 200
    # A rejected one: init ends with the reason.
    reg.add(f"ivy@{DOMAIN}")
    q = spawn([dchat_path(), "--home", os.path.join(tmpdir_shared, "ivy"),
               "init", "--server", reg.d.url, "--user", f"ivy@{DOMAIN}",
               "--code", reg.code(f"ivy@{DOMAIN}"), "--ca-fingerprint",
               reg.fingerprint], tmpdir_shared)
    wait_until(lambda: len(listed(reg)) == 1, "ivy's request", timeout=60)
    t0 = time.monotonic()
    reg.ctl("request", "reject", str(next(iter(listed(reg)))), "--reason",
            "unknown person")
    assert q.wait(60) == 1
    assert time.monotonic() - t0 < 30
    err = stderr_of(q)
    assert "rejected" in err and "unknown person" in err, err


def test_requests_by_password_are_bounded(registry, tmpdir_shared):
    """A password can ask again and again, a code only once: at most 8
    requests of one user wait at once; the next is 429 with
    Retry-After, and nothing more is stored."""
    reg = registry("enrol_policy=approve", "request_poll=5")
    pw = os.path.join(tmpdir_shared, "pw")
    with open(pw, "w") as f:
        f.write("a long enough password\n")
    reg.add(f"joy@{DOMAIN}", "Joy", "--password-file", pw)
    joy = User(reg.d, f"joy@{DOMAIN}", tmpdir_shared)

    def enrol():
        return curl(reg.d, "POST", "/v1/enroll",
                    headers=["Authorization: Basic " + base64.b64encode(
                        f"{joy.userid}:a long enough password".encode()
                    ).decode()], json_body={"csr": joy.csr_pem()})

    for i in range(8):
        r = enrol()
        assert r.status == 202 and r.json()["status"] == "pending", (i, r)
    assert list(listed(reg).values()) == [
        ("pending", joy.userid, "password")] * 8
    r = enrol()
    assert r.status == 429 and r.code == "too_many_requests", r
    assert len(listed(reg)) == 8
    # One decided: room for one more.
    reg.ctl("request", "reject", str(next(iter(listed(reg)))))
    assert enrol().status == 202


def test_a_page_of_another_site_can_not_decide(registry):
    """An administrator's browser presents their certificate to any page
    that posts here: a request a browser marks as coming from another
    site (Origin, Sec-Fetch-Site) changes nothing; the same from the
    registry's own origin, or from a program (no such headers), does."""
    reg = registry("enrol_policy=approve")
    admin = reg.user(f"root@{DOMAIN}", admin=True, enrol=False)
    reg.ctl("user", "policy", admin.userid, "auto")
    admin.enrol(reg.code(admin.userid))
    kay = reg.user(f"kay@{DOMAIN}", enrol=False)
    assert ask(reg, kay, reg.code(kay.userid))[0] == 202
    rid = next(iter(listed(reg)))
    path = f"/v1/admin/requests/{rid}/approve"
    before = reg.digest()
    for hdrs in (["Origin: https://evil.example"], ["Origin: null"],
                 ["Sec-Fetch-Site: cross-site"],
                 ["Sec-Fetch-Site: same-site"],
                 [f"Origin: https://localhost:{reg.d.port}.evil.example"]):
        r = admin.req("POST", path, headers=hdrs)
        assert r.status == 403 and r.code == "cross_origin", (hdrs, r)
        r = admin.req("POST", f"/v1/admin/users/{kay.userid}/disable",
                      headers=hdrs)
        assert r.status == 403 and r.code == "cross_origin", (hdrs, r)
    assert reg.digest() == before
    # Reading is not a change: a GET from anywhere is answered.
    r = admin.req("GET", "/v1/admin/requests",
                  headers=["Sec-Fetch-Site: cross-site"])
    assert r.status == 200, r
    r = admin.req("POST", path, headers=[
        f"Origin: https://localhost:{reg.d.port}",
        "Sec-Fetch-Site: same-origin"])
    assert r.status == 200 and r.json()["status"] == "approved", r
