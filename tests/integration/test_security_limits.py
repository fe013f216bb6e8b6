"""Limits a security review found soft, against a real dird: the limiter
of failed logins (keys chosen to collide must not reset a count; an
unknown user id costs the same Argon2id work as a wrong password), the
TLS 1.2 cipher suites of port 4604, and the address TTL.

The limiter's table itself, and the key of an IPv6 source (its /64), are
tested without a server in tests/unit/test_limit.c.
"""
import base64
import http.client
import os
import statistics
import subprocess
import time

from conftest import client_ctx

FAIL_MAX = 5
VICTIM = "victim@example.org"
REG_SETTINGS = ("cache=local",)


def restart(reg, *settings):
    """dird again on the same data, with these settings."""
    reg.restart(*settings)


def with_password(reg, userid, password):
    pw = os.path.join(reg.work, "pw")
    with open(pw, "w") as f:
        f.write(password + "\n")
    reg.add(userid, userid.split("@")[0].title(), "--password-file", pw)


def basic(userid, password):
    tok = base64.b64encode(f"{userid}:{password}".encode()).decode()
    return f"Basic {tok}"


def login(reg, userid, password, source="127.0.0.1"):
    """GET /v1/me/backup with HTTP Basic on a new connection from source
    (any address of 127.0.0.0/8 reaches dird on 127.0.0.1).  Returns the
    status and the seconds from the request to the whole answer."""
    conn = http.client.HTTPSConnection(
        "127.0.0.1", reg.d.port, context=client_ctx(reg.data), timeout=60,
        source_address=(source, 0))
    try:
        conn.connect()
        t0 = time.monotonic()
        conn.request("GET", "/v1/me/backup",
                      headers={"Authorization": basic(userid, password)})
        r = conn.getresponse()
        r.read()
        return r.status, time.monotonic() - t0
    finally:
        conn.close()


# ---- 1. the failed-login limiter -------------------------------------------

def fnv_slot(kind, value):
    """The slot the old limiter (unkeyed FNV-1a of "kind:value" modulo
    4096) gave a key: what an attacker could compute offline."""
    h = 1469598103934665603
    for b in f"{kind}:{value}".encode():
        h = ((h ^ b) * 1099511628211) % 2**64
    return (h or 1) % 4096


def colliding_userid(kind, value, tag):
    """A valid user id (no such user) whose key landed on kind:value's
    slot in the old table."""
    want = fnv_slot(kind, value)
    for i in range(1 << 20):
        u = f"{tag}{i}@example.org"
        if fnv_slot("user", u) == want:
            return u
    raise AssertionError("no collision found")


def test_colliding_keys_from_one_source_do_not_reset_the_counts(reg):
    """The review's attack: between guesses at the victim's password,
    fail with one user id chosen to land on the source's slot and one on
    the victim's.  In the old table the last key to land on a slot took
    it over from zero, so neither count ever reached the limit."""
    restart(reg, f"auth_fail_max={FAIL_MAX}")
    with_password(reg, VICTIM, "the victim's long password")
    on_src = colliding_userid("src", "127.0.0.1", "s")
    on_victim = colliding_userid("user", VICTIM, "v")
    statuses = []
    for _ in range(FAIL_MAX + 1):
        statuses.append(login(reg, VICTIM, "guess")[0])
        if statuses[-1] == 429:
            break
        login(reg, on_src, "guess")
        login(reg, on_victim, "guess")
    assert statuses[0] == 401, statuses
    assert statuses[-1] == 429, statuses
    # Limited now, even with the right password.
    assert login(reg, VICTIM, "the victim's long password")[0] == 429


def test_other_sources_and_colliding_users_do_not_reset_a_users_count(reg):
    """Each guess at the victim's password from another source, so that
    no source reaches its limit, with a user id chosen to land on the
    victim's old slot failing between guesses: the victim's own count
    must still stop the guessing after auth_fail_max failures."""
    restart(reg, f"auth_fail_max={FAIL_MAX}")
    with_password(reg, VICTIM, "the victim's long password")
    on_victim = colliding_userid("user", VICTIM, "v")
    sources = (f"127.0.0.{i}" for i in range(2, 250))
    statuses = []
    for i in range(FAIL_MAX + 1):
        statuses.append(login(reg, VICTIM, "guess", next(sources))[0])
        if statuses[-1] == 429:
            break
        assert login(reg, on_victim, "guess", next(sources))[0] == 401
        assert login(reg, f"bystander{i}@example.org", "guess",
                     next(sources))[0] == 401
    assert statuses[0] == 401, statuses
    assert statuses[-1] == 429, statuses
    assert login(reg, VICTIM, "the victim's long password",
                 next(sources))[0] == 429
    # Another user from a fresh source is not limited by any of that:
    # logged in, told there is no backup yet.
    with_password(reg, "other@example.org", "other's long password")
    assert login(reg, "other@example.org", "other's long password",
                 next(sources))[0] == 404


def test_unknown_user_costs_as_much_as_a_wrong_password(reg):
    """A user id that does not exist, or has no password, is answered
    after the same Argon2id work as a wrong password for a real one, so
    the time of a 401 does not tell which user ids exist.  Medians of
    interleaved samples, on connections opened beforehand."""
    restart(reg, "auth_fail_max=10000")
    with_password(reg, "known@example.org", "known's long password")
    reg.add("nopw@example.org", "No Password")
    kinds = {"known": "known@example.org", "unknown": "ghost@example.org",
             "nopw": "nopw@example.org"}
    times = {k: [] for k in kinds}
    for i in range(10):
        for k, userid in kinds.items():
            status, secs = login(reg, userid, "a wrong password")
            assert status == 401, (k, status)
            if i > 0:  # the first of each warms up
                times[k].append(secs)
    known = statistics.median(times["known"])
    for k in ("unknown", "nopw"):
        assert statistics.median(times[k]) >= known / 2, (k, times)


# ---- 2. TLS on port 4604 ---------------------------------------------------

def s_client(reg, *args):
    """One handshake by openssl s_client (its stdin at end: it quits after
    the handshake).  Returns (handshake done, output)."""
    p = subprocess.run(
        ["openssl", "s_client", "-brief", "-connect",
         f"127.0.0.1:{reg.d.port}", "-servername", "localhost", "-CAfile",
         os.path.join(reg.data, "ca.pem"), "-verify_return_error", *args],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    out = p.stdout + p.stderr
    return p.returncode == 0 and "CONNECTION ESTABLISHED" in out, out


def refused(out):
    """Whether s_client's output shows the server ending the handshake
    (an alert, or libmicrohttpd closing the connection), not the client
    failing to start one."""
    return ("alert handshake failure" in out or
            "alert protocol version" in out or
            "unexpected eof while reading" in out)


def test_tls12_offers_only_ecdhe_with_aead(reg):
    """TLS 1.2 with ECDHE and AES-GCM or ChaCha20-Poly1305 only: no CBC
    suite (with HMAC-SHA1 or SHA-256), no RSA key transport; TLS 1.3 as
    before; TLS 1.1 not at all.  The server key is ECDSA P-256."""
    for suite in ["ECDHE-ECDSA-AES128-GCM-SHA256",
                  "ECDHE-ECDSA-AES256-GCM-SHA384",
                  "ECDHE-ECDSA-CHACHA20-POLY1305"]:
        ok, out = s_client(reg, "-tls1_2", "-cipher", suite)
        assert ok, (suite, out)
        assert "Protocol version: TLSv1.2" in out, out
        assert f"Ciphersuite: {suite}" in out, out
    for suite in ["ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA",
                  "ECDHE-ECDSA-AES128-SHA256", "ECDHE-ECDSA-AES256-SHA384",
                  "ECDHE-ECDSA-AES128-CCM", "ECDHE-ECDSA-AES256-CCM"]:
        ok, out = s_client(reg, "-tls1_2", "-cipher", suite)
        assert not ok and refused(out), (suite, out)
    # Every TLS 1.2 suite the client has: the server picks an AEAD one.
    ok, out = s_client(reg, "-tls1_2", "-cipher", "ALL:@SECLEVEL=0")
    assert ok and ("GCM" in out or "CHACHA20" in out), out
    for suite in ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
                  "TLS_CHACHA20_POLY1305_SHA256"]:
        ok, out = s_client(reg, "-tls1_3", "-ciphersuites", suite)
        assert ok, (suite, out)
        assert "Protocol version: TLSv1.3" in out, out
        assert f"Ciphersuite: {suite}" in out, out
    # The client allows TLS 1.1 (its own default would not): the server
    # refuses it.
    ok, out = s_client(reg, "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0")
    assert not ok and refused(out), out


# ---- 3. the TTL of addresses -----------------------------------------------

def test_address_ttl_below_one_is_refused_above_the_range_clamped(reg):
    """ttl 0 or negative is a mistake: 400 invalid_value, nothing stored.
    A positive ttl outside ttl_min..ttl_max (60..3600 by default) is
    clamped into it."""
    erin = reg.user("erin@example.org")
    addr = [{"ip": "2001:db8::1", "port": 4605}]
    for ttl in [0, -1, -3600, -2**63]:
        r = erin.req("PUT", "/v1/me/addresses",
                     json_body={"addresses": addr, "ttl": ttl})
        assert r.status == 400 and r.code == "invalid_value", (ttl, r)
        assert '"ttl" must be 1 second or more' in r.json()["error"][
            "message"], r
        me = erin.req("GET", "/v1/me").json()
        assert me["addresses"] == [], (ttl, me)
    for ttl, kept in [(1, 60), (59, 60), (60, 60), (300, 300),
                      (3600, 3600), (3601, 3600), (2**63 - 1, 3600)]:
        r = erin.req("PUT", "/v1/me/addresses",
                     json_body={"addresses": addr, "ttl": ttl})
        assert r.status == 200 and r.json()["ttl"] == kept, (ttl, r)
