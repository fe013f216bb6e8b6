"""Group commit (dird/commit.c): the address writes of requests that
arrive together (and the records of certificates renewed or enrolled
for, with the codes they consume) share one transaction and one commit,
and each is answered only after that commit; a group that fails is tried
again write by write, so that one bad write fails alone.  The requests
are made with plain curl, several at a time."""
import json
import os
import re
import subprocess

from conftest import DOMAIN, curl, make_csr, openssl, wait_until


def metric(d, name):
    m = re.search(rf"^{name} (\d+)$", d.metrics(), re.M)
    return int(m.group(1)) if m else None


def since(d, before=None):
    """The group committer's writes, batches and retries, less those of
    before (the users' enrolments go through it too)."""
    now = [metric(d, f"dird_commit_{n}_total")
           for n in ("writes", "batches", "retried")]
    return now if before is None else [a - b for a, b in zip(now, before)]


class Request:
    """A request with a JSON body in a curl process of its own, so that
    many can be under way at once: with user's certificate, or with
    the credentials in auth (an Authorization header) and out in
    directory outdir."""

    def __init__(self, d, user, method, path, body, name, auth=None,
                 outdir=None):
        self.out = os.path.join(outdir or user.dir, f"{name}.out")
        who = (["-H", f"Authorization: {auth}"] if auth else
               ["--cert", user.cert, "--key", user.key])
        self.proc = subprocess.Popen(
            ["curl", "-sS", "-o", self.out, "-w", "%{http_code}", "-X",
             method, "--cacert", os.path.join(d.data, "ca.pem"), *who,
             "-H", "Content-Type: application/json", "--data-binary",
             json.dumps(body), d.url + path],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def result(self, timeout=60):
        out, err = self.proc.communicate(timeout=timeout)
        assert self.proc.returncode == 0, err
        with open(self.out) as f:
            return int(out.decode()[-3:]), json.loads(f.read())


def put_addr(d, user, ip, ttl=600):
    """PUT /v1/me/addresses of one address."""
    return Request(d, user, "PUT", "/v1/me/addresses",
                   {"addresses": [{"ip": ip, "port": 4605}], "ttl": ttl},
                   f"put-{ip}")


def post(d, user, path, body, name):
    return Request(d, user, "POST", path, body, name)


def enrol(reg, userid, code, name):
    """POST /v1/enroll with an enrolment code and a new key's CSR; the
    Request and the key's file."""
    key, csr = make_csr(reg.base, name)
    with open(csr) as f:
        body = {"csr": f.read()}
    return Request(reg.d, None, "POST", "/v1/enroll", body, name,
                   auth=f"Bearer {code}", outdir=reg.base), key


def stored(reg, userid):
    """The declared addresses of userid's devices, as the database has
    them."""
    out = reg.sql("SELECT host(a.ip) FROM addresses a JOIN users u ON "
                  f"u.id = a.user_id WHERE u.userid = '{userid}' AND "
                  "a.kind = 'declared' ORDER BY 1")
    return out.split()


def test_writes_that_arrive_together_share_one_commit(registry):
    # A window long enough that the six requests surely meet in it.
    reg = registry("commit_window_us=1000000")
    users = [reg.user(f"g{i}@{DOMAIN}") for i in range(6)]
    before = since(reg.d)
    puts = [put_addr(reg.d, u, f"192.0.2.{i + 1}")
            for i, u in enumerate(users)]
    got = [p.result() for p in puts]
    for i, (status, body) in enumerate(got):
        assert status == 200, body
        assert body["addresses"][0]["ip"] == f"192.0.2.{i + 1}"
        assert body["ttl"] == 600
    # Each answer came after its write was committed: it is there.
    for i, u in enumerate(users):
        assert stored(reg, u.userid) == [f"192.0.2.{i + 1}"]
    writes, batches, retried = since(reg.d, before)
    assert writes == 6
    assert 1 <= batches < writes, (batches, writes)
    assert retried == 0
    # A lookup right after shows the new address (the cache was told).
    r = users[1].req("GET", f"/v1/users/{users[0].userid}")
    assert r.status == 200, r
    ips = [a["ip"] for dev in r.json()["devices"] for a in dev["addresses"]]
    assert "192.0.2.1" in ips


def test_a_group_that_fails_is_tried_write_by_write(registry):
    """One write of a group can not be stored (its certificate was
    deleted after it was authenticated): the group fails as a whole, each
    write is tried alone, and only that one fails; the other's is
    stored and acknowledged."""
    reg = registry("commit_window_us=1000000")
    a, b = reg.user(f"ann@{DOMAIN}"), reg.user(f"ben@{DOMAIN}")
    assert a.req("PUT", "/v1/me/addresses", json_body={
        "addresses": [{"ip": "198.51.100.1", "port": 4605}]}).status == 200
    pa = put_addr(reg.d, a, "203.0.113.1")
    pb = put_addr(reg.d, b, "203.0.113.2")
    wait_until(lambda: metric(reg.d, "dird_commit_queued") == 2,
               "both writes to wait for their group", timeout=30)
    reg.sql("DELETE FROM certificates WHERE user_id = (SELECT id FROM "
            f"users WHERE userid = '{a.userid}')")
    (sa, ba), (sb, bb) = pa.result(), pb.result()
    assert sa >= 400 and "error" in ba, (sa, ba)
    assert sb == 200, bb
    assert stored(reg, b.userid) == ["203.0.113.2"]
    assert stored(reg, a.userid) == []
    assert metric(reg.d, "dird_commit_retried_total") == 2
    assert "tried alone" in reg.d.read_log()


def test_one_device_writing_twice_at_once_keeps_the_last(registry):
    """Two writes of one device never share a statement (it may not
    write a row twice): the second waits for the next group."""
    reg = registry("commit_window_us=300000")
    u = reg.user(f"twice@{DOMAIN}")
    before = since(reg.d)
    first = put_addr(reg.d, u, "192.0.2.10")
    wait_until(lambda: metric(reg.d, "dird_commit_queued") == 1,
               "the first write to wait", timeout=30)
    second = put_addr(reg.d, u, "192.0.2.11")
    assert first.result()[0] == 200
    assert second.result()[0] == 200
    assert stored(reg, u.userid) == ["192.0.2.11"]
    assert since(reg.d, before)[1] == 2


def test_commit_batch_one_writes_each_alone(registry):
    reg = registry("commit_batch=1")
    u = reg.user(f"solo@{DOMAIN}")
    r = u.req("PUT", "/v1/me/addresses", json_body={
        "addresses": [{"ip": "192.0.2.20", "port": 4605}]})
    assert r.status == 200, r
    assert stored(reg, u.userid) == ["192.0.2.20"]
    # No group committer: none of its figures.
    assert metric(reg.d, "dird_commit_writes_total") is None


def test_renewals_share_a_commit_and_the_audit_chain_holds(registry):
    """Renewals that arrive together (beside an address refresh) have
    their certificates recorded in one transaction; each answer comes
    after it, every certificate is stored and works, and the audit log's
    chains still verify."""
    reg = registry("commit_window_us=1000000")
    users = [reg.user(f"re{i}@{DOMAIN}") for i in range(4)]
    csrs = []
    for u in users:
        key, csr = make_csr(u.dir, u.userid.split("@")[0] + "-new")
        with open(csr) as f:
            csrs.append((key, f.read()))
    before = since(reg.d)
    posts = [post(reg.d, u, "/v1/renew", {"csr": csr}, f"renew{i}")
             for i, (u, (_, csr)) in enumerate(zip(users, csrs))]
    put = put_addr(reg.d, users[0], "192.0.2.30")
    got = [p.result() for p in posts]
    assert put.result()[0] == 200
    ca = os.path.join(reg.data, "ca.pem")
    for i, (status, body) in enumerate(got):
        assert status == 201, body
        assert body["userid"] == users[i].userid
        pem = os.path.join(users[i].dir, f"renewed{i}.pem")
        with open(pem, "w") as f:
            f.write(body["certificate"])
        assert ": OK" in openssl("verify", "-CAfile", ca, pem).stdout
        # Stored: the new certificate is one the registry knows.
        r = curl(reg.d, "GET", "/v1/me", cert=pem, key=csrs[i][0])
        assert r.status == 200 and r.json()["serial"] == body["serial"], r
    writes, batches, retried = since(reg.d, before)
    assert writes == 5 and batches < writes, (batches, writes)
    assert retried == 0
    assert reg.sql("SELECT count(*) FROM audit_log WHERE action = "
                   "'renew'").strip() == "4"
    reg.ctl("audit", "verify")


def test_a_write_waiting_for_its_group_is_committed_when_dird_stops(
        registry):
    """SIGTERM while a write waits for its group: the group commits, the
    request is answered 200, its row is there, and dird exits 0
    (libmicrohttpd may not be stopped while a connection sleeps)."""
    reg = registry("commit_window_us=1000000")
    u = reg.user(f"last@{DOMAIN}")
    p = put_addr(reg.d, u, "192.0.2.40")
    wait_until(lambda: metric(reg.d, "dird_commit_queued") == 1,
               "the write to wait for its group", timeout=30)
    rc = reg.d.stop()
    assert p.result()[0] == 200
    assert rc == 0
    assert stored(reg, u.userid) == ["192.0.2.40"]
    reg.d = None


def test_code_enrolments_share_a_commit_with_their_codes(registry):
    """Enrolments by code that arrive together have their certificates
    recorded, and their codes consumed, in one transaction; each answer
    comes after it; every certificate works, every code is used up, and
    the audit log's chains verify."""
    reg = registry("commit_window_us=1000000")
    ids = [f"new{i}@{DOMAIN}" for i in range(4)]
    for u in ids:
        reg.add(u)
    reqs = [enrol(reg, u, reg.code(u), f"new{i}") for i, u in enumerate(ids)]
    ca = os.path.join(reg.data, "ca.pem")
    for i, (r, key) in enumerate(reqs):
        status, body = r.result()
        assert status == 201, body
        assert body["userid"] == ids[i]
        pem = os.path.join(reg.base, f"new{i}.pem")
        with open(pem, "w") as f:
            f.write(body["certificate"])
        assert ": OK" in openssl("verify", "-CAfile", ca, pem).stdout
        r = curl(reg.d, "GET", "/v1/me", cert=pem, key=key)
        assert r.status == 200 and r.json()["userid"] == ids[i], r
    writes, batches, retried = since(reg.d)
    assert writes == 4 and batches < writes, (batches, writes)
    assert retried == 0
    assert reg.sql("SELECT count(*) FROM enrol_codes WHERE used_at IS "
                   "NULL").strip() == "0"
    assert reg.sql("SELECT count(*) FROM audit_log WHERE action = "
                   "'enroll.code'").strip() == "4"
    reg.ctl("audit", "verify")


def test_one_code_in_two_requests_of_a_group_issues_once(registry):
    """Two requests with one code, both checked before either is
    committed: the group fails (the code can be consumed once), each is
    tried alone, and exactly one certificate is recorded; the other
    request is told its code is used, and nothing of it is stored."""
    reg = registry("commit_window_us=1000000")
    uid = f"twin@{DOMAIN}"
    reg.add(uid)
    code = reg.code(uid)
    twins = [enrol(reg, uid, code, f"twin{i}") for i in range(2)]
    wait_until(lambda: metric(reg.d, "dird_commit_queued") == 2,
               "both enrolments to wait for their group", timeout=30)
    got = sorted([(r.result(), key) for r, key in twins],
                 key=lambda x: x[0][0])
    (won, key), (lost, _) = got
    assert won[0] == 201, got
    assert lost[0] == 401 and lost[1]["error"]["code"] == "invalid_code", \
        got
    assert reg.sql("SELECT count(*) FROM certificates c JOIN users u ON "
                   f"u.id = c.user_id WHERE u.userid = '{uid}'"
                   ).strip() == "1"
    # The one recorded is the one answered 201.
    pem = os.path.join(reg.base, "twin.pem")
    with open(pem, "w") as f:
        f.write(won[1]["certificate"])
    r = curl(reg.d, "GET", "/v1/me", cert=pem, key=key)
    assert r.status == 200 and r.json()["serial"] == won[1]["serial"], r
    assert reg.sql("SELECT count(*) FROM audit_log WHERE action = "
                   "'enroll.code'").strip() == "1"
    assert metric(reg.d, "dird_commit_retried_total") == 2
    reg.ctl("audit", "verify")


def test_revocations_share_a_commit_and_one_crl(registry):
    """Revocations that arrive together are written in one transaction
    with one new CRL for all of them (the CRL's number grows by one per
    group, not per revocation); each answer comes after it, the CRL
    lists every serial and verifies, the revoked certificates are
    refused at once, and the audit log's chains verify."""
    reg = registry("commit_window_us=1000000")
    users = [reg.user(f"rv{i}@{DOMAIN}") for i in range(4)]

    def crl_number():
        return int(reg.sql("SELECT coalesce(max(number), 0) FROM "
                           "crl_state").strip())

    number = crl_number()
    before = since(reg.d)
    posts = [post(reg.d, u, f"/v1/certificates/{u.serial}/revoke",
                  {"reason": "superseded"}, f"revoke{i}")
             for i, u in enumerate(users)]
    for i, p in enumerate(posts):
        status, body = p.result()
        assert status == 200, body
        assert body["serial"] == users[i].serial, body
        assert body["status"] == "revoked", body
    writes, batches, retried = since(reg.d, before)
    assert writes == 4 and batches < writes, (batches, writes)
    assert retried == 0
    assert 1 <= crl_number() - number == batches, (crl_number(), number)
    # The CRL as a client fetches it: signed by the CA, every serial.
    crl = os.path.join(reg.base, "grouped.crl")
    with open(crl, "wb") as f:
        f.write(curl(reg.d, "GET", "/v1/crl", raw_out=True).body)
    p = openssl("crl", "-inform", "DER", "-in", crl, "-CAfile",
                os.path.join(reg.data, "ca.pem"), "-noout", "-verify")
    assert "verify OK" in p.stdout + p.stderr
    text = openssl("crl", "-inform", "DER", "-in", crl, "-noout",
                   "-text").stdout.replace(":", "").upper()
    for u in users:
        assert u.serial.upper().lstrip("0") in text, u.serial
        assert u.req("GET", "/v1/me").status == 401
    assert reg.sql("SELECT count(*) FROM audit_log WHERE action = "
                   "'cert.revoke'").strip() == "4"
    reg.ctl("audit", "verify")


def test_a_second_revocation_in_one_group_waits_and_is_refused(registry):
    """One certificate revoked twice at once: the two never share a
    group (the second would fail it); the first is answered 200, the
    second 409, and the certificate is revoked once."""
    reg = registry("commit_window_us=300000")
    u = reg.user(f"again@{DOMAIN}")
    before = since(reg.d)
    path = f"/v1/certificates/{u.serial}/revoke"
    a = post(reg.d, u, path, {"reason": "superseded"}, "first")
    wait_until(lambda: metric(reg.d, "dird_commit_queued") == 1,
               "the first revocation to wait", timeout=30)
    b = post(reg.d, u, path, {"reason": "superseded"}, "second")
    got = sorted([a.result()[0], b.result()[0]])
    writes, batches, retried = since(reg.d, before)
    if got == [200, 409]:
        # Two groups, one after the other; none failed.
        assert (writes, batches, retried) == (2, 2, 0)
    else:
        # The second came when its certificate was revoked already.
        assert got == [200, 401] and writes == 1, (got, writes)
    assert reg.sql("SELECT count(*) FROM audit_log WHERE action = "
                   "'cert.revoke'").strip() == "1"
