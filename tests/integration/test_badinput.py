"""Bad input against one real dird (issue 6): a table of refused requests.

Every row is one request that dird must refuse.  Each asserts the HTTP
status, that the body is exactly the IRP error object
{"error":{"code","message"}} with the expected code, and that the
database is unchanged: a digest of every row of every table, taken once
after the set-up, must be the same after each case.

Most cases go through Python's http.client over kept-alive TLS
connections (one per client identity), a few through the curl command
line tool and a few as raw bytes on a TLS socket, for what http.client
refuses to send.  The number of cases that ran is printed at the end of
the run (conftest.py) and must be at least 200.
"""
import base64
import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
from urllib.parse import quote

import pytest

from conftest import (BADINPUT_CASES, Registry, User, ca_sign, curl,
                      mkdtemp_shared, openssl)
from test_dird import make_expired_cert, make_foreign_cert

DOMAIN = "example.org"
BODY_MAX = 65536          # dird's default body_max
BACKUP_MAX = 1048576      # dird's default backup_max


# ---- the registry the cases run against -------------------------------------


def foreign_ca_cert(workdir, key):
    """A certificate for key from another CA, with erin's subject."""
    cakey = os.path.join(workdir, "other-ca.key")
    cacert = os.path.join(workdir, "other-ca.pem")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:P-256", "-nodes", "-keyout", cakey, "-out",
            cacert, "-days", "30", "-subj", "/CN=Other CA")
    csr = os.path.join(workdir, "other.csr")
    openssl("req", "-new", "-key", key, "-out", csr, "-subj",
            "/UID=erin@example.org/CN=Erin")
    ext = os.path.join(workdir, "other.ext")
    with open(ext, "w") as f:
        f.write("extendedKeyUsage = clientAuth,serverAuth\n")
    out = os.path.join(workdir, "other-user.pem")
    openssl("x509", "-req", "-in", csr, "-CA", cacert, "-CAkey", cakey,
            "-CAcreateserial", "-days", "30", "-extfile", ext, "-out", out)
    return out


def csr_variants(workdir, good_csr):
    """CSRs dird must refuse, by name; PEM text."""
    out = {}

    def gen(name, *keyargs):
        key = os.path.join(workdir, f"csr-{name}.key")
        csr = os.path.join(workdir, f"csr-{name}.csr")
        openssl("genpkey", *keyargs, "-out", key)
        openssl("req", "-new", "-key", key, "-out", csr, "-subj", "/CN=x")
        with open(csr) as f:
            out[name] = f.read()

    gen("rsa1024", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024")
    gen("secp256k1", "-algorithm", "EC", "-pkeyopt",
        "ec_paramgen_curve:secp256k1")
    gen("p521", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521")
    gen("brainpool", "-algorithm", "EC", "-pkeyopt",
        "ec_paramgen_curve:brainpoolP256r1")
    gen("ed448", "-algorithm", "ED448")
    with open(good_csr) as f:
        good = f.read()
    der = subprocess.run(["openssl", "req", "-in", good_csr, "-outform",
                          "DER"], capture_output=True, check=True).stdout
    body = "".join(good.splitlines()[1:-1])

    def pem(der_bytes, label="CERTIFICATE REQUEST"):
        b = base64.encodebytes(der_bytes).decode()
        return f"-----BEGIN {label}-----\n{b}-----END {label}-----\n"

    # The last byte is the signature's: the request no longer verifies.
    out["bad signature"] = pem(der[:-1] + bytes([der[-1] ^ 1]))
    # A byte of the subject public key flipped: not a point on the curve,
    # or a different key; either way not the key that signed.
    i = der.find(b"\x03\x42\x00\x04") + 10
    out["changed key"] = pem(der[:i] + bytes([der[i] ^ 0x40]) + der[i + 1:])
    out["truncated DER"] = pem(der[:len(der) // 2])
    out["trailing DER"] = pem(der + b"\x00\x00")
    out["truncated PEM"] = good[:len(good) // 2]
    out["no END line"] = good.replace("-----END CERTIFICATE REQUEST-----",
                                      "")
    out["base64 only"] = body
    out["garbage base64"] = pem(b"\x30\x03\x02\x01\x00" * 20)
    out["empty"] = ""
    out["blank"] = " \n\t\n"
    out["not PEM"] = "hello, registry"
    out["PEM header only"] = "-----BEGIN CERTIFICATE REQUEST-----\n"
    out["certificate"] = None  # filled with a real certificate below
    out["PEM headers"] = good.replace(
        "-----BEGIN CERTIFICATE REQUEST-----\n",
        "-----BEGIN CERTIFICATE REQUEST-----\nProc-Type: 4,ENCRYPTED\n\n")
    out["long label"] = good.replace("CERTIFICATE REQUEST", "a\u00e9" * 40)
    return out


def p12_variants(workdir, user):
    """PKCS#12 uploads dird must refuse, by name; bytes."""
    good = os.path.join(workdir, "good.p12")
    openssl("pkcs12", "-export", "-inkey", user.key, "-in", user.cert,
            "-out", good, "-passout", "pass:a backup passphrase")
    nomac = os.path.join(workdir, "nomac.p12")
    openssl("pkcs12", "-export", "-inkey", user.key, "-in", user.cert,
            "-out", nomac, "-passout", "pass:a backup passphrase", "-nomac")
    with open(good, "rb") as f:
        g = f.read()
    with open(nomac, "rb") as f:
        n = f.read()
    with open(user.cert, "rb") as f:
        pem = f.read()
    der = subprocess.run(["openssl", "x509", "-in", user.cert, "-outform",
                          "DER"], capture_output=True, check=True).stdout
    return g, {
        "no MAC": n,
        "truncated": g[:len(g) // 2],
        "one byte short": g[:-1],
        "trailing bytes": g + b"\x00",
        "random bytes": bytes((i * 151 + 7) % 256 for i in range(2000)),
        "PEM certificate": pem,
        "DER certificate": der,
        "base64 of the PKCS#12": base64.b64encode(g),
        "JSON": b'{"p12":"MIIK"}',
        "lone SEQUENCE tag": b"\x30",
        "huge length": b"\x30\x84\xff\xff\xff\xf0" + b"\x00" * 64,
        "deep nesting": b"\x30\x80" * 4000 + b"\x00\x00" * 4000,
        "zeros": b"\x00" * 512,
    }


def read_head(f):
    """Status and headers (lower-case names) of one response from f."""
    status = int(f.readline().split()[1])
    hdrs = {}
    while True:
        line = f.readline().decode("latin-1").strip()
        if not line:
            return status, hdrs
        k, _, v = line.partition(":")
        hdrs[k.strip().lower()] = v.strip()


class Bad:
    """The module's registry, its users and credentials, its clients."""

    def __init__(self, pg):
        self.base = mkdtemp_shared("dirbad-")
        w = self.work = self.base
        # Hundreds of deliberately wrong codes and passwords: keep the
        # failed-attempt limiter out of the way (it is tested elsewhere).
        # The dird caches, so every case also checks that no refusal
        # leaves a cached answer behind.
        self.reg = reg = Registry(pg, w, settings=["cache=local",
                                                   "auth_fail_max=10000"])
        self.d = reg.d
        self.erin = reg.user("erin@example.org", "Erin")
        self.root = reg.user("root@example.org", "Root", admin=True)
        self.frank = reg.user("frank@example.org", "Frank")
        reg.ctl("cert", "revoke", self.frank.serial)
        pwfile = os.path.join(w, "pw")
        with open(pwfile, "w") as f:
            f.write("gina's long password\n")
        reg.add("gina@example.org", "Gina", "--password-file", pwfile)
        self.gina = User(self.d, "gina@example.org", w)
        self.gina.enrol(reg.code("gina@example.org"))
        gina_code = reg.code("gina@example.org")
        reg.ctl("user", "disable", "gina@example.org")
        # hank has a valid code that every case leaves unused.
        reg.add("hank@example.org", "Hank")
        self.hank = User(self.d, "hank@example.org", w)
        hank_code = reg.code("hank@example.org")
        with open(pwfile, "w") as f:
            f.write("ivan's long password\n")
        reg.add("ivan@example.org", "Ivan", "--password-file", pwfile)
        used = reg.code("erin@example.org")
        User(self.d, "erin@example.org", w, device="-2").enrol(used)
        expired_code = reg.code("erin@example.org")
        reg.sql("UPDATE enrol_codes SET created_at = now() - interval "
                "'2 days', expires_at = now() - interval '1 day' WHERE id = "
                "(SELECT max(id) FROM enrol_codes)")
        # Client identities beside the good ones.
        fcert, fkey = make_foreign_cert(w, "erin@example.org")
        expired = make_expired_cert(reg, w, self.erin)
        erin_subj = "/UID=erin@example.org/CN=Erin"
        unknown = ca_sign(reg.data, w, self.erin.csr, "unknown",
                          subj=erin_subj)
        future = ca_sign(reg.data, w, self.erin.csr, "future",
                         subj=erin_subj, start="20991231000000Z",
                         end="21000101000000Z")
        server_only = ca_sign(reg.data, w, self.erin.csr, "server-only",
                              subj=erin_subj, eku="serverAuth")
        self.ids = {
            "none": None,
            "erin": (self.erin.cert, self.erin.key),
            "admin": (self.root.cert, self.root.key),
            "revoked": (self.frank.cert, self.frank.key),
            "disabled": (self.gina.cert, self.gina.key),
            "foreign": (fcert, fkey),
            "foreign-ca": (foreign_ca_cert(w, self.erin.key),
                           self.erin.key),
            "expired": (expired, self.erin.key),
            "unknown": (unknown, self.erin.key),
            "future": (future, self.erin.key),
            "server-only": (server_only, self.erin.key),
        }
        self.csr = csr_variants(w, self.erin.csr)
        with open(self.erin.cert) as f:
            self.csr["certificate"] = f.read()
        self.p12, self.bad_p12 = p12_variants(w, self.erin)
        self.vars = {
            "erin_serial": self.erin.serial,
            "root_serial": self.root.serial,
            "frank_serial": self.frank.serial,
            "hank_code": hank_code,
            "gina_code": gina_code,
            "used_code": used,
            "expired_code": expired_code,
        }
        self.conns = {}
        # A digest of every row of every table (conftest.DbDigest): a
        # refused request must not write a single row, not even to
        # audit_log (refusals are logged by dird and counted in /metrics;
        # an audit row per refusal would let anyone without credentials
        # grow the database and contend on the audit chain's lock).
        self.digest = reg.digest
        self.baseline = self.digest()
        self.ran = 0

    def sub(self, s):
        for k, v in self.vars.items():
            s = s.replace("{{" + k + "}}", v)
        return s

    def conn(self, who):
        if who not in self.conns:
            ctx = ssl.create_default_context(
                cafile=os.path.join(self.reg.data, "ca.pem"))
            if self.ids[who]:
                ctx.load_cert_chain(*self.ids[who])
            self.conns[who] = http.client.HTTPSConnection(
                "localhost", self.d.port, context=ctx, timeout=60)
        return self.conns[who]

    def drop(self, who):
        c = self.conns.pop(who, None)
        if c:
            c.close()

    def send_http(self, who, method, path, body, headers):
        """One request on who's kept-alive connection; a connection the
        server closed in the meantime is opened again once."""
        for attempt in (0, 1):
            c = self.conn(who)
            try:
                c.request(method, path, body=body, headers=headers)
                r = c.getresponse()
                data = r.read()
                hdrs = {k.lower(): v for k, v in r.getheaders()}
                if r.will_close:
                    self.drop(who)
                return r.status, hdrs, data
            except (http.client.RemoteDisconnected, ConnectionError,
                    ssl.SSLEOFError, http.client.CannotSendRequest):
                self.drop(who)
                if attempt:
                    raise

    def send_raw(self, who, raw):
        """raw bytes on a new TLS connection; the reply read to the end."""
        ctx = ssl.create_default_context(
            cafile=os.path.join(self.reg.data, "ca.pem"))
        if self.ids[who]:
            ctx.load_cert_chain(*self.ids[who])
        with socket.create_connection(("127.0.0.1", self.d.port), 30) as s:
            with ctx.wrap_socket(s, server_hostname="localhost") as t:
                t.sendall(raw)
                data = b""
                while True:
                    try:
                        chunk = t.recv(65536)
                    except (ssl.SSLEOFError, ConnectionResetError):
                        break
                    if not chunk:
                        break
                    data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        hdrs = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        return status, hdrs, body

    def send_expect(self, who, method, path, body, headers):
        """A body sent as careful clients send big ones: headers with
        "Expect: 100-continue" first, the body only after "100 Continue".
        dird answers an announced oversized body at once; a client that
        pushed the body regardless could see the connection reset before
        it read the answer."""
        ctx = ssl.create_default_context(
            cafile=os.path.join(self.reg.data, "ca.pem"))
        if self.ids[who]:
            ctx.load_cert_chain(*self.ids[who])
        head = f"{method} {path} HTTP/1.1\r\nHost: localhost\r\n"
        head += f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\n"
        for k, v in headers.items():
            head += f"{k}: {v}\r\n"
        with socket.create_connection(("127.0.0.1", self.d.port), 30) as s:
            with ctx.wrap_socket(s, server_hostname="localhost") as t:
                t.sendall(head.encode("latin-1") + b"\r\n")
                f = t.makefile("rb")
                status, hdrs = read_head(f)
                if status == 100:
                    t.sendall(body)
                    status, hdrs = read_head(f)
                data = f.read(int(hdrs.get("content-length", "0")))
                f.close()
        return status, hdrs, data

    def send_curl(self, who, method, path, body, headers):
        idn = self.ids[who]
        hl = [f"{k}: {v}" for k, v in headers.items()
              if k.lower() != "content-type"]
        ctype = headers.get("Content-Type")
        r = curl(self.d, method, path, cert=idn[0] if idn else None,
                 key=idn[1] if idn else None, body=body, headers=hl,
                 ctype=ctype, raw_out=True)
        assert r.status != 0, r
        # No headers from curl's -w: the body is checked, not them.
        return r.status, None, r.body

    def close(self):
        for who in list(self.conns):
            self.drop(who)
        try:
            self.reg.close()
        finally:
            shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="module")
def bad(pg, request):
    b = Bad(pg)
    request.config.stash[BADINPUT_CASES] = 0
    yield b
    b.close()


# ---- the cases ----------------------------------------------------------------


class Case:
    def __init__(self, name, method, path, status, code, who="none",
                 body=None, ctype=None, auth=None, headers=None, via="http",
                 raw=None):
        self.name = name
        self.method = method
        self.path = path
        self.status = status
        self.code = code
        self.who = who
        self.body = body        # bytes, str, dict/list (JSON) or f(bad)
        self.ctype = ctype      # "" for no Content-Type at all
        self.auth = auth
        self.headers = headers or {}
        self.via = via
        self.raw = raw          # f(bad) -> request bytes, for via="raw"


CASES = []


def case(*a, **kw):
    CASES.append(Case(*a, **kw))


def basic(userid, password):
    return "Basic " + base64.b64encode(
        f"{userid}:{password}".encode()).decode()


ADDR = "/v1/me/addresses"
GOOD_ADDR = {"addresses": [{"ip": "2001:db8::1", "port": 4605}], "ttl": 300}


def good_csr(b):
    return {"csr": b.hank.csr_pem()}


def good_p12(b):
    return b.p12


# What each route accepts when all is well: sent with failing credentials,
# a refusal then proves that authentication, not the body, stopped it.
CERT_ROUTES = [
    ("POST", "/v1/renew", good_csr, "application/json"),
    ("GET", "/v1/me", None, None),
    ("PUT", ADDR, GOOD_ADDR, "application/json"),
    ("DELETE", ADDR, None, None),
    ("PUT", "/v1/me/backup", good_p12, "application/x-pkcs12"),
    ("GET", "/v1/me/backup", None, None),
    ("GET", "/v1/users/erin@example.org", None, None),
    ("POST", "/v1/certificates/{{erin_serial}}/revoke",
     {"reason": "superseded"}, "application/json"),
]
ADMIN_ROUTES = [
    ("GET", "/v1/admin/users", None, None),
    ("POST", "/v1/admin/users", {"userid": "newbie@example.org",
                                 "name": "Newbie"}, "application/json"),
    ("POST", "/v1/admin/users/erin@example.org/disable", None, None),
    ("POST", "/v1/admin/users/gina@example.org/enable", None, None),
    ("POST", "/v1/admin/users/hank@example.org/codes", {"ttl": 600},
     "application/json"),
    ("POST", "/v1/admin/users/hank@example.org/p12",
     {"passphrase": "a long passphrase"}, "application/json"),
    ("POST", "/v1/admin/certificates/{{erin_serial}}/revoke",
     {"reason": "keyCompromise"}, "application/json"),
]

# -- every authentication failure, on every route it applies to --------------
for m, p, body, ct in CERT_ROUTES + ADMIN_ROUTES:
    case(f"no certificate: {m} {p}", m, p, 401, "certificate_required",
         body=body, ctype=ct)
    case(f"self-signed certificate: {m} {p}", m, p, 401,
         "certificate_untrusted", who="foreign", body=body, ctype=ct)
    case(f"revoked certificate: {m} {p}", m, p, 401, "certificate_revoked",
         who="revoked", body=body, ctype=ct)
for m, p, body, ct in CERT_ROUTES[:4] + ADMIN_ROUTES[:1]:
    case(f"foreign CA: {m} {p}", m, p, 401, "certificate_untrusted",
         who="foreign-ca", body=body, ctype=ct)
    case(f"expired certificate: {m} {p}", m, p, 401, "certificate_expired",
         who="expired", body=body, ctype=ct)
    case(f"disabled user: {m} {p}", m, p, 401, "user_disabled",
         who="disabled", body=body, ctype=ct)
for m, p, body, ct in CERT_ROUTES[1:3]:
    case(f"unregistered certificate of our CA: {m} {p}", m, p, 401,
         "certificate_unknown", who="unknown", body=body, ctype=ct)
    case(f"not yet valid certificate: {m} {p}", m, p, 401,
         "certificate_expired", who="future", body=body, ctype=ct)
    case(f"certificate without clientAuth: {m} {p}", m, p, 401,
         "certificate_untrusted", who="server-only", body=body, ctype=ct)
for m, p, body, ct in ADMIN_ROUTES:
    case(f"non-admin: {m} {p}", m, p, 403, "forbidden", who="erin",
         body=body, ctype=ct)
case("revoking someone else's certificate", "POST",
     "/v1/certificates/{{root_serial}}/revoke", 403, "forbidden", who="erin",
     body={"reason": "keyCompromise"})
case("a code is no certificate", "GET", "/v1/me", 401,
     "certificate_required", auth="Bearer {{hank_code}}")
case("a password is no certificate", "PUT", ADDR, 401,
     "certificate_required", auth=basic("ivan@example.org",
                                        "ivan's long password"),
     body=GOOD_ADDR)
case("a code does not renew", "POST", "/v1/renew", 401,
     "certificate_required", auth="Bearer {{hank_code}}", body=good_csr)

# Codes and passwords, on both routes that take them.
for m, p, body in (("POST", "/v1/enroll", good_csr),
                   ("GET", "/v1/me/backup", None)):
    for label, auth, code in [
        ("unknown code", "Bearer 0123456789abcdef0123456789abcdef",
         "invalid_code"),
        ("used code", "Bearer {{used_code}}", "invalid_code"),
        ("expired code", "Bearer {{expired_code}}", "invalid_code"),
        ("code of a disabled user", "Bearer {{gina_code}}", "user_disabled"),
        ("empty code", "Bearer ", "invalid_code"),
        ("code of 65 characters", "Bearer " + "a" * 65, "invalid_code"),
        ("code with Latin-1 bytes", "Bearer caf\u00e9\u00ff", "invalid_code"),
        ("code with a quote", "Bearer ' OR '1'='1", "invalid_code"),
        ("valid code with a suffix", "Bearer {{hank_code}}x",
         "invalid_code"),
        ("wrong password", basic("ivan@example.org", "ivan's wrong one"),
         "bad_credentials"),
        ("empty password", basic("ivan@example.org", ""), "bad_credentials"),
        ("password of a disabled user",
         basic("gina@example.org", "gina's long password"),
         "bad_credentials"),
        ("password of an unknown user",
         basic("nobody@example.org", "ivan's long password"),
         "bad_credentials"),
        ("password of a user without one",
         basic("hank@example.org", ""), "bad_credentials"),
        ("injection as user id", basic("' OR 1=1 --", "x"),
         "bad_credentials"),
        ("Basic without colon", "Basic " + base64.b64encode(
            b"ivan@example.org").decode(), "bad_credentials"),
        ("Basic not base64", "Basic !!!!!!!!", "bad_credentials"),
        ("Basic bad padding", "Basic aXZhbg", "bad_credentials"),
        ("Basic with NUL", "Basic " + base64.b64encode(
            b"ivan@example.org\x00:ivan's long password").decode(),
         "bad_credentials"),
        ("Basic with invalid UTF-8", "Basic " + base64.b64encode(
            b"\xff\xfe@example.org:x").decode(), "bad_credentials"),
        ("Basic over 512 characters", "Basic " + "QUFB" * 200,
         "bad_credentials"),
        ("Digest scheme", 'Digest username="ivan"', "bad_credentials"),
        ("Bearer without a space", "Bearer{{hank_code}}", "bad_credentials"),
        ("scheme only", "Negotiate", "bad_credentials"),
    ]:
        case(f"{label}: {m} {p}", m, p, 401, code, auth=auth, body=body)
case("no credentials: POST /v1/enroll", "POST", "/v1/enroll", 401,
     "credentials_required", body=good_csr)
case("blank credentials: POST /v1/enroll", "POST", "/v1/enroll", 401,
     "credentials_required", body=good_csr, headers={"Authorization": ""})

# -- unknown paths, path tricks, methods ----------------------------------------
for p in ["/", "/v1", "/v1/", "/v2/me", "/v1/nothing", "/v1/me/",
          "//v1/me", "/v1//me", "/V1/ME", "/v1/./me", "/v1/me/.",
          "/v1/users/", "/v1/users//", "/v1/users/../me",
          "/v1/users/..%2fme", "/v1/users/a%2Fb@example.org",
          "/v1/certificates//revoke", "/v1/admin/users/", "/v1/ca/..",
          "/v1/me%00", "/v1/me%00/addresses", "/v1/me/addresses%00.json",
          "/v1/nothing%ff%fe", "/v1/%c0%ae%c0%ae/me", "/v1/me;x=1",
          "/v1/admin/../me", "/%2e%2e/%2e%2e/etc/passwd",
          "/v1/users/" + "a" * 600 + "@example.org",
          "/.git/config", "/v1/me\\addresses"]:
    case(f"unknown path {p[:60]}", "GET", p, 404, "not_found", who="erin")
case("absolute URI of no route", "GET", "", 404, "not_found", via="raw",
     raw=lambda b: b"GET https://localhost/v1/nothing HTTP/1.1\r\n"
     b"Host: localhost\r\nConnection: close\r\n\r\n")
case("HTTP/1.0 request", "GET", "", 404, "not_found", via="raw",
     raw=lambda b: b"GET /v1/nothing HTTP/1.0\r\n\r\n")
case("raw invalid UTF-8 in the path", "GET", "", 404, "not_found", via="raw",
     raw=lambda b: b"GET /v1/\xff\xfe HTTP/1.1\r\nHost: localhost\r\n"
     b"Connection: close\r\n\r\n")

for m, p in [("DELETE", "/v1/me"), ("PUT", "/v1/ca"), ("POST", "/v1/crl"),
             ("GET", "/v1/enroll"), ("PUT", "/v1/enroll"),
             ("GET", "/v1/renew"), ("PATCH", ADDR), ("POST", ADDR),
             ("GET", ADDR), ("DELETE", "/v1/me/backup"),
             ("POST", "/v1/me/backup"), ("PUT", "/v1/users/erin@example.org"),
             ("DELETE", "/v1/users/erin@example.org"),
             ("GET", "/v1/certificates/{{erin_serial}}/revoke"),
             ("DELETE", "/v1/admin/users"), ("PUT", "/v1/admin/users"),
             ("GET", "/v1/admin/users/erin@example.org/disable"),
             ("DELETE", "/v1/admin/users/erin@example.org/enable"),
             ("GET", "/v1/admin/users/erin@example.org/codes"),
             ("PUT", "/v1/admin/users/erin@example.org/p12"),
             ("GET", "/v1/admin/certificates/{{erin_serial}}/revoke"),
             ("POST", "/healthz"), ("DELETE", "/metrics"),
             ("OPTIONS", "/v1/me"), ("TRACE", "/v1/me"), ("BREW", "/v1/me"),
             ("get", "/v1/me"), ("HEAD", "/v1/me"), ("HEAD", "/v1/ca")]:
    case(f"method {m} {p}", m, p, 405, "method_not_allowed", who="admin")

# -- content types ----------------------------------------------------------------
for ct in ["text/plain", "application/x-www-form-urlencoded", "",
           "application/jsonx", "application/json-patch+json",
           "multipart/form-data; boundary=x", "application/xml",
           "json", "application/x-pkcs12"]:
    case(f"content type {ct or 'missing'}: PUT {ADDR}", "PUT", ADDR, 415,
         "unsupported_media_type", who="erin", body=json.dumps(GOOD_ADDR),
         ctype=ct)
for m, p, who, auth, body in [
        ("POST", "/v1/enroll", "none", "Bearer {{hank_code}}", good_csr),
        ("POST", "/v1/renew", "erin", None, good_csr),
        ("POST", "/v1/certificates/{{erin_serial}}/revoke", "erin", None, {}),
        ("POST", "/v1/admin/users", "admin", None,
         {"userid": "newbie@example.org", "name": "Newbie"}),
        ("POST", "/v1/admin/users/hank@example.org/codes", "admin", None, {}),
        ("POST", "/v1/admin/users/hank@example.org/p12", "admin", None,
         {"passphrase": "a long passphrase"}),
        ("POST", "/v1/admin/certificates/{{erin_serial}}/revoke", "admin",
         None, {})]:
    case(f"content type text/plain: {m} {p}", m, p, 415,
         "unsupported_media_type", who=who, auth=auth, body=body,
         ctype="text/plain")
for ct in ["application/json", "text/plain", ""]:
    case(f"backup as {ct or 'no content type'}", "PUT", "/v1/me/backup",
         415, "unsupported_media_type", who="erin", body=good_p12, ctype=ct)

# -- bodies where none belongs, and bodies over the limit ----------------------
for m, p, who in [("GET", "/v1/me", "erin"), ("DELETE", ADDR, "erin"),
                  ("GET", "/v1/users/erin@example.org", "erin"),
                  ("GET", "/v1/me/backup", "erin"),
                  ("GET", "/v1/admin/users", "admin"),
                  ("POST", "/v1/admin/users/erin@example.org/disable",
                   "admin"),
                  ("POST", "/v1/admin/users/gina@example.org/enable",
                   "admin"),
                  ("GET", "/v1/ca", "none"), ("GET", "/healthz", "none")]:
    case(f"unexpected body: {m} {p}", m, p, 400, "unexpected_body", who=who,
         body=b"{}", ctype="application/json")

big = json.dumps({"addresses": [{"ip": "2001:db8::1", "port": 4605}],
                  "pad": "x" * BODY_MAX})
for m, p, who, auth in [("PUT", ADDR, "erin", None),
                        ("POST", "/v1/enroll", "none", "Bearer {{hank_code}}"),
                        ("POST", "/v1/renew", "erin", None),
                        ("POST", "/v1/admin/users", "admin", None),
                        ("POST", "/v1/certificates/{{erin_serial}}/revoke",
                         "erin", None),
                        ("GET", "/v1/me", "erin", None)]:
    case(f"body over the limit: {m} {p}", m, p, 413, "body_too_large",
         who=who, auth=auth, body=big, via="expect")
case("body one byte over the limit", "PUT", ADDR, 413, "body_too_large",
     who="erin", body=b" " * (BODY_MAX - 2) + b"{}" + b" ", via="expect")
case("chunked body over the limit", "PUT", ADDR, 413, "body_too_large",
     who="erin", body=lambda b: iter([big.encode()[i:i + 8192]
                                      for i in range(0, len(big), 8192)]))
case("announced Content-Length of a terabyte", "PUT", ADDR, 413,
     "body_too_large", who="erin", headers={"Content-Length": "10" * 6})
case("backup over backup_max", "PUT", "/v1/me/backup", 413, "body_too_large",
     who="erin", ctype="application/x-pkcs12", via="curl",
     body=lambda b: b.p12 + b"\x00" * BACKUP_MAX)
case("chunked backup over backup_max", "PUT", "/v1/me/backup", 413,
     "body_too_large", who="erin", ctype="application/x-pkcs12", via="curl",
     headers={"Transfer-Encoding": "chunked"},
     body=lambda b: b"\x30" * (BACKUP_MAX + 10))
case("JSON over the limit through curl", "POST", "/v1/admin/users", 413,
     "body_too_large", who="admin", via="curl", body=big)

# -- malformed and truncated JSON, on every JSON route -------------------------
JSON_ROUTES = [
    ("POST", "/v1/enroll", "none", "Bearer {{hank_code}}"),
    ("POST", "/v1/renew", "erin", None),
    ("PUT", ADDR, "erin", None),
    ("POST", "/v1/certificates/{{erin_serial}}/revoke", "erin", None),
    ("POST", "/v1/admin/users", "admin", None),
    ("POST", "/v1/admin/users/hank@example.org/codes", "admin", None),
    ("POST", "/v1/admin/users/hank@example.org/p12", "admin", None),
    ("POST", "/v1/admin/certificates/{{erin_serial}}/revoke", "admin", None),
]
MALFORMED = [("empty", b""), ("open brace", b"{"), ("truncated key", b'{"csr'),
             ("truncated value", b'{"csr": "-----BEGIN'),
             ("trailing garbage", b"{} x"), ("two objects", b"{}{}"),
             ("single quotes", b"{'ttl': 1}"), ("trailing comma",
                                                  b'{"ttl": 1,}'),
             ("bare word", b"nul"), ("raw NUL", b'{"ttl"\x00: 1}'),
             ("invalid UTF-8", b'{"reason": "\xff"}'),
             ("duplicate key", b'{"ttl": 60, "ttl": 60}')]
for m, p, who, auth in JSON_ROUTES:
    for label, body in MALFORMED:
        case(f"{label} JSON: {m} {p}", m, p, 400, "malformed_json", who=who,
             auth=auth, body=body)
    case(f"top-level array: {m} {p}", m, p, 400, "wrong_type", who=who,
         auth=auth, body=b"[]")
    case(f"unknown field: {m} {p}", m, p, 400, "unknown_field", who=who,
         auth=auth, body={"colour": "red"})

for label, body in [
        ("whitespace only", b" \r\n\t"), ("unquoted key", b"{ttl: 1}"),
        ("missing colon", b'{"addresses" []}'), ("NaN", b'{"ttl": NaN}'),
        ("Infinity", b'{"ttl": Infinity}'), ("hex number", b'{"ttl": 0x10}'),
        ("leading zero", b'{"ttl": 0300}'),
        ("huge integer", b'{"ttl": 99999999999999999999999}'),
        ("huge real", b'{"ttl": 1e999}'), ("comment", b'{"ttl": 1 /* x */}'),
        ("UTF-8 BOM", b'\xef\xbb\xbf{"ttl": 1}'),
        ("UTF-16 body", '{"ttl": 1}'.encode("utf-16")),
        ("control character in string",
         b'{"addresses": [{"ip": "2001:db8::1\n", "port": 1}]}'),
        ("bad escape", b'{"addresses": [{"ip": "\\q", "port": 1}]}'),
        ("lone surrogate escape", b'{"addresses": [{"ip": "\\ud800", '
         b'"port": 1}]}'),
        ("overlong UTF-8", b'{"addresses": [{"ip": "\xc0\xaf", "port": 1}]}'),
        ("UTF-8 surrogate", b'{"addresses": [{"ip": "\xed\xa0\x80", '
         b'"port": 1}]}'),
        ("truncated UTF-8", b'{"addresses": [{"ip": "\xe2\x82", "port": 1}]}'),
        ("invalid UTF-8 key", b'{"\xff": 1}'),
        ("deep arrays", b'{"addresses": ' + b"[" * 5000 + b"]" * 5000 + b"}"),
        ("deep objects", b'{"addresses": ' + b'{"a":' * 5000 + b"1" +
         b"}" * 5000 + b"}"),
        ("deep unterminated", b"[" * 60000)]:
    case(f"{label}: PUT {ADDR}", "PUT", ADDR, 400, "malformed_json",
         who="erin", body=body)
for label, body in [("string", b'"addresses"'), ("number", b"42"),
                    ("null", b"null"), ("true", b"true")]:
    case(f"top-level {label}: PUT {ADDR}", "PUT", ADDR, 400,
         "malformed_json", who="erin", body=body)

# -- wrong types, missing and unknown fields, per route ------------------------
for label, body, code in [
        ("addresses a string", {"addresses": "2001:db8::1"}, "wrong_type"),
        ("addresses a number", {"addresses": 1}, "wrong_type"),
        ("addresses an object", {"addresses": {"ip": "2001:db8::1",
                                               "port": 1}}, "wrong_type"),
        ("addresses null", {"addresses": None}, "wrong_type"),
        ("addresses missing", {"ttl": 300}, "missing_field"),
        ("empty object", {}, "missing_field"),
        ("address a string", {"addresses": ["2001:db8::1"]}, "wrong_type"),
        ("address null", {"addresses": [None]}, "wrong_type"),
        ("address an array", {"addresses": [["2001:db8::1", 1]]},
         "wrong_type"),
        ("shallow nesting", {"addresses": [[[[[[[[]]]]]]]]}, "wrong_type"),
        ("ip a number", {"addresses": [{"ip": 536939960, "port": 1}]},
         "wrong_type"),
        ("ip null", {"addresses": [{"ip": None, "port": 1}]}, "wrong_type"),
        ("ip missing", {"addresses": [{"port": 1}]}, "wrong_type"),
        ("port a string", {"addresses": [{"ip": "2001:db8::1",
                                          "port": "4605"}]}, "wrong_type"),
        ("port a real", {"addresses": [{"ip": "2001:db8::1",
                                        "port": 4605.0}]}, "wrong_type"),
        ("port a boolean", {"addresses": [{"ip": "2001:db8::1",
                                           "port": True}]}, "wrong_type"),
        ("port missing", {"addresses": [{"ip": "2001:db8::1"}]},
         "wrong_type"),
        ("ttl a string", dict(GOOD_ADDR, ttl="300"), "wrong_type"),
        ("ttl a real", dict(GOOD_ADDR, ttl=300.5), "wrong_type"),
        ("ttl null", dict(GOOD_ADDR, ttl=None), "wrong_type"),
        ("ttl an array", dict(GOOD_ADDR, ttl=[300]), "wrong_type"),
        ("ttl a boolean", dict(GOOD_ADDR, ttl=True), "wrong_type"),
        ("ttl 0", dict(GOOD_ADDR, ttl=0), "invalid_value"),
        ("ttl -1", dict(GOOD_ADDR, ttl=-1), "invalid_value"),
        ("ttl -300", dict(GOOD_ADDR, ttl=-300), "invalid_value"),
        ("ttl -2^31", dict(GOOD_ADDR, ttl=-2**31), "invalid_value"),
        ("ttl -2^63", dict(GOOD_ADDR, ttl=-2**63), "invalid_value"),
        ("unknown top-level field", dict(GOOD_ADDR, expires=1),
         "unknown_field"),
        ("unknown address field", {"addresses": [
            {"ip": "2001:db8::1", "port": 1, "kind": "observed"}]},
         "unknown_field"),
        ("field in upper case", {"Addresses": GOOD_ADDR["addresses"]},
         "unknown_field"),
        ("empty field name", dict(GOOD_ADDR, **{"": 1}), "unknown_field"),
        ("__proto__ field", dict(GOOD_ADDR, __proto__={}), "unknown_field"),
        ("huge unknown field name", dict(GOOD_ADDR, **{"k" * 60000: 1}),
         "unknown_field"),
        ("multi-byte unknown field name", dict(GOOD_ADDR, **{
            "a" + "\u00e9" * 80: 1}), "unknown_field"),
        ("deep unknown field", dict(GOOD_ADDR, x=json.loads(
            "[" * 500 + "]" * 500)), "unknown_field"),
        ("no addresses", {"addresses": []}, "too_many_addresses"),
        ("17 addresses", {"addresses": [
            {"ip": f"2001:db8::{i + 1:x}", "port": 4605} for i in range(17)]},
         "too_many_addresses"),
        ("port 0", {"addresses": [{"ip": "2001:db8::1", "port": 0}]},
         "invalid_port"),
        ("port -1", {"addresses": [{"ip": "2001:db8::1", "port": -1}]},
         "invalid_port"),
        ("port 65536", {"addresses": [{"ip": "2001:db8::1", "port": 65536}]},
         "invalid_port"),
        ("port 2^32 + 4605", {"addresses": [{"ip": "2001:db8::1",
                                             "port": 2**32 + 4605}]},
         "invalid_port"),
        ("port -2^63", {"addresses": [{"ip": "2001:db8::1",
                                       "port": -2**63}]}, "invalid_port"),
        ("second address bad", {"addresses": [
            {"ip": "2001:db8::1", "port": 1}, {"ip": "x", "port": 1}]},
         "invalid_address")] + [
        (f"ip {ip!r}", {"addresses": [{"ip": ip, "port": 4605}]},
         "invalid_address") for ip in [
            "", "2001:db8::zz", "256.1.1.1", "1.2.3", "1.2.3.4.5",
            "fe80::1%eth0", "2001:db8::/64", "192.0.2.1/32", " 192.0.2.1",
            "192.0.2.1 ", "localhost", "example.org", "0x7f.0.0.1",
            "[2001:db8::1]", "2001:db8::1::4605", "192.0.2.1:4605",
            "1" * 65, "::ffff:1.2.3.4.5",
            "\u0661.\u0662.\u0663.\u0664", "2001:db8::1\u200b"]]:
    case(f"{label}: PUT {ADDR}", "PUT", ADDR, 400, code, who="erin",
         body=body)

for route, who, auth in [("/v1/enroll", "none", "Bearer {{hank_code}}"),
                         ("/v1/enroll", "none",
                          basic("ivan@example.org", "ivan's long password")),
                         ("/v1/renew", "erin", None)]:
    via = "password" if auth and auth.startswith("Basic") else (
        "code" if auth else "certificate")
    for label, body, code in [
            ("csr a number", {"csr": 1}, "wrong_type"),
            ("csr an array", {"csr": ["-----BEGIN"]}, "wrong_type"),
            ("csr an object", {"csr": {"pem": "x"}}, "wrong_type"),
            ("csr true", {"csr": True}, "wrong_type"),
            ("csr null", {"csr": None}, "missing_field"),
            ("csr missing", {}, "missing_field"),
            ("csr in upper case", {"CSR": "x"}, "unknown_field"),
            ("csr with NUL", {"csr": "-----BEGIN\u0000"}, "malformed_json"),
            ("csr of 16385 bytes", {"csr": "A" * 16385}, "too_long"),
            ("csr of 60000 bytes", {"csr": "A" * 60000}, "too_long"),
            ("csr beside an unknown field", {"csr": "x", "userid":
                                             "root@example.org"},
             "unknown_field")]:
        case(f"{label}: POST {route} by {via}", "POST", route, 400, code,
             who=who, auth=auth, body=body)
    for name in ["rsa1024", "secp256k1", "p521", "brainpool", "ed448",
                 "bad signature", "changed key", "truncated DER",
                 "trailing DER", "truncated PEM", "no END line",
                 "base64 only", "garbage base64", "empty", "blank",
                 "not PEM", "PEM header only", "certificate",
                 "PEM headers", "long label"]:
        if via == "password" and name not in ("rsa1024", "bad signature",
                                              "certificate", "empty"):
            continue  # Argon2 per case: a few suffice
        case(f"CSR {name}: POST {route} by {via}", "POST", route, 400,
             "invalid_csr", who=who, auth=auth,
             body=lambda b, n=name: {"csr": b.csr[n]})

REV = "/v1/certificates/{{erin_serial}}/revoke"
for label, p, who, body, status, code in [
        ("reason a number", REV, "erin", {"reason": 1}, 400, "wrong_type"),
        ("reason an array", REV, "erin", {"reason": ["x"]}, 400,
         "wrong_type"),
        ("reason an object", REV, "erin", {"reason": {}}, 400, "wrong_type"),
        ("reason false", REV, "erin", {"reason": False}, 400, "wrong_type"),
        ("reason unknown", REV, "erin", {"reason": "bored"}, 400,
         "invalid_reason"),
        ("reason empty", REV, "erin", {"reason": ""}, 400, "invalid_reason"),
        ("reason with NUL", REV, "erin", {"reason": "superseded\u0000x"},
         400, "malformed_json"),
        ("reason of 65 bytes", REV, "erin", {"reason": "s" * 65}, 400,
         "too_long"),
        ("reason unused CRL code 7", REV, "erin", {"reason": "7"}, 400,
         "invalid_reason"),
        ("unknown field", REV, "erin", {"reason": "superseded", "now": 1},
         400, "unknown_field"),
        ("serial not hex", "/v1/certificates/xyz/revoke", "erin", {}, 400,
         "invalid_serial"),
        ("serial of 41 digits", "/v1/certificates/" + "1" * 41 + "/revoke",
         "erin", {}, 400, "invalid_serial"),
        ("serial negative", "/v1/certificates/-1/revoke", "erin", {}, 400,
         "invalid_serial"),
        ("serial 0x", "/v1/certificates/0x1f/revoke", "erin", {}, 400,
         "invalid_serial"),
        ("serial with a space", "/v1/certificates/1f%201f/revoke", "erin",
         {}, 400, "invalid_serial"),
        ("serial with NUL", "/v1/certificates/1f%001f/revoke", "erin", {},
         400, "invalid_serial"),
        ("serial with colons", "/v1/certificates/1f:2e/revoke", "erin", {},
         400, "invalid_serial"),
        ("serial injection", "/v1/certificates/1'%20OR%20'1'='1/revoke",
         "erin", {}, 400, "invalid_serial"),
        ("serial invalid UTF-8", "/v1/certificates/%ff/revoke", "erin", {},
         400, "invalid_serial"),
        ("unknown serial", "/v1/certificates/abcdef/revoke", "erin", {}, 404,
         "unknown_certificate"),
        ("unknown serial by admin", "/v1/admin/certificates/abcdef/revoke",
         "admin", {}, 404, "unknown_certificate"),
        ("already revoked", "/v1/admin/certificates/{{frank_serial}}/revoke",
         "admin", {}, 409, "already_revoked"),
        ("admin: reason unknown",
         "/v1/admin/certificates/{{erin_serial}}/revoke", "admin",
         {"reason": "because"}, 400, "invalid_reason")]:
    case(f"revoke, {label}", "POST", p, status, code, who=who, body=body)

USERS = "/v1/admin/users"
for label, body, status, code in [
        ("userid a number", {"userid": 1, "name": "N"}, 400, "wrong_type"),
        ("name an array", {"userid": "n@example.org", "name": ["N"]}, 400,
         "wrong_type"),
        ("email a number", {"userid": "n@example.org", "name": "N",
                            "email": 5}, 400, "wrong_type"),
        ("role a boolean", {"userid": "n@example.org", "name": "N",
                            "role": True}, 400, "wrong_type"),
        ("password a number", {"userid": "n@example.org", "name": "N",
                               "password": 12345678}, 400, "wrong_type"),
        ("userid missing", {"name": "N"}, 400, "missing_field"),
        ("name missing", {"userid": "n@example.org"}, 400, "missing_field"),
        ("name null", {"userid": "n@example.org", "name": None}, 400,
         "missing_field"),
        ("unknown field", {"userid": "n@example.org", "name": "N",
                           "enabled": False}, 400, "unknown_field"),
        ("unknown field id", {"userid": "n@example.org", "name": "N",
                              "id": 1}, 400, "unknown_field"),
        ("name empty", {"userid": "n@example.org", "name": ""}, 400,
         "invalid_value"),
        ("name with NUL", {"userid": "n@example.org", "name": "N\u0000N"},
         400, "malformed_json"),
        # The limits of dirctl user add, which share one rule with this.
        ("name of 129 bytes", {"userid": "n@example.org", "name": "N" * 129},
         400, "too_long"),
        ("name of 65 two-byte characters",
         {"userid": "n@example.org", "name": "\u00e9" * 65}, 400, "too_long"),
        ("name of 1025 bytes", {"userid": "n@example.org",
                                "name": "N" * 1025}, 400, "too_long"),
        ("email of 255 bytes", {"userid": "n@example.org", "name": "N",
                                "email": "e" * 243 + "@example.org"}, 400,
         "too_long"),
        ("email without @", {"userid": "n@example.org", "name": "N",
                             "email": "not an address"}, 400,
         "invalid_value"),
        ("email with a space", {"userid": "n@example.org", "name": "N",
                                "email": "n n@example.org"}, 400,
         "invalid_value"),
        ("email with NUL", {"userid": "n@example.org", "name": "N",
                            "email": "n@example.org\u0000"}, 400,
         "malformed_json"),
        ("role root", {"userid": "n@example.org", "name": "N",
                       "role": "root"}, 400, "invalid_value"),
        ("role Admin", {"userid": "n@example.org", "name": "N",
                        "role": "Admin"}, 400, "invalid_value"),
        ("role of 17 bytes", {"userid": "n@example.org", "name": "N",
                              "role": "a" * 17}, 400, "too_long"),
        ("password of 1025 bytes", {"userid": "n@example.org", "name": "N",
                                    "password": "p" * 1025}, 400, "too_long"),
        ("password empty", {"userid": "n@example.org", "name": "N",
                            "password": ""}, 400, "weak_password"),
        ("password of 7 characters", {"userid": "n@example.org", "name": "N",
                                      "password": "1234567"}, 400,
         "weak_password"),
        ("password with NUL", {"userid": "n@example.org", "name": "N",
                               "password": "long enough\u0000"}, 400,
         "malformed_json"),
        ("userid of 255 bytes", {"userid": "u" * 243 + "@example.org",
                                 "name": "N"}, 400, "too_long"),
        ("existing user", {"userid": "erin@example.org", "name": "Erin 2"},
         409, "conflict"),
        ("existing user in upper case", {"userid": "ERIN@Example.ORG",
                                         "name": "Erin 3"}, 409, "conflict")]:
    case(f"add user, {label}", "POST", USERS, status, code, who="admin",
         body=body)

# Injection-shaped and otherwise invalid user ids, wherever one goes.
BAD_USERIDS = [
    "' OR '1'='1", "erin@example.org' OR '1'='1", "erin@example.org'--",
    "erin@example.org; DROP TABLE users", "erin@example.org\" OR \"\"=\"",
    "<script>alert(1)</script>@example.org", "${jndi:ldap://x/a}@example.org",
    "{{7*7}}@example.org", "erin@example.org\r\nX-Injected: 1",
    "erin@example.org\u0000.evil", "erin@@example.org",
    "erin@example.org@evil.org", "*@example.org", "%@example.org",
    "../../etc/passwd", "erin@example..org", "erin@-example.org",
    "erin@exa_mple.org", "\u0435rin@example.org", "erin\uff20example.org",
    "erin@example.org\t", " erin@example.org", "erin", "@example.org",
    "erin@", "a@", "null", "erin@" + "a" * 64 + ".org",
    "u" * 243 + "@example.org", "erin@example.org/../root@example.org",
]


def pct(s):
    return quote(s, safe="@")


for uid in BAD_USERIDS:
    case(f"lookup of {uid[:40]!r}", "GET", "/v1/users/" + pct(uid),
         404 if "/" in uid else 400,
         "not_found" if "/" in uid else "invalid_userid", who="erin")
for uid in BAD_USERIDS[:12]:
    # dird's JSON parser refuses \u0000 anywhere (no JSON_ALLOW_NUL).
    case(f"add user {uid[:40]!r}", "POST", USERS, 400,
         "malformed_json" if "\0" in uid else "invalid_userid",
         who="admin", body={"userid": uid, "name": "Mallory"})
for uid in BAD_USERIDS[:6]:
    for what, body in [("disable", None), ("enable", None),
                       ("codes", {"ttl": 600}),
                       ("p12", {"passphrase": "a long passphrase"})]:
        case(f"{what} of {uid[:40]!r}", "POST",
             f"/v1/admin/users/{pct(uid)}/{what}",
             404 if "/" in uid else 400,
             "not_found" if "/" in uid else "invalid_userid",
             who="admin", body=body)
for label, p, who, body, status, code in [
        ("lookup of an unknown user", "/v1/users/nobody@example.org", "erin",
         None, 404, "unknown_user"),
        ("lookup of a disabled user", "/v1/users/gina@example.org", "erin",
         None, 404, "unknown_user"),
        ("lookup with a plus", "/v1/users/erin+x@example.org", "erin", None,
         404, "unknown_user"),
        ("lookup with a percent", "/v1/users/e%25rin@example.org", "erin",
         None, 404, "unknown_user"),
        ("disable an unknown user",
         "/v1/admin/users/nobody@example.org/disable", "admin", None, 404,
         "unknown_user"),
        ("enable an unknown user",
         "/v1/admin/users/nobody@example.org/enable", "admin", None, 404,
         "unknown_user"),
        ("code for an unknown user",
         "/v1/admin/users/nobody@example.org/codes", "admin", {}, 404,
         "unknown_user"),
        ("code for a disabled user",
         "/v1/admin/users/gina@example.org/codes", "admin", {}, 403,
         "user_disabled"),
        ("p12 for an unknown user", "/v1/admin/users/nobody@example.org/p12",
         "admin", {"passphrase": "a long passphrase"}, 404, "unknown_user"),
        ("p12 for a disabled user", "/v1/admin/users/gina@example.org/p12",
         "admin", {"passphrase": "a long passphrase"}, 403, "user_disabled")]:
    case(label, "GET" if p.startswith("/v1/users") else "POST", p, status,
         code, who=who, body=body)

CODES = "/v1/admin/users/hank@example.org/codes"
for label, body, code in [
        ("ttl a string", {"ttl": "600"}, "wrong_type"),
        ("ttl a real", {"ttl": 600.0}, "wrong_type"),
        ("ttl a boolean", {"ttl": True}, "wrong_type"),
        ("ttl null", {"ttl": None}, "wrong_type"),
        ("ttl 59", {"ttl": 59}, "invalid_value"),
        ("ttl 0", {"ttl": 0}, "invalid_value"),
        ("ttl negative", {"ttl": -600}, "invalid_value"),
        ("ttl over 30 days", {"ttl": 30 * 86400 + 1}, "invalid_value"),
        ("ttl 2^63-1", {"ttl": 2**63 - 1}, "invalid_value"),
        ("unknown field", {"ttl": 600, "code": "mine"}, "unknown_field")]:
    case(f"code, {label}", "POST", CODES, 400, code, who="admin", body=body)

P12 = "/v1/admin/users/hank@example.org/p12"
for label, body, code in [
        ("passphrase missing", {}, "missing_field"),
        ("passphrase null", {"passphrase": None}, "missing_field"),
        ("passphrase a number", {"passphrase": 12345678}, "wrong_type"),
        ("passphrase an array", {"passphrase": ["a long passphrase"]},
         "wrong_type"),
        ("passphrase empty", {"passphrase": ""}, "weak_passphrase"),
        ("passphrase of 7 bytes", {"passphrase": "1234567"},
         "weak_passphrase"),
        ("passphrase with NUL", {"passphrase": "a long\u0000passphrase"},
         "malformed_json"),
        ("passphrase of 1025 bytes", {"passphrase": "p" * 1025}, "too_long"),
        ("unknown field", {"passphrase": "a long passphrase",
                           "key": "rsa"}, "unknown_field")]:
    case(f"p12, {label}", "POST", P12, 400, code, who="admin", body=body)

# -- PKCS#12 uploads and downloads -------------------------------------------------
case("backup, empty body", "PUT", "/v1/me/backup", 400, "empty_body",
     who="erin", body=b"", ctype="application/x-pkcs12")
for name in ["no MAC", "truncated", "one byte short", "trailing bytes",
             "random bytes", "PEM certificate", "DER certificate",
             "base64 of the PKCS#12", "JSON", "lone SEQUENCE tag",
             "huge length", "deep nesting", "zeros"]:
    case(f"backup, {name}", "PUT", "/v1/me/backup", 400, "invalid_pkcs12",
         who="erin", ctype="application/x-pkcs12",
         body=lambda b, n=name: b.bad_p12[n])
case("backup, octet-stream but not PKCS#12", "PUT", "/v1/me/backup", 400,
     "invalid_pkcs12", who="erin", ctype="application/octet-stream",
     body=b"not a PKCS#12")
case("no backup stored (certificate)", "GET", "/v1/me/backup", 404,
     "no_backup", who="erin")
case("no backup stored (code; the code stays usable)", "GET",
     "/v1/me/backup", 404, "no_backup", auth="Bearer {{hank_code}}")
case("no backup stored (password)", "GET", "/v1/me/backup", 404,
     "no_backup", auth=basic("ivan@example.org", "ivan's long password"))

# -- a handful through the curl command line tool ------------------------------
case("curl: no certificate", "GET", "/v1/me", 401, "certificate_required",
     via="curl")
case("curl: foreign CA", "GET", "/v1/me", 401, "certificate_untrusted",
     who="foreign-ca", via="curl")
case("curl: revoked", "PUT", ADDR, 401, "certificate_revoked",
     who="revoked", via="curl", body=json.dumps(GOOD_ADDR),
     ctype="application/json")
case("curl: expired", "GET", "/v1/me", 401, "certificate_expired",
     who="expired", via="curl")
case("curl: wrong code", "POST", "/v1/enroll", 401, "invalid_code",
     via="curl", auth="Bearer not-a-code", body=good_csr)
case("curl: wrong password", "GET", "/v1/me/backup", 401, "bad_credentials",
     via="curl", auth=basic("ivan@example.org", "nope"))
case("curl: non-admin", "GET", USERS, 403, "forbidden", who="erin",
     via="curl")
case("curl: malformed JSON", "PUT", ADDR, 400, "malformed_json", who="erin",
     via="curl", body=b'{"addresses": [', ctype="application/json")
case("curl: form content type", "PUT", ADDR, 415, "unsupported_media_type",
     who="erin", via="curl", body=b"addresses=1",
     ctype="application/x-www-form-urlencoded")
case("curl: bad CSR", "POST", "/v1/renew", 400, "invalid_csr", who="erin",
     via="curl", body=lambda b: {"csr": b.csr["bad signature"]})
case("curl: bad PKCS#12", "PUT", "/v1/me/backup", 400, "invalid_pkcs12",
     who="erin", via="curl", ctype="application/x-pkcs12",
     body=lambda b: b.bad_p12["no MAC"])
case("curl: wrong method", "PATCH", "/v1/me", 405, "method_not_allowed",
     who="erin", via="curl")


# ---- running them --------------------------------------------------------------


def request_of(b, c):
    body = c.body(b) if callable(c.body) else c.body
    headers = {k: b.sub(v) for k, v in c.headers.items()}
    ctype = c.ctype
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
        ctype = "application/json" if ctype is None else ctype
    elif isinstance(body, str):
        body = body.encode()
    if body is not None and ctype is None:
        ctype = "application/json"
    if ctype:
        headers["Content-Type"] = ctype
    if c.auth is not None:
        headers["Authorization"] = b.sub(c.auth)
    return body, headers


@pytest.mark.parametrize("c", CASES, ids=[c.name for c in CASES])
def test_bad_input(bad, c, request):
    body, headers = request_of(bad, c)
    path = bad.sub(c.path)
    if c.via == "expect":
        status, hdrs, data = bad.send_expect(c.who, c.method, path, body,
                                             headers)
    elif c.via == "raw":
        status, hdrs, data = bad.send_raw(c.who, c.raw(bad))
    elif c.via == "curl":
        status, hdrs, data = bad.send_curl(c.who, c.method, path, body,
                                           headers)
    else:
        status, hdrs, data = bad.send_http(c.who, c.method, path, body,
                                           headers)
    request.config.stash[BADINPUT_CASES] += 1
    now = bad.digest()
    changed = now != bad.baseline
    bad.baseline = now  # a failure here must not fail the cases after it
    assert status == c.status, (status, data[:400])
    if status == 405 and hdrs is not None:
        allow = hdrs.get("allow", "")
        assert allow and c.method not in allow.split(", "), hdrs
    if c.method != "HEAD":
        if hdrs is not None:
            assert hdrs.get("content-type") == "application/json", hdrs
        j = json.loads(data)
        assert list(j) == ["error"] and sorted(j["error"]) == [
            "code", "message"], j
        assert j["error"]["code"] == c.code, j
        assert isinstance(j["error"]["message"], str)
        assert j["error"]["message"], j
    else:
        assert data == b""
    assert not changed, "the database changed"


def test_refusals_leave_dird_serving_and_the_code_unused(bad):
    """After every case above (the module's order runs this last), dird
    still serves, and the code the refused enrolments offered was not
    used up by them: Hank enrols with it.  It offers the code in one
    refused enrolment of its own first: run alone (or under a -k that
    selects none of the cases) it would otherwise check nothing."""
    u = bad.hank
    r = curl(bad.d, "POST", "/v1/enroll",
             headers=[f"Authorization: Bearer {bad.vars['hank_code']}"],
             json_body={"csr": bad.csr["rsa1024"]})
    assert r.status == 400 and r.code == "invalid_csr", r
    u.enrol(bad.vars["hank_code"])
    assert u.req("GET", "/v1/me").status == 200
