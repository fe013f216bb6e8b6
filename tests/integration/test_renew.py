"""Certificates that renew themselves: `dchat run` renews its certificate
once two thirds of its lifetime have passed, through the registry (IRP
POST /v1/renew), backs off while the registry is down, and uses the new
certificate for its listener, its calls and its registration without a
restart; a certificate renewed on disk by `dchat renew` is taken up the
same way.

The registries here issue 7-day certificates (cert_days=7).  Two thirds
of a week are not waited for: the peer starts with a certificate of the
same lifetime that began five days (and an hour) ago, signed with the
registry's own CA key and recorded in its store, as the registry would
have issued it then.  Everything after that is the programs' own doing."""
import fcntl
import hashlib
import json
import os
import socket
import ssl
import stat
import threading
import time

from conftest import (Terminal, ca_sign, free_port, openssl, people,
                      peer_client_ctx, rfc3339, run)

DAY = 86400
WEEK = 7 * DAY


def fingerprint_of(pem_path):
    der = ssl.PEM_cert_to_DER_cert(open(pem_path).read())
    return hashlib.sha256(der).hexdigest()


def serial_of(pem_path):
    out = openssl("x509", "-in", pem_path, "-noout", "-serial").stdout
    return out.strip().split("=", 1)[1].lower().lstrip("0")


def pubkey(cert=None, key=None):
    if cert:
        return openssl("x509", "-in", cert, "-noout", "-pubkey").stdout
    return openssl("pkey", "-in", key, "-pubout").stdout


def aged_certificate(reg, peer, age=5 * DAY + 3600, life=WEEK):
    """Give peer a certificate for its own key that began `age` seconds
    ago and lasts `life`, signed with the registry's CA key and recorded
    in its store as dird records what it issues.  Its serial."""
    name = peer.userid.split("@")[0]
    csr = os.path.join(reg.base, f"aged-{name}.csr")
    openssl("req", "-new", "-key", peer.key, "-out", csr, "-subj",
            f"/UID={peer.userid}/CN={name.title()}")
    start = int(time.time()) - age
    stamp = "%Y%m%d%H%M%SZ"
    pem = ca_sign(reg.data, reg.base, csr, f"aged-{name}", eku="clientAuth",
                  subj=f"/UID={peer.userid}/CN={name.title()}",
                  start=time.strftime(stamp, time.gmtime(start)),
                  end=time.strftime(stamp, time.gmtime(start + life)))
    der = ssl.PEM_cert_to_DER_cert(open(pem).read())
    serial = serial_of(pem)
    issuer = fingerprint_of(os.path.join(reg.data, "ca.pem"))
    reg.sql("INSERT INTO certificates (issuer, serial, user_id, der, "
            "fingerprint, not_before, not_after) SELECT "
            f"'{issuer}', '{serial}', id, '\\x{der.hex()}'::bytea, "
            f"'{hashlib.sha256(der).hexdigest()}', to_timestamp({start}), "
            f"to_timestamp({start + life}) FROM users WHERE userid = "
            f"'{peer.userid}'")
    with open(peer.cert, "w") as f:
        f.write(open(pem).read())
    return serial


class PairWatcher:
    """Reads a dchat home's key and certificate over and over, as any
    program that takes the home's lock does (a shared flock on `lock`,
    dchat(1) FILES), until the block ends.  Every pair it reads must load
    as a key and its certificate, the key with mode 0600; and neither
    file may ever be missing, lock or no lock."""

    def __init__(self, peer):
        self.peer = peer
        self.problems = []
        self.certs = []  # each certificate seen, in order
        self.done = threading.Event()
        self.looked = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self):
        self.thread.start()
        # The pair as it was before the block is the first one seen.
        assert self.looked.wait(30), "the watcher did not start"
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join(30)
        return False

    def _look(self):
        p = self.peer
        for f in (p.key, p.cert):
            if not os.path.exists(f):
                self.problems.append(f"{f} missing")
        fd = os.open(os.path.join(p.home, "lock"), os.O_RDWR | os.O_CREAT,
                     0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.load_cert_chain(p.cert, p.key)  # fails on a mismatch
            if stat.S_IMODE(os.stat(p.key).st_mode) != 0o600:
                self.problems.append("key.pem is not 0600")
            cert = open(p.cert).read()
        except (OSError, ssl.SSLError) as e:
            self.problems.append(repr(e))
            return
        finally:
            os.close(fd)  # the lock goes with it
        if not self.certs or self.certs[-1] != cert:
            self.certs.append(cert)

    def _watch(self):
        while not self.done.is_set():
            self._look()
            self.looked.set()
            self.done.wait(0.005)  # paces the reads; waits for no one


def presented(peer, client):
    """The SHA-256 fingerprint of the certificate peer's listener shows
    to a PeerTLS client with client's certificate (python ssl)."""
    with socket.create_connection(("127.0.0.1", peer.port), 10) as raw:
        with peer_client_ctx(client).wrap_socket(raw) as tls:
            return hashlib.sha256(tls.getpeercert(binary_form=True)) \
                .hexdigest()


def devices(looker, peer):
    """What the registry says of peer's certificates: serial -> set of
    (ip, port) addresses."""
    j = json.loads(looker.dchat("lookup", "--json", peer.userid).stdout)
    return {d["serial"]: {(a["ip"], a["port"]) for a in d["addresses"]
                          if a["kind"] == "declared"}
            for d in j["devices"]}


def test_a_running_peer_renews_by_itself_and_takes_calls_with_the_new_one(
        registry):
    r = registry("cert_days=7")
    alice, bob = people(r, "alice", "bob")
    old_serial = aged_certificate(r, bob)
    old_fp = fingerprint_of(bob.cert)
    old_key, old_cert = open(bob.key).read(), open(bob.cert).read()
    t0 = time.time()
    # Watched from before dchat starts to the end of the test.
    with PairWatcher(bob) as w:
        bob.run(extra=["--auto-accept"])
        ev = bob.wait("renewed")
        # Renewed at once: over five of its seven days had passed.
        assert ev["source"] == "renewal", ev
        assert ev["previous_serial"] == old_serial, ev
        assert ev["serial"] != old_serial, ev
        # A week from now; the next renewal two thirds into that week.
        assert abs(rfc3339(ev["not_after"]) - (t0 + WEEK)) < 900, ev
        assert abs(rfc3339(ev["next_renewal"]) - (t0 + WEEK * 2 / 3)) < 900, \
            ev
        ready = bob.wait("ready")
        assert ready["serial"] == ev["serial"], ready
        # Registered as the new certificate, after the renewal.
        names = [e["event"] for e in bob.events]
        assert names.index("renewed") < names.index("registered"), names
        # On disk: a new key and its certificate, the key 0600, nothing left
        # half-done.
        new_fp = fingerprint_of(bob.cert)
        assert new_fp != old_fp and open(bob.key).read() != old_key
        assert serial_of(bob.cert) == ev["serial"]
        assert stat.S_IMODE(os.stat(bob.key).st_mode) == 0o600
        assert pubkey(cert=bob.cert) == pubkey(key=bob.key)
        assert not [f for f in os.listdir(bob.home) if ".new" in f or
                    ".tmp" in f], os.listdir(bob.home)
        run(["openssl", "verify", "-CAfile",
             os.path.join(bob.home, "ca.pem"), bob.cert])
        # Alice calls: the handshake shows Bob's new certificate.
        alice.run()
        m = alice.mark()
        alice.cmd(cmd="call", user=bob.userid)
        conn = alice.wait("connected", start=m)
        assert conn["peer"]["fingerprint"] == new_fp, conn
        assert conn["peer"]["serial"] == ev["serial"], conn
        alice.cmd(cmd="msg", session=conn["session"], text="new certificate")
        bob.wait("message", text="new certificate")
        assert presented(bob, alice) == new_fp
        # The registry lists Bob's address with the new certificate, and no
        # longer with the old one.
        devs = devices(alice, bob)
        assert devs[ev["serial"]] == {("127.0.0.1", bob.port)}, devs
        assert devs.get(old_serial, set()) == set(), devs
    assert not w.problems, w.problems[:5]
    # The watcher saw the old pair, then the new one, and nothing else.
    assert w.certs == [old_cert, open(bob.cert).read()], len(w.certs)


def test_renewal_backs_off_while_the_registry_is_down(registry):
    """The registry is down when the renewal is due: dchat says why and
    when it tries again, waits longer after each failure, keeps taking
    calls with the old certificate, and renews once the registry is
    back."""
    r = registry("cert_days=7")
    alice, bob = people(r, "alice", "bob")
    old_serial = aged_certificate(r, bob)
    old_fp = fingerprint_of(bob.cert)
    old_pair = (open(bob.key).read(), open(bob.cert).read())
    port = free_port()
    # Alice called Bob there before: her contacts file says so.
    with open(os.path.join(alice.home, "contacts"), "w") as f:
        f.write(f"{bob.userid} 127.0.0.1 {port} {old_fp}\n")
    assert r.d.stop() == 0
    t0 = time.time()
    bob.run(port=port, extra=["--auto-accept"], registered=False)
    f1 = bob.wait("renew_failed")
    assert "is dird running" in f1["reason"], f1
    assert f1["failures"] == 1 and 45 <= f1["retry_in"] <= 60, f1
    assert abs(rfc3339(f1["next_attempt"]) - (t0 + f1["retry_in"])) < 30
    # Overdue, and two days from its end: the user is told.
    warn = bob.wait("cert_expiring")
    assert warn["days"] == 1, warn
    assert "not renewed yet" in warn["message"], warn
    assert "is dird running" in warn["message"], warn
    # Each failure doubles the wait (the refresh command tries at once).
    waits = []
    for n in (2, 3):
        m = bob.mark()
        bob.cmd(cmd="refresh")
        f = bob.wait("renew_failed", start=m)
        assert f["failures"] == n, f
        waits.append(f["retry_in"])
    assert 90 <= waits[0] <= 120 and 180 <= waits[1] <= 240, waits
    # Meanwhile the old pair is untouched and in use: a call gets
    # through, and shows the old certificate.
    assert (open(bob.key).read(), open(bob.cert).read()) == old_pair
    p = alice.dchat("send", bob.userid, "while the DIR is down")
    assert f"fingerprint {old_fp}" in p.stderr, p.stderr
    bob.wait("message", text="while the DIR is down")
    assert presented(bob, alice) == old_fp
    # The registry is back: the next attempt renews.
    r.d.start()
    m = bob.mark()
    bob.cmd(cmd="refresh")
    ev = bob.wait("renewed", start=m)
    assert ev["previous_serial"] == old_serial, ev
    bob.wait("registered", start=m)
    new_fp = fingerprint_of(bob.cert)
    assert new_fp != old_fp
    p = alice.dchat("send", bob.userid, "renewed")
    assert f"fingerprint {new_fp}" in p.stderr, p.stderr
    assert "WARNING: the certificate changed" in p.stderr, p.stderr
    bob.wait("message", text="renewed")
    # Renewed, nothing more is due: no further attempt is made.
    assert len(bob.has("renewed")) == 1
    assert not bob.has("renew_failed", failures=4)


def test_a_renewal_on_disk_is_used_without_a_restart(reg):
    """`dchat renew` while `dchat run` runs: the running peer takes the
    new certificate up by itself; the session under way goes on with the
    old one, new calls get the new one."""
    alice, bob = people(reg, "alice", "bob")
    alice.run()
    bob.run(extra=["--auto-accept"])
    old_serial = bob.wait("ready")["serial"]
    m = alice.mark()
    alice.cmd(cmd="call", user=bob.userid)
    ca = alice.wait("connected", start=m)
    sb = bob.wait("connected")["session"]
    old_fp = ca["peer"]["fingerprint"]
    with PairWatcher(bob) as w:
        m = bob.mark()
        out = bob.dchat("renew").stdout
        ev = bob.wait("renewed", start=m)
        bob.wait("registered", start=m)
    assert not w.problems, w.problems[:5]
    assert len(w.certs) == 2, len(w.certs)
    assert "renewed as bob@example.org" in out, out
    assert ev["source"] == "disk" and ev["previous_serial"] == old_serial
    assert f"serial {ev['serial']}\n" in out, out
    new_fp = fingerprint_of(bob.cert)
    # The session under way goes on, both ways.
    alice.cmd(cmd="msg", session=ca["session"], text="still here")
    bob.wait("message", text="still here")
    bob.cmd(cmd="msg", session=sb, text="so am I")
    alice.wait("message", text="so am I")
    alice.cmd(cmd="hangup", session=ca["session"])
    alice.wait("closed", session=ca["session"])
    # A new call: the new certificate.
    m = alice.mark()
    alice.cmd(cmd="call", user=bob.userid)
    conn = alice.wait("connected", start=m)
    assert conn["peer"]["fingerprint"] == new_fp != old_fp, conn
    assert presented(bob, alice) == new_fp
    devs = devices(alice, bob)
    assert devs[ev["serial"]] == {("127.0.0.1", bob.port)}, devs
    assert devs.get(old_serial, set()) == set(), devs


def test_the_terminal_tells_of_renewal(registry):
    """dchat(1) on a terminal: a renewal that fails says why and when it
    is tried again, an overdue one warns that the certificate ends soon,
    and a renewal says so."""
    r = registry("cert_days=7")
    (bob,) = people(r, "bob")
    aged_certificate(r, bob)
    assert r.d.stop() == 0
    term = Terminal(bob, free_port())
    try:
        out = term.read_until(b" days left)")
        assert b"warning: renewing the certificate failed: " in out, out
        assert b"is dird running" in out and b"; trying again at " in out
        assert b"warning: your certificate expires soon and is not " \
            b"renewed yet (" in out, out
        assert b"(1 days left)" in out, out
        r.d.start()
        mark = len(term.out)
        term.type("refresh")
        out = term.read_until(b"the next renewal is due ")[mark:]
        assert b"certificate renewed: serial " in out, out
    finally:
        assert term.close() == 0
