"""dird's answer cache (dird/cache.c): lookups and certificate checks
answered from memory, and never once the data changed.

Changes made through the dird that caches must be visible on the very
next request; changes made elsewhere (dirctl, SQL, another dird) arrive
by NOTIFY, a moment after their commit: those are polled for, with a
bound, and the delay is printed."""
import http.client
import json
import os
import re
import subprocess
import threading
import time

import pytest

from conftest import (Dird, Lines, User, client_ctx, dirctl, dird_path,
                      free_port, rfc3339, run, wait_until)

REG_SETTINGS = ("cache=local",)


def metric(d, name):
    m = re.search(rf"^{name} (\d+)$", d.metrics(), re.M)
    return int(m.group(1)) if m else None


def wait_serving(d, timeout=60):
    wait_until(lambda: metric(d, "dird_cache_serving") == 1,
               "the cache to start serving", timeout)


def cached_lookup(who, userid):
    """Look userid up twice; the second answer must come from the cache
    (two hits: the caller's certificate check and the lookup; a refusal
    is not kept, so one) and be the same bytes.  Returns it."""
    first = who.req("GET", f"/v1/users/{userid}")
    hits = metric(who.d, "dird_cache_hits_total")
    second = who.req("GET", f"/v1/users/{userid}")
    assert metric(who.d, "dird_cache_hits_total") == \
        hits + (2 if first.status == 200 else 1)
    assert (second.status, second.body) == (first.status, first.body)
    return second


def until(check, what, timeout=30.0):
    """Poll check() until true, for changes that travel by NOTIFY; says
    on which check (one request each) it was seen.  The deadline is for a
    loaded machine; how soon is printed."""
    t0 = time.monotonic()
    tries = []

    def counted():
        tries.append(1)
        return check()
    wait_until(counted, what, timeout, interval=0.01)
    tries = len(tries)
    print(f"{what}: seen on check {tries}, "
          f"{(time.monotonic() - t0) * 1000:.0f} ms")


def ips(r):
    return {a["ip"] for d in r.json()["devices"] for a in d["addresses"]}


def put_addr(user, ip):
    r = user.req("PUT", "/v1/me/addresses", json_body={
        "addresses": [{"ip": ip, "port": 4605}]})
    assert r.status == 200, r


def renew(user, dev):
    """Certify device dev's key by a renewal of user's: dev uses the new
    certificate from here on."""
    r = user.req("POST", "/v1/renew", json_body={"csr": dev.csr_pem()})
    assert r.status == 201, r
    dev.serial = r.json()["serial"]
    with open(dev.cert, "w") as f:
        f.write(r.json()["certificate"])


@pytest.fixture
def reg(reg):
    """conftest's registry, once its cache serves."""
    wait_serving(reg.d)
    return reg


def test_own_writes_drop_entries_at_once(reg, tmpdir_shared):
    alice = reg.user("alice@example.org", "Alice")
    bob = reg.user("bob@example.org", "Bob")
    admin = reg.user("root@example.org", "Root", admin=True)
    dev2 = User(reg.d, "alice@example.org", tmpdir_shared, device="2")
    dev2.serial = None  # until renew() certifies its key

    def revoke_dev2():
        r = alice.req("POST", f"/v1/certificates/{dev2.serial}/revoke",
                      json_body={"reason": "keyCompromise"})
        assert r.status == 200, r

    def admin_post(what):
        def f():
            r = admin.req("POST", f"/v1/admin/users/alice@example.org/{what}")
            assert r.status == 200, r
        return f

    # (change made through this dird, what the next lookup must show)
    steps = [
        (lambda: put_addr(alice, "2001:db8::77"),
         lambda r: r.status == 200 and "2001:db8::77" in ips(r)
         and r.json()["online"]),
        (lambda: alice.req("DELETE", "/v1/me/addresses"),
         lambda r: r.status == 200 and not r.json()["online"]),
        (lambda: renew(alice, dev2), lambda r: dev2.serial in
         {d["serial"] for d in r.json()["devices"]}),
        (revoke_dev2, lambda r: dev2.serial not in
         {d["serial"] for d in r.json()["devices"]}),
        (admin_post("disable"), lambda r: r.status == 404),
        (admin_post("enable"), lambda r: r.status == 200),
    ]
    for change, shows in steps:
        before = cached_lookup(bob, "alice@example.org")
        assert not shows(before), (change, before)
        change()
        r = bob.req("GET", "/v1/users/alice@example.org")
        assert shows(r), (change, r)
    # The certificate check is cached too, and a revocation ends it at
    # once: dev2 was revoked above while alice's own check was cached.
    assert alice.req("GET", "/v1/me").status == 200
    r = dev2.req("GET", "/v1/me")
    assert r.status == 401 and r.code == "certificate_revoked", r
    hits = metric(reg.d, "dird_cache_hits_total")
    assert alice.req("GET", "/v1/me").status == 200
    assert metric(reg.d, "dird_cache_hits_total") > hits


def test_address_changes_and_renewals_keep_certificate_checks(reg,
                                                             tmpdir_shared):
    """A certificate check reads the user and the certificate's status:
    an address change or a new certificate of the same user leaves it
    cached (the lookup goes), a change of the user ends it."""
    alice = reg.user("alice@example.org", "Alice")
    admin = reg.user("root@example.org", "Root", admin=True)
    dev2 = User(reg.d, "alice@example.org", tmpdir_shared, device="2")

    def misses_of(step):
        before = metric(reg.d, "dird_cache_misses_total")
        step()
        return metric(reg.d, "dird_cache_misses_total") - before

    def me():
        assert alice.req("GET", "/v1/me").status == 200

    me()  # alice's check is cached from here on
    assert misses_of(me) == 0
    cached_lookup(admin, "alice@example.org")
    misses_of(lambda: put_addr(alice, "192.0.2.9"))
    assert misses_of(me) == 0
    # The lookup did go: it lists addresses (and certificates).
    assert "192.0.2.9" in ips(admin.req("GET", "/v1/users/alice@example.org"))
    for change in (lambda: renew(alice, dev2),
                   lambda: alice.req("DELETE", "/v1/me/addresses")):
        misses_of(change)
        assert misses_of(me) == 0, change
    r = admin.req("POST", "/v1/admin/users/alice@example.org/disable")
    assert r.status == 200, r
    r = alice.req("GET", "/v1/me")
    assert r.status == 401 and r.code == "user_disabled", r
    r = admin.req("POST", "/v1/admin/users/alice@example.org/enable")
    assert r.status == 200, r
    assert misses_of(me) == 1  # read afresh after the user changed


def test_changes_made_elsewhere_arrive_by_notify(reg):
    alice = reg.user("alice@example.org", "Alice")
    bob = reg.user("bob@example.org", "Bob")
    assert alice.req("GET", "/v1/me").status == 200
    cached_lookup(bob, "alice@example.org")
    reg.ctl("user", "disable", "alice@example.org")
    until(lambda: bob.req("GET", "/v1/users/alice@example.org").status
          == 404, "dirctl user disable -> lookup 404")
    until(lambda: alice.req("GET", "/v1/me").code == "user_disabled",
          "dirctl user disable -> certificate refused")
    reg.ctl("user", "enable", "alice@example.org")
    until(lambda: alice.req("GET", "/v1/me").status == 200,
          "dirctl user enable -> certificate accepted")
    cached_lookup(bob, "alice@example.org")
    # An operator's own SQL is announced by the triggers as well.
    reg.sql("UPDATE users SET name = 'Alice Renamed' "
            "WHERE userid = 'alice@example.org'")
    until(lambda: bob.req("GET", "/v1/users/alice@example.org")
          .json()["name"] == "Alice Renamed", "SQL rename -> lookup")
    cached_lookup(bob, "alice@example.org")
    assert alice.req("GET", "/v1/me").status == 200
    reg.ctl("cert", "revoke", alice.serial)
    until(lambda: alice.req("GET", "/v1/me").code == "certificate_revoked",
          "dirctl cert revoke -> certificate refused")
    assert bob.req("GET", "/v1/users/alice@example.org") \
        .json()["devices"] == []


def test_nothing_survives_a_lost_listener(reg):
    """A change the listener could not hear (made while it reconnects)
    must not leave an old answer behind: a new listener drops all."""
    reg.user("alice@example.org", "Alice")
    bob = reg.user("bob@example.org", "Bob")
    cached_lookup(bob, "alice@example.org")
    # One transaction: rename without announcing, and cut the listener.
    reg.sql("BEGIN; SET LOCAL dir.notify = off; "
            "UPDATE users SET name = 'Unannounced' "
            "WHERE userid = 'alice@example.org'; "
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            f"WHERE datname = '{reg.db}' AND "
            "application_name = 'dird cache listener'; "
            "COMMIT")
    # It notices, reconnects at once, and starts afresh.
    until(lambda: "listening for changes again" in reg.d.read_log(),
          "listener back")
    assert "the database connection that listens for changes was lost" \
        in reg.d.read_log()
    wait_serving(reg.d)
    r = bob.req("GET", "/v1/users/alice@example.org")
    assert r.json()["name"] == "Unannounced", r


def test_entries_end_when_an_address_expires(reg):
    assert reg.d.stop() == 0
    reg.d = Dird(reg.data, extra=["--set", "cache=local",
                                  "--set", "ttl_min=10"]).start()
    wait_serving(reg.d)
    alice = reg.user("alice@example.org", "Alice")
    bob = reg.user("bob@example.org", "Bob")
    r = alice.req("PUT", "/v1/me/addresses", json_body={
        "addresses": [{"ip": "192.0.2.9", "port": 4605}], "ttl": 10})
    assert r.status == 200, r
    assert cached_lookup(bob, "alice@example.org").json()["online"]
    # What ends the entry is the clock passing the address's expiry (the
    # reply's expires_at is in whole seconds, the row's a fraction more):
    # this waits for the clock, not for another process.
    end = rfc3339(r.json()["expires_at"]) + 1
    while time.time() < end:
        time.sleep(end - time.time())  # the clock, see above
    r = bob.req("GET", "/v1/users/alice@example.org")
    assert r.status == 200 and r.json()["online"] is False, r


class Listener:
    """A psql session that LISTENs on dir_changed, fed one statement at a
    time: psql prints what it was told after each statement, so a marker
    statement after each says how far its output has come."""

    NOTE = re.compile(r'^Asynchronous notification "dir_changed" with '
                      r'payload "([^"]*)"')

    def __init__(self, reg):
        self.p = subprocess.Popen(
            ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d",
             reg.pg.dsn(reg.db)], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.out = Lines(self.p.stdout)
        self.told = []  # payloads (user ids) in the order they came
        self.marks = 0
        # Once its marker is printed, the LISTEN is in force.
        self.run("LISTEN dir_changed")

    def run(self, sql):
        """Run sql, then a marker; note what was told up to the marker."""
        self.marks += 1
        self.p.stdin.write(f"{sql};\nSELECT 'mark {self.marks}';\n")
        self.p.stdin.flush()
        while True:
            line = self.out.until(lambda ln: True).rstrip("\n")
            m = self.NOTE.match(line)
            if m:
                self.told.append(m.group(1))
            elif line == f"mark {self.marks}":
                return

    def wait_for(self, payload, timeout=30):
        """Until a notification with payload (a user id) was told."""
        def told():
            if payload in self.told:
                return True
            self.run("SELECT 1")
            return False
        wait_until(told, f"a notification about {payload}; told: "
                   f"{self.told}", timeout)

    def close(self):
        self.p.stdin.close()
        assert self.p.wait(30) == 0, self.out.rest()


def user_id(reg, userid):
    """The users.id of userid: what a notification about them carries."""
    return reg.sql(f"SELECT id FROM users WHERE userid = '{userid}'")


def test_shared_mode_between_two_instances(registry):
    reg = registry("cache=shared")
    second = Dird(reg.data, extra=["--set", "cache=shared"]).start()
    try:
        wait_serving(reg.d)
        wait_serving(second)
        lee = reg.user("lee@example.org")
        mia = reg.user("mia@example.org")
        mia.d = second
        for i in range(5):
            ip = f"2001:db8::{i + 10:x}"
            cached_lookup(mia, "lee@example.org")
            r = lee.req("PUT", "/v1/me/addresses", json_body={
                "addresses": [{"ip": ip, "port": 4605}]})
            assert r.status == 200
            until(lambda: ip in ips(mia.req("GET", "/v1/users/"
                                            "lee@example.org")),
                  "update on one instance -> lookup on the other")
        # In shared mode dird announces its own writes (that is how the
        # other instance heard of them).
        psql = Listener(reg)
        assert lee.req("DELETE", "/v1/me/addresses").status == 200
        psql.wait_for(user_id(reg, "lee@example.org"))
        psql.close()
    finally:
        assert second.stop() == 0, second.read_log()


def test_local_mode_does_not_announce_its_own_writes(reg):
    """cache=local keeps its writes quiet (NOTIFY would serialise
    commits); dirctl's are announced."""
    alice = reg.user("alice@example.org", "Alice")
    psql = Listener(reg)
    r = alice.req("PUT", "/v1/me/addresses", json_body={
        "addresses": [{"ip": "192.0.2.10", "port": 4605}]})
    assert r.status == 200
    # A later change by dirctl, about another user, is announced; had the
    # PUT (committed before it) been announced, that would have come
    # first.
    reg.add("bob@example.org", "Bob")
    psql.wait_for(user_id(reg, "bob@example.org"))
    assert user_id(reg, "alice@example.org") not in psql.told, psql.told
    reg.ctl("user", "disable", "alice@example.org")
    psql.wait_for(user_id(reg, "alice@example.org"))
    psql.close()


def test_cache_settings(registry):
    reg = registry("cache=off")
    m = reg.d.metrics()
    assert "dird_cache" not in m
    assert "cache: off" in reg.d.read_log()
    assert reg.d.stop() == 0
    # auto with a DSN: no cache (other instances may share the database).
    d = Dird(reg.data).start()
    try:
        assert "cache: off" in d.read_log()
    finally:
        assert d.stop() == 0
    for bad in ("cache=bogus", "cache=", "cache_entries=0"):
        p = run([dird_path(), "--data", reg.data, "--check", "--set", bad],
                check=False)
        assert p.returncode != 0, bad
        assert bad.split("=")[0] in p.stderr, (bad, p.stderr)


def test_concurrent_updates_never_read_back_older(reg):
    """Writers update their addresses (an increasing port each time) while
    readers look them up through the cache: a lookup that starts after an
    update was acknowledged must show that update or a later one, never
    an older one, however the fills and drops interleave."""
    writers = [reg.user(f"w{i}@example.org") for i in range(4)]
    readers = [reg.user(f"r{i}@example.org") for i in range(2)]
    acked = {w.userid: 0 for w in writers}
    stale, errors, looked = [], [], [0]
    stop = threading.Event()

    def conn(u):
        return http.client.HTTPSConnection("localhost", reg.d.port,
                                           context=client_ctx(reg.data, u),
                                           timeout=30)

    def write(w):
        c = conn(w)
        port = 0
        while not stop.is_set():
            port += 1
            c.request("PUT", "/v1/me/addresses", body=json.dumps(
                {"addresses": [{"ip": "2001:db8::1", "port": port}]}),
                headers={"Content-Type": "application/json"})
            r = c.getresponse()
            r.read()
            if r.status != 200:
                errors.append(("PUT", r.status))
                return
            acked[w.userid] = port
            time.sleep(0.005)  # paces the writers: a load, not a wait

    def read(u, k):
        c = conn(u)
        i = k
        while not stop.is_set():
            w = writers[i % len(writers)].userid
            i += 1
            before = acked[w]
            c.request("GET", f"/v1/users/{w}")
            r = c.getresponse()
            body = r.read()
            if r.status != 200:
                errors.append(("GET", r.status))
                return
            ports = [a["port"] for d in json.loads(body)["devices"]
                     for a in d["addresses"] if a["kind"] == "declared"]
            got = max(ports, default=0)
            if got < before:
                stale.append((w, before, got))
            looked[0] += 1

    hits = metric(reg.d, "dird_cache_hits_total")
    threads = [threading.Thread(target=write, args=(w,)) for w in writers]
    threads += [threading.Thread(target=read, args=(u, k))
                for k, u in enumerate(readers)]
    for t in threads:
        t.start()
    # The load runs for 4 s at least, and until it did enough to mean
    # something, however slow the machine: every writer had more than 10
    # updates acknowledged, the readers made more than 100 lookups.
    t0 = time.monotonic()
    while not errors and not (time.monotonic() - t0 >= 4 and
                              min(acked.values()) > 10 and looked[0] > 100):
        assert time.monotonic() - t0 < 300, (acked, looked)
        time.sleep(0.05)  # the interval of a poll with a deadline
    stop.set()
    for t in threads:
        t.join(30)
    assert not errors, errors
    assert not stale, stale[:5]
    updates = sum(acked.values())
    # At most one certificate-check hit per request; what is above that
    # were lookups answered from the cache.
    lookup_hits = metric(reg.d, "dird_cache_hits_total") - hits - \
        looked[0] - updates
    print(f"{looked[0]} lookups during {updates} updates, at least "
          f"{lookup_hits} answered from the cache; none older than an "
          "acknowledged update")
    assert min(acked.values()) > 10 and looked[0] > 100
    assert lookup_hits > 0


def test_a_second_dird_on_the_embedded_cluster(tmpdir_shared):
    """cache = auto on the embedded cluster is "local" (no announcements)
    only for the first dird: a second one on the same data directory
    does not cache and announces its writes, and cache = local there is
    refused."""
    data = os.path.join(tmpdir_shared, "data")
    dirctl(data, "init", "--domain", "example.org", "--host", "localhost",
           "--host", "127.0.0.1")
    first = Dird(data).start()
    second = None
    try:
        wait_serving(first)
        assert "cache: local" in first.read_log()
        second = Dird(data).start()
        assert "cache: off (another dird caches on this database" in \
            second.read_log()
        assert "dird_cache" not in second.metrics()
        users = []
        for name in ("ann", "ben"):
            uid = f"{name}@example.org"
            dirctl(data, "user", "add", uid, "--name", name.title())
            code = dirctl(data, "code", uid).stdout.strip().splitlines()[-1]
            u = User(first, uid, tmpdir_shared)
            u.enrol(code)
            users.append(u)
        ann, ben = users
        for i in range(3):
            cached_lookup(ben, "ann@example.org")
            ann.d = second
            r = ann.req("PUT", "/v1/me/addresses", json_body={
                "addresses": [{"ip": f"192.0.2.{i + 1}", "port": 4605}]})
            ann.d = first
            assert r.status == 200, r
            until(lambda: f"192.0.2.{i + 1}" in ips(ben.req(
                "GET", "/v1/users/ann@example.org")),
                "write on the second dird -> lookup on the caching one")
        # The other way round the second reads the database: at once.
        r = ann.req("PUT", "/v1/me/addresses", json_body={
            "addresses": [{"ip": "192.0.2.99", "port": 4605}]})
        assert r.status == 200, r
        ben.d = second
        assert "192.0.2.99" in ips(ben.req("GET", "/v1/users/ann@example.org"))
        # Asked for "local" while another holds it: refused, clearly.
        p = run([dird_path(), "--data", data, "--listen",
                 f"127.0.0.1:{free_port()}", "--set", "cache=local"],
                check=False, timeout=60)
        assert p.returncode != 0
        assert "another dird with cache = local runs on this database" \
            in p.stderr, p.stderr
    finally:
        if second is not None:
            assert second.stop() == 0, second.read_log()
        assert first.stop() == 0, first.read_log()


def test_a_dird_that_does_not_cache_announces_its_writes(registry):
    """Security review, defect 6: a dird with cache = off on a database
    shared with a caching one sent no NOTIFY, so the caching one kept
    accepting a certificate revoked, or a user disabled, through it."""
    import copy
    reg = registry("cache=shared")
    wait_serving(reg.d)
    off = Dird(reg.data, extra=["--set", "cache=off"]).start()
    try:
        alice = reg.user("alice@example.org", "Alice")
        bob = reg.user("bob@example.org", "Bob")
        admin = reg.user("root@example.org", "Root", admin=True)
        admin_off = copy.copy(admin)
        admin_off.d = off
        for u in (alice, bob):
            assert u.req("GET", "/v1/me").status == 200
            hits = metric(reg.d, "dird_cache_hits_total")
            assert u.req("GET", "/v1/me").status == 200
            assert metric(reg.d, "dird_cache_hits_total") == hits + 1
        # Revoked through the non-caching dird: refused by the caching one.
        r = admin_off.req("POST", f"/v1/admin/certificates/{alice.serial}"
                          "/revoke", json_body={"reason": "keyCompromise"})
        assert r.status == 200, r
        until(lambda: alice.req("GET", "/v1/me").code ==
              "certificate_revoked", "revoked via cache=off -> refused")
        # Disabled through it: the same.
        r = admin_off.req("POST", "/v1/admin/users/bob@example.org/disable")
        assert r.status == 200, r
        until(lambda: bob.req("GET", "/v1/me").code == "user_disabled",
              "disabled via cache=off -> refused")
    finally:
        assert off.stop() == 0, off.read_log()
