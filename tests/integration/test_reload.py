"""SIGHUP (dird(8)): dird reads dird.conf again.  The settings read per
request take effect for the next request; the others change only at a
restart, and the log says so; a file with an error changes nothing."""
import calendar
import os
import signal
import time

from conftest import User, openssl, wait_until

ADDR = {"addresses": [{"ip": "2001:db8::7", "port": 4605}]}


def set_conf(reg, **kv):
    """Rewrite dird.conf with these keys set (the rest as they are)."""
    path = os.path.join(reg.data, "dird.conf")
    with open(path) as f:
        lines = f.read().splitlines()
    for key, value in kv.items():
        lines = [ln for ln in lines if not ln.startswith(f"{key} =")]
        lines.append(f"{key} = {value}")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def hup(reg, expect):
    """SIGHUP, then wait for the log line that answers it; returns the
    log from the signal on."""
    before = len(reg.d.read_log())
    reg.d.proc.send_signal(signal.SIGHUP)
    return wait_until(lambda: expect in reg.d.read_log()[before:] and
                      reg.d.read_log()[before:], what=f"'{expect}' in the "
                      "log of dird")


def lifetime_days(user):
    """notAfter - notBefore of user's certificate, in days."""
    out = openssl("x509", "-in", user.cert, "-noout", "-dates").stdout
    f = dict(ln.split("=", 1) for ln in out.splitlines())
    nb, na = (calendar.timegm(time.strptime(f[k], "%b %d %H:%M:%S %Y GMT"))
              for k in ("notBefore", "notAfter"))
    return round((na - nb) / 86400)


def granted_ttl(user):
    r = user.req("PUT", "/v1/me/addresses", json_body=ADDR)
    assert r.status == 200, r
    return r.json()["ttl"]


def test_sighup_takes_the_live_settings_and_names_the_others(reg):
    ann = reg.user("ann@example.org")
    assert lifetime_days(ann) == 365
    assert granted_ttl(ann) == 300
    set_conf(reg, cert_days=30, ttl_default=120, workers=2)
    log = hup(reg, "configuration read again")
    assert "2 settings changed" in log, log
    assert "workers changes only when dird is restarted" in log, log
    # The next requests see them, on the connection pool dird already has.
    assert granted_ttl(ann) == 120
    ben = reg.user("ben@example.org")
    assert lifetime_days(ben) == 30
    # The same process answered all along.
    assert reg.d.running()


def test_a_bad_file_changes_nothing(reg):
    set_conf(reg, cert_days=30)
    hup(reg, "1 setting changed")
    cal = reg.user("cal@example.org")
    assert lifetime_days(cal) == 30
    # dirctl reads the same file: Dan's code is made while it is good.
    reg.add("dan@example.org")
    code = reg.code("dan@example.org")
    # One good change and one bad line: neither is taken.
    set_conf(reg, ttl_default=150, cert_days=0)
    log = hup(reg, "the configuration in use stays")
    assert "cert_days must be an integer from 1 to 3650" in log, log
    assert "dird.conf:" in log, log
    assert granted_ttl(cal) == 300
    dan = User(reg.d, "dan@example.org", reg.base)
    dan.enrol(code)
    assert lifetime_days(dan) == 30
    # A syntax error, likewise.
    path = os.path.join(reg.data, "dird.conf")
    with open(path, "a") as f:
        f.write("[dird\n")
    hup(reg, "the configuration in use stays")
    assert granted_ttl(cal) == 300


def test_the_command_line_still_wins_after_a_reload(registry):
    reg = registry("ttl_default=90")
    eve = reg.user("eve@example.org")
    assert granted_ttl(eve) == 90
    set_conf(reg, ttl_default=200, cert_days=10)
    hup(reg, "1 setting changed")
    assert granted_ttl(eve) == 90
    fay = reg.user("fay@example.org")
    assert lifetime_days(fay) == 10


def test_an_unchanged_file_changes_nothing(reg):
    log = hup(reg, "configuration read again")
    assert "0 settings changed" in log, log
    assert "changes only when" not in log, log
