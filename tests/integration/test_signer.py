"""The CA key lives in a process of its own (dird/signer.c): dird's
request process signs certificates, CRLs and OCSP answers through it and
never holds the key; when it is gone, signing fails plainly and dird
goes on.  What the signer refuses is tested in tests/unit/test_signer.c."""
import os
import re
import signal

from conftest import BUILD, curl, openssl, uses_asan, wait_until

# Regions of a process's memory larger than this are not read: the
# shadow memory of AddressSanitizer spans terabytes of untouched pages.
# The positive control below fails if a skipped region hid the key.
REGION_MAX = 512 << 20


def private_scalar(data):
    """The private key of data/ca.key as raw bytes, from `openssl pkey
    -text` (the "priv:" hex block of an EC or Ed25519 key)."""
    text = openssl("pkey", "-in", os.path.join(data, "ca.key"), "-noout",
                   "-text").stdout
    m = re.search(r"^priv:\s*\n((?:\s+[0-9a-f:]+\n)+)", text, re.M)
    assert m, text
    raw = bytes.fromhex(re.sub(r"[\s:]", "", m.group(1)))
    # openssl prints a leading 00 when the top bit is set.
    if len(raw) % 2 == 1 and raw[0] == 0:
        raw = raw[1:]
    return raw


def memory_holds(pid, key):
    """Whether the key's bytes occur in the readable memory of process
    pid, read through /proc/PID/maps and /proc/PID/mem (as root may):
    as written, or reversed, as a BIGNUM keeps them on a little-endian
    machine."""
    return any(_memory_holds(pid, n) for n in (key, key[::-1]))


def _memory_holds(pid, needle):
    with open(f"/proc/{pid}/maps") as f:
        regions = [line.split() for line in f]
    overlap = len(needle) - 1
    with open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
        for r in regions:
            start, end = (int(x, 16) for x in r[0].split("-"))
            if "r" not in r[1] or end - start > REGION_MAX or \
                    (len(r) > 5 and r[5] in ("[vvar]", "[vsyscall]")):
                continue
            tail = b""
            pos = start
            while pos < end:
                n = min(1 << 20, end - pos)
                try:
                    mem.seek(pos)
                    chunk = mem.read(n)
                except OSError:
                    break
                if not chunk:
                    break
                if needle in tail + chunk:
                    return True
                tail = chunk[-overlap:]
                pos += len(chunk)
    return False


def signer_of(d):
    """The pid of the signer process of Dird d: its child named
    dird-signer."""
    pid = d.proc.pid
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        kids = [int(x) for x in f.read().split()]
    found = []
    for k in kids:
        try:
            with open(f"/proc/{k}/comm") as f:
                if f.read().strip() == "dird-signer":
                    found.append(k)
        except FileNotFoundError:
            pass
    assert len(found) == 1, (kids, found)
    return found[0]


def seccomp_mode(pid):
    """The Seccomp line of /proc/PID/status: 0 none, 2 a filter."""
    with open(f"/proc/{pid}/status") as f:
        return re.search(r"^Seccomp:\s*(\d)", f.read(), re.M).group(1)


def test_request_process_holds_no_key(reg, tmpdir_shared):
    """Enrol, revoke (a CRL), ask OCSP: all signed through the signer
    process.  The CA's private scalar is then in the signer's memory and
    nowhere in dird's."""
    ca = os.path.join(reg.data, "ca.pem")
    alice = reg.user("alice@example.org")
    bob = reg.user("bob@example.org")
    out = openssl("verify", "-CAfile", ca, alice.cert).stdout
    assert out.strip().endswith(": OK"), out
    # Bob revokes his own certificate: dird signs a new CRL.
    r = bob.req("POST", f"/v1/certificates/{bob.serial}/revoke",
                json_body={"reason": "keyCompromise"})
    assert r.status == 200, r
    crl = os.path.join(tmpdir_shared, "crl.der")
    r = curl(reg.d, "GET", "/v1/crl", raw_out=True)
    assert r.status == 200, r
    with open(crl, "wb") as f:
        f.write(r.body)
    p = openssl("crl", "-inform", "DER", "-in", crl, "-CAfile", ca,
                "-noout", "-text")
    assert "verify OK" in p.stdout + p.stderr, p.stdout + p.stderr
    assert bob.serial.upper().lstrip("0") in p.stdout.upper(), p.stdout
    # OCSP answers, signed afresh each time, verify with the CA.
    for user, want in ((alice, "good"), (bob, "revoked")):
        p = openssl("ocsp", "-issuer", ca, "-cert", user.cert, "-url",
                    reg.d.url + "/ocsp", "-CAfile", ca, check=False)
        out = p.stdout + p.stderr
        assert "Response verify OK" in out, out
        assert f"{user.cert}: {want}" in out, out

    key = private_scalar(reg.data)
    assert len(key) >= 32, key.hex()
    signer = signer_of(reg.d)
    assert memory_holds(signer, key), \
        "the search does not find the key in the signer process"
    assert not memory_holds(reg.d.proc.pid, key), \
        "dird's request process holds the CA private key"
    # Nor the key file's text.
    with open(os.path.join(reg.data, "ca.key")) as f:
        pem_line = f.read().splitlines()[1].encode()
    assert not memory_holds(reg.d.proc.pid, pem_line)

    # The signer signed all of that under its seccomp filter (mode 2 in
    # /proc), but for the sanitizer build, whose leak check needs what
    # the filter forbids; tests/unit/test_sandbox.c tests the filter.
    want = "0" if uses_asan(os.path.join(BUILD, "dird", "dird")) else "2"
    assert seccomp_mode(signer) == want, seccomp_mode(signer)
    assert seccomp_mode(reg.d.proc.pid) == "0"

    # When dird stops, so does its signer process.
    assert reg.d.stop() == 0
    assert not os.path.exists(f"/proc/{signer}"), "the signer outlived dird"


def test_a_killed_signer_fails_signing_plainly(reg):
    """With the signer process killed, enrolment is a 503 with a
    sentence, OCSP says tryLater, the rest of dird still works, and dird
    stops cleanly."""
    alice = reg.user("alice@example.org")
    signer = signer_of(reg.d)
    os.kill(signer, signal.SIGKILL)
    wait_until(lambda: open(f"/proc/{signer}/stat").read().split()[2] ==
               "Z", "the signer process to die")
    reg.add("bob@example.org")
    code = reg.code("bob@example.org")
    r = curl(reg.d, "POST", "/v1/enroll",
             headers=[f"Authorization: Bearer {code}"],
             json_body={"csr": alice.csr_pem()})
    assert r.status == 503 and r.code == "signer_unavailable", r
    assert "signer process" in r.json()["error"]["message"], r
    # The code was not used up: the enrolment rolled back.
    r = alice.req("GET", "/v1/me")
    assert r.status == 200, r
    # A revocation needs a new CRL: refused as a whole, nothing changes.
    r = alice.req("POST", f"/v1/certificates/{alice.serial}/revoke",
                  json_body={})
    assert r.status == 503 and r.code == "signer_unavailable", r
    # OCSP: tryLater (RFC 6960), unsigned.
    ca = os.path.join(reg.data, "ca.pem")
    p = openssl("ocsp", "-issuer", ca, "-cert", alice.cert, "-url",
                reg.d.url + "/ocsp", "-CAfile", ca, check=False)
    assert "trylater" in (p.stdout + p.stderr).lower(), p.stdout + p.stderr
    assert curl(reg.d, "GET", "/v1/ca").status == 200
    log = reg.d.read_log()
    assert "CA signer: the CA signer process is not answering" in log, log
    assert reg.d.stop() == 0
    assert "killed by signal 9" in reg.d.read_log()
